/*
 * stats.c - /stats (JSON) and /metrics (Prometheus) from the summed
 * counters of every thread, the per-route and per-tier counters of the
 * current config, the memory tier and the origin latency histograms.
 *
 * hit_ratio = (hits + stale) / (hits + stale + misses); 0 with no lookups.
 */
#include "admin/stats.h"

#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "cache/advisor.h"
#include "cache/tier.h"
#include "core/server.h"
#include "origin/breaker.h"
#include "origin/servers.h"
#include "st_build.h"
#include "base/stats.h"

#define MAX_BLOCKS 1100

struct snapshot {
    uint64_t v[ST_STAT__COUNT];
    struct st_stats *blocks[MAX_BLOCKS];
    size_t n_blocks;
    struct st_store_stats l1;
    enum st_shared_state l2;
    enum st_bus_state bus;
    struct st_server_cfg *cref;
    struct st_advisor *advisor;
};

static void take(struct st_server *srv, struct snapshot *s)
{
    s->n_blocks = st_server_stat_blocks(srv, s->blocks, MAX_BLOCKS);
    st_stats_sum(s->blocks, s->n_blocks, s->v);
    struct st_cache_tier_stats ts;
    st_cache_tier_stats(st_server_tier(srv), &ts);
    s->l1 = ts.l1;
    s->l2 = ts.l2;
    s->bus = ts.bus;
    s->cref = st_server_config(srv);
    s->advisor = st_server_advisor(srv);
}

/* A per-route (tier = false) or per-tier counter summed over every thread. */
static uint64_t sum_rs(const struct snapshot *s, bool tier, unsigned slot, enum st_rstat k)
{
    uint64_t n = 0;
    for (size_t i = 0; i < s->n_blocks; i++) {
        _Atomic uint64_t *c = tier ? &s->blocks[i]->tier[slot][k] : &s->blocks[i]->route[slot][k];
        n += atomic_load_explicit(c, memory_order_relaxed);
    }
    return n;
}

/* The upstream slot's histogram summed over every thread; returns the sum of latencies in us. */
static uint64_t sum_latency(const struct snapshot *s, unsigned slot, uint64_t out[ST_LAT_BUCKETS])
{
    uint64_t sum_us = 0;
    memset(out, 0, sizeof(uint64_t) * ST_LAT_BUCKETS);
    for (size_t i = 0; i < s->n_blocks; i++) {
        for (unsigned b = 0; b < ST_LAT_BUCKETS; b++)
            out[b] += atomic_load_explicit(&s->blocks[i]->latency[slot][b], memory_order_relaxed);
        sum_us += atomic_load_explicit(&s->blocks[i]->latency_sum_us[slot], memory_order_relaxed);
    }
    return sum_us;
}

static double ratio(uint64_t good, uint64_t total)
{
    return total ? (double)good / (double)total : 0.0;
}

static double hit_ratio(uint64_t hits, uint64_t stale, uint64_t misses)
{
    return ratio(hits + stale, hits + stale + misses);
}

const char *st_admin_bus_state(enum st_bus_state b)
{
    switch (b) {
    case ST_BUS_NONE:
        return "none";
    case ST_BUS_DOWN:
        return "down";
    case ST_BUS_CATCHING_UP:
        return "catching-up";
    case ST_BUS_UP:
        return "up";
    }
    return "?";
}

static void group_extra(struct st_sb *sb, const char *group, const uint64_t v[ST_STAT__COUNT],
                        void *arg)
{
    const struct snapshot *s = arg;
    if (strcmp(group, "cache") == 0) {
        st_sb_addf(sb, ",\"hit_ratio\":%.4f,\"byte_hit_ratio\":%.4f",
                   hit_ratio(v[ST_STAT_CACHE_HITS], v[ST_STAT_CACHE_STALE],
                             v[ST_STAT_CACHE_MISSES]),
                   ratio(v[ST_STAT_CACHE_BYTES_HIT], v[ST_STAT_CACHE_BYTES_SENT]));
    } else if (strcmp(group, "l2") == 0) {
        st_sb_addf(sb, ",\"enabled\":%s,\"connected\":%s", s->l2 != ST_SHARED_NONE ? "true" : "false",
                   s->l2 == ST_SHARED_UP ? "true" : "false");
    } else if (strcmp(group, "bus") == 0) {
        st_sb_addf(sb, ",\"state\":\"%s\"", st_admin_bus_state(s->bus));
    } else if (strcmp(group, "origin") == 0) {
        const struct st_config *cfg = s->cref->cfg;
        st_sb_adds(sb, ",\"latency\":{");
        for (size_t i = 0; i < cfg->n_upstreams; i++) {
            uint64_t b[ST_LAT_BUCKETS], n = 0;
            uint64_t sum_us = sum_latency(s, cfg->upstreams[i].stats_slot, b);
            for (unsigned k = 0; k < ST_LAT_BUCKETS; k++)
                n += b[k];
            st_sb_addf(sb, "%s", i ? "," : "");
            st_sb_add_json_str(sb, cfg->upstreams[i].name, strlen(cfg->upstreams[i].name));
            st_sb_addf(sb,
                       ":{\"count\":%llu,\"sum_ms\":%.3f,\"p50_ms\":%.3f,\"p99_ms\":%.3f}",
                       (unsigned long long)n, (double)sum_us / 1000.0,
                       (double)st_latency_quantile_us(b, 0.50) / 1000.0,
                       (double)st_latency_quantile_us(b, 0.99) / 1000.0);
        }
        st_sb_adds(sb, "},\"breakers\":{");
        for (size_t i = 0, n = 0; i < cfg->n_upstreams; i++) {
            struct st_breaker *br = s->cref->breakers[i];
            if (!br)
                continue;
            uint64_t opens;
            enum st_breaker_state st = st_breaker_state(br, &opens);
            st_sb_addf(sb, "%s", n++ ? "," : "");
            st_sb_add_json_str(sb, cfg->upstreams[i].name, strlen(cfg->upstreams[i].name));
            st_sb_addf(sb, ":{\"state\":\"%s\",\"opens\":%llu}", st_breaker_state_name(st),
                       (unsigned long long)opens);
        }
        st_sb_adds(sb, "},\"servers\":{");
        for (size_t i = 0; i < cfg->n_upstreams; i++) {
            struct st_server_info v[64];
            size_t n = st_servers_list(s->cref->servers[i], uv_hrtime() / 1000000, v, 64);
            st_sb_addf(sb, "%s", i ? "," : "");
            st_sb_add_json_str(sb, cfg->upstreams[i].name, strlen(cfg->upstreams[i].name));
            st_sb_adds(sb, ":[");
            for (size_t k = 0; k < n && k < 64; k++) {
                const char *name = cfg->upstreams[i].servers[v[k].from].text;
                st_sb_addf(sb, "%s{\"address\":\"%s\",\"server\":", k ? "," : "", v[k].addr);
                st_sb_add_json_str(sb, name, strlen(name));
                st_sb_addf(sb, ",\"state\":\"%s\",\"down_for_ms\":%llu,\"fails\":%u}",
                           st_server_state_name(v[k].state),
                           (unsigned long long)v[k].down_for_ms, v[k].fails);
            }
            st_sb_adds(sb, "]");
        }
        st_sb_adds(sb, "}");
    }
}

static void json_tiers(struct st_sb *sb, const struct snapshot *s)
{
    const struct st_config *cfg = s->cref->cfg;
    st_sb_adds(sb, ",\"tiers\":{");
    for (size_t i = 0; i < cfg->n_tiers; i++) {
        unsigned slot = cfg->tiers[i].stats_slot;
        uint64_t h = sum_rs(s, true, slot, ST_RS_HITS), m = sum_rs(s, true, slot, ST_RS_MISSES);
        uint64_t st = sum_rs(s, true, slot, ST_RS_STALE);
        st_sb_addf(sb, "%s", i ? "," : "");
        st_sb_add_json_str(sb, cfg->tiers[i].name, strlen(cfg->tiers[i].name));
        st_sb_addf(sb, ":{\"hits\":%llu,\"misses\":%llu,\"stale\":%llu,\"hit_ratio\":%.4f}",
                   (unsigned long long)h, (unsigned long long)m, (unsigned long long)st,
                   hit_ratio(h, st, m));
    }
    st_sb_adds(sb, "}");
}

/* The advisor's estimate for a route with a tier, its tiers those the config still has. */
static bool route_estimate(const struct snapshot *s, const struct st_route_cfg *r,
                           struct st_advisor_estimate *e)
{
    if (r->tier < 0 || !st_advisor_estimate(s->advisor, r->stats_slot, e))
        return false;
    if (e->n_tiers > s->cref->cfg->n_tiers)
        e->n_tiers = s->cref->cfg->n_tiers;
    return true;
}

/*
 * The route's refetches and what the TTL-tier advisor makes of its traffic:
 * ,"refetches":N,"refetch_unchanged":N,"refetch_unchanged_ratio":R|null,
 * "advisor":{"sampled_requests","sampled_keys","sample_rate","refetches","refetch_unchanged",
 * "tier_ttl_ratio","tiers":{name:ratio},"suggestion":"..."|null}|null
 */
static void json_advisor(struct st_sb *sb, const struct snapshot *s,
                         const struct st_route_cfg *r, const uint64_t v[ST_RS__COUNT])
{
    const struct st_config *cfg = s->cref->cfg;
    uint64_t refetches = v[ST_RS_REFETCHES], unchanged = v[ST_RS_REFETCH_UNCHANGED];
    st_sb_addf(sb, ",\"refetches\":%llu,\"refetch_unchanged\":%llu,", (unsigned long long)refetches,
               (unsigned long long)unchanged);
    st_sb_adds(sb, "\"refetch_unchanged_ratio\":");
    if (refetches)
        st_sb_addf(sb, "%.4f", ratio(unchanged, refetches));
    else
        st_sb_adds(sb, "null");
    st_sb_adds(sb, ",\"advisor\":");
    struct st_advisor_estimate e;
    if (!route_estimate(s, r, &e)) {
        st_sb_adds(sb, "null");
        return;
    }
    st_sb_addf(sb, "{\"sampled_requests\":%llu,\"sampled_keys\":%llu,\"sample_rate\":%.4f,",
               (unsigned long long)e.requests, (unsigned long long)e.keys, e.sample_rate);
    st_sb_addf(sb, "\"refetches\":%llu,\"refetch_unchanged\":%llu,\"tier_ttl_ratio\":",
               (unsigned long long)e.refetches, (unsigned long long)e.unchanged);
    if (e.stored)
        st_sb_addf(sb, "%.4f", ratio(e.tier_ttl, e.stored));
    else
        st_sb_adds(sb, "null");
    st_sb_adds(sb, ",\"tiers\":{");
    const char *names[ST_ADVISOR_MAX_TIERS];
    for (size_t i = 0; i < e.n_tiers; i++) {
        names[i] = cfg->tiers[i].name;
        st_sb_adds(sb, i ? "," : "");
        st_sb_add_json_str(sb, names[i], strlen(names[i]));
        st_sb_addf(sb, ":%.4f", e.hit_ratio[i]);
    }
    char text[512];
    st_advisor_suggest(&e, names, (size_t)r->tier, text, sizeof(text));
    st_sb_adds(sb, "},\"suggestion\":");
    if (text[0])
        st_sb_add_json_str(sb, text, strlen(text));
    else
        st_sb_adds(sb, "null");
    st_sb_adds(sb, "}");
}

static void json_routes(struct st_sb *sb, const struct snapshot *s)
{
    const struct st_config *cfg = s->cref->cfg;
    st_sb_adds(sb, ",\"routes\":{");
    for (size_t i = 0; i < cfg->n_routes; i++) {
        const struct st_route_cfg *r = &cfg->routes[i];
        uint64_t v[ST_RS__COUNT];
        for (int k = 0; k < ST_RS__COUNT; k++)
            v[k] = sum_rs(s, false, r->stats_slot, (enum st_rstat)k);
        st_sb_addf(sb, "%s", i ? "," : "");
        st_sb_add_json_str(sb, r->id, strlen(r->id));
        st_sb_adds(sb, ":{\"match\":");
        st_sb_add_json_str(sb, r->match, strlen(r->match));
        st_sb_adds(sb, ",\"host\":");
        if (r->host)
            st_sb_add_json_str(sb, r->host, strlen(r->host));
        else
            st_sb_adds(sb, "null");
        st_sb_addf(sb,
                   ",\"requests\":%llu,\"hits\":%llu,\"misses\":%llu,\"stale\":%llu,"
                   "\"collapsed\":%llu,\"bypass\":%llu,\"hit_ratio\":%.4f,"
                   "\"byte_hit_ratio\":%.4f,\"strategy\":\"%s\",\"tier\":",
                   (unsigned long long)v[ST_RS_REQUESTS], (unsigned long long)v[ST_RS_HITS],
                   (unsigned long long)v[ST_RS_MISSES], (unsigned long long)v[ST_RS_STALE],
                   (unsigned long long)v[ST_RS_COLLAPSED], (unsigned long long)v[ST_RS_BYPASS],
                   hit_ratio(v[ST_RS_HITS], v[ST_RS_STALE], v[ST_RS_MISSES]),
                   ratio(v[ST_RS_BYTES_HIT], v[ST_RS_BYTES]), st_strategy_name(r->strategy));
        if (r->tier >= 0)
            st_sb_add_json_str(sb, cfg->tiers[r->tier].name, strlen(cfg->tiers[r->tier].name));
        else
            st_sb_adds(sb, "null");
        json_advisor(sb, s, r, v);
        st_sb_adds(sb, "}");
    }
    st_sb_adds(sb, "}");
}

/* ,"allocator":{"name","allocated","active","metadata","resident","dirty","mapped","retained"} */
static void json_allocator(struct st_sb *sb)
{
    struct st_alloc_stats a;
    st_alloc_stats(&a);
    if (!a.jemalloc) {
        st_sb_adds(sb, ",\"allocator\":{\"name\":\"system\"}");
        return;
    }
    st_sb_addf(sb,
               ",\"allocator\":{\"name\":\"jemalloc\",\"allocated\":%llu,\"active\":%llu,"
               "\"metadata\":%llu,\"resident\":%llu,\"dirty\":%llu,\"mapped\":%llu,"
               "\"retained\":%llu}",
               (unsigned long long)a.allocated, (unsigned long long)a.active,
               (unsigned long long)a.metadata, (unsigned long long)a.resident,
               (unsigned long long)a.dirty, (unsigned long long)a.mapped,
               (unsigned long long)a.retained);
}

void st_admin_stats_json(struct st_server *srv, struct st_sb *out)
{
    struct snapshot s;
    take(srv, &s);
    st_sb_addf(out, "{\"version\":\"%s\",\"uptime_ms\":%llu,", ST_VERSION,
               (unsigned long long)st_server_uptime_ms(srv));
    st_stats_render_json(out, s.v, group_extra, &s);
    json_tiers(out, &s);
    json_routes(out, &s);
    st_sb_addf(out,
               ",\"l1\":{\"entries\":%llu,\"bytes\":%llu,\"capacity_bytes\":%llu,"
               "\"evictions\":%llu,\"expirations\":%llu,\"invalidated\":%llu}",
               (unsigned long long)s.l1.entries, (unsigned long long)s.l1.bytes,
               (unsigned long long)s.l1.capacity, (unsigned long long)s.l1.evictions,
               (unsigned long long)s.l1.expirations, (unsigned long long)s.l1.invalidations);
    json_allocator(out);
    st_sb_adds(out, "}\n");
    st_server_cfg_put(s.cref);
}

static void prom_label(struct st_sb *sb, const char *metric, const char *label, const char *value,
                       unsigned long long n)
{
    st_sb_addf(sb, "%s{%s=", metric, label);
    st_sb_add_json_str(sb, value, strlen(value)); /* a JSON string is a valid label value */
    st_sb_addf(sb, "} %llu\n", n);
}

/* strata_<label>_<name>_total{<label>="..."} for every route or tier of the config. */
static void prom_family(struct st_sb *sb, const struct snapshot *s, bool tier, const char *label,
                        const char *name, const char *help, enum st_rstat k)
{
    const struct st_config *cfg = s->cref->cfg;
    char metric[64];
    snprintf(metric, sizeof(metric), "strata_%s_%s_total", label, name);
    st_sb_addf(sb, "# HELP %s %s, per %s\n# TYPE %s counter\n", metric, help, label, metric);
    size_t n = tier ? cfg->n_tiers : cfg->n_routes;
    for (size_t i = 0; i < n; i++) {
        const char *value = tier ? cfg->tiers[i].name : cfg->routes[i].id;
        unsigned slot = tier ? cfg->tiers[i].stats_slot : cfg->routes[i].stats_slot;
        prom_label(sb, metric, label, value, sum_rs(s, tier, slot, k));
    }
}

static void prom_routes_tiers(struct st_sb *sb, const struct snapshot *s)
{
    static const char *const names[ST_RS__COUNT] = {
        "requests", "hits", "misses", "stale", "collapsed", "bypass", "bytes", "bytes_hit",
        "refetches", "refetch_unchanged",
    };
    static const char *const help[ST_RS__COUNT] = {
        "Client requests",
        "Requests answered from a fresh cache entry",
        "Cacheable requests that went to the origin",
        "Requests answered from a stale entry",
        "Requests that waited for another request's origin fetch",
        "Requests answered without the cache",
        "Body bytes sent",
        "Body bytes sent from the cache",
        "Origin fetches of an expired entry (answered 304, or stored)",
        "Refetches of an expired entry that brought what was stored",
    };
    for (int k = 0; k < ST_RS__COUNT; k++)
        prom_family(sb, s, false, "route", names[k], help[k], (enum st_rstat)k);
    for (int k = ST_RS_HITS; k <= ST_RS_STALE; k++)
        prom_family(sb, s, true, "tier", names[k], help[k], (enum st_rstat)k);
}

/* One breaker series per upstream that has one: its state (0 closed, 1 open, 2 half-open) or opens. */
static void prom_breakers(struct st_sb *sb, const struct snapshot *s, bool opens_series)
{
    const struct st_config *cfg = s->cref->cfg;
    const char *name = opens_series ? "strata_breaker_opens_total" : "strata_breaker_state";
    st_sb_addf(sb, "# HELP %s %s\n# TYPE %s %s\n", name,
               opens_series ? "Times the circuit breaker opened"
                            : "Circuit breaker: 0 closed, 1 open, 2 half-open",
               name, opens_series ? "counter" : "gauge");
    for (size_t i = 0; i < cfg->n_upstreams; i++) {
        uint64_t opens;
        if (!s->cref->breakers[i])
            continue;
        enum st_breaker_state st = st_breaker_state(s->cref->breakers[i], &opens);
        uint64_t v = opens_series ? opens : st == ST_BREAKER_OPEN ? 1 : st == ST_BREAKER_HALF_OPEN ? 2 : 0;
        st_sb_addf(sb, "%s{upstream=", name);
        st_sb_add_json_str(sb, cfg->upstreams[i].name, strlen(cfg->upstreams[i].name));
        st_sb_addf(sb, "} %llu\n", (unsigned long long)v);
    }
}

/* One series per address of every upstream: 1 while it takes requests, 0 while it is out. */
static void prom_servers(struct st_sb *sb, const struct snapshot *s)
{
    const struct st_config *cfg = s->cref->cfg;
    st_sb_adds(sb, "# HELP strata_server_up Origin address in rotation (1) or out (0)\n"
                   "# TYPE strata_server_up gauge\n");
    for (size_t i = 0; i < cfg->n_upstreams; i++) {
        struct st_server_info v[64];
        size_t n = st_servers_list(s->cref->servers[i], uv_hrtime() / 1000000, v, 64);
        for (size_t k = 0; k < n && k < 64; k++) {
            st_sb_adds(sb, "strata_server_up{upstream=");
            st_sb_add_json_str(sb, cfg->upstreams[i].name, strlen(cfg->upstreams[i].name));
            st_sb_addf(sb, ",address=\"%s\"} %d\n", v[k].addr, v[k].state == ST_SERVER_UP);
        }
    }
}

static void prom_latency(struct st_sb *sb, const struct snapshot *s)
{
    const struct st_config *cfg = s->cref->cfg;
    prom_breakers(sb, s, false);
    prom_breakers(sb, s, true);
    prom_servers(sb, s);
    st_sb_adds(sb, "# HELP strata_origin_latency_seconds Origin response-head latency\n"
                   "# TYPE strata_origin_latency_seconds histogram\n");
    for (size_t i = 0; i < cfg->n_upstreams; i++) {
        uint64_t b[ST_LAT_BUCKETS], cum = 0;
        uint64_t sum_us = sum_latency(s, cfg->upstreams[i].stats_slot, b);
        /* The last bucket also holds what is over its bound: it is only counted in +Inf. */
        for (unsigned k = 0; k < ST_LAT_BUCKETS - 1; k++) {
            cum += b[k];
            st_sb_adds(sb, "strata_origin_latency_seconds_bucket{upstream=");
            st_sb_add_json_str(sb, cfg->upstreams[i].name, strlen(cfg->upstreams[i].name));
            st_sb_addf(sb, ",le=\"%.6f\"} %llu\n", (double)st_latency_bound_us(k) / 1e6,
                       (unsigned long long)cum);
        }
        st_sb_adds(sb, "strata_origin_latency_seconds_bucket{upstream=");
        st_sb_add_json_str(sb, cfg->upstreams[i].name, strlen(cfg->upstreams[i].name));
        cum += b[ST_LAT_BUCKETS - 1];
        st_sb_addf(sb, ",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
        st_sb_adds(sb, "strata_origin_latency_seconds_sum{upstream=");
        st_sb_add_json_str(sb, cfg->upstreams[i].name, strlen(cfg->upstreams[i].name));
        st_sb_addf(sb, "} %.6f\n", (double)sum_us / 1e6);
        st_sb_adds(sb, "strata_origin_latency_seconds_count{upstream=");
        st_sb_add_json_str(sb, cfg->upstreams[i].name, strlen(cfg->upstreams[i].name));
        st_sb_addf(sb, "} %llu\n", (unsigned long long)cum);
    }
}

/* strata_route_tier_hit_ratio_estimate{route,tier}: the advisor's replay of each tiered route. */
static void prom_advisor(struct st_sb *sb, const struct snapshot *s)
{
    const struct st_config *cfg = s->cref->cfg;
    const char *metric = "strata_route_tier_hit_ratio_estimate";
    st_sb_addf(sb,
               "# HELP %s Hit ratio the route would have had with each tier (the advisor's "
               "replay of its requests)\n# TYPE %s gauge\n",
               metric, metric);
    for (size_t i = 0; i < cfg->n_routes; i++) {
        const struct st_route_cfg *r = &cfg->routes[i];
        struct st_advisor_estimate e;
        if (!route_estimate(s, r, &e))
            continue;
        for (size_t t = 0; t < e.n_tiers; t++) {
            st_sb_addf(sb, "%s{route=", metric);
            st_sb_add_json_str(sb, r->id, strlen(r->id));
            st_sb_adds(sb, ",tier=");
            st_sb_add_json_str(sb, cfg->tiers[t].name, strlen(cfg->tiers[t].name));
            st_sb_addf(sb, "} %.4f\n", e.hit_ratio[t]);
        }
    }
}

void st_admin_stats_prometheus(struct st_server *srv, struct st_sb *out)
{
    struct snapshot s;
    take(srv, &s);
    st_stats_render_prometheus(out, s.v);
    prom_routes_tiers(out, &s);
    prom_advisor(out, &s);
    prom_latency(out, &s);
    st_sb_addf(out,
               "# HELP strata_l1_entries Entries in the memory tier\n"
               "# TYPE strata_l1_entries gauge\nstrata_l1_entries %llu\n"
               "# HELP strata_l1_bytes Bytes the memory tier's entries take\n"
               "# TYPE strata_l1_bytes gauge\nstrata_l1_bytes %llu\n"
               "# HELP strata_l1_capacity_bytes The memory tier's budget (cache.memory)\n"
               "# TYPE strata_l1_capacity_bytes gauge\nstrata_l1_capacity_bytes %llu\n"
               "# HELP strata_l1_evictions_total Entries evicted to stay within the budget\n"
               "# TYPE strata_l1_evictions_total counter\nstrata_l1_evictions_total %llu\n"
               "# HELP strata_l1_expirations_total Expired entries dropped\n"
               "# TYPE strata_l1_expirations_total counter\nstrata_l1_expirations_total %llu\n"
               "# HELP strata_uptime_seconds Seconds since strata started\n"
               "# TYPE strata_uptime_seconds gauge\nstrata_uptime_seconds %.3f\n",
               (unsigned long long)s.l1.entries, (unsigned long long)s.l1.bytes,
               (unsigned long long)s.l1.capacity, (unsigned long long)s.l1.evictions,
               (unsigned long long)s.l1.expirations,
               (double)st_server_uptime_ms(srv) / 1000.0);
    st_sb_addf(out,
               "# HELP strata_l2_connected 1 while this instance's Redis connection is up\n"
               "# TYPE strata_l2_connected gauge\nstrata_l2_connected %d\n"
               "# HELP strata_bus_up 1 while the invalidation bus is subscribed and caught up\n"
               "# TYPE strata_bus_up gauge\nstrata_bus_up %d\n",
               s.l2 == ST_SHARED_UP, s.bus == ST_BUS_UP);
    struct st_alloc_stats a;
    st_alloc_stats(&a);
    if (a.jemalloc)
        st_sb_addf(out,
                   "# HELP strata_allocator_allocated_bytes Bytes in live allocations (jemalloc)\n"
                   "# TYPE strata_allocator_allocated_bytes gauge\n"
                   "strata_allocator_allocated_bytes %llu\n"
                   "# HELP strata_allocator_resident_bytes Bytes in resident pages the allocator "
                   "holds (jemalloc)\n"
                   "# TYPE strata_allocator_resident_bytes gauge\n"
                   "strata_allocator_resident_bytes %llu\n",
                   (unsigned long long)a.allocated, (unsigned long long)a.resident);
    st_server_cfg_put(s.cref);
}
