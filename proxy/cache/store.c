/*
 * store.c - the sharded memory store: hash table, SIEVE eviction, prefix and
 * tag indexes, the byte budget. See store.h for the data model and locking.
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
#include "base/qsbr.h"

#define SL_MAX 16
#define TAG_BUCKETS 1024

/* A bucket array; replaced whole when it grows (the old one is retired). */
struct table {
    size_t n; /* power of two */
    _Atomic(struct st_store_item *) b[];
};

struct shard {
    uv_mutex_t lock;
    _Atomic(struct table *) table;
    size_t n_entries;
    struct st_store_item *q_head, *q_tail, *hand; /* SIEVE queue: head = newest */
    struct st_store_item *sl_head[SL_MAX];
    unsigned sl_level;
    struct st_store_tag_link *tags[TAG_BUCKETS];
    uint64_t bytes, budget;
    uint64_t evictions, expirations, invalidations;
    uint64_t rand;
};

struct st_store {
    struct shard *shards;
    unsigned n_shards; /* power of two */
    uint64_t memory, max_object;
};

uint64_t st_store_hash(const char *key, size_t len)
{
    return XXH3_64bits(key, len);
}

/* --- entries --- */

struct st_store_item *st_store_item_ref(struct st_store_item *e)
{
    atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
    return e;
}

void st_store_item_unref(struct st_store_item *e)
{
    if (!e || atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (e->blob_apart)
        free((char *)e->blob);
    free(e);
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

/* The next space-separated tag of v at or after *pos: its start in *start, its length returned (0:
 * none left). */
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
    while (n < ST_STORE_MAX_TAGS && next_tag(v, len, &p, &start) > 0)
        n++;
    return n;
}

static bool item_fits(const struct st_store_item_init *in, size_t user_size)
{
    return in->key_len <= UINT32_MAX / 2 && in->blob_len <= UINT32_MAX / 2 &&
           in->extra_len <= UINT32_MAX / 2 && in->variant_len <= UINT16_MAX &&
           in->tags_len < UINT16_MAX && user_size <= UINT16_MAX;
}

/* Copy key NUL, variant, tags NUL to p; returns the byte after them. */
static char *copy_parts(char *p, const struct st_store_item_init *in)
{
    memcpy(p, in->key, in->key_len);
    p += in->key_len;
    *p++ = '\0';
    if (in->variant_len)
        memcpy(p, in->variant, in->variant_len);
    p += in->variant_len;
    if (in->tags_len)
        memcpy(p, in->tags, in->tags_len);
    p += in->tags_len;
    *p++ = '\0';
    return p;
}

struct st_store_item *st_store_item_new(const struct st_store_item_init *in)
{
    size_t user_size = (in->user_size + 7) & ~(size_t)7;
    if (!item_fits(in, user_size))
        return NULL;
    size_t n_tags = in->tags_len ? count_tags(in->tags, in->tags_len) : 0;
    uint64_t seed = (uint64_t)(uintptr_t)in ^ st_store_hash(in->key, in->key_len);
    unsigned height = random_height(&seed);
    bool apart = in->blob_len >= ST_STORE_BLOB_APART;
    size_t size = sizeof(struct st_store_item) + user_size +
                  height * sizeof(struct st_store_item *) +
                  n_tags * sizeof(struct st_store_tag_link) + in->key_len + 1 + in->variant_len +
                  in->tags_len + 1 + in->extra_len + (apart ? 0 : in->blob_len);
    struct st_store_item *it = st_xmalloc(size);
    memset(it, 0, sizeof(*it) + user_size);
    atomic_init(&it->refs, 1);
    atomic_init(&it->visited, 0);
    it->user_size = (uint16_t)user_size;
    it->sl_height = (uint8_t)height;
    it->n_tags = (uint8_t)n_tags;
    memset(st_store_item_sl(it), 0, height * sizeof(struct st_store_item *));
    it->key_len = (uint32_t)in->key_len;
    it->variant_len = (uint16_t)in->variant_len;
    it->tags_len = (uint16_t)in->tags_len;
    it->extra_len = (uint32_t)in->extra_len;
    char *p = copy_parts((char *)st_store_item_key(it), in) + in->extra_len;
    it->blob_apart = apart;
    char *blob = apart ? st_xmalloc(in->blob_len) : p;
    if (in->blob_len)
        memcpy(blob, in->blob, in->blob_len);
    it->blob = blob;
    it->blob_len = (uint32_t)in->blob_len;
    it->hash = st_store_hash(in->key, in->key_len);
    it->charge = (uint32_t)(size + (apart ? in->blob_len : 0));
    return it;
}

static bool same_variant(const struct st_store_item *a, const struct st_store_item *b)
{
    return a->variant_len == b->variant_len &&
           memcmp(st_store_item_variant(a), st_store_item_variant(b), a->variant_len) == 0;
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

static _Atomic(struct st_store_item *) *bucket_of(struct table *t, uint64_t hash)
{
    return &t->b[hash & (t->n - 1)];
}

static struct st_store_item *next_of(struct st_store_item *e)
{
    return atomic_load_explicit(&e->h_next, memory_order_acquire);
}

static void release_retired(void *e)
{
    st_store_item_unref(e);
}

struct st_store *st_store_create(uint64_t memory, uint64_t max_object)
{
    struct st_store *c = st_xcalloc(1, sizeof(*c));
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
    struct st_store_item *e = s->q_head;
    while (e) {
        struct st_store_item *next = e->q_next;
        st_store_item_unref(e);
        e = next;
    }
}

void st_store_destroy(struct st_store *c)
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

uint64_t st_store_max_object(const struct st_store *c)
{
    return c->max_object;
}

static struct shard *shard_of(struct st_store *c, uint64_t hash)
{
    return &c->shards[(hash >> 32) & (c->n_shards - 1)];
}

static bool key_eq(const struct st_store_item *e, uint64_t hash, const char *key, size_t len)
{
    return e->hash == hash && e->key_len == len && memcmp(st_store_item_key(e), key, len) == 0;
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
        struct st_store_item *e = atomic_load_explicit(&old->b[i], memory_order_relaxed);
        while (e) {
            struct st_store_item *next = atomic_load_explicit(&e->h_next, memory_order_relaxed);
            _Atomic(struct st_store_item *) *b = bucket_of(t, e->hash);
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
static int sl_cmp(const struct st_store_item *a, const char *key, size_t len,
                  const struct st_store_item *b_or_null)
{
    size_t n = a->key_len < len ? a->key_len : len;
    int r = memcmp(st_store_item_key(a), key, n);
    if (r)
        return r;
    if (a->key_len != len)
        return a->key_len < len ? -1 : 1;
    if (!b_or_null)
        return 0;
    return a < b_or_null ? -1 : (a > b_or_null ? 1 : 0);
}

/* Fill prev[] with, per level, the last node ordered before (key, e). */
static void sl_find(struct shard *s, const char *key, size_t len, const struct st_store_item *e,
                    struct st_store_item **prev[SL_MAX])
{
    struct st_store_item **link = s->sl_head;
    for (int lvl = SL_MAX - 1; lvl >= 0; lvl--) {
        while (link[lvl] && sl_cmp(link[lvl], key, len, e) < 0)
            link = st_store_item_sl(link[lvl]);
        prev[lvl] = &link[lvl];
    }
}

static void sl_insert(struct shard *s, struct st_store_item *e)
{
    struct st_store_item **prev[SL_MAX];
    sl_find(s, st_store_item_key(e), e->key_len, e, prev);
    struct st_store_item **next = st_store_item_sl(e);
    for (unsigned lvl = 0; lvl < e->sl_height; lvl++) {
        next[lvl] = *prev[lvl];
        *prev[lvl] = e;
    }
}

static void sl_remove(struct shard *s, struct st_store_item *e)
{
    struct st_store_item **prev[SL_MAX];
    sl_find(s, st_store_item_key(e), e->key_len, e, prev);
    struct st_store_item **next = st_store_item_sl(e);
    for (unsigned lvl = 0; lvl < e->sl_height; lvl++)
        if (*prev[lvl] == e)
            *prev[lvl] = next[lvl];
}

static void tags_link(struct shard *s, struct st_store_item *e)
{
    size_t p = 0, n = 0;
    const char *tags = st_store_item_tags(e);
    struct st_store_tag_link *links = st_store_item_tag_links(e);
    size_t start, len;
    while (n < e->n_tags && (len = next_tag(tags, e->tags_len, &p, &start)) > 0) {
        struct st_store_tag_link *l = &links[n++];
        l->it = e;
        l->tag = tags + start;
        l->tag_len = len;
        l->tag_hash = st_store_hash(l->tag, l->tag_len);
        struct st_store_tag_link **bucket = &s->tags[l->tag_hash & (TAG_BUCKETS - 1)];
        l->prev = NULL;
        l->next = *bucket;
        if (*bucket)
            (*bucket)->prev = l;
        *bucket = l;
    }
    /* n_tags places the key and everything after it: it was counted with the same tokenizer. */
    ST_CHECK(n == e->n_tags);
}

static void tags_unlink(struct shard *s, struct st_store_item *e)
{
    struct st_store_tag_link *links = st_store_item_tag_links(e);
    for (unsigned i = 0; i < e->n_tags; i++) {
        struct st_store_tag_link *l = &links[i];
        if (l->prev)
            l->prev->next = l->next;
        else
            s->tags[l->tag_hash & (TAG_BUCKETS - 1)] = l->next;
        if (l->next)
            l->next->prev = l->prev;
    }
}

static void queue_unlink(struct shard *s, struct st_store_item *e)
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
static void shard_remove(struct shard *s, struct st_store_item *e)
{
    _Atomic(struct st_store_item *) *pp = bucket_of(wtable(s), e->hash);
    struct st_store_item *cur;
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
    struct st_store_item *e = s->hand ? s->hand : s->q_tail;
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

static struct st_store_item *find(struct table *t, uint64_t hash, const char *key, size_t key_len,
                                  st_store_match_cb match, const void *arg)
{
    struct st_store_item *e = atomic_load_explicit(bucket_of(t, hash), memory_order_acquire);
    for (; e; e = next_of(e))
        if (key_eq(e, hash, key, key_len) && (e->variant_len == 0 || match(e, arg)))
            return e;
    return NULL;
}

static void mark_visited(struct st_store_item *e)
{
    if (e && !atomic_load_explicit(&e->visited, memory_order_relaxed))
        atomic_store_explicit(&e->visited, 1, memory_order_relaxed);
}

struct st_store_item *st_store_lookup(struct st_store *c, uint64_t hash, const char *key,
                                      size_t key_len, st_store_match_cb match, const void *arg)
{
    struct shard *s = shard_of(c, hash);
    uv_mutex_lock(&s->lock);
    struct st_store_item *found = find(wtable(s), hash, key, key_len, match, arg);
    if (found)
        st_store_item_ref(found);
    uv_mutex_unlock(&s->lock);
    mark_visited(found);
    return found;
}

struct st_store_item *st_store_peek(struct st_store *c, uint64_t hash, const char *key,
                                    size_t key_len, st_store_match_cb match, const void *arg)
{
    ST_CHECK(st_qsbr_registered());
    st_qsbr_online();
    struct shard *s = shard_of(c, hash);
    struct table *t = atomic_load_explicit(&s->table, memory_order_acquire);
    struct st_store_item *found = find(t, hash, key, key_len, match, arg);
    mark_visited(found);
    return found;
}

bool st_store_insert(struct st_store *c, struct st_store_item *e)
{
    struct shard *s = shard_of(c, e->hash);
    if (e->blob_len > c->max_object || e->charge > s->budget)
        return false;
    uv_mutex_lock(&s->lock);
    struct st_store_item *o =
        atomic_load_explicit(bucket_of(wtable(s), e->hash), memory_order_relaxed);
    for (; o; o = atomic_load_explicit(&o->h_next, memory_order_relaxed)) {
        if (key_eq(o, e->hash, st_store_item_key(e), e->key_len) && same_variant(o, e)) {
            shard_remove(s, o);
            break;
        }
    }
    while (s->bytes + e->charge > s->budget && s->q_head)
        evict_one(s);
    if (s->n_entries >= wtable(s)->n)
        table_grow(s);
    _Atomic(struct st_store_item *) *bucket = bucket_of(wtable(s), e->hash);
    st_store_item_ref(e);
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

size_t st_store_remove_key(struct st_store *c, const char *key, size_t len)
{
    uint64_t hash = st_store_hash(key, len);
    struct shard *s = shard_of(c, hash);
    size_t n = 0;
    uv_mutex_lock(&s->lock);
    struct st_store_item *e =
        atomic_load_explicit(bucket_of(wtable(s), hash), memory_order_relaxed);
    while (e) {
        struct st_store_item *next = atomic_load_explicit(&e->h_next, memory_order_relaxed);
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
    struct st_store_item **prev[SL_MAX];
    size_t n = 0;
    sl_find(s, prefix, len, NULL, prev);
    struct st_store_item *e = *prev[0];
    while (e && e->key_len >= len && memcmp(st_store_item_key(e), prefix, len) == 0) {
        struct st_store_item *next = st_store_item_sl(e)[0];
        shard_remove(s, e);
        n++;
        e = next;
    }
    s->invalidations += n;
    return n;
}

size_t st_store_remove_prefix(struct st_store *c, const char *prefix, size_t len)
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

static struct st_store_tag_link *find_tag(struct shard *s, uint64_t th, const char *tag, size_t len)
{
    for (struct st_store_tag_link *l = s->tags[th & (TAG_BUCKETS - 1)]; l; l = l->next)
        if (l->tag_hash == th && l->tag_len == len && memcmp(l->tag, tag, len) == 0)
            return l;
    return NULL;
}

size_t st_store_remove_tag(struct st_store *c, const char *tag, size_t len)
{
    uint64_t th = st_store_hash(tag, len);
    size_t total = 0;
    for (unsigned i = 0; i < c->n_shards; i++) {
        struct shard *s = &c->shards[i];
        size_t n = 0;
        uv_mutex_lock(&s->lock);
        /* Removing an entry unlinks all its tag links: look the bucket up afresh each time. */
        struct st_store_tag_link *l;
        while ((l = find_tag(s, th, tag, len)) != NULL) {
            shard_remove(s, l->it);
            n++;
        }
        s->invalidations += n;
        uv_mutex_unlock(&s->lock);
        total += n;
    }
    st_qsbr_reclaim();
    return total;
}

void st_store_expire(struct st_store *c, struct st_store_item *e)
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

void st_store_stats(struct st_store *c, struct st_store_stats *out)
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
