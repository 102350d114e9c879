/*
 * http.c - header lists, hop-by-hop filtering and head serialization.
 */
#include "http/http.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/alloc.h"
#include "http/date.h"

void st_headers_init(struct st_headers *h)
{
    memset(h, 0, sizeof(*h));
}

void st_headers_finish(struct st_headers *h)
{
    free(h->buf);
    free(h->v);
    memset(h, 0, sizeof(*h));
}

void st_headers_reset(struct st_headers *h)
{
    h->len = 0;
    h->n = 0;
    h->state = ST_HDR_NONE;
}

static void headers_append(struct st_headers *h, const char *p, size_t len)
{
    if (h->len + len + 1 > h->cap) {
        size_t cap = h->cap ? h->cap : 1024;
        while (h->len + len + 1 > cap)
            cap *= 2;
        h->buf = st_xrealloc(h->buf, cap);
        h->cap = cap;
    }
    memcpy(h->buf + h->len, p, len);
    h->len += len;
    h->buf[h->len] = '\0';
}

/* Each name and value is NUL-terminated in buf: a piece is appended before the NUL. */
static void headers_extend_last(struct st_headers *h, const char *p, size_t len)
{
    h->len--; /* drop the NUL written after the previous piece */
    headers_append(h, p, len);
    h->len++;
}

void st_headers_name_piece(struct st_headers *h, const char *p, size_t len)
{
    if (h->state == ST_HDR_NAME) {
        headers_extend_last(h, p, len);
        h->v[h->n - 1].name_len += (uint32_t)len;
        return;
    }
    if (h->n == h->vcap) {
        h->vcap = h->vcap ? h->vcap * 2 : 16;
        h->v = st_xrealloc(h->v, h->vcap * sizeof(*h->v));
    }
    struct st_hdr *e = &h->v[h->n++];
    e->name_off = (uint32_t)h->len;
    e->name_len = (uint32_t)len;
    e->value_off = 0;
    e->value_len = 0;
    headers_append(h, p, len);
    h->len++;
    h->state = ST_HDR_NAME;
}

void st_headers_value_piece(struct st_headers *h, const char *p, size_t len)
{
    ST_CHECK(h->n > 0);
    struct st_hdr *e = &h->v[h->n - 1];
    if (h->state != ST_HDR_VALUE) {
        e->value_off = (uint32_t)h->len;
        e->value_len = (uint32_t)len;
        headers_append(h, p, len);
        h->len++;
        h->state = ST_HDR_VALUE;
        return;
    }
    headers_extend_last(h, p, len);
    e->value_len += (uint32_t)len;
}

void st_headers_value_done(struct st_headers *h)
{
    if (h->n == 0)
        return;
    struct st_hdr *e = &h->v[h->n - 1];
    if (h->state != ST_HDR_VALUE) {
        /* An empty value: give it its own (empty) string so value_off is set. */
        e->value_off = (uint32_t)h->len;
        e->value_len = 0;
        headers_append(h, "", 0);
        h->len++;
    }
    while (e->value_len > 0 &&
           (h->buf[e->value_off + e->value_len - 1] == ' ' ||
            h->buf[e->value_off + e->value_len - 1] == '\t'))
        h->buf[e->value_off + --e->value_len] = '\0';
    h->state = ST_HDR_NONE;
}

void st_headers_add(struct st_headers *h, const char *name, size_t name_len, const char *value,
                    size_t value_len)
{
    st_headers_name_piece(h, name, name_len);
    if (value_len > 0)
        st_headers_value_piece(h, value, value_len);
    st_headers_value_done(h);
}

void st_headers_copy(struct st_headers *dst, const struct st_headers *src)
{
    for (size_t i = 0; i < src->n; i++) {
        const struct st_hdr *e = &src->v[i];
        st_headers_add(dst, st_hdr_name(src, e), e->name_len, st_hdr_value(src, e),
                       e->value_len);
    }
}

void st_headers_parse_head(struct st_headers *h, const char *head, size_t len)
{
    const char *end = head + len;
    const char *p = memmem(head, len, "\r\n", 2);
    p = p ? p + 2 : end; /* skip the first line */
    while (p < end) {
        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (!eol)
            eol = end;
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (colon && colon > p) {
            const char *v = colon + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            st_headers_add(h, p, (size_t)(colon - p), v, (size_t)(eol - v));
        }
        p = eol + 2;
    }
}

bool st_name_eq(const char *p, size_t len, const char *lower)
{
    size_t i = 0;
    for (; i < len; i++) {
        if (!lower[i])
            return false;
        char c = p[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c + 32);
        if (c != lower[i])
            return false;
    }
    return lower[i] == '\0';
}

const struct st_hdr *st_headers_next(const struct st_headers *h, const char *name, size_t len,
                                     size_t *i)
{
    for (; h && *i < h->n; (*i)++) {
        const struct st_hdr *e = &h->v[*i];
        if (e->name_len == len && strncasecmp(st_hdr_name(h, e), name, len) == 0) {
            (*i)++;
            return e;
        }
    }
    return NULL;
}

void st_headers_join(const struct st_headers *h, const char *name, size_t len, struct st_sb *out)
{
    size_t i = 0;
    const struct st_hdr *e;
    for (bool first = true; (e = st_headers_next(h, name, len, &i)) != NULL; first = false) {
        if (!first)
            st_sb_add(out, ", ", 2);
        st_sb_add(out, st_hdr_value(h, e), e->value_len);
    }
}

const struct st_hdr *st_headers_get(const struct st_headers *h, const char *name)
{
    size_t nlen = strlen(name);
    for (size_t i = 0; i < h->n; i++) {
        const struct st_hdr *e = &h->v[i];
        if (e->name_len == nlen && strncasecmp(h->buf + e->name_off, name, nlen) == 0)
            return e;
    }
    return NULL;
}

/* Call fn for each comma-separated, trimmed token of a value; stop when it returns true. */
static bool each_token(const char *v, size_t len, bool (*fn)(const char *, size_t, const void *),
                       const void *arg)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t start = i;
        while (i < len && v[i] != ',')
            i++;
        size_t end = i;
        while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
            end--;
        if (end > start && fn(v + start, end - start, arg))
            return true;
    }
    return false;
}

static bool token_is(const char *t, size_t len, const void *arg)
{
    const char *want = arg;
    return strlen(want) == len && strncasecmp(t, want, len) == 0;
}

bool st_headers_has_token(const struct st_headers *h, const char *name, const char *token)
{
    size_t nlen = strlen(name);
    for (size_t i = 0; i < h->n; i++) {
        const struct st_hdr *e = &h->v[i];
        if (e->name_len == nlen && strncasecmp(h->buf + e->name_off, name, nlen) == 0 &&
            each_token(st_hdr_value(h, e), e->value_len, token_is, token))
            return true;
    }
    return false;
}

static const char *const hop_by_hop[] = {
    "connection",          "keep-alive", "proxy-connection", "proxy-authenticate",
    "proxy-authorization", "te",         "trailer",          "transfer-encoding",
    "upgrade",             NULL,
};

struct name_span {
    const char *p;
    size_t len;
};

static bool token_is_span(const char *t, size_t len, const void *arg)
{
    const struct name_span *n = arg;
    return n->len == len && strncasecmp(t, n->p, len) == 0;
}

bool st_http_is_hop_by_hop(const struct st_headers *h, const struct st_hdr *e)
{
    const char *name = st_hdr_name(h, e);
    for (int i = 0; hop_by_hop[i]; i++)
        if (st_name_eq(name, e->name_len, hop_by_hop[i]))
            return true;
    struct name_span span = {name, e->name_len};
    for (size_t i = 0; i < h->n; i++) {
        const struct st_hdr *c = &h->v[i];
        if (st_name_eq(st_hdr_name(h, c), c->name_len, "connection") &&
            each_token(st_hdr_value(h, c), c->value_len, token_is_span, &span))
            return true;
    }
    return false;
}

static void add_header(struct st_sb *sb, const char *name, const char *value)
{
    st_sb_adds(sb, name);
    st_sb_add(sb, ": ", 2);
    st_sb_adds(sb, value);
    st_sb_add(sb, "\r\n", 2);
}

void st_http_add_status_line(struct st_sb *sb, int status, const char *reason, size_t reason_len)
{
    st_sb_addf(sb, "HTTP/1.1 %d ", status);
    if (reason && reason_len > 0)
        st_sb_add(sb, reason, reason_len);
    else
        st_sb_adds(sb, st_http_reason(status));
    st_sb_add(sb, "\r\n", 2);
}

void st_http_add_field(struct st_sb *sb, const struct st_headers *h, const struct st_hdr *e)
{
    st_sb_add(sb, st_hdr_name(h, e), e->name_len);
    st_sb_add(sb, ": ", 2);
    st_sb_add(sb, st_hdr_value(h, e), e->value_len);
    st_sb_add(sb, "\r\n", 2);
}

/* Request headers strata sets itself toward the origin. */
static const char *const request_replaced[] = {
    "x-forwarded-for", "x-forwarded-proto", "x-request-id", "traceparent",
    "expect",          "content-length",    "via",          NULL,
};

/* Request headers that change many origins' answers: not forwarded on a caching route unless keyed. */
static const char *const request_unkeyed[] = {
    "x-forwarded-host", "x-forwarded-scheme", "x-original-url", "x-rewrite-url",
    "x-http-method-override", "forwarded", NULL,
};

static bool is_replaced(const char *name, size_t len, const char *const *list)
{
    for (int i = 0; list[i]; i++)
        if (st_name_eq(name, len, list[i]))
            return true;
    return false;
}

/* Should this client header stay out of the request to the origin? */
static bool dropped(const struct st_forward_info *fw, const char *name, size_t len)
{
    if (!fw->keep_underscores && memchr(name, '_', len))
        return true;
    if (fw->drop_range && (st_name_eq(name, len, "range") || st_name_eq(name, len, "if-range")))
        return true;
    if (!fw->caching || !is_replaced(name, len, request_unkeyed))
        return false;
    for (size_t i = 0; i < fw->n_keyed; i++)
        if (st_name_eq(name, len, fw->keyed[i]))
            return false;
    return true;
}

void st_http_build_request(struct st_sb *sb, const struct st_request_head *req,
                           const struct st_forward_info *fw)
{
    const struct st_headers *h = req->headers;
    st_sb_adds(sb, req->method);
    st_sb_add(sb, " ", 1);
    st_sb_add(sb, req->target, req->target_len);
    st_sb_add(sb, " HTTP/1.1\r\n", 11);

    const struct st_hdr *xff = NULL, *via = NULL;
    for (size_t i = 0; i < h->n; i++) {
        const struct st_hdr *e = &h->v[i];
        const char *name = st_hdr_name(h, e);
        if (st_name_eq(name, e->name_len, "x-forwarded-for") && !xff)
            xff = e;
        if (st_name_eq(name, e->name_len, "via") && !via)
            via = e;
        if (is_replaced(name, e->name_len, request_replaced) || st_http_is_hop_by_hop(h, e) ||
            dropped(fw, name, e->name_len))
            continue;
        if (fw->replace_conditionals && (st_name_eq(name, e->name_len, "if-none-match") ||
                                         st_name_eq(name, e->name_len, "if-modified-since")))
            continue;
        st_http_add_field(sb, h, e);
    }
    if (fw->if_none_match) {
        st_sb_adds(sb, "If-None-Match: ");
        st_sb_add(sb, fw->if_none_match, fw->if_none_match_len);
        st_sb_add(sb, "\r\n", 2);
    }
    if (fw->if_modified_since)
        add_header(sb, "If-Modified-Since", fw->if_modified_since);
    st_sb_adds(sb, "X-Forwarded-For: ");
    if (xff && xff->value_len > 0) {
        st_sb_add(sb, st_hdr_value(h, xff), xff->value_len);
        st_sb_add(sb, ", ", 2);
    }
    st_sb_adds(sb, fw->client_ip);
    st_sb_add(sb, "\r\n", 2);
    add_header(sb, "X-Forwarded-Proto", "http");
    st_sb_adds(sb, "Via: ");
    if (via && via->value_len > 0) {
        st_sb_add(sb, st_hdr_value(h, via), via->value_len);
        st_sb_add(sb, ", ", 2);
    }
    st_sb_addf(sb, "1.%d strata\r\n", req->http_minor);
    add_header(sb, "X-Request-Id", fw->request_id);
    add_header(sb, "traceparent", fw->traceparent);
    if (fw->has_body && fw->chunked)
        add_header(sb, "Transfer-Encoding", "chunked");
    else if (fw->has_body)
        st_sb_addf(sb, "Content-Length: %llu\r\n", (unsigned long long)fw->content_length);
    st_sb_add(sb, "\r\n", 2);
}

/* Response headers strata sets itself toward the client. */
static const char *const response_replaced[] = {
    "content-length", "cache-status", "x-request-id", "cdn-cache-control", NULL,
};

void st_http_build_response(struct st_sb *sb, const struct st_response_info *ri,
                            const struct st_headers *origin)
{
    st_http_add_status_line(sb, ri->status, ri->reason, ri->reason_len);
    for (size_t i = 0; origin && i < origin->n; i++) {
        const struct st_hdr *e = &origin->v[i];
        if (is_replaced(st_hdr_name(origin, e), e->name_len, response_replaced) ||
            st_http_is_hop_by_hop(origin, e))
            continue;
        st_http_add_field(sb, origin, e);
    }
    if (ri->cache_status)
        add_header(sb, "Cache-Status", ri->cache_status);
    add_header(sb, "Via", "1.1 strata");
    if (ri->request_id)
        add_header(sb, "X-Request-Id", ri->request_id);
    if (ri->extra)
        st_sb_adds(sb, ri->extra);
    if (ri->framing == ST_FRAME_LENGTH ||
        (ri->framing == ST_FRAME_NONE && ri->send_length_on_none))
        st_sb_addf(sb, "Content-Length: %llu\r\n", (unsigned long long)ri->content_length);
    else if (ri->framing == ST_FRAME_CHUNKED)
        add_header(sb, "Transfer-Encoding", "chunked");
    add_header(sb, "Connection", ri->keep_alive ? "keep-alive" : "close");
    st_sb_add(sb, "\r\n", 2);
}

void st_http_build_interim(struct st_sb *sb, const struct st_response_head *h)
{
    st_http_add_status_line(sb, h->status, h->reason, h->reason_len);
    for (size_t i = 0; h->headers && i < h->headers->n; i++) {
        const struct st_hdr *e = &h->headers->v[i];
        if (!st_http_is_hop_by_hop(h->headers, e))
            st_http_add_field(sb, h->headers, e);
    }
    st_sb_add(sb, "\r\n", 2);
}

const char *st_http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 416: return "Range Not Satisfiable";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Unknown";
    }
}

static const char *error_text(int status)
{
    switch (status) {
    case 400: return "malformed request";
    case 404: return "no route for this request";
    case 408: return "request not received in time";
    case 413: return "request body too large";
    case 431: return "request header fields too large";
    case 501: return "not implemented";
    case 502: return "origin unreachable or sent a bad response";
    case 503: return "service unavailable";
    case 504: return "origin timed out";
    default: return st_http_reason(status);
    }
}

void st_http_build_error(struct st_sb *sb, const struct st_error_info *ei)
{
    struct st_sb body;
    st_sb_init(&body, 128);
    const char *detail = ei->detail ? ei->detail : error_text(ei->status);
    st_sb_adds(&body, "{\"error\":");
    st_sb_add_json_str(&body, detail, strlen(detail));
    st_sb_addf(&body, ",\"status\":%d", ei->status);
    if (ei->request_id)
        st_sb_addf(&body, ",\"request_id\":\"%s\"", ei->request_id);
    st_sb_adds(&body, "}\n");

    char date[30];
    st_http_date_format(ei->now_ms, date);
    st_sb_addf(sb, "HTTP/1.1 %d %s\r\n", ei->status, st_http_reason(ei->status));
    add_header(sb, "Date", date);
    add_header(sb, "Content-Type", "application/json");
    st_sb_addf(sb, "Content-Length: %zu\r\n", body.len);
    if (ei->request_id)
        add_header(sb, "X-Request-Id", ei->request_id);
    add_header(sb, "Cache-Status", ei->cache_status ? ei->cache_status : "strata; fwd=bypass");
    if (ei->retry_after_s)
        st_sb_addf(sb, "Retry-After: %u\r\n", ei->retry_after_s);
    if (ei->extra)
        st_sb_adds(sb, ei->extra);
    add_header(sb, "Via", "1.1 strata");
    add_header(sb, "Connection", ei->keep_alive ? "keep-alive" : "close");
    st_sb_add(sb, "\r\n", 2);
    if (!ei->head_only)
        st_sb_add(sb, body.p, body.len);
    st_sb_finish(&body);
}

int st_http_status_for_error(int err)
{
    switch (err) {
    case -ETIMEDOUT:
        return 504;
    case -EHOSTDOWN: /* the upstream's circuit breaker is open */
        return 503;
    default:
        return 502;
    }
}

const char *st_http_error_detail(int err)
{
    switch (err) {
    case -ETIMEDOUT: return "origin timed out";
    case -EHOSTDOWN: return "the origin is failing: its circuit breaker is open";
    case -EADDRNOTAVAIL: return "the origin's host name does not resolve";
    case -ECONNREFUSED: return "origin refused the connection";
    case -ECONNRESET: return "origin reset the connection";
    case -EPROTO: return "origin sent a response that is not valid HTTP";
    case -EMSGSIZE: return "origin's response head is too large";
    case -EPIPE:
    case -ECONNABORTED: return "origin closed the connection before answering";
    default: return "origin unreachable";
    }
}

/* Character classes of a Host value, looked up once per byte (this runs on every request). */
enum { C_REG_NAME = 2, C_HEX = 4 };

static const unsigned char char_class[256] = {
    ['0' ... '9'] = C_REG_NAME | C_HEX,
    ['a' ... 'f'] = C_REG_NAME | C_HEX,
    ['A' ... 'F'] = C_REG_NAME | C_HEX,
    ['g' ... 'z'] = C_REG_NAME,
    ['G' ... 'Z'] = C_REG_NAME,
    /* RFC 3986 unreserved / sub-delims */
    ['-'] = C_REG_NAME, ['.'] = C_REG_NAME, ['_'] = C_REG_NAME,
    ['~'] = C_REG_NAME, ['!'] = C_REG_NAME, ['$'] = C_REG_NAME,
    ['&'] = C_REG_NAME, ['\''] = C_REG_NAME, ['*'] = C_REG_NAME,
    ['+'] = C_REG_NAME, ['('] = C_REG_NAME, [')'] = C_REG_NAME,
    [','] = C_REG_NAME, [';'] = C_REG_NAME, ['='] = C_REG_NAME,
};

static bool is_class(char c, unsigned cls)
{
    return (char_class[(unsigned char)c] & cls) != 0;
}

/* The length of the longest prefix of p whose bytes are all of class cls. */
static size_t span_of(const char *p, size_t len, unsigned cls)
{
    const unsigned char *u = (const unsigned char *)p;
    size_t i = 0;
    while (i < len && (char_class[u[i]] & cls))
        i++;
    return i;
}



/* An IP-literal's inside: hex digits, colons and dots (IPv6, IPv4-mapped). */
static bool ip_literal_ok(const char *p, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!is_class(p[i], C_HEX) && p[i] != ':' && p[i] != '.')
            return false;
    return true;
}

bool st_http_host_valid(const char *p, size_t len)
{
    size_t i;
    if (len > 0 && p[0] == '[') {
        const char *close = memchr(p, ']', len);
        if (!close || !ip_literal_ok(p + 1, (size_t)(close - p - 1)))
            return false;
        i = (size_t)(close - p) + 1;
    } else {
        /* reg-name / IPv4: unreserved and sub-delims bytes, and %XX */
        i = span_of(p, len, C_REG_NAME);
        while (i < len && p[i] == '%') {
            if (i + 2 >= len || !is_class(p[i + 1], C_HEX) || !is_class(p[i + 2], C_HEX))
                return false;
            i += 3;
            i += span_of(p + i, len - i, C_REG_NAME);
        }
    }
    if (i == len)
        return true;
    if (p[i] != ':')
        return false;
    for (i++; i < len; i++)
        if ((unsigned char)(p[i] - '0') > 9)
            return false;
    return true;
}

const char *st_target_path(const char *target, size_t len, size_t *out_len)
{
    /* absolute-form: scheme://authority/path?query */
    const char *sep = len > 0 && target[0] != '/' ? memmem(target, len, "://", 3) : NULL;
    if (sep) {
        const char *auth = sep + 3;
        const char *end = target + len;
        const char *slash = memchr(auth, '/', (size_t)(end - auth));
        if (!slash) {
            *out_len = 1;
            return "/";
        }
        *out_len = (size_t)(end - slash);
        return slash;
    }
    *out_len = len;
    return target;
}
