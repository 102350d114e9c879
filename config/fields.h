/*
 * fields.h - typed st_walk_field callbacks shared by the config schema.
 *
 * Internal to config/. Each st_field_* callback reads the value node as a
 * scalar (after ${VAR} expansion), parses it, and stores it at
 * obj + field->off in the type named below; on a bad value it reports
 * "bad <kind> '<value>' for <key> (...)" at the value's line:col and leaves
 * the field unchanged, so the default stays in place.
 */
#ifndef ST_FIELDS_H
#define ST_FIELDS_H

#include <stdbool.h>
#include <stdint.h>

#include "config/yaml_walk.h"

#define ST_FIELD_AT(obj, f, type) ((type *)((char *)(obj) + (f)->off))

/* uint64_t milliseconds ("250ms", "10s", "3m", "1h", "0"). */
void st_field_duration(struct st_walk *w, const yaml_node_t *val, void *obj,
                       const struct st_walk_field *f);
/* uint64_t bytes ("512B", "32KiB", "256MiB", "1GiB", "0"). */
void st_field_size(struct st_walk *w, const yaml_node_t *val, void *obj,
                   const struct st_walk_field *f);
/* unsigned 0..100 ("10%" or "10"). */
void st_field_percent(struct st_walk *w, const yaml_node_t *val, void *obj,
                      const struct st_walk_field *f);
/* unsigned / uint64_t whole numbers. */
void st_field_uint(struct st_walk *w, const yaml_node_t *val, void *obj,
                   const struct st_walk_field *f);
void st_field_u64(struct st_walk *w, const yaml_node_t *val, void *obj,
                  const struct st_walk_field *f);
/* bool: true/True/TRUE or false/False/FALSE. */
void st_field_bool(struct st_walk *w, const yaml_node_t *val, void *obj,
                   const struct st_walk_field *f);
/* char * (owned: the old value is freed). */
void st_field_string(struct st_walk *w, const yaml_node_t *val, void *obj,
                     const struct st_walk_field *f);
/* struct st_addr (the old one is finished when the new one parses). */
void st_field_addr(struct st_walk *w, const yaml_node_t *val, void *obj,
                   const struct st_walk_field *f);

/* A whole number 0..max into *out; false after reporting a bad one. */
bool st_field_count(struct st_walk *w, const yaml_node_t *val, const char *key, uint64_t max,
                    uint64_t *out);
/* A scalar that must be one of names[0..n); its index, or -1 after reporting. */
int st_field_choice(struct st_walk *w, const yaml_node_t *val, const char *key,
                    const char *const *names, size_t n, const char *expected);
/*
 * A list of scalars: each expanded string is appended to *v (a new array,
 * sized for every item; *n counts the good ones) and, when nodes is non-NULL,
 * its node to nodes[*n]. False (nothing allocated) when val is not a list.
 */
bool st_field_string_list(struct st_walk *w, const yaml_node_t *val, const char *what, char ***v,
                          size_t *n, const yaml_node_t **nodes);

#endif
