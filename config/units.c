/*
 * units.c - the value syntaxes of the config file: durations, sizes,
 * percentages, listen/server addresses, ${VAR} expansion, strategy and
 * method names.
 *
 * Every parser here is strict: no spaces, no signs, no fractions, no
 * overflow (rejected, never wrapped), and the whole string must be consumed.
 * None of them looks anything up over the network.
 */
#include "config/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"

/* Leading decimal digits of s -> *v; returns the count, or 0 (none, or overflow). */
static size_t parse_digits(const char *s, uint64_t *v)
{
    size_t i = 0;
    *v = 0;
    for (; s[i] >= '0' && s[i] <= '9'; i++) {
        uint64_t d = (uint64_t)(s[i] - '0');
        if (*v > (UINT64_MAX - d) / 10)
            return 0;
        *v = *v * 10 + d;
    }
    return i;
}

struct unit {
    const char *name;
    uint64_t mult;
};

/* "<digits><unit>" with unit from the table, or a bare "0". */
static int parse_with_units(const char *s, const struct unit *units, uint64_t *out)
{
    uint64_t v;
    size_t n = parse_digits(s, &v);
    if (n == 0)
        return -EINVAL;
    if (s[n] == '\0') {
        if (v != 0)
            return -EINVAL;
        *out = 0;
        return 0;
    }
    for (const struct unit *u = units; u->name; u++) {
        if (strcmp(s + n, u->name) != 0)
            continue;
        if (v > UINT64_MAX / u->mult)
            return -EINVAL;
        *out = v * u->mult;
        return 0;
    }
    return -EINVAL;
}

int st_parse_duration(const char *s, uint64_t *ms)
{
    static const struct unit units[] = {
        {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {NULL, 0},
    };
    return parse_with_units(s, units, ms);
}

int st_parse_size(const char *s, uint64_t *bytes)
{
    static const struct unit units[] = {
        {"B", 1}, {"KiB", 1ull << 10}, {"MiB", 1ull << 20}, {"GiB", 1ull << 30}, {NULL, 0},
    };
    return parse_with_units(s, units, bytes);
}

int st_parse_percent(const char *s, unsigned *pct)
{
    uint64_t v;
    size_t n = parse_digits(s, &v);
    if (n == 0 || v > 100)
        return -EINVAL;
    if (s[n] != '\0' && strcmp(s + n, "%") != 0)
        return -EINVAL;
    *pct = (unsigned)v;
    return 0;
}

static int parse_port(const char *s, in_port_t *port)
{
    uint64_t v;
    size_t n = parse_digits(s, &v);
    if (n == 0 || s[n] != '\0' || v < 1 || v > 65535)
        return -EINVAL;
    *port = htons((in_port_t)v);
    return 0;
}

static int parse_host6(const char *host, size_t len, in_port_t port, struct st_addr *out)
{
    char buf[INET6_ADDRSTRLEN];
    struct sockaddr_in6 *sa = (struct sockaddr_in6 *)&out->sa;
    if (len >= sizeof(buf))
        return -EINVAL;
    memcpy(buf, host, len);
    buf[len] = '\0';
    sa->sin6_family = AF_INET6;
    sa->sin6_port = port;
    if (inet_pton(AF_INET6, buf, &sa->sin6_addr) != 1)
        return -EINVAL;
    out->len = sizeof(*sa);
    return 0;
}

static int parse_host4(const char *host, size_t len, in_port_t port, struct st_addr *out)
{
    char buf[INET_ADDRSTRLEN];
    struct sockaddr_in *sa = (struct sockaddr_in *)&out->sa;
    if (len >= sizeof(buf))
        return -EINVAL;
    memcpy(buf, host, len);
    buf[len] = '\0';
    if (strcmp(buf, "localhost") == 0)
        strcpy(buf, "127.0.0.1");
    sa->sin_family = AF_INET;
    sa->sin_port = port;
    if (inet_pton(AF_INET, buf, &sa->sin_addr) != 1)
        return -EINVAL;
    out->len = sizeof(*sa);
    return 0;
}

int st_parse_addr(const char *s, struct st_addr *out)
{
    struct st_addr a;
    in_port_t port;
    const char *colon = strrchr(s, ':');
    memset(&a, 0, sizeof(a));
    if (!colon || parse_port(colon + 1, &port) < 0)
        return -EINVAL;
    int rc;
    if (s[0] == '[') {
        if (colon == s || colon[-1] != ']')
            return -EINVAL;
        rc = parse_host6(s + 1, (size_t)(colon - s - 2), port, &a);
    } else {
        rc = parse_host4(s, (size_t)(colon - s), port, &a);
    }
    if (rc < 0)
        return rc;
    a.text = st_xstrdup(s);
    *out = a;
    return 0;
}

static bool is_host_name(const char *h, size_t len)
{
    if (len == 0 || len > 253 || h[0] == '-' || h[0] == '.')
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = h[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_'))
            return false;
    }
    return true;
}

int st_parse_server_addr(const char *s, struct st_addr *out)
{
    in_port_t port;
    const char *colon = strrchr(s, ':');
    /* "localhost" is a name here: it may have an IPv6 address too. */
    bool local = colon && (size_t)(colon - s) == 9 && !strncmp(s, "localhost", 9);
    if (!local && st_parse_addr(s, out) == 0)
        return 0;
    if (!colon || parse_port(colon + 1, &port) < 0 || !is_host_name(s, (size_t)(colon - s)))
        return -EINVAL;
    /* All digits and dots is a malformed IPv4 address, not a name. */
    if (strspn(s, "0123456789.") == (size_t)(colon - s))
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    out->text = st_xstrdup(s);
    out->host = st_xstrndup(s, (size_t)(colon - s));
    out->port = ntohs(port);
    return 0;
}

bool st_addr_is_loopback(const struct st_addr *a)
{
    if (a->sa.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&a->sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (a->sa.ss_family == AF_INET6)
        return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)&a->sa)->sin6_addr);
    return false;
}

void st_addr_finish(struct st_addr *a)
{
    free(a->text);
    free(a->host);
    memset(a, 0, sizeof(*a));
}

static bool is_var_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_var_char(char c)
{
    return is_var_start(c) || (c >= '0' && c <= '9');
}

struct sbuf {
    char *p;
    size_t len, cap;
};

static void sbuf_add(struct sbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->p = st_xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

/*
 * Expands one "${...}" whose name starts at `name`; returns a pointer just
 * past the closing '}', or NULL (unset without default: -ENOENT, malformed:
 * -EINVAL, in *rc).
 */
static const char *expand_var(const char *name, struct sbuf *b, int *rc)
{
    size_t n = 0;
    *rc = -EINVAL;
    if (!is_var_start(name[0]))
        return NULL;
    while (is_var_char(name[n]))
        n++;
    const char *def = NULL, *close = name + n;
    if (strncmp(close, ":-", 2) == 0) {
        def = close + 2;
        close = strchr(def, '}');
    }
    if (!close || *close != '}')
        return NULL;
    char *var = st_xstrndup(name, n);
    const char *val = getenv(var);
    free(var);
    if (def && (!val || !*val))
        sbuf_add(b, def, (size_t)(close - def));
    else if (val)
        sbuf_add(b, val, strlen(val));
    else {
        *rc = -ENOENT;
        return NULL;
    }
    *rc = 0;
    return close + 1;
}

int st_expand_env(const char *in, char **out, const char **bad)
{
    struct sbuf b = {NULL, 0, 0};
    const char *s = in;
    sbuf_add(&b, "", 0);
    while (*s) {
        const char *dollar = strchr(s, '$');
        if (!dollar) {
            sbuf_add(&b, s, strlen(s));
            break;
        }
        sbuf_add(&b, s, (size_t)(dollar - s));
        if (dollar[1] == '$' || dollar[1] != '{') {
            sbuf_add(&b, "$", 1);
            s = dollar + (dollar[1] == '$' ? 2 : 1);
            continue;
        }
        int rc;
        s = expand_var(dollar + 2, &b, &rc);
        if (!s) {
            free(b.p);
            *bad = dollar + 2;
            return rc;
        }
    }
    *out = b.p;
    return 0;
}

static const char *const strategy_names[] = {
    [ST_STRATEGY_BYPASS] = "bypass",
    [ST_STRATEGY_CACHE_ASIDE] = "cache-aside",
    [ST_STRATEGY_WRITE_THROUGH] = "write-through",
    [ST_STRATEGY_WRITE_BEHIND] = "write-behind",
};

int st_strategy_from_name(const char *name, enum st_strategy_kind *out)
{
    for (size_t i = 0; i < sizeof(strategy_names) / sizeof(strategy_names[0]); i++) {
        if (strcmp(name, strategy_names[i]) == 0) {
            *out = (enum st_strategy_kind)i;
            return 0;
        }
    }
    return -EINVAL;
}

const char *st_strategy_name(enum st_strategy_kind k)
{
    if ((size_t)k >= sizeof(strategy_names) / sizeof(strategy_names[0]))
        return "unknown";
    return strategy_names[k];
}

unsigned st_method_bit_from_name(const char *name, size_t len)
{
    static const struct {
        const char *name;
        unsigned bit;
    } methods[] = {
        {"GET", ST_M_GET},         {"HEAD", ST_M_HEAD},   {"POST", ST_M_POST},
        {"PUT", ST_M_PUT},         {"PATCH", ST_M_PATCH}, {"DELETE", ST_M_DELETE},
        {"OPTIONS", ST_M_OPTIONS},
    };
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (strlen(methods[i].name) == len && memcmp(methods[i].name, name, len) == 0)
            return methods[i].bit;
    return ST_M_OTHER;
}
