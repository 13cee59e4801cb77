/* pc-storage.c - the PC board's storage: the PIIX3 IDE function, an AHCI controller and virtio-blk functions with their drives, and the firmware boot order. */
/*
 * Design: the board decides where every drive sits (controller, port, PCI slot) and
 * hands each controller its drives as configuration keys; the controllers open the
 * images.  The PIIX3 IDE function is always there, as on the real chipset.  An AHCI
 * controller is added when a drive asks for it, and each virtio-blk disk is its own PCI
 * function.  The boot order reaches SeaBIOS as the fw_cfg file "bootorder": one
 * OpenFirmware-style device path per line, which SeaBIOS matches against the paths it
 * builds for the devices it finds (PCI host "/pci@i0cf8", then "/<name>@<slot>[,<fn>]",
 * then "/drive@<channel or port>/disk@<unit>" for ATA and AHCI drives).
 */
#include <stdio.h>
#include <string.h>

#include "vireo/devices.h"
#include "vireo/pci.h"
#include "pc-internal.h"

#define LOG_COMPONENT "pc"

#define PC_SLOT_PIIX3        1 /* function 1 is the IDE controller */
#define PC_SLOT_AHCI         4 /* 2 and 3 stay free for graphics and the network adapter */
#define PC_SLOT_VIRTIO_FIRST 5
#define PC_BOOTORDER_MAX     2048

static const char *const g_ide_prefix[PC_IDE_PORTS] = { "p0m", "p0s", "p1m", "p1s" };

static const char *bus_name(enum pc_storage_bus bus)
{
    return bus == PC_BUS_IDE ? "IDE" : bus == PC_BUS_AHCI ? "AHCI" : "virtio";
}

static int set_drive_keys(struct pdm_cfg *cfg, const char *prefix, const struct pc_drive *d)
{
    char key[64];
    int rc = 0;
    snprintf(key, sizeof(key), "%s.media", prefix);
    rc = pdm_cfg_set(cfg, key, d->cdrom ? "cdrom" : "disk");
    if (!rc && d->path) {
        snprintf(key, sizeof(key), "%s.path", prefix);
        rc = pdm_cfg_set(cfg, key, d->path);
    }
    if (!rc && d->format) {
        snprintf(key, sizeof(key), "%s.format", prefix);
        rc = pdm_cfg_set(cfg, key, d->format);
    }
    if (!rc && d->readonly) {
        snprintf(key, sizeof(key), "%s.readonly", prefix);
        rc = pdm_cfg_set(cfg, key, "1");
    }
    return rc;
}

/* Picks ports: explicit ones first (checked), then the first free port for the rest. */
static int assign_ports(const struct pc_params *params, int *port_of)
{
    const struct pc_drive *ide_by_port[PC_IDE_PORTS] = { 0 }, *ahci_by_port[PC_AHCI_PORTS] = { 0 };
    unsigned virtio = 0;
    for (unsigned i = 0; i < params->drive_count; i++) {
        const struct pc_drive *d = &params->drives[i];
        port_of[i] = -1;
        if (d->bus == PC_BUS_VIRTIO) {
            if (d->cdrom) {
                LOG_ERR("drive %u: virtio-blk has no CD/DVD drives; put the CD on the IDE or AHCI controller", i + 1);
                return VERR_CFG_BAD_VALUE;
            }
            if (d->port >= 0) {
                LOG_ERR("drive %u: a virtio-blk disk has no port (each disk is its own PCI function)", i + 1);
                return VERR_CFG_BAD_VALUE;
            }
            if (++virtio > PC_VIRTIO_BLKS) {
                LOG_ERR("drive %u: more than %u virtio-blk disks", i + 1, PC_VIRTIO_BLKS);
                return VERR_CFG_BAD_VALUE;
            }
            continue;
        }
        if (!d->path && !d->cdrom) {
            LOG_ERR("drive %u: a hard disk needs an image file", i + 1);
            return VERR_CFG_BAD_VALUE;
        }
        if (d->port < 0)
            continue;
        unsigned max = d->bus == PC_BUS_IDE ? PC_IDE_PORTS : PC_AHCI_PORTS;
        const struct pc_drive **slot = d->bus == PC_BUS_IDE ? &ide_by_port[0] : &ahci_by_port[0];
        if ((unsigned)d->port >= max) {
            LOG_ERR("drive %u: %s port %d does not exist (ports 0-%u)", i + 1, bus_name(d->bus), d->port, max - 1);
            return VERR_CFG_BAD_VALUE;
        }
        if (slot[d->port]) {
            LOG_ERR("drive %u: %s port %d is already taken", i + 1, bus_name(d->bus), d->port);
            return VERR_CFG_BAD_VALUE;
        }
        slot[d->port] = d;
        port_of[i] = d->port;
    }
    for (unsigned i = 0; i < params->drive_count; i++) {
        const struct pc_drive *d = &params->drives[i];
        if (d->bus == PC_BUS_VIRTIO || d->port >= 0)
            continue;
        unsigned max = d->bus == PC_BUS_IDE ? PC_IDE_PORTS : PC_AHCI_PORTS;
        const struct pc_drive **slot = d->bus == PC_BUS_IDE ? &ide_by_port[0] : &ahci_by_port[0];
        /* An IDE CD goes to the secondary master when it is free, where PCs usually have it. */
        unsigned first = d->bus == PC_BUS_IDE && d->cdrom && !slot[2] ? 2 : 0;
        unsigned p = first;
        while (p < max && slot[p])
            p++;
        if (p == max) {
            for (p = 0; p < max && slot[p]; p++)
                ;
        }
        if (p == max) {
            LOG_ERR("drive %u: every %s port is taken (%u ports)", i + 1, bus_name(d->bus), max);
            return VERR_CFG_BAD_VALUE;
        }
        slot[p] = d;
        port_of[i] = (int)p;
    }
    return 0;
}

static int create_controller(struct pc_board *pc, const struct pdm_dev_desc *desc, const char *name,
                             struct pdm_cfg *cfg)
{
    struct pdm_dev *dev = NULL;
    int rc = pdm_dev_create(pc->vm, desc, name, cfg, &dev);
    pdm_cfg_destroy(cfg);
    return rc;
}

/* Appends line + '\n' to the boot order text. */
static int bootorder_add(char *buf, size_t *len, const char *line)
{
    size_t n = strlen(line);
    if (*len + n + 2 > PC_BOOTORDER_MAX)
        return VERR_TOO_LARGE;
    memcpy(buf + *len, line, n);
    buf[*len + n] = '\n';
    *len += n + 1;
    buf[*len] = '\0';
    return 0;
}

/* The device path SeaBIOS builds for drive i (see the design comment). */
static void drive_boot_path(const struct pc_drive *d, int port, unsigned virtio_index, char *out, size_t len)
{
    if (d->bus == PC_BUS_IDE)
        snprintf(out, len, "/pci@i0cf8/ide@%x,1/drive@%x/disk@%x", PC_SLOT_PIIX3, port / 2, port % 2);
    else if (d->bus == PC_BUS_AHCI)
        snprintf(out, len, "/pci@i0cf8/sata@%x/drive@%x/disk@0", PC_SLOT_AHCI, port);
    else
        snprintf(out, len, "/pci@i0cf8/scsi@%x/disk@0,0", PC_SLOT_VIRTIO_FIRST + virtio_index);
}

static int setup_bootorder(struct pc_board *pc, const struct pc_params *params, const int *port_of)
{
    char buf[PC_BOOTORDER_MAX + 1] = "", line[128];
    size_t len = 0;
    const char *order = params->boot_order ? params->boot_order : "dc";
    int rc = 0;
    for (const char *o = order; *o && !rc; o++) {
        bool want_cd = *o == 'd';
        /* Controllers in a fixed order: IDE, AHCI, virtio; ports ascending within each. */
        for (int bus = PC_BUS_IDE; bus <= PC_BUS_VIRTIO && !rc; bus++) {
            for (int port = -1; port < PC_AHCI_PORTS && !rc; port++) {
                unsigned virtio_index = 0;
                for (unsigned i = 0; i < params->drive_count && !rc; i++) {
                    const struct pc_drive *d = &params->drives[i];
                    bool is_virtio = d->bus == PC_BUS_VIRTIO;
                    if ((int)d->bus == bus && d->cdrom == want_cd && port_of[i] == port) {
                        drive_boot_path(d, port_of[i], virtio_index, line, sizeof(line));
                        rc = bootorder_add(buf, &len, line);
                    }
                    if (is_virtio)
                        virtio_index++;
                }
            }
        }
    }
    if (!rc && len)
        rc = fwcfg_add_file(pc->fwcfg, "bootorder", buf, len + 1);
    return rc;
}

int pc_storage_setup(struct pc_board *pc, const struct pc_params *params)
{
    int port_of[PC_MAX_DRIVES];
    if (params->drive_count > PC_MAX_DRIVES)
        return VERR_TOO_LARGE;
    for (const char *o = params->boot_order ? params->boot_order : ""; *o; o++) {
        if (*o != 'c' && *o != 'd') {
            LOG_ERR("boot order '%s': use 'c' (hard disks) and 'd' (CD/DVD drives)", params->boot_order);
            return VERR_CFG_BAD_VALUE;
        }
    }
    int rc = assign_ports(params, port_of);
    if (rc)
        return rc;

    /* The PIIX3's IDE function, with whatever drives sit on it. */
    struct pdm_cfg *cfg;
    if ((rc = pdm_cfg_create(&cfg)))
        return rc;
    pdm_cfg_set_u64(cfg, "slot", PC_SLOT_PIIX3);
    pdm_cfg_set_u64(cfg, "function", 1);
    for (unsigned i = 0; i < params->drive_count && !rc; i++)
        if (params->drives[i].bus == PC_BUS_IDE)
            rc = set_drive_keys(cfg, g_ide_prefix[port_of[i]], &params->drives[i]);
    if (rc) {
        pdm_cfg_destroy(cfg);
        return rc;
    }
    if ((rc = create_controller(pc, &g_dev_piix3_ide, "ide", cfg)))
        return rc;

    bool want_ahci = false;
    for (unsigned i = 0; i < params->drive_count; i++)
        want_ahci |= params->drives[i].bus == PC_BUS_AHCI;
    if (want_ahci) {
        if ((rc = pdm_cfg_create(&cfg)))
            return rc;
        pdm_cfg_set_u64(cfg, "slot", PC_SLOT_AHCI);
        for (unsigned i = 0; i < params->drive_count && !rc; i++) {
            if (params->drives[i].bus != PC_BUS_AHCI)
                continue;
            char prefix[16];
            snprintf(prefix, sizeof(prefix), "port%d", port_of[i]);
            rc = set_drive_keys(cfg, prefix, &params->drives[i]);
        }
        if (rc) {
            pdm_cfg_destroy(cfg);
            return rc;
        }
        if ((rc = create_controller(pc, &g_dev_ahci, "ahci", cfg)))
            return rc;
    }

    unsigned virtio_index = 0;
    for (unsigned i = 0; i < params->drive_count && !rc; i++) {
        if (params->drives[i].bus != PC_BUS_VIRTIO)
            continue;
        char name[16];
        snprintf(name, sizeof(name), "vblk%u", virtio_index);
        if ((rc = pdm_cfg_create(&cfg)))
            return rc;
        pdm_cfg_set_u64(cfg, "slot", PC_SLOT_VIRTIO_FIRST + virtio_index);
        rc = set_drive_keys(cfg, "drive", &params->drives[i]);
        if (rc) {
            pdm_cfg_destroy(cfg);
            return rc;
        }
        rc = create_controller(pc, &g_dev_virtio_blk, name, cfg);
        virtio_index++;
    }
    if (!rc)
        rc = setup_bootorder(pc, params, port_of);
    return rc;
}
