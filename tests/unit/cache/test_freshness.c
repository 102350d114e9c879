/*
 * test_freshness.c - RFC 9111 / 5861 / 9213 rules: Cache-Control parsing,
 * HTTP dates, storability, lifetimes, ages, stale windows, request
 * directives and conditional requests. Mostly tables: one row per rule.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cache/freshness.h"
#include "http/date.h"

#define A ST_CC_ABSENT
#define D_MS 784111777000LL /* Sun, 06 Nov 1994 08:49:37 GMT */
#define DATE "Date: Sun, 06 Nov 1994 08:49:37 GMT\n"
#define PLUS_1H "Sun, 06 Nov 1994 09:49:37 GMT"
#define PLUS_2H "Sun, 06 Nov 1994 10:49:37 GMT"
#define MINUS_1H "Sun, 06 Nov 1994 07:49:37 GMT"

/* Fill h from "Name: value" lines separated by '\n', the way the parser would. */
static void build(struct st_headers *h, const char *lines)
{
    st_headers_init(h);
    const char *p = lines;
    while (p && *p) {
        const char *nl = strchr(p, '\n');
        const char *end = nl ? nl : p + strlen(p);
        const char *colon = memchr(p, ':', (size_t)(end - p));
        assert_non_null(colon);
        st_headers_name_piece(h, p, (size_t)(colon - p));
        const char *v = colon + 1;
        while (v < end && *v == ' ')
            v++;
        if (v < end)
            st_headers_value_piece(h, v, (size_t)(end - v));
        st_headers_value_done(h);
        p = nl ? nl + 1 : NULL;
    }
}

/* ---- Cache-Control parsing --------------------------------------------- */

enum {
    F_MAI = 1 << 0, F_SMI = 1 << 1, F_NS = 1 << 2, F_NC = 1 << 3, F_PRIV = 1 << 4,
    F_PUB = 1 << 5, F_MR = 1 << 6, F_PR = 1 << 7, F_OIC = 1 << 8, F_IMM = 1 << 9,
};

struct cc_case {
    const char *in;
    int64_t max_age, s_maxage, swr, sie, max_stale, min_fresh;
    unsigned flags;
};

static const struct cc_case cc_cases[] = {
    {"max-age=60", 60, A, A, A, A, A, 0},
    {"MAX-AGE=60", 60, A, A, A, A, A, 0},
    {"MaX-aGe=60, No-StOrE", 60, A, A, A, A, A, F_NS},
    {"  max-age = 60 ,\tpublic ", 60, A, A, A, A, A, F_PUB},
    {"max-age=\"60\"", 60, A, A, A, A, A, 0},
    {"max-age=0", 0, A, A, A, A, A, 0},
    {"max-age=007", 7, A, A, A, A, A, 0},
    {"max-age=", A, A, A, A, A, A, F_MAI},
    {"max-age", A, A, A, A, A, A, F_MAI},
    {"max-age=-1", A, A, A, A, A, A, F_MAI},
    {"max-age=1x", A, A, A, A, A, A, F_MAI},
    {"max-age=1.5", A, A, A, A, A, A, F_MAI},
    {"max-age=5 junk", A, A, A, A, A, A, F_MAI},
    {"max-age=5;", A, A, A, A, A, A, F_MAI},
    {"max-age=\"5", A, A, A, A, A, A, F_MAI},
    {"max-age=\"\"", A, A, A, A, A, A, F_MAI},
    {"max-age=5, max-age=10", 5, A, A, A, A, A, 0},
    {"max-age=x, max-age=10", A, A, A, A, A, A, F_MAI},
    {"max-age=10, max-age=x", 10, A, A, A, A, A, 0},
    {"max-age=2147483647", 2147483647, A, A, A, A, A, 0},
    {"max-age=2147483648", 2147483648LL, A, A, A, A, A, 0},
    {"max-age=99999999999999999999999999", 2147483648LL, A, A, A, A, A, 0},
    {"s-maxage=30,max-age=60", 60, 30, A, A, A, A, 0},
    {"s-maxage=abc", A, A, A, A, A, A, F_SMI},
    {"no-store, no-cache, private, public, must-revalidate, proxy-revalidate, only-if-cached, "
     "immutable",
     A, A, A, A, A, A, F_NS | F_NC | F_PRIV | F_PUB | F_MR | F_PR | F_OIC | F_IMM},
    {"no-cache=\"Set-Cookie, X-Foo\", max-age=5", 5, A, A, A, A, A, F_NC},
    {"private=\"X-Token\"", A, A, A, A, A, A, F_PRIV},
    {"no-store junk", A, A, A, A, A, A, F_NS},
    {"foo, bar=baz, x-ext=\"a,b\", max-age=7", 7, A, A, A, A, A, 0},
    {"x-ext=\"a\\\",b\", max-age=4", 4, A, A, A, A, A, 0},
    {"=5, \"x\", max-age=8", 8, A, A, A, A, A, 0},
    {"stale-while-revalidate=30, stale-if-error=600", A, A, 30, 600, A, A, 0},
    {"stale-while-revalidate=abc, stale-while-revalidate=9", A, A, 0, A, A, A, 0},
    {"max-stale", A, A, A, A, INT64_MAX, A, 0},
    {"max-stale=10", A, A, A, A, 10, A, 0},
    {"max-stale=-3", A, A, A, A, 0, A, 0},
    {"min-fresh=5", A, A, A, A, A, 5, 0},
    {",,, ,max-age=3,,", 3, A, A, A, A, A, 0},
    {"", A, A, A, A, A, A, 0},
};

static void check_cc(const struct st_cc *cc, const struct cc_case *c)
{
    assert_int_equal(cc->max_age, c->max_age);
    assert_int_equal(cc->s_maxage, c->s_maxage);
    assert_int_equal(cc->stale_while_revalidate, c->swr);
    assert_int_equal(cc->stale_if_error, c->sie);
    assert_int_equal(cc->max_stale, c->max_stale);
    assert_int_equal(cc->min_fresh, c->min_fresh);
    assert_int_equal(cc->max_age_invalid, !!(c->flags & F_MAI));
    assert_int_equal(cc->s_maxage_invalid, !!(c->flags & F_SMI));
    assert_int_equal(cc->no_store, !!(c->flags & F_NS));
    assert_int_equal(cc->no_cache, !!(c->flags & F_NC));
    assert_int_equal(cc->private_, !!(c->flags & F_PRIV));
    assert_int_equal(cc->public_, !!(c->flags & F_PUB));
    assert_int_equal(cc->must_revalidate, !!(c->flags & F_MR));
    assert_int_equal(cc->proxy_revalidate, !!(c->flags & F_PR));
    assert_int_equal(cc->only_if_cached, !!(c->flags & F_OIC));
    assert_int_equal(cc->immutable, !!(c->flags & F_IMM));
    assert_true(cc->present);
}

static void test_cc_parse_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cc_cases) / sizeof(cc_cases[0]); i++) {
        struct st_cc cc;
        st_cc_init(&cc);
        print_message("cc: %s\n", cc_cases[i].in);
        st_cc_parse(cc_cases[i].in, strlen(cc_cases[i].in), &cc);
        check_cc(&cc, &cc_cases[i]);
    }
}

static void test_cc_parse_headers(void **state)
{
    (void)state;
    struct st_headers h;
    struct st_cc cc;
    build(&h, "Cache-Control: max-age=5\nPragma: no-cache\nX-Cache-Control: no-store\n"
              "cache-control: max-age=10, no-cache=\"a\"\nCACHE-CONTROL: s-maxage=1");
    st_cc_parse_headers(&h, "cache-control", &cc);
    assert_true(cc.present);
    assert_int_equal(cc.max_age, 5); /* first line wins */
    assert_int_equal(cc.s_maxage, 1);
    assert_true(cc.no_cache);
    assert_false(cc.no_store);
    st_cc_parse_headers(&h, "cdn-cache-control", &cc);
    assert_false(cc.present);
    assert_int_equal(cc.max_age, A);
    st_headers_finish(&h);

    /* Pragma alone is never read as no-cache. */
    build(&h, "Pragma: no-cache");
    st_cc_parse_headers(&h, "cache-control", &cc);
    assert_false(cc.present);
    assert_false(cc.no_cache);
    st_headers_finish(&h);
}

/* ---- dates ------------------------------------------------------------- */

struct date_case {
    const char *in;
    int64_t ms;
};

static const struct date_case date_cases[] = {
    {"Sun, 06 Nov 1994 08:49:37 GMT", D_MS},
    {"Sunday, 06-Nov-94 08:49:37 GMT", D_MS},
    {"Sun Nov  6 08:49:37 1994", D_MS},
    {"Sun Nov 06 08:49:37 1994", D_MS},
    {"  Sun, 06 Nov 1994 08:49:37 GMT ", D_MS},
    {"Thu, 29 Feb 2024 12:00:00 GMT", 1709208000000LL},
    {"Tue, 29 Feb 2000 00:00:00 GMT", 951782400000LL},
    {"Thursday, 29-Feb-24 12:00:00 GMT", 1709208000000LL},
    {"Thu Feb 29 12:00:00 2024", 1709208000000LL},
    {"Thu, 01 Jan 1970 00:00:00 GMT", 0},
    {"Sat, 31 Dec 2016 23:59:60 GMT", 1483228800000LL},
    {"Wednesday, 06-Nov-30 08:49:37 GMT", 1920185377000LL}, /* 2030 */
    {"Saturday, 06-Nov-76 08:49:37 GMT", 216118177000LL},   /* 1976: 2076 is >50y ahead */
    {"Tuesday, 01-Jan-75 00:00:00 GMT", 3313526400000LL},   /* 2075 */
    {"Wed, 29 Feb 2023 00:00:00 GMT", -1},
    {"Mon, 29 Feb 2100 00:00:00 GMT", -1},
    {"Sun, 31 Nov 1994 08:49:37 GMT", -1},
    {"Sun, 32 Dec 1994 08:49:37 GMT", -1},
    {"Sun, 00 Dec 1994 08:49:37 GMT", -1},
    {"Sun, 06 Nov 1994 24:00:00 GMT", -1},
    {"Sun, 06 Nov 1994 08:60:00 GMT", -1},
    {"Sun, 06 Nov 1994 08:49:61 GMT", -1},
    {"Sun, 06 Nov 1994 08:49:3a GMT", -1},
    {"Sun, 06 Nov 1994 8:49:37 GMT", -1},
    {"Sun, 06 Nov 1994 08-49-37 GMT", -1},
    {"Sunday, 06-Nov-9x 08:49:37 GMT", -1},
    {"Sun, 06 Nov 1994 08:49:37 UTC", -1},
    {"Sun, 06 Nov 1994 08:49:37 GMT extra", -1},
    {"Sun, 6 Nov 1994 08:49:37 GMT", -1},
    {"Sun, 06 nov 1994 08:49:37 GMT", -1},
    {"Xyz, 06 Nov 1994 08:49:37 GMT", -1},
    {"Sun, 06 Nov 94 08:49:37 GMT", -1},
    {"Sun, 06 Nov 1969 08:49:37 GMT", -1},
    {"Sunday, 06-Nov-1994 08:49:37 GMT", -1},
    {"Sunday, 06 Nov 94 08:49:37 GMT", -1},
    {"Sun Nov 6 08:49:37 1994", -1},
    {"Sun Nov  6 08-49-37 1994", -1},
    {"Sun Nov  6 08:49:37 94", -1},
    {"", -1},
    {"0", -1},
    {"-1", -1},
    {"garbage", -1},
    {"1994-11-06T08:49:37Z", -1},
};

static void test_date_parse_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(date_cases) / sizeof(date_cases[0]); i++) {
        print_message("date: '%s'\n", date_cases[i].in);
        assert_int_equal(st_http_date_parse(date_cases[i].in, strlen(date_cases[i].in)),
                         date_cases[i].ms);
    }
}

static void test_date_two_digit_year_reference(void **state)
{
    (void)state;
    const char *y94 = "Friday, 01-Jan-94 00:00:00 GMT";
    const char *y30 = "Tuesday, 06-Nov-30 08:49:37 GMT";
    const int64_t in_2060 = 2840140800000LL, in_1990 = 631152000000LL;
    assert_int_equal(st_http_date_parse_at(y94, strlen(y94), in_2060), 3913142400000LL);
    assert_int_equal(st_http_date_parse_at(y30, strlen(y30), in_1990), 1920185377000LL);
    assert_int_equal(st_http_date_parse_at(y94, strlen(y94), -1),
                     st_http_date_parse(y94, strlen(y94)));
}

static void test_date_format(void **state)
{
    (void)state;
    char out[30];
    st_http_date_format(D_MS, out);
    assert_string_equal(out, "Sun, 06 Nov 1994 08:49:37 GMT");
    st_http_date_format(1709208000999LL, out);
    assert_string_equal(out, "Thu, 29 Feb 2024 12:00:00 GMT");
    st_http_date_format(0, out);
    assert_string_equal(out, "Thu, 01 Jan 1970 00:00:00 GMT");
    for (int64_t t = 0; t < 4000000000000LL; t += 123456789012LL) {
        st_http_date_format(t, out);
        assert_int_equal(st_http_date_parse(out, strlen(out)), t / 1000 * 1000);
    }
}

/* ---- storability ------------------------------------------------------- */

static const struct st_store_policy default_pol = {.tier_ttl_ms = 60000};

struct store_case {
    const char *name;
    int status;
    const char *req, *resp;
    uint64_t ttl;
    bool allow_auth, allow_cookie;
    bool storable, always_revalidate;
};

#define TTL 60000
static const struct store_case store_cases[] = {
    {"plain 200", 200, "", "", TTL, false, false, true, false},
    {"100 is not final", 100, "", "Cache-Control: max-age=60", TTL, false, false, false, false},
    {"101 is not final", 101, "", "", TTL, false, false, false, false},
    {"206 never", 206, "", "Cache-Control: max-age=60", TTL, false, false, false, false},
    {"304 never", 304, "", "Cache-Control: max-age=60", TTL, false, false, false, false},
    {"status 600", 600, "", "Cache-Control: max-age=60", TTL, false, false, false, false},
    {"no-store", 200, "", "Cache-Control: max-age=60, no-store", TTL, false, false, false, false},
    {"NO-STORE", 200, "", "Cache-Control: NO-STORE", TTL, false, false, false, false},
    {"no-store second line", 200, "", "Cache-Control: max-age=60\nCache-Control: no-store", TTL,
     false, false, false, false},
    {"private", 200, "", "Cache-Control: private, max-age=60", TTL, false, false, false, false},
    {"private qualified", 200, "", "Cache-Control: private=\"Set-Cookie\"", TTL, false, false,
     false, false},
    {"request no-store", 200, "Cache-Control: no-store", "", TTL, false, false, false, false},
    {"request no-cache stores", 200, "Cache-Control: no-cache", "", TTL, false, false, true, false},
    {"authorization", 200, "Authorization: Bearer x", "Cache-Control: max-age=60", TTL, false,
     false, false, false},
    {"authorization allowed by route", 200, "Authorization: Bearer x", "", TTL, true, false, true,
     false},
    {"authorization + public", 200, "Authorization: Bearer x", "Cache-Control: public", TTL, false,
     false, true, false},
    {"authorization + s-maxage", 200, "Authorization: Bearer x", "Cache-Control: s-maxage=5", TTL,
     false, false, true, false},
    {"authorization + must-revalidate", 200, "Authorization: Bearer x",
     "Cache-Control: max-age=5, must-revalidate", TTL, false, false, true, false},
    {"authorization + invalid s-maxage", 200, "Authorization: Bearer x",
     "Cache-Control: s-maxage=x", TTL, false, false, false, false},
    {"set-cookie", 200, "", "Set-Cookie: a=b\nCache-Control: max-age=60", TTL, false, false, false,
     false},
    {"set-cookie allowed by route", 200, "", "Set-Cookie: a=b", TTL, false, true, true, false},
    {"vary *", 200, "", "Vary: *", TTL, false, false, false, false},
    {"vary list with *", 200, "", "Vary: Accept, *", TTL, false, false, false, false},
    {"vary accept-encoding", 200, "", "Vary: Accept-Encoding", TTL, false, false, true, false},
    {"500 without freshness", 500, "", "", TTL, false, false, false, false},
    {"500 with max-age", 500, "", "Cache-Control: max-age=10", TTL, false, false, true, false},
    {"302 without freshness", 302, "", "", TTL, false, false, false, false},
    {"302 with public", 302, "", "Cache-Control: public", TTL, false, false, true, false},
    {"302 with Expires", 302, "", DATE "Expires: " PLUS_1H, TTL, false, false, true, false},
    {"302 with invalid Expires", 302, "", "Expires: 0", TTL, false, false, true, false},
    {"404 by default", 404, "", "", TTL, false, false, true, false},
    {"tier ttl 0, no freshness", 200, "", "", 0, false, false, false, false},
    {"tier ttl 0, max-age", 200, "", "Cache-Control: max-age=60", 0, false, false, true, false},
    {"tier ttl 0, invalid max-age", 200, "", "Cache-Control: max-age=x", 0, false, false, true,
     false},
    {"no-cache stores, revalidated", 200, "", "Cache-Control: no-cache", TTL, false, false, true,
     true},
    {"tier ttl 0, no-cache + ETag", 200, "", "Cache-Control: no-cache\nETag: \"a\"", 0, false,
     false, true, true},
    {"tier ttl 0, no-cache + Last-Modified", 200, "",
     "Cache-Control: no-cache\nLast-Modified: Sun, 06 Nov 1994 08:49:37 GMT", 0, false, false,
     true, true},
    {"tier ttl 0, no-cache, no validator", 200, "", "Cache-Control: no-cache", 0, false, false,
     false, false},
    {"no-cache qualified", 200, "", "Cache-Control: no-cache=\"Set-Cookie\"", TTL, false, false,
     true, true},
    {"Pragma ignored", 200, "", "Pragma: no-cache", TTL, false, false, true, false},
    {"CDN no-store beats CC", 200, "", "Cache-Control: max-age=60\nCDN-Cache-Control: no-store",
     TTL, false, false, false, false},
    {"CDN max-age beats CC no-store", 200, "",
     "Cache-Control: no-store\nCDN-Cache-Control: max-age=60", TTL, false, false, true, false},
    {"CDN replaces CC private", 200, "", "Cache-Control: private\nCDN-Cache-Control: max-age=60",
     TTL, false, false, true, false},
    {"empty CDN falls back to CC", 200, "", "Cache-Control: no-store\nCDN-Cache-Control: ", TTL,
     false, false, false, false},
    {"CDN hides Expires", 500, "", "CDN-Cache-Control: must-revalidate\nExpires: " PLUS_1H, TTL,
     false, false, false, false},
    {"CDN max-age on 500", 500, "", "CDN-Cache-Control: max-age=10", TTL, false, false, true,
     false},
    /* RFC 9213: a CDN-Cache-Control that is not a valid dictionary is ignored whole. */
    {"CDN string max-age ignored", 200, "",
     "Cache-Control: no-store\nCDN-Cache-Control: max-age=\"60\"", TTL, false, false, false,
     false},
    {"CDN negative max-age ignored", 200, "",
     "Cache-Control: no-store\nCDN-Cache-Control: max-age=-1", TTL, false, false, false, false},
    {"CDN uppercase key ignored", 200, "",
     "Cache-Control: no-store\nCDN-Cache-Control: Max-Age=60", TTL, false, false, false, false},
    {"CDN trailing comma ignored", 200, "",
     "Cache-Control: no-store\nCDN-Cache-Control: max-age=60,", TTL, false, false, false, false},
    {"CDN valued no-store ignored", 200, "",
     "Cache-Control: max-age=60\nCDN-Cache-Control: no-store=yes", TTL, false, false, true,
     false},
    {"CDN one bad line of two ignored", 200, "",
     "Cache-Control: no-store\nCDN-Cache-Control: max-age=60\nCDN-Cache-Control: x=\"open",
     TTL, false, false, false, false},
    {"CDN valid dictionary with extras", 200, "",
     "Cache-Control: no-store\nCDN-Cache-Control: max-age=60, x-ext=\"a\";p=1, y=?1, z=1.5",
     TTL, false, false, true, false},
};

static void evaluate(const struct store_case *c, struct st_freshness *out)
{
    struct st_headers req, resp;
    struct st_store_policy pol = {.tier_ttl_ms = c->ttl,
                                  .allow_authorized = c->allow_auth,
                                  .allow_set_cookie = c->allow_cookie};
    build(&req, c->req);
    build(&resp, c->resp);
    st_freshness_evaluate(c->status, &req, &resp, D_MS, D_MS, &pol, out);
    st_headers_finish(&req);
    st_headers_finish(&resp);
}

static void test_storability_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(store_cases) / sizeof(store_cases[0]); i++) {
        const struct store_case *c = &store_cases[i];
        struct st_freshness f;
        print_message("store: %s\n", c->name);
        evaluate(c, &f);
        assert_int_equal(f.storable, c->storable);
        if (c->storable) {
            assert_null(f.why_not);
            assert_int_equal(f.always_revalidate, c->always_revalidate);
        } else {
            assert_non_null(f.why_not);
        }
    }
}

static void test_status_cacheable_by_default(void **state)
{
    (void)state;
    static const int yes[] = {200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501};
    int n = 0;
    for (int s = 100; s < 600; s++)
        n += st_freshness_status_cacheable(s);
    assert_int_equal(n, (int)(sizeof(yes) / sizeof(yes[0])));
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        assert_true(st_freshness_status_cacheable(yes[i]));
}

/* ---- lifetimes --------------------------------------------------------- */

struct life_case {
    const char *name, *resp;
    int64_t response_ms;
    bool from_tier;
    int64_t lifetime_ms;
};

static const struct life_case life_cases[] = {
    {"max-age", "Cache-Control: max-age=60", D_MS, false, 60000},
    {"s-maxage beats max-age", "Cache-Control: max-age=60, s-maxage=30", D_MS, false, 30000},
    {"max-age beats Expires", DATE "Cache-Control: max-age=60\nExpires: " PLUS_1H, D_MS, false,
     60000},
    {"Expires - Date", DATE "Expires: " PLUS_1H, D_MS + 5000, false, 3600000},
    {"Expires without Date uses response time", "Expires: " PLUS_1H, D_MS, false, 3600000},
    {"Expires, invalid Date", "Date: yesterday\nExpires: " PLUS_1H, D_MS + 600000, false,
     3000000},
    {"first Expires wins", DATE "Expires: " PLUS_1H "\nExpires: " PLUS_2H, D_MS, false, 3600000},
    {"Expires in the past", DATE "Expires: " MINUS_1H, D_MS, false, 0},
    {"Expires: 0", DATE "Expires: 0", D_MS, false, 0},
    {"Expires garbage", DATE "Expires: soon", D_MS, false, 0},
    {"invalid max-age hides Expires", DATE "Cache-Control: max-age=x\nExpires: " PLUS_1H, D_MS,
     false, 0},
    {"invalid s-maxage hides max-age", "Cache-Control: s-maxage=-1, max-age=60", D_MS, false, 0},
    {"first max-age invalid", "Cache-Control: max-age=1x, max-age=60", D_MS, false, 0},
    {"huge max-age saturates", "Cache-Control: max-age=99999999999", D_MS, false,
     2147483648000LL},
    {"no explicit: tier ttl", "", D_MS, false, 60000},
    {"ttl_from_tier beats max-age", "Cache-Control: max-age=5", D_MS, true, 60000},
    {"ttl_from_tier beats s-maxage", "Cache-Control: s-maxage=5000", D_MS, true, 60000},
    {"ttl_from_tier beats Expires", DATE "Expires: " PLUS_1H, D_MS, true, 60000},
    {"CDN max-age beats CC", "Cache-Control: max-age=60\nCDN-Cache-Control: max-age=120", D_MS,
     false, 120000},
    {"CDN max-age beats CC s-maxage", "Cache-Control: s-maxage=10\nCDN-Cache-Control: max-age=120",
     D_MS, false, 120000},
    {"CDN s-maxage", "CDN-Cache-Control: s-maxage=7, max-age=120", D_MS, false, 7000},
    {"CDN hides Expires: tier ttl", DATE "CDN-Cache-Control: public\nExpires: " PLUS_1H, D_MS,
     false, 60000},
    {"no-cache keeps max-age", "Cache-Control: no-cache, max-age=60", D_MS, false, 60000},
};

static void test_lifetime_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(life_cases) / sizeof(life_cases[0]); i++) {
        const struct life_case *c = &life_cases[i];
        struct st_headers req, resp;
        struct st_store_policy pol = {.tier_ttl_ms = 60000, .ttl_from_tier = c->from_tier};
        struct st_freshness f;
        print_message("lifetime: %s\n", c->name);
        build(&req, "");
        build(&resp, c->resp);
        st_freshness_evaluate(200, &req, &resp, D_MS, c->response_ms, &pol, &f);
        assert_true(f.storable);
        assert_int_equal(f.lifetime_ms, c->lifetime_ms);
        st_headers_finish(&req);
        st_headers_finish(&resp);
    }
}

/* ---- age --------------------------------------------------------------- */

struct age_case {
    const char *name, *resp;
    int64_t request_ms, response_ms, age_ms;
};

static const struct age_case age_cases[] = {
    {"fresh from origin", DATE, D_MS, D_MS, 0},
    {"apparent age", DATE, D_MS + 5000, D_MS + 5000, 5000},
    {"corrected age wins", DATE "Age: 10", D_MS, D_MS + 2000, 12000},
    {"apparent age wins", DATE "Age: 1", D_MS + 9000, D_MS + 9500, 9500},
    {"Age list: first member", DATE "Age: 10, 20", D_MS, D_MS, 10000},
    {"Age list with spaces", DATE "Age: 10 , 20", D_MS, D_MS, 10000},
    {"Age with spaces", DATE "Age:  7 ", D_MS, D_MS, 7000},
    {"Age garbage ignored", DATE "Age: abc", D_MS, D_MS + 1000, 1000},
    {"Age negative ignored", DATE "Age: -5", D_MS, D_MS, 0},
    {"Age huge saturates", DATE "Age: 99999999999999", D_MS, D_MS, 2147483648000LL},
    {"Date in the future", "Date: " PLUS_1H, D_MS, D_MS + 100, 100},
    {"no Date", "Age: 3", D_MS, D_MS + 1000, 4000},
    {"response before request (clock skew)", DATE, D_MS + 10, D_MS, 0},
};

static void test_age_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(age_cases) / sizeof(age_cases[0]); i++) {
        const struct age_case *c = &age_cases[i];
        struct st_headers req, resp;
        struct st_freshness f;
        print_message("age: %s\n", c->name);
        build(&req, "");
        build(&resp, c->resp);
        st_freshness_evaluate(200, &req, &resp, c->request_ms, c->response_ms, &default_pol, &f);
        assert_true(f.storable);
        assert_int_equal(f.initial_age_ms, c->age_ms);
        st_headers_finish(&req);
        st_headers_finish(&resp);
    }
}

/* ---- stale windows ----------------------------------------------------- */

struct stale_case {
    const char *cc;
    int64_t swr_ms, sie_ms;
    bool no_stale, always_revalidate;
};

static const struct stale_case stale_cases[] = {
    {"max-age=60", 30000, 600000, false, false},
    {"max-age=60, stale-while-revalidate=5", 5000, 600000, false, false},
    {"max-age=60, stale-if-error=7", 30000, 7000, false, false},
    {"stale-while-revalidate=0, stale-if-error=0", 0, 0, false, false},
    {"stale-while-revalidate=abc", 0, 600000, false, false},
    {"max-age=60, must-revalidate, stale-while-revalidate=5", 0, 0, true, false},
    {"max-age=60, proxy-revalidate, stale-if-error=9", 0, 0, true, false},
    /* s-maxage: the tier's windows never apply; the origin's own ones do */
    {"s-maxage=60, stale-while-revalidate=5", 5000, 0, false, false},
    {"s-maxage=60", 0, 0, true, false},
    {"s-maxage=60, must-revalidate, stale-if-error=9", 0, 0, true, false},
    {"no-cache", 30000, 600000, false, true},
};

static void test_stale_table(void **state)
{
    (void)state;
    struct st_store_policy pol = {.tier_ttl_ms = 60000, .tier_swr_ms = 30000,
                                  .tier_sie_ms = 600000};
    for (size_t i = 0; i < sizeof(stale_cases) / sizeof(stale_cases[0]); i++) {
        const struct stale_case *c = &stale_cases[i];
        char line[256];
        struct st_headers req, resp;
        struct st_freshness f;
        print_message("stale: %s\n", c->cc);
        snprintf(line, sizeof(line), "Cache-Control: %s", c->cc);
        build(&req, "");
        build(&resp, line);
        st_freshness_evaluate(200, &req, &resp, D_MS, D_MS, &pol, &f);
        assert_true(f.storable);
        assert_int_equal(f.swr_ms, c->swr_ms);
        assert_int_equal(f.sie_ms, c->sie_ms);
        assert_int_equal(f.no_stale, c->no_stale);
        assert_int_equal(f.always_revalidate, c->always_revalidate);
        st_headers_finish(&req);
        st_headers_finish(&resp);
    }
}

/* ---- request directives ------------------------------------------------ */

struct req_case {
    const char *req;
    int64_t age_ms, lifetime_ms;
    bool no_stale;
    enum st_req_verdict want;
};

#define USE ST_REQ_USE
#define REV ST_REQ_REVALIDATE
static const struct req_case req_cases[] = {
    {"", 10000, 60000, false, USE},
    {"", 60000, 60000, false, REV},
    {"", 70000, 60000, false, REV},
    {"", 0, 0, false, REV},
    {"Pragma: no-cache", 0, 60000, false, USE},
    {"Cache-Control: no-cache", 0, 60000, false, REV},
    {"Cache-Control: max-age=30", 20000, 60000, false, USE},
    {"Cache-Control: max-age=30", 40000, 60000, false, REV},
    /* max-age=0 always goes to the origin, even for an entry stored this millisecond. */
    {"Cache-Control: max-age=0", 0, 60000, false, REV},
    {"Cache-Control: max-age=0", 1, 60000, false, REV},
    {"Cache-Control: max-age=abc", 0, 60000, false, REV},
    {"Cache-Control: min-fresh=20", 30000, 60000, false, USE},
    {"Cache-Control: min-fresh=20", 45000, 60000, false, REV},
    {"Cache-Control: max-stale", 100000, 60000, false, USE},
    {"Cache-Control: max-stale", 100000, 60000, true, REV},
    {"Cache-Control: max-stale=30", 80000, 60000, false, USE},
    {"Cache-Control: max-stale=30", 90000, 60000, false, USE},
    {"Cache-Control: max-stale=30", 90001, 60000, false, REV},
    {"Cache-Control: max-stale=30, max-age=10", 80000, 60000, false, REV},
    {"Cache-Control: max-stale, min-fresh=1", 80000, 60000, false, REV},
    {"Cache-Control: max-stale=abc", 61000, 60000, false, REV},
    {"Cache-Control: only-if-cached", 70000, 60000, false, REV},
};

static void test_request_allows_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(req_cases) / sizeof(req_cases[0]); i++) {
        const struct req_case *c = &req_cases[i];
        struct st_headers h;
        struct st_cc cc;
        print_message("request: '%s' age %lld\n", c->req, (long long)c->age_ms);
        build(&h, c->req);
        st_cc_parse_headers(&h, "cache-control", &cc);
        assert_int_equal(st_freshness_request_allows(&cc, c->age_ms, c->lifetime_ms, c->no_stale), c->want);
        st_headers_finish(&h);
    }
}

/* ---- conditional requests ---------------------------------------------- */

struct inm_case {
    const char *list, *etag;
    bool match;
};

static const struct inm_case inm_cases[] = {
    {"\"abc\"", "\"abc\"", true},
    {"W/\"abc\"", "\"abc\"", true},
    {"\"abc\"", "W/\"abc\"", true},
    {"W/\"abc\"", "W/\"abc\"", true},
    {"\"abc\"", "\"abd\"", false},
    {"\"abc\"", "\"ABC\"", false},
    {"\"x\", \"abc\"", "\"abc\"", true},
    {"  \"x\" ,\tW/\"abc\"  ", "\"abc\"", true},
    {",,\"abc\",,", "\"abc\"", true},
    {"\"x\", ", "\"abc\"", false},
    {"\"x\",\"y\"", "\"abc\"", false},
    {"*", "\"abc\"", true},
    {" * ", "\"abc\"", true},
    {"*", NULL, true},
    {"**", "\"abc\"", false},
    {"abc", "\"abc\"", false},
    {"\"abc", "\"abc\"", false},
    {"\"abc\"x", "\"abc\"", false},
    {"garbage, \"abc\"", "\"abc\"", true},
    {"W/abc", "\"abc\"", false},
    {"w/\"abc\"", "\"abc\"", false},
    {"\"a,b\"", "\"a,b\"", true},
    {"\"a,b\"", "\"a\"", false},
    {"\"\"", "\"\"", true},
    {"\"abc\"", "abc", false},
    {"", "\"abc\"", false},
};

static void test_if_none_match_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(inm_cases) / sizeof(inm_cases[0]); i++) {
        const struct inm_case *c = &inm_cases[i];
        print_message("inm: '%s' vs '%s'\n", c->list, c->etag ? c->etag : "(none)");
        assert_int_equal(st_freshness_if_none_match(c->list, strlen(c->list), c->etag,
                                          c->etag ? strlen(c->etag) : 0),
                         c->match);
    }
}

struct cond_case {
    const char *name, *req, *etag;
    int64_t last_modified_ms;
    bool not_modified;
};

static const struct cond_case cond_cases[] = {
    {"nothing", "", "\"abc\"", D_MS, false},
    {"INM match", "If-None-Match: \"abc\"", "\"abc\"", D_MS, true},
    {"INM weak match", "If-None-Match: W/\"abc\"", "\"abc\"", -1, true},
    {"INM second line", "If-None-Match: \"x\"\nIf-None-Match: \"abc\"", "\"abc\"", -1, true},
    {"INM decides alone", "If-None-Match: \"x\"\nIf-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT",
     "\"abc\"", D_MS, false},
    {"INM without entry etag", "If-None-Match: \"abc\"", NULL, D_MS, false},
    {"INM * without entry etag", "If-None-Match: *", NULL, D_MS, false},
    {"IMS equal", "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT", NULL, D_MS, true},
    {"IMS later", "If-Modified-Since: " PLUS_1H, "\"abc\"", D_MS, true},
    {"IMS earlier", "If-Modified-Since: " MINUS_1H, NULL, D_MS, false},
    {"IMS asctime", "If-Modified-Since: Sun Nov  6 08:49:37 1994", NULL, D_MS, true},
    {"IMS invalid", "If-Modified-Since: yesterday", NULL, D_MS, false},
    {"IMS, no Last-Modified", "If-Modified-Since: " PLUS_1H, NULL, -1, false},
    {"IMS twice", "If-Modified-Since: " PLUS_1H "\nIf-Modified-Since: " PLUS_1H, NULL, D_MS,
     false},
};

static void test_conditional_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cond_cases) / sizeof(cond_cases[0]); i++) {
        const struct cond_case *c = &cond_cases[i];
        struct st_headers h;
        print_message("conditional: %s\n", c->name);
        build(&h, c->req);
        assert_int_equal(st_freshness_not_modified(&h, c->etag, c->etag ? strlen(c->etag) : 0,
                                                     c->last_modified_ms),
                         c->not_modified);
        st_headers_finish(&h);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cc_parse_table),
        cmocka_unit_test(test_cc_parse_headers),
        cmocka_unit_test(test_date_parse_table),
        cmocka_unit_test(test_date_two_digit_year_reference),
        cmocka_unit_test(test_date_format),
        cmocka_unit_test(test_storability_table),
        cmocka_unit_test(test_status_cacheable_by_default),
        cmocka_unit_test(test_lifetime_table),
        cmocka_unit_test(test_age_table),
        cmocka_unit_test(test_stale_table),
        cmocka_unit_test(test_request_allows_table),
        cmocka_unit_test(test_if_none_match_table),
        cmocka_unit_test(test_conditional_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
