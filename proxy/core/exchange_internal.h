/*
 * exchange_internal.h - the exchange's state, shared by exchange.c (one
 * request's life, the origin relay) and exchange_cache.c (answers from a
 * stored entry). Nothing outside proxy/core/exchange*.c includes it.
 *
 * States (phase):
 *   ROUTED     strategy running; nothing sent to the client yet
 *   FORWARDING request going to the origin (up set)
 *   RESPONDING response head sent; body streaming from the origin
 *   DONE       response complete or failed; the exchange frees itself
 */
#ifndef ST_EXCHANGE_INTERNAL_H
#define ST_EXCHANGE_INTERNAL_H

#include "cache/entry.h"
#include "core/exchange.h"
#include "core/strategy.h"

enum phase { PH_ROUTED, PH_FORWARDING, PH_RESPONDING, PH_DONE };

struct st_exchange {
    const struct st_exchange_client_ops *cops;
    void *client; /* NULL once the client is gone */
    struct st_worker *w;
    struct st_gen *gen; /* reference held */
    const struct st_route_cfg *route;
    struct st_request_head req;
    const char *host; /* Host header value (into req.headers), or NULL: found once */
    size_t host_len;
    char client_ip[64];
    char id[129];
    char traceparent[56];
    bool has_body, chunked, head_request, client_keep_alive;
    bool fetch_whole; /* the origin is asked for the whole GET (to fill the cache) */
    uint64_t content_length;
    bool request_ended;
    bool reading_body; /* the strategy takes the body (st_exchange_read_body) */
    bool body_told;    /* its on_request_end ran */
    bool upload_paused;
    enum phase phase;
    int attempts;
    struct st_upstream_conn *up;
    struct st_wreq **body_q; /* pieces waiting for the origin connection */
    size_t n_body_q, cap_body_q;
    /* strategy */
    const struct st_fetch_hooks *hooks;
    void *hook_arg;
    bool has_rv;
    struct st_revalidate rv;
    bool absorb;     /* the origin's answer is not relayed */
    bool background; /* no client: a refresh */
    bool parked;
    struct st_waiter *waiter; /* while parked on a flight (the flight or the worker owns it) */
    int depth;                /* inside a strategy hook: finish() defers the free */
    bool free_pending;
    struct st_headers own_headers; /* a background copy's request headers */
    char *own_target;
    /* response */
    const char *cache_status;
    char cache_status_buf[192];
    char *extra_head; /* owned: header lines strata adds to any answer (RateLimit-*), or NULL */
    /* scope: fleet: waiting for Redis's verdict; the request body is held meanwhile */
    struct rl_wait *rl_wait;
    struct held_piece *held;
    size_t n_held, cap_held;
    bool held_end;
    int status;
    enum st_framing framing;
    bool keep_alive;
    bool from_cache;
    struct st_wreq *out; /* batch toward the client */
    uint64_t bytes_out;
    uint64_t body_bytes;
    uint64_t start_ns;
    uint64_t origin_start_ns;
};

/* The exchange is over: tell the client, the hooks, and free (now or after the hook). */
void st_exchange__finish(struct st_exchange *x);
/*
 * Hand what is gathered in x->out to the client: written at once when the
 * socket takes it all, else queued; pin (may be NULL) is an entry the pieces
 * point into, referenced only when the write has to wait.
 */
void st_exchange__send_out(struct st_exchange *x, struct st_entry *pin);
void st_exchange__flush_out(struct st_exchange *x);
/* The batch toward the client with room for nbufs pieces and small copied bytes. */
struct st_wreq *st_exchange__out_room(struct st_exchange *x, unsigned nbufs, size_t small);

#endif
