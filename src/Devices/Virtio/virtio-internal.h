/* virtio-internal.h - what the virtio-pci transport (virtio-pci.c) and the split virtqueue code (virtqueue.c) share, and what ring tests reach. */
#ifndef VIREO_VIRTIO_INTERNAL_H
#define VIREO_VIRTIO_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "vireo/virtio.h"

/* Split virtqueue layout (section 2.7). */
#define VIRTQ_DESC_F_NEXT          0x1
#define VIRTQ_DESC_F_WRITE         0x2
#define VIRTQ_DESC_F_INDIRECT      0x4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 0x1
#define VIRTQ_USED_F_NO_NOTIFY     0x1
#define VIRTQ_DESC_BYTES           16
#define VIRTQ_USED_ELEM_BYTES      8
/* Alignment of the three parts (section 2.7, table "Virtqueue Part Alignment"). */
#define VIRTQ_DESC_ALIGN  16
#define VIRTQ_AVAIL_ALIGN 2
#define VIRTQ_USED_ALIGN  4

/* How a queue reaches its transport: a ring error and a used-buffer interrupt. */
struct virtq_host {
    void (*error)(void *opaque, struct virtq *q, const char *why);
    void (*interrupt)(void *opaque, struct virtq *q);
    void *opaque;
};

struct virtq {
    struct vm *vm;
    struct virtq_host host;
    unsigned index;
    uint16_t size_max;
    /* Programmed by the driver through the common configuration. */
    uint16_t size;
    bool enabled;
    uint64_t desc_gpa, avail_gpa, used_gpa;
    /* Negotiated ring features. */
    bool event_idx, indirect;
    /* Set by the transport while the driver runs (DRIVER_OK, no reset needed). */
    bool running;
    /* The device's side of the ring. */
    uint16_t last_avail_idx;   /* next avail ring slot to read */
    uint16_t used_idx;         /* next used ring slot to write (what used->idx holds) */
    uint16_t signalled_used;   /* used_idx at the last interrupt (EVENT_IDX) */
    bool signalled_used_valid; /* false until the first interrupt after setup */
    bool broken;               /* malformed ring seen: stopped until reset */
};

/* Sets up q (index, largest size) and resets it. */
void virtq_init(struct virtq *q, struct vm *vm, unsigned index, uint16_t size_max, const struct virtq_host *host);
/* Back to the state after a device reset: disabled, largest size, no addresses. */
void virtq_reset(struct virtq *q);
/* The driver's accepted features (FEATURES_OK): event index and indirect descriptors. */
void virtq_set_features(struct virtq *q, uint64_t features);
/*
 * The driver wrote 1 to queue_enable: checks the size and the three parts' alignment
 * and placement (a bad layout breaks the queue: VERR_GUEST_FAULT).
 */
int virtq_enable(struct virtq *q);
void virtq_save(const struct virtq *q, struct ssm *ssm);
/* Checks what it reads against size_max; VERR_SSM_CORRUPT leaves q unchanged. */
int virtq_load(struct virtq *q, struct ssm *ssm);

#endif
