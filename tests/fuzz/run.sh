#!/usr/bin/env bash
# tests/fuzz/run.sh [SECONDS] - build the libFuzzer targets (clang, ASan +
# UBSan, coverage on all of strata's code) in build-fuzz/ and run each for
# SECONDS (default 60), starting from its seed corpus in
# tests/fuzz/corpus/<target>/. Exits 1 on any crash, leak, sanitizer report or
# broken invariant; the input that caused it is kept in build-fuzz/artifacts/
# (replay: build-fuzz/tests/fuzz/<target> <file>). The seed is fixed (FUZZ_SEED,
# default 1), so a run explores the same inputs each time for the same code.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-60}
if ! [[ "$secs" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 [SECONDS > 0]" >&2 # libFuzzer reads -max_total_time=0 as no limit
    exit 2
fi
seed=${FUZZ_SEED:-1} # a fixed seed: the same mutations on every run of the same code
scripts/install-deps.sh fuzz
if [ ! -f build-fuzz/build.ninja ]; then
    CC=clang meson setup build-fuzz -Dfuzz=enabled -Dtests=disabled -Djemalloc=disabled \
        -Db_sanitize=address,undefined -Db_lundef=false \
        -Dc_args=-fsanitize=fuzzer-no-link >/dev/null
fi
ninja --quiet -C build-fuzz tests/fuzz/fuzz_config tests/fuzz/fuzz_conn tests/fuzz/fuzz_http tests/fuzz/fuzz_l2 tests/fuzz/fuzz_upstream
mkdir -p build-fuzz/artifacts
rc=0
for t in fuzz_config fuzz_conn fuzz_http fuzz_l2 fuzz_upstream; do
    work=build-fuzz/corpus/$t
    mkdir -p "$work"
    if UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 "build-fuzz/tests/fuzz/$t" \
        -max_total_time="$secs" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
        -seed="$seed" -print_final_stats=1 -artifact_prefix="build-fuzz/artifacts/$t-" \
        "$work" "tests/fuzz/corpus/$t" >"build-fuzz/$t.log" 2>&1; then
        echo "fuzz: $t ok ($(grep -o 'Done [0-9]* runs' "build-fuzz/$t.log" | tail -n 1) in ${secs}s)"
    else
        echo "fuzz: $t FAILED (log: build-fuzz/$t.log)"
        grep -A 30 -E '^==[0-9]+==ERROR|runtime error|deadly signal' "build-fuzz/$t.log" | head -n 60 || tail -n 40 "build-fuzz/$t.log"
        rc=1
    fi
done
exit $rc
