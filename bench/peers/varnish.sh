# shellcheck shell=bash disable=SC2034  # globals here are read by run.sh
# bench/peers/varnish.sh - Varnish Cache from Debian (`varnish` package) as a
# caching reverse proxy: `varnishd -F` with the built-in VCL and one backend
# (-b), malloc storage, one thread pool. Varnish coalesces concurrent misses
# on its waiting list. `X-Varnish: <id> <id>` (two ids) and `Age` mark a hit.
#
# varnish_available - 0 when varnishd is there (installs the package with
#   apt-get if missing); otherwise 1 and VARNISH_SKIP says why.
# varnish_start UPSTREAM_ADDR - start it on 127.0.0.1:<free port>.
#   Sets VARNISH_ADDR, VARNISH_URL, VARNISH_PID; returns 1 (with
#   VARNISH_SKIP set) if varnishd does not come up.
#
# Threads: -p thread_pools=1, thread_pool_min=BENCH_VARNISH_THREADS_MIN
# (default 250: every one of the stampede's 200 clients gets a thread without
# waiting for the pool to grow), thread_pool_max=1000.

VARNISH_SKIP=""

varnish_available() {
    if ! have_tool varnishd; then
        ensure_tools varnishd:varnish 2>/dev/null || true
    fi
    have_tool varnishd && return 0
    VARNISH_SKIP="varnishd not installed and apt-get install varnish failed"
    return 1
}

varnish_start() {
    local upstream=$1 dir="$BENCH_TMP/varnish" port bin i
    bin=$(tool_path varnishd) || { VARNISH_SKIP="varnishd not found"; return 1; }
    mkdir -p "$dir"
    port=$(free_port)
    SPAWN_OK_RC=64   # the manager exits 64 after SIGTERM ("manager dies")
    spawn varnish "$dir/varnishd.log" "$bin" -F -a "127.0.0.1:$port" -b "$upstream" \
        -s "malloc,${BENCH_VARNISH_MEMORY:-256m}" -n "$dir/work" \
        -p thread_pools=1 -p "thread_pool_min=${BENCH_VARNISH_THREADS_MIN:-250}" \
        -p thread_pool_max=1000 -p default_ttl=600
    VARNISH_PID=$SPAWNED_PID
    VARNISH_ADDR="127.0.0.1:$port"
    VARNISH_URL="http://$VARNISH_ADDR"
    for ((i = 0; i < 100; i++)); do
        if ! kill -0 "$VARNISH_PID" 2>/dev/null; then
            VARNISH_SKIP="varnishd exited at start: $(tail -n 3 "$dir/varnishd.log" | tr '\n' ' ')"
            stop_pid "$VARNISH_PID"
            return 1
        fi
        grep -q 'Child launched OK' "$dir/varnishd.log" 2>/dev/null && port_in_use "$port" && break
        sleep 0.1
    done
    if ((i == 100)); then
        VARNISH_SKIP="varnishd did not listen on $VARNISH_ADDR within 10s: $(tail -n 3 "$dir/varnishd.log" | tr '\n' ' ')"
        stop_pid "$VARNISH_PID"
        return 1
    fi
    log "varnish $("$bin" -V 2>&1 | head -n 1 | cut -d' ' -f2 | tr -d '(') on $VARNISH_ADDR -> $upstream"
}
