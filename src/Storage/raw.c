/* raw.c - raw disk images (the file is the disk, holes read as zeroes) and ISO 9660 CD/DVD images (raw, read-only). */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block-internal.h"

#define LOG_COMPONENT "block"

/*
 * A raw image has no metadata: byte N of the disk is byte N of the file, so reads
 * and writes run concurrently (the format table says so) and flush has nothing to
 * write before block.c's fdatasync.  Sparse files keep their holes: discard punches
 * holes, and block_status reports holes as unallocated (SEEK_DATA/SEEK_HOLE) so that
 * conversion does not fill them in.
 */

/* ISO 9660 (ECMA-119 8.1): volume descriptors start at sector 16 of 2048 bytes; bytes 1-5 hold "CD001". */
#define ISO_DESCRIPTOR_OFFSET 0x8000u
#define ISO_ID "CD001"

/* Chunk for writing zeroes where the file system cannot allocate or zero ranges itself. */
#define RAW_ZERO_CHUNK (1024u * 1024u)

static int raw_probe(const uint8_t *head, size_t head_len, uint64_t file_bytes, const char *path)
{
    /* Raw is what a file is when nothing else claims it: block.c falls back to it. */
    return 0;
}

static int raw_open(struct blk_image *img)
{
    uint64_t bytes;
    int rc = blk_file_size(img, &bytes);
    if (rc < 0)
        return rc;
    if (bytes > BLK_MAX_SIZE_BYTES)
        return blk_bad_format(img, "file size %llu is larger than the largest disk (%llu bytes)",
                              (unsigned long long)bytes, (unsigned long long)BLK_MAX_SIZE_BYTES);
    img->size_bytes = bytes;
    return 0;
}

static void raw_close(struct blk_image *img)
{
}

static int raw_read(struct blk_image *img, uint64_t offset, void *buf, size_t len)
{
    /* Another process may have shortened the file: what is gone reads as zeroes, not as an error. */
    return blk_file_read_zero_tail(img, offset, buf, len);
}

static int raw_write(struct blk_image *img, uint64_t offset, const void *buf, size_t len)
{
    return blk_file_write(img, offset, buf, len);
}

/* Writes zeroes to fd over [offset, offset+len) with plain pwrite (no image: used by create too). */
static int raw_fd_write_zeroes(int fd, uint64_t offset, uint64_t len)
{
    uint8_t *zero = calloc(1, RAW_ZERO_CHUNK);
    if (!zero)
        return VERR_NO_MEMORY;
    int rc = 0;
    while (len > 0) {
        size_t n = (size_t)RT_MIN(len, (uint64_t)RAW_ZERO_CHUNK);
        ssize_t done = pwrite(fd, zero, n, (off_t)offset);
        if (done < 0 && errno == EINTR)
            continue;
        if (done <= 0) {
            rc = VERR_IO;
            break;
        }
        offset += (uint64_t)done;
        len -= (uint64_t)done;
    }
    free(zero);
    return rc;
}

static bool raw_fallocate_unsupported(int err)
{
    return err == EOPNOTSUPP || err == ENOSYS || err == EINVAL || err == ENODEV;
}

static int raw_discard(struct blk_image *img, uint64_t offset, uint64_t len)
{
    /* Discard is a hint: a file system without hole punching just keeps the data. */
    while (fallocate(img->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)offset, (off_t)len) < 0) {
        if (errno == EINTR)
            continue;
        if (raw_fallocate_unsupported(errno))
            return 0;
        int err = errno;
        LOG_ERR("%s: discard of %llu bytes at %llu failed: %s", img->path, (unsigned long long)len,
                (unsigned long long)offset, rt_err_str(err));
        return VERR_IO;
    }
    return 0;
}

static int raw_write_zeroes(struct blk_image *img, uint64_t offset, uint64_t len)
{
    for (;;) {
        if (fallocate(img->fd, FALLOC_FL_ZERO_RANGE, (off_t)offset, (off_t)len) == 0)
            return 0;
        if (errno == EINTR)
            continue;
        if (raw_fallocate_unsupported(errno))
            break;
        int err = errno;
        LOG_ERR("%s: zeroing %llu bytes at %llu failed: %s", img->path, (unsigned long long)len,
                (unsigned long long)offset, rt_err_str(err));
        return VERR_IO;
    }
    int rc = raw_fd_write_zeroes(img->fd, offset, len);
    if (rc < 0)
        LOG_ERR("%s: writing zeroes at %llu failed: %s", img->path, (unsigned long long)offset, rt_err_str(rc));
    return rc;
}

static int raw_block_status(struct blk_image *img, uint64_t offset, uint64_t len, bool *allocated,
                            uint64_t *pnum)
{
    off_t data = lseek(img->fd, (off_t)offset, SEEK_DATA);
    if (data < 0) {
        if (errno == ENXIO) {
            /* No data from offset to the end of the file. */
            *allocated = false;
            *pnum = len;
            return 0;
        }
        /* No hole support here: everything counts as data. */
        *allocated = true;
        *pnum = len;
        return 0;
    }
    if ((uint64_t)data > offset) {
        *allocated = false;
        *pnum = RT_MIN(len, (uint64_t)data - offset);
        return 0;
    }
    off_t hole = lseek(img->fd, (off_t)offset, SEEK_HOLE);
    *allocated = true;
    *pnum = hole < 0 || (uint64_t)hole <= offset ? len : RT_MIN(len, (uint64_t)hole - offset);
    return 0;
}

static int raw_create(int fd, const struct blk_create_params *params, const char *backing,
                      struct blk_image *backing_img)
{
    if (backing) {
        LOG_ERR("raw images cannot have a backing file");
        return VERR_NOT_SUPPORTED;
    }
    while (ftruncate(fd, (off_t)params->size_bytes) < 0) {
        if (errno == EINTR)
            continue;
        int err = errno;
        LOG_ERR("cannot set the new image's length: %s", rt_err_str(err));
        return VERR_IO;
    }
    if (!params->fixed)
        return 0;
    /* Fixed: reserve every block now so that the guest never meets a full host disk. */
    for (;;) {
        if (fallocate(fd, 0, 0, (off_t)params->size_bytes) == 0)
            return 0;
        if (errno == EINTR)
            continue;
        if (raw_fallocate_unsupported(errno))
            return raw_fd_write_zeroes(fd, 0, params->size_bytes);
        int err = errno;
        LOG_ERR("cannot allocate the new image's %llu bytes: %s", (unsigned long long)params->size_bytes,
                rt_err_str(err));
        return VERR_IO;
    }
}

static int raw_resize(struct blk_image *img, uint64_t new_size_bytes)
{
    int rc = blk_file_truncate(img, new_size_bytes);
    if (rc == 0)
        __atomic_store_n(&img->size_bytes, new_size_bytes, __ATOMIC_RELAXED);
    return rc;
}

static void raw_info(struct blk_image *img, struct blk_info *info)
{
    /* A file with holes behaves like a dynamic image; one with every block present like a fixed one. */
    rt_strlcpy(info->variant, info->allocated_bytes < info->file_bytes ? "dynamic" : "fixed",
               sizeof(info->variant));
}

const struct blk_format_ops g_blk_format_raw = {
    .format = BLK_FMT_RAW,
    .name = "raw",
    .concurrent = true,
    .flat = true,
    .probe = raw_probe,
    .open = raw_open,
    .close = raw_close,
    .read = raw_read,
    .write = raw_write,
    .discard = raw_discard,
    .write_zeroes = raw_write_zeroes,
    .block_status = raw_block_status,
    .create = raw_create,
    .resize = raw_resize,
    .info = raw_info,
};

/* ---- ISO 9660 -------------------------------------------------------------------- */

static int iso_probe(const uint8_t *head, size_t head_len, uint64_t file_bytes, const char *path)
{
    if (head_len < ISO_DESCRIPTOR_OFFSET + 6)
        return 0;
    return memcmp(head + ISO_DESCRIPTOR_OFFSET + 1, ISO_ID, 5) == 0 ? 100 : 0;
}

static int iso_open(struct blk_image *img)
{
    /* block.c opens ISO images read-only whatever the caller asked for. */
    if (!img->readonly)
        return VERR_ACCESS_DENIED;
    return raw_open(img);
}

static int iso_write(struct blk_image *img, uint64_t offset, const void *buf, size_t len)
{
    return VERR_ACCESS_DENIED;
}

static void iso_info(struct blk_image *img, struct blk_info *info)
{
    info->variant[0] = '\0';
}

const struct blk_format_ops g_blk_format_iso = {
    .format = BLK_FMT_ISO,
    .name = "iso",
    .concurrent = true,
    .flat = true,
    .probe = iso_probe,
    .open = iso_open,
    .close = raw_close,
    .read = raw_read,
    .write = iso_write,
    .block_status = raw_block_status,
    .info = iso_info,
};
