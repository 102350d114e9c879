/*
 * buf.h - the byte buffers of the data path.
 *
 * st_rbuf: a reference-counted read buffer. A connection reads into one; the
 * parser's spans point into it, and a body slice queued for writing to the
 * other side holds a reference instead of copying the bytes. The buffer is
 * freed when its last reference goes. Only one thread ever touches a given
 * rbuf (a connection and its peers live on one loop), so the count is plain.
 *
 * st_wreq: one uv_write of up to ST_WREQ_MAX_BUFS pieces: slices of rbufs
 * (referenced), small copied bytes (chunk size lines), and at most one heap
 * block (a serialized head) that the wreq owns and frees.
 *
 * st_sb: a growable string builder for heads and JSON.
 */
#ifndef ST_BUF_H
#define ST_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <uv.h>

#define ST_RBUF_SIZE (64 * 1024)
#define ST_WREQ_MAX_BUFS 32
#define ST_WREQ_SMALL 768

struct st_rbuf {
    unsigned refs;
    size_t cap;
    size_t start; /* first unconsumed byte */
    size_t end;   /* one past the last byte read */
    char data[];
};

/* New buffer with one reference held by the caller. */
struct st_rbuf *st_rbuf_new(size_t cap);
struct st_rbuf *st_rbuf_ref(struct st_rbuf *b);
/* Drop a reference; frees at zero. NULL is a no-op. */
void st_rbuf_unref(struct st_rbuf *b);
/*
 * Make room for at least `want` bytes after end, for the owner whose
 * reference is *bp: compacts in place when nobody else holds the buffer,
 * else moves the unconsumed bytes into a fresh buffer and drops the old ref.
 */
void st_rbuf_reserve(struct st_rbuf **bp, size_t want);

struct st_wreq {
    uv_write_t req; /* req.data is free for the sender */
    unsigned nbufs;
    unsigned nrefs;
    size_t bytes;
    uv_buf_t bufs[ST_WREQ_MAX_BUFS];
    struct st_rbuf *refs[ST_WREQ_MAX_BUFS];
    char *owned; /* heap block freed with the wreq */
    void *held;  /* an object kept alive while the write is in flight */
    void (*release)(void *held);
    size_t small_used;
    char small[ST_WREQ_SMALL];
};

struct st_wreq *st_wreq_new(void);
/* Free the calling thread's cache of spare wreqs (at thread exit). */
void st_wreq_cache_drain(void);
/* Free the wreq and drop every reference it holds. NULL is a no-op. */
void st_wreq_free(struct st_wreq *w);
/* Room for `nbufs` more pieces and `small` more copied bytes? */
int st_wreq_fits(const struct st_wreq *w, unsigned nbufs, size_t small);
/* Add a slice of b (takes a new reference). */
void st_wreq_add_slice(struct st_wreq *w, struct st_rbuf *b, const char *p, size_t len);
/* Add bytes copied into the wreq's small area (must fit: see st_wreq_fits). */
void st_wreq_add_copy(struct st_wreq *w, const char *p, size_t len);
/* Add a heap block the wreq takes ownership of (at most one per wreq). */
void st_wreq_add_owned(struct st_wreq *w, char *p, size_t len);
/* Add bytes that live at least as long as the process (string literals). */
void st_wreq_add_static(struct st_wreq *w, const char *p, size_t len);
/*
 * Keep obj alive until the write completes: release(obj) runs when the wreq
 * is freed. At most one per wreq; bytes of obj are then added with
 * st_wreq_add_static.
 */
void st_wreq_hold(struct st_wreq *w, void *obj, void (*release)(void *));

/* Decimal digits of v into out (at least 21 bytes); returns the length, no NUL. */
size_t st_fmt_i64(char *out, int64_t v);
/* Lowercase hex digits of v into out (at least 16 bytes); returns the length, no NUL. */
size_t st_fmt_hex(char *out, uint64_t v);

/*
 * Append to a fixed buffer without overflowing it: each call copies what
 * fits and the final length says whether all did (len <= cap).
 */
struct st_fbuf {
    char *p;
    size_t len, cap;
};

static inline void st_fbuf_add(struct st_fbuf *f, const char *s, size_t n)
{
    if (f->len + n <= f->cap)
        memcpy(f->p + f->len, s, n);
    f->len += n;
}

static inline void st_fbuf_adds(struct st_fbuf *f, const char *s)
{
    st_fbuf_add(f, s, strlen(s));
}

static inline void st_fbuf_i64(struct st_fbuf *f, int64_t v)
{
    char d[24];
    st_fbuf_add(f, d, st_fmt_i64(d, v));
}

struct st_sb {
    char *p; /* owned */
    size_t len;
    size_t cap;
};

void st_sb_init(struct st_sb *sb, size_t cap);
void st_sb_finish(struct st_sb *sb);
void st_sb_add(struct st_sb *sb, const char *p, size_t len);
void st_sb_adds(struct st_sb *sb, const char *s);
void st_sb_addf(struct st_sb *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append s as a JSON string literal, quotes included. */
void st_sb_add_json_str(struct st_sb *sb, const char *s, size_t len);
/* Take the buffer out (caller frees); the builder is left empty. */
char *st_sb_take(struct st_sb *sb, size_t *len);

#endif
