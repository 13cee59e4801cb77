/* machine-internal.h - what the machine, media, snapshot and clone files of libVireoMain share: transactions on the settings files, error messages and file helpers. */
#ifndef VIREO_MACHINE_INTERNAL_H
#define VIREO_MACHINE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "vireo/err.h"
#include "vireo/machine.h"
#include "vireo/rt.h"
#include "vireo/settings.h"

/*
 * One operation is one transaction: the global registry's lock, then (for operations on
 * one machine) the machine file's lock, the files loaded, changed in memory, validated
 * and saved, the locks released in the reverse order.  The internal functions below
 * work on an open transaction so that an operation made of others (a linked clone
 * takes a snapshot) never takes a lock it already holds: settings locks are flocks on
 * a sidecar file, and a second flock of the same file by the same process would wait
 * for itself.
 *
 * Files on disk follow the settings: an image or state file is created before the
 * settings that name it are saved, and deleted only after the settings that stopped
 * naming it are saved, so a crash between the two leaves at worst an orphan file.
 */
struct mach_txn {
    struct cfg_lock *glock;
    char *gpath;
    struct cfg_global *g;
    struct cfg_lock *mlock;
    char *path;             /* the machine's settings file (absolute) */
    struct cfg_machine *m;
};

/* Locks and loads the global registry. */
int mach_txn_begin(struct mach_txn *t, struct cfg_error *err);
/* Then the machine: by name or UUID among the registered ones, or (by_path) the file at ref. */
int mach_txn_open(struct mach_txn *t, const char *ref, bool by_path, struct cfg_error *err);
int mach_txn_save_global(struct mach_txn *t, struct cfg_error *err);
/* Validates the machine against the registry and saves it. */
int mach_txn_save_machine(struct mach_txn *t, struct cfg_error *err);
/* Releases the locks and frees what was loaded (safe on a zeroed or half-begun struct). */
void mach_txn_end(struct mach_txn *t);

/* The registered machine named name (case-sensitive), its path in *path when found (malloc'ed);
 * skip_uuid (may be NULL) is left out.  0 when found, VERR_NOT_FOUND otherwise. */
int mach_registry_find_name(struct cfg_global *g, const char *name, const struct rt_uuid *skip_uuid, char **path);
/* Resolves a name or UUID to a registered machine's settings path (UUID first). */
int mach_registry_resolve(struct cfg_global *g, const char *name_or_uuid, char **path, struct cfg_error *err);
/* The running state as a machine file records it, corrected to aborted when no process holds the run lock. */
void mach_state_fixup(struct cfg_machine *m, const char *path);
/* VERR_INVALID_STATE with "machine 'X' is running; power it off first" when it runs. */
int mach_refuse_running(const struct cfg_machine *m, const char *path, struct cfg_error *err);

/* err := formatted message (err may be NULL); returns rc. */
int mach_fail(struct cfg_error *err, int rc, const char *fmt, ...) RT_PRINTF(3, 4);
/* Appends "; message" to err (mach_list's skipped machines). */
void mach_err_append(struct cfg_error *err, const char *fmt, ...) RT_PRINTF(2, 3);

/* An absolute form of path (relative to the cwd; "." and ".." removed); malloc'ed or NULL. */
char *mach_abs_path(const char *path);
/* The machine's snapshot folder (absolute, malloc'ed). */
char *mach_snapshot_dir(const struct cfg_machine *m, const char *settings_path);
/* "<snapshot folder>/{uuid}.ext", relative to the machine folder when it lies inside it (malloc'ed). */
char *mach_relative(const char *settings_path, const char *abs);
/* Copies a file (state files) to a new file, fsync'ed; never replaces one. */
int mach_copy_file(const char *from, const char *to, struct cfg_error *err);
/* Deletes a settings file and the files the settings code keeps beside it (-prev copy, lock sidecar). */
void mach_settings_files_remove(const char *path);
/* unlink that logs instead of failing (cleanup after the settings were saved). */
void mach_unlink_quiet(const char *path);

/* Media of a machine. */
struct mach_uuid_set {
    struct rt_uuid *v;
    size_t n, cap;
};
int mach_uuid_set_add(struct mach_uuid_set *s, const struct rt_uuid *u);
bool mach_uuid_set_has(const struct mach_uuid_set *s, const struct rt_uuid *u);
void mach_uuid_set_free(struct mach_uuid_set *s);
/* Every medium (of any type; hdd_only: hard disks) the machine's current state and snapshots attach. */
int mach_media_used(const struct cfg_machine *m, bool hdd_only, struct mach_uuid_set *out);
/* Unregisters every medium of set from g, differencing images before their parents (the registry refuses
 * to drop a parent first); VERR_BUSY when some medium outside the set still sits on one of them. */
int mach_media_remove(struct cfg_global *g, const struct mach_uuid_set *set);
/* Every medium the other registered machines (all but skip) attach, now or in a snapshot. */
int mach_media_used_by_others(struct cfg_global *g, const struct rt_uuid *skip, struct mach_uuid_set *out);
/* Whether hw attaches the medium. */
bool mach_hw_uses(const struct cfg_hardware *hw, const struct rt_uuid *uuid);

/*
 * Creates a new differencing image over the registered medium parent in folder (named
 * "{uuid}.<fmt>", VDI/qcow2 as the parent, qcow2 over other formats) and registers it
 * in t->g (not saved).  *created gets the file's path (malloc'ed) for cleanup.  parent
 * may point into t->g->media: it is read before the registry grows.
 */
int mach_diff_create(struct mach_txn *t, const struct cfg_medium *parent, const char *folder, struct rt_uuid *uuid,
                     char **created, struct cfg_error *err);

/*
 * What an operation created, so that a failing one removes it again: files, and media it
 * registered in t->g.  mach_undo_rollback unregisters the media (and, with global_saved,
 * saves the registry once more) and deletes the files.
 */
struct mach_undo {
    char **files;
    size_t file_count;
    struct mach_uuid_set media;
};
int mach_undo_file(struct mach_undo *u, const char *path); /* path copied */
void mach_undo_rollback(struct mach_txn *t, struct mach_undo *u, bool global_saved);
void mach_undo_free(struct mach_undo *u);

/* Takes a snapshot on an open transaction (snapshot.c); the caller saves the registry, then the machine. */
int mach_snapshot_take_txn(struct mach_txn *t, const char *name, const char *description, const char *state_file,
                           struct rt_uuid *uuid, struct mach_undo *undo, struct cfg_error *err);
/* The snapshot named by UUID or name (error when several share the name). */
int mach_snapshot_resolve(struct cfg_machine *m, const char *name_or_uuid, struct cfg_snapshot **out,
                          struct cfg_error *err);

#endif
