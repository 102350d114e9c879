"""The TTL-tier advisor in /stats: a route whose tier is too short for data that does not
change gets told to move to the longer tier; one whose data changes on every fetch is told to
keep its tier; answers that are never stored (no-store) or revalidated on every use
(no-cache) replay as misses under every tier, and the origin's own max-age makes the advisor
say the tier hardly applies; refetches after expiry are compared with what was stored (a 304
to strata's validators, or the same body); the replayed hit ratio of the route's own tier
matches what the route really did, with two workers; routes without a tier have no
advisor."""

import re
import time

from harness import cache_config, cache_route, wait_until

TIERS = {
    "short": {"ttl": "300ms", "jitter": "0%"},
    "long": {"ttl": "30s", "jitter": "0%"},
}
KEYS = 5
ROUNDS = 40


def same_answer(req):
    """Unchanged data with a validator: a 304 when strata revalidates with it."""
    if req.header("if-none-match") == '"v1"':
        return 304, [("ETag", '"v1"')], b""
    return 200, [("ETag", '"v1"'), ("Content-Type", "text/plain")], b"the same answer\n"


def with_cache_control(value):
    def fn(req):
        return 200, [("Cache-Control", value), ("ETag", '"v1"'), ("Content-Type", "text/plain")], \
            b"an answer\n"
    return fn


PREFIXES = ("/same/", "/changing/", "/nostore/", "/nocache/", "/maxage/")


def start(strata, origin):
    origin.script_prefix("/same/", same_answer)
    origin.script_prefix("/nostore/", with_cache_control("no-store"))
    origin.script_prefix("/nocache/", with_cache_control("no-cache"))
    origin.script_prefix("/maxage/", with_cache_control("max-age=60"))
    fetches = {}

    def changing(req):  # a new body on every fetch, no validator
        fetches[req.path] = fetches.get(req.path, 0) + 1
        return 200, [("Content-Type", "text/plain")], f"{req.path} v{fetches[req.path]}\n".encode()
    origin.script_prefix("/changing/", changing)
    return strata(config_text=lambda s: cache_config(
        s, [cache_route(p + "*", tier="short") for p in PREFIXES], TIERS))


def drive(s):
    """Every key of every route every 100 ms for 4 s: with a 300 ms TTL about one request in
    three misses; with 30 s only the first."""
    for _ in range(ROUNDS):
        t0 = time.monotonic()
        for k in range(KEYS):
            for prefix in PREFIXES:
                r = s.get(f"{prefix}k{k}")
                assert r.status == 200, (r.status, r.body)
        time.sleep(max(0.0, 0.1 - (time.monotonic() - t0)))


def test_a_too_short_tier_for_unchanging_data_gets_the_longer_one(origin, strata):
    s = start(strata, origin)
    drive(s)
    route = s.stats()["routes"]["/same/*"]
    # Every refetch of an expired entry was a revalidation the origin answered 304.
    assert route["refetches"] >= 10, route
    assert route["refetch_unchanged"] == route["refetches"], route
    assert route["refetch_unchanged_ratio"] == 1.0, route
    adv = route["advisor"]
    assert adv["sampled_requests"] == KEYS * ROUNDS, adv
    assert adv["sampled_keys"] == KEYS and adv["sample_rate"] == 1.0, adv
    assert set(adv["tiers"]) == {"short", "long"}, adv
    assert adv["tiers"]["long"] >= 0.95, adv
    assert adv["tiers"]["long"] - adv["tiers"]["short"] >= 0.2, adv
    # The replay of the route's own tier is what the route really did (two workers: their
    # requests are replayed in time order).
    assert abs(adv["tiers"]["short"] - route["hit_ratio"]) <= 0.03, (adv, route)
    assert adv["refetches"] >= 10 and adv["refetch_unchanged"] == adv["refetches"], adv
    assert adv["tier_ttl_ratio"] == 1.0, adv
    assert re.fullmatch(r"short \u2192 long: \+\d+% hit ratio \(\d+% \u2192 \d+%\), "
                        r"100% of refetches were unchanged", adv["suggestion"]), adv
    # The replayed ratios are in /metrics too.
    metrics = s.admin_get("/metrics").body.decode()
    m = re.search(r'^strata_route_tier_hit_ratio_estimate\{route="/same/\*",tier="long"\} '
                  r'([0-9.]+)$', metrics, re.M)
    assert m and float(m.group(1)) >= 0.95, metrics[-3000:]


def test_data_that_changes_on_every_fetch_keeps_its_tier(origin, strata):
    s = start(strata, origin)
    drive(s)
    route = s.stats()["routes"]["/changing/*"]
    assert route["refetches"] >= 10, route
    assert route["refetch_unchanged"] == 0, route
    assert route["refetch_unchanged_ratio"] == 0.0, route
    adv = route["advisor"]
    assert adv["tiers"]["long"] - adv["tiers"]["short"] >= 0.2, adv
    assert re.fullmatch(r"keep short: long would add \+\d+% hit ratio, but 100% of refetches "
                        r"had changed", adv["suggestion"]), adv


def test_answers_that_are_not_stored_replay_as_misses(origin, strata):
    s = start(strata, origin)
    drive(s)
    routes = s.stats()["routes"]
    for prefix in ("/nostore/", "/nocache/"):
        route = routes[prefix + "*"]
        adv = route["advisor"]
        # no-store: never stored; no-cache: stored but every use asks the origin (a 304).
        assert route["hit_ratio"] == 0.0, (prefix, route)
        assert adv["tiers"] == {"short": 0.0, "long": 0.0}, (prefix, adv)
        assert adv["suggestion"].startswith("keep short: long would change the hit ratio by "
                                            "only +0%"), (prefix, adv)
    # no-cache entries were revalidated while still fresh: not refetches of expired ones
    assert routes["/nocache/*"]["refetches"] == 0, routes["/nocache/*"]


def test_the_origins_max_age_makes_the_tier_moot(origin, strata):
    s = start(strata, origin)
    drive(s)
    route = s.stats()["routes"]["/maxage/*"]
    adv = route["advisor"]
    assert adv["tier_ttl_ratio"] == 0.0, adv
    assert adv["suggestion"] == ("keep short: the origin's Cache-Control set the lifetime of "
                                 "100% of the stored answers, so the tier's ttl hardly applies "
                                 "(ttl_source: tier makes it apply)"), adv


def test_a_client_that_forbids_the_cache_is_a_miss_under_every_tier(origin, strata):
    s = start(strata, origin)
    for _ in range(5):
        assert s.get("/same/k0", headers={"Cache-Control": "no-cache"}).status == 200
    adv = s.stats()["routes"]["/same/*"]["advisor"]
    assert adv["sampled_requests"] == 5 and adv["tiers"] == {"short": 0.0, "long": 0.0}, adv


def test_the_advisor_needs_traffic_and_a_tier(origin, strata):
    s = start(strata, origin)
    for k in range(3):
        assert s.get(f"/same/k{k}").status == 200
    assert s.get("/bypassed").status == 200
    routes = s.stats()["routes"]
    adv = routes["/same/*"]["advisor"]
    assert adv["sampled_requests"] == 3 and adv["suggestion"] is None, adv
    assert routes["/changing/*"]["advisor"] is None, routes["/changing/*"]  # no request yet
    assert routes["/changing/*"]["refetch_unchanged_ratio"] is None
    assert routes["/*"]["requests"] >= 1 and routes["/*"]["advisor"] is None, routes["/*"]
    # The counters are in /metrics too.
    metrics = s.admin_get("/metrics").body.decode()
    assert re.search(r'^strata_route_refetches_total\{route="/same/\*"\} 0$', metrics, re.M), \
        metrics[:2000]


def test_a_reload_with_other_tiers_starts_the_estimate_afresh(origin, strata):
    s = start(strata, origin)
    for k in range(3):
        assert s.get(f"/same/k{k}").status == 200
    assert s.stats()["routes"]["/same/*"]["advisor"]["sampled_requests"] == 3
    text = cache_config(s, [cache_route("/same/*", tier="short")],
                        dict(TIERS, long={"ttl": "60s", "jitter": "0%"}))
    s.reload(text)
    wait_until(lambda: "reloaded" in s.log(), msg="reload")
    assert s.stats()["routes"]["/same/*"]["advisor"] is None
    assert s.get("/same/k0").status == 200
    assert s.stats()["routes"]["/same/*"]["advisor"]["sampled_requests"] == 1
