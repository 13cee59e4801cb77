/* virtio-pci.c - the modern virtio-pci transport (virtio 1.2 section 4.1): capabilities, common configuration, notifications, ISR, INTx. */

/*
 * Design: one PCI function per virtio device, non-transitional (no legacy I/O BAR),
 * with a single 16 KiB 64-bit prefetchable memory BAR (BAR4) laid out in 4 KiB pages:
 *
 *   0x0000 common configuration (section 4.1.4.3)
 *   0x1000 ISR status           (section 4.1.4.5)
 *   0x2000 device configuration (section 4.1.4.6; the device model's structure)
 *   0x3000 notifications        (section 4.1.4.4; queue n at 0x3000 + 4n)
 *
 * Five vendor-specific capabilities (section 4.1.4) point there; the fifth is the
 * PCI configuration access window (cfg_type 5, section 4.1.4.8) through which
 * firmware running in 32-bit mode reaches a BAR placed above 4 GiB: the driver
 * writes bar/offset/length into the capability, then reading or writing its data
 * field performs that access on the BAR.
 *
 * No MSI-X: msix_config and queue_msix_vector always read VIRTIO_MSI_NO_VECTOR, and
 * every interrupt is INTx, asserted while the ISR status byte is non-zero and
 * dropped when the driver reads (and so clears) it.
 *
 * Registers follow the spec's access rules (section 4.1.3.1: each field with its own
 * width; 64-bit fields as two 32-bit halves); reads of any width see the structure's
 * bytes, writes of another width are ignored.  Feature negotiation refuses
 * FEATURES_OK when the driver accepts a feature that was not offered or leaves out
 * VERSION_1 (section 2.2.2), and queues run only between a successful FEATURES_OK +
 * DRIVER_OK and the next reset or device error.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "virtio-internal.h"

#define LOG_COMPONENT "virtio"

#define VPCI_SSM_VERSION 1

#define VPCI_BAR        4
#define VPCI_BAR_BYTES  0x4000u
#define VPCI_PAGE       0x1000u
#define VPCI_COMMON_OFF 0x0000u
#define VPCI_ISR_OFF    0x1000u
#define VPCI_DEVICE_OFF 0x2000u
#define VPCI_NOTIFY_OFF 0x3000u
#define VPCI_NOTIFY_MULTIPLIER 4u
#define VPCI_CONFIG_MAX VPCI_PAGE

/* cfg_type of the capabilities (section 4.1.4). */
#define VPCI_CAP_COMMON 1
#define VPCI_CAP_NOTIFY 2
#define VPCI_CAP_ISR    3
#define VPCI_CAP_DEVICE 4
#define VPCI_CAP_PCI    5

/* struct virtio_pci_cap field offsets. */
#define VCAP_LEN        2
#define VCAP_CFG_TYPE   3
#define VCAP_BAR        4
#define VCAP_ID         5
#define VCAP_OFFSET     8
#define VCAP_LENGTH     12
#define VCAP_NOTIFY_MUL 16 /* struct virtio_pci_notify_cap */
#define VCAP_PCI_DATA   16 /* struct virtio_pci_cfg_cap */
#define VCAP_BYTES      16
#define VCAP_EXT_BYTES  20

/* Where the capabilities sit in config space. */
#define VPCI_CAP_COMMON_AT 0x40
#define VPCI_CAP_NOTIFY_AT 0x50
#define VPCI_CAP_ISR_AT    0x64
#define VPCI_CAP_DEVICE_AT 0x74
#define VPCI_CAP_PCI_AT    0x84

/* struct virtio_pci_common_cfg (section 4.1.4.3). */
#define CC_DEVICE_FEATURE_SELECT 0x00
#define CC_DEVICE_FEATURE        0x04
#define CC_DRIVER_FEATURE_SELECT 0x08
#define CC_DRIVER_FEATURE        0x0c
#define CC_MSIX_CONFIG           0x10
#define CC_NUM_QUEUES            0x12
#define CC_DEVICE_STATUS         0x14
#define CC_CONFIG_GENERATION     0x15
#define CC_QUEUE_SELECT          0x16
#define CC_QUEUE_SIZE            0x18
#define CC_QUEUE_MSIX_VECTOR     0x1a
#define CC_QUEUE_ENABLE          0x1c
#define CC_QUEUE_NOTIFY_OFF      0x1e
#define CC_QUEUE_DESC            0x20
#define CC_QUEUE_DRIVER          0x28
#define CC_QUEUE_DEVICE          0x30
#define CC_BYTES                 0x38

struct virtio_dev {
    struct vm *vm;
    char name[32];
    struct pci_dev *pci;
    struct mem_region *bar;
    const struct virtio_dev_ops *ops;
    void *opaque;
    unsigned num_queues;
    unsigned config_len;
    uint64_t host_features;
    /* Common configuration. */
    uint32_t device_feature_select;
    uint32_t driver_feature_select;
    uint64_t driver_features;
    uint8_t status;
    uint8_t config_generation;
    uint16_t queue_select;
    uint8_t isr;
    bool error_logged; /* guest errors are logged once per reset */
    bool odd_access_logged;
    struct virtq queues[VIRTIO_QUEUES_MAX];
};

/* ---- interrupts and errors -------------------------------------------------------- */

static void irq_update(struct virtio_dev *v)
{
    pci_dev_irq_set(v->pci, v->isr != 0);
}

static void isr_raise(struct virtio_dev *v, uint8_t bits)
{
    v->isr |= bits;
    irq_update(v);
}

/* Queues run while the driver has accepted features and said DRIVER_OK, and no error stopped the device. */
static void running_update(struct virtio_dev *v)
{
    bool run = (v->status & (VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK)) ==
                   (VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK) &&
               !(v->status & (VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED));
    for (unsigned i = 0; i < v->num_queues; i++)
        v->queues[i].running = run;
}

static void dev_error(struct virtio_dev *v, const char *why)
{
    if (!v->error_logged) {
        LOG_WARN("%s: %s; the device needs a reset (further errors until then are not logged)", v->name, why);
        v->error_logged = true;
    }
    if (v->status & VIRTIO_STATUS_NEEDS_RESET)
        return;
    v->status |= VIRTIO_STATUS_NEEDS_RESET;
    running_update(v);
    /* Section 2.1.2: a running driver hears of it through a configuration change notification. */
    if (v->status & VIRTIO_STATUS_DRIVER_OK)
        isr_raise(v, VIRTIO_ISR_CONFIG);
}

void virtio_dev_error(struct virtio_dev *vdev, const char *fmt, ...)
{
    char why[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    dev_error(vdev, why);
}

static void queue_error(void *opaque, struct virtq *q, const char *why)
{
    (void)q;
    dev_error(opaque, why);
}

static void queue_interrupt(void *opaque, struct virtq *q)
{
    (void)q;
    isr_raise(opaque, VIRTIO_ISR_QUEUE);
}

void virtio_dev_config_changed(struct virtio_dev *vdev)
{
    vdev->config_generation++;
    if (vdev->status & VIRTIO_STATUS_DRIVER_OK)
        isr_raise(vdev, VIRTIO_ISR_CONFIG);
}

/* ---- device status and reset ---------------------------------------------------------- */

static void transport_reset(struct virtio_dev *v)
{
    v->device_feature_select = v->driver_feature_select = 0;
    v->driver_features = 0;
    v->status = 0;
    v->queue_select = 0;
    v->isr = 0;
    v->error_logged = false;
    for (unsigned i = 0; i < v->num_queues; i++)
        virtq_reset(&v->queues[i]);
    irq_update(v);
}

/* Section 2.2.2: only offered features, and a modern driver (VERSION_1). */
static bool features_acceptable(struct virtio_dev *v, uint64_t features)
{
    if (features & ~v->host_features) {
        LOG_WARN("%s: driver accepted features 0x%llx that were not offered; FEATURES_OK refused", v->name,
                 (unsigned long long)(features & ~v->host_features));
        return false;
    }
    if (!(features & VIRTIO_BIT(VIRTIO_F_VERSION_1))) {
        LOG_WARN("%s: driver did not accept VIRTIO_F_VERSION_1 (legacy drivers are not supported); FEATURES_OK "
                 "refused",
                 v->name);
        return false;
    }
    return !v->ops->features_ok || v->ops->features_ok(v->opaque, features);
}

static void status_write(struct virtio_dev *v, uint8_t value)
{
    if (value == 0) {
        /* Section 4.1.4.3.1: the device is reset once the driver can read 0 back. */
        if (v->ops->reset)
            v->ops->reset(v->opaque);
        transport_reset(v);
        return;
    }
    /* The driver sets bits one step at a time and never clears them (section 3.1.1); NEEDS_RESET is the device's. */
    uint8_t old = v->status;
    uint8_t nv = (uint8_t)((value & ~VIRTIO_STATUS_NEEDS_RESET) | old);
    if ((nv & VIRTIO_STATUS_FEATURES_OK) && !(old & VIRTIO_STATUS_FEATURES_OK)) {
        if (features_acceptable(v, v->driver_features)) {
            for (unsigned i = 0; i < v->num_queues; i++)
                virtq_set_features(&v->queues[i], v->driver_features);
        } else {
            nv &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK;
        }
    }
    v->status = nv;
    running_update(v);
}

/* ---- common configuration ----------------------------------------------------------------- */

static struct virtq *selected_queue(struct virtio_dev *v)
{
    return v->queue_select < v->num_queues ? &v->queues[v->queue_select] : NULL;
}

static void put_le(uint8_t *p, uint64_t value, unsigned bytes)
{
    for (unsigned i = 0; i < bytes; i++)
        p[i] = (uint8_t)(value >> (8 * i));
}

/* The structure's bytes as the driver would see them now (reads of any width and alignment). */
static void common_image(struct virtio_dev *v, uint8_t img[CC_BYTES])
{
    memset(img, 0, CC_BYTES);
    put_le(img + CC_DEVICE_FEATURE_SELECT, v->device_feature_select, 4);
    uint32_t dev_word = v->device_feature_select < 2 ? (uint32_t)(v->host_features >> (32 * v->device_feature_select)) : 0;
    put_le(img + CC_DEVICE_FEATURE, dev_word, 4);
    put_le(img + CC_DRIVER_FEATURE_SELECT, v->driver_feature_select, 4);
    uint32_t drv_word = v->driver_feature_select < 2 ? (uint32_t)(v->driver_features >> (32 * v->driver_feature_select)) : 0;
    put_le(img + CC_DRIVER_FEATURE, drv_word, 4);
    put_le(img + CC_MSIX_CONFIG, VIRTIO_MSI_NO_VECTOR, 2);
    put_le(img + CC_NUM_QUEUES, v->num_queues, 2);
    img[CC_DEVICE_STATUS] = v->status;
    img[CC_CONFIG_GENERATION] = v->config_generation;
    put_le(img + CC_QUEUE_SELECT, v->queue_select, 2);
    struct virtq *q = selected_queue(v);
    put_le(img + CC_QUEUE_MSIX_VECTOR, VIRTIO_MSI_NO_VECTOR, 2);
    if (q) {
        put_le(img + CC_QUEUE_SIZE, q->size, 2);
        put_le(img + CC_QUEUE_ENABLE, q->enabled, 2);
        put_le(img + CC_QUEUE_NOTIFY_OFF, q->index, 2);
        put_le(img + CC_QUEUE_DESC, q->desc_gpa, 8);
        put_le(img + CC_QUEUE_DRIVER, q->avail_gpa, 8);
        put_le(img + CC_QUEUE_DEVICE, q->used_gpa, 8);
    }
}

static uint64_t common_read(struct virtio_dev *v, unsigned off, unsigned size)
{
    uint8_t img[CC_BYTES];
    common_image(v, img);
    uint64_t value = 0;
    for (unsigned i = 0; i < size; i++)
        if (off + i < CC_BYTES)
            value |= (uint64_t)img[off + i] << (8 * i);
    return value;
}

/* A 32-bit half of a 64-bit queue address; only while the queue is not enabled (section 4.1.4.3.2). */
static void queue_addr_write(struct virtq *q, uint64_t *addr, unsigned half, uint32_t value)
{
    if (!q || q->enabled)
        return;
    unsigned shift = 32 * half;
    *addr = (*addr & ~(0xffffffffull << shift)) | ((uint64_t)value << shift);
}

static void common_write(struct virtio_dev *v, unsigned off, uint32_t value, unsigned size)
{
    struct virtq *q = selected_queue(v);
    switch (off | size << 8) {
    case CC_DEVICE_FEATURE_SELECT | 4 << 8:
        v->device_feature_select = value;
        return;
    case CC_DRIVER_FEATURE_SELECT | 4 << 8:
        v->driver_feature_select = value;
        return;
    case CC_DRIVER_FEATURE | 4 << 8:
        /* Features are fixed once FEATURES_OK was accepted; selectors past the 64 bits store nothing. */
        if (v->driver_feature_select < 2 && !(v->status & VIRTIO_STATUS_FEATURES_OK)) {
            unsigned shift = 32 * v->driver_feature_select;
            v->driver_features = (v->driver_features & ~(0xffffffffull << shift)) | ((uint64_t)value << shift);
        }
        return;
    case CC_MSIX_CONFIG | 2 << 8:
    case CC_QUEUE_MSIX_VECTOR | 2 << 8:
        return; /* no MSI-X: the registers keep reading VIRTIO_MSI_NO_VECTOR */
    case CC_DEVICE_STATUS | 1 << 8:
        status_write(v, (uint8_t)value);
        return;
    case CC_QUEUE_SELECT | 2 << 8:
        v->queue_select = (uint16_t)value;
        return;
    case CC_QUEUE_SIZE | 2 << 8:
        /* Checked when the queue is enabled: a power of two up to the offered size. */
        if (q && !q->enabled)
            q->size = (uint16_t)value;
        return;
    case CC_QUEUE_ENABLE | 2 << 8:
        /* Section 4.1.4.3.2: the driver never writes 0; a queue stops only with a device reset. */
        if (q && value == 1 && !q->enabled && !q->broken)
            virtq_enable(q);
        return;
    case CC_QUEUE_DESC | 4 << 8:
    case (CC_QUEUE_DESC + 4) | 4 << 8:
        queue_addr_write(q, q ? &q->desc_gpa : NULL, (off - CC_QUEUE_DESC) / 4, value);
        return;
    case CC_QUEUE_DRIVER | 4 << 8:
    case (CC_QUEUE_DRIVER + 4) | 4 << 8:
        queue_addr_write(q, q ? &q->avail_gpa : NULL, (off - CC_QUEUE_DRIVER) / 4, value);
        return;
    case CC_QUEUE_DEVICE | 4 << 8:
    case (CC_QUEUE_DEVICE + 4) | 4 << 8:
        queue_addr_write(q, q ? &q->used_gpa : NULL, (off - CC_QUEUE_DEVICE) / 4, value);
        return;
    default:
        /* Read-only fields, or a width the field does not have (section 4.1.3.1). */
        if (!v->odd_access_logged) {
            LOG_WARN("%s: ignored %u-byte write of 0x%x at common configuration offset 0x%x (logged once)",
                     v->name, size, value, off);
            v->odd_access_logged = true;
        }
        return;
    }
}

/* ---- the BAR ------------------------------------------------------------------------------------ */

static void notify_write(struct virtio_dev *v, unsigned off)
{
    /* The queue is the one whose notification address was written (queue_notify_off = index). */
    if (off % VPCI_NOTIFY_MULTIPLIER)
        return;
    unsigned index = off / VPCI_NOTIFY_MULTIPLIER;
    if (index >= v->num_queues || !virtq_is_ready(&v->queues[index]))
        return;
    /* A function that may not master the bus must not touch guest memory. */
    if (!pci_dev_is_bus_master(v->pci)) {
        if (!v->odd_access_logged) {
            LOG_WARN("%s: queue %u notified while bus mastering is off; ignored (logged once)", v->name, index);
            v->odd_access_logged = true;
        }
        return;
    }
    v->ops->queue_notify(v->opaque, index);
}

static uint64_t bar_read(void *opaque, uint64_t offset, unsigned size)
{
    struct virtio_dev *v = opaque;
    unsigned page = (unsigned)offset & ~(VPCI_PAGE - 1), off = (unsigned)offset & (VPCI_PAGE - 1);
    switch (page) {
    case VPCI_COMMON_OFF:
        return common_read(v, off, size);
    case VPCI_ISR_OFF: {
        if (off != 0)
            return 0;
        /* Section 4.1.4.5.1: reading the ISR status clears it and drops the interrupt. */
        uint8_t isr = v->isr;
        v->isr = 0;
        irq_update(v);
        return isr;
    }
    case VPCI_DEVICE_OFF:
        if (off >= v->config_len || size > v->config_len - off)
            return 0;
        return v->ops->config_read(v->opaque, off, size);
    default:
        return 0; /* notifications are write-only */
    }
}

static void bar_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    struct virtio_dev *v = opaque;
    unsigned page = (unsigned)offset & ~(VPCI_PAGE - 1), off = (unsigned)offset & (VPCI_PAGE - 1);
    switch (page) {
    case VPCI_COMMON_OFF:
        common_write(v, off, (uint32_t)value, size);
        return;
    case VPCI_DEVICE_OFF:
        if (v->ops->config_write && off < v->config_len && size <= v->config_len - off)
            v->ops->config_write(v->opaque, off, (uint32_t)value, size);
        return;
    case VPCI_NOTIFY_OFF:
        notify_write(v, off);
        return;
    default:
        return; /* the ISR status is read-only */
    }
}

static const struct io_ops g_bar_ops = {
    .read = bar_read,
    .write = bar_write,
    .min_access = 1,
    .max_access = 4,
};

/* ---- the PCI configuration access window (section 4.1.4.8) ------------------------------------ */

/* The access the window's bar/offset/length fields describe, or false when they describe none. */
static bool window_target(struct virtio_dev *v, unsigned *off, unsigned *len)
{
    uint8_t bar = pci_dev_get_u8(v->pci, VPCI_CAP_PCI_AT + VCAP_BAR);
    uint32_t o = pci_dev_get_u32(v->pci, VPCI_CAP_PCI_AT + VCAP_OFFSET);
    uint32_t l = pci_dev_get_u32(v->pci, VPCI_CAP_PCI_AT + VCAP_LENGTH);
    /* Section 4.1.4.8.1: 1, 2 or 4 bytes, naturally aligned, inside the BAR. */
    if (bar != VPCI_BAR || (l != 1 && l != 2 && l != 4) || o % l || o >= VPCI_BAR_BYTES || l > VPCI_BAR_BYTES - o)
        return false;
    *off = o;
    *len = l;
    return true;
}

static bool touches_window(unsigned offset, unsigned size)
{
    unsigned data = VPCI_CAP_PCI_AT + VCAP_PCI_DATA;
    return offset < data + 4 && offset + size > data;
}

static uint32_t window_config_read(void *opaque, struct pci_dev *dev, unsigned offset, unsigned size, uint32_t value)
{
    struct virtio_dev *v = opaque;
    unsigned off, len;
    if (!touches_window(offset, size) || !window_target(v, &off, &len))
        return value;
    uint32_t data = (uint32_t)bar_read(v, off, len);
    pci_dev_set_u32(dev, VPCI_CAP_PCI_AT + VCAP_PCI_DATA, data);
    uint32_t out = 0;
    for (unsigned i = 0; i < size; i++)
        out |= (uint32_t)pci_dev_get_u8(dev, offset + i) << (8 * i);
    return out;
}

static void window_config_write(void *opaque, struct pci_dev *dev, unsigned offset, uint32_t value, unsigned size)
{
    struct virtio_dev *v = opaque;
    (void)value;
    unsigned off, len;
    if (!touches_window(offset, size) || !window_target(v, &off, &len))
        return;
    uint32_t data = pci_dev_get_u32(dev, VPCI_CAP_PCI_AT + VCAP_PCI_DATA);
    if (len < 4)
        data &= (1u << (8 * len)) - 1;
    bar_write(v, off, data, len);
}

static const struct pci_dev_ops g_pci_ops = {
    .config_write = window_config_write,
    .config_read = window_config_read,
};

/* ---- construction ---------------------------------------------------------------------------------- */

static int cap_add(struct pci_dev *dev, unsigned at, unsigned bytes, uint8_t type, uint32_t offset,
                   uint32_t length)
{
    int rc = pci_dev_add_cap(dev, PCI_CAP_ID_VENDOR, at, bytes);
    if (rc)
        return rc;
    pci_dev_set_u8(dev, at + VCAP_LEN, (uint8_t)bytes);
    pci_dev_set_u8(dev, at + VCAP_CFG_TYPE, type);
    pci_dev_set_u8(dev, at + VCAP_BAR, type == VPCI_CAP_PCI ? 0 : VPCI_BAR);
    pci_dev_set_u8(dev, at + VCAP_ID, 0);
    pci_dev_set_u32(dev, at + VCAP_OFFSET, offset);
    pci_dev_set_u32(dev, at + VCAP_LENGTH, length);
    return 0;
}

static int caps_add(struct virtio_dev *v)
{
    struct pci_dev *d = v->pci;
    int rc = cap_add(d, VPCI_CAP_COMMON_AT, VCAP_BYTES, VPCI_CAP_COMMON, VPCI_COMMON_OFF, CC_BYTES);
    if (!rc)
        rc = cap_add(d, VPCI_CAP_NOTIFY_AT, VCAP_EXT_BYTES, VPCI_CAP_NOTIFY, VPCI_NOTIFY_OFF,
                     v->num_queues * VPCI_NOTIFY_MULTIPLIER);
    if (!rc) {
        pci_dev_set_u32(d, VPCI_CAP_NOTIFY_AT + VCAP_NOTIFY_MUL, VPCI_NOTIFY_MULTIPLIER);
        rc = cap_add(d, VPCI_CAP_ISR_AT, VCAP_BYTES, VPCI_CAP_ISR, VPCI_ISR_OFF, 1);
    }
    if (!rc && v->config_len)
        rc = cap_add(d, VPCI_CAP_DEVICE_AT, VCAP_BYTES, VPCI_CAP_DEVICE, VPCI_DEVICE_OFF, v->config_len);
    if (!rc)
        rc = cap_add(d, VPCI_CAP_PCI_AT, VCAP_EXT_BYTES, VPCI_CAP_PCI, 0, 0);
    if (rc)
        return rc;
    /* The window's bar, offset, length and data are the driver's to write. */
    pci_dev_set_wmask(d, VPCI_CAP_PCI_AT + VCAP_BAR, 1, 0xff);
    pci_dev_set_wmask(d, VPCI_CAP_PCI_AT + VCAP_OFFSET, 4, 0xffffffffu);
    pci_dev_set_wmask(d, VPCI_CAP_PCI_AT + VCAP_LENGTH, 4, 0xffffffffu);
    pci_dev_set_wmask(d, VPCI_CAP_PCI_AT + VCAP_PCI_DATA, 4, 0xffffffffu);
    return 0;
}

int virtio_pci_create(struct vm *vm, struct pci_bus *bus, unsigned devfn, const struct virtio_params *params,
                      struct virtio_dev **out)
{
    if (!vm || !bus || !params || !out || !params->ops || !params->ops->queue_notify || !params->ops->config_read ||
        params->num_queues == 0 || params->num_queues > VIRTIO_QUEUES_MAX || params->queue_size_max < 2 ||
        params->queue_size_max > VIRTIO_QUEUE_SIZE_MAX || (params->queue_size_max & (params->queue_size_max - 1)) ||
        params->config_len > VPCI_CONFIG_MAX)
        return VERR_INVALID_PARAMETER;
    *out = NULL;
    struct virtio_dev *v = calloc(1, sizeof(*v));
    if (!v)
        return VERR_NO_MEMORY;
    v->vm = vm;
    rt_strlcpy(v->name, params->name ? params->name : "virtio", sizeof(v->name));
    v->ops = params->ops;
    v->opaque = params->opaque;
    v->num_queues = params->num_queues;
    v->config_len = params->config_len;
    /* The transport offers no platform IOMMU and no packed rings (section 6). */
    v->host_features = (params->features & ~(VIRTIO_BIT(VIRTIO_F_ACCESS_PLATFORM) | VIRTIO_BIT(VIRTIO_F_RING_PACKED))) |
                       VIRTIO_TRANSPORT_FEATURES;
    const struct virtq_host host = {.error = queue_error, .interrupt = queue_interrupt, .opaque = v};
    for (unsigned i = 0; i < v->num_queues; i++)
        virtq_init(&v->queues[i], vm, i, (uint16_t)params->queue_size_max, &host);

    const struct pci_dev_params p = {
        .name = v->name,
        .vendor_id = VIRTIO_PCI_VENDOR_ID,
        .device_id = (uint16_t)(VIRTIO_PCI_DEVICE_ID_BASE + params->device_id),
        .class_code = params->class_code,
        .revision = 1, /* section 4.1.2.1: non-transitional devices have revision 1 or higher */
        .subsys_vendor_id = VIRTIO_PCI_VENDOR_ID,
        .subsys_id = VIRTIO_PCI_SUBSYS_ID,
        .ops = &g_pci_ops,
        .opaque = v,
    };
    int rc = mem_region_create_mmio(vm, v->name, VPCI_BAR_BYTES, &g_bar_ops, v, &v->bar);
    if (!rc)
        rc = pci_dev_register(bus, devfn, &p, &v->pci);
    if (!rc)
        rc = pci_dev_bar_mem(v->pci, VPCI_BAR, VPCI_BAR_BYTES, PCI_BAR_MEM_64 | PCI_BAR_MEM_PREFETCH, v->bar);
    if (!rc)
        rc = pci_dev_set_irq_pin(v->pci, 1);
    if (!rc)
        rc = caps_add(v);
    if (rc) {
        LOG_ERR("%s: cannot set up the virtio-pci function at %02x.%x: %s", v->name, PCI_SLOT(devfn),
                PCI_FUNC(devfn), rt_err_str(rc));
        virtio_pci_destroy(v);
        return rc;
    }
    virtio_pci_reset(v);
    *out = v;
    return 0;
}

void virtio_pci_destroy(struct virtio_dev *vdev)
{
    if (!vdev)
        return;
    if (vdev->pci)
        pci_dev_unregister(vdev->pci);
    if (vdev->bar)
        mem_region_destroy(vdev->bar);
    free(vdev);
}

void virtio_pci_reset(struct virtio_dev *vdev)
{
    pci_dev_reset(vdev->pci);
    transport_reset(vdev);
}

/* ---- accessors ------------------------------------------------------------------------------------- */

struct vm *virtio_dev_vm(const struct virtio_dev *vdev) { return vdev->vm; }
struct pci_dev *virtio_dev_pci(const struct virtio_dev *vdev) { return vdev->pci; }
uint64_t virtio_dev_features(const struct virtio_dev *vdev) { return vdev->driver_features; }
uint8_t virtio_dev_status(const struct virtio_dev *vdev) { return vdev->status; }

struct virtq *virtio_dev_queue(struct virtio_dev *vdev, unsigned index)
{
    return index < vdev->num_queues ? &vdev->queues[index] : NULL;
}

bool virtio_dev_is_running(const struct virtio_dev *vdev)
{
    return vdev->num_queues > 0 && vdev->queues[0].running;
}

/* ---- saved state ------------------------------------------------------------------------------------ */

/*
 * The transport's part comes before the PCI function's, so load can check all of
 * it before pci_dev_load changes anything.
 */
void virtio_pci_save(struct virtio_dev *vdev, struct ssm *ssm)
{
    ssm_put_u32(ssm, VPCI_SSM_VERSION);
    ssm_put_u32(ssm, vdev->num_queues);
    ssm_put_u64(ssm, vdev->host_features);
    ssm_put_u32(ssm, vdev->device_feature_select);
    ssm_put_u32(ssm, vdev->driver_feature_select);
    ssm_put_u64(ssm, vdev->driver_features);
    ssm_put_u8(ssm, vdev->status);
    ssm_put_u8(ssm, vdev->config_generation);
    ssm_put_u16(ssm, vdev->queue_select);
    ssm_put_u8(ssm, vdev->isr);
    for (unsigned i = 0; i < vdev->num_queues; i++)
        virtq_save(&vdev->queues[i], ssm);
    pci_dev_save(vdev->pci, ssm);
}

int virtio_pci_load(struct virtio_dev *vdev, struct ssm *ssm)
{
    uint32_t version = 0, num_queues = 0, dev_sel = 0, drv_sel = 0;
    uint64_t host_features = 0, driver_features = 0;
    uint8_t status = 0, generation = 0, isr = 0;
    uint16_t queue_select = 0;
    ssm_get_u32(ssm, &version);
    ssm_get_u32(ssm, &num_queues);
    ssm_get_u64(ssm, &host_features);
    ssm_get_u32(ssm, &dev_sel);
    ssm_get_u32(ssm, &drv_sel);
    ssm_get_u64(ssm, &driver_features);
    ssm_get_u8(ssm, &status);
    ssm_get_u8(ssm, &generation);
    ssm_get_u16(ssm, &queue_select);
    ssm_get_u8(ssm, &isr);
    int rc = ssm_status(ssm);
    if (rc)
        return rc;
    if (version != VPCI_SSM_VERSION) {
        LOG_ERR("%s: saved virtio-pci state has version %u (this build reads %u)", vdev->name, version,
                VPCI_SSM_VERSION);
        return VERR_SSM_VERSION;
    }
    if (num_queues != vdev->num_queues || host_features != vdev->host_features ||
        (driver_features & ~host_features) || (isr & ~(VIRTIO_ISR_QUEUE | VIRTIO_ISR_CONFIG))) {
        LOG_ERR("%s: saved virtio-pci state does not match this device (queues %u, features 0x%llx)", vdev->name,
                num_queues, (unsigned long long)host_features);
        return VERR_SSM_CORRUPT;
    }
    struct virtq queues[VIRTIO_QUEUES_MAX];
    memcpy(queues, vdev->queues, sizeof(queues));
    for (unsigned i = 0; i < num_queues; i++) {
        rc = virtq_load(&queues[i], ssm);
        if (rc)
            return rc;
    }
    rc = pci_dev_load(vdev->pci, ssm);
    if (rc)
        return rc;
    memcpy(vdev->queues, queues, sizeof(queues));
    vdev->device_feature_select = dev_sel;
    vdev->driver_feature_select = drv_sel;
    vdev->driver_features = driver_features;
    vdev->status = status;
    vdev->config_generation = generation;
    vdev->queue_select = queue_select;
    vdev->isr = isr;
    vdev->error_logged = (status & VIRTIO_STATUS_NEEDS_RESET) != 0;
    running_update(vdev);
    irq_update(vdev);
    return 0;
}
