/* ioapic.c - the 82093AA I/O APIC: 24 redirection entries fed by the interrupt router, messages to the local APICs. */

/*
 * Design: the chip's two MMIO registers (IOREGSEL at +0x00, IOWIN at +0x10) give
 * access to the indirect registers of the 82093AA datasheet, 3.1-3.2: ID (0x00),
 * version (0x01: 0x11, maximum redirection entry 23), arbitration ID (0x02) and
 * 24 64-bit redirection entries (0x10-0x3f).
 *
 * Inputs: the router's GSIs are ISA IRQ numbers for 0-15 (the PIC's view).  As the
 * MP table's and ACPI MADT's interrupt source override describes, ISA IRQ 0 (the
 * PIT) is wired to pin 2, and the router's GSI 2 (the PIC cascade, nothing drives
 * it) is not connected; every other GSI n is pin n.  The router's level is the
 * electrical level of the pin: an entry's polarity bit says which level is active,
 * so the board's tables must describe its lines as active high.
 *
 * Edge-triggered entries send a message on each inactive-to-active transition
 * while unmasked (edges on a masked pin are lost, 3.2.4).  Level-triggered entries
 * send a message while the pin is active and remote IRR is clear; a fixed or
 * lowest-priority message accepted by a local APIC sets remote IRR, and the local
 * APIC's EOI for the entry's vector clears it (ioapic_eoi), which re-sends when the
 * pin is still active.  Messages are delivered at once, so delivery status reads 0.
 */

#include <string.h>

#include "vireo/devices.h"
#include "vireo/pdm.h"
#include "vireo/rt.h"
#include "vireo/vm.h"

#define LOG_COMPONENT "ioapic"

#define IOAPIC_SSM_VERSION 1
#define IOAPIC_PINS        24
#define IOAPIC_MMIO_BYTES  0x1000u
/* Decoded by the chipset ahead of PCI BARs. */
#define IOAPIC_MMIO_PRIORITY 30
#define IOAPIC_VERSION     (0x11u | ((IOAPIC_PINS - 1u) << 16))

/* MMIO offsets and indirect registers. */
#define IOAPIC_IOREGSEL 0x00
#define IOAPIC_IOWIN    0x10
#define IOAPIC_REG_ID   0x00
#define IOAPIC_REG_VER  0x01
#define IOAPIC_REG_ARB  0x02
#define IOAPIC_REG_REDIR 0x10

/* Redirection entry bits (82093AA datasheet, 3.2.4). */
#define RTE_VECTOR     0xffULL
#define RTE_DM_SHIFT   8
#define RTE_LOGICAL    (1ULL << 11)
#define RTE_STATUS     (1ULL << 12)
#define RTE_POLARITY   (1ULL << 13) /* 1: active low */
#define RTE_REMOTE_IRR (1ULL << 14)
#define RTE_LEVEL      (1ULL << 15)
#define RTE_MASKED     (1ULL << 16)
#define RTE_DEST_SHIFT 56
/* What software may write: vector, delivery mode, destination mode, polarity, trigger, mask, destination. */
#define RTE_WMASK      (0xff00000000000000ULL | 0x1afffULL)

struct ioapic_state {
    struct pdm_dev *dev;
    struct vm *vm;
    struct mem_region *mmio;
    struct pdm_dev *apic;
    bool sink_added;
    uint64_t base;
    uint8_t id_reset;
    uint8_t regsel;
    uint8_t id; /* 4-bit ID (bits 27:24 of the ID register) */
    uint8_t arb;
    uint64_t rte[IOAPIC_PINS];
    uint32_t pins; /* electrical level of each input */
};

/* ---- Delivery ------------------------------------------------------------------------ */

static bool ioapic_pin_active(const struct ioapic_state *s, unsigned pin)
{
    bool level = (s->pins >> pin) & 1;
    return level != ((s->rte[pin] & RTE_POLARITY) != 0);
}

/* Sends the entry's message when the pin asks for one now. */
static void ioapic_service(struct ioapic_state *s, unsigned pin)
{
    uint64_t e = s->rte[pin];
    if ((e & RTE_MASKED) || !ioapic_pin_active(s, pin))
        return;
    bool level = (e & RTE_LEVEL) != 0;
    if (level && (e & RTE_REMOTE_IRR))
        return;
    unsigned dm = (unsigned)(e >> RTE_DM_SHIFT) & 7;
    if (dm == 3 || dm == APIC_DM_STARTUP)
        return; /* reserved delivery modes (datasheet 3.2.4): nothing is sent */
    struct apic_msg msg = {
        .vector = (uint8_t)(e & RTE_VECTOR),
        .delivery_mode = (uint8_t)dm,
        .dest_logical = (e & RTE_LOGICAL) != 0,
        .dest = (uint8_t)(e >> RTE_DEST_SHIFT),
        .level = level,
    };
    bool accepted = s->apic && apic_deliver(s->apic, &msg);
    /* Only fixed and lowest-priority interrupts end with an EOI to the I/O APIC. */
    if (level && accepted && (dm == APIC_DM_FIXED || dm == APIC_DM_LOWEST))
        s->rte[pin] |= RTE_REMOTE_IRR;
}

static void ioapic_set_pin(struct ioapic_state *s, unsigned pin, bool level)
{
    bool was_active = ioapic_pin_active(s, pin);
    if (level)
        s->pins |= 1u << pin;
    else
        s->pins &= ~(1u << pin);
    bool active = ioapic_pin_active(s, pin);
    if (s->rte[pin] & RTE_LEVEL) {
        if (active)
            ioapic_service(s, pin);
    } else if (active && !was_active) {
        ioapic_service(s, pin);
    }
}

/* The router's GSI n on pin n, except ISA IRQ 0 on pin 2 and nothing from GSI 2 (see the design note). */
static void ioapic_gsi_changed(void *opaque, unsigned gsi, bool level)
{
    struct ioapic_state *s = opaque;
    if (gsi == 2 || gsi >= IOAPIC_PINS)
        return;
    ioapic_set_pin(s, gsi == 0 ? 2 : gsi, level);
}

static void ioapic_eoi_state(struct ioapic_state *s, uint8_t vector)
{
    for (unsigned pin = 0; pin < IOAPIC_PINS; pin++) {
        if (!(s->rte[pin] & RTE_REMOTE_IRR) || (s->rte[pin] & RTE_VECTOR) != vector)
            continue;
        s->rte[pin] &= ~RTE_REMOTE_IRR;
        ioapic_service(s, pin);
    }
}

static void ioapic_eoi_listener(void *opaque, uint8_t vector)
{
    ioapic_eoi_state(opaque, vector);
}

/* ---- Registers ------------------------------------------------------------------------ */

static uint32_t ioapic_reg_read(const struct ioapic_state *s, uint8_t reg)
{
    switch (reg) {
    case IOAPIC_REG_ID:
        return (uint32_t)s->id << 24;
    case IOAPIC_REG_VER:
        return IOAPIC_VERSION;
    case IOAPIC_REG_ARB:
        return (uint32_t)s->arb << 24;
    default:
        break;
    }
    if (reg >= IOAPIC_REG_REDIR && reg < IOAPIC_REG_REDIR + 2 * IOAPIC_PINS) {
        uint64_t e = s->rte[(reg - IOAPIC_REG_REDIR) / 2];
        return (reg & 1) ? (uint32_t)(e >> 32) : (uint32_t)e;
    }
    return 0;
}

static void ioapic_rte_write(struct ioapic_state *s, unsigned pin, bool high, uint32_t value)
{
    uint64_t e = s->rte[pin];
    if (high)
        e = (e & 0xffffffffULL) | ((uint64_t)value << 32);
    else
        e = (e & ~0xffffffffULL) | value;
    /* Delivery status and remote IRR are read-only; an edge-triggered entry has no remote IRR. */
    e = (e & RTE_WMASK) | (s->rte[pin] & RTE_REMOTE_IRR);
    if (!(e & RTE_LEVEL))
        e &= ~RTE_REMOTE_IRR;
    s->rte[pin] = e;
    /* A level-triggered pin that is active when unmasked is delivered now. */
    if (e & RTE_LEVEL)
        ioapic_service(s, pin);
}

static void ioapic_reg_write(struct ioapic_state *s, uint8_t reg, uint32_t value)
{
    if (reg == IOAPIC_REG_ID) {
        /* The arbitration ID is loaded from the ID when the ID is written (datasheet 3.2.3). */
        s->id = (value >> 24) & 0xf;
        s->arb = s->id;
        return;
    }
    if (reg >= IOAPIC_REG_REDIR && reg < IOAPIC_REG_REDIR + 2 * IOAPIC_PINS)
        ioapic_rte_write(s, (reg - IOAPIC_REG_REDIR) / 2, reg & 1, value);
    /* Version, arbitration and unimplemented registers ignore writes. */
}

static uint64_t ioapic_mmio_read(void *opaque, uint64_t offset, unsigned size)
{
    struct ioapic_state *s = opaque;
    if (offset == IOAPIC_IOREGSEL)
        return s->regsel;
    if (offset == IOAPIC_IOWIN)
        return ioapic_reg_read(s, s->regsel);
    return 0;
}

static void ioapic_mmio_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    struct ioapic_state *s = opaque;
    if (offset == IOAPIC_IOREGSEL)
        s->regsel = (uint8_t)value;
    else if (offset == IOAPIC_IOWIN)
        ioapic_reg_write(s, s->regsel, (uint32_t)value);
}

static const struct io_ops g_ioapic_mmio_ops = {
    .read = ioapic_mmio_read,
    .write = ioapic_mmio_write,
    .min_access = 4,
    .max_access = 4,
};

/* ---- Board wiring ------------------------------------------------------------------------ */

static struct ioapic_state *ioapic_state_of(struct pdm_dev *dev)
{
    return dev && pdm_dev_desc(dev) == &g_dev_ioapic ? pdm_dev_state(dev) : NULL;
}

void ioapic_connect(struct pdm_dev *ioapic, struct pdm_dev *apic)
{
    struct ioapic_state *s = ioapic_state_of(ioapic);
    if (!s)
        return;
    s->apic = apic;
    apic_set_eoi_listener(apic, ioapic_eoi_listener, s);
}

void ioapic_eoi(struct pdm_dev *ioapic, uint8_t vector)
{
    struct ioapic_state *s = ioapic_state_of(ioapic);
    if (!s)
        return;
    vm_lock(s->vm);
    ioapic_eoi_state(s, vector);
    vm_unlock(s->vm);
}

/* ---- Lifecycle ---------------------------------------------------------------------------- */

static void ioapic_reset(struct pdm_dev *dev)
{
    struct ioapic_state *s = pdm_dev_state(dev);
    s->id = s->id_reset;
    s->arb = s->id_reset;
    s->regsel = 0;
    /* Entries come out of reset masked (datasheet 3.2.4). */
    for (unsigned pin = 0; pin < IOAPIC_PINS; pin++)
        s->rte[pin] = RTE_MASKED;
    s->pins = 0;
    for (unsigned gsi = 0; gsi < IOAPIC_PINS; gsi++)
        if (gsi != 2 && pdm_irq_gsi_level(s->vm, gsi))
            s->pins |= 1u << (gsi == 0 ? 2 : gsi);
}

static int ioapic_construct(struct pdm_dev *dev, const struct pdm_cfg *cfg)
{
    static const char *const keys[] = {"base", "id", NULL};
    struct ioapic_state *s = pdm_dev_state(dev);
    const char *name = pdm_dev_name(dev);
    s->dev = dev;
    s->vm = pdm_dev_vm(dev);
    int rc = pdm_cfg_validate(cfg, name, keys);
    uint64_t base = 0, id = 0;
    if (!rc)
        rc = pdm_cfg_get_u64(cfg, "base", IOAPIC_DEFAULT_BASE, &base);
    if (!rc)
        rc = pdm_cfg_get_u64(cfg, "id", 0, &id);
    if (rc)
        return rc;
    if ((base & (IOAPIC_MMIO_BYTES - 1)) || base > 0xffffffffULL - IOAPIC_MMIO_BYTES + 1) {
        LOG_ERR("%s: base=0x%llx must be a 4 KiB aligned address below 4 GiB", name, (unsigned long long)base);
        return VERR_CFG_BAD_VALUE;
    }
    if (id > 15) {
        LOG_ERR("%s: id=%llu does not fit the 4-bit I/O APIC ID", name, (unsigned long long)id);
        return VERR_CFG_BAD_VALUE;
    }
    s->base = base;
    s->id_reset = (uint8_t)id;
    rc = mem_region_create_mmio(s->vm, "ioapic", IOAPIC_MMIO_BYTES, &g_ioapic_mmio_ops, s, &s->mmio);
    if (!rc)
        rc = mem_region_map(s->mmio, base, IOAPIC_MMIO_PRIORITY);
    if (rc) {
        LOG_ERR("%s: cannot map the I/O APIC at 0x%llx: %s", name, (unsigned long long)base, rt_err_str(rc));
        return rc;
    }
    rc = pdm_irq_sink_add(s->vm, ioapic_gsi_changed, s);
    if (rc)
        return rc;
    s->sink_added = true;
    ioapic_reset(dev);
    return 0;
}

static void ioapic_destroy(struct pdm_dev *dev)
{
    struct ioapic_state *s = pdm_dev_state(dev);
    if (s->sink_added)
        pdm_irq_sink_remove(s->vm, ioapic_gsi_changed, s);
    mem_region_destroy(s->mmio);
}

/* ---- Saved state -------------------------------------------------------------------------- */

static int ioapic_save(struct pdm_dev *dev, struct ssm *ssm)
{
    struct ioapic_state *s = pdm_dev_state(dev);
    ssm_put_u8(ssm, s->id);
    ssm_put_u8(ssm, s->arb);
    ssm_put_u8(ssm, s->regsel);
    ssm_put_u32(ssm, s->pins);
    ssm_put_u8(ssm, IOAPIC_PINS);
    for (unsigned pin = 0; pin < IOAPIC_PINS; pin++)
        ssm_put_u64(ssm, s->rte[pin]);
    return ssm_status(ssm);
}

static int ioapic_load(struct pdm_dev *dev, struct ssm *ssm, uint32_t version)
{
    struct ioapic_state *s = pdm_dev_state(dev);
    if (version != IOAPIC_SSM_VERSION)
        return VERR_SSM_VERSION;
    uint8_t id = 0, arb = 0, regsel = 0, count = 0;
    uint32_t pins = 0;
    uint64_t rte[IOAPIC_PINS];
    ssm_get_u8(ssm, &id);
    ssm_get_u8(ssm, &arb);
    ssm_get_u8(ssm, &regsel);
    ssm_get_u32(ssm, &pins);
    ssm_get_u8(ssm, &count);
    int rc = ssm_status(ssm);
    if (rc)
        return rc;
    if (count != IOAPIC_PINS || id > 15 || arb > 15 || (pins >> IOAPIC_PINS)) {
        LOG_ERR("saved state of %s is inconsistent", pdm_dev_name(dev));
        return VERR_SSM_CORRUPT;
    }
    for (unsigned pin = 0; pin < IOAPIC_PINS; pin++)
        ssm_get_u64(ssm, &rte[pin]);
    rc = ssm_status(ssm);
    if (rc)
        return rc;
    for (unsigned pin = 0; pin < IOAPIC_PINS; pin++) {
        if (rte[pin] & ~(RTE_WMASK | RTE_REMOTE_IRR)) {
            LOG_ERR("saved state of %s: redirection entry %u is invalid", pdm_dev_name(dev), pin);
            return VERR_SSM_CORRUPT;
        }
    }
    s->id = id;
    s->arb = arb;
    s->regsel = regsel;
    s->pins = pins;
    memcpy(s->rte, rte, sizeof(rte));
    return 0;
}

const struct pdm_dev_desc g_dev_ioapic = {
    .name = "ioapic",
    .description = "82093AA I/O APIC (24 pins)",
    .state_size = sizeof(struct ioapic_state),
    .ssm_version = IOAPIC_SSM_VERSION,
    .construct = ioapic_construct,
    .reset = ioapic_reset,
    .save = ioapic_save,
    .load = ioapic_load,
    .destroy = ioapic_destroy,
};
