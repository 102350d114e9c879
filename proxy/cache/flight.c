/*
 * flight.c - single-flight by key, sharded by hash. See flight.h.
 */
#include "cache/flight.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "base/alloc.h"

#define FLIGHT_SHARDS 64

struct flight {
    struct flight *next;
    uint64_t hash;
    char *key; /* owned */
    size_t key_len;
    struct st_flight_waiter *waiters;
};

struct shard {
    uv_mutex_t lock;
    struct flight *flights;
};

struct st_flights {
    struct shard shards[FLIGHT_SHARDS];
};

struct st_flights *st_flights_create(void)
{
    struct st_flights *f = st_xcalloc(1, sizeof(*f));
    for (unsigned i = 0; i < FLIGHT_SHARDS; i++)
        uv_mutex_init(&f->shards[i].lock);
    return f;
}

void st_flights_destroy(struct st_flights *f)
{
    if (!f)
        return;
    for (unsigned i = 0; i < FLIGHT_SHARDS; i++) {
        for (struct flight *fl = f->shards[i].flights, *next; fl; fl = next) {
            next = fl->next;
            free(fl->key);
            free(fl);
        }
        uv_mutex_destroy(&f->shards[i].lock);
    }
    free(f);
}

static struct shard *shard_of(struct st_flights *f, uint64_t hash)
{
    return &f->shards[(hash >> 32) % FLIGHT_SHARDS];
}

static bool same_key(const struct flight *fl, uint64_t hash, const char *key, size_t len)
{
    return fl->hash == hash && fl->key_len == len && memcmp(fl->key, key, len) == 0;
}

enum st_flight_role st_flight_join(struct st_flights *f, uint64_t hash, const char *key,
                                   size_t key_len, struct st_flight_waiter *waiter)
{
    struct shard *s = shard_of(f, hash);
    uv_mutex_lock(&s->lock);
    for (struct flight *fl = s->flights; fl; fl = fl->next) {
        if (same_key(fl, hash, key, key_len)) {
            if (waiter) {
                waiter->next = fl->waiters;
                fl->waiters = waiter;
            }
            uv_mutex_unlock(&s->lock);
            return ST_FLIGHT_PARKED;
        }
    }
    struct flight *fl = st_xcalloc(1, sizeof(*fl));
    fl->hash = hash;
    fl->key = st_xstrndup(key, key_len);
    fl->key_len = key_len;
    fl->next = s->flights;
    s->flights = fl;
    uv_mutex_unlock(&s->lock);
    return ST_FLIGHT_LEADER;
}

void st_flight_done(struct st_flights *f, uint64_t hash, const char *key, size_t key_len,
                    enum st_flight_result result, int status)
{
    struct shard *s = shard_of(f, hash);
    struct flight *found = NULL;
    uv_mutex_lock(&s->lock);
    for (struct flight **pp = &s->flights; *pp; pp = &(*pp)->next) {
        if (same_key(*pp, hash, key, key_len)) {
            found = *pp;
            *pp = found->next;
            break;
        }
    }
    uv_mutex_unlock(&s->lock);
    if (!found)
        return;
    struct st_flight_waiter *w = found->waiters;
    while (w) {
        struct st_flight_waiter *next = w->next;
        w->result = result;
        w->status = status;
        w->wake(w); /* may free w */
        w = next;
    }
    free(found->key);
    free(found);
}
