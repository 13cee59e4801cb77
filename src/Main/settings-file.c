/* settings-file.c - where settings live, their locks, loading them and replacing them atomically with a -prev copy. */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "settings-internal.h"

/* How often a waiting cfg_lock_acquire tries again. */
#define CFG_LOCK_POLL_NS (5 * RT_NS_PER_MS)

/* ---- Paths ------------------------------------------------------------------------------------------- */

static const char *cfg_env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static const char *cfg_home(void)
{
    const char *home = cfg_env("HOME");
    if (home)
        return home;
    struct passwd *pw = getpwuid(getuid());
    return pw && pw->pw_dir && *pw->pw_dir ? pw->pw_dir : "/";
}

char *cfg_config_dir(void)
{
    const char *dir = cfg_env("VIREO_USER_HOME");
    if (dir)
        return strdup(dir);
    /* The XDG base directory spec says to ignore a relative XDG_CONFIG_HOME. */
    const char *xdg = cfg_env("XDG_CONFIG_HOME");
    if (xdg && xdg[0] == '/')
        return rt_path_join(xdg, "Vireo");
    return rt_strdup_printf("%s/.config/Vireo", cfg_home());
}

char *cfg_global_path(void)
{
    char *dir = cfg_config_dir();
    char *path = dir ? rt_path_join(dir, "Vireo.xml") : NULL;
    free(dir);
    return path;
}

char *cfg_default_machine_folder(const char *preference)
{
    if (preference && *preference)
        return strdup(preference);
    return rt_path_join(cfg_home(), "Vireo VMs");
}

/* ---- Locks ------------------------------------------------------------------------------------------- */

struct cfg_lock {
    int fd;
};

/*
 * The lock lives on a sidecar file: the settings file itself is replaced by rename on every save, so a
 * lock on its inode would not exclude anyone who opens the new one.  flock belongs to the open file
 * description, so two acquisitions in one process exclude each other as well.
 */
int cfg_lock_acquire(const char *path, unsigned timeout_ms, struct cfg_lock **out)
{
    if (!path || !*path || !out)
        return VERR_INVALID_PARAMETER;
    char *lock_path = rt_strdup_printf("%s.lock", path);
    char *dir = rt_path_dirname(path);
    struct cfg_lock *lock = malloc(sizeof(*lock));
    if (!lock_path || !dir || !lock) {
        free(lock_path);
        free(dir);
        free(lock);
        return VERR_NO_MEMORY;
    }
    /* The first run locks the global file before its folder exists. */
    int rc = rt_path_exists(dir) ? 0 : rt_dir_create_all(dir, 0700);
    free(dir);
    lock->fd = rc ? -1 : open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (!rc && lock->fd < 0)
        rc = rt_err_from_errno(errno);
    free(lock_path);
    uint64_t deadline = rt_time_mono_ns() + (uint64_t)timeout_ms * RT_NS_PER_MS;
    while (rc == 0 && flock(lock->fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EINTR)
            continue;
        if (errno != EWOULDBLOCK) {
            rc = rt_err_from_errno(errno);
        } else if (rt_time_mono_ns() >= deadline) {
            rc = VERR_TIMEOUT;
        } else {
            rt_sleep_ns(CFG_LOCK_POLL_NS);
        }
    }
    if (rc) {
        if (lock->fd >= 0)
            close(lock->fd);
        free(lock);
        return rc;
    }
    *out = lock;
    return 0;
}

/* The lock file stays: removing it would let a waiter lock the unlinked inode while a newcomer locks a new one. */
void cfg_lock_release(struct cfg_lock *lock)
{
    if (!lock)
        return;
    flock(lock->fd, LOCK_UN);
    close(lock->fd);
    free(lock);
}

/* ---- Atomic replacement ---------------------------------------------------------------------------------- */

static int cfg_write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return rt_err_from_errno(errno);
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* A new temporary file in dir with data in it, synced; its name in *tmp_out. */
static int cfg_write_temp(const char *path, const char *data, size_t len, char **tmp_out, struct cfg_error *err)
{
    char *tmp = rt_strdup_printf("%s.tmp-XXXXXX", path);
    if (!tmp)
        return VERR_NO_MEMORY;
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        cfg_error_set(err, "%s: cannot create a temporary file beside it: %s", path, strerror(e));
        free(tmp);
        return rt_err_from_errno(e);
    }
    int rc = fchmod(fd, 0600) == 0 ? 0 : rt_err_from_errno(errno);
    if (!rc)
        rc = cfg_write_all(fd, data, len);
    if (!rc && fsync(fd) != 0)
        rc = rt_err_from_errno(errno);
    if (close(fd) != 0 && !rc)
        rc = rt_err_from_errno(errno);
    if (rc) {
        cfg_error_set(err, "%s: cannot write %s: %s", path, tmp, rt_err_str(rc));
        unlink(tmp);
        free(tmp);
        return rc;
    }
    *tmp_out = tmp;
    return 0;
}

/*
 * FILE-prev gets the current content: a hard link where the file system has them (no copy, and the old
 * inode is exactly what was there), else a synced copy.  Either way it appears under a temporary name
 * first and is renamed over the old FILE-prev, so a crash leaves one complete -prev or the other.
 */
static int cfg_keep_prev(const char *path, struct cfg_error *err)
{
    char *prev = rt_strdup_printf("%s-prev", path);
    char *tmp = rt_strdup_printf("%s-prev.tmp-XXXXXX", path);
    if (!prev || !tmp) {
        free(prev);
        free(tmp);
        return VERR_NO_MEMORY;
    }
    int rc = 0;
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        rc = rt_err_from_errno(errno);
        cfg_error_set(err, "%s: cannot keep the previous version: %s", path, rt_err_str(rc));
        free(prev);
        free(tmp);
        return rc;
    }
    close(fd);
    unlink(tmp); /* mkostemp only reserved a free name */
    if (link(path, tmp) != 0) {
        void *old = NULL;
        size_t len = 0;
        rc = rt_file_read_all(path, CFG_MAX_FILE_BYTES, &old, &len);
        char *copy_tmp = NULL;
        if (!rc)
            rc = cfg_write_temp(tmp, old, len, &copy_tmp, err);
        if (!rc && rename(copy_tmp, tmp) != 0)
            rc = rt_err_from_errno(errno);
        if (copy_tmp && rc)
            unlink(copy_tmp);
        free(copy_tmp);
        free(old);
    }
    if (!rc && rename(tmp, prev) != 0)
        rc = rt_err_from_errno(errno);
    if (rc) {
        unlink(tmp);
        if (!err || !err->msg[0])
            cfg_error_set(err, "%s: cannot keep the previous version as %s: %s", path, prev, rt_err_str(rc));
    }
    free(prev);
    free(tmp);
    return rc;
}

static int cfg_sync_dir(const char *path)
{
    char *dir = rt_path_dirname(path);
    if (!dir)
        return VERR_NO_MEMORY;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = fd >= 0 && fsync(fd) == 0 ? 0 : rt_err_from_errno(errno);
    if (fd >= 0)
        close(fd);
    free(dir);
    return rc;
}

int cfg_file_replace(const char *path, const char *data, size_t len, struct cfg_error *err)
{
    if (err)
        err->msg[0] = '\0';
    char *tmp = NULL;
    int rc = cfg_write_temp(path, data, len, &tmp, err);
    if (rc)
        return rc;
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISREG(st.st_mode)) {
            cfg_error_set(err, "%s: exists and is not a regular file", path);
            rc = S_ISDIR(st.st_mode) ? VERR_IS_A_DIRECTORY : VERR_ACCESS_DENIED;
        } else {
            rc = cfg_keep_prev(path, err);
        }
    } else if (errno != ENOENT) {
        rc = rt_err_from_errno(errno);
        cfg_error_set(err, "%s: %s", path, rt_err_str(rc));
    }
    if (!rc && rename(tmp, path) != 0) {
        rc = rt_err_from_errno(errno);
        cfg_error_set(err, "%s: cannot replace it: %s", path, rt_err_str(rc));
    }
    if (rc) {
        unlink(tmp);
        free(tmp);
        return rc;
    }
    free(tmp);
    rc = cfg_sync_dir(path);
    if (rc)
        cfg_error_set(err, "%s: saved, but syncing its folder failed: %s", path, rt_err_str(rc));
    return rc;
}

/* ---- Load and save --------------------------------------------------------------------------------------- */

static int cfg_read_file(const char *path, void **data, size_t *len, struct cfg_error *err)
{
    int rc = rt_file_read_all(path, CFG_MAX_FILE_BYTES, data, len);
    if (rc == VERR_TOO_LARGE)
        cfg_error_set(err, "%s: larger than %u bytes, which no settings file is", path, CFG_MAX_FILE_BYTES);
    else if (rc)
        cfg_error_set(err, "%s: cannot read it: %s", path, rt_err_str(rc));
    return rc;
}

int cfg_machine_load(const char *path, struct cfg_machine **out, struct cfg_error *err)
{
    void *data = NULL;
    size_t len = 0;
    int rc = cfg_read_file(path, &data, &len, err);
    if (!rc)
        rc = cfg_machine_parse(path, data, len, out, err);
    free(data);
    return rc;
}

int cfg_machine_save(const struct cfg_machine *m, const char *path, struct cfg_error *err)
{
    char *xml = NULL;
    size_t len = 0;
    int rc = cfg_machine_format_checked(m, &xml, &len, err, path);
    if (!rc)
        rc = cfg_file_replace(path, xml, len, err);
    free(xml);
    return rc;
}

int cfg_global_load(const char *path, struct cfg_global **out, struct cfg_error *err)
{
    void *data = NULL;
    size_t len = 0;
    if (!rt_path_exists(path) && errno == ENOENT)
        return cfg_global_new(out);
    int rc = cfg_read_file(path, &data, &len, err);
    if (!rc)
        rc = cfg_global_parse(path, data, len, out, err);
    free(data);
    return rc;
}

int cfg_global_save(const struct cfg_global *g, const char *path, struct cfg_error *err)
{
    char *xml = NULL;
    size_t len = 0;
    int rc = cfg_global_format_checked(g, &xml, &len, err, path);
    char *dir = rc ? NULL : rt_path_dirname(path);
    if (!rc && !dir)
        rc = VERR_NO_MEMORY;
    if (!rc && !rt_path_exists(dir)) {
        rc = rt_dir_create_all(dir, 0700);
        if (rc)
            cfg_error_set(err, "%s: cannot create the folder: %s", dir, rt_err_str(rc));
    }
    free(dir);
    if (!rc)
        rc = cfg_file_replace(path, xml, len, err);
    free(xml);
    return rc;
}
