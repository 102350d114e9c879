/*
 * pattern.h - route patterns: "/api/v1/products/{id}", or a prefix ending in "*".
 *
 * A pattern is a sequence of '/'-separated segments: a literal segment
 * matches itself exactly (case-sensitive), "{name}" matches exactly one
 * non-empty segment and captures it, and a final "*" matches the rest of
 * the path (zero or more characters, including further '/'). Matching looks
 * only at the path: the query string (from '?') is not part of it.
 *
 * A compiled pattern owns its copies of the text; matching allocates nothing.
 */
#ifndef ST_PATTERN_H
#define ST_PATTERN_H

#include <stdbool.h>
#include <stddef.h>

#define ST_PATTERN_MAX_CAPTURES 16

struct st_pattern_seg {
    char *text; /* owned: literal text, or the capture name for {name} */
    size_t len;
    bool capture; /* {name} */
};

struct st_pattern {
    struct st_pattern_seg *segs; /* owned array */
    size_t n_segs;
    bool rest; /* ends in "*" */
};

/* One captured segment: a span of the matched path. */
struct st_capture {
    const char *name; /* points into the pattern */
    size_t name_len;
    const char *value; /* points into the matched path */
    size_t value_len;
};

/*
 * Compile `text`. Returns 0, or -EINVAL with *why set to a static message
 * (must start with '/', "{" without "}", "*" not last, empty capture name,
 * more than ST_PATTERN_MAX_CAPTURES captures, ...).
 */
int st_pattern_compile(const char *text, struct st_pattern *out, const char **why);
void st_pattern_finish(struct st_pattern *p);

/*
 * Does `path` (length len, may contain a '?query', which is ignored) match?
 * When caps is non-NULL it receives up to ST_PATTERN_MAX_CAPTURES captures
 * and *n_caps their count.
 */
bool st_pattern_match(const struct st_pattern *p, const char *path, size_t len,
                      struct st_capture *caps, size_t *n_caps);

/*
 * Fill a template such as "/api/v1/products/{id}/reviews" from captures.
 * Writes at most cap bytes (NUL-terminated) to out; returns the length the
 * whole result needs (like snprintf), or -ENOENT if the template names a
 * capture that is not in caps.
 */
int st_pattern_fill(const char *tmpl, const struct st_capture *caps, size_t n_caps, char *out,
                    size_t cap);

#endif
