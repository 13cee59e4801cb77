/* vmdk-internal.h - what the VMDK format's files share: the descriptor, extent files and hosted sparse extents. */
#ifndef VIREO_VMDK_INTERNAL_H
#define VIREO_VMDK_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <zlib.h>

#include "block-internal.h"

/*
 * Facts from VMware's "Virtual Disk Format 5.0" specification (cited as VDF with the
 * section name).  A VMDK disk is a text descriptor naming one or more extents, each a
 * run of the virtual disk stored in one file: FLAT (plain bytes at an offset), SPARSE
 * (a hosted sparse extent: header, grain directory, grain tables, grains) or ZERO.  A
 * monolithic sparse or stream-optimized disk is one sparse extent file carrying its
 * own descriptor.  Everything here is read-only.
 */

#define VMDK_SECTOR            512u
#define VMDK_SPARSE_MAGIC      0x564d444bu /* "KDMV" as a little-endian uint32 */
#define VMDK_COWD_MAGIC        0x44574f43u /* "COWD": ESX server sparse extents */
#define VMDK_GTES_PER_GT       512u        /* VDF "Hosted Sparse Extent Header": numGTEsPerGT is always 512 */
#define VMDK_GT_BYTES          (VMDK_GTES_PER_GT * 4u)
#define VMDK_GT_SECTORS        (VMDK_GT_BYTES / VMDK_SECTOR)
#define VMDK_GD_AT_END         UINT64_C(0xffffffffffffffff) /* stream-optimized: the real gdOffset is in the footer */
#define VMDK_MAX_GRAIN_SECTORS 128u /* 64 KiB; tools write 64 KiB grains, larger ones are refused */
#define VMDK_MARKER_BYTES      12u  /* grain marker: uint64 lba, uint32 size, then the data */

/* Header flags (VDF "Hosted Sparse Extent Header"). */
#define VMDK_FLAG_NL_TEST    0x00000001u /* the newline test characters are valid */
#define VMDK_FLAG_RGD        0x00000002u /* a redundant grain directory is kept */
#define VMDK_FLAG_ZERO_GRAIN 0x00000004u /* grain table entry 1 means "all zeroes" */
#define VMDK_FLAG_COMPRESSED 0x00010000u
#define VMDK_FLAG_MARKERS    0x00020000u

#define VMDK_COMPRESS_NONE    0u
#define VMDK_COMPRESS_DEFLATE 1u

/* Metadata marker types (VDF "Stream-Optimized Compressed Sparse Extents"). */
#define VMDK_MARKER_EOS    0u
#define VMDK_MARKER_GT     1u
#define VMDK_MARKER_GD     2u
#define VMDK_MARKER_FOOTER 3u

/* Bounds on untrusted descriptor text. */
#define VMDK_DESC_MAX_EMBEDDED (64u * 1024u)   /* inside a sparse extent */
#define VMDK_DESC_MAX_FILE     (1024u * 1024u) /* a descriptor file of its own (long split-extent lists) */
#define VMDK_MAX_EXTENTS       512u            /* each one an open file */
#define VMDK_CREATE_TYPE_MAX   64u

#define VMDK_NO_PARENT_CID 0xffffffffu

enum vmdk_extent_type { VMDK_EXTENT_FLAT, VMDK_EXTENT_SPARSE, VMDK_EXTENT_ZERO };

/* One extent line of a descriptor: `RW <sectors> SPARSE|FLAT|ZERO ["file" [offset]]`. */
struct vmdk_desc_extent {
    enum vmdk_extent_type type;
    uint64_t sectors;
    char *file;              /* malloc'ed, as written (relative to the descriptor's folder); NULL for ZERO */
    uint64_t offset_sectors; /* FLAT: where the extent's data starts in its file */
};

/* A parsed descriptor (VDF "The Descriptor File"). */
struct vmdk_desc {
    char create_type[VMDK_CREATE_TYPE_MAX]; /* "" when absent */
    bool has_cid;
    uint32_t cid;
    uint32_t parent_cid; /* VMDK_NO_PARENT_CID: not a differencing disk */
    char *parent_hint;   /* parentFileNameHint, malloc'ed, or NULL */
    bool has_uuid, has_parent_uuid;
    struct rt_uuid uuid, parent_uuid; /* VirtualBox's ddb.uuid.image / ddb.uuid.parent */
    struct vmdk_desc_extent *extents;
    unsigned extent_count;
};

/*
 * Parses descriptor text (len bytes, need not be NUL-terminated; parsing stops at the
 * first NUL).  Problems are logged naming path: VERR_BAD_FORMAT for malformed text,
 * VERR_NOT_SUPPORTED for extent kinds Vireo does not read.  On failure *out holds
 * nothing to free.
 */
int vmdk_desc_parse(const char *path, const char *text, size_t len, struct vmdk_desc *out);
void vmdk_desc_free(struct vmdk_desc *desc);

/* One file holding extent data: the image's own file or one the descriptor names. */
struct vmdk_file {
    int fd;
    bool owned; /* opened by the format (closed with it), not the image's own fd */
    char *path; /* malloc'ed */
    uint64_t size_bytes;
};

/* Logs "<path>: <what>" and returns VERR_BAD_FORMAT (vmdk_unsupported: VERR_NOT_SUPPORTED). */
int vmdk_bad(const char *path, const char *fmt, ...) RT_PRINTF(2, 3);
int vmdk_unsupported(const char *path, const char *fmt, ...) RT_PRINTF(2, 3);
/* pread of the whole range: VERR_TRUNCATED (logged) when it passes the end of the file, VERR_IO on host errors. */
int vmdk_file_read(const struct vmdk_file *file, uint64_t offset, void *buf, size_t len);

#define VMDK_GT_CACHE_SLOTS 16u

struct vmdk_gt_slot {
    uint32_t gd_index; /* UINT32_MAX: empty */
    uint64_t last_use;
    uint32_t entries[VMDK_GTES_PER_GT]; /* host order */
};

/* A hosted sparse extent (monolithic sparse, stream-optimized, or one piece of a split disk). */
struct vmdk_sparse {
    const struct vmdk_file *file;
    uint32_t version, flags;
    uint64_t capacity_sectors;
    uint64_t grain_sectors, grain_bytes;
    uint64_t desc_sector, desc_sectors;
    uint64_t gd_sector, rgd_sector; /* rgd_sector 0: none */
    uint64_t overhead_sectors;
    uint32_t gd_entries;
    uint32_t *gd;  /* host order, every non-zero entry checked to lie inside the file */
    uint32_t *rgd; /* NULL without a redundant directory */
    bool compressed, markers, zero_grain;
    bool footer; /* the header came from the footer (gdOffset GD_AT_END): the last 3 sectors are metadata */
    struct vmdk_gt_slot *gt_cache;
    uint64_t gt_clock;
    /* Compressed grains: the last one inflated stays in grain_buf (guests read 4 KiB pieces of 64 KiB grains). */
    z_stream zs;
    bool zs_ready;
    uint8_t *comp_buf;
    size_t comp_max; /* the largest compressed grain accepted (zlib's bound for one grain) */
    uint8_t *grain_buf;
    uint64_t grain_buf_index; /* UINT64_MAX: empty */
};

/* Grain table entry meanings beyond "sector of the grain". */
#define VMDK_GTE_UNALLOCATED 0u
#define VMDK_GTE_ZERO        1u /* only with VMDK_FLAG_ZERO_GRAIN */

/*
 * Parses and checks the 512-byte header at the start of file (for a stream-optimized
 * extent whose gdOffset is GD_AT_END, the footer's copy) and loads the grain
 * directory.  Fails logging the file and the field, leaving nothing to free.
 */
int vmdk_sparse_open(const struct vmdk_file *file, struct vmdk_sparse **out);
void vmdk_sparse_close(struct vmdk_sparse *sp);
/* The grain table entry of grain `grain` (< grain count); a bad table is VERR_BAD_FORMAT. */
int vmdk_sparse_lookup(struct vmdk_sparse *sp, uint64_t grain, uint32_t *gte);
/* Reads len bytes at in_grain of grain `grain` whose entry (neither 0 nor the zero marker) is gte. */
int vmdk_sparse_read_grain(struct vmdk_sparse *sp, uint64_t grain, uint32_t gte, uint32_t in_grain, void *buf,
                           size_t len);
/* Whether gte means "zeroes" rather than a grain or "not here". */
static inline bool vmdk_sparse_gte_is_zero(const struct vmdk_sparse *sp, uint32_t gte)
{
    return gte == VMDK_GTE_ZERO && sp->zero_grain;
}
/* Checks directories, tables and grains for out-of-file and overlapping entries. */
int vmdk_sparse_check(struct vmdk_sparse *sp, struct blk_check_result *res);
/* The embedded descriptor's text (malloc'ed, NUL-terminated) or *out NULL when the extent has none. */
int vmdk_sparse_read_desc(const struct vmdk_sparse *sp, char **out, size_t *len);

#endif
