/*
 * iplimit.h - open connections per client address, shared by every worker:
 * limits.max_connections_per_ip.
 *
 * A connection is counted in at accept (st_iplimit_open) and out when it
 * closes (st_iplimit_close), under one mutex: it is touched twice per
 * connection, never per request. Addresses with no open connection are
 * forgotten, so memory follows the open connections, not the clients seen.
 */
#ifndef ST_IPLIMIT_H
#define ST_IPLIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct st_iplimit_ent;

struct st_iplimit {
    uv_mutex_t lock;
    struct st_iplimit_ent **buckets; /* owned, n_buckets (a power of two) */
    size_t n_buckets;
    size_t n; /* addresses with open connections */
};

void st_iplimit_init(struct st_iplimit *l);
void st_iplimit_finish(struct st_iplimit *l);
/* Count a connection from ip in; false when that makes more than max (max 0: no limit). */
bool st_iplimit_open(struct st_iplimit *l, const char *ip, uint64_t max);
/* Count it out again (every open is matched by one close, admitted or not). */
void st_iplimit_close(struct st_iplimit *l, const char *ip);
/* Open connections from ip. */
uint64_t st_iplimit_count(struct st_iplimit *l, const char *ip);

#endif
