/*
 * exchange.c - one request's life: route, strategy, origin relay, response.
 * The states are in exchange_internal.h; answers from a stored entry are in
 * exchange_cache.c.
 *
 * Invariants: at most one of (response head sent by us, error response)
 * happens; x->client is NULL once the client is gone (a background exchange
 * never has one), and nothing is written after that; x->up is NULL once the
 * origin side ended or was aborted.
 * Request body pieces that arrive before the origin connection exists are
 * kept (by reference) in x->body_q and sent once it does.
 */
#include "core/exchange.h"
#include "core/exchange_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/log.h"
#include "cache/entry.h"
#include "cache/tier.h"
#include "cache/store.h"
#include "core/ratelimit.h"
#include "core/router.h"
#include "core/server.h"
#include "core/strategy.h"
#include "core/worker.h"
#include "http/date.h"
#include "http/ids.h"
#include "origin/upstream.h"

#define UPLOAD_HIGH_WATER (1024 * 1024)


static const struct st_upstream_cbs up_cbs;

/* A piece of request body that came while the exchange waited for the fleet's rate limit. */
struct held_piece {
    struct st_rbuf *b; /* reference held */
    const char *p;
    size_t len;
};

/* A request waiting for Redis's verdict; x is NULL once the exchange ended meanwhile. */
struct rl_wait {
    struct st_exchange *x;
    uint64_t key_hash;
};

static void drop_held(struct st_exchange *x)
{
    for (size_t i = 0; i < x->n_held; i++)
        st_rbuf_unref(x->held[i].b);
    free(x->held);
    x->held = NULL;
    x->n_held = x->cap_held = 0;
}

static void free_exchange(struct st_exchange *x)
{
    for (size_t i = 0; i < x->n_body_q; i++)
        st_wreq_free(x->body_q[i]);
    free(x->body_q);
    if (x->held)
        drop_held(x);
    if (x->extra_head) /* only on rate-limited routes: the common case pays no call */
        free(x->extra_head);
    st_wreq_free(x->out);
    st_headers_finish(&x->own_headers);
    free(x->own_target);
    st_worker_gen_unref(x->gen);
    free(x);
}

static void count_route(struct st_exchange *x)
{
    if (!x->route)
        return;
    struct st_stats *st = &x->w->stats;
    st_stat_bump(&st->route[x->route->stats_slot][ST_RS_BYTES], x->body_bytes);
    if (x->route->strategy == ST_STRATEGY_BYPASS)
        return;
    st_stat_add(st, ST_STAT_CACHE_BYTES_SENT, x->body_bytes);
    if (x->from_cache) {
        st_stat_bump(&st->route[x->route->stats_slot][ST_RS_BYTES_HIT], x->body_bytes);
        st_stat_add(st, ST_STAT_CACHE_BYTES_HIT, x->body_bytes);
    }
}

/* The exchange is over: tell the connection, the hooks, and free (now or after the hook). */
void st_exchange__finish(struct st_exchange *x)
{
    if (x->phase == PH_DONE)
        return;
    if (x->client && x->gen->cfg->log_access) {
        double ms = (double)(uv_hrtime() - x->start_ns) / 1e6;
        st_log_access(x->id, x->client_ip, x->req.method, x->req.target, x->status,
                      (unsigned long long)x->bytes_out, ms,
                      x->cache_status ? x->cache_status : "");
    }
    x->phase = PH_DONE;
    count_route(x);
    if (x->client)
        x->cops->done(x->client, x->keep_alive);
    x->client = NULL;
    if (x->waiter)
        x->waiter->x = NULL; /* parked, and the client left */
    if (x->rl_wait)
        x->rl_wait->x = NULL; /* the fleet's verdict will find nobody */
    if (x->hooks && x->hooks->on_done) {
        x->depth++;
        x->hooks->on_done(x);
        x->depth--;
    }
    if (x->depth > 0) {
        x->free_pending = true;
        return;
    }
    free_exchange(x);
}

/* Run after a strategy hook returns: the exchange may have finished inside it. */
static bool hook_return(struct st_exchange *x)
{
    x->depth--;
    if (x->depth == 0 && x->free_pending) {
        free_exchange(x);
        return false;
    }
    return x->phase != PH_DONE;
}

static void release_entry(void *e)
{
    st_entry_unref(e);
}

/*
 * Hand what is gathered in x->out to the client: written at once when the
 * socket takes it all, else queued. `pin` is a cache entry the pieces point
 * into that may only have been peeked at (no reference): it gets one only
 * when the write has to wait.
 */
void st_exchange__send_out(struct st_exchange *x, struct st_entry *pin)
{
    if (!x->out)
        return;
    struct st_wreq *w = x->out;
    x->out = NULL;
    x->bytes_out += w->bytes;
    if (!x->client) {
        st_wreq_free(w);
        return;
    }
    if (x->cops->try_send(x->client, w))
        return;
    if (pin)
        st_wreq_hold(w, st_entry_ref(pin), release_entry);
    x->cops->send(x->client, w);
}

void st_exchange__flush_out(struct st_exchange *x)
{
    st_exchange__send_out(x, NULL);
}

struct st_wreq *st_exchange__out_room(struct st_exchange *x, unsigned nbufs, size_t small)
{
    if (x->out && !st_wreq_fits(x->out, nbufs, small))
        st_exchange__flush_out(x);
    if (!x->out)
        x->out = st_wreq_new();
    return x->out;
}

static void respond_error_after(struct st_exchange *x, int status, const char *detail,
                                unsigned retry_after_s)
{
    if (x->up) {
        st_upstream_abort(x->up);
        x->up = NULL;
    }
    if (x->phase == PH_DONE)
        return;
    if (x->phase == PH_RESPONDING && !x->absorb) {
        /* The head is out: the only honest signal left is closing. */
        if (x->client)
            x->cops->abort(x->client);
        x->client = NULL;
        st_exchange__finish(x);
        return;
    }
    if (!x->client) {
        x->status = status;
        st_exchange__finish(x);
        return;
    }
    struct st_sb sb;
    st_sb_init(&sb, 512);
    bool keep_alive = x->client_keep_alive && !st_worker_draining(x->w);
    struct st_error_info ei = {
        .status = status,
        .detail = detail,
        .request_id = x->id,
        .cache_status = x->cache_status,
        .extra = x->extra_head,
        .now_ms = st_clock_wall_ms(),
        .keep_alive = keep_alive,
        .head_only = x->head_request,
        .retry_after_s = retry_after_s,
    };
    st_http_build_error(&sb, &ei);
    size_t len;
    char *p = st_sb_take(&sb, &len);
    st_wreq_add_owned(st_exchange__out_room(x, 1, 0), p, len);
    x->status = status;
    x->keep_alive = keep_alive;
    st_stats_count_status(&x->w->stats, status);
    st_exchange__flush_out(x);
    st_exchange__finish(x);
}

static void respond_error(struct st_exchange *x, int status, const char *detail)
{
    respond_error_after(x, status, detail, 0);
}

void st_exchange_respond_error(struct st_exchange *x, int status, const char *detail)
{
    respond_error(x, status, detail);
}

void st_exchange_respond_error_retry(struct st_exchange *x, int status, const char *detail,
                                     unsigned retry_after_s)
{
    respond_error_after(x, status, detail, retry_after_s);
}

void st_exchange_respond(struct st_exchange *x, int status, const struct st_headers *h,
                         const char *body, size_t len)
{
    if (x->phase != PH_ROUTED && x->phase != PH_FORWARDING)
        return;
    if (!x->client) {
        x->status = status;
        st_exchange__finish(x);
        return;
    }
    bool keep_alive = x->client_keep_alive && !st_worker_draining(x->w);
    struct st_headers own;
    st_headers_init(&own);
    if (h)
        st_headers_copy(&own, h);
    char date[30];
    st_http_date_format(st_clock_wall_ms(), date);
    st_headers_add(&own, "Date", 4, date, strlen(date));
    struct st_response_info ri = {
        .status = status,
        .framing = ST_FRAME_LENGTH,
        .content_length = len,
        .keep_alive = keep_alive,
        .request_id = x->id,
        .cache_status = x->cache_status,
        .extra = x->extra_head,
    };
    struct st_sb sb;
    st_sb_init(&sb, 512 + len);
    st_http_build_response(&sb, &ri, &own);
    if (!x->head_request)
        st_sb_add(&sb, body, len);
    st_headers_finish(&own);
    size_t n;
    char *p = st_sb_take(&sb, &n);
    st_wreq_add_owned(st_exchange__out_room(x, 1, 0), p, n);
    x->status = status;
    x->keep_alive = keep_alive;
    x->body_bytes += x->head_request ? 0 : len;
    st_stats_count_status(&x->w->stats, status);
    st_exchange__flush_out(x);
    st_exchange__finish(x);
}

/* Tell the strategy reading the body that it is complete (once). */
static void body_read(struct st_exchange *x)
{
    if (x->body_told || x->phase == PH_DONE)
        return;
    x->body_told = true;
    if (x->hooks && x->hooks->on_request_end) {
        x->depth++;
        x->hooks->on_request_end(x);
        hook_return(x);
    }
}

void st_exchange_read_body(struct st_exchange *x, const struct st_fetch_hooks *hooks, void *arg)
{
    x->hooks = hooks;
    x->hook_arg = arg;
    x->reading_body = true;
    if (!x->has_body || x->request_ended)
        body_read(x);
}

static unsigned method_bit(const char *m)
{
    return st_method_bit_from_name(m, strlen(m));
}


/*
 * The route's rate limit key: the route and the client's address, or the
 * route and the header's value (requests without it share one).
 */
static uint64_t rate_limit_key(const struct st_exchange *x)
{
    const struct st_route_cfg *r = x->route;
    struct st_sb key;
    st_sb_init(&key, 128);
    st_sb_adds(&key, r->id);
    st_sb_add(&key, "\n", 1);
    if (r->rate_limit.header) {
        const struct st_hdr *h = st_headers_get(x->req.headers, r->rate_limit.header);
        if (h)
            st_sb_add(&key, st_hdr_value(x->req.headers, h), h->value_len);
    } else {
        st_sb_adds(&key, x->client_ip);
    }
    uint64_t hash = st_store_hash(key.p, key.len);
    st_sb_finish(&key);
    return hash;
}

/*
 * Apply a verdict: false when the request was answered 429. Either way its
 * answer carries the RateLimit-* headers (and the X-RateLimit-* forms many
 * clients read).
 */
static bool rate_limit_apply(struct st_exchange *x, const struct st_rl_verdict *v)
{
    free(x->extra_head);
    x->extra_head = st_xasprintf(
             "RateLimit-Limit: %llu\r\nRateLimit-Remaining: %llu\r\nRateLimit-Reset: %llu\r\n"
             "X-RateLimit-Limit: %llu\r\nX-RateLimit-Remaining: %llu\r\nX-RateLimit-Reset: %llu\r\n",
             (unsigned long long)v->limit, (unsigned long long)v->remaining,
             (unsigned long long)v->reset_s, (unsigned long long)v->limit,
             (unsigned long long)v->remaining, (unsigned long long)v->reset_s);
    if (v->allowed)
        return true;
    ST_STAT_INC(&x->w->stats, RATE_LIMITED);
    respond_error_after(x, 429, "rate limit exceeded: try again after Retry-After seconds",
                        (unsigned)v->retry_after_s);
    return false;
}

/* The instance's own bucket: scope local, and fleet while Redis is down or late. */
static bool rate_limit_local(struct st_exchange *x, uint64_t key_hash)
{
    const struct st_route_cfg *r = x->route;
    struct st_rl_verdict v;
    st_ratelimit_take(st_server_ratelimit(x->w->srv), key_hash, r->rate_limit.interval_us,
                      r->rate_limit.burst, uv_hrtime() / 1000, &v);
    return rate_limit_apply(x, &v);
}

static void run_strategy(struct st_exchange *x);

static void on_fleet_verdict(void *arg, const struct st_rl_verdict *v)
{
    struct rl_wait *wait = arg;
    struct st_exchange *x = wait->x;
    uint64_t key_hash = wait->key_hash;
    free(wait);
    if (!x) {
        return;
    }
    x->rl_wait = NULL;
    if (x->client && x->has_body)
        x->cops->resume_reading(x->client);
    bool allowed;
    if (v) {
        allowed = rate_limit_apply(x, v);
    } else {
        ST_STAT_INC(&x->w->stats, RATE_LIMIT_FALLBACKS);
        allowed = rate_limit_local(x, key_hash);
    }
    if (!allowed)
        return; /* answered 429: the exchange may be gone (what it held went with it) */
    /* Run the strategy, then hand it what of the request came meanwhile. */
    x->depth++;
    run_strategy(x);
    if (!hook_return(x))
        return;
    struct held_piece *held = x->held;
    size_t n = x->n_held;
    bool end = x->held_end;
    x->held = NULL;
    x->n_held = x->cap_held = 0;
    x->held_end = false;
    x->depth++;
    for (size_t i = 0; i < n; i++) {
        if (x->phase != PH_DONE)
            st_exchange_request_body(x, held[i].b, held[i].p, held[i].len);
        st_rbuf_unref(held[i].b);
    }
    free(held);
    if (end && x->phase != PH_DONE)
        st_exchange_request_end(x);
    hook_return(x);
}

/*
 * The route's rate limit: false when the request was answered 429, or is
 * waiting for the fleet's verdict in Redis (then on_fleet_verdict goes on).
 */
static bool rate_limit_admits(struct st_exchange *x)
{
    uint64_t key_hash = rate_limit_key(x);
    if (x->route->rate_limit.fleet) {
        const struct st_route_cfg *r = x->route;
        struct rl_wait *wait = st_xmalloc(sizeof(*wait));
        *wait = (struct rl_wait){.x = x, .key_hash = key_hash};
        int rc = st_ratelimit_take_fleet(st_cache_tier_redis(x->w->ctx.tiers),
                                         x->gen->cfg->redis.prefix, key_hash,
                                         r->rate_limit.interval_us, r->rate_limit.burst,
                                         on_fleet_verdict, wait);
        if (rc == 0) {
            x->rl_wait = wait;
            if (x->client && x->has_body) /* the body waits in the socket, not here */
                x->cops->pause_reading(x->client);
            return false;
        }
        free(wait);
        ST_STAT_INC(&x->w->stats, RATE_LIMIT_FALLBACKS);
    }
    return rate_limit_local(x, key_hash);
}

static void run_strategy(struct st_exchange *x)
{
    const struct st_strategy *s = x->route->impl;
    if (!s) {
        /* Config validation keeps this from happening; fail the one exchange. */
        st_log(ST_LOG_ERROR, "exchange", x->id, "route %s: strategy not available",
               x->route->match);
        respond_error(x, 501, "the route's strategy is not available");
        return;
    }
    s->on_request(x);
}

static void route_and_run(struct st_exchange *x)
{
    x->route = st_router_match(x->gen->cfg, x->host, x->host_len, method_bit(x->req.method),
                               x->req.target, x->req.target_len);
    if (!x->route) {
        respond_error(x, 404, "no route matches this request");
        return;
    }
    st_stat_bump(&x->w->stats.route[x->route->stats_slot][ST_RS_REQUESTS], 1);
    if (x->route->rate_limit.enabled && !rate_limit_admits(x))
        return;
    run_strategy(x);
}

static void copy_bounded(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* "<hex length>\r\n" of a chunk; out holds at least 18 bytes. */
static size_t chunk_line(char *out, size_t len)
{
    size_t k = st_fmt_hex(out, len);
    out[k++] = '\r';
    out[k++] = '\n';
    return k;
}

struct st_exchange *st_exchange_create(const struct st_exchange_init *in)
{
    struct st_exchange *x = st_xcalloc(1, sizeof(*x));
    x->cops = in->client_ops;
    x->client = in->client;
    x->w = in->w;
    x->gen = st_worker_gen_ref(in->gen);
    const struct st_request_info *rq = in->rq;
    x->req = rq->req;
    copy_bounded(x->client_ip, sizeof(x->client_ip), rq->client_ip);
    copy_bounded(x->id, sizeof(x->id), rq->request_id);
    x->has_body = rq->has_body;
    x->chunked = rq->chunked;
    x->content_length = rq->content_length;
    x->client_keep_alive = rq->client_keep_alive;
    x->head_request = rq->head_request;
    x->host = rq->host; /* the connection found it checking the head */
    x->host_len = rq->host_len;
    x->attempts = 0;
    x->start_ns = uv_hrtime();
    ST_STAT_INC(&x->w->stats, REQUESTS);
    return x;
}

void st_exchange_run(struct st_exchange *x)
{
    route_and_run(x);
}

static bool idempotent(const char *m)
{
    return !strcmp(m, "GET") || !strcmp(m, "HEAD") || !strcmp(m, "OPTIONS") ||
           !strcmp(m, "PUT") || !strcmp(m, "DELETE") || !strcmp(m, "TRACE");
}

/* The client's traceparent if valid, else a new trace: only needed toward the origin. */
static void pick_traceparent(struct st_exchange *x)
{
    if (x->traceparent[0])
        return;
    const struct st_hdr *e = st_headers_get(x->req.headers, "traceparent");
    if (e && st_traceparent_valid(st_hdr_value(x->req.headers, e), e->value_len))
        memcpy(x->traceparent, st_hdr_value(x->req.headers, e), e->value_len + 1);
    else
        st_traceparent_new(x->w->rand, x->traceparent);
}

static void send_head(struct st_exchange *x)
{
    pick_traceparent(x);
    struct st_sb sb;
    st_sb_init(&sb, 1024);
    struct st_forward_info fw = {
        .client_ip = x->client_ip,
        .request_id = x->id,
        .traceparent = x->traceparent,
        .has_body = x->has_body,
        .chunked = x->chunked,
        .content_length = x->content_length,
        .keep_underscores = x->gen->cfg->limits.underscores_in_headers,
        .caching = x->route->strategy != ST_STRATEGY_BYPASS,
        .keyed = x->route->key_headers,
        .n_keyed = x->route->n_key_headers,
    };
    char ims[30];
    if (x->has_rv) {
        fw.replace_conditionals = true;
        fw.if_none_match = x->rv.etag;
        fw.if_none_match_len = x->rv.etag_len;
        if (x->rv.last_modified_ms >= 0) {
            st_http_date_format(x->rv.last_modified_ms, ims);
            fw.if_modified_since = ims;
        }
    }
    struct st_request_head req = x->req;
    if (x->fetch_whole && x->head_request)
        req.method = "GET";
    fw.drop_range = x->fetch_whole;
    st_http_build_request(&sb, &req, &fw);
    size_t len;
    char *p = st_sb_take(&sb, &len);
    struct st_wreq *w = st_wreq_new();
    st_wreq_add_owned(w, p, len);
    st_upstream_write(x->up, w);
}

static void upload_end(struct st_exchange *x)
{
    if (x->chunked) {
        struct st_wreq *w = st_wreq_new();
        st_wreq_add_static(w, "0\r\n\r\n", 5);
        st_upstream_write(x->up, w);
    }
    st_upstream_request_done(x->up);
}

static void start_origin(struct st_exchange *x, bool fresh)
{
    struct st_upstream_pool *pool = x->gen->pools[x->route->upstream];
    x->attempts++;
    x->phase = PH_FORWARDING;
    x->origin_start_ns = uv_hrtime();
    x->up = st_upstream_acquire(pool, &up_cbs, x, fresh, x->id);
    if (x->head_request && !x->fetch_whole)
        st_upstream_expect_no_body(x->up);
    send_head(x);
    for (size_t i = 0; i < x->n_body_q; i++)
        st_upstream_write(x->up, x->body_q[i]);
    x->n_body_q = 0;
    if (x->request_ended || !x->has_body)
        upload_end(x);
}

void st_exchange_forward(struct st_exchange *x)
{
    start_origin(x, false);
}

void st_exchange_fetch(struct st_exchange *x, const struct st_fetch_hooks *hooks, void *arg,
                       const struct st_revalidate *rv)
{
    x->hooks = hooks;
    x->hook_arg = arg;
    x->has_rv = rv != NULL;
    if (rv)
        x->rv = *rv;
    start_origin(x, false);
}

void st_exchange_fetch_whole(struct st_exchange *x)
{
    x->fetch_whole = true;
}

void *st_exchange_hook_arg(const struct st_exchange *x)
{
    return x->hook_arg;
}

static void on_waiter_wake(struct st_flight_waiter *fw)
{
    struct st_waiter *wt = (struct st_waiter *)fw;
    st_worker_post(wt->w, wt);
}

enum st_flight_role st_exchange_join_flight(struct st_exchange *x, struct st_cache_tier *t,
                                            uint64_t hash, const char *key, size_t key_len,
                                            const struct st_fetch_hooks *hooks, void *arg)
{
    struct st_waiter *wt = st_xcalloc(1, sizeof(*wt));
    wt->fw.wake = on_waiter_wake;
    wt->w = x->w;
    wt->x = x;
    wt->tier = t;
    wt->hash = hash;
    wt->key = st_xstrndup(key, key_len);
    wt->key_len = key_len;
    if (st_cache_tier_flight_join(t, hash, key, key_len, &wt->fw) == ST_FLIGHT_LEADER) {
        free(wt->key);
        free(wt);
        return ST_FLIGHT_LEADER;
    }
    x->waiter = wt;
    x->hooks = hooks;
    x->hook_arg = arg;
    return ST_FLIGHT_PARKED;
}

void st_exchange_resume(struct st_exchange *x, enum st_flight_result result, int status)
{
    const struct st_strategy *s = x->route->impl;
    x->waiter = NULL; /* the worker frees it */
    x->hooks = NULL;
    /* The lead, or a shared-tier answer to the first asker, did not wait for another request. */
    x->parked = result != ST_FLIGHT_LEAD && !(result == ST_FLIGHT_SHARED && status == 1);
    if (s && s->on_resume)
        s->on_resume(x, result, status);
    else
        respond_error(x, 502, "no strategy resumed the request");
}

static struct st_wreq *body_piece(struct st_exchange *x, struct st_rbuf *b, const char *p,
                                  size_t len)
{
    struct st_wreq *w = st_wreq_new();
    if (x->chunked) {
        char line[24];
        st_wreq_add_copy(w, line, chunk_line(line, len));
    }
    st_wreq_add_slice(w, b, p, len);
    if (x->chunked)
        st_wreq_add_static(w, "\r\n", 2);
    return w;
}

void st_exchange_request_body(struct st_exchange *x, struct st_rbuf *b, const char *p, size_t len)
{
    if (x->phase == PH_DONE || len == 0)
        return;
    if (x->rl_wait) { /* the strategy has not started: keep it for later */
        if (x->n_held == x->cap_held) {
            x->cap_held = x->cap_held ? x->cap_held * 2 : 4;
            x->held = st_xrealloc(x->held, x->cap_held * sizeof(*x->held));
        }
        x->held[x->n_held++] = (struct held_piece){st_rbuf_ref(b), p, len};
        return;
    }
    if (x->hooks && x->hooks->on_request_body)
        x->hooks->on_request_body(x, p, len); /* only copies: it cannot end the exchange */
    if (x->reading_body)
        return;
    struct st_wreq *w = body_piece(x, b, p, len);
    if (!x->up) {
        if (x->phase != PH_ROUTED) {
            st_wreq_free(w); /* the origin side already ended: nobody wants it */
            return;
        }
        if (x->n_body_q == x->cap_body_q) {
            x->cap_body_q = x->cap_body_q ? x->cap_body_q * 2 : 8;
            x->body_q = st_xrealloc(x->body_q, x->cap_body_q * sizeof(*x->body_q));
        }
        x->body_q[x->n_body_q++] = w;
        return;
    }
    st_upstream_write(x->up, w);
    if (!x->upload_paused && st_upstream_pending(x->up) > UPLOAD_HIGH_WATER && x->client) {
        x->upload_paused = true;
        x->cops->pause_reading(x->client);
    }
}

void st_exchange_request_end(struct st_exchange *x)
{
    if (x->rl_wait) {
        x->held_end = true;
        return;
    }
    x->request_ended = true;
    if (x->reading_body)
        body_read(x);
    else if (x->up && x->has_body)
        upload_end(x);
}

void st_exchange_client_drained(struct st_exchange *x)
{
    if (x->up)
        st_upstream_resume(x->up);
}

/* Keep a copy of req's head in x's own memory (x outlives the client that owns req). */
static void own_request(struct st_exchange *x, const struct st_request_head *req)
{
    st_headers_init(&x->own_headers);
    st_headers_copy(&x->own_headers, req->headers);
    x->own_target = st_xstrndup(req->target, req->target_len);
    x->req = *req;
    x->req.headers = &x->own_headers;
    x->req.target = x->own_target;
    const struct st_hdr *h = st_headers_get(x->req.headers, "host");
    x->host = h ? st_hdr_value(x->req.headers, h) : NULL;
    x->host_len = h ? h->value_len : 0;
}

bool st_exchange_client_gone(struct st_exchange *x)
{
    bool started = x->phase == PH_RESPONDING;
    x->client = NULL;
    if (x->up) {
        st_upstream_abort(x->up);
        x->up = NULL;
    }
    st_exchange__finish(x);
    return started;
}

void st_exchange_set_cache_status(struct st_exchange *x, const char *value)
{
    x->cache_status = value;
}

void st_exchange_count_bypass(struct st_exchange *x)
{
    ST_STAT_INC(&x->w->stats, CACHE_BYPASS);
    st_stat_bump(&x->w->stats.route[x->route->stats_slot][ST_RS_BYPASS], 1);
}

const struct st_request_head *st_exchange_request(const struct st_exchange *x)
{
    return &x->req;
}

const struct st_route_cfg *st_exchange_route(const struct st_exchange *x)
{
    return x->route;
}

const struct st_tier *st_exchange_tier(const struct st_exchange *x)
{
    return x->route->tier >= 0 ? &x->gen->cfg->tiers[x->route->tier] : NULL;
}

/* --- origin side callbacks --- */

static bool status_has_body(int status)
{
    return !(status == 204 || status == 304 || status < 200);
}

/*
 * 1xx from the origin (103 Early Hints, ...): relayed to an HTTP/1.1 client
 * before any final head, never to a background exchange; never stored. A 100
 * is strata's own to send (it answered the client's Expect itself).
 */
static void on_up_interim(void *user, const struct st_response_head *h)
{
    struct st_exchange *x = user;
    if (!x->client || x->phase != PH_FORWARDING || h->status == 100 || x->req.http_minor < 1)
        return;
    struct st_sb sb;
    st_sb_init(&sb, 256);
    st_http_build_interim(&sb, h);
    size_t len;
    char *p = st_sb_take(&sb, &len);
    st_wreq_add_owned(st_exchange__out_room(x, 1, 0), p, len);
    st_exchange__flush_out(x);
}

static void on_up_head(void *user, const struct st_response_head *h)
{
    struct st_exchange *x = user;
    st_stats_latency(&x->w->stats, x->gen->cfg->upstreams[x->route->upstream].stats_slot,
                     (uv_hrtime() - x->origin_start_ns) / 1000);
    if (x->hooks && x->hooks->on_head) {
        x->depth++;
        bool relay = x->hooks->on_head(x, h);
        if (!hook_return(x))
            return;
        if (!relay || x->background) {
            x->absorb = true;
            x->phase = PH_RESPONDING;
            x->status = h->status;
            return;
        }
    }
    struct st_response_info ri = {
        .status = h->status,
        .reason = h->reason,
        .reason_len = h->reason_len,
        .request_id = x->id,
        .cache_status = x->cache_status,
        .extra = x->extra_head,
    };
    if (x->head_request || !status_has_body(h->status)) {
        ri.framing = ST_FRAME_NONE;
        ri.send_length_on_none = x->head_request && h->has_length;
        ri.content_length = h->content_length;
    } else if (h->has_length) {
        ri.framing = ST_FRAME_LENGTH;
        ri.content_length = h->content_length;
    } else if (x->req.http_minor >= 1) {
        ri.framing = ST_FRAME_CHUNKED;
    } else {
        ri.framing = ST_FRAME_CLOSE;
    }
    ri.keep_alive =
        x->client_keep_alive && ri.framing != ST_FRAME_CLOSE && !st_worker_draining(x->w);
    x->framing = ri.framing;
    x->keep_alive = ri.keep_alive;
    x->status = h->status;
    x->phase = PH_RESPONDING;
    st_stats_count_status(&x->w->stats, h->status);

    struct st_sb sb;
    st_sb_init(&sb, 1024);
    st_http_build_response(&sb, &ri, h->headers);
    size_t len;
    char *p = st_sb_take(&sb, &len);
    st_wreq_add_owned(st_exchange__out_room(x, 1, 0), p, len);
}

static void on_up_body(void *user, struct st_rbuf *b, const char *p, size_t len)
{
    struct st_exchange *x = user;
    if (x->hooks && x->hooks->on_body)
        x->hooks->on_body(x, p, len);
    if (x->absorb || x->framing == ST_FRAME_NONE)
        return;
    x->body_bytes += len;
    if (x->framing != ST_FRAME_CHUNKED) {
        st_wreq_add_slice(st_exchange__out_room(x, 1, 0), b, p, len);
        return;
    }
    char line[24];
    size_t n = chunk_line(line, len);
    struct st_wreq *w = st_exchange__out_room(x, 3, n);
    st_wreq_add_copy(w, line, n);
    st_wreq_add_slice(w, b, p, len);
    st_wreq_add_static(w, "\r\n", 2);
}

static void on_up_flush(void *user)
{
    struct st_exchange *x = user;
    st_exchange__flush_out(x);
    if (x->client && x->up && x->cops->congested(x->client))
        st_upstream_pause(x->up);
}

static void on_up_end(void *user)
{
    struct st_exchange *x = user;
    x->up = NULL;
    if (x->hooks && x->hooks->on_end) {
        x->depth++;
        x->hooks->on_end(x);
        if (!hook_return(x))
            return;
    }
    if (x->absorb) {
        if (x->background) {
            st_exchange__finish(x);
            return;
        }
        /* The strategy kept the answer and did not respond: nothing usable came. */
        st_log(ST_LOG_ERROR, "exchange", x->id, "absorbed origin answer left unanswered");
        x->phase = PH_FORWARDING;
        respond_error(x, 502, "the origin's answer could not be used");
        return;
    }
    if (x->framing == ST_FRAME_CHUNKED)
        st_wreq_add_static(st_exchange__out_room(x, 1, 0), "0\r\n\r\n", 5);
    st_exchange__flush_out(x);
    st_exchange__finish(x);
}

static void on_up_error(void *user, int err, enum st_upstream_retry retry)
{
    struct st_exchange *x = user;
    bool retryable = retry != ST_UPSTREAM_NO_RETRY;
    x->up = NULL;
    if (retryable && x->phase == PH_FORWARDING && x->attempts == 1 && !x->has_body &&
        (retry == ST_UPSTREAM_RETRY_ANY || idempotent(x->req.method)) &&
        st_upstream_retry_budget_take(x->gen->pools[x->route->upstream])) {
        ST_STAT_INC(&x->w->stats, ORIGIN_RETRIES);
        start_origin(x, true);
        return;
    }
    if (retryable)
        ST_STAT_INC(&x->w->stats, ORIGIN_ERRORS);
    if (x->hooks && x->hooks->on_error && (x->phase == PH_FORWARDING || x->absorb)) {
        x->depth++;
        bool answered = x->hooks->on_error(x, err);
        if (!hook_return(x) || answered)
            return;
    }
    if (x->absorb)
        x->phase = PH_FORWARDING; /* nothing was relayed: an error response is still possible */
    unsigned retry_after = err == ST_UPSTREAM_EBREAKER
                               ? st_upstream_retry_after_s(x->gen->pools[x->route->upstream])
                               : 0;
    respond_error_after(x, st_http_status_for_error(err), st_http_error_detail(err), retry_after);
}

static void on_up_drain(void *user)
{
    struct st_exchange *x = user;
    if (x->upload_paused && x->client) {
        x->upload_paused = false;
        x->cops->resume_reading(x->client);
    }
}

struct st_exchange *st_exchange_spawn_background(struct st_exchange *x)
{
    if (strcmp(x->req.method, "GET") != 0)
        return NULL;
    struct st_exchange *b = st_xcalloc(1, sizeof(*b));
    b->w = x->w;
    b->gen = st_worker_gen_ref(x->gen);
    b->route = x->route;
    own_request(b, &x->req);
    memcpy(b->client_ip, x->client_ip, sizeof(b->client_ip));
    st_request_id_new(x->w->rand, b->id);
    pick_traceparent(x);
    memcpy(b->traceparent, x->traceparent, sizeof(b->traceparent));
    b->background = true;
    b->start_ns = uv_hrtime();
    return b;
}

/* llhttp's static name for a method a service may send (the head keeps the pointer). */
static const char *static_method(const char *m)
{
    static const char *const names[] = {"GET", "HEAD", "PUT", "POST", "PATCH", "DELETE"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(m, names[i]) == 0)
            return names[i];
    return NULL;
}

struct st_exchange *st_exchange_spawn_request(struct st_strategy_host *h,
                                              const struct st_origin_request *rq)
{
    struct st_worker *w = (struct st_worker *)h;
    const char *method = static_method(rq->method);
    if (!method || !w->gen)
        return NULL;
    struct st_exchange *b = st_xcalloc(1, sizeof(*b));
    b->w = w;
    b->gen = st_worker_gen_ref(w->gen);
    b->route = rq->route;
    struct st_request_head req = {
        .method = method,
        .target = rq->target,
        .target_len = rq->target_len,
        .http_minor = 1,
        .headers = rq->headers,
    };
    own_request(b, &req);
    copy_bounded(b->client_ip, sizeof(b->client_ip), rq->client_ip ? rq->client_ip : "127.0.0.1");
    st_request_id_new(w->rand, b->id);
    b->has_body = rq->body_len > 0 || strcmp(method, "PUT") == 0 || strcmp(method, "PATCH") == 0;
    b->content_length = rq->body_len;
    b->request_ended = true;
    if (rq->body_len) {
        struct st_wreq *piece = st_wreq_new();
        char *copy = st_xmalloc(rq->body_len);
        memcpy(copy, rq->body, rq->body_len);
        st_wreq_add_owned(piece, copy, rq->body_len);
        b->body_q = st_xmalloc(sizeof(*b->body_q));
        b->body_q[0] = piece;
        b->n_body_q = b->cap_body_q = 1;
    }
    b->background = true;
    b->start_ns = uv_hrtime();
    return b;
}

int st_exchange_status(const struct st_exchange *x)
{
    return x->status;
}

const struct st_strategy_ctx *st_host_ctx(struct st_strategy_host *h)
{
    return &((struct st_worker *)h)->ctx;
}

uv_loop_t *st_host_loop(struct st_strategy_host *h)
{
    return &((struct st_worker *)h)->loop;
}

const struct st_config *st_host_config(struct st_strategy_host *h)
{
    struct st_worker *w = (struct st_worker *)h;
    return w->gen ? w->gen->cfg : NULL;
}

bool st_exchange_is_background(const struct st_exchange *x)
{
    return x->background;
}

bool st_exchange_was_parked(const struct st_exchange *x)
{
    return x->parked;
}

char *st_exchange_cache_status_buf(struct st_exchange *x, size_t *cap)
{
    *cap = sizeof(x->cache_status_buf);
    return x->cache_status_buf;
}

const struct st_strategy_ctx *st_exchange_ctx(const struct st_exchange *x)
{
    return &x->w->ctx;
}

const struct st_config *st_exchange_config(const struct st_exchange *x)
{
    return x->gen->cfg;
}

bool st_exchange_is_head(const struct st_exchange *x)
{
    return x->head_request;
}

const char *st_exchange_client_ip(const struct st_exchange *x)
{
    return x->client_ip;
}

const char *st_exchange_host(const struct st_exchange *x, size_t *len)
{
    *len = x->host_len;
    return x->host;
}

static const struct st_upstream_cbs up_cbs = {
    .on_interim = on_up_interim,
    .on_head = on_up_head,
    .on_body = on_up_body,
    .on_flush = on_up_flush,
    .on_end = on_up_end,
    .on_error = on_up_error,
    .on_drain = on_up_drain,
};
