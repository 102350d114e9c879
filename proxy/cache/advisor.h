/*
 * advisor.h - the TTL-tier advisor: what each configured tier would have made
 * of a route's traffic.
 *
 * For every cacheable request of a route that has a tier, the worker records
 * (route slot, key hash, time), and for every origin fetch of such a key what
 * came of it (stored or not, must-revalidate, whose TTL, and for a refetch of
 * an expired entry whether the answer had changed). The advisor replays those
 * events in time order, per key, against every configured tier at once: under
 * a tier of TTL t (and stale-while-revalidate s), a request is a hit when the
 * key was fetched and stored less than t ago, a stale hit that refreshes it
 * when less than t + s ago (not for must-revalidate answers), and a miss that
 * fetches it otherwise; when the origin's own freshness set the stored
 * answer's lifetime, that lifetime stands for t under every tier. A request
 * that forbids the cache (no-cache, max-age=0) fetches whatever the tier; a
 * fetch whose answer was not stored, or is revalidated on every use
 * (no-cache), leaves nothing to hit. The hit ratios it reports are those
 * replays, so their differences are what changing the route's tier would
 * have changed, with the same traffic.
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
 * working set), invalidations, the tier's jitter. Up to ST_ADVISOR_MAX_TIERS
 * tiers, in config order.
 *
 * Threads: st_advisor_observe and st_advisor_fetched are called by a worker
 * on its own feed, lock free (a single-producer ring). The replay runs under
 * the advisor's lock and drains every feed at once, merged by time: when a
 * feed is half full or its oldest event a second old (try-lock), or full
 * (waits), and before every estimate. An event can still reach the replay
 * slightly late (pushed while a drain ran): a request older than the key's
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

struct st_advisor *st_advisor_create(void);
/* Every feed must be destroyed first. NULL is a no-op. */
void st_advisor_destroy(struct st_advisor *a);

/* The tiers to replay, in config order (the first ST_ADVISOR_MAX_TIERS): any change to
 * their number or times starts every route's estimate afresh. */
void st_advisor_set_tiers(struct st_advisor *a, const struct st_advisor_tier *tiers, size_t n);

/* A worker's feed (one producer thread); the advisor keeps it on its list until destroyed. */
struct st_advisor_feed *st_advisor_feed_create(struct st_advisor *a);
/* Replays what it holds, then frees it. NULL is a no-op. */
void st_advisor_feed_destroy(struct st_advisor_feed *f);

/* A request's flag: its own directives (no-cache, max-age=0) send it to the origin. */
#define ST_ADVISOR_FORCED 1u

/* One cacheable request of the route in stats slot `slot` for the key of this hash. */
void st_advisor_observe(struct st_advisor_feed *f, unsigned slot, uint64_t hash, int64_t now_ms,
                        unsigned flags);

/* What an origin fetch of the key left in the cache. */
#define ST_ADVISOR_SERVABLE 1u   /* stored, and may be used without asking the origin */
#define ST_ADVISOR_NO_STALE 2u   /* must-revalidate: never served stale */
#define ST_ADVISOR_TIER_TTL 4u   /* its freshness is the tier's ttl, else lifetime_ms (origin's) */
#define ST_ADVISOR_REFETCH 8u    /* it replaced an expired entry ... */
#define ST_ADVISOR_UNCHANGED 16u /* ... with the same answer (a 304, or the same status, body) */

void st_advisor_fetched(struct st_advisor_feed *f, unsigned slot, uint64_t hash, int64_t now_ms,
                        unsigned outcome, int64_t lifetime_ms);

struct st_advisor_estimate {
    uint64_t requests;  /* requests of the followed keys */
    uint64_t keys;      /* keys followed now */
    double sample_rate; /* share of the route's keys that are followed (1: all) */
    uint64_t stored;    /* fetches of followed keys whose answer was stored ... */
    uint64_t tier_ttl;  /* ... with the tier's ttl */
    uint64_t refetches; /* fetches that replaced an expired entry ... */
    uint64_t unchanged; /* ... with the same answer */
    size_t n_tiers;
    struct st_advisor_tier tiers[ST_ADVISOR_MAX_TIERS];
    double hit_ratio[ST_ADVISOR_MAX_TIERS]; /* (hits + stale) / requests, per tier */
};

/* The estimate for a route slot, after replaying every feed. False when it saw no request. */
bool st_advisor_estimate(struct st_advisor *a, unsigned slot, struct st_advisor_estimate *out);

/* Requests an estimate needs before it suggests anything; refetches (and stored answers)
 * before their shares count. */
#define ST_ADVISOR_MIN_REQUESTS 100
#define ST_ADVISOR_MIN_REFETCHES 10

/*
 * One sentence for an operator, into buf (NUL-terminated, cut at a whole UTF-8 character;
 * "" when there is not enough traffic yet or cur is not a replayed tier). cur: the route's
 * tier (index into e's tiers and names). Suggests the next longer tier (by TTL) when it adds
 * at least 5 points of hit ratio and at least 90% of the refetches were unchanged; the next
 * shorter one when at least half the refetches had changed and it costs at most 5 points;
 * else says why the tier stays (first of all when the origin's own freshness set most
 * stored answers' lifetime, so the tier's ttl hardly applies). True when it suggests a change.
 */
bool st_advisor_suggest(const struct st_advisor_estimate *e, const char *const *names, size_t cur,
                        char *buf, size_t cap);

#endif
