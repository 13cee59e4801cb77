/* block-core.h - what the generic block layer's own files (block.c, block-create.c, formats.c) share; format code does not use it. */
#ifndef VIREO_BLOCK_CORE_H
#define VIREO_BLOCK_CORE_H

#include <sys/types.h>

#include "block-internal.h"

/* Every format blk_open can probe, NULL-terminated (formats.c). */
extern const struct blk_format_ops *const g_blk_formats[];

/* How much of a file's start probing reads: ISO 9660's descriptor sits at 0x8000. */
#define BLK_PROBE_BYTES 0x8800u

/*
 * block.c allocates every image as this, so that the chain's loop check can compare
 * files by identity without the formats seeing it.
 */
struct blk_file {
    struct blk_image img;
    dev_t dev;
    ino_t ino;
    bool is_blockdev;
};

static inline struct blk_file *blk_file_of(struct blk_image *img)
{
    return (struct blk_file *)img;
}

/* The table of fmt, or NULL when this build has no such format. */
const struct blk_format_ops *blk_format_ops_find(enum blk_format fmt);
/* Opens path read-only with the format's own checks only (no chain) or with its chain. */
int blk_open_internal(const char *path, enum blk_format fmt, unsigned flags, struct blk_image *child,
                      struct blk_image **out);
/* Makes an image of the chain writable (commit) or read-only again; takes img->lock. */
int blk_reopen(struct blk_image *img, bool writable);
/* Whether [offset, offset+len) shows data from any file of the chain (see blk_block_status). */
int blk_chain_status(struct blk_image *img, uint64_t offset, uint64_t len, bool *allocated, uint64_t *pnum);
/* Absolute form of path (the folder resolved with realpath when it exists); malloc'ed or NULL. */
char *blk_path_absolute(const char *path);
/* A backing name as stored, resolved against the folder of the image that names it; malloc'ed or NULL. */
char *blk_backing_resolve(const char *child_path, const char *backing_name);

#endif
