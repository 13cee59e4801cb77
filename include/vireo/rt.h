/* rt.h - Vireo portable runtime: logging, assertions, threads, time, event loop, strings, paths, UUIDs. */
#ifndef VIREO_RT_H
#define VIREO_RT_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdnoreturn.h>

#include "vireo/err.h"

#define RT_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define RT_MIN(a, b) ((a) < (b) ? (a) : (b))
#define RT_MAX(a, b) ((a) > (b) ? (a) : (b))
#define RT_ALIGN_UP(v, a) (((v) + (a) - 1) & ~((uint64_t)(a) - 1))
#define RT_NS_PER_SEC 1000000000ULL
#define RT_NS_PER_MS 1000000ULL
#define RT_NS_PER_US 1000ULL
#define RT_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* ---- Logging ------------------------------------------------------------ */

enum rt_log_level { RT_LOG_ERROR = 0, RT_LOG_WARN, RT_LOG_INFO, RT_LOG_DEBUG };

/* Messages at or below this level are written (default RT_LOG_INFO). */
void rt_log_set_level(enum rt_log_level level);
enum rt_log_level rt_log_get_level(void);
/* Parse "error|warn|info|debug"; VERR_INVALID_PARAMETER otherwise. */
int rt_log_level_parse(const char *name, enum rt_log_level *out);
/* Send log lines to this file as well (the per-VM log).  Appends; creates 0600. */
int rt_log_open_file(const char *path);
void rt_log_close_file(void);
/* Whether log lines at this level also go to stderr (errors and warnings always do unless quiet). */
void rt_log_set_stderr_level(enum rt_log_level level);
/*
 * One log line "<monotonic seconds> <component>: <message>" in the log file; on stderr
 * "<program>: <component>: <message>".  Thread-safe.
 * The component is a short subsystem name ("pit", "kvm", "fwcfg").
 */
void rt_log(enum rt_log_level level, const char *component, const char *fmt, ...) RT_PRINTF(3, 4);
void rt_logv(enum rt_log_level level, const char *component, const char *fmt, va_list ap);
/* Error lines logged so far (a front end prints a generic message only when nothing said why). */
unsigned rt_log_error_count(void);

/* A file defines LOG_COMPONENT before using these. */
#define LOG_ERR(...) rt_log(RT_LOG_ERROR, LOG_COMPONENT, __VA_ARGS__)
#define LOG_WARN(...) rt_log(RT_LOG_WARN, LOG_COMPONENT, __VA_ARGS__)
#define LOG_INFO(...) rt_log(RT_LOG_INFO, LOG_COMPONENT, __VA_ARGS__)
#define LOG_DEBUG(...) \
    do { \
        if (rt_log_get_level() >= RT_LOG_DEBUG) \
            rt_log(RT_LOG_DEBUG, LOG_COMPONENT, __VA_ARGS__); \
    } while (0)

/* ---- Assertions --------------------------------------------------------- */

noreturn void rt_assert_fail(const char *expr, const char *file, int line, const char *func);
/* Checks a programming invariant (never guest- or user-controlled input). */
#define RT_ASSERT(expr) \
    do { \
        if (__builtin_expect(!(expr), 0)) \
            rt_assert_fail(#expr, __FILE__, __LINE__, __func__); \
    } while (0)
#define RT_STATIC_ASSERT(expr) _Static_assert(expr, #expr)

/* ---- Threads and synchronisation ---------------------------------------- */

struct rt_thread; /* opaque */
/* Starts fn(arg) on a new thread named name (max 15 chars shown by the OS). */
int rt_thread_create(struct rt_thread **out, const char *name, void *(*fn)(void *arg), void *arg);
/* Waits for the thread, stores its return value if ret is non-NULL, frees the handle. */
int rt_thread_join(struct rt_thread *thread, void **ret);
/* Sends a signal to the thread (used to kick a vCPU out of a blocking call). */
int rt_thread_signal(struct rt_thread *thread, int signo);
bool rt_thread_is_self(const struct rt_thread *thread);

struct rt_mutex {
    pthread_mutex_t m;
};
struct rt_cond {
    pthread_cond_t c;
};
int rt_mutex_init(struct rt_mutex *mutex);
/* A mutex the owning thread may lock again (the VM's device lock). */
int rt_mutex_init_recursive(struct rt_mutex *mutex);
void rt_mutex_destroy(struct rt_mutex *mutex);
void rt_mutex_lock(struct rt_mutex *mutex);
void rt_mutex_unlock(struct rt_mutex *mutex);
int rt_cond_init(struct rt_cond *cond); /* uses the monotonic clock */
void rt_cond_destroy(struct rt_cond *cond);
void rt_cond_wait(struct rt_cond *cond, struct rt_mutex *mutex);
/* Waits until signalled or the monotonic time reaches deadline_ns; VERR_TIMEOUT then. */
int rt_cond_wait_until(struct rt_cond *cond, struct rt_mutex *mutex, uint64_t deadline_ns);
void rt_cond_signal(struct rt_cond *cond);
void rt_cond_broadcast(struct rt_cond *cond);

/* ---- Time --------------------------------------------------------------- */

uint64_t rt_time_mono_ns(void);   /* CLOCK_MONOTONIC */
uint64_t rt_time_real_ns(void);   /* CLOCK_REALTIME, nanoseconds since the Unix epoch */
void rt_sleep_ns(uint64_t ns);

/* ---- Event loop (epoll) --------------------------------------------------- */

struct rt_evloop;  /* opaque */
struct rt_watch;   /* opaque: one watched fd */
struct rt_evtimer; /* opaque: one host-time timer on a loop */

#define RT_EV_READ  0x1u
#define RT_EV_WRITE 0x2u
#define RT_EV_ERROR 0x4u /* error or hang-up; always reported */

typedef void rt_watch_fn(void *opaque, int fd, unsigned revents);
typedef void rt_evtimer_fn(void *opaque);
typedef void rt_call_fn(void *opaque);

int rt_evloop_create(struct rt_evloop **out);
/* Destroys the loop; every watch and timer must have been removed. */
void rt_evloop_destroy(struct rt_evloop *loop);
/* Runs callbacks until rt_evloop_stop; returns 0 or a negative status. */
int rt_evloop_run(struct rt_evloop *loop);
/* Runs due timers and ready fds once, waiting at most timeout_ns (0: poll). */
int rt_evloop_run_once(struct rt_evloop *loop, uint64_t timeout_ns);
/* Thread-safe: makes rt_evloop_run return after the current callback. */
void rt_evloop_stop(struct rt_evloop *loop);
/* Thread-safe: queue fn(opaque) to run on the loop thread. */
int rt_evloop_call(struct rt_evloop *loop, rt_call_fn *fn, void *opaque);

/* Watches must be added, changed and removed on the loop thread (or before it runs). */
int rt_evloop_watch_add(struct rt_evloop *loop, int fd, unsigned events, rt_watch_fn *fn, void *opaque,
                        struct rt_watch **out);
int rt_evloop_watch_set_events(struct rt_watch *watch, unsigned events);
void rt_evloop_watch_remove(struct rt_watch *watch);

int rt_evtimer_create(struct rt_evloop *loop, rt_evtimer_fn *fn, void *opaque, struct rt_evtimer **out);
/* Fires once when the monotonic clock reaches deadline_ns (re-arming replaces the deadline). */
void rt_evtimer_arm(struct rt_evtimer *timer, uint64_t deadline_ns);
void rt_evtimer_cancel(struct rt_evtimer *timer);
void rt_evtimer_destroy(struct rt_evtimer *timer);

/* ---- Strings ------------------------------------------------------------ */

/* Copies with truncation; always NUL-terminates when size > 0; returns strlen(src). */
size_t rt_strlcpy(char *dst, const char *src, size_t size);
/* malloc'ed formatted string; NULL on allocation failure. */
char *rt_strdup_printf(const char *fmt, ...) RT_PRINTF(1, 2);
bool rt_str_starts_with(const char *s, const char *prefix);
/* Whole-string unsigned integer (decimal, or 0x hex); VERR_INVALID_PARAMETER / VERR_OUT_OF_RANGE. */
int rt_str_to_u64(const char *s, uint64_t *out);
/*
 * A size with an optional binary suffix: "512", "64K", "128M", "2G", "1T" (also "KiB", "MB"...,
 * all powers of 1024).  Rejects empty, negative, unknown suffixes ("10Q") and overflow.
 */
int rt_str_to_size(const char *s, uint64_t *bytes);

/* ---- Paths and files ---------------------------------------------------- */

/* malloc'ed "a/b" without doubled separators; NULL on allocation failure. */
char *rt_path_join(const char *a, const char *b);
/* Pointer into path after its last '/'. */
const char *rt_path_basename(const char *path);
/* malloc'ed directory part ("." when there is none). */
char *rt_path_dirname(const char *path);
bool rt_path_exists(const char *path);
/* The folder of the running program (malloc'ed; NULL when /proc/self/exe cannot be read): the programs and
 * files installed beside it (vireo-vm, share/) are found from there. */
char *rt_program_dir(void);
/* mkdir -p with the given mode for created folders. */
int rt_dir_create_all(const char *path, unsigned mode);
/* Reads a whole file (at most max_bytes; VERR_TOO_LARGE beyond).  *out is malloc'ed, NUL-terminated. */
int rt_file_read_all(const char *path, size_t max_bytes, void **out, size_t *len);
/* Writes a file atomically: temp file in the same folder, fsync, rename, fsync of the folder. */
int rt_file_write_atomic(const char *path, const void *data, size_t len, unsigned mode);

/* ---- UUIDs -------------------------------------------------------------- */

struct rt_uuid {
    uint8_t bytes[16];
};
#define RT_UUID_STR_LEN 37 /* 36 characters and the NUL */
/* Random version-4 UUID from the kernel's random source. */
int rt_uuid_generate(struct rt_uuid *out);
void rt_uuid_to_str(const struct rt_uuid *uuid, char out[RT_UUID_STR_LEN]);
/* Accepts the canonical 8-4-4-4-12 form, any case, optionally in braces. */
int rt_uuid_parse(const char *s, struct rt_uuid *out);
bool rt_uuid_is_null(const struct rt_uuid *uuid);

#endif
