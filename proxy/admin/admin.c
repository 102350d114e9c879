/*
 * admin.c - the admin HTTP listener (health, readiness, stats, metrics).
 *
 * Each admin connection parses requests with llhttp and answers each one
 * synchronously from on_message_complete, so pipelined requests are
 * answered in order. Bodies are not needed by any endpoint yet and are
 * capped; the connection closes on any parse error.
 */
#include "admin/admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <llhttp.h>

#include "admin/dashboard_html.h"
#include "admin/stats.h"
#include "base/alloc.h"
#include "cache/tier.h"
#include "cache/invalidate.h"
#include "base/buf.h"
#include "http/http.h"
#include "base/log.h"
#include "core/server.h"
#include "st_build.h"
#include "base/stats.h"

#define ADMIN_MAX_HEAD (16 * 1024)
#define ADMIN_MAX_BODY (64 * 1024)

struct st_admin {
    uv_tcp_t listener;
    struct st_server *srv;
    struct admin_conn *conns;
    const struct st_admin_endpoint *eps;
    size_t n_eps;
};

struct st_admin_reply {
    struct admin_conn *c; /* NULL once the connection closed */
    bool keep_alive, head_only;
    bool in_handle; /* answered from inside the handler: the parser is still running */
};

struct admin_conn {
    uv_tcp_t tcp;
    struct st_admin *admin;
    struct admin_conn *prev, *next;
    llhttp_t parser;
    struct st_sb url;
    struct st_sb auth; /* Authorization header value */
    struct st_sb body;
    bool in_auth;      /* the header being parsed is Authorization */
    size_t head_bytes;
    char rbuf[8192];
    unsigned writes; /* in flight */
    bool close_after; /* once every write is done */
    bool closing;
    struct st_admin_reply *pending; /* an endpoint's answer still to come: parsing paused */
    struct st_sb leftover;          /* bytes read after the paused request */
};

static const llhttp_settings_t admin_settings;

static void on_conn_closed(uv_handle_t *h)
{
    struct admin_conn *c = h->data;
    st_sb_finish(&c->url);
    st_sb_finish(&c->auth);
    st_sb_finish(&c->body);
    st_sb_finish(&c->leftover);
    free(c);
}

static void conn_close(struct admin_conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    if (c->pending)
        c->pending->c = NULL;
    c->pending = NULL;
    if (c->prev)
        c->prev->next = c->next;
    else
        c->admin->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void on_write(uv_write_t *req, int status)
{
    struct st_wreq *w = (struct st_wreq *)req;
    struct admin_conn *c = req->data;
    st_wreq_free(w);
    c->writes--;
    if (status < 0 || (c->close_after && c->writes == 0))
        conn_close(c);
}

/* One admin answer; allow (may be NULL) is the Allow header of a 405. */
static void respond(struct admin_conn *c, int status, const char *ctype, struct st_sb *body,
                    bool keep_alive, bool head_only, const char *allow)
{
    struct st_sb sb;
    st_sb_init(&sb, body->len + 256);
    st_sb_addf(&sb, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n",
               status, st_http_reason(status), ctype, body->len);
    if (allow)
        st_sb_addf(&sb, "Allow: %s\r\n", allow);
    st_sb_addf(&sb, "Cache-Control: no-store\r\nConnection: %s\r\n\r\n",
               keep_alive ? "keep-alive" : "close");
    if (!head_only)
        st_sb_add(&sb, body->p, body->len);
    size_t len;
    char *p = st_sb_take(&sb, &len);
    struct st_wreq *w = st_wreq_new();
    st_wreq_add_owned(w, p, len);
    if (!keep_alive) {
        c->close_after = true;
        uv_read_stop((uv_stream_t *)&c->tcp);
    }
    w->req.data = c;
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, w->bufs, w->nbufs, on_write) < 0) {
        st_wreq_free(w);
        conn_close(c);
        return;
    }
    c->writes++;
}

static bool path_is(const struct st_sb *url, const char *path)
{
    size_t n = strcspn(url->p, "?");
    return strlen(path) == n && strncmp(url->p, path, n) == 0;
}

/*
 * The string value of "name" in a flat JSON object (no nesting needed:
 * {"key":"/p"}). Handles the escapes \" \\ \/; returns false when absent
 * or malformed.
 */
bool st_admin_json_string(const char *js, const char *name, struct st_sb *out)
{
    char pat[32];
    snprintf(pat, sizeof(pat), "\"%s\"", name);
    const char *p = strstr(js, pat);
    if (!p)
        return false;
    p += strlen(pat);
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    if (*p++ != ':')
        return false;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    if (*p++ != '"')
        return false;
    for (; *p && *p != '"'; p++) {
        if (*p == '\\') {
            p++;
            if (*p != '"' && *p != '\\' && *p != '/')
                return false;
        }
        st_sb_add(out, p, 1);
    }
    return *p == '"' && out->len > 0;
}

static bool token_ok(struct admin_conn *c)
{
    struct st_server_cfg *r = st_server_config(c->admin->srv);
    const char *token = r->cfg->admin_token;
    bool ok = true;
    if (token && token[0]) {
        size_t tl = strlen(token);
        ok = c->auth.len == tl + 7 && strncmp(c->auth.p, "Bearer ", 7) == 0;
        unsigned char diff = 0; /* compare without an early exit */
        for (size_t i = 0; ok && i < tl; i++)
            diff |= (unsigned char)(c->auth.p[7 + i] ^ token[i]);
        ok = ok && diff == 0;
    }
    st_server_cfg_put(r);
    return ok;
}

/* POST /invalidate {"key"|"prefix"|"tag": "..."} -> {"invalidated":N} */
static int invalidate(struct admin_conn *c, struct st_sb *out)
{
    if (!token_ok(c)) {
        st_sb_adds(out, "{\"error\":\"missing or wrong bearer token\"}\n");
        return 401;
    }
    static const struct {
        const char *name;
        enum st_inval_kind kind;
    } kinds[] = {{"key", ST_INVAL_URI}, {"prefix", ST_INVAL_PREFIX}, {"tag", ST_INVAL_TAG}};
    struct st_sb v;
    st_sb_init(&v, 64);
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        v.len = 0;
        if (!st_admin_json_string(c->body.p, kinds[i].name, &v))
            continue;
        if (kinds[i].kind != ST_INVAL_TAG && v.p[0] != '/')
            break;
        struct st_server *srv = c->admin->srv;
        size_t n = st_invalidate(st_server_tier(srv), st_server_main_stats(srv), kinds[i].kind,
                                 v.p, v.len);
        st_sb_addf(out, "{\"invalidated\":%zu}\n", n);
        st_sb_finish(&v);
        return 200;
    }
    st_sb_finish(&v);
    st_sb_adds(out, "{\"error\":\"expected {\\\"key\\\":\\\"/path\\\"}, "
                    "{\\\"prefix\\\":\\\"/path/\\\"} or {\\\"tag\\\":\\\"t\\\"}\"}\n");
    return 400;
}

enum endpoint { EP_NONE, EP_LIVE, EP_READY, EP_STATS, EP_METRICS, EP_INVALIDATE, EP_DASHBOARD };

static const struct {
    const char *path;
    enum endpoint ep;
} endpoints[] = {
    {"/healthz", EP_LIVE},  {"/health", EP_LIVE},      {"/health/live", EP_LIVE},
    {"/readyz", EP_READY},  {"/health/ready", EP_READY}, {"/stats", EP_STATS},
    {"/metrics", EP_METRICS}, {"/invalidate", EP_INVALIDATE}, {"/dashboard", EP_DASHBOARD},
};

static enum endpoint endpoint_of(const struct st_sb *url)
{
    for (size_t i = 0; i < sizeof(endpoints) / sizeof(endpoints[0]); i++)
        if (path_is(url, endpoints[i].path))
            return endpoints[i].ep;
    return EP_NONE;
}

/*
 * Ready, with the state of the Redis tier when there is one: a Redis outage
 * is not a reason to leave the load balancer (the instance serves from L1
 * and the origin), so it is said here, not answered with 503.
 */
static void ready_body(struct st_server *srv, struct st_sb *body)
{
    struct st_cache_tier_stats ts;
    st_cache_tier_stats(st_server_tier(srv), &ts);
    if (ts.l2 == ST_SHARED_NONE) {
        st_sb_adds(body, "{\"status\":\"ready\"}\n");
        return;
    }
    st_sb_addf(body, "{\"status\":\"ready\",\"redis\":\"%s\",\"bus\":\"%s\"}\n",
               ts.l2 == ST_SHARED_UP ? "up" : "down", st_admin_bus_state(ts.bus));
}

/* The body and status of endpoint ep (its method already checked). */
static int answer(struct admin_conn *c, enum endpoint ep, struct st_sb *body, const char **ctype)
{
    struct st_server *srv = c->admin->srv;
    switch (ep) {
    case EP_LIVE:
        st_sb_adds(body, "{\"status\":\"ok\"}\n");
        return 200;
    case EP_READY:
        if (st_server_draining(srv)) {
            st_sb_adds(body, "{\"status\":\"unavailable\",\"reason\":\"draining\"}\n");
            return 503;
        }
        ready_body(srv, body);
        return 200;
    case EP_STATS:
        st_admin_stats_json(srv, body);
        return 200;
    case EP_METRICS:
        st_admin_stats_prometheus(srv, body);
        *ctype = "text/plain; version=0.0.4";
        return 200;
    case EP_INVALIDATE:
        return invalidate(c, body);
    case EP_DASHBOARD:
        st_sb_add(body, st_dashboard_html, st_dashboard_html_len);
        *ctype = "text/html; charset=utf-8";
        return 200;
    case EP_NONE:
        break;
    }
    st_sb_adds(body, "{\"error\":\"no such admin endpoint\"}\n");
    return 404;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);

static const struct st_admin_endpoint *ext_of(struct admin_conn *c)
{
    for (size_t i = 0; i < c->admin->n_eps; i++)
        if (path_is(&c->url, c->admin->eps[i].path))
            return &c->admin->eps[i];
    return NULL;
}

static void respond_json(struct admin_conn *c, int status, const char *msg, bool keep_alive,
                         bool head_only, const char *allow)
{
    struct st_sb body;
    st_sb_init(&body, 128);
    st_sb_adds(&body, msg);
    respond(c, status, "application/json", &body, keep_alive, head_only, allow);
    st_sb_finish(&body);
}

/* An endpoint of the layers above: checked here, answered by its handler (now or later). */
static void handle_ext(struct admin_conn *c, llhttp_t *p, const struct st_admin_endpoint *ep)
{
    bool keep_alive = llhttp_should_keep_alive(p), head_only = p->method == HTTP_HEAD;
    bool method_ok = ep->post ? p->method == HTTP_POST
                              : p->method == HTTP_GET || p->method == HTTP_HEAD;
    if (!method_ok) {
        const char *allow = ep->post ? "POST" : "GET, HEAD";
        char msg[96];
        snprintf(msg, sizeof(msg), "{\"error\":\"method not allowed: use %s\"}\n", allow);
        respond_json(c, 405, msg, keep_alive, head_only, allow);
        return;
    }
    if (ep->post && !token_ok(c)) {
        respond_json(c, 401, "{\"error\":\"missing or wrong bearer token\"}\n", keep_alive,
                     head_only, NULL);
        return;
    }
    struct st_admin_reply *r = st_xcalloc(1, sizeof(*r));
    r->c = c;
    r->keep_alive = keep_alive;
    r->head_only = head_only;
    r->in_handle = true;
    c->pending = r;
    ep->handle(ep->arg, c->body.p ? c->body.p : "", c->body.len, r);
    if (c->pending == r)
        r->in_handle = false; /* later: on_message_complete pauses the parser */
}

void st_admin_set_endpoints(struct st_admin *a, const struct st_admin_endpoint *eps, size_t n)
{
    a->eps = eps;
    a->n_eps = n;
}

/* Parse what was read after a paused request, then read on (unless paused again). */
static void resume_conn(struct admin_conn *c)
{
    llhttp_resume(&c->parser);
    struct st_sb rest = c->leftover;
    st_sb_init(&c->leftover, 64);
    enum llhttp_errno err = HPE_OK;
    if (rest.len)
        err = llhttp_execute(&c->parser, rest.p, rest.len);
    if (err == HPE_PAUSED) {
        const char *at = llhttp_get_error_pos(&c->parser);
        st_sb_add(&c->leftover, at, rest.len - (size_t)(at - rest.p));
    }
    st_sb_finish(&rest);
    if (err != HPE_OK && err != HPE_PAUSED) {
        respond_json(c, 400, "{\"error\":\"malformed request\"}\n", false, false, NULL);
        return;
    }
    if (err == HPE_OK && !c->close_after && !c->closing)
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

void st_admin_reply(struct st_admin_reply *r, int status, const char *json, size_t len)
{
    struct admin_conn *c = r->c;
    bool in_handle = r->in_handle, keep_alive = r->keep_alive, head_only = r->head_only;
    free(r);
    if (!c)
        return; /* the client left */
    c->pending = NULL;
    struct st_sb body;
    st_sb_init(&body, len + 1);
    st_sb_add(&body, json, len);
    respond(c, status, "application/json", &body, keep_alive, head_only, NULL);
    st_sb_finish(&body);
    if (!in_handle && !c->closing)
        resume_conn(c);
}

static void handle(struct admin_conn *c, llhttp_t *p)
{
    const struct st_admin_endpoint *ext = ext_of(c);
    if (ext) {
        handle_ext(c, p, ext);
        return;
    }
    bool keep_alive = llhttp_should_keep_alive(p);
    struct st_sb body;
    st_sb_init(&body, 512);
    const char *ctype = "application/json";
    enum endpoint ep = endpoint_of(&c->url);
    const char *allow = ep == EP_INVALIDATE ? "POST" : "GET, HEAD";
    bool method_ok = ep == EP_INVALIDATE ? p->method == HTTP_POST
                                         : p->method == HTTP_GET || p->method == HTTP_HEAD;
    int status;
    if (ep != EP_NONE && !method_ok) {
        status = 405;
        st_sb_addf(&body, "{\"error\":\"method not allowed: use %s\"}\n", allow);
    } else {
        status = answer(c, ep, &body, &ctype);
    }
    respond(c, status, ctype, &body, keep_alive, p->method == HTTP_HEAD,
            status == 405 ? allow : NULL);
    st_sb_finish(&body);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct admin_conn *c = h->data;
    (void)suggested;
    buf->base = c->rbuf;
    buf->len = sizeof(c->rbuf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct admin_conn *c = s->data;
    if (nread == 0 || c->closing || c->close_after)
        return;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    enum llhttp_errno err = llhttp_execute(&c->parser, buf->base, (size_t)nread);
    if (err == HPE_PAUSED) {
        const char *at = llhttp_get_error_pos(&c->parser);
        st_sb_add(&c->leftover, at, (size_t)(buf->base + nread - at));
        uv_read_stop(s);
        return;
    }
    if (err != HPE_OK) {
        struct st_sb body;
        st_sb_init(&body, 64);
        st_sb_adds(&body, "{\"error\":\"malformed request\"}\n");
        respond(c, 400, "application/json", &body, false, false, NULL);
        st_sb_finish(&body);
        uv_read_stop(s);
    }
}

static void on_connection(uv_stream_t *listener, int status)
{
    struct st_admin *a = listener->data;
    if (status < 0)
        return;
    struct admin_conn *c = st_xcalloc(1, sizeof(*c));
    c->admin = a;
    uv_tcp_init(listener->loop, &c->tcp);
    c->tcp.data = c;
    st_sb_init(&c->url, 64);
    st_sb_init(&c->auth, 64);
    st_sb_init(&c->body, 64);
    st_sb_init(&c->leftover, 64);
    llhttp_init(&c->parser, HTTP_REQUEST, &admin_settings);
    c->parser.data = c;
    c->next = a->conns;
    if (a->conns)
        a->conns->prev = c;
    a->conns = c;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

int st_admin_start(uv_loop_t *loop, struct st_server *srv, const struct st_addr *addr,
                   struct st_admin **out)
{
    struct st_admin *a = st_xcalloc(1, sizeof(*a));
    a->srv = srv;
    uv_tcp_init(loop, &a->listener);
    a->listener.data = a;
    int rc = uv_tcp_bind(&a->listener, (const struct sockaddr *)&addr->sa, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&a->listener, 128, on_connection);
    if (rc < 0) {
        uv_close((uv_handle_t *)&a->listener, (uv_close_cb)free);
        return rc;
    }
    *out = a;
    return 0;
}

void st_admin_stop(struct st_admin *a)
{
    while (a->conns)
        conn_close(a->conns);
    uv_close((uv_handle_t *)&a->listener, (uv_close_cb)free);
}

/* --- llhttp callbacks --- */

static int on_message_begin(llhttp_t *p)
{
    struct admin_conn *c = p->data;
    c->url.len = 0;
    c->auth.len = 0;
    c->body.len = 0;
    c->head_bytes = 0;
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    struct admin_conn *c = p->data;
    if (c->body.len + len > ADMIN_MAX_BODY)
        return -1;
    st_sb_add(&c->body, at, len);
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    struct admin_conn *c = p->data;
    st_sb_add(&c->url, at, len);
    c->head_bytes += len;
    return c->head_bytes > ADMIN_MAX_HEAD ? -1 : 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    struct admin_conn *c = p->data;
    c->in_auth = st_name_eq(at, len, "authorization");
    c->head_bytes += len;
    return c->head_bytes > ADMIN_MAX_HEAD ? -1 : 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    struct admin_conn *c = p->data;
    if (c->in_auth)
        st_sb_add(&c->auth, at, len);
    c->head_bytes += len;
    return c->head_bytes > ADMIN_MAX_HEAD ? -1 : 0;
}

static int on_message_complete(llhttp_t *p)
{
    struct admin_conn *c = p->data;
    handle(c, p);
    return c->pending ? HPE_PAUSED : 0; /* nothing more is parsed until the answer */
}

static const llhttp_settings_t admin_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};
