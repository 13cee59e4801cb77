/* pci.h - the PCI bus model (config space, BARs, INTx routing) and the i440FX chipset helpers. */
#ifndef VIREO_PCI_H
#define VIREO_PCI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vireo/pdm.h"
#include "vireo/vm.h"

/*
 * One PCI bus (bus 0; no bridges yet) is owned by the host bridge device
 * (g_dev_i440fx) and handed to the board with i440fx_get_bus().  A device model
 * registers one struct pci_dev per function, fills its config space, declares
 * BARs bound to its own I/O or MMIO regions and an INTx pin; the bus then does
 * the rest: config-space writes through per-byte write and write-1-to-clear
 * masks, BAR sizing, mapping the regions where the guest programs the BARs while
 * the command register enables decoding, and INTx routing.
 *
 * Lifetime: a device unregisters its functions in its destroy() before it frees
 * the regions bound to their BARs.  Reset: a device calls pci_dev_reset() from its
 * reset() and then sets its non-zero power-on values.  Saved state: a device calls
 * pci_dev_save()/pci_dev_load() from its own save/load.
 *
 * Everything here runs with the VM lock held, as device code always does.
 */

struct pci_bus; /* opaque */
struct pci_dev; /* opaque: one function on the bus */

/* ---- Config space layout (PCI Local Bus Specification 3.0, section 6.1) ---- */

#define PCI_CONFIG_SIZE 256 /* conventional PCI; PCIe's 4 KiB space fits the same model later */

#define PCI_CFG_VENDOR_ID        0x00
#define PCI_CFG_DEVICE_ID        0x02
#define PCI_CFG_COMMAND          0x04
#define PCI_CFG_STATUS           0x06
#define PCI_CFG_REVISION_ID      0x08
#define PCI_CFG_CLASS_PROG       0x09
#define PCI_CFG_CLASS_DEVICE     0x0a /* sub-class (0x0a) and base class (0x0b) */
#define PCI_CFG_CACHE_LINE_SIZE  0x0c
#define PCI_CFG_LATENCY_TIMER    0x0d
#define PCI_CFG_HEADER_TYPE      0x0e
#define PCI_CFG_BIST             0x0f
#define PCI_CFG_BAR0             0x10
#define PCI_CFG_SUBSYS_VENDOR_ID 0x2c
#define PCI_CFG_SUBSYS_ID        0x2e
#define PCI_CFG_ROM_ADDRESS      0x30
#define PCI_CFG_CAP_PTR          0x34
#define PCI_CFG_INTERRUPT_LINE   0x3c
#define PCI_CFG_INTERRUPT_PIN    0x3d
#define PCI_CFG_MIN_GNT          0x3e
#define PCI_CFG_MAX_LAT          0x3f
#define PCI_CFG_CAP_FIRST        0x40 /* first byte after the type 0 header */

#define PCI_COMMAND_IO           0x0001
#define PCI_COMMAND_MEMORY       0x0002
#define PCI_COMMAND_MASTER       0x0004
#define PCI_COMMAND_SPECIAL      0x0008
#define PCI_COMMAND_PARITY       0x0040
#define PCI_COMMAND_SERR         0x0100
#define PCI_COMMAND_INTX_DISABLE 0x0400

#define PCI_STATUS_INTERRUPT     0x0008
#define PCI_STATUS_CAP_LIST      0x0010
#define PCI_STATUS_66MHZ         0x0020
#define PCI_STATUS_FAST_BACK     0x0080
#define PCI_STATUS_DEVSEL_MEDIUM 0x0200
#define PCI_STATUS_W1C_MASK      0xf900 /* the error bits 15:11 and 8 are write-one-to-clear */

#define PCI_HEADER_MULTIFUNCTION 0x80

#define PCI_CAP_ID_PM     0x01
#define PCI_CAP_ID_MSI    0x05
#define PCI_CAP_ID_VENDOR 0x09
#define PCI_CAP_ID_EXP    0x10
#define PCI_CAP_ID_MSIX   0x11

#define PCI_BAR_COUNT 6
#define PCI_BAR_ROM   6 /* index of the expansion ROM BAR in pci_dev_bar_gpa() */

/* devfn: device (slot) number in bits 7:3, function in bits 2:0. */
#define PCI_DEVFN(slot, fn) ((((slot)&0x1f) << 3) | ((fn)&7))
#define PCI_SLOT(devfn)     (((devfn) >> 3) & 0x1f)
#define PCI_FUNC(devfn)     ((devfn)&7)

/*
 * Memory-map priorities.  The board maps RAM and the firmware ROM at priority 0;
 * memory BARs and expansion ROMs sit above it, and the i440FX PAM windows above
 * the BARs (the host bridge decodes them before anything reaches PCI).
 */
#define PCI_PRIORITY_BAR 10
#define PCI_PRIORITY_PAM 20

/* Returned by pci_dev_bar_gpa() for a BAR that is not mapped. */
#define PCI_BAR_UNMAPPED UINT64_MAX

/* ---- The bus ---------------------------------------------------------------- */

/*
 * Creates an empty bus with four PIRQ wires (PIRQA-D) that start disabled
 * (routed nowhere).  The host bridge device owns it.
 */
int pci_bus_create(struct vm *vm, const char *name, struct pci_bus **out);
/* Frees the PIRQ wires and the bookkeeping of functions still registered (not their regions). */
void pci_bus_destroy(struct pci_bus *bus);
struct vm *pci_bus_vm(const struct pci_bus *bus);
/* The function at devfn (0..255), or NULL. */
struct pci_dev *pci_bus_find(struct pci_bus *bus, unsigned devfn);

/*
 * Configuration accesses as a host bridge forwards them (mechanism #1, later ECAM).
 * size is 1, 2 or 4; offset any byte offset (an access is cut at the end of the
 * config space).  Reads of an absent function return all ones.  Writes go through
 * the write masks, remap BARs on command/BAR changes and then call the function's
 * config_write hook.  Guest-controlled arguments are checked here.
 */
uint32_t pci_bus_config_read(struct pci_bus *bus, unsigned devfn, unsigned offset, unsigned size);
void pci_bus_config_write(struct pci_bus *bus, unsigned devfn, unsigned offset, uint32_t value, unsigned size);

/*
 * PIRQ routing (PIIX3 datasheet 2.2.9, PIRQRC[A:D]): pirq 0..3 is PIRQA..D; isa_irq
 * is the ISA IRQ the wire drives, or -1 for none (route disabled).  The wire
 * carries the OR of every INTx swizzled onto it.  Called by the PIIX3 model when
 * the guest writes config registers 0x60-0x63.
 */
void pci_bus_set_pirq_route(struct pci_bus *bus, unsigned pirq, int isa_irq);
/* The OR of every INTx on PIRQ wire pirq (whether routed or not); tests and debugging. */
bool pci_bus_pirq_level(const struct pci_bus *bus, unsigned pirq);

/* ---- Functions ---------------------------------------------------------------- */

struct pci_dev_ops {
    /*
     * Optional: called after the bus applied a guest config write (masks, BAR
     * remapping done).  offset/value/size are the access as the guest made it,
     * cut to the config space.  Chipset registers with side effects live here.
     */
    void (*config_write)(void *opaque, struct pci_dev *dev, unsigned offset, uint32_t value, unsigned size);
    /*
     * Optional: may replace the value of a guest config read; value is what the
     * config space holds.  For registers computed on the fly.
     */
    uint32_t (*config_read)(void *opaque, struct pci_dev *dev, unsigned offset, unsigned size, uint32_t value);
};

struct pci_dev_params {
    const char *name; /* for logs ("i440fx", "piix3", "ahci") */
    uint16_t vendor_id, device_id;
    uint32_t class_code; /* base class << 16 | sub-class << 8 | programming interface */
    uint8_t revision;
    uint16_t subsys_vendor_id, subsys_id;
    bool multifunction;            /* sets header type bit 7 (function 0 of a multi-function device) */
    const struct pci_dev_ops *ops; /* NULL: no hooks */
    void *opaque;                  /* passed to the hooks */
};

/*
 * Registers a function at devfn with a type 0 header: IDs, class and revision
 * read-only; command (I/O, memory, bus master, parity, SERR, INTx disable),
 * cache line size, latency timer and interrupt line writable; status error bits
 * write-one-to-clear.  Every other byte is read-only zero until the device
 * changes it.  VERR_ALREADY_EXISTS when devfn is taken.
 */
int pci_dev_register(struct pci_bus *bus, unsigned devfn, const struct pci_dev_params *params, struct pci_dev **out);
/* Unmaps the BARs, lowers INTx and removes the function from the bus. */
void pci_dev_unregister(struct pci_dev *dev);

unsigned pci_dev_devfn(const struct pci_dev *dev);
struct pci_bus *pci_dev_bus(const struct pci_dev *dev);
void *pci_dev_opaque(const struct pci_dev *dev);

/*
 * Device-side config access: no masks, no hooks, no BAR remapping.  Offsets
 * outside the config space are ignored (reads give 0).
 */
uint8_t pci_dev_get_u8(const struct pci_dev *dev, unsigned offset);
uint16_t pci_dev_get_u16(const struct pci_dev *dev, unsigned offset);
uint32_t pci_dev_get_u32(const struct pci_dev *dev, unsigned offset);
void pci_dev_set_u8(struct pci_dev *dev, unsigned offset, uint8_t value);
void pci_dev_set_u16(struct pci_dev *dev, unsigned offset, uint16_t value);
void pci_dev_set_u32(struct pci_dev *dev, unsigned offset, uint32_t value);
/*
 * Guest write masks for size (1, 2, 4) bytes at offset, little-endian like the
 * registers: bits set in wmask are writable, bits set in w1cmask are cleared by
 * writing one.  A bit should be in at most one of the two.
 */
void pci_dev_set_wmask(struct pci_dev *dev, unsigned offset, unsigned size, uint32_t wmask);
void pci_dev_set_w1cmask(struct pci_dev *dev, unsigned offset, unsigned size, uint32_t w1cmask);

/*
 * BARs.  size_bytes is a power of two: I/O 4..256 bytes, memory at least 16
 * bytes (4 KiB or more recommended so KVM can map RAM-like BARs).  A 64-bit memory
 * BAR takes bar and bar+1.  The region is the device's; the bus maps it when the
 * BAR holds a valid address and the command register enables that space, and
 * unmaps it otherwise (an address of 0, or a range that would wrap or, for I/O,
 * pass 0xffff, counts as unmapped; so does a range that collides with an existing
 * mapping, which is logged).
 */
#define PCI_BAR_MEM_64       0x1u
#define PCI_BAR_MEM_PREFETCH 0x2u
int pci_dev_bar_io(struct pci_dev *dev, unsigned bar, uint32_t size_bytes, struct io_region *region);
int pci_dev_bar_mem(struct pci_dev *dev, unsigned bar, uint64_t size_bytes, unsigned flags, struct mem_region *region);
/* The expansion ROM BAR (0x30): a ROM region of size_bytes (power of two, >= 2 KiB). */
int pci_dev_bar_rom(struct pci_dev *dev, uint64_t size_bytes, struct mem_region *region);
/* Where a BAR (0..5, or PCI_BAR_ROM) is mapped now, or PCI_BAR_UNMAPPED. */
uint64_t pci_dev_bar_gpa(const struct pci_dev *dev, unsigned bar);
/* Whether the guest enabled bus mastering (devices check it before DMA). */
bool pci_dev_is_bus_master(const struct pci_dev *dev);

/*
 * INTx.  pin is 1..4 (INTA#..INTD#).  The bus swizzles it onto PIRQ
 * (slot - 1 + pin - 1) mod 4, the routing SeaBIOS and QEMU's PIIX board assume
 * (and that Vireo's ACPI _PRT must describe).  pci_dev_irq_set records the
 * device's level (status bit 3) and drives the PIRQ wire unless the command
 * register's INTx disable bit is set.
 */
int pci_dev_set_irq_pin(struct pci_dev *dev, unsigned pin);
void pci_dev_irq_set(struct pci_dev *dev, bool level);

/*
 * Adds a capability of size bytes at offset (dword aligned, >= 0x40, not
 * overlapping another one) with its ID, links it at the end of the list (next
 * pointer 0) and sets the status register's capability bit.  The device fills the
 * body and its masks afterwards.
 */
int pci_dev_add_cap(struct pci_dev *dev, uint8_t cap_id, unsigned offset, unsigned size);
/* Offset of the first capability with cap_id, or 0. */
unsigned pci_dev_find_cap(const struct pci_dev *dev, uint8_t cap_id);

/*
 * Back to power-on: bits the guest can write (write or write-one-to-clear masks)
 * become 0, INTx is lowered, BARs are unmapped (the command register is 0 now).
 * The caller then sets its registers' non-zero defaults.
 */
void pci_dev_reset(struct pci_dev *dev);
/*
 * The function's saved state: config space and INTx level.  Load checks that the
 * IDs match this function, restores the bytes, remaps the BARs and re-drives INTx.
 */
void pci_dev_save(struct pci_dev *dev, struct ssm *ssm);
int pci_dev_load(struct pci_dev *dev, struct ssm *ssm);

/* ---- The i440FX/PIIX3 chipset (g_dev_i440fx in devices.h) ------------------ */

/* The bus behind the host bridge, where the board registers further devices. */
struct pci_bus *i440fx_get_bus(struct pdm_dev *dev);

/*
 * Hands the chipset the memory behind the PAM registers (82441FX datasheet 3.2.18).
 * low_ram is the RAM region whose offset x backs gpa x below 1 MiB (the region
 * mapped at gpa 0, or the one the board's low RAM aliases are made from), at least
 * 1 MiB; bios_rom is the firmware image region (a multiple of 4 KiB, at least
 * 128 KiB) whose last 128 KiB are the content of 0xE0000-0xFFFFF.  From then on
 * the chipset decides what 0xC0000-0xFFFFF shows, with windows at priority
 * PCI_PRIORITY_PAM (a board BIOS alias at a lower priority is harmless).  Call
 * once, after creating the device; the regions must outlive the device.
 */
int i440fx_set_memory(struct pdm_dev *dev, struct mem_region *low_ram, struct mem_region *bios_rom);

/*
 * For PCI device models' construct(): the bus behind the host bridge instance named by
 * configuration key "bus" (default "pci") and the devfn from "slot" (def_slot when
 * absent; required when def_slot < 0) and "function" (default 0).  Errors are logged
 * with dev_name.  Add PCI_CFG_LOCATION_KEYS to the device's allowed keys.
 */
#define PCI_CFG_LOCATION_KEYS "bus", "slot", "function"
int pci_cfg_get_location(struct vm *vm, const struct pdm_cfg *cfg, const char *dev_name, int def_slot,
                         struct pci_bus **bus, unsigned *devfn);

/* The A20 gate bit of port 0x92 (System Control Port A, bit 1). */
bool i440fx_a20_enabled(struct pdm_dev *dev);
/* The keyboard controller's A20 output (the PIIX3's A20GATE input): the CPU's A20 line is it OR port 0x92 bit 1. */
void i440fx_set_kbc_a20(struct pdm_dev *dev, bool level);

#endif
