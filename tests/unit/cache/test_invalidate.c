/*
 * test_invalidate.c - invalidation semantics through the tier interface:
 * a URI without a query drops every query and host of its path, a URI with
 * a query only that query (on every host), a prefix every key under it, a
 * tag its entries; st_invalidate counts and publishes, st_invalidate_apply
 * (what the bus delivers) does neither.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/qsbr.h"
#include "base/stats.h"
#include "cache/invalidate.h"
#include "cache/key.h"
#include "cache/memtier.h"

static void hdr(struct st_headers *h, const char *name, const char *value)
{
    st_headers_name_piece(h, name, strlen(name));
    st_headers_value_piece(h, value, strlen(value));
    st_headers_value_done(h);
}

/* Store an entry under the key of (target, host) with optional Surrogate-Key tags. */
static void put(struct st_cache_tier *t, const char *target, const char *host, const char *tags)
{
    struct st_route_cfg r;
    memset(&r, 0, sizeof(r));
    struct st_sb key;
    st_sb_init(&key, 64);
    st_cache_key_build(&key, &r, target, strlen(target), host, strlen(host), NULL);
    struct st_headers req, resp;
    st_headers_init(&req);
    st_headers_init(&resp);
    if (tags)
        hdr(&resp, "Surrogate-Key", tags);
    struct st_entry_init in = {.key = key.p,
                               .key_len = key.len,
                               .req = &req,
                               .resp = &resp,
                               .status = 200,
                               .body = "x",
                               .body_len = 1,
                               .lifetime_ms = 60000};
    struct st_entry *e = st_entry_new(&in);
    assert_non_null(e);
    assert_true(st_cache_tier_insert(t, e));
    st_entry_unref(e);
    st_headers_finish(&req);
    st_headers_finish(&resp);
    st_sb_finish(&key);
}

static bool present(struct st_cache_tier *t, const char *target, const char *host)
{
    struct st_route_cfg r;
    memset(&r, 0, sizeof(r));
    struct st_sb key;
    st_sb_init(&key, 64);
    st_cache_key_build(&key, &r, target, strlen(target), host, strlen(host), NULL);
    struct st_headers req;
    st_headers_init(&req);
    bool found =
        st_cache_tier_lookup(t, st_cache_tier_hash(key.p, key.len), key.p, key.len, &req) != NULL;
    st_headers_finish(&req);
    st_sb_finish(&key);
    return found;
}

/* An entry for key with body, dirty (a queued write) or not (a fill). */
static struct st_entry *entry(const char *key, const char *body, bool dirty)
{
    struct st_headers req, resp;
    st_headers_init(&req);
    st_headers_init(&resp);
    struct st_entry_init in = {.key = key, .key_len = strlen(key), .req = &req, .resp = &resp,
                               .status = 200, .body = body, .body_len = strlen(body),
                               .lifetime_ms = 60000, .dirty = dirty};
    struct st_entry *e = st_entry_new(&in);
    st_headers_finish(&req);
    st_headers_finish(&resp);
    return e;
}

/* Does the entry for key have this body? */
static bool body_is(struct st_cache_tier *t, const char *key, const char *body)
{
    struct st_headers req;
    st_headers_init(&req);
    struct st_entry *e = st_cache_tier_lookup(t, st_cache_tier_hash(key, strlen(key)), key,
                                              strlen(key), &req);
    st_headers_finish(&req);
    return e && st_entry_body_len(e) == strlen(body) &&
           memcmp(st_entry_body(e), body, strlen(body)) == 0;
}

/* A fill that raced a queued write must not bring the origin's older answer back. */
static void test_fill_never_replaces_a_dirty_entry(void **state)
{
    (void)state;
    struct st_cache_tier *t = st_memtier_create(4 << 20, 64 * 1024);
    struct st_entry *fill = entry("k", "old", false), *w1 = entry("k", "new", true),
                    *w2 = entry("k", "newer", true), *late = entry("k", "stale", false);
    assert_true(st_cache_tier_insert(t, late));
    assert_true(st_cache_tier_insert(t, fill)); /* a fill replaces a fill */
    assert_true(body_is(t, "k", "old"));
    assert_true(st_cache_tier_insert(t, w1)); /* a write replaces a fill */
    assert_true(body_is(t, "k", "new"));
    assert_true(st_cache_tier_insert(t, late)); /* kept what is there */
    assert_true(body_is(t, "k", "new"));
    assert_true(st_cache_tier_insert(t, w2)); /* a later write replaces an earlier one */
    assert_true(body_is(t, "k", "newer"));
    assert_int_equal(st_cache_tier_remove_key(t, "k", 1), 1); /* flushed: dropped */
    assert_true(st_cache_tier_insert(t, late));
    assert_true(body_is(t, "k", "stale"));
    st_entry_unref(fill);
    st_entry_unref(w1);
    st_entry_unref(w2);
    st_entry_unref(late);
    st_cache_tier_destroy(t);
    st_qsbr_offline();
}

static struct st_cache_tier *filled(void)
{
    struct st_cache_tier *t = st_memtier_create(4 << 20, 64 * 1024);
    put(t, "/p", "a", "t1");
    put(t, "/p", "b", NULL);
    put(t, "/p?x=1", "a", "t1 t2");
    put(t, "/p?x=2", "a", NULL);
    put(t, "/pq", "a", NULL);
    put(t, "/p/child", "a", "t2");
    return t;
}

static int setup(void **state)
{
    (void)state;
    return st_qsbr_register() ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    st_qsbr_offline();
    st_qsbr_unregister();
    return 0;
}

static void test_uri_without_query(void **state)
{
    (void)state;
    struct st_cache_tier *t = filled();
    assert_int_equal(st_invalidate_apply(t, ST_INVAL_URI, "/p", 2), 4);
    assert_false(present(t, "/p", "a"));
    assert_false(present(t, "/p", "b"));
    assert_false(present(t, "/p?x=1", "a"));
    assert_true(present(t, "/pq", "a"));      /* another path that starts alike */
    assert_true(present(t, "/p/child", "a")); /* below it: only a prefix drops that */
    st_cache_tier_destroy(t);
}

static void test_uri_with_query(void **state)
{
    (void)state;
    struct st_cache_tier *t = filled();
    assert_int_equal(st_invalidate_apply(t, ST_INVAL_URI, "/p?x=1", 6), 1);
    assert_false(present(t, "/p?x=1", "a"));
    assert_true(present(t, "/p?x=2", "a"));
    assert_true(present(t, "/p", "a"));
    st_cache_tier_destroy(t);
}

static void test_prefix_and_tag(void **state)
{
    (void)state;
    struct st_cache_tier *t = filled();
    assert_int_equal(st_invalidate_apply(t, ST_INVAL_TAG, "t2", 2), 2);
    assert_false(present(t, "/p/child", "a"));
    assert_true(present(t, "/p", "a"));
    assert_int_equal(st_invalidate_apply(t, ST_INVAL_PREFIX, "/p", 2), 4);
    assert_false(present(t, "/pq", "a"));
    assert_int_equal(st_invalidate_apply(t, ST_INVAL_TAG, "t1", 2), 0);
    st_cache_tier_destroy(t);
}

static void test_tier_remove_key_is_exact(void **state)
{
    (void)state;
    struct st_cache_tier *t = filled();
    /* The key of "/p" on host "a": exactly that entry, no query variant, no other host. */
    assert_int_equal(st_cache_tier_remove_key(t, "/p\x1f" "a", 4), 1);
    assert_false(present(t, "/p", "a"));
    assert_true(present(t, "/p", "b"));
    assert_true(present(t, "/p?x=1", "a"));
    st_cache_tier_destroy(t);
}

struct published {
    int calls;
    int rc; /* what the shared tier answers */
    enum st_inval_kind kind;
    char value[32];
};

static struct published pub;

static int on_shared(struct st_cache_tier *t, enum st_inval_kind kind, const char *value,
                     size_t len)
{
    (void)t;
    pub.calls++;
    pub.kind = kind;
    memcpy(pub.value, value, len);
    pub.value[len] = '\0';
    return pub.rc;
}

/* The memory tier with a shared part that records what it is handed. */
static struct st_cache_tier *with_shared(struct st_cache_tier *t)
{
    static struct st_cache_tier_ops ops;
    ops = *t->ops;
    ops.invalidate_shared = on_shared;
    t->ops = &ops;
    return t;
}

static void test_counts_and_publishes(void **state)
{
    (void)state;
    struct st_cache_tier *t = with_shared(filled());
    static struct st_stats stats;
    memset(&stats, 0, sizeof(stats));
    memset(&pub, 0, sizeof(pub));
    pub.rc = 1;
    assert_int_equal(st_invalidate(t, &stats, ST_INVAL_PREFIX, "/p/", 3), 1);
    assert_int_equal(pub.calls, 1);
    assert_int_equal(pub.kind, ST_INVAL_PREFIX);
    assert_string_equal(pub.value, "/p/");
    assert_int_equal(stats.v[ST_STAT_INVAL_LOCAL], 1);
    assert_int_equal(stats.v[ST_STAT_INVAL_PUBLISHED], 1);
    assert_int_equal(stats.v[ST_STAT_INVAL_ENTRIES], 1);
    /* What the bus delivers is applied, not published again or counted as local. */
    assert_int_equal(st_invalidate_apply(t, ST_INVAL_URI, "/pq", 3), 1);
    assert_int_equal(pub.calls, 1);
    assert_int_equal(stats.v[ST_STAT_INVAL_LOCAL], 1);
    /* Redis down: applied here all the same, and counted as not published. */
    pub.rc = -EAGAIN;
    st_invalidate(t, &stats, ST_INVAL_TAG, "t1", 2);
    assert_int_equal(pub.calls, 2);
    assert_int_equal(stats.v[ST_STAT_INVAL_PUBLISHED], 1);
    assert_int_equal(stats.v[ST_STAT_INVAL_UNPUBLISHED], 1);
    st_cache_tier_destroy(t);
}

static void test_memory_tier_alone_publishes_nothing(void **state)
{
    (void)state;
    struct st_cache_tier *t = filled();
    static struct st_stats stats;
    memset(&stats, 0, sizeof(stats));
    st_invalidate(t, &stats, ST_INVAL_PREFIX, "/p/", 3);
    assert_int_equal(stats.v[ST_STAT_INVAL_PUBLISHED], 0);
    assert_int_equal(stats.v[ST_STAT_INVAL_UNPUBLISHED], 0);
    st_cache_tier_destroy(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uri_without_query),
        cmocka_unit_test(test_fill_never_replaces_a_dirty_entry),
        cmocka_unit_test(test_uri_with_query),
        cmocka_unit_test(test_prefix_and_tag),
        cmocka_unit_test(test_tier_remove_key_is_exact),
        cmocka_unit_test(test_counts_and_publishes),
        cmocka_unit_test(test_memory_tier_alone_publishes_nothing),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
