# shellcheck shell=bash disable=SC2034  # globals here are read by run.sh
# bench/scenarios/cache-hit.sh - the cache hit path, side by side.
#
# Every target answers GET /item/1 .. /item/N (N = BENCH_KEYS, default 1000)
# with the same 1 KiB JSON body; wrk walks the keys with bench/lua/walk-keys.lua.
# Targets (measured in this order, alternating, every round):
#   strata       workers: 1, route /* cache-aside, tier ttl 10m, memory 256MiB
#   nginx-cache  nginx proxy_cache, 1 worker (the baseline)
#   varnish      varnishd, malloc 256m, 1 thread pool (skipped, with the
#                reason in the report, if varnishd cannot run here)
#   limit        the nginx origin itself: the body from memory, no proxying
# All in front of one nginx origin whose /item/ answers carry
# Cache-Control: max-age=3600. Before measuring, every key is requested once
# per target (the fill) and then once more, and the second answer must be a
# hit: strata `Cache-Status: strata; hit`, nginx `X-Cache-Status: HIT`,
# Varnish `X-Varnish` with two ids. The servers' CPU time per run gives
# requests per CPU-second, the figure that still separates the servers when
# wrk's own core is the bottleneck.
#
# cache_hit_setup_common KEYS - the shared setup (also used by cache-hot.sh).

SCENARIO_TITLE="cache hit path: strata vs nginx proxy_cache vs Varnish vs the origin (limit), ${BENCH_KEYS:-1000} keys"

declare -A TARGET_HIT=()   # target -> "header:regex" that a cache hit carries
CACHE_KEYS=1000

cache_hit_setup_common() {
    CACHE_KEYS=$1
    strata_build
    origin_nginx_start "max-age=3600"
    strata_start "$ORIGIN_ADDR" cache-aside 10m
    nginx_cache_start "$ORIGIN_ADDR"
    add_target strata "$STRATA_URL/item/1" \
        "strata (1 worker, route /* cache-aside, tier ttl 10m, memory 256MiB)" "$STRATA_PID"
    TARGET_HIT[strata]="cache-status:^strata; hit"
    add_target nginx-cache "$NGINX_CACHE_URL/item/1" \
        "nginx proxy_cache (1 worker, keys_zone, proxy_cache_lock on, upstream keepalive 64$(
            [[ "${BENCH_NGINX_OPEN_FILE_CACHE:-0}" != 1 ]] || echo ", open_file_cache max=10000"))" "$NGINX_CACHE_PID"
    TARGET_HIT[nginx-cache]="x-cache-status:^HIT$"
    if varnish_available && varnish_start "$ORIGIN_ADDR"; then
        add_target varnish "$VARNISH_URL/item/1" \
            "Varnish $(varnishd -V 2>&1 | head -n 1 | cut -d' ' -f2 | tr -d '(') (-s malloc,256m, thread_pools=1, built-in VCL)" \
            "$VARNISH_PID"
        TARGET_HIT[varnish]="x-varnish:^[0-9]+ [0-9]+$"
    else
        warn "Varnish skipped: $VARNISH_SKIP"
        REPORT_NOTES+="Varnish skipped: $VARNISH_SKIP"$'\n'
    fi
    add_target limit "$ORIGIN_URL/item/1" "the nginx origin itself: return 200 from memory, no proxying (the limit)" \
        "$ORIGIN_PID"
    BASELINE=nginx-cache
    LIMIT=limit
}

scenario_cache-hit_setup() {
    cache_hit_setup_common "${BENCH_KEYS:-1000}"
    WRK_SCRIPT="$BENCH_DIR/lua/walk-keys.lua"
    WRK_SCRIPT_ARGS=("$CACHE_KEYS" /item/)
}

scenario_cache-hit_prepare() { cache_fill_and_check; }

# cache_fill_and_check - per target: request every key once (all must be
# 200), then again: count the answers that carry the target's hit marker.
# A cache target with a missed key is reported, not hidden.
cache_fill_and_check() {
    local name base spec hdr re out n ok hits bad line col
    local fmt='%{http_code}\t%header{cache-status}\t%header{x-cache-status}\t%header{x-varnish}\t%header{age}\n'
    for name in "${TARGET_NAMES[@]}"; do
        base=${TARGET_URL[$name]%/item/*}
        out="$BENCH_TMP/fill-$name.txt"
        curl -s --max-time 60 -o /dev/null -w "$fmt" "$base/item/[1-$CACHE_KEYS]" >"$out" || true
        n=$(wc -l <"$out")
        ok=$(awk -F'\t' '$1 == 200' "$out" | wc -l)
        ((n == CACHE_KEYS && ok == CACHE_KEYS)) \
            || die "$name: fill answered $ok x 200 out of $n responses for $CACHE_KEYS keys ($out)"
        spec=${TARGET_HIT[$name]:-}
        [[ -n "$spec" ]] || { log "$name: $CACHE_KEYS keys answer 200 (not a cache)"; continue; }
        out="$BENCH_TMP/check-$name.txt"
        curl -s --max-time 60 -o /dev/null -w "$fmt" "$base/item/[1-$CACHE_KEYS]" >"$out" || true
        hdr=${spec%%:*} re=${spec#*:}
        col=$(case $hdr in cache-status) echo 2 ;; x-cache-status) echo 3 ;; x-varnish) echo 4 ;; esac)
        hits=$(awk -F'\t' -v c="$col" -v re="$re" '$1 == 200 && $c ~ re' "$out" | wc -l)
        line=$(head -n 1 "$out" | cut -f"$col")
        if ((hits == CACHE_KEYS)); then
            log "$name: filled $CACHE_KEYS keys; second pass: $hits/$CACHE_KEYS hits (e.g. $hdr: $line)"
            REPORT_NOTES+="- $name: after the fill, $hits/$CACHE_KEYS keys answered as hits ($hdr matching \`$re\`)."$'\n'
        else
            bad=$(awk -F'\t' -v c="$col" -v re="$re" '!($1 == 200 && $c ~ re)' "$out" | head -n 3 | tr '\t' ' ' | tr '\n' ';')
            warn "$name: only $hits/$CACHE_KEYS keys were hits on the second pass; e.g. $bad"
            REPORT_NOTES+="- **$name: only $hits/$CACHE_KEYS keys answered as hits after the fill** (e.g. \`$bad\`)."$'\n'
        fi
    done
}
