/* virtio.h - the virtio 1.x transport (modern virtio-pci) and split virtqueues that virtio device models build on. */
#ifndef VIREO_VIRTIO_H
#define VIREO_VIRTIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vireo/pci.h"
#include "vireo/vm.h"

/*
 * A virtio device model (virtio-blk, later -net, -gpu, -input) creates one struct
 * virtio_dev in its construct(): a PCI function with the modern, non-transitional
 * virtio-pci transport (Virtual I/O Device (VIRTIO) Version 1.2, section 4.1): vendor
 * 0x1AF4, device 0x1040 + the virtio device ID, revision 1, one 64-bit memory BAR
 * holding the common configuration, notification, ISR and device configuration
 * structures that vendor-specific PCI capabilities describe, plus the PCI
 * configuration access capability.  Interrupts are INTx with the ISR status register
 * (no MSI-X: the vector registers read VIRTIO_MSI_NO_VECTOR).
 *
 * The transport owns feature negotiation (VERSION_1, INDIRECT_DESC and EVENT_IDX on
 * top of the device's own features), device status, queue configuration and the
 * split virtqueues (section 2.7).  The device model sees:
 *  - queue_notify(): the driver made buffers available on a queue (only while the
 *    driver has set DRIVER_OK and the device does not need a reset);
 *  - virtq_pop() to take an available descriptor chain as guest-physical segments,
 *    virtq_push() to return it with the bytes written, virtq_notify() to interrupt
 *    the driver unless it suppressed that;
 *  - config_read()/config_write() for its device configuration structure;
 *  - reset(): the driver wrote 0 to device_status.  The device finishes or drops its
 *    in-flight work there; the transport then clears the queues.
 *
 * Guest memory is untrusted: a malformed ring (a descriptor index out of range, a
 * loop, a chain longer than the queue, a bad indirect table, rings outside RAM)
 * stops that queue and sets DEVICE_NEEDS_RESET, with a configuration change
 * interrupt once the driver is running (section 2.1.2).  Ring structures must lie in
 * RAM; data buffers that are not RAM read as all ones and swallow writes, as DMA on
 * a real bus does, and never reach MMIO handlers.
 *
 * Everything here runs with the VM lock held, as device code always does.
 */

/* ---- Constants from the specification ---------------------------------------- */

#define VIRTIO_PCI_VENDOR_ID      0x1af4
#define VIRTIO_PCI_DEVICE_ID_BASE 0x1040 /* + virtio device ID (section 4.1.2) */
#define VIRTIO_PCI_SUBSYS_ID      0x1100 /* what guest drivers' ID tables expect of a virtual device */
#define VIRTIO_MSI_NO_VECTOR      0xffff

/* Device IDs (section 5). */
#define VIRTIO_ID_NET     1
#define VIRTIO_ID_BLOCK   2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_GPU     16
#define VIRTIO_ID_INPUT   18

/* Device status bits (section 2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE 0x01
#define VIRTIO_STATUS_DRIVER      0x02
#define VIRTIO_STATUS_DRIVER_OK   0x04
#define VIRTIO_STATUS_FEATURES_OK 0x08
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED      0x80

/* Reserved feature bits (section 6). */
#define VIRTIO_F_INDIRECT_DESC   28
#define VIRTIO_F_EVENT_IDX       29
#define VIRTIO_F_VERSION_1       32
#define VIRTIO_F_ACCESS_PLATFORM 33
#define VIRTIO_F_RING_PACKED     34
#define VIRTIO_BIT(n)            (1ull << (n))
/* What the transport adds to every device's features. */
#define VIRTIO_TRANSPORT_FEATURES \
    (VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX))

/* ISR status bits (section 4.1.4.5). */
#define VIRTIO_ISR_QUEUE  0x1
#define VIRTIO_ISR_CONFIG 0x2

/* Largest queue the transport offers (queue_size's reset value); the driver may lower it. */
#define VIRTIO_QUEUE_SIZE_MAX 256
/* Most queues one device may have. */
#define VIRTIO_QUEUES_MAX 16
/*
 * Most buffer segments one descriptor chain may carry, indirect tables included:
 * longer chains are malformed (section 2.7.5.3.1 bounds a chain by the queue size).
 */
#define VIRTQ_SEG_MAX VIRTIO_QUEUE_SIZE_MAX

/* ---- Split virtqueues ----------------------------------------------------------- */

struct virtq; /* opaque: one queue of a virtio_dev */

/* One guest buffer of a chain (zero-length descriptors are left out). */
struct virtq_seg {
    uint64_t gpa;
    uint32_t len;
};

/*
 * An available descriptor chain as virtq_pop() found it: the device-readable
 * segments first (seg[0 .. out_count)), then the device-writable ones
 * (seg[out_count .. out_count + in_count)), as section 2.7.4 orders them.
 */
struct virtq_elem {
    uint16_t head; /* descriptor index to give back with virtq_push() */
    unsigned out_count, in_count;
    uint64_t out_bytes, in_bytes;
    struct virtq_seg seg[VIRTQ_SEG_MAX];
};

/*
 * Takes the next available chain.  Returns 1 with *elem filled, 0 when the driver has
 * made nothing more available (or the queue is not running), or VERR_GUEST_FAULT when
 * the ring is malformed: the queue then stops and the device needs a reset.  With
 * EVENT_IDX, finding the ring empty asks the driver to notify at the next buffer.
 */
int virtq_pop(struct virtq *q, struct virtq_elem *elem);
/* Hands the chain starting at head back to the driver with written_len bytes written into it. */
void virtq_push(struct virtq *q, uint16_t head, uint32_t written_len);
/*
 * After one or more pushes: interrupts the driver unless it asked not to be
 * (VIRTQ_AVAIL_F_NO_INTERRUPT, or the used_event index with EVENT_IDX, section 2.7.10).
 */
void virtq_notify(struct virtq *q);
/* Whether the queue is enabled by the driver, the driver runs, and the ring is sane. */
bool virtq_is_ready(const struct virtq *q);
unsigned virtq_index(const struct virtq *q);
/* The size the driver chose (a power of two), 0 when the queue is not set up. */
unsigned virtq_size(const struct virtq *q);

/*
 * Copies len bytes at byte offset off of the chain's device-readable data into buf
 * (non-RAM pieces read as all ones); returns the bytes copied (less at the chain's end).
 */
size_t virtq_elem_read(struct vm *vm, const struct virtq_elem *elem, uint64_t off, void *buf, size_t len);
/* Copies buf to byte offset off of the chain's device-writable data; returns the bytes copied. */
size_t virtq_elem_write(struct vm *vm, const struct virtq_elem *elem, uint64_t off, const void *buf, size_t len);

/* ---- The virtio-pci transport ----------------------------------------------------------- */

struct virtio_dev; /* opaque */

struct virtio_dev_ops {
    /* Device configuration reads and writes; offset + size is within config_len, size is 1, 2 or 4. */
    uint32_t (*config_read)(void *opaque, unsigned offset, unsigned size);
    void (*config_write)(void *opaque, unsigned offset, uint32_t value, unsigned size); /* NULL: read-only */
    /* The driver notified queue index. */
    void (*queue_notify)(void *opaque, unsigned index);
    /*
     * The driver reset the device (device_status 0): finish or drop in-flight work
     * (drain the backend) before returning; the queues are cleared afterwards.
     */
    void (*reset)(void *opaque);
    /* Optional: veto a feature set the driver asks for with FEATURES_OK (already a subset of the offer). */
    bool (*features_ok)(void *opaque, uint64_t features);
};

struct virtio_params {
    const char *name;        /* for logs and region names ("vblk0") */
    uint16_t device_id;      /* VIRTIO_ID_* */
    uint32_t class_code;     /* PCI class (0x010000 for mass storage) */
    uint64_t features;       /* device-specific feature bits (the transport adds its own) */
    unsigned num_queues;     /* 1..VIRTIO_QUEUES_MAX */
    unsigned queue_size_max; /* power of two, 2..VIRTIO_QUEUE_SIZE_MAX */
    unsigned config_len;     /* bytes of device configuration, 0..4096 */
    const struct virtio_dev_ops *ops;
    void *opaque;
};

/*
 * Registers the PCI function at devfn on bus with its BAR and capabilities, and
 * resets the transport.  The device model calls virtio_pci_reset() from its reset()
 * after draining its own work, and virtio_pci_destroy() from destroy().
 */
int virtio_pci_create(struct vm *vm, struct pci_bus *bus, unsigned devfn, const struct virtio_params *params,
                      struct virtio_dev **out);
/* Unregisters the function and frees everything.  NULL is fine. */
void virtio_pci_destroy(struct virtio_dev *vdev);
/* System reset: the PCI function and the transport back to power-on (does not call ops->reset). */
void virtio_pci_reset(struct virtio_dev *vdev);
/*
 * Saved state of the PCI function, the transport and every queue.  The device model
 * drains its in-flight requests first, so every chain it popped has been pushed.
 */
void virtio_pci_save(struct virtio_dev *vdev, struct ssm *ssm);
int virtio_pci_load(struct virtio_dev *vdev, struct ssm *ssm);

struct vm *virtio_dev_vm(const struct virtio_dev *vdev);
struct pci_dev *virtio_dev_pci(const struct virtio_dev *vdev);
struct virtq *virtio_dev_queue(struct virtio_dev *vdev, unsigned index);
/* The features the driver accepted (valid once FEATURES_OK is set). */
uint64_t virtio_dev_features(const struct virtio_dev *vdev);
uint8_t virtio_dev_status(const struct virtio_dev *vdev);
bool virtio_dev_is_running(const struct virtio_dev *vdev);
/*
 * The device changed its configuration structure: bumps config_generation and, once
 * the driver runs, raises a configuration change interrupt (section 4.1.4.5).
 */
void virtio_dev_config_changed(struct virtio_dev *vdev);
/*
 * The driver broke the device's rules (a malformed request the device cannot answer):
 * logs why (the first time after each reset), sets DEVICE_NEEDS_RESET, stops every
 * queue and notifies the driver when it runs (section 2.1.2).
 */
void virtio_dev_error(struct virtio_dev *vdev, const char *fmt, ...) RT_PRINTF(2, 3);

#endif
