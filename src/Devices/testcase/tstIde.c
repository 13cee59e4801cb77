/* tstIde.c - PIIX3 IDE controller tests: PCI function, IDENTIFY, PIO and DMA against raw images, resets, interrupts, saved state, garbage. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ide-test.h"

#define DISK_BYTES   (8u << 20)
#define DISK_SECTORS (DISK_BYTES / 512)
#define DISK_SEED    0x31
#define ISO_SEED     0x77

static int setup(void **state)
{
    struct ide_fix *f = calloc(1, sizeof(*f));
    ide_fix_dir(f, "tstIde");
    img_create(f->disk, DISK_BYTES, 512, DISK_SECTORS, DISK_SEED);
    img_create(f->iso, 64 * 2048, 2048, 64, ISO_SEED);
    char cfg[512];
    snprintf(cfg, sizeof(cfg), "p0m.path=%s,p0s.path=%s,p0s.media=cdrom,p1m.path=%s,p1m.media=cdrom", f->disk, f->iso,
             f->iso);
    ide_fix_start(f, cfg);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct ide_fix *f = *state;
    ide_fix_cleanup(f);
    free(f);
    return 0;
}

static void check_sectors(const uint8_t *buf, uint64_t lba, unsigned count)
{
    for (unsigned s = 0; s < count; s++)
        for (unsigned i = 0; i < 512; i++)
            if (buf[s * 512 + i] != img_byte(lba + s, i, DISK_SEED))
                fail_msg("sector %llu byte %u: %02x", (unsigned long long)(lba + s), i, buf[s * 512 + i]);
}

/* ---- PCI function -------------------------------------------------------------------------- */

static void test_pci_function(void **state)
{
    struct ide_fix *f = *state;
    struct vm *vm = f->vm;
    assert_int_equal(cfg_read(vm, PCI_CFG_VENDOR_ID, 4), 0x70108086u);
    assert_int_equal(cfg_read(vm, PCI_CFG_REVISION_ID, 4) >> 8, 0x010180u);
    assert_int_equal(cfg_read(vm, PCI_CFG_HEADER_TYPE, 1), 0x00);
    assert_int_equal(cfg_read(vm, PCI_CFG_INTERRUPT_PIN, 1), 0); /* legacy mode: ISA IRQs, no INTx */
    /* BAR4: 16 bytes of I/O; the others are absent in compatibility mode. */
    uint32_t bar4 = PCI_CFG_BAR0 + 16;
    assert_int_equal(cfg_read(vm, bar4, 4), IDE_BM_PORT | 1u);
    cfg_write(vm, bar4, 0xffffffff, 4);
    assert_int_equal(cfg_read(vm, bar4, 4) & 0xffff, 0xfff1);
    cfg_write(vm, bar4, IDE_BM_PORT, 4);
    cfg_write(vm, PCI_CFG_BAR0, 0xffffffff, 4);
    assert_int_equal(cfg_read(vm, PCI_CFG_BAR0, 4), 0);
    /* IDETIM: decode enabled on both channels, as a BIOS leaves it. */
    assert_int_equal(cfg_read(vm, 0x40, 2), 0x8000);
    assert_int_equal(cfg_read(vm, 0x42, 2), 0x8000);
    /* The bus-master registers answer at BAR4. */
    harness_outl(vm, P_PRD(0), 0x12345677);
    assert_int_equal(harness_inl(vm, P_PRD(0)), 0x12345674);
    harness_outb(vm, P_BMIS(1), IDE_BMIS_DMA0_TEST);
    assert_int_equal(harness_inb(vm, P_BMIS(1)), IDE_BMIS_DMA0_TEST);
    /* Clearing IDETIM bit 15 stops legacy decoding of that channel only. */
    ide_select(vm, 0, 0);
    harness_outb(vm, P_LBAL(0), 0x5a);
    cfg_write(vm, 0x40, 0x0000, 2);
    harness_outb(vm, P_LBAL(0), 0x33); /* lost */
    assert_int_equal(harness_inb(vm, P_LBAL(0)), 0xff);
    assert_int_equal(harness_inb(vm, P_CTL(1)) & 0x80, 0);
    cfg_write(vm, 0x40, 0x8000, 2);
    assert_int_equal(harness_inb(vm, P_LBAL(0)), 0x5a);
}

/* ---- IDENTIFY ---------------------------------------------------------------------------------- */

static uint16_t id_word(const uint8_t *id, unsigned w)
{
    return (uint16_t)(id[2 * w] | id[2 * w + 1] << 8);
}

static void check_id_string(const uint8_t *id, unsigned first, unsigned words, const char *expect)
{
    char s[64] = {0};
    for (unsigned i = 0; i < words; i++) {
        s[2 * i] = (char)(id_word(id, first + i) >> 8);
        s[2 * i + 1] = (char)id_word(id, first + i);
    }
    size_t n = strlen(expect);
    assert_memory_equal(s, expect, n);
    for (size_t i = n; i < 2u * words; i++)
        assert_int_equal(s[i], ' ');
}

static void check_checksum(const uint8_t *id)
{
    uint8_t sum = 0;
    for (unsigned i = 0; i < 512; i++)
        sum = (uint8_t)(sum + id[i]);
    assert_int_equal(sum, 0);
    assert_int_equal(id[510], 0xa5);
}

static void test_identify(void **state)
{
    struct ide_fix *f = *state;
    struct vm *vm = f->vm;
    uint8_t id[512];
    ide_cmd28(vm, 0, 0, 0xec, 0, 0, 0);
    assert_int_equal(ide_settle(vm, 0) & 0x89, 0x08); /* DRQ, not BSY, no ERR */
    assert_true(harness_gsi_level(vm, 14));
    assert_int_equal(harness_gsi_rises(vm, 14), 1);
    ide_pio_in(vm, 0, id, sizeof(id), false);
    assert_int_equal(harness_inb(vm, P_STATUS(0)), 0x50);
    assert_false(harness_gsi_level(vm, 14));
    assert_int_equal(id_word(id, 0), 0x0040);
    assert_int_equal(id_word(id, 60) | (uint32_t)id_word(id, 61) << 16, DISK_SECTORS);
    assert_int_equal(id_word(id, 100) | (uint32_t)id_word(id, 101) << 16, DISK_SECTORS);
    assert_int_equal(id_word(id, 102) | id_word(id, 103), 0);
    assert_int_equal(id_word(id, 1) * id_word(id, 3) * id_word(id, 6), 16 * 16 * 63); /* 8 MiB: 16 cylinders */
    assert_int_equal(id_word(id, 49) & 0x0300, 0x0300);                             /* LBA and DMA */
    assert_int_equal(id_word(id, 83) & 0x3400, 0x3400); /* FLUSH CACHE (EXT), 48-bit */
    assert_int_equal(id_word(id, 85) & 0x0020, 0x0020); /* write cache enabled */
    assert_int_equal(id_word(id, 88) & 0x3f, 0x3f);
    assert_int_equal(id_word(id, 93) & 0x6000, 0x6000);
    check_id_string(id, 27, 20, "VIREO HARDDISK");
    struct drive *d = drive_find(vm, "ide-0-0");
    assert_non_null(d);
    check_id_string(id, 10, 10, drive_serial(d));
    check_checksum(id);

    /* Write cache off shows in word 85. */
    ide_cmd28(vm, 0, 0, 0xef, 0, 0, 0x82);
    assert_int_equal(ide_settle(vm, 0), 0x50);
    ide_cmd28(vm, 0, 0, 0xec, 0, 0, 0);
    ide_settle(vm, 0);
    ide_pio_in(vm, 0, id, sizeof(id), true);
    assert_int_equal(id_word(id, 85) & 0x0020, 0);
    check_checksum(id);

    /* The CD drive (device 1): IDENTIFY DEVICE aborts with the packet signature, IDENTIFY PACKET DEVICE works. */
    ide_cmd28(vm, 0, 1, 0xec, 0, 0, 0);
    assert_int_equal(ide_settle(vm, 0) & 0x01, 0x01);
    assert_int_equal(harness_inb(vm, P_ERR(0)), 0x04);
    assert_int_equal(harness_inb(vm, P_LBAM(0)), 0x14);
    assert_int_equal(harness_inb(vm, P_LBAH(0)), 0xeb);
    ide_select(vm, 0, 1);
    ide_cmd28(vm, 0, 1, 0xa1, 0, 0, 0);
    assert_int_equal(ide_settle(vm, 0) & 0x08, 0x08);
    ide_pio_in(vm, 0, id, sizeof(id), false);
    assert_int_equal(id_word(id, 0), 0x85c0);
    assert_int_equal(id_word(id, 93) & 0x0100, 0x0100); /* reported as device 1 */
    check_id_string(id, 27, 20, "VIREO CD-ROM");
    check_checksum(id);
}

/* ---- PIO ------------------------------------------------------------------------------------------ */

static void test_pio_lba28(void **state)
{
    struct ide_fix *f = *state;
    struct vm *vm = f->vm;
    uint8_t buf[4 * 512];

    /* READ SECTORS, two sectors in 32-bit accesses: an interrupt per sector, none at the end. */
    ide_cmd28(vm, 0, 0, 0x20, 5, 2, 0);
    assert_int_equal(ide_settle(vm, 0), 0x58);
    assert_int_equal(harness_inb(vm, P_STATUS(0)), 0x58);
    ide_pio_in(vm, 0, buf, 512, true);
    assert_int_equal(ide_settle(vm, 0), 0x58);
    assert_int_equal(harness_inb(vm, P_STATUS(0)), 0x58);
    ide_pio_in(vm, 0, buf + 512, 512, true);
    assert_int_equal(ide_settle(vm, 0), 0x50);
    assert_int_equal(harness_gsi_rises(vm, 14), 2);
    check_sectors(buf, 5, 2);

    /* WRITE SECTORS, three sectors in 16-bit accesses: DRQ without interrupt, then one per written block. */
    harness_inb(vm, P_STATUS(0));
    harness_gsi_clear(vm);
    for (unsigned i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)(i * 3 + 1);
    ide_cmd28(vm, 0, 0, 0x30, 100, 3, 0);
    assert_int_equal(harness_inb(vm, P_CTL(0)), 0x58);
    assert_int_equal(harness_gsi_rises(vm, 14), 0);
    for (unsigned s = 0; s < 3; s++) {
        ide_pio_out(vm, 0, buf + s * 512, 512, false);
        uint8_t st = ide_settle(vm, 0);
        assert_int_equal(st, s < 2 ? 0x58 : 0x50);
        assert_int_equal(harness_inb(vm, P_STATUS(0)), st); /* acknowledge */
    }
    assert_int_equal(harness_gsi_rises(vm, 14), 3);
    uint8_t file[3 * 512];
    img_read(f->disk, 100 * 512, file, sizeof(file));
    assert_memory_equal(file, buf, sizeof(file));

    /* CHS: cylinder 0, head 1, sector 3 is LBA 1 * 63 + 2. */
    harness_outb(vm, P_DEV(0), 0xa1);
    harness_outb(vm, P_COUNT(0), 1);
    harness_outb(vm, P_LBAL(0), 3);
    harness_outb(vm, P_LBAM(0), 0);
    harness_outb(vm, P_LBAH(0), 0);
    harness_outb(vm, P_STATUS(0), 0x20);
    assert_int_equal(ide_settle(vm, 0), 0x58);
    ide_pio_in(vm, 0, buf, 512, false);
    check_sectors(buf, 65, 1);
    /* CHS sector 0 does not exist. */
    harness_outb(vm, P_LBAL(0), 0);
    harness_outb(vm, P_STATUS(0), 0x20);
    assert_int_equal(ide_settle(vm, 0), 0x51);
    assert_int_equal(harness_inb(vm, P_ERR(0)), 0x10);

    /* Out of range: IDNF, nothing transferred. */
    ide_cmd28(vm, 0, 0, 0x20, DISK_SECTORS - 1, 2, 0);
    assert_int_equal(ide_settle(vm, 0), 0x51);
    assert_int_equal(harness_inb(vm, P_ERR(0)), 0x10);
    ide_cmd28(vm, 0, 0, 0x40, DISK_SECTORS, 1, 0); /* READ VERIFY past the end */
    assert_int_equal(ide_settle(vm, 0), 0x51);
    assert_int_equal(harness_inb(vm, P_ERR(0)), 0x10);
    ide_cmd28(vm, 0, 0, 0x40, 10, 8, 0);
    assert_int_equal(ide_settle(vm, 0), 0x50);
    /* An unknown command aborts. */
    ide_cmd28(vm, 0, 0, 0xf0, 0, 0, 0);
    assert_int_equal(ide_settle(vm, 0), 0x51);
    assert_int_equal(harness_inb(vm, P_ERR(0)), 0x04);
}

static void test_multiple(void **state)
{
    struct ide_fix *f = *state;
    struct vm *vm = f->vm;
    uint8_t buf[6 * 512];

    uint8_t id[512];
    ide_cmd28(vm, 0, 0, 0xec, 0, 0, 0);
    ide_settle(vm, 0);
    ide_pio_in(vm, 0, id, sizeof(id), false);
    assert_int_equal(id_word(id, 59), 0x0110); /* enabled at 16 sectors from power-on */
    ide_cmd28(vm, 0, 0, 0xc6, 0, 0, 0);      /* disable multiple mode */
    assert_int_equal(ide_settle(vm, 0), 0x50);
    ide_cmd28(vm, 0, 0, 0xc4, 0, 1, 0); /* READ MULTIPLE aborts while it is disabled */
    assert_int_equal(ide_settle(vm, 0), 0x51);
    ide_cmd28(vm, 0, 0, 0xc6, 0, 3, 0); /* not a power of two */
    assert_int_equal(ide_settle(vm, 0), 0x51);
    ide_cmd28(vm, 0, 0, 0xc6, 0, 4, 0);
    assert_int_equal(ide_settle(vm, 0), 0x50);
    harness_inb(vm, P_STATUS(0));
    harness_gsi_clear(vm);

    for (unsigned i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)(i ^ 0xa5);
    ide_cmd28(vm, 0, 0, 0xc5, 200, 6, 0); /* WRITE MULTIPLE: blocks of 4 and 2 sectors */
    assert_int_equal(ide_settle(vm, 0), 0x58);
    ide_pio_out(vm, 0, buf, 4 * 512, true);
    assert_int_equal(ide_settle(vm, 0), 0x58);
    harness_inb(vm, P_STATUS(0));
    ide_pio_out(vm, 0, buf + 4 * 512, 2 * 512, true);
    assert_int_equal(ide_settle(vm, 0), 0x50);
    assert_int_equal(harness_gsi_rises(vm, 14), 2);
    uint8_t file[sizeof(buf)];
    img_read(f->disk, 200 * 512, file, sizeof(file));
    assert_memory_equal(file, buf, sizeof(buf));

    harness_gsi_clear(vm);
    ide_cmd48(vm, 0, 0, 0x29, 7, 5); /* READ MULTIPLE EXT: 4 + 1 */
    assert_int_equal(ide_settle(vm, 0), 0x58);
    harness_inb(vm, P_STATUS(0));
    ide_pio_in(vm, 0, buf, 4 * 512, false);
    assert_int_equal(ide_settle(vm, 0), 0x58);
    ide_pio_in(vm, 0, buf + 4 * 512, 512, false);
    assert_int_equal(ide_settle(vm, 0), 0x50);
    assert_int_equal(harness_gsi_rises(vm, 14), 2);
    check_sectors(buf, 7, 5);
}

static void test_lba48_and_hob(void **state)
{
    (void)state;
    struct ide_fix f = {0};
    ide_fix_dir(&f, "tstIde48");
    /* A sparse disk past the 28-bit limit, with known sectors just above it. */
    uint64_t base = 0x10000005ull;
    img_create(f.disk, (base + 64) * 512, 512, 0, 0);
    uint8_t pat[4 * 512];
    img_fill(pat, base, 512, 4, DISK_SEED);
    img_write(f.disk, base * 512, pat, sizeof(pat));
    char cfg[256];
    snprintf(cfg, sizeof(cfg), "p0m.path=%s", f.disk);
    ide_fix_start(&f, cfg);
    struct vm *vm = f.vm;

    uint8_t id[512];
    ide_cmd28(vm, 0, 0, 0xec, 0, 0, 0);
    ide_settle(vm, 0);
    ide_pio_in(vm, 0, id, sizeof(id), false);
    assert_int_equal(id_word(id, 60) | (uint32_t)id_word(id, 61) << 16, 0x0fffffffu);
    uint64_t lba48 = id_word(id, 100) | (uint64_t)id_word(id, 101) << 16 | (uint64_t)id_word(id, 102) << 32;
    assert_int_equal(lba48, base + 64);

    uint8_t buf[4 * 512];
    ide_cmd48(vm, 0, 0, 0x24, base + 1, 3);
    for (unsigned s = 0; s < 3; s++) {
        assert_int_equal(ide_settle(vm, 0), 0x58);
        ide_pio_in(vm, 0, buf + s * 512, 512, false);
    }
    assert_int_equal(ide_settle(vm, 0), 0x50);
    assert_memory_equal(buf, pat + 512, 3 * 512);

    for (unsigned i = 0; i < 1024; i++)
        buf[i] = (uint8_t)(0x5c + i);
    ide_cmd48(vm, 0, 0, 0x34, base + 40, 2);
    ide_pio_out(vm, 0, buf, 512, false);
    ide_settle(vm, 0);
    ide_pio_out(vm, 0, buf + 512, 512, false);
    assert_int_equal(ide_settle(vm, 0), 0x50);
    uint8_t file[1024];
    img_read(f.disk, (base + 40) * 512, file, sizeof(file));
    assert_memory_equal(file, buf, sizeof(file));

    /* A 28-bit command cannot reach it. */
    ide_cmd28(vm, 0, 0, 0x20, 0x0fffffff, 1, 0);
    assert_int_equal(ide_settle(vm, 0), 0x58);
    ide_pio_in(vm, 0, buf, 512, false);
    /* LBA48 out of range: IDNF with the first bad address in the registers. */
    ide_cmd48(vm, 0, 0, 0x24, base + 63, 2);
    assert_int_equal(ide_settle(vm, 0), 0x51);
    assert_int_equal(harness_inb(vm, P_ERR(0)), 0x10);

    /* HOB: the previous value of each register reads back while device control bit 7 is set. */
    harness_outb(vm, P_LBAM(0), 0x11);
    harness_outb(vm, P_LBAM(0), 0x22);
    harness_outb(vm, P_CTL(0), 0x80);
    assert_int_equal(harness_inb(vm, P_LBAM(0)), 0x11);
    harness_outb(vm, P_CTL(0), 0x00);
    assert_int_equal(harness_inb(vm, P_LBAM(0)), 0x22);
    harness_outb(vm, P_CTL(0), 0x80);
    harness_outb(vm, P_COUNT(0), 0x01); /* any command-block write clears HOB */
    assert_int_equal(harness_inb(vm, P_LBAM(0)), 0x22);
    ide_fix_cleanup(&f);
}

static void test_features_and_geometry(void **state)
{
    struct ide_fix *f = *state;
    struct vm *vm = f->vm;
    uint8_t id[512], buf[512];
    /* SET FEATURES: multiword DMA 2, then an Ultra DMA mode this drive lacks, then an unknown subcommand. */
    ide_cmd28(vm, 0, 0, 0xef, 0, 0x22, 0x03);
    assert_int_equal(ide_settle(vm, 0), 0x50);
    ide_cmd28(vm, 0, 0, 0xef, 0, 0x46, 0x03);
    assert_int_equal(ide_settle(vm, 0), 0x51);
    ide_cmd28(vm, 0, 0, 0xef, 0, 0, 0x05); /* APM is not supported */
    assert_int_equal(ide_settle(vm, 0), 0x51);
    assert_int_equal(harness_inb(vm, P_ERR(0)), 0x04);
    ide_cmd28(vm, 0, 0, 0xec, 0, 0, 0);
    ide_settle(vm, 0);
    ide_pio_in(vm, 0, id, sizeof(id), false);
    assert_int_equal(id_word(id, 63), 0x0407);
    assert_int_equal(id_word(id, 88), 0x003f);

    /* INITIALIZE DEVICE PARAMETERS: 4 heads, 32 sectors per track; CHS follows the new translation. */
    harness_outb(vm, P_DEV(0), 0xa3);
    harness_outb(vm, P_COUNT(0), 32);
    harness_outb(vm, P_STATUS(0), 0x91);
    assert_int_equal(ide_settle(vm, 0), 0x50);
    ide_cmd28(vm, 0, 0, 0xec, 0, 0, 0);
    ide_settle(vm, 0);
    ide_pio_in(vm, 0, id, sizeof(id), false);
    assert_int_equal(id_word(id, 55), 4);
    assert_int_equal(id_word(id, 56), 32);
    assert_int_equal(id_word(id, 54), DISK_SECTORS / (4 * 32));
    check_checksum(id);
    /* Cylinder 2, head 3, sector 5: LBA (2 * 4 + 3) * 32 + 4. */
    harness_outb(vm, P_DEV(0), 0xa3);
    harness_outb(vm, P_COUNT(0), 1);
    harness_outb(vm, P_LBAL(0), 5);
    harness_outb(vm, P_LBAM(0), 2);
    harness_outb(vm, P_LBAH(0), 0);
    harness_outb(vm, P_STATUS(0), 0x20);
    assert_int_equal(ide_settle(vm, 0), 0x58);
    ide_pio_in(vm, 0, buf, 512, false);
    check_sectors(buf, (2 * 4 + 3) * 32 + 4, 1);
    /* Head 4 is outside the translation. */
    harness_outb(vm, P_DEV(0), 0xa4);
    harness_outb(vm, P_STATUS(0), 0x20);
    assert_int_equal(ide_settle(vm, 0), 0x51);
    assert_int_equal(harness_inb(vm, P_ERR(0)), 0x10);
    /* Power-on (hardware) reset restores the default translation. */
    pdm_dev_desc(f->ide)->reset(f->ide);
    ide_cmd28(vm, 0, 0, 0xec, 0, 0, 0);
    ide_settle(vm, 0);
    ide_pio_in(vm, 0, id, sizeof(id), false);
    assert_int_equal(id_word(id, 55), 16);
    assert_int_equal(id_word(id, 63), 0x0007);
}

/* ---- DMA ------------------------------------------------------------------------------------------ */

static void test_dma(void **state)
{
    struct ide_fix *f = *state;
    struct vm *vm = f->vm;
    const uint32_t gpas[3] = {0x10000, 0x20200, 0x30000};
    const uint32_t lens[3] = {512, 1024, 2048};
    uint8_t data[3584], back[3584];
    for (unsigned i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 11 + 5);
    unsigned off = 0;
    for (unsigned i = 0; i < 3; i++) {
        assert_int_equal(mem_write(vm, gpas[i], data + off, lens[i]), 0);
        off += lens[i];
    }
    ide_prd(vm, 0x1000, gpas, lens, 3);
    harness_outl(vm, P_PRD(0), 0x1000);

    /* WRITE DMA of 7 sectors; the command first, then the start bit. */
    ide_cmd28(vm, 0, 0, 0xca, 300, 7, 0);
    assert_int_equal(harness_inb(vm, P_CTL(0)) & 0x80, 0);
    harness_outb(vm, P_BMIC(0), 0x01);
    assert_int_equal(ide_settle(vm, 0), 0x50);
    assert_int_equal(harness_inb(vm, P_BMIS(0)) & 7, IDE_BMIS_INT_TEST); /* interrupt, table used up exactly */
    assert_true(harness_gsi_level(vm, 14));
    harness_outb(vm, P_BMIC(0), 0x00);
    harness_outb(vm, P_BMIS(0), IDE_BMIS_INT_TEST);
    assert_int_equal(harness_inb(vm, P_BMIS(0)) & 7, 0);
    assert_int_equal(harness_inb(vm, P_STATUS(0)), 0x50);
    img_read(f->disk, 300 * 512, back, sizeof(back));
    assert_memory_equal(back, data, sizeof(data));

    /* READ DMA EXT of the same sectors into cleared memory; the start bit first this time. */
    uint8_t zero[2048] = {0};
    for (unsigned i = 0; i < 3; i++)
        mem_write(vm, gpas[i], zero, lens[i]);
    harness_outb(vm, P_BMIC(0), 0x09);
    ide_cmd48(vm, 0, 0, 0x25, 300, 7);
    assert_int_equal(ide_settle(vm, 0), 0x50);
    off = 0;
    for (unsigned i = 0; i < 3; i++) {
        mem_read(vm, gpas[i], back + off, lens[i]);
        off += lens[i];
    }
    assert_memory_equal(back, data, sizeof(data));
    harness_outb(vm, P_BMIC(0), 0x00);
    harness_outb(vm, P_BMIS(0), 0x06);

    /* A longer table is fine: the engine stays active with the interrupt bit set. */
    ide_cmd28(vm, 0, 0, 0xc8, 0, 2, 0);
    harness_outb(vm, P_BMIC(0), 0x09);
    assert_int_equal(ide_settle(vm, 0), 0x50);
    assert_int_equal(harness_inb(vm, P_BMIS(0)) & 7, IDE_BMIS_INT_TEST | 1);
    mem_read(vm, gpas[0], back, 512);
    mem_read(vm, gpas[1], back + 512, 512);
    check_sectors(back, 0, 2);
    harness_outb(vm, P_BMIC(0), 0x00);
    harness_outb(vm, P_BMIS(0), 0x06);

    /* A shorter table: BMIS error, the command aborted, nothing written. */
    ide_cmd28(vm, 0, 0, 0xca, 400, 16, 0);
    harness_outb(vm, P_BMIC(0), 0x01);
    assert_int_equal(ide_settle(vm, 0), 0x51);
    assert_int_equal(harness_inb(vm, P_BMIS(0)) & 7, IDE_BMIS_INT_TEST | 2);
    img_read(f->disk, 400 * 512, back, 512);
    check_sectors(back, 400, 1);
    harness_outb(vm, P_BMIC(0), 0x00);
    harness_outb(vm, P_BMIS(0), 0x06);

    /* The direction bit must match the command. */
    ide_cmd28(vm, 0, 0, 0xc8, 0, 1, 0);
    harness_outb(vm, P_BMIC(0), 0x01);
    assert_int_equal(ide_settle(vm, 0), 0x51);
    assert_int_equal(harness_inb(vm, P_BMIS(0)) & 2, 2);
    harness_outb(vm, P_BMIC(0), 0x00);
    harness_outb(vm, P_BMIS(0), 0x06);
}

static void test_dma_stop_early(void **state)
{
    struct ide_fix *f = *state;
    struct vm *vm = f->vm;
    /* 5 MiB in 80 entries of 64 KiB (count 0): more than one drive request. */
    uint32_t gpas[80], lens[80];
    for (unsigned i = 0; i < 80; i++) {
        gpas[i] = 0x100000 + i * 0x10000;
        lens[i] = 0;
    }
    ide_prd(vm, 0x2000, gpas, lens, 80);
    harness_outl(vm, P_PRD(0), 0x2000);
    ide_cmd48(vm, 0, 0, 0x25, 0, 10240);
    harness_outb(vm, P_BMIC(0), 0x09);
    harness_outb(vm, P_BMIC(0), 0x08); /* stop while the first chunk is with the drive */
    uint8_t st = ide_settle(vm, 0);
    assert_int_equal(st, 0x51);
    assert_int_equal(harness_inb(vm, P_ERR(0)), 0x04);
    assert_int_equal(harness_inb(vm, P_BMIS(0)) & 1, 0);
    /* The first 4 MiB arrived. */
    uint8_t back[512];
    mem_read(vm, 0x100000 + 0x3ff000, back, 512);
    check_sectors(back, 0x1ff8, 1);
}

static void test_flush(void **state)
{
    struct ide_fix *f = *state;
    struct vm *vm = f->vm;
    uint8_t buf[512];
    memset(buf, 0xe7, sizeof(buf));
    /* With the write cache off, a write is flushed before it completes; FLUSH CACHE (EXT) flushes on demand. */
    ide_cmd28(vm, 0, 0, 0xef, 0, 0, 0x82);
    ide_settle(vm, 0);
    ide_cmd28(vm, 0, 0, 0x30, 42, 1, 0);
    ide_pio_out(vm, 0, buf, 512, false);
    assert_int_equal(ide_settle(vm, 0), 0x50);
    uint8_t file[512];
    img_read(f->disk, 42 * 512, file, 512);
    assert_memory_equal(file, buf, 512);
    harness_inb(vm, P_STATUS(0));
    harness_gsi_clear(vm);
    ide_cmd28(vm, 0, 0, 0xe7, 0, 0, 0);
    assert_int_equal(harness_inb(vm, P_CTL(0)) & 0x80, 0x80); /* BSY while the flush runs */
    harness_outb(vm, P_LBAL(0), 0x99);                      /* ignored while BSY */
    assert_int_equal(ide_settle(vm, 0), 0x50);
    assert_int_equal(harness_gsi_rises(vm, 14), 1);
    assert_int_not_equal(harness_inb(vm, P_LBAL(0)), 0x99);
    ide_cmd48(vm, 0, 0, 0xea, 0, 0);
    assert_int_equal(ide_settle(vm, 0), 0x50);
    assert_int_equal(harness_gsi_rises(vm, 14), 2);
}

/* ---- Interrupts, resets, absent devices -------------------------------------------------------------- */

static void test_irq_and_nien(void **state)
{
    struct ide_fix *f = *state;
    struct vm *vm = f->vm;
    ide_cmd28(vm, 0, 0, 0xe5, 0, 0, 0); /* CHECK POWER MODE: active */
    ide_settle(vm, 0);
    assert_true(harness_gsi_level(vm, 14));
    assert_false(harness_gsi_level(vm, 15));
    assert_int_equal(harness_inb(vm, P_COUNT(0)), 0xff);
    harness_inb(vm, P_CTL(0)); /* alternate status leaves it pending */
    assert_true(harness_gsi_level(vm, 14));
    harness_inb(vm, P_STATUS(0));
    assert_false(harness_gsi_level(vm, 14));

    /* nIEN masks the line; the interrupt stays pending and shows when unmasked. */
    harness_outb(vm, P_CTL(0), 0x02);
    ide_cmd28(vm, 0, 0, 0xe0, 0, 0, 0); /* STANDBY IMMEDIATE */
    ide_settle(vm, 0);
    assert_false(harness_gsi_level(vm, 14));
    harness_outb(vm, P_CTL(0), 0x00);
    assert_true(harness_gsi_level(vm, 14));
    harness_inb(vm, P_STATUS(0));
    ide_cmd28(vm, 0, 0, 0xe5, 0, 0, 0);
    ide_settle(vm, 0);
    assert_int_equal(harness_inb(vm, P_COUNT(0)), 0x00); /* standby now */
    harness_inb(vm, P_STATUS(0));

    /* The secondary channel interrupts on IRQ 15. */
    harness_gsi_clear(vm);
    ide_select(vm, 1, 0);
    harness_outb(vm, P_STATUS(1), 0xa1);
    ide_settle(vm, 1);
    assert_true(harness_gsi_level(vm, 15));
    assert_int_equal(harness_gsi_rises(vm, 15), 1);
    assert_int_equal(harness_gsi_rises(vm, 14), 0);
}

static void test_soft_reset_signatures(void **state)
{
    struct ide_fix *f = *state;
    struct vm *vm = f->vm;
    ide_cmd28(vm, 0, 0, 0xc6, 0, 8, 0); /* a setting that a soft reset keeps */
    ide_settle(vm, 0);
    harness_gsi_clear(vm);
    harness_outb(vm, P_CTL(0), 0x04);
    assert_int_equal(harness_inb(vm, P_CTL(0)) & 0x80, 0x80);
    harness_outb(vm, P_CTL(0), 0x00);
    assert_int_equal(harness_gsi_rises(vm, 14), 0);
    /* Device 0 is selected after reset: ATA signature, ready. */
    assert_int_equal(harness_inb(vm, P_DEV(0)) & 0x10, 0);
    assert_int_equal(harness_inb(vm, P_COUNT(0)), 1);
    assert_int_equal(harness_inb(vm, P_LBAL(0)), 1);
    assert_int_equal(harness_inb(vm, P_LBAM(0)), 0x00);
    assert_int_equal(harness_inb(vm, P_LBAH(0)), 0x00);
    assert_int_equal(harness_inb(vm, P_ERR(0)), 0x01);
    assert_int_equal(harness_inb(vm, P_STATUS(0)), 0x50);
    /* Device 1 is the CD drive: ATAPI signature, DRDY clear. */
    ide_select(vm, 0, 1);
    assert_int_equal(harness_inb(vm, P_LBAM(0)), 0x14);
    assert_int_equal(harness_inb(vm, P_LBAH(0)), 0xeb);
    assert_int_equal(harness_inb(vm, P_STATUS(0)), 0x00);
    /* SET MULTIPLE survived. */
    uint8_t id[512];
    ide_cmd28(vm, 0, 0, 0xec, 0, 0, 0);
    ide_settle(vm, 0);
    ide_pio_in(vm, 0, id, sizeof(id), false);
    assert_int_equal(id_word(id, 59), 0x0108);

    /* A soft reset in the middle of a PIO read ends it. */
    ide_cmd28(vm, 0, 0, 0x20, 0, 4, 0);
    ide_settle(vm, 0);
    harness_inw(vm, P_DATA(0));
    harness_outb(vm, P_CTL(0), 0x04);
    harness_outb(vm, P_CTL(0), 0x00);
    assert_int_equal(harness_inb(vm, P_STATUS(0)), 0x50);

    /* EXECUTE DEVICE DIAGNOSTIC: both devices post signatures, device 0 interrupts. */
    ide_select(vm, 0, 1);
    harness_outb(vm, P_STATUS(0), 0x90);
    ide_settle(vm, 0);
    assert_true(harness_gsi_level(vm, 14));
    assert_int_equal(harness_inb(vm, P_ERR(0)), 0x01);
    assert_int_equal(harness_inb(vm, P_LBAH(0)), 0x00);
    ide_select(vm, 0, 1);
    assert_int_equal(harness_inb(vm, P_LBAH(0)), 0xeb);
}

static void test_absent_slave(void **state)
{
    struct ide_fix *f = *state;
    struct vm *vm = f->vm;
    /* Channel 1 has only a master (the CD drive). */
    ide_select(vm, 1, 1);
    assert_int_equal(harness_inb(vm, P_STATUS(1)), 0x00);
    assert_int_equal(harness_inb(vm, P_CTL(1)), 0x00);
    harness_outb(vm, P_LBAL(1), 0x55);
    harness_outb(vm, P_COUNT(1), 0xaa);
    assert_int_equal(harness_inb(vm, P_LBAL(1)), 0x55); /* device 0 answers with its registers */
    assert_int_equal(harness_inb(vm, P_COUNT(1)), 0xaa);
    harness_outb(vm, P_STATUS(1), 0xa1); /* ignored */
    ide_settle(vm, 1);
    assert_int_equal(harness_gsi_rises(vm, 15), 0);
    assert_int_equal(harness_inb(vm, P_STATUS(1)), 0x00);
    ide_select(vm, 1, 0);
    assert_int_equal(harness_inb(vm, P_STATUS(1)) & 0x88, 0x00);
    assert_int_equal(harness_inb(vm, P_LBAL(1)), 0x55);
}

static void test_empty_channel(void **state)
{
    (void)state;
    struct ide_fix f = {0};
    ide_fix_dir(&f, "tstIdeEmpty");
    img_create(f.disk, 1 << 20, 512, 4, DISK_SEED);
    char cfg[256];
    snprintf(cfg, sizeof(cfg), "p0s.path=%s", f.disk);
    ide_fix_start(&f, cfg);
    /* No device on channel 1: the bus floats but for the host's pull-down on DD7, so BSY reads clear (7Fh). */
    assert_int_equal(harness_inb(f.vm, P_STATUS(1)), 0x7f);
    assert_int_equal(harness_inb(f.vm, P_CTL(1)), 0x7f);
    assert_int_equal(harness_inb(f.vm, P_LBAM(1)), 0x7f);
    /* What firmware does to find devices (OVMF: EXECUTE DEVICE DIAGNOSTIC, wait for BSY clear, read the
     * signature; SeaBIOS and Linux: write a pattern and read it back; a soft reset): on both device numbers
     * BSY is clear at once, no signature, nothing latched, no interrupt. */
    for (unsigned dev = 0; dev < 2; dev++) {
        ide_cmd28(f.vm, 1, dev, 0x90, 0, 0, 0);
        assert_int_equal(ide_settle(f.vm, 1) & 0x80, 0);
        assert_int_equal(harness_inb(f.vm, P_STATUS(1)) & 0x80, 0);
        assert_int_equal(harness_inb(f.vm, P_COUNT(1)), 0x7f);
        assert_int_equal(harness_inb(f.vm, P_LBAL(1)), 0x7f);
        assert_int_equal(harness_inb(f.vm, P_LBAM(1)), 0x7f); /* neither 00h/00h (ATA) nor 14h/EBh (ATAPI) */
        assert_int_equal(harness_inb(f.vm, P_LBAH(1)), 0x7f);
        harness_outb(f.vm, P_COUNT(1), 0x55);
        harness_outb(f.vm, P_LBAL(1), 0xaa);
        assert_int_equal(harness_inb(f.vm, P_COUNT(1)), 0x7f);
        assert_int_equal(harness_inb(f.vm, P_LBAL(1)), 0x7f);
        ide_cmd28(f.vm, 1, dev, 0xa1, 0, 0, 0); /* IDENTIFY PACKET DEVICE: nobody answers with DRQ */
        assert_int_equal(ide_settle(f.vm, 1) & 0x80, 0);
        assert_int_equal(harness_inb(f.vm, P_DATA(1)) & 0x80, 0);
    }
    harness_outb(f.vm, P_CTL(1), 0x04);
    assert_int_equal(harness_inb(f.vm, P_CTL(1)) & 0x80, 0);
    harness_outb(f.vm, P_CTL(1), 0x00);
    assert_int_equal(harness_inb(f.vm, P_STATUS(1)) & 0x80, 0);
    assert_int_equal(harness_gsi_rises(f.vm, 15), 0);
    /* A slave without a master works (device 0 reads 00h status when selected). */
    ide_select(f.vm, 0, 0);
    assert_int_equal(harness_inb(f.vm, P_STATUS(0)), 0x00);
    ide_cmd28(f.vm, 0, 1, 0x20, 3, 1, 0);
    assert_int_equal(ide_settle(f.vm, 0), 0x58);
    uint8_t buf[512];
    ide_pio_in(f.vm, 0, buf, 512, false);
    check_sectors(buf, 3, 1);
    ide_fix_cleanup(&f);
}

static void test_config(void **state)
{
    (void)state;
    struct vm *vm = harness_vm_create(0);
    harness_dev_create(vm, &g_dev_i440fx, "pci", NULL);
    struct pdm_dev *d = NULL;
    assert_int_equal(harness_dev_try_create(vm, &g_dev_piix3_ide, "ide", "p2m.path=/x", &d), VERR_CFG_UNKNOWN_KEY);
    assert_int_equal(harness_dev_try_create(vm, &g_dev_piix3_ide, "ide", "p0m.path=/nonexistent/disk.raw", &d),
                     VERR_FILE_NOT_FOUND);
    assert_int_equal(harness_dev_try_create(vm, &g_dev_piix3_ide, "ide", "p0m.media=tape", &d), VERR_CFG_BAD_VALUE);
    /* A CD drive without a medium is fine; the controller sits at 00:01.1. */
    assert_int_equal(harness_dev_try_create(vm, &g_dev_piix3_ide, "ide", "p1m.media=cdrom", &d), 0);
    assert_int_equal(cfg_read(vm, PCI_CFG_DEVICE_ID, 2), 0x7010);
    harness_vm_destroy(vm);
}

/* ---- Saved state ---------------------------------------------------------------------------------------- */

static void test_save_mid_pio(void **state)
{
    struct ide_fix *f = *state;
    struct vm *vm = f->vm;
    uint8_t buf[3 * 512];
    ide_cmd28(vm, 0, 0, 0x20, 10, 3, 0);
    ide_settle(vm, 0);
    ide_pio_in(vm, 0, buf, 512 + 200, false);
    assert_int_equal(harness_dev_save_reset_load(f->ide), 0);
    assert_int_equal(harness_inb(vm, P_CTL(0)), 0x58);
    ide_pio_in(vm, 0, buf + 712, 312, false);
    assert_int_equal(ide_settle(vm, 0), 0x58);
    ide_pio_in(vm, 0, buf + 1024, 512, false);
    assert_int_equal(ide_settle(vm, 0), 0x50);
    check_sectors(buf, 10, 3);

    /* In the middle of a write block too, with the interrupt line pending. */
    for (unsigned i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)(0xc3 ^ i);
    ide_cmd28(vm, 0, 0, 0x30, 500, 2, 0);
    ide_pio_out(vm, 0, buf, 512, false);
    ide_settle(vm, 0);
    assert_true(harness_gsi_level(vm, 14));
    ide_pio_out(vm, 0, buf + 512, 100, false);
    assert_int_equal(harness_dev_save_reset_load(f->ide), 0);
    assert_true(harness_gsi_level(vm, 14));
    ide_pio_out(vm, 0, buf + 612, 412, false);
    assert_int_equal(ide_settle(vm, 0), 0x50);
    uint8_t file[1024];
    img_read(f->disk, 500 * 512, file, sizeof(file));
    assert_memory_equal(file, buf, sizeof(file));

    /* A DMA command waiting for the start bit survives too. */
    const uint32_t gpa = 0x40000, len = 512;
    ide_prd(vm, 0x3000, &gpa, &len, 1);
    harness_outl(vm, P_PRD(0), 0x3000);
    ide_cmd28(vm, 0, 0, 0xc8, 9, 1, 0);
    assert_int_equal(harness_dev_save_reset_load(f->ide), 0);
    harness_outb(vm, P_BMIC(0), 0x09);
    assert_int_equal(ide_settle(vm, 0), 0x50);
    mem_read(vm, gpa, buf, 512);
    check_sectors(buf, 9, 1);
}

/* ---- Garbage ---------------------------------------------------------------------------------------------- */

static void test_garbage(void **state)
{
    struct ide_fix *f = *state;
    struct vm *vm = f->vm;
    static const uint16_t ports[] = {0x1f0, 0x1f1, 0x1f2, 0x1f3, 0x1f4, 0x1f5, 0x1f6, 0x1f7, 0x3f6,
                                     0x170, 0x171, 0x172, 0x173, 0x174, 0x175, 0x176, 0x177, 0x376,
                                     0xc000, 0xc001, 0xc002, 0xc003, 0xc004, 0xc005, 0xc006, 0xc007,
                                     0xc008, 0xc009, 0xc00a, 0xc00b, 0xc00c, 0xc00d, 0xc00e, 0xc00f};
    uint32_t seed = 0x1de5eed;
    for (unsigned round = 0; round < 20000; round++) {
        uint32_t r = harness_rand(&seed);
        uint16_t port = ports[r % RT_ARRAY_SIZE(ports)];
        unsigned size = 1u << ((r >> 8) % 3);
        uint32_t v = harness_rand(&seed);
        if ((r >> 12) % 64 == 0) {
            /* A random PRD table in RAM where the engine may look. */
            uint32_t table = (harness_rand(&seed) % (IDE_RAM_BYTES / 8)) * 8 & ~3u;
            for (unsigned i = 0; i < 4; i++) {
                uint32_t e[2] = {harness_rand(&seed) % IDE_RAM_BYTES, harness_rand(&seed)};
                mem_write(vm, (table + 8 * i) % (IDE_RAM_BYTES - 8), e, sizeof(e));
            }
            harness_outl(vm, (r & 0x100000) ? P_PRD(1) : P_PRD(0), table);
        }
        if ((r >> 12) % 97 == 0)
            harness_drain_io(vm);
        /* Commands mostly, with a bias towards data-moving ones so the transfer paths run. */
        if (port == 0x1f7 || port == 0x177) {
            static const uint8_t cmds[] = {0x20, 0x24, 0x29, 0x30, 0x34, 0x39, 0xc4, 0xc5, 0xc6, 0xc8,
                                           0x25, 0xca, 0x35, 0xa0, 0xa1, 0xec, 0xe7, 0xef, 0x90, 0x08};
            v = (v & 1) ? cmds[(v >> 1) % RT_ARRAY_SIZE(cmds)] : v;
            size = 1;
        }
        if (r & 0x80000000u) {
            if (size == 1)
                harness_inb(vm, port);
            else if (size == 2)
                harness_inw(vm, port);
            else
                harness_inl(vm, port);
        } else if (size == 1) {
            harness_outb(vm, port, (uint8_t)v);
        } else if (size == 2) {
            harness_outw(vm, port, (uint16_t)v);
        } else {
            harness_outl(vm, port, v);
        }
    }
    harness_drain_io(vm);
    /* Still a working controller after a reset, and the file outside the written area is intact. */
    harness_outb(vm, P_BMIC(0), 0);
    pdm_dev_desc(f->ide)->reset(f->ide);
    cfg_write(vm, PCI_CFG_BAR0 + 16, IDE_BM_PORT, 4);
    cfg_write(vm, PCI_CFG_COMMAND, PCI_COMMAND_IO | PCI_COMMAND_MASTER, 2);
    uint8_t id[512];
    ide_cmd28(vm, 0, 0, 0xec, 0, 0, 0);
    assert_int_equal(ide_settle(vm, 0), 0x58);
    ide_pio_in(vm, 0, id, sizeof(id), false);
    check_id_string(id, 27, 20, "VIREO HARDDISK");
    check_checksum(id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pci_function, setup, teardown),
        cmocka_unit_test_setup_teardown(test_identify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pio_lba28, setup, teardown),
        cmocka_unit_test_setup_teardown(test_multiple, setup, teardown),
        cmocka_unit_test_setup_teardown(test_features_and_geometry, setup, teardown),
        cmocka_unit_test(test_lba48_and_hob),
        cmocka_unit_test_setup_teardown(test_dma, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dma_stop_early, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush, setup, teardown),
        cmocka_unit_test_setup_teardown(test_irq_and_nien, setup, teardown),
        cmocka_unit_test_setup_teardown(test_soft_reset_signatures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_absent_slave, setup, teardown),
        cmocka_unit_test(test_empty_channel),
        cmocka_unit_test(test_config),
        cmocka_unit_test_setup_teardown(test_save_mid_pio, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
