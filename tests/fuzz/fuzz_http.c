/*
 * fuzz_http.c - libFuzzer target for what strata parses out of requests and
 * responses: a head (status line + header lines) becomes a header list, which
 * then goes through every freshness rule (Cache-Control and CDN-Cache-Control
 * directives, HTTP dates, Age, Expires, conditional requests) and through the
 * cache key (query normalization in all three key.query modes); then it is
 * stored as a memory-tier entry (the target as key, the request bytes as
 * body), whose parts must read back exactly, and inserted into, looked up
 * in and removed by tag and prefix from a small shared cache. Must never
 * crash, leak or read out of bounds.
 *
 * Input: bytes up to the first NUL are the response head, the rest the
 * request target followed by (after a second NUL) the request's header lines.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "cache/store.h"
#include "cache/key.h"
#include "config/config.h"
#include "cache/freshness.h"
#include "http/http.h"

static size_t take(const uint8_t **p, size_t *n)
{
    const uint8_t *nul = memchr(*p, 0, *n);
    size_t len = nul ? (size_t)(nul - *p) : *n;
    return len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *p = data;
    size_t n = size;
    size_t head_len = take(&p, &n);
    const char *head = (const char *)p;
    p += head_len;
    n -= head_len;
    if (n) {
        p++;
        n--;
    }
    size_t target_len = take(&p, &n);
    const char *target = (const char *)p;
    p += target_len;
    n -= target_len;
    if (n) {
        p++;
        n--;
    }
    const char *req_head = (const char *)p;
    size_t req_len = n;

    struct st_headers resp, req;
    st_headers_init(&resp);
    st_headers_init(&req);
    st_headers_parse_head(&resp, head, head_len);
    /* The request's lines, behind a fake request line (parse_head skips line 1). */
    struct st_sb rh;
    st_sb_init(&rh, req_len + 16);
    st_sb_adds(&rh, "GET / HTTP/1.1\r\n");
    st_sb_add(&rh, req_head, req_len);
    st_headers_parse_head(&req, rh.p, rh.len);

    const int64_t now = 1795000000000;
    static const int statuses[] = {200, 203, 204, 206, 301, 304, 404, 410, 500, 503};
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
        struct st_store_policy pol = {.tier_ttl_ms = 60000, .tier_swr_ms = 1000,
                                      .tier_sie_ms = 1000};
        struct st_freshness fr;
        st_freshness_evaluate(statuses[i], &req, &resp, now - 5, now, &pol, &fr);
    }
    struct st_cc cc;
    st_cc_init(&cc);
    st_cc_parse_headers(&req, "cache-control", &cc);
    st_request_allows(&cc, 1000, 60000, false);
    st_conditional_not_modified(&req, head, head_len > 16 ? 16 : head_len, now);
    st_if_none_match(req_head, req_len, head, head_len > 8 ? 8 : head_len);
    st_http_date_parse(head, head_len);

    static const char *names[] = {"a", "id", "page"};
    for (int mode = 0; mode < 3; mode++) {
        struct st_route_cfg r = {0};
        r.key_query = (enum st_key_query)mode;
        r.key_query_names = (char **)names;
        r.n_key_query_names = 3;
        struct st_sb key;
        st_sb_init(&key, 64);
        st_cache_key_build(&key, &r, target, target_len, head, head_len > 32 ? 32 : head_len);
        st_sb_finish(&key);
    }
    static struct st_cache *cache;
    if (!cache)
        cache = st_cache_create(1 << 20, 64 << 10);
    struct st_cache_entry_init in = {
        .key = target, .key_len = target_len, .req = &req, .resp = &resp, .status = 200,
        .body = req_head, .body_len = req_len, .lifetime_ms = 1000, .tier_slot = -1,
    };
    struct st_cache_entry *e = st_cache_entry_new(&in);
    if (e) {
        const char *key = st_cache_entry_key(e);
        if (e->key_len != target_len || memcmp(key, target, target_len) != 0 || key[target_len])
            abort();
        if (e->head_len < 13 || memcmp(st_cache_entry_head(e), "HTTP/1.1 200 ", 13) != 0)
            abort();
        if (e->body_len != req_len || memcmp(e->body, req_head, req_len) != 0)
            abort();
        const char *etag = st_cache_entry_etag(e), *tags = st_cache_entry_tags(e);
        if ((etag && etag[e->etag_len]) || (tags && tags[e->tags_len]))
            abort();
        st_cache_insert(cache, e);
        st_cache_entry_unref(st_cache_lookup(cache, e->hash, key, e->key_len, &req));
        if (tags && e->tags_len)
            st_cache_remove_tag(cache, tags, e->tags_len < 8 ? e->tags_len : 8);
        if (target_len > 2)
            st_cache_remove_prefix(cache, target, target_len / 2);
        st_cache_entry_unref(e);
    }

    st_sb_finish(&rh);
    st_headers_finish(&resp);
    st_headers_finish(&req);
    return 0;
}
