/*
 * freshness.c - RFC 9111 shared-cache rules (with RFC 5861 stale extensions
 * and RFC 9213 CDN-Cache-Control) as pure functions.
 *
 * Nothing here reads a clock, allocates or logs: every time is passed in.
 *
 * Rules, and where the RFCs leave room, the reading we chose:
 * - Cache-Control: directive names are case-insensitive; values are a token
 *   or a quoted-string (both accepted for every directive, RFC 9111 5.2);
 *   OWS is tolerated around members and around '='. The first occurrence of
 *   a directive wins (RFC 9111 4.2.1). A delta-seconds that is empty, signed
 *   or has non-digits is invalid: max-age and s-maxage then set *_invalid and
 *   stay ABSENT, which makes the response stale at once; the stale extensions,
 *   max-stale and min-fresh have no invalid flag and read as 0 instead (the
 *   conservative value). Values saturate at 2147483648 (RFC 9111 1.2.2).
 *   Qualified no-cache="..." / private="..." count as the unqualified form.
 *   Unknown directives and Pragma are ignored.
 * - CDN-Cache-Control with a non-empty value replaces both Cache-Control
 *   and Expires (RFC 9213 2.2).
 * - Explicit lifetime: s-maxage, else max-age, else Expires - Date. A present
 *   but invalid one gives lifetime 0 (stale, still storable to revalidate);
 *   a lower-priority valid one does not rescue it (RFC 9111 5.3).
 * - Without explicit freshness the tier's ttl is the (heuristic) lifetime,
 *   allowed only for statuses cacheable by default or with `public`
 *   (RFC 9111 4.2.2); tier ttl 0 means no heuristic freshness at all.
 * - 304 is never stored (it updates an entry, RFC 9111 4.3.4); 206 neither.
 * - must-revalidate and proxy-revalidate forbid serving stale: swr and sie
 *   become 0. s-maxage (which implies proxy-revalidate) turns the tier's
 *   windows off but keeps the origin's own explicit stale-while-revalidate /
 *   stale-if-error directives.
 * - Two-digit RFC 850 years more than 50 years ahead of "now" belong to the
 *   past century (RFC 9110 5.6.7); without a "now", 2025 is the reference.
 *   Dates before 1970 are rejected (-1) so negative never means a date.
 */
#include "cache/freshness.h"

#include "http/date.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define DELTA_MAX 2147483648LL   /* RFC 9111 1.2.2 */

/* ---- Cache-Control ----------------------------------------------------- */

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static bool is_tchar(char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* delta-seconds: 1*DIGIT, saturating; -1 when invalid. */
static int64_t parse_delta(const char *p, size_t len)
{
    if (len == 0)
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        if (v < DELTA_MAX)
            v = v * 10 + (p[i] - '0');
    }
    return v > DELTA_MAX ? DELTA_MAX : v;
}

struct directive {
    const char *name, *val;
    size_t nlen, vlen;
    bool has_val;
    bool malformed; /* junk after the value, or an unterminated quoted-string */
};

/* Skip a quoted-string starting at v[i] == '"'; returns the index after it (or len). */
static size_t skip_quoted(const char *v, size_t len, size_t i, bool *closed)
{
    for (i++; i < len; i++) {
        if (v[i] == '\\' && i + 1 < len)
            i++;
        else if (v[i] == '"') {
            *closed = true;
            return i + 1;
        }
    }
    *closed = false;
    return len;
}

/* Advance past junk up to the next comma outside quotes. */
static size_t skip_to_comma(const char *v, size_t len, size_t i)
{
    bool closed;
    while (i < len && v[i] != ',')
        i = v[i] == '"' ? skip_quoted(v, len, i, &closed) : i + 1;
    return i;
}

static size_t skip_ows(const char *v, size_t len, size_t i)
{
    while (i < len && is_ows(v[i]))
        i++;
    return i;
}

static size_t parse_value(const char *v, size_t len, size_t i, struct directive *d)
{
    d->has_val = true;
    if (i < len && v[i] == '"') {
        bool closed;
        size_t end = skip_quoted(v, len, i, &closed);
        d->val = v + i + 1;
        d->vlen = closed ? end - i - 2 : end - i - 1;
        d->malformed = !closed;
        return end;
    }
    size_t start = i;
    while (i < len && is_tchar(v[i]))
        i++;
    d->val = v + start;
    d->vlen = i - start;
    return i;
}

/* Parse the member starting at or after v[i]; returns the index after it, or len when done. */
static size_t next_directive(const char *v, size_t len, size_t i, struct directive *d)
{
    memset(d, 0, sizeof(*d));
    while (i < len && (is_ows(v[i]) || v[i] == ','))
        i++;
    size_t start = i;
    while (i < len && is_tchar(v[i]))
        i++;
    d->name = v + start;
    d->nlen = i - start;
    i = skip_ows(v, len, i);
    if (d->nlen > 0 && i < len && v[i] == '=')
        i = parse_value(v, len, skip_ows(v, len, i + 1), d);
    i = skip_ows(v, len, i);
    if (i < len && v[i] != ',') {
        d->malformed = true;
        i = skip_to_comma(v, len, i);
    }
    return i;
}

enum dir_kind {
    DK_MAX_AGE, DK_S_MAXAGE, DK_SWR, DK_SIE, DK_MAX_STALE, DK_MIN_FRESH,
    DK_NO_STORE, DK_NO_CACHE, DK_PRIVATE, DK_PUBLIC, DK_MUST_REVALIDATE,
    DK_PROXY_REVALIDATE, DK_ONLY_IF_CACHED, DK_IMMUTABLE, DK_UNKNOWN,
};

static const struct {
    const char *name;
    enum dir_kind kind;
} dir_names[] = {
    {"max-age", DK_MAX_AGE},
    {"s-maxage", DK_S_MAXAGE},
    {"stale-while-revalidate", DK_SWR},
    {"stale-if-error", DK_SIE},
    {"max-stale", DK_MAX_STALE},
    {"min-fresh", DK_MIN_FRESH},
    {"no-store", DK_NO_STORE},
    {"no-cache", DK_NO_CACHE},
    {"private", DK_PRIVATE},
    {"public", DK_PUBLIC},
    {"must-revalidate", DK_MUST_REVALIDATE},
    {"proxy-revalidate", DK_PROXY_REVALIDATE},
    {"only-if-cached", DK_ONLY_IF_CACHED},
    {"immutable", DK_IMMUTABLE},
};

static enum dir_kind dir_kind_of(const struct directive *d)
{
    for (size_t i = 0; i < sizeof(dir_names) / sizeof(dir_names[0]); i++)
        if (st_name_eq(d->name, d->nlen, dir_names[i].name))
            return dir_names[i].kind;
    return DK_UNKNOWN;
}

static int64_t directive_delta(const struct directive *d)
{
    if (!d->has_val || d->malformed)
        return -1;
    return parse_delta(d->val, d->vlen);
}

/* max-age / s-maxage: first occurrence wins, whether it was valid or not. */
static void set_flagged(int64_t *slot, bool *invalid, const struct directive *d)
{
    if (*slot != ST_CC_ABSENT || *invalid)
        return;
    int64_t v = directive_delta(d);
    if (v < 0)
        *invalid = true;
    else
        *slot = v;
}

/* Directives without an invalid flag: an invalid value reads as 0. */
static void set_plain(int64_t *slot, const struct directive *d)
{
    if (*slot != ST_CC_ABSENT)
        return;
    int64_t v = directive_delta(d);
    *slot = v < 0 ? 0 : v;
}

static void apply_directive(struct st_cc *cc, const struct directive *d)
{
    switch (dir_kind_of(d)) {
    case DK_MAX_AGE: set_flagged(&cc->max_age, &cc->max_age_invalid, d); break;
    case DK_S_MAXAGE: set_flagged(&cc->s_maxage, &cc->s_maxage_invalid, d); break;
    case DK_SWR: set_plain(&cc->stale_while_revalidate, d); break;
    case DK_SIE: set_plain(&cc->stale_if_error, d); break;
    case DK_MIN_FRESH: set_plain(&cc->min_fresh, d); break;
    case DK_MAX_STALE:
        if (cc->max_stale == ST_CC_ABSENT && !d->has_val && !d->malformed)
            cc->max_stale = INT64_MAX;
        else
            set_plain(&cc->max_stale, d);
        break;
    case DK_NO_STORE: cc->no_store = true; break;
    case DK_NO_CACHE: cc->no_cache = true; break;
    case DK_PRIVATE: cc->private_ = true; break;
    case DK_PUBLIC: cc->public_ = true; break;
    case DK_MUST_REVALIDATE: cc->must_revalidate = true; break;
    case DK_PROXY_REVALIDATE: cc->proxy_revalidate = true; break;
    case DK_ONLY_IF_CACHED: cc->only_if_cached = true; break;
    case DK_IMMUTABLE: cc->immutable = true; break;
    case DK_UNKNOWN: break;
    }
}

void st_cc_init(struct st_cc *cc)
{
    memset(cc, 0, sizeof(*cc));
    cc->max_age = cc->s_maxage = ST_CC_ABSENT;
    cc->stale_while_revalidate = cc->stale_if_error = ST_CC_ABSENT;
    cc->max_stale = cc->min_fresh = ST_CC_ABSENT;
}

void st_cc_parse(const char *v, size_t len, struct st_cc *cc)
{
    struct directive d;
    size_t i = 0;
    cc->present = true;
    while (i < len) {
        i = next_directive(v, len, i, &d);
        if (d.nlen > 0)
            apply_directive(cc, &d);
    }
}

void st_cc_parse_headers(const struct st_headers *h, const char *name, struct st_cc *cc)
{
    st_cc_init(cc);
    for (size_t i = 0; i < h->n; i++) {
        const struct st_hdr *e = &h->v[i];
        if (st_name_eq(st_hdr_name(h, e), e->name_len, name))
            st_cc_parse(st_hdr_value(h, e), e->value_len, cc);
    }
}

/* ---- storability and lifetime ------------------------------------------ */

bool st_freshness_status_cacheable(int status)
{
    switch (status) {
    case 200: case 203: case 204: case 300: case 301: case 308:
    case 404: case 405: case 410: case 414: case 501:
        return true;
    default:
        return false;
    }
}

static bool has_content(const struct st_headers *h, const char *name)
{
    for (size_t i = 0; i < h->n; i++) {
        const struct st_hdr *e = &h->v[i];
        if (!st_name_eq(st_hdr_name(h, e), e->name_len, name))
            continue;
        const char *v = st_hdr_value(h, e);
        for (size_t j = 0; j < e->value_len; j++)
            if (!is_ows(v[j]) && v[j] != ',')
                return true;
    }
    return false;
}

/* ---- CDN-Cache-Control as a Structured Field dictionary (RFC 8941) ---- */

static bool sf_lcalpha(char c)
{
    return c >= 'a' && c <= 'z';
}

static bool sf_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* sf-key at v[*i]; its length (0: none). */
static size_t sf_key(const char *v, size_t len, size_t *i)
{
    size_t s = *i;
    if (*i >= len || !(sf_lcalpha(v[*i]) || v[*i] == '*'))
        return 0;
    while (*i < len && (sf_lcalpha(v[*i]) || sf_digit(v[*i]) || strchr("_-.*", v[*i])))
        (*i)++;
    return *i - s;
}

enum sf_type { SF_BAD, SF_INTEGER, SF_DECIMAL, SF_STRING, SF_TOKEN, SF_BYTES, SF_BOOLEAN };

/* One bare item at v[*i]: its type (SF_BAD when malformed). */
static enum sf_type sf_bare_item(const char *v, size_t len, size_t *i)
{
    if (*i >= len)
        return SF_BAD;
    char c = v[*i];
    if (c == '-' || sf_digit(c)) {
        size_t digits = 0, frac = 0;
        bool dot = false;
        if (c == '-')
            (*i)++;
        for (; *i < len && (sf_digit(v[*i]) || (v[*i] == '.' && !dot)); (*i)++) {
            if (v[*i] == '.')
                dot = true;
            else if (dot)
                frac++;
            else
                digits++;
        }
        if (digits == 0 || (dot && (frac == 0 || frac > 3 || digits > 12)) || digits > 15)
            return SF_BAD;
        return dot ? SF_DECIMAL : SF_INTEGER;
    }
    if (c == '"') {
        for ((*i)++; *i < len && v[*i] != '"'; (*i)++)
            if (v[*i] == '\\' && (++(*i) >= len || (v[*i] != '"' && v[*i] != '\\')))
                return SF_BAD;
        return *i < len ? ((*i)++, SF_STRING) : SF_BAD;
    }
    if (c == '?') {
        if (*i + 1 >= len || (v[*i + 1] != '0' && v[*i + 1] != '1'))
            return SF_BAD;
        *i += 2;
        return SF_BOOLEAN;
    }
    if (c == ':') {
        for ((*i)++; *i < len && v[*i] != ':'; (*i)++)
            if (!isalnum((unsigned char)v[*i]) && !strchr("+/=", v[*i]))
                return SF_BAD;
        return *i < len ? ((*i)++, SF_BYTES) : SF_BAD;
    }
    if (isalpha((unsigned char)c) || c == '*') {
        while (*i < len && (is_tchar(v[*i]) || v[*i] == ':' || v[*i] == '/'))
            (*i)++;
        return SF_TOKEN;
    }
    return SF_BAD;
}

/* ;key[=item] parameters after a member. */
static bool sf_params(const char *v, size_t len, size_t *i)
{
    while (*i < len && v[*i] == ';') {
        (*i)++;
        while (*i < len && v[*i] == ' ')
            (*i)++;
        if (!sf_key(v, len, i))
            return false;
        if (*i < len && v[*i] == '=' && (++(*i), sf_bare_item(v, len, i) == SF_BAD))
            return false;
    }
    return true;
}

/* The type RFC 9111 gives a directive's value, for the ones strata reads (SF_BAD: any). */
static enum sf_type directive_type(const char *k, size_t n)
{
    static const char *const ints[] = {"max-age", "s-maxage", "stale-while-revalidate",
                                       "stale-if-error", NULL};
    static const char *const flags[] = {"no-store", "no-cache", "private", "public",
                                        "must-revalidate", "proxy-revalidate", "immutable",
                                        NULL};
    for (int j = 0; ints[j]; j++)
        if (strlen(ints[j]) == n && memcmp(ints[j], k, n) == 0)
            return SF_INTEGER;
    for (int j = 0; flags[j]; j++)
        if (strlen(flags[j]) == n && memcmp(flags[j], k, n) == 0)
            return SF_BOOLEAN;
    return SF_BAD;
}

/* Is one field line a valid dictionary whose known directives have their types? */
static bool sf_dictionary_ok(const char *v, size_t len)
{
    size_t i = skip_ows(v, len, 0);
    while (i < len) {
        size_t k0 = i, klen = sf_key(v, len, &i);
        if (!klen)
            return false;
        enum sf_type want = directive_type(v + k0, klen), got = SF_BOOLEAN;
        bool negative = false;
        if (i < len && v[i] == '=') {
            negative = ++i < len && v[i] == '-';
            got = sf_bare_item(v, len, &i);
            if (got == SF_BAD)
                return false;
        }
        if (want != SF_BAD && (got != want || (want == SF_INTEGER && negative)))
            return false; /* a known directive of the wrong type; delta-seconds are >= 0 */
        if (!sf_params(v, len, &i))
            return false;
        i = skip_ows(v, len, i);
        if (i == len)
            return true;
        if (v[i] != ',')
            return false;
        i = skip_ows(v, len, i + 1);
        if (i == len)
            return false; /* a trailing comma */
    }
    return true;
}

/* Every CDN-Cache-Control line parses (RFC 9213: an invalid field is ignored whole). */
static bool cdn_cache_control_ok(const struct st_headers *h)
{
    for (size_t i = 0; i < h->n; i++) {
        const struct st_hdr *e = &h->v[i];
        if (st_name_eq(st_hdr_name(h, e), e->name_len, "cdn-cache-control") &&
            !sf_dictionary_ok(st_hdr_value(h, e), e->value_len))
            return false;
    }
    return true;
}

/* What one response says, after CDN-Cache-Control selection. */
struct resp_view {
    struct st_cc cc;
    const struct st_hdr *expires; /* NULL when absent or overridden by CDN-Cache-Control */
    int64_t date_ms;              /* -1 when absent or invalid */
};

static void resp_view_init(struct resp_view *rv, const struct st_headers *resp, int64_t now_ms)
{
    const struct st_hdr *date = st_headers_get(resp, "date");
    rv->date_ms = date ? st_http_date_parse_at(st_hdr_value(resp, date), date->value_len, now_ms)
                       : -1;
    if (has_content(resp, "cdn-cache-control") && cdn_cache_control_ok(resp)) {
        st_cc_parse_headers(resp, "cdn-cache-control", &rv->cc);
        rv->expires = NULL;
        return;
    }
    st_cc_parse_headers(resp, "cache-control", &rv->cc);
    rv->expires = st_headers_get(resp, "expires");
}

static bool has_explicit(const struct resp_view *rv)
{
    const struct st_cc *c = &rv->cc;
    return c->s_maxage != ST_CC_ABSENT || c->s_maxage_invalid || c->max_age != ST_CC_ABSENT ||
           c->max_age_invalid || rv->expires != NULL;
}

/* RFC 9111 4.2.1, shared cache; call only when has_explicit(). */
static int64_t explicit_lifetime(const struct resp_view *rv, const struct st_headers *resp,
                                 int64_t response_ms)
{
    const struct st_cc *c = &rv->cc;
    if (c->s_maxage != ST_CC_ABSENT || c->s_maxage_invalid)
        return c->s_maxage_invalid ? 0 : c->s_maxage * 1000;
    if (c->max_age != ST_CC_ABSENT || c->max_age_invalid)
        return c->max_age_invalid ? 0 : c->max_age * 1000;
    int64_t exp = st_http_date_parse_at(st_hdr_value(resp, rv->expires), rv->expires->value_len,
                                        response_ms);
    if (exp < 0)
        return 0;
    int64_t date = rv->date_ms >= 0 ? rv->date_ms : response_ms;
    return exp > date ? exp - date : 0;
}

static int64_t clamp_u64(uint64_t v)
{
    return v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v;
}

/* Why a response may not be stored, or NULL (RFC 9111 3, 3.5; RFC 9110 12.5.5). */
static const char *refuse_reason(int status, const struct st_headers *req,
                                 const struct st_headers *resp, const struct resp_view *rv,
                                 const struct st_store_policy *pol)
{
    const struct st_cc *c = &rv->cc;
    struct st_cc rc;
    if (status < 200 || status > 599)
        return "status is not final";
    if (status == 206)
        return "partial content is not cached";
    if (status == 304)
        return "304 updates an entry, it is not one";
    if (c->no_store)
        return "response no-store";
    if (c->private_)
        return "response private";
    st_cc_parse_headers(req, "cache-control", &rc);
    if (rc.no_store)
        return "request no-store";
    if (st_headers_get(req, "authorization") && !pol->allow_authorized && !c->public_ &&
        c->s_maxage == ST_CC_ABSENT && !c->must_revalidate)
        return "request has Authorization";
    if (st_headers_get(resp, "set-cookie") && !pol->allow_set_cookie)
        return "response has Set-Cookie";
    if (st_headers_has_token(resp, "vary", "*"))
        return "Vary: *";
    if (!has_explicit(rv) && !st_freshness_status_cacheable(status) && !c->public_)
        return "status not cacheable without explicit freshness";
    /* A no-cache answer with a validator is stored at any ttl: every use revalidates it. */
    bool revalidatable = c->no_cache && (st_headers_get(resp, "etag") ||
                                         st_headers_get(resp, "last-modified"));
    if (!has_explicit(rv) && pol->tier_ttl_ms == 0 && !revalidatable)
        return "no explicit freshness and tier ttl is 0";
    return NULL;
}

/* RFC 9111 4.2.3: the age the response already had when it arrived. */
static int64_t initial_age(const struct st_headers *resp, int64_t date_ms, int64_t request_ms,
                           int64_t response_ms)
{
    int64_t age_value = 0;
    const struct st_hdr *age = st_headers_get(resp, "age");
    if (age) {
        const char *v = st_hdr_value(resp, age);
        size_t n = 0;
        while (n < age->value_len && v[n] != ',')
            n++;
        while (n > 0 && is_ows(v[n - 1]))
            n--;
        size_t s = skip_ows(v, n, 0);
        int64_t a = parse_delta(v + s, n - s);
        age_value = a < 0 ? 0 : a * 1000;
    }
    int64_t apparent = date_ms >= 0 && response_ms > date_ms ? response_ms - date_ms : 0;
    int64_t delay = response_ms > request_ms ? response_ms - request_ms : 0;
    int64_t corrected = age_value + delay;
    return apparent > corrected ? apparent : corrected;
}

static void stale_windows(const struct st_cc *c, const struct st_store_policy *pol,
                          struct st_freshness *out)
{
    out->no_stale = c->must_revalidate || c->proxy_revalidate;
    if (out->no_stale) {
        out->swr_ms = out->sie_ms = 0;
        return;
    }
    if (c->s_maxage != ST_CC_ABSENT || c->s_maxage_invalid) {
        /*
         * s-maxage implies proxy-revalidate (RFC 9111 5.2.2.10), so the tier's
         * stale windows do not apply; an origin that also sends its own
         * stale-while-revalidate / stale-if-error (RFC 5861, the common
         * "s-maxage=60, stale-while-revalidate=30") has said explicitly that
         * it allows them.
         */
        out->swr_ms = c->stale_while_revalidate != ST_CC_ABSENT ? c->stale_while_revalidate * 1000 : 0;
        out->sie_ms = c->stale_if_error != ST_CC_ABSENT ? c->stale_if_error * 1000 : 0;
        out->no_stale = out->swr_ms == 0 && out->sie_ms == 0;
        return;
    }
    out->swr_ms = c->stale_while_revalidate != ST_CC_ABSENT ? c->stale_while_revalidate * 1000
                                                            : clamp_u64(pol->tier_swr_ms);
    out->sie_ms = c->stale_if_error != ST_CC_ABSENT ? c->stale_if_error * 1000
                                                    : clamp_u64(pol->tier_sie_ms);
}

void st_freshness_evaluate(int status, const struct st_headers *req,
                           const struct st_headers *resp, int64_t request_ms,
                           int64_t response_ms, const struct st_store_policy *pol,
                           struct st_freshness *out)
{
    struct resp_view rv;
    memset(out, 0, sizeof(*out));
    resp_view_init(&rv, resp, response_ms);
    out->why_not = refuse_reason(status, req, resp, &rv, pol);
    out->storable = out->why_not == NULL;
    if (!out->storable)
        return;
    out->tier_ttl = pol->ttl_from_tier || !has_explicit(&rv);
    if (out->tier_ttl)
        out->lifetime_ms = clamp_u64(pol->tier_ttl_ms);
    else
        out->lifetime_ms = explicit_lifetime(&rv, resp, response_ms);
    out->initial_age_ms = initial_age(resp, rv.date_ms, request_ms, response_ms);
    stale_windows(&rv.cc, pol, out);
    out->always_revalidate = rv.cc.no_cache;
}

/* ---- request directives ------------------------------------------------ */

enum st_req_verdict st_freshness_request_allows(const struct st_cc *req, int64_t age_ms,
                                      int64_t lifetime_ms, bool no_stale)
{
    if (req->no_cache || req->max_age_invalid)
        return ST_REQ_REVALIDATE;
    /* max-age=0 is how clients ask for a fresh answer: an entry aged 0 ms does not do. */
    if (req->max_age != ST_CC_ABSENT && (req->max_age == 0 || age_ms > req->max_age * 1000))
        return ST_REQ_REVALIDATE;
    if (req->min_fresh != ST_CC_ABSENT && lifetime_ms - age_ms < req->min_fresh * 1000)
        return ST_REQ_REVALIDATE;
    if (lifetime_ms > age_ms)
        return ST_REQ_USE;
    if (no_stale || req->max_stale == ST_CC_ABSENT)
        return ST_REQ_REVALIDATE;
    if (req->max_stale == INT64_MAX || age_ms - lifetime_ms <= req->max_stale * 1000)
        return ST_REQ_USE;
    return ST_REQ_REVALIDATE;
}

/* ---- conditional requests ---------------------------------------------- */

/* The opaque-tag of an entity-tag (quotes included, W/ dropped), or len 0 if malformed. */
static size_t opaque_tag(const char *p, size_t len, const char **out)
{
    if (len >= 2 && p[0] == 'W' && p[1] == '/')
        p += 2, len -= 2;
    *out = p;
    if (len < 2 || p[0] != '"')
        return 0;
    for (size_t i = 1; i < len; i++)
        if (p[i] == '"')
            return i + 1;
    return 0;
}

bool st_freshness_if_none_match(const char *list, size_t len, const char *etag, size_t etag_len)
{
    const char *want = NULL;
    size_t want_len = etag ? opaque_tag(etag, etag_len, &want) : 0;
    size_t i = 0;
    while (i < len) {
        while (i < len && (is_ows(list[i]) || list[i] == ','))
            i++;
        if (i >= len)
            break;
        const char *tag;
        size_t tl = opaque_tag(list + i, len - i, &tag);
        size_t end = tl ? (size_t)(tag - list) + tl : i + (list[i] == '*');
        size_t after = skip_ows(list, len, end);
        bool clean = end > i && (after == len || list[after] == ',');
        if (clean && tl == 0)
            return true; /* "*" */
        if (clean && want_len && tl == want_len && memcmp(tag, want, tl) == 0)
            return true;
        i = clean ? after : skip_to_comma(list, len, i);
    }
    return false;
}

static bool inm_matches(const struct st_headers *req, const char *etag, size_t etag_len)
{
    for (size_t i = 0; i < req->n; i++) {
        const struct st_hdr *e = &req->v[i];
        if (st_name_eq(st_hdr_name(req, e), e->name_len, "if-none-match") &&
            st_freshness_if_none_match(st_hdr_value(req, e), e->value_len, etag, etag_len))
            return true;
    }
    return false;
}

static size_t count_headers(const struct st_headers *h, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < h->n; i++)
        n += st_name_eq(st_hdr_name(h, &h->v[i]), h->v[i].name_len, name);
    return n;
}

bool st_freshness_not_modified(const struct st_headers *req, const char *etag, size_t etag_len,
                                 int64_t last_modified_ms)
{
    if (st_headers_get(req, "if-none-match"))
        return etag != NULL && etag_len > 0 && inm_matches(req, etag, etag_len);
    /* RFC 9110 13.1.3: ignore an If-Modified-Since with more than one member. */
    if (count_headers(req, "if-modified-since") != 1 || last_modified_ms < 0)
        return false;
    const struct st_hdr *e = st_headers_get(req, "if-modified-since");
    int64_t ims = st_http_date_parse(st_hdr_value(req, e), e->value_len);
    return ims >= 0 && last_modified_ms <= ims;
}
