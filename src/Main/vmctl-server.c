/* vmctl-server.c - the server side of the control socket: listening, connections, request lines and replies, on an event loop. */
/*
 * Design: everything runs on one event loop thread, non-blocking.  A connection reads
 * into a buffer of VMCTL_LINE_MAX bytes; each complete line is parsed and handed to the
 * handler, whose reply is queued and written as the peer takes it.  While a reply is
 * queued the connection reads nothing more, so a client that sends requests without
 * reading answers holds at most one reply and one buffer of memory.  A line that does not
 * end within the buffer is answered with an error and the connection closed (the stream
 * cannot be resynchronised); a garbage line is answered with an error and the connection
 * stays usable.  The handler runs synchronously: a slow command (saving the state) holds
 * back the other connections, which is the order the VM has to apply them in anyway.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "vireo/rt.h"
#include "vireo/vmctl.h"

#define LOG_COMPONENT "vmctl"

/* Connections served at once; further ones are told so and closed. */
#define VMCTL_MAX_CLIENTS 32

struct vmctl_conn {
    struct vmctl_server *server;
    struct vmctl_conn *next;
    int fd;
    struct rt_watch *watch;
    char *in;           /* VMCTL_LINE_MAX + 1 bytes */
    size_t in_len;
    char *out;          /* the queued reply */
    size_t out_len, out_off;
    bool eof;           /* the peer will send nothing more */
    bool closing;       /* close once the queued reply is out */
};

struct vmctl_server {
    struct rt_evloop *loop;
    char *path;
    int listen_fd;
    struct rt_watch *listen_watch;
    dev_t sock_dev;     /* the socket file we made, so destroy removes only that one */
    ino_t sock_ino;
    vmctl_handler_fn *fn;
    void *opaque;
    struct vmctl_conn *conns;
    unsigned count;
};

static void conn_close(struct vmctl_conn *c)
{
    struct vmctl_server *s = c->server;
    for (struct vmctl_conn **pp = &s->conns; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    s->count--;
    if (c->watch)
        rt_evloop_watch_remove(c->watch);
    close(c->fd);
    free(c->in);
    free(c->out);
    free(c);
}

/* Queues a reply: "OK <len>\n<body>" or "ERR <code> <message>\n" with the message kept to one line. */
static int conn_queue_reply(struct vmctl_conn *c, const struct vmctl_reply *r)
{
    char head[320];
    int n;
    if (r->status == 0) {
        n = snprintf(head, sizeof(head), "OK %zu\n", r->body ? r->len : 0);
    } else {
        char msg[256];
        snprintf(msg, sizeof(msg), "%s", r->msg[0] ? r->msg : rt_err_str(r->status));
        for (char *p = msg; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                *p = ' ';
        n = snprintf(head, sizeof(head), "ERR %d %s\n", r->status < 0 ? r->status : VERR_GENERAL, msg);
    }
    size_t body_len = r->status == 0 && r->body ? r->len : 0;
    char *out = malloc((size_t)n + body_len);
    if (!out)
        return VERR_NO_MEMORY;
    memcpy(out, head, (size_t)n);
    if (body_len)
        memcpy(out + n, r->body, body_len);
    free(c->out);
    c->out = out;
    c->out_len = (size_t)n + body_len;
    c->out_off = 0;
    return 0;
}

static void reply_error(struct vmctl_conn *c, int status, const char *msg)
{
    struct vmctl_reply r = { .status = status };
    snprintf(r.msg, sizeof(r.msg), "%s", msg);
    if (conn_queue_reply(c, &r))
        c->closing = true;
}

/* One request line (without its newline): parse, dispatch, queue the reply. */
static void conn_handle_line(struct vmctl_conn *c, char *line, size_t len)
{
    struct vmctl_request req;
    char errmsg[256];
    int rc = vmctl_request_parse(line, len, &req, errmsg);
    if (rc) {
        reply_error(c, rc, errmsg);
        return;
    }
    struct vmctl_reply r = { 0 };
    if (!strcmp(req.command, "version")) {
        r.body = rt_strdup_printf("%u", VMCTL_PROTOCOL_VERSION);
        r.len = r.body ? strlen(r.body) : 0;
        r.status = r.body ? 0 : VERR_NO_MEMORY;
    } else {
        c->server->fn(c->server->opaque, &req, &r);
    }
    if (conn_queue_reply(c, &r))
        c->closing = true;
    if (r.close)
        c->closing = true;
    free(r.body);
}

/* Writes what the peer takes now; false when the connection failed. */
static bool conn_flush(struct vmctl_conn *c)
{
    while (c->out && c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN || errno == EWOULDBLOCK;
        }
        c->out_off += (size_t)n;
    }
    if (c->out && c->out_off == c->out_len) {
        free(c->out);
        c->out = NULL;
        c->out_len = c->out_off = 0;
    }
    return true;
}

/* Answers complete lines while nothing is queued, then decides what to wait for; may close c. */
static void conn_advance(struct vmctl_conn *c)
{
    for (;;) {
        if (!conn_flush(c)) {
            conn_close(c);
            return;
        }
        if (c->out)
            break;
        if (c->closing) {
            conn_close(c);
            return;
        }
        char *nl = c->in_len ? memchr(c->in, '\n', c->in_len) : NULL;
        if (nl) {
            size_t len = (size_t)(nl - c->in);
            conn_handle_line(c, c->in, len);
            memmove(c->in, c->in + len + 1, c->in_len - len - 1);
            c->in_len -= len + 1;
            continue;
        }
        if (c->in_len >= VMCTL_LINE_MAX) {
            char msg[128];
            snprintf(msg, sizeof(msg), "request line longer than %u bytes; closing the connection", VMCTL_LINE_MAX);
            reply_error(c, VERR_TOO_LARGE, msg);
            c->closing = true;
            continue;
        }
        if (c->eof) {
            /* An unterminated last line is not a request. */
            conn_close(c);
            return;
        }
        break;
    }
    rt_evloop_watch_set_events(c->watch, c->out ? RT_EV_WRITE : RT_EV_READ);
}

static void conn_event(void *opaque, int fd, unsigned revents)
{
    struct vmctl_conn *c = opaque;
    (void)fd;
    if (revents & RT_EV_READ) {
        ssize_t n = recv(c->fd, c->in + c->in_len, VMCTL_LINE_MAX - c->in_len, MSG_DONTWAIT);
        if (n > 0)
            c->in_len += (size_t)n;
        else if (n == 0)
            c->eof = true;
        else if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
            conn_close(c);
            return;
        }
    } else if ((revents & RT_EV_ERROR) && !(revents & RT_EV_WRITE)) {
        conn_close(c);
        return;
    }
    conn_advance(c);
}

static void listen_event(void *opaque, int fd, unsigned revents)
{
    struct vmctl_server *s = opaque;
    (void)revents;
    for (;;) {
        int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                LOG_WARN("control socket: accept failed: %s", rt_err_str(rt_err_from_errno(errno)));
            return;
        }
        /* The folder and the socket's mode keep others out already; the peer's user is checked too. */
        struct ucred cred;
        socklen_t cl = sizeof(cred);
        if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) != 0 || cred.uid != geteuid()) {
            LOG_WARN("control socket: refused a connection from user %d (not this VM's owner)",
                     cl == sizeof(cred) ? (int)cred.uid : -1);
            close(cfd);
            continue;
        }
        if (s->count >= VMCTL_MAX_CLIENTS) {
            char busy[128];
            int n = snprintf(busy, sizeof(busy), "ERR %d too many control connections (%u); try again later\n",
                             VERR_BUSY, VMCTL_MAX_CLIENTS);
            if (send(cfd, busy, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
                LOG_DEBUG("control socket: could not tell a client that there are too many connections");
            close(cfd);
            continue;
        }
        struct vmctl_conn *c = calloc(1, sizeof(*c));
        char *in = malloc(VMCTL_LINE_MAX + 1);
        if (!c || !in) {
            free(c);
            free(in);
            close(cfd);
            continue;
        }
        c->server = s;
        c->fd = cfd;
        c->in = in;
        if (rt_evloop_watch_add(s->loop, cfd, RT_EV_READ, conn_event, c, &c->watch) != 0) {
            free(in);
            free(c);
            close(cfd);
            continue;
        }
        c->next = s->conns;
        s->conns = c;
        s->count++;
    }
}

/* The socket's folder: created 0700, or an existing real folder of ours set to 0700. */
static int prepare_folder(const char *socket_path)
{
    char *dir = rt_path_dirname(socket_path);
    if (!dir)
        return VERR_NO_MEMORY;
    int rc = rt_dir_create_all(dir, 0700);
    struct stat st;
    if (!rc && lstat(dir, &st) != 0)
        rc = rt_err_from_errno(errno);
    if (!rc && (!S_ISDIR(st.st_mode) || st.st_uid != geteuid())) {
        LOG_ERR("control socket folder '%s' is not a folder owned by this user; refusing to use it", dir);
        rc = VERR_ACCESS_DENIED;
    }
    if (!rc && (st.st_mode & 07777) != 0700 && chmod(dir, 0700) != 0)
        rc = rt_err_from_errno(errno);
    if (rc && rc != VERR_ACCESS_DENIED)
        LOG_ERR("control socket folder '%s': %s", dir, rt_err_str(rc));
    free(dir);
    return rc;
}

int vmctl_server_create(struct rt_evloop *loop, const char *socket_path, vmctl_handler_fn *fn, void *opaque,
                        struct vmctl_server **out)
{
    *out = NULL;
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    if (!loop || !socket_path || !fn)
        return VERR_INVALID_PARAMETER;
    if (strlen(socket_path) >= sizeof(addr.sun_path)) {
        LOG_ERR("control socket path '%s' is longer than a Unix socket path may be (%zu bytes)", socket_path,
                sizeof(addr.sun_path) - 1);
        return VERR_TOO_LARGE;
    }
    memcpy(addr.sun_path, socket_path, strlen(socket_path) + 1);
    int rc = prepare_folder(socket_path);
    if (rc)
        return rc;
    struct stat st;
    if (lstat(socket_path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            LOG_ERR("control socket '%s': a file that is not a socket is in the way", socket_path);
            return VERR_ALREADY_EXISTS;
        }
        LOG_INFO("control socket '%s' was left by a process that ended; replacing it", socket_path);
        if (unlink(socket_path) != 0 && errno != ENOENT)
            return rt_err_from_errno(errno);
    }
    struct vmctl_server *s = calloc(1, sizeof(*s));
    if (!s || !(s->path = strdup(socket_path))) {
        free(s);
        return VERR_NO_MEMORY;
    }
    s->loop = loop;
    s->fn = fn;
    s->opaque = opaque;
    s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->listen_fd < 0)
        rc = rt_err_from_errno(errno);
    if (!rc && bind(s->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) != 0)
        rc = rt_err_from_errno(errno);
    /* Nobody else can reach into the 0700 folder between bind and chmod. */
    if (!rc && chmod(socket_path, 0600) != 0)
        rc = rt_err_from_errno(errno);
    if (!rc && lstat(socket_path, &st) == 0) {
        s->sock_dev = st.st_dev;
        s->sock_ino = st.st_ino;
    }
    if (!rc && listen(s->listen_fd, 16) != 0)
        rc = rt_err_from_errno(errno);
    if (!rc)
        rc = rt_evloop_watch_add(loop, s->listen_fd, RT_EV_READ, listen_event, s, &s->listen_watch);
    if (rc) {
        LOG_ERR("control socket '%s': %s", socket_path, rt_err_str(rc));
        if (s->sock_ino)
            unlink(socket_path);
        if (s->listen_fd >= 0)
            close(s->listen_fd);
        free(s->path);
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

unsigned vmctl_server_client_count(const struct vmctl_server *s)
{
    return s ? s->count : 0;
}

void vmctl_server_destroy(struct vmctl_server *s, unsigned flush_ms)
{
    if (!s)
        return;
    uint64_t deadline = rt_time_mono_ns() + (uint64_t)flush_ms * RT_NS_PER_MS;
    /* No new connections, so whoever asks next finds the VM gone rather than unanswered. */
    struct stat st;
    if (lstat(s->path, &st) == 0 && st.st_dev == s->sock_dev && st.st_ino == s->sock_ino)
        unlink(s->path);
    rt_evloop_watch_remove(s->listen_watch);
    close(s->listen_fd);
    while (s->conns) {
        struct vmctl_conn *c = s->conns;
        while (c->out && rt_time_mono_ns() < deadline) {
            if (!conn_flush(c))
                break;
            if (c->out)
                rt_sleep_ns(RT_NS_PER_MS);
        }
        conn_close(c);
    }
    free(s->path);
    free(s);
}
