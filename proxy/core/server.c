/*
 * server.c - process lifecycle: listeners, workers, signals, reload, drain.
 *
 * Threads: the main thread runs a loop with the signal handlers and the
 * admin listener; each worker runs its own loop (worker.c). The only state
 * shared with workers is the current config reference (under `lock`, taken
 * at reload and when a worker picks the new config up), the open-connection
 * count for max_connections (an atomic touched at accept and close, never
 * per request) and each worker's counter block (read-only here).
 */
#include "core/server.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "cache/advisor.h"
#include "cache/l2tier.h"
#include "cache/memtier.h"
#include "base/log.h"
#include "st_build.h"
#include "core/iplimit.h"
#include "core/ratelimit.h"
#include "origin/breaker.h"
#include "origin/health.h"
#include "origin/servers.h"
#include "core/worker.h"

/* Stats slots by name: counters keep their meaning across reloads. */
struct slot_registry {
    char *names[ST_MAX_ROUTE_SLOTS]; /* owned */
    unsigned n, max;
};

struct st_server {
    uv_loop_t *loop;
    struct st_cache_tier *tier; /* the main thread's handle (the memory tier, or st_l2_main) */
    struct st_l2 *l2;           /* owned; NULL without redis */
    const struct st_server_wiring *wiring;
    struct st_stats *main_stats; /* owned; written by the main thread only */
    struct slot_registry route_slots, tier_slots, upstream_slots;
    uv_mutex_t lock;
    struct st_server_cfg *current; /* one reference held; under lock */
    struct st_worker *workers;  /* owned array */
    unsigned n_workers;
    struct st_admin *admin;
    uv_signal_t sighup, sigterm, sigint, sigusr1;
    uv_timer_t release; /* st_alloc_release every ST_ALLOC_RELEASE_MS */
    _Atomic long open_conns;
    _Atomic long max_conns;
    _Atomic uint64_t max_per_ip; /* 0: no limit */
    struct st_iplimit per_ip;    /* open connections per client address */
    struct st_ratelimit *ratelimit; /* owned */
    struct st_advisor *advisor;     /* owned; each worker's feed is the worker's */
    _Atomic bool draining;
    uint64_t started_ms;
};

/* Main thread: a generation for cfg, its upstreams' names resolved (see health.h). */
static struct st_server_cfg *cfg_ref_new(struct st_server *srv, struct st_config *cfg)
{
    struct st_server_cfg *r = st_xmalloc(sizeof(*r));
    atomic_init(&r->refs, 1);
    r->cfg = cfg;
    size_t n = cfg->n_upstreams ? cfg->n_upstreams : 1;
    r->breakers = st_xcalloc(n, sizeof(*r->breakers));
    r->servers = st_xcalloc(n, sizeof(*r->servers));
    r->watches = st_xcalloc(n, sizeof(*r->watches));
    for (size_t i = 0; i < cfg->n_upstreams; i++) {
        r->breakers[i] = st_breaker_create(&cfg->upstreams[i]);
        r->servers[i] = st_servers_create(&cfg->upstreams[i]);
        r->watches[i] = st_origin_watch_start(srv->loop, &cfg->upstreams[i], r->servers[i]);
    }
    return r;
}

/* Main thread: the generation is no longer current; its watches stop. */
static void cfg_retire(struct st_server_cfg *r)
{
    for (size_t i = 0; i < r->cfg->n_upstreams; i++) {
        st_origin_watch_stop(r->watches[i]);
        r->watches[i] = NULL;
    }
}

void st_server_cfg_put(struct st_server_cfg *r)
{
    if (atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) == 1) {
        for (size_t i = 0; i < r->cfg->n_upstreams; i++) {
            st_breaker_destroy(r->breakers[i]);
            st_servers_unref(r->servers[i]);
        }
        free(r->breakers);
        free(r->servers);
        free(r->watches);
        st_config_destroy(r->cfg);
        free(r);
    }
}

struct st_server_cfg *st_server_config(struct st_server *srv)
{
    uv_mutex_lock(&srv->lock);
    struct st_server_cfg *r = srv->current;
    atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
    uv_mutex_unlock(&srv->lock);
    return r;
}

bool st_server_conn_opened(struct st_server *srv, const char *client_ip)
{
    long n = atomic_fetch_add_explicit(&srv->open_conns, 1, memory_order_relaxed) + 1;
    bool ok = n <= atomic_load_explicit(&srv->max_conns, memory_order_relaxed);
    if (client_ip[0] &&
        !st_iplimit_open(&srv->per_ip, client_ip,
                         atomic_load_explicit(&srv->max_per_ip, memory_order_relaxed)))
        ok = false;
    return ok;
}

void st_server_conn_closed(struct st_server *srv, const char *client_ip)
{
    atomic_fetch_sub_explicit(&srv->open_conns, 1, memory_order_relaxed);
    if (client_ip[0])
        st_iplimit_close(&srv->per_ip, client_ip);
}

size_t st_server_stat_blocks(struct st_server *srv, struct st_stats **out, size_t cap)
{
    size_t n = 0;
    for (unsigned i = 0; i < srv->n_workers && n < cap; i++)
        out[n++] = &srv->workers[i].stats;
    if (n < cap)
        out[n++] = srv->main_stats;
    return n;
}

struct st_stats *st_server_main_stats(struct st_server *srv)
{
    return srv->main_stats;
}

const struct st_strategy_table *st_server_strategies(struct st_server *srv)
{
    return srv->wiring->strategies;
}

struct st_ratelimit *st_server_ratelimit(struct st_server *srv)
{
    return srv->ratelimit;
}

struct st_advisor *st_server_advisor(struct st_server *srv)
{
    return srv->advisor;
}

struct st_cache_tier *st_server_tier(struct st_server *srv)
{
    return srv->tier;
}

struct st_cache_tier *st_server_worker_tier(struct st_server *srv, uv_loop_t *loop,
                                            struct st_stats *stats)
{
    return srv->l2 ? st_l2_handle(srv->l2, loop, stats) : srv->tier;
}

/* The longest an origin fetch may take: the cross-instance lock's lease. */
static uint64_t fetch_bound_ms(const struct st_config *cfg)
{
    uint64_t max = 0;
    for (size_t i = 0; i < cfg->n_upstreams; i++) {
        uint64_t t = cfg->upstreams[i].connect_timeout_ms + cfg->upstreams[i].timeout_ms;
        max = t > max ? t : max;
    }
    return max;
}

static void create_tiers(struct st_server *srv, const struct st_config *cfg)
{
    struct st_cache_tier *l1 = st_memtier_create(cfg->cache_memory, cfg->cache_max_object);
    if (!cfg->redis.enabled) {
        srv->tier = l1;
        return;
    }
    struct st_l2_opts o = {
        .redis = &cfg->redis,
        .lease_ms = fetch_bound_ms(cfg),
        .main_stats = srv->main_stats,
    };
    srv->l2 = st_l2_create(srv->loop, l1, &o);
    srv->tier = st_l2_main(srv->l2);
}


/* The slot of a name, assigned on first sight; the last slot is shared by any overflow. */
static unsigned slot_for(struct slot_registry *r, const char *name)
{
    for (unsigned i = 0; i < r->n; i++)
        if (strcmp(r->names[i], name) == 0)
            return i;
    if (r->n == r->max - 1) {
        st_log(ST_LOG_WARN, "stats", NULL, "more than %u names: '%s' shares the last slot",
               r->max - 1, name);
        return r->max - 1;
    }
    r->names[r->n] = st_xstrdup(name);
    return r->n++;
}

static void assign_slots(struct st_server *srv, struct st_config *cfg)
{
    for (size_t i = 0; i < cfg->n_routes; i++) {
        cfg->routes[i].stats_slot = slot_for(&srv->route_slots, cfg->routes[i].id);
        cfg->routes[i].impl = srv->wiring->strategies->kind[cfg->routes[i].strategy];
    }
    for (size_t i = 0; i < cfg->n_tiers; i++)
        cfg->tiers[i].stats_slot = slot_for(&srv->tier_slots, cfg->tiers[i].name);
    for (size_t i = 0; i < cfg->n_upstreams; i++)
        cfg->upstreams[i].stats_slot = slot_for(&srv->upstream_slots, cfg->upstreams[i].name);
}

/* The tiers the advisor replays: the config's, in its order. */
static void advisor_tiers(struct st_server *srv, const struct st_config *cfg)
{
    struct st_advisor_tier t[ST_ADVISOR_MAX_TIERS];
    size_t n = cfg->n_tiers < ST_ADVISOR_MAX_TIERS ? cfg->n_tiers : ST_ADVISOR_MAX_TIERS;
    for (size_t i = 0; i < n; i++)
        t[i] = (struct st_advisor_tier){.ttl_ms = (int64_t)cfg->tiers[i].ttl_ms,
                                        .swr_ms = (int64_t)cfg->tiers[i].stale_while_revalidate_ms};
    st_advisor_set_tiers(srv->advisor, t, n);
}

static void registry_finish(struct slot_registry *r)
{
    for (unsigned i = 0; i < r->n; i++)
        free(r->names[i]);
}

bool st_server_draining(struct st_server *srv)
{
    return atomic_load(&srv->draining);
}

uint64_t st_server_uptime_ms(struct st_server *srv)
{
    return uv_now(srv->loop) - srv->started_ms;
}

int st_server_check_config(const struct st_config *cfg, const struct st_strategy_table *table,
                           struct st_diag *diag)
{
    int rc = 0;
    for (size_t i = 0; i < cfg->n_routes; i++) {
        const struct st_route_cfg *r = &cfg->routes[i];
        if (table->kind[r->strategy])
            continue;
        st_diag_add(diag, "%s:%u:1: strategy '%s' is not available in this version of strata",
                    cfg->path ? cfg->path : "-b", r->line, st_strategy_name(r->strategy));
        rc = -EINVAL;
    }
    return rc;
}

/*
 * A socket bound to a (not listening yet): with reuseport, one that several
 * workers can each bind (SO_REUSEPORT); without, one that fails with
 * -EADDRINUSE while anyone listens there, another strata included.
 */
static int bind_addr(const struct st_addr *a, bool reuseport)
{
    int fd = socket(a->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if ((reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) ||
        bind(fd, (const struct sockaddr *)&a->sa, a->len) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

static void log_diags(const struct st_diag *d)
{
    for (size_t i = 0; i < d->n; i++)
        st_log(ST_LOG_ERROR, "config", NULL, "%s", d->lines[i]);
}

/* One line per key whose new value only a restart applies (and only when it changed). */
static void warn_restart_only(const struct st_config *old, const struct st_config *nu)
{
    if (strcmp(old->listen.text, nu->listen.text) != 0)
        st_log(ST_LOG_WARN, "config", NULL, "listen: %s keeps running until a restart (new: %s)",
               old->listen.text, nu->listen.text);
    if (strcmp(old->admin_listen.text, nu->admin_listen.text) != 0)
        st_log(ST_LOG_WARN, "config", NULL,
               "admin.listen: %s keeps running until a restart (new: %s)", old->admin_listen.text,
               nu->admin_listen.text);
    if (old->workers != nu->workers)
        st_log(ST_LOG_WARN, "config", NULL, "workers: %u keep running until a restart (new: %u)",
               old->workers, nu->workers);
    if (old->cache_memory != nu->cache_memory)
        st_log(ST_LOG_WARN, "config", NULL,
               "cache.memory: %llu bytes stay until a restart (new: %llu)",
               (unsigned long long)old->cache_memory, (unsigned long long)nu->cache_memory);
    if (strcmp(old->redis.url ? old->redis.url : "", nu->redis.url ? nu->redis.url : "") ||
        old->redis.enabled != nu->redis.enabled)
        st_log(ST_LOG_WARN, "config", NULL, "redis: the running Redis tier stays until a restart");
    if (old->cache_max_object != nu->cache_max_object)
        st_log(ST_LOG_WARN, "config", NULL,
               "cache.max_object: %llu bytes stay until a restart (new: %llu)",
               (unsigned long long)old->cache_max_object,
               (unsigned long long)nu->cache_max_object);
}

/* log.file (empty or absent: stderr), opened again. 0 or -errno (the log stays where it was). */
static int open_log(const struct st_config *cfg)
{
    const char *path = cfg->log_file && cfg->log_file[0] ? cfg->log_file : NULL;
    int rc = st_log_file(path);
    if (rc < 0)
        st_log(ST_LOG_ERROR, "server", NULL, "log.file %s: %s", path, strerror(-rc));
    return rc;
}

static void reload(struct st_server *srv)
{
    struct st_server_cfg *cur = st_server_config(srv);
    const char *path = cur->cfg->path;
    if (!path) {
        st_log(ST_LOG_WARN, "config", NULL, "SIGHUP ignored: running without a config file");
        st_server_cfg_put(cur);
        return;
    }
    struct st_diag diag = {0};
    struct st_config *cfg = NULL;
    int rc = st_config_load_file(path, &cfg, &diag);
    if (rc == 0)
        rc = st_server_check_config(cfg, srv->wiring->strategies, &diag);
    if (rc < 0) {
        log_diags(&diag);
        st_log(ST_LOG_ERROR, "config", NULL, "reload of %s failed; the running config stays",
               path);
        st_config_destroy(cfg);
        st_diag_finish(&diag);
        st_server_cfg_put(cur);
        return;
    }
    st_diag_finish(&diag);
    if (open_log(cfg) < 0) {
        st_log(ST_LOG_ERROR, "config", NULL, "reload of %s failed; the running config stays",
               path);
        st_config_destroy(cfg);
        st_server_cfg_put(cur);
        return;
    }
    warn_restart_only(cur->cfg, cfg);
    st_server_cfg_put(cur);
    st_log_setup(cfg->log_format, ST_LOG_INFO);
    atomic_store(&srv->max_conns, (long)cfg->limits.max_connections);
    atomic_store(&srv->max_per_ip, cfg->limits.max_connections_per_ip);
    assign_slots(srv, cfg);
    advisor_tiers(srv, cfg);
    struct st_server_cfg *nu = cfg_ref_new(srv, cfg);
    uv_mutex_lock(&srv->lock);
    struct st_server_cfg *old = srv->current;
    srv->current = nu;
    uv_mutex_unlock(&srv->lock);
    cfg_retire(old);
    st_server_cfg_put(old);
    for (unsigned i = 0; i < srv->n_workers; i++)
        st_worker_notify_reload(&srv->workers[i]);
    /* Not `path`: it belongs to the old config, which a worker may have freed by now. */
    st_log(ST_LOG_INFO, "config", NULL, "reloaded %s", cfg->path);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct st_server *srv = h->data;
    if (signum == SIGHUP) {
        reload(srv);
        return;
    }
    if (signum == SIGUSR1) { /* logrotate moved the file: start a new one */
        struct st_server_cfg *cur = st_server_config(srv);
        if (open_log(cur->cfg) == 0)
            st_log(ST_LOG_INFO, "server", NULL, "SIGUSR1: log file reopened");
        st_server_cfg_put(cur);
        return;
    }
    if (atomic_exchange(&srv->draining, true))
        return;
    st_log(ST_LOG_INFO, "server", NULL, "%s: draining and stopping",
           signum == SIGTERM ? "SIGTERM" : "SIGINT");
    for (unsigned i = 0; i < srv->n_workers; i++)
        st_worker_notify_stop(&srv->workers[i]);
    if (srv->admin)
        srv->wiring->admin_stop(srv->admin);
    srv->admin = NULL;
    st_l2_close(srv->l2); /* the main loop's Redis connections; workers keep theirs to the end */
    cfg_retire(srv->current);
    uv_close((uv_handle_t *)&srv->sighup, NULL);
    uv_close((uv_handle_t *)&srv->sigterm, NULL);
    uv_close((uv_handle_t *)&srv->sigint, NULL);
    uv_close((uv_handle_t *)&srv->sigusr1, NULL);
    uv_close((uv_handle_t *)&srv->release, NULL);
}

static int start_workers(struct st_server *srv, const struct st_config *cfg)
{
    srv->n_workers = cfg->workers ? cfg->workers : 1;
    srv->workers = st_xcalloc(srv->n_workers, sizeof(*srv->workers));
    /* SO_REUSEPORT would let a second strata share the port silently: refuse, unless asked. */
    if (!srv->wiring->takeover) {
        int probe = bind_addr(&cfg->listen, false);
        if (probe < 0) {
            st_log(ST_LOG_ERROR, "server", NULL,
                   "listen %s: %s (is another strata running? --takeover shares the port "
                   "with it)",
                   cfg->listen.text, strerror(-probe));
            srv->n_workers = 0;
            return probe;
        }
        close(probe);
    }
    int fds[srv->n_workers];
    for (unsigned i = 0; i < srv->n_workers; i++) {
        fds[i] = bind_addr(&cfg->listen, true);
        if (fds[i] < 0) {
            st_log(ST_LOG_ERROR, "server", NULL, "listen %s: %s", cfg->listen.text,
                   strerror(-fds[i]));
            for (unsigned j = 0; j < i; j++)
                close(fds[j]);
            srv->n_workers = 0;
            return fds[i];
        }
    }
    for (unsigned i = 0; i < srv->n_workers; i++) {
        int rc = st_worker_start(&srv->workers[i], srv, i, fds[i]);
        if (rc < 0) {
            st_log(ST_LOG_ERROR, "server", NULL, "worker %u: %s", i, uv_strerror(rc));
            abort(); /* half-started threads cannot be unwound cleanly */
        }
    }
    return 0;
}

static void on_release(uv_timer_t *t)
{
    (void)t;
    st_alloc_release();
}

static void watch_signals(struct st_server *srv)
{
    uv_timer_init(srv->loop, &srv->release);
    uv_timer_start(&srv->release, on_release, ST_ALLOC_RELEASE_MS, ST_ALLOC_RELEASE_MS);
    uv_signal_t *hs[] = {&srv->sighup, &srv->sigterm, &srv->sigint, &srv->sigusr1};
    int sigs[] = {SIGHUP, SIGTERM, SIGINT, SIGUSR1};
    for (int i = 0; i < 4; i++) {
        uv_signal_init(srv->loop, hs[i]);
        hs[i]->data = srv;
        uv_signal_start(hs[i], on_signal, sigs[i]);
    }
}

static void server_finish(struct st_server *srv)
{
    st_wreq_cache_drain();
    if (srv->l2)
        st_l2_destroy(srv->l2);
    else
        st_cache_tier_destroy(srv->tier);
    free(srv->main_stats);
    registry_finish(&srv->route_slots);
    registry_finish(&srv->tier_slots);
    registry_finish(&srv->upstream_slots);
    st_iplimit_finish(&srv->per_ip);
    st_ratelimit_destroy(srv->ratelimit);
    st_advisor_destroy(srv->advisor);
    uv_mutex_destroy(&srv->lock);
}

int st_server_run(struct st_config *cfg, const struct st_server_wiring *wiring)
{
    struct st_server srv;
    memset(&srv, 0, sizeof(srv));
    srv.wiring = wiring;
    signal(SIGPIPE, SIG_IGN);
    st_log_setup(cfg->log_format, ST_LOG_INFO);
    if (open_log(cfg) < 0)
        return 1;
    srv.loop = uv_default_loop();
    srv.started_ms = uv_now(srv.loop);
    srv.route_slots.max = ST_MAX_ROUTE_SLOTS;
    srv.tier_slots.max = ST_MAX_TIER_SLOTS;
    srv.upstream_slots.max = ST_MAX_UPSTREAM_SLOTS;
    assign_slots(&srv, cfg);
    srv.main_stats = st_xcalloc(1, sizeof(*srv.main_stats));
    create_tiers(&srv, cfg);
    uv_mutex_init(&srv.lock);
    srv.current = cfg_ref_new(&srv, cfg);
    atomic_store(&srv.max_conns, (long)cfg->limits.max_connections);
    atomic_store(&srv.max_per_ip, cfg->limits.max_connections_per_ip);
    st_iplimit_init(&srv.per_ip);
    srv.ratelimit = st_ratelimit_create();
    srv.advisor = st_advisor_create();
    advisor_tiers(&srv, cfg);

    int rc = wiring->admin_start(srv.loop, &srv, &cfg->admin_listen, &srv.admin);
    if (rc < 0) {
        st_log(ST_LOG_ERROR, "server", NULL, "admin listen %s: %s", cfg->admin_listen.text,
               uv_strerror(rc));
        st_l2_close(srv.l2);
        cfg_retire(srv.current);
        uv_run(srv.loop, UV_RUN_DEFAULT);
        st_server_cfg_put(srv.current);
        server_finish(&srv);
        return 1;
    }
    if (start_workers(&srv, cfg) < 0) {
        wiring->admin_stop(srv.admin);
        st_l2_close(srv.l2);
        cfg_retire(srv.current);
        uv_run(srv.loop, UV_RUN_DEFAULT);
        st_server_cfg_put(srv.current);
        free(srv.workers);
        server_finish(&srv);
        return 1;
    }
    watch_signals(&srv);
    st_log(ST_LOG_INFO, "server", NULL, "strata %s listening on %s (admin %s), %u worker%s",
           ST_VERSION, cfg->listen.text, cfg->admin_listen.text, srv.n_workers,
           srv.n_workers == 1 ? "" : "s");
    uv_run(srv.loop, UV_RUN_DEFAULT);
    for (unsigned i = 0; i < srv.n_workers; i++) {
        st_worker_join(&srv.workers[i]);
        st_advisor_feed_destroy(srv.workers[i].ctx.advisor);
    }
    st_log(ST_LOG_INFO, "server", NULL, "stopped");
    uv_loop_close(srv.loop);
    st_server_cfg_put(srv.current);
    for (unsigned i = 0; i < srv.n_workers; i++)
        uv_mutex_destroy(&srv.workers[i].wake_lock);
    free(srv.workers);
    server_finish(&srv);
    return 0;
}
