/*
 * entry.c - entry encoding: which response headers are stored, the
 * serialized head, the Vary variant and its matching, validators.
 * See entry.h for the layout.
 */
#include "cache/entry.h"

#include <errno.h>
#include <string.h>
#include <strings.h>
#include <xxhash.h>

#include "base/buf.h"
#include "http/date.h"

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
            if (++n > ST_ENTRY_MAX_VARY)
                return -1;
            for (size_t k = s; k < p; k++) {
                char c = v[k];
                st_sb_add(out, &(char){c >= 'A' && c <= 'Z' ? (char)(c + 32) : c}, 1);
            }
            st_sb_add(out, "", 1);
            st_headers_join(req, v + s, p - s, out);
            st_sb_add(out, "", 1); /* the NUL that ends the value */
        }
    }
    return n;
}

static int32_t clamp_i32(int64_t v)
{
    return v > INT32_MAX ? INT32_MAX : (v < INT32_MIN ? INT32_MIN : (int32_t)v);
}

/* The serialized head (status line + stored headers); sets the ones entries keep apart. */
static void build_head(const struct st_entry_init *in, struct st_sb *head,
                       const struct st_hdr **etag, const struct st_hdr **tags,
                       const struct st_hdr **last_modified)
{
    st_http_add_status_line(head, in->status, in->reason, in->reason_len);
    *etag = *tags = *last_modified = NULL;
    for (size_t i = 0; i < in->resp->n; i++) {
        const struct st_hdr *e = &in->resp->v[i];
        if (!stored_header(in->resp, e))
            continue;
        const char *name = st_hdr_name(in->resp, e);
        if (st_name_eq(name, e->name_len, "etag"))
            *etag = e;
        if (st_name_eq(name, e->name_len, "surrogate-key"))
            *tags = e;
        if (!*last_modified && st_name_eq(name, e->name_len, "last-modified"))
            *last_modified = e; /* the first, as st_headers_get() and freshness.c read it */
        st_http_add_field(head, in->resp, e);
    }
}

/* Last-Modified as whole seconds, UINT32_MAX when absent or out of range. */
static uint32_t last_modified_s(const struct st_headers *resp, const struct st_hdr *lm)
{
    if (!lm)
        return UINT32_MAX;
    int64_t ms = st_http_date_parse(st_hdr_value(resp, lm), lm->value_len);
    return ms >= 0 && ms / 1000 < UINT32_MAX ? (uint32_t)(ms / 1000) : UINT32_MAX;
}

static void set_record(struct st_entry *e, const struct st_entry_init *in, size_t head_len,
                       uint32_t lm_s)
{
    e->stored_ms = in->stored_ms;
    e->lifetime_ms = in->lifetime_ms;
    e->initial_age_ms = clamp_i32(in->initial_age_ms);
    e->swr_ms = clamp_i32(in->swr_ms);
    e->sie_ms = clamp_i32(in->sie_ms);
    e->head_len = (uint32_t)head_len;
    e->last_modified_s = lm_s;
    e->status = (uint16_t)in->status;
    e->no_stale = in->no_stale;
    e->always_revalidate = in->always_revalidate;
    e->dirty = in->dirty;
}

struct st_entry *st_entry_new(const struct st_entry_init *in)
{
    struct st_sb head, vary;
    st_sb_init(&head, 512);
    st_sb_init(&vary, 64);
    struct st_store_item *it = NULL;
    if (build_vary(in->req, in->resp, &vary) < 0)
        goto out;
    const struct st_hdr *etag, *tags, *lm;
    build_head(in, &head, &etag, &tags, &lm);
    size_t etag_len = etag ? etag->value_len : 0;
    if (head.len > UINT32_MAX / 2 || etag_len >= UINT16_MAX)
        goto out;
    struct st_store_item_init si = {
        .key = in->key,
        .key_len = in->key_len,
        .variant = vary.p,
        .variant_len = vary.len,
        .tags = tags ? st_hdr_value(in->resp, tags) : NULL,
        .tags_len = tags ? tags->value_len : 0,
        .user_size = sizeof(struct st_entry),
        .extra_len = head.len + etag_len + 1,
        .blob = in->body,
        .blob_len = in->body_len,
    };
    it = st_store_item_new(&si);
    if (!it)
        goto out;
    char *extra = st_store_item_extra(it);
    memcpy(extra, head.p, head.len);
    if (etag_len)
        memcpy(extra + head.len, st_hdr_value(in->resp, etag), etag_len);
    extra[head.len + etag_len] = '\0';
    set_record(st_entry_of(it), in, head.len, last_modified_s(in->resp, lm));
out:
    st_sb_finish(&head);
    st_sb_finish(&vary);
    return st_entry_of(it);
}

/*
 * Is the request's value for header `name` (every line, joined by ", " as
 * build_vary() stores it with st_headers_join()) equal to want (wlen bytes)?
 * Compared in place: this runs on the hit path of every Vary'd entry (Vary:
 * Accept-Encoding is common).
 */
static bool vary_value_is(const struct st_headers *req, const char *name, size_t len,
                          const char *want, size_t wlen)
{
    size_t i = 0;
    const struct st_hdr *e;
    for (bool first = true; (e = st_headers_next(req, name, len, &i)) != NULL; first = false) {
        if (!first) {
            if (wlen < 2 || want[0] != ',' || want[1] != ' ')
                return false;
            want += 2;
            wlen -= 2;
        }
        if (wlen < e->value_len || memcmp(want, st_hdr_value(req, e), e->value_len) != 0)
            return false;
        want += e->value_len;
        wlen -= e->value_len;
    }
    return wlen == 0;
}

/*
 * The variant is "name\0value\0" pairs; every read stays inside it, even if a
 * value held a NUL of its own (then the pairs no longer line up: no match).
 */
bool st_entry_vary_matches(const struct st_store_item *it, const void *req_headers)
{
    const struct st_headers *req = req_headers;
    const char *p = st_store_item_variant(it), *end = p + it->variant_len;
    while (p < end) {
        size_t nlen = strnlen(p, (size_t)(end - p));
        const char *val = p + nlen + 1;
        if (val >= end)
            return false;
        size_t vlen = strnlen(val, (size_t)(end - val));
        if (!vary_value_is(req, p, nlen, val, vlen))
            return false;
        p = val + vlen + 1;
    }
    return true;
}

/* --- wire form --- */

enum { WIRE_FIXED = 1 + 8 + 8 + 4 * 5 + 2 + 2 + 4 * 5, WIRE_SUM = 8 };

static void put_u(struct st_sb *out, uint64_t v, unsigned bytes)
{
    char b[8];
    for (unsigned i = 0; i < bytes; i++)
        b[i] = (char)(v >> (8 * i));
    st_sb_add(out, b, bytes);
}

static uint64_t get_u(const char **p, unsigned bytes)
{
    const unsigned char *q = (const unsigned char *)*p;
    uint64_t v = 0;
    for (unsigned i = 0; i < bytes; i++)
        v |= (uint64_t)q[i] << (8 * i);
    *p += bytes;
    return v;
}

void st_entry_encode(const struct st_entry *e, struct st_sb *out)
{
    const struct st_store_item *it = st_entry_item(e);
    size_t start = out->len;
    put_u(out, ST_ENTRY_WIRE_VERSION, 1);
    put_u(out, (uint64_t)e->stored_ms, 8);
    put_u(out, (uint64_t)e->lifetime_ms, 8);
    put_u(out, (uint32_t)e->initial_age_ms, 4);
    put_u(out, (uint32_t)e->swr_ms, 4);
    put_u(out, (uint32_t)e->sie_ms, 4);
    put_u(out, e->head_len, 4);
    put_u(out, e->last_modified_s, 4);
    put_u(out, e->status, 2);
    put_u(out, (unsigned)e->no_stale | (unsigned)e->always_revalidate << 1 | (unsigned)e->dirty << 2,
          2);
    put_u(out, it->key_len, 4);
    put_u(out, it->variant_len, 4);
    put_u(out, it->tags_len, 4);
    put_u(out, it->extra_len, 4);
    put_u(out, it->blob_len, 4);
    st_sb_add(out, st_store_item_key(it), it->key_len);
    st_sb_add(out, st_store_item_variant(it), it->variant_len);
    st_sb_add(out, st_store_item_tags(it) ? st_store_item_tags(it) : "", it->tags_len);
    st_sb_add(out, st_store_item_extra(it), it->extra_len);
    st_sb_add(out, it->blob, it->blob_len);
    put_u(out, XXH3_64bits(out->p + start, out->len - start), 8);
}

int st_entry_decode(const char *p, size_t len, struct st_entry **out)
{
    *out = NULL;
    if (len < 1)
        return -EBADMSG;
    if ((unsigned char)p[0] != ST_ENTRY_WIRE_VERSION)
        return -EPROTO;
    if (len < WIRE_FIXED + WIRE_SUM)
        return -EBADMSG;
    const char *end = p + len - WIRE_SUM, *q = end;
    if (get_u(&q, 8) != XXH3_64bits(p, len - WIRE_SUM))
        return -EBADMSG;
    q = p + 1;
    struct st_entry r = {0};
    r.stored_ms = (int64_t)get_u(&q, 8);
    r.lifetime_ms = (int64_t)get_u(&q, 8);
    r.initial_age_ms = (int32_t)get_u(&q, 4);
    r.swr_ms = (int32_t)get_u(&q, 4);
    r.sie_ms = (int32_t)get_u(&q, 4);
    r.head_len = (uint32_t)get_u(&q, 4);
    r.last_modified_s = (uint32_t)get_u(&q, 4);
    r.status = (uint16_t)get_u(&q, 2);
    unsigned flags = (unsigned)get_u(&q, 2);
    r.no_stale = flags & 1;
    r.always_revalidate = flags & 2;
    r.dirty = flags & 4;
    uint64_t lens[5], total = 0;
    for (int i = 0; i < 5; i++)
        total += lens[i] = get_u(&q, 4);
    /* extra = head, ETag, NUL: the head must fit and the last byte must be the NUL */
    if (total != (uint64_t)(end - q) || lens[3] < (uint64_t)r.head_len + 1 ||
        q[lens[0] + lens[1] + lens[2] + lens[3] - 1] != '\0' || lens[0] == 0)
        return -EBADMSG;
    struct st_store_item_init si = {
        .key = q,
        .key_len = lens[0],
        .variant = q + lens[0],
        .variant_len = lens[1],
        .tags = lens[2] ? q + lens[0] + lens[1] : NULL,
        .tags_len = lens[2],
        .user_size = sizeof(struct st_entry),
        .extra_len = lens[3],
        .blob = q + lens[0] + lens[1] + lens[2] + lens[3],
        .blob_len = lens[4],
    };
    struct st_store_item *it = st_store_item_new(&si);
    if (!it)
        return -EBADMSG;
    memcpy(st_store_item_extra(it), q + lens[0] + lens[1] + lens[2], lens[3]);
    *st_entry_of(it) = r;
    *out = st_entry_of(it);
    return 0;
}
