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
declare -A TARGET_INVALID=()   # target -> why its figures are not valid (missed keys)
CACHE_KEYS=1000
CACHE_PREFIX=/item/

# BENCH_PEERS: which caches to start (space-separated). Default: every peer;
# nginx-cache-ofc is dropped when BENCH_NGINX_OPEN_FILE_CACHE=1 (then
# nginx-cache itself has open_file_cache on).
BENCH_PEERS=${BENCH_PEERS:-strata nginx-cache nginx-cache-ofc varnish haproxy ats}
[[ "${BENCH_NGINX_OPEN_FILE_CACHE:-0}" != 1 ]] || BENCH_PEERS=${BENCH_PEERS//nginx-cache-ofc/}
want_peer() { [[ " $BENCH_PEERS " == *" $1 "* ]]; }

# start_cache_peers UPSTREAM PATH - start every wanted cache in front of
# UPSTREAM and register it as a target for PATH (with its hit marker).
start_cache_peers() {
    local up=$1 path=$2
    if want_peer strata; then
        strata_start "$up" cache-aside 10m
        add_target strata "$STRATA_URL$path" \
            "strata (1 worker, route /* cache-aside, tier ttl 10m, memory 256MiB)" "$STRATA_PID"
        TARGET_HIT[strata]="cache-status:^strata; hit"
    fi
    if want_peer nginx-cache; then
        nginx_cache_start "$up"
        add_target nginx-cache "$NGINX_CACHE_URL$path" \
            "nginx proxy_cache (1 worker, keys_zone, proxy_cache_lock on, upstream keepalive 64$(
                [[ "${BENCH_NGINX_OPEN_FILE_CACHE:-0}" != 1 ]] || echo ", open_file_cache max=10000"))" "$NGINX_CACHE_PID"
        TARGET_HIT[nginx-cache]="x-cache-status:^HIT$"
    fi
    if want_peer nginx-cache-ofc; then
        nginx_cache_start "$up" nginx-cache-ofc 1
        add_target nginx-cache-ofc "$NGINX_CACHE_URL$path" \
            "nginx proxy_cache as nginx-cache, plus open_file_cache max=10000" "$NGINX_CACHE_PID"
        TARGET_HIT[nginx-cache-ofc]="x-cache-status:^HIT$"
    fi
    if want_peer varnish; then
        if varnish_available && varnish_start "$up"; then
            add_target varnish "$VARNISH_URL$path" \
                "Varnish $(varnishd -V 2>&1 | head -n 1 | cut -d' ' -f2 | tr -d '(') (-s malloc,256m, thread_pools=1, built-in VCL)" \
                "$VARNISH_PID"
            TARGET_HIT[varnish]="x-varnish:^[0-9]+ [0-9]+$"
        else
            warn "Varnish skipped: $VARNISH_SKIP"
            REPORT_NOTES+="- Varnish skipped: $VARNISH_SKIP"$'\n'
        fi
    fi
    if want_peer haproxy; then
        if haproxy_available && haproxy_start "$up"; then
            add_target haproxy "$HAPROXY_URL$path" \
                "HAProxy $(haproxy -v | head -n 1 | cut -d' ' -f3) (nbthread 1, cache section 256 MB, max-object-size 1 MiB, max-age 3600)" \
                "$HAPROXY_PID"
            TARGET_HIT[haproxy]="x-cache-status:^HIT$"
        else
            warn "HAProxy skipped: $HAPROXY_SKIP"
            REPORT_NOTES+="- HAProxy skipped: $HAPROXY_SKIP"$'\n'
        fi
    fi
    if want_peer ats; then
        if ats_available && ats_start "$up"; then
            add_target ats "$ATS_URL$path" \
                "Apache Traffic Server $(traffic_server -V 2>&1 | grep -o ' - [0-9][0-9.]*' | head -n 1 | tr -d ' -') (1 ET_NET thread, RAM cache 256 MB)" \
                "$ATS_PID"
            TARGET_HIT[ats]="via:[[]c[HR]"
        else
            warn "ATS skipped: $ATS_SKIP"
            REPORT_NOTES+="- Apache Traffic Server skipped: $ATS_SKIP"$'\n'
        fi
    fi
}

# cache_hit_setup_common KEYS [PREFIX [FIRST_PATH]] - the shared setup of the
# hit scenarios (cache-hit, cache-hot, cache-big, cache-conn).
cache_hit_setup_common() {
    CACHE_KEYS=$1
    CACHE_PREFIX=${2:-/item/}
    local path=${3:-${CACHE_PREFIX}1}
    strata_build
    origin_nginx_start "max-age=3600"
    start_cache_peers "$ORIGIN_ADDR" "$path"
    add_target limit "$ORIGIN_URL$path" "the nginx origin itself: return 200 from memory, no proxying (the limit)" \
        "$ORIGIN_PID"
    if want_peer nginx-cache; then BASELINE=nginx-cache; else BASELINE=${TARGET_NAMES[0]}; fi
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
    local fmt='%{http_code}\t%header{cache-status}\t%header{x-cache-status}\t%header{x-varnish}\t%header{age}\t%header{via}\n'
    for name in "${TARGET_NAMES[@]}"; do
        base=${TARGET_URL[$name]%"$CACHE_PREFIX"*}
        out="$BENCH_TMP/fill-$name.txt"
        curl -s --max-time 60 -o /dev/null -w "$fmt" "$base$CACHE_PREFIX[1-$CACHE_KEYS]" >"$out" || true
        n=$(wc -l <"$out")
        ok=$(awk -F'\t' '$1 == 200' "$out" | wc -l)
        ((n == CACHE_KEYS && ok == CACHE_KEYS)) \
            || die "$name: fill answered $ok x 200 out of $n responses for $CACHE_KEYS keys ($out)"
        spec=${TARGET_HIT[$name]:-}
        [[ -n "$spec" ]] || { log "$name: $CACHE_KEYS keys answer 200 (not a cache)"; continue; }
        out="$BENCH_TMP/check-$name.txt"
        curl -s --max-time 60 -o /dev/null -w "$fmt" "$base$CACHE_PREFIX[1-$CACHE_KEYS]" >"$out" || true
        hdr=${spec%%:*} re=${spec#*:}
        col=$(case $hdr in cache-status) echo 2 ;; x-cache-status) echo 3 ;; x-varnish) echo 4 ;; via) echo 6 ;; esac)
        hits=$(awk -F'\t' -v c="$col" -v re="$re" '$1 == 200 && $c ~ re' "$out" | wc -l)
        line=$(head -n 1 "$out" | cut -f"$col")
        if ((hits == CACHE_KEYS)); then
            log "$name: filled $CACHE_KEYS keys; second pass: $hits/$CACHE_KEYS hits (e.g. $hdr: $line)"
            REPORT_NOTES+="- $name: after the fill, $hits/$CACHE_KEYS keys answered as hits ($hdr matching \`$re\`)."$'\n'
        else
            bad=$(awk -F'\t' -v c="$col" -v re="$re" '!($1 == 200 && $c ~ re)' "$out" | head -n 3 | tr '\t' ' ' | tr '\n' ';')
            warn "$name: only $hits/$CACHE_KEYS keys were hits on the second pass; e.g. $bad"
            REPORT_NOTES+="- **$name: only $hits/$CACHE_KEYS keys answered as hits after the fill** (e.g. \`$bad\`): its figures are INVALID."$'\n'
            TARGET_INVALID[$name]="$hits/$CACHE_KEYS hits after the fill"
        fi
    done
}
