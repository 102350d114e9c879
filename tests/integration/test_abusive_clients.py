"""Clients that hold on to strata without sending a request worth serving: a body
that trickles in (limits.body_timeout) and one address opening many connections
(limits.max_connections_per_ip). Each must cost the others nothing."""

import time

from harness import RawConn, assert_still_serving, req_bytes, wait_until


def test_a_body_that_trickles_in_is_cut_by_body_timeout(origin, strata):
    # A byte every 0.3 s never pauses as long as header_timeout (1 s), but the whole body
    # would take 30 s: body_timeout (1.5 s) ends it with 408.
    s = strata(limits={"body_timeout": "1500ms"})
    with RawConn(s.port) as c:
        c.send(req_bytes("POST", "/echo", [("Content-Length", "100")]))
        t0 = time.monotonic()
        answered = None
        for _ in range(100):
            if c.readable(0.3):
                answered = c.read_response(timeout=5)
                break
            try:
                c.send(b"x")
            except OSError:
                break
            assert s.get("/json/meanwhile").status == 200  # nobody else waits for it
        elapsed = time.monotonic() - t0
        assert answered is not None, "no answer to a body that trickles in"
        assert answered.status == 408
        assert b"body_timeout" in answered.body
        assert 1.2 <= elapsed < 5, elapsed
        assert c.is_closed(3)
    assert_still_serving(s)


def test_a_body_that_pauses_longer_than_header_timeout_is_408(origin, strata):
    s = strata(limits={"body_timeout": "30s"})  # header_timeout: 1s
    with RawConn(s.port) as c:
        c.send(req_bytes("POST", "/echo", [("Content-Length", "10")]) + b"abc")
        r = c.read_response(timeout=5)
        assert r.status == 408 and b"header_timeout" in r.body
        assert c.is_closed(3)
    assert_still_serving(s)


def test_a_body_in_time_is_served(origin, strata):
    s = strata(limits={"body_timeout": "1500ms"})
    with RawConn(s.port) as c:
        c.send(req_bytes("POST", "/echo", [("Content-Length", "6")]) + b"abc")
        assert not c.readable(0.5)
        c.send(b"def")
        r = c.read_response(timeout=5)
        assert r.status == 200


def test_connections_per_ip_over_the_limit_are_closed_and_others_served(origin, strata):
    s = strata(limits={"max_connections_per_ip": 3})
    held = [RawConn(s.port) for _ in range(3)]
    try:
        for c in held:  # each of the three is served
            c.send(req_bytes("GET", "/echo"))
            assert c.read_response(timeout=5).status == 200
        with RawConn(s.port) as extra:  # the fourth from this address is closed at once
            assert extra.is_closed(3)
        wait_until(lambda: s.stats()["connections"]["rejected"] >= 1, 3, msg="counted")
        held.pop().close()  # one goes: room for one more
        wait_until(lambda: s.get("/echo").status == 200, 3, msg="a new connection served")
    finally:
        for c in held:
            c.close()
    # The server counts a closed connection out when it sees the close: until then a new
    # one may still be over the limit.
    wait_until(lambda: s.get("/echo?still=serving").status == 200, 5, msg="room again")
    assert_still_serving(s)
