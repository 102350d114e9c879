/*
 * test_buf.c - the data path's byte buffers: reference-counted read buffers
 * and their reserve (compaction in place vs. moving to a fresh buffer),
 * write requests (slices, copies, owned and static pieces, held objects),
 * the integer formatters, the fixed append buffer and the string builder.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/buf.h"

/* Put s into b's data as freshly read bytes [0, len) and mark [start, len) unconsumed. */
static void fill(struct st_rbuf *b, const char *s, size_t start)
{
    size_t n = strlen(s);
    memcpy(b->data, s, n);
    b->start = start;
    b->end = n;
}

/* ---- st_rbuf ------------------------------------------------------------ */

static void test_rbuf_new_ref_unref(void **state)
{
    (void)state;
    struct st_rbuf *b = st_rbuf_new(100);
    assert_non_null(b);
    assert_int_equal(b->refs, 1);
    assert_int_equal(b->cap, 100);
    assert_int_equal(b->start, 0);
    assert_int_equal(b->end, 0);

    assert_ptr_equal(st_rbuf_ref(b), b);
    assert_int_equal(b->refs, 2);
    assert_ptr_equal(st_rbuf_ref(b), b);
    assert_int_equal(b->refs, 3);
    st_rbuf_unref(b);
    assert_int_equal(b->refs, 2);
    st_rbuf_unref(b);
    assert_int_equal(b->refs, 1);
    st_rbuf_unref(b);    /* frees */
    st_rbuf_unref(NULL); /* no-op */
}

static void test_rbuf_reserve_enough_room_is_noop(void **state)
{
    (void)state;
    struct st_rbuf *b = st_rbuf_new(16);
    struct st_rbuf *orig = b;
    fill(b, "0123456789", 4);
    st_rbuf_reserve(&b, 6); /* exactly the room left */
    assert_ptr_equal(b, orig);
    assert_int_equal(b->start, 4);
    assert_int_equal(b->end, 10);
    assert_int_equal(b->cap, 16);
    assert_memory_equal(b->data, "0123456789", 10);
    st_rbuf_unref(b);
}

static void test_rbuf_reserve_compacts_in_place_when_sole_owner(void **state)
{
    (void)state;
    struct st_rbuf *b = st_rbuf_new(16);
    struct st_rbuf *orig = b;
    fill(b, "0123456789abcdef", 10); /* full; "abcdef" unconsumed */
    st_rbuf_reserve(&b, 8);
    assert_ptr_equal(b, orig);
    assert_int_equal(b->refs, 1);
    assert_int_equal(b->cap, 16);
    assert_int_equal(b->start, 0);
    assert_int_equal(b->end, 6);
    assert_memory_equal(b->data, "abcdef", 6);
    assert_true(b->cap - b->end >= 8);

    /* Exactly cap - pending fits in place too. */
    fill(b, "0123456789abcdef", 6); /* 10 unconsumed, 6 free after compaction */
    st_rbuf_reserve(&b, 6);
    assert_ptr_equal(b, orig);
    assert_int_equal(b->start, 0);
    assert_int_equal(b->end, 10);
    assert_memory_equal(b->data, "6789abcdef", 10);
    st_rbuf_unref(b);
}

static void test_rbuf_reserve_moves_when_shared(void **state)
{
    (void)state;
    struct st_rbuf *b = st_rbuf_new(16);
    fill(b, "0123456789abcdef", 10);
    struct st_rbuf *other = st_rbuf_ref(b); /* e.g. a queued write's slice */
    assert_int_equal(b->refs, 2);

    st_rbuf_reserve(&b, 8);
    assert_ptr_not_equal(b, other);
    /* The new buffer: ours alone, unconsumed bytes at the front. */
    assert_int_equal(b->refs, 1);
    assert_int_equal(b->cap, 16);
    assert_int_equal(b->start, 0);
    assert_int_equal(b->end, 6);
    assert_memory_equal(b->data, "abcdef", 6);
    /* The old one lost our reference and was not touched. */
    assert_int_equal(other->refs, 1);
    assert_int_equal(other->start, 10);
    assert_int_equal(other->end, 16);
    assert_memory_equal(other->data, "0123456789abcdef", 16);

    st_rbuf_unref(other);
    st_rbuf_unref(b);
}

static void test_rbuf_reserve_grows_when_too_small(void **state)
{
    (void)state;
    /* Sole owner, but compaction cannot make room: capacity doubles until it fits. */
    struct st_rbuf *b = st_rbuf_new(16);
    fill(b, "0123456789abcdef", 6); /* 10 unconsumed */
    st_rbuf_reserve(&b, 40);        /* 16 -> 32 (22 free) -> 64 (54 free) */
    assert_int_equal(b->refs, 1);
    assert_int_equal(b->cap, 64);
    assert_int_equal(b->start, 0);
    assert_int_equal(b->end, 10);
    assert_memory_equal(b->data, "6789abcdef", 10);
    st_rbuf_unref(b);

    /* Shared and too small: a fresh, larger buffer; the other holder keeps the old. */
    b = st_rbuf_new(8);
    fill(b, "abcdefgh", 2);
    struct st_rbuf *other = st_rbuf_ref(b);
    st_rbuf_reserve(&b, 10); /* 6 unconsumed: 8 -> 16 (10 free) */
    assert_ptr_not_equal(b, other);
    assert_int_equal(b->cap, 16);
    assert_int_equal(b->end, 6);
    assert_memory_equal(b->data, "cdefgh", 6);
    assert_int_equal(other->refs, 1);
    assert_int_equal(other->cap, 8);
    st_rbuf_unref(other);
    st_rbuf_unref(b);
}

/* ---- st_wreq ------------------------------------------------------------ */

static void test_wreq_new_is_empty(void **state)
{
    (void)state;
    struct st_wreq *w = st_wreq_new();
    assert_non_null(w);
    assert_int_equal(w->nbufs, 0);
    assert_int_equal(w->nrefs, 0);
    assert_int_equal(w->bytes, 0);
    assert_null(w->owned);
    assert_null(w->held);
    assert_null(w->release);
    assert_int_equal(w->small_used, 0);
    assert_null(w->req.data);
    /* Dirty it, free it, and take one again (likely the same, from the cache). */
    st_wreq_add_static(w, "abc", 3);
    st_wreq_add_copy(w, "xy", 2);
    w->req.data = w;
    st_wreq_free(w);
    w = st_wreq_new();
    assert_int_equal(w->nbufs, 0);
    assert_int_equal(w->nrefs, 0);
    assert_int_equal(w->bytes, 0);
    assert_int_equal(w->small_used, 0);
    assert_null(w->req.data);
    st_wreq_free(w);
    st_wreq_free(NULL); /* no-op */
}

static void test_wreq_fits(void **state)
{
    (void)state;
    struct st_wreq *w = st_wreq_new();
    assert_true(st_wreq_fits(w, 0, 0));
    assert_true(st_wreq_fits(w, ST_WREQ_MAX_BUFS, ST_WREQ_SMALL));
    assert_false(st_wreq_fits(w, ST_WREQ_MAX_BUFS + 1, 0));
    assert_false(st_wreq_fits(w, 0, ST_WREQ_SMALL + 1));

    char big[ST_WREQ_SMALL - 12];
    memset(big, 'z', sizeof(big));
    st_wreq_add_copy(w, big, sizeof(big)); /* one piece, 500 small bytes */
    assert_true(st_wreq_fits(w, ST_WREQ_MAX_BUFS - 1, 12));
    assert_false(st_wreq_fits(w, ST_WREQ_MAX_BUFS - 1, 13));
    assert_false(st_wreq_fits(w, ST_WREQ_MAX_BUFS, 0));

    /* Fill the piece slots with non-adjacent static pieces. */
    static const char lit[2 * ST_WREQ_MAX_BUFS] = {0};
    for (unsigned i = 1; i < ST_WREQ_MAX_BUFS; i++)
        st_wreq_add_static(w, lit + 2 * i, 1);
    assert_int_equal(w->nbufs, ST_WREQ_MAX_BUFS);
    assert_true(st_wreq_fits(w, 0, 12));
    assert_false(st_wreq_fits(w, 1, 0));
    st_wreq_free(w);
}

static void test_wreq_slices_take_references(void **state)
{
    (void)state;
    struct st_rbuf *a = st_rbuf_new(64);
    struct st_rbuf *b = st_rbuf_new(64);
    fill(a, "HEAD-body-tail", 0);
    fill(b, "second", 0);

    struct st_wreq *w = st_wreq_new();
    st_wreq_add_slice(w, a, a->data, 4); /* "HEAD" */
    assert_int_equal(a->refs, 2);
    assert_int_equal(w->nrefs, 1);
    assert_int_equal(w->nbufs, 1);

    /* Right after the previous slice of the same buffer: merged, no new ref. */
    st_wreq_add_slice(w, a, a->data + 4, 5); /* "-body" */
    assert_int_equal(a->refs, 2);
    assert_int_equal(w->nrefs, 1);
    assert_int_equal(w->nbufs, 1);
    assert_ptr_equal(w->bufs[0].base, a->data);
    assert_int_equal(w->bufs[0].len, 9);

    /* Same buffer, not adjacent: a new piece, still one ref. */
    st_wreq_add_slice(w, a, a->data + 10, 4); /* "tail" */
    assert_int_equal(a->refs, 2);
    assert_int_equal(w->nrefs, 1);
    assert_int_equal(w->nbufs, 2);
    assert_ptr_equal(w->bufs[1].base, a->data + 10);
    assert_int_equal(w->bufs[1].len, 4);

    /* Another buffer: a second ref. */
    st_wreq_add_slice(w, b, b->data, 6);
    assert_int_equal(b->refs, 2);
    assert_int_equal(w->nrefs, 2);
    assert_int_equal(w->nbufs, 3);
    assert_ptr_equal(w->refs[0], a);
    assert_ptr_equal(w->refs[1], b);

    /* An empty slice adds nothing (and no reference). */
    struct st_rbuf *c = st_rbuf_new(8);
    st_wreq_add_slice(w, c, c->data, 0);
    assert_int_equal(c->refs, 1);
    assert_int_equal(w->nrefs, 2);
    assert_int_equal(w->nbufs, 3);
    assert_int_equal(w->bytes, 9 + 4 + 6);

    /* Freeing the wreq drops exactly its references. */
    st_wreq_free(w);
    assert_int_equal(a->refs, 1);
    assert_int_equal(b->refs, 1);
    st_rbuf_unref(a);
    st_rbuf_unref(b);
    st_rbuf_unref(c);
}

static void test_wreq_copy_owned_static(void **state)
{
    (void)state;
    struct st_wreq *w = st_wreq_new();
    static const char lit[] = "literal";

    char src[8];
    memcpy(src, "1a\r\n", 4);
    st_wreq_add_copy(w, src, 4);
    memset(src, 'X', sizeof(src)); /* the wreq has its own copy */
    assert_int_equal(w->nbufs, 1);
    assert_int_equal(w->small_used, 4);
    assert_ptr_equal(w->bufs[0].base, w->small);
    assert_memory_equal(w->bufs[0].base, "1a\r\n", 4);

    /* A second copy lands right after the first in the small area: merged. */
    st_wreq_add_copy(w, "ok", 2);
    assert_int_equal(w->nbufs, 1);
    assert_int_equal(w->small_used, 6);
    assert_int_equal(w->bufs[0].len, 6);
    assert_memory_equal(w->bufs[0].base, "1a\r\nok", 6);

    st_wreq_add_static(w, lit, 7);
    assert_int_equal(w->nbufs, 2);
    assert_ptr_equal(w->bufs[1].base, lit);
    assert_int_equal(w->bufs[1].len, 7);

    char *heap = malloc(5);
    assert_non_null(heap);
    memcpy(heap, "HTTP/", 5);
    st_wreq_add_owned(w, heap, 5);
    assert_ptr_equal(w->owned, heap);
    assert_int_equal(w->nbufs, 3);
    assert_ptr_equal(w->bufs[2].base, heap);
    assert_int_equal(w->bufs[2].len, 5);

    assert_int_equal(w->bytes, 6 + 7 + 5);
    assert_int_equal(w->nrefs, 0);
    st_wreq_free(w); /* frees heap (a leak checker would notice otherwise) */
}

static int released;
static void *released_obj;

static void release_cb(void *obj)
{
    released++;
    released_obj = obj;
}

static void test_wreq_hold_releases_once_on_free(void **state)
{
    (void)state;
    static char obj[] = "cached body bytes";
    released = 0;
    released_obj = NULL;

    struct st_wreq *w = st_wreq_new();
    st_wreq_hold(w, obj, release_cb);
    assert_ptr_equal(w->held, obj);
    st_wreq_add_static(w, obj, sizeof(obj) - 1);
    assert_int_equal(w->bytes, sizeof(obj) - 1);
    assert_int_equal(released, 0); /* not before the write is done */

    st_wreq_free(w);
    assert_int_equal(released, 1);
    assert_ptr_equal(released_obj, obj);

    /* A recycled wreq does not carry the hold over. */
    w = st_wreq_new();
    assert_null(w->held);
    st_wreq_free(w);
    assert_int_equal(released, 1);
}

/* ---- st_fmt_i64 / st_fmt_hex -------------------------------------------- */

struct i64_case {
    int64_t v;
    const char *want;
};

static void test_fmt_i64(void **state)
{
    (void)state;
    static const struct i64_case cases[] = {
        {0, "0"},
        {7, "7"},
        {10, "10"},
        {-1, "-1"},
        {-10, "-10"},
        {1234567890, "1234567890"},
        {-1234567890, "-1234567890"},
        {INT64_MAX, "9223372036854775807"},
        {INT64_MIN, "-9223372036854775808"},
        {INT64_MIN + 1, "-9223372036854775807"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[32];
        memset(out, '#', sizeof(out));
        size_t n = st_fmt_i64(out, cases[i].v);
        print_message("i64: %s\n", cases[i].want);
        assert_int_equal(n, strlen(cases[i].want));
        assert_memory_equal(out, cases[i].want, n);
        assert_int_equal(out[n], '#'); /* no NUL, nothing past the digits */
    }
}

struct hex_case {
    uint64_t v;
    const char *want;
};

static void test_fmt_hex(void **state)
{
    (void)state;
    static const struct hex_case cases[] = {
        {0, "0"},
        {9, "9"},
        {10, "a"},
        {15, "f"},
        {16, "10"},
        {255, "ff"},
        {0xdeadbeefull, "deadbeef"},
        {0x0123456789abcdefull, "123456789abcdef"},
        {UINT64_MAX, "ffffffffffffffff"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[24];
        memset(out, '#', sizeof(out));
        size_t n = st_fmt_hex(out, cases[i].v);
        print_message("hex: %s\n", cases[i].want);
        assert_int_equal(n, strlen(cases[i].want));
        assert_memory_equal(out, cases[i].want, n);
        assert_int_equal(out[n], '#');
    }
}

/* ---- st_fbuf ------------------------------------------------------------ */

static void test_fbuf_fits(void **state)
{
    (void)state;
    char mem[16];
    memset(mem, '#', sizeof(mem));
    struct st_fbuf f = {mem, 0, 10};
    st_fbuf_adds(&f, "ab");
    st_fbuf_add(&f, "cdef", 4);
    st_fbuf_i64(&f, -42);
    assert_int_equal(f.len, 9);
    assert_memory_equal(mem, "abcdef-42", 9);
    st_fbuf_add(&f, "!", 1); /* exactly to cap */
    assert_int_equal(f.len, 10);
    assert_memory_equal(mem, "abcdef-42!", 10);
    assert_int_equal(mem[10], '#');
    st_fbuf_add(&f, "", 0);
    assert_int_equal(f.len, 10);
}

static void test_fbuf_overflow(void **state)
{
    (void)state;
    char mem[16];
    memset(mem, '#', sizeof(mem));
    /*
     * cap read through a volatile: with all values known at compile time, GCC
     * warns (-Wstringop-overflow) about the memcpy of the branch not taken.
     */
    volatile size_t cap = 8;
    struct st_fbuf f = {mem, 0, cap};
    st_fbuf_adds(&f, "abcdefg"); /* 7 of 8 */
    assert_int_equal(f.len, 7);
    st_fbuf_adds(&f, "hij"); /* would end at 10 > 8 */
    assert_int_equal(f.len, 10);
    st_fbuf_i64(&f, 123456);
    assert_int_equal(f.len, 16);
    st_fbuf_adds(&f, "x");
    assert_int_equal(f.len, 17);
    assert_true(f.len > f.cap); /* the caller's "did not all fit" signal */
    /* What fitted is intact; nothing was written past cap. */
    assert_memory_equal(mem, "abcdefg", 7);
    for (size_t i = f.cap; i < sizeof(mem); i++)
        assert_int_equal(mem[i], '#');
    /* A piece that does not fit whole is not copied partly. */
    assert_int_equal(mem[7], '#');
}

/* ---- st_sb -------------------------------------------------------------- */

static void test_sb_add_and_grow(void **state)
{
    (void)state;
    struct st_sb sb;
    st_sb_init(&sb, 0);
    assert_non_null(sb.p);
    assert_int_equal(sb.cap, 64);
    assert_int_equal(sb.len, 0);
    assert_string_equal(sb.p, "");

    st_sb_adds(&sb, "hello");
    st_sb_add(&sb, ", world", 7);
    assert_int_equal(sb.len, 12);
    assert_string_equal(sb.p, "hello, world");

    /* Past the initial capacity: grows, keeps the content, stays NUL-terminated. */
    char chunk[100];
    memset(chunk, 'q', sizeof(chunk));
    st_sb_add(&sb, chunk, sizeof(chunk));
    assert_int_equal(sb.len, 112);
    assert_true(sb.cap >= 113);
    assert_memory_equal(sb.p, "hello, world", 12);
    assert_memory_equal(sb.p + 12, chunk, sizeof(chunk));
    assert_int_equal(sb.p[112], '\0');

    /* Bytes are taken as given, NULs included. */
    st_sb_add(&sb, "a\0b", 3);
    assert_int_equal(sb.len, 115);
    assert_memory_equal(sb.p + 112, "a\0b", 4);
    st_sb_finish(&sb);
    assert_null(sb.p);
    assert_int_equal(sb.len, 0);
    assert_int_equal(sb.cap, 0);

    st_sb_init(&sb, 4);
    assert_int_equal(sb.cap, 4);
    st_sb_adds(&sb, "abcd"); /* needs 5 with the NUL */
    assert_true(sb.cap >= 5);
    assert_string_equal(sb.p, "abcd");
    st_sb_finish(&sb);
}

static void test_sb_addf(void **state)
{
    (void)state;
    struct st_sb sb;
    st_sb_init(&sb, 8);
    st_sb_addf(&sb, "%d-%s-%04x", 42, "x", 0xabu);
    assert_string_equal(sb.p, "42-x-00ab");
    assert_int_equal(sb.len, 9);
    st_sb_addf(&sb, "%s", "");
    assert_int_equal(sb.len, 9);

    /* Longer than the formatter's stack buffer (256): formatted in place. */
    st_sb_addf(&sb, "[%0300d]", 7);
    assert_int_equal(sb.len, 9 + 302);
    assert_int_equal(strlen(sb.p), sb.len);
    assert_memory_equal(sb.p, "42-x-00ab[", 10);
    for (size_t i = 10; i < 10 + 299; i++)
        assert_int_equal(sb.p[i], '0');
    assert_int_equal(sb.p[309], '7');
    assert_int_equal(sb.p[310], ']');
    st_sb_adds(&sb, "end");
    assert_string_equal(sb.p + 311, "end");
    st_sb_finish(&sb);
}

struct json_case {
    const char *in;
    size_t len;
    const char *want;
};

static void test_sb_add_json_str(void **state)
{
    (void)state;
    static const struct json_case cases[] = {
        {"", 0, "\"\""},
        {"plain text", 10, "\"plain text\""},
        {"say \"hi\"", 8, "\"say \\\"hi\\\"\""},
        {"C:\\dir\\", 7, "\"C:\\\\dir\\\\\""},
        {"a\nb\tc\r", 6, "\"a\\u000ab\\u0009c\\u000d\""},
        {"\x01\x1f\x7f", 3, "\"\\u0001\\u001f\\u007f\""},
        {"nul\0end", 7, "\"nul\\u0000end\""},
        {" ~/", 3, "\" ~/\""},
        {"caf\xc3\xa9", 5, "\"caf\xc3\xa9\""}, /* UTF-8 passes through */
        {"\"\\\b", 3, "\"\\\"\\\\\\u0008\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct st_sb sb;
        st_sb_init(&sb, 2);
        st_sb_adds(&sb, "=");
        st_sb_add_json_str(&sb, cases[i].in, cases[i].len);
        print_message("json: %s\n", cases[i].want);
        assert_string_equal(sb.p + 1, cases[i].want);
        assert_int_equal(sb.len, 1 + strlen(cases[i].want));
        assert_int_equal(sb.p[0], '=');
        st_sb_finish(&sb);
    }
}

static void test_sb_take(void **state)
{
    (void)state;
    struct st_sb sb;
    st_sb_init(&sb, 0);
    st_sb_adds(&sb, "taken");
    char *orig = sb.p;
    size_t len = 0;
    char *p = st_sb_take(&sb, &len);
    assert_ptr_equal(p, orig);
    assert_int_equal(len, 5);
    assert_string_equal(p, "taken");
    assert_null(sb.p);
    assert_int_equal(sb.len, 0);
    assert_int_equal(sb.cap, 0);
    free(p);

    /* len may be NULL; an emptied builder can be initialised again. */
    st_sb_init(&sb, 0);
    st_sb_adds(&sb, "again");
    p = st_sb_take(&sb, NULL);
    assert_string_equal(p, "again");
    assert_null(sb.p);
    free(p);
    st_sb_finish(&sb); /* harmless on a taken builder */
    assert_null(sb.p);
}

static int teardown_group(void **state)
{
    (void)state;
    st_wreq_cache_drain();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rbuf_new_ref_unref),
        cmocka_unit_test(test_rbuf_reserve_enough_room_is_noop),
        cmocka_unit_test(test_rbuf_reserve_compacts_in_place_when_sole_owner),
        cmocka_unit_test(test_rbuf_reserve_moves_when_shared),
        cmocka_unit_test(test_rbuf_reserve_grows_when_too_small),
        cmocka_unit_test(test_wreq_new_is_empty),
        cmocka_unit_test(test_wreq_fits),
        cmocka_unit_test(test_wreq_slices_take_references),
        cmocka_unit_test(test_wreq_copy_owned_static),
        cmocka_unit_test(test_wreq_hold_releases_once_on_free),
        cmocka_unit_test(test_fmt_i64),
        cmocka_unit_test(test_fmt_hex),
        cmocka_unit_test(test_fbuf_fits),
        cmocka_unit_test(test_fbuf_overflow),
        cmocka_unit_test(test_sb_add_and_grow),
        cmocka_unit_test(test_sb_addf),
        cmocka_unit_test(test_sb_add_json_str),
        cmocka_unit_test(test_sb_take),
    };
    return cmocka_run_group_tests(tests, NULL, teardown_group);
}
