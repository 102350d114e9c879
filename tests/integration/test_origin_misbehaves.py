"""Origins that misbehave like real ones: each answer must reach the client as
a clean error or a close (never a short body presented as complete), nothing
truncated or ambiguous is cached, other clients are not affected, and the
upstream pool recovers."""

import http.client
import socket
import threading
import time

import pytest

from harness import HOST, assert_still_serving, cache_config, cache_route, get, wait_until


def start(strata, timeout="1s"):
    return strata(config_text=lambda s: cache_config(
        s, [cache_route("/bad/*")], {"hot": {"ttl": "60s"}}, upstream_timeout=timeout))


def outcome(s, path):
    """(status, body) of a GET, or ("cut", error) when the connection broke off."""
    try:
        r = get(s.port, path, timeout=10)
        return r.status, r.body
    except (http.client.IncompleteRead, http.client.RemoteDisconnected,
            ConnectionResetError) as e:
        return "cut", repr(e)


@pytest.mark.parametrize("path", ["/bad/rst-mid-body", "/bad/stall-mid-body"])
def test_body_that_breaks_off_is_cut_and_not_cached(origin, strata, path):
    s = start(strata)
    for _ in range(2):
        st, _ = outcome(s, path)
        assert st == "cut", f"a broken-off body was presented as complete: {st}"
    assert origin.count(path) == 2, "a truncated answer was cached"
    assert s.stats()["l1"]["entries"] == 0
    assert_still_serving(s)


@pytest.mark.parametrize("path", ["/bad/chunk-framing", "/bad/cl-and-te", "/bad/two-cl",
                                  "/bad/no-status"])
def test_ambiguous_framing_is_an_error_and_not_cached(origin, strata, path):
    s = start(strata)
    for _ in range(2):
        st, body = outcome(s, path)
        assert st == "cut" or st == 502, (st, body)
    assert origin.count(path) == 2
    assert s.stats()["l1"]["entries"] == 0
    assert_still_serving(s)


def test_interim_answer_with_a_body_is_not_a_response(origin, strata):
    from harness import RawConn, req_bytes
    s = start(strata)
    with RawConn(s.port) as c:
        c.send(req_bytes("GET", "/bad/interim-body"))
        first = c.read_response()
        assert first.status == 199 and first.body == b""  # relayed, without any body
        final = c.read_response()
        assert final.status == 502, (final.status, final.body[:100])
    assert s.stats()["l1"]["entries"] == 0
    assert_still_serving(s)


def test_body_longer_than_declared_is_not_passed_on(origin, strata):
    s = start(strata)
    st, body = outcome(s, "/bad/longer-than-declared")
    assert st == 200 and body == b"hello"  # exactly what was declared
    # The extra bytes must not be read as the next answer on a reused connection.
    for i in range(5):
        r = get(s.port, f"/json/{i}")
        assert r.status == 200 and r.json()["id"] == str(i)


def test_response_headers_over_the_limit_are_a_502(origin, strata):
    s = start(strata)
    r = get(s.port, "/bad/huge-headers")
    assert r.status == 502, r.status
    assert r.json()["error"] == "origin's response head is too large"
    assert_still_serving(s)


def test_origin_that_never_accepts_hits_connect_timeout(strata):
    lst = socket.socket()
    lst.bind((HOST, 0))
    lst.listen(0)
    port = lst.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):  # fill the accept queue: further connects get no answer
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex((HOST, port))
            fillers.append(c)
        ups = {"origin": {"servers": [f"{HOST}:{port}"], "connect_timeout": "300ms",
                          "timeout": "5s"}}
        s = strata(config_text=lambda s: s.render(
            upstreams=ups, routes=[{"match": "/*", "upstream": "origin", "strategy": "bypass"}]))
        t0 = time.monotonic()
        r = get(s.port, "/x", timeout=10)
        took = time.monotonic() - t0
        assert r.status in (502, 504), r.status
        assert took < 3, f"answered after {took:.1f}s: connect_timeout is 300 ms"
        assert r.json()["error"].startswith("origin")
    finally:
        for c in fillers:
            c.close()
        lst.close()


def test_upstream_with_one_dead_server_keeps_serving(origin, strata, down_port):
    ups = {"origin": {"servers": [origin.addr, f"{HOST}:{down_port}"],
                      "connect_timeout": "300ms", "timeout": "2s"}}
    s = strata(config_text=lambda s: s.render(
        upstreams=ups, routes=[{"match": "/*", "upstream": "origin", "strategy": "bypass"}],
        workers=1))
    # At once, so that each needs a new origin connection: round-robin reaches the dead one.
    statuses = []

    def one(i):
        statuses.append(get(s.port, f"/delay/100?i={i}").status)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(statuses) == [200] * 10, statuses
    assert origin.count("/delay/100") == 10
