/* vdi.c - VirtualBox Disk Image (VDI 1.1) format: fixed, dynamic and differencing images. */

/*
 * Design.  A VDI file is a 64-byte text pre-header, the signature and version, a
 * header (its size is a field: 0x180 bytes, or 0x190 with the LCHS geometry that
 * VirtualBox 2.x and later append), the block map and the data area.  The block map
 * holds one little-endian uint32 per block of the virtual disk: VDI_MAP_FREE (not
 * allocated: the parent's data in a differencing image, zeroes otherwise),
 * VDI_MAP_ZERO (reads as zeroes, never falls through to a parent), or the index of a
 * data block ("slot"), stored at data_off + slot * (block + extra) with the block's
 * bytes after the extra bytes.  Field offsets below are those of the published VDI
 * 1.1 layout; every field is validated on open and a bad one fails blk_open naming it.
 *
 * The whole block map lives in memory (4 bytes per block: 256 MiB for the largest
 * disk we accept) with a bitmap of the slots it uses.  Metadata is write-through:
 * there is no cache to flush, so ops->flush is NULL and a completed write survives
 * SIGKILL.  A write to an unallocated block appends a slot after the last one used
 * (slot order is VirtualBox's and QEMU's: they append at "blocks allocated", so that
 * count never falls below the highest slot in use), fills what the write does not
 * cover from the parent or with zeroes, and writes the data block, then the map
 * entry, then the header's allocated count.  A process killed in between leaves at
 * worst a data block no entry uses (a leak) or a stale count, both of which open
 * tolerates and check --repair fixes.
 *
 * Discard and write zeroes turn whole blocks into VDI_MAP_FREE (VDI_MAP_ZERO in a
 * differencing image, so the parent does not show through); partial blocks are left
 * alone by discard and written with zeroes by write zeroes.  A fixed image keeps its
 * preallocation: discard does nothing and write zeroes writes zero bytes.  The data
 * block a discard frees stays in the file as a hole: check counts holes as leaks and
 * repair compacts them (it moves the last data blocks into the holes, one at a time,
 * each copy synced before its map entry changes, then truncates).  Until then the
 * allocated count still covers the holes, which qemu-img check reports as a count
 * mismatch.  New blocks are appended while the data area has room for them; when it
 * is full (every slot up to the block count used once) a hole is reused, after a sync
 * so the discard that freed it is on disk before its slot is overwritten.
 *
 * Differencing images.  VirtualBox records a parent by UUID in its media registry,
 * not in the image.  Vireo stores the parent in the 256-byte comment field as
 * "vireo-parent:<format>:<path>" (format a blk_format_name, or "auto"; the path as
 * given to blk_create, relative paths being relative to the image's folder) and the
 * parent's creation UUID in the link UUID field as VirtualBox does.  When the parent
 * is a VDI, backing_opened() checks that its UUID is the one recorded.  A
 * differencing image made by VirtualBox has no stored path: it opens only with
 * BLK_OPEN_NO_BACKING (for info and check).
 *
 * Growing.  New map entries must fit between the map and the data area.  When they do
 * not, the data blocks in the slots the bigger map needs are copied to the end of the
 * data area (and their entries repointed), the whole new map is written into the
 * freed slots, and one header write switches map offset, data offset and count to the
 * new layout; every step before that write leaves the old layout valid.
 *
 * UUIDs are stored as VirtualBox's RTUUID, whose first three fields are little-endian;
 * struct rt_uuid keeps the canonical (string) byte order.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block-internal.h"

#define LOG_COMPONENT "vdi"

/* File layout (VDI 1.1: pre-header, header, block map, data). */
#define VDI_SIGNATURE        0xbeda107fu
#define VDI_VERSION_1_1      0x00010001u
#define VDI_TEXT             "<<< Oracle VM VirtualBox Disk Image >>>\n"
#define VDI_OFF_SIGNATURE    0x040
#define VDI_OFF_VERSION      0x044
#define VDI_OFF_HEADER_SIZE  0x048 /* the header size counts from here */
#define VDI_OFF_TYPE         0x04c
#define VDI_OFF_FLAGS        0x050
#define VDI_OFF_COMMENT      0x054
#define VDI_COMMENT_BYTES    256
#define VDI_OFF_MAP          0x154
#define VDI_OFF_DATA         0x158
#define VDI_OFF_SECTOR_SIZE  0x168 /* last field of the legacy geometry at 0x15c */
#define VDI_OFF_DISK_SIZE    0x170
#define VDI_OFF_BLOCK_SIZE   0x178
#define VDI_OFF_BLOCK_EXTRA  0x17c
#define VDI_OFF_BLOCKS       0x180
#define VDI_OFF_ALLOCATED    0x184
#define VDI_OFF_UUID_CREATE  0x188
#define VDI_OFF_UUID_MODIFY  0x198
#define VDI_OFF_UUID_LINK    0x1a8
#define VDI_OFF_UUID_PMODIFY 0x1b8
#define VDI_HEADER_MIN       0x180 /* header size of VDI 1.1 without the LCHS geometry */
#define VDI_HEADER_CREATE    0x190 /* with it, as VirtualBox writes it */
#define VDI_HEAD_BYTES       0x200 /* pre-header and header: the header must end inside */

#define VDI_TYPE_DYNAMIC 1u
#define VDI_TYPE_FIXED   2u
#define VDI_TYPE_UNDO    3u /* VirtualBox 1.x; a differencing image in all but name */
#define VDI_TYPE_DIFF    4u

#define VDI_MAP_FREE 0xffffffffu
#define VDI_MAP_ZERO 0xfffffffeu

#define VDI_BLOCK_MIN     512u
#define VDI_BLOCK_MAX     (64u << 20)
#define VDI_BLOCK_CREATE  (1u << 20)
#define VDI_DATA_ALIGN    (1u << 20) /* new images start their data on a MiB boundary */
/* 64 TiB of 1 MiB blocks; smaller blocks give smaller disks (a 256 MiB map at most). */
#define VDI_MAX_BLOCKS    (1u << 26)
#define VDI_PARENT_PREFIX "vireo-parent:"
#define VDI_IO_CHUNK      (1u << 20)

struct vdi {
    uint8_t head[VDI_HEAD_BYTES]; /* pre-header and header as in the file */
    uint32_t type;
    uint32_t header_bytes;
    uint32_t map_off;
    uint32_t data_off;
    uint64_t disk_bytes;
    uint32_t block_bytes;
    uint32_t extra_bytes;
    unsigned block_shift;
    uint64_t stride;     /* bytes per data block in the file: extra + block */
    uint32_t blocks;     /* map entries */
    uint32_t allocated;  /* the header's count */
    uint32_t next_slot;  /* where the next data block is appended */
    uint32_t *map;       /* host order */
    uint64_t *used;      /* bit per slot: some entry points there */
    uint8_t *buf;        /* one data block (stride bytes), for allocation and copies */
    bool modify_stamped; /* the modification UUID was renewed in this session */
    bool freed_unsynced; /* a data block was freed and not synced since: no reuse before a sync */
};

static bool vdi_is_diff(const struct vdi *s)
{
    return s->type == VDI_TYPE_DIFF || s->type == VDI_TYPE_UNDO;
}

static bool vdi_is_slot(uint32_t entry)
{
    return entry != VDI_MAP_FREE && entry != VDI_MAP_ZERO;
}

static uint64_t vdi_slot_pos(const struct vdi *s, uint32_t slot)
{
    return s->data_off + (uint64_t)slot * s->stride;
}

static void vdi_used_set(struct vdi *s, uint32_t slot, bool on)
{
    if (on)
        s->used[slot / 64] |= 1ull << (slot % 64);
    else
        s->used[slot / 64] &= ~(1ull << (slot % 64));
}

static bool vdi_used_get(const struct vdi *s, uint32_t slot)
{
    return s->used[slot / 64] >> (slot % 64) & 1;
}

/* RTUUID on disk: time_low, time_mid and time_hi little-endian, then 8 bytes as they are. */
static void vdi_uuid_get(const uint8_t *p, struct rt_uuid *out)
{
    static const uint8_t order[16] = {3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15};
    for (int i = 0; i < 16; i++)
        out->bytes[i] = p[order[i]];
}

static void vdi_uuid_put(uint8_t *p, const struct rt_uuid *uuid)
{
    struct rt_uuid swapped;
    vdi_uuid_get(uuid->bytes, &swapped); /* the swap is its own inverse */
    memcpy(p, swapped.bytes, 16);
}

static bool vdi_is_zero(const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len && ((uintptr_t)p & 7))
        if (len--, *p++)
            return false;
    for (; len >= 8; p += 8, len -= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        if (v)
            return false;
    }
    while (len--)
        if (*p++)
            return false;
    return true;
}

/* ---- Header fields --------------------------------------------------------------- */

static int vdi_head_write(struct blk_image *img, unsigned off, unsigned len)
{
    struct vdi *s = img->priv;
    return blk_file_write(img, off, s->head + off, len);
}

static int vdi_set_allocated(struct blk_image *img, uint32_t count)
{
    struct vdi *s = img->priv;
    blk_put_le32(s->head + VDI_OFF_ALLOCATED, count);
    int rc = vdi_head_write(img, VDI_OFF_ALLOCATED, 4);
    if (rc == 0)
        s->allocated = count;
    return rc;
}

static int vdi_map_store(struct blk_image *img, uint32_t idx, uint32_t entry)
{
    struct vdi *s = img->priv;
    uint8_t le[4];
    blk_put_le32(le, entry);
    int rc = blk_file_write(img, s->map_off + (uint64_t)idx * 4, le, 4);
    if (rc)
        return rc;
    uint32_t old = s->map[idx];
    if (vdi_is_slot(old)) {
        vdi_used_set(s, old, false);
        s->freed_unsynced = true;
    }
    if (vdi_is_slot(entry))
        vdi_used_set(s, entry, true);
    s->map[idx] = entry;
    return 0;
}

/* VirtualBox renews the modification UUID when an image is first changed after opening. */
static int vdi_stamp_modified(struct blk_image *img)
{
    struct vdi *s = img->priv;
    if (s->modify_stamped)
        return 0;
    struct rt_uuid uuid;
    int rc = rt_uuid_generate(&uuid);
    if (rc)
        return rc;
    vdi_uuid_put(s->head + VDI_OFF_UUID_MODIFY, &uuid);
    rc = vdi_head_write(img, VDI_OFF_UUID_MODIFY, 16);
    if (rc == 0)
        s->modify_stamped = true;
    return rc;
}

static int vdi_buf_get(struct vdi *s, uint8_t **out)
{
    if (!s->buf) {
        s->buf = malloc(s->stride);
        if (!s->buf)
            return VERR_NO_MEMORY;
    }
    *out = s->buf;
    return 0;
}

/* ---- Probe and open ------------------------------------------------------------------ */

static int vdi_probe(const uint8_t *head, size_t head_len, uint64_t file_bytes, const char *path)
{
    (void)file_bytes;
    (void)path;
    if (head_len < VDI_OFF_VERSION + 4 || blk_le32(head + VDI_OFF_SIGNATURE) != VDI_SIGNATURE)
        return 0;
    return blk_le32(head + VDI_OFF_VERSION) == VDI_VERSION_1_1 ? 100 : 90;
}

static void vdi_free(struct vdi *s)
{
    if (!s)
        return;
    free(s->map);
    free(s->used);
    free(s->buf);
    free(s);
}

/* Checks the header fields that do not need the map; fills s. */
static int vdi_parse_header(struct blk_image *img, struct vdi *s, uint64_t file_bytes)
{
    const uint8_t *h = s->head;
    uint32_t sig = blk_le32(h + VDI_OFF_SIGNATURE);
    if (sig != VDI_SIGNATURE)
        return blk_bad_format(img, "signature 0x%08x is not a VDI image's (0x%08x)", sig, VDI_SIGNATURE);
    uint32_t version = blk_le32(h + VDI_OFF_VERSION);
    if (version != VDI_VERSION_1_1)
        return blk_bad_format(img, "VDI version %u.%u is not supported (only 1.1)", version >> 16,
                              version & 0xffff);
    s->header_bytes = blk_le32(h + VDI_OFF_HEADER_SIZE);
    if (s->header_bytes < VDI_HEADER_MIN || s->header_bytes > VDI_HEAD_BYTES - VDI_OFF_HEADER_SIZE)
        return blk_bad_format(img, "header size 0x%x is not supported (0x%x to 0x%x)", s->header_bytes,
                              VDI_HEADER_MIN, VDI_HEAD_BYTES - VDI_OFF_HEADER_SIZE);
    uint32_t header_end = VDI_OFF_HEADER_SIZE + s->header_bytes;
    if (file_bytes < header_end)
        return blk_bad_format(img, "the file (%llu bytes) ends inside the header (which ends at 0x%x)",
                              (unsigned long long)file_bytes, header_end);
    s->type = blk_le32(h + VDI_OFF_TYPE);
    if (s->type < VDI_TYPE_DYNAMIC || s->type > VDI_TYPE_DIFF)
        return blk_bad_format(img, "image type %u is unknown (1 dynamic, 2 fixed, 3 undo, 4 differencing)",
                              s->type);
    /* Image flags: VDI defines no incompatible feature bits (only hints), so any value is kept as is. */
    uint32_t sector = blk_le32(h + VDI_OFF_SECTOR_SIZE);
    if (sector != 0 && sector != 512)
        return blk_bad_format(img, "sector size %u in the geometry is not 512", sector);
    s->block_bytes = blk_le32(h + VDI_OFF_BLOCK_SIZE);
    if (s->block_bytes < VDI_BLOCK_MIN || s->block_bytes > VDI_BLOCK_MAX ||
        (s->block_bytes & (s->block_bytes - 1)))
        return blk_bad_format(img, "block size %u is not a power of two from %u bytes to %u MiB", s->block_bytes,
                              VDI_BLOCK_MIN, VDI_BLOCK_MAX >> 20);
    s->block_shift = (unsigned)__builtin_ctz(s->block_bytes);
    s->extra_bytes = blk_le32(h + VDI_OFF_BLOCK_EXTRA);
    if (s->extra_bytes > s->block_bytes)
        return blk_bad_format(img, "extra block data of %u bytes is larger than a block (%u bytes)",
                              s->extra_bytes, s->block_bytes);
    s->stride = (uint64_t)s->block_bytes + s->extra_bytes;
    s->disk_bytes = blk_le64(h + VDI_OFF_DISK_SIZE);
    if (s->disk_bytes > BLK_MAX_SIZE_BYTES)
        return blk_bad_format(img, "disk size %llu bytes is larger than the %llu TiB limit",
                              (unsigned long long)s->disk_bytes, (unsigned long long)(BLK_MAX_SIZE_BYTES >> 40));
    s->blocks = blk_le32(h + VDI_OFF_BLOCKS);
    uint64_t need = (s->disk_bytes + s->block_bytes - 1) >> s->block_shift;
    if (s->blocks != need)
        return blk_bad_format(img, "block count %u does not match the disk size (%llu bytes need %llu blocks of %u)",
                              s->blocks, (unsigned long long)s->disk_bytes, (unsigned long long)need,
                              s->block_bytes);
    if (s->blocks > VDI_MAX_BLOCKS)
        return blk_bad_format(img, "block count %u is more than the %u this implementation accepts", s->blocks,
                              VDI_MAX_BLOCKS);
    s->allocated = blk_le32(h + VDI_OFF_ALLOCATED);
    if (s->allocated > s->blocks)
        return blk_bad_format(img, "allocated block count %u is larger than the block count %u", s->allocated,
                              s->blocks);
    s->map_off = blk_le32(h + VDI_OFF_MAP);
    s->data_off = blk_le32(h + VDI_OFF_DATA);
    uint64_t map_end = s->map_off + (uint64_t)s->blocks * 4;
    if (s->map_off < header_end)
        return blk_bad_format(img, "block map offset 0x%x overlaps the header (which ends at 0x%x)", s->map_off,
                              header_end);
    if (map_end > file_bytes)
        return blk_bad_format(img, "block map (offset 0x%x, %u entries) passes the end of the file (%llu bytes)",
                              s->map_off, s->blocks, (unsigned long long)file_bytes);
    if (s->data_off < map_end)
        return blk_bad_format(img, "data offset 0x%x overlaps the block map (which ends at 0x%llx)", s->data_off,
                              (unsigned long long)map_end);
    return 0;
}

/* Reads the map and checks every entry against the block count and the file's end. */
static int vdi_load_map(struct blk_image *img, struct vdi *s, uint64_t file_bytes)
{
    size_t n = s->blocks ? s->blocks : 1;
    s->map = malloc(n * 4);
    s->used = calloc((n + 63) / 64, 8);
    if (!s->map || !s->used)
        return VERR_NO_MEMORY;
    int rc = blk_file_read(img, s->map_off, s->map, (size_t)s->blocks * 4);
    if (rc)
        return rc;
    uint32_t end = s->allocated;
    for (uint32_t i = 0; i < s->blocks; i++) {
        uint32_t e = blk_le32(&s->map[i]);
        s->map[i] = e;
        if (!vdi_is_slot(e))
            continue;
        if (e >= s->blocks)
            return blk_bad_format(img, "block map entry %u points to data block %u, past the %u blocks of the disk",
                                  i, e, s->blocks);
        if (vdi_slot_pos(s, e) + s->stride > file_bytes)
            return blk_bad_format(img, "block map entry %u points to data block %u, past the end of the file", i, e);
        if (vdi_used_get(s, e)) {
            /* Writes would land in two blocks at once; reading (info, check) is still safe. */
            if (!img->readonly)
                return blk_bad_format(img, "block map entry %u points to data block %u, which another entry uses",
                                      i, e);
            LOG_WARN("%s: block map entry %u points to data block %u, which another entry uses", img->path, i, e);
        }
        vdi_used_set(s, e, true);
        if (e >= end)
            end = e + 1;
    }
    s->next_slot = end;
    return 0;
}

/* "vireo-parent:<format>:<path>" in the comment of a differencing image. */
static int vdi_parse_parent(struct blk_image *img, struct vdi *s)
{
    const char *c = (const char *)s->head + VDI_OFF_COMMENT;
    size_t plen = strlen(VDI_PARENT_PREFIX);
    if (strncmp(c, VDI_PARENT_PREFIX, plen) != 0) {
        if (img->flags & BLK_OPEN_NO_BACKING)
            return 0;
        LOG_ERR("%s: differencing image whose parent is unknown: VirtualBox records the parent in its "
                "media registry, not in the image (open it with its chain in VirtualBox, or convert it there)",
                img->path);
        return VERR_NOT_FOUND;
    }
    if (!memchr(c, '\0', VDI_COMMENT_BYTES))
        return blk_bad_format(img, "comment field: the parent's name is not terminated");
    const char *fmt = c + plen;
    const char *colon = strchr(fmt, ':');
    char name[16];
    if (!colon || (size_t)(colon - fmt) >= sizeof(name) || colon[1] == '\0')
        return blk_bad_format(img, "comment field: \"%s\" is not vireo-parent:<format>:<path>", c);
    memcpy(name, fmt, (size_t)(colon - fmt));
    name[colon - fmt] = '\0';
    enum blk_format bfmt;
    if (blk_format_from_name(name, &bfmt) != 0)
        return blk_bad_format(img, "comment field: the parent's format \"%s\" is unknown", name);
    img->backing_name = strdup(colon + 1);
    if (!img->backing_name)
        return VERR_NO_MEMORY;
    img->backing_format = bfmt;
    return 0;
}

static int vdi_open(struct blk_image *img)
{
    uint64_t file_bytes;
    int rc = blk_file_size(img, &file_bytes);
    if (rc)
        return rc;
    if (file_bytes < VDI_OFF_HEADER_SIZE + 4)
        return blk_bad_format(img, "the file (%llu bytes) is too short for a VDI header",
                              (unsigned long long)file_bytes);
    struct vdi *s = calloc(1, sizeof(*s));
    if (!s)
        return VERR_NO_MEMORY;
    rc = blk_file_read(img, 0, s->head, file_bytes < VDI_HEAD_BYTES ? (size_t)file_bytes : VDI_HEAD_BYTES);
    if (rc == 0)
        rc = vdi_parse_header(img, s, file_bytes);
    if (rc == 0)
        rc = vdi_load_map(img, s, file_bytes);
    if (rc == 0 && vdi_is_diff(s))
        rc = vdi_parse_parent(img, s);
    if (rc) {
        free(img->backing_name);
        img->backing_name = NULL;
        vdi_free(s);
        return rc;
    }
    img->size_bytes = s->disk_bytes;
    img->priv = s;
    return 0;
}

static int vdi_backing_opened(struct blk_image *img)
{
    struct vdi *s = img->priv;
    if (!vdi_is_diff(s) || !img->backing)
        return 0;
    struct rt_uuid want, have;
    memset(&have, 0, sizeof(have));
    vdi_uuid_get(s->head + VDI_OFF_UUID_LINK, &want);
    if (img->backing->ops == &g_blk_format_vdi) {
        const struct vdi *p = img->backing->priv;
        vdi_uuid_get(p->head + VDI_OFF_UUID_CREATE, &have);
    }
    if (memcmp(want.bytes, have.bytes, 16) == 0)
        return 0;
    char ws[RT_UUID_STR_LEN], hs[RT_UUID_STR_LEN];
    rt_uuid_to_str(&want, ws);
    rt_uuid_to_str(&have, hs);
    LOG_ERR("%s: its parent %s has changed: the image was made from UUID %s, the parent's UUID is %s", img->path,
            img->backing->path, ws, hs);
    return VERR_BAD_FORMAT;
}

static void vdi_close(struct blk_image *img)
{
    vdi_free(img->priv);
    img->priv = NULL;
}

/* ---- Reading and writing ---------------------------------------------------------------- */

/* What lies below this file; the part past the disk's end (the last block's tail) is zeroes. */
static int vdi_read_below(struct blk_image *img, uint64_t offset, uint8_t *buf, size_t len)
{
    struct vdi *s = img->priv;
    if (!vdi_is_diff(s) || offset >= s->disk_bytes) {
        memset(buf, 0, len);
        return 0;
    }
    size_t in = len;
    if (offset + len > s->disk_bytes) {
        in = (size_t)(s->disk_bytes - offset);
        memset(buf + in, 0, len - in);
    }
    return blk_layer_read_below(img, offset, buf, in);
}

/* Length of the run from offset (at most len) over blocks of the same kind, contiguous in the file. */
static size_t vdi_run(const struct vdi *s, uint64_t offset, size_t len)
{
    uint32_t idx = (uint32_t)(offset >> s->block_shift);
    uint64_t run = s->block_bytes - (offset & (s->block_bytes - 1));
    uint32_t e = s->map[idx];
    while (run < len && idx + 1 < s->blocks) {
        uint32_t next = s->map[idx + 1];
        bool same = vdi_is_slot(e) ? (s->extra_bytes == 0 && next == e + 1) : next == e;
        if (!same)
            break;
        idx++, e = next, run += s->block_bytes;
    }
    return run < len ? (size_t)run : len;
}

static int vdi_read(struct blk_image *img, uint64_t offset, void *buf, size_t len)
{
    struct vdi *s = img->priv;
    uint8_t *p = buf;
    while (len) {
        uint32_t e = s->map[offset >> s->block_shift];
        size_t n = vdi_run(s, offset, len);
        int rc = 0;
        if (e == VDI_MAP_FREE)
            rc = vdi_read_below(img, offset, p, n);
        else if (e == VDI_MAP_ZERO)
            memset(p, 0, n);
        else
            rc = blk_file_read(img, vdi_slot_pos(s, e) + s->extra_bytes + (offset & (s->block_bytes - 1)), p, n);
        if (rc)
            return rc;
        p += n, offset += n, len -= n;
    }
    return 0;
}

/* A slot for a new data block: appended while the data area has room, else the lowest hole. */
static int vdi_slot_pick(struct blk_image *img, uint32_t *out)
{
    struct vdi *s = img->priv;
    if (s->next_slot < s->blocks) {
        *out = s->next_slot;
        return 0;
    }
    for (size_t w = 0; w < ((size_t)s->blocks + 63) / 64; w++) {
        if (s->used[w] == UINT64_MAX)
            continue;
        uint32_t slot = (uint32_t)(w * 64 + (size_t)__builtin_ctzll(~s->used[w]));
        if (slot >= s->blocks)
            break;
        /* The discard that freed it must be on disk before the slot gets new data. */
        int rc = s->freed_unsynced ? blk_file_sync(img) : 0;
        if (rc)
            return rc;
        s->freed_unsynced = false;
        *out = slot;
        return 0;
    }
    LOG_ERR("%s: no free data block although a map entry is unallocated", img->path);
    return VERR_BAD_FORMAT;
}

/* Writes a whole data block (buf: stride bytes) into a new slot and points entry idx at it. */
static int vdi_block_add(struct blk_image *img, uint32_t idx, const uint8_t *buf)
{
    struct vdi *s = img->priv;
    uint32_t slot;
    int rc = vdi_slot_pick(img, &slot);
    if (rc == 0)
        rc = blk_file_write(img, vdi_slot_pos(s, slot), buf, s->stride);
    if (rc == 0)
        rc = vdi_map_store(img, idx, slot);
    if (rc)
        return rc;
    if (slot >= s->next_slot)
        s->next_slot = slot + 1;
    return s->allocated < s->next_slot ? vdi_set_allocated(img, s->next_slot) : 0;
}

/* A write of n bytes at in inside unallocated (free or zero) block idx. */
static int vdi_write_unallocated(struct blk_image *img, uint32_t idx, uint32_t in, const uint8_t *data, size_t n)
{
    struct vdi *s = img->priv;
    bool below = s->map[idx] == VDI_MAP_FREE && vdi_is_diff(s);
    if (vdi_is_zero(data, n)) {
        if (!below)
            return 0; /* reads as zeroes already */
        if (n == s->block_bytes)
            return vdi_map_store(img, idx, VDI_MAP_ZERO);
    }
    if (below && n < s->block_bytes && !img->backing) {
        LOG_ERR("%s: differencing image opened without its parent: a partial write to block %u would lose the "
                "parent's data", img->path, idx);
        return VERR_INVALID_STATE;
    }
    uint8_t *buf;
    int rc = vdi_buf_get(s, &buf);
    if (rc)
        return rc;
    uint8_t *blk = buf + s->extra_bytes;
    uint64_t base = (uint64_t)idx << s->block_shift;
    memset(buf, 0, s->extra_bytes);
    if (below) {
        if (in)
            rc = vdi_read_below(img, base, blk, in);
        if (rc == 0 && in + n < s->block_bytes)
            rc = vdi_read_below(img, base + in + n, blk + in + n, s->block_bytes - in - n);
        if (rc)
            return rc;
    } else {
        memset(blk, 0, in);
        memset(blk + in + n, 0, s->block_bytes - in - n);
    }
    memcpy(blk + in, data, n);
    return vdi_block_add(img, idx, buf);
}

static int vdi_write(struct blk_image *img, uint64_t offset, const void *buf, size_t len)
{
    struct vdi *s = img->priv;
    const uint8_t *p = buf;
    int rc = vdi_stamp_modified(img);
    while (rc == 0 && len) {
        uint32_t idx = (uint32_t)(offset >> s->block_shift);
        uint32_t in = (uint32_t)(offset & (s->block_bytes - 1));
        uint32_t e = s->map[idx];
        size_t n;
        if (vdi_is_slot(e)) {
            n = vdi_run(s, offset, len);
            rc = blk_file_write(img, vdi_slot_pos(s, e) + s->extra_bytes + in, p, n);
        } else {
            n = s->block_bytes - in < len ? s->block_bytes - in : len;
            rc = vdi_write_unallocated(img, idx, in, p, n);
        }
        p += n, offset += n, len -= n;
    }
    return rc;
}

/* Whole blocks [first, first + count) become unallocated (zero blocks in a differencing image). */
static int vdi_blocks_drop(struct blk_image *img, uint32_t first, uint32_t count)
{
    struct vdi *s = img->priv;
    uint32_t entry = vdi_is_diff(s) ? VDI_MAP_ZERO : VDI_MAP_FREE;
    for (uint32_t idx = first; idx < first + count; idx++) {
        if (s->map[idx] == entry)
            continue;
        int rc = vdi_map_store(img, idx, entry);
        if (rc)
            return rc;
    }
    return 0;
}

/* The whole blocks inside [offset, offset + len): *first and *count. */
static void vdi_whole_blocks(const struct vdi *s, uint64_t offset, uint64_t len, uint32_t *first, uint32_t *count)
{
    uint64_t end = offset + len;
    uint64_t lo = (offset + s->block_bytes - 1) >> s->block_shift;
    /* The disk's last block counts as whole when the range reaches the disk's end. */
    uint64_t hi = end >= s->disk_bytes ? s->blocks : end >> s->block_shift;
    *first = (uint32_t)lo;
    *count = hi > lo ? (uint32_t)(hi - lo) : 0;
}

static int vdi_discard(struct blk_image *img, uint64_t offset, uint64_t len)
{
    struct vdi *s = img->priv;
    uint32_t first, count;
    if (s->type == VDI_TYPE_FIXED)
        return 0; /* a fixed image keeps its preallocation */
    vdi_whole_blocks(s, offset, len, &first, &count);
    if (count == 0)
        return 0;
    int rc = vdi_stamp_modified(img);
    return rc ? rc : vdi_blocks_drop(img, first, count);
}

static int vdi_write_zero_bytes(struct blk_image *img, uint64_t offset, uint64_t len)
{
    struct vdi *s = img->priv;
    size_t chunk = s->block_bytes;
    uint8_t *zero = calloc(1, chunk);
    if (!zero)
        return VERR_NO_MEMORY;
    int rc = 0;
    while (rc == 0 && len) {
        size_t n = len < chunk ? (size_t)len : chunk;
        rc = vdi_write(img, offset, zero, n);
        offset += n, len -= n;
    }
    free(zero);
    return rc;
}

static int vdi_write_zeroes(struct blk_image *img, uint64_t offset, uint64_t len)
{
    struct vdi *s = img->priv;
    uint32_t first, count;
    if (s->type == VDI_TYPE_FIXED)
        return vdi_write_zero_bytes(img, offset, len);
    vdi_whole_blocks(s, offset, len, &first, &count);
    if (count == 0)
        return vdi_write_zero_bytes(img, offset, len);
    uint64_t lo = (uint64_t)first << s->block_shift;
    uint64_t hi = (uint64_t)(first + count) << s->block_shift;
    if (hi > offset + len)
        hi = offset + len; /* the disk's last, partial block */
    int rc = vdi_stamp_modified(img);
    if (rc == 0 && lo > offset)
        rc = vdi_write_zero_bytes(img, offset, lo - offset);
    if (rc == 0)
        rc = vdi_blocks_drop(img, first, count);
    if (rc == 0 && offset + len > hi)
        rc = vdi_write_zero_bytes(img, hi, offset + len - hi);
    return rc;
}

static int vdi_block_status(struct blk_image *img, uint64_t offset, uint64_t len, bool *allocated, uint64_t *pnum)
{
    struct vdi *s = img->priv;
    uint32_t idx = (uint32_t)(offset >> s->block_shift);
    /* A zero block of a differencing image is held here: it hides the parent. */
    bool diff = vdi_is_diff(s);
    bool want = vdi_is_slot(s->map[idx]) || (diff && s->map[idx] == VDI_MAP_ZERO);
    uint64_t run = s->block_bytes - (offset & (s->block_bytes - 1));
    while (run < len && ++idx < s->blocks) {
        uint32_t e = s->map[idx];
        if ((vdi_is_slot(e) || (diff && e == VDI_MAP_ZERO)) != want)
            break;
        run += s->block_bytes;
    }
    *allocated = want;
    *pnum = run < len ? run : len;
    return 0;
}

static void vdi_info(struct blk_image *img, struct blk_info *info)
{
    struct vdi *s = img->priv;
    const char *variant = s->type == VDI_TYPE_FIXED ? "fixed" : vdi_is_diff(s) ? "differencing" : "dynamic";
    snprintf(info->variant, sizeof(info->variant), "%s", variant);
    vdi_uuid_get(s->head + VDI_OFF_UUID_CREATE, &info->uuid);
    vdi_uuid_get(s->head + VDI_OFF_UUID_LINK, &info->parent_uuid);
}

/* ---- Creating ------------------------------------------------------------------------------ */

static int vdi_fd_write(int fd, uint64_t off, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int err = n < 0 ? errno : EIO;
            LOG_ERR("writing a new image: %s", strerror(err));
            return rt_err_from_errno(err);
        }
        p += n, off += (uint64_t)n, len -= (size_t)n;
    }
    return 0;
}

/* Makes [off, off + len) of fd real zeroes: fallocate where the file system can, written zeroes elsewhere. */
static int vdi_fd_preallocate(int fd, uint64_t off, uint64_t len)
{
    if (len == 0 || fallocate(fd, 0, (off_t)off, (off_t)len) == 0)
        return 0;
    if (errno != EOPNOTSUPP && errno != ENOSYS) {
        int err = errno;
        LOG_ERR("allocating %llu bytes for a fixed image: %s", (unsigned long long)len, strerror(err));
        return rt_err_from_errno(err);
    }
    uint8_t *zero = calloc(1, VDI_IO_CHUNK);
    if (!zero)
        return VERR_NO_MEMORY;
    int rc = 0;
    while (rc == 0 && len) {
        size_t n = len < VDI_IO_CHUNK ? (size_t)len : VDI_IO_CHUNK;
        rc = vdi_fd_write(fd, off, zero, n);
        off += n, len -= n;
    }
    free(zero);
    return rc;
}

/* Map entries [first, first + count) written to fd at map_off: the slot numbers from slot0 on, or entry. */
static int vdi_fd_write_map(int fd, uint64_t map_off, uint32_t first, uint32_t count, bool slots, uint32_t slot0,
                            uint32_t entry)
{
    enum { PER_CHUNK = VDI_IO_CHUNK / 4 };
    uint8_t *chunk = malloc(VDI_IO_CHUNK);
    if (!chunk)
        return VERR_NO_MEMORY;
    int rc = 0;
    for (uint32_t done = 0; rc == 0 && done < count;) {
        uint32_t n = count - done < PER_CHUNK ? count - done : PER_CHUNK;
        for (uint32_t i = 0; i < n; i++)
            blk_put_le32(chunk + 4 * i, slots ? slot0 + done + i : entry);
        rc = vdi_fd_write(fd, map_off + 4ull * (first + done), chunk, 4 * (size_t)n);
        done += n;
    }
    free(chunk);
    return rc;
}

static int vdi_create(int fd, const struct blk_create_params *params, const char *backing,
                      struct blk_image *backing_img)
{
    uint64_t size = params->size_bytes;
    uint64_t blocks = (size + VDI_BLOCK_CREATE - 1) / VDI_BLOCK_CREATE;
    if (size > BLK_MAX_SIZE_BYTES || blocks > VDI_MAX_BLOCKS) {
        LOG_ERR("a VDI image holds at most %llu TiB", (unsigned long long)(BLK_MAX_SIZE_BYTES >> 40));
        return VERR_TOO_LARGE;
    }
    if (backing && params->fixed) {
        LOG_ERR("a differencing VDI image cannot be fixed (its blocks are allocated as they are written)");
        return VERR_INVALID_PARAMETER;
    }
    uint8_t head[VDI_HEAD_BYTES];
    memset(head, 0, sizeof(head));
    memcpy(head, VDI_TEXT, strlen(VDI_TEXT));
    uint32_t type = backing ? VDI_TYPE_DIFF : params->fixed ? VDI_TYPE_FIXED : VDI_TYPE_DYNAMIC;
    uint32_t map_off = VDI_HEAD_BYTES;
    uint64_t data_off = (map_off + blocks * 4 + VDI_DATA_ALIGN - 1) / VDI_DATA_ALIGN * VDI_DATA_ALIGN;
    blk_put_le32(head + VDI_OFF_SIGNATURE, VDI_SIGNATURE);
    blk_put_le32(head + VDI_OFF_VERSION, VDI_VERSION_1_1);
    blk_put_le32(head + VDI_OFF_HEADER_SIZE, VDI_HEADER_CREATE);
    blk_put_le32(head + VDI_OFF_TYPE, type);
    blk_put_le32(head + VDI_OFF_MAP, map_off);
    blk_put_le32(head + VDI_OFF_DATA, (uint32_t)data_off);
    blk_put_le32(head + VDI_OFF_SECTOR_SIZE, 512);
    blk_put_le64(head + VDI_OFF_DISK_SIZE, size);
    blk_put_le32(head + VDI_OFF_BLOCK_SIZE, VDI_BLOCK_CREATE);
    blk_put_le32(head + VDI_OFF_BLOCKS, (uint32_t)blocks);
    blk_put_le32(head + VDI_OFF_ALLOCATED, params->fixed ? (uint32_t)blocks : 0);
    struct rt_uuid uuid;
    int rc = rt_uuid_generate(&uuid);
    if (rc)
        return rc;
    vdi_uuid_put(head + VDI_OFF_UUID_CREATE, &uuid);
    if ((rc = rt_uuid_generate(&uuid)) != 0)
        return rc;
    vdi_uuid_put(head + VDI_OFF_UUID_MODIFY, &uuid);
    if (backing) {
        enum blk_format bfmt = backing_img ? backing_img->ops->format : params->backing_format;
        const char *fmt_name = blk_format_name(bfmt) ? blk_format_name(bfmt) : "auto";
        char *comment = (char *)head + VDI_OFF_COMMENT;
        int n = snprintf(comment, VDI_COMMENT_BYTES, VDI_PARENT_PREFIX "%s:%s", fmt_name, backing);
        if (n < 0 || n >= VDI_COMMENT_BYTES) {
            LOG_ERR("the parent's path %s is too long for a VDI image (%d bytes at most)", backing,
                    VDI_COMMENT_BYTES - 1 - (int)strlen(VDI_PARENT_PREFIX) - (int)strlen(fmt_name) - 1);
            return VERR_TOO_LARGE;
        }
        /* The parent is checked by UUID when it is a VDI; other formats have none (zero here). */
        if (backing_img && backing_img->ops == &g_blk_format_vdi) {
            const struct vdi *p = backing_img->priv;
            memcpy(head + VDI_OFF_UUID_LINK, p->head + VDI_OFF_UUID_CREATE, 16);
            memcpy(head + VDI_OFF_UUID_PMODIFY, p->head + VDI_OFF_UUID_MODIFY, 16);
        }
    }
    rc = vdi_fd_write(fd, 0, head, sizeof(head));
    if (rc == 0)
        rc = vdi_fd_write_map(fd, map_off, 0, (uint32_t)blocks, params->fixed, 0, VDI_MAP_FREE);
    if (rc == 0 && params->fixed)
        rc = vdi_fd_preallocate(fd, data_off, blocks * VDI_BLOCK_CREATE);
    if (rc == 0 && !params->fixed && ftruncate(fd, (off_t)data_off) != 0) {
        int err = errno;
        LOG_ERR("sizing a new image: %s", strerror(err));
        rc = rt_err_from_errno(err);
    }
    return rc;
}

/* ---- Rebasing ---------------------------------------------------------------------------------- */

/*
 * The comment field names the new parent and the link UUIDs become the new parent's
 * (zero for a parent that has none), as vdi_create records them.  Comment and UUIDs go
 * out in one write of the header range that holds them; the fields between them are
 * rewritten with the values they have.
 */
static int vdi_set_backing(struct blk_image *img, const char *backing, struct blk_image *backing_img)
{
    struct vdi *s = img->priv;
    if (!vdi_is_diff(s)) {
        LOG_ERR("%s: not a differencing VDI image: it has no parent to replace", img->path);
        return VERR_INVALID_STATE;
    }
    uint8_t head[VDI_HEAD_BYTES];
    memcpy(head, s->head, sizeof(head));
    char *comment = (char *)head + VDI_OFF_COMMENT;
    memset(comment, 0, VDI_COMMENT_BYTES);
    const char *fmt_name = blk_format_name(backing_img->ops->format);
    int n = snprintf(comment, VDI_COMMENT_BYTES, VDI_PARENT_PREFIX "%s:%s", fmt_name, backing);
    if (n < 0 || n >= VDI_COMMENT_BYTES) {
        LOG_ERR("%s: the parent's path %s is too long for a VDI image (%d bytes at most)", img->path, backing,
                VDI_COMMENT_BYTES - 1 - (int)strlen(VDI_PARENT_PREFIX) - (int)strlen(fmt_name) - 1);
        return VERR_TOO_LARGE;
    }
    memset(head + VDI_OFF_UUID_LINK, 0, 16);
    memset(head + VDI_OFF_UUID_PMODIFY, 0, 16);
    if (backing_img->ops == &g_blk_format_vdi) {
        const struct vdi *p = backing_img->priv;
        memcpy(head + VDI_OFF_UUID_LINK, p->head + VDI_OFF_UUID_CREATE, 16);
        memcpy(head + VDI_OFF_UUID_PMODIFY, p->head + VDI_OFF_UUID_MODIFY, 16);
    }
    char *name = strdup(backing);
    if (!name)
        return VERR_NO_MEMORY;
    unsigned first = VDI_OFF_COMMENT, end = VDI_OFF_UUID_PMODIFY + 16;
    int rc = blk_file_write(img, first, head + first, end - first);
    if (rc < 0) {
        free(name);
        return rc;
    }
    memcpy(s->head, head, sizeof(head));
    free(img->backing_name);
    img->backing_name = name;
    img->backing_format = backing_img->ops->format;
    return 0;
}

/* ---- Growing ----------------------------------------------------------------------------------- */

/*
 * Makes room for a map of new_blocks entries: the data blocks in the first k slots
 * move into free slots above them (each copy synced before its entry changes), the
 * new map is written where they were, and one header write switches to map offset =
 * the old data offset, data offset + k slots, every slot number - k.
 */
static int vdi_map_relocate(struct blk_image *img, uint32_t new_blocks)
{
    struct vdi *s = img->priv;
    uint64_t map_bytes = ((uint64_t)new_blocks * 4 + 511) & ~511ull;
    uint64_t k64 = (map_bytes + s->stride - 1) / s->stride;
    uint64_t new_data_off = s->data_off + k64 * s->stride;
    if (new_data_off > UINT32_MAX) {
        LOG_ERR("%s: the block map cannot grow to %u entries: the data area would have to start past 4 GiB "
                "(convert the image instead)", img->path, new_blocks);
        return VERR_NOT_SUPPORTED;
    }
    uint32_t k = (uint32_t)k64;
    uint8_t *buf;
    int rc = vdi_buf_get(s, &buf);
    if (rc)
        return rc;
    /* 1. Data blocks in slots below k move to free slots at or above k (below the block count). */
    uint32_t free_slot = k, moved = 0;
    for (uint32_t idx = 0; rc == 0 && idx < s->blocks; idx++) {
        uint32_t e = s->map[idx];
        if (!vdi_is_slot(e) || e >= k)
            continue;
        while (free_slot < s->blocks && vdi_used_get(s, free_slot))
            free_slot++;
        if (free_slot >= s->blocks) {
            LOG_ERR("%s: the block map cannot grow to %u entries: every data block is in use, so none can make "
                    "room for it (convert the image instead)", img->path, new_blocks);
            return VERR_NOT_SUPPORTED;
        }
        rc = blk_file_read(img, vdi_slot_pos(s, e), buf, s->stride);
        if (rc == 0)
            rc = blk_file_write(img, vdi_slot_pos(s, free_slot), buf, s->stride);
        if (rc == 0)
            rc = blk_file_sync(img);
        if (rc == 0)
            rc = vdi_map_store(img, idx, free_slot);
        if (rc == 0 && free_slot >= s->next_slot)
            s->next_slot = free_slot + 1;
        if (rc == 0 && s->allocated < s->next_slot)
            rc = vdi_set_allocated(img, s->next_slot);
        moved++;
    }
    /* 2. The new map, renumbered, into the first k slots (no entry uses them now). */
    uint8_t *map = rc == 0 ? calloc(1, map_bytes) : NULL;
    if (rc == 0 && !map)
        rc = VERR_NO_MEMORY;
    for (uint32_t idx = 0; rc == 0 && idx < new_blocks; idx++) {
        uint32_t e = idx < s->blocks ? s->map[idx] : VDI_MAP_FREE;
        blk_put_le32(map + 4ull * idx, vdi_is_slot(e) ? e - k : e);
    }
    if (rc == 0)
        rc = blk_file_write(img, s->data_off, map, (size_t)map_bytes);
    free(map);
    if (rc == 0)
        rc = blk_file_sync(img);
    if (rc)
        return rc;
    /* 3. The switch: map and data offsets and the count share one header write. */
    uint32_t new_alloc = s->next_slot > k ? s->next_slot - k : 0;
    uint8_t save[VDI_OFF_ALLOCATED + 4 - VDI_OFF_MAP];
    memcpy(save, s->head + VDI_OFF_MAP, sizeof(save));
    blk_put_le32(s->head + VDI_OFF_MAP, s->data_off);
    blk_put_le32(s->head + VDI_OFF_DATA, (uint32_t)new_data_off);
    blk_put_le32(s->head + VDI_OFF_ALLOCATED, new_alloc);
    rc = vdi_head_write(img, VDI_OFF_MAP, sizeof(save));
    if (rc == 0)
        rc = blk_file_sync(img);
    if (rc) {
        memcpy(s->head + VDI_OFF_MAP, save, sizeof(save));
        return rc;
    }
    s->map_off = s->data_off;
    s->data_off = (uint32_t)new_data_off;
    s->allocated = new_alloc;
    s->next_slot = new_alloc;
    memset(s->used, 0, ((size_t)s->blocks + 63) / 64 * 8);
    for (uint32_t idx = 0; idx < s->blocks; idx++) {
        if (vdi_is_slot(s->map[idx])) {
            s->map[idx] -= k;
            vdi_used_set(s, s->map[idx], true);
        }
    }
    LOG_INFO("%s: block map moved to 0x%x for %u blocks (%u data blocks moved)", img->path, s->map_off,
             new_blocks, moved);
    return 0;
}

/* Grows to new_size_bytes when the map has room for the new entries between it and the data. */
static int vdi_grow_in_place(struct blk_image *img, uint64_t new_size_bytes)
{
    struct vdi *s = img->priv;
    uint32_t new_blocks = (uint32_t)((new_size_bytes + s->block_bytes - 1) >> s->block_shift);
    uint32_t old_blocks = s->blocks;
    /* The old last block's tail past the disk's end becomes disk: make it read as zeroes. */
    uint64_t old_end = (uint64_t)old_blocks << s->block_shift;
    int rc = 0;
    if (s->disk_bytes < old_end)
        rc = vdi_write_zero_bytes(img, s->disk_bytes,
                                  (new_size_bytes < old_end ? new_size_bytes : old_end) - s->disk_bytes);
    if (rc)
        return rc;
    /* New blocks: data first (fixed), then map entries, then the header's sizes and count. */
    uint32_t add = new_blocks - old_blocks;
    bool fixed = s->type == VDI_TYPE_FIXED;
    uint32_t slot0 = s->next_slot;
    uint32_t entry = vdi_is_diff(s) ? VDI_MAP_ZERO : VDI_MAP_FREE;
    if (add && fixed)
        rc = vdi_fd_preallocate(img->fd, vdi_slot_pos(s, slot0), (uint64_t)add * s->stride);
    if (rc == 0 && add)
        rc = vdi_fd_write_map(img->fd, s->map_off, old_blocks, add, fixed, slot0, entry);
    if (rc)
        return rc;
    uint8_t save[VDI_OFF_ALLOCATED + 4 - VDI_OFF_DISK_SIZE];
    memcpy(save, s->head + VDI_OFF_DISK_SIZE, sizeof(save));
    uint32_t new_alloc = fixed ? slot0 + add : s->allocated;
    blk_put_le64(s->head + VDI_OFF_DISK_SIZE, new_size_bytes);
    blk_put_le32(s->head + VDI_OFF_BLOCKS, new_blocks);
    blk_put_le32(s->head + VDI_OFF_ALLOCATED, new_alloc);
    rc = vdi_head_write(img, VDI_OFF_DISK_SIZE, sizeof(save));
    if (rc) {
        memcpy(s->head + VDI_OFF_DISK_SIZE, save, sizeof(save));
        return rc;
    }
    for (uint32_t i = 0; i < add; i++) {
        s->map[old_blocks + i] = fixed ? slot0 + i : entry;
        if (fixed)
            vdi_used_set(s, slot0 + i, true);
    }
    if (fixed)
        s->next_slot = slot0 + add;
    s->allocated = new_alloc;
    s->blocks = new_blocks;
    s->disk_bytes = new_size_bytes;
    img->size_bytes = new_size_bytes;
    return 0;
}

static int vdi_resize(struct blk_image *img, uint64_t new_size_bytes)
{
    struct vdi *s = img->priv;
    if (new_size_bytes < s->disk_bytes) {
        LOG_ERR("%s: a VDI image cannot shrink (from %llu to %llu bytes)", img->path,
                (unsigned long long)s->disk_bytes, (unsigned long long)new_size_bytes);
        return VERR_NOT_SUPPORTED;
    }
    if (new_size_bytes == s->disk_bytes)
        return 0;
    uint64_t nb = (new_size_bytes + s->block_bytes - 1) >> s->block_shift;
    if (new_size_bytes > BLK_MAX_SIZE_BYTES || nb > VDI_MAX_BLOCKS) {
        LOG_ERR("%s: %llu bytes is more than this VDI image can hold", img->path,
                (unsigned long long)new_size_bytes);
        return VERR_TOO_LARGE;
    }
    uint32_t new_blocks = (uint32_t)nb;
    uint32_t *map = realloc(s->map, (size_t)new_blocks * 4);
    if (!map)
        return VERR_NO_MEMORY;
    s->map = map;
    uint64_t *used = realloc(s->used, ((size_t)new_blocks + 63) / 64 * 8);
    if (!used)
        return VERR_NO_MEMORY;
    size_t old_words = ((size_t)s->blocks + 63) / 64, new_words = ((size_t)new_blocks + 63) / 64;
    memset(used + old_words, 0, (new_words - old_words) * 8);
    s->used = used;
    int rc = vdi_stamp_modified(img);
    if (rc == 0 && s->map_off + (uint64_t)new_blocks * 4 > s->data_off) {
        /* First use the map's own room (its padding), which also gives the move more free blocks. */
        uint64_t room = (s->data_off - s->map_off) / 4;
        if (room > s->blocks && s->type != VDI_TYPE_FIXED)
            rc = vdi_grow_in_place(img, room << s->block_shift);
        if (rc == 0)
            rc = vdi_map_relocate(img, new_blocks);
    }
    return rc ? rc : vdi_grow_in_place(img, new_size_bytes);
}

/* ---- Checking ------------------------------------------------------------------------------------ */

/* Moves the last data blocks into the holes below them, one synced copy at a time; returns the moves. */
static int vdi_compact(struct blk_image *img, uint32_t slot_end, unsigned *moves)
{
    struct vdi *s = img->priv;
    uint32_t *owner = malloc(((size_t)slot_end + 1) * 4);
    uint8_t *buf;
    int rc = owner ? vdi_buf_get(s, &buf) : VERR_NO_MEMORY;
    if (rc) {
        free(owner);
        return rc;
    }
    for (uint32_t idx = 0; idx < s->blocks; idx++)
        if (vdi_is_slot(s->map[idx]))
            owner[s->map[idx]] = idx;
    uint32_t lo = 0, hi = slot_end;
    for (;;) {
        while (lo < hi && vdi_used_get(s, lo))
            lo++;
        while (hi > lo && !vdi_used_get(s, hi - 1))
            hi--;
        if (lo + 1 >= hi)
            break;
        uint32_t from = hi - 1, idx = owner[from];
        rc = blk_file_read(img, vdi_slot_pos(s, from), buf, s->stride);
        if (rc == 0)
            rc = blk_file_write(img, vdi_slot_pos(s, lo), buf, s->stride);
        if (rc == 0)
            rc = blk_file_sync(img);
        if (rc == 0)
            rc = vdi_map_store(img, idx, lo);
        if (rc)
            break;
        owner[lo] = idx;
        ++*moves;
    }
    free(owner);
    return rc;
}

static int vdi_check(struct blk_image *img, bool repair, struct blk_check_result *res)
{
    struct vdi *s = img->priv;
    uint64_t file_bytes;
    int rc = blk_file_size(img, &file_bytes);
    if (rc)
        return rc;
    uint64_t *seen = calloc(((size_t)s->blocks + 64) / 64, 8);
    if (!seen)
        return VERR_NO_MEMORY;
    uint32_t used = 0, used_end = 0;
    unsigned dups = 0;
    for (uint32_t idx = 0; idx < s->blocks; idx++) {
        uint32_t e = s->map[idx];
        if (!vdi_is_slot(e))
            continue;
        if (seen[e / 64] >> (e % 64) & 1) {
            blk_check_problem(res, false, "block map entry %u points to data block %u, which an earlier entry also uses",
                              idx, e);
            dups++;
            continue;
        }
        seen[e / 64] |= 1ull << (e % 64);
        used++;
        if (e >= used_end)
            used_end = e + 1;
    }
    free(seen);
    /* Found problems are reported, or with repair fixed and counted as repaired (duplicates: never). */
    bool fix = repair && !img->readonly && dups == 0;
    uint32_t slot_end = s->allocated > used_end ? s->allocated : used_end;
    uint64_t data_end = vdi_slot_pos(s, slot_end);
    bool low_count = s->allocated < used_end;
    bool tail = file_bytes > data_end;
    unsigned holes = 0;
    for (uint32_t slot = 0; slot < slot_end; slot++)
        holes += !vdi_used_get(s, slot);
    if (!fix) {
        if (low_count)
            blk_check_problem(res, false, "allocated block count %u is below the %u data blocks in use",
                              s->allocated, used_end);
        for (uint32_t slot = 0; slot < slot_end; slot++)
            if (!vdi_used_get(s, slot))
                blk_check_problem(res, true, "data block %u is used by no block map entry", slot);
        if (tail)
            blk_check_problem(res, true, "%llu bytes after the last data block",
                              (unsigned long long)(file_bytes - data_end));
        return 0;
    }
    /* Repair: compact, then the count, then drop what lies past the last block. */
    unsigned moves = 0;
    rc = vdi_compact(img, slot_end, &moves);
    if (rc == 0 && s->allocated != used)
        rc = vdi_set_allocated(img, used);
    if (rc == 0)
        rc = blk_file_sync(img);
    uint64_t new_end = vdi_slot_pos(s, used);
    if (rc == 0 && file_bytes > new_end && file_bytes > s->data_off)
        rc = blk_file_truncate(img, new_end > s->data_off ? new_end : s->data_off);
    if (rc)
        return rc;
    s->next_slot = used;
    res->repaired += holes + low_count + tail;
    if (holes || low_count || tail)
        LOG_INFO("%s: repaired: %u unused data blocks (%u moved), allocated count %u, file %llu bytes", img->path,
                 holes, moves, used, (unsigned long long)(file_bytes > new_end ? new_end : file_bytes));
    return 0;
}

const struct blk_format_ops g_blk_format_vdi = {
    .format = BLK_FMT_VDI,
    .name = "vdi",
    .probe = vdi_probe,
    .open = vdi_open,
    .backing_opened = vdi_backing_opened,
    .set_backing = vdi_set_backing,
    .close = vdi_close,
    .read = vdi_read,
    .write = vdi_write,
    .discard = vdi_discard,
    .write_zeroes = vdi_write_zeroes,
    .block_status = vdi_block_status,
    .create = vdi_create,
    .resize = vdi_resize,
    .check = vdi_check,
    .info = vdi_info,
};
