"""routes[].rate_limit: a token bucket per key (client address or a header), exact under a
burst across workers, 429 with Retry-After and the RateLimit-* headers, on every kind of
answer (proxied, cached, error)."""

import json
import threading

from harness import RawConn, req_bytes, wait_until
from test_redis_tier import fleet, rds  # noqa: F401  (rds is a fixture)


def limited(rate, burst=None, key="ip", strategy="bypass", **extra):
    rl = {"rate": rate, "key": key}
    if burst is not None:
        rl["burst"] = burst
    route = {"match": "/*", "upstream": "origin", "strategy": strategy, "rate_limit": rl}
    route.update(extra)
    return [route]


def burst(servers, each=10):
    """One client thread per entry of servers, each sending `each` GET /echo on new
    connections (so they spread over every worker); returns every response."""
    statuses, lock = [], threading.Lock()

    def client(s):
        for _ in range(each):
            with RawConn(s.port) as c:
                c.send(req_bytes("GET", "/echo"))
                r = c.read_response(timeout=5)
            with lock:
                statuses.append(r)

    threads = [threading.Thread(target=client, args=(s,)) for s in servers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ok = [r for r in statuses if r.status == 200]
    refused = [r for r in statuses if r.status == 429]
    assert len(ok) + len(refused) == len(statuses), [r.status for r in statuses]
    return ok, refused


def test_a_burst_is_exact_across_workers_and_the_rest_get_429(origin, strata):
    s = strata(routes=limited("1/m", burst=20), workers=2)
    ok, refused = burst([s] * 5)
    assert len(ok) == 20 and len(refused) == 30
    assert origin.count("/echo") == 20
    r = refused[0]
    assert r.header("Retry-After") and int(r.header("Retry-After")) >= 1
    assert r.header("RateLimit-Limit") == "20" and r.header("RateLimit-Remaining") == "0"
    assert r.header("X-RateLimit-Limit") == "20" and r.header("X-RateLimit-Remaining") == "0"
    assert int(r.header("RateLimit-Reset")) >= 1
    assert json.loads(r.body)["status"] == 429
    remaining = sorted(int(x.header("RateLimit-Remaining")) for x in ok)
    assert remaining == list(range(20)), remaining  # each allowed answer says what is left
    assert s.stats()["rate_limited"] == 30


def test_keyed_by_header_each_key_has_its_bucket(origin, strata):
    s = strata(routes=limited("1/m", burst=2, key="header:X-Api-Key"))

    def get(k):
        return s.get("/echo", headers={"X-Api-Key": k} if k else {}).status

    assert [get("a") for _ in range(3)] == [200, 200, 429]
    assert [get("b") for _ in range(3)] == [200, 200, 429]
    assert [get(None) for _ in range(3)] == [200, 200, 429]  # no key: one shared bucket


def test_the_rate_refills(origin, strata):
    s = strata(routes=limited("10/s", burst=1))
    assert s.get("/echo").status == 200
    assert s.get("/echo").status == 429
    wait_until(lambda: s.get("/echo").status == 200, 2, interval=0.05, msg="a token back")


def test_check_rejects_bad_rate_limits(strata_bin, tmp_path):
    import subprocess
    for bad, why in [("rate: 100", "bad rate"), ("rate: 0/s", "bad rate"),
                     ("rate: 10/s, key: cookie", "bad key"),
                     ("rate: 10/s, burst: 0", "burst must be at least 1"),
                     ("burst: 10", "needs a rate"),
                     ("rate: 10/s, scope: world", "expected local or fleet"),
                     ("rate: 10/s, scope: fleet", "fleet needs redis")]:
        p = tmp_path / "c.yaml"
        p.write_text('upstreams: { o: { servers: ["127.0.0.1:9"] } }\n'
                     'routes:\n'
                     f'  - {{ match: "/*", upstream: o, strategy: bypass, rate_limit: {{ {bad} }} }}\n')
        r = subprocess.run([strata_bin, "-c", str(p), "--check"], capture_output=True, text=True)
        assert r.returncode != 0, bad
        assert f"{p}:3:" in r.stderr and why in r.stderr, (bad, r.stderr)


def test_cache_hits_and_errors_carry_the_headers_too(origin, strata):
    from harness import cache_config, cache_route, cache_status
    route = cache_route("/c/*", tier="hot", rate_limit={"rate": "1/m", "burst": 3})
    s = strata(config_text=lambda s: cache_config(s, [route], {"hot": {"ttl": "1m"}}))
    origin.script_versioned("/c/x", headers=[("Cache-Control", "max-age=60")])
    miss = s.get("/c/x")
    hit = s.get("/c/x")
    assert cache_status(hit).params.get("hit"), hit.headers
    assert (miss.header("RateLimit-Remaining"), hit.header("RateLimit-Remaining")) == ("2", "1")
    assert hit.header("X-RateLimit-Limit") == "3"
    s.get("/c/x")
    r = s.get("/c/x")
    assert r.status == 429 and r.header("RateLimit-Remaining") == "0"
    assert origin.count("/c/x") == 1


def fleet_limited(rate, burst, key="ip"):
    return [{"match": "/echo", "upstream": "origin", "strategy": "bypass",
             "rate_limit": {"rate": rate, "burst": burst, "key": key, "scope": "fleet"}}]


def test_fleet_scope_holds_across_instances_exactly_under_a_burst(origin, strata, rds):
    a, b = fleet(strata, rds, 2, routes=fleet_limited("1/m", 20))
    ok, refused = burst([a, b, a, b])
    # One bucket for the fleet: 20 in all, not 20 per instance.
    assert len(ok) == 20 and len(refused) == 20
    assert origin.count("/echo") == 20
    remaining = sorted(int(x.header("RateLimit-Remaining")) for x in ok)
    assert remaining == list(range(20)), remaining
    r = refused[0]
    assert r.header("RateLimit-Limit") == "20" and r.header("X-RateLimit-Remaining") == "0"
    assert int(r.header("Retry-After")) >= 1 and int(r.header("RateLimit-Reset")) >= 1
    assert a.stats()["rate_limited"] + b.stats()["rate_limited"] == 20
    assert a.stats()["rate_limit_fallbacks"] == 0 and b.stats()["rate_limit_fallbacks"] == 0


def test_fleet_scope_falls_back_to_the_local_limit_when_redis_is_down(origin, strata, rds):
    a, b = fleet(strata, rds, 2, routes=fleet_limited("1/m", 3))
    assert [a.get("/echo").status for _ in range(2)] == [200, 200]
    assert [b.get("/echo").status for _ in range(2)] == [200, 429]  # the fleet's bucket
    rds.kill()
    wait_until(lambda: a.admin_get("/readyz").json().get("redis") == "down" and
               b.admin_get("/readyz").json().get("redis") == "down", 10,
               msg="both instances see Redis down")
    # Fail open to each instance's own bucket (3 at once): limited still, never wide open.
    for s in (a, b):
        got = [s.get("/echo").status for _ in range(5)]
        assert got.count(200) <= 3 and got[-1] == 429, got
        assert s.stats()["rate_limit_fallbacks"] >= 5


def test_fleet_scope_with_a_body_keeps_it_while_redis_decides(origin, strata, rds):
    a, = fleet(strata, rds, 1, routes=fleet_limited("1/m", 5))
    body = b"x" * 300000
    with RawConn(a.port) as c:
        c.send(req_bytes("POST", "/echo", headers=[("Content-Length", str(len(body)))],
                         body=body))
        r = c.read_response(timeout=10)
    assert r.status == 200
    assert origin.last("/echo").body == body
