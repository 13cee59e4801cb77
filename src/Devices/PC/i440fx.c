/* i440fx.c - i440FX host bridge and PIIX3 ISA bridge: config mechanism #1, PAM, PIRQ routing, ports 0x92/0xcf9. */

/*
 * Design: one device instance stands for the chipset pair QEMU's "pc" machine
 * and SeaBIOS expect: the 82441FX PMC (host bridge) and function 0 of the
 * 82371SB PIIX3 (PCI-to-ISA bridge).  It owns the PCI bus (pci.c) and the ports
 * that reach it:
 *
 * - 0xcf8-0xcff: PCI configuration mechanism #1 (PCI 3.0 section 3.2.2.3.2).  Only
 *   a dword access at 0xcf8 is CONFIG_ADDRESS; a byte at 0xcf9 is the PIIX3 Reset
 *   Control Register; 0xcfc-0xcff reach the addressed dword at any width.
 * - 0x92: System Control Port A (PIIX3 datasheet 4.7.6): A20 gate bit, fast reset.
 *   The CPU's A20 line is the OR of this bit and the keyboard controller's A20 output
 *   (the PIIX3's A20GATE input), which the board wires with i440fx_set_kbc_a20.  On a
 *   board with no 8042 the line follows the last write to port 0x92 and is on after
 *   reset, as the 8042's output port comes out of reset high.  The line is the VM's
 *   (vm_set_a20), saved with this device; the 8042 drives its input again on load.
 *
 * PAM (82441FX datasheet 3.2.18): thirteen segments of 0xC0000-0xFFFFF each show
 * RAM read/write, RAM read-only, or the PCI/ROM side, chosen by the RE/WE bits.
 * Every segment has its windows created once (an alias onto RAM, a read-only
 * alias onto RAM, an alias onto the BIOS image for 0xE0000-0xFFFFF, and an MMIO
 * window), and a PAM write maps the right one at PCI_PRIORITY_PAM.  The MMIO
 * window serves mode 0 in 0xC0000-0xDFFFF (nothing on PCI answers: all ones)
 * and mode 2, write-only, exactly as the datasheet shadowing recipe needs:
 * reads come from the ROM side, writes land in RAM.  Its one limit is that code
 * cannot execute from it under KVM, which no firmware does in write-only mode.
 *
 * SMRAM (0x72) is stored with its D_LCK semantics; Vireo has no SMM, so it maps
 * nothing.
 */
#include <stdio.h>
#include <string.h>

#include "vireo/devices.h"
#include "vireo/pci.h"

#define LOG_COMPONENT "i440fx"

#define I440FX_DEVFN_HOST PCI_DEVFN(0, 0)
#define I440FX_DEVFN_ISA  PCI_DEVFN(1, 0)

#define I440FX_PORT_CONFIG 0xcf8
#define I440FX_PORT_SCPA   0x92

#define CONFIG_ADDRESS_ENABLE 0x80000000u
#define CONFIG_ADDRESS_MASK   0x80fffffcu /* bits 30:24 and 1:0 are reserved (read 0) */

/* 82441FX configuration registers. */
#define HOST_PAM0     0x59
#define HOST_PAM6     0x5f
#define HOST_DRB0     0x60
#define HOST_SMRAM    0x72
#define SMRAM_D_OPEN  0x40
#define SMRAM_D_LCK   0x10
#define SMRAM_WMASK   0x78 /* D_OPEN, D_CLS, D_LCK, G_SMRAME; C_BASE_SEG is fixed */
#define SMRAM_DEFAULT 0x02 /* C_BASE_SEG = 010b: SMRAM at 0xA0000 */

/* PIIX3 function 0 configuration registers (PIIX3 datasheet 2.2). */
#define ISA_PIRQRC     0x60 /* PIRQRC[A:D] at 0x60-0x63 */
#define PIRQRC_DISABLE 0x80
#define PIRQRC_WMASK   0x8f

/* Reset Control Register (PIIX3 datasheet 4.7.7): bit 1 system reset, bit 2 reset CPU. */
#define RCR_SRST 0x02
#define RCR_RCPU 0x04

#define SCPA_FAST_RESET 0x01
#define SCPA_A20        0x02

#define PAM_SEGMENTS   13
#define PAM_ROM_WINDOW 0x20000u /* the firmware's last 128 KiB show at 0xE0000-0xFFFFF */
#define PAM_ROM_BASE   0xe0000u

enum pam_mode { PAM_MODE_PCI = 0, PAM_MODE_RO = 1, PAM_MODE_WO = 2, PAM_MODE_RW = 3 };

struct i440fx;

struct pam_seg {
    struct i440fx *chip;
    uint32_t base, size;
    uint8_t reg, shift; /* the PAM register and nibble that control it */
    enum pam_mode mode;
    struct mem_region *ram_rw, *ram_ro, *rom, *mmio;
    struct mem_region *mapped;
};

struct i440fx {
    struct pdm_dev *dev;
    struct vm *vm;
    struct pci_bus *bus;
    struct pci_dev *host, *isa;
    struct io_region *io_config, *io_scpa;
    uint32_t config_address;
    uint8_t rcr;
    uint8_t scpa;
    bool kbc_wired, kbc_a20; /* the 8042's A20 output, once the board connected it */
    bool smram_locked;
    struct mem_region *low_ram, *bios_rom;
    struct pam_seg pam[PAM_SEGMENTS];
};

static struct i440fx *chip_of(struct pdm_dev *dev)
{
    if (!dev || pdm_dev_desc(dev) != &g_dev_i440fx)
        return NULL;
    return pdm_dev_state(dev);
}

/* ---- PAM ------------------------------------------------------------------------ */

static uint64_t pam_mmio_read(void *opaque, uint64_t offset, unsigned size)
{
    struct pam_seg *seg = opaque;
    struct i440fx *chip = seg->chip;
    if (size == 0 || size > 8 || offset >= seg->size || size > seg->size - offset)
        return UINT64_MAX;
    /* The ROM/PCI side: the BIOS image for 0xE0000-0xFFFFF, nothing (all ones) below. */
    if (seg->base < PAM_ROM_BASE || !chip->bios_rom)
        return size == 8 ? UINT64_MAX : (1ULL << (8 * size)) - 1;
    uint64_t rom_off = mem_region_size(chip->bios_rom) - PAM_ROM_WINDOW + (seg->base - PAM_ROM_BASE) + offset;
    uint64_t v = 0;
    memcpy(&v, (const uint8_t *)mem_region_hva(chip->bios_rom) + rom_off, size);
    return v;
}

static void pam_mmio_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    struct pam_seg *seg = opaque;
    struct i440fx *chip = seg->chip;
    if (seg->mode != PAM_MODE_WO || size == 0 || size > 8 || offset >= seg->size || size > seg->size - offset)
        return;
    /* Write-only mode: the write goes to the RAM under the segment (mode 0 sends it to PCI, where nothing answers). */
    uint64_t ram_off = seg->base + offset;
    memcpy((uint8_t *)mem_region_hva(chip->low_ram) + ram_off, &value, size);
    mem_region_dirty_mark(chip->low_ram, ram_off, size);
}

static const struct io_ops g_pam_mmio_ops = {
    .read = pam_mmio_read,
    .write = pam_mmio_write,
    .min_access = 1,
    .max_access = 8,
};

static void pam_init_layout(struct i440fx *chip)
{
    /* PAM1-PAM6 control 16 KiB segments 0xC0000-0xEFFFF, low nibble first; PAM0's high nibble 0xF0000-0xFFFFF. */
    for (unsigned i = 0; i < PAM_SEGMENTS; i++) {
        struct pam_seg *seg = &chip->pam[i];
        seg->chip = chip;
        if (i < 12) {
            seg->base = 0xc0000u + i * 0x4000u;
            seg->size = 0x4000u;
            seg->reg = (uint8_t)(HOST_PAM0 + 1 + i / 2);
            seg->shift = (uint8_t)((i & 1) * 4);
        } else {
            seg->base = 0xf0000u;
            seg->size = 0x10000u;
            seg->reg = HOST_PAM0;
            seg->shift = 4;
        }
    }
}

/* The window that shows a segment in its current mode. */
static struct mem_region *pam_window(const struct pam_seg *seg)
{
    switch (seg->mode) {
    case PAM_MODE_RW:
        return seg->ram_rw;
    case PAM_MODE_RO:
        return seg->ram_ro;
    case PAM_MODE_WO:
        return seg->mmio;
    case PAM_MODE_PCI:
    default:
        return seg->rom ? seg->rom : seg->mmio;
    }
}

static void pam_update(struct i440fx *chip)
{
    for (unsigned i = 0; i < PAM_SEGMENTS; i++) {
        struct pam_seg *seg = &chip->pam[i];
        /* Bit 0 of a nibble is RE, bit 1 WE: the two bits read as the mode number directly. */
        seg->mode = (enum pam_mode)((pci_dev_get_u8(chip->host, seg->reg) >> seg->shift) & 3);
        if (!chip->low_ram)
            continue;
        struct mem_region *want = pam_window(seg);
        if (want == seg->mapped)
            continue;
        if (seg->mapped)
            mem_region_unmap(seg->mapped);
        seg->mapped = NULL;
        int rc = mem_region_map(want, seg->base, PCI_PRIORITY_PAM);
        if (rc) {
            LOG_ERR("cannot map the PAM window at 0x%x: %s", seg->base, rt_err_str(rc));
            continue;
        }
        seg->mapped = want;
    }
}

static void pam_free(struct i440fx *chip)
{
    for (unsigned i = 0; i < PAM_SEGMENTS; i++) {
        struct pam_seg *seg = &chip->pam[i];
        mem_region_destroy(seg->ram_rw);
        mem_region_destroy(seg->ram_ro);
        mem_region_destroy(seg->rom);
        mem_region_destroy(seg->mmio);
        seg->ram_rw = seg->ram_ro = seg->rom = seg->mmio = seg->mapped = NULL;
    }
}

static int pam_create_windows(struct i440fx *chip, struct mem_region *low_ram, struct mem_region *bios_rom)
{
    struct vm *vm = chip->vm;
    uint64_t rom_base = mem_region_size(bios_rom) - PAM_ROM_WINDOW;
    for (unsigned i = 0; i < PAM_SEGMENTS; i++) {
        struct pam_seg *seg = &chip->pam[i];
        char name[32];
        snprintf(name, sizeof(name), "pam-%05x-rw", seg->base);
        int rc = mem_region_create_alias(vm, name, low_ram, seg->base, seg->size, false, &seg->ram_rw);
        if (!rc) {
            snprintf(name, sizeof(name), "pam-%05x-ro", seg->base);
            rc = mem_region_create_alias(vm, name, low_ram, seg->base, seg->size, true, &seg->ram_ro);
        }
        if (!rc) {
            snprintf(name, sizeof(name), "pam-%05x-pci", seg->base);
            rc = mem_region_create_mmio(vm, name, seg->size, &g_pam_mmio_ops, seg, &seg->mmio);
        }
        if (!rc && seg->base >= PAM_ROM_BASE) {
            snprintf(name, sizeof(name), "pam-%05x-rom", seg->base);
            rc = mem_region_create_alias(vm, name, bios_rom, rom_base + (seg->base - PAM_ROM_BASE), seg->size, true,
                                         &seg->rom);
        }
        if (rc) {
            LOG_ERR("cannot create the PAM windows at 0x%x: %s", seg->base, rt_err_str(rc));
            pam_free(chip);
            return rc;
        }
    }
    return 0;
}

int i440fx_set_memory(struct pdm_dev *dev, struct mem_region *low_ram, struct mem_region *bios_rom)
{
    struct i440fx *chip = chip_of(dev);
    if (!chip || !low_ram || !bios_rom || chip->low_ram)
        return VERR_INVALID_PARAMETER;
    if (mem_region_kind(low_ram) != MEM_KIND_RAM || mem_region_size(low_ram) < 0x100000 ||
        mem_region_size(bios_rom) < PAM_ROM_WINDOW || (mem_region_size(bios_rom) & 0xfff) != 0 ||
        !mem_region_hva(bios_rom)) {
        LOG_ERR("PAM needs a RAM region of at least 1 MiB and a firmware region of at least 128 KiB");
        return VERR_INVALID_PARAMETER;
    }
    vm_lock(chip->vm);
    int rc = pam_create_windows(chip, low_ram, bios_rom);
    if (!rc) {
        chip->low_ram = low_ram;
        chip->bios_rom = bios_rom;
        pam_update(chip);
    }
    vm_unlock(chip->vm);
    return rc;
}

/* ---- chipset registers --------------------------------------------------------------- */

static bool write_touches(unsigned offset, unsigned size, unsigned reg, unsigned len)
{
    return offset < reg + len && reg < offset + size;
}

/* SMRAM (82441FX datasheet 3.2.25): once D_LCK is set, D_OPEN reads 0 and both stay put until reset. */
static void smram_apply(struct i440fx *chip)
{
    uint8_t v = pci_dev_get_u8(chip->host, HOST_SMRAM);
    if (v & SMRAM_D_LCK)
        chip->smram_locked = true;
    if (chip->smram_locked) {
        v = (uint8_t)((v & ~SMRAM_D_OPEN) | SMRAM_D_LCK);
        pci_dev_set_u8(chip->host, HOST_SMRAM, v);
        pci_dev_set_wmask(chip->host, HOST_SMRAM, 1, SMRAM_WMASK & ~(SMRAM_D_OPEN | SMRAM_D_LCK));
    } else {
        pci_dev_set_wmask(chip->host, HOST_SMRAM, 1, SMRAM_WMASK);
    }
}

static void host_config_write(void *opaque, struct pci_dev *dev, unsigned offset, uint32_t value, unsigned size)
{
    struct i440fx *chip = opaque;
    (void)dev;
    (void)value;
    if (write_touches(offset, size, HOST_PAM0, HOST_PAM6 - HOST_PAM0 + 1))
        pam_update(chip);
    if (write_touches(offset, size, HOST_SMRAM, 1))
        smram_apply(chip);
}

/* PIRQRC (PIIX3 datasheet 2.2.9): bit 7 disables routing; bits 3:0 pick IRQ 3-7, 9-12, 14 or 15. */
static int pirq_decode(uint8_t v)
{
    if (v & PIRQRC_DISABLE)
        return -1;
    unsigned irq = v & 0x0f;
    if (irq < 3 || irq == 8 || irq == 13)
        return -1;
    return (int)irq;
}

static void pirq_apply(struct i440fx *chip)
{
    for (unsigned i = 0; i < 4; i++)
        pci_bus_set_pirq_route(chip->bus, i, pirq_decode(pci_dev_get_u8(chip->isa, ISA_PIRQRC + i)));
}

static void isa_config_write(void *opaque, struct pci_dev *dev, unsigned offset, uint32_t value, unsigned size)
{
    struct i440fx *chip = opaque;
    (void)dev;
    (void)value;
    if (write_touches(offset, size, ISA_PIRQRC, 4))
        pirq_apply(chip);
}

static const struct pci_dev_ops g_host_ops = {.config_write = host_config_write};
static const struct pci_dev_ops g_isa_ops = {.config_write = isa_config_write};

/* Write masks of the chipset-specific registers; the generic header ones come from pci_dev_register. */
static void host_init_masks(struct pci_dev *d)
{
    /* PCICMD: only SERR# and parity enable are writable; memory access and bus master are hardwired on. */
    pci_dev_set_wmask(d, PCI_CFG_COMMAND, 2, PCI_COMMAND_SERR | PCI_COMMAND_PARITY);
    pci_dev_set_wmask(d, PCI_CFG_LATENCY_TIMER, 1, 0xf8);
    pci_dev_set_wmask(d, PCI_CFG_CACHE_LINE_SIZE, 1, 0);
    pci_dev_set_wmask(d, PCI_CFG_INTERRUPT_LINE, 1, 0);
    for (unsigned off = 0x50; off <= 0x58; off++)
        pci_dev_set_wmask(d, off, 1, 0xff); /* PMCCFG, DETURBO, DBC, AXC, DRAMR, DRAMC, DRAMT */
    pci_dev_set_wmask(d, HOST_PAM0, 1, 0x30);
    for (unsigned off = HOST_PAM0 + 1; off <= HOST_PAM6; off++)
        pci_dev_set_wmask(d, off, 1, 0x33);
    for (unsigned off = HOST_DRB0; off < HOST_DRB0 + 8; off++)
        pci_dev_set_wmask(d, off, 1, 0xff);
    pci_dev_set_wmask(d, 0x68, 1, 0xc0); /* FDHC */
    pci_dev_set_wmask(d, 0x70, 1, 0xf8); /* MTT */
    pci_dev_set_wmask(d, 0x71, 1, 0xff); /* CLT */
    pci_dev_set_wmask(d, HOST_SMRAM, 1, SMRAM_WMASK);
    pci_dev_set_wmask(d, 0x90, 1, 0xff);   /* ERRCMD */
    pci_dev_set_w1cmask(d, 0x91, 1, 0xff); /* ERRSTS */
    pci_dev_set_wmask(d, 0x93, 1, 0x06);   /* TRC */
}

static void isa_init_masks(struct pci_dev *d)
{
    /* PCICMD: I/O, memory and bus master are hardwired on; special cycles, parity and SERR# writable. */
    pci_dev_set_wmask(d, PCI_CFG_COMMAND, 2, PCI_COMMAND_SPECIAL | PCI_COMMAND_PARITY | PCI_COMMAND_SERR);
    pci_dev_set_wmask(d, PCI_CFG_CACHE_LINE_SIZE, 1, 0);
    pci_dev_set_wmask(d, PCI_CFG_LATENCY_TIMER, 1, 0);
    pci_dev_set_wmask(d, PCI_CFG_INTERRUPT_LINE, 1, 0);
    pci_dev_set_wmask(d, 0x4c, 1, 0x7f);   /* IORT */
    pci_dev_set_wmask(d, 0x4e, 2, 0x03f7); /* XBCS */
    for (unsigned i = 0; i < 4; i++)
        pci_dev_set_wmask(d, ISA_PIRQRC + i, 1, PIRQRC_WMASK);
    pci_dev_set_wmask(d, 0x69, 1, 0xfe);       /* TOM */
    pci_dev_set_wmask(d, 0x6a, 2, 0x00c7);     /* MSTAT */
    pci_dev_set_wmask(d, 0x70, 1, 0xcf);       /* MBIRQ0 */
    pci_dev_set_wmask(d, 0x76, 2, 0x8f8f);     /* MBDMA */
    pci_dev_set_wmask(d, 0x80, 1, 0x7f);       /* APICBASE */
    pci_dev_set_wmask(d, 0x82, 1, 0x0f);       /* DLC */
    pci_dev_set_wmask(d, 0xa0, 1, 0x1f);       /* SMICNTL */
    pci_dev_set_wmask(d, 0xa2, 2, 0x00ff);     /* SMIEN */
    pci_dev_set_wmask(d, 0xa4, 4, 0x0000e0ff); /* SEE */
    pci_dev_set_wmask(d, 0xa8, 1, 0xff);       /* FTMR */
    pci_dev_set_w1cmask(d, 0xaa, 2, 0x01ff);   /* SMIREQ */
    pci_dev_set_wmask(d, 0xac, 1, 0xff);       /* CTLTMR */
    pci_dev_set_wmask(d, 0xae, 1, 0xff);       /* CTHTMR */
}

static void i440fx_reset(struct pdm_dev *dev)
{
    struct i440fx *chip = pdm_dev_state(dev);
    chip->config_address = 0;
    chip->rcr = 0;
    chip->scpa = 0;
    chip->smram_locked = false;
    vm_set_a20(chip->vm, chip->kbc_wired ? chip->kbc_a20 : true);

    /* 82441FX power-on values (datasheet 3.2). */
    struct pci_dev *h = chip->host;
    pci_dev_reset(h);
    host_init_masks(h);
    pci_dev_set_u16(h, PCI_CFG_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    pci_dev_set_u16(h, PCI_CFG_STATUS, PCI_STATUS_DEVSEL_MEDIUM | PCI_STATUS_FAST_BACK);
    pci_dev_set_u8(h, 0x53, 0x80); /* DBC */
    pci_dev_set_u8(h, 0x57, 0x01); /* DRAMC */
    pci_dev_set_u8(h, 0x58, 0x10); /* DRAMT */
    for (unsigned off = HOST_PAM0; off <= HOST_PAM6; off++)
        pci_dev_set_u8(h, off, 0);
    for (unsigned off = HOST_DRB0; off < HOST_DRB0 + 8; off++)
        pci_dev_set_u8(h, off, 0x01);
    pci_dev_set_u8(h, 0x70, 0x20); /* MTT */
    pci_dev_set_u8(h, 0x71, 0x10); /* CLT */
    pci_dev_set_u8(h, HOST_SMRAM, SMRAM_DEFAULT);

    /* PIIX3 function 0 power-on values (PIIX3 datasheet 2.2). */
    struct pci_dev *isa = chip->isa;
    pci_dev_reset(isa);
    isa_init_masks(isa);
    pci_dev_set_u16(isa, PCI_CFG_COMMAND, PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    pci_dev_set_u16(isa, PCI_CFG_STATUS, PCI_STATUS_DEVSEL_MEDIUM);
    pci_dev_set_u8(isa, 0x4c, 0x4d);    /* IORT */
    pci_dev_set_u16(isa, 0x4e, 0x0003); /* XBCS */
    for (unsigned i = 0; i < 4; i++)
        pci_dev_set_u8(isa, ISA_PIRQRC + i, PIRQRC_DISABLE);
    pci_dev_set_u8(isa, 0x69, 0x02);    /* TOM */
    pci_dev_set_u8(isa, 0x70, 0x80);    /* MBIRQ0 */
    pci_dev_set_u16(isa, 0x76, 0x0c0c); /* MBDMA */
    pci_dev_set_u8(isa, 0xa0, 0x08);    /* SMICNTL */
    pci_dev_set_u8(isa, 0xa8, 0x0f);    /* FTMR */

    pirq_apply(chip);
    pam_update(chip);
}

/* ---- ports ------------------------------------------------------------------------ */

static unsigned config_devfn(const struct i440fx *chip)
{
    return (chip->config_address >> 8) & 0xff;
}

/* Mechanism #1 reaches bus 0 only; other buses have no devices (no bridges yet). */
static bool config_enabled(const struct i440fx *chip)
{
    return (chip->config_address & CONFIG_ADDRESS_ENABLE) && ((chip->config_address >> 16) & 0xff) == 0;
}

static uint64_t config_port_read(void *opaque, uint64_t offset, unsigned size)
{
    struct i440fx *chip = opaque;
    uint32_t ones = size >= 4 ? UINT32_MAX : (1u << (8 * size)) - 1;
    if (offset == 0 && size == 4)
        return chip->config_address;
    if (offset == 1 && size == 1)
        return chip->rcr;
    if (offset < 4 || offset >= 8 || size > 8 - offset || !config_enabled(chip))
        return ones;
    unsigned reg = (chip->config_address & 0xfc) + (unsigned)(offset - 4);
    return pci_bus_config_read(chip->bus, config_devfn(chip), reg, size);
}

static void config_port_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    struct i440fx *chip = opaque;
    if (offset == 0 && size == 4) {
        chip->config_address = (uint32_t)value & CONFIG_ADDRESS_MASK;
        return;
    }
    if (offset == 1 && size == 1) {
        /* RCR: a write with RCPU set resets the system; SRST is kept (hard vs soft reset, same here). */
        chip->rcr = (uint8_t)value & RCR_SRST;
        if (value & RCR_RCPU) {
            LOG_INFO("reset through port 0xcf9");
            vm_request_reset(chip->vm);
        }
        return;
    }
    if (offset < 4 || offset >= 8 || size > 8 - offset || !config_enabled(chip))
        return;
    unsigned reg = (chip->config_address & 0xfc) + (unsigned)(offset - 4);
    pci_bus_config_write(chip->bus, config_devfn(chip), reg, (uint32_t)value, size);
}

static const struct io_ops g_config_ops = {
    .read = config_port_read,
    .write = config_port_write,
    .min_access = 1,
    .max_access = 4,
};

static uint64_t scpa_read(void *opaque, uint64_t offset, unsigned size)
{
    struct i440fx *chip = opaque;
    (void)offset;
    (void)size;
    return chip->scpa;
}

static void scpa_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    struct i440fx *chip = opaque;
    (void)offset;
    (void)size;
    uint8_t old = chip->scpa;
    /* Bit 0 (fast reset) pulses a reset on a 0 -> 1 transition and reads back 0. */
    chip->scpa = (uint8_t)value & ~SCPA_FAST_RESET;
    if ((old & SCPA_A20) != (chip->scpa & SCPA_A20))
        LOG_DEBUG("A20 gate %s through port 0x92", (chip->scpa & SCPA_A20) ? "on" : "off");
    vm_set_a20(chip->vm, (chip->scpa & SCPA_A20) || (chip->kbc_wired && chip->kbc_a20));
    if (value & SCPA_FAST_RESET) {
        LOG_INFO("reset through port 0x92");
        vm_request_reset(chip->vm);
    }
}

static const struct io_ops g_scpa_ops = {
    .read = scpa_read,
    .write = scpa_write,
    .min_access = 1,
    .max_access = 1,
};

bool i440fx_a20_enabled(struct pdm_dev *dev)
{
    struct i440fx *chip = chip_of(dev);
    return chip && (chip->scpa & SCPA_A20);
}

void i440fx_set_kbc_a20(struct pdm_dev *dev, bool level)
{
    struct i440fx *chip = chip_of(dev);
    if (!chip)
        return;
    chip->kbc_wired = true;
    chip->kbc_a20 = level;
    vm_set_a20(chip->vm, (chip->scpa & SCPA_A20) || level);
}

struct pci_bus *i440fx_get_bus(struct pdm_dev *dev)
{
    struct i440fx *chip = chip_of(dev);
    return chip ? chip->bus : NULL;
}

int pci_cfg_get_location(struct vm *vm, const struct pdm_cfg *cfg, const char *dev_name, int def_slot,
                         struct pci_bus **bus, unsigned *devfn)
{
    const char *bridge = pdm_cfg_get_str(cfg, "bus", "pci");
    struct pdm_dev *host = pdm_dev_find(vm, bridge);
    if (!host || pdm_dev_desc(host) != &g_dev_i440fx) {
        LOG_ERR("device '%s': no PCI host bridge named '%s'", dev_name, bridge);
        return VERR_CFG_BAD_VALUE;
    }
    uint64_t slot = 0, fn = 0;
    int rc = pdm_cfg_get_u64(cfg, "slot", def_slot < 0 ? UINT64_MAX : (uint64_t)def_slot, &slot);
    if (!rc)
        rc = pdm_cfg_get_u64(cfg, "function", 0, &fn);
    if (rc)
        return rc;
    if (slot == UINT64_MAX) {
        LOG_ERR("device '%s': configuration key 'slot' is required", dev_name);
        return VERR_CFG_BAD_VALUE;
    }
    if (slot > 31 || fn > 7) {
        LOG_ERR("device '%s': PCI slot %llu function %llu out of range (slot 0-31, function 0-7)", dev_name,
                (unsigned long long)slot, (unsigned long long)fn);
        return VERR_CFG_BAD_VALUE;
    }
    *bus = i440fx_get_bus(host);
    *devfn = PCI_DEVFN((unsigned)slot, (unsigned)fn);
    return 0;
}

/* ---- lifecycle ---------------------------------------------------------------------- */

static int i440fx_construct(struct pdm_dev *dev, const struct pdm_cfg *cfg)
{
    static const char *const allowed[] = {NULL};
    struct i440fx *chip = pdm_dev_state(dev);
    int rc = pdm_cfg_validate(cfg, pdm_dev_name(dev), allowed);
    if (rc)
        return rc;
    chip->dev = dev;
    chip->vm = pdm_dev_vm(dev);
    pam_init_layout(chip);

    rc = pci_bus_create(chip->vm, "pci0", &chip->bus);
    if (rc)
        return rc;
    const struct pci_dev_params host = {
        .name = "i440fx",
        .vendor_id = 0x8086,
        .device_id = 0x1237,
        .class_code = 0x060000,
        .revision = 0x02,
        .ops = &g_host_ops,
        .opaque = chip,
    };
    rc = pci_dev_register(chip->bus, I440FX_DEVFN_HOST, &host, &chip->host);
    if (rc)
        return rc;
    const struct pci_dev_params isa = {
        .name = "piix3",
        .vendor_id = 0x8086,
        .device_id = 0x7000,
        .class_code = 0x060100,
        .revision = 0x00,
        .multifunction = true,
        .ops = &g_isa_ops,
        .opaque = chip,
    };
    rc = pci_dev_register(chip->bus, I440FX_DEVFN_ISA, &isa, &chip->isa);
    if (rc)
        return rc;

    rc = iom_region_create(chip->vm, "pci-config", 8, &g_config_ops, chip, &chip->io_config);
    if (!rc)
        rc = iom_region_map(chip->io_config, I440FX_PORT_CONFIG);
    if (!rc)
        rc = iom_region_create(chip->vm, "port92", 1, &g_scpa_ops, chip, &chip->io_scpa);
    if (!rc)
        rc = iom_region_map(chip->io_scpa, I440FX_PORT_SCPA);
    if (rc)
        return rc;
    i440fx_reset(dev);
    return 0;
}

static void i440fx_destroy(struct pdm_dev *dev)
{
    struct i440fx *chip = pdm_dev_state(dev);
    iom_region_destroy(chip->io_config);
    iom_region_destroy(chip->io_scpa);
    chip->io_config = chip->io_scpa = NULL;
    pam_free(chip);
    pci_dev_unregister(chip->isa);
    pci_dev_unregister(chip->host);
    chip->isa = chip->host = NULL;
    pci_bus_destroy(chip->bus);
    chip->bus = NULL;
}

static int i440fx_save(struct pdm_dev *dev, struct ssm *ssm)
{
    struct i440fx *chip = pdm_dev_state(dev);
    ssm_put_u32(ssm, chip->config_address);
    ssm_put_u8(ssm, chip->rcr);
    ssm_put_u8(ssm, chip->scpa);
    ssm_put_bool(ssm, vm_a20_enabled(chip->vm));
    pci_dev_save(chip->host, ssm);
    pci_dev_save(chip->isa, ssm);
    return ssm_status(ssm);
}

static int i440fx_load(struct pdm_dev *dev, struct ssm *ssm, uint32_t version)
{
    struct i440fx *chip = pdm_dev_state(dev);
    if (version != 1 && version != 2)
        return VERR_SSM_VERSION;
    uint32_t address = 0;
    uint8_t rcr = 0, scpa = 0;
    /* Version 1 had no A20 line: the CPU saw it on whatever port 0x92 said. */
    bool a20 = true;
    ssm_get_u32(ssm, &address);
    ssm_get_u8(ssm, &rcr);
    ssm_get_u8(ssm, &scpa);
    if (version >= 2)
        ssm_get_bool(ssm, &a20);
    int rc = ssm_status(ssm);
    if (!rc)
        rc = pci_dev_load(chip->host, ssm);
    if (!rc)
        rc = pci_dev_load(chip->isa, ssm);
    if (rc)
        return rc;
    chip->config_address = address & CONFIG_ADDRESS_MASK;
    chip->rcr = rcr & RCR_SRST;
    chip->scpa = scpa & ~SCPA_FAST_RESET;
    vm_set_a20(chip->vm, a20);
    /* Derived state follows the restored registers. */
    chip->smram_locked = false;
    smram_apply(chip);
    pirq_apply(chip);
    pam_update(chip);
    return 0;
}

const struct pdm_dev_desc g_dev_i440fx = {
    .name = "i440fx",
    .description = "i440FX host bridge and PIIX3 ISA bridge: PCI config mechanism #1, PAM, PIRQ routing, port 0x92",
    .state_size = sizeof(struct i440fx),
    .ssm_version = 2,
    .construct = i440fx_construct,
    .reset = i440fx_reset,
    .save = i440fx_save,
    .load = i440fx_load,
    .destroy = i440fx_destroy,
};
