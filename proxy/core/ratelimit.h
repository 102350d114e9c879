/*
 * ratelimit.h - per-key request rate limits (routes[].rate_limit), shared
 * by every worker of the instance.
 *
 * The algorithm is GCRA, a token bucket kept as one number per key: the
 * "theoretical arrival time" (TAT). Each request costs one interval
 * (1 s / rate); a request is let through when, after it, the TAT is no more
 * than burst intervals ahead of now. So a client may send `burst` requests
 * at once, then `rate` per second.
 *
 * Memory is bounded: ST_RL_SHARDS shards of ST_RL_SETS sets of ST_RL_WAYS
 * keys; a new key takes the least recently used way of its set. A key
 * pushed out starts again with a full bucket, so eviction can only let a
 * client through sooner, never block it wrongly. Each shard has its own
 * mutex, taken once per limited request.
 *
 * With `scope: fleet` the bucket lives in Redis instead (below); the local
 * one is what a request falls back to while Redis is down or late.
 */
#ifndef ST_RATELIMIT_H
#define ST_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

#define ST_RL_SHARDS 16
#define ST_RL_SETS 1024
#define ST_RL_WAYS 4

struct st_ratelimit;

/* What a request got, and what the RateLimit-* headers say. */
struct st_rl_verdict {
    bool allowed;
    uint64_t limit;         /* the burst: requests that may come at once */
    uint64_t remaining;     /* requests that may come now, after this one */
    uint64_t reset_s;       /* seconds until the bucket is full again */
    uint64_t retry_after_s; /* refused: seconds until one request may go (>= 1) */
};

struct st_ratelimit *st_ratelimit_create(void);
void st_ratelimit_destroy(struct st_ratelimit *rl);

/*
 * One request for key (its hash): interval_us = 1e6 / rate, burst >= 1,
 * now_us a monotonic clock.
 */
void st_ratelimit_take(struct st_ratelimit *rl, uint64_t key_hash, uint64_t interval_us,
                       uint64_t burst, uint64_t now_us, struct st_rl_verdict *out);

/* The verdict for a step that was allowed or not and left the TAT ahead_us ahead of now. */
void st_ratelimit_verdict(bool allowed, uint64_t ahead_us, uint64_t interval_us, uint64_t burst,
                          struct st_rl_verdict *out);

/*
 * scope: fleet. One step of the same GCRA in Redis (one script: atomic, on
 * Redis's clock), so every instance sharing the Redis counts into one
 * bucket per key. 0: cb is called once, later, with the verdict, or with
 * NULL when Redis did not answer in time (the caller falls back to the
 * local limit). -EAGAIN: Redis is down, cb is not called.
 */
struct st_redis;
typedef void (*st_rl_fleet_cb)(void *arg, const struct st_rl_verdict *v);
int st_ratelimit_take_fleet(struct st_redis *r, const char *prefix, uint64_t key_hash,
                            uint64_t interval_us, uint64_t burst, st_rl_fleet_cb cb, void *arg);

#endif
