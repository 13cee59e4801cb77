/* block-internal.h - what the generic block layer (block.c) and the image formats (raw.c, vdi.c, qcow2.c, vmdk.c) share. */
#ifndef VIREO_BLOCK_INTERNAL_H
#define VIREO_BLOCK_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "vireo/block.h"
#include "vireo/err.h"
#include "vireo/rt.h"

/*
 * One format is one table.  block.c opens the file, takes its lock, reads the
 * first bytes, asks every format's probe() and calls open() of the best one.  It
 * then opens the backing file the format named (img->backing_name) and keeps it in
 * img->backing.  Every call into a format holds img->lock (unless the format sets
 * concurrent), with the range already checked against img->size_bytes.
 *
 * Reads of ranges this file does not hold: a format calls blk_layer_read_below(),
 * which reads the parent or fills zeroes.
 */
struct blk_format_ops {
    enum blk_format format;
    const char *name;
    bool concurrent; /* read/write may run in parallel (no metadata): block.c takes no lock for them */
    bool flat;       /* disk byte N is file byte N (raw, ISO): blk_readv/writev go straight to the file */
    /* 0..100: how sure the format is that this header is its own (0: not mine). */
    int (*probe)(const uint8_t *head, size_t head_len, uint64_t file_bytes, const char *path);
    /*
     * Reads and checks the header and tables of img->fd; sets img->size_bytes,
     * img->priv, and for a differencing image img->backing_name (malloc'd, as stored)
     * and img->backing_format.  Fails leaving nothing to free.
     */
    int (*open)(struct blk_image *img);
    /*
     * Optional: called by block.c after it opened img->backing, so the format can check
     * that the parent is the one it was made from (VDI: the parent's UUID); a failure
     * fails blk_open with that status.
     */
    int (*backing_opened)(struct blk_image *img);
    /* Writes cached metadata (no fdatasync) and frees img->priv. */
    void (*close)(struct blk_image *img);
    int (*read)(struct blk_image *img, uint64_t offset, void *buf, size_t len);
    int (*write)(struct blk_image *img, uint64_t offset, const void *buf, size_t len);
    /* Writes cached metadata; block.c then fdatasyncs.  NULL: nothing cached. */
    int (*flush)(struct blk_image *img);
    /* NULL: discard does nothing and write zeroes writes zero bytes. */
    int (*discard)(struct blk_image *img, uint64_t offset, uint64_t len);
    int (*write_zeroes)(struct blk_image *img, uint64_t offset, uint64_t len);
    /* See blk_block_status; NULL: everything is allocated in this file. */
    int (*block_status)(struct blk_image *img, uint64_t offset, uint64_t len, bool *allocated, uint64_t *pnum);
    /*
     * Writes a new, empty image of params->size_bytes (already resolved from the
     * backing file when 0) to the open, empty fd; backing is the backing path as the
     * user gave it (NULL for none) and backing_img the open parent (for UUIDs).  NULL
     * for read-only formats.
     */
    int (*create)(int fd, const struct blk_create_params *params, const char *backing,
                  struct blk_image *backing_img);
    /* NULL: VERR_NOT_SUPPORTED. */
    int (*resize)(struct blk_image *img, uint64_t new_size_bytes);
    /* Checks (and with repair fixes) this file's metadata; NULL: nothing to check. */
    int (*check)(struct blk_image *img, bool repair, struct blk_check_result *res);
    /* Fills variant, uuid, parent_uuid (the rest is block.c's). */
    void (*info)(struct blk_image *img, struct blk_info *info);
    /*
     * Optional (blk_set_backing): makes the differencing image img (opened read-write with
     * BLK_OPEN_NO_BACKING) name backing (stored as given) with backing_img (open, same size)
     * as its parent, rewriting its header in one write; block.c then syncs the file.
     * VERR_INVALID_STATE when img is not a differencing image.  NULL: VERR_NOT_SUPPORTED.
     */
    int (*set_backing)(struct blk_image *img, const char *backing, struct blk_image *backing_img);
};

struct blk_image {
    const struct blk_format_ops *ops;
    int fd;
    char *path;        /* as opened (absolute when block.c resolved it) */
    bool readonly;
    unsigned flags;    /* BLK_OPEN_* */
    uint64_t size_bytes;
    char *backing_name;             /* set by a format's open(): the parent as stored, or NULL */
    enum blk_format backing_format; /* set by open() when the file records it */
    struct blk_image *backing;      /* opened by block.c */
    struct blk_image *child;        /* the image whose parent this is (chain checks) */
    bool written;                   /* something was written since the last fdatasync */
    bool probed_raw;                /* raw because probing found no format: guarded writes to the header area */
    struct rt_mutex lock;
    void *priv;                     /* the format's state */
};

extern const struct blk_format_ops g_blk_format_raw;
extern const struct blk_format_ops g_blk_format_iso;
extern const struct blk_format_ops g_blk_format_vdi;
extern const struct blk_format_ops g_blk_format_qcow2;
extern const struct blk_format_ops g_blk_format_vmdk;

/* ---- Helpers for format code -------------------------------------------------------- */

/* pread/pwrite the whole length (retrying short transfers and EINTR); VERR_IO logged with the path. */
int blk_file_read(struct blk_image *img, uint64_t file_offset, void *buf, size_t len);
int blk_file_write(struct blk_image *img, uint64_t file_offset, const void *buf, size_t len);
/* Reads that may pass the end of file: the missing tail is zero-filled (sparse tails). */
int blk_file_read_zero_tail(struct blk_image *img, uint64_t file_offset, void *buf, size_t len);
/* The file's length now. */
int blk_file_size(struct blk_image *img, uint64_t *out);
int blk_file_truncate(struct blk_image *img, uint64_t len);
/* fdatasync of this one file (ordering points inside a format's metadata updates). */
int blk_file_sync(struct blk_image *img);
/* Read of a range this file does not hold: from the parent, or zeroes. */
int blk_layer_read_below(struct blk_image *img, uint64_t offset, void *buf, size_t len);

/* Logs "<path>: <what>" at error level and returns VERR_BAD_FORMAT: for header and table checks. */
int blk_bad_format(struct blk_image *img, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Records a check problem (counted as an error or a leak; the first one's text kept). */
void blk_check_problem(struct blk_check_result *res, bool leak, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Little-endian field access into header buffers. */
static inline uint16_t blk_le16(const void *p)
{
    const uint8_t *b = p;
    return (uint16_t)(b[0] | b[1] << 8);
}
static inline uint32_t blk_le32(const void *p)
{
    const uint8_t *b = p;
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}
static inline uint64_t blk_le64(const void *p)
{
    return blk_le32(p) | (uint64_t)blk_le32((const uint8_t *)p + 4) << 32;
}
static inline uint32_t blk_be32(const void *p)
{
    const uint8_t *b = p;
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | (uint32_t)b[3];
}
static inline uint64_t blk_be64(const void *p)
{
    return (uint64_t)blk_be32(p) << 32 | blk_be32((const uint8_t *)p + 4);
}
static inline void blk_put_le16(void *p, uint16_t v)
{
    uint8_t *b = p;
    b[0] = (uint8_t)v, b[1] = (uint8_t)(v >> 8);
}
static inline void blk_put_le32(void *p, uint32_t v)
{
    uint8_t *b = p;
    b[0] = (uint8_t)v, b[1] = (uint8_t)(v >> 8), b[2] = (uint8_t)(v >> 16), b[3] = (uint8_t)(v >> 24);
}
static inline void blk_put_le64(void *p, uint64_t v)
{
    blk_put_le32(p, (uint32_t)v);
    blk_put_le32((uint8_t *)p + 4, (uint32_t)(v >> 32));
}
static inline void blk_put_be32(void *p, uint32_t v)
{
    uint8_t *b = p;
    b[0] = (uint8_t)(v >> 24), b[1] = (uint8_t)(v >> 16), b[2] = (uint8_t)(v >> 8), b[3] = (uint8_t)v;
}
static inline void blk_put_be64(void *p, uint64_t v)
{
    blk_put_be32(p, (uint32_t)(v >> 32));
    blk_put_be32((uint8_t *)p + 4, (uint32_t)v);
}

#endif
