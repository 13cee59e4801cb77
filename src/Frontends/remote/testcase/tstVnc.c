/* tstVnc.c - VNC server tests: option parsing and password files (hostile ones too), and the server in-process with a fake graphics device, a fake keyboard and mouse and a small RFB client (pixels, resize, password auth, garbage, keys, pointer). */
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
#include <unistd.h>

#include <rfb/rfb.h>

#include "vireo/display.h"
#include "vireo/err.h"
#include "vireo/input.h"
#include "vireo/rt.h"
#include "vireo/vm.h"
#include "../remote.h"

/* ---- Options ----------------------------------------------------------------------------------- */

static void test_listen_parse(void **state)
{
    (void)state;
    static const struct {
        const char *spec, *addr;
        unsigned port;
    } good[] = {
        { "5901", "", 5901 },          { ":3", "", 5903 },           { "0", "", 0 },
        { "127.0.0.1:5905", "127.0.0.1", 5905 }, { "0.0.0.0::2", "0.0.0.0", 5902 },
        { "[::1]:6000", "::1", 6000 }, { "localhost:7", "127.0.0.1", 7 }, { ":59635", "", 65535 },
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        struct vnc_options o = { .port = 1 };
        char err[256] = "";
        assert_int_equal(vnc_listen_parse(good[i].spec, &o, err, sizeof(err)), 0);
        assert_string_equal(o.address, good[i].addr);
        assert_int_equal(o.port, good[i].port);
    }
    static const char *const bad[] = {
        "", ":", "abc", "70000", "65536", ":59636", "1.2.3:5900", "[::1]5900", "[zz]:1", "[::1", "host:5900",
        "5900x", "-1", " 5900", "1.2.3.4:", "::", ":-1", "99999999999999999999", "1.2.3.4:5900:1", "[]:1",
        "0x10", "5900 ",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct vnc_options o = { .address = "keep", .port = 42 };
        char err[256] = "";
        assert_int_not_equal(vnc_listen_parse(bad[i], &o, err, sizeof(err)), 0);
        assert_true(strlen(err) > 10);
        assert_string_equal(o.address, "keep");
        assert_int_equal(o.port, 42);
    }
    char longspec[400];
    memset(longspec, '1', sizeof(longspec) - 1);
    longspec[sizeof(longspec) - 1] = '\0';
    struct vnc_options o = { .port = 42 };
    char err[256];
    assert_int_not_equal(vnc_listen_parse(longspec, &o, err, sizeof(err)), 0);
    assert_int_not_equal(vnc_listen_parse(NULL, &o, err, sizeof(err)), 0);
    assert_int_equal(o.port, 42);
}

static char g_dir[64];

static char *write_file(const char *name, const void *data, size_t len)
{
    char *path = rt_path_join(g_dir, name);
    assert_non_null(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
    return path;
}

static void expect_password_refused(const char *path, const char *secret)
{
    struct vnc_options o = { 0 };
    assert_int_equal(vnc_password_set(&o, "before"), 0);
    char err[512] = "";
    assert_int_not_equal(vnc_password_file_read(path, &o, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "--vnc-password-file"));
    if (secret)
        assert_null(strstr(err, secret));
    assert_string_equal(o.password, "before");
    vnc_options_clear(&o);
    assert_null(o.password);
}

static void test_password_file(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof(g_dir), "/tmp/tstVnc.%d", (int)getpid());
    assert_int_equal(mkdir(g_dir, 0700), 0);
    struct vnc_options o = { 0 };
    char err[512];
    char *p = write_file("ok", "s3cret\nignored line\n", 20);
    assert_int_equal(vnc_password_file_read(p, &o, err, sizeof(err)), 0);
    assert_string_equal(o.password, "s3cret");
    free(p);
    p = write_file("crlf", "pw with spaces\r\n", 16);
    assert_int_equal(vnc_password_file_read(p, &o, err, sizeof(err)), 0);
    assert_string_equal(o.password, "pw with spaces");
    free(p);
    p = write_file("nonl", "abc", 3);
    assert_int_equal(vnc_password_file_read(p, &o, err, sizeof(err)), 0);
    assert_string_equal(o.password, "abc");
    vnc_options_clear(&o);
    free(p);

    char *missing = rt_path_join(g_dir, "missing");
    expect_password_refused(missing, NULL);
    free(missing);
    expect_password_refused(g_dir, NULL);             /* a directory */
    expect_password_refused("/dev/zero", NULL);       /* not a regular file, endless */
    p = write_file("empty", "", 0);
    expect_password_refused(p, NULL);
    free(p);
    p = write_file("firstempty", "\nsecret2\n", 9);
    expect_password_refused(p, "secret2");
    free(p);
    p = write_file("ctrl", "sec\x01ret\n", 8);
    expect_password_refused(p, "sec");
    free(p);
    p = write_file("nul", "sec\0ret\n", 8);
    expect_password_refused(p, "sec");
    free(p);
    char big[5000];
    memset(big, 'x', sizeof(big));
    p = write_file("big", big, sizeof(big));
    expect_password_refused(p, NULL);
    free(p);
}

static void test_keymap(void **state)
{
    (void)state;
    struct vnc_options o = { 0 };
    char err[256];
    assert_int_equal(vnc_keymap_set(&o, "DE", err, sizeof(err)), 0);
    assert_string_equal(o.keymap, "de");
    static const char *const bad[] = { "", "de/../x", "a b", "abcdefghijklmnopq", "fr;rm", "\xc3\xa9" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_not_equal(vnc_keymap_set(&o, bad[i], err, sizeof(err)), 0);
        assert_string_equal(o.keymap, "de");
    }
    assert_int_not_equal(vnc_keymap_set(&o, NULL, err, sizeof(err)), 0);
}

/* ---- A fake machine: graphics device, keyboard, mouse ------------------------------------------ */

struct fake {
    struct vm *vm;
    struct display *dpy;
    uint32_t width, height, seed;
    struct rt_thread *loop_thread;
    /* input seen by the guest side (under the VM lock) */
    uint32_t keys[256];
    unsigned key_count;
    unsigned abs_x, abs_y, abs_buttons;
    int abs_dz;
    unsigned abs_count;
};

static uint32_t fake_pixel(const struct fake *f, uint32_t x, uint32_t y)
{
    return ((x * 2654435761u) ^ (y * 40503u) ^ f->seed) & 0xffffffu;
}

static void fake_refresh(void *opaque, struct display *dpy, bool full)
{
    struct fake *f = opaque;
    struct dpy_surface *s = dpy_surface_get(dpy);
    bool resized = s->width != f->width || s->height != f->height;
    if (resized)
        assert_int_equal(dpy_resize(dpy, f->width, f->height), 0);
    s = dpy_surface_get(dpy);
    for (uint32_t y = 0; y < s->height; y++)
        for (uint32_t x = 0; x < s->width; x++) {
            uint32_t v = fake_pixel(f, x, y);
            memcpy(s->pixels + (size_t)y * s->stride_bytes + x * 4, &v, 4);
        }
    dpy_dirty(dpy, 0, 0, s->width, s->height);
    (void)full;
}

static const struct dpy_gfx_ops g_fake_gfx = { .refresh = fake_refresh };

static void fake_key(void *opaque, uint32_t keycode, bool down)
{
    struct fake *f = opaque;
    if (f->key_count < 256)
        f->keys[f->key_count] = keycode | (down ? 0 : 0x80000000u);
    f->key_count++;
}

static void fake_raw(void *opaque, const uint8_t *bytes, size_t len)
{
    (void)opaque, (void)bytes, (void)len;
}

static unsigned fake_leds(void *opaque)
{
    (void)opaque;
    return 0;
}

static void fake_abs(void *opaque, unsigned x, unsigned y, int dz, unsigned buttons)
{
    struct fake *f = opaque;
    f->abs_x = x;
    f->abs_y = y;
    f->abs_dz += dz;
    f->abs_buttons = buttons;
    f->abs_count++;
}

static const struct inp_kbd_ops g_fake_kbd = { .key = fake_key, .raw = fake_raw, .leds = fake_leds };
static const struct inp_mouse_ops g_fake_mouse = { .abs = fake_abs };

static void *loop_main(void *arg)
{
    struct fake *f = arg;
    rt_evloop_run(vm_get_evloop(f->vm));
    return NULL;
}

static struct fake *fake_create(bool with_display)
{
    struct fake *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    struct vm_params p = { .name = "tstVnc", .ram_bytes = 0, .vcpu_count = 1, .exec = VM_EXEC_NONE,
                           .clock_mode = VM_CLOCK_MANUAL };
    assert_int_equal(vm_create(&p, &f->vm), 0);
    f->width = 320;
    f->height = 200;
    f->seed = 0x5a5a5a;
    if (with_display)
        assert_int_equal(dpy_create(f->vm, "fake", &g_fake_gfx, f, &f->dpy), 0);
    assert_int_equal(inp_kbd_register(f->vm, &g_fake_kbd, f), 0);
    assert_int_equal(inp_mouse_register(f->vm, &g_fake_mouse, f), 0);
    assert_int_equal(rt_thread_create(&f->loop_thread, "tst-loop", loop_main, f), 0);
    return f;
}

static void fake_destroy(struct fake *f)
{
    rt_evloop_stop(vm_get_evloop(f->vm));
    rt_thread_join(f->loop_thread, NULL);
    inp_unregister(f->vm, f);
    dpy_destroy(f->dpy);
    vm_destroy(f->vm);
    free(f);
}

/* ---- A small RFB client ------------------------------------------------------------------------ */

static int rfb_connect(unsigned port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

/* Reads exactly len bytes within 10 s (the server may be waiting out a stalled client); false on EOF, error or timeout. */
static bool rfb_read(int fd, void *buf, size_t len)
{
    uint8_t *p = buf;
    uint64_t deadline = rt_time_mono_ns() + 10 * RT_NS_PER_SEC;
    while (len) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        uint64_t now = rt_time_mono_ns();
        if (now >= deadline || poll(&pfd, 1, (int)((deadline - now) / RT_NS_PER_MS) + 1) <= 0)
            return false;
        ssize_t n = read(fd, p, len);
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

static void rfb_write(int fd, const void *buf, size_t len)
{
    assert_int_equal(write(fd, buf, len), (ssize_t)len);
}

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Version and security; returns the SecurityResult (0 ok) or -1 when the server closed or stalled. */
static int rfb_auth(int fd, const char *password)
{
    uint8_t buf[64];
    if (!rfb_read(fd, buf, 12))
        return -1;
    assert_memory_equal(buf, "RFB 003.", 8);
    rfb_write(fd, "RFB 003.008\n", 12);
    uint8_t n;
    if (!rfb_read(fd, &n, 1) || n == 0 || !rfb_read(fd, buf, n))
        return -1;
    uint8_t want = password ? 2 : 1;
    assert_non_null(memchr(buf, want, n));
    rfb_write(fd, &want, 1);
    if (password) {
        uint8_t challenge[16];
        char key[9];
        if (!rfb_read(fd, challenge, 16))
            return -1;
        snprintf(key, sizeof(key), "%s", password);
        rfbEncryptBytes(challenge, key);
        rfb_write(fd, challenge, 16);
    }
    if (!rfb_read(fd, buf, 4))
        return -1;
    return (int)be32(buf);
}

/* ClientInit (shared) and ServerInit: the size, the pixel format checked. */
static void rfb_init(int fd, uint32_t *w, uint32_t *h)
{
    uint8_t shared = 1, si[24];
    rfb_write(fd, &shared, 1);
    assert_true(rfb_read(fd, si, 24));
    *w = be16(si);
    *h = be16(si + 2);
    assert_int_equal(si[4], 32);        /* bits per pixel */
    assert_int_equal(si[5], 24);        /* depth */
    assert_int_not_equal(si[7], 0);     /* true colour */
    assert_int_equal(si[14], 16);       /* red shift: XRGB8888 as it is */
    assert_int_equal(si[15], 8);
    assert_int_equal(si[16], 0);
    uint32_t name_len = be32(si + 20);
    assert_true(name_len < 256);
    char name[256];
    assert_true(rfb_read(fd, name, name_len));
    name[name_len] = '\0';
    assert_string_equal(name, "tstVnc");
}

static void rfb_set_encodings(int fd)
{
    /* Raw and the DesktopSize pseudo-encoding (-223). */
    uint8_t m[12] = { 2, 0, 0, 2, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x21 };
    rfb_write(fd, m, sizeof(m));
}

static void rfb_request(int fd, bool incremental, uint32_t w, uint32_t h)
{
    uint8_t m[10] = { 3, incremental, 0, 0, 0, 0, (uint8_t)(w >> 8), (uint8_t)w, (uint8_t)(h >> 8), (uint8_t)h };
    rfb_write(fd, m, sizeof(m));
}

/*
 * Reads FramebufferUpdates until the picture in pixels (w x h) matches the fake's pattern; a
 * DesktopSize rectangle changes w and h.  Returns false on a timeout or a broken stream.
 */
static bool rfb_read_picture(int fd, const struct fake *f, uint32_t *w, uint32_t *h)
{
    uint32_t *pixels = calloc((size_t)*w * *h, 4);
    uint64_t deadline = rt_time_mono_ns() + 10 * RT_NS_PER_SEC;
    bool ok = false;
    while (!ok && rt_time_mono_ns() < deadline) {
        uint8_t hdr[4];
        if (!rfb_read(fd, hdr, 4))
            break;
        if (hdr[0] != 0)
            break;
        unsigned rects = be16(hdr + 2);
        for (unsigned i = 0; i < rects; i++) {
            uint8_t r[12];
            if (!rfb_read(fd, r, 12))
                goto out;
            uint32_t x = be16(r), y = be16(r + 2), rw = be16(r + 4), rh = be16(r + 6);
            int32_t enc = (int32_t)be32(r + 8);
            if (enc == -223) {
                *w = rw;
                *h = rh;
                free(pixels);
                pixels = calloc((size_t)rw * rh, 4);
                continue;
            }
            if (enc != 0 || x + rw > *w || y + rh > *h)
                goto out;
            for (uint32_t row = 0; row < rh; row++)
                if (!rfb_read(fd, pixels + (size_t)(y + row) * *w + x, (size_t)rw * 4))
                    goto out;
        }
        ok = *w == f->width && *h == f->height;
        for (uint32_t y = 0; ok && y < *h; y++)
            for (uint32_t x = 0; ok && x < *w; x++)
                ok = (pixels[(size_t)y * *w + x] & 0xffffffu) == fake_pixel(f, x, y);
        if (!ok)
            rfb_request(fd, true, *w, *h);
    }
out:
    free(pixels);
    return ok;
}

static void rfb_key(int fd, bool down, uint32_t keysym)
{
    uint8_t m[8] = { 4, down, 0, 0, (uint8_t)(keysym >> 24), (uint8_t)(keysym >> 16), (uint8_t)(keysym >> 8),
                     (uint8_t)keysym };
    rfb_write(fd, m, sizeof(m));
}

static void rfb_pointer(int fd, uint8_t buttons, uint16_t x, uint16_t y)
{
    uint8_t m[6] = { 5, buttons, (uint8_t)(x >> 8), (uint8_t)x, (uint8_t)(y >> 8), (uint8_t)y };
    rfb_write(fd, m, sizeof(m));
}

/* Waits until the fake keyboard saw count key events (the server applies them on its thread). */
static bool wait_keys(struct fake *f, unsigned count)
{
    for (int i = 0; i < 500; i++) {
        vm_lock(f->vm);
        unsigned n = f->key_count;
        vm_unlock(f->vm);
        if (n >= count)
            return n == count;
        rt_sleep_ns(10 * RT_NS_PER_MS);
    }
    return false;
}

#define UP(code) ((code) | 0x80000000u)

/* ---- Server tests ------------------------------------------------------------------------------ */

static void test_refusals(void **state)
{
    (void)state;
    struct fake *f = fake_create(false);
    struct vnc_options o = { .no_auth = true };
    struct vnc_server *srv = (struct vnc_server *)1;
    assert_int_equal(vnc_server_start(f->vm, &o, &srv), VERR_NOT_FOUND);
    assert_null(srv);
    fake_destroy(f);

    f = fake_create(true);
    o.no_auth = false;
    assert_int_equal(vnc_server_start(f->vm, &o, &srv), VERR_ACCESS_DENIED);
    assert_null(srv);
    /* An address this host does not have. */
    o.no_auth = true;
    strcpy(o.address, "192.0.2.77");
    o.port = 5999;
    assert_int_not_equal(vnc_server_start(f->vm, &o, &srv), 0);
    assert_null(srv);
    /* A port in use: the first server's. */
    o.address[0] = '\0';
    o.port = 0;
    assert_int_equal(vnc_server_start(f->vm, &o, &srv), 0);
    struct vnc_server *second = NULL;
    o.port = vnc_server_port(srv);
    assert_int_equal(vnc_server_start(f->vm, &o, &second), VERR_BUSY);
    assert_null(second);
    /* Port 0 moves on to the next free one. */
    o.port = 0;
    assert_int_equal(vnc_server_start(f->vm, &o, &second), 0);
    assert_int_not_equal(vnc_server_port(second), vnc_server_port(srv));
    vnc_server_stop(second);
    vnc_server_stop(srv);
    vnc_server_stop(NULL);
    fake_destroy(f);
}

static void test_screen(void **state)
{
    (void)state;
    struct fake *f = fake_create(true);
    struct vnc_options o = { .no_auth = true };
    struct vnc_server *srv = NULL;
    assert_int_equal(vnc_server_start(f->vm, &o, &srv), 0);
    assert_string_equal(vnc_server_address(srv), "127.0.0.1");
    unsigned port = vnc_server_port(srv);

    /* The first picture: the server may still show its initial screen, then resizes to the fake's. */
    int fd = rfb_connect(port);
    assert_int_equal(rfb_auth(fd, NULL), 0);
    uint32_t w, h;
    rfb_init(fd, &w, &h);
    rfb_set_encodings(fd);
    rfb_request(fd, false, w, h);
    assert_true(rfb_read_picture(fd, f, &w, &h));
    assert_int_equal(w, 320);
    assert_int_equal(h, 200);

    /* A mode change reaches the client as a DesktopSize rectangle, then the new picture. */
    vm_lock(f->vm);
    f->width = 400;
    f->height = 300;
    f->seed = 0x123456;
    vm_unlock(f->vm);
    rfb_request(fd, true, w, h);
    assert_true(rfb_read_picture(fd, f, &w, &h));
    assert_int_equal(w, 400);
    assert_int_equal(h, 300);

    /* Three more viewers at once, each with the whole picture; the first still works after they go. */
    int more[3];
    for (int i = 0; i < 3; i++) {
        more[i] = rfb_connect(port);
        assert_int_equal(rfb_auth(more[i], NULL), 0);
        uint32_t mw, mh;
        rfb_init(more[i], &mw, &mh);
        assert_int_equal(mw, 400);
        rfb_request(more[i], false, mw, mh);
    }
    for (int i = 0; i < 3; i++) {
        uint32_t mw = 400, mh = 300;
        assert_true(rfb_read_picture(more[i], f, &mw, &mh));
        close(more[i]);
    }
    /* A client that asks for a picture and goes away before reading it. */
    int gone = rfb_connect(port);
    assert_int_equal(rfb_auth(gone, NULL), 0);
    uint32_t gw, gh;
    rfb_init(gone, &gw, &gh);
    rfb_request(gone, false, gw, gh);
    close(gone);
    vm_lock(f->vm);
    f->seed = 0x654321;
    vm_unlock(f->vm);
    rfb_request(fd, true, w, h);
    assert_true(rfb_read_picture(fd, f, &w, &h));
    close(fd);
    vnc_server_stop(srv);
    fake_destroy(f);
}

static void test_password(void **state)
{
    (void)state;
    struct fake *f = fake_create(true);
    struct vnc_options o = { 0 };
    assert_int_equal(vnc_password_set(&o, "hunter22"), 0);
    struct vnc_server *srv = NULL;
    assert_int_equal(vnc_server_start(f->vm, &o, &srv), 0);
    vnc_options_clear(&o); /* the server keeps its own copy */
    unsigned port = vnc_server_port(srv);

    int fd = rfb_connect(port);
    assert_int_not_equal(rfb_auth(fd, "wrong"), 0);
    close(fd);
    /* No security type "None" is offered to a client that asks for it anyway. */
    fd = rfb_connect(port);
    uint8_t buf[16], n;
    assert_true(rfb_read(fd, buf, 12));
    rfb_write(fd, "RFB 003.008\n", 12);
    assert_true(rfb_read(fd, &n, 1));
    assert_true(n >= 1 && rfb_read(fd, buf, n));
    assert_null(memchr(buf, 1, n));
    uint8_t none = 1;
    rfb_write(fd, &none, 1);
    uint8_t result[4] = { 0 };
    assert_false(rfb_read(fd, result, 4) && be32(result) == 0);
    close(fd);

    fd = rfb_connect(port);
    assert_int_equal(rfb_auth(fd, "hunter22"), 0);
    uint32_t w, h;
    rfb_init(fd, &w, &h);
    rfb_set_encodings(fd);
    rfb_request(fd, false, w, h);
    assert_true(rfb_read_picture(fd, f, &w, &h));
    close(fd);
    vnc_server_stop(srv);
    fake_destroy(f);
}

static void test_garbage(void **state)
{
    (void)state;
    struct fake *f = fake_create(true);
    struct vnc_options o = { .no_auth = true };
    struct vnc_server *srv = NULL;
    assert_int_equal(vnc_server_start(f->vm, &o, &srv), 0);
    unsigned port = vnc_server_port(srv);
    uint32_t seed = 12345;
    for (int round = 0; round < 8; round++) {
        int fd = rfb_connect(port);
        uint8_t junk[512];
        for (size_t i = 0; i < sizeof(junk); i++) {
            seed = seed * 1103515245u + 12345u;
            junk[i] = (uint8_t)(seed >> 16);
        }
        if (round >= 4) {
            /* A proper handshake first, then garbage as client messages. */
            assert_int_equal(rfb_auth(fd, NULL), 0);
            uint8_t shared = 1, si[24];
            rfb_write(fd, &shared, 1);
            assert_true(rfb_read(fd, si, 24));
        }
        ssize_t wr = write(fd, junk, sizeof(junk));
        (void)wr;
        close(fd);
    }
    /* A client message cut in half, then silence: the server drops it without hanging the others for good. */
    int half = rfb_connect(port);
    assert_int_equal(rfb_auth(half, NULL), 0);
    uint8_t shared = 1, si[24];
    rfb_write(half, &shared, 1);
    assert_true(rfb_read(half, si, 24));
    uint8_t partial[3] = { 3, 0, 0 };
    rfb_write(half, partial, sizeof(partial));
    int fd = rfb_connect(port);
    assert_int_equal(rfb_auth(fd, NULL), 0);
    uint32_t w, h;
    rfb_init(fd, &w, &h);
    rfb_set_encodings(fd);
    rfb_request(fd, false, w, h);
    assert_true(rfb_read_picture(fd, f, &w, &h));
    close(half);

    /*
     * 1 to 3 bytes before the greeting, arriving while the server takes the connection, then gone
     * (libvncserver's own peek at new sockets spins forever on these).  With a viewer connected the
     * server looks at new connections every few ms, so 40 ms later it is in the middle of taking it.
     */
    for (int i = 0; i < 3; i++) {
        int early = rfb_connect(port);
        rt_sleep_ns(40 * RT_NS_PER_MS);
        rfb_write(early, "RFB", (size_t)i + 1);
        close(early);
    }
    vm_lock(f->vm);
    f->seed ^= 0x111111;
    vm_unlock(f->vm);
    rfb_request(fd, true, w, h);
    assert_true(rfb_read_picture(fd, f, &w, &h));

    /* Connections that never finish the handshake (silent, or stopped at the password) are dropped at the deadline. */
    close(fd);
    vnc_server_stop(srv);
    o.handshake_ms = 300;
    assert_int_equal(vnc_password_set(&o, "pw"), 0);
    struct vnc_server *strict = NULL;
    assert_int_equal(vnc_server_start(f->vm, &o, &strict), 0);
    vnc_options_clear(&o);
    int idle[20];
    for (int i = 0; i < 20; i++)
        idle[i] = rfb_connect(vnc_server_port(strict));
    uint8_t version[12];
    assert_true(rfb_read(idle[0], version, 12));
    rfb_write(idle[0], "RFB 003.008\n", 12);
    for (int i = 0; i < 20; i++) {
        /* Everything up to the end: the server closes each within the deadline (plus a poll). */
        uint64_t t0 = rt_time_mono_ns();
        uint8_t sink[64];
        while (rfb_read(idle[i], sink, 1))
            ;
        assert_true(rt_time_mono_ns() - t0 < 5 * RT_NS_PER_SEC);
        close(idle[i]);
    }
    int late = rfb_connect(vnc_server_port(strict));
    assert_int_equal(rfb_auth(late, "pw"), 0);
    close(late);
    vnc_server_stop(strict);
    o.handshake_ms = 0;
    o.no_auth = true;
    assert_int_equal(vnc_server_start(f->vm, &o, &srv), 0);
    fd = rfb_connect(vnc_server_port(srv));
    assert_int_equal(rfb_auth(fd, NULL), 0);
    rfb_init(fd, &w, &h);
    rfb_set_encodings(fd);

    /* A flood of pointer and key events (every key released again): the server keeps up and still serves pictures. */
    uint8_t flood[6 * 4096 + 16 * 1024];
    size_t n = 0;
    for (unsigned i = 0; i < 4096; i++) {
        uint8_t m[6] = { 5, (uint8_t)(i & 0x1f), (uint8_t)(i >> 8), (uint8_t)i, 0, (uint8_t)i };
        memcpy(flood + n, m, sizeof(m));
        n += sizeof(m);
    }
    for (unsigned i = 0; i < 1024; i++) {
        uint32_t ks = 'a' + i % 26;
        uint8_t m[16] = { 4, 1, 0, 0, 0, 0, 0, (uint8_t)ks, 4, 0, 0, 0, 0, 0, 0, (uint8_t)ks };
        memcpy(flood + n, m, sizeof(m));
        n += sizeof(m);
    }
    vm_lock(f->vm);
    f->key_count = 0;
    vm_unlock(f->vm);
    rfb_write(fd, flood, n);
    vm_lock(f->vm);
    f->seed ^= 0xabcdef;
    vm_unlock(f->vm);
    rfb_request(fd, true, w, h);
    assert_true(rfb_read_picture(fd, f, &w, &h));
    assert_true(wait_keys(f, 2048));
    assert_int_equal(f->keys[0], 0x1e);
    assert_int_equal(f->keys[1], UP(0x1e));
    close(fd);
    vnc_server_stop(srv);
    fake_destroy(f);
}

/* The loopback IPv6 address, where the host has IPv6. */
static void test_ipv6(void **state)
{
    (void)state;
    int probe = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
    bool have = probe >= 0 && bind(probe, (struct sockaddr *)&a, sizeof(a)) == 0;
    if (probe >= 0)
        close(probe);
    if (!have)
        skip();
    struct fake *f = fake_create(true);
    struct vnc_options o = { .no_auth = true };
    char err[128];
    assert_int_equal(vnc_listen_parse("[::1]:0", &o, err, sizeof(err)), 0);
    struct vnc_server *srv = NULL;
    assert_int_equal(vnc_server_start(f->vm, &o, &srv), 0);
    assert_string_equal(vnc_server_address(srv), "::1");
    a.sin6_port = htons((uint16_t)vnc_server_port(srv));
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(rfb_auth(fd, NULL), 0);
    uint32_t w, h;
    rfb_init(fd, &w, &h);
    rfb_set_encodings(fd);
    rfb_request(fd, false, w, h);
    assert_true(rfb_read_picture(fd, f, &w, &h));
    close(fd);
    vnc_server_stop(srv);
    fake_destroy(f);
}

static void test_input(void **state)
{
    (void)state;
    struct fake *f = fake_create(true);
    struct vnc_options o = { .no_auth = true };
    struct vnc_server *srv = NULL;
    assert_int_equal(vnc_server_start(f->vm, &o, &srv), 0);
    int fd = rfb_connect(vnc_server_port(srv));
    assert_int_equal(rfb_auth(fd, NULL), 0);
    uint32_t w, h;
    rfb_init(fd, &w, &h);
    rfb_set_encodings(fd);
    rfb_request(fd, false, w, h);
    assert_true(rfb_read_picture(fd, f, &w, &h));

    /* 'a', then 'A' without the client holding Shift: Shift is pressed around the key. */
    rfb_key(fd, true, 'a');
    rfb_key(fd, false, 'a');
    rfb_key(fd, true, 'A');
    rfb_key(fd, false, 'A');
    assert_true(wait_keys(f, 6));
    const uint32_t want1[] = { 0x1e, UP(0x1e), 0x2a, 0x1e, UP(0x2a), UP(0x1e) };
    assert_memory_equal(f->keys, want1, sizeof(want1));

    /* Client holds Shift_L and sends '1' (its layout's Shift+key): Shift is let go for it and put back. */
    f->key_count = 0;
    rfb_key(fd, true, 0xffe1);
    rfb_key(fd, true, '1');
    rfb_key(fd, false, '1');
    rfb_key(fd, false, 0xffe1);
    assert_true(wait_keys(f, 6));
    const uint32_t want2[] = { 0x2a, UP(0x2a), 0x02, 0x2a, UP(0x02), UP(0x2a) };
    assert_memory_equal(f->keys, want2, sizeof(want2));

    /* Shift + Left arrow keeps Shift (selection); the release after Shift went up still releases the arrow. */
    f->key_count = 0;
    rfb_key(fd, true, 0xffe1);
    rfb_key(fd, true, 0xff51);
    rfb_key(fd, false, 0xffe1);
    rfb_key(fd, false, 0xff51);
    assert_true(wait_keys(f, 4));
    const uint32_t want3[] = { 0x2a, 0xe04b, UP(0x2a), UP(0xe04b) };
    assert_memory_equal(f->keys, want3, sizeof(want3));

    /* Unknown keysyms and releases of keys never pressed reach nothing. */
    f->key_count = 0;
    rfb_key(fd, true, 0x0fffffffu);
    rfb_key(fd, false, 'q');
    rfb_key(fd, true, 'z');
    assert_true(wait_keys(f, 1));
    assert_int_equal(f->keys[0], 0x2c);

    /* The pointer: corners of the screen to the absolute range, buttons and a wheel notch. */
    rfb_pointer(fd, 0x01, 0, 0);
    rfb_pointer(fd, 0x04 | 0x08, (uint16_t)(w - 1), (uint16_t)(h - 1));
    rfb_pointer(fd, 0x00, 60000, 60000);
    for (int i = 0; i < 500; i++) {
        vm_lock(f->vm);
        unsigned n = f->abs_count;
        vm_unlock(f->vm);
        if (n >= 3)
            break;
        rt_sleep_ns(10 * RT_NS_PER_MS);
    }
    vm_lock(f->vm);
    assert_int_equal(f->abs_count, 3);
    assert_int_equal(f->abs_x, 0x7fff);
    assert_int_equal(f->abs_y, 0x7fff);
    assert_int_equal(f->abs_dz, -1);
    assert_int_equal(f->abs_buttons, 0);
    vm_unlock(f->vm);

    /* The client goes with 'z' still held: the server releases it. */
    close(fd);
    assert_true(wait_keys(f, 2));
    assert_int_equal(f->keys[1], UP(0x2c));
    vnc_server_stop(srv);
    fake_destroy(f);
}

static int teardown_dir(void **state)
{
    (void)state;
    if (g_dir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
        if (system(cmd) != 0)
            return -1;
    }
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_listen_parse), cmocka_unit_test_teardown(test_password_file, teardown_dir),
        cmocka_unit_test(test_keymap),       cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_screen),       cmocka_unit_test(test_password),
        cmocka_unit_test(test_garbage),      cmocka_unit_test(test_input),
        cmocka_unit_test(test_ipv6),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
