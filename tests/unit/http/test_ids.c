/*
 * test_ids.c - request ids and traceparent: what a client may send, and
 * that new ones are well-formed and distinct.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "http/ids.h"

static void test_request_id(void **state)
{
    (void)state;
    assert_true(st_request_id_valid("abc-123_X.y:z", 13));
    assert_false(st_request_id_valid("", 0));
    assert_false(st_request_id_valid("has space", 9));
    assert_false(st_request_id_valid("quote\"", 6));
    char long_id[200];
    memset(long_id, 'a', sizeof(long_id));
    assert_true(st_request_id_valid(long_id, 128));
    assert_false(st_request_id_valid(long_id, 129));
    uint64_t rs[2] = {1, 2};
    char a[33], b[33];
    st_request_id_new(rs, a);
    st_request_id_new(rs, b);
    assert_int_equal(strlen(a), 32);
    assert_true(st_request_id_valid(a, 32));
    assert_string_not_equal(a, b);
}

static void test_request_id_next(void **state)
{
    (void)state;
    uint64_t counter = 0xfe;
    char a[33], b[33];
    st_request_id_next("0123456789abcdef", &counter, a);
    st_request_id_next("0123456789abcdef", &counter, b);
    assert_string_equal(a, "0123456789abcdef00000000000000fe");
    assert_string_equal(b, "0123456789abcdef00000000000000ff");
    assert_true(st_request_id_valid(a, 32));
}

static void test_traceparent(void **state)
{
    (void)state;
    const char *ok = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    assert_true(st_traceparent_valid(ok, strlen(ok)));
    assert_false(
        st_traceparent_valid("00-00000000000000000000000000000000-b7ad6b7169203331-01", 55));
    assert_false(
        st_traceparent_valid("00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01", 55));
    assert_false(
        st_traceparent_valid("00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01", 55));
    assert_false(
        st_traceparent_valid("ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", 55));
    assert_false(st_traceparent_valid(ok, 54));
    uint64_t rs[2] = {3, 4};
    char tp[56];
    st_traceparent_new(rs, tp);
    assert_true(st_traceparent_valid(tp, strlen(tp)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_id),
        cmocka_unit_test(test_request_id_next),
        cmocka_unit_test(test_traceparent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
