/* virtio-blk.c - the virtio block device (virtio 1.2 section 5.2) over the modern virtio-pci transport, on one drive. */

/*
 * Design: one request queue (no MQ), up to 256 entries.  A notification pops every
 * available chain; each becomes a struct vblk_req that is either answered at once
 * (GET_ID, a malformed or unsupported request) or handed to the drive layer with a
 * scatter/gather list made straight from the chain's data segments, so several
 * requests are in flight and complete in any order.  done() (event loop, VM lock
 * held) writes the status byte, returns the chain on the used ring and lets the
 * queue decide whether to interrupt.  DISCARD and WRITE_ZEROES carry up to
 * VBLK_DWZ_SEG_MAX ranges, all checked before the first is submitted; they run one
 * after another.
 *
 * A request is framed by bytes, not descriptors (section 5.2.6.4: no assumption on the
 * layout): the first 16 device-readable bytes are the header, the last device-writable
 * byte is the status, and the data lies in between.  A chain too short to hold a
 * header and a status byte cannot be answered; the device then needs a reset.
 *
 * Every request in flight holds a pool slot, and the pool never grows beyond the
 * queue size: a driver that re-posts a head it has not got back yet cannot make the
 * device allocate without bound.  When all slots are busy the rest stays in the ring
 * until a completion frees one.
 *
 * Reset (by the driver or the system), saved state and destroy drain the drive
 * first; during a reset or destroy the completions drop their chains instead of
 * writing to a ring the driver is tearing down.
 */
#include <stdlib.h>
#include <string.h>

#include "vireo/devices.h"
#include "vireo/pci.h"
#include "vireo/storage.h"
#include "vireo/virtio.h"

#define LOG_COMPONENT "virtio-blk"

#define VBLK_SSM_VERSION 1
#define VBLK_QUEUE_SIZE  256
#define VBLK_SECTOR      512u
#define VBLK_HDR_BYTES   16
#define VBLK_ID_BYTES    20
/* Data segments per request: the chain's limit less the header and the status byte. */
#define VBLK_SEG_MAX  (VIRTQ_SEG_MAX - 2)
#define VBLK_SIZE_MAX (256u << 10)
/* The most data one request moves (within the drive layer's transfer limit). */
#define VBLK_MAX_TRANSFER ((uint64_t)VBLK_SEG_MAX * VBLK_SIZE_MAX)
/* Discard and write zeroes limits offered in the configuration. */
#define VBLK_DWZ_SEG_MAX     16
#define VBLK_DWZ_SECTORS_MAX (1u << 21) /* 1 GiB per range */
#define VBLK_DISCARD_ALIGN   8          /* sectors: 4 KiB */
#define VBLK_DWZ_SEG_BYTES   16
#define VBLK_DWZ_F_UNMAP     0x1u

/* Feature bits (section 5.2.3). */
#define VBLK_F_SIZE_MAX     1
#define VBLK_F_SEG_MAX      2
#define VBLK_F_RO           5
#define VBLK_F_BLK_SIZE     6
#define VBLK_F_FLUSH        9
#define VBLK_F_DISCARD      13
#define VBLK_F_WRITE_ZEROES 14

/* Request types and status values (section 5.2.6). */
#define VBLK_T_IN           0
#define VBLK_T_OUT          1
#define VBLK_T_FLUSH        4
#define VBLK_T_GET_ID       8
#define VBLK_T_DISCARD      11
#define VBLK_T_WRITE_ZEROES 13
#define VBLK_S_OK     0
#define VBLK_S_IOERR  1
#define VBLK_S_UNSUPP 2

/* struct virtio_blk_config (section 5.2.4), up to and including write_zeroes_may_unmap. */
#define VBLK_CFG_CAPACITY           0
#define VBLK_CFG_SIZE_MAX           8
#define VBLK_CFG_SEG_MAX            12
#define VBLK_CFG_BLK_SIZE           20
#define VBLK_CFG_NUM_QUEUES         34
#define VBLK_CFG_MAX_DISCARD_SECT   36
#define VBLK_CFG_MAX_DISCARD_SEG    40
#define VBLK_CFG_DISCARD_ALIGN      44
#define VBLK_CFG_MAX_WZ_SECT        48
#define VBLK_CFG_MAX_WZ_SEG         52
#define VBLK_CFG_WZ_MAY_UNMAP       56
#define VBLK_CFG_BYTES              60

struct vblk_range {
    uint64_t sector;
    uint32_t sectors;
};

struct vblk;

struct vblk_req {
    struct vblk *s;
    struct vblk_req *next_free;
    uint32_t type;
    uint64_t data_bytes; /* what the request moves (reads: bytes written into the chain before the status) */
    struct drive_req dreq;
    unsigned range_count, range_next;
    struct vblk_range ranges[VBLK_DWZ_SEG_MAX];
    struct drive_sg sg[VIRTQ_SEG_MAX];
    struct virtq_elem elem;
};

struct vblk {
    struct pdm_dev *dev;
    struct vm *vm;
    const char *name;
    struct drive *drive;
    struct virtio_dev *vdev;
    uint64_t capacity; /* 512-byte sectors */
    bool readonly;
    /* Request slots: allocated on first use, at most VBLK_QUEUE_SIZE. */
    struct vblk_req *slots[VBLK_QUEUE_SIZE];
    unsigned slot_count;
    struct vblk_req *free_list;
    unsigned inflight;
    bool processing, again; /* the pop loop runs once at a time */
    bool stalled;           /* the pop loop stopped with every slot busy */
    bool dropping;          /* reset or destroy: completions leave the ring alone */
    bool quiet;             /* draining: completions do not resume the pop loop */
};

/* ---- request slots ------------------------------------------------------------------ */

static struct vblk_req *req_get(struct vblk *s)
{
    struct vblk_req *r = s->free_list;
    if (r) {
        s->free_list = r->next_free;
        return r;
    }
    if (s->slot_count == VBLK_QUEUE_SIZE)
        return NULL;
    r = malloc(sizeof(*r));
    if (!r)
        return NULL;
    r->s = s;
    s->slots[s->slot_count++] = r;
    return r;
}

static void req_put(struct vblk *s, struct vblk_req *r)
{
    r->next_free = s->free_list;
    s->free_list = r;
}

/* ---- completion ------------------------------------------------------------------------ */

static void vblk_process(struct vblk *s);

/* Writes the status byte, returns the chain with the bytes written and frees the slot. */
static void req_complete(struct vblk *s, struct vblk_req *r, uint8_t status)
{
    if (!s->dropping) {
        struct virtq *q = virtio_dev_queue(s->vdev, 0);
        uint64_t data = status == VBLK_S_OK ? r->data_bytes : 0;
        virtq_elem_write(s->vm, &r->elem, r->elem.in_bytes - 1, &status, 1);
        virtq_push(q, r->elem.head, (uint32_t)(data + 1));
        virtq_notify(q);
    }
    s->inflight--;
    req_put(s, r);
}

static int range_submit(struct vblk *s, struct vblk_req *r);

static void req_done(struct drive_req *dreq, int status)
{
    struct vblk_req *r = dreq->opaque;
    struct vblk *s = r->s;
    if (status == 0 && r->range_next < r->range_count) {
        int rc = range_submit(s, r);
        if (rc == 0)
            return;
        status = rc;
    }
    req_complete(s, r, status == 0 ? VBLK_S_OK : VBLK_S_IOERR);
    if (s->stalled && !s->quiet)
        vblk_process(s);
}

/* ---- requests ---------------------------------------------------------------------------- */

/* The drive's scatter/gather list for [skip, skip + len) of the chain's segments. */
static unsigned sg_slice(const struct virtq_seg *seg, unsigned count, uint64_t skip, uint64_t len,
                         struct drive_sg *out)
{
    unsigned n = 0;
    for (unsigned i = 0; i < count && len > 0; i++) {
        if (skip >= seg[i].len) {
            skip -= seg[i].len;
            continue;
        }
        uint64_t piece = RT_MIN((uint64_t)seg[i].len - skip, len);
        out[n].gpa = seg[i].gpa + skip;
        out[n].len = piece;
        n++;
        len -= piece;
        skip = 0;
    }
    return n;
}

/* Whether [sector, sector + bytes / 512) lies on the disk. */
static bool range_ok(const struct vblk *s, uint64_t sector, uint64_t bytes)
{
    return sector <= s->capacity && bytes / VBLK_SECTOR <= s->capacity - sector;
}

/* IN and OUT (section 5.2.6.4): whole sectors on the disk, through the drive. */
static uint8_t req_rw(struct vblk *s, struct vblk_req *r, uint64_t sector)
{
    struct virtq_elem *e = &r->elem;
    bool in = r->type == VBLK_T_IN;
    uint64_t len = in ? e->in_bytes - 1 : e->out_bytes - VBLK_HDR_BYTES;
    if (len % VBLK_SECTOR || len > VBLK_MAX_TRANSFER || !range_ok(s, sector, len))
        return VBLK_S_IOERR;
    if (!in && s->readonly)
        return VBLK_S_IOERR; /* section 5.2.6.4: a write to a read-only device fails and writes nothing */
    r->data_bytes = in ? len : 0;
    if (len == 0)
        return VBLK_S_OK;
    unsigned n = in ? sg_slice(e->seg + e->out_count, e->in_count, 0, len, r->sg)
                    : sg_slice(e->seg, e->out_count, VBLK_HDR_BYTES, len, r->sg);
    r->dreq = (struct drive_req){
        .op = in ? BLK_OP_READ : BLK_OP_WRITE,
        .offset_bytes = sector * VBLK_SECTOR,
        .len_bytes = len,
        .sg = r->sg,
        .sg_count = n,
        .done = req_done,
        .opaque = r,
    };
    return drive_submit(s->drive, &r->dreq) == 0 ? UINT8_MAX : VBLK_S_IOERR;
}

static uint8_t req_flush(struct vblk *s, struct vblk_req *r)
{
    r->dreq = (struct drive_req){.op = BLK_OP_FLUSH, .done = req_done, .opaque = r};
    return drive_submit(s->drive, &r->dreq) == 0 ? UINT8_MAX : VBLK_S_IOERR;
}

/* GET_ID: the drive's serial, NUL-padded, not terminated when it fills the 20 bytes. */
static uint8_t req_get_id(struct vblk *s, struct vblk_req *r)
{
    char id[VBLK_ID_BYTES];
    const char *serial = drive_serial(s->drive);
    size_t n = strnlen(serial, VBLK_ID_BYTES);
    while (n > 0 && serial[n - 1] == ' ')
        n--;
    memset(id, 0, sizeof(id));
    memcpy(id, serial, n);
    uint64_t room = r->elem.in_bytes - 1;
    size_t len = (size_t)RT_MIN(room, (uint64_t)VBLK_ID_BYTES);
    r->data_bytes = virtq_elem_write(s->vm, &r->elem, 0, id, len);
    return VBLK_S_OK;
}

static int range_submit(struct vblk *s, struct vblk_req *r)
{
    /* Ranges of no sectors were dropped when the request was read. */
    const struct vblk_range *g = &r->ranges[r->range_next++];
    r->dreq = (struct drive_req){
        .op = r->type == VBLK_T_DISCARD ? BLK_OP_DISCARD : BLK_OP_WRITE_ZEROES,
        .offset_bytes = g->sector * VBLK_SECTOR,
        .len_bytes = (uint64_t)g->sectors * VBLK_SECTOR,
        .done = req_done,
        .opaque = r,
    };
    return drive_submit(s->drive, &r->dreq);
}

/* DISCARD and WRITE_ZEROES (section 5.2.6.2): every range is checked before any is carried out. */
static uint8_t req_dwz(struct vblk *s, struct vblk_req *r)
{
    bool discard = r->type == VBLK_T_DISCARD;
    uint64_t len = r->elem.out_bytes - VBLK_HDR_BYTES;
    if (len == 0 || len % VBLK_DWZ_SEG_BYTES)
        return VBLK_S_IOERR;
    if (len / VBLK_DWZ_SEG_BYTES > VBLK_DWZ_SEG_MAX)
        return VBLK_S_UNSUPP;
    unsigned count = (unsigned)(len / VBLK_DWZ_SEG_BYTES);
    r->range_count = r->range_next = 0;
    for (unsigned i = 0; i < count; i++) {
        uint8_t raw[VBLK_DWZ_SEG_BYTES];
        virtq_elem_read(s->vm, &r->elem, VBLK_HDR_BYTES + (uint64_t)i * VBLK_DWZ_SEG_BYTES, raw, sizeof(raw));
        uint64_t sector;
        uint32_t sectors, flags;
        memcpy(&sector, raw, 8);
        memcpy(&sectors, raw + 8, 4);
        memcpy(&flags, raw + 12, 4);
        /* Unknown flags, and unmap on a discard, are unsupported; write zeroes may ignore unmap. */
        if ((flags & ~VBLK_DWZ_F_UNMAP) || (discard && (flags & VBLK_DWZ_F_UNMAP)))
            return VBLK_S_UNSUPP;
        if (sectors > VBLK_DWZ_SECTORS_MAX || !range_ok(s, sector, (uint64_t)sectors * VBLK_SECTOR))
            return VBLK_S_IOERR;
        if (sectors == 0)
            continue;
        r->ranges[r->range_count++] = (struct vblk_range){.sector = sector, .sectors = sectors};
    }
    if (s->readonly)
        return VBLK_S_IOERR;
    if (r->range_count == 0)
        return VBLK_S_OK;
    return range_submit(s, r) == 0 ? UINT8_MAX : VBLK_S_IOERR;
}

/* Starts one popped request: answers it now, or leaves it with the drive (UINT8_MAX). */
static void req_start(struct vblk *s, struct vblk_req *r)
{
    struct virtq_elem *e = &r->elem;
    if (e->out_bytes < VBLK_HDR_BYTES || e->in_bytes < 1) {
        virtio_dev_error(s->vdev, "request without a %u-byte header or a status byte (%llu readable, %llu writable)",
                         VBLK_HDR_BYTES, (unsigned long long)e->out_bytes,
                         (unsigned long long)e->in_bytes);
        s->inflight--;
        req_put(s, r);
        return;
    }
    uint8_t hdr[VBLK_HDR_BYTES];
    virtq_elem_read(s->vm, e, 0, hdr, sizeof(hdr));
    uint64_t sector;
    memcpy(&r->type, hdr, 4);
    memcpy(&sector, hdr + 8, 8);
    r->data_bytes = 0;
    r->range_count = r->range_next = 0;
    uint64_t features = virtio_dev_features(s->vdev);
    uint8_t status;
    switch (r->type) {
    case VBLK_T_IN:
    case VBLK_T_OUT:
        status = req_rw(s, r, sector);
        break;
    case VBLK_T_FLUSH:
        status = features & VIRTIO_BIT(VBLK_F_FLUSH) ? req_flush(s, r) : VBLK_S_UNSUPP;
        break;
    case VBLK_T_GET_ID:
        status = req_get_id(s, r);
        break;
    case VBLK_T_DISCARD:
    case VBLK_T_WRITE_ZEROES: {
        unsigned bit = r->type == VBLK_T_DISCARD ? VBLK_F_DISCARD : VBLK_F_WRITE_ZEROES;
        status = features & VIRTIO_BIT(bit) ? req_dwz(s, r) : VBLK_S_UNSUPP;
        break;
    }
    default:
        status = VBLK_S_UNSUPP;
        break;
    }
    if (status != UINT8_MAX)
        req_complete(s, r, status);
}

/* Takes every available request while slots are free. */
static void vblk_process(struct vblk *s)
{
    if (s->processing) {
        s->again = true;
        return;
    }
    s->processing = true;
    struct virtq *q = virtio_dev_queue(s->vdev, 0);
    do {
        s->again = false;
        s->stalled = false;
        for (;;) {
            struct vblk_req *r = req_get(s);
            if (!r) {
                s->stalled = true;
                break;
            }
            if (virtq_pop(q, &r->elem) != 1) {
                req_put(s, r);
                break;
            }
            s->inflight++;
            req_start(s, r);
        }
    } while (s->again);
    s->processing = false;
}

/* ---- transport callbacks -------------------------------------------------------------------- */

static void put_le(uint8_t *p, uint64_t value, unsigned bytes)
{
    for (unsigned i = 0; i < bytes; i++)
        p[i] = (uint8_t)(value >> (8 * i));
}

static uint32_t vblk_config_read(void *opaque, unsigned offset, unsigned size)
{
    struct vblk *s = opaque;
    uint8_t cfg[VBLK_CFG_BYTES];
    memset(cfg, 0, sizeof(cfg));
    put_le(cfg + VBLK_CFG_CAPACITY, s->capacity, 8);
    put_le(cfg + VBLK_CFG_SIZE_MAX, VBLK_SIZE_MAX, 4);
    put_le(cfg + VBLK_CFG_SEG_MAX, VBLK_SEG_MAX, 4);
    put_le(cfg + VBLK_CFG_BLK_SIZE, VBLK_SECTOR, 4);
    put_le(cfg + VBLK_CFG_NUM_QUEUES, 1, 2);
    put_le(cfg + VBLK_CFG_MAX_DISCARD_SECT, VBLK_DWZ_SECTORS_MAX, 4);
    put_le(cfg + VBLK_CFG_MAX_DISCARD_SEG, VBLK_DWZ_SEG_MAX, 4);
    put_le(cfg + VBLK_CFG_DISCARD_ALIGN, VBLK_DISCARD_ALIGN, 4);
    put_le(cfg + VBLK_CFG_MAX_WZ_SECT, VBLK_DWZ_SECTORS_MAX, 4);
    put_le(cfg + VBLK_CFG_MAX_WZ_SEG, VBLK_DWZ_SEG_MAX, 4);
    cfg[VBLK_CFG_WZ_MAY_UNMAP] = 0;
    uint32_t value = 0;
    for (unsigned i = 0; i < size && offset + i < VBLK_CFG_BYTES; i++)
        value |= (uint32_t)cfg[offset + i] << (8 * i);
    return value;
}

static void vblk_queue_notify(void *opaque, unsigned index)
{
    if (index == 0)
        vblk_process(opaque);
}

/*
 * Waits for every request the drive holds; with drop their chains are not returned.
 * No new request starts meanwhile (completions do not resume the pop loop), so the
 * count only falls; it stops falling only for a completion that is running further
 * up this stack (a bounce-buffer copy into the device's own registers reset it), and
 * waiting for that one would never end.
 */
static void vblk_drain(struct vblk *s, bool drop)
{
    bool was_dropping = s->dropping, was_quiet = s->quiet;
    s->dropping = drop;
    s->quiet = true;
    for (unsigned before; s->drive && (before = drive_inflight(s->drive)) != 0;) {
        drive_drain(s->drive);
        if (drive_inflight(s->drive) >= before)
            break;
    }
    s->dropping = was_dropping;
    s->quiet = was_quiet;
}

static void vblk_virtio_reset(void *opaque)
{
    vblk_drain(opaque, true);
}

static const struct virtio_dev_ops g_vblk_ops = {
    .config_read = vblk_config_read,
    .queue_notify = vblk_queue_notify,
    .reset = vblk_virtio_reset,
};

/* ---- device lifecycle ----------------------------------------------------------------------- */

static void vblk_reset(struct pdm_dev *dev)
{
    struct vblk *s = pdm_dev_state(dev);
    vblk_drain(s, true);
    virtio_pci_reset(s->vdev);
}

static int vblk_construct(struct pdm_dev *dev, const struct pdm_cfg *cfg)
{
    static const char *const own_keys[] = {PCI_CFG_LOCATION_KEYS, NULL};
    static const char *const prefixes[] = {"drive"};
    struct vblk *s = pdm_dev_state(dev);
    s->dev = dev;
    s->vm = pdm_dev_vm(dev);
    s->name = pdm_dev_name(dev);
    int rc = drive_cfg_validate(cfg, s->name, own_keys, prefixes, 1);
    if (rc)
        return rc;
    struct pci_bus *bus;
    unsigned devfn;
    rc = pci_cfg_get_location(s->vm, cfg, s->name, -1, &bus, &devfn);
    if (rc)
        return rc;
    rc = drive_create_from_cfg(s->vm, cfg, "drive", s->name, &s->drive);
    if (rc)
        return rc;
    if (!s->drive || drive_kind(s->drive) != DRIVE_DISK) {
        LOG_ERR("%s: virtio-blk needs a disk image (drive.path=FILE; no removable media, use drive.readonly=on "
                "for a read-only disk)",
                s->name);
        return VERR_CFG_BAD_VALUE;
    }
    s->capacity = drive_size_bytes(s->drive) / VBLK_SECTOR;
    s->readonly = drive_is_readonly(s->drive);
    uint64_t features = VIRTIO_BIT(VBLK_F_SIZE_MAX) | VIRTIO_BIT(VBLK_F_SEG_MAX) | VIRTIO_BIT(VBLK_F_BLK_SIZE) |
                        VIRTIO_BIT(VBLK_F_FLUSH);
    if (s->readonly)
        features |= VIRTIO_BIT(VBLK_F_RO);
    else
        features |= VIRTIO_BIT(VBLK_F_DISCARD) | VIRTIO_BIT(VBLK_F_WRITE_ZEROES);
    const struct virtio_params params = {
        .name = s->name,
        .device_id = VIRTIO_ID_BLOCK,
        .class_code = 0x010000, /* mass storage, SCSI sub-class as virtio-blk has always shown */
        .features = features,
        .num_queues = 1,
        .queue_size_max = VBLK_QUEUE_SIZE,
        .config_len = VBLK_CFG_BYTES,
        .ops = &g_vblk_ops,
        .opaque = s,
    };
    rc = virtio_pci_create(s->vm, bus, devfn, &params, &s->vdev);
    if (rc)
        return rc;
    vblk_reset(dev);
    return 0;
}

static void vblk_destroy(struct pdm_dev *dev)
{
    struct vblk *s = pdm_dev_state(dev);
    vblk_drain(s, true);
    virtio_pci_destroy(s->vdev);
    s->vdev = NULL;
    drive_destroy(s->drive);
    s->drive = NULL;
    for (unsigned i = 0; i < s->slot_count; i++)
        free(s->slots[i]);
    s->slot_count = 0;
    s->free_list = NULL;
}

/* ---- saved state -------------------------------------------------------------------------- */

static int vblk_save(struct pdm_dev *dev, struct ssm *ssm)
{
    struct vblk *s = pdm_dev_state(dev);
    /* Requests in flight finish first, so every chain taken is back on the used ring. */
    vblk_drain(s, false);
    ssm_put_u64(ssm, s->capacity);
    virtio_pci_save(s->vdev, ssm);
    /* Chains left in the ring while the pool was full go out now. */
    if (s->stalled)
        vblk_process(s);
    return ssm_status(ssm);
}

static int vblk_load(struct pdm_dev *dev, struct ssm *ssm, uint32_t version)
{
    struct vblk *s = pdm_dev_state(dev);
    if (version != VBLK_SSM_VERSION)
        return VERR_SSM_VERSION;
    uint64_t capacity = 0;
    ssm_get_u64(ssm, &capacity);
    int rc = ssm_status(ssm);
    if (rc)
        return rc;
    if (capacity != s->capacity) {
        LOG_ERR("%s: saved state is for a disk of %llu sectors, the drive has %llu", s->name,
                (unsigned long long)capacity, (unsigned long long)s->capacity);
        return VERR_SSM_CORRUPT;
    }
    vblk_drain(s, true);
    rc = virtio_pci_load(s->vdev, ssm);
    if (rc)
        return rc;
    /*
     * The driver may have made chains available that the saved device had not taken
     * yet (its pool was full); it will not notify for them again.
     */
    vblk_process(s);
    return 0;
}

const struct pdm_dev_desc g_dev_virtio_blk = {
    .name = "virtio-blk",
    .description = "virtio block device (modern virtio-pci)",
    .state_size = sizeof(struct vblk),
    .ssm_version = VBLK_SSM_VERSION,
    .construct = vblk_construct,
    .reset = vblk_reset,
    .save = vblk_save,
    .load = vblk_load,
    .destroy = vblk_destroy,
};
