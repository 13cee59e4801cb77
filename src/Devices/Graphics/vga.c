/* vga.c - the standard VGA card with Bochs VBE extensions as a PCI device (1234:1111): ports, legacy window, linear framebuffer, MMIO BAR, VGA BIOS ROM, display and saved state. */
/*
 * Design: one device, three files.  vga-regs.c is the register state machine and the CPU's
 * view of video memory, vga-render.c turns the registers and video RAM into the display's
 * surface, and this file wires the card into the machine:
 *
 *   - ports 0x3B0-0x3DF (the VGA registers) and 0x1CE-0x1D0 (the DISPI index and data; 0x1D0
 *     is Bochs's second data port);
 *   - the legacy window 0xA0000-0xBFFFF as MMIO, mapped at the RAM priority into the hole the
 *     board leaves (VGA memory is not RAM: planes, latches and write modes sit in between);
 *   - PCI function (the "stdvga" layout QEMU documents, which bochs-drm and SeaBIOS expect):
 *     BAR0 the prefetchable linear framebuffer, which is the video RAM itself (a RAM region,
 *     so guest writes cost nothing and land in its dirty log); BAR2 4 KiB of MMIO with the VGA
 *     ports at 0x400 and the DISPI registers at 0x500; the expansion ROM BAR with the VGA BIOS.
 *
 * The VGA BIOS goes in the PCI expansion ROM rather than the fw_cfg file "vgaroms/...":
 * SeaBIOS runs a VGA-class function's ROM from its ROM BAR, the ROM then belongs to the card
 * (a guest OS can read it there, as on hardware) and the device needs nothing from the board.
 *
 * Video RAM ("vram_mib", a power of two from 4 to 256) is a RAM region, so the VM's saved
 * state carries it with the rest of RAM; this device's unit holds the registers.  A reset
 * leaves video RAM as it is, as on hardware.
 */
#include <stdlib.h>
#include <string.h>

#include "vireo/devices.h"
#include "vga-internal.h"

#define LOG_COMPONENT "vga"

#define VGA_SSM_VERSION   1
#define VGA_DEFAULT_ROM   "/usr/share/seabios/vgabios-stdvga.bin"
#define VGA_ROM_MAX_BYTES (1u << 20)
#define VGA_PCI_VENDOR    0x1234
#define VGA_PCI_DEVICE    0x1111
#define VGA_PCI_CLASS     0x030000 /* display controller, VGA compatible */
#define VGA_DEFAULT_SLOT  2        /* DESIGN-NOTES keeps 00:02.0 for graphics */

/* ---- Port and MMIO handlers ------------------------------------------------------------------ */

static uint64_t vga_io_read(void *opaque, uint64_t offset, unsigned size)
{
    (void)size;
    return vga_port_read(opaque, (uint16_t)(0x3b0 + offset));
}

static void vga_io_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    (void)size;
    vga_port_write(opaque, (uint16_t)(0x3b0 + offset), (uint8_t)value);
}

/* Byte ports: a 16-bit OUT to 0x3C4/0x3CE/0x3D4 is index then data, which the split into bytes gives. */
static const struct io_ops g_vga_io_ops = { .read = vga_io_read, .write = vga_io_write, .min_access = 1, .max_access = 1 };

static uint64_t vbe_io_read(void *opaque, uint64_t offset, unsigned size)
{
    struct vga *s = opaque;
    uint16_t v = offset == 0 ? s->vbe_index : vga_dispi_read(s, s->vbe_index);
    return size == 1 ? (v & 0xffu) : v;
}

static void vbe_io_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    struct vga *s = opaque;
    uint16_t v = (uint16_t)(size == 1 ? (value & 0xff) : value);
    if (offset == 0)
        s->vbe_index = v;
    else
        vga_dispi_write(s, s->vbe_index, v);
}

static const struct io_ops g_vbe_io_ops = { .read = vbe_io_read, .write = vbe_io_write, .min_access = 1, .max_access = 2 };

static uint64_t legacy_read(void *opaque, uint64_t offset, unsigned size)
{
    (void)size;
    return vga_mem_read(opaque, (uint32_t)offset);
}

static void legacy_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    (void)size;
    vga_mem_write(opaque, (uint32_t)offset, (uint8_t)value);
}

/* Planar memory is a byte-wide path (the latches and write modes work per byte). */
static const struct io_ops g_legacy_ops = { .read = legacy_read, .write = legacy_write, .min_access = 1, .max_access = 1 };

static uint64_t mmio_read(void *opaque, uint64_t offset, unsigned size)
{
    struct vga *s = opaque;
    if (offset >= VGA_MMIO_VGA_PORTS && offset < VGA_MMIO_VGA_PORTS + 0x20) {
        uint64_t v = 0;
        for (unsigned i = 0; i < size && offset + i < VGA_MMIO_VGA_PORTS + 0x20; i++)
            v |= (uint64_t)vga_port_read(s, (uint16_t)(0x3c0 + offset - VGA_MMIO_VGA_PORTS + i)) << (8 * i);
        return v;
    }
    if (offset >= VGA_MMIO_DISPI && offset < VGA_MMIO_DISPI + 2 * VBE_DISPI_REGS) {
        uint16_t v = vga_dispi_read(s, (unsigned)(offset - VGA_MMIO_DISPI) / 2);
        return size == 1 ? (v >> (8 * (offset & 1))) & 0xff : v;
    }
    return 0;
}

static void mmio_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    struct vga *s = opaque;
    if (offset >= VGA_MMIO_VGA_PORTS && offset < VGA_MMIO_VGA_PORTS + 0x20) {
        for (unsigned i = 0; i < size && offset + i < VGA_MMIO_VGA_PORTS + 0x20; i++)
            vga_port_write(s, (uint16_t)(0x3c0 + offset - VGA_MMIO_VGA_PORTS + i), (uint8_t)(value >> (8 * i)));
        return;
    }
    /* The DISPI registers are 16 bits wide; a byte write there has no meaning and is ignored. */
    if (offset >= VGA_MMIO_DISPI && offset < VGA_MMIO_DISPI + 2 * VBE_DISPI_REGS && size == 2 && !(offset & 1))
        vga_dispi_write(s, (unsigned)(offset - VGA_MMIO_DISPI) / 2, (uint16_t)value);
}

static const struct io_ops g_mmio_ops = { .read = mmio_read, .write = mmio_write, .min_access = 1, .max_access = 2 };

static const struct dpy_gfx_ops g_vga_gfx_ops = { .refresh = vga_refresh };

/* ---- Construct ------------------------------------------------------------------------------------ */

static int load_rom(struct vga *s, const char *path, const char *name)
{
    void *data = NULL;
    size_t len = 0;
    int rc = rt_file_read_all(path, VGA_ROM_MAX_BYTES + 1, &data, &len);
    if (rc == VERR_FILE_NOT_FOUND) {
        LOG_ERR("%s: VGA BIOS '%s' not found%s", name, path,
                strcmp(path, VGA_DEFAULT_ROM) == 0 ? ": install Debian's seabios package (apt-get install seabios)" : "");
        return VERR_FIRMWARE;
    }
    if (rc) {
        LOG_ERR("%s: cannot read VGA BIOS '%s': %s", name, path, rc == VERR_TOO_LARGE ? "larger than 1 MiB" : rt_err_str(rc));
        return VERR_FIRMWARE;
    }
    const uint8_t *b = data;
    if (len < 512 || b[0] != 0x55 || b[1] != 0xaa) {
        LOG_ERR("%s: '%s' is not an option ROM (%zu bytes, no 55 AA signature)", name, path, len);
        free(data);
        return VERR_FIRMWARE;
    }
    uint64_t size = 2048;
    while (size < len)
        size <<= 1;
    rc = mem_region_create_rom(s->vm, "vga-rom", data, len, size, &s->rom);
    free(data);
    if (!rc)
        rc = pci_dev_bar_rom(s->pci, size, s->rom);
    return rc;
}

static int vga_construct(struct pdm_dev *dev, const struct pdm_cfg *cfg)
{
    static const char *const keys[] = { "vram_mib", "rom", PCI_CFG_LOCATION_KEYS, NULL };
    struct vga *s = pdm_dev_state(dev);
    const char *name = pdm_dev_name(dev);
    s->dev = dev;
    s->vm = pdm_dev_vm(dev);
    int rc = pdm_cfg_validate(cfg, name, keys);
    if (rc)
        return rc;
    uint64_t vram_mib;
    rc = pdm_cfg_get_u64(cfg, "vram_mib", 16, &vram_mib);
    if (rc)
        return rc;
    if (vram_mib < 4 || vram_mib > 256 || (vram_mib & (vram_mib - 1))) {
        LOG_ERR("%s: vram_mib=%llu must be a power of two from 4 to 256", name, (unsigned long long)vram_mib);
        return VERR_CFG_BAD_VALUE;
    }
    const char *rom = pdm_cfg_get_str(cfg, "rom", VGA_DEFAULT_ROM);
    struct pci_bus *bus;
    unsigned devfn;
    rc = pci_cfg_get_location(s->vm, cfg, name, VGA_DEFAULT_SLOT, &bus, &devfn);
    if (rc)
        return rc;

    s->vram_bytes = (uint32_t)(vram_mib << 20);
    s->dirty_words = ((s->vram_bytes >> 12) + 63) / 64;
    s->dirty = calloc(s->dirty_words, sizeof(*s->dirty));
    if (!s->dirty)
        return VERR_NO_MEMORY;
    rc = mem_region_create_ram(s->vm, "vga-vram", s->vram_bytes, &s->vram_region);
    if (!rc) {
        s->vram = mem_region_hva(s->vram_region);
        rc = mem_region_dirty_enable(s->vram_region, true);
    }
    if (!rc)
        rc = mem_region_create_mmio(s->vm, "vga-legacy", VGA_WINDOW_BYTES, &g_legacy_ops, s, &s->legacy);
    if (!rc)
        rc = mem_region_map(s->legacy, VGA_WINDOW_GPA, 0);
    if (!rc)
        rc = mem_region_create_mmio(s->vm, "vga-mmio", VGA_MMIO_BAR_BYTES, &g_mmio_ops, s, &s->mmio);
    if (!rc)
        rc = iom_region_create(s->vm, "vga", 0x30, &g_vga_io_ops, s, &s->io_vga);
    if (!rc)
        rc = iom_region_map(s->io_vga, 0x3b0);
    if (!rc)
        rc = iom_region_create(s->vm, "vga-dispi", 3, &g_vbe_io_ops, s, &s->io_vbe);
    if (!rc)
        rc = iom_region_map(s->io_vbe, 0x1ce);
    if (rc) {
        LOG_ERR("%s: cannot set up video memory and ports: %s", name, rt_err_str(rc));
        return rc;
    }
    const struct pci_dev_params params = {
        .name = name,
        .vendor_id = VGA_PCI_VENDOR,
        .device_id = VGA_PCI_DEVICE,
        .class_code = VGA_PCI_CLASS,
        .revision = 2, /* bochs-drm uses the MMIO BAR from revision 2 on */
        .subsys_vendor_id = 0x1af4,
        .subsys_id = 0x1100,
    };
    rc = pci_dev_register(bus, devfn, &params, &s->pci);
    if (!rc)
        rc = pci_dev_bar_mem(s->pci, 0, s->vram_bytes, PCI_BAR_MEM_PREFETCH, s->vram_region);
    if (!rc)
        rc = pci_dev_bar_mem(s->pci, 2, VGA_MMIO_BAR_BYTES, 0, s->mmio);
    if (rc) {
        LOG_ERR("%s: cannot register the PCI function: %s", name, rt_err_str(rc));
        return rc;
    }
    if (rom[0] && strcmp(rom, "none") != 0 && (rc = load_rom(s, rom, name)) != 0)
        return rc;
    rc = dpy_create(s->vm, name, &g_vga_gfx_ops, s, &s->dpy);
    if (rc) {
        LOG_ERR("%s: cannot create its display: %s", name, rt_err_str(rc));
        return rc;
    }
    vga_regs_reset(s);
    LOG_INFO("%s: VGA with Bochs VBE at PCI %02x.%u, %u MiB video memory%s", name, PCI_SLOT(devfn), PCI_FUNC(devfn),
             s->vram_bytes >> 20, s->rom ? "" : ", no VGA BIOS");
    return 0;
}

static void vga_reset(struct pdm_dev *dev)
{
    struct vga *s = pdm_dev_state(dev);
    if (s->pci)
        pci_dev_reset(s->pci);
    vga_regs_reset(s);
}

static void vga_destroy(struct pdm_dev *dev)
{
    struct vga *s = pdm_dev_state(dev);
    dpy_destroy(s->dpy);
    s->dpy = NULL;
    if (s->pci)
        pci_dev_unregister(s->pci);
    s->pci = NULL;
    iom_region_destroy(s->io_vga);
    iom_region_destroy(s->io_vbe);
    s->io_vga = s->io_vbe = NULL;
    if (s->legacy)
        mem_region_destroy(s->legacy);
    if (s->mmio)
        mem_region_destroy(s->mmio);
    if (s->rom)
        mem_region_destroy(s->rom);
    if (s->vram_region)
        mem_region_destroy(s->vram_region);
    s->legacy = s->mmio = s->rom = s->vram_region = NULL;
    s->vram = NULL;
    free(s->dirty);
    s->dirty = NULL;
    vga_render_fini(s);
}

/* ---- Saved state ----------------------------------------------------------------------------------- */

static int vga_save(struct pdm_dev *dev, struct ssm *ssm)
{
    struct vga *s = pdm_dev_state(dev);
    ssm_put_u32(ssm, s->vram_bytes);
    ssm_put_u8(ssm, s->misc);
    ssm_put_u8(ssm, s->feature);
    ssm_put_u8(ssm, s->seq_index);
    ssm_put_bytes(ssm, s->seq, sizeof(s->seq));
    ssm_put_u8(ssm, s->gr_index);
    ssm_put_bytes(ssm, s->gr, sizeof(s->gr));
    ssm_put_u8(ssm, s->crtc_index);
    ssm_put_bytes(ssm, s->crtc, sizeof(s->crtc));
    ssm_put_u8(ssm, s->ar_index);
    ssm_put_bool(ssm, s->ar_flipflop);
    ssm_put_bytes(ssm, s->ar, sizeof(s->ar));
    ssm_put_u8(ssm, s->pel_mask);
    ssm_put_u8(ssm, s->dac_read_index);
    ssm_put_u8(ssm, s->dac_write_index);
    ssm_put_u8(ssm, s->dac_component);
    ssm_put_u8(ssm, s->dac_state);
    ssm_put_bytes(ssm, s->dac_latch, sizeof(s->dac_latch));
    ssm_put_bytes(ssm, s->dac, sizeof(s->dac));
    ssm_put_u32(ssm, s->latch);
    ssm_put_u16(ssm, s->vbe_index);
    for (unsigned i = 0; i < VBE_DISPI_REGS; i++)
        ssm_put_u16(ssm, s->vbe[i]);
    pci_dev_save(s->pci, ssm);
    return ssm_status(ssm);
}

/* The registers of a saved state, checked before any of them reaches the device. */
static int regs_check(const struct vga *s, const struct vga *t, const char *name)
{
    const char *bad = NULL;
    if (t->seq_index > 7 || t->gr_index > 15 || t->crtc_index > 63 || t->ar_index > 63)
        bad = "a register index is out of range";
    else if (t->dac_component > 2 || (t->dac_state != 0 && t->dac_state != 3))
        bad = "the DAC's state is out of range";
    else if (t->vbe[VBE_DISPI_INDEX_ID] < VBE_DISPI_ID0 || t->vbe[VBE_DISPI_INDEX_ID] > VBE_DISPI_ID5)
        bad = "the VBE ID is unknown";
    else if (t->vbe[VBE_DISPI_INDEX_XRES] == 0 || t->vbe[VBE_DISPI_INDEX_XRES] > VBE_DISPI_MAX_XRES ||
             t->vbe[VBE_DISPI_INDEX_YRES] == 0 || t->vbe[VBE_DISPI_INDEX_YRES] > VBE_DISPI_MAX_YRES)
        bad = "the VBE resolution is out of range";
    else if (t->vbe[VBE_DISPI_INDEX_BPP] != 8 && t->vbe[VBE_DISPI_INDEX_BPP] != 15 && t->vbe[VBE_DISPI_INDEX_BPP] != 16 &&
             t->vbe[VBE_DISPI_INDEX_BPP] != 24 && t->vbe[VBE_DISPI_INDEX_BPP] != 32)
        bad = "the VBE depth is not 8, 15, 16, 24 or 32 bits";
    else if ((uint64_t)t->vbe[VBE_DISPI_INDEX_BANK] * 0x10000u >= s->vram_bytes)
        bad = "the VBE bank is past video memory";
    if (bad) {
        LOG_ERR("%s: saved state rejected: %s", name, bad);
        return VERR_SSM_CORRUPT;
    }
    return 0;
}

static int vga_load(struct pdm_dev *dev, struct ssm *ssm, uint32_t version)
{
    struct vga *s = pdm_dev_state(dev);
    const char *name = pdm_dev_name(dev);
    if (version < 1 || version > VGA_SSM_VERSION)
        return VERR_SSM_VERSION;
    struct vga *t = calloc(1, sizeof(*t));
    if (!t)
        return VERR_NO_MEMORY;
    uint32_t vram_bytes = 0;
    ssm_get_u32(ssm, &vram_bytes);
    ssm_get_u8(ssm, &t->misc);
    ssm_get_u8(ssm, &t->feature);
    ssm_get_u8(ssm, &t->seq_index);
    ssm_get_bytes(ssm, t->seq, sizeof(t->seq));
    ssm_get_u8(ssm, &t->gr_index);
    ssm_get_bytes(ssm, t->gr, sizeof(t->gr));
    ssm_get_u8(ssm, &t->crtc_index);
    ssm_get_bytes(ssm, t->crtc, sizeof(t->crtc));
    ssm_get_u8(ssm, &t->ar_index);
    ssm_get_bool(ssm, &t->ar_flipflop);
    ssm_get_bytes(ssm, t->ar, sizeof(t->ar));
    ssm_get_u8(ssm, &t->pel_mask);
    ssm_get_u8(ssm, &t->dac_read_index);
    ssm_get_u8(ssm, &t->dac_write_index);
    ssm_get_u8(ssm, &t->dac_component);
    ssm_get_u8(ssm, &t->dac_state);
    ssm_get_bytes(ssm, t->dac_latch, sizeof(t->dac_latch));
    ssm_get_bytes(ssm, t->dac, sizeof(t->dac));
    ssm_get_u32(ssm, &t->latch);
    ssm_get_u16(ssm, &t->vbe_index);
    for (unsigned i = 0; i < VBE_DISPI_REGS; i++)
        ssm_get_u16(ssm, &t->vbe[i]);
    int rc = ssm_status(ssm);
    if (!rc && vram_bytes != s->vram_bytes) {
        LOG_ERR("%s: saved state has %u MiB of video memory, this VM %u MiB", name, vram_bytes >> 20,
                s->vram_bytes >> 20);
        rc = VERR_SSM_CORRUPT;
    }
    if (!rc)
        rc = regs_check(s, t, name);
    if (!rc)
        rc = pci_dev_load(s->pci, ssm);
    if (rc) {
        free(t);
        return rc;
    }
    s->misc = t->misc;
    s->feature = t->feature & 0x03;
    s->seq_index = t->seq_index;
    memcpy(s->seq, t->seq, sizeof(s->seq));
    s->gr_index = t->gr_index;
    memcpy(s->gr, t->gr, sizeof(s->gr));
    s->crtc_index = t->crtc_index;
    memcpy(s->crtc, t->crtc, sizeof(s->crtc));
    s->ar_index = t->ar_index;
    s->ar_flipflop = t->ar_flipflop;
    memcpy(s->ar, t->ar, sizeof(s->ar));
    s->pel_mask = t->pel_mask;
    s->dac_read_index = t->dac_read_index;
    s->dac_write_index = t->dac_write_index;
    s->dac_component = t->dac_component;
    s->dac_state = t->dac_state;
    memcpy(s->dac_latch, t->dac_latch, sizeof(s->dac_latch));
    memcpy(s->dac, t->dac, sizeof(s->dac));
    s->latch = t->latch;
    s->vbe_index = t->vbe_index;
    memcpy(s->vbe, t->vbe, sizeof(s->vbe));
    s->vbe[VBE_DISPI_INDEX_ENABLE] &= VBE_DISPI_ENABLED | VBE_DISPI_GETCAPS | VBE_DISPI_8BIT_DAC |
                                      VBE_DISPI_LFB_ENABLED | VBE_DISPI_NOCLEARMEM;
    free(t);
    s->full = true;
    s->font_dirty = true;
    if (s->dpy)
        dpy_invalidate(s->dpy);
    return 0;
}

const struct pdm_dev_desc g_dev_vga = {
    .name = "vga",
    .description = "standard VGA with Bochs VBE extensions (PCI 1234:1111, stdvga layout)",
    .state_size = sizeof(struct vga),
    .ssm_version = VGA_SSM_VERSION,
    .construct = vga_construct,
    .reset = vga_reset,
    .save = vga_save,
    .load = vga_load,
    .destroy = vga_destroy,
};
