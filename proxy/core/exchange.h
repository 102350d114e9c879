/*
 * exchange.h - one client request's life, from routed head to last byte:
 * the side that feeds an exchange its request and takes its answer. The
 * side a strategy drives is in strategy.h.
 *
 * The exchange reaches its client through struct st_exchange_client_ops
 * and never names the connection behind it: core/client.c plugs in an
 * HTTP/1 client connection; a background refresh has no client at all.
 * It talks to the origin through origin/upstream.h.
 *
 * Lifetime: an exchange frees itself when its response is finished (or
 * failed) and the origin side is released. If the client goes away first,
 * its owner calls st_exchange_client_gone() and the exchange aborts the
 * origin side and frees itself; it never calls the client after that.
 *
 * Every HTTP failure becomes a status code in one place: respond_error()
 * in exchange.c, fed by st_http_status_for_error() for origin-side errors.
 */
#ifndef ST_EXCHANGE_H
#define ST_EXCHANGE_H

#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"
#include "cache/flight.h"
#include "config/config.h"
#include "http/http.h"

struct st_gen;
struct st_worker;
struct st_exchange;

/*
 * The client side of an exchange (h2o's connection callbacks and output
 * stream are the model). Every call takes the `client` pointer given at
 * creation; none is made after done or abort.
 */
struct st_exchange_client_ops {
    /*
     * Write w now if nothing is queued before it and the client takes it all:
     * true, and w is freed. Otherwise false, with w advanced past what was
     * written; the exchange then keeps what w points to alive and calls send.
     */
    bool (*try_send)(void *client, struct st_wreq *w);
    /* Queue bytes to the client (takes ownership of w). */
    void (*send)(void *client, struct st_wreq *w);
    /* Is so much queued that the origin read should pause? */
    bool (*congested)(void *client);
    /* Request-body back-pressure: stop / restart reading from the client. */
    void (*pause_reading)(void *client);
    void (*resume_reading)(void *client);
    /* The whole response is queued; keep_alive: another request may follow. */
    void (*done)(void *client, bool keep_alive);
    /* Close at once (a response cut short). */
    void (*abort)(void *client);
};

/* What the client side knows about the request when its head is complete. */
struct st_exchange_init {
    const struct st_exchange_client_ops *client_ops;
    void *client;
    struct st_worker *w;
    struct st_gen *gen; /* the exchange takes its own reference */
    const struct st_request_info *rq; /* read during st_exchange_create; its head must
                                         stay valid until the exchange ends */
};

/* Create the exchange (nothing runs yet). */
struct st_exchange *st_exchange_create(const struct st_exchange_init *init);
/*
 * Route it and run the route's strategy. The exchange may finish (and call
 * the client's done) before this returns.
 */
void st_exchange_run(struct st_exchange *x);
/* A piece of the decoded request body (the exchange references b). */
void st_exchange_request_body(struct st_exchange *x, struct st_rbuf *b, const char *p, size_t len);
/* The request body (if any) is complete. */
void st_exchange_request_end(struct st_exchange *x);
/* The client's write queue has drained below its low-water mark. */
void st_exchange_client_drained(struct st_exchange *x);
/*
 * The client is going away (closed, reset, or a request-side error).
 * Returns true when a response head had already been sent, so the caller
 * knows whether it may still write an error response. x is freed (now or
 * once the origin side is closed); never use it again.
 */
bool st_exchange_client_gone(struct st_exchange *x);

/* A parked exchange's flight ended (worker thread): run its strategy's on_resume. */
void st_exchange_resume(struct st_exchange *x, enum st_flight_result result, int status);

#endif
