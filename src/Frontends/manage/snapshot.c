/* snapshot.c - vireo-manage snapshot: take (offline, or through a running VM), restore, delete, list and show snapshots. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manage.h"
#include "vireo/vmctl.h"

enum { OPT_DESCRIPTION = 1, OPT_MR };

/* A snapshot by UUID or name (the library decides between same-named ones); prints when there is none. */
static struct cfg_snapshot *mg_snapshot_lookup(struct cfg_machine *m, const char *name_or_uuid)
{
    struct rt_uuid u;
    struct cfg_snapshot *s = NULL;
    if (rt_uuid_parse(name_or_uuid, &u) == 0)
        s = cfg_snapshot_find(m, &u);
    if (!s)
        s = cfg_snapshot_find_name(m, name_or_uuid);
    if (!s)
        mg_fail("VM '%s' has no snapshot '%s'", m->name, name_or_uuid);
    return s;
}

static int mg_snapshot_take(struct cfg_machine *m, const char *path, const char *name, const char *desc)
{
    char us[RT_UUID_STR_LEN];
    if (!mach_is_running(path)) {
        struct rt_uuid uuid;
        struct cfg_error err = {{0}};
        int rc = mach_snapshot_take(path, name, desc, NULL, false, &uuid, &err);
        if (rc < 0)
            return mg_fail_err(rc, &err, "cannot take snapshot '%s' of VM '%s'", name, m->name);
        rt_uuid_to_str(&uuid, us);
        printf("Snapshot taken. UUID: %s\n", us);
        return 0;
    }
    /* A running machine's snapshot includes its memory: only its own process can take it. */
    char errmsg[256];
    struct rt_uuid uuid;
    int rc = vmctl_snapshot_take(&m->uuid, name, desc, &uuid, errmsg);
    if (rc < 0)
        return mg_fail("VM '%s' did not take snapshot '%s': %s", m->name, name, errmsg[0] ? errmsg : rt_err_str(rc));
    rt_uuid_to_str(&uuid, us);
    printf("Snapshot taken. UUID: %s\n", us);
    return 0;
}

static void mg_snapshot_show(struct cfg_machine *m, const struct cfg_snapshot *s, bool mr)
{
    char uuid[RT_UUID_STR_LEN], when[64];
    rt_uuid_to_str(&s->uuid, uuid);
    mg_format_time(s->time_ns, when, sizeof(when));
    struct cfg_snapshot *parent = cfg_snapshot_parent(m, s);
    if (mr) {
        mg_print_kv("SnapshotName", s->name);
        mg_print_kv("SnapshotUUID", uuid);
        mg_print_kv("SnapshotDescription", s->description ? s->description : "");
        mg_print_kv("SnapshotTime", when);
        mg_print_kv("SnapshotOnline", s->online ? "on" : "off");
        mg_print_kv("SnapshotParent", parent ? parent->name : "");
    } else {
        printf("%-26s%s\n%-26s%s\n", "Name:", s->name, "UUID:", uuid);
        if (s->description && s->description[0])
            printf("%-26s%s\n", "Description:", s->description);
        printf("%-26s%s\n%-26s%s\n", "Taken:", when, "Online:", s->online ? "yes (with the VM's memory)" : "no");
        printf("%-26s%s\n", "Parent:", parent ? parent->name : "(none)");
        printf("%-26s%zu\n", "Children:", s->child_count);
    }
    mg_hw_print(&s->hw, mr);
}

static int mg_snapshot(int argc, char **argv)
{
    static const struct mg_opt opts[] = {
        {"description", OPT_DESCRIPTION, true, 0, NULL, false}, {"machinereadable", OPT_MR, false, 0, NULL, false},
        {NULL, 0, 0, 0, 0, 0},
    };
    struct mg_args a;
    int rc = mg_args_parse(argc, argv, 1, opts, &a);
    if (rc)
        return rc;
    char *path = NULL;
    struct cfg_machine *m = NULL;
    struct cfg_error err = {{0}};
    if ((rc = mg_args_want(&a, 2, 3, "the VM and what to do (take, restore, restorecurrent, delete, list, "
                                     "showvminfo)")))
        goto out;
    const char *action = a.pos[1], *target = a.pos_count > 2 ? a.pos[2] : NULL;
    const char *desc = mg_args_value(&a, OPT_DESCRIPTION);
    bool mr = mg_args_has(&a, OPT_MR);
    bool needs_target = !strcmp(action, "take") || !strcmp(action, "restore") || !strcmp(action, "delete") ||
                        !strcmp(action, "showvminfo");
    if (!needs_target && strcmp(action, "restorecurrent") && strcmp(action, "list")) {
        rc = mg_usage("'%s' is not a snapshot action (take, restore, restorecurrent, delete, list, showvminfo)",
                      action);
        goto out;
    }
    if (needs_target && !target) {
        rc = mg_usage("snapshot %s needs a snapshot name%s", action, strcmp(action, "take") ? " or UUID" : "");
        goto out;
    }
    if (!needs_target && target) {
        rc = mg_usage("unexpected argument '%s'", target);
        goto out;
    }
    if (desc && strcmp(action, "take")) {
        rc = mg_usage("--description goes with take");
        goto out;
    }
    if (mr && strcmp(action, "list") && strcmp(action, "showvminfo")) {
        rc = mg_usage("--machinereadable goes with list and showvminfo");
        goto out;
    }
    if (!strcmp(action, "take")) {
        if (!target[0]) {
            rc = mg_usage("the snapshot name must not be empty");
            goto out;
        }
        if ((rc = mg_check_text("the snapshot name", target, false)) ||
            (desc && (rc = mg_check_text("--description", desc, true))))
            goto out;
    }
    if ((rc = mg_vm_find(a.pos[0], &path, &m)))
        goto out;
    if (!strcmp(action, "take")) {
        rc = mg_snapshot_take(m, path, target, desc);
        goto out;
    }
    if (!strcmp(action, "list")) {
        mg_snapshots_print(m, mr);
        goto out;
    }
    struct cfg_snapshot *s = NULL;
    if (!strcmp(action, "restorecurrent")) {
        if (!(s = cfg_snapshot_find(m, &m->current_snapshot))) {
            rc = mg_fail("VM '%s' has no snapshots", m->name);
            goto out;
        }
    } else if (!(s = mg_snapshot_lookup(m, target))) {
        rc = MG_EXIT_FAILED;
        goto out;
    }
    if (!strcmp(action, "showvminfo")) {
        mg_snapshot_show(m, s, mr);
        goto out;
    }
    if (mach_is_running(path)) {
        rc = mg_fail("VM '%s' is running; power it off before %s a snapshot", m->name,
                     action[0] == 'd' ? "deleting" : "restoring");
        goto out;
    }
    char us[RT_UUID_STR_LEN];
    rt_uuid_to_str(&s->uuid, us);
    char *name = strdup(s->name);
    if (!strcmp(action, "delete"))
        rc = mach_snapshot_delete(path, us, mg_progress_fn(), NULL, &err);
    else
        rc = mach_snapshot_restore(path, us, &err);
    if (rc < 0)
        rc = mg_fail_err(rc, &err, "cannot %s snapshot '%s' of VM '%s'", action[0] == 'd' ? "delete" : "restore",
                         name ? name : us, m->name);
    else
        printf("%s snapshot '%s' (UUID: %s).\n", action[0] == 'd' ? "Deleted" : "Restored", name ? name : "", us);
    free(name);
out:
    cfg_machine_free(m);
    free(path);
    mg_args_free(&a);
    return rc;
}

const struct mg_cmd g_mg_snapshot_cmds[] = {
    {"snapshot", "VM take NAME [--description TEXT]\n"
                 "VM restore NAME|UUID\n"
                 "VM restorecurrent\n"
                 "VM delete NAME|UUID\n"
                 "VM list [--machinereadable]\n"
                 "VM showvminfo NAME|UUID [--machinereadable]",
     "Snapshots freeze a machine's disks (and, taken while it runs, its memory).\n"
     "  take           a new snapshot; the machine goes on with new differencing images.  A running VM\n"
     "                 takes it itself (briefly paused); otherwise it is taken offline\n"
     "  restore        back to a snapshot (the machine must not run): what happened since is lost\n"
     "  restorecurrent back to the current snapshot\n"
     "  delete         merges the snapshot's images into its child's; the machine's current state and the\n"
     "                 other snapshots are unchanged (a snapshot with several children cannot be deleted)\n"
     "  list           the snapshot tree ('*' marks the current one); with --machinereadable the\n"
     "                 showvminfo keys SnapshotName[-N...] SnapshotUUID[-N...] CurrentSnapshotName ...\n"
     "  showvminfo     a snapshot's details and the hardware it froze\n",
     mg_snapshot},
};
const size_t g_mg_snapshot_cmd_count = RT_ARRAY_SIZE(g_mg_snapshot_cmds);
