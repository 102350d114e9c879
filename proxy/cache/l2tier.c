/*
 * l2tier.c - the Redis tier's handles and the cross-instance fill (see
 * l2tier.h for what each operation does).
 *
 * A miss that leads its local flight becomes an op, owned by its handle
 * (in the handle's table from creation to free):
 *   READ    GET of the value sent
 *   LOCK    SET NX PX of the lock sent
 *   WAIT    registered for the fill notice, lock_wait timer running, one
 *           GET in flight to close the race with a notice already sent
 *   REREAD  the notice came: GET sent
 *   LEAD    the first waiter was woken to fetch; the op waits for
 *           flight_done to release the lock
 * Every state but LEAD ends in SHARED (an entry from L2 is in L1) or LEAD.
 * The op holds the exchange's flight waiter until it wakes it; the local
 * flight stays open (later misses park on it) until flight_done.
 *
 * Notices arrive on the bus's thread: the bus calls on_notice under its
 * registry lock, which queues the op on its handle and wakes the handle's
 * loop (uv_async). Lock order: bus registry, then the handle's queue lock.
 */
#include "cache/l2tier.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/rand.h"
#include "base/stats.h"
#include "cache/bus.h"
#include "cache/key.h"
#include "cache/l2wire.h"
#include "redis/redis.h"

#define OP_BUCKETS 64

/*
 * An index is a sorted set of cache keys scored by when each one's value expires (Redis's
 * clock, ms). Every add first drops the members whose values are gone, so the set holds
 * the live keys and those that expired since its last add, not every key ever stored under
 * it while traffic kept the set alive. A set left by a version that kept plain sets (SADD)
 * becomes a sorted set, its members given the new member's expiry.
 */
static const char index_script[] =
    "local t = redis.call('TIME') "
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "
    "local px = tonumber(ARGV[2]) "
    "if redis.call('TYPE', KEYS[1]).ok == 'set' then "
    "local old = redis.call('SMEMBERS', KEYS[1]) redis.call('DEL', KEYS[1]) "
    "for _, m in ipairs(old) do redis.call('ZADD', KEYS[1], now + px, m) end end "
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now) "
    "redis.call('ZADD', KEYS[1], 'GT', now + px, ARGV[1]) "
    "if redis.call('PTTL', KEYS[1]) < px then redis.call('PEXPIRE', KEYS[1], px) end return 1";

/* Every member of an index (also of a plain set an older version left). */
static const char members_script[] =
    "if redis.call('TYPE', KEYS[1]).ok == 'set' then return redis.call('SMEMBERS', KEYS[1]) end "
    "return redis.call('ZRANGE', KEYS[1], 0, -1)";

/* A fill, or a removal, leaves a queued write-behind value alone (KEYS[2]: its dirty marker). */
static const char fill_script[] =
    "if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end "
    "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1";
static const char unlink_script[] =
    "if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end "
    "return redis.call('UNLINK', KEYS[1])";

enum op_state { OP_READ, OP_LOCK, OP_WAIT, OP_REREAD, OP_LEAD };

struct handle;

struct op {
    struct op *next;        /* in the handle's table */
    struct op *queued_next; /* in the handle's noticed queue */
    struct handle *h;
    enum op_state state;
    uint64_t hash;
    char *key; /* owned */
    size_t key_len;
    struct st_flight_waiter *waiter; /* the exchange's, until woken */
    char token[48];
    bool locked;
    bool checking; /* WAIT: a GET is in flight */
    bool orphan;   /* freed while checking: the check's reply frees it */
    bool timer_live;
    uv_timer_t timer;
    struct st_bus_wait bw;
};

struct handle {
    struct st_cache_tier base; /* first: the tier pointer is the handle pointer */
    struct st_l2 *l2;
    struct handle *next_handle; /* in l2's list */
    uv_loop_t *loop;
    struct st_redis *redis; /* owned; NULL once detached */
    struct st_stats *stats;
    uv_async_t notify;
    uv_mutex_t qlock;
    struct op *queued; /* under qlock: noticed ops for this loop */
    bool detached;     /* under qlock */
    struct op *ops[OP_BUCKETS];
};

struct st_l2 {
    struct st_cache_tier *l1; /* owned */
    char *prefix;
    uint64_t lock_wait_ms, lease_ms, max_object;
    struct st_redis_opts ropts; /* strings borrowed from the config, copied by st_redis_create */
    char instance[ST_L2_INSTANCE_LEN + 1];
    _Atomic uint64_t token_seq;
    _Atomic int inval_inflight; /* L2 invalidations sent and not yet published */
    struct st_bus *bus;
    uv_loop_t *main_loop;
    struct handle *main;
    uv_mutex_t handles_lock;
    struct handle *handles;
    _Atomic int n_handles, n_up; /* handles, and those whose connection is up */
};

static const struct st_cache_tier_ops handle_ops;

static struct handle *handle_of(struct st_cache_tier *t)
{
    return (struct handle *)t;
}

static bool redis_up(const struct handle *h)
{
    return h->redis && st_redis_up(h->redis);
}

/* --- the op table --- */

static struct op **bucket(struct handle *h, uint64_t hash)
{
    return &h->ops[hash % OP_BUCKETS];
}

static struct op *op_new(struct handle *h, uint64_t hash, const char *key, size_t len,
                         struct st_flight_waiter *waiter)
{
    struct op *op = st_xcalloc(1, sizeof(*op));
    op->h = h;
    op->hash = hash;
    op->key = st_xstrndup(key, len);
    op->key_len = len;
    op->waiter = waiter;
    struct op **b = bucket(h, hash);
    op->next = *b;
    *b = op;
    return op;
}

static void on_op_timer_closed(uv_handle_t *t)
{
    struct op *op = t->data;
    if (op->checking) {
        op->orphan = true; /* its reply still names it */
        return;
    }
    free(op->key);
    free(op);
}

static void op_free(struct op *op)
{
    for (struct op **pp = bucket(op->h, op->hash); *pp; pp = &(*pp)->next) {
        if (*pp == op) {
            *pp = op->next;
            break;
        }
    }
    if (op->timer_live) {
        op->timer_live = false;
        uv_close((uv_handle_t *)&op->timer, on_op_timer_closed);
        return;
    }
    if (op->checking) {
        op->orphan = true; /* its reply still names it */
        return;
    }
    free(op->key);
    free(op);
}

static struct op *find_lead(struct handle *h, uint64_t hash, const char *key, size_t len)
{
    for (struct op *op = *bucket(h, hash); op; op = op->next)
        if (op->state == OP_LEAD && op->hash == hash && op->key_len == len &&
            memcmp(op->key, key, len) == 0)
            return op;
    return NULL;
}

static void wake(struct op *op, enum st_flight_result result)
{
    struct st_flight_waiter *w = op->waiter;
    op->waiter = NULL;
    if (!w)
        return;
    w->result = result;
    w->status = result == ST_FLIGHT_SHARED ? 1 : 0; /* the first asker */
    w->wake(w);
}

/* Fail over to the origin: the exchange fetches (and ends the flight). */
static void lead(struct op *op)
{
    if (op->timer_live)
        uv_timer_stop(&op->timer);
    op->state = OP_LEAD;
    if (op->h->redis) /* detaching: the detach loop ends the flight and wakes the waiter */
        wake(op, ST_FLIGHT_LEAD);
}

/* e came from L2: into L1, and every waiter looks it up there. */
static void shared(struct op *op, struct st_entry *e)
{
    struct st_l2 *l2 = op->h->l2;
    bool stored = st_cache_tier_insert(l2->l1, e);
    st_entry_unref(e);
    if (!stored) {
        lead(op);
        return;
    }
    ST_STAT_INC(op->h->stats, L2_HITS);
    if (op->timer_live)
        uv_timer_stop(&op->timer);
    st_cache_tier_flight_done(l2->l1, op->hash, op->key, op->key_len, ST_FLIGHT_SHARED, 0);
    wake(op, ST_FLIGHT_SHARED);
    op_free(op);
}

/* --- reading L2 --- */

static int cmd(struct handle *h, st_redis_reply_cb cb, void *arg, int argc, const char **argv,
                const size_t *lens)
{
    return h->redis ? st_redis_command(h->redis, cb, arg, argc, argv, lens) : -EAGAIN;
}

static bool fresh(const struct st_entry *e, int64_t now)
{
    return st_entry_age_ms(e, now) < e->lifetime_ms && !e->always_revalidate;
}

/*
 * What a GET reply holds for op: a fresh entry of op's key (reference), or
 * NULL. A stale one goes into L1 for revalidation and stale-if-error.
 */
static struct st_entry *value_of(struct op *op, const redisReply *reply, bool *failed)
{
    struct handle *h = op->h;
    const char *p;
    size_t len;
    *failed = false;
    switch (st_l2_reply_get(reply, &p, &len)) {
    case ST_L2_FAILED:
        ST_STAT_INC(h->stats, L2_ERRORS);
        *failed = true;
        return NULL;
    case ST_L2_NONE:
        ST_STAT_INC(h->stats, L2_MISSES);
        return NULL;
    case ST_L2_GOT:
        break;
    }
    struct st_entry *e;
    if (st_entry_decode(p, len, &e) < 0 || st_entry_key_len(e) != op->key_len ||
        memcmp(st_entry_key(e), op->key, op->key_len) != 0) {
        ST_STAT_INC(h->stats, L2_CORRUPT);
        ST_STAT_INC(h->stats, L2_MISSES);
        st_entry_unref(e);
        return NULL;
    }
    if (fresh(e, st_clock_wall_ms()))
        return e;
    ST_STAT_INC(h->stats, L2_MISSES);
    st_cache_tier_insert(h->l2->l1, e);
    st_entry_unref(e);
    return NULL;
}

static int send_get(struct op *op, st_redis_reply_cb cb)
{
    struct st_sb k;
    st_sb_init(&k, 64);
    st_l2_key(&k, op->h->l2->prefix, op->hash, ST_L2_VALUE);
    const char *argv[] = {"GET", k.p};
    size_t lens[] = {3, k.len};
    int rc = cmd(op->h, cb, op, 2, argv, lens);
    st_sb_finish(&k);
    return rc;
}

static void try_lock(struct op *op);

static void on_read(struct st_redis *r, const redisReply *reply, void *arg)
{
    (void)r;
    struct op *op = arg;
    bool failed;
    struct st_entry *e = value_of(op, reply, &failed);
    if (e)
        shared(op, e);
    else if (failed)
        lead(op);
    else
        try_lock(op);
}

/* --- the lock --- */

static void on_wait_timeout(uv_timer_t *t)
{
    struct op *op = t->data;
    if (op->state != OP_WAIT || !st_bus_wait_remove(op->h->l2->bus, &op->bw))
        return; /* the notice is on its way */
    ST_STAT_INC(op->h->stats, LOCK_FAIL_OPEN);
    lead(op);
}

static void on_check(struct st_redis *r, const redisReply *reply, void *arg)
{
    (void)r;
    struct op *op = arg;
    op->checking = false;
    if (op->orphan) {
        free(op->key);
        free(op);
        return;
    }
    if (op->state != OP_WAIT)
        return; /* the notice came first: the re-read decides */
    bool failed;
    struct st_entry *e = value_of(op, reply, &failed);
    if (!e)
        return; /* keep waiting for the notice */
    if (!st_bus_wait_remove(op->h->l2->bus, &op->bw)) {
        st_entry_unref(e); /* noticed meanwhile: the re-read will find it */
        return;
    }
    shared(op, e);
}

static void on_notice(struct st_bus_wait *w);

static void wait_for_fill(struct op *op)
{
    struct handle *h = op->h;
    op->state = OP_WAIT;
    ST_STAT_INC(h->stats, LOCK_WAITS);
    if (!op->timer_live) {
        uv_timer_init(h->loop, &op->timer);
        op->timer.data = op;
        op->timer_live = true;
    }
    uv_timer_start(&op->timer, on_wait_timeout, h->l2->lock_wait_ms, 0);
    op->bw.hash = op->hash;
    op->bw.key = op->key;
    op->bw.key_len = op->key_len;
    op->bw.on_notice = on_notice;
    st_bus_wait_add(h->l2->bus, &op->bw);
    /* The holder may have finished between our GET and our SET: look once more. */
    op->checking = send_get(op, on_check) == 0;
}

static void on_lock(struct st_redis *r, const redisReply *reply, void *arg)
{
    (void)r;
    struct op *op = arg;
    switch (st_l2_reply_lock(reply)) {
    case ST_L2_LOCK_WON:
        op->locked = true;
        ST_STAT_INC(op->h->stats, LOCK_WINS);
        lead(op);
        return;
    case ST_L2_LOCK_HELD:
        if (st_bus_state(op->h->l2->bus) != ST_BUS_UP) {
            /* No fill notice can reach us: waiting would only cost lock_wait. */
            ST_STAT_INC(op->h->stats, LOCK_FAIL_OPEN);
            lead(op);
            return;
        }
        wait_for_fill(op);
        return;
    case ST_L2_LOCK_FAILED:
        ST_STAT_INC(op->h->stats, L2_ERRORS);
        ST_STAT_INC(op->h->stats, LOCK_FAIL_OPEN);
        lead(op);
        return;
    }
}

static void try_lock(struct op *op)
{
    struct st_l2 *l2 = op->h->l2;
    op->state = OP_LOCK;
    snprintf(op->token, sizeof(op->token), "%s:%llu", l2->instance,
             (unsigned long long)atomic_fetch_add(&l2->token_seq, 1));
    char px[24];
    snprintf(px, sizeof(px), "%llu", (unsigned long long)l2->lease_ms);
    struct st_sb k;
    st_sb_init(&k, 64);
    st_l2_key(&k, l2->prefix, op->hash, ST_L2_LOCK);
    const char *argv[] = {"SET", k.p, op->token, "NX", "PX", px};
    size_t lens[] = {3, k.len, strlen(op->token), 2, 2, strlen(px)};
    int rc = cmd(op->h, on_lock, op, 6, argv, lens);
    st_sb_finish(&k);
    if (rc < 0)
        lead(op);
}

static void on_reread(struct st_redis *r, const redisReply *reply, void *arg)
{
    (void)r;
    struct op *op = arg;
    bool failed;
    struct st_entry *e = value_of(op, reply, &failed);
    if (e) {
        shared(op, e);
        return;
    }
    ST_STAT_INC(op->h->stats, LOCK_FAIL_OPEN);
    lead(op);
}

/* On the bus's thread, under its registry lock. */
static void on_notice(struct st_bus_wait *w)
{
    struct op *op = (struct op *)((char *)w - offsetof(struct op, bw));
    struct handle *h = op->h;
    uv_mutex_lock(&h->qlock);
    if (!h->detached) {
        op->queued_next = h->queued;
        h->queued = op;
        uv_async_send(&h->notify);
    }
    uv_mutex_unlock(&h->qlock);
}

static void on_notify(uv_async_t *a)
{
    struct handle *h = a->data;
    uv_mutex_lock(&h->qlock);
    struct op *q = h->queued;
    h->queued = NULL;
    uv_mutex_unlock(&h->qlock);
    while (q) {
        struct op *op = q;
        q = q->queued_next;
        uv_timer_stop(&op->timer);
        op->state = OP_REREAD;
        if (send_get(op, on_reread) < 0) {
            ST_STAT_INC(h->stats, LOCK_FAIL_OPEN);
            lead(op);
        }
    }
}

/* --- the tier operations --- */

static struct st_entry *lookup(struct st_cache_tier *t, uint64_t hash, const char *key,
                               size_t key_len, const struct st_headers *req)
{
    struct handle *h = handle_of(t);
    struct st_entry *e = st_cache_tier_lookup(h->l2->l1, hash, key, key_len, req);
    if (e && !st_bus_servable(h->l2->bus, e->stored_ms))
        return NULL; /* cut off from the bus for too long: it may have been invalidated */
    return e;
}

static void on_written(struct st_redis *r, const redisReply *reply, void *arg)
{
    (void)r;
    struct handle *h = arg;
    if (!reply || reply->type == REDIS_REPLY_ERROR)
        ST_STAT_INC(h->stats, L2_ERRORS);
}

static void unlink_value(struct handle *h, const char *key, size_t len);

/* A value SET in flight: its key, should the SET fail. */
struct stored {
    struct handle *h;
    size_t len;
    char key[]; /* the cache key */
};

/*
 * The value's SET: counted once Redis has it (tests and operators read
 * "writes" as stored). A SET that failed must not leave the value it was
 * to replace (a write-through's KEY invalidation counts on it): unlink it.
 */
static void on_stored(struct st_redis *r, const redisReply *reply, void *arg)
{
    (void)r;
    struct stored *st = arg;
    struct handle *h = st->h;
    if (!reply || reply->type == REDIS_REPLY_ERROR) {
        ST_STAT_INC(h->stats, L2_ERRORS);
        unlink_value(h, st->key, st->len);
    } else {
        ST_STAT_INC(h->stats, L2_WRITES);
    }
    free(st);
}

static void index_in(struct handle *h, char kind, const char *s, size_t len, const char *key,
                     size_t key_len, const char *px)
{
    struct st_sb k;
    st_sb_init(&k, 64);
    st_l2_set_key(&k, h->l2->prefix, kind, s, len);
    const char *argv[] = {"EVAL", index_script, "1", k.p, key, px};
    size_t lens[] = {4, sizeof(index_script) - 1, 1, k.len, key_len, strlen(px)};
    cmd(h, on_written, h, 6, argv, lens);
    st_sb_finish(&k);
}

/* The index sets an L2 value is found by: its path, its path prefixes, its tags. */
static void index_entry(struct handle *h, const struct st_entry *e, const char *px)
{
    const char *key = st_entry_key(e);
    size_t klen = st_entry_key_len(e), plen = st_l2_key_path_len(key, klen);
    index_in(h, 'p', key, plen, key, klen, px);
    size_t pre[ST_L2_MAX_DEPTH];
    size_t n = st_l2_path_prefixes(key, plen, pre);
    for (size_t i = 0; i < n; i++)
        index_in(h, 'x', key, pre[i], key, klen, px);
    const char *tags = st_entry_tags(e);
    for (const char *p = tags; p && *p;) {
        size_t tl = strcspn(p, " ");
        if (tl)
            index_in(h, 't', p, tl, key, klen, px);
        p += tl + strspn(p + tl, " ");
    }
}

static void write_l2(struct handle *h, const struct st_entry *e)
{
    if (!redis_up(h))
        return;
    if (st_entry_body_len(e) > h->l2->max_object) {
        /* Too large for L2: what L2 holds for the key is older, and must go. */
        unlink_value(h, st_entry_key(e), st_entry_key_len(e));
        return;
    }
    int64_t now = st_clock_wall_ms();
    int64_t age = st_entry_age_ms(e, now);
    int64_t windows = e->no_stale ? 0 : (e->swr_ms > e->sie_ms ? e->swr_ms : e->sie_ms);
    int64_t ttl = e->lifetime_ms - age + windows;
    if (ttl <= 0) {
        unlink_value(h, st_entry_key(e), st_entry_key_len(e));
        return;
    }
    char px[24];
    snprintf(px, sizeof(px), "%lld", (long long)ttl);
    struct st_sb k, d, v;
    uint64_t hash = st_cache_tier_hash(st_entry_key(e), st_entry_key_len(e));
    st_sb_init(&k, 64);
    st_sb_init(&d, 64);
    st_sb_init(&v, st_entry_body_len(e) + 512);
    st_l2_key(&k, h->l2->prefix, hash, ST_L2_VALUE);
    st_l2_key(&d, h->l2->prefix, hash, ST_L2_DIRTY);
    st_entry_encode(e, &v);
    const char *argv[] = {"EVAL", fill_script, "2", k.p, d.p, v.p, px};
    size_t lens[] = {4, sizeof(fill_script) - 1, 1, k.len, d.len, v.len, strlen(px)};
    struct stored *st = st_xmalloc(sizeof(*st) + st_entry_key_len(e));
    st->h = h;
    st->len = st_entry_key_len(e);
    memcpy(st->key, st_entry_key(e), st->len);
    if (cmd(h, on_stored, st, 7, argv, lens) == 0)
        index_entry(h, e, px);
    else
        free(st);
    st_sb_finish(&k);
    st_sb_finish(&d);
    st_sb_finish(&v);
}

static bool insert(struct st_cache_tier *t, struct st_entry *e)
{
    struct handle *h = handle_of(t);
    bool ok = st_cache_tier_insert(h->l2->l1, e);
    if (!e->dirty) /* a dirty value's writer put it in L2 with its queue entry */
        write_l2(h, e);
    return ok;
}

static size_t remove_key(struct st_cache_tier *t, const char *key, size_t len)
{
    return st_cache_tier_remove_key(handle_of(t)->l2->l1, key, len);
}

static size_t remove_prefix(struct st_cache_tier *t, const char *prefix, size_t len)
{
    return st_cache_tier_remove_prefix(handle_of(t)->l2->l1, prefix, len);
}

static size_t remove_tag(struct st_cache_tier *t, const char *tag, size_t len)
{
    return st_cache_tier_remove_tag(handle_of(t)->l2->l1, tag, len);
}

static void expire(struct st_cache_tier *t, struct st_entry *e)
{
    st_cache_tier_expire(handle_of(t)->l2->l1, e);
}

static enum st_flight_role flight_join(struct st_cache_tier *t, uint64_t hash, const char *key,
                                       size_t key_len, struct st_flight_waiter *waiter)
{
    struct handle *h = handle_of(t);
    struct st_l2 *l2 = h->l2;
    if (!waiter || !redis_up(h)) {
        if (waiter && h->redis)
            ST_STAT_INC(h->stats, L2_SKIPPED);
        return st_cache_tier_flight_join(l2->l1, hash, key, key_len, waiter);
    }
    if (st_cache_tier_flight_join(l2->l1, hash, key, key_len, waiter) == ST_FLIGHT_PARKED)
        return ST_FLIGHT_PARKED;
    /* We lead the local flight for the exchange; it waits while L2 and the lock decide. */
    struct op *op = op_new(h, hash, key, key_len, waiter);
    if (atomic_load(&l2->inval_inflight) > 0) {
        try_lock(op); /* our own invalidation may not have reached L2 yet */
    } else {
        op->state = OP_READ;
        if (send_get(op, on_read) < 0)
            lead(op);
    }
    return ST_FLIGHT_PARKED;
}

static void flight_done(struct st_cache_tier *t, uint64_t hash, const char *key, size_t key_len,
                        enum st_flight_result result, int status)
{
    struct handle *h = handle_of(t);
    struct st_l2 *l2 = h->l2;
    struct op *op = find_lead(h, hash, key, key_len);
    st_cache_tier_flight_done(l2->l1, hash, key, key_len, result, status);
    if (!op)
        return;
    if (op->locked && h->redis) {
        struct st_sb k;
        st_sb_init(&k, 64);
        st_l2_key(&k, l2->prefix, hash, ST_L2_LOCK);
        st_bus_release(l2->bus, h->redis, k.p, k.len, op->token, hash, key, key_len);
        st_sb_finish(&k);
    }
    op_free(op);
}

/* Up only while every thread's connection is: a worker that cannot reach Redis counts. */
static void tier_stats(struct st_cache_tier *t, struct st_cache_tier_stats *out)
{
    struct handle *h = handle_of(t);
    st_cache_tier_stats(h->l2->l1, out);
    out->l2 = atomic_load(&h->l2->n_up) == atomic_load(&h->l2->n_handles) ? ST_SHARED_UP
                                                                        : ST_SHARED_DOWN;
    out->bus = st_bus_state(h->l2->bus);
}

/* --- shared invalidation --- */

struct inval {
    struct handle *h;
    bool retried; /* reading the index failed once and was sent again */
    enum st_inval_kind kind;
    char *value; /* owned */
    size_t len;
};

static void inval_free(struct inval *iv)
{
    atomic_fetch_sub(&iv->h->l2->inval_inflight, 1);
    free(iv->value);
    free(iv);
}

static void on_published(struct st_redis *r, const redisReply *reply, void *arg)
{
    (void)r;
    struct inval *iv = arg;
    if (!reply || reply->type == REDIS_REPLY_ERROR)
        ST_STAT_INC(iv->h->stats, L2_ERRORS);
    inval_free(iv);
}

/* Does cache key m (an index set member) fall under the invalidation? */
static bool inval_matches(const struct inval *iv, const char *m, size_t len)
{
    switch (iv->kind) {
    case ST_INVAL_URI:
        if (memchr(iv->value, '?', iv->len))
            return len > iv->len && memcmp(m, iv->value, iv->len) == 0 && m[iv->len] == ST_KEY_SEP;
        return st_l2_key_path_len(m, len) == iv->len && memcmp(m, iv->value, iv->len) == 0;
    case ST_INVAL_PREFIX:
        return len >= iv->len && memcmp(m, iv->value, iv->len) == 0;
    case ST_INVAL_TAG:
        return true;
    case ST_INVAL_KEY:
        return len == iv->len && memcmp(m, iv->value, len) == 0;
    }
    return false;
}

static void unlink_value(struct handle *h, const char *key, size_t len)
{
    struct st_sb k, d;
    uint64_t hash = st_cache_tier_hash(key, len);
    st_sb_init(&k, 64);
    st_sb_init(&d, 64);
    st_l2_key(&k, h->l2->prefix, hash, ST_L2_VALUE);
    st_l2_key(&d, h->l2->prefix, hash, ST_L2_DIRTY);
    const char *argv[] = {"EVAL", unlink_script, "2", k.p, d.p};
    size_t lens[] = {4, sizeof(unlink_script) - 1, 1, k.len, d.len};
    cmd(h, on_written, h, 5, argv, lens);
    st_sb_finish(&k);
    st_sb_finish(&d);
}

static int send_members(struct inval *iv);

static void on_members(struct st_redis *r, const redisReply *reply, void *arg)
{
    (void)r;
    struct inval *iv = arg;
    struct handle *h = iv->h;
    if (reply && reply->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < reply->elements; i++) {
            const redisReply *m = reply->element[i];
            if (m->type == REDIS_REPLY_STRING && inval_matches(iv, m->str, m->len))
                unlink_value(h, m->str, m->len);
        }
    } else if (iv->kind != ST_INVAL_KEY) {
        ST_STAT_INC(h->stats, L2_ERRORS);
        if (!iv->retried) {
            iv->retried = true; /* once more: publishing over a stale L2 would refill the others */
            if (send_members(iv) == 0)
                return;
        }
    }
    /* After the deletions, on the same connection: whoever hears of it finds L2 clean. */
    if (!h->redis || st_bus_publish(h->l2->bus, h->redis, iv->kind, iv->value, iv->len,
                                    on_published, iv) < 0) {
        ST_STAT_INC(h->stats, L2_ERRORS);
        inval_free(iv);
    }
}

/* The index set that holds every key an invalidation can match. */
static void inval_set(const struct inval *iv, struct st_sb *k)
{
    const char *prefix = iv->h->l2->prefix;
    if (iv->kind == ST_INVAL_TAG) {
        st_l2_set_key(k, prefix, 't', iv->value, iv->len);
    } else if (iv->kind == ST_INVAL_URI) {
        st_l2_set_key(k, prefix, 'p', iv->value, st_l2_key_path_len(iv->value, iv->len));
    } else {
        /*
         * The deepest indexed '/'-prefix of it (or the root): every key under the
         * prefix is in that set; the members are filtered by the prefix itself.
         */
        size_t pre[ST_L2_MAX_DEPTH];
        size_t n = st_l2_path_prefixes(iv->value, iv->len, pre);
        if (n)
            st_l2_set_key(k, prefix, 'x', iv->value, pre[n - 1]);
        else
            st_l2_set_key(k, prefix, 'x', "/", 1);
    }
}

static int send_members(struct inval *iv)
{
    struct st_sb k;
    st_sb_init(&k, 64);
    inval_set(iv, &k);
    const char *argv[] = {"EVAL", members_script, "1", k.p};
    size_t lens[] = {4, sizeof(members_script) - 1, 1, k.len};
    int rc = cmd(iv->h, on_members, iv, 4, argv, lens);
    st_sb_finish(&k);
    return rc;
}

static int invalidate_shared(struct st_cache_tier *t, enum st_inval_kind kind, const char *value,
                             size_t len)
{
    struct handle *h = handle_of(t);
    if (!redis_up(h))
        return -EAGAIN;
    struct inval *iv = st_xcalloc(1, sizeof(*iv));
    iv->h = h;
    iv->kind = kind;
    iv->value = st_xstrndup(value, len);
    iv->len = len;
    atomic_fetch_add(&h->l2->inval_inflight, 1);
    if (kind == ST_INVAL_KEY) {
        /* The writer replaced the value itself (its SET went first on this connection). */
        on_members(h->redis, NULL, iv);
        return 1;
    }
    if (send_members(iv) < 0) {
        inval_free(iv);
        return -EAGAIN;
    }
    return 1;
}

/* --- handles --- */

static void on_notify_closed(uv_handle_t *a)
{
    (void)a;
}

static void detach(struct st_cache_tier *t)
{
    struct handle *h = handle_of(t);
    uv_mutex_lock(&h->qlock);
    bool already = h->detached;
    h->detached = true;
    struct op *q = h->queued;
    h->queued = NULL;
    uv_mutex_unlock(&h->qlock);
    if (already)
        return;
    (void)q; /* noticed ops are in the table too, handled below */
    /* Commands in flight fail now: their ops wake their exchanges to fetch. */
    struct st_redis *r = h->redis;
    h->redis = NULL;
    if (st_redis_up(r))
        atomic_fetch_sub(&h->l2->n_up, 1);
    atomic_fetch_sub(&h->l2->n_handles, 1);
    st_redis_destroy(r);
    for (unsigned i = 0; i < OP_BUCKETS; i++) {
        while (h->ops[i]) {
            struct op *op = h->ops[i];
            if (op->state == OP_WAIT)
                st_bus_wait_remove(h->l2->bus, &op->bw);
            st_cache_tier_flight_done(h->l2->l1, op->hash, op->key, op->key_len,
                                      ST_FLIGHT_UNCACHEABLE, 0);
            wake(op, ST_FLIGHT_UNCACHEABLE);
            op_free(op);
        }
    }
    uv_close((uv_handle_t *)&h->notify, on_notify_closed);
}

static struct st_redis *handle_redis(struct st_cache_tier *t)
{
    return handle_of(t)->redis;
}

static const char *handle_instance(struct st_cache_tier *t)
{
    return handle_of(t)->l2->instance;
}

static void destroy_handle(struct st_cache_tier *t)
{
    (void)t; /* handles are freed with their st_l2 */
}

static const struct st_cache_tier_ops handle_ops = {
    .lookup = lookup,
    .insert = insert,
    .remove_key = remove_key,
    .remove_prefix = remove_prefix,
    .remove_tag = remove_tag,
    .expire = expire,
    .flight_join = flight_join,
    .flight_done = flight_done,
    .stats = tier_stats,
    .invalidate_shared = invalidate_shared,
    .detach = detach,
    .redis = handle_redis,
    .instance = handle_instance,
    .destroy = destroy_handle,
};

static void on_handle_state(struct st_redis *r, bool up, void *arg)
{
    (void)r;
    struct handle *h = arg;
    atomic_fetch_add(&h->l2->n_up, up ? 1 : -1);
}

struct st_cache_tier *st_l2_handle(struct st_l2 *l2, uv_loop_t *loop, struct st_stats *stats)
{
    struct handle *h = st_xcalloc(1, sizeof(*h));
    h->base.ops = &handle_ops;
    h->base.max_object = l2->l1->max_object;
    h->l2 = l2;
    h->loop = loop;
    h->stats = stats;
    uv_mutex_init(&h->qlock);
    uv_async_init(loop, &h->notify, on_notify);
    h->notify.data = h;
    struct st_redis_opts o = l2->ropts;
    o.seed = (uint64_t)(uintptr_t)h ^ uv_hrtime();
    o.on_state = on_handle_state;
    o.arg = h;
    atomic_fetch_add(&l2->n_handles, 1);
    h->redis = st_redis_create(loop, &o);
    uv_mutex_lock(&l2->handles_lock);
    h->next_handle = l2->handles;
    l2->handles = h;
    uv_mutex_unlock(&l2->handles_lock);
    return &h->base;
}

struct st_l2 *st_l2_create(uv_loop_t *main_loop, struct st_cache_tier *l1,
                           const struct st_l2_opts *o)
{
    const struct st_redis_cfg *rc = o->redis;
    struct st_l2 *l2 = st_xcalloc(1, sizeof(*l2));
    l2->l1 = l1;
    l2->prefix = st_xstrdup(rc->prefix);
    l2->lock_wait_ms = rc->lock_wait_ms;
    l2->lease_ms = o->lease_ms ? o->lease_ms : 1000;
    l2->max_object = rc->max_object;
    l2->main_loop = main_loop;
    l2->ropts = (struct st_redis_opts){
        .name = "redis",
        .host = rc->unix_path ? NULL : rc->host,
        .port = rc->port,
        .unix_path = rc->unix_path,
        .password = rc->password,
        .db = rc->db,
        .timeout_ms = rc->timeout_ms,
    };
    uint64_t rng[2] = {(uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32), uv_hrtime() | 1};
    snprintf(l2->instance, sizeof(l2->instance), "%016llx", (unsigned long long)st_rand64(rng));
    uv_mutex_init(&l2->handles_lock);
    l2->main = handle_of(st_l2_handle(l2, main_loop, o->main_stats));
    struct st_bus_opts bo = {
        .redis = &l2->ropts,
        .prefix = l2->prefix,
        .instance = l2->instance,
        .partition_ttl_ms = rc->partition_ttl_ms,
        .l1 = l1,
        .stats = o->main_stats,
    };
    l2->bus = st_bus_create(main_loop, &bo, l2->main->redis);
    st_log(ST_LOG_INFO, "redis", NULL, "Redis tier %s (instance %s, prefix \"%s\")", rc->url,
           l2->instance, l2->prefix);
    return l2;
}

struct st_cache_tier *st_l2_main(struct st_l2 *l2)
{
    return &l2->main->base;
}

const char *st_l2_instance(const struct st_l2 *l2)
{
    return l2->instance;
}

void st_l2_close(struct st_l2 *l2)
{
    if (!l2)
        return;
    detach(&l2->main->base); /* first: the bus's catch-up steps run on this connection */
    st_bus_close(l2->bus);
}

void st_l2_destroy(struct st_l2 *l2)
{
    if (!l2)
        return;
    for (struct handle *h = l2->handles, *next; h; h = next) {
        next = h->next_handle;
        uv_mutex_destroy(&h->qlock);
        free(h);
    }
    uv_mutex_destroy(&l2->handles_lock);
    st_bus_destroy(l2->bus);
    st_cache_tier_destroy(l2->l1);
    free(l2->prefix);
    free(l2);
}
