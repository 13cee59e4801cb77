/* vmctl.c - the control socket's client side and the protocol pieces both sides share: socket paths, argument escaping, request parsing. */
/*
 * Design: the client is synchronous.  A connection keeps one receive buffer; whatever
 * arrives past a response (nothing, with a well-behaved server) stays there for the next
 * request.  Every wait is bounded by the request's deadline through poll(), and every
 * length the server sends is checked before anything is allocated: a response line must
 * end within VMCTL_LINE_MAX bytes and a body may not exceed VMCTL_BODY_MAX.  After a
 * transport failure or a malformed response the connection's position in the byte stream
 * is unknown, so it refuses further requests.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "vireo/rt.h"
#include "vireo/vmctl.h"

struct vmctl {
    int fd;
    bool broken;
    char *buf; /* received, not yet consumed: buf[0..len) */
    size_t len, cap;
};

/* ---- Paths ------------------------------------------------------------------------------- */

char *vmctl_socket_path(const struct rt_uuid *uuid)
{
    char id[RT_UUID_STR_LEN];
    rt_uuid_to_str(uuid, id);
    /* The runtime folder is the user's own (mode 0700, by the login manager); a relative value is no such folder. */
    const char *run = getenv("XDG_RUNTIME_DIR");
    if (run && run[0] == '/')
        return rt_strdup_printf("%s/vireo/%s.sock", run, id);
    return rt_strdup_printf("/tmp/vireo-%u/%s.sock", (unsigned)getuid(), id);
}

/* ---- Escaping and request parsing ---------------------------------------------------------- */

char *vmctl_escape(const char *s)
{
    size_t n = 0;
    for (const char *p = s; *p; p++)
        n += *p == '\\' || *p == '\n' ? 2 : 1;
    char *out = malloc(n + 1), *o = out;
    if (!out)
        return NULL;
    for (const char *p = s; *p; p++) {
        if (*p == '\\' || *p == '\n') {
            *o++ = '\\';
            *o++ = *p == '\n' ? 'n' : '\\';
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    return out;
}

int vmctl_unescape(char *s)
{
    char *o = s;
    for (const char *p = s; *p; p++) {
        if (*p != '\\') {
            *o++ = *p;
            continue;
        }
        p++;
        if (*p == '\\')
            *o++ = '\\';
        else if (*p == 'n')
            *o++ = '\n';
        else
            return VERR_BAD_FORMAT; /* includes a backslash at the very end */
    }
    *o = '\0';
    return 0;
}

/* Bytes a request line may carry: printable ones, tabs and bytes of UTF-8 sequences. */
static bool is_line_byte(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static bool is_command_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

int vmctl_request_parse(char *line, size_t len, struct vmctl_request *out, char errmsg[256])
{
    memset(out, 0, sizeof(*out));
    errmsg[0] = '\0';
    if (len && line[len - 1] == '\r')
        len--;
    line[len] = '\0';
    for (size_t i = 0; i < len; i++) {
        if (!is_line_byte((unsigned char)line[i])) {
            snprintf(errmsg, 256, "request has a control character (byte 0x%02x at offset %zu); "
                     "expected \"VCTL%u <command>[ <argument>]\"", (unsigned char)line[i], i, VMCTL_PROTOCOL_VERSION);
            return VERR_BAD_FORMAT;
        }
    }
    if (strncmp(line, "VCTL", 4) != 0 || line[4] < '0' || line[4] > '9') {
        snprintf(errmsg, 256, "not a control request; expected \"VCTL%u <command>[ <argument>]\"",
                 VMCTL_PROTOCOL_VERSION);
        return VERR_BAD_FORMAT;
    }
    char *p = line + 4;
    unsigned long version = 0;
    while (*p >= '0' && *p <= '9') {
        version = version * 10 + (unsigned long)(*p++ - '0');
        if (version > 1000000) {
            snprintf(errmsg, 256, "protocol version number is too large");
            return VERR_BAD_FORMAT;
        }
    }
    if (*p != ' ') {
        snprintf(errmsg, 256, "expected a blank and a command after \"VCTL%lu\"", version);
        return VERR_BAD_FORMAT;
    }
    if (version != VMCTL_PROTOCOL_VERSION) {
        snprintf(errmsg, 256, "protocol version %lu is not spoken here; this VM speaks version %u", version,
                 VMCTL_PROTOCOL_VERSION);
        return VERR_NOT_SUPPORTED;
    }
    char *cmd = ++p;
    while (is_command_char(*p))
        p++;
    size_t cmd_len = (size_t)(p - cmd);
    if (cmd_len == 0 || cmd_len > VMCTL_COMMAND_MAX || (*p && *p != ' ')) {
        snprintf(errmsg, 256, "bad command name (lower-case letters, digits and '-', at most %u characters)",
                 VMCTL_COMMAND_MAX);
        return VERR_BAD_FORMAT;
    }
    char *arg = NULL;
    if (*p == ' ') {
        *p = '\0';
        arg = p + 1;
        if (vmctl_unescape(arg)) {
            snprintf(errmsg, 256, "bad escape in the argument (only \\\\ and \\n are defined)");
            return VERR_BAD_FORMAT;
        }
    }
    out->version = (unsigned)version;
    out->command = cmd;
    out->argument = arg;
    return 0;
}

/* ---- Connections ------------------------------------------------------------------------------ */

int vmctl_connect_path(const char *socket_path, struct vmctl **out)
{
    *out = NULL;
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    if (!socket_path || !*socket_path)
        return VERR_INVALID_PARAMETER;
    if (strlen(socket_path) >= sizeof(addr.sun_path))
        return VERR_TOO_LARGE;
    memcpy(addr.sun_path, socket_path, strlen(socket_path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return rt_err_from_errno(errno);
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        int e = errno;
        close(fd);
        /* No socket file, or a file nobody listens on (a process that died): the VM does not run. */
        return e == ENOENT || e == ECONNREFUSED || e == ENOTSOCK ? VERR_NOT_FOUND : rt_err_from_errno(e);
    }
    struct vmctl *c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        return VERR_NO_MEMORY;
    }
    c->fd = fd;
    *out = c;
    return 0;
}

int vmctl_connect(const struct rt_uuid *uuid, struct vmctl **out)
{
    char *path = vmctl_socket_path(uuid);
    if (!path)
        return VERR_NO_MEMORY;
    int rc = vmctl_connect_path(path, out);
    free(path);
    return rc;
}

void vmctl_close(struct vmctl *c)
{
    if (!c)
        return;
    close(c->fd);
    free(c->buf);
    free(c);
}

/* Milliseconds left until deadline_ns for poll() (-1: no deadline); 0 once it has passed. */
static int ms_left(uint64_t deadline_ns)
{
    if (!deadline_ns)
        return -1;
    uint64_t now = rt_time_mono_ns();
    if (now >= deadline_ns)
        return 0;
    uint64_t ms = (deadline_ns - now + RT_NS_PER_MS - 1) / RT_NS_PER_MS;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

static int wait_fd(int fd, short events, uint64_t deadline_ns)
{
    for (;;) {
        struct pollfd pfd = { .fd = fd, .events = events };
        int left = ms_left(deadline_ns);
        if (left == 0)
            return VERR_TIMEOUT;
        int n = poll(&pfd, 1, left);
        if (n > 0)
            return 0;
        if (n == 0)
            return VERR_TIMEOUT;
        if (errno != EINTR)
            return rt_err_from_errno(errno);
    }
}

static int send_all(struct vmctl *c, const char *data, size_t len, uint64_t deadline_ns)
{
    while (len) {
        int rc = wait_fd(c->fd, POLLOUT, deadline_ns);
        if (rc)
            return rc;
        ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
                continue;
            return errno == EPIPE || errno == ECONNRESET ? VERR_EOF : VERR_IO;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Receives more bytes into the buffer, growing it up to want bytes of capacity. */
static int recv_more(struct vmctl *c, size_t want, uint64_t deadline_ns)
{
    if (c->cap < want) {
        size_t cap = c->cap ? c->cap : 4096;
        while (cap < want)
            cap *= 2;
        char *nb = realloc(c->buf, cap + 1);
        if (!nb)
            return VERR_NO_MEMORY;
        c->buf = nb;
        c->cap = cap;
    }
    for (;;) {
        int rc = wait_fd(c->fd, POLLIN, deadline_ns);
        if (rc)
            return rc;
        ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, MSG_DONTWAIT);
        if (n > 0) {
            c->len += (size_t)n;
            return 0;
        }
        if (n == 0)
            return VERR_EOF;
        if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
            return errno == ECONNRESET ? VERR_EOF : VERR_IO;
    }
}

static void consume(struct vmctl *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

/* A decimal number of at most max (no sign, no blanks); false for anything else. */
static bool parse_decimal(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (!*s)
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > max)
            return false;
    }
    *out = v;
    return true;
}

static int bad_response(char errmsg[256], const char *what)
{
    snprintf(errmsg, 256, "malformed response from the VM: %s", what);
    return VERR_BAD_FORMAT;
}

/*
 * Reads one response; the request is out.  Returns 0 (body filled), the server's code (*answered set) or a
 * transport or protocol failure.
 */
static int read_response(struct vmctl *c, uint64_t deadline_ns, void **body, size_t *len, char errmsg[256],
                         bool *answered)
{
    char *nl = NULL;
    size_t scanned = 0;
    while (!c->len || !(nl = memchr(c->buf + scanned, '\n', c->len - scanned))) {
        scanned = c->len;
        if (c->len >= VMCTL_LINE_MAX)
            return bad_response(errmsg, "response line longer than the protocol allows");
        int rc = recv_more(c, RT_MIN((size_t)VMCTL_LINE_MAX, c->len + 4096), deadline_ns);
        if (rc)
            return rc;
    }
    size_t line_len = (size_t)(nl - c->buf);
    *nl = '\0';
    if (memchr(c->buf, '\0', line_len))
        return bad_response(errmsg, "NUL byte in the response line");
    if (!strncmp(c->buf, "ERR ", 4)) {
        char *code_s = c->buf + 4, *sp = strchr(code_s, ' ');
        if (sp)
            *sp = '\0';
        uint64_t code;
        if (*code_s != '-' || !parse_decimal(code_s + 1, INT_MAX, &code) || code == 0)
            return bad_response(errmsg, "ERR without a negative status code");
        snprintf(errmsg, 256, "%s", sp ? sp + 1 : rt_err_str(-(int)code));
        for (char *p = errmsg; *p; p++)
            if ((unsigned char)*p < 0x20)
                *p = ' ';
        consume(c, line_len + 1);
        *answered = true;
        return -(int)code;
    }
    uint64_t body_len;
    if (strncmp(c->buf, "OK ", 3) != 0 || !parse_decimal(c->buf + 3, UINT64_MAX / 2, &body_len))
        return bad_response(errmsg, "neither \"OK <length>\" nor \"ERR <code> <message>\"");
    if (body_len > VMCTL_BODY_MAX) {
        snprintf(errmsg, 256, "the VM announced a response of %llu bytes; at most %u are accepted",
                 (unsigned long long)body_len, VMCTL_BODY_MAX);
        return VERR_TOO_LARGE;
    }
    consume(c, line_len + 1);
    while (c->len < body_len) {
        int rc = recv_more(c, (size_t)body_len, deadline_ns);
        if (rc) {
            if (rc == VERR_EOF)
                snprintf(errmsg, 256, "the VM closed the connection after %zu of %llu response bytes", c->len,
                         (unsigned long long)body_len);
            return rc;
        }
    }
    if (body) {
        char *b = malloc((size_t)body_len + 1);
        if (!b)
            return VERR_NO_MEMORY;
        memcpy(b, c->buf, (size_t)body_len);
        b[body_len] = '\0';
        *body = b;
    }
    if (len)
        *len = (size_t)body_len;
    consume(c, (size_t)body_len);
    *answered = true;
    return 0;
}

int vmctl_request(struct vmctl *c, const char *command, const char *argument, unsigned timeout_ms, void **body,
                  size_t *len, char errmsg[256])
{
    char dummy[256];
    if (!errmsg)
        errmsg = dummy;
    errmsg[0] = '\0';
    if (body)
        *body = NULL;
    if (len)
        *len = 0;
    if (!c)
        return VERR_INVALID_PARAMETER;
    if (c->broken) {
        snprintf(errmsg, 256, "the control connection failed earlier; reconnect");
        return VERR_IO;
    }
    size_t cmd_len = command ? strlen(command) : 0;
    bool cmd_ok = cmd_len > 0 && cmd_len <= VMCTL_COMMAND_MAX;
    for (size_t i = 0; cmd_ok && i < cmd_len; i++)
        cmd_ok = is_command_char(command[i]);
    if (!cmd_ok) {
        snprintf(errmsg, 256, "'%.64s' is not a control command name", command ? command : "");
        return VERR_INVALID_PARAMETER;
    }
    for (const char *p = argument; p && *p; p++) {
        if (*p != '\n' && !is_line_byte((unsigned char)*p)) {
            snprintf(errmsg, 256, "the argument of '%s' has a control character (0x%02x) the protocol cannot carry",
                     command, (unsigned char)*p);
            return VERR_INVALID_PARAMETER;
        }
    }
    char *esc = argument ? vmctl_escape(argument) : NULL;
    if (argument && !esc)
        return VERR_NO_MEMORY;
    char *line = rt_strdup_printf("VCTL%u %s%s%s\n", VMCTL_PROTOCOL_VERSION, command, esc ? " " : "", esc ? esc : "");
    free(esc);
    if (!line)
        return VERR_NO_MEMORY;
    size_t line_len = strlen(line);
    if (line_len > VMCTL_LINE_MAX) {
        free(line);
        snprintf(errmsg, 256, "the request is %zu bytes long; the protocol allows %u", line_len, VMCTL_LINE_MAX);
        return VERR_TOO_LARGE;
    }
    uint64_t deadline = timeout_ms ? rt_time_mono_ns() + (uint64_t)timeout_ms * RT_NS_PER_MS : 0;
    bool answered = false;
    int rc = send_all(c, line, line_len, deadline);
    free(line);
    if (!rc)
        rc = read_response(c, deadline, body, len, errmsg, &answered);
    /* An answer, OK or ERR, leaves the stream in step; anything else leaves it at an unknown place. */
    if (!answered)
        c->broken = true;
    if (rc && !answered && !errmsg[0]) {
        if (rc == VERR_TIMEOUT)
            snprintf(errmsg, 256, "the VM did not answer '%s' within %u ms", command, timeout_ms);
        else if (rc == VERR_EOF)
            snprintf(errmsg, 256, "the VM closed the control connection before answering '%s'", command);
        else
            snprintf(errmsg, 256, "control connection: %s", rt_err_str(rc));
    }
    return rc;
}

int vmctl_call(const struct rt_uuid *uuid, const char *command, const char *argument, unsigned timeout_ms, void **body,
               size_t *len, char errmsg[256])
{
    errmsg[0] = '\0';
    if (body)
        *body = NULL;
    if (len)
        *len = 0;
    struct vmctl *c = NULL;
    int rc = vmctl_connect(uuid, &c);
    if (rc < 0) {
        snprintf(errmsg, 256, "the machine does not answer on its control socket (%s)", rt_err_str(rc));
        return rc;
    }
    rc = vmctl_request(c, command, argument, timeout_ms, body, len, errmsg);
    vmctl_close(c);
    return rc;
}

int vmctl_snapshot_take(const struct rt_uuid *uuid, const char *name, const char *description, struct rt_uuid *out,
                        char errmsg[256])
{
    errmsg[0] = '\0';
    char *arg = rt_strdup_printf("%s\n%s", name, description ? description : "");
    void *body = NULL;
    size_t len = 0;
    int rc = arg ? vmctl_call(uuid, "snapshot", arg, VMCTL_SNAPSHOT_TIMEOUT_MS, &body, &len, errmsg) : VERR_NO_MEMORY;
    free(arg);
    if (rc == 0 && out && (len >= RT_UUID_STR_LEN || rt_uuid_parse(body, out) < 0)) {
        rc = VERR_BAD_FORMAT;
        snprintf(errmsg, 256, "its answer is not a snapshot UUID");
    }
    free(body);
    return rc;
}
