"""Stats and metrics that can be trusted: the origin latency histogram spans
100 us to a minute (with _sum and _count), per-route bypass counts move, every
route has its own id in /stats and /metrics, and promtool accepts /metrics."""

import re
import shutil
import subprocess

from harness import cache_config, cache_route, settle_stats


def metric(text, name, labels=""):
    m = re.search(rf"^{re.escape(name)}{re.escape(labels)} (\S+)$", text, re.M)
    assert m, f"{name}{labels} not in /metrics"
    return float(m.group(1))


def test_latency_histogram_sees_slow_origins(origin, strata):
    s = strata(config_text=lambda s: s.render(upstreams={
        "origin": {"servers": [s.origin_addr], "timeout": "10s"},
        "down": {"servers": [s.down_addr], "connect_timeout": "500ms"}}))
    assert s.get("/delay/500", timeout=10).status == 200
    assert s.get("/delay/3000", timeout=10).status == 200
    lat = settle_stats(s, {("origin", "latency", "origin", "count"): 2})["origin"]["latency"]["origin"]
    assert 500 <= lat["p50_ms"] <= 600, lat  # buckets are at most 19 % wide
    assert 3000 <= lat["p99_ms"] <= 3600, lat
    assert 3500 <= lat["sum_ms"] <= 3700, lat
    text = s.admin_get("/metrics").body.decode()
    lab = '{upstream="origin"}'
    assert metric(text, "strata_origin_latency_seconds_count", lab) == 2
    assert 3.5 <= metric(text, "strata_origin_latency_seconds_sum", lab) <= 3.7
    assert metric(text, "strata_origin_latency_seconds_bucket",
                  '{upstream="origin",le="+Inf"}') == 2
    buckets = [(float(le), float(n)) for le, n in
               re.findall(r'_bucket\{upstream="origin",le="([0-9.]+)"\} (\S+)', text)]
    assert buckets[0][0] <= 0.0001 and buckets[-1][0] >= 60, (buckets[0], buckets[-1])
    assert all(n == 0 for le, n in buckets if le < 0.5)
    assert all(n == 1 for le, n in buckets if 0.6 <= le < 3.0)
    assert all(n == 2 for le, n in buckets if le >= 3.6)


def test_route_bypass_counter_moves(origin, strata):
    s = strata(config_text=lambda s: cache_config(s, [cache_route()], {"hot": {"ttl": "60s"}}))
    assert s.get("/echo").status == 200  # the bypass catch-all
    assert s.get("/c/x", headers={"Authorization": "Bearer t"}).status == 200  # skips the cache
    st = settle_stats(s, {("routes", "/*", "bypass"): 1, ("routes", "/c/*", "bypass"): 1})
    assert st["routes"]["/c/*"]["hits"] + st["routes"]["/c/*"]["misses"] == 0


def test_routes_with_the_same_match_have_their_own_ids(origin, strata):
    def cfg(s):
        return s.render(routes=[
            {"match": "/x/*", "host": "a.test", "upstream": "origin", "strategy": "bypass"},
            {"match": "/x/*", "host": "b.test", "upstream": "origin", "strategy": "bypass"},
            {"match": "/x/*", "name": "x-any", "upstream": "origin", "strategy": "bypass"},
            {"match": "/*", "upstream": "origin", "strategy": "bypass"}])
    s = strata(config_text=cfg)
    assert s.get("/x/1", headers={"Host": "a.test"}).status == 200
    assert s.get("/x/1", headers={"Host": "b.test"}).status == 200
    assert s.get("/x/1", headers={"Host": "b.test"}).status == 200
    assert s.get("/x/1", headers={"Host": "c.test"}).status == 200
    st = settle_stats(s, {("routes", "/x/*@b.test", "requests"): 2})
    routes = st["routes"]
    assert set(routes) == {"/x/*@a.test", "/x/*@b.test", "x-any", "/*"}
    assert routes["/x/*@a.test"]["requests"] == 1
    assert routes["x-any"]["requests"] == 1
    assert routes["/x/*@a.test"]["match"] == "/x/*" and routes["/x/*@a.test"]["host"] == "a.test"
    assert routes["x-any"]["host"] is None
    raw = s.admin_get("/stats").body.decode()
    assert raw.count('"/x/*@a.test"') == 1  # no duplicate JSON keys
    text = s.admin_get("/metrics").body.decode()
    series = [l.split(" ")[0] for l in text.splitlines() if l and not l.startswith("#")]
    assert len(series) == len(set(series)), "duplicate Prometheus series"
    assert metric(text, "strata_route_requests_total", '{route="/x/*@b.test"}') == 2


def test_duplicate_route_ids_are_a_config_error(strata_bin, tmp_path):
    cfg = tmp_path / "dup.yaml"
    cfg.write_text("upstreams: { o: { servers: [\"127.0.0.1:9\"] } }\n"
                   "routes:\n"
                   "  - { match: \"/a\", upstream: o, strategy: bypass }\n"
                   "  - { match: \"/a\", upstream: o, strategy: bypass, methods: [POST] }\n")
    r = subprocess.run([strata_bin, "--check", "-c", str(cfg)], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 1
    assert f"{cfg}:4:5: route '/a' has the same id as the route on line 3" in r.stderr, r.stderr


def test_promtool_accepts_metrics(origin, strata):
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: scripts/install-deps.sh test installs prometheus"
    s = strata(config_text=lambda s: cache_config(s, [cache_route()], {"hot": {"ttl": "60s"}}))
    for path in ("/c/a", "/c/a", "/echo", "/down/x"):
        s.get(path)
    text = s.admin_get("/metrics").body
    r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                       timeout=30)
    assert r.returncode == 0, (r.stdout + r.stderr).decode()
