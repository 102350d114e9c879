/*
 * breaker.c - closed / open / half-open over a bucketed rolling window.
 */
#include "origin/breaker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/log.h"

struct st_breaker *st_breaker_create(const struct st_upstream_cfg *cfg)
{
    if (!cfg->breaker.enabled)
        return NULL;
    struct st_breaker *b = st_xcalloc(1, sizeof(*b));
    uv_mutex_init(&b->lock);
    b->cfg = cfg;
    b->bucket_ms = cfg->breaker.window_ms / ST_BREAKER_BUCKETS;
    if (b->bucket_ms == 0)
        b->bucket_ms = 1;
    return b;
}

void st_breaker_destroy(struct st_breaker *b)
{
    if (!b)
        return;
    uv_mutex_destroy(&b->lock);
    free(b);
}

const char *st_breaker_state_name(enum st_breaker_state s)
{
    return s == ST_BREAKER_OPEN ? "open" : s == ST_BREAKER_HALF_OPEN ? "half-open" : "closed";
}

/* Move the window on to now: buckets that ended are emptied. */
static void roll(struct st_breaker *b, uint64_t now)
{
    if (b->bucket_at == 0)
        b->bucket_at = now;
    for (unsigned n = 0; now - b->bucket_at >= b->bucket_ms && n < ST_BREAKER_BUCKETS; n++) {
        b->cur = (b->cur + 1) % ST_BREAKER_BUCKETS;
        b->requests[b->cur] = b->errors[b->cur] = 0;
        b->bucket_at += b->bucket_ms;
    }
    if (now - b->bucket_at >= b->bucket_ms) /* idle longer than the window */
        b->bucket_at = now;
}

static void clear(struct st_breaker *b)
{
    memset(b->requests, 0, sizeof(b->requests));
    memset(b->errors, 0, sizeof(b->errors));
}

static void open_now(struct st_breaker *b, uint64_t now, const char *why)
{
    b->state = ST_BREAKER_OPEN;
    b->open_until = (int64_t)(now + b->cfg->breaker.open_for_ms);
    b->opens++;
    clear(b);
    st_log(ST_LOG_WARN, "breaker", NULL, "upstream %s: open for %llu ms (%s)", b->cfg->name,
           (unsigned long long)b->cfg->breaker.open_for_ms, why);
}

bool st_breaker_admit(struct st_breaker *b, uint64_t now, unsigned *retry_after_s)
{
    bool ok = true;
    uv_mutex_lock(&b->lock);
    if (b->state == ST_BREAKER_OPEN && (int64_t)now >= b->open_until) {
        b->state = ST_BREAKER_HALF_OPEN;
        b->probes_out = b->probes_ok = 0;
        st_log(ST_LOG_INFO, "breaker", NULL, "upstream %s: half-open, %u probe(s)", b->cfg->name,
               b->cfg->breaker.probes);
    }
    if (b->state == ST_BREAKER_OPEN) {
        uint64_t left = (uint64_t)(b->open_until - (int64_t)now);
        *retry_after_s = (unsigned)((left + 999) / 1000);
        ok = false;
    } else if (b->state == ST_BREAKER_HALF_OPEN) {
        if (b->probes_out < b->cfg->breaker.probes)
            b->probes_out++;
        else {
            *retry_after_s = 1;
            ok = false;
        }
    }
    uv_mutex_unlock(&b->lock);
    return ok;
}

void st_breaker_record(struct st_breaker *b, uint64_t now, bool ok)
{
    uv_mutex_lock(&b->lock);
    if (b->state == ST_BREAKER_HALF_OPEN) {
        if (!ok) {
            open_now(b, now, "a probe failed");
        } else if (++b->probes_ok >= b->cfg->breaker.probes) {
            b->state = ST_BREAKER_CLOSED;
            clear(b);
            st_log(ST_LOG_INFO, "breaker", NULL, "upstream %s: closed (%u probe(s) succeeded)",
                   b->cfg->name, b->probes_ok);
        }
    } else if (b->state == ST_BREAKER_CLOSED) {
        roll(b, now);
        b->requests[b->cur]++;
        b->errors[b->cur] += !ok;
        uint64_t req = 0, err = 0;
        for (unsigned i = 0; i < ST_BREAKER_BUCKETS; i++) {
            req += b->requests[i];
            err += b->errors[i];
        }
        if (!ok && req >= b->cfg->breaker.min_requests &&
            err * 100 >= req * b->cfg->breaker.error_ratio) {
            char why[96];
            snprintf(why, sizeof(why), "%llu of %llu requests failed",
                     (unsigned long long)err, (unsigned long long)req);
            open_now(b, now, why);
        }
    }
    /* OPEN: a request admitted before it opened; its outcome changes nothing. */
    uv_mutex_unlock(&b->lock);
}

void st_breaker_forget(struct st_breaker *b)
{
    uv_mutex_lock(&b->lock);
    if (b->state == ST_BREAKER_HALF_OPEN && b->probes_out > b->probes_ok)
        b->probes_out--; /* its slot goes to the next request */
    uv_mutex_unlock(&b->lock);
}

enum st_breaker_state st_breaker_state(struct st_breaker *b, uint64_t *opens)
{
    uv_mutex_lock(&b->lock);
    enum st_breaker_state s = b->state;
    *opens = b->opens;
    uv_mutex_unlock(&b->lock);
    return s;
}
