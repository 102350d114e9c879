/*
 * fields.c - typed field callbacks for st_walk_map(): each parses one scalar
 * (after ${VAR} expansion) with the units of units.c and stores it at
 * obj + field->off, or reports "bad duration '10x' for ttl (...)" at the
 * value's position and leaves the field as it was (its default).
 */
#include "config/fields.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

void st_field_duration(struct st_walk *w, const yaml_node_t *val, void *obj,
                       const struct st_walk_field *f)
{
    char *s = st_walk_scalar(w, val, f->key);
    if (s && st_parse_duration(s, ST_FIELD_AT(obj, f, uint64_t)) < 0)
        st_walk_error(w, val, "bad duration '%s' for %s (expected e.g. 250ms, 10s, 3m, 1h)", s,
                      f->key);
    free(s);
}

void st_field_size(struct st_walk *w, const yaml_node_t *val, void *obj,
                   const struct st_walk_field *f)
{
    char *s = st_walk_scalar(w, val, f->key);
    if (s && st_parse_size(s, ST_FIELD_AT(obj, f, uint64_t)) < 0)
        st_walk_error(w, val, "bad size '%s' for %s (expected e.g. 512B, 32KiB, 256MiB, 1GiB)", s,
                      f->key);
    free(s);
}

void st_field_percent(struct st_walk *w, const yaml_node_t *val, void *obj,
                      const struct st_walk_field *f)
{
    char *s = st_walk_scalar(w, val, f->key);
    if (s && st_parse_percent(s, ST_FIELD_AT(obj, f, unsigned)) < 0)
        st_walk_error(w, val, "bad percent '%s' for %s (expected 0..100, e.g. 10%%)", s, f->key);
    free(s);
}

bool st_field_count(struct st_walk *w, const yaml_node_t *val, const char *key, uint64_t max,
                    uint64_t *out)
{
    char *s = st_walk_scalar(w, val, key);
    if (!s)
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    bool ok = s[0] >= '0' && s[0] <= '9' && !*end && errno == 0 && v <= max;
    if (ok)
        *out = v;
    else
        st_walk_error(w, val, "bad number '%s' for %s (expected a whole number 0..%llu)", s, key,
                      (unsigned long long)max);
    free(s);
    return ok;
}

void st_field_uint(struct st_walk *w, const yaml_node_t *val, void *obj,
                   const struct st_walk_field *f)
{
    uint64_t v;
    if (st_field_count(w, val, f->key, UINT_MAX, &v))
        *ST_FIELD_AT(obj, f, unsigned) = (unsigned)v;
}

void st_field_u64(struct st_walk *w, const yaml_node_t *val, void *obj,
                  const struct st_walk_field *f)
{
    st_field_count(w, val, f->key, UINT64_MAX, ST_FIELD_AT(obj, f, uint64_t));
}

void st_field_bool(struct st_walk *w, const yaml_node_t *val, void *obj,
                   const struct st_walk_field *f)
{
    static const char *const yes[] = {"true", "True", "TRUE"};
    static const char *const no[] = {"false", "False", "FALSE"};
    char *s = st_walk_scalar(w, val, f->key);
    if (!s)
        return;
    bool *dst = ST_FIELD_AT(obj, f, bool);
    bool found = false;
    for (size_t i = 0; i < ARRAY_LEN(yes); i++) {
        if (!strcmp(s, yes[i]) || !strcmp(s, no[i])) {
            *dst = !strcmp(s, yes[i]);
            found = true;
        }
    }
    if (!found)
        st_walk_error(w, val, "expected true or false for %s, got '%s'", f->key, s);
    free(s);
}

void st_field_string(struct st_walk *w, const yaml_node_t *val, void *obj,
                     const struct st_walk_field *f)
{
    char *s = st_walk_scalar(w, val, f->key);
    char **dst = ST_FIELD_AT(obj, f, char *);
    if (!s)
        return;
    free(*dst);
    *dst = s;
}

void st_field_addr(struct st_walk *w, const yaml_node_t *val, void *obj,
                   const struct st_walk_field *f)
{
    char *s = st_walk_scalar(w, val, f->key);
    struct st_addr a;
    if (!s)
        return;
    if (st_parse_addr(s, &a) == 0) {
        st_addr_finish(ST_FIELD_AT(obj, f, struct st_addr));
        *ST_FIELD_AT(obj, f, struct st_addr) = a;
    } else {
        st_walk_error(w, val,
                      "bad address '%s' for %s (expected HOST:PORT with a numeric IPv4, [IPv6] "
                      "or localhost, port 1..65535)",
                      s, f->key);
    }
    free(s);
}

int st_field_choice(struct st_walk *w, const yaml_node_t *val, const char *key,
                    const char *const *names, size_t n, const char *expected)
{
    char *s = st_walk_scalar(w, val, key);
    int found = -1;
    if (!s)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(s, names[i]))
            found = (int)i;
    if (found < 0)
        st_walk_error(w, val, "unknown %s '%s' (expected %s)", key, s, expected);
    free(s);
    return found;
}

bool st_field_string_list(struct st_walk *w, const yaml_node_t *val, const char *what, char ***v,
                          size_t *n, const yaml_node_t **nodes)
{
    if (!st_walk_expect(w, val, YAML_SEQUENCE_NODE, what))
        return false;
    size_t cap = (size_t)(val->data.sequence.items.top - val->data.sequence.items.start);
    *v = st_xcalloc(cap, sizeof(**v));
    for (yaml_node_item_t *it = val->data.sequence.items.start; it < val->data.sequence.items.top;
         it++) {
        const yaml_node_t *item = st_walk_node(w, *it);
        char *s = st_walk_scalar(w, item, what);
        if (!s)
            continue;
        if (nodes)
            nodes[*n] = item;
        (*v)[(*n)++] = s;
    }
    return true;
}
