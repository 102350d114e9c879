/*
 * qsbr.h - quiescent-state-based reclamation for the memory tier.
 *
 * Worker threads read the cache's hash chains without a lock and without
 * taking references (the hit path touches no shared cache line for
 * writing). Memory a writer unlinks (an entry, an old bucket array) is
 * therefore not freed at once but retired: it is freed once every
 * registered thread has either announced a newer epoch or gone offline.
 *
 * Protocol for a registered thread: st_qsbr_online() before reading shared
 * structures (it records the current epoch in the thread's own slot);
 * pointers so read stay valid until the thread calls st_qsbr_offline()
 * (each worker does so right before its loop blocks in epoll) — anything
 * kept longer must take a reference. Threads that never register (the
 * admin thread, tests) use the locked, reference-taking lookups instead.
 *
 * Every slot sits on its own cache line and is written only by its thread.
 */
#ifndef ST_QSBR_H
#define ST_QSBR_H

#include <stdbool.h>

#define ST_QSBR_MAX_THREADS 1024

/* Give the calling thread a slot (online). Returns false when none is left. */
bool st_qsbr_register(void);
/* Release the calling thread's slot. */
void st_qsbr_unregister(void);
/* Has the calling thread a slot? */
bool st_qsbr_registered(void);

/* The calling thread is about to read shared structures (idempotent, cheap). */
void st_qsbr_online(void);
/* The calling thread holds no pointer obtained while online. */
void st_qsbr_offline(void);

/* Free obj with free_fn(obj) once no thread can still see it. Any thread. */
void st_qsbr_retire(void *obj, void (*free_fn)(void *));
/* Free what can be freed now. Any thread; cheap when nothing is pending. */
void st_qsbr_reclaim(void);
/* Free everything retired (only when no thread reads any more: shutdown). */
void st_qsbr_drain_all(void);

#endif
