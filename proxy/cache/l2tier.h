/*
 * l2tier.h - the Redis tier: L1 (the memory tier) in front of a shared L2
 * in Redis, one origin fetch per key across instances, and the bus.
 *
 * Each event-loop thread gets its own tier handle (st_l2_handle), whose
 * Redis connection lives on that loop; every handle shares one L1, one bus
 * and one instance id. A handle is a struct st_cache_tier:
 *   lookup        L1 only (an L1 hit never touches Redis), and only what
 *                 the bus still vouches for (st_bus_servable)
 *   insert        L1, and L2 with a TTL of the remaining freshness plus the
 *                 stale windows (values up to redis.max_object)
 *   flight_join   the local flight first; its leader is the tier: L2 GET
 *                 -> fresh hit: fill L1, wake everyone with SHARED; else the
 *                 cross-instance lock (SET NX PX lease) -> won, or Redis
 *                 failing: wake the first waiter with LEAD; held elsewhere:
 *                 wait for the holder's fill notice (bounded by lock_wait),
 *                 then GET again -> SHARED, or LEAD (fail open)
 *   flight_done   the local flight ends; a held lock is released and the
 *                 fill notice published
 *   invalidate_shared  drop the matching L2 values (through the index sets,
 *                 never a scan) and publish, in that order on one connection
 * Redis down (backoff) -> the handle acts as the memory tier alone.
 *
 * Threads: a handle's operations run on its own thread (lookup, insert and
 * the removals are safe from any thread, as the memory tier's). Handles
 * live until st_l2_destroy; st_cache_tier_detach closes one's connection.
 */
#ifndef ST_L2TIER_H
#define ST_L2TIER_H

#include <uv.h>

#include "cache/tier.h"
#include "config/config.h"

struct st_l2;
struct st_stats;

struct st_l2_opts {
    const struct st_redis_cfg *redis;
    uint64_t lease_ms;         /* lock lease: the longest an origin fetch may take */
    struct st_stats *main_stats; /* the main thread's counters (the bus counts there) */
};

/* Takes ownership of l1. The bus and the main thread's handle run on main_loop. */
struct st_l2 *st_l2_create(uv_loop_t *main_loop, struct st_cache_tier *l1,
                           const struct st_l2_opts *o);
/* The main thread's handle (admin invalidations). */
struct st_cache_tier *st_l2_main(struct st_l2 *l2);
/* A new handle for the thread running loop (call before that loop runs), counting into stats. */
struct st_cache_tier *st_l2_handle(struct st_l2 *l2, uv_loop_t *loop, struct st_stats *stats);
/* On the main loop, before it ends: detach the main handle and close the bus. */
void st_l2_close(struct st_l2 *l2);
/* After every loop ended: free the handles, L1 and l2. NULL is a no-op. */
void st_l2_destroy(struct st_l2 *l2);
/* This instance's id (ST_L2_INSTANCE_LEN hex). */
const char *st_l2_instance(const struct st_l2 *l2);

#endif
