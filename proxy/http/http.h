/*
 * http.h - HTTP/1.1 message pieces that are pure logic: the header list a
 * parser fills, header lookups, hop-by-hop filtering, and the heads strata
 * writes toward the origin and toward the client.
 *
 * Nothing here touches a socket or a loop, so all of it is unit-tested.
 *
 * A header list keeps its bytes in one growing buffer and records offsets,
 * so that parser callbacks delivering a name or value in several pieces
 * simply append. Lookups compare names case-insensitively.
 */
#ifndef ST_HTTP_H
#define ST_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

struct st_hdr {
    uint32_t name_off, name_len;
    uint32_t value_off, value_len;
};

struct st_headers {
    char *buf; /* owned: all names and values */
    size_t len, cap;
    struct st_hdr *v; /* owned */
    size_t n, vcap;
    enum { ST_HDR_NONE, ST_HDR_NAME, ST_HDR_VALUE } state; /* parser inside v[n-1]'s ... */
};

void st_headers_init(struct st_headers *h);
void st_headers_finish(struct st_headers *h);
/* Empty the list, keeping its memory. */
void st_headers_reset(struct st_headers *h);
/* Parser glue: append a piece of a field name / value. */
void st_headers_name_piece(struct st_headers *h, const char *p, size_t len);
void st_headers_value_piece(struct st_headers *h, const char *p, size_t len);
/* Trim trailing whitespace of the last value once it is complete. */
void st_headers_value_done(struct st_headers *h);
/* Append one whole header. */
void st_headers_add(struct st_headers *h, const char *name, size_t name_len, const char *value,
                    size_t value_len);
/* Append every header of src. */
void st_headers_copy(struct st_headers *dst, const struct st_headers *src);
/*
 * Append the headers of a serialized head (a status or request line, then
 * "Name: value" lines each ending in CRLF), as strata itself wrote it.
 */
void st_headers_parse_head(struct st_headers *h, const char *head, size_t len);

static inline const char *st_hdr_name(const struct st_headers *h, const struct st_hdr *e)
{
    return h->buf + e->name_off;
}
static inline const char *st_hdr_value(const struct st_headers *h, const struct st_hdr *e)
{
    return h->buf + e->value_off;
}

/*
 * The next header line named (name, len) at or after *i (case-insensitive),
 * or NULL; *i moves past it. h may be NULL.
 */
const struct st_hdr *st_headers_next(const struct st_headers *h, const char *name, size_t len,
                                     size_t *i);
/* Append the value of every line named (name, len), joined by ", " (nothing when none). */
void st_headers_join(const struct st_headers *h, const char *name, size_t len, struct st_sb *out);

/* First header with this name (case-insensitive), or NULL. */
const struct st_hdr *st_headers_get(const struct st_headers *h, const char *name);
/* Does header `name` contain `token` in its comma-separated list (case-insensitive)? */
bool st_headers_has_token(const struct st_headers *h, const char *name, const char *token);

/* Case-insensitive equality of a (p, len) span with a NUL-terminated lowercase name. */
bool st_name_eq(const char *p, size_t len, const char *lower);

/*
 * Is this header hop-by-hop for this message: Connection, Keep-Alive,
 * Proxy-Connection, Proxy-Authenticate, Proxy-Authorization, TE, Trailer,
 * Transfer-Encoding, Upgrade, or a header named in a Connection header of h.
 */
bool st_http_is_hop_by_hop(const struct st_headers *h, const struct st_hdr *e);

/* A request line and headers as parsed from a client. */
struct st_request_head {
    const char *method; /* static string from llhttp */
    const char *target; /* NUL-terminated, points into the owner's storage */
    size_t target_len;
    int http_minor; /* HTTP/1.x */
    const struct st_headers *headers;
};

/*
 * A request whose head is complete, as a client connection hands it over:
 * the head (owned by the connection, valid until the request's answer ends),
 * who sent it, its id and the framing of its body.
 */
struct st_request_info {
    struct st_request_head req;
    const char *host; /* the Host value (into req.headers), NULL when absent */
    size_t host_len;
    const char *client_ip;
    const char *request_id; /* validated or generated */
    bool has_body;
    bool chunked;
    uint64_t content_length;
    bool client_keep_alive;
    bool head_request;
};

/* The path of a request target (origin-form or absolute-form): *len set. */
const char *st_target_path(const char *target, size_t target_len, size_t *len);

/* What strata adds to a request on its way to the origin. */
struct st_forward_info {
    const char *client_ip;  /* for X-Forwarded-For */
    const char *request_id; /* X-Request-Id */
    const char *traceparent;
    /* Request body framing toward the origin: */
    bool has_body;
    bool chunked;         /* re-chunked body (client sent chunked) */
    uint64_t content_length; /* when has_body && !chunked */
    /* Revalidation: drop the client's If-None-Match/If-Modified-Since, send these. */
    bool replace_conditionals;
    const char *if_none_match; /* may be NULL */
    size_t if_none_match_len;
    const char *if_modified_since; /* an HTTP-date, may be NULL */
    /* Header filtering: */
    bool keep_underscores; /* forward header names with '_' (default: dropped) */
    bool drop_range;       /* ask for the whole representation: no Range, no If-Range */
    bool caching;          /* the answer may be shared: drop unkeyed forwarding headers */
    char *const *keyed;    /* lowercase names that are part of the cache key: kept */
    size_t n_keyed;
};

/*
 * Serialize the request head sent to the origin into sb: the client's
 * request line (as HTTP/1.1), its end-to-end headers (hop-by-hop removed,
 * and the client's X-Forwarded-For, X-Forwarded-Proto, X-Request-Id,
 * traceparent, Expect, Content-Length replaced by ours; names with '_'
 * dropped unless keep_underscores; on a caching route the headers that
 * change an origin's answer without being in the key - X-Forwarded-Host,
 * X-Forwarded-Scheme, X-Original-URL, X-Rewrite-URL, X-HTTP-Method-Override,
 * Forwarded - dropped unless keyed), then
 * X-Forwarded-For (appended to the client's), X-Forwarded-Proto, Via,
 * X-Request-Id, traceparent and body framing.
 */
void st_http_build_request(struct st_sb *sb, const struct st_request_head *req,
                           const struct st_forward_info *fw);

/* A response head as parsed from an origin. */
struct st_response_head {
    int status;
    const char *reason;
    size_t reason_len;
    const struct st_headers *headers; /* valid during the callback and until on_end/on_error */
    bool has_length;
    uint64_t content_length;
    bool chunked;
};

/* How the body of a response to the client is framed. */
enum st_framing {
    ST_FRAME_NONE = 0,    /* no body (HEAD, 204, 304) */
    ST_FRAME_LENGTH,      /* Content-Length */
    ST_FRAME_CHUNKED,     /* we chunk it */
    ST_FRAME_CLOSE,       /* until close (HTTP/1.0 client, no length) */
};

struct st_response_info {
    int status;
    const char *reason; /* may be NULL: the standard phrase is used */
    size_t reason_len;
    enum st_framing framing;
    uint64_t content_length; /* ST_FRAME_LENGTH, or the origin's for a HEAD */
    bool send_length_on_none; /* HEAD: still send the origin's Content-Length */
    bool keep_alive;
    const char *request_id;
    const char *cache_status; /* Cache-Status value, or NULL */
    const char *extra;        /* complete header lines to add ("Name: v\r\n"...), or NULL */
};

/*
 * Serialize a response head for the client: status line, the origin's
 * end-to-end headers (hop-by-hop and framing removed; may be NULL), then
 * Cache-Status, Via (ours, after any the origin sent), X-Request-Id,
 * framing and Connection.
 */
void st_http_build_response(struct st_sb *sb, const struct st_response_info *ri,
                            const struct st_headers *origin);

/* An interim (1xx) head for the client: status line, the origin's end-to-end headers, CRLF. */
void st_http_build_interim(struct st_sb *sb, const struct st_response_head *h);

/* "HTTP/1.1 <status> <reason>" CRLF; reason NULL or empty: the standard phrase. */
void st_http_add_status_line(struct st_sb *sb, int status, const char *reason, size_t reason_len);
/* One header line of h, "Name: value" CRLF, as it came. */
void st_http_add_field(struct st_sb *sb, const struct st_headers *h, const struct st_hdr *e);

/* The standard reason phrase of a status code ("Unknown" for others). */
const char *st_http_reason(int status);

/* One of strata's own error answers. */
struct st_error_info {
    int status;
    const char *detail;       /* what went wrong, for the body; NULL: the status's general text */
    const char *request_id;   /* may be NULL */
    const char *cache_status; /* NULL: "strata; fwd=bypass" */
    int64_t now_ms;           /* for Date */
    bool keep_alive;
    bool head_only;
    unsigned retry_after_s; /* Retry-After when non-zero */
    const char *extra;      /* complete header lines to add, or NULL */
};

/*
 * A complete error response from strata itself, into sb: Date, Via,
 * X-Request-Id, Cache-Status and a JSON body
 * {"error":"<detail>","status":N,"request_id":"..."}.
 */
void st_http_build_error(struct st_sb *sb, const struct st_error_info *ei);

/* Map a negative errno from the upstream side to the status strata answers. */
int st_http_status_for_error(int err);
/* What an upstream-side negative errno means, for an error body. */
const char *st_http_error_detail(int err);

/*
 * Is this a valid Host field value (RFC 9112 3.2, RFC 3986 authority
 * without userinfo): empty, a reg-name or IPv4 address or [IP-literal],
 * then an optional :port of digits?
 */
bool st_http_host_valid(const char *p, size_t len);


#endif
