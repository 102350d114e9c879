/*
 * flight.h - single-flight: concurrent misses for one key share one fetch.
 *
 * The first caller to join a key's flight leads it (fetches, then calls
 * st_flight_done exactly once); later callers park a waiter. When the leader
 * is done, every parked waiter gets the result and its wake callback is
 * called, on the leader's thread, outside any lock. What waking means (post
 * the waiter to its worker's loop) is the caller's business: this module
 * knows no workers, loops or exchanges (Varnish's busy object, without the
 * store waking sessions).
 *
 * Locking: one mutex per flight shard (by key hash); waiters are owned by
 * the flight from join until their wake callback is called.
 */
#ifndef ST_FLIGHT_H
#define ST_FLIGHT_H

#include <stddef.h>
#include <stdint.h>

struct st_flights;

/* How a flight ended, for its waiters. */
enum st_flight_result {
    ST_FLIGHT_STORED = 0,  /* an entry was stored: look it up */
    ST_FLIGHT_UNCACHEABLE, /* the answer was not stored: fetch for yourself */
    ST_FLIGHT_FAILED,      /* the origin failed: answer stale or an error */
    ST_FLIGHT_SHARED,      /* the shared tier had it and it is now stored: look it up */
    ST_FLIGHT_LEAD,        /* (to one waiter, from a shared tier) fetch, then end the flight */
};

struct st_flight_waiter;
typedef void (*st_flight_wake_cb)(struct st_flight_waiter *w);

struct st_flight_waiter {
    struct st_flight_waiter *next; /* in the flight; free for the owner once woken */
    st_flight_wake_cb wake;        /* set by the owner before joining */
    enum st_flight_result result;  /* set before wake is called */
    int status; /* with ST_FLIGHT_FAILED: the error status; with SHARED: 1 for the caller
                   that asked first (it waited for the shared tier, not for another request) */
};

enum st_flight_role { ST_FLIGHT_LEADER, ST_FLIGHT_PARKED };

struct st_flights *st_flights_create(void);
/* Every flight must be done (no waiter left). NULL is a no-op. */
void st_flights_destroy(struct st_flights *f);

/*
 * Join the flight for key: the first caller leads (and must call
 * st_flight_done exactly once); later callers are parked with their waiter
 * (the flight owns it until it is woken). With waiter NULL, a caller that is
 * not the leader gets PARKED without waiting (a background refresh that is
 * already running).
 */
enum st_flight_role st_flight_join(struct st_flights *f, uint64_t hash, const char *key,
                                   size_t key_len, struct st_flight_waiter *waiter);
/* End the flight: every parked waiter gets result and status and is woken. */
void st_flight_done(struct st_flights *f, uint64_t hash, const char *key, size_t key_len,
                    enum st_flight_result result, int status);

#endif
