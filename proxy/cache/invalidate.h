/*
 * invalidate.h - the one place invalidations happen.
 *
 * Every invalidation (a write through cache-aside, POST /invalidate, a
 * surrogate-key tag) goes through st_invalidate(): it is applied to the
 * local cache tiers and then handed to the tier's shared part (the Redis
 * tier drops it there and publishes it to every other instance).
 * Invalidations received from the bus are applied with
 * st_invalidate_apply(), which does neither.
 *
 * URI semantics: a URI without a query drops every entry of that path, for
 * every query and every host; a URI with a query drops that exact
 * path+query for every host. A prefix drops every key starting with it. A
 * key (ST_INVAL_KEY) drops that exact cache key.
 */
#ifndef ST_INVALIDATE_H
#define ST_INVALIDATE_H

#include <stddef.h>

#include "cache/tier.h"

struct st_stats;

/*
 * Apply to this instance's tiers, count into stats (the caller's thread's
 * block), then to the shared tier and the other instances. Returns the
 * local entries dropped.
 */
size_t st_invalidate(struct st_cache_tier *t, struct st_stats *stats, enum st_inval_kind kind,
                     const char *value, size_t len);

/*
 * Only the shared tier and the other instances: a write that just stored its
 * new entry here (ST_INVAL_KEY: the others drop their L1 copy; the shared
 * tier's value was replaced by the store itself).
 */
void st_invalidate_elsewhere(struct st_cache_tier *t, struct st_stats *stats,
                             enum st_inval_kind kind, const char *value, size_t len);

/* Apply locally only (an invalidation that came from the bus). */
size_t st_invalidate_apply(struct st_cache_tier *t, enum st_inval_kind kind, const char *value,
                           size_t len);

#endif
