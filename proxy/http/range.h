/*
 * range.h - byte ranges (RFC 9110 14): the Range request header against a
 * representation of known length.
 *
 * Pure logic: nothing here allocates or touches a socket.
 */
#ifndef ST_HTTP_RANGE_H
#define ST_HTTP_RANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ST_RANGE_MAX 16

struct st_range {
    uint64_t first, last; /* inclusive */
};

enum st_range_result {
    ST_RANGE_NONE = 0,      /* no usable Range: answer the whole representation (200) */
    ST_RANGE_OK,            /* 206 with the ranges */
    ST_RANGE_UNSATISFIABLE, /* 416 */
};

/*
 * Parse a Range value ("bytes=0-99, 200-, -50") for a representation of
 * `length` bytes into out[] (at most ST_RANGE_MAX, in the order asked).
 * A malformed value, another unit, or more ranges than ST_RANGE_MAX is
 * NONE (a server may ignore Range); no satisfiable range is UNSATISFIABLE.
 */
enum st_range_result st_range_parse(const char *v, size_t len, uint64_t length,
                                    struct st_range out[ST_RANGE_MAX], size_t *n);

/*
 * If-Range (RFC 9110 13.1.5): may the Range be honoured for a representation
 * with these validators? An entity-tag must equal etag by strong comparison
 * (weak tags never match); an HTTP-date must equal last_modified_ms (-1: none).
 */
bool st_range_if_range_ok(const char *v, size_t len, const char *etag, size_t etag_len,
                          int64_t last_modified_ms);

#endif
