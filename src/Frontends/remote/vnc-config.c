/* vnc-config.c - the VNC server's options: listen specifications, password files and keyboard layouts, checked before anything listens. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vireo/err.h"
#include "vireo/rt.h"
#include "remote.h"

#define LOG_COMPONENT "vnc"

/* A password file is one short line; anything bigger is not a password file. */
#define VNC_PASSWORD_FILE_MAX 4096

static int vnc_fail(char *err, size_t err_len, int rc, const char *fmt, ...) RT_PRINTF(4, 5);
static int vnc_fail(char *err, size_t err_len, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && err_len)
        vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
    return rc;
}

/* A decimal number of at most 5 digits, no sign, no spaces. */
static bool vnc_parse_number(const char *s, size_t len, unsigned long *out)
{
    if (len == 0 || len > 5)
        return false;
    unsigned long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    *out = v;
    return true;
}

/* "PORT" or ":N" (after the address part) to a port number. */
static int vnc_parse_port(const char *spec, const char *p, unsigned *port, char *err, size_t err_len)
{
    unsigned long v;
    if (p[0] == ':') {
        if (!vnc_parse_number(p + 1, strlen(p + 1), &v) || v > 65535 - VNC_BASE_PORT)
            return vnc_fail(err, err_len, VERR_INVALID_PARAMETER,
                            "--vnc '%s': display number '%s' must be 0 to %u (port 5900 + N)", spec, p + 1,
                            65535 - VNC_BASE_PORT);
        *port = VNC_BASE_PORT + (unsigned)v;
        return 0;
    }
    if (!vnc_parse_number(p, strlen(p), &v) || v > 65535)
        return vnc_fail(err, err_len, VERR_INVALID_PARAMETER,
                        "--vnc '%s': port '%s' must be a number from 0 (the first free from 5900) to 65535, or :N for "
                        "display N", spec, p);
    *port = (unsigned)v;
    return 0;
}

int vnc_listen_parse(const char *spec, struct vnc_options *opts, char *err, size_t err_len)
{
    char addr[sizeof(opts->address)] = "";
    const char *port_part = spec;
    if (!spec || !*spec)
        return vnc_fail(err, err_len, VERR_INVALID_PARAMETER, "--vnc needs [ADDRESS:]PORT or :DISPLAY");
    if (strlen(spec) > 128)
        return vnc_fail(err, err_len, VERR_INVALID_PARAMETER, "--vnc: the listen specification is too long");
    if (spec[0] == '[') {
        /* [IPv6]:PORT: the address is bracketed because it holds colons itself. */
        const char *end = strchr(spec, ']');
        if (!end || end[1] != ':' || (size_t)(end - spec - 1) >= sizeof(addr))
            return vnc_fail(err, err_len, VERR_INVALID_PARAMETER,
                            "--vnc '%s': an IPv6 address is written [ADDRESS]:PORT", spec);
        memcpy(addr, spec + 1, (size_t)(end - spec - 1));
        addr[end - spec - 1] = '\0';
        port_part = end + 2;
        struct in6_addr a6;
        if (inet_pton(AF_INET6, addr, &a6) != 1)
            return vnc_fail(err, err_len, VERR_INVALID_PARAMETER, "--vnc '%s': '%s' is not an IPv6 address", spec,
                            addr);
    } else if (spec[0] != ':') {
        /* ADDR:PORT or ADDR::N, or a bare PORT. */
        const char *colon = strchr(spec, ':');
        if (colon) {
            size_t n = (size_t)(colon - spec);
            if (n >= sizeof(addr))
                return vnc_fail(err, err_len, VERR_INVALID_PARAMETER, "--vnc '%s': the address is too long", spec);
            memcpy(addr, spec, n);
            addr[n] = '\0';
            port_part = colon + 1;
            if (!strcmp(addr, "localhost"))
                strcpy(addr, "127.0.0.1");
            struct in_addr a4;
            if (inet_pton(AF_INET, addr, &a4) != 1)
                return vnc_fail(err, err_len, VERR_INVALID_PARAMETER,
                                "--vnc '%s': '%s' is not an IPv4 address (use a numeric address such as 127.0.0.1 or "
                                "0.0.0.0, or [IPV6]:PORT)", spec, addr);
        }
    }
    unsigned port = 0;
    int rc = vnc_parse_port(spec, port_part, &port, err, err_len);
    if (rc)
        return rc;
    rt_strlcpy(opts->address, addr, sizeof(opts->address));
    opts->port = port;
    return 0;
}

int vnc_password_set(struct vnc_options *opts, const char *password)
{
    char *copy = NULL;
    if (password && *password && !(copy = strdup(password)))
        return VERR_NO_MEMORY;
    vnc_options_clear(opts);
    opts->password = copy;
    return 0;
}

int vnc_password_file_read(const char *path, struct vnc_options *opts, char *err, size_t err_len)
{
    char buf[VNC_PASSWORD_FILE_MAX + 1];
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return vnc_fail(err, err_len, rt_err_from_errno(errno), "--vnc-password-file '%s': cannot open it: %s", path,
                        strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return vnc_fail(err, err_len, VERR_INVALID_PARAMETER, "--vnc-password-file '%s': not a regular file", path);
    }
    if (st.st_size > VNC_PASSWORD_FILE_MAX) {
        close(fd);
        return vnc_fail(err, err_len, VERR_TOO_LARGE,
                        "--vnc-password-file '%s': %lld bytes is too big for a password file (at most %u)", path,
                        (long long)st.st_size, VNC_PASSWORD_FILE_MAX);
    }
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            explicit_bzero(buf, sizeof(buf));
            return vnc_fail(err, err_len, rt_err_from_errno(e), "--vnc-password-file '%s': cannot read it: %s", path,
                            strerror(e));
        }
        if (n == 0 || (len += (size_t)n) == sizeof(buf) - 1)
            break;
    }
    close(fd);
    buf[len] = '\0';
    /* The line ends at CR or LF only: a NUL inside it is refused below, not a silent end. */
    size_t line = 0;
    while (line < len && buf[line] != '\r' && buf[line] != '\n')
        line++;
    int rc = 0;
    if (line == 0)
        rc = vnc_fail(err, err_len, VERR_INVALID_PARAMETER,
                      "--vnc-password-file '%s': the first line is empty; it must hold the password", path);
    for (size_t i = 0; !rc && i < line; i++)
        if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
            rc = vnc_fail(err, err_len, VERR_INVALID_PARAMETER,
                          "--vnc-password-file '%s': the password contains a control character (byte %zu)", path,
                          i + 1);
    if (!rc) {
        buf[line] = '\0';
        if (line > VNC_PASSWORD_MAX)
            LOG_WARN("the VNC password from '%s' has %zu characters; VNC authentication uses only the first %u", path,
                     line, VNC_PASSWORD_MAX);
        if (st.st_mode & 0077)
            LOG_WARN("the VNC password file '%s' can be read by other users (mode %03o); chmod 600 it", path,
                     (unsigned)(st.st_mode & 0777));
        rc = vnc_password_set(opts, buf);
    }
    explicit_bzero(buf, sizeof(buf));
    return rc;
}

int vnc_keymap_set(struct vnc_options *opts, const char *layout, char *err, size_t err_len)
{
    size_t n = layout ? strlen(layout) : 0;
    if (n == 0 || n >= sizeof(opts->keymap))
        return vnc_fail(err, err_len, VERR_INVALID_PARAMETER,
                        "keyboard layout '%s' must be a layout name such as us, gb, de or fr",
                        layout ? layout : "");
    for (size_t i = 0; i < n; i++) {
        char c = layout[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return vnc_fail(err, err_len, VERR_INVALID_PARAMETER,
                            "keyboard layout '%s' must be a layout name such as us, gb, de or fr", layout);
    }
    for (size_t i = 0; i <= n; i++)
        opts->keymap[i] = (char)((layout[i] >= 'A' && layout[i] <= 'Z') ? layout[i] - 'A' + 'a' : layout[i]);
    return 0;
}

void vnc_options_clear(struct vnc_options *opts)
{
    if (opts->password) {
        explicit_bzero(opts->password, strlen(opts->password));
        free(opts->password);
        opts->password = NULL;
    }
}
