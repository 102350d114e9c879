/*
 * test_wb_queue.c - the write-behind queue's pure parts: partitions and key
 * names (one hash tag per partition), a write read back from a stream
 * entry (and every malformed shape refused), header lookup in a stored
 * block, the representation a write leaves (PUT, DELETE tombstone, PATCH:
 * none; dirty until flushed, then the tier's), and stream id times.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "strategies/wb_queue.h"

static void test_partitions_and_keys(void **state)
{
    (void)state;
    for (uint64_t h = 0; h < 1000; h++)
        assert_true(st_wb_partition(h * 0x9e3779b97f4a7c15ull) < ST_WB_PARTITIONS);
    assert_int_equal(st_wb_partition(0xf000000000000000ull), 15);
    assert_int_equal(st_wb_partition(0x0fffffffffffffffull), 0);
    struct st_sb q, d;
    st_sb_init(&q, 32);
    st_sb_init(&d, 32);
    st_wb_key(&q, "strata:", 7, 'q');
    st_wb_key(&d, "strata:", 7, 'd');
    st_sb_add(&q, "", 1);
    st_sb_add(&d, "", 1);
    assert_string_equal(q.p, "strata:{wb7}:q");
    assert_string_equal(d.p, "strata:{wb7}:d"); /* the same hash tag: one Cluster slot */
    st_sb_finish(&q);
    st_sb_finish(&d);
}

/* A hand-built reply of n strings (name, value, ...). */
struct fake {
    redisReply top;
    redisReply *el[2 * ST_WB__COUNT + 2];
    redisReply items[2 * ST_WB__COUNT + 2];
};

static void fake_fields(struct fake *f, const char *const *kv, size_t n)
{
    memset(f, 0, sizeof(*f));
    f->top.type = REDIS_REPLY_ARRAY;
    f->top.elements = n;
    f->top.element = f->el;
    for (size_t i = 0; i < n; i++) {
        f->items[i].type = REDIS_REPLY_STRING;
        f->items[i].str = (char *)kv[i];
        f->items[i].len = strlen(kv[i]);
        f->el[i] = &f->items[i];
    }
}

static const char *const good[] = {
    "id", "0123456789abcdef0123456789abcdef", "key", "api.test\x1f/wb/1", "method", "PUT",
    "route", "/wb/*", "target", "/wb/1", "headers",
    "Host: api.test\r\nContent-Type: application/json\r\nX-Trace:  a b\r\n", "body", "{\"v\":1}",
    "client", "127.0.0.1", "at", "1700000000000",
};

static void test_parse_a_write(void **state)
{
    (void)state;
    struct fake f;
    fake_fields(&f, good, sizeof(good) / sizeof(good[0]));
    struct st_wb_write w;
    assert_true(st_wb_parse(&f.top, &w));
    assert_int_equal(w.len[ST_WB_METHOD], 3);
    assert_memory_equal(w.v[ST_WB_BODY], "{\"v\":1}", 7);
    assert_memory_equal(w.v[ST_WB_ID], good[1], 32);
}

static void test_parse_refuses_what_is_not_a_write(void **state)
{
    (void)state;
    struct fake f;
    struct st_wb_write w;
    size_t n = sizeof(good) / sizeof(good[0]);
    /* every field missing in turn */
    for (size_t drop = 0; drop < n; drop += 2) {
        const char *kv[sizeof(good) / sizeof(good[0])];
        size_t k = 0;
        for (size_t i = 0; i < n; i += 2)
            if (i != drop) {
                kv[k++] = good[i];
                kv[k++] = good[i + 1];
            }
        fake_fields(&f, kv, k);
        assert_false(st_wb_parse(&f.top, &w));
    }
    /* a method a write cannot have */
    const char *kv[sizeof(good) / sizeof(good[0])];
    memcpy(kv, good, sizeof(kv));
    kv[5] = "POST";
    fake_fields(&f, kv, n);
    assert_false(st_wb_parse(&f.top, &w));
    /* a value of another type */
    fake_fields(&f, good, n);
    f.items[1].type = REDIS_REPLY_INTEGER;
    assert_false(st_wb_parse(&f.top, &w));
    /* not an array at all, and an odd list */
    fake_fields(&f, good, n);
    f.top.type = REDIS_REPLY_NIL;
    assert_false(st_wb_parse(&f.top, &w));
    fake_fields(&f, good, 3);
    assert_false(st_wb_parse(&f.top, &w));
    assert_false(st_wb_parse(NULL, &w));
}

static void test_header_in_a_block(void **state)
{
    (void)state;
    const char *b = good[11];
    size_t n;
    const char *v = st_wb_header(b, strlen(b), "content-type", &n);
    assert_non_null(v);
    assert_int_equal(n, 16);
    assert_memory_equal(v, "application/json", 16);
    v = st_wb_header(b, strlen(b), "x-trace", &n);
    assert_int_equal(n, 3); /* leading spaces go, inner ones stay */
    assert_memory_equal(v, "a b", 3);
    assert_null(st_wb_header(b, strlen(b), "content", &n));
    assert_null(st_wb_header("", 0, "host", &n));
    v = st_wb_header("Host: h", 7, "host", &n); /* no final CRLF */
    assert_int_equal(n, 1);
}

static struct st_wb_write write_of(const char *method, const char *headers, const char *body)
{
    struct fake f;
    const char *kv[sizeof(good) / sizeof(good[0])];
    memcpy(kv, good, sizeof(kv));
    kv[5] = method;
    kv[11] = headers;
    kv[13] = body;
    fake_fields(&f, kv, sizeof(kv) / sizeof(kv[0]));
    struct st_wb_write w;
    assert_true(st_wb_parse(&f.top, &w));
    /* the fake reply lives on this stack frame: copy what the tests need */
    static char keep[ST_WB__COUNT][256];
    for (int i = 0; i < ST_WB__COUNT; i++) {
        memcpy(keep[i], w.v[i], w.len[i]);
        w.v[i] = keep[i];
    }
    return w;
}

static void test_representations(void **state)
{
    (void)state;
    struct st_wb_write w = write_of("PUT", "Content-Type: text/plain\r\n", "hello");
    struct st_entry *e = st_wb_entry(&w, NULL, 1000);
    assert_non_null(e);
    assert_true(e->dirty);
    assert_int_equal(e->status, 200);
    assert_true(e->lifetime_ms >= 30LL * 24 * 3600 * 1000); /* fresh until flushed */
    assert_int_equal(st_entry_body_len(e), 5);
    assert_non_null(strstr(st_entry_head(e), "content-type: text/plain"));
    st_entry_unref(e);

    struct st_tier warm = {.ttl_ms = 180000, .stale_if_error_ms = 5000};
    e = st_wb_entry(&w, &warm, 1000);
    assert_false(e->dirty);
    assert_int_equal(e->lifetime_ms, 180000);
    assert_int_equal(e->sie_ms, 5000);
    assert_int_equal(e->stored_ms, 1000);
    st_entry_unref(e);

    w = write_of("DELETE", "", "");
    e = st_wb_entry(&w, NULL, 1000);
    assert_int_equal(e->status, 404); /* the tombstone */
    assert_true(e->dirty);
    assert_non_null(strstr(st_entry_head(e), "application/json"));
    st_entry_unref(e);

    w = write_of("PATCH", "Content-Type: application/json\r\n", "{}");
    assert_null(st_wb_entry(&w, NULL, 1000)); /* strata cannot compute it */
    struct st_tier none = {.ttl_ms = 0};
    w = write_of("PUT", "", "x");
    assert_null(st_wb_entry(&w, &none, 1000));
}

static void test_stream_id_time(void **state)
{
    (void)state;
    assert_int_equal(st_wb_sid_ms("1700000000123-7", 15), 1700000000123LL);
    assert_int_equal(st_wb_sid_ms("nope", 4), -1);
    assert_int_equal(st_wb_sid_ms("", 0), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_partitions_and_keys),
        cmocka_unit_test(test_parse_a_write),
        cmocka_unit_test(test_parse_refuses_what_is_not_a_write),
        cmocka_unit_test(test_header_in_a_block),
        cmocka_unit_test(test_representations),
        cmocka_unit_test(test_stream_id_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
