# shellcheck shell=bash disable=SC2034  # globals here are read by run.sh
# bench/scenarios/cache-hot.sh - the cache hit path on one hot key.
#
# Same peers and targets as cache-hit.sh (strata, nginx proxy_cache, Varnish,
# the origin as the limit), but every request is GET /item/1: no wrk script,
# wrk sends its one prebuilt request, which keeps the load generator as fast
# as it gets. Measures the best case of each cache's lookup.

# shellcheck source=scenarios/cache-hit.sh
. "$BENCH_DIR/scenarios/cache-hit.sh"

SCENARIO_TITLE="cache hit path, one hot key: strata vs nginx proxy_cache vs Varnish vs the origin (limit)"

scenario_cache-hot_setup() {
    cache_hit_setup_common 1
    WRK_SCRIPT=""
    WRK_SCRIPT_ARGS=()
}

scenario_cache-hot_prepare() { cache_fill_and_check; }
