/* tstRdp.c - unit tests for the RDP server: option parsing, password files, scancodes, the certificate, and real FreeRDP clients against a test display and input recorder. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wattributes"
#include <freerdp/freerdp.h>
#include <freerdp/gdi/gdi.h>
#include <freerdp/input.h>
#pragma GCC diagnostic pop

#include "vireo/display.h"
#include "vireo/input.h"
#include "vireo/rt.h"
#include "../rdp.h"

static char g_log_path[64];

/* ---- A test display and input recorder in place of the VM's (the server only uses these calls) ---- */

struct display {
    const struct dpy_listener_ops *ops;
    void *opaque;
    struct dpy_surface surface;
    unsigned listeners_added, listeners_removed;
};
struct dpy_listener {
    struct display *dpy;
};

static struct display g_dpy;
static struct dpy_listener g_listener = { &g_dpy };
static bool g_have_display = true;
/* Plays the VM lock: display callbacks and the test's drawing never overlap. */
static pthread_mutex_t g_vm_lock = PTHREAD_MUTEX_INITIALIZER;

struct display *dpy_find(struct vm *vm, unsigned index)
{
    return g_have_display && index == 0 ? &g_dpy : NULL;
}

const char *dpy_name(const struct display *dpy)
{
    return "test";
}

int dpy_listener_add(struct display *dpy, const struct dpy_listener_ops *ops, void *opaque, uint64_t interval_ns,
                     struct dpy_listener **out)
{
    pthread_mutex_lock(&g_vm_lock);
    dpy->ops = ops;
    dpy->opaque = opaque;
    dpy->listeners_added++;
    if (dpy->surface.width) {
        ops->resize(opaque, &dpy->surface);
        ops->update(opaque, &dpy->surface, 0, 0, dpy->surface.width, dpy->surface.height);
    }
    pthread_mutex_unlock(&g_vm_lock);
    *out = &g_listener;
    return 0;
}

void dpy_listener_remove(struct dpy_listener *listener)
{
    pthread_mutex_lock(&g_vm_lock);
    listener->dpy->ops = NULL;
    listener->dpy->listeners_removed++;
    pthread_mutex_unlock(&g_vm_lock);
}

void dpy_invalidate(struct display *dpy)
{
}

/* The guest's screen: w x h, every pixel a function of its position. */
static uint32_t tst_pattern(uint32_t x, uint32_t y)
{
    return ((x * 7) & 0xff) << 16 | ((y * 5) & 0xff) << 8 | ((x + y) & 0xff);
}

static void tst_screen_set(uint32_t w, uint32_t h)
{
    pthread_mutex_lock(&g_vm_lock);
    free(g_dpy.surface.pixels);
    g_dpy.surface.width = w;
    g_dpy.surface.height = h;
    g_dpy.surface.stride_bytes = w * 4 + 64; /* a padded stride, as a device may have */
    g_dpy.surface.pixels = calloc(h, g_dpy.surface.stride_bytes);
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++)
            memcpy(g_dpy.surface.pixels + y * g_dpy.surface.stride_bytes + x * 4, &(uint32_t){ tst_pattern(x, y) }, 4);
    if (g_dpy.ops) {
        g_dpy.ops->resize(g_dpy.opaque, &g_dpy.surface);
        g_dpy.ops->update(g_dpy.opaque, &g_dpy.surface, 0, 0, w, h);
    }
    pthread_mutex_unlock(&g_vm_lock);
}

static void tst_screen_fill(uint32_t x0, uint32_t y0, uint32_t w, uint32_t h, uint32_t xrgb)
{
    pthread_mutex_lock(&g_vm_lock);
    for (uint32_t y = y0; y < y0 + h; y++)
        for (uint32_t x = x0; x < x0 + w; x++)
            memcpy(g_dpy.surface.pixels + y * g_dpy.surface.stride_bytes + x * 4, &xrgb, 4);
    if (g_dpy.ops)
        g_dpy.ops->update(g_dpy.opaque, &g_dpy.surface, x0, y0, w, h);
    pthread_mutex_unlock(&g_vm_lock);
}

struct tst_input {
    pthread_mutex_t lock;
    uint32_t keys[64];
    bool downs[64];
    unsigned key_count;
    unsigned abs_x, abs_y, abs_w, abs_h, abs_buttons, abs_count;
    int abs_dz;
    char typed[64];
};
static struct tst_input g_in = { .lock = PTHREAD_MUTEX_INITIALIZER };

int inp_key(struct vm *vm, uint32_t keycode, bool down)
{
    pthread_mutex_lock(&g_in.lock);
    if (g_in.key_count < RT_ARRAY_SIZE(g_in.keys)) {
        g_in.keys[g_in.key_count] = keycode;
        g_in.downs[g_in.key_count++] = down;
    }
    pthread_mutex_unlock(&g_in.lock);
    return 0;
}

int inp_type_string(struct vm *vm, const char *utf8)
{
    pthread_mutex_lock(&g_in.lock);
    size_t n = strlen(g_in.typed);
    snprintf(g_in.typed + n, sizeof(g_in.typed) - n, "%s", utf8);
    pthread_mutex_unlock(&g_in.lock);
    return 0;
}

int inp_pointer_abs(struct vm *vm, unsigned x, unsigned y, unsigned width, unsigned height, int dz, unsigned buttons)
{
    pthread_mutex_lock(&g_in.lock);
    g_in.abs_x = x, g_in.abs_y = y, g_in.abs_w = width, g_in.abs_h = height;
    g_in.abs_dz += dz;
    g_in.abs_buttons = buttons;
    g_in.abs_count++;
    pthread_mutex_unlock(&g_in.lock);
    return 0;
}

/* ---- Helpers ---------------------------------------------------------------------------------------- */

static char *tst_tempdir(void)
{
    char tmpl[] = "/tmp/tstRdp.XXXXXX";
    char *dir = mkdtemp(tmpl);
    assert_non_null(dir);
    return strdup(dir);
}

static void tst_rmdir(char *dir)
{
    char *cmd = rt_strdup_printf("rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    free(dir);
}

static void tst_write(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

static bool tst_log_contains(const char *needle)
{
    void *data = NULL;
    size_t len = 0;
    if (rt_file_read_all(g_log_path, 64 << 20, &data, &len))
        return false;
    bool found = strstr(data, needle) != NULL;
    free(data);
    return found;
}

/* ---- Parsing ---------------------------------------------------------------------------------------- */

static void test_listen_parse(void **state)
{
    char *addr = NULL;
    unsigned port = 0;
    assert_int_equal(rdp_listen_parse("3390", &addr, &port), 0);
    assert_null(addr);
    assert_int_equal(port, 3390);
    assert_int_equal(rdp_listen_parse("0.0.0.0:65535", &addr, &port), 0);
    assert_string_equal(addr, "0.0.0.0");
    assert_int_equal(port, 65535);
    free(addr);
    assert_int_equal(rdp_listen_parse("[::1]:3389", &addr, &port), 0);
    assert_string_equal(addr, "::1");
    free(addr);
    static const char *const bad[] = { "", "0", "65536", "x", ":1", "1.2.3.4:", "::1:3389", "[::1]3389",
                                       "[]:1", "[::1]:", "127.0.0.1:-1", "127.0.0.1:33 89", "99999999999999999999" };
    for (size_t i = 0; i < RT_ARRAY_SIZE(bad); i++) {
        addr = (char *)"untouched";
        assert_int_equal(rdp_listen_parse(bad[i], &addr, &port), VERR_INVALID_PARAMETER);
        assert_null(addr);
    }
    assert_int_equal(rdp_listen_parse(NULL, &addr, &port), VERR_INVALID_PARAMETER);
}

static void test_password_file(void **state)
{
    char *dir = tst_tempdir(), *path = rt_path_join(dir, "pw"), *pw = NULL;
    tst_write(path, "secret\r\nsecond line\n", 20);
    assert_int_equal(rdp_password_file_read(path, &pw), 0);
    assert_string_equal(pw, "secret");
    free(pw);
    tst_write(path, "no newline", 10);
    assert_int_equal(rdp_password_file_read(path, &pw), 0);
    assert_string_equal(pw, "no newline");
    free(pw);
    tst_write(path, "\nsecret\n", 8);
    assert_int_equal(rdp_password_file_read(path, &pw), VERR_INVALID_PARAMETER);
    assert_null(pw);
    tst_write(path, "se\0cret\n", 8);
    assert_int_equal(rdp_password_file_read(path, &pw), VERR_TOO_LARGE);
    char big[300];
    memset(big, 'a', sizeof(big));
    tst_write(path, big, sizeof(big));
    assert_int_equal(rdp_password_file_read(path, &pw), VERR_TOO_LARGE);
    unlink(path);
    assert_int_not_equal(rdp_password_file_read(path, &pw), 0);
    assert_null(pw);
    free(path);
    tst_rmdir(dir);
}

static void test_options_check(void **state)
{
    char msg[256];
    char *dir = tst_tempdir(), *path = rt_path_join(dir, "pw");
    tst_write(path, "pw\n", 3);
    struct rdp_options none = { 0 };
    assert_int_equal(rdp_options_check(&none, msg, sizeof(msg)), 0);
    struct rdp_options ok = { .listen = "127.0.0.1:3390", .user = "u", .password_file = path };
    assert_int_equal(rdp_options_check(&ok, msg, sizeof(msg)), 0);
    struct rdp_options lone = { .user = "u" };
    assert_int_not_equal(rdp_options_check(&lone, msg, sizeof(msg)), 0);
    assert_non_null(strstr(msg, "need --rdp"));
    struct rdp_options badport = { .listen = "127.0.0.1:99999" };
    assert_int_not_equal(rdp_options_check(&badport, msg, sizeof(msg)), 0);
    assert_non_null(strstr(msg, "99999"));
    struct rdp_options nopw = { .listen = "3390", .user = "u" };
    assert_int_not_equal(rdp_options_check(&nopw, msg, sizeof(msg)), 0);
    struct rdp_options missing = { .listen = "3390", .password_file = "/nonexistent/pw" };
    assert_int_not_equal(rdp_options_check(&missing, msg, sizeof(msg)), 0);
    assert_non_null(strstr(msg, "/nonexistent/pw"));
    free(path);
    tst_rmdir(dir);
}

static void test_scancodes(void **state)
{
    assert_int_equal(rdp_scancode_to_keycode(KBD_FLAGS_DOWN, 0x1e), 0x1e);               /* A */
    assert_int_equal(rdp_scancode_to_keycode(KBD_FLAGS_RELEASE, 0x1e), 0x1e);
    assert_int_equal(rdp_scancode_to_keycode(KBD_FLAGS_EXTENDED, 0x1d), 0xE01D);         /* Right Ctrl */
    assert_int_equal(rdp_scancode_to_keycode(KBD_FLAGS_EXTENDED | KBD_FLAGS_RELEASE, 0x4b), 0xE04B);
    assert_int_equal(rdp_scancode_to_keycode(KBD_FLAGS_EXTENDED1, 0x1d), 0xE11D45);      /* Pause */
    assert_int_equal(rdp_scancode_to_keycode(KBD_FLAGS_EXTENDED1, 0x2a), 0);
    assert_int_equal(rdp_scancode_to_keycode(0, 0), 0);
    assert_int_equal(rdp_scancode_to_keycode(0, 0x80), 0);  /* a break code is not a key */
    assert_int_equal(rdp_scancode_to_keycode(0, 0x11e), 0x1e); /* only the low byte is the scancode */
}

static void test_cert(void **state)
{
    char *dir = tst_tempdir(), *sub = rt_path_join(dir, "a/b"), *crt = NULL, *key = NULL;
    assert_int_equal(rdp_cert_ensure(sub, "test-vm", &crt, &key), 0);
    struct stat st;
    assert_int_equal(stat(crt, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(key, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    void *c1 = NULL, *c2 = NULL;
    size_t l1, l2;
    assert_int_equal(rt_file_read_all(crt, 1 << 20, &c1, &l1), 0);
    assert_non_null(strstr(c1, "BEGIN CERTIFICATE"));
    /* A second start keeps the pair (clients that pinned it keep trusting it). */
    char *crt2 = NULL, *key2 = NULL;
    assert_int_equal(rdp_cert_ensure(sub, "test-vm", &crt2, &key2), 0);
    assert_int_equal(rt_file_read_all(crt2, 1 << 20, &c2, &l2), 0);
    assert_int_equal(l1, l2);
    assert_memory_equal(c1, c2, l1);
    free(c2);
    free(crt2);
    free(key2);
    /* A key from another pair is refused, and neither file is replaced. */
    char *other = rt_path_join(dir, "other"), *ocrt = NULL, *okey = NULL;
    assert_int_equal(rdp_cert_ensure(other, "x", &ocrt, &okey), 0);
    char *cmd = rt_strdup_printf("cp '%s' '%s'", okey, key);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    assert_int_equal(rdp_cert_ensure(sub, "test-vm", &crt2, &key2), VERR_INVALID_PARAMETER);
    assert_null(crt2);
    assert_true(tst_log_contains("does not belong to the certificate"));
    assert_int_equal(rt_file_read_all(crt, 1 << 20, &c2, &l2), 0);
    assert_memory_equal(c1, c2, l1);
    free(c2);
    /* Garbage in place of the certificate. */
    tst_write(crt, "not a certificate\n", 18);
    assert_int_equal(rdp_cert_ensure(sub, "test-vm", &crt2, &key2), VERR_INVALID_PARAMETER);
    assert_true(tst_log_contains("not a PEM certificate"));
    free(c1);
    free(ocrt);
    free(okey);
    free(other);
    free(crt);
    free(key);
    free(sub);
    tst_rmdir(dir);
}

/* ---- Servers and real clients ---------------------------------------------------------------------- */

struct tst_server {
    char *dir;
    struct rdp_server *srv;
    unsigned port;
};

/* A server with user "vireo" / password "secret" on a free port (retried: another test may take it). */
static void tst_server_start(struct tst_server *t, bool with_password)
{
    t->dir = tst_tempdir();
    struct rdp_server_config cfg = { .address = "127.0.0.1", .user = "vireo",
                                     .password = with_password ? "secret" : NULL, .cert_dir = t->dir,
                                     .cert_name = "tst" };
    int rc = VERR_BUSY;
    for (int attempt = 0; attempt < 20 && rc == VERR_BUSY; attempt++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(sa);
        assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
        close(fd);
        cfg.port = ntohs(sa.sin_port);
        rc = rdp_server_start(NULL, &cfg, &t->srv);
    }
    assert_int_equal(rc, 0);
    t->port = rdp_server_port(t->srv);
    assert_int_equal(t->port, cfg.port);
}

static void tst_server_stop(struct tst_server *t)
{
    rdp_server_stop(t->srv);
    tst_rmdir(t->dir);
}

struct tst_client {
    rdpContext base; /* FreeRDP allocates ContextSize with this first */
    unsigned surface_bits, resizes;
};

static BOOL tst_client_pre_connect(freerdp *instance)
{
    return TRUE;
}

static pSurfaceBits g_gdi_surface_bits;

static BOOL tst_client_surface_bits(rdpContext *context, const SURFACE_BITS_COMMAND *cmd)
{
    ((struct tst_client *)context)->surface_bits++;
    return g_gdi_surface_bits(context, cmd);
}

static BOOL tst_client_desktop_resize(rdpContext *context)
{
    ((struct tst_client *)context)->resizes++;
    return gdi_resize(context->gdi, context->settings->DesktopWidth, context->settings->DesktopHeight);
}

/* A client paints into the gdi's buffer between these; FreeRDP fails an update when EndPaint is missing. */
static BOOL tst_client_paint(rdpContext *context)
{
    return TRUE;
}

static BOOL tst_client_post_connect(freerdp *instance)
{
    if (!gdi_init(instance, PIXEL_FORMAT_BGRX32))
        return FALSE;
    g_gdi_surface_bits = instance->update->SurfaceBits;
    instance->update->SurfaceBits = tst_client_surface_bits;
    instance->update->DesktopResize = tst_client_desktop_resize;
    instance->update->BeginPaint = tst_client_paint;
    instance->update->EndPaint = tst_client_paint;
    return TRUE;
}

static freerdp *tst_client_new(unsigned port, const char *user, const char *password, unsigned depth)
{
    freerdp *inst = freerdp_new();
    assert_non_null(inst);
    inst->ContextSize = sizeof(struct tst_client);
    inst->PreConnect = tst_client_pre_connect;
    inst->PostConnect = tst_client_post_connect;
    assert_true(freerdp_context_new(inst));
    rdpSettings *s = inst->settings;
    assert_true(freerdp_settings_set_string(s, FreeRDP_ServerHostname, "127.0.0.1"));
    s->ServerPort = port;
    if (user)
        assert_true(freerdp_settings_set_string(s, FreeRDP_Username, user));
    if (password)
        assert_true(freerdp_settings_set_string(s, FreeRDP_Password, password));
    s->IgnoreCertificate = TRUE;
    s->RdpSecurity = FALSE;
    s->TlsSecurity = TRUE;
    s->NlaSecurity = FALSE;
    s->DesktopWidth = 800;
    s->DesktopHeight = 600;
    s->ColorDepth = depth;
    s->SoftwareGdi = TRUE;
    return inst;
}

static void tst_client_free(freerdp *inst)
{
    freerdp_disconnect(inst);
    if (inst->context->gdi)
        gdi_free(inst);
    freerdp_context_free(inst);
    freerdp_free(inst);
}

/* Runs the client's events until done(inst) or the timeout; returns done's last answer. */
static bool tst_client_run(freerdp *inst, bool (*done)(freerdp *inst), uint64_t timeout_ms)
{
    uint64_t deadline = rt_time_mono_ns() + timeout_ms * RT_NS_PER_MS;
    while (!done(inst) && rt_time_mono_ns() < deadline) {
        HANDLE handles[64];
        DWORD n = freerdp_get_event_handles(inst->context, handles, RT_ARRAY_SIZE(handles));
        if (n == 0)
            return false;
        WaitForMultipleObjects(n, handles, FALSE, 50);
        if (!freerdp_check_event_handles(inst->context))
            return done(inst);
    }
    return done(inst);
}

static uint32_t tst_client_pixel(freerdp *inst, uint32_t x, uint32_t y)
{
    rdpGdi *gdi = inst->context->gdi;
    uint32_t v;
    memcpy(&v, gdi->primary_buffer + (size_t)y * gdi->stride + x * 4, 4);
    return v & 0xffffff;
}

static bool tst_screen_matches(freerdp *inst)
{
    rdpGdi *gdi = inst->context->gdi;
    if (!gdi || gdi->width != (INT32)g_dpy.surface.width || gdi->height != (INT32)g_dpy.surface.height)
        return false;
    static const uint32_t probes[][2] = { { 0, 0 }, { 1, 0 }, { 0, 1 }, { 37, 11 }, { 319, 199 }, { 200, 150 } };
    for (size_t i = 0; i < RT_ARRAY_SIZE(probes); i++) {
        uint32_t x = RT_MIN(probes[i][0], g_dpy.surface.width - 1), y = RT_MIN(probes[i][1], g_dpy.surface.height - 1);
        if (tst_client_pixel(inst, x, y) != tst_pattern(x, y))
            return false;
    }
    return true;
}

static bool tst_red_square_seen(freerdp *inst)
{
    return tst_client_pixel(inst, 12, 12) == 0xff0000 && tst_client_pixel(inst, 10 + 15, 10 + 15) == 0xff0000 &&
           tst_client_pixel(inst, 9, 9) == tst_pattern(9, 9);
}

static bool tst_got_frame(freerdp *inst)
{
    return ((struct tst_client *)inst->context)->surface_bits > 0;
}

static bool tst_input_arrived(freerdp *inst)
{
    pthread_mutex_lock(&g_in.lock);
    bool done = g_in.key_count >= 3 && g_in.abs_count >= 3 && strchr(g_in.typed, 'x');
    pthread_mutex_unlock(&g_in.lock);
    return done;
}

static void test_session(void **state)
{
    struct tst_server t;
    tst_screen_set(320, 200);
    tst_server_start(&t, true);
    freerdp *c = tst_client_new(t.port, "vireo", "secret", 32);
    assert_true(freerdp_connect(c));
    /* The client takes the guest's size, not its own wish, and gets the whole screen. */
    assert_true(tst_client_run(c, tst_screen_matches, 10000));
    assert_int_equal(c->settings->DesktopWidth, 320);
    assert_true(((struct tst_client *)c->context)->surface_bits > 0);
    assert_int_equal(g_dpy.listeners_added - g_dpy.listeners_removed, 1);

    /* A change reaches it, and only the changed rectangle changes. */
    tst_screen_fill(10, 10, 16, 16, 0xff0000);
    assert_true(tst_client_run(c, tst_red_square_seen, 10000));

    /* A mode change: the client follows with a desktop resize and gets the new screen. */
    tst_screen_set(400, 300);
    assert_true(tst_client_run(c, tst_screen_matches, 10000));
    assert_int_equal(c->context->gdi->width, 400);
    assert_true(((struct tst_client *)c->context)->resizes >= 1);

    /* Input: extended and plain keys, Pause, a unicode character, pointer moves, a button and the wheel. */
    memset(g_in.keys, 0, sizeof(g_in.keys));
    g_in.key_count = g_in.abs_count = 0;
    g_in.abs_dz = 0;
    g_in.typed[0] = '\0';
    assert_true(freerdp_input_send_keyboard_event(c->input, KBD_FLAGS_DOWN | KBD_FLAGS_EXTENDED, 0x4b));
    assert_true(freerdp_input_send_keyboard_event(c->input, KBD_FLAGS_RELEASE, 0x1e));
    assert_true(freerdp_input_send_keyboard_event(c->input, KBD_FLAGS_DOWN | KBD_FLAGS_EXTENDED1, 0x1d));
    assert_true(freerdp_input_send_keyboard_event(c->input, KBD_FLAGS_DOWN, 0x45));
    assert_true(freerdp_input_send_unicode_keyboard_event(c->input, KBD_FLAGS_DOWN, 'x'));
    assert_true(freerdp_input_send_mouse_event(c->input, PTR_FLAGS_MOVE, 100, 50));
    assert_true(freerdp_input_send_mouse_event(c->input, PTR_FLAGS_DOWN | PTR_FLAGS_BUTTON2, 101, 51));
    assert_true(freerdp_input_send_mouse_event(c->input, PTR_FLAGS_WHEEL | 0x78, 101, 51));
    assert_true(tst_client_run(c, tst_input_arrived, 10000));
    pthread_mutex_lock(&g_in.lock);
    assert_int_equal(g_in.key_count, 3);
    assert_int_equal(g_in.keys[0], 0xE04B);
    assert_true(g_in.downs[0]);
    assert_int_equal(g_in.keys[1], 0x1e);
    assert_false(g_in.downs[1]);
    assert_int_equal(g_in.keys[2], 0xE11D45); /* and the 0x45 after it was not Num Lock */
    assert_string_equal(g_in.typed, "x");
    assert_int_equal(g_in.abs_x, 101);
    assert_int_equal(g_in.abs_y, 51);
    assert_int_equal(g_in.abs_w, 400);
    assert_int_equal(g_in.abs_h, 300);
    assert_int_equal(g_in.abs_buttons, INP_BUTTON_RIGHT);
    assert_int_equal(g_in.abs_dz, -1);
    pthread_mutex_unlock(&g_in.lock);

    tst_client_free(c);
    for (int i = 0; i < 100 && rdp_server_client_count(t.srv); i++)
        rt_sleep_ns(50 * RT_NS_PER_MS);
    assert_int_equal(rdp_server_client_count(t.srv), 0);
    /* Nobody watches: the display listener is gone. */
    assert_int_equal(g_dpy.listeners_added, g_dpy.listeners_removed);
    tst_server_stop(&t);
}

static void test_wrong_password(void **state)
{
    struct tst_server t;
    tst_screen_set(320, 200);
    tst_server_start(&t, true);
    static const char *const creds[][2] = { { "vireo", "wrong" }, { "root", "secret" }, { "vireo", "" },
                                            { "vireo", "secret2" }, { "vireo", "secre" } };
    for (size_t i = 0; i < RT_ARRAY_SIZE(creds); i++) {
        freerdp *c = tst_client_new(t.port, creds[i][0], creds[i][1], 32);
        assert_false(freerdp_connect(c));
        tst_client_free(c);
    }
    assert_true(tst_log_contains("wrong password"));
    assert_true(tst_log_contains("unknown user 'root'"));
    /* Still serving the right one, at 16 bits per pixel. */
    freerdp *c = tst_client_new(t.port, "vireo", "secret", 16);
    assert_true(freerdp_connect(c));
    assert_int_equal(c->settings->ColorDepth, 16);
    rdpGdi *gdi = c->context->gdi;
    assert_true(tst_client_run(c, tst_got_frame, 10000));
    /* 5-6-5 keeps the top bits of each channel. */
    uint32_t want = tst_pattern(37, 11), got = tst_client_pixel(c, 37, 11);
    assert_int_equal(got & 0xf8fcf8, want & 0xf8fcf8);
    assert_int_equal(gdi->width, 320);
    tst_client_free(c);
    tst_server_stop(&t);
}

static void test_no_password(void **state)
{
    struct tst_server t;
    tst_screen_set(320, 200);
    tst_server_start(&t, false);
    assert_true(tst_log_contains("accepts every client"));
    freerdp *c = tst_client_new(t.port, "anyone", "anything", 24);
    assert_true(freerdp_connect(c));
    assert_true(tst_client_run(c, tst_screen_matches, 10000));
    tst_client_free(c);
    tst_server_stop(&t);
}

static int tst_connect_raw(unsigned port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

static void test_garbage_and_crowds(void **state)
{
    struct tst_server t;
    tst_screen_set(320, 200);
    tst_server_start(&t, true);
    /* Random bytes, a TPKT header that promises more than comes, an X.224 request cut short, an empty connection. */
    srand(7);
    for (int i = 0; i < 20; i++) {
        int fd = tst_connect_raw(t.port);
        uint8_t junk[2048];
        for (size_t j = 0; j < sizeof(junk); j++)
            junk[j] = (uint8_t)rand();
        if (i % 4 == 1)
            junk[0] = 3, junk[1] = 0, junk[2] = 0xff, junk[3] = 0xff;
        ssize_t n = i % 4 == 3 ? 0 : write(fd, junk, i % 4 == 2 ? 11 : sizeof(junk));
        (void)n;
        close(fd);
    }
    /* More idle connections than the server takes: the extra ones are turned away, none crash it. */
    int idle[20];
    for (int i = 0; i < 20; i++)
        idle[i] = tst_connect_raw(t.port);
    for (int i = 0; i < 100 && rdp_server_client_count(t.srv) < 16; i++)
        rt_sleep_ns(20 * RT_NS_PER_MS);
    assert_true(rdp_server_client_count(t.srv) <= 16);
    for (int i = 0; i < 20; i++)
        close(idle[i]);
    for (int i = 0; i < 200 && rdp_server_client_count(t.srv); i++)
        rt_sleep_ns(20 * RT_NS_PER_MS);
    assert_int_equal(rdp_server_client_count(t.srv), 0);

    /* Three clients at once, one leaving in the middle of a frame; the others keep getting the screen. */
    freerdp *c[3];
    for (int i = 0; i < 3; i++) {
        c[i] = tst_client_new(t.port, "vireo", "secret", 32);
        assert_true(freerdp_connect(c[i]));
    }
    tst_screen_fill(0, 0, 320, 200, 0x123456);
    freerdp_disconnect(c[1]);
    tst_screen_set(320, 200);
    for (int i = 0; i < 3; i += 2)
        assert_true(tst_client_run(c[i], tst_screen_matches, 10000));
    for (int i = 0; i < 3; i++)
        tst_client_free(c[i]);

    /* Stopping with a client connected ends its session. */
    freerdp *last = tst_client_new(t.port, "vireo", "secret", 32);
    assert_true(freerdp_connect(last));
    assert_true(tst_client_run(last, tst_screen_matches, 10000));
    uint64_t t0 = rt_time_mono_ns();
    tst_server_stop(&t);
    assert_true(rt_time_mono_ns() - t0 < 5 * RT_NS_PER_SEC);
    tst_client_free(last);
}

static long tst_rss_kib(void)
{
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%ld %ld", &pages, &rss), 2);
    fclose(f);
    return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Keeps a client reading for the whole time given. */
static bool tst_never(freerdp *inst)
{
    return false;
}

/* A client that logs in and then stops reading: the server must not queue the screen for it without end. */
static void test_stalled_client(void **state)
{
    struct tst_server t;
    tst_screen_set(1920, 1080);
    tst_server_start(&t, true);
    freerdp *stuck = tst_client_new(t.port, "vireo", "secret", 32);
    freerdp *live = tst_client_new(t.port, "vireo", "secret", 32);
    assert_true(freerdp_connect(stuck));
    assert_true(freerdp_connect(live));
    assert_true(tst_client_run(live, tst_screen_matches, 10000));
    ((struct tst_client *)live->context)->surface_bits = 0;
    long before = tst_rss_kib();
    /* 60 full frames of 8 MB: 480 MB if they were all queued for the stalled client. */
    for (int i = 0; i < 60; i++) {
        tst_screen_fill(0, 0, 1920, 1080, (uint32_t)i * 0x010203u);
        tst_client_run(live, tst_never, 20);
    }
    long grown_mib = (tst_rss_kib() - before) / 1024;
    assert_true(grown_mib < 64);
    /* The reading client kept getting frames, and ends with the last picture. */
    tst_screen_set(1920, 1080);
    assert_true(tst_client_run(live, tst_screen_matches, 10000));
    /* Several frames got through (each is several commands), not just the first and the last. */
    assert_true(((struct tst_client *)live->context)->surface_bits >= 20);
    uint64_t t0 = rt_time_mono_ns();
    tst_server_stop(&t);
    assert_true(rt_time_mono_ns() - t0 < 5 * RT_NS_PER_SEC);
    tst_client_free(live);
    tst_client_free(stuck);
}

static void test_start_errors(void **state)
{
    struct tst_server t;
    tst_server_start(&t, true);
    struct rdp_server *srv = NULL;
    struct rdp_server_config cfg = { .address = "127.0.0.1", .port = t.port, .user = "u", .password = "p",
                                     .cert_dir = t.dir };
    assert_int_equal(rdp_server_start(NULL, &cfg, &srv), VERR_BUSY);
    assert_null(srv);
    assert_true(tst_log_contains("the port is in use"));
    cfg.address = "localhost"; /* names are not looked up: the listen address is numeric */
    assert_int_equal(rdp_server_start(NULL, &cfg, &srv), VERR_INVALID_PARAMETER);
    cfg.address = "127.0.0.1";
    cfg.user = NULL;
    assert_int_equal(rdp_server_start(NULL, &cfg, &srv), VERR_INVALID_PARAMETER);
    cfg.user = "u";
    cfg.cert_dir = "/proc/no-such-place";
    assert_int_not_equal(rdp_server_start(NULL, &cfg, &srv), 0);
    assert_null(srv);
    tst_server_stop(&t);

    /* No display at all: clients still log in and see a blank desktop. */
    g_have_display = false;
    tst_server_start(&t, true);
    assert_true(tst_log_contains("no display adapter"));
    freerdp *c = tst_client_new(t.port, "vireo", "secret", 32);
    assert_true(freerdp_connect(c));
    assert_int_equal(c->settings->DesktopWidth, 640);
    tst_client_free(c);
    tst_server_stop(&t);
    g_have_display = true;
}

int main(void)
{
    snprintf(g_log_path, sizeof(g_log_path), "/tmp/tstRdp-%d.log", (int)getpid());
    if (rt_log_open_file(g_log_path) < 0)
        return 1;
    rt_log_set_stderr_level((enum rt_log_level)-1);
    setenv("WLOG_LEVEL", "OFF", 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_listen_parse),
        cmocka_unit_test(test_password_file),
        cmocka_unit_test(test_options_check),
        cmocka_unit_test(test_scancodes),
        cmocka_unit_test(test_cert),
        cmocka_unit_test(test_session),
        cmocka_unit_test(test_wrong_password),
        cmocka_unit_test(test_no_password),
        cmocka_unit_test(test_garbage_and_crowds),
        cmocka_unit_test(test_stalled_client),
        cmocka_unit_test(test_start_errors),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    rt_log_close_file();
    unlink(g_log_path);
    return failed;
}
