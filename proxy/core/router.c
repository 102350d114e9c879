/*
 * router.c - route selection by host, method and path pattern.
 */
#include "core/router.h"

#include "http/http.h"

#include <string.h>
#include <strings.h>

static bool host_fits(const char *want, const char *host, size_t len)
{
    if (!want)
        return true;
    if (!host)
        return false;
    /* Ignore a port, but not the inside of an IPv6 literal. */
    const char *colon = memrchr(host, ':', len);
    const char *bracket = memrchr(host, ']', len);
    if (colon && (!bracket || colon > bracket))
        len = (size_t)(colon - host);
    return strlen(want) == len && strncasecmp(want, host, len) == 0;
}

const struct st_route_cfg *st_router_match(const struct st_config *cfg, const char *host,
                                           size_t host_len, unsigned method_bit,
                                           const char *target, size_t target_len)
{
    size_t plen;
    const char *path = st_target_path(target, target_len, &plen);
    for (size_t i = 0; i < cfg->n_routes; i++) {
        const struct st_route_cfg *r = &cfg->routes[i];
        if (r->methods && !(r->methods & method_bit))
            continue;
        if (!host_fits(r->host, host, host_len))
            continue;
        if (st_pattern_match(&r->pattern, path, plen, NULL, NULL))
            return r;
    }
    return NULL;
}
