/*
 * clock.h - the wall clock, in unix milliseconds (HTTP dates, entry ages).
 * Timeouts use the event loop's monotonic clock instead.
 */
#ifndef ST_CLOCK_H
#define ST_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t st_clock_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
