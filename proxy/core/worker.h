/*
 * worker.h - one event-loop thread: its listener, its client connections,
 * its upstream pools, its counters and the context its strategies run
 * with. Nothing on the request path is shared with another worker.
 *
 * Config generations: a worker serves with a st_gen, its view of one loaded
 * config (a shared, immutable st_config plus this worker's pools for it).
 * Exchanges hold a reference to the generation they started under, so a
 * reload lets in-flight requests finish on the old config while new ones
 * use the new. When the last reference goes the generation retires its
 * pools and drops its config reference.
 */
#ifndef ST_WORKER_H
#define ST_WORKER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "base/stats.h"
#include "cache/flight.h"
#include "config/config.h"
#include "core/strategy.h"
#include "http/conn.h"

struct st_server;
struct st_server_cfg;
struct st_upstream_pool;
struct st_exchange;

struct st_gen {
    unsigned refs;
    struct st_worker *w;
    struct st_server_cfg *cref; /* one reference held */
    const struct st_config *cfg;
    struct st_upstream_pool **pools; /* owned; one per cfg->upstreams */
};

struct st_gen *st_worker_gen_ref(struct st_gen *g);
void st_worker_gen_unref(struct st_gen *g);

/* An exchange parked on a flight: woken on the leader's thread, resumed on its own. */
struct st_waiter {
    struct st_flight_waiter fw; /* first: the flight hands this back */
    struct st_waiter *next;     /* in the worker's wake queue */
    struct st_worker *w;        /* the waiter's worker: only it touches x */
    struct st_exchange *x;      /* NULL once the exchange is gone */
    /* the flight, so that a LEAD handed to a gone exchange still ends it */
    struct st_cache_tier *tier;
    uint64_t hash;
    char *key; /* owned */
    size_t key_len;
};

/* Free a waiter the worker got back (ending its flight if it was handed the lead). */
void st_worker_waiter_free(struct st_waiter *w);

struct st_worker {
    struct st_server *srv;
    unsigned index;
    uv_loop_t loop;
    uv_thread_t thread;
    uv_tcp_t listener;
    uv_async_t wake;   /* new config, stop, or parked exchanges to resume */
    uv_mutex_t wake_lock;
    struct st_waiter *wake_q; /* under wake_lock: waiters handed back by a flight */
    bool stopped;             /* under wake_lock: the wake handle is closed */
    uv_timer_t drain_timer;
    uv_prepare_t quiesce; /* before each poll: drop cache read-side pointers (qsbr.h) */
    int listen_fd;     /* bound by the server before the thread starts */
    struct st_gen *gen; /* current generation; one reference held */
    struct st_conn_host clients; /* this worker's client connections (core/client.c) */
    struct st_strategy_ctx ctx;  /* what its strategies run with */
    void *services[ST_STRATEGY__COUNT]; /* the first worker's: each strategy's service state */
    unsigned services_running;          /* started and not yet ended */
    struct st_stats stats;
    uint64_t rand[2];
};

/* Start the worker's thread on an already bound listening socket. 0 or -errno. */
int st_worker_start(struct st_worker *w, struct st_server *srv, unsigned index, int listen_fd);
/* From another thread: pick up the server's current config. */
void st_worker_notify_reload(struct st_worker *w);
/* From another thread: drain and stop; st_worker_join waits for the thread. */
void st_worker_notify_stop(struct st_worker *w);
void st_worker_join(struct st_worker *w);
/* Is the worker draining (answers close their connections)? Its own thread. */
static inline bool st_worker_draining(const struct st_worker *w)
{
    return w->clients.draining;
}

/*
 * From any thread: hand a parked exchange's waiter back to its worker, which
 * resumes the exchange (or frees the waiter if the exchange is gone).
 */
void st_worker_post(struct st_worker *w, struct st_waiter *waiter);

/* A client connection closed: a draining worker may now be done. */
void st_worker_maybe_done(struct st_worker *w);

#endif
