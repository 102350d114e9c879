/*
 * client.c - a worker's HTTP/1 client connections serving exchanges: the
 * worker as the connections' host (http/conn.h), and the connection as an
 * exchange's client (exchange.h). The only file that names both.
 *
 * A connection holds the worker's config generation as its settings; a
 * request's stream is its exchange.
 */
#include "core/client.h"

#include <stddef.h>

#include "core/exchange.h"
#include "core/server.h"
#include "core/worker.h"
#include "http/conn.h"

/* --- the connection as the exchange's client --- */

static bool client_try_send(void *c, struct st_wreq *w)
{
    return st_conn_try_send(c, w);
}

static void client_send(void *c, struct st_wreq *w)
{
    st_conn_send(c, w);
}

static bool client_congested(void *c)
{
    return st_conn_congested(c);
}

static void client_pause_reading(void *c)
{
    st_conn_pause_reading(c);
}

static void client_resume_reading(void *c)
{
    st_conn_resume_reading(c);
}

static void client_done(void *c, bool keep_alive)
{
    st_conn_stream_done(c, keep_alive);
}

static void client_abort(void *c)
{
    st_conn_abort(c);
}

static const struct st_exchange_client_ops conn_client_ops = {
    .try_send = client_try_send,
    .send = client_send,
    .congested = client_congested,
    .pause_reading = client_pause_reading,
    .resume_reading = client_resume_reading,
    .done = client_done,
    .abort = client_abort,
};

/* --- the worker as the connections' host --- */

static struct st_worker *worker_of(struct st_conn_host *h)
{
    return (struct st_worker *)((char *)h - offsetof(struct st_worker, clients));
}

static bool host_admit(struct st_conn_host *h, const char *client_ip)
{
    return st_server_conn_opened(worker_of(h)->srv, client_ip);
}

static void host_release(struct st_conn_host *h, const char *client_ip)
{
    st_server_conn_closed(worker_of(h)->srv, client_ip);
}

static void host_freed(struct st_conn_host *h)
{
    st_worker_maybe_done(worker_of(h));
}

static void host_settings_hold(struct st_conn_host *h, void *settings)
{
    (void)h;
    st_worker_gen_ref(settings);
}

static void host_settings_put(struct st_conn_host *h, void *settings)
{
    (void)h;
    st_worker_gen_unref(settings);
}

static const struct st_limits *host_limits(void *settings)
{
    return &((struct st_gen *)settings)->cfg->limits;
}

static void *host_request(struct st_conn_host *h, struct st_conn *c, void *settings,
                          const struct st_request_info *rq)
{
    struct st_exchange_init in = {
        .client_ops = &conn_client_ops,
        .client = c,
        .w = worker_of(h),
        .gen = settings,
        .rq = rq,
    };
    return st_exchange_create(&in);
}

static void host_start(void *x)
{
    st_exchange_run(x);
}

static void host_request_body(void *x, struct st_rbuf *b, const char *p, size_t len)
{
    st_exchange_request_body(x, b, p, len);
}

static void host_request_end(void *x)
{
    st_exchange_request_end(x);
}

static void host_drained(void *x)
{
    st_exchange_client_drained(x);
}

static bool host_gone(void *x)
{
    return st_exchange_client_gone(x);
}

static const struct st_conn_host_ops worker_host_ops = {
    .admit = host_admit,
    .release = host_release,
    .freed = host_freed,
    .settings_hold = host_settings_hold,
    .settings_put = host_settings_put,
    .limits = host_limits,
    .request = host_request,
    .start = host_start,
    .request_body = host_request_body,
    .request_end = host_request_end,
    .drained = host_drained,
    .gone = host_gone,
};

void st_client_host_init(struct st_worker *w)
{
    struct st_conn_host *h = &w->clients;
    h->ops = &worker_host_ops;
    h->loop = &w->loop;
    h->stats = &w->stats;
    h->settings = w->gen;
    h->conns = NULL;
    h->draining = false;
}
