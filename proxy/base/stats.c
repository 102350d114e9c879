/*
 * stats.c - summing and rendering the counters of ST_STATS.
 */
#include "base/stats.h"

#include <string.h>

struct stat_desc {
    const char *group;
    const char *key;
    const char *prom_name;
    const char *prom_labels;
    const char *prom_type;
    const char *help;
};

static const struct stat_desc descs[ST_STAT__COUNT] = {
#define ST_STAT_DESC(id, g, k, pn, pl, pt, h) [ST_STAT_##id] = {g, k, pn, pl, pt, h},
    ST_STATS(ST_STAT_DESC)
#undef ST_STAT_DESC
};

void st_stats_count_status(struct st_stats *s, int status)
{
    if (status >= 100 && status < 600)
        st_stat_add(s, (enum st_stat_id)(ST_STAT_RESP_1XX + status / 100 - 1), 1);
}

void st_stats_sum(struct st_stats *const *blocks, size_t n, uint64_t out[ST_STAT__COUNT])
{
    memset(out, 0, sizeof(uint64_t) * ST_STAT__COUNT);
    for (size_t b = 0; b < n; b++)
        for (int i = 0; i < ST_STAT__COUNT; i++)
            out[i] += atomic_load_explicit(&blocks[b]->v[i], memory_order_relaxed);
}

/*
 * Members of one group are contiguous in ST_STATS, so each group opens an
 * object when it starts and closes it when the next begins.
 */
void st_stats_render_json(struct st_sb *sb, const uint64_t v[ST_STAT__COUNT],
                          st_stats_group_cb extra, void *arg)
{
    const char *open_group = NULL;
    int first = 1;
    for (int i = 0; i < ST_STAT__COUNT; i++) {
        const struct stat_desc *d = &descs[i];
        if (open_group && strcmp(open_group, d->group) != 0) {
            if (extra)
                extra(sb, open_group, v, arg);
            st_sb_adds(sb, "}");
            open_group = NULL;
        }
        if (!first && (!d->group[0] || !open_group))
            st_sb_adds(sb, ",");
        if (d->group[0] && !open_group) {
            st_sb_addf(sb, "\"%s\":{", d->group);
            open_group = d->group;
        } else if (open_group) {
            st_sb_adds(sb, ",");
        }
        st_sb_addf(sb, "\"%s\":%llu", d->key, (unsigned long long)v[i]);
        first = 0;
    }
    if (open_group) {
        if (extra)
            extra(sb, open_group, v, arg);
        st_sb_adds(sb, "}");
    }
}

uint64_t st_latency_bound_us(unsigned i)
{
    /* 4 buckets per power of two from 100 us: 100, 118, 141, 168, 200, ... ~ 88 s */
    static const unsigned quarter[4] = {1000, 1189, 1414, 1682};
    return ((uint64_t)100 << (i / 4)) * quarter[i % 4] / 1000;
}

void st_stats_latency(struct st_stats *s, unsigned slot, uint64_t us)
{
    if (slot >= ST_MAX_UPSTREAM_SLOTS)
        return;
    unsigned i = 0;
    while (i < ST_LAT_BUCKETS - 1 && us >= st_latency_bound_us(i))
        i++;
    st_stat_bump(&s->latency[slot][i], 1);
    st_stat_bump(&s->latency_sum_us[slot], us);
}

uint64_t st_latency_quantile_us(const uint64_t buckets[ST_LAT_BUCKETS], double q)
{
    uint64_t total = 0;
    for (unsigned i = 0; i < ST_LAT_BUCKETS; i++)
        total += buckets[i];
    if (total == 0)
        return 0;
    uint64_t want = (uint64_t)(q * (double)total + 0.5), seen = 0;
    if (want == 0)
        want = 1;
    for (unsigned i = 0; i < ST_LAT_BUCKETS; i++) {
        seen += buckets[i];
        if (seen >= want)
            return st_latency_bound_us(i);
    }
    return st_latency_bound_us(ST_LAT_BUCKETS - 1);
}

void st_stats_render_prometheus(struct st_sb *sb, const uint64_t v[ST_STAT__COUNT])
{
    const char *last_name = "";
    for (int i = 0; i < ST_STAT__COUNT; i++) {
        const struct stat_desc *d = &descs[i];
        if (strcmp(last_name, d->prom_name) != 0) {
            st_sb_addf(sb, "# HELP %s %s\n# TYPE %s %s\n", d->prom_name, d->help, d->prom_name,
                       d->prom_type);
            last_name = d->prom_name;
        }
        size_t kl = strlen(d->key), nl = strlen(d->prom_name);
        if (kl > 3 && nl > 8 && strcmp(d->key + kl - 3, "_ms") == 0 &&
            strcmp(d->prom_name + nl - 8, "_seconds") == 0) {
            /* kept in milliseconds, exposed in Prometheus's base unit */
            st_sb_addf(sb, "%s %.3f\n", d->prom_name, (double)v[i] / 1000.0);
        } else if (d->prom_labels[0]) {
            st_sb_addf(sb, "%s{%s} %llu\n", d->prom_name, d->prom_labels,
                       (unsigned long long)v[i]);
        } else {
            st_sb_addf(sb, "%s %llu\n", d->prom_name, (unsigned long long)v[i]);
        }
    }
}
