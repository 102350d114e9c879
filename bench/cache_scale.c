/*
 * cache_scale.c - does the memory tier's hit path scale with threads?
 *
 * T threads (1 .. the machine's CPUs) look up cached 1 KiB entries as fast
 * as they can for a fixed time, in two ways:
 *
 *   peek    the workers' hit path: st_store_peek (lock-free hash chains,
 *           no reference taken, memory reclaimed through qsbr.h), with the
 *           thread going offline every 64 lookups as a worker does once per
 *           event-loop iteration;
 *   locked  st_store_lookup + st_store_item_unref: the shard mutex and a
 *           reference count, i.e. what a hit would cost with a shared lock
 *           and a shared atomic. Shown as the contrast.
 *
 * over two key sets: one hot key (every thread on the same entry and shard:
 * the worst case for anything shared) and 1,000 keys. Each lookup hashes
 * the key, as a request does. Each measurement runs ROUNDS times, the
 * thread counts alternating, and the median counts. Output: a markdown
 * table of lookups per second, per thread, and the speedup over one thread.
 *
 *   cache_scale [seconds per run (1)] [max threads (CPUs, at most 64)]
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "base/alloc.h"
#include "bench_entry.h"
#include "cache/store.h"
#include "base/qsbr.h"

#define BODY 1024
#define KEYS 1000
#define MAX_THREADS 64
#define ROUNDS 5

struct run {
    struct st_store *c;
    bool locked;
    unsigned keys;
    _Atomic bool go, stop;
    _Atomic unsigned ready;
};

struct thread_arg {
    struct run *run;
    unsigned id;
    uint64_t lookups, bytes;
};

/* The keys, formatted once (the server has the key in hand when it looks up). */
static char keys[KEYS][48];
static size_t key_lens[KEYS];

static void lookup_thread(void *p)
{
    struct thread_arg *a = p;
    struct run *r = a->run;
    if (!r->locked && !st_qsbr_register()) {
        fprintf(stderr, "cache_scale: no qsbr slot\n");
        exit(1);
    }
    uint64_t rng = 0x9e3779b97f4a7c15ull * (a->id + 1) | 1, n = 0, bytes = 0;
    atomic_fetch_add(&r->ready, 1);
    while (!atomic_load_explicit(&r->go, memory_order_acquire))
        ;
    while (!atomic_load_explicit(&r->stop, memory_order_relaxed)) {
        for (int i = 0; i < 64; i++) {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            unsigned k = (unsigned)(rng % r->keys);
            const char *key = keys[k];
            size_t len = key_lens[k];
            uint64_t h = st_store_hash(key, len);
            struct st_store_item *e;
            if (r->locked) {
                e = st_store_lookup(r->c, h, key, len, NULL, NULL);
                if (e)
                    bytes += (unsigned char)e->blob[e->blob_len - 1];
                st_store_item_unref(e);
            } else {
                e = st_store_peek(r->c, h, key, len, NULL, NULL);
                if (e)
                    bytes += (unsigned char)e->blob[e->blob_len - 1];
            }
            if (!e) {
                fprintf(stderr, "cache_scale: key %s missing\n", key);
                exit(1);
            }
        }
        n += 64;
        if (!r->locked)
            st_qsbr_offline(); /* a worker's loop iteration ends here */
    }
    a->lookups = n;
    a->bytes = bytes;
    if (!r->locked)
        st_qsbr_unregister();
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Lookups per second with `threads` threads. */
static double measure(struct st_store *c, bool locked, unsigned keys, unsigned threads,
                      double seconds)
{
    struct run r = {.c = c, .locked = locked, .keys = keys};
    struct thread_arg args[MAX_THREADS];
    uv_thread_t th[MAX_THREADS];
    for (unsigned i = 0; i < threads; i++) {
        args[i] = (struct thread_arg){.run = &r, .id = i};
        if (uv_thread_create(&th[i], lookup_thread, &args[i]) != 0) {
            fprintf(stderr, "cache_scale: cannot start a thread\n");
            exit(1);
        }
    }
    while (atomic_load(&r.ready) < threads)
        uv_sleep(1);
    uint64_t t0 = uv_hrtime();
    atomic_store_explicit(&r.go, true, memory_order_release);
    uv_sleep((unsigned)(seconds * 1000));
    atomic_store(&r.stop, true);
    uint64_t total = 0;
    for (unsigned i = 0; i < threads; i++) {
        uv_thread_join(&th[i]);
        total += args[i].lookups;
    }
    double elapsed = (double)(uv_hrtime() - t0) / 1e9;
    return (double)total / elapsed;
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 1.0;
    unsigned max_threads = argc > 2 ? (unsigned)atoi(argv[2]) : 0;
    uv_cpu_info_t *cpus;
    int n_cpus = 1;
    if (uv_cpu_info(&cpus, &n_cpus) == 0)
        uv_free_cpu_info(cpus, n_cpus);
    if (max_threads == 0)
        max_threads = n_cpus < MAX_THREADS ? (unsigned)n_cpus : MAX_THREADS;
    if (max_threads > MAX_THREADS || seconds <= 0) {
        fprintf(stderr, "usage: cache_scale [seconds > 0] [threads <= %d]\n", MAX_THREADS);
        return 2;
    }
    static char body[BODY];
    memset(body, 'x', sizeof(body));
    struct st_store *c = st_store_create(64u << 20, BODY);
    for (unsigned i = 0; i < KEYS; i++) {
        int len = snprintf(keys[i], sizeof(keys[i]), "/item/%u\x1f" "127.0.0.1:8080", i + 1);
        key_lens[i] = (size_t)len;
        struct st_entry *e = bench_make_entry(keys[i], key_lens[i], body, BODY);
        if (!e || !st_store_insert(c, st_entry_item(e))) {
            fprintf(stderr, "cache_scale: cannot store %s\n", keys[i]);
            return 1;
        }
        st_entry_unref(e);
    }
    printf("| lookup | keys | threads | lookups/s (median) | range | per thread | vs 1 thread |\n");
    printf("|---|---:|---:|---:|---:|---:|---:|\n");
    const bool modes[] = {false, true};
    const unsigned key_sets[] = {1, KEYS};
    for (int m = 0; m < 2; m++) {
        for (int k = 0; k < 2; k++) {
            /* Thread counts alternate within each round, so drift hits all alike. */
            double rates[MAX_THREADS][ROUNDS];
            for (int round = 0; round < ROUNDS; round++)
                for (unsigned t = 1; t <= max_threads; t++)
                    rates[t - 1][round] = measure(c, modes[m], key_sets[k], t, seconds);
            double one = 0;
            for (unsigned t = 1; t <= max_threads; t++) {
                qsort(rates[t - 1], ROUNDS, sizeof(double), cmp_double);
                double med = rates[t - 1][ROUNDS / 2];
                if (t == 1)
                    one = med;
                printf("| %s | %u | %u | %.2fM | %.2f-%.2fM | %.2fM | %.2fx |\n",
                       modes[m] ? "locked (mutex + refcount)" : "peek (the hit path)", key_sets[k],
                       t, med / 1e6, rates[t - 1][0] / 1e6, rates[t - 1][ROUNDS - 1] / 1e6,
                       med / t / 1e6, med / one);
                fflush(stdout);
            }
        }
    }
    printf("\n%d CPUs, %.1f s per run, %d rounds (thread counts alternating), medians, %d-byte bodies\n",
           n_cpus, seconds, ROUNDS, BODY);
    st_store_destroy(c);
    st_qsbr_drain_all();
    return 0;
}
