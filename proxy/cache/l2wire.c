/*
 * l2wire.c - key names, bus messages, stream ids and replies of the Redis
 * tier (see l2wire.h for the layout).
 */
#include "cache/l2wire.h"

#include <string.h>

#include "cache/key.h"
#include "cache/store.h"

static void add_hex(struct st_sb *sb, uint64_t v)
{
    static const char digits[] = "0123456789abcdef";
    char b[16];
    for (int i = 15; i >= 0; i--, v >>= 4)
        b[i] = digits[v & 15];
    st_sb_add(sb, b, 16);
}

void st_l2_key(struct st_sb *sb, const char *prefix, uint64_t hash, enum st_l2_keykind kind)
{
    st_sb_adds(sb, prefix);
    st_sb_add(sb, "{", 1);
    add_hex(sb, hash);
    st_sb_adds(sb, kind == ST_L2_VALUE ? "}:v" : kind == ST_L2_LOCK ? "}:l" : "}:w");
}

void st_l2_set_key(struct st_sb *sb, const char *prefix, char kind, const char *s, size_t len)
{
    st_sb_adds(sb, prefix);
    st_sb_add(sb, "{", 1);
    st_sb_add(sb, &kind, 1);
    add_hex(sb, st_store_hash(s, len));
    st_sb_add(sb, "}", 1);
}

size_t st_l2_key_path_len(const char *key, size_t len)
{
    size_t i = 0;
    while (i < len && key[i] != '?' && key[i] != ST_KEY_SEP)
        i++;
    return i;
}

size_t st_l2_path_prefixes(const char *path, size_t len, size_t out[ST_L2_MAX_DEPTH])
{
    size_t n = 0;
    for (size_t i = 0; i < len && n < ST_L2_MAX_DEPTH; i++)
        if (path[i] == '/')
            out[n++] = i + 1;
    return n;
}

static bool parse_u64(const char *s, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    if (len == 0 || len > 19)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return true;
}

bool st_l2_stream_id_parse(const char *s, size_t len, struct st_l2_stream_id *out)
{
    const char *dash = memchr(s, '-', len);
    if (!dash)
        return false;
    return parse_u64(s, (size_t)(dash - s), &out->ms) &&
           parse_u64(dash + 1, len - (size_t)(dash - s) - 1, &out->seq);
}

int st_l2_stream_id_cmp(struct st_l2_stream_id a, struct st_l2_stream_id b)
{
    if (a.ms != b.ms)
        return a.ms < b.ms ? -1 : 1;
    if (a.seq != b.seq)
        return a.seq < b.seq ? -1 : 1;
    return 0;
}

/* The next space-separated field of [*p, end): false when there is no space after it. */
static bool field(const char **p, const char *end, const char **f, size_t *flen)
{
    const char *sp = memchr(*p, ' ', (size_t)(end - *p));
    if (!sp)
        return false;
    *f = *p;
    *flen = (size_t)(sp - *p);
    *p = sp + 1;
    return true;
}

static bool is_instance(const char *s, size_t len)
{
    if (len != ST_L2_INSTANCE_LEN)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static bool kind_of(const char *s, size_t len, enum st_inval_kind *out)
{
    if (len != 1)
        return false;
    switch (s[0]) {
    case 'k':
        *out = ST_INVAL_URI;
        return true;
    case 'p':
        *out = ST_INVAL_PREFIX;
        return true;
    case 't':
        *out = ST_INVAL_TAG;
        return true;
    case 'e':
        *out = ST_INVAL_KEY;
        return true;
    }
    return false;
}

static char kind_char(enum st_inval_kind k)
{
    switch (k) {
    case ST_INVAL_URI:
        return 'k';
    case ST_INVAL_PREFIX:
        return 'p';
    case ST_INVAL_TAG:
        return 't';
    case ST_INVAL_KEY:
        return 'e';
    }
    return '?';
}

bool st_l2_inval_body_parse(const char *s, size_t len, struct st_l2_msg *out)
{
    const char *p = s, *end = s + len, *f;
    size_t flen;
    if (!field(&p, end, &f, &flen) || !is_instance(f, flen))
        return false;
    out->instance = f;
    if (!field(&p, end, &f, &flen) || !kind_of(f, flen, &out->kind))
        return false;
    out->value = p;
    out->value_len = (size_t)(end - p);
    return true;
}

static bool parse_hash(const char *s, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    if (len != 16)
        return false;
    for (size_t i = 0; i < 16; i++) {
        char c = s[i];
        unsigned d = c >= '0' && c <= '9' ? (unsigned)(c - '0')
                     : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                                            : 16;
        if (d == 16)
            return false;
        v = v << 4 | d;
    }
    *out = v;
    return true;
}

bool st_l2_msg_parse(const char *msg, size_t len, struct st_l2_msg *out)
{
    const char *p = msg, *end = msg + len, *f;
    size_t flen;
    memset(out, 0, sizeof(*out));
    if (!field(&p, end, &f, &flen) || flen != 1)
        return false;
    out->type = f[0];
    if (out->type == 'I')
        return field(&p, end, &f, &flen) && st_l2_stream_id_parse(f, flen, &out->id) &&
               st_l2_inval_body_parse(p, (size_t)(end - p), out);
    if (out->type != 'F' || !field(&p, end, &f, &flen) || !is_instance(f, flen))
        return false;
    out->instance = f;
    if (!field(&p, end, &f, &flen) || !parse_hash(f, flen, &out->hash))
        return false;
    out->value = p;
    out->value_len = (size_t)(end - p);
    return out->value_len > 0;
}

void st_l2_inval_body(struct st_sb *sb, const char *instance, enum st_inval_kind kind,
                      const char *value, size_t len)
{
    char k = kind_char(kind);
    st_sb_add(sb, instance, ST_L2_INSTANCE_LEN);
    st_sb_add(sb, " ", 1);
    st_sb_add(sb, &k, 1);
    st_sb_add(sb, " ", 1);
    st_sb_add(sb, value, len);
}

void st_l2_notice(struct st_sb *sb, const char *instance, uint64_t hash, const char *key,
                  size_t len)
{
    st_sb_add(sb, "F ", 2);
    st_sb_add(sb, instance, ST_L2_INSTANCE_LEN);
    st_sb_add(sb, " ", 1);
    add_hex(sb, hash);
    st_sb_add(sb, " ", 1);
    st_sb_add(sb, key, len);
}

enum st_l2_get st_l2_reply_get(const redisReply *r, const char **p, size_t *len)
{
    if (!r)
        return ST_L2_FAILED;
    if (r->type == REDIS_REPLY_NIL)
        return ST_L2_NONE;
    if (r->type != REDIS_REPLY_STRING)
        return ST_L2_FAILED;
    *p = r->str;
    *len = r->len;
    return ST_L2_GOT;
}

enum st_l2_lock st_l2_reply_lock(const redisReply *r)
{
    if (!r)
        return ST_L2_LOCK_FAILED;
    if (r->type == REDIS_REPLY_NIL)
        return ST_L2_LOCK_HELD;
    if (r->type == REDIS_REPLY_STATUS && r->len == 2 && memcmp(r->str, "OK", 2) == 0)
        return ST_L2_LOCK_WON;
    return ST_L2_LOCK_FAILED;
}

bool st_l2_reply_stream_entry(const redisReply *e, struct st_l2_stream_id *id, const char **m,
                              size_t *m_len)
{
    if (!e || e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[0]->type != REDIS_REPLY_STRING || e->element[1]->type != REDIS_REPLY_ARRAY ||
        !st_l2_stream_id_parse(e->element[0]->str, e->element[0]->len, id))
        return false;
    const redisReply *kv = e->element[1];
    for (size_t i = 0; i + 1 < kv->elements; i += 2) {
        const redisReply *k = kv->element[i], *v = kv->element[i + 1];
        if (k->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING && k->len == 1 &&
            k->str[0] == 'm') {
            *m = v->str;
            *m_len = v->len;
            return true;
        }
    }
    return false;
}

bool st_l2_reply_run_id(const redisReply *r, char out[41])
{
    if (!r || r->type != REDIS_REPLY_STRING)
        return false;
    const char *p = memmem(r->str, r->len, "run_id:", 7);
    if (!p || (size_t)(r->str + r->len - (p + 7)) < 40)
        return false;
    memcpy(out, p + 7, 40);
    out[40] = '\0';
    return true;
}

const redisReply *st_l2_reply_field(const redisReply *r, const char *name)
{
    if (!r || r->type != REDIS_REPLY_ARRAY)
        return NULL;
    size_t n = strlen(name);
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *k = r->element[i];
        if ((k->type == REDIS_REPLY_STRING || k->type == REDIS_REPLY_STATUS) && k->len == n &&
            memcmp(k->str, name, n) == 0)
            return r->element[i + 1];
    }
    return NULL;
}
