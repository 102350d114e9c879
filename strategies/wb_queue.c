/*
 * wb_queue.c - the write-behind queue's keys, fields and Lua scripts
 * (wb_queue.h has the layout). Every step that changes more than one key is
 * one script, so that Redis applies it whole or not at all.
 */
#include "strategies/wb_queue.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "cache/l2wire.h"
#include "cache/tier.h"
#include "redis/redis.h"

/* KEYS: value, dirty marker, queue[, dead]. ARGV: value ('' drops it), dead id, fields... */
static const char enqueue_script[] =
    "if ARGV[1] == '' then redis.call('UNLINK', KEYS[1]) "
    "else redis.call('SET', KEYS[1], ARGV[1]) end "
    "redis.call('SET', KEYS[2], ARGV[4]) "
    "local id = redis.call('XADD', KEYS[3], '*', unpack(ARGV, 3)) "
    "if KEYS[4] then redis.call('XDEL', KEYS[4], ARGV[2]) end "
    "return id";

/* KEYS: value, dirty marker, queue. ARGV: group, stream id, write id, value, px. */
static const char complete_script[] =
    "redis.call('XACK', KEYS[3], ARGV[1], ARGV[2]) "
    "redis.call('XDEL', KEYS[3], ARGV[2]) "
    "if redis.call('GET', KEYS[2]) ~= ARGV[3] then return 0 end "
    "redis.call('DEL', KEYS[2]) "
    "if ARGV[4] == '' then redis.call('UNLINK', KEYS[1]) "
    "else redis.call('SET', KEYS[1], ARGV[4], 'PX', ARGV[5]) end "
    "return 1";

/* KEYS: value, dirty marker, queue, dead. ARGV: group, stream id, write id, maxlen, fields... */
static const char dead_script[] =
    "redis.call('XACK', KEYS[3], ARGV[1], ARGV[2]) "
    "redis.call('XDEL', KEYS[3], ARGV[2]) "
    "redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[4], '*', unpack(ARGV, 5)) "
    "if redis.call('GET', KEYS[2]) ~= ARGV[3] then return 0 end "
    "redis.call('DEL', KEYS[2]) redis.call('UNLINK', KEYS[1]) "
    "return 1";

/* KEYS: queue, dead, owner. Reply: [depth, oldest stream id or '', dead letters, owner or '']. */
static const char info_script[] =
    "local f = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1) "
    "local o = redis.call('GET', KEYS[3]) "
    "return {redis.call('XLEN', KEYS[1]), f[1] and f[1][1] or '', redis.call('XLEN', KEYS[2]), "
    "o or ''}";

static const char *const field_names[ST_WB__COUNT] = {
    [ST_WB_ID] = "id",         [ST_WB_KEY] = "key",   [ST_WB_METHOD] = "method",
    [ST_WB_ROUTE] = "route",   [ST_WB_TARGET] = "target", [ST_WB_HEADERS] = "headers",
    [ST_WB_BODY] = "body",     [ST_WB_CLIENT] = "client", [ST_WB_AT] = "at",
};

const char *st_wb_field_name(enum st_wb_field f)
{
    return field_names[f];
}

unsigned st_wb_partition(uint64_t key_hash)
{
    return (unsigned)(key_hash >> 60) % ST_WB_PARTITIONS;
}

void st_wb_key(struct st_sb *sb, const char *prefix, unsigned part, char kind)
{
    st_sb_addf(sb, "%s{wb%u}:%c", prefix, part, kind);
}

static bool eq(const char *p, size_t len, const char *s)
{
    return len == strlen(s) && memcmp(p, s, len) == 0;
}

bool st_wb_parse(const redisReply *fields, struct st_wb_write *w)
{
    memset(w, 0, sizeof(*w));
    for (int f = 0; f < ST_WB__COUNT; f++) {
        const redisReply *v = st_l2_reply_field(fields, field_names[f]);
        if (!v || v->type != REDIS_REPLY_STRING)
            return false;
        w->v[f] = v->str;
        w->len[f] = v->len;
    }
    const char *m = w->v[ST_WB_METHOD];
    size_t ml = w->len[ST_WB_METHOD];
    return (eq(m, ml, "PUT") || eq(m, ml, "DELETE") || eq(m, ml, "PATCH")) &&
           w->len[ST_WB_KEY] > 0 && w->len[ST_WB_ID] > 0;
}

const char *st_wb_header(const char *block, size_t len, const char *name, size_t *vlen)
{
    size_t nl = strlen(name);
    const char *p = block, *end = block + len;
    while (p < end) {
        const char *eol = memchr(p, '\r', (size_t)(end - p));
        if (!eol)
            eol = end;
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (colon && (size_t)(colon - p) == nl && strncasecmp(p, name, nl) == 0) {
            const char *v = colon + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            *vlen = (size_t)(eol - v);
            return v;
        }
        p = eol + 2;
    }
    return NULL;
}

struct st_entry *st_wb_entry(const struct st_wb_write *w, const struct st_tier *tier,
                             int64_t now_ms)
{
    bool put = eq(w->v[ST_WB_METHOD], w->len[ST_WB_METHOD], "PUT");
    bool del = eq(w->v[ST_WB_METHOD], w->len[ST_WB_METHOD], "DELETE");
    if (!put && !del)
        return NULL;
    if (tier && tier->ttl_ms == 0)
        return NULL;
    static const char tombstone[] = "{\"error\":\"not found\"}\n";
    struct st_headers h, req;
    st_headers_init(&h);
    st_headers_init(&req);
    size_t cl = 0;
    const char *ct = put ? st_wb_header(w->v[ST_WB_HEADERS], w->len[ST_WB_HEADERS],
                                        "content-type", &cl)
                         : "application/json";
    if (!put)
        cl = strlen(ct);
    if (ct)
        st_headers_add(&h, "content-type", 12, ct, cl);
    struct st_entry_init in = {
        .key = w->v[ST_WB_KEY],
        .key_len = w->len[ST_WB_KEY],
        .req = &req,
        .resp = &h,
        .status = put ? 200 : 404,
        .body = put ? w->v[ST_WB_BODY] : tombstone,
        .body_len = put ? w->len[ST_WB_BODY] : sizeof(tombstone) - 1,
        .stored_ms = now_ms,
        .lifetime_ms = tier ? (int64_t)tier->ttl_ms : ST_WB_DIRTY_LIFETIME_MS,
        .swr_ms = tier ? (int64_t)tier->stale_while_revalidate_ms : 0,
        .sie_ms = tier ? (int64_t)tier->stale_if_error_ms : 0,
        .no_stale = !tier,
        .dirty = !tier,
    };
    struct st_entry *e = st_entry_new(&in);
    st_headers_finish(&h);
    st_headers_finish(&req);
    return e;
}

int64_t st_wb_sid_ms(const char *sid, size_t len)
{
    struct st_l2_stream_id id;
    return st_l2_stream_id_parse(sid, len, &id) ? (int64_t)id.ms : -1;
}

/* --- commands --- */

/* argv under construction: strings it owns (keys, numbers) and borrowed ones. */
struct args {
    const char *argv[64];
    size_t lens[64];
    int n;
    struct st_sb own[8];
    int n_own;
};

static void arg(struct args *a, const char *p, size_t len)
{
    a->argv[a->n] = p;
    a->lens[a->n++] = len;
}

static void arg_s(struct args *a, const char *s)
{
    arg(a, s, strlen(s));
}

/* A string the args own (built in place, so that its pointer stays put). */
static struct st_sb *arg_own(struct args *a)
{
    struct st_sb *sb = &a->own[a->n_own++];
    st_sb_init(sb, 64);
    return sb;
}

static void arg_done(struct args *a, struct st_sb *sb)
{
    arg(a, sb->p, sb->len);
}

static void arg_l2_key(struct args *a, const char *prefix, uint64_t hash, enum st_l2_keykind k)
{
    struct st_sb *sb = arg_own(a);
    st_l2_key(sb, prefix, hash, k);
    arg_done(a, sb);
}

static void arg_wb_key(struct args *a, const char *prefix, unsigned part, char kind)
{
    struct st_sb *sb = arg_own(a);
    st_wb_key(sb, prefix, part, kind);
    arg_done(a, sb);
}

static void arg_num(struct args *a, long long v)
{
    struct st_sb *sb = arg_own(a);
    st_sb_addf(sb, "%lld", v);
    arg_done(a, sb);
}

static void arg_fields(struct args *a, const struct st_wb_write *w)
{
    for (int f = 0; f < ST_WB__COUNT; f++) {
        arg_s(a, field_names[f]);
        arg(a, w->v[f] ? w->v[f] : "", w->len[f]);
    }
}

static int send_args(struct st_redis *r, struct args *a, st_wb_cb cb, void *arg_)
{
    int rc = r ? st_redis_command(r, cb, arg_, a->n, a->argv, a->lens) : -EAGAIN;
    for (int i = 0; i < a->n_own; i++)
        st_sb_finish(&a->own[i]);
    return rc;
}

static void arg_script(struct args *a, const char *script, size_t len, int nkeys)
{
    arg_s(a, "EVAL");
    arg(a, script, len);
    arg_num(a, nkeys);
}

static int enqueue(struct st_redis *r, const char *prefix, uint64_t key_hash,
                   const struct st_wb_write *w, const char *value, size_t value_len,
                   const char *dead_sid, st_wb_cb cb, void *arg_)
{
    unsigned part = st_wb_partition(key_hash);
    struct args a = {0};
    arg_script(&a, enqueue_script, sizeof(enqueue_script) - 1, dead_sid ? 4 : 3);
    arg_l2_key(&a, prefix, key_hash, ST_L2_VALUE);
    arg_l2_key(&a, prefix, key_hash, ST_L2_DIRTY);
    arg_wb_key(&a, prefix, part, 'q');
    if (dead_sid)
        arg_wb_key(&a, prefix, part, 'd');
    arg(&a, value ? value : "", value_len);
    arg_s(&a, dead_sid ? dead_sid : "");
    arg_fields(&a, w); /* first: "id", <write id> (ARGV[4] in the script) */
    return send_args(r, &a, cb, arg_);
}

int st_wb_enqueue(struct st_redis *r, const char *prefix, uint64_t key_hash,
                  const struct st_wb_write *w, const char *value, size_t value_len,
                  st_wb_cb cb, void *arg_)
{
    return enqueue(r, prefix, key_hash, w, value, value_len, NULL, cb, arg_);
}

int st_wb_complete(struct st_redis *r, const char *prefix, uint64_t key_hash, unsigned part,
                   const char *sid, const struct st_wb_write *w, const char *value,
                   size_t value_len, int64_t px, st_wb_cb cb, void *arg_)
{
    struct args a = {0};
    arg_script(&a, complete_script, sizeof(complete_script) - 1, 3);
    arg_l2_key(&a, prefix, key_hash, ST_L2_VALUE);
    arg_l2_key(&a, prefix, key_hash, ST_L2_DIRTY);
    arg_wb_key(&a, prefix, part, 'q');
    arg_s(&a, ST_WB_GROUP);
    arg_s(&a, sid);
    arg(&a, w->v[ST_WB_ID], w->len[ST_WB_ID]);
    arg(&a, value ? value : "", value ? value_len : 0);
    arg_num(&a, px > 0 ? px : 1);
    return send_args(r, &a, cb, arg_);
}

int st_wb_dead(struct st_redis *r, const char *prefix, uint64_t key_hash, unsigned part,
               const char *sid, const struct st_wb_write *w, int status, const char *answer,
               size_t answer_len, st_wb_cb cb, void *arg_)
{
    struct args a = {0};
    arg_script(&a, dead_script, sizeof(dead_script) - 1, 4);
    arg_l2_key(&a, prefix, key_hash, ST_L2_VALUE);
    arg_l2_key(&a, prefix, key_hash, ST_L2_DIRTY);
    arg_wb_key(&a, prefix, part, 'q');
    arg_wb_key(&a, prefix, part, 'd');
    arg_s(&a, ST_WB_GROUP);
    arg_s(&a, sid);
    arg(&a, w->v[ST_WB_ID], w->len[ST_WB_ID]);
    arg_num(&a, ST_WB_DEAD_MAX);
    arg_fields(&a, w);
    arg_s(&a, "status");
    arg_num(&a, status);
    arg_s(&a, "answer");
    arg(&a, answer ? answer : "", answer ? answer_len : 0);
    return send_args(r, &a, cb, arg_);
}

int st_wb_partition_info(struct st_redis *r, const char *prefix, unsigned part, st_wb_cb cb,
                         void *arg_)
{
    struct args a = {0};
    arg_script(&a, info_script, sizeof(info_script) - 1, 3);
    arg_wb_key(&a, prefix, part, 'q');
    arg_wb_key(&a, prefix, part, 'd');
    arg_wb_key(&a, prefix, part, 'o');
    return send_args(r, &a, cb, arg_);
}

/* --- admin: status and retry, each a gather over every partition --- */

#define RECENT_DEAD 5 /* dead letters shown per partition */

struct gather {
    struct st_redis *r;
    char *prefix;
    char *id; /* retry: the one write id, or NULL for all */
    int64_t now_ms;
    int waiting; /* replies still to come */
    bool failed;
    unsigned retried;
    struct st_sb parts, dead; /* status: JSON pieces */
    uint64_t depth, n_dead;
    int64_t oldest_ms;
    st_wb_json_cb done;
    void *arg;
};

static struct gather *gather_new(struct st_redis *r, const char *prefix, st_wb_json_cb done,
                                 void *arg_)
{
    struct gather *g = st_xcalloc(1, sizeof(*g));
    g->r = r;
    g->prefix = st_xstrndup(prefix, strlen(prefix));
    g->done = done;
    g->arg = arg_;
    g->oldest_ms = -1;
    st_sb_init(&g->parts, 1024);
    st_sb_init(&g->dead, 512);
    return g;
}

static void gather_free(struct gather *g)
{
    st_sb_finish(&g->parts);
    st_sb_finish(&g->dead);
    free(g->prefix);
    free(g->id);
    free(g);
}

static void gather_fail(struct gather *g)
{
    static const char msg[] = "{\"error\":\"Redis did not answer in time\"}\n";
    g->done(g->arg, 503, msg, sizeof(msg) - 1);
    gather_free(g);
}

static long long int_of(const redisReply *e)
{
    if (e->type == REDIS_REPLY_INTEGER)
        return e->integer;
    if (e->type == REDIS_REPLY_STRING)
        return strtoll(e->str, NULL, 10);
    return 0;
}

static void status_finish(struct gather *g)
{
    if (g->failed) {
        gather_fail(g);
        return;
    }
    struct st_sb out;
    st_sb_init(&out, g->parts.len + g->dead.len + 256);
    st_sb_addf(&out, "{\"pending\":%llu,\"oldest_pending_ms\":%lld,\"dead\":%llu,",
               (unsigned long long)g->depth, (long long)g->oldest_ms,
               (unsigned long long)g->n_dead);
    st_sb_addf(&out, "\"partitions\":[%.*s],\"dead_letters\":[%.*s]}\n", (int)g->parts.len,
               g->parts.p ? g->parts.p : "", (int)g->dead.len, g->dead.p ? g->dead.p : "");
    g->done(g->arg, 200, out.p, out.len);
    st_sb_finish(&out);
    gather_free(g);
}

struct part_arg {
    struct gather *g;
    unsigned part;
};

static void gather_step(struct gather *g, void (*finish)(struct gather *))
{
    if (--g->waiting == 0)
        finish(g);
}

static void on_info(struct st_redis *r, const redisReply *reply, void *arg_)
{
    (void)r;
    struct part_arg *pa = arg_;
    struct gather *g = pa->g;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 4) {
        g->failed = true;
    } else {
        long long depth = int_of(reply->element[0]), dead = int_of(reply->element[2]);
        const redisReply *first = reply->element[1], *owner = reply->element[3];
        int64_t first_ms = first->type == REDIS_REPLY_STRING
                               ? st_wb_sid_ms(first->str, first->len) : -1;
        int64_t age = first_ms >= 0 ? g->now_ms - first_ms : -1;
        if (age >= 0 && age > g->oldest_ms)
            g->oldest_ms = age;
        g->depth += (uint64_t)depth;
        g->n_dead += (uint64_t)dead;
        if (g->parts.len)
            st_sb_adds(&g->parts, ",");
        st_sb_addf(&g->parts, "{\"partition\":%u,\"pending\":%lld,\"oldest_pending_ms\":%lld,"
                              "\"dead\":%lld,\"owner\":",
                   pa->part, depth, (long long)age, dead);
        if (owner->type == REDIS_REPLY_STRING && owner->len)
            st_sb_add_json_str(&g->parts, owner->str, owner->len);
        else
            st_sb_adds(&g->parts, "null");
        st_sb_adds(&g->parts, "}");
    }
    free(pa);
    gather_step(g, status_finish);
}

/* A dead letter as JSON (for the status). */
static void dead_json(struct st_sb *sb, const redisReply *entry)
{
    if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2)
        return;
    const redisReply *fields = entry->element[1];
    static const char *const shown[] = {"id", "key", "method", "status", "answer", "at"};
    if (sb->len)
        st_sb_adds(sb, ",");
    st_sb_adds(sb, "{");
    for (size_t i = 0; i < sizeof(shown) / sizeof(shown[0]); i++) {
        const redisReply *v = st_l2_reply_field(fields, shown[i]);
        st_sb_addf(sb, "%s\"%s\":", i ? "," : "", shown[i]);
        if (v && v->type == REDIS_REPLY_STRING)
            st_sb_add_json_str(sb, v->str, v->len > 512 ? 512 : v->len);
        else
            st_sb_adds(sb, "null");
    }
    st_sb_adds(sb, "}");
}

static void on_recent_dead(struct st_redis *r, const redisReply *reply, void *arg_)
{
    (void)r;
    struct gather *g = arg_;
    if (!reply || reply->type != REDIS_REPLY_ARRAY)
        g->failed = true;
    else
        for (size_t i = 0; i < reply->elements; i++)
            dead_json(&g->dead, reply->element[i]);
    gather_step(g, status_finish);
}

static void gather_send(struct gather *g, int rc)
{
    if (rc == 0)
        g->waiting++;
    else
        g->failed = true;
}

void st_wb_status(struct st_redis *r, const char *prefix, int64_t now_ms, st_wb_json_cb done,
                  void *arg_)
{
    struct gather *g = gather_new(r, prefix, done, arg_);
    g->now_ms = now_ms;
    g->waiting = 1; /* this call's own, so that replies cannot finish it early */
    for (unsigned p = 0; p < ST_WB_PARTITIONS && !g->failed; p++) {
        struct part_arg *pa = st_xmalloc(sizeof(*pa));
        pa->g = g;
        pa->part = p;
        int rc = st_wb_partition_info(r, prefix, p, on_info, pa);
        if (rc < 0)
            free(pa);
        gather_send(g, rc);
        struct args a = {0};
        arg_s(&a, "XREVRANGE");
        arg_wb_key(&a, prefix, p, 'd');
        arg_s(&a, "+");
        arg_s(&a, "-");
        arg_s(&a, "COUNT");
        arg_num(&a, RECENT_DEAD);
        gather_send(g, send_args(r, &a, on_recent_dead, g));
    }
    gather_step(g, status_finish);
}

static void retry_finish(struct gather *g)
{
    if (g->failed) {
        gather_fail(g);
        return;
    }
    char body[64];
    int n = snprintf(body, sizeof(body), "{\"retried\":%u}\n", g->retried);
    g->done(g->arg, 200, body, (size_t)n);
    gather_free(g);
}

static void on_requeued(struct st_redis *r, const redisReply *reply, void *arg_)
{
    (void)r;
    struct gather *g = arg_;
    if (!reply || reply->type != REDIS_REPLY_STRING)
        g->failed = true;
    else
        g->retried++;
    gather_step(g, retry_finish);
}

static void requeue(struct gather *g, const redisReply *entry)
{
    if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2 ||
        entry->element[0]->type != REDIS_REPLY_STRING)
        return;
    struct st_wb_write w;
    if (!st_wb_parse(entry->element[1], &w))
        return;
    if (g->id && !eq(w.v[ST_WB_ID], w.len[ST_WB_ID], g->id))
        return;
    struct st_sb value;
    st_sb_init(&value, w.len[ST_WB_BODY] + 512);
    struct st_entry *e = st_wb_entry(&w, NULL, g->now_ms);
    if (e)
        st_entry_encode(e, &value);
    st_entry_unref(e);
    uint64_t hash = st_cache_tier_hash(w.v[ST_WB_KEY], w.len[ST_WB_KEY]);
    gather_send(g, enqueue(g->r, g->prefix, hash, &w, value.p, value.len,
                           entry->element[0]->str, on_requeued, g));
    st_sb_finish(&value);
}

static void on_dead_page(struct st_redis *r, const redisReply *reply, void *arg_)
{
    (void)r;
    struct gather *g = arg_;
    if (!reply || reply->type != REDIS_REPLY_ARRAY)
        g->failed = true;
    else
        for (size_t i = 0; i < reply->elements && !g->failed; i++)
            requeue(g, reply->element[i]);
    gather_step(g, retry_finish);
}

void st_wb_retry(struct st_redis *r, const char *prefix, const char *id, st_wb_json_cb done,
                 void *arg_)
{
    struct gather *g = gather_new(r, prefix, done, arg_);
    g->id = id ? st_xstrndup(id, strlen(id)) : NULL;
    g->now_ms = st_clock_wall_ms();
    g->waiting = 1;
    for (unsigned p = 0; p < ST_WB_PARTITIONS && !g->failed; p++) {
        struct args a = {0};
        arg_s(&a, "XRANGE");
        arg_wb_key(&a, prefix, p, 'd');
        arg_s(&a, "-");
        arg_s(&a, "+");
        arg_s(&a, "COUNT");
        arg_num(&a, ST_WB_DEAD_MAX);
        gather_send(g, send_args(r, &a, on_dead_page, g));
    }
    gather_step(g, retry_finish);
}
