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
    st_http_add_status_line(sb, 304, NULL, 0);
    for (size_t i = 0; i < h.n; i++) {
        const struct st_hdr *f = &h.v[i];
        for (int k = 0; keep[k]; k++) {
            if (st_name_eq(st_hdr_name(&h, f), f->name_len, keep[k]))
                st_http_add_field(sb, &h, f);
        }
    }
    st_headers_finish(&h);
}

/* Age, Cache-Status, Via, X-Request-Id, Connection and the blank line, copied into w. */
static void add_tail(struct st_exchange *x, struct st_wreq *w, struct st_fbuf *f, int64_t age_s)
{
    st_fbuf_adds(f, "Age: ");
    st_fbuf_i64(f, age_s);
    st_fbuf_adds(f, "\r\nCache-Status: ");
    st_fbuf_adds(f, x->cache_status);
    st_fbuf_adds(f, "\r\nVia: 1.1 strata\r\nX-Request-Id: ");
    st_fbuf_adds(f, x->id);
    if (x->extra_head) {
        st_fbuf_adds(f, "\r\n");
        st_fbuf_add(f, x->extra_head, strlen(x->extra_head) - 2); /* its last CRLF: below */
    }
    if (x->keep_alive)
        st_fbuf_adds(f, "\r\nConnection: keep-alive\r\n\r\n");
    else
        st_fbuf_adds(f, "\r\nConnection: close\r\n\r\n");
    ST_CHECK(f->len <= f->cap); /* id <= 128, cache status < 192 and extra < 224 bytes fit */
    st_wreq_add_copy(w, f->p, f->len);
}

/* An answer whose head strata built in head: it, then the tail; the batch, for a body. */
static struct st_wreq *own_head(struct st_exchange *x, struct st_sb *head, int64_t age_s)
{
    struct st_wreq *w = st_exchange__out_room(x, 4, 0);
    size_t len;
    char *p = st_sb_take(head, &len);
    st_wreq_add_owned(w, p, len);
    char tail[ST_WREQ_SMALL];
    struct st_fbuf f = {tail, 0, sizeof(tail)};
    add_tail(x, w, &f, age_s);
    return w;
}

/* The answer is gathered: count it, send it (pinning entry pin if it must wait), end. */
static void answer(struct st_exchange *x, struct st_entry *pin)
{
    st_stats_count_status(&x->w->stats, x->status);
    st_exchange__send_out(x, pin);
    st_exchange__finish(x);
}

/* The stored head's header lines (after its status line), as stored. */
static void add_stored_fields(struct st_sb *sb, const struct st_entry *e)
{
    const char *head = st_entry_head(e);
    const char *eol = memmem(head, e->head_len, "\r\n", 2);
    if (eol)
        st_sb_add(sb, eol + 2, e->head_len - (size_t)(eol + 2 - head));
}

/* The stored header lines but Content-Type, whose value goes to type (multipart answers). */
static void add_fields_but_type(struct st_sb *sb, const struct st_entry *e, struct st_sb *type)
{
    struct st_headers h;
    st_headers_init(&h);
    st_headers_parse_head(&h, st_entry_head(e), e->head_len);
    for (size_t i = 0; i < h.n; i++) {
        const struct st_hdr *f = &h.v[i];
        if (!st_name_eq(st_hdr_name(&h, f), f->name_len, "content-type"))
            st_http_add_field(sb, &h, f);
        else if (type->len == 0)
            st_sb_add(type, st_hdr_value(&h, f), f->value_len);
    }
    st_headers_finish(&h);
}

/* The multipart/byteranges body of ranges r of e, with the boundary x->id. */
static void multipart_body(struct st_exchange *x, struct st_entry *e, const struct st_range *r,
                           size_t n, const struct st_sb *type, struct st_sb *body)
{
    uint64_t total = st_entry_body_len(e);
    for (size_t i = 0; i < n; i++) {
        st_sb_addf(body, "\r\n--%.40s\r\n", x->id);
        if (type->len)
            st_sb_addf(body, "Content-Type: %.*s\r\n", (int)type->len, type->p);
        st_sb_addf(body, "Content-Range: bytes %llu-%llu/%llu\r\n\r\n",
                   (unsigned long long)r[i].first, (unsigned long long)r[i].last,
                   (unsigned long long)total);
        st_sb_add(body, st_entry_body(e) + r[i].first, r[i].last - r[i].first + 1);
    }
    st_sb_addf(body, "\r\n--%.40s--\r\n", x->id);
}

/* 206: one range as a slice of the entry's body, several as multipart/byteranges. */
static void serve_ranges(struct st_exchange *x, struct st_entry *e, int64_t age_s,
                         const struct st_range *r, size_t n)
{
    struct st_sb sb;
    st_sb_init(&sb, 512);
    st_http_add_status_line(&sb, 206, NULL, 0);
    x->status = 206;
    if (n == 1) {
        uint64_t len = r[0].last - r[0].first + 1;
        add_stored_fields(&sb, e);
        st_sb_addf(&sb, "Content-Range: bytes %llu-%llu/%llu\r\nContent-Length: %llu\r\n",
                   (unsigned long long)r[0].first, (unsigned long long)r[0].last,
                   (unsigned long long)st_entry_body_len(e), (unsigned long long)len);
        struct st_wreq *w = own_head(x, &sb, age_s);
        if (!x->head_request) {
            x->body_bytes = len;
            st_wreq_add_static(w, st_entry_body(e) + r[0].first, len);
        }
        answer(x, x->head_request ? NULL : e);
        return;
    }
    struct st_sb type, body;
    st_sb_init(&type, 64);
    st_sb_init(&body, 256);
    add_fields_but_type(&sb, e, &type);
    multipart_body(x, e, r, n, &type, &body);
    st_sb_addf(&sb, "Content-Type: multipart/byteranges; boundary=%.40s\r\nContent-Length: %zu\r\n",
               x->id, body.len);
    own_head(x, &sb, age_s);
    if (!x->head_request) {
        x->body_bytes = body.len;
        st_exchange__flush_out(x); /* one owned block per batch: the head's, then the body's */
        size_t blen;
        char *bp = st_sb_take(&body, &blen);
        st_wreq_add_owned(st_exchange__out_room(x, 1, 0), bp, blen);
    }
    st_sb_finish(&body);
    st_sb_finish(&type);
    answer(x, NULL);
}

/* 416: no range of the request is in the entry's body. */
static void serve_unsatisfiable(struct st_exchange *x, struct st_entry *e, int64_t age_s)
{
    struct st_sb sb;
    st_sb_init(&sb, 256);
    st_http_add_status_line(&sb, 416, NULL, 0);
    st_sb_addf(&sb, "Content-Range: bytes */%llu\r\nContent-Length: 0\r\n",
               (unsigned long long)st_entry_body_len(e));
    x->status = 416;
    own_head(x, &sb, age_s);
    answer(x, NULL);
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
    if (not_modified) {
        struct st_sb sb;
        st_sb_init(&sb, 256);
        add_not_modified_head(&sb, e);
        x->status = 304;
        own_head(x, &sb, age_s);
        answer(x, NULL);
        return;
    }
    x->status = e->status;
    struct st_wreq *w = st_exchange__out_room(x, 4, 0);
    char tail[ST_WREQ_SMALL];
    struct st_fbuf f = {tail, 0, sizeof(tail)};
    st_wreq_add_static(w, st_entry_head(e), e->head_len);
    st_fbuf_adds(&f, "Content-Length: ");
    st_fbuf_i64(&f, (int64_t)st_entry_body_len(e));
    st_fbuf_add(&f, "\r\n", 2);
    if (!x->head_request && e->status != 204 && e->status != 304)
        x->body_bytes = st_entry_body_len(e);
    add_tail(x, w, &f, age_s);
    if (x->body_bytes)
        st_wreq_add_static(w, st_entry_body(e), st_entry_body_len(e));
    answer(x, e);
}
