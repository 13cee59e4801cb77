/* startvm-config.c - vireo-vm --startvm: a machine's settings turned into the VM and board parameters, and the map from storage attachments to the board's drives. */
/*
 * Design: everything the board gets comes from the settings; nothing is assumed about a
 * machine.  The PC board has one IDE function (two channels of two devices), one AHCI
 * controller of PC_AHCI_PORTS ports and one virtio-blk function per disk, so a machine's
 * controllers map onto those by bus: at most one controller per bus, IDE slot (channel,
 * device) to board port channel * 2 + device, SATA port to AHCI port, virtio ports to
 * virtio-blk functions in port order.  Every drive gets an explicit board port, so the
 * drive names the board makes ("ide-C-D", "ahci-pN", "vblkN") are known here and kept in
 * p->drives for the control commands.  What the settings describe but Vireo cannot
 * emulate yet is a warning in the log, once per device, never an error: the machine still
 * runs, without that device.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vireo/block.h"
#include "vm-process.h"

#define LOG_COMPONENT "startvm"

/* "IDE port 1 device 0" (for messages). */
static void slot_text(const struct cfg_attachment *a, char *out, size_t len)
{
    snprintf(out, len, "attachment '%s' port %u device %u", a->controller ? a->controller : "?", a->port, a->device);
}

static const struct cfg_controller *controller_of(const struct cfg_hardware *hw, const char *name)
{
    for (size_t i = 0; name && i < hw->controller_count; i++)
        if (hw->controllers[i].name && !strcmp(hw->controllers[i].name, name))
            return &hw->controllers[i];
    return NULL;
}

/* One controller per bus: the board has one of each (virtio disks are separate functions of one bus). */
static int check_controllers(const struct cfg_hardware *hw)
{
    for (size_t i = 0; i < hw->controller_count; i++) {
        for (size_t j = 0; j < i; j++) {
            if (hw->controllers[i].bus == hw->controllers[j].bus) {
                LOG_ERR("controllers '%s' and '%s' are both %s controllers; Vireo's PC has one %s controller "
                        "(move the attachments to one of them)",
                        hw->controllers[j].name, hw->controllers[i].name, cfg_bus_name(hw->controllers[i].bus),
                        cfg_bus_name(hw->controllers[i].bus));
                return VERR_CFG_BAD_VALUE;
            }
        }
    }
    return 0;
}

/* Looks the attachment's medium up in the registry and checks that its file is there. */
static int resolve_medium(const struct cfg_attachment *a, struct vmproc_drive *d)
{
    char slot[160], id[RT_UUID_STR_LEN];
    slot_text(a, slot, sizeof(slot));
    rt_uuid_to_str(&a->medium, id);
    struct cfg_medium med = { 0 };
    struct cfg_error err = { { 0 } };
    int rc = mach_medium_find(id, &med, &err);
    if (rc) {
        LOG_ERR("%s: medium {%s} is not in the media registry (%s)", slot, id, err.msg[0] ? err.msg : rt_err_str(rc));
        return rc;
    }
    if (!med.location || !rt_path_exists(med.location)) {
        LOG_ERR("%s: the %s image '%s' (medium {%s}) does not exist", slot, cfg_medium_type_name(a->type),
                med.location ? med.location : "(no location)", id);
        mach_medium_clear(&med);
        return VERR_FILE_NOT_FOUND;
    }
    enum blk_format fmt;
    if (med.format && blk_format_from_name(med.format, &fmt) != 0) {
        LOG_ERR("%s: medium '%s' has the format '%s' in the registry, which Vireo does not know", slot, med.location,
                med.format);
        mach_medium_clear(&med);
        return VERR_CFG_BAD_VALUE;
    }
    d->path = med.location;
    d->format = med.format;
    med.location = med.format = NULL;
    mach_medium_clear(&med);
    return 0;
}

/* Adds the drive for one attachment at board bus/port. */
static int add_drive(struct vmproc *p, const struct cfg_attachment *a, enum pc_storage_bus bus, int port,
                     unsigned virtio_index)
{
    char slot[160];
    slot_text(a, slot, sizeof(slot));
    if (p->drive_count >= PC_MAX_DRIVES) {
        LOG_ERR("%s: more than %u drives", slot, PC_MAX_DRIVES);
        return VERR_CFG_BAD_VALUE;
    }
    struct vmproc_drive *d = &p->drives[p->drive_count];
    memset(d, 0, sizeof(*d));
    d->controller = strdup(a->controller);
    if (!d->controller)
        return VERR_NO_MEMORY;
    d->port = a->port;
    d->device = a->device;
    d->type = a->type;
    if (bus == PC_BUS_IDE)
        snprintf(d->name, sizeof(d->name), "ide-%d-%d", port / 2, port % 2);
    else if (bus == PC_BUS_AHCI)
        snprintf(d->name, sizeof(d->name), "ahci-p%d", port);
    else
        snprintf(d->name, sizeof(d->name), "vblk%u", virtio_index);
    p->drive_count++; /* counted now so vmproc_config_free releases what follows */
    if (!rt_uuid_is_null(&a->medium)) {
        int rc = resolve_medium(a, d);
        if (rc)
            return rc;
    } else if (a->type != CFG_MEDIUM_DVD) {
        LOG_ERR("%s: a hard disk attachment without a medium", slot);
        return VERR_CFG_BAD_VALUE;
    }
    struct pc_drive *pd = &p->pp.drives[p->pp.drive_count++];
    *pd = (struct pc_drive){
        .bus = bus,
        .port = bus == PC_BUS_VIRTIO ? -1 : port,
        .cdrom = a->type == CFG_MEDIUM_DVD,
        .path = d->path,
        .format = d->format,
    };
    LOG_INFO("%s: %s %s with %s", slot, a->type == CFG_MEDIUM_DVD ? "DVD drive" : "hard disk", d->name,
             d->path ? d->path : "no medium");
    return 0;
}

/* The board port for an attachment, or an error naming it. */
static int board_port(const struct cfg_controller *c, const struct cfg_attachment *a, int *port)
{
    char slot[160];
    slot_text(a, slot, sizeof(slot));
    switch (c->bus) {
    case CFG_BUS_IDE:
        if (a->port > 1 || a->device > 1) {
            LOG_ERR("%s: IDE has channels 0-1 with devices 0-1", slot);
            return VERR_CFG_BAD_VALUE;
        }
        *port = (int)(a->port * 2 + a->device);
        return 0;
    case CFG_BUS_SATA:
        if (a->port >= PC_AHCI_PORTS || a->device != 0) {
            LOG_ERR("%s: Vireo's AHCI controller has ports 0-%u (device 0)", slot, PC_AHCI_PORTS - 1);
            return VERR_CFG_BAD_VALUE;
        }
        *port = (int)a->port;
        return 0;
    case CFG_BUS_VIRTIO:
        if (a->type == CFG_MEDIUM_DVD) {
            LOG_ERR("%s: virtio has no DVD drives; put the DVD drive on the IDE or SATA controller", slot);
            return VERR_CFG_BAD_VALUE;
        }
        if (a->port >= PC_VIRTIO_BLKS || a->device != 0) {
            LOG_ERR("%s: virtio disks use ports 0-%u (device 0)", slot, PC_VIRTIO_BLKS - 1);
            return VERR_CFG_BAD_VALUE;
        }
        *port = (int)a->port;
        return 0;
    }
    return VERR_CFG_BAD_VALUE;
}

static int build_drives(struct vmproc *p)
{
    const struct cfg_hardware *hw = &p->m->hw;
    int rc = check_controllers(hw);
    if (rc)
        return rc;
    /* Board order: IDE and SATA attachments as they come, virtio ones by port (their drive names count up). */
    for (int pass = 0; pass < 2; pass++) {
        unsigned virtio_index = 0;
        for (unsigned vport = 0; vport < (pass ? PC_VIRTIO_BLKS : 1); vport++) {
            for (size_t i = 0; i < hw->attachment_count; i++) {
                const struct cfg_attachment *a = &hw->attachments[i];
                char slot[160];
                slot_text(a, slot, sizeof(slot));
                const struct cfg_controller *c = controller_of(hw, a->controller);
                if (!c) {
                    if (pass == 0) {
                        LOG_ERR("%s: the machine has no controller of that name", slot);
                        return VERR_CFG_BAD_VALUE;
                    }
                    continue;
                }
                if (a->type == CFG_MEDIUM_FLOPPY) {
                    if (pass == 0)
                        LOG_WARN("%s: a floppy drive is configured but Vireo has no floppy controller yet; the "
                                 "guest sees none", slot);
                    continue;
                }
                if ((c->bus == CFG_BUS_VIRTIO) != (pass == 1) || (pass == 1 && a->port != vport))
                    continue;
                int port;
                if ((rc = board_port(c, a, &port)))
                    return rc;
                enum pc_storage_bus bus = c->bus == CFG_BUS_IDE ? PC_BUS_IDE
                                          : c->bus == CFG_BUS_SATA ? PC_BUS_AHCI : PC_BUS_VIRTIO;
                if ((rc = add_drive(p, a, bus, port, virtio_index)))
                    return rc;
                if (bus == PC_BUS_VIRTIO)
                    virtio_index++;
            }
        }
    }
    return 0;
}

/* The settings' boot slots as SeaBIOS's order letters ('c' disks, 'd' DVD drives). */
static void build_boot_order(struct vmproc *p, char *order, size_t size)
{
    size_t n = 0;
    order[0] = '\0';
    for (unsigned i = 0; i < CFG_BOOT_SLOTS; i++) {
        enum cfg_boot_dev dev = p->m->hw.boot[i];
        char letter = dev == CFG_BOOT_DISK ? 'c' : dev == CFG_BOOT_DVD ? 'd' : 0;
        if (dev == CFG_BOOT_FLOPPY || dev == CFG_BOOT_NET)
            LOG_WARN("boot order slot %u (%s) is not available in Vireo yet (no %s); skipped", i + 1,
                     cfg_boot_dev_name(dev), dev == CFG_BOOT_FLOPPY ? "floppy controller" : "network boot");
        if (letter && !memchr(order, letter, n) && n + 1 < size) {
            order[n++] = letter;
            order[n] = '\0';
        }
    }
}

static const char *nic_attach_text(const struct cfg_nic *nic, char *buf, size_t len)
{
    switch (nic->attach) {
    case CFG_NET_NAT: return "NAT";
    case CFG_NET_BRIDGED:
        snprintf(buf, len, "bridged to %s", nic->bridge_interface ? nic->bridge_interface : "?");
        return buf;
    case CFG_NET_HOSTONLY:
        snprintf(buf, len, "host-only network %s", nic->network ? nic->network : "?");
        return buf;
    case CFG_NET_INTERNAL:
        snprintf(buf, len, "internal network %s", nic->network ? nic->network : "?");
        return buf;
    default: return "not attached";
    }
}

/* What the settings describe but this build cannot emulate: one warning each, so people know why it is missing. */
static void log_missing_devices(const struct cfg_hardware *hw)
{
    char buf[160];
    for (unsigned i = 0; i < CFG_MAX_NICS; i++) {
        const struct cfg_nic *nic = &hw->nics[i];
        if (nic->enabled)
            LOG_WARN("network adapter %u (%s, %s) is configured but Vireo has no network device yet; the guest sees "
                     "none", i + 1, cfg_nic_type_name(nic->type), nic_attach_text(nic, buf, sizeof(buf)));
    }
    if (hw->audio.enabled)
        LOG_WARN("audio (%s controller, %s driver) is configured but Vireo has no audio device yet; the guest has "
                 "no sound", cfg_audio_ctl_name(hw->audio.controller), cfg_audio_driver_name(hw->audio.driver));
    if (hw->usb.enabled)
        LOG_WARN("USB (%s controller, %zu device filters) is configured but Vireo has no USB controller yet; the "
                 "guest sees none", cfg_usb_ctl_name(hw->usb.controller), hw->usb.filter_count);
    for (size_t i = 0; i < hw->shared_folder_count; i++)
        LOG_WARN("shared folder '%s' (%s) is configured but Vireo has no shared-folder device yet; the guest "
                 "sees none", hw->shared_folders[i].name, hw->shared_folders[i].host_path);
    if (hw->chipset != CFG_CHIPSET_PIIX3)
        LOG_WARN("chipset %s is configured but Vireo emulates the PIIX3 only; the guest sees a PIIX3",
                 cfg_chipset_name(hw->chipset));
}

/*
 * The display adapter: VBE is the board's "std" VGA; virtio-gpu does not exist yet, so it gets the
 * same VGA (a guest still has a screen).  Video memory is the next power of two the card takes
 * (4-256 MiB): VirtualBox-style settings hold any size from 1 MiB.
 */
static void build_display(struct vmproc *p, const struct cfg_display *d)
{
    if (d->adapter == CFG_GFX_NONE) {
        p->pp.vga = "none";
        return;
    }
    if (d->adapter == CFG_GFX_VIRTIO)
        LOG_WARN("display adapter %s is configured but Vireo has no virtio-gpu device yet; the guest gets the "
                 "standard VGA with Bochs VBE instead", cfg_graphics_name(d->adapter));
    p->pp.vga = "std";
    unsigned mib = 4;
    while (mib < d->vram_mib && mib < 256)
        mib <<= 1;
    if (mib != d->vram_mib)
        LOG_INFO("display: %u MiB of video memory configured; the VGA gets %u MiB (a power of two from 4 to 256)",
                 d->vram_mib, mib);
    p->pp.vram_mib = mib;
    if (d->monitors > 1)
        LOG_WARN("%u monitors are configured but the VGA has one screen; the guest sees one", d->monitors);
}

static uint64_t host_ram_bytes(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    return pages > 0 && size > 0 ? (uint64_t)pages * (uint64_t)size : 0;
}

/* EFI firmware: OVMF's code and the machine's own variable store, made again from the template when missing. */
static int build_firmware(struct vmproc *p)
{
    if (p->m->hw.firmware != CFG_FW_EFI)
        return 0;
    p->pp.efi_code_path = PC_DEFAULT_EFI_CODE;
    free(p->efi_vars_path);
    p->efi_vars_path = mach_nvram_path(p->settings_path);
    if (!p->efi_vars_path)
        return VERR_NO_MEMORY;
    struct cfg_error err = { { 0 } };
    bool created = false;
    int rc = mach_nvram_create(p->efi_vars_path, NULL, &created, &err);
    if (rc) {
        LOG_ERR("%s", err.msg);
        return rc;
    }
    if (created)
        LOG_WARN("UEFI variable store %s was missing: made a fresh one from the template (earlier UEFI settings "
                 "and boot entries are gone)", p->efi_vars_path);
    p->pp.efi_vars_path = p->efi_vars_path;
    return 0;
}

int vmproc_config_build(struct vmproc *p)
{
    static char boot_order[CFG_BOOT_SLOTS + 1];
    const struct cfg_hardware *hw = &p->m->hw;
    p->vp.name = p->m->name;
    p->vp.vcpu_count = hw->cpus;
    if (hw->cpus == 0 || hw->cpus > 32) {
        LOG_ERR("the machine has %u CPUs; Vireo runs 1 to 32", hw->cpus);
        return VERR_CFG_BAD_VALUE;
    }
    if (hw->memory_mib < 4 || hw->memory_mib > (UINT64_MAX >> 21)) {
        LOG_ERR("the machine's memory size of %llu MiB is out of range", (unsigned long long)hw->memory_mib);
        return VERR_CFG_BAD_VALUE;
    }
    p->vp.ram_bytes = hw->memory_mib << 20;
    p->pp.acpi = true; /* the settings have no switch for it: every machine gets ACPI tables */
    uint64_t host = host_ram_bytes();
    if (host && p->vp.ram_bytes > host) {
        LOG_ERR("the machine's memory of %llu MiB is more than this host's %llu MiB of RAM",
                (unsigned long long)hw->memory_mib, (unsigned long long)(host >> 20));
        return VERR_CFG_BAD_VALUE;
    }
    build_boot_order(p, boot_order, sizeof(boot_order));
    p->pp.boot_order = boot_order[0] ? boot_order : NULL;
    if (!boot_order[0])
        LOG_WARN("the boot order names no disk or DVD drive; the firmware tries DVD drives, then disks");
    for (unsigned i = 0; i < CFG_SERIAL_PORTS && i < PC_SERIAL_PORTS; i++) {
        if (hw->serial[i].enabled)
            p->pp.serial[i] = hw->serial[i].backend && hw->serial[i].backend[0] ? hw->serial[i].backend : "null";
    }
    p->pp.hpet = hw->hpet;
    log_missing_devices(hw);
    build_display(p, &hw->display);
    if (hw->tpm == CFG_TPM_V2_0) {
        /* swtpm keeps the TPM's state (its keys, NV) beside the settings, in the machine folder. */
        free(p->tpm_dir);
        p->tpm_dir = mach_path(p->settings_path, "tpm");
        if (!p->tpm_dir)
            return VERR_NO_MEMORY;
        p->pp.tpm_state_dir = p->tpm_dir;
    }
    int rc = build_firmware(p);
    return rc ? rc : build_drives(p);
}

void vmproc_config_free(struct vmproc *p)
{
    for (unsigned i = 0; i < p->drive_count; i++) {
        free(p->drives[i].controller);
        free(p->drives[i].path);
        free(p->drives[i].format);
    }
    p->drive_count = 0;
    p->pp.drive_count = 0;
    free(p->tpm_dir);
    p->tpm_dir = NULL;
    p->pp.tpm_state_dir = NULL;
    free(p->efi_vars_path);
    p->efi_vars_path = NULL;
    p->pp.efi_vars_path = NULL;
}

struct vmproc_drive *vmproc_drive_find(struct vmproc *p, const char *controller, unsigned port, unsigned device)
{
    for (unsigned i = 0; i < p->drive_count; i++) {
        struct vmproc_drive *d = &p->drives[i];
        if (!strcmp(d->controller, controller) && d->port == port && d->device == device)
            return d;
    }
    return NULL;
}
