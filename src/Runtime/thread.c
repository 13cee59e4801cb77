/* thread.c - named threads, mutexes and monotonic-clock condition variables over pthreads. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vireo/rt.h"

/* Linux keeps 16 bytes of thread name (TASK_COMM_LEN), the NUL included. */
#define THREAD_NAME_MAX 15

struct rt_thread {
    pthread_t tid;
};

/* What the new thread needs before it runs the caller's function. */
struct thread_start {
    void *(*fn)(void *arg);
    void *arg;
    char name[THREAD_NAME_MAX + 1];
};

static void *thread_trampoline(void *opaque)
{
    struct thread_start start = *(struct thread_start *)opaque;
    free(opaque);
    /*
     * Naming itself first means the name is in place before any of the
     * caller's code runs (logs, crash dumps).  Failure is harmless: the name
     * is only a debugging aid for top and gdb.
     */
    if (start.name[0])
        pthread_setname_np(pthread_self(), start.name);
    return start.fn(start.arg);
}

int rt_thread_create(struct rt_thread **out, const char *name, void *(*fn)(void *arg), void *arg)
{
    if (!out || !fn)
        return VERR_INVALID_PARAMETER;
    struct rt_thread *thread = calloc(1, sizeof(*thread));
    struct thread_start *start = calloc(1, sizeof(*start));
    if (!thread || !start) {
        free(start);
        free(thread);
        return VERR_NO_MEMORY;
    }
    start->fn = fn;
    start->arg = arg;
    if (name)
        rt_strlcpy(start->name, name, sizeof(start->name));
    int rc = pthread_create(&thread->tid, NULL, thread_trampoline, start);
    if (rc != 0) {
        free(start);
        free(thread);
        return rc == ENOMEM || rc == EAGAIN ? VERR_NO_MEMORY : VERR_THREAD;
    }
    *out = thread;
    return 0;
}

int rt_thread_join(struct rt_thread *thread, void **ret)
{
    if (!thread)
        return VERR_INVALID_PARAMETER;
    void *value = NULL;
    int rc = pthread_join(thread->tid, &value);
    if (rc != 0)
        return rc == EDEADLK ? VERR_INVALID_STATE : VERR_THREAD;
    if (ret)
        *ret = value;
    free(thread);
    return 0;
}

int rt_thread_signal(struct rt_thread *thread, int signo)
{
    if (!thread)
        return VERR_INVALID_PARAMETER;
    int rc = pthread_kill(thread->tid, signo);
    if (rc != 0)
        return rc == EINVAL ? VERR_INVALID_PARAMETER : VERR_THREAD;
    return 0;
}

bool rt_thread_is_self(const struct rt_thread *thread)
{
    return thread && pthread_equal(thread->tid, pthread_self());
}

static int mutex_init_type(struct rt_mutex *mutex, int type)
{
    if (!mutex)
        return VERR_INVALID_PARAMETER;
    pthread_mutexattr_t attr;
    if (pthread_mutexattr_init(&attr) != 0)
        return VERR_NO_MEMORY;
    int rc = pthread_mutexattr_settype(&attr, type);
    if (rc == 0)
        rc = pthread_mutex_init(&mutex->m, &attr);
    pthread_mutexattr_destroy(&attr);
    if (rc != 0)
        return rc == ENOMEM || rc == EAGAIN ? VERR_NO_MEMORY : VERR_THREAD;
    return 0;
}

int rt_mutex_init(struct rt_mutex *mutex)
{
    return mutex_init_type(mutex, PTHREAD_MUTEX_NORMAL);
}

int rt_mutex_init_recursive(struct rt_mutex *mutex)
{
    return mutex_init_type(mutex, PTHREAD_MUTEX_RECURSIVE);
}

void rt_mutex_destroy(struct rt_mutex *mutex)
{
    int rc = pthread_mutex_destroy(&mutex->m);
    /* EBUSY means a caller destroys a mutex it still holds: a programming error. */
    RT_ASSERT(rc == 0);
}

void rt_mutex_lock(struct rt_mutex *mutex)
{
    int rc = pthread_mutex_lock(&mutex->m);
    RT_ASSERT(rc == 0);
}

void rt_mutex_unlock(struct rt_mutex *mutex)
{
    int rc = pthread_mutex_unlock(&mutex->m);
    RT_ASSERT(rc == 0);
}

int rt_cond_init(struct rt_cond *cond)
{
    if (!cond)
        return VERR_INVALID_PARAMETER;
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0)
        return VERR_NO_MEMORY;
    /* Deadlines are monotonic so that a wall-clock step never shortens or stretches a wait. */
    int rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(&cond->c, &attr);
    pthread_condattr_destroy(&attr);
    if (rc != 0)
        return rc == ENOMEM || rc == EAGAIN ? VERR_NO_MEMORY : VERR_THREAD;
    return 0;
}

void rt_cond_destroy(struct rt_cond *cond)
{
    int rc = pthread_cond_destroy(&cond->c);
    RT_ASSERT(rc == 0);
}

void rt_cond_wait(struct rt_cond *cond, struct rt_mutex *mutex)
{
    int rc = pthread_cond_wait(&cond->c, &mutex->m);
    RT_ASSERT(rc == 0);
}

int rt_cond_wait_until(struct rt_cond *cond, struct rt_mutex *mutex, uint64_t deadline_ns)
{
    /* Clamp far deadlines so that tv_sec stays positive. */
    const uint64_t max_ns = (uint64_t)INT64_MAX - RT_NS_PER_SEC;
    if (deadline_ns > max_ns)
        deadline_ns = max_ns;
    struct timespec ts = {
        .tv_sec = (time_t)(deadline_ns / RT_NS_PER_SEC),
        .tv_nsec = (long)(deadline_ns % RT_NS_PER_SEC),
    };
    int rc = pthread_cond_timedwait(&cond->c, &mutex->m, &ts);
    if (rc == ETIMEDOUT)
        return VERR_TIMEOUT;
    RT_ASSERT(rc == 0);
    return 0;
}

void rt_cond_signal(struct rt_cond *cond)
{
    pthread_cond_signal(&cond->c);
}

void rt_cond_broadcast(struct rt_cond *cond)
{
    pthread_cond_broadcast(&cond->c);
}
