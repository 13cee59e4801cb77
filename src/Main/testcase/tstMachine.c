/* tstMachine.c - machines and media as objects: create/register/find/list/unregister --delete, bad names, media, run locks, aborted machines, edits and validation (in temp dirs with VIREO_USER_HOME set). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "vireo/block.h"
#include "vireo/err.h"
#include "vireo/machine.h"
#include "vireo/rt.h"
#include "vireo/settings.h"

#define MIB (1024u * 1024u)

struct fx {
    char dir[64];
    char vms[128];
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (harness_home_create("tstMachine", f->dir, sizeof(f->dir)) < 0)
        return -1;
    snprintf(f->vms, sizeof(f->vms), "%s/vms", f->dir);
    mkdir(f->vms, 0700);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    harness_dir_remove(f->dir);
    free(f);
    return 0;
}

/* The file's bytes (NULL when it does not exist). */
static char *slurp(const char *path, size_t *len)
{
    void *data = NULL;
    *len = 0;
    if (rt_file_read_all(path, 16 * MIB, &data, len) < 0)
        return NULL;
    return data;
}

/* Counts the entries under a folder (recursively); -1 when it does not exist. */
static int g_walk_count;
static int count_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    if (ftw->level > 0)
        g_walk_count++;
    return 0;
}
static int folder_entries(const char *path)
{
    g_walk_count = 0;
    if (nftw(path, count_entry, 16, FTW_PHYS) < 0)
        return -1;
    return g_walk_count;
}

/* ---- Edits used by the tests ------------------------------------------------------------------ */

static int edit_detach(void *opaque, struct cfg_machine *m, const char *path, struct cfg_error *err)
{
    struct harness_attach *a = opaque;
    return cfg_attachment_remove(&m->hw, a->controller, a->port, 0);
}

static int edit_cpus(void *opaque, struct cfg_machine *m, const char *path, struct cfg_error *err)
{
    m->hw.cpus = *(unsigned *)opaque;
    return 0;
}

static int edit_state(void *opaque, struct cfg_machine *m, const char *path, struct cfg_error *err)
{
    m->state = *(enum cfg_machine_state *)opaque;
    return 0;
}

static int edit_rename(void *opaque, struct cfg_machine *m, const char *path, struct cfg_error *err)
{
    free(m->name);
    m->name = strdup(opaque);
    return 0;
}

static int edit_fail(void *opaque, struct cfg_machine *m, const char *path, struct cfg_error *err)
{
    m->hw.cpus = 7;
    snprintf(err->msg, sizeof(err->msg), "refused by the test");
    return VERR_INVALID_PARAMETER;
}

static void create_vm(const struct fx *f, const char *name, char **path, struct rt_uuid *uuid)
{
    struct cfg_error err;
    int rc = mach_create(name, NULL, f->vms, true, path, uuid, &err);
    if (rc < 0)
        fail_msg("mach_create(%s): %s", name, err.msg);
}

static struct rt_uuid make_disk(const char *path, enum blk_format fmt, uint64_t size)
{
    struct rt_uuid u;
    struct cfg_error err;
    int rc = mach_medium_create(path, fmt, size, false, &u, &err);
    if (rc < 0)
        fail_msg("mach_medium_create(%s): %s", path, err.msg);
    return u;
}

static void attach(const char *vm, const char *ctl, unsigned port, enum cfg_medium_type type, struct rt_uuid medium)
{
    struct harness_attach a = {.controller = ctl, .bus = CFG_BUS_SATA, .port = port, .type = type, .medium = medium};
    struct cfg_error err;
    int rc = mach_edit(vm, false, harness_edit_attach, &a, &err);
    if (rc < 0)
        fail_msg("attach to %s: %s", vm, err.msg);
}

/* ---- Tests ------------------------------------------------------------------------------------- */

static void test_create_find_list(void **state)
{
    struct fx *f = *state;
    char *path = NULL;
    struct rt_uuid uuid;
    create_vm(f, "First VM", &path, &uuid);
    char want[512];
    snprintf(want, sizeof(want), "%s/First VM/First VM.vireo", f->vms);
    assert_string_equal(path, want);
    assert_true(rt_path_exists(path));

    struct cfg_error err;
    char *found = NULL;
    struct cfg_machine *m = NULL;
    assert_int_equal(mach_find("First VM", &found, &m, &err), 0);
    assert_string_equal(found, path);
    assert_string_equal(m->name, "First VM");
    assert_memory_equal(m->uuid.bytes, uuid.bytes, 16);
    assert_int_equal(m->state, CFG_STATE_POWERED_OFF);
    cfg_machine_free(m);
    free(found);
    char us[RT_UUID_STR_LEN];
    rt_uuid_to_str(&uuid, us);
    assert_int_equal(mach_find(us, &found, NULL, &err), 0);
    assert_string_equal(found, path);
    free(found);
    /* Names are case-sensitive. */
    assert_int_equal(mach_find("first vm", NULL, NULL, &err), VERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "first vm"));

    /* A machine named like another one's UUID: the UUID wins. */
    char *p3 = NULL;
    create_vm(f, us, &p3, NULL);
    assert_int_equal(mach_find(us, &found, NULL, &err), 0);
    assert_string_equal(found, path);
    free(found);
    assert_int_equal(mach_unregister(us, false, &err), 0); /* the UUID's machine, not the one named so */
    assert_int_equal(mach_find("First VM", NULL, NULL, &err), VERR_NOT_FOUND);
    assert_int_equal(mach_find(us, &found, NULL, &err), 0);
    assert_string_equal(found, p3);
    free(found);
    assert_int_equal(mach_unregister(us, true, &err), 0);
    assert_false(rt_path_exists(p3));
    free(p3);
    assert_int_equal(mach_register(path, &err), 0);
    char *p2 = NULL;
    create_vm(f, "second", &p2, NULL);
    struct cfg_machine **list;
    char **paths;
    size_t n;
    assert_int_equal(mach_list(&list, &paths, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(list[0]->name, "First VM");
    assert_string_equal(list[1]->name, "second");
    assert_string_equal(paths[1], p2);
    mach_list_free(list, paths, n);

    /* Registering twice is refused; unregistered and registered again it is found. */
    assert_int_equal(mach_register(path, &err), VERR_ALREADY_EXISTS);
    assert_int_equal(mach_unregister("second", false, &err), 0);
    assert_true(rt_path_exists(p2));
    assert_int_equal(mach_find("second", NULL, NULL, &err), VERR_NOT_FOUND);
    assert_int_equal(mach_register(p2, &err), 0);
    assert_int_equal(mach_find("second", NULL, NULL, &err), 0);

    /* An unreadable machine file is reported and skipped by list. */
    harness_file_write(p2, "<broken", 7);
    assert_int_equal(mach_list(&list, &paths, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_non_null(strstr(err.msg, "second"));
    mach_list_free(list, paths, n);

    /* An OS type preset (ids are case-insensitive) gives the hardware. */
    char *pd = NULL;
    assert_int_equal(mach_create("deb", "debian_64", f->vms, true, &pd, NULL, &err), 0);
    m = harness_machine_load("deb");
    assert_string_equal(m->ostype, "Debian_64");
    assert_int_equal(m->hw.memory_mib, 2048);
    assert_int_equal(m->hw.cpus, 2);
    assert_true(m->hw.controller_count >= 1);
    assert_true(m->hw.nics[0].enabled);
    assert_int_equal(m->hw.nics[0].attach, CFG_NET_NAT);
    cfg_machine_free(m);
    free(pd);

    char *folder = mach_folder(path);
    snprintf(want, sizeof(want), "%s/First VM", f->vms);
    assert_string_equal(folder, want);
    char *rel = mach_path(path, "Snapshots/x.sav");
    snprintf(want, sizeof(want), "%s/First VM/Snapshots/x.sav", f->vms);
    assert_string_equal(rel, want);
    free(rel);
    free(folder);
    free(path);
    free(p2);
}

static void test_bad_input_changes_nothing(void **state)
{
    struct fx *f = *state;
    char *path = NULL;
    create_vm(f, "vm", &path, NULL);
    char *gpath = cfg_global_path();
    size_t glen, mlen;
    char *gbefore = slurp(gpath, &glen), *mbefore = slurp(path, &mlen);
    assert_non_null(gbefore);
    int entries = folder_entries(f->vms);

    struct cfg_error err;
    const char *bad[] = {"a/b", "..", ".", "", " lead", "trail ", "ctl\x01x"};
    for (size_t i = 0; i < RT_ARRAY_SIZE(bad); i++) {
        assert_int_equal(mach_create(bad[i], NULL, f->vms, true, NULL, NULL, &err), VERR_INVALID_PARAMETER);
        assert_non_null(strstr(err.msg, "not a valid machine name"));
    }
    assert_int_equal(mach_create("other", "NoSuchOS_64", f->vms, true, NULL, NULL, &err), VERR_INVALID_PARAMETER);
    assert_non_null(strstr(err.msg, "NoSuchOS_64"));
    assert_int_equal(mach_create("vm", NULL, f->vms, true, NULL, NULL, &err), VERR_ALREADY_EXISTS);
    assert_non_null(strstr(err.msg, "'vm'"));
    /* The same name in another folder is still the same name. */
    assert_int_equal(mach_create("vm", NULL, harness_path(f->dir, "elsewhere"), true, NULL, NULL, &err),
                     VERR_ALREADY_EXISTS);
    /* An unregistered machine's file in the way. */
    assert_int_equal(mach_unregister("vm", false, &err), 0);
    free(gbefore);
    gbefore = slurp(gpath, &glen);
    assert_int_equal(mach_create("vm", NULL, f->vms, true, NULL, NULL, &err), VERR_ALREADY_EXISTS);
    /* A failing edit writes nothing. */
    assert_int_equal(mach_register(path, &err), 0);
    free(gbefore);
    gbefore = slurp(gpath, &glen);
    assert_int_equal(mach_edit("vm", false, edit_fail, NULL, &err), VERR_INVALID_PARAMETER);
    assert_string_equal(err.msg, "refused by the test");
    unsigned cpus = 99;
    assert_int_equal(mach_edit("vm", false, edit_cpus, &cpus, &err), VERR_CFG_BAD_VALUE);
    assert_non_null(strstr(err.msg, "99 CPUs"));
    assert_int_equal(mach_edit("nobody", false, edit_cpus, &cpus, &err), VERR_NOT_FOUND);
    char *p2 = NULL;
    create_vm(f, "vm2", &p2, NULL);
    free(gbefore);
    gbefore = slurp(gpath, &glen);
    assert_int_equal(mach_edit("vm2", false, edit_rename, "vm", &err), VERR_ALREADY_EXISTS);
    assert_int_equal(mach_edit("vm2", false, edit_rename, "x/y", &err), VERR_CFG_BAD_VALUE);
    entries = folder_entries(f->vms);

    size_t glen2, mlen2;
    char *gafter = slurp(gpath, &glen2), *mafter = slurp(path, &mlen2);
    assert_int_equal(glen2, glen);
    assert_memory_equal(gafter, gbefore, glen);
    assert_int_equal(mlen2, mlen);
    assert_memory_equal(mafter, mbefore, mlen);
    assert_int_equal(folder_entries(f->vms), entries);
    assert_false(rt_path_exists(harness_path(f->dir, "elsewhere/vm")));
    free(gbefore);
    free(gafter);
    free(mbefore);
    free(mafter);
    free(gpath);
    free(path);
    free(p2);
}

static void test_unregister_delete_leaves_nothing(void **state)
{
    struct fx *f = *state;
    char *path = NULL;
    create_vm(f, "doomed", &path, NULL);
    char *folder = mach_folder(path);
    char disk[600];
    snprintf(disk, sizeof(disk), "%s/doomed.vdi", folder);
    struct rt_uuid d1 = make_disk(disk, BLK_FMT_VDI, 8 * MIB);
    /* A disk outside the folder that another machine uses too: it stays, registered. */
    const char *shared = harness_path(f->dir, "shared.qcow2");
    struct rt_uuid d2 = make_disk(shared, BLK_FMT_QCOW2, 4 * MIB);
    attach("doomed", "SATA", 0, CFG_MEDIUM_HDD, d1);
    attach("doomed", "SATA", 1, CFG_MEDIUM_HDD, d2);
    char *other = NULL;
    create_vm(f, "other", &other, NULL);
    attach("other", "SATA", 0, CFG_MEDIUM_HDD, d2);
    /* A DVD image outside the folder: DVDs are never deleted. */
    const char *iso = harness_path(f->dir, "install.iso");
    char *zeros = calloc(1, 64 * 1024);
    harness_file_write(iso, zeros, 64 * 1024);
    free(zeros);
    struct rt_uuid dvd;
    struct cfg_error err;
    assert_int_equal(mach_medium_open(iso, CFG_MEDIUM_DVD, &dvd, &err), 0);
    attach("doomed", "SATA", 2, CFG_MEDIUM_DVD, dvd);
    /* A snapshot (differencing images in Snapshots/), a saved state, a log and the run lock file. */
    assert_int_equal(mach_snapshot_take(path, "s1", NULL, NULL, false, NULL, &err), 0);
    char p[700];
    snprintf(p, sizeof(p), "%s/Logs", folder);
    assert_int_equal(mkdir(p, 0700), 0);
    snprintf(p, sizeof(p), "%s/Logs/VM.log", folder);
    harness_file_write(p, "log", 3);
    snprintf(p, sizeof(p), "%s/Snapshots/current.sav", folder);
    harness_file_write(p, "state", 5);
    struct cfg_machine *m = harness_machine_load("doomed");
    m->state = CFG_STATE_SAVED;
    m->state_file = strdup("Snapshots/current.sav");
    assert_int_equal(cfg_machine_save(m, path, &err), 0);
    cfg_machine_free(m);
    struct mach_run_lock *rl;
    assert_int_equal(mach_run_lock_acquire(path, &rl, &err), 0);
    mach_run_lock_release(rl);
    assert_true(folder_entries(folder) >= 7);
    struct cfg_medium *hdds;
    size_t nhdd;
    assert_int_equal(mach_medium_list(CFG_MEDIUM_HDD, &hdds, &nhdd, &err), 0);
    assert_int_equal(nhdd, 4); /* two disks and their differencing images */
    mach_medium_list_free(hdds, nhdd);

    assert_int_equal(mach_unregister("doomed", true, &err), 0);
    assert_int_equal(folder_entries(folder), -1);
    assert_int_equal(mach_find("doomed", NULL, NULL, &err), VERR_NOT_FOUND);
    assert_true(rt_path_exists(shared));
    assert_true(rt_path_exists(iso));
    struct cfg_medium md;
    assert_int_equal(mach_medium_find(shared, &md, &err), 0);
    mach_medium_clear(&md);
    assert_int_equal(mach_medium_find(iso, &md, &err), 0);
    mach_medium_clear(&md);
    assert_int_equal(mach_medium_find(disk, &md, &err), VERR_NOT_FOUND);
    assert_int_equal(mach_medium_list(CFG_MEDIUM_HDD, &hdds, &nhdd, &err), 0);
    assert_int_equal(nhdd, 1);
    mach_medium_list_free(hdds, nhdd);
    /* The other machine is untouched. */
    m = harness_machine_load("other");
    assert_int_equal(m->hw.attachment_count, 1);
    cfg_machine_free(m);

    /* A folder with a file of someone else's stays, with only that file in it. */
    char *keep = NULL;
    create_vm(f, "keeper", &keep, NULL);
    char *kfolder = mach_folder(keep);
    snprintf(p, sizeof(p), "%s/notes.txt", kfolder);
    harness_file_write(p, "mine", 4);
    assert_int_equal(mach_unregister("keeper", true, &err), 0);
    assert_int_equal(folder_entries(kfolder), 1);
    assert_true(rt_path_exists(p));
    free(kfolder);
    free(keep);
    free(other);
    free(folder);
    free(path);
}

static void test_media(void **state)
{
    struct fx *f = *state;
    struct cfg_error err;
    char vdi[256], loose[256], q[256], child[256];
    snprintf(vdi, sizeof(vdi), "%s", harness_path(f->dir, "disk.vdi"));
    snprintf(loose, sizeof(loose), "%s", harness_path(f->dir, "loose.raw"));
    snprintf(q, sizeof(q), "%s", harness_path(f->dir, "other.qcow2"));
    snprintf(child, sizeof(child), "%s", harness_path(f->dir, "child.qcow2"));
    struct rt_uuid u = make_disk(vdi, BLK_FMT_VDI, 1000000);
    struct blk_image *img;
    assert_int_equal(blk_open(vdi, BLK_FMT_AUTO, BLK_OPEN_READONLY, &img), 0);
    assert_int_equal(blk_size_bytes(img), MIB); /* rounded up to whole MiB */
    blk_close(img);
    struct cfg_medium md;
    assert_int_equal(mach_medium_find(vdi, &md, &err), 0);
    assert_memory_equal(md.uuid.bytes, u.bytes, 16);
    assert_string_equal(md.format, "vdi");
    assert_int_equal(md.type, CFG_MEDIUM_HDD);
    assert_string_equal(md.location, vdi);
    mach_medium_clear(&md);
    char us[RT_UUID_STR_LEN];
    rt_uuid_to_str(&u, us);
    assert_int_equal(mach_medium_find(us, &md, &err), 0);
    mach_medium_clear(&md);
    assert_int_equal(mach_medium_find("disk.vdi", &md, &err), 0); /* by file name */
    mach_medium_clear(&md);
    assert_int_equal(chdir(f->dir), 0);
    assert_int_equal(mach_medium_find("./disk.vdi", &md, &err), 0); /* relative to the cwd */
    mach_medium_clear(&md);

    /* Refused: an existing file, a registered one, a zero size, a read-only format. */
    assert_int_equal(mach_medium_create(vdi, BLK_FMT_VDI, MIB, false, NULL, &err), VERR_ALREADY_EXISTS);
    harness_file_write(loose, "x", 1);
    assert_int_equal(mach_medium_create(loose, BLK_FMT_RAW, MIB, false, NULL, &err), VERR_ALREADY_EXISTS);
    assert_int_equal(mach_medium_create(harness_path(f->dir, "zero.vdi"), BLK_FMT_VDI, 0, false, NULL, &err),
                     VERR_INVALID_PARAMETER);
    assert_int_equal(mach_medium_create(harness_path(f->dir, "x.vmdk"), BLK_FMT_VMDK, MIB, false, NULL, &err),
                     VERR_NOT_SUPPORTED);
    assert_false(rt_path_exists(harness_path(f->dir, "zero.vdi")));
    assert_int_equal(
        mach_medium_create(harness_path(f->dir, "nofolder/x.vdi"), BLK_FMT_VDI, MIB, false, NULL, &err) < 0, 1);

    /* Opening: a DVD must be ISO or raw, opening twice gives the same UUID. */
    struct blk_create_params cp = {.format = BLK_FMT_QCOW2, .size_bytes = MIB};
    assert_int_equal(blk_create(q, &cp), 0);
    struct rt_uuid dvd, dvd2, hq;
    assert_int_equal(mach_medium_open(q, CFG_MEDIUM_DVD, &dvd, &err), VERR_BAD_FORMAT);
    assert_non_null(strstr(err.msg, "not a DVD"));
    assert_int_equal(mach_medium_open(loose, CFG_MEDIUM_DVD, &dvd, &err), 0);
    assert_int_equal(mach_medium_open(loose, CFG_MEDIUM_DVD, &dvd2, &err), 0);
    assert_memory_equal(dvd.bytes, dvd2.bytes, 16);
    assert_int_equal(mach_medium_open(loose, CFG_MEDIUM_HDD, &dvd2, &err), VERR_INVALID_PARAMETER);
    assert_int_equal(mach_medium_open(harness_path(f->dir, "missing.iso"), CFG_MEDIUM_DVD, &dvd2, &err),
                     VERR_FILE_NOT_FOUND);
    assert_int_equal(mach_medium_open(q, CFG_MEDIUM_HDD, &hq, &err), 0);
    /* A differencing image opened over a registered parent records it. */
    struct blk_create_params cc = {.format = BLK_FMT_QCOW2, .backing_path = q};
    assert_int_equal(blk_create(child, &cc), 0);
    struct rt_uuid hc;
    assert_int_equal(mach_medium_open(child, CFG_MEDIUM_HDD, &hc, &err), 0);
    assert_int_equal(mach_medium_find(child, &md, &err), 0);
    assert_memory_equal(md.parent.bytes, hq.bytes, 16);
    mach_medium_clear(&md);
    assert_int_equal(mach_medium_close(q, false, &err), VERR_BUSY);
    assert_non_null(strstr(err.msg, "child.qcow2"));

    /* Users; closing a used medium names the machine. */
    char *path = NULL;
    create_vm(f, "user", &path, NULL);
    attach("user", "SATA", 0, CFG_MEDIUM_HDD, u);
    attach("user", "SATA", 1, CFG_MEDIUM_DVD, dvd);
    char **names;
    size_t n;
    assert_int_equal(mach_medium_users(&u, &names, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(names[0], "user");
    free(names[0]);
    free(names);
    assert_int_equal(mach_medium_close(vdi, true, &err), VERR_BUSY);
    assert_non_null(strstr(err.msg, "'user'"));
    assert_true(rt_path_exists(vdi));
    /* Used only by a snapshot: still busy. */
    assert_int_equal(mach_snapshot_take(path, "snap", NULL, NULL, false, NULL, &err), 0);
    struct cfg_machine *m = harness_machine_load("user");
    struct rt_uuid cur = m->hw.attachments[0].medium;
    cfg_machine_free(m);
    assert_memory_not_equal(cur.bytes, u.bytes, 16);
    struct harness_attach det = {.controller = "SATA", .port = 0};
    assert_int_equal(mach_edit("user", false, edit_detach, &det, &err), 0);
    assert_int_equal(mach_medium_close(vdi, true, &err), VERR_BUSY);
    /* An unused medium closes, and with delete_file its file goes. */
    assert_int_equal(mach_medium_close(child, true, &err), 0);
    assert_false(rt_path_exists(child));
    assert_int_equal(mach_medium_close(q, false, &err), 0);
    assert_true(rt_path_exists(q));
    assert_int_equal(mach_medium_find(q, &md, &err), VERR_NOT_FOUND);
    struct cfg_medium *list;
    assert_int_equal(mach_medium_list(CFG_MEDIUM_DVD, &list, &n, &err), 0);
    assert_int_equal(n, 1);
    mach_medium_list_free(list, n);
    assert_int_equal(chdir("/"), 0);
    free(path);
}

static void test_running(void **state)
{
    struct fx *f = *state;
    char *path = NULL;
    create_vm(f, "busy", &path, NULL);
    struct cfg_error err;
    assert_false(mach_is_running(path));
    pid_t pid = harness_run_lock_hold(path);
    assert_true(mach_is_running(path));
    struct mach_run_lock *rl = NULL;
    assert_int_equal(mach_run_lock_acquire(path, &rl, &err), VERR_BUSY);
    assert_null(rl);
    assert_non_null(strstr(err.msg, "running"));

    size_t len;
    char *before = slurp(path, &len);
    unsigned cpus = 2;
    assert_int_equal(mach_edit("busy", false, edit_cpus, &cpus, &err), VERR_INVALID_STATE);
    assert_string_equal(err.msg, "machine 'busy' is running; power it off first");
    assert_int_equal(mach_unregister("busy", true, &err), VERR_INVALID_STATE);
    assert_int_equal(mach_snapshot_take(path, "s", NULL, NULL, false, NULL, &err), VERR_INVALID_STATE);
    assert_int_equal(mach_clone("busy", "copy", MACH_CLONE_CURRENT, false, true, f->vms, NULL, NULL, NULL, &err),
                     VERR_BUSY);
    size_t len2;
    char *after = slurp(path, &len2);
    assert_int_equal(len2, len);
    assert_memory_equal(after, before, len);
    free(after);
    /* vireo-vm's own changes (state, extra data) go through. */
    enum cfg_machine_state st = CFG_STATE_RUNNING;
    assert_int_equal(mach_edit("busy", true, edit_state, &st, &err), 0);
    struct cfg_machine *m = harness_machine_load("busy");
    assert_int_equal(m->state, CFG_STATE_RUNNING);
    cfg_machine_free(m);

    /* The process dies: the machine is aborted (reported at once, recorded by the next change). */
    harness_run_lock_release(pid);
    assert_false(mach_is_running(path));
    m = harness_machine_load("busy");
    assert_int_equal(m->state, CFG_STATE_ABORTED);
    cfg_machine_free(m);
    struct cfg_machine **list;
    size_t n;
    assert_int_equal(mach_list(&list, NULL, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(list[0]->state, CFG_STATE_ABORTED);
    mach_list_free(list, NULL, n);
    assert_int_equal(mach_edit("busy", false, edit_cpus, &cpus, &err), 0);
    assert_int_equal(cfg_machine_load(path, &m, &err), 0);
    assert_int_equal(m->state, CFG_STATE_ABORTED);
    assert_int_equal(m->hw.cpus, 2);
    cfg_machine_free(m);
    /* Our own lock now. */
    assert_int_equal(mach_run_lock_acquire(path, &rl, &err), 0);
    assert_true(mach_is_running(path));
    mach_run_lock_release(rl);
    assert_false(mach_is_running(path));
    free(before);
    free(path);
}

static void test_validate(void **state)
{
    struct fx *f = *state;
    char *path = NULL;
    create_vm(f, "v", &path, NULL);
    struct cfg_error err;
    struct cfg_global *g = NULL;
    char *gpath = cfg_global_path();
    assert_int_equal(cfg_global_load(gpath, &g, &err), 0);
    struct cfg_machine *m = harness_machine_load("v");
    assert_int_equal(mach_validate(m, g, &err), 0);
    assert_int_equal(cfg_controller_add(&m->hw, "SATA", CFG_BUS_SATA, 2), 0);
    struct rt_uuid bogus;
    rt_uuid_generate(&bogus);
    struct cfg_attachment a = {.controller = "SATA", .port = 1, .type = CFG_MEDIUM_HDD, .medium = bogus};
    assert_int_equal(cfg_attachment_set(&m->hw, &a), 0);
    assert_int_equal(mach_validate(m, g, &err), VERR_CFG_BAD_VALUE);
    assert_non_null(strstr(err.msg, "not registered"));
    /* Without a registry only the structure is checked. */
    assert_int_equal(mach_validate(m, NULL, &err), 0);
    m->hw.attachments[0].port = 5;
    assert_int_equal(mach_validate(m, NULL, &err), VERR_CFG_BAD_VALUE);
    assert_non_null(strstr(err.msg, "port 5"));
    m->hw.attachments[0].port = 0;
    free(m->hw.attachments[0].controller);
    m->hw.attachments[0].controller = strdup("Nope");
    assert_int_equal(mach_validate(m, NULL, &err), VERR_CFG_BAD_VALUE);
    assert_non_null(strstr(err.msg, "Nope"));
    free(m->hw.attachments[0].controller);
    m->hw.attachments[0].controller = strdup("SATA");
    m->hw.controllers[0].port_count = 31;
    assert_int_equal(mach_validate(m, NULL, &err), VERR_CFG_BAD_VALUE);
    m->hw.controllers[0].port_count = 2;
    m->hw.nics[0].enabled = true;
    snprintf(m->hw.nics[0].mac, sizeof(m->hw.nics[0].mac), "010203040506"); /* multicast */
    assert_int_equal(mach_validate(m, NULL, &err), VERR_CFG_BAD_VALUE);
    snprintf(m->hw.nics[0].mac, sizeof(m->hw.nics[0].mac), "080027ABCDEF");
    assert_int_equal(mach_validate(m, NULL, &err), 0);
    m->hw.memory_mib = 2;
    assert_int_equal(mach_validate(m, NULL, &err), VERR_CFG_BAD_VALUE);
    cfg_machine_free(m);
    cfg_global_free(g);
    free(gpath);
    free(path);
}

/* The global registry's transaction: a refused edit writes nothing, an accepted one is saved. */
static int global_edit_fail(void *opaque, struct cfg_global *g, struct cfg_error *err)
{
    (void)opaque;
    free(g->default_machine_folder);
    g->default_machine_folder = strdup("/refused");
    snprintf(err->msg, sizeof(err->msg), "refused by the test");
    return VERR_INVALID_PARAMETER;
}

static int global_edit_folder(void *opaque, struct cfg_global *g, struct cfg_error *err)
{
    (void)err;
    free(g->default_machine_folder);
    g->default_machine_folder = strdup(opaque);
    return g->default_machine_folder ? 0 : VERR_NO_MEMORY;
}

static void test_global_edit(void **state)
{
    struct fx *f = *state;
    char *path = NULL;
    create_vm(f, "g", &path, NULL);
    char *gpath = cfg_global_path();
    size_t glen, glen2;
    char *gbefore = slurp(gpath, &glen);
    assert_non_null(gbefore);
    struct cfg_error err = {{0}};
    assert_int_equal(mach_global_edit(global_edit_fail, NULL, &err), VERR_INVALID_PARAMETER);
    assert_string_equal(err.msg, "refused by the test");
    char *gafter = slurp(gpath, &glen2);
    assert_int_equal(glen2, glen);
    assert_memory_equal(gafter, gbefore, glen);
    assert_int_equal(mach_global_edit(global_edit_folder, f->vms, &err), 0);
    struct cfg_global *g = NULL;
    assert_int_equal(cfg_global_load(gpath, &g, &err), 0);
    assert_string_equal(g->default_machine_folder, f->vms);
    assert_int_equal(g->machine_count, 1); /* the rest of the registry stays */
    cfg_global_free(g);
    free(gbefore);
    free(gafter);
    free(gpath);
    free(path);
}

static void test_discard_state(void **state)
{
    struct fx *f = *state;
    char *path = NULL;
    create_vm(f, "sv", &path, NULL);
    struct cfg_error err;
    assert_int_equal(mach_discard_state("sv", &err), VERR_INVALID_STATE);
    char *sf = mach_path(path, "saved.sav");
    harness_file_write(sf, "state", 5);
    struct cfg_machine *m = harness_machine_load("sv");
    m->state = CFG_STATE_SAVED;
    m->state_file = strdup("saved.sav");
    assert_int_equal(cfg_machine_save(m, path, &err), 0);
    cfg_machine_free(m);
    assert_int_equal(mach_discard_state("sv", &err), 0);
    assert_false(rt_path_exists(sf));
    m = harness_machine_load("sv");
    assert_int_equal(m->state, CFG_STATE_POWERED_OFF);
    assert_null(m->state_file);
    cfg_machine_free(m);
    free(sf);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_find_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unregister_delete_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_media, setup, teardown),
        cmocka_unit_test_setup_teardown(test_running, setup, teardown),
        cmocka_unit_test_setup_teardown(test_validate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_global_edit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_discard_state, setup, teardown),
    };
    rt_log_set_stderr_level((enum rt_log_level)-1);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
