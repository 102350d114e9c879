/*
 * fuzz_conn.c - libFuzzer target: any bytes as what a client sends on one
 * connection, through the real client connection state machine
 * (http/conn.c: llhttp callbacks, limits, pipelining, errors), on a real
 * loopback socket and libuv loop. A stub host answers every request whose
 * head completes with a small 200, so pipelined requests follow each other.
 *
 * Invariants checked: every connection ends (the loop closes it within a
 * bounded number of turns), every answer strata writes starts with
 * "HTTP/1.1 ", no request is handed over with an empty method or a target
 * that does not start with '/' (or is absolute-form or "*"), and nothing
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
#include "http/conn.h"

static uv_loop_t loop;
static uv_tcp_t listener;
static struct st_conn_host host;
static struct st_stats stats;
static int open_conns;
static const struct st_limits limits = {
    .max_header_bytes = 8192,
    .max_body = 65536,
    .header_timeout_ms = 1000,
    .idle_timeout_ms = 1000,
    .max_connections = 100,
};

struct stream {
    struct st_conn *c;
};

static bool admit(struct st_conn_host *h, const char *client_ip)
{
    (void)h;
    (void)client_ip;
    open_conns++;
    return true;
}

static void release(struct st_conn_host *h, const char *client_ip)
{
    (void)h;
    (void)client_ip;
}

static void freed(struct st_conn_host *h)
{
    (void)h;
    open_conns--;
}

static void settings_hold(struct st_conn_host *h, void *s)
{
    (void)h, (void)s;
}

static void settings_put(struct st_conn_host *h, void *s)
{
    (void)h, (void)s;
}

static const struct st_limits *limits_of(void *s)
{
    (void)s;
    return &limits;
}

static void *request(struct st_conn_host *h, struct st_conn *c, void *settings,
                     const struct st_request_info *rq)
{
    (void)h, (void)settings;
    const char *t = rq->req.target;
    if (!rq->req.method[0] || rq->req.target_len == 0 ||
        (t[0] != '/' && !strstr(t, "://") && strcmp(t, "*") != 0))
        abort(); /* conn handed over a request its checks should have refused */
    struct stream *st = malloc(sizeof(*st));
    st->c = c;
    return st;
}

static void start(void *stream)
{
    struct stream *st = stream;
    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    struct st_wreq *w = st_wreq_new();
    st_wreq_add_static(w, ok, sizeof(ok) - 1);
    st_conn_send(st->c, w);
    st_conn_stream_done(st->c, true);
    free(st);
}

static void request_body(void *stream, struct st_rbuf *b, const char *p, size_t len)
{
    (void)stream, (void)b, (void)p, (void)len;
}

static void request_end(void *stream)
{
    (void)stream;
}

static void drained(void *stream)
{
    (void)stream;
}

static bool gone(void *stream)
{
    (void)stream;
    return false;
}

static const struct st_conn_host_ops ops = {
    .admit = admit,
    .release = release,
    .freed = freed,
    .settings_hold = settings_hold,
    .settings_put = settings_put,
    .limits = limits_of,
    .request = request,
    .start = start,
    .request_body = request_body,
    .request_end = request_end,
    .drained = drained,
    .gone = gone,
};

static void on_connection(uv_stream_t *l, int status)
{
    if (status == 0)
        st_conn_accept(&host, l);
}

static int port;

static void setup(void)
{
    uv_loop_init(&loop);
    uv_tcp_init(&loop, &listener);
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    if (uv_tcp_bind(&listener, (const struct sockaddr *)&a, 0) != 0 ||
        uv_listen((uv_stream_t *)&listener, 64, on_connection) != 0)
        abort();
    int len = sizeof(a);
    uv_tcp_getsockname(&listener, (struct sockaddr *)&a, &len);
    port = ntohs(a.sin_port);
    host = (struct st_conn_host){.ops = &ops, .loop = &loop, .stats = &stats, .settings = &host};
    memcpy(host.id_prefix, "0123456789abcdef", 16);
}

/* Every answer strata wrote starts with a status line (the stub's are well-formed). */
static void check_answers(const char *out, size_t len)
{
    if (len > 0 && (len < 9 || memcmp(out, "HTTP/1.1 ", 9) != 0))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!port)
        setup();
    /*
     * A new source address in 127/8 for each input: hundreds of thousands of
     * connections would otherwise run out of ports (TIME_WAIT).
     */
    static uint32_t n_inputs;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in src = {.sin_family = AF_INET,
                              .sin_addr.s_addr = htonl(0x7f000002u + n_inputs++ % 0xfffff0u)};
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || bind(fd, (struct sockaddr *)&src, sizeof(src)) != 0 ||
        connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        if (fd >= 0)
            close(fd);
        return 0; /* the machine's trouble, not strata's */
    }
    static char out[1 << 16];
    size_t out_len = 0, sent = 0;
    bool eof = false;
    /*
     * Bounded in time, not in loop turns (a busy machine turns slowly): the
     * connection must end within 5 s (answers, errors, or the 1 s timeouts).
     */
    uint64_t deadline = uv_hrtime() + 5000000000ull;
    for (int turn = 0; !(eof && open_conns == 0) && uv_hrtime() < deadline; turn++) {
        if (sent < size) {
            ssize_t n = send(fd, data + sent, size - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n > 0)
                sent += (size_t)n;
            else if (n < 0 && errno != EAGAIN)
                sent = size; /* strata closed on us: fine */
            if (sent == size)
                shutdown(fd, SHUT_WR);
        }
        uv_run(&loop, UV_RUN_NOWAIT);
        char buf[4096];
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n > 0 && out_len + (size_t)n <= sizeof(out)) {
            memcpy(out + out_len, buf, (size_t)n);
            out_len += (size_t)n;
        } else if (n == 0 || (n < 0 && errno != EAGAIN)) {
            eof = true;
        }
        if (!eof && turn > 1000)
            uv_run(&loop, UV_RUN_ONCE); /* wait for the next event: a read, a timer */
    }
    close(fd);
    if (!eof) {
        abort(); /* the connection never ended */
    }
    while (open_conns > 0)
        uv_run(&loop, UV_RUN_ONCE);
    check_answers(out, out_len);
    return 0;
}
