# shellcheck shell=bash disable=SC2034  # globals here are read by run.sh
# bench/lib/scale.sh - `bench/run.sh scale`: does the memory tier's hit path
# scale with threads? Builds and runs bench/cache_scale.c (lookups per
# second from 1 to nproc threads (at most 64), lock-free peek against a mutex + refcount
# lookup, one hot key and 1,000 keys; BENCH_SCALE_SECONDS per run, default
# 1, five alternating rounds, medians) and appends its table to bench/results/scale-<date>.md.

run_scale() {
    ensure_tools meson:meson ninja:ninja-build
    local out results threads
    BENCH_TMP=$(mktemp -d /tmp/strata-bench.XXXXXX)
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    bench_build bench/cache_scale
    out="$BENCH_TMP/scale.md"
    threads=$(nproc)
    ((threads <= 64)) || threads=64
    {
        printf '## %s - memory tier hit path, 1 to %s threads (bench/cache_scale)\n\n' \
            "$(date -u '+%Y-%m-%d %H:%M UTC')" "$threads"
        printf -- '- machine: %s, %s CPUs, %s; commit %s\n\n' "$(uname -m)" "$(nproc)" \
            "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null)" \
            "$(git -C "$REPO_ROOT" describe --always --dirty 2>/dev/null || echo unknown)"
    } >"$out"
    "$BENCH_BUILD/bench/cache_scale" "${BENCH_SCALE_SECONDS:-1}" "$threads" >>"$out" || die "cache_scale failed: $(cat "$out")"
    printf '\n' >>"$out"
    cat "$out"
    mkdir -p "$RESULTS_DIR"
    results="$RESULTS_DIR/scale-$(date -u +%Y-%m-%d).md"
    cat "$out" >>"$results"
    log "appended to $results"
}
