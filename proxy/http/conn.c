/*
 * conn.c - client connections: parsing, limits, timeouts, pipelining, writes.
 *
 * States:
 *   HEAD     reading a request head (idle between requests counts as HEAD
 *            with no bytes yet)
 *   BODY     head done, stream running, request body arriving
 *   WAIT     request complete; parser paused until the response is done
 *   CLOSING  an error response or the last response is being flushed; no
 *            more requests are read
 *
 * The parser pauses (HPE_PAUSED) at every message end, so bytes of a
 * pipelined next request wait unparsed in rbuf until the stream calls
 * st_conn_stream_done(). `depth` counts our llhttp_execute() frames: work
 * that would re-enter the parser (starting the next request) is deferred
 * until the frame unwinds. The struct is freed only from the close callbacks
 * of its two handles.
 *
 * Timer modes: IDLE (no byte of a request yet: close quietly), HEAD (the
 * head must complete in header_timeout: 408), BODY (no gap longer than
 * header_timeout while the body arrives, and all of it within body_timeout
 * of the head: 408; a pause that is ours, back-pressure from the origin,
 * does not count), SEND (the client must accept response bytes within
 * idle_timeout).
 */
#include "http/conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <llhttp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "http/http.h"
#include "http/ids.h"
#include "base/log.h"

enum c_state { C_HEAD, C_BODY, C_WAIT, C_CLOSING };

/*
 * A client connection's read buffer: small, because an idle keep-alive
 * connection keeps it (10,000 connections x 16 KiB = 160 MiB) and because
 * it stays in the allocator's thread cache when connections churn. It
 * grows only while a body piece is still referenced by a write.
 */
#define CONN_RBUF_SIZE (16 * 1024)
#define CONN_READ_MIN (4 * 1024)
/* Write queue marks: above HIGH the origin read pauses, below LOW it resumes. */
#define CONN_HIGH_WATER (256 * 1024)
#define CONN_LOW_WATER (64 * 1024)
enum t_mode { T_NONE, T_IDLE, T_HEAD, T_BODY, T_SEND };

struct st_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    struct st_conn_host *h;
    void *settings;               /* held: what the current request is served under */
    const struct st_limits *lim; /* of settings */
    struct st_conn *prev, *next;
    llhttp_t parser;
    struct st_rbuf *rbuf;
    struct st_headers headers;
    struct st_sb target;
    void *x; /* the current request's stream, NULL when none */
    enum c_state state;
    enum t_mode tmode;
    uint64_t deadline;  /* loop time when tmode expires */
    uint64_t timer_due; /* loop time the uv timer is set for; 0 = not running */
    uint64_t body_due;  /* loop time by which the request body must be complete */
    int handles_open;
    int depth;
    int error_status; /* set by a parser callback that fails the request */
    const char *error_detail; /* and why (static), or NULL for the status's general text */
    char error_buf[128];
    size_t head_bytes;
    uint64_t body_bytes;
    size_t write_queue;
    bool any_bytes;     /* a byte of the current request has arrived */
    bool req_complete;  /* on_message_complete seen for the current request */
    bool resp_done;     /* the stream of the current request is done */
    bool resp_keep_alive;
    bool read_paused;   /* by the stream (request body back-pressure) */
    bool reading;
    bool eof;
    bool closing;
    bool write_failed; /* a write to the client failed: closing on the next loop turn */
    char client_ip[64];
    char id[129];
};

static const llhttp_settings_t parser_settings;
static void process(struct st_conn *c);

/* Take the host's current settings for the requests that follow. */
static void hold_settings(struct st_conn *c)
{
    c->settings = c->h->settings;
    c->h->ops->settings_hold(c->h, c->settings);
    c->lim = c->h->ops->limits(c->settings);
}
static void update_reading(struct st_conn *c);

/* --- lifecycle --- */

static void on_closed(uv_handle_t *handle)
{
    struct st_conn *c = handle->data;
    if (--c->handles_open > 0)
        return;
    struct st_conn_host *h = c->h;
    st_rbuf_unref(c->rbuf);
    st_headers_finish(&c->headers);
    st_sb_finish(&c->target);
    if (c->settings)
        h->ops->settings_put(h, c->settings);
    free(c);
    h->ops->freed(h);
}

static void list_remove(struct st_conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        c->h->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

static void conn_close(struct st_conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    c->state = C_CLOSING;
    if (c->x) {
        void *x = c->x;
        c->x = NULL;
        c->h->ops->gone(x);
    }
    list_remove(c);
    st_stat_sub(c->h->stats, ST_STAT_CONN_OPEN, 1);
    c->h->ops->release(c->h, c->client_ip);
    uv_close((uv_handle_t *)&c->tcp, on_closed);
    uv_close((uv_handle_t *)&c->timer, on_closed);
}

void st_conn_abort(struct st_conn *c)
{
    c->x = NULL;
    conn_close(c);
}

/* --- timers --- */

static void on_timer(uv_timer_t *t);

/*
 * Timers are lazy: arming records a deadline and only touches the libuv
 * timer when the new deadline is earlier than the one it is set for;
 * disarming only clears the mode. A timer that fires early re-arms itself
 * for what is left. Most requests thus cost no timer-heap operation.
 */
static void arm(struct st_conn *c, enum t_mode mode, uint64_t ms)
{
    uint64_t now = uv_now(c->timer.loop);
    c->tmode = mode;
    c->deadline = now + ms;
    if (c->timer_due == 0 || c->deadline < c->timer_due) {
        c->timer_due = c->deadline;
        uv_timer_start(&c->timer, on_timer, ms, 0);
    }
}

static void disarm(struct st_conn *c)
{
    c->tmode = T_NONE;
}

/* The body's timer: the next gap, or what is left of body_timeout if that is sooner. */
static void arm_body(struct st_conn *c)
{
    uint64_t now = uv_now(c->timer.loop), gap = c->lim->header_timeout_ms;
    uint64_t left = c->body_due > now ? c->body_due - now : 0;
    arm(c, T_BODY, left < gap ? left : gap);
}

/* --- writing --- */

static void on_write(uv_write_t *req, int status)
{
    struct st_wreq *wr = (struct st_wreq *)req;
    struct st_conn *c = req->data;
    c->write_queue -= wr->bytes;
    st_wreq_free(wr);
    if (c->closing)
        return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    if (c->write_queue == 0 && c->state == C_CLOSING) {
        conn_close(c);
        return;
    }
    if (c->tmode == T_SEND || c->tmode == T_NONE) {
        if (c->write_queue > 0)
            arm(c, T_SEND, c->lim->idle_timeout_ms);
        else if (c->tmode == T_SEND)
            disarm(c);
    }
    if (c->x && c->write_queue < CONN_LOW_WATER)
        c->h->ops->drained(c->x);
}

void st_conn_send(struct st_conn *c, struct st_wreq *wr)
{
    if (c->closing || c->write_failed) {
        st_wreq_free(wr);
        return;
    }
    wr->req.data = c;
    c->write_queue += wr->bytes;
    int rc = uv_write(&wr->req, (uv_stream_t *)&c->tcp, wr->bufs, wr->nbufs, on_write);
    if (rc < 0) {
        /*
         * The client is gone. Callers are streams (exchanges, strategies) in
         * the middle of their own work: closing now would free the stream
         * under them. Stop reading and close on the next loop turn.
         */
        c->write_queue -= wr->bytes;
        st_wreq_free(wr);
        c->write_failed = true;
        c->state = C_CLOSING;
        update_reading(c);
        arm(c, T_SEND, 0);
        return;
    }
    if (c->tmode == T_NONE)
        arm(c, T_SEND, c->lim->idle_timeout_ms);
}

bool st_conn_try_send(struct st_conn *c, struct st_wreq *wr)
{
    if (c->closing || c->write_failed || c->write_queue > 0)
        return false;
    int n = uv_try_write((uv_stream_t *)&c->tcp, wr->bufs, wr->nbufs);
    if (n < 0)
        return false;
    if ((size_t)n == wr->bytes) {
        st_wreq_free(wr);
        return true;
    }
    size_t left = (size_t)n;
    wr->bytes -= left;
    unsigned i = 0;
    while (left >= wr->bufs[i].len)
        left -= wr->bufs[i++].len;
    wr->bufs[i].base += left;
    wr->bufs[i].len -= left;
    memmove(wr->bufs, wr->bufs + i, (wr->nbufs - i) * sizeof(wr->bufs[0]));
    wr->nbufs -= i;
    return false;
}

bool st_conn_congested(const struct st_conn *c)
{
    return c->write_queue > CONN_HIGH_WATER;
}

/* Stop reading requests; close once everything queued is written. */
static void close_when_flushed(struct st_conn *c)
{
    c->state = C_CLOSING;
    update_reading(c);
    if (c->write_queue == 0)
        conn_close(c);
    else if (c->tmode != T_SEND)
        arm(c, T_SEND, c->lim->idle_timeout_ms);
}

/* strata's own answer to a request that failed before or while it was read. */
static void send_error(struct st_conn *c, int status)
{
    if (!c->id[0]) /* failed before its head was complete: still an id to quote */
        st_request_id_next(c->h->id_prefix, &c->h->id_counter, c->id);
    struct st_sb sb;
    st_sb_init(&sb, 512);
    struct st_error_info ei = {
        .status = status,
        .detail = c->error_detail,
        .request_id = c->id,
        .now_ms = st_clock_wall_ms(),
    };
    st_http_build_error(&sb, &ei);
    size_t len;
    char *p = st_sb_take(&sb, &len);
    struct st_wreq *wr = st_wreq_new();
    st_wreq_add_owned(wr, p, len);
    st_stats_count_status(c->h->stats, status);
    if (!c->x)
        ST_STAT_INC(c->h->stats, REQUESTS);
    st_log(ST_LOG_INFO, "conn", c->id, "%s: %d %s", c->client_ip, status,
           c->error_detail ? c->error_detail : st_http_reason(status));
    st_conn_send(c, wr);
    close_when_flushed(c);
}

/* A request-side failure: the stream (if any) lets go, then we answer if we still may. */
static void fail_request(struct st_conn *c, int status)
{
    bool started = false;
    if (c->x) {
        void *x = c->x;
        c->x = NULL;
        started = c->h->ops->gone(x);
    }
    if (started || c->resp_done)
        close_when_flushed(c);
    else
        send_error(c, status);
}

/* --- reading --- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct st_conn *c = h->data;
    (void)suggested;
    st_rbuf_reserve(&c->rbuf, CONN_READ_MIN);
    buf->base = c->rbuf->data + c->rbuf->end;
    buf->len = c->rbuf->cap - c->rbuf->end;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

/*
 * Read while a request can make progress and nothing holds us back. While a
 * response is pending (WAIT), keep the socket readable (no epoll churn per
 * request) but buffer at most one read buffer of pipelined bytes unparsed.
 */
static void update_reading(struct st_conn *c)
{
    bool waiting_ok = c->state == C_WAIT && c->rbuf->end - c->rbuf->start < CONN_RBUF_SIZE / 2;
    bool want = !c->closing && !c->eof && !c->read_paused &&
                (c->state == C_HEAD || c->state == C_BODY || waiting_ok);
    if (want && !c->reading)
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    else if (!want && c->reading)
        uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = want;
}

void st_conn_pause_reading(struct st_conn *c)
{
    c->read_paused = true;
    update_reading(c);
}

void st_conn_resume_reading(struct st_conn *c)
{
    c->read_paused = false;
    update_reading(c);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct st_conn *c = s->data;
    (void)buf;
    if (nread == 0 || c->closing)
        return;
    if (nread < 0) {
        c->eof = true;
        update_reading(c);
        /* A client that half-closes after a complete request still gets its answer. */
        if (c->state == C_WAIT || (c->state == C_CLOSING && c->write_queue > 0))
            return;
        conn_close(c);
        return;
    }
    c->rbuf->end += (size_t)nread;
    if (c->state == C_WAIT) {
        update_reading(c); /* the next request waits for this response */
        return;
    }
    if (c->state == C_BODY)
        arm_body(c);
    process(c);
}

/* Start over for the next request on this connection. */
static void next_request(struct st_conn *c)
{
    st_headers_reset(&c->headers);
    c->target.len = 0;
    c->head_bytes = 0;
    c->body_bytes = 0;
    c->any_bytes = false;
    c->req_complete = false;
    c->resp_done = false;
    c->error_status = 0;
    c->error_detail = NULL;
    c->id[0] = '\0';
    c->state = C_HEAD;
    if (llhttp_get_errno(&c->parser) == HPE_PAUSED)
        llhttp_resume(&c->parser);
    arm(c, T_IDLE, c->lim->idle_timeout_ms);
    update_reading(c);
}

/*
 * The response is done; the request may or may not be. Closes when nothing
 * more can be read on this connection; returns true when the next request
 * may start.
 */
static bool response_finished(struct st_conn *c)
{
    if (c->closing || c->state == C_CLOSING)
        return false;
    if (!c->req_complete || !c->resp_keep_alive || c->h->draining || c->eof) {
        /* Unread request body means framing is in doubt: close in any case. */
        close_when_flushed(c);
        return false;
    }
    next_request(c);
    return true;
}

static void advance(struct st_conn *c)
{
    if (c->resp_done && c->state != C_BODY && response_finished(c))
        process(c);
    else if (c->resp_done && c->state == C_BODY && !c->req_complete)
        close_when_flushed(c);
}

void st_conn_stream_done(struct st_conn *c, bool keep_alive)
{
    c->x = NULL;
    c->resp_done = true;
    c->resp_keep_alive = keep_alive;
    if (c->depth == 0)
        advance(c);
}

static int status_for_parse_error(struct st_conn *c, enum llhttp_errno err)
{
    if (c->error_status)
        return c->error_status;
    const char *why = llhttp_get_error_reason(&c->parser);
    snprintf(c->error_buf, sizeof(c->error_buf), "malformed request: %s (%s)",
             why ? why : "parse error", llhttp_errno_name(err));
    c->error_detail = c->error_buf;
    return 400;
}

static void process(struct st_conn *c)
{
    while (!c->closing && c->state != C_CLOSING && c->rbuf->end > c->rbuf->start &&
           llhttp_get_errno(&c->parser) != HPE_PAUSED) {
        struct st_rbuf *b = st_rbuf_ref(c->rbuf); /* spans stay valid while we parse */
        const char *start = b->data + b->start;
        c->depth++;
        enum llhttp_errno err = llhttp_execute(&c->parser, start, b->end - b->start);
        c->depth--;
        if (err == HPE_OK) {
            b->start = b->end;
        } else if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) {
            b->start += (size_t)(llhttp_get_error_pos(&c->parser) - start);
            if (err == HPE_PAUSED_UPGRADE) {
                /* We never upgrade: treat the bytes after it as unreadable. */
                c->resp_keep_alive = false;
                b->start = b->end;
            }
        }
        st_rbuf_unref(b);
        if (c->closing)
            return;
        if (err != HPE_OK && err != HPE_PAUSED && err != HPE_PAUSED_UPGRADE) {
            if (c->state != C_CLOSING)
                fail_request(c, status_for_parse_error(c, err));
            return;
        }
        if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) {
            c->state = C_WAIT;
            if (!c->resp_done) {
                update_reading(c);
                return;
            }
            if (!response_finished(c))
                return;
        }
    }
    if (c->state == C_HEAD && c->any_bytes && c->head_bytes > c->lim->max_header_bytes) {
        c->error_detail = "request line and headers larger than limits.max_header_bytes";
        fail_request(c, 431);
    }
}

static void on_timer(uv_timer_t *t)
{
    struct st_conn *c = t->data;
    uint64_t now = uv_now(t->loop);
    c->timer_due = 0;
    if (c->write_failed) {
        conn_close(c);
        return;
    }
    if (c->tmode == T_NONE)
        return;
    if (now < c->deadline) {
        c->timer_due = c->deadline;
        uv_timer_start(&c->timer, on_timer, c->deadline - now, 0);
        return;
    }
    enum t_mode mode = c->tmode;
    c->tmode = T_NONE;
    switch (mode) {
    case T_HEAD:
        c->error_detail = "request head not complete within limits.header_timeout";
        fail_request(c, 408);
        break;
    case T_BODY:
        if (c->read_paused) { /* we stopped reading (the origin is slow): not the client's doing */
            c->body_due += c->lim->header_timeout_ms;
            arm_body(c);
            break;
        }
        c->error_detail = now >= c->body_due
                              ? "request body not complete within limits.body_timeout"
                              : "request body paused longer than limits.header_timeout";
        fail_request(c, 408);
        break;
    case T_IDLE:
    case T_SEND:
    case T_NONE:
        conn_close(c);
        break;
    }
}

/* --- accept --- */

static void set_client_ip(struct st_conn *c)
{
    struct sockaddr_storage sa;
    int len = sizeof(sa);
    strcpy(c->client_ip, "unknown");
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&sa, &len) != 0)
        return;
    if (sa.ss_family == AF_INET)
        uv_ip4_name((struct sockaddr_in *)&sa, c->client_ip, sizeof(c->client_ip));
    else if (sa.ss_family == AF_INET6)
        uv_ip6_name((struct sockaddr_in6 *)&sa, c->client_ip, sizeof(c->client_ip));
}

void st_conn_accept(struct st_conn_host *h, uv_stream_t *listener)
{
    struct st_conn *c = st_xcalloc(1, sizeof(*c));
    c->h = h;
    uv_tcp_init(h->loop, &c->tcp);
    uv_timer_init(h->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->handles_open = 2;
    c->rbuf = st_rbuf_new(CONN_RBUF_SIZE);
    st_headers_init(&c->headers);
    st_sb_init(&c->target, 256);
    hold_settings(c);
    llhttp_init(&c->parser, HTTP_REQUEST, &parser_settings);
    c->parser.data = c;
    c->next = h->conns;
    if (h->conns)
        h->conns->prev = c;
    h->conns = c;
    ST_STAT_INC(h->stats, CONN_ACCEPTED);
    st_stat_add(h->stats, ST_STAT_CONN_OPEN, 1);
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        h->ops->admit(h, c->client_ip);
        conn_close(c);
        return;
    }
    set_client_ip(c);
    if (!h->ops->admit(h, c->client_ip)) {
        ST_STAT_INC(h->stats, CONN_REJECTED);
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    c->state = C_HEAD;
    arm(c, T_IDLE, c->lim->header_timeout_ms);
    update_reading(c);
}

void st_conn_drain_all(struct st_conn_host *h)
{
    struct st_conn *c = h->conns;
    while (c) {
        struct st_conn *next = c->next;
        if (c->state == C_HEAD && !c->any_bytes)
            conn_close(c);
        c = next;
    }
}

void st_conn_close_all(struct st_conn_host *h)
{
    while (h->conns)
        conn_close(h->conns);
}

/* --- llhttp callbacks (request parser) --- */

static int over_head_limit(struct st_conn *c, size_t len)
{
    c->head_bytes += len;
    if (c->head_bytes > c->lim->max_header_bytes) {
        c->error_status = 431;
        c->error_detail = "request line and headers larger than limits.max_header_bytes";
        return -1;
    }
    return 0;
}

static int on_message_begin(llhttp_t *p)
{
    struct st_conn *c = p->data;
    c->any_bytes = true;
    /* A reload between requests takes effect here. */
    if (c->settings != c->h->settings) {
        c->h->ops->settings_put(c->h, c->settings);
        hold_settings(c);
    }
    arm(c, T_HEAD, c->lim->header_timeout_ms);
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    struct st_conn *c = p->data;
    st_sb_add(&c->target, at, len);
    return over_head_limit(c, len);
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    struct st_conn *c = p->data;
    st_headers_name_piece(&c->headers, at, len);
    return over_head_limit(c, len + 4);
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    struct st_conn *c = p->data;
    st_headers_value_piece(&c->headers, at, len);
    return over_head_limit(c, len);
}

static int on_header_value_complete(llhttp_t *p)
{
    struct st_conn *c = p->data;
    st_headers_value_done(&c->headers);
    return 0;
}

/* The client's X-Request-Id (e, may be NULL) if valid, else a new id. */
static void pick_ids(struct st_conn *c, const struct st_hdr *e)
{
    if (e && st_request_id_valid(st_hdr_value(&c->headers, e), e->value_len))
        memcpy(c->id, st_hdr_value(&c->headers, e), e->value_len + 1);
    else
        st_request_id_next(c->h->id_prefix, &c->h->id_counter, c->id);
}

/* What one pass over the header fields found. */
struct fields {
    const struct st_hdr *host;       /* the one Host line, or NULL */
    const struct st_hdr *request_id; /* the first X-Request-Id, or NULL */
    const char *problem;             /* why the head is refused, or NULL */
};

/*
 * One pass over the header fields: no name with a space inside (llhttp's
 * strict mode rejects every other byte that is not a tchar, but lets
 * "Transfer Encoding" through), (RFC 9112 3.2) exactly one valid Host in
 * HTTP/1.1, at most one (valid) in HTTP/1.0, and the X-Request-Id.
 */
static void scan_fields(const struct st_headers *h, bool http11, struct fields *f)
{
    *f = (struct fields){0};
    for (size_t i = 0; i < h->n; i++) {
        const struct st_hdr *e = &h->v[i];
        const char *name = st_hdr_name(h, e);
        if (memchr(name, ' ', e->name_len)) {
            f->problem = "invalid header field name (not a token)";
            return;
        }
        if (e->name_len == 12 && !f->request_id && st_name_eq(name, 12, "x-request-id"))
            f->request_id = e;
        if (e->name_len != 4 || !st_name_eq(name, 4, "host"))
            continue;
        if (f->host) {
            f->problem = "more than one Host header";
            return;
        }
        f->host = e;
    }
    if (!f->host && http11)
        f->problem = "missing Host header (required in HTTP/1.1)";
    else if (f->host && !st_http_host_valid(st_hdr_value(h, f->host), f->host->value_len))
        f->problem = "invalid Host header value";
}

/* Checks that need the whole head; returns a status to fail with (detail set), or 0. */
static int check_head(struct st_conn *c, llhttp_t *p, const struct fields *f)
{
    const struct st_limits *lim = c->lim;
    if (p->method == HTTP_CONNECT) {
        c->error_detail = "CONNECT is not supported";
        return 501;
    }
    if (c->target.len == 0 || (c->target.p[0] != '/' && !memmem(c->target.p, c->target.len,
                                                                 "://", 3) &&
                               !(p->method == HTTP_OPTIONS && !strcmp(c->target.p, "*")))) {
        c->error_detail = "malformed request target";
        return 400;
    }
    if ((c->error_detail = f->problem) != NULL)
        return 400;
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > lim->max_body) {
        c->error_detail = "request body larger than limits.max_body";
        return 413;
    }
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    struct st_conn *c = p->data;
    struct fields f;
    scan_fields(&c->headers, p->http_major == 1 && p->http_minor >= 1, &f);
    pick_ids(c, f.request_id);
    int status = check_head(c, p, &f);
    if (status) {
        c->error_status = status;
        return -1;
    }
    bool chunked = (p->flags & F_CHUNKED) != 0;
    bool has_body = chunked || ((p->flags & F_CONTENT_LENGTH) && p->content_length > 0);
    if (has_body && p->http_minor >= 1 &&
        st_headers_has_token(&c->headers, "expect", "100-continue")) {
        struct st_wreq *wr = st_wreq_new();
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        st_wreq_add_static(wr, cont, sizeof(cont) - 1);
        st_conn_send(c, wr);
    }
    struct st_request_info rq = {
        .req =
            {
                .method = llhttp_method_name((llhttp_method_t)p->method),
                .target = c->target.p,
                .target_len = c->target.len,
                .http_minor = p->http_minor,
                .headers = &c->headers,
            },
        .host = f.host ? st_hdr_value(&c->headers, f.host) : NULL,
        .host_len = f.host ? f.host->value_len : 0,
        .client_ip = c->client_ip,
        .request_id = c->id,
        .has_body = has_body,
        .chunked = chunked,
        .content_length = chunked ? 0 : p->content_length,
        .client_keep_alive = llhttp_should_keep_alive(p),
        .head_request = p->method == HTTP_HEAD,
    };
    c->state = C_BODY;
    if (has_body) {
        c->body_due = uv_now(c->timer.loop) + c->lim->body_timeout_ms;
        arm_body(c);
    } else {
        disarm(c);
    }
    c->x = c->h->ops->request(c->h, c, c->settings, &rq);
    c->h->ops->start(c->x);
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    struct st_conn *c = p->data;
    c->body_bytes += len;
    if (c->body_bytes > c->lim->max_body) {
        c->error_status = 413;
        c->error_detail = "request body larger than limits.max_body";
        return -1;
    }
    if (c->x)
        c->h->ops->request_body(c->x, c->rbuf, at, len);
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    struct st_conn *c = p->data;
    c->req_complete = true;
    if (c->tmode == T_BODY || c->tmode == T_HEAD)
        disarm(c);
    if (c->x)
        c->h->ops->request_end(c->x);
    return HPE_PAUSED;
}

static const llhttp_settings_t parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};
