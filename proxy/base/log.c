/*
 * log.c - formatting and writing log lines.
 *
 * The format and level are two process-wide words read with relaxed atomics,
 * so a reload can switch them while workers log.
 */
#include "base/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/buf.h"

static _Atomic int log_fmt = ST_LOG_TEXT;
static _Atomic int log_min = ST_LOG_INFO;
/* Where lines go: stderr, or a descriptor of our own that st_log_file repoints with dup2. */
static _Atomic int log_fd = STDERR_FILENO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void st_log_setup(enum st_log_format fmt, enum st_log_level min)
{
    atomic_store_explicit(&log_fmt, (int)fmt, memory_order_relaxed);
    atomic_store_explicit(&log_min, (int)min, memory_order_relaxed);
}

int st_log_file(const char *path)
{
    int cur = atomic_load(&log_fd);
    if (!path) { /* stderr: already, or repoint our descriptor at it */
        if (cur != STDERR_FILENO && dup3(STDERR_FILENO, cur, O_CLOEXEC) < 0)
            return -errno;
        return 0;
    }
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        return -errno;
    if (cur == STDERR_FILENO) {
        atomic_store(&log_fd, fd);
        return 0;
    }
    int rc = dup3(fd, cur, O_CLOEXEC) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

static void add_timestamp(struct st_sb *sb)
{
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    st_sb_addf(sb, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
               tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long)(tv.tv_usec / 1000));
}

static void emit(struct st_sb *sb)
{
    st_sb_add(sb, "\n", 1);
    size_t off = 0;
    while (off < sb->len) {
        ssize_t n = write(atomic_load_explicit(&log_fd, memory_order_relaxed), sb->p + off,
                          sb->len - off);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    st_sb_finish(sb);
}

void st_log(enum st_log_level lvl, const char *sub, const char *id, const char *fmt, ...)
{
    if ((int)lvl < atomic_load_explicit(&log_min, memory_order_relaxed))
        return;
    va_list ap;
    va_start(ap, fmt);
    char *msg = st_xvasprintf(fmt, ap);
    va_end(ap);

    struct st_sb sb;
    st_sb_init(&sb, 256);
    if (atomic_load_explicit(&log_fmt, memory_order_relaxed) == ST_LOG_JSON) {
        st_sb_adds(&sb, "{\"ts\":\"");
        add_timestamp(&sb);
        st_sb_addf(&sb, "\",\"level\":\"%s\",\"sub\":\"%s\"", level_names[lvl], sub);
        if (id) {
            st_sb_adds(&sb, ",\"req\":");
            st_sb_add_json_str(&sb, id, strlen(id));
        }
        st_sb_adds(&sb, ",\"msg\":");
        st_sb_add_json_str(&sb, msg, strlen(msg));
        st_sb_adds(&sb, "}");
    } else {
        add_timestamp(&sb);
        st_sb_addf(&sb, " %-5s %s", level_names[lvl], sub);
        if (id)
            st_sb_addf(&sb, " req=%s", id);
        st_sb_addf(&sb, " %s", msg);
    }
    free(msg);
    emit(&sb);
}

void st_log_access(const char *id, const char *client, const char *method, const char *target,
                   int status, unsigned long long bytes, double ms, const char *cache)
{
    struct st_sb sb;
    st_sb_init(&sb, 256);
    if (atomic_load_explicit(&log_fmt, memory_order_relaxed) == ST_LOG_JSON) {
        st_sb_adds(&sb, "{\"ts\":\"");
        add_timestamp(&sb);
        st_sb_adds(&sb, "\",\"level\":\"info\",\"sub\":\"access\",\"req\":");
        st_sb_add_json_str(&sb, id, strlen(id));
        st_sb_adds(&sb, ",\"client\":");
        st_sb_add_json_str(&sb, client, strlen(client));
        st_sb_adds(&sb, ",\"method\":");
        st_sb_add_json_str(&sb, method, strlen(method));
        st_sb_adds(&sb, ",\"target\":");
        st_sb_add_json_str(&sb, target, strlen(target));
        st_sb_addf(&sb, ",\"status\":%d,\"bytes\":%llu,\"ms\":%.3f,\"cache\":", status, bytes, ms);
        st_sb_add_json_str(&sb, cache, strlen(cache));
        /* Every line has a msg, access lines too: "<method> <target> <status>". */
        struct st_sb msg;
        st_sb_init(&msg, 128);
        st_sb_addf(&msg, "%s %s %d", method, target, status);
        st_sb_adds(&sb, ",\"msg\":");
        st_sb_add_json_str(&sb, msg.p, msg.len);
        st_sb_finish(&msg);
        st_sb_adds(&sb, "}");
    } else {
        add_timestamp(&sb);
        st_sb_addf(&sb, " info  access req=%s %s \"%s %s\" %d %llu %.3fms \"%s\"", id, client,
                   method, target, status, bytes, ms, cache);
    }
    emit(&sb);
}
