# shellcheck shell=bash disable=SC2034  # globals here are read by run.sh
# bench/scenarios/proxy.sh - pure proxy overhead.
#
# strata with one `/*` route, strategy bypass (nothing cached), in front of the
# nginx origin, against the same origin hit directly. Every request goes
# through strata's parse -> route -> upstream pool -> origin -> response path,
# so the ratio is the cost of the extra hop on one core.
#
# A scenario defines scenario_<name>_setup, which starts its peers and
# registers targets with add_target NAME URL DESCRIPTION (measured in that
# order, alternating, every round) and sets BASELINE to the target the
# others are compared with.

SCENARIO_TITLE="proxy overhead: strata bypass vs origin direct"

scenario_proxy_setup() {
    strata_build
    origin_nginx_start
    strata_start "$ORIGIN_ADDR" bypass
    local path=/api/v1/items/42
    add_target strata "$STRATA_URL$path" "strata (1 worker, route /* bypass, upstream keepalive 64) -> nginx origin"
    add_target direct "$ORIGIN_URL$path" "nginx origin hit directly (1 worker, return 200)"
    BASELINE=direct
}
