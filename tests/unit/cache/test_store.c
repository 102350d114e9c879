/*
 * test_store.c - the memory store: lookup and replace, variants, eviction
 * within the byte budget (SIEVE keeps what was hit), key, prefix and tag
 * removal through the indexes, the item layout, and lock-free readers
 * against a writer. Items here are plain bytes: the store knows no HTTP.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "base/qsbr.h"
#include "cache/store.h"

#include <stdatomic.h>
#include <uv.h>

/* An item for key with an optional variant and tags and a blob of n bytes of 'x'. */
static struct st_store_item *make(const char *key, const char *variant, const char *tags, size_t n)
{
    static char blob[70000];
    memset(blob, 'x', sizeof(blob));
    struct st_store_item_init in = {
        .key = key,
        .key_len = strlen(key),
        .variant = variant,
        .variant_len = variant ? strlen(variant) + 1 : 0,
        .tags = tags,
        .tags_len = tags ? strlen(tags) : 0,
        .user_size = 24,
        .extra_len = 3,
        .blob = blob,
        .blob_len = n,
    };
    struct st_store_item *it = st_store_item_new(&in);
    if (it)
        memcpy(st_store_item_extra(it), "ab", 3);
    return it;
}

/* The match callback: the variant is the NUL-terminated string in arg. */
static bool variant_is(const struct st_store_item *it, const void *arg)
{
    return arg && it->variant_len == strlen(arg) + 1 &&
           memcmp(st_store_item_variant(it), arg, it->variant_len) == 0;
}

static struct st_store_item *find(struct st_store *c, const char *key, const char *variant)
{
    return st_store_lookup(c, st_store_hash(key, strlen(key)), key, strlen(key), variant_is,
                           variant);
}

static bool present(struct st_store *c, const char *key, const char *variant)
{
    struct st_store_item *e = find(c, key, variant);
    st_store_item_unref(e);
    return e != NULL;
}

static void insert(struct st_store *c, struct st_store_item *e)
{
    assert_non_null(e);
    assert_true(st_store_insert(c, e));
    st_store_item_unref(e);
}

static void test_item_layout(void **state)
{
    (void)state;
    struct st_store_item *small = make("/k\x1fh", "en", "a b", 10);
    assert_string_equal(st_store_item_key(small), "/k\x1fh");
    assert_int_equal(small->key_len, 4);
    assert_memory_equal(st_store_item_variant(small), "en", 3);
    assert_string_equal(st_store_item_tags(small), "a b");
    assert_int_equal(small->n_tags, 2);
    assert_string_equal(st_store_item_extra(small), "ab");
    assert_int_equal(small->user_size, 24);
    assert_ptr_equal(st_store_item_of(st_store_item_user(small)), small);
    assert_false(small->blob_apart);
    assert_int_equal(small->blob_len, 10);
    assert_int_equal(small->blob[9], 'x');
    /* the record is zeroed */
    const unsigned char *rec = st_store_item_user(small);
    for (int i = 0; i < 24; i++)
        assert_int_equal(rec[i], 0);
    st_store_item_unref(small);
    struct st_store_item *big = make("/b", NULL, NULL, ST_STORE_BLOB_APART);
    assert_true(big->blob_apart);
    assert_null(st_store_item_tags(big));
    assert_int_equal(big->variant_len, 0);
    assert_true(big->charge > ST_STORE_BLOB_APART);
    st_store_item_unref(big);
}

static void test_variants(void **state)
{
    (void)state;
    struct st_store *c = st_store_create(1 << 20, 64 * 1024);
    insert(c, make("/v\x1fh", "en", NULL, 5));
    insert(c, make("/v\x1fh", "fr", NULL, 6));
    insert(c, make("/v\x1fh", "en", NULL, 7)); /* same key and variant: replaces */
    struct st_store_item *en = find(c, "/v\x1fh", "en");
    struct st_store_item *fr = find(c, "/v\x1fh", "fr");
    assert_non_null(en);
    assert_non_null(fr);
    assert_int_equal(en->blob_len, 7);
    assert_int_equal(fr->blob_len, 6);
    assert_false(present(c, "/v\x1fh", "de"));
    assert_false(present(c, "/v\x1fh", NULL));
    st_store_item_unref(en);
    st_store_item_unref(fr);
    assert_int_equal(st_store_remove_key(c, "/v\x1fh", 4), 2);
    st_store_destroy(c);
}

static void test_too_large_parts_are_refused(void **state)
{
    (void)state;
    static char variant[UINT16_MAX + 1];
    struct st_store_item_init in = {
        .key = "/k", .key_len = 2, .variant = variant, .variant_len = sizeof(variant)};
    assert_null(st_store_item_new(&in));
}

static void test_lookup_and_replace(void **state)
{
    (void)state;
    struct st_store *c = st_store_create(1 << 20, 64 * 1024);
    assert_false(present(c, "/a\x1fh", NULL));
    insert(c, make("/a\x1fh", NULL, NULL, 10));
    struct st_store_item *e = find(c, "/a\x1fh", NULL);
    assert_non_null(e);
    assert_int_equal(e->blob_len, 10);
    st_store_item_unref(e);
    insert(c, make("/a\x1fh", NULL, NULL, 20)); /* replaces */
    e = find(c, "/a\x1fh", NULL);
    assert_int_equal(e->blob_len, 20);
    st_store_item_unref(e);
    struct st_store_stats s;
    st_store_stats(c, &s);
    assert_int_equal(s.entries, 1);
    st_store_destroy(c);
}

static void test_eviction_stays_within_budget(void **state)
{
    (void)state;
    uint64_t budget = 256 * 1024;
    struct st_store *c = st_store_create(budget, 16 * 1024);
    insert(c, make("/keep\x1fh", NULL, NULL, 8 * 1024));
    char key[64];
    for (int i = 0; i < 400; i++) {
        snprintf(key, sizeof(key), "/k%d\x1fh", i);
        insert(c, make(key, NULL, NULL, 8 * 1024));
        /* a hot key: hit between inserts */
        assert_true(present(c, "/keep\x1fh", NULL));
        struct st_store_stats s;
        st_store_stats(c, &s);
        assert_true(s.bytes <= budget);
    }
    struct st_store_stats s;
    st_store_stats(c, &s);
    assert_true(s.evictions > 300);
    assert_true(s.entries > 10);
    assert_true(present(c, "/keep\x1fh", NULL)); /* SIEVE spared the visited entry */
    assert_false(present(c, "/k0\x1fh", NULL));
    st_store_destroy(c);
}

static void test_too_large_is_refused(void **state)
{
    (void)state;
    struct st_store *c = st_store_create(1 << 20, 1024);
    struct st_store_item *e = make("/big\x1fh", NULL, NULL, 2048);
    assert_false(st_store_insert(c, e));
    st_store_item_unref(e);
    assert_false(present(c, "/big\x1fh", NULL));
    st_store_destroy(c);
}

static void test_prefix_removal(void **state)
{
    (void)state;
    struct st_store *c = st_store_create(4 << 20, 64 * 1024);
    const char *keys[] = {"/api/a\x1fh", "/api/b?x=1\x1fh", "/api/b\x1fother",
                          "/apis\x1fh",  "/other\x1fh",     "/ap\x1fh"};
    for (size_t i = 0; i < 6; i++)
        insert(c, make(keys[i], NULL, NULL, 3));
    assert_int_equal(st_store_remove_prefix(c, "/api/", 5), 3);
    assert_false(present(c, "/api/a\x1fh", NULL));
    assert_true(present(c, "/apis\x1fh", NULL));
    assert_true(present(c, "/ap\x1fh", NULL));
    assert_int_equal(st_store_remove_prefix(c, "/api/", 5), 0);
    assert_int_equal(st_store_remove_prefix(c, "/", 1), 3);
    struct st_store_stats s;
    st_store_stats(c, &s);
    assert_int_equal(s.entries, 0);
    assert_int_equal(s.bytes, 0);
    st_store_destroy(c);
}

static void test_many_keys_prefix(void **state)
{
    (void)state;
    struct st_store *c = st_store_create(64 << 20, 64 * 1024);
    char key[64];
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof(key), "/%s/%d\x1fh", i % 2 ? "odd" : "even", i);
        insert(c, make(key, NULL, NULL, 1));
    }
    assert_int_equal(st_store_remove_prefix(c, "/odd/", 5), 1000);
    assert_true(present(c, "/even/0\x1fh", NULL));
    assert_false(present(c, "/odd/1\x1fh", NULL));
    st_store_destroy(c);
}

static void test_tag_removal(void **state)
{
    (void)state;
    struct st_store *c = st_store_create(4 << 20, 64 * 1024);
    insert(c, make("/1\x1fh", NULL, "products product-1", 1));
    insert(c, make("/2\x1fh", NULL, " products  product-2 ", 1));
    insert(c, make("/3\x1fh", NULL, "users", 1));
    assert_int_equal(st_store_remove_tag(c, "product-1", 9), 1);
    assert_int_equal(st_store_remove_tag(c, "products", 8), 1);
    assert_false(present(c, "/2\x1fh", NULL));
    assert_true(present(c, "/3\x1fh", NULL));
    assert_int_equal(st_store_remove_tag(c, "product", 7), 0);
    assert_int_equal(st_store_remove_tag(c, "users", 5), 1);
    st_store_destroy(c);
}

static void test_expire_only_published(void **state)
{
    (void)state;
    struct st_store *c = st_store_create(1 << 20, 64 * 1024);
    insert(c, make("/e\x1fh", NULL, NULL, 1));
    struct st_store_item *old = find(c, "/e\x1fh", NULL);
    insert(c, make("/e\x1fh", NULL, NULL, 2));
    st_store_expire(c, old); /* already replaced: nothing happens */
    assert_true(present(c, "/e\x1fh", NULL));
    st_store_item_unref(old);
    struct st_store_item *cur = find(c, "/e\x1fh", NULL);
    st_store_expire(c, cur);
    st_store_item_unref(cur);
    assert_false(present(c, "/e\x1fh", NULL));
    st_store_destroy(c);
}

/*
 * Lock-free readers against a writer that keeps evicting, replacing and
 * invalidating: every entry a reader peeks at must still be whole (ASan in
 * CI turns a premature free into a failure).
 */
struct reader_arg {
    struct st_store *c;
    _Atomic bool *stop;
    bool registered;
    uint64_t found, checked;
};

static void reader(void *p)
{
    struct reader_arg *a = p;
    /* No cmocka assert here: one on another thread crashes instead of failing. */
    a->registered = st_qsbr_register();
    if (!a->registered)
        return;
    char key[32];
    uint64_t r = (uint64_t)(uintptr_t)p | 1;
    for (unsigned i = 0; !atomic_load(a->stop); i++) {
        r ^= r << 13;
        r ^= r >> 7;
        r ^= r << 17;
        int len = snprintf(key, sizeof(key), "/r/%u\x1fh", (unsigned)(r % 3000));
        struct st_store_item *e = st_store_peek(a->c, st_store_hash(key, (size_t)len), key,
                                                (size_t)len, variant_is, NULL);
        if (e) {
            a->found++;
            if (memcmp(st_store_item_key(e), key, (size_t)len) == 0 &&
                e->blob[e->blob_len - 1] == 'x')
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
    struct st_store *c = st_store_create(512 * 1024, 16 * 1024);
    _Atomic bool stop = false;
    struct reader_arg args[2] = {{c, &stop, false, 0, 0}, {c, &stop, false, 0, 0}};
    uv_thread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(uv_thread_create(&th[i], reader, &args[i]), 0);
    char key[32];
    for (int i = 0; i < 60000; i++) {
        snprintf(key, sizeof(key), "/r/%d\x1fh", (i * 7919) % 3000);
        insert(c, make(key, NULL, i % 5 ? NULL : "t", 100 + (size_t)(i % 1500)));
        if (i % 1000 == 999)
            st_store_remove_prefix(c, "/r/1", 4);
        if (i % 2500 == 0)
            st_store_remove_tag(c, "t", 1);
    }
    atomic_store(&stop, true);
    for (int i = 0; i < 2; i++)
        uv_thread_join(&th[i]);
    for (int i = 0; i < 2; i++) {
        assert_true(args[i].registered);
        assert_int_equal(args[i].found, args[i].checked);
    }
    assert_true(args[0].found + args[1].found > 0);
    struct st_store_stats s;
    st_store_stats(c, &s);
    assert_true(s.bytes <= 512 * 1024);
    st_store_destroy(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_item_layout),
        cmocka_unit_test(test_lookup_and_replace),
        cmocka_unit_test(test_variants),
        cmocka_unit_test(test_too_large_parts_are_refused),
        cmocka_unit_test(test_eviction_stays_within_budget),
        cmocka_unit_test(test_too_large_is_refused),
        cmocka_unit_test(test_prefix_removal),
        cmocka_unit_test(test_many_keys_prefix),
        cmocka_unit_test(test_tag_removal),
        cmocka_unit_test(test_expire_only_published),
        cmocka_unit_test(test_lock_free_readers_during_eviction),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
