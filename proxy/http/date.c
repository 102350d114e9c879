/*
 * date.c - HTTP-dates (RFC 9110 5.6.7): the IMF-fixdate, obsolete RFC 850 and
 * asctime forms, parsed to unix milliseconds and formatted back.
 *
 * Pure functions: nothing here reads a clock; the reference for two-digit
 * years is passed in.
 */
#include "http/date.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define REF_2025_MS 1735689600000LL /* 2025-01-01T00:00:00Z */

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static const char *const wkday[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const weekday[] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                      "Thursday", "Friday", "Saturday"};
static const char *const month[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* Exactly n digits at p; -1 otherwise. */
static int digits(const char *p, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

static bool lit(const char *p, const char *s)
{
    return strncmp(p, s, strlen(s)) == 0;
}

/* Index of the name in table that p starts with (case-sensitive, as the grammar), or -1. */
static int name_index(const char *p, size_t len, const char *const *table, int n, size_t *used)
{
    for (int i = 0; i < n; i++) {
        size_t l = strlen(table[i]);
        if (l <= len && memcmp(p, table[i], l) == 0) {
            *used = l;
            return i;
        }
    }
    return -1;
}

static bool is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int64_t to_ms(int year, int mon, int day, int hh, int mm, int ss)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (year < 1970 || mon < 0 || day < 1 || hh < 0 || hh > 23 || mm < 0 || mm > 59 || ss < 0 ||
        ss > 60)
        return -1;
    if (day > mdays[mon] + (mon == 1 && is_leap(year)))
        return -1;
    struct tm tm = {.tm_year = year - 1900,
                    .tm_mon = mon,
                    .tm_mday = day,
                    .tm_hour = hh,
                    .tm_min = mm,
                    .tm_sec = ss};
    time_t t = timegm(&tm);
    return t < 0 ? -1 : (int64_t)t * 1000;
}

/* "hh:mm:ss" at p into the three ints; false when malformed. */
static bool parse_clock(const char *p, int *hh, int *mm, int *ss)
{
    if (p[2] != ':' || p[5] != ':')
        return false;
    *hh = digits(p, 2);
    *mm = digits(p + 3, 2);
    *ss = digits(p + 6, 2);
    return *hh >= 0 && *mm >= 0 && *ss >= 0;
}

static int month_at(const char *p)
{
    size_t used;
    return name_index(p, 3, month, 12, &used);
}

/* "Sun, 06 Nov 1994 08:49:37 GMT" */
static int64_t parse_imf(const char *p, size_t len)
{
    size_t used;
    int hh, mm, ss;
    if (len != 29 || name_index(p, 3, wkday, 7, &used) < 0 || !lit(p + 3, ", ") || p[7] != ' ' ||
        p[11] != ' ' || p[16] != ' ' || !lit(p + 25, " GMT") || !parse_clock(p + 17, &hh, &mm, &ss))
        return -1;
    int mon = month_at(p + 8), day = digits(p + 5, 2), year = digits(p + 12, 4);
    return to_ms(year, mon, day, hh, mm, ss);
}

/* "Sunday, 06-Nov-94 08:49:37 GMT" */
static int64_t parse_rfc850(const char *p, size_t len, int64_t now_ms)
{
    size_t w;
    int hh, mm, ss;
    if (name_index(p, len, weekday, 7, &w) < 0 || len != w + 24)
        return -1;
    p += w;
    if (!lit(p, ", ") || p[4] != '-' || p[8] != '-' || p[11] != ' ' || !lit(p + 20, " GMT") ||
        !parse_clock(p + 12, &hh, &mm, &ss))
        return -1;
    int mon = month_at(p + 5), day = digits(p + 2, 2), yy = digits(p + 9, 2);
    if (yy < 0)
        return -1;
    time_t now = (time_t)(now_ms / 1000);
    struct tm ntm;
    gmtime_r(&now, &ntm);
    /* The latest year ending in yy that is at most 50 years after now. */
    int limit = ntm.tm_year + 1900 + 50;
    int year = limit - ((limit - yy) % 100 + 100) % 100;
    return to_ms(year, mon, day, hh, mm, ss);
}

/* "Sun Nov  6 08:49:37 1994" */
static int64_t parse_asctime(const char *p, size_t len)
{
    size_t used;
    int hh, mm, ss;
    if (len != 24 || name_index(p, 3, wkday, 7, &used) < 0 || p[3] != ' ' || p[7] != ' ' ||
        p[10] != ' ' || p[19] != ' ' || !parse_clock(p + 11, &hh, &mm, &ss))
        return -1;
    int day = p[8] == ' ' ? digits(p + 9, 1) : digits(p + 8, 2);
    return to_ms(digits(p + 20, 4), month_at(p + 4), day, hh, mm, ss);
}

/* An HTTP-date with "now" as the reference for two-digit years. */
int64_t st_http_date_parse_at(const char *s, size_t len, int64_t now_ms)
{
    while (len > 0 && is_ows(*s))
        s++, len--;
    while (len > 0 && is_ows(s[len - 1]))
        len--;
    if (len < 24)
        return -1;
    if (s[3] == ',')
        return parse_imf(s, len);
    if (s[3] == ' ')
        return parse_asctime(s, len);
    return parse_rfc850(s, len, now_ms < 0 ? REF_2025_MS : now_ms);
}

int64_t st_http_date_parse(const char *s, size_t len)
{
    return st_http_date_parse_at(s, len, REF_2025_MS);
}

void st_http_date_format(int64_t ms, char out[30])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, 30, "%s, %02d %s %04d %02d:%02d:%02d GMT", wkday[tm.tm_wday], tm.tm_mday,
             month[tm.tm_mon], (tm.tm_year + 1900) % 10000, tm.tm_hour, tm.tm_min, tm.tm_sec);
}
