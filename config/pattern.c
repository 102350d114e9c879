/*
 * pattern.c - route patterns: compile once at config load, match per request.
 *
 * Data model: "/api/v1/products/{id}" compiles to the segments
 * ["api", "v1", "products", {id}]; "/static/" + "*" to ["static"] + rest;
 * the catch-all "/" + "*" to [] + rest; "/" to [""] (one empty literal
 * segment). A path matches when, for each segment in turn, it holds '/'
 * followed by that segment (a capture takes one non-empty run of non-'/'
 * characters), and then either ends (no rest) or holds '/' followed by
 * anything (rest). So "/api/" + "*" matches "/api/" and "/api/x/y" but not
 * "/api".
 *
 * Invariants: compiled literal segments never contain '/', '{', '}' or '*';
 * only the last segment may be empty; at most ST_PATTERN_MAX_CAPTURES
 * captures. Matching and filling allocate nothing.
 */
#include "config/pattern.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"

static bool is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* Checks one segment's text (between slashes); returns NULL or why it is bad. */
static const char *check_segment(const char *s, size_t len, bool last)
{
    if (len == 0)
        return last ? NULL : "empty segment ('//')";
    if (len == 1 && s[0] == '*')
        return last ? NULL : "'*' is only allowed as the last segment";
    if (s[0] == '{') {
        if (s[len - 1] != '}')
            return memchr(s, '}', len) ? "a capture must be a whole segment, like {id}"
                                       : "'{' without '}'";
        if (len == 2)
            return "empty capture name";
        for (size_t i = 1; i + 1 < len; i++)
            if (!is_name_char(s[i]))
                return "capture names may hold only letters, digits and '_'";
        return NULL;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '*')
            return "'*' must be a whole last segment, like /static/*";
        if (s[i] == '{')
            return "a capture must be a whole segment, like {id}";
        if (s[i] == '}')
            return "'}' without '{'";
    }
    return NULL;
}

static const char *check_text(const char *text, size_t *n_segs)
{
    if (text[0] != '/')
        return "pattern must start with '/'";
    if (strpbrk(text, "?#"))
        return "pattern must not contain a query or fragment";
    *n_segs = 0;
    size_t caps = 0;
    for (const char *s = text + 1;; s++) {
        size_t len = strcspn(s, "/");
        bool last = s[len] == '\0';
        const char *why = check_segment(s, len, last);
        if (why)
            return why;
        if (len > 0 && s[0] == '{' && ++caps > ST_PATTERN_MAX_CAPTURES)
            return "too many captures";
        (*n_segs)++;
        s += len;
        if (last)
            return NULL;
    }
}

static bool duplicate_capture(const struct st_pattern *p)
{
    for (size_t i = 0; i < p->n_segs; i++)
        for (size_t j = i + 1; j < p->n_segs; j++)
            if (p->segs[i].capture && p->segs[j].capture && p->segs[i].len == p->segs[j].len &&
                memcmp(p->segs[i].text, p->segs[j].text, p->segs[i].len) == 0)
                return true;
    return false;
}

static void fill_segs(struct st_pattern *p, const char *text)
{
    const char *s = text + 1;
    for (size_t i = 0; i < p->n_segs; i++) {
        size_t len = strcspn(s, "/");
        struct st_pattern_seg *seg = &p->segs[i];
        seg->capture = len > 0 && s[0] == '{';
        seg->text = seg->capture ? st_xstrndup(s + 1, len - 2) : st_xstrndup(s, len);
        seg->len = strlen(seg->text);
        s += len + 1;
    }
}

int st_pattern_compile(const char *text, struct st_pattern *out, const char **why)
{
    size_t n = 0;
    memset(out, 0, sizeof(*out));
    const char *bad = check_text(text, &n);
    if (bad) {
        *why = bad;
        return -EINVAL;
    }
    size_t tl = strlen(text);
    if (tl >= 2 && strcmp(text + tl - 2, "/*") == 0) {
        out->rest = true;
        n--; /* the "*" is not a segment */
    }
    out->n_segs = n;
    out->segs = st_xcalloc(n, sizeof(*out->segs));
    fill_segs(out, text);
    if (duplicate_capture(out)) {
        st_pattern_finish(out);
        *why = "duplicate capture name";
        return -EINVAL;
    }
    return 0;
}

void st_pattern_finish(struct st_pattern *p)
{
    for (size_t i = 0; i < p->n_segs; i++)
        free(p->segs[i].text);
    free(p->segs);
    memset(p, 0, sizeof(*p));
}

static bool match_seg(const struct st_pattern_seg *seg, const char *v, size_t vlen,
                      struct st_capture *caps, size_t *n_caps)
{
    if (!seg->capture)
        return vlen == seg->len && memcmp(v, seg->text, vlen) == 0;
    if (vlen == 0)
        return false;
    if (caps) {
        caps[*n_caps] = (struct st_capture){seg->text, seg->len, v, vlen};
        (*n_caps)++;
    }
    return true;
}

bool st_pattern_match(const struct st_pattern *p, const char *path, size_t len,
                      struct st_capture *caps, size_t *n_caps)
{
    size_t dummy = 0;
    size_t *nc = caps ? n_caps : &dummy;
    const char *q = memchr(path, '?', len);
    const char *end = q ? q : path + len;
    const char *s = path;
    *nc = 0;
    for (size_t i = 0; i < p->n_segs; i++) {
        if (s >= end || *s != '/')
            return false;
        s++;
        const char *slash = memchr(s, '/', (size_t)(end - s));
        const char *seg_end = slash ? slash : end;
        if (!match_seg(&p->segs[i], s, (size_t)(seg_end - s), caps, nc))
            return false;
        s = seg_end;
    }
    if (p->rest)
        return s < end && *s == '/';
    return s == end;
}

static const struct st_capture *find_capture(const struct st_capture *caps, size_t n,
                                             const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (caps[i].name_len == len && memcmp(caps[i].name, name, len) == 0)
            return &caps[i];
    return NULL;
}

/* Appends a span to out (bounded by cap, always leaving room for the NUL). */
static void emit(char *out, size_t cap, size_t *pos, const char *s, size_t len)
{
    if (*pos < cap) {
        size_t room = cap - 1 - *pos;
        memcpy(out + *pos, s, len < room ? len : room);
    }
    *pos += len;
}

int st_pattern_fill(const char *tmpl, const struct st_capture *caps, size_t n_caps, char *out,
                    size_t cap)
{
    size_t pos = 0;
    const char *s = tmpl;
    while (*s) {
        const char *open = strchr(s, '{');
        const char *close = open ? strchr(open, '}') : NULL;
        if (!close) {
            emit(out, cap, &pos, s, strlen(s));
            break;
        }
        emit(out, cap, &pos, s, (size_t)(open - s));
        const struct st_capture *c =
            find_capture(caps, n_caps, open + 1, (size_t)(close - open - 1));
        if (!c)
            return -ENOENT;
        emit(out, cap, &pos, c->value, c->value_len);
        s = close + 1;
    }
    if (cap > 0)
        out[pos < cap ? pos : cap - 1] = '\0';
    return (int)pos;
}
