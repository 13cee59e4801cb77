/* tstKeymap.c - key code tables: evdev codes and X keysyms of every layout to PC keycodes, Shift/AltGr flags, unknown codes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <string.h>

#include "vireo/input.h"
#include "../Input/keymap-internal.h"

static uint32_t key(const char *layout, uint32_t keysym, bool *shift, bool *altgr)
{
    *shift = *altgr = true; /* the lookup must clear them */
    return inp_keysym_to_keycode(layout, keysym, shift, altgr);
}

static void test_layout_tables_well_formed(void **state)
{
    (void)state;
    assert_true(g_keymap_layout_count >= 14);
    static const char *const wanted[] = { "us", "gb", "de", "fr", "es", "it", "ch", "se", "no", "dk", "fi", "pt",
                                          "be", "nl" };
    for (size_t w = 0; w < sizeof(wanted) / sizeof(wanted[0]); w++) {
        bool found = false;
        for (unsigned i = 0; i < g_keymap_layout_count; i++)
            found |= !strcmp(g_keymap_layouts[i].name, wanted[w]);
        assert_true(found);
    }
    for (unsigned i = 0; i < g_keymap_layout_count; i++)
        for (unsigned lv = 0; lv < 3; lv++)
            assert_int_equal(keymap_layout_check(i, lv), KEYMAP_KEYS);
    assert_int_equal(keymap_layout_check(g_keymap_layout_count, 0), -1);
    assert_int_equal(keymap_layout_check(0, 3), -1);
}

static void test_us_letters_digits(void **state)
{
    (void)state;
    static const uint8_t letters[26] = { 0x1e, 0x30, 0x2e, 0x20, 0x12, 0x21, 0x22, 0x23, 0x17, 0x24, 0x25, 0x26, 0x32,
                                         0x31, 0x18, 0x19, 0x10, 0x13, 0x1f, 0x14, 0x16, 0x2f, 0x11, 0x2d, 0x15, 0x2c };
    bool shift, altgr;
    for (int i = 0; i < 26; i++) {
        assert_int_equal(key("us", (uint32_t)('a' + i), &shift, &altgr), letters[i]);
        assert_false(shift);
        assert_false(altgr);
        assert_int_equal(key("us", (uint32_t)('A' + i), &shift, &altgr), letters[i]);
        assert_true(shift);
        assert_false(altgr);
    }
    for (int d = 1; d <= 9; d++) {
        assert_int_equal(key("us", (uint32_t)('0' + d), &shift, &altgr), 0x01 + d);
        assert_false(shift);
    }
    assert_int_equal(key("us", '0', &shift, &altgr), 0x0b);
    assert_int_equal(key("us", '!', &shift, &altgr), 0x02);
    assert_true(shift);
    assert_int_equal(key("us", '<', &shift, &altgr), 0x33); /* Shift+comma, not the ISO key */
    assert_true(shift);
    assert_int_equal(key("us", ' ', &shift, &altgr), 0x39);
    assert_false(shift);
    /* NULL flags are allowed. */
    assert_int_equal(inp_keysym_to_keycode("us", 'q', NULL, NULL), 0x10);
}

static void test_layout_differences(void **state)
{
    (void)state;
    bool shift, altgr;
    /* German and Swiss: Z and Y swap places. */
    assert_int_equal(key("de", 'z', &shift, &altgr), 0x15);
    assert_int_equal(key("de", 'y', &shift, &altgr), 0x2c);
    assert_int_equal(key("ch", 'z', &shift, &altgr), 0x15);
    assert_int_equal(key("us", 'z', &shift, &altgr), 0x2c);
    /* French and Belgian AZERTY: A/Q and Z/W swap, digits need Shift, M sits beside L. */
    assert_int_equal(key("fr", 'a', &shift, &altgr), 0x10);
    assert_int_equal(key("fr", 'q', &shift, &altgr), 0x1e);
    assert_int_equal(key("fr", 'w', &shift, &altgr), 0x2c);
    assert_int_equal(key("fr", 'm', &shift, &altgr), 0x27);
    assert_int_equal(key("be", 'a', &shift, &altgr), 0x10);
    assert_int_equal(key("fr", '1', &shift, &altgr), 0x02);
    assert_true(shift);
    assert_false(altgr);
    /* AltGr symbols. */
    assert_int_equal(key("de", '@', &shift, &altgr), 0x10);
    assert_false(shift);
    assert_true(altgr);
    assert_int_equal(key("de", '\\', &shift, &altgr), 0x0c);
    assert_true(altgr);
    assert_int_equal(key("fr", '@', &shift, &altgr), 0x0b);
    assert_true(altgr);
    assert_int_equal(key("ch", '@', &shift, &altgr), 0x03);
    assert_true(altgr);
    assert_int_equal(key("se", '@', &shift, &altgr), 0x03);
    assert_true(altgr);
    assert_int_equal(key("gb", '@', &shift, &altgr), 0x28);
    assert_true(shift);
    assert_false(altgr);
    assert_int_equal(key("gb", '"', &shift, &altgr), 0x03);
    assert_true(shift);
    assert_int_equal(key("de", 0x20ac, &shift, &altgr), 0x12); /* EuroSign on AltGr+E */
    assert_true(altgr);
    assert_int_equal(key("es", 0xf1, &shift, &altgr), 0x27); /* ntilde */
    assert_false(shift);
    assert_int_equal(key("es", 0xd1, &shift, &altgr), 0x27); /* Ntilde */
    assert_true(shift);
    assert_int_equal(key("no", 0xf8, &shift, &altgr), 0x27); /* oslash */
    assert_int_equal(key("dk", 0xf8, &shift, &altgr), 0x28);
    assert_int_equal(key("se", 0xf6, &shift, &altgr), 0x27); /* odiaeresis */
    assert_int_equal(key("fi", 0xe4, &shift, &altgr), 0x28);
    assert_int_equal(key("it", 0xe8, &shift, &altgr), 0x1a); /* egrave */
    assert_int_equal(key("pt", 0xe7, &shift, &altgr), 0x27); /* ccedilla */
    assert_int_equal(key("nl", '+', &shift, &altgr), 0x27);
    assert_int_equal(key("nl", '<', &shift, &altgr), 0x2b);
    /* Unicode keysyms of Latin-1 characters and of the euro sign fold to the legacy ones. */
    assert_int_equal(key("de", 0x10000e4, &shift, &altgr), 0x28);
    assert_int_equal(key("de", 0x10020ac, &shift, &altgr), 0x12);
}

static void test_dead_keys(void **state)
{
    (void)state;
    bool shift, altgr;
    assert_int_equal(key("de", 0xfe51, &shift, &altgr), 0x0d); /* dead_acute */
    assert_false(shift);
    assert_int_equal(key("de", 0xfe50, &shift, &altgr), 0x0d); /* dead_grave */
    assert_true(shift);
    assert_int_equal(key("de", 0xfe52, &shift, &altgr), 0x29); /* dead_circumflex */
    assert_int_equal(key("fr", 0xfe52, &shift, &altgr), 0x1a);
    assert_int_equal(key("fr", 0xfe57, &shift, &altgr), 0x1a); /* dead_diaeresis */
    assert_true(shift);
    assert_int_equal(key("es", 0xfe51, &shift, &altgr), 0x28);
    assert_int_equal(key("pt", 0xfe53, &shift, &altgr), 0x2b); /* dead_tilde */
    /* The US layout has no dead keys. */
    assert_int_equal(key("us", 0xfe51, &shift, &altgr), 0);
}

static void test_fixed_and_unknown(void **state)
{
    (void)state;
    bool shift, altgr;
    assert_int_equal(key("fr", 0xff0d, &shift, &altgr), 0x1c);      /* Return */
    assert_int_equal(key("de", 0xff51, &shift, &altgr), 0xe04b);    /* Left */
    assert_int_equal(key("us", 0xff13, &shift, &altgr), 0xe11d45);  /* Pause */
    assert_int_equal(key("us", 0xfe03, &shift, &altgr), 0xe038);    /* ISO_Level3_Shift */
    assert_int_equal(key("us", 0xffc9, &shift, &altgr), 0x58);      /* F12 */
    assert_int_equal(key("us", 0xfe20, &shift, &altgr), 0x0f);      /* ISO_Left_Tab */
    assert_true(shift);
    assert_false(altgr);
    assert_int_equal(key("us", 0, &shift, &altgr), 0);
    assert_false(shift);
    assert_false(altgr);
    assert_int_equal(key("us", 0x4e2d, &shift, &altgr), 0);         /* a CJK character */
    assert_int_equal(key("us", 0x100263a, &shift, &altgr), 0);
    assert_int_equal(key("us", 0xffffffff, &shift, &altgr), 0);
    assert_int_equal(key("de", 0xe4, &shift, &altgr), 0x28);
    assert_int_equal(key("us", 0xe4, &shift, &altgr), 0);
    /* An unknown layout types as US; NULL too. */
    assert_int_equal(key("xx", 'z', &shift, &altgr), 0x2c);
    assert_int_equal(key(NULL, 'y', &shift, &altgr), 0x15);
}

static void test_evdev(void **state)
{
    (void)state;
    assert_int_equal(inp_evdev_to_keycode(1), 0x01);     /* ESC */
    assert_int_equal(inp_evdev_to_keycode(30), 0x1e);    /* A */
    assert_int_equal(inp_evdev_to_keycode(44), 0x2c);    /* Z */
    assert_int_equal(inp_evdev_to_keycode(83), 0x53);    /* KPDOT */
    assert_int_equal(inp_evdev_to_keycode(86), 0x56);    /* 102ND */
    assert_int_equal(inp_evdev_to_keycode(96), 0xe01c);  /* KPENTER */
    assert_int_equal(inp_evdev_to_keycode(97), 0xe01d);  /* RIGHTCTRL */
    assert_int_equal(inp_evdev_to_keycode(100), 0xe038); /* RIGHTALT */
    assert_int_equal(inp_evdev_to_keycode(103), 0xe048); /* UP */
    assert_int_equal(inp_evdev_to_keycode(111), 0xe053); /* DELETE */
    assert_int_equal(inp_evdev_to_keycode(119), 0xe11d45); /* PAUSE */
    assert_int_equal(inp_evdev_to_keycode(125), 0xe05b); /* LEFTMETA */
    assert_int_equal(inp_evdev_to_keycode(0), 0);
    assert_int_equal(inp_evdev_to_keycode(84), 0);
    assert_int_equal(inp_evdev_to_keycode(101), 0);
    assert_int_equal(inp_evdev_to_keycode(0x2ff), 0);
    assert_int_equal(inp_evdev_to_keycode(~0u), 0);
    /* Every evdev code maps to a distinct key (no two codes type the same key by mistake). */
    uint32_t seen[512] = { 0 };
    for (unsigned code = 0; code < 512; code++) {
        uint32_t k = inp_evdev_to_keycode(code);
        seen[code] = k;
        for (unsigned j = 0; k && j < code; j++)
            assert_false(seen[j] == k);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout_tables_well_formed),
        cmocka_unit_test(test_us_letters_digits),
        cmocka_unit_test(test_layout_differences),
        cmocka_unit_test(test_dead_keys),
        cmocka_unit_test(test_fixed_and_unknown),
        cmocka_unit_test(test_evdev),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
