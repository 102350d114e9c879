"""Admin listener: health endpoints, /stats counters, /metrics."""

import re

from harness import RawConn, cache_config, cache_route, req_bytes, script_blob, wait_until


def test_healthz(strata):
    s = strata()
    r = s.admin_get("/healthz")
    assert r.status == 200
    assert r.json() == {"status": "ok"}


def test_readiness_and_health_aliases(strata):
    s = strata()
    for path in ("/readyz", "/health/live", "/health/ready", "/health"):
        assert s.admin_get(path).status == 200, path


def test_stats_count_requests_responses_and_origin(origin, strata):
    s = strata()
    for i in range(3):
        assert s.get(f"/json/{i}").status == 200
    assert s.get("/down/x").status == 502

    def settled():
        st = s.stats()
        return st if st["requests"] == 4 and st["responses"]["5xx"] == 1 else None

    try:
        st = wait_until(settled, 2, msg="stats to show 4 requests and one 5xx")
    except AssertionError:
        st = s.stats()
    assert st["requests"] == 4, st
    assert {k: st["responses"][k] for k in ("1xx", "2xx", "3xx", "4xx", "5xx")} == \
        {"1xx": 0, "2xx": 3, "3xx": 0, "4xx": 0, "5xx": 1}, st["responses"]
    assert st["origin"]["requests"] >= 3, st["origin"]
    assert st["origin"]["errors"] >= 1, st["origin"]
    assert st["origin"]["timeouts"] == 0, st["origin"]
    assert origin.total() == 3


def test_stats_count_origin_timeouts(origin, strata):
    s = strata()
    assert s.get("/hang").status == 504
    st = wait_until(lambda: (st := s.stats())["origin"]["timeouts"] >= 1 and st, 2,
                    msg="origin.timeouts >= 1")
    assert st["responses"]["5xx"] == 1


def test_stats_open_connections(origin, strata):
    s = strata()
    base = s.stats()["connections"]["open"]
    conns = []
    for i in range(2):
        c = RawConn(s.port)
        c.send(req_bytes("GET", f"/echo?c={i}"))
        assert c.read_response().status == 200  # so strata has surely accepted it
        conns.append(c)
    wait_until(lambda: s.stats()["connections"]["open"] == base + 2, 2,
               msg=f"connections.open == {base + 2}")
    for c in conns:
        c.close()
    wait_until(lambda: s.stats()["connections"]["open"] == base, 3,
               msg=f"connections.open back to {base}")


def _metric(text, name, labels=None):
    lab = re.escape("{" + labels + "}") if labels else ""
    m = re.search(rf"^{re.escape(name)}{lab}\s+([0-9.eE+-]+)\s*$", text, re.M)
    return float(m.group(1)) if m else None


def test_metrics_prometheus_text(origin, strata):
    s = strata()
    for _ in range(2):
        assert s.get("/echo").status == 200
    assert s.get("/down/x").status == 502
    r = s.admin_get("/metrics")
    assert r.status == 200
    assert (r.header("Content-Type") or "").startswith("text/plain")
    text = r.body.decode()
    assert _metric(text, "strata_requests_total") == 3, text[:2000]
    assert _metric(text, "strata_responses_total", 'class="2xx"') == 2, text[:2000]
    assert _metric(text, "strata_responses_total", 'class="5xx"') == 1, text[:2000]


def test_stats_show_the_allocator(origin, strata):
    """jemalloc's own numbers (live bytes, pages, what it keeps resident); a build with the
    system allocator (the sanitizer builds) says so instead."""
    s = strata()
    assert s.get("/echo").status == 200
    a = s.stats()["allocator"]
    if a["name"] == "system":
        assert set(a) == {"name"}, a
        return
    assert a["name"] == "jemalloc", a
    assert 0 < a["allocated"] <= a["active"] <= a["resident"], a
    assert a["active"] + a["dirty"] <= a["resident"], a
    assert a["metadata"] > 0 and a["mapped"] >= a["active"], a
    rss = s.rss_kb() * 1024
    assert a["allocated"] < rss, (a, rss)
    text = s.admin_get("/metrics").body.decode()
    assert _metric(text, "strata_allocator_allocated_bytes") > 0, text[-2000:]


def test_freed_pages_go_back_to_the_kernel(origin, strata):
    """A burst of large cached answers evicted from a small memory tier leaves the workers'
    arenas with freed pages that jemalloc's decay alone keeps resident while nothing runs;
    the server gives them back every 10 s. (The system allocator has no such numbers.)"""
    s = strata(config_text=lambda s: cache_config(
        s, [cache_route("/m", key={"query": "all"})], {"hot": {"ttl": "10m"}}, memory="4MiB"))
    if s.stats()["allocator"]["name"] == "system":
        return
    script_blob(origin)
    peak = 0
    for i in range(120):  # 12 MiB through a 4 MiB tier: most of it evicted, freed
        assert s.get(f"/m?bytes={100 * 1024}&i={i}").status == 200
        if i % 20 == 19:
            peak = max(peak, s.stats()["allocator"]["dirty"])
    assert peak >= 1 << 20, f"the burst left only {peak} B of free pages"
    wait_until(lambda: s.stats()["allocator"]["dirty"] <= 128 * 1024, 25,
               msg=f"free pages ({peak} B after the burst) given back")


def test_admin_off_loopback_without_token_refuses_to_start(strata_bin, tmp_path):
    import subprocess
    cfg = tmp_path / "open-admin.yaml"
    cfg.write_text('admin: { listen: "0.0.0.0:18081" }\n'
                   'upstreams: { o: { servers: ["127.0.0.1:9"] } }\n'
                   'routes: [ { match: "/*", upstream: o, strategy: bypass } ]\n')
    for args in (["--check", "-c", str(cfg)], ["-c", str(cfg)]):
        p = subprocess.run([strata_bin] + args, capture_output=True, text=True, timeout=10)
        assert p.returncode == 1, (args, p.returncode, p.stdout, p.stderr)
        assert f"{cfg}:1:18: admin.listen 0.0.0.0:18081 is not a loopback address" in p.stderr
        assert "admin.token" in p.stderr


def test_wrong_method_on_a_known_endpoint_is_405_with_allow(strata):
    from harness import request
    s = strata()
    for method, path, allow in [("POST", "/stats", "GET, HEAD"), ("DELETE", "/healthz", "GET, HEAD"),
                                ("GET", "/invalidate", "POST"), ("PUT", "/metrics", "GET, HEAD")]:
        r = request(s.admin_port, method, path, body=b"{}" if method != "GET" else None)
        assert r.status == 405, (method, path, r.status)
        assert r.header("Allow") == allow
        assert allow in r.json()["error"]
    assert request(s.admin_port, "POST", "/nope", body=b"{}").status == 404
    assert request(s.admin_port, "HEAD", "/stats").status == 200
