/* tstRtThread.c - unit tests for threads, mutexes, condition variables and the clocks. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <string.h>

#include "vireo/rt.h"

#define TST_WORKERS 4
#define TST_INCREMENTS 20000

struct tst_counter {
    struct rt_mutex lock;
    uint64_t value;
};

static void *tst_count_fn(void *arg)
{
    struct tst_counter *counter = arg;
    for (int i = 0; i < TST_INCREMENTS; i++) {
        rt_mutex_lock(&counter->lock);
        counter->value++;
        rt_mutex_unlock(&counter->lock);
    }
    return arg;
}

static void test_threads_and_mutex(void **state)
{
    struct tst_counter counter = {.value = 0};
    assert_int_equal(rt_mutex_init(&counter.lock), 0);
    struct rt_thread *threads[TST_WORKERS];
    for (int i = 0; i < TST_WORKERS; i++)
        assert_int_equal(rt_thread_create(&threads[i], "count", tst_count_fn, &counter), 0);
    for (int i = 0; i < TST_WORKERS; i++) {
        void *ret = NULL;
        assert_int_equal(rt_thread_join(threads[i], &ret), 0);
        assert_ptr_equal(ret, &counter);
    }
    assert_int_equal(counter.value, (uint64_t)TST_WORKERS * TST_INCREMENTS);
    rt_mutex_destroy(&counter.lock);
}

struct tst_name_result {
    char name[32];
};

static void *tst_name_fn(void *arg)
{
    struct tst_name_result *res = arg;
    pthread_getname_np(pthread_self(), res->name, sizeof(res->name));
    return NULL;
}

static void test_thread_name_truncated(void **state)
{
    struct tst_name_result res;
    memset(&res, 0, sizeof(res));
    struct rt_thread *t;
    assert_int_equal(rt_thread_create(&t, "vcpu0-with-a-long-name", tst_name_fn, &res), 0);
    assert_int_equal(rt_thread_join(t, NULL), 0);
    /* The OS keeps 15 characters; the thread sees its name from its first instruction on. */
    assert_string_equal(res.name, "vcpu0-with-a-lo");
}

static void *tst_self_fn(void *arg)
{
    struct rt_thread **handle = arg;
    /* Wait for the creator to publish the handle. */
    while (!__atomic_load_n(handle, __ATOMIC_ACQUIRE))
        ;
    return rt_thread_is_self(*handle) ? (void *)1 : NULL;
}

static void test_thread_is_self(void **state)
{
    struct rt_thread *published = NULL;
    struct rt_thread *t;
    assert_int_equal(rt_thread_create(&t, "self", tst_self_fn, &published), 0);
    assert_false(rt_thread_is_self(t));
    __atomic_store_n(&published, t, __ATOMIC_RELEASE);
    void *ret = NULL;
    assert_int_equal(rt_thread_join(t, &ret), 0);
    assert_ptr_equal(ret, (void *)1);
    assert_false(rt_thread_is_self(NULL));
}

static void *tst_sigwait_fn(void *arg)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    int sig = 0;
    sigwait(&set, &sig);
    return (void *)(intptr_t)sig;
}

static void test_thread_signal(void **state)
{
    /* Blocked in every thread, so the signal stays pending until sigwait takes it: no race. */
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    assert_int_equal(pthread_sigmask(SIG_BLOCK, &set, &old), 0);
    struct rt_thread *t;
    assert_int_equal(rt_thread_create(&t, "sig", tst_sigwait_fn, NULL), 0);
    assert_int_equal(rt_thread_signal(t, SIGUSR1), 0);
    void *ret = NULL;
    assert_int_equal(rt_thread_join(t, &ret), 0);
    assert_int_equal((intptr_t)ret, SIGUSR1);
    assert_int_equal(pthread_sigmask(SIG_SETMASK, &old, NULL), 0);
}

static void *tst_trylock_fn(void *arg)
{
    struct rt_mutex *m = arg;
    int rc = pthread_mutex_trylock(&m->m);
    if (rc == 0)
        pthread_mutex_unlock(&m->m);
    return (void *)(intptr_t)rc;
}

static void test_recursive_mutex(void **state)
{
    struct rt_mutex m;
    assert_int_equal(rt_mutex_init_recursive(&m), 0);
    rt_mutex_lock(&m);
    rt_mutex_lock(&m);
    rt_mutex_unlock(&m);
    /* Locked twice, unlocked once: still held, so another thread cannot take it. */
    struct rt_thread *t;
    void *ret = NULL;
    assert_int_equal(rt_thread_create(&t, "trylock", tst_trylock_fn, &m), 0);
    assert_int_equal(rt_thread_join(t, &ret), 0);
    assert_int_equal((intptr_t)ret, EBUSY);
    rt_mutex_unlock(&m);
    assert_int_equal(rt_thread_create(&t, "trylock", tst_trylock_fn, &m), 0);
    assert_int_equal(rt_thread_join(t, &ret), 0);
    assert_int_equal((intptr_t)ret, 0);
    rt_mutex_destroy(&m);
}

struct tst_handoff {
    struct rt_mutex lock;
    struct rt_cond cond;
    int stage;
};

static void *tst_handoff_fn(void *arg)
{
    struct tst_handoff *h = arg;
    rt_mutex_lock(&h->lock);
    while (h->stage != 1)
        rt_cond_wait(&h->cond, &h->lock);
    h->stage = 2;
    rt_cond_broadcast(&h->cond);
    rt_mutex_unlock(&h->lock);
    return NULL;
}

static void test_cond_handoff(void **state)
{
    struct tst_handoff h = {.stage = 0};
    assert_int_equal(rt_mutex_init(&h.lock), 0);
    assert_int_equal(rt_cond_init(&h.cond), 0);
    struct rt_thread *t;
    assert_int_equal(rt_thread_create(&t, "handoff", tst_handoff_fn, &h), 0);
    rt_mutex_lock(&h.lock);
    h.stage = 1;
    rt_cond_signal(&h.cond);
    /* A generous deadline: only a lost wake-up would reach it. */
    uint64_t deadline_ns = rt_time_mono_ns() + 30 * RT_NS_PER_SEC;
    int rc = 0;
    while (h.stage != 2 && rc == 0)
        rc = rt_cond_wait_until(&h.cond, &h.lock, deadline_ns);
    assert_int_equal(rc, 0);
    assert_int_equal(h.stage, 2);
    rt_mutex_unlock(&h.lock);
    assert_int_equal(rt_thread_join(t, NULL), 0);
    rt_cond_destroy(&h.cond);
    rt_mutex_destroy(&h.lock);
}

static void test_cond_wait_until_timeout(void **state)
{
    struct rt_mutex m;
    struct rt_cond c;
    assert_int_equal(rt_mutex_init(&m), 0);
    assert_int_equal(rt_cond_init(&c), 0);
    rt_mutex_lock(&m);
    /* A deadline already passed returns at once. */
    assert_int_equal(rt_cond_wait_until(&c, &m, 0), VERR_TIMEOUT);
    assert_int_equal(rt_cond_wait_until(&c, &m, rt_time_mono_ns() - 1), VERR_TIMEOUT);
    /* A short monotonic deadline: the wait never ends before it. */
    uint64_t deadline_ns = rt_time_mono_ns() + 2 * RT_NS_PER_MS;
    int rc;
    do
        rc = rt_cond_wait_until(&c, &m, deadline_ns);
    while (rc == 0);
    assert_int_equal(rc, VERR_TIMEOUT);
    assert_true(rt_time_mono_ns() >= deadline_ns);
    rt_mutex_unlock(&m);
    rt_cond_destroy(&c);
    rt_mutex_destroy(&m);
}

static void test_clocks(void **state)
{
    uint64_t a = rt_time_mono_ns();
    uint64_t b = rt_time_mono_ns();
    assert_true(b >= a);
    /* After 2020-01-01 and before 2200. */
    uint64_t real = rt_time_real_ns();
    assert_true(real > 1577836800ULL * RT_NS_PER_SEC);
    assert_true(real < 7258118400ULL * RT_NS_PER_SEC);
    uint64_t before = rt_time_mono_ns();
    rt_sleep_ns(RT_NS_PER_MS);
    assert_true(rt_time_mono_ns() - before >= RT_NS_PER_MS);
    rt_sleep_ns(0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads_and_mutex),
        cmocka_unit_test(test_thread_name_truncated),
        cmocka_unit_test(test_thread_is_self),
        cmocka_unit_test(test_thread_signal),
        cmocka_unit_test(test_recursive_mutex),
        cmocka_unit_test(test_cond_handoff),
        cmocka_unit_test(test_cond_wait_until_timeout),
        cmocka_unit_test(test_clocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
