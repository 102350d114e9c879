/*
 * worker.c - an event-loop thread and its config generations.
 *
 * The worker's handles: the listener, the wake async and the drain timer.
 * Its loop ends when, after a stop, the listener is closed and the last
 * connection is gone (or the drain deadline forced them closed); then the
 * async and timer handles close and uv_run returns.
 */
#include "core/worker.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "cache/advisor.h"
#include "cache/tier.h"
#include "core/client.h"
#include "core/exchange.h"
#include "http/ids.h"
#include "base/log.h"
#include "base/qsbr.h"
#include "base/rand.h"
#include "core/server.h"
#include "origin/upstream.h"

#define DRAIN_DEADLINE_MS 10000

/* The strategies' clock. */
static int64_t now_ms(void)
{
    return st_clock_wall_ms();
}

static struct st_gen *gen_create(struct st_worker *w, struct st_server_cfg *cref)
{
    struct st_gen *g = st_xcalloc(1, sizeof(*g));
    g->refs = 1;
    g->w = w;
    g->cref = cref;
    g->cfg = cref->cfg;
    g->pools = st_xcalloc(g->cfg->n_upstreams, sizeof(*g->pools));
    for (size_t i = 0; i < g->cfg->n_upstreams; i++)
        g->pools[i] = st_upstream_pool_create(&w->loop, &g->cfg->upstreams[i], &w->stats,
                                              cref->breakers[i], cref->servers[i]);
    return g;
}

struct st_gen *st_worker_gen_ref(struct st_gen *g)
{
    g->refs++;
    return g;
}

void st_worker_gen_unref(struct st_gen *g)
{
    ST_CHECK(g->refs > 0);
    if (--g->refs > 0)
        return;
    for (size_t i = 0; i < g->cfg->n_upstreams; i++)
        st_upstream_pool_retire(g->pools[i]);
    free(g->pools);
    st_server_cfg_put(g->cref);
    free(g);
}

static void on_connection(uv_stream_t *listener, int status)
{
    struct st_worker *w = listener->data;
    if (status < 0) {
        st_log(ST_LOG_WARN, "worker", NULL, "accept: %s", uv_strerror(status));
        return;
    }
    st_conn_accept(&w->clients, listener);
}

static void close_quietly(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

void st_worker_maybe_done(struct st_worker *w)
{
    if (!w->clients.draining || w->clients.conns || w->services_running)
        return;
    if (w->gen) {
        st_worker_gen_unref(w->gen); /* closes the idle origin connections */
        w->gen = NULL;
        w->clients.settings = NULL;
    }
    st_cache_tier_detach(w->ctx.tiers); /* its Redis connection, if any */
    uv_mutex_lock(&w->wake_lock);
    w->stopped = true;
    uv_mutex_unlock(&w->wake_lock);
    close_quietly((uv_handle_t *)&w->wake);
    close_quietly((uv_handle_t *)&w->drain_timer);
    close_quietly((uv_handle_t *)&w->quiesce);
}

static void on_drain_deadline(uv_timer_t *t)
{
    struct st_worker *w = t->data;
    st_log(ST_LOG_WARN, "worker", NULL, "worker %u: drain deadline passed, closing connections",
           w->index);
    st_conn_close_all(&w->clients);
}

/* The first worker runs the strategies' services (the write-behind flusher). */
static void start_services(struct st_worker *w)
{
    const struct st_strategy_table *t = st_server_strategies(w->srv);
    for (size_t i = 0; w->index == 0 && i < ST_STRATEGY__COUNT; i++) {
        if (t->kind[i] && t->kind[i]->service_start)
            w->services[i] = t->kind[i]->service_start((struct st_strategy_host *)w);
        w->services_running += w->services[i] != NULL;
    }
}

void st_host_service_ended(struct st_strategy_host *h)
{
    struct st_worker *w = (struct st_worker *)h;
    ST_CHECK(w->services_running > 0);
    w->services_running--;
    /* From the next loop turn: the service may be inside a callback of the connection. */
    uv_async_send(&w->wake);
}

static void stop_services(struct st_worker *w)
{
    const struct st_strategy_table *t = st_server_strategies(w->srv);
    for (size_t i = 0; i < ST_STRATEGY__COUNT; i++) {
        if (w->services[i])
            t->kind[i]->service_stop(w->services[i]);
        w->services[i] = NULL;
    }
}

static void begin_drain(struct st_worker *w)
{
    if (w->clients.draining)
        return;
    w->clients.draining = true;
    stop_services(w);
    close_quietly((uv_handle_t *)&w->listener);
    st_conn_drain_all(&w->clients);
    uv_timer_start(&w->drain_timer, on_drain_deadline, DRAIN_DEADLINE_MS, 0);
    st_worker_maybe_done(w);
}

void st_worker_post(struct st_worker *w, struct st_waiter *waiter)
{
    uv_mutex_lock(&w->wake_lock);
    if (w->stopped) {
        /* Its exchange went with the worker's last connection. */
        uv_mutex_unlock(&w->wake_lock);
        waiter->x = NULL;
        st_worker_waiter_free(waiter);
        return;
    }
    waiter->next = w->wake_q;
    w->wake_q = waiter;
    uv_async_send(&w->wake);
    uv_mutex_unlock(&w->wake_lock);
}

void st_worker_waiter_free(struct st_waiter *q)
{
    if (!q->x && q->fw.result == ST_FLIGHT_LEAD) /* the fetch it was handed goes undone */
        st_cache_tier_flight_done(q->tier, q->hash, q->key, q->key_len, ST_FLIGHT_UNCACHEABLE, 0);
    free(q->key);
    free(q);
}

static void resume_waiters(struct st_worker *w)
{
    uv_mutex_lock(&w->wake_lock);
    struct st_waiter *q = w->wake_q;
    w->wake_q = NULL;
    uv_mutex_unlock(&w->wake_lock);
    while (q) {
        struct st_waiter *next = q->next;
        struct st_exchange *x = q->x;
        enum st_flight_result result = q->fw.result;
        int status = q->fw.status;
        st_worker_waiter_free(q);
        if (x)
            st_exchange_resume(x, result, status);
        q = next;
    }
}

static void on_wake(uv_async_t *a)
{
    struct st_worker *w = a->data;
    resume_waiters(w);
    if (st_server_draining(w->srv)) {
        begin_drain(w);
        st_worker_maybe_done(w); /* a service may have ended */
        return;
    }
    struct st_server_cfg *cref = st_server_config(w->srv);
    if (cref == w->gen->cref) {
        st_server_cfg_put(cref);
        return;
    }
    struct st_gen *old = w->gen;
    w->gen = gen_create(w, cref);
    w->clients.settings = w->gen;
    st_worker_gen_unref(old);
}

/* The loop is about to block: nothing read from the cache without a reference is held. */
static void on_quiesce(uv_prepare_t *p)
{
    (void)p;
    st_qsbr_offline();
    st_qsbr_reclaim();
}

static void run(void *arg)
{
    struct st_worker *w = arg;
    if (!st_qsbr_register()) {
        st_log(ST_LOG_ERROR, "worker", NULL, "no reclamation slot left for worker %u", w->index);
        abort();
    }
    uv_prepare_start(&w->quiesce, on_quiesce);
    start_services(w);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    st_qsbr_unregister();
    st_wreq_cache_drain();
    uv_loop_close(&w->loop);
    for (struct st_waiter *q = w->wake_q, *next; q; q = next) {
        next = q->next;
        st_worker_waiter_free(q);
    }
    w->wake_q = NULL;
}

int st_worker_start(struct st_worker *w, struct st_server *srv, unsigned index, int listen_fd)
{
    memset(&w->loop, 0, sizeof(w->loop));
    w->srv = srv;
    w->index = index;
    w->listen_fd = listen_fd;
    w->rand[0] = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ (0x9e3779b97f4a7c15ull * (index + 1));
    w->rand[1] = (uint64_t)uv_hrtime() | 1;
    char first[33];
    st_request_id_new(w->rand, first);
    memcpy(w->clients.id_prefix, first, 16);
    w->clients.id_counter = st_rand64(w->rand) >> 16;
    int rc = uv_loop_init(&w->loop);
    if (rc < 0)
        return rc;
    uv_tcp_init(&w->loop, &w->listener);
    w->listener.data = w;
    uv_async_init(&w->loop, &w->wake, on_wake);
    w->wake.data = w;
    uv_mutex_init(&w->wake_lock);
    uv_timer_init(&w->loop, &w->drain_timer);
    w->drain_timer.data = w;
    uv_prepare_init(&w->loop, &w->quiesce);
    w->quiesce.data = w;
    w->gen = gen_create(w, st_server_config(srv));
    st_client_host_init(w);
    w->ctx = (struct st_strategy_ctx){
        .tiers = st_server_worker_tier(srv, &w->loop, &w->stats),
        .stats = &w->stats,
        .rand = w->rand,
        .now_ms = now_ms,
        .advisor = st_advisor_feed_create(st_server_advisor(srv)),
    };
    rc = uv_tcp_open(&w->listener, listen_fd);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&w->listener, 511, on_connection);
    if (rc == 0)
        rc = uv_thread_create(&w->thread, run, w);
    return rc;
}

void st_worker_notify_reload(struct st_worker *w)
{
    uv_async_send(&w->wake);
}

void st_worker_notify_stop(struct st_worker *w)
{
    uv_async_send(&w->wake);
}

void st_worker_join(struct st_worker *w)
{
    uv_thread_join(&w->thread);
}
