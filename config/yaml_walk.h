/*
 * yaml_walk.h - walking a libyaml document tree against a hand-written
 * schema, with "FILE:LINE:COL: message" diagnostics.
 *
 * Internal to config/: config.c describes each mapping of the schema as a
 * table of st_walk_field and lets st_walk_map() dispatch its keys, report
 * unknown and duplicate keys, and remember which value node each key had.
 * Every error is collected and counted; walking never stops at the first
 * error, and st_walk_flush() hands them to the diagnostics in file order. Scalars are read through
 * st_walk_scalar(), which applies ${VAR} expansion and reports a bad variable at its own column.
 */
#ifndef ST_YAML_WALK_H
#define ST_YAML_WALK_H

#include <stdbool.h>
#include <stddef.h>
#include <yaml.h>

#include "config/config.h"

struct st_walk {
    yaml_document_t *doc;     /* borrowed */
    const char *file;         /* borrowed: the name used in diagnostics */
    struct st_diag *diag;     /* borrowed */
    unsigned errors;          /* diagnostics added so far */
    void *user;               /* borrowed: what the field callbacks build */
    struct st_walk_msg *msgs; /* owned: pending diagnostics, flushed in file order */
};

struct st_walk_msg {
    size_t line, col; /* 0-based, as libyaml marks */
    char *text;       /* owned */
};

/* Append the collected diagnostics to w->diag, sorted by position, and free them. */
void st_walk_flush(struct st_walk *w);

struct st_walk_field;

/* Parse `val` (the value of f->key) into obj; report problems via st_walk_error. */
typedef void (*st_walk_field_cb)(struct st_walk *w, const yaml_node_t *val, void *obj,
                                 const struct st_walk_field *f);

struct st_walk_field {
    const char *key;
    st_walk_field_cb parse; /* NULL: only record the value node */
    size_t off;             /* passed through; usually offsetof() into obj */
};

/* Append "FILE:LINE:COL: message" at the node's start (or an explicit mark). */
void st_walk_error(struct st_walk *w, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void st_walk_error_mark(struct st_walk *w, yaml_mark_t m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

yaml_node_t *st_walk_node(struct st_walk *w, int id);
/* Plain "", "~" or "null": the YAML way of writing nothing. */
bool st_walk_is_null(const yaml_node_t *n);
/* Reports "expected a KIND for WHAT, got a ..." unless n has that type. */
bool st_walk_expect(struct st_walk *w, const yaml_node_t *n, yaml_node_type_t type,
                    const char *what);

/*
 * The scalar's text after ${VAR} expansion: a new string (caller frees), or
 * NULL after reporting the problem (not a scalar, bad variable).
 */
char *st_walk_scalar(struct st_walk *w, const yaml_node_t *n, const char *what);

/*
 * Walk a mapping against `fields`: call each known key's parse callback with
 * obj, report unknown keys ("unknown key 'k' in WHERE") and duplicate keys.
 * seen (optional, n_fields entries) receives each field's value node or NULL.
 * A null node ("key:" with no value) counts as an empty mapping. Returns
 * false when `map` is not a mapping (after reporting it).
 */
bool st_walk_map(struct st_walk *w, const yaml_node_t *map, const char *where,
                 const struct st_walk_field *fields, size_t n_fields, void *obj,
                 const yaml_node_t **seen);

/* Called for each entry of a name -> value mapping (tiers, upstreams). */
typedef void (*st_walk_entry_cb)(struct st_walk *w, const char *name, const yaml_node_t *key,
                                 const yaml_node_t *val, void *ctx);

/*
 * Walk a mapping whose keys are names chosen by the user: reports non-scalar,
 * empty and duplicate names (skipping those entries) and calls cb for the
 * rest. Returns the number of entries, or -1 when `map` is not a mapping.
 */
long st_walk_entries(struct st_walk *w, const yaml_node_t *map, const char *where,
                     st_walk_entry_cb cb, void *ctx);

#endif
