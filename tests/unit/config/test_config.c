/*
 * test_config.c - config loading: every error kind at its exact
 * FILE:LINE:COL, several errors in one load, defaults, the full schema,
 * ${VAR} expansion in a file, redis urls, the -b quick mode and the shipped
 * example configs (the unit parsers have test_units.c).
 *
 * Run it under ASan/LSan: every test frees what it loads, so a leak on any
 * load path (good or bad) fails the run.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "config/config.h"

#ifndef ST_SOURCE_ROOT
#error "build with -DST_SOURCE_ROOT='\"/path/to/strata\"' (tests/unit/meson.build does)"
#endif

/* A valid skeleton: lines 1-6. Error cases append from line 7. */
#define UPS "upstreams:\n  u: { servers: [\"127.0.0.1:9000\"] }\n"
#define TIERS "tiers:\n  t: { ttl: 1s }\n"
#define ROUTE "routes:\n  - { match: \"/*\", upstream: u, strategy: bypass }\n"
#define OK UPS TIERS ROUTE

static int load(const char *yaml, struct st_config **cfg, struct st_diag *d)
{
    return st_config_load_string("t.yaml", yaml, strlen(yaml), cfg, d);
}

static void dump(const struct st_diag *d)
{
    for (size_t i = 0; i < d->n; i++)
        print_error("  diag[%zu]: %s\n", i, d->lines[i]);
}

/* Loads yaml, which must fail with exactly the NULL-terminated list of diagnostics. */
static void expect_diags(const char *yaml, const char *const *want)
{
    struct st_config *cfg = (struct st_config *)1;
    struct st_diag d = {0};
    size_t n = 0;
    int rc = load(yaml, &cfg, &d);
    while (want[n])
        n++;
    if (rc != -EINVAL || d.n != n)
        dump(&d);
    assert_int_equal(rc, -EINVAL);
    assert_null(cfg);
    assert_int_equal(d.n, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(d.lines[i], want[i]);
    st_diag_finish(&d);
    assert_int_equal(d.n, 0);
}

static void expect_diag(const char *yaml, const char *want)
{
    const char *const list[] = {want, NULL};
    expect_diags(yaml, list);
}

static struct st_config *expect_ok(const char *yaml)
{
    struct st_config *cfg = NULL;
    struct st_diag d = {0};
    int rc = load(yaml, &cfg, &d);
    if (rc != 0)
        dump(&d);
    assert_int_equal(rc, 0);
    assert_int_equal(d.n, 0);
    assert_non_null(cfg);
    return cfg;
}

struct err_case {
    const char *name;
    const char *yaml;
    const char *diag;
};

#define DUR_HINT " (expected e.g. 250ms, 10s, 3m, 1h)"
#define SIZE_HINT " (expected e.g. 512B, 32KiB, 256MiB, 1GiB)"
#define ADDR_HINT " (expected HOST:PORT with a numeric IPv4, [IPv6] or localhost, port 1..65535)"
#define SERVER_HINT " (expected HOST:PORT with a host name, a numeric IPv4 or [IPv6], port 1..65535)"

static const struct err_case err_cases[] = {
    {"yaml syntax", OK "limits: { max_body: [1MiB }\n",
     "t.yaml:7:27: YAML syntax error: did not find expected ',' or ']' (while parsing a flow "
     "sequence started at line 7)"},
    {"tab indentation", OK "limits:\n\tmax_body: 1MiB\n",
     "t.yaml:8:1: YAML syntax error: found character that cannot start any token (while "
     "scanning for the next token started at line 8)"},
    {"unknown top-level key", OK "bogus: 1\n", "t.yaml:7:1: unknown key 'bogus' in the top level"},
    {"top level not a mapping", "- a\n- b\n",
     "t.yaml:1:1: expected a mapping for the top level, got a list"},
    {"section not a mapping", OK "limits: 5\n",
     "t.yaml:7:9: expected a mapping for limits, got a scalar"},
    {"section is a list", OK "admin: [a]\n",
     "t.yaml:7:8: expected a mapping for admin, got a list"},
    {"scalar expected", OK "listen: [1]\n", "t.yaml:7:9: expected a scalar for listen, got a list"},
    {"unknown key in section", OK "limits:\n  max_bodyy: 1MiB\n",
     "t.yaml:8:3: unknown key 'max_bodyy' in limits"},
    {"duplicate top-level key", OK "workers: 2\nworkers: 3\n",
     "t.yaml:8:1: duplicate key 'workers' in the top level (first at line 7)"},
    {"duplicate key in flow mapping", OK "log: { access: true, access: false }\n",
     "t.yaml:7:22: duplicate key 'access' in log (first at line 7)"},
    {"bad duration", OK "limits: { idle_timeout: 5x }\n",
     "t.yaml:7:25: bad duration '5x' for idle_timeout" DUR_HINT},
    {"fractional duration", OK "limits: { header_timeout: 1.5s }\n",
     "t.yaml:7:27: bad duration '1.5s' for header_timeout" DUR_HINT},
    {"duration without unit", OK "limits: { header_timeout: 10 }\n",
     "t.yaml:7:27: bad duration '10' for header_timeout" DUR_HINT},
    {"duration overflow", OK "limits: { header_timeout: 18446744073709551615s }\n",
     "t.yaml:7:27: bad duration '18446744073709551615s' for header_timeout" DUR_HINT},
    {"bad size unit", OK "cache: { memory: 1GB }\n",
     "t.yaml:7:18: bad size '1GB' for memory" SIZE_HINT},
    {"negative size", OK "limits: { max_body: -1KiB }\n",
     "t.yaml:7:21: bad size '-1KiB' for max_body" SIZE_HINT},
    {"size with space", OK "limits: { max_body: \"1 KiB\" }\n",
     "t.yaml:7:21: bad size '1 KiB' for max_body" SIZE_HINT},
    {"bad percent", UPS ROUTE "tiers:\n  t: { ttl: 1s, jitter: 101% }\n",
     "t.yaml:6:25: bad percent '101%' for jitter (expected 0..100, e.g. 10%)"},
    {"bad number", OK "limits: { max_connections: 1e4 }\n",
     "t.yaml:7:28: bad number '1e4' for max_connections (expected a whole number "
     "0..18446744073709551615)"},
    {"too many workers", OK "workers: 5000\n",
     "t.yaml:7:10: bad number '5000' for workers (expected a whole number 0..1024)"},
    {"bad bool", OK "log: { access: yes }\n",
     "t.yaml:7:16: expected true or false for access, got 'yes'"},
    {"bad log format", OK "log: { format: xml }\n",
     "t.yaml:7:16: unknown format 'xml' (expected text or json)"},
    {"bad listen address", OK "listen: \"1.2.3.4\"\n",
     "t.yaml:7:9: bad address '1.2.3.4' for listen" ADDR_HINT},
    {"port zero", OK "listen: \"127.0.0.1:0\"\n",
     "t.yaml:7:9: bad address '127.0.0.1:0' for listen" ADDR_HINT},
    {"hostname needs dns", OK "admin: { listen: \"example.com:80\" }\n",
     "t.yaml:7:18: bad address 'example.com:80' for listen" ADDR_HINT},
    {"bad server address", TIERS ROUTE "upstreams:\n  u: { servers: [\"127.0.0.1:9000\", x] }\n",
     "t.yaml:6:36: bad address 'x' for servers" SERVER_HINT},
    {"malformed IPv4 is not a name", TIERS ROUTE "upstreams:\n  u: { servers: [\"10.0.0.256:80\"] }\n",
     "t.yaml:6:18: bad address '10.0.0.256:80' for servers" SERVER_HINT},
    {"host name with a space", TIERS ROUTE "upstreams:\n  u: { servers: [\"my host:80\"] }\n",
     "t.yaml:6:18: bad address 'my host:80' for servers" SERVER_HINT},
    {"resolve_every zero",
     TIERS ROUTE "upstreams:\n  u: { servers: [\"api:80\"], resolve_every: 0 }\n",
     "t.yaml:6:44: upstreams.u.resolve_every must be above 0"},
    {"health path",
     TIERS ROUTE "upstreams:\n  u: { servers: [\"api:80\"], health: { path: ping } }\n",
     "t.yaml:6:37: upstreams.u.health.path must start with '/'"},
    {"health zero fails",
     TIERS ROUTE "upstreams:\n  u: { servers: [\"api:80\"], health: { fails: 0 } }\n",
     "t.yaml:6:37: upstreams.u.health: interval, timeout, fails and passes must be above 0"},
    {"unknown health key",
     TIERS ROUTE "upstreams:\n  u: { servers: [\"api:80\"], health: { port: 1 } }\n",
     "t.yaml:6:39: unknown key 'port' in upstreams.u.health"},
    {"empty servers", TIERS ROUTE "upstreams:\n  u: { servers: [] }\n",
     "t.yaml:6:17: servers must list at least one HOST:PORT"},
    {"missing servers", TIERS ROUTE "upstreams:\n  u: { keepalive: 2 }\n",
     "t.yaml:6:3: missing required key 'servers' in upstreams.u"},
    {"unknown upstream key",
     TIERS ROUTE "upstreams:\n  u: { servers: [\"127.0.0.1:1\"], tls: 1 }\n",
     "t.yaml:6:34: unknown key 'tls' in upstreams.u"},
    {"tier without ttl", UPS ROUTE "tiers:\n  t: { jitter: 5% }\n",
     "t.yaml:6:3: missing required key 'ttl' in tiers.t"},
    {"duplicate tier", UPS ROUTE "tiers:\n  t: { ttl: 1s }\n  t: { ttl: 2s }\n",
     "t.yaml:7:3: duplicate key 't' in tiers (first at line 6)"},
    {"max_object > memory", OK "cache:\n  memory: 1MiB\n  max_object: 2MiB\n",
     "t.yaml:9:15: cache.max_object (2097152 bytes) is larger than cache.memory (1048576 bytes)"},
    {"memory below default max_object", OK "cache: { memory: 512KiB }\n",
     "t.yaml:7:18: cache.max_object (1048576 bytes) is larger than cache.memory (524288 bytes)"},
    {"unset variable", OK "admin: { token: \"x${ST_TEST_UNSET_VAR}\" }\n",
     "t.yaml:7:19: environment variable 'ST_TEST_UNSET_VAR' is not set (write "
     "${ST_TEST_UNSET_VAR:-default} to allow that)"},
    {"unset variable, plain scalar", OK "listen: 127.0.0.1:${ST_TEST_UNSET_PORT}\n",
     "t.yaml:7:19: environment variable 'ST_TEST_UNSET_PORT' is not set (write "
     "${ST_TEST_UNSET_PORT:-default} to allow that)"},
    {"malformed variable", OK "listen: \"${1BAD}\"\n",
     "t.yaml:7:10: bad variable reference in listen (expected ${NAME} or ${NAME:-default})"},
    {"no routes key", UPS TIERS, "t.yaml:1:1: no routes defined"},
    {"empty routes", UPS TIERS "routes: []\n", "t.yaml:5:9: no routes defined"},
    {"routes not a list", UPS TIERS "routes: { match: /x }\n",
     "t.yaml:5:9: expected a list for routes, got a mapping"},
    {"route not a mapping", UPS TIERS "routes:\n  - /x\n",
     "t.yaml:6:5: expected a mapping for routes[0], got a scalar"},
    {"empty route", UPS TIERS "routes:\n  -\n", "t.yaml:6:4: routes[0] is empty"},
    {"unknown route key",
     UPS TIERS "routes:\n  - { match: /a, upstream: u, strategy: bypass }\n"
               "  - { match: /b, upstream: u, strategy: bypass, cache: yes }\n",
     "t.yaml:7:49: unknown key 'cache' in routes[1]"},
    {"undefined upstream",
     UPS TIERS "routes:\n  - { match: /a, upstream: nope, strategy: bypass }\n",
     "t.yaml:6:28: undefined upstream 'nope' (not in upstreams)"},
    {"undefined tier",
     UPS TIERS "routes:\n  - { match: /a, upstream: u, strategy: cache-aside, tier: warm }\n",
     "t.yaml:6:60: undefined tier 'warm' (not in tiers)"},
    {"bad pattern", UPS TIERS "routes:\n  - { match: \"/a/{id\", upstream: u, strategy: bypass }\n",
     "t.yaml:6:14: bad pattern '/a/{id': '{' without '}'"},
    {"pattern without slash",
     UPS TIERS "routes:\n  - { match: api, upstream: u, strategy: bypass }\n",
     "t.yaml:6:14: bad pattern 'api': pattern must start with '/'"},
    {"unknown strategy", UPS TIERS "routes:\n  - { match: /a, upstream: u, strategy: lru }\n",
     "t.yaml:6:41: unknown strategy 'lru' (expected cache-aside, write-through, write-behind or "
     "bypass)"},
    {"unknown method",
     UPS TIERS "routes:\n  - { match: /a, upstream: u, strategy: bypass, methods: [GET, get] }\n",
     "t.yaml:6:64: unknown method 'get' (expected GET, HEAD, POST, PUT, PATCH, DELETE or "
     "OPTIONS)"},
    {"methods not a list",
     UPS TIERS "routes:\n  - { match: /a, upstream: u, strategy: bypass, methods: GET }\n",
     "t.yaml:6:58: expected a list for methods, got a scalar"},
    {"bad ttl_source",
     UPS TIERS "routes:\n  - { match: /a, upstream: u, strategy: bypass, ttl_source: edge }\n",
     "t.yaml:6:61: unknown ttl_source 'edge' (expected origin or tier)"},
    {"missing match", UPS TIERS "routes:\n  - { upstream: u, strategy: bypass }\n",
     "t.yaml:6:5: missing required key 'match' in routes[0]"},
    {"missing upstream", UPS TIERS "routes:\n  - { match: /a, strategy: bypass }\n",
     "t.yaml:6:5: missing required key 'upstream' in routes[0]"},
    {"missing strategy", UPS TIERS "routes:\n  - { match: /a, upstream: u }\n",
     "t.yaml:6:5: missing required key 'strategy' in routes[0]"},
    {"cache-aside needs a tier",
     UPS TIERS "routes:\n  - match: /a\n    upstream: u\n    strategy: cache-aside\n",
     "t.yaml:6:5: missing required key 'tier' in routes[0] (strategy cache-aside needs a tier)"},
    {"write-through needs a tier",
     UPS TIERS "routes:\n  - { match: /a, upstream: u, strategy: write-through }\n",
     "t.yaml:6:5: missing required key 'tier' in routes[0] (strategy write-through needs a "
     "tier)"},
    {"write-behind needs redis",
     UPS TIERS
     "routes:\n  - match: /a/{id}\n    upstream: u\n    strategy: write-behind\n    tier: t\n",
     "t.yaml:8:15: strategy write-behind needs redis (add a redis: section)"},
    {"duplicate route key",
     UPS TIERS "routes:\n  - match: /a\n    upstream: u\n    match: /b\n    strategy: bypass\n",
     "t.yaml:8:5: duplicate key 'match' in routes[0] (first at line 6)"},
    {"bad invalidates pattern",
     UPS TIERS "routes:\n  - { match: /a, upstream: u, strategy: bypass, invalidates: [/a, b] }\n",
     "t.yaml:6:67: bad invalidates pattern 'b': pattern must start with '/'"},
    {"invalidates unknown capture",
     UPS TIERS "routes:\n  - { match: \"/a/{id}\", upstream: u, strategy: bypass, invalidates: "
               "[\"/b/{x}\"] }\n",
     "t.yaml:6:70: invalidates pattern '/b/{x}' uses {x}, which match '/a/{id}' does not "
     "capture"},
    {"invalidates not a list",
     UPS TIERS "routes:\n  - { match: /a, upstream: u, strategy: bypass, invalidates: /a }\n",
     "t.yaml:6:62: expected a list for invalidates, got a scalar"},
    {"bad key.query",
     UPS TIERS "routes:\n  - { match: /a, upstream: u, strategy: bypass, key: { query: some } }\n",
     "t.yaml:6:63: unknown query 'some' (expected all, none or a list)"},
    {"unknown key.* key",
     UPS TIERS "routes:\n  - { match: /a, upstream: u, strategy: bypass, key: { vary: x } }\n",
     "t.yaml:6:56: unknown key 'vary' in routes[0].key"},
    {"bad write_behind key",
     UPS TIERS "routes:\n  - match: /a\n    upstream: u\n    strategy: bypass\n"
               "    write_behind: { flush_delay: 1s, retries: 3 }\n",
     "t.yaml:9:38: unknown key 'retries' in routes[0].write_behind"},
    {"empty host",
     UPS TIERS "routes:\n  - { match: /a, upstream: u, strategy: bypass, host: \"\" }\n",
     "t.yaml:6:55: host must not be empty (leave it out to match any host)"},
    {"bad redis url", OK "redis: { url: \"http://127.0.0.1:6379\" }\n",
     "t.yaml:7:15: bad redis url 'http://127.0.0.1:6379': it must start with redis:// (expected "
     "redis://[:password@]host:port[/db] or unix:///path.sock)"},
    {"redis url with user", OK "redis: { url: \"redis://bob:pw@h:1\" }\n",
     "t.yaml:7:15: bad redis url 'redis://bob:pw@h:1': usernames are not supported (write "
     "redis://:password@host) (expected redis://[:password@]host:port[/db] or unix:///path.sock)"},
    {"redis bad port", OK "redis: { url: \"redis://h:70000/0\" }\n",
     "t.yaml:7:15: bad redis url 'redis://h:70000/0': the port must be 1..65535 (expected "
     "redis://[:password@]host:port[/db] or unix:///path.sock)"},
    {"redis bad db", OK "redis: { url: \"redis://h:6379/x\" }\n",
     "t.yaml:7:15: bad redis url 'redis://h:6379/x': the database must be a number 0..65535 "
     "(expected redis://[:password@]host:port[/db] or unix:///path.sock)"},
    {"unknown redis key", OK "redis:\n  url: redis://h\n  pool: 3\n",
     "t.yaml:9:3: unknown key 'pool' in redis"},
    {"second document", OK "---\nlisten: \"127.0.0.1:1\"\n",
     "t.yaml:7:1: only one YAML document is allowed"},
    {"empty document", "", "t.yaml:1:1: the config is empty: no routes defined"},
    {"comment-only document", "# nothing\n", "t.yaml:1:1: the config is empty: no routes defined"},
};

/* Checks one case without aborting the table; returns false (after printing) on a mismatch. */
static bool check_case(const struct err_case *c)
{
    struct st_config *cfg = NULL;
    struct st_diag d = {0};
    int rc = load(c->yaml, &cfg, &d);
    bool ok = rc == -EINVAL && !cfg && d.n == 1 && strcmp(d.lines[0], c->diag) == 0;
    if (!ok) {
        print_error("case '%s': rc %d, %zu diagnostics; want\n  %s\n", c->name, rc, d.n, c->diag);
        dump(&d);
    }
    st_config_destroy(cfg);
    st_diag_finish(&d);
    return ok;
}

static void test_each_error_kind(void **state)
{
    size_t failed = 0;
    (void)state;
    unsetenv("ST_TEST_UNSET_VAR");
    unsetenv("ST_TEST_UNSET_PORT");
    for (size_t i = 0; i < sizeof(err_cases) / sizeof(err_cases[0]); i++)
        failed += !check_case(&err_cases[i]);
    assert_int_equal(failed, 0);
}

static void test_many_errors_in_one_load(void **state)
{
    static const char yaml[] = "listen: \"127.0.0.1:99999\"\n"       /* 1 */
                               "workers: many\n"                     /* 2 */
                               "nonsense: 1\n"                       /* 3 */
                               "tiers:\n"                            /* 4 */
                               "  hot: { ttl: 10 }\n"                /* 5 */
                               "upstreams:\n"                        /* 6 */
                               "  u: { servers: [\"a:0\"] }\n"       /* 7 */
                               "routes:\n"                           /* 8 */
                               "  - match: /x/{id}\n"                /* 9 */
                               "    upstream: v\n"                   /* 10 */
                               "    strategy: write-behind\n"        /* 11 */
                               "    tier: cold\n"                    /* 12 */
                               "    colour: blue\n"                  /* 13 */
                               "  - { match: x, strategy: nope }\n"; /* 14 */
    static const char *const want[] = {
        "t.yaml:1:9: bad address '127.0.0.1:99999' for listen" ADDR_HINT,
        "t.yaml:2:10: bad number 'many' for workers (expected a whole number 0..1024)",
        "t.yaml:3:1: unknown key 'nonsense' in the top level",
        "t.yaml:5:15: bad duration '10' for ttl" DUR_HINT,
        "t.yaml:7:18: bad address 'a:0' for servers" SERVER_HINT,
        "t.yaml:10:15: undefined upstream 'v' (not in upstreams)",
        "t.yaml:11:15: strategy write-behind needs redis (add a redis: section)",
        "t.yaml:12:11: undefined tier 'cold' (not in tiers)",
        "t.yaml:13:5: unknown key 'colour' in routes[0]",
        "t.yaml:14:5: missing required key 'upstream' in routes[1]",
        "t.yaml:14:14: bad pattern 'x': pattern must start with '/'",
        "t.yaml:14:27: unknown strategy 'nope' (expected cache-aside, write-through, "
        "write-behind or bypass)",
        NULL,
    };
    (void)state;
    expect_diags(yaml, want);
}

static void test_defaults(void **state)
{
    struct st_config *cfg = expect_ok(OK);
    (void)state;
    assert_string_equal(cfg->path, "t.yaml");
    assert_string_equal(cfg->listen.text, "127.0.0.1:8080");
    assert_string_equal(cfg->admin_listen.text, "127.0.0.1:8081");
    assert_int_equal(cfg->workers, 1);
    assert_null(cfg->admin_token);
    assert_int_equal(cfg->cache_memory, 256u << 20);
    assert_int_equal(cfg->cache_max_object, 1u << 20);
    assert_int_equal(cfg->limits.max_header_bytes, 32u << 10);
    assert_int_equal(cfg->limits.max_body, 16u << 20);
    assert_int_equal(cfg->limits.header_timeout_ms, 10000);
    assert_int_equal(cfg->limits.idle_timeout_ms, 60000);
    assert_int_equal(cfg->limits.max_connections, 10000);
    assert_int_equal(cfg->log_format, ST_LOG_TEXT);
    assert_false(cfg->log_access);
    assert_false(cfg->redis.enabled);
    assert_null(cfg->redis.url);
    assert_int_equal(cfg->redis.timeout_ms, 25);
    assert_int_equal(cfg->redis.lock_wait_ms, 2000);
    assert_int_equal(cfg->redis.partition_ttl_ms, 5000);
    assert_string_equal(cfg->redis.prefix, "strata:");

    assert_int_equal(cfg->n_upstreams, 1);
    assert_int_equal(cfg->upstreams[0].connect_timeout_ms, 1000);
    assert_int_equal(cfg->upstreams[0].timeout_ms, 10000);
    assert_int_equal(cfg->upstreams[0].keepalive, 64);
    assert_int_equal(cfg->n_tiers, 1);
    assert_int_equal(cfg->tiers[0].ttl_ms, 1000);
    assert_int_equal(cfg->tiers[0].jitter_pct, 0);
    assert_int_equal(cfg->tiers[0].stale_while_revalidate_ms, 0);
    assert_int_equal(cfg->tiers[0].stale_if_error_ms, 0);

    const struct st_route_cfg *r = &cfg->routes[0];
    assert_int_equal(cfg->n_routes, 1);
    assert_string_equal(r->match, "/*");
    assert_true(r->pattern.rest);
    assert_null(r->host);
    assert_int_equal(r->methods, 0);
    assert_int_equal(r->strategy, ST_STRATEGY_BYPASS);
    assert_int_equal(r->tier, -1); /* bypass needs no tier */
    assert_int_equal(r->ttl_source, ST_TTL_SOURCE_ORIGIN);
    assert_int_equal(r->n_invalidates, 0);
    assert_int_equal(r->key_query, ST_KEY_QUERY_ALL);
    assert_false(r->cache_authorized);
    assert_false(r->cache_set_cookie);
    assert_int_equal(r->write_behind.flush_delay_ms, 1000);
    assert_int_equal(r->write_behind.max_retries, 8);
    assert_int_equal(r->line, 6);
    st_config_destroy(cfg);
}

static const char full_yaml[] =
    "listen: \"0.0.0.0:80\"\n"                               /* 1 */
    "workers: 4\n"                                           /* 2 */
    "admin: { listen: \"[::1]:9091\", token: \"s3cret\" }\n" /* 3 */
    "cache: { memory: 1GiB, max_object: 512KiB }\n"          /* 4 */
    "limits:\n"                                              /* 5 */
    "  max_header_bytes: 8KiB\n"                             /* 6 */
    "  max_body: 2MiB\n"                                     /* 7 */
    "  header_timeout: 250ms\n"                              /* 8 */
    "  idle_timeout: 2m\n"                                   /* 9 */
    "  max_connections: 123\n"                               /* 10 */
    "log: { format: json, access: true }\n"                  /* 11 */
    "redis:\n"                                               /* 12 */
    "  url: \"redis://:pa:ss@10.0.0.5:6380/3\"\n"            /* 13 */
    "  timeout: 40ms\n"                                      /* 14 */
    "  prefix: \"\"\n"                                       /* 15 */
    "  lock_wait: 1s\n"                                      /* 16 */
    "  partition_ttl: 1h\n"                                  /* 17 */
    "tiers:\n"                                               /* 18 */
    "  hot:  { ttl: 10m, jitter: 10%, stale_while_revalidate: 30s, stale_if_error: 10m }\n"
    "  warm: { ttl: 3m, jitter: 7 }\n"                                             /* 20 */
    "upstreams:\n"                                                                 /* 21 */
    "  catalog:\n"                                                                 /* 22 */
    "    servers: [\"127.0.0.1:9000\", \"localhost:9001\", \"[::1]:9002\"]\n"      /* 23 */
    "    connect_timeout: 2s\n"                                                    /* 24 */
    "    timeout: 30s\n"                                                           /* 25 */
    "    keepalive: 0\n"                                                           /* 26 */
    "  other: { servers: [\"10.1.1.1:80\", \"api.internal:8443\"], resolve_every: 5s,"
    " health: { path: /ping, interval: 2s, timeout: 500ms, fails: 2, passes: 4 } }\n" /* 27 */
    "routes:\n"                                                                    /* 28 */
    "  - match: \"/api/v1/products/{id}\"\n"                                       /* 29 */
    "    host: api.example.com\n"                                                  /* 30 */
    "    methods: [GET, HEAD, PUT, DELETE]\n"                                      /* 31 */
    "    upstream: other\n"                                                        /* 32 */
    "    strategy: write-through\n"                                                /* 33 */
    "    tier: warm\n"                                                             /* 34 */
    "    ttl_source: tier\n"                                                       /* 35 */
    "    invalidates: [\"/api/v1/products\", \"/api/v1/products/{id}/reviews\"]\n" /* 36 */
    "    key: { query: [page, sort] }\n"                                           /* 37 */
    "    cache_authorized: true\n"                                                 /* 38 */
    "    cache_set_cookie: True\n"                                                 /* 39 */
    "  - match: /carts/{id}\n"                                                     /* 40 */
    "    upstream: catalog\n"                                                      /* 41 */
    "    strategy: write-behind\n"                                                 /* 42 */
    "    tier: hot\n"                                                              /* 43 */
    "    key: { query: none }\n"                                                   /* 44 */
    "    write_behind: { flush_delay: 250ms, max_retries: 3 }\n"                   /* 45 */
    "    methods: [POST, PATCH, OPTIONS]\n"                                        /* 46 */
    "  - { match: \"/*\", upstream: catalog, strategy: bypass, tier: hot }\n";     /* 47 */

/* The routes of full_yaml, field by field. */
static void check_full_schema_routes(const struct st_config *cfg)
{
    assert_int_equal(cfg->n_routes, 3);
    const struct st_route_cfg *r = &cfg->routes[0];
    assert_string_equal(r->match, "/api/v1/products/{id}");
    assert_int_equal(r->pattern.n_segs, 4);
    assert_string_equal(r->host, "api.example.com");
    assert_int_equal(r->methods, ST_M_GET | ST_M_HEAD | ST_M_PUT | ST_M_DELETE);
    assert_int_equal(r->upstream, 1);
    assert_int_equal(r->strategy, ST_STRATEGY_WRITE_THROUGH);
    assert_int_equal(r->tier, 1);
    assert_int_equal(r->ttl_source, ST_TTL_SOURCE_TIER);
    assert_int_equal(r->n_invalidates, 2);
    assert_string_equal(r->invalidates[0], "/api/v1/products");
    assert_string_equal(r->invalidates[1], "/api/v1/products/{id}/reviews");
    assert_int_equal(r->key_query, ST_KEY_QUERY_LIST);
    assert_int_equal(r->n_key_query_names, 2);
    assert_string_equal(r->key_query_names[0], "page");
    assert_string_equal(r->key_query_names[1], "sort");
    assert_true(r->cache_authorized);
    assert_true(r->cache_set_cookie);
    assert_int_equal(r->line, 29);

    r = &cfg->routes[1];
    assert_int_equal(r->upstream, 0);
    assert_int_equal(r->strategy, ST_STRATEGY_WRITE_BEHIND);
    assert_int_equal(r->tier, 0);
    assert_int_equal(r->key_query, ST_KEY_QUERY_NONE);
    assert_int_equal(r->write_behind.flush_delay_ms, 250);
    assert_int_equal(r->write_behind.max_retries, 3);
    assert_int_equal(r->methods, ST_M_POST | ST_M_PATCH | ST_M_OPTIONS);
    assert_int_equal(r->line, 40);

    r = &cfg->routes[2];
    assert_int_equal(r->strategy, ST_STRATEGY_BYPASS);
    assert_int_equal(r->tier, 0); /* a bypass route may still name a tier */
    assert_int_equal(r->line, 47);
}

static void test_full_schema(void **state)
{
    struct st_config *cfg = expect_ok(full_yaml);
    (void)state;
    assert_string_equal(cfg->listen.text, "0.0.0.0:80");
    assert_int_equal(cfg->workers, 4);
    assert_int_equal(cfg->admin_listen.sa.ss_family, AF_INET6);
    assert_string_equal(cfg->admin_token, "s3cret");
    assert_int_equal(cfg->cache_memory, 1ull << 30);
    assert_int_equal(cfg->cache_max_object, 512u << 10);
    assert_int_equal(cfg->limits.max_header_bytes, 8192);
    assert_int_equal(cfg->limits.max_body, 2u << 20);
    assert_int_equal(cfg->limits.header_timeout_ms, 250);
    assert_int_equal(cfg->limits.idle_timeout_ms, 120000);
    assert_int_equal(cfg->limits.max_connections, 123);
    assert_int_equal(cfg->log_format, ST_LOG_JSON);
    assert_true(cfg->log_access);

    assert_true(cfg->redis.enabled);
    assert_string_equal(cfg->redis.url, "redis://:pa:ss@10.0.0.5:6380/3");
    assert_string_equal(cfg->redis.host, "10.0.0.5");
    assert_int_equal(cfg->redis.port, 6380);
    assert_int_equal(cfg->redis.db, 3);
    assert_string_equal(cfg->redis.password, "pa:ss");
    assert_int_equal(cfg->redis.timeout_ms, 40);
    assert_string_equal(cfg->redis.prefix, "");
    assert_int_equal(cfg->redis.lock_wait_ms, 1000);
    assert_int_equal(cfg->redis.partition_ttl_ms, 3600000);

    assert_int_equal(cfg->n_tiers, 2);
    assert_string_equal(cfg->tiers[0].name, "hot");
    assert_int_equal(cfg->tiers[0].ttl_ms, 600000);
    assert_int_equal(cfg->tiers[0].jitter_pct, 10);
    assert_int_equal(cfg->tiers[0].stale_while_revalidate_ms, 30000);
    assert_int_equal(cfg->tiers[0].stale_if_error_ms, 600000);
    assert_string_equal(cfg->tiers[1].name, "warm");
    assert_int_equal(cfg->tiers[1].jitter_pct, 7);

    assert_int_equal(cfg->n_upstreams, 2);
    const struct st_upstream_cfg *u = &cfg->upstreams[0];
    assert_string_equal(u->name, "catalog");
    assert_int_equal(u->n_servers, 3);
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&u->servers[0].sa;
    assert_int_equal(sin->sin_family, AF_INET);
    assert_int_equal(ntohl(sin->sin_addr.s_addr), 0x7f000001);
    assert_int_equal(ntohs(sin->sin_port), 9000);
    assert_null(u->servers[0].host);
    /* localhost is a name for an upstream (it may have ::1 too), resolved at run time */
    assert_string_equal(u->servers[1].text, "localhost:9001");
    assert_string_equal(u->servers[1].host, "localhost");
    assert_int_equal(u->servers[1].port, 9001);
    assert_int_equal(u->servers[2].sa.ss_family, AF_INET6);
    assert_int_equal(u->resolve_every_ms, 30000);
    assert_false(u->health.enabled);
    assert_int_equal(u->connect_timeout_ms, 2000);
    assert_int_equal(u->timeout_ms, 30000);
    assert_int_equal(u->keepalive, 0);
    const struct st_upstream_cfg *o = &cfg->upstreams[1];
    assert_string_equal(o->name, "other");
    assert_int_equal(o->n_servers, 2);
    assert_string_equal(o->servers[1].host, "api.internal");
    assert_int_equal(o->servers[1].port, 8443);
    assert_int_equal(o->resolve_every_ms, 5000);
    assert_true(o->health.enabled);
    assert_string_equal(o->health.path, "/ping");
    assert_int_equal(o->health.interval_ms, 2000);
    assert_int_equal(o->health.timeout_ms, 500);
    assert_int_equal(o->health.fails, 2);
    assert_int_equal(o->health.passes, 4);
    check_full_schema_routes(cfg);
    st_config_destroy(cfg);
}


static void test_workers_zero_is_one_per_core(void **state)
{
    struct st_config *cfg = expect_ok(OK "workers: 0\n");
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    (void)state;
    assert_true(cores >= 1);
    assert_int_equal(cfg->workers, (unsigned)cores);
    st_config_destroy(cfg);
}

static void test_redis_defaults_and_urls(void **state)
{
    static const struct {
        const char *url;
        const char *host;
        int port, db;
        const char *password;
    } cases[] = {
        {"redis://127.0.0.1:6379/0", "127.0.0.1", 6379, 0, NULL},
        {"redis://cache.internal", "cache.internal", 6379, 0, NULL},
        {"redis://h:7000", "h", 7000, 0, NULL},
        {"redis://h/5", "h", 6379, 5, NULL},
        {"redis://:secret@h:1/15", "h", 1, 15, "secret"},
        {"redis://:@h", "h", 6379, 0, ""},
        {"redis://[::1]:6390/2", "::1", 6390, 2, NULL},
    };
    char yaml[512];
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(yaml, sizeof(yaml), OK "redis: { url: \"%s\" }\n", cases[i].url);
        struct st_config *cfg = expect_ok(yaml);
        print_message("  url: %s\n", cases[i].url);
        assert_true(cfg->redis.enabled);
        assert_string_equal(cfg->redis.url, cases[i].url);
        assert_string_equal(cfg->redis.host, cases[i].host);
        assert_int_equal(cfg->redis.port, cases[i].port);
        assert_int_equal(cfg->redis.db, cases[i].db);
        if (cases[i].password)
            assert_string_equal(cfg->redis.password, cases[i].password);
        else
            assert_null(cfg->redis.password);
        st_config_destroy(cfg);
    }
    /* A redis section without url means the local default. */
    struct st_config *cfg = expect_ok(OK "redis: { prefix: \"app:\" }\n");
    assert_true(cfg->redis.enabled);
    assert_string_equal(cfg->redis.host, "127.0.0.1");
    assert_int_equal(cfg->redis.port, 6379);
    assert_string_equal(cfg->redis.prefix, "app:");
    st_config_destroy(cfg);
    /* A unix socket, with a database; max_object. */
    cfg = expect_ok(OK "redis: { url: \"unix:///run/redis.sock?db=3\", max_object: 64KiB }\n");
    assert_string_equal(cfg->redis.unix_path, "/run/redis.sock");
    assert_null(cfg->redis.host);
    assert_int_equal(cfg->redis.db, 3);
    assert_int_equal(cfg->redis.max_object, 64 << 10);
    st_config_destroy(cfg);
    expect_diag(OK "redis: { url: \"unix://relative.sock\" }\n",
                "t.yaml:7:15: bad redis url 'unix://relative.sock': a unix socket url is "
                 "unix:///absolute/path.sock (expected redis://[:password@]host:port[/db] or "
                 "unix:///path.sock)");
    /* An empty redis: is the same as none. */
    cfg = expect_ok(OK "redis:\n");
    assert_false(cfg->redis.enabled);
    st_config_destroy(cfg);
}

static void test_env_expansion_in_config(void **state)
{
    (void)state;
    setenv("ST_TEST_PORT", "9099", 1);
    setenv("ST_TEST_TOKEN", "t0k", 1);
    setenv("ST_TEST_EMPTY", "", 1);
    unsetenv("ST_TEST_UNSET");
    struct st_config *cfg = expect_ok(
        OK "listen: \"127.0.0.1:${ST_TEST_PORT}\"\n"
           "admin: { token: \"${ST_TEST_TOKEN}\", listen: \"${ST_TEST_UNSET:-[::1]:81}\" }\n"
           "cache: { memory: \"${ST_TEST_EMPTY:-64MiB}\" }\n"
           "log: { format: \"${ST_TEST_UNSET:-json}\" }\n");
    assert_string_equal(cfg->listen.text, "127.0.0.1:9099");
    assert_string_equal(cfg->admin_token, "t0k");
    assert_string_equal(cfg->admin_listen.text, "[::1]:81");
    assert_int_equal(cfg->cache_memory, 64u << 20);
    assert_int_equal(cfg->log_format, ST_LOG_JSON);
    st_config_destroy(cfg);

    /* The shipped token form: unset -> empty -> no token. */
    cfg = expect_ok(OK "admin: { token: \"${ST_TEST_UNSET:-}\" }\n");
    assert_string_equal(cfg->admin_token, "");
    st_config_destroy(cfg);

    /* A value that expands to garbage is judged after expansion. */
    setenv("ST_TEST_BAD_SIZE", "lots", 1);
    expect_diag(OK "cache: { memory: \"${ST_TEST_BAD_SIZE}\" }\n",
                "t.yaml:7:18: bad size 'lots' for memory" SIZE_HINT);
}

static void test_admin_off_loopback_needs_a_token(void **state)
{
    (void)state;
    expect_diag(OK "admin: { listen: \"0.0.0.0:9091\" }\n",
                "t.yaml:7:18: admin.listen 0.0.0.0:9091 is not a loopback address and "
                "admin.token is not set: set one (token: \"${STRATA_ADMIN_TOKEN}\", then clients "
                "send Authorization: Bearer <token>) or listen on 127.0.0.1");
    struct st_config *cfg = expect_ok(OK "admin: { listen: \"0.0.0.0:9091\", token: t }\n");
    st_config_destroy(cfg);
    cfg = expect_ok(OK "admin: { listen: \"127.0.0.2:9091\" }\n");
    st_config_destroy(cfg);
    cfg = expect_ok(OK "admin: { listen: \"[::1]:9091\" }\n");
    st_config_destroy(cfg);
}

static void test_names(void **state)
{
    static const char *const names[] = {"bypass", "cache-aside", "write-through", "write-behind"};
    enum st_strategy_kind k;
    (void)state;
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(st_strategy_from_name(names[i], &k), 0);
        assert_int_equal(k, (enum st_strategy_kind)i);
        assert_string_equal(st_strategy_name(k), names[i]);
    }
    assert_int_equal(st_strategy_from_name("Cache-Aside", &k), -EINVAL);
    assert_int_equal(st_strategy_from_name("", &k), -EINVAL);

    assert_int_equal(st_method_bit_from_name("GET", 3), ST_M_GET);
    assert_int_equal(st_method_bit_from_name("GETX", 3), ST_M_GET); /* length-bounded */
    assert_int_equal(st_method_bit_from_name("HEAD", 4), ST_M_HEAD);
    assert_int_equal(st_method_bit_from_name("POST", 4), ST_M_POST);
    assert_int_equal(st_method_bit_from_name("PUT", 3), ST_M_PUT);
    assert_int_equal(st_method_bit_from_name("PATCH", 5), ST_M_PATCH);
    assert_int_equal(st_method_bit_from_name("DELETE", 6), ST_M_DELETE);
    assert_int_equal(st_method_bit_from_name("OPTIONS", 7), ST_M_OPTIONS);
    assert_int_equal(st_method_bit_from_name("get", 3), ST_M_OTHER);
    assert_int_equal(st_method_bit_from_name("PROPFIND", 8), ST_M_OTHER);
    assert_int_equal(st_method_bit_from_name("GE", 2), ST_M_OTHER);
}

static void test_from_backend(void **state)
{
    struct st_config *cfg = NULL;
    struct st_diag d = {0};
    (void)state;
    assert_int_equal(st_config_from_backend("127.0.0.1:3000", &cfg, &d), 0);
    assert_int_equal(d.n, 0);
    assert_null(cfg->path);
    assert_string_equal(cfg->listen.text, "127.0.0.1:8080");
    assert_string_equal(cfg->admin_listen.text, "127.0.0.1:8081");
    assert_int_equal(cfg->workers, 1);
    assert_false(cfg->redis.enabled);
    assert_int_equal(cfg->cache_memory, 256u << 20);
    assert_int_equal(cfg->n_upstreams, 1);
    assert_string_equal(cfg->upstreams[0].name, "backend");
    assert_int_equal(cfg->upstreams[0].n_servers, 1);
    assert_string_equal(cfg->upstreams[0].servers[0].text, "127.0.0.1:3000");
    assert_int_equal(cfg->upstreams[0].keepalive, 64);
    assert_int_equal(cfg->n_tiers, 1);
    assert_string_equal(cfg->tiers[0].name, "default");
    assert_int_equal(cfg->tiers[0].ttl_ms, 60000);
    assert_int_equal(cfg->n_routes, 1);
    const struct st_route_cfg *r = &cfg->routes[0];
    assert_string_equal(r->match, "/*");
    assert_true(st_pattern_match(&r->pattern, "/", 1, NULL, NULL));
    assert_true(st_pattern_match(&r->pattern, "/a/b?c", 6, NULL, NULL));
    assert_int_equal(r->strategy, ST_STRATEGY_CACHE_ASIDE);
    assert_int_equal(r->tier, 0);
    assert_int_equal(r->upstream, 0);
    assert_int_equal(r->methods, 0);
    assert_int_equal(r->line, 0);
    assert_int_equal(r->write_behind.max_retries, 8);
    st_config_destroy(cfg);

    cfg = (struct st_config *)1;
    assert_int_equal(st_config_from_backend("backend.internal:80", &cfg, &d), -EINVAL);
    assert_null(cfg);
    assert_int_equal(d.n, 1);
    assert_string_equal(d.lines[0], "-b: bad address 'backend.internal:80'" ADDR_HINT);
    st_diag_finish(&d);
}

static void load_example(const char *name, struct st_config **cfg)
{
    char path[4096];
    struct st_diag d = {0};
    snprintf(path, sizeof(path), "%s/config/examples/%s", ST_SOURCE_ROOT, name);
    int rc = st_config_load_file(path, cfg, &d);
    if (rc != 0)
        dump(&d);
    assert_int_equal(rc, 0);
    assert_int_equal(d.n, 0);
    assert_string_equal((*cfg)->path, path);
}

static void test_shipped_examples(void **state)
{
    struct st_config *cfg = NULL;
    (void)state;
    unsetenv("STRATA_ADMIN_TOKEN");
    load_example("strata.yaml", &cfg);
    assert_true(cfg->redis.enabled);
    assert_int_equal(cfg->n_tiers, 3);
    assert_int_equal(cfg->n_routes, 2);
    assert_string_equal(cfg->admin_token, "");
    for (size_t i = 0; i < cfg->n_routes; i++)
        assert_int_not_equal(cfg->routes[i].strategy, ST_STRATEGY_WRITE_BEHIND);
    st_config_destroy(cfg);

    setenv("STRATA_ADMIN_TOKEN", "abc", 1);
    load_example("strata.yaml", &cfg);
    assert_string_equal(cfg->admin_token, "abc");
    st_config_destroy(cfg);
    unsetenv("STRATA_ADMIN_TOKEN");

    /* The container's config: refused without a token, a catch-all cache with one. */
    char path[4096];
    struct st_diag d = {0};
    snprintf(path, sizeof(path), "%s/config/examples/docker.yaml", ST_SOURCE_ROOT);
    assert_int_equal(st_config_load_file(path, &cfg, &d), -EINVAL);
    assert_int_equal(d.n, 1);
    assert_non_null(strstr(d.lines[0], "docker.yaml:8:"));
    assert_non_null(strstr(d.lines[0], "admin.token is not set"));
    st_diag_finish(&d);
    setenv("STRATA_ADMIN_TOKEN", "abc", 1);
    load_example("docker.yaml", &cfg);
    assert_int_equal(cfg->n_routes, 1);
    assert_int_equal(cfg->routes[0].strategy, ST_STRATEGY_CACHE_ASIDE);
    st_config_destroy(cfg);
    unsetenv("STRATA_ADMIN_TOKEN");

    load_example("demo.yaml", &cfg);
    assert_false(cfg->redis.enabled);
    assert_string_equal(cfg->listen.text, "127.0.0.1:8080");
    assert_string_equal(cfg->admin_listen.text, "127.0.0.1:8081");
    assert_int_equal(cfg->n_upstreams, 1);
    assert_string_equal(cfg->upstreams[0].name, "demo");
    assert_string_equal(cfg->upstreams[0].servers[0].text, "127.0.0.1:9000");
    assert_int_equal(cfg->n_tiers, 3);
    assert_int_equal(cfg->n_routes, 3);
    assert_string_equal(cfg->routes[0].match, "/api/products/{id}");
    assert_int_equal(cfg->routes[0].strategy, ST_STRATEGY_CACHE_ASIDE);
    assert_string_equal(cfg->tiers[cfg->routes[0].tier].name, "hot");
    assert_string_equal(cfg->routes[1].match, "/api/*");
    assert_string_equal(cfg->tiers[cfg->routes[1].tier].name, "warm");
    assert_string_equal(cfg->routes[2].match, "/*");
    assert_int_equal(cfg->routes[2].strategy, ST_STRATEGY_BYPASS);
    st_config_destroy(cfg);
}

struct shown {
    const char *text;
    char missing[2048];
};

/* Is key written as a YAML key ("key:") somewhere in the text? */
static void check_shown(const char *section, const char *key, void *arg)
{
    struct shown *sh = arg;
    char pat[96];
    snprintf(pat, sizeof(pat), "%s:", key);
    for (const char *p = strstr(sh->text, pat); p; p = strstr(p + 1, pat)) {
        char before = p == sh->text ? '\n' : p[-1];
        if (before == ' ' || before == '\n' || before == '{' || before == ',')
            return;
    }
    size_t n = strlen(sh->missing);
    snprintf(sh->missing + n, sizeof(sh->missing) - n, " %s%s%s", section, *section ? "." : "",
             key);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[1 << 18];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

/* The shipped example shows every key the loader accepts (a new key must be documented). */
static void test_example_shows_every_key(void **state)
{
    (void)state;
    struct shown sh = {.text = read_file(ST_SOURCE_ROOT "/config/examples/strata.yaml")};
    st_config_each_key(check_shown, &sh);
    if (sh.missing[0])
        fail_msg("config/examples/strata.yaml does not show:%s", sh.missing);
}

/* The README's configuration reference: the key of each table row ("| `a.b` | ..."). */
struct reference {
    const char *text;      /* the reference section */
    size_t len;
    char missing[2048];    /* loader keys without a row */
    unsigned found;        /* rows that name a loader key */
};

static void check_referenced(const char *section, const char *key, void *arg)
{
    struct reference *ref = arg;
    char row[128];
    snprintf(row, sizeof(row), "\n| `%s%s%s` |", section, *section ? "." : "", key);
    if (memmem(ref->text, ref->len, row, strlen(row))) {
        ref->found++;
        return;
    }
    size_t n = strlen(ref->missing);
    snprintf(ref->missing + n, sizeof(ref->missing) - n, " %s%s%s", section, *section ? "." : "",
             key);
}

/* The README's configuration reference has one row per key the loader accepts, and no other. */
static void test_readme_reference_lists_every_key(void **state)
{
    (void)state;
    const char *readme = read_file(ST_SOURCE_ROOT "/README.md");
    const char *start = strstr(readme, "\n### Configuration reference\n");
    assert_non_null(start);
    const char *end = strstr(start + 1, "\n#");
    struct reference ref = {.text = start, .len = end ? (size_t)(end - start) : strlen(start)};
    st_config_each_key(check_referenced, &ref);
    if (ref.missing[0])
        fail_msg("README.md's configuration reference has no row for:%s", ref.missing);
    unsigned rows = 0;
    const char *row = "\n| `";
    for (const char *p = strstr(start, row); p && p < start + ref.len; p = strstr(p + 1, row))
        rows++;
    if (rows != ref.found)
        fail_msg("README.md's configuration reference has %u key rows, the loader %u keys: a row "
                 "names a key the loader does not accept (or one twice)",
                 rows, ref.found);
}

static void test_unreadable_file(void **state)
{
    struct st_config *cfg = (struct st_config *)1;
    struct st_diag d = {0};
    (void)state;
    assert_int_equal(st_config_load_file("/nonexistent/strata.yaml", &cfg, &d), -ENOENT);
    assert_null(cfg);
    assert_int_equal(d.n, 1);
    assert_string_equal(d.lines[0],
                        "/nonexistent/strata.yaml:1:1: cannot read the config: No such file or "
                        "directory");
    st_diag_finish(&d);
}

static void test_diags_accumulate(void **state)
{
    struct st_config *cfg = NULL;
    struct st_diag d = {0};
    (void)state;
    st_diag_add(&d, "earlier: %d", 1);
    assert_int_equal(load(OK "bogus: 1\n", &cfg, &d), -EINVAL);
    assert_int_equal(d.n, 2);
    assert_string_equal(d.lines[0], "earlier: 1");
    assert_string_equal(d.lines[1], "t.yaml:7:1: unknown key 'bogus' in the top level");
    st_diag_finish(&d);
    st_diag_finish(&d); /* idempotent */
}

static void test_yaml_features(void **state)
{
    (void)state;
    /* Anchors and aliases, block style, comments, quoted keys. */
    struct st_config *cfg = expect_ok("tiers:\n"
                                      "  t: &base { ttl: 5s }\n"
                                      "  u: *base\n"
                                      "upstreams:\n"
                                      "  \"up\": { servers: ['127.0.0.1:1'] }  # comment\n"
                                      "routes:\n"
                                      "  - match: /a\n"
                                      "    upstream: up\n"
                                      "    strategy: cache-aside\n"
                                      "    tier: u\n");
    assert_int_equal(cfg->n_tiers, 2);
    assert_int_equal(cfg->tiers[1].ttl_ms, 5000);
    assert_int_equal(cfg->routes[0].tier, 1);
    st_config_destroy(cfg);

    /* A section written with nothing after it is an empty section. */
    cfg = expect_ok(OK "limits:\nlog: ~\nadmin: {}\nredis: null\n");
    assert_int_equal(cfg->limits.max_body, 16u << 20);
    assert_false(cfg->redis.enabled);
    st_config_destroy(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_error_kind),
        cmocka_unit_test(test_many_errors_in_one_load),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_full_schema),
        cmocka_unit_test(test_workers_zero_is_one_per_core),
        cmocka_unit_test(test_redis_defaults_and_urls),
        cmocka_unit_test(test_env_expansion_in_config),
        cmocka_unit_test(test_admin_off_loopback_needs_a_token),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_from_backend),
        cmocka_unit_test(test_shipped_examples),
        cmocka_unit_test(test_example_shows_every_key),
        cmocka_unit_test(test_readme_reference_lists_every_key),
        cmocka_unit_test(test_unreadable_file),
        cmocka_unit_test(test_diags_accumulate),
        cmocka_unit_test(test_yaml_features),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
