/* vms.c - vireo-manage createvm, registervm, unregistervm, setextradata, getextradata and sharedfolder. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "manage.h"

/* ---- createvm ------------------------------------------------------------------------------ */

enum { OPT_NAME = 1, OPT_OSTYPE, OPT_BASEFOLDER, OPT_REGISTER, OPT_UUID, OPT_DELETE, OPT_HOSTPATH, OPT_READONLY,
       OPT_AUTOMOUNT, OPT_MOUNTPOINT };

/* Checks an OS type id against the presets (usage error when unknown); *canonical gets the preset's
 * spelling (malloc'ed). */
int mg_ostype_check(const char *opt, const char *id, char **canonical)
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
    const struct cfg_ostype *o = cfg_ostype_find(t, id);
    if (!o) {
        cfg_ostypes_free(t);
        return mg_usage("%s '%s' is not a known OS type (see 'vireo-manage list ostypes')", opt, id);
    }
    *canonical = strdup(o->id);
    cfg_ostypes_free(t);
    return *canonical ? 0 : mg_fail("out of memory");
}

int mg_check_vm_name(const char *opt, const char *name)
{
    if (cfg_is_valid_machine_name(name))
        return 0;
    if (strchr(name, '/'))
        return mg_usage("%s '%s' cannot be a machine name: it contains '/' (names are also folder names)", opt, name);
    return mg_usage("%s '%s' cannot be a machine name: names are 1-200 bytes of UTF-8 without control characters, "
                    "not '.' or '..', without blanks at either end", opt, name);
}

/* Whether a registered VM has this name or UUID (the message for an existing one is the caller's). */
static bool mg_vm_exists(const char *name_or_uuid)
{
    struct cfg_error err = {{0}};
    char *path = NULL;
    if (mach_find(name_or_uuid, &path, NULL, &err) < 0)
        return false;
    free(path);
    return true;
}

struct mg_new_vm {
    bool set_uuid;
    struct rt_uuid uuid;
};

/* What mach_create leaves open: the UUID asked for, and the time the machine's "powered off" began. */
static int mg_new_vm_apply(void *opaque, struct cfg_machine *m, const char *settings_path, struct cfg_error *err)
{
    const struct mg_new_vm *n = opaque;
    if (n->set_uuid)
        m->uuid = n->uuid;
    m->state_changed_ns = rt_time_real_ns();
    return 0;
}

/* Removes what mach_create made for an unregistered machine: its settings file, the sidecars and the folder. */
static void mg_created_vm_remove(const char *settings_path)
{
    static const char *const sidecars[] = {"", "-prev", ".lock"};
    for (size_t i = 0; i < RT_ARRAY_SIZE(sidecars); i++) {
        char *p = rt_strdup_printf("%s%s", settings_path, sidecars[i]);
        if (p)
            unlink(p);
        free(p);
    }
    char *folder = mach_folder(settings_path);
    if (folder && rmdir(folder) != 0 && errno != ENOENT)
        mg_warn("could not remove the folder '%s' of the machine that was not created", folder);
    free(folder);
}

static int mg_createvm(int argc, char **argv)
{
    static const struct mg_opt opts[] = {
        {"name", OPT_NAME, true, 0, NULL, false},           {"ostype", OPT_OSTYPE, true, 0, NULL, false},
        {"basefolder", OPT_BASEFOLDER, true, 0, NULL, false}, {"register", OPT_REGISTER, false, 0, NULL, false},
        {"uuid", OPT_UUID, true, 0, NULL, false},           {NULL, 0, 0, 0, 0, 0},
    };
    struct mg_args a;
    int rc = mg_args_parse(argc, argv, 1, opts, &a);
    if (rc)
        return rc;
    const char *name = mg_args_value(&a, OPT_NAME), *ostype = mg_args_value(&a, OPT_OSTYPE);
    const char *base = mg_args_value(&a, OPT_BASEFOLDER), *uuid_arg = mg_args_value(&a, OPT_UUID);
    bool reg = mg_args_has(&a, OPT_REGISTER);
    char *canonical = NULL, *base_abs = NULL, *path = NULL;
    struct rt_uuid uuid, want_uuid = {{0}};
    struct cfg_error err = {{0}};
    if ((rc = mg_args_want(&a, 0, 0, "")))
        goto out;
    if (!name) {
        rc = mg_usage("--name is required");
        goto out;
    }
    if ((rc = mg_check_vm_name("--name", name)))
        goto out;
    if (uuid_arg && (rt_uuid_parse(uuid_arg, &want_uuid) < 0 || rt_uuid_is_null(&want_uuid))) {
        rc = mg_usage("--uuid '%s' is not a UUID (8-4-4-4-12 hex digits, not all zero)", uuid_arg);
        goto out;
    }
    if (base && !base[0]) {
        rc = mg_usage("--basefolder needs a folder");
        goto out;
    }
    if (ostype && (rc = mg_ostype_check("--ostype", ostype, &canonical)))
        goto out;
    if (mg_vm_exists(name)) {
        rc = mg_fail("a VM named '%s' already exists", name);
        goto out;
    }
    if (uuid_arg && mg_vm_exists(uuid_arg)) {
        rc = mg_fail("a VM with UUID '%s' is already registered", uuid_arg);
        goto out;
    }
    if (base && !(base_abs = mg_abs_path(base))) {
        rc = mg_fail("cannot make '%s' an absolute path", base);
        goto out;
    }
    /* Registered only once the file is complete, so a failure leaves no registry entry behind. */
    rc = mach_create(name, canonical, base_abs, false, &path, &uuid, &err);
    if (rc == VERR_ALREADY_EXISTS && !err.msg[0]) {
        rc = mg_fail("a VM named '%s' already exists, or its folder does", name);
        goto out;
    }
    if (rc < 0) {
        rc = mg_fail_err(rc, &err, "cannot create VM '%s'", name);
        goto out;
    }
    struct mg_new_vm nv = {.set_uuid = uuid_arg != NULL, .uuid = want_uuid};
    rc = mach_edit_path(path, false, mg_new_vm_apply, &nv, &err);
    if (rc == 0 && reg)
        rc = mach_register(path, &err);
    if (rc < 0) {
        rc = mg_fail_err(rc, &err, "cannot create VM '%s'", name);
        mg_created_vm_remove(path);
        goto out;
    }
    if (uuid_arg)
        uuid = want_uuid;
    char us[RT_UUID_STR_LEN];
    rt_uuid_to_str(&uuid, us);
    printf("Virtual machine '%s' is created%s.\nUUID: %s\nSettings file: '%s'\n", name,
           reg ? " and registered" : "", us, path);
    rc = 0;
out:
    free(canonical);
    free(base_abs);
    free(path);
    mg_args_free(&a);
    return rc;
}

/* ---- registervm / unregistervm ------------------------------------------------------------------ */

static int mg_registervm(int argc, char **argv)
{
    static const struct mg_opt opts[] = {{NULL, 0, 0, 0, 0, 0}};
    struct mg_args a;
    int rc = mg_args_parse(argc, argv, 1, opts, &a);
    if (rc)
        return rc;
    if ((rc = mg_args_want(&a, 1, 1, "the settings file (NAME.vireo)"))) {
        mg_args_free(&a);
        return rc;
    }
    char *path = mg_abs_path(a.pos[0]);
    struct cfg_error err = {{0}};
    if (!path)
        rc = mg_fail("cannot make '%s' an absolute path", a.pos[0]);
    else if (!rt_path_exists(path))
        rc = mg_fail("settings file '%s' does not exist", path);
    else if ((rc = mach_register(path, &err)) < 0)
        rc = mg_fail_err(rc, &err, "cannot register '%s'", path);
    free(path);
    mg_args_free(&a);
    return rc;
}

static int mg_unregistervm(int argc, char **argv)
{
    static const struct mg_opt opts[] = {{"delete", OPT_DELETE, false, 0, NULL, false}, {NULL, 0, 0, 0, 0, 0}};
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
    struct cfg_error err = {{0}};
    if ((rc = mg_vm_find(a.pos[0], &path, &m)))
        goto out;
    if (mach_is_running(path)) {
        rc = mg_fail("VM '%s' is running; power it off first", m->name);
        goto out;
    }
    char uuid[RT_UUID_STR_LEN];
    rt_uuid_to_str(&m->uuid, uuid);
    bool del = mg_args_has(&a, OPT_DELETE);
    if ((rc = mach_unregister(uuid, del, &err)) < 0)
        rc = mg_fail_err(rc, &err, "cannot unregister VM '%s'", m->name);
    else if (del)
        printf("VM '%s' is unregistered and its files are deleted.\n", m->name);
out:
    cfg_machine_free(m);
    free(path);
    mg_args_free(&a);
    return rc;
}

/* ---- extra data --------------------------------------------------------------------------------- */

struct mg_extra_edit {
    const char *key, *value;
};

static int mg_extra_apply(void *opaque, struct cfg_machine *m, const char *settings_path, struct cfg_error *err)
{
    (void)settings_path;
    const struct mg_extra_edit *e = opaque;
    int rc = cfg_extra_set(&m->extra, &m->extra_count, e->key, e->value);
    if (rc < 0)
        snprintf(err->msg, sizeof(err->msg), "cannot set extra data '%s' of VM '%s': %s", e->key, m->name,
                 rt_err_str(rc));
    return rc;
}

/* "global" names the registry rather than a machine, as in VBoxManage (a machine called so goes by its UUID). */
static bool mg_extra_is_global(const char *vm)
{
    return !strcmp(vm, "global");
}

static int mg_extra_apply_global(void *opaque, struct cfg_global *g, struct cfg_error *err)
{
    const struct mg_extra_edit *e = opaque;
    int rc = cfg_extra_set(&g->extra, &g->extra_count, e->key, e->value);
    if (rc < 0)
        snprintf(err->msg, sizeof(err->msg), "cannot set global extra data '%s': %s", e->key, rt_err_str(rc));
    return rc;
}

static int mg_setextradata(int argc, char **argv)
{
    static const struct mg_opt opts[] = {{NULL, 0, 0, 0, 0, 0}};
    struct mg_args a;
    int rc = mg_args_parse(argc, argv, 1, opts, &a);
    if (rc)
        return rc;
    if ((rc = mg_args_want(&a, 2, 3, "the VM and the key (and a value; without one the key is removed)")))
        goto out;
    struct mg_extra_edit e = {a.pos[1], a.pos_count > 2 ? a.pos[2] : NULL};
    if (!e.key[0]) {
        rc = mg_usage("the key must not be empty");
        goto out;
    }
    if ((rc = mg_check_text("the key", e.key, false)) || (e.value && (rc = mg_check_text("the value", e.value, true))))
        goto out;
    if (mg_extra_is_global(a.pos[0])) {
        struct cfg_error gerr = {{0}};
        if ((rc = mach_global_edit(mg_extra_apply_global, &e, &gerr)) < 0)
            rc = mg_fail_err(rc, &gerr, "cannot set global extra data");
        goto out;
    }
    char *path = NULL;
    struct cfg_machine *m = NULL;
    if ((rc = mg_vm_find(a.pos[0], &path, &m)))
        goto out;
    struct cfg_error err = {{0}};
    /* Extra data is not hardware: a running machine's may change (VirtualBox allows it too). */
    rc = mach_edit_path(path, true, mg_extra_apply, &e, &err);
    if (rc < 0)
        rc = mg_fail_err(rc, &err, "cannot set extra data of VM '%s'", m->name);
    cfg_machine_free(m);
    free(path);
out:
    mg_args_free(&a);
    return rc;
}

static int mg_getextradata(int argc, char **argv)
{
    static const struct mg_opt opts[] = {{NULL, 0, 0, 0, 0, 0}};
    struct mg_args a;
    int rc = mg_args_parse(argc, argv, 1, opts, &a);
    if (rc)
        return rc;
    if ((rc = mg_args_want(&a, 2, 2, "the VM and the key (or 'enumerate')"))) {
        mg_args_free(&a);
        return rc;
    }
    struct cfg_machine *m = NULL;
    struct cfg_global *g = NULL;
    if (mg_extra_is_global(a.pos[0])) {
        struct cfg_error err = {{0}};
        char *gpath = cfg_global_path();
        rc = gpath ? cfg_global_load(gpath, &g, &err) : VERR_NO_MEMORY;
        free(gpath);
        if (rc < 0)
            rc = mg_fail_err(rc, &err, "cannot read the global registry");
    } else {
        rc = mg_vm_find(a.pos[0], NULL, &m);
    }
    if (rc) {
        mg_args_free(&a);
        return rc;
    }
    const struct cfg_extra *extra = g ? g->extra : m->extra;
    size_t extra_count = g ? g->extra_count : m->extra_count;
    if (!strcmp(a.pos[1], "enumerate")) {
        for (size_t i = 0; i < extra_count; i++)
            printf("Key: %s, Value: %s\n", extra[i].key, extra[i].value);
    } else {
        const char *v = cfg_extra_get(extra, extra_count, a.pos[1]);
        if (v)
            printf("Value: %s\n", v);
        else
            printf("No value set!\n");
    }
    cfg_global_free(g);
    cfg_machine_free(m);
    mg_args_free(&a);
    return 0;
}

/* ---- sharedfolder -------------------------------------------------------------------------------- */

struct mg_sf_edit {
    bool add;
    struct cfg_shared_folder sf;
};

static int mg_sf_apply(void *opaque, struct cfg_machine *m, const char *settings_path, struct cfg_error *err)
{
    (void)settings_path;
    const struct mg_sf_edit *e = opaque;
    struct cfg_hardware *hw = &m->hw;
    size_t at = hw->shared_folder_count;
    for (size_t i = 0; i < hw->shared_folder_count; i++)
        if (!strcmp(hw->shared_folders[i].name, e->sf.name))
            at = i;
    if (e->add && at < hw->shared_folder_count) {
        snprintf(err->msg, sizeof(err->msg), "VM '%s' already has a shared folder named '%s'", m->name, e->sf.name);
        return VERR_ALREADY_EXISTS;
    }
    if (!e->add && at == hw->shared_folder_count) {
        snprintf(err->msg, sizeof(err->msg), "VM '%s' has no shared folder named '%s'", m->name, e->sf.name);
        return VERR_NOT_FOUND;
    }
    if (!e->add) {
        struct cfg_shared_folder *sf = &hw->shared_folders[at];
        free(sf->name);
        free(sf->host_path);
        free(sf->mount_point);
        memmove(sf, sf + 1, (hw->shared_folder_count - at - 1) * sizeof(*sf));
        hw->shared_folder_count--;
        return 0;
    }
    struct cfg_shared_folder *arr = realloc(hw->shared_folders, (hw->shared_folder_count + 1) * sizeof(*arr));
    if (!arr)
        return VERR_NO_MEMORY;
    hw->shared_folders = arr;
    struct cfg_shared_folder *sf = &arr[hw->shared_folder_count];
    *sf = e->sf;
    sf->name = strdup(e->sf.name);
    sf->host_path = strdup(e->sf.host_path);
    sf->mount_point = e->sf.mount_point ? strdup(e->sf.mount_point) : NULL;
    hw->shared_folder_count++;
    if (!sf->name || !sf->host_path || (e->sf.mount_point && !sf->mount_point))
        return VERR_NO_MEMORY; /* the model is freed by the caller without saving */
    return 0;
}

static int mg_sharedfolder(int argc, char **argv)
{
    static const struct mg_opt opts[] = {
        {"name", OPT_NAME, true, 0, NULL, false},          {"hostpath", OPT_HOSTPATH, true, 0, NULL, false},
        {"readonly", OPT_READONLY, false, 0, NULL, false}, {"automount", OPT_AUTOMOUNT, false, 0, NULL, false},
        {"auto-mount-point", OPT_MOUNTPOINT, true, 0, NULL, false}, {NULL, 0, 0, 0, 0, 0},
    };
    struct mg_args a;
    int rc = mg_args_parse(argc, argv, 1, opts, &a);
    if (rc)
        return rc;
    char *host = NULL, *path = NULL;
    struct cfg_machine *m = NULL;
    if ((rc = mg_args_want(&a, 2, 2, "'add' or 'remove' and the VM")))
        goto out;
    struct mg_sf_edit e = {0};
    if (!strcmp(a.pos[0], "add")) {
        e.add = true;
    } else if (strcmp(a.pos[0], "remove")) {
        rc = mg_usage("'%s' is not a sharedfolder action: use add or remove", a.pos[0]);
        goto out;
    }
    e.sf.name = (char *)mg_args_value(&a, OPT_NAME);
    const char *hostpath = mg_args_value(&a, OPT_HOSTPATH);
    if (!e.sf.name || !e.sf.name[0]) {
        rc = mg_usage("--name is required");
        goto out;
    }
    if ((rc = mg_check_text("--name", e.sf.name, false)))
        goto out;
    if (e.add) {
        if (!hostpath || !hostpath[0]) {
            rc = mg_usage("--hostpath is required for add");
            goto out;
        }
        if ((rc = mg_check_text("--hostpath", hostpath, false)))
            goto out;
        if (!(host = mg_abs_path(hostpath))) {
            rc = mg_fail("cannot make '%s' an absolute path", hostpath);
            goto out;
        }
        e.sf.host_path = host;
        e.sf.readonly = mg_args_has(&a, OPT_READONLY);
        e.sf.automount = mg_args_has(&a, OPT_AUTOMOUNT);
        e.sf.mount_point = (char *)mg_args_value(&a, OPT_MOUNTPOINT);
        if (e.sf.mount_point && (rc = mg_check_text("--auto-mount-point", e.sf.mount_point, false)))
            goto out;
    } else if (hostpath || mg_args_has(&a, OPT_READONLY) || mg_args_has(&a, OPT_AUTOMOUNT) ||
               mg_args_has(&a, OPT_MOUNTPOINT)) {
        rc = mg_usage("remove takes only --name");
        goto out;
    }
    if ((rc = mg_vm_find(a.pos[1], &path, &m)))
        goto out;
    if (mach_is_running(path)) {
        rc = mg_fail("VM '%s' is running; power it off before changing its shared folders", m->name);
        goto out;
    }
    if (e.add && !rt_path_exists(host))
        mg_warn("the host folder '%s' does not exist (yet)", host);
    struct cfg_error err = {{0}};
    if ((rc = mach_edit_path(path, false, mg_sf_apply, &e, &err)) < 0)
        rc = mg_fail_err(rc, &err, "cannot change the shared folders of VM '%s'", m->name);
out:
    cfg_machine_free(m);
    free(path);
    free(host);
    mg_args_free(&a);
    return rc;
}

const struct mg_cmd g_mg_vm_cmds[] = {
    {"createvm", "--name NAME [--ostype TYPE] [--basefolder DIR] [--register] [--uuid UUID]",
     "Creates a machine's folder and settings file: DIR/NAME/NAME.vireo (DIR defaults to the registry's\n"
     "default machine folder, ~/Vireo VMs).  With --ostype the OS type's recommended hardware is set up\n"
     "(see 'vireo-manage list ostypes'); disks are created and attached separately.\n"
     "  --register     also register it (otherwise use 'vireo-manage registervm FILE' later)\n"
     "  --uuid UUID    use this UUID instead of a new random one\n",
     mg_createvm},
    {"registervm", "FILE",
     "Registers an existing machine settings file (NAME.vireo), e.g. one copied from another host.\n",
     mg_registervm},
    {"unregistervm", "VM [--delete]",
     "Removes a machine from the registry; its files stay where they are.\n"
     "  --delete       also delete its settings, logs, saved states, snapshot files and every hard disk\n"
     "                 only this machine uses, and its folder when that is then empty (DVD images stay)\n",
     mg_unregistervm},
    {"setextradata", "VM|global KEY [VALUE]",
     "Sets a machine's extra data KEY to VALUE, or removes KEY when no VALUE is given.  Allowed while\n"
     "the machine runs.  'global' sets the global registry's instead (GUI/HostKey, for one); a machine\n"
     "named global goes by its UUID.\n",
     mg_setextradata},
    {"getextradata", "VM|global KEY|enumerate",
     "Prints \"Value: ...\" for KEY (\"No value set!\" when it has none), or every key with 'enumerate'.\n",
     mg_getextradata},
    {"sharedfolder", "add VM --name NAME --hostpath DIR [--readonly] [--automount] [--auto-mount-point P]\n"
                     "remove VM --name NAME",
     "Adds or removes a host folder shared with the guest (through the guest additions).\n"
     "  --readonly     the guest may not write\n"
     "  --automount    the guest additions mount it at start\n"
     "  --auto-mount-point P  where the guest mounts it (default: the guest's choice)\n",
     mg_sharedfolder},
};
const size_t g_mg_vm_cmd_count = RT_ARRAY_SIZE(g_mg_vm_cmds);
