# shellcheck shell=bash disable=SC2034  # globals here are read by run.sh
# bench/peers/slow-origin.sh - the slow origin of the stampede scenario:
# bench/py/slow_origin.py (Python ThreadingHTTPServer), DELAY ms per request,
# 1 KiB body with Cache-Control: max-age=3600, requests counted per path.
#
# slow_origin_start [DELAY_MS] - start it on 127.0.0.1:<free port>.
#   Sets SLOW_ORIGIN_ADDR, SLOW_ORIGIN_URL, SLOW_ORIGIN_PID.
# slow_origin_count PATH - how many requests the origin got for PATH.

# Debian's interpreter: the python3 first on PATH may be another one.
BENCH_PYTHON=${BENCH_PYTHON:-$(command -v /usr/bin/python3 || command -v python3)}

slow_origin_start() {
    local delay=${1:-200} dir="$BENCH_TMP/slow-origin" port
    mkdir -p "$dir"
    port=$(free_port)
    spawn slow-origin "$dir/origin.log" "$BENCH_PYTHON" "$BENCH_DIR/py/slow_origin.py" "$port" "$delay"
    SLOW_ORIGIN_PID=$SPAWNED_PID
    SLOW_ORIGIN_ADDR="127.0.0.1:$port"
    SLOW_ORIGIN_URL="http://$SLOW_ORIGIN_ADDR"
    wait_http "$SLOW_ORIGIN_URL/health" "$SLOW_ORIGIN_PID"
    log "slow origin on $SLOW_ORIGIN_ADDR (${delay} ms per request)"
}

slow_origin_count() {
    curl -s --max-time 5 "$SLOW_ORIGIN_URL/count?path=$1" \
        | "$BENCH_PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["count"])'
}
