/*
 * iplimit.c - a chained hash of client address -> open connections.
 */
#include "core/iplimit.h"

#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "cache/store.h"

struct st_iplimit_ent {
    struct st_iplimit_ent *next;
    uint64_t hash;
    uint64_t open;
    char ip[]; /* NUL-terminated */
};

void st_iplimit_init(struct st_iplimit *l)
{
    uv_mutex_init(&l->lock);
    l->n_buckets = 256;
    l->buckets = st_xcalloc(l->n_buckets, sizeof(*l->buckets));
    l->n = 0;
}

void st_iplimit_finish(struct st_iplimit *l)
{
    for (size_t i = 0; i < l->n_buckets; i++)
        for (struct st_iplimit_ent *e = l->buckets[i], *next; e; e = next) {
            next = e->next;
            free(e);
        }
    free(l->buckets);
    uv_mutex_destroy(&l->lock);
}

static struct st_iplimit_ent **find(struct st_iplimit *l, const char *ip, uint64_t hash)
{
    struct st_iplimit_ent **pp = &l->buckets[hash & (l->n_buckets - 1)];
    while (*pp && ((*pp)->hash != hash || strcmp((*pp)->ip, ip) != 0))
        pp = &(*pp)->next;
    return pp;
}

static void grow(struct st_iplimit *l)
{
    size_t nb = l->n_buckets * 2;
    struct st_iplimit_ent **b = st_xcalloc(nb, sizeof(*b));
    for (size_t i = 0; i < l->n_buckets; i++)
        for (struct st_iplimit_ent *e = l->buckets[i], *next; e; e = next) {
            next = e->next;
            e->next = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
        }
    free(l->buckets);
    l->buckets = b;
    l->n_buckets = nb;
}

bool st_iplimit_open(struct st_iplimit *l, const char *ip, uint64_t max)
{
    size_t len = strlen(ip);
    uint64_t hash = st_store_hash(ip, len);
    uv_mutex_lock(&l->lock);
    struct st_iplimit_ent **pp = find(l, ip, hash);
    if (!*pp) {
        struct st_iplimit_ent *e = st_xmalloc(sizeof(*e) + len + 1);
        e->next = NULL;
        e->hash = hash;
        e->open = 0;
        memcpy(e->ip, ip, len + 1);
        *pp = e;
        if (++l->n > l->n_buckets) {
            grow(l);
            pp = find(l, ip, hash);
        }
    }
    uint64_t open = ++(*pp)->open;
    uv_mutex_unlock(&l->lock);
    return max == 0 || open <= max;
}

void st_iplimit_close(struct st_iplimit *l, const char *ip)
{
    uint64_t hash = st_store_hash(ip, strlen(ip));
    uv_mutex_lock(&l->lock);
    struct st_iplimit_ent **pp = find(l, ip, hash);
    if (*pp && --(*pp)->open == 0) {
        struct st_iplimit_ent *e = *pp;
        *pp = e->next;
        free(e);
        l->n--;
    }
    uv_mutex_unlock(&l->lock);
}

uint64_t st_iplimit_count(struct st_iplimit *l, const char *ip)
{
    uint64_t hash = st_store_hash(ip, strlen(ip));
    uv_mutex_lock(&l->lock);
    struct st_iplimit_ent **pp = find(l, ip, hash);
    uint64_t n = *pp ? (*pp)->open : 0;
    uv_mutex_unlock(&l->lock);
    return n;
}
