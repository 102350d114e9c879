/*
 * worker.h - one event-loop thread: its listener, its connections, its
 * upstream pools and its counters. Nothing on the request path is shared
 * with another worker.
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

#include "config/config.h"
#include "base/stats.h"

struct st_server;
struct st_cfg_ref;
struct st_pool;
struct st_conn;

struct st_gen {
    unsigned refs;
    struct st_worker *w;
    struct st_cfg_ref *cref; /* one reference held */
    const struct st_config *cfg;
    struct st_pool **pools; /* owned; one per cfg->upstreams */
};

struct st_gen *st_gen_ref(struct st_gen *g);
void st_gen_unref(struct st_gen *g);

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
    struct st_stats stats;
    uint64_t rand[2];
    char id_prefix[16]; /* request ids: random per worker start ... */
    uint64_t id_counter; /* ... and a counter */
    struct st_conn *conns; /* every open client connection (for drain) */
    bool draining;
};

/* Start the worker's thread on an already bound listening socket. 0 or -errno. */
int st_worker_start(struct st_worker *w, struct st_server *srv, unsigned index, int listen_fd);
/* From another thread: pick up the server's current config. */
void st_worker_notify_reload(struct st_worker *w);
/* From another thread: drain and stop; st_worker_join waits for the thread. */
void st_worker_notify_stop(struct st_worker *w);
void st_worker_join(struct st_worker *w);

/*
 * From any thread: hand a parked exchange's waiter back to its worker, which
 * resumes the exchange (or frees the waiter if the exchange is gone).
 */
struct st_waiter;
void st_worker_post(struct st_worker *w, struct st_waiter *waiter);

/* A connection closed: a draining worker may now be done. */
void st_worker_maybe_done(struct st_worker *w);

#endif
