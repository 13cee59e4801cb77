/* settings-xml-write.c - formats machines and the registry as XML (schema 2), refusing what could not be read back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "settings-internal.h"

/*
 * The writer runs the reader's rules on the model as it goes: a file the reader would refuse is never
 * written (a control character in a name, a bad MAC, a dangling attachment), and the first problem is
 * reported as "FILE: what".  Output depends on nothing but the model, so the same model gives the same
 * bytes.
 */

struct cfg_out {
    char *buf;
    size_t len, cap;
    int rc;
    struct cfg_error *err;
    const char *file;
};

static void cfg_out_fail(struct cfg_out *o, int rc, const char *fmt, ...) RT_PRINTF(3, 4);
static void cfg_out_fail(struct cfg_out *o, int rc, const char *fmt, ...)
{
    if (o->rc)
        return;
    o->rc = rc;
    if (!o->err)
        return;
    char what[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    cfg_error_set(o->err, "%s: %s", o->file ? o->file : "settings", what);
}

static void cfg_out_mem(struct cfg_out *o, const char *s, size_t n)
{
    if (o->rc)
        return;
    if (n > o->cap - o->len) {
        size_t cap = o->cap ? o->cap : 4096;
        while (n > cap - o->len)
            cap *= 2;
        char *grown = realloc(o->buf, cap);
        if (!grown) {
            cfg_out_fail(o, VERR_NO_MEMORY, "out of memory");
            return;
        }
        o->buf = grown;
        o->cap = cap;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

static void cfg_out_str(struct cfg_out *o, const char *s)
{
    cfg_out_mem(o, s, strlen(s));
}

static void cfg_out_printf(struct cfg_out *o, const char *fmt, ...) RT_PRINTF(2, 3);
static void cfg_out_printf(struct cfg_out *o, const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    cfg_out_mem(o, line, (size_t)RT_MIN(n, (int)sizeof(line) - 1));
}

static void cfg_out_open(struct cfg_out *o, unsigned level, const char *element)
{
    for (unsigned i = 0; i < level; i++)
        cfg_out_str(o, "  ");
    cfg_out_printf(o, "<%s", element);
}

static void cfg_out_close(struct cfg_out *o, unsigned level, const char *element)
{
    for (unsigned i = 0; i < level; i++)
        cfg_out_str(o, "  ");
    cfg_out_printf(o, "</%s>\n", element);
}

static bool cfg_out_check_str(struct cfg_out *o, const char *s, const char *what, const char *name)
{
    if (!cfg_str_is_xml_safe(s)) {
        cfg_out_fail(o, VERR_INVALID_PARAMETER, "%s: %s is not valid UTF-8 or has control characters that "
                     "XML cannot carry", what, name);
        return false;
    }
    if (strlen(s) > CFG_MAX_VALUE_BYTES) {
        cfg_out_fail(o, VERR_TOO_LARGE, "%s: %s is longer than %u bytes", what, name, CFG_MAX_VALUE_BYTES);
        return false;
    }
    return true;
}

static void cfg_out_escaped(struct cfg_out *o, const char *s, bool attribute)
{
    for (const char *p = s; *p; p++) {
        switch (*p) {
        case '&': cfg_out_str(o, "&amp;"); break;
        case '<': cfg_out_str(o, "&lt;"); break;
        case '>': cfg_out_str(o, "&gt;"); break;
        case '\r': cfg_out_str(o, "&#13;"); break; /* parsers turn a raw CR into LF */
        case '"': cfg_out_str(o, attribute ? "&quot;" : "\""); break;
        case '\'': cfg_out_str(o, attribute ? "&apos;" : "'"); break;
        /* Attribute-value normalisation turns raw tabs and newlines into spaces (XML 1.0 section 3.3.3). */
        case '\t': cfg_out_str(o, attribute ? "&#9;" : "\t"); break;
        case '\n': cfg_out_str(o, attribute ? "&#10;" : "\n"); break;
        default: cfg_out_mem(o, p, 1); break;
        }
    }
}

/* An attribute with a string value; NULL writes nothing. */
static void cfg_out_attr(struct cfg_out *o, const char *name, const char *value, const char *what)
{
    if (!value || !cfg_out_check_str(o, value, what, name))
        return;
    cfg_out_printf(o, " %s=\"", name);
    cfg_out_escaped(o, value, true);
    cfg_out_str(o, "\"");
}

static void cfg_out_u64(struct cfg_out *o, const char *name, uint64_t v)
{
    cfg_out_printf(o, " %s=\"%llu\"", name, (unsigned long long)v);
}

static void cfg_out_bool(struct cfg_out *o, const char *name, bool v)
{
    cfg_out_printf(o, " %s=\"%s\"", name, v ? "true" : "false");
}

static void cfg_out_uuid(struct cfg_out *o, const char *name, const struct rt_uuid *u)
{
    char s[RT_UUID_STR_LEN];
    rt_uuid_to_str(u, s);
    cfg_out_printf(o, " %s=\"%s\"", name, s);
}

/* An enum through its name function; an out-of-range value has no name and cannot be written. */
static void cfg_out_enum(struct cfg_out *o, const char *name, const char *value_name, const char *what)
{
    if (!value_name)
        cfg_out_fail(o, VERR_OUT_OF_RANGE, "%s: %s has a value without a name", what, name);
    else
        cfg_out_printf(o, " %s=\"%s\"", name, value_name);
}

static void cfg_out_problem(struct cfg_out *o, const char *problem)
{
    if (problem)
        cfg_out_fail(o, VERR_INVALID_PARAMETER, "%s", problem);
}

static void cfg_out_range(struct cfg_out *o, const char *what, uint64_t v, uint64_t min, uint64_t max)
{
    if (v < min || v > max)
        cfg_out_fail(o, VERR_OUT_OF_RANGE, "%s %llu is out of range (%llu-%llu)", what, (unsigned long long)v,
                     (unsigned long long)min, (unsigned long long)max);
}

static void cfg_out_extra(struct cfg_out *o, unsigned level, const struct cfg_extra *extra, size_t count)
{
    if (count == 0)
        return;
    cfg_out_open(o, level, "ExtraData");
    cfg_out_str(o, ">\n");
    for (size_t i = 0; i < count; i++) {
        if (!extra[i].key || !*extra[i].key || !extra[i].value)
            cfg_out_fail(o, VERR_INVALID_PARAMETER, "extra data item %zu has no key or no value", i);
        for (size_t j = 0; j < i && !o->rc; j++) {
            if (!strcmp(extra[i].key, extra[j].key))
                cfg_out_fail(o, VERR_INVALID_PARAMETER, "extra data key \"%.200s\" appears twice", extra[i].key);
        }
        if (o->rc)
            return;
        cfg_out_open(o, level + 1, "Item");
        cfg_out_attr(o, "key", extra[i].key, "extra data");
        cfg_out_attr(o, "value", extra[i].value, "extra data");
        cfg_out_str(o, "/>\n");
    }
    cfg_out_close(o, level, "ExtraData");
}

/* ---- Hardware ------------------------------------------------------------------------------------------ */

static bool cfg_nic_is_blank(const struct cfg_nic *nic)
{
    static const struct cfg_nic blank;
    return !nic->enabled && nic->type == blank.type && nic->attach == blank.attach && !nic->mac[0] &&
           !nic->cable_connected && !nic->bridge_interface && !nic->network && nic->forward_count == 0;
}

static void cfg_out_nic(struct cfg_out *o, unsigned level, unsigned slot, const struct cfg_nic *nic)
{
    char buf[256], what[32];
    snprintf(what, sizeof(what), "network adapter %u", slot);
    if (nic->mac[0])
        cfg_out_problem(o, cfg_check_mac(nic->mac, buf, sizeof(buf)));
    else if (nic->enabled)
        cfg_out_fail(o, VERR_INVALID_PARAMETER, "%s is enabled but has no MAC address", what);
    cfg_out_open(o, level, "Adapter");
    cfg_out_u64(o, "slot", slot);
    cfg_out_bool(o, "enabled", nic->enabled);
    cfg_out_enum(o, "type", cfg_nic_type_name(nic->type), what);
    cfg_out_enum(o, "attachment", cfg_nic_attach_name(nic->attach), what);
    cfg_out_attr(o, "mac", nic->mac[0] ? nic->mac : NULL, what);
    cfg_out_bool(o, "cable", nic->cable_connected);
    cfg_out_attr(o, "bridge", nic->bridge_interface, what);
    cfg_out_attr(o, "network", nic->network, what);
    if (nic->forward_count == 0) {
        cfg_out_str(o, "/>\n");
        return;
    }
    cfg_out_str(o, ">\n");
    for (size_t i = 0; i < nic->forward_count; i++) {
        const struct cfg_port_forward *f = &nic->forwards[i];
        cfg_out_problem(o, cfg_check_forward(f, buf, sizeof(buf)));
        for (size_t j = 0; j < i && !o->rc; j++) {
            if (!strcmp(f->name, nic->forwards[j].name))
                cfg_out_fail(o, VERR_INVALID_PARAMETER, "%s: port forward \"%.200s\" appears twice", what, f->name);
        }
        cfg_out_open(o, level + 1, "Forward");
        cfg_out_attr(o, "name", f->name, what);
        cfg_out_attr(o, "protocol", f->udp ? "udp" : "tcp", what);
        cfg_out_attr(o, "hostIp", f->host_ip, what);
        cfg_out_u64(o, "hostPort", f->host_port);
        cfg_out_attr(o, "guestIp", f->guest_ip, what);
        cfg_out_u64(o, "guestPort", f->guest_port);
        cfg_out_str(o, "/>\n");
    }
    cfg_out_close(o, level, "Adapter");
}

static void cfg_out_storage(struct cfg_out *o, unsigned level, const struct cfg_hardware *hw)
{
    char buf[256];
    bool empty = hw->controller_count == 0 && hw->attachment_count == 0;
    cfg_out_open(o, level, "Storage");
    cfg_out_str(o, empty ? "/>\n" : ">\n");
    if (empty)
        return;
    for (size_t i = 0; i < hw->controller_count; i++) {
        const struct cfg_controller *c = &hw->controllers[i];
        cfg_out_problem(o, cfg_check_controller(c, buf, sizeof(buf)));
        for (size_t j = 0; j < i && !o->rc; j++) {
            if (!strcmp(c->name, hw->controllers[j].name))
                cfg_out_fail(o, VERR_INVALID_PARAMETER, "storage controller \"%.200s\" appears twice", c->name);
        }
        cfg_out_open(o, level + 1, "Controller");
        cfg_out_attr(o, "name", c->name, "storage controller");
        cfg_out_enum(o, "bus", cfg_bus_name(c->bus), "storage controller");
        cfg_out_u64(o, "ports", c->port_count);
        cfg_out_bool(o, "bootable", c->bootable);
        cfg_out_str(o, "/>\n");
    }
    for (size_t i = 0; i < hw->attachment_count; i++) {
        const struct cfg_attachment *a = &hw->attachments[i];
        cfg_out_problem(o, cfg_check_attachment(hw, a, i, buf, sizeof(buf)));
        cfg_out_open(o, level + 1, "Attachment");
        cfg_out_attr(o, "controller", a->controller, "attachment");
        cfg_out_u64(o, "port", a->port);
        cfg_out_u64(o, "device", a->device);
        cfg_out_enum(o, "type", cfg_medium_type_name(a->type), "attachment");
        if (!rt_uuid_is_null(&a->medium))
            cfg_out_uuid(o, "medium", &a->medium);
        cfg_out_bool(o, "nonrotational", a->nonrotational);
        cfg_out_bool(o, "hotpluggable", a->hotpluggable);
        cfg_out_str(o, "/>\n");
    }
    cfg_out_close(o, level, "Storage");
}

static void cfg_out_lists(struct cfg_out *o, unsigned level, const struct cfg_hardware *hw)
{
    char buf[256];
    cfg_out_open(o, level, "USB");
    cfg_out_bool(o, "enabled", hw->usb.enabled);
    cfg_out_enum(o, "controller", cfg_usb_ctl_name(hw->usb.controller), "USB");
    cfg_out_str(o, hw->usb.filter_count ? ">\n" : "/>\n");
    for (size_t i = 0; i < hw->usb.filter_count; i++) {
        const struct cfg_usb_filter *f = &hw->usb.filters[i];
        cfg_out_problem(o, cfg_check_usb_filter(f, buf, sizeof(buf)));
        cfg_out_open(o, level + 1, "Filter");
        cfg_out_attr(o, "name", f->name, "USB filter");
        cfg_out_bool(o, "active", f->active);
        cfg_out_attr(o, "vendorId", f->vendor_id, "USB filter");
        cfg_out_attr(o, "productId", f->product_id, "USB filter");
        cfg_out_attr(o, "serial", f->serial, "USB filter");
        cfg_out_str(o, "/>\n");
    }
    if (hw->usb.filter_count)
        cfg_out_close(o, level, "USB");

    const struct cfg_display *d = &hw->display;
    cfg_out_range(o, "display VRAM (MiB)", d->vram_mib, CFG_MIN_VRAM_MIB, CFG_MAX_VRAM_MIB);
    cfg_out_range(o, "display monitors", d->monitors, 1, CFG_MAX_MONITORS);
    cfg_out_open(o, level, "Display");
    cfg_out_enum(o, "adapter", cfg_graphics_name(d->adapter), "display");
    cfg_out_u64(o, "vramMiB", d->vram_mib);
    cfg_out_u64(o, "monitors", d->monitors);
    cfg_out_str(o, "/>\n");

    const struct cfg_remote *r = &hw->remote;
    if (r->auth == CFG_AUTH_PASSWORD && !r->password)
        cfg_out_fail(o, VERR_INVALID_PARAMETER, "remote display: password authentication without a password");
    cfg_out_open(o, level, "RemoteDisplay");
    cfg_out_bool(o, "vnc", r->vnc_enabled);
    cfg_out_u64(o, "vncPort", r->vnc_port);
    cfg_out_bool(o, "rdp", r->rdp_enabled);
    cfg_out_u64(o, "rdpPort", r->rdp_port);
    cfg_out_attr(o, "address", r->address, "remote display");
    cfg_out_enum(o, "auth", cfg_remote_auth_name(r->auth), "remote display");
    cfg_out_attr(o, "password", r->password, "remote display");
    cfg_out_str(o, "/>\n");

    cfg_out_open(o, level, "SharedFolders");
    cfg_out_str(o, hw->shared_folder_count ? ">\n" : "/>\n");
    for (size_t i = 0; i < hw->shared_folder_count; i++) {
        const struct cfg_shared_folder *f = &hw->shared_folders[i];
        cfg_out_problem(o, cfg_check_shared_folder(f, buf, sizeof(buf)));
        for (size_t j = 0; j < i && !o->rc; j++) {
            if (!strcmp(f->name, hw->shared_folders[j].name))
                cfg_out_fail(o, VERR_INVALID_PARAMETER, "shared folder \"%.200s\" appears twice", f->name);
        }
        cfg_out_open(o, level + 1, "Folder");
        cfg_out_attr(o, "name", f->name, "shared folder");
        cfg_out_attr(o, "hostPath", f->host_path, "shared folder");
        cfg_out_bool(o, "readonly", f->readonly);
        cfg_out_bool(o, "automount", f->automount);
        cfg_out_attr(o, "mountPoint", f->mount_point, "shared folder");
        cfg_out_str(o, "/>\n");
    }
    if (hw->shared_folder_count)
        cfg_out_close(o, level, "SharedFolders");

    unsigned ports = 0;
    for (unsigned i = 0; i < CFG_SERIAL_PORTS; i++)
        ports += hw->serial[i].enabled || hw->serial[i].backend;
    cfg_out_open(o, level, "Serial");
    cfg_out_str(o, ports ? ">\n" : "/>\n");
    for (unsigned i = 0; i < CFG_SERIAL_PORTS; i++) {
        const struct cfg_serial *s = &hw->serial[i];
        if (!s->enabled && !s->backend)
            continue;
        cfg_out_problem(o, cfg_check_serial(s, buf, sizeof(buf)));
        cfg_out_open(o, level + 1, "Port");
        cfg_out_u64(o, "slot", i);
        cfg_out_bool(o, "enabled", s->enabled);
        cfg_out_attr(o, "backend", s->backend, "serial port");
        cfg_out_str(o, "/>\n");
    }
    if (ports)
        cfg_out_close(o, level, "Serial");
}

static void cfg_out_hardware(struct cfg_out *o, unsigned level, const struct cfg_hardware *hw)
{
    cfg_out_range(o, "CPU count", hw->cpus, CFG_MIN_CPUS, CFG_MAX_CPUS);
    cfg_out_range(o, "memory (MiB)", hw->memory_mib, CFG_MIN_MEMORY_MIB, CFG_MAX_MEMORY_MIB);
    cfg_out_open(o, level, "Hardware");
    cfg_out_str(o, ">\n");
    cfg_out_open(o, level + 1, "CPU");
    cfg_out_u64(o, "count", hw->cpus);
    cfg_out_str(o, "/>\n");
    cfg_out_open(o, level + 1, "Memory");
    cfg_out_u64(o, "sizeMiB", hw->memory_mib);
    cfg_out_str(o, "/>\n");
    cfg_out_open(o, level + 1, "Firmware");
    cfg_out_enum(o, "type", cfg_firmware_name(hw->firmware), "firmware");
    cfg_out_str(o, "/>\n");
    cfg_out_open(o, level + 1, "Chipset");
    cfg_out_enum(o, "type", cfg_chipset_name(hw->chipset), "chipset");
    cfg_out_str(o, "/>\n");
    cfg_out_open(o, level + 1, "Platform");
    cfg_out_bool(o, "ioapic", hw->ioapic);
    cfg_out_bool(o, "hpet", hw->hpet);
    cfg_out_bool(o, "rtcUtc", hw->rtc_utc);
    cfg_out_str(o, "/>\n");

    bool boots = false;
    for (unsigned i = 0; i < CFG_BOOT_SLOTS; i++)
        boots |= hw->boot[i] != CFG_BOOT_NONE;
    cfg_out_open(o, level + 1, "Boot");
    cfg_out_str(o, boots ? ">\n" : "/>\n");
    for (unsigned i = 0; i < CFG_BOOT_SLOTS; i++) {
        if (hw->boot[i] == CFG_BOOT_NONE)
            continue;
        for (unsigned j = 0; j < i; j++) {
            if (hw->boot[j] == hw->boot[i])
                cfg_out_fail(o, VERR_INVALID_PARAMETER, "boot device %s appears twice in the boot order",
                             cfg_boot_dev_name(hw->boot[i]));
        }
        cfg_out_open(o, level + 2, "Order");
        cfg_out_u64(o, "position", i + 1);
        cfg_out_enum(o, "device", cfg_boot_dev_name(hw->boot[i]), "boot order");
        cfg_out_str(o, "/>\n");
    }
    if (boots)
        cfg_out_close(o, level + 1, "Boot");

    cfg_out_storage(o, level + 1, hw);

    unsigned nics = 0;
    for (unsigned i = 0; i < CFG_MAX_NICS; i++)
        nics += !cfg_nic_is_blank(&hw->nics[i]);
    cfg_out_open(o, level + 1, "Network");
    cfg_out_str(o, nics ? ">\n" : "/>\n");
    for (unsigned i = 0; i < CFG_MAX_NICS; i++) {
        if (!cfg_nic_is_blank(&hw->nics[i]))
            cfg_out_nic(o, level + 2, i, &hw->nics[i]);
    }
    if (nics)
        cfg_out_close(o, level + 1, "Network");

    const struct cfg_audio *a = &hw->audio;
    cfg_out_open(o, level + 1, "Audio");
    cfg_out_bool(o, "enabled", a->enabled);
    cfg_out_enum(o, "driver", cfg_audio_driver_name(a->driver), "audio");
    cfg_out_enum(o, "controller", cfg_audio_ctl_name(a->controller), "audio");
    cfg_out_bool(o, "output", a->output);
    cfg_out_bool(o, "input", a->input);
    cfg_out_str(o, "/>\n");

    cfg_out_lists(o, level + 1, hw);
    if (hw->tpm != CFG_TPM_NONE) {
        /* Only when present, so machines without a TPM keep the files older builds wrote. */
        cfg_out_open(o, level + 1, "TrustedPlatformModule");
        cfg_out_enum(o, "type", cfg_tpm_name(hw->tpm), "TPM");
        cfg_out_str(o, "/>\n");
    }
    cfg_out_close(o, level, "Hardware");
}

/* ---- Machine ------------------------------------------------------------------------------------------ */

static void cfg_out_description(struct cfg_out *o, unsigned level, const char *text, const char *what)
{
    if (!text || !cfg_out_check_str(o, text, what, "the description"))
        return;
    cfg_out_open(o, level, "Description");
    cfg_out_str(o, ">");
    cfg_out_escaped(o, text, false);
    cfg_out_str(o, "</Description>\n");
}

struct cfg_snapshot_walk {
    size_t total;
    const struct rt_uuid **uuids; /* every snapshot's, to find duplicates */
};

static void cfg_out_snapshots(struct cfg_out *o, unsigned level, const struct cfg_snapshot *list, size_t count,
                              unsigned depth, struct cfg_snapshot_walk *walk)
{
    char buf[256];
    if (count == 0)
        return;
    if (depth >= CFG_MAX_SNAPSHOT_DEPTH) {
        cfg_out_fail(o, VERR_TOO_LARGE, "snapshots nested deeper than %u levels", CFG_MAX_SNAPSHOT_DEPTH);
        return;
    }
    cfg_out_open(o, level, "Snapshots");
    cfg_out_str(o, ">\n");
    for (size_t i = 0; i < count && !o->rc; i++) {
        const struct cfg_snapshot *s = &list[i];
        if (walk->total >= CFG_MAX_SNAPSHOTS) {
            cfg_out_fail(o, VERR_TOO_LARGE, "more than %u snapshots", CFG_MAX_SNAPSHOTS);
            return;
        }
        for (size_t j = 0; j < walk->total && !o->rc; j++) {
            if (!memcmp(walk->uuids[j], &s->uuid, sizeof(s->uuid)))
                cfg_out_fail(o, VERR_INVALID_PARAMETER, "snapshot \"%.200s\": its UUID appears twice in the tree",
                             s->name ? s->name : "");
        }
        walk->uuids[walk->total++] = &s->uuid;
        if (rt_uuid_is_null(&s->uuid) || !s->name || !*s->name || strlen(s->name) > CFG_MAX_NAME_BYTES)
            cfg_out_fail(o, VERR_INVALID_PARAMETER, "a snapshot has a null UUID or an empty or too long name");
        if (s->state_file)
            cfg_out_problem(o, cfg_check_inner_path("snapshot stateFile", s->state_file, buf, sizeof(buf)));
        if (s->online && !s->state_file)
            cfg_out_fail(o, VERR_INVALID_PARAMETER, "online snapshot \"%.200s\" has no state file", s->name);
        cfg_out_open(o, level + 1, "Snapshot");
        cfg_out_uuid(o, "uuid", &s->uuid);
        cfg_out_attr(o, "name", s->name, "snapshot");
        cfg_out_u64(o, "timeNs", s->time_ns);
        cfg_out_bool(o, "online", s->online);
        cfg_out_attr(o, "stateFile", s->state_file, "snapshot");
        cfg_out_str(o, ">\n");
        cfg_out_description(o, level + 2, s->description, "snapshot");
        cfg_out_hardware(o, level + 2, &s->hw);
        cfg_out_snapshots(o, level + 2, s->children, s->child_count, depth + 1, walk);
        cfg_out_close(o, level + 1, "Snapshot");
    }
    cfg_out_close(o, level, "Snapshots");
}

static int cfg_out_finish(struct cfg_out *o, char **xml, size_t *len)
{
    cfg_out_mem(o, "", 1);
    if (o->rc) {
        free(o->buf);
        return o->rc;
    }
    *xml = o->buf;
    if (len)
        *len = o->len - 1;
    return 0;
}

int cfg_machine_format_checked(const struct cfg_machine *m, char **xml, size_t *len, struct cfg_error *err,
                               const char *file)
{
    struct cfg_out o = { .err = err, .file = file };
    char buf[256];
    if (!cfg_is_valid_machine_name(m->name))
        cfg_out_fail(&o, VERR_INVALID_PARAMETER, "\"%.200s\" is not a valid machine name", m->name ? m->name : "");
    if (rt_uuid_is_null(&m->uuid))
        cfg_out_fail(&o, VERR_INVALID_PARAMETER, "the machine has a null UUID");
    if (m->ostype && !cfg_is_valid_ostype_id(m->ostype))
        cfg_out_fail(&o, VERR_INVALID_PARAMETER, "\"%.60s\" is not an OS type id", m->ostype);
    if (m->snapshot_folder)
        cfg_out_problem(&o, cfg_check_inner_path("snapshotFolder", m->snapshot_folder, buf, sizeof(buf)));
    if (m->state_file)
        cfg_out_problem(&o, cfg_check_inner_path("stateFile", m->state_file, buf, sizeof(buf)));
    if (m->state == CFG_STATE_SAVED && !m->state_file)
        cfg_out_fail(&o, VERR_INVALID_PARAMETER, "the machine is saved but has no state file");
    struct cfg_machine *mm = (struct cfg_machine *)m; /* the lookup does not modify */
    if (m->snapshot_count == 0 && !rt_uuid_is_null(&m->current_snapshot))
        cfg_out_fail(&o, VERR_INVALID_PARAMETER, "a current snapshot is set but there are no snapshots");
    if (m->snapshot_count > 0 && !cfg_snapshot_find(mm, &m->current_snapshot))
        cfg_out_fail(&o, VERR_INVALID_PARAMETER, "the current snapshot is not in the snapshot tree");

    cfg_out_str(&o, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    cfg_out_str(&o, "<VireoMachine");
    cfg_out_u64(&o, "schemaVersion", CFG_SCHEMA_VERSION);
    cfg_out_uuid(&o, "uuid", &m->uuid);
    cfg_out_attr(&o, "name", m->name, "machine");
    cfg_out_attr(&o, "osType", m->ostype, "machine");
    cfg_out_attr(&o, "snapshotFolder", m->snapshot_folder, "machine");
    if (!rt_uuid_is_null(&m->current_snapshot))
        cfg_out_uuid(&o, "currentSnapshot", &m->current_snapshot);
    cfg_out_str(&o, ">\n");
    cfg_out_description(&o, 1, m->description, "machine");
    cfg_out_hardware(&o, 1, &m->hw);
    cfg_out_open(&o, 1, "State");
    cfg_out_enum(&o, "state", cfg_machine_state_name(m->state), "machine");
    cfg_out_u64(&o, "changedNs", m->state_changed_ns);
    cfg_out_attr(&o, "stateFile", m->state_file, "machine");
    cfg_out_str(&o, "/>\n");
    struct cfg_snapshot_walk walk = { 0 };
    walk.uuids = malloc(CFG_MAX_SNAPSHOTS * sizeof(*walk.uuids));
    if (!walk.uuids)
        cfg_out_fail(&o, VERR_NO_MEMORY, "out of memory");
    else
        cfg_out_snapshots(&o, 1, m->snapshots, m->snapshot_count, 0, &walk);
    free(walk.uuids);
    cfg_out_extra(&o, 1, m->extra, m->extra_count);
    cfg_out_str(&o, "</VireoMachine>\n");
    return cfg_out_finish(&o, xml, len);
}

int cfg_machine_format(const struct cfg_machine *m, char **xml, size_t *len)
{
    return cfg_machine_format_checked(m, xml, len, NULL, NULL);
}

/* ---- Global registry ------------------------------------------------------------------------------------ */

int cfg_global_format_checked(const struct cfg_global *g, char **xml, size_t *len, struct cfg_error *err,
                              const char *file)
{
    struct cfg_out o = { .err = err, .file = file };
    char buf[256];
    cfg_out_str(&o, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    cfg_out_str(&o, "<VireoRegistry");
    cfg_out_u64(&o, "schemaVersion", CFG_SCHEMA_VERSION);
    cfg_out_str(&o, ">\n");
    if (g->default_machine_folder) {
        cfg_out_problem(&o, cfg_check_abs_path("defaultMachineFolder", g->default_machine_folder, buf, sizeof(buf)));
        cfg_out_open(&o, 1, "Preferences");
        cfg_out_attr(&o, "defaultMachineFolder", g->default_machine_folder, "preferences");
        cfg_out_str(&o, "/>\n");
    }
    cfg_out_open(&o, 1, "Machines");
    cfg_out_str(&o, g->machine_count ? ">\n" : "/>\n");
    for (size_t i = 0; i < g->machine_count; i++) {
        const struct cfg_machine_entry *e = &g->machines[i];
        cfg_out_problem(&o, cfg_check_abs_path("machine path", e->path, buf, sizeof(buf)));
        if (rt_uuid_is_null(&e->uuid))
            cfg_out_fail(&o, VERR_INVALID_PARAMETER, "machine %.200s has a null UUID", e->path);
        for (size_t j = 0; j < i && !o.rc; j++) {
            if (!memcmp(&g->machines[j].uuid, &e->uuid, sizeof(e->uuid)) || !strcmp(g->machines[j].path, e->path))
                cfg_out_fail(&o, VERR_INVALID_PARAMETER, "machine %.200s is registered twice", e->path);
        }
        cfg_out_open(&o, 2, "Machine");
        cfg_out_uuid(&o, "uuid", &e->uuid);
        cfg_out_attr(&o, "path", e->path, "machine entry");
        cfg_out_str(&o, "/>\n");
    }
    if (g->machine_count)
        cfg_out_close(&o, 1, "Machines");
    cfg_out_open(&o, 1, "Media");
    cfg_out_str(&o, g->medium_count ? ">\n" : "/>\n");
    for (size_t i = 0; i < g->medium_count; i++) {
        const struct cfg_medium *m = &g->media[i];
        cfg_out_problem(&o, cfg_check_abs_path("medium location", m->location, buf, sizeof(buf)));
        if (!o.rc && !cfg_is_valid_medium_format(m->format))
            cfg_out_fail(&o, VERR_INVALID_PARAMETER, "medium %.200s: unknown format", m->location);
        if (rt_uuid_is_null(&m->uuid))
            cfg_out_fail(&o, VERR_INVALID_PARAMETER, "medium %.200s has a null UUID", m->location);
        bool parent_found = rt_uuid_is_null(&m->parent);
        for (size_t j = 0; j < i && !o.rc; j++) {
            if (!memcmp(&g->media[j].uuid, &m->uuid, sizeof(m->uuid)) || !strcmp(g->media[j].location, m->location))
                cfg_out_fail(&o, VERR_INVALID_PARAMETER, "medium %.200s is registered twice", m->location);
            if (!memcmp(&g->media[j].uuid, &m->parent, sizeof(m->parent)))
                parent_found = true;
        }
        if (!parent_found)
            cfg_out_fail(&o, VERR_INVALID_PARAMETER, "medium %.200s: its parent is not registered before it",
                         m->location);
        cfg_out_open(&o, 2, "Medium");
        cfg_out_uuid(&o, "uuid", &m->uuid);
        cfg_out_attr(&o, "location", m->location, "medium");
        cfg_out_enum(&o, "type", cfg_medium_type_name(m->type), "medium");
        cfg_out_attr(&o, "format", m->format, "medium");
        if (!rt_uuid_is_null(&m->parent))
            cfg_out_uuid(&o, "parent", &m->parent);
        cfg_out_bool(&o, "readonly", m->readonly);
        cfg_out_str(&o, "/>\n");
    }
    if (g->medium_count)
        cfg_out_close(&o, 1, "Media");
    cfg_out_extra(&o, 1, g->extra, g->extra_count);
    cfg_out_str(&o, "</VireoRegistry>\n");
    return cfg_out_finish(&o, xml, len);
}

int cfg_global_format(const struct cfg_global *g, char **xml, size_t *len)
{
    return cfg_global_format_checked(g, xml, len, NULL, NULL);
}
