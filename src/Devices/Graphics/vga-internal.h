/* vga-internal.h - the VGA/VBE card's state shared by its register (vga-regs.c), rendering (vga-render.c) and device (vga.c) files. */
#ifndef VIREO_VGA_INTERNAL_H
#define VIREO_VGA_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "vireo/display.h"
#include "vireo/pci.h"
#include "vireo/vm.h"

/* Register file sizes of the standard VGA (FreeVGA: sequencer, graphics, CRTC, attribute controller). */
#define VGA_SEQ_REGS  5
#define VGA_GR_REGS   9
#define VGA_CRTC_REGS 25
#define VGA_AR_REGS   21

/* The legacy planes: four of 64 KiB, stored interleaved (plane p of address a at byte 4 * a + p). */
#define VGA_PLANE_BYTES  0x10000u
#define VGA_LEGACY_BYTES 0x40000u
#define VGA_WINDOW_GPA   0xa0000u
#define VGA_WINDOW_BYTES 0x20000u

/* Bochs VBE DISPI registers (index port 0x1CE, data 0x1CF; MMIO BAR offset 0x500 + 2 * index). */
enum {
    VBE_DISPI_INDEX_ID = 0,
    VBE_DISPI_INDEX_XRES,
    VBE_DISPI_INDEX_YRES,
    VBE_DISPI_INDEX_BPP,
    VBE_DISPI_INDEX_ENABLE,
    VBE_DISPI_INDEX_BANK,
    VBE_DISPI_INDEX_VIRT_WIDTH,
    VBE_DISPI_INDEX_VIRT_HEIGHT,
    VBE_DISPI_INDEX_X_OFFSET,
    VBE_DISPI_INDEX_Y_OFFSET,
    VBE_DISPI_INDEX_VIDEO_MEMORY_64K,
    VBE_DISPI_REGS,
};
#define VBE_DISPI_ID0         0xb0c0u
#define VBE_DISPI_ID5         0xb0c5u
#define VBE_DISPI_ENABLED     0x01u
#define VBE_DISPI_GETCAPS     0x02u
#define VBE_DISPI_8BIT_DAC    0x20u
#define VBE_DISPI_LFB_ENABLED 0x40u
#define VBE_DISPI_NOCLEARMEM  0x80u
#define VBE_DISPI_MAX_XRES    2560u
#define VBE_DISPI_MAX_YRES    1600u
#define VBE_DISPI_MAX_BPP     32u

/* The stdvga PCI device's MMIO BAR (BAR2, 4 KiB): VGA ports 0x3C0-0x3DF at 0x400, DISPI registers at 0x500. */
#define VGA_MMIO_BAR_BYTES 0x1000u
#define VGA_MMIO_VGA_PORTS 0x400u
#define VGA_MMIO_DISPI     0x500u

/* What the screen shows, derived from the registers at each refresh. */
enum vga_mode {
    VGA_MODE_BLANK = 0, /* screen off, palette access by the CPU, or nonsense geometry */
    VGA_MODE_TEXT,
    VGA_MODE_PLANAR,    /* 16 colours from four planes (modes 0Dh-12h) */
    VGA_MODE_CGA4,      /* interleaved shift mode: 4 colours, 2 bits a pixel (modes 4/5) */
    VGA_MODE_256,       /* 256 colours, one byte a pixel (mode 13h, mode X) */
    VGA_MODE_VBE,
};

struct vga_geom {
    enum vga_mode mode;
    uint32_t width, height;    /* output pixels */
    /* text */
    uint32_t cols, rows, cell_w, cell_h;
    /* legacy graphics: plane-address units; rows repeat (msl) unless the CGA bank bits split them */
    uint32_t start, line_addrs, repeat;
    bool cga_banks;            /* CRTC 0x17 bit 0 clear: row-scan bit 0 selects plane address bit 13 */
    uint32_t msl;
    /* VBE */
    uint32_t bpp, bytes_pp;
    uint64_t vbe_start, vbe_line_bytes;
};

struct vga {
    struct pdm_dev *dev;
    struct vm *vm;
    uint32_t vram_bytes;
    uint8_t *vram;
    struct mem_region *vram_region; /* RAM: the linear framebuffer (BAR0) */
    struct mem_region *legacy;      /* MMIO: 0xA0000-0xBFFFF */
    struct mem_region *mmio;        /* MMIO: BAR2 */
    struct mem_region *rom;         /* the VGA BIOS (expansion ROM BAR) */
    struct io_region *io_vga;       /* 0x3B0-0x3DF */
    struct io_region *io_vbe;       /* 0x1CE-0x1CF */
    struct pci_dev *pci;
    struct display *dpy;

    /* Guest-visible registers (saved). */
    uint8_t misc, feature;
    uint8_t seq_index, seq[VGA_SEQ_REGS];
    uint8_t gr_index, gr[VGA_GR_REGS];
    uint8_t crtc_index, crtc[VGA_CRTC_REGS];
    uint8_t ar_index;               /* bits 4:0 the index, bit 5 PAS (palette address source: the screen shows) */
    bool ar_flipflop;               /* true: the next 0x3C0 write is data */
    uint8_t ar[VGA_AR_REGS];
    uint8_t pel_mask;
    uint8_t dac_read_index, dac_write_index, dac_component, dac_state;
    uint8_t dac_latch[3];
    uint8_t dac[768];
    uint32_t latch;                 /* the four plane bytes of the last planar read */
    uint16_t vbe_index;
    uint16_t vbe[VBE_DISPI_REGS];

    /* Rendering (not saved: a load asks for a full refresh). */
    bool full;                      /* registers changed: render everything */
    bool font_dirty;                /* plane 2 written through the legacy window */
    struct vga_geom geom;           /* what was rendered last */
    uint32_t palette[256];          /* XRGB of each DAC entry through the pel mask */
    uint64_t *dirty;                /* the VRAM dirty log of this refresh */
    size_t dirty_words;
    uint32_t *text_shadow;          /* per cell: char | attr << 8 as last rendered */
    size_t text_cells;
    uint32_t text_cursor;           /* cell index of the cursor drawn last, UINT32_MAX: none */
    bool blink_on, cursor_on;       /* the phases last rendered */
};

/* vga-regs.c */
uint8_t vga_port_read(struct vga *s, uint16_t port);
void vga_port_write(struct vga *s, uint16_t port, uint8_t value);
uint8_t vga_mem_read(struct vga *s, uint32_t offset);
void vga_mem_write(struct vga *s, uint32_t offset, uint8_t value);
uint16_t vga_dispi_read(struct vga *s, unsigned index);
void vga_dispi_write(struct vga *s, unsigned index, uint16_t value);
bool vga_vbe_enabled(const struct vga *s);
/* The VBE scan-out layout: bytes per pixel (0 for an unsupported depth), line pitch and first byte. */
void vga_vbe_layout(const struct vga *s, uint32_t *bytes_pp, uint64_t *line_bytes, uint64_t *start);
void vga_regs_reset(struct vga *s);

/* vga-render.c */
void vga_refresh(void *opaque, struct display *dpy, bool full);
/* Works out the mode and geometry from the registers (pure: tests and the refresh share it). */
void vga_geom_compute(const struct vga *s, struct vga_geom *g);
void vga_render_fini(struct vga *s);

#endif
