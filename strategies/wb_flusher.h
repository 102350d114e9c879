/*
 * wb_flusher.h - the write-behind flusher: the service that sends queued
 * writes to the origin (one per instance, on its first worker thread).
 *
 * Partitions and order: the queue is ST_WB_PARTITIONS streams (wb_queue.h).
 * Each is flushed by one instance at a time, its owner, which holds a lease
 * of claim_after in Redis and renews it every third of that. An owner that
 * dies (or stops answering) loses the lease; another instance takes the
 * partition and claims the writes the dead one had read but not finished
 * (XAUTOCLAIM), then reads on. Within a partition a write waits while an
 * earlier write to its key is unfinished, so each key's writes reach the
 * origin in the order they were accepted.
 *
 * A write is sent once flush_delay has passed since it was queued. One
 * superseded by a later PUT or DELETE to its key still in the queue is
 * never sent (coalesced). Each carries Idempotency-Key: <write id>.
 *   2xx               done: the cached value becomes an ordinary entry of
 *                     the route's tier, every instance drops its dirty copy
 *   5xx, 408, 425, 429, timeout, no connection
 *                     again after a backoff (exponential, with jitter), up
 *                     to max_retries times
 *   other 4xx, or retries exhausted
 *                     dead letter (with the origin's answer); the cached
 *                     value is dropped everywhere; a log line
 * A step that Redis does not confirm is tried again; nothing is forgotten
 * in memory that Redis still holds.
 */
#ifndef ST_WB_FLUSHER_H
#define ST_WB_FLUSHER_H

#include "core/strategy.h"

void *st_wb_flusher_start(struct st_strategy_host *h);
void st_wb_flusher_stop(void *flusher);

#endif
