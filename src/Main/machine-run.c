/* machine-run.c - run locks (which process runs a machine), unregistering and deleting machines, discarding saved states. */

/*
 * A running machine is one whose run lock, <machine folder>/.vireo-run.lock, some
 * process holds with an exclusive flock: vireo-vm takes it for its whole life and the
 * kernel drops it when the process dies, however it dies.  So the lock, never the
 * state recorded in the settings file, says whether a machine runs.  Probing takes the
 * lock (non-blocking) on a separate open file and drops it at once; a vireo-vm starting
 * in that instant could see the lock held, so acquiring retries for a short while
 * before it reports the machine as running.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "machine-internal.h"

#define LOG_COMPONENT "machine"

#define MACH_RUN_LOCK_NAME ".vireo-run.lock"
/* A probe holds the lock for microseconds: this many tries 5 ms apart outlast any probe. */
#define MACH_RUN_LOCK_TRIES 40

struct mach_run_lock {
    int fd;
    char *path;
};

static char *mach_run_lock_path(const char *settings_path)
{
    return mach_path(settings_path, MACH_RUN_LOCK_NAME);
}

int mach_run_lock_acquire(const char *settings_path, struct mach_run_lock **out, struct cfg_error *err)
{
    *out = NULL;
    char *path = mach_run_lock_path(settings_path);
    if (!path)
        return VERR_NO_MEMORY;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        int rc = mach_fail(err, rt_err_from_errno(e), "%s: cannot open the run lock: %s", path, strerror(e));
        free(path);
        return rc;
    }
    for (int i = 0;; i++) {
        if (flock(fd, LOCK_EX | LOCK_NB) == 0)
            break;
        int e = errno;
        if (e == EINTR)
            continue;
        if (e != EWOULDBLOCK || i + 1 >= MACH_RUN_LOCK_TRIES) {
            close(fd);
            int rc = e == EWOULDBLOCK
                         ? mach_fail(err, VERR_BUSY, "the machine of %s is running already (another process holds %s)",
                                     settings_path, path)
                         : mach_fail(err, rt_err_from_errno(e), "%s: cannot lock: %s", path, strerror(e));
            free(path);
            return rc;
        }
        rt_sleep_ns(5 * RT_NS_PER_MS);
    }
    struct mach_run_lock *lock = malloc(sizeof(*lock));
    if (!lock) {
        close(fd);
        free(path);
        return VERR_NO_MEMORY;
    }
    lock->fd = fd;
    lock->path = path;
    *out = lock;
    return 0;
}

void mach_run_lock_release(struct mach_run_lock *lock)
{
    if (!lock)
        return;
    flock(lock->fd, LOCK_UN);
    close(lock->fd);
    free(lock->path);
    free(lock);
}

bool mach_is_running(const char *settings_path)
{
    char *path = mach_run_lock_path(settings_path);
    if (!path)
        return false;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    free(path);
    if (fd < 0)
        return false; /* no lock file: nobody ever ran it from here */
    bool running = false;
    for (;;) {
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
            flock(fd, LOCK_UN);
            break;
        }
        if (errno == EINTR)
            continue;
        running = errno == EWOULDBLOCK;
        break;
    }
    close(fd);
    return running;
}

/* ---- Unregistering and deleting ---------------------------------------------------------- */

/* Files to delete once the registry no longer names them. */
struct mach_file_list {
    char **v;
    size_t n, cap;
};

static int mach_file_list_add(struct mach_file_list *l, char *path)
{
    if (!path)
        return VERR_NO_MEMORY;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **v = realloc(l->v, cap * sizeof(*v));
        if (!v) {
            free(path);
            return VERR_NO_MEMORY;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = path;
    return 0;
}

static void mach_file_list_free(struct mach_file_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
}

static int mach_state_files(const char *path, const struct cfg_snapshot *s, size_t count, struct mach_file_list *l)
{
    for (size_t i = 0; i < count; i++) {
        int rc = s[i].state_file ? mach_file_list_add(l, mach_path(path, s[i].state_file)) : 0;
        if (rc == 0)
            rc = mach_state_files(path, s[i].children, s[i].child_count, l);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/*
 * The hard disks that go with the machine: those it uses that no other machine uses
 * and that no medium staying registered sits on (a linked clone's disks sit on this
 * machine's snapshot images, which must then stay).
 */
static int mach_disks_to_delete(struct mach_txn *t, struct mach_uuid_set *del)
{
    struct mach_uuid_set mine = {0}, others = {0};
    int rc = mach_media_used(t->m, true, &mine);
    if (rc == 0)
        rc = mach_media_used_by_others(t->g, &t->m->uuid, &others);
    for (size_t i = 0; rc == 0 && i < mine.n; i++)
        if (!mach_uuid_set_has(&others, &mine.v[i]))
            rc = mach_uuid_set_add(del, &mine.v[i]);
    for (bool changed = true; rc == 0 && changed;) {
        changed = false;
        for (size_t i = 0; i < t->g->medium_count && !changed; i++) {
            const struct cfg_medium *md = &t->g->media[i];
            if (rt_uuid_is_null(&md->parent) || mach_uuid_set_has(del, &md->uuid) ||
                !mach_uuid_set_has(del, &md->parent))
                continue;
            for (size_t j = 0; j < del->n; j++) {
                if (!memcmp(del->v[j].bytes, md->parent.bytes, 16)) {
                    del->v[j] = del->v[--del->n];
                    changed = true;
                    break;
                }
            }
        }
    }
    mach_uuid_set_free(&mine);
    mach_uuid_set_free(&others);
    return rc;
}

/* Removes the files of <dir> (the Logs folder is the machine's own), then the folder. */
static void mach_dir_remove_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char *p = rt_path_join(dir, e->d_name);
        mach_unlink_quiet(p);
        free(p);
    }
    closedir(d);
    rmdir(dir);
}

int mach_unregister(const char *name_or_uuid, bool delete_files, struct cfg_error *err)
{
    struct mach_txn t;
    struct mach_file_list files = {0};
    struct mach_uuid_set del = {0};
    char *folder = NULL, *snapdir = NULL, *settings = NULL;
    int rc = mach_txn_begin(&t, err);
    if (rc == 0)
        rc = mach_txn_open(&t, name_or_uuid, false, err);
    if (rc == 0)
        rc = mach_refuse_running(t.m, t.path, err);
    if (rc == 0) {
        rc = cfg_machine_entry_remove(t.g, &t.m->uuid);
        if (rc < 0)
            rc = mach_fail(err, rc, "machine '%s' is not in the registry", t.m->name);
    }
    if (rc == 0 && delete_files) {
        rc = mach_disks_to_delete(&t, &del);
        for (size_t i = 0; rc == 0 && i < del.n; i++) {
            const struct cfg_medium *md = cfg_medium_find(t.g, &del.v[i]);
            if (md) /* attached but not registered: no file of ours to find */
                rc = mach_file_list_add(&files, strdup(md->location));
        }
        if (rc == 0)
            rc = mach_media_remove(t.g, &del);
        if (rc == 0 && t.m->state_file)
            rc = mach_file_list_add(&files, mach_path(t.path, t.m->state_file));
        if (rc == 0)
            rc = mach_state_files(t.path, t.m->snapshots, t.m->snapshot_count, &files);
        if (rc == 0)
            rc = mach_file_list_add(&files, mach_nvram_path(t.path));
        if (rc == 0) {
            folder = mach_folder(t.path);
            snapdir = mach_snapshot_dir(t.m, t.path);
            settings = strdup(t.path);
            if (!folder || !snapdir || !settings)
                rc = VERR_NO_MEMORY;
        }
    }
    if (rc == 0)
        rc = mach_txn_save_global(&t, err);
    char name[256];
    rt_strlcpy(name, t.m ? t.m->name : "", sizeof(name));
    mach_txn_end(&t);
    if (rc == 0 && delete_files) {
        /* The registry no longer names any of these: now they can go. */
        for (size_t i = 0; i < files.n; i++)
            mach_unlink_quiet(files.v[i]);
        mach_settings_files_remove(settings);
        /* The run lock, and the RDP server's certificate and key that vireo-vm keeps in the folder. */
        static const char *const own_files[] = { MACH_RUN_LOCK_NAME, "rdp.crt", "rdp.key" };
        char *p = NULL;
        for (size_t i = 0; i < RT_ARRAY_SIZE(own_files); i++) {
            p = rt_path_join(folder, own_files[i]);
            mach_unlink_quiet(p);
            free(p);
        }
        p = rt_path_join(folder, "Logs");
        if (p)
            mach_dir_remove_files(p);
        free(p);
        /* swtpm's state files: the TPM's keys go with the machine, whether or not it still has a TPM. */
        p = rt_path_join(folder, "tpm");
        if (p)
            mach_dir_remove_files(p);
        free(p);
        rmdir(snapdir);
        if (rmdir(folder) < 0 && errno != ENOENT)
            LOG_INFO("%s: left in place: %s", folder, strerror(errno));
    }
    if (rc == 0)
        LOG_INFO("unregistered machine '%s'%s", name, delete_files ? " and deleted its files" : "");
    mach_file_list_free(&files);
    mach_uuid_set_free(&del);
    free(folder);
    free(snapdir);
    free(settings);
    return rc;
}

/* ---- Discarding a saved state ------------------------------------------------------------------ */

int mach_discard_state(const char *name_or_uuid, struct cfg_error *err)
{
    struct mach_txn t;
    char *old = NULL;
    int rc = mach_txn_begin(&t, err);
    if (rc == 0)
        rc = mach_txn_open(&t, name_or_uuid, false, err);
    if (rc == 0)
        rc = mach_refuse_running(t.m, t.path, err);
    if (rc == 0 && t.m->state != CFG_STATE_SAVED)
        rc = mach_fail(err, VERR_INVALID_STATE, "machine '%s' has no saved state (it is %s)", t.m->name,
                       cfg_machine_state_name(t.m->state));
    if (rc == 0) {
        old = t.m->state_file ? mach_path(t.path, t.m->state_file) : NULL;
        free(t.m->state_file);
        t.m->state_file = NULL;
        t.m->state = CFG_STATE_POWERED_OFF;
        t.m->state_changed_ns = rt_time_real_ns();
        rc = mach_txn_save_machine(&t, err);
    }
    mach_txn_end(&t);
    if (rc == 0)
        mach_unlink_quiet(old);
    free(old);
    return rc;
}
