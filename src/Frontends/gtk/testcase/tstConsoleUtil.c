/* tstConsoleUtil.c - unit tests for the console window's arithmetic: fitting the screen into the window and back, hostile rectangles, key bookkeeping, the Input menu's key combinations and the host key table. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "../console-util.h"

static void test_fit_scale_keeps_aspect(void **state)
{
    struct console_fit f;
    /* 640x480 into 1600x900: height limits, 1.875, centred horizontally. */
    console_fit_compute(640, 480, 1600, 900, true, &f);
    assert_true(f.scale > 1.8749 && f.scale < 1.8751);
    assert_true(f.y > -0.001 && f.y < 0.001);
    assert_true(f.x > 199.99 && f.x < 200.01);
    /* Smaller than the screen: scaled down, width limits. */
    console_fit_compute(1024, 768, 512, 768, true, &f);
    assert_true(f.scale > 0.4999 && f.scale < 0.5001);
    assert_true(f.x > -0.001 && f.x < 0.001);
    assert_true(f.y > 191.99 && f.y < 192.01);
}

static void test_fit_one_to_one(void **state)
{
    struct console_fit f;
    console_fit_compute(720, 400, 1000, 500, false, &f);
    assert_true(f.scale == 1.0);
    assert_true(f.x == 140.0 && f.y == 50.0);
    /* Larger than the area: top left, the scroller shows the rest. */
    console_fit_compute(1920, 1080, 800, 600, false, &f);
    assert_true(f.scale == 1.0 && f.x == 0.0 && f.y == 0.0);
}

static void test_fit_degenerate(void **state)
{
    struct console_fit f = { 7, 7, 7 };
    console_fit_compute(0, 0, 800, 600, true, &f);
    assert_true(f.scale == 1.0 && f.x == 0.0 && f.y == 0.0);
    console_fit_compute(640, 480, 0, -5, true, &f);
    assert_true(f.scale == 1.0 && f.x == 0.0 && f.y == 0.0);
    unsigned gx = 9, gy = 9;
    assert_false(console_fit_to_guest(&f, 0, 0, 10, 10, &gx, &gy));
    assert_int_equal(gx, 0);
    assert_int_equal(gy, 0);
}

static void test_fit_to_guest(void **state)
{
    struct console_fit f;
    console_fit_compute(640, 480, 1280, 1060, true, &f); /* scale 2, y offset 50 */
    unsigned gx, gy;
    assert_true(console_fit_to_guest(&f, 640, 480, 0, 50, &gx, &gy));
    assert_int_equal(gx, 0);
    assert_int_equal(gy, 0);
    assert_true(console_fit_to_guest(&f, 640, 480, 1279.9, 1009.9, &gx, &gy));
    assert_int_equal(gx, 639);
    assert_int_equal(gy, 479);
    assert_true(console_fit_to_guest(&f, 640, 480, 641, 291, &gx, &gy));
    assert_int_equal(gx, 320);
    assert_int_equal(gy, 120);
    /* In the black band above the screen: clamped, and said to be outside. */
    assert_false(console_fit_to_guest(&f, 640, 480, 100, 10, &gx, &gy));
    assert_int_equal(gx, 50);
    assert_int_equal(gy, 0);
    assert_false(console_fit_to_guest(&f, 640, 480, 5000, 5000, &gx, &gy));
    assert_int_equal(gx, 639);
    assert_int_equal(gy, 479);
    assert_false(console_fit_to_guest(&f, 640, 480, -1e9, 1e300, &gx, &gy));
    assert_int_equal(gx, 0);
    assert_int_equal(gy, 479);
}

static void test_rect_clip_hostile(void **state)
{
    struct console_rect r = { 10, 20, 100, 100 };
    assert_true(console_rect_clip(&r, 640, 480));
    assert_int_equal(r.w, 100);
    r = (struct console_rect){ 600, 470, 100, 100 };
    assert_true(console_rect_clip(&r, 640, 480));
    assert_int_equal(r.w, 40);
    assert_int_equal(r.h, 10);
    /* x + w wraps around 2^32: must clip, not wrap. */
    r = (struct console_rect){ 5, 5, UINT32_MAX, UINT32_MAX - 2 };
    assert_true(console_rect_clip(&r, 640, 480));
    assert_int_equal(r.x, 5);
    assert_int_equal(r.w, 635);
    assert_int_equal(r.h, 475);
    r = (struct console_rect){ UINT32_MAX, 0, 10, 10 };
    assert_false(console_rect_clip(&r, 640, 480));
    assert_int_equal(r.w, 0);
    r = (struct console_rect){ 0, 480, 10, 10 };
    assert_false(console_rect_clip(&r, 640, 480));
    r = (struct console_rect){ 0, 0, 0, 10 };
    assert_false(console_rect_clip(&r, 640, 480));
    r = (struct console_rect){ 0, 0, 10, 10 };
    assert_false(console_rect_clip(&r, 0, 0));
}

static void test_rect_union(void **state)
{
    struct console_rect acc = { 0 }, a = { 10, 10, 5, 5 }, b = { 100, 2, 1, 50 }, empty = { 3, 3, 0, 9 };
    console_rect_union(&acc, &empty);
    assert_int_equal(acc.w, 0);
    console_rect_union(&acc, &a);
    assert_memory_equal(&acc, &a, sizeof(a));
    console_rect_union(&acc, &b);
    assert_int_equal(acc.x, 10);
    assert_int_equal(acc.y, 2);
    assert_int_equal(acc.w, 91);
    assert_int_equal(acc.h, 50);
    console_rect_union(&acc, &empty);
    assert_int_equal(acc.w, 91);
    /* Far-out values do not wrap. */
    struct console_rect far = { UINT32_MAX - 1, UINT32_MAX - 1, UINT32_MAX, UINT32_MAX };
    console_rect_union(&acc, &far);
    assert_int_equal(acc.x, 10);
    assert_int_equal(acc.w, UINT32_MAX);
}

static void test_keyset(void **state)
{
    struct console_keyset set;
    memset(&set, 0, sizeof(set));
    assert_int_equal(console_keyset_slot(0x1e), 0x1e);
    assert_int_equal(console_keyset_slot(0xe01d), 0x11d);
    assert_int_equal(console_keyset_slot(0), -1);
    assert_int_equal(console_keyset_slot(0x80), -1);
    assert_int_equal(console_keyset_slot(0xe11d45), -1); /* Pause */
    assert_int_equal(console_keyset_slot(0xe000), -1);
    assert_int_equal(console_keyset_slot(0xffffffffu), -1);

    assert_true(console_keyset_note(&set, 0x1e, true));
    assert_false(console_keyset_note(&set, 0x1e, true)); /* host auto-repeat */
    assert_true(console_keyset_note(&set, 0xe04b, true));
    assert_true(console_keyset_note(&set, 0x2a, true));
    assert_true(console_keyset_note(&set, 0x2a, false));
    assert_true(console_keyset_note(&set, 0xe11d45, true)); /* untracked keys always pass */
    assert_true(console_keyset_note(&set, 0xe11d45, true));

    uint32_t codes[CONSOLE_KEYSET_SIZE];
    size_t n = console_keyset_take(&set, codes, CONSOLE_KEYSET_SIZE);
    assert_int_equal(n, 2);
    assert_int_equal(codes[0], 0x1e);
    assert_int_equal(codes[1], 0xe04b);
    assert_int_equal(console_keyset_take(&set, codes, CONSOLE_KEYSET_SIZE), 0);

    /* A short buffer takes what fits, and the set is empty afterwards either way. */
    for (uint32_t k = 1; k <= 0x7f; k++)
        console_keyset_note(&set, k, true);
    assert_int_equal(console_keyset_take(&set, codes, 3), 3);
    assert_int_equal(codes[2], 3);
    assert_int_equal(console_keyset_take(&set, codes, CONSOLE_KEYSET_SIZE), 0);
}

static void test_combos(void **state)
{
    uint32_t codes[8];
    bool down[8];
    assert_int_equal(console_combo_keys(CONSOLE_COMBO_CTRL_ALT_DEL, 0, codes, down), 6);
    const uint32_t cad[6] = { 0x1d, 0x38, 0xe053, 0xe053, 0x38, 0x1d };
    const bool cad_down[6] = { true, true, true, false, false, false };
    for (int i = 0; i < 6; i++) {
        assert_int_equal(codes[i], cad[i]);
        assert_int_equal(down[i], cad_down[i]);
    }
    assert_int_equal(console_combo_keys(CONSOLE_COMBO_CTRL_ALT_BACKSPACE, 0, codes, down), 6);
    assert_int_equal(codes[2], 0x0e);
    assert_int_equal(console_combo_keys(CONSOLE_COMBO_CTRL_ALT_FN, 1, codes, down), 6);
    assert_int_equal(codes[2], 0x3b);
    assert_int_equal(console_combo_keys(CONSOLE_COMBO_CTRL_ALT_FN, 10, codes, down), 6);
    assert_int_equal(codes[2], 0x44);
    assert_int_equal(console_combo_keys(CONSOLE_COMBO_CTRL_ALT_FN, 11, codes, down), 6);
    assert_int_equal(codes[2], 0x57);
    assert_int_equal(console_combo_keys(CONSOLE_COMBO_CTRL_ALT_FN, 12, codes, down), 6);
    assert_int_equal(codes[2], 0x58);
    assert_int_equal(console_combo_keys(CONSOLE_COMBO_CTRL_ALT_FN, 0, codes, down), 0);
    assert_int_equal(console_combo_keys(CONSOLE_COMBO_CTRL_ALT_FN, 13, codes, down), 0);
    assert_int_equal(console_combo_keys((enum console_combo)99, 1, codes, down), 0);
}

/* Each id the manager saves gives its own key; nothing saved or a value we do not know gives Right Ctrl. */
static void test_host_keys(void **state)
{
    static const struct {
        const char *id, *name;
        unsigned evdev;
    } want[] = {
        { "RightCtrl", "Right Ctrl", 97 }, { "LeftCtrl", "Left Ctrl", 29 }, { "RightAlt", "Right Alt", 100 },
        { "LeftAlt", "Left Alt", 56 },     { "LeftWin", "Left Win", 125 },  { "RightWin", "Right Win", 126 },
    };
    assert_int_equal(console_host_key_count, sizeof(want) / sizeof(want[0]));
    assert_string_equal(console_host_keys[0].id, "RightCtrl");
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        bool unknown = true;
        const struct console_host_key *k = console_host_key_lookup(want[i].id, &unknown);
        assert_non_null(k);
        assert_false(unknown);
        assert_string_equal(k->id, want[i].id);
        assert_string_equal(k->name, want[i].name);
        assert_int_equal(k->evdev, want[i].evdev);
    }
    bool unknown = true;
    assert_ptr_equal(console_host_key_lookup(NULL, &unknown), &console_host_keys[0]);
    assert_false(unknown);
    assert_ptr_equal(console_host_key_lookup("", &unknown), &console_host_keys[0]);
    assert_false(unknown);
    /* Ids are matched exactly: another spelling is a value we do not know. */
    static const char *const bad[] = { "rightalt", "Right Alt", "RightAlt ", "Menu", "97" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        unknown = false;
        assert_ptr_equal(console_host_key_lookup(bad[i], &unknown), &console_host_keys[0]);
        assert_true(unknown);
    }
    assert_ptr_equal(console_host_key_lookup("LeftWin", NULL), &console_host_keys[4]);
    assert_ptr_equal(console_host_key_lookup("bogus", NULL), &console_host_keys[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fit_scale_keeps_aspect),
        cmocka_unit_test(test_fit_one_to_one),
        cmocka_unit_test(test_fit_degenerate),
        cmocka_unit_test(test_fit_to_guest),
        cmocka_unit_test(test_rect_clip_hostile),
        cmocka_unit_test(test_rect_union),
        cmocka_unit_test(test_keyset),
        cmocka_unit_test(test_combos),
        cmocka_unit_test(test_host_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
