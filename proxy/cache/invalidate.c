/*
 * invalidate.c - local application of invalidations and the bus seam.
 */
#include "cache/invalidate.h"

#include <string.h>

#include "base/buf.h"
#include "cache/tier.h"
#include "cache/key.h"
#include "base/stats.h"

static size_t drop_prefix_with(struct st_cache_tier *t, const char *v, size_t len, char last)
{
    struct st_sb sb;
    st_sb_init(&sb, len + 2);
    st_sb_add(&sb, v, len);
    st_sb_add(&sb, &last, 1);
    size_t n = st_cache_tier_remove_prefix(t, sb.p, sb.len);
    st_sb_finish(&sb);
    return n;
}

size_t st_invalidate_apply(struct st_cache_tier *t, enum st_inval_kind kind, const char *v, size_t len)
{
    switch (kind) {
    case ST_INVAL_URI:
        /* "/p" drops "/p<SEP>host" and "/p?...<SEP>host"; "/p?q" drops "/p?q<SEP>host". */
        if (memchr(v, '?', len))
            return drop_prefix_with(t, v, len, ST_KEY_SEP);
        return drop_prefix_with(t, v, len, ST_KEY_SEP) + drop_prefix_with(t, v, len, '?');
    case ST_INVAL_PREFIX:
        return st_cache_tier_remove_prefix(t, v, len);
    case ST_INVAL_TAG:
        return st_cache_tier_remove_tag(t, v, len);
    case ST_INVAL_KEY:
        return st_cache_tier_remove_key(t, v, len);
    }
    return 0;
}

void st_invalidate_elsewhere(struct st_cache_tier *t, struct st_stats *stats,
                             enum st_inval_kind kind, const char *value, size_t len)
{
    int rc = st_cache_tier_invalidate_shared(t, kind, value, len);
    if (rc > 0)
        ST_STAT_INC(stats, INVAL_PUBLISHED);
    else if (rc < 0)
        ST_STAT_INC(stats, INVAL_UNPUBLISHED);
}

size_t st_invalidate(struct st_cache_tier *t, struct st_stats *stats, enum st_inval_kind kind,
                     const char *value, size_t len)
{
    size_t n = st_invalidate_apply(t, kind, value, len);
    ST_STAT_INC(stats, INVAL_LOCAL);
    st_stat_add(stats, ST_STAT_INVAL_ENTRIES, n);
    st_invalidate_elsewhere(t, stats, kind, value, len);
    return n;
}
