/* settings-model.c - the machine model's life cycle: defaults, deep copy, free and field-by-field equality. */
#include <stdlib.h>
#include <string.h>

#include "settings-internal.h"

/* VirtualBox's OUI, which guests and DHCP servers already associate with virtual NICs. */
int cfg_mac_generate(char mac[13])
{
    struct rt_uuid random;
    int rc = rt_uuid_generate(&random); /* 122 bits from the kernel's random source; three bytes are enough */
    if (rc)
        return rc;
    static const char hex[] = "0123456789ABCDEF";
    memcpy(mac, "080027", 6);
    for (unsigned i = 0; i < 3; i++) {
        mac[6 + 2 * i] = hex[random.bytes[i] >> 4];
        mac[7 + 2 * i] = hex[random.bytes[i] & 15];
    }
    mac[12] = '\0';
    return 0;
}

void cfg_hardware_init_empty(struct cfg_hardware *hw)
{
    memset(hw, 0, sizeof(*hw));
    hw->cpus = 1;
    hw->memory_mib = 128;
    hw->firmware = CFG_FW_BIOS;
    hw->chipset = CFG_CHIPSET_PIIX3;
    hw->boot[0] = CFG_BOOT_DVD;
    hw->boot[1] = CFG_BOOT_DISK;
    hw->ioapic = true;
    hw->audio.driver = CFG_AUDIO_PULSE;
    hw->audio.controller = CFG_AUDIO_HDA;
    hw->audio.output = true;
    hw->usb.controller = CFG_USB_OHCI;
    hw->display.adapter = CFG_GFX_VBE;
    hw->display.vram_mib = 16;
    hw->display.monitors = 1;
}

int cfg_machine_new(const char *name, const char *ostype, struct cfg_machine **out)
{
    if (!cfg_is_valid_machine_name(name) || (ostype && !cfg_is_valid_ostype_id(ostype)))
        return VERR_INVALID_PARAMETER;
    struct cfg_machine *m = calloc(1, sizeof(*m));
    if (!m)
        return VERR_NO_MEMORY;
    m->schema_version = CFG_SCHEMA_VERSION;
    /* Powered off since it was created. */
    m->state_changed_ns = rt_time_real_ns();
    cfg_hardware_init_empty(&m->hw);
    int rc = rt_uuid_generate(&m->uuid);
    bool ok = true;
    m->name = cfg_strdup_opt(name, &ok);
    m->ostype = cfg_strdup_opt(ostype, &ok);
    if (!rc && !ok)
        rc = VERR_NO_MEMORY;
    if (!rc)
        rc = cfg_controller_add(&m->hw, "IDE", CFG_BUS_IDE, 2);
    if (!rc)
        m->hw.controllers[0].bootable = true;
    for (unsigned i = 0; !rc && i < CFG_MAX_NICS; i++) {
        struct cfg_nic *nic = &m->hw.nics[i];
        nic->type = CFG_NIC_E1000;
        nic->attach = i == 0 ? CFG_NET_NAT : CFG_NET_NONE;
        nic->cable_connected = true;
        rc = cfg_mac_generate(nic->mac);
    }
    if (rc) {
        cfg_machine_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

/* ---- Free -------------------------------------------------------------------------------------------- */

static void cfg_nic_free(struct cfg_nic *nic)
{
    free(nic->bridge_interface);
    free(nic->network);
    for (size_t i = 0; i < nic->forward_count; i++) {
        free(nic->forwards[i].name);
        free(nic->forwards[i].host_ip);
        free(nic->forwards[i].guest_ip);
    }
    free(nic->forwards);
}

void cfg_hardware_free(struct cfg_hardware *hw)
{
    if (!hw)
        return;
    for (size_t i = 0; i < hw->controller_count; i++)
        free(hw->controllers[i].name);
    free(hw->controllers);
    for (size_t i = 0; i < hw->attachment_count; i++)
        free(hw->attachments[i].controller);
    free(hw->attachments);
    for (unsigned i = 0; i < CFG_MAX_NICS; i++)
        cfg_nic_free(&hw->nics[i]);
    for (size_t i = 0; i < hw->usb.filter_count; i++) {
        struct cfg_usb_filter *f = &hw->usb.filters[i];
        free(f->name);
        free(f->vendor_id);
        free(f->product_id);
        free(f->serial);
    }
    free(hw->usb.filters);
    free(hw->remote.address);
    free(hw->remote.password);
    for (size_t i = 0; i < hw->shared_folder_count; i++) {
        struct cfg_shared_folder *f = &hw->shared_folders[i];
        free(f->name);
        free(f->host_path);
        free(f->mount_point);
    }
    free(hw->shared_folders);
    for (unsigned i = 0; i < CFG_SERIAL_PORTS; i++)
        free(hw->serial[i].backend);
    memset(hw, 0, sizeof(*hw));
}

void cfg_snapshot_free_contents(struct cfg_snapshot *s)
{
    free(s->name);
    free(s->description);
    free(s->state_file);
    cfg_hardware_free(&s->hw);
    for (size_t i = 0; i < s->child_count; i++)
        cfg_snapshot_free_contents(&s->children[i]);
    free(s->children);
}

void cfg_machine_free(struct cfg_machine *m)
{
    if (!m)
        return;
    free(m->name);
    free(m->ostype);
    free(m->description);
    cfg_hardware_free(&m->hw);
    free(m->state_file);
    free(m->snapshot_folder);
    for (size_t i = 0; i < m->snapshot_count; i++)
        cfg_snapshot_free_contents(&m->snapshots[i]);
    free(m->snapshots);
    for (size_t i = 0; i < m->extra_count; i++) {
        free(m->extra[i].key);
        free(m->extra[i].value);
    }
    free(m->extra);
    free(m);
}

/* ---- Copy -------------------------------------------------------------------------------------------- */

/* A copy of count elements of size bytes (NULL for none); *ok turns false on failure. */
static void *cfg_memdup(const void *src, size_t count, size_t size, bool *ok)
{
    if (count == 0)
        return NULL;
    void *dst = malloc(count * size);
    if (!dst) {
        *ok = false;
        return NULL;
    }
    memcpy(dst, src, count * size);
    return dst;
}

/*
 * Copies start as shallow copies (memcpy of the arrays) whose string pointers are then replaced one by
 * one; an allocation failure leaves NULLs behind, which the free functions accept.  A failed array copy
 * also sets its count to 0 so nothing walks the missing array.
 */
int cfg_hardware_copy(struct cfg_hardware *dst, const struct cfg_hardware *src)
{
    bool ok = true;
    *dst = *src;
    dst->controllers = cfg_memdup(src->controllers, src->controller_count, sizeof(*src->controllers), &ok);
    dst->controller_count = dst->controllers ? src->controller_count : 0;
    for (size_t i = 0; i < dst->controller_count; i++)
        dst->controllers[i].name = cfg_strdup_opt(src->controllers[i].name, &ok);
    dst->attachments = cfg_memdup(src->attachments, src->attachment_count, sizeof(*src->attachments), &ok);
    dst->attachment_count = dst->attachments ? src->attachment_count : 0;
    for (size_t i = 0; i < dst->attachment_count; i++)
        dst->attachments[i].controller = cfg_strdup_opt(src->attachments[i].controller, &ok);
    for (unsigned n = 0; n < CFG_MAX_NICS; n++) {
        struct cfg_nic *d = &dst->nics[n];
        const struct cfg_nic *s = &src->nics[n];
        d->bridge_interface = cfg_strdup_opt(s->bridge_interface, &ok);
        d->network = cfg_strdup_opt(s->network, &ok);
        d->forwards = cfg_memdup(s->forwards, s->forward_count, sizeof(*s->forwards), &ok);
        d->forward_count = d->forwards ? s->forward_count : 0;
        for (size_t i = 0; i < d->forward_count; i++) {
            d->forwards[i].name = cfg_strdup_opt(s->forwards[i].name, &ok);
            d->forwards[i].host_ip = cfg_strdup_opt(s->forwards[i].host_ip, &ok);
            d->forwards[i].guest_ip = cfg_strdup_opt(s->forwards[i].guest_ip, &ok);
        }
    }
    dst->usb.filters = cfg_memdup(src->usb.filters, src->usb.filter_count, sizeof(*src->usb.filters), &ok);
    dst->usb.filter_count = dst->usb.filters ? src->usb.filter_count : 0;
    for (size_t i = 0; i < dst->usb.filter_count; i++) {
        const struct cfg_usb_filter *s = &src->usb.filters[i];
        struct cfg_usb_filter *d = &dst->usb.filters[i];
        d->name = cfg_strdup_opt(s->name, &ok);
        d->vendor_id = cfg_strdup_opt(s->vendor_id, &ok);
        d->product_id = cfg_strdup_opt(s->product_id, &ok);
        d->serial = cfg_strdup_opt(s->serial, &ok);
    }
    dst->remote.address = cfg_strdup_opt(src->remote.address, &ok);
    dst->remote.password = cfg_strdup_opt(src->remote.password, &ok);
    dst->shared_folders =
        cfg_memdup(src->shared_folders, src->shared_folder_count, sizeof(*src->shared_folders), &ok);
    dst->shared_folder_count = dst->shared_folders ? src->shared_folder_count : 0;
    for (size_t i = 0; i < dst->shared_folder_count; i++) {
        const struct cfg_shared_folder *s = &src->shared_folders[i];
        struct cfg_shared_folder *d = &dst->shared_folders[i];
        d->name = cfg_strdup_opt(s->name, &ok);
        d->host_path = cfg_strdup_opt(s->host_path, &ok);
        d->mount_point = cfg_strdup_opt(s->mount_point, &ok);
    }
    for (unsigned i = 0; i < CFG_SERIAL_PORTS; i++)
        dst->serial[i].backend = cfg_strdup_opt(src->serial[i].backend, &ok);
    if (!ok) {
        cfg_hardware_free(dst);
        return VERR_NO_MEMORY;
    }
    return 0;
}

static bool cfg_snapshot_copy(struct cfg_snapshot *dst, const struct cfg_snapshot *src)
{
    bool ok = true;
    *dst = *src;
    dst->name = cfg_strdup_opt(src->name, &ok);
    dst->description = cfg_strdup_opt(src->description, &ok);
    dst->state_file = cfg_strdup_opt(src->state_file, &ok);
    if (cfg_hardware_copy(&dst->hw, &src->hw) != 0) {
        memset(&dst->hw, 0, sizeof(dst->hw));
        ok = false;
    }
    dst->children = src->child_count ? calloc(src->child_count, sizeof(*dst->children)) : NULL;
    dst->child_count = dst->children ? src->child_count : 0;
    if (src->child_count && !dst->children)
        ok = false;
    for (size_t i = 0; i < dst->child_count; i++) {
        if (!cfg_snapshot_copy(&dst->children[i], &src->children[i]))
            ok = false;
    }
    return ok;
}

int cfg_machine_dup(const struct cfg_machine *m, struct cfg_machine **out)
{
    struct cfg_machine *d = calloc(1, sizeof(*d));
    if (!d)
        return VERR_NO_MEMORY;
    bool ok = true;
    *d = *m;
    d->name = cfg_strdup_opt(m->name, &ok);
    d->ostype = cfg_strdup_opt(m->ostype, &ok);
    d->description = cfg_strdup_opt(m->description, &ok);
    d->state_file = cfg_strdup_opt(m->state_file, &ok);
    d->snapshot_folder = cfg_strdup_opt(m->snapshot_folder, &ok);
    if (cfg_hardware_copy(&d->hw, &m->hw) != 0) {
        memset(&d->hw, 0, sizeof(d->hw));
        ok = false;
    }
    d->snapshots = m->snapshot_count ? calloc(m->snapshot_count, sizeof(*d->snapshots)) : NULL;
    d->snapshot_count = d->snapshots ? m->snapshot_count : 0;
    if (m->snapshot_count && !d->snapshots)
        ok = false;
    for (size_t i = 0; i < d->snapshot_count; i++) {
        if (!cfg_snapshot_copy(&d->snapshots[i], &m->snapshots[i]))
            ok = false;
    }
    d->extra = m->extra_count ? calloc(m->extra_count, sizeof(*d->extra)) : NULL;
    d->extra_count = d->extra ? m->extra_count : 0;
    if (m->extra_count && !d->extra)
        ok = false;
    for (size_t i = 0; i < d->extra_count; i++) {
        d->extra[i].key = cfg_strdup_opt(m->extra[i].key, &ok);
        d->extra[i].value = cfg_strdup_opt(m->extra[i].value, &ok);
    }
    if (!ok) {
        cfg_machine_free(d);
        return VERR_NO_MEMORY;
    }
    *out = d;
    return 0;
}

/* ---- Equality ---------------------------------------------------------------------------------------- */

static bool cfg_nic_equal(const struct cfg_nic *a, const struct cfg_nic *b)
{
    if (a->enabled != b->enabled || a->type != b->type || a->attach != b->attach || strcmp(a->mac, b->mac) ||
        a->cable_connected != b->cable_connected || !cfg_str_equal(a->bridge_interface, b->bridge_interface) ||
        !cfg_str_equal(a->network, b->network) || a->forward_count != b->forward_count)
        return false;
    for (size_t i = 0; i < a->forward_count; i++) {
        const struct cfg_port_forward *x = &a->forwards[i], *y = &b->forwards[i];
        if (!cfg_str_equal(x->name, y->name) || x->udp != y->udp || !cfg_str_equal(x->host_ip, y->host_ip) ||
            x->host_port != y->host_port || !cfg_str_equal(x->guest_ip, y->guest_ip) ||
            x->guest_port != y->guest_port)
            return false;
    }
    return true;
}

static bool cfg_hardware_equal(const struct cfg_hardware *a, const struct cfg_hardware *b)
{
    if (a->cpus != b->cpus || a->memory_mib != b->memory_mib || a->firmware != b->firmware ||
        a->chipset != b->chipset || memcmp(a->boot, b->boot, sizeof(a->boot)) || a->ioapic != b->ioapic ||
        a->hpet != b->hpet || a->rtc_utc != b->rtc_utc || a->tpm != b->tpm || a->controller_count != b->controller_count ||
        a->attachment_count != b->attachment_count || a->shared_folder_count != b->shared_folder_count)
        return false;
    for (size_t i = 0; i < a->controller_count; i++) {
        const struct cfg_controller *x = &a->controllers[i], *y = &b->controllers[i];
        if (!cfg_str_equal(x->name, y->name) || x->bus != y->bus || x->port_count != y->port_count ||
            x->bootable != y->bootable)
            return false;
    }
    for (size_t i = 0; i < a->attachment_count; i++) {
        const struct cfg_attachment *x = &a->attachments[i], *y = &b->attachments[i];
        if (!cfg_str_equal(x->controller, y->controller) || x->port != y->port || x->device != y->device ||
            x->type != y->type || memcmp(&x->medium, &y->medium, sizeof(x->medium)) ||
            x->nonrotational != y->nonrotational || x->hotpluggable != y->hotpluggable)
            return false;
    }
    for (unsigned i = 0; i < CFG_MAX_NICS; i++) {
        if (!cfg_nic_equal(&a->nics[i], &b->nics[i]))
            return false;
    }
    if (a->audio.enabled != b->audio.enabled || a->audio.driver != b->audio.driver ||
        a->audio.controller != b->audio.controller || a->audio.output != b->audio.output ||
        a->audio.input != b->audio.input)
        return false;
    if (a->usb.enabled != b->usb.enabled || a->usb.controller != b->usb.controller ||
        a->usb.filter_count != b->usb.filter_count)
        return false;
    for (size_t i = 0; i < a->usb.filter_count; i++) {
        const struct cfg_usb_filter *x = &a->usb.filters[i], *y = &b->usb.filters[i];
        if (!cfg_str_equal(x->name, y->name) || x->active != y->active || !cfg_str_equal(x->vendor_id, y->vendor_id) ||
            !cfg_str_equal(x->product_id, y->product_id) || !cfg_str_equal(x->serial, y->serial))
            return false;
    }
    if (a->display.adapter != b->display.adapter || a->display.vram_mib != b->display.vram_mib ||
        a->display.monitors != b->display.monitors)
        return false;
    const struct cfg_remote *ra = &a->remote, *rb = &b->remote;
    if (ra->vnc_enabled != rb->vnc_enabled || ra->vnc_port != rb->vnc_port || ra->rdp_enabled != rb->rdp_enabled ||
        ra->rdp_port != rb->rdp_port || !cfg_str_equal(ra->address, rb->address) || ra->auth != rb->auth ||
        !cfg_str_equal(ra->password, rb->password))
        return false;
    for (size_t i = 0; i < a->shared_folder_count; i++) {
        const struct cfg_shared_folder *x = &a->shared_folders[i], *y = &b->shared_folders[i];
        if (!cfg_str_equal(x->name, y->name) || !cfg_str_equal(x->host_path, y->host_path) ||
            x->readonly != y->readonly || x->automount != y->automount ||
            !cfg_str_equal(x->mount_point, y->mount_point))
            return false;
    }
    for (unsigned i = 0; i < CFG_SERIAL_PORTS; i++) {
        if (a->serial[i].enabled != b->serial[i].enabled || !cfg_str_equal(a->serial[i].backend, b->serial[i].backend))
            return false;
    }
    return true;
}

static bool cfg_snapshot_equal(const struct cfg_snapshot *a, const struct cfg_snapshot *b)
{
    if (memcmp(&a->uuid, &b->uuid, sizeof(a->uuid)) || !cfg_str_equal(a->name, b->name) ||
        !cfg_str_equal(a->description, b->description) || a->time_ns != b->time_ns || a->online != b->online ||
        !cfg_str_equal(a->state_file, b->state_file) || !cfg_hardware_equal(&a->hw, &b->hw) ||
        a->child_count != b->child_count)
        return false;
    for (size_t i = 0; i < a->child_count; i++) {
        if (!cfg_snapshot_equal(&a->children[i], &b->children[i]))
            return false;
    }
    return true;
}

/* schema_version is where the file came from, not part of the machine, so it is not compared. */
bool cfg_machine_equal(const struct cfg_machine *a, const struct cfg_machine *b)
{
    if (memcmp(&a->uuid, &b->uuid, sizeof(a->uuid)) || !cfg_str_equal(a->name, b->name) ||
        !cfg_str_equal(a->ostype, b->ostype) || !cfg_str_equal(a->description, b->description) ||
        !cfg_hardware_equal(&a->hw, &b->hw) || a->state != b->state || a->state_changed_ns != b->state_changed_ns ||
        !cfg_str_equal(a->state_file, b->state_file) || !cfg_str_equal(a->snapshot_folder, b->snapshot_folder) ||
        a->snapshot_count != b->snapshot_count ||
        memcmp(&a->current_snapshot, &b->current_snapshot, sizeof(a->current_snapshot)) ||
        a->extra_count != b->extra_count)
        return false;
    for (size_t i = 0; i < a->snapshot_count; i++) {
        if (!cfg_snapshot_equal(&a->snapshots[i], &b->snapshots[i]))
            return false;
    }
    for (size_t i = 0; i < a->extra_count; i++) {
        if (!cfg_str_equal(a->extra[i].key, b->extra[i].key) || !cfg_str_equal(a->extra[i].value, b->extra[i].value))
            return false;
    }
    return true;
}
