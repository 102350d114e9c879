/*
 * l2wire.h - what the Redis tier writes and reads, as pure functions: key
 * names, bus messages, stream ids, and how each Redis reply is read.
 *
 * Key layout (prefix P, default "strata:"; {...} is the Redis Cluster hash
 * tag, so what one key needs in one command or script shares a slot):
 *   P{<h>}:v          the entry's wire form (entry.h), h = 16 hex of the key hash
 *   P{<h>}:l          the stampede lock of that key (token, PX lease)
 *   P{p<h>}           set of the cache keys stored under one path (no query)
 *   P{x<h>}           set of the cache keys under one path prefix ending in '/'
 *   P{t<h>}           set of the cache keys with one Surrogate-Key tag
 *   P{bus}:log        the invalidation stream (capped), ids = sequence numbers
 *   Pbus              the pub/sub channel (invalidations and fill notices)
 *
 * Bus messages (text; the value runs to the end and may hold anything):
 *   "I <stream id> <instance> <k|p|t|e> <value>" an invalidation (uri, prefix,
 *                                                tag, exact key)
 *   "F <instance> <16 hex hash> <key>"           a fill notice: the lock is free
 *
 * Must not: talk to Redis or touch the cache; everything here is testable
 * with hand-built replies.
 */
#ifndef ST_L2WIRE_H
#define ST_L2WIRE_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "cache/tier.h"

#define ST_L2_INSTANCE_LEN 16 /* hex characters of an instance id */
#define ST_L2_MAX_DEPTH 8     /* path prefixes indexed per key */

enum st_l2_keykind { ST_L2_VALUE, ST_L2_LOCK, ST_L2_DIRTY };

/* P{<h>}:v, P{<h>}:l or P{<h>}:w (the queued write a dirty value waits on) into sb (appended). */
void st_l2_key(struct st_sb *sb, const char *prefix, uint64_t hash, enum st_l2_keykind kind);
/* An index set's name: kind 'p' (path), 'x' (prefix) or 't' (tag) of s. */
void st_l2_set_key(struct st_sb *sb, const char *prefix, char kind, const char *s, size_t len);

/* The path of a cache key (up to '?' or the separator). */
size_t st_l2_key_path_len(const char *key, size_t len);
/*
 * The lengths of the path prefixes of path that end in '/' ("/", "/a/", ...),
 * at most ST_L2_MAX_DEPTH; returns how many.
 */
size_t st_l2_path_prefixes(const char *path, size_t len, size_t out[ST_L2_MAX_DEPTH]);

struct st_l2_stream_id {
    uint64_t ms, seq;
};

/* "<ms>-<seq>" (not NUL-terminated); false when malformed. */
bool st_l2_stream_id_parse(const char *s, size_t len, struct st_l2_stream_id *out);
int st_l2_stream_id_cmp(struct st_l2_stream_id a, struct st_l2_stream_id b);

struct st_l2_msg {
    char type; /* 'I' or 'F' */
    struct st_l2_stream_id id;   /* I */
    const char *instance;        /* ST_L2_INSTANCE_LEN chars */
    enum st_inval_kind kind;     /* I */
    uint64_t hash;               /* F */
    const char *value;           /* I: the value; F: the key */
    size_t value_len;
};

/* Parse a bus message (pointers into msg); false when it is not one. */
bool st_l2_msg_parse(const char *msg, size_t len, struct st_l2_msg *out);
/* The body of an invalidation as kept in the stream: "<instance> <k|p|t|e> <value>". */
void st_l2_inval_body(struct st_sb *sb, const char *instance, enum st_inval_kind kind,
                      const char *value, size_t len);
/* Parse such a body (as found in a stream entry). */
bool st_l2_inval_body_parse(const char *s, size_t len, struct st_l2_msg *out);
void st_l2_notice(struct st_sb *sb, const char *instance, uint64_t hash, const char *key,
                  size_t len);

/* --- replies --- */

enum st_l2_get {
    ST_L2_GOT,     /* a string: the value */
    ST_L2_NONE,    /* nil: no such key */
    ST_L2_FAILED,  /* no reply, an error, or a type that cannot be (counted as an error) */
};

/* A GET reply; with ST_L2_GOT, *p and *len are the value. */
enum st_l2_get st_l2_reply_get(const redisReply *r, const char **p, size_t *len);

enum st_l2_lock { ST_L2_LOCK_WON, ST_L2_LOCK_HELD, ST_L2_LOCK_FAILED };

/* A SET NX reply: OK (won), nil (someone holds it), anything else failed. */
enum st_l2_lock st_l2_reply_lock(const redisReply *r);

/*
 * One stream entry of an XRANGE reply: [id, [field, value, ...]]; the value
 * of field "m". False when the shape is wrong.
 */
bool st_l2_reply_stream_entry(const redisReply *e, struct st_l2_stream_id *id, const char **m,
                              size_t *m_len);

/* The value of field name in a flat [name, value, ...] reply (XINFO), or NULL. */
const redisReply *st_l2_reply_field(const redisReply *r, const char *name);

/* The run_id in an INFO reply (40 hex); false when there is none. */
bool st_l2_reply_run_id(const redisReply *r, char out[41]);

#endif
