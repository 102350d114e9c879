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
#include "cache/entry.h"
#include "cache/store.h"
#include "cache/key.h"
#include "config/config.h"
#include "cache/freshness.h"
#include "http/date.h"
#include "http/http.h"

static size_t take(const uint8_t **p, size_t *n)
{
    const uint8_t *nul = memchr(*p, 0, *n);
    size_t len = nul ? (size_t)(nul - *p) : *n;
    return len;
}

/*
 * The response stored as an entry under target, with the request's lines as
 * its body: it must read back exactly, then is inserted, looked up and
 * removed by tag and prefix.
 */
static void store_round_trip(const char *target, size_t target_len, const struct st_headers *req,
                             const struct st_headers *resp, const char *req_head, size_t req_len)
{
    static struct st_store *cache;
    if (!cache)
        cache = st_store_create(1 << 20, 64 << 10);
    struct st_entry_init in = {
        .key = target, .key_len = target_len, .req = req, .resp = resp, .status = 200,
        .body = req_head, .body_len = req_len, .lifetime_ms = 1000,
    };
    struct st_entry *e = st_entry_new(&in);
    if (e) {
        struct st_store_item *it = st_entry_item(e);
        const char *key = st_entry_key(e);
        if (it->key_len != target_len || memcmp(key, target, target_len) != 0 || key[target_len])
            abort();
        if (e->head_len < 13 || memcmp(st_entry_head(e), "HTTP/1.1 200 ", 13) != 0)
            abort();
        if (st_entry_body_len(e) != req_len || memcmp(st_entry_body(e), req_head, req_len) != 0)
            abort();
        const char *etag = st_entry_etag(e), *tags = st_entry_tags(e);
        if ((etag && etag[st_entry_etag_len(e)]) || (tags && tags[it->tags_len]))
            abort();
        st_store_insert(cache, it);
        st_store_item_unref(
            st_store_lookup(cache, it->hash, key, it->key_len, st_entry_vary_matches, req));
        if (tags && it->tags_len)
            st_store_remove_tag(cache, tags, it->tags_len < 8 ? it->tags_len : 8);
        if (target_len > 2)
            st_store_remove_prefix(cache, target, target_len / 2);
        st_entry_unref(e);
    }
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
    st_freshness_request_allows(&cc, 1000, 60000, false);
    st_freshness_not_modified(&req, head, head_len > 16 ? 16 : head_len, now);
    st_freshness_if_none_match(req_head, req_len, head, head_len > 8 ? 8 : head_len);
    st_http_date_parse(head, head_len);

    static const char *names[] = {"a", "id", "page"};
    for (int mode = 0; mode < 3; mode++) {
        struct st_route_cfg r = {0};
        r.key_query = (enum st_key_query)mode;
        r.key_query_names = (char **)names;
        r.n_key_query_names = 3;
        struct st_sb key;
        st_sb_init(&key, 64);
        st_cache_key_build(&key, &r, target, target_len, head, head_len > 32 ? 32 : head_len, NULL);
        st_sb_finish(&key);
    }
    store_round_trip(target, target_len, &req, &resp, req_head, req_len);

    st_sb_finish(&rh);
    st_headers_finish(&resp);
    st_headers_finish(&req);
    return 0;
}
