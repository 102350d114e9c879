/*
 * test_qsbr.c - quiescent-state-based reclamation: thread slots
 * (register/unregister/registered), and when retired objects are freed:
 * only once every registered thread is offline or has announced an epoch
 * newer than the retire; st_qsbr_drain_all frees everything regardless.
 *
 * A second thread plays the reader. It is driven by commands over a
 * mutex/condition-variable handshake with bounded waits, and never calls a
 * cmocka assert (that only works on the main thread): it records what it
 * saw in plain variables, and the main thread asserts on them after each
 * handshake (the mutex orders the accesses).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <uv.h>

#include "base/qsbr.h"

/* ---- retired objects: count their frees --------------------------------- */

struct obj {
    int freed; /* times obj_free ran on it; read after a handshake or on the freeing thread */
};

static struct obj objs[4];

static void obj_free(void *p)
{
    ((struct obj *)p)->freed++;
}

/* ---- the reader thread --------------------------------------------------- */

enum cmd {
    CMD_OFFLINE = 1,
    CMD_ONLINE,
    CMD_REANNOUNCE, /* offline then online: announce the current epoch */
    CMD_RETIRE,     /* retire cmd_obj from the helper */
    CMD_RECLAIM,    /* reclaim from the helper */
    CMD_EXIT,       /* unregister and end */
};

#define MAIN_WAIT_MS 10000   /* the main thread's bound on any handshake */
#define HELPER_WAIT_MS 30000 /* the helper gives up (and exits) after this */

static struct {
    bool running;
    uv_thread_t tid;
    uv_mutex_t mu;
    uv_cond_t cv;
    /* under mu */
    bool ready;
    unsigned cmd_seq, done_seq;
    enum cmd cmd;
    struct obj *cmd_obj;
    /* results, written by the helper under mu */
    bool reg_ok;         /* st_qsbr_register() returned true */
    bool reg_seen;       /* st_qsbr_registered() right after */
    bool unreg_seen;     /* !st_qsbr_registered() after unregistering */
    bool helper_timeout; /* the helper stopped waiting for commands */
} H;

/* With H.mu held: wait on H.cv until pred() holds; false when timeout_ms passed first. */
static bool wait_for(bool (*pred)(void), uint64_t timeout_ms)
{
    uint64_t deadline = uv_hrtime() + timeout_ms * 1000000u;
    while (!pred()) {
        uint64_t now = uv_hrtime();
        if (now >= deadline)
            return false;
        (void)uv_cond_timedwait(&H.cv, &H.mu, deadline - now);
    }
    return true;
}

static bool is_ready(void)
{
    return H.ready;
}

static bool has_cmd(void)
{
    return H.cmd_seq != H.done_seq;
}

static bool cmd_done(void)
{
    return H.cmd_seq == H.done_seq;
}

static void helper_main(void *arg)
{
    (void)arg;
    uv_mutex_lock(&H.mu);
    H.reg_ok = st_qsbr_register(); /* comes back online at the current epoch */
    H.reg_seen = st_qsbr_registered();
    H.ready = true;
    uv_cond_broadcast(&H.cv);
    for (;;) {
        enum cmd c;
        if (!wait_for(has_cmd, HELPER_WAIT_MS)) {
            H.helper_timeout = true;
            c = CMD_EXIT;
        } else {
            c = H.cmd;
        }
        switch (c) {
        case CMD_OFFLINE:
            st_qsbr_offline();
            break;
        case CMD_ONLINE:
            st_qsbr_online();
            break;
        case CMD_REANNOUNCE:
            st_qsbr_offline();
            st_qsbr_online();
            break;
        case CMD_RETIRE:
            st_qsbr_retire(H.cmd_obj, obj_free);
            break;
        case CMD_RECLAIM:
            st_qsbr_reclaim();
            break;
        case CMD_EXIT:
            st_qsbr_unregister();
            H.unreg_seen = !st_qsbr_registered();
            break;
        }
        H.done_seq = H.cmd_seq;
        uv_cond_broadcast(&H.cv);
        if (c == CMD_EXIT)
            break;
    }
    uv_mutex_unlock(&H.mu);
}

/* Start the reader; it is registered and online when this returns true. */
static bool helper_start(void)
{
    memset(&H, 0, sizeof(H));
    if (uv_mutex_init(&H.mu) != 0)
        return false;
    if (uv_cond_init(&H.cv) != 0) {
        uv_mutex_destroy(&H.mu);
        return false;
    }
    if (uv_thread_create(&H.tid, helper_main, NULL) != 0) {
        uv_cond_destroy(&H.cv);
        uv_mutex_destroy(&H.mu);
        return false;
    }
    H.running = true;
    uv_mutex_lock(&H.mu);
    bool ok = wait_for(is_ready, MAIN_WAIT_MS);
    uv_mutex_unlock(&H.mu);
    return ok;
}

/* Have the reader run c (with obj for CMD_RETIRE) and wait until it has. */
static bool helper_do(enum cmd c, struct obj *obj)
{
    uv_mutex_lock(&H.mu);
    H.cmd = c;
    H.cmd_obj = obj;
    H.cmd_seq++;
    uv_cond_broadcast(&H.cv);
    bool ok = wait_for(cmd_done, MAIN_WAIT_MS);
    uv_mutex_unlock(&H.mu);
    return ok;
}

/* Stop and join the reader if it runs; returns whether it unregistered on command. */
static bool helper_stop(void)
{
    if (!H.running)
        return true;
    bool ok = helper_do(CMD_EXIT, NULL);
    uv_thread_join(&H.tid);
    uv_cond_destroy(&H.cv);
    uv_mutex_destroy(&H.mu);
    H.running = false;
    return ok && H.unreg_seen && !H.helper_timeout;
}

/* ---- fixtures ------------------------------------------------------------ */

static int setup(void **state)
{
    (void)state;
    st_qsbr_unregister();
    st_qsbr_drain_all();
    memset(objs, 0, sizeof(objs));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    /* Also after a failed assert, so the next test starts with no reader. */
    bool ok = helper_stop();
    st_qsbr_unregister();
    st_qsbr_drain_all();
    return ok ? 0 : -1;
}

/* ---- tests --------------------------------------------------------------- */

static void test_register_unregister(void **state)
{
    (void)state;
    assert_false(st_qsbr_registered());
    assert_true(st_qsbr_register());
    assert_true(st_qsbr_registered());
    st_qsbr_unregister();
    assert_false(st_qsbr_registered());
    st_qsbr_unregister(); /* not registered: no-op */
    assert_false(st_qsbr_registered());
    assert_true(st_qsbr_register()); /* a slot again */
    assert_true(st_qsbr_registered());
    st_qsbr_unregister();

    /* Slots are per thread: the reader's does not make this thread registered. */
    assert_true(helper_start());
    assert_true(H.reg_ok);
    assert_true(H.reg_seen);
    assert_false(st_qsbr_registered());
    assert_true(helper_stop());
    assert_true(H.unreg_seen);
    assert_false(H.helper_timeout);
}

static void test_reclaim_without_readers_frees(void **state)
{
    (void)state;
    st_qsbr_reclaim(); /* nothing pending */
    st_qsbr_retire(&objs[0], obj_free);
    st_qsbr_retire(&objs[1], obj_free);
    assert_int_equal(objs[0].freed, 0); /* retire never frees by itself */
    assert_int_equal(objs[1].freed, 0);
    st_qsbr_reclaim();
    assert_int_equal(objs[0].freed, 1);
    assert_int_equal(objs[1].freed, 1);
    st_qsbr_reclaim();
    assert_int_equal(objs[0].freed, 1); /* exactly once */
    assert_int_equal(objs[1].freed, 1);

    /* online/offline of an unregistered thread are no-ops: they hold nothing back. */
    st_qsbr_online();
    st_qsbr_retire(&objs[2], obj_free);
    st_qsbr_reclaim();
    assert_int_equal(objs[2].freed, 1);
    st_qsbr_offline();
    assert_false(st_qsbr_registered());
}

static void test_online_reader_delays_until_offline(void **state)
{
    (void)state;
    assert_true(helper_start()); /* online, at the epoch before the retire */
    st_qsbr_retire(&objs[0], obj_free);
    st_qsbr_reclaim();
    assert_int_equal(objs[0].freed, 0);
    st_qsbr_reclaim(); /* kept pending, still not freeable */
    assert_int_equal(objs[0].freed, 0);

    assert_true(helper_do(CMD_OFFLINE, NULL));
    st_qsbr_reclaim();
    assert_int_equal(objs[0].freed, 1);

    /* Online again, then a retire: held back until the reader unregisters. */
    assert_true(helper_do(CMD_ONLINE, NULL));
    st_qsbr_retire(&objs[1], obj_free);
    st_qsbr_reclaim();
    assert_int_equal(objs[1].freed, 0);
    assert_true(helper_stop());
    st_qsbr_reclaim();
    assert_int_equal(objs[1].freed, 1);
    assert_int_equal(objs[0].freed, 1);
}

static void test_newer_epoch_allows_reclaim(void **state)
{
    (void)state;
    assert_true(helper_start());
    st_qsbr_retire(&objs[0], obj_free);
    st_qsbr_reclaim();
    assert_int_equal(objs[0].freed, 0);

    /* The reader stays online but has announced the epoch after the retire. */
    assert_true(helper_do(CMD_REANNOUNCE, NULL));
    st_qsbr_reclaim();
    assert_int_equal(objs[0].freed, 1);

    /* Retired after that announcement: held back again. */
    st_qsbr_retire(&objs[1], obj_free);
    st_qsbr_reclaim();
    assert_int_equal(objs[1].freed, 0);
    assert_true(helper_do(CMD_ONLINE, NULL)); /* already online: no new announcement */
    st_qsbr_reclaim();
    assert_int_equal(objs[1].freed, 0);
    assert_true(helper_do(CMD_REANNOUNCE, NULL));
    st_qsbr_reclaim();
    assert_int_equal(objs[1].freed, 1);
    assert_int_equal(objs[0].freed, 1);
}

static void test_reclaim_frees_only_the_old_enough(void **state)
{
    (void)state;
    assert_true(helper_start());
    st_qsbr_retire(&objs[0], obj_free);
    assert_true(helper_do(CMD_REANNOUNCE, NULL)); /* sees objs[0]'s epoch */
    st_qsbr_retire(&objs[1], obj_free);
    st_qsbr_retire(&objs[2], obj_free);
    st_qsbr_reclaim();
    assert_int_equal(objs[0].freed, 1);
    assert_int_equal(objs[1].freed, 0);
    assert_int_equal(objs[2].freed, 0);

    assert_true(helper_do(CMD_OFFLINE, NULL));
    st_qsbr_reclaim();
    assert_int_equal(objs[0].freed, 1);
    assert_int_equal(objs[1].freed, 1);
    assert_int_equal(objs[2].freed, 1);
}

static void test_own_slot_holds_back(void **state)
{
    (void)state;
    /* The calling thread's own slot counts like any other. */
    assert_true(st_qsbr_register()); /* online at the current epoch */
    st_qsbr_retire(&objs[0], obj_free);
    st_qsbr_online(); /* idempotent: no new announcement */
    st_qsbr_reclaim();
    assert_int_equal(objs[0].freed, 0);
    st_qsbr_offline();
    st_qsbr_offline(); /* idempotent */
    st_qsbr_reclaim();
    assert_int_equal(objs[0].freed, 1);

    st_qsbr_online();
    st_qsbr_retire(&objs[1], obj_free);
    st_qsbr_reclaim();
    assert_int_equal(objs[1].freed, 0);
    st_qsbr_offline();
    st_qsbr_online(); /* announces the newer epoch */
    st_qsbr_reclaim();
    assert_int_equal(objs[1].freed, 1);
    st_qsbr_unregister();
}

static void test_retire_and_reclaim_from_any_thread(void **state)
{
    (void)state;
    /* Retired by the reader while it is online: its own slot holds it back. */
    assert_true(helper_start());
    assert_true(helper_do(CMD_RETIRE, &objs[0]));
    assert_true(helper_do(CMD_RECLAIM, NULL));
    assert_int_equal(objs[0].freed, 0);
    /* The main thread (unregistered) reclaims once the reader is offline. */
    assert_true(helper_do(CMD_OFFLINE, NULL));
    st_qsbr_reclaim();
    assert_int_equal(objs[0].freed, 1);

    /* Retired by the main thread, reclaimed by the (offline) reader. */
    st_qsbr_retire(&objs[1], obj_free);
    assert_true(helper_do(CMD_RECLAIM, NULL));
    assert_int_equal(objs[1].freed, 1);
}

static void test_drain_all_frees_everything(void **state)
{
    (void)state;
    st_qsbr_drain_all(); /* nothing pending: no-op */
    assert_true(helper_start());
    assert_true(st_qsbr_register()); /* two readers online at old epochs */
    for (int i = 0; i < 3; i++)
        st_qsbr_retire(&objs[i], obj_free);
    st_qsbr_reclaim();
    for (int i = 0; i < 3; i++)
        assert_int_equal(objs[i].freed, 0);

    st_qsbr_drain_all();
    for (int i = 0; i < 3; i++)
        assert_int_equal(objs[i].freed, 1);
    st_qsbr_reclaim();
    st_qsbr_drain_all();
    for (int i = 0; i < 3; i++)
        assert_int_equal(objs[i].freed, 1);
    assert_int_equal(objs[3].freed, 0);
    st_qsbr_unregister();
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_register_unregister),
        T(test_reclaim_without_readers_frees),
        T(test_online_reader_delays_until_offline),
        T(test_newer_epoch_allows_reclaim),
        T(test_reclaim_frees_only_the_old_enough),
        T(test_own_slot_holds_back),
        T(test_retire_and_reclaim_from_any_thread),
        T(test_drain_all_frees_everything),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
