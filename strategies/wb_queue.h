/*
 * wb_queue.h - the write-behind queue in Redis: what a queued write is, the
 * keys it lives under, and the few atomic steps that move it (enqueue,
 * complete, dead-letter, retry), each one Lua script.
 *
 * Layout (P = redis.prefix; partitions by the cache key's hash, so that all
 * writes to one key are in one stream, in order; each stream and its
 * companions share one hash tag, so they sit in one Redis Cluster slot):
 *   P{wb<n>}:q   the queue: a stream of writes, consumer group "strata"
 *   P{wb<n>}:d   dead letters: the write, the origin's status and answer
 *   P{wb<n>}:o   the partition's owner (an instance id, with a lease): the
 *                only flusher of that stream, so per-key order holds
 *   P{<h>}:v     the key's value (as in the Redis tier), no TTL while dirty
 *   P{<h>}:w     the id of the key's newest queued write: the value is dirty
 *                while it exists; fills and removals leave such a value alone
 *
 * A write is a flat list of fields (enum st_wb_field), as kept in the
 * stream; the representation a reader sees (a dirty entry) is rebuilt from
 * them by st_wb_entry.
 *
 * Must not: touch a socket or the exchange; it speaks Redis through
 * redis/redis.h and builds entries through cache/entry.h.
 */
#ifndef ST_WB_QUEUE_H
#define ST_WB_QUEUE_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "cache/entry.h"
#include "config/config.h"

struct st_redis;

#define ST_WB_PARTITIONS 16
#define ST_WB_GROUP "strata"
#define ST_WB_ID_LEN 32 /* hex characters of a write id */
#define ST_WB_DEAD_MAX 10000 /* dead letters kept per partition (oldest trimmed) */
/* How long a dirty entry stays fresh: until its write is flushed, in practice. */
#define ST_WB_DIRTY_LIFETIME_MS (365LL * 24 * 3600 * 1000)

enum st_wb_field {
    ST_WB_ID,      /* the write id (Strata-Write-Id, Idempotency-Key) */
    ST_WB_KEY,     /* the cache key */
    ST_WB_METHOD,  /* PUT, DELETE or PATCH */
    ST_WB_ROUTE,   /* the route's id, to find its upstream and tier again */
    ST_WB_TARGET,  /* the request target */
    ST_WB_HEADERS, /* the end-to-end request headers to send, "Name: value\r\n" each */
    ST_WB_BODY,
    ST_WB_CLIENT,  /* the client's address (X-Forwarded-For) */
    ST_WB_AT,      /* when it was accepted, unix ms */
    ST_WB__COUNT
};

struct st_wb_write {
    const char *v[ST_WB__COUNT]; /* not NUL-terminated */
    size_t len[ST_WB__COUNT];
};

/* The field's name in the stream. */
const char *st_wb_field_name(enum st_wb_field f);

unsigned st_wb_partition(uint64_t key_hash);
/* P{wb<part>}:<kind> into sb (appended); kind 'q', 'd' or 'o'. */
void st_wb_key(struct st_sb *sb, const char *prefix, unsigned part, char kind);

/*
 * Fill w from one stream entry's field list ([name, value, ...]; pointers
 * into the reply). False when a field is missing or the method is not one
 * a write can have.
 */
bool st_wb_parse(const redisReply *fields, struct st_wb_write *w);

/*
 * The representation readers get after w: a PUT's body with the
 * Content-Type found in its headers (200), a DELETE's tombstone (404).
 * dirty (tier NULL): fresh until flushed; else an ordinary entry of the tier
 * (NULL when the tier keeps nothing). NULL for a PATCH (strata cannot know
 * its result).
 */
struct st_entry *st_wb_entry(const struct st_wb_write *w, const struct st_tier *tier,
                             int64_t now_ms);

/* The value of header name (lowercase) in a ST_WB_HEADERS block; NULL when absent. */
const char *st_wb_header(const char *block, size_t len, const char *name, size_t *vlen);

/* Callbacks get Redis's reply (NULL: no answer in time, or the connection went). */
typedef void (*st_wb_cb)(struct st_redis *r, const redisReply *reply, void *arg);

/*
 * Queue w and make its representation (value: an encoded dirty entry, or
 * empty to drop the key's value) what readers see, in one step. The reply
 * is the new stream id. 0, or -EAGAIN (Redis not up: cb not called).
 */
int st_wb_enqueue(struct st_redis *r, const char *prefix, uint64_t key_hash,
                  const struct st_wb_write *w, const char *value, size_t value_len,
                  st_wb_cb cb, void *arg);

/*
 * The write with stream id sid is done (flushed or superseded): ack and
 * delete it; if it is still the key's newest write, the value stops being
 * dirty: replaced by value with a TTL of px ms, or dropped when value is
 * empty. Reply 1 when the value changed, 0 when a newer write owns it.
 */
int st_wb_complete(struct st_redis *r, const char *prefix, uint64_t key_hash, unsigned part,
                   const char *sid, const struct st_wb_write *w, const char *value,
                   size_t value_len, int64_t px, st_wb_cb cb, void *arg);

/*
 * Move the write to the dead letters with the origin's status and answer
 * (status 0: none came); drop the value if it is still the key's newest
 * write. Reply 1 when it dropped it.
 */
int st_wb_dead(struct st_redis *r, const char *prefix, uint64_t key_hash, unsigned part,
               const char *sid, const struct st_wb_write *w, int status, const char *answer,
               size_t answer_len, st_wb_cb cb, void *arg);

/* --- the admin side: state of every partition, dead letters, retry --- */

/* The queue as seen now (every partition asked); done gets the JSON body, or NULL. */
typedef void (*st_wb_json_cb)(void *arg, int status, const char *json, size_t len);
void st_wb_status(struct st_redis *r, const char *prefix, int64_t now_ms, st_wb_json_cb done,
                  void *arg);
/*
 * Queue dead letters again as new writes (the newest for their keys): the
 * one with write id `id`, or all of them when id is NULL. JSON
 * {"retried":N}.
 */
void st_wb_retry(struct st_redis *r, const char *prefix, const char *id, st_wb_json_cb done,
                 void *arg);

/* One partition's numbers, for the flusher's gauges: reply [depth, oldest id, dead, owner]. */
int st_wb_partition_info(struct st_redis *r, const char *prefix, unsigned part, st_wb_cb cb,
                         void *arg);
/* The millisecond part of a stream id ("1700000000000-0"), -1 when it is not one. */
int64_t st_wb_sid_ms(const char *sid, size_t len);

#endif
