/* tstI8042.c - i8042 tests through port I/O: controller commands, keyboard and mouse protocols, translation, typematic,
 * IRQ 1/12, A20 and reset, the input core, garbage, buffer limits and saved state. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "vireo/input.h"
#include "vireo/pci.h"

#define DATA 0x60
#define CMD  0x64
#define STS_OBF  0x01
#define STS_SYS  0x04
#define STS_A2   0x08
#define STS_AUXB 0x20
#define MS (1000000ull)

struct fixture {
    struct vm *vm;
    struct pdm_dev *kbc;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->vm = harness_vm_create(0);
    f->kbc = harness_dev_create(f->vm, &g_dev_i8042, "kbc", NULL);
    harness_gsi_clear(f->vm);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    harness_vm_destroy(f->vm);
    free(f);
    return 0;
}

/* Reads every byte the controller has (at most cap), returns how many. */
static size_t drain(struct vm *vm, uint8_t *out, size_t cap, bool *aux)
{
    size_t n = 0;
    while ((harness_inb(vm, CMD) & STS_OBF) && n < cap) {
        if (aux)
            aux[n] = (harness_inb(vm, CMD) & STS_AUXB) != 0;
        out[n++] = harness_inb(vm, DATA);
    }
    return n;
}

static void expect_bytes(struct vm *vm, const uint8_t *want, size_t len)
{
    uint8_t got[256];
    size_t n = drain(vm, got, sizeof(got), NULL);
    assert_int_equal(n, len);
    assert_memory_equal(got, want, len);
}
#define EXPECT(vm, ...) do { const uint8_t w_[] = { __VA_ARGS__ }; expect_bytes(vm, w_, sizeof(w_)); } while (0)

static void expect_empty(struct vm *vm)
{
    assert_int_equal(harness_inb(vm, CMD) & STS_OBF, 0);
}

static void set_ccb(struct vm *vm, uint8_t v)
{
    harness_outb(vm, CMD, 0x60);
    harness_outb(vm, DATA, v);
}

static uint8_t get_ccb(struct vm *vm)
{
    harness_outb(vm, CMD, 0x20);
    assert_true(harness_inb(vm, CMD) & STS_OBF);
    return harness_inb(vm, DATA);
}

static void mouse_send(struct vm *vm, uint8_t b)
{
    harness_outb(vm, CMD, 0xd4);
    harness_outb(vm, DATA, b);
}

/* ---- Controller ------------------------------------------------------------------------ */

static void test_controller_commands(void **state)
{
    struct fixture *f = *state;
    struct vm *vm = f->vm;
    expect_empty(vm);
    assert_int_equal(get_ccb(vm), 0x43); /* interrupts and translation on after reset */
    harness_outb(vm, CMD, 0xaa);
    assert_true(harness_inb(vm, CMD) & STS_A2);
    EXPECT(vm, 0x55);
    harness_outb(vm, CMD, 0xab);
    EXPECT(vm, 0x00);
    harness_outb(vm, CMD, 0xa9);
    EXPECT(vm, 0x00);
    /* The command byte round-trips; SYS in the status register follows its bit 2. */
    assert_false(harness_inb(vm, CMD) & STS_SYS);
    set_ccb(vm, 0x47);
    assert_false(harness_inb(vm, CMD) & STS_A2);
    assert_int_equal(get_ccb(vm), 0x47);
    assert_true(harness_inb(vm, CMD) & STS_SYS);
    /* A7/A8 and AD/AE flip the clock-disable bits. */
    harness_outb(vm, CMD, 0xa7);
    assert_int_equal(get_ccb(vm), 0x67);
    harness_outb(vm, CMD, 0xa8);
    harness_outb(vm, CMD, 0xad);
    assert_int_equal(get_ccb(vm), 0x57);
    harness_outb(vm, CMD, 0xae);
    assert_int_equal(get_ccb(vm), 0x47);
    /* Internal RAM bytes 1-31. */
    harness_outb(vm, CMD, 0x65);
    harness_outb(vm, DATA, 0x5a);
    harness_outb(vm, CMD, 0x25);
    EXPECT(vm, 0x5a);
    /* D2/D3 put bytes into the output buffer as if the keyboard or the mouse had sent them. */
    set_ccb(vm, 0x03);
    harness_gsi_clear(vm);
    harness_outb(vm, CMD, 0xd2);
    harness_outb(vm, DATA, 0x9c);
    assert_true(harness_gsi_level(vm, 1));
    assert_false(harness_inb(vm, CMD) & STS_AUXB);
    EXPECT(vm, 0x9c);
    assert_false(harness_gsi_level(vm, 1));
    harness_outb(vm, CMD, 0xd3);
    harness_outb(vm, DATA, 0x5a);
    assert_true(harness_gsi_level(vm, 12));
    assert_false(harness_gsi_level(vm, 1));
    assert_true(harness_inb(vm, CMD) & STS_AUXB);
    EXPECT(vm, 0x5a);
    assert_false(harness_gsi_level(vm, 12));
    /* Output port read: reset line high, A20 on. */
    harness_outb(vm, CMD, 0xd0);
    uint8_t out = harness_inb(vm, DATA);
    assert_int_equal(out & 0x03, 0x03);
    /* Unknown controller commands change nothing. */
    harness_outb(vm, CMD, 0xc8);
    harness_outb(vm, CMD, 0x00);
    expect_empty(vm);
    assert_int_equal(get_ccb(vm), 0x03);
}

/* ---- Keyboard --------------------------------------------------------------------------- */

static void test_keyboard_commands(void **state)
{
    struct fixture *f = *state;
    struct vm *vm = f->vm;
    set_ccb(vm, 0x00); /* no translation: the keyboard's own bytes */
    harness_outb(vm, DATA, 0xff);
    EXPECT(vm, 0xfa, 0xaa);
    harness_outb(vm, DATA, 0xf2);
    EXPECT(vm, 0xfa, 0xab, 0x83);
    harness_outb(vm, DATA, 0xee);
    EXPECT(vm, 0xee);
    /* LEDs reach the input core. */
    harness_outb(vm, DATA, 0xed);
    EXPECT(vm, 0xfa);
    harness_outb(vm, DATA, 0x05);
    EXPECT(vm, 0xfa);
    assert_int_equal(inp_kbd_leds(vm), 5);
    /* An LED argument that is a command runs that command instead. */
    harness_outb(vm, DATA, 0xed);
    harness_outb(vm, DATA, 0xf2);
    EXPECT(vm, 0xfa, 0xfa, 0xab, 0x83);
    assert_int_equal(inp_kbd_leds(vm), 5);
    /* Scancode sets: 0 reads back, 1-3 select, others are refused. */
    harness_outb(vm, DATA, 0xf0);
    harness_outb(vm, DATA, 0x00);
    EXPECT(vm, 0xfa, 0xfa, 0x02);
    harness_outb(vm, DATA, 0xf0);
    harness_outb(vm, DATA, 0x03);
    harness_outb(vm, DATA, 0xf0);
    harness_outb(vm, DATA, 0x00);
    EXPECT(vm, 0xfa, 0xfa, 0xfa, 0xfa, 0x03);
    harness_outb(vm, DATA, 0xf0);
    harness_outb(vm, DATA, 0x09);
    EXPECT(vm, 0xfa, 0xfe);
    /* Unknown commands ask for a resend; FE repeats the last byte. */
    harness_outb(vm, DATA, 0x42);
    EXPECT(vm, 0xfe);
    harness_outb(vm, DATA, 0xee);
    harness_outb(vm, DATA, 0xfe);
    EXPECT(vm, 0xee, 0xee);
    /* With translation the identify bytes come out as AB 41, as Linux expects. */
    set_ccb(vm, 0x40);
    harness_outb(vm, DATA, 0xf2);
    EXPECT(vm, 0xfa, 0xab, 0x41);
    /* Reset goes back to set 2 and clears the LEDs. */
    harness_outb(vm, DATA, 0xff);
    EXPECT(vm, 0xfa, 0xaa);
    assert_int_equal(inp_kbd_leds(vm), 0);
}

static void test_key_bytes(void **state)
{
    struct fixture *f = *state;
    struct vm *vm = f->vm;
    /* Set 2 untranslated. */
    set_ccb(vm, 0x00);
    assert_int_equal(inp_key(vm, 0x1e, true), 0);
    assert_int_equal(inp_key(vm, 0x1e, false), 0);
    EXPECT(vm, 0x1c, 0xf0, 0x1c);
    inp_key(vm, 0xe04d, true);
    inp_key(vm, 0xe04d, false);
    EXPECT(vm, 0xe0, 0x74, 0xe0, 0xf0, 0x74);
    inp_key(vm, 0xe11d45, true);
    inp_key(vm, 0xe11d45, false);
    EXPECT(vm, 0xe1, 0x14, 0x77, 0xe1, 0xf0, 0x14, 0xf0, 0x77);
    inp_key(vm, 0xe037, true);
    inp_key(vm, 0xe037, false);
    EXPECT(vm, 0xe0, 0x12, 0xe0, 0x7c, 0xe0, 0xf0, 0x7c, 0xe0, 0xf0, 0x12);
    /* Set 2 translated to set 1 by the controller. */
    set_ccb(vm, 0x40);
    inp_key(vm, 0x1e, true);
    inp_key(vm, 0x1e, false);
    EXPECT(vm, 0x1e, 0x9e);
    inp_key(vm, 0xe04d, true);
    inp_key(vm, 0xe04d, false);
    EXPECT(vm, 0xe0, 0x4d, 0xe0, 0xcd);
    inp_key(vm, 0x41, true); /* F7: set 2 sends 83, which translates to 41 */
    inp_key(vm, 0x41, false);
    EXPECT(vm, 0x41, 0xc1);
    inp_key(vm, 0xe11d45, true);
    EXPECT(vm, 0xe1, 0x1d, 0x45, 0xe1, 0x9d, 0xc5);
    inp_key(vm, 0xe037, true);
    inp_key(vm, 0xe037, false);
    EXPECT(vm, 0xe0, 0x2a, 0xe0, 0x37, 0xe0, 0xb7, 0xe0, 0xaa);
    /* Raw set 1 bytes come out unchanged through set 2 and translation. */
    const uint8_t raw[] = { 0x2d, 0xad, 0xe0, 0x48, 0xe0, 0xc8, 0x1c, 0x9c };
    assert_int_equal(inp_kbd_put_scancode_bytes(vm, raw, sizeof(raw)), 0);
    expect_bytes(vm, raw, sizeof(raw));
    /* Set 1 selected, no translation: the keyboard sends set 1 itself. */
    set_ccb(vm, 0x00);
    harness_outb(vm, DATA, 0xf0);
    harness_outb(vm, DATA, 0x01);
    EXPECT(vm, 0xfa, 0xfa);
    inp_key(vm, 0x1e, true);
    inp_key(vm, 0x1e, false);
    inp_key(vm, 0xe01d, true);
    EXPECT(vm, 0x1e, 0x9e, 0xe0, 0x1d);
    assert_int_equal(inp_kbd_put_scancode_bytes(vm, raw, 2), 0);
    EXPECT(vm, 0x2d, 0xad);
    /* Set 3: one code per key, F0 for the break, no prefixes. */
    harness_outb(vm, DATA, 0xf0);
    harness_outb(vm, DATA, 0x03);
    EXPECT(vm, 0xfa, 0xfa);
    inp_key(vm, 0xe04b, true);
    inp_key(vm, 0xe04b, false);
    inp_key(vm, 0x1e, true);
    EXPECT(vm, 0x61, 0xf0, 0x61, 0x1c);
    /* Keys with no code, and keycode 0, send nothing. */
    inp_key(vm, 0xe0ff, true);
    assert_int_equal(inp_key(vm, 0, true), VERR_INVALID_PARAMETER);
    inp_key(vm, 0x12345678, true);
    expect_empty(vm);
    /* Scanning disabled: keys are lost, as on a keyboard that does not scan. */
    harness_outb(vm, DATA, 0xf5);
    EXPECT(vm, 0xfa);
    inp_key(vm, 0x1e, true);
    expect_empty(vm);
    harness_outb(vm, DATA, 0xf4);
    EXPECT(vm, 0xfa);
}

static void test_typematic(void **state)
{
    struct fixture *f = *state;
    struct vm *vm = f->vm;
    set_ccb(vm, 0x00);
    inp_key(vm, 0x1e, true);
    EXPECT(vm, 0x1c);
    /* Default: 500 ms delay, then every (8+3)*2*4.17 ms = 91.74 ms. */
    harness_step_ns(vm, 499 * MS);
    expect_empty(vm);
    harness_step_ns(vm, 2 * MS);
    EXPECT(vm, 0x1c);
    harness_step_ns(vm, 90 * MS);
    expect_empty(vm);
    harness_step_ns(vm, 1 * MS);
    EXPECT(vm, 0x1c);
    harness_step_ns(vm, 92 * MS * 3);
    EXPECT(vm, 0x1c, 0x1c, 0x1c);
    /* Another key takes over the repeat; releasing it stops it. */
    inp_key(vm, 0x30, true);
    harness_step_ns(vm, 501 * MS);
    EXPECT(vm, 0x32, 0x32);
    inp_key(vm, 0x30, false);
    harness_step_ns(vm, 2000 * MS);
    EXPECT(vm, 0xf0, 0x32);
    /* F3 0x00: 250 ms, 30 per second; the still-held first key does not repeat again after a release of another. */
    inp_key(vm, 0x1e, false);
    EXPECT(vm, 0xf0, 0x1c);
    harness_outb(vm, DATA, 0xf3);
    harness_outb(vm, DATA, 0x00);
    EXPECT(vm, 0xfa, 0xfa);
    inp_key(vm, 0x20, true);
    harness_step_ns(vm, 251 * MS);
    harness_step_ns(vm, 34 * MS);
    EXPECT(vm, 0x23, 0x23, 0x23);
    /* A front end's own repeat (the key down again) restarts the delay instead of adding repeats. */
    inp_key(vm, 0x20, true);
    harness_step_ns(vm, 200 * MS);
    EXPECT(vm, 0x23);
    inp_key(vm, 0x20, false);
    EXPECT(vm, 0xf0, 0x23);
    /* Raw bytes never repeat. */
    const uint8_t raw[] = { 0x2d };
    inp_kbd_put_scancode_bytes(vm, raw, 1);
    harness_step_ns(vm, 3000 * MS);
    EXPECT(vm, 0x22);
    /* Pause does not repeat either. */
    set_ccb(vm, 0x40);
    inp_key(vm, 0xe11d45, true);
    harness_step_ns(vm, 3000 * MS);
    EXPECT(vm, 0xe1, 0x1d, 0x45, 0xe1, 0x9d, 0xc5);
}

static void test_type_string_and_buffer(void **state)
{
    struct fixture *f = *state;
    struct vm *vm = f->vm;
    set_ccb(vm, 0x40);
    assert_int_equal(inp_type_string(vm, "aB\n"), 0);
    /* a; Shift B; Enter (set 2 through translation). */
    EXPECT(vm, 0x1e, 0x9e, 0x2a, 0x30, 0xb0, 0xaa, 0x1c, 0x9c);
    /* Characters with no US key are refused before anything is typed. */
    assert_int_equal(inp_type_string(vm, "ab\xc3\xa4"), VERR_INVALID_PARAMETER);
    assert_int_equal(inp_type_string(vm, "a\x01"), VERR_INVALID_PARAMETER);
    expect_empty(vm);
    assert_int_equal(inp_type_string(vm, ""), 0);
    /*
     * 600 characters at once: far more than the 16-byte buffer, so the keyboard holds them as events and
     * the guest gets every byte in order, never an overrun, while it reads one byte at a time.
     */
    char text[601];
    for (int i = 0; i < 600; i++)
        text[i] = (char)(i % 3 == 0 ? 'q' : i % 3 == 1 ? 'Q' : '1');
    text[600] = 0;
    assert_int_equal(inp_type_string(vm, text), 0);
    static uint8_t got[8192];
    size_t n = drain(vm, got, sizeof(got), NULL);
    assert_int_equal(n, 200 * 2 + 200 * 4 + 200 * 2);
    for (size_t i = 0, pos = 0; i < 200; i++) {
        const uint8_t q[] = { 0x10, 0x90 }, Q[] = { 0x2a, 0x10, 0x90, 0xaa }, one[] = { 0x02, 0x82 };
        assert_memory_equal(got + pos, q, 2);
        assert_memory_equal(got + pos + 2, Q, 4);
        assert_memory_equal(got + pos + 6, one, 2);
        pos += 8;
    }
    /* A keyboard whose port is disabled keeps its bytes until it is enabled again. */
    harness_outb(vm, CMD, 0xad);
    inp_key(vm, 0x1e, true);
    expect_empty(vm);
    harness_outb(vm, CMD, 0xae);
    EXPECT(vm, 0x1e);
    inp_key(vm, 0x1e, false);
    EXPECT(vm, 0x9e);
}

/* ---- Mouse ------------------------------------------------------------------------------ */

static void test_mouse(void **state)
{
    struct fixture *f = *state;
    struct vm *vm = f->vm;
    set_ccb(vm, 0x02);
    harness_gsi_clear(vm);
    mouse_send(vm, 0xff);
    assert_true(harness_gsi_level(vm, 12));
    assert_false(harness_gsi_level(vm, 1));
    uint8_t got[64];
    bool aux[64];
    size_t n = drain(vm, got, sizeof(got), aux);
    assert_int_equal(n, 3);
    assert_true(aux[0] && aux[1] && aux[2]);
    assert_int_equal(got[0], 0xfa);
    assert_int_equal(got[1], 0xaa);
    assert_int_equal(got[2], 0x00);
    assert_false(harness_gsi_level(vm, 12));
    mouse_send(vm, 0xf2);
    EXPECT(vm, 0xfa, 0x00);
    /* Status: stream mode, disabled, 1:1, resolution 2, 100 samples/s. */
    mouse_send(vm, 0xe9);
    EXPECT(vm, 0xfa, 0x00, 0x02, 100);
    /* A disabled mouse sends nothing. */
    assert_int_equal(inp_pointer_rel(vm, 5, 5, 0, 0), 0);
    expect_empty(vm);
    /* Standard 3-byte packets: Y is up in PS/2, down on screens. */
    mouse_send(vm, 0xf4);
    EXPECT(vm, 0xfa);
    inp_pointer_rel(vm, 10, 5, 0, INP_BUTTON_LEFT);
    EXPECT(vm, 0x29, 0x0a, 0xfb);
    inp_pointer_rel(vm, -3, -4, 0, INP_BUTTON_RIGHT | INP_BUTTON_MIDDLE);
    EXPECT(vm, 0x1e, 0xfd, 0x04);
    /* A wheel on a standard mouse is dropped. */
    inp_pointer_rel(vm, 0, 0, 2, 0);
    EXPECT(vm, 0x08, 0x00, 0x00);
    /* IntelliMouse knock: 200, 100, 80, then identify says 3 and packets carry the wheel. */
    static const uint8_t knock[] = { 200, 100, 80 };
    for (int i = 0; i < 3; i++) {
        mouse_send(vm, 0xf3);
        mouse_send(vm, knock[i]);
    }
    EXPECT(vm, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa);
    mouse_send(vm, 0xf2);
    EXPECT(vm, 0xfa, 0x03);
    inp_pointer_rel(vm, 1, -1, -2, 0);
    EXPECT(vm, 0x08, 0x01, 0x01, 0x0e);
    /* Large motion splits into packets within -256..255. */
    inp_pointer_rel(vm, 600, -300, 0, 0);
    EXPECT(vm, 0x08, 0xff, 0xff, 0x00, 0x08, 0xff, 0x2d, 0x00, 0x08, 0x5a, 0x00, 0x00);
    inp_pointer_rel(vm, -700, 0, 0, 0);
    EXPECT(vm, 0x18, 0x00, 0x00, 0x00, 0x18, 0x00, 0x00, 0x00, 0x18, 0x44, 0x00, 0x00);
    /* A bad sample rate and a bad resolution are refused and change nothing. */
    mouse_send(vm, 0xf3);
    mouse_send(vm, 33);
    mouse_send(vm, 0xe8);
    mouse_send(vm, 9);
    EXPECT(vm, 0xfa, 0xfe, 0xfa, 0xfe);
    mouse_send(vm, 0xe8);
    mouse_send(vm, 3);
    mouse_send(vm, 0xe7);
    mouse_send(vm, 0xe9);
    EXPECT(vm, 0xfa, 0xfa, 0xfa, 0xfa, 0x30, 0x03, 80);
    /* 2:1 scaling: 3 counts become 3, 4 become 6, 10 become 20. */
    inp_pointer_rel(vm, 4, -10, 0, 0);
    EXPECT(vm, 0x08, 0x06, 0x14, 0x00);
    mouse_send(vm, 0xe6);
    EXPECT(vm, 0xfa);
    /* Remote mode: motion accumulates; EB reads it clamped with the overflow bits. */
    mouse_send(vm, 0xf0);
    EXPECT(vm, 0xfa);
    inp_pointer_rel(vm, 200, 0, 0, 0);
    inp_pointer_rel(vm, 200, 10, 1, INP_BUTTON_LEFT);
    expect_empty(vm);
    mouse_send(vm, 0xeb);
    EXPECT(vm, 0xfa, 0x69, 0xff, 0xf6, 0x01);
    mouse_send(vm, 0xeb);
    EXPECT(vm, 0xfa, 0x09, 0x00, 0x00, 0x00);
    mouse_send(vm, 0xea);
    EXPECT(vm, 0xfa);
    /* Wrap mode echoes until EC. */
    mouse_send(vm, 0xee);
    mouse_send(vm, 0x12);
    mouse_send(vm, 0xf2);
    mouse_send(vm, 0xec);
    EXPECT(vm, 0xfa, 0x12, 0xf2, 0xfa);
    /* Unknown commands ask for a resend; a reset returns to the standard mouse. */
    mouse_send(vm, 0x01);
    EXPECT(vm, 0xfe);
    mouse_send(vm, 0xff);
    mouse_send(vm, 0xf2);
    EXPECT(vm, 0xfa, 0xaa, 0x00, 0xfa, 0x00);
    /* The mouse port disabled (A7): mouse bytes wait. */
    harness_outb(vm, CMD, 0xa7);
    mouse_send(vm, 0xf2);
    expect_empty(vm);
    harness_outb(vm, CMD, 0xa8);
    EXPECT(vm, 0xfa, 0x00);
}

static void test_mouse_buffer_and_abs(void **state)
{
    struct fixture *f = *state;
    struct vm *vm = f->vm;
    set_ccb(vm, 0x02);
    mouse_send(vm, 0xf4);
    EXPECT(vm, 0xfa);
    /* Many button changes without reads: each one arrives, in order, as the guest reads. */
    for (int i = 0; i < 40; i++)
        inp_pointer_rel(vm, 1, 0, 0, (i & 1) ? INP_BUTTON_LEFT : 0);
    uint8_t got[512];
    size_t n = drain(vm, got, sizeof(got), NULL);
    assert_int_equal(n, 40 * 3);
    for (int i = 0; i < 40; i++) {
        assert_int_equal(got[i * 3], 0x08 | ((i & 1) ? 1 : 0));
        assert_int_equal(got[i * 3 + 1], 1);
    }
    /* Relative-only: absolute positions become motion (first parked at the top left). */
    assert_false(inp_has_absolute(vm));
    assert_int_equal(inp_pointer_abs(vm, 100, 50, 640, 480, 0, 0), 0);
    n = drain(vm, got, sizeof(got), NULL);
    int sx = 0, sy = 0;
    for (size_t i = 0; i + 2 < n; i += 3) {
        sx += (got[i] & 0x10) ? (int)got[i + 1] - 256 : got[i + 1];
        sy += (got[i] & 0x20) ? (int)got[i + 2] - 256 : got[i + 2];
    }
    assert_int_equal(sx, -1280 + 100);
    assert_int_equal(sy, 960 - 50);
    assert_int_equal(inp_pointer_abs(vm, 110, 40, 640, 480, 0, 0), 0);
    EXPECT(vm, 0x08, 0x0a, 0x0a);
    assert_int_equal(inp_pointer_abs(vm, 1, 1, 0, 480, 0, 0), VERR_INVALID_PARAMETER);
}

/* ---- IRQs, A20, reset -------------------------------------------------------------------- */

static void test_irqs(void **state)
{
    struct fixture *f = *state;
    struct vm *vm = f->vm;
    set_ccb(vm, 0x40); /* interrupts off */
    harness_gsi_clear(vm);
    inp_key(vm, 0x1e, true);
    assert_false(harness_gsi_level(vm, 1));
    EXPECT(vm, 0x1e);
    set_ccb(vm, 0x41);
    inp_key(vm, 0x1e, false);
    inp_key(vm, 0x1f, true);
    assert_true(harness_gsi_level(vm, 1));
    assert_int_equal(harness_gsi_rises(vm, 1), 1);
    /* Each byte read brings the next one with a new edge. */
    assert_int_equal(harness_inb(vm, DATA), 0x9e);
    assert_true(harness_gsi_level(vm, 1));
    assert_int_equal(harness_gsi_rises(vm, 1), 2);
    assert_int_equal(harness_inb(vm, DATA), 0x1f);
    assert_false(harness_gsi_level(vm, 1));
    /* Turning the enable bit on with a byte waiting raises the line. */
    set_ccb(vm, 0x40);
    inp_key(vm, 0x1f, false);
    assert_false(harness_gsi_level(vm, 1));
    set_ccb(vm, 0x41);
    assert_true(harness_gsi_level(vm, 1));
    EXPECT(vm, 0x9f);
    assert_false(harness_gsi_level(vm, 1));
    assert_false(harness_gsi_level(vm, 12));
}

static void board_a20(void *opaque, bool level)
{
    i440fx_set_kbc_a20(opaque, level);
}

static void test_a20_and_reset(void **state)
{
    (void)state;
    struct vm *vm = harness_vm_create(0);
    struct pdm_dev *chip = harness_dev_create(vm, &g_dev_i440fx, "pci", NULL);
    struct pdm_dev *kbc = harness_dev_create(vm, &g_dev_i8042, "kbc", NULL);
    (void)chip;
    /* Wired as the board does: the CPU's A20 line is the 8042's output OR port 0x92 bit 1. */
    i8042_set_a20_output(kbc, board_a20, chip);
    assert_true(vm_a20_enabled(vm));
    harness_outb(vm, CMD, 0xd1);
    harness_outb(vm, DATA, 0xdd); /* A20 off, reset line high */
    assert_false(vm_a20_enabled(vm));
    harness_outb(vm, CMD, 0xd0);
    assert_int_equal(harness_inb(vm, DATA) & 0x03, 0x01);
    harness_outb(vm, 0x92, 0x02);
    assert_true(vm_a20_enabled(vm));
    harness_outb(vm, 0x92, 0x00);
    assert_false(vm_a20_enabled(vm));
    harness_outb(vm, CMD, 0xdf);
    assert_true(vm_a20_enabled(vm));
    harness_outb(vm, 0x92, 0x02);
    harness_outb(vm, CMD, 0xdd);
    assert_true(vm_a20_enabled(vm)); /* port 0x92 still holds it on */
    harness_outb(vm, 0x92, 0x00);
    assert_false(vm_a20_enabled(vm));
    /* Saved state keeps the output port, and with it the line. */
    assert_int_equal(harness_dev_save_reset_load(kbc), 0);
    assert_false(vm_a20_enabled(vm));
    /* FE pulses the reset line: the system resets (the controller too), A20 comes back on. */
    set_ccb(vm, 0x00);
    harness_outb(vm, CMD, 0xfe);
    assert_int_equal(get_ccb(vm), 0x43);
    assert_true(vm_a20_enabled(vm));
    /* Writing the output port with bit 0 low resets as well; FF pulses nothing. */
    set_ccb(vm, 0x00);
    harness_outb(vm, CMD, 0xff);
    assert_int_equal(get_ccb(vm), 0x00);
    harness_outb(vm, CMD, 0xd1);
    harness_outb(vm, DATA, 0x00);
    assert_int_equal(get_ccb(vm), 0x43);
    assert_true(vm_a20_enabled(vm));
    harness_vm_destroy(vm);
}

static void test_no_board_wiring(void **state)
{
    struct fixture *f = *state;
    struct vm *vm = f->vm;
    /* Without the chipset the controller drives the VM's A20 gate itself. */
    assert_true(vm_a20_enabled(vm));
    harness_outb(vm, CMD, 0xdd);
    assert_false(vm_a20_enabled(vm));
    harness_outb(vm, CMD, 0xdf);
    assert_true(vm_a20_enabled(vm));
}

/* ---- Garbage, saved state, the input core ------------------------------------------------- */

static void test_garbage(void **state)
{
    struct fixture *f = *state;
    struct vm *vm = f->vm;
    uint32_t seed = 0x8042;
    for (int i = 0; i < 20000; i++) {
        uint32_t r = harness_rand(&seed);
        switch (r % 5) {
        case 0: harness_outb(vm, DATA, (uint8_t)(r >> 8)); break;
        case 1: harness_outb(vm, CMD, (uint8_t)(r >> 8)); break;
        case 2: (void)harness_inb(vm, DATA); break;
        case 3: inp_key(vm, (r >> 8) & 0xe1ffff, (r >> 30) & 1); break;
        default: inp_pointer_rel(vm, (int)((r >> 8) & 0x3ff) - 512, (int)((r >> 18) & 0x3ff) - 512, 0, r >> 29); break;
        }
        if (i % 1000 == 0)
            harness_step_ns(vm, 100 * MS);
    }
    /* Whatever happened, the controller still answers after its buffer is drained. */
    static uint8_t buf[65536];
    set_ccb(vm, 0x30);
    drain(vm, buf, sizeof(buf), NULL);
    harness_outb(vm, CMD, 0xaa);
    EXPECT(vm, 0x55);
    set_ccb(vm, 0x00);
    drain(vm, buf, sizeof(buf), NULL);
    expect_empty(vm);
    harness_outb(vm, DATA, 0xff);
    EXPECT(vm, 0xfa, 0xaa);
}

static void test_saved_state(void **state)
{
    struct fixture *f = *state;
    struct vm *vm = f->vm;
    set_ccb(vm, 0x03);
    harness_outb(vm, DATA, 0xf0);
    harness_outb(vm, DATA, 0x03);
    harness_outb(vm, DATA, 0xed);
    harness_outb(vm, DATA, 0x06);
    EXPECT(vm, 0xfa, 0xfa, 0xfa, 0xfa);
    static const uint8_t knock[] = { 200, 100, 80 };
    for (int i = 0; i < 3; i++) {
        mouse_send(vm, 0xf3);
        mouse_send(vm, knock[i]);
    }
    mouse_send(vm, 0xf4);
    uint8_t junk[64];
    drain(vm, junk, sizeof(junk), NULL);
    inp_key(vm, 0x1e, true); /* held: repeats after the delay, after the load too */
    inp_pointer_rel(vm, 3, 0, 1, 0);
    harness_outb(vm, CMD, 0xd1); /* a controller command waiting for its data byte */
    assert_int_equal(harness_dev_save_reset_load(f->kbc), 0);
    assert_int_equal(inp_kbd_leds(vm), 6);
    /* The set 3 make code of A from the keyboard, then the wheel packet from the mouse. */
    uint8_t got[64];
    bool aux[64];
    size_t n = drain(vm, got, sizeof(got), aux);
    assert_int_equal(n, 5);
    const uint8_t want[] = { 0x1c, 0x08, 0x03, 0x00, 0x01 };
    assert_memory_equal(got, want, 5);
    assert_false(aux[0]);
    assert_true(aux[1] && aux[4]);
    /* The pending D1 survived: this byte becomes the output port instead of reaching the keyboard. */
    harness_outb(vm, DATA, 0xcf);
    expect_empty(vm);
    assert_int_equal(get_ccb(vm), 0x03);
    assert_true(vm_a20_enabled(vm));
    /* The held key's repeat was armed across the load; set 3 breaks with F0. */
    harness_step_ns(vm, 550 * MS);
    inp_key(vm, 0x1e, false);
    EXPECT(vm, 0x1c, 0xf0, 0x1c);
    mouse_send(vm, 0xf2);
    EXPECT(vm, 0xfa, 0x03);

    /* A damaged unit is refused and leaves the device as it was. */
    const struct pdm_dev_desc *desc = pdm_dev_desc(f->kbc);
    struct ssm *out = NULL, *in = NULL;
    assert_int_equal(ssm_create(&out), 0);
    assert_int_equal(desc->save(f->kbc, out), 0);
    size_t len;
    const uint8_t *data = ssm_data(out, &len);
    uint8_t *copy = malloc(len);
    memcpy(copy, data, len);
    for (size_t cut = 0; cut < len; cut += 7) {
        assert_int_equal(ssm_open(copy, cut, &in), 0);
        int rc = desc->load(f->kbc, in, desc->ssm_version);
        if (!rc)
            rc = ssm_status(in);
        assert_int_not_equal(rc, 0);
        ssm_destroy(in);
    }
    copy[32 + 1] = 0x99; /* the pending controller command (after RAM and the output port): takes no data */
    assert_int_equal(ssm_open(copy, len, &in), 0);
    assert_int_equal(desc->load(f->kbc, in, desc->ssm_version), VERR_SSM_CORRUPT);
    ssm_destroy(in);
    assert_int_equal(ssm_open(data, len, &in), 0);
    assert_int_equal(desc->load(f->kbc, in, desc->ssm_version + 1), VERR_SSM_VERSION);
    ssm_destroy(in);
    free(copy);
    ssm_destroy(out);
    assert_int_equal(inp_kbd_leds(vm), 6);
    mouse_send(vm, 0xf2);
    EXPECT(vm, 0xfa, 0x03);
}

static void test_input_core(void **state)
{
    (void)state;
    struct vm *vm = harness_vm_create(0);
    /* Nothing registered: input is refused with VERR_NOT_FOUND. */
    assert_int_equal(inp_key(vm, 0x1e, true), VERR_NOT_FOUND);
    assert_int_equal(inp_type_string(vm, "a"), VERR_NOT_FOUND);
    const uint8_t b[] = { 0x1e };
    assert_int_equal(inp_kbd_put_scancode_bytes(vm, b, 1), VERR_NOT_FOUND);
    assert_int_equal(inp_pointer_rel(vm, 1, 1, 0, 0), VERR_NOT_FOUND);
    assert_int_equal(inp_pointer_abs(vm, 1, 1, 10, 10, 0, 0), VERR_NOT_FOUND);
    assert_int_equal(inp_kbd_leds(vm), 0);
    /* One keyboard per VM: a second controller fails to construct and leaves the first working. */
    struct pdm_dev *kbc = harness_dev_create(vm, &g_dev_i8042, "kbc", NULL);
    (void)kbc;
    struct pdm_dev *second = NULL;
    assert_int_not_equal(harness_dev_try_create(vm, &g_dev_i8042, "kbc2", NULL, &second), 0);
    /* An unknown configuration key is refused. */
    struct vm *vm2 = harness_vm_create(0);
    assert_int_equal(harness_dev_try_create(vm2, &g_dev_i8042, "kbc", "irq=5", &second), VERR_CFG_UNKNOWN_KEY);
    assert_int_equal(inp_key(vm2, 0x1e, true), VERR_NOT_FOUND);
    harness_vm_destroy(vm2);
    set_ccb(vm, 0x40);
    assert_int_equal(inp_key(vm, 0x1e, true), 0);
    EXPECT(vm, 0x1e);
    harness_vm_destroy(vm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_controller_commands, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keyboard_commands, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_typematic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_type_string_and_buffer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mouse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mouse_buffer_and_abs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_irqs, setup, teardown),
        cmocka_unit_test(test_a20_and_reset),
        cmocka_unit_test_setup_teardown(test_no_board_wiring, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_saved_state, setup, teardown),
        cmocka_unit_test(test_input_core),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
