/*
 * redis.h - one Redis connection on one libuv loop (hiredis async + its
 * libuv adapter), with strata's own deadlines, failure backoff and
 * reconnects.
 *
 * hiredis 0.14 has no command or connect timeouts, so every command gets a
 * deadline of `timeout_ms`: a reply later than that is reported to its
 * callback as a failure (reply NULL) at the deadline, and dropped when it
 * arrives. ST_REDIS_MAX_FAILS consecutive timeouts while Redis has sent
 * nothing at all for 4 x timeout_ms (at least ST_REDIS_SILENT_MIN_MS), or
 * the connection closing, take the connection down (a Redis that answers
 * late but answers is busy, not gone, and keeps its connection): it is closed, commands are
 * refused at once (-EAGAIN, no callback) instead of each paying the
 * timeout, and a reconnect is tried after a backoff that doubles up to
 * ST_REDIS_BACKOFF_MAX_MS, with jitter. A connection is up again only once
 * AUTH, SELECT and a PING have been answered within their deadlines. An idle
 * command connection is PINGed every ST_REDIS_PING_MS, so that a Redis that
 * stopped answering is noticed without a request paying for it.
 *
 * Subscriber connections: st_redis_subscribe() makes this connection a
 * pub/sub one; the channel is subscribed again after every reconnect and
 * "up" means "subscribed". Pub/sub needs its own connection.
 *
 * States: DOWN (backoff timer armed) -> CONNECTING (handshake in flight)
 * -> UP -> DOWN. on_state is called on every UP <-> not UP transition, and
 * one log line says when the connection went down and when it came back.
 *
 * Threads: everything here runs on the loop's thread. Must not: know what
 * the commands mean (that is the cache layer's business).
 */
#ifndef ST_REDIS_H
#define ST_REDIS_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define ST_REDIS_MAX_FAILS 3
#define ST_REDIS_SILENT_MIN_MS 100
#define ST_REDIS_BACKOFF_MIN_MS 100
#define ST_REDIS_BACKOFF_MAX_MS 5000
#define ST_REDIS_PING_MS 1000 /* an idle command connection is PINGed this often */

struct st_redis;

/* A command's answer: reply NULL when it failed (timeout, connection lost, shut down). */
typedef void (*st_redis_reply_cb)(struct st_redis *r, const redisReply *reply, void *arg);
/* A connection came up (up true) or went down. */
typedef void (*st_redis_state_cb)(struct st_redis *r, bool up, void *arg);
/* A message published on the subscribed channel (data is not NUL-terminated). */
typedef void (*st_redis_message_cb)(struct st_redis *r, const char *data, size_t len, void *arg);

struct st_redis_opts {
    const char *name;      /* for log lines, e.g. "redis" (copied) */
    const char *host;      /* TCP host (copied), or NULL with unix_path */
    int port;
    const char *unix_path; /* unix socket path (copied), or NULL */
    const char *password;  /* AUTH when non-NULL (copied) */
    int db;                /* SELECT when non-zero */
    uint64_t timeout_ms;   /* deadline of every command and of the handshake */
    st_redis_state_cb on_state; /* may be NULL */
    void *arg;
    uint64_t seed; /* for the backoff jitter */
};

/* Create and start connecting (the first attempt is immediate). */
struct st_redis *st_redis_create(uv_loop_t *loop, const struct st_redis_opts *opts);
/*
 * Close: pending callbacks get reply NULL (before this returns), and the
 * memory is freed once the loop has closed the handles. NULL is a no-op.
 */
void st_redis_destroy(struct st_redis *r);

bool st_redis_up(const struct st_redis *r);
const char *st_redis_name(const struct st_redis *r);

/*
 * Send one command (argv with lengths; binary safe). 0: cb will be called
 * exactly once, later, never from inside this call. -EAGAIN: the
 * connection is not up (cb is not called).
 */
int st_redis_command(struct st_redis *r, st_redis_reply_cb cb, void *arg, int argc,
                     const char **argv, const size_t *lens);

/* Make this a subscriber connection for channel (copied); on_message gets each message. */
void st_redis_subscribe(struct st_redis *r, const char *channel, st_redis_message_cb on_message,
                        void *arg);

#endif
