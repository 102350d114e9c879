/*
 * admin.h - the admin listener: health, readiness, /stats and /metrics.
 *
 * It runs on the main thread's loop, apart from the workers, so a saturated
 * data path never hides the health endpoints. Requests are small and
 * answered synchronously, in order.
 */
#ifndef ST_ADMIN_H
#define ST_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "base/buf.h"
#include "config/config.h"

struct st_admin;
struct st_server;

/* Bind and listen. Returns 0 or -errno (the address is in use, ...). */
int st_admin_start(uv_loop_t *loop, struct st_server *srv, const struct st_addr *addr,
                   struct st_admin **out);
/* Stop listening and close every admin connection. */
void st_admin_stop(struct st_admin *a);

/*
 * Endpoints answered by the layers above (main.c wires them: the
 * write-behind queue), possibly later: the connection reads nothing more
 * until st_admin_reply. A POST endpoint needs the admin token, as
 * /invalidate does; the others answer GET and HEAD without it.
 */
struct st_admin_reply;
struct st_admin_endpoint {
    const char *path;
    bool post;
    void (*handle)(void *arg, const char *body, size_t len, struct st_admin_reply *r);
    void *arg;
};

/* Serve eps (kept, not copied: they must outlive a). */
void st_admin_set_endpoints(struct st_admin *a, const struct st_admin_endpoint *eps, size_t n);
/*
 * The string value of "name" in a flat JSON object ({"key":"/p"}), into out;
 * false when absent or malformed.
 */
bool st_admin_json_string(const char *js, const char *name, struct st_sb *out);
/* The answer to an endpoint's request (once; JSON body). */
void st_admin_reply(struct st_admin_reply *r, int status, const char *json, size_t len);

#endif
