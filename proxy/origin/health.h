/*
 * health.h - keeping an upstream's address set current, on the main loop:
 * resolving its host names and running its active health checks.
 *
 * Names: resolved once, synchronously, when the watch starts (before the
 * generation serves a request; on a reload the old generation serves
 * meanwhile), then with uv_getaddrinfo every `resolve_every`, and within a
 * second after a worker reports a connect failure. Every A and AAAA address
 * is used. A resolve that fails keeps the addresses the name had, and says so
 * in the log.
 *
 * Checks (`health:`): every `interval`, each address gets
 * `GET <path> HTTP/1.1` with `Connection: close`; a 2xx or 3xx status line
 * within `timeout` passes, anything else fails (servers.h counts them).
 */
#ifndef ST_HEALTH_H
#define ST_HEALTH_H

#include <uv.h>

#include "config/config.h"
#include "origin/servers.h"

struct st_origin_watch;

/* NULL when there is nothing to watch (numeric servers, no health: block). Main thread. */
struct st_origin_watch *st_origin_watch_start(uv_loop_t *loop, const struct st_upstream_cfg *cfg,
                                              struct st_servers *servers);
/* Stop resolving and checking; the watch frees itself once its handles are closed. */
void st_origin_watch_stop(struct st_origin_watch *w);

#endif
