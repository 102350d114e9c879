"""HTTP behaviour users expect from a cache (RFC 9111): no-cache answers with a
validator are stored even on a strict (ttl: 0) tier and revalidated on every
use."""

from harness import CacheStatus, cache_config, cache_route


def test_no_cache_with_validator_is_stored_on_a_ttl_0_tier(origin, strata):
    s = strata(config_text=lambda s: cache_config(s, [cache_route(tier="strict")],
                                                  {"strict": {"ttl": 0}}))

    def answer(req, n):
        if req.header("If-None-Match") == '"v1"':
            return 304
        return 200

    origin.script_versioned("/c/nc", status=answer,
                            headers=[("Cache-Control", "no-cache"), ("ETag", '"v1"')])
    first = s.get("/c/nc")
    assert first.status == 200 and "stored" in CacheStatus(first.header("Cache-Status"))
    second = s.get("/c/nc")
    assert second.status == 200 and second.body == b"/c/nc v1\n"
    assert origin.last("/c/nc").header("If-None-Match") == '"v1"'  # revalidated, not refetched
    assert origin.count("/c/nc") == 2


def test_invalid_cdn_cache_control_is_ignored_whole(origin, strata):
    s = strata(config_text=lambda s: cache_config(s, [cache_route()], {"hot": {"ttl": "60s"}}))
    origin.script_versioned("/c/cdn-bad", headers=[("Cache-Control", "no-store"),
                                                   ("CDN-Cache-Control", 'max-age="600"')])
    origin.script_versioned("/c/cdn-ok", headers=[("Cache-Control", "no-store"),
                                                  ("CDN-Cache-Control", "max-age=600")])
    for path in ("/c/cdn-bad", "/c/cdn-ok"):
        s.get(path)
        s.get(path)
    assert origin.count("/c/cdn-bad") == 2, "a malformed CDN-Cache-Control must not cache"
    assert origin.count("/c/cdn-ok") == 1


def test_head_miss_fills_the_cache(origin, strata):
    from harness import RawConn, req_bytes
    s = strata(config_text=lambda s: cache_config(s, [cache_route()], {"hot": {"ttl": "60s"}}))
    origin.script_versioned("/c/h", headers=[("Cache-Control", "max-age=60")])
    with RawConn(s.port) as c:
        c.send(req_bytes("HEAD", "/c/h"))
        r = c.read_response(head_request=True)
    assert r.status == 200 and r.body == b""
    assert r.header("Content-Length") == str(len(b"/c/h v1\n"))
    assert [q.method for q in origin.requests_for("/c/h")] == ["GET"], "fetched as a GET"
    with RawConn(s.port) as c:  # the same host as the HEAD: the same key
        c.send(req_bytes("GET", "/c/h"))
        hit = c.read_response()
    assert hit.body == b"/c/h v1\n" and "hit" in CacheStatus(hit.header("Cache-Status"))
    with RawConn(s.port) as c:  # and a HEAD hit has no body either
        c.send(req_bytes("HEAD", "/c/h"))
        r = c.read_response(head_request=True)
    assert r.status == 200 and r.body == b"" and "hit" in CacheStatus(r.header("Cache-Status"))
    assert origin.count("/c/h") == 1


BODY = bytes(range(48, 48 + 64))  # 64 bytes "0123..."


def range_setup(origin, strata):
    s = strata(config_text=lambda s: cache_config(s, [cache_route()], {"hot": {"ttl": "60s"}}))
    origin.script("/c/r", lambda req: (200, [("Cache-Control", "max-age=60"), ("ETag", '"r1"'),
                                             ("Content-Type", "text/plain"),
                                             ("Accept-Ranges", "bytes")], BODY))
    return s


def test_range_miss_fetches_whole_and_answers_the_range(origin, strata):
    s = range_setup(origin, strata)
    r = s.get("/c/r", headers={"Range": "bytes=0-3"})
    assert r.status == 206, (r.status, r.headers)
    assert r.body == BODY[:4]
    assert r.header("Content-Range") == f"bytes 0-3/{len(BODY)}"
    assert "stored" in CacheStatus(r.header("Cache-Status"))
    assert not origin.last("/c/r").has_header("Range"), "the origin is asked for the whole"
    hit = s.get("/c/r", headers={"Range": "bytes=-5"})
    assert hit.status == 206 and hit.body == BODY[-5:]
    assert "hit" in CacheStatus(hit.header("Cache-Status"))
    whole = s.get("/c/r")
    assert whole.status == 200 and whole.body == BODY
    assert origin.count("/c/r") == 1


def test_multiple_ranges_are_multipart_byteranges(origin, strata):
    s = range_setup(origin, strata)
    s.get("/c/r")
    r = s.get("/c/r", headers={"Range": "bytes=0-1, 10-12"})
    assert r.status == 206
    ctype = r.header("Content-Type")
    assert ctype.startswith("multipart/byteranges; boundary=")
    boundary = ctype.split("boundary=")[1].encode()
    parts = [p for p in r.body.split(b"--" + boundary) if p.strip() not in (b"", b"--")]
    assert len(parts) == 2
    for part, (a, b) in zip(parts, [(0, 1), (10, 12)]):
        head, _, data = part.partition(b"\r\n\r\n")
        assert b"Content-Type: text/plain" in head
        assert f"Content-Range: bytes {a}-{b}/{len(BODY)}".encode() in head
        assert data.rstrip(b"\r\n") == BODY[a:b + 1]
    assert int(r.header("Content-Length")) == len(r.body)


def test_unsatisfiable_range_is_416_and_if_range_mismatch_is_the_whole(origin, strata):
    s = range_setup(origin, strata)
    s.get("/c/r")
    r = s.get("/c/r", headers={"Range": "bytes=100-"})
    assert r.status == 416
    assert r.header("Content-Range") == f"bytes */{len(BODY)}"
    r = s.get("/c/r", headers={"Range": "bytes=0-3", "If-Range": '"other"'})
    assert r.status == 200 and r.body == BODY
    r = s.get("/c/r", headers={"Range": "bytes=0-3", "If-Range": '"r1"'})
    assert r.status == 206 and r.body == BODY[:4]
    r = s.get("/c/r", headers={"Range": "items=0-3"})  # another unit: ignored
    assert r.status == 200 and r.body == BODY
    assert origin.count("/c/r") == 1


def test_early_hints_are_relayed_and_never_stored(origin, strata):
    from harness import RawConn, req_bytes
    s = strata(config_text=lambda s: cache_config(s, [cache_route()], {"hot": {"ttl": "60s"}}))
    origin.script("/c/eh", lambda req: (200, [("X-Interim", "103 Link: </a.css>; rel=preload"),
                                              ("Cache-Control", "max-age=60")], b"final\n"))
    with RawConn(s.port) as c:
        c.send(req_bytes("GET", "/c/eh"))
        first = c.read_response()
        assert first.status == 103, first.status
        assert first.header("Link") == "</a.css>; rel=preload"
        final = c.read_response()
        assert final.status == 200 and final.body == b"final\n"
        c.send(req_bytes("GET", "/c/eh"))  # the hit: the stored answer, no 103
        hit = c.read_response()
        assert hit.status == 200 and hit.body == b"final\n"
        assert "hit" in CacheStatus(hit.header("Cache-Status"))
    # An HTTP/1.0 client never sees a 1xx.
    origin.script("/eh10", lambda req: (200, [("X-Interim", "103 Link: </b>")], b"ok"))
    with RawConn(s.port) as c:
        c.send(b"GET /eh10 HTTP/1.0\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and r.body == b"ok"
    assert origin.count("/c/eh") == 1
