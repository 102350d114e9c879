/*
 * ids.c - request ids (X-Request-Id) and W3C trace context (traceparent):
 * validation of what a client sends, and new ones from a per-thread source.
 */
#include "http/ids.h"

#include <stdbool.h>
#include <string.h>

#include "base/rand.h"

bool st_request_id_valid(const char *p, size_t len)
{
    if (len == 0 || len > 128)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == ':' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

static bool is_lower_hex(const char *p, size_t len, bool *all_zero)
{
    *all_zero = true;
    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
        if (c != '0')
            *all_zero = false;
    }
    return true;
}

bool st_traceparent_valid(const char *p, size_t len)
{
    /* 00-<32 hex trace id>-<16 hex parent id>-<2 hex flags> */
    bool zero;
    if (len != 55 || p[2] != '-' || p[35] != '-' || p[52] != '-')
        return false;
    if (!is_lower_hex(p, 2, &zero) || (p[0] == 'f' && p[1] == 'f'))
        return false;
    if (!is_lower_hex(p + 3, 32, &zero) || zero)
        return false;
    if (!is_lower_hex(p + 36, 16, &zero) || zero)
        return false;
    return is_lower_hex(p + 53, 2, &zero);
}

static void hex64(uint64_t v, char *out, int digits)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = digits - 1; i >= 0; i--) {
        out[i] = hex[v & 15];
        v >>= 4;
    }
}

void st_request_id_new(uint64_t state[2], char out[33])
{
    hex64(st_rand64(state), out, 16);
    hex64(st_rand64(state), out + 16, 16);
    out[32] = '\0';
}

void st_request_id_next(const char prefix_hex[16], uint64_t *counter, char out[33])
{
    memcpy(out, prefix_hex, 16);
    hex64((*counter)++, out + 16, 16);
    out[32] = '\0';
}

void st_traceparent_new(uint64_t state[2], char out[56])
{
    memcpy(out, "00-", 3);
    hex64(st_rand64(state) | 1, out + 3, 16);
    hex64(st_rand64(state), out + 19, 16);
    out[35] = '-';
    hex64(st_rand64(state) | 1, out + 36, 16);
    memcpy(out + 52, "-01", 3);
    out[55] = '\0';
}
