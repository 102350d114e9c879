/*
 * health.c - the resolver and the active checker of one upstream.
 */
#include "origin/health.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/log.h"
#include "st_build.h"

/* Re-resolves asked for by connect failures: at most this often. */
#define RESOLVE_WISH_MS 1000
/* The most addresses one name contributes. */
#define MAX_ADDRS 64

struct name_req {
    uv_getaddrinfo_t req;
    struct st_origin_watch *w;
    size_t from; /* index into cfg->servers */
    bool busy;
    uint64_t fail_logged; /* loop time a failure was last logged; 0: resolving fine */
};

struct probe {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_connect_t connect_req;
    uv_write_t write_req;
    struct st_origin_watch *w;
    struct probe *next;
    uint32_t id;
    int handles;
    bool done;
    char *request; /* owned */
    char head[128];
    size_t head_len;
};

struct st_origin_watch {
    uv_loop_t *loop;
    const struct st_upstream_cfg *cfg;
    struct st_servers *servers; /* one reference */
    uv_timer_t tick;
    bool tick_open;
    struct name_req *names; /* one per cfg server that is a host name */
    size_t n_names;
    unsigned resolving;
    uint64_t next_resolve, last_resolve, next_check;
    struct probe *probes;
    unsigned n_probes;
    bool stopping;
};

static void maybe_free(struct st_origin_watch *w)
{
    if (!w->stopping || w->tick_open || w->resolving || w->n_probes)
        return;
    st_servers_unref(w->servers);
    free(w->names);
    free(w);
}

/* ---- names ---- */

static void apply(struct st_origin_watch *w, struct name_req *nr, int status,
                  struct addrinfo *res)
{
    const struct st_addr *srv = &w->cfg->servers[nr->from];
    struct sockaddr_storage addrs[MAX_ADDRS];
    size_t n = 0;
    for (struct addrinfo *ai = status == 0 ? res : NULL; ai && n < MAX_ADDRS; ai = ai->ai_next) {
        if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
            ai->ai_addrlen > sizeof(addrs[0]))
            continue;
        memset(&addrs[n], 0, sizeof(addrs[n]));
        memcpy(&addrs[n], ai->ai_addr, ai->ai_addrlen);
        n++;
    }
    if (res)
        uv_freeaddrinfo(res);
    uint64_t now = uv_now(w->loop);
    if (n == 0) {
        /* Once when it starts failing, then once per resolve_every while it goes on. */
        if (nr->fail_logged && now - nr->fail_logged < w->cfg->resolve_every_ms)
            return;
        nr->fail_logged = now ? now : 1;
        struct st_server_info had[MAX_ADDRS];
        size_t n_had = st_servers_list(w->servers, now, had, MAX_ADDRS), mine = 0;
        for (size_t i = 0; i < n_had && i < MAX_ADDRS; i++)
            mine += had[i].from == nr->from;
        const char *why = status < 0 ? uv_strerror(status) : "no IPv4 or IPv6 address";
        if (mine)
            st_log(ST_LOG_WARN, "upstream", NULL,
                   "%s: resolving %s failed (%s); keeping the %zu address%s it had",
                   w->cfg->name, srv->host, why, mine, mine == 1 ? "" : "es");
        else
            st_log(ST_LOG_WARN, "upstream", NULL,
                   "%s: %s does not resolve (%s); it gets no requests until it does",
                   w->cfg->name, srv->host, why);
        return;
    }
    nr->fail_logged = 0;
    if (!st_servers_set(w->servers, nr->from, addrs, n))
        return;
    char list[512];
    size_t len = 0;
    list[0] = '\0';
    for (size_t j = 0; j < n && len < sizeof(list) - 64; j++) {
        char a[64];
        st_servers_format(&addrs[j], a, sizeof(a));
        len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s", j ? ", " : "", a);
    }
    st_log(ST_LOG_INFO, "upstream", NULL, "%s: %s resolves to %s", w->cfg->name, srv->text,
           list);
}

static const struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                                      .ai_protocol = IPPROTO_TCP};

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct name_req *nr = req->data;
    struct st_origin_watch *w = nr->w;
    nr->busy = false;
    w->resolving--;
    if (w->stopping) {
        if (res)
            uv_freeaddrinfo(res);
        maybe_free(w);
        return;
    }
    apply(w, nr, status, res);
}

static void resolve_all(struct st_origin_watch *w)
{
    uint64_t now = uv_now(w->loop);
    w->last_resolve = now;
    w->next_resolve = now + w->cfg->resolve_every_ms;
    for (size_t i = 0; i < w->n_names; i++) {
        struct name_req *nr = &w->names[i];
        const struct st_addr *srv = &w->cfg->servers[nr->from];
        char port[8];
        snprintf(port, sizeof(port), "%u", srv->port);
        nr->req.data = nr;
        int rc = uv_getaddrinfo(w->loop, &nr->req, on_resolved, srv->host, port, &hints);
        if (rc < 0) {
            apply(w, nr, rc, NULL);
            continue;
        }
        nr->busy = true;
        w->resolving++;
    }
}

/* ---- checks ---- */

static void probe_closed(uv_handle_t *h)
{
    struct probe *p = h->data;
    if (--p->handles > 0)
        return;
    struct st_origin_watch *w = p->w;
    for (struct probe **pp = &w->probes; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    w->n_probes--;
    free(p->request);
    free(p);
    maybe_free(w);
}

static void probe_end(struct probe *p, bool pass)
{
    if (p->done)
        return;
    p->done = true;
    if (!p->w->stopping)
        st_servers_checked(p->w->servers, p->id, uv_now(p->w->loop), pass);
    uv_close((uv_handle_t *)&p->tcp, probe_closed);
    uv_close((uv_handle_t *)&p->timer, probe_closed);
}

/* Does the head so far hold a complete 2xx/3xx status line? -1: not yet known. */
static int status_passes(const struct probe *p, bool all)
{
    const char *eol = memchr(p->head, '\n', p->head_len);
    if (!eol && !all && p->head_len < sizeof(p->head))
        return -1;
    unsigned major, minor, code;
    char sp;
    if (sscanf(p->head, "HTTP/%u.%u %3u%c", &major, &minor, &code, &sp) != 4 || major != 1 ||
        (sp != ' ' && sp != '\r'))
        return 0;
    return code >= 200 && code < 400;
}

static void probe_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct probe *p = h->data;
    (void)suggested;
    buf->base = p->head + p->head_len;
    buf->len = sizeof(p->head) - 1 - p->head_len;
}

static void probe_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct probe *p = s->data;
    (void)buf;
    if (nread > 0) {
        p->head_len += (size_t)nread;
        p->head[p->head_len] = '\0';
    }
    int verdict = status_passes(p, nread < 0 || p->head_len >= sizeof(p->head) - 1);
    if (verdict >= 0)
        probe_end(p, verdict == 1);
}

static void probe_written(uv_write_t *req, int status)
{
    struct probe *p = req->data;
    if (status < 0)
        probe_end(p, false);
}

static void probe_connected(uv_connect_t *req, int status)
{
    struct probe *p = req->data;
    if (p->done)
        return;
    if (status < 0) {
        probe_end(p, false);
        return;
    }
    uv_buf_t b = uv_buf_init(p->request, (unsigned)strlen(p->request));
    p->write_req.data = p;
    if (uv_write(&p->write_req, (uv_stream_t *)&p->tcp, &b, 1, probe_written) < 0 ||
        uv_read_start((uv_stream_t *)&p->tcp, probe_alloc, probe_read) < 0)
        probe_end(p, false);
}

static void probe_timeout(uv_timer_t *t)
{
    probe_end(t->data, false);
}

static void probe_start(struct st_origin_watch *w, const struct st_server_info *si)
{
    struct probe *p = st_xcalloc(1, sizeof(*p));
    p->w = w;
    p->id = si->id;
    p->request = st_xasprintf("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: strata/%s "
                              "health-check\r\nConnection: close\r\n\r\n",
                              w->cfg->health.path, w->cfg->servers[si->from].text, ST_VERSION);
    uv_tcp_init(w->loop, &p->tcp);
    uv_timer_init(w->loop, &p->timer);
    p->tcp.data = p->timer.data = p->connect_req.data = p;
    p->handles = 2;
    p->next = w->probes;
    w->probes = p;
    w->n_probes++;
    uv_timer_start(&p->timer, probe_timeout, w->cfg->health.timeout_ms, 0);
    if (uv_tcp_connect(&p->connect_req, &p->tcp, (const struct sockaddr *)&si->sa,
                       probe_connected) < 0)
        probe_end(p, false);
}

static void check_all(struct st_origin_watch *w)
{
    struct st_server_info v[MAX_ADDRS];
    size_t n = st_servers_list(w->servers, uv_now(w->loop), v, MAX_ADDRS);
    for (size_t i = 0; i < n && i < MAX_ADDRS; i++)
        probe_start(w, &v[i]);
}

/* ---- the watch ---- */

static void on_tick(uv_timer_t *t)
{
    struct st_origin_watch *w = t->data;
    uint64_t now = uv_now(w->loop);
    if (w->n_names && !w->resolving) {
        bool wish = st_servers_take_resolve_wish(w->servers);
        if (now >= w->next_resolve || (wish && now >= w->last_resolve + RESOLVE_WISH_MS))
            resolve_all(w);
        else if (wish)
            st_servers_want_resolve(w->servers); /* not yet: keep it */
    }
    if (w->cfg->health.enabled && !w->n_probes && now >= w->next_check) {
        w->next_check = now + w->cfg->health.interval_ms;
        check_all(w);
    }
}

struct st_origin_watch *st_origin_watch_start(uv_loop_t *loop, const struct st_upstream_cfg *cfg,
                                              struct st_servers *servers)
{
    size_t n_names = 0;
    for (size_t i = 0; i < cfg->n_servers; i++)
        n_names += cfg->servers[i].host != NULL;
    if (!n_names && !cfg->health.enabled)
        return NULL;
    struct st_origin_watch *w = st_xcalloc(1, sizeof(*w));
    w->loop = loop;
    w->cfg = cfg;
    w->servers = servers;
    st_servers_ref(servers);
    w->names = st_xcalloc(n_names ? n_names : 1, sizeof(*w->names));
    for (size_t i = 0; i < cfg->n_servers; i++)
        if (cfg->servers[i].host)
            w->names[w->n_names++] = (struct name_req){.w = w, .from = i};
    /* The first answer before the generation serves: a synchronous lookup per name. */
    for (size_t i = 0; i < w->n_names; i++) {
        struct name_req *nr = &w->names[i];
        char port[8];
        snprintf(port, sizeof(port), "%u", cfg->servers[nr->from].port);
        int rc = uv_getaddrinfo(loop, &nr->req, NULL, cfg->servers[nr->from].host, port, &hints);
        apply(w, nr, rc, rc == 0 ? nr->req.addrinfo : NULL);
    }
    uv_update_time(loop);
    w->last_resolve = uv_now(loop);
    w->next_resolve = w->last_resolve + cfg->resolve_every_ms;
    uint64_t tick = RESOLVE_WISH_MS;
    if (cfg->health.enabled && cfg->health.interval_ms < tick)
        tick = cfg->health.interval_ms;
    uv_timer_init(loop, &w->tick);
    w->tick.data = w;
    w->tick_open = true;
    uv_timer_start(&w->tick, on_tick, cfg->health.enabled ? 0 : tick, tick);
    return w;
}

static void tick_closed(uv_handle_t *h)
{
    struct st_origin_watch *w = h->data;
    w->tick_open = false;
    maybe_free(w);
}

void st_origin_watch_stop(struct st_origin_watch *w)
{
    if (!w || w->stopping)
        return;
    w->stopping = true;
    for (size_t i = 0; i < w->n_names; i++)
        if (w->names[i].busy)
            uv_cancel((uv_req_t *)&w->names[i].req);
    for (struct probe *p = w->probes; p; p = p->next)
        probe_end(p, false);
    uv_close((uv_handle_t *)&w->tick, tick_closed);
}
