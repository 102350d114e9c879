/*
 * fuzz_upstream.c - libFuzzer target: any bytes as what an origin answers,
 * through the real origin client (origin/upstream.c: llhttp response
 * parsing, framing, 1xx, the head limit, keep-alive reuse) on a loopback
 * socket and libuv loop. The target plays the origin: it accepts strata's
 * connection, reads the request, writes the input and closes.
 *
 * Invariants checked: every exchange ends exactly once (on_end or on_error),
 * nothing comes after that, the body passed on is never longer than the
 * Content-Length a head declared, a head comes before any body, and nothing
 * crashes, leaks or reads out of bounds (ASan/UBSan/LeakSanitizer).
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "base/stats.h"
#include "config/config.h"
#include "origin/servers.h"
#include "origin/upstream.h"

static uv_loop_t loop;
static int origin_fd = -1;
static struct st_upstream_cfg cfg;
static struct st_stats stats;

struct result {
    int ends; /* on_end + on_error calls */
    bool head;
    bool has_length;
    uint64_t length, body;
};

static void on_interim(void *user, const struct st_response_head *h)
{
    struct result *r = user;
    if (r->head || r->ends || h->status >= 200)
        abort();
}

static void on_head(void *user, const struct st_response_head *h)
{
    struct result *r = user;
    if (r->head || r->ends || h->status < 200 || h->status > 999)
        abort();
    r->head = true;
    r->has_length = h->has_length;
    r->length = h->content_length;
}

static void on_body(void *user, struct st_rbuf *b, const char *p, size_t len)
{
    struct result *r = user;
    (void)b, (void)p;
    if (!r->head || r->ends)
        abort();
    r->body += len;
    if (r->has_length && r->body > r->length)
        abort(); /* more body than the head declared was passed on */
}

static void on_flush(void *user)
{
    (void)user;
}

static void on_end(void *user)
{
    struct result *r = user;
    if (!r->head || r->ends++)
        abort();
}

static void on_error(void *user, int err, enum st_upstream_retry retry)
{
    struct result *r = user;
    (void)retry;
    if (err >= 0 || r->ends++)
        abort();
}

static void on_drain(void *user)
{
    (void)user;
}

static const struct st_upstream_cbs cbs = {
    .on_interim = on_interim,
    .on_head = on_head,
    .on_body = on_body,
    .on_flush = on_flush,
    .on_end = on_end,
    .on_error = on_error,
    .on_drain = on_drain,
};

static void setup(void)
{
    uv_loop_init(&loop);
    origin_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (bind(origin_fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(origin_fd, 16) != 0 ||
        getsockname(origin_fd, (struct sockaddr *)&a, &len) != 0)
        abort();
    static struct st_addr server;
    memcpy(&server.sa, &a, sizeof(a));
    server.len = sizeof(a);
    server.text = "fuzz-origin";
    cfg = (struct st_upstream_cfg){.name = "fuzz", .servers = &server, .n_servers = 1,
                                   .connect_timeout_ms = 1000, .timeout_ms = 1000};
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (origin_fd < 0)
        setup();
    static struct st_servers *servers;
    if (!servers)
        servers = st_servers_create(&cfg);
    struct st_upstream_pool *pool = st_upstream_pool_create(&loop, &cfg, &stats, NULL, servers);
    struct result r = {0};
    struct st_upstream_conn *up = st_upstream_acquire(pool, &cbs, &r, true, "fuzz");
    struct st_wreq *w = st_wreq_new();
    static const char req[] = "GET /f HTTP/1.1\r\nHost: o\r\n\r\n";
    st_wreq_add_static(w, req, sizeof(req) - 1);
    st_upstream_write(up, w);
    st_upstream_request_done(up);
    /* Play the origin: accept, read the request, answer with the input, close. */
    int c = -1;
    for (int turn = 0; turn < 1000 && c < 0; turn++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        c = accept4(origin_fd, NULL, NULL, SOCK_NONBLOCK);
    }
    if (c < 0)
        abort();
    size_t sent = 0;
    bool closed = false;
    for (int turn = 0; turn < 200000 && !r.ends; turn++) {
        char buf[4096];
        (void)recv(c, buf, sizeof(buf), MSG_DONTWAIT); /* the request; nobody checks it */
        if (sent < size) {
            ssize_t n = send(c, data + sent, size - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n > 0)
                sent += (size_t)n;
            else if (n < 0 && errno != EAGAIN)
                sent = size;
        } else if (!closed) {
            close(c);
            closed = true;
        }
        uv_run(&loop, closed ? UV_RUN_ONCE : UV_RUN_NOWAIT);
    }
    if (!closed)
        close(c);
    if (r.ends != 1)
        abort(); /* the exchange never ended */
    st_upstream_pool_retire(pool);
    for (int i = 0; i < 100; i++)
        uv_run(&loop, UV_RUN_NOWAIT); /* let the closed connections' handles go */
    return 0;
}
