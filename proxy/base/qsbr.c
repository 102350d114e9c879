/*
 * qsbr.c - epochs, per-thread slots and the retire list.
 *
 * epoch: a global counter, advanced by every retire. A thread's slot holds
 * the epoch it saw when it last came online, or 0 when offline. An object
 * retired at epoch E (the value after the advance) may be freed when every
 * slot is 0 or >= E: such a thread came online after the object was
 * unlinked, so it cannot have reached it. The slot store and the epoch
 * load use sequential consistency so a reader's announcement cannot be
 * reordered after its reads of the chains.
 */
#include "base/qsbr.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <uv.h>

#include "base/alloc.h"

struct slot {
    _Alignas(64) _Atomic uint64_t seen; /* 0 = offline */
    _Atomic bool used;
};

struct retired {
    struct retired *next;
    void *obj;
    void (*free_fn)(void *);
    uint64_t epoch;
};

static struct slot slots[ST_QSBR_MAX_THREADS];
static _Atomic uint64_t epoch = 1;
static _Thread_local int my_slot = -1;
static _Thread_local bool my_online;

static uv_once_t once = UV_ONCE_INIT;
static uv_mutex_t retire_lock;
static struct retired *retire_list; /* under retire_lock */
static _Atomic bool pending;

static void init_lock(void)
{
    uv_mutex_init(&retire_lock);
}

bool st_qsbr_register(void)
{
    uv_once(&once, init_lock);
    for (int i = 0; i < ST_QSBR_MAX_THREADS; i++) {
        bool expected = false;
        if (atomic_compare_exchange_strong(&slots[i].used, &expected, true)) {
            my_slot = i;
            my_online = false;
            st_qsbr_online();
            return true;
        }
    }
    return false;
}

void st_qsbr_unregister(void)
{
    if (my_slot < 0)
        return;
    atomic_store(&slots[my_slot].seen, 0);
    atomic_store(&slots[my_slot].used, false);
    my_slot = -1;
    my_online = false;
}

bool st_qsbr_registered(void)
{
    return my_slot >= 0;
}

void st_qsbr_online(void)
{
    if (my_slot < 0 || my_online)
        return;
    my_online = true;
    atomic_store(&slots[my_slot].seen, atomic_load(&epoch));
    /* The announcement is visible before any read of the shared structures. */
    atomic_thread_fence(memory_order_seq_cst);
}

void st_qsbr_offline(void)
{
    if (my_slot < 0 || !my_online)
        return;
    my_online = false;
    atomic_store(&slots[my_slot].seen, 0);
}

void st_qsbr_retire(void *obj, void (*free_fn)(void *))
{
    uv_once(&once, init_lock);
    struct retired *r = st_xmalloc(sizeof(*r));
    r->obj = obj;
    r->free_fn = free_fn;
    r->epoch = atomic_fetch_add(&epoch, 1) + 1;
    uv_mutex_lock(&retire_lock);
    r->next = retire_list;
    retire_list = r;
    atomic_store_explicit(&pending, true, memory_order_relaxed);
    uv_mutex_unlock(&retire_lock);
}

/* The oldest epoch an online thread may still be reading in (UINT64_MAX: none online). */
static uint64_t oldest_seen(void)
{
    uint64_t min = UINT64_MAX;
    for (int i = 0; i < ST_QSBR_MAX_THREADS; i++) {
        if (!atomic_load_explicit(&slots[i].used, memory_order_relaxed))
            continue;
        uint64_t s = atomic_load(&slots[i].seen);
        if (s != 0 && s < min)
            min = s;
    }
    return min;
}

static void free_list(struct retired *r)
{
    while (r) {
        struct retired *next = r->next;
        r->free_fn(r->obj);
        free(r);
        r = next;
    }
}

void st_qsbr_reclaim(void)
{
    if (!atomic_load_explicit(&pending, memory_order_relaxed))
        return;
    /*
     * Take the list first, then read the slots: everything taken was
     * unlinked before the slots are read, which is what makes "offline or
     * announced at or after the retire" mean "cannot see it".
     */
    uv_mutex_lock(&retire_lock);
    struct retired *list = retire_list;
    retire_list = NULL;
    atomic_store_explicit(&pending, false, memory_order_relaxed);
    uv_mutex_unlock(&retire_lock);
    atomic_thread_fence(memory_order_seq_cst);
    uint64_t min = oldest_seen();
    struct retired *done = NULL, *keep = NULL, **keep_tail = &keep;
    while (list) {
        struct retired *r = list;
        list = r->next;
        if (r->epoch <= min) {
            r->next = done;
            done = r;
        } else {
            r->next = NULL;
            *keep_tail = r;
            keep_tail = &r->next;
        }
    }
    if (keep) {
        uv_mutex_lock(&retire_lock);
        *keep_tail = retire_list;
        retire_list = keep;
        atomic_store_explicit(&pending, true, memory_order_relaxed);
        uv_mutex_unlock(&retire_lock);
    }
    free_list(done);
}

void st_qsbr_drain_all(void)
{
    uv_once(&once, init_lock);
    uv_mutex_lock(&retire_lock);
    struct retired *all = retire_list;
    retire_list = NULL;
    atomic_store_explicit(&pending, false, memory_order_relaxed);
    uv_mutex_unlock(&retire_lock);
    free_list(all);
}
