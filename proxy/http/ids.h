/*
 * ids.h - request ids and W3C traceparent values: checks for what clients
 * send, and new ones drawn from a per-thread random source (base/rand.h).
 */
#ifndef ST_HTTP_IDS_H
#define ST_HTTP_IDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Is this an acceptable client-supplied X-Request-Id: 1-128 of [A-Za-z0-9._:-]? */
bool st_request_id_valid(const char *p, size_t len);
/* Is this a valid W3C traceparent (version 00 form, non-zero ids)? */
bool st_traceparent_valid(const char *p, size_t len);

/* 32 hex chars from two random words; out must hold 33 bytes. */
void st_request_id_new(uint64_t state[2], char out[33]);
/*
 * A request id from a per-thread source: 16 hex chars of a random prefix
 * chosen once (prefix_hex, 16 chars) and 16 hex chars of a counter. Unique
 * per process run without drawing randomness per request.
 */
void st_request_id_next(const char prefix_hex[16], uint64_t *counter, char out[33]);
/* A new traceparent "00-<32 hex>-<16 hex>-01"; out must hold 56 bytes. */
void st_traceparent_new(uint64_t state[2], char out[56]);

#endif
