/*
 * test_range.c - Range parsing against a representation of known length:
 * single, open, suffix and multiple ranges, clamping, unsatisfiable ranges,
 * and what is ignored (other units, malformed values, too many ranges).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "http/range.h"

static enum st_range_result parse(const char *v, uint64_t length, struct st_range *out, size_t *n)
{
    return st_range_parse(v, strlen(v), length, out, n);
}

static void test_single_and_multiple(void **state)
{
    (void)state;
    struct st_range r[ST_RANGE_MAX];
    size_t n;
    assert_int_equal(parse("bytes=0-99", 1000, r, &n), ST_RANGE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(r[0].first, 0);
    assert_int_equal(r[0].last, 99);
    assert_int_equal(parse("bytes=900-", 1000, r, &n), ST_RANGE_OK);
    assert_int_equal(r[0].first, 900);
    assert_int_equal(r[0].last, 999);
    assert_int_equal(parse("bytes=-50", 1000, r, &n), ST_RANGE_OK);
    assert_int_equal(r[0].first, 950);
    assert_int_equal(parse("bytes=-5000", 1000, r, &n), ST_RANGE_OK); /* the whole thing */
    assert_int_equal(r[0].first, 0);
    assert_int_equal(parse("bytes=990-2000", 1000, r, &n), ST_RANGE_OK); /* clamped */
    assert_int_equal(r[0].last, 999);
    assert_int_equal(parse(" bytes=0-0 , 5-9,\t-1", 1000, r, &n), ST_RANGE_OK);
    assert_int_equal(n, 3);
    assert_int_equal(r[1].first, 5);
    assert_int_equal(r[2].first, 999);
    /* One unsatisfiable range among good ones is left out. */
    assert_int_equal(parse("bytes=2000-3000, 0-1", 1000, r, &n), ST_RANGE_OK);
    assert_int_equal(n, 1);
}

static void test_unsatisfiable(void **state)
{
    (void)state;
    struct st_range r[ST_RANGE_MAX];
    size_t n;
    assert_int_equal(parse("bytes=1000-", 1000, r, &n), ST_RANGE_UNSATISFIABLE);
    assert_int_equal(parse("bytes=-0", 1000, r, &n), ST_RANGE_UNSATISFIABLE);
    assert_int_equal(parse("bytes=0-10", 0, r, &n), ST_RANGE_UNSATISFIABLE);
}

static void test_ignored(void **state)
{
    (void)state;
    struct st_range r[ST_RANGE_MAX];
    size_t n;
    const char *bad[] = {"items=0-1",  "bytes=",      "bytes=a-b", "bytes=5-1",
                         "bytes=0-1,", "bytes=0-1;x", "bytes 0-1", "bytes=99999999999999999999-",
                         NULL};
    for (int i = 0; bad[i]; i++)
        assert_int_equal(parse(bad[i], 1000, r, &n), ST_RANGE_NONE);
    char many[512] = "bytes=0-0";
    for (int i = 1; i <= ST_RANGE_MAX; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), ",%d-%d", i, i);
    assert_int_equal(parse(many, 1000, r, &n), ST_RANGE_NONE);
}

static void test_if_range(void **state)
{
    (void)state;
    const char *lm = "Sun, 06 Nov 1994 08:49:37 GMT";
    int64_t lm_ms = 784111777000LL;
    assert_true(st_range_if_range_ok("\"a\"", 3, "\"a\"", 3, -1));
    assert_false(st_range_if_range_ok("\"b\"", 3, "\"a\"", 3, -1));
    assert_false(st_range_if_range_ok("W/\"a\"", 5, "W/\"a\"", 5, -1)); /* weak: never */
    assert_false(st_range_if_range_ok("\"a\"", 3, "W/\"a\"", 5, -1));
    assert_false(st_range_if_range_ok("\"a\"", 3, NULL, 0, lm_ms));
    assert_true(st_range_if_range_ok(lm, strlen(lm), NULL, 0, lm_ms));
    assert_false(st_range_if_range_ok(lm, strlen(lm), NULL, 0, lm_ms + 1000));
    assert_false(st_range_if_range_ok(lm, strlen(lm), "\"a\"", 3, -1));
    assert_false(st_range_if_range_ok("junk", 4, NULL, 0, lm_ms));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_and_multiple),
        cmocka_unit_test(test_unsatisfiable),
        cmocka_unit_test(test_ignored),
        cmocka_unit_test(test_if_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
