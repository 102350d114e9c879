# shellcheck shell=bash disable=SC2034  # globals here are read by run.sh
# bench/lib/scale.sh - `bench/run.sh scale`: does the memory tier's hit path
# scale with threads? Builds and runs bench/cache_scale.c (lookups per
# second from 1 to nproc threads, lock-free peek against a mutex + refcount
# lookup, one hot key and 1,000 keys; BENCH_SCALE_SECONDS per run, default
# 3) and appends its table to bench/results/scale-<date>.md.

run_scale() {
    ensure_tools meson:meson ninja:ninja-build
    local bdir=${BENCH_BUILD_DIR:-$REPO_ROOT/build-bench} out results
    BENCH_TMP=$(mktemp -d /tmp/strata-bench.XXXXXX)
    trap cleanup EXIT
    {
        if [[ -f "$bdir/build.ninja" ]]; then
            meson configure "$bdir" -Dbuildtype=release
        else
            meson setup "$bdir" "$REPO_ROOT" --buildtype=release
        fi && ninja -C "$bdir" bench/cache_scale
    } >"$BENCH_TMP/build.log" 2>&1 || {
        tail -n 40 "$BENCH_TMP/build.log" >&2
        die "cache_scale build failed (log above)"
    }
    out="$BENCH_TMP/scale.md"
    {
        printf '## %s - memory tier hit path, 1 to %s threads (bench/cache_scale)\n\n' \
            "$(date -u '+%Y-%m-%d %H:%M UTC')" "$(nproc)"
        printf -- '- machine: %s, %s CPUs, %s; commit %s\n\n' "$(uname -m)" "$(nproc)" \
            "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null)" \
            "$(git -C "$REPO_ROOT" describe --always --dirty 2>/dev/null || echo unknown)"
        "$bdir/bench/cache_scale" "${BENCH_SCALE_SECONDS:-3}"
        printf '\n'
    } >"$out" || die "cache_scale failed"
    cat "$out"
    mkdir -p "$RESULTS_DIR"
    results="$RESULTS_DIR/scale-$(date -u +%Y-%m-%d).md"
    cat "$out" >>"$results"
    log "appended to $results"
}
