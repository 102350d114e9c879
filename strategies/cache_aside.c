/*
 * cache_aside.c - reads fill the cache on a miss; writes go to the origin
 * and drop what they make wrong.
 *
 * A GET/HEAD walks: lookup -> fresh hit | stale within stale-while-revalidate
 * (answer now, refresh once in the background) | expired or missing (join
 * the key's flight: the leader fetches, revalidating with the entry's
 * validators when it has any; the others park and are resumed with the
 * flight's result). A failing origin is answered from a stale entry within
 * stale-if-error. Requests with Authorization (unless the route allows it)
 * and request `no-store` skip the cache.
 *
 * POST/PUT/PATCH/DELETE go to the origin; a non-error answer invalidates the
 * request URI, a same-host Location/Content-Location, and the route's
 * `invalidates` patterns (placeholders filled from the request path).
 *
 * State: one struct ca per exchange (the fetch hook argument), freed by
 * on_done, which also ends the flight the exchange leads. A parked exchange
 * keeps its struct ca; if the client leaves while parked, on_done frees it.
 *
 * Talks to two interfaces only: the exchange (core/strategy.h) and the
 * cache tiers (cache/tier.h), with the worker's context for counters, the
 * clock and the random source.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/alloc.h"
#include "base/rand.h"
#include "cache/advisor.h"
#include "cache/freshness.h"
#include "cache/invalidate.h"
#include "cache/key.h"
#include "cache/tier.h"
#include "core/strategy.h"
#include "strategies/strategies.h"

struct ca {
    struct st_exchange *x;
    struct st_cache_tier *tiers;
    struct st_sb key;
    uint64_t hash;
    struct st_cc req_cc;
    struct st_entry *stale; /* expired entry: revalidation, stale-if-error (reference) */
    bool revalidating;      /* we sent stale's validators to the origin */
    bool forced;            /* stale was fresh, but the request's directives forbade it */
    bool expired;           /* stale is past its lifetime: this fetch is a refetch */
    bool leader;            /* must end the flight */
    enum st_flight_result result;
    int fail_status;
    bool filling;
    bool from_shared; /* the entry to answer with came from the shared tier (L2) */
    bool shared_again; /* asked the shared tier once more: L1 dropped its entry at once */
    struct st_sb body;
    int status;
    const struct st_headers *resp; /* valid until on_end */
    char reason[64];
    size_t reason_len;
    struct st_freshness fr;
    int64_t request_ms;
    int64_t response_ms;
    /* the origin's answer is kept from the client: a 304 for our validators, a 5xx answered
     * stale, or a whole 200 stored to answer a Range from */
    enum { ABSORB_NONE, ABSORB_304, ABSORB_STALE, ABSORB_RANGE } absorbed;
};

static int64_t now_ms(struct st_exchange *x)
{
    return st_exchange_ctx(x)->now_ms();
}

static struct st_stats *stats_of(struct st_exchange *x)
{
    return st_exchange_ctx(x)->stats;
}

/* Count an outcome globally, for the route and for its tier. */
static void count(struct st_exchange *x, enum st_stat_id global, enum st_rstat per)
{
    struct st_stats *st = stats_of(x);
    const struct st_route_cfg *r = st_exchange_route(x);
    const struct st_config *cfg = st_exchange_config(x);
    st_stat_add(st, global, 1);
    st_stat_bump(&st->route[r->stats_slot][per], 1);
    if (r->tier >= 0)
        st_stat_bump(&st->tier[cfg->tiers[r->tier].stats_slot][per], 1);
}

/*
 * What this fetch left in the cache, for the route's counters and the TTL-tier advisor:
 * e is what was stored (NULL: nothing); `compared` when the answer could be compared with
 * the expired entry it replaces, `unchanged` when it was the same.
 */
static void fetched(struct st_exchange *x, const struct ca *ca, const struct st_entry *e,
                    bool compared, bool unchanged)
{
    const struct st_route_cfg *r = st_exchange_route(x);
    unsigned outcome = 0;
    if (compared && ca->stale && ca->expired) {
        _Atomic uint64_t *c = stats_of(x)->route[r->stats_slot];
        st_stat_bump(&c[ST_RS_REFETCHES], 1);
        st_stat_bump(&c[ST_RS_REFETCH_UNCHANGED], unchanged);
        outcome |= ST_ADVISOR_REFETCH | (unchanged ? ST_ADVISOR_UNCHANGED : 0);
    }
    if (r->tier < 0)
        return;
    if (e && !e->always_revalidate)
        outcome |= ST_ADVISOR_SERVABLE | (e->no_stale ? ST_ADVISOR_NO_STALE : 0) |
                   (ca->fr.tier_ttl ? ST_ADVISOR_TIER_TTL : 0);
    st_advisor_fetched(st_exchange_ctx(x)->advisor, r->stats_slot, ca->hash, now_ms(x),
                       outcome, e ? e->lifetime_ms : 0);
}

/*
 * Cache-Status = a [ttl] [b] [c], plus "; collapsed" for an exchange that
 * waited for another's fetch. Built without printf: it is on the hit path.
 */
static void set_status(struct st_exchange *x, const char *a, const long long *ttl, const char *b,
                       const char *c)
{
    size_t cap;
    char *buf = st_exchange_cache_status_buf(x, &cap);
    struct st_fbuf f = {buf, 0, cap - 1};
    st_fbuf_adds(&f, a);
    if (ttl)
        st_fbuf_i64(&f, *ttl);
    if (b)
        st_fbuf_adds(&f, b);
    if (c)
        st_fbuf_adds(&f, c);
    if (st_exchange_was_parked(x))
        st_fbuf_adds(&f, "; collapsed");
    ST_CHECK(f.len <= f.cap);
    buf[f.len] = '\0';
    st_exchange_set_cache_status(x, buf);
}

static void ca_free(struct ca *ca)
{
    st_entry_unref(ca->stale);
    st_sb_finish(&ca->key);
    if (ca->body.p)
        st_sb_finish(&ca->body);
    free(ca);
}

static struct ca *ca_new(struct st_exchange *x)
{
    struct ca *ca = st_xcalloc(1, sizeof(*ca));
    const struct st_request_head *req = st_exchange_request(x);
    size_t host_len;
    const char *host = st_exchange_host(x, &host_len);
    ca->x = x;
    ca->tiers = st_exchange_ctx(x)->tiers;
    st_sb_init(&ca->key, 128);
    st_cache_key_build(&ca->key, st_exchange_route(x), req->target, req->target_len,
                       host ? host : "", host_len, req->headers);
    ca->hash = st_cache_tier_hash(ca->key.p, ca->key.len);
    st_cc_parse_headers(req->headers, "cache-control", &ca->req_cc);
    ca->result = ST_FLIGHT_UNCACHEABLE;
    return ca;
}

/* --- answers from the cache --- */

static void serve(struct st_exchange *x, struct ca *ca, struct st_entry *e, int64_t age_ms)
{
    const struct st_request_head *req = st_exchange_request(x);
    bool nm = e->status == 200 &&
              st_freshness_not_modified(req->headers, st_entry_etag(e), st_entry_etag_len(e),
                                          st_entry_last_modified_ms(e));
    if (nm)
        ST_STAT_INC(stats_of(x), CACHE_NOT_MODIFIED);
    (void)ca;
    st_exchange_serve_entry(x, e, age_ms / 1000, nm);
}

/* Remaining freshness in whole seconds, rounded down (so just-expired is -1, not 0). */
static long long ttl_s(const struct st_entry *e, int64_t age)
{
    int64_t ms = e->lifetime_ms - age;
    return (long long)(ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000));
}

static void serve_hit(struct st_exchange *x, struct ca *ca, struct st_entry *e, int64_t age)
{
    long long ttl = ttl_s(e, age);
    set_status(x, "strata; hit; ttl=", &ttl, ca->from_shared ? "; detail=l2" : NULL, NULL);
    count(x, ST_STAT_CACHE_HITS, ST_RS_HITS);
    if (st_exchange_was_parked(x))
        count(x, ST_STAT_CACHE_COLLAPSED, ST_RS_COLLAPSED);
    serve(x, ca, e, age);
}

static void serve_stale(struct st_exchange *x, struct ca *ca, struct st_entry *e, int64_t age,
                        const char *detail)
{
    long long ttl = ttl_s(e, age);
    set_status(x, "strata; hit; ttl=", &ttl, "; detail=", detail);
    count(x, ST_STAT_CACHE_STALE, ST_RS_STALE);
    serve(x, ca, e, age);
}

/* May e answer now that the origin failed (stale-if-error)? */
static bool stale_if_error_ok(const struct st_entry *e, int64_t now)
{
    return e && !e->no_stale && st_entry_age_ms(e, now) < e->lifetime_ms + e->sie_ms;
}

/* --- filling the cache from the origin --- */

/* Why this fetch goes forward (RFC 9211 fwd): nothing stored, stored but stale, or the request. */
static const char *fwd_of(const struct ca *ca)
{
    if (!ca->stale)
        return "strata; fwd=miss";
    return ca->forced ? "strata; fwd=request" : "strata; fwd=stale";
}

static struct st_store_policy policy_of(struct st_exchange *x)
{
    const struct st_route_cfg *r = st_exchange_route(x);
    const struct st_tier *t = st_exchange_tier(x);
    struct st_store_policy p = {
        .tier_ttl_ms = t ? t->ttl_ms : 0,
        .tier_swr_ms = t ? t->stale_while_revalidate_ms : 0,
        .tier_sie_ms = t ? t->stale_if_error_ms : 0,
        .ttl_from_tier = r->ttl_source == ST_TTL_SOURCE_TIER,
        .allow_authorized = r->cache_authorized,
        .allow_set_cookie = r->cache_set_cookie,
    };
    return p;
}

/*
 * Spread expiry by up to the tier's jitter percent, only ever shortening
 * the lifetime: an entry never outlives what the origin allowed.
 */
static int64_t jittered(struct st_exchange *x, int64_t lifetime)
{
    const struct st_tier *t = st_exchange_tier(x);
    if (!t || t->jitter_pct == 0 || lifetime <= 0)
        return lifetime;
    uint64_t r = st_rand64(st_exchange_ctx(x)->rand) % 1001; /* 0..1000 per mille */
    int64_t spread = lifetime * (int64_t)t->jitter_pct / 100;
    return lifetime - spread * (int64_t)r / 1000;
}

static struct st_entry *build_entry(struct ca *ca, const struct st_headers *resp, int status,
                                    const char *body, size_t body_len,
                                    const struct st_freshness *fr, int64_t stored_ms)
{
    struct st_exchange *x = ca->x;
    struct st_entry_init in = {
        .key = ca->key.p,
        .key_len = ca->key.len,
        .req = st_exchange_request(x)->headers,
        .resp = resp,
        .status = status,
        .reason = ca->reason,
        .reason_len = ca->reason_len,
        .body = body,
        .body_len = body_len,
        .stored_ms = stored_ms,
        .initial_age_ms = fr->initial_age_ms,
        .lifetime_ms = jittered(x, fr->lifetime_ms),
        .swr_ms = fr->swr_ms,
        .sie_ms = fr->sie_ms,
        .no_stale = fr->no_stale,
        .always_revalidate = fr->always_revalidate,
    };
    return st_entry_new(&in);
}

/* A 304 answered our revalidation: the stored headers, updated by the 304's. */
static struct st_entry *refresh_entry(struct ca *ca, const struct st_headers *h304)
{
    struct st_headers stored, merged;
    st_headers_init(&stored);
    st_headers_init(&merged);
    const struct st_entry *old = ca->stale;
    st_headers_parse_head(&stored, st_entry_head(old), old->head_len);
    for (size_t i = 0; i < stored.n; i++) {
        const struct st_hdr *e = &stored.v[i];
        const char *name = st_hdr_name(&stored, e); /* NUL-terminated in the list */
        if (!st_headers_get(h304, name))
            st_headers_add(&merged, name, e->name_len, st_hdr_value(&stored, e), e->value_len);
    }
    st_headers_finish(&stored);
    st_headers_copy(&merged, h304);
    struct st_store_policy pol = policy_of(ca->x);
    st_freshness_evaluate(old->status, st_exchange_request(ca->x)->headers, &merged,
                          ca->request_ms, ca->response_ms, &pol, &ca->fr);
    /* The reason phrase of the stored status line "HTTP/1.1 200 OK\r\n" (not NUL-terminated). */
    const char *head = st_entry_head(old);
    const char *eol = memmem(head, old->head_len, "\r\n", 2);
    const char *sp = eol ? memchr(head, ' ', (size_t)(eol - head)) : NULL;
    const char *reason = sp ? memchr(sp + 1, ' ', (size_t)(eol - sp - 1)) : NULL;
    ca->reason_len = 0;
    if (reason) {
        size_t n = (size_t)(eol - reason - 1);
        ca->reason_len = n < sizeof(ca->reason) ? n : sizeof(ca->reason) - 1;
        memcpy(ca->reason, reason + 1, ca->reason_len);
    }
    struct st_entry *e = ca->fr.storable ? build_entry(ca, &merged, old->status, st_entry_body(old),
                                                       st_entry_body_len(old), &ca->fr,
                                                       ca->response_ms)
                                         : NULL;
    st_headers_finish(&merged);
    return e;
}

static bool fill_on_head(struct st_exchange *x, const struct st_response_head *h)
{
    struct ca *ca = st_exchange_hook_arg(x);
    int64_t now = now_ms(x);
    ca->response_ms = now;
    ca->status = h->status;
    ca->resp = h->headers;
    ca->reason_len = h->reason_len < sizeof(ca->reason) ? h->reason_len : 0;
    memcpy(ca->reason, h->reason, ca->reason_len);
    if (h->status == 304 && ca->revalidating) {
        ca->absorbed = ABSORB_304;
        return false;
    }
    if (h->status >= 500 && stale_if_error_ok(ca->stale, now)) {
        ca->absorbed = ABSORB_STALE;
        ca->fail_status = h->status;
        return false;
    }
    struct st_store_policy pol = policy_of(x);
    st_freshness_evaluate(h->status, st_exchange_request(x)->headers, h->headers, ca->request_ms,
                          now, &pol, &ca->fr);
    uint64_t max_obj = ca->tiers->max_object;
    bool fits = !h->has_length || h->content_length <= max_obj;
    ca->filling = ca->fr.storable && fits && !ca->req_cc.no_store;
    if (ca->filling)
        st_sb_init(&ca->body, h->has_length && h->content_length ? h->content_length + 1 : 4096);
    set_status(x, fwd_of(ca), NULL,
               ca->filling && h->has_length ? "; stored" : NULL, NULL);
    if (ca->filling && h->has_length && h->status == 200 && !st_exchange_is_background(x) &&
        st_headers_get(st_exchange_request(x)->headers, "range")) {
        ca->absorbed = ABSORB_RANGE; /* the whole body is stored, the range comes from it */
        return false;
    }
    return true;
}

static void fill_on_body(struct st_exchange *x, const char *p, size_t len)
{
    struct ca *ca = st_exchange_hook_arg(x);
    if (!ca->filling)
        return;
    if (ca->body.len + len > ca->tiers->max_object) {
        ca->filling = false;
        st_sb_finish(&ca->body);
        return;
    }
    st_sb_add(&ca->body, p, len);
}

static void answer_absorbed(struct st_exchange *x, struct ca *ca)
{
    int64_t now = now_ms(x);
    if (ca->absorbed == ABSORB_STALE) {
        ca->result = ST_FLIGHT_FAILED;
        fetched(x, ca, NULL, false, false);
        serve_stale(x, ca, ca->stale, st_entry_age_ms(ca->stale, now), "stale-if-error");
        return;
    }
    /* ABSORB_304: the origin confirmed the stored entry. */
    struct st_entry *e = refresh_entry(ca, ca->resp);
    ST_STAT_INC(stats_of(x), CACHE_REVALIDATED);
    fetched(x, ca, e, true, true);
    if (e) {
        st_cache_tier_insert(ca->tiers, e);
        ca->result = ST_FLIGHT_STORED;
    } else {
        st_cache_tier_expire(ca->tiers, ca->stale);
    }
    struct st_entry *use = e ? e : ca->stale;
    set_status(x, fwd_of(ca), NULL, "; stored", NULL);
    serve(x, ca, use, st_entry_age_ms(use, now));
    st_entry_unref(e);
}

static void fill_on_end(struct st_exchange *x)
{
    struct ca *ca = st_exchange_hook_arg(x);
    if (ca->absorbed == ABSORB_304 || ca->absorbed == ABSORB_STALE) {
        answer_absorbed(x, ca);
        return;
    }
    if (!ca->filling) {
        fetched(x, ca, NULL, false, false);
        if (ca->absorbed == ABSORB_RANGE) /* the declared length was a lie: nothing to answer from */
            st_exchange_respond_error(x, 502, "the origin's answer did not match its length");
        return;
    }
    struct st_entry *e = build_entry(ca, ca->resp, ca->status, ca->body.p, ca->body.len, &ca->fr,
                                     ca->response_ms);
    if (e && st_cache_tier_insert(ca->tiers, e))
        ca->result = ST_FLIGHT_STORED;
    fetched(x, ca, ca->result == ST_FLIGHT_STORED ? e : NULL, ca->stale != NULL,
            ca->stale && ca->stale->status == ca->status &&
                st_entry_body_len(ca->stale) == ca->body.len &&
                memcmp(st_entry_body(ca->stale), ca->body.p, ca->body.len) == 0);
    if (ca->absorbed == ABSORB_RANGE) {
        if (e)
            serve(x, ca, e, st_entry_age_ms(e, now_ms(x)));
        else
            st_exchange_respond_error(x, 502, "the origin's answer could not be stored");
    }
    st_entry_unref(e);
}

static bool fill_on_error(struct st_exchange *x, int err)
{
    struct ca *ca = st_exchange_hook_arg(x);
    ca->result = ST_FLIGHT_FAILED;
    ca->fail_status = st_http_status_for_error(err);
    fetched(x, ca, NULL, false, false);
    int64_t now = now_ms(x);
    if (!stale_if_error_ok(ca->stale, now) || st_exchange_is_background(x))
        return false;
    serve_stale(x, ca, ca->stale, st_entry_age_ms(ca->stale, now), "stale-if-error");
    return true;
}

static void fill_on_done(struct st_exchange *x)
{
    struct ca *ca = st_exchange_hook_arg(x);
    if (ca->leader)
        st_cache_tier_flight_done(ca->tiers, ca->hash, ca->key.p, ca->key.len, ca->result,
                                  ca->fail_status);
    ca_free(ca);
}

static const struct st_fetch_hooks fill_hooks = {
    .on_head = fill_on_head,
    .on_body = fill_on_body,
    .on_end = fill_on_end,
    .on_error = fill_on_error,
    .on_done = fill_on_done,
};

/* Go to the origin for ca's key, revalidating ca->stale when it has validators. */
static void fetch(struct st_exchange *x, struct ca *ca)
{
    struct st_revalidate rv = {.etag = NULL, .last_modified_ms = -1};
    bool has_rv = false;
    if (ca->stale && ca->stale->status == 200 &&
        (st_entry_etag(ca->stale) || st_entry_last_modified_ms(ca->stale) >= 0)) {
        rv.etag = st_entry_etag(ca->stale);
        rv.etag_len = st_entry_etag_len(ca->stale);
        rv.last_modified_ms = st_entry_last_modified_ms(ca->stale);
        has_rv = true;
    }
    /* Without our validators, a 304 could only answer the client's own condition. */
    ca->revalidating = has_rv;
    ca->request_ms = now_ms(x);
    if (!st_exchange_is_background(x))
        count(x, ST_STAT_CACHE_MISSES, ST_RS_MISSES);
    /* What an error answer says, should the origin fail before its head arrives. */
    set_status(x, fwd_of(ca), NULL, NULL, NULL);
    st_exchange_fetch_whole(x); /* a HEAD miss fills the cache too */
    st_exchange_fetch(x, &fill_hooks, ca, has_rv ? &rv : NULL);
}

/* Keep stale for revalidation only if it may still serve (validators or stale-if-error). */
static void refresh_in_background(struct st_exchange *x, struct ca *ca, struct st_entry *e)
{
    if (st_cache_tier_flight_join(ca->tiers, ca->hash, ca->key.p, ca->key.len, NULL) !=
        ST_FLIGHT_LEADER)
        return; /* a refresh or fetch is already running */
    struct st_exchange *b = st_exchange_spawn_background(x);
    if (!b) {
        st_cache_tier_flight_done(ca->tiers, ca->hash, ca->key.p, ca->key.len,
                                  ST_FLIGHT_UNCACHEABLE, 0);
        return;
    }
    struct ca *bca = ca_new(b);
    bca->leader = true;
    bca->stale = st_entry_ref(e);
    bca->expired = true; /* within stale-while-revalidate */
    st_exchange_set_cache_status(b, "strata; fwd=stale");
    fetch(b, bca);
}

/* Park x behind the flight's leader. Returns false when x leads instead. */
static bool park(struct st_exchange *x, struct ca *ca)
{
    /* Only on_done matters while parked: the client may leave. */
    static const struct st_fetch_hooks parked_hooks = {.on_done = fill_on_done};
    if (st_exchange_join_flight(x, ca->tiers, ca->hash, ca->key.p, ca->key.len, &parked_hooks,
                                ca) == ST_FLIGHT_PARKED)
        return true;
    ca->leader = true;
    return false;
}

/* Look the key up and answer, or go to the origin. `may_park`: join the flight. */
static void lookup(struct st_exchange *x, struct ca *ca, int64_t now, bool may_park)
{
    /* Not referenced: valid for this loop iteration (see cache/tier.h). */
    struct st_entry *e = st_cache_tier_lookup(ca->tiers, ca->hash, ca->key.p, ca->key.len,
                                              st_exchange_request(x)->headers);
    if (e) {
        int64_t age = st_entry_age_ms(e, now);
        bool fresh = age < e->lifetime_ms && !e->always_revalidate;
        enum st_req_verdict v = e->always_revalidate
                                    ? ST_REQ_REVALIDATE
                                    : st_freshness_request_allows(&ca->req_cc, age, e->lifetime_ms,
                                                        e->no_stale);
        if (v == ST_REQ_USE) {
            if (fresh)
                serve_hit(x, ca, e, age);
            else
                serve_stale(x, ca, e, age, "max-stale");
            ca_free(ca);
            return;
        }
        bool expired = age >= e->lifetime_ms;
        if (expired && !e->always_revalidate && !e->no_stale && !ca->req_cc.no_cache &&
            age < e->lifetime_ms + e->swr_ms) {
            /* Start the refresh first: answering may finish (and free) x. */
            refresh_in_background(x, ca, e);
            serve_stale(x, ca, e, age, "stale-while-revalidate");
            ca_free(ca);
            return;
        }
        ca->stale = st_entry_ref(e); /* kept for revalidation and stale-if-error */
        ca->forced = fresh;
        ca->expired = age >= e->lifetime_ms;
    } else if (ca->req_cc.only_if_cached) {
        set_status(x, "strata; fwd=miss; detail=only-if-cached", NULL, NULL, NULL);
        ca_free(ca);
        st_exchange_respond_error(x, 504, "only-if-cached: the response is not in the cache");
        return;
    }
    if (may_park && park(x, ca))
        return;
    fetch(x, ca);
}

/* --- writes --- */

static void invalidate_uri(struct st_exchange *x, const char *uri, size_t len)
{
    size_t plen;
    const char *path = st_target_path(uri, len, &plen);
    if (plen == 0 || path[0] != '/')
        return;
    st_invalidate(st_exchange_ctx(x)->tiers, stats_of(x), ST_INVAL_URI, path, plen);
}

/* Location / Content-Location: only same-host targets are ours to drop. */
static void invalidate_location(struct st_exchange *x, const struct st_headers *h,
                                const char *name)
{
    const struct st_hdr *loc = st_headers_get(h, name);
    if (!loc || loc->value_len == 0)
        return;
    const char *v = st_hdr_value(h, loc);
    if (v[0] != '/') {
        size_t host_len;
        const char *host = st_exchange_host(x, &host_len);
        const char *auth = strstr(v, "://");
        if (!auth || !host || strncasecmp(auth + 3, host, host_len) != 0 ||
            (auth[3 + host_len] != '/' && auth[3 + host_len] != '\0'))
            return;
    }
    invalidate_uri(x, v, loc->value_len);
}

void st_cache_aside_invalidate_patterns(struct st_exchange *x)
{
    const struct st_request_head *req = st_exchange_request(x);
    size_t plen;
    const char *path = st_target_path(req->target, req->target_len, &plen);
    st_cache_aside_route_patterns(st_exchange_ctx(x)->tiers, stats_of(x), st_exchange_route(x),
                                  path, plen);
}

void st_cache_aside_route_patterns(struct st_cache_tier *c, struct st_stats *stats,
                                   const struct st_route_cfg *r, const char *path, size_t plen)
{
    struct st_capture caps[ST_PATTERN_MAX_CAPTURES];
    size_t n_caps = 0;
    st_pattern_match(&r->pattern, path, plen, caps, &n_caps);
    for (size_t i = 0; i < r->n_invalidates; i++) {
        char out[2048];
        int n = st_pattern_fill(r->invalidates[i], caps, n_caps, out, sizeof(out));
        if (n <= 0 || (size_t)n >= sizeof(out))
            continue;
        if (out[n - 1] == '*')
            st_invalidate(c, stats, ST_INVAL_PREFIX, out, (size_t)n - 1);
        else
            st_invalidate(c, stats, ST_INVAL_URI, out, (size_t)n);
    }
}

static bool write_on_head(struct st_exchange *x, const struct st_response_head *h)
{
    if (h->status >= 400)
        return true;
    const struct st_request_head *req = st_exchange_request(x);
    invalidate_uri(x, req->target, req->target_len);
    invalidate_location(x, h->headers, "location");
    invalidate_location(x, h->headers, "content-location");
    st_cache_aside_invalidate_patterns(x);
    return true;
}

static const struct st_fetch_hooks write_hooks = {.on_head = write_on_head};

/* --- the strategy --- */

static bool skips_cache(struct st_exchange *x, const struct ca *ca)
{
    const struct st_request_head *req = st_exchange_request(x);
    if (ca->req_cc.no_store)
        return true;
    return st_headers_get(req->headers, "authorization") &&
           !st_exchange_route(x)->cache_authorized;
}

void st_cache_aside_write(struct st_exchange *x)
{
    st_exchange_count_bypass(x);
    set_status(x, "strata; fwd=method", NULL, NULL, NULL);
    st_exchange_fetch(x, &write_hooks, NULL, NULL);
}

void st_cache_aside_read(struct st_exchange *x)
{
    struct ca *ca = ca_new(x);
    if (skips_cache(x, ca)) {
        ca_free(ca);
        st_exchange_count_bypass(x);
        set_status(x, "strata; fwd=request", NULL, NULL, NULL);
        st_exchange_forward(x);
        return;
    }
    int64_t now = now_ms(x);
    const struct st_route_cfg *r = st_exchange_route(x);
    if (r->tier >= 0)
        st_advisor_observe(st_exchange_ctx(x)->advisor, r->stats_slot, ca->hash, now,
                           ca->req_cc.no_cache || ca->req_cc.max_age == 0 ? ST_ADVISOR_FORCED
                                                                          : 0);
    lookup(x, ca, now, true);
}

static void on_request(struct st_exchange *x)
{
    const char *m = st_exchange_request(x)->method;
    if (strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0)
        st_cache_aside_write(x);
    else
        st_cache_aside_read(x);
}

/* The shared tier handed us the fetch: lead it, revalidating what L1 holds, if anything. */
static void lead_fetch(struct st_exchange *x, struct ca *ca)
{
    ca->leader = true;
    if (!ca->stale) {
        struct st_entry *e = st_cache_tier_lookup(ca->tiers, ca->hash, ca->key.p, ca->key.len,
                                                  st_exchange_request(x)->headers);
        ca->stale = e ? st_entry_ref(e) : NULL;
        ca->expired = e && st_entry_age_ms(e, now_ms(x)) >= e->lifetime_ms;
    }
    fetch(x, ca);
}

void st_cache_aside_resume(struct st_exchange *x, enum st_flight_result result, int status)
{
    struct ca *ca = st_exchange_hook_arg(x);
    if (result == ST_FLIGHT_LEAD) {
        lead_fetch(x, ca);
        return;
    }
    ca->from_shared = result == ST_FLIGHT_SHARED;
    if (result == ST_FLIGHT_FAILED) {
        int64_t now = now_ms(x);
        if (stale_if_error_ok(ca->stale, now)) {
            struct st_entry *e = ca->stale;
            serve_stale(x, ca, e, st_entry_age_ms(e, now), "stale-if-error");
        } else {
            count(x, ST_STAT_CACHE_COLLAPSED, ST_RS_COLLAPSED);
            st_exchange_respond_error(x, status ? status : 502,
                                      "the origin failed for the request this one waited for");
        }
        ca_free(ca);
        return;
    }
    /* Stored: answer from the cache. Not stored: fetch for ourselves, without parking again. */
    st_entry_unref(ca->stale);
    ca->stale = NULL;
    /* From the shared tier, a miss means a small L1 evicted it before we woke: park once more
     * (one more read of L2 beats the origin). */
    bool again = result == ST_FLIGHT_SHARED && !ca->shared_again;
    ca->shared_again = ca->shared_again || again;
    lookup(x, ca, now_ms(x), again);
}

const struct st_strategy st_strategy_cache_aside = {
    .name = "cache-aside",
    .on_request = on_request,
    .on_resume = st_cache_aside_resume,
};
