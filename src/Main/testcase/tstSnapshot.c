/* tstSnapshot.c - snapshots and clones on real images: take/restore, deleting snapshots in a chain (merges), online snapshots, ambiguous names, full and linked clones (in temp dirs with VIREO_USER_HOME set). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
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

#define KIB 1024u
#define MIB (1024u * 1024u)
#define DISK (4 * MIB)

struct fx {
    char dir[64];
    char vms[128];
    char *path; /* the machine "vm" */
};

static int edit_nic(void *opaque, struct cfg_machine *m, const char *path, struct cfg_error *err)
{
    m->hw.nics[0].enabled = true;
    m->hw.nics[0].attach = CFG_NET_NAT;
    snprintf(m->hw.nics[0].mac, sizeof(m->hw.nics[0].mac), "080027000001");
    return 0;
}

/* A machine "vm" with a 4 MiB disk of format fmt on SATA port 0. */
static int setup_fmt(void **state, enum blk_format fmt)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (harness_home_create("tstSnapshot", f->dir, sizeof(f->dir)) < 0)
        return -1;
    char disk[256];
    snprintf(f->vms, sizeof(f->vms), "%s/vms", f->dir);
    struct cfg_error err;
    if (mach_create("vm", NULL, f->vms, true, &f->path, NULL, &err) < 0) {
        fprintf(stderr, "mach_create: %s\n", err.msg);
        return -1;
    }
    snprintf(disk, sizeof(disk), "%s/vm/vm.%s", f->vms, blk_format_name(fmt));
    struct harness_attach a = {.controller = "SATA", .bus = CFG_BUS_SATA, .type = CFG_MEDIUM_HDD};
    if (mach_medium_create(disk, fmt, DISK, false, &a.medium, &err) < 0 ||
        mach_edit("vm", false, harness_edit_attach, &a, &err) < 0 || mach_edit("vm", false, edit_nic, NULL, &err) < 0) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return -1;
    }
    *state = f;
    return 0;
}

static int setup_vdi(void **state)
{
    return setup_fmt(state, BLK_FMT_VDI);
}

static int setup_qcow2(void **state)
{
    return setup_fmt(state, BLK_FMT_QCOW2);
}

static int setup_raw(void **state)
{
    return setup_fmt(state, BLK_FMT_RAW);
}

static int teardown(void **state)
{
    struct fx *f = *state;
    harness_dir_remove(f->dir);
    free(f->path);
    free(f);
    return 0;
}

/* ---- Disk content ------------------------------------------------------------------------------ */

static char *medium_path(const struct rt_uuid *u)
{
    char us[RT_UUID_STR_LEN];
    rt_uuid_to_str(u, us);
    struct cfg_medium md;
    struct cfg_error err;
    if (mach_medium_find(us, &md, &err) < 0)
        fail_msg("medium %s: %s", us, err.msg);
    char *p = strdup(md.location);
    mach_medium_clear(&md);
    return p;
}

/* The image the machine's current state (snap NULL) or a snapshot attaches on port 0. */
static char *disk_of(const char *vm, const char *snap)
{
    struct cfg_machine *m = harness_machine_load(vm);
    const struct cfg_hardware *hw = &m->hw;
    if (snap) {
        struct cfg_snapshot *s = cfg_snapshot_find_name(m, snap);
        assert_non_null(s);
        hw = &s->hw;
    }
    char *p = NULL;
    for (size_t i = 0; i < hw->attachment_count; i++)
        if (hw->attachments[i].type == CFG_MEDIUM_HDD && hw->attachments[i].port == 0)
            p = medium_path(&hw->attachments[i].medium);
    cfg_machine_free(m);
    assert_non_null(p);
    return p;
}

static void fill(uint8_t *buf, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(seed * 31 + i * 7 + (i >> 10));
}

/* Writes a pattern into the disk the machine uses now, and into the shadow copy. */
static void put(const char *vm, uint8_t *shadow, uint64_t off, size_t len, unsigned seed)
{
    char *p = disk_of(vm, NULL);
    struct blk_image *img;
    assert_int_equal(blk_open(p, BLK_FMT_AUTO, 0, &img), 0);
    uint8_t *buf = malloc(len);
    fill(buf, len, seed);
    assert_int_equal(blk_write(img, off, buf, len), 0);
    assert_int_equal(blk_flush(img), 0);
    blk_close(img);
    if (shadow)
        memcpy(shadow + off, buf, len);
    free(buf);
    free(p);
}

/* The whole disk as the image at path shows it. */
static uint8_t *contents(const char *path)
{
    struct blk_image *img;
    int rc = blk_open(path, BLK_FMT_AUTO, BLK_OPEN_READONLY, &img);
    if (rc < 0)
        fail_msg("%s: %s", path, rt_err_str(rc));
    uint8_t *buf = malloc(DISK);
    assert_int_equal(blk_read(img, 0, buf, DISK), 0);
    blk_close(img);
    return buf;
}

static void expect_disk(const char *vm, const char *snap, const uint8_t *want)
{
    char *p = disk_of(vm, snap);
    uint8_t *got = contents(p);
    if (memcmp(got, want, DISK)) {
        size_t i = 0;
        while (got[i] == want[i])
            i++;
        fail_msg("%s (%s of %s): byte %zu is %u, expected %u", p, snap ? snap : "current", vm, i, got[i], want[i]);
    }
    free(got);
    free(p);
}

static size_t hdd_count(void)
{
    struct cfg_medium *list;
    size_t n;
    struct cfg_error err;
    assert_int_equal(mach_medium_list(CFG_MEDIUM_HDD, &list, &n, &err), 0);
    for (size_t i = 0; i < n; i++)
        assert_true(rt_path_exists(list[i].location));
    mach_medium_list_free(list, n);
    return n;
}

static void take(const struct fx *f, const char *name)
{
    struct cfg_error err;
    if (mach_snapshot_take(f->path, name, "test", NULL, false, NULL, &err) < 0)
        fail_msg("take %s: %s", name, err.msg);
}

/* ---- Tests ------------------------------------------------------------------------------------- */

static void test_take_restore(void **state)
{
    struct fx *f = *state;
    uint8_t *a = calloc(1, DISK), *b;
    put("vm", a, 0, MIB + 3000, 1);
    char *base = disk_of("vm", NULL);
    take(f, "before");
    struct cfg_machine *m = harness_machine_load("vm");
    assert_int_equal(m->snapshot_count, 1);
    assert_string_equal(m->snapshots[0].name, "before");
    assert_string_equal(m->snapshots[0].description, "test");
    assert_memory_equal(m->current_snapshot.bytes, m->snapshots[0].uuid.bytes, 16);
    assert_false(m->snapshots[0].online);
    cfg_machine_free(m);
    /* The snapshot keeps the old image; the machine writes to a new one in Snapshots/ over it. */
    char *snapdisk = disk_of("vm", "before"), *cur = disk_of("vm", NULL);
    assert_string_equal(snapdisk, base);
    assert_non_null(strstr(cur, "/vm/Snapshots/{"));
    struct cfg_medium md;
    struct cfg_error err;
    assert_int_equal(mach_medium_find(cur, &md, &err), 0);
    struct cfg_medium pm;
    assert_int_equal(mach_medium_find(base, &pm, &err), 0);
    assert_memory_equal(md.parent.bytes, pm.uuid.bytes, 16);
    mach_medium_clear(&md);
    mach_medium_clear(&pm);
    expect_disk("vm", NULL, a);

    b = malloc(DISK);
    memcpy(b, a, DISK);
    put("vm", b, 100, 5000, 2);
    put("vm", b, 3 * MIB, 70000, 3);
    expect_disk("vm", NULL, b);
    expect_disk("vm", "before", a);
    assert_int_equal(hdd_count(), 2);

    assert_int_equal(mach_snapshot_restore(f->path, "before", &err), 0);
    expect_disk("vm", NULL, a);
    assert_false(rt_path_exists(cur)); /* the old differencing image is gone */
    assert_int_equal(hdd_count(), 2);
    m = harness_machine_load("vm");
    assert_int_equal(m->state, CFG_STATE_POWERED_OFF);
    cfg_machine_free(m);
    /* Again: restoring twice works and gives the same content. */
    put("vm", NULL, 0, 4096, 9);
    assert_int_equal(mach_snapshot_restore(f->path, "before", &err), 0);
    expect_disk("vm", NULL, a);
    assert_int_equal(mach_snapshot_restore(f->path, "nonesuch", &err), VERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "nonesuch"));
    free(snapdisk);
    free(cur);
    free(base);
    free(a);
    free(b);
}

static void test_delete_in_chain(void **state)
{
    struct fx *f = *state;
    uint8_t *s1 = calloc(1, DISK), *s2, *s3, *now;
    put("vm", s1, 0, MIB, 1);
    take(f, "s1");
    s2 = malloc(DISK);
    memcpy(s2, s1, DISK);
    put("vm", s2, MIB / 2, MIB, 2); /* overlaps s1's data */
    put("vm", s2, 3 * MIB, 4096, 3);
    take(f, "s2");
    s3 = malloc(DISK);
    memcpy(s3, s2, DISK);
    put("vm", s3, MIB - 100, 200, 4);
    put("vm", s3, 2 * MIB, MIB, 5);
    take(f, "s3");
    now = malloc(DISK);
    memcpy(now, s3, DISK);
    put("vm", now, 10, 10, 6);
    put("vm", now, 2 * MIB + 5, 300, 7);
    assert_int_equal(hdd_count(), 4);
    char *s2disk = disk_of("vm", "s2"), *s3disk = disk_of("vm", "s3");

    /* The middle one: s2's image takes s3's data, and s3 and what sits on it are pointed at it. */
    struct cfg_error err;
    assert_int_equal(mach_snapshot_delete(f->path, "s2", NULL, NULL, &err), 0);
    expect_disk("vm", NULL, now);
    expect_disk("vm", "s1", s1);
    expect_disk("vm", "s3", s3);
    assert_int_equal(hdd_count(), 3);
    assert_false(rt_path_exists(s3disk));
    char *s3now = disk_of("vm", "s3");
    assert_string_equal(s3now, s2disk);
    struct cfg_machine *m = harness_machine_load("vm");
    assert_int_equal(m->snapshot_count, 1);
    assert_string_equal(m->snapshots[0].name, "s1");
    assert_int_equal(m->snapshots[0].child_count, 1);
    assert_string_equal(m->snapshots[0].children[0].name, "s3");
    assert_null(cfg_snapshot_find_name(m, "s2"));
    cfg_machine_free(m);
    struct blk_check_result res;
    assert_int_equal(blk_check(s2disk, BLK_FMT_AUTO, false, &res), 0);
    assert_int_equal(res.errors, 0);

    /* The first one (a root). */
    assert_int_equal(mach_snapshot_delete(f->path, "s1", NULL, NULL, &err), 0);
    expect_disk("vm", NULL, now);
    expect_disk("vm", "s3", s3);
    assert_int_equal(hdd_count(), 2);
    m = harness_machine_load("vm");
    assert_int_equal(m->snapshot_count, 1);
    assert_string_equal(m->snapshots[0].name, "s3");
    assert_memory_equal(m->current_snapshot.bytes, m->snapshots[0].uuid.bytes, 16);
    cfg_machine_free(m);

    /* The last one, the current state's parent: the current state merges into its image. */
    assert_int_equal(mach_snapshot_delete(f->path, "s3", NULL, NULL, &err), 0);
    expect_disk("vm", NULL, now);
    assert_int_equal(hdd_count(), 1);
    m = harness_machine_load("vm");
    assert_int_equal(m->snapshot_count, 0);
    assert_true(rt_uuid_is_null(&m->current_snapshot));
    cfg_machine_free(m);
    char sd[600];
    snprintf(sd, sizeof(sd), "%s/vm/Snapshots", f->vms);
    struct stat st;
    if (stat(sd, &st) == 0) {
        /* Only the images deleted from it: nothing left inside. */
        char cmd[700];
        snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A '%s')\"", sd);
        assert_int_equal(system(cmd), 0);
    }
    free(s2disk);
    free(s3disk);
    free(s3now);
    free(s1);
    free(s2);
    free(s3);
    free(now);
}

static void test_branches_and_names(void **state)
{
    struct fx *f = *state;
    struct cfg_error err;
    uint8_t *a = calloc(1, DISK);
    put("vm", a, 0, 8192, 1);
    take(f, "same");
    put("vm", NULL, 0, 8192, 2);
    take(f, "same");
    assert_int_equal(mach_snapshot_restore(f->path, "same", &err), VERR_INVALID_PARAMETER);
    assert_string_equal(err.msg, "2 snapshots are named same; use the UUID");
    struct cfg_machine *m = harness_machine_load("vm");
    char first[RT_UUID_STR_LEN];
    rt_uuid_to_str(&m->snapshots[0].uuid, first);
    cfg_machine_free(m);
    assert_int_equal(mach_snapshot_restore(f->path, first, &err), 0);
    expect_disk("vm", NULL, a);
    /* A second branch under the first snapshot: it now has two children and cannot be deleted. */
    take(f, "branch");
    m = harness_machine_load("vm");
    assert_int_equal(m->snapshots[0].child_count, 2);
    cfg_machine_free(m);
    size_t n = hdd_count();
    assert_int_equal(mach_snapshot_delete(f->path, first, NULL, NULL, &err), VERR_INVALID_STATE);
    assert_non_null(strstr(err.msg, "2 children"));
    assert_int_equal(hdd_count(), n);
    /* A leaf that is not the current state's parent: its images go with it. */
    m = harness_machine_load("vm");
    char leaf[RT_UUID_STR_LEN];
    rt_uuid_to_str(&m->snapshots[0].children[0].uuid, leaf);
    cfg_machine_free(m);
    char *leafdisk = disk_of("vm", NULL);
    assert_int_equal(mach_snapshot_delete(f->path, leaf, NULL, NULL, &err), 0);
    assert_true(rt_path_exists(leafdisk));
    assert_int_equal(hdd_count(), n - 1);
    expect_disk("vm", NULL, a);
    free(leafdisk);
    free(a);
}

static void test_online_and_saved(void **state)
{
    struct fx *f = *state;
    struct cfg_error err;
    uint8_t *a = calloc(1, DISK);
    put("vm", a, 4096, 4096, 1);
    /* An online snapshot (vireo-vm saved the state to a file and calls with from_vm). */
    char *sf = mach_path(f->path, "Snapshots/online.sav");
    char *dir = mach_path(f->path, "Snapshots");
    mkdir(dir, 0700);
    int fd = open(sf, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "STATE-1", 7), 7);
    close(fd);
    assert_int_equal(mach_snapshot_take(f->path, "live", NULL, "Snapshots/online.sav", true, NULL, &err), 0);
    assert_int_equal(mach_snapshot_take(f->path, "bad", NULL, "../escape.sav", true, NULL, &err),
                     VERR_INVALID_PARAMETER);
    put("vm", NULL, 0, 4096, 2);
    assert_int_equal(mach_snapshot_restore(f->path, "live", &err), 0);
    struct cfg_machine *m = harness_machine_load("vm");
    assert_int_equal(m->state, CFG_STATE_SAVED);
    assert_non_null(m->state_file);
    assert_string_not_equal(m->state_file, "Snapshots/online.sav");
    char *copy = mach_path(f->path, m->state_file);
    cfg_machine_free(m);
    void *data;
    size_t len;
    assert_int_equal(rt_file_read_all(copy, 1024, &data, &len), 0);
    assert_int_equal(len, 7);
    assert_memory_equal(data, "STATE-1", 7);
    free(data);
    expect_disk("vm", NULL, a);
    /* Restoring again replaces the machine's copy with a fresh one; the snapshot keeps its file. */
    assert_int_equal(mach_snapshot_restore(f->path, "live", &err), 0);
    assert_false(rt_path_exists(copy));
    assert_true(rt_path_exists(sf));
    free(copy);

    /* A saved machine's snapshot gets a copy of its state. */
    m = harness_machine_load("vm");
    char *mine = mach_path(f->path, m->state_file);
    cfg_machine_free(m);
    take(f, "of-saved");
    m = harness_machine_load("vm");
    assert_int_equal(m->state, CFG_STATE_SAVED);
    struct cfg_snapshot *s = cfg_snapshot_find_name(m, "of-saved");
    assert_non_null(s);
    assert_true(s->online);
    assert_non_null(s->state_file);
    char *scopy = mach_path(f->path, s->state_file);
    cfg_machine_free(m);
    assert_string_not_equal(scopy, mine);
    assert_int_equal(rt_file_read_all(scopy, 1024, &data, &len), 0);
    assert_memory_equal(data, "STATE-1", 7);
    free(data);
    /* Restoring an offline snapshot powers off and drops the saved state. */
    assert_int_equal(mach_snapshot_delete(f->path, "of-saved", NULL, NULL, &err), 0);
    assert_false(rt_path_exists(scopy));
    assert_int_equal(mach_discard_state("vm", &err), 0);
    assert_false(rt_path_exists(mine));
    take(f, "offline");
    fd = open(mine, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    close(fd);
    m = harness_machine_load("vm");
    m->state = CFG_STATE_SAVED;
    m->state_file = strdup(mine + strlen(f->vms) + strlen("/vm/"));
    assert_int_equal(cfg_machine_save(m, f->path, &err), 0);
    cfg_machine_free(m);
    assert_int_equal(mach_snapshot_restore(f->path, "offline", &err), 0);
    m = harness_machine_load("vm");
    assert_int_equal(m->state, CFG_STATE_POWERED_OFF);
    assert_null(m->state_file);
    cfg_machine_free(m);
    assert_false(rt_path_exists(mine));
    assert_true(rt_path_exists(sf));
    free(scopy);
    free(mine);
    free(sf);
    free(dir);
    free(a);
}

static void test_running_refused(void **state)
{
    struct fx *f = *state;
    struct cfg_error err;
    take(f, "s");
    pid_t pid = harness_run_lock_hold(f->path);
    size_t n = hdd_count();
    assert_int_equal(mach_snapshot_restore(f->path, "s", &err), VERR_INVALID_STATE);
    assert_string_equal(err.msg, "machine 'vm' is running; power it off first");
    assert_int_equal(mach_snapshot_delete(f->path, "s", NULL, NULL, &err), VERR_INVALID_STATE);
    /* Its own process may take one (from_vm). */
    assert_int_equal(mach_snapshot_take(f->path, "online", NULL, NULL, true, NULL, &err), 0);
    assert_int_equal(hdd_count(), n + 1);
    harness_run_lock_release(pid);
    assert_int_equal(mach_snapshot_restore(f->path, "s", &err), 0);
}

struct progress {
    uint64_t last, total;
    unsigned calls;
};

static void on_progress(void *opaque, uint64_t done, uint64_t total)
{
    struct progress *p = opaque;
    p->last = done;
    p->total = total;
    p->calls++;
}

static void expect_new_macs(const char *a, const char *b)
{
    struct cfg_machine *ma = harness_machine_load(a), *mb = harness_machine_load(b);
    assert_string_equal(ma->hw.nics[0].mac, "080027000001");
    assert_string_not_equal(mb->hw.nics[0].mac, ma->hw.nics[0].mac);
    assert_int_equal(strlen(mb->hw.nics[0].mac), 12);
    assert_memory_not_equal(ma->uuid.bytes, mb->uuid.bytes, 16);
    cfg_machine_free(ma);
    cfg_machine_free(mb);
}

static void test_clone(void **state)
{
    struct fx *f = *state;
    struct cfg_error err;
    uint8_t *a = calloc(1, DISK), *b;
    put("vm", a, 0, MIB + 5, 1);
    take(f, "s1");
    b = malloc(DISK);
    memcpy(b, a, DISK);
    put("vm", b, 2 * MIB, 10000, 2);

    /* Full clone of the current state: one flattened image in the clone's folder. */
    struct progress pr = {0};
    struct rt_uuid cu;
    assert_int_equal(mach_clone("vm", "full", MACH_CLONE_CURRENT, false, true, f->vms, on_progress, &pr, &cu, &err), 0);
    assert_true(pr.calls > 0);
    assert_int_equal(pr.last, pr.total);
    expect_disk("full", NULL, b);
    char *fd = disk_of("full", NULL);
    char want[600];
    snprintf(want, sizeof(want), "%s/full/full.%s", f->vms, strrchr(fd, '.') + 1);
    assert_string_equal(fd, want);
    struct cfg_machine *m = harness_machine_load("full");
    assert_int_equal(m->snapshot_count, 0);
    assert_memory_equal(m->uuid.bytes, cu.bytes, 16);
    cfg_machine_free(m);
    expect_new_macs("vm", "full");
    /* Writing to the clone leaves the source alone. */
    put("full", NULL, 0, 4096, 3);
    expect_disk("vm", NULL, b);
    assert_int_equal(mach_clone("vm", "full", MACH_CLONE_CURRENT, false, true, f->vms, NULL, NULL, NULL, &err),
                     VERR_ALREADY_EXISTS);
    assert_int_equal(mach_clone("vm", "a/b", MACH_CLONE_CURRENT, false, true, f->vms, NULL, NULL, NULL, &err),
                     VERR_INVALID_PARAMETER);

    /* Linked: a snapshot of the source, the clone's image over its image. */
    assert_int_equal(mach_clone("vm", "linked", MACH_CLONE_CURRENT, true, true, f->vms, NULL, NULL, NULL, &err), 0);
    expect_disk("linked", NULL, b);
    expect_disk("vm", NULL, b);
    char *ld = disk_of("linked", NULL);
    snprintf(want, sizeof(want), "%s/linked/", f->vms);
    assert_true(!strncmp(ld, want, strlen(want)));
    m = harness_machine_load("vm");
    assert_int_equal(m->snapshots[0].child_count, 1);
    assert_non_null(strstr(m->snapshots[0].children[0].name, "Linked Base for vm and linked"));
    cfg_machine_free(m);
    put("linked", NULL, 0, 4096, 4);
    put("vm", NULL, 8192, 4096, 5);
    uint8_t *c = malloc(DISK);
    memcpy(c, b, DISK);
    fill(c, 4096, 4);
    expect_disk("linked", NULL, c);
    /* The base snapshot's image carries the clone: deleting that snapshot is refused. */
    assert_int_equal(mach_snapshot_delete(f->path, "Linked Base for vm and linked", NULL, NULL, &err), VERR_BUSY);
    expect_disk("linked", NULL, c);

    /* Everything: the snapshot tree comes along and restores in the clone. */
    assert_int_equal(mach_clone("vm", "all", MACH_CLONE_ALL, false, true, f->vms, NULL, NULL, NULL, &err), 0);
    m = harness_machine_load("all");
    assert_int_equal(m->snapshot_count, 1);
    assert_string_equal(m->snapshots[0].name, "s1");
    char *allpath = NULL;
    cfg_machine_free(m);
    assert_int_equal(mach_find("all", &allpath, NULL, &err), 0);
    expect_disk("all", "s1", a);
    uint8_t *vmnow = contents(disk_of("vm", NULL));
    expect_disk("all", NULL, vmnow);
    assert_int_equal(mach_snapshot_restore(allpath, "s1", &err), 0);
    expect_disk("all", NULL, a);
    expect_disk("vm", NULL, vmnow);
    assert_int_equal(mach_clone("vm", "x", MACH_CLONE_ALL, true, true, f->vms, NULL, NULL, NULL, &err),
                     VERR_NOT_SUPPORTED);
    /* Unregistering the full clone with --delete leaves the source's images alone. */
    if (mach_unregister("all", true, &err) < 0)
        fail_msg("unregister all: %s", err.msg);
    expect_disk("vm", "s1", a);
    expect_disk("vm", NULL, vmnow);
    free(vmnow);
    free(allpath);
    free(ld);
    free(fd);
    free(a);
    free(b);
    free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_take_restore, setup_vdi, teardown),
        cmocka_unit_test_setup_teardown(test_take_restore, setup_qcow2, teardown),
        cmocka_unit_test_setup_teardown(test_take_restore, setup_raw, teardown),
        cmocka_unit_test_setup_teardown(test_delete_in_chain, setup_vdi, teardown),
        cmocka_unit_test_setup_teardown(test_delete_in_chain, setup_qcow2, teardown),
        cmocka_unit_test_setup_teardown(test_delete_in_chain, setup_raw, teardown),
        cmocka_unit_test_setup_teardown(test_branches_and_names, setup_vdi, teardown),
        cmocka_unit_test_setup_teardown(test_online_and_saved, setup_qcow2, teardown),
        cmocka_unit_test_setup_teardown(test_running_refused, setup_vdi, teardown),
        cmocka_unit_test_setup_teardown(test_clone, setup_vdi, teardown),
        cmocka_unit_test_setup_teardown(test_clone, setup_qcow2, teardown),
    };
    rt_log_set_stderr_level((enum rt_log_level)-1);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
