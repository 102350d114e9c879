/*
 * log.h - one line per event to stderr (or log.file), text or JSON.
 *
 * Every call names a level and a subsystem, and where there is one, the
 * request id (or connection id) the line is about. Lines are written with a
 * single write(2), so lines from different threads never interleave.
 *
 * Text:  2026-11-27T04:34:24.123Z warn  upstream req=9f2c... connect failed: ...
 * JSON:  {"ts":"...","level":"warn","sub":"upstream","req":"9f2c...","msg":"..."}
 */
#ifndef ST_LOG_H
#define ST_LOG_H

#include <stdbool.h>

enum st_log_format {
    ST_LOG_TEXT = 0,
    ST_LOG_JSON,
};

enum st_log_level {
    ST_LOG_DEBUG = 0,
    ST_LOG_INFO,
    ST_LOG_WARN,
    ST_LOG_ERROR,
};

/* Set process-wide format and minimum level (call before threads start, or on reload). */
void st_log_setup(enum st_log_format fmt, enum st_log_level min);

/*
 * Log to the file at path from now on (opened for appending, created 0640),
 * or back to stderr when path is NULL. Opening it again (logrotate's
 * SIGUSR1, after it moved the file) swaps the descriptor under every thread
 * at once with dup2: no line is lost or split. 0, or -errno (nothing changed).
 */
int st_log_file(const char *path);

/* id may be NULL. */
void st_log(enum st_log_level lvl, const char *sub, const char *id, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * One access-log line (when log.access is on): request id, client address,
 * method, target, status, bytes sent, duration, cache status.
 */
void st_log_access(const char *id, const char *client, const char *method, const char *target,
                   int status, unsigned long long bytes, double ms, const char *cache);

#endif
