# shellcheck shell=bash disable=SC2034  # globals here are read by run.sh
# bench/lib/memory.sh - `bench/run.sh memory`: what one cached object costs.
#
# Starts the nginx origin (1 KiB JSON bodies, BENCH_BODY_BYTES, with
# Cache-Control: max-age=3600) and strata with `workers: 1` and
# `cache.memory: 4GiB` (BENCH_STRATA_MEMORY), reads strata's RSS, then fills
# the memory tier through the server with wrk walking /item/1 ..
# /item/N (N = BENCH_MEMORY_OBJECTS, default 1,000,000) until /stats counts
# N entries, and reads the RSS again. Reports RSS per object (all told:
# start-up memory included) and growth per object, next to what the budget
# charges per entry (l1.bytes / entries). Appends the table to
# bench/results/memory-<date>.md.

# rss_bytes PID - resident set size of PID in bytes.
rss_bytes() {
    awk '/^VmRSS:/ { print $2 * 1024; exit }' "/proc/$1/status"
}

# l1_field NAME - a number from the l1 object of strata's /stats.
l1_field() {
    curl -s --max-time 5 "$STRATA_ADMIN_URL/stats" |
        "$BENCH_PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["l1"][sys.argv[1]])' "$1"
}

run_memory() {
    ensure_tools wrk:wrk nginx:nginx-light curl:curl meson:meson ninja:ninja-build
    setup_pinning
    BENCH_TMP=$(mktemp -d /tmp/strata-bench.XXXXXX)
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    local n=${BENCH_MEMORY_OBJECTS:-1000000} deadline=${BENCH_MEMORY_DEADLINE:-900}
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "BENCH_MEMORY_OBJECTS must be a positive integer"
    local rss0 rss1 rss_fill entries=0 bytes head_bytes section results t0 elapsed
    strata_build
    origin_nginx_start "max-age=3600"
    BENCH_STRATA_MEMORY=${BENCH_STRATA_MEMORY:-4GiB} strata_start "$ORIGIN_ADDR" cache-aside 1h
    rss0=$(rss_bytes "$STRATA_PID")
    head_bytes=$(curl -s -o /dev/null -D - "$ORIGIN_URL/item/1" | grep -v -i -E '^(content-length|connection|keep-alive):' | wc -c)
    log "filling $n objects through strata (wrk, /item/1 .. /item/$n)"
    t0=$(date +%s)
    "${PIN_CLIENT[@]}" "$(tool_path wrk)" -t1 -c64 -d"${deadline}s" -s "$BENCH_DIR/lua/walk-keys.lua" \
        "$STRATA_URL" -- "$n" /item/ >"$BENCH_TMP/wrk-fill.log" 2>&1 &
    WRK_PID=$!
    while :; do
        check_alive
        entries=$(l1_field entries || echo 0)
        ((entries >= n)) && break
        kill -0 "$WRK_PID" 2>/dev/null || die "wrk stopped with $entries of $n entries: $(tail -n 5 "$BENCH_TMP/wrk-fill.log")"
        sleep 1
    done
    stop_wrk
    elapsed=$(($(date +%s) - t0))
    entries=$(l1_field entries)
    bytes=$(l1_field bytes)
    rss_fill=$(rss_bytes "$STRATA_PID")
    log "filled in ${elapsed}s: $entries entries, RSS $rss0 -> $rss_fill bytes; letting the allocator settle"
    # jemalloc hands freed pages (retired bucket arrays, per-miss buffers)
    # back over ~10 s: read the RSS once it has stopped falling for 5 s.
    rss1=$rss_fill
    local steady=0 now i
    for ((i = 0; i < ${BENCH_MEMORY_SETTLE:-60} && steady < 5; i++)); do
        sleep 1
        now=$(rss_bytes "$STRATA_PID")
        if ((now < rss1)); then rss1=$now steady=0; else steady=$((steady + 1)); fi
    done
    log "settled RSS $rss1 bytes"
    section="$BENCH_TMP/memory.md"
    {
        printf '## %s - memory per cached object\n\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
        printf -- '- machine: %s, %s CPUs; strata %s, commit %s; jemalloc: %s\n' "$(uname -m)" "$(nproc)" \
            "$("$STRATA_BIN" --version 2>/dev/null)" \
            "$(git -C "$REPO_ROOT" describe --always --dirty 2>/dev/null || echo unknown)" \
            "$(grep -q jemalloc "/proc/$STRATA_PID/maps" && echo yes || echo no)"
        printf -- '- %s objects: GET /item/1 .. /item/%s through strata (`workers: 1`, `cache.memory: %s`) from the nginx origin: %s-byte JSON bodies, a %s-byte response head as stored (status line and headers, no Content-Length), keys of ~%s bytes; filled in %s s\n\n' \
            "$n" "$n" "${BENCH_STRATA_MEMORY:-4GiB}" "$ORIGIN_BODY_BYTES" "$((head_bytes - 2))" \
            "$((${#STRATA_ADDR} + 1 + ${#n} + 6))" "$elapsed"
        printf '| entries | RSS before | RSS at fill end | RSS settled | RSS per object (all told) | growth per object | budget charge per object | body bytes | target (1.3 GB per 1M) |\n'
        printf '|---:|---:|---:|---:|---:|---:|---:|---:|---|\n'
        awk -v e="$entries" -v r0="$rss0" -v rf="$rss_fill" -v r1="$rss1" -v b="$bytes" -v body="$ORIGIN_BODY_BYTES" 'BEGIN {
            per = r1 / e
            printf "| %d | %.1f MB | %.1f MB | %.1f MB | %.0f B | %.0f B | %.0f B | %d B | %s |\n", e, r0 / 1e6, rf / 1e6,
                r1 / 1e6, per, (r1 - r0) / e, b / e, body, (per * 1000000 <= 1.3e9) ? "met" : "missed"
        }'
        printf '\nRSS settled = once it has stopped falling for 5 s after the fill (the allocator returns freed pages over ~10 s); RSS per object = settled RSS / entries; growth = (settled - before) / entries; the budget charge is what `cache.memory` counts for an entry (its allocations as requested: record, links, key, stored head, body).\n\n'
    } >"$section"
    cat "$section"
    mkdir -p "$RESULTS_DIR"
    results="$RESULTS_DIR/memory-$(date -u +%Y-%m-%d).md"
    cat "$section" >>"$results"
    log "appended to $results"
}
