/*
 * memtier.c - the memory tier: each operation of tier.h on the store, with
 * Vary matching from the entry encoding; flights are local to the process.
 */
#include "cache/memtier.h"

#include <stdlib.h>

#include "base/alloc.h"

struct memtier {
    struct st_cache_tier base; /* first: the tier pointer is the memtier pointer */
    struct st_store *store;
    struct st_flights *flights;
};

static struct memtier *mt(struct st_cache_tier *t)
{
    return (struct memtier *)t;
}

static struct st_entry *lookup(struct st_cache_tier *t, uint64_t hash, const char *key,
                               size_t key_len, const struct st_headers *req)
{
    return st_entry_of(st_store_peek(mt(t)->store, hash, key, key_len, st_entry_vary_matches, req));
}

static bool is_dirty(const struct st_store_item *it, const void *arg)
{
    (void)arg;
    return st_entry_of(it)->dirty;
}

static bool insert(struct st_cache_tier *t, struct st_entry *e)
{
    struct st_store_item *it = st_entry_item(e);
    /* A fill never replaces a queued write's entry: the origin does not have that write yet. */
    if (!e->dirty) {
        struct st_store_item *cur =
            st_store_peek(mt(t)->store, it->hash, st_entry_key(e), st_entry_key_len(e), is_dirty,
                          NULL); /* is_dirty picks among variants; one without any is returned */
        if (cur && st_entry_of(cur)->dirty)
            return true;
    }
    return st_store_insert(mt(t)->store, it);
}

static size_t remove_key(struct st_cache_tier *t, const char *key, size_t len)
{
    return st_store_remove_key(mt(t)->store, key, len);
}

static size_t remove_prefix(struct st_cache_tier *t, const char *prefix, size_t len)
{
    return st_store_remove_prefix(mt(t)->store, prefix, len);
}

static size_t remove_tag(struct st_cache_tier *t, const char *tag, size_t len)
{
    return st_store_remove_tag(mt(t)->store, tag, len);
}

static void expire(struct st_cache_tier *t, struct st_entry *e)
{
    st_store_expire(mt(t)->store, st_entry_item(e));
}

static enum st_flight_role flight_join(struct st_cache_tier *t, uint64_t hash, const char *key,
                                       size_t key_len, struct st_flight_waiter *waiter)
{
    return st_flight_join(mt(t)->flights, hash, key, key_len, waiter);
}

static void flight_done(struct st_cache_tier *t, uint64_t hash, const char *key, size_t key_len,
                        enum st_flight_result result, int status)
{
    st_flight_done(mt(t)->flights, hash, key, key_len, result, status);
}

static void stats(struct st_cache_tier *t, struct st_cache_tier_stats *out)
{
    st_store_stats(mt(t)->store, &out->l1);
    out->l2 = ST_SHARED_NONE;
    out->bus = ST_BUS_NONE;
}

static void destroy(struct st_cache_tier *t)
{
    st_store_destroy(mt(t)->store);
    st_flights_destroy(mt(t)->flights);
    free(t);
}

static const struct st_cache_tier_ops memtier_ops = {
    .lookup = lookup,
    .insert = insert,
    .remove_key = remove_key,
    .remove_prefix = remove_prefix,
    .remove_tag = remove_tag,
    .expire = expire,
    .flight_join = flight_join,
    .flight_done = flight_done,
    .stats = stats,
    .destroy = destroy,
};

struct st_cache_tier *st_memtier_create(uint64_t memory, uint64_t max_object)
{
    struct memtier *m = st_xcalloc(1, sizeof(*m));
    m->base.ops = &memtier_ops;
    m->base.max_object = max_object;
    m->store = st_store_create(memory, max_object);
    m->flights = st_flights_create();
    return &m->base;
}
