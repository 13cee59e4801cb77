/* path.c - path strings, folder creation, whole-file reads and atomic file replacement. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vireo/rt.h"

/* First read size when the file does not say how big it is (pipes, /proc). */
#define PATH_READ_CHUNK_BYTES 4096

char *rt_path_join(const char *a, const char *b)
{
    size_t a_len = strlen(a);
    /* Keep a lone "/" so that joining onto the root stays absolute. */
    while (a_len > 1 && a[a_len - 1] == '/')
        a_len--;
    while (*b == '/' && a_len > 0)
        b++;
    size_t b_len = strlen(b);
    bool need_sep = a_len > 0 && b_len > 0 && a[a_len - 1] != '/';
    char *out = malloc(a_len + need_sep + b_len + 1);
    if (!out)
        return NULL;
    memcpy(out, a, a_len);
    if (need_sep)
        out[a_len] = '/';
    memcpy(out + a_len + need_sep, b, b_len + 1);
    return out;
}

const char *rt_path_basename(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* POSIX dirname() semantics ("a/b/" gives "a") without modifying the input. */
char *rt_path_dirname(const char *path)
{
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/')
        len--;
    while (len > 0 && path[len - 1] != '/')
        len--;
    if (len == 0)
        return strdup(".");
    while (len > 1 && path[len - 1] == '/')
        len--;
    return strndup(path, len);
}

bool rt_path_exists(const char *path)
{
    struct stat st;
    return path && stat(path, &st) == 0;
}

char *rt_program_dir(void)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return NULL;
    exe[n] = '\0';
    return rt_path_dirname(exe);
}

static int path_mkdir_one(const char *path, unsigned mode)
{
    if (mkdir(path, (mode_t)mode) == 0)
        return 0;
    int err = errno;
    if (err == EEXIST) {
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
            return 0;
        return VERR_ALREADY_EXISTS;
    }
    return rt_err_from_errno(err);
}

int rt_dir_create_all(const char *path, unsigned mode)
{
    if (!path || !*path)
        return VERR_INVALID_PARAMETER;
    char *copy = strdup(path);
    if (!copy)
        return VERR_NO_MEMORY;
    int rc = 0;
    /* Create each ancestor in turn: cut the string at every separator after a name. */
    for (char *p = copy + 1; *p && rc == 0; p++) {
        if (*p == '/' && p[-1] != '/') {
            *p = '\0';
            rc = path_mkdir_one(copy, mode);
            *p = '/';
        }
    }
    if (rc == 0)
        rc = path_mkdir_one(copy, mode);
    free(copy);
    return rc;
}

int rt_file_read_all(const char *path, size_t max_bytes, void **out, size_t *len)
{
    if (!path || !out)
        return VERR_INVALID_PARAMETER;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return rt_err_from_errno(errno);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int rc = rt_err_from_errno(errno);
        close(fd);
        return rc;
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return VERR_IS_A_DIRECTORY;
    }
    if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > max_bytes) {
        close(fd);
        return VERR_TOO_LARGE;
    }

    /*
     * The size is only a hint (the file may grow, /proc reports 0): read until
     * EOF, holding at most one byte past the limit to notice a file too large.
     */
    size_t limit = max_bytes < SIZE_MAX - 1 ? max_bytes + 1 : SIZE_MAX - 1;
    size_t cap = S_ISREG(st.st_mode) && st.st_size > 0 ? (size_t)st.st_size + 1 : PATH_READ_CHUNK_BYTES;
    if (cap > limit)
        cap = limit;
    char *buf = malloc(cap + 1);
    if (!buf) {
        close(fd);
        return VERR_NO_MEMORY;
    }
    size_t used = 0;
    int rc = 0;
    for (;;) {
        if (used == cap) {
            if (used > max_bytes) {
                rc = VERR_TOO_LARGE;
                break;
            }
            size_t new_cap = cap > limit / 2 ? limit : cap * 2;
            char *grown = realloc(buf, new_cap + 1);
            if (!grown) {
                rc = VERR_NO_MEMORY;
                break;
            }
            buf = grown;
            cap = new_cap;
        }
        ssize_t n = read(fd, buf + used, cap - used);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = rt_err_from_errno(errno);
            break;
        }
        if (n == 0)
            break;
        used += (size_t)n;
    }
    close(fd);
    if (rc == 0 && used > max_bytes)
        rc = VERR_TOO_LARGE;
    if (rc < 0) {
        free(buf);
        return rc;
    }
    buf[used] = '\0';
    *out = buf;
    if (len)
        *len = used;
    return 0;
}

static int path_write_fd_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return rt_err_from_errno(errno);
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int path_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return rt_err_from_errno(errno);
    int rc = fsync(fd) == 0 ? 0 : rt_err_from_errno(errno);
    close(fd);
    return rc;
}

/*
 * The data goes to a hidden temp file beside the target, is flushed to disk and
 * then renamed over the target, so a reader (or a crash) sees either the whole
 * old file or the whole new one.  The folder is flushed last so that the rename
 * itself survives a power cut.  If anything fails before the rename, the temp
 * file is removed and the old file is untouched; a failing folder flush after
 * the rename is still reported, since durability is then not guaranteed.
 */
int rt_file_write_atomic(const char *path, const void *data, size_t len, unsigned mode)
{
    if (!path || !*path || (!data && len > 0))
        return VERR_INVALID_PARAMETER;
    char *dir = rt_path_dirname(path);
    if (!dir)
        return VERR_NO_MEMORY;
    const char *base = rt_path_basename(path);
    if (!*base) {
        free(dir);
        return VERR_INVALID_PARAMETER;
    }
    char *tmp_path = rt_strdup_printf("%s/.%s.XXXXXX", dir, base);
    if (!tmp_path) {
        free(dir);
        return VERR_NO_MEMORY;
    }
    int fd = mkostemp(tmp_path, O_CLOEXEC);
    if (fd < 0) {
        int rc = rt_err_from_errno(errno);
        free(tmp_path);
        free(dir);
        return rc;
    }
    int rc = 0;
    /* mkostemp creates 0600; set the mode asked for explicitly, umask does not apply. */
    if (fchmod(fd, (mode_t)mode) != 0)
        rc = rt_err_from_errno(errno);
    if (rc == 0)
        rc = path_write_fd_all(fd, data, len);
    if (rc == 0 && fsync(fd) != 0)
        rc = rt_err_from_errno(errno);
    if (close(fd) != 0 && rc == 0)
        rc = rt_err_from_errno(errno);
    if (rc == 0 && rename(tmp_path, path) != 0)
        rc = rt_err_from_errno(errno);
    if (rc < 0) {
        unlink(tmp_path);
    } else {
        rc = path_fsync_dir(dir);
    }
    free(tmp_path);
    free(dir);
    return rc;
}
