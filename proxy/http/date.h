/*
 * date.h - HTTP-dates to and from unix milliseconds.
 */
#ifndef ST_HTTP_DATE_H
#define ST_HTTP_DATE_H

#include <stddef.h>
#include <stdint.h>

/*
 * An HTTP-date (IMF-fixdate, obsolete RFC 850 and asctime forms) to unix
 * milliseconds. Returns -1 for anything invalid.
 */
int64_t st_http_date_parse(const char *s, size_t len);
/*
 * The same with now_ms as the reference for two-digit RFC 850 years (a year
 * more than 50 years after now is read as the past century, RFC 9110 5.6.7).
 * st_http_date_parse uses a fixed reference of 2025-01-01.
 */
int64_t st_http_date_parse_at(const char *s, size_t len, int64_t now_ms);
/* Format unix milliseconds as an IMF-fixdate; out must hold 30 bytes. */
void st_http_date_format(int64_t ms, char out[30]);

#endif
