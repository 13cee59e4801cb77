/* tstVirtioBlk.c - virtio-blk over virtio-pci with a small test driver: IDs, capabilities, negotiation, I/O against a raw image, errors, interrupts, malformed rings, reset, saved state, garbage. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "vireo/pci.h"
#include "vireo/storage.h"
#include "vireo/virtio.h"

#define RAM_BYTES    (32u << 20)
#define BAR_GPA      0xe0000000ull
#define SLOT         5
#define DEVFN        PCI_DEVFN(SLOT, 0)
#define PIRQ_IRQ     11 /* slot 5 INTA# -> PIRQA, routed here */
#define DISK_SECTORS 2048u
#define QSIZE        16

/* Guest memory the test driver uses. */
#define DESC_GPA   0x100000u
#define AVAIL_GPA  0x102000u
#define USED_GPA   0x103000u
#define TABLE_GPA  0x104000u /* indirect tables, 0x100 bytes per head */
#define HDR_GPA    0x106000u /* request headers, 32 bytes per slot */
#define STATUS_GPA 0x107000u /* status bytes, one per slot */
#define DATA_GPA   0x200000u

/* Common configuration offsets (virtio 1.2 section 4.1.4.3). */
#define CC_DFSELECT 0x00
#define CC_DF       0x04
#define CC_GFSELECT 0x08
#define CC_GF       0x0c
#define CC_MSIX     0x10
#define CC_NUMQ     0x12
#define CC_STATUS   0x14
#define CC_GEN      0x15
#define CC_QSELECT  0x16
#define CC_QSIZE    0x18
#define CC_QMSIX    0x1a
#define CC_QENABLE  0x1c
#define CC_QNOTIFY  0x1e
#define CC_QDESC    0x20
#define CC_QDRIVER  0x28
#define CC_QDEVICE  0x30

/* virtio-blk (section 5.2). */
#define F_SIZE_MAX     1
#define F_SEG_MAX      2
#define F_RO           5
#define F_BLK_SIZE     6
#define F_FLUSH        9
#define F_MQ           12
#define F_DISCARD      13
#define F_WRITE_ZEROES 14
#define T_IN           0
#define T_OUT          1
#define T_FLUSH        4
#define T_GET_ID       8
#define T_DISCARD      11
#define T_WRITE_ZEROES 13
#define S_OK     0
#define S_IOERR  1
#define S_UNSUPP 2

#define DESC_F_NEXT     1
#define DESC_F_WRITE    2
#define DESC_F_INDIRECT 4

#define ALL_FEATURES UINT64_MAX

struct tdev {
    struct vm *vm;
    struct pdm_dev *chip, *dev;
    char dir[64], path[96];
    uint32_t common, notify, isr, devcfg; /* BAR offsets from the capabilities */
    uint32_t notify_mul;
    unsigned pci_cap; /* config offset of the PCI configuration access capability */
    uint64_t features;
    uint16_t avail_idx, used_idx;
    unsigned next_desc;
};

/* ---- config space and BAR access ---- */

#define CFG_ADDR(devfn, reg) (0x80000000u | (uint32_t)(devfn) << 8 | ((reg)&0xfc))

static uint32_t cfg_read(struct vm *vm, unsigned devfn, unsigned reg, unsigned size)
{
    harness_outl(vm, 0xcf8, CFG_ADDR(devfn, reg));
    uint16_t port = (uint16_t)(0xcfc + (reg & 3));
    return size == 1 ? harness_inb(vm, port) : size == 2 ? harness_inw(vm, port) : harness_inl(vm, port);
}

static void cfg_write(struct vm *vm, unsigned devfn, unsigned reg, uint32_t value, unsigned size)
{
    harness_outl(vm, 0xcf8, CFG_ADDR(devfn, reg));
    uint16_t port = (uint16_t)(0xcfc + (reg & 3));
    if (size == 1)
        harness_outb(vm, port, (uint8_t)value);
    else if (size == 2)
        harness_outw(vm, port, (uint16_t)value);
    else
        harness_outl(vm, port, value);
}

static uint32_t bar_rd(struct tdev *t, uint32_t off, unsigned size)
{
    return (uint32_t)mem_mmio_read(t->vm, BAR_GPA + off, size);
}

static void bar_wr(struct tdev *t, uint32_t off, uint32_t value, unsigned size)
{
    mem_mmio_write(t->vm, BAR_GPA + off, value, size);
}

static uint8_t status_rd(struct tdev *t) { return (uint8_t)bar_rd(t, t->common + CC_STATUS, 1); }
static void status_wr(struct tdev *t, uint8_t v) { bar_wr(t, t->common + CC_STATUS, v, 1); }

static void w16(struct vm *vm, uint64_t gpa, uint16_t v) { assert_int_equal(mem_write(vm, gpa, &v, 2), 0); }
static void w32(struct vm *vm, uint64_t gpa, uint32_t v) { assert_int_equal(mem_write(vm, gpa, &v, 4), 0); }
static void w64(struct vm *vm, uint64_t gpa, uint64_t v) { assert_int_equal(mem_write(vm, gpa, &v, 8), 0); }
static uint16_t r16(struct vm *vm, uint64_t gpa)
{
    uint16_t v;
    assert_int_equal(mem_read(vm, gpa, &v, 2), 0);
    return v;
}
static uint32_t r32(struct vm *vm, uint64_t gpa)
{
    uint32_t v;
    assert_int_equal(mem_read(vm, gpa, &v, 4), 0);
    return v;
}
static uint8_t r8(struct vm *vm, uint64_t gpa)
{
    uint8_t v;
    assert_int_equal(mem_read(vm, gpa, &v, 1), 0);
    return v;
}

/* ---- the disk image ---- */

static uint8_t pattern(uint64_t off)
{
    return (uint8_t)(off * 31 + (off >> 9) * 7 + 1);
}

static void image_create(struct tdev *t)
{
    strcpy(t->dir, "/tmp/tstVirtioBlk.XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->path, sizeof(t->path), "%s/disk.img", t->dir);
    int fd = open(t->path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    assert_true(fd >= 0);
    uint8_t buf[4096];
    for (uint64_t off = 0; off < DISK_SECTORS * 512ull; off += sizeof(buf)) {
        for (unsigned i = 0; i < sizeof(buf); i++)
            buf[i] = pattern(off + i);
        assert_int_equal(write(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
    }
    close(fd);
}

static void image_read(struct tdev *t, uint64_t off, void *buf, size_t len)
{
    int fd = open(t->path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, buf, len, (off_t)off), (ssize_t)len);
    close(fd);
}

/* Whether the image holds the original pattern over [off, off + len). */
static bool image_is_pattern(struct tdev *t, uint64_t off, size_t len)
{
    uint8_t *buf = malloc(len);
    image_read(t, off, buf, len);
    bool same = true;
    for (size_t i = 0; i < len && same; i++)
        same = buf[i] == pattern(off + i);
    free(buf);
    return same;
}

static bool image_is_zero(struct tdev *t, uint64_t off, size_t len)
{
    uint8_t *buf = malloc(len);
    image_read(t, off, buf, len);
    bool zero = true;
    for (size_t i = 0; i < len && zero; i++)
        zero = buf[i] == 0;
    free(buf);
    return zero;
}

/* ---- fixture ---- */

static int tdev_try_create(struct tdev *t, const char *extra_cfg)
{
    char cfg[256];
    snprintf(cfg, sizeof(cfg), "slot=%d,drive.path=%s%s%s", SLOT, t->path, extra_cfg ? "," : "",
             extra_cfg ? extra_cfg : "");
    return harness_dev_try_create(t->vm, &g_dev_virtio_blk, "vblk0", cfg, &t->dev);
}

/* Firmware's part: BAR4 placed, memory decoding and bus mastering on. */
static void pci_program(struct tdev *t)
{
    cfg_write(t->vm, DEVFN, PCI_CFG_BAR0 + 16, (uint32_t)BAR_GPA, 4);
    cfg_write(t->vm, DEVFN, PCI_CFG_BAR0 + 20, (uint32_t)(BAR_GPA >> 32), 4);
    cfg_write(t->vm, DEVFN, PCI_CFG_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, 2);
}

/* Walks the vendor capabilities (section 4.1.4) as a driver does. */
static void caps_find(struct tdev *t)
{
    unsigned found = 0;
    for (unsigned ptr = cfg_read(t->vm, DEVFN, PCI_CFG_CAP_PTR, 1) & ~3u, n = 0; ptr && n < 48;
         ptr = cfg_read(t->vm, DEVFN, ptr + 1, 1) & ~3u, n++) {
        if (cfg_read(t->vm, DEVFN, ptr, 1) != PCI_CAP_ID_VENDOR)
            continue;
        unsigned type = cfg_read(t->vm, DEVFN, ptr + 3, 1);
        unsigned bar = cfg_read(t->vm, DEVFN, ptr + 4, 1);
        uint32_t offset = cfg_read(t->vm, DEVFN, ptr + 8, 4);
        if (type != 5)
            assert_int_equal(bar, 4);
        switch (type) {
        case 1: t->common = offset; break;
        case 2:
            t->notify = offset;
            t->notify_mul = cfg_read(t->vm, DEVFN, ptr + 16, 4);
            break;
        case 3: t->isr = offset; break;
        case 4: t->devcfg = offset; break;
        case 5: t->pci_cap = ptr; break;
        default: fail();
        }
        found |= 1u << type;
    }
    assert_int_equal(found, 0x3e);
}

static void tdev_setup(struct tdev *t, const char *extra_cfg)
{
    memset(t, 0, sizeof(*t));
    t->vm = harness_vm_create(RAM_BYTES);
    t->chip = harness_dev_create(t->vm, &g_dev_i440fx, "pci", NULL);
    image_create(t);
    assert_int_equal(tdev_try_create(t, extra_cfg), 0);
    caps_find(t);
    cfg_write(t->vm, PCI_DEVFN(1, 0), 0x60, PIRQ_IRQ, 1);
    pci_program(t);
}

static void tdev_teardown(struct tdev *t)
{
    harness_vm_destroy(t->vm);
    unlink(t->path);
    rmdir(t->dir);
}

static uint64_t device_features(struct tdev *t)
{
    bar_wr(t, t->common + CC_DFSELECT, 0, 4);
    uint64_t lo = bar_rd(t, t->common + CC_DF, 4);
    bar_wr(t, t->common + CC_DFSELECT, 1, 4);
    uint64_t hi = bar_rd(t, t->common + CC_DF, 4);
    return lo | hi << 32;
}

static void driver_features_write(struct tdev *t, uint64_t features)
{
    bar_wr(t, t->common + CC_GFSELECT, 0, 4);
    bar_wr(t, t->common + CC_GF, (uint32_t)features, 4);
    bar_wr(t, t->common + CC_GFSELECT, 1, 4);
    bar_wr(t, t->common + CC_GF, (uint32_t)(features >> 32), 4);
}

static void ring_clear(struct tdev *t)
{
    static const uint8_t zero[0x8000];
    assert_int_equal(mem_write(t->vm, DESC_GPA, zero, sizeof(zero)), 0);
    t->avail_idx = t->used_idx = 0;
    t->next_desc = 0;
}

/* Section 3.1.1: reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK, queue setup, DRIVER_OK. */
static void drv_init(struct tdev *t, uint64_t want)
{
    status_wr(t, 0);
    assert_int_equal(status_rd(t), 0);
    status_wr(t, VIRTIO_STATUS_ACKNOWLEDGE);
    status_wr(t, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    t->features = device_features(t) & want;
    driver_features_write(t, t->features);
    status_wr(t, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
    assert_true(status_rd(t) & VIRTIO_STATUS_FEATURES_OK);
    ring_clear(t);
    bar_wr(t, t->common + CC_QSELECT, 0, 2);
    assert_int_equal(bar_rd(t, t->common + CC_QSIZE, 2), 256);
    bar_wr(t, t->common + CC_QSIZE, QSIZE, 2);
    bar_wr(t, t->common + CC_QDESC, DESC_GPA, 4);
    bar_wr(t, t->common + CC_QDESC + 4, 0, 4);
    bar_wr(t, t->common + CC_QDRIVER, AVAIL_GPA, 4);
    bar_wr(t, t->common + CC_QDRIVER + 4, 0, 4);
    bar_wr(t, t->common + CC_QDEVICE, USED_GPA, 4);
    bar_wr(t, t->common + CC_QDEVICE + 4, 0, 4);
    bar_wr(t, t->common + CC_QENABLE, 1, 2);
    assert_int_equal(bar_rd(t, t->common + CC_QENABLE, 2), 1);
    status_wr(t, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
                     VIRTIO_STATUS_DRIVER_OK);
    assert_int_equal(status_rd(t), 0x0f);
}

/* ---- requests ---- */

struct tseg {
    uint64_t gpa;
    uint32_t len;
    bool write; /* device-writable */
};

/* Puts a chain in the descriptor table (or one indirect table) and makes it available. */
static uint16_t post_chain(struct tdev *t, const struct tseg *seg, unsigned n, bool indirect)
{
    uint16_t head = (uint16_t)(t->next_desc % QSIZE);
    uint64_t table = indirect ? TABLE_GPA + 0x100ull * head : DESC_GPA;
    for (unsigned i = 0; i < n; i++) {
        unsigned idx = indirect ? i : (t->next_desc + i) % QSIZE;
        unsigned next = indirect ? i + 1 : (t->next_desc + i + 1) % QSIZE;
        uint64_t d = table + 16ull * idx;
        w64(t->vm, d, seg[i].gpa);
        w32(t->vm, d + 8, seg[i].len);
        w16(t->vm, d + 12, (uint16_t)((seg[i].write ? DESC_F_WRITE : 0) | (i + 1 < n ? DESC_F_NEXT : 0)));
        w16(t->vm, d + 14, (uint16_t)next);
    }
    if (indirect) {
        uint64_t d = DESC_GPA + 16ull * head;
        w64(t->vm, d, table);
        w32(t->vm, d + 8, 16 * n);
        w16(t->vm, d + 12, DESC_F_INDIRECT);
        w16(t->vm, d + 14, 0);
        t->next_desc++;
    } else {
        t->next_desc += n;
    }
    w16(t->vm, AVAIL_GPA + 4 + 2 * (t->avail_idx % QSIZE), head);
    t->avail_idx++;
    w16(t->vm, AVAIL_GPA + 2, t->avail_idx);
    return head;
}

static void kick(struct tdev *t)
{
    bar_wr(t, t->notify + 0 * t->notify_mul, 0, 2);
}

/* The header for a request in slot and its status byte (preset to a value the device never writes). */
static void header(struct tdev *t, unsigned slot, uint32_t type, uint64_t sector)
{
    w32(t->vm, HDR_GPA + 32 * slot, type);
    w32(t->vm, HDR_GPA + 32 * slot + 4, 0);
    w64(t->vm, HDR_GPA + 32 * slot + 8, sector);
    uint8_t x = 0xee;
    assert_int_equal(mem_write(t->vm, STATUS_GPA + slot, &x, 1), 0);
}

/* header, one data buffer (device-writable for reads), status. */
static uint16_t post_req(struct tdev *t, unsigned slot, uint32_t type, uint64_t sector, uint64_t data_gpa,
                         uint32_t data_len, bool data_write)
{
    header(t, slot, type, sector);
    struct tseg seg[3] = {{HDR_GPA + 32 * slot, 16, false}};
    unsigned n = 1;
    if (data_len)
        seg[n++] = (struct tseg){data_gpa, data_len, data_write};
    seg[n++] = (struct tseg){STATUS_GPA + slot, 1, true};
    return post_chain(t, seg, n, false);
}

/* Runs pending I/O and takes the next used element: its id and length; returns slot's status byte. */
static uint8_t complete(struct tdev *t, unsigned slot, uint16_t head, uint32_t *len)
{
    harness_drain_io(t->vm);
    assert_int_equal(r16(t->vm, USED_GPA + 2), (uint16_t)(t->used_idx + 1));
    uint64_t e = USED_GPA + 4 + 8ull * (t->used_idx % QSIZE);
    assert_int_equal(r32(t->vm, e), head);
    if (len)
        *len = r32(t->vm, e + 4);
    t->used_idx++;
    return r8(t->vm, STATUS_GPA + slot);
}

static uint8_t run_req(struct tdev *t, uint32_t type, uint64_t sector, uint64_t data_gpa, uint32_t data_len,
                       bool data_write, uint32_t *len)
{
    uint16_t head = post_req(t, 0, type, sector, data_gpa, data_len, data_write);
    kick(t);
    return complete(t, 0, head, len);
}

/* Whether guest memory at gpa holds the image's original pattern for [off, off + len). */
static bool guest_is_pattern(struct tdev *t, uint64_t gpa, uint64_t off, size_t len)
{
    uint8_t *buf = malloc(len);
    assert_int_equal(mem_read(t->vm, gpa, buf, len), 0);
    bool same = true;
    for (size_t i = 0; i < len && same; i++)
        same = buf[i] == pattern(off + i);
    free(buf);
    return same;
}

static void guest_fill(struct tdev *t, uint64_t gpa, uint8_t seed, size_t len)
{
    uint8_t *buf = malloc(len);
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(seed + i * 13);
    assert_int_equal(mem_write(t->vm, gpa, buf, len), 0);
    free(buf);
}

static bool image_is_fill(struct tdev *t, uint64_t off, uint8_t seed, size_t len)
{
    uint8_t *buf = malloc(len);
    image_read(t, off, buf, len);
    bool same = true;
    for (size_t i = 0; i < len && same; i++)
        same = buf[i] == (uint8_t)(seed + i * 13);
    free(buf);
    return same;
}

/* ---- tests ---- */

static void test_ids_and_caps(void **state)
{
    (void)state;
    struct tdev t;
    tdev_setup(&t, NULL);
    struct vm *vm = t.vm;
    assert_int_equal(cfg_read(vm, DEVFN, PCI_CFG_VENDOR_ID, 2), 0x1af4);
    assert_int_equal(cfg_read(vm, DEVFN, PCI_CFG_DEVICE_ID, 2), 0x1042);
    assert_int_equal(cfg_read(vm, DEVFN, PCI_CFG_REVISION_ID, 1), 1);
    assert_int_equal(cfg_read(vm, DEVFN, PCI_CFG_CLASS_PROG, 1), 0x00);
    assert_int_equal(cfg_read(vm, DEVFN, PCI_CFG_CLASS_DEVICE, 2), 0x0100);
    assert_int_equal(cfg_read(vm, DEVFN, PCI_CFG_SUBSYS_VENDOR_ID, 2), 0x1af4);
    assert_int_equal(cfg_read(vm, DEVFN, PCI_CFG_SUBSYS_ID, 2), 0x1100);
    assert_int_equal(cfg_read(vm, DEVFN, PCI_CFG_INTERRUPT_PIN, 1), 1);
    assert_true(cfg_read(vm, DEVFN, PCI_CFG_STATUS, 2) & PCI_STATUS_CAP_LIST);

    /* BAR4/5: one 16 KiB 64-bit prefetchable memory BAR; no legacy I/O BAR. */
    assert_int_equal(cfg_read(vm, DEVFN, PCI_CFG_BAR0, 4), 0);
    assert_int_equal(cfg_read(vm, DEVFN, PCI_CFG_BAR0 + 16, 4), (uint32_t)BAR_GPA | 0xc);
    cfg_write(vm, DEVFN, PCI_CFG_BAR0 + 16, 0xffffffffu, 4);
    assert_int_equal(cfg_read(vm, DEVFN, PCI_CFG_BAR0 + 16, 4), 0xffffc00cu);
    cfg_write(vm, DEVFN, PCI_CFG_BAR0 + 16, (uint32_t)BAR_GPA, 4);

    /* Layout: each structure in the BAR, aligned as section 4.1.4 asks. */
    assert_int_equal(t.common % 4, 0);
    assert_int_equal(t.notify % 2, 0);
    assert_int_equal(t.devcfg % 4, 0);
    assert_int_equal(t.notify_mul % 2, 0);
    assert_true(t.notify_mul > 0);
    for (unsigned ptr = cfg_read(vm, DEVFN, PCI_CFG_CAP_PTR, 1); ptr; ptr = cfg_read(vm, DEVFN, ptr + 1, 1)) {
        unsigned type = cfg_read(vm, DEVFN, ptr + 3, 1);
        uint32_t offset = cfg_read(vm, DEVFN, ptr + 8, 4), length = cfg_read(vm, DEVFN, ptr + 12, 4);
        assert_int_equal(cfg_read(vm, DEVFN, ptr + 2, 1), type == 2 || type == 5 ? 20 : 16);
        if (type == 1)
            assert_true(length >= 0x38);
        if (type == 4)
            assert_true(length >= 60);
        if (type != 5)
            assert_true(offset + length <= 0x4000);
    }

    /* Common configuration at rest: one queue, no MSI-X, status 0. */
    assert_int_equal(bar_rd(&t, t.common + CC_NUMQ, 2), 1);
    assert_int_equal(bar_rd(&t, t.common + CC_MSIX, 2), 0xffff);
    bar_wr(&t, t.common + CC_MSIX, 0, 2);
    assert_int_equal(bar_rd(&t, t.common + CC_MSIX, 2), 0xffff);
    assert_int_equal(bar_rd(&t, t.common + CC_QMSIX, 2), 0xffff);
    assert_int_equal(status_rd(&t), 0);
    assert_int_equal(bar_rd(&t, t.common + CC_QSIZE, 2), 256);
    assert_int_equal(bar_rd(&t, t.common + CC_QNOTIFY, 2), 0);
    /* A queue that does not exist reads size 0. */
    bar_wr(&t, t.common + CC_QSELECT, 1, 2);
    assert_int_equal(bar_rd(&t, t.common + CC_QSIZE, 2), 0);
    assert_int_equal(bar_rd(&t, t.common + CC_QSELECT, 2), 1);
    tdev_teardown(&t);
}

static void test_feature_negotiation(void **state)
{
    (void)state;
    struct tdev t;
    tdev_setup(&t, NULL);
    uint64_t f = device_features(&t);
    assert_true(f & VIRTIO_BIT(VIRTIO_F_VERSION_1));
    assert_true(f & VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC));
    assert_true(f & VIRTIO_BIT(VIRTIO_F_EVENT_IDX));
    assert_false(f & VIRTIO_BIT(VIRTIO_F_ACCESS_PLATFORM));
    assert_false(f & VIRTIO_BIT(VIRTIO_F_RING_PACKED));
    uint64_t blk = VIRTIO_BIT(F_SIZE_MAX) | VIRTIO_BIT(F_SEG_MAX) | VIRTIO_BIT(F_BLK_SIZE) | VIRTIO_BIT(F_FLUSH) |
                   VIRTIO_BIT(F_DISCARD) | VIRTIO_BIT(F_WRITE_ZEROES);
    assert_int_equal(f & 0xffffffffu & ~(VIRTIO_BIT(28) | VIRTIO_BIT(29)), blk);
    assert_int_equal(f >> 32, 1);
    /* Feature words past the 64 bits read zero. */
    bar_wr(&t, t.common + CC_DFSELECT, 2, 4);
    assert_int_equal(bar_rd(&t, t.common + CC_DF, 4), 0);

    /* A feature that was not offered (MQ): FEATURES_OK does not stick. */
    status_wr(&t, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    driver_features_write(&t, f | VIRTIO_BIT(F_MQ));
    status_wr(&t, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
    assert_int_equal(status_rd(&t), VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    /* Without VERSION_1 (a legacy driver) either. */
    status_wr(&t, 0);
    status_wr(&t, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    driver_features_write(&t, f & 0xffffffffu);
    status_wr(&t, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
    assert_false(status_rd(&t) & VIRTIO_STATUS_FEATURES_OK);
    /* Queues do not run without accepted features, even when set up and with DRIVER_OK. */
    ring_clear(&t);
    bar_wr(&t, t.common + CC_QSELECT, 0, 2);
    bar_wr(&t, t.common + CC_QSIZE, QSIZE, 2);
    bar_wr(&t, t.common + CC_QDESC, DESC_GPA, 4);
    bar_wr(&t, t.common + CC_QDRIVER, AVAIL_GPA, 4);
    bar_wr(&t, t.common + CC_QDEVICE, USED_GPA, 4);
    bar_wr(&t, t.common + CC_QENABLE, 1, 2);
    assert_int_equal(bar_rd(&t, t.common + CC_QENABLE, 2), 1);
    status_wr(&t, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_DRIVER_OK);
    post_req(&t, 0, T_IN, 0, DATA_GPA, 512, true);
    kick(&t);
    harness_drain_io(t.vm);
    assert_int_equal(r16(t.vm, USED_GPA + 2), 0);

    /* A subset with VERSION_1 is accepted and then fixed until reset. */
    status_wr(&t, 0);
    status_wr(&t, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    uint64_t want = VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(F_FLUSH);
    driver_features_write(&t, want);
    status_wr(&t, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
    assert_true(status_rd(&t) & VIRTIO_STATUS_FEATURES_OK);
    driver_features_write(&t, f);
    bar_wr(&t, t.common + CC_GFSELECT, 0, 4);
    assert_int_equal(bar_rd(&t, t.common + CC_GF, 4), (uint32_t)want);
    /* The driver cannot clear bits, nor set NEEDS_RESET. */
    status_wr(&t, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_NEEDS_RESET);
    assert_int_equal(status_rd(&t), VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);

    /* Device configuration (section 5.2.4). */
    assert_int_equal(bar_rd(&t, t.devcfg + 0, 4), DISK_SECTORS);
    assert_int_equal(bar_rd(&t, t.devcfg + 4, 4), 0);
    assert_int_equal(bar_rd(&t, t.devcfg + 8, 4), 256 * 1024);
    assert_int_equal(bar_rd(&t, t.devcfg + 12, 4), 254);
    assert_int_equal(bar_rd(&t, t.devcfg + 20, 4), 512);
    assert_int_equal(bar_rd(&t, t.devcfg + 20, 2), 512);
    assert_int_equal(bar_rd(&t, t.devcfg + 21, 1), 2);
    assert_int_equal(bar_rd(&t, t.devcfg + 40, 4), 16);
    assert_true(bar_rd(&t, t.devcfg + 36, 4) > 0);
    assert_true(bar_rd(&t, t.devcfg + 48, 4) > 0);
    assert_int_equal(bar_rd(&t, t.devcfg + 0x800, 4), 0);
    /* The configuration is read-only: writes change nothing. */
    bar_wr(&t, t.devcfg + 0, 5, 4);
    assert_int_equal(bar_rd(&t, t.devcfg + 0, 4), DISK_SECTORS);
    tdev_teardown(&t);
}

static void test_read_write(void **state)
{
    (void)state;
    struct tdev t;
    tdev_setup(&t, NULL);
    drv_init(&t, ALL_FEATURES);
    uint32_t len;

    /* Read four sectors at 100: the guest gets the image's bytes, the used length counts data + status. */
    assert_int_equal(run_req(&t, T_IN, 100, DATA_GPA, 2048, true, &len), S_OK);
    assert_int_equal(len, 2049);
    assert_true(guest_is_pattern(&t, DATA_GPA, 100 * 512, 2048));

    /* Write two sectors at 7; the file has them, its neighbours are untouched. */
    guest_fill(&t, DATA_GPA + 0x10000, 0x42, 1024);
    assert_int_equal(run_req(&t, T_OUT, 7, DATA_GPA + 0x10000, 1024, false, &len), S_OK);
    assert_int_equal(len, 1);
    assert_true(image_is_fill(&t, 7 * 512, 0x42, 1024));
    assert_true(image_is_pattern(&t, 6 * 512, 512));
    assert_true(image_is_pattern(&t, 9 * 512, 512));
    /* And reading it back returns what was written. */
    assert_int_equal(run_req(&t, T_IN, 7, DATA_GPA + 0x20000, 1024, true, NULL), S_OK);
    uint8_t a[1024], b[1024];
    assert_int_equal(mem_read(t.vm, DATA_GPA + 0x10000, a, sizeof(a)), 0);
    assert_int_equal(mem_read(t.vm, DATA_GPA + 0x20000, b, sizeof(b)), 0);
    assert_memory_equal(a, b, sizeof(a));

    /* The last sector of the disk. */
    assert_int_equal(run_req(&t, T_IN, DISK_SECTORS - 1, DATA_GPA, 512, true, NULL), S_OK);
    assert_true(guest_is_pattern(&t, DATA_GPA, (DISK_SECTORS - 1) * 512ull, 512));
    tdev_teardown(&t);
}

static void test_split_and_indirect(void **state)
{
    (void)state;
    struct tdev t;
    tdev_setup(&t, NULL);
    drv_init(&t, ALL_FEATURES);
    uint32_t len;

    /* A read split over three odd-sized buffers, the last one also holding the status byte. */
    header(&t, 0, T_IN, 20);
    const struct tseg rd[] = {
        {HDR_GPA, 16, false},
        {DATA_GPA + 0x1000, 100, true},
        {DATA_GPA + 0x3000, 700, true},
        {DATA_GPA + 0x5000, 225, true}, /* 224 data bytes + the status */
    };
    uint16_t head = post_chain(&t, rd, 4, false);
    kick(&t);
    harness_drain_io(t.vm);
    assert_int_equal(r16(t.vm, USED_GPA + 2), 1);
    assert_int_equal(r32(t.vm, USED_GPA + 4), head);
    assert_int_equal(r32(t.vm, USED_GPA + 8), 1025);
    t.used_idx++;
    assert_int_equal(r8(t.vm, DATA_GPA + 0x5000 + 224), S_OK);
    assert_true(guest_is_pattern(&t, DATA_GPA + 0x1000, 20 * 512, 100));
    assert_true(guest_is_pattern(&t, DATA_GPA + 0x3000, 20 * 512 + 100, 700));
    assert_true(guest_is_pattern(&t, DATA_GPA + 0x5000, 20 * 512 + 800, 224));

    /* A write whose header and first data bytes share one buffer, through an indirect table. */
    guest_fill(&t, DATA_GPA + 0x8000 + 16, 0x99, 1024);
    w32(t.vm, DATA_GPA + 0x8000, T_OUT);
    w32(t.vm, DATA_GPA + 0x8004, 0);
    w64(t.vm, DATA_GPA + 0x8008, 30);
    const struct tseg wr[] = {
        {DATA_GPA + 0x8000, 16 + 300, false},
        {DATA_GPA + 0x8000 + 316, 724, false},
        {STATUS_GPA, 1, true},
    };
    uint8_t x = 0xee;
    assert_int_equal(mem_write(t.vm, STATUS_GPA, &x, 1), 0);
    head = post_chain(&t, wr, 3, true);
    kick(&t);
    assert_int_equal(complete(&t, 0, head, &len), S_OK);
    assert_int_equal(len, 1);
    assert_true(image_is_fill(&t, 30 * 512, 0x99, 1024));

    /* An indirect read of 16 single-sector buffers (more than one page of the guest). */
    header(&t, 0, T_IN, 300);
    struct tseg many[18];
    many[0] = (struct tseg){HDR_GPA, 16, false};
    for (unsigned i = 0; i < 16; i++)
        many[1 + i] = (struct tseg){DATA_GPA + 0x40000 + 0x1000ull * (15 - i), 512, true};
    many[17] = (struct tseg){STATUS_GPA, 1, true};
    head = post_chain(&t, many, 18, true);
    kick(&t);
    assert_int_equal(complete(&t, 0, head, &len), S_OK);
    assert_int_equal(len, 16 * 512 + 1);
    for (unsigned i = 0; i < 16; i++)
        assert_true(guest_is_pattern(&t, DATA_GPA + 0x40000 + 0x1000ull * (15 - i), (300 + i) * 512ull, 512));
    tdev_teardown(&t);
}

static void test_inflight(void **state)
{
    (void)state;
    struct tdev t;
    tdev_setup(&t, NULL);
    drv_init(&t, ALL_FEATURES);
    /* Four requests made available before one notification: all go out, all come back. */
    uint16_t heads[4];
    for (unsigned i = 0; i < 4; i++)
        heads[i] = post_req(&t, i, T_IN, 64 * i, DATA_GPA + 0x10000 * i, 4096, true);
    kick(&t);
    harness_drain_io(t.vm);
    assert_int_equal(r16(t.vm, USED_GPA + 2), 4);
    unsigned seen = 0;
    for (unsigned i = 0; i < 4; i++) {
        uint32_t id = r32(t.vm, USED_GPA + 4 + 8 * i);
        for (unsigned j = 0; j < 4; j++)
            if (heads[j] == id)
                seen |= 1u << j;
        assert_int_equal(r32(t.vm, USED_GPA + 8 + 8 * i), 4097);
    }
    assert_int_equal(seen, 0xf);
    for (unsigned i = 0; i < 4; i++) {
        assert_int_equal(r8(t.vm, STATUS_GPA + i), S_OK);
        assert_true(guest_is_pattern(&t, DATA_GPA + 0x10000 * i, 64 * 512ull * i, 4096));
    }
    tdev_teardown(&t);
}

/*
 * A driver that makes one chain available again and again without waiting for it:
 * the device holds at most 256 requests, leaves the rest in the ring (10 here, fewer
 * than the ring holds) and takes them as earlier ones complete.
 */
static void test_request_pool_limit(void **state)
{
    (void)state;
    struct tdev t;
    tdev_setup(&t, NULL);
    drv_init(&t, ALL_FEATURES);
    uint16_t head = post_req(&t, 0, T_IN, 50, DATA_GPA, 512, true);
    kick(&t);
    for (unsigned i = 1; i < 266; i++) {
        w16(t.vm, AVAIL_GPA + 4 + 2 * (t.avail_idx % QSIZE), head);
        t.avail_idx++;
        w16(t.vm, AVAIL_GPA + 2, t.avail_idx);
        kick(&t);
    }
    struct drive *drive = drive_find(t.vm, "vblk0");
    assert_non_null(drive);
    assert_int_equal(drive_inflight(drive), 256);
    harness_drain_io(t.vm);
    assert_int_equal(drive_inflight(drive), 0);
    assert_int_equal(r16(t.vm, USED_GPA + 2), 266);
    assert_int_equal(r8(t.vm, STATUS_GPA), S_OK);
    assert_true(guest_is_pattern(&t, DATA_GPA, 50 * 512, 512));
    assert_int_equal(status_rd(&t), 0x0f);
    tdev_teardown(&t);
}

static void test_flush_get_id(void **state)
{
    (void)state;
    struct tdev t;
    tdev_setup(&t, "drive.serial=VIRTIO-SER-7");
    drv_init(&t, ALL_FEATURES);
    uint32_t len;
    assert_int_equal(run_req(&t, T_FLUSH, 0, 0, 0, false, &len), S_OK);
    assert_int_equal(len, 1);

    uint8_t junk[24];
    memset(junk, 0x5a, sizeof(junk));
    assert_int_equal(mem_write(t.vm, DATA_GPA, junk, sizeof(junk)), 0);
    assert_int_equal(run_req(&t, T_GET_ID, 0, DATA_GPA, 20, true, &len), S_OK);
    assert_int_equal(len, 21);
    char id[24];
    assert_int_equal(mem_read(t.vm, DATA_GPA, id, sizeof(id)), 0);
    assert_memory_equal(id, "VIRTIO-SER-7\0\0\0\0\0\0\0\0", 20);
    assert_int_equal((uint8_t)id[20], 0x5a);
    /* A shorter buffer gets what fits. */
    assert_int_equal(run_req(&t, T_GET_ID, 0, DATA_GPA + 0x100, 6, true, &len), S_OK);
    assert_int_equal(len, 7);
    assert_int_equal(mem_read(t.vm, DATA_GPA + 0x100, id, 6), 0);
    assert_memory_equal(id, "VIRTIO", 6);

    /* FLUSH is unsupported when the driver did not take VIRTIO_BLK_F_FLUSH. */
    drv_init(&t, ALL_FEATURES & ~VIRTIO_BIT(F_FLUSH));
    assert_int_equal(run_req(&t, T_FLUSH, 0, 0, 0, false, NULL), S_UNSUPP);
    tdev_teardown(&t);
}

/* One DISCARD/WRITE_ZEROES segment (section 5.2.6). */
static void dwz_seg(struct tdev *t, uint64_t gpa, uint64_t sector, uint32_t sectors, uint32_t flags)
{
    w64(t->vm, gpa, sector);
    w32(t->vm, gpa + 8, sectors);
    w32(t->vm, gpa + 12, flags);
}

static void test_discard_write_zeroes(void **state)
{
    (void)state;
    struct tdev t;
    tdev_setup(&t, NULL);
    drv_init(&t, ALL_FEATURES);

    /* WRITE_ZEROES over two ranges. */
    dwz_seg(&t, DATA_GPA, 40, 3, 0);
    dwz_seg(&t, DATA_GPA + 16, 200, 8, 1 /* unmap: allowed for write zeroes */);
    assert_int_equal(run_req(&t, T_WRITE_ZEROES, 0, DATA_GPA, 32, false, NULL), S_OK);
    assert_true(image_is_zero(&t, 40 * 512, 3 * 512));
    assert_true(image_is_zero(&t, 200 * 512, 8 * 512));
    assert_true(image_is_pattern(&t, 39 * 512, 512));
    assert_true(image_is_pattern(&t, 43 * 512, 512));
    assert_int_equal(run_req(&t, T_IN, 40, DATA_GPA + 0x1000, 1536, true, NULL), S_OK);
    uint8_t buf[1536], zero[1536];
    memset(zero, 0, sizeof(zero));
    assert_int_equal(mem_read(t.vm, DATA_GPA + 0x1000, buf, sizeof(buf)), 0);
    assert_memory_equal(buf, zero, sizeof(buf));

    /* DISCARD of an aligned 4 KiB range: the raw image punches a hole, which reads as zeroes. */
    dwz_seg(&t, DATA_GPA, 512, 8, 0);
    assert_int_equal(run_req(&t, T_DISCARD, 0, DATA_GPA, 16, false, NULL), S_OK);
    assert_true(image_is_zero(&t, 512 * 512, 4096));
    assert_true(image_is_pattern(&t, 520 * 512, 512));

    /* Refused requests change nothing. */
    dwz_seg(&t, DATA_GPA, 600, 1, 1); /* unmap on a discard */
    assert_int_equal(run_req(&t, T_DISCARD, 0, DATA_GPA, 16, false, NULL), S_UNSUPP);
    dwz_seg(&t, DATA_GPA, 600, 1, 4); /* a reserved flag */
    assert_int_equal(run_req(&t, T_WRITE_ZEROES, 0, DATA_GPA, 16, false, NULL), S_UNSUPP);
    dwz_seg(&t, DATA_GPA, 600, 1, 0);
    dwz_seg(&t, DATA_GPA + 16, DISK_SECTORS - 1, 2, 0); /* the second range passes the end */
    assert_int_equal(run_req(&t, T_WRITE_ZEROES, 0, DATA_GPA, 32, false, NULL), S_IOERR);
    assert_int_equal(run_req(&t, T_WRITE_ZEROES, 0, DATA_GPA, 20, false, NULL), S_IOERR); /* not whole segments */
    assert_int_equal(run_req(&t, T_WRITE_ZEROES, 0, DATA_GPA, 0, false, NULL), S_IOERR);
    for (unsigned i = 0; i < 17; i++)
        dwz_seg(&t, DATA_GPA + 16 * i, 600 + i, 1, 0);
    assert_int_equal(run_req(&t, T_WRITE_ZEROES, 0, DATA_GPA, 17 * 16, false, NULL), S_UNSUPP);
    dwz_seg(&t, DATA_GPA, 0, (1u << 21) + 1, 0); /* more sectors than max_write_zeroes_sectors */
    assert_int_equal(run_req(&t, T_WRITE_ZEROES, 0, DATA_GPA, 16, false, NULL), S_IOERR);
    assert_true(image_is_pattern(&t, 600 * 512, 17 * 512));

    /* Not negotiated: unsupported. */
    drv_init(&t, ALL_FEATURES & ~(VIRTIO_BIT(F_DISCARD) | VIRTIO_BIT(F_WRITE_ZEROES)));
    dwz_seg(&t, DATA_GPA, 600, 1, 0);
    assert_int_equal(run_req(&t, T_DISCARD, 0, DATA_GPA, 16, false, NULL), S_UNSUPP);
    assert_int_equal(run_req(&t, T_WRITE_ZEROES, 0, DATA_GPA, 16, false, NULL), S_UNSUPP);
    assert_true(image_is_pattern(&t, 600 * 512, 512));
    tdev_teardown(&t);
}

static void test_request_errors(void **state)
{
    (void)state;
    struct tdev t;
    tdev_setup(&t, NULL);
    drv_init(&t, ALL_FEATURES);
    uint32_t len;
    guest_fill(&t, DATA_GPA, 0x11, 4096);
    /* Past the end (partly, entirely, with a sector number that would overflow a byte offset). */
    assert_int_equal(run_req(&t, T_IN, DISK_SECTORS - 1, DATA_GPA, 1024, true, &len), S_IOERR);
    assert_int_equal(len, 1);
    assert_int_equal(run_req(&t, T_OUT, DISK_SECTORS, DATA_GPA, 512, false, NULL), S_IOERR);
    assert_int_equal(run_req(&t, T_OUT, UINT64_MAX / 256, DATA_GPA, 512, false, NULL), S_IOERR);
    assert_int_equal(run_req(&t, T_IN, UINT64_MAX, DATA_GPA, 512, true, NULL), S_IOERR);
    /* Not whole sectors. */
    assert_int_equal(run_req(&t, T_OUT, 3, DATA_GPA, 500, false, NULL), S_IOERR);
    assert_true(image_is_pattern(&t, 0, DISK_SECTORS * 512u));
    /* Unknown types, and ones this device does not offer (GET_LIFETIME, SECURE_ERASE). */
    assert_int_equal(run_req(&t, 0x1234, 0, DATA_GPA, 512, true, NULL), S_UNSUPP);
    assert_int_equal(run_req(&t, 10, 0, DATA_GPA, 512, true, NULL), S_UNSUPP);
    assert_int_equal(run_req(&t, 14, 0, DATA_GPA, 16, false, NULL), S_UNSUPP);
    assert_int_equal(status_rd(&t), 0x0f);

    /* A chain with no writable byte for the status cannot be answered: the device needs a reset. */
    header(&t, 0, T_IN, 0);
    const struct tseg bad[] = {{HDR_GPA, 16, false}};
    post_chain(&t, bad, 1, false);
    kick(&t);
    harness_drain_io(t.vm);
    assert_true(status_rd(&t) & VIRTIO_STATUS_NEEDS_RESET);
    tdev_teardown(&t);
}

static void test_isr_intx(void **state)
{
    (void)state;
    struct tdev t;
    tdev_setup(&t, NULL);
    drv_init(&t, ALL_FEATURES & ~VIRTIO_BIT(VIRTIO_F_EVENT_IDX));
    assert_false(harness_gsi_level(t.vm, PIRQ_IRQ));
    run_req(&t, T_IN, 0, DATA_GPA, 512, true, NULL);
    assert_true(harness_gsi_level(t.vm, PIRQ_IRQ));
    assert_true(cfg_read(t.vm, DEVFN, PCI_CFG_STATUS, 2) & PCI_STATUS_INTERRUPT);
    /* Reading the ISR returns the queue bit, clears it and drops INTx. */
    assert_int_equal(bar_rd(&t, t.isr, 1), VIRTIO_ISR_QUEUE);
    assert_false(harness_gsi_level(t.vm, PIRQ_IRQ));
    assert_false(cfg_read(t.vm, DEVFN, PCI_CFG_STATUS, 2) & PCI_STATUS_INTERRUPT);
    assert_int_equal(bar_rd(&t, t.isr, 1), 0);
    /* Writes to the ISR do nothing. */
    bar_wr(&t, t.isr, 3, 1);
    assert_int_equal(bar_rd(&t, t.isr, 1), 0);

    /* VIRTQ_AVAIL_F_NO_INTERRUPT suppresses the interrupt; the request still completes. */
    w16(t.vm, AVAIL_GPA, 1);
    assert_int_equal(run_req(&t, T_IN, 0, DATA_GPA, 512, true, NULL), S_OK);
    assert_false(harness_gsi_level(t.vm, PIRQ_IRQ));
    assert_int_equal(bar_rd(&t, t.isr, 1), 0);
    w16(t.vm, AVAIL_GPA, 0);

    /* INTx disable masks the wire, not the ISR. */
    cfg_write(t.vm, DEVFN, PCI_CFG_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_INTX_DISABLE, 2);
    run_req(&t, T_IN, 0, DATA_GPA, 512, true, NULL);
    assert_false(harness_gsi_level(t.vm, PIRQ_IRQ));
    cfg_write(t.vm, DEVFN, PCI_CFG_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, 2);
    assert_true(harness_gsi_level(t.vm, PIRQ_IRQ));
    assert_int_equal(bar_rd(&t, t.isr, 4), VIRTIO_ISR_QUEUE);
    assert_false(harness_gsi_level(t.vm, PIRQ_IRQ));
    tdev_teardown(&t);
}

static void test_event_idx(void **state)
{
    (void)state;
    struct tdev t;
    tdev_setup(&t, NULL);
    drv_init(&t, ALL_FEATURES);
    assert_true(t.features & VIRTIO_BIT(VIRTIO_F_EVENT_IDX));
    const uint64_t used_event = AVAIL_GPA + 4 + 2 * QSIZE, avail_event = USED_GPA + 4 + 8 * QSIZE;

    /* The driver asks for an interrupt only after the third completion (used_event = 2). */
    w16(t.vm, used_event, 2);
    run_req(&t, T_IN, 0, DATA_GPA, 512, true, NULL);
    assert_int_equal(bar_rd(&t, t.isr, 1), VIRTIO_ISR_QUEUE); /* the first one always interrupts */
    run_req(&t, T_IN, 0, DATA_GPA, 512, true, NULL);
    assert_false(harness_gsi_level(t.vm, PIRQ_IRQ));
    assert_int_equal(bar_rd(&t, t.isr, 1), 0);
    run_req(&t, T_IN, 0, DATA_GPA, 512, true, NULL);
    assert_true(harness_gsi_level(t.vm, PIRQ_IRQ));
    assert_int_equal(bar_rd(&t, t.isr, 1), VIRTIO_ISR_QUEUE);
    run_req(&t, T_IN, 0, DATA_GPA, 512, true, NULL);
    assert_int_equal(bar_rd(&t, t.isr, 1), 0);

    /* The device publishes avail_event: the index of the next request it wants to hear about. */
    assert_int_equal(r16(t.vm, avail_event), 4);
    tdev_teardown(&t);
}

static void test_readonly(void **state)
{
    (void)state;
    struct tdev t;
    tdev_setup(&t, "drive.readonly=on");
    uint64_t f = device_features(&t);
    assert_true(f & VIRTIO_BIT(F_RO));
    assert_false(f & VIRTIO_BIT(F_DISCARD));
    assert_false(f & VIRTIO_BIT(F_WRITE_ZEROES));
    drv_init(&t, ALL_FEATURES);
    guest_fill(&t, DATA_GPA, 0x77, 512);
    assert_int_equal(run_req(&t, T_OUT, 0, DATA_GPA, 512, false, NULL), S_IOERR);
    assert_int_equal(run_req(&t, T_IN, 5, DATA_GPA, 512, true, NULL), S_OK);
    assert_true(guest_is_pattern(&t, DATA_GPA, 5 * 512, 512));
    dwz_seg(&t, DATA_GPA, 0, 1, 0);
    assert_int_equal(run_req(&t, T_WRITE_ZEROES, 0, DATA_GPA, 16, false, NULL), S_UNSUPP);
    assert_int_equal(run_req(&t, T_FLUSH, 0, 0, 0, false, NULL), S_OK);
    assert_true(image_is_pattern(&t, 0, 4096));
    tdev_teardown(&t);
}

/* Makes the ring malformed in one of several ways and checks the device asks for a reset. */
static void test_malformed_rings(void **state)
{
    (void)state;
    for (unsigned kind = 0; kind < 5; kind++) {
        struct tdev t;
        tdev_setup(&t, NULL);
        drv_init(&t, ALL_FEATURES);
        header(&t, 0, T_IN, 0);
        uint16_t head = 0;
        switch (kind) {
        case 0: /* a descriptor loop: 0 -> 1 -> 0 */
            w64(t.vm, DESC_GPA, HDR_GPA);
            w32(t.vm, DESC_GPA + 8, 16);
            w16(t.vm, DESC_GPA + 12, DESC_F_NEXT);
            w16(t.vm, DESC_GPA + 14, 1);
            w64(t.vm, DESC_GPA + 16, DATA_GPA);
            w32(t.vm, DESC_GPA + 24, 512);
            w16(t.vm, DESC_GPA + 28, DESC_F_NEXT | DESC_F_WRITE);
            w16(t.vm, DESC_GPA + 30, 0);
            break;
        case 1: /* a next index out of range */
            w64(t.vm, DESC_GPA, HDR_GPA);
            w32(t.vm, DESC_GPA + 8, 16);
            w16(t.vm, DESC_GPA + 12, DESC_F_NEXT);
            w16(t.vm, DESC_GPA + 14, 4000);
            break;
        case 2: /* an indirect table whose length is not a multiple of 16 */
            w64(t.vm, DESC_GPA, TABLE_GPA);
            w32(t.vm, DESC_GPA + 8, 40);
            w16(t.vm, DESC_GPA + 12, DESC_F_INDIRECT);
            break;
        case 3: /* a chain longer than the queue (every descriptor, then around again) */
            for (unsigned i = 0; i < QSIZE; i++) {
                w64(t.vm, DESC_GPA + 16 * i, i ? DATA_GPA : HDR_GPA);
                w32(t.vm, DESC_GPA + 16 * i + 8, 16);
                w16(t.vm, DESC_GPA + 16 * i + 12, DESC_F_NEXT);
                w16(t.vm, DESC_GPA + 16 * i + 14, (uint16_t)((i + 1) % QSIZE));
            }
            break;
        case 4: /* an available head out of range */
            head = 300;
            break;
        }
        w16(t.vm, AVAIL_GPA + 4, head);
        w16(t.vm, AVAIL_GPA + 2, 1);
        kick(&t);
        harness_drain_io(t.vm);
        assert_int_equal(status_rd(&t), 0x0f | VIRTIO_STATUS_NEEDS_RESET);
        assert_int_equal(r16(t.vm, USED_GPA + 2), 0);
        /* A running driver hears of it through a configuration change interrupt. */
        assert_true(harness_gsi_level(t.vm, PIRQ_IRQ));
        assert_int_equal(bar_rd(&t, t.isr, 1), VIRTIO_ISR_CONFIG);
        /* Nothing more is taken from the queue until a reset. */
        post_req(&t, 1, T_IN, 0, DATA_GPA, 512, true);
        kick(&t);
        harness_drain_io(t.vm);
        assert_int_equal(r16(t.vm, USED_GPA + 2), 0);
        /* After a reset and a new setup the device works again. */
        drv_init(&t, ALL_FEATURES);
        assert_int_equal(run_req(&t, T_IN, 1, DATA_GPA, 512, true, NULL), S_OK);
        assert_true(guest_is_pattern(&t, DATA_GPA, 512, 512));
        tdev_teardown(&t);
    }
}

static void test_queue_setup_rules(void **state)
{
    (void)state;
    struct tdev t;
    tdev_setup(&t, NULL);
    /* A queue size that is not a power of two breaks the device when the queue is enabled. */
    status_wr(&t, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    driver_features_write(&t, device_features(&t));
    status_wr(&t, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
    bar_wr(&t, t.common + CC_QSIZE, 12, 2);
    bar_wr(&t, t.common + CC_QDESC, DESC_GPA, 4);
    bar_wr(&t, t.common + CC_QDRIVER, AVAIL_GPA, 4);
    bar_wr(&t, t.common + CC_QDEVICE, USED_GPA, 4);
    bar_wr(&t, t.common + CC_QENABLE, 1, 2);
    assert_int_equal(bar_rd(&t, t.common + CC_QENABLE, 2), 0);
    assert_true(status_rd(&t) & VIRTIO_STATUS_NEEDS_RESET);
    /* Not yet running: no interrupt for it. */
    assert_false(harness_gsi_level(t.vm, PIRQ_IRQ));

    /* Once enabled, the queue's addresses and size are fixed. */
    drv_init(&t, ALL_FEATURES);
    bar_wr(&t, t.common + CC_QDESC, 0x5000, 4);
    bar_wr(&t, t.common + CC_QSIZE, 4, 2);
    assert_int_equal(bar_rd(&t, t.common + CC_QDESC, 4), DESC_GPA);
    assert_int_equal(bar_rd(&t, t.common + CC_QSIZE, 2), QSIZE);
    /* Reads of any width see the structure; 64-bit fields read as two halves. */
    assert_int_equal(bar_rd(&t, t.common + CC_QDRIVER, 2), AVAIL_GPA & 0xffff);
    assert_int_equal(bar_rd(&t, t.common + CC_QDRIVER + 2, 2), AVAIL_GPA >> 16);
    assert_int_equal(bar_rd(&t, t.common + CC_QDEVICE + 4, 4), 0);
    assert_int_equal(run_req(&t, T_IN, 0, DATA_GPA, 512, true, NULL), S_OK);

    /* Notifications while bus mastering is off are ignored; the request waits for the next one. */
    cfg_write(t.vm, DEVFN, PCI_CFG_COMMAND, PCI_COMMAND_MEMORY, 2);
    uint16_t head = post_req(&t, 0, T_IN, 2, DATA_GPA, 512, true);
    kick(&t);
    harness_drain_io(t.vm);
    assert_int_equal(r16(t.vm, USED_GPA + 2), t.used_idx);
    cfg_write(t.vm, DEVFN, PCI_CFG_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, 2);
    kick(&t);
    assert_int_equal(complete(&t, 0, head, NULL), S_OK);
    tdev_teardown(&t);
}

static void test_reset(void **state)
{
    (void)state;
    struct tdev t;
    tdev_setup(&t, NULL);
    drv_init(&t, ALL_FEATURES);
    run_req(&t, T_IN, 0, DATA_GPA, 512, true, NULL);
    assert_true(harness_gsi_level(t.vm, PIRQ_IRQ));
    /* A request in flight when the driver resets is finished and dropped, never put on the ring. */
    post_req(&t, 0, T_IN, 8, DATA_GPA, 512, true);
    kick(&t);
    status_wr(&t, 0);
    harness_drain_io(t.vm);
    assert_int_equal(r16(t.vm, USED_GPA + 2), 1);
    assert_int_equal(status_rd(&t), 0);
    assert_false(harness_gsi_level(t.vm, PIRQ_IRQ));
    assert_int_equal(bar_rd(&t, t.isr, 1), 0);
    assert_int_equal(bar_rd(&t, t.common + CC_QENABLE, 2), 0);
    assert_int_equal(bar_rd(&t, t.common + CC_QSIZE, 2), 256);
    assert_int_equal(bar_rd(&t, t.common + CC_QDESC, 4), 0);
    bar_wr(&t, t.common + CC_GFSELECT, 0, 4);
    assert_int_equal(bar_rd(&t, t.common + CC_GF, 4), 0);
    /* A system reset does the same and also resets the PCI function (BAR unmapped). */
    drv_init(&t, ALL_FEATURES);
    const struct pdm_dev_desc *desc = pdm_dev_desc(t.dev);
    desc->reset(t.dev);
    assert_int_equal(cfg_read(t.vm, DEVFN, PCI_CFG_COMMAND, 2), 0);
    assert_int_equal(cfg_read(t.vm, DEVFN, PCI_CFG_BAR0 + 16, 4), 0xc);
    assert_int_equal(cfg_read(t.vm, DEVFN, PCI_CFG_VENDOR_ID, 2), 0x1af4);
    assert_int_equal(bar_rd(&t, t.common + CC_NUMQ, 2), 0xffff); /* nothing decodes there now */
    pci_program(&t);
    assert_int_equal(status_rd(&t), 0);
    drv_init(&t, ALL_FEATURES);
    assert_int_equal(run_req(&t, T_IN, 3, DATA_GPA, 512, true, NULL), S_OK);
    assert_true(guest_is_pattern(&t, DATA_GPA, 3 * 512, 512));
    tdev_teardown(&t);
}

static void test_saved_state(void **state)
{
    (void)state;
    struct tdev t;
    tdev_setup(&t, NULL);
    drv_init(&t, ALL_FEATURES);
    for (unsigned i = 0; i < 3; i++)
        assert_int_equal(run_req(&t, T_IN, i, DATA_GPA, 512, true, NULL), S_OK);
    assert_int_equal(bar_rd(&t, t.isr, 1), VIRTIO_ISR_QUEUE);
    /* A request in flight at save time completes first (and interrupts: used_event asks for it). */
    w16(t.vm, AVAIL_GPA + 4 + 2 * QSIZE, 3);
    post_req(&t, 0, T_IN, 9, DATA_GPA + 0x1000, 512, true);
    kick(&t);
    assert_int_equal(harness_dev_save_reset_load(t.dev), 0);
    assert_int_equal(r16(t.vm, USED_GPA + 2), 4);
    t.used_idx = 4;
    assert_true(guest_is_pattern(&t, DATA_GPA + 0x1000, 9 * 512, 512));
    assert_int_equal(status_rd(&t), 0x0f);
    assert_true(harness_gsi_level(t.vm, PIRQ_IRQ));
    assert_int_equal(bar_rd(&t, t.isr, 1), VIRTIO_ISR_QUEUE);
    assert_int_equal(cfg_read(t.vm, DEVFN, PCI_CFG_BAR0 + 16, 4), (uint32_t)BAR_GPA | 0xc);
    bar_wr(&t, t.common + CC_QSELECT, 0, 2);
    assert_int_equal(bar_rd(&t, t.common + CC_QSIZE, 2), QSIZE);
    /* The ring carries on where it was. */
    assert_int_equal(run_req(&t, T_IN, 11, DATA_GPA, 512, true, NULL), S_OK);
    assert_true(guest_is_pattern(&t, DATA_GPA, 11 * 512, 512));

    /* A stream from another version or a truncated one is refused. */
    const struct pdm_dev_desc *desc = pdm_dev_desc(t.dev);
    struct ssm *out, *in;
    assert_int_equal(ssm_create(&out), 0);
    assert_int_equal(desc->save(t.dev, out), 0);
    size_t len;
    const void *data = ssm_data(out, &len);
    assert_int_equal(ssm_open(data, len, &in), 0);
    assert_int_equal(desc->load(t.dev, in, 2), VERR_SSM_VERSION);
    ssm_destroy(in);
    assert_int_equal(ssm_open(data, len / 2, &in), 0);
    assert_int_not_equal(desc->load(t.dev, in, 1), 0);
    ssm_destroy(in);
    /* A different disk size is refused. */
    uint8_t *bad = malloc(len);
    memcpy(bad, data, len);
    bad[0] ^= 1;
    assert_int_equal(ssm_open(bad, len, &in), 0);
    assert_int_equal(desc->load(t.dev, in, 1), VERR_SSM_CORRUPT);
    ssm_destroy(in);
    free(bad);
    ssm_destroy(out);
    assert_int_equal(status_rd(&t), 0x0f);
    assert_int_equal(run_req(&t, T_IN, 12, DATA_GPA, 512, true, NULL), S_OK);
    tdev_teardown(&t);
}

static void test_pci_cfg_window(void **state)
{
    (void)state;
    struct tdev t;
    tdev_setup(&t, NULL);
    unsigned cap = t.pci_cap;
    /* Memory decoding off: the window still reaches the BAR (firmware uses it for BARs above 4 GiB). */
    cfg_write(t.vm, DEVFN, PCI_CFG_COMMAND, PCI_COMMAND_MASTER, 2);
    cfg_write(t.vm, DEVFN, cap + 4, 4, 1);
    cfg_write(t.vm, DEVFN, cap + 8, t.common + CC_NUMQ, 4);
    cfg_write(t.vm, DEVFN, cap + 12, 2, 4);
    assert_int_equal(cfg_read(t.vm, DEVFN, cap + 16, 2), 1);
    cfg_write(t.vm, DEVFN, cap + 8, t.common + CC_QSIZE, 4);
    assert_int_equal(cfg_read(t.vm, DEVFN, cap + 16, 4), 256);
    /* Writing the data field writes the BAR. */
    cfg_write(t.vm, DEVFN, cap + 8, t.common + CC_STATUS, 4);
    cfg_write(t.vm, DEVFN, cap + 12, 1, 4);
    cfg_write(t.vm, DEVFN, cap + 16, VIRTIO_STATUS_ACKNOWLEDGE, 1);
    assert_int_equal(cfg_read(t.vm, DEVFN, cap + 16, 1), VIRTIO_STATUS_ACKNOWLEDGE);
    cfg_write(t.vm, DEVFN, cap + 8, t.devcfg, 4);
    cfg_write(t.vm, DEVFN, cap + 12, 4, 4);
    assert_int_equal(cfg_read(t.vm, DEVFN, cap + 16, 4), DISK_SECTORS);
    /* Misaligned, oversized or other-BAR requests do nothing. */
    cfg_write(t.vm, DEVFN, cap + 8, t.devcfg + 2, 4);
    assert_int_equal(cfg_read(t.vm, DEVFN, cap + 16, 4), DISK_SECTORS);
    cfg_write(t.vm, DEVFN, cap + 8, t.common + CC_STATUS, 4);
    cfg_write(t.vm, DEVFN, cap + 12, 3, 4);
    cfg_write(t.vm, DEVFN, cap + 16, 0, 4);
    cfg_write(t.vm, DEVFN, cap + 12, 1, 4);
    cfg_write(t.vm, DEVFN, cap + 4, 0, 1);
    cfg_write(t.vm, DEVFN, cap + 16, 0, 1);
    cfg_write(t.vm, DEVFN, cap + 8, 0x4000, 4);
    cfg_write(t.vm, DEVFN, cap + 4, 4, 1);
    cfg_write(t.vm, DEVFN, cap + 16, 0, 1);
    cfg_write(t.vm, DEVFN, PCI_CFG_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, 2);
    assert_int_equal(status_rd(&t), VIRTIO_STATUS_ACKNOWLEDGE);
    /* The window's fields are back to 0 after a reset. */
    pdm_dev_desc(t.dev)->reset(t.dev);
    assert_int_equal(cfg_read(t.vm, DEVFN, cap + 8, 4), 0);
    assert_int_equal(cfg_read(t.vm, DEVFN, cap + 3, 1), 5);
    tdev_teardown(&t);
}

static void test_config_errors(void **state)
{
    (void)state;
    struct tdev t;
    memset(&t, 0, sizeof(t));
    t.vm = harness_vm_create(RAM_BYTES);
    t.chip = harness_dev_create(t.vm, &g_dev_i440fx, "pci", NULL);
    image_create(&t);
    struct pdm_dev *dev;
    char cfg[256];
    assert_int_equal(harness_dev_try_create(t.vm, &g_dev_virtio_blk, "v1", "slot=5", &dev), VERR_CFG_BAD_VALUE);
    snprintf(cfg, sizeof(cfg), "drive.path=%s", t.path);
    assert_int_equal(harness_dev_try_create(t.vm, &g_dev_virtio_blk, "v2", cfg, &dev), VERR_CFG_BAD_VALUE);
    snprintf(cfg, sizeof(cfg), "slot=5,drive.path=%s,drive.media=cdrom", t.path);
    assert_int_equal(harness_dev_try_create(t.vm, &g_dev_virtio_blk, "v3", cfg, &dev), VERR_CFG_BAD_VALUE);
    snprintf(cfg, sizeof(cfg), "slot=5,drive.path=%s,colour=blue", t.path);
    assert_int_equal(harness_dev_try_create(t.vm, &g_dev_virtio_blk, "v4", cfg, &dev), VERR_CFG_UNKNOWN_KEY);
    snprintf(cfg, sizeof(cfg), "slot=5,drive.path=%s/missing.img", t.dir);
    assert_int_not_equal(harness_dev_try_create(t.vm, &g_dev_virtio_blk, "v5", cfg, &dev), 0);
    snprintf(cfg, sizeof(cfg), "slot=40,drive.path=%s", t.path);
    assert_int_equal(harness_dev_try_create(t.vm, &g_dev_virtio_blk, "v6", cfg, &dev), VERR_CFG_BAD_VALUE);
    /* The slot of the host bridge is taken. */
    snprintf(cfg, sizeof(cfg), "slot=0,drive.path=%s", t.path);
    assert_int_equal(harness_dev_try_create(t.vm, &g_dev_virtio_blk, "v7", cfg, &dev), VERR_ALREADY_EXISTS);
    assert_int_equal(cfg_read(t.vm, DEVFN, PCI_CFG_VENDOR_ID, 2), 0xffff);
    /* Two disks on two slots. */
    snprintf(cfg, sizeof(cfg), "slot=5,drive.path=%s,drive.readonly=on", t.path);
    assert_int_equal(harness_dev_try_create(t.vm, &g_dev_virtio_blk, "v8", cfg, &dev), 0);
    snprintf(cfg, sizeof(cfg), "slot=6,drive.path=%s,drive.readonly=on", t.path);
    assert_int_equal(harness_dev_try_create(t.vm, &g_dev_virtio_blk, "v9", cfg, &dev), 0);
    assert_int_equal(cfg_read(t.vm, PCI_DEVFN(6, 0), PCI_CFG_DEVICE_ID, 2), 0x1042);
    tdev_teardown(&t);
}

/* Random BAR and window writes from a fixed seed: nothing crashes, and a reset brings the device back. */
static void test_garbage(void **state)
{
    (void)state;
    struct tdev t;
    tdev_setup(&t, NULL);
    uint32_t seed = 0xb10cda7a;
    for (unsigned round = 0; round < 4; round++) {
        drv_init(&t, ALL_FEATURES);
        /* Fill the rings and descriptor table with noise too. */
        for (unsigned i = 0; i < 0x800; i += 4)
            w32(t.vm, DESC_GPA + i, harness_rand(&seed) & 0x0013ffffu);
        for (unsigned i = 0; i < 4000; i++) {
            uint32_t r = harness_rand(&seed);
            unsigned size = 1u << (r & 3);
            if (size == 8)
                size = 4;
            uint32_t off = (harness_rand(&seed) & 0x3fff) & ~(size - 1);
            /* Mostly the common configuration and the notification area, where the logic is. */
            if (r & 0x10)
                off = (t.common + (off & 0x3f)) & ~(size - 1);
            else if (r & 0x20)
                off = t.notify + (off & 0xc);
            uint32_t value = harness_rand(&seed);
            if (r & 0x40)
                value &= 0x1ff;
            if (off == t.common + CC_QDESC || off == t.common + CC_QDRIVER || off == t.common + CC_QDEVICE)
                value &= (RAM_BYTES - 1) & ~0xfu;
            if (r & 0x80) {
                (void)bar_rd(&t, off, size);
            } else if (r & 0x100) {
                unsigned reg = t.pci_cap + 4 + (harness_rand(&seed) % 16);
                cfg_write(t.vm, DEVFN, reg, value, 1);
                (void)cfg_read(t.vm, DEVFN, t.pci_cap + 16, 4);
            } else {
                bar_wr(&t, off, value, size);
            }
            if ((i & 63) == 0)
                harness_drain_io(t.vm);
        }
        harness_drain_io(t.vm);
        cfg_write(t.vm, DEVFN, PCI_CFG_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, 2);
        cfg_write(t.vm, DEVFN, PCI_CFG_BAR0 + 16, (uint32_t)BAR_GPA, 4);
        cfg_write(t.vm, DEVFN, PCI_CFG_BAR0 + 20, 0, 4);
    }
    /* Whatever the noise did, a reset and a clean setup give a working disk whose data is intact outside writes. */
    drv_init(&t, ALL_FEATURES);
    assert_int_equal(run_req(&t, T_IN, 1000, DATA_GPA, 512, true, NULL), S_OK);
    assert_int_equal(cfg_read(t.vm, DEVFN, PCI_CFG_VENDOR_ID, 2), 0x1af4);
    tdev_teardown(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ids_and_caps),
        cmocka_unit_test(test_feature_negotiation),
        cmocka_unit_test(test_read_write),
        cmocka_unit_test(test_split_and_indirect),
        cmocka_unit_test(test_inflight),
        cmocka_unit_test(test_request_pool_limit),
        cmocka_unit_test(test_flush_get_id),
        cmocka_unit_test(test_discard_write_zeroes),
        cmocka_unit_test(test_request_errors),
        cmocka_unit_test(test_isr_intx),
        cmocka_unit_test(test_event_idx),
        cmocka_unit_test(test_readonly),
        cmocka_unit_test(test_malformed_rings),
        cmocka_unit_test(test_queue_setup_rules),
        cmocka_unit_test(test_reset),
        cmocka_unit_test(test_saved_state),
        cmocka_unit_test(test_pci_cfg_window),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
