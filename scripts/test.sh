#!/usr/bin/env bash
# Install what is missing, build, and run every test: the cmocka unit tests
# and the black-box integration tests (real strata, real redis-server, a
# scripted origin, all on 127.0.0.1).
#   scripts/test.sh                 normal build in build/
#   STRATA_SANITIZE=1 scripts/test.sh   ASan+UBSan build in build-asan/
#   STRATA_SANITIZE=thread scripts/test.sh   ThreadSanitizer build in build-tsan/
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh test

if [ "${STRATA_SANITIZE:-0}" = thread ]; then
    dir=build-tsan
    scripts/build.sh "$dir" -Dtests=enabled -Db_sanitize=thread -Db_lundef=false -Djemalloc=disabled
    export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}
elif [ "${STRATA_SANITIZE:-0}" = 1 ]; then
    dir=build-asan
    scripts/build.sh "$dir" -Dtests=enabled -Db_sanitize=address,undefined -Db_lundef=false -Djemalloc=disabled
    # A small quarantine keeps RSS meaningful for the memory-bound tests.
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:quarantine_size_mb=16:abort_on_error=1}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
else
    dir=build
    scripts/build.sh "$dir" -Dtests=enabled
fi

# Each cmocka program also writes its cases as JUnit XML, so CI counts cases, not programs.
rm -f "$dir"/cmocka-*.xml
unit_rc=0
CMOCKA_MESSAGE_OUTPUT=xml meson test -C "$dir" --suite unit --print-errorlogs || unit_rc=$?
if [ $unit_rc -ne 0 ]; then  # the failing cases and their messages are in the XML
    grep -l '<failure' "$dir"/cmocka-*.xml 2>/dev/null | xargs -r cat
fi

export STRATA_BIN="$PWD/$dir/strata"
int_rc=0
# A hang fails its test (pytest-timeout), an exception in a test's thread fails the test,
# and a skip is reported (-rs) so CI can count it as what it is: not a pass.
/usr/bin/python3 -m pytest tests/integration -q -p no:cacheprovider -rs --timeout=300 \
    -W error::pytest.PytestUnhandledThreadExceptionWarning \
    --junitxml="$dir/pytest-junit.xml" || int_rc=$?

if [ $unit_rc -ne 0 ] || [ $int_rc -ne 0 ]; then
    echo "tests FAILED (unit rc=$unit_rc, integration rc=$int_rc)"
    exit 1
fi
echo "all tests passed ($dir)"
