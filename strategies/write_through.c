/*
 * write_through.c - a PUT goes to the origin, and on 2xx its new
 * representation is stored under the resource's GET key, here and in the
 * shared tier, while every other instance drops its copy.
 *
 * The representation is the origin's response body when it sends one (with
 * its Content-Type, ETag and Last-Modified), else the request body with the
 * request's Content-Type. It is stored for the route's tier (ttl, stale
 * windows), whatever the PUT's answer says about caching: the answer is
 * about the PUT, the entry is what a GET would now get. A PUT that fails
 * (non-2xx, or the origin unreachable) leaves the cache untouched and the
 * client gets the origin's answer. A representation larger than max_object
 * is not stored: the old one is dropped everywhere instead.
 *
 * GET and HEAD are read as cache-aside reads them; PATCH, POST and DELETE
 * are forwarded, then invalidate (strata cannot compute a PATCH's result),
 * as cache-aside's writes do.
 *
 * State: one struct wt per PUT (the fetch hook argument), freed by on_done.
 * Talks to the exchange (core/strategy.h) and the cache tiers only.
 */
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "cache/invalidate.h"
#include "cache/key.h"
#include "cache/tier.h"
#include "core/strategy.h"
#include "strategies/strategies.h"

struct wt {
    struct st_sb key;
    struct st_sb req_body, resp_body; /* up to max_object each */
    bool too_big;                     /* a body passed max_object: nothing is stored */
    int status;
    const struct st_headers *resp; /* the origin's head, valid until on_end */
};

static uint64_t max_object(struct st_exchange *x)
{
    return st_exchange_ctx(x)->tiers->max_object;
}

static void keep(struct st_exchange *x, struct wt *w, struct st_sb *sb, const char *p, size_t len)
{
    if (w->too_big)
        return;
    if (sb->len + len > max_object(x)) {
        w->too_big = true;
        return;
    }
    st_sb_add(sb, p, len);
}

static void on_request_body(struct st_exchange *x, const char *p, size_t len)
{
    struct wt *w = st_exchange_hook_arg(x);
    keep(x, w, &w->req_body, p, len);
}

static bool on_head(struct st_exchange *x, const struct st_response_head *h)
{
    struct wt *w = st_exchange_hook_arg(x);
    w->status = h->status;
    w->resp = h->headers;
    if (h->has_length && h->content_length > max_object(x))
        w->too_big = true;
    return true;
}

static void on_body(struct st_exchange *x, const char *p, size_t len)
{
    struct wt *w = st_exchange_hook_arg(x);
    if (w->status >= 200 && w->status < 300)
        keep(x, w, &w->resp_body, p, len);
}

/* Copy header name from `from` into `to`, if it is there. */
static void copy_header(struct st_headers *to, const struct st_headers *from, const char *name)
{
    const struct st_hdr *e = st_headers_get(from, name);
    if (e)
        st_headers_add(to, name, strlen(name), st_hdr_value(from, e), e->value_len);
}

/* The new representation as an entry for the route's tier, or NULL when it cannot be stored. */
static struct st_entry *representation(struct st_exchange *x, struct wt *w)
{
    const struct st_tier *t = st_exchange_tier(x);
    if (!t || t->ttl_ms == 0 || w->too_big)
        return NULL;
    bool from_resp = w->resp_body.len > 0;
    const struct st_headers *req = st_exchange_request(x)->headers;
    struct st_headers h;
    st_headers_init(&h);
    copy_header(&h, from_resp ? w->resp : req, "content-type");
    copy_header(&h, w->resp, "etag");
    copy_header(&h, w->resp, "last-modified");
    const struct st_sb *body = from_resp ? &w->resp_body : &w->req_body;
    struct st_entry_init in = {
        .key = w->key.p,
        .key_len = w->key.len,
        .req = req,
        .resp = &h,
        .status = 200,
        .reason = "OK",
        .reason_len = 2,
        .body = body->p,
        .body_len = body->len,
        .stored_ms = st_exchange_ctx(x)->now_ms(),
        .lifetime_ms = (int64_t)t->ttl_ms,
        .swr_ms = (int64_t)t->stale_while_revalidate_ms,
        .sie_ms = (int64_t)t->stale_if_error_ms,
    };
    struct st_entry *e = st_entry_new(&in);
    st_headers_finish(&h);
    return e;
}

static void on_end(struct st_exchange *x)
{
    struct wt *w = st_exchange_hook_arg(x);
    if (w->status < 200 || w->status >= 300)
        return; /* the cache stays as it was */
    const struct st_strategy_ctx *ctx = st_exchange_ctx(x);
    st_cache_aside_invalidate_patterns(x);
    struct st_entry *e = representation(x, w);
    if (e && st_cache_tier_insert(ctx->tiers, e)) {
        /* Stored here and in the shared tier: the others drop their copy and read the new one. */
        st_invalidate_elsewhere(ctx->tiers, ctx->stats, ST_INVAL_KEY, w->key.p, w->key.len);
    } else {
        const struct st_request_head *req = st_exchange_request(x);
        size_t plen;
        const char *path = st_target_path(req->target, req->target_len, &plen);
        st_invalidate(ctx->tiers, ctx->stats, ST_INVAL_URI, path, plen);
    }
    st_entry_unref(e);
}

static void on_done(struct st_exchange *x)
{
    struct wt *w = st_exchange_hook_arg(x);
    st_sb_finish(&w->key);
    st_sb_finish(&w->req_body);
    st_sb_finish(&w->resp_body);
    free(w);
}

static const struct st_fetch_hooks put_hooks = {
    .on_head = on_head,
    .on_body = on_body,
    .on_end = on_end,
    .on_done = on_done,
    .on_request_body = on_request_body,
};

static void put(struct st_exchange *x)
{
    const struct st_request_head *req = st_exchange_request(x);
    struct wt *w = st_xcalloc(1, sizeof(*w));
    size_t host_len;
    const char *host = st_exchange_host(x, &host_len);
    st_sb_init(&w->key, 128);
    st_cache_key_build(&w->key, st_exchange_route(x), req->target, req->target_len,
                       host ? host : "", host_len, req->headers);
    st_sb_init(&w->req_body, 256);
    st_sb_init(&w->resp_body, 256);
    st_exchange_count_bypass(x);
    st_exchange_set_cache_status(x, "strata; fwd=method");
    st_exchange_fetch(x, &put_hooks, w, NULL);
}

static void on_request(struct st_exchange *x)
{
    const char *m = st_exchange_request(x)->method;
    if (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0)
        st_cache_aside_read(x);
    else if (strcmp(m, "PUT") == 0)
        put(x);
    else
        st_cache_aside_write(x);
}

const struct st_strategy st_strategy_write_through = {
    .name = "write-through",
    .on_request = on_request,
    .on_resume = st_cache_aside_resume,
};
