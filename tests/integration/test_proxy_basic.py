"""Pass-through proxying on a bypass route: bodies, framing, connection reuse,
and the headers strata adds or strips toward the origin."""

import hashlib
import http.client
import os
import re
import time

from harness import HOST, RawConn, chunk, default_upstreams, req_bytes, request
from scripted_origin import CLOSE_BODY, chunked_parts, pattern_sha256

TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def test_get_passes_body_status_and_origin_headers(origin, strata):
    s = strata()
    r = s.get("/json/abc")
    assert r.status == 200
    assert r.json() == {"id": "abc", "ok": True}
    assert r.header("Content-Type") == "application/json"
    assert r.header("X-Origin") == "scripted"
    assert r.header("ETag") == '"v1"'
    assert origin.count("/json/abc") == 1


def test_origin_status_codes_pass_through(origin, strata):
    s = strata()
    for code in (201, 404, 418, 503):
        r = s.get(f"/status/{code}")
        assert r.status == code
        assert r.body == f"status {code}\n".encode(), "body must be the origin's, not strata's"
    assert origin.count("/status/404") == 1


def test_bypass_route_sends_cache_status_and_stores_nothing(origin, strata):
    s = strata()
    for _ in range(2):
        r = s.get("/json/same")
        assert r.status == 200
        assert r.header("Cache-Status") == "strata; fwd=bypass"
    assert origin.count("/json/same") == 2


def test_post_1mib_body_arrives_intact(origin, strata):
    s = strata()
    body = os.urandom(1024 * 1024)
    r = request(s.port, "POST", "/echo", body=body,
                headers={"Content-Type": "application/octet-stream"})
    assert r.status == 200
    j = r.json()
    assert j["method"] == "POST"
    assert j["body_len"] == len(body)
    assert j["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert origin.last("/echo").body == body


def test_chunked_request_body_arrives_intact(origin, strata):
    s = strata()
    body = os.urandom(300 * 1024 + 5)
    with RawConn(s.port) as c:
        c.send(req_bytes("POST", "/echo", [("Transfer-Encoding", "chunked"),
                                           ("Content-Type", "application/octet-stream")]))
        off, sizes = 0, [1, 100, 4096, 65536, 7, 100000]
        i = 0
        while off < len(body):
            n = sizes[i % len(sizes)]
            c.send(chunk(body[off:off + n]))
            off += n
            i += 1
        c.send(b"0\r\n\r\n")
        r = c.read_response()
    assert r.status == 200
    j = r.json()
    assert j["body_len"] == len(body)
    assert j["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert origin.last("/echo").body == body


def test_chunked_response_arrives_whole(origin, strata):
    s = strata()
    with RawConn(s.port) as c:
        c.send(req_bytes("GET", "/chunked?parts=60"))
        r = c.read_response()
    assert r.status == 200
    assert r.body == b"".join(chunked_parts(60))
    assert r.header("Content-Type") == "text/plain"


def test_close_delimited_origin_response_delivered_whole(origin, strata):
    s = strata()
    r = s.get("/close")
    assert r.status == 200
    assert r.body == CLOSE_BODY
    # the origin closing its connection must not break the next request
    assert s.get("/json/after").status == 200


def test_50mb_response_to_slow_reader_keeps_rss_bounded(origin, strata, down_port):
    ups = default_upstreams(origin.addr, f"127.0.0.1:{down_port}")
    ups["origin"]["timeout"] = "10s"  # this test is about memory, not the read timeout
    s = strata(upstreams=ups)
    assert s.get("/big?bytes=1048576").status == 200  # warm up buffers and the pool
    idle_kb = s.rss_kb()
    n = 50 * 1024 * 1024
    conn = http.client.HTTPConnection(HOST, s.port, timeout=30)
    conn.request("GET", f"/big?bytes={n}")
    resp = conn.getresponse()
    assert resp.status == 200
    h = hashlib.sha256()
    got, peak_kb, next_sample, paused = 0, idle_kb, 0, False
    while True:
        data = resp.read(16384)
        if not data:
            break
        h.update(data)
        got += len(data)
        if got >= next_sample:
            peak_kb = max(peak_kb, s.rss_kb())
            next_sample += 1024 * 1024
            time.sleep(0.01)  # pacing: this client is much slower than the origin
        if not paused and got >= 8 * 1024 * 1024:
            paused = True  # stop reading a while; a proxy that doesn't push back buffers it all
            for _ in range(10):
                peak_kb = max(peak_kb, s.rss_kb())
                time.sleep(0.05)
    conn.close()
    assert got == n
    assert h.hexdigest() == pattern_sha256(n)
    growth_mb = (peak_kb - idle_kb) / 1024
    assert growth_mb < 32, f"RSS grew {growth_mb:.1f} MB while streaming 50 MB"


def test_keepalive_reuses_client_and_origin_connections(origin, strata):
    s = strata()
    with RawConn(s.port) as c:
        for i in range(10):
            c.send(req_bytes("GET", f"/echo?i={i}"))
            r = c.read_response()  # raises if strata closed the connection
            assert r.status == 200
            assert r.json()["query"] == f"i={i}"
    reqs = origin.requests_for("/echo")
    assert len(reqs) == 10
    assert len({r.conn_id for r in reqs}) == 1, "origin connection was not reused"


def test_pipelined_requests_answered_in_order(origin, strata):
    def slow(req):
        time.sleep(0.3)
        return 200, [("Content-Type", "text/plain")], b"slow:" + req.path.encode()

    origin.script("/slow", slow)
    s = strata()
    with RawConn(s.port) as c:
        c.send(req_bytes("GET", "/slow") + req_bytes("GET", "/echo?n=2")
               + req_bytes("GET", "/json/three"))
        r1, r2, r3 = (c.read_response() for _ in range(3))
    assert r1.body == b"slow:/slow"
    assert r2.json()["query"] == "n=2"
    assert r3.json() == {"id": "three", "ok": True}


def test_head_has_headers_and_no_body(origin, strata):
    s = strata()
    full = s.get("/json/headme")
    with RawConn(s.port) as c:
        c.send(req_bytes("HEAD", "/json/headme"))
        r = c.read_response(head_request=True)
        assert r.status == 200
        assert r.header("Content-Type") == "application/json"
        assert r.header("Content-Length") == str(len(full.body))
        # if strata had sent a body, it would be parsed as the next response's head
        c.send(req_bytes("GET", "/echo?after=head"))
        r2 = c.read_response()
        assert r2.status == 200 and r2.json()["query"] == "after=head"
    assert origin.last("/json/headme").method == "HEAD"


def test_expect_100_continue(origin, strata):
    s = strata()
    body = os.urandom(4096)
    with RawConn(s.port) as c:
        c.send(req_bytes("POST", "/echo", [("Content-Length", str(len(body))),
                                           ("Expect", "100-continue")]))
        interim = c.read_response(timeout=3)
        assert interim.status == 100
        c.send(body)
        r = c.read_final()
    assert r.status == 200
    assert r.json()["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert origin.last("/echo").body == body


def test_client_connection_close_is_honoured(origin, strata):
    s = strata()
    with RawConn(s.port) as c:
        c.send(req_bytes("GET", "/echo", [("Connection", "close")]))
        r = c.read_response()
        assert r.status == 200
        assert c.is_closed(3), "strata kept the connection open after Connection: close"


def test_hop_by_hop_headers_not_forwarded(origin, strata):
    s = strata()
    hop = [("Connection", "X-Secret"), ("X-Secret", "1"), ("Keep-Alive", "timeout=5"),
           ("TE", "trailers"), ("Trailer", "X-Tr"), ("Upgrade", "foo/1"),
           ("Proxy-Authorization", "Basic Zm9vOmJhcg=="), ("Proxy-Connection", "keep-alive")]
    with RawConn(s.port) as c:
        c.send(req_bytes("GET", "/echo", hop + [("X-Keep", "yes")]))
        r = c.read_response()
    assert r.status == 200
    rec = origin.last("/echo")
    assert rec.header("X-Keep") == "yes"
    for name in ("X-Secret", "Keep-Alive", "TE", "Trailer", "Upgrade",
                 "Proxy-Authorization", "Proxy-Connection"):
        assert not rec.has_header(name), f"{name} forwarded to origin: {rec.headers}"
    for v in rec.header_all("Connection"):
        assert "x-secret" not in v.lower()


def test_hop_by_hop_headers_not_returned_to_client(origin, strata):
    origin.script("/hoppy", lambda req: (200, [("Connection", "X-Origin-Secret"),
                                              ("X-Origin-Secret", "1"),
                                              ("Keep-Alive", "timeout=99"),
                                              ("X-Fine", "yes")], b"hoppy"))
    s = strata()
    r = s.get("/hoppy")
    assert r.status == 200 and r.body == b"hoppy"
    assert r.header("X-Fine") == "yes"
    assert r.header("X-Origin-Secret") is None
    assert r.header("Keep-Alive") is None
    for v in r.header_all("Connection"):
        assert "x-origin-secret" not in v.lower()


def test_forwarding_headers_added(origin, strata):
    s = strata()
    with RawConn(s.port) as c:
        c.send(req_bytes("GET", "/echo", host="api.example.test:8443"))
        assert c.read_response().status == 200
    rec = origin.last("/echo")
    assert rec.header_all("Host") == ["api.example.test:8443"]
    assert rec.header("X-Forwarded-For") == "127.0.0.1"
    assert rec.header("X-Forwarded-Proto") == "http"
    assert rec.header("Via") == "1.1 strata"


def test_x_forwarded_for_appended(origin, strata):
    s = strata()
    assert s.get("/echo", headers={"X-Forwarded-For": "1.2.3.4"}).status == 200
    assert origin.last("/echo").header_all("X-Forwarded-For") == ["1.2.3.4, 127.0.0.1"]


def test_client_request_id_forwarded_and_returned(origin, strata):
    s = strata()
    rid = "3f2c9a1e-7b4d-4c21-9e0f-5a6b7c8d9e0f"
    r = s.get("/echo", headers={"X-Request-Id": rid})
    assert r.status == 200
    assert origin.last("/echo").header_all("X-Request-Id") == [rid]
    assert r.header("X-Request-Id") == rid


def test_request_id_generated_when_absent(origin, strata):
    s = strata()
    ids = []
    for _ in range(2):
        r = s.get("/echo")
        sent = origin.last("/echo").header_all("X-Request-Id")
        assert len(sent) == 1 and sent[0], "origin got no X-Request-Id"
        assert r.header("X-Request-Id") == sent[0], "client got a different id than the origin"
        ids.append(sent[0])
    assert ids[0] != ids[1], "generated request ids repeat"


def test_traceparent_forwarded_when_valid(origin, strata):
    s = strata()
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    assert s.get("/echo", headers={"traceparent": f"00-{trace}-00f067aa0ba902b7-01"}).status == 200
    sent = origin.last("/echo").header_all("traceparent")
    assert len(sent) == 1
    m = TRACEPARENT.match(sent[0])
    assert m, f"bad traceparent toward origin: {sent[0]!r}"
    assert m.group(1) == trace, "trace id not kept"


def test_traceparent_started_when_absent_or_invalid(origin, strata):
    s = strata()
    for hdrs in ({}, {"traceparent": "garbage"}):
        assert s.get("/echo", headers=hdrs).status == 200
        sent = origin.last("/echo").header_all("traceparent")
        assert len(sent) == 1, f"origin got traceparent {sent} for client headers {hdrs}"
        m = TRACEPARENT.match(sent[0])
        assert m, f"bad traceparent toward origin: {sent[0]!r}"
        assert m.group(1) != "0" * 32 and m.group(2) != "0" * 16
