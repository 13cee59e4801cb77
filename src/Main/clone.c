/* clone.c - cloning machines: full copies of the current state or of the whole snapshot tree, and linked clones over a snapshot of the source. */

/*
 * A clone is a new machine: new UUID, new name and folder, new MAC addresses (two
 * machines with one MAC on one network would fight over it), powered off.  Disks:
 *  - full, current state: each hard disk's chain flattened into one new image in the
 *    clone's folder (blk_convert);
 *  - full, all: every hard disk image of the source (current state and snapshots) is
 *    copied keeping the chains: an image whose parent is also the source's becomes a
 *    differencing image over the copy of that parent holding the same data, anything
 *    else is flattened; snapshots and their state files come along;
 *  - linked: the source gets a snapshot first (offline), and the clone's disks are new
 *    differencing images over that snapshot's images, in the clone's folder.  The
 *    source's images then carry images of another machine, so deleting that snapshot
 *    is refused while the clone exists.
 * DVD and floppy images are shared, never copied.  The TPM's state (<folder>/tpm/) is not
 * copied either: two machines with one TPM identity (endorsement seed, keys) could stand in
 * for each other in attestation, so a clone with a TPM starts with a new, empty one.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "machine-internal.h"

#define LOG_COMPONENT "clone"

struct clone_map {
    struct rt_uuid *from, *to;
    size_t n;
};

static int clone_map_add(struct clone_map *map, const struct rt_uuid *from, const struct rt_uuid *to)
{
    struct rt_uuid *f = realloc(map->from, (map->n + 1) * sizeof(*f));
    if (!f)
        return VERR_NO_MEMORY;
    map->from = f;
    struct rt_uuid *t = realloc(map->to, (map->n + 1) * sizeof(*t));
    if (!t)
        return VERR_NO_MEMORY;
    map->to = t;
    f[map->n] = *from;
    t[map->n] = *to;
    map->n++;
    return 0;
}

static const struct rt_uuid *clone_map_get(const struct clone_map *map, const struct rt_uuid *from)
{
    for (size_t i = 0; i < map->n; i++)
        if (!memcmp(map->from[i].bytes, from->bytes, 16))
            return &map->to[i];
    return NULL;
}

static void clone_map_free(struct clone_map *map)
{
    free(map->from);
    free(map->to);
}

static void clone_hw_remap(struct cfg_hardware *hw, const struct clone_map *map)
{
    for (size_t i = 0; i < hw->attachment_count; i++) {
        const struct rt_uuid *to = clone_map_get(map, &hw->attachments[i].medium);
        if (to && hw->attachments[i].type == CFG_MEDIUM_HDD)
            hw->attachments[i].medium = *to;
    }
}

static void clone_tree_remap(struct cfg_snapshot *s, size_t count, const struct clone_map *map)
{
    for (size_t i = 0; i < count; i++) {
        clone_hw_remap(&s[i].hw, map);
        clone_tree_remap(s[i].children, s[i].child_count, map);
    }
}

static void clone_tree_free(struct cfg_snapshot *s, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        free(s[i].name);
        free(s[i].description);
        free(s[i].state_file);
        cfg_hardware_free(&s[i].hw);
        clone_tree_free(s[i].children, s[i].child_count);
    }
    free(s);
}

/* ---- MAC addresses ----------------------------------------------------------------------------- */

/* A fresh address in VirtualBox's block (08:00:27), which guests' drivers know. */
static int clone_new_mac(char mac[13])
{
    struct rt_uuid rnd;
    int rc = rt_uuid_generate(&rnd);
    if (rc == 0)
        snprintf(mac, 13, "080027%02X%02X%02X", rnd.bytes[0], rnd.bytes[1], rnd.bytes[2]);
    return rc;
}

/* Every NIC of hw gets a new address; one old address maps to one new one across the tree. */
static int clone_hw_macs(struct cfg_hardware *hw, char (*old)[13], char (*neu)[13], size_t *n, size_t cap)
{
    for (int i = 0; i < CFG_MAX_NICS; i++) {
        char *mac = hw->nics[i].mac;
        if (!mac[0])
            continue;
        size_t k = 0;
        while (k < *n && strcasecmp(old[k], mac))
            k++;
        if (k == *n) {
            if (*n == cap)
                return VERR_TOO_LARGE;
            memcpy(old[k], mac, 13);
            int rc = clone_new_mac(neu[k]);
            if (rc < 0)
                return rc;
            (*n)++;
        }
        memcpy(mac, neu[k], 13);
    }
    return 0;
}

static int clone_tree_macs(struct cfg_snapshot *s, size_t count, char (*old)[13], char (*neu)[13], size_t *n,
                           size_t cap)
{
    for (size_t i = 0; i < count; i++) {
        int rc = clone_hw_macs(&s[i].hw, old, neu, n, cap);
        if (rc == 0)
            rc = clone_tree_macs(s[i].children, s[i].child_count, old, neu, n, cap);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ---- Disks ------------------------------------------------------------------------------------ */

static enum blk_format clone_format(const struct cfg_medium *md)
{
    enum blk_format f = BLK_FMT_AUTO;
    if (md->format && blk_format_from_name(md->format, &f) == 0 &&
        (f == BLK_FMT_VDI || f == BLK_FMT_QCOW2 || f == BLK_FMT_RAW))
        return f;
    return BLK_FMT_QCOW2;
}

/* "<folder>/<name>.<ext>", then "<name>-1.<ext>"... whichever does not exist yet. */
static char *clone_disk_path(const char *folder, const char *name, enum blk_format fmt)
{
    for (unsigned i = 0; i < 1000; i++) {
        char *base = i ? rt_strdup_printf("%s-%u.%s", name, i, blk_format_name(fmt))
                       : rt_strdup_printf("%s.%s", name, blk_format_name(fmt));
        char *p = base ? rt_path_join(folder, base) : NULL;
        free(base);
        if (!p || !rt_path_exists(p))
            return p;
        free(p);
    }
    return NULL;
}

/* Flattens medium md's chain into a new standalone image in folder and registers it. */
static int clone_flatten(struct mach_txn *t, const struct cfg_medium *md, const char *folder, const char *name,
                         blk_progress_fn *progress, void *opaque, struct rt_uuid *out, struct mach_undo *undo,
                         struct cfg_error *err)
{
    enum blk_format fmt = clone_format(md);
    char *src = strdup(md->location); /* md points into the registry, which grows below */
    char *dst = clone_disk_path(folder, name, fmt);
    struct blk_image *img = NULL;
    int rc = src && dst ? blk_open(src, BLK_FMT_AUTO, BLK_OPEN_READONLY, &img) : VERR_NO_MEMORY;
    if (rc < 0 && src && dst)
        rc = mach_fail(err, rc, "%s: cannot open it to copy: %s", src, rt_err_str(rc));
    if (rc == 0) {
        struct blk_create_params p = {.format = fmt};
        rc = blk_convert(img, dst, &p, progress, opaque);
        if (rc < 0)
            rc = mach_fail(err, rc, "%s: cannot copy %s: %s", dst, src, rt_err_str(rc));
        else
            rc = mach_undo_file(undo, dst);
    }
    blk_close(img);
    if (rc == 0)
        rc = rt_uuid_generate(out);
    if (rc == 0) {
        struct cfg_medium nm = {.uuid = *out, .location = dst, .type = CFG_MEDIUM_HDD,
                                .format = (char *)blk_format_name(fmt)};
        rc = cfg_medium_add(t->g, &nm);
        if (rc == 0)
            rc = mach_uuid_set_add(&undo->media, out);
        else
            rc = mach_fail(err, rc, "%s: cannot register it: %s", dst, rt_err_str(rc));
    }
    free(src);
    free(dst);
    return rc;
}

/* Copies what the image at src holds itself (not its parent's data) into dst, which sits on a copy of src's parent. */
static int clone_copy_layer(const char *src, const char *dst, struct cfg_error *err)
{
    struct blk_image *in = NULL, *out = NULL;
    int rc = blk_open(src, BLK_FMT_AUTO, BLK_OPEN_READONLY | BLK_OPEN_NO_BACKING, &in);
    if (rc == 0)
        rc = blk_open(dst, BLK_FMT_AUTO, 0, &out);
    size_t chunk = 1u << 20;
    uint8_t *buf = rc == 0 ? malloc(chunk) : NULL;
    if (rc == 0 && !buf)
        rc = VERR_NO_MEMORY;
    uint64_t size = rc == 0 ? blk_size_bytes(in) : 0, off = 0;
    while (rc == 0 && off < size) {
        bool allocated;
        uint64_t n;
        rc = blk_block_status(in, off, RT_MIN(size - off, (uint64_t)chunk), &allocated, &n);
        if (rc == 0 && allocated) {
            rc = blk_read(in, off, buf, (size_t)n);
            if (rc == 0)
                rc = blk_write(out, off, buf, (size_t)n);
        }
        off += n;
    }
    if (rc == 0)
        rc = blk_flush(out);
    free(buf);
    blk_close(out);
    blk_close(in);
    if (rc < 0)
        return mach_fail(err, rc, "%s: cannot copy the data of %s: %s", dst, src, rt_err_str(rc));
    return 0;
}

/* Copies every hard disk image of the source keeping the chains (MACH_CLONE_ALL). */
static int clone_all_disks(struct mach_txn *t, const struct cfg_machine *src, const char *folder, const char *snapdir,
                           const char *name, blk_progress_fn *progress, void *opaque, struct clone_map *map,
                           struct mach_undo *undo, struct cfg_error *err)
{
    struct mach_uuid_set used = {0};
    int rc = mach_media_used(src, true, &used);
    /* Parents first: repeat until every image's parent (if it is the source's) has its copy. */
    for (size_t done = 0, progress_made = 1; rc == 0 && done < used.n && progress_made;) {
        progress_made = 0;
        for (size_t i = 0; rc == 0 && i < used.n; i++) {
            if (clone_map_get(map, &used.v[i]))
                continue;
            const struct cfg_medium *md = cfg_medium_find(t->g, &used.v[i]);
            if (!md) {
                char us[RT_UUID_STR_LEN];
                rt_uuid_to_str(&used.v[i], us);
                rc = mach_fail(err, VERR_NOT_FOUND, "machine '%s': medium %s is not registered", src->name, us);
                break;
            }
            bool chained = !rt_uuid_is_null(&md->parent) && mach_uuid_set_has(&used, &md->parent);
            const struct rt_uuid *pcopy = chained ? clone_map_get(map, &md->parent) : NULL;
            if (chained && !pcopy)
                continue; /* its parent's copy comes first */
            struct rt_uuid nid;
            if (!chained) {
                rc = clone_flatten(t, md, folder, name, progress, opaque, &nid, undo, err);
            } else {
                char *from = strdup(md->location);
                const struct cfg_medium *pm = cfg_medium_find(t->g, pcopy);
                char *file = NULL;
                rc = from && pm ? mach_diff_create(t, pm, snapdir, &nid, &file, err) : VERR_NO_MEMORY;
                if (rc == 0) {
                    rc = mach_undo_file(undo, file);
                    if (rc == 0)
                        rc = mach_uuid_set_add(&undo->media, &nid);
                    if (rc == 0)
                        rc = clone_copy_layer(from, file, err);
                }
                free(file);
                free(from);
            }
            if (rc == 0)
                rc = clone_map_add(map, &used.v[i], &nid);
            done++;
            progress_made = 1;
        }
    }
    mach_uuid_set_free(&used);
    return rc;
}

/* Copies the snapshots' state files into the clone's folder under the same relative names. */
static int clone_state_files(const struct cfg_snapshot *s, size_t count, const char *src_path, const char *dst_path,
                             struct mach_undo *undo, struct cfg_error *err)
{
    for (size_t i = 0; i < count; i++) {
        if (s[i].state_file) {
            char *from = mach_path(src_path, s[i].state_file);
            char *to = mach_path(dst_path, s[i].state_file);
            char *dir = to ? rt_path_dirname(to) : NULL;
            int rc = from && dir ? rt_dir_create_all(dir, 0700) : VERR_NO_MEMORY;
            if (rc == 0)
                rc = mach_copy_file(from, to, err);
            if (rc == 0)
                rc = mach_undo_file(undo, to);
            free(from);
            free(to);
            free(dir);
            if (rc < 0)
                return rc;
        }
        int rc = clone_state_files(s[i].children, s[i].child_count, src_path, dst_path, undo, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ---- The clone ------------------------------------------------------------------------------------ */

static int clone_take_base(const char *name_or_uuid, const char *new_name, struct rt_uuid *snap_uuid, char **src_path,
                           struct cfg_error *err)
{
    struct mach_txn t;
    struct mach_undo undo = {0};
    bool global_saved = false;
    int rc = mach_txn_begin(&t, err);
    if (rc == 0)
        rc = mach_txn_open(&t, name_or_uuid, false, err);
    if (rc == 0 && mach_is_running(t.path))
        rc = mach_fail(err, VERR_BUSY, "machine '%s' is running; power it off to clone it", t.m->name);
    char *sname = rc == 0 ? rt_strdup_printf("Linked Base for %s and %s", t.m->name, new_name) : NULL;
    if (rc == 0 && !sname)
        rc = VERR_NO_MEMORY;
    if (rc == 0) {
        mach_state_fixup(t.m, t.path);
        rc = mach_snapshot_take_txn(&t, sname, NULL, NULL, snap_uuid, &undo, err);
    }
    if (rc == 0) {
        rc = mach_txn_save_global(&t, err);
        global_saved = rc == 0;
    }
    if (rc == 0)
        rc = mach_txn_save_machine(&t, err);
    if (rc < 0)
        mach_undo_rollback(&t, &undo, global_saved);
    else if (!(*src_path = strdup(t.path)))
        rc = VERR_NO_MEMORY;
    free(sname);
    mach_txn_end(&t);
    mach_undo_free(&undo);
    return rc;
}

int mach_clone(const char *name_or_uuid, const char *new_name, enum mach_clone_mode mode, bool linked, bool reg,
               const char *base_folder, blk_progress_fn *progress, void *opaque, struct rt_uuid *uuid,
               struct cfg_error *err)
{
    if (!new_name || !cfg_is_valid_machine_name(new_name))
        return mach_fail(err, VERR_INVALID_PARAMETER, "'%s' is not a valid machine name", new_name ? new_name : "");
    if (mode != MACH_CLONE_CURRENT && mode != MACH_CLONE_ALL)
        return mach_fail(err, VERR_INVALID_PARAMETER, "unknown clone mode %d", (int)mode);
    if (linked && mode == MACH_CLONE_ALL)
        return mach_fail(err, VERR_NOT_SUPPORTED, "a linked clone copies the current state only (its disks sit on a "
                         "new snapshot of the source), not the snapshot tree");
    struct rt_uuid base_snap;
    char *linked_src = NULL;
    int rc = 0;
    if (linked) {
        rc = clone_take_base(name_or_uuid, new_name, &base_snap, &linked_src, err);
        if (rc < 0)
            return rc;
    }

    struct mach_txn t;
    struct mach_undo undo = {0};
    struct clone_map map = {0};
    struct cfg_machine *c = NULL;
    struct cfg_lock *clock_ = NULL;
    char *folder = NULL, *cdir = NULL, *cfile = NULL, *csnap = NULL;
    bool made_dir = false, saved = false, global_saved = false;
    rc = mach_txn_begin(&t, err);
    if (rc == 0)
        rc = mach_txn_open(&t, linked ? linked_src : name_or_uuid, linked, err);
    if (rc == 0 && mach_is_running(t.path))
        rc = mach_fail(err, VERR_BUSY, "machine '%s' is running; power it off to clone it", t.m->name);
    if (rc == 0 && mach_registry_find_name(t.g, new_name, NULL, NULL) == 0)
        rc = mach_fail(err, VERR_ALREADY_EXISTS, "a machine named '%s' is registered already", new_name);
    if (rc == 0) {
        folder = base_folder ? mach_abs_path(base_folder) : cfg_default_machine_folder(t.g->default_machine_folder);
        cdir = folder ? rt_path_join(folder, new_name) : NULL;
        char *fname = rt_strdup_printf("%s.vireo", new_name);
        cfile = cdir && fname ? rt_path_join(cdir, fname) : NULL;
        free(fname);
        rc = cfile ? 0 : VERR_NO_MEMORY;
    }
    if (rc == 0 && rt_path_exists(cdir))
        rc = mach_fail(err, VERR_ALREADY_EXISTS, "the folder %s exists already", cdir);
    if (rc == 0) {
        made_dir = true;
        rc = rt_dir_create_all(cdir, 0700);
        if (rc < 0) {
            made_dir = false;
            rc = mach_fail(err, rc, "%s: cannot create the folder: %s", cdir, rt_err_str(rc));
        }
    }
    if (rc == 0)
        rc = cfg_machine_dup(t.m, &c);
    if (rc == 0) {
        free(c->name);
        c->name = strdup(new_name);
        free(c->state_file);
        c->state_file = NULL;
        free(c->snapshot_folder);
        c->snapshot_folder = NULL;
        c->state = CFG_STATE_POWERED_OFF;
        c->state_changed_ns = rt_time_real_ns();
        rc = c->name ? rt_uuid_generate(&c->uuid) : VERR_NO_MEMORY;
    }
    if (rc == 0 && mode == MACH_CLONE_CURRENT) {
        clone_tree_free(c->snapshots, c->snapshot_count);
        c->snapshots = NULL;
        c->snapshot_count = 0;
        memset(&c->current_snapshot, 0, sizeof(c->current_snapshot));
    }
    if (rc == 0) {
        char old[64][13], neu[64][13];
        size_t n = 0;
        rc = clone_hw_macs(&c->hw, old, neu, &n, 64);
        if (rc == 0)
            rc = clone_tree_macs(c->snapshots, c->snapshot_count, old, neu, &n, 64);
    }
    if (rc == 0)
        rc = (csnap = mach_snapshot_dir(c, cfile)) ? 0 : VERR_NO_MEMORY;

    /* Disks. */
    if (rc == 0 && mode == MACH_CLONE_ALL) {
        rc = clone_all_disks(&t, t.m, cdir, csnap, new_name, progress, opaque, &map, &undo, err);
        if (rc == 0) {
            clone_hw_remap(&c->hw, &map);
            clone_tree_remap(c->snapshots, c->snapshot_count, &map);
            rc = clone_state_files(t.m->snapshots, t.m->snapshot_count, t.path, cfile, &undo, err);
        }
    }
    for (size_t i = 0; rc == 0 && mode == MACH_CLONE_CURRENT && i < c->hw.attachment_count; i++) {
        struct cfg_attachment *a = &c->hw.attachments[i];
        if (a->type != CFG_MEDIUM_HDD || rt_uuid_is_null(&a->medium))
            continue;
        const struct cfg_medium *md = cfg_medium_find(t.g, &a->medium);
        if (!md) {
            rc = mach_fail(err, VERR_NOT_FOUND, "machine '%s': the disk on controller '%s' port %u is not registered",
                           t.m->name, a->controller, a->port);
            break;
        }
        struct rt_uuid nid;
        if (linked) {
            /* The source's current image is the new snapshot's differencing image: the clone sits beside it. */
            const struct cfg_medium *base = rt_uuid_is_null(&md->parent) ? NULL : cfg_medium_find(t.g, &md->parent);
            char *file = NULL;
            rc = base ? mach_diff_create(&t, base, cdir, &nid, &file, err)
                      : mach_fail(err, VERR_INVALID_STATE, "%s: not a differencing image over the linked base",
                                  md->location);
            if (rc == 0)
                rc = mach_undo_file(&undo, file);
            if (rc == 0)
                rc = mach_uuid_set_add(&undo.media, &nid);
            free(file);
        } else {
            rc = clone_flatten(&t, md, cdir, new_name, progress, opaque, &nid, &undo, err);
        }
        if (rc == 0)
            a->medium = nid;
    }

    if (rc == 0) {
        /* The UEFI variables (boot entries, the guest's own settings) go with the clone. */
        char *from = mach_nvram_path(t.path), *to = mach_nvram_path(cfile);
        bool copied = false;
        if (!from || !to)
            rc = VERR_NO_MEMORY;
        else if (rt_path_exists(from))
            rc = mach_nvram_create(to, from, &copied, err);
        if (rc == 0 && copied)
            rc = mach_undo_file(&undo, to);
        free(from);
        free(to);
    }
    if (rc == 0) {
        rc = cfg_lock_acquire(cfile, MACH_LOCK_TIMEOUT_MS, &clock_);
        if (rc < 0)
            rc = mach_fail(err, rc, "%s: cannot lock it: %s", cfile, rt_err_str(rc));
    }
    if (rc == 0)
        rc = mach_validate(c, t.g, err);
    if (rc == 0) {
        rc = mach_txn_save_global(&t, err); /* the new media first: the clone's file names them */
        global_saved = rc == 0;
    }
    if (rc == 0) {
        rc = cfg_machine_save(c, cfile, err);
        saved = rc == 0;
    }
    if (rc == 0 && reg) {
        rc = cfg_machine_entry_add(t.g, &c->uuid, cfile);
        if (rc == 0)
            rc = mach_txn_save_global(&t, err);
        if (rc < 0)
            cfg_machine_entry_remove(t.g, &c->uuid);
    }
    cfg_lock_release(clock_);
    if (rc < 0) {
        mach_undo_rollback(&t, &undo, global_saved);
        if (saved || clock_)
            mach_settings_files_remove(cfile);
        if (csnap)
            rmdir(csnap);
        if (made_dir)
            rmdir(cdir);
    } else {
        if (uuid)
            *uuid = c->uuid;
        LOG_INFO("cloned machine '%s' as '%s' in %s", t.m->name, new_name, cdir);
    }
    mach_txn_end(&t);
    if (rc < 0 && linked) {
        /* The base snapshot was this call's: merge it away again (its differencing images are still empty). */
        char us[RT_UUID_STR_LEN];
        rt_uuid_to_str(&base_snap, us);
        struct cfg_error derr;
        if (mach_snapshot_delete(linked_src, us, NULL, NULL, &derr) < 0)
            LOG_WARN("%s: the snapshot taken for the linked clone stays: %s", linked_src, derr.msg);
    }
    cfg_machine_free(c);
    clone_map_free(&map);
    mach_undo_free(&undo);
    free(folder);
    free(cdir);
    free(cfile);
    free(csnap);
    free(linked_src);
    return rc;
}
