/* time.c - host clocks in nanoseconds and sleeping. */
#include <errno.h>
#include <time.h>

#include "vireo/rt.h"

static uint64_t time_ns_from_timespec(const struct timespec *ts)
{
    return (uint64_t)ts->tv_sec * RT_NS_PER_SEC + (uint64_t)ts->tv_nsec;
}

uint64_t rt_time_mono_ns(void)
{
    struct timespec ts;
    /* CLOCK_MONOTONIC cannot fail with a valid pointer. */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return time_ns_from_timespec(&ts);
}

uint64_t rt_time_real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return time_ns_from_timespec(&ts);
}

void rt_sleep_ns(uint64_t ns)
{
    /* An absolute deadline keeps signal interruptions from stretching the sleep. */
    uint64_t deadline_ns = rt_time_mono_ns() + ns;
    if (deadline_ns < ns)
        deadline_ns = UINT64_MAX;
    struct timespec ts = {
        .tv_sec = (time_t)(deadline_ns / RT_NS_PER_SEC),
        .tv_nsec = (long)(deadline_ns % RT_NS_PER_SEC),
    };
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}
