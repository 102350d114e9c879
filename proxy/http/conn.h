/*
 * conn.h - a client connection: HTTP/1.1 request parsing (llhttp, strict),
 * limits and timeouts, pipelining, and the write side toward the client.
 *
 * One request at a time is handed to an exchange; bytes of the next
 * (pipelined) request stay unparsed in the read buffer until the current
 * response is done, so responses always leave in order. A connection lives
 * on its host's loop and is freed only from its handles' close callbacks.
 *
 * Must not: know what serves a request. The host (a worker, core/client.c)
 * starts a stream per request through struct st_conn_host_ops, and the
 * stream answers through the calls below.
 */
#ifndef ST_CONN_H
#define ST_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "base/buf.h"
#include "base/stats.h"
#include "config/config.h"
#include "http/http.h"

struct st_conn;
struct st_conn_host;

/*
 * What the connections need from whoever accepted them (a worker): every
 * callback runs on the host's loop thread.
 */
struct st_conn_host_ops {
    /*
     * Admission: a connection is counted in (false: over max_connections or
     * max_connections_per_ip) and out, with its client address ("" when the
     * accept failed and there is none).
     */
    bool (*admit)(struct st_conn_host *h, const char *client_ip);
    void (*release)(struct st_conn_host *h, const char *client_ip);
    /* A connection was freed (after release): a draining host may be done. */
    void (*freed)(struct st_conn_host *h);
    /* Hold the host's current settings for a connection; settings_put drops them. */
    void (*settings_hold)(struct st_conn_host *h, void *settings);
    void (*settings_put)(struct st_conn_host *h, void *settings);
    /* The request limits under settings (valid while they are held). */
    const struct st_limits *(*limits)(void *settings);
    /*
     * A request head is complete: create its stream, served under settings
     * (nothing runs yet).
     */
    void *(*request)(struct st_conn_host *h, struct st_conn *c, void *settings,
                     const struct st_request_info *rq);
    /* Run the stream just created; it may end (st_conn_stream_done) before this returns. */
    void (*start)(void *stream);
    /* The stream's request body, its end, the client's drained write queue. */
    void (*request_body)(void *stream, struct st_rbuf *b, const char *p, size_t len);
    void (*request_end)(void *stream);
    void (*drained)(void *stream);
    /* The connection is going away: true when a response head was already sent. */
    bool (*gone)(void *stream);
};

struct st_conn_host {
    const struct st_conn_host_ops *ops;
    uv_loop_t *loop;
    struct st_stats *stats;
    void *settings;        /* what new requests are served under: swapped by the host (reload) */
    struct st_conn *conns; /* every open connection (for drain) */
    bool draining;         /* answers close their connections; no new request is read */
    char id_prefix[16];    /* request ids: random per host start ... */
    uint64_t id_counter;   /* ... and a counter */
};

/* Accept one pending connection from the host's listener. */
void st_conn_accept(struct st_conn_host *h, uv_stream_t *listener);

/* --- for the stream (the exchange behind a request) --- */

/* Queue bytes to the client (takes ownership of wr). */
void st_conn_send(struct st_conn *c, struct st_wreq *wr);
/*
 * Write wr now if nothing is queued before it and the socket takes it all:
 * returns true and frees wr. Otherwise returns false with wr's pieces
 * advanced past what was written; the caller then keeps what wr points to
 * alive and passes wr to st_conn_send().
 */
bool st_conn_try_send(struct st_conn *c, struct st_wreq *wr);
/* More queued toward the client than the high-water mark? */
bool st_conn_congested(const struct st_conn *c);
/* Request-body back-pressure: stop / restart reading from the client. */
void st_conn_pause_reading(struct st_conn *c);
void st_conn_resume_reading(struct st_conn *c);
/*
 * The stream has queued its whole response and lets go of the connection.
 * keep_alive: the response's framing allows another request after it.
 */
void st_conn_stream_done(struct st_conn *c, bool keep_alive);
/* Close the connection at once (a response cut short). */
void st_conn_abort(struct st_conn *c);

/* --- for the host --- */

/* Stop taking new requests: idle connections close now, busy ones after their response. */
void st_conn_drain_all(struct st_conn_host *h);
/* Close every connection at once, whatever it is doing. */
void st_conn_close_all(struct st_conn_host *h);

#endif
