/*
 * config.h - strata's configuration: the data model every other part reads.
 *
 * A struct st_config is built once (from a YAML file, or from `-b HOST:PORT`),
 * validated whole, and then never changed: the server shares it read-only
 * between threads and swaps in a new one on SIGHUP. It is reference-counted
 * by its users (proxy/), not here; this module only creates and destroys.
 *
 * Every string and array below is owned by the st_config and freed by
 * st_config_destroy(). Names (tier, upstream) are resolved to indexes at load
 * time, so nothing downstream looks a name up on the request path.
 *
 * Errors are reported as diagnostics "FILE:LINE:COL: message" (1-based line
 * and column of the offending YAML node); loading reports every error it
 * finds, not only the first.
 */
#ifndef ST_CONFIG_H
#define ST_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "base/log.h"
#include "config/pattern.h"

enum st_strategy_kind {
    ST_STRATEGY_BYPASS = 0,
    ST_STRATEGY_CACHE_ASIDE,
    ST_STRATEGY_WRITE_THROUGH,
    ST_STRATEGY_WRITE_BEHIND,
    ST_STRATEGY__COUNT
};

struct st_strategy; /* core/strategy.h: set on each route after load */

enum st_ttl_source {
    ST_TTL_SOURCE_ORIGIN = 0,
    ST_TTL_SOURCE_TIER,
};

/* Request methods a route may be limited to (bit set; 0 = every method). */
enum st_method_bit {
    ST_M_GET = 1u << 0,
    ST_M_HEAD = 1u << 1,
    ST_M_POST = 1u << 2,
    ST_M_PUT = 1u << 3,
    ST_M_PATCH = 1u << 4,
    ST_M_DELETE = 1u << 5,
    ST_M_OPTIONS = 1u << 6,
    ST_M_OTHER = 1u << 7, /* any other method token */
};

/*
 * A "HOST:PORT": a numeric address, or (upstream servers only) a host name
 * that the origin layer resolves at run time (host set, sa unset).
 */
struct st_addr {
    char *text; /* owned: as written, e.g. "127.0.0.1:8080" */
    struct sockaddr_storage sa;
    socklen_t len;
    char *host;    /* owned: the name to resolve; NULL when numeric */
    uint16_t port; /* with host: the port, host order */
};

struct st_tier {
    char *name; /* owned */
    uint64_t ttl_ms;
    unsigned jitter_pct; /* 0..100 */
    uint64_t stale_while_revalidate_ms;
    uint64_t stale_if_error_ms;
    unsigned stats_slot; /* assigned by the server: the tier's counters in /stats */
};

struct st_upstream_cfg {
    char *name; /* owned */
    struct st_addr *servers; /* owned array of n_servers, n_servers >= 1 */
    size_t n_servers;
    uint64_t connect_timeout_ms; /* default 1s */
    uint64_t timeout_ms;         /* default 10s: response head, and max gap between reads */
    unsigned keepalive;          /* idle connections kept per worker; default 64 */
    unsigned retry_budget;       /* retries at most this % of requests (plus a floor); default 10 */
    uint64_t resolve_every_ms;   /* host names in servers are resolved again this often; 30s */
    struct {
        bool enabled;        /* the upstream has a `health:` */
        char *path;          /* owned; default "/" */
        uint64_t interval_ms; /* default 5s */
        uint64_t timeout_ms;  /* default 1s */
        unsigned fails;       /* failed checks in a row that take a server out; default 3 */
        unsigned passes;      /* passed checks in a row that bring it back; default 2 */
    } health;
    struct {
        bool enabled;          /* the upstream has a `breaker:` */
        uint64_t window_ms;    /* default 10s */
        uint64_t min_requests; /* default 20 */
        unsigned error_ratio;  /* percent, default 50 */
        uint64_t open_for_ms;  /* default 5s */
        unsigned probes;       /* default 3 */
    } breaker;
    unsigned stats_slot;         /* assigned by the server: latency histogram in /stats */
};

enum st_key_query {
    ST_KEY_QUERY_ALL = 0, /* default: the whole query, parameters sorted */
    ST_KEY_QUERY_NONE,
    ST_KEY_QUERY_LIST, /* only the parameters named in key_query_names */
};

struct st_route_cfg {
    char *match; /* owned: the pattern as written */
    char *name;  /* owned; optional */
    char *id;    /* owned: name, else match, else match@host: the route in /stats (unique) */
    struct st_pattern pattern;
    char *host;       /* owned; NULL = any host. Compared case-insensitively, port ignored */
    unsigned methods; /* st_method_bit set; 0 = all methods */
    size_t upstream;  /* index into st_config.upstreams */
    enum st_strategy_kind strategy;
    const struct st_strategy *impl; /* the kind's implementation, set by the server after load */
    int tier; /* index into st_config.tiers; -1 when the route has none (bypass) */
    enum st_ttl_source ttl_source;
    char **invalidates; /* owned array of n_invalidates patterns, may hold {name} */
    size_t n_invalidates;
    enum st_key_query key_query;
    char **key_query_names; /* owned array of n_key_query_names */
    size_t n_key_query_names;
    char **key_headers; /* owned array of n_key_headers, lowercase: part of the key, forwarded */
    size_t n_key_headers;
    bool cache_authorized; /* allow storing answers to requests with Authorization */
    bool cache_set_cookie; /* allow storing answers with Set-Cookie */
    struct {
        uint64_t flush_delay_ms; /* default 1s */
        unsigned max_retries;    /* default 8 */
        uint64_t claim_after_ms; /* default 30s: a silent owner's partitions are taken over */
        bool ordered;            /* PATCH is queued too, in order with PUT and DELETE */
    } write_behind;
    struct {
        bool enabled;            /* the route has a rate_limit */
        uint64_t interval_us;    /* 1 s / rate: what one request costs */
        uint64_t burst;          /* requests at once; default: one second's worth */
        char *header;            /* owned, lowercase: key by this header; NULL: by client address */
        bool fleet;              /* scope: fleet: one limit across the instances, in Redis */
    } rate_limit;
    unsigned line; /* line of the route in the file (0 for -b mode) */
    unsigned stats_slot; /* assigned by the server: the route's counters in /stats */
};

struct st_limits {
    uint64_t max_header_bytes; /* default 32 KiB */
    uint64_t max_body;         /* default 16 MiB */
    uint64_t header_timeout_ms; /* default 10s */
    uint64_t idle_timeout_ms;   /* default 60s */
    uint64_t max_connections;   /* default 10000 (per instance) */
    uint64_t max_connections_per_ip; /* default 0: no limit per client address */
    uint64_t body_timeout_ms;   /* default 60s: the whole request body, from the end of its head */
    bool underscores_in_headers; /* default false: request headers with '_' are not forwarded */
};

struct st_redis_cfg {
    bool enabled; /* false when the `redis:` section is absent */
    char *url;    /* owned; e.g. "redis://127.0.0.1:6379/0" */
    char *host;   /* owned; parsed from url (NULL with unix_path) */
    char *unix_path; /* owned; unix:///path.sock, else NULL */
    int port;
    int db;
    char *password;         /* owned; NULL when the url has none */
    uint64_t timeout_ms;    /* default 25ms */
    char *prefix;           /* owned; default "strata:" */
    uint64_t lock_wait_ms;  /* default 2s */
    uint64_t partition_ttl_ms; /* default 5s */
    uint64_t max_object;       /* default 1 MiB: largest body written to Redis */
};

struct st_config {
    char *path; /* owned; NULL for -b mode */
    struct st_addr listen;       /* default 127.0.0.1:8080 */
    unsigned workers;            /* default 1; 0 in the file = one per core (resolved here) */
    struct st_addr admin_listen; /* default 127.0.0.1:8081 */
    char *admin_token;           /* owned; NULL or "" = no token required */
    uint64_t cache_memory;       /* default 256 MiB */
    uint64_t cache_max_object;   /* default 1 MiB */
    struct st_limits limits;
    enum st_log_format log_format; /* default text */
    bool log_access;               /* default false */
    char *log_file;                /* owned; NULL: stderr */
    struct st_redis_cfg redis;
    struct st_tier *tiers; /* owned array */
    size_t n_tiers;
    struct st_upstream_cfg *upstreams; /* owned array */
    size_t n_upstreams;
    struct st_route_cfg *routes; /* owned array, in file order */
    size_t n_routes;
};

/* Diagnostics collected while loading: each a full "FILE:LINE:COL: message". */
struct st_diag {
    char **lines; /* owned */
    size_t n;
};

void st_diag_add(struct st_diag *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void st_diag_finish(struct st_diag *d);

/*
 * Load and validate a YAML config file.
 * Returns 0 and sets *out (caller owns, free with st_config_destroy), or
 * -EINVAL with every problem appended to diag (the file unreadable: -errno,
 * one diagnostic). Never prints.
 */
int st_config_load_file(const char *path, struct st_config **out, struct st_diag *diag);

/* Same, from a YAML text in memory; `name` stands for the file in diagnostics. */
int st_config_load_string(const char *name, const char *yaml, size_t len, struct st_config **out,
                          struct st_diag *diag);

/*
 * The `-b HOST:PORT` quick mode: one upstream "backend", one catch-all route
 * (one pattern: "/" followed by "*"; cache-aside, tier "default" with ttl 60s), memory
 * tier only, listen 127.0.0.1:8080, admin 127.0.0.1:8081. Returns 0 or -EINVAL with a diagnostic.
 */
int st_config_from_backend(const char *hostport, struct st_config **out, struct st_diag *diag);

/*
 * Call cb for every key the loader accepts: section "" (the top level),
 * "admin", ..., "tiers.<name>", "routes[]", "routes[].key", ...
 */
void st_config_each_key(void (*cb)(const char *section, const char *key, void *arg), void *arg);

/* Free a config; NULL is a no-op. */
void st_config_destroy(struct st_config *cfg);

/* "250ms", "10s", "3m", "1h", "0" -> milliseconds. Returns 0 or -EINVAL. */
int st_parse_duration(const char *s, uint64_t *ms);
/* "512B", "32KiB", "256MiB", "1GiB", "0" -> bytes. Returns 0 or -EINVAL. */
int st_parse_size(const char *s, uint64_t *bytes);
/* "10%" or "10" (0..100) -> percent. Returns 0 or -EINVAL. */
int st_parse_percent(const char *s, unsigned *pct);
/* "HOST:PORT" with a numeric IPv4, "[IPv6]" or "localhost" -> address. 0 or -EINVAL. */
int st_parse_addr(const char *s, struct st_addr *out);
/* As st_parse_addr, and also "NAME:PORT" with a host name (out->host set). */
int st_parse_server_addr(const char *s, struct st_addr *out);
void st_addr_finish(struct st_addr *a);
/* Is a in 127.0.0.0/8 or ::1? */
bool st_addr_is_loopback(const struct st_addr *a);
/*
 * Expand ${VAR} and ${VAR:-default} from the environment into a new string
 * (*out, caller frees). An unset ${VAR} without default is an error: returns
 * -ENOENT and points *bad at the variable name's start in `in`. "$$" is a
 * literal "$".
 */
int st_expand_env(const char *in, char **out, const char **bad);

/* "cache-aside" etc. <-> enum; returns -EINVAL for an unknown name. */
int st_strategy_from_name(const char *name, enum st_strategy_kind *out);
const char *st_strategy_name(enum st_strategy_kind k);
/* Method token -> st_method_bit (ST_M_OTHER for unknown tokens). */
unsigned st_method_bit_from_name(const char *name, size_t len);

#endif
