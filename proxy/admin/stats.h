/*
 * stats.h - rendering of /stats and /metrics.
 */
#ifndef ST_ADMIN_STATS_H
#define ST_ADMIN_STATS_H

#include "base/buf.h"
#include "cache/tier.h"

struct st_server;

void st_admin_stats_json(struct st_server *srv, struct st_sb *out);
void st_admin_stats_prometheus(struct st_server *srv, struct st_sb *out);
/* "none", "down", "catching-up" or "up". */
const char *st_admin_bus_state(enum st_bus_state b);

#endif
