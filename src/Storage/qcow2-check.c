/* qcow2-check.c - qcow2 consistency check and repair: references from every table against the refcounts. */

/*
 * The check walks everything that references a host cluster (qcow2.txt, "Host
 * cluster management"): the header cluster, the active L1 table and its L2 tables and
 * data clusters, the refcount table and blocks, the snapshot table and every
 * snapshot's L1 table with what it reaches, and the bitmaps extension's directory,
 * tables and data.  Each cluster gets a reference count and a kind; then every
 * refcount on disk is compared:
 *   - a reference past the end of the file, a bad entry, or a cluster used by two
 *     different structures (overlapping metadata): error;
 *   - refcount below the references: error (a write could free a live cluster);
 *   - refcount above the references: leak (space lost, harmless).
 * The COPIED flag of active L1/L2 entries must match "refcount is exactly 1".
 *
 * Repair rebuilds the refcount structures from the references (written past the end
 * of the file, switched in by one header write, the old ones becoming free space),
 * then fixes COPIED flags and clears the dirty bit (and the corrupt bit when no
 * error is left).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2.h"

#define LOG_COMPONENT "qcow2"

/* Largest image (in clusters) check holds counts for: 64 Mi clusters, 4 TiB at 64 KiB. */
#define QCOW2_CHECK_MAX_CLUSTERS (1ull << 26)

enum { KIND_NONE, KIND_DATA, KIND_L2, KIND_META };

struct qcow2_walk {
    struct qcow2 *s;
    struct blk_check_result *res;
    uint32_t *refs;
    uint8_t *kind;
    uint64_t ncl;
    bool fix_copied;
    unsigned fixed;
    uint8_t *l2; /* one cluster */
};

static const char *kind_name(int kind)
{
    return kind == KIND_DATA ? "data" : kind == KIND_L2 ? "an L2 table" : "metadata";
}

/* Counts one reference to every cluster of [offset, offset + len). */
static void walk_ref(struct qcow2_walk *w, uint64_t offset, uint64_t len, int kind, const char *what)
{
    struct qcow2 *s = w->s;
    if (len == 0)
        return;
    uint64_t first = offset >> s->cluster_bits, last = (offset + len - 1) >> s->cluster_bits;
    if (offset + len < offset || last >= w->ncl) {
        blk_check_problem(w->res, false, "%s at %#llx (%llu bytes) passes the end of the file", what,
                          (unsigned long long)offset, (unsigned long long)len);
        return;
    }
    for (uint64_t c = first; c <= last; c++) {
        int had = w->kind[c];
        if (had != KIND_NONE && (had != kind || kind == KIND_META))
            blk_check_problem(w->res, false, "cluster %llu is used as %s and as %s (%s)", (unsigned long long)c,
                              kind_name(had), kind_name(kind), what);
        else
            w->kind[c] = (uint8_t)kind;
        if (w->refs[c] != UINT32_MAX)
            w->refs[c]++;
    }
}

/* An active-table entry's COPIED flag must say whether the refcount is exactly 1. */
static int check_copied(struct qcow2_walk *w, uint64_t entry_offset, uint64_t entry, uint64_t host,
                        const char *what, uint64_t index, uint64_t l2_offset)
{
    uint64_t v;
    int rc = qcow2_refcount_get(w->s, host >> w->s->cluster_bits, &v);
    if (rc < 0)
        return rc;
    bool copied = (entry & QCOW2_OFLAG_COPIED) != 0;
    if (copied == (v == 1))
        return 0;
    if (w->fix_copied) {
        uint8_t be[8];
        blk_put_be64(be, copied ? entry & ~QCOW2_OFLAG_COPIED : entry | QCOW2_OFLAG_COPIED);
        if ((rc = qcow2_meta_write(w->s, entry_offset, be, 8)) < 0)
            return rc;
        if (l2_offset)
            qcow2_cache_forget(w->s, l2_offset);
        else
            w->s->l1[index] = blk_be64(be);
        w->fixed++;
        return 0;
    }
    blk_check_problem(w->res, false, "%s %llu: COPIED flag is %s but the refcount is %llu", what,
                      (unsigned long long)index, copied ? "set" : "clear", (unsigned long long)v);
    return 0;
}

static int walk_l2(struct qcow2_walk *w, uint64_t l2_offset, uint64_t first_vc, bool active)
{
    struct qcow2 *s = w->s;
    int rc = blk_file_read_zero_tail(s->img, l2_offset, w->l2, s->cluster_size);
    if (rc < 0)
        return rc;
    uint64_t n = 1ull << s->l2_bits;
    uint64_t reserved = QCOW2_L2_RESERVED | (s->version < 3 ? QCOW2_OFLAG_ZERO : 0);
    for (uint64_t j = 0; j < n; j++) {
        uint64_t e = blk_be64(w->l2 + 8 * j);
        uint64_t vc = first_vc + j;
        if (e & QCOW2_OFLAG_COMPRESSED) {
            uint64_t start, len;
            qcow2_compressed_range(s, e, &start, &len);
            if (start == 0)
                blk_check_problem(w->res, false, "guest cluster %llu: compressed data at offset 0",
                                  (unsigned long long)vc);
            else
                walk_ref(w, start, len, KIND_DATA, "compressed cluster");
            continue;
        }
        uint64_t off = e & QCOW2_OFFSET_MASK;
        if (e & reserved) {
            blk_check_problem(w->res, false, "guest cluster %llu: L2 entry %#llx has reserved bits set",
                              (unsigned long long)vc, (unsigned long long)e);
            continue;
        }
        if (off == 0)
            continue;
        if (off & (s->cluster_size - 1)) {
            blk_check_problem(w->res, false, "guest cluster %llu: offset %#llx is not cluster-aligned",
                              (unsigned long long)vc, (unsigned long long)off);
            continue;
        }
        if ((off >> s->cluster_bits) >= w->ncl) {
            blk_check_problem(w->res, false, "guest cluster %llu: data at %#llx is past the end of the file",
                              (unsigned long long)vc, (unsigned long long)off);
            continue;
        }
        walk_ref(w, off, s->cluster_size, KIND_DATA, "data cluster");
        if (active && (rc = check_copied(w, l2_offset + 8 * j, e, off, "L2 entry of guest cluster", vc, l2_offset)) < 0)
            return rc;
    }
    return 0;
}

static int walk_l1(struct qcow2_walk *w, uint64_t l1_offset, uint64_t l1_size, bool active, const char *what)
{
    struct qcow2 *s = w->s;
    if (l1_size == 0)
        return 0;
    if (l1_size > QCOW2_MAX_L1_ENTRIES || (l1_offset & (s->cluster_size - 1)) || l1_offset == 0 ||
        l1_offset >= s->file_bytes) {
        blk_check_problem(w->res, false, "%s: table at %#llx with %llu entries is invalid", what,
                          (unsigned long long)l1_offset, (unsigned long long)l1_size);
        return 0;
    }
    walk_ref(w, l1_offset, l1_size * 8, KIND_META, what);
    uint8_t *raw = malloc(l1_size * 8);
    if (!raw)
        return VERR_NO_MEMORY;
    int rc = blk_file_read_zero_tail(s->img, l1_offset, raw, l1_size * 8);
    for (uint64_t i = 0; rc == 0 && i < l1_size; i++) {
        uint64_t e = blk_be64(raw + 8 * i);
        uint64_t off = e & QCOW2_OFFSET_MASK;
        if (e & QCOW2_L1_RESERVED) {
            blk_check_problem(w->res, false, "%s entry %llu (%#llx) has reserved bits set", what,
                              (unsigned long long)i, (unsigned long long)e);
            continue;
        }
        if (off == 0)
            continue;
        if ((off & (s->cluster_size - 1)) || (off >> s->cluster_bits) >= w->ncl) {
            blk_check_problem(w->res, false, "%s entry %llu: L2 table at %#llx is unaligned or past the end of the file",
                              what, (unsigned long long)i, (unsigned long long)off);
            continue;
        }
        walk_ref(w, off, s->cluster_size, KIND_L2, "L2 table");
        if (active && (rc = check_copied(w, l1_offset + 8 * i, e, off, "L1 entry", i, 0)) < 0)
            break;
        /* A table shared by several L1 tables counts its clusters once per path, as refcounts do. */
        if (w->kind[off >> s->cluster_bits] == KIND_L2)
            rc = walk_l2(w, off, i << s->l2_bits, active);
    }
    free(raw);
    return rc;
}

/* The snapshot table ("Snapshots"): its own clusters and each snapshot's L1 table. */
static uint16_t blk_be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static int walk_snapshots(struct qcow2_walk *w)
{
    struct qcow2 *s = w->s;
    uint64_t pos = s->snapshots_offset;
    uint8_t e[40];
    int rc = 0;
    if (s->nb_snapshots == 0)
        return 0;
    for (uint32_t i = 0; i < s->nb_snapshots; i++) {
        if (pos + sizeof(e) > s->file_bytes || pos - s->snapshots_offset > QCOW2_MAX_SNAPSHOT_TABLE) {
            blk_check_problem(w->res, false, "snapshot table: entry %u passes the end of the file or %u MiB", i,
                              QCOW2_MAX_SNAPSHOT_TABLE >> 20);
            return 0;
        }
        if ((rc = blk_file_read(s->img, pos, e, sizeof(e))) < 0)
            return rc;
        uint64_t l1_offset = blk_be64(e);
        uint32_t l1_size = blk_be32(e + 8);
        uint32_t extra = blk_be32(e + 36);
        uint64_t len = sizeof(e) + (uint64_t)extra + blk_be16(e + 12) + blk_be16(e + 14);
        if (extra > 1024) {
            blk_check_problem(w->res, false, "snapshot %u: extra data size %u is too large", i, extra);
            return 0;
        }
        char what[48];
        snprintf(what, sizeof(what), "L1 table of snapshot %u", i);
        if ((rc = walk_l1(w, l1_offset, l1_size, false, what)) < 0)
            return rc;
        pos += RT_ALIGN_UP(len, 8);
    }
    walk_ref(w, s->snapshots_offset, pos - s->snapshots_offset, KIND_META, "snapshot table");
    return 0;
}

/* The bitmaps extension: directory, each bitmap's table and data clusters ("Bitmaps"). */
static int walk_bitmaps(struct qcow2_walk *w)
{
    struct qcow2 *s = w->s;
    if (!s->has_bitmaps)
        return 0;
    uint64_t off = s->bitmap_dir_offset, size = s->bitmap_dir_size;
    if (s->nb_bitmaps == 0 || s->nb_bitmaps > QCOW2_MAX_BITMAPS || size > QCOW2_MAX_BITMAP_DIR || size < 24 ||
        (off & (s->cluster_size - 1)) || off == 0 || off >= s->file_bytes) {
        blk_check_problem(w->res, false, "bitmaps extension: directory at %#llx (%llu bytes) is invalid",
                          (unsigned long long)off, (unsigned long long)size);
        return 0;
    }
    walk_ref(w, off, size, KIND_META, "bitmap directory");
    uint8_t *dir = malloc(size);
    uint8_t *table = NULL;
    if (!dir)
        return VERR_NO_MEMORY;
    int rc = blk_file_read_zero_tail(s->img, off, dir, size);
    uint64_t pos = 0;
    for (uint32_t i = 0; rc == 0 && i < s->nb_bitmaps; i++) {
        if (size - pos < 24) {
            blk_check_problem(w->res, false, "bitmap directory: entry %u passes its end", i);
            break;
        }
        const uint8_t *d = dir + pos;
        uint64_t t_off = blk_be64(d);
        uint64_t t_size = blk_be32(d + 8);
        uint64_t name = (uint64_t)(d[18] << 8 | d[19]), extra = blk_be32(d + 20);
        pos += RT_ALIGN_UP(24 + name + extra, 8);
        if (t_size * 8 > QCOW2_MAX_BITMAP_TABLE || (t_off & (s->cluster_size - 1)) || t_off >= s->file_bytes ||
            (t_size && t_off == 0)) {
            blk_check_problem(w->res, false, "bitmap %u: table at %#llx with %llu entries is invalid", i,
                              (unsigned long long)t_off, (unsigned long long)t_size);
            continue;
        }
        if (t_size == 0)
            continue;
        walk_ref(w, t_off, t_size * 8, KIND_META, "bitmap table");
        free(table);
        if (!(table = malloc(t_size * 8))) {
            rc = VERR_NO_MEMORY;
            break;
        }
        if ((rc = blk_file_read_zero_tail(s->img, t_off, table, t_size * 8)) < 0)
            break;
        for (uint64_t j = 0; j < t_size; j++) {
            uint64_t c = blk_be64(table + 8 * j) & QCOW2_OFFSET_MASK;
            if (c)
                walk_ref(w, c, s->cluster_size, KIND_META, "bitmap data");
        }
    }
    free(table);
    free(dir);
    return rc;
}

static void walk_free(struct qcow2_walk *w)
{
    free(w->refs);
    free(w->kind);
    free(w->l2);
}

/* Counts every reference in the image; the refcount structures only when with_refcounts. */
static int walk_all(struct qcow2 *s, struct qcow2_walk *w, struct blk_check_result *res, bool with_refcounts,
                    bool fix_copied)
{
    memset(w, 0, sizeof(*w));
    w->s = s;
    w->res = res;
    w->fix_copied = fix_copied;
    w->ncl = qcow2_file_clusters(s);
    if (w->ncl > QCOW2_CHECK_MAX_CLUSTERS) {
        LOG_ERR("%s: %llu clusters are more than check can count", s->img->path, (unsigned long long)w->ncl);
        return VERR_TOO_LARGE;
    }
    w->refs = calloc(w->ncl ? w->ncl : 1, sizeof(*w->refs));
    w->kind = calloc(w->ncl ? w->ncl : 1, 1);
    w->l2 = malloc(s->cluster_size);
    if (!w->refs || !w->kind || !w->l2) {
        walk_free(w);
        return VERR_NO_MEMORY;
    }
    walk_ref(w, 0, s->cluster_size, KIND_META, "header");
    int rc = walk_l1(w, s->l1_offset, s->l1_size, true, "active L1 table");
    if (rc == 0)
        rc = walk_snapshots(w);
    if (rc == 0)
        rc = walk_bitmaps(w);
    if (rc == 0 && with_refcounts) {
        walk_ref(w, s->rt_offset, (uint64_t)s->rt_clusters << s->cluster_bits, KIND_META, "refcount table");
        for (uint64_t i = 0; i < s->rt_entries; i++) {
            if (s->rt[i])
                walk_ref(w, s->rt[i], s->cluster_size, KIND_META, "refcount block");
        }
    }
    if (rc < 0)
        walk_free(w);
    return rc;
}

/* Compares every refcount on disk with the references counted. */
static int compare_refcounts(struct qcow2 *s, struct qcow2_walk *w, struct blk_check_result *res)
{
    uint64_t per_block = 1ull << s->rb_bits;
    for (uint64_t c = 0; c < w->ncl; c++) {
        uint64_t v;
        int rc = qcow2_refcount_get(s, c, &v);
        if (rc < 0)
            return rc;
        if (v < w->refs[c])
            blk_check_problem(res, false, "cluster %llu: refcount %llu but %u references", (unsigned long long)c,
                              (unsigned long long)v, w->refs[c]);
        else if (v > w->refs[c])
            blk_check_problem(res, true, "cluster %llu: refcount %llu but %u references (leaked)",
                              (unsigned long long)c, (unsigned long long)v, w->refs[c]);
    }
    /* Counts for clusters past the end of the file are leaks too. */
    for (uint64_t ri = w->ncl / per_block; ri < s->rt_entries; ri++) {
        if (!s->rt[ri])
            continue;
        for (uint64_t c = RT_MAX(ri * per_block, w->ncl); c < (ri + 1) * per_block; c++) {
            uint64_t v;
            int rc = qcow2_refcount_get(s, c, &v);
            if (rc < 0)
                return rc;
            if (v)
                blk_check_problem(res, true, "cluster %llu past the end of the file has refcount %llu",
                                  (unsigned long long)c, (unsigned long long)v);
        }
    }
    return 0;
}

static int check_pass(struct qcow2 *s, struct blk_check_result *res, bool fix_copied, unsigned *fixed)
{
    struct qcow2_walk w;
    int rc = walk_all(s, &w, res, true, fix_copied);
    if (rc < 0)
        return rc;
    rc = compare_refcounts(s, &w, res);
    if (fixed)
        *fixed = w.fixed;
    walk_free(&w);
    return rc;
}

static int rebuild(struct qcow2 *s)
{
    struct blk_check_result scratch;
    struct qcow2_walk w;
    memset(&scratch, 0, sizeof(scratch));
    int rc = walk_all(s, &w, &scratch, false, false);
    if (rc < 0)
        return rc;
    rc = qcow2_refcount_rebuild(s, w.refs, w.ncl);
    walk_free(&w);
    return rc;
}

int qcow2_repair_dirty(struct qcow2 *s)
{
    return rebuild(s);
}

int qcow2_check(struct blk_image *img, bool repair, struct blk_check_result *res)
{
    struct qcow2 *s = img->priv;
    struct blk_check_result before;
    memset(&before, 0, sizeof(before));
    int rc = check_pass(s, &before, false, NULL);
    if (rc < 0)
        return rc;
    bool dirty = s->version >= 3 && (s->incompat & QCOW2_INCOMPAT_DIRTY);
    if (!repair || img->readonly || (before.errors == 0 && before.leaks == 0 && !dirty)) {
        *res = before;
        return 0;
    }
    rc = rebuild(s);
    if (rc == VERR_TOO_LARGE) {
        /* Counts the refcount width cannot hold: nothing was changed. */
        *res = before;
        blk_check_problem(res, false, "refcounts cannot be rebuilt: a cluster has more references than %u-bit "
                          "refcounts hold", 1u << s->refcount_order);
        return 0;
    }
    if (rc < 0)
        return rc;
    struct blk_check_result after;
    memset(&after, 0, sizeof(after));
    unsigned fixed = 0;
    if ((rc = check_pass(s, &after, true, &fixed)) < 0)
        return rc;
    unsigned found = before.errors + before.leaks, left = after.errors + after.leaks;
    *res = after;
    res->repaired = found > left ? found - left : fixed;
    if (after.errors == 0 && (s->incompat & QCOW2_INCOMPAT_CORRUPT)) {
        if ((rc = qcow2_header_write_u64(s, QCOW2_HDR_INCOMPAT, s->incompat & ~QCOW2_INCOMPAT_CORRUPT)) < 0)
            return rc;
        s->incompat &= ~QCOW2_INCOMPAT_CORRUPT;
        LOG_INFO("%s: corrupt bit cleared after repair", img->path);
    }
    return 0;
}
