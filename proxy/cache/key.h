/*
 * key.h - the cache key of a request.
 *
 *   "<path>[?<query>]" 0x1f "<host>" [0x1f "<name>:<value>" per key.headers name]
 *
 * GET and HEAD share keys (only they are looked up). The path is taken as
 * sent; the query is normalized per the route's `key.query`: `all` keeps
 * every parameter, sorted (so "?b=2&a=1" and "?a=1&b=2" share an entry),
 * `none` drops the query, a list keeps only the named parameters. The host
 * is lowercased. Keys start with the path so that prefix invalidation
 * ("/api/v1/") is a range of the ordered index, whatever the host.
 */
#ifndef ST_CACHEKEY_H
#define ST_CACHEKEY_H

#include <stddef.h>

#include "base/buf.h"
#include "config/config.h"
#include "http/http.h"

#define ST_KEY_SEP '\x1f'

/*
 * Append the key of (target, host) under route r to sb (target may be
 * absolute-form). When the route names key.headers, each one's value in req
 * (lines joined by ", "; req may be NULL: none) follows as 0x1f
 * "<name>:<value>".
 */
void st_cache_key_build(struct st_sb *sb, const struct st_route_cfg *r, const char *target,
                        size_t target_len, const char *host, size_t host_len,
                        const struct st_headers *req);

#endif
