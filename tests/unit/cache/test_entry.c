/*
 * test_entry.c - entry encoding: the stored head (no framing, no hop-by-hop
 * headers), validators kept apart (Last-Modified in seconds, ETag), Vary
 * variants and their matching against request headers, Surrogate-Key tags.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cache/entry.h"
#include "cache/store.h"

static void hdr(struct st_headers *h, const char *name, const char *value)
{
    st_headers_name_piece(h, name, strlen(name));
    st_headers_value_piece(h, value, strlen(value));
    st_headers_value_done(h);
}

/* An entry for key with an optional Vary/Surrogate-Key and a body of n bytes. */
static struct st_entry *make(const char *key, const char *vary, const char *req_lang,
                             const char *tags, size_t n)
{
    static char body[70000];
    memset(body, 'x', sizeof(body));
    struct st_headers req, resp;
    st_headers_init(&req);
    st_headers_init(&resp);
    if (req_lang)
        hdr(&req, "Accept-Language", req_lang);
    hdr(&resp, "Content-Type", "application/json");
    hdr(&resp, "Content-Length", "999");
    hdr(&resp, "Connection", "close");
    if (vary)
        hdr(&resp, "Vary", vary);
    if (tags)
        hdr(&resp, "Surrogate-Key", tags);
    struct st_entry_init in = {
        .key = key,
        .key_len = strlen(key),
        .req = &req,
        .resp = &resp,
        .status = 200,
        .body = body,
        .body_len = n,
        .lifetime_ms = 60000,
    };
    struct st_entry *e = st_entry_new(&in);
    st_headers_finish(&req);
    st_headers_finish(&resp);
    return e;
}

static struct st_entry *find(struct st_store *c, const char *key, const char *lang)
{
    struct st_headers req;
    st_headers_init(&req);
    if (lang)
        hdr(&req, "Accept-Language", lang);
    struct st_entry *e = st_entry_of(st_store_lookup(c, st_store_hash(key, strlen(key)), key,
                                                     strlen(key), st_entry_vary_matches, &req));
    st_headers_finish(&req);
    return e;
}

static bool present(struct st_store *c, const char *key, const char *lang)
{
    struct st_entry *e = find(c, key, lang);
    st_entry_unref(e);
    return e != NULL;
}

static void insert(struct st_store *c, struct st_entry *e)
{
    assert_non_null(e);
    assert_true(st_store_insert(c, st_entry_item(e)));
    st_entry_unref(e);
}

static void test_head_is_stored_without_framing(void **state)
{
    (void)state;
    struct st_entry *e = make("/a\x1fh", NULL, NULL, NULL, 10);
    char head[1024];
    memcpy(head, st_entry_head(e), e->head_len);
    head[e->head_len] = '\0'; /* the stored head is not NUL-terminated */
    assert_non_null(strstr(head, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(head, "Content-Type: application/json\r\n"));
    assert_null(strstr(head, "Content-Length"));
    assert_null(strstr(head, "Connection"));
    assert_int_equal(st_entry_body_len(e), 10);
    st_entry_unref(e);
}

/* Last-Modified of an entry stored with the given header lines (NULL-terminated name, value pairs).
 */
static int64_t stored_last_modified(const char *const *lines)
{
    static const char body[] = "{}";
    struct st_headers req, resp;
    st_headers_init(&req);
    st_headers_init(&resp);
    for (size_t i = 0; lines[i]; i += 2)
        hdr(&resp, lines[i], lines[i + 1]);
    struct st_entry_init in = {
        .key = "/lm",
        .key_len = 3,
        .req = &req,
        .resp = &resp,
        .status = 200,
        .body = body,
        .body_len = 2,
        .lifetime_ms = 60000,
    };
    struct st_entry *e = st_entry_new(&in);
    assert_non_null(e);
    int64_t ms = st_entry_last_modified_ms(e);
    st_entry_unref(e);
    st_headers_finish(&req);
    st_headers_finish(&resp);
    return ms;
}

static void test_last_modified_kept_in_seconds(void **state)
{
    (void)state;
    const char *none[] = {"ETag", "\"x\"", NULL};
    const char *imf[] = {"Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT", NULL};
    const char *rfc850[] = {"Last-Modified", "Sunday, 06-Nov-94 08:49:37 GMT", NULL};
    const char *epoch[] = {"Last-Modified", "Thu, 01 Jan 1970 00:00:00 GMT", NULL};
    const char *two[] = {"Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT", "Last-Modified",
                         "Mon, 07 Nov 1994 08:49:37 GMT", NULL};
    const char *bad[] = {"Last-Modified", "yesterday", NULL};
    const char *far[] = {"Last-Modified", "Fri, 31 Dec 9999 23:59:59 GMT", NULL};
    const char *hop[] = {"Connection", "Last-Modified", "Last-Modified",
                         "Sun, 06 Nov 1994 08:49:37 GMT", NULL};
    assert_int_equal(stored_last_modified(none), -1);
    assert_int_equal(stored_last_modified(imf), 784111777000LL);
    assert_int_equal(stored_last_modified(rfc850), 784111777000LL);
    assert_int_equal(stored_last_modified(epoch), 0);
    assert_int_equal(stored_last_modified(two), 784111777000LL); /* the first one counts */
    assert_int_equal(stored_last_modified(bad), -1);
    assert_int_equal(stored_last_modified(far), -1); /* past 2106: kept as none */
    assert_int_equal(stored_last_modified(hop), -1); /* hop-by-hop: not stored, not used */
}

static void test_vary_variants(void **state)
{
    (void)state;
    struct st_store *c = st_store_create(1 << 20, 64 * 1024);
    insert(c, make("/v\x1fh", "Accept-Language", "en", NULL, 5));
    insert(c, make("/v\x1fh", "accept-language", "fr", NULL, 6));
    struct st_entry *en = find(c, "/v\x1fh", "en");
    struct st_entry *fr = find(c, "/v\x1fh", "fr");
    assert_non_null(en);
    assert_non_null(fr);
    assert_int_equal(st_entry_body_len(en), 5);
    assert_int_equal(st_entry_body_len(fr), 6);
    assert_false(present(c, "/v\x1fh", "de"));
    assert_false(present(c, "/v\x1fh", NULL));
    st_entry_unref(en);
    st_entry_unref(fr);
    assert_int_equal(st_store_remove_key(c, "/v\x1fh", 4), 2);
    st_store_destroy(c);
}

static void test_vary_joins_header_lines(void **state)
{
    (void)state;
    struct st_store *c = st_store_create(1 << 20, 64 * 1024);
    struct st_headers req, resp;
    st_headers_init(&req);
    st_headers_init(&resp);
    hdr(&req, "Accept-Language", "en");
    hdr(&req, "Accept-Language", "fr");
    hdr(&resp, "Vary", "Accept-Language");
    struct st_entry_init in = {
        .key = "/j\x1fh",
        .key_len = 4,
        .req = &req,
        .resp = &resp,
        .status = 200,
        .body = "b",
        .body_len = 1,
        .lifetime_ms = 60000,
    };
    insert(c, st_entry_new(&in));
    st_headers_finish(&req);
    st_headers_finish(&resp);
    assert_false(present(c, "/j\x1fh", "en"));
    assert_true(present(c, "/j\x1fh", "en, fr")); /* one line, same joined value */
    st_headers_init(&req);
    hdr(&req, "accept-language", "en");
    hdr(&req, "ACCEPT-LANGUAGE", "fr");
    struct st_entry *e = st_entry_of(
        st_store_lookup(c, st_store_hash("/j\x1fh", 4), "/j\x1fh", 4, st_entry_vary_matches, &req));
    assert_non_null(e);
    st_entry_unref(e);
    st_headers_finish(&req);
    st_store_destroy(c);
}

static void test_too_many_vary_headers(void **state)
{
    (void)state;
    assert_null(make("/x\x1fh", "a, b, c, d, e, f, g, h, i", NULL, NULL, 1));
}

/* A request value with a NUL of its own: the variant's pairs no longer line up, so no match. */
static void test_vary_value_with_a_nul_is_no_match(void **state)
{
    (void)state;
    struct st_store *c = st_store_create(1 << 20, 64 * 1024);
    struct st_headers req, resp;
    st_headers_init(&req);
    st_headers_init(&resp);
    st_headers_name_piece(&req, "Accept-Language", 15);
    st_headers_value_piece(&req, "a\0b", 3);
    st_headers_value_done(&req);
    hdr(&resp, "Vary", "Accept-Language");
    struct st_entry_init in = {.key = "/n", .key_len = 2, .req = &req, .resp = &resp,
                               .status = 200, .body = "x", .body_len = 1, .lifetime_ms = 60000};
    insert(c, st_entry_new(&in));
    struct st_store_item *it =
        st_store_lookup(c, st_store_hash("/n", 2), "/n", 2, st_entry_vary_matches, &req);
    assert_null(it);
    st_headers_finish(&req);
    st_headers_finish(&resp);
    st_store_destroy(c);
}

static void test_validators_and_tags(void **state)
{
    (void)state;
    struct st_headers req, resp;
    st_headers_init(&req);
    st_headers_init(&resp);
    hdr(&resp, "ETag", "\"v1\"");
    hdr(&resp, "Surrogate-Key", "a b");
    struct st_entry_init in = {
        .key = "/t",
        .key_len = 2,
        .req = &req,
        .resp = &resp,
        .status = 203,
        .reason = "Fine",
        .reason_len = 4,
        .body = "{}",
        .body_len = 2,
        .stored_ms = 5,
        .initial_age_ms = 6,
        .lifetime_ms = 7,
        .swr_ms = 8,
        .sie_ms = (int64_t)1 << 40,
        .no_stale = true,
    };
    struct st_entry *e = st_entry_new(&in);
    assert_non_null(e);
    assert_string_equal(st_entry_etag(e), "\"v1\"");
    assert_int_equal(st_entry_etag_len(e), 4);
    assert_string_equal(st_entry_tags(e), "a b");
    assert_string_equal(st_entry_key(e), "/t");
    assert_int_equal(st_entry_key_len(e), 2);
    assert_memory_equal(st_entry_head(e), "HTTP/1.1 203 Fine\r\n", 19);
    assert_memory_equal(st_entry_body(e), "{}", 2);
    assert_int_equal(e->status, 203);
    assert_int_equal(e->stored_ms, 5);
    assert_int_equal(e->initial_age_ms, 6);
    assert_int_equal(e->lifetime_ms, 7);
    assert_int_equal(e->swr_ms, 8);
    assert_int_equal(e->sie_ms, INT32_MAX); /* clamped */
    assert_true(e->no_stale);
    assert_false(e->always_revalidate);
    st_entry_unref(e);
    st_headers_finish(&resp);
    st_headers_init(&resp);
    in.reason_len = 0;
    in.status = 404;
    e = st_entry_new(&in);
    assert_null(st_entry_etag(e));
    assert_null(st_entry_tags(e));
    assert_memory_equal(st_entry_head(e), "HTTP/1.1 404 Not Found\r\n", 24);
    assert_int_equal(e->head_len, 24);
    st_entry_unref(e);
    st_headers_finish(&req);
    st_headers_finish(&resp);
}

/* The L2 wire form: every part and number survives; other versions and damage are refused. */
static void test_wire_round_trip(void **state)
{
    (void)state;
    struct st_entry *e = make("/w\x1fh", "Accept-Language", "de", "t1 t2", 700);
    e->stored_ms = 1700000000123;
    e->initial_age_ms = 5;
    e->swr_ms = 7;
    e->sie_ms = 9;
    e->no_stale = true;
    e->dirty = true;
    struct st_sb w;
    st_sb_init(&w, 64);
    st_entry_encode(e, &w);
    assert_int_equal((unsigned char)w.p[0], ST_ENTRY_WIRE_VERSION);
    struct st_entry *d;
    assert_int_equal(st_entry_decode(w.p, w.len, &d), 0);
    assert_int_equal(d->stored_ms, e->stored_ms);
    assert_int_equal(d->lifetime_ms, 60000);
    assert_int_equal(d->initial_age_ms, 5);
    assert_int_equal(d->swr_ms, 7);
    assert_int_equal(d->sie_ms, 9);
    assert_true(d->no_stale);
    assert_false(d->always_revalidate);
    assert_true(d->dirty);
    assert_int_equal(d->status, 200);
    assert_int_equal(d->head_len, e->head_len);
    assert_memory_equal(st_entry_head(d), st_entry_head(e), e->head_len);
    assert_string_equal(st_entry_key(d), "/w\x1fh");
    assert_string_equal(st_entry_tags(d), "t1 t2");
    assert_int_equal(st_entry_body_len(d), 700);
    assert_memory_equal(st_entry_body(d), st_entry_body(e), 700);
    struct st_headers req;
    st_headers_init(&req);
    hdr(&req, "Accept-Language", "de");
    assert_true(st_entry_vary_matches(st_entry_item(d), &req));
    st_headers_finish(&req);
    st_entry_unref(d);

    /* Another version: -EPROTO. */
    w.p[0] = 2;
    assert_int_equal(st_entry_decode(w.p, w.len, &d), -EPROTO);
    assert_null(d);
    w.p[0] = ST_ENTRY_WIRE_VERSION;
    /* Any flipped byte, any truncation, an empty value: -EBADMSG, never an entry. */
    for (size_t i = 1; i < w.len; i += 7) {
        w.p[i] ^= 0x40;
        assert_int_equal(st_entry_decode(w.p, w.len, &d), -EBADMSG);
        w.p[i] ^= 0x40;
    }
    for (size_t n = 0; n < w.len; n += 13)
        assert_true(st_entry_decode(w.p, n, &d) < 0);
    assert_int_equal(st_entry_decode(w.p, 0, &d), -EBADMSG);
    assert_int_equal(st_entry_decode(w.p, w.len, &d), 0);
    st_entry_unref(d);
    st_sb_finish(&w);
    st_entry_unref(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_head_is_stored_without_framing),
        cmocka_unit_test(test_last_modified_kept_in_seconds),
        cmocka_unit_test(test_vary_value_with_a_nul_is_no_match),
        cmocka_unit_test(test_validators_and_tags),
        cmocka_unit_test(test_vary_variants),
        cmocka_unit_test(test_vary_joins_header_lines),
        cmocka_unit_test(test_too_many_vary_headers),
        cmocka_unit_test(test_wire_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
