"""The memory tier stays within `cache.memory` (eviction), objects over
`max_object` stream through uncached, and /stats + /metrics count exactly what
the test did."""

import re
import time

from harness import cache_config, cache_route, cache_status, request, script_blob, settle_stats
from scripted_origin import pattern_bytes

MiB = 1024 * 1024


def _metric(text, name, labels=None):
    lab = re.escape("{" + labels + "}") if labels else ""
    m = re.search(rf"^{re.escape(name)}{lab}\s+([0-9.eE+-]+)\s*$", text, re.M)
    return float(m.group(1)) if m else None


def test_memory_bound_and_eviction(origin, strata):
    tiers = {"hot": {"ttl": "60s", "jitter": "0%"}}
    s = strata(config_text=lambda s: cache_config(
        s, [cache_route("/m", tier="hot", key={"query": "all"})], tiers,
        memory="2MiB", max_object="64KiB"))
    script_blob(origin)
    size = 32 * 1024
    body = pattern_bytes(size)
    # warm up allocator and pools with one cache-full of objects
    for i in range(64):
        assert s.get(f"/m?bytes={size}&i=w{i}").body == body
    base = s.rss_kb()
    n = 20 * 2 * MiB // size  # 20x the memory tier
    for i in range(n):
        r = s.get(f"/m?bytes={size}&i={i}")
        assert r.status == 200 and len(r.body) == size, (i, r.status, len(r.body))
    assert r.body == body
    growth_mb = (s.rss_kb() - base) / 1024
    st = s.stats()
    l1 = st["l1"]
    assert l1["capacity_bytes"] == 2 * MiB, l1
    assert 0 < l1["bytes"] <= l1["capacity_bytes"], l1
    assert l1["evictions"] > 0, l1
    assert l1["entries"] <= 2 * MiB // size, l1
    assert growth_mb < 20, f"RSS grew {growth_mb:.1f} MB after {n * size // MiB} MiB of objects; l1 {l1}"
    # The most recent object is still served from the cache; an early one is gone.
    before = origin.count("/m")
    assert "hit" in cache_status(s.get(f"/m?bytes={size}&i={n - 1}"))
    assert origin.count("/m") == before
    s.get(f"/m?bytes={size}&i=0")
    assert origin.count("/m") == before + 1, "the first object survived 40 MiB of fills in a 2 MiB tier"


def test_object_over_max_object_streams_uncached(origin, strata):
    tiers = {"hot": {"ttl": "60s", "jitter": "0%"}}
    s = strata(config_text=lambda s: cache_config(
        s, [cache_route("/m", tier="hot", key={"query": "all"})], tiers,
        memory="2MiB", max_object="64KiB"))
    script_blob(origin)
    n = 100 * 1024
    for i in range(2):
        r = s.get(f"/m?bytes={n}")
        assert r.status == 200 and r.body == pattern_bytes(n), (r.status, len(r.body))
        assert "stored" not in cache_status(r) and "hit" not in cache_status(r), cache_status(r)
    assert origin.count("/m") == 2
    # an object just under the limit is stored
    m = 60 * 1024
    s.get(f"/m?bytes={m}")
    assert "hit" in cache_status(s.get(f"/m?bytes={m}"))
    assert origin.count("/m") == 3
    st = settle_stats(s, {"l1.entries": 1})
    assert st["l1"]["bytes"] >= m, st["l1"]


def test_stats_and_metrics_count_exactly(origin, strata):
    tiers = {"hot": {"ttl": "30s", "jitter": "0%"}}
    s = strata(config_text=lambda s: cache_config(s, [cache_route("/c/*", tier="hot")], tiers))
    origin.script_versioned("/c/a")
    origin.script_versioned("/c/b")
    for p in ("/c/a", "/c/a", "/c/a", "/c/b", "/c/b"):
        assert s.get(p).status == 200
    for _ in range(2):
        assert s.get("/echo").status == 200  # the bypass catch-all
    assert origin.count("/c/a") == 1 and origin.count("/c/b") == 1
    st = settle_stats(s, {
        "cache.hits": 3, "cache.misses": 2, "cache.stale": 0, "cache.collapsed": 0,
        "cache.bypass": 2, "cache.hit_ratio": 0.6,
        "tiers.hot.hits": 3, "tiers.hot.misses": 2, "tiers.hot.hit_ratio": 0.6,
        ("routes", "/c/*", "requests"): 5, ("routes", "/c/*", "hits"): 3,
        ("routes", "/c/*", "misses"): 2, ("routes", "/c/*", "hit_ratio"): 0.6,
        ("routes", "/c/*", "strategy"): "cache-aside", ("routes", "/c/*", "tier"): "hot",
        ("routes", "/*", "requests"): 2, ("routes", "/*", "strategy"): "bypass",
        "l1.entries": 2, "invalidations.local": 0,
    })
    assert st["requests"] == 7, st["requests"]
    text = s.admin_get("/metrics").body.decode()
    assert _metric(text, "strata_cache_hits_total") == 3, text[:3000]
    assert _metric(text, "strata_cache_misses_total") == 2, text[:3000]
    assert _metric(text, "strata_route_hits_total", 'route="/c/*"') == 3, \
        [line for line in text.splitlines() if "route" in line][:20]
    # a write and an admin invalidation
    assert request(s.port, "POST", "/c/a", body=b"x").status == 200
    r = request(s.admin_port, "POST", "/invalidate", body='{"key":"/c/b"}')
    assert r.status == 200 and r.json() == {"invalidated": 1}, r.body
    settle_stats(s, {"invalidations.local": 2, "l1.entries": 0, "cache.hits": 3})


def test_stale_counts_in_hit_ratio(origin, strata):
    tiers = {"sie": {"ttl": "1s", "jitter": "0%", "stale_if_error": "10s"}}
    s = strata(config_text=lambda s: cache_config(s, [cache_route("/c/*", tier="sie")], tiers))
    origin.script_versioned("/c/s")
    s.get("/c/s")
    s.get("/c/s")
    time.sleep(1.2)
    origin.script_versioned("/c/s", status=500)
    r = s.get("/c/s")
    assert r.status == 200 and cache_status(r).get("detail") == "stale-if-error", cache_status(r)

    def ratio_ok(st):
        c = st["cache"]
        want = (c["hits"] + c["stale"]) / (c["hits"] + c["stale"] + c["misses"])
        return abs(c["hit_ratio"] - want) < 1e-3

    st = settle_stats(s, {"cache.stale": 1, "cache.hits": 1, "hit_ratio": ratio_ok,
                          ("routes", "/c/*", "requests"): 3})
    assert st["cache"]["misses"] in (1, 2), st["cache"]
