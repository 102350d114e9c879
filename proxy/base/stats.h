/*
 * stats.h - counters, declared once, read by /stats and /metrics.
 *
 * ST_STATS below is the single list of counters: each line gives the id, the
 * JSON group and key it appears under in /stats, the Prometheus metric name
 * and label set, its kind and help text. /stats and /metrics are both
 * rendered from this list, so they cannot disagree.
 *
 * Each worker thread owns one struct st_stats and is the only writer of it:
 * an increment is a relaxed load and store of its own cache line, never a
 * shared atomic read-modify-write. Readers (the admin thread) sum every
 * worker's block with relaxed loads; a sum may be a moment old, never torn.
 */
#ifndef ST_STATS_H
#define ST_STATS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

/* X(id, json_group, json_key, prom_name, prom_labels, prom_type, help) */
#define ST_STATS(X)                                                                                \
    X(REQUESTS, "", "requests", "strata_requests_total", "", "counter",                            \
      "Client requests received")                                                                  \
    X(RATE_LIMITED, "", "rate_limited", "strata_rate_limited_total", "", "counter",                \
      "Requests answered 429 by a route's rate_limit")                                              \
    X(RATE_LIMIT_FALLBACKS, "", "rate_limit_fallbacks", "strata_rate_limit_fallbacks_total", "",     \
      "counter", "scope: fleet requests judged by the local limit (Redis down or late)")             \
    X(RESP_1XX, "responses", "1xx", "strata_responses_total", "class=\"1xx\"", "counter",          \
      "Responses sent to clients by status class")                                                 \
    X(RESP_2XX, "responses", "2xx", "strata_responses_total", "class=\"2xx\"", "counter", "")      \
    X(RESP_3XX, "responses", "3xx", "strata_responses_total", "class=\"3xx\"", "counter", "")      \
    X(RESP_4XX, "responses", "4xx", "strata_responses_total", "class=\"4xx\"", "counter", "")      \
    X(RESP_5XX, "responses", "5xx", "strata_responses_total", "class=\"5xx\"", "counter", "")      \
    X(CONN_ACCEPTED, "connections", "accepted", "strata_connections_accepted_total", "",           \
      "counter", "Client connections accepted")                                                    \
    X(CONN_OPEN, "connections", "open", "strata_connections_open", "", "gauge",                    \
      "Client connections open now")                                                               \
    X(CONN_REJECTED, "connections", "rejected", "strata_connections_rejected_total", "",           \
      "counter", "Client connections closed at once because max_connections was reached")         \
    X(CACHE_HITS, "cache", "hits", "strata_cache_hits_total", "", "counter",                       \
      "Requests answered from a fresh cache entry")                                                \
    X(CACHE_MISSES, "cache", "misses", "strata_cache_misses_total", "", "counter",                 \
      "Cacheable requests that went to the origin (miss, expired, revalidation)")                  \
    X(CACHE_STALE, "cache", "stale", "strata_cache_stale_total", "", "counter",                    \
      "Requests answered from a stale entry (stale-while-revalidate, stale-if-error)")             \
    X(CACHE_BYPASS, "cache", "bypass", "strata_cache_bypass_total", "", "counter",                 \
      "Requests answered without the cache (bypass routes, unsafe methods)")                       \
    X(CACHE_COLLAPSED, "cache", "collapsed", "strata_cache_collapsed_total", "", "counter",        \
      "Requests that waited for another request's origin fetch")                                   \
    X(CACHE_REVALIDATED, "cache", "revalidated", "strata_cache_revalidated_total", "", "counter",  \
      "Stored entries refreshed by a 304 from the origin")                                         \
    X(CACHE_NOT_MODIFIED, "cache", "not_modified", "strata_cache_not_modified_total", "",          \
      "counter", "Conditional requests answered 304 from the cache")                              \
    X(CACHE_BYTES_SENT, "cache", "bytes_sent", "strata_cache_bytes_sent_total", "", "counter",     \
      "Body bytes sent on cacheable routes")                                                       \
    X(CACHE_BYTES_HIT, "cache", "bytes_hit", "strata_cache_bytes_hit_total", "", "counter",        \
      "Body bytes sent from the cache")                                                            \
    X(INVAL_LOCAL, "invalidations", "local", "strata_invalidations_total", "source=\"local\"",    \
      "counter", "Invalidations applied (writes, /invalidate)")                                    \
    X(INVAL_PUBLISHED, "invalidations", "published", "strata_invalidations_total",                 \
      "source=\"published\"", "counter", "")                                                       \
    X(INVAL_RECEIVED, "invalidations", "received", "strata_invalidations_total",                   \
      "source=\"received\"", "counter", "")                                                        \
    X(INVAL_ENTRIES, "invalidations", "entries", "strata_invalidated_entries_total", "",          \
      "counter", "Cache entries dropped by invalidations")                                         \
    X(INVAL_UNPUBLISHED, "invalidations", "unpublished", "strata_invalidations_unpublished_total",  \
      "", "counter", "Invalidations that could not reach Redis (applied here only)")              \
    X(L2_HITS, "l2", "hits", "strata_l2_hits_total", "", "counter",                                \
      "L1 misses answered from the Redis tier")                                                    \
    X(L2_MISSES, "l2", "misses", "strata_l2_misses_total", "", "counter",                          \
      "L1 misses the Redis tier did not have (fresh)")                                             \
    X(L2_ERRORS, "l2", "errors", "strata_l2_errors_total", "", "counter",                          \
      "Redis commands that failed or answered after redis.timeout")                                \
    X(L2_CORRUPT, "l2", "corrupt", "strata_l2_corrupt_total", "", "counter",                       \
      "Redis values of another format version or damaged (read as misses)")                        \
    X(L2_WRITES, "l2", "writes", "strata_l2_writes_total", "", "counter",                          \
      "Entries Redis confirmed storing")                                                         \
    X(L2_SKIPPED, "l2", "skipped", "strata_l2_skipped_total", "", "counter",                       \
      "L1 misses that did not ask Redis because it was down (backoff)")                            \
    X(LOCK_WINS, "locks", "wins", "strata_lock_wins_total", "", "counter",                         \
      "Cross-instance fill locks taken (this instance fetched)")                                   \
    X(LOCK_WAITS, "locks", "waits", "strata_lock_waits_total", "", "counter",                      \
      "Misses that waited for another instance's fill")                                            \
    X(LOCK_FAIL_OPEN, "locks", "fail_open", "strata_lock_fail_open_total", "", "counter",          \
      "Waits that ended without the value (fetched from the origin instead)")                     \
    X(BUS_REPLAYED, "bus", "replayed", "strata_bus_replayed_total", "", "counter",                 \
      "Invalidations replayed from the stream after a lost subscription")                          \
    X(BUS_FLUSHES, "bus", "flushes", "strata_bus_flushes_total", "", "counter",                    \
      "L1 flushes because missed invalidations could not be replayed")                             \
    X(WB_QUEUED, "write_behind", "queued", "strata_write_behind_queued_total", "", "counter",      \
      "Write-behind writes made durable in Redis and acknowledged (202)")                          \
    X(WB_REFUSED, "write_behind", "refused", "strata_write_behind_refused_total", "", "counter",   \
      "Write-behind writes refused with 503 because Redis could not take them in time")            \
    X(WB_FLUSHED, "write_behind", "flushed", "strata_write_behind_flushed_total", "", "counter",   \
      "Queued writes the origin accepted (2xx)")                                                   \
    X(WB_COALESCED, "write_behind", "coalesced", "strata_write_behind_coalesced_total", "",       \
      "counter", "Queued writes never sent because a later PUT or DELETE to the key replaced them") \
    X(WB_RETRIES, "write_behind", "retries", "strata_write_behind_retries_total", "", "counter",   \
      "Queued writes sent again after a 5xx, a timeout or a connection failure")                   \
    X(WB_DEAD, "write_behind", "dead", "strata_write_behind_dead_total", "", "counter",            \
      "Queued writes moved to the dead letters (a 4xx, or retries exhausted)")                     \
    X(WB_PENDING, "write_behind", "pending", "strata_write_behind_pending", "", "gauge",           \
      "Writes queued in Redis and not yet flushed (every instance's)")                             \
    X(WB_LAG_MS, "write_behind", "lag_ms", "strata_write_behind_lag_seconds", "", "gauge",              \
      "Age of the oldest write not yet flushed (JSON: lag_ms)")                                  \
    X(ORIGIN_REQUESTS, "origin", "requests", "strata_origin_requests_total", "", "counter",        \
      "Requests sent to origins")                                                                  \
    X(ORIGIN_ERRORS, "origin", "errors", "strata_origin_errors_total", "", "counter",              \
      "Origin exchanges that failed (connect error, reset, bad response)")                         \
    X(ORIGIN_TIMEOUTS, "origin", "timeouts", "strata_origin_timeouts_total", "", "counter",        \
      "Origin exchanges that timed out")                                                           \
    X(ORIGIN_RETRIES, "origin", "retries", "strata_origin_retries_total", "", "counter",           \
      "Idempotent requests retried on a fresh connection after a pooled one was dead")             \
    X(ORIGIN_RETRIES_DENIED, "origin", "retries_denied", "strata_origin_retries_denied_total", "",   \
      "counter", "Retries not sent: the upstream's retry_budget was spent")                         \
    X(ORIGIN_BREAKER_REJECTED, "origin", "breaker_rejected", "strata_origin_breaker_rejected_total", \
      "", "counter", "Requests not sent because the upstream's circuit breaker was open")           \
    X(ORIGIN_CONNECTS, "origin", "connects", "strata_origin_connects_total", "", "counter",        \
      "New connections opened to origins")

enum st_stat_id {
#define ST_STAT_ENUM(id, g, k, pn, pl, pt, h) ST_STAT_##id,
    ST_STATS(ST_STAT_ENUM)
#undef ST_STAT_ENUM
        ST_STAT__COUNT
};

/* Per route (by stats slot) and per tier counters. */
enum st_rstat {
    ST_RS_REQUESTS,
    ST_RS_HITS,
    ST_RS_MISSES,
    ST_RS_STALE,
    ST_RS_COLLAPSED,
    ST_RS_BYPASS,
    ST_RS_BYTES,
    ST_RS_BYTES_HIT,
    ST_RS_REFETCHES,         /* per route only: fetches of an expired entry, stored or 304 */
    ST_RS_REFETCH_UNCHANGED, /* ... that brought what was stored (304, same status and body) */
    ST_RS__COUNT
};

#define ST_MAX_ROUTE_SLOTS 256
#define ST_MAX_TIER_SLOTS 64
#define ST_MAX_UPSTREAM_SLOTS 64
/*
 * Origin latency histogram: bucket i holds latencies below st_latency_bound_us(i),
 * four buckets per power of two from 100 us to about 88 s; the last one also holds
 * anything longer (+Inf).
 */
#define ST_LAT_BUCKETS 80

struct st_stats {
    _Alignas(64) _Atomic uint64_t v[ST_STAT__COUNT];
    _Atomic uint64_t route[ST_MAX_ROUTE_SLOTS][ST_RS__COUNT];
    _Atomic uint64_t tier[ST_MAX_TIER_SLOTS][ST_RS__COUNT];
    _Atomic uint64_t latency[ST_MAX_UPSTREAM_SLOTS][ST_LAT_BUCKETS];
    _Atomic uint64_t latency_sum_us[ST_MAX_UPSTREAM_SLOTS];
};

/* Add to a counter of the calling thread's own block: a plain load and store, no RMW. */
static inline void st_stat_bump(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

static inline void st_stat_add(struct st_stats *s, enum st_stat_id id, uint64_t n)
{
    st_stat_bump(&s->v[id], n);
}

static inline void st_stat_sub(struct st_stats *s, enum st_stat_id id, uint64_t n)
{
    st_stat_bump(&s->v[id], -n);
}

#define ST_STAT_INC(s, id) st_stat_add((s), ST_STAT_##id, 1)

/* Set a gauge that one thread alone keeps (the others' blocks hold 0 for it). */
static inline void st_stat_set(struct st_stats *s, enum st_stat_id id, uint64_t v)
{
    atomic_store_explicit(&s->v[id], v, memory_order_relaxed);
}

/* Upper bound (exclusive) of latency bucket i, in microseconds. */
uint64_t st_latency_bound_us(unsigned i);
/* Count one origin latency for an upstream slot. */
void st_stats_latency(struct st_stats *s, unsigned upstream_slot, uint64_t us);
/* The latency below which q (0..1) of the samples fall, from summed buckets. */
uint64_t st_latency_quantile_us(const uint64_t buckets[ST_LAT_BUCKETS], double q);

/* Count one response of this status into its class. */
void st_stats_count_status(struct st_stats *s, int status);

/* Sum n blocks into out (plain numbers). */
void st_stats_sum(struct st_stats *const *blocks, size_t n, uint64_t out[ST_STAT__COUNT]);

/* Called before each JSON group closes, to add computed members (",\"x\":1"). */
typedef void (*st_stats_group_cb)(struct st_sb *sb, const char *group,
                                  const uint64_t v[ST_STAT__COUNT], void *arg);

/* Render summed numbers as the members of a JSON object (no braces). */
void st_stats_render_json(struct st_sb *sb, const uint64_t v[ST_STAT__COUNT],
                          st_stats_group_cb extra, void *arg);
/* Render summed numbers in Prometheus text exposition format. */
void st_stats_render_prometheus(struct st_sb *sb, const uint64_t v[ST_STAT__COUNT]);

#endif
