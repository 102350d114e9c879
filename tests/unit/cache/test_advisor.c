/*
 * test_advisor.c - the TTL-tier advisor on synthetic traces whose answer is
 * known: one key at a fixed period (exact ratios per TTL), stale-while-
 * revalidate, many more keys than the table holds (sampling keeps the ratio
 * and the table bounded), a mix of fast and slow keys, events out of order,
 * a tier change starting afresh, feeds on several threads, and the
 * suggestion sentences.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <uv.h>

#include "cache/advisor.h"
#include "cache/store.h"

static uint64_t key_hash(unsigned n)
{
    char k[32];
    int len = snprintf(k, sizeof(k), "/k/%u", n);
    return st_store_hash(k, (size_t)len);
}

static const struct st_advisor_tier three[] = {
    {.ttl_ms = 500}, {.ttl_ms = 5000}, {.ttl_ms = 60000}};

static void test_one_key_at_a_fixed_period(void **state)
{
    (void)state;
    struct st_advisor *a = st_advisor_new();
    st_advisor_set_tiers(a, three, 3);
    struct st_advisor_feed *f = st_advisor_feed_new(a);
    /* Every second for 100 s: ttl 0.5 s never hits; 5 s misses at 0, 5, 10, ... (20
     * misses); 60 s misses at 0 and 60. */
    for (int i = 0; i < 100; i++)
        st_advisor_observe(f, 3, key_hash(1), 1000000 + i * 1000);
    struct st_advisor_estimate e;
    assert_true(st_advisor_estimate(a, 3, &e));
    assert_int_equal(e.requests, 100);
    assert_int_equal(e.keys, 1);
    assert_true(e.sample_rate == 1.0);
    assert_int_equal(e.n_tiers, 3);
    assert_true(e.hit_ratio[0] == 0.0);
    assert_true(e.hit_ratio[1] == 0.80);
    assert_true(e.hit_ratio[2] == 0.98);
    /* Another slot saw nothing. */
    assert_false(st_advisor_estimate(a, 4, &e));
    st_advisor_feed_free(f);
    st_advisor_free(a);
}

static void test_stale_while_revalidate_refreshes(void **state)
{
    (void)state;
    struct st_advisor *a = st_advisor_new();
    /* ttl 2 s + swr 3 s at a period of 1 s: a stale answer at age 2 refreshes the key,
     * so only the first request misses. Without swr: misses at 0, 2, 4, ... */
    const struct st_advisor_tier t[] = {{.ttl_ms = 2000, .swr_ms = 3000}, {.ttl_ms = 2000}};
    st_advisor_set_tiers(a, t, 2);
    struct st_advisor_feed *f = st_advisor_feed_new(a);
    for (int i = 0; i < 50; i++)
        st_advisor_observe(f, 0, key_hash(7), 5000 + i * 1000);
    struct st_advisor_estimate e;
    assert_true(st_advisor_estimate(a, 0, &e));
    assert_true(e.hit_ratio[0] == 49.0 / 50.0);
    assert_true(e.hit_ratio[1] == 25.0 / 50.0);
    st_advisor_feed_free(f);
    st_advisor_free(a);
}

static void test_many_keys_are_sampled_and_bounded(void **state)
{
    (void)state;
    struct st_advisor *a = st_advisor_new();
    st_advisor_set_tiers(a, three, 3);
    struct st_advisor_feed *f = st_advisor_feed_new(a);
    /* 20,000 keys, each requested once a second (one round a second) for 30 s: whatever
     * keys are followed, ttl 5 s gives 4 hits in 5 after the first miss. */
    const unsigned keys = 20000, rounds = 30;
    for (unsigned r = 0; r < rounds; r++)
        for (unsigned k = 0; k < keys; k++)
            st_advisor_observe(f, 1, key_hash(k), (int64_t)r * 1000 + k / 100);
    struct st_advisor_estimate e;
    assert_true(st_advisor_estimate(a, 1, &e));
    assert_true(e.keys <= ST_ADVISOR_KEYS);
    assert_true(e.keys >= ST_ADVISOR_KEYS / 2);
    assert_true(e.sample_rate < 0.1);
    /* Every followed key was followed from its first request, and keys that left took
     * their requests with them: 24/30 hits with ttl 5 s (misses at 0, 5, ..., 25), 29/30
     * with 60 s, exactly. */
    assert_int_equal(e.requests, e.keys * rounds);
    assert_true(e.hit_ratio[0] == 0.0);
    assert_true(e.hit_ratio[1] > 0.80 - 1e-9 && e.hit_ratio[1] < 0.80 + 1e-9);
    assert_true(e.hit_ratio[2] > 29.0 / 30 - 1e-9 && e.hit_ratio[2] < 29.0 / 30 + 1e-9);
    st_advisor_feed_free(f);
    st_advisor_free(a);
}

static void test_fast_and_slow_keys_weigh_by_requests(void **state)
{
    (void)state;
    struct st_advisor *a = st_advisor_new();
    const struct st_advisor_tier t[] = {{.ttl_ms = 5000}, {.ttl_ms = 20000}};
    st_advisor_set_tiers(a, t, 2);
    struct st_advisor_feed *f = st_advisor_feed_new(a);
    /* 200 fast keys every second, 200 slow keys every 10 s, for 200 s. ttl 5 s: fast keys
     * 0.8, slow ones 0; ttl 20 s: fast 0.95, slow 0.5. Requests: 40,000 fast, 4,000 slow. */
    for (int s = 0; s < 200; s++) {
        for (unsigned k = 0; k < 200; k++)
            st_advisor_observe(f, 2, key_hash(k), (int64_t)s * 1000);
        if (s % 10 == 0)
            for (unsigned k = 200; k < 400; k++)
                st_advisor_observe(f, 2, key_hash(k), (int64_t)s * 1000);
    }
    struct st_advisor_estimate e;
    assert_true(st_advisor_estimate(a, 2, &e));
    assert_int_equal(e.requests, 44000);
    assert_true(e.sample_rate == 1.0);
    double want5 = (40000 * 0.8) / 44000, want20 = (40000 * 0.95 + 4000 * 0.5) / 44000;
    assert_true(e.hit_ratio[0] > want5 - 1e-9 && e.hit_ratio[0] < want5 + 1e-9);
    assert_true(e.hit_ratio[1] > want20 - 1e-9 && e.hit_ratio[1] < want20 + 1e-9);
    st_advisor_feed_free(f);
    st_advisor_free(a);
}

static void test_out_of_order_counts_as_a_hit(void **state)
{
    (void)state;
    struct st_advisor *a = st_advisor_new();
    const struct st_advisor_tier t[] = {{.ttl_ms = 1000}};
    st_advisor_set_tiers(a, t, 1);
    struct st_advisor_feed *f = st_advisor_feed_new(a);
    st_advisor_observe(f, 0, key_hash(1), 10000);
    st_advisor_observe(f, 0, key_hash(1), 9000); /* another worker's, seen late */
    st_advisor_observe(f, 0, key_hash(1), 12000);
    struct st_advisor_estimate e;
    assert_true(st_advisor_estimate(a, 0, &e));
    assert_true(e.hit_ratio[0] == 1.0 / 3.0);
    st_advisor_feed_free(f);
    st_advisor_free(a);
}

static void test_a_tier_change_starts_afresh(void **state)
{
    (void)state;
    struct st_advisor *a = st_advisor_new();
    st_advisor_set_tiers(a, three, 3);
    struct st_advisor_feed *f = st_advisor_feed_new(a);
    for (int i = 0; i < 10; i++)
        st_advisor_observe(f, 0, key_hash(1), i * 100);
    struct st_advisor_estimate e;
    st_advisor_set_tiers(a, three, 3); /* the same tiers: kept */
    assert_true(st_advisor_estimate(a, 0, &e));
    assert_int_equal(e.requests, 10);
    st_advisor_set_tiers(a, three, 2); /* one fewer: afresh */
    assert_false(st_advisor_estimate(a, 0, &e));
    for (int i = 0; i < 4; i++)
        st_advisor_observe(f, 0, key_hash(1), 5000 + i * 100);
    assert_true(st_advisor_estimate(a, 0, &e));
    assert_int_equal(e.requests, 4);
    assert_int_equal(e.n_tiers, 2);
    /* Without tiers nothing is replayed. */
    st_advisor_set_tiers(a, NULL, 0);
    st_advisor_observe(f, 0, key_hash(1), 9000);
    assert_false(st_advisor_estimate(a, 0, &e));
    st_advisor_feed_free(f);
    st_advisor_free(a);
}

/* Four producer threads, each with its own feed, and an estimate that drains them all. */
struct producer {
    struct st_advisor *a;
    unsigned base;
};

static void produce(void *arg)
{
    struct producer *p = arg;
    struct st_advisor_feed *f = st_advisor_feed_new(p->a);
    for (int i = 0; i < 10000; i++)
        st_advisor_observe(f, 5, key_hash(p->base + (unsigned)(i % 50)), 1000 + i);
    st_advisor_feed_free(f);
}

static void test_feeds_on_several_threads(void **state)
{
    (void)state;
    struct st_advisor *a = st_advisor_new();
    st_advisor_set_tiers(a, three, 3);
    struct producer p[4];
    uv_thread_t th[4];
    for (unsigned i = 0; i < 4; i++) {
        p[i] = (struct producer){a, i * 1000};
        assert_int_equal(uv_thread_create(&th[i], produce, &p[i]), 0);
    }
    for (unsigned i = 0; i < 4; i++)
        uv_thread_join(&th[i]);
    struct st_advisor_estimate e;
    assert_true(st_advisor_estimate(a, 5, &e));
    assert_int_equal(e.requests, 40000);
    assert_int_equal(e.keys, 200);
    st_advisor_free(a);
}

static struct st_advisor_estimate estimate_of(double r0, double r1, double r2)
{
    struct st_advisor_estimate e = {.requests = 1000, .n_tiers = 3, .sample_rate = 1};
    /* config order: warm (60 s), hot (1 h), short (5 s) */
    e.tiers[0].ttl_ms = 60000;
    e.tiers[1].ttl_ms = 3600000;
    e.tiers[2].ttl_ms = 5000;
    e.hit_ratio[0] = r0;
    e.hit_ratio[1] = r1;
    e.hit_ratio[2] = r2;
    return e;
}

static void test_suggestions(void **state)
{
    (void)state;
    const char *names[] = {"warm", "hot", "short"};
    char buf[256];
    struct st_advisor_estimate e = estimate_of(0.81, 0.93, 0.60);
    assert_true(st_advisor_suggest(&e, names, 0, 50, 49, buf, sizeof(buf)));
    assert_string_equal(buf, "warm \u2192 hot: +12% hit ratio (81% \u2192 93%), 98% of refetches "
                             "were unchanged");
    /* The data changes: keep, and say why. */
    assert_false(st_advisor_suggest(&e, names, 0, 50, 35, buf, sizeof(buf)));
    assert_string_equal(buf, "keep warm: hot would add +12% hit ratio, but 30% of refetches "
                             "had changed");
    /* Too few refetches to know. */
    assert_false(st_advisor_suggest(&e, names, 0, 3, 3, buf, sizeof(buf)));
    assert_string_equal(buf, "keep warm: hot would add +12% hit ratio, but too few refetches "
                             "yet to tell how often the answers change");
    /* A longer tier that adds little. */
    e = estimate_of(0.90, 0.92, 0.60);
    assert_false(st_advisor_suggest(&e, names, 0, 50, 50, buf, sizeof(buf)));
    assert_string_equal(buf, "keep warm: hot would add only +2% hit ratio");
    /* Most refetches changed and the shorter tier costs little. */
    e = estimate_of(0.50, 0.60, 0.47);
    assert_true(st_advisor_suggest(&e, names, 0, 100, 20, buf, sizeof(buf)));
    assert_string_equal(buf, "warm \u2192 short: -3% hit ratio (50% \u2192 47%), 80% of "
                             "refetches had changed: fresher answers for little hit ratio");
    /* The longest tier already. */
    assert_false(st_advisor_suggest(&e, names, 1, 100, 100, buf, sizeof(buf)));
    assert_string_equal(buf, "keep hot: no tier is longer");
    /* Not enough traffic yet, or no tier. */
    e.requests = ST_ADVISOR_MIN_REQUESTS - 1;
    assert_false(st_advisor_suggest(&e, names, 0, 100, 100, buf, sizeof(buf)));
    assert_string_equal(buf, "");
    e.requests = 1000;
    assert_false(st_advisor_suggest(&e, names, 3, 100, 100, buf, sizeof(buf)));
    assert_string_equal(buf, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_key_at_a_fixed_period),
        cmocka_unit_test(test_stale_while_revalidate_refreshes),
        cmocka_unit_test(test_many_keys_are_sampled_and_bounded),
        cmocka_unit_test(test_fast_and_slow_keys_weigh_by_requests),
        cmocka_unit_test(test_out_of_order_counts_as_a_hit),
        cmocka_unit_test(test_a_tier_change_starts_afresh),
        cmocka_unit_test(test_feeds_on_several_threads),
        cmocka_unit_test(test_suggestions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
