/*
 * advisor.h - the TTL-tier advisor: what each configured tier would have made
 * of a route's traffic.
 *
 * For every cacheable request of a route that has a tier, the worker records
 * (route slot, key hash, time). The advisor replays those requests, per key,
 * against every configured tier at once: under a tier of TTL t (and
 * stale-while-revalidate s), a request is a hit when the key was fetched less
 * than t ago, a stale hit that refreshes the key when less than t + s ago, and
 * a miss that fetches it otherwise. The hit ratios it reports are those
 * replays, so their differences are what changing the route's tier would have
 * changed, with the same traffic.
 *
 * Bounded: each route keeps at most ST_ADVISOR_KEYS keys. Keys are sampled by
 * hash (spatial sampling, as in SHARDS): a key is followed when its hash is
 * below the route's threshold, so every request of a followed key is seen and
 * its gaps are exact. When the table fills, the threshold drops so that an
 * eighth of the followed keys leave, taking their counts with them: the
 * estimate is that of the keys followed now, a uniform sample of the route's
 * keys (the sample rate is reported).
 *
 * What the replay does not see: evictions (a memory tier too small for the
 * working set), invalidations, the tier's jitter and TTLs the origin sets
 * itself. Up to ST_ADVISOR_MAX_TIERS tiers, in config order.
 *
 * Threads: st_advisor_observe is called by a worker on its own feed, lock
 * free (a single-producer ring); the replay runs under the advisor's lock,
 * when a feed fills or its oldest event is a second old, and before every
 * estimate (which drains every feed). Events from different workers can
 * reach the replay slightly out of order: a request older than the key's
 * last fetch counts as a hit.
 */
#ifndef ST_CACHE_ADVISOR_H
#define ST_CACHE_ADVISOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ST_ADVISOR_MAX_TIERS 8
#define ST_ADVISOR_KEYS 1024

struct st_advisor;
struct st_advisor_feed;

struct st_advisor_tier {
    int64_t ttl_ms;
    int64_t swr_ms;
};

struct st_advisor *st_advisor_new(void);
/* Every feed must be freed first. NULL is a no-op. */
void st_advisor_free(struct st_advisor *a);

/* The tiers to replay, in config order (the first ST_ADVISOR_MAX_TIERS): any change to
 * their number or times starts every route's estimate afresh. */
void st_advisor_set_tiers(struct st_advisor *a, const struct st_advisor_tier *tiers, size_t n);

/* A worker's feed (one producer thread). */
struct st_advisor_feed *st_advisor_feed_new(struct st_advisor *a);
/* Replays what it holds, then frees it. NULL is a no-op. */
void st_advisor_feed_free(struct st_advisor_feed *f);

/* One cacheable request of the route in stats slot `slot` for the key of this hash. */
void st_advisor_observe(struct st_advisor_feed *f, unsigned slot, uint64_t hash, int64_t now_ms);

struct st_advisor_estimate {
    uint64_t requests;   /* requests of the followed keys */
    uint64_t keys;       /* keys followed now */
    double sample_rate;  /* share of the route's keys that are followed (1: all) */
    size_t n_tiers;
    struct st_advisor_tier tiers[ST_ADVISOR_MAX_TIERS];
    double hit_ratio[ST_ADVISOR_MAX_TIERS]; /* (hits + stale) / requests, per tier */
};

/* The estimate for a route slot, after replaying every feed. False when it saw no request. */
bool st_advisor_estimate(struct st_advisor *a, unsigned slot, struct st_advisor_estimate *out);

/* Requests an estimate needs before it suggests anything, and refetches before the share of
 * unchanged ones counts. */
#define ST_ADVISOR_MIN_REQUESTS 100
#define ST_ADVISOR_MIN_REFETCHES 10

/*
 * One sentence for an operator, into buf (NUL-terminated; "" when there is not enough
 * traffic yet or the route has no tier). cur: the route's tier (index into e's tiers and
 * names). refetches / unchanged: the route's refetches after expiry and how many of them
 * the origin answered with what was stored. Suggests the next longer tier when it adds at
 * least 5 points of hit ratio and at least 90% of refetches were unchanged; the next
 * shorter one when at least half the refetches had changed and it costs at most 5 points;
 * else says why the tier stays. Returns true when it suggests a change.
 */
bool st_advisor_suggest(const struct st_advisor_estimate *e, const char *const *names,
                        size_t cur, uint64_t refetches, uint64_t unchanged, char *buf,
                        size_t cap);

#endif
