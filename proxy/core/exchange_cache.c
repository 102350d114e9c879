/*
 * exchange_cache.c - an exchange answered from a stored entry: the stored
 * head plus the per-answer headers, 304s from the entry's validators, and
 * byte ranges (206, multipart/byteranges, 416) cut from its body.
 */
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "core/exchange_internal.h"
#include "core/worker.h"
#include "http/range.h"
#include "origin/upstream.h"

/* The headers of a 304 (RFC 9110 15.4.5): those a 200 would carry that describe it. */
static void add_not_modified_head(struct st_sb *sb, const struct st_entry *e)
{
    static const char *const keep[] = {"etag", "cache-control",    "expires",       "vary",
                                       "date", "content-location", "last-modified", NULL};
    struct st_headers h;
    st_headers_init(&h);
    st_headers_parse_head(&h, st_entry_head(e), e->head_len);
    st_sb_adds(sb, "HTTP/1.1 304 Not Modified\r\n");
    for (size_t i = 0; i < h.n; i++) {
        const struct st_hdr *f = &h.v[i];
        for (int k = 0; keep[k]; k++) {
            if (!st_name_eq(st_hdr_name(&h, f), f->name_len, keep[k]))
                continue;
            st_sb_add(sb, st_hdr_name(&h, f), f->name_len);
            st_sb_add(sb, ": ", 2);
            st_sb_add(sb, st_hdr_value(&h, f), f->value_len);
            st_sb_add(sb, "\r\n", 2);
        }
    }
    st_headers_finish(&h);
}

/* Age, Cache-Status, Via, X-Request-Id, Connection and the blank line, copied into w. */
static void add_tail(struct st_exchange *x, struct st_wreq *w, struct st_fbuf *f, int64_t age_s)
{
    ST_FBUF_LIT(f, "Age: ");
    st_fbuf_i64(f, age_s);
    ST_FBUF_LIT(f, "\r\nCache-Status: ");
    st_fbuf_adds(f, x->cache_status);
    ST_FBUF_LIT(f, "\r\nVia: 1.1 strata\r\nX-Request-Id: ");
    st_fbuf_adds(f, x->id);
    if (x->keep_alive)
        ST_FBUF_LIT(f, "\r\nConnection: keep-alive\r\n\r\n");
    else
        ST_FBUF_LIT(f, "\r\nConnection: close\r\n\r\n");
    ST_CHECK(f->len <= f->cap); /* id <= 128 and cache status < 192 bytes always fit */
    st_wreq_add_copy(w, f->p, f->len);
}

/* The stored head without its status line, and the headers a part answer replaces. */
static void add_head_without(struct st_sb *sb, const struct st_entry *e, bool drop_type)
{
    struct st_headers h;
    st_headers_init(&h);
    st_headers_parse_head(&h, st_entry_head(e), e->head_len);
    for (size_t i = 0; i < h.n; i++) {
        const struct st_hdr *f = &h.v[i];
        const char *name = st_hdr_name(&h, f);
        if (drop_type && st_name_eq(name, f->name_len, "content-type"))
            continue;
        st_sb_add(sb, name, f->name_len);
        st_sb_add(sb, ": ", 2);
        st_sb_add(sb, st_hdr_value(&h, f), f->value_len);
        st_sb_add(sb, "\r\n", 2);
    }
    st_headers_finish(&h);
}

/* The Content-Type value of the stored head ("" when none), into out. */
static void stored_type(const struct st_entry *e, struct st_sb *out)
{
    struct st_headers h;
    st_headers_init(&h);
    st_headers_parse_head(&h, st_entry_head(e), e->head_len);
    const struct st_hdr *ct = st_headers_get(&h, "content-type");
    if (ct)
        st_sb_add(out, st_hdr_value(&h, ct), ct->value_len);
    st_headers_finish(&h);
}

/* 206: one range as a slice of the entry's body, several as multipart/byteranges. */
static void serve_ranges(struct st_exchange *x, struct st_entry *e, int64_t age_s,
                         const struct st_range *r, size_t n)
{
    uint64_t total = st_entry_body_len(e);
    struct st_sb sb;
    st_sb_init(&sb, 512);
    st_sb_adds(&sb, "HTTP/1.1 206 Partial Content\r\n");
    add_head_without(&sb, e, n > 1);
    struct st_sb body = {0};
    if (n == 1) {
        st_sb_addf(&sb, "Content-Range: bytes %llu-%llu/%llu\r\nContent-Length: %llu\r\n",
                   (unsigned long long)r[0].first, (unsigned long long)r[0].last,
                   (unsigned long long)total, (unsigned long long)(r[0].last - r[0].first + 1));
    } else {
        struct st_sb type;
        st_sb_init(&type, 64);
        stored_type(e, &type);
        st_sb_init(&body, 256);
        for (size_t i = 0; i < n; i++) {
            st_sb_addf(&body, "\r\n--%.40s\r\n", x->id);
            if (type.len)
                st_sb_addf(&body, "Content-Type: %.*s\r\n", (int)type.len, type.p);
            st_sb_addf(&body, "Content-Range: bytes %llu-%llu/%llu\r\n\r\n",
                       (unsigned long long)r[i].first, (unsigned long long)r[i].last,
                       (unsigned long long)total);
            st_sb_add(&body, st_entry_body(e) + r[i].first, r[i].last - r[i].first + 1);
        }
        st_sb_addf(&body, "\r\n--%.40s--\r\n", x->id);
        st_sb_finish(&type);
        st_sb_addf(&sb,
                   "Content-Type: multipart/byteranges; boundary=%.40s\r\n"
                   "Content-Length: %zu\r\n",
                   x->id, body.len);
    }
    x->status = 206;
    struct st_wreq *w = st_exchange__out_room(x, 4, 0);
    size_t len;
    char *p = st_sb_take(&sb, &len);
    st_wreq_add_owned(w, p, len);
    char tail[ST_WREQ_SMALL];
    struct st_fbuf f = {tail, 0, sizeof(tail)};
    add_tail(x, w, &f, age_s);
    struct st_entry *pin = NULL;
    if (!x->head_request && n == 1) {
        x->body_bytes = r[0].last - r[0].first + 1;
        st_wreq_add_static(w, st_entry_body(e) + r[0].first, x->body_bytes);
        pin = e;
    } else if (!x->head_request) {
        x->body_bytes = body.len;
        st_exchange__flush_out(x); /* the head's block and the body's are one owned block each */
        size_t blen;
        char *bp = st_sb_take(&body, &blen);
        st_wreq_add_owned(st_exchange__out_room(x, 1, 0), bp, blen);
    }
    if (body.p)
        st_sb_finish(&body);
    st_stats_count_status(&x->w->stats, x->status);
    st_exchange__send_out(x, pin);
    st_exchange__finish(x);
}

/* 416: no range of the request is in the entry's body. */
static void serve_unsatisfiable(struct st_exchange *x, struct st_entry *e, int64_t age_s)
{
    struct st_sb sb;
    st_sb_init(&sb, 256);
    st_sb_addf(&sb,
               "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */%llu\r\n"
               "Content-Length: 0\r\n",
               (unsigned long long)st_entry_body_len(e));
    x->status = 416;
    struct st_wreq *w = st_exchange__out_room(x, 2, 0);
    size_t len;
    char *p = st_sb_take(&sb, &len);
    st_wreq_add_owned(w, p, len);
    char tail[ST_WREQ_SMALL];
    struct st_fbuf f = {tail, 0, sizeof(tail)};
    add_tail(x, w, &f, age_s);
    st_stats_count_status(&x->w->stats, x->status);
    st_exchange__send_out(x, NULL);
    st_exchange__finish(x);
}

/* The request's Range applied to e: NONE for the whole entry (no Range, If-Range failed). */
static enum st_range_result ranges_of(const struct st_exchange *x, const struct st_entry *e,
                                      struct st_range r[ST_RANGE_MAX], size_t *n)
{
    const struct st_hdr *rh = st_headers_get(x->req.headers, "range");
    if (!rh || e->status != 200)
        return ST_RANGE_NONE;
    const struct st_hdr *ir = st_headers_get(x->req.headers, "if-range");
    if (ir &&
        !st_range_if_range_ok(st_hdr_value(x->req.headers, ir), ir->value_len, st_entry_etag(e),
                              st_entry_etag_len(e), st_entry_last_modified_ms(e)))
        return ST_RANGE_NONE;
    return st_range_parse(st_hdr_value(x->req.headers, rh), rh->value_len, st_entry_body_len(e), r,
                          n);
}

void st_exchange_serve_entry(struct st_exchange *x, struct st_entry *e, int64_t age_s,
                             bool not_modified)
{
    if (x->up) {
        st_upstream_abort(x->up);
        x->up = NULL;
    }
    if (!x->client) {
        st_exchange__finish(x);
        return;
    }
    x->keep_alive = x->client_keep_alive && !st_worker_draining(x->w);
    x->from_cache = true;
    x->phase = PH_RESPONDING;
    if (!not_modified) {
        struct st_range r[ST_RANGE_MAX];
        size_t n;
        enum st_range_result rr = ranges_of(x, e, r, &n);
        if (rr == ST_RANGE_OK) {
            serve_ranges(x, e, age_s, r, n);
            return;
        }
        if (rr == ST_RANGE_UNSATISFIABLE) {
            serve_unsatisfiable(x, e, age_s);
            return;
        }
    }
    x->status = not_modified ? 304 : e->status;
    struct st_wreq *w = st_exchange__out_room(x, 4, 0);
    char tail[ST_WREQ_SMALL];
    struct st_fbuf f = {tail, 0, sizeof(tail)};
    if (not_modified) {
        struct st_sb sb;
        st_sb_init(&sb, 256);
        add_not_modified_head(&sb, e);
        size_t len;
        char *p = st_sb_take(&sb, &len);
        st_wreq_add_owned(w, p, len);
    } else {
        st_wreq_add_static(w, st_entry_head(e), e->head_len);
        ST_FBUF_LIT(&f, "Content-Length: ");
        st_fbuf_i64(&f, (int64_t)st_entry_body_len(e));
        st_fbuf_add(&f, "\r\n", 2);
        if (!x->head_request && e->status != 204 && e->status != 304)
            x->body_bytes = st_entry_body_len(e);
    }
    add_tail(x, w, &f, age_s);
    if (x->body_bytes)
        st_wreq_add_static(w, st_entry_body(e), st_entry_body_len(e));
    st_stats_count_status(&x->w->stats, x->status);
    st_exchange__send_out(x, not_modified ? NULL : e);
    st_exchange__finish(x);
}
