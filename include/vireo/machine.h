/* machine.h - machines and media as objects: finding, creating, registering, editing and deleting them, media registration, run locks and snapshots (src/Main). */
#ifndef VIREO_MACHINE_H
#define VIREO_MACHINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vireo/block.h"
#include "vireo/settings.h"

/*
 * The operations vireo-manage, the manager and vireo-vm share.  Each one is a complete
 * transaction on the settings files: it takes the locks it needs (the global registry's
 * and/or the machine file's, always in that order), loads, changes, saves atomically and
 * releases, so concurrent processes never lose each other's changes.  A failing operation
 * changes nothing on disk and fills err with a message naming the object and the reason.
 *
 * The global registry is the one at cfg_global_path() (so $VIREO_USER_HOME moves it).
 *
 * Running machines: vireo-vm holds an exclusive flock on <machine folder>/.vireo-run.lock
 * for its whole life.  A machine whose file says running or paused but whose run lock is
 * free has lost its process: it is reported (and on the next change recorded) as aborted.
 */

/* Wait at most this long for a settings lock. */
#define MACH_LOCK_TIMEOUT_MS 10000

/* ---- Machines ------------------------------------------------------------------------ */

/* A registered machine by name or UUID: its settings file path (malloc'ed) and, if out is not NULL, its
 * settings as loaded, with the state corrected to aborted when its process is gone.  VERR_NOT_FOUND. */
int mach_find(const char *name_or_uuid, char **settings_path, struct cfg_machine **out, struct cfg_error *err);
/* Every registered machine in registry order (machines whose file cannot be read are reported in err
 * and skipped; *count may be less than the registry's). */
int mach_list(struct cfg_machine ***out, char ***paths, size_t *count, struct cfg_error *err);
void mach_list_free(struct cfg_machine **machines, char **paths, size_t count);

/*
 * Creates <base_folder or the default machine folder>/<name>/<name>.vireo with defaults and, with
 * ostype, the preset's hardware (no disks: those are created separately).  VERR_ALREADY_EXISTS when
 * a registered machine has that name or the folder/file exists; VERR_INVALID_PARAMETER for a bad name
 * or unknown OS type.  With reg, also registers it.
 */
int mach_create(const char *name, const char *ostype, const char *base_folder, bool reg,
                char **settings_path, struct rt_uuid *uuid, struct cfg_error *err);
/*
 * UEFI variable store (NVRAM) of a machine with EFI firmware: <folder>/<name>.nvram beside the settings
 * file (the settings path is the machine's identity, so a renamed machine keeps it).  It starts as a copy
 * of OVMF's template (Debian's ovmf package), made when the machine is created or switched to EFI, and
 * again by vireo-vm when it is missing; clones copy it, unregister --delete removes it.
 */
#define MACH_EFI_VARS_TEMPLATE "/usr/share/OVMF/OVMF_VARS_4M.fd"
/* The store's path for a settings file (malloc'ed; NULL without memory). */
char *mach_nvram_path(const char *settings_path);
/* Copies the template (or from, when not NULL) to path unless path exists; *created says whether it did. */
int mach_nvram_create(const char *path, const char *from, bool *created, struct cfg_error *err);

/* Registers an existing settings file (VERR_ALREADY_EXISTS for a known UUID or name). */
int mach_register(const char *settings_path, struct cfg_error *err);
/*
 * Unregisters (refused while running).  With delete_files: also deletes the settings file and its
 * -prev copy, the logs, saved states, the machine's differencing images and snapshot files, every
 * hard disk attached only to this machine (unregistered from the media registry), and the machine
 * folder when it is empty afterwards.  DVD images are never deleted.
 */
int mach_unregister(const char *name_or_uuid, bool delete_files, struct cfg_error *err);

/*
 * Edits a machine's settings as one transaction: lock, load, fn(m), validate, save, unlock.  fn returns
 * 0 to save or an error (nothing is written); it may fill err.  Refused (VERR_INVALID_STATE) while the
 * machine runs unless allow_running (state changes by vireo-vm, extra data).
 */
typedef int mach_edit_fn(void *opaque, struct cfg_machine *m, const char *settings_path, struct cfg_error *err);
int mach_edit(const char *name_or_uuid, bool allow_running, mach_edit_fn *fn, void *opaque, struct cfg_error *err);
/* The same on a settings path (vireo-vm, which knows its own file). */
int mach_edit_path(const char *settings_path, bool allow_running, mach_edit_fn *fn, void *opaque,
                   struct cfg_error *err);
/*
 * Edits the global registry (preferences, entries) as one transaction under its lock, as every change to it
 * must be made: lock, load, fn(g), save, unlock.  fn returns 0 to save or an error (nothing is written); it may
 * fill err.
 */
typedef int mach_global_edit_fn(void *opaque, struct cfg_global *g, struct cfg_error *err);
int mach_global_edit(mach_global_edit_fn *fn, void *opaque, struct cfg_error *err);
/* Checks a machine's settings for consistency (attachments on existing controllers within their port
 * counts, no slot used twice, media registered and of the right type, values in range); 0 or
 * VERR_CFG_BAD_VALUE with err naming the field. */
int mach_validate(const struct cfg_machine *m, const struct cfg_global *g, struct cfg_error *err);

/* The machine folder (the settings file's folder; malloc'ed). */
char *mach_folder(const char *settings_path);
/* Absolute path of a file named relative to the machine folder (malloc'ed). */
char *mach_path(const char *settings_path, const char *relative);

/* ---- Run locks (vireo-vm) -------------------------------------------------------------- */

struct mach_run_lock; /* opaque */
/* Takes the machine's run lock without waiting; VERR_BUSY (err says so) when the machine runs already. */
int mach_run_lock_acquire(const char *settings_path, struct mach_run_lock **out, struct cfg_error *err);
void mach_run_lock_release(struct mach_run_lock *lock);
/* Whether a process holds the machine's run lock. */
bool mach_is_running(const char *settings_path);

/*
 * Starts vm_exe (vireo-vm) for the machine at settings_path: "--startvm <uuid>", plus "--headless" when
 * headless and "--exec <exec>" when exec is not NULL, detached (a session of its own, stdin from /dev/null,
 * stdout and stderr to <folder>/Logs/VM-process.log, which *log_path names, malloc'ed; may be NULL).
 * Returns at once with the child's pid, which the caller must reap (waitpid); whether the machine came up
 * is for the caller to see (its control socket answers, or the child exits).  VERR_BUSY when it runs already.
 */
int mach_start(const char *settings_path, const char *vm_exe, bool headless, const char *exec, int *pid,
               char **log_path, struct cfg_error *err);

/* ---- Media --------------------------------------------------------------------------- */

/* A registered medium by UUID, by location (absolute or relative to the cwd) or, failing both, by file
 * name; the registry entry is copied into *out (strings malloc'ed; free with mach_medium_clear). */
int mach_medium_find(const char *uuid_or_path, struct cfg_medium *out, struct cfg_error *err);
void mach_medium_clear(struct cfg_medium *m);
/* Every registered medium of a type. */
int mach_medium_list(enum cfg_medium_type type, struct cfg_medium **out, size_t *count, struct cfg_error *err);
void mach_medium_list_free(struct cfg_medium *media, size_t count);
/* Creates an image (blk_create; the file must not exist) and registers it as a hard disk. */
int mach_medium_create(const char *path, enum blk_format fmt, uint64_t size_bytes, bool fixed, struct rt_uuid *uuid,
                       struct cfg_error *err);
/*
 * Copies the image at src (its whole chain, flattened: what a machine reading it sees) into a new file dst in
 * params->format (BLK_FMT_AUTO: the source's format where Vireo writes it, else VDI), fixed or dynamic as params
 * says (params->format tells afterwards which it wrote), and registers the copy as a hard disk with a new UUID.  The source may be registered or not; it is opened
 * read-only (VERR_BUSY while a running machine writes it).  VERR_ALREADY_EXISTS when dst exists.  On failure dst is
 * gone.  progress may be NULL.
 */
int mach_medium_clone(const char *src, const char *dst, struct blk_create_params *params, blk_progress_fn *progress,
                     void *opaque, struct rt_uuid *uuid, struct cfg_error *err);
/* Grows the image at path (that file only, not its backing chain) to size_bytes; the same size changes nothing,
 * a smaller one is refused (VERR_INVALID_PARAMETER: data would be lost).  VERR_BUSY while a running machine uses it. */
int mach_medium_resize(const char *path, uint64_t size_bytes, struct cfg_error *err);
/* Registers an existing image (probing its format; DVDs must open as ISO/raw read-only), or returns the
 * UUID it is registered under already. */
int mach_medium_open(const char *path, enum cfg_medium_type type, struct rt_uuid *uuid, struct cfg_error *err);
/* Unregisters a medium (VERR_BUSY while a machine or snapshot uses it, naming the machine; also when
 * a differencing image sits on it); with delete_file also deletes the image file. */
int mach_medium_close(const char *uuid_or_path, bool delete_file, struct cfg_error *err);
/* The machines (names, malloc'ed array of malloc'ed strings) that use a medium in their current state
 * or a snapshot. */
int mach_medium_users(const struct rt_uuid *uuid, char ***names, size_t *count, struct cfg_error *err);

/* ---- Snapshots ------------------------------------------------------------------------ */

/*
 * Takes a snapshot: every attached hard disk's current image is frozen (it becomes the snapshot's, read-
 * only from now on) and the machine continues on a new differencing image in its snapshot folder,
 * registered with the frozen image as parent.  The snapshot records the hardware.  state_file (relative to
 * the machine folder, or NULL) is the saved state of a running machine, which makes the snapshot online;
 * when the machine is in the saved state its state file is copied into the snapshot instead.
 *
 * Offline (no process runs the machine) anyone may call it.  A running machine's snapshot is taken by its
 * own vireo-vm (vireo-manage asks it over the control socket): paused, state saved, disk images released
 * (drive_image_release), then this with from_vm set, then every disk reattached to the image its
 * attachment now names, then resumed.
 */
int mach_snapshot_take(const char *settings_path, const char *name, const char *description, const char *state_file,
                       bool from_vm, struct rt_uuid *uuid, struct cfg_error *err);
/*
 * Restores a snapshot (machine not running): the current differencing images are deleted and new empty
 * ones created over the snapshot's images, the hardware is the snapshot's, and an online snapshot's state
 * becomes the machine's saved state (a copy, so the snapshot can be restored again); otherwise the
 * machine is powered off and any saved state is discarded.  The snapshot becomes the current one.
 */
int mach_snapshot_restore(const char *settings_path, const char *name_or_uuid, struct cfg_error *err);
/*
 * Deletes a snapshot (machine not running): its images are merged with the differencing images of
 * its one child (the next snapshot or the current state) so that the child's content is unchanged,
 * leftover images are deleted and unregistered, its state file is deleted and its children move up to its
 * parent.  Refused (VERR_INVALID_STATE) for a snapshot with more than one child.  progress may be NULL.
 */
int mach_snapshot_delete(const char *settings_path, const char *name_or_uuid, blk_progress_fn *progress,
                         void *opaque, struct cfg_error *err);

/* ---- Cloning ---------------------------------------------------------------------------- */

enum mach_clone_mode { MACH_CLONE_CURRENT = 0 /* "machine" */, MACH_CLONE_ALL };
/* Clones a machine (which must not be running: VERR_BUSY): new UUID, new MACs, new name and folder; disks copied flattened (or, with linked, as
 * differencing images over a new snapshot of the source); MACH_CLONE_ALL also copies the snapshot tree. */
int mach_clone(const char *name_or_uuid, const char *new_name, enum mach_clone_mode mode, bool linked, bool reg,
               const char *base_folder, blk_progress_fn *progress, void *opaque, struct rt_uuid *uuid,
               struct cfg_error *err);

/* Discards a saved state (machine in the saved state): deletes the file, powered off. */
int mach_discard_state(const char *name_or_uuid, struct cfg_error *err);

#endif
