/* tstRtEvloop.c - unit tests for the event loop: fd watches, timers, cross-thread calls and stop. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vireo/rt.h"

#define TST_MAX_RECORDS 256
#define TST_THREAD_CALLS 100
/* Far enough that a timer at this distance never fires during a test. */
#define TST_FAR_NS (3600 * RT_NS_PER_SEC)

struct tst_record {
    struct rt_evloop *loop;
    int order[TST_MAX_RECORDS];
    unsigned revents[TST_MAX_RECORDS];
    int count;
};

static void tst_record_add(struct tst_record *rec, int id, unsigned revents)
{
    assert_true(rec->count < TST_MAX_RECORDS);
    rec->order[rec->count] = id;
    rec->revents[rec->count] = revents;
    rec->count++;
}

/* Per-test state: the loop, and a watchdog that fails a test whose loop never stops. */
struct tst_ctx {
    struct rt_evloop *loop;
    struct rt_evtimer *watchdog;
    /* Set as a test's last step; a failed test skips the teardown's checks. */
    bool done;
};

static void tst_watchdog_fn(void *opaque)
{
    fail_msg("event loop did not stop in time");
}

static int tst_setup(void **state)
{
    struct tst_ctx *ctx = calloc(1, sizeof(*ctx));
    if (!ctx || rt_evloop_create(&ctx->loop) != 0)
        return -1;
    if (rt_evtimer_create(ctx->loop, tst_watchdog_fn, NULL, &ctx->watchdog) != 0)
        return -1;
    *state = ctx;
    return 0;
}

static int tst_teardown(void **state)
{
    struct tst_ctx *ctx = *state;
    /*
     * A test that failed half-way left watches or timers behind (or a loop
     * still marked running), which rt_evloop_destroy rightly asserts on:
     * leak them instead so the remaining tests still run.
     */
    if (ctx->done) {
        rt_evtimer_destroy(ctx->watchdog);
        rt_evloop_destroy(ctx->loop);
        free(ctx);
    }
    return 0;
}

static struct rt_evloop *tst_loop(void **state)
{
    return ((struct tst_ctx *)*state)->loop;
}

static void tst_done(void **state)
{
    ((struct tst_ctx *)*state)->done = true;
}

/* For tests that call rt_evloop_run: a broken stop fails the test instead of hanging it. */
static void tst_watchdog_arm(void **state)
{
    struct tst_ctx *ctx = *state;
    rt_evtimer_arm(ctx->watchdog, rt_time_mono_ns() + 10 * RT_NS_PER_SEC);
}

static void tst_pipe(int fds[2])
{
    assert_int_equal(pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
}

/* ---- fd watches ---- */

struct tst_pipe_watch {
    struct tst_record rec;
    int expected_fd;
    bool drain;
};

static void tst_pipe_cb(void *opaque, int fd, unsigned revents)
{
    struct tst_pipe_watch *pw = opaque;
    assert_int_equal(fd, pw->expected_fd);
    tst_record_add(&pw->rec, fd, revents);
    if (pw->drain) {
        char buf[16];
        while (read(fd, buf, sizeof(buf)) > 0)
            ;
    }
}

static void test_watch_pipe_read(void **state)
{
    struct rt_evloop *loop = tst_loop(state);
    int fds[2];
    tst_pipe(fds);
    struct tst_pipe_watch pw = {.expected_fd = fds[0], .drain = true};
    struct rt_watch *watch;
    assert_int_equal(rt_evloop_watch_add(loop, fds[0], RT_EV_READ, tst_pipe_cb, &pw, &watch), 0);

    assert_int_equal(rt_evloop_run_once(loop, 0), 0);
    assert_int_equal(pw.rec.count, 0);

    assert_int_equal(write(fds[1], "ab", 2), 2);
    assert_int_equal(rt_evloop_run_once(loop, 0), 0);
    assert_int_equal(pw.rec.count, 1);
    assert_int_equal(pw.rec.revents[0], RT_EV_READ);
    /* Drained: level-triggered, so nothing more. */
    assert_int_equal(rt_evloop_run_once(loop, 0), 0);
    assert_int_equal(pw.rec.count, 1);

    /* With no events requested, readable data is not reported. */
    assert_int_equal(rt_evloop_watch_set_events(watch, 0), 0);
    assert_int_equal(write(fds[1], "c", 1), 1);
    assert_int_equal(rt_evloop_run_once(loop, 0), 0);
    assert_int_equal(pw.rec.count, 1);
    assert_int_equal(rt_evloop_watch_set_events(watch, RT_EV_READ), 0);
    assert_int_equal(rt_evloop_run_once(loop, 0), 0);
    assert_int_equal(pw.rec.count, 2);
    assert_int_equal(rt_evloop_watch_set_events(watch, 0x80), VERR_INVALID_PARAMETER);

    rt_evloop_watch_remove(watch);
    assert_int_equal(write(fds[1], "d", 1), 1);
    assert_int_equal(rt_evloop_run_once(loop, 0), 0);
    assert_int_equal(pw.rec.count, 2);
    close(fds[0]);
    close(fds[1]);
    tst_done(state);
}

static void test_watch_write_and_hangup(void **state)
{
    struct rt_evloop *loop = tst_loop(state);
    int fds[2];
    tst_pipe(fds);
    struct tst_pipe_watch wr = {.expected_fd = fds[1]};
    struct rt_watch *wwatch;
    assert_int_equal(rt_evloop_watch_add(loop, fds[1], RT_EV_WRITE, tst_pipe_cb, &wr, &wwatch), 0);
    assert_int_equal(rt_evloop_run_once(loop, 0), 0);
    assert_int_equal(wr.rec.count, 1);
    assert_int_equal(wr.rec.revents[0], RT_EV_WRITE);
    rt_evloop_watch_remove(wwatch);

    /* Closing the write end is a hang-up for the reader: reported as RT_EV_ERROR. */
    struct tst_pipe_watch rd = {.expected_fd = fds[0]};
    struct rt_watch *rwatch;
    assert_int_equal(rt_evloop_watch_add(loop, fds[0], RT_EV_READ, tst_pipe_cb, &rd, &rwatch), 0);
    close(fds[1]);
    assert_int_equal(rt_evloop_run_once(loop, 0), 0);
    assert_int_equal(rd.rec.count, 1);
    assert_true(rd.rec.revents[0] & RT_EV_ERROR);
    rt_evloop_watch_remove(rwatch);
    close(fds[0]);
    tst_done(state);
}

static void test_watch_bad_parameters(void **state)
{
    struct rt_evloop *loop = tst_loop(state);
    int fds[2];
    tst_pipe(fds);
    struct tst_pipe_watch pw = {.expected_fd = fds[0]};
    struct rt_watch *watch = NULL, *dup_watch = NULL;
    assert_int_equal(rt_evloop_watch_add(loop, -1, RT_EV_READ, tst_pipe_cb, &pw, &watch), VERR_INVALID_PARAMETER);
    assert_int_equal(rt_evloop_watch_add(loop, fds[0], 0x100, tst_pipe_cb, &pw, &watch), VERR_INVALID_PARAMETER);
    assert_int_equal(rt_evloop_watch_add(loop, fds[0], RT_EV_READ, NULL, &pw, &watch), VERR_INVALID_PARAMETER);
    assert_null(watch);
    assert_int_equal(rt_evloop_watch_add(loop, fds[0], RT_EV_READ, tst_pipe_cb, &pw, &watch), 0);
    assert_int_equal(rt_evloop_watch_add(loop, fds[0], RT_EV_READ, tst_pipe_cb, &pw, &dup_watch),
                     VERR_ALREADY_EXISTS);
    assert_null(dup_watch);
    rt_evloop_watch_remove(watch);
    close(fds[0]);
    close(fds[1]);
    tst_done(state);
}

/* ---- removal during dispatch ---- */

struct tst_remover {
    struct rt_watch *watches[2];
    int calls;
};

static void tst_remove_all_cb(void *opaque, int fd, unsigned revents)
{
    struct tst_remover *r = opaque;
    r->calls++;
    /* Removes its own watch and the other, which may be later in the same epoll batch. */
    for (int i = 0; i < 2; i++) {
        rt_evloop_watch_remove(r->watches[i]);
        r->watches[i] = NULL;
    }
}

static void test_watch_remove_during_callback(void **state)
{
    struct rt_evloop *loop = tst_loop(state);
    int a[2], b[2];
    tst_pipe(a);
    tst_pipe(b);
    struct tst_remover r = {.calls = 0};
    assert_int_equal(rt_evloop_watch_add(loop, a[0], RT_EV_READ, tst_remove_all_cb, &r, &r.watches[0]), 0);
    assert_int_equal(rt_evloop_watch_add(loop, b[0], RT_EV_READ, tst_remove_all_cb, &r, &r.watches[1]), 0);
    assert_int_equal(write(a[1], "x", 1), 1);
    assert_int_equal(write(b[1], "x", 1), 1);
    assert_int_equal(rt_evloop_run_once(loop, 0), 0);
    assert_int_equal(r.calls, 1);
    assert_int_equal(rt_evloop_run_once(loop, 0), 0);
    assert_int_equal(r.calls, 1);
    close(a[0]);
    close(a[1]);
    close(b[0]);
    close(b[1]);
    tst_done(state);
}

/* ---- timers ---- */

struct tst_timer {
    struct tst_record *rec;
    int id;
    struct rt_evtimer *timer;
    /* What the callback does besides recording. */
    struct rt_evtimer *destroy_other;
    bool destroy_self;
    bool rearm_past;
};

static void tst_timer_cb(void *opaque)
{
    struct tst_timer *t = opaque;
    tst_record_add(t->rec, t->id, 0);
    if (t->destroy_other)
        rt_evtimer_destroy(t->destroy_other);
    if (t->rearm_past)
        rt_evtimer_arm(t->timer, 0);
    if (t->destroy_self) {
        rt_evtimer_destroy(t->timer);
        t->timer = NULL;
    }
}

static void tst_timer_init(struct rt_evloop *loop, struct tst_timer *t, struct tst_record *rec, int id)
{
    memset(t, 0, sizeof(*t));
    t->rec = rec;
    t->id = id;
    assert_int_equal(rt_evtimer_create(loop, tst_timer_cb, t, &t->timer), 0);
}

static void test_timer_order(void **state)
{
    struct rt_evloop *loop = tst_loop(state);
    struct tst_record rec = {.count = 0};
    struct tst_timer t[6];
    for (int i = 0; i < 6; i++)
        tst_timer_init(loop, &t[i], &rec, i);
    uint64_t now = rt_time_mono_ns();
    rt_evtimer_arm(t[0].timer, now - 10);
    rt_evtimer_arm(t[1].timer, now - 30);
    rt_evtimer_arm(t[2].timer, now - 20);
    /* Equal deadlines fire in arming order. */
    rt_evtimer_arm(t[3].timer, now - 40);
    rt_evtimer_arm(t[4].timer, now - 40);
    rt_evtimer_arm(t[5].timer, now + TST_FAR_NS);

    assert_int_equal(rt_evloop_run_once(loop, 0), 0);
    assert_int_equal(rec.count, 5);
    static const int expected[] = {3, 4, 1, 2, 0};
    assert_memory_equal(rec.order, expected, sizeof(expected));

    /* One-shot: nothing fires again. */
    assert_int_equal(rt_evloop_run_once(loop, 0), 0);
    assert_int_equal(rec.count, 5);

    /* Re-arming replaces the deadline; cancel disarms. */
    rt_evtimer_arm(t[5].timer, now - 1);
    rt_evtimer_arm(t[0].timer, now - 1);
    rt_evtimer_cancel(t[0].timer);
    rt_evtimer_cancel(t[0].timer);
    assert_int_equal(rt_evloop_run_once(loop, 0), 0);
    assert_int_equal(rec.count, 6);
    assert_int_equal(rec.order[5], 5);

    for (int i = 0; i < 6; i++)
        rt_evtimer_destroy(t[i].timer);
    tst_done(state);
}

static void test_timer_heap_many(void **state)
{
    /* Enough timers to exercise heap growth, armed in a scrambled order. */
    struct rt_evloop *loop = tst_loop(state);
    enum { N = 100 };
    static struct tst_timer t[N];
    struct tst_record rec = {.count = 0};
    uint64_t now = rt_time_mono_ns();
    for (int i = 0; i < N; i++) {
        tst_timer_init(loop, &t[i], &rec, i);
    }
    for (int i = 0; i < N; i++) {
        int id = (i * 37) % N;
        rt_evtimer_arm(t[id].timer, now - 1000 + (uint64_t)id);
    }
    /* Cancel every third timer, some from the middle of the heap. */
    for (int i = 0; i < N; i += 3)
        rt_evtimer_cancel(t[i].timer);
    assert_int_equal(rt_evloop_run_once(loop, 0), 0);
    int fired = 0, last = -1;
    for (int i = 0; i < rec.count; i++) {
        assert_true(rec.order[i] > last);
        assert_int_not_equal(rec.order[i] % 3, 0);
        last = rec.order[i];
        fired++;
    }
    assert_int_equal(fired, N - (N + 2) / 3);
    for (int i = 0; i < N; i++)
        rt_evtimer_destroy(t[i].timer);
    tst_done(state);
}

static void test_timer_wakes_wait(void **state)
{
    struct rt_evloop *loop = tst_loop(state);
    struct tst_record rec = {.count = 0};
    struct tst_timer t;
    tst_timer_init(loop, &t, &rec, 7);
    uint64_t start = rt_time_mono_ns();
    uint64_t deadline = start + 2 * RT_NS_PER_MS;
    rt_evtimer_arm(t.timer, deadline);
    /* The wait ends at the timer's deadline, not the long timeout. */
    uint64_t end = start;
    while (rec.count == 0 && end - start < 5 * RT_NS_PER_SEC) {
        assert_int_equal(rt_evloop_run_once(loop, 10 * RT_NS_PER_SEC), 0);
        end = rt_time_mono_ns();
    }
    assert_int_equal(rec.count, 1);
    assert_true(end >= deadline);
    assert_true(end - start < 5 * RT_NS_PER_SEC);
    rt_evtimer_destroy(t.timer);
    tst_done(state);
}

static void test_timer_callbacks_modify_timers(void **state)
{
    struct rt_evloop *loop = tst_loop(state);
    struct tst_record rec = {.count = 0};
    struct tst_timer a, b, c;
    tst_timer_init(loop, &a, &rec, 1);
    tst_timer_init(loop, &b, &rec, 2);
    tst_timer_init(loop, &c, &rec, 3);
    uint64_t now = rt_time_mono_ns();
    /* a fires first, destroys b (due in the same batch) and itself; c re-arms itself in the past. */
    a.destroy_other = b.timer;
    a.destroy_self = true;
    c.rearm_past = true;
    rt_evtimer_arm(a.timer, now - 30);
    rt_evtimer_arm(b.timer, now - 20);
    rt_evtimer_arm(c.timer, now - 10);
    assert_int_equal(rt_evloop_run_once(loop, 0), 0);
    assert_int_equal(rec.count, 2);
    assert_int_equal(rec.order[0], 1);
    assert_int_equal(rec.order[1], 3);
    assert_null(a.timer);
    /* c's re-arm waits for the next batch rather than looping in this one. */
    assert_int_equal(rt_evloop_run_once(loop, 0), 0);
    assert_int_equal(rec.count, 3);
    assert_int_equal(rec.order[2], 3);
    rt_evtimer_destroy(c.timer);
    tst_done(state);
}

/* ---- calls and stop ---- */

struct tst_calls {
    struct rt_evloop *loop;
    struct tst_record rec;
    int stop_at;
};

struct tst_call_item {
    struct tst_calls *calls;
    int id;
};

static void tst_call_fn(void *opaque)
{
    struct tst_call_item *item = opaque;
    tst_record_add(&item->calls->rec, item->id, 0);
    if (item->id == item->calls->stop_at)
        rt_evloop_stop(item->calls->loop);
}

static struct tst_call_item g_items[TST_THREAD_CALLS];

static void *tst_caller_thread(void *arg)
{
    struct tst_calls *calls = arg;
    for (int i = 0; i < TST_THREAD_CALLS; i++) {
        g_items[i].calls = calls;
        g_items[i].id = i;
        if (rt_evloop_call(calls->loop, tst_call_fn, &g_items[i]) != 0)
            return (void *)1;
    }
    return NULL;
}

static void test_call_from_thread(void **state)
{
    struct rt_evloop *loop = tst_loop(state);
    struct tst_calls calls = {.loop = loop, .stop_at = TST_THREAD_CALLS - 1};
    struct rt_thread *t;
    assert_int_equal(rt_thread_create(&t, "caller", tst_caller_thread, &calls), 0);
    /* The last call stops the loop, so run returns once all have run, in order. */
    tst_watchdog_arm(state);
    assert_int_equal(rt_evloop_run(loop), 0);
    void *ret = (void *)2;
    assert_int_equal(rt_thread_join(t, &ret), 0);
    assert_null(ret);
    assert_int_equal(calls.rec.count, TST_THREAD_CALLS);
    for (int i = 0; i < TST_THREAD_CALLS; i++)
        assert_int_equal(calls.rec.order[i], i);
    tst_done(state);
}

static void test_stop_mid_batch_keeps_calls(void **state)
{
    struct rt_evloop *loop = tst_loop(state);
    struct tst_calls calls = {.loop = loop, .stop_at = 0};
    struct tst_call_item items[3];
    for (int i = 0; i < 3; i++) {
        items[i].calls = &calls;
        items[i].id = i;
        assert_int_equal(rt_evloop_call(loop, tst_call_fn, &items[i]), 0);
    }
    /* The first call stops the loop: run returns right after it, the rest stay queued. */
    tst_watchdog_arm(state);
    assert_int_equal(rt_evloop_run(loop), 0);
    assert_int_equal(calls.rec.count, 1);
    calls.stop_at = -1;
    assert_int_equal(rt_evloop_run_once(loop, 0), 0);
    assert_int_equal(calls.rec.count, 3);
    assert_int_equal(calls.rec.order[1], 1);
    assert_int_equal(calls.rec.order[2], 2);
    tst_done(state);
}

struct tst_stopper {
    struct rt_evloop *loop;
    struct rt_mutex lock;
    struct rt_cond cond;
    bool loop_running;
};

static void tst_mark_running(void *opaque)
{
    struct tst_stopper *s = opaque;
    rt_mutex_lock(&s->lock);
    s->loop_running = true;
    rt_cond_signal(&s->cond);
    rt_mutex_unlock(&s->lock);
}

static void *tst_stopper_thread(void *arg)
{
    struct tst_stopper *s = arg;
    rt_mutex_lock(&s->lock);
    while (!s->loop_running)
        rt_cond_wait(&s->cond, &s->lock);
    rt_mutex_unlock(&s->lock);
    /* The loop is now in (or about to enter) its wait with nothing to do. */
    rt_evloop_stop(s->loop);
    return NULL;
}

static void test_stop_from_thread(void **state)
{
    struct rt_evloop *loop = tst_loop(state);
    struct tst_stopper s = {.loop = loop, .loop_running = false};
    assert_int_equal(rt_mutex_init(&s.lock), 0);
    assert_int_equal(rt_cond_init(&s.cond), 0);
    assert_int_equal(rt_evloop_call(loop, tst_mark_running, &s), 0);
    struct rt_thread *t;
    assert_int_equal(rt_thread_create(&t, "stopper", tst_stopper_thread, &s), 0);
    tst_watchdog_arm(state);
    assert_int_equal(rt_evloop_run(loop), 0);
    assert_true(s.loop_running);
    assert_int_equal(rt_thread_join(t, NULL), 0);
    rt_cond_destroy(&s.cond);
    rt_mutex_destroy(&s.lock);
    tst_done(state);
}

static void test_stop_before_run(void **state)
{
    struct rt_evloop *loop = tst_loop(state);
    /* A stop that comes before run is not lost, and run consumes it. */
    rt_evloop_stop(loop);
    assert_int_equal(rt_evloop_run_once(loop, 0), 0);
    tst_watchdog_arm(state);
    assert_int_equal(rt_evloop_run(loop), 0);
    struct tst_calls calls = {.loop = loop, .stop_at = 5};
    struct tst_call_item item = {.calls = &calls, .id = 5};
    assert_int_equal(rt_evloop_call(loop, tst_call_fn, &item), 0);
    tst_watchdog_arm(state);
    assert_int_equal(rt_evloop_run(loop), 0);
    assert_int_equal(calls.rec.count, 1);
    tst_done(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_watch_pipe_read, tst_setup, tst_teardown),
        cmocka_unit_test_setup_teardown(test_watch_write_and_hangup, tst_setup, tst_teardown),
        cmocka_unit_test_setup_teardown(test_watch_bad_parameters, tst_setup, tst_teardown),
        cmocka_unit_test_setup_teardown(test_watch_remove_during_callback, tst_setup, tst_teardown),
        cmocka_unit_test_setup_teardown(test_timer_order, tst_setup, tst_teardown),
        cmocka_unit_test_setup_teardown(test_timer_heap_many, tst_setup, tst_teardown),
        cmocka_unit_test_setup_teardown(test_timer_wakes_wait, tst_setup, tst_teardown),
        cmocka_unit_test_setup_teardown(test_timer_callbacks_modify_timers, tst_setup, tst_teardown),
        cmocka_unit_test_setup_teardown(test_call_from_thread, tst_setup, tst_teardown),
        cmocka_unit_test_setup_teardown(test_stop_mid_batch_keeps_calls, tst_setup, tst_teardown),
        cmocka_unit_test_setup_teardown(test_stop_from_thread, tst_setup, tst_teardown),
        cmocka_unit_test_setup_teardown(test_stop_before_run, tst_setup, tst_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
