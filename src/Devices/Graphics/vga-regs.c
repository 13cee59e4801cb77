/* vga-regs.c - the VGA register state machine (misc output, sequencer, CRTC, graphics and attribute controllers, DAC), the planar memory path and the Bochs VBE DISPI registers. */
/*
 * Facts from the IBM VGA register reference as FreeVGA documents it, and from the Bochs VBE
 * DISPI interface as SeaBIOS's vgabios and Linux's bochs-drm use it.
 *
 * Memory layout: the four 64 KiB planes are interleaved in the first 256 KiB of video RAM,
 * plane p of plane address a at byte 4 * a + p.  The 32-bit latch is then one little-endian
 * word, chain-4 addressing (mode 13h) is the identity on video RAM, and unchained 256-colour
 * modes (mode X) read back as the same linear bytes.
 *
 * Everything here runs with the VM lock held (port and MMIO dispatch).  Register values the
 * guest writes are masked to the bits the hardware has; indices past the register files read
 * as 0xff and ignore writes.  Writes that change what the screen shows set s->full.
 */
#include <string.h>

#include "vga-internal.h"

#define LOG_COMPONENT "vga"

/* Bits a register keeps (FreeVGA's register pages: reserved bits read as 0). */
static const uint8_t g_seq_mask[VGA_SEQ_REGS] = { 0x03, 0x3d, 0x0f, 0x3f, 0x0e };
static const uint8_t g_gr_mask[VGA_GR_REGS] = { 0x0f, 0x0f, 0x0f, 0x1f, 0x03, 0x7b, 0x0f, 0x0f, 0xff };

/* One frame of a 60 Hz display: input status 1 reports vertical retrace in its last millisecond. */
#define VGA_FRAME_NS   16666667ull
#define VGA_RETRACE_NS 1000000ull

/* ---- Ports 0x3B0-0x3DF ---------------------------------------------------------- */

static bool is_color(const struct vga *s)
{
    return s->misc & 0x01; /* I/O address select: CRTC and status at 0x3Dx, else 0x3Bx */
}

/* Input status 1: retrace from the virtual clock, and display-enable toggling so polling loops end. */
static uint8_t status1_read(struct vga *s)
{
    uint64_t phase = tm_now_ns(s->vm) % VGA_FRAME_NS;
    bool retrace = phase >= VGA_FRAME_NS - VGA_RETRACE_NS;
    uint8_t v = retrace ? 0x09 : ((phase / 32000) & 1);
    s->ar_flipflop = false; /* reading status 1 resets the attribute controller to its index state */
    return v;
}

static void ar_write(struct vga *s, uint8_t value)
{
    if (!s->ar_flipflop) {
        if ((s->ar_index ^ value) & 0x20)
            s->full = true; /* PAS: the screen is shown or blanked */
        s->ar_index = value & 0x3f;
        s->ar_flipflop = true;
        return;
    }
    s->ar_flipflop = false;
    unsigned idx = s->ar_index & 0x1f;
    if (idx >= VGA_AR_REGS)
        return;
    /* Palette entries are 6 bits, the colour plane enable 4 (and 2 status mux bits), panning and colour select 4. */
    static const uint8_t mask[VGA_AR_REGS] = {
        0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f,
        0xef, 0xff, 0x3f, 0x0f, 0x0f,
    };
    s->ar[idx] = value & mask[idx];
    s->full = true;
}

static void dac_write_data(struct vga *s, uint8_t value)
{
    bool dac8 = vga_vbe_enabled(s) && (s->vbe[VBE_DISPI_INDEX_ENABLE] & VBE_DISPI_8BIT_DAC);
    s->dac_latch[s->dac_component++] = dac8 ? value : (value & 0x3f);
    if (s->dac_component < 3)
        return;
    memcpy(&s->dac[s->dac_write_index * 3u], s->dac_latch, 3);
    s->dac_write_index++;
    s->dac_component = 0;
    s->full = true;
}

static uint8_t dac_read_data(struct vga *s)
{
    uint8_t v = s->dac[s->dac_read_index * 3u + s->dac_component];
    if (++s->dac_component == 3) {
        s->dac_read_index++;
        s->dac_component = 0;
    }
    return v;
}

static void crtc_write(struct vga *s, uint8_t value)
{
    unsigned idx = s->crtc_index;
    if (idx >= VGA_CRTC_REGS)
        return;
    /* CRTC 0x11 bit 7 protects registers 0-7, except the line compare bit 8 in register 7 (bit 4). */
    if ((s->crtc[0x11] & 0x80) && idx <= 7) {
        if (idx == 7)
            s->crtc[7] = (uint8_t)((s->crtc[7] & ~0x10) | (value & 0x10));
        return;
    }
    if (s->crtc[idx] == value)
        return;
    s->crtc[idx] = value;
    /* The cursor's shape and place are drawn at each refresh without a full redraw. */
    if (idx != 0x0a && idx != 0x0b && idx != 0x0e && idx != 0x0f)
        s->full = true;
}

uint8_t vga_port_read(struct vga *s, uint16_t port)
{
    /* The CRTC and status 1 answer at 0x3Bx in monochrome and 0x3Dx in colour mode only. */
    if ((port >= 0x3b0 && port <= 0x3bf && is_color(s)) || (port >= 0x3d0 && port <= 0x3df && !is_color(s)))
        return 0xff;
    switch (port) {
    case 0x3c0: return s->ar_index;
    case 0x3c1: {
        unsigned idx = s->ar_index & 0x1f;
        return idx < VGA_AR_REGS ? s->ar[idx] : 0xff;
    }
    case 0x3c2: return 0x00; /* input status 0: no switch sense, no CRT interrupt */
    case 0x3c4: return s->seq_index;
    case 0x3c5: return s->seq_index < VGA_SEQ_REGS ? s->seq[s->seq_index] : 0xff;
    case 0x3c6: return s->pel_mask;
    case 0x3c7: return s->dac_state;
    case 0x3c8: return s->dac_write_index;
    case 0x3c9: return dac_read_data(s);
    case 0x3ca: return s->feature;
    case 0x3cc: return s->misc;
    case 0x3ce: return s->gr_index;
    case 0x3cf: return s->gr_index < VGA_GR_REGS ? s->gr[s->gr_index] : 0xff;
    case 0x3b4: case 0x3d4: return s->crtc_index;
    case 0x3b5: case 0x3d5: return s->crtc_index < VGA_CRTC_REGS ? s->crtc[s->crtc_index] : 0xff;
    case 0x3ba: case 0x3da: return status1_read(s);
    default: return 0xff;
    }
}

void vga_port_write(struct vga *s, uint16_t port, uint8_t value)
{
    if ((port >= 0x3b0 && port <= 0x3bf && is_color(s)) || (port >= 0x3d0 && port <= 0x3df && !is_color(s)))
        return;
    switch (port) {
    case 0x3c0: ar_write(s, value); break;
    case 0x3c2:
        if (s->misc != value)
            s->full = true;
        s->misc = value;
        break;
    case 0x3c4: s->seq_index = value & 0x07; break;
    case 0x3c5:
        if (s->seq_index < VGA_SEQ_REGS) {
            uint8_t v = value & g_seq_mask[s->seq_index];
            /* The map mask (2) only steers CPU writes; everything else changes the picture. */
            if (s->seq_index != 2 && s->seq[s->seq_index] != v)
                s->full = true;
            s->seq[s->seq_index] = v;
        }
        break;
    case 0x3c6:
        if (s->pel_mask != value)
            s->full = true;
        s->pel_mask = value;
        break;
    case 0x3c7:
        s->dac_read_index = value;
        s->dac_component = 0;
        s->dac_state = 0x03; /* the DAC is in read mode */
        break;
    case 0x3c8:
        s->dac_write_index = value;
        s->dac_component = 0;
        s->dac_state = 0x00;
        break;
    case 0x3c9: dac_write_data(s, value); break;
    case 0x3ce: s->gr_index = value & 0x0f; break;
    case 0x3cf:
        if (s->gr_index < VGA_GR_REGS) {
            uint8_t v = value & g_gr_mask[s->gr_index];
            /* Set/reset, compare, rotate, read map, bit mask: CPU access only.  Mode (5) and misc (6) change the picture. */
            if ((s->gr_index == 5 || s->gr_index == 6) && s->gr[s->gr_index] != v)
                s->full = true;
            s->gr[s->gr_index] = v;
        }
        break;
    case 0x3b4: case 0x3d4: s->crtc_index = value & 0x3f; break;
    case 0x3b5: case 0x3d5: crtc_write(s, value); break;
    case 0x3ba: case 0x3da: s->feature = value & 0x03; break;
    default: break;
    }
}

/* ---- The legacy memory window (0xA0000-0xBFFFF) ------------------------------------------ */

/*
 * The memory map select (graphics 6 bits 3:2) decides which part of the 128 KiB window the card
 * answers: false when offset (window-relative) is outside it; else *addr is relative to its start.
 */
static bool window_decode(const struct vga *s, uint32_t offset, uint32_t *addr)
{
    static const uint32_t base[4] = { 0x00000, 0x00000, 0x10000, 0x18000 };
    static const uint32_t size[4] = { 0x20000, 0x10000, 0x08000, 0x08000 };
    unsigned sel = (s->gr[6] >> 2) & 3;
    if (offset < base[sel] || offset - base[sel] >= size[sel])
        return false;
    *addr = offset - base[sel];
    return true;
}

static bool odd_even(const struct vga *s)
{
    /* Host odd/even addressing: graphics 5 bit 4 (the sequencer's bit 2 is its inverse; BIOSes set both). */
    return (s->gr[5] & 0x10) != 0;
}

static uint32_t latch_get(const struct vga *s, uint32_t plane_addr)
{
    const uint8_t *p = &s->vram[(plane_addr & (VGA_PLANE_BYTES - 1)) * 4u];
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void vram_mark(struct vga *s, uint32_t byte)
{
    mem_region_dirty_mark(s->vram_region, byte, 1);
    if ((byte & 3) == 2 && byte < VGA_LEGACY_BYTES)
        s->font_dirty = true; /* plane 2 holds the text fonts */
}

uint8_t vga_mem_read(struct vga *s, uint32_t offset)
{
    if (vga_vbe_enabled(s)) {
        /* Banked VBE access: a 64 KiB window at 0xA0000 onto video RAM at bank * 64 KiB. */
        uint64_t at = (uint64_t)s->vbe[VBE_DISPI_INDEX_BANK] * 0x10000u + offset;
        return offset < 0x10000u && at < s->vram_bytes ? s->vram[at] : 0xff;
    }
    uint32_t addr;
    if (!window_decode(s, offset, &addr))
        return 0xff;
    if (s->seq[4] & 0x08) /* chain 4: the low address bits pick the plane */
        return s->vram[addr & (VGA_LEGACY_BYTES - 1)];
    if (odd_even(s)) {
        unsigned plane = (s->gr[4] & 2) | (addr & 1);
        return s->vram[((addr & ~1u) & (VGA_PLANE_BYTES - 1)) * 4u + plane];
    }
    s->latch = latch_get(s, addr);
    if (!(s->gr[5] & 0x08)) /* read mode 0: the plane the read map select names */
        return (uint8_t)(s->latch >> (8 * (s->gr[4] & 3)));
    /* Read mode 1: a bit is 1 where every plane not masked by colour don't care matches the colour compare. */
    uint8_t result = 0xff;
    for (unsigned p = 0; p < 4; p++) {
        if (!(s->gr[7] & (1u << p)))
            continue;
        uint8_t plane = (uint8_t)(s->latch >> (8 * p));
        uint8_t want = (s->gr[2] & (1u << p)) ? 0xff : 0x00;
        result &= (uint8_t) ~(plane ^ want);
    }
    return result;
}

static uint8_t rotate_right(uint8_t v, unsigned n)
{
    n &= 7;
    return n ? (uint8_t)((v >> n) | (v << (8 - n))) : v;
}

/* One byte in every plane (bits 7:0 plane 0 ... 31:24 plane 3). */
static uint32_t expand4(unsigned bits)
{
    uint32_t r = 0;
    for (unsigned p = 0; p < 4; p++)
        if (bits & (1u << p))
            r |= 0xffu << (8 * p);
    return r;
}

/* The write path of FreeVGA's graphics controller diagram: write modes 0-3, logical op, bit mask. */
static uint32_t planar_value(struct vga *s, uint8_t value)
{
    unsigned mode = s->gr[5] & 3;
    uint32_t bit_mask = s->gr[8];
    uint32_t v;
    switch (mode) {
    case 1:
        return s->latch; /* the latches, unchanged (screen-to-screen copies) */
    case 2:
        v = expand4(value & 0x0f);
        break;
    case 3: {
        uint8_t r = rotate_right(value, s->gr[3]);
        bit_mask &= r;
        v = expand4(s->gr[0]);
        break;
    }
    default: {
        uint8_t r = rotate_right(value, s->gr[3]);
        v = (uint32_t)r * 0x01010101u;
        uint32_t esr = expand4(s->gr[1]);
        v = (v & ~esr) | (expand4(s->gr[0]) & esr);
        break;
    }
    }
    switch ((s->gr[3] >> 3) & 3) {
    case 1: v &= s->latch; break;
    case 2: v |= s->latch; break;
    case 3: v ^= s->latch; break;
    default: break;
    }
    uint32_t m = bit_mask * 0x01010101u;
    return (v & m) | (s->latch & ~m);
}

void vga_mem_write(struct vga *s, uint32_t offset, uint8_t value)
{
    if (vga_vbe_enabled(s)) {
        uint64_t at = (uint64_t)s->vbe[VBE_DISPI_INDEX_BANK] * 0x10000u + offset;
        if (offset < 0x10000u && at < s->vram_bytes) {
            s->vram[at] = value;
            mem_region_dirty_mark(s->vram_region, at, 1);
        }
        return;
    }
    uint32_t addr;
    if (!window_decode(s, offset, &addr))
        return;
    if (s->seq[4] & 0x08) {
        addr &= VGA_LEGACY_BYTES - 1;
        if (s->seq[2] & (1u << (addr & 3))) {
            s->vram[addr] = value;
            vram_mark(s, addr);
        }
        return;
    }
    if (odd_even(s)) {
        unsigned plane = addr & 1;
        if (s->seq[2] & (1u << plane)) {
            uint32_t at = ((addr & ~1u) & (VGA_PLANE_BYTES - 1)) * 4u + plane;
            s->vram[at] = value;
            vram_mark(s, at);
        }
        return;
    }
    uint32_t v = planar_value(s, value);
    uint32_t base = (addr & (VGA_PLANE_BYTES - 1)) * 4u;
    for (unsigned p = 0; p < 4; p++) {
        if (s->seq[2] & (1u << p)) {
            s->vram[base + p] = (uint8_t)(v >> (8 * p));
            vram_mark(s, base + p);
        }
    }
}

/* ---- Bochs VBE DISPI ---------------------------------------------------------------------- */

bool vga_vbe_enabled(const struct vga *s)
{
    return (s->vbe[VBE_DISPI_INDEX_ENABLE] & VBE_DISPI_ENABLED) != 0;
}

static uint32_t bpp_bytes(unsigned bpp)
{
    switch (bpp) {
    case 8: return 1;
    case 15: case 16: return 2;
    case 24: return 3;
    case 32: return 4;
    default: return 0;
    }
}

void vga_vbe_layout(const struct vga *s, uint32_t *bytes_pp, uint64_t *line_bytes, uint64_t *start)
{
    uint32_t b = bpp_bytes(s->vbe[VBE_DISPI_INDEX_BPP]);
    uint64_t width = RT_MAX(s->vbe[VBE_DISPI_INDEX_VIRT_WIDTH], s->vbe[VBE_DISPI_INDEX_XRES]);
    *bytes_pp = b;
    *line_bytes = width * b;
    *start = (uint64_t)s->vbe[VBE_DISPI_INDEX_Y_OFFSET] * *line_bytes + (uint64_t)s->vbe[VBE_DISPI_INDEX_X_OFFSET] * b;
}

uint16_t vga_dispi_read(struct vga *s, unsigned index)
{
    bool caps = s->vbe[VBE_DISPI_INDEX_ENABLE] & VBE_DISPI_GETCAPS;
    switch (index) {
    case VBE_DISPI_INDEX_XRES: return caps ? VBE_DISPI_MAX_XRES : s->vbe[index];
    case VBE_DISPI_INDEX_YRES: return caps ? VBE_DISPI_MAX_YRES : s->vbe[index];
    case VBE_DISPI_INDEX_BPP: return caps ? VBE_DISPI_MAX_BPP : s->vbe[index];
    case VBE_DISPI_INDEX_VIRT_HEIGHT: {
        uint32_t b;
        uint64_t line, start;
        vga_vbe_layout(s, &b, &line, &start);
        uint64_t h = line ? s->vram_bytes / line : 0;
        return (uint16_t)RT_MIN(h, 0xffffu);
    }
    case VBE_DISPI_INDEX_VIDEO_MEMORY_64K: return (uint16_t)(s->vram_bytes >> 16);
    default: return index < VBE_DISPI_REGS ? s->vbe[index] : 0;
    }
}

/* Entering a VBE mode: offsets back to 0, the virtual width to the mode's, the screen cleared unless asked not to. */
static void vbe_enable(struct vga *s, uint16_t value)
{
    s->vbe[VBE_DISPI_INDEX_VIRT_WIDTH] = s->vbe[VBE_DISPI_INDEX_XRES];
    s->vbe[VBE_DISPI_INDEX_X_OFFSET] = 0;
    s->vbe[VBE_DISPI_INDEX_Y_OFFSET] = 0;
    s->vbe[VBE_DISPI_INDEX_BANK] = 0;
    if (!(value & VBE_DISPI_NOCLEARMEM)) {
        uint64_t bytes = (uint64_t)s->vbe[VBE_DISPI_INDEX_XRES] * s->vbe[VBE_DISPI_INDEX_YRES] *
                         bpp_bytes(s->vbe[VBE_DISPI_INDEX_BPP]);
        bytes = RT_MIN(bytes, s->vram_bytes);
        memset(s->vram, 0, bytes);
        mem_region_dirty_mark(s->vram_region, 0, bytes);
    }
}

void vga_dispi_write(struct vga *s, unsigned index, uint16_t value)
{
    switch (index) {
    case VBE_DISPI_INDEX_ID:
        if (value >= VBE_DISPI_ID0 && value <= VBE_DISPI_ID5)
            s->vbe[index] = value;
        return;
    case VBE_DISPI_INDEX_XRES:
        if (value == 0 || value > VBE_DISPI_MAX_XRES) {
            LOG_DEBUG("VBE: x resolution %u refused (1-%u)", value, VBE_DISPI_MAX_XRES);
            return;
        }
        break;
    case VBE_DISPI_INDEX_YRES:
        if (value == 0 || value > VBE_DISPI_MAX_YRES) {
            LOG_DEBUG("VBE: y resolution %u refused (1-%u)", value, VBE_DISPI_MAX_YRES);
            return;
        }
        break;
    case VBE_DISPI_INDEX_BPP:
        if (value == 0)
            value = 8; /* Bochs reads 0 as 8 bits per pixel */
        if (!bpp_bytes(value)) {
            LOG_DEBUG("VBE: %u bits per pixel refused (8, 15, 16, 24, 32)", value);
            return;
        }
        break;
    case VBE_DISPI_INDEX_ENABLE: {
        value &= VBE_DISPI_ENABLED | VBE_DISPI_GETCAPS | VBE_DISPI_8BIT_DAC | VBE_DISPI_LFB_ENABLED |
                 VBE_DISPI_NOCLEARMEM;
        if ((value & VBE_DISPI_ENABLED) && !vga_vbe_enabled(s))
            vbe_enable(s, value);
        s->vbe[index] = value;
        s->full = true;
        return;
    }
    case VBE_DISPI_INDEX_BANK:
        if ((uint64_t)value * 0x10000u >= s->vram_bytes) {
            LOG_DEBUG("VBE: bank %u is past the %u KiB of video memory", value, s->vram_bytes >> 10);
            return;
        }
        s->vbe[index] = value;
        return; /* the bank steers CPU access only */
    case VBE_DISPI_INDEX_VIRT_WIDTH:
        if (value == 0)
            return;
        break;
    case VBE_DISPI_INDEX_X_OFFSET:
    case VBE_DISPI_INDEX_Y_OFFSET:
        break;
    default:
        return; /* VIRT_HEIGHT and VIDEO_MEMORY_64K are computed; others do not exist */
    }
    if (s->vbe[index] != value)
        s->full = true;
    s->vbe[index] = value;
}

/* ---- Reset ---------------------------------------------------------------------------------- */

void vga_regs_reset(struct vga *s)
{
    s->misc = 0;
    s->feature = 0;
    s->seq_index = s->gr_index = s->crtc_index = 0;
    memset(s->seq, 0, sizeof(s->seq));
    memset(s->gr, 0, sizeof(s->gr));
    memset(s->crtc, 0, sizeof(s->crtc));
    memset(s->ar, 0, sizeof(s->ar));
    s->ar_index = 0; /* PAS clear: blank until the BIOS sets a mode */
    s->ar_flipflop = false;
    s->pel_mask = 0xff;
    s->dac_read_index = s->dac_write_index = s->dac_component = s->dac_state = 0;
    memset(s->dac_latch, 0, sizeof(s->dac_latch));
    memset(s->dac, 0, sizeof(s->dac));
    s->latch = 0;
    s->vbe_index = 0;
    memset(s->vbe, 0, sizeof(s->vbe));
    s->vbe[VBE_DISPI_INDEX_ID] = VBE_DISPI_ID5;
    s->vbe[VBE_DISPI_INDEX_XRES] = 640;
    s->vbe[VBE_DISPI_INDEX_YRES] = 480;
    s->vbe[VBE_DISPI_INDEX_BPP] = 8;
    s->full = true;
    s->font_dirty = true;
}
