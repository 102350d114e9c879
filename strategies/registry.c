/*
 * registry.c - maps a route's strategy kind to its implementation.
 *
 * Kinds that config accepts but this build does not implement yet return
 * NULL; config validation rejects such routes, so the request path never
 * sees one.
 */
#include "core/strategy.h"

#include <stddef.h>

const struct st_strategy *st_strategy_get(enum st_strategy_kind kind)
{
    switch (kind) {
    case ST_STRATEGY_BYPASS:
        return &st_strategy_bypass;
    case ST_STRATEGY_CACHE_ASIDE:
        return &st_strategy_cache_aside;
    default:
        return NULL;
    }
}
