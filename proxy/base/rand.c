/*
 * rand.c - a per-thread pseudo-random source (xorshift128+): ids, jitter,
 * skip-list heights. Fast, not for secrets.
 */
#include "base/rand.h"

uint64_t st_rand64(uint64_t s[2])
{
    /* xorshift128+ */
    uint64_t x = s[0];
    uint64_t const y = s[1];
    s[0] = y;
    x ^= x << 23;
    s[1] = x ^ y ^ (x >> 17) ^ (y >> 26);
    return s[1] + y;
}
