/* storage.c - vireo-manage storagectl and storageattach: controllers, and disks and DVD drives on their ports (a running VM's DVD through its control socket). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manage.h"
#include "vireo/vmctl.h"

enum { OPT_NAME = 1, OPT_ADD, OPT_REMOVE, OPT_PORTCOUNT, OPT_BOOTABLE, OPT_STORAGECTL, OPT_PORT, OPT_DEVICE, OPT_TYPE,
       OPT_MEDIUM, OPT_NONROT, OPT_HOTPLUG };

/* The ports a bus may have (settings.h). */
static void mg_bus_ports(enum cfg_bus bus, unsigned *min, unsigned *max)
{
    *min = bus == CFG_BUS_IDE ? 2 : 1;
    *max = bus == CFG_BUS_IDE ? 2 : bus == CFG_BUS_SATA ? 30 : 8;
}

/* ---- storagectl ---------------------------------------------------------------------------------- */

struct mg_ctl_edit {
    const char *name;
    bool add, remove;
    enum cfg_bus bus;
    unsigned port_count; /* 0: unchanged / the bus's default */
    int bootable;        /* -1: unchanged */
};

static int mg_ctl_apply(void *opaque, struct cfg_machine *m, const char *settings_path, struct cfg_error *err)
{
    (void)settings_path;
    const struct mg_ctl_edit *e = opaque;
    struct cfg_hardware *hw = &m->hw;
    struct cfg_controller *c = cfg_controller_find(hw, e->name);
    if (e->add) {
        if (c) {
            snprintf(err->msg, sizeof(err->msg), "VM '%s' already has a storage controller named '%s'", m->name,
                     e->name);
            return VERR_ALREADY_EXISTS;
        }
        /* A new SATA controller gets 4 ports unless told: enough for disks and a DVD, as Vireo's AHCI shows. */
        unsigned ports = e->port_count ? e->port_count : e->bus == CFG_BUS_IDE ? 2 : e->bus == CFG_BUS_SATA ? 4 : 1;
        int rc = cfg_controller_add(hw, e->name, e->bus, ports);
        if (rc < 0) {
            snprintf(err->msg, sizeof(err->msg), "cannot add storage controller '%s' to VM '%s': %s", e->name, m->name,
                     rt_err_str(rc));
            return rc;
        }
        cfg_controller_find(hw, e->name)->bootable = e->bootable != 0;
        return 0;
    }
    if (!c) {
        snprintf(err->msg, sizeof(err->msg), "VM '%s' has no storage controller named '%s'", m->name, e->name);
        return VERR_NOT_FOUND;
    }
    if (e->remove)
        return cfg_controller_remove(hw, e->name);
    if (e->port_count) {
        unsigned min, max;
        mg_bus_ports(c->bus, &min, &max);
        if (e->port_count < min || e->port_count > max) {
            snprintf(err->msg, sizeof(err->msg), "storage controller '%s' of VM '%s' is %s: its port count must be "
                     "from %u to %u", e->name, m->name, cfg_bus_name(c->bus), min, max);
            return VERR_OUT_OF_RANGE;
        }
        for (size_t i = 0; i < hw->attachment_count; i++) {
            if (!strcmp(hw->attachments[i].controller, e->name) && hw->attachments[i].port >= e->port_count) {
                snprintf(err->msg, sizeof(err->msg), "port %u of storage controller '%s' of VM '%s' is in use; "
                         "detach it before lowering the port count", hw->attachments[i].port, e->name, m->name);
                return VERR_BUSY;
            }
        }
        c->port_count = e->port_count;
    }
    if (e->bootable >= 0)
        c->bootable = e->bootable != 0;
    return 0;
}

static int mg_storagectl(int argc, char **argv)
{
    static const struct mg_opt opts[] = {
        {"name", OPT_NAME, true, 0, NULL, false},           {"add", OPT_ADD, true, 0, NULL, false},
        {"remove", OPT_REMOVE, false, 0, NULL, false},      {"portcount", OPT_PORTCOUNT, true, 0, NULL, false},
        {"bootable", OPT_BOOTABLE, true, 0, NULL, false},   {NULL, 0, 0, 0, 0, 0},
    };
    struct mg_args a;
    int rc = mg_args_parse(argc, argv, 1, opts, &a);
    if (rc)
        return rc;
    char *path = NULL;
    struct cfg_machine *m = NULL;
    struct mg_ctl_edit e = {.name = mg_args_value(&a, OPT_NAME), .bootable = -1};
    const char *add = mg_args_value(&a, OPT_ADD), *ports = mg_args_value(&a, OPT_PORTCOUNT);
    const char *boot = mg_args_value(&a, OPT_BOOTABLE);
    e.add = add != NULL;
    e.remove = mg_args_has(&a, OPT_REMOVE);
    if ((rc = mg_args_want(&a, 1, 1, "the VM (name or UUID)")))
        goto out;
    if (!e.name || !e.name[0]) {
        rc = mg_usage("--name is required (the controller's name, e.g. SATA)");
        goto out;
    }
    if ((rc = mg_check_text("--name", e.name, false)))
        goto out;
    if (e.add && e.remove) {
        rc = mg_usage("--add and --remove do not go together");
        goto out;
    }
    if (e.remove && (ports || boot)) {
        rc = mg_usage("--remove takes no other options");
        goto out;
    }
    if (!e.add && !e.remove && !ports && !boot) {
        rc = mg_usage("nothing to do: give --add, --remove, --portcount or --bootable");
        goto out;
    }
    if (e.add && cfg_bus_parse(add, &e.bus) < 0) {
        rc = mg_usage("--add '%s' must be ide, sata or virtio", add);
        goto out;
    }
    if (ports) {
        uint64_t n;
        unsigned min = 1, max = 30;
        if (e.add)
            mg_bus_ports(e.bus, &min, &max);
        if ((rc = mg_parse_uint("--portcount", ports, min, max, &n)))
            goto out;
        e.port_count = (unsigned)n;
    }
    if (boot) {
        bool b;
        if ((rc = mg_parse_onoff("--bootable", boot, &b)))
            goto out;
        e.bootable = b;
    } else if (e.add) {
        e.bootable = 1;
    }
    if ((rc = mg_vm_find(a.pos[0], &path, &m)))
        goto out;
    if (mach_is_running(path)) {
        rc = mg_fail("VM '%s' is running; power it off before changing its storage controllers", m->name);
        goto out;
    }
    struct cfg_error err = {{0}};
    if ((rc = mach_edit_path(path, false, mg_ctl_apply, &e, &err)) < 0)
        rc = mg_fail_err(rc, &err, "cannot change the storage controllers of VM '%s'", m->name);
out:
    cfg_machine_free(m);
    free(path);
    mg_args_free(&a);
    return rc;
}

/* ---- storageattach --------------------------------------------------------------------------------- */

struct mg_attach_edit {
    bool detach;
    struct cfg_attachment att;
};

static int mg_attach_apply(void *opaque, struct cfg_machine *m, const char *settings_path, struct cfg_error *err)
{
    (void)settings_path;
    const struct mg_attach_edit *e = opaque;
    const struct cfg_attachment *at = &e->att;
    int rc = e->detach ? cfg_attachment_remove(&m->hw, at->controller, at->port, at->device)
                       : cfg_attachment_set(&m->hw, at);
    if (rc < 0)
        snprintf(err->msg, sizeof(err->msg), "cannot %s port %u, device %u of storage controller '%s' of VM '%s': %s",
                 e->detach ? "detach" : "attach to", at->port, at->device, at->controller, m->name, rt_err_str(rc));
    return rc;
}

/* A running VM changes its DVD itself (it records the new medium in its settings). */
static int mg_attach_running(const struct cfg_machine *m, const struct cfg_attachment *at, const char *medium_arg)
{
    char *location = NULL;
    if (!strcmp(medium_arg, "emptydrive") || !strcmp(medium_arg, "none")) {
        location = strdup("emptydrive");
    } else {
        struct cfg_medium med;
        struct cfg_error err = {{0}};
        struct rt_uuid u;
        if (rt_uuid_parse(medium_arg, &u) == 0) {
            if (mach_medium_find(medium_arg, &med, &err) < 0)
                return mg_fail("medium {%s} is not registered", medium_arg);
            location = strdup(med.location);
            mach_medium_clear(&med);
        } else {
            location = mg_abs_path(medium_arg);
            if (location && !rt_path_exists(location)) {
                int rc = mg_fail("medium '%s' does not exist", location);
                free(location);
                return rc;
            }
        }
    }
    if (!location)
        return mg_fail("out of memory");
    char *arg = rt_strdup_printf("%s %u %u %s", at->controller, at->port, at->device, location);
    free(location);
    char errmsg[256] = "";
    int rc = arg ? vmctl_call(&m->uuid, "medium", arg, 30000, NULL, NULL, errmsg) : VERR_NO_MEMORY;
    free(arg);
    if (rc < 0)
        return mg_fail("VM '%s' did not change the DVD medium: %s", m->name, errmsg[0] ? errmsg : rt_err_str(rc));
    return 0;
}

static int mg_storageattach(int argc, char **argv)
{
    static const struct mg_opt opts[] = {
        {"storagectl", OPT_STORAGECTL, true, 0, NULL, false}, {"port", OPT_PORT, true, 0, NULL, false},
        {"device", OPT_DEVICE, true, 0, NULL, false},         {"type", OPT_TYPE, true, 0, NULL, false},
        {"medium", OPT_MEDIUM, true, 0, NULL, false},         {"nonrotational", OPT_NONROT, true, 0, NULL, false},
        {"hotpluggable", OPT_HOTPLUG, true, 0, NULL, false},  {NULL, 0, 0, 0, 0, 0},
    };
    struct mg_args a;
    int rc = mg_args_parse(argc, argv, 1, opts, &a);
    if (rc)
        return rc;
    char *path = NULL, *abs = NULL;
    struct cfg_machine *m = NULL;
    struct cfg_medium med = {0};
    bool have_med = false, registered_now = false;
    struct mg_attach_edit e = {0};
    const char *ctl = mg_args_value(&a, OPT_STORAGECTL), *type = mg_args_value(&a, OPT_TYPE);
    const char *medium = mg_args_value(&a, OPT_MEDIUM);
    uint64_t port = 0, dev = 0;
    if ((rc = mg_args_want(&a, 1, 1, "the VM (name or UUID)")))
        goto out;
    if (!ctl || !mg_args_value(&a, OPT_PORT) || !medium) {
        rc = mg_usage("--storagectl, --port and --medium are required");
        goto out;
    }
    if ((rc = mg_parse_uint("--port", mg_args_value(&a, OPT_PORT), 0, 29, &port)))
        goto out;
    if (mg_args_value(&a, OPT_DEVICE) && (rc = mg_parse_uint("--device", mg_args_value(&a, OPT_DEVICE), 0, 1, &dev)))
        goto out;
    e.att.controller = (char *)ctl;
    e.att.port = (unsigned)port;
    e.att.device = (unsigned)dev;
    e.detach = !strcmp(medium, "none");
    bool empty = !strcmp(medium, "emptydrive");
    if (type && !strcmp(type, "hdd")) {
        e.att.type = CFG_MEDIUM_HDD;
    } else if (type && (!strcmp(type, "dvddrive") || !strcmp(type, "dvd"))) {
        e.att.type = CFG_MEDIUM_DVD;
    } else if (type) {
        rc = mg_usage("--type '%s' must be hdd or dvddrive", type);
        goto out;
    } else if (!e.detach) {
        rc = mg_usage("--type is required (hdd or dvddrive) unless --medium is none");
        goto out;
    }
    if (empty && e.att.type != CFG_MEDIUM_DVD) {
        rc = mg_usage("--medium emptydrive is for --type dvddrive (a hard disk slot is either used or not)");
        goto out;
    }
    bool b;
    if (mg_args_value(&a, OPT_NONROT)) {
        if ((rc = mg_parse_onoff("--nonrotational", mg_args_value(&a, OPT_NONROT), &b)))
            goto out;
        e.att.nonrotational = b;
    }
    if (mg_args_value(&a, OPT_HOTPLUG)) {
        if ((rc = mg_parse_onoff("--hotpluggable", mg_args_value(&a, OPT_HOTPLUG), &b)))
            goto out;
        e.att.hotpluggable = b;
    }
    if ((rc = mg_vm_find(a.pos[0], &path, &m)))
        goto out;

    /* The slot must exist before anything is registered for it. */
    struct cfg_controller *c = cfg_controller_find(&m->hw, ctl);
    if (!c) {
        rc = mg_fail("VM '%s' has no storage controller named '%s'", m->name, ctl);
        goto out;
    }
    unsigned devices = c->bus == CFG_BUS_IDE ? 2 : 1;
    if (e.att.port >= c->port_count || e.att.device >= devices) {
        rc = mg_fail("storage controller '%s' of VM '%s' has ports 0-%u%s; there is no port %u, device %u", ctl,
                     m->name, c->port_count - 1, devices == 2 ? " with devices 0-1" : " with device 0", e.att.port,
                     e.att.device);
        goto out;
    }
    struct cfg_attachment *cur = cfg_attachment_find(&m->hw, ctl, e.att.port, e.att.device);
    if (e.detach && !cur) {
        rc = mg_fail("nothing is attached to port %u, device %u of storage controller '%s' of VM '%s'", e.att.port,
                     e.att.device, ctl, m->name);
        goto out;
    }
    if (mach_is_running(path)) {
        bool dvd = e.att.type == CFG_MEDIUM_DVD || (e.detach && cur && cur->type == CFG_MEDIUM_DVD);
        if (!dvd || !cur || cur->type != CFG_MEDIUM_DVD) {
            rc = mg_fail("VM '%s' is running; only the medium in an existing DVD drive can be changed while it runs",
                         m->name);
            goto out;
        }
        rc = mg_attach_running(m, cur, medium);
        goto out;
    }
    if (e.detach)
        goto edit;
    if (!e.att.nonrotational && !mg_args_value(&a, OPT_NONROT) && cur)
        e.att.nonrotational = cur->nonrotational;
    if (empty)
        goto edit;

    struct cfg_error err = {{0}};
    struct rt_uuid u;
    if (rt_uuid_parse(medium, &u) == 0) {
        if (mach_medium_find(medium, &med, &err) < 0) {
            rc = mg_fail("medium {%s} is not registered", medium);
            goto out;
        }
    } else {
        if (!(abs = mg_abs_path(medium))) {
            rc = mg_fail("cannot make '%s' an absolute path", medium);
            goto out;
        }
        if (mach_medium_find(abs, &med, &err) < 0) {
            memset(&med, 0, sizeof(med));
            if (!rt_path_exists(abs)) {
                rc = mg_fail("medium '%s' does not exist", abs);
                goto out;
            }
            /* Not registered yet: checked below, registered just before the attachment is saved. */
            med.type = e.att.type;
        }
    }
    have_med = med.location != NULL;
    const char *shown = have_med ? med.location : abs;
    if (have_med && med.type != e.att.type) {
        rc = mg_fail("medium '%s' is registered as %s, not as %s", shown, med.type == CFG_MEDIUM_DVD ? "a DVD image"
                     : med.type == CFG_MEDIUM_HDD ? "a hard disk" : "a floppy image",
                     e.att.type == CFG_MEDIUM_DVD ? "a DVD image" : "a hard disk");
        goto out;
    }
    if (have_med && e.att.type == CFG_MEDIUM_HDD) {
        if (mg_medium_has_children(&med.uuid)) {
            rc = mg_fail("medium '%s' is the base of differencing images (a snapshot's or a linked clone's); "
                         "attach the newest image of its chain instead", shown);
            goto out;
        }
        char **names = NULL;
        size_t n = 0;
        bool same_slot = cur && !memcmp(&cur->medium, &med.uuid, sizeof(med.uuid));
        if (!same_slot && mach_medium_users(&med.uuid, &names, &n, &err) == 0 && n)
            rc = mg_fail("medium '%s' is attached to '%s'", shown, names[0]);
        for (size_t i = 0; i < n; i++)
            free(names[i]);
        free(names);
        if (rc)
            goto out;
    }
    if (!have_med) {
        memset(&err, 0, sizeof(err));
        rc = mach_medium_open(abs, e.att.type, &u, &err);
        if (rc < 0) {
            rc = mg_fail_err(rc, &err, "cannot register medium '%s'", abs);
            goto out;
        }
        registered_now = true;
        e.att.medium = u;
    } else {
        e.att.medium = med.uuid;
    }

edit:;
    struct cfg_error eerr = {{0}};
    rc = mach_edit_path(path, false, mg_attach_apply, &e, &eerr);
    if (rc < 0) {
        rc = mg_fail_err(rc, &eerr, "cannot change the attachments of VM '%s'", m->name);
        if (registered_now) {
            /* The medium was registered for this attachment only: nothing of the failed command stays. */
            char us[RT_UUID_STR_LEN];
            struct cfg_error cerr = {{0}};
            rt_uuid_to_str(&e.att.medium, us);
            mach_medium_close(us, false, &cerr);
        }
    }
out:
    if (have_med)
        mach_medium_clear(&med);
    free(abs);
    cfg_machine_free(m);
    free(path);
    mg_args_free(&a);
    return rc;
}

const struct mg_cmd g_mg_storage_cmds[] = {
    {"storagectl", "VM --name NAME --add ide|sata|virtio [--portcount N] [--bootable on|off]\n"
                   "VM --name NAME [--portcount N] [--bootable on|off]\n"
                   "VM --name NAME --remove",
     "Adds, changes or removes a storage controller.  Removing one detaches what is attached to it\n"
     "(the media stay registered).\n"
     "  --portcount N  IDE: 2 (channels, two devices each); SATA 1-30 (default 4); virtio 1-8 (default 1)\n"
     "  --bootable on|off  whether the firmware boots from its devices (default on)\n",
     mg_storagectl},
    {"storageattach", "VM --storagectl NAME --port P [--device D] [--type hdd|dvddrive]\n"
                      "    --medium none|emptydrive|FILE|UUID [--nonrotational on|off] [--hotpluggable on|off]",
     "Attaches a medium to a controller's port (IDE: port 0-1 is the channel, device 0-1 master/slave;\n"
     "other buses use device 0).  A FILE that is not registered yet is registered (as a hard disk or a\n"
     "DVD image after --type).  none detaches; emptydrive leaves a DVD drive without a medium.\n"
     "While the VM runs, only an existing DVD drive's medium can be changed (through the VM).\n"
     "A hard disk can be attached to one VM only, and never a snapshot's frozen image.\n",
     mg_storageattach},
};
const size_t g_mg_storage_cmd_count = RT_ARRAY_SIZE(g_mg_storage_cmds);
