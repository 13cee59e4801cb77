/* vnc.c - the VNC server of vireo-vm: the VM's primary display served with libvncserver, VNC password authentication, keysyms to PC keys on the guest's layout, the pointer, and the server's options. */
/*
 * Design: libvncserver runs in our own thread, polled with rfbProcessEvents, and is never
 * given threads of its own, so every rfb call, every client hook and every read of the rfb
 * framebuffer happens on that one thread.  The display listener (on the VM's event loop
 * thread, VM lock held) only copies what changed into a stage under the server's lock; the
 * server thread moves the stage into the rfb framebuffer under the same lock, then marks the
 * rectangles modified and lets rfb send them without it.
 *
 * Lock order: VM lock, then srv->lock.  The listener takes srv->lock inside the VM lock; the
 * server thread never holds srv->lock while it runs rfb (whose key and pointer hooks call
 * inp_*, which take the VM lock), so the two threads cannot wait on each other.
 *
 * A client that stalls in the middle of a message holds the thread for at most
 * VNC_CLIENT_WAIT_MS (rfb's blocking reads and writes), after which rfb drops it; the VM
 * itself never waits for the server.  The listening socket is made and accepted on here rather
 * than by rfb, so a busy port is reported with its reason, port 0 can try the next one, and a
 * new connection reaches rfb in a way that cannot hang it (vnc_accept).
 *
 * A VNC client sends keysyms (the character or function a key produced on the client), not key
 * positions.  Each character keysym is looked up on the layout the guest uses
 * (inp_keysym_to_keycode), which also says whether Shift or AltGr must be down for it; when the
 * modifiers the client holds differ, they are pressed or released around that one key and put
 * back, so '@' typed on a German client reaches a US guest as Shift+2.  Function keys (arrows,
 * F1..., keypad) keep whatever modifiers the client holds (Shift+arrow selects).  Modifier keys
 * are forwarded as themselves and remembered, as is every key down, so the key released is the
 * one pressed even when the release's keysym differs (Shift let go first), and everything a
 * client holds is released when it disconnects.
 *
 * All of this runs on the server thread; inp_* take the VM lock themselves.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rfb/rfb.h>

#include "vireo/display.h"
#include "vireo/err.h"
#include "vireo/input.h"
#include "vireo/rt.h"
#include "remote.h"

#define LOG_COMPONENT "vnc"

/* How long the server thread waits for socket activity before looking at the stage again (no viewers: longer). */
#define VNC_POLL_US 15000
#define VNC_POLL_IDLE_MS 100
/* The display listener's update interval. */
#define VNC_INTERVAL_NS (33u * 1000u * 1000u)
/* rfb's limit on a blocked read or write of one client. */
#define VNC_CLIENT_WAIT_MS 2000
/* More viewers than this are refused (each costs a socket in rfb's select set and encoder state). */
#define VNC_MAX_CLIENTS 16
/* The screen before the display has said anything (replaced at once when it has a mode). */
#define VNC_INITIAL_W 640u
#define VNC_INITIAL_H 480u
/* A connection that has not finished the handshake by then holds a viewer slot for nothing. */
#define VNC_HANDSHAKE_DEFAULT_MS 30000u

/* Dirty rectangles kept between two passes of the server thread; more are merged into one. */
#define VNC_DIRTY_MAX 16
/* Keys one client may hold down at once that the server remembers (to release them when it goes). */
#define VNC_HELD_MAX 32

struct vnc_rect {
    uint32_t x, y, w, h;
};

struct vnc_server {
    struct vm *vm;
    struct vnc_options opts;       /* a copy; the password is ours */
    char address[64];              /* what was listened on */
    unsigned port;
    int listen_fd;
    rfbScreenInfoPtr screen;
    struct rt_thread *thread;
    atomic_bool stop;
    struct display *dpy;
    struct dpy_listener *listener;

    /*
     * The stage: the display listener's copy of the surface, written on the VM's event loop thread
     * (VM lock held) under lock, read by the server thread under lock.
     */
    struct rt_mutex lock;
    uint8_t *stage;                /* stage_w * stage_h * 4 bytes, XRGB8888 */
    uint32_t stage_w, stage_h;
    bool stage_resized;            /* the server thread must make a new framebuffer */
    struct vnc_rect dirty[VNC_DIRTY_MAX];
    unsigned dirty_count;

    /* The rfb framebuffer: touched only by the server thread (which also runs every rfb call). */
    uint8_t *fb;
    uint32_t fb_w, fb_h;
    unsigned client_count;
    char pending_host[64];         /* the address of the client rfbNewClient is taking (vnc_accept) */
};

/* One connected viewer (rfbClientRec.clientData); lives on the server thread. */
struct vnc_client {
    struct vnc_server *srv;
    uint64_t connected_ns;         /* for the handshake deadline */
    uint32_t held_keysym[VNC_HELD_MAX];
    uint32_t held_code[VNC_HELD_MAX];
    unsigned held_count;
    int last_buttons;
    bool warned_no_keyboard, warned_no_mouse, warned_unknown_key;
};

/* ---- Options ---------------------------------------------------------------------------------- */

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

/* ---- libvncserver's log ------------------------------------------------------------------------- */

/*
 * rfb's messages end in a newline and are chatty (pixel formats, encodings): debug level.  Its errors
 * are about one client (a bad handshake, a reset connection), never about the VM: the log's info
 * level, not the terminal's.
 */
static void vnc_rfb_logv(enum rt_log_level level, const char *fmt, va_list ap)
{
    char line[512];
    vsnprintf(line, sizeof(line), fmt, ap);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    if (n)
        rt_log(level, "vnc-rfb", "%s", line);
}

static void vnc_rfb_log(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vnc_rfb_logv(RT_LOG_DEBUG, fmt, ap);
    va_end(ap);
}

static void vnc_rfb_err(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vnc_rfb_logv(RT_LOG_INFO, fmt, ap);
    va_end(ap);
}

/* ---- The display listener (VM event loop thread, VM lock held) ---------------------------------- */

static void vnc_stage_copy(struct vnc_server *srv, const struct dpy_surface *s, uint32_t x, uint32_t y, uint32_t w,
                           uint32_t h)
{
    for (uint32_t row = y; row < y + h; row++)
        memcpy(srv->stage + ((size_t)row * srv->stage_w + x) * 4, s->pixels + (size_t)row * s->stride_bytes + x * 4,
               (size_t)w * 4);
}

/* Caller holds srv->lock. */
static void vnc_stage_resize(struct vnc_server *srv, const struct dpy_surface *s)
{
    if (s->width != srv->stage_w || s->height != srv->stage_h || !srv->stage) {
        uint8_t *stage = NULL;
        size_t bytes = (size_t)s->width * s->height * 4;
        if (bytes && !(stage = malloc(bytes))) {
            LOG_ERR("no memory for a %ux%u VNC screen copy; VNC clients keep the old screen", s->width, s->height);
            return;
        }
        free(srv->stage);
        srv->stage = stage;
        srv->stage_w = stage ? s->width : 0;
        srv->stage_h = stage ? s->height : 0;
    }
    if (srv->stage && s->pixels && s->stride_bytes >= (size_t)s->width * 4)
        vnc_stage_copy(srv, s, 0, 0, s->width, s->height);
    srv->stage_resized = true;
    srv->dirty_count = 0;
}

static void vnc_dpy_resize(void *opaque, const struct dpy_surface *surface)
{
    struct vnc_server *srv = opaque;
    rt_mutex_lock(&srv->lock);
    vnc_stage_resize(srv, surface);
    rt_mutex_unlock(&srv->lock);
}

static void vnc_dirty_add(struct vnc_server *srv, uint32_t x, uint32_t y, uint32_t w, uint32_t h)
{
    if (srv->dirty_count < VNC_DIRTY_MAX) {
        srv->dirty[srv->dirty_count++] = (struct vnc_rect){ x, y, w, h };
        return;
    }
    /* Too many pieces: one bounding box costs less than tracking them. */
    uint32_t x0 = x, y0 = y, x1 = x + w, y1 = y + h;
    for (unsigned i = 0; i < srv->dirty_count; i++) {
        const struct vnc_rect *r = &srv->dirty[i];
        x0 = r->x < x0 ? r->x : x0;
        y0 = r->y < y0 ? r->y : y0;
        x1 = r->x + r->w > x1 ? r->x + r->w : x1;
        y1 = r->y + r->h > y1 ? r->y + r->h : y1;
    }
    srv->dirty[0] = (struct vnc_rect){ x0, y0, x1 - x0, y1 - y0 };
    srv->dirty_count = 1;
}

static void vnc_dpy_update(void *opaque, const struct dpy_surface *s, uint32_t x, uint32_t y, uint32_t w, uint32_t h)
{
    struct vnc_server *srv = opaque;
    rt_mutex_lock(&srv->lock);
    if (s->width != srv->stage_w || s->height != srv->stage_h) {
        /* The display always announces a new size first; should an update outrun it, take it all. */
        vnc_stage_resize(srv, s);
    } else if (srv->stage && s->pixels && x < s->width && y < s->height && w && h) {
        w = w > s->width - x ? s->width - x : w;
        h = h > s->height - y ? s->height - y : h;
        vnc_stage_copy(srv, s, x, y, w, h);
        if (!srv->stage_resized)
            vnc_dirty_add(srv, x, y, w, h);
    }
    rt_mutex_unlock(&srv->lock);
}

static const struct dpy_listener_ops vnc_listener_ops = {
    .resize = vnc_dpy_resize,
    .update = vnc_dpy_update,
};

/* ---- The rfb framebuffer (server thread) -------------------------------------------------------- */

/* The surface's XRGB8888 (bytes B, G, R, X) as rfb's server format, so rfb sends it untranslated. */
static void vnc_set_format(rfbScreenInfoPtr screen)
{
    rfbPixelFormat *f = &screen->serverFormat;
    f->bitsPerPixel = 32;
    f->depth = 24;
    f->bigEndian = FALSE;
    f->trueColour = TRUE;
    f->redMax = f->greenMax = f->blueMax = 255;
    f->redShift = 16;
    f->greenShift = 8;
    f->blueShift = 0;
    screen->depth = 24;
}

/* rfbNewFramebuffer resets the server format; after ours is back, each client's translation follows it. */
static void vnc_fb_replace(struct vnc_server *srv, uint8_t *fb, uint32_t w, uint32_t h)
{
    rfbNewFramebuffer(srv->screen, (char *)fb, (int)w, (int)h, 8, 3, 4);
    vnc_set_format(srv->screen);
    rfbClientIteratorPtr it = rfbGetClientIterator(srv->screen);
    for (rfbClientPtr cl = rfbClientIteratorNext(it); cl; cl = rfbClientIteratorNext(it))
        srv->screen->setTranslateFunction(cl);
    rfbReleaseClientIterator(it);
    free(srv->fb);
    srv->fb = fb;
    srv->fb_w = w;
    srv->fb_h = h;
}

/* Moves what the listener staged into the rfb framebuffer and tells rfb what changed. */
static void vnc_apply_stage(struct vnc_server *srv)
{
    struct vnc_rect rects[VNC_DIRTY_MAX];
    unsigned count = 0;
    uint8_t *new_fb = NULL;
    uint32_t new_w = 0, new_h = 0;
    bool blank = false;

    rt_mutex_lock(&srv->lock);
    if (srv->stage_resized) {
        srv->stage_resized = false;
        srv->dirty_count = 0;
        if (!srv->stage) {
            /* The adapter shows nothing (0x0): the viewers keep their size and see black. */
            blank = true;
        } else if (srv->stage_w == srv->fb_w && srv->stage_h == srv->fb_h) {
            memcpy(srv->fb, srv->stage, (size_t)srv->fb_w * srv->fb_h * 4);
            rects[count++] = (struct vnc_rect){ 0, 0, srv->fb_w, srv->fb_h };
        } else if ((new_fb = malloc((size_t)srv->stage_w * srv->stage_h * 4))) {
            memcpy(new_fb, srv->stage, (size_t)srv->stage_w * srv->stage_h * 4);
            new_w = srv->stage_w;
            new_h = srv->stage_h;
        } else {
            LOG_ERR("no memory for a %ux%u VNC framebuffer; VNC clients keep the old screen", srv->stage_w,
                    srv->stage_h);
        }
    } else if (srv->stage && srv->stage_w == srv->fb_w && srv->stage_h == srv->fb_h) {
        for (unsigned i = 0; i < srv->dirty_count; i++) {
            const struct vnc_rect *r = &srv->dirty[i];
            for (uint32_t row = r->y; row < r->y + r->h; row++)
                memcpy(srv->fb + ((size_t)row * srv->fb_w + r->x) * 4, srv->stage + ((size_t)row * srv->fb_w + r->x) * 4,
                       (size_t)r->w * 4);
            rects[count++] = *r;
        }
        srv->dirty_count = 0;
    }
    rt_mutex_unlock(&srv->lock);

    if (new_fb) {
        vnc_fb_replace(srv, new_fb, new_w, new_h);
        LOG_INFO("screen is now %ux%u", new_w, new_h);
    } else if (blank) {
        memset(srv->fb, 0, (size_t)srv->fb_w * srv->fb_h * 4);
        rects[count++] = (struct vnc_rect){ 0, 0, srv->fb_w, srv->fb_h };
    }
    for (unsigned i = 0; i < count; i++)
        rfbMarkRectAsModified(srv->screen, (int)rects[i].x, (int)rects[i].y, (int)(rects[i].x + rects[i].w),
                              (int)(rects[i].y + rects[i].h));
}

/* Drops connections stuck before the normal protocol (silent, or waiting at the password). */
static void vnc_expire_handshakes(struct vnc_server *srv)
{
    uint64_t now = rt_time_mono_ns();
    uint64_t limit_ns = (uint64_t)srv->opts.handshake_ms * RT_NS_PER_MS;
    rfbClientIteratorPtr it = rfbGetClientIterator(srv->screen);
    for (rfbClientPtr cl = rfbClientIteratorNext(it); cl; cl = rfbClientIteratorNext(it)) {
        struct vnc_client *c = cl->clientData;
        if (c && cl->state != RFB_NORMAL && cl->sock != RFB_INVALID_SOCKET && now - c->connected_ns > limit_ns) {
            LOG_INFO("client %s did not finish the VNC handshake in %u ms; disconnected", cl->host ? cl->host : "?",
                     srv->opts.handshake_ms);
            rfbCloseClient(cl);
        }
    }
    rfbReleaseClientIterator(it);
}

/*
 * Accepts one connection and hands it to rfb.  rfb's first look at a new socket (a peek for a
 * WebSocket handshake, 100 ms) spins forever when a client has sent 1 to 3 bytes and no more
 * (libvncserver 0.9.14 retries a short peek while select() keeps reporting the data), which
 * would hang the server on any client that speaks a few bytes before the greeting.  So rfb
 * meets a socket pair that stays silent instead; once rfb has greeted it, the greeting goes on
 * to the real connection, which then takes the pair's descriptor number (dup2), the one rfb
 * knows the client by.
 */
static void vnc_accept(struct vnc_server *srv)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int fd = accept4(srv->listen_fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return;
    char host[INET6_ADDRSTRLEN] = "?";
    if (getnameinfo((struct sockaddr *)&ss, len, host, sizeof(host), NULL, 0, NI_NUMERICHOST) != 0)
        rt_strlcpy(host, "?", sizeof(host));
    int one = 1, sv[2] = { -1, -1 };
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0 || sv[0] >= FD_SETSIZE) {
        /* rfb waits with select(), which cannot watch descriptors past FD_SETSIZE. */
        LOG_WARN("client %s refused: no descriptor for it (%s)", host, sv[0] < 0 ? strerror(errno) : "too many open");
        if (sv[0] >= 0) {
            close(sv[0]);
            close(sv[1]);
        }
        close(fd);
        return;
    }
    rt_strlcpy(srv->pending_host, host, sizeof(srv->pending_host));
    rfbClientPtr cl = rfbNewClient(srv->screen, sv[0]); /* closes sv[0] when it refuses */
    srv->pending_host[0] = '\0';
    char greeting[64];
    ssize_t n = cl ? recv(sv[1], greeting, sizeof(greeting), MSG_DONTWAIT) : -1;
    if (cl && (n <= 0 || write(fd, greeting, (size_t)n) != n || dup2(fd, sv[0]) < 0)) {
        LOG_INFO("client %s went away during the greeting", host);
        rfbCloseClient(cl);
        rfbClientConnectionGone(cl);
    } else if (cl) {
        fcntl(sv[0], F_SETFD, FD_CLOEXEC);
        char *h = strdup(host);
        if (h) {
            free(cl->host);
            cl->host = h;
        }
    }
    close(sv[1]);
    close(fd);
}

static void *vnc_thread_main(void *arg)
{
    struct vnc_server *srv = arg;
    uint64_t next_expiry = 0;
    while (!atomic_load(&srv->stop)) {
        vnc_apply_stage(srv);
        if (srv->client_count && rt_time_mono_ns() >= next_expiry) {
            vnc_expire_handshakes(srv);
            next_expiry = rt_time_mono_ns() + 100 * RT_NS_PER_MS;
        }
        /* With no viewers the thread sleeps on the listening socket; with some, in rfb's select. */
        struct pollfd pfd = { .fd = srv->listen_fd, .events = POLLIN };
        if (poll(&pfd, 1, srv->client_count ? 0 : VNC_POLL_IDLE_MS) > 0)
            vnc_accept(srv);
        rfbProcessEvents(srv->screen, srv->client_count ? VNC_POLL_US : 0);
    }
    return NULL;
}

/* ---- Keys and pointer (server thread; inp_* take the VM lock themselves) -------------------------- */

/* PC keycodes of the modifiers (input.h: set 1 make codes, 0xE0 prefix as 0xE000). */
#define KC_LSHIFT 0x2au
#define KC_RSHIFT 0x36u
#define KC_ALTGR 0xe038u

/* Modifier and lock keysyms (X11 keysymdef.h values) to their keys, independent of the layout. */
static const struct {
    uint32_t keysym, keycode;
} vnc_modifier_keys[] = {
    { 0xffe1, KC_LSHIFT }, /* Shift_L */
    { 0xffe2, KC_RSHIFT }, /* Shift_R */
    { 0xffe3, 0x1d },      /* Control_L */
    { 0xffe4, 0xe01d },    /* Control_R */
    { 0xffe5, 0x3a },      /* Caps_Lock */
    { 0xffe7, 0xe05b },    /* Meta_L: the Windows key on most clients */
    { 0xffe8, 0xe05c },    /* Meta_R */
    { 0xffe9, 0x38 },      /* Alt_L */
    { 0xffea, 0xe038 },    /* Alt_R */
    { 0xffeb, 0xe05b },    /* Super_L */
    { 0xffec, 0xe05c },    /* Super_R */
    { 0xfe03, KC_ALTGR },  /* ISO_Level3_Shift (AltGr) */
    { 0xff7e, KC_ALTGR },  /* Mode_switch */
};

static uint32_t vnc_modifier_keycode(uint32_t keysym)
{
    for (size_t i = 0; i < sizeof(vnc_modifier_keys) / sizeof(vnc_modifier_keys[0]); i++)
        if (vnc_modifier_keys[i].keysym == keysym)
            return vnc_modifier_keys[i].keycode;
    return 0;
}

/* Characters (Latin-1 and the other legacy sets below 0xff00, Unicode keysyms) depend on Shift/AltGr. */
static bool vnc_keysym_is_char(uint32_t keysym)
{
    return keysym < 0xff00 || (keysym >= 0x01000000 && keysym <= 0x0110ffff);
}

static void vnc_send(struct vnc_client *c, uint32_t keycode, bool down)
{
    int rc = inp_key(c->srv->vm, keycode, down);
    if (rc == VERR_NOT_FOUND && !c->warned_no_keyboard) {
        LOG_WARN("this machine has no keyboard device; VNC key presses are dropped");
        c->warned_no_keyboard = true;
    }
}

static int vnc_held_find(const struct vnc_client *c, uint32_t keysym)
{
    for (unsigned i = 0; i < c->held_count; i++)
        if (c->held_keysym[i] == keysym)
            return (int)i;
    return -1;
}

static bool vnc_code_held(const struct vnc_client *c, uint32_t keycode)
{
    for (unsigned i = 0; i < c->held_count; i++)
        if (c->held_code[i] == keycode)
            return true;
    return false;
}

static void vnc_held_remove(struct vnc_client *c, unsigned i)
{
    c->held_count--;
    memmove(&c->held_keysym[i], &c->held_keysym[i + 1], (c->held_count - i) * sizeof(c->held_keysym[0]));
    memmove(&c->held_code[i], &c->held_code[i + 1], (c->held_count - i) * sizeof(c->held_code[0]));
}

static void vnc_held_add(struct vnc_client *c, uint32_t keysym, uint32_t keycode)
{
    /* A full table only costs the release on disconnect of the keys past it. */
    if (c->held_count < VNC_HELD_MAX) {
        c->held_keysym[c->held_count] = keysym;
        c->held_code[c->held_count] = keycode;
        c->held_count++;
    }
}

/* Presses a character key with exactly the Shift and AltGr state it needs, then restores the client's. */
static void vnc_press_char(struct vnc_client *c, uint32_t keycode, bool shift, bool altgr)
{
    bool lshift = vnc_code_held(c, KC_LSHIFT), rshift = vnc_code_held(c, KC_RSHIFT);
    bool shift_held = lshift || rshift, altgr_held = vnc_code_held(c, KC_ALTGR);
    if (shift && !shift_held)
        vnc_send(c, KC_LSHIFT, true);
    if (!shift && lshift)
        vnc_send(c, KC_LSHIFT, false);
    if (!shift && rshift)
        vnc_send(c, KC_RSHIFT, false);
    if (altgr && !altgr_held)
        vnc_send(c, KC_ALTGR, true);
    if (!altgr && altgr_held)
        vnc_send(c, KC_ALTGR, false);
    vnc_send(c, keycode, true);
    if (altgr && !altgr_held)
        vnc_send(c, KC_ALTGR, false);
    if (!altgr && altgr_held)
        vnc_send(c, KC_ALTGR, true);
    if (shift && !shift_held)
        vnc_send(c, KC_LSHIFT, false);
    if (!shift && lshift)
        vnc_send(c, KC_LSHIFT, true);
    if (!shift && rshift)
        vnc_send(c, KC_RSHIFT, true);
}

static void vnc_input_key(rfbBool down, rfbKeySym keysym, rfbClientPtr cl)
{
    struct vnc_client *c = cl->clientData;
    if (!c)
        return;
    int held = vnc_held_find(c, keysym);
    if (!down) {
        if (held >= 0) {
            uint32_t code = c->held_code[held];
            vnc_held_remove(c, (unsigned)held);
            vnc_send(c, code, false);
        }
        /* A release of a key never pressed (or pressed before the table filled) is nothing to the guest. */
        return;
    }
    uint32_t code = vnc_modifier_keycode(keysym);
    if (code) {
        if (held < 0)
            vnc_held_add(c, keysym, code);
        vnc_send(c, code, true);
        return;
    }
    bool shift = false, altgr = false;
    code = inp_keysym_to_keycode(c->srv->opts.keymap, keysym, &shift, &altgr);
    if (!code) {
        if (!c->warned_unknown_key)
            LOG_INFO("keysym 0x%x has no key on the '%s' layout; ignored (logged once per client)", (unsigned)keysym,
                     c->srv->opts.keymap);
        c->warned_unknown_key = true;
        return;
    }
    if (held >= 0) {
        /* Auto-repeat from the client: another make of the same key, as a held key repeats. */
        code = c->held_code[held];
    } else {
        vnc_held_add(c, keysym, code);
    }
    if (vnc_keysym_is_char(keysym))
        vnc_press_char(c, code, shift, altgr);
    else
        vnc_send(c, code, true);
}

static void vnc_input_release_all(struct vnc_client *c)
{
    while (c->held_count) {
        uint32_t code = c->held_code[c->held_count - 1];
        c->held_count--;
        inp_key(c->srv->vm, code, false);
    }
    if (c->last_buttons & 0x7)
        inp_pointer_rel(c->srv->vm, 0, 0, 0, 0);
    c->last_buttons = 0;
}

static void vnc_input_pointer(int button_mask, int x, int y, rfbClientPtr cl)
{
    struct vnc_client *c = cl->clientData;
    struct vnc_server *srv = c ? c->srv : NULL;
    if (!c || !srv->fb_w || !srv->fb_h)
        return;
    /* RFB 7.5.5: bit 0 left, 1 middle, 2 right, 3 wheel up, 4 wheel down (a press per notch). */
    unsigned buttons = (button_mask & 1 ? INP_BUTTON_LEFT : 0) | (button_mask & 2 ? INP_BUTTON_MIDDLE : 0) |
                       (button_mask & 4 ? INP_BUTTON_RIGHT : 0);
    int pressed = button_mask & ~c->last_buttons;
    int dz = (pressed & 8 ? -1 : 0) + (pressed & 16 ? 1 : 0);
    c->last_buttons = button_mask;
    unsigned ux = x < 0 ? 0 : (unsigned)x >= srv->fb_w ? srv->fb_w - 1 : (unsigned)x;
    unsigned uy = y < 0 ? 0 : (unsigned)y >= srv->fb_h ? srv->fb_h - 1 : (unsigned)y;
    int rc = inp_pointer_abs(srv->vm, ux, uy, srv->fb_w, srv->fb_h, dz, buttons);
    if (rc == VERR_NOT_FOUND && !c->warned_no_mouse) {
        LOG_WARN("this machine has no mouse device; VNC pointer events are dropped");
        c->warned_no_mouse = true;
    }
}

/* ---- Clients and authentication (server thread) ------------------------------------------------- */

static void vnc_client_gone(rfbClientPtr cl)
{
    struct vnc_client *c = cl->clientData;
    if (!c)
        return;
    vnc_input_release_all(c);
    c->srv->client_count--;
    LOG_INFO("client %s disconnected (%u left)", cl->host ? cl->host : "?", c->srv->client_count);
    free(c);
    cl->clientData = NULL;
}

static enum rfbNewClientAction vnc_client_new(rfbClientPtr cl)
{
    struct vnc_server *srv = cl->screen->screenData;
    const char *host = srv->pending_host[0] ? srv->pending_host : "?";
    if (srv->client_count >= VNC_MAX_CLIENTS) {
        LOG_WARN("client %s refused: already %u viewers connected", host, srv->client_count);
        return RFB_CLIENT_REFUSE;
    }
    struct vnc_client *c = calloc(1, sizeof(*c));
    if (!c) {
        LOG_ERR("client %s refused: out of memory", host);
        return RFB_CLIENT_REFUSE;
    }
    c->srv = srv;
    c->connected_ns = rt_time_mono_ns();
    cl->clientData = c;
    cl->clientGoneHook = vnc_client_gone;
    srv->client_count++;
    LOG_INFO("client %s connected (%u connected)", host, srv->client_count);
    return RFB_CLIENT_ACCEPT;
}

/* VNC authentication (RFB 7.2.2): the response is the 16-byte challenge DES-encrypted with the password. */
static rfbBool vnc_check_password(rfbClientPtr cl, const char *response, int len)
{
    struct vnc_server *srv = cl->screen->screenData;
    unsigned char expected[CHALLENGESIZE];
    char key[VNC_PASSWORD_MAX + 1];
    rt_strlcpy(key, srv->opts.password ? srv->opts.password : "", sizeof(key));
    memcpy(expected, cl->authChallenge, sizeof(expected));
    rfbEncryptBytes(expected, key);
    unsigned diff = len == CHALLENGESIZE ? 0 : 1;
    for (size_t i = 0; i < sizeof(expected); i++)
        diff |= (unsigned)(expected[i] ^ (unsigned char)(len == CHALLENGESIZE ? response[i] : 0));
    explicit_bzero(key, sizeof(key));
    explicit_bzero(expected, sizeof(expected));
    if (diff || !srv->opts.password) {
        LOG_WARN("client %s: wrong VNC password; refused", cl->host ? cl->host : "?");
        return FALSE;
    }
    LOG_INFO("client %s: password accepted", cl->host ? cl->host : "?");
    return TRUE;
}

/* ---- Start and stop ----------------------------------------------------------------------------- */

/* Binds and listens on addr:port; returns the socket or a negative VERR with errno's reason in err. */
static int vnc_listen_one(const char *addr, unsigned port, int *err)
{
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof(ss));
    if (strchr(addr, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, addr, &s6->sin6_addr) != 1) {
            *err = EINVAL;
            return -1;
        }
        len = sizeof(*s6);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        if (inet_pton(AF_INET, addr, &s4->sin_addr) != 1) {
            *err = EINVAL;
            return -1;
        }
        len = sizeof(*s4);
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        *err = errno;
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 16) != 0) {
        *err = errno;
        close(fd);
        return -1;
    }
    return fd;
}

static int vnc_listen(struct vnc_server *srv)
{
    const char *addr = srv->opts.address[0] ? srv->opts.address : "127.0.0.1";
    rt_strlcpy(srv->address, addr, sizeof(srv->address));
    int err = 0;
    if (srv->opts.port) {
        srv->listen_fd = vnc_listen_one(addr, srv->opts.port, &err);
        if (srv->listen_fd < 0) {
            LOG_ERR("cannot listen for VNC clients on %s port %u: %s%s", addr, srv->opts.port, strerror(err),
                    err == EADDRINUSE ? " (another program uses that port; pick another with --vnc)" : "");
            return err == EADDRINUSE ? VERR_BUSY : rt_err_from_errno(err);
        }
        srv->port = srv->opts.port;
        return 0;
    }
    for (unsigned p = VNC_BASE_PORT; p < VNC_BASE_PORT + VNC_AUTO_PORTS; p++) {
        srv->listen_fd = vnc_listen_one(addr, p, &err);
        if (srv->listen_fd >= 0) {
            srv->port = p;
            return 0;
        }
        if (err != EADDRINUSE)
            break;
    }
    LOG_ERR("cannot listen for VNC clients on %s: %s", addr,
            err == EADDRINUSE ? "ports 5900 to 5999 are all in use" : strerror(err));
    return err == EADDRINUSE ? VERR_BUSY : rt_err_from_errno(err);
}

static int vnc_screen_create(struct vnc_server *srv)
{
    static bool log_hooked;
    if (!log_hooked) {
        rfbLog = vnc_rfb_log;
        rfbErr = vnc_rfb_err;
        log_hooked = true;
    }
    srv->fb = calloc((size_t)VNC_INITIAL_W * VNC_INITIAL_H, 4);
    if (!srv->fb)
        return VERR_NO_MEMORY;
    srv->fb_w = VNC_INITIAL_W;
    srv->fb_h = VNC_INITIAL_H;
    rfbScreenInfoPtr screen = rfbGetScreen(NULL, NULL, (int)srv->fb_w, (int)srv->fb_h, 8, 3, 4);
    if (!screen)
        return VERR_NO_MEMORY;
    srv->screen = screen;
    screen->frameBuffer = (char *)srv->fb;
    vnc_set_format(screen);
    screen->screenData = srv;
    screen->desktopName = vm_get_name(srv->vm);
    /* The guest draws its own pointer: no server-side cursor painted into the picture. */
    screen->cursor = NULL;
    /* Several viewers watch the same machine; one asking for exclusive access does not drop the others. */
    screen->alwaysShared = TRUE;
    screen->maxClientWait = VNC_CLIENT_WAIT_MS;
    screen->kbdAddEvent = vnc_input_key;
    screen->ptrAddEvent = vnc_input_pointer;
    screen->newClientHook = vnc_client_new;
    if (srv->opts.password) {
        /* Non-NULL authPasswdData makes rfb offer VNC authentication; the check is ours. */
        screen->authPasswdData = srv;
        screen->passwordCheck = vnc_check_password;
    }
    /* The server thread accepts on our own socket (vnc_accept): rfb listens on nothing itself. */
    screen->autoPort = FALSE;
    screen->port = (int)srv->port;
    screen->ipv6port = 0;
    screen->httpPort = 0;
    screen->httpDir = NULL;
    screen->listenSock = RFB_INVALID_SOCKET;
    FD_ZERO(&screen->allFds);
    screen->maxFd = -1;
    screen->socketState = RFB_SOCKET_READY;
    rfbInitServer(screen);
    return 0;
}

static void vnc_server_free(struct vnc_server *srv)
{
    if (srv->screen) {
        /* Closes the clients (their gone hooks release held keys). */
        rfbShutdownServer(srv->screen, TRUE);
        rfbScreenCleanup(srv->screen);
    }
    if (srv->listen_fd >= 0)
        close(srv->listen_fd);
    free(srv->fb);
    free(srv->stage);
    vnc_options_clear(&srv->opts);
    rt_mutex_destroy(&srv->lock);
    free(srv);
}

int vnc_server_start(struct vm *vm, const struct vnc_options *opts, struct vnc_server **out)
{
    *out = NULL;
    struct display *dpy = dpy_find(vm, 0);
    if (!dpy) {
        LOG_ERR("this machine has no display adapter, so a VNC server would have no screen to show; give it a "
                "graphics adapter or leave VNC off");
        return VERR_NOT_FOUND;
    }
    if (!opts->password && !opts->no_auth) {
        LOG_ERR("the VNC server needs a password (--vnc-password-file FILE, or a VNC password in the machine's "
                "settings); to run it without one, ask for that explicitly with --vnc-no-auth");
        return VERR_ACCESS_DENIED;
    }
    struct vnc_server *srv = calloc(1, sizeof(*srv));
    if (!srv)
        return VERR_NO_MEMORY;
    srv->vm = vm;
    srv->dpy = dpy;
    srv->listen_fd = -1;
    srv->opts = *opts;
    srv->opts.password = NULL;
    atomic_init(&srv->stop, false);
    int rc = rt_mutex_init(&srv->lock);
    if (rc) {
        free(srv);
        return rc;
    }
    if (opts->password && (rc = vnc_password_set(&srv->opts, opts->password)))
        goto fail;
    if (!srv->opts.keymap[0])
        rt_strlcpy(srv->opts.keymap, "us", sizeof(srv->opts.keymap));
    if (!srv->opts.handshake_ms)
        srv->opts.handshake_ms = VNC_HANDSHAKE_DEFAULT_MS;
    if ((rc = vnc_listen(srv)) || (rc = vnc_screen_create(srv)))
        goto fail;
    /* The first resize may arrive from inside dpy_listener_add: srv->lock must not be held here. */
    rc = dpy_listener_add(dpy, &vnc_listener_ops, srv, VNC_INTERVAL_NS, &srv->listener);
    if (rc) {
        LOG_ERR("cannot follow display '%s' for VNC: %s", dpy_name(dpy), rt_err_str(rc));
        goto fail;
    }
    if ((rc = rt_thread_create(&srv->thread, "vnc", vnc_thread_main, srv))) {
        LOG_ERR("cannot start the VNC server thread: %s", rt_err_str(rc));
        dpy_listener_remove(srv->listener);
        goto fail;
    }
    const char *open_addr = strcmp(srv->address, "127.0.0.1") && strcmp(srv->address, "::1") ? " (reachable from "
                                                                                                "other machines)"
                                                                                              : "";
    LOG_INFO("VNC server listening on %s%s%s:%u (display :%d), %s, keyboard layout %s%s",
             strchr(srv->address, ':') ? "[" : "", srv->address, strchr(srv->address, ':') ? "]" : "", srv->port,
             (int)srv->port - (int)VNC_BASE_PORT, srv->opts.password ? "password required" : "no password",
             srv->opts.keymap, open_addr);
    if (!srv->opts.password && *open_addr)
        LOG_WARN("the VNC server on %s:%u has no password: anyone who reaches it controls this machine",
                 srv->address, srv->port);
    *out = srv;
    return 0;

fail:
    vnc_server_free(srv);
    return rc;
}

void vnc_server_stop(struct vnc_server *srv)
{
    if (!srv)
        return;
    /* No listener callback runs after this, so the stage is the server thread's alone from here. */
    dpy_listener_remove(srv->listener);
    atomic_store(&srv->stop, true);
    rt_thread_join(srv->thread, NULL);
    LOG_INFO("VNC server on port %u stopped", srv->port);
    vnc_server_free(srv);
}

unsigned vnc_server_port(const struct vnc_server *srv)
{
    return srv->port;
}

const char *vnc_server_address(const struct vnc_server *srv)
{
    return srv->address;
}
