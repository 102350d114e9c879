#include "bench_entry.h"

struct st_entry *bench_make_entry(const char *key, size_t key_len, const char *body,
                                        size_t body_len)
{
    struct st_headers req, resp;
    st_headers_init(&req);
    st_headers_init(&resp);
    st_headers_name_piece(&resp, "Content-Type", 12);
    st_headers_value_piece(&resp, "application/json", 16);
    st_headers_value_done(&resp);
    struct st_entry_init in = {
        .key = key, .key_len = key_len, .req = &req, .resp = &resp, .status = 200,
        .body = body, .body_len = body_len, .lifetime_ms = 1 << 30,
    };
    struct st_entry *e = st_entry_new(&in);
    st_headers_finish(&req);
    st_headers_finish(&resp);
    return e;
}
