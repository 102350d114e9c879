/*
 * write_behind.c - a PUT or DELETE (and a PATCH, when the route says
 * `ordered: true`) is made durable in Redis before the client is answered,
 * and reaches the origin later, through the flusher (wb_flusher.h).
 *
 * The request body is read whole (up to the smaller of cache.max_object and
 * redis.max_object: 413 beyond), then one script (wb_queue.h) puts the new
 * representation under the resource's GET key (a PUT's body with its
 * Content-Type, a DELETE's 404 tombstone; a PATCH drops the value, since
 * strata cannot compute its result), marks it dirty and appends the write
 * to its partition's stream. Only once Redis confirmed that is the client
 * answered 202 with Strata-Write-Id; then this instance holds the dirty
 * entry in L1 and every other drops its copy (the bus), so that reads on
 * every instance see the write at once. Redis down, or not answering
 * within redis.timeout: 503 with Retry-After, and nothing is acknowledged.
 * (A 503 after a timeout may still have been queued: delivery is
 * at-least-once, and the origin deduplicates by Idempotency-Key.)
 *
 * GET and HEAD are read as cache-aside reads them; POST (and PATCH without
 * `ordered`) is forwarded, then invalidates, as cache-aside's writes do.
 *
 * State: one struct wb per queued write (the hook argument), freed when
 * both the exchange and Redis are done with it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "cache/invalidate.h"
#include "cache/key.h"
#include "cache/tier.h"
#include "core/strategy.h"
#include "http/ids.h"
#include "redis/redis.h"
#include "strategies/strategies.h"
#include "strategies/wb_flusher.h"
#include "strategies/wb_queue.h"

#define RETRY_AFTER_S 1

struct wb {
    struct st_exchange *x; /* NULL once the exchange ended */
    const struct st_strategy_ctx *ctx;
    bool queuing;          /* the enqueue is in flight */
    bool too_big;
    uint64_t limit;
    struct st_sb key, body, headers, target, route, client;
    char method[8];
    char id[ST_WB_ID_LEN + 1];
    uint64_t hash;
    struct st_entry *e; /* the dirty entry readers get (NULL for a PATCH) */
};

static void wb_free(struct wb *w)
{
    st_sb_finish(&w->key);
    st_sb_finish(&w->body);
    st_sb_finish(&w->headers);
    st_sb_finish(&w->target);
    st_sb_finish(&w->route);
    st_sb_finish(&w->client);
    st_entry_unref(w->e);
    free(w);
}

static void refuse(struct st_exchange *x, const char *why)
{
    ST_STAT_INC(st_exchange_ctx(x)->stats, WB_REFUSED);
    st_exchange_respond_error_retry(x, 503, why, RETRY_AFTER_S);
}

static void on_request_body(struct st_exchange *x, const char *p, size_t len)
{
    struct wb *w = st_exchange_hook_arg(x);
    if (w->too_big || w->body.len + len > w->limit) {
        w->too_big = true;
        return;
    }
    st_sb_add(&w->body, p, len);
}

/* Request headers that are not the connection's, nor ones strata sets itself toward the origin. */
static bool kept_header(const struct st_headers *h, const struct st_hdr *e)
{
    static const char *const dropped[] = {"content-length", "transfer-encoding", "expect",
                                          "idempotency-key", "x-request-id", "traceparent"};
    const char *name = st_hdr_name(h, e);
    for (size_t i = 0; i < sizeof(dropped) / sizeof(dropped[0]); i++)
        if (st_name_eq(name, e->name_len, dropped[i]))
            return false;
    return !st_http_is_hop_by_hop(h, e);
}

static void fields(struct wb *w, struct st_wb_write *out, const char *at, size_t at_len)
{
    memset(out, 0, sizeof(*out));
#define F(f, p, l) (out->v[f] = (p), out->len[f] = (l))
    F(ST_WB_ID, w->id, strlen(w->id));
    F(ST_WB_KEY, w->key.p, w->key.len);
    F(ST_WB_METHOD, w->method, strlen(w->method));
    F(ST_WB_ROUTE, w->route.p, w->route.len);
    F(ST_WB_TARGET, w->target.p, w->target.len);
    F(ST_WB_HEADERS, w->headers.p ? w->headers.p : "", w->headers.len);
    F(ST_WB_BODY, w->body.p ? w->body.p : "", w->body.len);
    F(ST_WB_CLIENT, w->client.p, w->client.len);
    F(ST_WB_AT, at, at_len);
#undef F
}

static void accepted(struct st_exchange *x, struct wb *w)
{
    struct st_headers h;
    st_headers_init(&h);
    st_headers_add(&h, "Content-Type", 12, "application/json", 16);
    st_headers_add(&h, "Strata-Write-Id", 15, w->id, strlen(w->id));
    char body[96];
    int n = snprintf(body, sizeof(body), "{\"write_id\":\"%s\",\"status\":\"queued\"}\n", w->id);
    st_exchange_respond(x, 202, &h, body, (size_t)n);
    st_headers_finish(&h);
}

static void on_queued(struct st_redis *r, const redisReply *reply, void *arg)
{
    (void)r;
    struct wb *w = arg;
    w->queuing = false;
    struct st_exchange *x = w->x;
    if (!reply || reply->type != REDIS_REPLY_STRING) {
        if (x)
            refuse(x, reply && reply->type == REDIS_REPLY_ERROR
                          ? "Redis refused the write: it was not queued"
                          : "Redis did not confirm the write in time: it was not acknowledged");
        else
            wb_free(w);
        return;
    }
    /* Durable. Readers here get the dirty entry; the others drop their copy and read L2's. */
    const struct st_strategy_ctx *ctx = w->ctx;
    ST_STAT_INC(ctx->stats, WB_QUEUED);
    if (w->e) {
        st_cache_tier_insert(ctx->tiers, w->e);
        st_invalidate_elsewhere(ctx->tiers, ctx->stats, ST_INVAL_KEY, w->key.p, w->key.len);
    } else {
        st_invalidate(ctx->tiers, ctx->stats, ST_INVAL_KEY, w->key.p, w->key.len);
    }
    if (!x) {
        wb_free(w);
        return;
    }
    st_cache_aside_invalidate_patterns(x);
    accepted(x, w);
}

static void on_request_end(struct st_exchange *x)
{
    struct wb *w = st_exchange_hook_arg(x);
    if (w->too_big) {
        char why[128];
        snprintf(why, sizeof(why), "a write-behind body must fit in %llu bytes",
                 (unsigned long long)w->limit);
        st_exchange_respond_error(x, 413, why);
        return;
    }
    const struct st_strategy_ctx *ctx = st_exchange_ctx(x);
    struct st_redis *r = st_cache_tier_redis(ctx->tiers);
    if (!r || !st_redis_up(r)) {
        refuse(x, "Redis is unavailable: the write cannot be made durable");
        return;
    }
    char at[24];
    int at_len = snprintf(at, sizeof(at), "%lld", (long long)ctx->now_ms());
    struct st_wb_write in;
    fields(w, &in, at, (size_t)at_len);
    struct st_sb value;
    st_sb_init(&value, w->body.len + 512);
    w->e = st_wb_entry(&in, NULL, ctx->now_ms());
    if (w->e)
        st_entry_encode(w->e, &value);
    const char *prefix = st_exchange_config(x)->redis.prefix;
    int rc = st_wb_enqueue(r, prefix, w->hash, &in, value.p, value.len, on_queued, w);
    st_sb_finish(&value);
    if (rc < 0) {
        refuse(x, "Redis is unavailable: the write cannot be made durable");
        return;
    }
    w->queuing = true;
}

static void on_done(struct st_exchange *x)
{
    struct wb *w = st_exchange_hook_arg(x);
    w->x = NULL;
    if (!w->queuing)
        wb_free(w);
}

static const struct st_fetch_hooks queue_hooks = {
    .on_request_body = on_request_body,
    .on_request_end = on_request_end,
    .on_done = on_done,
};

static void queue_write(struct st_exchange *x)
{
    const struct st_strategy_ctx *ctx = st_exchange_ctx(x);
    const struct st_config *cfg = st_exchange_config(x);
    st_exchange_count_bypass(x);
    st_exchange_set_cache_status(x, "strata; fwd=method; detail=write-behind");
    const struct st_request_head *req = st_exchange_request(x);
    struct wb *w = st_xcalloc(1, sizeof(*w));
    w->x = x;
    w->ctx = ctx;
    w->limit = ctx->tiers->max_object < cfg->redis.max_object ? ctx->tiers->max_object
                                                              : cfg->redis.max_object;
    snprintf(w->method, sizeof(w->method), "%s", req->method);
    size_t host_len;
    const char *host = st_exchange_host(x, &host_len);
    st_sb_init(&w->key, 128);
    st_cache_key_build(&w->key, st_exchange_route(x), req->target, req->target_len,
                       host ? host : "", host_len, req->headers);
    w->hash = st_cache_tier_hash(w->key.p, w->key.len);
    st_sb_init(&w->body, 256);
    st_sb_init(&w->headers, 256);
    for (size_t i = 0; i < req->headers->n; i++) {
        const struct st_hdr *e = &req->headers->v[i];
        if (kept_header(req->headers, e))
            st_http_add_field(&w->headers, req->headers, e);
    }
    st_sb_init(&w->target, req->target_len + 1);
    st_sb_add(&w->target, req->target, req->target_len);
    const char *route = st_exchange_route(x)->id;
    st_sb_init(&w->route, 64);
    st_sb_adds(&w->route, route);
    st_sb_init(&w->client, 64);
    st_sb_adds(&w->client, st_exchange_client_ip(x));
    st_request_id_new(ctx->rand, w->id);
    st_exchange_read_body(x, &queue_hooks, w);
}

static void on_request(struct st_exchange *x)
{
    const char *m = st_exchange_request(x)->method;
    if (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0)
        st_cache_aside_read(x);
    else if (strcmp(m, "PUT") == 0 || strcmp(m, "DELETE") == 0 ||
             (strcmp(m, "PATCH") == 0 && st_exchange_route(x)->write_behind.ordered))
        queue_write(x);
    else
        st_cache_aside_write(x);
}

const struct st_strategy st_strategy_write_behind = {
    .name = "write-behind",
    .on_request = on_request,
    .on_resume = st_cache_aside_resume,
    .service_start = st_wb_flusher_start,
    .service_stop = st_wb_flusher_stop,
};
