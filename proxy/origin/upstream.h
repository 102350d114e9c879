/*
 * upstream.h - the origin side: a keep-alive connection pool per upstream
 * per worker, and the client half of an HTTP/1.1 exchange with the origin.
 *
 * Pool: idle connections are kept up to the upstream's `keepalive`; servers
 * are picked round-robin. A pool belongs to one worker's config generation
 * (worker.h); when that generation is retired the pool closes its idle
 * connections and closes busy ones as they come back.
 *
 * Upstream connection (st_upstream_conn): one user (an exchange) at a time. The user
 * writes the request with st_upstream_write() (queued until connected), and
 * hears back through st_upstream_cbs. After on_end or on_error the user must
 * not touch the connection again: it is back in the pool or closing.
 *
 * Timeouts: connect_timeout until connected; then `timeout` for the response
 * head, counted from the last piece of the request written (an upload that
 * is still arriving from the client is not the origin's delay), and for
 * every gap between reads (paused reading does not count).
 */
#ifndef ST_UPSTREAM_H
#define ST_UPSTREAM_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "base/buf.h"
#include "config/config.h"
#include "http/http.h"
#include "base/stats.h"

struct st_upstream_conn;
struct st_upstream_pool;

/* The largest response head (header names and values) strata reads from an origin: over it, 502. */
#define ST_UPSTREAM_MAX_HEAD (64 * 1024)


/* May a failed request be sent again, on a new connection? */
enum st_upstream_retry {
    ST_UPSTREAM_NO_RETRY = 0,
    ST_UPSTREAM_RETRY_IDEMPOTENT, /* a pooled connection died before any byte of the answer */
    ST_UPSTREAM_RETRY_ANY,        /* the connection never came up: the origin saw nothing */
};

struct st_upstream_cbs {
    /* An interim (1xx other than 101) head arrived; optional. head->headers as for on_head. */
    void (*on_interim)(void *user, const struct st_response_head *head);
    /* The final (non-1xx) response head arrived. */
    void (*on_head)(void *user, const struct st_response_head *head);
    /* A piece of the decoded body; reference b to keep it. */
    void (*on_body)(void *user, struct st_rbuf *b, const char *p, size_t len);
    /* A read's worth of callbacks is over: flush what was batched. */
    void (*on_flush)(void *user);
    /* The response is complete; what was batched since the last on_flush is still unsent. */
    void (*on_end)(void *user);
    /*
     * The exchange with the origin failed (negative errno: -ETIMEDOUT,
     * -ECONNREFUSED, -EPROTO for a bad response, -EMSGSIZE for a head over
     * ST_UPSTREAM_MAX_HEAD, ...). retry says whether it may be sent again on
     * another connection (a timeout never may); such a failure is not counted
     * in origin.errors here: the user counts it as a retry or as an error.
     */
    void (*on_error)(void *user, int err, enum st_upstream_retry retry);
    /* Queued request bytes were written: the user may send more. */
    void (*on_drain)(void *user);
};

struct st_breaker;
struct st_servers;

/*
 * breaker: the upstream's (shared by the workers; NULL: none); servers: its
 * addresses and their health (servers.h). Both outlive the pool.
 */
struct st_upstream_pool *st_upstream_pool_create(uv_loop_t *loop, const struct st_upstream_cfg *cfg,
                               struct st_stats *stats, struct st_breaker *breaker,
                               struct st_servers *servers);
/* No address is known for the upstream yet (its host names did not resolve): 502, never retried. */
#define ST_UPSTREAM_ENOADDR (-EADDRNOTAVAIL)
/*
 * A request refused because the upstream's breaker is open fails with
 * ST_UPSTREAM_EBREAKER (never retried); this says when to come back.
 */
#define ST_UPSTREAM_EBREAKER (-EHOSTDOWN)
unsigned st_upstream_retry_after_s(const struct st_upstream_pool *pool);
/*
 * Retry budget: may a failed request be sent once more? Retries are held to
 * the upstream's retry_budget percent of the requests of the last
 * ST_UPSTREAM_BUDGET_WINDOW_MS, plus ST_UPSTREAM_BUDGET_FLOOR (per worker), so
 * an origin in trouble never sees the load multiplied. true: take the retry.
 */
#define ST_UPSTREAM_BUDGET_WINDOW_MS 10000
#define ST_UPSTREAM_BUDGET_FLOOR 3
bool st_upstream_retry_budget_take(struct st_upstream_pool *pool);

/* Close idle connections; busy ones close when released. Frees when all are gone. */
void st_upstream_pool_retire(struct st_upstream_pool *pool);

/*
 * Take a connection for one request: an idle pooled one, or a new one
 * (connecting in the background). `fresh` forces a new connection (a retry).
 * Never fails synchronously: a connect failure arrives as on_error.
 */
struct st_upstream_conn *st_upstream_acquire(struct st_upstream_pool *pool, const struct st_upstream_cbs *cbs,
                                    void *user, bool fresh, const char *request_id);
/* Queue bytes toward the origin (takes ownership of w). */
void st_upstream_write(struct st_upstream_conn *up, struct st_wreq *w);
/* Bytes queued or in flight toward the origin. */
size_t st_upstream_pending(const struct st_upstream_conn *up);
/* The whole request has been queued. */
void st_upstream_request_done(struct st_upstream_conn *up);
/* The request was HEAD: the response has no body whatever its headers say. */
void st_upstream_expect_no_body(struct st_upstream_conn *up);
/* Back-pressure from the client side. */
void st_upstream_pause(struct st_upstream_conn *up);
void st_upstream_resume(struct st_upstream_conn *up);
/* Give up on the exchange: close the connection; no further callbacks. */
void st_upstream_abort(struct st_upstream_conn *up);

#endif
