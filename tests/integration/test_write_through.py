"""write-through: a PUT goes to the origin, and on 2xx the new representation is
stored under the resource's GET key here and in Redis, while the other instances
drop their copy; a failed PUT leaves the cache alone."""

import subprocess

from harness import cache_config, cache_route, cache_status, request, wait_until
from test_redis_tier import API, TIERS, fleet, get, rds  # noqa: F401  (rds is a fixture)


class Resource:
    """An origin resource that GET reads and PUT replaces; PUT answers `put_status`
    with `put_body` (None: no body, 204)."""

    def __init__(self, origin, path, body=b"old", put_status=204, put_body=None):
        self.body, self.put_status, self.put_body = body, put_status, put_body
        self.puts = []
        origin.script(path, self.answer)

    def answer(self, req):
        if req.method == "PUT":
            self.puts.append(req.body)
            if 200 <= self.put_status < 300:
                self.body = req.body
            if self.put_body is None:
                return self.put_status, [], b""
            return self.put_status, [("Content-Type", "application/json")], self.put_body
        return 200, [("Cache-Control", "max-age=60"), ("Content-Type", "text/plain")], self.body


WT = [cache_route("/w/*", tier="hot", strategy="write-through")]


def put(s, path, body, ctype="application/json"):
    return request(s.port, "PUT", path, body=body, headers=dict(API, **{"Content-Type": ctype}))


def test_put_then_get_on_another_instance_is_a_hit_with_the_new_body(origin, strata, rds):
    a, b = fleet(strata, rds, 2, routes=WT)
    res = Resource(origin, "/w/item")
    assert get(b, "/w/item").body == b"old"  # B holds the old representation
    assert cache_status(get(b, "/w/item")).fresh_hit
    writes = a.stats()["l2"]["writes"]
    assert put(a, "/w/item", b'{"v":2}').status == 204
    wait_until(lambda: a.stats()["l2"]["writes"] > writes, 3, msg="A's new entry in L2")
    gets = origin.count("/w/item") - len(res.puts)

    def b_has_new():
        r = get(b, "/w/item")
        return r.body == b'{"v":2}' and r

    r = wait_until(b_has_new, 3, msg="B to answer the new body")
    assert r.header("Content-Type") == "application/json"  # the request's, with no answer body
    assert cache_status(r).get("detail") == "l2" or cache_status(r).fresh_hit, cache_status(r)
    # A answers from L1 at once, and nobody went back to the origin for it.
    r = get(a, "/w/item")
    assert r.body == b'{"v":2}' and cache_status(r).fresh_hit
    assert origin.count("/w/item") - len(res.puts) == gets
    assert res.puts == [b'{"v":2}']


def test_the_origins_answer_body_is_the_representation_when_it_sends_one(origin, strata, rds):
    (a,) = fleet(strata, rds, 1, routes=WT)
    Resource(origin, "/w/norm", put_status=200, put_body=b'{"v":2,"normalized":true}')
    get(a, "/w/norm")
    assert put(a, "/w/norm", b'{"v":2}', ctype="text/plain").status == 200
    r = get(a, "/w/norm")
    assert r.body == b'{"v":2,"normalized":true}' and cache_status(r).fresh_hit
    assert r.header("Content-Type") == "application/json"


def test_failed_put_leaves_the_old_value(origin, strata, rds):
    a, b = fleet(strata, rds, 2, routes=WT)
    Resource(origin, "/w/keep", put_status=500, put_body=b'{"error":"no"}')
    for s in (a, b):
        assert get(s, "/w/keep").body == b"old"
    r = put(a, "/w/keep", b"new")
    assert r.status == 500 and r.body == b'{"error":"no"}'  # the origin's error, relayed
    for s in (a, b):
        r = get(s, "/w/keep")
        assert r.body == b"old" and cache_status(r).fresh_hit, (r.body, cache_status(r))
    assert a.stats()["invalidations"]["published"] == 0


def test_without_redis_it_works_on_l1(origin, strata):
    s = strata(config_text=lambda s: cache_config(s, WT, TIERS))
    res = Resource(origin, "/w/solo")
    assert get(s, "/w/solo").body == b"old"
    assert put(s, "/w/solo", b"v2", ctype="text/plain").status == 204
    r = get(s, "/w/solo")
    assert r.body == b"v2" and cache_status(r).fresh_hit and r.header("Content-Type") == "text/plain"
    assert origin.count("/w/solo") == 1 + len(res.puts)


def test_patch_post_delete_forward_then_invalidate(origin, strata):
    s = strata(config_text=lambda s: cache_config(s, WT, TIERS))
    origin.script_versioned("/w/p", headers=[("Cache-Control", "max-age=60")])
    for method in ("PATCH", "POST", "DELETE"):
        before = get(s, "/w/p").body
        assert cache_status(get(s, "/w/p")).fresh_hit
        assert request(s.port, method, "/w/p", body=b"x", headers=API).status == 200
        after = get(s, "/w/p")
        assert after.body != before and cache_status(after).fwd == "miss", (method, after.body)


def test_put_larger_than_max_object_drops_the_old_value(origin, strata):
    s = strata(config_text=lambda s: cache_config(s, WT, TIERS, max_object="1KiB", memory="1MiB"))
    res = Resource(origin, "/w/big")
    assert get(s, "/w/big").body == b"old"
    assert put(s, "/w/big", b"x" * 4096, ctype="text/plain").status == 204
    r = get(s, "/w/big")
    assert r.body == b"x" * 4096 and cache_status(r).fwd == "miss"  # fetched, not stale
    assert len(res.puts) == 1


def test_check_accepts_write_through(strata_bin, tmp_path):
    cfg = tmp_path / "wt.yaml"
    cfg.write_text('upstreams: { api: { servers: ["127.0.0.1:9"] } }\n'
                   "tiers: { hot: { ttl: 60s } }\n"
                   "routes:\n  - { match: \"/*\", upstream: api, strategy: write-through, tier: hot }\n")
    r = subprocess.run([strata_bin, "-c", str(cfg), "--check"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "ok", (r.stdout, r.stderr)


def test_put_too_large_for_redis_but_not_for_l1_is_not_read_old_elsewhere(origin, strata, rds):
    """Regression: a representation over redis.max_object (but within cache.max_object)
    was stored in L1 only, and the others, told to drop their copy, read the old one
    back from L2 as a fresh hit."""
    a, b = fleet(strata, rds, 2, routes=WT, max_object="1KiB")
    Resource(origin, "/w/mid")
    assert get(b, "/w/mid").body == b"old"
    wait_until(lambda: b.stats()["l2"]["writes"] >= 1, 3)
    big = b"y" * 2048
    assert put(a, "/w/mid", big, ctype="text/plain").status == 204
    wait_until(lambda: b.stats()["invalidations"]["received"] >= 1, 2)
    assert get(b, "/w/mid").body == big
    assert get(a, "/w/mid").body == big
