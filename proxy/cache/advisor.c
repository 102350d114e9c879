/*
 * advisor.c - replays each route's sampled requests against every configured
 * tier (advisor.h has the model and its limits).
 *
 * A feed is a ring of 256 events with one producer (its worker) and
 * consumers that hold the advisor's lock: the worker itself, when the ring is
 * half full or its oldest event a second old (try-lock: it never waits for
 * the lock then), or full (it waits); and estimates, which drain every feed.
 *
 * A route's followed keys live in an open-addressing table of twice
 * ST_ADVISOR_KEYS slots, each with the time every tier last fetched the key,
 * in milliseconds since the route's epoch, and the key's part of the route's
 * counts: a key that leaves the sample takes its requests with it, so the
 * estimate is always that of the keys followed now, each from its first
 * request (the threshold only falls: a followed key was followed from the
 * start). 32 bits: after 49 days, or 4 billion requests of one key, the route
 * starts afresh.
 */
#include "cache/advisor.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "base/alloc.h"
#include "base/stats.h"

#define RING 256
#define TABLE (2 * ST_ADVISOR_KEYS)
#define NEVER UINT32_MAX
#define FLUSH_AFTER_MS 1000

struct event {
    uint64_t hash;
    int64_t t_ms;
    unsigned slot;
};

struct st_advisor_feed {
    struct st_advisor *a;
    _Atomic uint32_t head; /* written by the producer */
    _Atomic uint32_t tail; /* written by a consumer, under the lock */
    int64_t pending_since; /* producer only: when the first event since its last drain came */
    struct st_advisor_feed *next;
    struct event ev[RING];
};

struct key {
    uint64_t hash; /* 0: free slot (a key hashing to 0 is kept as 1) */
    uint32_t fetched[ST_ADVISOR_MAX_TIERS];
    /* this key's part of the route's counts, taken back when it leaves the sample */
    uint32_t requests;
    uint32_t hits[ST_ADVISOR_MAX_TIERS];
};

struct route {
    size_t n;
    int64_t epoch_ms;
    uint64_t requests;
    uint64_t hits[ST_ADVISOR_MAX_TIERS];
    struct key *table;
};

struct st_advisor {
    uv_mutex_t lock;
    size_t n_tiers;
    struct st_advisor_tier tiers[ST_ADVISOR_MAX_TIERS];
    struct st_advisor_feed *feeds;
    /* a key of the slot is followed when its hash is at most this (read without the lock) */
    _Atomic uint64_t threshold[ST_MAX_ROUTE_SLOTS];
    struct route *routes[ST_MAX_ROUTE_SLOTS];
};

struct st_advisor *st_advisor_new(void)
{
    struct st_advisor *a = st_xcalloc(1, sizeof(*a));
    uv_mutex_init(&a->lock);
    for (size_t i = 0; i < ST_MAX_ROUTE_SLOTS; i++)
        atomic_init(&a->threshold[i], UINT64_MAX);
    return a;
}

static void route_free(struct route *r)
{
    if (r) {
        free(r->table);
        free(r);
    }
}

void st_advisor_free(struct st_advisor *a)
{
    if (!a)
        return;
    ST_CHECK(!a->feeds);
    for (size_t i = 0; i < ST_MAX_ROUTE_SLOTS; i++)
        route_free(a->routes[i]);
    uv_mutex_destroy(&a->lock);
    free(a);
}

void st_advisor_set_tiers(struct st_advisor *a, const struct st_advisor_tier *tiers, size_t n)
{
    if (n > ST_ADVISOR_MAX_TIERS)
        n = ST_ADVISOR_MAX_TIERS;
    uv_mutex_lock(&a->lock);
    if (n != a->n_tiers || memcmp(tiers, a->tiers, n * sizeof(*tiers)) != 0) {
        a->n_tiers = n;
        memcpy(a->tiers, tiers, n * sizeof(*tiers));
        for (size_t i = 0; i < ST_MAX_ROUTE_SLOTS; i++) {
            route_free(a->routes[i]);
            a->routes[i] = NULL;
            atomic_store_explicit(&a->threshold[i], UINT64_MAX, memory_order_relaxed);
        }
    }
    uv_mutex_unlock(&a->lock);
}

/* --- the replay (under the lock) --- */

static struct key *slot_of(struct key *table, uint64_t hash)
{
    size_t i = (size_t)(hash ^ (hash >> 32)) & (TABLE - 1);
    while (table[i].hash != 0 && table[i].hash != hash)
        i = (i + 1) & (TABLE - 1);
    return &table[i];
}

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

/* The table is full: lower the slot's threshold so that an eighth of its keys leave. */
static void shrink(struct st_advisor *a, unsigned slot, struct route *r)
{
    struct key *old = r->table;
    uint64_t *hashes = st_xmalloc(r->n * sizeof(*hashes));
    size_t n = 0;
    for (size_t i = 0; i < TABLE; i++)
        if (old[i].hash)
            hashes[n++] = old[i].hash;
    qsort(hashes, n, sizeof(*hashes), cmp_u64);
    uint64_t threshold = hashes[n - n / 8] - 1;
    free(hashes);
    atomic_store_explicit(&a->threshold[slot], threshold, memory_order_relaxed);
    r->table = st_xcalloc(TABLE, sizeof(*r->table));
    r->n = 0;
    for (size_t i = 0; i < TABLE; i++) {
        const struct key *k = &old[i];
        if (!k->hash)
            continue;
        if (k->hash <= threshold) {
            *slot_of(r->table, k->hash) = *k;
            r->n++;
            continue;
        }
        r->requests -= k->requests;
        for (size_t t = 0; t < ST_ADVISOR_MAX_TIERS; t++)
            r->hits[t] -= k->hits[t];
    }
    free(old);
}

static void replay(struct st_advisor *a, const struct event *ev)
{
    uint64_t hash = ev->hash ? ev->hash : 1;
    if (ev->slot >= ST_MAX_ROUTE_SLOTS || a->n_tiers == 0 ||
        hash > atomic_load_explicit(&a->threshold[ev->slot], memory_order_relaxed))
        return;
    struct route *r = a->routes[ev->slot];
    if (!r) {
        r = a->routes[ev->slot] = st_xcalloc(1, sizeof(*r));
        r->table = st_xcalloc(TABLE, sizeof(*r->table));
        r->epoch_ms = ev->t_ms;
    }
    int64_t off = ev->t_ms - r->epoch_ms;
    struct key *k = slot_of(r->table, hash);
    if (off >= (int64_t)NEVER || k->requests == UINT32_MAX) { /* start afresh */
        memset(r->table, 0, TABLE * sizeof(*r->table));
        memset(r->hits, 0, sizeof(r->hits));
        r->n = 0;
        r->requests = 0;
        r->epoch_ms = ev->t_ms;
        off = 0;
        k = slot_of(r->table, hash);
    }
    if (off < 0)
        off = 0;
    if (!k->hash) {
        if (r->n == ST_ADVISOR_KEYS) {
            shrink(a, ev->slot, r);
            if (hash > atomic_load_explicit(&a->threshold[ev->slot], memory_order_relaxed))
                return;
            k = slot_of(r->table, hash);
        }
        *k = (struct key){.hash = hash};
        for (size_t i = 0; i < ST_ADVISOR_MAX_TIERS; i++)
            k->fetched[i] = NEVER;
        r->n++;
    }
    r->requests++;
    k->requests++;
    size_t n = a->n_tiers;
    for (size_t i = 0; i < n; i++) {
        const struct st_advisor_tier *t = &a->tiers[i];
        if (k->fetched[i] != NEVER) {
            int64_t gap = off - (int64_t)k->fetched[i]; /* < 0: out of order, fetched "later" */
            if (gap < t->ttl_ms) {
                r->hits[i]++;
                k->hits[i]++;
                continue;
            }
            if (gap < t->ttl_ms + t->swr_ms) { /* stale answer; the refresh fetches now */
                r->hits[i]++;
                k->hits[i]++;
                k->fetched[i] = (uint32_t)off;
                continue;
            }
        }
        k->fetched[i] = (uint32_t)off; /* a miss fetches */
    }
}

static void drain(struct st_advisor_feed *f)
{
    uint32_t t = atomic_load_explicit(&f->tail, memory_order_relaxed);
    uint32_t h = atomic_load_explicit(&f->head, memory_order_acquire);
    for (; t != h; t++)
        replay(f->a, &f->ev[t % RING]);
    atomic_store_explicit(&f->tail, t, memory_order_release);
}

/* --- feeds --- */

struct st_advisor_feed *st_advisor_feed_new(struct st_advisor *a)
{
    struct st_advisor_feed *f = st_xcalloc(1, sizeof(*f));
    f->a = a;
    uv_mutex_lock(&a->lock);
    f->next = a->feeds;
    a->feeds = f;
    uv_mutex_unlock(&a->lock);
    return f;
}

void st_advisor_feed_free(struct st_advisor_feed *f)
{
    if (!f)
        return;
    struct st_advisor *a = f->a;
    uv_mutex_lock(&a->lock);
    drain(f);
    for (struct st_advisor_feed **p = &a->feeds; *p; p = &(*p)->next) {
        if (*p == f) {
            *p = f->next;
            break;
        }
    }
    uv_mutex_unlock(&a->lock);
    free(f);
}

void st_advisor_observe(struct st_advisor_feed *f, unsigned slot, uint64_t hash, int64_t now_ms)
{
    struct st_advisor *a = f->a;
    if (slot >= ST_MAX_ROUTE_SLOTS ||
        hash > atomic_load_explicit(&a->threshold[slot], memory_order_relaxed))
        return; /* not a followed key (the replay checks again, with 0 kept as 1) */
    uint32_t h = atomic_load_explicit(&f->head, memory_order_relaxed);
    uint32_t t = atomic_load_explicit(&f->tail, memory_order_acquire);
    if (h - t >= RING) { /* full: replay it now, waiting for the lock if need be */
        uv_mutex_lock(&a->lock);
        drain(f);
        uv_mutex_unlock(&a->lock);
        f->pending_since = 0;
    }
    f->ev[h % RING] = (struct event){.hash = hash, .t_ms = now_ms, .slot = slot};
    atomic_store_explicit(&f->head, h + 1, memory_order_release);
    if (!f->pending_since)
        f->pending_since = now_ms;
    if ((h + 1 - t >= RING / 2 || now_ms - f->pending_since >= FLUSH_AFTER_MS) &&
        uv_mutex_trylock(&a->lock) == 0) {
        drain(f);
        uv_mutex_unlock(&a->lock);
        f->pending_since = 0;
    }
}

/* --- what it tells --- */

bool st_advisor_estimate(struct st_advisor *a, unsigned slot, struct st_advisor_estimate *out)
{
    memset(out, 0, sizeof(*out));
    if (slot >= ST_MAX_ROUTE_SLOTS)
        return false;
    uv_mutex_lock(&a->lock);
    for (struct st_advisor_feed *f = a->feeds; f; f = f->next)
        drain(f);
    const struct route *r = a->routes[slot];
    bool seen = r && r->requests > 0;
    if (seen) {
        uint64_t thr = atomic_load_explicit(&a->threshold[slot], memory_order_relaxed);
        out->requests = r->requests;
        out->keys = r->n;
        out->sample_rate = thr == UINT64_MAX ? 1.0 : (double)thr / 18446744073709551616.0;
        out->n_tiers = a->n_tiers;
        memcpy(out->tiers, a->tiers, sizeof(out->tiers));
        for (size_t i = 0; i < a->n_tiers; i++)
            out->hit_ratio[i] = (double)r->hits[i] / (double)r->requests;
    }
    uv_mutex_unlock(&a->lock);
    return seen;
}

static int pct(double x)
{
    return (int)(x * 100.0 + (x >= 0 ? 0.5 : -0.5));
}

bool st_advisor_suggest(const struct st_advisor_estimate *e, const char *const *names,
                        size_t cur, uint64_t refetches, uint64_t unchanged, char *buf,
                        size_t cap)
{
    buf[0] = '\0';
    if (cur >= e->n_tiers || e->requests < ST_ADVISOR_MIN_REQUESTS)
        return false;
    /* The next longer and the next shorter tier by TTL (ties: the first in config order). */
    size_t longer = SIZE_MAX, shorter = SIZE_MAX;
    int64_t ttl = e->tiers[cur].ttl_ms;
    for (size_t i = 0; i < e->n_tiers; i++) {
        int64_t t = e->tiers[i].ttl_ms;
        if (t > ttl && (longer == SIZE_MAX || t < e->tiers[longer].ttl_ms))
            longer = i;
        if (t < ttl && (shorter == SIZE_MAX || t > e->tiers[shorter].ttl_ms))
            shorter = i;
    }
    bool known = refetches >= ST_ADVISOR_MIN_REFETCHES;
    int same = known ? pct((double)unchanged / (double)refetches) : 0;
    int now = pct(e->hit_ratio[cur]);
    if (longer != SIZE_MAX) {
        int then = pct(e->hit_ratio[longer]);
        if (then - now >= 5 && known && same >= 90) {
            snprintf(buf, cap,
                     "%s \u2192 %s: +%d%% hit ratio (%d%% \u2192 %d%%), %d%% of refetches "
                     "were unchanged",
                     names[cur], names[longer], then - now, now, then, same);
            return true;
        }
    }
    if (shorter != SIZE_MAX && known && same <= 50) {
        int then = pct(e->hit_ratio[shorter]);
        if (now - then <= 5) {
            snprintf(buf, cap,
                     "%s \u2192 %s: -%d%% hit ratio (%d%% \u2192 %d%%), %d%% of refetches had "
                     "changed: fresher answers for little hit ratio",
                     names[cur], names[shorter], now - then, now, then, 100 - same);
            return true;
        }
    }
    if (longer == SIZE_MAX) {
        snprintf(buf, cap, "keep %s: no tier is longer", names[cur]);
    } else {
        int then = pct(e->hit_ratio[longer]);
        if (then - now < 5)
            snprintf(buf, cap, "keep %s: %s would add only %+d%% hit ratio", names[cur],
                     names[longer], then - now);
        else if (!known)
            snprintf(buf, cap,
                     "keep %s: %s would add +%d%% hit ratio, but too few refetches yet to "
                     "tell how often the answers change",
                     names[cur], names[longer], then - now);
        else
            snprintf(buf, cap,
                     "keep %s: %s would add +%d%% hit ratio, but %d%% of refetches had changed",
                     names[cur], names[longer], then - now, 100 - same);
    }
    return false;
}
