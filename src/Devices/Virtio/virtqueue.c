/* virtqueue.c - split virtqueues (virtio 1.2 section 2.7): descriptor chains, indirect tables, used ring and notification suppression. */

/*
 * Design: the driver owns the descriptor table and the available ring, the device
 * the used ring; all three live in guest RAM and every value read from them is
 * untrusted.  A chain is walked with bounds on every index, on its length (no more
 * descriptors than the table it lives in holds, which also ends loops) and on the
 * segments it yields (VIRTQ_SEG_MAX); anything else breaks the queue (the transport
 * then asks the driver for a reset) rather than being guessed at.
 *
 * Ring structures are accessed only where they are RAM (mem_gpa_to_hva): a ring
 * placed over MMIO would otherwise let a used-ring write land in the device's own
 * registers from inside its queue processing.  Buffers the device copies to or from
 * (virtq_elem_read/write) follow the DMA rule instead: non-RAM reads as all ones and
 * swallows writes.
 *
 * Memory ordering (section 2.7.13): the device reads avail->idx before the ring
 * entries it covers (acquire), writes used entries before used->idx (release), and a
 * full fence separates publishing its own index from reading the driver's
 * suppression fields, so neither side misses the other's update.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "virtio-internal.h"

#define LOG_COMPONENT "virtio"

/* Guest memory is accessed in pieces that never cross a 4 KiB page (one span each). */
#define VQ_PAGE 4096u

/* The rings are little-endian (section 2.4); so is every host Vireo runs on. */
RT_STATIC_ASSERT(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__);

/* ---- guest memory -------------------------------------------------------------- */

static size_t page_chunk(uint64_t gpa, size_t len)
{
    return (size_t)RT_MIN((uint64_t)len, VQ_PAGE - (gpa & (VQ_PAGE - 1)));
}

static bool range_ok(uint64_t gpa, uint64_t len)
{
    return len <= UINT64_MAX - gpa;
}

/* Copies guest RAM (or ROM) to buf; false when any byte of the range is not. */
static bool ram_read(struct vm *vm, uint64_t gpa, void *buf, size_t len)
{
    uint8_t *p = buf;
    if (!range_ok(gpa, len))
        return false;
    while (len > 0) {
        size_t n = page_chunk(gpa, len);
        const void *h = mem_gpa_to_hva(vm, gpa, n, false);
        if (!h)
            return false;
        memcpy(p, h, n);
        p += n, gpa += n, len -= n;
    }
    return true;
}

/* Copies buf into writable guest RAM; false (nothing more written) at the first piece that is not. */
static bool ram_write(struct vm *vm, uint64_t gpa, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    if (!range_ok(gpa, len))
        return false;
    while (len > 0) {
        size_t n = page_chunk(gpa, len);
        void *h = mem_gpa_to_hva(vm, gpa, n, true);
        if (!h)
            return false;
        memcpy(h, p, n);
        mem_notify_written(vm, gpa, n);
        p += n, gpa += n, len -= n;
    }
    return true;
}

/* Whether [gpa, gpa + len) is all RAM (writable when write is set). */
static bool ram_check(struct vm *vm, uint64_t gpa, uint64_t len, bool write)
{
    if (!range_ok(gpa, len))
        return false;
    while (len > 0) {
        size_t n = page_chunk(gpa, (size_t)RT_MIN(len, (uint64_t)VQ_PAGE));
        if (!mem_gpa_to_hva(vm, gpa, n, write))
            return false;
        gpa += n, len -= n;
    }
    return true;
}

/* A 16-bit ring field (2-byte aligned, so one piece), read in one access as the driver writes it. */
static bool ram_load16(struct vm *vm, uint64_t gpa, uint16_t *out)
{
    const uint16_t *h = mem_gpa_to_hva(vm, gpa, 2, false);
    if (!h || (gpa & 1))
        return false;
    *out = __atomic_load_n(h, __ATOMIC_RELAXED);
    return true;
}

static bool ram_store16(struct vm *vm, uint64_t gpa, uint16_t value)
{
    uint16_t *h = mem_gpa_to_hva(vm, gpa, 2, true);
    if (!h || (gpa & 1))
        return false;
    __atomic_store_n(h, value, __ATOMIC_RELAXED);
    mem_notify_written(vm, gpa, 2);
    return true;
}

/* DMA copy of one buffer piece: RAM directly, anything else all ones (reads) or nothing (writes). */
static void dma_copy(struct vm *vm, uint64_t gpa, void *buf, size_t len, bool to_guest)
{
    uint8_t *p = buf;
    while (len > 0) {
        size_t n = page_chunk(gpa, len);
        void *h = mem_gpa_to_hva(vm, gpa, n, to_guest);
        if (to_guest && h) {
            memcpy(h, p, n);
            mem_notify_written(vm, gpa, n);
        } else if (!to_guest) {
            if (h)
                memcpy(p, h, n);
            else
                memset(p, 0xff, n);
        }
        p += n, gpa += n, len -= n;
    }
}

/* ---- ring layout ----------------------------------------------------------------- */

static uint64_t avail_flags_gpa(const struct virtq *q) { return q->avail_gpa; }
static uint64_t avail_idx_gpa(const struct virtq *q) { return q->avail_gpa + 2; }
static uint64_t avail_ring_gpa(const struct virtq *q, uint16_t slot) { return q->avail_gpa + 4 + 2ull * slot; }
static uint64_t used_event_gpa(const struct virtq *q) { return q->avail_gpa + 4 + 2ull * q->size; }
static uint64_t used_idx_gpa(const struct virtq *q) { return q->used_gpa + 2; }
static uint64_t used_ring_gpa(const struct virtq *q, uint16_t slot)
{
    return q->used_gpa + 4 + (uint64_t)VIRTQ_USED_ELEM_BYTES * slot;
}
static uint64_t avail_event_gpa(const struct virtq *q)
{
    return q->used_gpa + 4 + (uint64_t)VIRTQ_USED_ELEM_BYTES * q->size;
}

static uint64_t desc_table_bytes(unsigned size) { return (uint64_t)VIRTQ_DESC_BYTES * size; }
static uint64_t avail_bytes(unsigned size) { return 6 + 2ull * size; }
static uint64_t used_bytes(unsigned size) { return 6 + (uint64_t)VIRTQ_USED_ELEM_BYTES * size; }

/* Breaks the queue: it stays stopped until the driver resets the device. */
static int RT_PRINTF(2, 3) vq_fail(struct virtq *q, const char *fmt, ...)
{
    char why[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    q->broken = true;
    if (q->host.error)
        q->host.error(q->host.opaque, q, why);
    return VERR_GUEST_FAULT;
}

/* ---- setup ----------------------------------------------------------------------------- */

void virtq_init(struct virtq *q, struct vm *vm, unsigned index, uint16_t size_max, const struct virtq_host *host)
{
    memset(q, 0, sizeof(*q));
    q->vm = vm;
    q->index = index;
    q->size_max = size_max;
    if (host)
        q->host = *host;
    virtq_reset(q);
}

void virtq_reset(struct virtq *q)
{
    q->size = q->size_max;
    q->enabled = false;
    q->desc_gpa = q->avail_gpa = q->used_gpa = 0;
    q->event_idx = q->indirect = false;
    q->running = false;
    q->last_avail_idx = q->used_idx = q->signalled_used = 0;
    q->signalled_used_valid = false;
    q->broken = false;
}

void virtq_set_features(struct virtq *q, uint64_t features)
{
    q->event_idx = (features & VIRTIO_BIT(VIRTIO_F_EVENT_IDX)) != 0;
    q->indirect = (features & VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC)) != 0;
}

static bool size_ok(unsigned size, unsigned size_max)
{
    return size != 0 && size <= size_max && (size & (size - 1)) == 0;
}

int virtq_enable(struct virtq *q)
{
    if (!size_ok(q->size, q->size_max))
        return vq_fail(q, "queue %u enabled with size %u (a power of two up to %u)", q->index, q->size,
                       q->size_max);
    if ((q->desc_gpa & (VIRTQ_DESC_ALIGN - 1)) || (q->avail_gpa & (VIRTQ_AVAIL_ALIGN - 1)) ||
        (q->used_gpa & (VIRTQ_USED_ALIGN - 1)))
        return vq_fail(q, "queue %u: misaligned ring (desc 0x%llx, driver 0x%llx, device 0x%llx)", q->index,
                       (unsigned long long)q->desc_gpa, (unsigned long long)q->avail_gpa,
                       (unsigned long long)q->used_gpa);
    if (!ram_check(q->vm, q->desc_gpa, desc_table_bytes(q->size), false) ||
        !ram_check(q->vm, q->avail_gpa, avail_bytes(q->size), false) ||
        !ram_check(q->vm, q->used_gpa, used_bytes(q->size), true))
        return vq_fail(q, "queue %u: ring outside guest RAM (desc 0x%llx, driver 0x%llx, device 0x%llx)", q->index,
                       (unsigned long long)q->desc_gpa, (unsigned long long)q->avail_gpa,
                       (unsigned long long)q->used_gpa);
    q->enabled = true;
    q->last_avail_idx = q->used_idx = q->signalled_used = 0;
    q->signalled_used_valid = false;
    return 0;
}

bool virtq_is_ready(const struct virtq *q)
{
    return q && q->enabled && q->running && !q->broken;
}

unsigned virtq_index(const struct virtq *q)
{
    return q->index;
}

unsigned virtq_size(const struct virtq *q)
{
    return q->enabled ? q->size : 0;
}

/* ---- taking chains ----------------------------------------------------------------------- */

struct vq_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

static bool desc_read(struct virtq *q, uint64_t table, unsigned idx, struct vq_desc *d)
{
    uint8_t raw[VIRTQ_DESC_BYTES];
    if (!ram_read(q->vm, table + (uint64_t)VIRTQ_DESC_BYTES * idx, raw, sizeof(raw)))
        return false;
    memcpy(&d->addr, raw, 8);
    memcpy(&d->len, raw + 8, 4);
    memcpy(&d->flags, raw + 12, 2);
    memcpy(&d->next, raw + 14, 2);
    return true;
}

/*
 * Walks the chain at head into elem (section 2.7.5).  An indirect descriptor ends
 * the direct part of the chain and continues in its table (section 2.7.5.3).
 */
static int vq_walk(struct virtq *q, uint16_t head, struct virtq_elem *elem)
{
    elem->head = head;
    elem->out_count = elem->in_count = 0;
    elem->out_bytes = elem->in_bytes = 0;
    uint64_t table = q->desc_gpa;
    unsigned table_size = q->size;
    unsigned idx = head, seen = 0;
    bool in_indirect = false;
    for (;;) {
        if (seen++ >= table_size)
            return vq_fail(q, "queue %u: chain at %u has more than %u descriptors (a loop?)", q->index, head,
                           table_size);
        struct vq_desc d;
        if (!desc_read(q, table, idx, &d))
            return vq_fail(q, "queue %u: descriptor table at 0x%llx is not in guest RAM", q->index,
                           (unsigned long long)table);
        if (d.flags & VIRTQ_DESC_F_INDIRECT) {
            if (!q->indirect)
                return vq_fail(q, "queue %u: indirect descriptor without VIRTIO_F_INDIRECT_DESC", q->index);
            if (in_indirect)
                return vq_fail(q, "queue %u: indirect descriptor inside an indirect table", q->index);
            if (d.flags & VIRTQ_DESC_F_NEXT)
                return vq_fail(q, "queue %u: indirect descriptor with NEXT set", q->index);
            if (d.len == 0 || d.len % VIRTQ_DESC_BYTES || d.len / VIRTQ_DESC_BYTES > VIRTQ_SEG_MAX)
                return vq_fail(q, "queue %u: indirect table of %u bytes (a multiple of %u, at most %u entries)",
                               q->index, d.len, VIRTQ_DESC_BYTES, VIRTQ_SEG_MAX);
            if (!range_ok(d.addr, d.len))
                return vq_fail(q, "queue %u: indirect table at 0x%llx wraps", q->index,
                               (unsigned long long)d.addr);
            table = d.addr;
            table_size = d.len / VIRTQ_DESC_BYTES;
            idx = 0;
            seen = 0;
            in_indirect = true;
            continue;
        }
        if (d.len != 0) {
            if (!range_ok(d.addr, d.len))
                return vq_fail(q, "queue %u: buffer at 0x%llx wraps", q->index, (unsigned long long)d.addr);
            unsigned n = elem->out_count + elem->in_count;
            if (n >= VIRTQ_SEG_MAX)
                return vq_fail(q, "queue %u: chain at %u has more than %u buffers", q->index, head, VIRTQ_SEG_MAX);
            if (d.flags & VIRTQ_DESC_F_WRITE) {
                elem->in_count++;
                elem->in_bytes += d.len;
            } else {
                /* Section 2.7.4: device-readable buffers come before device-writable ones. */
                if (elem->in_count)
                    return vq_fail(q, "queue %u: device-readable buffer after a writable one", q->index);
                elem->out_count++;
                elem->out_bytes += d.len;
            }
            elem->seg[n].gpa = d.addr;
            elem->seg[n].len = d.len;
        }
        if (!(d.flags & VIRTQ_DESC_F_NEXT))
            return 0;
        idx = d.next;
        if (idx >= table_size)
            return vq_fail(q, "queue %u: next index %u out of range (%u descriptors)", q->index, idx, table_size);
    }
}

int virtq_pop(struct virtq *q, struct virtq_elem *elem)
{
    if (!virtq_is_ready(q))
        return 0;
    uint16_t avail_idx;
    if (!ram_load16(q->vm, avail_idx_gpa(q), &avail_idx))
        return vq_fail(q, "queue %u: driver area is not in guest RAM", q->index);
    if (avail_idx == q->last_avail_idx) {
        if (!q->event_idx)
            return 0;
        /*
         * Section 2.7.10: ask to be notified when the driver makes the next buffer
         * available, then look once more: it may have added one before it could
         * see avail_event.
         */
        if (!ram_store16(q->vm, avail_event_gpa(q), q->last_avail_idx))
            return vq_fail(q, "queue %u: device area is not in guest RAM", q->index);
        atomic_thread_fence(memory_order_seq_cst);
        if (!ram_load16(q->vm, avail_idx_gpa(q), &avail_idx))
            return vq_fail(q, "queue %u: driver area is not in guest RAM", q->index);
        if (avail_idx == q->last_avail_idx)
            return 0;
    }
    uint16_t pending = (uint16_t)(avail_idx - q->last_avail_idx);
    if (pending > q->size)
        return vq_fail(q, "queue %u: available index %u is %u entries ahead (queue size %u)", q->index, avail_idx,
                       pending, q->size);
    /* The entries were written before the index the driver published. */
    atomic_thread_fence(memory_order_acquire);
    uint16_t head;
    if (!ram_load16(q->vm, avail_ring_gpa(q, (uint16_t)(q->last_avail_idx & (q->size - 1))), &head))
        return vq_fail(q, "queue %u: driver area is not in guest RAM", q->index);
    if (head >= q->size)
        return vq_fail(q, "queue %u: available head %u out of range (queue size %u)", q->index, head, q->size);
    int rc = vq_walk(q, head, elem);
    if (rc)
        return rc;
    q->last_avail_idx++;
    return 1;
}

/* ---- giving chains back -------------------------------------------------------------------- */

void virtq_push(struct virtq *q, uint16_t head, uint32_t written_len)
{
    if (!virtq_is_ready(q))
        return;
    uint8_t elem[VIRTQ_USED_ELEM_BYTES];
    uint32_t id = head;
    memcpy(elem, &id, 4);
    memcpy(elem + 4, &written_len, 4);
    if (!ram_write(q->vm, used_ring_gpa(q, (uint16_t)(q->used_idx & (q->size - 1))), elem, sizeof(elem))) {
        vq_fail(q, "queue %u: device area is not in guest RAM", q->index);
        return;
    }
    /* The element is visible before the index that publishes it. */
    atomic_thread_fence(memory_order_release);
    q->used_idx++;
    if (!ram_store16(q->vm, used_idx_gpa(q), q->used_idx))
        vq_fail(q, "queue %u: device area is not in guest RAM", q->index);
}

void virtq_notify(struct virtq *q)
{
    if (!virtq_is_ready(q))
        return;
    /* The new used index is published before the driver's suppression field is read. */
    atomic_thread_fence(memory_order_seq_cst);
    bool send;
    if (q->event_idx) {
        uint16_t used_event;
        if (!ram_load16(q->vm, used_event_gpa(q), &used_event)) {
            vq_fail(q, "queue %u: driver area is not in guest RAM", q->index);
            return;
        }
        uint16_t old = q->signalled_used, now = q->used_idx;
        bool valid = q->signalled_used_valid;
        q->signalled_used = now;
        q->signalled_used_valid = true;
        /* Section 2.7.10: interrupt when used_event lies in (old, now]. */
        send = !valid || (uint16_t)(now - used_event - 1) < (uint16_t)(now - old);
    } else {
        uint16_t flags;
        if (!ram_load16(q->vm, avail_flags_gpa(q), &flags)) {
            vq_fail(q, "queue %u: driver area is not in guest RAM", q->index);
            return;
        }
        send = !(flags & VIRTQ_AVAIL_F_NO_INTERRUPT);
    }
    if (send && q->host.interrupt)
        q->host.interrupt(q->host.opaque, q);
}

/* ---- buffer data -------------------------------------------------------------------------------- */

static size_t elem_copy(struct vm *vm, const struct virtq_seg *seg, unsigned count, uint64_t off, void *buf,
                        size_t len, bool to_guest)
{
    uint8_t *p = buf;
    size_t done = 0;
    for (unsigned i = 0; i < count && done < len; i++) {
        if (off >= seg[i].len) {
            off -= seg[i].len;
            continue;
        }
        size_t n = (size_t)RT_MIN((uint64_t)(len - done), seg[i].len - off);
        dma_copy(vm, seg[i].gpa + off, p + done, n, to_guest);
        done += n;
        off = 0;
    }
    return done;
}

size_t virtq_elem_read(struct vm *vm, const struct virtq_elem *elem, uint64_t off, void *buf, size_t len)
{
    return elem_copy(vm, elem->seg, elem->out_count, off, buf, len, false);
}

size_t virtq_elem_write(struct vm *vm, const struct virtq_elem *elem, uint64_t off, const void *buf, size_t len)
{
    return elem_copy(vm, elem->seg + elem->out_count, elem->in_count, off, (void *)buf, len, true);
}

/* ---- saved state ------------------------------------------------------------------------------------ */

void virtq_save(const struct virtq *q, struct ssm *ssm)
{
    ssm_put_u16(ssm, q->size);
    ssm_put_bool(ssm, q->enabled);
    ssm_put_u64(ssm, q->desc_gpa);
    ssm_put_u64(ssm, q->avail_gpa);
    ssm_put_u64(ssm, q->used_gpa);
    ssm_put_bool(ssm, q->event_idx);
    ssm_put_bool(ssm, q->indirect);
    ssm_put_u16(ssm, q->last_avail_idx);
    ssm_put_u16(ssm, q->used_idx);
    ssm_put_u16(ssm, q->signalled_used);
    ssm_put_bool(ssm, q->signalled_used_valid);
    ssm_put_bool(ssm, q->broken);
}

int virtq_load(struct virtq *q, struct ssm *ssm)
{
    struct virtq n = *q;
    ssm_get_u16(ssm, &n.size);
    ssm_get_bool(ssm, &n.enabled);
    ssm_get_u64(ssm, &n.desc_gpa);
    ssm_get_u64(ssm, &n.avail_gpa);
    ssm_get_u64(ssm, &n.used_gpa);
    ssm_get_bool(ssm, &n.event_idx);
    ssm_get_bool(ssm, &n.indirect);
    ssm_get_u16(ssm, &n.last_avail_idx);
    ssm_get_u16(ssm, &n.used_idx);
    ssm_get_u16(ssm, &n.signalled_used);
    ssm_get_bool(ssm, &n.signalled_used_valid);
    ssm_get_bool(ssm, &n.broken);
    int rc = ssm_status(ssm);
    if (rc)
        return rc;
    /* The size indexes the rings (masking with size - 1): it must be one the device accepts. */
    if (!size_ok(n.size, q->size_max) ||
        (n.enabled && ((n.desc_gpa & (VIRTQ_DESC_ALIGN - 1)) || (n.avail_gpa & (VIRTQ_AVAIL_ALIGN - 1)) ||
                       (n.used_gpa & (VIRTQ_USED_ALIGN - 1))))) {
        LOG_ERR("saved state of virtio queue %u is inconsistent (size %u)", q->index, n.size);
        return VERR_SSM_CORRUPT;
    }
    n.running = false;
    *q = n;
    return 0;
}
