/*
 * strategy.h - the strategy API: the one small interface every caching
 * strategy implements, and everything a strategy may call.
 *
 * A strategy decides what happens to a routed request: answer from cache,
 * fetch from the origin, store, invalidate. It talks to two interfaces
 * only: the exchange, through the calls below, and the cache tiers
 * (cache/tier.h), reached through its context. It never touches a socket,
 * the parser, a worker or the origin client, and the core never knows
 * which strategy runs: main.c builds the table of implementations and
 * each route holds its own after config load.
 *
 * on_request is called once per exchange, on the exchange's worker thread,
 * when the request head is complete and a route matched. It must eventually
 * lead to exactly one response (st_exchange_forward, st_exchange_fetch,
 * st_exchange_serve_entry, st_exchange_respond, st_exchange_respond_error),
 * possibly from a later callback. Every callback runs on the exchange's worker thread.
 */
#ifndef ST_STRATEGY_H
#define ST_STRATEGY_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "base/stats.h"
#include "cache/entry.h"
#include "cache/flight.h"
#include "config/config.h"
#include "http/http.h"

struct st_exchange;
struct st_cache_tier;
struct st_advisor_feed;
struct st_strategy_host;

struct st_strategy {
    const char *name;
    void (*on_request)(struct st_exchange *x);
    /* A parked exchange woke up: its flight ended with result (status with FAILED). */
    void (*on_resume)(struct st_exchange *x, enum st_flight_result result, int status);
    /*
     * Optional: work apart from any request (the write-behind flusher). The
     * first worker thread calls service_start once its loop runs (the state
     * returned is the strategy's), and service_stop when it begins to drain:
     * from then on the service starts nothing new; what it has in flight
     * may still end, and it frees itself once it has, then calls
     * st_host_service_ended. The worker keeps its loop and its Redis
     * connection until every stopped service has ended.
     */
    void *(*service_start)(struct st_strategy_host *h);
    void (*service_stop)(void *state);
};

/* The implementation of each strategy kind (NULL: not in this build), built by main.c. */
struct st_strategy_table {
    const struct st_strategy *kind[ST_STRATEGY__COUNT];
};

/* What a strategy works with besides its exchange: its worker thread's. */
struct st_strategy_ctx {
    struct st_cache_tier *tiers; /* the cache tiers, nearest first */
    struct st_stats *stats;      /* this thread's counters */
    uint64_t *rand;              /* this thread's random source (st_rand64) */
    int64_t (*now_ms)(void);     /* wall clock, unix milliseconds */
    struct st_advisor_feed *advisor; /* this thread's feed of the TTL-tier advisor (the server's) */
};

const struct st_strategy_ctx *st_exchange_ctx(const struct st_exchange *x);

/* Forward the request to the route's upstream and stream the answer back. */
void st_exchange_forward(struct st_exchange *x);

/*
 * Hooks a strategy sets on an origin fetch. Every hook is optional.
 *   on_head   the origin's final head: return true to relay it to the
 *             client (streaming), false to absorb it (the strategy answers
 *             from on_end, e.g. a 304 that refreshed an entry)
 *   on_body   each body piece (relayed or not)
 *   on_end    the response is complete; when absorbed the strategy must
 *             answer now (st_exchange_serve_entry / respond_error)
 *   on_error  the origin failed before a head was relayed: return true if
 *             the strategy answered (stale-if-error), false for strata's
 *             error response
 *   on_done   the exchange is ending, whatever happened (release state,
 *             end flights); called exactly once per fetch
 *   on_request_body  each piece of the request body (decoded), as it goes
 *             to the origin (a write-through keeps the representation), or
 *             as it arrives when the strategy reads it (st_exchange_read_body)
 *   on_request_end   the request body read with st_exchange_read_body is
 *             complete: the strategy answers now or later
 */
struct st_fetch_hooks {
    bool (*on_head)(struct st_exchange *x, const struct st_response_head *h);
    void (*on_body)(struct st_exchange *x, const char *p, size_t len);
    void (*on_end)(struct st_exchange *x);
    bool (*on_error)(struct st_exchange *x, int err);
    void (*on_done)(struct st_exchange *x);
    void (*on_request_body)(struct st_exchange *x, const char *p, size_t len);
    void (*on_request_end)(struct st_exchange *x);
};

/*
 * Take the request body instead of forwarding it: hooks->on_request_body
 * gets each piece (limits.max_body still applies), then on_request_end
 * (from inside this call when there is no body). The strategy answers with
 * st_exchange_respond or st_exchange_respond_error; on_done fires once.
 */
void st_exchange_read_body(struct st_exchange *x, const struct st_fetch_hooks *hooks, void *arg);

/*
 * Answer with strata's own response: status, the end-to-end headers in h
 * (may be NULL; Content-Type among them), and body. Cache-Status, Via,
 * X-Request-Id, Date and framing are added.
 */
void st_exchange_respond(struct st_exchange *x, int status, const struct st_headers *h,
                         const char *body, size_t len);

/* Validators to send instead of the client's conditional headers (revalidation). */
struct st_revalidate {
    const char *etag; /* If-None-Match, or NULL */
    size_t etag_len;
    int64_t last_modified_ms; /* If-Modified-Since, or -1 */
};

/* Forward with hooks; arg is kept for the hooks (st_exchange_hook_arg). rv may be NULL. */
void st_exchange_fetch(struct st_exchange *x, const struct st_fetch_hooks *hooks, void *arg,
                       const struct st_revalidate *rv);
void *st_exchange_hook_arg(const struct st_exchange *x);
/*
 * Before st_exchange_fetch: ask the origin for the whole representation, to
 * fill the cache: a HEAD goes out as a GET (the hooks see the body, the
 * client gets the head only), and Range / If-Range are not forwarded.
 */
void st_exchange_fetch_whole(struct st_exchange *x);

/*
 * Answer from a stored entry (the exchange takes its own reference when it
 * must keep it): the stored head plus Content-Length, Age, Cache-Status,
 * X-Request-Id; a 304 with the entry's validators when not_modified; no
 * body for HEAD.
 */
void st_exchange_serve_entry(struct st_exchange *x, struct st_entry *e, int64_t age_s,
                             bool not_modified);

/*
 * Join the tier's flight for key. LEADER: x fetches and must end the flight
 * (st_cache_tier_flight_done). PARKED: x waits; the strategy's on_resume
 * runs when the flight ends, and until then only hooks->on_done can fire
 * (the client left), with arg as the hook argument.
 */
enum st_flight_role st_exchange_join_flight(struct st_exchange *x, struct st_cache_tier *t,
                                            uint64_t hash, const char *key, size_t key_len,
                                            const struct st_fetch_hooks *hooks, void *arg);

/*
 * A copy of this GET exchange with no client, for a background refresh:
 * its answer goes nowhere but into the strategy's hooks. NULL when x is
 * not a GET.
 */
struct st_exchange *st_exchange_spawn_background(struct st_exchange *x);
bool st_exchange_is_background(const struct st_exchange *x);
/* Was this exchange parked behind another's fetch (and resumed)? */
bool st_exchange_was_parked(const struct st_exchange *x);

/* A per-exchange buffer for a Cache-Status value built at run time. */
char *st_exchange_cache_status_buf(struct st_exchange *x, size_t *cap);
const struct st_config *st_exchange_config(const struct st_exchange *x);
bool st_exchange_is_head(const struct st_exchange *x);
/* The client's address (as in X-Forwarded-For). */
const char *st_exchange_client_ip(const struct st_exchange *x);
/* The Host header value (NULL, 0 when absent). */
const char *st_exchange_host(const struct st_exchange *x, size_t *len);
/* Answer with strata's own error response; detail says why (NULL: the status's general text). */
void st_exchange_respond_error(struct st_exchange *x, int status, const char *detail);
/* The same with Retry-After: retry_after_s (a 503 that will pass, a 429). */
void st_exchange_respond_error_retry(struct st_exchange *x, int status, const char *detail,
                                     unsigned retry_after_s);
/* The Cache-Status value to send (static storage, or the exchange's buffer). */
void st_exchange_set_cache_status(struct st_exchange *x, const char *value);
/* Count this exchange as answered without the cache. */
void st_exchange_count_bypass(struct st_exchange *x);

const struct st_request_head *st_exchange_request(const struct st_exchange *x);
const struct st_route_cfg *st_exchange_route(const struct st_exchange *x);
/* The route's TTL tier, or NULL when it has none. */
const struct st_tier *st_exchange_tier(const struct st_exchange *x);

/*
 * --- services (struct st_strategy.service_start) ---
 * A service runs on its worker's thread and loop; the config it reads is
 * the worker's current one, valid until the callback it runs in returns
 * (look routes up again each time: a reload replaces them).
 */
const struct st_strategy_ctx *st_host_ctx(struct st_strategy_host *h);
uv_loop_t *st_host_loop(struct st_strategy_host *h);
const struct st_config *st_host_config(struct st_strategy_host *h);
/* A stopped service is done (see service_stop); on the worker's thread. */
void st_host_service_ended(struct st_strategy_host *h);

/* A request of a service's own to a route's upstream (everything is copied). */
struct st_origin_request {
    const struct st_route_cfg *route; /* from st_host_config */
    const char *method;
    const char *target;
    size_t target_len;
    const struct st_headers *headers; /* end-to-end headers to send, Host among them */
    const char *body;
    size_t body_len;
    const char *client_ip; /* for X-Forwarded-For; NULL: 127.0.0.1 */
};

/*
 * An exchange with no client for rq: start it with st_exchange_fetch (its
 * answer goes to the hooks only: on_head, on_body, on_end, on_error,
 * on_done; the status is the head's, or st_exchange_status after an error).
 */
struct st_exchange *st_exchange_spawn_request(struct st_strategy_host *h,
                                              const struct st_origin_request *rq);
/* The status the exchange answered or failed with (0 while none). */
int st_exchange_status(const struct st_exchange *x);

#endif
