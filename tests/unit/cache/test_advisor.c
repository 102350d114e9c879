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
    struct st_advisor *a = st_advisor_create();
    st_advisor_set_tiers(a, three, 3);
    struct st_advisor_feed *f = st_advisor_feed_create(a);
    /* Every second for 100 s: ttl 0.5 s never hits; 5 s misses at 0, 5, 10, ... (20
     * misses); 60 s misses at 0 and 60. */
    for (int i = 0; i < 100; i++)
        st_advisor_observe(f, 3, key_hash(1), 1000000 + i * 1000, 0);
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
    st_advisor_feed_destroy(f);
    st_advisor_destroy(a);
}

static void test_stale_while_revalidate_refreshes(void **state)
{
    (void)state;
    struct st_advisor *a = st_advisor_create();
    /* ttl 2 s + swr 3 s at a period of 1 s: a stale answer at age 2 refreshes the key,
     * so only the first request misses. Without swr: misses at 0, 2, 4, ... */
    const struct st_advisor_tier t[] = {{.ttl_ms = 2000, .swr_ms = 3000}, {.ttl_ms = 2000}};
    st_advisor_set_tiers(a, t, 2);
    struct st_advisor_feed *f = st_advisor_feed_create(a);
    for (int i = 0; i < 50; i++)
        st_advisor_observe(f, 0, key_hash(7), 5000 + i * 1000, 0);
    struct st_advisor_estimate e;
    assert_true(st_advisor_estimate(a, 0, &e));
    assert_true(e.hit_ratio[0] == 49.0 / 50.0);
    assert_true(e.hit_ratio[1] == 25.0 / 50.0);
    st_advisor_feed_destroy(f);
    st_advisor_destroy(a);
}

static void test_many_keys_are_sampled_and_bounded(void **state)
{
    (void)state;
    struct st_advisor *a = st_advisor_create();
    st_advisor_set_tiers(a, three, 3);
    struct st_advisor_feed *f = st_advisor_feed_create(a);
    /* 20,000 keys, each requested once a second (one round a second) for 30 s: whatever
     * keys are followed, ttl 5 s gives 4 hits in 5 after the first miss. */
    const unsigned keys = 20000, rounds = 30;
    for (unsigned r = 0; r < rounds; r++)
        for (unsigned k = 0; k < keys; k++)
            st_advisor_observe(f, 1, key_hash(k), (int64_t)r * 1000 + k / 100, 0);
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
    st_advisor_feed_destroy(f);
    st_advisor_destroy(a);
}

static void test_fast_and_slow_keys_weigh_by_requests(void **state)
{
    (void)state;
    struct st_advisor *a = st_advisor_create();
    const struct st_advisor_tier t[] = {{.ttl_ms = 5000}, {.ttl_ms = 20000}};
    st_advisor_set_tiers(a, t, 2);
    struct st_advisor_feed *f = st_advisor_feed_create(a);
    /* 200 fast keys every second, 200 slow keys every 10 s, for 200 s. ttl 5 s: fast keys
     * 0.8, slow ones 0; ttl 20 s: fast 0.95, slow 0.5. Requests: 40,000 fast, 4,000 slow. */
    for (int s = 0; s < 200; s++) {
        for (unsigned k = 0; k < 200; k++)
            st_advisor_observe(f, 2, key_hash(k), (int64_t)s * 1000, 0);
        if (s % 10 == 0)
            for (unsigned k = 200; k < 400; k++)
                st_advisor_observe(f, 2, key_hash(k), (int64_t)s * 1000, 0);
    }
    struct st_advisor_estimate e;
    assert_true(st_advisor_estimate(a, 2, &e));
    assert_int_equal(e.requests, 44000);
    assert_true(e.sample_rate == 1.0);
    double want5 = (40000 * 0.8) / 44000, want20 = (40000 * 0.95 + 4000 * 0.5) / 44000;
    assert_true(e.hit_ratio[0] > want5 - 1e-9 && e.hit_ratio[0] < want5 + 1e-9);
    assert_true(e.hit_ratio[1] > want20 - 1e-9 && e.hit_ratio[1] < want20 + 1e-9);
    st_advisor_feed_destroy(f);
    st_advisor_destroy(a);
}

static void test_out_of_order_counts_as_a_hit(void **state)
{
    (void)state;
    struct st_advisor *a = st_advisor_create();
    const struct st_advisor_tier t[] = {{.ttl_ms = 1000}};
    st_advisor_set_tiers(a, t, 1);
    struct st_advisor_feed *f = st_advisor_feed_create(a);
    st_advisor_observe(f, 0, key_hash(1), 10000, 0);
    st_advisor_observe(f, 0, key_hash(1), 9000, 0); /* another worker's, seen late */
    st_advisor_observe(f, 0, key_hash(1), 12000, 0);
    struct st_advisor_estimate e;
    assert_true(st_advisor_estimate(a, 0, &e));
    assert_true(e.hit_ratio[0] == 1.0 / 3.0);
    st_advisor_feed_destroy(f);
    st_advisor_destroy(a);
}

static void test_a_tier_change_starts_afresh(void **state)
{
    (void)state;
    struct st_advisor *a = st_advisor_create();
    st_advisor_set_tiers(a, three, 3);
    struct st_advisor_feed *f = st_advisor_feed_create(a);
    for (int i = 0; i < 10; i++)
        st_advisor_observe(f, 0, key_hash(1), i * 100, 0);
    struct st_advisor_estimate e;
    st_advisor_set_tiers(a, three, 3); /* the same tiers: kept */
    assert_true(st_advisor_estimate(a, 0, &e));
    assert_int_equal(e.requests, 10);
    st_advisor_set_tiers(a, three, 2); /* one fewer: afresh */
    assert_false(st_advisor_estimate(a, 0, &e));
    for (int i = 0; i < 4; i++)
        st_advisor_observe(f, 0, key_hash(1), 5000 + i * 100, 0);
    assert_true(st_advisor_estimate(a, 0, &e));
    assert_int_equal(e.requests, 4);
    assert_int_equal(e.n_tiers, 2);
    /* Without tiers nothing is replayed. */
    st_advisor_set_tiers(a, NULL, 0);
    st_advisor_observe(f, 0, key_hash(1), 9000, 0);
    assert_false(st_advisor_estimate(a, 0, &e));
    st_advisor_feed_destroy(f);
    st_advisor_destroy(a);
}

/* Four producer threads, each with its own feed, and an estimate that drains them all. */
struct producer {
    struct st_advisor *a;
    unsigned base;
};

static void produce(void *arg)
{
    struct producer *p = arg;
    struct st_advisor_feed *f = st_advisor_feed_create(p->a);
    for (int i = 0; i < 10000; i++)
        st_advisor_observe(f, 5, key_hash(p->base + (unsigned)(i % 50)), 1000 + i, 0);
    st_advisor_feed_destroy(f);
}

static void test_feeds_on_several_threads(void **state)
{
    (void)state;
    struct st_advisor *a = st_advisor_create();
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
    st_advisor_destroy(a);
}

/* What a fetch brought: nothing stored (no-store, no-cache, an error) leaves nothing to hit;
 * must-revalidate takes away the stale window; a request that forbids the cache fetches. */
static void test_outcomes_of_fetches(void **state)
{
    (void)state;
    struct st_advisor *a = st_advisor_create();
    const struct st_advisor_tier t[] = {{.ttl_ms = 500}, {.ttl_ms = 60000, .swr_ms = 0}};
    st_advisor_set_tiers(a, t, 2);
    struct st_advisor_feed *f = st_advisor_feed_create(a);
    uint64_t h = key_hash(1);
    /* Never stored: every request fetches, whatever the tier. */
    for (int i = 0; i < 20; i++) {
        st_advisor_observe(f, 0, h, 1000 + i * 100, 0);
        st_advisor_fetched(f, 0, h, 1000 + i * 100 + 10, 0, 0);
    }
    struct st_advisor_estimate e;
    assert_true(st_advisor_estimate(a, 0, &e));
    assert_true(e.hit_ratio[0] == 0.0 && e.hit_ratio[1] == 0.0);
    assert_int_equal(e.stored, 0);
    /* Stored once: the long tier hits from then on; the short one every other request. */
    uint64_t g = key_hash(2);
    st_advisor_observe(f, 1, g, 1000, 0);
    st_advisor_fetched(f, 1, g, 1010, ST_ADVISOR_SERVABLE | ST_ADVISOR_TIER_TTL, 0);
    for (int i = 1; i < 10; i++)
        st_advisor_observe(f, 1, g, 1000 + i * 300, 0);
    assert_true(st_advisor_estimate(a, 1, &e));
    assert_true(e.hit_ratio[1] == 0.9);
    assert_true(e.hit_ratio[0] == 0.5); /* misses at 0, 600, 1200, ...: fetched then */
    assert_int_equal(e.stored, 1);
    assert_int_equal(e.tier_ttl, 1);
    /* A request with no-cache fetches under every tier. */
    st_advisor_observe(f, 1, g, 5000, ST_ADVISOR_FORCED);
    assert_true(st_advisor_estimate(a, 1, &e));
    assert_true(e.hit_ratio[1] == 9.0 / 11.0);
    /* Refetches and whether they were unchanged. */
    st_advisor_fetched(f, 1, g, 5010,
                       ST_ADVISOR_SERVABLE | ST_ADVISOR_REFETCH | ST_ADVISOR_UNCHANGED, 0);
    st_advisor_fetched(f, 1, g, 5020, ST_ADVISOR_SERVABLE | ST_ADVISOR_REFETCH, 0);
    assert_true(st_advisor_estimate(a, 1, &e));
    assert_int_equal(e.refetches, 2);
    assert_int_equal(e.unchanged, 1);
    assert_int_equal(e.stored, 3);
    assert_int_equal(e.tier_ttl, 1);
    /* The origin's max-age, not the tier's ttl, sets the lifetime: every tier alike. */
    uint64_t m = key_hash(6);
    st_advisor_observe(f, 2, m, 1000, 0);
    st_advisor_fetched(f, 2, m, 1010, ST_ADVISOR_SERVABLE, 60000);
    for (int i = 1; i < 10; i++)
        st_advisor_observe(f, 2, m, 1000 + i * 300, 0);
    assert_true(st_advisor_estimate(a, 2, &e));
    assert_true(e.hit_ratio[0] == 0.9 && e.hit_ratio[1] == 0.9);
    assert_int_equal(e.tier_ttl, 0);
    st_advisor_feed_destroy(f);
    st_advisor_destroy(a);
}

static void test_must_revalidate_has_no_stale_window(void **state)
{
    (void)state;
    struct st_advisor *a = st_advisor_create();
    const struct st_advisor_tier t[] = {{.ttl_ms = 1000, .swr_ms = 10000}};
    st_advisor_set_tiers(a, t, 1);
    struct st_advisor_feed *f = st_advisor_feed_create(a);
    uint64_t h = key_hash(3);
    /* Every 2 s: with the stale window every request after the first is a stale hit; with
     * must-revalidate answers every request misses. */
    for (int i = 0; i < 10; i++) {
        st_advisor_observe(f, 0, h, i * 2000, 0);
        st_advisor_fetched(f, 0, h, i * 2000 + 1, ST_ADVISOR_SERVABLE | ST_ADVISOR_NO_STALE, 0);
    }
    struct st_advisor_estimate e;
    assert_true(st_advisor_estimate(a, 0, &e));
    assert_true(e.hit_ratio[0] == 0.0);
    uint64_t g = key_hash(4);
    for (int i = 0; i < 10; i++) {
        st_advisor_observe(f, 1, g, i * 2000, 0);
        st_advisor_fetched(f, 1, g, i * 2000 + 1, ST_ADVISOR_SERVABLE, 0);
    }
    assert_true(st_advisor_estimate(a, 1, &e));
    assert_true(e.hit_ratio[0] == 0.9);
    st_advisor_feed_destroy(f);
    st_advisor_destroy(a);
}

/* Two workers' requests for one key are replayed in time order, not feed after feed. */
static void test_feeds_merge_in_time_order(void **state)
{
    (void)state;
    struct st_advisor *a = st_advisor_create();
    const struct st_advisor_tier t[] = {{.ttl_ms = 100}};
    st_advisor_set_tiers(a, t, 1);
    struct st_advisor_feed *f1 = st_advisor_feed_create(a), *f2 = st_advisor_feed_create(a);
    uint64_t h = key_hash(5);
    /* 0, 125, 250, ... alternating between the feeds: every gap is 125 ms, so with a
     * 100 ms TTL every request misses. Replayed feed after feed, the second feed's
     * requests would look older than the first's last fetch (hits). */
    for (int i = 0; i < 6; i += 2)
        st_advisor_observe(f1, 0, h, i * 125, 0);
    for (int i = 1; i < 6; i += 2)
        st_advisor_observe(f2, 0, h, i * 125, 0);
    struct st_advisor_estimate e;
    assert_true(st_advisor_estimate(a, 0, &e));
    assert_int_equal(e.requests, 6);
    assert_true(e.hit_ratio[0] == 0.0);
    st_advisor_feed_destroy(f1);
    st_advisor_feed_destroy(f2);
    st_advisor_destroy(a);
}

static struct st_advisor_estimate estimate_of(double r0, double r1, double r2, uint64_t refetches,
                                              uint64_t unchanged)
{
    struct st_advisor_estimate e = {.requests = 1000,
                                    .n_tiers = 3,
                                    .sample_rate = 1,
                                    .stored = 100,
                                    .tier_ttl = 100,
                                    .refetches = refetches,
                                    .unchanged = unchanged};
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
    struct st_advisor_estimate e = estimate_of(0.81, 0.93, 0.60, 50, 49);
    assert_true(st_advisor_suggest(&e, names, 0, buf, sizeof(buf)));
    assert_string_equal(buf, "warm \u2192 hot: +12% hit ratio (81% \u2192 93%), 98% of refetches "
                             "were unchanged");
    /* The data changes: keep, and say why. */
    e = estimate_of(0.81, 0.93, 0.60, 50, 35);
    assert_false(st_advisor_suggest(&e, names, 0, buf, sizeof(buf)));
    assert_string_equal(buf, "keep warm: hot would add +12% hit ratio, but 30% of refetches "
                             "had changed");
    /* Too few refetches to know. */
    e = estimate_of(0.81, 0.93, 0.60, 3, 3);
    assert_false(st_advisor_suggest(&e, names, 0, buf, sizeof(buf)));
    assert_string_equal(buf, "keep warm: hot would add +12% hit ratio, but too few refetches "
                             "yet to tell how often the answers change");
    /* A longer tier that adds little, or even less. */
    e = estimate_of(0.90, 0.92, 0.60, 50, 50);
    assert_false(st_advisor_suggest(&e, names, 0, buf, sizeof(buf)));
    assert_string_equal(buf, "keep warm: hot would change the hit ratio by only +2%");
    e = estimate_of(0.90, 0.80, 0.60, 50, 50);
    assert_false(st_advisor_suggest(&e, names, 0, buf, sizeof(buf)));
    assert_string_equal(buf, "keep warm: hot would change the hit ratio by only -10%");
    /* Most refetches changed and the shorter tier costs little (or nothing). */
    e = estimate_of(0.50, 0.60, 0.47, 100, 20);
    assert_true(st_advisor_suggest(&e, names, 0, buf, sizeof(buf)));
    assert_string_equal(buf, "warm \u2192 short: -3% hit ratio (50% \u2192 47%), 80% of "
                             "refetches had changed: fresher answers for little hit ratio");
    e = estimate_of(0.50, 0.60, 0.70, 100, 20);
    assert_true(st_advisor_suggest(&e, names, 0, buf, sizeof(buf)));
    assert_string_equal(buf, "warm \u2192 short: +20% hit ratio (50% \u2192 70%), 80% of "
                             "refetches had changed: fresher answers for little hit ratio");
    /* The longest tier already. */
    assert_false(st_advisor_suggest(&e, names, 1, buf, sizeof(buf)));
    assert_string_equal(buf, "keep hot: no tier is longer");
    /* The origin's Cache-Control set most lifetimes: the tier hardly matters. */
    e = estimate_of(0.81, 0.93, 0.60, 50, 49);
    e.tier_ttl = 30;
    assert_false(st_advisor_suggest(&e, names, 0, buf, sizeof(buf)));
    assert_string_equal(buf, "keep warm: the origin's Cache-Control set the lifetime of 70% of "
                             "the stored answers, so the tier's ttl hardly applies (ttl_source: "
                             "tier makes it apply)");
    /* Not enough traffic yet, or not a replayed tier. */
    e.requests = ST_ADVISOR_MIN_REQUESTS - 1;
    assert_false(st_advisor_suggest(&e, names, 0, buf, sizeof(buf)));
    assert_string_equal(buf, "");
    e.requests = 1000;
    assert_false(st_advisor_suggest(&e, names, 3, buf, sizeof(buf)));
    assert_string_equal(buf, "");
}

/* A sentence longer than the buffer is cut before a character, never inside one. */
static void test_suggestion_cut_at_a_character(void **state)
{
    (void)state;
    const char *names[] = {"warm", "hot", "short"};
    struct st_advisor_estimate e = estimate_of(0.81, 0.93, 0.60, 50, 49);
    char full[256];
    assert_true(st_advisor_suggest(&e, names, 0, full, sizeof(full)));
    const char *arrow = strstr(full, "\u2192");
    assert_non_null(arrow);
    size_t at = (size_t)(arrow - full); /* "warm " */
    for (size_t cap = at + 1; cap <= at + 4; cap++) {
        char buf[64];
        st_advisor_suggest(&e, names, 0, buf, cap);
        /* Up to the arrow's first two bytes: cut before it; with all three: kept. */
        size_t want = cap - 1 >= at + 3 ? at + 3 : at;
        assert_int_equal(strlen(buf), want);
        assert_memory_equal(buf, full, want);
    }
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
        cmocka_unit_test(test_outcomes_of_fetches),
        cmocka_unit_test(test_must_revalidate_has_no_stale_window),
        cmocka_unit_test(test_feeds_merge_in_time_order),
        cmocka_unit_test(test_suggestions),
        cmocka_unit_test(test_suggestion_cut_at_a_character),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
