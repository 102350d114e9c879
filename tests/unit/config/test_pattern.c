/*
 * test_pattern.c - route patterns: compile errors, matching (literal,
 * {name}, trailing "*", query ignored), captures, and template filling.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "config/pattern.h"

static bool matches(const char *pattern, const char *path)
{
    struct st_pattern p;
    const char *why = NULL;
    assert_int_equal(st_pattern_compile(pattern, &p, &why), 0);
    bool m = st_pattern_match(&p, path, strlen(path), NULL, NULL);
    st_pattern_finish(&p);
    return m;
}

struct match_case {
    const char *pattern;
    const char *path;
    bool match;
};

static void test_match_table(void **state)
{
    static const struct match_case cases[] = {
        {"/api/v1/products", "/api/v1/products", true},
        {"/api/v1/products", "/api/v1/products/", false},
        {"/api/v1/products", "/api/v1/product", false},
        {"/api/v1/products", "/api/v1/productsX", false},
        {"/api/v1/products", "/API/v1/products", false}, /* case-sensitive */
        {"/api/v1/products", "/api/v1", false},
        {"/api/v1/products", "/api/v1/products?page=2", true},
        {"/api/v1/products", "/api/v1/products?", true},
        {"/api/v1/products/{id}", "/api/v1/products/42", true},
        {"/api/v1/products/{id}", "/api/v1/products/42?x=/y", true},
        {"/api/v1/products/{id}", "/api/v1/products/", false}, /* capture is non-empty */
        {"/api/v1/products/{id}", "/api/v1/products", false},
        {"/api/v1/products/{id}", "/api/v1/products/42/reviews", false},
        {"/a/{x}/c/{y}", "/a/1/c/2", true},
        {"/a/{x}/c/{y}", "/a/1/d/2", false},
        {"/*", "/", true},
        {"/*", "/anything/at/all", true},
        {"/*", "/?q=1", true},
        {"/*", "", false},
        {"/*", "relative", false},
        {"/static/*", "/static/", true},
        {"/static/*", "/static/css/site.css", true},
        {"/static/*", "/static", false},
        {"/static/*", "/staticx/a", false},
        {"/static/*", "/static?x=/static/", false}, /* the query is not path */
        {"/", "/", true},
        {"/", "/a", false},
        {"/", "/?a=b", true},
        {"/a/", "/a/", true},
        {"/a/", "/a", false},
        {"/{id}/*", "/7/x", true},
        {"/{id}/*", "//x", false},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bool got = matches(cases[i].pattern, cases[i].path);
        if (got != cases[i].match)
            fail_msg("%s vs %s: got %d, want %d", cases[i].pattern, cases[i].path, got,
                     cases[i].match);
    }
}

static void test_match_length_bounds_path(void **state)
{
    struct st_pattern p;
    const char *why;
    (void)state;
    assert_int_equal(st_pattern_compile("/a/{id}", &p, &why), 0);
    /* Only the first len bytes count: "/a/12" is the path, the rest is not. */
    assert_true(st_pattern_match(&p, "/a/12/zzz", 5, NULL, NULL));
    assert_false(st_pattern_match(&p, "/a/12/zzz", 3, NULL, NULL));
    st_pattern_finish(&p);
}

static void test_compile_segments(void **state)
{
    struct st_pattern p;
    const char *why;
    (void)state;
    assert_int_equal(st_pattern_compile("/api/{id}/*", &p, &why), 0);
    assert_int_equal(p.n_segs, 2);
    assert_true(p.rest);
    assert_string_equal(p.segs[0].text, "api");
    assert_false(p.segs[0].capture);
    assert_string_equal(p.segs[1].text, "id");
    assert_int_equal(p.segs[1].len, 2);
    assert_true(p.segs[1].capture);
    st_pattern_finish(&p);
    assert_null(p.segs);

    assert_int_equal(st_pattern_compile("/*", &p, &why), 0);
    assert_int_equal(p.n_segs, 0);
    assert_true(p.rest);
    st_pattern_finish(&p);
}

static void test_captures(void **state)
{
    struct st_pattern p;
    struct st_capture caps[ST_PATTERN_MAX_CAPTURES];
    size_t n = 99;
    const char *why;
    const char *path = "/shops/s1/items/it-9?x=1";
    (void)state;
    assert_int_equal(st_pattern_compile("/shops/{shop}/items/{item}", &p, &why), 0);
    assert_true(st_pattern_match(&p, path, strlen(path), caps, &n));
    assert_int_equal(n, 2);
    assert_int_equal(caps[0].name_len, 4);
    assert_memory_equal(caps[0].name, "shop", 4);
    assert_int_equal(caps[0].value_len, 2);
    assert_memory_equal(caps[0].value, "s1", 2);
    assert_ptr_equal(caps[0].value, path + 7); /* points into the path, no copy */
    assert_memory_equal(caps[1].name, "item", 4);
    assert_int_equal(caps[1].value_len, 4);
    assert_memory_equal(caps[1].value, "it-9", 4);

    assert_false(st_pattern_match(&p, "/shops/s1", 9, caps, &n));
    st_pattern_finish(&p);
}

static void test_max_captures(void **state)
{
    char text[256] = "";
    struct st_pattern p;
    const char *why = NULL;
    (void)state;
    for (int i = 0; i < ST_PATTERN_MAX_CAPTURES; i++)
        snprintf(text + strlen(text), sizeof(text) - strlen(text), "/{c%d}", i);
    assert_int_equal(st_pattern_compile(text, &p, &why), 0);
    st_pattern_finish(&p);
    strcat(text, "/{one_too_many}");
    assert_int_equal(st_pattern_compile(text, &p, &why), -EINVAL);
    assert_string_equal(why, "too many captures");
}

struct bad_case {
    const char *pattern;
    const char *why;
};

static void test_compile_errors(void **state)
{
    static const struct bad_case cases[] = {
        {"", "pattern must start with '/'"},
        {"api/x", "pattern must start with '/'"},
        {"*", "pattern must start with '/'"},
        {"/a/{id", "'{' without '}'"},
        {"/a/id}", "'}' without '{'"},
        {"/a/{}", "empty capture name"},
        {"/a/{i-d}", "capture names may hold only letters, digits and '_'"},
        {"/a/x{id}", "a capture must be a whole segment, like {id}"},
        {"/a/{id}x", "a capture must be a whole segment, like {id}"},
        {"/*/a", "'*' is only allowed as the last segment"},
        {"/a/b*", "'*' must be a whole last segment, like /static/*"},
        {"/a//b", "empty segment ('//')"},
        {"/a?x=1", "pattern must not contain a query or fragment"},
        {"/a/{id}/b/{id}", "duplicate capture name"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct st_pattern p;
        const char *why = NULL;
        int rc = st_pattern_compile(cases[i].pattern, &p, &why);
        if (rc != -EINVAL || !why || strcmp(why, cases[i].why) != 0)
            fail_msg("'%s': rc %d, why '%s', want '%s'", cases[i].pattern, rc, why ? why : "(null)",
                     cases[i].why);
        assert_null(p.segs); /* nothing left to free */
    }
}

static void test_fill(void **state)
{
    struct st_capture caps[] = {
        {"id", 2, "42xx", 2},
        {"shop", 4, "s1", 2},
    };
    char out[64];
    (void)state;
    assert_int_equal(st_pattern_fill("/api/v1/products/{id}/reviews", caps, 2, out, sizeof(out)),
                     27);
    assert_string_equal(out, "/api/v1/products/42/reviews");
    assert_int_equal(st_pattern_fill("/s/{shop}/p/{id}", caps, 2, out, sizeof(out)), 10);
    assert_string_equal(out, "/s/s1/p/42");
    assert_int_equal(st_pattern_fill("/plain", caps, 2, out, sizeof(out)), 6);
    assert_string_equal(out, "/plain");
    assert_int_equal(st_pattern_fill("/x/{missing}", caps, 2, out, sizeof(out)), -ENOENT);
    assert_int_equal(st_pattern_fill("/x/{id}", caps, 0, out, sizeof(out)), -ENOENT);
}

static void test_fill_truncates_like_snprintf(void **state)
{
    struct st_capture caps[] = {{"id", 2, "12345", 5}};
    char out[8];
    (void)state;
    memset(out, 'Z', sizeof(out));
    assert_int_equal(st_pattern_fill("/items/{id}", caps, 1, out, sizeof(out)), 12);
    assert_string_equal(out, "/items/");
    assert_int_equal(st_pattern_fill("/items/{id}", caps, 1, NULL, 0), 12);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match_table),
        cmocka_unit_test(test_match_length_bounds_path),
        cmocka_unit_test(test_compile_segments),
        cmocka_unit_test(test_captures),
        cmocka_unit_test(test_max_captures),
        cmocka_unit_test(test_compile_errors),
        cmocka_unit_test(test_fill),
        cmocka_unit_test(test_fill_truncates_like_snprintf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
