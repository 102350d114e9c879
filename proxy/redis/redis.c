/*
 * redis.c - one Redis connection: handshake, deadlines, backoff, reconnects.
 *
 * Deadlines: every command not yet answered sits in a FIFO (one timeout for
 * all, so deadline order is send order); one timer fires at the head's
 * deadline. A command that times out leaves the FIFO and its callback gets
 * NULL, but its record stays alive until hiredis hands the (late) reply or
 * the connection's end back, and is freed then: hiredis always calls every
 * callback exactly once, with NULL when the connection goes.
 *
 * Ownership: the struct owns its hiredis context (r->ac, NULL while down)
 * and two timers; it is freed from the last timer's close callback.
 * Re-entrancy: a context is taken out of r->ac before it is freed, so the
 * NULL callbacks and the disconnect callback that hiredis runs while
 * freeing it recognise a connection that is already gone.
 */
#include "redis/redis.h"

#include <errno.h>
#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/log.h"
#include "base/rand.h"

enum state { ST_DOWN, ST_CONNECTING, ST_UP, ST_CLOSED };

struct pending {
    struct pending *next, *prev; /* in the FIFO while linked */
    struct st_redis *r;
    st_redis_reply_cb cb;
    void *arg;
    uint64_t deadline;
    bool linked;
};

struct st_redis {
    uv_loop_t *loop;
    char *name, *host, *unix_path, *password;
    int port, db;
    uint64_t timeout_ms;
    st_redis_state_cb on_state;
    void *arg;
    redisAsyncContext *ac; /* owned; NULL while down */
    enum state state;
    bool was_up;      /* has been up at least once */
    bool said_down;   /* the "down" line is logged and the "back" line is due */
    uint64_t down_at; /* loop time of the last loss */
    unsigned fails;   /* consecutive timeouts */
    uint64_t heard_at; /* loop time of the last reply, late ones too (idle: PINGed) */
    unsigned backoff_n;
    uv_timer_t retry, deadline;
    unsigned open_handles;
    struct pending *head, *tail; /* unanswered, in deadline order */
    uint64_t rng[2];
    char *channel; /* subscriber: owned */
    st_redis_message_cb on_message;
    void *msg_arg;
};

static void start_connect(struct st_redis *r);
static void take_down(struct st_redis *r, const char *why);
static void on_deadline(uv_timer_t *t);
static int send_command(struct st_redis *r, uint64_t timeout, st_redis_reply_cb cb, void *arg,
                        int argc, const char **argv, const size_t *lens);

/* --- the FIFO of unanswered commands --- */

static void fifo_push(struct st_redis *r, struct pending *p)
{
    p->prev = r->tail;
    p->next = NULL;
    if (r->tail)
        r->tail->next = p;
    else
        r->head = p;
    r->tail = p;
    p->linked = true;
}

static void fifo_unlink(struct st_redis *r, struct pending *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        r->head = p->next;
    if (p->next)
        p->next->prev = p->prev;
    else
        r->tail = p->prev;
    p->linked = false;
}

static void arm_deadline(struct st_redis *r)
{
    if (!r->head || r->state == ST_CLOSED) {
        uv_timer_stop(&r->deadline);
        return;
    }
    uint64_t now = uv_now(r->loop);
    uv_timer_start(&r->deadline, on_deadline,
                   r->head->deadline > now ? r->head->deadline - now : 0, 0);
}

/* --- state --- */

static uint64_t backoff_ms(struct st_redis *r)
{
    unsigned n = r->backoff_n < 6 ? r->backoff_n : 6;
    uint64_t d = (uint64_t)ST_REDIS_BACKOFF_MIN_MS << n;
    if (d > ST_REDIS_BACKOFF_MAX_MS)
        d = ST_REDIS_BACKOFF_MAX_MS;
    r->backoff_n++;
    return d / 2 + st_rand64(r->rng) % (d / 2 + 1);
}

static void on_ping_reply(struct st_redis *r, const redisReply *reply, void *arg)
{
    (void)r;
    (void)reply;
    (void)arg;
}

/*
 * Down: reconnect. Up (command connections): a PING when the connection has
 * been idle for a beat, so that a Redis that stopped answering is noticed
 * (and said) even when no request asks it anything.
 */
static void on_retry(uv_timer_t *t)
{
    struct st_redis *r = t->data;
    if (r->state == ST_CONNECTING) {
        /* A SUBSCRIBE that Redis refused gets no callback in hiredis 0.14: do not wait on it. */
        take_down(r, "no answer to the handshake in time");
        return;
    }
    if (r->state != ST_UP) {
        start_connect(r);
        return;
    }
    if (!r->head && !r->channel) {
        const char *argv[] = {"PING"};
        send_command(r, r->timeout_ms, on_ping_reply, NULL, 1, argv, NULL);
    }
    uv_timer_start(&r->retry, on_retry, ST_REDIS_PING_MS, 0);
}

static void set_down(struct st_redis *r, const char *why)
{
    if (r->state == ST_CLOSED)
        return;
    bool was_up = r->state == ST_UP;
    r->state = ST_DOWN;
    r->fails = 0;
    if (!r->said_down) {
        r->said_down = true;
        r->down_at = uv_now(r->loop);
        if (r->was_up)
            st_log(ST_LOG_WARN, r->name, NULL, "down: %s; serving without it, reconnecting", why);
        else
            st_log(ST_LOG_WARN, r->name, NULL, "cannot connect: %s; serving without it, retrying",
                   why);
    }
    uv_timer_start(&r->retry, on_retry, backoff_ms(r), 0);
    if (was_up && r->on_state)
        r->on_state(r, false, r->arg);
}

static void set_up(struct st_redis *r)
{
    r->state = ST_UP;
    r->fails = 0;
    r->backoff_n = 0;
    if (r->said_down && r->was_up)
        st_log(ST_LOG_INFO, r->name, NULL, "back up after %.1f s",
               (double)(uv_now(r->loop) - r->down_at) / 1000.0);
    else if (r->said_down)
        st_log(ST_LOG_INFO, r->name, NULL, "connected after %.1f s",
               (double)(uv_now(r->loop) - r->down_at) / 1000.0);
    r->said_down = false;
    r->was_up = true;
    if (!r->channel)
        uv_timer_start(&r->retry, on_retry, ST_REDIS_PING_MS, 0);
    else
        uv_timer_stop(&r->retry);
    if (r->on_state)
        r->on_state(r, true, r->arg);
}

/* Close the connection (its pending callbacks get NULL now) and go down. */
static void take_down(struct st_redis *r, const char *why)
{
    redisAsyncContext *ac = r->ac;
    r->ac = NULL;
    set_down(r, why); /* first: callbacks run below must see a connection that is not up */
    if (ac)
        redisAsyncFree(ac);
}

/* --- replies --- */

static void on_deadline(uv_timer_t *t)
{
    struct st_redis *r = t->data;
    /*
     * Timers run before the loop reads its sockets: after a long loop
     * iteration, answers that came in time may be waiting unread. Read them
     * first; only what is still unanswered is late.
     */
    if (r->ac && (r->ac->c.flags & REDIS_CONNECTED))
        redisAsyncHandleRead(r->ac);
    uint64_t now = uv_now(r->loop);
    while (r->head && r->head->deadline <= now) {
        struct pending *p = r->head;
        fifo_unlink(r, p);
        r->fails++;
        p->cb(r, NULL, p->arg); /* the record waits for hiredis to hand it back */
    }
    /*
     * Down only when Redis is silent, not merely slow: late answers still
     * coming mean it is alive and busy, and a reconnect would only add to
     * its load (each command keeps its own deadline either way).
     */
    uint64_t silent = r->timeout_ms * 4 > ST_REDIS_SILENT_MIN_MS ? r->timeout_ms * 4
                                                                 : ST_REDIS_SILENT_MIN_MS;
    if (r->fails >= ST_REDIS_MAX_FAILS && r->ac && now - r->heard_at >= silent)
        take_down(r, "it stopped answering in time");
    arm_deadline(r);
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    struct pending *p = privdata;
    struct st_redis *r = p->r;
    if (reply)
        r->heard_at = uv_now(r->loop);
    if (p->linked) {
        fifo_unlink(r, p);
        if (reply)
            r->fails = 0;
        p->cb(r, reply, p->arg);
        arm_deadline(r);
    }
    free(p);
}

static int send_command(struct st_redis *r, uint64_t timeout, st_redis_reply_cb cb, void *arg,
                        int argc, const char **argv, const size_t *lens)
{
    struct pending *p = st_xcalloc(1, sizeof(*p));
    p->r = r;
    p->cb = cb;
    p->arg = arg;
    p->deadline = uv_now(r->loop) + timeout;
    fifo_push(r, p);
    if (redisAsyncCommandArgv(r->ac, on_reply, p, argc, argv, lens) != REDIS_OK) {
        fifo_unlink(r, p);
        free(p);
        return -EAGAIN;
    }
    if (r->head == p)
        arm_deadline(r);
    return 0;
}

int st_redis_command(struct st_redis *r, st_redis_reply_cb cb, void *arg, int argc,
                     const char **argv, const size_t *lens)
{
    if (r->state != ST_UP || !r->ac || r->channel)
        return -EAGAIN;
    return send_command(r, r->timeout_ms, cb, arg, argc, argv, lens);
}

/* --- subscriber --- */

static void on_sub_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    struct st_redis *r = privdata;
    const redisReply *rp = reply;
    if (!rp || r->state == ST_CLOSED)
        return;
    if (rp->type != REDIS_REPLY_ARRAY || rp->elements < 3 ||
        rp->element[0]->type != REDIS_REPLY_STRING) {
        return;
    }
    const char *kind = rp->element[0]->str;
    if (strcmp(kind, "subscribe") == 0) {
        if (r->state == ST_CONNECTING)
            set_up(r);
    } else if (strcmp(kind, "message") == 0 && rp->element[2]->type == REDIS_REPLY_STRING) {
        r->on_message(r, rp->element[2]->str, rp->element[2]->len, r->msg_arg);
    }
}

void st_redis_subscribe(struct st_redis *r, const char *channel, st_redis_message_cb on_message,
                        void *arg)
{
    free(r->channel);
    r->channel = st_xstrdup(channel);
    r->on_message = on_message;
    r->msg_arg = arg;
}

/* --- connecting --- */

static bool reply_ok(const redisReply *rp)
{
    return rp && rp->type != REDIS_REPLY_ERROR;
}

static void on_handshake(struct st_redis *r, const redisReply *reply, void *arg)
{
    bool last = arg != NULL;
    if (r->state != ST_CONNECTING)
        return;
    if (!reply_ok(reply)) {
        if (r->ac)
            take_down(r, reply ? reply->str : "no answer to the handshake in time");
        return;
    }
    if (!last)
        return;
    if (!r->channel) {
        set_up(r);
        return;
    }
    const char *argv[] = {"SUBSCRIBE", r->channel};
    if (redisAsyncCommandArgv(r->ac, on_sub_reply, r, 2, argv, NULL) != REDIS_OK)
        take_down(r, "cannot subscribe");
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct st_redis *r = ac->data;
    if (status == REDIS_OK || r->ac != ac)
        return;
    r->ac = NULL; /* hiredis frees a context that failed to connect */
    set_down(r, ac->errstr[0] ? ac->errstr : "connect failed");
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    (void)status;
    struct st_redis *r = ac->data;
    if (r->ac != ac)
        return; /* we closed it ourselves */
    r->ac = NULL;
    set_down(r, ac->errstr[0] ? ac->errstr : "the connection closed");
}

/* AUTH, SELECT and PING, pipelined behind the connect; the last reply says "up". */
static void send_handshake(struct st_redis *r)
{
    uint64_t t = r->timeout_ms > 250 ? r->timeout_ms : 250;
    char db[16];
    snprintf(db, sizeof(db), "%d", r->db);
    const char *auth[] = {"AUTH", r->password};
    const char *select[] = {"SELECT", db};
    const char *ping[] = {"PING"};
    int rc = 0;
    if (r->password)
        rc |= send_command(r, t, on_handshake, NULL, 2, auth, NULL);
    if (r->db && !r->channel)
        rc |= send_command(r, t, on_handshake, NULL, 2, select, NULL);
    rc |= send_command(r, t, on_handshake, r, 1, ping, NULL);
    if (rc)
        take_down(r, "cannot send the handshake");
}

static void start_connect(struct st_redis *r)
{
    if (r->state == ST_CLOSED)
        return;
    redisAsyncContext *ac =
        r->unix_path ? redisAsyncConnectUnix(r->unix_path) : redisAsyncConnect(r->host, r->port);
    if (!ac) {
        set_down(r, "out of memory");
        return;
    }
    if (ac->err) {
        char why[128];
        snprintf(why, sizeof(why), "%s", ac->errstr);
        redisAsyncFree(ac);
        set_down(r, why);
        return;
    }
    ac->data = r;
    if (redisLibuvAttach(ac, r->loop) != REDIS_OK) {
        redisAsyncFree(ac);
        set_down(r, "cannot watch the socket");
        return;
    }
    /* A peer gone without a word (half-open TCP) ends the connection instead of silence. */
    if (!r->unix_path)
        redisEnableKeepAlive(&ac->c);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    r->ac = ac;
    r->state = ST_CONNECTING;
    uint64_t hs = r->timeout_ms > 250 ? r->timeout_ms : 250;
    uv_timer_start(&r->retry, on_retry, 4 * hs, 0); /* the whole handshake, SUBSCRIBE included */
    send_handshake(r);
}

/* --- life --- */

static char *dup_or_null(const char *s)
{
    return s ? st_xstrdup(s) : NULL;
}

struct st_redis *st_redis_create(uv_loop_t *loop, const struct st_redis_opts *o)
{
    struct st_redis *r = st_xcalloc(1, sizeof(*r));
    r->loop = loop;
    r->name = st_xstrdup(o->name ? o->name : "redis");
    r->host = dup_or_null(o->host);
    r->unix_path = dup_or_null(o->unix_path);
    r->password = dup_or_null(o->password);
    r->port = o->port;
    r->db = o->db;
    r->timeout_ms = o->timeout_ms ? o->timeout_ms : 1;
    r->on_state = o->on_state;
    r->arg = o->arg;
    r->rng[0] = o->seed | 1;
    r->rng[1] = (uint64_t)(uintptr_t)r | 2;
    uv_timer_init(loop, &r->retry);
    uv_timer_init(loop, &r->deadline);
    r->retry.data = r->deadline.data = r;
    r->open_handles = 2;
    r->state = ST_DOWN;
    /* Started from the loop, so a subscriber set right after create is in place. */
    uv_timer_start(&r->retry, on_retry, 0, 0);
    return r;
}

static void on_handle_closed(uv_handle_t *h)
{
    struct st_redis *r = h->data;
    if (--r->open_handles)
        return;
    free(r->name);
    free(r->host);
    free(r->unix_path);
    free(r->password);
    free(r->channel);
    free(r);
}

void st_redis_destroy(struct st_redis *r)
{
    if (!r)
        return;
    r->state = ST_CLOSED;
    redisAsyncContext *ac = r->ac;
    r->ac = NULL;
    /* Commands already timed out are freed by hiredis; the rest get NULL from it. */
    if (ac)
        redisAsyncFree(ac);
    while (r->head) {
        struct pending *p = r->head;
        fifo_unlink(r, p);
        p->cb(r, NULL, p->arg);
    }
    uv_close((uv_handle_t *)&r->retry, on_handle_closed);
    uv_close((uv_handle_t *)&r->deadline, on_handle_closed);
}

bool st_redis_up(const struct st_redis *r)
{
    return r->state == ST_UP;
}

const char *st_redis_name(const struct st_redis *r)
{
    return r->name;
}
