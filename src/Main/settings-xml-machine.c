/* settings-xml-machine.c - the machine file's schema for the strict reader (format: settings-xml-read.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "settings-internal.h"

/* Child bits for cfg_xml_once, per parent element. */
enum { M_DESCRIPTION, M_HARDWARE, M_STATE, M_SNAPSHOTS, M_EXTRA };
enum {
    H_CPU, H_MEMORY, H_FIRMWARE, H_CHIPSET, H_PLATFORM, H_BOOT, H_STORAGE, H_NETWORK, H_AUDIO, H_USB,
    H_DISPLAY, H_REMOTE, H_FOLDERS, H_SERIAL, H_TPM
};

struct cfg_machine_parse {
    struct cfg_machine *m;
    unsigned snapshot_depth;
    size_t snapshot_total;
    struct rt_uuid *uuids; /* snapshot UUIDs seen so far, sorted */
};

static int cfg_uuid_cmp(const struct rt_uuid *a, const struct rt_uuid *b)
{
    return memcmp(a->bytes, b->bytes, sizeof(a->bytes));
}

/* Inserts into the sorted set; false when already there. */
static bool cfg_uuid_set_add(struct rt_uuid *set, size_t count, const struct rt_uuid *u)
{
    size_t lo = 0, hi = count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = cfg_uuid_cmp(&set[mid], u);
        if (c == 0)
            return false;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    memmove(&set[lo + 1], &set[lo], (count - lo) * sizeof(*set));
    set[lo] = *u;
    return true;
}

static int cfg_xml_check(struct cfg_xml *x, const char *what, const char *problem)
{
    return problem ? cfg_xml_fail(x, "%s%s", what, problem) : 0;
}

/* ---- Hardware elements --------------------------------------------------------------------------- */

static int cfg_read_boot_v1(struct cfg_xml *x, struct cfg_hardware *hw)
{
    const char *order = cfg_xml_attr_peek(x, "order", true);
    if (!order)
        return VERR_BAD_FORMAT;
    size_t n = strlen(order);
    if (n > CFG_BOOT_SLOTS)
        return cfg_xml_fail(x, "boot order \"%.40s\" names more than %u devices", order, CFG_BOOT_SLOTS);
    for (size_t i = 0; i < n; i++) {
        const char *letters = "fdcn";
        const char *at = strchr(letters, order[i]);
        if (!at)
            return cfg_xml_fail(x, "boot order \"%.40s\": '%c' is none of f, d, c, n", order, order[i]);
        enum cfg_boot_dev dev = (enum cfg_boot_dev)(CFG_BOOT_FLOPPY + (at - letters));
        for (size_t j = 0; j < i; j++) {
            if (hw->boot[j] == dev)
                return cfg_xml_fail(x, "boot order \"%.40s\" names '%c' twice", order, order[i]);
        }
        hw->boot[i] = dev;
    }
    return 0;
}

static int cfg_read_boot_order(struct cfg_xml *x, struct cfg_hardware *hw)
{
    unsigned pos = 0;
    enum cfg_boot_dev dev = CFG_BOOT_NONE;
    int rc = cfg_xml_attr_uint(x, "position", true, 1, CFG_BOOT_SLOTS, &pos);
    if (!rc)
        rc = CFG_XML_ATTR_ENUM(x, "device", true, cfg_boot_dev_parse, &dev);
    if (rc)
        return rc;
    if (!cfg_xml_mark(x, pos))
        return cfg_xml_fail(x, "boot position %u appears twice", pos);
    for (unsigned i = 0; i < CFG_BOOT_SLOTS && dev != CFG_BOOT_NONE; i++) {
        if (hw->boot[i] == dev)
            return cfg_xml_fail(x, "boot device %s appears twice", cfg_boot_dev_name(dev));
    }
    hw->boot[pos - 1] = dev;
    return 0;
}

static int cfg_read_controller(struct cfg_xml *x, struct cfg_hardware *hw)
{
    struct cfg_controller *c = cfg_array_push((void **)&hw->controllers, &hw->controller_count, sizeof(*c));
    if (!c)
        return cfg_xml_fail(x, "too many storage controllers");
    int rc = cfg_xml_attr_str(x, "name", true, &c->name);
    if (!rc)
        rc = CFG_XML_ATTR_ENUM(x, "bus", true, cfg_bus_parse, &c->bus);
    if (!rc)
        rc = cfg_xml_attr_uint(x, "ports", true, 1, 30, &c->port_count);
    if (!rc)
        rc = cfg_xml_attr_bool(x, "bootable", false, &c->bootable);
    if (rc)
        return rc;
    char buf[256];
    rc = cfg_xml_check(x, "", cfg_check_controller(c, buf, sizeof(buf)));
    for (size_t i = 0; !rc && i + 1 < hw->controller_count; i++) {
        if (!strcmp(hw->controllers[i].name, c->name))
            rc = cfg_xml_fail(x, "storage controller \"%.200s\" appears twice", c->name);
    }
    return rc;
}

static int cfg_read_attachment(struct cfg_xml *x, struct cfg_hardware *hw)
{
    struct cfg_attachment *a = cfg_array_push((void **)&hw->attachments, &hw->attachment_count, sizeof(*a));
    if (!a)
        return cfg_xml_fail(x, "too many attachments");
    int rc = cfg_xml_attr_str(x, "controller", true, &a->controller);
    if (!rc)
        rc = cfg_xml_attr_uint(x, "port", true, 0, 29, &a->port);
    if (!rc)
        rc = cfg_xml_attr_uint(x, "device", true, 0, 1, &a->device);
    if (!rc)
        rc = CFG_XML_ATTR_ENUM(x, "type", true, cfg_medium_type_parse, &a->type);
    if (!rc)
        rc = cfg_xml_attr_uuid(x, "medium", false, false, &a->medium);
    if (!rc)
        rc = cfg_xml_attr_bool(x, "nonrotational", false, &a->nonrotational);
    if (!rc)
        rc = cfg_xml_attr_bool(x, "hotpluggable", false, &a->hotpluggable);
    if (rc)
        return rc;
    char buf[256];
    return cfg_xml_check(x, "", cfg_check_attachment(hw, a, hw->attachment_count - 1, buf, sizeof(buf)));
}

static int cfg_read_adapter(struct cfg_xml *x, struct cfg_hardware *hw)
{
    unsigned slot = 0;
    int rc = cfg_xml_attr_uint(x, "slot", true, 0, CFG_MAX_NICS - 1, &slot);
    if (rc)
        return rc;
    if (!cfg_xml_mark(x, slot))
        return cfg_xml_fail(x, "network adapter slot %u appears twice", slot);
    struct cfg_nic *nic = &hw->nics[slot];
    cfg_xml_set_obj(x, nic);
    rc = cfg_xml_attr_bool(x, "enabled", false, &nic->enabled);
    if (!rc)
        rc = CFG_XML_ATTR_ENUM(x, "type", true, cfg_nic_type_parse, &nic->type);
    if (!rc)
        rc = CFG_XML_ATTR_ENUM(x, "attachment", true, cfg_nic_attach_parse, &nic->attach);
    if (!rc)
        rc = cfg_xml_attr_bool(x, "cable", false, &nic->cable_connected);
    if (!rc)
        rc = cfg_xml_attr_str(x, "bridge", false, &nic->bridge_interface);
    if (!rc)
        rc = cfg_xml_attr_str(x, "network", false, &nic->network);
    if (rc)
        return rc;
    const char *mac = cfg_xml_attr_peek(x, "mac", false);
    if (!mac)
        return 0;
    /* Schema 1 wrote MACs as six colon-separated pairs. */
    char plain[13];
    size_t n = 0, len = strlen(mac);
    if (cfg_xml_schema_version(x) == 1 && len == 17) {
        for (size_t i = 0; i < len; i++) {
            if (i % 3 != 2)
                plain[n++] = mac[i];
            else if (mac[i] != ':')
                return cfg_xml_fail(x, "mac=\"%s\" is not six colon-separated hex pairs", mac);
        }
        plain[n] = '\0';
        mac = plain;
    }
    char buf[128];
    rc = cfg_xml_check(x, "", cfg_check_mac(mac, buf, sizeof(buf)));
    if (!rc)
        rt_strlcpy(nic->mac, mac, sizeof(nic->mac));
    return rc;
}

static int cfg_read_forward(struct cfg_xml *x, struct cfg_nic *nic)
{
    struct cfg_port_forward *f = cfg_array_push((void **)&nic->forwards, &nic->forward_count, sizeof(*f));
    if (!f)
        return cfg_xml_fail(x, "too many port forwards");
    unsigned host_port = 0, guest_port = 0;
    int rc = cfg_xml_attr_str(x, "name", true, &f->name);
    const char *proto = rc ? NULL : cfg_xml_attr_peek(x, "protocol", true);
    if (!rc && !proto)
        return VERR_BAD_FORMAT;
    if (!rc && strcmp(proto, "tcp") && strcmp(proto, "udp"))
        return cfg_xml_fail(x, "protocol=\"%.40s\" is neither tcp nor udp", proto);
    if (!rc)
        f->udp = !strcmp(proto, "udp");
    if (!rc)
        rc = cfg_xml_attr_str(x, "hostIp", false, &f->host_ip);
    if (!rc)
        rc = cfg_xml_attr_uint(x, "hostPort", true, 1, 65535, &host_port);
    if (!rc)
        rc = cfg_xml_attr_str(x, "guestIp", false, &f->guest_ip);
    if (!rc)
        rc = cfg_xml_attr_uint(x, "guestPort", true, 1, 65535, &guest_port);
    if (rc)
        return rc;
    f->host_port = (uint16_t)host_port;
    f->guest_port = (uint16_t)guest_port;
    char buf[256];
    rc = cfg_xml_check(x, "", cfg_check_forward(f, buf, sizeof(buf)));
    for (size_t i = 0; !rc && i + 1 < nic->forward_count; i++) {
        if (!strcmp(nic->forwards[i].name, f->name))
            rc = cfg_xml_fail(x, "port forward \"%.200s\" appears twice", f->name);
    }
    return rc;
}

static int cfg_read_remote(struct cfg_xml *x, struct cfg_remote *r)
{
    unsigned vnc_port = r->vnc_port, rdp_port = r->rdp_port;
    int rc = cfg_xml_attr_bool(x, "vnc", false, &r->vnc_enabled);
    if (!rc)
        rc = cfg_xml_attr_uint(x, "vncPort", false, 0, 65535, &vnc_port);
    if (!rc)
        rc = cfg_xml_attr_bool(x, "rdp", false, &r->rdp_enabled);
    if (!rc)
        rc = cfg_xml_attr_uint(x, "rdpPort", false, 0, 65535, &rdp_port);
    if (!rc)
        rc = cfg_xml_attr_str(x, "address", false, &r->address);
    if (!rc)
        rc = CFG_XML_ATTR_ENUM(x, "auth", false, cfg_remote_auth_parse, &r->auth);
    if (!rc)
        rc = cfg_xml_attr_str(x, "password", false, &r->password);
    r->vnc_port = (uint16_t)vnc_port;
    r->rdp_port = (uint16_t)rdp_port;
    if (!rc && r->auth == CFG_AUTH_PASSWORD && !r->password)
        rc = cfg_xml_fail(x, "auth=\"password\" without a password");
    return rc;
}

static int cfg_read_hardware_child(struct cfg_xml *x, struct cfg_hardware *hw, const char *name)
{
    static const char *const names[] = { "CPU",   "Memory",  "Firmware", "Chipset",       "Platform",
                                         "Boot",  "Storage", "Network",  "Audio",         "USB",
                                         "Display", "RemoteDisplay", "SharedFolders", "Serial",
                                         "TrustedPlatformModule" };
    unsigned which = 0;
    while (which < RT_ARRAY_SIZE(names) && strcmp(names[which], name))
        which++;
    if (which == RT_ARRAY_SIZE(names) || (which == H_SERIAL && cfg_xml_schema_version(x) < 2))
        return cfg_xml_unexpected(x, name);
    if (!cfg_xml_once(x, which))
        return VERR_BAD_FORMAT;
    cfg_xml_set_obj(x, hw);
    int rc = 0;
    switch (which) {
    case H_CPU:
        return cfg_xml_attr_uint(x, "count", true, CFG_MIN_CPUS, CFG_MAX_CPUS, &hw->cpus);
    case H_MEMORY:
        if (cfg_xml_schema_version(x) >= 2)
            return cfg_xml_attr_u64(x, "sizeMiB", true, CFG_MIN_MEMORY_MIB, CFG_MAX_MEMORY_MIB, &hw->memory_mib);
        uint64_t bytes = 0;
        rc = cfg_xml_attr_u64(x, "sizeBytes", true, (uint64_t)CFG_MIN_MEMORY_MIB << 20,
                              (uint64_t)CFG_MAX_MEMORY_MIB << 20, &bytes);
        if (!rc && bytes % (1u << 20))
            rc = cfg_xml_fail(x, "sizeBytes=\"%llu\" is not a whole number of MiB", (unsigned long long)bytes);
        hw->memory_mib = bytes >> 20;
        return rc;
    case H_FIRMWARE:
        return CFG_XML_ATTR_ENUM(x, "type", true, cfg_firmware_parse, &hw->firmware);
    case H_CHIPSET:
        return CFG_XML_ATTR_ENUM(x, "type", true, cfg_chipset_parse, &hw->chipset);
    case H_PLATFORM:
        rc = cfg_xml_attr_bool(x, "ioapic", false, &hw->ioapic);
        if (!rc)
            rc = cfg_xml_attr_bool(x, "hpet", false, &hw->hpet);
        if (!rc)
            rc = cfg_xml_attr_bool(x, "rtcUtc", false, &hw->rtc_utc);
        return rc;
    case H_BOOT:
        /* Positions the element leaves out boot nothing. */
        for (unsigned i = 0; i < CFG_BOOT_SLOTS; i++)
            hw->boot[i] = CFG_BOOT_NONE;
        return cfg_xml_schema_version(x) == 1 ? cfg_read_boot_v1(x, hw) : 0;
    case H_AUDIO:
        rc = cfg_xml_attr_bool(x, "enabled", false, &hw->audio.enabled);
        if (!rc)
            rc = CFG_XML_ATTR_ENUM(x, "driver", true, cfg_audio_driver_parse, &hw->audio.driver);
        if (!rc)
            rc = CFG_XML_ATTR_ENUM(x, "controller", true, cfg_audio_ctl_parse, &hw->audio.controller);
        if (!rc)
            rc = cfg_xml_attr_bool(x, "output", false, &hw->audio.output);
        if (!rc)
            rc = cfg_xml_attr_bool(x, "input", false, &hw->audio.input);
        return rc;
    case H_USB:
        rc = cfg_xml_attr_bool(x, "enabled", false, &hw->usb.enabled);
        if (!rc)
            rc = CFG_XML_ATTR_ENUM(x, "controller", true, cfg_usb_ctl_parse, &hw->usb.controller);
        return rc;
    case H_DISPLAY:
        rc = CFG_XML_ATTR_ENUM(x, "adapter", true, cfg_graphics_parse, &hw->display.adapter);
        if (!rc)
            rc = cfg_xml_attr_uint(x, "vramMiB", true, CFG_MIN_VRAM_MIB, CFG_MAX_VRAM_MIB, &hw->display.vram_mib);
        if (!rc)
            rc = cfg_xml_attr_uint(x, "monitors", true, 1, CFG_MAX_MONITORS, &hw->display.monitors);
        return rc;
    case H_REMOTE:
        return cfg_read_remote(x, &hw->remote);
    case H_TPM:
        return CFG_XML_ATTR_ENUM(x, "type", true, cfg_tpm_parse, &hw->tpm);
    default: /* containers without attributes */
        return 0;
    }
}

static int cfg_read_in_hardware_list(struct cfg_xml *x, const char *parent, const char *name)
{
    struct cfg_hardware *hw = cfg_xml_obj(x, 1);
    char buf[256];
    if (!strcmp(parent, "Boot") && !strcmp(name, "Order") && cfg_xml_schema_version(x) >= 2)
        return cfg_read_boot_order(x, hw);
    if (!strcmp(parent, "Storage") && !strcmp(name, "Controller"))
        return cfg_read_controller(x, hw);
    if (!strcmp(parent, "Storage") && !strcmp(name, "Attachment"))
        return cfg_read_attachment(x, hw);
    if (!strcmp(parent, "Network") && !strcmp(name, "Adapter"))
        return cfg_read_adapter(x, hw);
    if (!strcmp(parent, "USB") && !strcmp(name, "Filter") && cfg_xml_schema_version(x) >= 2) {
        struct cfg_usb_filter *f = cfg_array_push((void **)&hw->usb.filters, &hw->usb.filter_count, sizeof(*f));
        if (!f)
            return cfg_xml_fail(x, "too many USB filters");
        int rc = cfg_xml_attr_str(x, "name", true, &f->name);
        if (!rc)
            rc = cfg_xml_attr_bool(x, "active", false, &f->active);
        if (!rc)
            rc = cfg_xml_attr_str(x, "vendorId", false, &f->vendor_id);
        if (!rc)
            rc = cfg_xml_attr_str(x, "productId", false, &f->product_id);
        if (!rc)
            rc = cfg_xml_attr_str(x, "serial", false, &f->serial);
        return rc ? rc : cfg_xml_check(x, "", cfg_check_usb_filter(f, buf, sizeof(buf)));
    }
    if (!strcmp(parent, "SharedFolders") && !strcmp(name, "Folder")) {
        struct cfg_shared_folder *f =
            cfg_array_push((void **)&hw->shared_folders, &hw->shared_folder_count, sizeof(*f));
        if (!f)
            return cfg_xml_fail(x, "too many shared folders");
        int rc = cfg_xml_attr_str(x, "name", true, &f->name);
        if (!rc)
            rc = cfg_xml_attr_str(x, "hostPath", true, &f->host_path);
        if (!rc)
            rc = cfg_xml_attr_bool(x, "readonly", false, &f->readonly);
        if (!rc)
            rc = cfg_xml_attr_bool(x, "automount", false, &f->automount);
        if (!rc)
            rc = cfg_xml_attr_str(x, "mountPoint", false, &f->mount_point);
        if (!rc)
            rc = cfg_xml_check(x, "", cfg_check_shared_folder(f, buf, sizeof(buf)));
        for (size_t i = 0; !rc && i + 1 < hw->shared_folder_count; i++) {
            if (!strcmp(hw->shared_folders[i].name, f->name))
                rc = cfg_xml_fail(x, "shared folder \"%.200s\" appears twice", f->name);
        }
        return rc;
    }
    if (!strcmp(parent, "Serial") && !strcmp(name, "Port")) {
        unsigned slot = 0;
        int rc = cfg_xml_attr_uint(x, "slot", true, 0, CFG_SERIAL_PORTS - 1, &slot);
        if (rc)
            return rc;
        if (!cfg_xml_mark(x, slot))
            return cfg_xml_fail(x, "serial port slot %u appears twice", slot);
        struct cfg_serial *s = &hw->serial[slot];
        rc = cfg_xml_attr_bool(x, "enabled", false, &s->enabled);
        if (!rc)
            rc = cfg_xml_attr_str(x, "backend", false, &s->backend);
        return rc ? rc : cfg_xml_check(x, "", cfg_check_serial(s, buf, sizeof(buf)));
    }
    return cfg_xml_unexpected(x, name);
}

/* ---- Machine and snapshots ------------------------------------------------------------------------ */

static int cfg_read_root(struct cfg_xml *x, struct cfg_machine *m)
{
    int rc = cfg_xml_attr_schema_version(x, CFG_SCHEMA_VERSION);
    m->schema_version = cfg_xml_schema_version(x);
    if (!rc)
        rc = cfg_xml_attr_uuid(x, "uuid", true, false, &m->uuid);
    if (!rc)
        rc = cfg_xml_attr_str(x, "name", true, &m->name);
    if (!rc)
        rc = cfg_xml_attr_str(x, "osType", false, &m->ostype);
    if (!rc)
        rc = cfg_xml_attr_str(x, "snapshotFolder", false, &m->snapshot_folder);
    if (!rc)
        rc = cfg_xml_attr_uuid(x, "currentSnapshot", false, false, &m->current_snapshot);
    if (rc)
        return rc;
    if (!cfg_is_valid_machine_name(m->name))
        return cfg_xml_fail(x, "name=\"%.200s\" is not a valid machine name", m->name);
    if (m->ostype && !cfg_is_valid_ostype_id(m->ostype))
        return cfg_xml_fail(x, "osType=\"%.60s\" is not an OS type id (letters, digits, '_')", m->ostype);
    char buf[256];
    return m->snapshot_folder ? cfg_xml_check(x, "", cfg_check_inner_path("snapshotFolder", m->snapshot_folder,
                                                                          buf, sizeof(buf)))
                              : 0;
}

static int cfg_read_snapshot(struct cfg_xml *x, struct cfg_machine_parse *mp)
{
    struct cfg_snapshot *owner = cfg_xml_obj(x, 1); /* the <Snapshots> frame: NULL at the top */
    struct cfg_snapshot **arr = owner ? &owner->children : &mp->m->snapshots;
    size_t *count = owner ? &owner->child_count : &mp->m->snapshot_count;
    if (mp->snapshot_total >= CFG_MAX_SNAPSHOTS)
        return cfg_xml_fail(x, "more than %u snapshots", CFG_MAX_SNAPSHOTS);
    if (mp->snapshot_depth >= CFG_MAX_SNAPSHOT_DEPTH)
        return cfg_xml_fail(x, "snapshots nested deeper than %u levels", CFG_MAX_SNAPSHOT_DEPTH);
    struct cfg_snapshot *grown = realloc(*arr, (*count + 1) * sizeof(**arr));
    if (!grown)
        return cfg_xml_fail(x, "out of memory");
    *arr = grown;
    struct cfg_snapshot *s = &grown[(*count)++];
    memset(s, 0, sizeof(*s));
    cfg_hardware_init_empty(&s->hw);
    cfg_xml_set_obj(x, s);
    mp->snapshot_depth++;

    int rc = cfg_xml_attr_uuid(x, "uuid", true, false, &s->uuid);
    if (!rc)
        rc = cfg_xml_attr_str(x, "name", true, &s->name);
    if (!rc)
        rc = cfg_xml_attr_u64(x, "timeNs", true, 0, UINT64_MAX, &s->time_ns);
    if (!rc)
        rc = cfg_xml_attr_bool(x, "online", false, &s->online);
    if (!rc)
        rc = cfg_xml_attr_str(x, "stateFile", false, &s->state_file);
    if (rc)
        return rc;
    if (!*s->name || strlen(s->name) > CFG_MAX_NAME_BYTES)
        return cfg_xml_fail(x, "snapshot name is empty or longer than %u bytes", CFG_MAX_NAME_BYTES);
    char buf[256];
    if (s->state_file && (rc = cfg_xml_check(x, "snapshot ", cfg_check_inner_path("stateFile", s->state_file, buf,
                                                                                    sizeof(buf)))))
        return rc;
    if (s->online && !s->state_file)
        return cfg_xml_fail(x, "an online snapshot needs its stateFile");
    if (!cfg_uuid_set_add(mp->uuids, mp->snapshot_total, &s->uuid))
        return cfg_xml_fail(x, "snapshot UUID appears twice in the tree");
    mp->snapshot_total++;
    return 0;
}

static int cfg_machine_on_start(struct cfg_xml *x, void *doc, const char *name)
{
    struct cfg_machine_parse *mp = doc;
    struct cfg_machine *m = mp->m;
    const char *parent = cfg_xml_parent(x);
    if (!parent) {
        cfg_xml_set_obj(x, m);
        return cfg_read_root(x, m);
    }
    bool in_root = !strcmp(parent, "VireoMachine"), in_snap = !strcmp(parent, "Snapshot");
    if (in_root || in_snap) {
        if (!strcmp(name, "Description")) {
            cfg_xml_want_text(x);
            return cfg_xml_once(x, M_DESCRIPTION) ? 0 : VERR_BAD_FORMAT;
        }
        if (!strcmp(name, "Hardware")) {
            struct cfg_snapshot *s = cfg_xml_obj(x, 1);
            cfg_xml_set_obj(x, in_root ? &m->hw : &s->hw);
            return cfg_xml_once(x, M_HARDWARE) ? 0 : VERR_BAD_FORMAT;
        }
        if (!strcmp(name, "Snapshots")) {
            cfg_xml_set_obj(x, in_root ? NULL : cfg_xml_obj(x, 1));
            return cfg_xml_once(x, M_SNAPSHOTS) ? 0 : VERR_BAD_FORMAT;
        }
    }
    if (in_root && !strcmp(name, "State")) {
        if (!cfg_xml_once(x, M_STATE))
            return VERR_BAD_FORMAT;
        int rc = CFG_XML_ATTR_ENUM(x, "state", true, cfg_machine_state_parse, &m->state);
        if (!rc)
            rc = cfg_xml_attr_u64(x, "changedNs", false, 0, UINT64_MAX, &m->state_changed_ns);
        if (!rc)
            rc = cfg_xml_attr_str(x, "stateFile", false, &m->state_file);
        if (rc)
            return rc;
        char buf[256];
        if (m->state_file && (rc = cfg_xml_check(x, "", cfg_check_inner_path("stateFile", m->state_file, buf,
                                                                              sizeof(buf)))))
            return rc;
        if (m->state == CFG_STATE_SAVED && !m->state_file)
            return cfg_xml_fail(x, "state \"saved\" needs its stateFile");
        return 0;
    }
    if (in_root && !strcmp(name, "ExtraData"))
        return cfg_xml_once(x, M_EXTRA) ? 0 : VERR_BAD_FORMAT;
    if (!strcmp(parent, "Snapshots") && !strcmp(name, "Snapshot"))
        return cfg_read_snapshot(x, mp);
    if (!strcmp(parent, "ExtraData") && !strcmp(name, "Item")) {
        char *key = NULL, *value = NULL;
        int rc = cfg_xml_attr_str(x, "key", true, &key);
        if (!rc)
            rc = cfg_xml_attr_str(x, "value", true, &value);
        if (!rc && !*key)
            rc = cfg_xml_fail(x, "extra data key is empty");
        if (!rc && cfg_extra_get(m->extra, m->extra_count, key))
            rc = cfg_xml_fail(x, "extra data key \"%.200s\" appears twice", key);
        if (!rc && m->extra_count >= CFG_MAX_LIST_ITEMS)
            rc = cfg_xml_fail(x, "more than %u extra data items", CFG_MAX_LIST_ITEMS);
        if (!rc && cfg_extra_set(&m->extra, &m->extra_count, key, value) != 0)
            rc = cfg_xml_fail(x, "out of memory");
        free(key);
        free(value);
        return rc;
    }
    if (!strcmp(parent, "Hardware"))
        return cfg_read_hardware_child(x, cfg_xml_obj(x, 1), name);
    if (!strcmp(parent, "Adapter") && !strcmp(name, "Forward"))
        return cfg_read_forward(x, cfg_xml_obj(x, 1));
    if (!strcmp(parent, "Boot") || !strcmp(parent, "Storage") || !strcmp(parent, "Network") ||
        !strcmp(parent, "USB") || !strcmp(parent, "SharedFolders") || !strcmp(parent, "Serial"))
        return cfg_read_in_hardware_list(x, parent, name);
    return cfg_xml_unexpected(x, name);
}

static int cfg_machine_on_end(struct cfg_xml *x, void *doc, const char *name)
{
    struct cfg_machine_parse *mp = doc;
    struct cfg_machine *m = mp->m;
    if (!strcmp(name, "Description")) {
        char *text = strdup(cfg_xml_text(x));
        if (!text)
            return cfg_xml_fail(x, "out of memory");
        const char *parent = cfg_xml_parent(x);
        char **dst = !strcmp(parent, "Snapshot") ? &((struct cfg_snapshot *)cfg_xml_obj(x, 1))->description
                                                 : &m->description;
        free(*dst);
        *dst = text;
        return 0;
    }
    if (!strcmp(name, "Snapshot")) {
        mp->snapshot_depth--;
        if (!cfg_xml_seen(x, M_HARDWARE))
            return cfg_xml_fail(x, "<Snapshot> lacks its <Hardware>");
        return 0;
    }
    if (cfg_xml_depth(x) != 1)
        return 0;
    if (!cfg_xml_seen(x, M_HARDWARE))
        return cfg_xml_fail(x, "<VireoMachine> lacks its <Hardware>");
    if (m->snapshot_count == 0 && !rt_uuid_is_null(&m->current_snapshot))
        return cfg_xml_fail(x, "currentSnapshot is set but there are no snapshots");
    if (m->snapshot_count > 0 && !cfg_snapshot_find(m, &m->current_snapshot))
        return cfg_xml_fail(x, "currentSnapshot does not name a snapshot in the tree");
    return 0;
}

static const struct cfg_xml_schema cfg_machine_schema = {
    .root = "VireoMachine",
    .start = cfg_machine_on_start,
    .end = cfg_machine_on_end,
};

int cfg_machine_parse(const char *name, const void *xml, size_t len, struct cfg_machine **out, struct cfg_error *err)
{
    struct cfg_machine_parse mp = { 0 };
    mp.m = calloc(1, sizeof(*mp.m));
    mp.uuids = malloc(CFG_MAX_SNAPSHOTS * sizeof(*mp.uuids));
    if (!mp.m || !mp.uuids) {
        free(mp.m);
        free(mp.uuids);
        cfg_error_set(err, "%s: out of memory", name);
        return VERR_NO_MEMORY;
    }
    cfg_hardware_init_empty(&mp.m->hw);
    int rc = cfg_xml_parse(name, xml, len, &cfg_machine_schema, &mp, err);
    free(mp.uuids);
    if (rc) {
        cfg_machine_free(mp.m);
        return rc;
    }
    *out = mp.m;
    return 0;
}
