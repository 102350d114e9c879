/*
 * store.h - the memory store: a sharded map of immutable, reference-counted
 * items shared by every worker thread. Storage only: it knows keys, variants,
 * tags and byte counts, not HTTP (entry.h gives the bytes their meaning).
 *
 * Data model. An item is one stored value under a key. Several items may
 * share a key when their variants differ (the entry module puts the Vary
 * selecting headers there); an item replaces another with the same key and
 * variant. Each item carries, in one allocation: a fixed-size record for its
 * owner (right after struct st_store_item, so reading it costs no pointer
 * arithmetic), the store's index links, the key, the variant, its tags
 * (space-separated tokens), the owner's extra bytes, and a blob (the value;
 * blobs of ST_STORE_BLOB_APART bytes or more get an allocation of their own,
 * which keeps the allocator's size-class rounding small). Once published an
 * item never changes, except its SIEVE "visited" bit (a relaxed atomic) and
 * the index links its shard owns.
 *
 * The prefix index orders keys, so a prefix removal ("/api/v1/") visits only
 * the matching items; the tag index maps each tag to its items.
 *
 * Locking: one mutex per shard (XXH3 of the key picks the shard) guards every
 * change to the shard: hash table, SIEVE queue, indexes, byte count. Worker
 * threads read the hash chains without the lock (st_store_peek: atomic chain
 * pointers, memory reclaimed through base/qsbr.h), so a hit takes no lock and
 * no reference. An unlinked item is retired; the store's reference is dropped
 * once no reader can still see it, and whoever drops the last reference frees
 * the item.
 *
 * Eviction: SIEVE (NSDI'24) per shard over a FIFO queue; a hit sets the
 * visited bit without taking the lock.
 *
 * Must not: know what a value means, call out to anything but qsbr, or hold
 * a shard lock while calling back into its caller (match callbacks run on the
 * reader's thread without a lock, or under the lock for st_store_lookup and
 * must then not call into the store).
 */
#ifndef ST_STORE_H
#define ST_STORE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct st_store;

#define ST_STORE_MAX_TAGS 16
#define ST_STORE_BLOB_APART 512

/*
 * Layout of one item's allocation: this struct, the owner's record
 * (user_size bytes), the prefix-index links (sl_height pointers), the tag
 * links (n_tags), then key NUL, variant, tags NUL, the owner's extra bytes,
 * and the blob when it is not apart. Lengths are stored; pointers to the
 * parts are computed (st_store_item_key(), ...).
 */
struct st_store_item {
    _Atomic unsigned refs;
    _Atomic unsigned char visited;
    bool linked; /* in its shard (under the shard lock) */
    uint8_t n_tags, sl_height;
    uint64_t hash;
    /* hash chain: written under the shard lock, read lock-free (st_store_peek) */
    _Atomic(struct st_store_item *) h_next;
    /* shard-private links (under the shard lock) */
    struct st_store_item *q_prev, *q_next;
    const char *blob;
    uint32_t key_len, blob_len;
    uint32_t charge; /* bytes counted against the budget */
    uint16_t variant_len, tags_len;
    uint16_t user_size; /* the owner's record, a multiple of 8 */
    bool blob_apart;    /* the blob has its own allocation */
    uint32_t extra_len;
};

/* One item's membership in a tag bucket (the shard's tag index). */
struct st_store_tag_link {
    struct st_store_tag_link *prev, *next; /* in the tag bucket */
    struct st_store_item *it;
    uint64_t tag_hash;
    const char *tag; /* points into the item's tags */
    size_t tag_len;
};

/* The owner's record, right after the item header. */
static inline void *st_store_item_user(const struct st_store_item *it)
{
    return (void *)(it + 1);
}

/* The item whose owner's record this is. */
static inline struct st_store_item *st_store_item_of(const void *user)
{
    return (struct st_store_item *)user - 1;
}

static inline struct st_store_item **st_store_item_sl(struct st_store_item *it)
{
    return (struct st_store_item **)((char *)(it + 1) + it->user_size);
}

static inline struct st_store_tag_link *st_store_item_tag_links(struct st_store_item *it)
{
    return (struct st_store_tag_link *)(st_store_item_sl(it) + it->sl_height);
}

/* The key (NUL-terminated). */
static inline const char *st_store_item_key(const struct st_store_item *it)
{
    return (const char *)(it + 1) + it->user_size + it->sl_height * sizeof(struct st_store_item *) +
           it->n_tags * sizeof(struct st_store_tag_link);
}

/* The variant bytes (variant_len of them; none: the item is the key's only variant). */
static inline const char *st_store_item_variant(const struct st_store_item *it)
{
    return st_store_item_key(it) + it->key_len + 1;
}

/* The tags (space separated, NUL-terminated), or NULL when none. */
static inline const char *st_store_item_tags(const struct st_store_item *it)
{
    return it->tags_len ? st_store_item_variant(it) + it->variant_len : NULL;
}

/* The owner's extra bytes (extra_len of them). */
static inline char *st_store_item_extra(const struct st_store_item *it)
{
    return (char *)st_store_item_variant(it) + it->variant_len + it->tags_len + 1;
}

/* What an item is built from. Every part is copied. */
struct st_store_item_init {
    const char *key;
    size_t key_len;
    const char *variant; /* may be NULL when variant_len is 0 */
    size_t variant_len;
    const char *tags; /* space separated; the first ST_STORE_MAX_TAGS are indexed */
    size_t tags_len;
    size_t user_size; /* the owner's record (rounded up to 8); zeroed */
    size_t extra_len; /* the owner's extra bytes; the owner writes them before publishing */
    const char *blob;
    size_t blob_len;
};

struct st_store_stats {
    uint64_t entries, bytes, capacity, evictions, expirations, invalidations;
};

/*
 * Build an item with one reference for the caller, not yet published. NULL
 * when a part is too large for the item's length fields.
 */
struct st_store_item *st_store_item_new(const struct st_store_item_init *in);
struct st_store_item *st_store_item_ref(struct st_store_item *it);
/* Drop a reference; the last one frees the item. NULL is a no-op. */
void st_store_item_unref(struct st_store_item *it);

uint64_t st_store_hash(const char *key, size_t len);

/* memory: byte budget for everything stored; max_object: largest blob stored. */
struct st_store *st_store_create(uint64_t memory, uint64_t max_object);
void st_store_destroy(struct st_store *s);
uint64_t st_store_max_object(const struct st_store *s);

/*
 * Does this item, one of its key's variants, fit the reader? Called only for
 * items with variant bytes; arg is the caller's.
 */
typedef bool (*st_store_match_cb)(const struct st_store_item *it, const void *arg);

/*
 * The item for key that match accepts, with a reference for the caller, or
 * NULL. Marks it visited. Takes the shard lock: for threads that are not
 * registered with qsbr.h.
 */
struct st_store_item *st_store_lookup(struct st_store *s, uint64_t hash, const char *key,
                                      size_t key_len, st_store_match_cb match, const void *arg);

/*
 * The same lookup for a thread registered with qsbr.h: lock-free and
 * without a reference. The pointer stays valid until the thread goes
 * offline (the end of its current loop iteration); take a reference to
 * keep the item longer.
 */
struct st_store_item *st_store_peek(struct st_store *s, uint64_t hash, const char *key,
                                    size_t key_len, st_store_match_cb match, const void *arg);

/*
 * Publish it (the store takes its own reference; the caller keeps theirs).
 * Replaces an item with the same key and variant; evicts to stay within
 * budget. Returns false when it is too large to store.
 */
bool st_store_insert(struct st_store *s, struct st_store_item *it);

/* Remove every item with exactly this key. Returns how many. */
size_t st_store_remove_key(struct st_store *s, const char *key, size_t key_len);
/* Remove every item whose key starts with prefix. Returns how many. */
size_t st_store_remove_prefix(struct st_store *s, const char *prefix, size_t len);
/* Remove every item tagged tag. Returns how many. */
size_t st_store_remove_tag(struct st_store *s, const char *tag, size_t len);
/* Remove it if it is still the published one (an expired item found in use). */
void st_store_expire(struct st_store *s, struct st_store_item *it);

void st_store_stats(struct st_store *s, struct st_store_stats *out);

#endif
