/*
 * range.c - parsing byte-range requests. See range.h.
 */
#include "http/range.h"

#include <stdbool.h>
#include <string.h>

#include "http/date.h"

static size_t skip_ws(const char *v, size_t len, size_t i)
{
    while (i < len && (v[i] == ' ' || v[i] == '\t'))
        i++;
    return i;
}

/* Digits at v[*i] into *out; false when none or when they overflow. */
static bool number(const char *v, size_t len, size_t *i, uint64_t *out)
{
    size_t s = *i;
    uint64_t n = 0;
    for (; *i < len && v[*i] >= '0' && v[*i] <= '9'; (*i)++) {
        if (n > (UINT64_MAX - 9) / 10)
            return false;
        n = n * 10 + (uint64_t)(v[*i] - '0');
    }
    *out = n;
    return *i > s;
}

/*
 * One range-spec at v[*i]: 1 and *r set when satisfiable, 0 when valid but
 * not satisfiable, -1 when malformed.
 */
static int one_range(const char *v, size_t len, size_t *i, uint64_t length, struct st_range *r)
{
    uint64_t a, b;
    if (*i < len && v[*i] == '-') { /* suffix: the last b bytes */
        (*i)++;
        if (!number(v, len, i, &b))
            return -1;
        if (b == 0 || length == 0)
            return 0;
        r->first = b >= length ? 0 : length - b;
        r->last = length - 1;
        return 1;
    }
    if (!number(v, len, i, &a) || *i >= len || v[*i] != '-')
        return -1;
    (*i)++;
    bool open = !number(v, len, i, &b);
    if (!open && b < a)
        return -1;
    if (a >= length)
        return 0;
    r->first = a;
    r->last = open || b >= length ? length - 1 : b;
    return 1;
}

enum st_range_result st_range_parse(const char *v, size_t len, uint64_t length,
                                    struct st_range out[ST_RANGE_MAX], size_t *n)
{
    *n = 0;
    size_t i = skip_ws(v, len, 0);
    if (len - i < 6 || strncmp(v + i, "bytes=", 6) != 0)
        return ST_RANGE_NONE;
    i += 6;
    bool any = false;
    for (;;) {
        i = skip_ws(v, len, i);
        struct st_range r;
        int k = one_range(v, len, &i, length, &r);
        if (k < 0)
            return ST_RANGE_NONE;
        any = true;
        if (k > 0) {
            if (*n == ST_RANGE_MAX)
                return ST_RANGE_NONE;
            out[(*n)++] = r;
        }
        i = skip_ws(v, len, i);
        if (i == len)
            break;
        if (v[i] != ',')
            return ST_RANGE_NONE;
        i++;
    }
    if (!any)
        return ST_RANGE_NONE;
    return *n ? ST_RANGE_OK : ST_RANGE_UNSATISFIABLE;
}

bool st_range_if_range_ok(const char *v, size_t len, const char *etag, size_t etag_len,
                          int64_t last_modified_ms)
{
    while (len > 0 && (*v == ' ' || *v == '\t'))
        v++, len--;
    while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
        len--;
    if (len > 0 && (v[0] == '"' || (len > 1 && v[0] == 'W' && v[1] == '/')))
        return v[0] == '"' && etag && etag_len == len && etag[0] == '"' &&
               memcmp(v, etag, len) == 0;
    int64_t ms = st_http_date_parse(v, len);
    return ms >= 0 && last_modified_ms >= 0 && ms == last_modified_ms;
}
