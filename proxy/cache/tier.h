/*
 * tier.h - the cache tier interface: what strategies look up, store and
 * invalidate through, whatever holds the entries.
 *
 * A tier is a struct st_cache_tier with its operations. Today the memory
 * tier (memtier.h) implements it alone; the Redis tier chains behind it
 * (L1 -> L2) with the same operations, so a strategy never names a store.
 *
 * Threads: lookup is for worker threads registered with base/qsbr.h: the
 * entry it returns carries no reference and stays valid until the thread's
 * next quiescent point (the end of its loop iteration); take one
 * (st_entry_ref) to keep it longer. Every other operation may be called
 * from any thread.
 *
 * Flights: concurrent misses for one key join one flight (cache/flight.h);
 * the tier decides how far a flight reaches (one process for the memory
 * tier; every instance once a shared tier holds the lock). A shared tier
 * may park even the first caller while it reads the shared copy and takes
 * the cross-instance lock, then wake it with ST_FLIGHT_SHARED (an entry is
 * now in the nearest tier: look it up) or ST_FLIGHT_LEAD (fetch, then end
 * the flight with flight_done).
 *
 * Dirty entries (st_entry.dirty: a queued write-behind write the origin has
 * not confirmed) are written to the shared tier by their writer, in the
 * same step as the queue: insert puts them in the nearest tier only. A
 * fill (an entry that is not dirty) never replaces a dirty entry, here or
 * in the shared tier; removals do.
 *
 * Handles: the Redis tier gives each event-loop thread its own handle
 * (its Redis connection lives on that loop); a handle's asynchronous
 * operations must be called on its thread. The memory tier has one handle
 * for every thread.
 */
#ifndef ST_CACHE_TIER_H
#define ST_CACHE_TIER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/entry.h"
#include "cache/flight.h"
#include "cache/store.h"

struct st_cache_tier;
struct st_redis;

/* What an invalidation names (cache/invalidate.h has the semantics). */
enum st_inval_kind {
    ST_INVAL_URI,
    ST_INVAL_PREFIX,
    ST_INVAL_TAG,
    ST_INVAL_KEY, /* one exact cache key (a write that replaced it) */
};

enum st_shared_state { ST_SHARED_NONE, ST_SHARED_DOWN, ST_SHARED_UP };
enum st_bus_state { ST_BUS_NONE, ST_BUS_DOWN, ST_BUS_CATCHING_UP, ST_BUS_UP };

struct st_cache_tier_stats {
    struct st_store_stats l1;
    enum st_shared_state l2; /* NONE: no shared tier configured */
    enum st_bus_state bus;
};

struct st_cache_tier_ops {
    /* The entry for key whose Vary values match req, or NULL (no reference: see above). */
    struct st_entry *(*lookup)(struct st_cache_tier *t, uint64_t hash, const char *key,
                               size_t key_len, const struct st_headers *req);
    /* Publish e (the tier takes its own reference). False when e is too large to store. */
    bool (*insert)(struct st_cache_tier *t, struct st_entry *e);
    /* Removals: every entry with this key / key prefix / tag. Return how many. */
    size_t (*remove_key)(struct st_cache_tier *t, const char *key, size_t len);
    size_t (*remove_prefix)(struct st_cache_tier *t, const char *prefix, size_t len);
    size_t (*remove_tag)(struct st_cache_tier *t, const char *tag, size_t len);
    /* Drop e if it is still the published one (an expired entry the origin no longer backs). */
    void (*expire)(struct st_cache_tier *t, struct st_entry *e);
    enum st_flight_role (*flight_join)(struct st_cache_tier *t, uint64_t hash, const char *key,
                                       size_t key_len, struct st_flight_waiter *waiter);
    void (*flight_done)(struct st_cache_tier *t, uint64_t hash, const char *key, size_t key_len,
                        enum st_flight_result result, int status);
    void (*stats)(struct st_cache_tier *t, struct st_cache_tier_stats *out);
    /*
     * Optional (NULL: no shared tier): apply an invalidation to the shared
     * tier and tell every other instance, after the caller applied it here.
     * Returns 1 when sent, -EAGAIN when it could not be (the shared tier is down).
     */
    int (*invalidate_shared)(struct st_cache_tier *t, enum st_inval_kind kind, const char *value,
                              size_t len);
    /*
     * Optional: this thread's handle on the tier is done with (its loop is
     * ending); what it has in flight fails over to the origin. Called on the
     * handle's own thread; the handle is freed once its loop closed it.
     */
    void (*detach)(struct st_cache_tier *t);
    /*
     * Optional (NULL: no shared tier): this handle's Redis connection, for
     * the strategies that talk to Redis themselves (the write-behind queue);
     * NULL once detached. And this instance's id, the same on every handle.
     */
    struct st_redis *(*redis)(struct st_cache_tier *t);
    const char *(*instance)(struct st_cache_tier *t);
    void (*destroy)(struct st_cache_tier *t);
};

struct st_cache_tier {
    const struct st_cache_tier_ops *ops;
    uint64_t max_object; /* largest body any tier of the chain stores */
};

/* The hash every tier keys entries by. */
static inline uint64_t st_cache_tier_hash(const char *key, size_t len)
{
    return st_store_hash(key, len);
}

static inline struct st_entry *st_cache_tier_lookup(struct st_cache_tier *t, uint64_t hash,
                                                    const char *key, size_t key_len,
                                                    const struct st_headers *req)
{
    return t->ops->lookup(t, hash, key, key_len, req);
}

static inline bool st_cache_tier_insert(struct st_cache_tier *t, struct st_entry *e)
{
    return t->ops->insert(t, e);
}

static inline size_t st_cache_tier_remove_key(struct st_cache_tier *t, const char *key,
                                              size_t len)
{
    return t->ops->remove_key(t, key, len);
}

static inline size_t st_cache_tier_remove_prefix(struct st_cache_tier *t, const char *prefix,
                                                 size_t len)
{
    return t->ops->remove_prefix(t, prefix, len);
}

static inline size_t st_cache_tier_remove_tag(struct st_cache_tier *t, const char *tag,
                                              size_t len)
{
    return t->ops->remove_tag(t, tag, len);
}

static inline void st_cache_tier_expire(struct st_cache_tier *t, struct st_entry *e)
{
    t->ops->expire(t, e);
}

static inline enum st_flight_role st_cache_tier_flight_join(struct st_cache_tier *t, uint64_t hash,
                                                            const char *key, size_t key_len,
                                                            struct st_flight_waiter *waiter)
{
    return t->ops->flight_join(t, hash, key, key_len, waiter);
}

static inline void st_cache_tier_flight_done(struct st_cache_tier *t, uint64_t hash,
                                             const char *key, size_t key_len,
                                             enum st_flight_result result, int status)
{
    t->ops->flight_done(t, hash, key, key_len, result, status);
}

static inline void st_cache_tier_stats(struct st_cache_tier *t, struct st_cache_tier_stats *out)
{
    t->ops->stats(t, out);
}

/* 1 sent, 0 no shared tier, -EAGAIN not sent. */
static inline int st_cache_tier_invalidate_shared(struct st_cache_tier *t, enum st_inval_kind kind,
                                                  const char *value, size_t len)
{
    return t->ops->invalidate_shared ? t->ops->invalidate_shared(t, kind, value, len) : 0;
}

static inline void st_cache_tier_detach(struct st_cache_tier *t)
{
    if (t->ops->detach)
        t->ops->detach(t);
}

static inline struct st_redis *st_cache_tier_redis(struct st_cache_tier *t)
{
    return t->ops->redis ? t->ops->redis(t) : NULL;
}

static inline const char *st_cache_tier_instance(struct st_cache_tier *t)
{
    return t->ops->instance ? t->ops->instance(t) : NULL;
}

/* NULL is a no-op. */
static inline void st_cache_tier_destroy(struct st_cache_tier *t)
{
    if (t)
        t->ops->destroy(t);
}

#endif
