/*
 * exchange.c - one request's life: route, strategy, origin relay, response.
 *
 * States (x->phase):
 *   ROUTED     strategy running; nothing sent to the client yet
 *   FORWARDING request going to the origin (x->up set)
 *   RESPONDING response head sent; body streaming from the origin
 *   DONE       response complete or failed; the exchange frees itself
 *
 * Invariants: at most one of (response head sent by us, error response)
 * happens; x->client is NULL once the client is gone (a background exchange
 * never has one), and nothing is written after that; x->up is NULL once the origin side ended or was aborted.
 * Request body pieces that arrive before the origin connection exists are
 * kept (by reference) in x->body_q and sent once it does.
 */
#include "core/exchange.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/log.h"
#include "cache/entry.h"
#include "cache/tier.h"
#include "core/router.h"
#include "core/strategy.h"
#include "core/worker.h"
#include "http/date.h"
#include "http/ids.h"
#include "http/range.h"
#include "origin/upstream.h"

#define UPLOAD_HIGH_WATER (1024 * 1024)

enum phase { PH_ROUTED, PH_FORWARDING, PH_RESPONDING, PH_DONE };

struct st_exchange {
    const struct st_exchange_client_ops *cops;
    void *client; /* NULL once the client is gone */
    struct st_worker *w;
    struct st_gen *gen; /* reference held */
    const struct st_route_cfg *route;
    struct st_request_head req;
    const char *host; /* Host header value (into req.headers), or NULL: found once */
    size_t host_len;
    char client_ip[64];
    char id[129];
    char traceparent[56];
    bool has_body, chunked, head_request, client_keep_alive;
    bool fetch_whole; /* the origin is asked for the whole GET (to fill the cache) */
    uint64_t content_length;
    bool request_ended;
    bool upload_paused;
    enum phase phase;
    int attempts;
    struct st_upstream_conn *up;
    struct st_wreq **body_q; /* pieces waiting for the origin connection */
    size_t n_body_q, cap_body_q;
    /* strategy */
    const struct st_fetch_hooks *hooks;
    void *hook_arg;
    bool has_rv;
    struct st_revalidate rv;
    bool absorb;     /* the origin's answer is not relayed */
    bool background; /* no client: a refresh */
    bool parked;
    struct st_waiter *waiter; /* while parked on a flight (the flight or the worker owns it) */
    int depth;        /* inside a strategy hook: finish() defers the free */
    bool free_pending;
    struct st_headers own_headers; /* a background copy's request headers */
    char *own_target;
    /* response */
    const char *cache_status;
    char cache_status_buf[192];
    int status;
    enum st_framing framing;
    bool keep_alive;
    bool from_cache;
    struct st_wreq *out; /* batch toward the client */
    uint64_t bytes_out;
    uint64_t body_bytes;
    uint64_t start_ns;
    uint64_t origin_start_ns;
};

static const struct st_upstream_cbs up_cbs;

static void free_exchange(struct st_exchange *x)
{
    for (size_t i = 0; i < x->n_body_q; i++)
        st_wreq_free(x->body_q[i]);
    free(x->body_q);
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
static void finish(struct st_exchange *x)
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
static void send_out(struct st_exchange *x, struct st_entry *pin)
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

static void flush_out(struct st_exchange *x)
{
    send_out(x, NULL);
}

static struct st_wreq *out_room(struct st_exchange *x, unsigned nbufs, size_t small)
{
    if (x->out && !st_wreq_fits(x->out, nbufs, small))
        flush_out(x);
    if (!x->out)
        x->out = st_wreq_new();
    return x->out;
}

static void respond_error(struct st_exchange *x, int status, const char *detail)
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
        finish(x);
        return;
    }
    if (!x->client) {
        x->status = status;
        finish(x);
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
        .now_ms = st_clock_wall_ms(),
        .keep_alive = keep_alive,
        .head_only = x->head_request,
    };
    st_http_build_error(&sb, &ei);
    size_t len;
    char *p = st_sb_take(&sb, &len);
    st_wreq_add_owned(out_room(x, 1, 0), p, len);
    x->status = status;
    x->keep_alive = keep_alive;
    st_stats_count_status(&x->w->stats, status);
    flush_out(x);
    finish(x);
}

void st_exchange_respond_error(struct st_exchange *x, int status, const char *detail)
{
    respond_error(x, status, detail);
}

static unsigned method_bit(const char *m)
{
    return st_method_bit_from_name(m, strlen(m));
}

/* Routing and the cache key both need the Host header: look it up once. */
static void find_host(struct st_exchange *x)
{
    const struct st_hdr *h = st_headers_get(x->req.headers, "host");
    x->host = h ? st_hdr_value(x->req.headers, h) : NULL;
    x->host_len = h ? h->value_len : 0;
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
    x->req = in->req;
    copy_bounded(x->client_ip, sizeof(x->client_ip), in->client_ip);
    copy_bounded(x->id, sizeof(x->id), in->request_id);
    x->has_body = in->has_body;
    x->chunked = in->chunked;
    x->content_length = in->content_length;
    x->client_keep_alive = in->client_keep_alive;
    x->head_request = in->head_request;
    x->attempts = 0;
    x->start_ns = uv_hrtime();
    find_host(x);
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
    if (st_cache_tier_flight_join(t, hash, key, key_len, &wt->fw) == ST_FLIGHT_LEADER) {
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
    x->parked = true;
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
    x->request_ended = true;
    if (x->up && x->has_body)
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
    find_host(x);
}

bool st_exchange_client_gone(struct st_exchange *x)
{
    bool started = x->phase == PH_RESPONDING;
    x->client = NULL;
    if (x->up) {
        st_upstream_abort(x->up);
        x->up = NULL;
    }
    finish(x);
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

/* --- origin side callbacks --- */

static bool status_has_body(int status)
{
    return !(status == 204 || status == 304 || status < 200);
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
    st_wreq_add_owned(out_room(x, 1, 0), p, len);
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
        st_wreq_add_slice(out_room(x, 1, 0), b, p, len);
        return;
    }
    char line[24];
    size_t n = chunk_line(line, len);
    struct st_wreq *w = out_room(x, 3, n);
    st_wreq_add_copy(w, line, n);
    st_wreq_add_slice(w, b, p, len);
    st_wreq_add_static(w, "\r\n", 2);
}

static void on_up_flush(void *user)
{
    struct st_exchange *x = user;
    flush_out(x);
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
            finish(x);
            return;
        }
        /* The strategy kept the answer and did not respond: nothing usable came. */
        st_log(ST_LOG_ERROR, "exchange", x->id, "absorbed origin answer left unanswered");
        x->phase = PH_FORWARDING;
        respond_error(x, 502, "the origin's answer could not be used");
        return;
    }
    if (x->framing == ST_FRAME_CHUNKED)
        st_wreq_add_static(out_room(x, 1, 0), "0\r\n\r\n", 5);
    flush_out(x);
    finish(x);
}

static void on_up_error(void *user, int err, bool retryable)
{
    struct st_exchange *x = user;
    x->up = NULL;
    if (retryable && x->phase == PH_FORWARDING && x->attempts == 1 && !x->has_body &&
        idempotent(x->req.method)) {
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
    respond_error(x, st_http_status_for_error(err), st_http_error_detail(err));
}

static void on_up_drain(void *user)
{
    struct st_exchange *x = user;
    if (x->upload_paused && x->client) {
        x->upload_paused = false;
        x->cops->resume_reading(x->client);
    }
}

/* --- answers from the cache --- */

/* The headers of a 304 (RFC 9110 15.4.5): those a 200 would carry that describe it. */
static void add_not_modified_head(struct st_sb *sb, const struct st_entry *e)
{
    static const char *const keep[] = {"etag", "cache-control", "expires", "vary", "date",
                                       "content-location", "last-modified", NULL};
    struct st_headers h;
    st_headers_init(&h);
    st_headers_parse_head(&h, st_entry_head(e), e->head_len);
    st_sb_adds(sb, "HTTP/1.1 304 Not Modified\r\n");
    for (size_t i = 0; i < h.n; i++) {
        const struct st_hdr *f = &h.v[i];
        for (int k = 0; keep[k]; k++) {
            if (!st_name_eq(st_hdr_name(&h, f), f->name_len, keep[k]))
                continue;
            st_sb_add(sb, st_hdr_name(&h, f), f->name_len);
            st_sb_add(sb, ": ", 2);
            st_sb_add(sb, st_hdr_value(&h, f), f->value_len);
            st_sb_add(sb, "\r\n", 2);
        }
    }
    st_headers_finish(&h);
}

/* Age, Cache-Status, Via, X-Request-Id, Connection and the blank line, copied into w. */
static void add_tail(struct st_exchange *x, struct st_wreq *w, struct st_fbuf *f, int64_t age_s)
{
    st_fbuf_adds(f, "Age: ");
    st_fbuf_i64(f, age_s);
    st_fbuf_adds(f, "\r\nCache-Status: ");
    st_fbuf_adds(f, x->cache_status);
    st_fbuf_adds(f, "\r\nVia: 1.1 strata\r\nX-Request-Id: ");
    st_fbuf_adds(f, x->id);
    st_fbuf_adds(f, x->keep_alive ? "\r\nConnection: keep-alive\r\n\r\n"
                                  : "\r\nConnection: close\r\n\r\n");
    ST_CHECK(f->len <= f->cap); /* id <= 128 and cache status < 192 bytes always fit */
    st_wreq_add_copy(w, f->p, f->len);
}

/* The stored head without its status line, and the headers a part answer replaces. */
static void add_head_without(struct st_sb *sb, const struct st_entry *e, bool drop_type)
{
    struct st_headers h;
    st_headers_init(&h);
    st_headers_parse_head(&h, st_entry_head(e), e->head_len);
    for (size_t i = 0; i < h.n; i++) {
        const struct st_hdr *f = &h.v[i];
        const char *name = st_hdr_name(&h, f);
        if (drop_type && st_name_eq(name, f->name_len, "content-type"))
            continue;
        st_sb_add(sb, name, f->name_len);
        st_sb_add(sb, ": ", 2);
        st_sb_add(sb, st_hdr_value(&h, f), f->value_len);
        st_sb_add(sb, "\r\n", 2);
    }
    st_headers_finish(&h);
}

/* The Content-Type value of the stored head ("" when none), into out. */
static void stored_type(const struct st_entry *e, struct st_sb *out)
{
    struct st_headers h;
    st_headers_init(&h);
    st_headers_parse_head(&h, st_entry_head(e), e->head_len);
    const struct st_hdr *ct = st_headers_get(&h, "content-type");
    if (ct)
        st_sb_add(out, st_hdr_value(&h, ct), ct->value_len);
    st_headers_finish(&h);
}

/* 206: one range as a slice of the entry's body, several as multipart/byteranges. */
static void serve_ranges(struct st_exchange *x, struct st_entry *e, int64_t age_s,
                         const struct st_range *r, size_t n)
{
    uint64_t total = st_entry_body_len(e);
    struct st_sb sb;
    st_sb_init(&sb, 512);
    st_sb_adds(&sb, "HTTP/1.1 206 Partial Content\r\n");
    add_head_without(&sb, e, n > 1);
    struct st_sb body = {0};
    if (n == 1) {
        st_sb_addf(&sb, "Content-Range: bytes %llu-%llu/%llu\r\nContent-Length: %llu\r\n",
                   (unsigned long long)r[0].first, (unsigned long long)r[0].last,
                   (unsigned long long)total, (unsigned long long)(r[0].last - r[0].first + 1));
    } else {
        struct st_sb type;
        st_sb_init(&type, 64);
        stored_type(e, &type);
        st_sb_init(&body, 256);
        for (size_t i = 0; i < n; i++) {
            st_sb_addf(&body, "\r\n--%.40s\r\n", x->id);
            if (type.len)
                st_sb_addf(&body, "Content-Type: %.*s\r\n", (int)type.len, type.p);
            st_sb_addf(&body, "Content-Range: bytes %llu-%llu/%llu\r\n\r\n",
                       (unsigned long long)r[i].first, (unsigned long long)r[i].last,
                       (unsigned long long)total);
            st_sb_add(&body, st_entry_body(e) + r[i].first, r[i].last - r[i].first + 1);
        }
        st_sb_addf(&body, "\r\n--%.40s--\r\n", x->id);
        st_sb_finish(&type);
        st_sb_addf(&sb, "Content-Type: multipart/byteranges; boundary=%.40s\r\n"
                        "Content-Length: %zu\r\n",
                   x->id, body.len);
    }
    x->status = 206;
    struct st_wreq *w = out_room(x, 4, 0);
    size_t len;
    char *p = st_sb_take(&sb, &len);
    st_wreq_add_owned(w, p, len);
    char tail[ST_WREQ_SMALL];
    struct st_fbuf f = {tail, 0, sizeof(tail)};
    add_tail(x, w, &f, age_s);
    struct st_entry *pin = NULL;
    if (!x->head_request && n == 1) {
        x->body_bytes = r[0].last - r[0].first + 1;
        st_wreq_add_static(w, st_entry_body(e) + r[0].first, x->body_bytes);
        pin = e;
    } else if (!x->head_request) {
        x->body_bytes = body.len;
        flush_out(x); /* the head's block and the body's are one owned block each */
        size_t blen;
        char *bp = st_sb_take(&body, &blen);
        st_wreq_add_owned(out_room(x, 1, 0), bp, blen);
    }
    if (body.p)
        st_sb_finish(&body);
    st_stats_count_status(&x->w->stats, x->status);
    send_out(x, pin);
    finish(x);
}

/* 416: no range of the request is in the entry's body. */
static void serve_unsatisfiable(struct st_exchange *x, struct st_entry *e, int64_t age_s)
{
    struct st_sb sb;
    st_sb_init(&sb, 256);
    st_sb_addf(&sb, "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */%llu\r\n"
                    "Content-Length: 0\r\n",
               (unsigned long long)st_entry_body_len(e));
    x->status = 416;
    struct st_wreq *w = out_room(x, 2, 0);
    size_t len;
    char *p = st_sb_take(&sb, &len);
    st_wreq_add_owned(w, p, len);
    char tail[ST_WREQ_SMALL];
    struct st_fbuf f = {tail, 0, sizeof(tail)};
    add_tail(x, w, &f, age_s);
    st_stats_count_status(&x->w->stats, x->status);
    send_out(x, NULL);
    finish(x);
}

/* The request's Range applied to e: NONE for the whole entry (no Range, If-Range failed). */
static enum st_range_result ranges_of(const struct st_exchange *x, const struct st_entry *e,
                                      struct st_range r[ST_RANGE_MAX], size_t *n)
{
    const struct st_hdr *rh = st_headers_get(x->req.headers, "range");
    if (!rh || e->status != 200)
        return ST_RANGE_NONE;
    const struct st_hdr *ir = st_headers_get(x->req.headers, "if-range");
    if (ir && !st_range_if_range_ok(st_hdr_value(x->req.headers, ir), ir->value_len,
                                    st_entry_etag(e), st_entry_etag_len(e),
                                    st_entry_last_modified_ms(e)))
        return ST_RANGE_NONE;
    return st_range_parse(st_hdr_value(x->req.headers, rh), rh->value_len,
                          st_entry_body_len(e), r, n);
}

void st_exchange_serve_entry(struct st_exchange *x, struct st_entry *e, int64_t age_s,
                             bool not_modified)
{
    if (x->up) {
        st_upstream_abort(x->up);
        x->up = NULL;
    }
    if (!x->client) {
        finish(x);
        return;
    }
    x->keep_alive = x->client_keep_alive && !st_worker_draining(x->w);
    x->from_cache = true;
    x->phase = PH_RESPONDING;
    if (!not_modified) {
        struct st_range r[ST_RANGE_MAX];
        size_t n;
        enum st_range_result rr = ranges_of(x, e, r, &n);
        if (rr == ST_RANGE_OK) {
            serve_ranges(x, e, age_s, r, n);
            return;
        }
        if (rr == ST_RANGE_UNSATISFIABLE) {
            serve_unsatisfiable(x, e, age_s);
            return;
        }
    }
    x->status = not_modified ? 304 : e->status;
    struct st_wreq *w = out_room(x, 4, 0);
    char tail[ST_WREQ_SMALL];
    struct st_fbuf f = {tail, 0, sizeof(tail)};
    if (not_modified) {
        struct st_sb sb;
        st_sb_init(&sb, 256);
        add_not_modified_head(&sb, e);
        size_t len;
        char *p = st_sb_take(&sb, &len);
        st_wreq_add_owned(w, p, len);
    } else {
        st_wreq_add_static(w, st_entry_head(e), e->head_len);
        st_fbuf_adds(&f, "Content-Length: ");
        st_fbuf_i64(&f, (int64_t)st_entry_body_len(e));
        st_fbuf_add(&f, "\r\n", 2);
        if (!x->head_request && e->status != 204 && e->status != 304)
            x->body_bytes = st_entry_body_len(e);
    }
    add_tail(x, w, &f, age_s);
    if (x->body_bytes)
        st_wreq_add_static(w, st_entry_body(e), st_entry_body_len(e));
    st_stats_count_status(&x->w->stats, x->status);
    send_out(x, not_modified ? NULL : e);
    finish(x);
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

const char *st_exchange_host(const struct st_exchange *x, size_t *len)
{
    *len = x->host_len;
    return x->host;
}

static const struct st_upstream_cbs up_cbs = {
    .on_head = on_up_head,
    .on_body = on_up_body,
    .on_flush = on_up_flush,
    .on_end = on_up_end,
    .on_error = on_up_error,
    .on_drain = on_up_drain,
};
