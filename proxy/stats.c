/*
 * stats.c - summing and rendering the counters of ST_STATS.
 */
#include "stats.h"

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
void st_stats_render_json(struct st_sb *sb, const uint64_t v[ST_STAT__COUNT])
{
    const char *open_group = NULL;
    int first = 1;
    for (int i = 0; i < ST_STAT__COUNT; i++) {
        const struct stat_desc *d = &descs[i];
        if (open_group && strcmp(open_group, d->group) != 0) {
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
    if (open_group)
        st_sb_adds(sb, "}");
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
        if (d->prom_labels[0])
            st_sb_addf(sb, "%s{%s} %llu\n", d->prom_name, d->prom_labels,
                       (unsigned long long)v[i]);
        else
            st_sb_addf(sb, "%s %llu\n", d->prom_name, (unsigned long long)v[i]);
    }
}
