/*
 * cache.h - the memory tier (L1): a sharded store of immutable,
 * reference-counted entries shared by every worker thread.
 *
 * Data model. An entry is one stored response: its key, the Vary selecting
 * headers and the request's values for them, the response head serialized
 * once at store time (status line + end-to-end headers, without framing,
 * Age, Cache-Status, X-Request-Id or Connection, which are added per
 * answer), the body, freshness numbers and validators. All of it lives in
 * one allocation. Once published an entry never changes, except its SIEVE
 * "visited" bit (a relaxed atomic) and the index links its shard owns.
 *
 * Keys: "<path>[?<normalized query>]" 0x1f "<host>". Several entries may
 * share a key (one per Vary variant). The prefix index orders keys, so a
 * prefix invalidation ("/api/v1/") visits only the matching entries; the
 * tag index maps each Surrogate-Key to its entries.
 *
 * Locking: one mutex per shard (XXH3 of the key picks the shard) guards
 * every change to the shard: hash table, SIEVE queue, indexes, byte count
 * and flights. Worker threads read the hash chains without the lock
 * (st_cache_peek: atomic chain pointers, memory reclaimed through qsbr.h),
 * so a hit takes no lock and no reference. An unlinked entry is retired;
 * the cache's reference is dropped once no reader can still see it, and
 * whoever drops the last reference frees the entry.
 *
 * Eviction: SIEVE (NSDI'24) per shard over a FIFO queue; a hit sets the
 * visited bit without taking the lock for writing anything else.
 *
 * Single-flight: a shard also holds the in-flight fetches by key. The first
 * miss becomes the leader; later ones park a waiter that is handed back to
 * its own worker (st_worker_post) when the leader finishes.
 */
#ifndef ST_CACHE_H
#define ST_CACHE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/http.h"

struct st_cache;
struct st_worker;
struct st_exchange;

#define ST_CACHE_MAX_VARY 8
#define ST_CACHE_MAX_TAGS 16

/*
 * Layout of one entry's allocation: this struct, the prefix-index links
 * (sl_height pointers), the tag links (n_tags), then key NUL, Vary pairs,
 * ETag NUL, Surrogate-Key NUL, the head, and the body (bodies of 512 bytes
 * or more get an allocation of their own: together with a compact struct
 * this keeps the allocator's size-class rounding small). Lengths are stored,
 * pointers to the smaller parts are computed (st_cache_entry_etag(), ...).
 */
struct st_cache_entry {
    _Atomic unsigned refs;
    _Atomic unsigned char visited;
    bool linked; /* in its shard (under the shard lock) */
    bool no_stale;
    bool always_revalidate;
    uint64_t hash;
    /* hash chain: written under the shard lock, read lock-free (st_cache_peek) */
    _Atomic(struct st_cache_entry *) h_next;
    /* shard-private links (under the shard lock) */
    struct st_cache_entry *q_prev, *q_next;
    const char *body;
    uint32_t key_len, head_len, body_len;
    uint32_t charge; /* bytes counted against the budget */
    uint16_t vary_len, etag_len, tags_len;
    uint16_t status;
    uint8_t n_vary, n_tags, sl_height;
    bool body_apart;   /* body has its own allocation */
    int16_t tier_slot; /* stats slot of the tier it was stored under, -1 none */
    int32_t initial_age_ms;
    int32_t swr_ms; /* capped at ~24 days */
    int32_t sie_ms;
    uint32_t last_modified_s; /* whole seconds (as HTTP dates); UINT32_MAX = none, and so
                                 is a date before 1970 or from 2106-02-07 on */
    int64_t stored_ms;        /* when the response arrived */
    int64_t lifetime_ms;      /* freshness lifetime, jitter applied */
};

/* One entry's membership in a tag bucket (the shard's Surrogate-Key index). */
struct st_tag_link {
    struct st_tag_link *prev, *next; /* in the tag bucket */
    struct st_cache_entry *e;
    uint64_t tag_hash;
    const char *tag; /* points into the entry's Surrogate-Key value */
    size_t tag_len;
};

static inline struct st_cache_entry **st_cache_entry_sl(struct st_cache_entry *e)
{
    return (struct st_cache_entry **)(e + 1);
}

static inline struct st_tag_link *st_cache_entry_tag_links(struct st_cache_entry *e)
{
    return (struct st_tag_link *)(st_cache_entry_sl(e) + e->sl_height);
}

/* The key (NUL-terminated), right after the links. */
static inline const char *st_cache_entry_key(const struct st_cache_entry *e)
{
    return (const char *)(e + 1) + e->sl_height * sizeof(struct st_cache_entry *) +
           e->n_tags * sizeof(struct st_tag_link);
}

/* "name\0value\0" * n_vary, names lowercase */
static inline const char *st_cache_entry_vary(const struct st_cache_entry *e)
{
    return st_cache_entry_key(e) + e->key_len + 1;
}

/* The ETag value, or NULL when none. */
static inline const char *st_cache_entry_etag(const struct st_cache_entry *e)
{
    return e->etag_len ? st_cache_entry_vary(e) + e->vary_len : NULL;
}

/* The Surrogate-Key value (space separated), or NULL when none. */
static inline const char *st_cache_entry_tags(const struct st_cache_entry *e)
{
    return e->tags_len ? st_cache_entry_vary(e) + e->vary_len + e->etag_len + 1 : NULL;
}

/* The stored response head: status line + headers, each ending in CRLF, no final CRLF. */
static inline const char *st_cache_entry_head(const struct st_cache_entry *e)
{
    return st_cache_entry_vary(e) + e->vary_len + e->etag_len + 1 + e->tags_len + 1;
}

/* Last-Modified in ms since the epoch, -1 when none. */
static inline int64_t st_cache_entry_last_modified_ms(const struct st_cache_entry *e)
{
    return e->last_modified_s == UINT32_MAX ? -1 : (int64_t)e->last_modified_s * 1000;
}

/* What an entry is built from. */
struct st_cache_entry_init {
    const char *key;
    size_t key_len;
    const struct st_headers *req;  /* for the Vary values */
    const struct st_headers *resp; /* stored headers (filtered here) */
    int status;
    const char *reason;
    size_t reason_len;
    const char *body;
    size_t body_len;
    int64_t stored_ms, initial_age_ms, lifetime_ms, swr_ms, sie_ms;
    bool no_stale, always_revalidate;
    int tier_slot;
};

struct st_cache_stats {
    uint64_t entries, bytes, capacity, evictions, expirations, invalidations;
};

/* memory: byte budget for everything stored; max_object: largest body stored. */
struct st_cache *st_cache_create(uint64_t memory, uint64_t max_object);
void st_cache_destroy(struct st_cache *c);
uint64_t st_cache_max_object(const struct st_cache *c);

/* Build an entry (one reference, not yet published). NULL when Vary has too many headers. */
struct st_cache_entry *st_cache_entry_new(const struct st_cache_entry_init *in);
struct st_cache_entry *st_cache_entry_ref(struct st_cache_entry *e);
void st_cache_entry_unref(struct st_cache_entry *e);

uint64_t st_cache_hash(const char *key, size_t len);

/*
 * The entry for key whose Vary values match req, with a reference for the
 * caller, or NULL. Marks it visited.
 */
struct st_cache_entry *st_cache_lookup(struct st_cache *c, uint64_t hash, const char *key,
                                       size_t key_len, const struct st_headers *req);

/*
 * The same lookup for a worker thread registered with qsbr.h: lock-free and
 * without a reference. The pointer stays valid until the thread goes
 * offline (the end of its current loop iteration); take a reference to
 * keep the entry longer.
 */
struct st_cache_entry *st_cache_peek(struct st_cache *c, uint64_t hash, const char *key,
                                     size_t key_len, const struct st_headers *req);

/*
 * Publish e (the cache takes its own reference; the caller keeps theirs).
 * Replaces an entry with the same key and Vary values; evicts to stay
 * within budget. Returns false when e is too large to store.
 */
bool st_cache_insert(struct st_cache *c, struct st_cache_entry *e);

/* Remove every entry with exactly this key. Returns how many. */
size_t st_cache_remove_key(struct st_cache *c, const char *key, size_t key_len);
/* Remove every entry whose key starts with prefix. Returns how many. */
size_t st_cache_remove_prefix(struct st_cache *c, const char *prefix, size_t len);
/* Remove every entry tagged tag (Surrogate-Key). Returns how many. */
size_t st_cache_remove_tag(struct st_cache *c, const char *tag, size_t len);
/* Remove e if it is still the published one (an expired entry found in use). */
void st_cache_expire(struct st_cache *c, struct st_cache_entry *e);

void st_cache_stats(struct st_cache *c, struct st_cache_stats *out);

/* --- single-flight --- */

/* How a flight ended, for its waiters. */
enum st_flight_result {
    ST_FLIGHT_STORED = 0,  /* an entry was stored: look it up */
    ST_FLIGHT_UNCACHEABLE, /* the answer was not stored: fetch for yourself */
    ST_FLIGHT_FAILED,      /* the origin failed: answer stale or an error */
};

struct st_waiter {
    struct st_waiter *next;   /* in the flight, then in the worker's wake queue */
    struct st_worker *w;      /* the waiter's worker: only it touches x */
    struct st_exchange *x;    /* NULL once the exchange is gone */
    enum st_flight_result result; /* set by the leader before it posts the waiter */
    int status;                   /* with ST_FLIGHT_FAILED: the error status */
};

enum st_flight_role { ST_FLIGHT_LEADER, ST_FLIGHT_PARKED };

/*
 * Join the flight for key: the first caller leads (and must call
 * st_cache_flight_done exactly once); later callers are parked with their
 * waiter (w must be set; the cache owns it until it is posted back).
 * With waiter NULL, a caller that is not the leader gets PARKED without
 * waiting (a background refresh that is already running).
 */
enum st_flight_role st_cache_flight_join(struct st_cache *c, uint64_t hash, const char *key,
                                         size_t key_len, struct st_waiter *waiter);
/* End the flight: every parked waiter gets the result and is posted to its worker. */
void st_cache_flight_done(struct st_cache *c, uint64_t hash, const char *key, size_t key_len,
                          enum st_flight_result result, int status);

#endif
