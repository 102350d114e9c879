/*
 * test_servers.c - an upstream's address set: round-robin, passive health
 * with backoff, active checks, the last address never out, and state that
 * survives a re-resolve.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <netinet/in.h>

#include "origin/servers.h"

static struct sockaddr_storage v4(const char *ip, unsigned port)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    in->sin_family = AF_INET;
    in->sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, ip, &in->sin_addr);
    return ss;
}

/* An upstream "u" with n numeric servers 10.0.0.1..n:80, and one name "api:80" if with_name. */
struct fixture {
    struct st_upstream_cfg cfg;
    struct st_addr servers[4];
};

static void fixture_init(struct fixture *f, size_t n, bool with_name)
{
    memset(f, 0, sizeof(*f));
    static char name[] = "u";
    f->cfg.name = name;
    for (size_t i = 0; i < n; i++) {
        char text[32];
        snprintf(text, sizeof(text), "10.0.0.%zu:80", i + 1);
        assert_int_equal(st_parse_server_addr(text, &f->servers[i]), 0);
    }
    if (with_name)
        assert_int_equal(st_parse_server_addr("api:80", &f->servers[n++]), 0);
    f->cfg.servers = f->servers;
    f->cfg.n_servers = n;
    f->cfg.health.fails = 3;
    f->cfg.health.passes = 2;
}

static void fixture_finish(struct fixture *f)
{
    for (size_t i = 0; i < f->cfg.n_servers; i++)
        st_addr_finish(&f->servers[i]);
}

static uint32_t pick(struct st_servers *s, uint64_t now, char *addr)
{
    struct st_server_pick p;
    assert_true(st_servers_pick(s, now, &p));
    if (addr)
        st_servers_format(&p.sa, addr, 64);
    return p.id;
}

static void test_round_robin(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f, 3, false);
    struct st_servers *s = st_servers_create(&f.cfg);
    uint32_t a = pick(s, 0, NULL), b = pick(s, 0, NULL), c = pick(s, 0, NULL);
    assert_true(a != b && b != c && a != c);
    assert_int_equal(pick(s, 0, NULL), a);
    st_servers_unref(s);
    fixture_finish(&f);
}

static void test_connect_failure_takes_out_with_backoff(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f, 2, false);
    struct st_servers *s = st_servers_create(&f.cfg);
    uint32_t bad = pick(s, 0, NULL), good = pick(s, 0, NULL);
    st_servers_report(s, bad, 1000, ST_SERVER_UNREACHABLE);
    for (int i = 0; i < 10; i++) /* skipped within the first backoff (1 s +-20 %) */
        assert_int_equal(pick(s, 1000 + 799, NULL), good);
    struct st_server_info v[4];
    assert_int_equal(st_servers_list(s, 1001, v, 4), 2);
    assert_int_equal(v[0].id == bad ? v[0].state : v[1].state, ST_SERVER_DOWN);
    /* After the backoff it gets a trial; failing again doubles the backoff. */
    bool tried = false;
    for (int i = 0; i < 2; i++)
        tried = tried || pick(s, 1000 + 1201, NULL) == bad;
    assert_true(tried);
    st_servers_report(s, bad, 2201, ST_SERVER_UNREACHABLE);
    for (int i = 0; i < 10; i++)
        assert_int_equal(pick(s, 2201 + 1599, NULL), good); /* 2 s -20 % */
    /* A success after the backoff brings it back in good standing. */
    st_servers_report(s, bad, 2201 + 2401, ST_SERVER_OK);
    assert_int_equal(st_servers_list(s, 2201 + 2401, v, 4), 2);
    assert_int_equal(v[0].state, ST_SERVER_UP);
    assert_int_equal(v[1].state, ST_SERVER_UP);
    st_servers_unref(s);
    fixture_finish(&f);
}

static void test_failed_answers_count_to_the_threshold(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f, 2, false);
    struct st_servers *s = st_servers_create(&f.cfg);
    uint32_t bad = pick(s, 0, NULL), good = pick(s, 0, NULL);
    st_servers_report(s, bad, 10, ST_SERVER_FAILED);
    st_servers_report(s, bad, 10, ST_SERVER_FAILED);
    st_servers_report(s, bad, 10, ST_SERVER_OK); /* a success in between resets the count */
    st_servers_report(s, bad, 10, ST_SERVER_FAILED);
    st_servers_report(s, bad, 10, ST_SERVER_FAILED);
    assert_int_equal(pick(s, 10, NULL), bad); /* 2 in a row: still in */
    pick(s, 10, NULL);
    st_servers_report(s, bad, 10, ST_SERVER_FAILED); /* the third (ST_SERVERS_FAILS) */
    for (int i = 0; i < 4; i++)
        assert_int_equal(pick(s, 11, NULL), good);
    st_servers_unref(s);
    fixture_finish(&f);
}

static void test_last_address_is_never_taken_out(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f, 2, false);
    struct st_servers *s = st_servers_create(&f.cfg);
    uint32_t a = pick(s, 0, NULL), b = pick(s, 0, NULL);
    st_servers_report(s, a, 0, ST_SERVER_UNREACHABLE);
    st_servers_report(s, b, 0, ST_SERVER_UNREACHABLE); /* would leave none: stays in */
    for (int i = 0; i < 4; i++)
        assert_int_equal(pick(s, 1, NULL), b);
    for (int i = 0; i < 5; i++)
        st_servers_checked(s, b, 1, false); /* nor do failed checks take it out */
    assert_int_equal(pick(s, 1, NULL), b);
    st_servers_unref(s);

    /* One server only: every failure leaves it in. */
    fixture_finish(&f);
    fixture_init(&f, 1, false);
    s = st_servers_create(&f.cfg);
    uint32_t only = pick(s, 0, NULL);
    for (int i = 0; i < 10; i++)
        st_servers_report(s, only, 0, ST_SERVER_FAILED);
    struct st_server_info v[1];
    st_servers_list(s, 1, v, 1);
    assert_int_equal(v[0].state, ST_SERVER_UP);
    st_servers_unref(s);
    fixture_finish(&f);
}

static void test_active_checks(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f, 2, false);
    f.cfg.health.enabled = true;
    struct st_servers *s = st_servers_create(&f.cfg);
    uint32_t bad = pick(s, 0, NULL), good = pick(s, 0, NULL);
    st_servers_checked(s, bad, 0, false);
    st_servers_checked(s, bad, 0, false);
    assert_int_equal(pick(s, 0, NULL), bad); /* fails: 3 */
    pick(s, 0, NULL);
    st_servers_checked(s, bad, 0, false);
    struct st_server_info v[2];
    st_servers_list(s, 0, v, 2);
    assert_int_equal(v[0].id == bad ? v[0].state : v[1].state, ST_SERVER_FAILING_CHECKS);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pick(s, 100000, NULL), good); /* no backoff: out until checks pass */
    st_servers_checked(s, bad, 0, true);
    assert_int_equal(pick(s, 0, NULL), good);
    assert_int_equal(pick(s, 0, NULL), good); /* passes: 2 */
    st_servers_checked(s, bad, 0, true);
    bool back = false;
    for (int i = 0; i < 2; i++)
        back = back || pick(s, 0, NULL) == bad;
    assert_true(back);
    st_servers_unref(s);
    fixture_finish(&f);
}

static void test_resolve_replaces_and_keeps_state(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f, 1, true); /* 10.0.0.1:80 and api:80 */
    struct st_servers *s = st_servers_create(&f.cfg);
    struct st_server_info v[8];
    assert_int_equal(st_servers_list(s, 0, v, 8), 1); /* the name is not resolved yet */
    struct sockaddr_storage r1[] = {v4("192.168.1.1", 80), v4("192.168.1.2", 80),
                                    v4("192.168.1.1", 80)};
    st_servers_set(s, 1, r1, 3); /* the duplicate is dropped */
    assert_int_equal(st_servers_list(s, 0, v, 8), 3);
    assert_string_equal(v[0].addr, "10.0.0.1:80");
    assert_string_equal(v[1].addr, "192.168.1.1:80");
    assert_string_equal(v[2].addr, "192.168.1.2:80");
    uint32_t kept = v[2].id;
    st_servers_report(s, kept, 0, ST_SERVER_FAILED);
    /* The name moves: .1 goes, .2 stays (with its count), .3 comes. */
    struct sockaddr_storage r2[] = {v4("192.168.1.2", 80), v4("192.168.1.3", 80)};
    unsigned gen = st_servers_generation(s);
    assert_true(st_servers_set(s, 1, r2, 2));
    assert_int_not_equal(st_servers_generation(s), gen);
    /* The same answer again, in another order: nothing changes, pools keep their connections. */
    gen = st_servers_generation(s);
    struct sockaddr_storage r2b[] = {r2[1], r2[0]};
    assert_false(st_servers_set(s, 1, r2b, 2));
    assert_int_equal(st_servers_generation(s), gen);
    assert_int_equal(st_servers_list(s, 0, v, 8), 3);
    assert_string_equal(v[0].addr, "10.0.0.1:80");
    assert_string_equal(v[1].addr, "192.168.1.2:80");
    assert_int_equal(v[1].id, kept);
    assert_int_equal(v[1].fails, 1);
    assert_string_equal(v[2].addr, "192.168.1.3:80");
    /* Every address takes its turn. */
    char seen[3][64] = {{0}};
    for (int i = 0; i < 3; i++)
        pick(s, 0, seen[i]);
    for (int i = 0; i < 3; i++)
        for (int j = i + 1; j < 3; j++)
            assert_string_not_equal(seen[i], seen[j]);
    /* A report for an address resolved away is ignored. */
    st_servers_report(s, 9999, 0, ST_SERVER_UNREACHABLE);
    st_servers_unref(s);
    fixture_finish(&f);
}

static void test_no_address_yet(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f, 0, true);
    struct st_servers *s = st_servers_create(&f.cfg);
    struct st_server_pick p;
    assert_false(st_servers_pick(s, 0, &p));
    assert_false(st_servers_take_resolve_wish(s));
    st_servers_want_resolve(s);
    assert_true(st_servers_take_resolve_wish(s));
    assert_false(st_servers_take_resolve_wish(s));
    st_servers_unref(s);
    fixture_finish(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_robin),
        cmocka_unit_test(test_connect_failure_takes_out_with_backoff),
        cmocka_unit_test(test_failed_answers_count_to_the_threshold),
        cmocka_unit_test(test_last_address_is_never_taken_out),
        cmocka_unit_test(test_active_checks),
        cmocka_unit_test(test_resolve_replaces_and_keeps_state),
        cmocka_unit_test(test_no_address_yet),
    };
    return cmocka_run_group_tests_name("servers", tests, NULL, NULL);
}
