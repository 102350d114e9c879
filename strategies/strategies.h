/*
 * strategies.h - the strategy implementations of this build (core/strategy.h
 * is their interface). Only main.c names them: it builds the table the
 * server resolves each route's strategy from.
 */
#ifndef ST_STRATEGIES_H
#define ST_STRATEGIES_H

#include "core/strategy.h"

extern const struct st_strategy st_strategy_bypass;
extern const struct st_strategy st_strategy_cache_aside;
extern const struct st_strategy st_strategy_write_through;
extern const struct st_strategy st_strategy_write_behind;

/*
 * The parts of cache-aside that other strategies share (cache_aside.c):
 * the read path of a GET/HEAD (lookup, stale serving, fill), its on_resume,
 * an unsafe method forwarded and then invalidating what it makes wrong, and
 * the route's `invalidates` patterns filled from the request path.
 */
void st_cache_aside_read(struct st_exchange *x);
void st_cache_aside_resume(struct st_exchange *x, enum st_flight_result result, int status);
void st_cache_aside_write(struct st_exchange *x);
void st_cache_aside_invalidate_patterns(struct st_exchange *x);
/* The same for a route and a request path, without an exchange (the write-behind flusher). */
void st_cache_aside_route_patterns(struct st_cache_tier *c, struct st_stats *stats,
                                   const struct st_route_cfg *r, const char *path, size_t plen);

#endif
