/*
 * test_units.c - the config value syntaxes of config/units.c, directly:
 * durations, sizes, percentages (strict: no spaces, signs, fractions or
 * overflow; the whole string consumed), HOST:PORT addresses (IPv4,
 * [IPv6], localhost) and ${VAR} / ${VAR:-default} / $$ expansion with its
 * error position. Mostly tables: one row per rule.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "config/config.h"

struct u64_case {
    const char *in;
    int rc;
    uint64_t want; /* when rc == 0 */
};

#define BAD(s)                                                                                     \
    {                                                                                              \
        s, -EINVAL, 0                                                                              \
    }

static void run_u64_table(const char *what, int (*parse)(const char *, uint64_t *),
                          const struct u64_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct u64_case *c = &cases[i];
        uint64_t v = 12345;
        print_message("%s: \"%s\"\n", what, c->in);
        assert_int_equal(parse(c->in, &v), c->rc);
        if (c->rc == 0)
            assert_int_equal(v, c->want);
    }
}

/* ---- durations ----------------------------------------------------------- */

static void test_parse_duration(void **state)
{
    (void)state;
    static const struct u64_case cases[] = {
        {"0", 0, 0},
        {"0ms", 0, 0},
        {"0s", 0, 0},
        {"1ms", 0, 1},
        {"250ms", 0, 250},
        {"10s", 0, 10000},
        {"3m", 0, 180000},
        {"1h", 0, 3600000},
        {"48h", 0, 172800000},
        {"007s", 0, 7000},
        {"18446744073709551615ms", 0, UINT64_MAX},
        {"18446744073709551s", 0, 18446744073709551000ull}, /* largest whole seconds */
        BAD(""),
        BAD("5"), /* a bare number other than 0 */
        BAD("ms"),
        BAD("s"),
        BAD("1.5s"),
        BAD("-1s"),
        BAD("+1s"),
        BAD(" 1s"),
        BAD("1s "),
        BAD("1 s"),
        BAD("1S"),
        BAD("1MS"),
        BAD("1d"),
        BAD("1us"),
        BAD("10sec"),
        BAD("1h30m"),
        BAD("18446744073709551616ms"), /* the number overflows */
        BAD("18446744073709551552s"),  /* the product overflows */
        BAD("18446744073709552s"),
        BAD("5124095576031h"), /* > UINT64_MAX / 3600000 */
    };
    run_u64_table("duration", st_parse_duration, cases, sizeof(cases) / sizeof(cases[0]));
    uint64_t v;
    assert_int_equal(st_parse_duration("5124095576030h", &v), 0); /* the largest hour count */
    assert_int_equal(v, 5124095576030ull * 3600000ull);
}

/* ---- sizes --------------------------------------------------------------- */

static void test_parse_size(void **state)
{
    (void)state;
    static const struct u64_case cases[] = {
        {"0", 0, 0},
        {"0B", 0, 0},
        {"0KiB", 0, 0},
        {"1B", 0, 1},
        {"512B", 0, 512},
        {"1KiB", 0, 1024},
        {"32KiB", 0, 32768},
        {"1MiB", 0, 1048576},
        {"256MiB", 0, 268435456},
        {"1GiB", 0, 1073741824},
        {"4GiB", 0, 4294967296ull},
        {"18446744073709551615B", 0, UINT64_MAX},
        {"17179869183GiB", 0, 17179869183ull << 30}, /* the largest GiB count */
        BAD(""),
        BAD("1"),
        BAD("B"),
        BAD("1K"),
        BAD("1KB"),
        BAD("1kib"),
        BAD("1kB"),
        BAD("1Kib"),
        BAD("1TiB"),
        BAD("1 KiB"),
        BAD(" 1KiB"),
        BAD("1KiB "),
        BAD("1.5MiB"),
        BAD("-1B"),
        BAD("+1B"),
        BAD("1MiBB"),
        BAD("17179869184GiB"),        /* 2^64 */
        BAD("18014398509481984KiB"),  /* 2^64 */
        BAD("18446744073709551616B"), /* the number overflows */
    };
    run_u64_table("size", st_parse_size, cases, sizeof(cases) / sizeof(cases[0]));
}

/* ---- percentages ------------------------------------------------------------ */

struct pct_case {
    const char *in;
    int rc;
    unsigned want;
};

static void test_parse_percent(void **state)
{
    (void)state;
    static const struct pct_case cases[] = {
        {"0", 0, 0},
        {"0%", 0, 0},
        {"1", 0, 1},
        {"10", 0, 10},
        {"10%", 0, 10},
        {"99%", 0, 99},
        {"100", 0, 100},
        {"100%", 0, 100},
        {"050%", 0, 50},
        {"", -EINVAL, 0},
        {"%", -EINVAL, 0},
        {"101", -EINVAL, 0},
        {"101%", -EINVAL, 0},
        {"1000%", -EINVAL, 0},
        {"10%%", -EINVAL, 0},
        {"10 %", -EINVAL, 0},
        {" 10", -EINVAL, 0},
        {"10% ", -EINVAL, 0},
        {"-1", -EINVAL, 0},
        {"+1", -EINVAL, 0},
        {"1.5", -EINVAL, 0},
        {"1.5%", -EINVAL, 0},
        {"10x", -EINVAL, 0},
        {"x10", -EINVAL, 0},
        {"99999999999999999999%", -EINVAL, 0}, /* overflows */
        {"4294967306", -EINVAL, 0},            /* 2^32 + 10: not wrapped to 10 */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct pct_case *c = &cases[i];
        unsigned v = 777;
        print_message("percent: \"%s\"\n", c->in);
        assert_int_equal(st_parse_percent(c->in, &v), c->rc);
        if (c->rc == 0)
            assert_int_equal(v, c->want);
    }
}

/* ---- addresses --------------------------------------------------------------- */

struct addr_case {
    const char *in;
    int family; /* 0: must be rejected */
    const char *ip;
    unsigned port;
};

static void test_parse_addr(void **state)
{
    (void)state;
    static const struct addr_case cases[] = {
        {"127.0.0.1:8080", AF_INET, "127.0.0.1", 8080},
        {"0.0.0.0:1", AF_INET, "0.0.0.0", 1},
        {"10.1.2.3:65535", AF_INET, "10.1.2.3", 65535},
        {"192.168.0.1:080", AF_INET, "192.168.0.1", 80},
        {"localhost:9000", AF_INET, "127.0.0.1", 9000},
        {"[::1]:443", AF_INET6, "::1", 443},
        {"[::]:8080", AF_INET6, "::", 8080},
        {"[2001:db8::1]:80", AF_INET6, "2001:db8::1", 80},
        {"[::ffff:10.0.0.1]:53", AF_INET6, "::ffff:10.0.0.1", 53},
        {"", 0, NULL, 0},
        {"127.0.0.1", 0, NULL, 0},
        {"127.0.0.1:", 0, NULL, 0},
        {"127.0.0.1:0", 0, NULL, 0},
        {"127.0.0.1:65536", 0, NULL, 0},
        {"127.0.0.1:99999999999999999999", 0, NULL, 0},
        {"127.0.0.1:-1", 0, NULL, 0},
        {"127.0.0.1:+80", 0, NULL, 0},
        {"127.0.0.1:80x", 0, NULL, 0},
        {"127.0.0.1: 80", 0, NULL, 0},
        {"127.0.0.1 :80", 0, NULL, 0},
        {":80", 0, NULL, 0},
        {"256.0.0.1:80", 0, NULL, 0},
        {"1.2.3:80", 0, NULL, 0},
        {"example.com:80", 0, NULL, 0}, /* no name lookups */
        {"::1:80", 0, NULL, 0},         /* IPv6 needs brackets */
        {"[::1:80", 0, NULL, 0},
        {"[::1]", 0, NULL, 0},
        {"[::1]:", 0, NULL, 0},
        {"[::1]x:80", 0, NULL, 0},
        {"[]:80", 0, NULL, 0},
        {"[127.0.0.1]:80", 0, NULL, 0},
        {"[localhost]:80", 0, NULL, 0},
        {"[::1]:0", 0, NULL, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct addr_case *c = &cases[i];
        struct st_addr a;
        memset(&a, 0, sizeof(a));
        print_message("addr: \"%s\"\n", c->in);
        int rc = st_parse_addr(c->in, &a);
        if (c->family == 0) {
            assert_int_equal(rc, -EINVAL);
            assert_null(a.text); /* nothing allocated, nothing to finish */
            continue;
        }
        assert_int_equal(rc, 0);
        assert_non_null(a.text);
        assert_ptr_not_equal(a.text, c->in);
        assert_string_equal(a.text, c->in); /* as written, even for localhost */
        assert_int_equal(a.sa.ss_family, c->family);
        char ip[INET6_ADDRSTRLEN];
        if (c->family == AF_INET) {
            const struct sockaddr_in *sin = (const struct sockaddr_in *)&a.sa;
            assert_int_equal(a.len, sizeof(struct sockaddr_in));
            assert_int_equal(ntohs(sin->sin_port), c->port);
            assert_non_null(inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip)));
        } else {
            const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a.sa;
            assert_int_equal(a.len, sizeof(struct sockaddr_in6));
            assert_int_equal(ntohs(sin6->sin6_port), c->port);
            assert_non_null(inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip)));
        }
        assert_string_equal(ip, c->ip);
        st_addr_finish(&a);
        assert_null(a.text);
        assert_int_equal(a.len, 0);
        assert_int_equal(a.sa.ss_family, 0);
    }
}

static void test_parse_addr_failure_keeps_out(void **state)
{
    (void)state;
    struct st_addr a;
    assert_int_equal(st_parse_addr("127.0.0.1:8080", &a), 0);
    char *text = a.text;
    /* A rejected address leaves a previously parsed one alone. */
    assert_int_equal(st_parse_addr("127.0.0.1:0", &a), -EINVAL);
    assert_ptr_equal(a.text, text);
    assert_string_equal(a.text, "127.0.0.1:8080");
    assert_int_equal(ntohs(((struct sockaddr_in *)&a.sa)->sin_port), 8080);
    st_addr_finish(&a);
}

/* ---- ${VAR} expansion ------------------------------------------------------- */

static int setup_env(void **state)
{
    (void)state;
    setenv("ST_UT_A", "alpha", 1);
    setenv("ST_UT_B", "b/2", 1);
    setenv("ST_UT_EMPTY", "", 1);
    setenv("ST_UT_DOLLAR", "${ST_UT_A}$$", 1); /* values are not expanded again */
    setenv("_ST_UT_9", "nine", 1);
    unsetenv("ST_UT_UNSET");
    return 0;
}

struct env_case {
    const char *in;
    const char *want;
};

static void test_expand_env_ok(void **state)
{
    (void)state;
    static const struct env_case cases[] = {
        {"", ""},
        {"plain text", "plain text"},
        {"${ST_UT_A}", "alpha"},
        {"x${ST_UT_A}y", "xalphay"},
        {"${ST_UT_A}${ST_UT_B}", "alphab/2"},
        {"${ST_UT_A}-${ST_UT_A}", "alpha-alpha"},
        {"${_ST_UT_9}", "nine"},
        {"${ST_UT_EMPTY}", ""}, /* set but empty, no default: empty */
        {"[${ST_UT_EMPTY}]", "[]"},
        {"${ST_UT_UNSET:-fallback}", "fallback"},
        {"${ST_UT_EMPTY:-fallback}", "fallback"}, /* empty counts as unset with a default */
        {"${ST_UT_A:-fallback}", "alpha"},
        {"${ST_UT_UNSET:-}", ""},
        {"${ST_UT_UNSET:-a b:c-d}", "a b:c-d"},
        {"${ST_UT_UNSET:-$x$$}", "$x$$"}, /* the default is taken verbatim */
        {"${ST_UT_UNSET:-{x}", "{x"},
        {"${ST_UT_DOLLAR}", "${ST_UT_A}$$"},
        {"$$", "$"},
        {"$$$$", "$$"},
        {"cost: $$5", "cost: $5"},
        {"$${ST_UT_A}", "${ST_UT_A}"}, /* escaped: not a variable */
        {"$$${ST_UT_A}", "$alpha"},
        {"$ST_UT_A", "$ST_UT_A"}, /* only ${...} is a variable */
        {"a$b", "a$b"},
        {"trailing $", "trailing $"},
        {"$", "$"},
        {"{ST_UT_A}", "{ST_UT_A}"},
        {"${ST_UT_A}}", "alpha}"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct env_case *c = &cases[i];
        char *out = NULL;
        const char *bad = NULL;
        print_message("expand: \"%s\"\n", c->in);
        assert_int_equal(st_expand_env(c->in, &out, &bad), 0);
        assert_non_null(out);
        assert_string_equal(out, c->want);
        free(out);
    }
}

struct env_err {
    const char *in;
    int rc;
    size_t bad_at; /* offset of *bad in `in` */
};

static void test_expand_env_errors(void **state)
{
    (void)state;
    static const struct env_err cases[] = {
        {"${ST_UT_UNSET}", -ENOENT, 2},
        {"x ${ST_UT_UNSET} y", -ENOENT, 4},
        {"${ST_UT_A}/${ST_UT_UNSET}", -ENOENT, 13},
        {"$$ ${ST_UT_UNSET}", -ENOENT, 5},
        {"${", -EINVAL, 2},
        {"${}", -EINVAL, 2},
        {"${ ST_UT_A}", -EINVAL, 2},
        {"${9X}", -EINVAL, 2},
        {"${-x}", -EINVAL, 2},
        {"${ST_UT_A", -EINVAL, 2},
        {"a${ST_UT_A:-def", -EINVAL, 3}, /* default without its closing brace */
        {"${ST_UT_A-def}", -EINVAL, 2},
        {"${ST_UT_A:def}", -EINVAL, 2},
        {"${ST_UT_A }", -EINVAL, 2},
        {"${ST_UT_A.x}", -EINVAL, 2},
        {"${ST_UT_A}${", -EINVAL, 12},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct env_err *c = &cases[i];
        char *out = NULL;
        const char *bad = NULL;
        print_message("expand error: \"%s\"\n", c->in);
        assert_int_equal(st_expand_env(c->in, &out, &bad), c->rc);
        assert_null(out);
        assert_non_null(bad);
        assert_int_equal(bad - c->in, c->bad_at);
    }

    /* *bad names the variable: a message can print it. */
    const char *in = "url: redis://${ST_UT_UNSET}:6379";
    char *out = NULL;
    const char *bad = NULL;
    assert_int_equal(st_expand_env(in, &out, &bad), -ENOENT);
    assert_ptr_equal(bad, in + 15);
    assert_memory_equal(bad, "ST_UT_UNSET}", 12);
    assert_null(out);
}

static void test_expand_env_cases(void **state)
{
    char *out = NULL;
    const char *bad = NULL;
    (void)state;
    setenv("ST_TEST_A", "alpha", 1);
    setenv("ST_TEST_EMPTY", "", 1);
    unsetenv("ST_TEST_UNSET");

    assert_int_equal(st_expand_env("x${ST_TEST_A}y${ST_TEST_A}", &out, &bad), 0);
    assert_string_equal(out, "xalphayalpha");
    free(out);
    assert_int_equal(st_expand_env("${ST_TEST_UNSET:-dflt}", &out, &bad), 0);
    assert_string_equal(out, "dflt");
    free(out);
    assert_int_equal(st_expand_env("${ST_TEST_EMPTY:-dflt}", &out, &bad), 0);
    assert_string_equal(out, "dflt"); /* like the shell: ":-" also covers empty */
    free(out);
    assert_int_equal(st_expand_env("[${ST_TEST_EMPTY}]", &out, &bad), 0);
    assert_string_equal(out, "[]");
    free(out);
    assert_int_equal(st_expand_env("${ST_TEST_A:-dflt}", &out, &bad), 0);
    assert_string_equal(out, "alpha");
    free(out);
    assert_int_equal(st_expand_env("cost: $$5, $x, $", &out, &bad), 0);
    assert_string_equal(out, "cost: $5, $x, $");
    free(out);
    assert_int_equal(st_expand_env("", &out, &bad), 0);
    assert_string_equal(out, "");
    free(out);

    const char *in = "ab${ST_TEST_UNSET}cd";
    out = (char *)1;
    assert_int_equal(st_expand_env(in, &out, &bad), -ENOENT);
    assert_ptr_equal(bad, in + 4);
    in = "ab${ST_TEST_A";
    assert_int_equal(st_expand_env(in, &out, &bad), -EINVAL);
    assert_ptr_equal(bad, in + 4);
    in = "${}";
    assert_int_equal(st_expand_env(in, &out, &bad), -EINVAL);
    assert_ptr_equal(bad, in + 2);
}

struct parse_case {
    const char *text;
    int rc;
    uint64_t value;
};

static void test_duration_table(void **state)
{
    static const struct parse_case cases[] = {
        {"0", 0, 0},
        {"0s", 0, 0},
        {"250ms", 0, 250},
        {"10s", 0, 10000},
        {"3m", 0, 180000},
        {"1h", 0, 3600000},
        {"18446744073709551615ms", 0, UINT64_MAX},
        {"18446744073709551616ms", -EINVAL, 0},
        {"18446744073709551615s", -EINVAL, 0},
        {"5124095576030432h", -EINVAL, 0},
        {"", -EINVAL, 0},
        {"10", -EINVAL, 0},
        {"s", -EINVAL, 0},
        {"-1s", -EINVAL, 0},
        {"+1s", -EINVAL, 0},
        {"1.5s", -EINVAL, 0},
        {"1 s", -EINVAL, 0},
        {" 1s", -EINVAL, 0},
        {"1s ", -EINVAL, 0},
        {"1S", -EINVAL, 0},
        {"1d", -EINVAL, 0},
        {"1sec", -EINVAL, 0},
        {"1h30m", -EINVAL, 0},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t v = 12345;
        int rc = st_parse_duration(cases[i].text, &v);
        if (rc != cases[i].rc || (rc == 0 && v != cases[i].value))
            fail_msg("duration '%s': rc %d value %llu", cases[i].text, rc, (unsigned long long)v);
    }
}

static void test_size_table(void **state)
{
    static const struct parse_case cases[] = {
        {"0", 0, 0},
        {"0B", 0, 0},
        {"512B", 0, 512},
        {"32KiB", 0, 32768},
        {"256MiB", 0, 256ull << 20},
        {"1GiB", 0, 1ull << 30},
        {"17179869183GiB", 0, 17179869183ull << 30},
        {"17179869184GiB", -EINVAL, 0},
        {"99999999999999999999B", -EINVAL, 0},
        {"512", -EINVAL, 0},
        {"1KB", -EINVAL, 0},
        {"1MB", -EINVAL, 0},
        {"1kib", -EINVAL, 0},
        {"1TiB", -EINVAL, 0},
        {"1.5MiB", -EINVAL, 0},
        {"-1B", -EINVAL, 0},
        {"1 MiB", -EINVAL, 0},
        {"", -EINVAL, 0},
        {"MiB", -EINVAL, 0},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t v = 12345;
        int rc = st_parse_size(cases[i].text, &v);
        if (rc != cases[i].rc || (rc == 0 && v != cases[i].value))
            fail_msg("size '%s': rc %d value %llu", cases[i].text, rc, (unsigned long long)v);
    }
}

static void test_percent_table(void **state)
{
    static const struct parse_case cases[] = {
        {"0", 0, 0},          {"10%", 0, 10},       {"10", 0, 10},
        {"100%", 0, 100},     {"101%", -EINVAL, 0}, {"-1%", -EINVAL, 0},
        {"1.5%", -EINVAL, 0}, {"%", -EINVAL, 0},    {"", -EINVAL, 0},
        {"10 %", -EINVAL, 0}, {"10%%", -EINVAL, 0}, {"99999999999999999999999%", -EINVAL, 0},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        unsigned v = 777;
        int rc = st_parse_percent(cases[i].text, &v);
        if (rc != cases[i].rc || (rc == 0 && v != cases[i].value))
            fail_msg("percent '%s': rc %d value %u", cases[i].text, rc, v);
    }
}

static void test_address_table(void **state)
{
    static const struct {
        const char *text;
        int family;
        const char *host; /* numeric form, as inet_ntop prints it */
        int port;
    } good[] = {
        {"127.0.0.1:8080", AF_INET, "127.0.0.1", 8080},
        {"0.0.0.0:80", AF_INET, "0.0.0.0", 80},
        {"localhost:8080", AF_INET, "127.0.0.1", 8080},
        {"10.1.2.3:65535", AF_INET, "10.1.2.3", 65535},
        {"[::1]:8080", AF_INET6, "::1", 8080},
        {"[::]:1", AF_INET6, "::", 1},
        {"[2001:db8::5]:443", AF_INET6, "2001:db8::5", 443},
    };
    static const char *const bad[] = {
        "127.0.0.1",
        "127.0.0.1:",
        "127.0.0.1:0",
        "127.0.0.1:65536",
        "127.0.0.1:-1",
        "127.0.0.1:8x",
        ":8080",
        "example.com:80",
        "::1:8080",
        "[::1]",
        "[::1]8080",
        "[::1:8080",
        "1.2.3:80",
        "256.1.1.1:80",
        "127.0.0.1 :80",
        "",
        "LOCALHOST:80",
        "[127.0.0.1]:80",
        "127.0.0.1:99999999999999999999",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        struct st_addr a;
        char buf[64];
        assert_int_equal(st_parse_addr(good[i].text, &a), 0);
        assert_string_equal(a.text, good[i].text);
        assert_int_equal(a.sa.ss_family, good[i].family);
        if (good[i].family == AF_INET) {
            const struct sockaddr_in *s = (const struct sockaddr_in *)&a.sa;
            assert_int_equal(a.len, sizeof(*s));
            assert_int_equal(ntohs(s->sin_port), good[i].port);
            inet_ntop(AF_INET, &s->sin_addr, buf, sizeof(buf));
        } else {
            const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)&a.sa;
            assert_int_equal(a.len, sizeof(*s));
            assert_int_equal(ntohs(s->sin6_port), good[i].port);
            inet_ntop(AF_INET6, &s->sin6_addr, buf, sizeof(buf));
        }
        assert_string_equal(buf, good[i].host);
        st_addr_finish(&a);
        assert_null(a.text);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct st_addr a;
        memset(&a, 0, sizeof(a));
        if (st_parse_addr(bad[i], &a) != -EINVAL)
            fail_msg("address '%s' was accepted", bad[i]);
        assert_null(a.text);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_duration),
        cmocka_unit_test(test_parse_size),
        cmocka_unit_test(test_parse_percent),
        cmocka_unit_test(test_parse_addr),
        cmocka_unit_test(test_parse_addr_failure_keeps_out),
        cmocka_unit_test_setup(test_expand_env_ok, setup_env),
        cmocka_unit_test_setup(test_expand_env_errors, setup_env),
        cmocka_unit_test(test_expand_env_cases),
        cmocka_unit_test(test_duration_table),
        cmocka_unit_test(test_size_table),
        cmocka_unit_test(test_percent_table),
        cmocka_unit_test(test_address_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
