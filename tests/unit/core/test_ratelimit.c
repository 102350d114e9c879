/*
 * test_ratelimit.c - GCRA: a burst is exact, the rate refills it, the
 * headers' numbers, keys apart, and bounded memory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/ratelimit.h"

#define S 1000000ull /* one second in microseconds */

static unsigned allowed(struct st_ratelimit *rl, uint64_t key, uint64_t interval, uint64_t burst,
                        uint64_t now, unsigned n)
{
    unsigned ok = 0;
    struct st_rl_verdict v;
    for (unsigned i = 0; i < n; i++) {
        st_ratelimit_take(rl, key, interval, burst, now, &v);
        ok += v.allowed;
    }
    return ok;
}

static void test_burst_is_exact_then_the_rate(void **state)
{
    (void)state;
    struct st_ratelimit *rl = st_ratelimit_create();
    /* 10/s, burst 20: 20 at once, the 21st refused. */
    assert_int_equal(allowed(rl, 42, S / 10, 20, 100 * S, 50), 20);
    /* One second later: 10 more. */
    assert_int_equal(allowed(rl, 42, S / 10, 20, 101 * S, 50), 10);
    /* Another key has its own bucket. */
    assert_int_equal(allowed(rl, 43, S / 10, 20, 101 * S, 50), 20);
    st_ratelimit_destroy(rl);
}

static void test_verdict_numbers(void **state)
{
    (void)state;
    struct st_ratelimit *rl = st_ratelimit_create();
    struct st_rl_verdict v;
    uint64_t now = 50 * S;
    st_ratelimit_take(rl, 7, S, 3, now, &v); /* 1/s, burst 3 */
    assert_true(v.allowed);
    assert_int_equal(v.limit, 3);
    assert_int_equal(v.remaining, 2);
    assert_int_equal(v.reset_s, 1);
    st_ratelimit_take(rl, 7, S, 3, now, &v);
    st_ratelimit_take(rl, 7, S, 3, now, &v);
    assert_true(v.allowed);
    assert_int_equal(v.remaining, 0);
    assert_int_equal(v.reset_s, 3);
    st_ratelimit_take(rl, 7, S, 3, now, &v);
    assert_false(v.allowed);
    assert_int_equal(v.retry_after_s, 1);
    st_ratelimit_take(rl, 7, S, 3, now + S / 2, &v); /* half a second: still none */
    assert_false(v.allowed);
    assert_int_equal(v.retry_after_s, 1);
    st_ratelimit_take(rl, 7, S, 3, now + S, &v); /* one came back */
    assert_true(v.allowed);
    assert_int_equal(v.remaining, 0);
    st_ratelimit_destroy(rl);
}

static void test_slow_rate_retry_after(void **state)
{
    (void)state;
    struct st_ratelimit *rl = st_ratelimit_create();
    struct st_rl_verdict v;
    st_ratelimit_take(rl, 9, 60 * S, 1, 10 * S, &v); /* 1/m, burst 1 */
    assert_true(v.allowed);
    st_ratelimit_take(rl, 9, 60 * S, 1, 10 * S, &v);
    assert_false(v.allowed);
    assert_int_equal(v.retry_after_s, 60);
    assert_int_equal(v.reset_s, 60);
    st_ratelimit_destroy(rl);
}

static void test_memory_is_bounded_and_eviction_only_forgives(void **state)
{
    (void)state;
    struct st_ratelimit *rl = st_ratelimit_create();
    uint64_t now = 1000 * S;
    /* Far more keys than the table holds, each using its one request. */
    uint64_t n = 4 * ST_RL_SHARDS * ST_RL_SETS * ST_RL_WAYS;
    for (uint64_t k = 1; k <= n; k++)
        assert_int_equal(allowed(rl, k * 0x9E3779B97F4A7C15ull, 60 * S, 1, now + k, 1), 1);
    /* The first key was pushed out (least recently used): it starts with a full bucket. */
    assert_int_equal(allowed(rl, 1 * 0x9E3779B97F4A7C15ull, 60 * S, 1, now + n + 1, 2), 1);
    /* The last one was not: its bucket is still empty. */
    assert_int_equal(allowed(rl, n * 0x9E3779B97F4A7C15ull, 60 * S, 1, now + n + 2, 1), 0);
    st_ratelimit_destroy(rl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_is_exact_then_the_rate),
        cmocka_unit_test(test_verdict_numbers),
        cmocka_unit_test(test_slow_rate_retry_after),
        cmocka_unit_test(test_memory_is_bounded_and_eviction_only_forgives),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
