/*
 * test_cache.c - the memory tier: lookup and replace, Vary variants,
 * eviction within the byte budget (SIEVE keeps what was hit), key, prefix
 * and tag removal through the indexes, and the single-flight leader.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cache/store.h"
#include "cache/key.h"
#include "base/qsbr.h"

#include <stdatomic.h>
#include <uv.h>

static void hdr(struct st_headers *h, const char *name, const char *value)
{
    st_headers_name_piece(h, name, strlen(name));
    st_headers_value_piece(h, value, strlen(value));
    st_headers_value_done(h);
}

/* An entry for key with an optional Vary/Surrogate-Key and a body of n bytes. */
static struct st_cache_entry *make(const char *key, const char *vary, const char *req_lang,
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
    struct st_cache_entry_init in = {
        .key = key, .key_len = strlen(key), .req = &req, .resp = &resp, .status = 200,
        .body = body, .body_len = n, .lifetime_ms = 60000, .tier_slot = -1,
    };
    struct st_cache_entry *e = st_cache_entry_new(&in);
    st_headers_finish(&req);
    st_headers_finish(&resp);
    return e;
}

static struct st_cache_entry *find(struct st_cache *c, const char *key, const char *lang)
{
    struct st_headers req;
    st_headers_init(&req);
    if (lang)
        hdr(&req, "Accept-Language", lang);
    struct st_cache_entry *e = st_cache_lookup(c, st_cache_hash(key, strlen(key)), key,
                                               strlen(key), &req);
    st_headers_finish(&req);
    return e;
}

static bool present(struct st_cache *c, const char *key, const char *lang)
{
    struct st_cache_entry *e = find(c, key, lang);
    st_cache_entry_unref(e);
    return e != NULL;
}

static void insert(struct st_cache *c, struct st_cache_entry *e)
{
    assert_non_null(e);
    assert_true(st_cache_insert(c, e));
    st_cache_entry_unref(e);
}

static void test_head_is_stored_without_framing(void **state)
{
    (void)state;
    struct st_cache_entry *e = make("/a\x1fh", NULL, NULL, NULL, 10);
    char head[1024];
    memcpy(head, st_cache_entry_head(e), e->head_len);
    head[e->head_len] = '\0'; /* the stored head is not NUL-terminated */
    assert_non_null(strstr(head, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(head, "Content-Type: application/json\r\n"));
    assert_null(strstr(head, "Content-Length"));
    assert_null(strstr(head, "Connection"));
    assert_int_equal(e->body_len, 10);
    st_cache_entry_unref(e);
}

/* Last-Modified of an entry stored with the given header lines (NULL-terminated name, value pairs). */
static int64_t stored_last_modified(const char *const *lines)
{
    static const char body[] = "{}";
    struct st_headers req, resp;
    st_headers_init(&req);
    st_headers_init(&resp);
    for (size_t i = 0; lines[i]; i += 2)
        hdr(&resp, lines[i], lines[i + 1]);
    struct st_cache_entry_init in = {
        .key = "/lm", .key_len = 3, .req = &req, .resp = &resp, .status = 200,
        .body = body, .body_len = 2, .lifetime_ms = 60000, .tier_slot = -1,
    };
    struct st_cache_entry *e = st_cache_entry_new(&in);
    assert_non_null(e);
    int64_t ms = st_cache_entry_last_modified_ms(e);
    st_cache_entry_unref(e);
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
    const char *two[] = {"Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT",
                         "Last-Modified", "Mon, 07 Nov 1994 08:49:37 GMT", NULL};
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

static void test_lookup_and_replace(void **state)
{
    (void)state;
    struct st_cache *c = st_cache_create(1 << 20, 64 * 1024);
    assert_false(present(c, "/a\x1fh", NULL));
    insert(c, make("/a\x1fh", NULL, NULL, NULL, 10));
    struct st_cache_entry *e = find(c, "/a\x1fh", NULL);
    assert_non_null(e);
    assert_int_equal(e->body_len, 10);
    st_cache_entry_unref(e);
    insert(c, make("/a\x1fh", NULL, NULL, NULL, 20)); /* replaces */
    e = find(c, "/a\x1fh", NULL);
    assert_int_equal(e->body_len, 20);
    st_cache_entry_unref(e);
    struct st_cache_stats s;
    st_cache_stats(c, &s);
    assert_int_equal(s.entries, 1);
    st_cache_destroy(c);
}

static void test_vary_variants(void **state)
{
    (void)state;
    struct st_cache *c = st_cache_create(1 << 20, 64 * 1024);
    insert(c, make("/v\x1fh", "Accept-Language", "en", NULL, 5));
    insert(c, make("/v\x1fh", "accept-language", "fr", NULL, 6));
    struct st_cache_entry *en = find(c, "/v\x1fh", "en");
    struct st_cache_entry *fr = find(c, "/v\x1fh", "fr");
    assert_non_null(en);
    assert_non_null(fr);
    assert_int_equal(en->body_len, 5);
    assert_int_equal(fr->body_len, 6);
    assert_false(present(c, "/v\x1fh", "de"));
    assert_false(present(c, "/v\x1fh", NULL));
    st_cache_entry_unref(en);
    st_cache_entry_unref(fr);
    assert_int_equal(st_cache_remove_key(c, "/v\x1fh", 4), 2);
    st_cache_destroy(c);
}

static void test_vary_joins_header_lines(void **state)
{
    (void)state;
    struct st_cache *c = st_cache_create(1 << 20, 64 * 1024);
    struct st_headers req, resp;
    st_headers_init(&req);
    st_headers_init(&resp);
    hdr(&req, "Accept-Language", "en");
    hdr(&req, "Accept-Language", "fr");
    hdr(&resp, "Vary", "Accept-Language");
    struct st_cache_entry_init in = {
        .key = "/j\x1fh", .key_len = 4, .req = &req, .resp = &resp, .status = 200,
        .body = "b", .body_len = 1, .lifetime_ms = 60000, .tier_slot = -1,
    };
    insert(c, st_cache_entry_new(&in));
    st_headers_finish(&req);
    st_headers_finish(&resp);
    assert_false(present(c, "/j\x1fh", "en"));
    assert_true(present(c, "/j\x1fh", "en, fr")); /* one line, same joined value */
    st_headers_init(&req);
    hdr(&req, "accept-language", "en");
    hdr(&req, "ACCEPT-LANGUAGE", "fr");
    struct st_cache_entry *e = st_cache_lookup(c, st_cache_hash("/j\x1fh", 4), "/j\x1fh", 4, &req);
    assert_non_null(e);
    st_cache_entry_unref(e);
    st_headers_finish(&req);
    st_cache_destroy(c);
}

static void test_too_many_vary_headers(void **state)
{
    (void)state;
    assert_null(make("/x\x1fh", "a, b, c, d, e, f, g, h, i", NULL, NULL, 1));
}

static void test_eviction_stays_within_budget(void **state)
{
    (void)state;
    uint64_t budget = 256 * 1024;
    struct st_cache *c = st_cache_create(budget, 16 * 1024);
    insert(c, make("/keep\x1fh", NULL, NULL, NULL, 8 * 1024));
    char key[64];
    for (int i = 0; i < 400; i++) {
        snprintf(key, sizeof(key), "/k%d\x1fh", i);
        insert(c, make(key, NULL, NULL, NULL, 8 * 1024));
        /* a hot key: hit between inserts */
        assert_true(present(c, "/keep\x1fh", NULL));
        struct st_cache_stats s;
        st_cache_stats(c, &s);
        assert_true(s.bytes <= budget);
    }
    struct st_cache_stats s;
    st_cache_stats(c, &s);
    assert_true(s.evictions > 300);
    assert_true(s.entries > 10);
    assert_true(present(c, "/keep\x1fh", NULL)); /* SIEVE spared the visited entry */
    assert_false(present(c, "/k0\x1fh", NULL));
    st_cache_destroy(c);
}

static void test_too_large_is_refused(void **state)
{
    (void)state;
    struct st_cache *c = st_cache_create(1 << 20, 1024);
    struct st_cache_entry *e = make("/big\x1fh", NULL, NULL, NULL, 2048);
    assert_false(st_cache_insert(c, e));
    st_cache_entry_unref(e);
    assert_false(present(c, "/big\x1fh", NULL));
    st_cache_destroy(c);
}

static void test_prefix_removal(void **state)
{
    (void)state;
    struct st_cache *c = st_cache_create(4 << 20, 64 * 1024);
    const char *keys[] = {"/api/a\x1fh", "/api/b?x=1\x1fh", "/api/b\x1fother", "/apis\x1fh",
                          "/other\x1fh", "/ap\x1fh"};
    for (size_t i = 0; i < 6; i++)
        insert(c, make(keys[i], NULL, NULL, NULL, 3));
    assert_int_equal(st_cache_remove_prefix(c, "/api/", 5), 3);
    assert_false(present(c, "/api/a\x1fh", NULL));
    assert_true(present(c, "/apis\x1fh", NULL));
    assert_true(present(c, "/ap\x1fh", NULL));
    assert_int_equal(st_cache_remove_prefix(c, "/api/", 5), 0);
    assert_int_equal(st_cache_remove_prefix(c, "/", 1), 3);
    struct st_cache_stats s;
    st_cache_stats(c, &s);
    assert_int_equal(s.entries, 0);
    assert_int_equal(s.bytes, 0);
    st_cache_destroy(c);
}

static void test_many_keys_prefix(void **state)
{
    (void)state;
    struct st_cache *c = st_cache_create(64 << 20, 64 * 1024);
    char key[64];
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof(key), "/%s/%d\x1fh", i % 2 ? "odd" : "even", i);
        insert(c, make(key, NULL, NULL, NULL, 1));
    }
    assert_int_equal(st_cache_remove_prefix(c, "/odd/", 5), 1000);
    assert_true(present(c, "/even/0\x1fh", NULL));
    assert_false(present(c, "/odd/1\x1fh", NULL));
    st_cache_destroy(c);
}

static void test_tag_removal(void **state)
{
    (void)state;
    struct st_cache *c = st_cache_create(4 << 20, 64 * 1024);
    insert(c, make("/1\x1fh", NULL, NULL, "products product-1", 1));
    insert(c, make("/2\x1fh", NULL, NULL, " products  product-2 ", 1));
    insert(c, make("/3\x1fh", NULL, NULL, "users", 1));
    assert_int_equal(st_cache_remove_tag(c, "product-1", 9), 1);
    assert_int_equal(st_cache_remove_tag(c, "products", 8), 1);
    assert_false(present(c, "/2\x1fh", NULL));
    assert_true(present(c, "/3\x1fh", NULL));
    assert_int_equal(st_cache_remove_tag(c, "product", 7), 0);
    assert_int_equal(st_cache_remove_tag(c, "users", 5), 1);
    st_cache_destroy(c);
}

static void test_expire_only_published(void **state)
{
    (void)state;
    struct st_cache *c = st_cache_create(1 << 20, 64 * 1024);
    insert(c, make("/e\x1fh", NULL, NULL, NULL, 1));
    struct st_cache_entry *old = find(c, "/e\x1fh", NULL);
    insert(c, make("/e\x1fh", NULL, NULL, NULL, 2));
    st_cache_expire(c, old); /* already replaced: nothing happens */
    assert_true(present(c, "/e\x1fh", NULL));
    st_cache_entry_unref(old);
    struct st_cache_entry *cur = find(c, "/e\x1fh", NULL);
    st_cache_expire(c, cur);
    st_cache_entry_unref(cur);
    assert_false(present(c, "/e\x1fh", NULL));
    st_cache_destroy(c);
}

static void test_flight_leader(void **state)
{
    (void)state;
    struct st_cache *c = st_cache_create(1 << 20, 64 * 1024);
    uint64_t h = st_cache_hash("/f", 2);
    assert_int_equal(st_cache_flight_join(c, h, "/f", 2, NULL), ST_FLIGHT_LEADER);
    assert_int_equal(st_cache_flight_join(c, h, "/f", 2, NULL), ST_FLIGHT_PARKED);
    assert_int_equal(st_cache_flight_join(c, h, "/g", 2, NULL), ST_FLIGHT_LEADER);
    st_cache_flight_done(c, h, "/f", 2, ST_FLIGHT_STORED, 0);
    assert_int_equal(st_cache_flight_join(c, h, "/f", 2, NULL), ST_FLIGHT_LEADER);
    st_cache_flight_done(c, h, "/f", 2, ST_FLIGHT_STORED, 0);
    st_cache_flight_done(c, st_cache_hash("/g", 2), "/g", 2, ST_FLIGHT_STORED, 0);
    st_cache_destroy(c);
}

/*
 * Lock-free readers against a writer that keeps evicting, replacing and
 * invalidating: every entry a reader peeks at must still be whole (ASan in
 * CI turns a premature free into a failure).
 */
struct reader_arg {
    struct st_cache *c;
    _Atomic bool *stop;
    uint64_t found, checked;
};

static void reader(void *p)
{
    struct reader_arg *a = p;
    assert_true(st_qsbr_register());
    char key[32];
    uint64_t r = (uint64_t)(uintptr_t)p | 1;
    for (unsigned i = 0; !atomic_load(a->stop); i++) {
        r ^= r << 13;
        r ^= r >> 7;
        r ^= r << 17;
        int len = snprintf(key, sizeof(key), "/r/%u\x1fh", (unsigned)(r % 3000));
        struct st_cache_entry *e =
            st_cache_peek(a->c, st_cache_hash(key, (size_t)len), key, (size_t)len, NULL);
        if (e) {
            a->found++;
            if (memcmp(st_cache_entry_key(e), key, (size_t)len) == 0 && e->body[e->body_len - 1] == 'x')
                a->checked++;
        }
        if (i % 64 == 0) {
            st_qsbr_offline();
            st_qsbr_reclaim();
        }
    }
    st_qsbr_offline();
    st_qsbr_unregister();
}

static void test_lock_free_readers_during_eviction(void **state)
{
    (void)state;
    struct st_cache *c = st_cache_create(512 * 1024, 16 * 1024);
    _Atomic bool stop = false;
    struct reader_arg args[2] = {{c, &stop, 0, 0}, {c, &stop, 0, 0}};
    uv_thread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(uv_thread_create(&th[i], reader, &args[i]), 0);
    char key[32];
    for (int i = 0; i < 60000; i++) {
        snprintf(key, sizeof(key), "/r/%d\x1fh", (i * 7919) % 3000);
        insert(c, make(key, NULL, NULL, i % 5 ? NULL : "t", 100 + (size_t)(i % 1500)));
        if (i % 1000 == 999)
            st_cache_remove_prefix(c, "/r/1", 4);
        if (i % 2500 == 0)
            st_cache_remove_tag(c, "t", 1);
    }
    atomic_store(&stop, true);
    for (int i = 0; i < 2; i++)
        uv_thread_join(&th[i]);
    for (int i = 0; i < 2; i++)
        assert_int_equal(args[i].found, args[i].checked);
    assert_true(args[0].found + args[1].found > 0);
    struct st_cache_stats s;
    st_cache_stats(c, &s);
    assert_true(s.bytes <= 512 * 1024);
    st_cache_destroy(c);
}

static void key(struct st_route_cfg *r, const char *target, const char *host, const char *want)
{
    struct st_sb sb;
    st_sb_init(&sb, 64);
    st_cache_key_build(&sb, r, target, strlen(target), host, strlen(host));
    assert_string_equal(sb.p, want);
    st_sb_finish(&sb);
}

static void test_cache_keys(void **state)
{
    (void)state;
    struct st_route_cfg r;
    memset(&r, 0, sizeof(r));
    r.key_query = ST_KEY_QUERY_ALL;
    key(&r, "/p?b=2&a=1", "Example.COM", "/p?a=1&b=2\x1f" "example.com");
    key(&r, "/p?a=1&b=2", "example.com", "/p?a=1&b=2\x1f" "example.com");
    key(&r, "/p?", "h", "/p\x1fh");
    key(&r, "/p?&&a=1&", "h", "/p?a=1\x1fh");
    key(&r, "http://h/p?z", "h", "/p?z\x1fh");
    r.key_query = ST_KEY_QUERY_NONE;
    key(&r, "/p?b=2&a=1", "h", "/p\x1fh");
    char *names[] = {"a", "c"};
    r.key_query = ST_KEY_QUERY_LIST;
    r.key_query_names = names;
    r.n_key_query_names = 2;
    key(&r, "/p?b=2&c=3&a=1&ab=9", "h", "/p?a=1&c=3\x1fh");
    key(&r, "/p?b=2", "h", "/p\x1fh");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_head_is_stored_without_framing),
        cmocka_unit_test(test_last_modified_kept_in_seconds),
        cmocka_unit_test(test_lookup_and_replace),
        cmocka_unit_test(test_vary_variants),
        cmocka_unit_test(test_vary_joins_header_lines),
        cmocka_unit_test(test_too_many_vary_headers),
        cmocka_unit_test(test_eviction_stays_within_budget),
        cmocka_unit_test(test_too_large_is_refused),
        cmocka_unit_test(test_prefix_removal),
        cmocka_unit_test(test_many_keys_prefix),
        cmocka_unit_test(test_tag_removal),
        cmocka_unit_test(test_expire_only_published),
        cmocka_unit_test(test_flight_leader),
        cmocka_unit_test(test_cache_keys),
        cmocka_unit_test(test_lock_free_readers_during_eviction),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
