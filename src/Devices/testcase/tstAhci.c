/* tstAhci.c - AHCI controller tests through a small AHCI driver in harness RAM: registers, reset, IDENTIFY, DMA, NCQ, errors, ATAPI, garbage, saved state. */
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

#define RAM_BYTES   (16u << 20)
#define ABAR        0xfebf0000u
#define AHCI_DEVFN  PCI_DEVFN(5, 0)
#define DISK_SECTORS 2048u   /* 1 MiB disk */
#define ISO_SECTORS  64u     /* 128 KiB CD image */

/* Guest memory layout of the test driver: per port a command list, a FIS area and 32 tables. */
#define CLB(p)     (0x100000u + (p)*0x20000u)
#define FB(p)      (CLB(p) + 0x400u)
#define CT(p, s)   (CLB(p) + 0x1000u + (s)*0x200u)
#define BUF        0x400000u

/* Register offsets (AHCI 1.3 section 3). */
#define CAP 0x00
#define GHC 0x04
#define IS  0x08
#define PI  0x0c
#define VS  0x10
#define PX(p, r) (0x100u + (p)*0x80u + (r))
#define PXIS   0x10
#define PXIE   0x14
#define PXCMD  0x18
#define PXTFD  0x20
#define PXSIG  0x24
#define PXSSTS 0x28
#define PXSCTL 0x2c
#define PXSACT 0x34
#define PXCI   0x38
#define PXSNTF 0x3c

struct fixture {
    struct vm *vm;
    struct pdm_dev *dev;
    char dir[64];
    char disk[96];
    char iso[96];
};

#define CFG_ADDR(devfn, reg) (0x80000000u | (uint32_t)(devfn) << 8 | ((reg)&0xfc))

static uint32_t cfg_read32(struct vm *vm, unsigned reg)
{
    harness_outl(vm, 0xcf8, CFG_ADDR(AHCI_DEVFN, reg));
    return harness_inl(vm, 0xcfc);
}

static void cfg_write32(struct vm *vm, unsigned reg, uint32_t v)
{
    harness_outl(vm, 0xcf8, CFG_ADDR(AHCI_DEVFN, reg));
    harness_outl(vm, 0xcfc, v);
}

static uint32_t rd(struct vm *vm, unsigned off)
{
    return (uint32_t)mem_mmio_read(vm, ABAR + off, 4);
}

static void wr(struct vm *vm, unsigned off, uint32_t v)
{
    mem_mmio_write(vm, ABAR + off, v, 4);
}

static void put32(struct vm *vm, uint64_t gpa, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    assert_int_equal(mem_write(vm, gpa, b, 4), 0);
}

static uint32_t get32(struct vm *vm, uint64_t gpa)
{
    uint8_t b[4];
    assert_int_equal(mem_read(vm, gpa, b, 4), 0);
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static uint8_t get8(struct vm *vm, uint64_t gpa)
{
    uint8_t b;
    assert_int_equal(mem_read(vm, gpa, &b, 1), 0);
    return b;
}

static uint8_t pattern(uint64_t off)
{
    return (uint8_t)(off * 7 + (off >> 9) * 13 + 1);
}

static void make_image(const char *path, uint64_t bytes)
{
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    assert_true(fd >= 0);
    uint8_t *b = malloc(bytes);
    assert_non_null(b);
    for (uint64_t i = 0; i < bytes; i++)
        b[i] = pattern(i);
    assert_int_equal(write(fd, b, bytes), (ssize_t)bytes);
    free(b);
    close(fd);
}

static void file_read(const char *path, uint64_t off, void *buf, size_t len)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, buf, len, (off_t)off), (ssize_t)len);
    close(fd);
}

static int setup_cfg(void **state, const char *extra)
{
    struct fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/tstAhci.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->disk, sizeof(f->disk), "%s/disk.img", f->dir);
    snprintf(f->iso, sizeof(f->iso), "%s/cd.iso", f->dir);
    make_image(f->disk, DISK_SECTORS * 512ull);
    make_image(f->iso, ISO_SECTORS * 2048ull);
    f->vm = harness_vm_create(RAM_BYTES);
    harness_dev_create(f->vm, &g_dev_i440fx, "pci", NULL);
    char cfg[512];
    snprintf(cfg, sizeof(cfg), "slot=5,port0.path=%s,port2.path=%s,port2.media=cdrom%s", f->disk, f->iso,
             extra ? extra : "");
    f->dev = harness_dev_create(f->vm, &g_dev_ahci, "ahci", cfg);
    cfg_write32(f->vm, 0x24, ABAR);
    cfg_write32(f->vm, 0x04, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_cfg(state, NULL);
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    harness_vm_destroy(f->vm);
    unlink(f->disk);
    unlink(f->iso);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* ---- the test driver ---- */

static void port_start(struct vm *vm, unsigned p)
{
    wr(vm, PX(p, 0x00), CLB(p));
    wr(vm, PX(p, 0x04), 0);
    wr(vm, PX(p, 0x08), FB(p));
    wr(vm, PX(p, 0x0c), 0);
    wr(vm, PX(p, PXIS), 0xffffffffu);
    wr(vm, PX(p, PXIE), 0xffffffffu);
    wr(vm, PX(p, PXCMD), 0x10);
    wr(vm, PX(p, PXCMD), 0x11);
    wr(vm, GHC, 0x80000002u);
}

struct prd {
    uint32_t addr, len;
};

/* Writes a command header and table for slot s; the command starts when PxCI is written. */
static void build_cmd(struct vm *vm, unsigned p, unsigned s, const uint8_t cfis[20], const uint8_t *acmd,
                      const struct prd *prds, unsigned nprd, bool write)
{
    uint32_t dw0 = 5u | (acmd ? 1u << 5 : 0) | (write ? 1u << 6 : 0) | (uint32_t)nprd << 16;
    put32(vm, CLB(p) + s * 32u, dw0);
    put32(vm, CLB(p) + s * 32u + 4, 0xdeadbeef); /* PRDBC: the HBA overwrites it */
    put32(vm, CLB(p) + s * 32u + 8, CT(p, s));
    put32(vm, CLB(p) + s * 32u + 12, 0);
    assert_int_equal(mem_write(vm, CT(p, s), cfis, 20), 0);
    if (acmd)
        assert_int_equal(mem_write(vm, CT(p, s) + 0x40, acmd, 16), 0);
    for (unsigned i = 0; i < nprd; i++) {
        put32(vm, CT(p, s) + 0x80 + i * 16u, prds[i].addr);
        put32(vm, CT(p, s) + 0x84 + i * 16u, 0);
        put32(vm, CT(p, s) + 0x88 + i * 16u, 0);
        put32(vm, CT(p, s) + 0x8c + i * 16u, prds[i].len - 1);
    }
}

static void fis_rw(uint8_t cfis[20], uint8_t cmd, uint64_t lba, uint32_t count)
{
    memset(cfis, 0, 20);
    cfis[0] = 0x27;
    cfis[1] = 0x80;
    cfis[2] = cmd;
    cfis[4] = (uint8_t)lba;
    cfis[5] = (uint8_t)(lba >> 8);
    cfis[6] = (uint8_t)(lba >> 16);
    cfis[7] = 0x40;
    cfis[8] = (uint8_t)(lba >> 24);
    cfis[9] = (uint8_t)(lba >> 32);
    cfis[10] = (uint8_t)(lba >> 40);
    cfis[12] = (uint8_t)count;
    cfis[13] = (uint8_t)(count >> 8);
}

static void fis_ncq(uint8_t cfis[20], bool write, uint64_t lba, uint32_t count, unsigned tag)
{
    fis_rw(cfis, write ? 0x61 : 0x60, lba, 0);
    cfis[3] = (uint8_t)count;
    cfis[11] = (uint8_t)(count >> 8);
    cfis[12] = (uint8_t)(tag << 3);
}

static void run(struct vm *vm, unsigned p, uint32_t ci)
{
    wr(vm, PX(p, PXCI), ci);
    harness_drain_io(vm);
}

static bool intx_level(struct vm *vm)
{
    return cfg_read32(vm, 0x04) & (PCI_STATUS_INTERRUPT << 16);
}

/* ---- tests ---- */

static void test_pci_and_registers(void **state)
{
    struct fixture *f = *state;
    struct vm *vm = f->vm;
    assert_int_equal(cfg_read32(vm, 0x00), 0x29228086u);
    assert_int_equal(cfg_read32(vm, 0x08) >> 8, 0x010601u);
    assert_int_equal(cfg_read32(vm, 0x3c) >> 8 & 0xff, 1); /* INTA# */
    assert_int_equal(cfg_read32(vm, 0x24), ABAR);
    /* BAR5 sizing: 4 KiB, 32-bit, non-prefetchable memory. */
    cfg_write32(vm, 0x24, 0xffffffffu);
    assert_int_equal(cfg_read32(vm, 0x24), 0xfffff000u);
    cfg_write32(vm, 0x24, ABAR);
    /* Power management capability in the list. */
    assert_int_equal(cfg_read32(vm, 0x34) & 0xff, 0x80);
    assert_int_equal(cfg_read32(vm, 0x80) & 0xff, PCI_CAP_ID_PM);

    uint32_t cap = rd(vm, CAP);
    assert_true(cap & (1u << 31));           /* S64A */
    assert_true(cap & (1u << 30));           /* SNCQ */
    assert_true(cap & (1u << 18));           /* SAM */
    assert_int_equal(cap & 0x1f, 5);         /* 6 ports */
    assert_int_equal((cap >> 8) & 0x1f, 31); /* 32 slots */
    assert_int_equal((cap >> 20) & 0xf, 3);  /* Gen3 */
    assert_int_equal(rd(vm, GHC), 0x80000000u);
    assert_int_equal(rd(vm, PI), 0x3f);
    assert_int_equal(rd(vm, VS), 0x00010300u);
    /* Read-only registers ignore writes; AE stays on. */
    wr(vm, CAP, 0);
    wr(vm, PI, 0);
    wr(vm, GHC, 0);
    assert_int_equal(rd(vm, CAP), cap);
    assert_int_equal(rd(vm, PI), 0x3f);
    assert_int_equal(rd(vm, GHC), 0x80000000u);

    /* A disk on port 0, nothing on port 1, a CD on port 2. */
    assert_int_equal(rd(vm, PX(0, PXSIG)), 0x00000101u);
    assert_int_equal(rd(vm, PX(0, PXSSTS)), 0x133);
    assert_int_equal(rd(vm, PX(0, PXTFD)) & 0xff, 0x50);
    assert_int_equal(rd(vm, PX(1, PXSIG)), 0xffffffffu);
    assert_int_equal(rd(vm, PX(1, PXSSTS)), 0);
    assert_int_equal(rd(vm, PX(1, PXTFD)), 0x7f);
    assert_int_equal(rd(vm, PX(2, PXSIG)), 0xeb140101u);
    assert_int_equal(rd(vm, PX(2, PXSSTS)), 0x133);
    /* SUD and POD read one; nothing runs. */
    assert_int_equal(rd(vm, PX(0, PXCMD)), 0x6);
    /* Past the last port: reserved, reads zero. */
    assert_int_equal(rd(vm, PX(6, PXSSTS)), 0);
}

static void test_hba_reset(void **state)
{
    struct fixture *f = *state;
    struct vm *vm = f->vm;
    port_start(vm, 0);
    assert_int_equal(rd(vm, GHC), 0x80000002u);
    assert_int_equal(rd(vm, PX(0, PXIE)), 0xfdc000ffu);
    wr(vm, GHC, 0x80000001u);
    assert_int_equal(rd(vm, GHC), 0x80000000u); /* HR self-clears, IE reset */
    assert_int_equal(rd(vm, PX(0, PXIE)), 0);
    assert_int_equal(rd(vm, PX(0, PXCMD)) & 0xc011, 0); /* ST, FRE, FR, CR off */
    assert_int_equal(rd(vm, PX(0, 0x00)), CLB(0));      /* PxCLB survives GHC.HR */
    assert_int_equal(rd(vm, PX(0, PXSIG)), 0x101);
    assert_int_equal(rd(vm, PX(0, PXSSTS)), 0x133);
}

static void test_start_stop(void **state)
{
    struct fixture *f = *state;
    struct vm *vm = f->vm;
    wr(vm, PX(0, 0x00), CLB(0));
    wr(vm, PX(0, 0x08), FB(0) | 0xff); /* low bits are reserved */
    assert_int_equal(rd(vm, PX(0, 0x08)), FB(0));
    wr(vm, PX(0, PXCMD), 0x10);
    assert_int_equal(rd(vm, PX(0, PXCMD)) & 0xc011, 0x4010); /* FRE -> FR */
    wr(vm, PX(0, PXCMD), 0x11);
    assert_int_equal(rd(vm, PX(0, PXCMD)) & 0xc011, 0xc011); /* ST -> CR */
    /* PxCI and PxSACT take bits only while ST is set; clearing ST empties them. */
    wr(vm, PX(0, PXSACT), 0x80000000u);
    assert_int_equal(rd(vm, PX(0, PXSACT)), 0x80000000u);
    wr(vm, PX(0, PXCMD), 0x10);
    assert_int_equal(rd(vm, PX(0, PXCMD)) & 0xc011, 0x4010);
    assert_int_equal(rd(vm, PX(0, PXSACT)), 0);
    wr(vm, PX(0, PXCI), 1);
    assert_int_equal(rd(vm, PX(0, PXCI)), 0);
    wr(vm, PX(0, PXCMD), 0);
    assert_int_equal(rd(vm, PX(0, PXCMD)) & 0xc011, 0);
}

static void test_identify(void **state)
{
    struct fixture *f = *state;
    struct vm *vm = f->vm;
    port_start(vm, 0);
    uint8_t cfis[20];
    fis_rw(cfis, 0xec, 0, 0);
    struct prd prd = {BUF, 512};
    build_cmd(vm, 0, 3, cfis, NULL, &prd, 1, false);
    run(vm, 0, 1u << 3);
    assert_int_equal(rd(vm, PX(0, PXCI)), 0);
    assert_true(rd(vm, PX(0, PXIS)) & 0x2);  /* PSS */
    assert_false(rd(vm, PX(0, PXIS)) & (1u << 30));
    assert_int_equal(rd(vm, PX(0, PXTFD)), 0x50);
    assert_int_equal(get32(vm, CLB(0) + 3 * 32 + 4), 512);          /* PRDBC */
    assert_int_equal(get8(vm, FB(0) + 0x20), 0x5f);                /* PIO setup FIS */
    assert_int_equal(get8(vm, FB(0) + 0x21) & 0x60, 0x60);         /* to the host, I */
    assert_int_equal(get8(vm, FB(0) + 0x20 + 15), 0x50);           /* E_Status */
    assert_int_equal(get8(vm, FB(0) + 0x22) & 0x81, 0);            /* no BSY, no ERR */
    uint8_t id[512];
    assert_int_equal(mem_read(vm, BUF, id, sizeof(id)), 0);
    uint8_t sum = 0;
    for (unsigned i = 0; i < 512; i++)
        sum = (uint8_t)(sum + id[i]);
    assert_int_equal(sum, 0);
    assert_int_equal(id[510], 0xa5);
    uint64_t sectors = 0;
    for (unsigned i = 0; i < 8; i++)
        sectors |= (uint64_t)id[200 + i] << (8 * i);
    assert_int_equal(sectors, DISK_SECTORS);
    assert_true(id[76 * 2 + 1] & 1);                 /* word 76 bit 8: NCQ */
    assert_int_equal(id[75 * 2] & 0x1f, 31);          /* queue depth 32 */
    assert_true(id[169 * 2] & 1);                     /* TRIM */
    /* The interrupt: PSS is enabled, GHC.IE set. */
    assert_int_equal(rd(vm, IS), 1);
    assert_true(intx_level(vm));

    /* IDENTIFY PACKET DEVICE to a disk is aborted with the ATA signature. */
    wr(vm, PX(0, PXIS), 0xffffffffu);
    fis_rw(cfis, 0xa1, 0, 0);
    build_cmd(vm, 0, 0, cfis, NULL, &prd, 1, false);
    run(vm, 0, 1);
    assert_true(rd(vm, PX(0, PXIS)) & (1u << 30)); /* TFES */
    assert_int_equal(rd(vm, PX(0, PXTFD)) & 0x401, 0x401);
    assert_int_equal(rd(vm, PX(0, PXCI)), 1);      /* the failed slot stays set */
}

/* WRITE DMA EXT over a three-entry PRDT, then READ DMA EXT back through two entries. */
static void test_dma_read_write(void **state)
{
    struct fixture *f = *state;
    struct vm *vm = f->vm;
    port_start(vm, 0);
    uint8_t data[3584];
    for (unsigned i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 31 + 5);
    assert_int_equal(mem_write(vm, BUF, data, 1024), 0);
    assert_int_equal(mem_write(vm, BUF + 0x10000, data + 1024, 512), 0);
    assert_int_equal(mem_write(vm, BUF + 0x20000, data + 1536, 2048), 0);
    struct prd wprd[3] = {{BUF, 1024}, {BUF + 0x10000, 512}, {BUF + 0x20000, 2048}};
    uint8_t cfis[20];
    fis_rw(cfis, 0x35, 100, 7);
    build_cmd(vm, 0, 0, cfis, NULL, wprd, 3, true);
    run(vm, 0, 1);
    assert_int_equal(rd(vm, PX(0, PXCI)), 0);
    assert_true(rd(vm, PX(0, PXIS)) & 1); /* DHRS */
    assert_int_equal(get32(vm, CLB(0) + 4), sizeof(data));
    assert_int_equal(get8(vm, FB(0) + 0x40), 0x34);
    assert_int_equal(get8(vm, FB(0) + 0x42), 0x50);
    uint8_t file[3584];
    file_read(f->disk, 100 * 512, file, sizeof(file));
    assert_memory_equal(file, data, sizeof(data));
    /* Neighbours untouched. */
    file_read(f->disk, 99 * 512, file, 512);
    for (unsigned i = 0; i < 512; i++)
        assert_int_equal(file[i], pattern(99 * 512 + i));

    struct prd rprd[2] = {{BUF + 0x40000, 3072}, {BUF + 0x50000, 8192}}; /* longer than needed is fine */
    fis_rw(cfis, 0x25, 100, 7);
    build_cmd(vm, 0, 1, cfis, NULL, rprd, 2, false);
    run(vm, 0, 2);
    assert_int_equal(rd(vm, PX(0, PXCI)), 0);
    assert_int_equal(get32(vm, CLB(0) + 32 + 4), sizeof(data));
    uint8_t back[3584];
    assert_int_equal(mem_read(vm, BUF + 0x40000, back, 3072), 0);
    assert_int_equal(mem_read(vm, BUF + 0x50000, back + 3072, 512), 0);
    assert_memory_equal(back, data, sizeof(data));

    /* READ SECTORS (PIO protocol over the PRDT) of the original pattern at LBA 5. */
    fis_rw(cfis, 0x20, 5, 2);
    struct prd pprd = {BUF + 0x60000, 1024};
    build_cmd(vm, 0, 2, cfis, NULL, &pprd, 1, false);
    run(vm, 0, 4);
    assert_int_equal(rd(vm, PX(0, PXCI)), 0);
    assert_int_equal(get8(vm, BUF + 0x60000 + 700), pattern(5 * 512 + 700));

    /* A PRDT too short for the command: the command fails, nothing is written. */
    wr(vm, PX(0, PXIS), 0xffffffffu);
    fis_rw(cfis, 0x35, 300, 4);
    struct prd sprd = {BUF, 1024};
    build_cmd(vm, 0, 3, cfis, NULL, &sprd, 1, true);
    run(vm, 0, 8);
    assert_true(rd(vm, PX(0, PXIS)) & (1u << 30));
    file_read(f->disk, 300 * 512, file, 512);
    assert_int_equal(file[3], pattern(300 * 512 + 3));
}

static void test_flush_and_verify(void **state)
{
    struct fixture *f = *state;
    struct vm *vm = f->vm;
    port_start(vm, 0);
    uint8_t cfis[20];
    fis_rw(cfis, 0xea, 0, 0);
    build_cmd(vm, 0, 0, cfis, NULL, NULL, 0, false);
    wr(vm, PX(0, PXCI), 1);
    assert_int_equal(rd(vm, PX(0, PXTFD)) & 0x80, 0x80); /* BSY while the flush runs */
    harness_drain_io(vm);
    assert_int_equal(rd(vm, PX(0, PXCI)), 0);
    assert_int_equal(rd(vm, PX(0, PXIS)) & 0x40000001u, 1);
    fis_rw(cfis, 0x42, DISK_SECTORS - 1, 1);
    build_cmd(vm, 0, 1, cfis, NULL, NULL, 0, false);
    run(vm, 0, 2);
    assert_int_equal(rd(vm, PX(0, PXCI)), 0);
    assert_int_equal(rd(vm, PX(0, PXTFD)), 0x50);
}

static void test_ncq(void **state)
{
    struct fixture *f = *state;
    struct vm *vm = f->vm;
    port_start(vm, 0);
    uint8_t cfis[20];
    /* Four queued reads and one queued write, tags == slots. */
    for (unsigned t = 0; t < 4; t++) {
        fis_ncq(cfis, false, 10 + t * 8, 8, t);
        struct prd prd = {BUF + t * 0x1000, 4096};
        build_cmd(vm, 0, t, cfis, NULL, &prd, 1, false);
    }
    uint8_t wdata[1024];
    memset(wdata, 0x5a, sizeof(wdata));
    assert_int_equal(mem_write(vm, BUF + 0x8000, wdata, sizeof(wdata)), 0);
    fis_ncq(cfis, true, 500, 2, 4);
    struct prd wprd = {BUF + 0x8000, 1024};
    build_cmd(vm, 0, 4, cfis, NULL, &wprd, 1, true);
    wr(vm, PX(0, PXSACT), 0x1f);
    wr(vm, PX(0, PXCI), 0x1f);
    /* Accepted: PxCI clear at once, PxSACT until the Set Device Bits FISes. */
    assert_int_equal(rd(vm, PX(0, PXCI)), 0);
    assert_int_equal(rd(vm, PX(0, PXSACT)), 0x1f);
    harness_drain_io(vm);
    assert_int_equal(rd(vm, PX(0, PXSACT)), 0);
    assert_true(rd(vm, PX(0, PXIS)) & 0x8); /* SDBS */
    assert_false(rd(vm, PX(0, PXIS)) & (1u << 30));
    assert_int_equal(get8(vm, FB(0) + 0x58), 0xa1);
    for (unsigned t = 0; t < 4; t++)
        for (unsigned i = 0; i < 4096; i += 511)
            assert_int_equal(get8(vm, BUF + t * 0x1000 + i), pattern((10 + t * 8) * 512ull + i));
    uint8_t file[1024];
    file_read(f->disk, 500 * 512, file, sizeof(file));
    assert_memory_equal(file, wdata, sizeof(file));
}

static void test_errors(void **state)
{
    struct fixture *f = *state;
    struct vm *vm = f->vm;
    port_start(vm, 0);
    uint8_t cfis[20];
    struct prd prd = {BUF, 4096};
    /* Past the end: TFES, IDNF with DRDY, DSC and ERR in PxTFD, the slot stays in PxCI and the list halts. */
    fis_rw(cfis, 0x25, DISK_SECTORS - 2, 4);
    build_cmd(vm, 0, 0, cfis, NULL, &prd, 1, false);
    fis_rw(cfis, 0xec, 0, 0);
    build_cmd(vm, 0, 1, cfis, NULL, &prd, 1, false);
    run(vm, 0, 3);
    assert_true(rd(vm, PX(0, PXIS)) & (1u << 30));
    assert_int_equal(rd(vm, PX(0, PXTFD)), 0x1051);
    assert_int_equal(rd(vm, PX(0, PXCI)), 3);
    /* Recovery as in AHCI 6.2.2.1: clear ST (PxCI empties), clear PxIS, set ST again. */
    wr(vm, PX(0, PXCMD), 0x10);
    assert_int_equal(rd(vm, PX(0, PXCI)), 0);
    assert_int_equal(rd(vm, PX(0, PXCMD)) & 0x8000, 0);
    wr(vm, PX(0, PXIS), 0xffffffffu);
    wr(vm, PX(0, PXCMD), 0x11);
    run(vm, 0, 2);
    assert_int_equal(rd(vm, PX(0, PXCI)), 0);
    assert_int_equal(rd(vm, PX(0, PXTFD)), 0x50);

    /* NCQ error: SDB with ERR, TFES; log page 10h names the tag; reading it clears the error. */
    wr(vm, PX(0, PXIS), 0xffffffffu);
    fis_ncq(cfis, false, DISK_SECTORS, 1, 7);
    build_cmd(vm, 0, 7, cfis, NULL, &prd, 1, false);
    wr(vm, PX(0, PXSACT), 0x80);
    run(vm, 0, 0x80);
    assert_true(rd(vm, PX(0, PXIS)) & (1u << 30));
    assert_true(rd(vm, PX(0, PXIS)) & 0x8);
    assert_int_equal(rd(vm, PX(0, PXSACT)), 0x80);
    assert_int_equal(rd(vm, PX(0, PXTFD)) & 0x1, 1);
    wr(vm, PX(0, PXCMD), 0x10);
    wr(vm, PX(0, PXIS), 0xffffffffu);
    wr(vm, PX(0, PXCMD), 0x11);
    fis_rw(cfis, 0x2f, 0x10, 1);
    cfis[7] = 0;
    build_cmd(vm, 0, 0, cfis, NULL, &prd, 1, false);
    run(vm, 0, 1);
    assert_int_equal(rd(vm, PX(0, PXCI)), 0);
    assert_int_equal(get8(vm, BUF), 7);        /* tag 7, NQ clear */
    assert_int_equal(get8(vm, BUF + 3), 0x10); /* IDNF */
    assert_int_equal(get8(vm, BUF + 4), (uint8_t)DISK_SECTORS);
    uint8_t log[512];
    assert_int_equal(mem_read(vm, BUF, log, sizeof(log)), 0);
    uint8_t sum = 0;
    for (unsigned i = 0; i < 512; i++)
        sum = (uint8_t)(sum + log[i]);
    assert_int_equal(sum, 0);
    run(vm, 0, 1);
    assert_int_equal(get8(vm, BUF), 0x80);     /* NQ: no queued error pending */
    /* A log this device does not keep is aborted. */
    fis_rw(cfis, 0x2f, 0x30, 1);
    build_cmd(vm, 0, 0, cfis, NULL, &prd, 1, false);
    run(vm, 0, 1);
    assert_int_equal(rd(vm, PX(0, PXCI)), 1);
    assert_int_equal(rd(vm, PX(0, PXTFD)), 0x0451);
}

static void test_interrupts(void **state)
{
    struct fixture *f = *state;
    struct vm *vm = f->vm;
    port_start(vm, 0);
    wr(vm, PX(0, PXIE), 0); /* masked */
    uint8_t cfis[20];
    fis_rw(cfis, 0xe7, 0, 0);
    build_cmd(vm, 0, 0, cfis, NULL, NULL, 0, false);
    run(vm, 0, 1);
    assert_int_equal(rd(vm, PX(0, PXIS)), 1);
    assert_int_equal(rd(vm, IS), 0);
    assert_false(intx_level(vm));
    wr(vm, PX(0, PXIE), 1);
    assert_int_equal(rd(vm, IS), 1);
    assert_true(intx_level(vm));
    wr(vm, GHC, 0x80000000u); /* GHC.IE off: the line drops, IS stays */
    assert_false(intx_level(vm));
    assert_int_equal(rd(vm, IS), 1);
    wr(vm, GHC, 0x80000002u);
    assert_true(intx_level(vm));
    /* Level semantics: clearing IS while PxIS is still set sets it again. */
    wr(vm, IS, 1);
    assert_int_equal(rd(vm, IS), 1);
    wr(vm, PX(0, PXIS), 0x2); /* not the pending bit */
    assert_int_equal(rd(vm, PX(0, PXIS)), 1);
    wr(vm, PX(0, PXIS), 1);
    assert_true(intx_level(vm)); /* IS still latched */
    wr(vm, IS, 1);
    assert_int_equal(rd(vm, IS), 0);
    assert_false(intx_level(vm));
    /* The line reaches the router through the PIIX3 PIRQ route (slot 5, INTA -> PIRQA). */
    harness_outl(vm, 0xcf8, CFG_ADDR(PCI_DEVFN(1, 0), 0x60));
    harness_outb(vm, 0xcfc, 11);
    run(vm, 0, 1);
    assert_true(harness_gsi_level(vm, 11));
    wr(vm, PX(0, PXIS), 1);
    wr(vm, IS, 1);
    assert_false(harness_gsi_level(vm, 11));
}

static void test_comreset(void **state)
{
    struct fixture *f = *state;
    struct vm *vm = f->vm;
    port_start(vm, 0);
    uint8_t zero[20] = {0};
    assert_int_equal(mem_write(vm, FB(0) + 0x40, zero, sizeof(zero)), 0);
    wr(vm, PX(0, PXCMD), 0x10); /* stop the list, keep FIS receive */
    wr(vm, PX(0, PXSCTL), 1);
    assert_int_equal(rd(vm, PX(0, PXSSTS)), 0);
    assert_int_equal(rd(vm, PX(0, PXTFD)) & 0x80, 0x80);
    wr(vm, PX(0, PXSCTL), 0);
    assert_int_equal(rd(vm, PX(0, PXSSTS)), 0x133);
    assert_int_equal(rd(vm, PX(0, PXSIG)), 0x101);
    assert_int_equal(rd(vm, PX(0, PXTFD)), 0x150);
    /* The signature FIS landed in the FIS area. */
    assert_int_equal(get8(vm, FB(0) + 0x40), 0x34);
    assert_int_equal(get8(vm, FB(0) + 0x40 + 12), 1);
    /* Port 1 has no device: the link never comes up. */
    wr(vm, PX(1, PXSCTL), 1);
    wr(vm, PX(1, PXSCTL), 0);
    assert_int_equal(rd(vm, PX(1, PXSSTS)), 0);
    assert_int_equal(rd(vm, PX(1, PXTFD)), 0x7f);
}

static void test_atapi(void **state)
{
    struct fixture *f = *state;
    struct vm *vm = f->vm;
    port_start(vm, 2);
    uint8_t cfis[20];
    struct prd prd = {BUF, 4096};
    fis_rw(cfis, 0xa1, 0, 0);
    build_cmd(vm, 2, 0, cfis, NULL, &prd, 1, false);
    run(vm, 2, 1);
    assert_int_equal(rd(vm, PX(2, PXCI)), 0);
    assert_int_equal(get8(vm, BUF + 1) & 0x1f, 0x05); /* CD-ROM device type */
    assert_true(get8(vm, BUF + 78 * 2) & 0x20);       /* asynchronous notification offered */

    /* INQUIRY by PIO: peripheral device type 5. */
    fis_rw(cfis, 0xa0, 0, 0);
    uint8_t inquiry[16] = {0x12, 0, 0, 0, 36};
    build_cmd(vm, 2, 1, cfis, inquiry, &prd, 1, false);
    run(vm, 2, 2);
    assert_int_equal(rd(vm, PX(2, PXCI)), 0);
    assert_int_equal(get8(vm, BUF) & 0x1f, 0x05);
    assert_int_equal(get32(vm, CLB(2) + 32 + 4), 36);

    /* READ(10) by DMA of sectors 3-4 (the first command may report the power-on unit attention). */
    wr(vm, PX(2, PXIS), 0xffffffffu);
    fis_rw(cfis, 0xa0, 0, 0);
    cfis[3] = 1; /* DMA */
    uint8_t read10[16] = {0x28, 0, 0, 0, 0, 3, 0, 0, 2};
    struct prd rprd = {BUF + 0x10000, 4096};
    build_cmd(vm, 2, 2, cfis, read10, &rprd, 1, false);
    run(vm, 2, 4);
    if (rd(vm, PX(2, PXCI)) & 4) {
        assert_true(rd(vm, PX(2, PXIS)) & (1u << 30));
        wr(vm, PX(2, PXCMD), 0x10);
        wr(vm, PX(2, PXIS), 0xffffffffu);
        wr(vm, PX(2, PXCMD), 0x11);
        run(vm, 2, 4);
    }
    assert_int_equal(rd(vm, PX(2, PXCI)), 0);
    assert_int_equal(get32(vm, CLB(2) + 64 + 4), 4096);
    for (unsigned i = 0; i < 4096; i += 333)
        assert_int_equal(get8(vm, BUF + 0x10000 + i), pattern(3 * 2048ull + i));

    /* An unknown opcode: CHECK CONDITION, ILLEGAL REQUEST in the error register's sense key. */
    uint8_t bad[16] = {0xff};
    build_cmd(vm, 2, 3, cfis, bad, &rprd, 1, false);
    run(vm, 2, 8);
    assert_true(rd(vm, PX(2, PXIS)) & (1u << 30));
    assert_int_equal((rd(vm, PX(2, PXTFD)) >> 12) & 0xf, 0x5);

    /* Media change with asynchronous notification enabled: PxSNTF and an SDB FIS with N. */
    wr(vm, PX(2, PXCMD), 0x10);
    wr(vm, PX(2, PXIS), 0xffffffffu);
    wr(vm, PX(2, PXCMD), 0x11);
    fis_rw(cfis, 0xef, 0, 5);
    cfis[3] = 0x10;
    build_cmd(vm, 2, 0, cfis, NULL, NULL, 0, false);
    run(vm, 2, 1);
    assert_int_equal(rd(vm, PX(2, PXCI)), 0);
    wr(vm, PX(2, PXIS), 0xffffffffu);
    struct drive *cd = drive_find(vm, "ahci-p2");
    assert_non_null(cd);
    assert_int_equal(drive_eject(cd, false), 0);
    assert_int_equal(rd(vm, PX(2, PXSNTF)), 1);
    assert_true(rd(vm, PX(2, PXIS)) & 0x8);
    assert_int_equal(get8(vm, FB(2) + 0x59) & 0x80, 0x80);
    wr(vm, PX(2, PXSNTF), 1);
    assert_int_equal(rd(vm, PX(2, PXSNTF)), 0);
    /* Without a medium, TEST UNIT READY fails with NOT READY. */
    wr(vm, PX(2, PXIS), 0xffffffffu);
    uint8_t tur[16] = {0};
    fis_rw(cfis, 0xa0, 0, 0);
    for (int i = 0; i < 2; i++) {
        build_cmd(vm, 2, 0, cfis, tur, NULL, 0, false);
        run(vm, 2, 1);
        wr(vm, PX(2, PXCMD), 0x10);
        wr(vm, PX(2, PXIS), 0xffffffffu);
        wr(vm, PX(2, PXCMD), 0x11);
    }
    assert_int_equal((rd(vm, PX(2, PXTFD)) >> 12) & 0xf, 0x2);
}

static void test_save_load(void **state)
{
    struct fixture *f = *state;
    struct vm *vm = f->vm;
    port_start(vm, 0);
    uint8_t cfis[20];
    fis_rw(cfis, 0x25, 20, 1);
    struct prd prd = {BUF, 512};
    build_cmd(vm, 0, 0, cfis, NULL, &prd, 1, false);
    wr(vm, PX(0, PXCI), 1); /* in flight: the save drains it */
    uint32_t ie = rd(vm, PX(0, PXIE));
    assert_int_equal(harness_dev_save_reset_load(f->dev), 0);
    assert_int_equal(rd(vm, PX(0, PXCI)), 0);
    assert_int_equal(rd(vm, PX(0, PXIE)), ie);
    assert_int_equal(rd(vm, PX(0, 0x00)), CLB(0));
    assert_int_equal(rd(vm, PX(0, PXCMD)) & 0xc011, 0xc011);
    assert_int_equal(rd(vm, GHC), 0x80000002u);
    assert_true(rd(vm, PX(0, PXIS)) & 1);
    assert_true(intx_level(vm));
    assert_int_equal(get8(vm, BUF + 9), pattern(20 * 512 + 9));
    /* The restored port keeps working. */
    wr(vm, PX(0, PXIS), 0xffffffffu);
    fis_rw(cfis, 0x25, 21, 1);
    build_cmd(vm, 0, 1, cfis, NULL, &prd, 1, false);
    run(vm, 0, 2);
    assert_int_equal(rd(vm, PX(0, PXCI)), 0);
    assert_int_equal(get8(vm, BUF + 9), pattern(21 * 512 + 9));
}

static void test_config(void **state)
{
    (void)state;
    struct vm *vm = harness_vm_create(0);
    harness_dev_create(vm, &g_dev_i440fx, "pci", NULL);
    struct pdm_dev *d = NULL;
    assert_int_not_equal(harness_dev_try_create(vm, &g_dev_ahci, "a1", "slot=5,port6.path=/x", &d), 0);
    assert_int_not_equal(harness_dev_try_create(vm, &g_dev_ahci, "a2", "slot=5,bogus=1", &d), 0);
    assert_int_not_equal(harness_dev_try_create(vm, &g_dev_ahci, "a3", "port0.path=/nonexistent/x.img,slot=6", &d),
                         0);
    assert_int_not_equal(harness_dev_try_create(vm, &g_dev_ahci, "a4", NULL, &d), 0); /* slot is required */
    assert_int_equal(harness_dev_try_create(vm, &g_dev_ahci, "a5", "slot=7", &d), 0);
    harness_vm_destroy(vm);
}

/* Random register writes and random command lists, tables and PRDTs: nothing may crash. */
static void test_garbage(void **state)
{
    struct fixture *f = *state;
    struct vm *vm = f->vm;
    uint32_t seed = 0x29220601u;
    static const unsigned regs[] = {0x00, 0x04, 0x08, 0x0c, 0x10, 0x14, 0x18, 0x20, 0x24, 0x28,
                                    0x2c, 0x30, 0x34, 0x38, 0x3c, 0x40, 0x44, 0x70};
    for (unsigned p = 0; p < 3; p++)
        port_start(vm, p);
    for (unsigned round = 0; round < 4000; round++) {
        uint32_t r = harness_rand(&seed);
        unsigned p = r % 6;
        switch ((r >> 4) % 8) {
        case 0: { /* random bytes into a command header or table */
            uint32_t a = CLB(p % 3) + harness_rand(&seed) % 0x5000;
            put32(vm, a & ~3u, harness_rand(&seed));
            break;
        }
        case 1: { /* a plausible command with random fields */
            uint8_t cfis[20];
            for (unsigned i = 0; i < 20; i++)
                cfis[i] = (uint8_t)harness_rand(&seed);
            cfis[0] = (harness_rand(&seed) & 7) ? 0x27 : cfis[0];
            static const uint8_t cmds[] = {0x25, 0x35, 0x60, 0x61, 0xec, 0xa1, 0xa0, 0x2f, 0x47,
                                           0x06, 0xea, 0xef, 0xc6, 0xc4, 0x20, 0x30, 0x42};
            if (harness_rand(&seed) & 1)
                cfis[2] = cmds[harness_rand(&seed) % sizeof(cmds)];
            uint8_t acmd[16];
            for (unsigned i = 0; i < 16; i++)
                acmd[i] = (uint8_t)harness_rand(&seed);
            struct prd prds[4];
            unsigned n = harness_rand(&seed) % 5;
            for (unsigned i = 0; i < n; i++) {
                prds[i].addr = (harness_rand(&seed) & 1) ? BUF + (harness_rand(&seed) % 0x100000)
                                                         : harness_rand(&seed);
                prds[i].len = 1 + harness_rand(&seed) % 0x10000;
            }
            unsigned s = harness_rand(&seed) % 32;
            build_cmd(vm, p % 3, s, cfis, (harness_rand(&seed) & 1) ? acmd : NULL, prds, n, harness_rand(&seed) & 1);
            wr(vm, PX(p % 3, PXSACT), 1u << s);
            wr(vm, PX(p % 3, PXCI), 1u << s);
            break;
        }
        case 2:
            wr(vm, PX(p, regs[harness_rand(&seed) % (sizeof(regs) / sizeof(regs[0]))]), harness_rand(&seed));
            break;
        case 3:
            rd(vm, PX(p, regs[harness_rand(&seed) % (sizeof(regs) / sizeof(regs[0]))]));
            break;
        case 4:
            wr(vm, harness_rand(&seed) % 0x1000 & ~3u, harness_rand(&seed));
            break;
        case 5:
            harness_drain_io(vm);
            break;
        case 6: /* restart a port the way a driver recovers it */
            wr(vm, PX(p, PXCMD), 0x10);
            wr(vm, PX(p, PXIS), 0xffffffffu);
            port_start(vm, p % 3);
            break;
        default:
            wr(vm, PX(p, PXCI), harness_rand(&seed));
            break;
        }
    }
    harness_drain_io(vm);
    /* Still a working controller after a reset. */
    wr(vm, GHC, 1);
    assert_int_equal(rd(vm, PX(0, PXSSTS)), 0x133);
    port_start(vm, 0);
    uint8_t cfis[20];
    fis_rw(cfis, 0xec, 0, 0);
    struct prd prd = {BUF, 512};
    build_cmd(vm, 0, 0, cfis, NULL, &prd, 1, false);
    run(vm, 0, 1);
    assert_int_equal(rd(vm, PX(0, PXCI)), 0);
    assert_int_equal(get32(vm, CLB(0) + 4), 512);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pci_and_registers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hba_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_identify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dma_read_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush_and_verify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ncq, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interrupts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_comreset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_atapi, setup, teardown),
        cmocka_unit_test_setup_teardown(test_save_load, setup, teardown),
        cmocka_unit_test(test_config),
        cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
