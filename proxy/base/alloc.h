/*
 * alloc.h - the one allocation family of strata.
 *
 * Every allocation in the project goes through these. Running out of memory
 * is not half-handled in a hundred places: these abort with a message. The
 * allocator underneath is jemalloc when the build links it, else libc's
 * (sanitizer builds).
 */
#ifndef ST_ALLOC_H
#define ST_ALLOC_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

void *st_xmalloc(size_t size);
void *st_xcalloc(size_t n, size_t size);
void *st_xrealloc(void *p, size_t size);
char *st_xstrdup(const char *s);
char *st_xstrndup(const char *s, size_t n);
/* printf into a fresh heap string; never returns NULL. */
char *st_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *st_xvasprintf(const char *fmt, va_list ap);

/* What the allocator holds, in bytes (jemalloc's stats; all 0 with the system allocator). */
struct st_alloc_stats {
    bool jemalloc;
    uint64_t allocated; /* in live allocations */
    uint64_t active;    /* in pages that hold live allocations */
    uint64_t metadata;  /* the allocator's own */
    uint64_t resident;  /* in resident pages: active, metadata and not yet purged free pages */
    uint64_t dirty;     /* in free pages not yet given back to the kernel (part of resident) */
    uint64_t mapped;    /* mapped address space in use */
    uint64_t retained;  /* address space kept for reuse, not resident */
};
void st_alloc_stats(struct st_alloc_stats *out);

/*
 * Give the kernel back every free page the allocator still holds (jemalloc: purge all arenas;
 * nothing with the system allocator). jemalloc decays an arena's freed pages only while that
 * arena is in use: a worker that went quiet after a burst of large bodies keeps megabytes
 * resident for good. The server calls this on a timer (ST_ALLOC_RELEASE_MS); any thread may.
 */
void st_alloc_release(void);
#define ST_ALLOC_RELEASE_MS 10000

/* Always-on invariant check: a breach means memory is already wrong. */
#define ST_CHECK(cond)                                                                             \
    do {                                                                                           \
        if (__builtin_expect(!(cond), 0))                                                          \
            st_check_failed(__FILE__, __LINE__, #cond);                                            \
    } while (0)

void st_check_failed(const char *file, int line, const char *what) __attribute__((noreturn));

#endif
