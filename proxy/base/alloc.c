/*
 * alloc.c - allocation that aborts on exhaustion instead of returning NULL.
 */
#include "base/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "st_build.h"
#if ST_HAVE_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

static void out_of_memory(size_t size)
{
    fprintf(stderr, "strata: out of memory allocating %zu bytes\n", size);
    abort();
}

void st_check_failed(const char *file, int line, const char *what)
{
    fprintf(stderr, "strata: %s:%d: invariant failed: %s\n", file, line, what);
    abort();
}

void *st_xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (!p)
        out_of_memory(size);
    return p;
}

void *st_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        out_of_memory(n * size);
    return p;
}

void *st_xrealloc(void *p, size_t size)
{
    void *q = realloc(p, size ? size : 1);
    if (!q)
        out_of_memory(size);
    return q;
}

char *st_xstrdup(const char *s)
{
    return st_xstrndup(s, strlen(s));
}

char *st_xstrndup(const char *s, size_t n)
{
    char *p = st_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *st_xvasprintf(const char *fmt, va_list ap)
{
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        out_of_memory(0);
    return s;
}

char *st_xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = st_xvasprintf(fmt, ap);
    va_end(ap);
    return s;
}

#if ST_HAVE_JEMALLOC
static uint64_t je_size(const char *name)
{
    size_t v = 0, len = sizeof(v);
    return mallctl(name, &v, &len, NULL, 0) == 0 ? (uint64_t)v : 0;
}
#endif

void st_alloc_stats(struct st_alloc_stats *out)
{
    memset(out, 0, sizeof(*out));
#if ST_HAVE_JEMALLOC
    uint64_t epoch = 1;
    size_t len = sizeof(epoch);
    mallctl("epoch", &epoch, &len, &epoch, len); /* refresh the numbers below */
    out->jemalloc = true;
    out->allocated = je_size("stats.allocated");
    out->active = je_size("stats.active");
    out->metadata = je_size("stats.metadata");
    out->resident = je_size("stats.resident");
    out->mapped = je_size("stats.mapped");
    out->retained = je_size("stats.retained");
    /* Every arena's together (4096 is MALLCTL_ARENAS_ALL); the count is in pages. */
    _Static_assert(MALLCTL_ARENAS_ALL == 4096, "the arena index in the name below");
    out->dirty = je_size("stats.arenas.4096.pdirty") * je_size("arenas.page");
#endif
}

void st_alloc_release(void)
{
#if ST_HAVE_JEMALLOC
    /* Every arena's (4096 is MALLCTL_ARENAS_ALL, as above). */
    mallctl("arena.4096.purge", NULL, NULL, NULL, 0);
#endif
}
