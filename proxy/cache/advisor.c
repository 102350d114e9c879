/*
 * advisor.c - replays each route's sampled requests and fetches against
 * every configured tier (advisor.h has the model and its limits).
 *
 * A feed is a ring of 256 events with one producer (its worker); consumers
 * hold the advisor's lock and drain every feed at once, merging the feeds'
 * runs (each in its worker's time order) so the replay sees one timeline.
 *
 * A route's followed keys live in an open-addressing table of twice
 * ST_ADVISOR_KEYS slots, each with the time every tier last fetched the key,
 * in milliseconds since the route's epoch, which tiers' fetches await their
 * outcome, and the key's part of the route's counts: a key that leaves the
 * sample takes its requests with it, so the hit ratios are always those of
 * the keys followed now, each from its first request (the threshold only
 * falls: a followed key was followed from the start). 32 bits: after 49
 * days, or 4 billion requests of one key, the route starts afresh.
 */
#include "cache/advisor.h"

#include <stdarg.h>
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

enum { EV_REQUEST, EV_FETCHED };

struct event {
    uint64_t hash;
    int64_t t_ms;
    uint32_t lifetime_ms; /* EV_FETCHED without ST_ADVISOR_TIER_TTL: the origin's (capped) */
    uint16_t slot;
    uint8_t kind;  /* EV_* */
    uint8_t flags; /* ST_ADVISOR_FORCED, or the fetch's ST_ADVISOR_* outcome */
};

struct st_advisor_feed {
    struct st_advisor *a;         /* not owned */
    _Atomic uint32_t head;        /* written by the producer */
    _Atomic uint32_t tail;        /* written by a consumer, under the lock */
    int64_t pending_since;        /* producer only: when the oldest event it may hold came */
    struct st_advisor_feed *next; /* the advisor's list of feeds */
    struct event ev[RING];
};

struct key {
    uint64_t hash; /* 0: free slot (a key hashing to 0 is kept as 1) */
    uint32_t fetched[ST_ADVISOR_MAX_TIERS];
    uint32_t requests;
    uint32_t hits[ST_ADVISOR_MAX_TIERS];
    uint32_t lifetime_ms; /* the last stored answer's, when the origin set it; 0: the tier's */
    uint8_t fetching;     /* tiers whose last fetch awaits its outcome (bit per tier) */
    bool no_stale;        /* the last stored answer was must-revalidate */
};

struct route {
    size_t n;
    int64_t epoch_ms;
    uint64_t requests;
    uint64_t hits[ST_ADVISOR_MAX_TIERS];
    uint64_t stored, tier_ttl, refetches, unchanged;
    struct key *table; /* owned */
};

/* A feed's events not yet replayed, during a drain. */
struct cursor {
    struct st_advisor_feed *f;
    uint32_t pos, end;
};

struct st_advisor {
    uv_mutex_t lock;
    size_t n_tiers;
    struct st_advisor_tier tiers[ST_ADVISOR_MAX_TIERS];
    struct st_advisor_feed *feeds; /* not owned: each is its creator's until destroyed */
    size_t n_feeds;
    struct cursor *cursors; /* owned: one per feed */
    /* a key of the slot is followed when its hash is at most this (read without the lock) */
    _Atomic uint64_t threshold[ST_MAX_ROUTE_SLOTS];
    struct route *routes[ST_MAX_ROUTE_SLOTS]; /* owned; allocated at a slot's first event */
};

struct st_advisor *st_advisor_create(void)
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

void st_advisor_destroy(struct st_advisor *a)
{
    if (!a)
        return;
    ST_CHECK(!a->feeds);
    for (size_t i = 0; i < ST_MAX_ROUTE_SLOTS; i++)
        route_free(a->routes[i]);
    free(a->cursors);
    uv_mutex_destroy(&a->lock);
    free(a);
}

void st_advisor_set_tiers(struct st_advisor *a, const struct st_advisor_tier *tiers, size_t n)
{
    if (n > ST_ADVISOR_MAX_TIERS)
        n = ST_ADVISOR_MAX_TIERS;
    uv_mutex_lock(&a->lock);
    if (n != a->n_tiers || (n && memcmp(tiers, a->tiers, n * sizeof(*tiers)) != 0)) {
        a->n_tiers = n;
        if (n)
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

static void route_restart(struct route *r, int64_t epoch_ms)
{
    struct key *table = r->table;
    memset(table, 0, TABLE * sizeof(*table));
    *r = (struct route){.epoch_ms = epoch_ms, .table = table};
}

/* The key's entry for a request at off under every tier: hit, stale hit (refresh) or fetch. */
static void replay_request(const struct st_advisor *a, struct route *r, struct key *k, uint32_t off,
                           bool forced)
{
    r->requests++;
    k->requests++;
    for (size_t i = 0; i < a->n_tiers; i++) {
        const struct st_advisor_tier *t = &a->tiers[i];
        int64_t ttl = k->lifetime_ms ? (int64_t)k->lifetime_ms : t->ttl_ms;
        if (!forced && k->fetched[i] != NEVER) {
            int64_t gap = (int64_t)off - (int64_t)k->fetched[i]; /* < 0: fetched "later" */
            if (gap < ttl || (!k->no_stale && gap < ttl + t->swr_ms)) {
                r->hits[i]++;
                k->hits[i]++;
                if (gap < ttl)
                    continue; /* fresh */
            }
        }
        k->fetched[i] = off; /* a miss fetches; a stale hit refreshes */
        k->fetching |= (uint8_t)(1u << i);
    }
}

/* What a fetch brought applies to the tiers whose fetch awaits it. */
static void replay_fetched(struct route *r, struct key *k, const struct event *ev)
{
    unsigned outcome = ev->flags;
    if (outcome & ST_ADVISOR_SERVABLE) {
        bool tier_ttl = (outcome & ST_ADVISOR_TIER_TTL) != 0;
        r->stored++;
        r->tier_ttl += tier_ttl;
        k->no_stale = (outcome & ST_ADVISOR_NO_STALE) != 0;
        k->lifetime_ms = tier_ttl ? 0 : (ev->lifetime_ms ? ev->lifetime_ms : 1);
    } else {
        for (size_t i = 0; i < ST_ADVISOR_MAX_TIERS; i++)
            if (k->fetching & (1u << i))
                k->fetched[i] = NEVER; /* nothing stored: the next request fetches */
    }
    k->fetching = 0;
    if (outcome & ST_ADVISOR_REFETCH) {
        r->refetches++;
        r->unchanged += (outcome & ST_ADVISOR_UNCHANGED) != 0;
    }
}

static void replay(struct st_advisor *a, const struct event *ev)
{
    uint64_t hash = ev->hash ? ev->hash : 1;
    if (ev->slot >= ST_MAX_ROUTE_SLOTS || a->n_tiers == 0 ||
        hash > atomic_load_explicit(&a->threshold[ev->slot], memory_order_relaxed))
        return;
    struct route *r = a->routes[ev->slot];
    if (!r) {
        if (ev->kind != EV_REQUEST)
            return;
        r = a->routes[ev->slot] = st_xcalloc(1, sizeof(*r));
        r->table = st_xcalloc(TABLE, sizeof(*r->table));
        r->epoch_ms = ev->t_ms;
    }
    int64_t off = ev->t_ms - r->epoch_ms;
    struct key *k = slot_of(r->table, hash);
    if (ev->kind == EV_FETCHED) {
        if (k->hash)
            replay_fetched(r, k, ev);
        return;
    }
    if (off >= (int64_t)NEVER || k->requests == UINT32_MAX) {
        route_restart(r, ev->t_ms);
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
    replay_request(a, r, k, (uint32_t)off, (ev->flags & ST_ADVISOR_FORCED) != 0);
}

/* Replay every feed's events, merged into one timeline. */
static void drain_all(struct st_advisor *a)
{
    size_t k = 0;
    for (struct st_advisor_feed *f = a->feeds; f; f = f->next) {
        uint32_t t = atomic_load_explicit(&f->tail, memory_order_relaxed);
        uint32_t h = atomic_load_explicit(&f->head, memory_order_acquire);
        if (t != h)
            a->cursors[k++] = (struct cursor){f, t, h};
    }
    while (k) {
        size_t best = 0;
        for (size_t i = 1; i < k; i++)
            if (a->cursors[i].f->ev[a->cursors[i].pos % RING].t_ms <
                a->cursors[best].f->ev[a->cursors[best].pos % RING].t_ms)
                best = i;
        struct cursor *c = &a->cursors[best];
        replay(a, &c->f->ev[c->pos % RING]);
        if (++c->pos == c->end) {
            atomic_store_explicit(&c->f->tail, c->end, memory_order_release);
            *c = a->cursors[--k];
        }
    }
}

/* --- feeds --- */

struct st_advisor_feed *st_advisor_feed_create(struct st_advisor *a)
{
    struct st_advisor_feed *f = st_xcalloc(1, sizeof(*f));
    f->a = a;
    uv_mutex_lock(&a->lock);
    f->next = a->feeds;
    a->feeds = f;
    a->n_feeds++;
    a->cursors = st_xrealloc(a->cursors, a->n_feeds * sizeof(*a->cursors));
    uv_mutex_unlock(&a->lock);
    return f;
}

void st_advisor_feed_destroy(struct st_advisor_feed *f)
{
    if (!f)
        return;
    struct st_advisor *a = f->a;
    uv_mutex_lock(&a->lock);
    drain_all(a);
    for (struct st_advisor_feed **p = &a->feeds; *p; p = &(*p)->next) {
        if (*p == f) {
            *p = f->next;
            a->n_feeds--;
            break;
        }
    }
    uv_mutex_unlock(&a->lock);
    free(f);
}

static void push(struct st_advisor_feed *f, const struct event *ev)
{
    struct st_advisor *a = f->a;
    uint32_t h = atomic_load_explicit(&f->head, memory_order_relaxed);
    uint32_t t = atomic_load_explicit(&f->tail, memory_order_acquire);
    if (h - t >= RING) { /* full: replay now, waiting for the lock if need be */
        uv_mutex_lock(&a->lock);
        drain_all(a);
        uv_mutex_unlock(&a->lock);
        t = h;
    }
    if (h == t) /* empty: this is the oldest event it holds */
        f->pending_since = ev->t_ms;
    f->ev[h % RING] = *ev;
    atomic_store_explicit(&f->head, h + 1, memory_order_release);
    if ((h + 1 - t >= RING / 2 || ev->t_ms - f->pending_since >= FLUSH_AFTER_MS) &&
        uv_mutex_trylock(&a->lock) == 0) {
        drain_all(a);
        uv_mutex_unlock(&a->lock);
    }
}

static bool followed(const struct st_advisor_feed *f, unsigned slot, uint64_t hash)
{
    /* The replay checks again, with hash 0 kept as 1. */
    return slot < ST_MAX_ROUTE_SLOTS &&
           hash <= atomic_load_explicit(&f->a->threshold[slot], memory_order_relaxed);
}

void st_advisor_observe(struct st_advisor_feed *f, unsigned slot, uint64_t hash, int64_t now_ms,
                        unsigned flags)
{
    if (followed(f, slot, hash))
        push(f, &(struct event){.hash = hash,
                                .t_ms = now_ms,
                                .slot = (uint16_t)slot,
                                .kind = EV_REQUEST,
                                .flags = (uint8_t)flags});
}

void st_advisor_fetched(struct st_advisor_feed *f, unsigned slot, uint64_t hash, int64_t now_ms,
                        unsigned outcome, int64_t lifetime_ms)
{
    uint32_t life = lifetime_ms <= 0            ? 0
                    : lifetime_ms >= UINT32_MAX ? UINT32_MAX - 1
                                                : (uint32_t)lifetime_ms;
    if (followed(f, slot, hash))
        push(f, &(struct event){.hash = hash,
                                .t_ms = now_ms,
                                .lifetime_ms = life,
                                .slot = (uint16_t)slot,
                                .kind = EV_FETCHED,
                                .flags = (uint8_t)outcome});
}

/* --- what it tells --- */

bool st_advisor_estimate(struct st_advisor *a, unsigned slot, struct st_advisor_estimate *out)
{
    memset(out, 0, sizeof(*out));
    if (slot >= ST_MAX_ROUTE_SLOTS)
        return false;
    uv_mutex_lock(&a->lock);
    drain_all(a);
    const struct route *r = a->routes[slot];
    bool seen = r && r->requests > 0;
    if (seen) {
        uint64_t thr = atomic_load_explicit(&a->threshold[slot], memory_order_relaxed);
        out->requests = r->requests;
        out->keys = r->n;
        out->sample_rate = thr == UINT64_MAX ? 1.0 : (double)thr / 18446744073709551616.0;
        out->stored = r->stored;
        out->tier_ttl = r->tier_ttl;
        out->refetches = r->refetches;
        out->unchanged = r->unchanged;
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

/* printf into buf; a sentence too long for it is cut at a whole UTF-8 character. */
static void say(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    if (n < 0) {
        buf[0] = '\0';
        return;
    }
    if ((size_t)n < cap)
        return;
    size_t len = cap - 1, lead = len;
    while (lead > 0 && ((unsigned char)buf[lead - 1] & 0xc0) == 0x80)
        lead--; /* back over continuation bytes */
    if (lead > 0 && ((unsigned char)buf[lead - 1] & 0x80)) {
        unsigned char c = (unsigned char)buf[lead - 1];
        size_t need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
        if (len - (lead - 1) < need)
            len = lead - 1;
    }
    buf[len] = '\0';
}

/* The next longer (dir > 0) or shorter tier than cur by TTL; SIZE_MAX if none (ties: the first). */
static size_t neighbour(const struct st_advisor_estimate *e, size_t cur, int dir)
{
    size_t best = SIZE_MAX;
    int64_t ttl = e->tiers[cur].ttl_ms;
    for (size_t i = 0; i < e->n_tiers; i++) {
        int64_t t = e->tiers[i].ttl_ms;
        if ((dir > 0 ? t > ttl : t < ttl) &&
            (best == SIZE_MAX || (dir > 0 ? t < e->tiers[best].ttl_ms : t > e->tiers[best].ttl_ms)))
            best = i;
    }
    return best;
}

bool st_advisor_suggest(const struct st_advisor_estimate *e, const char *const *names, size_t cur,
                        char *buf, size_t cap)
{
    buf[0] = '\0';
    if (cur >= e->n_tiers || e->requests < ST_ADVISOR_MIN_REQUESTS)
        return false;
    const char *now_name = names[cur];
    if (e->tier_ttl * 2 < e->stored) {
        say(buf, cap,
            "keep %s: the origin's Cache-Control set the lifetime of %d%% of the stored "
            "answers, so the tier's ttl hardly applies (ttl_source: tier makes it apply)",
            now_name, 100 - pct((double)e->tier_ttl / (double)e->stored));
        return false;
    }
    size_t longer = neighbour(e, cur, 1), shorter = neighbour(e, cur, -1);
    bool known = e->refetches >= ST_ADVISOR_MIN_REFETCHES;
    int same = known ? pct((double)e->unchanged / (double)e->refetches) : 0;
    int now = pct(e->hit_ratio[cur]);
    int up = longer != SIZE_MAX ? pct(e->hit_ratio[longer]) - now : 0;
    if (longer != SIZE_MAX && up >= 5 && known && same >= 90) {
        say(buf, cap,
            "%s \u2192 %s: %+d%% hit ratio (%d%% \u2192 %d%%), %d%% of refetches were "
            "unchanged",
            now_name, names[longer], up, now, now + up, same);
        return true;
    }
    if (shorter != SIZE_MAX && known && same <= 50) {
        int down = pct(e->hit_ratio[shorter]) - now;
        if (down >= -5) {
            say(buf, cap,
                "%s \u2192 %s: %+d%% hit ratio (%d%% \u2192 %d%%), %d%% of refetches "
                "had changed: fresher answers for little hit ratio",
                now_name, names[shorter], down, now, now + down, 100 - same);
            return true;
        }
    }
    if (longer == SIZE_MAX)
        say(buf, cap, "keep %s: no tier is longer", now_name);
    else if (up < 5)
        say(buf, cap, "keep %s: %s would change the hit ratio by only %+d%%", now_name,
            names[longer], up);
    else if (!known)
        say(buf, cap,
            "keep %s: %s would add %+d%% hit ratio, but too few refetches yet to tell "
            "how often the answers change",
            now_name, names[longer], up);
    else
        say(buf, cap, "keep %s: %s would add %+d%% hit ratio, but %d%% of refetches had changed",
            now_name, names[longer], up, 100 - same);
    return false;
}
