/* qcow2.c - the qcow2 image format (QEMU's copy-on-write images, versions 2 and 3): open, read, write, create, resize. */

/*
 * Design: the facts come from QEMU's public specification (docs/interop/qcow2.txt);
 * section names below refer to it.  Versions 2 and 3 are read and written; new
 * images are version 3 with 64 KiB clusters and 16-bit refcounts.
 *
 * Metadata is write-through: every change to an L1 entry, an L2 entry or a refcount
 * is written to the file before the call returns, and nothing is cached dirty, so a
 * process killed at any moment loses no completed write.  New clusters are used in an
 * order that makes a kill leave at worst a leaked cluster (refcount 1, nothing points
 * to it), which check reports as a leak and repair gives back:
 *   1. the new cluster's refcount becomes 1 on disk (qcow2-refcount.c);
 *   2. the cluster is written complete (a data cluster with the bytes the write does
 *      not cover filled from the old cluster, the backing file or zeroes; a new L2
 *      table zeroed);
 *   3. the entry pointing to it (L2 entry, L1 entry) is written;
 *   4. whatever it replaced loses its reference.
 * Clusters shared with internal snapshots (refcount above 1) are never written in
 * place: writes copy them (data clusters and L2 tables alike), so snapshots stay
 * intact.  Compressed clusters are read with raw deflate and turned into normal
 * clusters when written.  L2 tables are read through a small LRU cache; refcount
 * blocks through another.
 *
 * Everything read from the file is untrusted: header fields, table offsets and sizes
 * are checked before use (blk_bad_format names the file and the field), and each L1
 * or L2 entry is checked when it is used, so that check can report a bad entry that
 * open did not need.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "qcow2.h"

#define LOG_COMPONENT "qcow2"

enum qcow2_kind { QCOW2_UNALLOCATED, QCOW2_ZERO, QCOW2_NORMAL, QCOW2_COMPRESSED };

/* ---- Small helpers shared by the qcow2 files ------------------------------------------ */

int qcow2_meta_write(struct qcow2 *s, uint64_t offset, const void *buf, size_t len)
{
    int rc = blk_file_write(s->img, offset, buf, len);
    if (rc == 0 && offset + len > s->file_bytes)
        s->file_bytes = offset + len;
    return rc;
}

int qcow2_header_write_u64(struct qcow2 *s, unsigned field, uint64_t value)
{
    uint8_t be[8];
    blk_put_be64(be, value);
    return qcow2_meta_write(s, field, be, 8);
}

uint8_t *qcow2_slot_get(struct qcow2 *s, struct qcow2_slot *slots, unsigned n, uint64_t offset, bool *hit)
{
    struct qcow2_slot *victim = &slots[0];
    s->stamp++;
    for (unsigned i = 0; i < n; i++) {
        if (slots[i].offset == offset) {
            slots[i].stamp = s->stamp;
            *hit = true;
            return slots[i].data;
        }
        if (slots[i].stamp < victim->stamp)
            victim = &slots[i];
    }
    victim->offset = offset;
    victim->stamp = s->stamp;
    *hit = false;
    return victim->data;
}

void qcow2_cache_forget(struct qcow2 *s, uint64_t offset)
{
    for (unsigned i = 0; i < QCOW2_L2_CACHE; i++) {
        if (s->l2c[i].offset == offset)
            s->l2c[i].offset = 0, s->l2c[i].stamp = 0;
    }
    for (unsigned i = 0; i < QCOW2_RB_CACHE; i++) {
        if (s->rbc[i].offset == offset)
            s->rbc[i].offset = 0, s->rbc[i].stamp = 0;
    }
}

void qcow2_compressed_range(const struct qcow2 *s, uint64_t entry, uint64_t *start, uint64_t *len)
{
    /* "Compressed Clusters Descriptor": offset, then the count of 512-byte sectors after the first. */
    uint64_t sectors = ((entry >> s->csize_shift) & s->csize_mask) + 1;
    *start = entry & s->coffset_mask;
    *len = sectors * 512 - (*start & 511);
}

static int qcow2_file_write(struct qcow2 *s, uint64_t offset, const void *buf, size_t len)
{
    return qcow2_meta_write(s, offset, buf, len);
}

/* ---- L1/L2 lookup ------------------------------------------------------------------- */

/* The L2 table of L1 entry l1i into the cache, or *table NULL when there is none. */
static int l2_table_get(struct qcow2 *s, uint64_t l1i, uint8_t **table, uint64_t *l2_offset)
{
    uint64_t e = s->l1[l1i];
    uint64_t off = e & QCOW2_OFFSET_MASK;
    *table = NULL;
    *l2_offset = 0;
    if (e & QCOW2_L1_RESERVED)
        return blk_bad_format(s->img, "L1 entry %llu (%#llx) has reserved bits set", (unsigned long long)l1i,
                              (unsigned long long)e);
    if (off == 0)
        return 0;
    if (off & (s->cluster_size - 1))
        return blk_bad_format(s->img, "L1 entry %llu: L2 table offset %#llx is not cluster-aligned",
                              (unsigned long long)l1i, (unsigned long long)off);
    if (off >= s->file_bytes)
        return blk_bad_format(s->img, "L1 entry %llu: L2 table offset %#llx is past the end of the file",
                              (unsigned long long)l1i, (unsigned long long)off);
    if (qcow2_is_fixed_meta(s, off))
        return blk_bad_format(s->img, "L1 entry %llu: L2 table at %#llx overlaps the header, L1 or refcount table",
                              (unsigned long long)l1i, (unsigned long long)off);
    bool hit;
    uint8_t *data = qcow2_slot_get(s, s->l2c, QCOW2_L2_CACHE, off, &hit);
    if (!hit) {
        int rc = blk_file_read_zero_tail(s->img, off, data, s->cluster_size);
        if (rc < 0) {
            qcow2_cache_forget(s, off);
            return rc;
        }
    }
    *table = data;
    *l2_offset = off;
    return 0;
}

/* Classifies and checks one L2 entry; *host is the cluster's file offset (or 0). */
static int l2_entry_decode(struct qcow2 *s, uint64_t vc, uint64_t e, enum qcow2_kind *kind, uint64_t *host)
{
    *host = 0;
    if (e & QCOW2_OFLAG_COMPRESSED) {
        uint64_t start, len;
        qcow2_compressed_range(s, e, &start, &len);
        if (start == 0 || start >= s->file_bytes)
            return blk_bad_format(s->img, "L2 entry of guest cluster %llu: compressed data at %#llx is outside the file",
                                  (unsigned long long)vc, (unsigned long long)start);
        *kind = QCOW2_COMPRESSED;
        *host = start;
        return 0;
    }
    uint64_t reserved = QCOW2_L2_RESERVED | (s->version < 3 ? QCOW2_OFLAG_ZERO : 0);
    if (e & reserved)
        return blk_bad_format(s->img, "L2 entry of guest cluster %llu (%#llx) has reserved bits set",
                              (unsigned long long)vc, (unsigned long long)e);
    uint64_t off = e & QCOW2_OFFSET_MASK;
    if (off & (s->cluster_size - 1))
        return blk_bad_format(s->img, "L2 entry of guest cluster %llu: offset %#llx is not cluster-aligned",
                              (unsigned long long)vc, (unsigned long long)off);
    if (off && off >= RT_ALIGN_UP(s->file_bytes, s->cluster_size))
        return blk_bad_format(s->img, "L2 entry of guest cluster %llu: offset %#llx is past the end of the file",
                              (unsigned long long)vc, (unsigned long long)off);
    if (off && qcow2_is_fixed_meta(s, off))
        return blk_bad_format(s->img, "L2 entry of guest cluster %llu: cluster %#llx overlaps the header, L1 or "
                              "refcount table", (unsigned long long)vc, (unsigned long long)off);
    *host = off;
    if (e & QCOW2_OFLAG_ZERO)
        *kind = QCOW2_ZERO;
    else
        *kind = off ? QCOW2_NORMAL : QCOW2_UNALLOCATED;
    return 0;
}

/*
 * What the run at offset (at most len bytes, within one L2 table) is: its kind and,
 * for normal clusters, the file offset of its first byte; clusters of the same kind
 * that follow (and for normal clusters lie one after the other in the file) join it.
 */
static int map_run(struct qcow2 *s, uint64_t offset, uint64_t len, enum qcow2_kind *kind, uint64_t *host,
                   uint64_t *entry, uint64_t *n)
{
    uint64_t vc = offset >> s->cluster_bits;
    uint64_t l1i = vc >> s->l2_bits;
    uint64_t l2i = vc & ((1ull << s->l2_bits) - 1);
    uint64_t in = offset & (s->cluster_size - 1);
    uint64_t table_end = (l1i + 1) << (s->l2_bits + s->cluster_bits);
    uint64_t end = RT_MIN(offset + len, table_end);
    uint8_t *table;
    uint64_t l2_offset;
    int rc;

    *entry = 0;
    *host = 0;
    if (l1i >= s->l1_size)
        return blk_bad_format(s->img, "guest offset %#llx is past the L1 table", (unsigned long long)offset);
    if ((rc = l2_table_get(s, l1i, &table, &l2_offset)) < 0)
        return rc;
    if (!table) {
        *kind = QCOW2_UNALLOCATED;
        *n = end - offset;
        return 0;
    }
    uint64_t e = blk_be64(table + 8 * l2i);
    if ((rc = l2_entry_decode(s, vc, e, kind, host)) < 0)
        return rc;
    *entry = e;
    uint64_t run = s->cluster_size - in;
    if (*kind != QCOW2_COMPRESSED) {
        for (uint64_t j = l2i + 1; offset + run < end; j++) {
            enum qcow2_kind k2;
            uint64_t h2;
            if (l2_entry_decode(s, vc + (j - l2i), blk_be64(table + 8 * j), &k2, &h2) < 0 || k2 != *kind)
                break;
            if (*kind == QCOW2_NORMAL && h2 != *host + ((j - l2i) << s->cluster_bits))
                break;
            run += s->cluster_size;
        }
    }
    *n = RT_MIN(run, end - offset);
    if (*kind == QCOW2_NORMAL)
        *host += in;
    return 0;
}

/* The decompressed content of a compressed cluster (raw deflate, 4 KiB window). */
static int cluster_decompress(struct qcow2 *s, uint64_t entry, const uint8_t **out)
{
    if (s->comp_entry == entry && entry != 0) {
        *out = s->comp_out;
        return 0;
    }
    uint64_t start, len;
    qcow2_compressed_range(s, entry, &start, &len);
    int rc = blk_file_read_zero_tail(s->img, start, s->comp_in, len);
    if (rc < 0)
        return rc;
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    if (inflateInit2(&zs, -12) != Z_OK)
        return VERR_NO_MEMORY;
    zs.next_in = s->comp_in;
    zs.avail_in = (uInt)len;
    zs.next_out = s->comp_out;
    zs.avail_out = (uInt)s->cluster_size;
    int zrc = inflate(&zs, Z_FINISH);
    bool full = zs.avail_out == 0;
    inflateEnd(&zs);
    s->comp_entry = 0;
    if (!(zrc == Z_STREAM_END || ((zrc == Z_OK || zrc == Z_BUF_ERROR) && full)) || !full)
        return blk_bad_format(s->img, "compressed cluster at %#llx (%llu bytes) does not decompress to a cluster",
                              (unsigned long long)start, (unsigned long long)len);
    s->comp_entry = entry;
    *out = s->comp_out;
    return 0;
}

/* ---- Read ---------------------------------------------------------------------------- */

static int qcow2_read(struct blk_image *img, uint64_t offset, void *buf, size_t len)
{
    struct qcow2 *s = img->priv;
    uint8_t *p = buf;
    while (len) {
        enum qcow2_kind kind;
        uint64_t host, entry, n;
        const uint8_t *data;
        int rc = map_run(s, offset, len, &kind, &host, &entry, &n);
        if (rc < 0)
            return rc;
        switch (kind) {
        case QCOW2_UNALLOCATED:
            rc = blk_layer_read_below(img, offset, p, n);
            break;
        case QCOW2_ZERO:
            memset(p, 0, n);
            break;
        case QCOW2_NORMAL:
            rc = blk_file_read_zero_tail(img, host, p, n);
            break;
        case QCOW2_COMPRESSED:
            if ((rc = cluster_decompress(s, entry, &data)) == 0)
                memcpy(p, data + (offset & (s->cluster_size - 1)), n);
            break;
        }
        if (rc < 0)
            return rc;
        p += n;
        offset += n;
        len -= n;
    }
    return 0;
}

/* ---- Write --------------------------------------------------------------------------- */

static int refuse_if_corrupt(struct qcow2 *s)
{
    if (!(s->incompat & QCOW2_INCOMPAT_CORRUPT))
        return 0;
    LOG_ERR("%s: the image is marked corrupt; it can only be read (check --repair may fix it)", s->img->path);
    return VERR_ACCESS_DENIED;
}

/* Writes L2 entry l2i of the table at l2_offset (cached as table). */
static int l2_entry_write(struct qcow2 *s, uint8_t *table, uint64_t l2_offset, uint64_t l2i, uint64_t e)
{
    blk_put_be64(table + 8 * l2i, e);
    int rc = qcow2_meta_write(s, l2_offset + 8 * l2i, table + 8 * l2i, 8);
    if (rc < 0)
        qcow2_cache_forget(s, l2_offset);
    return rc;
}

static int l1_entry_write(struct qcow2 *s, uint64_t l1i, uint64_t e)
{
    uint8_t be[8];
    blk_put_be64(be, e);
    int rc = qcow2_meta_write(s, s->l1_offset + 8 * l1i, be, 8);
    if (rc == 0)
        s->l1[l1i] = e;
    return rc;
}

/* Whether the cluster at host may be written in place (its refcount is exactly 1). */
static int cluster_is_exclusive(struct qcow2 *s, uint64_t entry_flags, uint64_t host, bool *exclusive)
{
    uint64_t v;
    if (entry_flags & QCOW2_OFLAG_COPIED) {
        *exclusive = true;
        return 0;
    }
    int rc = qcow2_refcount_get(s, host >> s->cluster_bits, &v);
    if (rc < 0)
        return rc;
    if (v == 0)
        return blk_bad_format(s->img, "cluster at %#llx is in use but its refcount is 0 (run check --repair)",
                              (unsigned long long)host);
    *exclusive = v == 1;
    return 0;
}

/*
 * The L2 table of L1 entry l1i, ready to be changed: a new zeroed one when there is
 * none, a copy when a snapshot shares it.
 */
static int l2_table_for_write(struct qcow2 *s, uint64_t l1i, uint8_t **table, uint64_t *l2_offset)
{
    int rc = l2_table_get(s, l1i, table, l2_offset);
    if (rc < 0)
        return rc;
    uint64_t old = *l2_offset;
    if (*table) {
        bool exclusive;
        if ((rc = cluster_is_exclusive(s, s->l1[l1i], old, &exclusive)) < 0)
            return rc;
        if (exclusive)
            return 0;
    }
    uint64_t off;
    if ((rc = qcow2_cluster_alloc(s, &off)) < 0)
        return rc;
    const uint8_t *old_data = *table;
    bool hit;
    uint8_t *data = qcow2_slot_get(s, s->l2c, QCOW2_L2_CACHE, off, &hit);
    if (old_data)
        memmove(data, old_data, s->cluster_size);
    else
        memset(data, 0, s->cluster_size);
    if ((rc = qcow2_meta_write(s, off, data, s->cluster_size)) < 0 ||
        (rc = l1_entry_write(s, l1i, off | QCOW2_OFLAG_COPIED)) < 0) {
        qcow2_cache_forget(s, off);
        return rc;
    }
    if (old && (rc = qcow2_cluster_unref(s, old, s->cluster_size)) < 0)
        return rc;
    *table = data;
    *l2_offset = off;
    return 0;
}

/* Guest bytes [voff, voff + len) as the layers below show them (zeroes past the disk's end). */
static int fill_from_below(struct qcow2 *s, uint64_t voff, uint8_t *dst, uint64_t len)
{
    uint64_t avail = voff < s->img->size_bytes ? RT_MIN(len, s->img->size_bytes - voff) : 0;
    memset(dst + avail, 0, len - avail);
    return avail ? blk_layer_read_below(s->img, voff, dst, avail) : 0;
}

/* Writes n bytes at offset, all inside one guest cluster. */
static int write_cluster(struct qcow2 *s, uint64_t offset, const uint8_t *buf, uint64_t n)
{
    uint64_t cs = s->cluster_size;
    uint64_t vc = offset >> s->cluster_bits;
    uint64_t l1i = vc >> s->l2_bits, l2i = vc & ((1ull << s->l2_bits) - 1);
    uint64_t in = offset & (cs - 1);
    uint8_t *table;
    uint64_t l2_offset, host;
    enum qcow2_kind kind;
    int rc;

    if (l1i >= s->l1_size)
        return blk_bad_format(s->img, "guest offset %#llx is past the L1 table", (unsigned long long)offset);
    if ((rc = l2_table_for_write(s, l1i, &table, &l2_offset)) < 0)
        return rc;
    uint64_t e = blk_be64(table + 8 * l2i);
    if ((rc = l2_entry_decode(s, vc, e, &kind, &host)) < 0)
        return rc;
    bool exclusive = false;
    if ((kind == QCOW2_NORMAL || kind == QCOW2_ZERO) && host &&
        (rc = cluster_is_exclusive(s, e, host, &exclusive)) < 0)
        return rc;
    if (exclusive && kind == QCOW2_NORMAL)
        return qcow2_file_write(s, host + in, buf, n);

    /* The new content of the whole cluster. */
    uint8_t *cow = s->cow;
    if (n < cs) {
        const uint8_t *data;
        switch (kind) {
        case QCOW2_UNALLOCATED:
            if ((rc = fill_from_below(s, vc << s->cluster_bits, cow, in)) < 0 ||
                (rc = fill_from_below(s, offset + n, cow + in + n, cs - in - n)) < 0)
                return rc;
            break;
        case QCOW2_ZERO:
            memset(cow, 0, cs);
            break;
        case QCOW2_NORMAL:
            if ((rc = blk_file_read_zero_tail(s->img, host, cow, cs)) < 0)
                return rc;
            break;
        case QCOW2_COMPRESSED:
            if ((rc = cluster_decompress(s, e, &data)) < 0)
                return rc;
            memcpy(cow, data, cs);
            break;
        }
    }
    memcpy(cow + in, buf, n);

    if (exclusive) {
        /* A preallocated zero cluster of our own: fill it, then drop the zero flag. */
        if ((rc = qcow2_file_write(s, host, cow, cs)) < 0)
            return rc;
        return l2_entry_write(s, table, l2_offset, l2i, host | QCOW2_OFLAG_COPIED);
    }
    uint64_t off;
    if ((rc = qcow2_cluster_alloc(s, &off)) < 0)
        return rc;
    if ((rc = qcow2_file_write(s, off, cow, cs)) < 0)
        return rc;
    /* The allocation may have evicted the table: fetch it again before changing it. */
    if ((rc = l2_table_get(s, l1i, &table, &l2_offset)) < 0)
        return rc;
    if ((rc = l2_entry_write(s, table, l2_offset, l2i, off | QCOW2_OFLAG_COPIED)) < 0)
        return rc;
    if (kind == QCOW2_COMPRESSED) {
        uint64_t start, len;
        qcow2_compressed_range(s, e, &start, &len);
        return qcow2_cluster_unref(s, start, len);
    }
    return host ? qcow2_cluster_unref(s, host, cs) : 0;
}

static int qcow2_write(struct blk_image *img, uint64_t offset, const void *buf, size_t len)
{
    struct qcow2 *s = img->priv;
    const uint8_t *p = buf;
    int rc = refuse_if_corrupt(s);
    while (rc == 0 && len) {
        uint64_t n = RT_MIN(len, s->cluster_size - (offset & (s->cluster_size - 1)));
        rc = write_cluster(s, offset, p, n);
        p += n;
        offset += n;
        len -= n;
    }
    return rc;
}

/*
 * Replaces the L2 entry of guest cluster vc by e (when it differs) and drops the
 * reference the old entry held unless keep_host.
 */
static int cluster_set_entry(struct qcow2 *s, uint64_t vc, uint64_t new_entry, bool keep_host)
{
    uint64_t l1i = vc >> s->l2_bits, l2i = vc & ((1ull << s->l2_bits) - 1);
    uint8_t *table;
    uint64_t l2_offset, host;
    enum qcow2_kind kind;
    int rc;
    if ((rc = l2_table_for_write(s, l1i, &table, &l2_offset)) < 0)
        return rc;
    uint64_t e = blk_be64(table + 8 * l2i);
    if ((rc = l2_entry_decode(s, vc, e, &kind, &host)) < 0)
        return rc;
    if (e == new_entry)
        return 0;
    if ((rc = l2_entry_write(s, table, l2_offset, l2i, new_entry)) < 0)
        return rc;
    if (keep_host)
        return 0;
    if (kind == QCOW2_COMPRESSED) {
        uint64_t start, len;
        qcow2_compressed_range(s, e, &start, &len);
        return qcow2_cluster_unref(s, start, len);
    }
    return host ? qcow2_cluster_unref(s, host, s->cluster_size) : 0;
}

/* The whole guest clusters inside [offset, offset + len) (the disk's last partial cluster counts as whole). */
static void whole_clusters(struct qcow2 *s, uint64_t offset, uint64_t len, uint64_t *first, uint64_t *end)
{
    uint64_t cs = s->cluster_size;
    *first = (offset + cs - 1) >> s->cluster_bits;
    uint64_t stop = offset + len;
    *end = (stop == s->img->size_bytes ? stop + cs - 1 : stop) >> s->cluster_bits;
    if (*end < *first)
        *end = *first;
}

static int qcow2_discard(struct blk_image *img, uint64_t offset, uint64_t len)
{
    struct qcow2 *s = img->priv;
    int rc = refuse_if_corrupt(s);
    uint64_t first, end;
    whole_clusters(s, offset, len, &first, &end);
    /* Discarded content must not turn into the backing file's: zero clusters then (v3). */
    bool backed = img->backing_name != NULL;
    if (backed && s->version < 3)
        return rc;
    for (uint64_t vc = first; rc == 0 && vc < end; vc++) {
        enum qcow2_kind kind;
        uint64_t host, entry, n;
        if ((rc = map_run(s, vc << s->cluster_bits, s->cluster_size, &kind, &host, &entry, &n)) < 0)
            break;
        if (kind == QCOW2_UNALLOCATED || (kind == QCOW2_ZERO && host == 0))
            continue;
        rc = cluster_set_entry(s, vc, backed ? QCOW2_OFLAG_ZERO : 0, false);
    }
    return rc;
}

static int qcow2_write_zeroes(struct blk_image *img, uint64_t offset, uint64_t len)
{
    struct qcow2 *s = img->priv;
    int rc = refuse_if_corrupt(s);
    if (rc < 0)
        return rc;
    uint64_t cs = s->cluster_size;
    uint64_t first, end;
    whole_clusters(s, offset, len, &first, &end);
    uint8_t *zeroes = calloc(1, cs);
    if (!zeroes)
        return VERR_NO_MEMORY;
    bool backed = img->backing_name != NULL;
    uint64_t pos = offset, stop = offset + len;
    while (rc == 0 && pos < stop) {
        uint64_t vc = pos >> s->cluster_bits;
        uint64_t n = RT_MIN(stop - pos, cs - (pos & (cs - 1)));
        if (vc < first || vc >= end || (s->version < 3 && backed)) {
            /* Partial clusters, and v2 over a backing file (no zero flag): zero bytes. */
            rc = write_cluster(s, pos, zeroes, n);
        } else {
            enum qcow2_kind kind;
            uint64_t host, entry, run;
            if ((rc = map_run(s, vc << s->cluster_bits, cs, &kind, &host, &entry, &run)) < 0)
                break;
            if (s->version < 3) {
                if (kind != QCOW2_UNALLOCATED)
                    rc = cluster_set_entry(s, vc, 0, false);
            } else if (kind == QCOW2_ZERO) {
                /* Reads as zeroes already. */
            } else if (kind == QCOW2_NORMAL && (entry & QCOW2_OFLAG_COPIED)) {
                /* Keep the cluster (a preallocated image stays preallocated). */
                rc = cluster_set_entry(s, vc, host | QCOW2_OFLAG_COPIED | QCOW2_OFLAG_ZERO, true);
            } else {
                rc = cluster_set_entry(s, vc, QCOW2_OFLAG_ZERO, false);
            }
        }
        pos += n;
    }
    free(zeroes);
    return rc;
}

static int qcow2_block_status(struct blk_image *img, uint64_t offset, uint64_t len, bool *allocated, uint64_t *pnum)
{
    struct qcow2 *s = img->priv;
    uint64_t done = 0;
    while (done < len) {
        enum qcow2_kind kind;
        uint64_t host, entry, n;
        int rc = map_run(s, offset + done, len - done, &kind, &host, &entry, &n);
        if (rc < 0)
            return rc;
        bool a = kind != QCOW2_UNALLOCATED;
        if (done == 0)
            *allocated = a;
        else if (a != *allocated)
            break;
        done += n;
    }
    *pnum = done;
    return 0;
}

/* ---- Resize ---------------------------------------------------------------------------- */

static int qcow2_resize(struct blk_image *img, uint64_t new_size)
{
    struct qcow2 *s = img->priv;
    int rc = refuse_if_corrupt(s);
    if (rc < 0)
        return rc;
    if (new_size < img->size_bytes) {
        LOG_ERR("%s: qcow2 images cannot shrink (%llu to %llu bytes)", img->path,
                (unsigned long long)img->size_bytes, (unsigned long long)new_size);
        return VERR_NOT_SUPPORTED;
    }
    uint64_t span = 1ull << (s->l2_bits + s->cluster_bits);
    uint64_t need = (new_size + span - 1) / span;
    if (need > QCOW2_MAX_L1_ENTRIES) {
        LOG_ERR("%s: %llu bytes need a larger L1 table than qcow2 allows", img->path, (unsigned long long)new_size);
        return VERR_TOO_LARGE;
    }
    uint8_t hdr[24];
    blk_put_be64(hdr, new_size);
    blk_put_be32(hdr + 8, 0); /* crypt_method: encrypted images are never opened */
    if (need <= s->l1_size) {
        if ((rc = qcow2_header_write_u64(s, QCOW2_HDR_SIZE, new_size)) == 0)
            img->size_bytes = new_size;
        return rc;
    }
    uint64_t *l1 = realloc(s->l1, need * 8);
    if (!l1)
        return VERR_NO_MEMORY;
    s->l1 = l1;
    memset(l1 + s->l1_size, 0, (need - s->l1_size) * 8);
    uint64_t old_bytes = (uint64_t)s->l1_size * 8;
    uint64_t old_room = RT_ALIGN_UP(old_bytes, s->cluster_size);
    blk_put_be32(hdr + 12, (uint32_t)need);
    if (s->l1_size && need * 8 <= old_room) {
        /* The table's last cluster has room: zero the new entries, then switch the header. */
        uint8_t *zeroes = calloc(1, need * 8 - old_bytes);
        if (!zeroes)
            return VERR_NO_MEMORY;
        rc = qcow2_meta_write(s, s->l1_offset + old_bytes, zeroes, need * 8 - old_bytes);
        free(zeroes);
        if (rc == 0)
            rc = qcow2_meta_write(s, QCOW2_HDR_SIZE, hdr, 16);
    } else {
        /* Move it: write the grown table elsewhere, switch the header, free the old clusters. */
        uint64_t clusters = RT_ALIGN_UP(need * 8, s->cluster_size) >> s->cluster_bits;
        uint64_t off;
        if ((rc = qcow2_cluster_alloc_range(s, clusters, &off)) < 0)
            return rc;
        uint8_t *table = calloc(clusters, s->cluster_size);
        if (!table)
            return VERR_NO_MEMORY;
        for (uint64_t i = 0; i < need; i++)
            blk_put_be64(table + 8 * i, l1[i]);
        rc = qcow2_meta_write(s, off, table, clusters << s->cluster_bits);
        free(table);
        blk_put_be64(hdr + 16, off);
        if (rc == 0)
            rc = qcow2_meta_write(s, QCOW2_HDR_SIZE, hdr, 24);
        if (rc == 0) {
            uint64_t old_off = s->l1_offset;
            s->l1_offset = off;
            s->l1_size = (uint32_t)need;
            img->size_bytes = new_size;
            return old_bytes ? qcow2_cluster_unref(s, old_off, old_room) : 0;
        }
    }
    if (rc == 0) {
        s->l1_size = (uint32_t)need;
        img->size_bytes = new_size;
    }
    return rc;
}

/* ---- Open and close ---------------------------------------------------------------------- */

static int qcow2_probe(const uint8_t *head, size_t head_len, uint64_t file_bytes, const char *path)
{
    /* Any version: open() then names an unsupported one instead of the file passing as raw. */
    return head_len >= 8 && blk_be32(head) == QCOW2_MAGIC ? 100 : 0;
}

static void qcow2_state_free(struct qcow2 *s)
{
    if (!s)
        return;
    for (unsigned i = 0; i < QCOW2_L2_CACHE; i++)
        free(s->l2c[i].data);
    for (unsigned i = 0; i < QCOW2_RB_CACHE; i++)
        free(s->rbc[i].data);
    free(s->l1);
    free(s->rt);
    free(s->cow);
    free(s->comp_in);
    free(s->comp_out);
    free(s->feature_table);
    free(s);
}

static void qcow2_close(struct blk_image *img)
{
    qcow2_state_free(img->priv);
    img->priv = NULL;
}

/* The name the feature name table gives an incompatible feature bit, or "". */
static const char *feature_name(const struct qcow2 *s, unsigned type, unsigned bit, char *out, size_t out_len)
{
    out[0] = '\0';
    for (size_t i = 0; i + 48 <= s->feature_table_len; i += 48) {
        const uint8_t *f = s->feature_table + i;
        if (f[0] == type && f[1] == bit) {
            size_t n = strnlen((const char *)f + 2, 46);
            n = RT_MIN(n, out_len - 1);
            memcpy(out, f + 2, n);
            out[n] = '\0';
        }
    }
    return out;
}

static int refuse_feature(struct qcow2 *s, const char *what)
{
    LOG_ERR("%s: qcow2 images with %s are not supported", s->img->path, what);
    return VERR_NOT_SUPPORTED;
}

/* Header extensions between the header and end ("Header extensions"). */
static int parse_extensions(struct qcow2 *s, const uint8_t *hdr, uint64_t pos, uint64_t end)
{
    struct blk_image *img = s->img;
    while (pos + 8 <= end) {
        uint32_t type = blk_be32(hdr + pos), len = blk_be32(hdr + pos + 4);
        if (type == QCOW2_EXT_END)
            return 0;
        if (len > end - pos - 8)
            return blk_bad_format(img, "header extension %#x at byte %llu: length %u passes the header cluster",
                                  type, (unsigned long long)pos, len);
        const uint8_t *data = hdr + pos + 8;
        switch (type) {
        case QCOW2_EXT_BACKING_FORMAT: {
            char name[32];
            if (len == 0 || len >= sizeof(name))
                return blk_bad_format(img, "backing format extension: length %u", len);
            memcpy(name, data, len);
            name[len] = '\0';
            enum blk_format fmt;
            if (blk_format_from_name(name, &fmt) < 0) {
                LOG_WARN("%s: backing format \"%s\" is unknown here; the backing file will be probed", img->path, name);
                fmt = BLK_FMT_AUTO;
            }
            img->backing_format = fmt;
            break;
        }
        case QCOW2_EXT_FEATURE_TABLE:
            free(s->feature_table);
            s->feature_table = malloc(len ? len : 1);
            if (!s->feature_table)
                return VERR_NO_MEMORY;
            memcpy(s->feature_table, data, len);
            s->feature_table_len = len;
            break;
        case QCOW2_EXT_BITMAPS:
            if (len < 24)
                return blk_bad_format(img, "bitmaps extension: length %u", len);
            s->has_bitmaps = true;
            s->nb_bitmaps = blk_be32(data);
            s->bitmap_dir_size = blk_be64(data + 8);
            s->bitmap_dir_offset = blk_be64(data + 16);
            break;
        default:
            break; /* unknown extensions can be ignored (the spec says so) */
        }
        pos += 8 + RT_ALIGN_UP((uint64_t)len, 8);
    }
    return 0;
}

/* Checks the incompatible feature bits ("Header", bytes 72-79). */
static int check_features(struct qcow2 *s, const uint8_t *hdr)
{
    uint64_t f = s->incompat;
    if (f & QCOW2_INCOMPAT_DATA_FILE)
        return refuse_feature(s, "an external data file");
    if (f & QCOW2_INCOMPAT_EXTL2)
        return refuse_feature(s, "extended L2 entries (subclusters)");
    uint8_t ctype = s->header_length > QCOW2_HDR_COMPRESSION ? hdr[QCOW2_HDR_COMPRESSION] : 0;
    if (f & QCOW2_INCOMPAT_COMPRESSION) {
        if (ctype == 0)
            return blk_bad_format(s->img, "compression type bit set but compression_type is 0");
        return refuse_feature(s, ctype == 1 ? "zstd compression" : "an unknown compression type");
    }
    if (ctype != 0)
        return blk_bad_format(s->img, "compression_type %u without the compression type feature bit", ctype);
    uint64_t unknown = f & ~(QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_CORRUPT);
    if (unknown) {
        unsigned bit = (unsigned)__builtin_ctzll(unknown);
        char name[48];
        feature_name(s, 0, bit, name, sizeof(name));
        LOG_ERR("%s: unknown incompatible qcow2 feature bit %u%s%s%s", s->img->path, bit, name[0] ? " (\"" : "",
                name, name[0] ? "\")" : "");
        return VERR_NOT_SUPPORTED;
    }
    return 0;
}

/* Reads a table of n big-endian 64-bit entries at offset into host order. */
static int read_table(struct qcow2 *s, uint64_t offset, uint64_t n, uint64_t **out)
{
    uint64_t *t = malloc(n ? n * 8 : 8);
    if (!t)
        return VERR_NO_MEMORY;
    int rc = n ? blk_file_read_zero_tail(s->img, offset, t, n * 8) : 0;
    if (rc < 0) {
        free(t);
        return rc;
    }
    for (uint64_t i = 0; i < n; i++)
        t[i] = blk_be64(&t[i]);
    *out = t;
    return 0;
}

static int parse_header(struct qcow2 *s, const uint8_t *hdr)
{
    struct blk_image *img = s->img;
    uint64_t cs = s->cluster_size;
    if (s->version >= 3) {
        s->incompat = blk_be64(hdr + QCOW2_HDR_INCOMPAT);
        s->compat = blk_be64(hdr + QCOW2_HDR_COMPAT);
        s->autoclear = blk_be64(hdr + QCOW2_HDR_AUTOCLEAR);
        s->refcount_order = blk_be32(hdr + QCOW2_HDR_REFCOUNT_ORDER);
        s->header_length = blk_be32(hdr + QCOW2_HDR_LENGTH);
        if (s->refcount_order > 6)
            return blk_bad_format(img, "refcount_order %u (at most 6)", s->refcount_order);
        if (s->header_length < QCOW2_V3_HEADER_BYTES || s->header_length % 8 || s->header_length > cs - 8)
            return blk_bad_format(img, "header_length %u", s->header_length);
    } else {
        s->refcount_order = 4;
        s->header_length = QCOW2_V2_HEADER_BYTES;
    }
    int rc = check_features(s, hdr);
    if (rc < 0)
        return rc;
    uint32_t crypt = blk_be32(hdr + QCOW2_HDR_CRYPT_METHOD);
    if (crypt != 0)
        return refuse_feature(s, crypt == 1 ? "AES encryption" : crypt == 2 ? "LUKS encryption" : "encryption");

    s->l2_bits = s->cluster_bits - 3;
    s->rb_bits = s->cluster_bits + 3 - s->refcount_order;
    s->refcount_max = s->refcount_order == 6 ? UINT64_MAX : (1ull << (1u << s->refcount_order)) - 1;
    s->csize_shift = 62 - (s->cluster_bits - 8);
    s->csize_mask = (1ull << (s->cluster_bits - 8)) - 1;
    s->coffset_mask = (1ull << s->csize_shift) - 1;

    uint64_t size = blk_be64(hdr + QCOW2_HDR_SIZE);
    if (size > BLK_MAX_SIZE_BYTES)
        return blk_bad_format(img, "size %llu is larger than %llu", (unsigned long long)size,
                              (unsigned long long)BLK_MAX_SIZE_BYTES);
    img->size_bytes = size;

    s->l1_size = blk_be32(hdr + QCOW2_HDR_L1_SIZE);
    s->l1_offset = blk_be64(hdr + QCOW2_HDR_L1_OFFSET);
    uint64_t span = 1ull << (s->l2_bits + s->cluster_bits);
    if (s->l1_size > QCOW2_MAX_L1_ENTRIES)
        return blk_bad_format(img, "l1_size %u is larger than %u", s->l1_size, QCOW2_MAX_L1_ENTRIES);
    if (s->l1_size < (size + span - 1) / span)
        return blk_bad_format(img, "l1_size %u is too small for size %llu", s->l1_size, (unsigned long long)size);
    if (s->l1_size && (s->l1_offset == 0 || (s->l1_offset & (cs - 1))))
        return blk_bad_format(img, "l1_table_offset %#llx is not a cluster-aligned offset past the header",
                              (unsigned long long)s->l1_offset);
    if (s->l1_size && (s->l1_offset >= s->file_bytes || s->file_bytes - s->l1_offset < (uint64_t)s->l1_size * 8))
        return blk_bad_format(img, "L1 table (l1_table_offset %#llx, l1_size %u) passes the end of the file",
                              (unsigned long long)s->l1_offset, s->l1_size);

    s->rt_offset = blk_be64(hdr + QCOW2_HDR_RT_OFFSET);
    s->rt_clusters = blk_be32(hdr + QCOW2_HDR_RT_CLUSTERS);
    if (s->rt_offset == 0 || (s->rt_offset & (cs - 1)))
        return blk_bad_format(img, "refcount_table_offset %#llx is not cluster-aligned",
                              (unsigned long long)s->rt_offset);
    if (s->rt_clusters == 0 || (uint64_t)s->rt_clusters << s->cluster_bits > QCOW2_MAX_RT_BYTES)
        return blk_bad_format(img, "refcount_table_clusters %u", s->rt_clusters);
    if (s->rt_offset >= s->file_bytes)
        return blk_bad_format(img, "refcount_table_offset %#llx is past the end of the file",
                              (unsigned long long)s->rt_offset);

    s->nb_snapshots = blk_be32(hdr + QCOW2_HDR_NB_SNAPSHOTS);
    s->snapshots_offset = blk_be64(hdr + QCOW2_HDR_SNAPSHOTS);
    if (s->nb_snapshots > QCOW2_MAX_SNAPSHOTS)
        return blk_bad_format(img, "nb_snapshots %u is larger than %u", s->nb_snapshots, QCOW2_MAX_SNAPSHOTS);
    if (s->nb_snapshots && ((s->snapshots_offset & (cs - 1)) || s->snapshots_offset == 0 ||
                            s->snapshots_offset >= s->file_bytes))
        return blk_bad_format(img, "snapshots_offset %#llx", (unsigned long long)s->snapshots_offset);

    uint64_t bf_off = blk_be64(hdr + QCOW2_HDR_BACKING_OFFSET);
    uint32_t bf_len = blk_be32(hdr + QCOW2_HDR_BACKING_SIZE);
    uint64_t ext_start = s->version >= 3 ? s->header_length : QCOW2_V2_HEADER_BYTES;
    uint64_t ext_end = cs;
    if (bf_off) {
        if (bf_len > QCOW2_MAX_BACKING_NAME)
            return blk_bad_format(img, "backing_file_size %u (at most %u)", bf_len, QCOW2_MAX_BACKING_NAME);
        if (bf_off < ext_start || bf_off > cs || cs - bf_off < bf_len)
            return blk_bad_format(img, "backing_file_offset %#llx is outside the header cluster",
                                  (unsigned long long)bf_off);
        if (memchr(hdr + bf_off, '\0', bf_len))
            return blk_bad_format(img, "backing file name contains a NUL byte");
        ext_end = bf_off;
    }
    if ((rc = parse_extensions(s, hdr, ext_start, ext_end)) < 0)
        return rc;
    if (bf_off && bf_len) {
        img->backing_name = strndup((const char *)hdr + bf_off, bf_len);
        if (!img->backing_name)
            return VERR_NO_MEMORY;
    }
    return 0;
}

/* Loads and checks the refcount table: every block aligned and inside the file. */
static int load_refcount_table(struct qcow2 *s)
{
    s->rt_entries = ((uint64_t)s->rt_clusters << s->cluster_bits) / 8;
    int rc = read_table(s, s->rt_offset, s->rt_entries, &s->rt);
    if (rc < 0)
        return rc;
    for (uint64_t i = 0; i < s->rt_entries; i++) {
        uint64_t e = s->rt[i];
        if (e == 0)
            continue;
        if ((e & QCOW2_RT_RESERVED) || (e & (s->cluster_size - 1)))
            return blk_bad_format(s->img, "refcount table entry %llu (%#llx) is not a cluster-aligned offset",
                                  (unsigned long long)i, (unsigned long long)e);
        if (e >= s->file_bytes)
            return blk_bad_format(s->img, "refcount table entry %llu: block at %#llx is past the end of the file",
                                  (unsigned long long)i, (unsigned long long)e);
        if (qcow2_is_fixed_meta(s, e))
            return blk_bad_format(s->img, "refcount table entry %llu: block at %#llx overlaps the header, L1 or "
                                  "refcount table", (unsigned long long)i, (unsigned long long)e);
    }
    return 0;
}

static int qcow2_open(struct blk_image *img)
{
    uint8_t head[QCOW2_CREATE_HEADER_BYTES];
    uint64_t file_bytes;
    int rc = blk_file_size(img, &file_bytes);
    if (rc < 0)
        return rc;
    if (file_bytes < QCOW2_V2_HEADER_BYTES)
        return blk_bad_format(img, "%llu bytes is too short for a qcow2 header", (unsigned long long)file_bytes);
    if ((rc = blk_file_read_zero_tail(img, 0, head, sizeof(head))) < 0)
        return rc;
    if (blk_be32(head) != QCOW2_MAGIC)
        return blk_bad_format(img, "magic is not QFI\\xfb");
    uint32_t version = blk_be32(head + QCOW2_HDR_VERSION);
    if (version != 2 && version != 3)
        return blk_bad_format(img, "version %u (only 2 and 3 are qcow2)", version);
    uint32_t cluster_bits = blk_be32(head + QCOW2_HDR_CLUSTER_BITS);
    if (cluster_bits < QCOW2_MIN_CLUSTER_BITS || cluster_bits > QCOW2_MAX_CLUSTER_BITS)
        return blk_bad_format(img, "cluster_bits %u (supported: %u to %u)", cluster_bits, QCOW2_MIN_CLUSTER_BITS,
                              QCOW2_MAX_CLUSTER_BITS);

    struct qcow2 *s = calloc(1, sizeof(*s));
    if (!s)
        return VERR_NO_MEMORY;
    s->img = img;
    s->version = version;
    s->cluster_bits = cluster_bits;
    s->cluster_size = 1ull << cluster_bits;
    s->file_bytes = file_bytes;
    uint64_t cs = s->cluster_size;
    uint8_t *hdr = malloc(cs);
    s->cow = malloc(cs);
    s->comp_in = malloc(2 * cs);
    s->comp_out = malloc(cs);
    bool ok = hdr && s->cow && s->comp_in && s->comp_out;
    for (unsigned i = 0; ok && i < QCOW2_L2_CACHE; i++)
        ok = (s->l2c[i].data = malloc(cs)) != NULL;
    for (unsigned i = 0; ok && i < QCOW2_RB_CACHE; i++)
        ok = (s->rbc[i].data = malloc(cs)) != NULL;
    rc = ok ? blk_file_read_zero_tail(img, 0, hdr, cs) : VERR_NO_MEMORY;
    if (rc == 0)
        rc = parse_header(s, hdr);
    free(hdr);
    if (rc == 0 && s->l1_size)
        rc = read_table(s, s->l1_offset, s->l1_size, &s->l1);
    else if (rc == 0)
        rc = (s->l1 = calloc(1, 8)) ? 0 : VERR_NO_MEMORY;
    if (rc == 0)
        rc = load_refcount_table(s);
    img->priv = s;
    if (rc == 0 && !img->readonly) {
        if (s->incompat & QCOW2_INCOMPAT_DIRTY) {
            LOG_WARN("%s: the image was not closed cleanly; rebuilding its refcounts", img->path);
            rc = qcow2_repair_dirty(s);
        }
        if (rc == 0 && s->autoclear) {
            /* Features we do not maintain (bitmaps) must be marked stale before we write. */
            if ((rc = qcow2_header_write_u64(s, QCOW2_HDR_AUTOCLEAR, 0)) == 0)
                s->autoclear = 0;
        }
    } else if (rc == 0 && (s->incompat & QCOW2_INCOMPAT_DIRTY)) {
        LOG_WARN("%s: the image was not closed cleanly; its refcounts may be stale until it is repaired", img->path);
    }
    if (rc < 0) {
        qcow2_state_free(s);
        img->priv = NULL;
        free(img->backing_name);
        img->backing_name = NULL;
        img->backing_format = BLK_FMT_AUTO;
        img->size_bytes = 0;
        return rc;
    }
    if (s->incompat & QCOW2_INCOMPAT_CORRUPT)
        LOG_WARN("%s: the image is marked corrupt; it is opened for reading only", img->path);
    return 0;
}

static void qcow2_info(struct blk_image *img, struct blk_info *info)
{
    info->variant[0] = '\0';
}

/* ---- Rebasing ------------------------------------------------------------------------------- */

/*
 * A new parent: the header cluster is rebuilt in memory (header fields as they are, a
 * backing format extension for the new parent, every other extension copied, the end
 * marker, the new name after it) and written back in one write from byte 0; bytes the
 * old name used past the new one's end are zeroed by the same write.  The header
 * cluster holds nothing else, so the rest of the image is untouched.
 */
static int qcow2_set_backing(struct blk_image *img, const char *backing, struct blk_image *backing_img)
{
    struct qcow2 *s = img->priv;
    size_t blen = strlen(backing);
    if (blen > QCOW2_MAX_BACKING_NAME) {
        LOG_ERR("%s: qcow2 backing file names are at most %u bytes: %s", img->path, QCOW2_MAX_BACKING_NAME, backing);
        return VERR_INVALID_PARAMETER;
    }
    uint64_t cs = s->cluster_size;
    uint8_t *hdr = malloc(cs), *out = calloc(1, cs);
    char *name = strdup(backing);
    int rc = hdr && out && name ? blk_file_read_zero_tail(img, 0, hdr, cs) : VERR_NO_MEMORY;
    if (rc < 0)
        goto done;
    uint64_t bf_off = blk_be64(hdr + QCOW2_HDR_BACKING_OFFSET);
    uint32_t bf_len = blk_be32(hdr + QCOW2_HDR_BACKING_SIZE);
    uint64_t ext_start = s->version >= 3 ? s->header_length : QCOW2_V2_HEADER_BYTES;
    uint64_t ext_end = bf_off ? bf_off : cs; /* both checked by open */
    memcpy(out, hdr, ext_start);
    uint64_t pos = ext_start;
    enum blk_format bfmt = backing_img->ops->format;
    const char *fmt = bfmt == BLK_FMT_ISO ? "raw" : blk_format_name(bfmt);
    size_t flen = strlen(fmt);
    blk_put_be32(out + pos, QCOW2_EXT_BACKING_FORMAT);
    blk_put_be32(out + pos + 4, (uint32_t)flen);
    memcpy(out + pos + 8, fmt, flen);
    pos += 8 + RT_ALIGN_UP(flen, 8);
    for (uint64_t p = ext_start; p + 8 <= ext_end;) {
        uint32_t type = blk_be32(hdr + p), len = blk_be32(hdr + p + 4);
        if (type == QCOW2_EXT_END)
            break;
        if (len > ext_end - p - 8) {
            rc = blk_bad_format(img, "header extension %#x at byte %llu: length %u passes the header cluster", type,
                                (unsigned long long)p, len);
            goto done;
        }
        uint64_t step = 8 + RT_ALIGN_UP((uint64_t)len, 8);
        if (type != QCOW2_EXT_BACKING_FORMAT) {
            if (pos + step > cs) {
                rc = VERR_TOO_LARGE;
                goto done;
            }
            memcpy(out + pos, hdr + p, 8 + len);
            pos += step;
        }
        p += step;
    }
    pos += 8; /* the end marker: zeroes */
    if (pos + blen > cs) {
        LOG_ERR("%s: the header extensions and the name %s do not fit in the header cluster", img->path, backing);
        rc = VERR_TOO_LARGE;
        goto done;
    }
    memcpy(out + pos, backing, blen);
    blk_put_be64(out + QCOW2_HDR_BACKING_OFFSET, pos);
    blk_put_be32(out + QCOW2_HDR_BACKING_SIZE, (uint32_t)blen);
    uint64_t old_end = bf_off ? bf_off + bf_len : ext_end;
    rc = qcow2_meta_write(s, 0, out, (size_t)RT_MAX(pos + blen, old_end));
    if (rc == 0) {
        free(img->backing_name);
        img->backing_name = name;
        img->backing_format = bfmt;
        name = NULL;
    }
done:
    free(name);
    free(out);
    free(hdr);
    return rc;
}

/* ---- Create -------------------------------------------------------------------------------- */

static int fd_write(int fd, uint64_t offset, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len) {
        ssize_t n = pwrite(fd, p, len, (off_t)offset);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            LOG_ERR("writing a new qcow2 image: %s", strerror(n < 0 ? errno : EIO));
            return VERR_IO;
        }
        p += n;
        offset += (uint64_t)n;
        len -= (size_t)n;
    }
    return 0;
}

/* Header extensions of a new image: backing format, feature names, end marker; returns the bytes used. */
static size_t create_extensions(uint8_t *p, enum blk_format backing_fmt)
{
    static const struct {
        uint8_t type, bit;
        const char *name;
    } features[] = {
        {0, 0, "dirty bit"},     {0, 1, "corrupt bit"},         {0, 2, "external data file"},
        {0, 3, "compression type"}, {0, 4, "extended L2 entries"}, {1, 0, "lazy refcounts"},
        {2, 0, "bitmaps"},       {2, 1, "raw external data"},
    };
    size_t pos = 0;
    const char *fmt = backing_fmt == BLK_FMT_ISO ? "raw" : blk_format_name(backing_fmt);
    if (backing_fmt != BLK_FMT_AUTO && fmt) {
        size_t len = strlen(fmt);
        blk_put_be32(p, QCOW2_EXT_BACKING_FORMAT);
        blk_put_be32(p + 4, (uint32_t)len);
        memcpy(p + 8, fmt, len);
        pos = 8 + RT_ALIGN_UP(len, 8);
    }
    blk_put_be32(p + pos, QCOW2_EXT_FEATURE_TABLE);
    blk_put_be32(p + pos + 4, (uint32_t)(RT_ARRAY_SIZE(features) * 48));
    pos += 8;
    for (size_t i = 0; i < RT_ARRAY_SIZE(features); i++, pos += 48) {
        p[pos] = features[i].type;
        p[pos + 1] = features[i].bit;
        memcpy(p + pos + 2, features[i].name, strlen(features[i].name));
    }
    return pos + 8; /* the end marker is zeroes */
}

static int qcow2_create(int fd, const struct blk_create_params *params, const char *backing,
                        struct blk_image *backing_img)
{
    const unsigned cb = QCOW2_DEFAULT_CLUSTER_BITS;
    const uint64_t cs = 1ull << cb;
    const uint64_t l2_entries = cs / 8, rb_entries = cs * 8 / 16;
    uint64_t size = params->size_bytes;
    size_t backing_len = backing ? strlen(backing) : 0;

    if (backing && params->fixed) {
        LOG_ERR("a qcow2 image over a backing file cannot be preallocated (its clusters would hide the parent)");
        return VERR_NOT_SUPPORTED;
    }
    if (backing_len > QCOW2_MAX_BACKING_NAME) {
        LOG_ERR("qcow2 backing file names are at most %u bytes: %s", QCOW2_MAX_BACKING_NAME, backing);
        return VERR_INVALID_PARAMETER;
    }
    uint64_t span = l2_entries * cs;
    uint64_t l1_size = (size + span - 1) / span;
    if (l1_size > QCOW2_MAX_L1_ENTRIES)
        return VERR_TOO_LARGE;
    uint64_t l1c = RT_ALIGN_UP(l1_size * 8, cs) / cs;
    uint64_t data = params->fixed ? (size + cs - 1) / cs : 0;
    uint64_t l2c = (data + l2_entries - 1) / l2_entries;
    /* Layout: header, refcount table (r), L1 (l1c), refcount blocks (b), L2 tables, data clusters. */
    uint64_t r = 1, b = 0;
    for (;;) {
        uint64_t total = 1 + r + l1c + b + l2c + data;
        uint64_t nb = (total + rb_entries - 1) / rb_entries;
        uint64_t nr = RT_MAX(1, (nb * 8 + cs - 1) / cs);
        if (nb == b && nr == r)
            break;
        b = nb, r = nr;
    }
    uint64_t total = 1 + r + l1c + b + l2c + data;
    uint64_t rt_at = 1, l1_at = rt_at + r, rb_at = l1_at + l1c, l2_at = rb_at + b, data_at = l2_at + l2c;

    uint8_t *buf = calloc(1, cs);
    if (!buf)
        return VERR_NO_MEMORY;
    blk_put_be32(buf, QCOW2_MAGIC);
    blk_put_be32(buf + QCOW2_HDR_VERSION, 3);
    blk_put_be32(buf + QCOW2_HDR_CLUSTER_BITS, cb);
    blk_put_be64(buf + QCOW2_HDR_SIZE, size);
    blk_put_be32(buf + QCOW2_HDR_L1_SIZE, (uint32_t)l1_size);
    blk_put_be64(buf + QCOW2_HDR_L1_OFFSET, l1c ? l1_at << cb : 0);
    blk_put_be64(buf + QCOW2_HDR_RT_OFFSET, rt_at << cb);
    blk_put_be32(buf + QCOW2_HDR_RT_CLUSTERS, (uint32_t)r);
    blk_put_be32(buf + QCOW2_HDR_REFCOUNT_ORDER, QCOW2_CREATE_REFCOUNT_ORDER);
    blk_put_be32(buf + QCOW2_HDR_LENGTH, QCOW2_CREATE_HEADER_BYTES);
    enum blk_format bfmt = backing_img ? backing_img->ops->format : params->backing_format;
    size_t pos = QCOW2_CREATE_HEADER_BYTES + create_extensions(buf + QCOW2_CREATE_HEADER_BYTES,
                                                               backing ? bfmt : BLK_FMT_AUTO);
    if (backing) {
        blk_put_be64(buf + QCOW2_HDR_BACKING_OFFSET, pos);
        blk_put_be32(buf + QCOW2_HDR_BACKING_SIZE, (uint32_t)backing_len);
        memcpy(buf + pos, backing, backing_len);
    }
    int rc = fd_write(fd, 0, buf, cs);

    /* Refcount table, then the L1 table, cluster by cluster. */
    for (uint64_t c = 0; rc == 0 && c < r; c++) {
        memset(buf, 0, cs);
        for (uint64_t i = 0; i < l2_entries; i++) {
            uint64_t bi = c * l2_entries + i;
            if (bi < b)
                blk_put_be64(buf + 8 * i, (rb_at + bi) << cb);
        }
        rc = fd_write(fd, (rt_at + c) << cb, buf, cs);
    }
    for (uint64_t c = 0; rc == 0 && c < l1c; c++) {
        memset(buf, 0, cs);
        for (uint64_t i = 0; i < l2_entries; i++) {
            uint64_t li = c * l2_entries + i;
            if (li < l2c)
                blk_put_be64(buf + 8 * i, ((l2_at + li) << cb) | QCOW2_OFLAG_COPIED);
        }
        rc = fd_write(fd, (l1_at + c) << cb, buf, cs);
    }
    /* Every cluster of the layout is used once. */
    for (uint64_t bi = 0; rc == 0 && bi < b; bi++) {
        memset(buf, 0, cs);
        for (uint64_t i = 0; i < rb_entries && bi * rb_entries + i < total; i++)
            buf[2 * i + 1] = 1; /* 16-bit big-endian 1 */
        rc = fd_write(fd, (rb_at + bi) << cb, buf, cs);
    }
    /* Preallocated data clusters read as zeroes (zero flag with an offset). */
    for (uint64_t c = 0; rc == 0 && c < l2c; c++) {
        memset(buf, 0, cs);
        for (uint64_t i = 0; i < l2_entries; i++) {
            uint64_t d = c * l2_entries + i;
            if (d < data)
                blk_put_be64(buf + 8 * i, ((data_at + d) << cb) | QCOW2_OFLAG_COPIED | QCOW2_OFLAG_ZERO);
        }
        rc = fd_write(fd, (l2_at + c) << cb, buf, cs);
    }
    free(buf);
    if (rc == 0 && data && ftruncate(fd, (off_t)(total << cb)) < 0) {
        LOG_ERR("preallocating a qcow2 image of %llu bytes: %s", (unsigned long long)size, strerror(errno));
        rc = rt_err_from_errno(errno);
    }
    return rc;
}

const struct blk_format_ops g_blk_format_qcow2 = {
    .format = BLK_FMT_QCOW2,
    .name = "qcow2",
    .probe = qcow2_probe,
    .open = qcow2_open,
    .close = qcow2_close,
    .read = qcow2_read,
    .write = qcow2_write,
    .flush = NULL, /* metadata is written through: nothing is ever cached dirty */
    .discard = qcow2_discard,
    .write_zeroes = qcow2_write_zeroes,
    .block_status = qcow2_block_status,
    .create = qcow2_create,
    .resize = qcow2_resize,
    .check = qcow2_check,
    .info = qcow2_info,
    .set_backing = qcow2_set_backing,
};
