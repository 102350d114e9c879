/*
 * servers.c - an upstream's address set: round-robin, passive and active health.
 */
#include "origin/servers.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/log.h"
#include "base/rand.h"

struct server {
    uint32_t id;
    size_t from;
    struct sockaddr_storage sa;
    socklen_t len;
    unsigned fails;      /* failed requests in a row */
    unsigned downs;      /* times taken out since the last success (0: in good standing) */
    uint64_t down_until; /* passive: skipped before this */
    bool check_down;     /* active: out until enough checks pass */
    unsigned check_fails, check_passes;
};

struct st_servers {
    uv_mutex_t lock;
    _Atomic unsigned refs;
    _Atomic bool resolve_wish;
    _Atomic unsigned generation;
    const struct st_upstream_cfg *cfg;
    struct server *v; /* ordered by `from` */
    size_t n;
    uint64_t rr;
    uint32_t next_id;
    uint64_t rand[2];
};

static socklen_t sa_len(const struct sockaddr_storage *sa)
{
    return sa->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

static bool sa_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
    return x->sin6_port == y->sin6_port &&
           !memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr));
}

void st_servers_format(const struct sockaddr_storage *sa, char *buf, size_t cap)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (sa->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const void *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
        snprintf(buf, cap, "[%s]:%u", ip, ntohs(in6->sin6_port));
    } else {
        const struct sockaddr_in *in = (const void *)sa;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
        snprintf(buf, cap, "%s:%u", ip, ntohs(in->sin_port));
    }
}

const char *st_server_state_name(enum st_server_state st)
{
    return st == ST_SERVER_DOWN ? "down" : st == ST_SERVER_FAILING_CHECKS ? "failing-checks" : "up";
}

struct st_servers *st_servers_create(const struct st_upstream_cfg *cfg)
{
    struct st_servers *s = st_xcalloc(1, sizeof(*s));
    uv_mutex_init(&s->lock);
    atomic_init(&s->refs, 1);
    s->cfg = cfg;
    s->rand[0] = uv_hrtime() | 1;
    s->rand[1] = (uint64_t)(uintptr_t)s ^ 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < cfg->n_servers; i++)
        if (!cfg->servers[i].host)
            st_servers_set(s, i, &cfg->servers[i].sa, 1);
    return s;
}

void st_servers_ref(struct st_servers *s)
{
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

void st_servers_unref(struct st_servers *s)
{
    if (!s || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
        return;
    uv_mutex_destroy(&s->lock);
    free(s->v);
    free(s);
}

bool st_servers_set(struct st_servers *s, size_t from, const struct sockaddr_storage *addrs,
                    size_t n)
{
    uv_mutex_lock(&s->lock);
    size_t keep = 0;
    for (size_t i = 0; i < s->n; i++)
        keep += s->v[i].from != from;
    struct server *v = st_xcalloc(keep + n ? keep + n : 1, sizeof(*v));
    size_t k = 0;
    for (size_t i = 0; i < s->n && s->v[i].from < from; i++)
        v[k++] = s->v[i];
    size_t first = k, kept = 0; /* kept: new addresses that were there before */
    for (size_t j = 0; j < n; j++) {
        bool dup = false;
        for (size_t d = 0; d < j; d++)
            dup = dup || sa_equal(&addrs[d], &addrs[j]);
        if (dup)
            continue;
        struct server *nu = &v[k++];
        *nu = (struct server){.from = from, .sa = addrs[j], .len = sa_len(&addrs[j])};
        bool found = false;
        for (size_t i = 0; i < s->n && !found; i++) /* an address that stays keeps its state */
            if (s->v[i].from == from && sa_equal(&s->v[i].sa, &addrs[j])) {
                *nu = s->v[i];
                found = true;
            }
        if (found)
            kept++;
        else
            nu->id = ++s->next_id;
    }
    /* The same addresses as before (in any order): nothing changes, not even the generation. */
    bool changed = kept != k - first || kept != s->n - keep;
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i].from > from)
            v[k++] = s->v[i];
    if (changed) {
        free(s->v);
        s->v = v;
        s->n = k;
        atomic_fetch_add_explicit(&s->generation, 1, memory_order_release);
    } else {
        free(v);
    }
    uv_mutex_unlock(&s->lock);
    return changed;
}

unsigned st_servers_generation(struct st_servers *s)
{
    return atomic_load_explicit(&s->generation, memory_order_acquire);
}

bool st_servers_has(struct st_servers *s, uint32_t id)
{
    uv_mutex_lock(&s->lock);
    bool found = false;
    for (size_t i = 0; i < s->n && !found; i++)
        found = s->v[i].id == id;
    uv_mutex_unlock(&s->lock);
    return found;
}

static bool eligible(const struct server *v, uint64_t now)
{
    return !v->check_down && v->down_until <= now;
}

bool st_servers_pick(struct st_servers *s, uint64_t now, struct st_server_pick *out)
{
    uv_mutex_lock(&s->lock);
    size_t n = s->n;
    if (n == 0) {
        uv_mutex_unlock(&s->lock);
        return false;
    }
    const struct server *best = NULL;
    for (size_t k = 0; k < n && !best; k++) {
        const struct server *v = &s->v[s->rr++ % n];
        if (eligible(v, now))
            best = v;
    }
    /* Nothing is in (they went out together): the one whose backoff ends first. */
    if (!best) {
        for (size_t i = 0; i < n; i++)
            if (!s->v[i].check_down && (!best || s->v[i].down_until < best->down_until))
                best = &s->v[i];
    }
    if (!best)
        best = &s->v[s->rr++ % n];
    out->sa = best->sa;
    out->len = best->len;
    out->id = best->id;
    uv_mutex_unlock(&s->lock);
    return true;
}

static struct server *find(struct st_servers *s, uint32_t id)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i].id == id)
            return &s->v[i];
    return NULL;
}

/* Is some address other than v in now? */
static bool others_in(const struct st_servers *s, const struct server *v, uint64_t now)
{
    for (size_t i = 0; i < s->n; i++)
        if (&s->v[i] != v && eligible(&s->v[i], now))
            return true;
    return false;
}

/* "1.2.3.4:80", or "1.2.3.4:80 (api:80)" for an address of a host name. */
static void describe(const struct st_servers *s, const struct server *v, char *buf, size_t cap)
{
    char addr[64];
    st_servers_format(&v->sa, addr, sizeof(addr));
    const struct st_addr *from = &s->cfg->servers[v->from];
    if (from->host)
        snprintf(buf, cap, "%s (%s)", addr, from->text);
    else
        snprintf(buf, cap, "%s", addr);
}

static void take_out(struct st_servers *s, struct server *v, uint64_t now, const char *why)
{
    if (!others_in(s, v, now))
        return; /* never the last one */
    unsigned shift = v->downs < 5 ? v->downs : 5;
    uint64_t ms = (uint64_t)ST_SERVERS_BACKOFF_MS << shift;
    if (ms > ST_SERVERS_BACKOFF_MAX_MS)
        ms = ST_SERVERS_BACKOFF_MAX_MS;
    ms = ms * 4 / 5 + st_rand64(s->rand) % (ms * 2 / 5 + 1); /* +-20 % */
    v->downs++;
    v->fails = 0;
    v->down_until = now + ms;
    char who[384];
    describe(s, v, who, sizeof(who));
    st_log(ST_LOG_WARN, "upstream", NULL, "%s: server %s out for %llu ms: %s", s->cfg->name, who,
           (unsigned long long)ms, why);
}

static void log_back(const struct st_servers *s, const struct server *v, const char *how)
{
    char who[384];
    describe(s, v, who, sizeof(who));
    st_log(ST_LOG_INFO, "upstream", NULL, "%s: server %s back in: %s", s->cfg->name, who, how);
}

void st_servers_report(struct st_servers *s, uint32_t id, uint64_t now, enum st_server_outcome o)
{
    unsigned threshold = s->cfg->health.enabled ? s->cfg->health.fails : ST_SERVERS_FAILS;
    uv_mutex_lock(&s->lock);
    struct server *v = find(s, id);
    if (!v) {
        /* resolved away meanwhile */
    } else if (o == ST_SERVER_OK) {
        if (v->downs)
            log_back(s, v, "it answered");
        v->fails = 0;
        v->downs = 0;
        v->down_until = 0;
    } else if (v->down_until > now) {
        /* already out: requests that were under way when it went */
    } else if (o == ST_SERVER_UNREACHABLE) {
        take_out(s, v, now, "connect failed");
    } else if (++v->fails >= threshold || v->downs) {
        char why[64];
        snprintf(why, sizeof(why), "%u failed answers in a row", v->fails);
        take_out(s, v, now, v->downs ? "failed again after its backoff" : why);
    }
    uv_mutex_unlock(&s->lock);
}

void st_servers_checked(struct st_servers *s, uint32_t id, uint64_t now, bool pass)
{
    uv_mutex_lock(&s->lock);
    struct server *v = find(s, id);
    if (v && pass) {
        v->check_fails = 0;
        if (v->check_down && ++v->check_passes >= s->cfg->health.passes) {
            v->check_down = false;
            v->downs = 0;
            v->down_until = 0;
            v->fails = 0;
            log_back(s, v, "it passes its health checks");
        }
    } else if (v) {
        v->check_passes = 0;
        if (!v->check_down && ++v->check_fails >= s->cfg->health.fails &&
            others_in(s, v, now)) {
            v->check_down = true;
            char who[384];
            describe(s, v, who, sizeof(who));
            st_log(ST_LOG_WARN, "upstream", NULL, "%s: server %s out: %u health checks failed in a row",
                   s->cfg->name, who, v->check_fails);
        }
    }
    uv_mutex_unlock(&s->lock);
}

void st_servers_want_resolve(struct st_servers *s)
{
    atomic_store_explicit(&s->resolve_wish, true, memory_order_relaxed);
}

bool st_servers_take_resolve_wish(struct st_servers *s)
{
    return atomic_exchange_explicit(&s->resolve_wish, false, memory_order_relaxed);
}

size_t st_servers_list(struct st_servers *s, uint64_t now, struct st_server_info *out, size_t cap)
{
    uv_mutex_lock(&s->lock);
    size_t n = s->n;
    for (size_t i = 0; i < n && i < cap; i++) {
        const struct server *v = &s->v[i];
        struct st_server_info *o = &out[i];
        o->id = v->id;
        o->from = v->from;
        o->sa = v->sa;
        o->len = v->len;
        st_servers_format(&v->sa, o->addr, sizeof(o->addr));
        o->state = v->check_down ? ST_SERVER_FAILING_CHECKS
                   : v->down_until > now ? ST_SERVER_DOWN
                                         : ST_SERVER_UP;
        o->down_for_ms = v->down_until > now ? v->down_until - now : 0;
        o->fails = v->fails;
    }
    uv_mutex_unlock(&s->lock);
    return n;
}
