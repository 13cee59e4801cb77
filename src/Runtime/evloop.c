/* evloop.c - the host I/O event loop: epoll fd watches, host-time timers and cross-thread calls. */
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "vireo/rt.h"

#define LOG_COMPONENT "evloop"

/*
 * Design:
 * - One epoll set holds the watched fds (level-triggered) and an eventfd that
 *   other threads write to wake the loop, for rt_evloop_call and rt_evloop_stop.
 * - Timers live in a binary min-heap ordered by (deadline, arm sequence), so
 *   timers with the same deadline fire in the order they were armed.  The
 *   epoll wait is bounded by the earliest deadline; epoll_pwait2 gives
 *   nanosecond timeouts, and where the kernel lacks it the millisecond timeout
 *   of epoll_wait is rounded up so timers fire late rather than early.
 * - Callbacks may remove any watch or destroy any timer, their own included.
 *   A watch removed during dispatch is unlinked from epoll at once but freed
 *   only after the batch, because later entries of the same epoll batch may
 *   still point at it; it is marked removed so that they are skipped.
 * - A timer is taken off the heap before its callback runs, and a batch only
 *   fires timers armed before it began, so a callback re-arming a timer in the
 *   past cannot starve the loop.
 * - Watches and timers belong to the loop thread: changing them from another
 *   thread while the loop runs is a programming error caught by an assertion.
 *   Other threads use rt_evloop_call.
 */

/* epoll entries taken per wait; more ready fds are simply reported on the next one. */
#define EVLOOP_MAX_EVENTS 64
#define EVTIMER_UNARMED SIZE_MAX
/* run_once's timeout meaning "until something happens". */
#define EVLOOP_WAIT_FOREVER UINT64_MAX

struct evloop_call {
    struct evloop_call *next;
    rt_call_fn *fn;
    void *opaque;
};

struct rt_watch {
    struct rt_evloop *loop;
    int fd;
    unsigned events;
    rt_watch_fn *fn;
    void *opaque;
    bool removed;
    struct rt_watch *next_removed;
};

struct rt_evtimer {
    struct rt_evloop *loop;
    rt_evtimer_fn *fn;
    void *opaque;
    uint64_t deadline_ns;
    uint64_t seq;
    size_t heap_index;
};

struct rt_evloop {
    int epoll_fd;
    int wake_fd;
    atomic_bool stop;
    /* True while a thread is inside rt_evloop_run or rt_evloop_run_once. */
    atomic_bool running;
    bool dispatching;
    bool use_pwait2;
    size_t watch_count;
    /* Watches removed during the current dispatch, freed when it ends. */
    struct rt_watch *removed_watches;
    size_t timer_count;
    struct rt_evtimer **heap;
    size_t heap_len;
    size_t heap_cap;
    uint64_t next_timer_seq;
    struct rt_mutex call_lock;
    struct evloop_call *call_head;
    struct evloop_call *call_tail;
};

/* The loop the current thread is running, to check that watches and timers are changed there. */
static __thread struct rt_evloop *t_evloop_current;

static void evloop_assert_owner(struct rt_evloop *loop)
{
    RT_ASSERT(!atomic_load(&loop->running) || t_evloop_current == loop);
}

static void evloop_wake(struct rt_evloop *loop)
{
    uint64_t one = 1;
    /* EAGAIN means the counter is already non-zero, so the loop wakes anyway. */
    while (write(loop->wake_fd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
}

int rt_evloop_create(struct rt_evloop **out)
{
    if (!out)
        return VERR_INVALID_PARAMETER;
    struct rt_evloop *loop = calloc(1, sizeof(*loop));
    if (!loop)
        return VERR_NO_MEMORY;
    loop->epoll_fd = -1;
    loop->wake_fd = -1;
    loop->use_pwait2 = true;
    int rc = rt_mutex_init(&loop->call_lock);
    if (rc < 0) {
        free(loop);
        return rc;
    }
    loop->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epoll_fd < 0) {
        rc = rt_err_from_errno(errno);
        goto fail;
    }
    loop->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (loop->wake_fd < 0) {
        rc = rt_err_from_errno(errno);
        goto fail;
    }
    /* The wake fd is the only entry with a NULL pointer; watches always have one. */
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(loop->epoll_fd, EPOLL_CTL_ADD, loop->wake_fd, &ev) != 0) {
        rc = rt_err_from_errno(errno);
        goto fail;
    }
    *out = loop;
    return 0;

fail:
    if (loop->wake_fd >= 0)
        close(loop->wake_fd);
    if (loop->epoll_fd >= 0)
        close(loop->epoll_fd);
    rt_mutex_destroy(&loop->call_lock);
    free(loop);
    return rc;
}

void rt_evloop_destroy(struct rt_evloop *loop)
{
    if (!loop)
        return;
    RT_ASSERT(!atomic_load(&loop->running));
    /* A watch or timer left behind would point at freed memory. */
    RT_ASSERT(loop->watch_count == 0 && loop->timer_count == 0);
    size_t dropped = 0;
    for (struct evloop_call *call = loop->call_head, *next; call; call = next) {
        next = call->next;
        free(call);
        dropped++;
    }
    if (dropped)
        LOG_WARN("destroyed with %zu queued calls that never ran", dropped);
    close(loop->wake_fd);
    close(loop->epoll_fd);
    rt_mutex_destroy(&loop->call_lock);
    free(loop->heap);
    free(loop);
}

/* ---- Timer heap ----------------------------------------------------------- */

static bool evtimer_before(const struct rt_evtimer *a, const struct rt_evtimer *b)
{
    if (a->deadline_ns != b->deadline_ns)
        return a->deadline_ns < b->deadline_ns;
    return a->seq < b->seq;
}

static void evtimer_heap_place(struct rt_evloop *loop, size_t index, struct rt_evtimer *timer)
{
    loop->heap[index] = timer;
    timer->heap_index = index;
}

static void evtimer_heap_sift_up(struct rt_evloop *loop, size_t index)
{
    struct rt_evtimer *timer = loop->heap[index];
    while (index > 0) {
        size_t parent = (index - 1) / 2;
        if (!evtimer_before(timer, loop->heap[parent]))
            break;
        evtimer_heap_place(loop, index, loop->heap[parent]);
        index = parent;
    }
    evtimer_heap_place(loop, index, timer);
}

static void evtimer_heap_sift_down(struct rt_evloop *loop, size_t index)
{
    struct rt_evtimer *timer = loop->heap[index];
    for (;;) {
        size_t child = 2 * index + 1;
        if (child >= loop->heap_len)
            break;
        if (child + 1 < loop->heap_len && evtimer_before(loop->heap[child + 1], loop->heap[child]))
            child++;
        if (!evtimer_before(loop->heap[child], timer))
            break;
        evtimer_heap_place(loop, index, loop->heap[child]);
        index = child;
    }
    evtimer_heap_place(loop, index, timer);
}

static void evtimer_heap_remove(struct rt_evloop *loop, struct rt_evtimer *timer)
{
    size_t index = timer->heap_index;
    RT_ASSERT(index < loop->heap_len && loop->heap[index] == timer);
    timer->heap_index = EVTIMER_UNARMED;
    loop->heap_len--;
    if (index == loop->heap_len)
        return;
    /* Move the last entry into the hole and restore the order in whichever direction it breaks. */
    evtimer_heap_place(loop, index, loop->heap[loop->heap_len]);
    if (index > 0 && evtimer_before(loop->heap[index], loop->heap[(index - 1) / 2]))
        evtimer_heap_sift_up(loop, index);
    else
        evtimer_heap_sift_down(loop, index);
}

int rt_evtimer_create(struct rt_evloop *loop, rt_evtimer_fn *fn, void *opaque, struct rt_evtimer **out)
{
    if (!loop || !fn || !out)
        return VERR_INVALID_PARAMETER;
    evloop_assert_owner(loop);
    /* Reserve the heap slot now: arming returns nothing and so must not allocate. */
    if (loop->timer_count == loop->heap_cap) {
        size_t new_cap = loop->heap_cap ? loop->heap_cap * 2 : 8;
        struct rt_evtimer **heap = realloc(loop->heap, new_cap * sizeof(*heap));
        if (!heap)
            return VERR_NO_MEMORY;
        loop->heap = heap;
        loop->heap_cap = new_cap;
    }
    struct rt_evtimer *timer = calloc(1, sizeof(*timer));
    if (!timer)
        return VERR_NO_MEMORY;
    timer->loop = loop;
    timer->fn = fn;
    timer->opaque = opaque;
    timer->heap_index = EVTIMER_UNARMED;
    loop->timer_count++;
    *out = timer;
    return 0;
}

void rt_evtimer_arm(struct rt_evtimer *timer, uint64_t deadline_ns)
{
    struct rt_evloop *loop = timer->loop;
    evloop_assert_owner(loop);
    if (timer->heap_index != EVTIMER_UNARMED)
        evtimer_heap_remove(loop, timer);
    timer->deadline_ns = deadline_ns;
    timer->seq = loop->next_timer_seq++;
    RT_ASSERT(loop->heap_len < loop->heap_cap);
    evtimer_heap_place(loop, loop->heap_len++, timer);
    evtimer_heap_sift_up(loop, timer->heap_index);
}

void rt_evtimer_cancel(struct rt_evtimer *timer)
{
    evloop_assert_owner(timer->loop);
    if (timer->heap_index != EVTIMER_UNARMED)
        evtimer_heap_remove(timer->loop, timer);
}

void rt_evtimer_destroy(struct rt_evtimer *timer)
{
    if (!timer)
        return;
    rt_evtimer_cancel(timer);
    timer->loop->timer_count--;
    free(timer);
}

/* ---- Watches -------------------------------------------------------------- */

static bool evloop_events_valid(unsigned events)
{
    return (events & ~(RT_EV_READ | RT_EV_WRITE | RT_EV_ERROR)) == 0;
}

static uint32_t evloop_events_to_epoll(unsigned events)
{
    /* EPOLLERR and EPOLLHUP are always reported by the kernel and need no request. */
    uint32_t ep = 0;
    if (events & RT_EV_READ)
        ep |= EPOLLIN;
    if (events & RT_EV_WRITE)
        ep |= EPOLLOUT;
    return ep;
}

static unsigned evloop_events_from_epoll(uint32_t ep)
{
    unsigned events = 0;
    if (ep & (EPOLLIN | EPOLLPRI))
        events |= RT_EV_READ;
    if (ep & EPOLLOUT)
        events |= RT_EV_WRITE;
    if (ep & (EPOLLERR | EPOLLHUP))
        events |= RT_EV_ERROR;
    return events;
}

int rt_evloop_watch_add(struct rt_evloop *loop, int fd, unsigned events, rt_watch_fn *fn, void *opaque,
                        struct rt_watch **out)
{
    if (!loop || fd < 0 || !fn || !out || !evloop_events_valid(events))
        return VERR_INVALID_PARAMETER;
    evloop_assert_owner(loop);
    struct rt_watch *watch = calloc(1, sizeof(*watch));
    if (!watch)
        return VERR_NO_MEMORY;
    watch->loop = loop;
    watch->fd = fd;
    watch->events = events;
    watch->fn = fn;
    watch->opaque = opaque;
    struct epoll_event ev = {.events = evloop_events_to_epoll(events), .data.ptr = watch};
    if (epoll_ctl(loop->epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        int rc = errno == EEXIST ? VERR_ALREADY_EXISTS : rt_err_from_errno(errno);
        free(watch);
        return rc;
    }
    loop->watch_count++;
    *out = watch;
    return 0;
}

int rt_evloop_watch_set_events(struct rt_watch *watch, unsigned events)
{
    if (!watch || watch->removed || !evloop_events_valid(events))
        return VERR_INVALID_PARAMETER;
    evloop_assert_owner(watch->loop);
    struct epoll_event ev = {.events = evloop_events_to_epoll(events), .data.ptr = watch};
    if (epoll_ctl(watch->loop->epoll_fd, EPOLL_CTL_MOD, watch->fd, &ev) != 0)
        return rt_err_from_errno(errno);
    watch->events = events;
    return 0;
}

void rt_evloop_watch_remove(struct rt_watch *watch)
{
    if (!watch || watch->removed)
        return;
    struct rt_evloop *loop = watch->loop;
    evloop_assert_owner(loop);
    /* Fails only when the caller already closed the fd, which dropped it from the set too. */
    epoll_ctl(loop->epoll_fd, EPOLL_CTL_DEL, watch->fd, NULL);
    loop->watch_count--;
    if (loop->dispatching) {
        watch->removed = true;
        watch->next_removed = loop->removed_watches;
        loop->removed_watches = watch;
    } else {
        free(watch);
    }
}

/* ---- Cross-thread calls and stopping ---------------------------------------- */

int rt_evloop_call(struct rt_evloop *loop, rt_call_fn *fn, void *opaque)
{
    if (!loop || !fn)
        return VERR_INVALID_PARAMETER;
    struct evloop_call *call = malloc(sizeof(*call));
    if (!call)
        return VERR_NO_MEMORY;
    call->next = NULL;
    call->fn = fn;
    call->opaque = opaque;
    rt_mutex_lock(&loop->call_lock);
    /* A non-empty queue was already signalled and not yet taken, so one wake-up covers both. */
    bool was_empty = loop->call_head == NULL;
    if (loop->call_tail)
        loop->call_tail->next = call;
    else
        loop->call_head = call;
    loop->call_tail = call;
    rt_mutex_unlock(&loop->call_lock);
    if (was_empty)
        evloop_wake(loop);
    return 0;
}

void rt_evloop_stop(struct rt_evloop *loop)
{
    atomic_store(&loop->stop, true);
    evloop_wake(loop);
}

static bool evloop_should_stop(struct rt_evloop *loop, bool honor_stop)
{
    return honor_stop && atomic_load(&loop->stop);
}

/* Runs the calls queued so far; with a stop pending, the rest go back to the queue's front. */
static void evloop_run_calls(struct rt_evloop *loop, bool honor_stop)
{
    uint64_t count;
    /* Drain the counter before taking the queue, so a call queued after the take wakes us again. */
    while (read(loop->wake_fd, &count, sizeof(count)) < 0 && errno == EINTR)
        ;
    rt_mutex_lock(&loop->call_lock);
    struct evloop_call *batch = loop->call_head;
    struct evloop_call *batch_tail = loop->call_tail;
    loop->call_head = loop->call_tail = NULL;
    rt_mutex_unlock(&loop->call_lock);

    while (batch) {
        if (evloop_should_stop(loop, honor_stop)) {
            rt_mutex_lock(&loop->call_lock);
            batch_tail->next = loop->call_head;
            if (!loop->call_head)
                loop->call_tail = batch_tail;
            loop->call_head = batch;
            rt_mutex_unlock(&loop->call_lock);
            evloop_wake(loop);
            return;
        }
        struct evloop_call *call = batch;
        batch = call->next;
        call->fn(call->opaque);
        free(call);
    }
}

/* ---- Dispatch --------------------------------------------------------------- */

static int evloop_wait(struct rt_evloop *loop, struct epoll_event *events, int max, uint64_t wait_ns)
{
    if (loop->use_pwait2) {
        struct timespec ts;
        struct timespec *tsp = NULL;
        if (wait_ns != EVLOOP_WAIT_FOREVER) {
            ts.tv_sec = (time_t)(wait_ns / RT_NS_PER_SEC);
            ts.tv_nsec = (long)(wait_ns % RT_NS_PER_SEC);
            tsp = &ts;
        }
        int n = epoll_pwait2(loop->epoll_fd, events, max, tsp, NULL);
        /* Older kernels lack the call; some sandboxes forbid it. */
        if (n >= 0 || (errno != ENOSYS && errno != EPERM))
            return n;
        loop->use_pwait2 = false;
        LOG_DEBUG("epoll_pwait2 unavailable, timers use millisecond resolution");
    }
    int timeout_ms;
    if (wait_ns == EVLOOP_WAIT_FOREVER)
        timeout_ms = -1;
    else if (wait_ns / RT_NS_PER_MS >= (uint64_t)INT_MAX)
        timeout_ms = INT_MAX;
    else
        timeout_ms = (int)((wait_ns + RT_NS_PER_MS - 1) / RT_NS_PER_MS);
    return epoll_wait(loop->epoll_fd, events, max, timeout_ms);
}

static void evloop_run_timers(struct rt_evloop *loop, bool honor_stop)
{
    uint64_t now_ns = rt_time_mono_ns();
    uint64_t batch_seq = loop->next_timer_seq;
    while (loop->heap_len > 0 && !evloop_should_stop(loop, honor_stop)) {
        struct rt_evtimer *timer = loop->heap[0];
        if (timer->deadline_ns > now_ns || timer->seq >= batch_seq)
            break;
        evtimer_heap_remove(loop, timer);
        /* The timer is off the heap, so the callback may re-arm or destroy it. */
        timer->fn(timer->opaque);
    }
}

static int evloop_iterate(struct rt_evloop *loop, uint64_t timeout_ns, bool honor_stop)
{
    RT_ASSERT(!loop->dispatching); /* no run_once from inside a callback */
    uint64_t wait_ns = timeout_ns;
    if (loop->heap_len > 0) {
        uint64_t now_ns = rt_time_mono_ns();
        uint64_t deadline_ns = loop->heap[0]->deadline_ns;
        uint64_t until_ns = deadline_ns > now_ns ? deadline_ns - now_ns : 0;
        wait_ns = RT_MIN(wait_ns, until_ns);
    }

    struct epoll_event events[EVLOOP_MAX_EVENTS];
    int n = evloop_wait(loop, events, EVLOOP_MAX_EVENTS, wait_ns);
    if (n < 0) {
        if (errno != EINTR)
            return rt_err_from_errno(errno);
        n = 0;
    }

    loop->dispatching = true;
    for (int i = 0; i < n && !evloop_should_stop(loop, honor_stop); i++) {
        struct rt_watch *watch = events[i].data.ptr;
        if (!watch) {
            evloop_run_calls(loop, honor_stop);
            continue;
        }
        if (watch->removed)
            continue;
        /* An earlier callback in this batch may have narrowed the events this watch wants. */
        unsigned revents = evloop_events_from_epoll(events[i].events) & (watch->events | RT_EV_ERROR);
        if (revents)
            watch->fn(watch->opaque, watch->fd, revents);
    }
    evloop_run_timers(loop, honor_stop);
    loop->dispatching = false;

    while (loop->removed_watches) {
        struct rt_watch *watch = loop->removed_watches;
        loop->removed_watches = watch->next_removed;
        free(watch);
    }
    return 0;
}

static void evloop_enter(struct rt_evloop *loop)
{
    bool was_running = atomic_exchange(&loop->running, true);
    RT_ASSERT(!was_running); /* one thread runs a loop at a time */
    t_evloop_current = loop;
}

static void evloop_leave(struct rt_evloop *loop)
{
    t_evloop_current = NULL;
    atomic_store(&loop->running, false);
}

int rt_evloop_run_once(struct rt_evloop *loop, uint64_t timeout_ns)
{
    if (!loop)
        return VERR_INVALID_PARAMETER;
    evloop_enter(loop);
    int rc = evloop_iterate(loop, timeout_ns, false);
    evloop_leave(loop);
    return rc;
}

int rt_evloop_run(struct rt_evloop *loop)
{
    if (!loop)
        return VERR_INVALID_PARAMETER;
    evloop_enter(loop);
    int rc = 0;
    /* A stop requested before the loop started still counts: it is consumed here. */
    while (!atomic_exchange(&loop->stop, false)) {
        rc = evloop_iterate(loop, EVLOOP_WAIT_FOREVER, true);
        if (rc < 0) {
            LOG_ERR("event loop wait failed: %s", rt_err_str(rc));
            break;
        }
    }
    evloop_leave(loop);
    return rc;
}
