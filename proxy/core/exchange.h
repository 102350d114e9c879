/*
 * exchange.h - one client request's life, from routed head to last byte.
 *
 * The client connection (conn.c) creates an exchange when a request head is
 * complete, feeds it the request body, and hands it the client socket for
 * the response. The route's strategy then drives it with the calls under
 * "strategy API". The exchange talks to the origin through upstream.h.
 *
 * Lifetime: an exchange frees itself when its response is finished (or
 * failed) and the origin side is released. If the client goes away first,
 * conn.c calls st_exchange_client_gone() and the exchange aborts the origin
 * side and frees itself; it never calls into a connection after that.
 *
 * Every HTTP failure becomes a status code in one place: respond_error()
 * here, fed by st_http_status_for_error() for origin-side errors.
 */
#ifndef ST_EXCHANGE_H
#define ST_EXCHANGE_H

#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"
#include "config/config.h"
#include "http/http.h"

struct st_conn;
struct st_gen;
struct st_worker;
struct st_exchange;

/* What conn.c knows about the request when its head is complete. */
struct st_exchange_init {
    struct st_conn *conn;
    struct st_worker *w;
    struct st_gen *gen; /* the exchange takes its own reference */
    const struct st_route_cfg *route;
    struct st_request_head req; /* headers/target owned by conn, valid until the exchange ends */
    const char *client_ip;
    const char *request_id;  /* already validated or generated */
    bool has_body;
    bool chunked;
    uint64_t content_length;
    bool client_keep_alive;
    bool head_request;
};

/* --- called by conn.c --- */

/* Create the exchange (nothing runs yet). */
struct st_exchange *st_exchange_create(const struct st_exchange_init *init);
/*
 * Route it and run the route's strategy. The exchange may finish (and call
 * st_conn_exchange_done) before this returns.
 */
void st_exchange_run(struct st_exchange *x);
/* A piece of the decoded request body (the exchange references b). */
void st_exchange_request_body(struct st_exchange *x, struct st_rbuf *b, const char *p, size_t len);
/* The request body (if any) is complete. */
void st_exchange_request_end(struct st_exchange *x);
/* The client's write queue has drained below the low-water mark. */
void st_exchange_client_drained(struct st_exchange *x);
/*
 * The client connection is going away (closed, reset, or a request-side
 * error). Returns true when a response head had already been sent, so the
 * caller knows whether it may still write an error response. x is freed
 * (now or once the origin side is closed); never use it again.
 */
bool st_exchange_client_gone(struct st_exchange *x);

/* A parked exchange was handed back by a flight: run its strategy's on_resume. */
void st_exchange_resume(struct st_exchange *x, int flight_result, int status);

/* --- strategy API --- */

struct st_upstream_head;
struct st_cache_entry;

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
 */
struct st_fetch_hooks {
    bool (*on_head)(struct st_exchange *x, const struct st_upstream_head *h);
    void (*on_body)(struct st_exchange *x, const char *p, size_t len);
    void (*on_end)(struct st_exchange *x);
    bool (*on_error)(struct st_exchange *x, int err);
    void (*on_done)(struct st_exchange *x);
};

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
 * Answer from a stored entry (the exchange takes its own reference): the
 * stored head plus Content-Length, Age, Cache-Status, X-Request-Id; a 304
 * with the entry's validators when not_modified; no body for HEAD.
 */
void st_exchange_serve_entry(struct st_exchange *x, struct st_cache_entry *e, int64_t age_s,
                             bool not_modified);

/*
 * A copy of this GET exchange with no client, for a background refresh:
 * its answer goes nowhere but into the strategy's hooks. NULL when x is
 * not a GET.
 */
struct st_exchange *st_exchange_spawn_background(struct st_exchange *x);
bool st_exchange_is_background(const struct st_exchange *x);
/* Was this exchange parked behind another's fetch (and resumed)? */
bool st_exchange_was_parked(const struct st_exchange *x);
/*
 * Park: the exchange waits for a flight. Only hooks->on_done can fire while
 * parked (the client left); st_exchange_unpark() clears the hooks on resume.
 */
void st_exchange_park(struct st_exchange *x, const struct st_fetch_hooks *hooks, void *arg);
void st_exchange_unpark(struct st_exchange *x);

/* A per-exchange buffer for a Cache-Status value built at run time. */
char *st_exchange_cache_status_buf(struct st_exchange *x, size_t *cap);
struct st_worker *st_exchange_worker(const struct st_exchange *x);
const struct st_config *st_exchange_config(const struct st_exchange *x);
bool st_exchange_is_head(const struct st_exchange *x);
/* The Host header value (NULL, 0 when absent). */
const char *st_exchange_host(const struct st_exchange *x, size_t *len);
/* Answer with strata's own error response. */
void st_exchange_respond_error(struct st_exchange *x, int status);
/* The Cache-Status value to send (static storage, or owned by the route). */
void st_exchange_set_cache_status(struct st_exchange *x, const char *value);
/* Count this exchange as answered without the cache. */
void st_exchange_count_bypass(struct st_exchange *x);

const struct st_request_head *st_exchange_request(const struct st_exchange *x);
const struct st_route_cfg *st_exchange_route(const struct st_exchange *x);

#endif
