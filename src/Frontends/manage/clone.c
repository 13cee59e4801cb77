/* clone.c - vireo-manage clonevm: a copy of a machine with new UUID and MAC addresses, full or linked to a snapshot of the source. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manage.h"

enum { OPT_NAME = 1, OPT_MODE, OPT_OPTIONS, OPT_REGISTER, OPT_BASEFOLDER };

static int mg_clonevm(int argc, char **argv)
{
    static const struct mg_opt opts[] = {
        {"name", OPT_NAME, true, 0, NULL, false},         {"mode", OPT_MODE, true, 0, NULL, false},
        {"options", OPT_OPTIONS, true, 0, NULL, true},    {"register", OPT_REGISTER, false, 0, NULL, false},
        {"basefolder", OPT_BASEFOLDER, true, 0, NULL, false}, {NULL, 0, 0, 0, 0, 0},
    };
    struct mg_args a;
    int rc = mg_args_parse(argc, argv, 1, opts, &a);
    if (rc)
        return rc;
    char *path = NULL, *name = NULL, *base = NULL;
    struct cfg_machine *m = NULL;
    enum mach_clone_mode mode = MACH_CLONE_CURRENT;
    bool linked = false;
    if ((rc = mg_args_want(&a, 1, 1, "the VM to clone (name or UUID)")))
        goto out;
    const char *mode_arg = mg_args_value(&a, OPT_MODE), *base_arg = mg_args_value(&a, OPT_BASEFOLDER);
    if (mode_arg && !strcmp(mode_arg, "all")) {
        mode = MACH_CLONE_ALL;
    } else if (mode_arg && strcmp(mode_arg, "machine")) {
        rc = mg_usage("--mode '%s' must be machine or all", mode_arg);
        goto out;
    }
    /* --options takes a comma-separated list (and may be repeated), as VBoxManage's. */
    for (int i = 0; i < a.opt_count; i++) {
        if (a.opts[i].id != OPT_OPTIONS)
            continue;
        char *list = strdup(a.opts[i].value), *save = NULL;
        if (!list) {
            rc = mg_fail("out of memory");
            goto out;
        }
        for (char *o = strtok_r(list, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
            if (!strcmp(o, "link")) {
                linked = true;
            } else {
                rc = mg_usage("--options '%s' is not known (Vireo has: link)", o);
                break;
            }
        }
        free(list);
        if (rc)
            goto out;
    }
    if (linked && mode == MACH_CLONE_ALL) {
        rc = mg_usage("--options link and --mode all do not go together (a linked clone has the current state only)");
        goto out;
    }
    if (base_arg && !(base = mg_abs_path(base_arg))) {
        rc = mg_fail("out of memory");
        goto out;
    }
    const char *name_arg = mg_args_value(&a, OPT_NAME);
    if (name_arg && (rc = mg_check_vm_name("--name", name_arg)))
        goto out;
    if ((rc = mg_vm_find(a.pos[0], &path, &m)))
        goto out;
    name = name_arg ? strdup(name_arg) : rt_strdup_printf("%s Clone", m->name);
    if (!name) {
        rc = mg_fail("out of memory");
        goto out;
    }
    if (!name_arg && !cfg_is_valid_machine_name(name)) {
        rc = mg_usage("'%s' is too long for a machine name; give one with --name", name);
        goto out;
    }
    if (mach_is_running(path)) {
        rc = mg_fail("VM '%s' is running; power it off before cloning it", m->name);
        goto out;
    }
    struct cfg_error err = {{0}};
    char *opath = NULL;
    if (mach_find(name, &opath, NULL, &err) == 0) {
        free(opath);
        rc = mg_fail("a VM named '%s' already exists", name);
        goto out;
    }
    memset(&err, 0, sizeof(err));
    char us[RT_UUID_STR_LEN];
    rt_uuid_to_str(&m->uuid, us);
    struct rt_uuid uuid;
    rc = mach_clone(us, name, mode, linked, mg_args_has(&a, OPT_REGISTER), base, mg_progress_fn(), NULL, &uuid, &err);
    if (rc < 0) {
        rc = mg_fail_err(rc, &err, "cannot clone VM '%s' as '%s'", m->name, name);
        goto out;
    }
    rt_uuid_to_str(&uuid, us);
    printf("Machine has been successfully cloned as '%s'%s.\nUUID: %s\n", name,
           mg_args_has(&a, OPT_REGISTER) ? " and registered" : "", us);
    rc = 0;
out:
    cfg_machine_free(m);
    free(path);
    free(name);
    free(base);
    mg_args_free(&a);
    return rc;
}

const struct mg_cmd g_mg_clone_cmds[] = {
    {"clonevm", "VM [--name NAME] [--mode machine|all] [--options link] [--register] [--basefolder DIR]",
     "Copies a machine (not while it runs) with a new UUID and new MAC addresses into\n"
     "DIR/NAME/NAME.vireo (DIR defaults to the default machine folder).\n"
     "  --name NAME    the clone's name (default: \"VM Clone\")\n"
     "  --mode M       machine: the current state, disks flattened (default); all: with the snapshots\n"
     "  --options link a linked clone: its disks are differencing images over a new snapshot of VM\n"
     "  --register     register the clone (otherwise 'vireo-manage registervm' it later)\n",
     mg_clonevm},
};
const size_t g_mg_clone_cmd_count = RT_ARRAY_SIZE(g_mg_clone_cmds);
