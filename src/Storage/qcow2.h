/* qcow2.h - what the qcow2 format's files (qcow2.c, qcow2-refcount.c, qcow2-check.c) share. */
#ifndef VIREO_QCOW2_H
#define VIREO_QCOW2_H

#include <stdbool.h>
#include <stdint.h>

#include "block-internal.h"

/* Header layout (QEMU docs/interop/qcow2.txt, "Header"); all fields big-endian. */
#define QCOW2_MAGIC              0x514649fbu /* "QFI\xfb" */
#define QCOW2_HDR_VERSION        4
#define QCOW2_HDR_BACKING_OFFSET 8
#define QCOW2_HDR_BACKING_SIZE   16
#define QCOW2_HDR_CLUSTER_BITS   20
#define QCOW2_HDR_SIZE           24
#define QCOW2_HDR_CRYPT_METHOD   32
#define QCOW2_HDR_L1_SIZE        36
#define QCOW2_HDR_L1_OFFSET      40
#define QCOW2_HDR_RT_OFFSET      48
#define QCOW2_HDR_RT_CLUSTERS    56
#define QCOW2_HDR_NB_SNAPSHOTS   60
#define QCOW2_HDR_SNAPSHOTS      64
#define QCOW2_HDR_INCOMPAT       72
#define QCOW2_HDR_COMPAT         80
#define QCOW2_HDR_AUTOCLEAR      88
#define QCOW2_HDR_REFCOUNT_ORDER 96
#define QCOW2_HDR_LENGTH         100
#define QCOW2_HDR_COMPRESSION    104
#define QCOW2_V2_HEADER_BYTES    72
#define QCOW2_V3_HEADER_BYTES    104
#define QCOW2_CREATE_HEADER_BYTES 112 /* v3 header with the compression type byte, padded to 8 */

/* Incompatible feature bits. */
#define QCOW2_INCOMPAT_DIRTY       (1ull << 0)
#define QCOW2_INCOMPAT_CORRUPT     (1ull << 1)
#define QCOW2_INCOMPAT_DATA_FILE   (1ull << 2)
#define QCOW2_INCOMPAT_COMPRESSION (1ull << 3)
#define QCOW2_INCOMPAT_EXTL2       (1ull << 4)
#define QCOW2_AUTOCLEAR_BITMAPS    (1ull << 0)

/* Header extension types ("Header extensions"). */
#define QCOW2_EXT_END            0x00000000u
#define QCOW2_EXT_BACKING_FORMAT 0xe2792acau
#define QCOW2_EXT_FEATURE_TABLE  0x6803f857u
#define QCOW2_EXT_BITMAPS        0x23852875u

#define QCOW2_MIN_CLUSTER_BITS     9  /* 512 bytes: the spec's minimum */
#define QCOW2_MAX_CLUSTER_BITS     21 /* 2 MiB: what images in the wild use at most */
#define QCOW2_DEFAULT_CLUSTER_BITS 16
#define QCOW2_CREATE_REFCOUNT_ORDER 4
#define QCOW2_MAX_BACKING_NAME     1023
#define QCOW2_MAX_L1_ENTRIES       (4u << 20) /* 32 MiB of L1 table */
#define QCOW2_MAX_RT_BYTES         (32u << 20)
#define QCOW2_MAX_SNAPSHOTS        65536u
#define QCOW2_MAX_SNAPSHOT_TABLE   (64u << 20)
#define QCOW2_MAX_BITMAPS          65535u
#define QCOW2_MAX_BITMAP_DIR       (64u << 20)
#define QCOW2_MAX_BITMAP_TABLE     (64u << 20)

/* L1 and L2 entries ("Cluster mapping"). */
#define QCOW2_OFLAG_COPIED     (1ull << 63) /* refcount is exactly one: writable in place */
#define QCOW2_OFLAG_COMPRESSED (1ull << 62)
#define QCOW2_OFLAG_ZERO       (1ull << 0)  /* v3: the cluster reads as zeroes */
#define QCOW2_OFFSET_MASK      0x00fffffffffffe00ull /* bits 9-55 */
#define QCOW2_L1_RESERVED      0x7f000000000001ffull /* bits 0-8 and 56-62 */
#define QCOW2_L2_RESERVED      0x3f000000000001feull /* bits 1-8 and 56-61 of a standard entry */
#define QCOW2_RT_RESERVED      0x1ffull

#define QCOW2_L2_CACHE 16 /* L2 tables kept in memory (LRU); 16 x 64 KiB maps 8 GiB */
#define QCOW2_RB_CACHE 4  /* refcount blocks kept in memory */

struct qcow2_slot {
    uint64_t offset; /* 0: empty */
    uint64_t stamp;  /* last use, for LRU */
    uint8_t *data;   /* one cluster, as on disk (big-endian) */
};

struct qcow2 {
    struct blk_image *img;
    uint32_t version;
    unsigned cluster_bits;
    uint64_t cluster_size;
    unsigned l2_bits;         /* log2 of the entries in an L2 table */
    unsigned refcount_order;  /* refcount width is 1 << order bits */
    unsigned rb_bits;         /* log2 of the entries in a refcount block */
    uint64_t refcount_max;
    unsigned csize_shift;     /* compressed descriptor: sector count starts here */
    uint64_t csize_mask;
    uint64_t coffset_mask;
    uint32_t header_length;
    uint64_t incompat, compat, autoclear;
    uint64_t l1_offset;
    uint32_t l1_size;
    uint64_t *l1;             /* host byte order */
    uint64_t rt_offset;
    uint32_t rt_clusters;
    uint64_t rt_entries;
    uint64_t *rt;             /* host byte order, every entry checked at open */
    uint32_t nb_snapshots;
    uint64_t snapshots_offset;
    bool has_bitmaps;
    uint32_t nb_bitmaps;
    uint64_t bitmap_dir_offset, bitmap_dir_size;
    uint8_t *feature_table;   /* the feature name table extension, for messages */
    size_t feature_table_len;
    uint64_t file_bytes;      /* the file's length as this code has made it */
    uint64_t free_hint;       /* no free cluster below this index */
    uint64_t stamp;
    struct qcow2_slot l2c[QCOW2_L2_CACHE];
    struct qcow2_slot rbc[QCOW2_RB_CACHE];
    uint8_t *cow;             /* one cluster: data being written */
    uint8_t *comp_in;         /* compressed bytes of one cluster (up to two clusters) */
    uint8_t *comp_out;        /* the last decompressed cluster */
    uint64_t comp_entry;      /* the L2 entry comp_out holds, 0: none */
};

static inline uint64_t qcow2_file_clusters(const struct qcow2 *s)
{
    return (s->file_bytes + s->cluster_size - 1) >> s->cluster_bits;
}

/* qcow2.c */
int qcow2_meta_write(struct qcow2 *s, uint64_t offset, const void *buf, size_t len);
int qcow2_header_write_u64(struct qcow2 *s, unsigned field, uint64_t value);
void qcow2_cache_forget(struct qcow2 *s, uint64_t offset);
uint8_t *qcow2_slot_get(struct qcow2 *s, struct qcow2_slot *slots, unsigned n, uint64_t offset, bool *hit);
/* The compressed descriptor's host byte range [*start, *start + *len). */
void qcow2_compressed_range(const struct qcow2 *s, uint64_t entry, uint64_t *start, uint64_t *len);

/* qcow2-refcount.c */
/* Whether the cluster holding offset is the header, the L1 table or the refcount table. */
bool qcow2_is_fixed_meta(const struct qcow2 *s, uint64_t offset);
int qcow2_refcount_get(struct qcow2 *s, uint64_t cluster, uint64_t *out);
/* Sets a refcount in a block that exists (write-through). */
int qcow2_refcount_set(struct qcow2 *s, uint64_t cluster, uint64_t value);
/* A free cluster whose refcount is now 1 on disk; *offset_out is its file offset. */
int qcow2_cluster_alloc(struct qcow2 *s, uint64_t *offset_out);
/* n contiguous free clusters, refcounts 1 on disk. */
int qcow2_cluster_alloc_range(struct qcow2 *s, uint64_t n, uint64_t *offset_out);
/* Drops one reference to each cluster of [offset, offset + len); a cluster reaching 0 is free. */
int qcow2_cluster_unref(struct qcow2 *s, uint64_t offset, uint64_t len);
/* Reads entry i of a refcount block. */
uint64_t qcow2_rb_entry(const struct qcow2 *s, const uint8_t *block, uint64_t i);
void qcow2_rb_entry_put(const struct qcow2 *s, uint8_t *block, uint64_t i, uint64_t value);
/*
 * Writes a new refcount table and blocks after the end of the file holding refs[i] for
 * cluster i (ncl clusters) plus themselves, points the header at them and clears the
 * dirty bit.  The old structures become free space.
 */
int qcow2_refcount_rebuild(struct qcow2 *s, const uint32_t *refs, uint64_t ncl);

/* qcow2-check.c */
int qcow2_check(struct blk_image *img, bool repair, struct blk_check_result *res);
/* Rebuilds the refcounts of an image opened with the dirty bit set. */
int qcow2_repair_dirty(struct qcow2 *s);

#endif
