/* tstSerialBackend.c - serial backend tests: file output, Unix and TCP sockets with reconnects, flow control, stdio over pipes, bad specs. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "harness.h"

/* A stand-in for the UART: takes at most `room` bytes until the test consumes them. */
struct sink {
    size_t room;
    uint8_t buf[1 << 16];
    size_t len;
    unsigned rx_calls;
};

static size_t sink_can_rx(void *opaque)
{
    struct sink *s = opaque;
    return s->room;
}

static void sink_rx(void *opaque, const uint8_t *buf, size_t len)
{
    struct sink *s = opaque;
    /* The backend must never offer more than can_rx allowed. */
    assert_true(len <= s->room);
    assert_true(s->len + len <= sizeof(s->buf));
    memcpy(s->buf + s->len, buf, len);
    s->len += len;
    s->room -= len;
    s->rx_calls++;
}

struct fixture {
    struct vm *vm;
    struct sink sink;
    struct serial_backend_client client;
    char path[108];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->vm = harness_vm_create(0);
    f->sink.room = SIZE_MAX / 2;
    f->client = (struct serial_backend_client){.can_rx = sink_can_rx, .rx = sink_rx, .opaque = &f->sink};
    snprintf(f->path, sizeof(f->path), "/tmp/vireo-tstSerialBackend-%d", (int)getpid());
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    harness_vm_destroy(f->vm);
    unlink(f->path);
    free(f);
    return 0;
}

static void pump(struct vm *vm, unsigned rounds)
{
    for (unsigned i = 0; i < rounds; i++)
        rt_evloop_run_once(vm_get_evloop(vm), 20 * RT_NS_PER_MS);
}

/* Pumps until the sink holds want bytes (or gives up after a while). */
static void pump_until_len(struct fixture *f, size_t want)
{
    for (unsigned i = 0; i < 100 && f->sink.len < want; i++)
        rt_evloop_run_once(vm_get_evloop(f->vm), 20 * RT_NS_PER_MS);
}

/* Reads exactly len bytes from a client socket, pumping the loop in between. */
static void client_read_exact(struct fixture *f, int fd, void *buf, size_t len)
{
    size_t got = 0;
    for (unsigned i = 0; i < 200 && got < len; i++) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 10) == 1) {
            ssize_t n = recv(fd, (uint8_t *)buf + got, len - got, 0);
            assert_true(n > 0);
            got += (size_t)n;
        } else {
            pump(f->vm, 1);
        }
    }
    assert_int_equal(got, len);
}

static int unix_connect(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    return fd;
}

static void test_null(void **state)
{
    struct fixture *f = *state;
    struct serial_backend *b = NULL;
    assert_int_equal(serial_backend_open(f->vm, "null", &f->client, &b), 0);
    assert_non_null(b);
    serial_backend_write(b, (const uint8_t *)"discarded", 9);
    serial_backend_rx_ready(b);
    pump(f->vm, 1);
    assert_int_equal(f->sink.len, 0);
    serial_backend_close(b);
}

static void test_file_output(void **state)
{
    struct fixture *f = *state;
    /* An existing file is truncated. */
    FILE *old = fopen(f->path, "w");
    assert_non_null(old);
    fputs("old contents that must go away", old);
    fclose(old);

    char spec[160];
    snprintf(spec, sizeof(spec), "file:%s", f->path);
    struct serial_backend *b = NULL;
    assert_int_equal(serial_backend_open(f->vm, spec, &f->client, &b), 0);
    static uint8_t big[200000];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i * 7);
    serial_backend_write(b, (const uint8_t *)"Linux version", 13);
    serial_backend_write(b, big, sizeof(big));
    serial_backend_close(b);

    void *data = NULL;
    size_t len = 0;
    assert_int_equal(rt_file_read_all(f->path, 1 << 20, &data, &len), 0);
    assert_int_equal(len, 13 + sizeof(big));
    assert_memory_equal(data, "Linux version", 13);
    assert_memory_equal((uint8_t *)data + 13, big, sizeof(big));
    free(data);

    /* Opening again truncates: only the new, shorter output remains. */
    assert_int_equal(serial_backend_open(f->vm, spec, &f->client, &b), 0);
    serial_backend_write(b, (const uint8_t *)"short", 5);
    serial_backend_close(b);
    assert_int_equal(rt_file_read_all(f->path, 1 << 20, &data, &len), 0);
    assert_int_equal(len, 5);
    assert_memory_equal(data, "short", 5);
    free(data);

    /* Created 0644 (less the umask). */
    unlink(f->path);
    assert_int_equal(serial_backend_open(f->vm, spec, &f->client, &b), 0);
    serial_backend_close(b);
    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    mode_t mask = umask(0);
    umask(mask);
    assert_int_equal(st.st_mode & 0777, 0644 & ~mask);
}

/* file: on a FIFO: refused without a reader, streamed with one, quiet when the reader leaves. */
static void test_file_fifo(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(mkfifo(f->path, 0600), 0);
    char spec[160];
    snprintf(spec, sizeof(spec), "file:%s", f->path);
    struct serial_backend *b = NULL;
    assert_int_equal(serial_backend_open(f->vm, spec, &f->client, &b), VERR_NOT_FOUND);

    int reader = open(f->path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    assert_true(reader >= 0);
    assert_int_equal(serial_backend_open(f->vm, spec, &f->client, &b), 0);
    serial_backend_write(b, (const uint8_t *)"through the fifo", 16);
    char buf[32];
    assert_int_equal(read(reader, buf, sizeof(buf)), 16);
    assert_memory_equal(buf, "through the fifo", 16);
    close(reader);
    /* EPIPE, not SIGPIPE; the loop then stops watching the dead end. */
    serial_backend_write(b, (const uint8_t *)"gone", 4);
    pump(f->vm, 2);
    serial_backend_write(b, (const uint8_t *)"still gone", 10);
    serial_backend_close(b);
}

static void test_unix_exchange_and_reconnect(void **state)
{
    struct fixture *f = *state;
    char spec[160];
    snprintf(spec, sizeof(spec), "unix:%s", f->path);
    struct serial_backend *b = NULL;
    assert_int_equal(serial_backend_open(f->vm, spec, &f->client, &b), 0);
    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));

    /* Output before any client is dropped. */
    serial_backend_write(b, (const uint8_t *)"early", 5);

    int c1 = unix_connect(f->path);
    pump(f->vm, 1);
    assert_int_equal(send(c1, "ping", 4, 0), 4);
    pump_until_len(f, 4);
    assert_int_equal(f->sink.len, 4);
    assert_memory_equal(f->sink.buf, "ping", 4);
    serial_backend_write(b, (const uint8_t *)"pong", 4);
    char buf[16];
    client_read_exact(f, c1, buf, 4);
    assert_memory_equal(buf, "pong", 4);

    /* A second client waits in the backlog while the first is connected. */
    int c2 = unix_connect(f->path);
    pump(f->vm, 2);
    assert_int_equal(send(c2, "two", 3, 0), 3);
    pump(f->vm, 2);
    assert_int_equal(f->sink.len, 4);

    /* The first client leaves; the backend notices and takes the second. */
    close(c1);
    pump_until_len(f, 7);
    assert_int_equal(f->sink.len, 7);
    assert_memory_equal(f->sink.buf + 4, "two", 3);
    serial_backend_write(b, (const uint8_t *)"hello2", 6);
    client_read_exact(f, c2, buf, 6);
    assert_memory_equal(buf, "hello2", 6);

    /* Reconnect after the second one leaves. */
    close(c2);
    pump(f->vm, 3);
    serial_backend_write(b, (const uint8_t *)"nobody", 6);
    int c3 = unix_connect(f->path);
    pump(f->vm, 2);
    serial_backend_write(b, (const uint8_t *)"three", 5);
    client_read_exact(f, c3, buf, 5);
    assert_memory_equal(buf, "three", 5);
    close(c3);
    serial_backend_close(b);
    /* The socket file is removed at close. */
    assert_int_equal(access(f->path, F_OK), -1);
}

static void test_unix_peer_reset_while_writing(void **state)
{
    struct fixture *f = *state;
    char spec[160];
    snprintf(spec, sizeof(spec), "unix:%s", f->path);
    struct serial_backend *b = NULL;
    assert_int_equal(serial_backend_open(f->vm, spec, &f->client, &b), 0);
    int c1 = unix_connect(f->path);
    pump(f->vm, 1);
    close(c1);
    /* Writes before the loop noticed hit EPIPE: no SIGPIPE, no crash, the loop cleans up. */
    for (unsigned i = 0; i < 100; i++)
        serial_backend_write(b, (const uint8_t *)"into the void", 13);
    pump(f->vm, 3);
    int c2 = unix_connect(f->path);
    pump(f->vm, 2);
    serial_backend_write(b, (const uint8_t *)"alive", 5);
    char buf[8];
    client_read_exact(f, c2, buf, 5);
    assert_memory_equal(buf, "alive", 5);
    close(c2);
    serial_backend_close(b);
}

static void test_unix_rx_flow_control(void **state)
{
    struct fixture *f = *state;
    char spec[160];
    snprintf(spec, sizeof(spec), "unix:%s", f->path);
    struct serial_backend *b = NULL;
    assert_int_equal(serial_backend_open(f->vm, spec, &f->client, &b), 0);
    int c = unix_connect(f->path);
    pump(f->vm, 1);

    f->sink.room = 3;
    assert_int_equal(send(c, "0123456789", 10, 0), 10);
    pump(f->vm, 4);
    assert_int_equal(f->sink.len, 3);
    /* Still full: the backend stopped watching and does not spin or read ahead. */
    unsigned calls = f->sink.rx_calls;
    pump(f->vm, 3);
    assert_int_equal(f->sink.rx_calls, calls);
    while (f->sink.len < 10) {
        size_t before = f->sink.len;
        f->sink.room = 3;
        serial_backend_rx_ready(b);
        pump(f->vm, 3);
        assert_true(f->sink.len > before);
    }
    assert_memory_equal(f->sink.buf, "0123456789", 10);
    close(c);
    serial_backend_close(b);
}

static void test_unix_output_overflow_drops(void **state)
{
    struct fixture *f = *state;
    char spec[160];
    snprintf(spec, sizeof(spec), "unix:%s", f->path);
    struct serial_backend *b = NULL;
    assert_int_equal(serial_backend_open(f->vm, spec, &f->client, &b), 0);
    int c = unix_connect(f->path);
    pump(f->vm, 1);

    /* The client reads nothing while 4 MiB are written: the writer must not block. */
    static uint8_t chunk[4096];
    const size_t total = 4u << 20;
    for (size_t off = 0; off < total; off += sizeof(chunk)) {
        for (size_t i = 0; i < sizeof(chunk); i++)
            chunk[i] = (uint8_t)((off + i) % 251);
        serial_backend_write(b, chunk, sizeof(chunk));
    }
    /* What arrives is an unbroken prefix of the stream; the rest was dropped. */
    size_t got = 0;
    for (unsigned idle = 0; idle < 5;) {
        struct pollfd p = {.fd = c, .events = POLLIN};
        if (poll(&p, 1, 5) == 1) {
            uint8_t buf[8192];
            ssize_t n = recv(c, buf, sizeof(buf), 0);
            assert_true(n > 0);
            for (ssize_t i = 0; i < n; i++)
                assert_int_equal(buf[i], (uint8_t)((got + (size_t)i) % 251));
            got += (size_t)n;
            idle = 0;
        } else {
            pump(f->vm, 1);
            idle++;
        }
    }
    assert_true(got >= 64 * 1024);
    assert_true(got < total);
    close(c);
    serial_backend_close(b);
}

static uint16_t free_tcp_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    socklen_t len = sizeof(addr);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
    close(fd);
    return ntohs(addr.sin_port);
}

static int tcp_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    return fd;
}

static void tcp_exchange(struct fixture *f, const char *spec, uint16_t port)
{
    struct serial_backend *b = NULL;
    assert_int_equal(serial_backend_open(f->vm, spec, &f->client, &b), 0);
    for (unsigned round = 0; round < 2; round++) {
        size_t base = f->sink.len;
        int c = tcp_connect(port);
        pump(f->vm, 1);
        assert_int_equal(send(c, "guest?", 6, 0), 6);
        pump_until_len(f, base + 6);
        assert_int_equal(f->sink.len, base + 6);
        assert_memory_equal(f->sink.buf + base, "guest?", 6);
        serial_backend_write(b, (const uint8_t *)"login:", 6);
        char buf[8];
        client_read_exact(f, c, buf, 6);
        assert_memory_equal(buf, "login:", 6);
        close(c);
        pump(f->vm, 2);
    }
    serial_backend_close(b);
}

static void test_tcp_exchange(void **state)
{
    struct fixture *f = *state;
    char spec[64];
    uint16_t port = free_tcp_port();
    snprintf(spec, sizeof(spec), "tcp:127.0.0.1:%u", port);
    tcp_exchange(f, spec, port);
    /* The short form listens on loopback too; SO_REUSEADDR lets it take the port again at once. */
    snprintf(spec, sizeof(spec), "tcp:%u", port);
    tcp_exchange(f, spec, port);
}

static void test_tcp_port_in_use(void **state)
{
    struct fixture *f = *state;
    char spec[64];
    uint16_t port = free_tcp_port();
    snprintf(spec, sizeof(spec), "tcp:%u", port);
    struct serial_backend *b1 = NULL, *b2 = NULL;
    assert_int_equal(serial_backend_open(f->vm, spec, &f->client, &b1), 0);
    assert_true(serial_backend_open(f->vm, spec, &f->client, &b2) < 0);
    assert_null(b2);
    serial_backend_close(b1);
}

static void test_bad_specs(void **state)
{
    struct fixture *f = *state;
    struct serial_backend *b = (struct serial_backend *)&b;
    assert_int_equal(serial_backend_open(f->vm, "file:/nonexistent/x", &f->client, &b), VERR_FILE_NOT_FOUND);
    assert_null(b);
    assert_int_equal(serial_backend_open(f->vm, "telnet:23", &f->client, &b), VERR_INVALID_PARAMETER);
    assert_int_equal(serial_backend_open(f->vm, "", &f->client, &b), VERR_INVALID_PARAMETER);
    assert_int_equal(serial_backend_open(f->vm, "file:", &f->client, &b), VERR_INVALID_PARAMETER);
    assert_int_equal(serial_backend_open(f->vm, "unix:", &f->client, &b), VERR_INVALID_PARAMETER);
    assert_int_equal(serial_backend_open(f->vm, "tcp:", &f->client, &b), VERR_INVALID_PARAMETER);
    assert_int_equal(serial_backend_open(f->vm, "tcp:http", &f->client, &b), VERR_INVALID_PARAMETER);
    assert_int_equal(serial_backend_open(f->vm, "tcp:70000", &f->client, &b), VERR_INVALID_PARAMETER);
    assert_int_equal(serial_backend_open(f->vm, "tcp:127.0.0.1:-1", &f->client, &b), VERR_INVALID_PARAMETER);
    assert_int_equal(serial_backend_open(f->vm, "tcp:0x50", &f->client, &b), VERR_INVALID_PARAMETER);
    assert_int_equal(serial_backend_open(f->vm, "unix:/nonexistent/dir/sock", &f->client, &b),
                     VERR_FILE_NOT_FOUND);
    char longpath[200];
    memset(longpath, 'a', sizeof(longpath));
    memcpy(longpath, "unix:/tmp/", 10);
    longpath[sizeof(longpath) - 1] = '\0';
    assert_int_equal(serial_backend_open(f->vm, longpath, &f->client, &b), VERR_TOO_LARGE);

    /* A regular file where the socket should go is the user's: refused and left alone. */
    FILE *file = fopen(f->path, "w");
    assert_non_null(file);
    fputs("keep me", file);
    fclose(file);
    char spec[160];
    snprintf(spec, sizeof(spec), "unix:%s", f->path);
    assert_int_equal(serial_backend_open(f->vm, spec, &f->client, &b), VERR_ALREADY_EXISTS);
    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_size, 7);
    /* A stale socket from an earlier run is replaced. */
    unlink(f->path);
    int stale = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", f->path);
    assert_int_equal(bind(stale, (struct sockaddr *)&addr, sizeof(addr)), 0);
    close(stale);
    assert_int_equal(serial_backend_open(f->vm, spec, &f->client, &b), 0);
    serial_backend_close(b);
}

/* stdio, with the test's stdin and stdout swapped for pipes for the duration. */
static void test_stdio_over_pipes(void **state)
{
    struct fixture *f = *state;
    int in_pipe[2], out_pipe[2];
    assert_int_equal(pipe(in_pipe), 0);
    assert_int_equal(pipe(out_pipe), 0);
    fflush(stdout);
    int saved_in = dup(STDIN_FILENO), saved_out = dup(STDOUT_FILENO);
    dup2(in_pipe[0], STDIN_FILENO);
    dup2(out_pipe[1], STDOUT_FILENO);

    struct serial_backend *b = NULL, *b2 = NULL;
    int rc_open = serial_backend_open(f->vm, "stdio", &f->client, &b);
    int rc_second = serial_backend_open(f->vm, "stdio", &f->client, &b2);
    serial_backend_write(b, (const uint8_t *)"to stdout", 9);
    ssize_t wrote = write(in_pipe[1], "from stdin", 10);
    pump_until_len(f, 10);
    size_t sink_len = f->sink.len;
    char buf[16] = {0};
    ssize_t got = read(out_pipe[0], buf, sizeof(buf));
    /* The reader of stdout goes away: output fails quietly, without SIGPIPE. */
    close(out_pipe[0]);
    close(out_pipe[1]);
    dup2(saved_out, STDOUT_FILENO);
    serial_backend_write(b, (const uint8_t *)"lost", 4);
    pump(f->vm, 2);
    serial_backend_close(b);
    /* Closing frees stdio for the next VM. */
    int rc_again = serial_backend_open(f->vm, "stdio", &f->client, &b2);
    serial_backend_close(b2);

    dup2(saved_in, STDIN_FILENO);
    close(saved_in);
    close(saved_out);
    close(in_pipe[0]);
    close(in_pipe[1]);

    assert_int_equal(rc_open, 0);
    assert_int_equal(rc_second, VERR_BUSY);
    assert_int_equal(rc_again, 0);
    assert_int_equal(wrote, 10);
    assert_int_equal(got, 9);
    assert_memory_equal(buf, "to stdout", 9);
    assert_int_equal(sink_len, 10);
    assert_memory_equal(f->sink.buf, "from stdin", 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_null, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_output, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_fifo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unix_exchange_and_reconnect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unix_peer_reset_while_writing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unix_rx_flow_control, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unix_output_overflow_drops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tcp_exchange, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tcp_port_in_use, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_specs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stdio_over_pipes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
