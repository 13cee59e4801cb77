/* saved-state-ram.c - the saved-state file's buffered, checksummed reader and writer, and guest RAM streamed through them in deflated 1 MiB chunks that skip zero pages. */

/*
 * RAM is never copied whole: each region is walked in chunks of 256 pages; a chunk with no
 * non-zero page is left out of the file, any other becomes one record (its index, a bitmap of
 * the non-zero pages, those pages deflated at level 1, a CRC-32 of the record).  A mostly
 * empty guest therefore saves in little more than the time to scan its memory.  Loading checks
 * each record's CRC and sizes before inflating it straight into the region's pages, and clears
 * every page the file does not carry (the board may have put firmware or a kernel there).
 * Untouched anonymous memory reads as the shared zero page, so scanning and clearing it costs no
 * host memory.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "saved-state-internal.h"

#define LOG_COMPONENT "ssm"
#define SS_BITMAP_BYTES (SS_CHUNK_PAGES / 8)

/* ---- writer ------------------------------------------------------------------------------ */

static void writer_flush(struct ss_writer *w)
{
    size_t done = 0;
    while (!w->rc && done < w->len) {
        ssize_t n = write(w->fd, w->buf + done, w->len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int err = n < 0 ? errno : ENOSPC;
            LOG_ERR("cannot write the saved state '%s': %s", w->path, strerror(err));
            w->rc = rt_err_from_errno(err);
            break;
        }
        done += (size_t)n;
    }
    w->len = 0;
}

void ss_write(struct ss_writer *w, const void *data, size_t len)
{
    if (w->rc)
        return;
    w->crc = (uint32_t)crc32_z(w->crc, data, len);
    w->offset += len;
    const uint8_t *p = data;
    while (len > 0 && !w->rc) {
        size_t n = RT_MIN(len, SS_IO_BUF_BYTES - w->len);
        memcpy(w->buf + w->len, p, n);
        w->len += n;
        p += n;
        len -= n;
        if (w->len == SS_IO_BUF_BYTES)
            writer_flush(w);
    }
}

static void put_le(uint8_t *b, uint64_t v, unsigned bytes)
{
    for (unsigned i = 0; i < bytes; i++)
        b[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *b, unsigned bytes)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < bytes; i++)
        v |= (uint64_t)b[i] << (8 * i);
    return v;
}

void ss_write_u8(struct ss_writer *w, uint8_t v)
{
    ss_write(w, &v, 1);
}

void ss_write_u32(struct ss_writer *w, uint32_t v)
{
    uint8_t b[4];
    put_le(b, v, 4);
    ss_write(w, b, 4);
}

void ss_write_u64(struct ss_writer *w, uint64_t v)
{
    uint8_t b[8];
    put_le(b, v, 8);
    ss_write(w, b, 8);
}

int ss_writer_finish(struct ss_writer *w)
{
    if (!w->rc && w->len)
        writer_flush(w);
    return w->rc;
}

/* ---- reader ------------------------------------------------------------------------------ */

static int reader_fill(struct ss_reader *r)
{
    if (r->pos < r->len || r->eof)
        return 0;
    r->pos = r->len = 0;
    for (;;) {
        ssize_t n = read(r->fd, r->buf, SS_IO_BUF_BYTES);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            LOG_ERR("cannot read the saved state '%s': %s", r->path, strerror(errno));
            return rt_err_from_errno(errno);
        }
        if (n == 0)
            r->eof = true;
        r->len = (size_t)n;
        return 0;
    }
}

int ss_read(struct ss_reader *r, void *data, size_t len, const char *what)
{
    uint8_t *p = data;
    while (len > 0) {
        int rc = reader_fill(r);
        if (rc)
            return rc;
        if (r->pos == r->len) {
            LOG_ERR("saved state '%s' is truncated: it ends at byte %llu, inside %s", r->path,
                    (unsigned long long)r->offset, what);
            return VERR_SSM_CORRUPT;
        }
        size_t n = RT_MIN(len, r->len - r->pos);
        memcpy(p, r->buf + r->pos, n);
        r->crc = (uint32_t)crc32_z(r->crc, p, n);
        r->pos += n;
        r->offset += n;
        p += n;
        len -= n;
    }
    return 0;
}

bool ss_reader_at_end(struct ss_reader *r)
{
    return reader_fill(r) == 0 && r->pos == r->len && r->eof;
}

int ss_read_u8(struct ss_reader *r, uint8_t *v, const char *what)
{
    return ss_read(r, v, 1, what);
}

int ss_read_u32(struct ss_reader *r, uint32_t *v, const char *what)
{
    uint8_t b[4];
    int rc = ss_read(r, b, 4, what);
    *v = rc ? 0 : (uint32_t)get_le(b, 4);
    return rc;
}

int ss_read_u64(struct ss_reader *r, uint64_t *v, const char *what)
{
    uint8_t b[8];
    int rc = ss_read(r, b, 8, what);
    *v = rc ? 0 : get_le(b, 8);
    return rc;
}

/* ---- RAM ----------------------------------------------------------------------------------- */

struct ram_list {
    struct mem_region *regions[64];
    unsigned count;
    bool overflow;
};

static void ram_list_add(void *opaque, struct mem_region *region)
{
    struct ram_list *l = opaque;
    if (l->count < RT_ARRAY_SIZE(l->regions))
        l->regions[l->count++] = region;
    else
        l->overflow = true;
}

static int ram_list_get(struct vm *vm, struct ram_list *l)
{
    memset(l, 0, sizeof(*l));
    mem_for_each_ram_region(vm, ram_list_add, l);
    if (l->overflow) {
        LOG_ERR("this VM has more than %zu RAM regions; saved state supports that many", RT_ARRAY_SIZE(l->regions));
        return VERR_TOO_LARGE;
    }
    return 0;
}

static bool page_is_zero(const uint8_t *page)
{
    const uint64_t *q = (const uint64_t *)page;
    uint64_t acc = 0;
    for (unsigned i = 0; i < SS_PAGE_BYTES / 8; i += 8)
        acc |= q[i] | q[i + 1] | q[i + 2] | q[i + 3] | q[i + 4] | q[i + 5] | q[i + 6] | q[i + 7];
    return acc == 0;
}

static uint64_t region_pages(const struct mem_region *region)
{
    return (mem_region_size(region) + SS_PAGE_BYTES - 1) / SS_PAGE_BYTES;
}

static void progress_report(struct ss_progress *p, uint64_t done, uint64_t total)
{
    if (!p || !p->fn || !total)
        return;
    unsigned pct = (unsigned)(done * 100 / total);
    if (pct != p->last) {
        p->last = pct;
        p->fn(p->opaque, pct);
    }
}

struct ram_saver {
    struct ss_writer *w;
    z_stream z;
    uint8_t *out;
    size_t out_cap;
};

/* Deflates the chunk's non-zero pages and writes its record; an all-zero chunk writes nothing. */
static int chunk_save(struct ram_saver *s, const uint8_t *base, uint32_t index, unsigned pages)
{
    uint8_t bitmap[SS_BITMAP_BYTES] = {0};
    unsigned nonzero = 0;
    for (unsigned i = 0; i < pages; i++) {
        if (!page_is_zero(base + (size_t)i * SS_PAGE_BYTES)) {
            bitmap[i / 8] |= (uint8_t)(1u << (i % 8));
            nonzero++;
        }
    }
    if (!nonzero)
        return 0;
    if (deflateReset(&s->z) != Z_OK)
        return VERR_GENERAL;
    s->z.next_out = s->out;
    s->z.avail_out = (uInt)s->out_cap;
    unsigned left = nonzero;
    for (unsigned i = 0; i < pages; i++) {
        if (!(bitmap[i / 8] & (1u << (i % 8))))
            continue;
        s->z.next_in = (Bytef *)(base + (size_t)i * SS_PAGE_BYTES);
        s->z.avail_in = SS_PAGE_BYTES;
        int zrc = deflate(&s->z, --left ? Z_NO_FLUSH : Z_FINISH);
        if ((left && zrc != Z_OK) || (!left && zrc != Z_STREAM_END) || s->z.avail_in) {
            LOG_ERR("cannot compress guest RAM for the saved state (zlib: %d)", zrc);
            return VERR_GENERAL;
        }
    }
    uint32_t comp_len = (uint32_t)(s->out_cap - s->z.avail_out);
    uint8_t head[4 + SS_BITMAP_BYTES + 4];
    put_le(head, index, 4);
    memcpy(head + 4, bitmap, SS_BITMAP_BYTES);
    put_le(head + 4 + SS_BITMAP_BYTES, comp_len, 4);
    uint32_t crc = (uint32_t)crc32_z(0, head, sizeof(head));
    crc = (uint32_t)crc32_z(crc, s->out, comp_len);
    ss_write(s->w, head, sizeof(head));
    ss_write(s->w, s->out, comp_len);
    ss_write_u32(s->w, crc);
    return s->w->rc;
}

int ss_ram_save(struct vm *vm, struct ss_writer *w, struct ss_progress *progress)
{
    struct ram_list list;
    int rc = ram_list_get(vm, &list);
    if (rc)
        return rc;
    struct ram_saver s = {.w = w};
    if (deflateInit(&s.z, 1) != Z_OK)
        return VERR_NO_MEMORY;
    s.out_cap = deflateBound(&s.z, SS_CHUNK_BYTES);
    s.out = malloc(s.out_cap);
    if (!s.out) {
        deflateEnd(&s.z);
        return VERR_NO_MEMORY;
    }
    uint64_t total = 0, done = 0;
    for (unsigned i = 0; i < list.count; i++)
        total += region_pages(list.regions[i]);
    ss_write_u32(w, SS_TAG_RAM);
    ss_write_u32(w, 1);
    ss_write_u32(w, list.count);
    for (unsigned i = 0; !rc && i < list.count; i++) {
        struct mem_region *region = list.regions[i];
        const char *name = mem_region_name(region);
        size_t name_len = RT_MIN(strlen(name), SS_NAME_MAX);
        ss_write_u8(w, (uint8_t)name_len);
        ss_write(w, name, name_len);
        ss_write_u64(w, mem_region_size(region));
        const uint8_t *hva = mem_region_hva(region);
        uint64_t pages = region_pages(region);
        for (uint64_t page = 0; !rc && page < pages; page += SS_CHUNK_PAGES) {
            unsigned n = (unsigned)RT_MIN((uint64_t)SS_CHUNK_PAGES, pages - page);
            rc = chunk_save(&s, hva + page * SS_PAGE_BYTES, (uint32_t)(page / SS_CHUNK_PAGES), n);
            done += n;
            progress_report(progress, done, total);
        }
        ss_write_u32(w, SS_CHUNK_END);
    }
    if (!rc)
        rc = w->rc;
    deflateEnd(&s.z);
    free(s.out);
    return rc;
}

/* Clears pages [first, first+count) of a region, skipping those already zero (no host memory touched). */
static void pages_clear(uint8_t *hva, uint64_t first, uint64_t count)
{
    for (uint64_t p = first; p < first + count; p++) {
        uint8_t *page = hva + p * SS_PAGE_BYTES;
        if (!page_is_zero(page))
            memset(page, 0, SS_PAGE_BYTES);
    }
}

struct ram_loader {
    struct ss_reader *r;
    z_stream z;
    uint8_t *comp;
    size_t comp_cap;
};

static int chunk_load(struct ram_loader *l, struct mem_region *region, uint32_t index)
{
    const char *name = mem_region_name(region);
    uint64_t pages = region_pages(region);
    uint64_t first = (uint64_t)index * SS_CHUNK_PAGES;
    uint8_t head[4 + SS_BITMAP_BYTES + 4];
    put_le(head, index, 4);
    int rc = ss_read(l->r, head + 4, sizeof(head) - 4, "a RAM chunk header");
    if (rc)
        return rc;
    const uint8_t *bitmap = head + 4;
    uint32_t comp_len = (uint32_t)get_le(head + 4 + SS_BITMAP_BYTES, 4);
    unsigned n = (unsigned)RT_MIN((uint64_t)SS_CHUNK_PAGES, pages - first);
    unsigned nonzero = 0;
    for (unsigned i = 0; i < SS_CHUNK_PAGES; i++) {
        if (!(bitmap[i / 8] & (1u << (i % 8))))
            continue;
        if (i >= n) {
            LOG_ERR("saved state: RAM region '%s' chunk %u names page %u past the region's end", name, index, i);
            return VERR_SSM_CORRUPT;
        }
        nonzero++;
    }
    if (!nonzero || comp_len == 0 || comp_len > l->comp_cap) {
        LOG_ERR("saved state: RAM region '%s' chunk %u has %u pages in %u compressed bytes (at most %zu allowed)",
                name, index, nonzero, comp_len, l->comp_cap);
        return VERR_SSM_CORRUPT;
    }
    uint32_t crc_file = 0;
    rc = ss_read(l->r, l->comp, comp_len, "a RAM chunk");
    if (!rc)
        rc = ss_read_u32(l->r, &crc_file, "a RAM chunk checksum");
    if (rc)
        return rc;
    uint32_t crc = (uint32_t)crc32_z(0, head, sizeof(head));
    crc = (uint32_t)crc32_z(crc, l->comp, comp_len);
    if (crc != crc_file) {
        LOG_ERR("saved state: RAM region '%s' chunk %u (file offset %llu) fails its checksum", name, index,
                (unsigned long long)(l->r->offset - comp_len - sizeof(head) - 4));
        return VERR_SSM_CORRUPT;
    }
    if (inflateReset(&l->z) != Z_OK)
        return VERR_GENERAL;
    uint8_t *hva = mem_region_hva(region);
    l->z.next_in = l->comp;
    l->z.avail_in = comp_len;
    int zrc = Z_OK;
    for (unsigned i = 0; i < n; i++) {
        uint8_t *page = hva + (first + i) * SS_PAGE_BYTES;
        if (!(bitmap[i / 8] & (1u << (i % 8)))) {
            pages_clear(hva, first + i, 1);
            continue;
        }
        l->z.next_out = page;
        l->z.avail_out = SS_PAGE_BYTES;
        zrc = inflate(&l->z, Z_NO_FLUSH);
        if ((zrc != Z_OK && zrc != Z_STREAM_END) || l->z.avail_out) {
            LOG_ERR("saved state: RAM region '%s' chunk %u does not inflate to its %u pages (zlib: %d)", name,
                    index, nonzero, zrc);
            return VERR_SSM_CORRUPT;
        }
    }
    if (zrc != Z_STREAM_END || l->z.avail_in) {
        LOG_ERR("saved state: RAM region '%s' chunk %u holds more data than its %u pages", name, index, nonzero);
        return VERR_SSM_CORRUPT;
    }
    return 0;
}

static int region_load(struct ram_loader *l, struct mem_region *region)
{
    uint64_t pages = region_pages(region);
    uint64_t chunks = (pages + SS_CHUNK_PAGES - 1) / SS_CHUNK_PAGES;
    uint8_t *hva = mem_region_hva(region);
    uint64_t next = 0; /* first chunk not yet loaded or cleared */
    for (;;) {
        uint32_t index;
        int rc = ss_read_u32(l->r, &index, "a RAM chunk index");
        if (rc)
            return rc;
        if (index == SS_CHUNK_END)
            break;
        if (index < next || index >= chunks) {
            LOG_ERR("saved state: RAM region '%s' has chunk %u out of order or past its %llu chunks",
                    mem_region_name(region), index, (unsigned long long)chunks);
            return VERR_SSM_CORRUPT;
        }
        pages_clear(hva, next * SS_CHUNK_PAGES, (index - next) * SS_CHUNK_PAGES);
        rc = chunk_load(l, region, index);
        if (rc)
            return rc;
        next = (uint64_t)index + 1;
    }
    if (next < chunks)
        pages_clear(hva, next * SS_CHUNK_PAGES, pages - next * SS_CHUNK_PAGES);
    /* Consumers of the dirty bitmap (a display) see the whole region as new. */
    mem_region_dirty_mark(region, 0, mem_region_size(region));
    return 0;
}

int ss_ram_load(struct vm *vm, struct ss_reader *r)
{
    struct ram_list list;
    int rc = ram_list_get(vm, &list);
    if (rc)
        return rc;
    uint32_t count = 0;
    rc = ss_read_u32(r, &count, "the RAM section");
    if (rc)
        return rc;
    if (count != list.count) {
        LOG_ERR("saved state has %u RAM regions, this VM has %u", count, list.count);
        return VERR_SSM_CORRUPT;
    }
    struct ram_loader l = {.r = r};
    if (inflateInit(&l.z) != Z_OK)
        return VERR_NO_MEMORY;
    /* A record never needs more room than deflate's bound for a whole chunk. */
    z_stream probe = {0};
    if (deflateInit(&probe, 1) == Z_OK) {
        l.comp_cap = deflateBound(&probe, SS_CHUNK_BYTES);
        deflateEnd(&probe);
    }
    l.comp = l.comp_cap ? malloc(l.comp_cap) : NULL;
    if (!l.comp)
        rc = VERR_NO_MEMORY;
    bool seen[RT_ARRAY_SIZE(list.regions)] = {0};
    for (uint32_t i = 0; !rc && i < count; i++) {
        uint8_t name_len = 0;
        char name[SS_NAME_MAX + 1];
        uint64_t size = 0;
        rc = ss_read_u8(r, &name_len, "a RAM region name");
        if (!rc)
            rc = ss_read(r, name, name_len, "a RAM region name");
        if (!rc)
            rc = ss_read_u64(r, &size, "a RAM region size");
        if (rc)
            break;
        name[name_len] = '\0';
        unsigned j = 0;
        while (j < list.count && (seen[j] || strcmp(mem_region_name(list.regions[j]), name) != 0))
            j++;
        if (j == list.count) {
            LOG_ERR("saved state has RAM region '%s', which this VM does not have (or has once only)", name);
            rc = VERR_SSM_CORRUPT;
            break;
        }
        if (size != mem_region_size(list.regions[j])) {
            LOG_ERR("saved state: RAM region '%s' is %llu bytes, in this VM %llu", name, (unsigned long long)size,
                    (unsigned long long)mem_region_size(list.regions[j]));
            rc = VERR_SSM_CORRUPT;
            break;
        }
        seen[j] = true;
        rc = region_load(&l, list.regions[j]);
    }
    inflateEnd(&l.z);
    free(l.comp);
    return rc;
}
