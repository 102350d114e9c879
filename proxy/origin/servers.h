/*
 * servers.h - the addresses behind one upstream and their health, shared by
 * every worker of a config generation.
 *
 * Each entry of upstreams.<name>.servers gives addresses: a numeric one
 * itself, a host name every address it resolves to (health.h resolves them
 * and replaces the set; an address kept across a resolve keeps its state).
 * Workers pick addresses round-robin and report how each request went:
 *
 *   - passive health: a connect failure takes the address out at once; a 5xx
 *     or a timeout counts, and `health.fails` of them in a row (3 without a
 *     `health:` block) take it out. Out means skipped for a backoff that
 *     doubles from 1 s to 30 s, with +-20 % jitter; the first request after
 *     the backoff is a trial: a success brings it back, a failure takes it
 *     out again for twice as long.
 *   - active health (`health:`): `fails` failed checks in a row take it out
 *     until `passes` checks in a row succeed.
 *
 * The last address that is in is never taken out: with every server failing
 * requests still go somewhere, and the breaker (breaker.h) is what stops them.
 *
 * Threads: one mutex per set, taken when a connection is opened and when its
 * outcome is known (never for a request on a pooled connection). Reference
 * counted: the generation holds one, the resolver and checker another.
 */
#ifndef ST_SERVERS_H
#define ST_SERVERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "config/config.h"

/* Passive backoff: first and longest time an address is skipped. */
#define ST_SERVERS_BACKOFF_MS 1000
#define ST_SERVERS_BACKOFF_MAX_MS 30000
/* 5xx or timeouts in a row that take an address out, without a health: block. */
#define ST_SERVERS_FAILS 3

struct st_servers;

struct st_servers *st_servers_create(const struct st_upstream_cfg *cfg);
void st_servers_ref(struct st_servers *s);
void st_servers_unref(struct st_servers *s);

/*
 * Replace the addresses that cfg->servers[from] gives (a resolve's answer; n may
 * not be 0). false: they are the ones it had (nothing changed).
 */
bool st_servers_set(struct st_servers *s, size_t from, const struct sockaddr_storage *addrs,
                    size_t n);

struct st_server_pick {
    struct sockaddr_storage sa;
    socklen_t len;
    uint32_t id; /* for st_servers_report */
};
/* The next address to connect to (now_ms: monotonic ms). false: no address is known yet. */
bool st_servers_pick(struct st_servers *s, uint64_t now_ms, struct st_server_pick *out);

enum st_server_outcome {
    ST_SERVER_OK,          /* an answer below 500 */
    ST_SERVER_FAILED,      /* a 5xx, a timeout, a bad answer */
    ST_SERVER_UNREACHABLE, /* the connection did not come up */
};
void st_servers_report(struct st_servers *s, uint32_t id, uint64_t now_ms,
                       enum st_server_outcome o);
/* An active check of address id passed or failed. */
void st_servers_checked(struct st_servers *s, uint32_t id, uint64_t now_ms, bool pass);

/* Bumped whenever the set of addresses changes; any thread, no lock. */
unsigned st_servers_generation(struct st_servers *s);
/* Is address id still in the set? */
bool st_servers_has(struct st_servers *s, uint32_t id);

/* Ask for the names to be resolved again soon (after a connect failure); any thread. */
void st_servers_want_resolve(struct st_servers *s);
/* Was that asked since the last call? (the resolver's side) */
bool st_servers_take_resolve_wish(struct st_servers *s);

enum st_server_state { ST_SERVER_UP, ST_SERVER_DOWN, ST_SERVER_FAILING_CHECKS };
struct st_server_info {
    uint32_t id;
    size_t from; /* index into cfg->servers */
    struct sockaddr_storage sa;
    socklen_t len;
    char addr[64]; /* "1.2.3.4:80", "[::1]:80" */
    enum st_server_state state;
    uint64_t down_for_ms; /* ST_SERVER_DOWN: left of the backoff */
    unsigned fails;       /* failed requests in a row */
};
/* The current addresses, at most cap of them; returns how many there are. */
size_t st_servers_list(struct st_servers *s, uint64_t now_ms, struct st_server_info *out,
                       size_t cap);
const char *st_server_state_name(enum st_server_state st);
/* "1.2.3.4:80" / "[::1]:80" into buf (at least 64 bytes). */
void st_servers_format(const struct sockaddr_storage *sa, char *buf, size_t cap);

#endif
