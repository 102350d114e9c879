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
    scripts/build.sh "$dir" -Db_sanitize=thread -Db_lundef=false -Djemalloc=disabled
    export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}
elif [ "${STRATA_SANITIZE:-0}" = 1 ]; then
    dir=build-asan
    scripts/build.sh "$dir" -Db_sanitize=address,undefined -Db_lundef=false -Djemalloc=disabled
    # A small quarantine keeps RSS meaningful for the memory-bound tests.
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:quarantine_size_mb=16:abort_on_error=1}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
else
    dir=build
    scripts/build.sh "$dir"
fi

unit_rc=0
meson test -C "$dir" --suite unit --print-errorlogs || unit_rc=$?

export STRATA_BIN="$PWD/$dir/strata"
int_rc=0
/usr/bin/python3 -m pytest tests/integration -q -p no:cacheprovider \
    --junitxml="$dir/pytest-junit.xml" || int_rc=$?

if [ $unit_rc -ne 0 ] || [ $int_rc -ne 0 ]; then
    echo "tests FAILED (unit rc=$unit_rc, integration rc=$int_rc)"
    exit 1
fi
echo "all tests passed ($dir)"
