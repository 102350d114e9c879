/*
 * bus.c - subscriber, stream catch-up, partition state and fill notices.
 *
 * The catch-up is a small chain of commands on the main loop's command
 * connection, started each time the subscription comes up:
 *   INFO server      -> run_id: first sight records it; another one means
 *                       Redis restarted (its stream and our place in it are
 *                       gone): drop L1, start from the stream's end
 *   XINFO STREAM     -> max-deleted-entry-id newer than our last id: an
 *                       invalidation we never saw was trimmed: drop L1
 *   XRANGE (last +   -> apply each entry from another instance, pages of
 *                       REPLAY_PAGE, advancing the last id
 * A failed step (Redis went again) retries while the subscription is up.
 *
 * State: `state` and `lost_ms` are atomics read by every worker; the rest
 * belongs to the main loop. The wait registry has its own mutex.
 */
#include "cache/bus.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/stats.h"
#include "cache/invalidate.h"
#include "cache/l2wire.h"

#define WAIT_BUCKETS 256
#define REPLAY_PAGE 1000
#define REPLAY_PAGE_S "1000"
#define STREAM_MAX "100000"
#define CATCHUP_RETRY_MS 200

static const char publish_script[] =
    "local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'm', ARGV[2]) "
    "redis.call('PUBLISH', ARGV[3], 'I ' .. id .. ' ' .. ARGV[2]) return id";
static const char release_script[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end "
    "redis.call('PUBLISH', ARGV[2], ARGV[3]) return 1";

struct st_bus {
    uv_loop_t *loop;
    struct st_redis *sub; /* owned */
    struct st_redis *cmd; /* not owned */
    char *prefix, *channel, *stream;
    char instance[ST_L2_INSTANCE_LEN + 1];
    uint64_t partition_ttl_ms;
    struct st_cache_tier *l1;
    struct st_stats *stats;
    _Atomic int state;        /* enum st_bus_state */
    _Atomic int64_t lost_ms;  /* wall ms since which L1 is not trusted; 0: trusted */
    struct st_l2_stream_id last; /* the newest invalidation applied (main loop) */
    char run_id[41];             /* "" until first seen */
    bool synced;                 /* has caught up once */
    unsigned catchup_gen;        /* bumps on every (re)subscription: stale chains stop */
    uv_timer_t retry;
    bool closed;
    uv_mutex_t wait_lock;
    struct st_bus_wait *waits[WAIT_BUCKETS];
};

/* --- state --- */

bool st_bus_servable(const struct st_bus *b, int64_t stored_ms)
{
    int64_t lost = atomic_load_explicit(&b->lost_ms, memory_order_relaxed);
    if (!lost)
        return true;
    int64_t from = stored_ms > lost ? stored_ms : lost;
    return st_clock_wall_ms() < from + (int64_t)b->partition_ttl_ms;
}

enum st_bus_state st_bus_state(const struct st_bus *b)
{
    return (enum st_bus_state)atomic_load_explicit(&b->state, memory_order_relaxed);
}

static void trusted(struct st_bus *b)
{
    b->synced = true;
    atomic_store(&b->state, ST_BUS_UP);
    atomic_store(&b->lost_ms, 0);
    st_log(ST_LOG_INFO, "redis bus", NULL, "invalidation bus up (last id %llu-%llu)",
           (unsigned long long)b->last.ms, (unsigned long long)b->last.seq);
}

static void flush_l1(struct st_bus *b, const char *why)
{
    size_t n = st_cache_tier_remove_prefix(b->l1, "", 0);
    ST_STAT_INC(b->stats, BUS_FLUSHES);
    st_log(ST_LOG_WARN, "redis bus", NULL, "%s: dropped all %zu L1 entries", why, n);
}

/* --- applying --- */

static void apply(struct st_bus *b, const struct st_l2_msg *m)
{
    if (memcmp(m->instance, b->instance, ST_L2_INSTANCE_LEN) == 0)
        return; /* ours: applied when it was made */
    size_t n = st_invalidate_apply(b->l1, m->kind, m->value, m->value_len);
    ST_STAT_INC(b->stats, INVAL_RECEIVED);
    st_stat_add(b->stats, ST_STAT_INVAL_ENTRIES, n);
}

/* Wake the waits for m's key, under the registry lock (see st_bus_wait_remove). */
static void notice(struct st_bus *b, const struct st_l2_msg *m)
{
    uv_mutex_lock(&b->wait_lock);
    struct st_bus_wait **pp = &b->waits[m->hash % WAIT_BUCKETS];
    while (*pp) {
        struct st_bus_wait *w = *pp;
        if (w->hash == m->hash && w->key_len == m->value_len &&
            memcmp(w->key, m->value, w->key_len) == 0) {
            *pp = w->next;
            w->on_notice(w);
        } else {
            pp = &w->next;
        }
    }
    uv_mutex_unlock(&b->wait_lock);
}

static void on_message(struct st_redis *r, const char *data, size_t len, void *arg)
{
    (void)r;
    struct st_bus *b = arg;
    struct st_l2_msg m;
    if (!st_l2_msg_parse(data, len, &m)) {
        st_log(ST_LOG_WARN, "redis bus", NULL, "ignored a message that is not strata's (%zu bytes)",
               len);
        return;
    }
    if (m.type == 'F') {
        notice(b, &m);
        return;
    }
    apply(b, &m);
    /* While catching up, the replay owns `last`: it reads from where the loss began. */
    if (st_bus_state(b) == ST_BUS_UP && st_l2_stream_id_cmp(m.id, b->last) > 0)
        b->last = m.id;
}

/* --- catch-up --- */

struct step {
    struct st_bus *b;
    unsigned gen;
};

static void catch_up(struct st_bus *b);

static void on_retry(uv_timer_t *t)
{
    catch_up(t->data);
}

static struct step *step_new(struct st_bus *b)
{
    struct step *s = st_xmalloc(sizeof(*s));
    s->b = b;
    s->gen = b->catchup_gen;
    return s;
}

/* The step's bus, or NULL when the chain is stale (resubscribed, or down again). */
static struct st_bus *step_take(struct step *s)
{
    struct st_bus *b = s->b;
    bool live = s->gen == b->catchup_gen && st_bus_state(b) == ST_BUS_CATCHING_UP;
    free(s);
    return live ? b : NULL;
}

static void step_failed(struct st_bus *b)
{
    if (!b->closed)
        uv_timer_start(&b->retry, on_retry, CATCHUP_RETRY_MS, 0);
}

static void send_step(struct st_bus *b, st_redis_reply_cb cb, int argc, const char **argv)
{
    struct step *s = step_new(b);
    if (st_redis_command(b->cmd, cb, s, argc, argv, NULL) < 0) {
        free(s);
        step_failed(b);
    }
}

static void replay_from_last(struct st_bus *b);

static void on_xrange(struct st_redis *r, const redisReply *reply, void *arg)
{
    (void)r;
    struct st_bus *b = step_take(arg);
    if (!b)
        return;
    if (!reply || reply->type != REDIS_REPLY_ARRAY) {
        step_failed(b);
        return;
    }
    for (size_t i = 0; i < reply->elements; i++) {
        struct st_l2_msg m;
        const char *body;
        size_t len;
        struct st_l2_stream_id id;
        const redisReply *e = reply->element[i];
        if (!st_l2_reply_stream_entry(e, &id, &body, &len)) {
            /* Not ours to apply, but never read again (a page of these would loop). */
            if (e->type == REDIS_REPLY_ARRAY && e->elements >= 1 &&
                e->element[0]->type == REDIS_REPLY_STRING &&
                st_l2_stream_id_parse(e->element[0]->str, e->element[0]->len, &id))
                b->last = id;
            continue;
        }
        if (st_l2_inval_body_parse(body, len, &m)) {
            apply(b, &m);
            if (memcmp(m.instance, b->instance, ST_L2_INSTANCE_LEN) != 0)
                ST_STAT_INC(b->stats, BUS_REPLAYED);
        }
        b->last = id;
    }
    if (reply->elements == REPLAY_PAGE)
        replay_from_last(b);
    else
        trusted(b);
}

static void replay_from_last(struct st_bus *b)
{
    char from[48];
    snprintf(from, sizeof(from), "(%llu-%llu", (unsigned long long)b->last.ms,
             (unsigned long long)b->last.seq);
    const char *argv[] = {"XRANGE", b->stream, from, "+", "COUNT", REPLAY_PAGE_S};
    send_step(b, on_xrange, 6, argv);
}

/* XINFO's answer for a stream that does not exist (other errors, e.g. LOADING, are failures). */
static bool no_such_key(const redisReply *r)
{
    return r->type == REDIS_REPLY_ERROR && r->str && strstr(r->str, "no such key");
}

/* The stream's newest id, from an XINFO STREAM reply (0-0 when it has none). */
static struct st_l2_stream_id last_generated(const redisReply *reply)
{
    struct st_l2_stream_id id = {0, 0};
    const redisReply *v = st_l2_reply_field(reply, "last-generated-id");
    if (v && v->type == REDIS_REPLY_STRING)
        st_l2_stream_id_parse(v->str, v->len, &id);
    return id;
}

static void on_xinfo(struct st_redis *r, const redisReply *reply, void *arg)
{
    (void)r;
    struct st_bus *b = step_take(arg);
    if (!b)
        return;
    if (reply && reply->type == REDIS_REPLY_ERROR && no_such_key(reply)) {
        /* No stream: nothing was ever invalidated, or it is gone with what we missed. */
        if (b->last.ms || b->last.seq)
            flush_l1(b, "the invalidation stream is gone");
        b->last = (struct st_l2_stream_id){0, 0};
        trusted(b);
        return;
    }
    if (!reply || reply->type != REDIS_REPLY_ARRAY) {
        step_failed(b);
        return;
    }
    struct st_l2_stream_id deleted = {0, 0};
    const redisReply *v = st_l2_reply_field(reply, "max-deleted-entry-id");
    if (v && v->type == REDIS_REPLY_STRING)
        st_l2_stream_id_parse(v->str, v->len, &deleted);
    if (st_l2_stream_id_cmp(deleted, b->last) > 0) {
        flush_l1(b, "invalidations missed while cut off were trimmed from the stream");
        b->last = last_generated(reply);
        trusted(b);
        return;
    }
    replay_from_last(b);
}

/* First sight of the stream: start from its end (L1 holds nothing older than now). */
static void on_xinfo_first(struct st_redis *r, const redisReply *reply, void *arg)
{
    (void)r;
    struct st_bus *b = step_take(arg);
    if (!b)
        return;
    if (!reply || (reply->type == REDIS_REPLY_ERROR && !no_such_key(reply))) {
        step_failed(b);
        return;
    }
    /* What L1 took in before the first sync was never covered by the bus. */
    struct st_cache_tier_stats ts;
    st_cache_tier_stats(b->l1, &ts);
    if (ts.l1.entries)
        flush_l1(b, "entries stored before the bus was first up may have missed invalidations");
    b->last = last_generated(reply);
    trusted(b);
}

static void on_info(struct st_redis *r, const redisReply *reply, void *arg)
{
    (void)r;
    struct st_bus *b = step_take(arg);
    if (!b)
        return;
    char run_id[41];
    if (!st_l2_reply_run_id(reply, run_id)) {
        step_failed(b);
        return;
    }
    bool first = !b->synced;
    bool restarted = !first && strcmp(run_id, b->run_id) != 0;
    memcpy(b->run_id, run_id, sizeof(run_id));
    if (restarted)
        flush_l1(b, "Redis restarted (new run id) while the bus was cut off");
    const char *argv[] = {"XINFO", "STREAM", b->stream};
    send_step(b, first || restarted ? on_xinfo_first : on_xinfo, 3, argv);
}

static void catch_up(struct st_bus *b)
{
    if (b->closed || st_bus_state(b) != ST_BUS_CATCHING_UP)
        return;
    const char *argv[] = {"INFO", "server"};
    send_step(b, on_info, 2, argv);
}

static void on_sub_state(struct st_redis *r, bool up, void *arg)
{
    (void)r;
    struct st_bus *b = arg;
    if (b->closed)
        return;
    b->catchup_gen++;
    uv_timer_stop(&b->retry);
    if (!up) {
        int64_t zero = 0;
        atomic_compare_exchange_strong(&b->lost_ms, &zero, st_clock_wall_ms());
        atomic_store(&b->state, ST_BUS_DOWN);
        st_log(ST_LOG_WARN, "redis bus", NULL,
               "subscription lost: L1 entries are served for at most %llu ms until it is back",
               (unsigned long long)b->partition_ttl_ms);
        return;
    }
    atomic_store(&b->state, ST_BUS_CATCHING_UP);
    catch_up(b);
}

/* --- publishing --- */

int st_bus_publish(struct st_bus *b, struct st_redis *conn, enum st_inval_kind kind,
                   const char *value, size_t len, st_redis_reply_cb cb, void *arg)
{
    struct st_sb body;
    st_sb_init(&body, len + 32);
    st_l2_inval_body(&body, b->instance, kind, value, len);
    const char *argv[] = {"EVAL", publish_script, "1", b->stream, STREAM_MAX, body.p, b->channel};
    size_t lens[] = {4, sizeof(publish_script) - 1, 1, strlen(b->stream), strlen(STREAM_MAX),
                     body.len, strlen(b->channel)};
    int rc = st_redis_command(conn, cb, arg, 7, argv, lens);
    st_sb_finish(&body);
    return rc;
}

static void on_released(struct st_redis *r, const redisReply *reply, void *arg)
{
    (void)r;
    (void)reply;
    (void)arg;
}

int st_bus_release(struct st_bus *b, struct st_redis *conn, const char *lock, size_t lock_len,
                   const char *token, uint64_t hash, const char *key, size_t key_len)
{
    struct st_sb msg;
    st_sb_init(&msg, key_len + 48);
    st_l2_notice(&msg, b->instance, hash, key, key_len);
    const char *argv[] = {"EVAL", release_script, "1", lock, token, b->channel, msg.p};
    size_t lens[] = {4, sizeof(release_script) - 1, 1, lock_len, strlen(token),
                     strlen(b->channel), msg.len};
    int rc = st_redis_command(conn, on_released, NULL, 7, argv, lens);
    st_sb_finish(&msg);
    return rc;
}

/* --- waits --- */

void st_bus_wait_add(struct st_bus *b, struct st_bus_wait *w)
{
    uv_mutex_lock(&b->wait_lock);
    struct st_bus_wait **head = &b->waits[w->hash % WAIT_BUCKETS];
    w->next = *head;
    *head = w;
    uv_mutex_unlock(&b->wait_lock);
}

bool st_bus_wait_remove(struct st_bus *b, struct st_bus_wait *w)
{
    bool found = false;
    uv_mutex_lock(&b->wait_lock);
    for (struct st_bus_wait **pp = &b->waits[w->hash % WAIT_BUCKETS]; *pp; pp = &(*pp)->next) {
        if (*pp == w) {
            *pp = w->next;
            found = true;
            break;
        }
    }
    uv_mutex_unlock(&b->wait_lock);
    return found;
}

/* --- life --- */

static char *joined(const char *a, const char *b)
{
    struct st_sb sb;
    st_sb_init(&sb, strlen(a) + strlen(b) + 1);
    st_sb_adds(&sb, a);
    st_sb_adds(&sb, b);
    st_sb_add(&sb, "", 1);
    return st_sb_take(&sb, NULL);
}

struct st_bus *st_bus_create(uv_loop_t *loop, const struct st_bus_opts *o, struct st_redis *cmd)
{
    struct st_bus *b = st_xcalloc(1, sizeof(*b));
    b->loop = loop;
    b->cmd = cmd;
    b->prefix = st_xstrdup(o->prefix);
    b->channel = joined(o->prefix, "bus");
    b->stream = joined(o->prefix, "{bus}:log");
    memcpy(b->instance, o->instance, ST_L2_INSTANCE_LEN);
    b->partition_ttl_ms = o->partition_ttl_ms;
    b->l1 = o->l1;
    b->stats = o->stats;
    atomic_init(&b->state, ST_BUS_DOWN);
    atomic_init(&b->lost_ms, st_clock_wall_ms()); /* nothing is trusted before the first sync */
    uv_mutex_init(&b->wait_lock);
    uv_timer_init(loop, &b->retry);
    b->retry.data = b;
    struct st_redis_opts so = *o->redis;
    so.name = "redis bus";
    so.on_state = on_sub_state;
    so.arg = b;
    b->sub = st_redis_create(loop, &so);
    st_redis_subscribe(b->sub, b->channel, on_message, b);
    return b;
}

static void on_retry_closed(uv_handle_t *h)
{
    (void)h;
}

void st_bus_close(struct st_bus *b)
{
    if (!b || b->closed)
        return;
    b->closed = true;
    b->catchup_gen++;
    atomic_store(&b->state, ST_BUS_DOWN);
    st_redis_destroy(b->sub);
    b->sub = NULL;
    uv_close((uv_handle_t *)&b->retry, on_retry_closed);
}

void st_bus_destroy(struct st_bus *b)
{
    if (!b)
        return;
    uv_mutex_destroy(&b->wait_lock);
    free(b->prefix);
    free(b->channel);
    free(b->stream);
    free(b);
}
