"""Invalidation: cache-aside writes (request URI, Location/Content-Location,
the route's `invalidates` patterns) and the admin POST /invalidate (key,
prefix, tag, token). Proved by origin counts: after an invalidation the next
GET is a miss that reaches the origin."""

import pytest

from harness import (admin_invalidate, cache_config, cache_route, cache_status, request,
                     settle_stats)

TIERS = {"hot": {"ttl": "30s", "jitter": "0%"}}
ROUTES = [
    cache_route("/c/items/{id}", tier="hot", invalidates=["/c/list", "/c/items/{id}/*"]),
    cache_route("/c/*", tier="hot"),
]


@pytest.fixture
def cs(strata):
    return strata(config_text=lambda s: cache_config(s, ROUTES, TIERS))


def fill(origin, s, *targets):
    """Script each target's path (versioned) and GET it once: a stored miss."""
    for t in targets:
        path = t.split("?")[0]
        if path not in origin.scripts:
            origin.script_versioned(path)
        r = s.get(t)
        assert "stored" in cache_status(r) or "hit" in cache_status(r), (t, cache_status(r))


def is_cached(origin, s, target, headers=None):
    """GET target; True when it was answered without reaching the origin."""
    path = target.split("?")[0]
    before = origin.count(path)
    r = s.get(target, headers=headers)
    assert r.status < 500, (target, r.status)
    after = origin.count(path)
    hit = after == before
    assert hit == ("hit" in cache_status(r)), \
        f"{target}: origin count {before}->{after} but Cache-Status {cache_status(r)}"
    return hit


def post_script(origin, path, status=200, headers=()):
    origin.script(path, lambda req: (status, list(headers), b"written\n")
                  if req.method != "GET" else (200, [], f"{path} get\n".encode()))


# ---- writes ------------------------------------------------------------------------

def test_post_drops_uri_query_variants_and_patterns(origin, cs):
    targets = ["/c/items/1", "/c/items/1?view=full", "/c/list", "/c/list?page=2",
               "/c/items/1/reviews", "/c/items/1/reviews/9", "/c/items/2",
               "/c/items/2/reviews", "/c/other"]
    fill(origin, cs, *targets)
    assert all(is_cached(origin, cs, t) for t in targets)
    r = request(cs.port, "POST", "/c/items/1", body=b'{"x":1}',
                headers={"Content-Type": "application/json"})
    assert r.status == 200
    assert r.header("Cache-Status") == "strata; fwd=method", r.headers
    posts = [q for q in origin.requests_for("/c/items/1") if q.method == "POST"]
    assert len(posts) == 1 and posts[0].body == b'{"x":1}'
    dropped = {t: not is_cached(origin, cs, t) for t in targets}
    assert dropped == {
        "/c/items/1": True, "/c/items/1?view=full": True,
        "/c/list": True, "/c/list?page=2": True,
        "/c/items/1/reviews": True, "/c/items/1/reviews/9": True,
        "/c/items/2": False, "/c/items/2/reviews": False, "/c/other": False,
    }


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE", "POST"])
def test_each_unsafe_method_goes_to_origin_and_drops_uri(origin, cs, method):
    fill(origin, cs, "/c/w")
    assert is_cached(origin, cs, "/c/w")
    body = None if method == "DELETE" else b"data"
    r = request(cs.port, method, "/c/w", body=body)
    assert r.status == 200
    assert "fwd=method" in (r.header("Cache-Status") or ""), r.headers
    assert origin.last("/c/w").method == method
    assert not is_cached(origin, cs, "/c/w"), f"{method} did not drop /c/w"
    assert is_cached(origin, cs, "/c/w")


@pytest.mark.parametrize("status", [400, 404, 409, 500, 503])
def test_error_answer_invalidates_nothing(origin, cs, status):
    fill(origin, cs, "/c/items/5", "/c/list", "/c/items/5/reviews")
    post_script(origin, "/c/items/5", status=status)
    r = request(cs.port, "PUT", "/c/items/5", body=b"x")
    assert r.status == status
    for t in ("/c/items/5", "/c/list", "/c/items/5/reviews"):
        assert is_cached(origin, cs, t), f"{status} answer to PUT invalidated {t}"


def test_3xx_answer_invalidates(origin, cs):
    fill(origin, cs, "/c/r")
    post_script(origin, "/c/r", status=303, headers=[("Location", "/c/r")])
    assert request(cs.port, "POST", "/c/r", body=b"x").status == 303
    assert not is_cached(origin, cs, "/c/r")


def test_location_and_content_location_dropped(origin, cs):
    fill(origin, cs, "/c/new/7", "/c/new/7?x=1", "/c/cl/8")
    post_script(origin, "/c/coll", status=201,
                headers=[("Location", "/c/new/7"), ("Content-Location", "/c/cl/8")])
    assert request(cs.port, "POST", "/c/coll", body=b"{}").status == 201
    assert not is_cached(origin, cs, "/c/new/7")
    assert not is_cached(origin, cs, "/c/new/7?x=1")
    assert not is_cached(origin, cs, "/c/cl/8")


def test_absolute_same_host_location_dropped(origin, cs):
    fill(origin, cs, "/c/abs/1")
    host = f"127.0.0.1:{cs.port}"
    post_script(origin, "/c/coll2", status=201, headers=[("Location", f"http://{host}/c/abs/1")])
    assert request(cs.port, "POST", "/c/coll2", body=b"{}").status == 201
    assert not is_cached(origin, cs, "/c/abs/1")


def test_other_host_location_not_dropped(origin, cs):
    fill(origin, cs, "/c/foreign/1")
    post_script(origin, "/c/coll3", status=201,
                headers=[("Location", "http://elsewhere.example/c/foreign/1")])
    assert request(cs.port, "POST", "/c/coll3", body=b"{}").status == 201
    assert is_cached(origin, cs, "/c/foreign/1"), "a Location on another host must not invalidate"


def test_write_does_not_store(origin, cs):
    post_script(origin, "/c/ws", status=200, headers=[("Cache-Control", "max-age=60")])
    request(cs.port, "POST", "/c/ws", body=b"x")
    assert not is_cached(origin, cs, "/c/ws")


# ---- POST /invalidate -------------------------------------------------------------

def test_invalidate_key_drops_all_queries_and_hosts(origin, cs):
    fill(origin, cs, "/c/a", "/c/a?q=1", "/c/a?q=2", "/c/b", "/c/a/sub")
    # the same path under another Host: the host is part of the key, so its own entry
    before = origin.count("/c/a")
    cs.get("/c/a", headers={"Host": "other.test"})
    assert origin.count("/c/a") == before + 1, "another Host must be another cache key"
    r = admin_invalidate(cs, {"key": "/c/a"})
    assert r.status == 200, (r.status, r.body)
    assert r.json() == {"invalidated": 4}, r.body
    for t in ("/c/a", "/c/a?q=1", "/c/a?q=2"):
        assert not is_cached(origin, cs, t), t
    assert not is_cached(origin, cs, "/c/a", headers={"Host": "other.test"})
    assert is_cached(origin, cs, "/c/b")
    assert is_cached(origin, cs, "/c/a/sub")


def test_invalidate_key_with_query_drops_only_that_query(origin, cs):
    fill(origin, cs, "/c/k", "/c/k?q=1", "/c/k?q=2")
    r = admin_invalidate(cs, {"key": "/c/k?q=1"})
    assert r.status == 200 and r.json() == {"invalidated": 1}, r.body
    assert not is_cached(origin, cs, "/c/k?q=1")
    assert is_cached(origin, cs, "/c/k?q=2")
    assert is_cached(origin, cs, "/c/k")


def test_invalidate_key_nothing_cached_is_zero(origin, cs):
    r = admin_invalidate(cs, {"key": "/c/never"})
    assert r.status == 200 and r.json() == {"invalidated": 0}, r.body


def test_invalidate_prefix(origin, cs):
    fill(origin, cs, "/c/p/1", "/c/p/2?x=1", "/c/p/3/deep", "/c/p", "/c/pq/1", "/c/q/1")
    r = admin_invalidate(cs, {"prefix": "/c/p/"})
    assert r.status == 200 and r.json() == {"invalidated": 3}, r.body
    for t in ("/c/p/1", "/c/p/2?x=1", "/c/p/3/deep"):
        assert not is_cached(origin, cs, t), t
    for t in ("/c/p", "/c/pq/1", "/c/q/1"):
        assert is_cached(origin, cs, t), t


def test_invalidate_tag_from_surrogate_key(origin, cs):
    origin.script_versioned("/c/t1", headers=[("Surrogate-Key", "a b")])
    origin.script_versioned("/c/t2", headers=[("Surrogate-Key", "b")])
    origin.script_versioned("/c/t3", headers=[("Surrogate-Key", "c bb")])
    origin.script_versioned("/c/t4")
    fill(origin, cs, "/c/t1", "/c/t2", "/c/t3", "/c/t4")
    r = admin_invalidate(cs, {"tag": "b"})
    assert r.status == 200 and r.json() == {"invalidated": 2}, r.body
    assert not is_cached(origin, cs, "/c/t1")
    assert not is_cached(origin, cs, "/c/t2")
    assert is_cached(origin, cs, "/c/t3")
    assert is_cached(origin, cs, "/c/t4")
    r = admin_invalidate(cs, {"tag": "a"})  # t1 was refilled above, still tagged a
    assert r.json() == {"invalidated": 1}, r.body


@pytest.mark.parametrize("body", [b"not json", b"{", b"[1,2]", b'{"key": 5}'])
def test_invalidate_malformed_body_is_400(origin, cs, body):
    fill(origin, cs, "/c/m")
    r = admin_invalidate(cs, body)
    assert r.status == 400, (r.status, r.body)
    assert is_cached(origin, cs, "/c/m")


def test_invalidate_counts_in_stats(origin, cs):
    fill(origin, cs, "/c/s1", "/c/s2")
    admin_invalidate(cs, {"key": "/c/s1"})
    admin_invalidate(cs, {"prefix": "/c/s"})
    request(cs.port, "DELETE", "/c/s3")
    settle_stats(cs, {"invalidations.local": 3})


def test_invalidate_needs_token_when_configured(origin, strata):
    s = strata(config_text=lambda s: cache_config(s, ROUTES, TIERS, admin_token="s3cret"))
    fill(origin, s, "/c/tok")
    for tok in (None, "wrong", "S3CRET"):
        r = admin_invalidate(s, {"key": "/c/tok"}, token=tok)
        assert r.status == 401, (tok, r.status, r.body)
        assert is_cached(origin, s, "/c/tok"), f"token {tok!r}: entry dropped despite 401"
    r = request(s.admin_port, "POST", "/invalidate", body='{"key":"/c/tok"}',
                headers={"Authorization": "Basic czNjcmV0"})
    assert r.status == 401
    r = admin_invalidate(s, {"key": "/c/tok"}, token="s3cret")
    assert r.status == 200 and r.json() == {"invalidated": 1}, r.body
    assert not is_cached(origin, s, "/c/tok")
