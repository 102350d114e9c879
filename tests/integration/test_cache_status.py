"""Cache-Status tells the truth (RFC 9211): why a request went forward, and
what an only-if-cached miss answers."""

from harness import CacheStatus, cache_config, cache_route


def start(strata):
    return strata(config_text=lambda s: cache_config(s, [cache_route()], {"hot": {"ttl": "60s"}}))


def test_fwd_request_when_the_clients_directives_forced_the_fetch(origin, strata):
    s = start(strata)
    origin.script_versioned("/c/f", headers=[("Cache-Control", "max-age=60")])
    assert s.get("/c/f").status == 200
    for cc in ("max-age=0", "no-cache"):
        r = s.get("/c/f", headers={"Cache-Control": cc})
        assert r.status == 200
        st = CacheStatus(r.header("Cache-Status"))
        assert st.get("fwd") == "request", (cc, r.header("Cache-Status"))
    assert origin.count("/c/f") == 3
    r = s.get("/c/f")  # and the cache still answers plain requests
    assert "hit" in CacheStatus(r.header("Cache-Status"))
    assert origin.count("/c/f") == 3


def test_only_if_cached_miss_is_504_fwd_miss_and_says_why(origin, strata):
    s = start(strata)
    r = s.get("/c/none", headers={"Cache-Control": "only-if-cached"})
    assert r.status == 504
    st = CacheStatus(r.header("Cache-Status"))
    assert st.get("fwd") == "miss" and st.get("detail") == "only-if-cached", r.header("Cache-Status")
    assert "only-if-cached" in r.json()["error"]
    assert "timed out" not in r.json()["error"]
    assert origin.total() == 0
