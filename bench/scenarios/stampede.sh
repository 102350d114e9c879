# shellcheck shell=bash disable=SC2034  # globals here are read by run.sh
# bench/scenarios/stampede.sh - the miss path under a stampede.
#
# CLIENTS (BENCH_STAMPEDE_CLIENTS, default 200) clients open their
# connections, then all send GET for ONE cold key back to back from one
# thread (bench/py/stampede_client.py, on the client CPU). The origin
# (bench/py/slow_origin.py) takes DELAY ms (BENCH_ORIGIN_DELAY_MS, default
# 200) per request and counts requests per path. A proxy that collapses the
# misses sends exactly one request to the origin; every client then waits
# about DELAY ms.
# Peers, each in front of the same slow origin:
#   strata       workers: 1, route /* cache-aside, tier ttl 10m, memory 256MiB
#   nginx-cache  nginx proxy_cache, proxy_cache_lock on, lock timeout 5s
#   varnish      varnishd (waiting list), if it can run here
# Each peer gets a fresh key every round: /cold/<peer>-<round>.
# Reported per peer: origin requests for its key, client latency p50 and max,
# statuses, and the cache headers the clients saw.

SCENARIO_TITLE="stampede: ${BENCH_STAMPEDE_CLIENTS:-200} concurrent clients on one cold key, origin ${BENCH_ORIGIN_DELAY_MS:-200} ms"

STAMPEDE_CLIENTS=${BENCH_STAMPEDE_CLIENTS:-200}
STAMPEDE_DELAY_MS=${BENCH_ORIGIN_DELAY_MS:-200}
declare -A ST_ORIGIN=() ST_P50=() ST_MAX=() ST_BAD=() ST_HDRS=()

scenario_stampede_setup() {
    strata_build
    slow_origin_start "$STAMPEDE_DELAY_MS"
    strata_start "$SLOW_ORIGIN_ADDR" cache-aside 10m
    nginx_cache_start "$SLOW_ORIGIN_ADDR"
    add_target strata "$STRATA_URL" "strata (1 worker, route /* cache-aside, tier ttl 10m, memory 256MiB)"
    add_target nginx-cache "$NGINX_CACHE_URL" "nginx proxy_cache (1 worker, proxy_cache_lock on, proxy_cache_lock_timeout 5s)"
    if varnish_available && varnish_start "$SLOW_ORIGIN_ADDR"; then
        add_target varnish "$VARNISH_URL" "Varnish (-s malloc,256m, thread_pools=1, built-in VCL)"
    else
        warn "Varnish skipped: $VARNISH_SKIP"
        REPORT_NOTES+="Varnish skipped: $VARNISH_SKIP"$'\n'
    fi
    if haproxy_available && haproxy_start "$SLOW_ORIGIN_ADDR"; then
        add_target haproxy "$HAPROXY_URL" "HAProxy (nbthread 1, cache section; it has no miss collapsing)"
    else
        warn "HAProxy skipped: $HAPROXY_SKIP"
        REPORT_NOTES+="HAProxy skipped: $HAPROXY_SKIP"$'\n'
    fi
    if ats_available && ats_start "$SLOW_ORIGIN_ADDR"; then
        add_target ats "$ATS_URL" "Apache Traffic Server (1 ET_NET thread, RAM cache; read-while-writer, open-read retries 50 x 10 ms)"
    else
        warn "ATS skipped: $ATS_SKIP"
        REPORT_NOTES+="ATS skipped: $ATS_SKIP"$'\n'
    fi
    BASELINE=nginx-cache
}

# stampede_once NAME ROUND - one stampede on a fresh key; records the results.
stampede_once() {
    local name=$1 round=$2 key out rc=0 count line
    key="/cold/$name-$round"
    out="$BENCH_TMP/stampede-$name-r$round.json"
    wait_quiet "$WAIT_QUIET"
    timeout --kill-after=5 60 "${PIN_CLIENT[@]}" "$BENCH_PYTHON" "$BENCH_DIR/py/stampede_client.py" \
        "${TARGET_URL[$name]}$key" "$STAMPEDE_CLIENTS" 30 >"$out" 2>"$out.err" || rc=$?
    ((rc == 0)) || { cat "$out.err" >&2; die "stampede client failed against $name (status $rc)"; }
    check_alive
    sleep 0.5   # let a late background fetch (if any) reach the origin before counting
    count=$(slow_origin_count "$key")
    line=$("$BENCH_PYTHON" - "$out" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
bad = sum(v for k, v in r["status"].items() if not k.startswith("2"))
hdrs = "; ".join(f"{v} x {k}" for k, v in sorted(r["headers"].items(), key=lambda kv: -kv[1]))
print(r["p50_ms"], r["max_ms"], bad, r["send_spread_ms"], json.dumps(r["status"]).replace(" ", ""), hdrs, sep="\t")
PY
)
    local p50 max bad spread statuses hdrs
    IFS=$'\t' read -r p50 max bad spread statuses hdrs <<<"$line"
    ST_ORIGIN[$name]+="$count "
    ST_P50[$name]+="$p50 "
    ST_MAX[$name]+="$max "
    ST_BAD[$name]=$((${ST_BAD[$name]:-0} + bad))
    ST_HDRS[$name]+="  - round $round (\`$key\`): $hdrs; statuses $statuses; sends spread over $spread ms"$'\n'
    log "round $round/$ROUNDS $name: origin requests for $key: $count; p50 $p50 ms, max $max ms;" \
        "non-2xx $bad; $hdrs"
    if [[ "$name" == strata && "$count" != 1 ]]; then
        warn "strata sent $count requests to the origin for $key (expected exactly 1)"
    fi
}

scenario_stampede_run() {
    local name round rc=0 total=0
    wait_quiet "$WAIT_QUIET"
    BUSY_START=$LAST_BUSY_PCT
    for ((round = 1; round <= ROUNDS; round++)); do
        for name in "${TARGET_NAMES[@]}"; do
            stampede_once "$name" "$round"
        done
    done
    report_header
    printf -- '- load: %s clients (bench/py/stampede_client.py, on %s), one GET each on one cold key, sent back to back from one thread; origin bench/py/slow_origin.py, %s ms per request; %s rounds alternating %s, fresh key per peer and round; pinning: %s\n' \
        "$STAMPEDE_CLIENTS" "$( ((${#PIN_CLIENT[@]})) && echo "CPU 1" || echo "any CPU")" "$STAMPEDE_DELAY_MS" \
        "$ROUNDS" "$(IFS=/; echo "${TARGET_NAMES[*]}")" "$PINNING"
    printf '\n| target | origin requests per round | p50 ms (median) | p50 range | max ms (median) | max range | non-2xx |\n'
    printf '|---|---|---:|---:|---:|---:|---:|\n'
    local counts
    for name in "${TARGET_NAMES[@]}"; do
        counts=${ST_ORIGIN[$name]% }
        # shellcheck disable=SC2086  # word-splitting the per-round lists is intended
        printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$name" "${counts// /, }" \
            "$(fmt_ms "$(median ${ST_P50[$name]})")" "$(fmt_range_ms ${ST_P50[$name]})" \
            "$(fmt_ms "$(median ${ST_MAX[$name]})")" "$(fmt_range_ms ${ST_MAX[$name]})" "${ST_BAD[$name]}"
        total=$((total + ST_BAD[$name]))
        if [[ -n "${BENCH_TSV:-}" ]]; then
            # shellcheck disable=SC2086
            printf 'stampede\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "${counts// /,}" "$(median ${ST_P50[$name]})" \
                "$(median ${ST_MAX[$name]})" "${ST_BAD[$name]}" "$(printf "%s\n" ${ST_MAX[$name]} | sort -g | tail -n 1)" >>"$BENCH_TSV.stampede"
        fi
    done
    printf '\nWhat the clients saw:\n\n'
    for name in "${TARGET_NAMES[@]}"; do
        printf -- '- %s - %s\n%s' "$name" "${TARGET_DESC[$name]}" "${ST_HDRS[$name]}"
    done
    [[ -z "$REPORT_NOTES" ]] || printf '\n%s' "$REPORT_NOTES"
    # shellcheck disable=SC2086
    for round in ${ST_ORIGIN[strata]}; do
        if [[ "$round" != 1 ]]; then
            printf '\n**strata sent more than one origin request for one key:** %s\n' "${ST_ORIGIN[strata]}"
            rc=3
            break
        fi
    done
    ((total == 0)) || { printf '\n**Errors:** non-2xx answers or failed requests (column above).\n'; rc=3; }
    printf '\n'
    return "$rc"
}
