/*
 * test_router.c - route selection: file order, host, methods, absolute-form.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"
#include "core/router.h"
#include "http/http.h"

static const char yaml[] = "upstreams:\n"
                           "  a: { servers: [\"127.0.0.1:9001\"] }\n"
                           "  b: { servers: [\"127.0.0.1:9002\"] }\n"
                           "routes:\n"
                           "  - { match: \"/api/{id}\", host: api.example.com, upstream: a,"
                           " strategy: bypass }\n"
                           "  - { match: \"/api/{id}\", methods: [POST], upstream: b,"
                           " strategy: bypass }\n"
                           "  - { match: \"/api/*\", upstream: a, strategy: bypass }\n"
                           "  - { match: \"/exact\", upstream: b, strategy: bypass }\n";

static int setup(void **state)
{
    struct st_diag d = {0};
    struct st_config *cfg = NULL;
    int rc = st_config_load_string("router.yaml", yaml, sizeof(yaml) - 1, &cfg, &d);
    for (size_t i = 0; i < d.n; i++)
        fprintf(stderr, "%s\n", d.lines[i]);
    st_diag_finish(&d);
    *state = cfg;
    return rc;
}

static int teardown(void **state)
{
    st_config_destroy(*state);
    return 0;
}

static int pick(const struct st_config *cfg, const char *host, unsigned m, const char *target)
{
    const struct st_route_cfg *r =
        st_router_match(cfg, host, host ? strlen(host) : 0, m, target, strlen(target));
    return r ? (int)(r - cfg->routes) : -1;
}

static void test_order_host_methods(void **state)
{
    const struct st_config *cfg = *state;
    assert_int_equal(pick(cfg, "api.example.com", ST_M_GET, "/api/1"), 0);
    assert_int_equal(pick(cfg, "API.Example.COM:8080", ST_M_GET, "/api/1"), 0);
    assert_int_equal(pick(cfg, "other.example.com", ST_M_POST, "/api/1"), 1);
    assert_int_equal(pick(cfg, "other.example.com", ST_M_GET, "/api/1"), 2);
    assert_int_equal(pick(cfg, NULL, ST_M_GET, "/api/1/more"), 2);
    assert_int_equal(pick(cfg, NULL, ST_M_GET, "/exact?q=1"), 3);
    assert_int_equal(pick(cfg, NULL, ST_M_GET, "/exact/no"), -1);
    assert_int_equal(pick(cfg, NULL, ST_M_GET, "/nothing"), -1);
}

static void test_absolute_form(void **state)
{
    const struct st_config *cfg = *state;
    assert_int_equal(pick(cfg, "x", ST_M_GET, "http://x/exact"), 3);
    size_t len;
    const char *p = st_target_path("http://host:1/a/b?c", 19, &len);
    assert_int_equal(len, 6);
    assert_memory_equal(p, "/a/b?c", 6);
    p = st_target_path("http://host", 11, &len);
    assert_int_equal(len, 1);
    assert_memory_equal(p, "/", 1);
    p = st_target_path("/plain", 6, &len);
    assert_int_equal(len, 6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_host_methods),
        cmocka_unit_test(test_absolute_form),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
