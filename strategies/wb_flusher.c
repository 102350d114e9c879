/*
 * wb_flusher.c - the write-behind flusher (wb_flusher.h has what it
 * promises; wb_queue.h the Redis layout).
 *
 * State: per partition, whether this instance owns it (and until when its
 * lease holds), and the writes read from its stream, in stream order:
 *   QUEUED   waiting for flush_delay, its backoff, or an earlier write to
 *            its key
 *   SENDING  its origin request is in flight (the exchange holds it)
 *   FINISH   the outcome is known (done, coalesced, dead); the Redis step
 *            that records it is in flight or to be sent again
 * A write leaves memory only once Redis confirmed its outcome. Losing a
 * partition drops its QUEUED writes (the next owner reads them again); the
 * others finish.
 *
 * Every step runs on the first worker's loop, from one timer tick (every
 * TICK_MS) and the callbacks of what the tick sent.
 */
#include "strategies/wb_flusher.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/log.h"
#include "base/rand.h"
#include "cache/invalidate.h"
#include "cache/tier.h"
#include "redis/redis.h"
#include "strategies/strategies.h"
#include "strategies/wb_queue.h"

#define TICK_MS 50
#define IDLE_READ_MS 200     /* a partition whose last read was empty is read again after this */
#define READ_COUNT 256       /* entries per read */
#define MAX_QUEUED 1024      /* writes held per partition */
#define MAX_SENDING 64       /* origin requests in flight */
#define MAX_FINISHING 64     /* outcomes being recorded in Redis */
#define FINISH_RETRY_MS 200  /* a recording that failed is tried again after this */
#define ANSWER_KEEP 1024     /* bytes of the origin's answer kept for a dead letter */
#define BACKOFF_MIN_MS 200
#define BACKOFF_MAX_MS 30000
#define INFO_EVERY_MS 1000
#define TAKE_EVERY_MS 1000   /* how often partitions without an owner are asked for */
#define SET_SLOTS 4096       /* > 2 * (MAX_QUEUED + MAX_SENDING) */

static const char renew_script[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then "
    "return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0";
static const char release_script[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

enum wstate { W_QUEUED, W_SENDING, W_FINISH };
enum outcome { O_DONE, O_COALESCED, O_DEAD };

struct flusher;

struct wbw {
    struct wbw *next;
    struct flusher *f;
    unsigned part;
    char sid[48];
    struct st_wb_write w; /* pointers into buf */
    char *buf;
    uint64_t hash;
    int64_t queued_ms; /* from the stream id */
    unsigned attempts; /* origin requests sent */
    int64_t next_at;   /* not before (backoff) */
    enum wstate state;
    enum outcome outcome;
    bool busy;   /* FINISH: its Redis step is in flight */
    bool coalesce_mark; /* this tick's pass: superseded */
    int status;  /* the origin's, 0 when none came */
    struct st_sb answer;
};

struct part {
    bool owned;
    int64_t lease_until; /* ownership is trusted until then */
    bool leasing, group_ok, claiming, reading, infoing;
    char cursor[48];        /* XAUTOCLAIM's */
    uint64_t epoch;         /* bumped when ownership changes: stale replies are dropped */
    int64_t next_read;
    struct wbw *head, *tail;
    unsigned n;
    uint64_t depth;  /* from the last info */
    int64_t oldest_ms; /* -1: empty */
};

/* Keys seen in one pass (open addressing); clearing costs what was added, not the table. */
struct keyset {
    struct wbw *slot[SET_SLOTS];
    unsigned used[SET_SLOTS];
    unsigned n_used;
};

struct flusher {
    struct st_strategy_host *host;
    uv_timer_t tick;
    bool stopping, timer_closed, policy_checked;
    unsigned pending; /* callbacks and exchanges still to come */
    unsigned sending;
    unsigned finishing; /* Redis steps in flight: bounded, so a backlog never floods Redis */
    char *prefix;
    char instance[64];
    uint64_t lease_ms;
    int64_t next_lease, next_take, next_info;
    struct part parts[ST_WB_PARTITIONS];
    struct keyset set_a, set_b;
    bool kicked; /* a tick is due at once: a send ended, its key's next write may go */
};

/* A reply for one partition, from the ownership epoch it was asked in. */
struct pcb {
    struct flusher *f;
    unsigned part;
    uint64_t epoch;
};

static const struct st_strategy_ctx *ctx_of(struct flusher *f)
{
    return st_host_ctx(f->host);
}

static struct st_redis *redis_of(struct flusher *f)
{
    struct st_redis *r = st_cache_tier_redis(ctx_of(f)->tiers);
    return r && st_redis_up(r) ? r : NULL;
}

static int64_t now_of(struct flusher *f)
{
    return ctx_of(f)->now_ms();
}

static void wbw_free(struct wbw *w)
{
    st_sb_finish(&w->answer);
    free(w->buf);
    free(w);
}

static void maybe_free(struct flusher *f)
{
    if (!f->stopping || !f->timer_closed || f->pending)
        return;
    struct st_strategy_host *host = f->host;
    for (unsigned p = 0; p < ST_WB_PARTITIONS; p++)
        for (struct wbw *w = f->parts[p].head, *next; w; w = next) {
            next = w->next;
            wbw_free(w);
        }
    free(f->prefix);
    free(f);
    st_host_service_ended(host);
}

static void unlink_write(struct flusher *f, struct wbw *w)
{
    struct part *p = &f->parts[w->part];
    struct wbw **pp = &p->head, *prev = NULL;
    while (*pp && *pp != w) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (!*pp)
        return;
    *pp = w->next;
    if (p->tail == w)
        p->tail = prev;
    p->n--;
}

/* Drop what waits in memory only: the stream still has it for whoever reads it next. */
static void drop_queued(struct flusher *f, unsigned part)
{
    struct part *p = &f->parts[part];
    for (struct wbw *w = p->head, *next; w; w = next) {
        next = w->next;
        if (w->state == W_QUEUED) {
            unlink_write(f, w);
            wbw_free(w);
        }
    }
}

static void lose(struct flusher *f, unsigned part, const char *why)
{
    struct part *p = &f->parts[part];
    if (!p->owned)
        return;
    p->owned = false;
    p->epoch++;
    drop_queued(f, part);
    st_log(ST_LOG_WARN, "write-behind", NULL, "partition %u: %s", part, why);
}

static const struct st_route_cfg *route_of(struct flusher *f, const struct st_wb_write *w)
{
    const struct st_config *cfg = st_host_config(f->host);
    for (size_t i = 0; cfg && i < cfg->n_routes; i++) {
        const char *id = cfg->routes[i].id;
        if (id && strlen(id) == w->len[ST_WB_ROUTE] &&
            memcmp(id, w->v[ST_WB_ROUTE], w->len[ST_WB_ROUTE]) == 0)
            return &cfg->routes[i];
    }
    return NULL;
}

static struct pcb *pcb_new(struct flusher *f, unsigned part)
{
    struct pcb *c = st_xmalloc(sizeof(*c));
    c->f = f;
    c->part = part;
    c->epoch = f->parts[part].epoch;
    f->pending++;
    return c;
}

/* A pcb's reply arrived: false when it is stale (ownership changed) or the flusher stops. */
static bool pcb_end(struct pcb *c, struct flusher **f, struct part **p)
{
    *f = c->f;
    *p = &c->f->parts[c->part];
    bool live = !c->f->stopping && c->epoch == (*p)->epoch;
    c->f->pending--;
    return live;
}

static int send_cmd(struct flusher *f, st_redis_reply_cb cb, struct pcb *c, int argc,
                    const char **argv, const size_t *lens)
{
    struct st_redis *r = redis_of(f);
    int rc = r ? st_redis_command(r, cb, c, argc, argv, lens) : -EAGAIN;
    if (rc < 0) {
        f->pending--;
        free(c);
    }
    return rc;
}

/* A Redis key of the partition (q, d or o) in sb. */
static void wb_key(struct flusher *f, struct st_sb *sb, unsigned part, char kind)
{
    st_sb_init(sb, 64);
    st_wb_key(sb, f->prefix, part, kind);
}

/* --- ownership --- */

static void on_lease(struct st_redis *r, const redisReply *reply, void *arg)
{
    (void)r;
    struct pcb *c = arg;
    struct flusher *f;
    struct part *p;
    bool live = pcb_end(c, &f, &p);
    unsigned part = c->part;
    free(c);
    p->leasing = false;
    if (!live) {
        maybe_free(f);
        return;
    }
    int64_t now = now_of(f);
    bool ok = reply && ((reply->type == REDIS_REPLY_STATUS && strcmp(reply->str, "OK") == 0) ||
                        (reply->type == REDIS_REPLY_INTEGER && reply->integer == 1));
    if (p->owned) {
        if (ok)
            p->lease_until = now + (int64_t)f->lease_ms * 2 / 3;
        else if (reply && reply->type != REDIS_REPLY_ERROR)
            lose(f, part, "lease taken over by another instance");
        return;
    }
    if (!ok)
        return; /* someone else's */
    p->owned = true;
    p->epoch++;
    p->lease_until = now + (int64_t)f->lease_ms * 2 / 3;
    p->group_ok = false;
    p->claiming = true;
    strcpy(p->cursor, "0-0");
    p->next_read = 0;
    drop_queued(f, part);
}

/* Renew the leases held (owned true), or try to take the partitions nobody holds. */
static void lease_all(struct flusher *f, bool owned)
{
    char px[24];
    snprintf(px, sizeof(px), "%llu", (unsigned long long)f->lease_ms);
    for (unsigned part = 0; part < ST_WB_PARTITIONS; part++) {
        struct part *p = &f->parts[part];
        if (p->leasing || p->owned != owned)
            continue;
        struct st_sb k;
        wb_key(f, &k, part, 'o');
        struct pcb *c = pcb_new(f, part);
        int rc;
        if (p->owned) {
            const char *argv[] = {"EVAL", renew_script, "1", k.p, f->instance, px};
            size_t lens[] = {4, sizeof(renew_script) - 1, 1, k.len, strlen(f->instance),
                             strlen(px)};
            rc = send_cmd(f, on_lease, c, 6, argv, lens);
        } else {
            const char *argv[] = {"SET", k.p, f->instance, "NX", "PX", px};
            size_t lens[] = {3, k.len, strlen(f->instance), 2, 2, strlen(px)};
            rc = send_cmd(f, on_lease, c, 6, argv, lens);
        }
        if (rc == 0)
            p->leasing = true;
        st_sb_finish(&k);
    }
}

/* A command whose answer changes nothing here (a lease given back, a foreign entry acked). */
static void on_quiet(struct st_redis *r, const redisReply *reply, void *arg)
{
    (void)r;
    (void)reply;
    struct pcb *c = arg;
    struct flusher *f;
    struct part *p;
    pcb_end(c, &f, &p);
    free(c);
    maybe_free(f);
}

/* Stopping: hand the partitions over now instead of after the lease. */
static void release_all(struct flusher *f)
{
    for (unsigned part = 0; part < ST_WB_PARTITIONS; part++) {
        if (!f->parts[part].owned)
            continue;
        struct st_sb k;
        wb_key(f, &k, part, 'o');
        const char *argv[] = {"EVAL", release_script, "1", k.p, f->instance};
        size_t lens[] = {4, sizeof(release_script) - 1, 1, k.len, strlen(f->instance)};
        send_cmd(f, on_quiet, pcb_new(f, part), 5, argv, lens);
        st_sb_finish(&k);
        f->parts[part].owned = false;
    }
}

/* --- reading the stream --- */

static bool have_sid(const struct part *p, const char *sid, size_t len)
{
    for (const struct wbw *w = p->head; w; w = w->next)
        if (strlen(w->sid) == len && memcmp(w->sid, sid, len) == 0)
            return true;
    return false;
}

static void ack_foreign(struct flusher *f, unsigned part, const char *sid, size_t len);

/* Keep one stream entry ([id, [field, value, ...]]) as a write of the partition. */
static void add_entry(struct flusher *f, unsigned part, const redisReply *e)
{
    struct part *p = &f->parts[part];
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[0]->type != REDIS_REPLY_STRING || e->element[0]->len >= 48)
        return;
    const redisReply *id = e->element[0];
    if (have_sid(p, id->str, id->len))
        return;
    struct st_wb_write in;
    if (!st_wb_parse(e->element[1], &in)) {
        st_log(ST_LOG_WARN, "write-behind", NULL, "partition %u: entry %.*s is not a write; "
               "acknowledged and skipped", part, (int)id->len, id->str);
        ack_foreign(f, part, id->str, id->len);
        return;
    }
    struct wbw *w = st_xcalloc(1, sizeof(*w));
    size_t total = 0;
    for (int i = 0; i < ST_WB__COUNT; i++)
        total += in.len[i] + 1;
    w->buf = st_xmalloc(total);
    char *q = w->buf;
    for (int i = 0; i < ST_WB__COUNT; i++) {
        memcpy(q, in.v[i], in.len[i]);
        q[in.len[i]] = '\0';
        w->w.v[i] = q;
        w->w.len[i] = in.len[i];
        q += in.len[i] + 1;
    }
    w->f = f;
    w->part = part;
    memcpy(w->sid, id->str, id->len);
    w->sid[id->len] = '\0';
    w->hash = st_cache_tier_hash(w->w.v[ST_WB_KEY], w->w.len[ST_WB_KEY]);
    w->queued_ms = st_wb_sid_ms(id->str, id->len);
    st_sb_init(&w->answer, 64);
    if (p->tail)
        p->tail->next = w;
    else
        p->head = w;
    p->tail = w;
    p->n++;
}

static void ack_foreign(struct flusher *f, unsigned part, const char *sid, size_t len)
{
    struct st_sb k;
    wb_key(f, &k, part, 'q');
    const char *argv[] = {"XACK", k.p, ST_WB_GROUP, sid};
    size_t lens[] = {4, k.len, strlen(ST_WB_GROUP), len};
    send_cmd(f, on_quiet, pcb_new(f, part), 4, argv, lens);
    st_sb_finish(&k);
}

/*
 * The start of every read's reply (group, claim, read): the partition, or
 * NULL when the reply is stale, the flusher stops, or the group is gone
 * (created again next).
 */
static struct part *read_reply(void *arg, const redisReply *reply, struct flusher **fo,
                               unsigned *part)
{
    struct pcb *c = arg;
    struct flusher *f;
    struct part *p;
    bool live = pcb_end(c, &f, &p);
    *fo = f;
    *part = c->part;
    free(c);
    p->reading = false;
    if (!live) {
        maybe_free(f);
        return NULL;
    }
    if (reply && reply->type == REDIS_REPLY_ERROR && strstr(reply->str, "NOGROUP")) {
        p->group_ok = false;
        return NULL;
    }
    return p;
}

static void on_group(struct st_redis *r, const redisReply *reply, void *arg)
{
    (void)r;
    struct flusher *f;
    unsigned part;
    struct part *p = read_reply(arg, reply, &f, &part);
    if (p && reply && (reply->type == REDIS_REPLY_STATUS ||
                       (reply->type == REDIS_REPLY_ERROR &&
                        strncmp(reply->str, "BUSYGROUP", 9) == 0)))
        p->group_ok = true;
}

/* XAUTOCLAIM's reply: [cursor, [entries], [deleted ids]]. */
static void on_claim(struct st_redis *r, const redisReply *reply, void *arg)
{
    (void)r;
    struct flusher *f;
    unsigned part;
    struct part *p = read_reply(arg, reply, &f, &part);
    if (!p)
        return;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 2 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[1]->type != REDIS_REPLY_ARRAY || reply->element[0]->len >= 48)
        return;
    const redisReply *entries = reply->element[1];
    for (size_t i = 0; i < entries->elements; i++)
        add_entry(f, part, entries->element[i]);
    memcpy(p->cursor, reply->element[0]->str, reply->element[0]->len);
    p->cursor[reply->element[0]->len] = '\0';
    if (strcmp(p->cursor, "0-0") == 0)
        p->claiming = false;
}

static void kick(struct flusher *f);

/* XREADGROUP's reply: nil, or [[stream, [entries]]]. */
static void on_read(struct st_redis *r, const redisReply *reply, void *arg)
{
    (void)r;
    struct flusher *f;
    unsigned part;
    struct part *p = read_reply(arg, reply, &f, &part);
    if (!p)
        return;
    if (!reply || reply->type == REDIS_REPLY_ERROR) {
        /*
         * Redis may have handed the entries to us before the answer was lost
         * (a timeout, a crash): they sit in our pending list, which only a
         * claim reads. Claim it again before reading on (known ones are skipped).
         */
        p->claiming = true;
        strcpy(p->cursor, "0-0");
        return;
    }
    size_t got = 0;
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 1 &&
        reply->element[0]->type == REDIS_REPLY_ARRAY && reply->element[0]->elements == 2) {
        const redisReply *entries = reply->element[0]->element[1];
        for (size_t i = 0; entries->type == REDIS_REPLY_ARRAY && i < entries->elements; i++)
            add_entry(f, part, entries->element[i]);
        got = entries->type == REDIS_REPLY_ARRAY ? entries->elements : 0;
    }
    if (got == 0)
        p->next_read = now_of(f) + IDLE_READ_MS;
    else
        kick(f);
}

static void read_part(struct flusher *f, unsigned part, int64_t now)
{
    struct part *p = &f->parts[part];
    if (!p->owned || p->reading || now >= p->lease_until)
        return;
    struct st_sb k;
    wb_key(f, &k, part, 'q');
    char count[16];
    snprintf(count, sizeof(count), "%d", READ_COUNT);
    int rc = -1;
    if (!p->group_ok) {
        const char *argv[] = {"XGROUP", "CREATE", k.p, ST_WB_GROUP, "0", "MKSTREAM"};
        size_t lens[] = {6, 6, k.len, strlen(ST_WB_GROUP), 1, 8};
        rc = send_cmd(f, on_group, pcb_new(f, part), 6, argv, lens);
    } else if (p->claiming && p->n < MAX_QUEUED) {
        const char *argv[] = {"XAUTOCLAIM", k.p, ST_WB_GROUP, f->instance, "0", p->cursor,
                              "COUNT", count};
        size_t lens[] = {10, k.len, strlen(ST_WB_GROUP), strlen(f->instance), 1,
                         strlen(p->cursor), 5, strlen(count)};
        rc = send_cmd(f, on_claim, pcb_new(f, part), 8, argv, lens);
    } else if (p->n < MAX_QUEUED && now >= p->next_read) {
        const char *argv[] = {"XREADGROUP", "GROUP", ST_WB_GROUP, f->instance, "COUNT", count,
                              "STREAMS", k.p, ">"};
        size_t lens[] = {10, 5, strlen(ST_WB_GROUP), strlen(f->instance), 5, strlen(count), 7,
                         k.len, 1};
        rc = send_cmd(f, on_read, pcb_new(f, part), 9, argv, lens);
    }
    if (rc == 0)
        p->reading = true;
    st_sb_finish(&k);
}

/* --- outcomes --- */

static void finish(struct wbw *w);

/* A recording slot came free: the partition's next outcomes go now, not at the next tick. */
static void finish_more(struct flusher *f, unsigned part)
{
    int64_t now = now_of(f);
    for (struct wbw *w = f->parts[part].head; w && f->finishing < MAX_FINISHING; w = w->next)
        if (w->state == W_FINISH && !w->busy && now >= w->next_at)
            finish(w);
}

static void on_finished(struct st_redis *r, const redisReply *reply, void *arg)
{
    (void)r;
    struct wbw *w = arg;
    struct flusher *f = w->f;
    f->pending--;
    f->finishing--;
    w->busy = false;
    if (!reply || reply->type != REDIS_REPLY_INTEGER) {
        /* Not recorded: tried again a little later (the stream still has the write). */
        w->next_at = now_of(f) + FINISH_RETRY_MS;
        if (f->stopping) {
            unlink_write(f, w);
            wbw_free(w);
            maybe_free(f);
        } else {
            finish_more(f, w->part);
        }
        return;
    }
    const struct st_strategy_ctx *ctx = ctx_of(f);
    bool changed = reply->integer == 1;
    const struct st_wb_write *in = &w->w;
    if (changed) /* every instance drops its dirty copy and reads the new value */
        st_invalidate(ctx->tiers, ctx->stats, ST_INVAL_KEY, in->v[ST_WB_KEY], in->len[ST_WB_KEY]);
    switch (w->outcome) {
    case O_DONE: {
        ST_STAT_INC(ctx->stats, WB_FLUSHED);
        const struct st_route_cfg *route = route_of(f, in);
        if (route) {
            size_t plen;
            const char *path = st_target_path(in->v[ST_WB_TARGET], in->len[ST_WB_TARGET], &plen);
            st_cache_aside_route_patterns(ctx->tiers, ctx->stats, route, path, plen);
        }
        break;
    }
    case O_COALESCED:
        ST_STAT_INC(ctx->stats, WB_COALESCED);
        break;
    case O_DEAD:
        ST_STAT_INC(ctx->stats, WB_DEAD);
        if (w->status)
            st_log(ST_LOG_WARN, "write-behind", in->v[ST_WB_ID],
                   "%s %s is a dead letter after %u attempt(s): the origin answered %d",
                   in->v[ST_WB_METHOD], in->v[ST_WB_TARGET], w->attempts, w->status);
        else
            st_log(ST_LOG_WARN, "write-behind", in->v[ST_WB_ID],
                   "%s %s is a dead letter after %u attempt(s): %.*s", in->v[ST_WB_METHOD],
                   in->v[ST_WB_TARGET], w->attempts, (int)w->answer.len,
                   w->answer.p ? w->answer.p : "");
        break;
    }
    unsigned part = w->part;
    unlink_write(f, w);
    wbw_free(w);
    if (!f->stopping)
        finish_more(f, part);
    maybe_free(f);
}

/*
 * Send the Redis step that records w's outcome (again, if it failed before).
 * At most MAX_FINISHING at a time: a backlog of thousands sent at once would
 * outlast redis.timeout, fail, and be sent again, never to get through.
 */
static void finish(struct wbw *w)
{
    struct flusher *f = w->f;
    struct st_redis *r = redis_of(f);
    if (!r || w->busy || f->finishing >= MAX_FINISHING || now_of(f) < w->next_at)
        return;
    int rc;
    if (w->outcome == O_DEAD) {
        rc = st_wb_dead(r, f->prefix, w->hash, w->part, w->sid, &w->w, w->status, w->answer.p,
                        w->answer.len, on_finished, w);
    } else {
        struct st_sb v;
        st_sb_init(&v, w->w.len[ST_WB_BODY] + 512);
        int64_t px = 0;
        const struct st_route_cfg *route = route_of(f, &w->w);
        const struct st_config *cfg = st_host_config(f->host);
        const struct st_tier *tier =
            route && route->tier >= 0 && cfg ? &cfg->tiers[route->tier] : NULL;
        if (w->outcome == O_DONE && tier) {
            struct st_entry *e = st_wb_entry(&w->w, tier, now_of(f));
            if (e && st_entry_body_len(e) <= cfg->redis.max_object) {
                st_entry_encode(e, &v);
                int64_t win = e->swr_ms > e->sie_ms ? e->swr_ms : e->sie_ms;
                px = e->lifetime_ms + win;
            }
            st_entry_unref(e);
        }
        rc = st_wb_complete(r, f->prefix, w->hash, w->part, w->sid, &w->w, v.p, v.len, px,
                            on_finished, w);
        st_sb_finish(&v);
    }
    if (rc == 0) {
        w->busy = true;
        f->pending++;
        f->finishing++;
    }
}

static void decide(struct wbw *w, enum outcome o)
{
    w->state = W_FINISH;
    w->outcome = o;
    w->next_at = 0;
    finish(w);
}

/* --- sending --- */

static bool on_head(struct st_exchange *x, const struct st_response_head *h)
{
    struct wbw *w = st_exchange_hook_arg(x);
    w->status = h->status;
    return true;
}

static void on_body(struct st_exchange *x, const char *p, size_t len)
{
    struct wbw *w = st_exchange_hook_arg(x);
    if (w->answer.len < ANSWER_KEEP)
        st_sb_add(&w->answer, p, len < ANSWER_KEEP - w->answer.len ? len : ANSWER_KEEP - w->answer.len);
}

static bool on_error(struct st_exchange *x, int err)
{
    struct wbw *w = st_exchange_hook_arg(x);
    w->status = 0;
    w->answer.len = 0;
    st_sb_adds(&w->answer, st_http_error_detail(err));
    /* Not answered: strata's error ends the exchange (it has no client), and on_done decides. */
    return false;
}

static bool retryable(int status)
{
    return status == 0 || status >= 500 || status == 408 || status == 425 || status == 429;
}

static int64_t backoff_ms(struct flusher *f, unsigned attempts)
{
    int64_t d = BACKOFF_MIN_MS;
    for (unsigned i = 1; i < attempts && d < BACKOFF_MAX_MS; i++)
        d *= 2;
    if (d > BACKOFF_MAX_MS)
        d = BACKOFF_MAX_MS;
    return d / 2 + (int64_t)(st_rand64(ctx_of(f)->rand) % (uint64_t)(d / 2 + 1));
}

static void on_tick(uv_timer_t *t);

/* Run the next pass on the next loop turn rather than at the next tick. */
static void kick(struct flusher *f)
{
    if (f->kicked || f->stopping)
        return;
    f->kicked = true;
    uv_timer_start(&f->tick, on_tick, 0, TICK_MS);
}

static void on_done(struct st_exchange *x)
{
    struct wbw *w = st_exchange_hook_arg(x);
    struct flusher *f = w->f;
    f->pending--;
    f->sending--;
    int s = w->status;
    if (s >= 200 && s < 300) {
        decide(w, O_DONE);
    } else if (!retryable(s)) {
        decide(w, O_DEAD);
    } else {
        const struct st_route_cfg *route = route_of(f, &w->w);
        unsigned max = route ? route->write_behind.max_retries : 0;
        if (w->attempts > max) {
            decide(w, O_DEAD);
        } else {
            ST_STAT_INC(ctx_of(f)->stats, WB_RETRIES);
            w->state = W_QUEUED;
            w->next_at = now_of(f) + backoff_ms(f, w->attempts);
        }
    }
    if (f->stopping && w->state == W_QUEUED) {
        unlink_write(f, w);
        wbw_free(w);
    }
    kick(f); /* a sending slot is free, and this key's next write may go */
    maybe_free(f);
}

static const struct st_fetch_hooks send_hooks = {
    .on_head = on_head,
    .on_body = on_body,
    .on_error = on_error,
    .on_done = on_done,
};

/* The stored header block as headers, with the write's Idempotency-Key. */
static void request_headers(const struct st_wb_write *in, struct st_headers *h)
{
    const char *p = in->v[ST_WB_HEADERS], *end = p + in->len[ST_WB_HEADERS];
    while (p < end) {
        const char *eol = memchr(p, '\r', (size_t)(end - p));
        if (!eol)
            eol = end;
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (colon) {
            const char *v = colon + 1;
            while (v < eol && *v == ' ')
                v++;
            st_headers_add(h, p, (size_t)(colon - p), v, (size_t)(eol - v));
        }
        p = eol + 2;
    }
    st_headers_add(h, "Idempotency-Key", 15, in->v[ST_WB_ID], in->len[ST_WB_ID]);
}

static void send_write(struct flusher *f, struct wbw *w, const struct st_route_cfg *route)
{
    struct st_headers h;
    st_headers_init(&h);
    request_headers(&w->w, &h);
    struct st_origin_request rq = {
        .route = route,
        .method = w->w.v[ST_WB_METHOD],
        .target = w->w.v[ST_WB_TARGET],
        .target_len = w->w.len[ST_WB_TARGET],
        .headers = &h,
        .body = w->w.v[ST_WB_BODY],
        .body_len = w->w.len[ST_WB_BODY],
        .client_ip = w->w.v[ST_WB_CLIENT],
    };
    struct st_exchange *x = st_exchange_spawn_request(f->host, &rq);
    st_headers_finish(&h);
    if (!x)
        return;
    w->state = W_SENDING;
    w->attempts++;
    w->status = 0;
    w->answer.len = 0;
    f->pending++;
    f->sending++;
    st_exchange_fetch(x, &send_hooks, w, NULL);
}

/* --- the pass over one partition --- */

static bool same_key(const struct wbw *a, const struct wbw *b)
{
    return a->hash == b->hash && a->w.len[ST_WB_KEY] == b->w.len[ST_WB_KEY] &&
           memcmp(a->w.v[ST_WB_KEY], b->w.v[ST_WB_KEY], a->w.len[ST_WB_KEY]) == 0;
}

/* The slot of w's key in set (open addressing over SET_SLOTS): a write to it, or empty. */
static struct wbw **set_slot(struct keyset *set, const struct wbw *w)
{
    size_t i = w->hash & (SET_SLOTS - 1);
    while (set->slot[i] && !same_key(set->slot[i], w))
        i = (i + 1) & (SET_SLOTS - 1);
    return &set->slot[i];
}

/* Is a write to w's key in set? Add w when not. */
static bool set_test_add(struct keyset *set, struct wbw *w)
{
    struct wbw **slot = set_slot(set, w);
    if (*slot)
        return true;
    *slot = w;
    set->used[set->n_used++] = (unsigned)(slot - set->slot);
    return false;
}

static void set_clear(struct keyset *set)
{
    for (unsigned i = 0; i < set->n_used; i++)
        set->slot[set->used[i]] = NULL;
    set->n_used = 0;
}

static bool replaces(const struct wbw *w)
{
    return strcmp(w->w.v[ST_WB_METHOD], "PUT") == 0 || strcmp(w->w.v[ST_WB_METHOD], "DELETE") == 0;
}

static void pass(struct flusher *f, unsigned part, int64_t now)
{
    struct part *p = &f->parts[part];
    if (!p->head)
        return;
    struct wbw *arr[MAX_QUEUED + MAX_SENDING + 64];
    size_t n = 0;
    for (struct wbw *w = p->head; w && n < sizeof(arr) / sizeof(arr[0]); w = w->next)
        arr[n++] = w;
    /* Backwards: a write with a later PUT or DELETE to its key still to go is superseded. */
    set_clear(&f->set_a);
    for (size_t i = n; i-- > 0;) {
        struct wbw *w = arr[i];
        w->coalesce_mark = false;
        if (w->state == W_FINISH)
            continue;
        if (w->state == W_QUEUED && *set_slot(&f->set_a, w))
            w->coalesce_mark = true;
        else if (replaces(w))
            set_test_add(&f->set_a, w);
    }
    /* Forwards: the first unfinished write of each key may go. */
    set_clear(&f->set_b);
    bool owned = p->owned && now < p->lease_until;
    for (size_t i = 0; i < n; i++) {
        struct wbw *w = arr[i];
        if (w->state == W_FINISH) {
            finish(w); /* a Redis step that failed before */
            continue;
        }
        if (w->coalesce_mark) {
            decide(w, O_COALESCED);
            continue;
        }
        if (set_test_add(&f->set_b, w) || w->state != W_QUEUED || !owned)
            continue;
        const struct st_route_cfg *route = route_of(f, &w->w);
        if (!route) {
            w->answer.len = 0;
            st_sb_adds(&w->answer, "the write's route is no longer in the config");
            decide(w, O_DEAD);
            continue;
        }
        if (now < w->queued_ms + (int64_t)route->write_behind.flush_delay_ms ||
            now < w->next_at || f->sending >= MAX_SENDING)
            continue;
        send_write(f, w, route);
    }
}

/* --- gauges --- */

static void on_info(struct st_redis *r, const redisReply *reply, void *arg)
{
    (void)r;
    struct pcb *c = arg;
    struct flusher *f;
    struct part *p;
    pcb_end(c, &f, &p);
    free(c);
    p->infoing = false;
    if (f->stopping) {
        maybe_free(f);
        return;
    }
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 4)
        return;
    const redisReply *d = reply->element[0], *first = reply->element[1];
    p->depth = d->type == REDIS_REPLY_INTEGER ? (uint64_t)d->integer : 0;
    p->oldest_ms = first->type == REDIS_REPLY_STRING ? st_wb_sid_ms(first->str, first->len) : -1;
    uint64_t pending = 0;
    int64_t lag = 0, now = now_of(f);
    for (unsigned i = 0; i < ST_WB_PARTITIONS; i++) {
        pending += f->parts[i].depth;
        if (f->parts[i].oldest_ms >= 0 && now - f->parts[i].oldest_ms > lag)
            lag = now - f->parts[i].oldest_ms;
    }
    st_stat_set(ctx_of(f)->stats, ST_STAT_WB_PENDING, pending);
    st_stat_set(ctx_of(f)->stats, ST_STAT_WB_LAG_MS, (uint64_t)lag);
}

static void info_all(struct flusher *f)
{
    for (unsigned part = 0; part < ST_WB_PARTITIONS; part++) {
        struct part *p = &f->parts[part];
        if (p->infoing)
            continue;
        struct pcb *c = pcb_new(f, part);
        struct st_redis *r = redis_of(f);
        if (!r || st_wb_partition_info(r, f->prefix, part, on_info, c) < 0) {
            f->pending--;
            free(c);
            continue;
        }
        p->infoing = true;
    }
}

static void on_policy(struct st_redis *r, const redisReply *reply, void *arg)
{
    (void)r;
    struct pcb *c = arg;
    struct flusher *f;
    struct part *p;
    pcb_end(c, &f, &p);
    free(c);
    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
        reply->element[1]->type == REDIS_REPLY_STRING &&
        strncmp(reply->element[1]->str, "allkeys-", 8) == 0)
        st_log(ST_LOG_WARN, "write-behind", NULL,
               "Redis maxmemory-policy is %s: under memory pressure Redis may evict queued "
               "writes' values; use noeviction or a volatile-* policy",
               reply->element[1]->str);
    maybe_free(f);
}

/* --- the tick --- */

/* The lease of the write-behind routes in the config (the shortest claim_after); 0: none. */
static uint64_t lease_of(const struct st_config *cfg)
{
    uint64_t lease = 0;
    for (size_t i = 0; cfg && i < cfg->n_routes; i++) {
        const struct st_route_cfg *r = &cfg->routes[i];
        if (r->strategy == ST_STRATEGY_WRITE_BEHIND &&
            (lease == 0 || r->write_behind.claim_after_ms < lease))
            lease = r->write_behind.claim_after_ms;
    }
    return lease;
}

static void on_tick(uv_timer_t *t)
{
    struct flusher *f = t->data;
    f->kicked = false;
    if (f->stopping)
        return;
    uint64_t lease = lease_of(st_host_config(f->host));
    if (lease)
        f->lease_ms = lease < 300 ? 300 : lease;
    bool any_owned = false;
    for (unsigned p = 0; p < ST_WB_PARTITIONS; p++)
        any_owned |= f->parts[p].owned || f->parts[p].head != NULL;
    if (!lease && !any_owned)
        return; /* no write-behind route: nothing to flush */
    int64_t now = now_of(f);
    if (redis_of(f)) {
        if (!f->policy_checked) {
            f->policy_checked = true;
            const char *argv[] = {"CONFIG", "GET", "maxmemory-policy"};
            size_t lens[] = {6, 3, 16};
            send_cmd(f, on_policy, pcb_new(f, 0), 3, argv, lens);
        }
        if (now >= f->next_lease && lease) {
            f->next_lease = now + (int64_t)f->lease_ms / 3;
            lease_all(f, true);
        }
        if (now >= f->next_take && lease) {
            /* A dead owner's partitions are taken within a second of its lease's end. */
            f->next_take = now + (f->lease_ms / 3 < TAKE_EVERY_MS ? (int64_t)f->lease_ms / 3
                                                                  : TAKE_EVERY_MS);
            lease_all(f, false);
        }
        if (now >= f->next_info) {
            f->next_info = now + INFO_EVERY_MS;
            info_all(f);
        }
    }
    for (unsigned p = 0; p < ST_WB_PARTITIONS; p++) {
        if (f->parts[p].owned && now >= f->parts[p].lease_until + (int64_t)f->lease_ms / 3)
            lose(f, p, "lease could not be renewed in time");
        if (redis_of(f))
            read_part(f, p, now);
        pass(f, p, now);
    }
}

void *st_wb_flusher_start(struct st_strategy_host *h)
{
    const struct st_strategy_ctx *ctx = st_host_ctx(h);
    const struct st_config *cfg = st_host_config(h);
    const char *inst = st_cache_tier_instance(ctx->tiers);
    if (!cfg || !cfg->redis.enabled || !inst)
        return NULL; /* no Redis, no queue */
    struct flusher *f = st_xcalloc(1, sizeof(*f));
    f->host = h;
    f->prefix = st_xstrndup(cfg->redis.prefix, strlen(cfg->redis.prefix));
    snprintf(f->instance, sizeof(f->instance), "%s", inst);
    f->lease_ms = 30000;
    for (unsigned p = 0; p < ST_WB_PARTITIONS; p++)
        f->parts[p].oldest_ms = -1;
    uv_timer_init(st_host_loop(h), &f->tick);
    f->tick.data = f;
    uv_timer_start(&f->tick, on_tick, TICK_MS, TICK_MS);
    return f;
}

static void on_tick_closed(uv_handle_t *t)
{
    struct flusher *f = t->data;
    f->timer_closed = true;
    maybe_free(f);
}

void st_wb_flusher_stop(void *state)
{
    struct flusher *f = state;
    release_all(f);
    f->stopping = true;
    for (unsigned p = 0; p < ST_WB_PARTITIONS; p++) {
        drop_queued(f, p);
        for (struct wbw *w = f->parts[p].head; w; w = w->next)
            if (w->state == W_FINISH)
                finish(w); /* a last try at recording what the origin already has */
    }
    uv_close((uv_handle_t *)&f->tick, on_tick_closed);
}
