/*
 * strategy.h - the one small interface every caching strategy implements.
 *
 * A strategy decides what happens to a routed request: answer from cache,
 * fetch from the origin, store, invalidate. It never touches a socket: it
 * drives the exchange through the API in exchange.h, and the server never
 * knows which strategy runs.
 *
 * on_request is called once per exchange, on the exchange's worker thread,
 * when the request head is complete and a route matched. It must eventually
 * lead to exactly one response (st_exchange_forward, st_exchange_respond_error,
 * and later the cache answers), possibly from a later callback.
 */
#ifndef ST_STRATEGY_H
#define ST_STRATEGY_H

#include "config/config.h"

struct st_exchange;

struct st_strategy {
    const char *name;
    void (*on_request)(struct st_exchange *x);
    /* A parked exchange woke up (its flight ended with st_flight_result); optional. */
    void (*on_resume)(struct st_exchange *x, int flight_result, int status);
};

/* The implementation of a strategy kind, or NULL when this build has none. */
const struct st_strategy *st_strategy_get(enum st_strategy_kind kind);

extern const struct st_strategy st_strategy_bypass;
extern const struct st_strategy st_strategy_cache_aside;

#endif
