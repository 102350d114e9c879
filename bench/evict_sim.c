/*
 * evict_sim.c - hit ratio of strata's memory tier (SIEVE) against plain LRU
 * on a Zipf(alpha) request trace, at cache sizes of 1% and 10% of the
 * working set.
 *
 * The SIEVE side is the real store (proxy/cache.c): every request is a
 * st_store_lookup, every miss a st_store_insert of a real entry, under the
 * same byte budget accounting as the server. The LRU side is a textbook
 * LRU (hash table + list) charged the same bytes per object, so the two
 * differ only in the eviction policy.
 *
 *   evict_sim [keys] [requests] [alpha] [seed]
 *   defaults: 100000 keys, 2000000 requests, alpha 0.99, seed 1
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "bench_entry.h"
#include "cache/store.h"

#define BODY 1024

static uint64_t rng_state;

static double uniform01(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) / (double)(1ull << 53);
}

/* Zipf by inverse CDF over a precomputed table (binary search). */
static double *zipf_cdf(size_t n, double alpha)
{
    double *cdf = st_xmalloc(n * sizeof(*cdf)), sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += 1.0 / pow((double)(i + 1), alpha);
    double acc = 0;
    for (size_t i = 0; i < n; i++) {
        acc += 1.0 / pow((double)(i + 1), alpha) / sum;
        cdf[i] = acc;
    }
    return cdf;
}

static size_t zipf_draw(const double *cdf, size_t n)
{
    double u = uniform01();
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cdf[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    /* Scatter ranks over key ids so popularity is not correlated with key order. */
    return (lo * 2654435761u) % n;
}

/* --- LRU with a byte budget --- */

struct lru_node {
    size_t key;
    struct lru_node *prev, *next, *h_next;
};

struct lru {
    struct lru_node **table;
    size_t n_buckets;
    struct lru_node *head, *tail;
    uint64_t bytes, budget, charge;
};

static struct lru_node **lru_slot(struct lru *l, size_t key)
{
    struct lru_node **pp = &l->table[key % l->n_buckets];
    while (*pp && (*pp)->key != key)
        pp = &(*pp)->h_next;
    return pp;
}

static void lru_unlink(struct lru *l, struct lru_node *n)
{
    if (n->prev)
        n->prev->next = n->next;
    else
        l->head = n->next;
    if (n->next)
        n->next->prev = n->prev;
    else
        l->tail = n->prev;
}

static void lru_push(struct lru *l, struct lru_node *n)
{
    n->prev = NULL;
    n->next = l->head;
    if (l->head)
        l->head->prev = n;
    l->head = n;
    if (!l->tail)
        l->tail = n;
}

static bool lru_access(struct lru *l, size_t key)
{
    struct lru_node **pp = lru_slot(l, key);
    if (*pp) {
        lru_unlink(l, *pp);
        lru_push(l, *pp);
        return true;
    }
    while (l->bytes + l->charge > l->budget && l->tail) {
        struct lru_node *victim = l->tail;
        lru_unlink(l, victim);
        *lru_slot(l, victim->key) = victim->h_next;
        free(victim);
        l->bytes -= l->charge;
    }
    struct lru_node *n = st_xcalloc(1, sizeof(*n));
    n->key = key;
    *lru_slot(l, key) = n;
    lru_push(l, n);
    l->bytes += l->charge;
    return false;
}

static void lru_free(struct lru *l)
{
    for (struct lru_node *n = l->head, *next; n; n = next) {
        next = n->next;
        free(n);
    }
    free(l->table);
}

/* --- strata's store --- */

static double run_strata(const double *cdf, size_t keys, size_t requests, uint64_t budget,
                         uint64_t *charge_out)
{
    static char body[BODY];
    struct st_store *c = st_store_create(budget, BODY);
    size_t hits = 0;
    char key[32];
    for (size_t i = 0; i < requests; i++) {
        size_t k = zipf_draw(cdf, keys);
        int len = snprintf(key, sizeof(key), "/o/%zu\x1fh", k);
        uint64_t h = st_store_hash(key, (size_t)len);
        struct st_store_item *e = st_store_lookup(c, h, key, (size_t)len, NULL, NULL);
        if (e) {
            hits++;
            st_store_item_unref(e);
            continue;
        }
        e = st_entry_item(bench_make_entry(key, (size_t)len, body, BODY));
        *charge_out = e->charge;
        st_store_insert(c, e);
        st_store_item_unref(e);
    }
    st_store_destroy(c);
    return (double)hits / (double)requests;
}

static double run_lru(const double *cdf, size_t keys, size_t requests, uint64_t budget,
                      uint64_t charge)
{
    struct lru l = {.n_buckets = keys * 2, .budget = budget, .charge = charge};
    l.table = st_xcalloc(l.n_buckets, sizeof(*l.table));
    size_t hits = 0;
    for (size_t i = 0; i < requests; i++)
        hits += lru_access(&l, zipf_draw(cdf, keys));
    lru_free(&l);
    return (double)hits / (double)requests;
}

int main(int argc, char **argv)
{
    size_t keys = argc > 1 ? strtoull(argv[1], NULL, 10) : 100000;
    size_t requests = argc > 2 ? strtoull(argv[2], NULL, 10) : 2000000;
    double alpha = argc > 3 ? atof(argv[3]) : 0.99;
    uint64_t seed = argc > 4 ? strtoull(argv[4], NULL, 10) : 1;
    double *cdf = zipf_cdf(keys, alpha);
    printf("| cache size | objects | SIEVE (strata) hit ratio | LRU hit ratio | SIEVE - LRU |\n");
    printf("|---|---:|---:|---:|---:|\n");
    const double fractions[] = {0.01, 0.10};
    for (int f = 0; f < 2; f++) {
        uint64_t charge = 0;
        rng_state = seed * 0x9e3779b97f4a7c15ull | 1;
        /* First pass sizes the budget in whole entries of the real charge. */
        run_strata(cdf, keys, 1, 1 << 20, &charge);
        uint64_t budget = (uint64_t)((double)keys * fractions[f]) * charge;
        rng_state = seed * 0x9e3779b97f4a7c15ull | 1;
        double s = run_strata(cdf, keys, requests, budget, &charge);
        rng_state = seed * 0x9e3779b97f4a7c15ull | 1;
        double l = run_lru(cdf, keys, requests, budget, charge);
        printf("| %.0f%% | %zu | %.4f | %.4f | %+.4f |\n", fractions[f] * 100,
               (size_t)((double)keys * fractions[f]), s, l, s - l);
    }
    printf("\nZipf(%.2f) over %zu keys, %zu requests, %d-byte bodies, seed %llu\n", alpha, keys,
           requests, BODY, (unsigned long long)seed);
    free(cdf);
    return 0;
}
