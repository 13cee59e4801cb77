/* serial-backend.c - where a UART's bytes go on the host: null, stdio, a file, or a listening Unix/TCP socket. */

/*
 * Design.
 *
 * A backend is opened from a spec string while the VM is built, so a bad path or
 * a port in use fails VM creation with one clear log line.  After that all host
 * I/O that can wait runs on the VM's event loop thread:
 *
 * - Output.  serial_backend_write() runs on a vCPU thread with the VM lock held
 *   and must never block it.  When nothing is queued it writes straight to the
 *   (non-blocking) fd; whatever does not fit goes into a bounded ring that the
 *   loop drains when the fd is writable.  A full ring drops bytes and counts them.
 *   Regular files take blocking writes directly: they do not stall on a reader.
 * - Input.  The loop reads only what the client's can_rx() allows and hands it
 *   to rx() with the VM lock held.  When the client has no room the backend stops
 *   watching for input until serial_backend_rx_ready() says room appeared.
 * - Wake-ups from other threads (more output queued, room for input, a broken
 *   connection seen by a vCPU) go through an eventfd the loop watches, rather
 *   than rt_evloop_call, so closing a backend never leaves a queued call behind
 *   that points at freed memory.
 * - Listening sockets serve one client at a time: while one is connected the
 *   listening fd is not watched, so the next client waits in the backlog until
 *   the first leaves.  Output while nobody is connected is dropped.
 *
 * Lock order: the VM lock, then the backend's lock.  The backend lock guards the
 * output ring and the fds a vCPU thread may touch; watches are only changed on
 * the loop thread (or while the loop is not running: open and close).
 */

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "vireo/devices.h"
#include "vireo/rt.h"
#include "vireo/vm.h"

#define LOG_COMPONENT "serial"

/* Output queued for a slow reader; beyond this bytes are dropped (the guest is never stalled). */
#define SERIAL_RING_BYTES (64u * 1024u)
/* Bytes read from the host per loop callback, further bounded by the client's room. */
#define SERIAL_READ_CHUNK 4096u

enum serial_kind {
    SERIAL_KIND_NULL,
    SERIAL_KIND_STDIO,
    SERIAL_KIND_FILE,
    SERIAL_KIND_UNIX,
    SERIAL_KIND_TCP,
};

struct serial_backend {
    struct vm *vm;
    struct rt_evloop *loop;
    struct serial_backend_client client;
    enum serial_kind kind;
    char *spec;      /* for log lines */
    char *unix_path; /* removed again at close */

    int listen_fd;
    struct rt_watch *listen_watch;
    /*
     * The input fd (stdin or the connected client) and its watch.  For sockets the
     * same fd and watch also carry output; stdout has its own watch.
     */
    int in_fd;
    struct rt_watch *in_watch;
    unsigned in_events;
    bool in_parked;     /* watch removed while rx is blocked and the fd reports errors */
    bool in_is_stdin;   /* not ours to close */
    struct rt_watch *out_watch;
    unsigned out_events;
    int wake_fd;
    struct rt_watch *wake_watch;

    struct rt_mutex lock;
    /* Guarded by lock: */
    int out_fd;         /* -1: output is dropped */
    bool out_is_socket; /* send() with MSG_NOSIGNAL rather than write() */
    bool out_pollable;  /* a regular file is written blocking and never watched */
    bool out_broken;    /* a vCPU saw the peer go away; the loop cleans up */
    bool rx_blocked;    /* input not watched until serial_backend_rx_ready */
    uint8_t *ring;
    size_t ring_head;
    size_t ring_count;
    uint64_t dropped_bytes;
    bool dropping;      /* logs once per overflow episode */
};

/* ---- The terminal (one per process) -------------------------------------- */

/* Only one backend may own the process's stdio: two readers of one terminal would fight. */
static atomic_bool g_stdio_taken;
static bool g_stdio_tty_raw;
static struct termios g_stdio_tty_saved;
static atomic_bool g_stdio_atexit_registered;

static void serial_stdio_tty_restore(void)
{
    if (g_stdio_tty_raw) {
        tcsetattr(STDIN_FILENO, TCSANOW, &g_stdio_tty_saved);
        g_stdio_tty_raw = false;
    }
}

/*
 * Raw input so every key reaches the guest at once, without echo or line editing.
 * Output processing and signals stay on: Ctrl-C still ends the VM process, and the
 * shell's terminal is left as it was at close or exit.
 */
static void serial_stdio_tty_make_raw(void)
{
    struct termios tio;
    if (tcgetattr(STDIN_FILENO, &tio) != 0)
        return;
    g_stdio_tty_saved = tio;
    tio.c_iflag &= (tcflag_t) ~(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
    tio.c_lflag &= (tcflag_t) ~(ECHO | ECHONL | ICANON | IEXTEN);
    tio.c_cflag &= (tcflag_t) ~(CSIZE | PARENB);
    tio.c_cflag |= CS8;
    tio.c_cc[VMIN] = 1;
    tio.c_cc[VTIME] = 0;
    if (tcsetattr(STDIN_FILENO, TCSANOW, &tio) != 0)
        return;
    g_stdio_tty_raw = true;
    if (!atomic_exchange(&g_stdio_atexit_registered, true))
        atexit(serial_stdio_tty_restore);
}

/* ---- Output ---------------------------------------------------------------- */

/* One write attempt; returns bytes written, 0 when the fd is full, -errno on failure.  Lock held. */
static ssize_t serial_out_write(struct serial_backend *b, const uint8_t *buf, size_t len)
{
    for (;;) {
        ssize_t n;
        if (b->out_is_socket)
            n = send(b->out_fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        else
            n = write(b->out_fd, buf, len);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        return -errno;
    }
}

static void serial_wake(struct serial_backend *b)
{
    uint64_t one = 1;
    /* EAGAIN: the counter is already non-zero, the loop wakes anyway. */
    while (write(b->wake_fd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
}

/* Appends to the ring, dropping (and counting) what does not fit.  Lock held. */
static void serial_ring_put(struct serial_backend *b, const uint8_t *buf, size_t len)
{
    size_t room = SERIAL_RING_BYTES - b->ring_count;
    size_t take = RT_MIN(room, len);
    for (size_t i = 0; i < take; i++)
        b->ring[(b->ring_head + b->ring_count + i) % SERIAL_RING_BYTES] = buf[i];
    b->ring_count += take;
    if (take < len) {
        b->dropped_bytes += len - take;
        if (!b->dropping)
            LOG_WARN("'%s': host side is not reading, dropping output", b->spec);
        b->dropping = true;
    }
}

/* Writes as much of the ring as the fd takes.  Lock held.  Returns 0 or -errno of a broken fd. */
static int serial_ring_flush(struct serial_backend *b)
{
    while (b->ring_count > 0 && b->out_fd >= 0) {
        size_t chunk = RT_MIN(b->ring_count, SERIAL_RING_BYTES - b->ring_head);
        ssize_t n = serial_out_write(b, b->ring + b->ring_head, chunk);
        if (n < 0)
            return (int)n;
        if (n == 0)
            break;
        b->ring_head = (b->ring_head + (size_t)n) % SERIAL_RING_BYTES;
        b->ring_count -= (size_t)n;
    }
    if (b->ring_count == 0) {
        b->ring_head = 0;
        b->dropping = false;
    }
    return 0;
}

void serial_backend_write(struct serial_backend *backend, const uint8_t *buf, size_t len)
{
    struct serial_backend *b = backend;
    if (!b || len == 0)
        return;
    rt_mutex_lock(&b->lock);
    if (b->out_fd < 0 || b->out_broken) {
        /* Nobody is listening (no client, output closed): dropped by design, not counted. */
        rt_mutex_unlock(&b->lock);
        return;
    }
    if (!b->out_pollable) {
        /* A regular file: blocking writes always finish unless the disk fails. */
        size_t done = 0;
        while (done < len) {
            ssize_t n = serial_out_write(b, buf + done, len - done);
            if (n <= 0) {
                LOG_ERR("'%s': write failed: %s; further output is dropped", b->spec,
                        n < 0 ? strerror((int)-n) : "no progress");
                close(b->out_fd);
                b->out_fd = -1;
                break;
            }
            done += (size_t)n;
        }
        rt_mutex_unlock(&b->lock);
        return;
    }
    size_t done = 0;
    if (b->ring_count == 0) {
        ssize_t n = serial_out_write(b, buf, len);
        if (n < 0) {
            /* The loop owns the watches: let it tear the connection down. */
            b->out_broken = true;
            serial_wake(b);
            rt_mutex_unlock(&b->lock);
            return;
        }
        done = (size_t)n;
    }
    if (done < len) {
        bool was_empty = b->ring_count == 0;
        serial_ring_put(b, buf + done, len - done);
        /* The loop must start watching for writability. */
        if (was_empty && b->out_pollable)
            serial_wake(b);
    }
    rt_mutex_unlock(&b->lock);
}

/* ---- Loop-side state changes ------------------------------------------------ */

static void serial_in_event(void *opaque, int fd, unsigned revents);
static void serial_out_event(void *opaque, int fd, unsigned revents);

/* Brings the watches' interest in line with the state (loop thread). */
static void serial_watches_update(struct serial_backend *b)
{
    rt_mutex_lock(&b->lock);
    bool want_write = b->ring_count > 0 && b->out_fd >= 0;
    bool want_read = !b->rx_blocked;
    bool shared = b->out_fd >= 0 && b->out_fd == b->in_fd;
    rt_mutex_unlock(&b->lock);

    if (b->in_fd >= 0) {
        if (b->in_parked && want_read) {
            if (rt_evloop_watch_add(b->loop, b->in_fd, 0, serial_in_event, b, &b->in_watch) == 0) {
                b->in_parked = false;
                b->in_events = 0;
            }
        }
        if (b->in_watch) {
            unsigned events = (want_read ? RT_EV_READ : 0) | (shared && want_write ? RT_EV_WRITE : 0);
            if (events != b->in_events && rt_evloop_watch_set_events(b->in_watch, events) == 0)
                b->in_events = events;
        }
    }
    if (b->out_watch) {
        unsigned events = want_write ? RT_EV_WRITE : 0;
        if (events != b->out_events && rt_evloop_watch_set_events(b->out_watch, events) == 0)
            b->out_events = events;
    }
}

/* The connected client went away (loop thread): back to listening. */
static void serial_client_drop(struct serial_backend *b, const char *why)
{
    if (b->in_watch)
        rt_evloop_watch_remove(b->in_watch);
    b->in_watch = NULL;
    b->in_parked = false;
    b->in_events = 0;
    rt_mutex_lock(&b->lock);
    if (b->in_fd >= 0)
        close(b->in_fd);
    b->in_fd = -1;
    b->out_fd = -1;
    b->out_broken = false;
    b->rx_blocked = false;
    b->ring_head = 0;
    b->ring_count = 0;
    rt_mutex_unlock(&b->lock);
    LOG_INFO("'%s': client disconnected (%s)", b->spec, why);
    if (b->listen_watch)
        rt_evloop_watch_set_events(b->listen_watch, RT_EV_READ);
}

/* stdin reached its end or failed: stop reading, keep writing (loop thread). */
static void serial_stdin_drop(struct serial_backend *b)
{
    if (b->in_watch)
        rt_evloop_watch_remove(b->in_watch);
    b->in_watch = NULL;
    b->in_parked = false;
    b->in_fd = -1;
}

/* stdout or a FIFO failed (a closed pipe, a hung-up terminal): drop output from now on (loop thread). */
static void serial_output_drop(struct serial_backend *b, const char *why)
{
    if (b->out_watch)
        rt_evloop_watch_remove(b->out_watch);
    b->out_watch = NULL;
    rt_mutex_lock(&b->lock);
    if (b->out_fd >= 0)
        close(b->out_fd);
    b->out_fd = -1;
    b->out_broken = false;
    b->ring_head = 0;
    b->ring_count = 0;
    rt_mutex_unlock(&b->lock);
    LOG_WARN("'%s': output closed (%s); further output is dropped", b->spec, why);
}

static void serial_output_failed(struct serial_backend *b, const char *why)
{
    if (b->kind == SERIAL_KIND_UNIX || b->kind == SERIAL_KIND_TCP)
        serial_client_drop(b, why);
    else
        serial_output_drop(b, why);
}

/* Drains the ring (loop thread). */
static void serial_flush_on_loop(struct serial_backend *b)
{
    rt_mutex_lock(&b->lock);
    int rc = serial_ring_flush(b);
    if (rc == 0 && b->out_broken)
        rc = -EPIPE;
    rt_mutex_unlock(&b->lock);
    if (rc < 0)
        serial_output_failed(b, strerror(-rc));
}

/* Host bytes to the client, bounded by its room (loop thread). */
static void serial_receive(struct serial_backend *b, unsigned revents)
{
    uint8_t buf[SERIAL_READ_CHUNK];
    vm_lock(b->vm);
    size_t room = b->client.can_rx ? b->client.can_rx(b->client.opaque) : sizeof(buf);
    if (room == 0) {
        rt_mutex_lock(&b->lock);
        b->rx_blocked = true;
        rt_mutex_unlock(&b->lock);
        vm_unlock(b->vm);
        /*
         * A hung-up fd reports errors even with no interest; leaving it watched
         * would spin until the guest reads.  Park it until there is room.
         */
        if ((revents & RT_EV_ERROR) && b->in_watch) {
            rt_evloop_watch_remove(b->in_watch);
            b->in_watch = NULL;
            b->in_parked = true;
            b->in_events = 0;
        }
        serial_watches_update(b);
        return;
    }
    ssize_t n;
    do {
        n = read(b->in_fd, buf, RT_MIN(room, sizeof(buf)));
    } while (n < 0 && errno == EINTR);
    int err = errno;
    if (n > 0 && b->client.rx)
        b->client.rx(b->client.opaque, buf, (size_t)n);
    vm_unlock(b->vm);

    if (n > 0 || (n < 0 && (err == EAGAIN || err == EWOULDBLOCK)))
        return;
    if (b->in_is_stdin) {
        serial_stdin_drop(b);
        serial_watches_update(b);
    } else {
        serial_client_drop(b, n == 0 ? "end of stream" : strerror(err));
    }
}

static void serial_in_event(void *opaque, int fd, unsigned revents)
{
    struct serial_backend *b = opaque;
    (void)fd;
    if (revents & RT_EV_WRITE) {
        serial_flush_on_loop(b);
        if (b->in_fd < 0)
            return; /* the flush found the client gone */
    }
    if (revents & (RT_EV_READ | RT_EV_ERROR))
        serial_receive(b, revents);
    if (b->in_fd >= 0 || b->kind == SERIAL_KIND_STDIO)
        serial_watches_update(b);
}

static void serial_out_event(void *opaque, int fd, unsigned revents)
{
    struct serial_backend *b = opaque;
    (void)fd;
    if ((revents & RT_EV_ERROR) && !(revents & RT_EV_WRITE)) {
        serial_output_drop(b, "hang-up");
        return;
    }
    serial_flush_on_loop(b);
    if (b->out_watch)
        serial_watches_update(b);
}

static void serial_wake_event(void *opaque, int fd, unsigned revents)
{
    struct serial_backend *b = opaque;
    uint64_t count;
    (void)revents;
    while (read(fd, &count, sizeof(count)) < 0 && errno == EINTR)
        ;
    rt_mutex_lock(&b->lock);
    bool broken = b->out_broken;
    rt_mutex_unlock(&b->lock);
    if (broken) {
        serial_output_failed(b, "peer closed the connection");
        return;
    }
    serial_flush_on_loop(b);
    serial_watches_update(b);
}

static void serial_accept_event(void *opaque, int fd, unsigned revents)
{
    struct serial_backend *b = opaque;
    (void)revents;
    int conn = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (conn < 0)
        return; /* EAGAIN or an aborted connection: wait for the next one */
    if (b->in_fd >= 0) {
        /* Not watched while a client is connected, but be safe: one client at a time. */
        close(conn);
        return;
    }
    if (b->kind == SERIAL_KIND_TCP) {
        int one = 1;
        setsockopt(conn, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    int rc = rt_evloop_watch_add(b->loop, conn, RT_EV_READ, serial_in_event, b, &b->in_watch);
    if (rc < 0) {
        LOG_WARN("'%s': cannot watch the new client: %s", b->spec, rt_err_str(rc));
        close(conn);
        return;
    }
    b->in_events = RT_EV_READ;
    b->in_parked = false;
    rt_mutex_lock(&b->lock);
    b->in_fd = conn;
    b->out_fd = conn;
    b->out_is_socket = true;
    b->out_pollable = true;
    b->out_broken = false;
    b->rx_blocked = false;
    rt_mutex_unlock(&b->lock);
    rt_evloop_watch_set_events(b->listen_watch, 0);
    LOG_INFO("'%s': client connected", b->spec);
}

void serial_backend_rx_ready(struct serial_backend *backend)
{
    struct serial_backend *b = backend;
    if (!b || b->wake_fd < 0)
        return;
    rt_mutex_lock(&b->lock);
    bool was_blocked = b->rx_blocked;
    b->rx_blocked = false;
    if (was_blocked)
        serial_wake(b);
    rt_mutex_unlock(&b->lock);
}

/* ---- Opening ------------------------------------------------------------------ */

static int serial_open_fail(const char *spec, const char *what, int err)
{
    LOG_ERR("cannot open '%s': %s%s", spec, what ? what : "", strerror(err));
    return rt_err_from_errno(err);
}

/* A write to a pipe whose reader left must fail with EPIPE, not kill the VM process with SIGPIPE. */
static void serial_sigpipe_ignore(void)
{
    struct sigaction old;
    if (sigaction(SIGPIPE, NULL, &old) == 0 && old.sa_handler == SIG_DFL)
        signal(SIGPIPE, SIG_IGN);
}

static int serial_open_file(struct serial_backend *b, const char *path)
{
    /* O_NONBLOCK: a FIFO nobody reads fails now (ENXIO) instead of hanging VM creation. */
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0644);
    if (fd < 0)
        return serial_open_fail(b->spec, NULL, errno);
    b->out_fd = fd;
    struct stat st;
    /* A FIFO or a device (file:/dev/ttyS0) can fill up: treat it like stdout. */
    b->out_pollable = fstat(fd, &st) == 0 && !S_ISREG(st.st_mode);
    if (b->out_pollable)
        serial_sigpipe_ignore();
    return 0;
}

/*
 * stdout gets its own open file description where it can (reopening /proc/self/fd/1
 * does that for terminals and pipes), so making it non-blocking does not change the
 * shell's terminal or stderr, which often share the original description.
 */
static int serial_open_stdout(struct serial_backend *b)
{
    struct stat st;
    if (fstat(STDOUT_FILENO, &st) != 0)
        return serial_open_fail(b->spec, "stdout: ", errno);
    if (S_ISREG(st.st_mode)) {
        b->out_fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
        b->out_pollable = false;
    } else if (S_ISSOCK(st.st_mode)) {
        b->out_fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
        b->out_is_socket = true;
        b->out_pollable = true;
    } else {
        b->out_fd = open("/proc/self/fd/1", O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        if (b->out_fd < 0)
            b->out_fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
        b->out_pollable = true;
    }
    if (b->out_fd < 0)
        return serial_open_fail(b->spec, "stdout: ", errno);
    return 0;
}

static int serial_open_stdio(struct serial_backend *b)
{
    if (atomic_exchange(&g_stdio_taken, true)) {
        LOG_ERR("cannot open '%s': stdio is already used by another serial port", b->spec);
        return VERR_BUSY;
    }
    int rc = serial_open_stdout(b);
    if (rc < 0) {
        atomic_store(&g_stdio_taken, false);
        return rc;
    }
    if (!b->out_is_socket)
        serial_sigpipe_ignore();
    b->kind = SERIAL_KIND_STDIO;

    struct stat st;
    bool is_tty = isatty(STDIN_FILENO);
    if (is_tty || (fstat(STDIN_FILENO, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)))) {
        b->in_fd = STDIN_FILENO;
        b->in_is_stdin = true;
        if (is_tty)
            serial_stdio_tty_make_raw();
    }
    return 0;
}

static int serial_listen_unix(struct serial_backend *b, const char *path)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(addr.sun_path)) {
        LOG_ERR("cannot open '%s': a socket path is at most %zu bytes", b->spec, sizeof(addr.sun_path) - 1);
        return VERR_TOO_LARGE;
    }
    rt_strlcpy(addr.sun_path, path, sizeof(addr.sun_path));
    /* A socket left by an earlier run is stale; anything else at the path is the user's. */
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return serial_open_fail(b->spec, NULL, EEXIST);
        unlink(path);
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return serial_open_fail(b->spec, NULL, errno);
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(fd, 1) != 0) {
        int err = errno;
        close(fd);
        return serial_open_fail(b->spec, NULL, err);
    }
    b->unix_path = strdup(path);
    if (!b->unix_path) {
        close(fd);
        unlink(path);
        return VERR_NO_MEMORY;
    }
    b->listen_fd = fd;
    return 0;
}

/* "PORT", "ADDR:PORT" or "[V6ADDR]:PORT"; an empty ADDR listens on every address. */
static int serial_listen_tcp(struct serial_backend *b, const char *arg)
{
    char host[256];
    const char *port;
    const char *colon = strrchr(arg, ':');
    if (!colon) {
        rt_strlcpy(host, "127.0.0.1", sizeof(host));
        port = arg;
    } else {
        const char *start = arg;
        size_t len = (size_t)(colon - arg);
        if (len >= 2 && arg[0] == '[' && arg[len - 1] == ']') {
            start++;
            len -= 2;
        }
        if (len >= sizeof(host)) {
            LOG_ERR("cannot open '%s': address too long", b->spec);
            return VERR_INVALID_PARAMETER;
        }
        memcpy(host, start, len);
        host[len] = '\0';
        port = colon + 1;
    }
    uint64_t port_num;
    size_t digits = strspn(port, "0123456789");
    if (digits == 0 || digits > 5 || port[digits] != '\0' || rt_str_to_u64(port, &port_num) < 0 ||
        port_num > 65535) {
        LOG_ERR("cannot open '%s': '%s' is not a TCP port number (0-65535)", b->spec, port);
        return VERR_INVALID_PARAMETER;
    }
    char port_str[8];
    snprintf(port_str, sizeof(port_str), "%u", (unsigned)port_num);

    struct addrinfo hints = {
        .ai_family = AF_UNSPEC,
        .ai_socktype = SOCK_STREAM,
        .ai_flags = AI_PASSIVE | AI_NUMERICSERV,
    };
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(host[0] ? host : NULL, port_str, &hints, &res);
    if (gai != 0) {
        LOG_ERR("cannot open '%s': %s", b->spec, gai_strerror(gai));
        return VERR_NOT_FOUND;
    }
    int err = EADDRNOTAVAIL;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 1) == 0) {
            b->listen_fd = fd;
            break;
        }
        err = errno;
        close(fd);
    }
    freeaddrinfo(res);
    if (b->listen_fd < 0)
        return serial_open_fail(b->spec, NULL, err);
    return 0;
}

/* Adds the loop watches for the opened fds (the loop is not running yet, or this is its thread). */
static int serial_watches_add(struct serial_backend *b)
{
    b->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (b->wake_fd < 0)
        return serial_open_fail(b->spec, "eventfd: ", errno);
    int rc = rt_evloop_watch_add(b->loop, b->wake_fd, RT_EV_READ, serial_wake_event, b, &b->wake_watch);
    if (rc < 0)
        return rc;
    if (b->listen_fd >= 0) {
        rc = rt_evloop_watch_add(b->loop, b->listen_fd, RT_EV_READ, serial_accept_event, b, &b->listen_watch);
        if (rc < 0)
            return rc;
    }
    if (b->in_fd >= 0) {
        rc = rt_evloop_watch_add(b->loop, b->in_fd, RT_EV_READ, serial_in_event, b, &b->in_watch);
        if (rc < 0) {
            /* An fd epoll refuses (a regular file behind a pipe check): no input then. */
            LOG_WARN("'%s': cannot watch input: %s", b->spec, rt_err_str(rc));
            b->in_fd = -1;
        } else {
            b->in_events = RT_EV_READ;
        }
    }
    if (b->out_fd >= 0 && b->out_pollable && b->out_fd != b->in_fd) {
        rc = rt_evloop_watch_add(b->loop, b->out_fd, 0, serial_out_event, b, &b->out_watch);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int serial_parse_and_open(struct serial_backend *b, const char *spec)
{
    if (strcmp(spec, "null") == 0) {
        b->kind = SERIAL_KIND_NULL;
        return 0;
    }
    if (strcmp(spec, "stdio") == 0)
        return serial_open_stdio(b);

    const char *arg = NULL;
    if (rt_str_starts_with(spec, "file:")) {
        b->kind = SERIAL_KIND_FILE;
        arg = spec + 5;
    } else if (rt_str_starts_with(spec, "unix:")) {
        b->kind = SERIAL_KIND_UNIX;
        arg = spec + 5;
    } else if (rt_str_starts_with(spec, "tcp:")) {
        b->kind = SERIAL_KIND_TCP;
        arg = spec + 4;
    } else {
        LOG_ERR("unknown serial backend '%s' (valid: null, stdio, file:PATH, unix:PATH, tcp:[ADDR:]PORT)", spec);
        return VERR_INVALID_PARAMETER;
    }
    if (arg[0] == '\0') {
        LOG_ERR("cannot open '%s': the %s is missing", spec, b->kind == SERIAL_KIND_TCP ? "port" : "path");
        return VERR_INVALID_PARAMETER;
    }
    switch (b->kind) {
    case SERIAL_KIND_FILE:
        return serial_open_file(b, arg);
    case SERIAL_KIND_UNIX:
        return serial_listen_unix(b, arg);
    default:
        return serial_listen_tcp(b, arg);
    }
}

int serial_backend_open(struct vm *vm, const char *spec, const struct serial_backend_client *client,
                        struct serial_backend **out)
{
    if (!vm || !spec || !out)
        return VERR_INVALID_PARAMETER;
    *out = NULL;
    struct serial_backend *b = calloc(1, sizeof(*b));
    if (!b)
        return VERR_NO_MEMORY;
    b->vm = vm;
    b->loop = vm_get_evloop(vm);
    if (client)
        b->client = *client;
    b->listen_fd = -1;
    b->in_fd = -1;
    b->out_fd = -1;
    b->wake_fd = -1;
    int rc = rt_mutex_init(&b->lock);
    if (rc < 0) {
        free(b);
        return rc;
    }
    b->spec = strdup(spec);
    b->ring = malloc(SERIAL_RING_BYTES);
    if (!b->spec || !b->ring) {
        serial_backend_close(b);
        return VERR_NO_MEMORY;
    }
    rc = serial_parse_and_open(b, spec);
    if (rc == 0 && b->kind != SERIAL_KIND_NULL && (b->out_pollable || b->in_fd >= 0 || b->listen_fd >= 0)) {
        if (!b->loop) {
            LOG_ERR("cannot open '%s': the VM has no event loop", spec);
            rc = VERR_INVALID_STATE;
        } else {
            rc = serial_watches_add(b);
        }
    }
    if (rc < 0) {
        serial_backend_close(b);
        return rc;
    }
    *out = b;
    return 0;
}

void serial_backend_close(struct serial_backend *backend)
{
    struct serial_backend *b = backend;
    if (!b)
        return;
    if (b->in_watch)
        rt_evloop_watch_remove(b->in_watch);
    if (b->out_watch)
        rt_evloop_watch_remove(b->out_watch);
    if (b->listen_watch)
        rt_evloop_watch_remove(b->listen_watch);
    if (b->wake_watch)
        rt_evloop_watch_remove(b->wake_watch);
    if (b->kind == SERIAL_KIND_STDIO) {
        /* Try to get queued output out before the terminal goes back to the shell. */
        if (b->out_fd >= 0 && b->ring_count > 0)
            (void)serial_ring_flush(b);
        serial_stdio_tty_restore();
        atomic_store(&g_stdio_taken, false);
    } else if (b->in_fd >= 0) {
        close(b->in_fd);
        if (b->out_fd == b->in_fd)
            b->out_fd = -1;
    }
    if (b->out_fd >= 0)
        close(b->out_fd);
    if (b->listen_fd >= 0)
        close(b->listen_fd);
    if (b->unix_path) {
        unlink(b->unix_path);
        free(b->unix_path);
    }
    if (b->wake_fd >= 0)
        close(b->wake_fd);
    if (b->dropped_bytes)
        LOG_INFO("'%s': %llu bytes of output were dropped because the host side did not keep up", b->spec,
                 (unsigned long long)b->dropped_bytes);
    rt_mutex_destroy(&b->lock);
    free(b->ring);
    free(b->spec);
    free(b);
}
