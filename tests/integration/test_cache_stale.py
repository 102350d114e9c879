"""Serving stale: stale-while-revalidate (answer at once, refresh once in the
background) and stale-if-error (origin fails or is down: answer stale)."""

import time

from harness import (cache_config, cache_route, cache_status, default_upstreams,
                     settle_stats, wait_until)
from scripted_origin import Origin

TIERS = {
    # expired after 2 s, then served stale-while-revalidate for 3 s
    "swr": {"ttl": "2s", "jitter": "0%", "stale_while_revalidate": "3s"},
    # no swr window: expired after 1 s, stale-if-error for 3 s more (wide enough that a
    # stalled CI machine cannot leave it by accident between two requests)
    "sie": {"ttl": "1s", "jitter": "0%", "stale_if_error": "3s"},
    # like sie but a long error window
    "sielong": {"ttl": "1s", "jitter": "0%", "stale_if_error": "10s"},
    # a plain tier: neither window
    "plain": {"ttl": "1s", "jitter": "0%"},
}


def start(strata, origin2=None):
    def cfg(s):
        ups = default_upstreams(s.origin_addr, s.down_addr)
        if origin2 is not None:
            ups["o2"] = {"servers": [origin2.addr], "connect_timeout": "300ms", "timeout": "2s"}
        routes = [cache_route("/swr/*", tier="swr"),
                  cache_route("/sie/*", tier="sie"),
                  cache_route("/sielong/*", tier="sielong"),
                  cache_route("/plain/*", tier="plain")]
        if origin2 is not None:
            routes = [cache_route("/o2long/*", tier="sielong", upstream="o2"),
                      cache_route("/o2/*", tier="sie", upstream="o2")] + routes
        return cache_config(s, routes, TIERS, upstreams=ups, upstream_timeout="3s")
    return strata(config_text=cfg)


def timed_get(s, path, headers=None):
    t0 = time.monotonic()
    r = s.get(path, headers=headers)
    return r, time.monotonic() - t0


def assert_stale(r, detail, body):
    cst = cache_status(r)
    assert r.status == 200, (r.status, r.body[:200], cst)
    assert r.body == body, (r.body, cst)
    assert "hit" in cst, f"stale answer must be a hit: {cst}"
    # strictly negative is checked by test_stale_answer_ttl_is_negative
    assert cst.ttl is not None and cst.ttl <= 0, f"stale answer needs a negative ttl: {cst}"
    assert cst.get("detail") == detail, f"want detail={detail}: {cst}"
    assert r.header("Age") is not None, r.headers


# ---- stale-while-revalidate ----------------------------------------------------------

def test_stale_while_revalidate_answers_at_once_and_refreshes_once(origin, strata):
    s = start(strata)
    origin.script_versioned("/swr/a")
    assert cache_status(s.get("/swr/a")).fwd == "miss"
    time.sleep(2.2)
    # From now on the origin is slow (1 s) and serves v2. RFC 9111 4.2.3 counts the
    # 1 s response delay into the refreshed entry's age, so it is fresh for 1 s of its 2.
    origin.script_versioned("/swr/a", delay=1.0)
    r, dt = timed_get(s, "/swr/a")
    assert_stale(r, "stale-while-revalidate", b"/swr/a v1\n")
    # The origin takes 1 s: an answer well under that did not wait for it.
    assert dt < 0.8, f"stale answer took {dt:.2f}s: it waited for the origin"
    for _ in range(3):
        r, dt = timed_get(s, "/swr/a")
        assert_stale(r, "stale-while-revalidate", b"/swr/a v1\n")
        assert dt < 0.8, dt
    wait_until(lambda: origin.count("/swr/a") == 2, 3, msg="one background refresh")

    def refreshed():
        r = s.get("/swr/a")
        return r if r.body == b"/swr/a v2\n" else None

    r = wait_until(refreshed, 3, msg="the refreshed entry")
    cst = cache_status(r)
    assert "hit" in cst and cst.ttl >= 0 and cst.get("detail") is None, cst
    assert origin.count("/swr/a") == 2, "more than one background refresh reached the origin"
    assert s.alive()
    settle_stats(s, {"cache.stale": lambda st: st["cache"]["stale"] >= 4})


def test_origin_stale_while_revalidate_directive_overrides_tier(origin, strata):
    s = start(strata)
    # Tier "plain" has no swr window; the origin grants 3 s.
    origin.script_versioned("/plain/x", headers=[("Cache-Control", "max-age=1, stale-while-revalidate=3")])
    # Tier "swr" grants 3 s; the origin says 0.
    origin.script_versioned("/swr/zero", headers=[("Cache-Control", "max-age=1, stale-while-revalidate=0")])
    s.get("/plain/x")
    s.get("/swr/zero")
    time.sleep(1.2)
    r = s.get("/plain/x")
    assert_stale(r, "stale-while-revalidate", b"/plain/x v1\n")
    wait_until(lambda: origin.count("/plain/x") == 2, 3, msg="background refresh of /plain/x")
    r = s.get("/swr/zero")
    assert r.body == b"/swr/zero v2\n", \
        f"origin's stale-while-revalidate=0 must override the tier's 3s: {cache_status(r)}"
    assert origin.count("/swr/zero") == 2


def test_no_stale_window_means_synchronous_refetch(origin, strata):
    s = start(strata)
    origin.script_versioned("/plain/y")
    s.get("/plain/y")
    time.sleep(1.2)
    r = s.get("/plain/y")
    assert r.body == b"/plain/y v2\n", cache_status(r)
    assert "detail" not in cache_status(r), cache_status(r)
    assert origin.count("/plain/y") == 2


# ---- stale-if-error ------------------------------------------------------------------------

def test_stale_if_error_on_origin_500_then_past_window(origin, strata):
    s = start(strata)
    origin.script_versioned("/sie/a")
    assert cache_status(s.get("/sie/a")).fwd == "miss"
    time.sleep(1.2)
    origin.script_versioned("/sie/a", status=500)
    r = s.get("/sie/a")
    assert_stale(r, "stale-if-error", b"/sie/a v1\n")
    assert origin.count("/sie/a") == 2
    r = s.get("/sie/a")
    assert_stale(r, "stale-if-error", b"/sie/a v1\n")
    # ttl 1s + stale_if_error 3s: past 4 s the error reaches the client.
    time.sleep(3.1)
    r = s.get("/sie/a")
    assert r.status == 500, (r.status, r.body, cache_status(r))
    assert r.body.startswith(b"/sie/a v"), r.body


def test_stale_if_error_on_503(origin, strata):
    s = start(strata)
    origin.script_versioned("/sielong/b")
    s.get("/sielong/b")
    time.sleep(1.2)
    origin.script_versioned("/sielong/b", status=503)
    assert_stale(s.get("/sielong/b"), "stale-if-error", b"/sielong/b v1\n")


def test_stale_if_error_origin_down(origin, strata):
    o2 = Origin()
    try:
        s = start(strata, origin2=o2)
        o2.script_versioned("/o2/a")
        o2.script_versioned("/o2long/a")
        assert s.get("/o2/a").body == b"/o2/a v1\n"
        assert s.get("/o2long/a").body == b"/o2long/a v1\n"
        o2.stop()  # nothing listens any more: connect refused
        time.sleep(1.2)
        assert_stale(s.get("/o2/a"), "stale-if-error", b"/o2/a v1\n")
        assert_stale(s.get("/o2long/a"), "stale-if-error", b"/o2long/a v1\n")
        time.sleep(3.1)
        # /o2/* is past its 3 s error window; /o2long/* is not.
        r = s.get("/o2/a")
        assert r.status == 502, (r.status, r.body[:200], cache_status(r))
        assert_stale(s.get("/o2long/a"), "stale-if-error", b"/o2long/a v1\n")
        assert s.alive()
    finally:
        o2.stop()


def test_no_stale_if_error_window_passes_the_error(origin, strata):
    s = start(strata)
    origin.script_versioned("/plain/e")
    s.get("/plain/e")
    time.sleep(1.2)
    origin.script_versioned("/plain/e", status=500)
    r = s.get("/plain/e")
    assert r.status == 500, (r.status, cache_status(r))


def test_stale_answer_ttl_is_negative(origin, strata):
    """Cache-Status on a stale answer carries a negative ttl, also in the first
    second after expiry (e.g. 0.2 s stale -> ttl=-1, not ttl=0)."""
    s = start(strata)
    origin.script_versioned("/sielong/n")
    s.get("/sielong/n")
    time.sleep(1.2)
    origin.script_versioned("/sielong/n", status=500)
    r = s.get("/sielong/n")
    cst = cache_status(r)
    assert cst.get("detail") == "stale-if-error", cst
    assert cst.ttl is not None and cst.ttl < 0, f"stale answer 0.2 s past expiry: {cst}"


def test_error_while_fresh_is_not_seen(origin, strata):
    """A fresh entry is served without asking the origin, whatever state it is in."""
    s = start(strata)
    origin.script_versioned("/sielong/f", headers=[("Cache-Control", "max-age=30")])
    s.get("/sielong/f")
    origin.script_versioned("/sielong/f", status=500)
    r = s.get("/sielong/f")
    assert r.status == 200 and "hit" in cache_status(r), cache_status(r)
    assert origin.count("/sielong/f") == 1
