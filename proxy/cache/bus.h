/*
 * bus.h - the invalidation bus: one Redis pub/sub subscription per
 * instance, a capped stream of every invalidation, and what an instance
 * does when it is cut off.
 *
 * Every invalidation is appended to the stream and published in one script
 * (st_bus_publish), so its stream id is its sequence number. The
 * subscriber applies other instances' invalidations to L1, and wakes the
 * misses that wait for another instance's fill (fill notices).
 *
 * Partitions: pub/sub is at-most-once. From the moment the subscription is
 * lost (or before it first comes up), an L1 entry may be served for at most
 * partition_ttl after the loss or after it was stored, whichever is later
 * (st_bus_servable). When the subscription is back, the bus catches up:
 * Redis restarted (another run_id) or an invalidation we never saw trimmed
 * from the stream (XINFO max-deleted-entry-id) -> drop all of L1; else
 * replay the stream from the last id seen. Only then is L1 trusted again.
 *
 * States: DOWN -> CATCHING_UP -> UP -> DOWN ... (st_bus_state, any thread).
 * Threads: the bus runs on the main loop; st_bus_servable, st_bus_state
 * and the wait registry may be used from any thread; st_bus_publish and
 * st_bus_release on the thread of the connection they are given.
 * Must not: know HTTP or the exchange; it applies invalidations through
 * cache/invalidate.h only.
 */
#ifndef ST_BUS_H
#define ST_BUS_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "cache/tier.h"
#include "redis/redis.h"

struct st_bus;
struct st_stats;

struct st_bus_opts {
    const struct st_redis_opts *redis; /* for the subscriber connection */
    const char *prefix;                /* key prefix (copied) */
    const char *instance;              /* this instance's id (ST_L2_INSTANCE_LEN hex) */
    uint64_t partition_ttl_ms;
    struct st_cache_tier *l1; /* where received invalidations go (not owned) */
    struct st_stats *stats;   /* the main thread's counters */
};

/* cmd: the main loop's command connection (not owned), for the catch-up. */
struct st_bus *st_bus_create(uv_loop_t *loop, const struct st_bus_opts *o, struct st_redis *cmd);
/*
 * On the bus's loop: close the subscriber and timers (state DOWN, L1 still
 * trusted: the process is stopping). The struct stays readable by other
 * threads until st_bus_destroy, after every loop ended. NULL: no-op.
 */
void st_bus_close(struct st_bus *b);
void st_bus_destroy(struct st_bus *b);

/* May an L1 entry stored at stored_ms (wall clock) be served now? Any thread. */
bool st_bus_servable(const struct st_bus *b, int64_t stored_ms);
enum st_bus_state st_bus_state(const struct st_bus *b);

/* A miss waiting for another instance's fill notice of key. */
struct st_bus_wait {
    struct st_bus_wait *next; /* in the registry (under its lock) */
    uint64_t hash;
    const char *key; /* not owned: lives as long as the wait */
    size_t key_len;
    /*
     * Called once, on the bus's thread, under the registry lock, after the
     * wait left the registry: it must only hand the wait to its own thread.
     */
    void (*on_notice)(struct st_bus_wait *w);
};

void st_bus_wait_add(struct st_bus *b, struct st_bus_wait *w);
/* True when w was still registered (no notice will come); false when it is being noticed. */
bool st_bus_wait_remove(struct st_bus *b, struct st_bus_wait *w);

/*
 * Append an invalidation to the stream and publish it, on conn. cb gets
 * the script's reply (the stream id) or NULL. 0 or -EAGAIN (conn down; cb
 * not called).
 */
int st_bus_publish(struct st_bus *b, struct st_redis *conn, enum st_inval_kind kind,
                   const char *value, size_t len, st_redis_reply_cb cb, void *arg);
/* Release lock (if it still holds token) and publish the fill notice of key, on conn. */
int st_bus_release(struct st_bus *b, struct st_redis *conn, const char *lock, size_t lock_len,
                   const char *token, uint64_t hash, const char *key, size_t key_len);

#endif
