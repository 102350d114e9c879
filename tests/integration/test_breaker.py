"""upstreams.<name>.breaker: a failing origin is left alone for open_for (fast 503 with
Retry-After, or a stale answer where the route allows one), then probed, then trusted
again."""

import time

from harness import cache_config, cache_status, default_upstreams, wait_until

BREAKER = {"window": "10s", "min_requests": 5, "error_ratio": "50%", "open_for": "1s",
           "probes": 2}


def upstreams(s, **breaker):
    ups = default_upstreams(s.origin_addr, s.down_addr)
    ups["origin"]["breaker"] = dict(BREAKER, **breaker)
    return ups


def test_breaker_opens_answers_fast_then_probes_and_closes(origin, strata):
    s = strata(config_text=lambda s: s.render(upstreams=upstreams(s), workers=2))
    state = {"status": 500}
    origin.script_prefix("/b/", lambda req: (state["status"], [], b"x\n"))
    for i in range(5):  # the window fills with failures: the fifth opens it
        assert s.get(f"/b/{i}").status == 500
    t0 = time.monotonic()
    r = s.get("/b/open")
    assert r.status == 503 and time.monotonic() - t0 < 0.5
    assert r.header("Retry-After") == "1"
    assert b"circuit breaker" in r.body
    assert origin.count("/b/open") == 0  # the origin was not asked
    assert s.stats()["origin"]["breaker_rejected"] >= 1
    assert s.stats()["origin"]["breakers"]["origin"]["state"] == "open"
    metrics = s.admin_get("/metrics").body.decode()
    assert 'strata_breaker_state{upstream="origin"} 1' in metrics
    assert 'strata_breaker_opens_total{upstream="origin"} 1' in metrics
    state["status"] = 200  # the origin heals
    wait_until(lambda: s.get("/b/heal").status == 200, 3, interval=0.1, msg="a probe through")
    wait_until(lambda: s.get("/b/heal").status == 200 and
               s.stats()["origin"]["breakers"]["origin"]["state"] == "closed", 3, interval=0.05,
               msg="closed after the probes")
    log = s.log()
    assert "upstream origin: open" in log and "half-open" in log and "closed" in log
    assert s.stats()["origin"]["breakers"]["origin"]["opens"] == 1


def test_a_failed_probe_opens_it_again(origin, strata):
    s = strata(config_text=lambda s: s.render(upstreams=upstreams(s), workers=1))
    origin.script_prefix("/b/", lambda req: (502, [], b"x\n"))
    for i in range(5):
        s.get(f"/b/{i}")
    assert s.get("/b/x").status == 503
    # Requests after open_for are the probes: the first fails and opens it again.
    wait_until(lambda: s.get("/b/p").status == 502 and
               s.stats()["origin"]["breakers"]["origin"]["opens"] == 2, 4, interval=0.1,
               msg="reopened by the failed probe")
    assert s.get("/b/y").status == 503


def test_cached_route_answers_stale_while_the_breaker_is_open(origin, strata):
    tiers = {"hot": {"ttl": "1s", "stale_if_error": "1m"}}
    route = {"match": "/c/*", "upstream": "origin", "strategy": "cache-aside", "tier": "hot",
             "ttl_source": "tier"}
    s = strata(config_text=lambda s: cache_config(s, [route], tiers,
                                                  upstreams=upstreams(s, open_for="30s")))
    origin.script_versioned("/c/item")
    assert s.get("/c/item").body == b"/c/item v1\n"
    origin.script_prefix("/b/", lambda req: (500, [], b"x\n"))
    for i in range(5):
        s.get(f"/b/{i}")
    assert s.stats()["origin"]["breakers"]["origin"]["state"] == "open"
    before = origin.count("/c/item")
    # Once the entry's 1 s ttl is over, it is answered stale instead of asking the origin.
    wait_until(lambda: "stale-if-error" in (s.get("/c/item").header("Cache-Status") or ""), 3,
               interval=0.1, msg="a stale answer once the entry expired")
    r = s.get("/c/item")
    assert r.status == 200 and r.body == b"/c/item v1\n"
    assert origin.count("/c/item") == before  # the origin was left alone
