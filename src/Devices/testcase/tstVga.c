/* tstVga.c - VGA/VBE card tests: PCI function and ROM, the register state machine, planar write and read modes, text/12h/13h/VBE rendering, dirty rectangles, hostile values and saved state. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "vireo/display.h"
#include "vireo/pci.h"

#define VGA_DEVFN  PCI_DEVFN(2, 0)
#define LFB_GPA    0xe0000000u
#define MMIO_GPA   0xe1000000u
#define ROM_GPA    0xe2000000u
#define WIN        0xa0000u

struct fixture {
    struct vm *vm;
    struct pdm_dev *dev;
    struct display *dpy;
};

static void cfg_write(struct vm *vm, unsigned reg, uint32_t value, unsigned size)
{
    harness_outl(vm, 0xcf8, 0x80000000u | VGA_DEVFN << 8 | (reg & 0xfc));
    uint16_t port = (uint16_t)(0xcfc + (reg & 3));
    if (size == 2)
        harness_outw(vm, port, (uint16_t)value);
    else
        harness_outl(vm, port, value);
}

static uint32_t cfg_read(struct vm *vm, unsigned reg)
{
    harness_outl(vm, 0xcf8, 0x80000000u | VGA_DEVFN << 8 | (reg & 0xfc));
    return harness_inl(vm, 0xcfc);
}

static void setup(struct fixture *f, const char *cfg)
{
    f->vm = harness_vm_create(0); /* no RAM: the board leaves 0xA0000-0xBFFFF to the card */
    harness_dev_create(f->vm, &g_dev_i440fx, "pci", NULL);
    f->dev = harness_dev_create(f->vm, &g_dev_vga, "vga", cfg ? cfg : "rom=none");
    f->dpy = dpy_find(f->vm, 0);
    assert_non_null(f->dpy);
    /* Map the framebuffer and the MMIO BAR as firmware would. */
    cfg_write(f->vm, PCI_CFG_BAR0, LFB_GPA, 4);
    cfg_write(f->vm, PCI_CFG_BAR0 + 8, MMIO_GPA, 4);
    cfg_write(f->vm, PCI_CFG_COMMAND, PCI_COMMAND_IO | PCI_COMMAND_MEMORY, 2);
}

static void teardown(struct fixture *f)
{
    harness_vm_destroy(f->vm);
}

static uint8_t mem_rb(struct vm *vm, uint64_t gpa)
{
    return (uint8_t)mem_mmio_read(vm, gpa, 1);
}

static void mem_wb(struct vm *vm, uint64_t gpa, uint8_t v)
{
    mem_mmio_write(vm, gpa, v, 1);
}

static uint8_t vram_byte(struct vm *vm, uint32_t off)
{
    uint8_t b = 0;
    assert_int_equal(mem_read(vm, LFB_GPA + off, &b, 1), 0);
    return b;
}

static void seq(struct vm *vm, uint8_t i, uint8_t v) { harness_outb(vm, 0x3c4, i); harness_outb(vm, 0x3c5, v); }
static void gr(struct vm *vm, uint8_t i, uint8_t v) { harness_outb(vm, 0x3ce, i); harness_outb(vm, 0x3cf, v); }
static void crtc(struct vm *vm, uint8_t i, uint8_t v) { harness_outb(vm, 0x3d4, i); harness_outb(vm, 0x3d5, v); }

static void ar(struct vm *vm, uint8_t i, uint8_t v)
{
    (void)harness_inb(vm, 0x3da);
    harness_outb(vm, 0x3c0, i);
    harness_outb(vm, 0x3c0, v);
}

static void dac_set(struct vm *vm, uint8_t idx, uint8_t r, uint8_t g, uint8_t b)
{
    harness_outb(vm, 0x3c8, idx);
    harness_outb(vm, 0x3c9, r);
    harness_outb(vm, 0x3c9, g);
    harness_outb(vm, 0x3c9, b);
}

static void screen_on(struct vm *vm)
{
    (void)harness_inb(vm, 0x3da);
    harness_outb(vm, 0x3c0, 0x20); /* PAS */
}

/* A mode from the register values of the IBM VGA's standard mode tables. */
static void set_mode(struct vm *vm, uint8_t misc, const uint8_t sr[4], const uint8_t cr[25], const uint8_t g[9],
                     const uint8_t a[20])
{
    harness_outb(vm, 0x3c2, misc);
    for (unsigned i = 0; i < 4; i++)
        seq(vm, (uint8_t)(i + 1), sr[i]);
    crtc(vm, 0x11, 0); /* unprotect 0-7 */
    for (unsigned i = 0; i < 25; i++)
        crtc(vm, (uint8_t)i, cr[i]);
    for (unsigned i = 0; i < 9; i++)
        gr(vm, (uint8_t)i, g[i]);
    for (unsigned i = 0; i < 20; i++)
        ar(vm, (uint8_t)i, a[i]);
    screen_on(vm);
}

static const uint8_t g_m3_sr[4] = { 0x00, 0x03, 0x00, 0x02 };
static const uint8_t g_m3_cr[25] = { 0x5f, 0x4f, 0x50, 0x82, 0x55, 0x81, 0xbf, 0x1f, 0x00, 0x4f, 0x0d, 0x0e, 0x00,
                                     0x00, 0x00, 0x00, 0x9c, 0x8e, 0x8f, 0x28, 0x1f, 0x96, 0xb9, 0xa3, 0xff };
static const uint8_t g_m3_gr[9] = { 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x0e, 0x00, 0xff };
static const uint8_t g_m3_ar[20] = { 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x14, 0x07, 0x38, 0x39,
                                     0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f, 0x0c, 0x00, 0x0f, 0x08 };

static const uint8_t g_m13_sr[4] = { 0x01, 0x0f, 0x00, 0x0e };
static const uint8_t g_m13_cr[25] = { 0x5f, 0x4f, 0x50, 0x82, 0x54, 0x80, 0xbf, 0x1f, 0x00, 0x41, 0x00, 0x00, 0x00,
                                      0x00, 0x00, 0x00, 0x9c, 0x0e, 0x8f, 0x28, 0x40, 0x96, 0xb9, 0xa3, 0xff };
static const uint8_t g_m13_gr[9] = { 0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0x05, 0x0f, 0xff };
static const uint8_t g_m13_ar[20] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0x41, 0x00, 0x0f, 0x00 };

static const uint8_t g_m12_sr[4] = { 0x01, 0x0f, 0x00, 0x06 };
static const uint8_t g_m12_cr[25] = { 0x5f, 0x4f, 0x50, 0x82, 0x54, 0x80, 0x0b, 0x3e, 0x00, 0x40, 0x00, 0x00, 0x00,
                                      0x00, 0x00, 0x00, 0xea, 0x8c, 0xdf, 0x28, 0x00, 0xe7, 0x04, 0xe3, 0xff };
static const uint8_t g_m12_gr[9] = { 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x0f, 0xff };
static const uint8_t g_m12_ar[20] = { 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x14, 0x07, 0x38, 0x39,
                                      0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f, 0x01, 0x00, 0x0f, 0x00 };

static uint32_t snap_pixel(const struct dpy_surface *s, uint32_t x, uint32_t y)
{
    assert_true(x < s->width && y < s->height);
    return ((const uint32_t *)(s->pixels + (size_t)y * s->stride_bytes))[x] & 0xffffff;
}

static void snap(struct fixture *f, struct dpy_surface *out)
{
    assert_int_equal(dpy_snapshot(f->dpy, out), 0);
    assert_non_null(out->pixels);
}

static void dispi(struct vm *vm, uint16_t idx, uint16_t v)
{
    harness_outw(vm, 0x1ce, idx);
    harness_outw(vm, 0x1cf, v);
}

static uint16_t dispi_get(struct vm *vm, uint16_t idx)
{
    harness_outw(vm, 0x1ce, idx);
    return harness_inw(vm, 0x1cf);
}

/* ---- PCI function and ROM --------------------------------------------------------------------- */

static void test_pci_and_rom(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f, "vram_mib=8");
    assert_int_equal(cfg_read(f.vm, 0) & 0xffff, 0x1234);
    assert_int_equal(cfg_read(f.vm, 0) >> 16, 0x1111);
    assert_int_equal(cfg_read(f.vm, 8) >> 8, 0x030000);
    /* BAR0 is the prefetchable framebuffer of the video memory's size. */
    cfg_write(f.vm, PCI_CFG_BAR0, 0xffffffffu, 4);
    assert_int_equal(cfg_read(f.vm, PCI_CFG_BAR0), (uint32_t)~(8u * 1024 * 1024 - 1) | 0x8);
    cfg_write(f.vm, PCI_CFG_BAR0 + 8, 0xffffffffu, 4);
    assert_int_equal(cfg_read(f.vm, PCI_CFG_BAR0 + 8), 0xfffff000u);
    /* The VGA BIOS is the expansion ROM: 64 KiB, mapped where the ROM BAR says, with its 55 AA signature. */
    cfg_write(f.vm, PCI_CFG_ROM_ADDRESS, 0xfffff800u, 4);
    assert_int_equal(cfg_read(f.vm, PCI_CFG_ROM_ADDRESS), 0xffff0000u);
    cfg_write(f.vm, PCI_CFG_ROM_ADDRESS, ROM_GPA | 1, 4);
    uint8_t sig[2] = { 0 };
    assert_int_equal(mem_read(f.vm, ROM_GPA, sig, 2), 0);
    assert_int_equal(sig[0], 0x55);
    assert_int_equal(sig[1], 0xaa);
    teardown(&f);
}

static void test_config_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "vram_mib=3", "vram_mib=12", "vram_mib=512", "vram_mib=0", "vram_mib=x", "colour=1",
        "rom=/nonexistent/vgabios.bin", "rom=/etc/hostname", "slot=40",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct vm *vm = harness_vm_create(0);
        harness_dev_create(vm, &g_dev_i440fx, "pci", NULL);
        struct pdm_dev *dev = NULL;
        int rc = harness_dev_try_create(vm, &g_dev_vga, "vga", bad[i], &dev);
        if (rc == 0)
            fail_msg("'%s' was accepted", bad[i]);
        assert_null(dpy_find(vm, 0));
        harness_vm_destroy(vm);
    }
}

/* ---- Registers ----------------------------------------------------------------------------------- */

static void test_attr_flipflop(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f, NULL);
    /* Monochrome after reset: status 1 at 0x3BA resets the flip-flop, 0x3DA is not decoded. */
    assert_int_equal(harness_inb(f.vm, 0x3da), 0xff);
    (void)harness_inb(f.vm, 0x3ba);
    harness_outb(f.vm, 0x3c0, 0x12);
    harness_outb(f.vm, 0x3c0, 0xff); /* data: masked to 6 bits */
    assert_int_equal(harness_inb(f.vm, 0x3c1), 0x3f);
    harness_outb(f.vm, 0x3c0, 0x13); /* index again */
    harness_outb(f.vm, 0x3c0, 0x05);
    assert_int_equal(harness_inb(f.vm, 0x3c0), 0x13);
    harness_outb(f.vm, 0x3c0, 0x10); /* index state: this is an index */
    harness_outb(f.vm, 0x3c0, 0x41); /* data */
    harness_outb(f.vm, 0x3c0, 0x11); /* index */
    (void)harness_inb(f.vm, 0x3ba);  /* back to index state before the data */
    harness_outb(f.vm, 0x3c0, 0x14);
    harness_outb(f.vm, 0x3c0, 0x0a);
    harness_outb(f.vm, 0x3c0, 0x10);
    assert_int_equal(harness_inb(f.vm, 0x3c1), 0x41);
    harness_outb(f.vm, 0x3c0, 0x14);
    harness_outb(f.vm, 0x3c0, 0x14);
    assert_int_equal(harness_inb(f.vm, 0x3c1), 0x0a);
    harness_outb(f.vm, 0x3c0, 0x13);
    harness_outb(f.vm, 0x3c0, 0x13);
    assert_int_equal(harness_inb(f.vm, 0x3c1), 0x05);
    /* Colour mode moves the CRTC and status 1 to 0x3Dx. */
    harness_outb(f.vm, 0x3c2, 0x67);
    assert_int_equal(harness_inb(f.vm, 0x3cc), 0x67);
    crtc(f.vm, 0x0e, 0x12);
    assert_int_equal(harness_inb(f.vm, 0x3d5), 0x12);
    assert_int_equal(harness_inb(f.vm, 0x3b5), 0xff);
    harness_outb(f.vm, 0x3c0, 0x10);
    (void)harness_inb(f.vm, 0x3da);
    harness_outb(f.vm, 0x3c0, 0x10);
    harness_outb(f.vm, 0x3c0, 0x01);
    harness_outb(f.vm, 0x3c0, 0x10);
    assert_int_equal(harness_inb(f.vm, 0x3c1), 0x01);
    /* CRTC 0x11 bit 7 protects registers 0-7 except the line compare bit of register 7. */
    crtc(f.vm, 0x01, 0x4f);
    crtc(f.vm, 0x11, 0x80);
    crtc(f.vm, 0x01, 0x27);
    crtc(f.vm, 0x07, 0xff);
    harness_outb(f.vm, 0x3d4, 0x01);
    assert_int_equal(harness_inb(f.vm, 0x3d5), 0x4f);
    harness_outb(f.vm, 0x3d4, 0x07);
    assert_int_equal(harness_inb(f.vm, 0x3d5), 0x10);
    /* A 16-bit OUT to an index port writes index then data. */
    harness_outw(f.vm, 0x3c4, 0x0a02);
    harness_outb(f.vm, 0x3c4, 0x02);
    assert_int_equal(harness_inb(f.vm, 0x3c5), 0x0a);
    teardown(&f);
}

static void test_dac(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f, NULL);
    harness_outb(f.vm, 0x3c8, 5);
    static const uint8_t in[7] = { 0x3f, 0x40, 0x81, 0x01, 0x02, 0xff, 0x11 };
    for (unsigned i = 0; i < 7; i++)
        harness_outb(f.vm, 0x3c9, in[i]);
    assert_int_equal(harness_inb(f.vm, 0x3c8), 7); /* two complete entries, one component pending */
    assert_int_equal(harness_inb(f.vm, 0x3c7), 0x00);
    harness_outb(f.vm, 0x3c7, 5);
    assert_int_equal(harness_inb(f.vm, 0x3c7), 0x03);
    static const uint8_t want[6] = { 0x3f, 0x00, 0x01, 0x01, 0x02, 0x3f };
    for (unsigned i = 0; i < 6; i++)
        assert_int_equal(harness_inb(f.vm, 0x3c9), want[i]);
    /* The read index moved on by two: entry 7 is still 0 (the third write never completed). */
    assert_int_equal(harness_inb(f.vm, 0x3c9), 0);
    /* Index 255 wraps to 0. */
    dac_set(f.vm, 255, 1, 2, 3);
    assert_int_equal(harness_inb(f.vm, 0x3c8), 0);
    harness_outb(f.vm, 0x3c6, 0x0f);
    assert_int_equal(harness_inb(f.vm, 0x3c6), 0x0f);
    teardown(&f);
}

/* Plane p at plane address a, read back through read mode 0 and the read map select. */
static uint8_t plane_read(struct vm *vm, unsigned p, uint32_t a)
{
    gr(vm, 5, 0x00);
    gr(vm, 4, (uint8_t)p);
    return mem_rb(vm, WIN + a);
}

static void test_write_modes(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f, NULL);
    struct vm *vm = f.vm;
    seq(vm, 4, 0x06);     /* no chain 4, no odd/even */
    seq(vm, 2, 0x0f);
    gr(vm, 6, 0x05);      /* graphics, 64 KiB at 0xA0000 */
    gr(vm, 8, 0xff);
    /* Write mode 0 with set/reset on planes 0 and 2 (values 1 and 0) and the CPU byte elsewhere. */
    gr(vm, 0, 0x01);
    gr(vm, 1, 0x05);
    gr(vm, 5, 0x00);
    mem_wb(vm, WIN + 0x10, 0x5a);
    assert_int_equal(plane_read(vm, 0, 0x10), 0xff);
    assert_int_equal(plane_read(vm, 1, 0x10), 0x5a);
    assert_int_equal(plane_read(vm, 2, 0x10), 0x00);
    assert_int_equal(plane_read(vm, 3, 0x10), 0x5a);
    /* The interleaved layout the LFB shows: plane p of address a at byte 4a + p. */
    assert_int_equal(vram_byte(vm, 0x40 + 1), 0x5a);
    assert_int_equal(vram_byte(vm, 0x40 + 0), 0xff);
    /* Rotate by 4 and XOR with the latches, bit mask 0xf0. */
    gr(vm, 1, 0x00);
    (void)plane_read(vm, 0, 0x10);   /* loads the latches */
    gr(vm, 3, 0x18 | 4);
    gr(vm, 8, 0xf0);
    mem_wb(vm, WIN + 0x10, 0x0f);  /* rotated: 0xf0 */
    gr(vm, 3, 0);
    gr(vm, 8, 0xff);
    assert_int_equal(plane_read(vm, 0, 0x10), 0x0f);
    assert_int_equal(plane_read(vm, 1, 0x10), 0xaa);
    /* Write mode 2: the CPU's low nibble as a colour, through the bit mask. */
    (void)plane_read(vm, 0, 0x20);
    gr(vm, 5, 0x02);
    gr(vm, 8, 0x81);
    mem_wb(vm, WIN + 0x20, 0x0a);
    gr(vm, 8, 0xff);
    assert_int_equal(plane_read(vm, 0, 0x20), 0x00);
    assert_int_equal(plane_read(vm, 1, 0x20), 0x81);
    assert_int_equal(plane_read(vm, 3, 0x20), 0x81);
    /* Write mode 3: the set/reset colour under (bit mask AND rotated CPU byte). */
    (void)plane_read(vm, 0, 0x20);
    gr(vm, 0, 0x04);
    gr(vm, 5, 0x03);
    gr(vm, 8, 0x3c);
    mem_wb(vm, WIN + 0x20, 0x0f);
    gr(vm, 8, 0xff);
    assert_int_equal(plane_read(vm, 1, 0x20), 0x81 & ~0x0c);
    assert_int_equal(plane_read(vm, 2, 0x20), 0x0c);
    /* Write mode 1: the latches from one address copied to another. */
    (void)plane_read(vm, 0, 0x10);
    gr(vm, 5, 0x01);
    mem_wb(vm, WIN + 0x30, 0x00);
    for (unsigned p = 0; p < 4; p++)
        assert_int_equal(plane_read(vm, p, 0x30), plane_read(vm, p, 0x10));
    /* The map mask keeps other planes. */
    seq(vm, 2, 0x04);
    gr(vm, 5, 0x00);
    mem_wb(vm, WIN + 0x30, 0x77);
    seq(vm, 2, 0x0f);
    assert_int_equal(plane_read(vm, 2, 0x30), 0x77);
    assert_int_equal(plane_read(vm, 1, 0x30), 0xaa);
    /* Read mode 1: colour compare 0b1010 on every plane. */
    gr(vm, 2, 0x0a);
    gr(vm, 7, 0x0f);
    gr(vm, 5, 0x08);
    assert_int_equal(mem_rb(vm, WIN + 0x20), 0x81 & ~0x0c & (uint8_t)~0x0c);
    gr(vm, 7, 0x00); /* everything don't care: all ones */
    assert_int_equal(mem_rb(vm, WIN + 0x20), 0xff);
    /* Chain 4: the low address bits pick the plane, video RAM is linear. */
    seq(vm, 4, 0x0e);
    mem_wb(vm, WIN + 0x1233, 0x42);
    assert_int_equal(mem_rb(vm, WIN + 0x1233), 0x42);
    assert_int_equal(vram_byte(vm, 0x1233), 0x42);
    /* Odd/even at 0xB8000: even bytes to plane 0, odd ones to plane 1, at the even plane address. */
    seq(vm, 4, 0x02);
    gr(vm, 6, 0x0e);
    gr(vm, 5, 0x10);
    mem_wb(vm, 0xb8000 + 0x100, 'V');
    mem_wb(vm, 0xb8000 + 0x101, 0x1e);
    assert_int_equal(vram_byte(vm, 0x100 * 4 + 0), 'V');
    assert_int_equal(vram_byte(vm, 0x100 * 4 + 1), 0x1e);
    assert_int_equal(mem_rb(vm, 0xb8000 + 0x101), 0x1e);
    /* Outside the memory map select's window: nothing is there. */
    assert_int_equal(mem_rb(vm, WIN + 0x10), 0xff);
    mem_wb(vm, WIN + 0x10, 0x00);
    gr(vm, 6, 0x05);
    seq(vm, 4, 0x06);
    assert_int_equal(plane_read(vm, 0, 0x10), 0x0f);
    teardown(&f);
}

/* ---- Rendering ------------------------------------------------------------------------------------ */

static uint8_t glyph_row(unsigned ch, unsigned row)
{
    return (uint8_t)((0x80u >> ((row + ch) & 7)) | 0x01);
}

/* Mode 3 with a font written into plane 2 by the VGA write path, as a BIOS loads it. */
static void text_mode(struct vm *vm)
{
    set_mode(vm, 0x67, g_m3_sr, g_m3_cr, g_m3_gr, g_m3_ar);
    seq(vm, 2, 0x04);
    seq(vm, 4, 0x06);
    gr(vm, 4, 0x02);
    gr(vm, 5, 0x00);
    gr(vm, 6, 0x04);
    static const unsigned chars[] = { 'A', 0xc4 };
    for (unsigned c = 0; c < 2; c++)
        for (unsigned r = 0; r < 16; r++)
            mem_wb(vm, WIN + chars[c] * 32 + r, glyph_row(chars[c], r));
    seq(vm, 2, 0x03);
    seq(vm, 4, 0x02);
    gr(vm, 4, 0x00);
    gr(vm, 5, 0x10);
    gr(vm, 6, 0x0e);
    dac_set(vm, 0, 0, 0, 0);
    dac_set(vm, 1, 0x3f, 0, 0);       /* attribute colour 1: red */
    dac_set(vm, 0x14, 0, 0, 0x3f);    /* attribute colour 6 maps to DAC 0x14: blue */
    crtc(vm, 0x0e, 0);
    crtc(vm, 0x0f, 40);               /* cursor at cell 40 of row 0 */
}

static void put_cell(struct vm *vm, unsigned col, unsigned row, uint8_t ch, uint8_t attr)
{
    mem_wb(vm, 0xb8000 + (row * 80 + col) * 2, ch);
    mem_wb(vm, 0xb8000 + (row * 80 + col) * 2 + 1, attr);
}

static void check_glyph(const struct dpy_surface *s, unsigned col, unsigned row, unsigned ch, uint32_t fg, uint32_t bg,
                        bool line_gfx)
{
    for (unsigned r = 0; r < 16; r++) {
        uint8_t bits = glyph_row(ch, r);
        for (unsigned b = 0; b < 9; b++) {
            bool on = b < 8 ? (bits & (0x80u >> b)) != 0 : (line_gfx && (bits & 1));
            uint32_t px = snap_pixel(s, col * 9 + b, row * 16 + r);
            if (px != (on ? fg : bg))
                fail_msg("cell %u,%u char %02x: pixel %u,%u is %06x, expected %06x", col, row, ch, b, r, px,
                         on ? fg : bg);
        }
    }
}

static void test_text_render(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f, NULL);
    text_mode(f.vm);
    put_cell(f.vm, 0, 0, 'A', 0x01);
    put_cell(f.vm, 1, 0, 0xc4, 0x61);   /* line graphics: the 9th column repeats the 8th */
    put_cell(f.vm, 2, 1, 'A', 0x81);    /* blinking */
    put_cell(f.vm, 40, 0, ' ', 0x01);   /* under the cursor */
    struct dpy_surface s;
    snap(&f, &s);
    assert_int_equal(s.width, 720);
    assert_int_equal(s.height, 400);
    check_glyph(&s, 0, 0, 'A', 0xff0000, 0x000000, false);
    check_glyph(&s, 1, 0, 0xc4, 0xff0000, 0x0000ff, true);
    check_glyph(&s, 2, 1, 'A', 0xff0000, 0x000000, false);
    /* The cursor: scan lines 13-14 of its cell in the foreground colour. */
    assert_int_equal(snap_pixel(&s, 40 * 9 + 3, 13), 0xff0000);
    assert_int_equal(snap_pixel(&s, 40 * 9 + 3, 14), 0xff0000);
    assert_int_equal(snap_pixel(&s, 40 * 9 + 3, 12), 0x000000);
    free(s.pixels);
    /* 0.9 s on, blinking characters (~1.9 Hz) and the cursor (~3.75 Hz) are both in their off phase. */
    harness_step_ns(f.vm, 900000000ull);
    snap(&f, &s);
    for (unsigned r = 0; r < 16; r++)
        for (unsigned b = 0; b < 9; b++)
            assert_int_equal(snap_pixel(&s, 2 * 9 + b, 16 + r), 0x000000);
    assert_int_equal(snap_pixel(&s, 40 * 9 + 3, 13), 0x000000);
    check_glyph(&s, 0, 0, 'A', 0xff0000, 0x000000, false);
    free(s.pixels);
    /* With blink disabled, attribute bit 7 is background intensity: colour 8 via the palette (0x38). */
    ar(f.vm, 0x10, 0x04);
    screen_on(f.vm);
    dac_set(f.vm, 0x38, 0x3f, 0x3f, 0x3f);
    snap(&f, &s);
    check_glyph(&s, 2, 1, 'A', 0xff0000, 0xffffff, false);
    free(s.pixels);
    /* An 8-dot character clock: 640 wide. */
    seq(f.vm, 1, 0x01);
    snap(&f, &s);
    assert_int_equal(s.width, 640);
    free(s.pixels);
    teardown(&f);
}

static void test_mode13h(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f, NULL);
    set_mode(f.vm, 0x63, g_m13_sr, g_m13_cr, g_m13_gr, g_m13_ar);
    dac_set(f.vm, 0x20, 0x3f, 0x20, 0x00);
    mem_wb(f.vm, WIN + 100 * 320 + 50, 0x20);
    mem_wb(f.vm, WIN + 199 * 320 + 319, 0x20);
    struct dpy_surface s;
    snap(&f, &s);
    assert_int_equal(s.width, 320);
    assert_int_equal(s.height, 200);
    assert_int_equal(snap_pixel(&s, 50, 100), 0xff8200);
    assert_int_equal(snap_pixel(&s, 319, 199), 0xff8200);
    assert_int_equal(snap_pixel(&s, 51, 100), 0x000000);
    free(s.pixels);
    /* The pel mask applies before the DAC. */
    harness_outb(f.vm, 0x3c6, 0x0f);
    snap(&f, &s);
    assert_int_equal(snap_pixel(&s, 50, 100), 0x000000);
    free(s.pixels);
    teardown(&f);
}

static void test_mode12h(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f, NULL);
    set_mode(f.vm, 0xe3, g_m12_sr, g_m12_cr, g_m12_gr, g_m12_ar);
    dac_set(f.vm, 0x3c, 0x3f, 0x00, 0x3f); /* colour 12 -> palette 0x3c */
    dac_set(f.vm, 0x01, 0x00, 0x3f, 0x00);
    /* Pixel (9, 5) in colour 12 with write mode 2 and a one-bit mask, as a driver plots it. */
    gr(f.vm, 5, 0x02);
    gr(f.vm, 8, 0x80 >> (9 & 7));
    (void)mem_rb(f.vm, WIN + 5 * 80 + 1);
    mem_wb(f.vm, WIN + 5 * 80 + 1, 0x0c);
    gr(f.vm, 8, 0x80);
    (void)mem_rb(f.vm, WIN + 479 * 80 + 79);
    mem_wb(f.vm, WIN + 479 * 80 + 79, 0x01);
    struct dpy_surface s;
    snap(&f, &s);
    assert_int_equal(s.width, 640);
    assert_int_equal(s.height, 480);
    assert_int_equal(snap_pixel(&s, 9, 5), 0xff00ff);
    assert_int_equal(snap_pixel(&s, 8, 5), 0x000000);
    assert_int_equal(snap_pixel(&s, 10, 5), 0x000000);
    assert_int_equal(snap_pixel(&s, 632, 479), 0x00ff00);
    free(s.pixels);
    /* Colour plane enable masks plane 3 out: 12 becomes 4 (palette 0x04, black in this DAC). */
    ar(f.vm, 0x12, 0x07);
    screen_on(f.vm);
    snap(&f, &s);
    assert_int_equal(snap_pixel(&s, 9, 5), 0x000000);
    free(s.pixels);
    teardown(&f);
}

static void lfb_put32(struct vm *vm, uint64_t off, uint32_t v)
{
    assert_int_equal(mem_write(vm, LFB_GPA + off, &v, 4), 0);
}

static void test_vbe(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f, NULL);
    struct vm *vm = f.vm;
    assert_int_equal(dispi_get(vm, 0), 0xb0c5);
    dispi(vm, 0, 0xb0c0);
    assert_int_equal(dispi_get(vm, 0), 0xb0c0);
    dispi(vm, 0, 0x1234); /* not an ID: ignored */
    assert_int_equal(dispi_get(vm, 0), 0xb0c0);
    assert_int_equal(dispi_get(vm, 10), 256); /* 16 MiB in 64 KiB units */
    dispi(vm, 4, 0x02);                        /* GETCAPS */
    assert_int_equal(dispi_get(vm, 1), 2560);
    assert_int_equal(dispi_get(vm, 2), 1600);
    assert_int_equal(dispi_get(vm, 3), 32);
    dispi(vm, 4, 0);
    dispi(vm, 1, 800);
    dispi(vm, 2, 600);
    dispi(vm, 3, 32);
    dispi(vm, 4, 0x41);
    assert_int_equal(dispi_get(vm, 1), 800);
    assert_int_equal(dispi_get(vm, 6), 800);
    assert_int_equal(dispi_get(vm, 7), (16u << 20) / (800 * 4));
    lfb_put32(vm, (20 * 800 + 10) * 4, 0x00123456);
    struct dpy_surface s;
    snap(&f, &s);
    assert_int_equal(s.width, 800);
    assert_int_equal(s.height, 600);
    assert_int_equal(snap_pixel(&s, 10, 20), 0x123456);
    assert_int_equal(snap_pixel(&s, 11, 20), 0);
    free(s.pixels);
    /* Virtual width and offsets: the picture starts at (4, 10) of a 1024-pixel-wide page. */
    dispi(vm, 6, 1024);
    dispi(vm, 8, 4);
    dispi(vm, 9, 10);
    lfb_put32(vm, (10 * 1024 + 4) * 4, 0x00abcdef);
    snap(&f, &s);
    assert_int_equal(snap_pixel(&s, 0, 0), 0xabcdef);
    free(s.pixels);

    /* 16 bpp through the MMIO BAR's DISPI registers. */
    mem_mmio_write(vm, MMIO_GPA + 0x500 + 2 * 4, 0, 2);
    mem_mmio_write(vm, MMIO_GPA + 0x500 + 2 * 1, 640, 2);
    mem_mmio_write(vm, MMIO_GPA + 0x500 + 2 * 2, 480, 2);
    mem_mmio_write(vm, MMIO_GPA + 0x500 + 2 * 3, 16, 2);
    mem_mmio_write(vm, MMIO_GPA + 0x500 + 2 * 4, 0x41, 2);
    assert_int_equal(mem_mmio_read(vm, MMIO_GPA + 0x500 + 2 * 3, 2), 16);
    assert_int_equal(mem_mmio_read(vm, MMIO_GPA + 0x500 + 2 * 7, 2), (16u << 20) / (640 * 2));
    uint16_t px[3] = { 0xf800, 0x07e0, 0x001f };
    assert_int_equal(mem_write(vm, LFB_GPA + (7 * 640 + 3) * 2, px, sizeof(px)), 0);
    snap(&f, &s);
    assert_int_equal(s.width, 640);
    assert_int_equal(s.height, 480);
    assert_int_equal(snap_pixel(&s, 3, 7), 0xff0000);
    assert_int_equal(snap_pixel(&s, 4, 7), 0x00ff00);
    assert_int_equal(snap_pixel(&s, 5, 7), 0x0000ff);
    free(s.pixels);
    /* The VGA ports through the MMIO BAR: the DAC at 0x408/0x409. */
    mem_mmio_write(vm, MMIO_GPA + 0x408, 9, 1);
    mem_mmio_write(vm, MMIO_GPA + 0x409, 0x11, 1);
    mem_mmio_write(vm, MMIO_GPA + 0x409, 0x22, 1);
    mem_mmio_write(vm, MMIO_GPA + 0x409, 0x33, 1);
    harness_outb(vm, 0x3c7, 9);
    assert_int_equal(harness_inb(vm, 0x3c9), 0x11);
    assert_int_equal(harness_inb(vm, 0x3c9), 0x22);
    assert_int_equal(harness_inb(vm, 0x3c9), 0x33);

    /* 8 bpp with the 8-bit DAC, banked: bank 1 shows video RAM 64 KiB up at 0xA0000. */
    dispi(vm, 4, 0);
    dispi(vm, 3, 8);
    dispi(vm, 4, 0x21 | 0x80);
    dac_set(vm, 7, 0x80, 0x40, 0xff);
    dispi(vm, 5, 1);
    mem_wb(vm, WIN + 5, 7);
    assert_int_equal(vram_byte(vm, 0x10005), 7);
    assert_int_equal(mem_rb(vm, WIN + 5), 7);
    snap(&f, &s);
    assert_int_equal(snap_pixel(&s, (0x10005 % 640), 0x10005 / 640), 0x8040ff);
    free(s.pixels);
    /* Disabled: back to the VGA (blank: the attribute controller's PAS bit is clear). */
    dispi(vm, 4, 0);
    snap(&f, &s);
    assert_int_equal(snap_pixel(&s, 5, 102), 0);
    free(s.pixels);
    teardown(&f);
}

/* ---- Dirty rectangles through a listener ---------------------------------------------------------- */

struct rec {
    unsigned updates, resizes;
    uint32_t x0, y0, x1, y1; /* union of the updates since the last clear */
};

static void rec_resize(void *opaque, const struct dpy_surface *surface)
{
    (void)surface;
    ((struct rec *)opaque)->resizes++;
}

static void rec_update(void *opaque, const struct dpy_surface *surface, uint32_t x, uint32_t y, uint32_t w, uint32_t h)
{
    (void)surface;
    struct rec *r = opaque;
    if (!r->updates) {
        r->x0 = x, r->y0 = y, r->x1 = x + w, r->y1 = y + h;
    } else {
        r->x0 = x < r->x0 ? x : r->x0;
        r->y0 = y < r->y0 ? y : r->y0;
        r->x1 = x + w > r->x1 ? x + w : r->x1;
        r->y1 = y + h > r->y1 ? y + h : r->y1;
    }
    r->updates++;
}

static const struct dpy_listener_ops g_rec_ops = { .resize = rec_resize, .update = rec_update };

/* Runs the VM's event loop (no loop thread in the harness) for about ms milliseconds of refresh ticks. */
static void pump(struct vm *vm, unsigned ms)
{
    uint64_t end = rt_time_mono_ns() + (uint64_t)ms * 1000000u;
    while (rt_time_mono_ns() < end)
        rt_evloop_run_once(vm_get_evloop(vm), 2000000u);
}

static void test_dirty(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f, NULL);
    struct vm *vm = f.vm;
    dispi(vm, 1, 640);
    dispi(vm, 2, 480);
    dispi(vm, 3, 32);
    dispi(vm, 4, 0x41);
    struct rec r = { 0 };
    struct dpy_listener *l = NULL;
    assert_int_equal(dpy_listener_add(f.dpy, &g_rec_ops, &r, 1000000u, &l), 0);
    pump(vm, 30);
    assert_int_equal(r.resizes, 1);
    assert_true(r.updates >= 1);
    assert_int_equal(r.x1, 640);
    assert_int_equal(r.y1, 480);
    /* Nothing written: nothing reported. */
    memset(&r, 0, sizeof(r));
    pump(vm, 20);
    assert_int_equal(r.updates, 0);
    /* One pixel at (10, 200): row 200 starts a page, which also holds most of row 201. */
    lfb_put32(vm, (200 * 640 + 10) * 4, 0xffffff);
    pump(vm, 20);
    assert_true(r.updates >= 1);
    assert_true(r.x0 <= 10 && r.x1 > 10);
    assert_int_equal(r.y0, 200);
    assert_true(r.y1 >= 201 && r.y1 <= 202);
    /* Text mode: one character reports its cell. */
    dispi(vm, 4, 0);
    text_mode(vm);
    crtc(vm, 0x0a, 0x20); /* no cursor, so only the written cell changes */
    pump(vm, 20);
    memset(&r, 0, sizeof(r));
    pump(vm, 10);
    assert_int_equal(r.updates, 0);
    put_cell(vm, 5, 2, 'A', 0x01);
    pump(vm, 20);
    assert_true(r.updates >= 1);
    assert_int_equal(r.x0, 45);
    assert_int_equal(r.x1, 54);
    assert_int_equal(r.y0, 32);
    assert_int_equal(r.y1, 48);
    dpy_listener_remove(l);
    teardown(&f);
}

/* ---- Hostile values ----------------------------------------------------------------------------- */

static void test_hostile(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f, "rom=none,vram_mib=4");
    struct vm *vm = f.vm;
    struct dpy_surface s;
    /* The largest mode with offsets and a virtual width far past video memory: blank, not a crash. */
    dispi(vm, 1, 2560);
    dispi(vm, 2, 1600);
    dispi(vm, 3, 32);
    dispi(vm, 4, 0x41);
    dispi(vm, 6, 0xffff);
    dispi(vm, 8, 0xffff);
    dispi(vm, 9, 0xffff);
    snap(&f, &s);
    assert_int_equal(s.width, 2560);
    assert_int_equal(s.height, 1600);
    assert_int_equal(snap_pixel(&s, 2559, 1599), 0);
    free(s.pixels);
    /* Refused values keep the register. */
    dispi(vm, 1, 4000);
    dispi(vm, 2, 0);
    dispi(vm, 3, 7);
    dispi(vm, 5, 64); /* 4 MiB has banks 0-63 */
    assert_int_equal(dispi_get(vm, 1), 2560);
    assert_int_equal(dispi_get(vm, 2), 1600);
    assert_int_equal(dispi_get(vm, 3), 32);
    assert_int_equal(dispi_get(vm, 5), 0);
    assert_int_equal(dispi_get(vm, 11), 0);
    dispi(vm, 200, 5);
    dispi(vm, 4, 0);
    /* Extreme CRTC values: huge text screens and graphics modes stay inside their surface and the planes. */
    set_mode(vm, 0x67, g_m3_sr, g_m3_cr, g_m3_gr, g_m3_ar);
    crtc(vm, 0x11, 0x00);
    static const uint8_t extreme[][3] = { { 0x01, 0xff, 0 }, { 0x12, 0xff, 0 }, { 0x07, 0xff, 0 },
                                          { 0x09, 0x00, 0 }, { 0x0c, 0xff, 0 }, { 0x13, 0xff, 0 } };
    for (size_t i = 0; i < sizeof(extreme) / sizeof(extreme[0]); i++)
        crtc(vm, extreme[i][0], extreme[i][1]);
    snap(&f, &s);
    assert_int_equal(s.width, 256 * 9);
    assert_int_equal(s.height, 1024);
    free(s.pixels);
    for (unsigned g = 0; g < 3; g++) {
        gr(vm, 6, 0x05);
        gr(vm, 5, (uint8_t)(g == 0 ? 0x00 : g == 1 ? 0x20 : 0x40));
        crtc(vm, 0x17, 0x00);
        crtc(vm, 0x09, 0x1f);
        snap(&f, &s);
        free(s.pixels);
    }
    /* Garbage everywhere, with a refresh now and then. */
    uint32_t seed = 0x5eed;
    for (unsigned i = 0; i < 20000; i++) {
        uint32_t r = harness_rand(&seed);
        switch (r % 5) {
        case 0: harness_outb(vm, (uint16_t)(0x3b0 + (r >> 8) % 0x30), (uint8_t)(r >> 16)); break;
        case 1: harness_outw(vm, (uint16_t)(0x1ce + ((r >> 8) & 1)), (uint16_t)(r >> 16)); break;
        case 2: mem_wb(vm, WIN + (r >> 8) % 0x20000, (uint8_t)(r >> 24)); break;
        case 3: mem_mmio_write(vm, MMIO_GPA + (r >> 8) % 0x1000, r >> 20, 2); break;
        default: (void)harness_inb(vm, (uint16_t)(0x3b0 + (r >> 8) % 0x30)); break;
        }
        if (i % 500 == 0) {
            snap(&f, &s);
            assert_true(s.width > 0 && s.width <= 2560 * 1 + 2304 && s.height > 0 && s.height <= 1600);
            free(s.pixels);
        }
    }
    teardown(&f);
}

/* ---- Saved state ------------------------------------------------------------------------------------ */

static int save_unit(struct pdm_dev *dev, struct ssm **out)
{
    assert_int_equal(ssm_create(out), 0);
    return pdm_dev_desc(dev)->save(dev, *out);
}

static void test_saved_state(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f, NULL);
    struct vm *vm = f.vm;
    set_mode(vm, 0x63, g_m13_sr, g_m13_cr, g_m13_gr, g_m13_ar);
    dac_set(vm, 0x20, 0x3f, 0x20, 0x00);
    mem_wb(vm, WIN + 10 * 320 + 10, 0x20);
    harness_outb(vm, 0x3c7, 0x20);
    (void)harness_inb(vm, 0x3c9); /* the DAC read sits between components */
    struct dpy_surface before, after;
    snap(&f, &before);
    assert_int_equal(harness_dev_save_reset_load(f.dev), 0);
    snap(&f, &after);
    assert_int_equal(after.width, 320);
    assert_int_equal(after.height, 200);
    assert_memory_equal(before.pixels, after.pixels, (size_t)before.stride_bytes * before.height);
    assert_int_equal(harness_inb(vm, 0x3c9), 0x20);
    assert_int_equal(harness_inb(vm, 0x3cc), 0x63);
    assert_int_equal(cfg_read(vm, PCI_CFG_BAR0), LFB_GPA | 0x8);
    free(before.pixels);
    free(after.pixels);

    /* A VBE mode round-trips too. */
    dispi(vm, 1, 1024);
    dispi(vm, 2, 768);
    dispi(vm, 3, 16);
    dispi(vm, 4, 0x41);
    dispi(vm, 9, 3);
    assert_int_equal(harness_dev_save_reset_load(f.dev), 0);
    assert_int_equal(dispi_get(vm, 1), 1024);
    assert_int_equal(dispi_get(vm, 9), 3);
    assert_int_equal(dispi_get(vm, 4), 0x41);

    /* Damaged units are refused and change nothing: truncated, a bad DISPI value, another VRAM size. */
    struct ssm *out;
    assert_int_equal(save_unit(f.dev, &out), 0);
    size_t len;
    const uint8_t *data = ssm_data(out, &len);
    uint8_t *copy = malloc(len);
    assert_non_null(copy);
    for (size_t cut = 0; cut < len; cut += 97) {
        struct ssm *in;
        assert_int_equal(ssm_open(data, cut, &in), 0);
        assert_int_not_equal(pdm_dev_desc(f.dev)->load(f.dev, in, 1), 0);
        ssm_destroy(in);
    }
    /* The BPP register sits after the fixed-size register block: find it by its value (16) at its place. */
    size_t vbe_at = 4 + 1 + 1 + 1 + 5 + 1 + 9 + 1 + 25 + 1 + 1 + 21 + 1 + 4 + 3 + 768 + 4 + 2;
    memcpy(copy, data, len);
    assert_int_equal(copy[vbe_at + 2 * 3], 16);
    copy[vbe_at + 2 * 3] = 13;
    struct ssm *in;
    assert_int_equal(ssm_open(copy, len, &in), 0);
    assert_int_equal(pdm_dev_desc(f.dev)->load(f.dev, in, 1), VERR_SSM_CORRUPT);
    ssm_destroy(in);
    assert_int_equal(dispi_get(vm, 3), 16);
    assert_int_equal(ssm_open(data, len, &in), 0);
    assert_int_equal(pdm_dev_desc(f.dev)->load(f.dev, in, 2), VERR_SSM_VERSION);
    ssm_destroy(in);
    free(copy);

    struct fixture g;
    setup(&g, "rom=none,vram_mib=8");
    assert_int_equal(ssm_open(data, len, &in), 0);
    assert_int_equal(pdm_dev_desc(g.dev)->load(g.dev, in, 1), VERR_SSM_CORRUPT);
    ssm_destroy(in);
    assert_int_equal(dispi_get(g.vm, 1), 640);
    teardown(&g);
    ssm_destroy(out);
    teardown(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pci_and_rom),
        cmocka_unit_test(test_config_refused),
        cmocka_unit_test(test_attr_flipflop),
        cmocka_unit_test(test_dac),
        cmocka_unit_test(test_write_modes),
        cmocka_unit_test(test_text_render),
        cmocka_unit_test(test_mode13h),
        cmocka_unit_test(test_mode12h),
        cmocka_unit_test(test_vbe),
        cmocka_unit_test(test_dirty),
        cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_saved_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
