/* tm.c - the virtual clock (stops while paused) and timers on it, fired in order on the timer thread. */

/*
 * Design: virtual time is host monotonic time minus an offset while the VM runs,
 * and frozen while it is paused, so guests see no time pass across a pause or a
 * saved state.  In manual mode (device tests) only tm_clock_step moves it.  Armed
 * timers sit in one list sorted by expiry.  The timer thread sleeps until the first
 * expiry and fires due timers with the VM lock held; lock order is VM lock, then
 * the clock lock, and the clock lock is never held across a callback.
 */
#include <stdlib.h>
#include <string.h>

#include "vm-internal.h"

#define LOG_COMPONENT "tm"

struct tm_timer {
    struct vm *vm;
    char *name;
    tm_timer_fn *fn;
    void *opaque;
    uint64_t expire_ns;
    bool armed;
    struct tm_timer *next;     /* armed list */
    struct tm_timer *all_next; /* every timer */
};

int tm_init(struct vm *vm, enum vm_clock_mode mode)
{
    struct tm_clock *c = &vm->tm;
    memset(c, 0, sizeof(*c));
    c->mode = mode;
    c->boot_real_ns = rt_time_real_ns();
    int rc = rt_mutex_init(&c->lock);
    if (rc)
        return rc;
    rc = rt_cond_init(&c->cond);
    if (rc) {
        rt_mutex_destroy(&c->lock);
        return rc;
    }
    return 0;
}

void tm_fini(struct vm *vm)
{
    tm_thread_stop(vm);
    while (vm->tm.all)
        tm_timer_destroy(vm->tm.all);
    rt_cond_destroy(&vm->tm.cond);
    rt_mutex_destroy(&vm->tm.lock);
}

/* Called with the clock lock held. */
static uint64_t clock_now_locked(struct tm_clock *c)
{
    if (c->mode == VM_CLOCK_HOST && c->running)
        return rt_time_mono_ns() - c->host_offset_ns;
    return c->frozen_ns;
}

uint64_t tm_now_ns(struct vm *vm)
{
    struct tm_clock *c = &vm->tm;
    rt_mutex_lock(&c->lock);
    uint64_t now = clock_now_locked(c);
    rt_mutex_unlock(&c->lock);
    return now;
}

void tm_clock_run(struct vm *vm, bool running)
{
    struct tm_clock *c = &vm->tm;
    rt_mutex_lock(&c->lock);
    if (c->mode == VM_CLOCK_HOST && running != c->running) {
        if (running)
            c->host_offset_ns = rt_time_mono_ns() - c->frozen_ns;
        else
            c->frozen_ns = rt_time_mono_ns() - c->host_offset_ns;
        c->running = running;
        rt_cond_broadcast(&c->cond);
    }
    rt_mutex_unlock(&c->lock);
}

void tm_clock_restore(struct vm *vm, uint64_t now_ns)
{
    struct tm_clock *c = &vm->tm;
    rt_mutex_lock(&c->lock);
    RT_ASSERT(!c->running);
    c->frozen_ns = now_ns;
    rt_cond_broadcast(&c->cond);
    rt_mutex_unlock(&c->lock);
}

uint64_t tm_boot_real_ns(struct vm *vm)
{
    return vm->tm.boot_real_ns;
}

void tm_set_boot_real_ns(struct vm *vm, uint64_t ns)
{
    vm->tm.boot_real_ns = ns;
}

int tm_timer_create(struct vm *vm, const char *name, tm_timer_fn *fn, void *opaque, struct tm_timer **out)
{
    if (!vm || !fn || !out)
        return VERR_INVALID_PARAMETER;
    struct tm_timer *t = calloc(1, sizeof(*t));
    if (!t)
        return VERR_NO_MEMORY;
    t->name = strdup(name ? name : "timer");
    if (!t->name) {
        free(t);
        return VERR_NO_MEMORY;
    }
    t->vm = vm;
    t->fn = fn;
    t->opaque = opaque;
    rt_mutex_lock(&vm->tm.lock);
    t->all_next = vm->tm.all;
    vm->tm.all = t;
    rt_mutex_unlock(&vm->tm.lock);
    *out = t;
    return 0;
}

static void unlink_armed(struct tm_clock *c, struct tm_timer *t)
{
    if (!t->armed)
        return;
    for (struct tm_timer **pp = &c->timers; *pp; pp = &(*pp)->next) {
        if (*pp == t) {
            *pp = t->next;
            break;
        }
    }
    t->armed = false;
    t->next = NULL;
}

void tm_timer_arm(struct tm_timer *timer, uint64_t expire_ns)
{
    struct tm_clock *c = &timer->vm->tm;
    rt_mutex_lock(&c->lock);
    unlink_armed(c, timer);
    timer->expire_ns = expire_ns;
    timer->armed = true;
    struct tm_timer **pp = &c->timers;
    while (*pp && (*pp)->expire_ns <= expire_ns)
        pp = &(*pp)->next;
    timer->next = *pp;
    *pp = timer;
    if (c->timers == timer)
        rt_cond_broadcast(&c->cond); /* a new earliest deadline */
    rt_mutex_unlock(&c->lock);
}

void tm_timer_cancel(struct tm_timer *timer)
{
    struct tm_clock *c = &timer->vm->tm;
    rt_mutex_lock(&c->lock);
    unlink_armed(c, timer);
    rt_mutex_unlock(&c->lock);
}

bool tm_timer_is_armed(const struct tm_timer *timer)
{
    return timer->armed;
}

uint64_t tm_timer_expire_ns(const struct tm_timer *timer)
{
    return timer->expire_ns;
}

void tm_timer_destroy(struct tm_timer *timer)
{
    if (!timer)
        return;
    struct tm_clock *c = &timer->vm->tm;
    rt_mutex_lock(&c->lock);
    unlink_armed(c, timer);
    for (struct tm_timer **pp = &c->all; *pp; pp = &(*pp)->all_next) {
        if (*pp == timer) {
            *pp = timer->all_next;
            break;
        }
    }
    rt_mutex_unlock(&c->lock);
    free(timer->name);
    free(timer);
}

/*
 * Fires every timer due at or before `now`, earliest first.  Called with the VM
 * lock held and the clock lock not held.  A callback may re-arm any timer.
 */
static void fire_due(struct vm *vm, uint64_t now)
{
    struct tm_clock *c = &vm->tm;
    for (;;) {
        rt_mutex_lock(&c->lock);
        struct tm_timer *t = c->timers;
        if (!t || t->expire_ns > now) {
            rt_mutex_unlock(&c->lock);
            return;
        }
        unlink_armed(c, t);
        rt_mutex_unlock(&c->lock);
        t->fn(t->opaque);
    }
}

void tm_clock_step(struct vm *vm, uint64_t delta_ns)
{
    struct tm_clock *c = &vm->tm;
    RT_ASSERT(c->mode == VM_CLOCK_MANUAL);
    vm_lock(vm);
    rt_mutex_lock(&c->lock);
    uint64_t target = c->frozen_ns + delta_ns;
    for (;;) {
        struct tm_timer *t = c->timers;
        if (!t || t->expire_ns > target)
            break;
        if (t->expire_ns > c->frozen_ns)
            c->frozen_ns = t->expire_ns;
        uint64_t now = c->frozen_ns;
        rt_mutex_unlock(&c->lock);
        fire_due(vm, now);
        rt_mutex_lock(&c->lock);
    }
    c->frozen_ns = target;
    rt_mutex_unlock(&c->lock);
    vm_unlock(vm);
}

static void *tm_thread_main(void *arg)
{
    struct vm *vm = arg;
    struct tm_clock *c = &vm->tm;
    rt_mutex_lock(&c->lock);
    while (!c->thread_stop) {
        struct tm_timer *t = c->timers;
        if (!c->running || !t) {
            rt_cond_wait(&c->cond, &c->lock);
            continue;
        }
        uint64_t now = clock_now_locked(c);
        if (t->expire_ns > now) {
            /* Host deadline of the first expiry; the offset is stable while running. */
            rt_cond_wait_until(&c->cond, &c->lock, t->expire_ns + c->host_offset_ns);
            continue;
        }
        rt_mutex_unlock(&c->lock);
        vm_lock(vm);
        fire_due(vm, tm_now_ns(vm));
        vm_unlock(vm);
        rt_mutex_lock(&c->lock);
    }
    rt_mutex_unlock(&c->lock);
    return NULL;
}

int tm_thread_start(struct vm *vm)
{
    if (vm->tm.mode != VM_CLOCK_HOST || vm->tm.thread)
        return 0;
    vm->tm.thread_stop = false;
    return rt_thread_create(&vm->tm.thread, "vireo-timers", tm_thread_main, vm);
}

void tm_thread_stop(struct vm *vm)
{
    struct tm_clock *c = &vm->tm;
    if (!c->thread)
        return;
    rt_mutex_lock(&c->lock);
    c->thread_stop = true;
    rt_cond_broadcast(&c->cond);
    rt_mutex_unlock(&c->lock);
    rt_thread_join(c->thread, NULL);
    c->thread = NULL;
}
