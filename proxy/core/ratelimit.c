/*
 * ratelimit.c - GCRA over a bounded, sharded, set-associative table.
 */
#include "core/ratelimit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "base/alloc.h"
#include "redis/redis.h"

struct way {
    uint64_t hash; /* 0: empty (a key hashing to 0 is stored as 1) */
    uint64_t tat_us;
    uint64_t used_us;
};

struct shard {
    uv_mutex_t lock;
    struct way ways[ST_RL_SETS][ST_RL_WAYS];
};

struct st_ratelimit {
    struct shard shards[ST_RL_SHARDS];
};

struct st_ratelimit *st_ratelimit_create(void)
{
    struct st_ratelimit *rl = st_xcalloc(1, sizeof(*rl));
    for (int i = 0; i < ST_RL_SHARDS; i++)
        uv_mutex_init(&rl->shards[i].lock);
    return rl;
}

void st_ratelimit_destroy(struct st_ratelimit *rl)
{
    if (!rl)
        return;
    for (int i = 0; i < ST_RL_SHARDS; i++)
        uv_mutex_destroy(&rl->shards[i].lock);
    free(rl);
}

/* The way holding hash, or the one to give it (empty, else least recently used). */
static struct way *find(struct way *set, uint64_t hash)
{
    struct way *lru = &set[0];
    for (int i = 0; i < ST_RL_WAYS; i++) {
        if (set[i].hash == hash)
            return &set[i];
        if (set[i].hash == 0 || (lru->hash != 0 && set[i].used_us < lru->used_us))
            lru = &set[i];
    }
    lru->hash = hash;
    lru->tat_us = 0;
    return lru;
}

static uint64_t ceil_s(uint64_t us)
{
    return (us + 999999) / 1000000;
}

void st_ratelimit_take(struct st_ratelimit *rl, uint64_t key_hash, uint64_t interval_us,
                       uint64_t burst, uint64_t now_us, struct st_rl_verdict *out)
{
    uint64_t hash = key_hash ? key_hash : 1;
    if (interval_us == 0)
        interval_us = 1;
    if (burst == 0)
        burst = 1;
    struct shard *sh = &rl->shards[hash % ST_RL_SHARDS];
    uv_mutex_lock(&sh->lock);
    struct way *w = find(sh->ways[(hash / ST_RL_SHARDS) % ST_RL_SETS], hash);
    w->used_us = now_us;
    uint64_t tat = w->tat_us > now_us ? w->tat_us : now_us;
    bool allowed = tat + interval_us - now_us <= interval_us * burst;
    if (allowed)
        w->tat_us = tat + interval_us;
    uv_mutex_unlock(&sh->lock);
    st_ratelimit_verdict(allowed, (allowed ? tat + interval_us : tat) - now_us, interval_us,
                         burst, out);
}

void st_ratelimit_verdict(bool allowed, uint64_t ahead_us, uint64_t interval_us, uint64_t burst,
                          struct st_rl_verdict *out)
{
    if (interval_us == 0)
        interval_us = 1;
    if (burst == 0)
        burst = 1;
    uint64_t window = interval_us * burst;
    out->allowed = allowed;
    out->limit = burst;
    out->reset_s = ceil_s(ahead_us);
    if (allowed) {
        out->remaining = ahead_us < window ? (window - ahead_us) / interval_us : 0;
        out->retry_after_s = 0;
    } else {
        out->remaining = 0;
        uint64_t next = ahead_us + interval_us;
        uint64_t wait = next > window ? next - window : 0;
        out->retry_after_s = wait ? ceil_s(wait) : 1;
    }
}

/*
 * The same step in Redis, on its clock (TIME), so that every instance counts
 * into one TAT. Returns {allowed (1|0), microseconds the TAT is ahead of now
 * after the step}. The key expires once the bucket is full again.
 */
static const char fleet_script[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
    "local interval, burst = tonumber(ARGV[1]), tonumber(ARGV[2])\n"
    "local tat = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
    "if tat < now then tat = now end\n"
    "local nxt = tat + interval\n"
    "if nxt - now > interval * burst then return {0, string.format('%.0f', tat - now)} end\n"
    "redis.call('SET', KEYS[1], string.format('%.0f', nxt), 'PX',\n"
    "           math.floor((nxt - now) / 1000) + 1)\n"
    "return {1, string.format('%.0f', nxt - now)}\n";

struct fleet_call {
    uint64_t interval_us, burst;
    st_rl_fleet_cb cb;
    void *arg;
};

static void on_fleet_reply(struct st_redis *r, const redisReply *reply, void *arg)
{
    (void)r;
    struct fleet_call c = *(struct fleet_call *)arg;
    free(arg);
    struct st_rl_verdict v;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_INTEGER ||
        reply->element[1]->type != REDIS_REPLY_STRING) {
        c.cb(c.arg, NULL);
        return;
    }
    uint64_t ahead = strtoull(reply->element[1]->str, NULL, 10);
    st_ratelimit_verdict(reply->element[0]->integer == 1, ahead, c.interval_us, c.burst, &v);
    c.cb(c.arg, &v);
}

int st_ratelimit_take_fleet(struct st_redis *r, const char *prefix, uint64_t key_hash,
                            uint64_t interval_us, uint64_t burst, st_rl_fleet_cb cb, void *arg)
{
    if (!r || !st_redis_up(r))
        return -EAGAIN;
    char key[160], iv[24], b[24];
    snprintf(key, sizeof(key), "%srl:%016llx", prefix, (unsigned long long)key_hash);
    snprintf(iv, sizeof(iv), "%llu", (unsigned long long)(interval_us ? interval_us : 1));
    snprintf(b, sizeof(b), "%llu", (unsigned long long)(burst ? burst : 1));
    const char *argv[] = {"EVAL", fleet_script, "1", key, iv, b};
    struct fleet_call *c = st_xmalloc(sizeof(*c));
    *c = (struct fleet_call){.interval_us = interval_us, .burst = burst, .cb = cb, .arg = arg};
    int rc = st_redis_command(r, on_fleet_reply, c, 6, argv, NULL);
    if (rc < 0)
        free(c);
    return rc;
}
