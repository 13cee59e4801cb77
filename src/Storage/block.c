/* block.c - the generic block layer: opening images and their backing chains, locking, range checks, I/O and the helpers format code uses. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block-core.h"

#define LOG_COMPONENT "block"

/*
 * Design.  An image is one open file plus the format table that understands it;
 * a differencing image holds its open parent in img->backing, and reads the top
 * file does not hold fall through to it (blk_layer_read_below).  This file owns
 * everything formats should not care about:
 *
 * - Opening: the file is first opened read-only to probe its header, then (for a
 *   writable image) reopened read-write and checked to be the same inode, so that
 *   an ISO opened without BLK_OPEN_READONLY still ends up read-only and shared.
 *   Every file is flock()ed: exclusive when writable, shared when read-only, so two
 *   VMs may share a base image but never write the same file.
 * - Chains: each parent is opened read-only; loops are found by comparing the
 *   (st_dev, st_ino) of the new file with every file below it in the chain, and the
 *   chain is cut at BLK_MAX_CHAIN files.
 * - Locking: img->lock is held around every call into the format, except for reads
 *   and writes of formats that declare themselves concurrent (raw, ISO).  Lock order
 *   is child before parent, because a child's read may read its parent.
 * - Durability: writes set img->written; blk_flush asks the format to write its
 *   metadata and then fdatasync()s the written files.
 *
 * Creation, conversion, commit, resize and check live in block-create.c.
 */

/* Zeroes for write-zeroes fallbacks and reads below a chain's end. */
static const uint8_t g_blk_zero_buf[64 * 1024];

static const char *const g_blk_format_names[] = {
    [BLK_FMT_AUTO] = "auto", [BLK_FMT_RAW] = "raw", [BLK_FMT_VDI] = "vdi",
    [BLK_FMT_QCOW2] = "qcow2", [BLK_FMT_VMDK] = "vmdk", [BLK_FMT_ISO] = "iso",
};

const char *blk_format_name(enum blk_format fmt)
{
    if ((unsigned)fmt >= RT_ARRAY_SIZE(g_blk_format_names) || fmt == BLK_FMT_AUTO)
        return NULL;
    return g_blk_format_names[fmt];
}

int blk_format_from_name(const char *name, enum blk_format *out)
{
    if (!name || !out)
        return VERR_INVALID_PARAMETER;
    for (unsigned i = 0; i < RT_ARRAY_SIZE(g_blk_format_names); i++) {
        if (strcasecmp(name, g_blk_format_names[i]) == 0) {
            *out = (enum blk_format)i;
            return 0;
        }
    }
    return VERR_NOT_FOUND;
}

const struct blk_format_ops *blk_format_ops_find(enum blk_format fmt)
{
    for (unsigned i = 0; g_blk_formats[i]; i++) {
        if (g_blk_formats[i]->format == fmt)
            return g_blk_formats[i];
    }
    return NULL;
}

/* ---- Paths --------------------------------------------------------------------- */

char *blk_path_absolute(const char *path)
{
    char *real = realpath(path, NULL);
    if (real)
        return real;
    if (path[0] == '/')
        return strdup(path);
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof(cwd)))
        return strdup(path);
    return rt_path_join(cwd, path);
}

char *blk_backing_resolve(const char *child_path, const char *backing_name)
{
    if (backing_name[0] == '/')
        return strdup(backing_name);
    char *dir = rt_path_dirname(child_path);
    if (!dir)
        return NULL;
    char *joined = rt_path_join(dir, backing_name);
    free(dir);
    return joined;
}

/* ---- Opening ------------------------------------------------------------------- */

/* Reads up to len bytes from the start of a file being probed; *got may be short at EOF. */
static int blk_read_head(const char *path, int fd, uint8_t *buf, size_t len, size_t *got)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(fd, buf + done, len - done, (off_t)done);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int err = errno;
            LOG_ERR("%s: cannot read the header: %s", path, rt_err_str(err));
            return VERR_IO;
        }
        if (n == 0)
            break;
        done += (size_t)n;
    }
    *got = done;
    return 0;
}

static bool blk_name_is_iso(const char *path)
{
    size_t len = strlen(path);
    return len >= 4 && strcasecmp(path + len - 4, ".iso") == 0;
}

/* The best-scoring format for this header; ties go to the earlier table entry. */
static const struct blk_format_ops *blk_probe(const char *path, const uint8_t *head, size_t head_len,
                                              uint64_t file_bytes)
{
    const struct blk_format_ops *best = NULL;
    int best_score = 0;
    for (unsigned i = 0; g_blk_formats[i]; i++) {
        const struct blk_format_ops *ops = g_blk_formats[i];
        if (!ops->probe)
            continue;
        int score = ops->probe(head, head_len, file_bytes, path);
        if (score > best_score) {
            best = ops;
            best_score = score;
        }
    }
    if (best)
        return best;
    return blk_format_ops_find(blk_name_is_iso(path) ? BLK_FMT_ISO : BLK_FMT_RAW);
}

static int blk_open_errno(const char *path, const char *what, int err)
{
    int rc = rt_err_from_errno(err);
    LOG_ERR("%s: cannot %s: %s", path, what, rt_err_str(err));
    return rc;
}

/* Takes the advisory lock that keeps two writers (or a writer and readers) apart. */
static int blk_lock_fd(const char *path, int fd, bool exclusive)
{
    while (flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) < 0) {
        if (errno == EINTR)
            continue;
        if (errno == EWOULDBLOCK) {
            LOG_ERR("%s: in use: %s", path,
                    exclusive ? "it is open elsewhere" : "it is open for writing elsewhere");
            return VERR_BUSY;
        }
        return blk_open_errno(path, "lock the file", errno);
    }
    return 0;
}

/* Checks the chain below the new file (child and its children) for loops and length. */
static int blk_chain_check(const char *path, const struct stat *st, struct blk_image *child)
{
    unsigned depth = 1;
    for (struct blk_image *c = child; c; c = c->child) {
        struct blk_file *f = blk_file_of(c);
        if (f->dev == st->st_dev && f->ino == st->st_ino) {
            LOG_ERR("%s: backing chain loop: its backing file %s is already in the chain (as %s)",
                    child->path, path, c->path);
            return VERR_BAD_FORMAT;
        }
        depth++;
    }
    if (depth > BLK_MAX_CHAIN) {
        LOG_ERR("%s: backing chain too long: %s would be file %u (at most %u)", child->path, path, depth,
                BLK_MAX_CHAIN);
        return VERR_BAD_FORMAT;
    }
    return 0;
}

static void blk_image_free(struct blk_image *img)
{
    if (img->fd >= 0) {
        flock(img->fd, LOCK_UN);
        close(img->fd);
    }
    rt_mutex_destroy(&img->lock);
    free(img->backing_name);
    free(img->path);
    free(blk_file_of(img));
}

/* Opens img->backing_name read-only under img and lets the format check it. */
static int blk_open_backing(struct blk_image *img)
{
    if (!img->backing_name[0])
        return blk_bad_format(img, "empty backing file name");
    /* Absolute, so that commit can reopen it after the working directory changed. */
    char *resolved = blk_backing_resolve(img->path, img->backing_name);
    char *bpath = resolved ? blk_path_absolute(resolved) : NULL;
    free(resolved);
    if (!bpath)
        return VERR_NO_MEMORY;
    int rc = blk_open_internal(bpath, img->backing_format, BLK_OPEN_READONLY, img, &img->backing);
    if (rc < 0) {
        LOG_ERR("%s: cannot open its backing file %s: %s", img->path, bpath, rt_err_str(rc));
        free(bpath);
        return rc;
    }
    free(bpath);
    if (img->ops->backing_opened) {
        rc = img->ops->backing_opened(img);
        if (rc < 0) {
            LOG_ERR("%s: backing file %s does not match it: %s", img->path, img->backing->path,
                    rt_err_str(rc));
            return rc;
        }
    }
    return 0;
}

int blk_open_internal(const char *path, enum blk_format fmt, unsigned flags, struct blk_image *child,
                      struct blk_image **out)
{
    *out = NULL;
    const struct blk_format_ops *ops = NULL;
    if (fmt != BLK_FMT_AUTO) {
        ops = blk_format_ops_find(fmt);
        if (!ops) {
            LOG_ERR("%s: format %s is not supported by this build", path,
                    blk_format_name(fmt) ? blk_format_name(fmt) : "(unknown)");
            return VERR_NOT_SUPPORTED;
        }
    }

    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return blk_open_errno(path, "open", errno);
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int rc = blk_open_errno(path, "stat", errno);
        close(fd);
        return rc;
    }
    int rc = 0;
    if (S_ISDIR(st.st_mode)) {
        LOG_ERR("%s: is a directory, not a disk image", path);
        rc = VERR_IS_A_DIRECTORY;
    } else if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
        LOG_ERR("%s: not a regular file or block device", path);
        rc = VERR_NOT_SUPPORTED;
    } else if (child) {
        rc = blk_chain_check(path, &st, child);
    }
    uint64_t file_bytes = (uint64_t)st.st_size;
    if (rc == 0 && S_ISBLK(st.st_mode)) {
        off_t end = lseek(fd, 0, SEEK_END);
        if (end < 0)
            rc = blk_open_errno(path, "find the device's size", errno);
        file_bytes = (uint64_t)end;
    }
    if (rc < 0) {
        close(fd);
        return rc;
    }

    if (!ops) {
        uint8_t *head = malloc(BLK_PROBE_BYTES);
        if (!head) {
            close(fd);
            return VERR_NO_MEMORY;
        }
        size_t head_len = 0;
        rc = blk_read_head(path, fd, head, BLK_PROBE_BYTES, &head_len);
        if (rc == 0)
            ops = blk_probe(path, head, head_len, file_bytes);
        free(head);
        if (rc < 0) {
            close(fd);
            return rc;
        }
        LOG_DEBUG("%s: probed as %s", path, ops->name);
    }

    bool readonly = (flags & BLK_OPEN_READONLY) || ops->format == BLK_FMT_ISO || !ops->write;
    if (!readonly) {
        int rw = open(path, O_RDWR | O_CLOEXEC);
        if (rw < 0) {
            rc = blk_open_errno(path, "open for writing", errno);
            close(fd);
            return rc;
        }
        struct stat st2;
        if (fstat(rw, &st2) < 0 || st2.st_dev != st.st_dev || st2.st_ino != st.st_ino) {
            LOG_ERR("%s: the file was replaced while it was being opened", path);
            close(rw);
            close(fd);
            return VERR_BUSY;
        }
        close(fd);
        fd = rw;
    }
    rc = blk_lock_fd(path, fd, !readonly);
    if (rc < 0) {
        close(fd);
        return rc;
    }

    struct blk_file *file = calloc(1, sizeof(*file));
    char *path_copy = strdup(path);
    if (!file || !path_copy || rt_mutex_init(&file->img.lock) < 0) {
        free(file);
        free(path_copy);
        flock(fd, LOCK_UN);
        close(fd);
        return VERR_NO_MEMORY;
    }
    file->dev = st.st_dev;
    file->ino = st.st_ino;
    file->is_blockdev = S_ISBLK(st.st_mode);
    struct blk_image *img = &file->img;
    img->ops = ops;
    img->fd = fd;
    img->path = path_copy;
    img->readonly = readonly;
    img->flags = flags;
    img->child = child;
    img->backing_format = BLK_FMT_AUTO;
    img->probed_raw = fmt == BLK_FMT_AUTO && ops->format == BLK_FMT_RAW;

    rc = ops->open(img);
    if (rc < 0) {
        img->backing_name = NULL; /* the format's open() freed whatever it set */
        blk_image_free(img);
        return rc;
    }
    if (img->size_bytes > BLK_MAX_SIZE_BYTES) {
        rc = blk_bad_format(img, "virtual size %llu is larger than %llu bytes",
                            (unsigned long long)img->size_bytes, (unsigned long long)BLK_MAX_SIZE_BYTES);
    } else if (img->backing_name && !(flags & BLK_OPEN_NO_BACKING)) {
        rc = blk_open_backing(img);
    }
    if (rc < 0) {
        blk_close(img->backing);
        img->backing = NULL;
        if (ops->close)
            ops->close(img);
        blk_image_free(img);
        return rc;
    }
    *out = img;
    return 0;
}

int blk_open(const char *path, enum blk_format fmt, unsigned flags, struct blk_image **out)
{
    if (!out)
        return VERR_INVALID_PARAMETER;
    *out = NULL;
    if (!path || !*path || (unsigned)fmt > BLK_FMT_ISO ||
        (flags & ~(BLK_OPEN_READONLY | BLK_OPEN_NO_BACKING)))
        return VERR_INVALID_PARAMETER;
    return blk_open_internal(path, fmt, flags, NULL, out);
}

void blk_close(struct blk_image *img)
{
    while (img) {
        struct blk_image *parent = img->backing;
        rt_mutex_lock(&img->lock);
        if (img->ops->close)
            img->ops->close(img);
        rt_mutex_unlock(&img->lock);
        blk_image_free(img);
        if (parent)
            parent->child = NULL;
        img = parent;
    }
}

/* ---- Reopening (commit) ------------------------------------------------------------ */

static int blk_dead_io(struct blk_image *img, uint64_t offset, void *buf, size_t len)
{
    return VERR_IO;
}

static int blk_dead_write(struct blk_image *img, uint64_t offset, const void *buf, size_t len)
{
    return VERR_IO;
}

static void blk_dead_close(struct blk_image *img)
{
}

/*
 * What an image becomes when its format could not be opened again after a
 * reopen: every access fails instead of touching freed format state.
 */
static const struct blk_format_ops g_blk_format_dead = {
    .format = BLK_FMT_RAW,
    .name = "unusable",
    .close = blk_dead_close,
    .read = blk_dead_io,
    .write = blk_dead_write,
};

/* Swaps img's descriptor for fd (already locked) and opens the format on it again. */
static int blk_reopen_fd(struct blk_image *img, int fd, bool readonly)
{
    char *saved_name = img->backing_name;
    enum blk_format saved_format = img->backing_format;
    if (img->ops->close)
        img->ops->close(img);
    img->priv = NULL;
    img->backing_name = NULL;
    int old_fd = img->fd;
    img->fd = fd;
    img->readonly = readonly;
    img->flags = readonly ? img->flags | BLK_OPEN_READONLY : img->flags & ~BLK_OPEN_READONLY;
    int rc = img->ops->open(img);
    if (rc == 0 && img->backing && img->ops->backing_opened)
        rc = img->ops->backing_opened(img);
    if (rc < 0) {
        LOG_ERR("%s: cannot open it again: %s", img->path, rt_err_str(rc));
        img->ops = &g_blk_format_dead;
        img->priv = NULL;
    }
    free(img->backing_name);
    img->backing_name = saved_name;
    img->backing_format = saved_format;
    flock(old_fd, LOCK_UN);
    close(old_fd);
    return rc;
}

int blk_reopen(struct blk_image *img, bool writable)
{
    rt_mutex_lock(&img->lock);
    if (writable == !img->readonly) {
        rt_mutex_unlock(&img->lock);
        return 0;
    }
    if (img->ops->format == BLK_FMT_ISO || !img->ops->write) {
        rt_mutex_unlock(&img->lock);
        LOG_ERR("%s: %s images cannot be written", img->path, img->ops->name);
        return VERR_ACCESS_DENIED;
    }
    int rc;
    int fd = open(img->path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    struct stat st;
    if (fd < 0) {
        rc = blk_open_errno(img->path, writable ? "open for writing" : "open", errno);
        goto out;
    }
    if (fstat(fd, &st) < 0 || st.st_dev != blk_file_of(img)->dev || st.st_ino != blk_file_of(img)->ino) {
        LOG_ERR("%s: the file was replaced while it was open", img->path);
        close(fd);
        rc = VERR_BUSY;
        goto out;
    }
    if (writable) {
        /* Our own shared lock would refuse the exclusive one: drop it first, take it back on failure. */
        flock(img->fd, LOCK_UN);
        rc = blk_lock_fd(img->path, fd, true);
        if (rc < 0) {
            if (flock(img->fd, LOCK_SH | LOCK_NB) < 0)
                LOG_WARN("%s: could not take its shared lock back", img->path);
            close(fd);
            goto out;
        }
    } else {
        /* Shared on both descriptors at once, so the file is never unlocked in between. */
        flock(img->fd, LOCK_SH);
        rc = blk_lock_fd(img->path, fd, false);
        if (rc < 0) {
            close(fd);
            goto out;
        }
    }
    rc = blk_reopen_fd(img, fd, !writable);
out:
    rt_mutex_unlock(&img->lock);
    return rc;
}

/* ---- Queries --------------------------------------------------------------------- */

uint64_t blk_size_bytes(const struct blk_image *img)
{
    return __atomic_load_n(&img->size_bytes, __ATOMIC_RELAXED);
}

bool blk_is_readonly(const struct blk_image *img)
{
    return img->readonly;
}

struct blk_image *blk_backing(const struct blk_image *img)
{
    return img->backing;
}

const char *blk_path(const struct blk_image *img)
{
    return img->path;
}

enum blk_format blk_format(const struct blk_image *img)
{
    return img->ops->format;
}

int blk_get_info(struct blk_image *img, struct blk_info *out)
{
    if (!img || !out)
        return VERR_INVALID_PARAMETER;
    memset(out, 0, sizeof(*out));
    out->format = img->ops->format;
    out->size_bytes = blk_size_bytes(img);
    out->readonly = img->readonly;
    int rc = blk_file_size(img, &out->file_bytes);
    if (rc < 0)
        return rc;
    struct stat st;
    if (fstat(img->fd, &st) == 0)
        out->allocated_bytes = (uint64_t)st.st_blocks * 512;
    if (img->backing_name) {
        char *abs = NULL;
        if (img->backing) {
            abs = blk_path_absolute(img->backing->path);
        } else {
            char *resolved = blk_backing_resolve(img->path, img->backing_name);
            if (resolved)
                abs = blk_path_absolute(resolved);
            free(resolved);
        }
        if (!abs)
            return VERR_NO_MEMORY;
        if (strlen(abs) >= sizeof(out->backing_path)) {
            free(abs);
            return VERR_TOO_LARGE;
        }
        rt_strlcpy(out->backing_path, abs, sizeof(out->backing_path));
        free(abs);
        out->backing_format = img->backing_format;
    }
    if (img->ops->info) {
        rt_mutex_lock(&img->lock);
        img->ops->info(img, out);
        rt_mutex_unlock(&img->lock);
    }
    return 0;
}

/* ---- I/O ------------------------------------------------------------------------- */

static int blk_range_check(struct blk_image *img, uint64_t offset, uint64_t len)
{
    uint64_t size = blk_size_bytes(img);
    if (offset > size || len > size - offset)
        return VERR_OUT_OF_RANGE;
    return 0;
}

static int blk_do_read(struct blk_image *img, uint64_t offset, void *buf, size_t len)
{
    if (img->ops->concurrent) {
        int rc = blk_range_check(img, offset, len);
        return rc < 0 ? rc : img->ops->read(img, offset, buf, len);
    }
    rt_mutex_lock(&img->lock);
    int rc = blk_range_check(img, offset, len);
    if (rc == 0)
        rc = img->ops->read(img, offset, buf, len);
    rt_mutex_unlock(&img->lock);
    return rc;
}

/*
 * A raw image found by probing must never become another format through what the guest
 * writes: opened again with probing, a qcow2, VDI or VMDK header written by the guest
 * would name any host file as its parent.  So a write into the probed area is applied to
 * a copy of the header first and refused (the guest sees an I/O error) when the result
 * would probe as a format with metadata.  Naming the format (raw) lifts the guard.
 */
static int blk_probed_raw_guard(struct blk_image *img, uint64_t offset, const void *buf, size_t len)
{
    size_t head_len = (size_t)RT_MIN((uint64_t)BLK_PROBE_BYTES, img->size_bytes);
    if (offset >= head_len)
        return 0;
    uint8_t *head = malloc(head_len);
    if (!head)
        return VERR_NO_MEMORY;
    int rc = img->ops->read(img, 0, head, head_len);
    if (rc == 0) {
        memcpy(head + offset, buf, RT_MIN(len, head_len - (size_t)offset));
        const struct blk_format_ops *ops = blk_probe(img->path, head, head_len, img->size_bytes);
        if (ops->format != BLK_FMT_RAW && ops->format != BLK_FMT_ISO) {
            LOG_WARN("%s: refused a write that would turn this image, taken as raw by probing, into a %s header; "
                     "give its format (raw) explicitly to allow it",
                     img->path, ops->name);
            rc = VERR_ACCESS_DENIED;
        }
    }
    free(head);
    return rc;
}

static int blk_do_write(struct blk_image *img, uint64_t offset, const void *buf, size_t len)
{
    int rc;
    if (img->probed_raw && offset < BLK_PROBE_BYTES && (rc = blk_probed_raw_guard(img, offset, buf, len)))
        return rc;
    if (img->ops->concurrent) {
        rc = blk_range_check(img, offset, len);
        if (rc == 0)
            rc = img->ops->write(img, offset, buf, len);
    } else {
        rt_mutex_lock(&img->lock);
        rc = blk_range_check(img, offset, len);
        if (rc == 0)
            rc = img->ops->write(img, offset, buf, len);
        rt_mutex_unlock(&img->lock);
    }
    /* Even a failed write may have changed the file: flush must sync it. */
    __atomic_store_n(&img->written, true, __ATOMIC_RELAXED);
    return rc;
}

int blk_read(struct blk_image *img, uint64_t offset, void *buf, size_t len)
{
    if (!img || (!buf && len))
        return VERR_INVALID_PARAMETER;
    int rc = blk_range_check(img, offset, len);
    if (rc < 0 || len == 0)
        return rc;
    return blk_do_read(img, offset, buf, len);
}

int blk_write(struct blk_image *img, uint64_t offset, const void *buf, size_t len)
{
    if (!img || (!buf && len))
        return VERR_INVALID_PARAMETER;
    if (img->readonly)
        return VERR_ACCESS_DENIED;
    int rc = blk_range_check(img, offset, len);
    if (rc < 0 || len == 0)
        return rc;
    return blk_do_write(img, offset, buf, len);
}

/* The total length of an iovec array, checked for overflow and NULL buffers. */
static int blk_iov_total(const struct iovec *iov, int iovcnt, uint64_t *total)
{
    if (iovcnt < 0 || (iovcnt > 0 && !iov))
        return VERR_INVALID_PARAMETER;
    uint64_t sum = 0;
    for (int i = 0; i < iovcnt; i++) {
        if (!iov[i].iov_base && iov[i].iov_len)
            return VERR_INVALID_PARAMETER;
        if (iov[i].iov_len > UINT64_MAX - sum)
            return VERR_OUT_OF_RANGE;
        sum += iov[i].iov_len;
    }
    *total = sum;
    return 0;
}

/*
 * Vectored file I/O for flat formats: one preadv/pwritev per batch of iovecs instead of
 * one call per guest scatter/gather piece.  Short transfers continue where they stopped;
 * a read past the end of the file (another process shortened it) gives zeroes, as
 * raw_read does.
 */
#define BLK_IOV_BATCH 64
static int blk_file_range_ok(struct blk_image *img, uint64_t file_offset, size_t len, const char *what);
static int blk_file_rwv(struct blk_image *img, uint64_t offset, const struct iovec *iov, int iovcnt, bool write)
{
    int i = 0;
    size_t skip = 0; /* bytes of iov[i] already done */
    while (i < iovcnt && iov[i].iov_len == 0)
        i++;
    while (i < iovcnt) {
        struct iovec batch[BLK_IOV_BATCH];
        int n = 0;
        for (int j = i; j < iovcnt && n < BLK_IOV_BATCH; j++, n++) {
            size_t from = j == i ? skip : 0;
            batch[n].iov_base = (uint8_t *)iov[j].iov_base + from;
            batch[n].iov_len = iov[j].iov_len - from;
        }
        ssize_t got = write ? pwritev(img->fd, batch, n, (off_t)offset) : preadv(img->fd, batch, n, (off_t)offset);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            int err = errno;
            LOG_ERR("%s: %s at %llu failed: %s", img->path, write ? "write" : "read", (unsigned long long)offset,
                    rt_err_str(err));
            return VERR_IO;
        }
        if (got == 0 && write) {
            LOG_ERR("%s: write at %llu made no progress", img->path, (unsigned long long)offset);
            return VERR_IO;
        }
        if (got == 0) {
            for (int j = i; j < iovcnt; j++, skip = 0)
                memset((uint8_t *)iov[j].iov_base + skip, 0, iov[j].iov_len - skip);
            return 0;
        }
        offset += (uint64_t)got;
        size_t left = (size_t)got;
        while (i < iovcnt && (left > 0 || iov[i].iov_len == skip)) {
            size_t step = RT_MIN(left, iov[i].iov_len - skip);
            left -= step;
            skip += step;
            if (skip == iov[i].iov_len) {
                i++;
                skip = 0;
            }
        }
    }
    return 0;
}

int blk_readv(struct blk_image *img, uint64_t offset, const struct iovec *iov, int iovcnt)
{
    uint64_t total;
    if (!img)
        return VERR_INVALID_PARAMETER;
    int rc = blk_iov_total(iov, iovcnt, &total);
    if (rc == 0)
        rc = blk_range_check(img, offset, total);
    if (rc == 0 && img->ops->flat && total)
        return blk_file_rwv(img, offset, iov, iovcnt, false);
    for (int i = 0; rc == 0 && i < iovcnt; i++) {
        if (!iov[i].iov_len)
            continue;
        rc = blk_do_read(img, offset, iov[i].iov_base, iov[i].iov_len);
        offset += iov[i].iov_len;
    }
    return rc;
}

int blk_writev(struct blk_image *img, uint64_t offset, const struct iovec *iov, int iovcnt)
{
    uint64_t total;
    if (!img)
        return VERR_INVALID_PARAMETER;
    if (img->readonly)
        return VERR_ACCESS_DENIED;
    int rc = blk_iov_total(iov, iovcnt, &total);
    if (rc == 0)
        rc = blk_range_check(img, offset, total);
    /* A probed raw image's header area goes through blk_do_write and its guard. */
    if (rc == 0 && img->ops->flat && total && !(img->probed_raw && offset < BLK_PROBE_BYTES)) {
        rc = blk_file_range_ok(img, offset, (size_t)total, "write");
        if (rc == 0)
            rc = blk_file_rwv(img, offset, iov, iovcnt, true);
        __atomic_store_n(&img->written, true, __ATOMIC_RELAXED);
        return rc;
    }
    for (int i = 0; rc == 0 && i < iovcnt; i++) {
        if (!iov[i].iov_len)
            continue;
        rc = blk_do_write(img, offset, iov[i].iov_base, iov[i].iov_len);
        offset += iov[i].iov_len;
    }
    return rc;
}

int blk_flush(struct blk_image *img)
{
    if (!img)
        return VERR_INVALID_PARAMETER;
    int rc = 0;
    if (img->ops->flush) {
        rt_mutex_lock(&img->lock);
        rc = img->ops->flush(img);
        rt_mutex_unlock(&img->lock);
    }
    for (struct blk_image *f = img; f; f = f->backing) {
        /* Cleared before the sync: a write that lands meanwhile sets it again for the next flush. */
        if (!__atomic_exchange_n(&f->written, false, __ATOMIC_ACQ_REL))
            continue;
        int src = blk_file_sync(f);
        if (src < 0) {
            __atomic_store_n(&f->written, true, __ATOMIC_RELAXED);
            if (rc == 0)
                rc = src;
        }
    }
    return rc;
}

int blk_discard(struct blk_image *img, uint64_t offset, uint64_t len)
{
    if (!img)
        return VERR_INVALID_PARAMETER;
    if (img->readonly)
        return VERR_ACCESS_DENIED;
    int rc = blk_range_check(img, offset, len);
    if (rc < 0 || len == 0 || !img->ops->discard)
        return rc;
    rt_mutex_lock(&img->lock);
    rc = blk_range_check(img, offset, len);
    if (rc == 0)
        rc = img->ops->discard(img, offset, len);
    rt_mutex_unlock(&img->lock);
    __atomic_store_n(&img->written, true, __ATOMIC_RELAXED);
    return rc;
}

int blk_write_zeroes(struct blk_image *img, uint64_t offset, uint64_t len)
{
    if (!img)
        return VERR_INVALID_PARAMETER;
    if (img->readonly)
        return VERR_ACCESS_DENIED;
    int rc = blk_range_check(img, offset, len);
    if (rc < 0 || len == 0)
        return rc;
    if (img->ops->write_zeroes) {
        rt_mutex_lock(&img->lock);
        rc = blk_range_check(img, offset, len);
        if (rc == 0)
            rc = img->ops->write_zeroes(img, offset, len);
        rt_mutex_unlock(&img->lock);
        __atomic_store_n(&img->written, true, __ATOMIC_RELAXED);
        return rc;
    }
    while (len > 0 && rc == 0) {
        size_t n = (size_t)RT_MIN(len, (uint64_t)sizeof(g_blk_zero_buf));
        rc = blk_do_write(img, offset, g_blk_zero_buf, n);
        offset += n;
        len -= n;
    }
    return rc;
}

int blk_block_status(struct blk_image *img, uint64_t offset, uint64_t len, bool *allocated, uint64_t *pnum)
{
    if (!img || !allocated || !pnum || len == 0)
        return VERR_INVALID_PARAMETER;
    int rc = blk_range_check(img, offset, len);
    if (rc < 0)
        return rc;
    if (!img->ops->block_status) {
        *allocated = true;
        *pnum = len;
        return 0;
    }
    bool alloc = false;
    uint64_t num = 0;
    rt_mutex_lock(&img->lock);
    rc = blk_range_check(img, offset, len);
    if (rc == 0)
        rc = img->ops->block_status(img, offset, len, &alloc, &num);
    rt_mutex_unlock(&img->lock);
    if (rc < 0)
        return rc;
    if (num == 0 || num > len) {
        LOG_ERR("%s: %s block status gave a run of %llu bytes for %llu", img->path, img->ops->name,
                (unsigned long long)num, (unsigned long long)len);
        return VERR_GENERAL;
    }
    *allocated = alloc;
    *pnum = num;
    return 0;
}

int blk_chain_status(struct blk_image *img, uint64_t offset, uint64_t len, bool *allocated, uint64_t *pnum)
{
    for (struct blk_image *layer = img; layer; layer = layer->backing) {
        uint64_t size = blk_size_bytes(layer);
        if (offset >= size)
            break; /* past this layer's end everything below reads as zeroes */
        bool alloc;
        uint64_t num;
        int rc = blk_block_status(layer, offset, RT_MIN(len, size - offset), &alloc, &num);
        if (rc < 0)
            return rc;
        if (alloc) {
            *allocated = true;
            *pnum = num;
            return 0;
        }
        len = num;
    }
    *allocated = false;
    *pnum = len;
    return 0;
}

int blk_layer_read_below(struct blk_image *img, uint64_t offset, void *buf, size_t len)
{
    struct blk_image *parent = img->backing;
    size_t from_parent = 0;
    if (parent) {
        uint64_t psize = blk_size_bytes(parent);
        if (offset < psize)
            from_parent = (size_t)RT_MIN((uint64_t)len, psize - offset);
        if (from_parent) {
            int rc = blk_read(parent, offset, buf, from_parent);
            if (rc < 0)
                return rc;
        }
    }
    memset((uint8_t *)buf + from_parent, 0, len - from_parent);
    return 0;
}

/* ---- Helpers for format code ------------------------------------------------------- */

static int blk_file_range_ok(struct blk_image *img, uint64_t file_offset, size_t len, const char *what)
{
    if (file_offset > (uint64_t)INT64_MAX || len > (uint64_t)INT64_MAX - file_offset) {
        LOG_ERR("%s: %s at file offset %llu (+%zu) is out of range", img->path, what,
                (unsigned long long)file_offset, len);
        return VERR_OUT_OF_RANGE;
    }
    return 0;
}

/* Reads as much as the file has; *got is short only at end of file. */
static int blk_file_read_upto(struct blk_image *img, uint64_t file_offset, void *buf, size_t len, size_t *got)
{
    int rc = blk_file_range_ok(img, file_offset, len, "read");
    if (rc < 0)
        return rc;
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(img->fd, (uint8_t *)buf + done, len - done, (off_t)(file_offset + done));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int err = errno;
            LOG_ERR("%s: read of %zu bytes at %llu failed: %s", img->path, len - done,
                    (unsigned long long)(file_offset + done), rt_err_str(err));
            return VERR_IO;
        }
        if (n == 0)
            break;
        done += (size_t)n;
    }
    *got = done;
    return 0;
}

int blk_file_read(struct blk_image *img, uint64_t file_offset, void *buf, size_t len)
{
    size_t got = 0;
    int rc = blk_file_read_upto(img, file_offset, buf, len, &got);
    if (rc == 0 && got < len) {
        LOG_ERR("%s: file ends inside %zu bytes wanted at %llu", img->path, len,
                (unsigned long long)file_offset);
        return VERR_TRUNCATED;
    }
    return rc;
}

int blk_file_read_zero_tail(struct blk_image *img, uint64_t file_offset, void *buf, size_t len)
{
    size_t got = 0;
    int rc = blk_file_read_upto(img, file_offset, buf, len, &got);
    if (rc == 0 && got < len)
        memset((uint8_t *)buf + got, 0, len - got);
    return rc;
}

int blk_file_write(struct blk_image *img, uint64_t file_offset, const void *buf, size_t len)
{
    int rc = blk_file_range_ok(img, file_offset, len, "write");
    if (rc < 0)
        return rc;
    size_t done = 0;
    while (done < len) {
        ssize_t n = pwrite(img->fd, (const uint8_t *)buf + done, len - done, (off_t)(file_offset + done));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int err = errno;
            LOG_ERR("%s: write of %zu bytes at %llu failed: %s", img->path, len - done,
                    (unsigned long long)(file_offset + done), rt_err_str(err));
            return VERR_IO;
        }
        if (n == 0) {
            LOG_ERR("%s: write at %llu made no progress", img->path, (unsigned long long)(file_offset + done));
            return VERR_IO;
        }
        done += (size_t)n;
    }
    return 0;
}

int blk_file_size(struct blk_image *img, uint64_t *out)
{
    if (blk_file_of(img)->is_blockdev) {
        off_t end = lseek(img->fd, 0, SEEK_END);
        if (end < 0) {
            int err = errno;
            LOG_ERR("%s: cannot find the device's size: %s", img->path, rt_err_str(err));
            return VERR_IO;
        }
        *out = (uint64_t)end;
        return 0;
    }
    struct stat st;
    if (fstat(img->fd, &st) < 0) {
        int err = errno;
        LOG_ERR("%s: stat failed: %s", img->path, rt_err_str(err));
        return VERR_IO;
    }
    *out = (uint64_t)st.st_size;
    return 0;
}

int blk_file_truncate(struct blk_image *img, uint64_t len)
{
    if (len > (uint64_t)INT64_MAX)
        return VERR_OUT_OF_RANGE;
    if (blk_file_of(img)->is_blockdev) {
        LOG_ERR("%s: a block device's size cannot be changed", img->path);
        return VERR_NOT_SUPPORTED;
    }
    while (ftruncate(img->fd, (off_t)len) < 0) {
        if (errno == EINTR)
            continue;
        int err = errno;
        LOG_ERR("%s: cannot set the file's length to %llu: %s", img->path, (unsigned long long)len,
                rt_err_str(err));
        return VERR_IO;
    }
    return 0;
}

int blk_file_sync(struct blk_image *img)
{
    while (fdatasync(img->fd) < 0) {
        if (errno == EINTR)
            continue;
        int err = errno;
        LOG_ERR("%s: fdatasync failed: %s", img->path, rt_err_str(err));
        return VERR_IO;
    }
    return 0;
}

int blk_bad_format(struct blk_image *img, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    LOG_ERR("%s: %s", img->path, msg);
    return VERR_BAD_FORMAT;
}

void blk_check_problem(struct blk_check_result *res, bool leak, const char *fmt, ...)
{
    if (leak)
        res->leaks++;
    else
        res->errors++;
    if (res->first_problem[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->first_problem, sizeof(res->first_problem), fmt, ap);
    va_end(ap);
}
