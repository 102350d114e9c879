/*
 * test_alloc.c - the allocation family: the copying helpers, the allocator's numbers, and
 * the release of free pages (jemalloc builds; the system allocator's have no numbers).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/alloc.h"

static void test_copies(void **state)
{
    (void)state;
    char *s = st_xstrndup("strata proxy", 6);
    assert_string_equal(s, "strata");
    free(s);
    s = st_xasprintf("%s:%d", "127.0.0.1", 8080);
    assert_string_equal(s, "127.0.0.1:8080");
    free(s);
    void *p = st_xmalloc(0); /* a zero size still gives a pointer that free takes */
    assert_non_null(p);
    free(p);
}

static void test_stats_are_consistent(void **state)
{
    (void)state;
    struct st_alloc_stats a;
    void *hold = st_xmalloc(1 << 20);
    memset(hold, 1, 1 << 20);
    st_alloc_stats(&a);
    if (!a.jemalloc) {
        struct st_alloc_stats zero = {0};
        assert_memory_equal(&a, &zero, sizeof(a));
        free(hold);
        return;
    }
    assert_true(a.allocated >= 1 << 20);
    assert_true(a.allocated <= a.active);
    assert_true(a.active + a.dirty <= a.resident);
    assert_true(a.active <= a.mapped);
    free(hold);
}

/* Blocks far above the thread cache's sizes: freeing them leaves whole dirty page runs. */
enum { BLOCKS = 64, BLOCK = 256 * 1024 };

static void test_release_gives_free_pages_back(void **state)
{
    (void)state;
    void *blocks[BLOCKS];
    for (int i = 0; i < BLOCKS; i++) {
        blocks[i] = st_xmalloc(BLOCK);
        memset(blocks[i], i, BLOCK); /* touched: resident */
    }
    for (int i = 0; i < BLOCKS; i++)
        free(blocks[i]);
    struct st_alloc_stats before, after;
    st_alloc_stats(&before);
    st_alloc_release();
    st_alloc_stats(&after);
    if (!before.jemalloc) {
        assert_int_equal(before.dirty, 0);
        assert_int_equal(after.dirty, 0);
        return;
    }
    /* jemalloc's decay keeps what was just freed (it gives pages back over 10 s). */
    assert_true(before.dirty >= (uint64_t)BLOCKS * BLOCK / 2);
    assert_int_equal(after.dirty, 0);
    assert_true(after.resident + (uint64_t)BLOCKS * BLOCK / 2 <= before.resident);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_copies),
        cmocka_unit_test(test_stats_are_consistent),
        cmocka_unit_test(test_release_gives_free_pages_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
