# shellcheck shell=bash disable=SC2034  # globals here are read by run.sh
# bench/scenarios/soak.sh - long-run behaviour: 30 minutes (BENCH_SOAK_SECONDS) of mixed
# load against one strata (2 workers) with a redis-server (AOF always) and a Python origin:
# 40% hits, 15% misses, 15% write-behind PUTs (25 keys per client), 3% purges, 17% bypassed GETs under a fleet
# rate limit, 10% malformed requests; the origin is killed and restarted every 2 minutes
# (BENCH_SOAK_ORIGIN_EVERY) and Redis every 5 (BENCH_SOAK_REDIS_EVERY). Reports the RSS
# slope after warm-up, every answer by kind (errors inside an injected outage apart from
# the rest), whether the connections settle and whether every acknowledged write reached
# the origin (bench/py/soak.py has the checks). Exit 1 when a check fails.
# .ci/run runs the same for 2 minutes.

SCENARIO_TITLE="soak: mixed load with the origin and Redis restarted"

scenario_soak_setup() {
    ensure_tools redis-server:redis-server redis-cli:redis-tools
    strata_build
}

scenario_soak_run() {
    "$BENCH_PYTHON" "$BENCH_DIR/py/soak.py" --strata "$STRATA_BIN" \
        --duration "${BENCH_SOAK_SECONDS:-1800}" \
        --origin-every "${BENCH_SOAK_ORIGIN_EVERY:-120}" \
        --redis-every "${BENCH_SOAK_REDIS_EVERY:-300}" \
        --sample-every "${BENCH_SOAK_SAMPLE_EVERY:-10}"
}
