# shellcheck shell=bash disable=SC2034  # globals here are read by run.sh
# bench/scenarios/cache-conn.sh - the hit path with a new connection per
# request (no keep-alive).
#
# Same peers as cache-hit.sh, one cached key (/item/1, 1 KiB). Two loads:
#   1. wrk -H "Connection: close" (64 connections, each closed by the server
#      after its one answer and reopened at once by wrk): the maximum rate of
#      new connections per second each server sustains (= its req/s).
#   2. bench/py/paced_conn.py: a paced client that opens BENCH_CONN_RATE
#      (default 1000) new connections per second for BENCH_CONN_SECONDS
#      (default 10) s, each sending one GET with Connection: close, on its
#      own schedule (open loop: a late server makes the following
#      connections late, and that wait counts in their latency). It reports
#      latency p50/p99/max from the scheduled start to the last byte, and
#      errors. This is the 1,000 connections/s load itself; plain wrk cannot
#      pace connections.
# Both alternate the targets, ROUNDS rounds each.

# shellcheck source=scenarios/cache-hit.sh
. "$BENCH_DIR/scenarios/cache-hit.sh"

SCENARIO_TITLE="cache hit path, a new connection per request (Connection: close), one key: strata vs peers vs the origin (limit)"

CONN_RATE=${BENCH_CONN_RATE:-1000}
CONN_SECONDS=${BENCH_CONN_SECONDS:-10}
declare -A PC_P50=() PC_P99=() PC_MAX=() PC_ERR=() PC_RATE=()

scenario_cache-conn_setup() {
    cache_hit_setup_common 1
    WRK_SCRIPT=""
    WRK_SCRIPT_ARGS=()
    WRK_EXTRA_ARGS=(-H "Connection: close")
}

scenario_cache-conn_prepare() { cache_fill_and_check; }

# After the wrk rounds: the paced client, alternating, ROUNDS rounds.
scenario_cache-conn_after() {
    local round name out line p50 p99 max err rate
    for ((round = 1; round <= ROUNDS; round++)); do
        for name in "${TARGET_NAMES[@]}"; do
            out="$BENCH_TMP/paced-$name-r$round.json"
            wait_quiet "$WAIT_QUIET"
            timeout --kill-after=5 $((CONN_SECONDS + 60)) "${PIN_CLIENT[@]}" "$BENCH_PYTHON" \
                "$BENCH_DIR/py/paced_conn.py" "${TARGET_URL[$name]}" "$CONN_RATE" "$CONN_SECONDS" \
                >"$out" 2>"$out.err" || { cat "$out.err" >&2; die "paced client failed against $name"; }
            check_alive
            line=$("$BENCH_PYTHON" -c 'import json,sys; r=json.load(open(sys.argv[1]))
print(r["p50_ms"], r["p99_ms"], r["max_ms"], r["errors"], r["achieved_per_s"])' "$out")
            read -r p50 p99 max err rate <<<"$line"
            PC_P50[$name]+="$p50 " PC_P99[$name]+="$p99 " PC_MAX[$name]+="$max " PC_RATE[$name]+="$rate "
            PC_ERR[$name]=$((${PC_ERR[$name]:-0} + err))
            log "paced round $round/$ROUNDS $name: $rate conn/s, p50 $p50 ms, p99 $p99 ms, max $max ms, errors $err"
        done
    done
    {
        printf '\nPaced client (`bench/py/paced_conn.py`, %s new connections/s for %s s, Connection: close, on the client CPU; latency from the scheduled start to the last byte):\n\n' \
            "$CONN_RATE" "$CONN_SECONDS"
        printf '| target | achieved conn/s (median) | p50 ms (median) | p99 ms (median) | p99 range | max ms (median) | errors |\n|---|---:|---:|---:|---:|---:|---:|\n'
        for name in "${TARGET_NAMES[@]}"; do
            # shellcheck disable=SC2086
            printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$name" "$(fmt_rps "$(median ${PC_RATE[$name]})")" \
                "$(fmt_ms "$(median ${PC_P50[$name]})")" "$(fmt_ms "$(median ${PC_P99[$name]})")" \
                "$(fmt_range_ms ${PC_P99[$name]})" "$(fmt_ms "$(median ${PC_MAX[$name]})")" "${PC_ERR[$name]}"
            if [[ -n "${BENCH_TSV:-}" ]]; then
                # shellcheck disable=SC2086
                printf 'cache-conn-paced\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" \
                    "$(median ${PC_RATE[$name]})" "$(median ${PC_P50[$name]})" "$(median ${PC_P99[$name]})" \
                    "$(range ${PC_P99[$name]})" "$(median ${PC_MAX[$name]})" "${PC_ERR[$name]}" \
                    "${TARGET_INVALID[$name]:-}" "-" "-" >>"$BENCH_TSV.paced"
            fi
        done
    } >"$BENCH_TMP/after.md"
    REPORT_EXTRA=$(<"$BENCH_TMP/after.md")
}
