/*
 * bench_entry.h - a cache entry as the benchmarks of the memory tier store
 * it: status 200, Content-Type: application/json, `body_len` bytes of body,
 * fresh for about 12 days.
 */
#ifndef ST_BENCH_ENTRY_H
#define ST_BENCH_ENTRY_H

#include <stddef.h>

#include "cache/entry.h"

struct st_entry *bench_make_entry(const char *key, size_t key_len, const char *body,
                                        size_t body_len);

#endif
