/*
 * key.c - cache key canonicalization.
 */
#include "cache/key.h"

#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "http/http.h"

struct param {
    const char *p;
    size_t len;      /* whole "name=value" */
    size_t name_len; /* up to '=' */
};

static int param_cmp(const void *a, const void *b)
{
    const struct param *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int r = memcmp(x->p, y->p, n);
    if (r)
        return r;
    return x->len < y->len ? -1 : (x->len > y->len ? 1 : 0);
}

static bool param_wanted(const struct st_route_cfg *r, const struct param *p)
{
    if (r->key_query == ST_KEY_QUERY_ALL)
        return true;
    for (size_t i = 0; i < r->n_key_query_names; i++) {
        const char *name = r->key_query_names[i];
        if (strlen(name) == p->name_len && memcmp(name, p->p, p->name_len) == 0)
            return true;
    }
    return false;
}

static void add_query(struct st_sb *sb, const struct st_route_cfg *r, const char *q, size_t len)
{
    if (r->key_query == ST_KEY_QUERY_NONE || len == 0)
        return;
    size_t cap = 1;
    for (size_t i = 0; i < len; i++)
        cap += q[i] == '&';
    struct param *ps = st_xmalloc(cap * sizeof(*ps));
    size_t n = 0, i = 0;
    while (i <= len) {
        size_t start = i;
        while (i < len && q[i] != '&')
            i++;
        if (i > start) {
            struct param p = {q + start, i - start, 0};
            const char *eq = memchr(p.p, '=', p.len);
            p.name_len = eq ? (size_t)(eq - p.p) : p.len;
            if (param_wanted(r, &p))
                ps[n++] = p;
        }
        i++;
    }
    qsort(ps, n, sizeof(*ps), param_cmp);
    for (size_t k = 0; k < n; k++) {
        st_sb_add(sb, k == 0 ? "?" : "&", 1);
        st_sb_add(sb, ps[k].p, ps[k].len);
    }
    free(ps);
}

static void add_host(struct st_sb *sb, const char *host, size_t len)
{
    st_sb_add(sb, &(char){ST_KEY_SEP}, 1);
    size_t start = sb->len;
    st_sb_add(sb, host, len);
    for (size_t i = start; i < sb->len; i++)
        if (sb->p[i] >= 'A' && sb->p[i] <= 'Z')
            sb->p[i] = (char)(sb->p[i] + 32);
}

static void add_headers(struct st_sb *sb, const struct st_route_cfg *r,
                        const struct st_headers *req)
{
    for (size_t k = 0; k < r->n_key_headers; k++) {
        const char *name = r->key_headers[k];
        st_sb_add(sb, &(char){ST_KEY_SEP}, 1);
        st_sb_adds(sb, name);
        st_sb_add(sb, ":", 1);
        st_headers_join(req, name, strlen(name), sb);
    }
}

void st_cache_key_build(struct st_sb *sb, const struct st_route_cfg *r, const char *target,
                        size_t target_len, const char *host, size_t host_len,
                        const struct st_headers *req)
{
    size_t plen;
    const char *path = st_target_path(target, target_len, &plen);
    const char *q = memchr(path, '?', plen);
    size_t path_only = q ? (size_t)(q - path) : plen;
    st_sb_add(sb, path, path_only);
    if (q)
        add_query(sb, r, q + 1, plen - path_only - 1);
    add_host(sb, host, host_len);
    add_headers(sb, r, req);
}
