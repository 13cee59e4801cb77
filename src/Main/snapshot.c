/* snapshot.c - snapshots: taking (freezing the disks under new differencing images), restoring and deleting (merging images), with their state files. */

/*
 * Disks.  A snapshot freezes every attached hard disk's image: from then on the image
 * is only read, and the machine writes to a new differencing image over it, created
 * in the snapshot folder as "{uuid}.<fmt>" and registered with the frozen image as its
 * parent.  The snapshot keeps a copy of the hardware with the frozen images attached.
 *
 * Restoring goes back to a snapshot: the differencing images the current state was
 * writing to (those sitting on the current snapshot's images) are deleted, and fresh
 * empty ones are made over the target snapshot's images.
 *
 * Deleting merges: for each disk, the snapshot's image P is the parent of its one
 * dependant's image C (the child snapshot's frozen image, or the current state's
 * differencing image).  C's data is committed into P (so P now shows what C showed),
 * every image that sat on C is rebased onto P, the settings that named C name P, and C
 * goes.  P is changed only when nothing else depends on its old content: a snapshot
 * with two children, or an image another machine (a linked clone) sits on, is refused.
 *
 * The order against crashes: merges and new images happen before the settings that
 * use them are saved; images and state files are deleted after the settings that
 * named them are saved.  A merge interrupted by a crash leaves the dependant's view
 * intact (C over a P that holds some of C's data shows the same disk).
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "machine-internal.h"

#define LOG_COMPONENT "snapshot"

/* ---- Undo lists ------------------------------------------------------------------------------ */

int mach_undo_file(struct mach_undo *u, const char *path)
{
    char *copy = strdup(path);
    char **v = copy ? realloc(u->files, (u->file_count + 1) * sizeof(*v)) : NULL;
    if (!v) {
        free(copy);
        return VERR_NO_MEMORY;
    }
    u->files = v;
    v[u->file_count++] = copy;
    return 0;
}

void mach_undo_rollback(struct mach_txn *t, struct mach_undo *u, bool global_saved)
{
    if (t && t->g)
        mach_media_remove(t->g, &u->media);
    if (global_saved && t && t->g) {
        struct cfg_error e;
        if (mach_txn_save_global(t, &e) < 0)
            LOG_WARN("could not take back the media this operation registered: %s", e.msg);
    }
    for (size_t i = 0; i < u->file_count; i++)
        mach_unlink_quiet(u->files[i]);
}

void mach_undo_free(struct mach_undo *u)
{
    for (size_t i = 0; i < u->file_count; i++)
        free(u->files[i]);
    free(u->files);
    mach_uuid_set_free(&u->media);
    memset(u, 0, sizeof(*u));
}

/* ---- The snapshot tree --------------------------------------------------------------------------- */

static struct cfg_snapshot *snap_find_name(struct cfg_snapshot *s, size_t count, const char *name, size_t *hits,
                                           struct cfg_snapshot *first)
{
    for (size_t i = 0; i < count; i++) {
        if (s[i].name && !strcmp(s[i].name, name) && (*hits)++ == 0)
            first = &s[i];
        first = snap_find_name(s[i].children, s[i].child_count, name, hits, first);
    }
    return first;
}

int mach_snapshot_resolve(struct cfg_machine *m, const char *name_or_uuid, struct cfg_snapshot **out,
                          struct cfg_error *err)
{
    *out = NULL;
    if (!name_or_uuid || !*name_or_uuid)
        return mach_fail(err, VERR_INVALID_PARAMETER, "no snapshot name or UUID given");
    struct rt_uuid uuid;
    if (rt_uuid_parse(name_or_uuid, &uuid) == 0 && (*out = cfg_snapshot_find(m, &uuid)) != NULL)
        return 0;
    size_t hits = 0;
    struct cfg_snapshot *s = snap_find_name(m->snapshots, m->snapshot_count, name_or_uuid, &hits, NULL);
    if (hits > 1)
        return mach_fail(err, VERR_INVALID_PARAMETER, "%zu snapshots are named %s; use the UUID", hits, name_or_uuid);
    if (!s)
        return mach_fail(err, VERR_NOT_FOUND, "machine '%s' has no snapshot named '%s' or with that UUID", m->name,
                         name_or_uuid);
    *out = s;
    return 0;
}

/* The array and index holding snapshot uuid (the roots or a parent's children). */
static bool snap_locate(struct cfg_snapshot **arr, size_t *count, const struct rt_uuid *uuid,
                        struct cfg_snapshot ***arr_out, size_t **count_out, size_t *index)
{
    for (size_t i = 0; i < *count; i++) {
        struct cfg_snapshot *s = &(*arr)[i];
        if (!memcmp(s->uuid.bytes, uuid->bytes, 16)) {
            *arr_out = arr;
            *count_out = count;
            *index = i;
            return true;
        }
        if (snap_locate(&s->children, &s->child_count, uuid, arr_out, count_out, index))
            return true;
    }
    return false;
}

/* Frees what one snapshot owns except its children. */
static void snap_free_own(struct cfg_snapshot *s)
{
    free(s->name);
    free(s->description);
    free(s->state_file);
    cfg_hardware_free(&s->hw);
}

static int snap_append(struct cfg_snapshot **arr, size_t *count, struct cfg_snapshot *s)
{
    struct cfg_snapshot *v = realloc(*arr, (*count + 1) * sizeof(*v));
    if (!v)
        return VERR_NO_MEMORY;
    v[*count] = *s;
    *arr = v;
    (*count)++;
    return 0;
}

/* Whether any snapshot in the tree other than skip (NULL: none) attaches uuid. */
static bool snap_tree_uses(const struct cfg_snapshot *s, size_t count, const struct rt_uuid *uuid,
                           const struct cfg_snapshot *skip)
{
    for (size_t i = 0; i < count; i++) {
        if (&s[i] != skip && mach_hw_uses(&s[i].hw, uuid))
            return true;
        if (snap_tree_uses(s[i].children, s[i].child_count, uuid, skip))
            return true;
    }
    return false;
}

static void snap_tree_replace(struct cfg_snapshot *s, size_t count, const struct rt_uuid *from, const struct rt_uuid *to)
{
    for (size_t i = 0; i < count; i++) {
        for (size_t j = 0; j < s[i].hw.attachment_count; j++)
            if (!memcmp(s[i].hw.attachments[j].medium.bytes, from->bytes, 16))
                s[i].hw.attachments[j].medium = *to;
        snap_tree_replace(s[i].children, s[i].child_count, from, to);
    }
}

static bool medium_has_children(const struct cfg_global *g, const struct rt_uuid *uuid, const struct rt_uuid *except)
{
    for (size_t i = 0; i < g->medium_count; i++) {
        if (except && !memcmp(g->media[i].uuid.bytes, except->bytes, 16))
            continue;
        if (!memcmp(g->media[i].parent.bytes, uuid->bytes, 16))
            return true;
    }
    return false;
}

/* ---- Taking ------------------------------------------------------------------------------------- */

static char *snap_state_name(const char *snapdir, const struct rt_uuid *uuid)
{
    char us[RT_UUID_STR_LEN];
    rt_uuid_to_str(uuid, us);
    char *name = rt_strdup_printf("{%s}.sav", us);
    char *path = name ? rt_path_join(snapdir, name) : NULL;
    free(name);
    return path;
}

/* Every hard disk attached in hw gets a new differencing image over its current medium. */
static int snap_diff_all(struct mach_txn *t, struct cfg_hardware *hw, const char *folder, struct mach_undo *undo,
                         struct cfg_error *err)
{
    for (size_t i = 0; i < hw->attachment_count; i++) {
        struct cfg_attachment *a = &hw->attachments[i];
        if (a->type != CFG_MEDIUM_HDD || rt_uuid_is_null(&a->medium))
            continue;
        const struct cfg_medium *parent = cfg_medium_find(t->g, &a->medium);
        if (!parent) {
            char us[RT_UUID_STR_LEN];
            rt_uuid_to_str(&a->medium, us);
            return mach_fail(err, VERR_NOT_FOUND, "machine '%s': the disk on controller '%s' port %u (medium %s) is "
                             "not registered", t->m->name, a->controller, a->port, us);
        }
        struct rt_uuid id;
        char *file = NULL;
        int rc = mach_diff_create(t, parent, folder, &id, &file, err);
        if (rc < 0)
            return rc;
        rc = mach_undo_file(undo, file);
        free(file);
        if (rc == 0)
            rc = mach_uuid_set_add(&undo->media, &id);
        if (rc < 0)
            return rc;
        a->medium = id;
    }
    return 0;
}

int mach_snapshot_take_txn(struct mach_txn *t, const char *name, const char *description, const char *state_file,
                           struct rt_uuid *uuid, struct mach_undo *undo, struct cfg_error *err)
{
    struct cfg_machine *m = t->m;
    if (!name || !*name)
        return mach_fail(err, VERR_INVALID_PARAMETER, "machine '%s': a snapshot needs a name", m->name);
    if (state_file && (!*state_file || state_file[0] == '/' || strstr(state_file, "..")))
        return mach_fail(err, VERR_INVALID_PARAMETER, "machine '%s': the state file '%s' must be a path inside the "
                         "machine folder", m->name, state_file);
    struct cfg_snapshot snap;
    memset(&snap, 0, sizeof(snap));
    char *snapdir = mach_snapshot_dir(m, t->path);
    struct cfg_hardware newhw;
    bool hw_copied = false, newhw_copied = false;
    int rc = snapdir ? rt_uuid_generate(&snap.uuid) : VERR_NO_MEMORY;
    if (rc == 0) {
        snap.name = strdup(name);
        snap.description = description ? strdup(description) : NULL;
        snap.time_ns = rt_time_real_ns();
        if (!snap.name || (description && !snap.description))
            rc = VERR_NO_MEMORY;
    }
    if (rc == 0) {
        rc = cfg_hardware_copy(&snap.hw, &m->hw);
        hw_copied = rc == 0;
    }
    if (rc == 0) {
        rc = cfg_hardware_copy(&newhw, &m->hw);
        newhw_copied = rc == 0;
    }
    if (rc == 0)
        rc = snap_diff_all(t, &newhw, snapdir, undo, err);
    if (rc == 0 && state_file) {
        snap.online = true;
        snap.state_file = strdup(state_file);
        rc = snap.state_file ? 0 : VERR_NO_MEMORY;
    } else if (rc == 0 && m->state == CFG_STATE_SAVED && m->state_file) {
        /* A saved machine's state goes into the snapshot as a copy: the machine keeps its own. */
        char *from = mach_path(t->path, m->state_file);
        char *to = snap_state_name(snapdir, &snap.uuid);
        rc = from && to ? rt_dir_create_all(snapdir, 0700) : VERR_NO_MEMORY;
        if (rc == 0)
            rc = mach_copy_file(from, to, err);
        if (rc == 0) {
            rc = mach_undo_file(undo, to);
            snap.online = true;
            snap.state_file = mach_relative(t->path, to);
            if (rc == 0 && !snap.state_file)
                rc = VERR_NO_MEMORY;
        }
        free(from);
        free(to);
    }
    struct cfg_snapshot *cur = rt_uuid_is_null(&m->current_snapshot) ? NULL : cfg_snapshot_find(m, &m->current_snapshot);
    if (rc == 0)
        rc = cur ? snap_append(&cur->children, &cur->child_count, &snap)
                 : snap_append(&m->snapshots, &m->snapshot_count, &snap);
    if (rc == 0) {
        cfg_hardware_free(&m->hw);
        m->hw = newhw;
        m->current_snapshot = snap.uuid;
        if (uuid)
            *uuid = snap.uuid;
    } else {
        if (newhw_copied)
            cfg_hardware_free(&newhw);
        if (!hw_copied)
            memset(&snap.hw, 0, sizeof(snap.hw));
        snap_free_own(&snap);
    }
    free(snapdir);
    return rc;
}

int mach_snapshot_take(const char *settings_path, const char *name, const char *description, const char *state_file,
                       bool from_vm, struct rt_uuid *uuid, struct cfg_error *err)
{
    struct mach_txn t;
    struct mach_undo undo = {0};
    bool global_saved = false;
    int rc = mach_txn_begin(&t, err);
    if (rc == 0)
        rc = mach_txn_open(&t, settings_path, true, err);
    if (rc == 0 && !from_vm) {
        rc = mach_refuse_running(t.m, t.path, err);
        if (rc < 0)
            mach_fail(err, rc, "machine '%s' is running: its own process takes the snapshot (vireo-manage snapshot "
                      "asks it to)", t.m->name);
        mach_state_fixup(t.m, t.path);
    }
    if (rc == 0)
        rc = mach_snapshot_take_txn(&t, name, description, state_file, uuid, &undo, err);
    if (rc == 0) {
        rc = mach_txn_save_global(&t, err);
        global_saved = rc == 0;
    }
    if (rc == 0)
        rc = mach_txn_save_machine(&t, err);
    if (rc < 0)
        mach_undo_rollback(&t, &undo, global_saved);
    else
        LOG_INFO("machine '%s': snapshot '%s' taken", t.m->name, name);
    mach_txn_end(&t);
    mach_undo_free(&undo);
    return rc;
}

/* ---- Restoring --------------------------------------------------------------------------------------- */

int mach_snapshot_restore(const char *settings_path, const char *name_or_uuid, struct cfg_error *err)
{
    struct mach_txn t;
    struct mach_undo undo = {0};
    struct mach_undo old = {0}; /* what goes once the new settings are saved */
    struct cfg_hardware nhw;
    bool nhw_copied = false, global_saved = false, machine_saved = false;
    char *snapdir = NULL, *new_state = NULL;
    int rc = mach_txn_begin(&t, err);
    if (rc == 0)
        rc = mach_txn_open(&t, settings_path, true, err);
    if (rc == 0)
        rc = mach_refuse_running(t.m, t.path, err);
    struct cfg_machine *m = t.m;
    struct cfg_snapshot *snap = NULL;
    if (rc == 0) {
        mach_state_fixup(m, t.path);
        rc = mach_snapshot_resolve(m, name_or_uuid, &snap, err);
    }
    if (rc == 0) {
        snapdir = mach_snapshot_dir(m, t.path);
        rc = snapdir ? 0 : VERR_NO_MEMORY;
    }
    /* The current state's images made over the current snapshot's, which nothing else uses. */
    struct cfg_snapshot *cur = rc == 0 ? cfg_snapshot_find(m, &m->current_snapshot) : NULL;
    for (size_t i = 0; rc == 0 && cur && i < m->hw.attachment_count; i++) {
        const struct cfg_attachment *a = &m->hw.attachments[i];
        const struct cfg_medium *md = a->type == CFG_MEDIUM_HDD ? cfg_medium_find(t.g, &a->medium) : NULL;
        if (!md || rt_uuid_is_null(&md->parent) || !mach_hw_uses(&cur->hw, &md->parent) ||
            snap_tree_uses(m->snapshots, m->snapshot_count, &md->uuid, NULL) || medium_has_children(t.g, &md->uuid, NULL))
            continue;
        rc = mach_undo_file(&old, md->location);
        if (rc == 0)
            rc = mach_uuid_set_add(&old.media, &md->uuid);
    }
    if (rc == 0) {
        rc = cfg_hardware_copy(&nhw, &snap->hw);
        nhw_copied = rc == 0;
    }
    if (rc == 0)
        rc = snap_diff_all(&t, &nhw, snapdir, &undo, err);
    if (rc == 0 && m->state == CFG_STATE_SAVED && m->state_file) {
        char *p = mach_path(t.path, m->state_file);
        rc = p ? mach_undo_file(&old, p) : VERR_NO_MEMORY;
        free(p);
    }
    if (rc == 0 && snap->online && snap->state_file) {
        /* A copy, so that the snapshot can be restored again after the machine ran on. */
        struct rt_uuid sid;
        char *from = mach_path(t.path, snap->state_file);
        rc = from ? rt_uuid_generate(&sid) : VERR_NO_MEMORY;
        char *to = rc == 0 ? snap_state_name(snapdir, &sid) : NULL;
        if (rc == 0 && !to)
            rc = VERR_NO_MEMORY;
        if (rc == 0)
            rc = rt_dir_create_all(snapdir, 0700);
        if (rc == 0)
            rc = mach_copy_file(from, to, err);
        if (rc == 0) {
            rc = mach_undo_file(&undo, to);
            new_state = mach_relative(t.path, to);
            if (rc == 0 && !new_state)
                rc = VERR_NO_MEMORY;
        }
        free(from);
        free(to);
    }
    if (rc == 0) {
        cfg_hardware_free(&m->hw);
        m->hw = nhw;
        nhw_copied = false;
        free(m->state_file);
        m->state_file = new_state;
        new_state = NULL;
        m->state = m->state_file ? CFG_STATE_SAVED : CFG_STATE_POWERED_OFF;
        m->state_changed_ns = rt_time_real_ns();
        m->current_snapshot = snap->uuid;
        rc = mach_txn_save_global(&t, err);
        global_saved = rc == 0;
    }
    if (rc == 0) {
        rc = mach_txn_save_machine(&t, err);
        machine_saved = rc == 0;
    }
    if (rc < 0 && !machine_saved) {
        mach_undo_rollback(&t, &undo, global_saved);
    } else if (rc == 0) {
        /* The machine no longer names the old images: unregister them, then delete them. */
        struct cfg_error gerr;
        gerr.msg[0] = '\0';
        if (old.media.n && (mach_media_remove(t.g, &old.media) < 0 || mach_txn_save_global(&t, &gerr) < 0)) {
            LOG_WARN("machine '%s': the old differencing images stay registered: %s", m->name, gerr.msg);
        } else {
            for (size_t i = 0; i < old.file_count; i++)
                mach_unlink_quiet(old.files[i]);
        }
        LOG_INFO("machine '%s': snapshot '%s' restored", m->name, snap->name);
    }
    if (nhw_copied)
        cfg_hardware_free(&nhw);
    free(new_state);
    free(snapdir);
    mach_txn_end(&t);
    mach_undo_free(&undo);
    mach_undo_free(&old);
    return rc;
}

/* ---- Deleting -------------------------------------------------------------------------------------- */

struct snap_merge {
    struct rt_uuid p, c; /* the snapshot's image and its dependant's image over it */
};

/* Whether anything but the snapshot being deleted (and the dependant's C) depends on P's content. */
static int snap_check_mergeable(struct mach_txn *t, const struct cfg_snapshot *snap, const struct cfg_medium *p,
                                const struct rt_uuid *c, struct cfg_error *err)
{
    struct cfg_machine *m = t->m;
    for (size_t i = 0; i < t->g->medium_count; i++) {
        const struct cfg_medium *o = &t->g->media[i];
        if (!memcmp(o->parent.bytes, p->uuid.bytes, 16) && memcmp(o->uuid.bytes, c->bytes, 16))
            return mach_fail(err, VERR_BUSY, "snapshot '%s': %s cannot take its child's changes: the differencing "
                             "image %s sits on it too", snap->name, p->location, o->location);
    }
    if (mach_hw_uses(&m->hw, &p->uuid) || snap_tree_uses(m->snapshots, m->snapshot_count, &p->uuid, snap))
        return mach_fail(err, VERR_BUSY, "snapshot '%s': %s is attached elsewhere in machine '%s'", snap->name,
                         p->location, m->name);
    struct mach_uuid_set others = {0};
    int rc = mach_media_used_by_others(t->g, &m->uuid, &others);
    if (rc == 0 && mach_uuid_set_has(&others, &p->uuid))
        rc = mach_fail(err, VERR_BUSY, "snapshot '%s': %s is used by another machine", snap->name, p->location);
    mach_uuid_set_free(&others);
    return rc;
}

int mach_snapshot_delete(const char *settings_path, const char *name_or_uuid, blk_progress_fn *progress,
                         void *opaque, struct cfg_error *err)
{
    struct mach_txn t;
    struct mach_undo gone = {0}; /* images and files to unregister and delete after the machine is saved */
    struct snap_merge *merges = NULL;
    size_t merge_count = 0;
    int rc = mach_txn_begin(&t, err);
    if (rc == 0)
        rc = mach_txn_open(&t, settings_path, true, err);
    if (rc == 0)
        rc = mach_refuse_running(t.m, t.path, err);
    struct cfg_machine *m = t.m;
    struct cfg_snapshot *snap = NULL;
    if (rc == 0) {
        mach_state_fixup(m, t.path);
        rc = mach_snapshot_resolve(m, name_or_uuid, &snap, err);
    }
    if (rc == 0 && snap->child_count > 1)
        rc = mach_fail(err, VERR_INVALID_STATE, "snapshot '%s' has %zu children; only a snapshot with at most one "
                       "can be deleted", snap->name, snap->child_count);
    bool is_current = rc == 0 && !memcmp(m->current_snapshot.bytes, snap->uuid.bytes, 16);
    struct cfg_hardware *dep = NULL;
    if (rc == 0)
        dep = snap->child_count == 1 ? &snap->children[0].hw : is_current ? &m->hw : NULL;
    if (rc == 0)
        merges = calloc(snap->hw.attachment_count + 1, sizeof(*merges));
    if (rc == 0 && !merges)
        rc = VERR_NO_MEMORY;

    /* Plan: which images merge, which go. */
    for (size_t i = 0; rc == 0 && i < snap->hw.attachment_count; i++) {
        const struct cfg_attachment *a = &snap->hw.attachments[i];
        if (a->type != CFG_MEDIUM_HDD || rt_uuid_is_null(&a->medium))
            continue;
        const struct cfg_medium *p = cfg_medium_find(t.g, &a->medium);
        if (!p)
            continue; /* nothing registered to merge into */
        const struct cfg_medium *c = NULL;
        for (size_t j = 0; dep && j < dep->attachment_count && !c; j++) {
            const struct cfg_medium *x = cfg_medium_find(t.g, &dep->attachments[j].medium);
            if (x && !memcmp(x->parent.bytes, p->uuid.bytes, 16))
                c = x;
        }
        if (c) {
            rc = snap_check_mergeable(&t, snap, p, &c->uuid, err);
            if (rc == 0)
                merges[merge_count++] = (struct snap_merge){.p = p->uuid, .c = c->uuid};
        } else if (!mach_hw_uses(&m->hw, &p->uuid) && !snap_tree_uses(m->snapshots, m->snapshot_count, &p->uuid, snap) &&
                   !medium_has_children(t.g, &p->uuid, NULL)) {
            /* Detached since the snapshot and used by nothing else: the image goes with it. */
            struct mach_uuid_set others = {0};
            rc = mach_media_used_by_others(t.g, &m->uuid, &others);
            if (rc == 0 && !mach_uuid_set_has(&others, &p->uuid)) {
                rc = mach_undo_file(&gone, p->location);
                if (rc == 0)
                    rc = mach_uuid_set_add(&gone.media, &p->uuid);
            }
            mach_uuid_set_free(&others);
        }
    }

    /* Merge: file changes first, settings after. */
    for (size_t i = 0; rc == 0 && i < merge_count; i++) {
        const struct cfg_medium *p = cfg_medium_find(t.g, &merges[i].p);
        const struct cfg_medium *c = cfg_medium_find(t.g, &merges[i].c);
        struct blk_image *img = NULL;
        rc = blk_open(c->location, BLK_FMT_AUTO, BLK_OPEN_READONLY, &img);
        if (rc == 0)
            rc = blk_commit(img, progress, opaque);
        blk_close(img);
        if (rc < 0) {
            rc = mach_fail(err, rc, "snapshot '%s': merging %s into %s failed: %s", snap->name, c->location,
                           p->location, rt_err_str(rc));
            break;
        }
        enum blk_format pfmt = BLK_FMT_AUTO;
        if (p->format)
            blk_format_from_name(p->format, &pfmt);
        for (size_t j = 0; rc == 0 && j < t.g->medium_count; j++) {
            struct cfg_medium *gc = &t.g->media[j];
            if (memcmp(gc->parent.bytes, merges[i].c.bytes, 16))
                continue;
            rc = blk_set_backing(gc->location, p->location, pfmt);
            if (rc < 0)
                rc = mach_fail(err, rc, "snapshot '%s': cannot point %s at %s: %s", snap->name, gc->location,
                               p->location, rt_err_str(rc));
            else
                gc->parent = merges[i].p;
        }
        if (rc == 0)
            rc = mach_undo_file(&gone, c->location);
        if (rc == 0)
            rc = mach_uuid_set_add(&gone.media, &merges[i].c);
        if (rc == 0) {
            for (size_t j = 0; j < m->hw.attachment_count; j++)
                if (!memcmp(m->hw.attachments[j].medium.bytes, merges[i].c.bytes, 16))
                    m->hw.attachments[j].medium = merges[i].p;
            snap_tree_replace(m->snapshots, m->snapshot_count, &merges[i].c, &merges[i].p);
        }
    }
    if (rc == 0 && snap->state_file) {
        char *sf = mach_path(t.path, snap->state_file);
        rc = sf ? mach_undo_file(&gone, sf) : VERR_NO_MEMORY;
        free(sf);
    }

    /* The tree: the snapshot's child (if any) takes its place. */
    char name[256] = "";
    if (rc == 0) {
        struct cfg_snapshot **arr;
        size_t *count, idx;
        struct cfg_snapshot *parent = cfg_snapshot_parent(m, snap);
        struct rt_uuid parent_uuid;
        memset(&parent_uuid, 0, sizeof(parent_uuid));
        if (parent)
            parent_uuid = parent->uuid;
        rt_strlcpy(name, snap->name ? snap->name : "", sizeof(name));
        if (!snap_locate(&m->snapshots, &m->snapshot_count, &snap->uuid, &arr, &count, &idx)) {
            rc = VERR_NOT_FOUND;
        } else {
            struct cfg_snapshot *s = &(*arr)[idx];
            struct cfg_snapshot *kids = s->children;
            size_t nkids = s->child_count;
            snap_free_own(s);
            if (nkids == 1) {
                *s = kids[0];
            } else {
                memmove(s, s + 1, (*count - idx - 1) * sizeof(*s));
                (*count)--;
            }
            free(kids);
            snap = NULL;
            if (is_current)
                m->current_snapshot = parent_uuid;
        }
    }
    if (rc == 0)
        rc = mach_txn_save_machine(&t, err);
    if (rc == 0) {
        struct cfg_error gerr;
        gerr.msg[0] = '\0';
        if (mach_media_remove(t.g, &gone.media) < 0 || mach_txn_save_global(&t, &gerr) < 0) {
            LOG_WARN("machine '%s': merged images stay registered: %s", m->name, gerr.msg);
        } else {
            for (size_t i = 0; i < gone.file_count; i++)
                mach_unlink_quiet(gone.files[i]);
        }
        LOG_INFO("machine '%s': snapshot '%s' deleted", m->name, name);
    }
    free(merges);
    mach_undo_free(&gone);
    mach_txn_end(&t);
    return rc;
}
