"""Self-test of the harness: the scripted origin and the clients, without strata.
If these fail, the other integration tests' verdicts mean nothing."""

import hashlib
import json
import threading

import pytest

from harness import (ConnectionClosed, RawConn, chunk, free_port, get, req_bytes, request,
                     wait_until)
from scripted_origin import CLOSE_BODY, chunked_parts, pattern_bytes, pattern_sha256


def test_echo_records_request(origin):
    r = request(origin.port, "POST", "/echo?a=1", body=b"hello",
                headers={"X-Case-Kept": "v"})
    assert r.status == 200
    j = r.json()
    assert j["method"] == "POST" and j["path"] == "/echo" and j["query"] == "a=1"
    assert j["body_len"] == 5 and j["body_sha256"] == hashlib.sha256(b"hello").hexdigest()
    rec = origin.last("/echo")
    assert ("X-Case-Kept", "v") in rec.headers
    assert origin.count("/echo") == 1 and origin.connections == 1


def test_keepalive_and_pipelining(origin):
    with RawConn(origin.port) as c:
        c.send(b"".join(req_bytes("GET", f"/echo?n={i}") for i in range(3)))
        for i in range(3):
            assert c.read_response().json()["query"] == f"n={i}"
        c.send(req_bytes("GET", "/json/x"))
        assert c.read_response().json() == {"id": "x", "ok": True}
    assert origin.connections == 1
    assert {r.conn_id for r in origin.requests} == {1}


def test_chunked_request_and_expect(origin):
    body = b"".join(bytes([i]) * 1000 for i in range(10))
    with RawConn(origin.port) as c:
        c.send(req_bytes("POST", "/echo", [("Transfer-Encoding", "chunked")]))
        for i in range(10):
            c.send(chunk(body[i * 1000:(i + 1) * 1000]))
        c.send(b"0\r\n\r\n")
        j = c.read_response().json()
        assert j["body_len"] == len(body)
        c.send(req_bytes("PUT", "/echo", [("Content-Length", "3"), ("Expect", "100-continue")]))
        assert c.read_response().status == 100
        c.send(b"abc")
        assert c.read_response().json()["body_len"] == 3
    assert origin.requests_for("/echo")[0].chunked


def test_endpoints(origin):
    assert get(origin.port, "/status/503").status == 503
    assert get(origin.port, "/delay/50").status == 200
    r = get(origin.port, "/chunked?parts=7")
    assert r.body == b"".join(chunked_parts(7))
    r = get(origin.port, "/big?bytes=200000")
    assert r.body == pattern_bytes(200000)
    assert hashlib.sha256(pattern_bytes(300001)).hexdigest() == pattern_sha256(300001)
    with RawConn(origin.port) as c:
        c.send(req_bytes("GET", "/close"))
        r = c.read_response()
        assert r.header("Content-Length") is None and r.body == CLOSE_BODY
    with RawConn(origin.port) as c:
        c.send(req_bytes("GET", "/garbage"))
        with pytest.raises(ValueError):
            c.read_response()
    with RawConn(origin.port) as c:
        c.send(req_bytes("HEAD", "/json/abc"))
        r = c.read_response(head_request=True)
        assert int(r.header("Content-Length")) == len(json.dumps({"id": "abc", "ok": True}))
        c.send(req_bytes("GET", "/status/204"))
        assert c.read_response().status == 204


def test_hang_and_script(origin):
    origin.script("/custom", lambda req: (418, [("X-A", "b")], b"tea"))
    r = get(origin.port, "/custom")
    assert (r.status, r.header("X-A"), r.body) == (418, "b", b"tea")
    c = RawConn(origin.port)
    c.send(req_bytes("GET", "/hang"))
    wait_until(lambda: origin.count("/hang") == 1, 2)
    with pytest.raises(TimeoutError):
        c.read_response(timeout=0.3)
    c.close()


def test_raw_client_sees_close(origin):
    with RawConn(origin.port) as c:
        c.send(req_bytes("GET", "/echo", [("Connection", "close")]))
        assert c.read_response().status == 200
        assert c.is_closed(2)
        with pytest.raises(ConnectionClosed):
            c.read_response(timeout=1)


def test_down_port_refuses(down_port):
    with pytest.raises(ConnectionRefusedError):
        get(down_port, "/")


def test_redis_fixture(redis):
    import socket
    with socket.create_connection(("127.0.0.1", redis.port), timeout=2) as s:
        s.sendall(b"SET k v\r\nGET k\r\n")
        data = b""
        while b"$1\r\nv\r\n" not in data:
            chunk = s.recv(100)  # times out after 2 s rather than spinning
            assert chunk, f"redis closed the connection; got {data!r}"
            data += chunk
    assert data == b"+OK\r\n$1\r\nv\r\n"


def test_origin_stop_unblocks_hang():
    from scripted_origin import Origin
    o = Origin()
    c = RawConn(o.port)
    c.send(req_bytes("GET", "/hang"))
    wait_until(lambda: o.count("/hang") == 1, 2)
    t = threading.Thread(target=o.stop)
    t.start()
    t.join(5)
    assert not t.is_alive()
    assert c.is_closed(2)
    c.close()


def test_free_port_is_bindable_outside_the_ephemeral_range_and_never_repeats():
    import socket
    from harness import _ephemeral_range
    lo, hi = _ephemeral_range()
    seen = set()
    for _ in range(50):
        p = free_port()
        assert p not in seen, f"port {p} handed out twice"
        seen.add(p)
        assert not lo <= p <= hi, f"port {p} is in the ephemeral range {lo}-{hi}"
        with socket.socket() as s:
            s.bind(("127.0.0.1", p))


def test_port_ranges_outside_any_ephemeral_range():
    from harness import _port_ranges
    assert _port_ranges(32768, 60999) == [(10000, 32767), (61000, 65535)]
    assert _port_ranges(1024, 65535) == []          # no room: free_port falls back to bind(0)
    assert _port_ranges(1024, 60000) == [(60001, 65535)]
    assert _port_ranges(2000, 65535) == [(1024, 1999)]
