/* qcow2-refcount.c - qcow2 host cluster reference counts: lookup, write-through updates, allocation, table growth and rebuild. */

/*
 * Refcounts live in a two-level structure (qcow2.txt, "Host cluster management"): the
 * refcount table (contiguous, its entries checked at open) points to refcount blocks
 * of one cluster each.  Every change is written to the file at once (the entry's
 * bytes only), so the file never holds a reference whose cluster is counted free.
 *
 * Allocation order, so that a process killed at any moment leaves at worst a leaked
 * cluster: the refcount of a new cluster is set on disk before the cluster is used;
 * a missing refcount block is written complete (counting itself) before the table
 * entry that points to it; a grown refcount table is written complete, with the
 * blocks it needs, before the header switches to it, and the old table is freed after.
 */

#include <stdlib.h>
#include <string.h>

#include "qcow2.h"

#define LOG_COMPONENT "qcow2"

uint64_t qcow2_rb_entry(const struct qcow2 *s, const uint8_t *block, uint64_t i)
{
    switch (s->refcount_order) {
    case 0:
    case 1:
    case 2: {
        unsigned bits = 1u << s->refcount_order;
        uint64_t bit = i << s->refcount_order;
        return (block[bit >> 3] >> (bit & 7)) & ((1u << bits) - 1);
    }
    case 3:
        return block[i];
    case 4:
        return (uint64_t)block[2 * i] << 8 | block[2 * i + 1];
    case 5:
        return blk_be32(block + 4 * i);
    default:
        return blk_be64(block + 8 * i);
    }
}

void qcow2_rb_entry_put(const struct qcow2 *s, uint8_t *block, uint64_t i, uint64_t value)
{
    switch (s->refcount_order) {
    case 0:
    case 1:
    case 2: {
        unsigned bits = 1u << s->refcount_order;
        uint64_t bit = i << s->refcount_order;
        uint8_t mask = (uint8_t)(((1u << bits) - 1) << (bit & 7));
        block[bit >> 3] = (uint8_t)((block[bit >> 3] & ~mask) | ((value << (bit & 7)) & mask));
        break;
    }
    case 3:
        block[i] = (uint8_t)value;
        break;
    case 4:
        block[2 * i] = (uint8_t)(value >> 8);
        block[2 * i + 1] = (uint8_t)value;
        break;
    case 5:
        blk_put_be32(block + 4 * i, (uint32_t)value);
        break;
    default:
        blk_put_be64(block + 8 * i, value);
        break;
    }
}

/* The byte range of entry i inside its block (what a write-through update writes). */
static void rb_entry_bytes(const struct qcow2 *s, uint64_t i, uint64_t *off, size_t *len)
{
    if (s->refcount_order <= 3) {
        *off = (i << s->refcount_order) >> 3;
        *len = 1;
    } else {
        *len = (size_t)1 << (s->refcount_order - 3);
        *off = i * *len;
    }
}

/* The refcount block at offset, from the cache or the file. */
static int rb_load(struct qcow2 *s, uint64_t offset, uint8_t **out)
{
    bool hit;
    uint8_t *data = qcow2_slot_get(s, s->rbc, QCOW2_RB_CACHE, offset, &hit);
    if (!hit) {
        int rc = blk_file_read_zero_tail(s->img, offset, data, s->cluster_size);
        if (rc < 0) {
            qcow2_cache_forget(s, offset);
            return rc;
        }
    }
    *out = data;
    return 0;
}

int qcow2_refcount_get(struct qcow2 *s, uint64_t cluster, uint64_t *out)
{
    uint64_t ri = cluster >> s->rb_bits;
    *out = 0;
    if (ri >= s->rt_entries || s->rt[ri] == 0)
        return 0;
    uint8_t *block;
    int rc = rb_load(s, s->rt[ri], &block);
    if (rc < 0)
        return rc;
    *out = qcow2_rb_entry(s, block, cluster & ((1ull << s->rb_bits) - 1));
    return 0;
}

int qcow2_refcount_set(struct qcow2 *s, uint64_t cluster, uint64_t value)
{
    uint64_t ri = cluster >> s->rb_bits;
    if (ri >= s->rt_entries || s->rt[ri] == 0) {
        if (value == 0)
            return 0;
        return blk_bad_format(s->img, "no refcount block for cluster %llu", (unsigned long long)cluster);
    }
    if (value > s->refcount_max) {
        LOG_ERR("%s: refcount of cluster %llu would overflow (%u-bit refcounts)", s->img->path,
                (unsigned long long)cluster, 1u << s->refcount_order);
        return VERR_TOO_LARGE;
    }
    uint8_t *block;
    int rc = rb_load(s, s->rt[ri], &block);
    if (rc < 0)
        return rc;
    uint64_t i = cluster & ((1ull << s->rb_bits) - 1);
    qcow2_rb_entry_put(s, block, i, value);
    uint64_t off;
    size_t len;
    rb_entry_bytes(s, i, &off, &len);
    rc = qcow2_meta_write(s, s->rt[ri] + off, block + off, len);
    if (rc < 0) {
        /* What the file holds is unknown now: read it again next time. */
        qcow2_cache_forget(s, s->rt[ri]);
        return rc;
    }
    if (value == 0 && cluster < s->free_hint)
        s->free_hint = cluster;
    return 0;
}

bool qcow2_is_fixed_meta(const struct qcow2 *s, uint64_t offset)
{
    uint64_t c = offset >> s->cluster_bits;
    uint64_t l1_first = s->l1_offset >> s->cluster_bits;
    uint64_t l1_end = RT_ALIGN_UP(s->l1_offset + (uint64_t)s->l1_size * 8, s->cluster_size) >> s->cluster_bits;
    uint64_t rt_first = s->rt_offset >> s->cluster_bits;
    if (c == 0)
        return true;
    if (s->l1_size && c >= l1_first && c < l1_end)
        return true;
    return c >= rt_first && c < rt_first + s->rt_clusters;
}

/* Clusters that must never be handed out even if their refcount reads 0 (a damaged image). */
static bool cluster_is_reserved(const struct qcow2 *s, uint64_t c)
{
    return qcow2_is_fixed_meta(s, c << s->cluster_bits);
}

/* Writes the table entry ri (8 bytes) and keeps the in-memory copy. */
static int rt_entry_write(struct qcow2 *s, uint64_t ri, uint64_t value)
{
    uint8_t be[8];
    blk_put_be64(be, value);
    int rc = qcow2_meta_write(s, s->rt_offset + ri * 8, be, 8);
    if (rc == 0)
        s->rt[ri] = value;
    return rc;
}

/*
 * A new refcount block for range ri (every cluster of which has refcount 0), placed
 * inside its own range so that it counts itself: first cluster at or past the end of
 * the file, or the range's first one.  Written complete before the table points to it.
 */
static int rb_create(struct qcow2 *s, uint64_t ri)
{
    uint64_t first = ri << s->rb_bits;
    uint64_t last = first + (1ull << s->rb_bits) - 1;
    uint64_t p = RT_MAX(first, qcow2_file_clusters(s));
    if (p > last)
        p = first;
    while (p <= last && cluster_is_reserved(s, p))
        p++;
    if (p > last)
        return blk_bad_format(s->img, "no room for refcount block %llu", (unsigned long long)ri);
    uint64_t offset = p << s->cluster_bits;
    bool hit;
    uint8_t *data = qcow2_slot_get(s, s->rbc, QCOW2_RB_CACHE, offset, &hit);
    memset(data, 0, s->cluster_size);
    qcow2_rb_entry_put(s, data, p - first, 1);
    int rc = qcow2_meta_write(s, offset, data, s->cluster_size);
    if (rc == 0)
        rc = rt_entry_write(s, ri, offset);
    if (rc < 0)
        qcow2_cache_forget(s, offset);
    return rc;
}

/*
 * Grows the refcount table to cover range index need_ri.  The new table and the
 * refcount blocks it needs for its own clusters go past the end of the file; blocks
 * are written first, then the table, then the header, and the old table is freed.
 */
static int rt_grow(struct qcow2 *s, uint64_t need_ri)
{
    uint64_t per_cluster = s->cluster_size / 8;
    uint64_t entries = RT_ALIGN_UP(RT_MAX(need_ri + 1, s->rt_entries * 2), per_cluster);
    uint64_t *nt = NULL;
    uint64_t start, end;
    int rc = 0;

    for (;;) {
        if (entries * 8 > QCOW2_MAX_RT_BYTES) {
            LOG_ERR("%s: the refcount table would grow past %u MiB", s->img->path, QCOW2_MAX_RT_BYTES >> 20);
            free(nt);
            return VERR_TOO_LARGE;
        }
        uint64_t *grown = realloc(nt, entries * 8);
        if (!grown) {
            free(nt);
            return VERR_NO_MEMORY;
        }
        nt = grown;
        uint64_t m = entries / per_cluster;
        start = qcow2_file_clusters(s);
        bool retry_bigger = false;
        for (;;) {
            memcpy(nt, s->rt, s->rt_entries * 8);
            memset(nt + s->rt_entries, 0, (entries - s->rt_entries) * 8);
            end = start + m;
            /* New blocks for ranges the new clusters fall in; they count themselves too. */
            for (uint64_t c = start; c < end && !retry_bigger; c++) {
                uint64_t ri = c >> s->rb_bits;
                if (ri >= entries)
                    retry_bigger = true;
                else if (nt[ri] == 0)
                    nt[ri] = end++ << s->cluster_bits;
            }
            if (retry_bigger)
                break;
            /* They must be free in the blocks that exist already (leaks past the end). */
            uint64_t busy = 0;
            for (uint64_t c = start; c < end && !busy; c++) {
                uint64_t v;
                if ((rc = qcow2_refcount_get(s, c, &v)) < 0) {
                    free(nt);
                    return rc;
                }
                if (v)
                    busy = c + 1;
            }
            if (!busy)
                break;
            start = busy;
        }
        if (!retry_bigger)
            break;
        entries += per_cluster;
    }

    uint64_t m = entries / per_cluster;
    /* Existing blocks count the new clusters of their ranges. */
    for (uint64_t c = start; c < end; c++) {
        uint64_t ri = c >> s->rb_bits;
        if (ri < s->rt_entries && s->rt[ri] != 0 && (rc = qcow2_refcount_set(s, c, 1)) < 0)
            goto out;
    }
    uint8_t *buf = malloc(s->cluster_size);
    if (!buf) {
        rc = VERR_NO_MEMORY;
        goto out;
    }
    for (uint64_t ri = 0; ri < entries && rc == 0; ri++) {
        if (nt[ri] == 0 || (ri < s->rt_entries && nt[ri] == s->rt[ri]))
            continue;
        memset(buf, 0, s->cluster_size);
        uint64_t first = ri << s->rb_bits;
        for (uint64_t c = RT_MAX(start, first); c < end && (c >> s->rb_bits) == ri; c++)
            qcow2_rb_entry_put(s, buf, c - first, 1);
        rc = qcow2_meta_write(s, nt[ri], buf, s->cluster_size);
    }
    free(buf);
    if (rc < 0)
        goto out;
    uint8_t *table = malloc(m << s->cluster_bits);
    if (!table) {
        rc = VERR_NO_MEMORY;
        goto out;
    }
    for (uint64_t i = 0; i < entries; i++)
        blk_put_be64(table + 8 * i, nt[i]);
    rc = qcow2_meta_write(s, start << s->cluster_bits, table, m << s->cluster_bits);
    free(table);
    if (rc < 0)
        goto out;
    uint8_t hdr[12];
    blk_put_be64(hdr, start << s->cluster_bits);
    blk_put_be32(hdr + 8, (uint32_t)m);
    if ((rc = qcow2_meta_write(s, QCOW2_HDR_RT_OFFSET, hdr, sizeof(hdr))) < 0)
        goto out;

    uint64_t old_offset = s->rt_offset, old_clusters = s->rt_clusters;
    free(s->rt);
    s->rt = nt;
    nt = NULL;
    s->rt_entries = entries;
    s->rt_offset = start << s->cluster_bits;
    s->rt_clusters = (uint32_t)m;
    LOG_DEBUG("%s: refcount table grown to %llu clusters at %#llx", s->img->path, (unsigned long long)m,
              (unsigned long long)s->rt_offset);
    rc = qcow2_cluster_unref(s, old_offset, old_clusters << s->cluster_bits);
out:
    free(nt);
    return rc;
}

/* Makes sure the refcount block for cluster c exists; *created when this call wrote one. */
static int rb_ensure(struct qcow2 *s, uint64_t c, bool *created)
{
    uint64_t ri = c >> s->rb_bits;
    *created = false;
    if (ri >= s->rt_entries) {
        int rc = rt_grow(s, ri);
        if (rc < 0)
            return rc;
        *created = true;
    }
    if (s->rt[ri] == 0) {
        int rc = rb_create(s, ri);
        if (rc < 0)
            return rc;
        *created = true;
    }
    return 0;
}

int qcow2_cluster_alloc(struct qcow2 *s, uint64_t *offset_out)
{
    uint64_t c = s->free_hint;
    for (;;) {
        uint64_t v;
        int rc;
        if (cluster_is_reserved(s, c)) {
            c++;
            continue;
        }
        if ((rc = qcow2_refcount_get(s, c, &v)) < 0)
            return rc;
        if (v) {
            c++;
            continue;
        }
        bool created;
        if ((rc = rb_ensure(s, c, &created)) < 0)
            return rc;
        if (created)
            continue; /* the new metadata may sit on c: look again */
        if ((rc = qcow2_refcount_set(s, c, 1)) < 0)
            return rc;
        s->free_hint = c + 1;
        *offset_out = c << s->cluster_bits;
        return 0;
    }
}

int qcow2_cluster_alloc_range(struct qcow2 *s, uint64_t n, uint64_t *offset_out)
{
    if (n == 1)
        return qcow2_cluster_alloc(s, offset_out);
    /* Contiguous runs come from the end of the file; holes are left to single clusters. */
    uint64_t start = qcow2_file_clusters(s);
    int rc;
    for (;;) {
        uint64_t busy = 0;
        bool created = false;
        for (uint64_t c = start; c < start + n && !busy && !created; c++) {
            uint64_t v;
            if ((rc = rb_ensure(s, c, &created)) < 0)
                return rc;
            if ((rc = qcow2_refcount_get(s, c, &v)) < 0)
                return rc;
            if (v || cluster_is_reserved(s, c))
                busy = c + 1;
        }
        if (busy)
            start = busy;
        else if (!created)
            break;
    }
    for (uint64_t c = start; c < start + n; c++) {
        if ((rc = qcow2_refcount_set(s, c, 1)) < 0)
            return rc;
    }
    *offset_out = start << s->cluster_bits;
    return 0;
}

int qcow2_cluster_unref(struct qcow2 *s, uint64_t offset, uint64_t len)
{
    if (len == 0)
        return 0;
    uint64_t first = offset >> s->cluster_bits, last = (offset + len - 1) >> s->cluster_bits;
    for (uint64_t c = first; c <= last; c++) {
        uint64_t v;
        int rc = qcow2_refcount_get(s, c, &v);
        if (rc < 0)
            return rc;
        if (v == 0) {
            LOG_ERR("%s: cluster %llu was freed but its refcount is already 0 (run check --repair)",
                    s->img->path, (unsigned long long)c);
            return VERR_BAD_FORMAT;
        }
        if ((rc = qcow2_refcount_set(s, c, v - 1)) < 0)
            return rc;
        if (v == 1) {
            qcow2_cache_forget(s, c << s->cluster_bits);
            s->comp_entry = 0;
        }
    }
    return 0;
}

int qcow2_refcount_rebuild(struct qcow2 *s, const uint32_t *refs, uint64_t ncl)
{
    for (uint64_t c = 0; c < ncl; c++) {
        if (refs[c] > s->refcount_max) {
            LOG_ERR("%s: cluster %llu has %u references, more than %u-bit refcounts can hold", s->img->path,
                    (unsigned long long)c, refs[c], 1u << s->refcount_order);
            return VERR_TOO_LARGE;
        }
    }
    /* Layout past the end of the file: the table (t clusters), then b blocks; they count themselves. */
    uint64_t per_block = 1ull << s->rb_bits;
    uint64_t start = RT_MAX(ncl, qcow2_file_clusters(s));
    uint64_t t = 1, b = 0;
    for (;;) {
        uint64_t total = start + t + b;
        uint64_t nb = (total + per_block - 1) / per_block;
        uint64_t nt = (nb * 8 + s->cluster_size - 1) >> s->cluster_bits;
        if (nb == b && nt == t)
            break;
        b = nb;
        t = RT_MAX(nt, 1);
    }
    if ((t << s->cluster_bits) > QCOW2_MAX_RT_BYTES)
        return VERR_TOO_LARGE;
    uint64_t total = start + t + b;
    uint64_t table_entries = t * (s->cluster_size / 8);
    uint8_t *table = calloc(t, s->cluster_size);
    uint64_t *ntab = calloc(table_entries, 8);
    uint8_t *buf = malloc(s->cluster_size);
    if (!table || !ntab || !buf) {
        free(table);
        free(ntab);
        free(buf);
        return VERR_NO_MEMORY;
    }
    int rc = 0;
    for (uint64_t bi = 0; bi < b && rc == 0; bi++) {
        memset(buf, 0, s->cluster_size);
        for (uint64_t i = 0; i < per_block; i++) {
            uint64_t c = bi * per_block + i;
            uint64_t v = c < ncl ? refs[c] : (c >= start && c < total) ? 1 : 0;
            if (v)
                qcow2_rb_entry_put(s, buf, i, v);
        }
        uint64_t off = (start + t + bi) << s->cluster_bits;
        blk_put_be64(table + 8 * bi, off);
        ntab[bi] = off;
        rc = qcow2_meta_write(s, off, buf, s->cluster_size);
    }
    if (rc == 0)
        rc = qcow2_meta_write(s, start << s->cluster_bits, table, t << s->cluster_bits);
    if (rc == 0)
        rc = blk_file_sync(s->img);
    if (rc == 0) {
        uint8_t hdr[12];
        blk_put_be64(hdr, start << s->cluster_bits);
        blk_put_be32(hdr + 8, (uint32_t)t);
        rc = qcow2_meta_write(s, QCOW2_HDR_RT_OFFSET, hdr, sizeof(hdr));
    }
    free(table);
    free(buf);
    if (rc < 0) {
        free(ntab);
        return rc;
    }
    free(s->rt);
    s->rt = ntab;
    s->rt_entries = table_entries;
    s->rt_offset = start << s->cluster_bits;
    s->rt_clusters = (uint32_t)t;
    s->free_hint = 0;
    for (unsigned i = 0; i < QCOW2_RB_CACHE; i++)
        s->rbc[i].offset = 0;
    if (s->version >= 3 && (s->incompat & QCOW2_INCOMPAT_DIRTY)) {
        if ((rc = qcow2_header_write_u64(s, QCOW2_HDR_INCOMPAT, s->incompat & ~QCOW2_INCOMPAT_DIRTY)) < 0)
            return rc;
        s->incompat &= ~QCOW2_INCOMPAT_DIRTY;
    }
    LOG_INFO("%s: refcounts rebuilt (table at %#llx, %llu blocks)", s->img->path,
             (unsigned long long)s->rt_offset, (unsigned long long)b);
    return 0;
}
