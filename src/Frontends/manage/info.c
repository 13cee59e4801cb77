/* info.c - vireo-manage list and showvminfo: machines, hardware, media and snapshots as aligned text or key="value" lines. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manage.h"

/* Human output: "Label:" padded to one column so values line up. */
#define MG_COL "%-26s"

static const char *mg_onoff(bool v)
{
    return v ? "on" : "off";
}

static void mg_line(const char *label, const char *fmt, ...) RT_PRINTF(2, 3);
static void mg_line(const char *label, const char *fmt, ...)
{
    char l[64];
    snprintf(l, sizeof(l), "%s:", label);
    printf(MG_COL, l);
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

/* The NIC attachment as modifyvm spells it (an enabled NIC attached to nothing is "null"). */
const char *mg_nic_mode_name(const struct cfg_nic *nic)
{
    if (!nic->enabled)
        return "none";
    switch (nic->attach) {
    case CFG_NET_NONE: return "null";
    case CFG_NET_NAT: return "nat";
    case CFG_NET_BRIDGED: return "bridged";
    case CFG_NET_HOSTONLY: return "hostonly";
    case CFG_NET_INTERNAL: return "intnet";
    }
    return "none";
}

/* A serial backend as modifyvm's --uartmode spells it: "disconnected", "file,PATH", "server,PATH",
 * "tcpserver,PORT"; other specs unchanged. */
void mg_uart_mode_format(const char *backend, char *out, size_t len)
{
    if (!backend || !strcmp(backend, "null"))
        snprintf(out, len, "disconnected");
    else if (rt_str_starts_with(backend, "file:"))
        snprintf(out, len, "file,%s", backend + 5);
    else if (rt_str_starts_with(backend, "unix:"))
        snprintf(out, len, "server,%s", backend + 5);
    else if (rt_str_starts_with(backend, "tcp:"))
        snprintf(out, len, "tcpserver,%s", backend + 4);
    else
        snprintf(out, len, "%s", backend);
}

/* The medium behind an attachment: its location, "emptydrive", or a note when the registry lost it. */
static char *mg_attachment_location(const struct cfg_attachment *a)
{
    if (rt_uuid_is_null(&a->medium))
        return strdup("emptydrive");
    char uuid[RT_UUID_STR_LEN];
    rt_uuid_to_str(&a->medium, uuid);
    struct cfg_medium med;
    struct cfg_error err = {{0}};
    if (mach_medium_find(uuid, &med, &err) < 0)
        return rt_strdup_printf("unknown medium {%s}", uuid);
    char *loc = strdup(med.location);
    mach_medium_clear(&med);
    return loc;
}

static void mg_storage_print(const struct cfg_hardware *hw, bool mr)
{
    for (size_t i = 0; i < hw->controller_count; i++) {
        const struct cfg_controller *c = &hw->controllers[i];
        char key[160];
        if (mr) {
            snprintf(key, sizeof(key), "storagecontrollername%zu", i);
            mg_print_kv(key, c->name);
            snprintf(key, sizeof(key), "storagecontrollertype%zu", i);
            mg_print_kv(key, cfg_bus_name(c->bus));
            printf("storagecontrollerportcount%zu=%u\n", i, c->port_count);
            snprintf(key, sizeof(key), "storagecontrollerbootable%zu", i);
            mg_print_kv(key, mg_onoff(c->bootable));
        } else {
            mg_line("Storage Controller", "%s (%s, %u port%s%s)", c->name, cfg_bus_name(c->bus), c->port_count,
                    c->port_count == 1 ? "" : "s", c->bootable ? ", bootable" : "");
        }
        unsigned devices = c->bus == CFG_BUS_IDE ? 2 : 1;
        for (unsigned port = 0; port < c->port_count; port++) {
            for (unsigned dev = 0; dev < devices; dev++) {
                const struct cfg_attachment *a = NULL;
                for (size_t k = 0; k < hw->attachment_count; k++) {
                    const struct cfg_attachment *x = &hw->attachments[k];
                    if (!strcmp(x->controller, c->name) && x->port == port && x->device == dev)
                        a = x;
                }
                if (!a) {
                    if (mr) {
                        snprintf(key, sizeof(key), "\"%s-%u-%u\"", c->name, port, dev);
                        mg_print_kv(key, "none");
                    }
                    continue;
                }
                char *loc = mg_attachment_location(a);
                char uuid[RT_UUID_STR_LEN] = "";
                if (!rt_uuid_is_null(&a->medium))
                    rt_uuid_to_str(&a->medium, uuid);
                if (mr) {
                    snprintf(key, sizeof(key), "\"%s-%u-%u\"", c->name, port, dev);
                    mg_print_kv(key, loc ? loc : "");
                    snprintf(key, sizeof(key), "\"%s-type-%u-%u\"", c->name, port, dev);
                    mg_print_kv(key, a->type == CFG_MEDIUM_DVD ? "dvddrive" : cfg_medium_type_name(a->type));
                    if (uuid[0]) {
                        snprintf(key, sizeof(key), "\"%s-ImageUUID-%u-%u\"", c->name, port, dev);
                        mg_print_kv(key, uuid);
                    }
                } else {
                    char label[160];
                    snprintf(label, sizeof(label), "  %s (%u, %u)", c->name, port, dev);
                    mg_line(label, "%s%s%s%s%s", loc ? loc : "?", uuid[0] ? " (UUID: " : "", uuid,
                            uuid[0] ? ")" : "", a->type == CFG_MEDIUM_DVD ? " [DVD]" : "");
                }
                free(loc);
            }
        }
    }
}

static void mg_nics_print(const struct cfg_hardware *hw, bool mr)
{
    for (unsigned i = 0; i < CFG_MAX_NICS; i++) {
        const struct cfg_nic *n = &hw->nics[i];
        char key[64];
        unsigned idx = i + 1;
        if (mr) {
            snprintf(key, sizeof(key), "nic%u", idx);
            mg_print_kv(key, mg_nic_mode_name(n));
            if (!n->enabled)
                continue;
            snprintf(key, sizeof(key), "nictype%u", idx);
            mg_print_kv(key, cfg_nic_type_name(n->type));
            snprintf(key, sizeof(key), "macaddress%u", idx);
            mg_print_kv(key, n->mac);
            snprintf(key, sizeof(key), "cableconnected%u", idx);
            mg_print_kv(key, mg_onoff(n->cable_connected));
            if (n->bridge_interface) {
                snprintf(key, sizeof(key), "bridgeadapter%u", idx);
                mg_print_kv(key, n->bridge_interface);
            }
            if (n->network) {
                snprintf(key, sizeof(key), n->attach == CFG_NET_HOSTONLY ? "hostonlyadapter%u" : "intnet%u", idx);
                mg_print_kv(key, n->network);
            }
            for (size_t f = 0; f < n->forward_count; f++) {
                const struct cfg_port_forward *pf = &n->forwards[f];
                char value[512];
                snprintf(value, sizeof(value), "%s,%s,%s,%u,%s,%u", pf->name, pf->udp ? "udp" : "tcp",
                         pf->host_ip ? pf->host_ip : "", pf->host_port, pf->guest_ip ? pf->guest_ip : "",
                         pf->guest_port);
                snprintf(key, sizeof(key), "Forwarding%u(%zu)", idx, f);
                mg_print_kv(key, value);
            }
            continue;
        }
        if (!n->enabled)
            continue;
        char label[48];
        snprintf(label, sizeof(label), "NIC %u", idx);
        const char *net = n->bridge_interface && n->attach == CFG_NET_BRIDGED ? n->bridge_interface : n->network;
        mg_line(label, "MAC: %s, Attachment: %s%s%s%s, Cable connected: %s, Type: %s", n->mac, mg_nic_mode_name(n),
                net ? " '" : "", net ? net : "", net ? "'" : "", mg_onoff(n->cable_connected),
                cfg_nic_type_name(n->type));
        for (size_t f = 0; f < n->forward_count; f++) {
            const struct cfg_port_forward *pf = &n->forwards[f];
            snprintf(label, sizeof(label), "NIC %u Rule(%zu)", idx, f);
            mg_line(label, "name = %s, protocol = %s, host ip = %s, host port = %u, guest ip = %s, guest port = %u",
                    pf->name, pf->udp ? "udp" : "tcp", pf->host_ip ? pf->host_ip : "", pf->host_port,
                    pf->guest_ip ? pf->guest_ip : "", pf->guest_port);
        }
    }
}

void mg_hw_print(const struct cfg_hardware *hw, bool mr)
{
    char key[64];
    if (mr) {
        printf("memory=%" PRIu64 "\ncpus=%u\n", hw->memory_mib, hw->cpus);
        mg_print_kv("firmware", cfg_firmware_name(hw->firmware));
        mg_print_kv("chipset", cfg_chipset_name(hw->chipset));
        mg_print_kv("ioapic", mg_onoff(hw->ioapic));
        mg_print_kv("hpet", mg_onoff(hw->hpet));
        mg_print_kv("tpm_type", cfg_tpm_name(hw->tpm));
        mg_print_kv("rtcuseutc", mg_onoff(hw->rtc_utc));
        for (unsigned i = 0; i < CFG_BOOT_SLOTS; i++) {
            snprintf(key, sizeof(key), "boot%u", i + 1);
            mg_print_kv(key, cfg_boot_dev_name(hw->boot[i]));
        }
        mg_print_kv("graphicscontroller", cfg_graphics_name(hw->display.adapter));
        printf("vram=%u\nmonitorcount=%u\n", hw->display.vram_mib, hw->display.monitors);
        mg_print_kv("vrde", mg_onoff(hw->remote.rdp_enabled));
        printf("vrdeport=%u\n", hw->remote.rdp_port);
        mg_print_kv("vrdeaddress", hw->remote.address ? hw->remote.address : "");
        mg_print_kv("vrdeauthtype", hw->remote.auth == CFG_AUTH_PASSWORD ? "password" : "null");
        mg_print_kv("vnc", mg_onoff(hw->remote.vnc_enabled));
        printf("vncport=%u\n", hw->remote.vnc_port);
        mg_print_kv("vncpassword", hw->remote.password ? "set" : "");
        mg_print_kv("audio", hw->audio.enabled ? cfg_audio_driver_name(hw->audio.driver) : "none");
        mg_print_kv("audiocontroller", cfg_audio_ctl_name(hw->audio.controller));
        mg_print_kv("audio_out", mg_onoff(hw->audio.output));
        mg_print_kv("audio_in", mg_onoff(hw->audio.input));
        mg_print_kv("usb", mg_onoff(hw->usb.enabled));
        mg_print_kv("usbohci", mg_onoff(hw->usb.enabled && hw->usb.controller == CFG_USB_OHCI));
        mg_print_kv("usbehci", mg_onoff(hw->usb.enabled && hw->usb.controller == CFG_USB_EHCI));
        mg_print_kv("usbxhci", mg_onoff(hw->usb.enabled && hw->usb.controller == CFG_USB_XHCI));
    } else {
        mg_line("Memory size", "%" PRIu64 "MB", hw->memory_mib);
        mg_line("Number of CPUs", "%u", hw->cpus);
        mg_line("Firmware", "%s", cfg_firmware_name(hw->firmware));
        mg_line("Chipset", "%s", cfg_chipset_name(hw->chipset));
        for (unsigned i = 0; i < CFG_BOOT_SLOTS; i++) {
            char label[32];
            snprintf(label, sizeof(label), "Boot Device %u", i + 1);
            mg_line(label, "%s", cfg_boot_dev_name(hw->boot[i]));
        }
        mg_line("I/O APIC", "%s", mg_onoff(hw->ioapic));
        mg_line("HPET", "%s", mg_onoff(hw->hpet));
        mg_line("TPM", "%s", hw->tpm == CFG_TPM_V2_0 ? "2.0 (swtpm)" : "none");
        mg_line("RTC", "%s", hw->rtc_utc ? "UTC" : "local time");
        mg_line("Graphics Controller", "%s", cfg_graphics_name(hw->display.adapter));
        mg_line("VRAM size", "%uMB", hw->display.vram_mib);
        mg_line("Monitor count", "%u", hw->display.monitors);
        char rport[16] = "auto", vport[16] = "auto";
        if (hw->remote.rdp_port)
            snprintf(rport, sizeof(rport), "%u", hw->remote.rdp_port);
        if (hw->remote.vnc_port)
            snprintf(vport, sizeof(vport), "%u", hw->remote.vnc_port);
        mg_line("VRDE", "%s (port %s%s%s, authentication: %s)", hw->remote.rdp_enabled ? "enabled" : "disabled",
                rport, hw->remote.address ? ", address " : "",
                hw->remote.address ? hw->remote.address : "",
                hw->remote.auth == CFG_AUTH_PASSWORD ? "password" : "null");
        mg_line("VNC", "%s (port %s, password %s)", hw->remote.vnc_enabled ? "enabled" : "disabled", vport, hw->remote.password ? "set" : "not set");
        if (hw->audio.enabled)
            mg_line("Audio", "enabled (driver: %s, controller: %s, output %s, input %s)",
                    cfg_audio_driver_name(hw->audio.driver), cfg_audio_ctl_name(hw->audio.controller),
                    mg_onoff(hw->audio.output), mg_onoff(hw->audio.input));
        else
            mg_line("Audio", "disabled");
        if (hw->usb.enabled)
            mg_line("USB", "enabled (%s)", cfg_usb_ctl_name(hw->usb.controller));
        else
            mg_line("USB", "disabled");
    }
    mg_storage_print(hw, mr);
    mg_nics_print(hw, mr);
    for (unsigned i = 0; i < CFG_SERIAL_PORTS; i++) {
        const struct cfg_serial *s = &hw->serial[i];
        char mode[4200];
        mg_uart_mode_format(s->backend, mode, sizeof(mode));
        if (mr) {
            snprintf(key, sizeof(key), "uart%u", i + 1);
            mg_print_kv(key, mg_onoff(s->enabled));
            snprintf(key, sizeof(key), "uartmode%u", i + 1);
            mg_print_kv(key, mode);
        } else if (s->enabled) {
            char label[32];
            snprintf(label, sizeof(label), "UART %u", i + 1);
            mg_line(label, "COM%u, %s", i + 1, mode);
        }
    }
    for (size_t i = 0; i < hw->shared_folder_count; i++) {
        const struct cfg_shared_folder *sf = &hw->shared_folders[i];
        if (mr) {
            snprintf(key, sizeof(key), "SharedFolderNameMachineMapping%zu", i + 1);
            mg_print_kv(key, sf->name);
            snprintf(key, sizeof(key), "SharedFolderPathMachineMapping%zu", i + 1);
            mg_print_kv(key, sf->host_path);
            snprintf(key, sizeof(key), "SharedFolderReadonlyMachineMapping%zu", i + 1);
            mg_print_kv(key, mg_onoff(sf->readonly));
            snprintf(key, sizeof(key), "SharedFolderAutoMountMachineMapping%zu", i + 1);
            mg_print_kv(key, mg_onoff(sf->automount));
        } else {
            mg_line(i == 0 ? "Shared folders" : "", "Name: '%s', Host path: '%s'%s%s", sf->name, sf->host_path,
                    sf->readonly ? ", read-only" : ", writable", sf->automount ? ", auto-mount" : "");
        }
    }
}

/* The snapshot tree: "SnapshotName-1-2"-style keys as VBoxManage, or an indented list. */
static void mg_snapshot_tree_print(const struct cfg_snapshot *s, size_t count, const char *suffix, unsigned depth,
                                   const struct rt_uuid *current, bool mr, char *current_node, size_t node_len)
{
    for (size_t i = 0; i < count; i++) {
        char node[512];
        /* The first root has no suffix; further roots (rare: a tree is normally one root) get "_N". */
        if (depth == 0)
            snprintf(node, sizeof(node), i == 0 ? "%s" : "%s_%zu", suffix, i + 1);
        else
            snprintf(node, sizeof(node), "%s-%zu", suffix, i + 1);
        char uuid[RT_UUID_STR_LEN];
        rt_uuid_to_str(&s[i].uuid, uuid);
        bool is_current = !memcmp(&s[i].uuid, current, sizeof(*current));
        if (mr) {
            char key[600];
            snprintf(key, sizeof(key), "SnapshotName%s", node);
            mg_print_kv(key, s[i].name);
            snprintf(key, sizeof(key), "SnapshotUUID%s", node);
            mg_print_kv(key, uuid);
            if (s[i].description && s[i].description[0]) {
                snprintf(key, sizeof(key), "SnapshotDescription%s", node);
                mg_print_kv(key, s[i].description);
            }
            if (is_current)
                snprintf(current_node, node_len, "SnapshotName%s", node);
        } else {
            printf("%*sName: %s (UUID: %s)%s%s\n", 3 + 3 * (int)depth, "", s[i].name, uuid,
                   s[i].online ? " [online]" : "", is_current ? " *" : "");
            if (s[i].description && s[i].description[0])
                printf("%*sDescription: %s\n", 3 + 3 * (int)depth, "", s[i].description);
        }
        /* Children are numbered from 1 under their parent's key. */
        mg_snapshot_tree_print(s[i].children, s[i].child_count, node, depth + 1, current, mr, current_node, node_len);
    }
}

void mg_snapshots_print(struct cfg_machine *m, bool mr)
{
    if (!m->snapshot_count) {
        if (!mr)
            printf("This machine does not have any snapshots\n");
        return;
    }
    char current_node[600] = "";
    mg_snapshot_tree_print(m->snapshots, m->snapshot_count, "", 0, &m->current_snapshot, mr, current_node,
                           sizeof(current_node));
    struct cfg_snapshot *cur = cfg_snapshot_find(m, &m->current_snapshot);
    if (mr && cur) {
        char uuid[RT_UUID_STR_LEN];
        rt_uuid_to_str(&cur->uuid, uuid);
        mg_print_kv("CurrentSnapshotName", cur->name);
        mg_print_kv("CurrentSnapshotUUID", uuid);
        mg_print_kv("CurrentSnapshotNode", current_node);
    }
}

void mg_vm_print(struct cfg_machine *m, const char *path, bool mr)
{
    char uuid[RT_UUID_STR_LEN], when[64];
    rt_uuid_to_str(&m->uuid, uuid);
    mg_format_time(m->state_changed_ns, when, sizeof(when));
    char *folder = mach_folder(path);
    char *snap = mach_path(path, m->snapshot_folder ? m->snapshot_folder : "Snapshots");
    char *logs = mach_path(path, "Logs");
    char *state_file = m->state_file ? mach_path(path, m->state_file) : NULL;
    const char *state = mg_vm_state_name(m, path);
    if (mr) {
        mg_print_kv("name", m->name);
        mg_print_kv("ostype", m->ostype ? m->ostype : "");
        mg_print_kv("UUID", uuid);
        mg_print_kv("CfgFile", path);
        mg_print_kv("SnapFldr", snap);
        mg_print_kv("LogFldr", logs);
        mg_print_kv("description", m->description ? m->description : "");
    } else {
        mg_line("Name", "%s", m->name);
        mg_line("Guest OS", "%s", m->ostype ? m->ostype : "");
        mg_line("UUID", "%s", uuid);
        mg_line("Config file", "%s", path);
        mg_line("Snapshot folder", "%s", snap ? snap : "");
        mg_line("Log folder", "%s", logs ? logs : "");
        if (m->description && m->description[0])
            mg_line("Description", "%s", m->description);
    }
    mg_hw_print(&m->hw, mr);
    if (mr) {
        mg_print_kv("VMState", state);
        if (m->state_changed_ns) /* 0: no change was ever recorded */
            mg_print_kv("VMStateChangeTime", when);
        if (state_file)
            mg_print_kv("VMStateFile", state_file);
    } else {
        if (m->state_changed_ns)
            mg_line("State", "%s (since %s)", state, when);
        else
            mg_line("State", "%s", state);
        if (state_file)
            mg_line("Saved state file", "%s", state_file);
    }
    /* The UEFI variable store (VirtualBox's "NVRAM file"); a missing one is made again at the next start. */
    char *nvram = m->hw.firmware == CFG_FW_EFI ? mach_nvram_path(path) : NULL;
    if (nvram) {
        if (mr)
            mg_print_kv("NVRAMFile", nvram);
        else
            mg_line("NVRAM file", "%s%s", nvram, rt_path_exists(nvram) ? "" : " (missing: made from the template at start)");
    }
    free(nvram);
    /* Where a running VM's VNC server listens (vireo-vm records it; one killed outright leaves it stale). */
    const char *vnc_at = cfg_extra_get(m->extra, m->extra_count, "Vireo/VNC/Listening");
    if (vnc_at && mach_is_running(path)) {
        if (mr)
            mg_print_kv("VNCListening", vnc_at);
        else
            mg_line("VNC server", "listening on %s", vnc_at);
    }
    if (!mr && m->snapshot_count)
        printf("Snapshots:\n\n");
    mg_snapshots_print(m, mr);
    free(folder);
    free(snap);
    free(logs);
    free(state_file);
}

/* ---- showvminfo ------------------------------------------------------------------------ */

enum { OPT_MR = 1, OPT_LONG };

static int mg_showvminfo(int argc, char **argv)
{
    static const struct mg_opt opts[] = {{"machinereadable", OPT_MR, false, 0, NULL, false}, {NULL, 0, 0, 0, 0, 0}};
    struct mg_args a;
    int rc = mg_args_parse(argc, argv, 1, opts, &a);
    if (rc)
        return rc;
    if ((rc = mg_args_want(&a, 1, 1, "the VM (name or UUID)"))) {
        mg_args_free(&a);
        return rc;
    }
    char *path = NULL;
    struct cfg_machine *m = NULL;
    rc = mg_vm_find(a.pos[0], &path, &m);
    if (!rc)
        mg_vm_print(m, path, mg_args_has(&a, OPT_MR));
    cfg_machine_free(m);
    free(path);
    mg_args_free(&a);
    return rc;
}

/* ---- list -------------------------------------------------------------------------------- */

static int mg_list_vms(bool running_only, bool lng)
{
    struct cfg_machine **ms = NULL;
    char **paths = NULL;
    size_t count = 0;
    struct cfg_error err = {{0}};
    int rc = mach_list(&ms, &paths, &count, &err);
    if (rc < 0)
        return mg_fail_err(rc, &err, "cannot read the machine registry");
    if (err.msg[0])
        mg_warn("%s", err.msg); /* some machine files could not be read; the rest are listed */
    for (size_t i = 0; i < count; i++) {
        if (running_only && !mach_is_running(paths[i]))
            continue;
        if (lng) {
            mg_vm_print(ms[i], paths[i], false);
            printf("\n");
            continue;
        }
        char uuid[RT_UUID_STR_LEN];
        rt_uuid_to_str(&ms[i]->uuid, uuid);
        printf("\"%s\" {%s}\n", ms[i]->name, uuid);
    }
    mach_list_free(ms, paths, count);
    return 0;
}

static int mg_list_ostypes(bool lng)
{
    char *path = cfg_ostypes_path();
    struct cfg_ostypes *t = NULL;
    struct cfg_error err = {{0}};
    int rc = path ? cfg_ostypes_load(path, &t, &err) : VERR_NO_MEMORY;
    if (rc < 0) {
        rc = mg_fail_err(rc, &err, "cannot read the OS types from '%s'", path ? path : "?");
        free(path);
        return rc;
    }
    free(path);
    for (size_t i = 0; i < t->count; i++) {
        const struct cfg_ostype *o = &t->types[i];
        printf("ID:          %s\nDescription: %s\nFamily ID:   %s\n64 bit:      %s\n", o->id, o->description,
               o->family, o->is_64bit ? "true" : "false");
        if (lng) {
            char disk[32];
            mg_format_size(o->disk_bytes, disk, sizeof(disk));
            printf("Memory:      %" PRIu64 " MB\nDisk:        %s\nCPUs:        %u\nFirmware:    %s\n", o->memory_mib,
                   disk, o->cpus, cfg_firmware_name(o->firmware));
        }
        printf("\n");
    }
    cfg_ostypes_free(t);
    return 0;
}

static int mg_list_media(enum cfg_medium_type type, bool lng)
{
    struct cfg_medium *media = NULL;
    size_t count = 0;
    struct cfg_error err = {{0}};
    int rc = mach_medium_list(type, &media, &count, &err);
    if (rc < 0)
        return mg_fail_err(rc, &err, "cannot read the media registry");
    for (size_t i = 0; i < count; i++) {
        const struct cfg_medium *md = &media[i];
        char uuid[RT_UUID_STR_LEN], parent[RT_UUID_STR_LEN] = "base";
        rt_uuid_to_str(&md->uuid, uuid);
        if (!rt_uuid_is_null(&md->parent))
            rt_uuid_to_str(&md->parent, parent);
        printf("UUID:           %s\n", uuid);
        printf("Parent UUID:    %s\n", parent);
        printf("State:          %s\n", rt_path_exists(md->location) ? "created" : "inaccessible");
        printf("Type:           %s\n", md->readonly ? "readonly" : "normal");
        printf("Location:       %s\n", md->location);
        printf("Storage format: %s\n", md->format ? md->format : "");
        if (lng) {
            struct blk_image *img = NULL;
            /* A running VM holds its disks locked; their sizes are then simply not shown. */
            if (blk_open(md->location, BLK_FMT_AUTO, BLK_OPEN_READONLY | BLK_OPEN_NO_BACKING, &img) == 0) {
                char size[32];
                mg_format_size(blk_size_bytes(img), size, sizeof(size));
                printf("Capacity:       %s\n", size);
                blk_close(img);
            }
        }
        char **names = NULL;
        size_t n = 0;
        struct cfg_error uerr = {{0}};
        if (mach_medium_users(&md->uuid, &names, &n, &uerr) == 0 && n) {
            printf("In use by VMs:  ");
            for (size_t k = 0; k < n; k++)
                printf("%s%s", k ? ", " : "", names[k]);
            printf("\n");
        }
        for (size_t k = 0; k < n; k++)
            free(names[k]);
        free(names);
        printf("\n");
    }
    mach_medium_list_free(media, count);
    return 0;
}

static int mg_list(int argc, char **argv)
{
    static const struct mg_opt opts[] = {{"long", OPT_LONG, false, 0, NULL, false}, {NULL, 0, 0, 0, 0, 0}};
    struct mg_args a;
    int rc = mg_args_parse(argc, argv, 1, opts, &a);
    if (rc)
        return rc;
    if ((rc = mg_args_want(&a, 1, 1, "what to list (vms, runningvms, ostypes, hdds or dvds)"))) {
        mg_args_free(&a);
        return rc;
    }
    bool lng = mg_args_has(&a, OPT_LONG);
    const char *what = a.pos[0];
    if (!strcmp(what, "vms"))
        rc = mg_list_vms(false, lng);
    else if (!strcmp(what, "runningvms"))
        rc = mg_list_vms(true, lng);
    else if (!strcmp(what, "ostypes"))
        rc = mg_list_ostypes(lng);
    else if (!strcmp(what, "hdds"))
        rc = mg_list_media(CFG_MEDIUM_HDD, lng);
    else if (!strcmp(what, "dvds"))
        rc = mg_list_media(CFG_MEDIUM_DVD, lng);
    else
        rc = mg_usage("cannot list '%s': choose vms, runningvms, ostypes, hdds or dvds", what);
    mg_args_free(&a);
    return rc;
}

const struct mg_cmd g_mg_info_cmds[] = {
    {"list", "vms|runningvms|ostypes|hdds|dvds [--long]",
     "Lists registered machines (\"name\" {uuid}), the running ones, the OS types vireo-manage createvm\n"
     "--ostype accepts, or the registered hard disks and DVD images.\n"
     "  --long         all details (for vms: what showvminfo prints)\n",
     mg_list},
    {"showvminfo", "VM [--machinereadable]",
     "Shows a machine's settings, its state (asked from the VM process while it runs) and snapshots.\n"
     "  --machinereadable  key=\"value\" lines (values with \" and \\ escaped by a backslash); numbers\n"
     "                 unquoted.  Keys: name ostype UUID CfgFile SnapFldr LogFldr description memory\n"
     "                 cpus firmware chipset ioapic hpet tpm_type rtcuseutc boot1..boot4 graphicscontroller vram\n"
     "                 monitorcount vrde vrdeport vrdeaddress vrdeauthtype vnc vncport vncpassword (\"set\"\n"
     "                 or \"\") audio audiocontroller audio_out audio_in usb usbohci usbehci usbxhci,\n"
     "                 per controller storagecontrollername<i> storagecontrollertype<i>\n"
     "                 storagecontrollerportcount<i> storagecontrollerbootable<i>, per slot\n"
     "                 \"<controller>-<port>-<device>\" (a path, \"emptydrive\" or \"none\"),\n"
     "                 \"<controller>-type-<port>-<device>\" and \"<controller>-ImageUUID-<port>-<device>\",\n"
     "                 per NIC nic<n> nictype<n> macaddress<n> cableconnected<n> bridgeadapter<n>\n"
     "                 intnet<n> hostonlyadapter<n> Forwarding<n>(<i>)=\"name,proto,hostip,hostport,guestip,\n"
     "                 guestport\", uart<n> uartmode<n>, SharedFolderNameMachineMapping<i>\n"
     "                 SharedFolderPathMachineMapping<i> SharedFolderReadonlyMachineMapping<i>\n"
     "                 SharedFolderAutoMountMachineMapping<i>, VMState VMStateChangeTime (ISO 8601 UTC)\n"
     "                 VMStateFile, VNCListening (ADDRESS:PORT of a running VM's VNC server),\n"
     "                 SnapshotName SnapshotUUID SnapshotDescription (children add -1, -2,\n"
     "                 ...: SnapshotName-1-1), CurrentSnapshotName CurrentSnapshotUUID CurrentSnapshotNode.\n",
     mg_showvminfo},
};
const size_t g_mg_info_cmd_count = RT_ARRAY_SIZE(g_mg_info_cmds);
