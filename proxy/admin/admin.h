/*
 * admin.h - the admin listener: health, readiness, /stats and /metrics.
 *
 * It runs on the main thread's loop, apart from the workers, so a saturated
 * data path never hides the health endpoints. Requests are small and
 * answered synchronously, in order.
 */
#ifndef ST_ADMIN_H
#define ST_ADMIN_H

#include <uv.h>

#include "config/config.h"

struct st_admin;
struct st_server;

/* Bind and listen. Returns 0 or -errno (the address is in use, ...). */
int st_admin_start(uv_loop_t *loop, struct st_server *srv, const struct st_addr *addr,
                   struct st_admin **out);
/* Stop listening and close every admin connection. */
void st_admin_stop(struct st_admin *a);

#endif
