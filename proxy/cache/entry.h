/*
 * entry.h - entry encoding: a stored HTTP response as a store item.
 *
 * An entry is one cached response: the response head serialized once at
 * store time (status line + end-to-end headers, without framing, Age,
 * Cache-Status, X-Request-Id or Connection, which are added per answer), the
 * body, freshness numbers and validators. It lives in a store item
 * (store.h): the freshness numbers are the item's record, the Vary selecting
 * headers with the request's values for them are its variant
 * ("name\0value\0" per header, names lowercase), the Surrogate-Key value is
 * its tags, the head and the ETag are its extra bytes (head, then ETag NUL),
 * and the body is its blob. The L2 tier stores the same encoding.
 *
 * Must not: touch a socket, a clock or a tier; it only encodes, decodes and
 * matches.
 */
#ifndef ST_ENTRY_H
#define ST_ENTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "cache/store.h"
#include "http/http.h"

#define ST_ENTRY_MAX_VARY 8

/* The item's record: read on every hit, so it sits at a fixed offset. */
struct st_entry {
    int64_t stored_ms;   /* when the response arrived */
    int64_t lifetime_ms; /* freshness lifetime, jitter applied */
    int32_t initial_age_ms;
    int32_t swr_ms; /* capped at ~24 days */
    int32_t sie_ms;
    uint32_t head_len;
    uint32_t last_modified_s; /* whole seconds (as HTTP dates); UINT32_MAX = none, and so
                                 is a date before 1970 or from 2106-02-07 on */
    uint16_t status;
    bool no_stale;
    bool always_revalidate;
    bool dirty; /* a queued write-behind write, not yet confirmed by the origin (tier.h) */
};

/* What an entry is built from. */
struct st_entry_init {
    const char *key;
    size_t key_len;
    const struct st_headers *req;  /* for the Vary values */
    const struct st_headers *resp; /* stored headers (filtered here) */
    int status;
    const char *reason;
    size_t reason_len;
    const char *body;
    size_t body_len;
    int64_t stored_ms, initial_age_ms, lifetime_ms, swr_ms, sie_ms;
    bool no_stale, always_revalidate, dirty;
};

/* Build an entry (one reference, not yet published). NULL when Vary has too many headers. */
struct st_entry *st_entry_new(const struct st_entry_init *in);

static inline struct st_store_item *st_entry_item(const struct st_entry *e)
{
    return st_store_item_of(e);
}

static inline struct st_entry *st_entry_of(const struct st_store_item *it)
{
    return it ? (struct st_entry *)st_store_item_user(it) : NULL;
}

static inline struct st_entry *st_entry_ref(struct st_entry *e)
{
    st_store_item_ref(st_entry_item(e));
    return e;
}

/* NULL is a no-op. */
static inline void st_entry_unref(struct st_entry *e)
{
    if (e)
        st_store_item_unref(st_entry_item(e));
}

/* The key (NUL-terminated). */
static inline const char *st_entry_key(const struct st_entry *e)
{
    return st_store_item_key(st_entry_item(e));
}

static inline size_t st_entry_key_len(const struct st_entry *e)
{
    return st_entry_item(e)->key_len;
}

/* The stored response head: status line + headers, each ending in CRLF, no final CRLF. */
static inline const char *st_entry_head(const struct st_entry *e)
{
    return st_store_item_extra(st_entry_item(e));
}

static inline const char *st_entry_body(const struct st_entry *e)
{
    return st_entry_item(e)->blob;
}

static inline size_t st_entry_body_len(const struct st_entry *e)
{
    return st_entry_item(e)->blob_len;
}

/* Every entry comes from st_entry_new: its extra bytes are the head, the ETag, a NUL. */
static inline size_t st_entry_etag_len(const struct st_entry *e)
{
    return st_entry_item(e)->extra_len - e->head_len - 1;
}

/* The ETag value (NUL-terminated), or NULL when none. */
static inline const char *st_entry_etag(const struct st_entry *e)
{
    return st_entry_etag_len(e) ? st_entry_head(e) + e->head_len : NULL;
}

/* The Surrogate-Key value (space separated), or NULL when none. */
static inline const char *st_entry_tags(const struct st_entry *e)
{
    return st_store_item_tags(st_entry_item(e));
}

/* The entry's age at now (wall ms): its age when stored plus its time in the cache. */
static inline int64_t st_entry_age_ms(const struct st_entry *e, int64_t now)
{
    int64_t resident = now - e->stored_ms;
    return e->initial_age_ms + (resident > 0 ? resident : 0);
}

/* Last-Modified in ms since the epoch, -1 when none. */
static inline int64_t st_entry_last_modified_ms(const struct st_entry *e)
{
    return e->last_modified_s == UINT32_MAX ? -1 : (int64_t)e->last_modified_s * 1000;
}

/*
 * The wire form of an entry (the L2 tier's values): a format version byte,
 * the record, the part lengths, the key, variant, tags, extra bytes and body,
 * and an XXH3 checksum of all of it. Little-endian, fixed layout.
 */
#define ST_ENTRY_WIRE_VERSION 1

/* Append e's wire form to out. */
void st_entry_encode(const struct st_entry *e, struct st_sb *out);

/*
 * An entry (one reference, not published) from its wire form. -EPROTO: another
 * format version; -EBADMSG: truncated, inconsistent or failing its checksum.
 */
int st_entry_decode(const char *p, size_t len, struct st_entry **out);

/*
 * Do the request's values for the item's Vary headers equal those it was
 * stored for? A st_store_match_cb; arg is the request's struct st_headers.
 */
bool st_entry_vary_matches(const struct st_store_item *it, const void *req_headers);

#endif
