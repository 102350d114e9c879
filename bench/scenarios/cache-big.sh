# shellcheck shell=bash disable=SC2034  # globals here are read by run.sh
# bench/scenarios/cache-big.sh - the hit path with 100 KB bodies.
#
# Same peers as cache-hit.sh, but the keys are /big/1 .. /big/N (N =
# BENCH_BIG_KEYS, default 100), each a BENCH_BIG_BYTES (default 102400) JSON
# body with Cache-Control: max-age=3600. wrk walks the keys with
# bench/lua/walk-keys.lua. The figure that matters is bytes per second
# (wrk's Transfer/sec, reported in MB/s). The limit is the nginx origin
# sending the same body from its page cache (sendfile, open_file_cache).

# shellcheck source=scenarios/cache-hit.sh
. "$BENCH_DIR/scenarios/cache-hit.sh"

SCENARIO_TITLE="cache hit path, ${BENCH_BIG_KEYS:-100} keys of $((${BENCH_BIG_BYTES:-102400} / 1024)) KiB: strata vs peers vs the origin (limit)"

scenario_cache-big_setup() {
    cache_hit_setup_common "${BENCH_BIG_KEYS:-100}" /big/
    WRK_SCRIPT="$BENCH_DIR/lua/walk-keys.lua"
    WRK_SCRIPT_ARGS=("$CACHE_KEYS" /big/)
    REPORT_MBS=1
}

scenario_cache-big_prepare() { cache_fill_and_check; }
