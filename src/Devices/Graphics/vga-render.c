/* vga-render.c - the VGA/VBE card's scan-out: text, planar 16-colour, CGA 4-colour, 256-colour and VBE modes rendered into the display's XRGB surface, only where something changed. */
/*
 * The geometry comes from the CRTC as FreeVGA describes it: (horizontal display end + 1)
 * character clocks of 8 or 9 dots, (vertical display end + 1) scan lines, each text row or
 * graphics line repeated (maximum scan line + 1) times and doubled by double scan.  The
 * surface is the picture without the repetition: mode 03h is 720x400, mode 12h 640x480,
 * mode 13h 320x200.  Memory addresses follow the convention of vga-regs.c: plane address a
 * of plane p at video RAM byte 4 * a + p; in text modes the CRTC runs in word mode, so the
 * character count n is plane address 2 * n (the CPU's even bytes in plane 0, odd in plane 1).
 *
 * What changed: register writes that alter the picture set s->full; the video RAM dirty log
 * (mem_region_dirty_fetch) says which pages the guest wrote, and a graphics line is drawn
 * again when a page it reads was written.  Text mode keeps a shadow of every cell (character,
 * attribute, cursor and blink state) and redraws the cells whose shadow differs, so cursor
 * moves and the blink phase cost one cell each; a write to plane 2 (the fonts) redraws all.
 *
 * Every read of video RAM is masked or checked against its size, and every write to the
 * surface is inside the size it was given, whatever the registers say.
 */
#include <stdlib.h>
#include <string.h>

#include "vga-internal.h"

#define LOG_COMPONENT "vga"

/* Cursor and character blink (the VGA blinks the cursor every 16 frames and characters every 32 at ~60 Hz). */
#define VGA_CURSOR_BLINK_NS 266666667ull
#define VGA_CHAR_BLINK_NS   533333333ull
#define VGA_BLANK_WIDTH     640
#define VGA_BLANK_HEIGHT    480

/* ---- Colours ------------------------------------------------------------------------------ */

static uint32_t dac_component(unsigned v, bool dac8)
{
    return dac8 ? (v & 0xff) : ((v & 0x3f) << 2 | (v & 0x3f) >> 4);
}

static void palette_update(struct vga *s)
{
    bool dac8 = vga_vbe_enabled(s) && (s->vbe[VBE_DISPI_INDEX_ENABLE] & VBE_DISPI_8BIT_DAC);
    for (unsigned i = 0; i < 256; i++) {
        const uint8_t *e = &s->dac[(i & s->pel_mask) * 3u];
        s->palette[i] = dac_component(e[0], dac8) << 16 | dac_component(e[1], dac8) << 8 | dac_component(e[2], dac8);
    }
}

/* A 4-bit colour through the attribute controller (colour plane enable, palette, colour select) to a DAC index. */
static unsigned attr_to_dac(const struct vga *s, unsigned color)
{
    unsigned c = s->ar[color & s->ar[0x12] & 0x0f];
    unsigned idx = (s->ar[0x10] & 0x80) ? ((s->ar[0x14] & 0x03u) << 4 | (c & 0x0f)) : (c & 0x3f);
    return idx | (s->ar[0x14] & 0x0cu) << 4;
}

/* ---- Geometry ------------------------------------------------------------------------------- */

void vga_geom_compute(const struct vga *s, struct vga_geom *g)
{
    memset(g, 0, sizeof(*g));
    g->mode = VGA_MODE_BLANK;
    if (vga_vbe_enabled(s)) {
        uint32_t b;
        uint64_t line, start;
        vga_vbe_layout(s, &b, &line, &start);
        uint32_t w = s->vbe[VBE_DISPI_INDEX_XRES], h = s->vbe[VBE_DISPI_INDEX_YRES];
        if (!b || w == 0 || h == 0 || w > VBE_DISPI_MAX_XRES || h > VBE_DISPI_MAX_YRES)
            return;
        g->mode = VGA_MODE_VBE;
        g->width = w;
        g->height = h;
        g->bpp = s->vbe[VBE_DISPI_INDEX_BPP];
        g->bytes_pp = b;
        g->vbe_line_bytes = line;
        g->vbe_start = start;
        return;
    }
    /* The attribute controller's PAS bit clear or the sequencer's screen-off bit: the screen is blank. */
    if (!(s->ar_index & 0x20) || (s->seq[1] & 0x20))
        return;
    uint32_t lines = (s->crtc[0x12] | (s->crtc[0x07] & 0x02u) << 7 | (s->crtc[0x07] & 0x40u) << 3) + 1;
    uint32_t msl = (s->crtc[0x09] & 0x1fu) + 1;
    uint32_t dscan = (s->crtc[0x09] & 0x80) ? 2 : 1;
    uint32_t chars = s->crtc[0x01] + 1u;
    g->start = (uint32_t)s->crtc[0x0c] << 8 | s->crtc[0x0d];
    g->line_addrs = s->crtc[0x13] * 2u;
    g->msl = msl;
    if (!(s->gr[6] & 0x01)) {
        g->cell_w = (s->seq[1] & 0x01) ? 8 : 9;
        g->cell_h = msl;
        g->cols = chars;
        g->rows = lines / (msl * dscan);
        if (g->rows == 0)
            return;
        g->mode = VGA_MODE_TEXT;
        g->width = g->cols * g->cell_w;
        g->height = g->rows * g->cell_h;
        return;
    }
    g->cga_banks = (s->crtc[0x17] & 0x03) != 0x03;
    g->height = g->cga_banks ? lines / dscan : lines / (dscan * msl);
    if (g->height == 0)
        return;
    if (s->gr[5] & 0x40) {
        g->mode = VGA_MODE_256;
        g->width = chars * 4; /* each pixel is two dot clocks wide */
    } else if (s->gr[5] & 0x20) {
        g->mode = VGA_MODE_CGA4;
        g->width = chars * 8;
    } else {
        g->mode = VGA_MODE_PLANAR;
        g->width = chars * 8;
    }
}

/* ---- Dirty tracking --------------------------------------------------------------------------- */

static bool page_dirty(const struct vga *s, uint64_t page)
{
    size_t w = (size_t)(page / 64);
    return w < s->dirty_words && (s->dirty[w] >> (page % 64)) & 1;
}

/* Whether a video RAM byte range [lo, hi) touches a page written since the last refresh. */
static bool range_dirty(const struct vga *s, uint64_t lo, uint64_t hi)
{
    if (hi <= lo)
        return false;
    for (uint64_t p = lo >> 12; p <= (hi - 1) >> 12; p++)
        if (page_dirty(s, p))
            return true;
    return false;
}

/* The same for n plane addresses from a, which wrap at the end of the 64 KiB planes. */
static bool planes_dirty(const struct vga *s, uint32_t a, uint32_t n)
{
    a &= VGA_PLANE_BYTES - 1;
    if (n >= VGA_PLANE_BYTES)
        return range_dirty(s, 0, VGA_LEGACY_BYTES);
    if (a + n <= VGA_PLANE_BYTES)
        return range_dirty(s, (uint64_t)a * 4, (uint64_t)(a + n) * 4);
    return range_dirty(s, (uint64_t)a * 4, VGA_LEGACY_BYTES) || range_dirty(s, 0, (uint64_t)(a + n - VGA_PLANE_BYTES) * 4);
}

/* Consecutive redrawn lines become one rectangle. */
struct dirty_run {
    struct display *dpy;
    uint32_t width, first, count;
};

static void run_add(struct dirty_run *r, uint32_t y)
{
    if (r->count && r->first + r->count == y) {
        r->count++;
        return;
    }
    if (r->count)
        dpy_dirty(r->dpy, 0, r->first, r->width, r->count);
    r->first = y;
    r->count = 1;
}

static void run_flush(struct dirty_run *r)
{
    if (r->count)
        dpy_dirty(r->dpy, 0, r->first, r->width, r->count);
    r->count = 0;
}

/* ---- Text --------------------------------------------------------------------------------- */

/* Plane 2 offsets of the eight character maps (sequencer 3, FreeVGA). */
static const uint32_t g_font_base[8] = { 0x0000, 0x4000, 0x8000, 0xc000, 0x2000, 0x6000, 0xa000, 0xe000 };

static uint8_t font_row(const struct vga *s, uint32_t base, unsigned ch, unsigned row)
{
    if (row >= 32)
        return 0;
    uint32_t a = (base + ch * 32u + row) & (VGA_PLANE_BYTES - 1);
    return s->vram[a * 4 + 2];
}

struct text_cell {
    unsigned ch, attr;
    bool cursor, blink_off;
    unsigned cur_start, cur_end;
};

static void draw_cell(const struct vga *s, const struct vga_geom *g, struct dpy_surface *surf, uint32_t col,
                      uint32_t row, const struct text_cell *c)
{
    unsigned sr3 = s->seq[3];
    unsigned map_a = ((sr3 >> 5) & 1) << 2 | ((sr3 >> 2) & 3);
    unsigned map_b = ((sr3 >> 4) & 1) << 2 | (sr3 & 3);
    uint32_t font = g_font_base[(c->attr & 0x08) ? map_a : map_b];
    bool blink_enabled = s->ar[0x10] & 0x08;
    uint32_t fg = s->palette[attr_to_dac(s, c->attr & 0x0f)];
    uint32_t bg = s->palette[attr_to_dac(s, blink_enabled ? (c->attr >> 4) & 7 : c->attr >> 4)];
    if (blink_enabled && (c->attr & 0x80) && c->blink_off)
        fg = bg;
    bool line_gfx = g->cell_w == 9 && (s->ar[0x10] & 0x04) && c->ch >= 0xc0 && c->ch <= 0xdf;
    uint32_t x0 = col * g->cell_w, y0 = row * g->cell_h;
    for (uint32_t i = 0; i < g->cell_h; i++) {
        if (y0 + i >= surf->height)
            break;
        unsigned bits = font_row(s, font, c->ch, i);
        unsigned ninth = line_gfx ? bits & 1 : 0;
        if (c->cursor && i >= c->cur_start && i <= c->cur_end)
            bits = 0xff, ninth = 1;
        uint32_t *px = (uint32_t *)(surf->pixels + (size_t)(y0 + i) * surf->stride_bytes) + x0;
        for (unsigned b = 0; b < 8 && x0 + b < surf->width; b++)
            px[b] = (bits & (0x80u >> b)) ? fg : bg;
        if (g->cell_w == 9 && x0 + 8 < surf->width)
            px[8] = ninth ? fg : bg;
    }
}

static uint32_t cell_key(const struct text_cell *c)
{
    return c->ch | c->attr << 8 | (uint32_t)c->cursor << 16 | (uint32_t)c->blink_off << 17 |
           (c->cursor ? (c->cur_start << 18 | c->cur_end << 23) : 0);
}

static void render_text(struct vga *s, struct display *dpy, struct dpy_surface *surf, const struct vga_geom *g,
                        bool full)
{
    size_t cells = (size_t)g->cols * g->rows;
    if (cells != s->text_cells) {
        uint32_t *shadow = realloc(s->text_shadow, cells * sizeof(*shadow));
        if (!shadow)
            return;
        s->text_shadow = shadow;
        s->text_cells = cells;
        full = true;
    }
    if (s->font_dirty)
        full = true;
    uint64_t now = tm_now_ns(s->vm);
    bool cursor_phase = ((now / VGA_CURSOR_BLINK_NS) & 1) == 0;
    bool blink_off = ((now / VGA_CHAR_BLINK_NS) & 1) != 0;
    uint32_t cur_loc = (uint32_t)s->crtc[0x0e] << 8 | s->crtc[0x0f];
    unsigned cur_start = s->crtc[0x0a] & 0x1f, cur_end = s->crtc[0x0b] & 0x1f;
    bool cursor_shown = !(s->crtc[0x0a] & 0x20) && cur_start <= cur_end && cur_start < g->cell_h && cursor_phase;
    bool blink_enabled = s->ar[0x10] & 0x08;
    for (uint32_t r = 0; r < g->rows; r++) {
        uint32_t first = UINT32_MAX, last = 0;
        for (uint32_t col = 0; col < g->cols; col++) {
            uint32_t count = g->start + r * g->line_addrs + col;
            uint32_t a = (count * 2) & (VGA_PLANE_BYTES - 1);
            struct text_cell c = {
                .ch = s->vram[a * 4],
                .attr = s->vram[a * 4 + 1],
                .cursor = cursor_shown && ((count ^ cur_loc) & 0xffff) == 0,
                .cur_start = cur_start,
                .cur_end = RT_MIN(cur_end, g->cell_h - 1),
            };
            c.blink_off = blink_enabled && (c.attr & 0x80) && blink_off;
            uint32_t key = cell_key(&c);
            size_t i = (size_t)r * g->cols + col;
            if (!full && s->text_shadow[i] == key)
                continue;
            s->text_shadow[i] = key;
            draw_cell(s, g, surf, col, r, &c);
            if (first == UINT32_MAX)
                first = col;
            last = col;
        }
        if (first != UINT32_MAX)
            dpy_dirty(dpy, first * g->cell_w, r * g->cell_h, (last - first + 1) * g->cell_w, g->cell_h);
    }
}

/* ---- Legacy graphics ---------------------------------------------------------------------------- */

/* Plane address of output line y's first byte, with the CGA bank bits from the row scan counter. */
static uint32_t line_addr(const struct vga *s, const struct vga_geom *g, uint32_t y)
{
    if (!g->cga_banks)
        return g->start + y * g->line_addrs;
    uint32_t scan = y % g->msl;
    uint32_t a = g->start + (y / g->msl) * g->line_addrs;
    if (!(s->crtc[0x17] & 0x01) && (scan & 1))
        a |= 0x2000; /* row scan bit 0 replaces address bit 13 */
    if (!(s->crtc[0x17] & 0x02) && (scan & 2))
        a |= 0x4000; /* row scan bit 1 replaces address bit 14 */
    return a;
}

static const uint8_t *plane_bytes(const struct vga *s, uint32_t a)
{
    return &s->vram[(a & (VGA_PLANE_BYTES - 1)) * 4];
}

static void draw_line_planar(const struct vga *s, uint32_t *px, uint32_t width, uint32_t a)
{
    for (uint32_t x = 0; x < width; x += 8) {
        const uint8_t *p = plane_bytes(s, a + x / 8);
        for (unsigned b = 0; b < 8 && x + b < width; b++) {
            unsigned sh = 7 - b;
            unsigned c = ((p[0] >> sh) & 1) | ((p[1] >> sh) & 1) << 1 | ((p[2] >> sh) & 1) << 2 | ((p[3] >> sh) & 1) << 3;
            px[x + b] = s->palette[attr_to_dac(s, c)];
        }
    }
}

static void draw_line_cga4(const struct vga *s, uint32_t *px, uint32_t width, uint32_t a)
{
    /* Interleaved shift (graphics 5 bit 5): 8 pixels from the plane 0 then plane 1 byte of an even address. */
    for (uint32_t x = 0; x < width; x++) {
        const uint8_t *p = plane_bytes(s, a + (x / 8) * 2);
        unsigned k = x & 7;
        unsigned c = (p[k >> 2] >> (6 - 2 * (k & 3))) & 3;
        px[x] = s->palette[attr_to_dac(s, c)];
    }
}

static void draw_line_256(const struct vga *s, uint32_t *px, uint32_t width, uint32_t a)
{
    uint32_t base = (a & (VGA_PLANE_BYTES - 1)) * 4;
    for (uint32_t x = 0; x < width; x++)
        px[x] = s->palette[s->vram[(base + x) & (VGA_LEGACY_BYTES - 1)]];
}

/* Plane addresses one output line reads. */
static uint32_t line_span(const struct vga_geom *g)
{
    switch (g->mode) {
    case VGA_MODE_PLANAR: return (g->width + 7) / 8;
    case VGA_MODE_CGA4: return (g->width + 7) / 8 * 2;
    default: return (g->width + 3) / 4;
    }
}

static void render_gfx(struct vga *s, struct display *dpy, struct dpy_surface *surf, const struct vga_geom *g,
                       bool full)
{
    struct dirty_run run = { .dpy = dpy, .width = surf->width };
    uint32_t span = line_span(g);
    for (uint32_t y = 0; y < surf->height; y++) {
        uint32_t a = line_addr(s, g, y);
        if (!full && !planes_dirty(s, a, span))
            continue;
        uint32_t *px = (uint32_t *)(surf->pixels + (size_t)y * surf->stride_bytes);
        if (g->mode == VGA_MODE_PLANAR)
            draw_line_planar(s, px, surf->width, a);
        else if (g->mode == VGA_MODE_CGA4)
            draw_line_cga4(s, px, surf->width, a);
        else
            draw_line_256(s, px, surf->width, a);
        run_add(&run, y);
    }
    run_flush(&run);
}

/* ---- VBE ------------------------------------------------------------------------------------ */

static uint32_t expand5(unsigned v)
{
    return (v << 3 | v >> 2) & 0xff;
}

static uint32_t expand6(unsigned v)
{
    return (v << 2 | v >> 4) & 0xff;
}

static void draw_line_vbe(const struct vga *s, uint32_t *px, uint32_t width, const uint8_t *src, unsigned bpp)
{
    switch (bpp) {
    case 8:
        for (uint32_t x = 0; x < width; x++)
            px[x] = s->palette[src[x]];
        break;
    case 15:
        for (uint32_t x = 0; x < width; x++) {
            unsigned v = src[2 * x] | src[2 * x + 1] << 8;
            px[x] = expand5((v >> 10) & 31) << 16 | expand5((v >> 5) & 31) << 8 | expand5(v & 31);
        }
        break;
    case 16:
        for (uint32_t x = 0; x < width; x++) {
            unsigned v = src[2 * x] | src[2 * x + 1] << 8;
            px[x] = expand5((v >> 11) & 31) << 16 | expand6((v >> 5) & 63) << 8 | expand5(v & 31);
        }
        break;
    case 24:
        for (uint32_t x = 0; x < width; x++)
            px[x] = (uint32_t)src[3 * x + 2] << 16 | (uint32_t)src[3 * x + 1] << 8 | src[3 * x];
        break;
    default:
        for (uint32_t x = 0; x < width; x++)
            px[x] = (uint32_t)src[4 * x + 2] << 16 | (uint32_t)src[4 * x + 1] << 8 | src[4 * x];
        break;
    }
}

static void render_vbe(struct vga *s, struct display *dpy, struct dpy_surface *surf, const struct vga_geom *g,
                       bool full)
{
    struct dirty_run run = { .dpy = dpy, .width = surf->width };
    uint64_t row_bytes = (uint64_t)surf->width * g->bytes_pp;
    for (uint32_t y = 0; y < surf->height; y++) {
        uint64_t off = g->vbe_start + (uint64_t)y * g->vbe_line_bytes;
        uint32_t *px = (uint32_t *)(surf->pixels + (size_t)y * surf->stride_bytes);
        if (off > s->vram_bytes || row_bytes > s->vram_bytes - off) {
            /* Offsets or a virtual width that reach past video RAM: this line shows nothing. */
            if (full) {
                memset(px, 0, (size_t)surf->width * 4);
                run_add(&run, y);
            }
            continue;
        }
        if (!full && !range_dirty(s, off, off + row_bytes))
            continue;
        draw_line_vbe(s, px, surf->width, s->vram + off, g->bpp);
        run_add(&run, y);
    }
    run_flush(&run);
}

/* ---- Refresh ------------------------------------------------------------------------------------ */

static void fetch_dirty(struct vga *s)
{
    if (!s->dirty_words)
        return;
    if (mem_region_dirty_fetch(s->vram_region, s->dirty, s->dirty_words) != 0 || vm_get_exec(s->vm) == VM_EXEC_KVM) {
        /* No log (KVM does not feed the region's dirty bitmap yet, see DESIGN-NOTES): everything may have changed. */
        memset(s->dirty, 0xff, s->dirty_words * sizeof(*s->dirty));
    }
}

void vga_refresh(void *opaque, struct display *dpy, bool full)
{
    struct vga *s = opaque;
    struct vga_geom g;
    vga_geom_compute(s, &g);
    fetch_dirty(s);
    full = full || s->full || memcmp(&g, &s->geom, sizeof(g)) != 0;
    struct dpy_surface *surf = dpy_surface_get(dpy);
    uint32_t want_w = g.width, want_h = g.height;
    if (g.mode == VGA_MODE_BLANK) {
        /* A blanked screen keeps its size (a mode switch blanks it for a moment): black, not gone. */
        want_w = surf && surf->width ? surf->width : VGA_BLANK_WIDTH;
        want_h = surf && surf->height ? surf->height : VGA_BLANK_HEIGHT;
    }
    if (!surf || surf->width != want_w || surf->height != want_h) {
        if (dpy_resize(dpy, want_w, want_h) != 0)
            return; /* no memory for the surface: try again at the next refresh */
        surf = dpy_surface_get(dpy);
        full = true;
    }
    if (!surf || !surf->pixels || surf->width != want_w || surf->height != want_h)
        return;
    if (full)
        palette_update(s);
    switch (g.mode) {
    case VGA_MODE_TEXT: render_text(s, dpy, surf, &g, full); break;
    case VGA_MODE_PLANAR: case VGA_MODE_CGA4: case VGA_MODE_256: render_gfx(s, dpy, surf, &g, full); break;
    case VGA_MODE_VBE: render_vbe(s, dpy, surf, &g, full); break;
    default:
        if (full) {
            for (uint32_t y = 0; y < surf->height; y++)
                memset(surf->pixels + (size_t)y * surf->stride_bytes, 0, (size_t)surf->width * 4);
            dpy_dirty(dpy, 0, 0, surf->width, surf->height);
        }
        break;
    }
    s->geom = g;
    s->full = false;
    s->font_dirty = false;
}

void vga_render_fini(struct vga *s)
{
    free(s->text_shadow);
    s->text_shadow = NULL;
    s->text_cells = 0;
}
