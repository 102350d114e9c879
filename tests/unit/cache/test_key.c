/*
 * test_key.c - the cache key "<path>[?<query>]" 0x1f "<host>": query
 * normalization per route (all: every parameter, sorted; none: dropped;
 * list: only the named parameters, sorted), the host lowercased, the path
 * as sent, absolute-form targets reduced to their path, empty queries and
 * parameters, and appending to what the builder already holds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cache/key.h"

/* The separator as a string, to splice into expected keys: "/a" SEP "host". */
#define SEP "\x1f"

static void route_init(struct st_route_cfg *r, enum st_key_query q, char **names, size_t n)
{
    memset(r, 0, sizeof(*r));
    r->key_query = q;
    r->key_query_names = names;
    r->n_key_query_names = n;
}

/* Build the key of (target, host) under r and compare it, byte for byte, with want. */
static void check_key(const struct st_route_cfg *r, const char *target, const char *host,
                      const char *want, size_t want_len)
{
    struct st_sb sb;
    st_sb_init(&sb, 0);
    st_cache_key_build(&sb, r, target, strlen(target), host, strlen(host), NULL);
    print_message("key of \"%s\" host \"%s\"\n", target, host);
    assert_int_equal(sb.len, want_len);
    assert_memory_equal(sb.p, want, want_len);
    assert_int_equal(sb.p[sb.len], '\0');
    st_sb_finish(&sb);
}

struct key_case {
    const char *target;
    const char *host;
    const char *want; /* may hold the separator; compared over sizeof - 1 */
    size_t want_len;
};

#define K(target, host, want)                                                                      \
    {                                                                                              \
        target, host, want, sizeof(want) - 1                                                       \
    }

static void run_table(const struct st_route_cfg *r, const struct key_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++)
        check_key(r, cases[i].target, cases[i].host, cases[i].want, cases[i].want_len);
}

static void test_separator_and_layout(void **state)
{
    (void)state;
    struct st_route_cfg r;
    route_init(&r, ST_KEY_QUERY_ALL, NULL, 0);
    assert_int_equal(ST_KEY_SEP, 0x1f);

    struct st_sb sb;
    st_sb_init(&sb, 0);
    st_cache_key_build(&sb, &r, "/a/b?x=1", 8, "h.example", 9, NULL);
    /* Path first (prefix invalidation is a range), one separator, then the host. */
    assert_int_equal(sb.len, 8 + 1 + 9);
    assert_memory_equal(sb.p, "/a/b?x=1", 8);
    assert_int_equal(sb.p[8], 0x1f);
    assert_memory_equal(sb.p + 9, "h.example", 9);
    const char *sep = memchr(sb.p, ST_KEY_SEP, sb.len);
    assert_ptr_equal(sep, sb.p + 8);
    assert_null(memchr(sep + 1, ST_KEY_SEP, (size_t)(sb.p + sb.len - sep - 1)));
    st_sb_finish(&sb);
}

static void test_query_all_sorted(void **state)
{
    (void)state;
    struct st_route_cfg r;
    route_init(&r, ST_KEY_QUERY_ALL, NULL, 0);
    static const struct key_case cases[] = {
        K("/p", "h", "/p" SEP "h"),
        K("/p?a=1", "h", "/p?a=1" SEP "h"),
        K("/p?b=2&a=1", "h", "/p?a=1&b=2" SEP "h"),
        K("/p?a=1&b=2", "h", "/p?a=1&b=2" SEP "h"),
        K("/p?c=3&a=1&b=2", "h", "/p?a=1&b=2&c=3" SEP "h"),
        K("/p?a=2&a=1", "h", "/p?a=1&a=2" SEP "h"),           /* duplicates kept, by value */
        K("/p?b&a=1&a", "h", "/p?a&a=1&b" SEP "h"),           /* a prefix sorts first */
        K("/p?ab=1&a=2", "h", "/p?a=2&ab=1" SEP "h"),         /* bytewise: '=' < 'b' */
        K("/p?B=1&a=1", "h", "/p?B=1&a=1" SEP "h"),           /* bytewise: 'B' < 'a' */
        K("/p?q=%20x&p=a+b", "h", "/p?p=a+b&q=%20x" SEP "h"), /* encodings as sent */
        K("/p?x=1=2&x", "h", "/p?x&x=1=2" SEP "h"),
    };
    run_table(&r, cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_query_empty_parts(void **state)
{
    (void)state;
    struct st_route_cfg r;
    route_init(&r, ST_KEY_QUERY_ALL, NULL, 0);
    static const struct key_case cases[] = {
        K("/p?", "h", "/p" SEP "h"),  /* an empty query is no query */
        K("/p?&", "h", "/p" SEP "h"), /* only empty parameters: none */
        K("/p?&&", "h", "/p" SEP "h"),
        K("/p?&&b=2&&a=1&", "h", "/p?a=1&b=2" SEP "h"), /* empty parameters dropped */
        K("/p?=", "h", "/p?=" SEP "h"),                 /* not empty: an empty name */
        K("/?z", "h", "/?z" SEP "h"),
        K("/p?a=", "h", "/p?a=" SEP "h"),
    };
    run_table(&r, cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_query_none(void **state)
{
    (void)state;
    struct st_route_cfg r;
    route_init(&r, ST_KEY_QUERY_NONE, NULL, 0);
    static const struct key_case cases[] = {
        K("/p", "h", "/p" SEP "h"),
        K("/p?b=2&a=1", "h", "/p" SEP "h"),
        K("/p?", "h", "/p" SEP "h"),
        K("/a/b/?utm=1", "h", "/a/b/" SEP "h"),
        K("http://h/x?y=1", "h", "/x" SEP "h"),
    };
    run_table(&r, cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_query_list(void **state)
{
    (void)state;
    static char n_id[] = "id", n_page[] = "page";
    char *names[] = {n_page, n_id};
    struct st_route_cfg r;
    route_init(&r, ST_KEY_QUERY_LIST, names, 2);
    static const struct key_case cases[] = {
        K("/p", "h", "/p" SEP "h"),
        K("/p?id=7", "h", "/p?id=7" SEP "h"),
        K("/p?utm=x&page=2&id=7", "h", "/p?id=7&page=2" SEP "h"),
        K("/p?utm=x", "h", "/p" SEP "h"),                   /* none kept: no '?' */
        K("/p?idx=1&ID=2&pid=3&i=4", "h", "/p" SEP "h"),    /* whole, exact names only */
        K("/p?id&page=", "h", "/p?id&page=" SEP "h"),       /* no value, empty value */
        K("/p?id=2&x=0&id=1", "h", "/p?id=1&id=2" SEP "h"), /* repeated: all, sorted */
        K("/p?page=1&id=9&&utm", "h", "/p?id=9&page=1" SEP "h"),
        K("/p?id=a=b", "h", "/p?id=a=b" SEP "h"), /* the name ends at the first '=' */
        K("/p?a=id", "h", "/p" SEP "h"),          /* a value is no name */
    };
    run_table(&r, cases, sizeof(cases) / sizeof(cases[0]));

    /* An empty list keeps nothing. */
    route_init(&r, ST_KEY_QUERY_LIST, NULL, 0);
    check_key(&r, "/p?id=7&a=1", "h", "/p" SEP "h", sizeof("/p" SEP "h") - 1);
}

static void test_host_lowercased_path_as_sent(void **state)
{
    (void)state;
    struct st_route_cfg r;
    route_init(&r, ST_KEY_QUERY_ALL, NULL, 0);
    static const struct key_case cases[] = {
        K("/p", "EXAMPLE.com", "/p" SEP "example.com"),
        K("/p", "Example.COM:8080", "/p" SEP "example.com:8080"), /* the port is kept */
        K("/p", "[::1]:443", "/p" SEP "[::1]:443"),
        K("/p", "[2001:DB8::A]", "/p" SEP "[2001:db8::a]"),
        K("/p", "a-Z_0.9", "/p" SEP "a-z_0.9"),
        K("/p", "", "/p" SEP ""),                             /* no Host */
        K("/Mixed/CASE?Q=V", "H", "/Mixed/CASE?Q=V" SEP "h"), /* path and query untouched */
        K("/a%2Fb//c/./d", "h", "/a%2Fb//c/./d" SEP "h"),     /* no path normalization */
        K("/", "h", "/" SEP "h"),
    };
    run_table(&r, cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_absolute_form(void **state)
{
    (void)state;
    struct st_route_cfg r;
    route_init(&r, ST_KEY_QUERY_ALL, NULL, 0);
    static const struct key_case cases[] = {
        /* The key takes the path and query of the target, the host from the argument. */
        K("http://Example.com/x/y?b=1&a=2", "example.com", "/x/y?a=2&b=1" SEP "example.com"),
        K("http://example.com/", "example.com", "/" SEP "example.com"),
        K("http://example.com", "example.com", "/" SEP "example.com"),
        K("https://h:8443/p", "h:8443", "/p" SEP "h:8443"),
        K("http://other/x", "Given", "/x" SEP "given"),
        K("http://user@h/a?", "h", "/a" SEP "h"),
    };
    run_table(&r, cases, sizeof(cases) / sizeof(cases[0]));

    /* Absolute-form and origin-form of one resource share the key. */
    struct st_sb a, o;
    st_sb_init(&a, 0);
    st_sb_init(&o, 0);
    const char *abs = "http://h.example/r?z=1&y=2", *org = "/r?y=2&z=1";
    st_cache_key_build(&a, &r, abs, strlen(abs), "h.example", 9, NULL);
    st_cache_key_build(&o, &r, org, strlen(org), "H.Example", 9, NULL);
    assert_int_equal(a.len, o.len);
    assert_memory_equal(a.p, o.p, a.len);
    st_sb_finish(&a);
    st_sb_finish(&o);
}

static void test_appends_and_uses_lengths(void **state)
{
    (void)state;
    struct st_route_cfg r;
    route_init(&r, ST_KEY_QUERY_ALL, NULL, 0);
    struct st_sb sb;
    st_sb_init(&sb, 0);
    st_sb_adds(&sb, "pfx:");
    /* Only target_len / host_len bytes count: the rest of each string is ignored. */
    const char *target = "/q?b=1&a=2 trailing junk";
    const char *host = "HOST.example:80 junk";
    st_cache_key_build(&sb, &r, target, 10, host, 12, NULL);
    static const char want[] = "pfx:/q?a=2&b=1" SEP "host.example";
    assert_int_equal(sb.len, sizeof(want) - 1);
    assert_memory_equal(sb.p, want, sizeof(want) - 1);

    /* A second key appends after the first. */
    st_cache_key_build(&sb, &r, "/z", 2, "Z", 1, NULL);
    static const char want2[] = "pfx:/q?a=2&b=1" SEP "host.example/z" SEP "z";
    assert_int_equal(sb.len, sizeof(want2) - 1);
    assert_memory_equal(sb.p, want2, sizeof(want2) - 1);
    st_sb_finish(&sb);
}

static void test_key_headers(void **state)
{
    (void)state;
    struct st_route_cfg r;
    memset(&r, 0, sizeof(r));
    char *names[] = {"x-forwarded-host", "accept-language"};
    r.key_headers = names;
    r.n_key_headers = 2;
    struct st_headers h;
    st_headers_init(&h);
    const char *lines[][2] = {{"X-Forwarded-Host", "a.example"}, {"Accept-Language", "en"},
                              {"accept-language", "fr"}, {"Other", "x"}};
    for (int i = 0; i < 4; i++) {
        st_headers_name_piece(&h, lines[i][0], strlen(lines[i][0]));
        st_headers_value_piece(&h, lines[i][1], strlen(lines[i][1]));
        st_headers_value_done(&h);
    }
    struct st_sb sb;
    st_sb_init(&sb, 64);
    st_cache_key_build(&sb, &r, "/p", 2, "h", 1, &h);
    const char want[] = "/p\x1fh\x1fx-forwarded-host:a.example\x1f" "accept-language:en, fr";
    assert_int_equal(sb.len, sizeof(want) - 1);
    assert_memory_equal(sb.p, want, sizeof(want) - 1);
    sb.len = 0;
    st_cache_key_build(&sb, &r, "/p", 2, "h", 1, NULL); /* absent: empty values, still keyed */
    const char none[] = "/p\x1fh\x1fx-forwarded-host:\x1f" "accept-language:";
    assert_int_equal(sb.len, sizeof(none) - 1);
    assert_memory_equal(sb.p, none, sizeof(none) - 1);
    st_sb_finish(&sb);
    st_headers_finish(&h);
}

/* want is a string literal (it may hold the separator). */
#define KEY(r, target, host, want) check_key(r, target, host, want, sizeof(want) - 1)

/* One example of each query mode, as the README describes them. */
static void test_cache_keys_examples(void **state)
{
    (void)state;
    struct st_route_cfg r;
    memset(&r, 0, sizeof(r));
    r.key_query = ST_KEY_QUERY_ALL;
    KEY(&r, "/p?b=2&a=1", "Example.COM",
        "/p?a=1&b=2\x1f"
        "example.com");
    KEY(&r, "/p?a=1&b=2", "example.com",
        "/p?a=1&b=2\x1f"
        "example.com");
    KEY(&r, "/p?", "h", "/p\x1fh");
    KEY(&r, "/p?&&a=1&", "h", "/p?a=1\x1fh");
    KEY(&r, "http://h/p?z", "h", "/p?z\x1fh");
    r.key_query = ST_KEY_QUERY_NONE;
    KEY(&r, "/p?b=2&a=1", "h", "/p\x1fh");
    char *names[] = {"a", "c"};
    r.key_query = ST_KEY_QUERY_LIST;
    r.key_query_names = names;
    r.n_key_query_names = 2;
    KEY(&r, "/p?b=2&c=3&a=1&ab=9", "h", "/p?a=1&c=3\x1fh");
    KEY(&r, "/p?b=2", "h", "/p\x1fh");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_separator_and_layout),
        cmocka_unit_test(test_query_all_sorted),
        cmocka_unit_test(test_query_empty_parts),
        cmocka_unit_test(test_query_none),
        cmocka_unit_test(test_query_list),
        cmocka_unit_test(test_host_lowercased_path_as_sent),
        cmocka_unit_test(test_absolute_form),
        cmocka_unit_test(test_appends_and_uses_lengths),
        cmocka_unit_test(test_cache_keys_examples),
        cmocka_unit_test(test_key_headers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
