/*
 * test_flight.c - single-flight: one leader per key, parked waiters woken
 * once with the leader's result through their callback, flights of
 * different keys independent, and waiters on other threads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <stdatomic.h>
#include <uv.h>

#include "cache/flight.h"
#include "cache/store.h"

struct test_waiter {
    struct st_flight_waiter fw;
    int woken;
};

static void on_wake(struct st_flight_waiter *fw)
{
    ((struct test_waiter *)fw)->woken++;
}

static void test_flight_leader(void **state)
{
    (void)state;
    struct st_flights *c = st_flights_create();
    uint64_t h = st_store_hash("/f", 2);
    assert_int_equal(st_flight_join(c, h, "/f", 2, NULL), ST_FLIGHT_LEADER);
    assert_int_equal(st_flight_join(c, h, "/f", 2, NULL), ST_FLIGHT_PARKED);
    assert_int_equal(st_flight_join(c, h, "/g", 2, NULL), ST_FLIGHT_LEADER);
    st_flight_done(c, h, "/f", 2, ST_FLIGHT_STORED, 0);
    assert_int_equal(st_flight_join(c, h, "/f", 2, NULL), ST_FLIGHT_LEADER);
    st_flight_done(c, h, "/f", 2, ST_FLIGHT_STORED, 0);
    st_flight_done(c, st_store_hash("/g", 2), "/g", 2, ST_FLIGHT_STORED, 0);
    st_flights_destroy(c);
}

static void test_waiters_get_the_result(void **state)
{
    (void)state;
    struct st_flights *f = st_flights_create();
    uint64_t h = st_store_hash("/k", 2);
    struct test_waiter w[3];
    memset(w, 0, sizeof(w));
    assert_int_equal(st_flight_join(f, h, "/k", 2, NULL), ST_FLIGHT_LEADER);
    for (int i = 0; i < 3; i++) {
        w[i].fw.wake = on_wake;
        assert_int_equal(st_flight_join(f, h, "/k", 2, &w[i].fw), ST_FLIGHT_PARKED);
    }
    /* Another key's flight ends: nobody here is woken. */
    uint64_t h2 = st_store_hash("/o", 2);
    assert_int_equal(st_flight_join(f, h2, "/o", 2, NULL), ST_FLIGHT_LEADER);
    st_flight_done(f, h2, "/o", 2, ST_FLIGHT_STORED, 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(w[i].woken, 0);
    st_flight_done(f, h, "/k", 2, ST_FLIGHT_FAILED, 504);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(w[i].woken, 1);
        assert_int_equal(w[i].fw.result, ST_FLIGHT_FAILED);
        assert_int_equal(w[i].fw.status, 504);
    }
    /* Done twice: the second finds no flight and wakes nobody again. */
    st_flight_done(f, h, "/k", 2, ST_FLIGHT_STORED, 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(w[i].woken, 1);
    st_flights_destroy(f);
}

/* Threads that join one key at once: exactly one leads, every other is parked and woken once. */
#define JOINERS 8

struct joiner {
    struct st_flights *f;
    struct test_waiter w;
    enum st_flight_role role;
    _Atomic int *go;
};

static void join_thread(void *p)
{
    struct joiner *j = p;
    while (!atomic_load(j->go))
        ;
    j->w.fw.wake = on_wake;
    j->role = st_flight_join(j->f, st_store_hash("/t", 2), "/t", 2, &j->w.fw);
}

static void test_one_leader_across_threads(void **state)
{
    (void)state;
    struct st_flights *f = st_flights_create();
    _Atomic int go = 0;
    struct joiner j[JOINERS];
    uv_thread_t th[JOINERS];
    memset(j, 0, sizeof(j));
    for (int i = 0; i < JOINERS; i++) {
        j[i].f = f;
        j[i].go = &go;
        assert_int_equal(uv_thread_create(&th[i], join_thread, &j[i]), 0);
    }
    atomic_store(&go, 1);
    for (int i = 0; i < JOINERS; i++)
        uv_thread_join(&th[i]);
    int leaders = 0;
    for (int i = 0; i < JOINERS; i++)
        leaders += j[i].role == ST_FLIGHT_LEADER;
    assert_int_equal(leaders, 1);
    st_flight_done(f, st_store_hash("/t", 2), "/t", 2, ST_FLIGHT_STORED, 0);
    for (int i = 0; i < JOINERS; i++)
        assert_int_equal(j[i].w.woken, j[i].role == ST_FLIGHT_PARKED ? 1 : 0);
    st_flights_destroy(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flight_leader),
        cmocka_unit_test(test_waiters_get_the_result),
        cmocka_unit_test(test_one_leader_across_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
