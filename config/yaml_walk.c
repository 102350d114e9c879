/*
 * yaml_walk.c - schema walking helpers over a loaded libyaml document.
 *
 * libyaml marks are 0-based (line, column in characters); diagnostics are
 * 1-based. Nothing here owns the document; every string returned is new.
 */
#include "config/yaml_walk.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"

static void add_error(struct st_walk *w, size_t line, size_t col, const char *fmt, va_list ap)
{
    w->msgs = st_xrealloc(w->msgs, (w->errors + 1) * sizeof(*w->msgs));
    w->msgs[w->errors++] = (struct st_walk_msg){line, col, st_xvasprintf(fmt, ap)};
}

static bool after(const struct st_walk_msg *x, const struct st_walk_msg *y)
{
    return x->line != y->line ? x->line > y->line : x->col > y->col;
}

void st_walk_flush(struct st_walk *w)
{
    /* Insertion sort: stable (same-position messages keep the walk's order), and the
     * lists are short. */
    for (size_t i = 1; i < w->errors; i++) {
        struct st_walk_msg m = w->msgs[i];
        size_t j = i;
        for (; j > 0 && after(&w->msgs[j - 1], &m); j--)
            w->msgs[j] = w->msgs[j - 1];
        w->msgs[j] = m;
    }
    for (size_t i = 0; i < w->errors; i++) {
        st_diag_add(w->diag, "%s:%zu:%zu: %s", w->file, w->msgs[i].line + 1, w->msgs[i].col + 1,
                    w->msgs[i].text);
        free(w->msgs[i].text);
    }
    free(w->msgs);
    w->msgs = NULL;
}

void st_walk_error_mark(struct st_walk *w, yaml_mark_t m, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    add_error(w, m.line, m.column, fmt, ap);
    va_end(ap);
}

void st_walk_error(struct st_walk *w, const yaml_node_t *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    add_error(w, n->start_mark.line, n->start_mark.column, fmt, ap);
    va_end(ap);
}

yaml_node_t *st_walk_node(struct st_walk *w, int id)
{
    yaml_node_t *n = yaml_document_get_node(w->doc, id);
    ST_CHECK(n != NULL);
    return n;
}

bool st_walk_is_null(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *v = (const char *)n->data.scalar.value;
    return !*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") || !strcmp(v, "NULL");
}

static const char *kind_name(yaml_node_type_t t)
{
    switch (t) {
    case YAML_SCALAR_NODE:
        return "a scalar";
    case YAML_SEQUENCE_NODE:
        return "a list";
    case YAML_MAPPING_NODE:
        return "a mapping";
    default:
        return "nothing";
    }
}

bool st_walk_expect(struct st_walk *w, const yaml_node_t *n, yaml_node_type_t type,
                    const char *what)
{
    if (n->type == type &&
        !(type == YAML_SCALAR_NODE && n->tag && !strcmp((const char *)n->tag, YAML_NULL_TAG)))
        return true;
    const char *got = st_walk_is_null(n) ? "nothing" : kind_name(n->type);
    st_walk_error(w, n, "expected %s for %s, got %s", kind_name(type), what, got);
    return false;
}

/* Characters (not bytes) in the first `len` bytes of UTF-8 text. */
static size_t utf8_chars(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

/*
 * Where the "${" at byte `off` of the scalar's value sits in the file. Exact
 * for one-line plain and quoted scalars without escapes before it; other
 * scalars get the node's own position.
 */
static yaml_mark_t var_mark(const yaml_node_t *n, size_t off)
{
    yaml_mark_t m = n->start_mark;
    yaml_scalar_style_t st = n->data.scalar.style;
    const char *v = (const char *)n->data.scalar.value;
    if (n->start_mark.line != n->end_mark.line || memchr(v, '\n', off))
        return m;
    if (st == YAML_PLAIN_SCALAR_STYLE)
        m.column += utf8_chars(v, off);
    else if (st == YAML_SINGLE_QUOTED_SCALAR_STYLE || st == YAML_DOUBLE_QUOTED_SCALAR_STYLE)
        m.column += 1 + utf8_chars(v, off);
    return m;
}

char *st_walk_scalar(struct st_walk *w, const yaml_node_t *n, const char *what)
{
    if (n->type != YAML_SCALAR_NODE) {
        st_walk_expect(w, n, YAML_SCALAR_NODE, what);
        return NULL;
    }
    const char *v = (const char *)n->data.scalar.value;
    const char *bad = NULL;
    char *out = NULL;
    int rc = st_expand_env(v, &out, &bad);
    if (rc == 0)
        return out;
    size_t off = (size_t)(bad - v) - 2; /* bad points past "${" */
    int name_len =
        (int)strspn(bad, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_");
    if (rc == -ENOENT)
        st_walk_error_mark(w, var_mark(n, off),
                           "environment variable '%.*s' is not set (write ${%.*s:-default} "
                           "to allow that)",
                           name_len, bad, name_len, bad);
    else
        st_walk_error_mark(w, var_mark(n, off),
                           "bad variable reference in %s (expected ${NAME} or ${NAME:-default})",
                           what);
    return NULL;
}

static const struct st_walk_field *find_field(const struct st_walk_field *fields, size_t n,
                                              const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(fields[i].key, key) == 0)
            return &fields[i];
    return NULL;
}

/* Is the key at pair i a repeat of an earlier key in the same mapping? */
static const yaml_node_t *earlier_key(struct st_walk *w, const yaml_node_t *map,
                                      const yaml_node_pair_t *p)
{
    const yaml_node_t *k = st_walk_node(w, p->key);
    for (const yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
        const yaml_node_t *e = st_walk_node(w, q->key);
        if (e->type == YAML_SCALAR_NODE &&
            strcmp((const char *)e->data.scalar.value, (const char *)k->data.scalar.value) == 0)
            return e;
    }
    return NULL;
}

/* Reports a non-scalar or repeated key; returns its text, or NULL to skip the pair. */
static const char *pair_key(struct st_walk *w, const yaml_node_t *map, const yaml_node_pair_t *p,
                            const char *where)
{
    const yaml_node_t *k = st_walk_node(w, p->key);
    if (k->type != YAML_SCALAR_NODE) {
        st_walk_error(w, k, "expected a scalar key in %s, got %s", where, kind_name(k->type));
        return NULL;
    }
    const yaml_node_t *first = earlier_key(w, map, p);
    if (first) {
        st_walk_error(w, k, "duplicate key '%s' in %s (first at line %zu)",
                      (const char *)k->data.scalar.value, where, first->start_mark.line + 1);
        return NULL;
    }
    return (const char *)k->data.scalar.value;
}

bool st_walk_map(struct st_walk *w, const yaml_node_t *map, const char *where,
                 const struct st_walk_field *fields, size_t n_fields, void *obj,
                 const yaml_node_t **seen)
{
    if (seen)
        memset(seen, 0, n_fields * sizeof(*seen));
    if (st_walk_is_null(map))
        return true; /* "key:" with nothing after it: an empty mapping */
    if (!st_walk_expect(w, map, YAML_MAPPING_NODE, where))
        return false;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        const char *key = pair_key(w, map, p, where);
        if (!key)
            continue;
        const struct st_walk_field *f = find_field(fields, n_fields, key);
        if (!f) {
            st_walk_error(w, st_walk_node(w, p->key), "unknown key '%s' in %s", key, where);
            continue;
        }
        const yaml_node_t *val = st_walk_node(w, p->value);
        if (seen)
            seen[f - fields] = val;
        if (f->parse)
            f->parse(w, val, obj, f);
    }
    return true;
}

long st_walk_entries(struct st_walk *w, const yaml_node_t *map, const char *where,
                     st_walk_entry_cb cb, void *ctx)
{
    long n = 0;
    if (!st_walk_expect(w, map, YAML_MAPPING_NODE, where))
        return -1;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        const char *name = pair_key(w, map, p, where);
        if (!name)
            continue;
        const yaml_node_t *key = st_walk_node(w, p->key);
        if (!*name) {
            st_walk_error(w, key, "empty name in %s", where);
            continue;
        }
        cb(w, name, key, st_walk_node(w, p->value), ctx);
        n++;
    }
    return n;
}
