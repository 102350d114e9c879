/*
 * breaker.h - a circuit breaker per upstream, shared by every worker of one
 * config generation (upstreams.<name>.breaker).
 *
 * CLOSED: requests go; outcomes are counted in ST_BREAKER_BUCKETS buckets
 * over `window`. When the window holds at least `min_requests` and the
 * share of errors (connect failures, timeouts, bad answers, 5xx) reaches
 * `error_ratio`, the breaker OPENs: no request goes to the origin for
 * `open_for` (callers answer at once: stale, or 503 with Retry-After).
 * Then HALF-OPEN: `probes` requests go; if they all succeed it CLOSEs, if
 * one fails it OPENs again. Each transition is logged once.
 *
 * Threads: a mutex per breaker, taken once when a request is admitted and
 * once when its outcome is known. Breakers are created by the server for
 * a config and freed with it.
 */
#ifndef ST_BREAKER_H
#define ST_BREAKER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "config/config.h"

#define ST_BREAKER_BUCKETS 10

enum st_breaker_state { ST_BREAKER_CLOSED, ST_BREAKER_OPEN, ST_BREAKER_HALF_OPEN };

struct st_breaker {
    uv_mutex_t lock;
    const struct st_upstream_cfg *cfg; /* the breaker's settings; not owned */
    enum st_breaker_state state;
    uint64_t bucket_ms;  /* window / ST_BREAKER_BUCKETS */
    uint64_t bucket_at;  /* start of bucket `cur` */
    unsigned cur;
    uint32_t requests[ST_BREAKER_BUCKETS], errors[ST_BREAKER_BUCKETS];
    int64_t open_until;  /* OPEN: wall ms */
    unsigned probes_out, probes_ok;
    uint64_t opens;      /* times it opened */
};

/* A breaker for upstream cfg, or NULL when it has none. */
struct st_breaker *st_breaker_create(const struct st_upstream_cfg *cfg);
void st_breaker_destroy(struct st_breaker *b);

/*
 * May a request go to the origin now (now_ms: a monotonic clock in ms)?
 * false: *retry_after_s says when to come back (>= 1). true: the caller
 * must report the outcome once, with st_breaker_record or st_breaker_forget.
 */
bool st_breaker_admit(struct st_breaker *b, uint64_t now_ms, unsigned *retry_after_s);
void st_breaker_record(struct st_breaker *b, uint64_t now_ms, bool ok);
/* The admitted request ended without an outcome worth counting (the client went). */
void st_breaker_forget(struct st_breaker *b);

enum st_breaker_state st_breaker_state(struct st_breaker *b, uint64_t *opens);
const char *st_breaker_state_name(enum st_breaker_state s);

#endif
