/* ide-test.h - helpers shared by the IDE and ATAPI tests: image files, the controller in a harness VM, register access. */
#ifndef VIREO_DEVICES_IDE_TEST_H
#define VIREO_DEVICES_IDE_TEST_H

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "vireo/err.h"
#include "vireo/rt.h"
#include "vireo/pci.h"
#include "vireo/storage.h"

#define IDE_RAM_BYTES (8u << 20)
#define IDE_BM_PORT   0xc000
#define IDE_DEVFN     PCI_DEVFN(1, 1)

/* Channel ports. */
#define P_DATA(ch)   ((uint16_t)((ch) ? 0x170 : 0x1f0))
#define P_ERR(ch)    ((uint16_t)(P_DATA(ch) + 1))
#define P_COUNT(ch)  ((uint16_t)(P_DATA(ch) + 2))
#define P_LBAL(ch)   ((uint16_t)(P_DATA(ch) + 3))
#define P_LBAM(ch)   ((uint16_t)(P_DATA(ch) + 4))
#define P_LBAH(ch)   ((uint16_t)(P_DATA(ch) + 5))
#define P_DEV(ch)    ((uint16_t)(P_DATA(ch) + 6))
#define P_STATUS(ch) ((uint16_t)(P_DATA(ch) + 7))
#define P_CTL(ch)    ((uint16_t)((ch) ? 0x376 : 0x3f6))
#define P_BMIC(ch)   ((uint16_t)(IDE_BM_PORT + 8 * (ch)))
#define P_BMIS(ch)   ((uint16_t)(IDE_BM_PORT + 8 * (ch) + 2))
#define P_PRD(ch)    ((uint16_t)(IDE_BM_PORT + 8 * (ch) + 4))
#define IDE_BMIS_INT_TEST  0x04
#define IDE_BMIS_DMA0_TEST 0x20

struct ide_fix {
    struct vm *vm;
    struct pdm_dev *ide;
    char dir[64];
    char disk[128];
    char iso[128];
    char iso2[128];
};

/* Byte i of sector lba of a test image: differs per sector and per offset. */
static inline uint8_t img_byte(uint64_t lba, unsigned i, uint8_t seed)
{
    return (uint8_t)(seed + lba * 13 + i * 7 + (i >> 8));
}

static inline void img_fill(uint8_t *buf, uint64_t lba, unsigned sector_bytes, unsigned count, uint8_t seed)
{
    for (unsigned s = 0; s < count; s++)
        for (unsigned i = 0; i < sector_bytes; i++)
            buf[s * sector_bytes + i] = img_byte(lba + s, i, seed);
}

/* A file of size bytes whose first pattern_sectors sectors carry the pattern; the rest is a hole. */
static inline void img_create(const char *path, uint64_t size, unsigned sector_bytes, unsigned pattern_sectors,
                              uint8_t seed)
{
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)size), 0);
    uint8_t *buf = malloc(sector_bytes);
    for (unsigned s = 0; s < pattern_sectors; s++) {
        img_fill(buf, s, sector_bytes, 1, seed);
        assert_int_equal(pwrite(fd, buf, sector_bytes, (off_t)s * sector_bytes), (ssize_t)sector_bytes);
    }
    free(buf);
    close(fd);
}

static inline void img_read(const char *path, uint64_t offset, void *buf, size_t len)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, buf, len, (off_t)offset), (ssize_t)len);
    close(fd);
}

static inline void img_write(const char *path, uint64_t offset, const void *buf, size_t len)
{
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, buf, len, (off_t)offset), (ssize_t)len);
    close(fd);
}

static inline void ide_fix_dir(struct ide_fix *f, const char *tag)
{
    snprintf(f->dir, sizeof(f->dir), "/tmp/%s.XXXXXX", tag);
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->disk, sizeof(f->disk), "%s/disk.raw", f->dir);
    snprintf(f->iso, sizeof(f->iso), "%s/cd.iso", f->dir);
    snprintf(f->iso2, sizeof(f->iso2), "%s/cd2.iso", f->dir);
}

static inline void ide_fix_cleanup(struct ide_fix *f)
{
    if (f->vm)
        harness_vm_destroy(f->vm);
    unlink(f->disk);
    unlink(f->iso);
    unlink(f->iso2);
    rmdir(f->dir);
}

/* ---- PCI configuration through mechanism #1 ---- */

static inline uint32_t cfg_read(struct vm *vm, unsigned reg, unsigned size)
{
    harness_outl(vm, 0xcf8, 0x80000000u | (uint32_t)IDE_DEVFN << 8 | (reg & 0xfc));
    uint16_t port = (uint16_t)(0xcfc + (reg & 3));
    return size == 1 ? harness_inb(vm, port) : size == 2 ? harness_inw(vm, port) : harness_inl(vm, port);
}

static inline void cfg_write(struct vm *vm, unsigned reg, uint32_t value, unsigned size)
{
    harness_outl(vm, 0xcf8, 0x80000000u | (uint32_t)IDE_DEVFN << 8 | (reg & 0xfc));
    uint16_t port = (uint16_t)(0xcfc + (reg & 3));
    if (size == 1)
        harness_outb(vm, port, (uint8_t)value);
    else if (size == 2)
        harness_outw(vm, port, (uint16_t)value);
    else
        harness_outl(vm, port, value);
}

/* Creates the chipset and the controller with cfg; maps BAR4 at IDE_BM_PORT with I/O and bus mastering on. */
static inline void ide_fix_start(struct ide_fix *f, const char *cfg)
{
    f->vm = harness_vm_create(IDE_RAM_BYTES);
    harness_dev_create(f->vm, &g_dev_i440fx, "pci", NULL);
    f->ide = harness_dev_create(f->vm, &g_dev_piix3_ide, "ide", cfg);
    cfg_write(f->vm, PCI_CFG_BAR0 + 16, IDE_BM_PORT, 4);
    cfg_write(f->vm, PCI_CFG_COMMAND, PCI_COMMAND_IO | PCI_COMMAND_MASTER, 2);
    harness_gsi_clear(f->vm);
}

/* ---- Task file ---- */

static inline void ide_select(struct vm *vm, unsigned ch, unsigned dev)
{
    harness_outb(vm, P_DEV(ch), (uint8_t)(0xa0 | (dev ? 0x10 : 0)));
}

/* LBA28 (or CHS when lba is false) registers, then the command. */
static inline void ide_cmd28(struct vm *vm, unsigned ch, unsigned dev, uint8_t cmd, uint32_t lba, uint8_t count,
                             uint8_t feature)
{
    harness_outb(vm, P_DEV(ch), (uint8_t)(0xe0 | (dev ? 0x10 : 0) | ((lba >> 24) & 0x0f)));
    harness_outb(vm, P_ERR(ch), feature);
    harness_outb(vm, P_COUNT(ch), count);
    harness_outb(vm, P_LBAL(ch), (uint8_t)lba);
    harness_outb(vm, P_LBAM(ch), (uint8_t)(lba >> 8));
    harness_outb(vm, P_LBAH(ch), (uint8_t)(lba >> 16));
    harness_outb(vm, P_STATUS(ch), cmd);
}

static inline void ide_cmd48(struct vm *vm, unsigned ch, unsigned dev, uint8_t cmd, uint64_t lba, uint16_t count)
{
    harness_outb(vm, P_DEV(ch), (uint8_t)(0x40 | (dev ? 0x10 : 0)));
    harness_outb(vm, P_COUNT(ch), (uint8_t)(count >> 8));
    harness_outb(vm, P_LBAL(ch), (uint8_t)(lba >> 24));
    harness_outb(vm, P_LBAM(ch), (uint8_t)(lba >> 32));
    harness_outb(vm, P_LBAH(ch), (uint8_t)(lba >> 40));
    harness_outb(vm, P_COUNT(ch), (uint8_t)count);
    harness_outb(vm, P_LBAL(ch), (uint8_t)lba);
    harness_outb(vm, P_LBAM(ch), (uint8_t)(lba >> 8));
    harness_outb(vm, P_LBAH(ch), (uint8_t)(lba >> 16));
    harness_outb(vm, P_STATUS(ch), cmd);
}

/* Lets pending drive requests finish, then returns the alternate status (no interrupt acknowledge). */
static inline uint8_t ide_settle(struct vm *vm, unsigned ch)
{
    harness_drain_io(vm);
    return harness_inb(vm, P_CTL(ch));
}

/* Reads len bytes from the data port in 16-bit (or 32-bit) accesses. */
static inline void ide_pio_in(struct vm *vm, unsigned ch, uint8_t *buf, unsigned len, bool wide)
{
    for (unsigned i = 0; i < len; i += wide ? 4 : 2) {
        uint32_t v = wide ? harness_inl(vm, P_DATA(ch)) : harness_inw(vm, P_DATA(ch));
        memcpy(buf + i, &v, wide ? 4 : 2);
    }
}

static inline void ide_pio_out(struct vm *vm, unsigned ch, const uint8_t *buf, unsigned len, bool wide)
{
    for (unsigned i = 0; i < len; i += wide ? 4 : 2) {
        uint32_t v = 0;
        memcpy(&v, buf + i, wide ? 4 : 2);
        if (wide)
            harness_outl(vm, P_DATA(ch), v);
        else
            harness_outw(vm, P_DATA(ch), (uint16_t)v);
    }
}

/* Writes a PRD table at table_gpa: n entries of (gpa, len), the last with EOT. */
static inline void ide_prd(struct vm *vm, uint32_t table_gpa, const uint32_t *gpas, const uint32_t *lens, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        uint32_t e[2] = {gpas[i], (lens[i] & 0xffff) | (i + 1 == n ? 0x80000000u : 0)};
        assert_int_equal(mem_write(vm, table_gpa + 8 * i, e, sizeof(e)), 0);
    }
}

#endif
