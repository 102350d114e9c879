# shellcheck shell=bash disable=SC2034,SC2153  # run.sh reads these; strata_start sets STRATA_PID
# bench/scenarios/alloc.sh - what strata's page release costs, under the load that frees
# the most pages.
#
# jemalloc decays an arena's freed pages only while the arena is in use, so the server
# purges every arena every 10 s (st_alloc_release, proxy/base/alloc.c): a burst's pages go
# back even when its worker goes quiet. Targets, strata instances with the same config in
# front of the nginx origin:
#   shipped  STRATA_BIN as built (the periodic purge)
#   purge0   the same with MALLOC_CONF=dirty_decay_ms:0 (jemalloc purges every freed page
#            run at once)
#   base     BENCH_ALLOC_BASE_BIN, if set: another build to compare with (e.g. one without
#            the periodic purge); then the baseline, else shipped is
# Load (BENCH_ALLOC_LOAD):
#   miss    (default) cache-aside, memory tier 32 MiB (BENCH_STRATA_MEMORY), wrk walking
#           1,000,000 keys of 100 KiB (BENCH_BIG_BYTES): every request a miss, a 100 KiB
#           entry stored and, once the tier is full, one evicted
#   bypass  strategy bypass, the 1 KiB body: buffers and connections only

SCENARIO_TITLE="allocator: periodic purge (shipped) vs dirty_decay_ms:0${BENCH_ALLOC_BASE_BIN:+ vs $BENCH_ALLOC_BASE_BIN}, load ${BENCH_ALLOC_LOAD:-miss}"

scenario_alloc_setup() {
    local load=${BENCH_ALLOC_LOAD:-miss} strategy=bypass ttl="" path=/api/v1/items/42
    local name bin shipped
    strata_build
    shipped=$STRATA_BIN
    origin_nginx_start "max-age=3600"
    case "$load" in
        miss)
            strategy=cache-aside ttl=10m path=/big/1
            : "${BENCH_STRATA_MEMORY:=32MiB}"
            WRK_SCRIPT="$BENCH_DIR/lua/walk-keys.lua"
            WRK_SCRIPT_ARGS=(1000000 /big/)
            REPORT_MBS=1
            ;;
        bypass) ;;
        *) die "BENCH_ALLOC_LOAD=$load: miss or bypass" ;;
    esac
    BASELINE=shipped
    for name in shipped purge0 ${BENCH_ALLOC_BASE_BIN:+base}; do
        BENCH_WRAP=() bin=$shipped
        [[ "$name" != purge0 ]] || BENCH_WRAP=(env MALLOC_CONF=dirty_decay_ms:0)
        if [[ "$name" == base ]]; then
            bin=$BENCH_ALLOC_BASE_BIN BASELINE=base
            [[ -x "$bin" ]] || die "BENCH_ALLOC_BASE_BIN=$bin is not executable"
        fi
        STRATA_BIN=$bin STRATA_INSTANCE="strata-$name" strata_start "$ORIGIN_ADDR" "$strategy" "$ttl"
        add_target "$name" "$STRATA_URL$path" \
            "strata $bin (1 worker, route /* $strategy${ttl:+, memory $BENCH_STRATA_MEMORY})${BENCH_WRAP[*]:+, ${BENCH_WRAP[*]:1}}" \
            "$STRATA_PID"
    done
    BENCH_WRAP=() STRATA_BIN=$shipped
}
