/* block-create.c - creating, converting, resizing, committing and checking images through the format tables. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block-core.h"

#define LOG_COMPONENT "block"

/*
 * New files appear complete or not at all: the format writes the empty image into
 * a temporary file in the destination's folder (created with O_EXCL), the file is
 * synced, and then renamed to its name without replacing anything there
 * (RENAME_NOREPLACE, or link+unlink where the file system lacks it).  Conversion
 * fills the temporary file before the rename, so a failed or interrupted
 * conversion leaves no half-written destination behind.
 */

/* Conversion and commit copy in pieces of this size. */
#define BLK_COPY_CHUNK (1024u * 1024u)
/* Zero detection granule during conversion: all-zero pieces of this size stay unallocated. */
#define BLK_ZERO_GRANULE (64u * 1024u)

static bool blk_is_zero(const uint8_t *buf, size_t len)
{
    return len == 0 || (buf[0] == 0 && memcmp(buf, buf + 1, len - 1) == 0);
}

static int blk_check_new_size(const char *path, uint64_t size)
{
    if (size == 0 || size % 512) {
        LOG_ERR("%s: size %llu is not a positive multiple of 512 bytes", path, (unsigned long long)size);
        return VERR_INVALID_PARAMETER;
    }
    if (size > BLK_MAX_SIZE_BYTES) {
        LOG_ERR("%s: size %llu is larger than the largest disk (%llu bytes)", path, (unsigned long long)size,
                (unsigned long long)BLK_MAX_SIZE_BYTES);
        return VERR_TOO_LARGE;
    }
    return 0;
}

static int blk_refuse_existing(const char *path)
{
    struct stat st;
    if (lstat(path, &st) == 0) {
        LOG_ERR("%s: already exists (images are never overwritten)", path);
        return VERR_ALREADY_EXISTS;
    }
    if (errno != ENOENT) {
        int err = errno;
        LOG_ERR("%s: cannot check the destination: %s", path, rt_err_str(err));
        return rt_err_from_errno(err);
    }
    return 0;
}

static int blk_sync_dir(const char *path)
{
    char *dir = rt_path_dirname(path);
    if (!dir)
        return VERR_NO_MEMORY;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = 0;
    if (fd < 0 || fsync(fd) < 0) {
        int err = errno;
        LOG_ERR("%s: cannot sync the folder: %s", dir, rt_err_str(err));
        rc = VERR_IO;
    }
    if (fd >= 0)
        close(fd);
    free(dir);
    return rc;
}

/*
 * Creates path's temporary sibling holding an empty image of the format (fsynced,
 * closed); *tmp_out is malloc'ed.  On failure nothing is left on disk.
 */
static int blk_create_temp(const char *path, const struct blk_format_ops *ops,
                           const struct blk_create_params *params, const char *backing,
                           struct blk_image *backing_img, char **tmp_out)
{
    char *dir = rt_path_dirname(path);
    if (!dir)
        return VERR_NO_MEMORY;
    char *tmp = NULL;
    int fd = -1;
    for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
        struct rt_uuid rnd;
        if (rt_uuid_generate(&rnd) < 0)
            memset(&rnd, attempt, sizeof(rnd));
        free(tmp);
        tmp = rt_strdup_printf("%s/.%s.tmp-%02x%02x%02x%02x", dir, rt_path_basename(path), rnd.bytes[0],
                               rnd.bytes[1], rnd.bytes[2], rnd.bytes[3]);
        if (!tmp)
            break;
        fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    free(dir);
    if (fd < 0) {
        int err = errno;
        if (!tmp)
            return VERR_NO_MEMORY;
        LOG_ERR("%s: cannot create a file in its folder: %s", path, rt_err_str(err));
        free(tmp);
        return rt_err_from_errno(err);
    }
    int rc = ops->create(fd, params, backing, backing_img);
    if (rc == 0 && fsync(fd) < 0) {
        int err = errno;
        LOG_ERR("%s: fsync failed: %s", tmp, rt_err_str(err));
        rc = VERR_IO;
    }
    if (close(fd) < 0 && rc == 0)
        rc = VERR_IO;
    if (rc < 0) {
        LOG_ERR("%s: cannot create the %s image: %s", path, ops->name, rt_err_str(rc));
        unlink(tmp);
        free(tmp);
        return rc;
    }
    *tmp_out = tmp;
    return 0;
}

/* Renames tmp to path without replacing an existing path; removes tmp on failure. */
static int blk_publish(const char *tmp, const char *path)
{
    int rc = 0;
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) < 0) {
        int err = errno;
        if (err == EINVAL || err == ENOSYS || err == ENOTSUP) {
            /* No RENAME_NOREPLACE here: link() refuses an existing name just the same. */
            if (link(tmp, path) == 0) {
                unlink(tmp);
                return blk_sync_dir(path);
            }
            err = errno;
        }
        LOG_ERR("%s: cannot move the new image into place: %s", path, rt_err_str(err));
        rc = err == EEXIST ? VERR_ALREADY_EXISTS : rt_err_from_errno(err);
        unlink(tmp);
        return rc;
    }
    return blk_sync_dir(path);
}

static const struct blk_format_ops *blk_create_ops(const char *path, enum blk_format fmt)
{
    const struct blk_format_ops *ops = blk_format_ops_find(fmt);
    if (!ops || !ops->create) {
        LOG_ERR("%s: cannot create %s images", path, blk_format_name(fmt) ? blk_format_name(fmt) : "such");
        return NULL;
    }
    return ops;
}

int blk_create(const char *path, const struct blk_create_params *params)
{
    if (!path || !*path || !params)
        return VERR_INVALID_PARAMETER;
    const struct blk_format_ops *ops = blk_create_ops(path, params->format);
    if (!ops)
        return VERR_NOT_SUPPORTED;
    int rc = blk_refuse_existing(path);
    if (rc < 0)
        return rc;

    struct blk_create_params p = *params;
    struct blk_image *parent = NULL;
    if (params->backing_path) {
        if (!params->backing_path[0]) {
            LOG_ERR("%s: empty backing file name", path);
            return VERR_INVALID_PARAMETER;
        }
        char *resolved = blk_backing_resolve(path, params->backing_path);
        if (!resolved)
            return VERR_NO_MEMORY;
        rc = blk_open_internal(resolved, params->backing_format, BLK_OPEN_READONLY, NULL, &parent);
        if (rc < 0)
            LOG_ERR("%s: cannot open the backing file %s: %s", path, resolved, rt_err_str(rc));
        free(resolved);
        if (rc < 0)
            return rc;
        if (p.size_bytes == 0)
            p.size_bytes = RT_ALIGN_UP(blk_size_bytes(parent), 512);
    }
    rc = blk_check_new_size(path, p.size_bytes);
    char *tmp = NULL;
    if (rc == 0)
        rc = blk_create_temp(path, ops, &p, params->backing_path, parent, &tmp);
    blk_close(parent);
    if (rc == 0)
        rc = blk_publish(tmp, path);
    free(tmp);
    if (rc == 0)
        LOG_INFO("%s: created %s image of %llu bytes", path, ops->name, (unsigned long long)p.size_bytes);
    return rc;
}

int blk_resize(struct blk_image *img, uint64_t new_size_bytes)
{
    if (!img)
        return VERR_INVALID_PARAMETER;
    if (img->readonly)
        return VERR_ACCESS_DENIED;
    int rc = blk_check_new_size(img->path, new_size_bytes);
    if (rc < 0)
        return rc;
    if (!img->ops->resize) {
        LOG_ERR("%s: %s images cannot be resized", img->path, img->ops->name);
        return VERR_NOT_SUPPORTED;
    }
    rt_mutex_lock(&img->lock);
    rc = img->ops->resize(img, new_size_bytes);
    rt_mutex_unlock(&img->lock);
    __atomic_store_n(&img->written, true, __ATOMIC_RELAXED);
    return rc;
}

/* ---- Conversion ---------------------------------------------------------------- */

struct blk_progress {
    blk_progress_fn *fn;
    void *opaque;
    uint64_t total;
    unsigned last_percent;
    bool ended; /* the call for done == total was made */
};

static void blk_progress_report(struct blk_progress *pr, uint64_t done)
{
    if (!pr->fn || pr->ended)
        return;
    unsigned percent = pr->total ? (unsigned)(done * 100 / pr->total) : 100;
    if (percent != pr->last_percent || done == pr->total) {
        pr->last_percent = percent;
        pr->ended = done == pr->total;
        pr->fn(pr->opaque, done, pr->total);
    }
}

/* Writes the non-zero granules of buf (disk offset offset) to dst. */
static int blk_write_nonzero(struct blk_image *dst, uint64_t offset, const uint8_t *buf, size_t len)
{
    size_t pos = 0;
    while (pos < len) {
        size_t n = RT_MIN(len - pos, (size_t)BLK_ZERO_GRANULE);
        if (blk_is_zero(buf + pos, n)) {
            pos += n;
            continue;
        }
        /* Merge neighbouring non-zero granules into one write. */
        size_t end = pos + n;
        while (end < len) {
            size_t m = RT_MIN(len - end, (size_t)BLK_ZERO_GRANULE);
            if (blk_is_zero(buf + end, m))
                break;
            end += m;
        }
        int rc = blk_write(dst, offset + pos, buf + pos, end - pos);
        if (rc < 0)
            return rc;
        pos = end;
    }
    return 0;
}

static int blk_copy_into(struct blk_image *src, struct blk_image *dst, struct blk_progress *pr)
{
    uint8_t *buf = malloc(BLK_COPY_CHUNK);
    if (!buf)
        return VERR_NO_MEMORY;
    uint64_t size = blk_size_bytes(src);
    uint64_t offset = 0;
    int rc = 0;
    while (offset < size && rc == 0) {
        uint64_t len = RT_MIN(size - offset, (uint64_t)BLK_COPY_CHUNK);
        bool allocated;
        uint64_t num;
        rc = blk_chain_status(src, offset, len, &allocated, &num);
        if (rc < 0)
            break;
        /* A new image reads as zeroes: what the chain does not hold needs no write. */
        if (allocated) {
            rc = blk_read(src, offset, buf, (size_t)num);
            if (rc == 0)
                rc = blk_write_nonzero(dst, offset, buf, (size_t)num);
        }
        offset += num;
        blk_progress_report(pr, offset);
    }
    free(buf);
    return rc;
}

int blk_convert(struct blk_image *src, const char *dst, const struct blk_create_params *params,
                blk_progress_fn *progress, void *opaque)
{
    if (!src || !dst || !*dst || !params)
        return VERR_INVALID_PARAMETER;
    const struct blk_format_ops *ops = blk_create_ops(dst, params->format);
    if (!ops)
        return VERR_NOT_SUPPORTED;
    int rc = blk_refuse_existing(dst);
    if (rc < 0)
        return rc;
    struct blk_create_params p = *params;
    p.backing_path = NULL;
    p.backing_format = BLK_FMT_AUTO;
    uint64_t src_size = blk_size_bytes(src);
    if (p.size_bytes == 0)
        p.size_bytes = RT_ALIGN_UP(src_size, 512);
    if (p.size_bytes < src_size) {
        LOG_ERR("%s: size %llu is smaller than the source %s (%llu bytes)", dst, (unsigned long long)p.size_bytes,
                src->path, (unsigned long long)src_size);
        return VERR_INVALID_PARAMETER;
    }
    rc = blk_check_new_size(dst, p.size_bytes);
    if (rc < 0)
        return rc;

    char *tmp = NULL;
    rc = blk_create_temp(dst, ops, &p, NULL, NULL, &tmp);
    if (rc < 0)
        return rc;
    struct blk_image *out = NULL;
    rc = blk_open_internal(tmp, ops->format, BLK_OPEN_NO_BACKING, NULL, &out);
    struct blk_progress pr = {.fn = progress, .opaque = opaque, .total = src_size, .last_percent = ~0u};
    if (rc == 0)
        rc = blk_copy_into(src, out, &pr);
    if (rc == 0)
        rc = blk_flush(out);
    blk_close(out);
    if (rc == 0) {
        rc = blk_publish(tmp, dst);
    } else {
        LOG_ERR("%s: conversion from %s failed: %s", dst, src->path, rt_err_str(rc));
        unlink(tmp);
    }
    free(tmp);
    if (rc == 0)
        blk_progress_report(&pr, src_size);
    return rc;
}

/* ---- Commit ------------------------------------------------------------------------ */

static int blk_commit_copy(struct blk_image *img, struct blk_image *parent, struct blk_progress *pr)
{
    uint8_t *buf = malloc(BLK_COPY_CHUNK);
    if (!buf)
        return VERR_NO_MEMORY;
    uint64_t size = blk_size_bytes(img);
    uint64_t offset = 0;
    int rc = 0;
    while (offset < size && rc == 0) {
        bool allocated;
        uint64_t num;
        rc = blk_block_status(img, offset, RT_MIN(size - offset, (uint64_t)BLK_COPY_CHUNK), &allocated, &num);
        if (rc < 0)
            break;
        if (allocated) {
            rc = blk_read(img, offset, buf, (size_t)num);
            if (rc == 0)
                rc = blk_write(parent, offset, buf, (size_t)num);
        }
        offset += num;
        blk_progress_report(pr, offset);
    }
    free(buf);
    return rc;
}

int blk_commit(struct blk_image *img, blk_progress_fn *progress, void *opaque)
{
    if (!img)
        return VERR_INVALID_PARAMETER;
    struct blk_image *parent = img->backing;
    if (!parent) {
        LOG_ERR("%s: has no open backing file to commit into", img->path);
        return VERR_INVALID_STATE;
    }
    int rc = blk_reopen(parent, true);
    if (rc < 0) {
        LOG_ERR("%s: cannot open its backing file %s for writing: %s", img->path, parent->path, rt_err_str(rc));
        return rc;
    }
    uint64_t size = blk_size_bytes(img);
    /* A parent smaller than its child grows, so that everything the child shows fits. */
    if (blk_size_bytes(parent) < size)
        rc = blk_resize(parent, RT_ALIGN_UP(size, 512));
    struct blk_progress pr = {.fn = progress, .opaque = opaque, .total = size, .last_percent = ~0u};
    if (rc == 0)
        rc = blk_commit_copy(img, parent, &pr);
    int frc = blk_flush(parent);
    if (rc == 0)
        rc = frc;
    int rrc = blk_reopen(parent, false);
    if (rc == 0)
        rc = rrc;
    if (rc < 0)
        LOG_ERR("%s: commit into %s failed: %s", img->path, parent->path, rt_err_str(rc));
    else
        blk_progress_report(&pr, size);
    return rc;
}

/* ---- Rebasing ------------------------------------------------------------------------ */

/*
 * Snapshot deletion merges an image into its parent and then points the images above
 * it at the parent.  The new parent is opened with the image as its child, so a parent
 * whose own chain leads back to the image is refused as a loop, and it must show a disk
 * of the same size: a differencing image's unallocated ranges read through to it.
 */
int blk_set_backing(const char *path, const char *backing_path, enum blk_format backing_fmt)
{
    if (!path || !*path || !backing_path || !*backing_path || (unsigned)backing_fmt > BLK_FMT_ISO)
        return VERR_INVALID_PARAMETER;
    struct blk_image *img = NULL;
    int rc = blk_open_internal(path, BLK_FMT_AUTO, BLK_OPEN_NO_BACKING, NULL, &img);
    if (rc < 0)
        return rc;
    if (!img->ops->set_backing) {
        LOG_ERR("%s: %s images cannot name a parent", path, img->ops->name);
        blk_close(img);
        return VERR_NOT_SUPPORTED;
    }
    if (!img->backing_name) {
        LOG_ERR("%s: not a differencing image: it has no parent to replace", path);
        blk_close(img);
        return VERR_INVALID_STATE;
    }
    char *resolved = blk_backing_resolve(img->path, backing_path);
    char *abs = resolved ? blk_path_absolute(resolved) : NULL;
    free(resolved);
    if (!abs) {
        blk_close(img);
        return VERR_NO_MEMORY;
    }
    struct blk_image *parent = NULL;
    rc = blk_open_internal(abs, backing_fmt, BLK_OPEN_READONLY, img, &parent);
    if (rc < 0) {
        LOG_ERR("%s: cannot open the new parent %s: %s", path, abs, rt_err_str(rc));
    } else if (blk_size_bytes(parent) != blk_size_bytes(img)) {
        LOG_ERR("%s: the new parent %s is a disk of %llu bytes, the image one of %llu bytes", path, abs,
                (unsigned long long)blk_size_bytes(parent), (unsigned long long)blk_size_bytes(img));
        rc = VERR_INVALID_PARAMETER;
    } else {
        rt_mutex_lock(&img->lock);
        rc = img->ops->set_backing(img, backing_path, parent);
        rt_mutex_unlock(&img->lock);
        if (rc == 0)
            rc = blk_file_sync(img);
        if (rc == 0)
            LOG_INFO("%s: parent is now %s (%s)", path, backing_path, parent->ops->name);
        else
            LOG_ERR("%s: cannot rewrite its header to name %s: %s", path, backing_path, rt_err_str(rc));
    }
    free(abs);
    blk_close(parent);
    blk_close(img);
    return rc;
}

/* ---- Check ------------------------------------------------------------------------- */

int blk_check(const char *path, enum blk_format fmt, bool repair, struct blk_check_result *out)
{
    if (!path || !*path || !out)
        return VERR_INVALID_PARAMETER;
    memset(out, 0, sizeof(*out));
    struct blk_image *img = NULL;
    int rc = blk_open(path, fmt, BLK_OPEN_NO_BACKING | (repair ? 0 : BLK_OPEN_READONLY), &img);
    if (rc < 0)
        return rc;
    if (img->ops->check) {
        rt_mutex_lock(&img->lock);
        rc = img->ops->check(img, repair && !img->readonly, out);
        rt_mutex_unlock(&img->lock);
        if (rc == 0 && repair && out->repaired) {
            /* Repairs write through the file helpers, which do not mark the image written. */
            __atomic_store_n(&img->written, true, __ATOMIC_RELAXED);
            rc = blk_flush(img);
        }
    }
    blk_close(img);
    return rc;
}
