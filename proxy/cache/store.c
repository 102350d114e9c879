/*
 * cache.c - the sharded memory tier: hash table, SIEVE eviction, prefix and
 * tag indexes, single-flight. See cache.h for the data model and locking.
 *
 * SIEVE, per shard: new entries go to the head of a FIFO queue. To evict,
 * the "hand" walks from where it last stopped toward the head: a visited
 * entry has its bit cleared and is passed over, the first unvisited one is
 * evicted. Hits only set the bit, so popular entries survive without the
 * queue being reordered on every hit (unlike LRU).
 *
 * Prefix index: a skip list per shard ordered by (key, entry address).
 * Tag index: a chained hash table per shard of tag links; each entry owns
 * one link per tag, unlinked when the entry leaves the shard.
 */
#include "cache/store.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>
#include <xxhash.h>

#include "base/alloc.h"
#include "cache/freshness.h"
#include "base/qsbr.h"
#include "core/worker.h"

#define SL_MAX 16
#define TAG_BUCKETS 1024

struct flight {
    struct flight *next;
    uint64_t hash;
    char *key; /* owned */
    size_t key_len;
    struct st_waiter *waiters;
};

/* A bucket array; replaced whole when it grows (the old one is retired). */
struct table {
    size_t n; /* power of two */
    _Atomic(struct st_cache_entry *) b[];
};

struct shard {
    uv_mutex_t lock;
    _Atomic(struct table *) table;
    size_t n_entries;
    struct st_cache_entry *q_head, *q_tail, *hand; /* SIEVE queue: head = newest */
    struct st_cache_entry *sl_head[SL_MAX];
    unsigned sl_level;
    struct st_tag_link *tags[TAG_BUCKETS];
    struct flight *flights;
    uint64_t bytes, budget;
    uint64_t evictions, expirations, invalidations;
    uint64_t rand;
};

struct st_cache {
    struct shard *shards;
    unsigned n_shards; /* power of two */
    uint64_t memory, max_object;
};

uint64_t st_cache_hash(const char *key, size_t len)
{
    return XXH3_64bits(key, len);
}

/* --- entries --- */

struct st_cache_entry *st_cache_entry_ref(struct st_cache_entry *e)
{
    atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
    return e;
}

void st_cache_entry_unref(struct st_cache_entry *e)
{
    if (!e || atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (e->body_apart)
        free((char *)e->body);
    free(e);
}

/* Response headers that are never stored: framing, per-answer and hop-by-hop ones. */
static bool stored_header(const struct st_headers *h, const struct st_hdr *e)
{
    static const char *const skip[] = {
        "content-length", "age", "cache-status", "x-request-id", "cdn-cache-control", NULL,
    };
    const char *name = st_hdr_name(h, e);
    for (int i = 0; skip[i]; i++)
        if (st_name_eq(name, e->name_len, skip[i]))
            return false;
    return !st_http_is_hop_by_hop(h, e);
}

/* The next header line named `name` at or after *i, or NULL (then *i == req->n). */
static const struct st_hdr *next_line(const struct st_headers *req, const char *name, size_t len,
                                      size_t *i)
{
    for (; req && *i < req->n; (*i)++) {
        const struct st_hdr *e = &req->v[*i];
        if (e->name_len == len && strncasecmp(st_hdr_name(req, e), name, len) == 0) {
            (*i)++;
            return e;
        }
    }
    return NULL;
}

/* The request's value for a Vary header: every line, joined by ", ". */
static void vary_value(const struct st_headers *req, const char *name, size_t len,
                       struct st_sb *out)
{
    size_t i = 0;
    const struct st_hdr *e;
    for (bool first = true; (e = next_line(req, name, len, &i)) != NULL; first = false) {
        if (!first)
            st_sb_add(out, ", ", 2);
        st_sb_add(out, st_hdr_value(req, e), e->value_len);
    }
    st_sb_add(out, "", 1); /* the NUL that ends the value */
}

/* "name\0value\0" for each Vary field name; returns the count, or -1 when too many. */
static int build_vary(const struct st_headers *req, const struct st_headers *resp,
                      struct st_sb *out)
{
    int n = 0;
    for (size_t i = 0; i < resp->n; i++) {
        const struct st_hdr *e = &resp->v[i];
        if (!st_name_eq(st_hdr_name(resp, e), e->name_len, "vary"))
            continue;
        const char *v = st_hdr_value(resp, e);
        size_t len = e->value_len, p = 0;
        while (p < len) {
            while (p < len && (v[p] == ',' || v[p] == ' ' || v[p] == '\t'))
                p++;
            size_t s = p;
            while (p < len && v[p] != ',' && v[p] != ' ' && v[p] != '\t')
                p++;
            if (p == s)
                continue;
            if (++n > ST_CACHE_MAX_VARY)
                return -1;
            for (size_t k = s; k < p; k++) {
                char c = v[k];
                st_sb_add(out, &(char){c >= 'A' && c <= 'Z' ? (char)(c + 32) : c}, 1);
            }
            st_sb_add(out, "", 1);
            vary_value(req, v + s, p - s, out);
        }
    }
    return n;
}

static int32_t clamp_i32(int64_t v)
{
    return v > INT32_MAX ? INT32_MAX : (v < INT32_MIN ? INT32_MIN : (int32_t)v);
}

static unsigned random_height(uint64_t *r)
{
    *r = *r * 6364136223846793005ull + 1442695040888963407ull;
    uint64_t bits = *r >> 16;
    unsigned h = 1;
    while (h < SL_MAX && (bits & 3) == 0) {
        h++;
        bits >>= 2;
    }
    return h;
}

/* The next space-separated tag of v at or after *pos: its start in *start, its length returned (0: none left). */
static size_t next_tag(const char *v, size_t len, size_t *pos, size_t *start)
{
    size_t p = *pos;
    while (p < len && v[p] == ' ')
        p++;
    *start = p;
    while (p < len && v[p] != ' ')
        p++;
    *pos = p;
    return p - *start;
}

static size_t count_tags(const char *v, size_t len)
{
    size_t n = 0, p = 0, start;
    while (n < ST_CACHE_MAX_TAGS && next_tag(v, len, &p, &start) > 0)
        n++;
    return n;
}

struct st_cache_entry *st_cache_entry_new(const struct st_cache_entry_init *in)
{
    struct st_sb head, vary;
    st_sb_init(&head, 512);
    st_sb_init(&vary, 64);
    int n_vary = build_vary(in->req, in->resp, &vary);
    if (n_vary < 0) {
        st_sb_finish(&head);
        st_sb_finish(&vary);
        return NULL;
    }
    st_sb_addf(&head, "HTTP/1.1 %d ", in->status);
    if (in->reason_len)
        st_sb_add(&head, in->reason, in->reason_len);
    else
        st_sb_adds(&head, st_http_reason(in->status));
    st_sb_add(&head, "\r\n", 2);
    const struct st_hdr *etag = NULL, *tags = NULL, *last_modified = NULL;
    for (size_t i = 0; i < in->resp->n; i++) {
        const struct st_hdr *e = &in->resp->v[i];
        if (!stored_header(in->resp, e))
            continue;
        if (st_name_eq(st_hdr_name(in->resp, e), e->name_len, "etag"))
            etag = e;
        if (st_name_eq(st_hdr_name(in->resp, e), e->name_len, "surrogate-key"))
            tags = e;
        if (!last_modified && st_name_eq(st_hdr_name(in->resp, e), e->name_len, "last-modified"))
            last_modified = e; /* the first, as st_headers_get() and freshness.c read it */
        st_sb_add(&head, st_hdr_name(in->resp, e), e->name_len);
        st_sb_add(&head, ": ", 2);
        st_sb_add(&head, st_hdr_value(in->resp, e), e->value_len);
        st_sb_add(&head, "\r\n", 2);
    }
    size_t etag_len = etag ? etag->value_len : 0;
    size_t tags_len = tags ? tags->value_len : 0;
    size_t n_tags = tags ? count_tags(st_hdr_value(in->resp, tags), tags_len) : 0;
    if (in->key_len > UINT32_MAX / 2 || head.len > UINT32_MAX / 2 || in->body_len > UINT32_MAX / 2 ||
        vary.len > UINT16_MAX || etag_len >= UINT16_MAX || tags_len >= UINT16_MAX) {
        st_sb_finish(&head);
        st_sb_finish(&vary);
        return NULL;
    }
    uint64_t seed = (uint64_t)(uintptr_t)in ^ st_cache_hash(in->key, in->key_len);
    unsigned height = random_height(&seed);
    bool apart = in->body_len >= 512;
    size_t size = sizeof(struct st_cache_entry) + height * sizeof(struct st_cache_entry *) +
                  n_tags * sizeof(struct st_tag_link) + in->key_len + 1 + vary.len + etag_len +
                  1 + tags_len + 1 + head.len + (apart ? 0 : in->body_len);
    struct st_cache_entry *e = st_xmalloc(size);
    memset(e, 0, sizeof(*e));
    atomic_init(&e->refs, 1);
    atomic_init(&e->visited, 0);
    e->sl_height = (uint8_t)height;
    e->n_tags = (uint8_t)n_tags;
    char *p = (char *)(st_cache_entry_tag_links(e) + n_tags);
    memset(st_cache_entry_sl(e), 0, height * sizeof(struct st_cache_entry *));
    e->key_len = (uint32_t)in->key_len;
    memcpy(p, in->key, in->key_len);
    p += in->key_len;
    *p++ = '\0';
    memcpy(p, vary.p, vary.len);
    p += vary.len;
    e->vary_len = (uint16_t)vary.len;
    e->n_vary = (uint8_t)n_vary;
    if (etag)
        memcpy(p, st_hdr_value(in->resp, etag), etag_len);
    p += etag_len;
    *p++ = '\0';
    e->etag_len = (uint16_t)etag_len;
    if (tags)
        memcpy(p, st_hdr_value(in->resp, tags), tags_len);
    p += tags_len;
    *p++ = '\0';
    e->tags_len = (uint16_t)tags_len;
    memcpy(p, head.p, head.len);
    e->head_len = (uint32_t)head.len;
    p += head.len;
    e->body_apart = apart;
    char *body = apart ? st_xmalloc(in->body_len ? in->body_len : 1) : p;
    memcpy(body, in->body, in->body_len);
    e->body = body;
    e->body_len = (uint32_t)in->body_len;
    e->hash = st_cache_hash(in->key, in->key_len);
    e->charge = (uint32_t)(size + (apart ? in->body_len : 0));
    e->status = (uint16_t)in->status;
    e->last_modified_s = UINT32_MAX;
    if (last_modified) {
        int64_t ms = st_http_date_parse(st_hdr_value(in->resp, last_modified),
                                        last_modified->value_len);
        if (ms >= 0 && ms / 1000 < UINT32_MAX)
            e->last_modified_s = (uint32_t)(ms / 1000);
    }
    e->stored_ms = in->stored_ms;
    e->initial_age_ms = clamp_i32(in->initial_age_ms);
    e->lifetime_ms = in->lifetime_ms;
    e->swr_ms = clamp_i32(in->swr_ms);
    e->sie_ms = clamp_i32(in->sie_ms);
    e->no_stale = in->no_stale;
    e->always_revalidate = in->always_revalidate;
    e->tier_slot = (int16_t)in->tier_slot;
    st_sb_finish(&head);
    st_sb_finish(&vary);
    return e;
}

/*
 * Is the request's value for header `name` (every line, joined by ", " as
 * vary_value() stores it) equal to `want`? Compared in place: this runs on
 * the hit path of every Vary'd entry (Vary: Accept-Encoding is common).
 */
static bool vary_value_is(const struct st_headers *req, const char *name, size_t len,
                          const char *want)
{
    size_t i = 0;
    const struct st_hdr *e;
    for (bool first = true; (e = next_line(req, name, len, &i)) != NULL; first = false) {
        if (!first) {
            if (want[0] != ',' || want[1] != ' ')
                return false;
            want += 2;
        }
        if (strncmp(want, st_hdr_value(req, e), e->value_len) != 0)
            return false;
        want += e->value_len;
    }
    return *want == '\0';
}

/* Do the request's values for e's Vary headers equal those e was stored for? */
static bool vary_matches(const struct st_cache_entry *e, const struct st_headers *req)
{
    const char *p = st_cache_entry_vary(e);
    for (unsigned i = 0; i < e->n_vary; i++) {
        size_t nlen = strlen(p);
        const char *val = p + nlen + 1;
        if (!vary_value_is(req, p, nlen, val))
            return false;
        p = val + strlen(val) + 1;
    }
    return true;
}

static bool same_variant(const struct st_cache_entry *a, const struct st_cache_entry *b)
{
    if (a->n_vary != b->n_vary)
        return false;
    const char *pa = st_cache_entry_vary(a), *pb = st_cache_entry_vary(b);
    for (unsigned i = 0; i < a->n_vary * 2; i++) {
        if (strcmp(pa, pb) != 0)
            return false;
        pa += strlen(pa) + 1;
        pb += strlen(pb) + 1;
    }
    return true;
}

/* --- shards --- */

static struct table *table_new(size_t n)
{
    struct table *t = st_xcalloc(1, sizeof(*t) + n * sizeof(t->b[0]));
    t->n = n;
    return t;
}

/* The shard's table, for a writer holding the lock. */
static struct table *wtable(struct shard *s)
{
    return atomic_load_explicit(&s->table, memory_order_relaxed);
}

static _Atomic(struct st_cache_entry *) *bucket_of(struct table *t, uint64_t hash)
{
    return &t->b[hash & (t->n - 1)];
}

static struct st_cache_entry *next_of(struct st_cache_entry *e)
{
    return atomic_load_explicit(&e->h_next, memory_order_acquire);
}

static void release_retired(void *e)
{
    st_cache_entry_unref(e);
}

struct st_cache *st_cache_create(uint64_t memory, uint64_t max_object)
{
    struct st_cache *c = st_xcalloc(1, sizeof(*c));
    c->memory = memory;
    c->max_object = max_object;
    /* Each shard must hold several of the largest objects. */
    unsigned n = 1;
    while (n < 64 && memory / (n * 2) >= 8 * (max_object + 4096))
        n *= 2;
    c->n_shards = n;
    c->shards = st_xcalloc(n, sizeof(*c->shards));
    for (unsigned i = 0; i < n; i++) {
        struct shard *s = &c->shards[i];
        uv_mutex_init(&s->lock);
        atomic_init(&s->table, table_new(256));
        s->budget = memory / n;
        s->sl_level = 1;
        s->rand = 0x9e3779b97f4a7c15ull * (i + 1);
    }
    return c;
}

static void shard_free_entries(struct shard *s)
{
    struct st_cache_entry *e = s->q_head;
    while (e) {
        struct st_cache_entry *next = e->q_next;
        st_cache_entry_unref(e);
        e = next;
    }
    for (struct flight *f = s->flights, *next; f; f = next) {
        next = f->next;
        free(f->key);
        free(f);
    }
}

void st_cache_destroy(struct st_cache *c)
{
    if (!c)
        return;
    st_qsbr_drain_all();
    for (unsigned i = 0; i < c->n_shards; i++) {
        shard_free_entries(&c->shards[i]);
        free(atomic_load(&c->shards[i].table));
        uv_mutex_destroy(&c->shards[i].lock);
    }
    free(c->shards);
    free(c);
}

uint64_t st_cache_max_object(const struct st_cache *c)
{
    return c->max_object;
}

static struct shard *shard_of(struct st_cache *c, uint64_t hash)
{
    return &c->shards[(hash >> 32) & (c->n_shards - 1)];
}

static bool key_eq(const struct st_cache_entry *e, uint64_t hash, const char *key, size_t len)
{
    return e->hash == hash && e->key_len == len && memcmp(st_cache_entry_key(e), key, len) == 0;
}

/*
 * Double the bucket array. Readers may be walking the old chains: entries
 * are relinked into the new array (a reader that follows a relinked
 * pointer only reaches other live entries, at worst missing its key once),
 * and the old array is retired, not freed.
 */
static void table_grow(struct shard *s)
{
    struct table *old = wtable(s);
    struct table *t = table_new(old->n * 2);
    for (size_t i = 0; i < old->n; i++) {
        struct st_cache_entry *e = atomic_load_explicit(&old->b[i], memory_order_relaxed);
        while (e) {
            struct st_cache_entry *next = atomic_load_explicit(&e->h_next, memory_order_relaxed);
            _Atomic(struct st_cache_entry *) *b = bucket_of(t, e->hash);
            atomic_store_explicit(&e->h_next, atomic_load_explicit(b, memory_order_relaxed),
                                  memory_order_release);
            atomic_store_explicit(b, e, memory_order_relaxed);
            e = next;
        }
    }
    atomic_store_explicit(&s->table, t, memory_order_release);
    st_qsbr_retire(old, free);
}

/* Skip list order: key bytes, then entry address (variants share a key). */
static int sl_cmp(const struct st_cache_entry *a, const char *key, size_t len,
                  const struct st_cache_entry *b_or_null)
{
    size_t n = a->key_len < len ? a->key_len : len;
    int r = memcmp(st_cache_entry_key(a), key, n);
    if (r)
        return r;
    if (a->key_len != len)
        return a->key_len < len ? -1 : 1;
    if (!b_or_null)
        return 0;
    return a < b_or_null ? -1 : (a > b_or_null ? 1 : 0);
}

/* Fill prev[] with, per level, the last node ordered before (key, e). */
static void sl_find(struct shard *s, const char *key, size_t len, const struct st_cache_entry *e,
                    struct st_cache_entry **prev[SL_MAX])
{
    struct st_cache_entry **link = s->sl_head;
    for (int lvl = SL_MAX - 1; lvl >= 0; lvl--) {
        while (link[lvl] && sl_cmp(link[lvl], key, len, e) < 0)
            link = st_cache_entry_sl(link[lvl]);
        prev[lvl] = &link[lvl];
    }
}

static void sl_insert(struct shard *s, struct st_cache_entry *e)
{
    struct st_cache_entry **prev[SL_MAX];
    sl_find(s, st_cache_entry_key(e), e->key_len, e, prev);
    struct st_cache_entry **next = st_cache_entry_sl(e);
    for (unsigned lvl = 0; lvl < e->sl_height; lvl++) {
        next[lvl] = *prev[lvl];
        *prev[lvl] = e;
    }
}

static void sl_remove(struct shard *s, struct st_cache_entry *e)
{
    struct st_cache_entry **prev[SL_MAX];
    sl_find(s, st_cache_entry_key(e), e->key_len, e, prev);
    struct st_cache_entry **next = st_cache_entry_sl(e);
    for (unsigned lvl = 0; lvl < e->sl_height; lvl++)
        if (*prev[lvl] == e)
            *prev[lvl] = next[lvl];
}

static void tags_link(struct shard *s, struct st_cache_entry *e)
{
    size_t p = 0, n = 0;
    const char *tags = st_cache_entry_tags(e);
    struct st_tag_link *links = st_cache_entry_tag_links(e);
    size_t start, len;
    while (n < e->n_tags && (len = next_tag(tags, e->tags_len, &p, &start)) > 0) {
        struct st_tag_link *l = &links[n++];
        l->e = e;
        l->tag = tags + start;
        l->tag_len = len;
        l->tag_hash = st_cache_hash(l->tag, l->tag_len);
        struct st_tag_link **bucket = &s->tags[l->tag_hash & (TAG_BUCKETS - 1)];
        l->prev = NULL;
        l->next = *bucket;
        if (*bucket)
            (*bucket)->prev = l;
        *bucket = l;
    }
    /* n_tags places the key and everything after it: it was counted with the same tokenizer. */
    ST_CHECK(n == e->n_tags);
}

static void tags_unlink(struct shard *s, struct st_cache_entry *e)
{
    struct st_tag_link *links = st_cache_entry_tag_links(e);
    for (unsigned i = 0; i < e->n_tags; i++) {
        struct st_tag_link *l = &links[i];
        if (l->prev)
            l->prev->next = l->next;
        else
            s->tags[l->tag_hash & (TAG_BUCKETS - 1)] = l->next;
        if (l->next)
            l->next->prev = l->prev;
    }
}

static void queue_unlink(struct shard *s, struct st_cache_entry *e)
{
    if (s->hand == e)
        s->hand = e->q_prev;
    if (e->q_prev)
        e->q_prev->q_next = e->q_next;
    else
        s->q_head = e->q_next;
    if (e->q_next)
        e->q_next->q_prev = e->q_prev;
    else
        s->q_tail = e->q_prev;
}

/* Take e out of every structure of its shard; its reference goes once no reader can see it. */
static void shard_remove(struct shard *s, struct st_cache_entry *e)
{
    _Atomic(struct st_cache_entry *) *pp = bucket_of(wtable(s), e->hash);
    struct st_cache_entry *cur;
    while ((cur = atomic_load_explicit(pp, memory_order_relaxed)) && cur != e)
        pp = &cur->h_next;
    if (cur)
        atomic_store_explicit(pp, atomic_load_explicit(&e->h_next, memory_order_relaxed),
                              memory_order_release);
    queue_unlink(s, e);
    sl_remove(s, e);
    tags_unlink(s, e);
    e->linked = false;
    s->n_entries--;
    s->bytes -= e->charge;
    st_qsbr_retire(e, release_retired);
}

/* SIEVE: evict one entry. */
static void evict_one(struct shard *s)
{
    struct st_cache_entry *e = s->hand ? s->hand : s->q_tail;
    while (e && atomic_load_explicit(&e->visited, memory_order_relaxed)) {
        atomic_store_explicit(&e->visited, 0, memory_order_relaxed);
        e = e->q_prev ? e->q_prev : s->q_tail;
    }
    if (!e)
        return;
    s->hand = e->q_prev;
    s->evictions++;
    shard_remove(s, e);
}

static struct st_cache_entry *find(struct table *t, uint64_t hash, const char *key,
                                   size_t key_len, const struct st_headers *req)
{
    struct st_cache_entry *e = atomic_load_explicit(bucket_of(t, hash), memory_order_acquire);
    for (; e; e = next_of(e))
        if (key_eq(e, hash, key, key_len) && (e->n_vary == 0 || vary_matches(e, req)))
            return e;
    return NULL;
}

static void mark_visited(struct st_cache_entry *e)
{
    if (e && !atomic_load_explicit(&e->visited, memory_order_relaxed))
        atomic_store_explicit(&e->visited, 1, memory_order_relaxed);
}

struct st_cache_entry *st_cache_lookup(struct st_cache *c, uint64_t hash, const char *key,
                                       size_t key_len, const struct st_headers *req)
{
    struct shard *s = shard_of(c, hash);
    uv_mutex_lock(&s->lock);
    struct st_cache_entry *found = find(wtable(s), hash, key, key_len, req);
    if (found)
        st_cache_entry_ref(found);
    uv_mutex_unlock(&s->lock);
    mark_visited(found);
    return found;
}

struct st_cache_entry *st_cache_peek(struct st_cache *c, uint64_t hash, const char *key,
                                     size_t key_len, const struct st_headers *req)
{
    ST_CHECK(st_qsbr_registered());
    st_qsbr_online();
    struct shard *s = shard_of(c, hash);
    struct table *t = atomic_load_explicit(&s->table, memory_order_acquire);
    struct st_cache_entry *found = find(t, hash, key, key_len, req);
    mark_visited(found);
    return found;
}

bool st_cache_insert(struct st_cache *c, struct st_cache_entry *e)
{
    struct shard *s = shard_of(c, e->hash);
    if (e->body_len > c->max_object || e->charge > s->budget)
        return false;
    uv_mutex_lock(&s->lock);
    struct st_cache_entry *o = atomic_load_explicit(bucket_of(wtable(s), e->hash),
                                                    memory_order_relaxed);
    for (; o; o = atomic_load_explicit(&o->h_next, memory_order_relaxed)) {
        if (key_eq(o, e->hash, st_cache_entry_key(e), e->key_len) && same_variant(o, e)) {
            shard_remove(s, o);
            break;
        }
    }
    while (s->bytes + e->charge > s->budget && s->q_head)
        evict_one(s);
    if (s->n_entries >= wtable(s)->n)
        table_grow(s);
    _Atomic(struct st_cache_entry *) *bucket = bucket_of(wtable(s), e->hash);
    st_cache_entry_ref(e);
    atomic_store_explicit(&e->h_next, atomic_load_explicit(bucket, memory_order_relaxed),
                          memory_order_relaxed);
    e->q_prev = NULL;
    e->q_next = s->q_head;
    if (s->q_head)
        s->q_head->q_prev = e;
    s->q_head = e;
    if (!s->q_tail)
        s->q_tail = e;
    sl_insert(s, e);
    tags_link(s, e);
    e->linked = true;
    s->n_entries++;
    s->bytes += e->charge;
    /* Publish last: a reader that finds e sees it whole. */
    atomic_store_explicit(bucket, e, memory_order_release);
    uv_mutex_unlock(&s->lock);
    st_qsbr_reclaim();
    return true;
}

size_t st_cache_remove_key(struct st_cache *c, const char *key, size_t len)
{
    uint64_t hash = st_cache_hash(key, len);
    struct shard *s = shard_of(c, hash);
    size_t n = 0;
    uv_mutex_lock(&s->lock);
    struct st_cache_entry *e = atomic_load_explicit(bucket_of(wtable(s), hash),
                                                    memory_order_relaxed);
    while (e) {
        struct st_cache_entry *next = atomic_load_explicit(&e->h_next, memory_order_relaxed);
        if (key_eq(e, hash, key, len)) {
            shard_remove(s, e);
            n++;
        }
        e = next;
    }
    s->invalidations += n;
    uv_mutex_unlock(&s->lock);
    st_qsbr_reclaim();
    return n;
}

static size_t shard_remove_prefix(struct shard *s, const char *prefix, size_t len)
{
    struct st_cache_entry **prev[SL_MAX];
    size_t n = 0;
    sl_find(s, prefix, len, NULL, prev);
    struct st_cache_entry *e = *prev[0];
    while (e && e->key_len >= len && memcmp(st_cache_entry_key(e), prefix, len) == 0) {
        struct st_cache_entry *next = st_cache_entry_sl(e)[0];
        shard_remove(s, e);
        n++;
        e = next;
    }
    s->invalidations += n;
    return n;
}

size_t st_cache_remove_prefix(struct st_cache *c, const char *prefix, size_t len)
{
    size_t n = 0;
    for (unsigned i = 0; i < c->n_shards; i++) {
        struct shard *s = &c->shards[i];
        uv_mutex_lock(&s->lock);
        n += shard_remove_prefix(s, prefix, len);
        uv_mutex_unlock(&s->lock);
    }
    st_qsbr_reclaim();
    return n;
}

static struct st_tag_link *find_tag(struct shard *s, uint64_t th, const char *tag, size_t len)
{
    for (struct st_tag_link *l = s->tags[th & (TAG_BUCKETS - 1)]; l; l = l->next)
        if (l->tag_hash == th && l->tag_len == len && memcmp(l->tag, tag, len) == 0)
            return l;
    return NULL;
}

size_t st_cache_remove_tag(struct st_cache *c, const char *tag, size_t len)
{
    uint64_t th = st_cache_hash(tag, len);
    size_t total = 0;
    for (unsigned i = 0; i < c->n_shards; i++) {
        struct shard *s = &c->shards[i];
        size_t n = 0;
        uv_mutex_lock(&s->lock);
        /* Removing an entry unlinks all its tag links: look the bucket up afresh each time. */
        struct st_tag_link *l;
        while ((l = find_tag(s, th, tag, len)) != NULL) {
            shard_remove(s, l->e);
            n++;
        }
        s->invalidations += n;
        uv_mutex_unlock(&s->lock);
        total += n;
    }
    st_qsbr_reclaim();
    return total;
}

void st_cache_expire(struct st_cache *c, struct st_cache_entry *e)
{
    struct shard *s = shard_of(c, e->hash);
    uv_mutex_lock(&s->lock);
    if (e->linked) {
        s->expirations++;
        shard_remove(s, e);
    }
    uv_mutex_unlock(&s->lock);
    st_qsbr_reclaim();
}

void st_cache_stats(struct st_cache *c, struct st_cache_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->capacity = c->memory;
    for (unsigned i = 0; i < c->n_shards; i++) {
        struct shard *s = &c->shards[i];
        uv_mutex_lock(&s->lock);
        out->entries += s->n_entries;
        out->bytes += s->bytes;
        out->evictions += s->evictions;
        out->expirations += s->expirations;
        out->invalidations += s->invalidations;
        uv_mutex_unlock(&s->lock);
    }
}

/* --- single-flight --- */

enum st_flight_role st_cache_flight_join(struct st_cache *c, uint64_t hash, const char *key,
                                         size_t key_len, struct st_waiter *waiter)
{
    struct shard *s = shard_of(c, hash);
    uv_mutex_lock(&s->lock);
    for (struct flight *f = s->flights; f; f = f->next) {
        if (f->hash == hash && f->key_len == key_len && memcmp(f->key, key, key_len) == 0) {
            if (waiter) {
                waiter->next = f->waiters;
                f->waiters = waiter;
            }
            uv_mutex_unlock(&s->lock);
            return ST_FLIGHT_PARKED;
        }
    }
    struct flight *f = st_xcalloc(1, sizeof(*f));
    f->hash = hash;
    f->key = st_xstrndup(key, key_len);
    f->key_len = key_len;
    f->next = s->flights;
    s->flights = f;
    uv_mutex_unlock(&s->lock);
    return ST_FLIGHT_LEADER;
}

void st_cache_flight_done(struct st_cache *c, uint64_t hash, const char *key, size_t key_len,
                          enum st_flight_result result, int status)
{
    struct shard *s = shard_of(c, hash);
    struct flight *found = NULL;
    uv_mutex_lock(&s->lock);
    for (struct flight **pp = &s->flights; *pp; pp = &(*pp)->next) {
        struct flight *f = *pp;
        if (f->hash == hash && f->key_len == key_len && memcmp(f->key, key, key_len) == 0) {
            *pp = f->next;
            found = f;
            break;
        }
    }
    uv_mutex_unlock(&s->lock);
    if (!found)
        return;
    struct st_waiter *w = found->waiters;
    while (w) {
        struct st_waiter *next = w->next;
        w->result = result;
        w->status = status;
        st_worker_post(w->w, w);
        w = next;
    }
    free(found->key);
    free(found);
}
