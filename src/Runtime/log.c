/* log.c - thread-safe log lines to stderr and the per-VM log file. */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "vireo/rt.h"

/*
 * Every line passes the global level first; the line then goes to the log file
 * when one is open and to stderr when it is at or below the stderr level.  The
 * stderr level defaults to warnings so that errors and warnings reach the
 * console while info and debug chatter stays in the file.  Each line is
 * formatted completely and written with one write() under the lock, so lines
 * from different threads never interleave.
 */

/* A line this long fits on the stack; longer ones are formatted into the heap. */
#define LOG_LINE_STACK_BYTES 1024

static atomic_int g_log_level = RT_LOG_INFO;
static atomic_int g_log_stderr_level = RT_LOG_WARN;
static unsigned g_log_error_count; /* guarded by g_log_lock */
static pthread_mutex_t g_log_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_log_fd = -1;
/* Mirrors g_log_fd >= 0 so that a line nobody will see is dropped without taking the lock. */
static atomic_bool g_log_have_file;

static const char *const g_log_level_names[] = {
    [RT_LOG_ERROR] = "error",
    [RT_LOG_WARN] = "warn",
    [RT_LOG_INFO] = "info",
    [RT_LOG_DEBUG] = "debug",
};

void rt_log_set_level(enum rt_log_level level)
{
    atomic_store_explicit(&g_log_level, (int)level, memory_order_relaxed);
}

enum rt_log_level rt_log_get_level(void)
{
    return (enum rt_log_level)atomic_load_explicit(&g_log_level, memory_order_relaxed);
}

int rt_log_level_parse(const char *name, enum rt_log_level *out)
{
    if (!name || !out)
        return VERR_INVALID_PARAMETER;
    for (size_t i = 0; i < RT_ARRAY_SIZE(g_log_level_names); i++) {
        if (strcasecmp(name, g_log_level_names[i]) == 0) {
            *out = (enum rt_log_level)i;
            return 0;
        }
    }
    return VERR_INVALID_PARAMETER;
}

/*
 * A value below RT_LOG_ERROR (for example (enum rt_log_level)-1) keeps stderr
 * quiet, for front ends that own the terminal.
 */
void rt_log_set_stderr_level(enum rt_log_level level)
{
    atomic_store_explicit(&g_log_stderr_level, (int)level, memory_order_relaxed);
}

int rt_log_open_file(const char *path)
{
    if (!path || !*path)
        return VERR_INVALID_PARAMETER;
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return rt_err_from_errno(errno);
    pthread_mutex_lock(&g_log_lock);
    int old_fd = g_log_fd;
    g_log_fd = fd;
    atomic_store(&g_log_have_file, true);
    pthread_mutex_unlock(&g_log_lock);
    if (old_fd >= 0)
        close(old_fd);
    return 0;
}

void rt_log_close_file(void)
{
    pthread_mutex_lock(&g_log_lock);
    int old_fd = g_log_fd;
    g_log_fd = -1;
    atomic_store(&g_log_have_file, false);
    pthread_mutex_unlock(&g_log_lock);
    if (old_fd >= 0)
        close(old_fd);
}

static void log_write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return; /* nowhere left to report a failing log */
        }
        buf += n;
        len -= (size_t)n;
    }
}

void rt_logv(enum rt_log_level level, const char *component, const char *fmt, va_list ap)
{
    if ((int)level > atomic_load_explicit(&g_log_level, memory_order_relaxed))
        return;
    bool to_stderr = (int)level <= atomic_load_explicit(&g_log_stderr_level, memory_order_relaxed);
    /* A racing open or close only decides whether this one line is dropped. */
    if (!to_stderr && !atomic_load_explicit(&g_log_have_file, memory_order_relaxed))
        return;

    /* Callers often log and then inspect errno; keep it intact for them. */
    int saved_errno = errno;
    uint64_t now_ns = rt_time_mono_ns();
    char stack_buf[LOG_LINE_STACK_BYTES];
    char *heap_buf = NULL;
    char *line = stack_buf;

    int prefix = snprintf(stack_buf, sizeof(stack_buf), "%llu.%06llu %s: ",
                          (unsigned long long)(now_ns / RT_NS_PER_SEC),
                          (unsigned long long)(now_ns % RT_NS_PER_SEC / RT_NS_PER_US),
                          component ? component : "?");
    if (prefix < 0 || (size_t)prefix >= sizeof(stack_buf) - 2) {
        errno = saved_errno;
        return;
    }
    va_list ap2;
    va_copy(ap2, ap);
    int msg_len = vsnprintf(stack_buf + prefix, sizeof(stack_buf) - (size_t)prefix, fmt, ap2);
    va_end(ap2);
    if (msg_len < 0) {
        errno = saved_errno;
        return;
    }
    size_t total = (size_t)prefix + (size_t)msg_len;
    /* Room for the newline as well. */
    if (total + 2 > sizeof(stack_buf)) {
        heap_buf = malloc(total + 2);
        if (heap_buf) {
            memcpy(heap_buf, stack_buf, (size_t)prefix);
            va_copy(ap2, ap);
            vsnprintf(heap_buf + prefix, total + 2 - (size_t)prefix, fmt, ap2);
            va_end(ap2);
            line = heap_buf;
        } else {
            /* Out of memory: keep the truncated line rather than nothing. */
            total = sizeof(stack_buf) - 2;
        }
    }
    /* The caller's own trailing newline would leave an empty line. */
    while (total > (size_t)prefix && line[total - 1] == '\n')
        total--;
    line[total++] = '\n';
    line[total] = '\0';

    pthread_mutex_lock(&g_log_lock);
    if (g_log_fd >= 0)
        log_write_all(g_log_fd, line, total);
    if (to_stderr) {
        /* People read stderr: the program's name instead of the timestamp ("vireo-vm: pc: ..."). */
        const char *rest = memchr(line, ' ', total);
        rest = rest ? rest + 1 : line;
        const char *prog = program_invocation_short_name;
        log_write_all(STDERR_FILENO, prog, strlen(prog));
        log_write_all(STDERR_FILENO, ": ", 2);
        log_write_all(STDERR_FILENO, rest, total - (size_t)(rest - line));
    }
    if (level == RT_LOG_ERROR)
        g_log_error_count++;
    pthread_mutex_unlock(&g_log_lock);

    free(heap_buf);
    errno = saved_errno;
}

void rt_log(enum rt_log_level level, const char *component, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rt_logv(level, component, fmt, ap);
    va_end(ap);
}

unsigned rt_log_error_count(void)
{
    pthread_mutex_lock(&g_log_lock);
    unsigned n = g_log_error_count;
    pthread_mutex_unlock(&g_log_lock);
    return n;
}
