/* ahci.c - AHCI 1.3 SATA controller (ICH9 AHCI IDs): PCI function, generic host control, interrupt, lifecycle. */

/*
 * Design: the HBA is a PCI function whose ABAR (BAR5) holds the generic host
 * control registers and six ports (AHCI 1.3 section 3).  This file owns the PCI
 * side, the global registers, the INTx level and the device lifecycle; ahci-port.c
 * owns each port's registers, its command list and FIS handling; ahci-ata.c runs
 * ATA commands (and ATAPI packets) against the port's drive.
 *
 * Commands run asynchronously: a drive request's done() arrives on the event loop
 * with the VM lock held and ends the command (FISes, PxCI/PxSACT, interrupts).  Every
 * port is independent; a port runs one non-queued command at a time or many NCQ
 * commands.  Reset and saved state first set `quiesce` (completions start nothing
 * new) and drain every drive, so saved state never holds a command in flight: the
 * slots still set in PxCI are fetched again from guest memory after a load.
 *
 * Interrupt: IS.IPS[p] is set while PxIS & PxIE is non-zero; the INTx level is
 * GHC.IE && IS != 0 (section 3.1.3, "level" semantics: it stays high while any
 * bit is set).  MSI is not offered.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ahci-internal.h"
#include "vireo/devices.h"
#include "vireo/rt.h"

#define LOG_COMPONENT "ahci"

/*
 * Version 1: the PCI function, GHC/IS, per port the registers and the internal
 * state that survives a drain (halt, COMRESET, SRST, NCQ error log, multiple count).
 */
#define AHCI_SSM_VERSION 2 /* 2: the CD tray lock */

#define AHCI_VENDOR_INTEL 0x8086
#define AHCI_DEVICE_ICH9  0x2922
#define AHCI_CLASS        0x010601 /* mass storage, SATA, AHCI 1.0 programming interface */
#define AHCI_PM_CAP       0x80

/* CAP (3.1.1): 64-bit, NCQ, SNotification, activity LED, CLO, Gen3, AHCI only, 32 slots, 6 ports. */
#define AHCI_CAP_VALUE                                                                                         \
    (AHCI_CAP_S64A | AHCI_CAP_SNCQ | AHCI_CAP_SSNTF | AHCI_CAP_SAL | AHCI_CAP_SCLO | AHCI_CAP_ISS_GEN3 |     \
     AHCI_CAP_SAM | ((AHCI_SLOTS - 1u) << AHCI_CAP_NCS_SHIFT) | (AHCI_PORTS - 1u))

void ahci_hba_update_irq(struct ahci_hba *hba)
{
    for (unsigned p = 0; p < AHCI_PORTS; p++)
        if (hba->ports[p].is & hba->ports[p].ie)
            hba->is |= 1u << p;
    bool level = (hba->ghc & AHCI_GHC_IE) && hba->is != 0;
    if (level != hba->irq_level) {
        hba->irq_level = level;
        pci_dev_irq_set(hba->pci, level);
    }
}

/* GHC.HR (section 10.4.3): every port and the global registers back to their reset values. */
static void ahci_hba_reset(struct ahci_hba *hba, bool power_on)
{
    hba->quiesce = true;
    for (unsigned p = 0; p < AHCI_PORTS; p++)
        ahci_port_drain(&hba->ports[p]);
    hba->ghc = AHCI_GHC_AE; /* CAP.SAM: AE is read-only one */
    hba->is = 0;
    for (unsigned p = 0; p < AHCI_PORTS; p++)
        ahci_port_reset(&hba->ports[p], !power_on);
    hba->quiesce = false;
    ahci_hba_update_irq(hba);
}

static uint32_t ahci_hba_read(struct ahci_hba *hba, unsigned offset)
{
    switch (offset) {
    case AHCI_HBA_CAP:
        return AHCI_CAP_VALUE;
    case AHCI_HBA_GHC:
        return hba->ghc;
    case AHCI_HBA_IS:
        return hba->is;
    case AHCI_HBA_PI:
        return (1u << AHCI_PORTS) - 1;
    case AHCI_HBA_VS:
        return AHCI_VERSION_1_3;
    default:
        /*
         * CCC_CTL/CCC_PORTS read as zero (coalescing disabled and not offered,
         * CAP.CCCS = 0), EM_LOC/EM_CTL as zero (CAP.EMS = 0), CAP2 as zero (no BIOS
         * handoff, no DevSleep), and BOHC is absent.
         */
        return 0;
    }
}

static void ahci_hba_write(struct ahci_hba *hba, unsigned offset, uint32_t value)
{
    switch (offset) {
    case AHCI_HBA_GHC:
        if (value & AHCI_GHC_HR) {
            /* The reset completes at once; HR reads back zero (section 3.1.2). */
            ahci_hba_reset(hba, false);
            return;
        }
        hba->ghc = AHCI_GHC_AE | (value & AHCI_GHC_IE);
        ahci_hba_update_irq(hba);
        break;
    case AHCI_HBA_IS:
        hba->is &= ~value;
        ahci_hba_update_irq(hba);
        break;
    default:
        /* CAP, PI and VS are read-only (HwInit); CCC, EM, CAP2 and BOHC are not offered. */
        break;
    }
}

static uint64_t ahci_mmio_read(void *opaque, uint64_t offset, unsigned size)
{
    struct ahci_hba *hba = opaque;
    (void)size;
    if (offset & 3)
        return 0;
    if (offset < AHCI_PORT_BASE)
        return ahci_hba_read(hba, (unsigned)offset);
    uint64_t p = (offset - AHCI_PORT_BASE) / AHCI_PORT_STRIDE;
    if (p >= AHCI_PORTS)
        return 0;
    return ahci_port_read(&hba->ports[p], (unsigned)((offset - AHCI_PORT_BASE) % AHCI_PORT_STRIDE));
}

static void ahci_mmio_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    struct ahci_hba *hba = opaque;
    (void)size;
    if (offset & 3)
        return;
    if (offset < AHCI_PORT_BASE) {
        ahci_hba_write(hba, (unsigned)offset, (uint32_t)value);
        return;
    }
    uint64_t p = (offset - AHCI_PORT_BASE) / AHCI_PORT_STRIDE;
    if (p < AHCI_PORTS)
        ahci_port_write(&hba->ports[p], (unsigned)((offset - AHCI_PORT_BASE) % AHCI_PORT_STRIDE),
                        (uint32_t)value);
}

/* The registers are 32 bits wide (section 3: "all registers ... accessed as DWORDs"). */
static const struct io_ops g_ahci_mmio_ops = {
    .read = ahci_mmio_read,
    .write = ahci_mmio_write,
    .min_access = 4,
    .max_access = 4,
};

/* ---- Lifecycle ---------------------------------------------------------------------------- */

static void ahci_pci_defaults(struct ahci_hba *hba)
{
    /* PCI power management 1.2 (PMC: D0/D3hot only); PMCSR's power state is writable. */
    pci_dev_set_u16(hba->pci, AHCI_PM_CAP + 2, 0x0003);
    pci_dev_set_wmask(hba->pci, AHCI_PM_CAP + 4, 2, 0x0003);
}

static void ahci_reset(struct pdm_dev *dev)
{
    struct ahci_hba *hba = pdm_dev_state(dev);
    ahci_hba_reset(hba, true);
    pci_dev_reset(hba->pci);
    hba->irq_level = false;
    ahci_pci_defaults(hba);
}

static int ahci_construct(struct pdm_dev *dev, const struct pdm_cfg *cfg)
{
    static const char *const own_keys[] = {PCI_CFG_LOCATION_KEYS, NULL};
    static const char *const prefixes[AHCI_PORTS] = {"port0", "port1", "port2", "port3", "port4", "port5"};
    struct ahci_hba *hba = pdm_dev_state(dev);
    const char *name = pdm_dev_name(dev);
    hba->dev = dev;
    hba->vm = pdm_dev_vm(dev);
    for (unsigned p = 0; p < AHCI_PORTS; p++) {
        hba->ports[p].hba = hba;
        hba->ports[p].index = p;
        for (unsigned s = 0; s < AHCI_SLOTS; s++) {
            hba->ports[p].cmds[s].port = &hba->ports[p];
            hba->ports[p].cmds[s].slot = s;
        }
    }

    int rc = drive_cfg_validate(cfg, name, own_keys, prefixes, AHCI_PORTS);
    if (rc)
        return rc;
    struct pci_bus *bus;
    unsigned devfn;
    rc = pci_cfg_get_location(hba->vm, cfg, name, -1, &bus, &devfn);
    if (rc)
        return rc;

    for (unsigned p = 0; p < AHCI_PORTS; p++) {
        char drive_name[64];
        snprintf(drive_name, sizeof(drive_name), "%s-p%u", name, p);
        rc = drive_create_from_cfg(hba->vm, cfg, prefixes[p], drive_name, &hba->ports[p].drive);
        if (rc) {
            LOG_ERR("%s: port %u: %s", name, p, rt_err_str(rc));
            return rc;
        }
        struct ahci_port *port = &hba->ports[p];
        ata_dev_init(&port->ata, port->drive);
        if (port->drive && drive_kind(port->drive) == DRIVE_CDROM) {
            port->atapi = true;
            port->reply = calloc(1, ATAPI_REPLY_MAX);
            if (!port->reply)
                return VERR_NO_MEMORY;
            atapi_dev_init(&port->cd, port->drive, ahci_port_media_changed, port);
        }
    }

    rc = mem_region_create_mmio(hba->vm, name, AHCI_ABAR_BYTES, &g_ahci_mmio_ops, hba, &hba->abar);
    if (!rc) {
        const struct pci_dev_params params = {
            .name = name,
            .vendor_id = AHCI_VENDOR_INTEL,
            .device_id = AHCI_DEVICE_ICH9,
            .class_code = AHCI_CLASS,
            .revision = 0x02,
            .subsys_vendor_id = AHCI_VENDOR_INTEL,
            .subsys_id = AHCI_DEVICE_ICH9,
        };
        rc = pci_dev_register(bus, devfn, &params, &hba->pci);
    }
    if (!rc)
        rc = pci_dev_bar_mem(hba->pci, 5, AHCI_ABAR_BYTES, 0, hba->abar);
    if (!rc)
        rc = pci_dev_set_irq_pin(hba->pci, 1);
    if (!rc)
        rc = pci_dev_add_cap(hba->pci, PCI_CAP_ID_PM, AHCI_PM_CAP, 8);
    if (rc) {
        LOG_ERR("%s: setup failed: %s", name, rt_err_str(rc));
        return rc;
    }
    ahci_reset(dev);
    return 0;
}

static void ahci_destroy(struct pdm_dev *dev)
{
    struct ahci_hba *hba = pdm_dev_state(dev);
    hba->quiesce = true;
    for (unsigned p = 0; p < AHCI_PORTS; p++)
        ahci_port_drain(&hba->ports[p]);
    for (unsigned p = 0; p < AHCI_PORTS; p++) {
        struct ahci_port *port = &hba->ports[p];
        for (unsigned s = 0; s < AHCI_SLOTS; s++) {
            free(port->cmds[s].sg);
            free(port->cmds[s].buf);
            port->cmds[s].sg = NULL;
            port->cmds[s].buf = NULL;
        }
        if (port->atapi)
            atapi_dev_fini(&port->cd);
        port->atapi = false;
        free(port->reply);
        port->reply = NULL;
        drive_destroy(port->drive);
        port->drive = NULL;
    }
    if (hba->pci)
        pci_dev_unregister(hba->pci);
    hba->pci = NULL;
    if (hba->abar)
        mem_region_destroy(hba->abar);
    hba->abar = NULL;
}

static int ahci_save(struct pdm_dev *dev, struct ssm *ssm)
{
    struct ahci_hba *hba = pdm_dev_state(dev);
    hba->quiesce = true;
    for (unsigned p = 0; p < AHCI_PORTS; p++)
        ahci_port_drain(&hba->ports[p]);
    pci_dev_save(hba->pci, ssm);
    ssm_put_u32(ssm, hba->ghc);
    ssm_put_u32(ssm, hba->is);
    int rc = 0;
    for (unsigned p = 0; p < AHCI_PORTS && !rc; p++)
        rc = ahci_port_save(&hba->ports[p], ssm);
    hba->quiesce = false;
    /* Saving does not stop the VM: slots that waited behind the drained commands start now. */
    for (unsigned p = 0; p < AHCI_PORTS; p++)
        ahci_port_process(&hba->ports[p]);
    return rc ? rc : ssm_status(ssm);
}

static int ahci_load(struct pdm_dev *dev, struct ssm *ssm, uint32_t version)
{
    struct ahci_hba *hba = pdm_dev_state(dev);
    if (version < 1 || version > AHCI_SSM_VERSION)
        return VERR_SSM_VERSION;
    hba->quiesce = true;
    for (unsigned p = 0; p < AHCI_PORTS; p++)
        ahci_port_drain(&hba->ports[p]);
    int rc = pci_dev_load(hba->pci, ssm);
    uint32_t ghc = 0, is = 0;
    ssm_get_u32(ssm, &ghc);
    ssm_get_u32(ssm, &is);
    if (!rc)
        rc = ssm_status(ssm);
    for (unsigned p = 0; p < AHCI_PORTS && !rc; p++)
        rc = ahci_port_load(&hba->ports[p], ssm, version);
    if (rc) {
        /* A port may be half loaded: give the guest a clean controller rather than a mix. */
        LOG_ERR("%s: saved state rejected: %s", pdm_dev_name(dev), rt_err_str(rc));
        ahci_hba_reset(hba, true);
        return rc;
    }
    hba->ghc = AHCI_GHC_AE | (ghc & AHCI_GHC_IE);
    hba->is = is & ((1u << AHCI_PORTS) - 1);
    hba->irq_level = pci_dev_get_u16(hba->pci, PCI_CFG_STATUS) & PCI_STATUS_INTERRUPT;
    hba->quiesce = false;
    ahci_hba_update_irq(hba);
    for (unsigned p = 0; p < AHCI_PORTS; p++)
        ahci_port_process(&hba->ports[p]);
    return 0;
}

const struct pdm_dev_desc g_dev_ahci = {
    .name = "ahci",
    .description = "AHCI 1.3 SATA controller (Intel ICH9 AHCI), 6 ports, NCQ, ATAPI",
    .state_size = sizeof(struct ahci_hba),
    .ssm_version = AHCI_SSM_VERSION,
    .construct = ahci_construct,
    .reset = ahci_reset,
    .save = ahci_save,
    .load = ahci_load,
    .destroy = ahci_destroy,
};
