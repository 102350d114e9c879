"""Cache-aside reads: miss then hit, RFC 9111 freshness, Vary, conditional
requests and revalidation, request directives, query keys, HEAD.

Every claim about caching is proved by the scripted origin's per-path request
counts (a hit never reaches the origin) and by Cache-Status."""

import email.utils
import time

import pytest

from harness import cache_config, cache_route, cache_status, request, settle_stats

# No stale windows here, so an expired entry always goes back to the origin.
TIERS = {
    "basic": {"ttl": "2s", "jitter": "0%"},
    "short": {"ttl": "3s", "jitter": "0%"},
    "zero": {"ttl": "0s"},
    "jit": {"ttl": "10s", "jitter": "50%"},
}

ROUTES = [
    cache_route("/t/*", tier="short", ttl_source="tier"),
    cache_route("/z/*", tier="zero"),
    cache_route("/j/*", tier="jit"),
    cache_route("/q/all/*", tier="basic", key={"query": "all"}),
    cache_route("/q/none/*", tier="basic", key={"query": "none"}),
    cache_route("/q/a/*", tier="basic", key={"query": ["a"]}),
    cache_route("/c/*", tier="basic"),
]


@pytest.fixture
def cs(strata):
    return strata(config_text=lambda s: cache_config(s, ROUTES, TIERS))


def http_date(offset):
    return email.utils.formatdate(time.time() + offset, usegmt=True)


def assert_miss_stored(r):
    cst = cache_status(r)
    assert r.status < 500, r
    assert cst.fwd == "miss" and "stored" in cst, f"want 'strata; fwd=miss; stored', got {cst}"


def assert_hit(r):
    cst = cache_status(r)
    assert "hit" in cst and cst.ttl is not None and cst.ttl >= 0, \
        f"want 'strata; hit; ttl=N', got {cst}"
    assert r.header("Age") is not None, f"a hit carries Age; headers {r.headers}"


# ---- miss / hit -------------------------------------------------------------------

def test_miss_then_hit(origin, cs):
    origin.script_versioned("/c/a", headers=[("Content-Type", "text/plain")])
    r1 = cs.get("/c/a")
    assert r1.status == 200 and r1.body == b"/c/a v1\n"
    assert r1.header("Cache-Status") == "strata; fwd=miss; stored"
    r2 = cs.get("/c/a")
    assert r2.status == 200 and r2.body == b"/c/a v1\n"
    assert_hit(r2)
    assert r2.header("Cache-Status").startswith("strata; hit; ttl=")
    assert 0 <= cache_status(r2).ttl <= 2
    assert int(r2.header("Age")) >= 0
    assert r2.header("Content-Type") == "text/plain"
    assert origin.count("/c/a") == 1


def test_hit_age_grows(origin, cs):
    origin.script_versioned("/c/age", headers=[("Cache-Control", "max-age=30")])
    cs.get("/c/age")
    time.sleep(1.1)
    r = cs.get("/c/age")
    assert_hit(r)
    assert int(r.header("Age")) >= 1, r.headers
    assert cache_status(r).ttl <= 29
    assert origin.count("/c/age") == 1


def test_head_on_cached_entry(origin, cs):
    origin.script_versioned("/c/h", headers=[("Cache-Control", "max-age=30")])
    g = cs.get("/c/h")
    assert_miss_stored(g)
    h = request(cs.port, "HEAD", "/c/h")
    assert h.status == 200
    assert h.body == b""
    assert_hit(h)
    assert h.header("Content-Length") == str(len(g.body)), h.headers
    assert origin.count("/c/h") == 1


def test_head_miss_does_not_poison_get(origin, cs):
    origin.script_versioned("/c/hm", headers=[("Cache-Control", "max-age=30")])
    h = request(cs.port, "HEAD", "/c/hm")
    assert h.status == 200 and h.body == b""
    assert h.header("Content-Length") == str(len(b"/c/hm v1\n")), h.headers
    g = cs.get("/c/hm")
    assert g.status == 200
    assert g.body.startswith(b"/c/hm v"), f"GET after a HEAD miss got {g.body!r} ({cache_status(g)})"
    assert int(g.header("Content-Length")) == len(g.body)
    g2 = cs.get("/c/hm")
    assert g2.body == g.body
    assert_hit(g2)


def test_chunked_origin_response_is_not_marked_stored(origin, cs):
    body = b"5\r\nhello\r\n0\r\n\r\n"
    origin.script("/c/chunk", lambda req: (200, [("Transfer-Encoding", "chunked"),
                                                 ("Cache-Control", "max-age=30")], body))
    r1 = cs.get("/c/chunk")
    assert r1.status == 200 and r1.body == b"hello"
    cst = cache_status(r1)
    assert cst.fwd == "miss" and "stored" not in cst, cst
    r2 = cs.get("/c/chunk")
    assert r2.status == 200 and r2.body == b"hello"
    assert r2.header("Content-Length") in (None, "5"), r2.headers


# ---- freshness ------------------------------------------------------------------------

CACHED = [
    ("max-age", 200, [("Cache-Control", "max-age=60")], {}),
    ("s-maxage-beats-max-age", 200, [("Cache-Control", "max-age=0, s-maxage=60")], {}),
    ("expires-future", 200, [("Expires", "FUTURE")], {}),
    ("max-age-beats-past-expires", 200, [("Cache-Control", "max-age=60"), ("Expires", "PAST")], {}),
    ("unknown-directives-ignored", 200,
     [("Cache-Control", "max-age=60, x-frobnicate=7, x-flag")], {}),
    ("pragma-no-cache-ignored", 200, [("Pragma", "no-cache"), ("Cache-Control", "max-age=60")], {}),
    ("public", 200, [("Cache-Control", "public, max-age=60")], {}),
    ("tier-ttl-when-silent", 200, [], {}),
    ("404-default-cacheable", 404, [], {}),
    ("301-default-cacheable", 301, [("Location", "/c/elsewhere")], {}),
    ("cdn-cache-control-wins", 200,
     [("CDN-Cache-Control", "max-age=60"), ("Cache-Control", "no-store")], {}),
    ("pragma-request-ignored", 200, [("Cache-Control", "max-age=60")], {"Pragma": "no-cache"}),
]

NOT_FRESH = [
    ("no-store", 200, [("Cache-Control", "no-store, max-age=60")], {}),
    ("private", 200, [("Cache-Control", "private, max-age=60")], {}),
    ("set-cookie", 200, [("Cache-Control", "max-age=60"), ("Set-Cookie", "sid=1")], {}),
    ("authorization", 200, [("Cache-Control", "max-age=60")], {"Authorization": "Basic dTpw"}),
    ("vary-star", 200, [("Cache-Control", "max-age=60"), ("Vary", "*")], {}),
    ("500-without-freshness", 500, [], {}),
    ("max-age-0", 200, [("Cache-Control", "max-age=0")], {}),
    ("s-maxage-0-beats-max-age", 200, [("Cache-Control", "s-maxage=0, max-age=60")], {}),
    ("max-age-0-beats-expires", 200, [("Cache-Control", "max-age=0"), ("Expires", "FUTURE")], {}),
    ("expires-past", 200, [("Expires", "PAST")], {}),
    ("expires-invalid", 200, [("Expires", "0")], {}),
    ("cdn-cache-control-no-store-wins", 200,
     [("CDN-Cache-Control", "no-store"), ("Cache-Control", "max-age=60")], {}),
]


def _script(origin, path, status, headers):
    def hdrs(req, n):
        out = []
        for k, v in headers:
            v = {"FUTURE": http_date(60), "PAST": http_date(-60)}.get(v, v)
            out.append((k, v))
        return out
    origin.script_versioned(path, headers=hdrs, status=status)


@pytest.mark.parametrize("name,status,headers,req_headers", CACHED, ids=[c[0] for c in CACHED])
def test_freshness_cached(origin, cs, name, status, headers, req_headers):
    path = f"/c/fresh/{name}"
    _script(origin, path, status, headers)
    r1 = cs.get(path, headers=req_headers)
    assert r1.status == status
    assert_miss_stored(r1)
    r2 = cs.get(path, headers=req_headers)
    assert r2.status == status and r2.body == r1.body
    assert_hit(r2)
    assert origin.count(path) == 1


@pytest.mark.parametrize("name,status,headers,req_headers", NOT_FRESH,
                         ids=[c[0] for c in NOT_FRESH])
def test_freshness_not_served_from_cache(origin, cs, name, status, headers, req_headers):
    path = f"/c/nofresh/{name}"
    _script(origin, path, status, headers)
    r1 = cs.get(path, headers=req_headers)
    assert r1.status == status and r1.body == f"{path} v1\n".encode()
    r2 = cs.get(path, headers=req_headers)
    assert r2.status == status
    assert r2.body == f"{path} v2\n".encode(), \
        f"second answer came from the cache: {cache_status(r2)}, body {r2.body!r}"
    assert "hit" not in cache_status(r2), cache_status(r2)
    assert origin.count(path) == 2


def test_cdn_cache_control_not_forwarded(origin, cs):
    origin.script_versioned("/c/cdn", headers=[("CDN-Cache-Control", "max-age=60"),
                                               ("Cache-Control", "max-age=5")])
    for _ in range(2):
        r = cs.get("/c/cdn")
        assert r.header("CDN-Cache-Control") is None, r.headers
        assert r.header("Cache-Control") == "max-age=5", r.headers
    assert origin.count("/c/cdn") == 1


def test_authorized_request_does_not_fill_cache_for_others(origin, cs):
    origin.script_versioned("/c/auth", headers=[("Cache-Control", "max-age=60")])
    assert cs.get("/c/auth", headers={"Authorization": "Bearer x"}).body == b"/c/auth v1\n"
    r = cs.get("/c/auth")
    assert r.body == b"/c/auth v2\n", f"anonymous client got the authorized answer ({cache_status(r)})"
    assert origin.count("/c/auth") == 2


def test_set_cookie_never_replayed(origin, cs):
    origin.script_versioned("/c/cookie", headers=lambda req, n: [
        ("Cache-Control", "max-age=60"), ("Set-Cookie", f"sid={n}")])
    cs.get("/c/cookie")
    r = cs.get("/c/cookie")
    assert r.header("Set-Cookie") == "sid=2", r.headers
    assert origin.count("/c/cookie") == 2


def test_tier_ttl_applies_and_expires(origin, cs):
    # /c/* uses tier "basic" (ttl 2s) when the origin says nothing.
    origin.script_versioned("/c/tierttl")
    cs.get("/c/tierttl")
    r = cs.get("/c/tierttl")
    assert_hit(r)
    assert 0 <= cache_status(r).ttl <= 2, cache_status(r)  # the tier's 2 s, not more
    time.sleep(2.2)
    r = cs.get("/c/tierttl")
    assert r.body == b"/c/tierttl v2\n", cache_status(r)
    assert origin.count("/c/tierttl") == 2


def test_tier_ttl_zero_not_stored(origin, cs):
    origin.script_versioned("/z/a")
    r1 = cs.get("/z/a")
    assert "stored" not in cache_status(r1), cache_status(r1)
    cs.get("/z/a")
    assert origin.count("/z/a") == 2


def test_ttl_source_tier_overrides_origin_max_age(origin, cs):
    # tier "short": ttl 3s; the origin's max-age is ignored both ways.
    origin.script_versioned("/t/long", headers=[("Cache-Control", "max-age=600")])
    origin.script_versioned("/t/zero", headers=[("Cache-Control", "max-age=0")])
    for p in ("/t/long", "/t/zero"):
        assert_miss_stored(cs.get(p))
    assert_hit(cs.get("/t/zero"))
    assert origin.count("/t/zero") == 1, "ttl_source: tier must ignore the origin's max-age=0"
    time.sleep(3.2)
    r = cs.get("/t/long")
    assert r.body == b"/t/long v2\n", f"ttl_source: tier must cut max-age=600 to 3s ({cache_status(r)})"
    assert origin.count("/t/long") == 2


@pytest.mark.parametrize("cc", ["no-store", "private"])
def test_ttl_source_tier_still_never_stores_no_store_private(origin, cs, cc):
    path = f"/t/{cc}"
    origin.script_versioned(path, headers=[("Cache-Control", cc)])
    cs.get(path)
    r = cs.get(path)
    assert r.body == f"{path} v2\n".encode(), cache_status(r)
    assert origin.count(path) == 2


def test_jitter_only_shortens(origin, cs):
    # tier "jit": ttl 10s, jitter 50% -> every lifetime in (4, 10].
    ttls = []
    for i in range(12):
        origin.script_versioned(f"/j/{i}")
        cs.get(f"/j/{i}")
        r = cs.get(f"/j/{i}")
        assert_hit(r)
        ttls.append(cache_status(r).ttl)
    assert all(4 <= t <= 10 for t in ttls), ttls


# ---- Vary -------------------------------------------------------------------------------

def test_vary_stores_a_variant_per_header_value(origin, cs):
    origin.script_versioned("/c/vary", headers=[("Vary", "Accept-Language"),
                                                ("Cache-Control", "max-age=60")],
                            body=lambda req, n: f"lang={req.header('Accept-Language')} n={n}".encode())
    en1 = cs.get("/c/vary", headers={"Accept-Language": "en"})
    fr1 = cs.get("/c/vary", headers={"Accept-Language": "fr"})
    assert en1.body == b"lang=en n=1" and fr1.body == b"lang=fr n=2"
    assert_miss_stored(fr1)
    en2 = cs.get("/c/vary", headers={"Accept-Language": "en"})
    fr2 = cs.get("/c/vary", headers={"Accept-Language": "fr"})
    assert en2.body == b"lang=en n=1", (en2.body, cache_status(en2))
    assert fr2.body == b"lang=fr n=2", (fr2.body, cache_status(fr2))
    assert_hit(en2)
    assert_hit(fr2)
    assert origin.count("/c/vary") == 2


def test_vary_missing_header_is_its_own_variant(origin, cs):
    origin.script_versioned("/c/vary2", headers=[("Vary", "Accept-Language"),
                                                 ("Cache-Control", "max-age=60")],
                            body=lambda req, n: f"lang={req.header('Accept-Language')}".encode())
    assert cs.get("/c/vary2", headers={"Accept-Language": "de"}).body == b"lang=de"
    r = cs.get("/c/vary2")
    assert r.body == b"lang=None", f"request without Accept-Language got {r.body!r}"
    assert_hit(cs.get("/c/vary2"))
    assert origin.count("/c/vary2") == 2


# ---- conditional requests and revalidation -------------------------------------------------

def test_if_none_match_on_fresh_entry_is_304_from_cache(origin, cs):
    origin.script_versioned("/c/etag", headers=[("ETag", '"e1"'), ("Cache-Control", "max-age=60")])
    assert_miss_stored(cs.get("/c/etag"))
    r = cs.get("/c/etag", headers={"If-None-Match": '"e1"'})
    assert r.status == 304, (r.status, cache_status(r))
    assert r.body == b""
    assert r.header("ETag") == '"e1"', r.headers
    r = cs.get("/c/etag", headers={"If-None-Match": '"other", "e1"'})
    assert r.status == 304
    r = cs.get("/c/etag", headers={"If-None-Match": '"nope"'})
    assert r.status == 200 and r.body == b"/c/etag v1\n"
    assert_hit(r)
    assert origin.count("/c/etag") == 1


def test_if_modified_since_on_fresh_entry(origin, cs):
    lm = email.utils.formatdate(time.time() - 3600, usegmt=True)
    origin.script_versioned("/c/lm", headers=[("Last-Modified", lm), ("Cache-Control", "max-age=60")])
    cs.get("/c/lm")
    r = cs.get("/c/lm", headers={"If-Modified-Since": lm})
    assert r.status == 304, (r.status, cache_status(r))
    r = cs.get("/c/lm", headers={"If-Modified-Since": http_date(0)})
    assert r.status == 304, (r.status, cache_status(r))
    r = cs.get("/c/lm", headers={"If-Modified-Since": email.utils.formatdate(
        time.time() - 7200, usegmt=True)})
    assert r.status == 200 and r.body == b"/c/lm v1\n"
    assert origin.count("/c/lm") == 1


def test_expired_entry_revalidated_with_etag(origin, cs):
    def answer(req, n):
        if n > 1 and req.header("If-None-Match") == '"e1"':
            return 304
        return 200

    origin.script_versioned(
        "/c/reval", status=answer,
        headers=lambda req, n: [("ETag", '"e1"'), ("Cache-Control", "max-age=1"),
                                ("X-Version", str(n))])
    r1 = cs.get("/c/reval")
    assert_miss_stored(r1)
    assert r1.header("X-Version") == "1"
    time.sleep(1.2)
    r2 = cs.get("/c/reval")
    assert origin.count("/c/reval") == 2
    sent = origin.last("/c/reval")
    assert sent.header("If-None-Match") == '"e1"', f"strata sent {sent.headers}"
    assert r2.status == 200 and r2.body == b"/c/reval v1\n", (r2.status, r2.body)
    assert "fwd=stale" in (r2.header("Cache-Status") or ""), cache_status(r2)
    r3 = cs.get("/c/reval")
    assert_hit(r3)
    assert r3.body == b"/c/reval v1\n"
    assert r3.header("X-Version") == "2", f"304's headers must update the entry: {r3.headers}"
    assert origin.count("/c/reval") == 2


def test_expired_entry_revalidation_gets_new_content(origin, cs):
    def answer(req, n):
        return 304 if req.header("If-None-Match") == f'"e{n}"' else 200

    origin.script_versioned("/c/reval2", status=answer,
                            headers=lambda req, n: [("ETag", f'"e{n}"'),
                                                    ("Cache-Control", "max-age=1")])
    cs.get("/c/reval2")
    time.sleep(1.2)
    r = cs.get("/c/reval2")
    assert origin.last("/c/reval2").header("If-None-Match") == '"e1"'
    assert r.status == 200 and r.body == b"/c/reval2 v2\n", (r.status, r.body, cache_status(r))
    assert r.header("ETag") == '"e2"'
    r = cs.get("/c/reval2")
    assert_hit(r)
    assert r.body == b"/c/reval2 v2\n"
    assert origin.count("/c/reval2") == 2


def test_conditional_request_on_expired_entry_passes_304_through(origin, cs):
    def answer(req, n):
        return 304 if req.header("If-None-Match") == '"same"' else 200

    origin.script_versioned("/c/cond", status=answer,
                            headers=[("ETag", '"same"'), ("Cache-Control", "max-age=1")])
    cs.get("/c/cond")
    time.sleep(1.2)
    r = cs.get("/c/cond", headers={"If-None-Match": '"same"'})
    assert r.status == 304, (r.status, cache_status(r))
    assert origin.count("/c/cond") == 2
    r = cs.get("/c/cond")
    assert r.status == 200 and r.body == b"/c/cond v1\n"
    assert_hit(r)
    assert origin.count("/c/cond") == 2


def test_no_cache_response_stored_but_revalidated_every_time(origin, cs):
    def answer(req, n):
        return 304 if req.header("If-None-Match") == '"nc"' else 200

    origin.script_versioned("/c/nocache", status=answer,
                            headers=[("ETag", '"nc"'), ("Cache-Control", "no-cache, max-age=60")])
    r1 = cs.get("/c/nocache")
    assert "stored" in cache_status(r1), cache_status(r1)
    for i in range(2):
        r = cs.get("/c/nocache")
        assert r.status == 200 and r.body == b"/c/nocache v1\n", (r.status, r.body)
        assert "hit" not in cache_status(r), cache_status(r)
        assert origin.last("/c/nocache").header("If-None-Match") == '"nc"'
    assert origin.count("/c/nocache") == 3


# ---- request directives ----------------------------------------------------------------------

def test_request_no_cache_goes_to_origin(origin, cs):
    origin.script_versioned("/c/rnc", headers=[("Cache-Control", "max-age=60")])
    cs.get("/c/rnc")
    r = cs.get("/c/rnc", headers={"Cache-Control": "no-cache"})
    assert r.status == 200
    assert origin.count("/c/rnc") == 2
    assert "hit" not in cache_status(r), cache_status(r)


def test_request_max_age_0_revalidates(origin, cs):
    origin.script_versioned("/c/rma", headers=[("Cache-Control", "max-age=60")])
    cs.get("/c/rma")
    r = cs.get("/c/rma", headers={"Cache-Control": "max-age=0"})
    assert r.status == 200
    assert origin.count("/c/rma") == 2, cache_status(r)


def test_only_if_cached(origin, cs):
    origin.script_versioned("/c/oic", headers=[("Cache-Control", "max-age=60")])
    r = cs.get("/c/oic", headers={"Cache-Control": "only-if-cached"})
    assert r.status == 504, (r.status, cache_status(r))
    assert origin.count("/c/oic") == 0
    cs.get("/c/oic")
    r = cs.get("/c/oic", headers={"Cache-Control": "only-if-cached"})
    assert r.status == 200 and r.body == b"/c/oic v1\n"
    assert origin.count("/c/oic") == 1


# ---- query keys ---------------------------------------------------------------------------

def test_query_all_is_order_insensitive(origin, cs):
    origin.script_versioned("/q/all/x")
    assert_miss_stored(cs.get("/q/all/x?b=2&a=1"))
    r = cs.get("/q/all/x?a=1&b=2")
    assert_hit(r)
    assert r.body == b"/q/all/x v1\n"
    assert origin.count("/q/all/x") == 1
    r = cs.get("/q/all/x?a=1&b=3")
    assert r.body == b"/q/all/x v2\n", cache_status(r)
    r = cs.get("/q/all/x")
    assert r.body == b"/q/all/x v3\n", cache_status(r)
    assert origin.count("/q/all/x") == 3


def test_query_none_ignores_query(origin, cs):
    origin.script_versioned("/q/none/x")
    cs.get("/q/none/x?p=1")
    for q in ("?p=2", "", "?z=9&p=1"):
        r = cs.get("/q/none/x" + q)
        assert_hit(r)
        assert r.body == b"/q/none/x v1\n"
    assert origin.count("/q/none/x") == 1


def test_query_list_only_named_params_count(origin, cs):
    origin.script_versioned("/q/a/x")
    cs.get("/q/a/x?a=1&z=1")
    r = cs.get("/q/a/x?z=2&a=1")
    assert_hit(r)
    assert r.body == b"/q/a/x v1\n"
    assert origin.count("/q/a/x") == 1
    r = cs.get("/q/a/x?a=2")
    assert r.body == b"/q/a/x v2\n", cache_status(r)
    assert origin.count("/q/a/x") == 2


def test_default_query_key_distinguishes_queries(origin, cs):
    origin.script_versioned("/c/dq")
    cs.get("/c/dq?x=1")
    r = cs.get("/c/dq?x=2")
    assert r.body == b"/c/dq v2\n", cache_status(r)
    assert_hit(cs.get("/c/dq?x=1"))
    assert origin.count("/c/dq") == 2


def test_basic_stats_after_hits_and_misses(origin, cs):
    origin.script_versioned("/c/s1")
    origin.script_versioned("/c/s2")
    for p in ("/c/s1", "/c/s1", "/c/s1", "/c/s2"):
        cs.get(p)
    settle_stats(cs, {"cache.hits": 2, "cache.misses": 2, "cache.hit_ratio": 0.5,
                      ("routes", "/c/*", "hits"): 2, ("routes", "/c/*", "misses"): 2,
                      "tiers.basic.hits": 2, "l1.entries": 2})
