/*
 * freshness.h - RFC 9111 shared-cache rules as pure functions: Cache-Control
 * and CDN-Cache-Control (RFC 9213) parsing, whether a response
 * may be stored, how long it stays fresh, how old it is, how long it may be
 * served stale (RFC 5861), and conditional-request matching.
 *
 * Nothing here reads a clock, allocates, or touches a socket: every input,
 * including "now", is passed in, so the whole module is table-tested.
 * Times are unix milliseconds (int64_t); durations are milliseconds.
 */
#ifndef ST_FRESHNESS_H
#define ST_FRESHNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/http.h"

#define ST_CC_ABSENT (-1)

/* Directives of one Cache-Control (or CDN-Cache-Control) field, all lines combined. */
struct st_cc {
    /* delta-seconds, in seconds; ST_CC_ABSENT when not present. A present
     * directive whose value is not a valid delta-seconds sets *_invalid. */
    int64_t max_age, s_maxage, stale_while_revalidate, stale_if_error;
    int64_t max_stale; /* request: INT64_MAX for a bare "max-stale" */
    int64_t min_fresh; /* request */
    bool max_age_invalid, s_maxage_invalid;
    bool no_store, no_cache, private_, public_, must_revalidate, proxy_revalidate;
    bool only_if_cached; /* request */
    bool immutable;
    bool present; /* the field was present at all */
};

/* Parse every line of header `name` in h into cc (zeroed first). Unknown directives are ignored. */
void st_cc_parse_headers(const struct st_headers *h, const char *name, struct st_cc *cc);
/* Parse one field value and merge into cc (the first occurrence of a directive wins). */
void st_cc_parse(const char *v, size_t len, struct st_cc *cc);
void st_cc_init(struct st_cc *cc);

/* Can this status be stored when the origin gave no explicit freshness (RFC 9110 15.1)? */
bool st_freshness_status_cacheable(int status);

struct st_store_policy {
    uint64_t tier_ttl_ms;  /* applies when the origin gives no explicit freshness; 0 = do not store such */
    uint64_t tier_swr_ms;  /* tier stale_while_revalidate */
    uint64_t tier_sie_ms;  /* tier stale_if_error */
    bool ttl_from_tier;    /* ttl_source: tier — the tier's ttl replaces the origin's */
    bool allow_authorized; /* route allows storing answers to requests with Authorization */
    bool allow_set_cookie; /* route allows storing answers with Set-Cookie */
};

struct st_freshness {
    bool storable;
    const char *why_not;      /* static reason when !storable (for logs and tests) */
    int64_t lifetime_ms;      /* freshness lifetime (0 = stale at once: revalidate) */
    int64_t initial_age_ms;   /* corrected initial age when stored (RFC 9111 4.2.3) */
    int64_t swr_ms;           /* may be served stale this long past expiry while refreshing */
    int64_t sie_ms;           /* may be served stale this long past expiry when the origin fails */
    bool no_stale;            /* must-revalidate / proxy-revalidate / s-maxage: never serve stale */
    bool always_revalidate;   /* no-cache: stored, but every use is revalidated */
    bool tier_ttl;            /* lifetime_ms is the tier's ttl (not the origin's freshness) */
};

/*
 * Decide storage and freshness for a response to a GET/HEAD request.
 * req and resp are the request and response headers; request_ms and
 * response_ms the times the request was sent and the response head
 * received. CDN-Cache-Control, when present, replaces Cache-Control.
 */
void st_freshness_evaluate(int status, const struct st_headers *req,
                           const struct st_headers *resp, int64_t request_ms,
                           int64_t response_ms, const struct st_store_policy *pol,
                           struct st_freshness *out);

/* What a request's own directives allow for an entry of this age and lifetime. */
enum st_req_verdict {
    ST_REQ_USE,        /* answer from cache */
    ST_REQ_REVALIDATE, /* must go to the origin (conditionally when possible) */
};

/*
 * Request Cache-Control on a stored entry: no-cache forces revalidation;
 * max-age, min-fresh and max-stale narrow or widen what is acceptable.
 * age_ms is the entry's current age; lifetime_ms its freshness lifetime;
 * no_stale the entry's must-revalidate. `Pragma` is ignored.
 */
enum st_req_verdict st_freshness_request_allows(const struct st_cc *req, int64_t age_ms,
                                      int64_t lifetime_ms, bool no_stale);

/*
 * If-None-Match against an entity tag (weak comparison, RFC 9110 13.1.2):
 * true when the list contains "*" or a tag weakly equal to etag.
 */
bool st_freshness_if_none_match(const char *list, size_t len, const char *etag, size_t etag_len);

/*
 * Should a conditional GET be answered 304 from an entry with these
 * validators? If-None-Match, when present, decides alone; otherwise
 * If-Modified-Since against last_modified_ms (-1 = entry has none).
 */
bool st_freshness_not_modified(const struct st_headers *req, const char *etag, size_t etag_len,
                                 int64_t last_modified_ms);

#endif
