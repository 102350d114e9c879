/*
 * ratelimit.c - GCRA over a bounded, sharded, set-associative table.
 */
#include "core/ratelimit.h"

#include <stdlib.h>
#include <uv.h>

#include "base/alloc.h"

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
    uint64_t window = interval_us * burst;
    struct shard *sh = &rl->shards[hash % ST_RL_SHARDS];
    uv_mutex_lock(&sh->lock);
    struct way *w = find(sh->ways[(hash / ST_RL_SHARDS) % ST_RL_SETS], hash);
    w->used_us = now_us;
    uint64_t tat = w->tat_us > now_us ? w->tat_us : now_us;
    uint64_t next = tat + interval_us;
    out->limit = burst;
    if (next - now_us > window) { /* over: the TAT stays */
        out->allowed = false;
        out->remaining = 0;
        out->reset_s = ceil_s(tat - now_us);
        uint64_t wait = next - now_us - window;
        out->retry_after_s = wait ? ceil_s(wait) : 1;
    } else {
        w->tat_us = next;
        out->allowed = true;
        out->remaining = (window - (next - now_us)) / interval_us;
        out->reset_s = ceil_s(next - now_us);
        out->retry_after_s = 0;
    }
    uv_mutex_unlock(&sh->lock);
}
