/* vnc.c - the VNC server of vireo-vm: the VM's primary display served with libvncserver, VNC password authentication, and its log routed to the VM log. */
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
 * itself never waits for the server.  The listening socket is made here rather than by rfb,
 * so a busy port is reported with its reason and port 0 can try the next one.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vireo/err.h"
#include "vnc-internal.h"

#define LOG_COMPONENT "vnc"

/* How long the server thread waits for socket activity before looking at the stage again (no viewers: longer). */
#define VNC_POLL_US 15000
#define VNC_POLL_IDLE_US 100000
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
        rfbProcessEvents(srv->screen, srv->client_count ? VNC_POLL_US : VNC_POLL_IDLE_US);
    }
    return NULL;
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
    const char *host = cl->host ? cl->host : "?";
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
    if (fd >= FD_SETSIZE) {
        /* rfb waits with select(), which cannot watch descriptors past FD_SETSIZE. */
        close(fd);
        *err = EMFILE;
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
    /* Our socket, already listening: rfb takes it as it is instead of making its own. */
    screen->autoPort = FALSE;
    screen->port = (int)srv->port;
    screen->ipv6port = 0;
    screen->httpPort = 0;
    screen->httpDir = NULL;
    screen->listenSock = srv->listen_fd;
    FD_ZERO(&screen->allFds);
    FD_SET(srv->listen_fd, &screen->allFds);
    screen->maxFd = srv->listen_fd;
    screen->socketState = RFB_SOCKET_READY;
    rfbInitServer(screen);
    return 0;
}

static void vnc_server_free(struct vnc_server *srv)
{
    if (srv->screen) {
        /* Closes the clients (their gone hooks release held keys) and the listening socket. */
        rfbShutdownServer(srv->screen, TRUE);
        rfbScreenCleanup(srv->screen);
        srv->listen_fd = -1;
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
