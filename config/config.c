/*
 * config.c - load strata's YAML config into a struct st_config.
 *
 * libyaml's document API parses the whole file into a node tree (every node
 * knows its line and column); we then walk that tree against the schema of
 * DESIGN.md by hand, one small table of keys per mapping (yaml_walk.c does
 * the dispatching). Scalars are ${VAR}-expanded before they are interpreted.
 *
 * The walk never stops at the first problem: each is added to the
 * diagnostics and the walk goes on, so `strata --check` shows them all. The
 * config under construction always owns everything it points to, so a
 * failed load is freed by st_config_destroy() like a good one.
 *
 * Order: the top level is read first, but redis, tiers and upstreams are
 * built before routes (wherever they appear in the file) so that a route
 * resolves its upstream and tier names to indexes as soon as it is read.
 */
#include "config/config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "config/fields.h"
#include "config/yaml_walk.h"

#define MAX_WORKERS 1024
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* What the field callbacks build; st_walk.user points here. */
struct load {
    struct st_config *cfg;
    bool tiers_broken;     /* `tiers:` is not a mapping: don't also blame every route */
    bool upstreams_broken; /* the same for `upstreams:` */
};

void st_diag_add(struct st_diag *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *line = st_xvasprintf(fmt, ap);
    va_end(ap);
    d->lines = st_xrealloc(d->lines, (d->n + 1) * sizeof(*d->lines));
    d->lines[d->n++] = line;
}

void st_diag_finish(struct st_diag *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->lines[i]);
    free(d->lines);
    d->lines = NULL;
    d->n = 0;
}

static void h_workers(struct st_walk *w, const yaml_node_t *val, void *obj,
                      const struct st_walk_field *f)
{
    uint64_t v;
    if (st_field_count(w, val, f->key, MAX_WORKERS, &v))
        *ST_FIELD_AT(obj, f, unsigned) = (unsigned)v;
}

/* ---- small sections ---- */

static void h_log_format(struct st_walk *w, const yaml_node_t *val, void *obj,
                         const struct st_walk_field *f)
{
    static const char *const names[] = {[ST_LOG_TEXT] = "text", [ST_LOG_JSON] = "json"};
    int i = st_field_choice(w, val, f->key, names, ARRAY_LEN(names), "text or json");
    if (i >= 0)
        *ST_FIELD_AT(obj, f, enum st_log_format) = (enum st_log_format)i;
}

static const struct st_walk_field admin_fields[] = {
    {"listen", st_field_addr, offsetof(struct st_config, admin_listen)},
    {"token", st_field_string, offsetof(struct st_config, admin_token)},
};

static void h_admin(struct st_walk *w, const yaml_node_t *val, void *obj,
                    const struct st_walk_field *f)
{
    const yaml_node_t *seen[ARRAY_LEN(admin_fields)];
    struct st_config *cfg = obj;
    (void)f;
    if (!st_walk_map(w, val, "admin", admin_fields, ARRAY_LEN(admin_fields), obj, seen) || !seen[0])
        return;
    /* Anyone who reaches the admin listener could purge the cache: off loopback, a token. */
    if (cfg->admin_listen.text && !st_addr_is_loopback(&cfg->admin_listen) &&
        (!cfg->admin_token || !cfg->admin_token[0]))
        st_walk_error(w, seen[0],
                      "admin.listen %s is not a loopback address and admin.token is not set: "
                      "set one (token: \"${STRATA_ADMIN_TOKEN}\", then clients send "
                      "Authorization: Bearer <token>) or listen on 127.0.0.1",
                      cfg->admin_listen.text);
}

static const struct st_walk_field cache_fields[] = {
    {"memory", st_field_size, offsetof(struct st_config, cache_memory)},
    {"max_object", st_field_size, offsetof(struct st_config, cache_max_object)},
};

static void h_cache(struct st_walk *w, const yaml_node_t *val, void *obj,
                    const struct st_walk_field *f)
{
    const yaml_node_t *seen[ARRAY_LEN(cache_fields)];
    struct st_config *cfg = obj;
    (void)f;
    if (!st_walk_map(w, val, "cache", cache_fields, ARRAY_LEN(cache_fields), obj, seen))
        return;
    if (cfg->cache_max_object > cfg->cache_memory) {
        const yaml_node_t *at = seen[1] ? seen[1] : seen[0] ? seen[0] : val;
        st_walk_error(
            w, at, "cache.max_object (%llu bytes) is larger than cache.memory (%llu bytes)",
            (unsigned long long)cfg->cache_max_object, (unsigned long long)cfg->cache_memory);
    }
}

#define LIM(name) offsetof(struct st_config, limits) + offsetof(struct st_limits, name)
static const struct st_walk_field limits_fields[] = {
    {"max_header_bytes", st_field_size, LIM(max_header_bytes)},
    {"max_body", st_field_size, LIM(max_body)},
    {"header_timeout", st_field_duration, LIM(header_timeout_ms)},
    {"idle_timeout", st_field_duration, LIM(idle_timeout_ms)},
    {"max_connections", st_field_u64, LIM(max_connections)},
    {"max_connections_per_ip", st_field_u64, LIM(max_connections_per_ip)},
    {"body_timeout", st_field_duration, LIM(body_timeout_ms)},
    {"underscores_in_headers", st_field_bool, LIM(underscores_in_headers)},
};
#undef LIM

static void h_limits(struct st_walk *w, const yaml_node_t *val, void *obj,
                     const struct st_walk_field *f)
{
    (void)f;
    st_walk_map(w, val, "limits", limits_fields, ARRAY_LEN(limits_fields), obj, NULL);
}

static const struct st_walk_field log_fields[] = {
    {"format", h_log_format, offsetof(struct st_config, log_format)},
    {"access", st_field_bool, offsetof(struct st_config, log_access)},
    {"file", st_field_string, offsetof(struct st_config, log_file)},
};

static void h_log(struct st_walk *w, const yaml_node_t *val, void *obj,
                  const struct st_walk_field *f)
{
    (void)f;
    st_walk_map(w, val, "log", log_fields, ARRAY_LEN(log_fields), obj, NULL);
}

/* ---- redis ---- */

static const char *redis_url_db(const char *s, int *db)
{
    char *end;
    if (!*s)
        return NULL;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (!(s[0] >= '0' && s[0] <= '9') || *end || errno || v > 65535)
        return "the database must be a number 0..65535";
    *db = (int)v;
    return NULL;
}

static const char *redis_url_hostport(const char *s, size_t len, struct st_redis_cfg *r)
{
    const char *hend, *port;
    if (s[0] == '[') {
        const char *rb = memchr(s, ']', len);
        if (!rb)
            return "'[' without ']' in the host";
        r->host = st_xstrndup(s + 1, (size_t)(rb - s - 1));
        hend = rb + 1;
    } else {
        hend = memchr(s, ':', len);
        hend = hend ? hend : s + len;
        r->host = st_xstrndup(s, (size_t)(hend - s));
    }
    if (!r->host[0] || strspn(r->host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                       "0123456789.-_:") != strlen(r->host))
        return "bad host";
    if (hend < s + len && *hend != ':')
        return "bad host";
    port = hend < s + len ? hend + 1 : NULL;
    if (!port)
        return NULL;
    char buf[8];
    size_t plen = (size_t)(s + len - port);
    unsigned long v = 0;
    char *end = NULL;
    if (plen > 0 && plen < sizeof(buf)) {
        memcpy(buf, port, plen);
        buf[plen] = '\0';
        v = strtoul(buf, &end, 10);
    }
    if (!end || *end || !(port[0] >= '0' && port[0] <= '9') || v < 1 || v > 65535)
        return "the port must be 1..65535";
    r->port = (int)v;
    return NULL;
}

/* unix:///path.sock[?db=N] into r; NULL or why not. */
static const char *parse_redis_unix(const char *path, struct st_redis_cfg *r)
{
    const char *q = strchr(path, '?');
    size_t len = q ? (size_t)(q - path) : strlen(path);
    if (len < 2 || path[0] != '/')
        return "a unix socket url is unix:///absolute/path.sock";
    r->unix_path = st_xstrndup(path, len);
    r->db = 0;
    if (!q)
        return NULL;
    if (strncmp(q, "?db=", 4) != 0)
        return "the only parameter of a unix socket url is ?db=N";
    return redis_url_db(q + 4, &r->db);
}

/*
 * redis://[:password@]host[:port][/db] or unix:///path[?db=N] into r (host
 * or unix_path, port, db, password); NULL or why not.
 */
static const char *parse_redis_url(const char *url, struct st_redis_cfg *r)
{
    static const char scheme[] = "redis://";
    if (!strncmp(url, "unix://", 7))
        return parse_redis_unix(url + 7, r);
    if (!strncmp(url, "rediss://", 9))
        return "TLS (rediss://) is not supported";
    if (strncmp(url, scheme, sizeof(scheme) - 1) != 0)
        return "it must start with redis://";
    const char *s = url + sizeof(scheme) - 1;
    const char *slash = strchr(s, '/');
    const char *end = slash ? slash : s + strlen(s);
    const char *at = memrchr(s, '@', (size_t)(end - s));
    if (at) {
        if (s[0] != ':')
            return "usernames are not supported (write redis://:password@host)";
        r->password = st_xstrndup(s + 1, (size_t)(at - s - 1));
        s = at + 1;
    }
    r->port = 6379;
    r->db = 0;
    const char *why = redis_url_hostport(s, (size_t)(end - s), r);
    return why ? why : slash ? redis_url_db(slash + 1, &r->db) : NULL;
}

static void redis_url_clear(struct st_redis_cfg *r)
{
    free(r->url);
    free(r->host);
    free(r->unix_path);
    free(r->password);
    r->url = r->host = r->unix_path = r->password = NULL;
}

static void h_redis_url(struct st_walk *w, const yaml_node_t *val, void *obj,
                        const struct st_walk_field *f)
{
    struct st_redis_cfg *r = obj;
    char *s = st_walk_scalar(w, val, f->key);
    if (!s)
        return;
    redis_url_clear(r);
    const char *why = parse_redis_url(s, r);
    if (why)
        st_walk_error(
            w, val,
            "bad redis url '%s': %s (expected redis://[:password@]host:port[/db] or "
            "unix:///path.sock)",
            s, why);
    r->url = s;
}

static const struct st_walk_field redis_fields[] = {
    {"url", h_redis_url, 0},
    {"timeout", st_field_duration, offsetof(struct st_redis_cfg, timeout_ms)},
    {"prefix", st_field_string, offsetof(struct st_redis_cfg, prefix)},
    {"lock_wait", st_field_duration, offsetof(struct st_redis_cfg, lock_wait_ms)},
    {"partition_ttl", st_field_duration, offsetof(struct st_redis_cfg, partition_ttl_ms)},
    {"max_object", st_field_size, offsetof(struct st_redis_cfg, max_object)},
};

static void parse_redis(struct st_walk *w, const yaml_node_t *val, struct st_config *cfg)
{
    struct st_redis_cfg *r = &cfg->redis;
    r->enabled = true;
    r->url = st_xstrdup("redis://127.0.0.1:6379/0");
    ST_CHECK(parse_redis_url(r->url, r) == NULL);
    st_walk_map(w, val, "redis", redis_fields, ARRAY_LEN(redis_fields), r, NULL);
}

/* ---- tiers ---- */

static const struct st_walk_field tier_fields[] = {
    {"ttl", st_field_duration, offsetof(struct st_tier, ttl_ms)},
    {"jitter", st_field_percent, offsetof(struct st_tier, jitter_pct)},
    {"stale_while_revalidate", st_field_duration,
     offsetof(struct st_tier, stale_while_revalidate_ms)},
    {"stale_if_error", st_field_duration, offsetof(struct st_tier, stale_if_error_ms)},
};

static void on_tier(struct st_walk *w, const char *name, const yaml_node_t *key,
                    const yaml_node_t *val, void *ctx)
{
    struct st_config *cfg = ctx;
    const yaml_node_t *seen[ARRAY_LEN(tier_fields)];
    cfg->tiers = st_xrealloc(cfg->tiers, (cfg->n_tiers + 1) * sizeof(*cfg->tiers));
    struct st_tier *t = &cfg->tiers[cfg->n_tiers++];
    memset(t, 0, sizeof(*t));
    t->name = st_xstrdup(name);
    char *where = st_xasprintf("tiers.%s", name);
    if (st_walk_map(w, val, where, tier_fields, ARRAY_LEN(tier_fields), t, seen) && !seen[0])
        st_walk_error(w, key, "missing required key 'ttl' in %s", where);
    free(where);
}

/* ---- upstreams ---- */

static void h_servers(struct st_walk *w, const yaml_node_t *val, void *obj,
                      const struct st_walk_field *f)
{
    struct st_upstream_cfg *u = obj;
    if (!st_walk_expect(w, val, YAML_SEQUENCE_NODE, f->key))
        return;
    size_t n = (size_t)(val->data.sequence.items.top - val->data.sequence.items.start);
    if (n == 0) {
        st_walk_error(w, val, "servers must list at least one HOST:PORT");
        return;
    }
    u->servers = st_xcalloc(n, sizeof(*u->servers));
    for (yaml_node_item_t *it = val->data.sequence.items.start; it < val->data.sequence.items.top;
         it++) {
        const yaml_node_t *node = st_walk_node(w, *it);
        char *text = st_walk_scalar(w, node, "servers");
        if (!text)
            continue;
        /* keep only the good ones: n_servers counts them */
        if (st_parse_server_addr(text, &u->servers[u->n_servers]) == 0)
            u->n_servers++;
        else
            st_walk_error(w, node,
                          "bad address '%s' for servers (expected HOST:PORT with a host name, "
                          "a numeric IPv4 or [IPv6], port 1..65535)",
                          text);
        free(text);
    }
}

static const struct st_walk_field upstream_fields[] = {
    {"servers", h_servers, 0},
    {"connect_timeout", st_field_duration,
     offsetof(struct st_upstream_cfg, connect_timeout_ms)},
    {"timeout", st_field_duration, offsetof(struct st_upstream_cfg, timeout_ms)},
    {"keepalive", st_field_uint, offsetof(struct st_upstream_cfg, keepalive)},
    {"retry_budget", st_field_percent, offsetof(struct st_upstream_cfg, retry_budget)},
    /* the last three are found by position in seen[] (UF_* below) */
    {"resolve_every", st_field_duration, offsetof(struct st_upstream_cfg, resolve_every_ms)},
    {"health", NULL, 0},  /* health_fields, below */
    {"breaker", NULL, 0}, /* breaker_fields, below */
};
enum {
    UF_RESOLVE_EVERY = ARRAY_LEN(upstream_fields) - 3,
    UF_HEALTH = ARRAY_LEN(upstream_fields) - 2,
    UF_BREAKER = ARRAY_LEN(upstream_fields) - 1,
};

#define HC(name) offsetof(struct st_upstream_cfg, health.name)
static const struct st_walk_field health_fields[] = {
    {"path", st_field_string, HC(path)},
    {"interval", st_field_duration, HC(interval_ms)},
    {"timeout", st_field_duration, HC(timeout_ms)},
    {"fails", st_field_uint, HC(fails)},
    {"passes", st_field_uint, HC(passes)},
};
#undef HC

#define BR(name) offsetof(struct st_upstream_cfg, breaker.name)
static const struct st_walk_field breaker_fields[] = {
    {"window", st_field_duration, BR(window_ms)},
    {"min_requests", st_field_u64, BR(min_requests)},
    {"error_ratio", st_field_percent, BR(error_ratio)},
    {"open_for", st_field_duration, BR(open_for_ms)},
    {"probes", st_field_uint, BR(probes)},
};
#undef BR

static void on_upstream(struct st_walk *w, const char *name, const yaml_node_t *key,
                        const yaml_node_t *val, void *ctx)
{
    struct st_config *cfg = ctx;
    const yaml_node_t *seen[ARRAY_LEN(upstream_fields)];
    cfg->upstreams = st_xrealloc(cfg->upstreams, (cfg->n_upstreams + 1) * sizeof(*cfg->upstreams));
    struct st_upstream_cfg *u = &cfg->upstreams[cfg->n_upstreams++];
    *u = (struct st_upstream_cfg){
        .name = st_xstrdup(name), .connect_timeout_ms = 1000, .timeout_ms = 10000, .keepalive = 64,
        .retry_budget = 10};
    u->breaker.window_ms = 10000;
    u->breaker.min_requests = 20;
    u->breaker.error_ratio = 50;
    u->breaker.open_for_ms = 5000;
    u->breaker.probes = 3;
    u->resolve_every_ms = 30000;
    u->health.path = st_xstrdup("/");
    u->health.interval_ms = 5000;
    u->health.timeout_ms = 1000;
    u->health.fails = 3;
    u->health.passes = 2;
    char *where = st_xasprintf("upstreams.%s", name);
    if (st_walk_map(w, val, where, upstream_fields, ARRAY_LEN(upstream_fields), u, seen) && !seen[0])
        st_walk_error(w, key, "missing required key 'servers' in %s", where);
    if (seen[UF_RESOLVE_EVERY] && u->resolve_every_ms == 0)
        st_walk_error(w, seen[UF_RESOLVE_EVERY], "%s.resolve_every must be above 0", where);
    const yaml_node_t *hc = seen[UF_HEALTH];
    if (hc) {
        char *hw = st_xasprintf("%s.health", where);
        if (st_walk_map(w, hc, hw, health_fields, ARRAY_LEN(health_fields), u, NULL)) {
            u->health.enabled = true;
            if (u->health.path[0] != '/')
                st_walk_error(w, hc, "%s.path must start with '/'", hw);
            else if (strpbrk(u->health.path, " \r\n"))
                st_walk_error(w, hc, "%s.path must not hold spaces or line breaks", hw);
            if (u->health.interval_ms == 0 || u->health.timeout_ms == 0 ||
                u->health.fails == 0 || u->health.passes == 0)
                st_walk_error(w, hc, "%s: interval, timeout, fails and passes must be above 0",
                              hw);
        }
        free(hw);
    }
    const yaml_node_t *br = seen[UF_BREAKER];
    if (br) {
        char *bw = st_xasprintf("%s.breaker", where);
        if (st_walk_map(w, br, bw, breaker_fields, ARRAY_LEN(breaker_fields), u, NULL)) {
            u->breaker.enabled = true;
            if (u->breaker.probes == 0 || u->breaker.window_ms == 0 || u->breaker.open_for_ms == 0)
                st_walk_error(w, br, "%s: window, open_for and probes must be above 0", bw);
        }
        free(bw);
    }
    free(where);
}

/* ---- routes ---- */

static void route_init(struct st_route_cfg *r)
{
    memset(r, 0, sizeof(*r));
    r->tier = -1;
    r->ttl_source = ST_TTL_SOURCE_ORIGIN;
    r->key_query = ST_KEY_QUERY_ALL;
    r->write_behind.flush_delay_ms = 1000;
    r->write_behind.max_retries = 8;
    r->write_behind.claim_after_ms = 30000;
}

/* "routes[N]" plus a suffix, for messages; caller frees. */
static char *route_where(struct st_walk *w, const struct st_route_cfg *r, const char *suffix)
{
    const struct load *ld = w->user;
    return st_xasprintf("routes[%zu]%s", (size_t)(r - ld->cfg->routes), suffix);
}

static void h_match(struct st_walk *w, const yaml_node_t *val, void *obj,
                    const struct st_walk_field *f)
{
    struct st_route_cfg *r = obj;
    const char *why;
    char *s = st_walk_scalar(w, val, f->key);
    if (!s)
        return;
    r->match = s;
    if (st_pattern_compile(s, &r->pattern, &why) < 0)
        st_walk_error(w, val, "bad pattern '%s': %s", s, why);
}

/* An optional string that, when given, must not be empty; hint says what leaving it out does. */
static void nonempty_string(struct st_walk *w, const yaml_node_t *val, void *obj,
                            const struct st_walk_field *f, const char *hint)
{
    st_field_string(w, val, obj, f);
    const char *v = *ST_FIELD_AT(obj, f, char *);
    if (v && !v[0])
        st_walk_error(w, val, "%s must not be empty (%s)", f->key, hint);
}

static void h_name(struct st_walk *w, const yaml_node_t *val, void *obj,
                   const struct st_walk_field *f)
{
    nonempty_string(w, val, obj, f, "leave it out to use the match");
}

static void h_host(struct st_walk *w, const yaml_node_t *val, void *obj,
                   const struct st_walk_field *f)
{
    nonempty_string(w, val, obj, f, "leave it out to match any host");
}

static void h_methods(struct st_walk *w, const yaml_node_t *val, void *obj,
                      const struct st_walk_field *f)
{
    struct st_route_cfg *r = obj;
    if (!st_walk_expect(w, val, YAML_SEQUENCE_NODE, f->key))
        return;
    if (val->data.sequence.items.start == val->data.sequence.items.top)
        st_walk_error(w, val, "methods must not be empty (leave it out to allow every method)");
    for (yaml_node_item_t *it = val->data.sequence.items.start; it < val->data.sequence.items.top;
         it++) {
        const yaml_node_t *item = st_walk_node(w, *it);
        char *s = st_walk_scalar(w, item, "a method");
        unsigned bit = s ? st_method_bit_from_name(s, strlen(s)) : 0;
        if (bit == ST_M_OTHER)
            st_walk_error(w, item,
                          "unknown method '%s' (expected GET, HEAD, POST, PUT, PATCH, DELETE or "
                          "OPTIONS)",
                          s);
        else
            r->methods |= bit;
        free(s);
    }
}

static void h_upstream(struct st_walk *w, const yaml_node_t *val, void *obj,
                       const struct st_walk_field *f)
{
    const struct load *ld = w->user;
    struct st_route_cfg *r = obj;
    char *s = st_walk_scalar(w, val, f->key);
    if (!s)
        return;
    size_t i = 0;
    while (i < ld->cfg->n_upstreams && strcmp(ld->cfg->upstreams[i].name, s) != 0)
        i++;
    if (i < ld->cfg->n_upstreams)
        r->upstream = i;
    else if (!ld->upstreams_broken)
        st_walk_error(w, val, "undefined upstream '%s' (not in upstreams)", s);
    free(s);
}

static void h_tier(struct st_walk *w, const yaml_node_t *val, void *obj,
                   const struct st_walk_field *f)
{
    const struct load *ld = w->user;
    struct st_route_cfg *r = obj;
    char *s = st_walk_scalar(w, val, f->key);
    if (!s)
        return;
    size_t i = 0;
    while (i < ld->cfg->n_tiers && strcmp(ld->cfg->tiers[i].name, s) != 0)
        i++;
    if (i < ld->cfg->n_tiers)
        r->tier = (int)i;
    else if (!ld->tiers_broken)
        st_walk_error(w, val, "undefined tier '%s' (not in tiers)", s);
    free(s);
}

static void h_strategy(struct st_walk *w, const yaml_node_t *val, void *obj,
                       const struct st_walk_field *f)
{
    struct st_route_cfg *r = obj;
    char *s = st_walk_scalar(w, val, f->key);
    if (s && st_strategy_from_name(s, &r->strategy) < 0)
        st_walk_error(w, val,
                      "unknown strategy '%s' (expected cache-aside, write-through, write-behind "
                      "or bypass)",
                      s);
    free(s);
}

static void h_ttl_source(struct st_walk *w, const yaml_node_t *val, void *obj,
                         const struct st_walk_field *f)
{
    static const char *const names[] = {
        [ST_TTL_SOURCE_ORIGIN] = "origin", [ST_TTL_SOURCE_TIER] = "tier"};
    int i = st_field_choice(w, val, f->key, names, ARRAY_LEN(names), "origin or tier");
    if (i >= 0)
        ((struct st_route_cfg *)obj)->ttl_source = (enum st_ttl_source)i;
}

static void h_key_query(struct st_walk *w, const yaml_node_t *val, void *obj,
                        const struct st_walk_field *f)
{
    static const char *const names[] = {[ST_KEY_QUERY_ALL] = "all", [ST_KEY_QUERY_NONE] = "none"};
    struct st_route_cfg *r = obj;
    if (val->type == YAML_SCALAR_NODE) {
        int i = st_field_choice(w, val, f->key, names, ARRAY_LEN(names), "all, none or a list");
        if (i >= 0)
            r->key_query = (enum st_key_query)i;
        return;
    }
    if (!st_field_string_list(w, val, "key.query", &r->key_query_names, &r->n_key_query_names,
                              NULL))
        return;
    r->key_query = r->n_key_query_names ? ST_KEY_QUERY_LIST : ST_KEY_QUERY_NONE;
    for (size_t i = 0; i < r->n_key_query_names; i++)
        if (!r->key_query_names[i][0])
            st_walk_error(w, val, "key.query names must not be empty");
}

/* Is n a header name (non-empty, no separator)? Lowercases it when it is. */
static bool header_name_lower(char *n)
{
    if (!n[0] || strcspn(n, " \t:()<>@,;\\\"/[]?={}") != strlen(n))
        return false;
    for (; *n; n++)
        *n = (char)tolower((unsigned char)*n);
    return true;
}

/* key.headers: request header names that are part of the key (and forwarded as sent). */
static void h_key_headers(struct st_walk *w, const yaml_node_t *val, void *obj,
                          const struct st_walk_field *f)
{
    struct st_route_cfg *r = obj;
    (void)f;
    if (!st_field_string_list(w, val, "key.headers", &r->key_headers, &r->n_key_headers, NULL))
        return;
    for (size_t i = 0; i < r->n_key_headers; i++)
        if (!header_name_lower(r->key_headers[i]))
            st_walk_error(w, val, "key.headers: '%s' is not a header name", r->key_headers[i]);
}

static const struct st_walk_field key_fields[] = {
    {"query", h_key_query, 0},
    {"headers", h_key_headers, 0},
};

static void h_key(struct st_walk *w, const yaml_node_t *val, void *obj,
                  const struct st_walk_field *f)
{
    char *where = route_where(w, obj, ".key");
    (void)f;
    st_walk_map(w, val, where, key_fields, ARRAY_LEN(key_fields), obj, NULL);
    free(where);
}

#define WB(name) offsetof(struct st_route_cfg, write_behind.name)
static const struct st_walk_field write_behind_fields[] = {
    {"flush_delay", st_field_duration, WB(flush_delay_ms)},
    {"max_retries", st_field_uint, WB(max_retries)},
    {"claim_after", st_field_duration, WB(claim_after_ms)},
    {"ordered", st_field_bool, WB(ordered)},
};
#undef WB

static void h_write_behind(struct st_walk *w, const yaml_node_t *val, void *obj,
                           const struct st_walk_field *f)
{
    char *where = route_where(w, obj, ".write_behind");
    (void)f;
    st_walk_map(w, val, where, write_behind_fields, ARRAY_LEN(write_behind_fields), obj, NULL);
    free(where);
}

/* rate: "100/s", "6000/m", "10/h" (a whole number of requests per unit). */
static void h_rl_rate(struct st_walk *w, const yaml_node_t *val, void *obj,
                      const struct st_walk_field *f)
{
    struct st_route_cfg *r = obj;
    char *s = st_walk_scalar(w, val, f->key);
    if (!s)
        return;
    char *end;
    unsigned long long n = strtoull(s, &end, 10);
    uint64_t unit_us = strcmp(end, "/s") == 0   ? 1000000ull
                       : strcmp(end, "/m") == 0 ? 60000000ull
                       : strcmp(end, "/h") == 0 ? 3600000000ull
                                                : 0;
    if (end == s || !unit_us || n == 0 || n > 1000000000ull || s[0] == '-')
        st_walk_error(w, val, "bad rate '%s' for rate_limit.rate (expected N/s, N/m or N/h, N >= 1)",
                      s);
    else
        r->rate_limit.interval_us = unit_us / n ? unit_us / n : 1;
    free(s);
}

/* key: "ip" or "header:NAME". */
static void h_rl_key(struct st_walk *w, const yaml_node_t *val, void *obj,
                     const struct st_walk_field *f)
{
    struct st_route_cfg *r = obj;
    char *s = st_walk_scalar(w, val, f->key);
    if (!s)
        return;
    if (strcmp(s, "ip") == 0) {
        free(r->rate_limit.header);
        r->rate_limit.header = NULL;
    } else if (strncmp(s, "header:", 7) == 0 && header_name_lower(s + 7)) {
        free(r->rate_limit.header);
        r->rate_limit.header = st_xstrdup(s + 7);
    } else {
        st_walk_error(w, val, "bad key '%s' for rate_limit.key (expected ip or header:NAME)", s);
    }
    free(s);
}

static void h_rl_scope(struct st_walk *w, const yaml_node_t *val, void *obj,
                       const struct st_walk_field *f)
{
    struct st_route_cfg *r = obj;
    static const char *const names[] = {"local", "fleet"};
    int i = st_field_choice(w, val, f->key, names, ARRAY_LEN(names), "local or fleet");
    if (i >= 0)
        r->rate_limit.fleet = i == 1;
}

static const struct st_walk_field rate_limit_fields[] = {
    {"rate", h_rl_rate, 0},
    {"burst", st_field_u64, offsetof(struct st_route_cfg, rate_limit.burst)},
    {"key", h_rl_key, 0},
    {"scope", h_rl_scope, 0},
};

static void h_rate_limit(struct st_walk *w, const yaml_node_t *val, void *obj,
                         const struct st_walk_field *f)
{
    struct st_route_cfg *r = obj;
    char *where = route_where(w, obj, ".rate_limit");
    (void)f;
    const yaml_node_t *seen[ARRAY_LEN(rate_limit_fields)];
    if (st_walk_map(w, val, where, rate_limit_fields, ARRAY_LEN(rate_limit_fields), obj, seen)) {
        if (!seen[0])
            st_walk_error(w, val, "%s needs a rate (e.g. rate: 100/s)", where);
        r->rate_limit.enabled = true;
        if (r->rate_limit.interval_us && !seen[1]) /* one second's worth at once */
            r->rate_limit.burst = (1000000 + r->rate_limit.interval_us - 1) / r->rate_limit.interval_us;
        if (seen[1] && r->rate_limit.burst == 0)
            st_walk_error(w, seen[1], "%s.burst must be at least 1", where);
    }
    free(where);
}

enum route_field {
    RF_MATCH,
    RF_HOST,
    RF_METHODS,
    RF_UPSTREAM,
    RF_STRATEGY,
    RF_TIER,
    RF_TTL_SOURCE,
    RF_INVALIDATES,
    RF_KEY,
    RF_CACHE_AUTHORIZED,
    RF_CACHE_SET_COOKIE,
    RF_WRITE_BEHIND,
    RF_RATE_LIMIT,
    RF_NAME,
    RF_COUNT
};

static const struct st_walk_field route_fields[RF_COUNT] = {
    [RF_MATCH] = {"match", h_match, 0},
    [RF_HOST] = {"host", h_host, offsetof(struct st_route_cfg, host)},
    [RF_METHODS] = {"methods", h_methods, 0},
    [RF_UPSTREAM] = {"upstream", h_upstream, 0},
    [RF_STRATEGY] = {"strategy", h_strategy, 0},
    [RF_TIER] = {"tier", h_tier, 0},
    [RF_TTL_SOURCE] = {"ttl_source", h_ttl_source, 0},
    [RF_INVALIDATES] = {"invalidates", NULL, 0}, /* after the walk: needs match */
    [RF_KEY] = {"key", h_key, 0},
    [RF_CACHE_AUTHORIZED] = {"cache_authorized", st_field_bool,
                             offsetof(struct st_route_cfg, cache_authorized)},
    [RF_CACHE_SET_COOKIE] = {"cache_set_cookie", st_field_bool,
                             offsetof(struct st_route_cfg, cache_set_cookie)},
    [RF_WRITE_BEHIND] = {"write_behind", h_write_behind, 0},
    [RF_RATE_LIMIT] = {"rate_limit", h_rate_limit, 0},
    [RF_NAME] = {"name", h_name, offsetof(struct st_route_cfg, name)},
};

static bool has_capture(const struct st_pattern *p, const char *name, size_t len)
{
    for (size_t i = 0; i < p->n_segs; i++)
        if (p->segs[i].capture && p->segs[i].len == len && !memcmp(p->segs[i].text, name, len))
            return true;
    return false;
}

/* One invalidates entry: a valid pattern whose {names} the route's match captures. */
static void check_invalidation(struct st_walk *w, const struct st_route_cfg *r, const char *s,
                               const yaml_node_t *item)
{
    struct st_pattern p;
    const char *why;
    if (st_pattern_compile(s, &p, &why) < 0) {
        st_walk_error(w, item, "bad invalidates pattern '%s': %s", s, why);
        return;
    }
    for (size_t i = 0; i < p.n_segs; i++) {
        if (p.segs[i].capture && r->pattern.segs &&
            !has_capture(&r->pattern, p.segs[i].text, p.segs[i].len)) {
            st_walk_error(w, item,
                          "invalidates pattern '%s' uses {%s}, which match '%s' does "
                          "not capture",
                          s, p.segs[i].text, r->match);
            break;
        }
    }
    st_pattern_finish(&p);
}

static void parse_invalidates(struct st_walk *w, const yaml_node_t *val, struct st_route_cfg *r)
{
    if (!st_walk_expect(w, val, YAML_SEQUENCE_NODE, "invalidates"))
        return;
    size_t n = (size_t)(val->data.sequence.items.top - val->data.sequence.items.start);
    const yaml_node_t **nodes = st_xcalloc(n, sizeof(*nodes));
    if (st_field_string_list(w, val, "invalidates", &r->invalidates, &r->n_invalidates, nodes))
        for (size_t i = 0; i < r->n_invalidates; i++)
            check_invalidation(w, r, r->invalidates[i], nodes[i]);
    free(nodes);
}

static void require(struct st_walk *w, const yaml_node_t *node, const yaml_node_t **seen,
                    enum route_field f, const char *where)
{
    if (!seen[f])
        st_walk_error(w, node, "missing required key '%s' in %s", route_fields[f].key, where);
}

/* The checks that look at more than one key of a route. */
static void check_route(struct st_walk *w, const yaml_node_t *node, const yaml_node_t **seen,
                        struct st_route_cfg *r, const char *where)
{
    const struct load *ld = w->user;
    require(w, node, seen, RF_MATCH, where);
    require(w, node, seen, RF_UPSTREAM, where);
    require(w, node, seen, RF_STRATEGY, where);
    if (r->strategy != ST_STRATEGY_BYPASS && !seen[RF_TIER])
        st_walk_error(w, node, "missing required key 'tier' in %s (strategy %s needs a tier)",
                      where, st_strategy_name(r->strategy));
    if (r->strategy == ST_STRATEGY_WRITE_BEHIND && !ld->cfg->redis.enabled)
        st_walk_error(w, seen[RF_STRATEGY],
                      "strategy write-behind needs redis (add a redis: section)");
    if (r->rate_limit.fleet && !ld->cfg->redis.enabled)
        st_walk_error(w, seen[RF_RATE_LIMIT],
                      "rate_limit.scope: fleet needs redis (add a redis: section)");
    if (seen[RF_INVALIDATES])
        parse_invalidates(w, seen[RF_INVALIDATES], r);
    if (r->match)
        r->id = r->name ? st_xstrdup(r->name)
                : r->host ? st_xasprintf("%s@%s", r->match, r->host)
                          : st_xstrdup(r->match);
}

/* Route ids name the routes in /stats and /metrics: one per route. */
static void check_ids(struct st_walk *w, const yaml_node_t *val, const struct st_config *cfg)
{
    for (size_t i = 0; i < cfg->n_routes; i++) {
        for (size_t j = 0; j < i && cfg->routes[i].id; j++) {
            if (!cfg->routes[j].id || strcmp(cfg->routes[i].id, cfg->routes[j].id) != 0)
                continue;
            st_walk_error(w, st_walk_node(w, val->data.sequence.items.start[i]),
                          "route '%s' has the same id as the route on line %u: give one of "
                          "them a name (routes are told apart by name, else match@host)",
                          cfg->routes[i].id, cfg->routes[j].line);
            break;
        }
    }
}

static void parse_route(struct st_walk *w, const yaml_node_t *node, struct st_route_cfg *r)
{
    const yaml_node_t *seen[RF_COUNT];
    char *where = route_where(w, r, "");
    r->line = (unsigned)node->start_mark.line + 1;
    if (st_walk_is_null(node))
        st_walk_error(w, node, "%s is empty", where);
    else if (st_walk_map(w, node, where, route_fields, RF_COUNT, r, seen))
        check_route(w, node, seen, r, where);
    free(where);
}

static void parse_routes(struct st_walk *w, const yaml_node_t *val, struct st_config *cfg)
{
    if (!st_walk_expect(w, val, YAML_SEQUENCE_NODE, "routes"))
        return;
    size_t n = (size_t)(val->data.sequence.items.top - val->data.sequence.items.start);
    if (n == 0) {
        st_walk_error(w, val, "no routes defined");
        return;
    }
    cfg->routes = st_xcalloc(n, sizeof(*cfg->routes));
    cfg->n_routes = n;
    for (size_t i = 0; i < n; i++) {
        route_init(&cfg->routes[i]);
        parse_route(w, st_walk_node(w, val->data.sequence.items.start[i]), &cfg->routes[i]);
    }
    check_ids(w, val, cfg);
}

/* ---- top level ---- */

enum top_field {
    T_LISTEN,
    T_WORKERS,
    T_ADMIN,
    T_CACHE,
    T_LIMITS,
    T_LOG,
    T_REDIS,
    T_TIERS,
    T_UPSTREAMS,
    T_ROUTES,
    T_COUNT
};

static const struct st_walk_field top_fields[T_COUNT] = {
    [T_LISTEN] = {"listen", st_field_addr, offsetof(struct st_config, listen)},
    [T_WORKERS] = {"workers", h_workers, offsetof(struct st_config, workers)},
    [T_ADMIN] = {"admin", h_admin, 0},
    [T_CACHE] = {"cache", h_cache, 0},
    [T_LIMITS] = {"limits", h_limits, 0},
    [T_LOG] = {"log", h_log, 0},
    /* these wait until the whole top level is known: */
    [T_REDIS] = {"redis", NULL, 0},
    [T_TIERS] = {"tiers", NULL, 0},
    [T_UPSTREAMS] = {"upstreams", NULL, 0},
    [T_ROUTES] = {"routes", NULL, 0},
};

/* Every section the loader reads, with its keys: what st_config_each_key lists. */
static const struct {
    const char *section;
    const struct st_walk_field *fields;
    size_t n;
} sections[] = {
    {"", top_fields, T_COUNT},
    {"admin", admin_fields, ARRAY_LEN(admin_fields)},
    {"cache", cache_fields, ARRAY_LEN(cache_fields)},
    {"limits", limits_fields, ARRAY_LEN(limits_fields)},
    {"log", log_fields, ARRAY_LEN(log_fields)},
    {"redis", redis_fields, ARRAY_LEN(redis_fields)},
    {"tiers.<name>", tier_fields, ARRAY_LEN(tier_fields)},
    {"upstreams.<name>", upstream_fields, ARRAY_LEN(upstream_fields)},
    {"routes[]", route_fields, RF_COUNT},
    {"routes[].key", key_fields, ARRAY_LEN(key_fields)},
    {"routes[].write_behind", write_behind_fields, ARRAY_LEN(write_behind_fields)},
    {"routes[].rate_limit", rate_limit_fields, ARRAY_LEN(rate_limit_fields)},
    {"upstreams.<name>.breaker", breaker_fields, ARRAY_LEN(breaker_fields)},
    {"upstreams.<name>.health", health_fields, ARRAY_LEN(health_fields)},
};

void st_config_each_key(void (*cb)(const char *section, const char *key, void *arg), void *arg)
{
    for (size_t i = 0; i < ARRAY_LEN(sections); i++)
        for (size_t k = 0; k < sections[i].n; k++)
            cb(sections[i].section, sections[i].fields[k].key, arg);
}

static void walk_root(struct st_walk *w, const yaml_node_t *root)
{
    struct load *ld = w->user;
    struct st_config *cfg = ld->cfg;
    const yaml_node_t *seen[T_COUNT];
    if (!st_walk_map(w, root, "the top level", top_fields, T_COUNT, cfg, seen))
        return;
    if (seen[T_REDIS] && !st_walk_is_null(seen[T_REDIS]))
        parse_redis(w, seen[T_REDIS], cfg);
    if (seen[T_TIERS] && !st_walk_is_null(seen[T_TIERS]))
        ld->tiers_broken = st_walk_entries(w, seen[T_TIERS], "tiers", on_tier, cfg) < 0;
    if (seen[T_UPSTREAMS] && !st_walk_is_null(seen[T_UPSTREAMS]))
        ld->upstreams_broken =
            st_walk_entries(w, seen[T_UPSTREAMS], "upstreams", on_upstream, cfg) < 0;
    if (!seen[T_ROUTES] || st_walk_is_null(seen[T_ROUTES]))
        st_walk_error(w, seen[T_ROUTES] ? seen[T_ROUTES] : root, "no routes defined");
    else
        parse_routes(w, seen[T_ROUTES], cfg);
}

static void set_defaults(struct st_config *cfg)
{
    ST_CHECK(st_parse_addr("127.0.0.1:8080", &cfg->listen) == 0);
    ST_CHECK(st_parse_addr("127.0.0.1:8081", &cfg->admin_listen) == 0);
    cfg->workers = 1;
    cfg->cache_memory = 256ull << 20;
    cfg->cache_max_object = 1ull << 20;
    cfg->limits = (struct st_limits){
        .max_header_bytes = 32ull << 10,
        .max_body = 16ull << 20,
        .header_timeout_ms = 10000,
        .idle_timeout_ms = 60000,
        .max_connections = 10000,
        .body_timeout_ms = 60000,
    };
    cfg->log_format = ST_LOG_TEXT;
    cfg->log_access = false;
    cfg->redis = (struct st_redis_cfg){
        .port = 6379,
        .timeout_ms = 25,
        .prefix = st_xstrdup("strata:"),
        .lock_wait_ms = 2000,
        .partition_ttl_ms = 5000,
        .max_object = 1ull << 20,
    };
}

static struct st_config *config_new(const char *path)
{
    struct st_config *cfg = st_xcalloc(1, sizeof(*cfg));
    cfg->path = path ? st_xstrdup(path) : NULL;
    set_defaults(cfg);
    return cfg;
}

static void report_syntax(struct st_walk *w, const yaml_parser_t *p)
{
    const char *problem = p->problem ? p->problem : "cannot parse";
    if (p->context)
        st_walk_error_mark(w, p->problem_mark, "YAML syntax error: %s (%s started at line %zu)",
                           problem, p->context, p->context_mark.line + 1);
    else
        st_walk_error_mark(w, p->problem_mark, "YAML syntax error: %s", problem);
}

/* A second document in the stream is a mistake (a stray "---"): report it. */
static void check_one_document(struct st_walk *w, yaml_parser_t *parser)
{
    yaml_document_t next;
    if (!yaml_parser_load(parser, &next)) {
        report_syntax(w, parser);
        return;
    }
    if (yaml_document_get_root_node(&next))
        st_walk_error_mark(w, next.start_mark, "only one YAML document is allowed");
    yaml_document_delete(&next);
}

static void resolve_workers(struct st_config *cfg)
{
    if (cfg->workers == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        cfg->workers = n < 1 ? 1 : n > MAX_WORKERS ? MAX_WORKERS : (unsigned)n;
    }
}

static void walk_document(struct st_walk *w, yaml_parser_t *parser)
{
    yaml_node_t *root = yaml_document_get_root_node(w->doc);
    if (!root) {
        st_walk_error_mark(w, w->doc->start_mark, "the config is empty: no routes defined");
        return;
    }
    walk_root(w, root);
    check_one_document(w, parser);
}

int st_config_load_string(const char *name, const char *yaml, size_t len, struct st_config **out,
                          struct st_diag *diag)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    struct load ld = {.cfg = NULL};
    struct st_walk w = {.doc = &doc, .file = name, .diag = diag, .user = &ld};
    *out = NULL;
    ST_CHECK(yaml_parser_initialize(&parser));
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
    if (yaml_parser_load(&parser, &doc)) {
        ld.cfg = config_new(name);
        walk_document(&w, &parser);
        yaml_document_delete(&doc);
    } else {
        report_syntax(&w, &parser);
    }
    yaml_parser_delete(&parser);
    st_walk_flush(&w);
    if (w.errors) {
        st_config_destroy(ld.cfg);
        return -EINVAL;
    }
    resolve_workers(ld.cfg);
    *out = ld.cfg;
    return 0;
}

static int read_file(const char *path, char **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    size_t cap = 4096, n = 0, got;
    if (!f)
        return -errno;
    char *p = st_xmalloc(cap);
    while ((got = fread(p + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap)
            p = st_xrealloc(p, cap *= 2);
    }
    int rc = ferror(f) ? -EIO : 0;
    fclose(f);
    if (rc < 0) {
        free(p);
        return rc;
    }
    *buf = p;
    *len = n;
    return 0;
}

int st_config_load_file(const char *path, struct st_config **out, struct st_diag *diag)
{
    char *buf = NULL;
    size_t len = 0;
    *out = NULL;
    int rc = read_file(path, &buf, &len);
    if (rc < 0) {
        st_diag_add(diag, "%s:1:1: cannot read the config: %s", path, strerror(-rc));
        return rc;
    }
    rc = st_config_load_string(path, buf, len, out, diag);
    free(buf);
    return rc;
}

int st_config_from_backend(const char *hostport, struct st_config **out, struct st_diag *diag)
{
    struct st_config *cfg = config_new(NULL);
    *out = NULL;
    cfg->upstreams = st_xcalloc(1, sizeof(*cfg->upstreams));
    cfg->n_upstreams = 1;
    struct st_upstream_cfg *u = &cfg->upstreams[0];
    *u = (struct st_upstream_cfg){.name = st_xstrdup("backend"),
                                  .servers = st_xcalloc(1, sizeof(struct st_addr)),
                                  .connect_timeout_ms = 1000,
                                  .timeout_ms = 10000,
                                  .keepalive = 64,
                                  .retry_budget = 10,
                                  .resolve_every_ms = 30000};
    if (st_parse_addr(hostport, &u->servers[0]) < 0) {
        st_diag_add(diag,
                    "-b: bad address '%s' (expected HOST:PORT with a numeric IPv4, [IPv6] or "
                    "localhost, port 1..65535)",
                    hostport);
        st_config_destroy(cfg);
        return -EINVAL;
    }
    u->n_servers = 1;
    cfg->tiers = st_xcalloc(1, sizeof(*cfg->tiers));
    cfg->n_tiers = 1;
    cfg->tiers[0] = (struct st_tier){.name = st_xstrdup("default"), .ttl_ms = 60000};
    cfg->routes = st_xcalloc(1, sizeof(*cfg->routes));
    cfg->n_routes = 1;
    route_init(&cfg->routes[0]);
    cfg->routes[0].match = st_xstrdup("/*");
    cfg->routes[0].id = st_xstrdup("/*");
    const char *why;
    ST_CHECK(st_pattern_compile("/*", &cfg->routes[0].pattern, &why) == 0);
    cfg->routes[0].strategy = ST_STRATEGY_CACHE_ASIDE;
    cfg->routes[0].tier = 0;
    *out = cfg;
    return 0;
}

static void free_strings(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void upstream_finish(struct st_upstream_cfg *u)
{
    free(u->name);
    free(u->health.path);
    for (size_t i = 0; i < u->n_servers; i++)
        st_addr_finish(&u->servers[i]);
    free(u->servers);
}

static void route_finish(struct st_route_cfg *r)
{
    free(r->match);
    free(r->name);
    free(r->id);
    st_pattern_finish(&r->pattern);
    free(r->host);
    free_strings(r->invalidates, r->n_invalidates);
    free_strings(r->key_query_names, r->n_key_query_names);
    free_strings(r->key_headers, r->n_key_headers);
    free(r->rate_limit.header);
}

void st_config_destroy(struct st_config *cfg)
{
    if (!cfg)
        return;
    free(cfg->path);
    st_addr_finish(&cfg->listen);
    st_addr_finish(&cfg->admin_listen);
    free(cfg->admin_token);
    free(cfg->log_file);
    redis_url_clear(&cfg->redis);
    free(cfg->redis.prefix);
    for (size_t i = 0; i < cfg->n_tiers; i++)
        free(cfg->tiers[i].name);
    free(cfg->tiers);
    for (size_t i = 0; i < cfg->n_upstreams; i++)
        upstream_finish(&cfg->upstreams[i]);
    free(cfg->upstreams);
    for (size_t i = 0; i < cfg->n_routes; i++)
        route_finish(&cfg->routes[i]);
    free(cfg->routes);
    free(cfg);
}
