/* tstVmctl.c - unit tests for the control socket: escaping, request parsing, the server and the client against well-behaved and hostile peers. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "harness.h"
#include "vireo/rt.h"
#include "vireo/vmctl.h"

/* ---- Fixtures ------------------------------------------------------------------------------- */

struct tst_ctx {
    char dir[64];
    char sock[128];
    struct rt_evloop *loop;
    struct rt_thread *thread;
    struct vmctl_server *server;
    unsigned handled;
};

static int tst_setup(void **state)
{
    struct tst_ctx *t = calloc(1, sizeof(*t));
    if (!t)
        return -1;
    if (harness_dir_create("tstVmctl", t->dir, sizeof(t->dir)) < 0)
        return -1;
    snprintf(t->sock, sizeof(t->sock), "%s/run/vireo/test.sock", t->dir);
    *state = t;
    return 0;
}

static int tst_teardown(void **state)
{
    struct tst_ctx *t = *state;
    harness_dir_remove(t->dir);
    free(t);
    return 0;
}

/* The test server's commands: echo ARG, fail, big N, bye, slow. */
static void tst_handler(void *opaque, const struct vmctl_request *req, struct vmctl_reply *reply)
{
    struct tst_ctx *t = opaque;
    t->handled++;
    if (!strcmp(req->command, "echo")) {
        const char *a = req->argument ? req->argument : "";
        reply->body = strdup(a);
        reply->len = strlen(a);
    } else if (!strcmp(req->command, "fail")) {
        reply->status = VERR_INVALID_STATE;
        snprintf(reply->msg, sizeof(reply->msg), "nope\nsecond line");
    } else if (!strcmp(req->command, "big")) {
        uint64_t n = 0;
        rt_str_to_u64(req->argument ? req->argument : "0", &n);
        reply->body = malloc(n ? n : 1);
        for (uint64_t i = 0; i < n; i++)
            ((unsigned char *)reply->body)[i] = (unsigned char)(i * 7);
        reply->len = n;
    } else if (!strcmp(req->command, "bye")) {
        reply->close = true;
    } else if (!strcmp(req->command, "slow")) {
        rt_sleep_ns(300 * RT_NS_PER_MS);
    } else {
        reply->status = VERR_NOT_SUPPORTED;
        snprintf(reply->msg, sizeof(reply->msg), "unknown command '%s'", req->command);
    }
}

static void *tst_loop_main(void *arg)
{
    rt_evloop_run(arg);
    return NULL;
}

static void tst_server_start(struct tst_ctx *t)
{
    assert_int_equal(rt_evloop_create(&t->loop), 0);
    assert_int_equal(vmctl_server_create(t->loop, t->sock, tst_handler, t, &t->server), 0);
    assert_int_equal(rt_thread_create(&t->thread, "tst-vmctl", tst_loop_main, t->loop), 0);
}

static void tst_server_stop(struct tst_ctx *t)
{
    rt_evloop_stop(t->loop);
    rt_thread_join(t->thread, NULL);
    vmctl_server_destroy(t->server, 100);
    rt_evloop_destroy(t->loop);
    t->server = NULL;
}

/* A raw client socket, for bytes the real client would never send. */
static void tst_addr(struct sockaddr_un *addr, const char *path)
{
    memset(addr, 0, sizeof(*addr));
    addr->sun_family = AF_UNIX;
    assert_true(strlen(path) < sizeof(addr->sun_path));
    memcpy(addr->sun_path, path, strlen(path) + 1);
}

static int tst_raw_connect(const char *path)
{
    struct sockaddr_un addr;
    tst_addr(&addr, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    struct timeval tv = { .tv_sec = 5 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

static void tst_send(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        assert_true(n > 0);
        p += n;
        len -= (size_t)n;
    }
}

/* Reads one line (up to the newline, which is dropped) from a raw socket; "" at end of stream. */
static void tst_recv_line(int fd, char *out, size_t size)
{
    size_t n = 0;
    while (n + 1 < size) {
        char ch;
        ssize_t r = recv(fd, &ch, 1, 0);
        if (r <= 0 || ch == '\n')
            break;
        out[n++] = ch;
    }
    out[n] = '\0';
}

/* ---- Escaping and parsing ------------------------------------------------------------------------ */

static void test_escape_round_trip(void **state)
{
    static const char *const cases[] = { "", "plain text", "a\\b", "line1\nline2", "\\n is not a newline",
                                         "\\\\\n\n\\", "trailing\\", "ünïcödé tab\there" };
    for (size_t i = 0; i < RT_ARRAY_SIZE(cases); i++) {
        char *e = vmctl_escape(cases[i]);
        assert_non_null(e);
        assert_null(strchr(e, '\n'));
        assert_int_equal(vmctl_unescape(e), 0);
        assert_string_equal(e, cases[i]);
        free(e);
    }
    char *e = vmctl_escape("a\\b\nc");
    assert_string_equal(e, "a\\\\b\\nc");
    free(e);
    char bad1[] = "ends with \\", bad2[] = "unknown \\t escape", bad3[] = "\\\\\\";
    assert_int_equal(vmctl_unescape(bad1), VERR_BAD_FORMAT);
    assert_int_equal(vmctl_unescape(bad2), VERR_BAD_FORMAT);
    assert_int_equal(vmctl_unescape(bad3), VERR_BAD_FORMAT);
}

static int tst_parse(const char *text, struct vmctl_request *req, char *storage, char errmsg[256])
{
    size_t len = strlen(text);
    memcpy(storage, text, len + 1);
    return vmctl_request_parse(storage, len, req, errmsg);
}

static void test_request_parse(void **state)
{
    struct vmctl_request req;
    char buf[512], err[256];
    assert_int_equal(tst_parse("VCTL1 state", &req, buf, err), 0);
    assert_int_equal(req.version, 1);
    assert_string_equal(req.command, "state");
    assert_null(req.argument);
    assert_int_equal(tst_parse("VCTL1 snapshot before upgrade\\nthe description \\\\ with a backslash\r", &req, buf,
                               err), 0);
    assert_string_equal(req.command, "snapshot");
    assert_string_equal(req.argument, "before upgrade\nthe description \\ with a backslash");
    assert_int_equal(tst_parse("VCTL1 keyboard-string ", &req, buf, err), 0);
    assert_string_equal(req.argument, "");

    assert_int_equal(tst_parse("VCTL2 state", &req, buf, err), VERR_NOT_SUPPORTED);
    assert_non_null(strstr(err, "version 1"));
    static const char *const garbage[] = {
        "", "hello", "VCTL", "VCTL1", "VCTL1 ", "VCTLx state", "VCTL1state", "VCTL1 STATE", "VCTL1 st@te",
        "VCTL1 a-command-name-that-is-far-too-long-for-us", "VCTL99999999999 state", "VCTL1 echo bad \\q escape",
        "VCTL1 echo tail\\", "VCTL1 echo bell\a", "VCTL1 echo \x7f", "vctl1 state",
    };
    for (size_t i = 0; i < RT_ARRAY_SIZE(garbage); i++) {
        err[0] = '\0';
        assert_int_equal(tst_parse(garbage[i], &req, buf, err), VERR_BAD_FORMAT);
        assert_true(strlen(err) > 10);
    }
    /* A NUL inside the line (the length says there is more). */
    memcpy(buf, "VCTL1 echo a\0b", 14);
    assert_int_equal(vmctl_request_parse(buf, 14, &req, err), VERR_BAD_FORMAT);
    assert_non_null(strstr(err, "0x00"));
}

static void test_socket_path(void **state)
{
    struct rt_uuid u;
    assert_int_equal(rt_uuid_parse("0f8fad5b-d9cb-469f-a165-70867728950e", &u), 0);
    char *old = getenv("XDG_RUNTIME_DIR") ? strdup(getenv("XDG_RUNTIME_DIR")) : NULL;
    setenv("XDG_RUNTIME_DIR", "/run/user/4242", 1);
    char *p = vmctl_socket_path(&u);
    assert_string_equal(p, "/run/user/4242/vireo/0f8fad5b-d9cb-469f-a165-70867728950e.sock");
    free(p);
    char expect[128];
    snprintf(expect, sizeof(expect), "/tmp/vireo-%u/0f8fad5b-d9cb-469f-a165-70867728950e.sock", (unsigned)getuid());
    setenv("XDG_RUNTIME_DIR", "relative/dir", 1);
    p = vmctl_socket_path(&u);
    assert_string_equal(p, expect);
    free(p);
    unsetenv("XDG_RUNTIME_DIR");
    p = vmctl_socket_path(&u);
    assert_string_equal(p, expect);
    free(p);
    if (old)
        setenv("XDG_RUNTIME_DIR", old, 1);
    free(old);
}

/* ---- Client and server together --------------------------------------------------------------------- */

static void test_round_trip(void **state)
{
    struct tst_ctx *t = *state;
    tst_server_start(t);
    struct stat st;
    assert_int_equal(lstat(t->sock, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    char dir[160];
    snprintf(dir, sizeof(dir), "%s/run/vireo", t->dir);
    assert_int_equal(lstat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);

    struct vmctl *c;
    assert_int_equal(vmctl_connect_path(t->sock, &c), 0);
    void *body;
    size_t len;
    char err[256];
    assert_int_equal(vmctl_request(c, "version", NULL, 2000, &body, &len, err), 0);
    assert_int_equal(len, 1);
    assert_string_equal(body, "1");
    free(body);
    static const char *const args[] = { "hello", "", "two\nlines", "back\\slash\\n", "\\", "blanks  at the end  " };
    for (size_t i = 0; i < RT_ARRAY_SIZE(args); i++) {
        assert_int_equal(vmctl_request(c, "echo", args[i], 2000, &body, &len, err), 0);
        assert_int_equal(len, strlen(args[i]));
        assert_memory_equal(body, args[i], len);
        assert_int_equal(((char *)body)[len], '\0');
        free(body);
    }
    /* An error keeps the connection usable, and its message stays on one line. */
    assert_int_equal(vmctl_request(c, "fail", NULL, 2000, &body, &len, err), VERR_INVALID_STATE);
    assert_null(body);
    assert_string_equal(err, "nope second line");
    assert_int_equal(vmctl_request(c, "nosuch", "x", 2000, NULL, NULL, err), VERR_NOT_SUPPORTED);
    assert_non_null(strstr(err, "nosuch"));
    /* A body bigger than any socket buffer arrives whole. */
    assert_int_equal(vmctl_request(c, "big", "3000000", 5000, &body, &len, err), 0);
    assert_int_equal(len, 3000000);
    for (size_t i = 0; i < len; i += 4099)
        assert_int_equal(((unsigned char *)body)[i], (unsigned char)(i * 7));
    free(body);
    /* The client refuses what it cannot send, without sending anything. */
    unsigned before = t->handled;
    assert_int_equal(vmctl_request(c, "Bad Name", NULL, 2000, NULL, NULL, err), VERR_INVALID_PARAMETER);
    assert_int_equal(vmctl_request(c, "", NULL, 2000, NULL, NULL, err), VERR_INVALID_PARAMETER);
    assert_int_equal(vmctl_request(c, "echo", "carriage\rreturn", 2000, NULL, NULL, err), VERR_INVALID_PARAMETER);
    char *huge = malloc(VMCTL_LINE_MAX + 10);
    memset(huge, 'x', VMCTL_LINE_MAX + 9);
    huge[VMCTL_LINE_MAX + 9] = '\0';
    assert_int_equal(vmctl_request(c, "echo", huge, 2000, NULL, NULL, err), VERR_TOO_LARGE);
    free(huge);
    assert_int_equal(t->handled, before);
    assert_int_equal(vmctl_request(c, "echo", "still fine", 2000, NULL, NULL, err), 0);
    /* 'bye' closes after its answer. */
    assert_int_equal(vmctl_request(c, "bye", NULL, 2000, NULL, NULL, err), 0);
    assert_int_equal(vmctl_request(c, "echo", "x", 2000, NULL, NULL, err), VERR_EOF);
    assert_int_equal(vmctl_request(c, "echo", "x", 2000, NULL, NULL, err), VERR_IO);
    vmctl_close(c);
    vmctl_close(NULL);
    tst_server_stop(t);
    /* The socket file goes with the server: nobody serves it any more. */
    assert_int_not_equal(lstat(t->sock, &st), 0);
    assert_int_equal(vmctl_connect_path(t->sock, &c), VERR_NOT_FOUND);
}

/* vmctl_call: one request to the machine with that UUID, on a connection of its own; no server, a clear error. */
static void test_call(void **state)
{
    struct tst_ctx *t = *state;
    char *old = getenv("XDG_RUNTIME_DIR") ? strdup(getenv("XDG_RUNTIME_DIR")) : NULL;
    char run[96];
    snprintf(run, sizeof(run), "%s/run", t->dir);
    setenv("XDG_RUNTIME_DIR", run, 1);
    struct rt_uuid uuid;
    assert_int_equal(rt_uuid_generate(&uuid), 0);
    char *path = vmctl_socket_path(&uuid);
    assert_non_null(path);
    void *body = (void *)1;
    size_t len = 99;
    char err[256];
    assert_int_equal(vmctl_call(&uuid, "echo", "x", 2000, &body, &len, err), VERR_NOT_FOUND);
    assert_null(body);
    assert_int_equal(len, 0);
    assert_non_null(strstr(err, "does not answer on its control socket"));

    snprintf(t->sock, sizeof(t->sock), "%s", path);
    tst_server_start(t);
    assert_int_equal(vmctl_call(&uuid, "echo", "two\nlines", 2000, &body, &len, err), 0);
    assert_int_equal(len, 9);
    assert_memory_equal(body, "two\nlines", 9);
    free(body);
    assert_int_equal(vmctl_call(&uuid, "fail", NULL, 2000, NULL, NULL, err), VERR_INVALID_STATE);
    assert_string_equal(err, "nope second line");
    /* Each call hangs up after its answer: the server is left with no connection. */
    for (int i = 0; i < 100 && vmctl_server_client_count(t->server); i++)
        rt_sleep_ns(10 * RT_NS_PER_MS);
    assert_int_equal(vmctl_server_client_count(t->server), 0);
    tst_server_stop(t);
    free(path);
    if (old) {
        setenv("XDG_RUNTIME_DIR", old, 1);
        free(old);
    } else {
        unsetenv("XDG_RUNTIME_DIR");
    }
}

static void test_garbage_and_long_lines(void **state)
{
    struct tst_ctx *t = *state;
    tst_server_start(t);
    int fd = tst_raw_connect(t->sock);
    char line[512];
    /* Garbage is answered and the connection goes on; several requests in one write are answered in order. */
    static const char burst[] = "hello there\nVCTL1\nVCTL7 version\nVCTL1 echo a\\zb\n\x01\x02\x03\nVCTL1 version\n";
    tst_send(fd, burst, sizeof(burst) - 1);
    for (int i = 0; i < 5; i++) {
        tst_recv_line(fd, line, sizeof(line));
        assert_true(rt_str_starts_with(line, "ERR -"));
    }
    tst_recv_line(fd, line, sizeof(line));
    assert_string_equal(line, "OK 1");
    tst_recv_line(fd, line, 2); /* the body "1" has no newline: read it as one byte */
    assert_string_equal(line, "1");
    /* A NUL byte inside a line. */
    tst_send(fd, "VCTL1 echo a\0b\n", 15);
    tst_recv_line(fd, line, sizeof(line));
    assert_true(rt_str_starts_with(line, "ERR -9 "));
    /* A line longer than the limit: an error, then the server hangs up. */
    size_t n = VMCTL_LINE_MAX + 100;
    char *big = malloc(n);
    memset(big, 'A', n);
    send(fd, big, n, MSG_NOSIGNAL); /* the server may close before taking all of it */
    free(big);
    tst_recv_line(fd, line, sizeof(line));
    char expect[32];
    snprintf(expect, sizeof(expect), "ERR %d ", VERR_TOO_LARGE);
    assert_true(rt_str_starts_with(line, expect));
    assert_non_null(strstr(line, "longer than"));
    char ch;
    assert_true(recv(fd, &ch, 1, 0) <= 0);
    close(fd);

    /* A client that half-closes after its request still gets the answer. */
    fd = tst_raw_connect(t->sock);
    tst_send(fd, "VCTL1 echo bye\n", 15);
    shutdown(fd, SHUT_WR);
    tst_recv_line(fd, line, sizeof(line));
    assert_string_equal(line, "OK 3");
    assert_int_equal(recv(fd, line, 3, MSG_WAITALL), 3);
    assert_int_equal(recv(fd, &ch, 1, 0), 0);
    close(fd);

    /* A client that dies with a large reply queued does not take the server down. */
    fd = tst_raw_connect(t->sock);
    tst_send(fd, "VCTL1 big 8000000\n", 18);
    close(fd);
    struct vmctl *c;
    assert_int_equal(vmctl_connect_path(t->sock, &c), 0);
    assert_int_equal(vmctl_request(c, "echo", "alive", 2000, NULL, NULL, NULL), 0);
    vmctl_close(c);
    tst_server_stop(t);
}

static void test_many_clients(void **state)
{
    struct tst_ctx *t = *state;
    tst_server_start(t);
    struct vmctl *c[20];
    for (int i = 0; i < 20; i++)
        assert_int_equal(vmctl_connect_path(t->sock, &c[i]), 0);
    for (int round = 0; round < 3; round++) {
        for (int i = 19; i >= 0; i--) {
            char arg[32], *body;
            size_t len;
            snprintf(arg, sizeof(arg), "client %d round %d", i, round);
            assert_int_equal(vmctl_request(c[i], "echo", arg, 2000, (void **)&body, &len, NULL), 0);
            assert_string_equal(body, arg);
            free(body);
        }
    }
    /* Requests pipelined on one raw connection come back in order. */
    int fd = tst_raw_connect(t->sock);
    char reqs[64 * 40] = "", line[64];
    for (int i = 0; i < 64; i++) {
        char one[40];
        snprintf(one, sizeof(one), "VCTL1 echo %02d\n", i);
        strcat(reqs, one);
    }
    tst_send(fd, reqs, strlen(reqs));
    for (int i = 0; i < 64; i++) {
        tst_recv_line(fd, line, sizeof(line));
        assert_string_equal(line, "OK 2");
        assert_int_equal(recv(fd, line, 2, MSG_WAITALL), 2);
        assert_int_equal((line[0] - '0') * 10 + (line[1] - '0'), i);
    }
    close(fd);
    for (int i = 0; i < 20; i++)
        vmctl_close(c[i]);
    /* Past the connection limit a client hears why. */
    int fds[40], busy = 0;
    for (int i = 0; i < 40; i++)
        fds[i] = tst_raw_connect(t->sock);
    for (int i = 0; i < 40; i++) {
        struct timeval tv = { .tv_usec = 30000 };
        setsockopt(fds[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        tst_recv_line(fds[i], line, sizeof(line));
        if (rt_str_starts_with(line, "ERR -13 too many"))
            busy++;
        close(fds[i]);
    }
    assert_true(busy >= 8);
    tst_server_stop(t);
}

static void test_server_setup(void **state)
{
    struct tst_ctx *t = *state;
    struct rt_evloop *loop;
    struct vmctl_server *s;
    assert_int_equal(rt_evloop_create(&loop), 0);
    /* A stale socket (its process is gone) is replaced. */
    char dir[160];
    snprintf(dir, sizeof(dir), "%s/run/vireo", t->dir);
    assert_int_equal(rt_dir_create_all(dir, 0755), 0);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un addr;
    tst_addr(&addr, t->sock);
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    close(fd);
    struct vmctl *c;
    assert_int_equal(vmctl_connect_path(t->sock, &c), VERR_NOT_FOUND);
    assert_int_equal(vmctl_server_create(loop, t->sock, tst_handler, t, &s), 0);
    struct stat st;
    assert_int_equal(lstat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(vmctl_server_client_count(s), 0);
    vmctl_server_destroy(s, 0);
    /* A regular file in the way is refused and left alone. */
    FILE *f = fopen(t->sock, "w");
    fputs("precious", f);
    fclose(f);
    assert_int_equal(vmctl_server_create(loop, t->sock, tst_handler, t, &s), VERR_ALREADY_EXISTS);
    assert_null(s);
    assert_int_equal(lstat(t->sock, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(vmctl_connect_path(t->sock, &c), VERR_NOT_FOUND);
    /* The folder must be a folder, not a link to one. */
    char link_dir[160], link_sock[200];
    snprintf(link_dir, sizeof(link_dir), "%s/linked", t->dir);
    assert_int_equal(symlink(dir, link_dir), 0);
    snprintf(link_sock, sizeof(link_sock), "%s/x.sock", link_dir);
    assert_int_equal(vmctl_server_create(loop, link_sock, tst_handler, t, &s), VERR_ACCESS_DENIED);
    /* Paths too long for a Unix socket. */
    char longp[200];
    memset(longp, 'a', sizeof(longp) - 1);
    longp[0] = '/';
    longp[sizeof(longp) - 1] = '\0';
    assert_int_equal(vmctl_server_create(loop, longp, tst_handler, t, &s), VERR_TOO_LARGE);
    assert_int_equal(vmctl_connect_path(longp, &c), VERR_TOO_LARGE);
    assert_int_equal(vmctl_connect_path("/nonexistent/dir/x.sock", &c), VERR_NOT_FOUND);
    rt_evloop_destroy(loop);
}

/* ---- The client against hostile servers ---------------------------------------------------------------- */

struct tst_fake {
    int listen_fd;
    const char *reply; /* sent after the first request line; NULL: never answer */
    size_t reply_len;
    bool close_after;
};

static void *tst_fake_main(void *arg)
{
    struct tst_fake *f = arg;
    int fd = accept(f->listen_fd, NULL, NULL);
    if (fd < 0)
        return NULL;
    char ch;
    while (recv(fd, &ch, 1, 0) == 1 && ch != '\n')
        ;
    if (f->reply)
        send(fd, f->reply, f->reply_len, MSG_NOSIGNAL);
    if (!f->close_after) {
        /* Hold the connection until the client gives up. */
        while (recv(fd, &ch, 1, 0) > 0)
            ;
    }
    close(fd);
    return NULL;
}

/* Runs one request against a fake server that answers with reply. */
static int tst_fake_request(struct tst_ctx *t, const char *reply, size_t reply_len, bool close_after,
                            unsigned timeout_ms, void **body, size_t *len, char err[256])
{
    struct tst_fake f = { .reply = reply, .reply_len = reply_len, .close_after = close_after };
    char path[160];
    snprintf(path, sizeof(path), "%s/fake.sock", t->dir);
    unlink(path);
    f.listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un addr;
    tst_addr(&addr, path);
    assert_int_equal(bind(f.listen_fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    assert_int_equal(listen(f.listen_fd, 1), 0);
    struct rt_thread *th;
    assert_int_equal(rt_thread_create(&th, "tst-fake", tst_fake_main, &f), 0);
    struct vmctl *c;
    assert_int_equal(vmctl_connect_path(path, &c), 0);
    int rc = vmctl_request(c, "state", NULL, timeout_ms, body, len, err);
    vmctl_close(c); /* also ends a fake server that holds the connection */
    rt_thread_join(th, NULL);
    close(f.listen_fd);
    return rc;
}

static void test_hostile_servers(void **state)
{
    struct tst_ctx *t = *state;
    void *body;
    size_t len;
    char err[256];
#define FAKE(s, close_after, ms) tst_fake_request(t, s, sizeof(s) - 1, close_after, ms, &body, &len, err)
    assert_int_equal(FAKE("OK 7\nrunning", true, 2000), 0);
    assert_int_equal(len, 7);
    assert_string_equal(body, "running");
    free(body);
    assert_int_equal(FAKE("ERR -14 the VM is not running\n", true, 2000), VERR_INVALID_STATE);
    assert_string_equal(err, "the VM is not running");
    assert_null(body);
    /* Closed in the middle of the body. */
    assert_int_equal(FAKE("OK 100\nonly a little", true, 2000), VERR_EOF);
    assert_null(body);
    assert_non_null(strstr(err, "closed"));
    /* Closed before any answer, and in the middle of the status line. */
    assert_int_equal(FAKE("", true, 2000), VERR_EOF);
    assert_int_equal(FAKE("OK 1", true, 2000), VERR_EOF);
    /* Lengths and codes that are not what the protocol allows. */
    assert_int_equal(FAKE("OK 99999999999\n", false, 2000), VERR_TOO_LARGE);
    assert_int_equal(FAKE("OK 67108865\n", false, 2000), VERR_TOO_LARGE);
    assert_int_equal(FAKE("OK 999999999999999999999999\n", false, 2000), VERR_BAD_FORMAT);
    assert_int_equal(FAKE("OK -1\n", false, 2000), VERR_BAD_FORMAT);
    assert_int_equal(FAKE("OK 1x\n", false, 2000), VERR_BAD_FORMAT);
    assert_int_equal(FAKE("OK\n", false, 2000), VERR_BAD_FORMAT);
    assert_int_equal(FAKE("HELLO\n", false, 2000), VERR_BAD_FORMAT);
    assert_int_equal(FAKE("ERR 0 zero\n", false, 2000), VERR_BAD_FORMAT);
    assert_int_equal(FAKE("ERR 5 positive\n", false, 2000), VERR_BAD_FORMAT);
    assert_int_equal(FAKE("ERR -99999999999 huge\n", false, 2000), VERR_BAD_FORMAT);
    assert_int_equal(FAKE("ERR x\n", false, 2000), VERR_BAD_FORMAT);
    assert_int_equal(FAKE("ERR -4\n", false, 2000), VERR_NOT_FOUND);
    assert_int_equal(FAKE("ERR -4 with\x01" "control\n", false, 2000), VERR_NOT_FOUND);
    assert_string_equal(err, "with control");
    assert_int_equal(FAKE("OK 2\na\0", true, 2000), 0);
    assert_int_equal(len, 2);
    assert_memory_equal(body, "a\0", 3);
    free(body);
    assert_int_equal(FAKE("OK\0 1\nx", false, 2000), VERR_BAD_FORMAT);
    /* A status line that never ends. */
    char *endless = malloc(VMCTL_LINE_MAX + 10);
    memset(endless, 'O', VMCTL_LINE_MAX + 10);
    assert_int_equal(tst_fake_request(t, endless, VMCTL_LINE_MAX + 10, false, 5000, &body, &len, err),
                     VERR_BAD_FORMAT);
    free(endless);
    /* A server that never answers: the deadline holds, and the connection is not used again. */
    uint64_t start = rt_time_mono_ns();
    assert_int_equal(tst_fake_request(t, NULL, 0, false, 200, &body, &len, err), VERR_TIMEOUT);
    uint64_t took = rt_time_mono_ns() - start;
    assert_true(took >= 190 * RT_NS_PER_MS && took < 3 * RT_NS_PER_SEC);
    assert_non_null(strstr(err, "200 ms"));
#undef FAKE
}

static void test_broken_connection_refused(void **state)
{
    struct tst_ctx *t = *state;
    tst_server_start(t);
    struct vmctl *c;
    assert_int_equal(vmctl_connect_path(t->sock, &c), 0);
    char err[256];
    /* The server takes 300 ms; the client gives it 50: afterwards the late answer must not be taken for the next. */
    assert_int_equal(vmctl_request(c, "slow", NULL, 50, NULL, NULL, err), VERR_TIMEOUT);
    assert_int_equal(vmctl_request(c, "echo", "x", 2000, NULL, NULL, err), VERR_IO);
    assert_non_null(strstr(err, "reconnect"));
    vmctl_close(c);
    assert_int_equal(vmctl_connect_path(t->sock, &c), 0);
    assert_int_equal(vmctl_request(c, "echo", "x", 2000, NULL, NULL, err), 0);
    vmctl_close(c);
    tst_server_stop(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape_round_trip),
        cmocka_unit_test(test_request_parse),
        cmocka_unit_test(test_socket_path),
        cmocka_unit_test_setup_teardown(test_round_trip, tst_setup, tst_teardown),
        cmocka_unit_test_setup_teardown(test_call, tst_setup, tst_teardown),
        cmocka_unit_test_setup_teardown(test_garbage_and_long_lines, tst_setup, tst_teardown),
        cmocka_unit_test_setup_teardown(test_many_clients, tst_setup, tst_teardown),
        cmocka_unit_test_setup_teardown(test_server_setup, tst_setup, tst_teardown),
        cmocka_unit_test_setup_teardown(test_hostile_servers, tst_setup, tst_teardown),
        cmocka_unit_test_setup_teardown(test_broken_connection_refused, tst_setup, tst_teardown),
    };
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
