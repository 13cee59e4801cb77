/* tstDisplay.c - display pipeline tests: a fake graphics device and recording listeners (resize, dirty merging and clipping, intervals, removal, snapshots, PNG round trips, hostile sizes). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <dirent.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "vireo/display.h"

/* ---- A fake graphics device ------------------------------------------------------------------------ */

struct fake_rect {
    uint32_t x, y, w, h;
};

struct fake_gfx {
    uint32_t width, height;          /* the mode the "guest" set */
    uint32_t seed;                   /* pixel pattern */
    unsigned refreshes, full_refreshes;
    unsigned script_count;           /* rectangles to report at the next refresh */
    struct fake_rect script[64];
    bool dirty_every_refresh;        /* report one small rectangle at every refresh */
};

static uint32_t fake_pixel(const struct fake_gfx *f, uint32_t x, uint32_t y)
{
    return (x * 2654435761u) ^ (y * 40503u) ^ f->seed;
}

static void fake_refresh(void *opaque, struct display *dpy, bool full)
{
    struct fake_gfx *f = opaque;
    f->refreshes++;
    f->full_refreshes += full;
    struct dpy_surface *s = dpy_surface_get(dpy);
    if (s->width != f->width || s->height != f->height)
        assert_int_equal(dpy_resize(dpy, f->width, f->height), 0);
    for (uint32_t y = 0; y < s->height; y++)
        for (uint32_t x = 0; x < s->width; x++) {
            uint32_t v = fake_pixel(f, x, y) & 0xffffffu;
            memcpy(s->pixels + (size_t)y * s->stride_bytes + x * 4, &v, 4);
        }
    for (unsigned i = 0; i < f->script_count; i++)
        dpy_dirty(dpy, f->script[i].x, f->script[i].y, f->script[i].w, f->script[i].h);
    f->script_count = 0;
    if (f->dirty_every_refresh)
        dpy_dirty(dpy, 1, 1, 2, 2);
}

static const struct dpy_gfx_ops g_fake_ops = { .refresh = fake_refresh };

/* ---- Recording listeners ----------------------------------------------------------------------------- */

struct rec {
    unsigned resizes;
    uint32_t last_w, last_h;
    unsigned updates;
    unsigned batches;                /* ticks in which this listener got at least one update */
    unsigned tick_mark;
    struct fake_rect upd[256];
    struct dpy_listener *self;       /* for removal from a callback */
    struct dpy_listener *victim;     /* removed by this listener's first update */
    bool remove_self;
    bool called_after_remove;
    bool removed;
};

static unsigned g_tick; /* bumped by the test between loop iterations */

static void rec_resize(void *opaque, const struct dpy_surface *s)
{
    struct rec *r = opaque;
    r->called_after_remove |= r->removed;
    r->resizes++;
    r->last_w = s->width;
    r->last_h = s->height;
}

static void rec_update(void *opaque, const struct dpy_surface *s, uint32_t x, uint32_t y, uint32_t w, uint32_t h)
{
    struct rec *r = opaque;
    r->called_after_remove |= r->removed;
    assert_true(w > 0 && h > 0 && x + w <= s->width && y + h <= s->height);
    if (r->updates < 256)
        r->upd[r->updates] = (struct fake_rect){ x, y, w, h };
    r->updates++;
    if (r->tick_mark != g_tick + 1) {
        r->tick_mark = g_tick + 1;
        r->batches++;
    }
    if (r->victim) {
        dpy_listener_remove(r->victim);
        r->victim = NULL;
    }
    if (r->remove_self && !r->removed) {
        r->removed = true;
        dpy_listener_remove(r->self);
    }
}

static const struct dpy_listener_ops g_rec_ops = { .resize = rec_resize, .update = rec_update };

/* Runs the VM's event loop (the test thread plays the loop thread) for about ms milliseconds. */
static void run_loop_ms(struct vm *vm, unsigned ms)
{
    uint64_t end = rt_time_mono_ns() + (uint64_t)ms * RT_NS_PER_MS;
    while (rt_time_mono_ns() < end) {
        assert_int_equal(rt_evloop_run_once(vm_get_evloop(vm), RT_NS_PER_MS), 0);
        g_tick++;
    }
}

/* Runs the loop until cond holds (at most 5 s of host time, for a loaded machine). */
#define RUN_UNTIL(vm, cond)                                                                                  \
    do {                                                                                                     \
        uint64_t end_ = rt_time_mono_ns() + 5 * RT_NS_PER_SEC;                                               \
        while (!(cond) && rt_time_mono_ns() < end_) {                                                        \
            assert_int_equal(rt_evloop_run_once(vm_get_evloop(vm), RT_NS_PER_MS), 0);                        \
            g_tick++;                                                                                        \
        }                                                                                                    \
        assert_true(cond);                                                                                   \
    } while (0)

static bool covered(const struct rec *r, unsigned first, uint32_t x, uint32_t y, uint32_t w, uint32_t h)
{
    for (unsigned i = first; i < r->updates && i < 256; i++) {
        const struct fake_rect *u = &r->upd[i];
        if (x >= u->x && y >= u->y && x + w <= u->x + u->w && y + h <= u->y + u->h)
            return true;
    }
    return false;
}

/* ---- Tests ------------------------------------------------------------------------------------------ */

static void test_find_and_index(void **state)
{
    struct vm *vm = harness_vm_create(0), *other = harness_vm_create(0);
    struct fake_gfx f = { 0 };
    struct display *a, *b, *c;
    assert_null(dpy_find(vm, 0));
    assert_int_equal(dpy_create(vm, "vga", &g_fake_ops, &f, &a), 0);
    assert_int_equal(dpy_create(other, "other", &g_fake_ops, &f, &c), 0);
    assert_int_equal(dpy_create(vm, "second", &g_fake_ops, &f, &b), 0);
    assert_ptr_equal(dpy_find(vm, 0), a);
    assert_ptr_equal(dpy_find(vm, 1), b);
    assert_ptr_equal(dpy_find(other, 0), c);
    assert_null(dpy_find(vm, 2));
    assert_string_equal(dpy_name(b), "second");
    assert_int_equal(dpy_create(vm, "x", NULL, &f, &c), VERR_INVALID_PARAMETER);
    dpy_destroy(a);
    dpy_destroy(b);
    assert_null(dpy_find(vm, 0));
    dpy_destroy(dpy_find(other, 0));
    dpy_destroy(NULL);
    harness_vm_destroy(other);
    harness_vm_destroy(vm);
}

static void test_no_refresh_without_listeners(void **state)
{
    struct vm *vm = harness_vm_create(0);
    struct fake_gfx f = { .width = 64, .height = 32 };
    struct display *dpy;
    assert_int_equal(dpy_create(vm, "vga", &g_fake_ops, &f, &dpy), 0);
    run_loop_ms(vm, 30);
    assert_int_equal(f.refreshes, 0);

    struct rec r = { 0 };
    struct dpy_listener *l;
    assert_int_equal(dpy_listener_add(dpy, &g_rec_ops, &r, 5 * RT_NS_PER_MS, &l), 0);
    RUN_UNTIL(vm, r.updates > 0);
    /* The first refresh for a new listener renders everything; it hears the size and gets the whole screen. */
    assert_true(f.full_refreshes >= 1);
    assert_int_equal(r.resizes, 1);
    assert_int_equal(r.last_w, 64);
    assert_int_equal(r.last_h, 32);
    assert_int_equal(r.updates, 1);
    assert_true(r.upd[0].x == 0 && r.upd[0].y == 0 && r.upd[0].w == 64 && r.upd[0].h == 32);
    f.dirty_every_refresh = true;
    RUN_UNTIL(vm, f.refreshes >= 4);

    dpy_listener_remove(l);
    /* At most the tick already armed fires, finds no listener and stops. */
    run_loop_ms(vm, 15);
    unsigned after = f.refreshes;
    run_loop_ms(vm, 50);
    assert_int_equal(f.refreshes, after);
    dpy_destroy(dpy);
    harness_vm_destroy(vm);
}

static void test_resize_reaches_listeners(void **state)
{
    struct vm *vm = harness_vm_create(0);
    struct fake_gfx f = { .width = 0, .height = 0 };
    struct display *dpy;
    assert_int_equal(dpy_create(vm, "vga", &g_fake_ops, &f, &dpy), 0);
    struct rec r = { 0 };
    struct dpy_listener *l;
    assert_int_equal(dpy_listener_add(dpy, &g_rec_ops, &r, 2 * RT_NS_PER_MS, &l), 0);
    RUN_UNTIL(vm, f.refreshes >= 2);
    /* A screen that is off: no resize on attach, nothing to update. */
    assert_int_equal(r.resizes, 0);
    assert_int_equal(r.updates, 0);

    f.width = 640, f.height = 480;
    RUN_UNTIL(vm, r.resizes == 1);
    assert_int_equal(r.last_w, 640);
    assert_int_equal(r.last_h, 480);
    RUN_UNTIL(vm, r.updates >= 1);
    assert_true(covered(&r, 0, 0, 0, 640, 480));

    unsigned before = r.updates;
    f.width = 800, f.height = 600;
    RUN_UNTIL(vm, r.resizes == 2);
    assert_int_equal(r.last_w, 800);
    assert_int_equal(r.last_h, 600);
    RUN_UNTIL(vm, r.updates > before);
    assert_true(covered(&r, before, 0, 0, 800, 600));

    /* The guest turns the display off: listeners hear 0x0 and get no updates. */
    before = r.updates;
    f.width = 0, f.height = 0;
    RUN_UNTIL(vm, r.resizes == 3);
    assert_int_equal(r.last_w, 0);
    run_loop_ms(vm, 10);
    assert_int_equal(r.updates, before);
    dpy_listener_remove(l);
    dpy_destroy(dpy);
    harness_vm_destroy(vm);
}

static void test_dirty_merged_and_clipped(void **state)
{
    struct vm *vm = harness_vm_create(0);
    struct fake_gfx f = { .width = 640, .height = 480 };
    struct display *dpy;
    assert_int_equal(dpy_create(vm, "vga", &g_fake_ops, &f, &dpy), 0);
    struct rec r = { 0 };
    struct dpy_listener *l;
    assert_int_equal(dpy_listener_add(dpy, &g_rec_ops, &r, 2 * RT_NS_PER_MS, &l), 0);
    RUN_UNTIL(vm, r.updates == 1);

    /* Three neighbouring text cells become one update; two far corners stay apart. */
    unsigned before = r.updates;
    f.script[0] = (struct fake_rect){ 0, 0, 8, 16 };
    f.script[1] = (struct fake_rect){ 8, 0, 8, 16 };
    f.script[2] = (struct fake_rect){ 16, 0, 8, 16 };
    f.script[3] = (struct fake_rect){ 600, 400, 10, 10 };
    f.script_count = 4;
    RUN_UNTIL(vm, r.updates > before);
    assert_int_equal(r.updates - before, 2);
    assert_true(covered(&r, before, 0, 0, 24, 16));
    assert_true(covered(&r, before, 600, 400, 10, 10));
    for (unsigned i = before; i < r.updates; i++)
        assert_true(r.upd[i].w * r.upd[i].h <= 24 * 16);

    /* Clipping: a rectangle hanging off the corner is cut, one entirely outside is dropped. */
    before = r.updates;
    f.script[0] = (struct fake_rect){ 630, 470, 100, 100 };
    f.script[1] = (struct fake_rect){ 700, 0, 5, 5 };
    f.script[2] = (struct fake_rect){ 0, 0xfffffff0u, 0xffffffffu, 0xffffffffu };
    f.script_count = 3;
    RUN_UNTIL(vm, r.updates > before);
    assert_int_equal(r.updates - before, 1);
    assert_true(r.upd[before].x == 630 && r.upd[before].y == 470 && r.upd[before].w == 10 && r.upd[before].h == 10);

    /* Many scattered rectangles: few updates, and every change is inside one of them. */
    before = r.updates;
    for (unsigned i = 0; i < 40; i++)
        f.script[i] = (struct fake_rect){ (i * 97) % 600, (i * 53) % 440, 3, 3 };
    f.script_count = 40;
    RUN_UNTIL(vm, r.updates > before);
    run_loop_ms(vm, 5);
    assert_true(r.updates - before <= 16);
    for (unsigned i = 0; i < 40; i++)
        assert_true(covered(&r, before, (i * 97) % 600, (i * 53) % 440, 3, 3));
    dpy_listener_remove(l);
    dpy_destroy(dpy);
    harness_vm_destroy(vm);
}

static void test_intervals(void **state)
{
    struct vm *vm = harness_vm_create(0);
    struct fake_gfx f = { .width = 32, .height = 32, .dirty_every_refresh = true };
    struct display *dpy;
    assert_int_equal(dpy_create(vm, "vga", &g_fake_ops, &f, &dpy), 0);
    struct rec fast = { 0 }, slow = { 0 };
    struct dpy_listener *lf, *ls;
    uint64_t t0 = rt_time_mono_ns();
    assert_int_equal(dpy_listener_add(dpy, &g_rec_ops, &slow, 5 * RT_NS_PER_SEC, &ls), 0);
    assert_int_equal(dpy_listener_add(dpy, &g_rec_ops, &fast, 5 * RT_NS_PER_MS, &lf), 0);
    RUN_UNTIL(vm, fast.batches >= 6);
    uint64_t elapsed = rt_time_mono_ns() - t0;
    /* The display refreshes at the fast listener's pace; the slow one only had its first, whole-screen update. */
    assert_true(f.refreshes >= 6);
    assert_int_equal(slow.resizes, 1);
    if (elapsed < 4 * RT_NS_PER_SEC)
        assert_int_equal(slow.batches, 1);
    /* Six 5 ms intervals cannot pass in less than 25 ms: the display did not run faster than asked. */
    assert_true(elapsed >= 25 * RT_NS_PER_MS);

    /* Once the fast one leaves, the pace drops to the slow listener's. */
    dpy_listener_remove(lf);
    run_loop_ms(vm, 10);
    unsigned after = f.refreshes;
    run_loop_ms(vm, 60);
    assert_true(f.refreshes <= after + 1);
    dpy_listener_remove(ls);
    dpy_destroy(dpy);
    harness_vm_destroy(vm);
}

static void test_remove_from_callbacks(void **state)
{
    struct vm *vm = harness_vm_create(0);
    struct fake_gfx f = { .width = 16, .height = 16, .dirty_every_refresh = true };
    struct display *dpy;
    assert_int_equal(dpy_create(vm, "vga", &g_fake_ops, &f, &dpy), 0);
    struct rec killer = { 0 }, victim = { 0 }, quitter = { 0 };
    struct dpy_listener *lk, *lv, *lq;
    assert_int_equal(dpy_listener_add(dpy, &g_rec_ops, &killer, 2 * RT_NS_PER_MS, &lk), 0);
    assert_int_equal(dpy_listener_add(dpy, &g_rec_ops, &victim, 2 * RT_NS_PER_MS, &lv), 0);
    assert_int_equal(dpy_listener_add(dpy, &g_rec_ops, &quitter, 2 * RT_NS_PER_MS, &lq), 0);
    quitter.self = lq;
    quitter.remove_self = true;
    /* The killer is called before its victim in the same tick: the victim must get nothing from then on. */
    killer.victim = lv;
    victim.removed = true;
    RUN_UNTIL(vm, killer.batches >= 4);
    assert_int_equal(victim.updates, 0);
    assert_int_equal(victim.resizes, 0);
    assert_false(victim.called_after_remove);
    assert_int_equal(quitter.updates, 1);
    assert_false(quitter.called_after_remove);
    dpy_listener_remove(lk);
    dpy_destroy(dpy);
    harness_vm_destroy(vm);
}

static void test_invalidate(void **state)
{
    struct vm *vm = harness_vm_create(0);
    struct fake_gfx f = { .width = 100, .height = 50 };
    struct display *dpy;
    assert_int_equal(dpy_create(vm, "vga", &g_fake_ops, &f, &dpy), 0);
    struct rec r = { 0 };
    struct dpy_listener *l;
    assert_int_equal(dpy_listener_add(dpy, &g_rec_ops, &r, 2 * RT_NS_PER_MS, &l), 0);
    RUN_UNTIL(vm, r.updates == 1);
    run_loop_ms(vm, 10);
    /* Nothing changed: no more updates, and no more full refreshes. */
    assert_int_equal(r.updates, 1);
    unsigned fulls = f.full_refreshes;
    dpy_invalidate(dpy);
    RUN_UNTIL(vm, r.updates == 2);
    assert_int_equal(f.full_refreshes, fulls + 1);
    assert_true(covered(&r, 1, 0, 0, 100, 50));
    assert_int_equal(r.resizes, 1);
    dpy_listener_remove(l);
    dpy_destroy(dpy);
    harness_vm_destroy(vm);
}

static void test_listener_outlives_display(void **state)
{
    struct vm *vm = harness_vm_create(0);
    struct fake_gfx f = { .width = 8, .height = 8 };
    struct display *dpy;
    assert_int_equal(dpy_create(vm, "vga", &g_fake_ops, &f, &dpy), 0);
    struct rec r = { 0 };
    struct dpy_listener *l;
    assert_int_equal(dpy_listener_add(dpy, &g_rec_ops, &r, 2 * RT_NS_PER_MS, &l), 0);
    RUN_UNTIL(vm, r.updates == 1);
    /* A kick queued for a display that is then destroyed finds nothing when it runs. */
    struct rec r2 = { 0 };
    struct dpy_listener *l2;
    assert_int_equal(dpy_listener_add(dpy, &g_rec_ops, &r2, 2 * RT_NS_PER_MS, &l2), 0);
    dpy_destroy(dpy);
    run_loop_ms(vm, 10);
    assert_int_equal(r2.updates, 0);
    dpy_listener_remove(l);
    dpy_listener_remove(l2);
    dpy_listener_remove(NULL);
    harness_vm_destroy(vm);
}

static void test_snapshot(void **state)
{
    struct vm *vm = harness_vm_create(0);
    struct fake_gfx f = { .width = 0, .height = 0, .seed = 0x1234 };
    struct display *dpy;
    assert_int_equal(dpy_create(vm, "vga", &g_fake_ops, &f, &dpy), 0);
    struct dpy_surface copy;
    assert_int_equal(dpy_snapshot(dpy, &copy), VERR_INVALID_STATE);
    assert_null(copy.pixels);
    f.width = 13, f.height = 7;
    unsigned fulls = f.full_refreshes;
    assert_int_equal(dpy_snapshot(dpy, &copy), 0);
    assert_int_equal(f.full_refreshes, fulls + 1);
    assert_int_equal(copy.width, 13);
    assert_int_equal(copy.height, 7);
    assert_int_equal(copy.stride_bytes, 13 * 4);
    for (uint32_t y = 0; y < 7; y++)
        for (uint32_t x = 0; x < 13; x++) {
            uint32_t v;
            memcpy(&v, copy.pixels + y * copy.stride_bytes + x * 4, 4);
            assert_int_equal(v, fake_pixel(&f, x, y) & 0xffffffu);
        }
    free(copy.pixels);
    assert_int_equal(dpy_snapshot(NULL, &copy), VERR_INVALID_PARAMETER);
    dpy_destroy(dpy);
    harness_vm_destroy(vm);
}

/* Decodes a PNG with libpng's simplified API into RGB bytes; checks that it is 8-bit RGB without alpha. */
static uint8_t *decode_png(const void *png, size_t len, uint32_t *w, uint32_t *h)
{
    assert_true(len > 33);
    const uint8_t *b = png;
    assert_memory_equal(b, "\x89PNG\r\n\x1a\n", 8);
    assert_int_equal(b[24], 8); /* IHDR bit depth */
    assert_int_equal(b[25], 2); /* IHDR colour type: RGB */
    png_image img;
    memset(&img, 0, sizeof(img));
    img.version = PNG_IMAGE_VERSION;
    assert_true(png_image_begin_read_from_memory(&img, png, len));
    img.format = PNG_FORMAT_RGB;
    uint8_t *rgb = malloc(PNG_IMAGE_SIZE(img));
    assert_non_null(rgb);
    assert_true(png_image_finish_read(&img, NULL, rgb, 0, NULL));
    *w = img.width;
    *h = img.height;
    return rgb;
}

static void test_png_round_trip(void **state)
{
    uint32_t seed = 0x9e3779b9u;
    struct dpy_surface s = { .width = 37, .height = 23, .stride_bytes = 37 * 4 + 12 };
    s.pixels = malloc((size_t)s.stride_bytes * s.height);
    for (size_t i = 0; i < (size_t)s.stride_bytes * s.height; i++)
        s.pixels[i] = (uint8_t)harness_rand(&seed);
    void *png;
    size_t len;
    assert_int_equal(dpy_png_encode(&s, &png, &len), 0);
    uint32_t w, h;
    uint8_t *rgb = decode_png(png, len, &w, &h);
    assert_int_equal(w, 37);
    assert_int_equal(h, 23);
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++) {
            const uint8_t *src = s.pixels + y * s.stride_bytes + x * 4, *dst = rgb + (y * w + x) * 3;
            assert_int_equal(dst[0], src[2]);
            assert_int_equal(dst[1], src[1]);
            assert_int_equal(dst[2], src[0]);
        }
    free(rgb);
    free(png);
    free(s.pixels);
}

static void test_screenshot_files(void **state)
{
    struct vm *vm = harness_vm_create(0);
    struct fake_gfx f = { .width = 20, .height = 10, .seed = 7 };
    struct display *dpy;
    assert_int_equal(dpy_create(vm, "vga", &g_fake_ops, &f, &dpy), 0);
    char dir[] = "/tmp/tstDisplay.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128], bad[160];
    snprintf(path, sizeof(path), "%s/shot.png", dir);
    snprintf(bad, sizeof(bad), "%s/missing/shot.png", dir);
    assert_int_equal(dpy_screenshot_png(dpy, path), 0);
    void *data;
    size_t len;
    assert_int_equal(rt_file_read_all(path, 1 << 20, &data, &len), 0);
    uint32_t w, h;
    uint8_t *rgb = decode_png(data, len, &w, &h);
    assert_int_equal(w, 20);
    assert_int_equal(h, 10);
    uint32_t v = fake_pixel(&f, 5, 3);
    const uint8_t *px = rgb + (3 * 20 + 5) * 3;
    assert_int_equal(px[0], (v >> 16) & 0xff);
    assert_int_equal(px[1], (v >> 8) & 0xff);
    assert_int_equal(px[2], v & 0xff);
    free(rgb);
    free(data);
    /* The memory form gives the same image. */
    assert_int_equal(dpy_screenshot_png_mem(dpy, &data, &len), 0);
    rgb = decode_png(data, len, &w, &h);
    free(rgb);
    free(data);
    /* A folder that does not exist: an error, and nothing left behind. */
    assert_true(dpy_screenshot_png(dpy, bad) < 0);
    assert_int_equal(dpy_screenshot_png(dpy, ""), VERR_INVALID_PARAMETER);
    /* The screen is off: no file at all. */
    f.width = 0;
    char off[160];
    snprintf(off, sizeof(off), "%s/off.png", dir);
    assert_int_equal(dpy_screenshot_png(dpy, off), VERR_INVALID_STATE);
    assert_int_equal(access(off, F_OK), -1);
    unsigned entries = 0;
    DIR *d = opendir(dir);
    for (struct dirent *e; (e = readdir(d));)
        entries += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    assert_int_equal(entries, 1); /* shot.png, no temporary files */
    unlink(path);
    rmdir(dir);
    dpy_destroy(dpy);
    harness_vm_destroy(vm);
}

static void test_hostile_sizes(void **state)
{
    struct vm *vm = harness_vm_create(0);
    struct fake_gfx f = { .width = 64, .height = 64 };
    struct display *dpy;
    assert_int_equal(dpy_create(vm, "vga", &g_fake_ops, &f, &dpy), 0);
    struct dpy_surface copy;
    assert_int_equal(dpy_snapshot(dpy, &copy), 0);
    free(copy.pixels);
    vm_lock(vm);
    assert_int_equal(dpy_resize(dpy, 16385, 10), VERR_TOO_LARGE);
    assert_int_equal(dpy_resize(dpy, 10, 0xffffffffu), VERR_TOO_LARGE);
    /* Refused sizes leave the surface as it was. */
    assert_int_equal(dpy_surface_get(dpy)->width, 64);
    assert_int_equal(dpy_surface_get(dpy)->height, 64);
    assert_non_null(dpy_surface_get(dpy)->pixels);
    /* One zero side means the screen is off. */
    assert_int_equal(dpy_resize(dpy, 100, 0), 0);
    assert_int_equal(dpy_surface_get(dpy)->width, 0);
    assert_null(dpy_surface_get(dpy)->pixels);
    dpy_dirty(dpy, 0, 0, 10, 10); /* on an empty surface: ignored */
    vm_unlock(vm);

    struct rec r = { 0 };
    struct dpy_listener *l = NULL;
    assert_int_equal(dpy_listener_add(dpy, &g_rec_ops, &r, 0, &l), VERR_OUT_OF_RANGE);
    assert_int_equal(dpy_listener_add(dpy, &g_rec_ops, &r, 11 * RT_NS_PER_SEC, &l), VERR_OUT_OF_RANGE);
    assert_int_equal(dpy_listener_add(dpy, NULL, &r, RT_NS_PER_MS, &l), VERR_INVALID_PARAMETER);
    assert_null(l);

    void *png = NULL;
    size_t len = 0;
    uint8_t px[64] = { 0 };
    struct dpy_surface s = { .width = 0, .height = 0, .stride_bytes = 0, .pixels = px };
    assert_int_equal(dpy_png_encode(&s, &png, &len), VERR_INVALID_PARAMETER);
    s = (struct dpy_surface){ .width = 4, .height = 2, .stride_bytes = 12, .pixels = px };
    assert_int_equal(dpy_png_encode(&s, &png, &len), VERR_INVALID_PARAMETER); /* stride < width * 4 */
    s = (struct dpy_surface){ .width = 4, .height = 2, .stride_bytes = 16, .pixels = NULL };
    assert_int_equal(dpy_png_encode(&s, &png, &len), VERR_INVALID_PARAMETER);
    s = (struct dpy_surface){ .width = 20000, .height = 1, .stride_bytes = 80000, .pixels = px };
    assert_int_equal(dpy_png_encode(&s, &png, &len), VERR_INVALID_PARAMETER);
    assert_null(png);
    dpy_destroy(dpy);
    harness_vm_destroy(vm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_find_and_index),
        cmocka_unit_test(test_no_refresh_without_listeners),
        cmocka_unit_test(test_resize_reaches_listeners),
        cmocka_unit_test(test_dirty_merged_and_clipped),
        cmocka_unit_test(test_intervals),
        cmocka_unit_test(test_remove_from_callbacks),
        cmocka_unit_test(test_invalidate),
        cmocka_unit_test(test_listener_outlives_display),
        cmocka_unit_test(test_snapshot),
        cmocka_unit_test(test_png_round_trip),
        cmocka_unit_test(test_screenshot_files),
        cmocka_unit_test(test_hostile_sizes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
