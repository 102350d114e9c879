/*
 * router.h - picks the route for a request: the first route in file order
 * whose host (if set) and method set (if set) fit and whose pattern matches
 * the path.
 */
#ifndef ST_ROUTER_H
#define ST_ROUTER_H

#include <stddef.h>

#include "config/config.h"

/*
 * host: the Host header value (port ignored), may be NULL. target: the
 * request target in origin-form ("/path?query") or absolute-form.
 * Returns the route or NULL.
 */
const struct st_route_cfg *st_router_match(const struct st_config *cfg, const char *host,
                                           size_t host_len, unsigned method_bit,
                                           const char *target, size_t target_len);

#endif
