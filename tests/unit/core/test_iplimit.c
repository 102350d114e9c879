/*
 * test_iplimit.c - open connections per client address: the limit, the
 * count back out, and memory that follows the open connections.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "core/iplimit.h"

static void test_limit_per_address(void **state)
{
    (void)state;
    struct st_iplimit l;
    st_iplimit_init(&l);
    assert_true(st_iplimit_open(&l, "10.0.0.1", 2));
    assert_true(st_iplimit_open(&l, "10.0.0.1", 2));
    assert_false(st_iplimit_open(&l, "10.0.0.1", 2)); /* the third is over */
    assert_true(st_iplimit_open(&l, "10.0.0.2", 2));  /* another address is not */
    assert_int_equal(st_iplimit_count(&l, "10.0.0.1"), 3);
    st_iplimit_close(&l, "10.0.0.1"); /* the refused one goes out again */
    st_iplimit_close(&l, "10.0.0.1");
    assert_true(st_iplimit_open(&l, "10.0.0.1", 2)); /* room again */
    st_iplimit_close(&l, "10.0.0.1");
    st_iplimit_close(&l, "10.0.0.1");
    st_iplimit_close(&l, "10.0.0.2");
    assert_int_equal(st_iplimit_count(&l, "10.0.0.1"), 0);
    assert_int_equal(l.n, 0);
    st_iplimit_finish(&l);
}

static void test_no_limit_still_counts(void **state)
{
    (void)state;
    struct st_iplimit l;
    st_iplimit_init(&l);
    for (int i = 0; i < 100; i++)
        assert_true(st_iplimit_open(&l, "::1", 0));
    assert_int_equal(st_iplimit_count(&l, "::1"), 100);
    assert_false(st_iplimit_open(&l, "::1", 50)); /* a limit set later sees them */
    st_iplimit_finish(&l);
}

static void test_many_addresses_grow_and_are_forgotten(void **state)
{
    (void)state;
    struct st_iplimit l;
    st_iplimit_init(&l);
    char ip[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(ip, sizeof(ip), "192.168.%d.%d", i / 256, i % 256);
        assert_true(st_iplimit_open(&l, ip, 1));
    }
    assert_int_equal(l.n, 5000);
    assert_true(l.n_buckets >= 4096);
    for (int i = 0; i < 5000; i++) {
        snprintf(ip, sizeof(ip), "192.168.%d.%d", i / 256, i % 256);
        assert_int_equal(st_iplimit_count(&l, ip), 1);
        st_iplimit_close(&l, ip);
    }
    assert_int_equal(l.n, 0);
    st_iplimit_close(&l, "never.seen"); /* a close without an open changes nothing */
    assert_int_equal(l.n, 0);
    st_iplimit_finish(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limit_per_address),
        cmocka_unit_test(test_no_limit_still_counts),
        cmocka_unit_test(test_many_addresses_grow_and_are_forgotten),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
