/*
 * conn.h - a client connection: HTTP/1.1 request parsing (llhttp, strict),
 * limits and timeouts, pipelining, and the write side toward the client.
 *
 * One request at a time is handed to an exchange; bytes of the next
 * (pipelined) request stay unparsed in the read buffer until the current
 * response is done, so responses always leave in order. A connection lives
 * on one worker loop and is freed only from its handles' close callbacks.
 */
#ifndef ST_CONN_H
#define ST_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "base/buf.h"

struct st_conn;
struct st_worker;

/* Accept one pending connection from the worker's listener. */
void st_conn_accept(struct st_worker *w, uv_stream_t *listener);

/* --- for the exchange --- */

/* Queue bytes to the client (takes ownership of wr). */
void st_conn_send(struct st_conn *c, struct st_wreq *wr);
/*
 * Write wr now if nothing is queued before it and the socket takes it all:
 * returns true and frees wr. Otherwise returns false with wr's pieces
 * advanced past what was written; the caller then keeps what wr points to
 * alive and passes wr to st_conn_send().
 */
bool st_conn_try_send(struct st_conn *c, struct st_wreq *wr);
/* Bytes queued to the client and not yet written. */
size_t st_conn_write_queue(const struct st_conn *c);
/* Request-body back-pressure: stop / restart reading from the client. */
void st_conn_pause_reading(struct st_conn *c);
void st_conn_resume_reading(struct st_conn *c);
/*
 * The exchange has queued its whole response and lets go of the connection.
 * keep_alive: the response's framing allows another request after it.
 */
void st_conn_exchange_done(struct st_conn *c, bool keep_alive);
/* Close the connection at once (a response cut short). */
void st_conn_abort(struct st_conn *c);

/* --- for the worker --- */

/* Stop taking new requests: idle connections close now, busy ones after their response. */
void st_conn_drain_all(struct st_worker *w);
/* Close every connection at once, whatever it is doing. */
void st_conn_close_all(struct st_worker *w);

#define ST_CONN_HIGH_WATER (256 * 1024)
#define ST_CONN_LOW_WATER (64 * 1024)

#endif
