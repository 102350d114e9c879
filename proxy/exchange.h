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

#include "buf.h"
#include "config.h"
#include "http.h"

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
    const char *traceparent; /* already validated or generated */
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

/* --- strategy API --- */

/* Forward the request to the route's upstream and stream the answer back. */
void st_exchange_forward(struct st_exchange *x);
/* Answer with strata's own error response. */
void st_exchange_respond_error(struct st_exchange *x, int status);
/* The Cache-Status value to send (static storage, or owned by the route). */
void st_exchange_set_cache_status(struct st_exchange *x, const char *value);
/* Count this exchange as answered without the cache. */
void st_exchange_count_bypass(struct st_exchange *x);

const struct st_request_head *st_exchange_request(const struct st_exchange *x);
const struct st_route_cfg *st_exchange_route(const struct st_exchange *x);

#endif
