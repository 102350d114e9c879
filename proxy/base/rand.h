/*
 * rand.h - a per-thread pseudo-random source (xorshift128+; not for secrets).
 * The caller owns the two words of state (seed them non-zero); nothing here
 * is shared between threads.
 */
#ifndef ST_RAND_H
#define ST_RAND_H

#include <stdint.h>

/* The next 64 random bits of state. */
uint64_t st_rand64(uint64_t state[2]);

#endif
