/*
 * upstream.c - origin connection pool and the HTTP/1.1 client side.
 *
 * States of a connection:
 *   CONNECTING -> BUSY          connected; queued request bytes are flushed
 *   BUSY -> IDLE                response complete, reusable, room in the pool
 *   IDLE -> BUSY                acquired again (reused = true)
 *   any -> CLOSING -> freed     from the close callbacks of both handles
 *
 * An idle connection keeps reading: EOF, an error or any unexpected byte
 * closes it. The user (an exchange) is detached before on_end/on_error is
 * called, and abort() detaches it at once, so no callback ever reaches a
 * user that has let go. `depth` guards against freeing while our own parser
 * callbacks are running: a close requested inside them happens afterwards.
 */
#include "origin/upstream.h"

#include <errno.h>
#include <llhttp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/log.h"
#include "origin/breaker.h"
#include "origin/servers.h"

#define IDLE_TIMEOUT_MS 4000
#define DRAIN_LOW_WATER (64 * 1024)

enum up_state { UP_CONNECTING, UP_BUSY, UP_IDLE, UP_CLOSING };

struct st_upstream_pool {
    uv_loop_t *loop;
    const struct st_upstream_cfg *cfg; /* owned by the generation's config */
    struct st_stats *stats;            /* the worker's */
    struct st_upstream_conn *idle;            /* most recently used first */
    size_t n_idle;
    size_t n_conns; /* every connection not yet freed */
    struct st_servers *servers; /* the upstream's addresses and their health, shared */
    unsigned servers_gen;       /* the set's generation the idle connections were checked at */
    /* retry budget: two halves of the window, the current one starting at budget_at */
    uint64_t budget_at;
    uint64_t requests[2], retries[2];
    struct st_breaker *breaker; /* the upstream's, shared; NULL: none */
    unsigned retry_after_s;     /* of the last request the breaker refused */
    bool retired;
};

struct st_upstream_conn {
    uv_tcp_t tcp;
    uv_connect_t connect_req;
    uv_timer_t timer;
    struct st_upstream_pool *pool;
    struct st_upstream_conn *next_idle;
    uint32_t server; /* the address's id in the pool's servers */
    const struct st_upstream_cbs *cbs;
    void *user; /* NULL once detached */
    enum up_state state;
    int handles_open;
    int depth;
    int pending_error; /* delivered from the timer: failures are never synchronous */
    llhttp_t parser;
    struct st_rbuf *rbuf;
    struct st_headers headers;
    char reason[64];
    size_t reason_len;
    struct st_wreq **queue; /* written once connected */
    size_t n_queue, cap_queue;
    size_t pending_bytes;
    bool reused;
    bool got_bytes;
    bool no_body;
    bool skip_1xx;
    bool request_done;
    bool response_done;
    bool paused;
    bool close_after; /* close once our callbacks unwind */
    bool in_breaker;  /* admitted by the breaker; its outcome not yet told */
    bool owes_server; /* the address's health not yet told how this request went */
    char id[40];
};

static const llhttp_settings_t parser_settings;
static void up_close(struct st_upstream_conn *up);
static void up_fail(struct st_upstream_conn *up, int err);

struct st_upstream_pool *st_upstream_pool_create(uv_loop_t *loop, const struct st_upstream_cfg *cfg,
                               struct st_stats *stats, struct st_breaker *breaker,
                               struct st_servers *servers)
{
    struct st_upstream_pool *p = st_xcalloc(1, sizeof(*p));
    p->loop = loop;
    p->cfg = cfg;
    p->stats = stats;
    p->breaker = breaker;
    p->servers = servers;
    p->servers_gen = st_servers_generation(servers);
    return p;
}

static void pool_maybe_free(struct st_upstream_pool *p)
{
    if (!p->retired || p->n_conns > 0)
        return;
    free(p);
}

void st_upstream_pool_retire(struct st_upstream_pool *p)
{
    p->retired = true;
    while (p->idle) {
        struct st_upstream_conn *up = p->idle;
        p->idle = up->next_idle;
        p->n_idle--;
        up_close(up);
    }
    pool_maybe_free(p);
}

static void idle_remove(struct st_upstream_pool *p, struct st_upstream_conn *up)
{
    for (struct st_upstream_conn **pp = &p->idle; *pp; pp = &(*pp)->next_idle) {
        if (*pp == up) {
            *pp = up->next_idle;
            p->n_idle--;
            return;
        }
    }
}

static void on_handle_closed(uv_handle_t *h)
{
    struct st_upstream_conn *up = h->data;
    if (--up->handles_open > 0)
        return;
    struct st_upstream_pool *p = up->pool;
    for (size_t i = 0; i < up->n_queue; i++)
        st_wreq_free(up->queue[i]);
    free(up->queue);
    st_rbuf_unref(up->rbuf);
    st_headers_finish(&up->headers);
    free(up);
    p->n_conns--;
    pool_maybe_free(p);
}

/* Tell the breaker and the address's health how the request went (once each). */
static void outcome_tell(struct st_upstream_conn *up, enum st_server_outcome o)
{
    uint64_t now = uv_now(up->pool->loop);
    if (up->owes_server) {
        up->owes_server = false;
        st_servers_report(up->pool->servers, up->server, now, o);
        if (o == ST_SERVER_UNREACHABLE) /* it may have moved */
            st_servers_want_resolve(up->pool->servers);
    }
    if (up->in_breaker) {
        up->in_breaker = false;
        st_breaker_record(up->pool->breaker, now, o == ST_SERVER_OK);
    }
}

static void up_close(struct st_upstream_conn *up)
{
    if (up->state == UP_CLOSING)
        return;
    if (up->in_breaker) { /* ended with nothing to say of the origin (the client went) */
        up->in_breaker = false;
        st_breaker_forget(up->pool->breaker);
    }
    up->owes_server = false;
    if (up->depth > 0) {
        up->close_after = true;
        return;
    }
    if (up->state == UP_IDLE)
        idle_remove(up->pool, up);
    up->state = UP_CLOSING;
    up->user = NULL;
    uv_close((uv_handle_t *)&up->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&up->timer, on_handle_closed);
}

static void arm_timer(struct st_upstream_conn *up, uint64_t ms);

static void on_timer(uv_timer_t *t)
{
    struct st_upstream_conn *up = t->data;
    if (up->pending_error) {
        up_fail(up, up->pending_error);
        return;
    }
    if (up->state == UP_IDLE) {
        up_close(up);
        return;
    }
    up_fail(up, -ETIMEDOUT);
}

static void arm_timer(struct st_upstream_conn *up, uint64_t ms)
{
    uv_timer_start(&up->timer, on_timer, ms, 0);
}

/* Tell the user (once) and close. */
static void up_fail(struct st_upstream_conn *up, int err)
{
    void *user = up->user;
    /*
     * A timeout is never retried: the client would wait twice, the origin work
     * twice. A connection refused or reset before it was up carried nothing: any
     * request may go to another server; a pooled one that died before a byte of
     * the answer may have been read by the origin: only idempotent requests.
     */
    enum st_upstream_retry retry = ST_UPSTREAM_NO_RETRY;
    if (err == ST_UPSTREAM_EBREAKER || err == ST_UPSTREAM_ENOADDR)
        retry = ST_UPSTREAM_NO_RETRY; /* the origin was not asked: nothing to retry */
    else if (err != -ETIMEDOUT && up->state == UP_CONNECTING)
        retry = ST_UPSTREAM_RETRY_ANY;
    else if (err != -ETIMEDOUT && up->reused && !up->got_bytes)
        retry = ST_UPSTREAM_RETRY_IDEMPOTENT;
    bool retryable = retry != ST_UPSTREAM_NO_RETRY;
    /* A pooled connection found dead says nothing of the origin; anything else failed. */
    if (retry != ST_UPSTREAM_RETRY_IDEMPOTENT)
        outcome_tell(up, up->state == UP_CONNECTING ? ST_SERVER_UNREACHABLE : ST_SERVER_FAILED);
    up->user = NULL;
    if (user && err == ST_UPSTREAM_EBREAKER) {
        ST_STAT_INC(up->pool->stats, ORIGIN_BREAKER_REJECTED);
    } else if (user) {
        /* A retryable failure is counted by the user: as a retry, or as an error. */
        if (err == -ETIMEDOUT)
            ST_STAT_INC(up->pool->stats, ORIGIN_TIMEOUTS);
        else if (!retryable)
            ST_STAT_INC(up->pool->stats, ORIGIN_ERRORS);
        st_log(retryable ? ST_LOG_DEBUG : ST_LOG_WARN, "upstream", up->id,
               "%s: %s (%s connection)", up->pool->cfg->name, uv_strerror(err),
               up->reused ? "pooled" : "new");
    }
    up_close(up);
    if (user)
        up->cbs->on_error(user, err, retry);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct st_upstream_conn *up = h->data;
    (void)suggested;
    st_rbuf_reserve(&up->rbuf, 16 * 1024);
    buf->base = up->rbuf->data + up->rbuf->end;
    buf->len = up->rbuf->cap - up->rbuf->end;
}

static void release(struct st_upstream_conn *up)
{
    struct st_upstream_pool *p = up->pool;
    bool reusable = llhttp_should_keep_alive(&up->parser) && up->request_done &&
                    up->pending_bytes == 0 && up->rbuf->start == up->rbuf->end;
    if (!reusable || p->retired || p->n_idle >= p->cfg->keepalive) {
        up_close(up);
        return;
    }
    up->state = UP_IDLE;
    up->user = NULL;
    up->next_idle = p->idle;
    p->idle = up;
    p->n_idle++;
    if (up->paused) {
        up->paused = false;
        uv_read_start((uv_stream_t *)&up->tcp, on_alloc, NULL);
    }
    arm_timer(up, IDLE_TIMEOUT_MS);
}

static void finish_response(struct st_upstream_conn *up)
{
    void *user = up->user;
    uv_timer_stop(&up->timer);
    release(up);
    if (user)
        up->cbs->on_end(user);
}

static void parse(struct st_upstream_conn *up)
{
    struct st_rbuf *b = up->rbuf;
    const char *start = b->data + b->start;
    up->depth++;
    enum llhttp_errno err = llhttp_execute(&up->parser, start, b->end - b->start);
    up->depth--;
    if (err == HPE_OK) {
        b->start = b->end;
    } else if (err == HPE_PAUSED) {
        b->start += (size_t)(llhttp_get_error_pos(&up->parser) - start);
    }
    /*
     * A complete response is flushed by on_end, after the user had its say
     * (a cache stores the entry before the client sees the last byte, so
     * the client's next request finds it).
     */
    bool complete = up->response_done && up->state == UP_BUSY && !up->close_after &&
                    (err == HPE_OK || err == HPE_PAUSED);
    if (!complete && up->user && up->cbs->on_flush && up->state == UP_BUSY)
        up->cbs->on_flush(up->user);
    if (up->close_after) {
        up->close_after = false;
        up_close(up);
        return;
    }
    if (err != HPE_OK && err != HPE_PAUSED) {
        bool too_big = up->headers.len > ST_UPSTREAM_MAX_HEAD;
        st_log(ST_LOG_WARN, "upstream", up->id, "%s: bad response: %s", up->pool->cfg->name,
               too_big ? "response head too large" : llhttp_get_error_reason(&up->parser));
        up_fail(up, too_big ? -EMSGSIZE : -EPROTO);
        return;
    }
    if (up->response_done && up->state == UP_BUSY)
        finish_response(up);
}

static void on_eof(struct st_upstream_conn *up)
{
    if (up->state == UP_IDLE || !up->user) {
        up_close(up);
        return;
    }
    /* A close-delimited body ends here; anything else is cut short. */
    up->depth++;
    enum llhttp_errno err = llhttp_finish(&up->parser);
    up->depth--;
    if (up->close_after) {
        up->close_after = false;
        up_close(up);
        return;
    }
    if ((err == HPE_OK || err == HPE_PAUSED) && up->response_done) {
        void *user = up->user;
        up->user = NULL;
        uv_timer_stop(&up->timer);
        up_close(up);
        if (user)
            up->cbs->on_end(user);
        return;
    }
    up_fail(up, -ECONNRESET);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct st_upstream_conn *up = s->data;
    (void)buf;
    if (nread == 0 || up->state == UP_CLOSING)
        return;
    if (nread < 0) {
        if (nread == UV_EOF)
            on_eof(up);
        else if (up->state == UP_IDLE || !up->user)
            up_close(up);
        else
            up_fail(up, (int)nread);
        return;
    }
    up->rbuf->end += (size_t)nread;
    if (up->state != UP_BUSY || !up->user) {
        up_close(up); /* bytes nobody asked for */
        return;
    }
    up->got_bytes = true;
    arm_timer(up, up->pool->cfg->timeout_ms);
    parse(up);
}

static void on_write(uv_write_t *req, int status)
{
    struct st_wreq *w = (struct st_wreq *)req;
    struct st_upstream_conn *up = req->data;
    up->pending_bytes -= w->bytes;
    st_wreq_free(w);
    if (up->state == UP_CLOSING || !up->user)
        return;
    if (status < 0) {
        /* The origin may have answered early and closed; the reader decides. */
        if (!up->got_bytes)
            up_fail(up, status);
        return;
    }
    if (up->pending_bytes < DRAIN_LOW_WATER && up->cbs->on_drain)
        up->cbs->on_drain(up->user);
}

static void send_wreq(struct st_upstream_conn *up, struct st_wreq *w)
{
    w->req.data = up;
    int rc = uv_write(&w->req, (uv_stream_t *)&up->tcp, w->bufs, w->nbufs, on_write);
    if (rc < 0) {
        up->pending_bytes -= w->bytes;
        st_wreq_free(w);
        up->pending_error = rc;
        arm_timer(up, 0);
    }
}

static void on_connect(uv_connect_t *req, int status)
{
    struct st_upstream_conn *up = req->data;
    if (up->state == UP_CLOSING)
        return;
    if (status < 0) {
        up_fail(up, status);
        return;
    }
    up->state = UP_BUSY;
    uv_read_start((uv_stream_t *)&up->tcp, on_alloc, on_read);
    arm_timer(up, up->pool->cfg->timeout_ms);
    for (size_t i = 0; i < up->n_queue; i++)
        send_wreq(up, up->queue[i]);
    up->n_queue = 0;
}

static void reset_exchange_state(struct st_upstream_conn *up, const struct st_upstream_cbs *cbs, void *user,
                                 const char *request_id)
{
    up->cbs = cbs;
    up->user = user;
    up->got_bytes = false;
    up->no_body = false;
    up->skip_1xx = false;
    up->request_done = false;
    up->response_done = false;
    up->reason_len = 0;
    st_headers_reset(&up->headers);
    llhttp_init(&up->parser, HTTP_RESPONSE, &parser_settings);
    up->parser.data = up;
    snprintf(up->id, sizeof(up->id), "%s", request_id ? request_id : "-");
}

/* Move the budget's window on: a half that ended becomes the previous one. */
static void budget_roll(struct st_upstream_pool *p)
{
    uint64_t now = uv_now(p->loop), half = ST_UPSTREAM_BUDGET_WINDOW_MS / 2;
    if (now - p->budget_at < half)
        return;
    bool one = now - p->budget_at < 2 * half;
    p->requests[1] = one ? p->requests[0] : 0;
    p->retries[1] = one ? p->retries[0] : 0;
    p->requests[0] = p->retries[0] = 0;
    p->budget_at = now;
}

bool st_upstream_retry_budget_take(struct st_upstream_pool *p)
{
    budget_roll(p);
    uint64_t requests = p->requests[0] + p->requests[1];
    uint64_t retries = p->retries[0] + p->retries[1];
    if (retries >= ST_UPSTREAM_BUDGET_FLOOR + requests * p->cfg->retry_budget / 100) {
        ST_STAT_INC(p->stats, ORIGIN_RETRIES_DENIED);
        return false;
    }
    p->retries[0]++;
    return true;
}

/* A connection of pool p, its handles open, not yet connecting. */
static struct st_upstream_conn *conn_new(struct st_upstream_pool *p)
{
    struct st_upstream_conn *up = st_xcalloc(1, sizeof(*up));
    up->pool = p;
    up->rbuf = st_rbuf_new(ST_RBUF_SIZE);
    st_headers_init(&up->headers);
    uv_tcp_init(p->loop, &up->tcp);
    uv_timer_init(p->loop, &up->timer);
    up->tcp.data = up;
    up->timer.data = up;
    up->connect_req.data = up;
    up->handles_open = 2;
    up->state = UP_CONNECTING;
    p->n_conns++;
    return up;
}

static struct st_upstream_conn *connect_new(struct st_upstream_pool *p)
{
    struct st_upstream_conn *up = conn_new(p);
    ST_STAT_INC(p->stats, ORIGIN_CONNECTS);
    struct st_server_pick a;
    if (!st_servers_pick(p->servers, uv_now(p->loop), &a)) {
        st_servers_want_resolve(p->servers);
        up->pending_error = ST_UPSTREAM_ENOADDR;
        arm_timer(up, 0);
        return up;
    }
    up->server = a.id;
    up->owes_server = true;
    uv_tcp_nodelay(&up->tcp, 1);
    int rc = uv_tcp_connect(&up->connect_req, &up->tcp, (const struct sockaddr *)&a.sa,
                            on_connect);
    if (rc < 0) {
        up->pending_error = rc;
        arm_timer(up, 0);
    } else {
        arm_timer(up, p->cfg->connect_timeout_ms);
    }
    return up;
}

unsigned st_upstream_retry_after_s(const struct st_upstream_pool *p)
{
    return p->retry_after_s ? p->retry_after_s : 1;
}

/* A connection that never connects: it fails with ST_UPSTREAM_EBREAKER from its timer. */
static struct st_upstream_conn *refused_conn(struct st_upstream_pool *p)
{
    struct st_upstream_conn *up = conn_new(p);
    up->pending_error = ST_UPSTREAM_EBREAKER;
    arm_timer(up, 0);
    return up;
}

/* The address set changed: idle connections to addresses no longer in it are closed. */
static void drop_moved_idle(struct st_upstream_pool *p)
{
    unsigned gen = st_servers_generation(p->servers);
    if (gen == p->servers_gen)
        return;
    p->servers_gen = gen;
    struct st_upstream_conn *next;
    for (struct st_upstream_conn *up = p->idle; up; up = next) {
        next = up->next_idle;
        if (!st_servers_has(p->servers, up->server))
            up_close(up);
    }
}

struct st_upstream_conn *st_upstream_acquire(struct st_upstream_pool *p, const struct st_upstream_cbs *cbs, void *user,
                                    bool fresh, const char *request_id)
{
    struct st_upstream_conn *up;
    if (p->breaker && !st_breaker_admit(p->breaker, uv_now(p->loop), &p->retry_after_s)) {
        up = refused_conn(p);
        reset_exchange_state(up, cbs, user, request_id);
        return up;
    }
    drop_moved_idle(p);
    if (!fresh && p->idle) {
        up = p->idle;
        p->idle = up->next_idle;
        p->n_idle--;
        up->state = UP_BUSY;
        up->reused = true;
        up->owes_server = true;
        arm_timer(up, p->cfg->timeout_ms);
    } else {
        up = connect_new(p);
        up->reused = false;
    }
    ST_STAT_INC(p->stats, ORIGIN_REQUESTS);
    up->in_breaker = p->breaker != NULL;
    if (!fresh) { /* a first attempt: what the budget is a share of */
        budget_roll(p);
        p->requests[0]++;
    }
    reset_exchange_state(up, cbs, user, request_id);
    return up;
}

void st_upstream_write(struct st_upstream_conn *up, struct st_wreq *w)
{
    up->pending_bytes += w->bytes;
    if (up->state == UP_BUSY) {
        /* The origin's wait for an answer starts from the last request byte, not the first. */
        if (!up->got_bytes && !up->paused)
            arm_timer(up, up->pool->cfg->timeout_ms);
        send_wreq(up, w);
        return;
    }
    if (up->n_queue == up->cap_queue) {
        up->cap_queue = up->cap_queue ? up->cap_queue * 2 : 4;
        up->queue = st_xrealloc(up->queue, up->cap_queue * sizeof(*up->queue));
    }
    up->queue[up->n_queue++] = w;
}

size_t st_upstream_pending(const struct st_upstream_conn *up)
{
    return up->pending_bytes;
}

void st_upstream_request_done(struct st_upstream_conn *up)
{
    up->request_done = true;
}

void st_upstream_expect_no_body(struct st_upstream_conn *up)
{
    up->no_body = true;
}

void st_upstream_pause(struct st_upstream_conn *up)
{
    if (up->paused || up->state != UP_BUSY)
        return;
    up->paused = true;
    uv_read_stop((uv_stream_t *)&up->tcp);
    uv_timer_stop(&up->timer);
}

void st_upstream_resume(struct st_upstream_conn *up)
{
    if (!up->paused || up->state != UP_BUSY)
        return;
    up->paused = false;
    uv_read_start((uv_stream_t *)&up->tcp, on_alloc, on_read);
    arm_timer(up, up->pool->cfg->timeout_ms);
}

void st_upstream_abort(struct st_upstream_conn *up)
{
    up->user = NULL;
    up_close(up);
}

/* --- llhttp callbacks (response parser) --- */

static int on_status(llhttp_t *p, const char *at, size_t len)
{
    struct st_upstream_conn *up = p->data;
    size_t room = sizeof(up->reason) - up->reason_len;
    if (len > room)
        len = room;
    memcpy(up->reason + up->reason_len, at, len);
    up->reason_len += len;
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    struct st_upstream_conn *up = p->data;
    st_headers_name_piece(&up->headers, at, len);
    return up->headers.len > ST_UPSTREAM_MAX_HEAD ? -1 : 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    struct st_upstream_conn *up = p->data;
    st_headers_value_piece(&up->headers, at, len);
    return up->headers.len > ST_UPSTREAM_MAX_HEAD ? -1 : 0;
}

static int on_header_value_complete(llhttp_t *p)
{
    struct st_upstream_conn *up = p->data;
    st_headers_value_done(&up->headers);
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    struct st_upstream_conn *up = p->data;
    int status = llhttp_get_status_code(p);
    if (status == 101 || status < 100 || status > 999)
        return -1; /* we never ask for an upgrade; no status code at all is not HTTP */
    if (status < 200) {
        up->skip_1xx = true;
        struct st_response_head ih = {.status = status, .reason = up->reason,
                                      .reason_len = up->reason_len, .headers = &up->headers};
        if (up->user && up->cbs->on_interim)
            up->cbs->on_interim(up->user, &ih);
        return 1; /* a 1xx has no body, whatever its headers say (RFC 9110 15.2) */
    }
    struct st_response_head h = {
        .status = status,
        .reason = up->reason,
        .reason_len = up->reason_len,
        .headers = &up->headers,
        .has_length = (p->flags & F_CONTENT_LENGTH) && !(p->flags & F_CHUNKED),
        .content_length = p->content_length,
        .chunked = (p->flags & F_CHUNKED) != 0,
    };
    outcome_tell(up, status < 500 ? ST_SERVER_OK : ST_SERVER_FAILED);
    if (up->user)
        up->cbs->on_head(up->user, &h);
    return up->no_body ? 1 : 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    struct st_upstream_conn *up = p->data;
    if (up->user)
        up->cbs->on_body(up->user, up->rbuf, at, len);
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    struct st_upstream_conn *up = p->data;
    if (up->skip_1xx) {
        up->skip_1xx = false;
        up->reason_len = 0;
        st_headers_reset(&up->headers);
        return 0;
    }
    up->response_done = true;
    return HPE_PAUSED;
}

static const llhttp_settings_t parser_settings = {
    .on_status = on_status,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};
