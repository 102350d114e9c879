/*
 * test_http.c - header lists, hop-by-hop filtering, the heads strata writes,
 * request targets.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "http/http.h"

/* Feed "Name: value" pairs the way the parser would, split into pieces. */
static void add(struct st_headers *h, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value);
    st_headers_name_piece(h, name, nl / 2);
    st_headers_name_piece(h, name + nl / 2, nl - nl / 2);
    if (vl > 0) {
        st_headers_value_piece(h, value, vl / 2);
        st_headers_value_piece(h, value + vl / 2, vl - vl / 2);
    }
    st_headers_value_done(h);
}

static void test_headers_pieces_and_lookup(void **state)
{
    (void)state;
    struct st_headers h;
    st_headers_init(&h);
    add(&h, "Content-Type", "application/json  ");
    add(&h, "X-Empty", "");
    add(&h, "ACCEPT", "text/html");
    assert_int_equal(h.n, 3);
    const struct st_hdr *e = st_headers_get(&h, "content-type");
    assert_non_null(e);
    assert_string_equal(st_hdr_value(&h, e), "application/json");
    assert_int_equal(e->value_len, 16);
    e = st_headers_get(&h, "x-empty");
    assert_non_null(e);
    assert_int_equal(e->value_len, 0);
    assert_string_equal(st_hdr_value(&h, e), "");
    e = st_headers_get(&h, "Accept");
    assert_non_null(e);
    assert_string_equal(st_hdr_name(&h, e), "ACCEPT");
    assert_null(st_headers_get(&h, "accept-encoding"));

    st_headers_reset(&h);
    assert_int_equal(h.n, 0);
    add(&h, "Host", "example.com");
    assert_string_equal(st_hdr_value(&h, st_headers_get(&h, "host")), "example.com");
    st_headers_finish(&h);
}

static void test_has_token(void **state)
{
    (void)state;
    struct st_headers h;
    st_headers_init(&h);
    add(&h, "Connection", "keep-alive, X-Secret ,Upgrade");
    add(&h, "Expect", "100-Continue");
    assert_true(st_headers_has_token(&h, "connection", "x-secret"));
    assert_true(st_headers_has_token(&h, "connection", "upgrade"));
    assert_true(st_headers_has_token(&h, "expect", "100-continue"));
    assert_false(st_headers_has_token(&h, "connection", "close"));
    assert_false(st_headers_has_token(&h, "connection", "x-secre"));
    st_headers_finish(&h);
}

static void test_hop_by_hop(void **state)
{
    (void)state;
    struct st_headers h;
    st_headers_init(&h);
    add(&h, "Connection", "X-Secret");
    add(&h, "X-Secret", "1");
    add(&h, "Keep-Alive", "timeout=5");
    add(&h, "TE", "trailers");
    add(&h, "Trailer", "X-T");
    add(&h, "Upgrade", "websocket");
    add(&h, "Proxy-Authorization", "Basic x");
    add(&h, "Proxy-Connection", "keep-alive");
    add(&h, "Transfer-Encoding", "chunked");
    add(&h, "X-Keep", "yes");
    add(&h, "Accept", "*/*");
    for (size_t i = 0; i < h.n; i++) {
        const char *name = st_hdr_name(&h, &h.v[i]);
        bool end_to_end = !strcmp(name, "X-Keep") || !strcmp(name, "Accept");
        assert_int_equal(st_http_is_hop_by_hop(&h, &h.v[i]), !end_to_end);
    }
    st_headers_finish(&h);
}

static void test_build_request(void **state)
{
    (void)state;
    struct st_headers h;
    st_headers_init(&h);
    add(&h, "Host", "api.example.com");
    add(&h, "Connection", "keep-alive, X-Secret");
    add(&h, "X-Secret", "1");
    add(&h, "X-Forwarded-For", "1.2.3.4");
    add(&h, "X-Request-Id", "client-id");
    add(&h, "Expect", "100-continue");
    add(&h, "Content-Length", "5");
    add(&h, "Accept", "application/json");
    struct st_request_head req = {
        .method = "POST",
        .target = "/v1/items?x=1",
        .target_len = 13,
        .http_minor = 1,
        .headers = &h,
    };
    struct st_forward_info fw = {
        .client_ip = "127.0.0.1",
        .request_id = "rid-1",
        .traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        .has_body = true,
        .content_length = 5,
    };
    struct st_sb sb;
    st_sb_init(&sb, 64);
    st_http_build_request(&sb, &req, &fw);
    const char *want = "POST /v1/items?x=1 HTTP/1.1\r\n"
                       "Host: api.example.com\r\n"
                       "Accept: application/json\r\n"
                       "X-Forwarded-For: 1.2.3.4, 127.0.0.1\r\n"
                       "X-Forwarded-Proto: http\r\n"
                       "Via: 1.1 strata\r\n"
                       "X-Request-Id: rid-1\r\n"
                       "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n"
                       "Content-Length: 5\r\n"
                       "\r\n";
    assert_string_equal(sb.p, want);

    /* A chunked body stays chunked; a GET has no framing headers. */
    sb.len = 0;
    fw.chunked = true;
    st_http_build_request(&sb, &req, &fw);
    assert_non_null(strstr(sb.p, "Transfer-Encoding: chunked\r\n"));
    assert_null(strstr(sb.p, "Content-Length"));
    sb.len = 0;
    fw.has_body = false;
    req.method = "GET";
    st_http_build_request(&sb, &req, &fw);
    assert_null(strstr(sb.p, "Transfer-Encoding"));
    assert_null(strstr(sb.p, "Content-Length"));
    st_sb_finish(&sb);
    st_headers_finish(&h);
}

static void test_build_response(void **state)
{
    (void)state;
    struct st_headers h;
    st_headers_init(&h);
    add(&h, "Content-Type", "application/json");
    add(&h, "Transfer-Encoding", "chunked");
    add(&h, "Connection", "close");
    add(&h, "Content-Length", "999");
    add(&h, "ETag", "\"v1\"");
    struct st_response_info ri = {
        .status = 200,
        .reason = "OK",
        .reason_len = 2,
        .framing = ST_FRAME_LENGTH,
        .content_length = 42,
        .keep_alive = true,
        .request_id = "rid",
        .cache_status = "strata; fwd=bypass",
    };
    struct st_sb sb;
    st_sb_init(&sb, 64);
    st_http_build_response(&sb, &ri, &h);
    const char *want = "HTTP/1.1 200 OK\r\n"
                       "Content-Type: application/json\r\n"
                       "ETag: \"v1\"\r\n"
                       "Cache-Status: strata; fwd=bypass\r\n"
                       "Via: 1.1 strata\r\n"
                       "X-Request-Id: rid\r\n"
                       "Content-Length: 42\r\n"
                       "Connection: keep-alive\r\n"
                       "\r\n";
    assert_string_equal(sb.p, want);

    sb.len = 0;
    ri.framing = ST_FRAME_CHUNKED;
    ri.keep_alive = false;
    ri.reason = NULL;
    ri.status = 404;
    st_http_build_response(&sb, &ri, NULL);
    assert_string_equal(sb.p, "HTTP/1.1 404 Not Found\r\n"
                              "Cache-Status: strata; fwd=bypass\r\n"
                              "Via: 1.1 strata\r\n"
                              "X-Request-Id: rid\r\n"
                              "Transfer-Encoding: chunked\r\n"
                              "Connection: close\r\n\r\n");

    /* HEAD: no body, but the origin's length is kept. */
    sb.len = 0;
    ri.status = 200;
    ri.framing = ST_FRAME_NONE;
    ri.send_length_on_none = true;
    ri.content_length = 7;
    st_http_build_response(&sb, &ri, NULL);
    assert_non_null(strstr(sb.p, "Content-Length: 7\r\n"));
    st_sb_finish(&sb);
    st_headers_finish(&h);
}

static void test_build_error(void **state)
{
    (void)state;
    struct st_sb sb;
    st_sb_init(&sb, 64);
    struct st_error_info ei = {.status = 502, .request_id = "abc", .now_ms = 784111777000LL};
    st_http_build_error(&sb, &ei);
    assert_true(strncmp(sb.p, "HTTP/1.1 502 Bad Gateway\r\n", 26) == 0);
    assert_non_null(strstr(sb.p, "Connection: close\r\n"));
    const char *body = strstr(sb.p, "\r\n\r\n") + 4;
    assert_string_equal(body, "{\"error\":\"origin unreachable or sent a bad response\","
                              "\"status\":502,\"request_id\":\"abc\"}\n");
    char cl[64];
    snprintf(cl, sizeof(cl), "Content-Length: %zu\r\n", strlen(body));
    assert_non_null(strstr(sb.p, cl));
    assert_non_null(strstr(sb.p, "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"));
    assert_non_null(strstr(sb.p, "Via: 1.1 strata\r\n"));
    assert_non_null(strstr(sb.p, "Cache-Status: strata; fwd=bypass\r\n"));
    sb.len = 0;
    ei = (struct st_error_info){.status = 404, .keep_alive = true, .head_only = true,
                                .cache_status = "strata; fwd=miss"};
    st_http_build_error(&sb, &ei);
    assert_string_equal(strstr(sb.p, "\r\n\r\n"), "\r\n\r\n");
    assert_non_null(strstr(sb.p, "Cache-Status: strata; fwd=miss\r\n"));
    sb.len = 0;
    ei = (struct st_error_info){.status = 400, .detail = "bad \"Host\""};
    st_http_build_error(&sb, &ei);
    assert_string_equal(strstr(sb.p, "\r\n\r\n") + 4, "{\"error\":\"bad \\\"Host\\\"\",\"status\":400}\n");
    st_sb_finish(&sb);
}

static void test_host_checks(void **state)
{
    (void)state;
    const char *good[] = {"", "example.com", "example.com:8080", "127.0.0.1", "[::1]",
                          "[::1]:80", "a-b_c.d~e", "%41b", "host:", NULL};
    const char *bad[] = {"exa mple.com", "a/b", "a@b", "[::1", "[::1]x", "h:8x", "h:80:80",
                         "%4", "[zz]", "a\"b", NULL};
    for (int i = 0; good[i]; i++)
        assert_true(st_http_host_valid(good[i], strlen(good[i])));
    for (int i = 0; bad[i]; i++)
        assert_false(st_http_host_valid(bad[i], strlen(bad[i])));
}

static void test_status_for_error(void **state)
{
    (void)state;
    assert_int_equal(st_http_status_for_error(-ETIMEDOUT), 504);
    assert_int_equal(st_http_status_for_error(-ECONNREFUSED), 502);
    assert_int_equal(st_http_status_for_error(-EPROTO), 502);
}

static void test_number_formatting(void **state)
{
    (void)state;
    char out[24];
    size_t n;
    n = st_fmt_i64(out, 0);
    assert_memory_equal(out, "0", n);
    assert_int_equal(n, 1);
    n = st_fmt_i64(out, -1);
    assert_int_equal(n, 2);
    assert_memory_equal(out, "-1", n);
    n = st_fmt_i64(out, INT64_MAX);
    assert_int_equal(n, 19);
    assert_memory_equal(out, "9223372036854775807", n);
    n = st_fmt_i64(out, INT64_MIN);
    assert_int_equal(n, 20);
    assert_memory_equal(out, "-9223372036854775808", n);
    n = st_fmt_hex(out, 0);
    assert_int_equal(n, 1);
    assert_memory_equal(out, "0", n);
    n = st_fmt_hex(out, 0x1a2b);
    assert_int_equal(n, 4);
    assert_memory_equal(out, "1a2b", n);
    n = st_fmt_hex(out, UINT64_MAX);
    assert_int_equal(n, 16);
    assert_memory_equal(out, "ffffffffffffffff", n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_headers_pieces_and_lookup),
        cmocka_unit_test(test_has_token),
        cmocka_unit_test(test_hop_by_hop),
        cmocka_unit_test(test_build_request),
        cmocka_unit_test(test_build_response),
        cmocka_unit_test(test_build_error),
        cmocka_unit_test(test_host_checks),
        cmocka_unit_test(test_status_for_error),
        cmocka_unit_test(test_number_formatting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
