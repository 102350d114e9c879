"""Bad input and origin failures (DESIGN.md "Errors"). After every case a normal
GET on a new connection must still succeed; where framing is in doubt
(400/431/413/408) the connection that got the error must be closed."""

import time

import pytest

from harness import RawConn, assert_still_serving, chunk, req_bytes, wait_until


def assert_error_and_closed(c, status, timeout=5.0):
    r = c.read_final(timeout=timeout)
    assert r.status == status, f"expected {status}, got {r.status} {r.body[:200]!r}"
    assert c.is_closed(3), f"connection left open after {status}"
    return r


@pytest.mark.parametrize("line", [b"NOT A REQUEST\r\n\r\n",
                                  b"GET /a b c\r\nHost: x\r\n\r\n",
                                  b"GET /echo HTTP/1.1\r\nBad Header Line\r\n\r\n"],
                         ids=["garbage", "extra-tokens", "bad-header"])
def test_malformed_request_is_400(origin, strata, line):
    s = strata()
    with RawConn(s.port) as c:
        c.send(line)
        assert_error_and_closed(c, 400)
    assert origin.total() == 0
    assert_still_serving(s)


def test_header_block_over_limit_is_431(origin, strata):
    s = strata()  # max_header_bytes: 8KiB
    with RawConn(s.port) as c:  # under the limit: fine
        c.send(req_bytes("GET", "/echo", [("X-Big", "a" * 6000)]))
        assert c.read_response().status == 200
    with RawConn(s.port) as c:
        c.send(req_bytes("GET", "/echo", [("X-Big", "a" * 10000)]))
        assert_error_and_closed(c, 431)
    assert origin.count("/echo") == 1
    assert_still_serving(s)


def test_content_length_over_max_body_is_413_without_sending_body(origin, strata):
    s = strata()  # max_body: 2MiB
    with RawConn(s.port) as c:
        c.send(req_bytes("POST", "/echo", [("Content-Length", str(3 * 1024 * 1024))]))
        assert_error_and_closed(c, 413, timeout=3)
    assert origin.total() == 0
    assert_still_serving(s)


def test_expect_100_continue_over_max_body_is_413_not_100(origin, strata):
    s = strata()
    with RawConn(s.port) as c:
        c.send(req_bytes("PUT", "/echo", [("Content-Length", str(3 * 1024 * 1024)),
                                          ("Expect", "100-continue")]))
        r = c.read_response(timeout=3)
        assert r.status == 413, f"expected 413 before any 100 Continue, got {r.status}"
        assert c.is_closed(3)
    assert origin.total() == 0
    assert_still_serving(s)


def test_chunked_body_growing_past_max_body_is_413(origin, strata):
    s = strata()
    piece = b"z" * 65536
    with RawConn(s.port) as c:
        c.send(req_bytes("POST", "/echo", [("Transfer-Encoding", "chunked")]))
        sent = 0
        try:
            while sent < 4 * 1024 * 1024 and not c.readable(0):
                c.send(chunk(piece))
                sent += len(piece)
        except (BrokenPipeError, ConnectionResetError):
            pass  # strata may answer and close while we are still sending
        assert_error_and_closed(c, 413)
    assert origin.count("/echo") == 0, "origin got a complete oversized body"
    assert_still_serving(s)


def test_stalled_request_head_gets_408_and_close(origin, strata):
    s = strata()  # header_timeout: 1s
    with RawConn(s.port) as c:
        c.send(b"GET /echo HTTP/1.1\r\nHost: strata.test\r\n")  # head never finished
        t0 = time.monotonic()
        assert s.get("/json/meanwhile").status == 200  # a stalled client stalls no one else
        r = c.read_response(timeout=5)
        elapsed = time.monotonic() - t0
        assert r.status == 408
        assert elapsed >= 0.8, f"408 after {elapsed:.2f}s, before header_timeout"
        assert c.is_closed(3)
    assert origin.count("/echo") == 0
    assert_still_serving(s)


def test_content_length_with_transfer_encoding_is_400(origin, strata):
    s = strata()
    with RawConn(s.port) as c:
        c.send(req_bytes("POST", "/echo", [("Content-Length", "5"),
                                           ("Transfer-Encoding", "chunked")])
               + b"0\r\n\r\n")
        assert_error_and_closed(c, 400)
    assert origin.total() == 0
    assert_still_serving(s)


@pytest.mark.parametrize("raw", [
    b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
], ids=["conflicting-content-length", "bad-chunk-size"])
def test_bad_body_framing_is_400(origin, strata, raw):
    s = strata()
    with RawConn(s.port) as c:
        c.send(raw)
        assert_error_and_closed(c, 400)
    assert origin.count("/echo") == 0
    assert_still_serving(s)


def test_no_route_is_404(origin, strata):
    s = strata(routes=[{"match": "/api/*", "upstream": "origin", "strategy": "bypass"}])
    r = s.get("/other")
    assert r.status == 404
    assert origin.total() == 0
    assert_still_serving(s, "/api/echo")


def test_origin_down_is_502(origin, strata):
    s = strata()
    r = s.get("/down/thing")
    assert r.status == 502
    assert_still_serving(s)


def test_hung_origin_is_504_and_other_clients_proceed(origin, strata):
    s = strata()  # upstream timeout: 1s
    with RawConn(s.port) as c:
        c.send(req_bytes("GET", "/hang"))
        t0 = time.monotonic()
        wait_until(lambda: origin.count("/hang") == 1, 3, msg="origin to receive /hang")
        # while that exchange waits, other clients are served
        assert s.get("/echo?meanwhile=1").status == 200
        r = c.read_final(timeout=5)
        assert r.status == 504
        assert time.monotonic() - t0 >= 0.8, "504 before the upstream timeout"
    assert origin.count("/hang") == 1
    assert_still_serving(s)


def test_garbage_from_origin_is_502(origin, strata):
    s = strata()
    r = s.get("/garbage")
    assert r.status == 502
    assert origin.count("/garbage") == 1
    assert_still_serving(s)
