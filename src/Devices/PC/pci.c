/* pci.c - the PCI bus: config space with write masks, BAR sizing and mapping, INTx swizzled onto PIRQA-D. */

/*
 * Design: a bus is an array of 256 function slots (devfn) plus four PIRQ wires.
 * Each function keeps its config bytes and two per-byte masks: wmask (bits the
 * guest may write) and w1cmask (bits a guest write of one clears, PCI 3.0 section
 * 6.2.3 status register).  BAR sizing falls out of the masks: a BAR of size S has
 * the address bits below S read-only zero, so writing all ones and reading back
 * yields ~(S-1) | type bits (PCI 3.0 section 6.2.5.1).  After every guest write
 * that touches the command register, a BAR or the expansion ROM BAR, the bus
 * recomputes where each BAR should be mapped and moves the device's region there
 * (or unmaps it).
 *
 * INTx: a function's pin is swizzled onto PIRQ (slot - 1 + pin - 1) mod 4; each
 * PIRQ wire counts the functions asserting it and drives one pdm_irq line, which
 * the PIIX3 route registers move between ISA IRQs (or disconnect).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vireo/pci.h"

#define LOG_COMPONENT "pci"

#define PCI_DEVFN_COUNT    256
#define PCI_PIRQ_COUNT     4
#define PCI_MEM_ADDR_LIMIT (1ULL << 52) /* the largest x86 physical address width */
#define PCI_CAP_WALK_MAX   48           /* (256 - 64) / 4: bounds a looping list */

enum pci_bar_kind { PCI_BAR_NONE = 0, PCI_BAR_IO, PCI_BAR_MEM, PCI_BAR_MEM_HIGH, PCI_BAR_EXPROM };

struct pci_bar {
    enum pci_bar_kind kind;
    unsigned flags; /* PCI_BAR_MEM_64, PCI_BAR_MEM_PREFETCH */
    uint64_t size;
    struct io_region *io;
    struct mem_region *mem;
    uint64_t mapped_gpa; /* PCI_BAR_UNMAPPED when not mapped */
    uint64_t failed_gpa; /* the last address that could not be mapped: not retried until it changes */
    bool fail_logged;    /* a failed mapping is logged once per BAR */
};

struct pci_dev {
    struct pci_bus *bus;
    unsigned devfn;
    char *name;
    const struct pci_dev_ops *ops;
    void *opaque;
    uint8_t config[PCI_CONFIG_SIZE];
    uint8_t wmask[PCI_CONFIG_SIZE];
    uint8_t w1cmask[PCI_CONFIG_SIZE];
    bool cap_used[PCI_CONFIG_SIZE];
    struct pci_bar bars[PCI_BAR_COUNT + 1]; /* 0..5 and the expansion ROM */
    unsigned pin;                           /* 1..4, 0: none */
    bool level;                             /* the device's INTx level */
    bool driving;                           /* counted on its PIRQ wire */
};

struct pci_bus {
    struct vm *vm;
    char *name;
    struct pci_dev *devs[PCI_DEVFN_COUNT];
    struct pdm_irq *pirq_line[PCI_PIRQ_COUNT];
    unsigned pirq_count[PCI_PIRQ_COUNT];
    int pirq_route[PCI_PIRQ_COUNT]; /* ISA IRQ, or -1 */
};

/* ---- bus --------------------------------------------------------------------- */

int pci_bus_create(struct vm *vm, const char *name, struct pci_bus **out)
{
    if (!vm || !name || !out)
        return VERR_INVALID_PARAMETER;
    struct pci_bus *bus = calloc(1, sizeof(*bus));
    if (!bus)
        return VERR_NO_MEMORY;
    bus->vm = vm;
    bus->name = strdup(name);
    if (!bus->name) {
        free(bus);
        return VERR_NO_MEMORY;
    }
    for (unsigned i = 0; i < PCI_PIRQ_COUNT; i++) {
        char owner[32];
        snprintf(owner, sizeof(owner), "%s-pirq%c", name, 'a' + i);
        bus->pirq_route[i] = -1;
        /* A disabled route keeps the wire low on GSI 0, which no PIRQ route can select. */
        int rc = pdm_irq_create(vm, 0, owner, &bus->pirq_line[i]);
        if (rc) {
            pci_bus_destroy(bus);
            return rc;
        }
    }
    *out = bus;
    return 0;
}

void pci_bus_destroy(struct pci_bus *bus)
{
    if (!bus)
        return;
    for (unsigned i = 0; i < PCI_DEVFN_COUNT; i++) {
        struct pci_dev *dev = bus->devs[i];
        if (!dev)
            continue;
        /* The regions may be gone already: forget them without touching them. */
        LOG_DEBUG("%s: function %02x.%u '%s' still registered at bus destruction", bus->name, PCI_SLOT(i), PCI_FUNC(i),
                  dev->name);
        free(dev->name);
        free(dev);
    }
    for (unsigned i = 0; i < PCI_PIRQ_COUNT; i++)
        if (bus->pirq_line[i])
            pdm_irq_destroy(bus->pirq_line[i]);
    free(bus->name);
    free(bus);
}

struct vm *pci_bus_vm(const struct pci_bus *bus)
{
    return bus->vm;
}

struct pci_dev *pci_bus_find(struct pci_bus *bus, unsigned devfn)
{
    if (!bus || devfn >= PCI_DEVFN_COUNT)
        return NULL;
    return bus->devs[devfn];
}

static void pirq_drive(struct pci_bus *bus, unsigned pirq)
{
    bool level = bus->pirq_count[pirq] > 0;
    if (bus->pirq_route[pirq] >= 0)
        pdm_irq_set(bus->pirq_line[pirq], level);
}

void pci_bus_set_pirq_route(struct pci_bus *bus, unsigned pirq, int isa_irq)
{
    if (!bus || pirq >= PCI_PIRQ_COUNT)
        return;
    if (isa_irq < 0 || isa_irq >= PDM_GSI_COUNT)
        isa_irq = -1;
    if (bus->pirq_route[pirq] == isa_irq)
        return;
    LOG_DEBUG("%s: PIRQ%c -> %s%d", bus->name, 'A' + pirq, isa_irq < 0 ? "none " : "IRQ", isa_irq);
    if (isa_irq < 0) {
        pdm_irq_set(bus->pirq_line[pirq], false);
        bus->pirq_route[pirq] = -1;
        return;
    }
    if (bus->pirq_route[pirq] < 0)
        pdm_irq_set(bus->pirq_line[pirq], false);
    pdm_irq_reroute(bus->pirq_line[pirq], (unsigned)isa_irq);
    bus->pirq_route[pirq] = isa_irq;
    pirq_drive(bus, pirq);
}

bool pci_bus_pirq_level(const struct pci_bus *bus, unsigned pirq)
{
    return bus && pirq < PCI_PIRQ_COUNT && bus->pirq_count[pirq] > 0;
}

/* ---- device-side config access ---------------------------------------------------- */

uint8_t pci_dev_get_u8(const struct pci_dev *dev, unsigned offset)
{
    return offset < PCI_CONFIG_SIZE ? dev->config[offset] : 0;
}

uint16_t pci_dev_get_u16(const struct pci_dev *dev, unsigned offset)
{
    return (uint16_t)(pci_dev_get_u8(dev, offset) | pci_dev_get_u8(dev, offset + 1) << 8);
}

uint32_t pci_dev_get_u32(const struct pci_dev *dev, unsigned offset)
{
    return pci_dev_get_u16(dev, offset) | (uint32_t)pci_dev_get_u16(dev, offset + 2) << 16;
}

void pci_dev_set_u8(struct pci_dev *dev, unsigned offset, uint8_t value)
{
    if (offset < PCI_CONFIG_SIZE)
        dev->config[offset] = value;
}

void pci_dev_set_u16(struct pci_dev *dev, unsigned offset, uint16_t value)
{
    pci_dev_set_u8(dev, offset, (uint8_t)value);
    pci_dev_set_u8(dev, offset + 1, (uint8_t)(value >> 8));
}

void pci_dev_set_u32(struct pci_dev *dev, unsigned offset, uint32_t value)
{
    pci_dev_set_u16(dev, offset, (uint16_t)value);
    pci_dev_set_u16(dev, offset + 2, (uint16_t)(value >> 16));
}

static void set_mask_bytes(uint8_t *mask, unsigned offset, unsigned size, uint32_t value)
{
    for (unsigned i = 0; i < size && i < 4; i++)
        if (offset + i < PCI_CONFIG_SIZE)
            mask[offset + i] = (uint8_t)(value >> (8 * i));
}

void pci_dev_set_wmask(struct pci_dev *dev, unsigned offset, unsigned size, uint32_t wmask)
{
    set_mask_bytes(dev->wmask, offset, size, wmask);
}

void pci_dev_set_w1cmask(struct pci_dev *dev, unsigned offset, unsigned size, uint32_t w1cmask)
{
    set_mask_bytes(dev->w1cmask, offset, size, w1cmask);
}

unsigned pci_dev_devfn(const struct pci_dev *dev)
{
    return dev->devfn;
}

struct pci_bus *pci_dev_bus(const struct pci_dev *dev)
{
    return dev->bus;
}

void *pci_dev_opaque(const struct pci_dev *dev)
{
    return dev->opaque;
}

bool pci_dev_is_bus_master(const struct pci_dev *dev)
{
    return (pci_dev_get_u16(dev, PCI_CFG_COMMAND) & PCI_COMMAND_MASTER) != 0;
}

/* ---- registration ----------------------------------------------------------------- */

int pci_dev_register(struct pci_bus *bus, unsigned devfn, const struct pci_dev_params *params, struct pci_dev **out)
{
    if (!bus || !params || !out || devfn >= PCI_DEVFN_COUNT || params->class_code > 0xffffff)
        return VERR_INVALID_PARAMETER;
    if (params->vendor_id == 0xffff || params->vendor_id == 0)
        return VERR_INVALID_PARAMETER;
    if (bus->devs[devfn]) {
        LOG_ERR("%s: devfn %02x.%u is taken by '%s'", bus->name, PCI_SLOT(devfn), PCI_FUNC(devfn),
                bus->devs[devfn]->name);
        return VERR_ALREADY_EXISTS;
    }
    struct pci_dev *dev = calloc(1, sizeof(*dev));
    if (!dev)
        return VERR_NO_MEMORY;
    dev->name = strdup(params->name ? params->name : "pci");
    if (!dev->name) {
        free(dev);
        return VERR_NO_MEMORY;
    }
    dev->bus = bus;
    dev->devfn = devfn;
    dev->ops = params->ops;
    dev->opaque = params->opaque;
    for (unsigned i = 0; i <= PCI_BAR_COUNT; i++)
        dev->bars[i].mapped_gpa = dev->bars[i].failed_gpa = PCI_BAR_UNMAPPED;

    pci_dev_set_u16(dev, PCI_CFG_VENDOR_ID, params->vendor_id);
    pci_dev_set_u16(dev, PCI_CFG_DEVICE_ID, params->device_id);
    pci_dev_set_u8(dev, PCI_CFG_REVISION_ID, params->revision);
    pci_dev_set_u8(dev, PCI_CFG_CLASS_PROG, (uint8_t)params->class_code);
    pci_dev_set_u16(dev, PCI_CFG_CLASS_DEVICE, (uint16_t)(params->class_code >> 8));
    pci_dev_set_u8(dev, PCI_CFG_HEADER_TYPE, params->multifunction ? PCI_HEADER_MULTIFUNCTION : 0);
    pci_dev_set_u16(dev, PCI_CFG_SUBSYS_VENDOR_ID, params->subsys_vendor_id);
    pci_dev_set_u16(dev, PCI_CFG_SUBSYS_ID, params->subsys_id);

    /* Type 0 header defaults, PCI 3.0 section 6.2: what a generic function lets software write. */
    pci_dev_set_wmask(dev, PCI_CFG_COMMAND, 2,
                      PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_PARITY | PCI_COMMAND_SERR |
                          PCI_COMMAND_INTX_DISABLE);
    pci_dev_set_w1cmask(dev, PCI_CFG_STATUS, 2, PCI_STATUS_W1C_MASK);
    pci_dev_set_wmask(dev, PCI_CFG_CACHE_LINE_SIZE, 1, 0xff);
    pci_dev_set_wmask(dev, PCI_CFG_LATENCY_TIMER, 1, 0xff);
    pci_dev_set_wmask(dev, PCI_CFG_INTERRUPT_LINE, 1, 0xff);
    for (unsigned i = 0; i < PCI_CFG_CAP_FIRST; i++)
        dev->cap_used[i] = true;

    bus->devs[devfn] = dev;
    *out = dev;
    return 0;
}

static void bar_unmap(struct pci_bar *bar)
{
    if (bar->mapped_gpa == PCI_BAR_UNMAPPED)
        return;
    if (bar->io)
        iom_region_unmap(bar->io);
    else if (bar->mem)
        mem_region_unmap(bar->mem);
    bar->mapped_gpa = PCI_BAR_UNMAPPED;
}

static void irq_update(struct pci_dev *dev);

void pci_dev_unregister(struct pci_dev *dev)
{
    if (!dev)
        return;
    for (unsigned i = 0; i <= PCI_BAR_COUNT; i++)
        bar_unmap(&dev->bars[i]);
    dev->level = false;
    irq_update(dev);
    dev->bus->devs[dev->devfn] = NULL;
    free(dev->name);
    free(dev);
}

/* ---- BARs ----------------------------------------------------------------------- */

static bool is_pow2(uint64_t v)
{
    return v != 0 && (v & (v - 1)) == 0;
}

int pci_dev_bar_io(struct pci_dev *dev, unsigned bar, uint32_t size_bytes, struct io_region *region)
{
    if (!dev || !region || bar >= PCI_BAR_COUNT || !is_pow2(size_bytes) || size_bytes < 4 || size_bytes > 256)
        return VERR_INVALID_PARAMETER;
    if (dev->bars[bar].kind != PCI_BAR_NONE)
        return VERR_ALREADY_EXISTS;
    struct pci_bar *b = &dev->bars[bar];
    b->kind = PCI_BAR_IO;
    b->size = size_bytes;
    b->io = region;
    unsigned off = PCI_CFG_BAR0 + 4 * bar;
    /* PCI 3.0 section 6.2.5.1: bit 0 set marks I/O space; all 32 address bits decode (SeaBIOS sizes that way). */
    pci_dev_set_u32(dev, off, 0x1);
    pci_dev_set_wmask(dev, off, 4, ~(size_bytes - 1) & 0xfffffffcu);
    return 0;
}

int pci_dev_bar_mem(struct pci_dev *dev, unsigned bar, uint64_t size_bytes, unsigned flags, struct mem_region *region)
{
    bool is64 = flags & PCI_BAR_MEM_64;
    if (!dev || !region || bar >= PCI_BAR_COUNT || (is64 && bar + 1 >= PCI_BAR_COUNT) || !is_pow2(size_bytes) ||
        size_bytes < 16 || (flags & ~(PCI_BAR_MEM_64 | PCI_BAR_MEM_PREFETCH)) != 0)
        return VERR_INVALID_PARAMETER;
    if ((!is64 && size_bytes > (1ULL << 31)) || size_bytes >= PCI_MEM_ADDR_LIMIT ||
        mem_region_size(region) > size_bytes)
        return VERR_INVALID_PARAMETER;
    if (dev->bars[bar].kind != PCI_BAR_NONE || (is64 && dev->bars[bar + 1].kind != PCI_BAR_NONE))
        return VERR_ALREADY_EXISTS;
    struct pci_bar *b = &dev->bars[bar];
    b->kind = PCI_BAR_MEM;
    b->flags = flags;
    b->size = size_bytes;
    b->mem = region;
    unsigned off = PCI_CFG_BAR0 + 4 * bar;
    /* Bits 2:1 type (00 32-bit, 10 64-bit), bit 3 prefetchable: PCI 3.0 section 6.2.5.1. */
    uint32_t low = (is64 ? 0x4u : 0) | ((flags & PCI_BAR_MEM_PREFETCH) ? 0x8u : 0);
    pci_dev_set_u32(dev, off, low);
    pci_dev_set_wmask(dev, off, 4, (uint32_t) ~(size_bytes - 1) & 0xfffffff0u);
    if (is64) {
        dev->bars[bar + 1].kind = PCI_BAR_MEM_HIGH;
        pci_dev_set_u32(dev, off + 4, 0);
        pci_dev_set_wmask(dev, off + 4, 4, (uint32_t)(~(size_bytes - 1) >> 32));
    }
    return 0;
}

int pci_dev_bar_rom(struct pci_dev *dev, uint64_t size_bytes, struct mem_region *region)
{
    if (!dev || !region || !is_pow2(size_bytes) || size_bytes < 2048 || size_bytes > (1ULL << 31) ||
        mem_region_size(region) > size_bytes)
        return VERR_INVALID_PARAMETER;
    struct pci_bar *b = &dev->bars[PCI_BAR_ROM];
    if (b->kind != PCI_BAR_NONE)
        return VERR_ALREADY_EXISTS;
    b->kind = PCI_BAR_EXPROM;
    b->size = size_bytes;
    b->mem = region;
    /* PCI 3.0 section 6.2.5.2: bit 0 enables decoding, bits 31:11 are the address. */
    pci_dev_set_u32(dev, PCI_CFG_ROM_ADDRESS, 0);
    pci_dev_set_wmask(dev, PCI_CFG_ROM_ADDRESS, 4, ((uint32_t) ~(size_bytes - 1) & 0xfffff800u) | 1u);
    return 0;
}

uint64_t pci_dev_bar_gpa(const struct pci_dev *dev, unsigned bar)
{
    if (!dev || bar > PCI_BAR_COUNT)
        return PCI_BAR_UNMAPPED;
    return dev->bars[bar].mapped_gpa;
}

/* Where BAR i should be mapped given the config space now, or PCI_BAR_UNMAPPED. */
static uint64_t bar_target(const struct pci_dev *dev, unsigned i)
{
    const struct pci_bar *b = &dev->bars[i];
    uint16_t cmd = pci_dev_get_u16(dev, PCI_CFG_COMMAND);
    uint64_t addr;
    switch (b->kind) {
    case PCI_BAR_IO:
        if (!(cmd & PCI_COMMAND_IO))
            return PCI_BAR_UNMAPPED;
        addr = pci_dev_get_u32(dev, PCI_CFG_BAR0 + 4 * i) & ~(uint64_t)3 & ~(b->size - 1);
        /* x86 has 64 KiB of ports; port 0 is never a valid assignment. */
        if (addr == 0 || addr + b->size > 0x10000)
            return PCI_BAR_UNMAPPED;
        return addr;
    case PCI_BAR_MEM:
        if (!(cmd & PCI_COMMAND_MEMORY))
            return PCI_BAR_UNMAPPED;
        addr = pci_dev_get_u32(dev, PCI_CFG_BAR0 + 4 * i) & ~(uint64_t)0xf;
        if (b->flags & PCI_BAR_MEM_64) {
            addr |= (uint64_t)pci_dev_get_u32(dev, PCI_CFG_BAR0 + 4 * (i + 1)) << 32;
            if (addr >= PCI_MEM_ADDR_LIMIT || b->size > PCI_MEM_ADDR_LIMIT - addr)
                return PCI_BAR_UNMAPPED;
        } else if (addr + b->size - 1 >= 0xffffffffULL) {
            /* Reaching the last byte below 4 GiB is the sizing pattern, not an assignment. */
            return PCI_BAR_UNMAPPED;
        }
        addr &= ~(b->size - 1);
        return addr == 0 ? PCI_BAR_UNMAPPED : addr;
    case PCI_BAR_EXPROM: {
        uint32_t reg = pci_dev_get_u32(dev, PCI_CFG_ROM_ADDRESS);
        if (!(cmd & PCI_COMMAND_MEMORY) || !(reg & 1))
            return PCI_BAR_UNMAPPED;
        addr = reg & 0xfffff800u & ~(b->size - 1);
        if (addr == 0 || addr + b->size - 1 >= 0xffffffffULL)
            return PCI_BAR_UNMAPPED;
        return addr;
    }
    default:
        return PCI_BAR_UNMAPPED;
    }
}

static void bars_update(struct pci_dev *dev)
{
    for (unsigned i = 0; i <= PCI_BAR_COUNT; i++) {
        struct pci_bar *b = &dev->bars[i];
        if (b->kind != PCI_BAR_IO && b->kind != PCI_BAR_MEM && b->kind != PCI_BAR_EXPROM)
            continue;
        uint64_t target = bar_target(dev, i);
        if (target == PCI_BAR_UNMAPPED)
            b->failed_gpa = PCI_BAR_UNMAPPED; /* decoding off: the next enable tries again */
        if (target == b->mapped_gpa)
            continue;
        bar_unmap(b);
        if (target == PCI_BAR_UNMAPPED || target == b->failed_gpa)
            continue;
        int rc = b->io ? iom_region_map(b->io, (uint16_t)target) : mem_region_map(b->mem, target, PCI_PRIORITY_BAR);
        if (rc) {
            if (!b->fail_logged)
                LOG_WARN("%s: cannot map BAR %u of '%s' at 0x%llx: %s (left unmapped; logged once)", dev->bus->name, i,
                         dev->name, (unsigned long long)target, rt_err_str(rc));
            b->fail_logged = true;
            b->failed_gpa = target;
            continue;
        }
        b->failed_gpa = PCI_BAR_UNMAPPED;
        LOG_DEBUG("%s: '%s' BAR %u at 0x%llx", dev->bus->name, dev->name, i, (unsigned long long)target);
        b->mapped_gpa = target;
    }
}

/* ---- INTx ----------------------------------------------------------------------- */

int pci_dev_set_irq_pin(struct pci_dev *dev, unsigned pin)
{
    if (!dev || pin < 1 || pin > 4)
        return VERR_INVALID_PARAMETER;
    dev->level = false;
    irq_update(dev);
    dev->pin = pin;
    pci_dev_set_u8(dev, PCI_CFG_INTERRUPT_PIN, (uint8_t)pin);
    return 0;
}

static unsigned dev_pirq(const struct pci_dev *dev)
{
    /* (slot - 1 + pin - 1) mod 4, kept non-negative for slot 0. */
    return (PCI_SLOT(dev->devfn) + dev->pin + 2) & 3;
}

/* Brings the PIRQ wire in line with the device's level, pin and INTx disable bit. */
static void irq_update(struct pci_dev *dev)
{
    bool want = dev->level && dev->pin != 0 && !(pci_dev_get_u16(dev, PCI_CFG_COMMAND) & PCI_COMMAND_INTX_DISABLE);
    if (want == dev->driving)
        return;
    struct pci_bus *bus = dev->bus;
    unsigned pirq = dev_pirq(dev);
    if (want)
        bus->pirq_count[pirq]++;
    else if (bus->pirq_count[pirq] > 0)
        bus->pirq_count[pirq]--;
    dev->driving = want;
    pirq_drive(bus, pirq);
}

void pci_dev_irq_set(struct pci_dev *dev, bool level)
{
    if (!dev)
        return;
    dev->level = level;
    /* PCI 3.0 section 6.2.3: status bit 3 shows the function's INTx state regardless of INTx disable. */
    uint16_t status = pci_dev_get_u16(dev, PCI_CFG_STATUS);
    status = level ? (status | PCI_STATUS_INTERRUPT) : (status & ~PCI_STATUS_INTERRUPT);
    pci_dev_set_u16(dev, PCI_CFG_STATUS, status);
    irq_update(dev);
}

/* ---- capabilities ------------------------------------------------------------------ */

int pci_dev_add_cap(struct pci_dev *dev, uint8_t cap_id, unsigned offset, unsigned size)
{
    if (!dev || offset < PCI_CFG_CAP_FIRST || (offset & 3) != 0 || size < 2 || size > PCI_CONFIG_SIZE ||
        offset + size > PCI_CONFIG_SIZE)
        return VERR_INVALID_PARAMETER;
    for (unsigned i = offset; i < offset + size; i++)
        if (dev->cap_used[i])
            return VERR_OVERLAP;
    /* Walk to the end of the list (PCI 3.0 section 6.7): pointers are dword aligned, the last is 0. */
    unsigned link = PCI_CFG_CAP_PTR;
    for (unsigned n = 0; n < PCI_CAP_WALK_MAX; n++) {
        unsigned next = dev->config[link] & ~3u;
        if (next == 0)
            break;
        link = next + 1;
    }
    if (dev->config[link] != 0)
        return VERR_INVALID_STATE;
    for (unsigned i = offset; i < offset + size; i++)
        dev->cap_used[i] = true;
    dev->config[offset] = cap_id;
    dev->config[offset + 1] = 0;
    dev->config[link] = (uint8_t)offset;
    pci_dev_set_u16(dev, PCI_CFG_STATUS, pci_dev_get_u16(dev, PCI_CFG_STATUS) | PCI_STATUS_CAP_LIST);
    return 0;
}

unsigned pci_dev_find_cap(const struct pci_dev *dev, uint8_t cap_id)
{
    if (!dev || !(pci_dev_get_u16(dev, PCI_CFG_STATUS) & PCI_STATUS_CAP_LIST))
        return 0;
    unsigned off = dev->config[PCI_CFG_CAP_PTR] & ~3u;
    for (unsigned n = 0; n < PCI_CAP_WALK_MAX && off >= PCI_CFG_CAP_FIRST; n++) {
        if (dev->config[off] == cap_id)
            return off;
        off = dev->config[off + 1] & ~3u;
    }
    return 0;
}

/* ---- guest config accesses ------------------------------------------------------------ */

static bool ranges_overlap(unsigned a, unsigned alen, unsigned b, unsigned blen)
{
    return a < b + blen && b < a + alen;
}

uint32_t pci_bus_config_read(struct pci_bus *bus, unsigned devfn, unsigned offset, unsigned size)
{
    if (size != 1 && size != 2 && size != 4)
        return UINT32_MAX;
    uint32_t ones = size == 4 ? UINT32_MAX : (1u << (8 * size)) - 1;
    struct pci_dev *dev = pci_bus_find(bus, devfn);
    if (!dev || offset >= PCI_CONFIG_SIZE)
        return ones;
    if (offset + size > PCI_CONFIG_SIZE)
        size = PCI_CONFIG_SIZE - offset;
    uint32_t value = 0;
    for (unsigned i = 0; i < size; i++)
        value |= (uint32_t)dev->config[offset + i] << (8 * i);
    if (dev->ops && dev->ops->config_read)
        value = dev->ops->config_read(dev->opaque, dev, offset, size, value);
    return value;
}

void pci_bus_config_write(struct pci_bus *bus, unsigned devfn, unsigned offset, uint32_t value, unsigned size)
{
    if (size != 1 && size != 2 && size != 4)
        return;
    struct pci_dev *dev = pci_bus_find(bus, devfn);
    if (!dev || offset >= PCI_CONFIG_SIZE)
        return;
    if (offset + size > PCI_CONFIG_SIZE)
        size = PCI_CONFIG_SIZE - offset;
    if (size < 4)
        value &= (1u << (8 * size)) - 1;
    for (unsigned i = 0; i < size; i++) {
        unsigned off = offset + i;
        uint8_t b = (uint8_t)(value >> (8 * i));
        uint8_t v = (uint8_t)((dev->config[off] & ~dev->wmask[off]) | (b & dev->wmask[off]));
        dev->config[off] = (uint8_t)(v & ~(b & dev->w1cmask[off]));
    }
    bool cmd = ranges_overlap(offset, size, PCI_CFG_COMMAND, 2);
    if (cmd || ranges_overlap(offset, size, PCI_CFG_BAR0, 4 * PCI_BAR_COUNT) ||
        ranges_overlap(offset, size, PCI_CFG_ROM_ADDRESS, 4))
        bars_update(dev);
    if (cmd)
        irq_update(dev);
    if (dev->ops && dev->ops->config_write)
        dev->ops->config_write(dev->opaque, dev, offset, value, size);
}

/* ---- reset and saved state ----------------------------------------------------------- */

void pci_dev_reset(struct pci_dev *dev)
{
    if (!dev)
        return;
    for (unsigned i = 0; i < PCI_CONFIG_SIZE; i++)
        dev->config[i] &= (uint8_t) ~(dev->wmask[i] | dev->w1cmask[i]);
    dev->level = false;
    pci_dev_set_u16(dev, PCI_CFG_STATUS, pci_dev_get_u16(dev, PCI_CFG_STATUS) & ~PCI_STATUS_INTERRUPT);
    irq_update(dev);
    bars_update(dev);
}

void pci_dev_save(struct pci_dev *dev, struct ssm *ssm)
{
    ssm_put_u16(ssm, pci_dev_get_u16(dev, PCI_CFG_VENDOR_ID));
    ssm_put_u16(ssm, pci_dev_get_u16(dev, PCI_CFG_DEVICE_ID));
    ssm_put_bytes(ssm, dev->config, PCI_CONFIG_SIZE);
    ssm_put_bool(ssm, dev->level);
}

int pci_dev_load(struct pci_dev *dev, struct ssm *ssm)
{
    uint16_t vendor = 0, device = 0;
    uint8_t config[PCI_CONFIG_SIZE];
    bool level = false;
    ssm_get_u16(ssm, &vendor);
    ssm_get_u16(ssm, &device);
    ssm_get_bytes(ssm, config, sizeof(config));
    ssm_get_bool(ssm, &level);
    int rc = ssm_status(ssm);
    if (rc)
        return rc;
    /* Config-derived fields must match this function, or the state belongs to other hardware. */
    if (vendor != pci_dev_get_u16(dev, PCI_CFG_VENDOR_ID) || device != pci_dev_get_u16(dev, PCI_CFG_DEVICE_ID) ||
        memcmp(config, dev->config, 4) != 0) {
        LOG_ERR("%s: saved function %04x:%04x does not match '%s' (%04x:%04x)", dev->bus->name, vendor, device,
                dev->name, pci_dev_get_u16(dev, PCI_CFG_VENDOR_ID), pci_dev_get_u16(dev, PCI_CFG_DEVICE_ID));
        return VERR_SSM_CORRUPT;
    }
    memcpy(dev->config, config, sizeof(config));
    bars_update(dev);
    pci_dev_irq_set(dev, level);
    return 0;
}
