/* settings-ostypes.c - OS type presets: finding and reading share/ostypes.xml and applying a preset to hardware. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "settings-internal.h"

#define CFG_OSTYPES_SCHEMA 1
#define CFG_OSTYPES_MAX 1024

/* ---- Where the file is ------------------------------------------------------------------------------ */

static char *cfg_exe_relative_share(void)
{
    char *bin = rt_program_dir();
    char *path = bin ? rt_strdup_printf("%s/../share/vireo/ostypes.xml", bin) : NULL;
    free(bin);
    return path;
}

char *cfg_ostypes_path(void)
{
    const char *share = getenv("VIREO_SHARE_DIR");
    if (share && *share)
        return rt_path_join(share, "ostypes.xml");
    char *installed = cfg_exe_relative_share();
    if (installed && rt_path_exists(installed))
        return installed;
    free(installed);
#ifdef VIREO_SOURCE_SHARE
    /* An uninstalled build (tests, developers) reads the source tree's copy. */
    return rt_path_join(VIREO_SOURCE_SHARE, "ostypes.xml");
#else
    return cfg_exe_relative_share();
#endif
}

/* ---- Reading ---------------------------------------------------------------------------------------- */

/* nic and usb: "none" leaves the device out; anything else goes through the enum's parser. */
static int cfg_read_nic_usb(struct cfg_xml *x, struct cfg_ostype *o)
{
    const char *nic = cfg_xml_attr_peek(x, "nic", true);
    if (!nic)
        return VERR_BAD_FORMAT;
    o->has_nic = strcmp(nic, "none") != 0;
    int rc = o->has_nic ? cfg_xml_attr_enum_done(x, cfg_nic_type_parse(nic, &o->nic)) : 0;
    const char *usb = rc ? NULL : cfg_xml_attr_peek(x, "usb", true);
    if (rc || !usb)
        return rc ? rc : VERR_BAD_FORMAT;
    o->has_usb = strcmp(usb, "none") != 0;
    return o->has_usb ? cfg_xml_attr_enum_done(x, cfg_usb_ctl_parse(usb, &o->usb)) : 0;
}

static int cfg_ostypes_on_start(struct cfg_xml *x, void *doc, const char *name)
{
    struct cfg_ostypes *t = doc;
    const char *parent = cfg_xml_parent(x);
    if (!parent)
        return cfg_xml_attr_schema_version(x, CFG_OSTYPES_SCHEMA);
    if (strcmp(parent, "VireoOSTypes") || strcmp(name, "OSType"))
        return cfg_xml_unexpected(x, name);
    if (t->count >= CFG_OSTYPES_MAX)
        return cfg_xml_fail(x, "more than %u OS types", CFG_OSTYPES_MAX);
    struct cfg_ostype *grown = realloc(t->types, (t->count + 1) * sizeof(*grown));
    if (!grown)
        return cfg_xml_fail(x, "out of memory");
    t->types = grown;
    struct cfg_ostype *o = &grown[t->count++];
    memset(o, 0, sizeof(*o));
    unsigned bits = 0, disk_mib = 0;
    uint64_t memory = 0;
    int rc = cfg_xml_attr_str(x, "id", true, &o->id);
    if (!rc)
        rc = cfg_xml_attr_str(x, "description", true, &o->description);
    if (!rc)
        rc = cfg_xml_attr_str(x, "family", true, &o->family);
    if (!rc)
        rc = cfg_xml_attr_uint(x, "bits", true, 16, 64, &bits);
    if (!rc)
        rc = cfg_xml_attr_u64(x, "memoryMiB", true, CFG_MIN_MEMORY_MIB, CFG_MAX_MEMORY_MIB, &memory);
    if (!rc)
        rc = cfg_xml_attr_uint(x, "diskMiB", true, 1, 64u * 1024 * 1024, &disk_mib);
    if (!rc)
        rc = cfg_xml_attr_uint(x, "cpus", true, CFG_MIN_CPUS, CFG_MAX_CPUS, &o->cpus);
    if (!rc)
        rc = CFG_XML_ATTR_ENUM(x, "firmware", true, cfg_firmware_parse, &o->firmware);
    if (!rc)
        rc = CFG_XML_ATTR_ENUM(x, "chipset", true, cfg_chipset_parse, &o->chipset);
    if (!rc)
        rc = CFG_XML_ATTR_ENUM(x, "diskBus", true, cfg_bus_parse, &o->disk_bus);
    if (!rc)
        rc = CFG_XML_ATTR_ENUM(x, "dvdBus", true, cfg_bus_parse, &o->dvd_bus);
    if (!rc)
        rc = cfg_read_nic_usb(x, o);
    if (!rc)
        rc = CFG_XML_ATTR_ENUM(x, "audio", true, cfg_audio_ctl_parse, &o->audio);
    if (!rc)
        rc = CFG_XML_ATTR_ENUM(x, "graphics", true, cfg_graphics_parse, &o->graphics);
    if (!rc)
        rc = cfg_xml_attr_uint(x, "vramMiB", true, CFG_MIN_VRAM_MIB, CFG_MAX_VRAM_MIB, &o->vram_mib);
    if (!rc)
        rc = cfg_xml_attr_bool(x, "rtcUtc", true, &o->rtc_utc);
    if (rc)
        return rc;
    if (bits != 16 && bits != 32 && bits != 64)
        return cfg_xml_fail(x, "bits=\"%u\" is none of 16, 32, 64", bits);
    if (!cfg_is_valid_ostype_id(o->id))
        return cfg_xml_fail(x, "id=\"%.60s\" is not an OS type id (letters, digits, '_')", o->id);
    if (o->dvd_bus == CFG_BUS_VIRTIO)
        return cfg_xml_fail(x, "dvdBus=\"virtio\": virtio block devices take no DVD");
    for (size_t i = 0; i + 1 < t->count; i++) {
        if (!strcasecmp(t->types[i].id, o->id))
            return cfg_xml_fail(x, "OS type %s appears twice", o->id);
    }
    o->is_64bit = bits == 64;
    o->memory_mib = memory;
    o->disk_bytes = (uint64_t)disk_mib << 20;
    return 0;
}

static const struct cfg_xml_schema cfg_ostypes_schema = { .root = "VireoOSTypes", .start = cfg_ostypes_on_start };

int cfg_ostypes_load(const char *path, struct cfg_ostypes **out, struct cfg_error *err)
{
    void *data = NULL;
    size_t len = 0;
    int rc = rt_file_read_all(path, CFG_MAX_FILE_BYTES, &data, &len);
    if (rc) {
        cfg_error_set(err, "%s: cannot read the OS type presets: %s", path, rt_err_str(rc));
        return rc;
    }
    struct cfg_ostypes *t = calloc(1, sizeof(*t));
    if (!t) {
        free(data);
        return VERR_NO_MEMORY;
    }
    rc = cfg_xml_parse(path, data, len, &cfg_ostypes_schema, t, err);
    free(data);
    if (rc) {
        cfg_ostypes_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

void cfg_ostypes_free(struct cfg_ostypes *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->count; i++) {
        free(t->types[i].id);
        free(t->types[i].description);
        free(t->types[i].family);
    }
    free(t->types);
    free(t);
}

const struct cfg_ostype *cfg_ostype_find(const struct cfg_ostypes *t, const char *id)
{
    for (size_t i = 0; t && id && i < t->count; i++) {
        if (!strcasecmp(t->types[i].id, id))
            return &t->types[i];
    }
    return NULL;
}

/* ---- Applying a preset --------------------------------------------------------------------------------- */

static const char *cfg_bus_controller_name(enum cfg_bus bus)
{
    return bus == CFG_BUS_IDE ? "IDE" : bus == CFG_BUS_SATA ? "SATA" : "VirtIO";
}

/*
 * Works on a copy so that a failure leaves hw as it was.  The storage controllers are replaced (a
 * preset is applied to new machines, before anything is attached), so their attachments go too.
 */
int cfg_hardware_apply_ostype(struct cfg_hardware *hw, const struct cfg_ostype *t)
{
    if (!hw || !t)
        return VERR_INVALID_PARAMETER;
    struct cfg_hardware n;
    int rc = cfg_hardware_copy(&n, hw);
    if (rc)
        return rc;
    n.memory_mib = t->memory_mib;
    n.cpus = t->cpus;
    n.firmware = t->firmware;
    n.chipset = t->chipset;
    n.rtc_utc = t->rtc_utc;
    n.ioapic = true;
    while (!rc && n.controller_count > 0)
        rc = cfg_controller_remove(&n, n.controllers[0].name);
    enum cfg_bus buses[2] = { t->disk_bus, t->dvd_bus };
    for (unsigned i = 0; i < 2 && !rc; i++) {
        const char *name = cfg_bus_controller_name(buses[i]);
        if (cfg_controller_find(&n, name))
            continue;
        /* IDE: both channels; SATA and virtio: room for a disk, a DVD and a second disk or two. */
        rc = cfg_controller_add(&n, name, buses[i], buses[i] == CFG_BUS_IDE ? 2 : 4);
        if (!rc)
            n.controllers[n.controller_count - 1].bootable = true;
    }
    if (!rc) {
        struct cfg_nic *nic = &n.nics[0];
        nic->enabled = t->has_nic;
        if (t->has_nic && !nic->mac[0])
            rc = cfg_mac_generate(nic->mac);
        if (t->has_nic) {
            nic->type = t->nic;
            nic->attach = CFG_NET_NAT;
            nic->cable_connected = true;
        }
        n.audio.enabled = true;
        n.audio.controller = t->audio;
        n.audio.output = true;
        n.usb.enabled = t->has_usb;
        if (t->has_usb)
            n.usb.controller = t->usb;
        n.display.adapter = t->graphics;
        n.display.vram_mib = t->vram_mib;
        if (n.display.monitors == 0)
            n.display.monitors = 1;
    }
    if (rc) {
        cfg_hardware_free(&n);
        return rc;
    }
    cfg_hardware_free(hw);
    *hw = n;
    return 0;
}
