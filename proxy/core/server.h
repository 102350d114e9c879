/*
 * server.h - the process: config ownership and reload, listeners, worker
 * threads, signals, the admin listener, and the drain on shutdown.
 *
 * The current config lives in a reference-counted st_server_cfg. The main
 * thread swaps it on SIGHUP under a mutex (never taken on the request path)
 * and wakes every worker, which picks it up for its next requests.
 */
#ifndef ST_SERVER_H
#define ST_SERVER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "base/stats.h"
#include "config/config.h"
#include "core/strategy.h"

struct st_server;
struct st_cache_tier;
struct st_advisor;

struct st_breaker;

struct st_server_cfg {
    _Atomic unsigned refs;
    struct st_config *cfg; /* owned: destroyed with the last reference */
    struct st_breaker **breakers; /* owned, one per cfg->upstreams (NULL: none), every worker's */
    struct st_servers **servers;  /* one reference each, one per cfg->upstreams, every worker's */
    struct st_origin_watch **watches; /* main thread: resolving and checking them (NULL: none) */
};

/* The current config, with a reference for the caller. Any thread. */
struct st_server_cfg *st_server_config(struct st_server *srv);
void st_server_cfg_put(struct st_server_cfg *r);

/* Connection admission against limits.max_connections: any worker thread. */
bool st_server_conn_opened(struct st_server *srv, const char *client_ip);
void st_server_conn_closed(struct st_server *srv, const char *client_ip);

/* Every counter block (workers' and the main thread's); returns how many (<= cap). */
size_t st_server_stat_blocks(struct st_server *srv, struct st_stats **out, size_t cap);
/* The main thread's counter block (admin endpoints count into it). */
struct st_stats *st_server_main_stats(struct st_server *srv);
/* The main thread's handle on the cache tiers; they live as long as the process. */
struct st_cache_tier *st_server_tier(struct st_server *srv);
/* The TTL-tier advisor (cache/advisor.h): workers feed it, /stats reads it. */
struct st_advisor *st_server_advisor(struct st_server *srv);
/* The instance's rate-limit buckets (routes[].rate_limit), shared by its workers. */
struct st_ratelimit *st_server_ratelimit(struct st_server *srv);
/* A handle on the cache tiers for the thread that runs loop (a worker), counting into stats. */
struct st_cache_tier *st_server_worker_tier(struct st_server *srv, uv_loop_t *loop,
                                            struct st_stats *stats);
bool st_server_draining(struct st_server *srv);
/* The strategies of this build (services start from them). */
const struct st_strategy_table *st_server_strategies(struct st_server *srv);
uint64_t st_server_uptime_ms(struct st_server *srv);

/*
 * Checks a loaded config against what this build can run (strategies that
 * the table has), appending "FILE:LINE:COL: message" diagnostics. 0 or -EINVAL.
 */
int st_server_check_config(const struct st_config *cfg, const struct st_strategy_table *table,
                           struct st_diag *diag);

struct st_admin;

/*
 * What main.c wires into the server from the layers above it: the
 * strategies (which must outlive the run) and the admin listener (admin/),
 * which runs on the main thread's loop.
 */
struct st_server_wiring {
    const struct st_strategy_table *strategies;
    int (*admin_start)(uv_loop_t *loop, struct st_server *srv, const struct st_addr *addr,
                       struct st_admin **out);
    void (*admin_stop)(struct st_admin *a);
    bool takeover; /* share listen with a running strata (SO_REUSEPORT) instead of failing */
};

/*
 * Run until SIGTERM/SIGINT; takes ownership of cfg, which passed
 * st_server_check_config. Returns the process exit code (0 after a clean
 * drain, 1 when startup failed).
 */
int st_server_run(struct st_config *cfg, const struct st_server_wiring *wiring);

#endif
