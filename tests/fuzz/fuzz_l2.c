/*
 * fuzz_l2.c - libFuzzer target for what strata reads back from Redis: an
 * entry's wire form (as it is, and with a correct checksum appended, so the
 * decoder's field checks are reached, not only its checksum), bus messages,
 * stream bodies and ids. A decoded entry must encode and decode again to
 * the same bytes. Must never crash, leak or read out of bounds.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "cache/entry.h"
#include "cache/l2wire.h"

static void round_trip(const char *p, size_t len)
{
    struct st_entry *e;
    if (st_entry_decode(p, len, &e) < 0)
        return;
    struct st_sb a, b;
    st_sb_init(&a, len + 16);
    st_sb_init(&b, len + 16);
    st_entry_encode(e, &a);
    struct st_entry *d;
    ST_CHECK(st_entry_decode(a.p, a.len, &d) == 0);
    st_entry_encode(d, &b);
    ST_CHECK(a.len == b.len && memcmp(a.p, b.p, a.len) == 0);
    ST_CHECK(st_entry_key_len(d) == st_entry_key_len(e));
    ST_CHECK(st_entry_body_len(d) == st_entry_body_len(e));
    st_entry_unref(d);
    st_entry_unref(e);
    st_sb_finish(&a);
    st_sb_finish(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    round_trip(p, size);
    /* The same bytes with a checksum that matches them. */
    char *q = st_xmalloc(size + 8);
    memcpy(q, p, size);
    uint64_t sum = XXH3_64bits(q, size);
    for (int i = 0; i < 8; i++)
        q[size + i] = (char)(sum >> (8 * i));
    round_trip(q, size + 8);
    free(q);

    struct st_l2_msg m;
    if (st_l2_msg_parse(p, size, &m))
        ST_CHECK(m.value >= p && m.value + m.value_len <= p + size);
    if (st_l2_inval_body_parse(p, size, &m))
        ST_CHECK(m.value >= p && m.value + m.value_len <= p + size);
    struct st_l2_stream_id id;
    st_l2_stream_id_parse(p, size, &id);
    size_t pre[ST_L2_MAX_DEPTH];
    size_t n = st_l2_path_prefixes(p, size, pre);
    for (size_t i = 0; i < n; i++)
        ST_CHECK(pre[i] <= size && p[pre[i] - 1] == '/');
    return 0;
}
