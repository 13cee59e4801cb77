/* vmdk-sparse.c - VMDK hosted sparse extents: header, grain directory and tables, plain and deflated grains, checks. */

/*
 * A hosted sparse extent (VDF "Hosted Sparse Extent Header") maps its sectors in
 * grains of grainSize sectors.  The grain directory (GD) holds one sector offset per
 * grain table (GT) of 512 entries; a GT entry is the sector offset of its grain, 0
 * when the grain is not allocated (the parent's data, or zeroes) and, with the
 * zeroed-grain flag, 1 for a grain of zeroes.  The directory is loaded at open
 * (every entry checked to lie inside the file, so its size is bounded by the file's)
 * and grain tables are read into a small cache on demand.
 *
 * Stream-optimized extents (VDF "Stream-Optimized Compressed Sparse Extents") store
 * each grain deflated (RFC 1950 zlib framing) behind a 12-byte marker holding the
 * grain's LBA and compressed size; their header may say GD_AT_END, with the real
 * header in the footer: the last three sectors are a footer marker, the footer (a copy
 * of the header) and an end-of-stream marker.  A grain table entry points at the
 * grain's marker.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmdk-internal.h"

#define LOG_COMPONENT "vmdk"

/* Header field offsets (VDF "Hosted Sparse Extent Header"; the structure is packed). */
#define HDR_MAGIC       0
#define HDR_VERSION     4
#define HDR_FLAGS       8
#define HDR_CAPACITY    12
#define HDR_GRAIN       20
#define HDR_DESC_OFFSET 28
#define HDR_DESC_SIZE   36
#define HDR_NUM_GTES    44
#define HDR_RGD_OFFSET  48
#define HDR_GD_OFFSET   56
#define HDR_OVERHEAD    64
#define HDR_NL_SINGLE   73 /* '\n', ' ', '\r', '\n': damaged by text-mode transfers */
#define HDR_COMPRESS    77

static uint64_t sparse_file_sectors(const struct vmdk_sparse *sp)
{
    return sp->file->size_bytes / VMDK_SECTOR;
}

static uint64_t sparse_grain_count(const struct vmdk_sparse *sp)
{
    return (sp->capacity_sectors + sp->grain_sectors - 1) / sp->grain_sectors;
}

static uint64_t sparse_dir_sectors(const struct vmdk_sparse *sp)
{
    return ((uint64_t)sp->gd_entries * 4 + VMDK_SECTOR - 1) / VMDK_SECTOR;
}

/* Reads the footer's copy of the header (VDF: footer marker, footer, end-of-stream marker). */
static int sparse_read_footer(const struct vmdk_file *f, uint8_t hdr[VMDK_SECTOR])
{
    if (f->size_bytes < 4 * VMDK_SECTOR)
        return vmdk_bad(f->path, "gdOffset is GD_AT_END but the file is too short for a footer");
    uint8_t marker[VMDK_SECTOR];
    uint64_t marker_at = (f->size_bytes & ~(uint64_t)(VMDK_SECTOR - 1)) - 3 * VMDK_SECTOR;
    int rc = vmdk_file_read(f, marker_at, marker, sizeof(marker));
    if (rc < 0)
        return rc;
    if (blk_le32(marker + 8) != 0 || blk_le32(marker + 12) != VMDK_MARKER_FOOTER)
        return vmdk_bad(f->path, "gdOffset is GD_AT_END but no footer marker precedes the last two sectors");
    rc = vmdk_file_read(f, marker_at + VMDK_SECTOR, hdr, VMDK_SECTOR);
    if (rc < 0)
        return rc;
    if (blk_le32(hdr + HDR_MAGIC) != VMDK_SPARSE_MAGIC)
        return vmdk_bad(f->path, "the footer does not start with the KDMV magic");
    if (blk_le64(hdr + HDR_GD_OFFSET) == VMDK_GD_AT_END)
        return vmdk_bad(f->path, "the footer's gdOffset is GD_AT_END too");
    return 0;
}

/* Loads a grain directory and checks that every table it names lies inside the file, clear of the header and itself. */
static int sparse_load_dir(struct vmdk_sparse *sp, uint64_t dir_sector, const char *what, uint32_t **out)
{
    const struct vmdk_file *f = sp->file;
    uint64_t sectors = sparse_dir_sectors(sp);
    if (dir_sector == 0 || dir_sector >= sparse_file_sectors(sp) || sectors > sparse_file_sectors(sp) - dir_sector)
        return vmdk_bad(f->path, "%s at sector %llu (%llu sectors) is not inside the file", what,
                        (unsigned long long)dir_sector, (unsigned long long)sectors);
    size_t bytes = (size_t)sp->gd_entries * 4;
    uint32_t *dir = malloc(bytes);
    if (!dir)
        return VERR_NO_MEMORY;
    int rc = vmdk_file_read(f, dir_sector * VMDK_SECTOR, dir, bytes);
    if (rc < 0) {
        free(dir);
        return rc;
    }
    for (uint32_t i = 0; i < sp->gd_entries; i++) {
        uint32_t gt = blk_le32(&dir[i]);
        dir[i] = gt;
        if (gt == 0)
            continue;
        if (gt >= sparse_file_sectors(sp) || VMDK_GT_SECTORS > sparse_file_sectors(sp) - gt) {
            free(dir);
            return vmdk_bad(f->path, "%s entry %u: grain table at sector %u is past the end of the file", what, i, gt);
        }
        if ((uint64_t)gt + VMDK_GT_SECTORS > dir_sector && gt < dir_sector + sectors) {
            free(dir);
            return vmdk_bad(f->path, "%s entry %u: grain table at sector %u overlaps the directory", what, i, gt);
        }
    }
    *out = dir;
    return 0;
}

static int sparse_parse_header(struct vmdk_sparse *sp, const uint8_t *hdr)
{
    const char *path = sp->file->path;
    sp->version = blk_le32(hdr + HDR_VERSION);
    sp->flags = blk_le32(hdr + HDR_FLAGS);
    if (sp->version < 1 || sp->version > 3)
        return vmdk_unsupported(path, "sparse extent version %u is not supported (1 to 3 are)", sp->version);
    if ((sp->flags & VMDK_FLAG_NL_TEST) && (hdr[HDR_NL_SINGLE] != '\n' || hdr[HDR_NL_SINGLE + 1] != ' ' ||
                                            hdr[HDR_NL_SINGLE + 2] != '\r' || hdr[HDR_NL_SINGLE + 3] != '\n'))
        return vmdk_bad(path, "the header's newline test characters were altered (copied in text mode?)");

    sp->capacity_sectors = blk_le64(hdr + HDR_CAPACITY);
    if (sp->capacity_sectors == 0 || sp->capacity_sectors > BLK_MAX_SIZE_BYTES / VMDK_SECTOR)
        return vmdk_bad(path, "capacity of %llu sectors is 0 or more than %llu",
                        (unsigned long long)sp->capacity_sectors,
                        (unsigned long long)(BLK_MAX_SIZE_BYTES / VMDK_SECTOR));
    sp->grain_sectors = blk_le64(hdr + HDR_GRAIN);
    if (sp->grain_sectors == 0 || sp->grain_sectors > VMDK_MAX_GRAIN_SECTORS ||
        (sp->grain_sectors & (sp->grain_sectors - 1)))
        return vmdk_bad(path, "grainSize %llu is not a power of two from 1 to %u sectors",
                        (unsigned long long)sp->grain_sectors, VMDK_MAX_GRAIN_SECTORS);
    sp->grain_bytes = sp->grain_sectors * VMDK_SECTOR;
    if (blk_le32(hdr + HDR_NUM_GTES) != VMDK_GTES_PER_GT)
        return vmdk_bad(path, "numGTEsPerGT is %u, not %u", blk_le32(hdr + HDR_NUM_GTES), VMDK_GTES_PER_GT);
    uint64_t tables = (sparse_grain_count(sp) + VMDK_GTES_PER_GT - 1) / VMDK_GTES_PER_GT;
    /* Bounded by capacity and grain size above: at most 2^28 tables. */
    sp->gd_entries = (uint32_t)tables;

    sp->compressed = (sp->flags & VMDK_FLAG_COMPRESSED) != 0;
    sp->markers = (sp->flags & VMDK_FLAG_MARKERS) != 0;
    sp->zero_grain = (sp->flags & VMDK_FLAG_ZERO_GRAIN) != 0;
    unsigned algo = blk_le16(hdr + HDR_COMPRESS);
    if (sp->compressed && algo != VMDK_COMPRESS_DEFLATE)
        return vmdk_unsupported(path, "compressAlgorithm %u is not supported (only deflate is)", algo);

    sp->desc_sector = blk_le64(hdr + HDR_DESC_OFFSET);
    sp->desc_sectors = blk_le64(hdr + HDR_DESC_SIZE);
    if (sp->desc_sector != 0 && sp->desc_sectors != 0) {
        if (sp->desc_sectors > VMDK_DESC_MAX_EMBEDDED / VMDK_SECTOR)
            return vmdk_bad(path, "descriptorSize of %llu sectors is more than %u",
                            (unsigned long long)sp->desc_sectors, VMDK_DESC_MAX_EMBEDDED / VMDK_SECTOR);
        if (sp->desc_sector >= sparse_file_sectors(sp) || sp->desc_sectors > sparse_file_sectors(sp) - sp->desc_sector)
            return vmdk_bad(path, "the embedded descriptor (sector %llu) is not inside the file",
                            (unsigned long long)sp->desc_sector);
    } else {
        sp->desc_sector = sp->desc_sectors = 0;
    }
    sp->gd_sector = blk_le64(hdr + HDR_GD_OFFSET);
    sp->rgd_sector = (sp->flags & VMDK_FLAG_RGD) ? blk_le64(hdr + HDR_RGD_OFFSET) : 0;
    sp->overhead_sectors = blk_le64(hdr + HDR_OVERHEAD);
    return 0;
}

static int sparse_setup_inflate(struct vmdk_sparse *sp)
{
    sp->comp_max = (size_t)compressBound((uLong)sp->grain_bytes);
    sp->comp_buf = malloc(sp->comp_max + VMDK_MARKER_BYTES);
    sp->grain_buf = malloc(sp->grain_bytes);
    if (!sp->comp_buf || !sp->grain_buf)
        return VERR_NO_MEMORY;
    if (inflateInit(&sp->zs) != Z_OK)
        return VERR_NO_MEMORY;
    sp->zs_ready = true;
    return 0;
}

void vmdk_sparse_close(struct vmdk_sparse *sp)
{
    if (!sp)
        return;
    if (sp->zs_ready)
        inflateEnd(&sp->zs);
    free(sp->comp_buf);
    free(sp->grain_buf);
    free(sp->gt_cache);
    free(sp->gd);
    free(sp->rgd);
    free(sp);
}

int vmdk_sparse_open(const struct vmdk_file *file, struct vmdk_sparse **out)
{
    uint8_t hdr[VMDK_SECTOR];
    if (file->size_bytes < VMDK_SECTOR)
        return vmdk_bad(file->path, "the file is shorter than a sparse extent header");
    int rc = vmdk_file_read(file, 0, hdr, sizeof(hdr));
    if (rc < 0)
        return rc;
    if (blk_le32(hdr + HDR_MAGIC) != VMDK_SPARSE_MAGIC)
        return vmdk_bad(file->path, "not a hosted sparse extent (no KDMV magic)");
    struct vmdk_sparse *sp = calloc(1, sizeof(*sp));
    if (!sp)
        return VERR_NO_MEMORY;
    sp->file = file;
    sp->grain_buf_index = UINT64_MAX;
    if (blk_le64(hdr + HDR_GD_OFFSET) == VMDK_GD_AT_END) {
        /* The embedded descriptor's place is taken from the first header; the footer repeats it. */
        rc = sparse_read_footer(file, hdr);
        sp->footer = true;
    }
    if (rc == 0)
        rc = sparse_parse_header(sp, hdr);
    if (rc == 0)
        rc = sparse_load_dir(sp, sp->gd_sector, "the grain directory", &sp->gd);
    if (rc == 0 && sp->rgd_sector)
        rc = sparse_load_dir(sp, sp->rgd_sector, "the redundant grain directory", &sp->rgd);
    if (rc == 0) {
        sp->gt_cache = calloc(VMDK_GT_CACHE_SLOTS, sizeof(*sp->gt_cache));
        if (!sp->gt_cache)
            rc = VERR_NO_MEMORY;
        for (unsigned i = 0; rc == 0 && i < VMDK_GT_CACHE_SLOTS; i++)
            sp->gt_cache[i].gd_index = UINT32_MAX;
    }
    if (rc == 0 && sp->compressed)
        rc = sparse_setup_inflate(sp);
    if (rc < 0) {
        vmdk_sparse_close(sp);
        return rc;
    }
    *out = sp;
    return 0;
}

int vmdk_sparse_read_desc(const struct vmdk_sparse *sp, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    if (sp->desc_sector == 0)
        return 0;
    size_t bytes = (size_t)sp->desc_sectors * VMDK_SECTOR;
    char *text = malloc(bytes + 1);
    if (!text)
        return VERR_NO_MEMORY;
    int rc = vmdk_file_read(sp->file, sp->desc_sector * VMDK_SECTOR, text, bytes);
    if (rc < 0) {
        free(text);
        return rc;
    }
    text[bytes] = '\0';
    *out = text;
    *len = bytes;
    return 0;
}

static int sparse_read_table(const struct vmdk_sparse *sp, uint32_t gt_sector, uint32_t *entries)
{
    int rc = vmdk_file_read(sp->file, (uint64_t)gt_sector * VMDK_SECTOR, entries, VMDK_GT_BYTES);
    if (rc < 0)
        return rc;
    for (unsigned i = 0; i < VMDK_GTES_PER_GT; i++)
        entries[i] = blk_le32(&entries[i]);
    return 0;
}

int vmdk_sparse_lookup(struct vmdk_sparse *sp, uint64_t grain, uint32_t *gte)
{
    uint64_t gd_index = grain / VMDK_GTES_PER_GT;
    if (gd_index >= sp->gd_entries)
        return vmdk_bad(sp->file->path, "grain %llu is past the grain directory", (unsigned long long)grain);
    uint32_t gt_sector = sp->gd[gd_index];
    if (gt_sector == 0) {
        *gte = VMDK_GTE_UNALLOCATED;
        return 0;
    }
    struct vmdk_gt_slot *victim = &sp->gt_cache[0];
    for (unsigned i = 0; i < VMDK_GT_CACHE_SLOTS; i++) {
        struct vmdk_gt_slot *slot = &sp->gt_cache[i];
        if (slot->gd_index == gd_index) {
            slot->last_use = ++sp->gt_clock;
            *gte = slot->entries[grain % VMDK_GTES_PER_GT];
            return 0;
        }
        if (slot->gd_index == UINT32_MAX || slot->last_use < victim->last_use)
            victim = slot;
    }
    victim->gd_index = UINT32_MAX;
    int rc = sparse_read_table(sp, gt_sector, victim->entries);
    if (rc < 0)
        return rc;
    victim->gd_index = (uint32_t)gd_index;
    victim->last_use = ++sp->gt_clock;
    *gte = victim->entries[grain % VMDK_GTES_PER_GT];
    return 0;
}

/* Inflates grain `grain` (its marker, or its data when the extent has no markers, at sector gte) into grain_buf. */
static int sparse_inflate_grain(struct vmdk_sparse *sp, uint64_t grain, uint32_t gte)
{
    const struct vmdk_file *f = sp->file;
    uint64_t at = (uint64_t)gte * VMDK_SECTOR;
    uint64_t lba = grain * sp->grain_sectors;
    const uint8_t *data = sp->comp_buf;
    size_t data_len;
    int rc;
    sp->grain_buf_index = UINT64_MAX;
    if (sp->markers) {
        if (VMDK_MARKER_BYTES > f->size_bytes || at > f->size_bytes - VMDK_MARKER_BYTES)
            return vmdk_bad(f->path, "grain %llu: its marker at sector %u is past the end of the file",
                            (unsigned long long)grain, gte);
        rc = vmdk_file_read(f, at, sp->comp_buf, VMDK_MARKER_BYTES);
        if (rc < 0)
            return rc;
        uint64_t marker_lba = blk_le64(sp->comp_buf);
        data_len = blk_le32(sp->comp_buf + 8);
        if (marker_lba != lba)
            return vmdk_bad(f->path, "grain %llu: its marker at sector %u is for LBA %llu, not %llu",
                            (unsigned long long)grain, gte, (unsigned long long)marker_lba, (unsigned long long)lba);
        if (data_len == 0 || data_len > sp->comp_max)
            return vmdk_bad(f->path, "grain %llu: compressed size %zu is 0 or more than %zu", (unsigned long long)grain,
                            data_len, sp->comp_max);
        if (data_len > f->size_bytes - at - VMDK_MARKER_BYTES)
            return vmdk_bad(f->path, "grain %llu: its compressed data runs past the end of the file",
                            (unsigned long long)grain);
        data = sp->comp_buf + VMDK_MARKER_BYTES;
        rc = vmdk_file_read(f, at + VMDK_MARKER_BYTES, sp->comp_buf + VMDK_MARKER_BYTES, data_len);
    } else {
        /* Without markers the compressed length is not stored: the stream's own end marks it. */
        if (at >= f->size_bytes)
            return vmdk_bad(f->path, "grain %llu: grain table entry %u is past the end of the file",
                            (unsigned long long)grain, gte);
        data_len = (size_t)RT_MIN((uint64_t)sp->comp_max, f->size_bytes - at);
        rc = vmdk_file_read(f, at, sp->comp_buf, data_len);
    }
    if (rc < 0)
        return rc;

    inflateReset(&sp->zs);
    sp->zs.next_in = (Bytef *)data;
    sp->zs.avail_in = (uInt)data_len;
    sp->zs.next_out = sp->grain_buf;
    sp->zs.avail_out = (uInt)sp->grain_bytes;
    int zrc = inflate(&sp->zs, Z_FINISH);
    if (zrc != Z_STREAM_END) {
        if (sp->zs.avail_out == 0)
            return vmdk_bad(f->path, "grain %llu: decompresses to more than the grain size of %llu bytes",
                            (unsigned long long)grain, (unsigned long long)sp->grain_bytes);
        return vmdk_bad(f->path, "grain %llu: corrupt compressed data (zlib: %s)", (unsigned long long)grain,
                        sp->zs.msg ? sp->zs.msg : "stream ends early");
    }
    size_t produced = (size_t)sp->grain_bytes - sp->zs.avail_out;
    /* The disk's last grain may be stored only as far as the capacity reaches. */
    uint64_t tail_bytes = RT_MIN(sp->grain_bytes, (sp->capacity_sectors - lba) * VMDK_SECTOR);
    if (produced != sp->grain_bytes && produced != tail_bytes)
        return vmdk_bad(f->path, "grain %llu: decompresses to %zu bytes, not the grain size of %llu",
                        (unsigned long long)grain, produced, (unsigned long long)sp->grain_bytes);
    memset(sp->grain_buf + produced, 0, (size_t)sp->grain_bytes - produced);
    sp->grain_buf_index = grain;
    return 0;
}

int vmdk_sparse_read_grain(struct vmdk_sparse *sp, uint64_t grain, uint32_t gte, uint32_t in_grain, void *buf,
                           size_t len)
{
    const struct vmdk_file *f = sp->file;
    RT_ASSERT(in_grain + len <= sp->grain_bytes);
    if (sp->compressed) {
        if (sp->grain_buf_index != grain) {
            int rc = sparse_inflate_grain(sp, grain, gte);
            if (rc < 0)
                return rc;
        }
        memcpy(buf, sp->grain_buf + in_grain, len);
        return 0;
    }
    uint64_t at = (uint64_t)gte * VMDK_SECTOR;
    if (at >= f->size_bytes)
        return vmdk_bad(f->path, "grain %llu: grain table entry %u is past the end of the file",
                        (unsigned long long)grain, gte);
    /* A file cut inside its last grain reads as zeroes there (blk_check reports it). */
    at += in_grain;
    size_t have = at >= f->size_bytes ? 0 : (size_t)RT_MIN((uint64_t)len, f->size_bytes - at);
    if (have) {
        int rc = vmdk_file_read(f, at, buf, have);
        if (rc < 0)
            return rc;
    }
    memset((uint8_t *)buf + have, 0, len - have);
    return 0;
}

/* ---- Checking ---------------------------------------------------------------------- */

enum sparse_range_kind {
    RANGE_HEADER,
    RANGE_DESC,
    RANGE_GD,
    RANGE_RGD,
    RANGE_GT,
    RANGE_RGT,
    RANGE_GRAIN,
    RANGE_FOOTER
};

struct sparse_range {
    uint64_t start, end; /* sectors */
    uint64_t index;
    enum sparse_range_kind kind;
};

struct sparse_ranges {
    struct sparse_range *v;
    size_t n, cap;
    size_t limit; /* more ranges than this cannot fit in the file without overlapping */
    bool full;
    bool no_memory;
};

static void range_describe(const struct sparse_range *r, char *buf, size_t size)
{
    static const char *const names[] = {"the header",
                                        "the descriptor",
                                        "the grain directory",
                                        "the redundant grain directory",
                                        "grain table",
                                        "redundant grain table",
                                        "grain",
                                        "the footer"};
    if (r->kind == RANGE_GT || r->kind == RANGE_RGT || r->kind == RANGE_GRAIN)
        snprintf(buf, size, "%s %llu (sector %llu)", names[r->kind], (unsigned long long)r->index,
                 (unsigned long long)r->start);
    else
        snprintf(buf, size, "%s (sector %llu)", names[r->kind], (unsigned long long)r->start);
}

static void ranges_add(struct sparse_ranges *rs, enum sparse_range_kind kind, uint64_t index, uint64_t start,
                       uint64_t sectors)
{
    if (rs->n >= rs->limit) {
        rs->full = true;
        return;
    }
    if (rs->n >= rs->cap) {
        size_t cap = RT_MIN(rs->limit, rs->cap ? rs->cap * 2 : 256);
        struct sparse_range *grown = realloc(rs->v, cap * sizeof(*grown));
        if (!grown) {
            rs->no_memory = true;
            rs->full = true;
            return;
        }
        rs->v = grown;
        rs->cap = cap;
    }
    rs->v[rs->n++] = (struct sparse_range){.start = start, .end = start + sectors, .index = index, .kind = kind};
}

static int range_cmp(const void *a, const void *b)
{
    const struct sparse_range *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

/* The sectors a grain occupies, or 0 (problem recorded) when its entry is unusable. */
static uint64_t check_grain_extent(struct vmdk_sparse *sp, uint64_t grain, uint32_t gte, struct blk_check_result *res)
{
    const struct vmdk_file *f = sp->file;
    uint64_t file_sectors = sparse_file_sectors(sp);
    if (gte >= file_sectors) {
        blk_check_problem(res, false, "%s: grain %llu: grain table entry %u is past the end of the file", f->path,
                          (unsigned long long)grain, gte);
        return 0;
    }
    if (!sp->compressed) {
        if (sp->grain_sectors > file_sectors - gte) {
            blk_check_problem(res, false, "%s: grain %llu at sector %u runs past the end of the file", f->path,
                              (unsigned long long)grain, gte);
            return file_sectors - gte;
        }
        return sp->grain_sectors;
    }
    if (!sp->markers)
        return 1;
    uint8_t marker[VMDK_MARKER_BYTES];
    if ((uint64_t)gte * VMDK_SECTOR + VMDK_MARKER_BYTES > f->size_bytes ||
        vmdk_file_read(f, (uint64_t)gte * VMDK_SECTOR, marker, sizeof(marker)) < 0) {
        blk_check_problem(res, false, "%s: grain %llu: its marker at sector %u cannot be read", f->path,
                          (unsigned long long)grain, gte);
        return 0;
    }
    uint64_t lba = blk_le64(marker);
    uint64_t size = blk_le32(marker + 8);
    if (lba != grain * sp->grain_sectors)
        blk_check_problem(res, false, "%s: grain %llu: its marker at sector %u is for LBA %llu", f->path,
                          (unsigned long long)grain, gte, (unsigned long long)lba);
    if (size == 0 || size > sp->comp_max || size > f->size_bytes - (uint64_t)gte * VMDK_SECTOR - VMDK_MARKER_BYTES) {
        blk_check_problem(res, false, "%s: grain %llu: compressed size %llu is 0, too large or past the end", f->path,
                          (unsigned long long)grain, (unsigned long long)size);
        return 1;
    }
    return (VMDK_MARKER_BYTES + size + VMDK_SECTOR - 1) / VMDK_SECTOR;
}

/* Adds a grain table's grains; cmp (the redundant copy) is compared entry by entry when given. */
static void check_table(struct vmdk_sparse *sp, uint32_t gd_index, const uint32_t *entries, const uint32_t *cmp,
                        struct sparse_ranges *rs, struct blk_check_result *res)
{
    const char *path = sp->file->path;
    uint64_t grains = sparse_grain_count(sp);
    if (cmp && memcmp(entries, cmp, VMDK_GT_BYTES) != 0)
        blk_check_problem(res, false, "%s: redundant grain table %u differs from the primary", path, gd_index);
    for (unsigned i = 0; i < VMDK_GTES_PER_GT && !rs->full; i++) {
        uint32_t gte = entries[i];
        uint64_t grain = (uint64_t)gd_index * VMDK_GTES_PER_GT + i;
        if (gte == VMDK_GTE_UNALLOCATED || vmdk_sparse_gte_is_zero(sp, gte))
            continue;
        if (grain >= grains) {
            blk_check_problem(res, false, "%s: grain table %u maps grain %llu past the disk's end", path, gd_index,
                              (unsigned long long)grain);
            continue;
        }
        uint64_t sectors = check_grain_extent(sp, grain, gte, res);
        if (sectors)
            ranges_add(rs, RANGE_GRAIN, grain, gte, sectors);
    }
}

int vmdk_sparse_check(struct vmdk_sparse *sp, struct blk_check_result *res)
{
    const char *path = sp->file->path;
    uint64_t file_sectors = sparse_file_sectors(sp);
    struct sparse_ranges rs = {0};
    /* Every grain takes at least a sector (a grain when uncompressed), so more ranges than that must overlap. */
    rs.limit = 8 + 2 * (size_t)sp->gd_entries + (size_t)(file_sectors / (sp->compressed ? 1 : sp->grain_sectors));
    uint32_t *table = malloc(VMDK_GT_BYTES);
    uint32_t *rtable = malloc(VMDK_GT_BYTES);
    if (!table || !rtable) {
        free(table), free(rtable);
        return VERR_NO_MEMORY;
    }

    ranges_add(&rs, RANGE_HEADER, 0, 0, 1);
    if (sp->desc_sector)
        ranges_add(&rs, RANGE_DESC, 0, sp->desc_sector, sp->desc_sectors);
    ranges_add(&rs, RANGE_GD, 0, sp->gd_sector, sparse_dir_sectors(sp));
    if (sp->rgd)
        ranges_add(&rs, RANGE_RGD, 0, sp->rgd_sector, sparse_dir_sectors(sp));
    if (sp->footer)
        ranges_add(&rs, RANGE_FOOTER, 0, file_sectors - 3, 3);

    int rc = 0;
    for (uint32_t i = 0; i < sp->gd_entries && rc == 0 && !rs.full; i++) {
        bool have_r = false;
        if (sp->rgd) {
            if ((sp->gd[i] == 0) != (sp->rgd[i] == 0))
                blk_check_problem(res, false, "%s: grain directory entry %u is %u but its redundant copy %u", path, i,
                                  sp->gd[i], sp->rgd[i]);
            if (sp->rgd[i]) {
                ranges_add(&rs, RANGE_RGT, i, sp->rgd[i], VMDK_GT_SECTORS);
                rc = sparse_read_table(sp, sp->rgd[i], rtable);
                have_r = rc == 0;
            }
        }
        if (sp->gd[i] && rc == 0) {
            ranges_add(&rs, RANGE_GT, i, sp->gd[i], VMDK_GT_SECTORS);
            rc = sparse_read_table(sp, sp->gd[i], table);
            if (rc == 0)
                check_table(sp, i, table, have_r ? rtable : NULL, &rs, res);
        }
    }
    if (rc == 0 && rs.no_memory)
        rc = VERR_NO_MEMORY;
    if (rc == 0 && rs.full)
        blk_check_problem(res, false, "%s: more grains are allocated than the file can hold", path);
    if (rc == 0) {
        qsort(rs.v, rs.n, sizeof(*rs.v), range_cmp);
        const struct sparse_range *reach = NULL; /* the range reaching furthest so far */
        for (size_t i = 0; i < rs.n; i++) {
            if (reach && rs.v[i].start < reach->end) {
                char a[96], b[96];
                range_describe(reach, a, sizeof(a));
                range_describe(&rs.v[i], b, sizeof(b));
                blk_check_problem(res, false, "%s: %s overlaps %s", path, b, a);
            }
            if (!reach || rs.v[i].end > reach->end)
                reach = &rs.v[i];
        }
    }
    free(rs.v);
    free(table);
    free(rtable);
    return rc;
}
