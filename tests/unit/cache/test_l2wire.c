/*
 * test_l2wire.c - the Redis tier's wire: key names and hash tags, path
 * prefixes, bus messages and stream ids, and every shape of Redis reply
 * (errors, nil, wrong types, missing pieces) read without a crash.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cache/l2wire.h"

static const char inst[] = "0123456789abcdef";

static void test_key_names_share_a_hash_tag(void **state)
{
    (void)state;
    struct st_sb v, l, p;
    st_sb_init(&v, 32);
    st_sb_init(&l, 32);
    st_sb_init(&p, 32);
    st_l2_key(&v, "strata:", 0x1234abcdULL, ST_L2_VALUE);
    st_l2_key(&l, "strata:", 0x1234abcdULL, ST_L2_LOCK);
    st_sb_add(&v, "", 1);
    st_sb_add(&l, "", 1);
    assert_string_equal(v.p, "strata:{000000001234abcd}:v");
    assert_string_equal(l.p, "strata:{000000001234abcd}:l");
    st_l2_set_key(&p, "x:", 't', "tag}{", 5); /* braces in the name stay out of the hash tag */
    st_sb_add(&p, "", 1);
    assert_int_equal(strlen(p.p), strlen("x:{t0123456789abcdef}"));
    assert_int_equal(strchr(p.p, '}') - p.p, (long)strlen(p.p) - 1);
    st_sb_finish(&v);
    st_sb_finish(&l);
    st_sb_finish(&p);
}

static void test_paths_and_prefixes(void **state)
{
    (void)state;
    assert_int_equal(st_l2_key_path_len("/a/b?q=1\x1fh", 10), 4);
    assert_int_equal(st_l2_key_path_len("/a/b\x1fh", 6), 4);
    size_t out[ST_L2_MAX_DEPTH];
    assert_int_equal(st_l2_path_prefixes("/api/v1/x", 9, out), 3);
    assert_int_equal(out[0], 1);
    assert_int_equal(out[1], 5);
    assert_int_equal(out[2], 8);
    assert_int_equal(st_l2_path_prefixes("/1/2/3/4/5/6/7/8/9/10", 21, out), ST_L2_MAX_DEPTH);
}

static void test_stream_ids(void **state)
{
    (void)state;
    struct st_l2_stream_id a, b;
    assert_true(st_l2_stream_id_parse("1700000000000-3", 15, &a));
    assert_true(st_l2_stream_id_parse("1700000000000-12", 16, &b));
    assert_true(st_l2_stream_id_cmp(a, b) < 0);
    assert_true(st_l2_stream_id_cmp(b, a) > 0);
    assert_int_equal(st_l2_stream_id_cmp(a, a), 0);
    assert_false(st_l2_stream_id_parse("17", 2, &a));
    assert_false(st_l2_stream_id_parse("-1", 2, &a));
    assert_false(st_l2_stream_id_parse("1-x", 3, &a));
    assert_false(st_l2_stream_id_parse("99999999999999999999-1", 22, &a));
}

static void test_bus_messages(void **state)
{
    (void)state;
    struct st_sb b;
    st_sb_init(&b, 64);
    st_sb_adds(&b, "I 5-1 ");
    st_l2_inval_body(&b, inst, ST_INVAL_PREFIX, "/a b/", 5);
    struct st_l2_msg m;
    assert_true(st_l2_msg_parse(b.p, b.len, &m));
    assert_int_equal(m.type, 'I');
    assert_int_equal(m.id.ms, 5);
    assert_int_equal(m.kind, ST_INVAL_PREFIX);
    assert_memory_equal(m.instance, inst, 16);
    assert_int_equal(m.value_len, 5);
    assert_memory_equal(m.value, "/a b/", 5);
    b.len = 0;
    st_l2_notice(&b, inst, 0xfeedULL, "/k\x1fh", 4);
    assert_true(st_l2_msg_parse(b.p, b.len, &m));
    assert_int_equal(m.type, 'F');
    assert_int_equal(m.hash, 0xfeed);
    assert_int_equal(m.value_len, 4);
    /* Not ours, or cut short: refused, never read past the end. */
    static const char *const bad[] = {
        "", "I", "I 5-1", "I 5-1 0123456789abcdef", "I 5-1 0123456789abcdef x /v",
        "I x 0123456789abcdef k /v", "I 5-1 short k /v", "F 0123456789abcdef 12 /k",
        "F 0123456789abcdef 000000000000feed ", "Z 1 2 3", "hello world",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(st_l2_msg_parse(bad[i], strlen(bad[i]), &m));
    st_sb_finish(&b);
}

static redisReply reply(int type, const char *str)
{
    redisReply r = {.type = type};
    if (str) {
        r.str = (char *)str;
        r.len = strlen(str);
    }
    return r;
}

static void test_replies(void **state)
{
    (void)state;
    const char *p;
    size_t len;
    redisReply s = reply(REDIS_REPLY_STRING, "v"), nil = reply(REDIS_REPLY_NIL, NULL);
    redisReply err = reply(REDIS_REPLY_ERROR, "WRONGTYPE"), i = reply(REDIS_REPLY_INTEGER, NULL);
    redisReply arr = reply(REDIS_REPLY_ARRAY, NULL), ok = reply(REDIS_REPLY_STATUS, "OK");
    redisReply queued = reply(REDIS_REPLY_STATUS, "QUEUED");
    assert_int_equal(st_l2_reply_get(&s, &p, &len), ST_L2_GOT);
    assert_int_equal(len, 1);
    assert_int_equal(st_l2_reply_get(&nil, &p, &len), ST_L2_NONE);
    assert_int_equal(st_l2_reply_get(NULL, &p, &len), ST_L2_FAILED);
    assert_int_equal(st_l2_reply_get(&err, &p, &len), ST_L2_FAILED);
    assert_int_equal(st_l2_reply_get(&i, &p, &len), ST_L2_FAILED);
    assert_int_equal(st_l2_reply_get(&arr, &p, &len), ST_L2_FAILED);
    assert_int_equal(st_l2_reply_lock(&ok), ST_L2_LOCK_WON);
    assert_int_equal(st_l2_reply_lock(&nil), ST_L2_LOCK_HELD);
    assert_int_equal(st_l2_reply_lock(&queued), ST_L2_LOCK_FAILED);
    assert_int_equal(st_l2_reply_lock(&err), ST_L2_LOCK_FAILED);
    assert_int_equal(st_l2_reply_lock(NULL), ST_L2_LOCK_FAILED);
    assert_int_equal(st_l2_reply_lock(&s), ST_L2_LOCK_FAILED);

    /* A stream entry: [id, [m, body]]; anything else is refused. */
    struct st_l2_stream_id id;
    const char *m;
    redisReply idr = reply(REDIS_REPLY_STRING, "7-2"), k = reply(REDIS_REPLY_STRING, "m");
    redisReply v = reply(REDIS_REPLY_STRING, "body");
    redisReply *kv_el[] = {&k, &v};
    redisReply kv = {.type = REDIS_REPLY_ARRAY, .elements = 2, .element = kv_el};
    redisReply *e_el[] = {&idr, &kv};
    redisReply e = {.type = REDIS_REPLY_ARRAY, .elements = 2, .element = e_el};
    assert_true(st_l2_reply_stream_entry(&e, &id, &m, &len));
    assert_int_equal(id.seq, 2);
    assert_int_equal(len, 4);
    kv.elements = 1; /* a field without its value */
    assert_false(st_l2_reply_stream_entry(&e, &id, &m, &len));
    kv.elements = 2;
    e_el[1] = &s; /* fields not a list */
    assert_false(st_l2_reply_stream_entry(&e, &id, &m, &len));
    e.elements = 1;
    assert_false(st_l2_reply_stream_entry(&e, &id, &m, &len));
    assert_false(st_l2_reply_stream_entry(&nil, &id, &m, &len));
    assert_false(st_l2_reply_stream_entry(NULL, &id, &m, &len));

    /* XINFO fields, INFO run_id. */
    redisReply f1 = reply(REDIS_REPLY_STRING, "length"), f1v = {.type = REDIS_REPLY_INTEGER};
    redisReply f2 = reply(REDIS_REPLY_STRING, "max-deleted-entry-id"), f2v = idr;
    redisReply *x_el[] = {&f1, &f1v, &f2, &f2v};
    redisReply x = {.type = REDIS_REPLY_ARRAY, .elements = 4, .element = x_el};
    assert_ptr_equal(st_l2_reply_field(&x, "max-deleted-entry-id"), &f2v);
    assert_null(st_l2_reply_field(&x, "nope"));
    x.elements = 3; /* odd: the last name has no value */
    assert_null(st_l2_reply_field(&x, "max-deleted-entry-id"));
    assert_null(st_l2_reply_field(&err, "length"));
    char run[41];
    redisReply info = reply(REDIS_REPLY_STRING,
                            "# Server\r\nredis_version:7.0.15\r\n"
                            "run_id:0123456789012345678901234567890123456789\r\n");
    assert_true(st_l2_reply_run_id(&info, run));
    assert_string_equal(run, "0123456789012345678901234567890123456789");
    redisReply shortinfo = reply(REDIS_REPLY_STRING, "run_id:0123");
    assert_false(st_l2_reply_run_id(&shortinfo, run));
    assert_false(st_l2_reply_run_id(&err, run));
    assert_false(st_l2_reply_run_id(NULL, run));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_names_share_a_hash_tag),
        cmocka_unit_test(test_paths_and_prefixes),
        cmocka_unit_test(test_stream_ids),
        cmocka_unit_test(test_bus_messages),
        cmocka_unit_test(test_replies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
