/*
 * memtier.h - the memory tier (L1): the tier interface over one memory
 * store (store.h) and one process-wide set of flights (flight.h).
 */
#ifndef ST_MEMTIER_H
#define ST_MEMTIER_H

#include <stdint.h>

#include "cache/tier.h"

/* memory: byte budget; max_object: largest body stored. Destroy with st_cache_tier_destroy. */
struct st_cache_tier *st_memtier_create(uint64_t memory, uint64_t max_object);

#endif
