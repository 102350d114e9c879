/*
 * client.h - a worker's client connections serving exchanges (client.c).
 */
#ifndef ST_CLIENT_H
#define ST_CLIENT_H

struct st_worker;

/* Set up w->clients, the host of w's client connections; w->gen must be set. */
void st_client_host_init(struct st_worker *w);

#endif
