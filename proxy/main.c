/*
 * main.c - the wiring: the command line (strata [-c FILE] [-b HOST:PORT] [--check]
 * [--version]) and the table of strategies handed to the server.
 */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <llhttp.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <xxhash.h>
#include <yaml.h>

#include "admin/admin.h"
#include "base/clock.h"
#include "cache/tier.h"
#include "config/config.h"
#include "core/server.h"
#include "st_build.h"
#include "strategies/strategies.h"
#include "strategies/wb_queue.h"

/* The strategies of this build, by kind: routes of a kind without one fail the config check. */
static const struct st_strategy_table strategies = {
    .kind =
        {
            [ST_STRATEGY_BYPASS] = &st_strategy_bypass,
            [ST_STRATEGY_CACHE_ASIDE] = &st_strategy_cache_aside,
            [ST_STRATEGY_WRITE_THROUGH] = &st_strategy_write_through,
            [ST_STRATEGY_WRITE_BEHIND] = &st_strategy_write_behind,
        },
};

/* --- the write-behind admin endpoints: the queue as Redis holds it, and the retry --- */

static void wb_answer(void *arg, int status, const char *json, size_t len)
{
    st_admin_reply(arg, status, json, len);
}

/* The main thread's Redis connection and the key prefix, or an answer saying there is none. */
static struct st_redis *wb_redis(struct st_server *srv, struct st_admin_reply *r,
                                 struct st_server_cfg **cfg)
{
    struct st_redis *redis = st_cache_tier_redis(st_server_tier(srv));
    if (redis) {
        *cfg = st_server_config(srv);
        return redis;
    }
    static const char msg[] = "{\"error\":\"write-behind needs redis (no redis: section)\"}\n";
    st_admin_reply(r, 404, msg, sizeof(msg) - 1);
    return NULL;
}

static void wb_status(void *arg, const char *body, size_t len, struct st_admin_reply *r)
{
    (void)body;
    (void)len;
    struct st_server_cfg *cfg;
    struct st_redis *redis = wb_redis(arg, r, &cfg);
    if (!redis)
        return;
    st_wb_status(redis, cfg->cfg->redis.prefix, st_clock_wall_ms(), wb_answer, r);
    st_server_cfg_put(cfg);
}

/* POST /write-behind/retry {"id":"<write id>"} for one dead letter, {} for all of them. */
static void wb_retry(void *arg, const char *body, size_t len, struct st_admin_reply *r)
{
    (void)len;
    struct st_server_cfg *cfg;
    struct st_redis *redis = wb_redis(arg, r, &cfg);
    if (!redis)
        return;
    struct st_sb id;
    st_sb_init(&id, 64);
    bool one = st_admin_json_string(body, "id", &id);
    st_wb_retry(redis, cfg->cfg->redis.prefix, one ? id.p : NULL, wb_answer, r);
    st_sb_finish(&id);
    st_server_cfg_put(cfg);
}

static struct st_admin_endpoint admin_endpoints[] = {
    {.path = "/write-behind", .post = false, .handle = wb_status},
    {.path = "/write-behind/retry", .post = true, .handle = wb_retry},
};

static int admin_start(uv_loop_t *loop, struct st_server *srv, const struct st_addr *addr,
                       struct st_admin **out)
{
    int rc = st_admin_start(loop, srv, addr, out);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < sizeof(admin_endpoints) / sizeof(admin_endpoints[0]); i++)
        admin_endpoints[i].arg = srv;
    st_admin_set_endpoints(*out, admin_endpoints,
                           sizeof(admin_endpoints) / sizeof(admin_endpoints[0]));
    return 0;
}


static void usage(FILE *f)
{
    fprintf(f,
            "usage: strata [-c FILE | -b HOST:PORT [-l HOST:PORT] [-a HOST:PORT]] [--check]\n"
            "              [--takeover] [-V] [-h]\n"
            "  -c, --config FILE    config file (YAML)\n"
            "  -b, --backend ADDR   no config: proxy everything to ADDR, cache-aside, ttl 60s\n"
            "  -l, --listen ADDR    with -b: listen here (default 127.0.0.1:8080)\n"
            "  -a, --admin ADDR     with -b: admin listener here (default 127.0.0.1:8081;\n"
            "                       loopback only: quick mode has no admin token)\n"
            "      --check          validate the config and exit (0 = ok)\n"
            "      --takeover       share the listen address with a running strata\n"
            "                       (SO_REUSEPORT, for a restart without downtime)\n"
            "  -V, --version        print the version, build options and libraries\n"
            "  -h, --help           print this help\n");
}

static void version(void)
{
    printf("strata %s\n", ST_VERSION);
    printf("build: jemalloc %s\n", ST_HAVE_JEMALLOC ? "yes" : "no (system allocator)");
    unsigned xxh = XXH_versionNumber();
    printf("libraries: libuv %s, llhttp %d.%d.%d, hiredis %d.%d.%d, xxhash %u.%u.%u, "
           "libyaml %s\n",
           uv_version_string(), LLHTTP_VERSION_MAJOR, LLHTTP_VERSION_MINOR,
           LLHTTP_VERSION_PATCH, HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH, xxh / 10000,
           xxh / 100 % 100, xxh % 100, yaml_get_version_string());
}

/* -l / -a in quick mode: replace *a with addr, or say why not. */
static int set_addr(struct st_addr *a, const char *opt, const char *addr, bool loopback_only,
                    struct st_diag *diag)
{
    struct st_addr nu;
    if (st_parse_addr(addr, &nu) < 0) {
        st_diag_add(diag, "%s: bad address '%s' (want HOST:PORT, e.g. 127.0.0.1:8080)", opt, addr);
        return -EINVAL;
    }
    if (loopback_only && !st_addr_is_loopback(&nu)) {
        st_diag_add(diag, "%s: %s is not a loopback address; quick mode has no admin token "
                          "(use a config file with admin.token to listen there)",
                    opt, addr);
        st_addr_finish(&nu);
        return -EINVAL;
    }
    st_addr_finish(a);
    *a = nu;
    return 0;
}

static void print_diags(const struct st_diag *d)
{
    for (size_t i = 0; i < d->n; i++)
        fprintf(stderr, "%s\n", d->lines[i]);
}

struct cli {
    const char *file, *backend, *listen, *admin;
    bool check, takeover;
};

/* Parse argv into cli; returns -1 to go on, else the exit code. */
static int parse_cli(int argc, char **argv, struct cli *o)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"backend", required_argument, NULL, 'b'},
        {"listen", required_argument, NULL, 'l'}, {"admin", required_argument, NULL, 'a'},
        {"check", no_argument, NULL, 'k'},        {"takeover", no_argument, NULL, 't'},
        {"version", no_argument, NULL, 'V'},      {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "c:b:l:a:Vh", opts, NULL)) != -1) {
        switch (opt) {
        case 'c': o->file = optarg; break;
        case 'b': o->backend = optarg; break;
        case 'l': o->listen = optarg; break;
        case 'a': o->admin = optarg; break;
        case 'k': o->check = true; break;
        case 't': o->takeover = true; break;
        case 'V': version(); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc || (o->file && o->backend) || (!o->file && !o->backend) ||
        (o->file && (o->listen || o->admin))) {
        usage(stderr);
        return 2;
    }
    return -1;
}

static int load(const struct cli *o, struct st_config **cfg, struct st_diag *diag)
{
    if (o->file)
        return st_config_load_file(o->file, cfg, diag);
    int rc = st_config_from_backend(o->backend, cfg, diag);
    if (rc == 0 && o->listen)
        rc = set_addr(&(*cfg)->listen, "-l", o->listen, false, diag);
    if (rc == 0 && o->admin)
        rc = set_addr(&(*cfg)->admin_listen, "-a", o->admin, true, diag);
    return rc;
}

int main(int argc, char **argv)
{
    struct cli o = {0};
    int exit_code = parse_cli(argc, argv, &o);
    if (exit_code >= 0)
        return exit_code;
    struct st_diag diag = {0};
    struct st_config *cfg = NULL;
    int rc = load(&o, &cfg, &diag);
    if (rc == 0)
        rc = st_server_check_config(cfg, &strategies, &diag);
    if (rc < 0) {
        print_diags(&diag);
        st_diag_finish(&diag);
        st_config_destroy(cfg);
        return 1;
    }
    st_diag_finish(&diag);
    if (o.check) {
        printf("ok\n");
        st_config_destroy(cfg);
        return 0;
    }
    const struct st_server_wiring wiring = {
        .strategies = &strategies,
        .admin_start = admin_start,
        .admin_stop = st_admin_stop,
        .takeover = o.takeover,
    };
    return st_server_run(cfg, &wiring);
}
