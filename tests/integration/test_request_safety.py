"""Requests strata must refuse or treat safely: Host rules (RFC 9112 3.2),
header names that are not tokens, underscores in header names, forwarding
headers that would poison a shared cache, timeouts that must not be retried,
and what strata's own error answers carry."""

import email.utils

import pytest

from harness import (RawConn, assert_still_serving, cache_config, cache_route, get,
                     req_bytes)


def raw(s, data):
    with RawConn(s.port) as c:
        c.send(data)
        r = c.read_final()
        closed = c.is_closed(3)
    return r, closed


@pytest.mark.parametrize("head,why", [
    (b"GET /echo HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n", "more than one Host"),
    (b"GET /echo HTTP/1.1\r\nhost: a.test\r\nHOST: a.test\r\n\r\n", "more than one Host"),
    (b"GET /echo HTTP/1.1\r\nAccept: */*\r\n\r\n", "missing Host"),
    (b"GET /echo HTTP/1.1\r\nHost: a b.test\r\n\r\n", "invalid Host"),
    (b"GET /echo HTTP/1.1\r\nHost: a.test/evil\r\n\r\n", "invalid Host"),
    (b"GET /echo HTTP/1.1\r\nHost: a.test:80x\r\n\r\n", "invalid Host"),
    (b"GET /echo HTTP/1.0\r\nHost: a.test\r\nHost: b.test\r\n\r\n", "more than one Host"),
], ids=["two", "two-cases", "none", "space", "slash", "bad-port", "two-http10"])
def test_host_rules_are_400_with_the_reason(origin, strata, head, why):
    s = strata()
    r, closed = raw(s, head)
    assert r.status == 400, (r.status, r.body)
    assert why in r.json()["error"], r.body
    assert closed
    assert origin.total() == 0
    assert_still_serving(s)


def test_empty_host_and_http10_without_host_are_served(origin, strata):
    s = strata()
    r, _ = raw(s, b"GET /echo HTTP/1.1\r\nHost:\r\nConnection: close\r\n\r\n")
    assert r.status == 200
    r, _ = raw(s, b"GET /echo HTTP/1.0\r\n\r\n")
    assert r.status == 200
    assert origin.count("/echo") == 2


@pytest.mark.parametrize("name", ["Transfer Encoding", "X Forwarded Host"])
def test_header_name_that_is_not_a_token_is_400(origin, strata, name):
    s = strata()
    r, closed = raw(s, req_bytes("GET", "/echo", [(name, "chunked")]))
    assert r.status == 400, (r.status, r.body)
    assert "header field name" in r.json()["error"]
    assert closed
    assert origin.total() == 0
    assert_still_serving(s)


def test_underscore_headers_are_dropped_by_default(origin, strata):
    s = strata()
    r = get(s.port, "/echo", headers={"Transfer_Encoding": "chunked",
                                      "X_Forwarded_For": "10.9.9.9", "X-Ok": "1"})
    assert r.status == 200
    sent = origin.last("/echo")
    assert sent.header("X-Ok") == "1"
    assert not sent.has_header("Transfer_Encoding")
    assert not sent.has_header("X_Forwarded_For")


def test_underscore_headers_kept_when_configured(origin, strata):
    s = strata(limits={"underscores_in_headers": True})
    assert get(s.port, "/echo", headers={"X_Tenant": "t1"}).status == 200
    assert origin.last("/echo").header("X_Tenant") == "t1"


UNKEYED = {"X-Forwarded-Host": "evil.example", "X-Forwarded-Scheme": "nothttp",
           "X-Original-URL": "/admin", "X-Rewrite-URL": "/admin",
           "X-HTTP-Method-Override": "DELETE", "Forwarded": "host=evil.example",
           "X-Forwarded-Proto": "gopher"}


def test_unkeyed_headers_do_not_reach_the_origin_on_a_cached_route(origin, strata):
    s = strata(config_text=lambda s: cache_config(s, [cache_route()], {"hot": {"ttl": "60s"}}))
    r = get(s.port, "/c/x", headers=UNKEYED)
    assert r.status == 200
    sent = origin.last("/c/x")
    for name in UNKEYED:
        if name == "X-Forwarded-Proto":
            assert sent.header_all(name) == ["http"], "strata sets its own"
        else:
            assert not sent.has_header(name), f"{name} reached the origin"
    # A bypass route still forwards them (nothing is shared there).
    assert get(s.port, "/echo", headers={"X-Forwarded-Host": "a.example"}).status == 200
    assert origin.last("/echo").header("X-Forwarded-Host") == "a.example"


def test_keyed_header_is_forwarded_and_splits_the_cache(origin, strata):
    route = cache_route(key={"headers": ["X-Forwarded-Host"]})
    s = strata(config_text=lambda s: cache_config(s, [route], {"hot": {"ttl": "60s"}}))
    a = {"X-Forwarded-Host": "a.example"}
    b = {"X-Forwarded-Host": "b.example"}
    assert get(s.port, "/c/k", headers=a).status == 200
    assert origin.last("/c/k").header("X-Forwarded-Host") == "a.example"
    assert get(s.port, "/c/k", headers=b).status == 200  # another key: a miss
    assert get(s.port, "/c/k", headers=a).status == 200  # a hit
    assert origin.count("/c/k") == 2


def test_timeout_on_a_pooled_connection_is_not_retried(origin, strata):
    s = strata(workers=1)  # origin timeout: 1s
    assert get(s.port, "/echo").status == 200  # leaves a pooled connection
    r = get(s.port, "/delay/1500", timeout=10)
    assert r.status == 504, (r.status, r.body)
    assert r.json()["error"] == "origin timed out"
    assert origin.count("/delay/1500") == 1, "a timed-out request was sent again"
    st = s.stats()
    assert st["origin"]["retries"] == 0
    assert st["origin"]["timeouts"] == 1


def test_own_answers_carry_date_via_id_and_the_cause(origin, strata):
    s = strata()
    r = get(s.port, "/down/x", headers={"X-Request-Id": "req-1"})
    assert r.status == 502
    assert email.utils.parsedate_to_datetime(r.header("Date")) is not None
    assert r.header("Via") == "1.1 strata"
    assert r.header("X-Request-Id") == "req-1"
    assert r.json() == {"error": "origin refused the connection", "status": 502,
                        "request_id": "req-1"}
    r, _ = raw(s, b"GET /x HTTP/1.1\r\nHost: a.test\r\nBad Header Line\r\n\r\n")
    assert r.status == 400
    assert r.header("Date") and r.json()["error"].startswith("malformed request: ")
    assert r.header("X-Request-Id")


def test_error_on_a_caching_route_is_not_fwd_bypass(origin, strata):
    route = cache_route(match="/down/*", upstream="down")
    s = strata(config_text=lambda s: cache_config(s, [route], {"hot": {"ttl": "60s"}}))
    r = get(s.port, "/down/x")
    assert r.status == 502
    assert "fwd=bypass" not in r.header("Cache-Status"), r.header("Cache-Status")
    assert "fwd=miss" in r.header("Cache-Status")


def test_via_on_every_answer(origin, strata):
    """RFC 9110 7.6.3: a proxy adds itself to Via on responses too."""
    s = strata(config_text=lambda s: cache_config(s, [cache_route()], {"hot": {"ttl": "60s"}}))
    origin.script("/c/v", lambda req: (200, [("Via", "1.1 upstream-lb"),
                                             ("Cache-Control", "max-age=60")], b"v"))
    miss = get(s.port, "/c/v")
    hit = get(s.port, "/c/v")
    passed = get(s.port, "/echo")
    for r in (miss, hit):
        assert r.header_all("Via") == ["1.1 upstream-lb", "1.1 strata"], r.headers
    assert passed.header_all("Via") == ["1.1 strata"]
    assert origin.count("/c/v") == 1
