/*
 * buf.c - reference-counted read buffers, write requests, string builder.
 */
#include "base/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"

struct st_rbuf *st_rbuf_new(size_t cap)
{
    struct st_rbuf *b = st_xmalloc(sizeof(*b) + cap);
    b->refs = 1;
    b->cap = cap;
    b->start = 0;
    b->end = 0;
    return b;
}

struct st_rbuf *st_rbuf_ref(struct st_rbuf *b)
{
    b->refs++;
    return b;
}

void st_rbuf_unref(struct st_rbuf *b)
{
    if (!b)
        return;
    ST_CHECK(b->refs > 0);
    if (--b->refs == 0)
        free(b);
}

void st_rbuf_reserve(struct st_rbuf **bp, size_t want)
{
    struct st_rbuf *b = *bp;
    size_t pending = b->end - b->start;
    if (b->cap - b->end >= want)
        return;
    if (b->refs == 1 && b->cap - pending >= want) {
        memmove(b->data, b->data + b->start, pending);
        b->start = 0;
        b->end = pending;
        return;
    }
    size_t cap = b->cap;
    while (cap - pending < want)
        cap *= 2;
    struct st_rbuf *nb = st_rbuf_new(cap);
    memcpy(nb->data, b->data + b->start, pending);
    nb->end = pending;
    st_rbuf_unref(b);
    *bp = nb;
}

/*
 * Freed wreqs are kept per thread for reuse (a response or an upload piece
 * each needs one): a wreq is always freed on the thread that made it, its
 * connection's loop, so no locking is needed.
 */
#define WREQ_CACHE_MAX 64
static _Thread_local struct st_wreq *wreq_cache[WREQ_CACHE_MAX];
static _Thread_local unsigned wreq_cached;

void st_wreq_cache_drain(void)
{
    while (wreq_cached)
        free(wreq_cache[--wreq_cached]);
}

struct st_wreq *st_wreq_new(void)
{
    struct st_wreq *w = wreq_cached ? wreq_cache[--wreq_cached] : st_xmalloc(sizeof(*w));
    w->nbufs = 0;
    w->nrefs = 0;
    w->bytes = 0;
    w->owned = NULL;
    w->held = NULL;
    w->release = NULL;
    w->small_used = 0;
    w->req.data = NULL;
    return w;
}

void st_wreq_free(struct st_wreq *w)
{
    if (!w)
        return;
    for (unsigned i = 0; i < w->nrefs; i++)
        st_rbuf_unref(w->refs[i]);
    free(w->owned);
    if (w->held)
        w->release(w->held);
    if (wreq_cached < WREQ_CACHE_MAX)
        wreq_cache[wreq_cached++] = w;
    else
        free(w);
}

int st_wreq_fits(const struct st_wreq *w, unsigned nbufs, size_t small)
{
    return w->nbufs + nbufs <= ST_WREQ_MAX_BUFS && w->small_used + small <= ST_WREQ_SMALL;
}

static void add_buf(struct st_wreq *w, const char *p, size_t len)
{
    ST_CHECK(w->nbufs < ST_WREQ_MAX_BUFS);
    /* Adjacent pieces of one buffer (a slice right after the previous one) merge. */
    if (w->nbufs > 0) {
        uv_buf_t *last = &w->bufs[w->nbufs - 1];
        if (last->base + last->len == p) {
            last->len += len;
            w->bytes += len;
            return;
        }
    }
    w->bufs[w->nbufs++] = uv_buf_init((char *)p, (unsigned)len);
    w->bytes += len;
}

void st_wreq_add_slice(struct st_wreq *w, struct st_rbuf *b, const char *p, size_t len)
{
    if (len == 0)
        return;
    if (w->nrefs == 0 || w->refs[w->nrefs - 1] != b) {
        ST_CHECK(w->nrefs < ST_WREQ_MAX_BUFS);
        w->refs[w->nrefs++] = st_rbuf_ref(b);
    }
    add_buf(w, p, len);
}

void st_wreq_add_copy(struct st_wreq *w, const char *p, size_t len)
{
    ST_CHECK(w->small_used + len <= ST_WREQ_SMALL);
    char *dst = w->small + w->small_used;
    memcpy(dst, p, len);
    w->small_used += len;
    add_buf(w, dst, len);
}

void st_wreq_add_owned(struct st_wreq *w, char *p, size_t len)
{
    ST_CHECK(w->owned == NULL);
    w->owned = p;
    add_buf(w, p, len);
}

void st_wreq_add_static(struct st_wreq *w, const char *p, size_t len)
{
    add_buf(w, p, len);
}

void st_wreq_hold(struct st_wreq *w, void *obj, void (*release)(void *))
{
    ST_CHECK(w->held == NULL);
    w->held = obj;
    w->release = release;
}

/* Digits of u in base 10 or 16 (lowercase) into out; returns the length. */
static size_t fmt_u64(char *out, uint64_t u, unsigned base)
{
    static const char digits[] = "0123456789abcdef";
    char tmp[24];
    size_t n = 0, len = 0;
    do {
        tmp[n++] = digits[u % base];
        u /= base;
    } while (u);
    while (n)
        out[len++] = tmp[--n];
    return len;
}

size_t st_fmt_i64(char *out, int64_t v)
{
    if (v >= 0)
        return fmt_u64(out, (uint64_t)v, 10);
    out[0] = '-';
    return 1 + fmt_u64(out + 1, (uint64_t)0 - (uint64_t)v, 10);
}

size_t st_fmt_hex(char *out, uint64_t v)
{
    return fmt_u64(out, v, 16);
}

void st_sb_init(struct st_sb *sb, size_t cap)
{
    sb->cap = cap ? cap : 64;
    sb->p = st_xmalloc(sb->cap);
    sb->len = 0;
    sb->p[0] = '\0';
}

void st_sb_finish(struct st_sb *sb)
{
    free(sb->p);
    sb->p = NULL;
    sb->len = sb->cap = 0;
}

static void sb_grow(struct st_sb *sb, size_t more)
{
    if (sb->len + more + 1 <= sb->cap)
        return;
    while (sb->len + more + 1 > sb->cap)
        sb->cap *= 2;
    sb->p = st_xrealloc(sb->p, sb->cap);
}

void st_sb_add(struct st_sb *sb, const char *p, size_t len)
{
    sb_grow(sb, len);
    memcpy(sb->p + sb->len, p, len);
    sb->len += len;
    sb->p[sb->len] = '\0';
}

void st_sb_adds(struct st_sb *sb, const char *s)
{
    st_sb_add(sb, s, strlen(s));
}

void st_sb_addf(struct st_sb *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[256];
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof(tmp)) {
        st_sb_add(sb, tmp, (size_t)n);
        return;
    }
    sb_grow(sb, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(sb->p + sb->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb->len += (size_t)n;
}

void st_sb_add_json_str(struct st_sb *sb, const char *s, size_t len)
{
    st_sb_add(sb, "\"", 1);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            st_sb_add(sb, esc, 2);
        } else if (c < 0x20 || c == 0x7f) {
            st_sb_addf(sb, "\\u%04x", c);
        } else {
            st_sb_add(sb, (const char *)&s[i], 1);
        }
    }
    st_sb_add(sb, "\"", 1);
}

char *st_sb_take(struct st_sb *sb, size_t *len)
{
    char *p = sb->p;
    if (len)
        *len = sb->len;
    sb->p = NULL;
    sb->len = sb->cap = 0;
    return p;
}
