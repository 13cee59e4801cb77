/* tstAtapi.c - ATAPI CD/DVD drives on the PIIX3 IDE controller: the packet protocol, MMC commands, media changes, tray lock. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ide-test.h"

#define ISO_SECTORS 64
#define ISO_SEED    0x77
#define CD_CH       1 /* the CD drive under test: secondary master */

static int setup(void **state)
{
    struct ide_fix *f = calloc(1, sizeof(*f));
    ide_fix_dir(f, "tstAtapi");
    img_create(f->iso, ISO_SECTORS * 2048, 2048, ISO_SECTORS, ISO_SEED);
    /* A DVD-sized image (1 GiB, sparse) with a pattern in its first sectors. */
    img_create(f->iso2, 1ull << 30, 2048, 8, ISO_SEED + 1);
    char cfg[512];
    snprintf(cfg, sizeof(cfg), "p1m.path=%s,p1m.media=cdrom", f->iso);
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

struct pkt {
    uint8_t status, error, ireason;
    unsigned len;    /* data bytes moved */
    unsigned blocks; /* DRQ data blocks */
};

/*
 * One PACKET command by PIO on the CD drive: the CDB, then every DRQ block (reading into in, up to max
 * bytes, or writing from out), acknowledging each interrupt.  Checks the interrupt reason of each phase.
 */
static struct pkt packet_io(struct vm *vm, const uint8_t cdb[12], uint16_t bcl, uint8_t *in, unsigned max,
                            const uint8_t *out, unsigned out_len)
{
    struct pkt r = {0};
    ide_select(vm, CD_CH, 0);
    harness_outb(vm, P_ERR(CD_CH), 0);
    harness_outb(vm, P_LBAM(CD_CH), (uint8_t)bcl);
    harness_outb(vm, P_LBAH(CD_CH), (uint8_t)(bcl >> 8));
    harness_outb(vm, P_STATUS(CD_CH), 0xa0);
    assert_int_equal(harness_inb(vm, P_CTL(CD_CH)) & 0x88, 0x08);
    assert_int_equal(harness_inb(vm, P_COUNT(CD_CH)) & 3, 1); /* CoD: command packet wanted */
    for (unsigned i = 0; i < 12; i += 2)
        harness_outw(vm, P_DATA(CD_CH), (uint16_t)(cdb[i] | cdb[i + 1] << 8));
    for (unsigned guard = 0; guard < 1000; guard++) {
        harness_drain_io(vm);
        uint8_t st = harness_inb(vm, P_STATUS(CD_CH));
        assert_int_equal(st & 0x80, 0);
        uint8_t ireason = harness_inb(vm, P_COUNT(CD_CH)) & 3;
        if (!(st & 0x08)) {
            r.status = st;
            r.error = harness_inb(vm, P_ERR(CD_CH));
            r.ireason = ireason;
            assert_int_equal(ireason, 3); /* status phase */
            return r;
        }
        unsigned n = harness_inb(vm, P_LBAM(CD_CH)) | harness_inb(vm, P_LBAH(CD_CH)) << 8;
        assert_true(n > 0 && n <= (bcl ? bcl : 0xfffe));
        r.blocks++;
        if (ireason == 2) {
            for (unsigned i = 0; i < n; i += 2) {
                uint16_t w = harness_inw(vm, P_DATA(CD_CH));
                if (r.len + i < max)
                    in[r.len + i] = (uint8_t)w;
                if (r.len + i + 1 < max)
                    in[r.len + i + 1] = (uint8_t)(w >> 8);
            }
        } else {
            assert_int_equal(ireason, 0);
            for (unsigned i = 0; i < n; i += 2) {
                uint16_t w = 0;
                if (r.len + i + 1 < out_len)
                    w = (uint16_t)(out[r.len + i] | out[r.len + i + 1] << 8);
                harness_outw(vm, P_DATA(CD_CH), w);
            }
        }
        r.len += n;
    }
    fail_msg("packet command never ended");
    return r;
}

static struct pkt packet(struct vm *vm, const uint8_t cdb[12], uint8_t *in, unsigned max)
{
    return packet_io(vm, cdb, 0xfffe, in, max, NULL, 0);
}

static void want_sense(struct vm *vm, uint8_t key, uint8_t asc, uint8_t ascq)
{
    uint8_t cdb[12] = {0x03, 0, 0, 0, 18};
    uint8_t s[18] = {0};
    struct pkt r = packet(vm, cdb, s, sizeof(s));
    assert_int_equal(r.status & 1, 0);
    assert_int_equal(r.len, 18);
    assert_int_equal(s[0] & 0x7f, 0x70);
    assert_int_equal(s[2] & 0x0f, key);
    assert_int_equal(s[12], asc);
    assert_int_equal(s[13], ascq);
}

/* The command fails with CHECK CONDITION: ERR, sense key in the error register, then that sense. */
static void want_check(struct vm *vm, const uint8_t cdb[12], uint8_t key, uint8_t asc, uint8_t ascq)
{
    uint8_t buf[64];
    struct pkt r = packet(vm, cdb, buf, sizeof(buf));
    assert_int_equal(r.status & 0x01, 0x01);
    assert_int_equal(r.error, (uint8_t)(key << 4 | 0x04));
    want_sense(vm, key, asc, ascq);
}

static void want_good(struct vm *vm, const uint8_t cdb[12])
{
    uint8_t buf[64];
    struct pkt r = packet(vm, cdb, buf, sizeof(buf));
    assert_int_equal(r.status & 0x01, 0);
}

static void check_iso(const uint8_t *buf, uint32_t lba, unsigned count, uint8_t seed)
{
    for (unsigned s = 0; s < count; s++)
        for (unsigned i = 0; i < 2048; i++)
            if (buf[s * 2048 + i] != img_byte(lba + s, i, seed))
                fail_msg("sector %u byte %u: %02x", lba + s, i, buf[s * 2048 + i]);
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ---- Tests ------------------------------------------------------------------------------------------- */

static void test_inquiry_capacity(void **state)
{
    struct ide_fix *f = *state;
    uint8_t buf[96];
    uint8_t inq[12] = {0x12, 0, 0, 0, 96};
    struct pkt r = packet(f->vm, inq, buf, sizeof(buf));
    assert_int_equal(r.status, 0x40);
    assert_int_equal(r.len, 36);
    assert_int_equal(buf[0], 0x05);
    assert_int_equal(buf[1], 0x80);
    assert_memory_equal(&buf[8], "VIREO   ", 8);
    assert_memory_equal(&buf[16], "VIREO CD-ROM", 12);
    /* The allocation length cuts the reply. */
    inq[4] = 5;
    r = packet(f->vm, inq, buf, sizeof(buf));
    assert_int_equal(r.len, 5);
    /* VPD: supported pages, then the serial number. */
    uint8_t vpd[12] = {0x12, 1, 0x00, 0, 96};
    r = packet(f->vm, vpd, buf, sizeof(buf));
    assert_int_equal(buf[3], 3);
    assert_int_equal(buf[5], 0x80);
    vpd[2] = 0x80;
    r = packet(f->vm, vpd, buf, sizeof(buf));
    assert_int_equal(buf[3], 20);
    struct drive *d = drive_find(f->vm, "ide-1-0");
    assert_non_null(d);
    assert_memory_equal(&buf[4], drive_serial(d), 20);
    vpd[2] = 0x42;
    want_check(f->vm, vpd, 5, 0x24, 0);

    uint8_t cap[12] = {0x25};
    r = packet(f->vm, cap, buf, sizeof(buf));
    assert_int_equal(r.len, 8);
    assert_int_equal(be32(buf), ISO_SECTORS - 1);
    assert_int_equal(be32(buf + 4), 2048);
}

static void test_read_pio(void **state)
{
    struct ide_fix *f = *state;
    uint8_t buf[6 * 2048];
    uint8_t rd[12] = {0x28, 0, 0, 0, 0, 3, 0, 0, 3};
    /* Byte count limit 4096: blocks of 4096 and 2048, an interrupt each and one for the status. */
    harness_gsi_clear(f->vm);
    struct pkt r = packet_io(f->vm, rd, 4096, buf, sizeof(buf), NULL, 0);
    assert_int_equal(r.status, 0x40);
    assert_int_equal(r.len, 3 * 2048);
    assert_int_equal(r.blocks, 2);
    assert_int_equal(harness_gsi_rises(f->vm, 15), 3);
    check_iso(buf, 3, 3, ISO_SEED);
    /* An odd limit is rounded down to even. */
    memset(buf, 0, sizeof(buf));
    rd[8] = 1;
    r = packet_io(f->vm, rd, 1001, buf, sizeof(buf), NULL, 0);
    assert_int_equal(r.blocks, 3);
    assert_int_equal(r.len, 2048);
    check_iso(buf, 3, 1, ISO_SEED);
    /* READ(12) and READ CD (user data) read the same sectors. */
    uint8_t rd12[12] = {0xa8, 0, 0, 0, 0, 60, 0, 0, 0, 4};
    r = packet(f->vm, rd12, buf, sizeof(buf));
    assert_int_equal(r.len, 4 * 2048);
    check_iso(buf, 60, 4, ISO_SEED);
    uint8_t rcd[12] = {0xbe, 0, 0, 0, 0, 10, 0, 0, 2, 0x10};
    r = packet(f->vm, rcd, buf, sizeof(buf));
    assert_int_equal(r.len, 2 * 2048);
    check_iso(buf, 10, 2, ISO_SEED);
    rcd[9] = 0xf8; /* sync, headers, EDC: not from an ISO image */
    want_check(f->vm, rcd, 5, 0x24, 0);
    /* Past the end of the medium. */
    uint8_t far[12] = {0x28, 0, 0, 0, 0, 60, 0, 0, 10};
    want_check(f->vm, far, 5, 0x21, 0);
    /* No data, GOOD. */
    uint8_t none[12] = {0x28, 0, 0, 0, 0, 1};
    r = packet(f->vm, none, buf, sizeof(buf));
    assert_int_equal(r.status, 0x40);
    assert_int_equal(r.len, 0);
}

static void test_read_dma(void **state)
{
    struct ide_fix *f = *state;
    struct vm *vm = f->vm;
    const uint32_t gpas[2] = {0x10000, 0x30000};
    const uint32_t lens[2] = {2048, 4096};
    ide_prd(vm, 0x1000, gpas, lens, 2);
    harness_outl(vm, P_PRD(CD_CH), 0x1000);
    harness_outb(vm, P_BMIC(CD_CH), 0x09);
    ide_select(vm, CD_CH, 0);
    harness_outb(vm, P_ERR(CD_CH), 0x01); /* DMA */
    harness_outb(vm, P_STATUS(CD_CH), 0xa0);
    const uint8_t cdb[12] = {0x28, 0, 0, 0, 0, 20, 0, 0, 3};
    for (unsigned i = 0; i < 12; i += 2)
        harness_outw(vm, P_DATA(CD_CH), (uint16_t)(cdb[i] | cdb[i + 1] << 8));
    uint8_t st = ide_settle(vm, CD_CH);
    assert_int_equal(st, 0x40);
    assert_int_equal(harness_inb(vm, P_COUNT(CD_CH)) & 3, 3);
    assert_int_equal(harness_inb(vm, P_BMIS(CD_CH)) & 7, IDE_BMIS_INT_TEST);
    assert_true(harness_gsi_level(vm, 15));
    uint8_t buf[3 * 2048];
    mem_read(vm, gpas[0], buf, 2048);
    mem_read(vm, gpas[1], buf + 2048, 4096);
    check_iso(buf, 20, 3, ISO_SEED);
    harness_outb(vm, P_BMIC(CD_CH), 0);
    harness_outb(vm, P_BMIS(CD_CH), 6);

    /* A reply (INQUIRY) by DMA too. */
    harness_outb(vm, P_BMIC(CD_CH), 0x09);
    harness_outb(vm, P_ERR(CD_CH), 0x01);
    harness_outb(vm, P_STATUS(CD_CH), 0xa0);
    const uint8_t inq[12] = {0x12, 0, 0, 0, 36};
    for (unsigned i = 0; i < 12; i += 2)
        harness_outw(vm, P_DATA(CD_CH), (uint16_t)(inq[i] | inq[i + 1] << 8));
    assert_int_equal(ide_settle(vm, CD_CH), 0x40);
    mem_read(vm, gpas[0], buf, 36);
    assert_int_equal(buf[0], 0x05);
    assert_memory_equal(&buf[8], "VIREO", 5);
    harness_outb(vm, P_BMIC(CD_CH), 0);
}

static void test_toc(void **state)
{
    struct ide_fix *f = *state;
    uint8_t buf[64];
    uint8_t toc[12] = {0x43, 0, 0, 0, 0, 0, 0, 0, 64};
    struct pkt r = packet(f->vm, toc, buf, sizeof(buf));
    assert_int_equal(r.len, 20);
    assert_int_equal(buf[0] << 8 | buf[1], 18);
    assert_int_equal(buf[2], 1);
    assert_int_equal(buf[3], 1);
    assert_int_equal(buf[6], 1);
    assert_int_equal(be32(buf + 8), 0);
    assert_int_equal(buf[14], 0xaa);
    assert_int_equal(be32(buf + 16), ISO_SECTORS);
    /* MSF: the lead-out at 64 + 150 frames = 00:02:64. */
    toc[1] = 0x02;
    r = packet(f->vm, toc, buf, sizeof(buf));
    assert_int_equal(buf[9], 0);
    assert_int_equal(buf[10], 2);
    assert_int_equal(buf[11], 0);
    assert_int_equal(buf[17], 0);
    assert_int_equal(buf[18], 2);
    assert_int_equal(buf[19], 64);
    /* Session info and the raw TOC. */
    toc[1] = 0;
    toc[2] = 1;
    r = packet(f->vm, toc, buf, sizeof(buf));
    assert_int_equal(r.len, 12);
    assert_int_equal(buf[6], 1);
    toc[2] = 2;
    r = packet(f->vm, toc, buf, sizeof(buf));
    assert_int_equal(r.len, 4 + 4 * 11);
    assert_int_equal(buf[4 + 3], 0xa0);
    assert_int_equal(buf[4 + 22 + 3], 0xa2);
    toc[2] = 0;
    toc[6] = 2; /* no track 2 */
    want_check(f->vm, toc, 5, 0x24, 0);
}

static void test_sense_after_bad_opcode(void **state)
{
    struct ide_fix *f = *state;
    uint8_t bad[12] = {0xff};
    uint8_t buf[32];
    struct pkt r = packet(f->vm, bad, buf, sizeof(buf));
    assert_int_equal(r.status, 0x41);
    assert_int_equal(r.error, 0x54);
    want_sense(f->vm, 5, 0x20, 0);
    /* REQUEST SENSE consumed it. */
    want_sense(f->vm, 0, 0, 0);
    uint8_t write10[12] = {0x2a};
    want_check(f->vm, write10, 5, 0x20, 0);
    /* ATA commands other than the packet ones abort on a CD drive. */
    ide_cmd28(f->vm, CD_CH, 0, 0x30, 0, 1, 0);
    assert_int_equal(ide_settle(f->vm, CD_CH) & 1, 1);
    assert_int_equal(harness_inb(f->vm, P_ERR(CD_CH)), 0x04);
}

static void test_media_change(void **state)
{
    struct ide_fix *f = *state;
    struct vm *vm = f->vm;
    struct drive *d = drive_find(vm, "ide-1-0");
    assert_non_null(d);
    uint8_t tur[12] = {0x00};
    uint8_t gesn[12] = {0x4a, 1, 0, 0, 0x10, 0, 0, 0, 8};
    uint8_t buf[2048];
    want_good(vm, tur);
    struct pkt r = packet(vm, gesn, buf, sizeof(buf));
    assert_int_equal(buf[2] & 0x07, 4);
    assert_int_equal(buf[4] & 0x0f, 0); /* no event */
    assert_int_equal(buf[5] & 0x02, 0x02);

    assert_int_equal(drive_eject(d, false), 0);
    want_check(vm, tur, 2, 0x3a, 0);
    uint8_t cap[12] = {0x25};
    want_check(vm, cap, 2, 0x3a, 0);
    r = packet(vm, gesn, buf, sizeof(buf));
    assert_int_equal(buf[4] & 0x0f, 3); /* media removal */
    assert_int_equal(buf[5] & 0x02, 0);
    uint8_t cfg[12] = {0x46, 0, 0, 0, 0, 0, 0, 0, 64};
    r = packet(vm, cfg, buf, sizeof(buf));
    assert_int_equal(buf[6] << 8 | buf[7], 0); /* no current profile */

    /* A DVD-sized medium: UNIT ATTENTION once, then ready; the current profile is DVD-ROM. */
    assert_int_equal(drive_insert(d, f->iso2, BLK_FMT_AUTO, false), 0);
    r = packet(vm, gesn, buf, sizeof(buf));
    assert_int_equal(buf[4] & 0x0f, 2); /* new media (GESN does not consume the unit attention) */
    want_check(vm, tur, 6, 0x28, 0);
    want_good(vm, tur);
    r = packet(vm, gesn, buf, sizeof(buf));
    assert_int_equal(buf[4] & 0x0f, 0);
    r = packet(vm, cap, buf, sizeof(buf));
    assert_int_equal(be32(buf), (1u << 30) / 2048 - 1);
    r = packet(vm, cfg, buf, sizeof(buf));
    assert_int_equal(buf[6] << 8 | buf[7], 0x0010);
    uint8_t dvd[12] = {0xad, 0, 0, 0, 0, 0, 0, 0x00, 0x08, 0x04};
    r = packet(vm, dvd, buf, sizeof(buf));
    assert_int_equal(r.len, 2052);
    assert_int_equal(buf[4], 0x01);
    uint8_t rd[12] = {0x28, 0, 0, 0, 0, 2, 0, 0, 1};
    r = packet(vm, rd, buf, sizeof(buf));
    check_iso(buf, 2, 1, ISO_SEED + 1);

    /* Back to the CD: DVD STRUCTURE is refused for a CD medium. */
    assert_int_equal(drive_insert(d, f->iso, BLK_FMT_AUTO, false), 0);
    want_check(vm, tur, 6, 0x28, 0);
    r = packet(vm, cfg, buf, sizeof(buf));
    assert_int_equal(buf[6] << 8 | buf[7], 0x0008);
    want_check(vm, dvd, 5, 0x30, 0x02);
}

static void test_tray_lock(void **state)
{
    struct ide_fix *f = *state;
    struct vm *vm = f->vm;
    struct drive *d = drive_find(vm, "ide-1-0");
    uint8_t prevent[12] = {0x1e, 0, 0, 0, 1};
    uint8_t eject[12] = {0x1b, 0, 0, 0, 0x02};
    uint8_t tur[12] = {0x00};
    want_good(vm, prevent);
    assert_true(drive_is_locked(d));
    /* The lock is saved state: a load brings it back even after the host side forgot it. */
    const struct pdm_dev_desc *desc = pdm_dev_desc(f->ide);
    struct ssm *saved = NULL, *in = NULL;
    assert_int_equal(ssm_create(&saved), 0);
    assert_int_equal(desc->save(f->ide, saved), 0);
    drive_set_locked(d, false);
    size_t len;
    const void *data = ssm_data(saved, &len);
    assert_int_equal(ssm_open(data, len, &in), 0);
    assert_int_equal(desc->load(f->ide, in, desc->ssm_version), 0);
    assert_true(drive_is_locked(d));
    ssm_destroy(in);
    ssm_destroy(saved);
    uint8_t buf[64];
    uint8_t ms[12] = {0x5a, 0, 0x2a, 0, 0, 0, 0, 0, 64};
    struct pkt r = packet(vm, ms, buf, sizeof(buf));
    assert_int_equal(buf[8], 0x2a);
    assert_int_equal(buf[8 + 6] & 0x03, 0x03); /* lock supported, locked */
    want_check(vm, eject, 5, 0x53, 0x02);
    assert_int_equal(drive_eject(d, false), VERR_BUSY);
    assert_true(drive_has_media(d));
    want_good(vm, tur);
    prevent[4] = 0;
    want_good(vm, prevent);
    want_good(vm, eject);
    assert_false(drive_has_media(d));
    want_check(vm, tur, 2, 0x3a, 0);
    (void)r;
}

static void test_misc_commands(void **state)
{
    struct ide_fix *f = *state;
    struct vm *vm = f->vm;
    uint8_t buf[512];
    struct pkt r;
    /* MODE SENSE: every page, and the capabilities page in the 6-byte form. */
    uint8_t ms10[12] = {0x5a, 0, 0x3f, 0, 0, 0, 0, 0x01, 0};
    r = packet(vm, ms10, buf, sizeof(buf));
    assert_int_equal(r.len, (unsigned)(buf[0] << 8 | buf[1]) + 2);
    assert_int_equal(buf[8], 0x01);
    uint8_t ms6[12] = {0x1a, 0, 0x2a, 0, 255};
    r = packet(vm, ms6, buf, sizeof(buf));
    assert_int_equal(buf[0] + 1u, r.len);
    assert_int_equal(buf[4], 0x2a);
    ms6[2] = 0xea; /* saved values */
    want_check(vm, ms6, 5, 0x39, 0);
    ms6[2] = 0x05;
    want_check(vm, ms6, 5, 0x24, 0);
    /* MODE SELECT(10) takes its parameter list (data out) and accepts it. */
    uint8_t sel[12] = {0x55, 0x10, 0, 0, 0, 0, 0, 0, 24};
    uint8_t params[24] = {0};
    params[8] = 0x0e;
    params[9] = 14;
    r = packet_io(vm, sel, 0xfffe, NULL, 0, params, sizeof(params));
    assert_int_equal(r.status & 1, 0);
    assert_int_equal(r.len, 24);
    /* GET CONFIGURATION, one feature: core with the ATAPI interface. */
    uint8_t gc[12] = {0x46, 2, 0, 1, 0, 0, 0, 0, 64};
    r = packet(vm, gc, buf, sizeof(buf));
    assert_int_equal(r.len, 16);
    assert_int_equal(buf[8] << 8 | buf[9], 0x0001);
    assert_int_equal(be32(buf + 12), 2);
    gc[1] = 0;
    gc[3] = 0;
    gc[8] = 255;
    r = packet(vm, gc, buf, sizeof(buf));
    assert_int_equal(be32(buf) + 4, r.len);
    assert_int_equal(buf[8] << 8 | buf[9], 0x0000);
    assert_int_equal(buf[12] << 8 | buf[13], 0x0010); /* DVD-ROM listed first */
    assert_int_equal(buf[16] << 8 | buf[17], 0x0008);
    assert_int_equal(buf[18] & 1, 1); /* CD-ROM current */
    /* GESN must be polled. */
    uint8_t gesn[12] = {0x4a, 0, 0, 0, 0x10, 0, 0, 0, 8};
    want_check(vm, gesn, 5, 0x24, 0);
    /* Disc and track information, mechanism status, sub-channel, performance, speed, seek. */
    uint8_t di[12] = {0x51, 0, 0, 0, 0, 0, 0, 0, 34};
    r = packet(vm, di, buf, sizeof(buf));
    assert_int_equal(r.len, 34);
    assert_int_equal(buf[2] & 0x03, 0x02);
    uint8_t ti[12] = {0x52, 1, 0, 0, 0, 1, 0, 0, 36};
    r = packet(vm, ti, buf, sizeof(buf));
    assert_int_equal(be32(buf + 24), ISO_SECTORS);
    ti[5] = 2;
    want_check(vm, ti, 5, 0x24, 0);
    uint8_t mech[12] = {0xbd, 0, 0, 0, 0, 0, 0, 0, 0, 8};
    r = packet(vm, mech, buf, sizeof(buf));
    assert_int_equal(r.len, 8);
    uint8_t sub[12] = {0x42, 0, 0x40, 1, 0, 0, 0, 0, 16};
    r = packet(vm, sub, buf, sizeof(buf));
    assert_int_equal(r.len, 16);
    assert_int_equal(buf[1], 0x15);
    uint8_t perf[12] = {0xac, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0};
    r = packet(vm, perf, buf, sizeof(buf));
    assert_int_equal(r.len, 24);
    assert_int_equal(be32(buf + 16), ISO_SECTORS - 1);
    uint8_t speed[12] = {0xbb, 0, 0xff, 0xff};
    want_good(vm, speed);
    uint8_t seek[12] = {0x2b, 0, 0, 0, 0, 10};
    want_good(vm, seek);
    seek[5] = ISO_SECTORS;
    want_check(vm, seek, 5, 0x21, 0);
}

static void test_save_mid_read(void **state)
{
    struct ide_fix *f = *state;
    struct vm *vm = f->vm;
    uint8_t buf[4 * 2048];
    ide_select(vm, CD_CH, 0);
    harness_outb(vm, P_ERR(CD_CH), 0);
    harness_outb(vm, P_LBAM(CD_CH), 0x00);
    harness_outb(vm, P_LBAH(CD_CH), 0x08); /* 2048 */
    harness_outb(vm, P_STATUS(CD_CH), 0xa0);
    const uint8_t cdb[12] = {0x28, 0, 0, 0, 0, 30, 0, 0, 4};
    for (unsigned i = 0; i < 6; i++) {
        harness_outw(vm, P_DATA(CD_CH), (uint16_t)(cdb[2 * i] | cdb[2 * i + 1] << 8));
        if (i == 2)
            assert_int_equal(harness_dev_save_reset_load(f->ide), 0); /* half the packet sent */
    }
    ide_settle(vm, CD_CH);
    ide_pio_in(vm, CD_CH, buf, 2048 + 1000, false);
    assert_int_equal(harness_dev_save_reset_load(f->ide), 0);
    ide_pio_in(vm, CD_CH, buf + 3048, 1048, false);
    ide_settle(vm, CD_CH);
    ide_pio_in(vm, CD_CH, buf + 4096, 4096, false);
    assert_int_equal(ide_settle(vm, CD_CH), 0x40);
    check_iso(buf, 30, 4, ISO_SEED);
}

static void test_garbage_cdbs(void **state)
{
    struct ide_fix *f = *state;
    struct vm *vm = f->vm;
    static const uint8_t ops[] = {0x00, 0x03, 0x12, 0x15, 0x1a, 0x1b, 0x1e, 0x25, 0x28, 0x2b, 0x42, 0x43, 0x46,
                                  0x4a, 0x51, 0x52, 0x55, 0x5a, 0xa8, 0xac, 0xad, 0xbb, 0xbd, 0xbe, 0xff};
    uint32_t seed = 0xcdb5eed;
    uint8_t in[8192], out[8192];
    memset(out, 0x5a, sizeof(out));
    for (unsigned n = 0; n < 3000; n++) {
        uint8_t cdb[12];
        for (unsigned i = 0; i < 12; i++)
            cdb[i] = (uint8_t)harness_rand(&seed);
        cdb[0] = ops[cdb[0] % RT_ARRAY_SIZE(ops)];
        if (cdb[0] == 0x1b)
            cdb[4] &= 0x01; /* keep the medium in (ejects are tested elsewhere) */
        /* Long reads would only slow the test down: keep transfers small. */
        if (cdb[0] == 0x28 || cdb[0] == 0xa8 || cdb[0] == 0xbe) {
            cdb[6] = cdb[7] = 0;
            cdb[8] &= 3;
            cdb[9] = cdb[0] == 0xbe ? 0x10 : cdb[9] & 3;
        }
        uint16_t bcl = (uint16_t)harness_rand(&seed);
        (void)packet_io(vm, cdb, bcl ? bcl : 2, in, sizeof(in), out, sizeof(out));
    }
    uint8_t inq[12] = {0x12, 0, 0, 0, 36};
    struct pkt r = packet(vm, inq, in, sizeof(in));
    assert_int_equal(r.len, 36);
    assert_int_equal(in[0], 0x05);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_inquiry_capacity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_pio, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_dma, setup, teardown),
        cmocka_unit_test_setup_teardown(test_toc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sense_after_bad_opcode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_media_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tray_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_misc_commands, setup, teardown),
        cmocka_unit_test_setup_teardown(test_save_mid_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_cdbs, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
