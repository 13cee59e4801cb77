/* tstDrive.c - the drive layer: scatter/gather into guest RAM and through bounce buffers, checks before submission, completions, CD media and the tray lock, image release and attach for snapshots. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "harness.h"
#include "vireo/storage.h"

#define RAM_BYTES (1u << 20)

struct fixture {
    struct vm *vm;
    char dir[64];
    char disk[128];
    char iso[128];
};

static int write_file(const char *path, size_t len, uint8_t seed)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    for (size_t i = 0; i < len; i++)
        fputc((uint8_t)(seed + i * 7 + (i >> 9)), f);
    return fclose(f);
}

static uint8_t pattern(uint8_t seed, size_t i)
{
    return (uint8_t)(seed + i * 7 + (i >> 9));
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/tstDrive.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->disk, sizeof(f->disk), "%s/disk.raw", f->dir);
    snprintf(f->iso, sizeof(f->iso), "%s/cd.img", f->dir);
    assert_int_equal(write_file(f->disk, 1 << 20, 3), 0);
    assert_int_equal(write_file(f->iso, 64 << 10, 9), 0);
    f->vm = harness_vm_create(RAM_BYTES);
    *state = f;
    return 0;
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

struct done_rec {
    int calls;
    int status;
};

static void on_done(struct drive_req *req, int status)
{
    struct done_rec *r = req->opaque;
    r->calls++;
    r->status = status;
}

static struct drive *make_disk(struct fixture *f, const char *name, bool readonly)
{
    struct drive_params p = { .kind = DRIVE_DISK, .path = f->disk, .readonly = readonly };
    struct drive *d = NULL;
    assert_int_equal(drive_create(f->vm, name, &p, &d), 0);
    return d;
}

static void test_read_into_ram(void **state)
{
    struct fixture *f = *state;
    struct drive *d = make_disk(f, "d0", false);
    assert_ptr_equal(drive_find(f->vm, "d0"), d);
    assert_int_equal(drive_size_bytes(d), 1 << 20);
    /* Three pieces, the last longer than needed: the transfer stops at len_bytes. */
    struct drive_sg sg[3] = { { 0x1000, 100 }, { 0x5000, 412 }, { 0x9000, 4096 } };
    struct done_rec r = { 0 };
    struct drive_req req = { .op = BLK_OP_READ, .offset_bytes = 1536, .len_bytes = 1024, .sg = sg,
                             .sg_count = 3, .done = on_done, .opaque = &r };
    uint8_t *ram = mem_gpa_to_hva(f->vm, 0, RAM_BYTES, false);
    memset(ram, 0xee, RAM_BYTES);
    vm_lock(f->vm);
    assert_int_equal(drive_submit(d, &req), 0);
    assert_int_equal(r.calls, 0); /* never from inside submit */
    vm_unlock(f->vm);
    harness_drain_io(f->vm);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.status, 0);
    for (size_t i = 0; i < 100; i++)
        assert_int_equal(ram[0x1000 + i], pattern(3, 1536 + i));
    for (size_t i = 0; i < 412; i++)
        assert_int_equal(ram[0x5000 + i], pattern(3, 1636 + i));
    for (size_t i = 0; i < 512; i++)
        assert_int_equal(ram[0x9000 + i], pattern(3, 2048 + i));
    assert_int_equal(ram[0x9000 + 512], 0xee);
    assert_int_equal(ram[0x1000 + 100], 0xee);
    assert_int_equal(drive_inflight(d), 0);
    drive_destroy(d);
    assert_null(drive_find(f->vm, "d0"));
}

static void test_write_and_bounce(void **state)
{
    struct fixture *f = *state;
    struct drive *d = make_disk(f, "d1", false);
    uint8_t *ram = mem_gpa_to_hva(f->vm, 0, RAM_BYTES, false);
    for (int i = 0; i < 512; i++)
        ram[0x2000 + i] = (uint8_t)(0x40 + i);
    /* The second piece lies past RAM (unassigned): the whole transfer uses a bounce buffer,
     * and the unassigned part reads as all ones. */
    struct drive_sg sg[2] = { { 0x2000, 512 }, { RAM_BYTES + 0x10000, 512 } };
    struct done_rec r = { 0 };
    struct drive_req req = { .op = BLK_OP_WRITE, .offset_bytes = 4096, .len_bytes = 1024, .sg = sg,
                             .sg_count = 2, .done = on_done, .opaque = &r };
    vm_lock(f->vm);
    assert_int_equal(drive_submit(d, &req), 0);
    vm_unlock(f->vm);
    harness_drain_io(f->vm);
    assert_int_equal(r.status, 0);
    uint8_t buf[1024];
    assert_int_equal(blk_read(drive_image(d), 4096, buf, sizeof(buf)), 0);
    for (int i = 0; i < 512; i++)
        assert_int_equal(buf[i], (uint8_t)(0x40 + i));
    for (int i = 512; i < 1024; i++)
        assert_int_equal(buf[i], 0xff);
    /* Read back through a bounce: RAM gets its part, the unassigned part swallows the rest. */
    memset(ram + 0x7000, 0, 1024);
    struct drive_sg sg2[2] = { { 0x7000, 512 }, { RAM_BYTES + 0x20000, 512 } };
    req = (struct drive_req){ .op = BLK_OP_READ, .offset_bytes = 4096, .len_bytes = 1024, .sg = sg2,
                              .sg_count = 2, .done = on_done, .opaque = &r };
    vm_lock(f->vm);
    assert_int_equal(drive_submit(d, &req), 0);
    vm_unlock(f->vm);
    harness_drain_io(f->vm);
    assert_int_equal(r.calls, 2);
    assert_int_equal(r.status, 0);
    assert_memory_equal(ram + 0x7000, buf, 512);
    assert_int_equal(ram[0x7000 + 512], 0);
    /* Flush goes through too. */
    req = (struct drive_req){ .op = BLK_OP_FLUSH, .done = on_done, .opaque = &r };
    vm_lock(f->vm);
    assert_int_equal(drive_submit(d, &req), 0);
    vm_unlock(f->vm);
    harness_drain_io(f->vm);
    assert_int_equal(r.calls, 3);
    assert_int_equal(r.status, 0);
    drive_destroy(d);
}

static unsigned g_mmio_calls;
static uint64_t mmio_read(void *opaque, uint64_t offset, unsigned size)
{
    (void)opaque, (void)offset, (void)size;
    g_mmio_calls++;
    return 0;
}
static void mmio_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    (void)opaque, (void)offset, (void)value, (void)size;
    g_mmio_calls++;
}
static const struct io_ops g_mmio_ops = { .read = mmio_read, .write = mmio_write };

/* DMA the guest aims at a device's registers never reaches them: reads see ones, writes vanish. */
static void test_dma_never_reaches_mmio(void **state)
{
    struct fixture *f = *state;
    struct mem_region *mmio;
    assert_int_equal(mem_region_create_mmio(f->vm, "regs", 4096, &g_mmio_ops, NULL, &mmio), 0);
    assert_int_equal(mem_region_map(mmio, 0x80000000ull, 10), 0);
    struct drive *d = make_disk(f, "d4", false);
    uint8_t *ram = mem_gpa_to_hva(f->vm, 0, RAM_BYTES, false);
    memset(ram + 0x3000, 0x11, 512);
    struct drive_sg sg[2] = { { 0x3000, 512 }, { 0x80000000ull, 512 } };
    struct done_rec r = { 0 };
    struct drive_req req = { .op = BLK_OP_READ, .offset_bytes = 0, .len_bytes = 1024, .sg = sg, .sg_count = 2,
                             .done = on_done, .opaque = &r };
    g_mmio_calls = 0;
    vm_lock(f->vm);
    assert_int_equal(drive_submit(d, &req), 0);
    vm_unlock(f->vm);
    harness_drain_io(f->vm);
    assert_int_equal(r.status, 0);
    assert_int_equal(g_mmio_calls, 0);
    for (size_t i = 0; i < 512; i++)
        assert_int_equal(ram[0x3000 + i], pattern(3, i));
    req.op = BLK_OP_WRITE;
    req.offset_bytes = 8192;
    vm_lock(f->vm);
    assert_int_equal(drive_submit(d, &req), 0);
    vm_unlock(f->vm);
    harness_drain_io(f->vm);
    assert_int_equal(r.calls, 2);
    assert_int_equal(g_mmio_calls, 0);
    uint8_t buf[1024];
    assert_int_equal(blk_read(drive_image(d), 8192, buf, sizeof(buf)), 0);
    for (size_t i = 0; i < 512; i++)
        assert_int_equal(buf[i], pattern(3, i));
    for (size_t i = 512; i < 1024; i++)
        assert_int_equal(buf[i], 0xff);
    drive_destroy(d);
}

static void test_checks_before_submit(void **state)
{
    struct fixture *f = *state;
    struct drive *d = make_disk(f, "d2", true);
    struct drive_sg sg = { 0x1000, 4096 };
    struct done_rec r = { 0 };
    struct drive_req req = { .op = BLK_OP_READ, .offset_bytes = (1 << 20) - 512, .len_bytes = 1024, .sg = &sg,
                             .sg_count = 1, .done = on_done, .opaque = &r };
    vm_lock(f->vm);
    assert_int_equal(drive_submit(d, &req), VERR_OUT_OF_RANGE); /* past the end */
    req.offset_bytes = UINT64_MAX - 100;
    assert_int_equal(drive_submit(d, &req), VERR_OUT_OF_RANGE); /* wraps */
    req.offset_bytes = 0;
    req.len_bytes = 8192;
    assert_int_equal(drive_submit(d, &req), VERR_OUT_OF_RANGE); /* sg list shorter than the transfer */
    req.len_bytes = 512;
    req.op = BLK_OP_WRITE;
    assert_int_equal(drive_submit(d, &req), VERR_ACCESS_DENIED); /* read-only medium */
    req.op = BLK_OP_READ;
    req.sg_count = 0;
    assert_int_equal(drive_submit(d, &req), VERR_OUT_OF_RANGE); /* no buffers */
    vm_unlock(f->vm);
    harness_drain_io(f->vm);
    assert_int_equal(r.calls, 0);
    drive_destroy(d);
    /* A disk needs an image; names are unique; over-long serials are refused. */
    struct drive_params p = { .kind = DRIVE_DISK };
    struct drive *x = NULL;
    assert_int_equal(drive_create(f->vm, "nodisk", &p, &x), VERR_INVALID_PARAMETER);
    p.path = f->disk;
    p.serial = "123456789012345678901";
    assert_int_equal(drive_create(f->vm, "longserial", &p, &x), VERR_CFG_BAD_VALUE);
    p.serial = "ABC";
    assert_int_equal(drive_create(f->vm, "ok", &p, &x), 0);
    assert_string_equal(drive_serial(x), "ABC                 ");
    assert_int_equal(strlen(drive_model(x)), 40);
    struct drive *y = NULL;
    p.path = f->iso;
    assert_int_equal(drive_create(f->vm, "ok", &p, &y), VERR_ALREADY_EXISTS);
    drive_destroy(x);
}

static int g_media_events;
static void on_media(void *opaque, struct drive *drive)
{
    (void)opaque;
    (void)drive;
    g_media_events++;
}

static void test_cdrom_media(void **state)
{
    struct fixture *f = *state;
    struct drive_params p = { .kind = DRIVE_CDROM };
    struct drive *cd = NULL;
    assert_int_equal(drive_create(f->vm, "cd0", &p, &cd), 0);
    assert_false(drive_has_media(cd));
    assert_true(drive_is_readonly(cd));
    drive_set_media_listener(cd, on_media, NULL);
    g_media_events = 0;
    struct drive_sg sg = { 0x1000, 2048 };
    struct done_rec r = { 0 };
    struct drive_req req = { .op = BLK_OP_READ, .len_bytes = 2048, .sg = &sg, .sg_count = 1, .done = on_done,
                             .opaque = &r };
    vm_lock(f->vm);
    assert_int_equal(drive_submit(cd, &req), VERR_INVALID_STATE); /* no medium */
    vm_unlock(f->vm);
    assert_int_equal(drive_insert(cd, f->iso, BLK_FMT_AUTO, false), 0);
    assert_int_equal(g_media_events, 1);
    assert_int_equal(drive_size_bytes(cd), 64 << 10);
    /* The guest locks the tray: the host cannot eject or swap without force. */
    drive_set_locked(cd, true);
    assert_int_equal(drive_eject(cd, false), VERR_BUSY);
    assert_int_equal(drive_insert(cd, f->iso, BLK_FMT_AUTO, false), VERR_BUSY);
    assert_int_equal(drive_guest_eject(cd), VERR_BUSY);
    assert_true(drive_has_media(cd));
    assert_int_equal(g_media_events, 1);
    assert_int_equal(drive_eject(cd, true), 0);
    assert_false(drive_has_media(cd));
    assert_false(drive_is_locked(cd));
    assert_int_equal(g_media_events, 2);
    /* A missing file leaves the drive as it was. */
    assert_int_not_equal(drive_insert(cd, "/nonexistent/x.iso", BLK_FMT_AUTO, false), 0);
    assert_false(drive_has_media(cd));
    assert_int_equal(g_media_events, 2);
    /* Disks have no removable medium. */
    struct drive *d = make_disk(f, "d3", false);
    assert_int_equal(drive_eject(d, true), VERR_INVALID_STATE);
    drive_destroy(d);
    drive_destroy(cd);
}

/* Reads len bytes at offset through the drive into a host buffer; returns the completion status or the submit error. */
static int read_through(struct fixture *f, struct drive *d, uint64_t offset, void *buf, size_t len)
{
    struct done_rec r = { 0 };
    struct drive_req req = { .op = BLK_OP_READ, .offset_bytes = offset, .len_bytes = len, .buf = buf,
                             .done = on_done, .opaque = &r };
    vm_lock(f->vm);
    int rc = drive_submit(d, &req);
    vm_unlock(f->vm);
    if (rc)
        return rc;
    harness_drain_io(f->vm);
    assert_int_equal(r.calls, 1);
    return r.status;
}

/* Snapshots of a running VM: the image is released, a differencing image goes on top, I/O resumes. */
static void test_image_release_attach(void **state)
{
    struct fixture *f = *state;
    struct drive *d = make_disk(f, "snap", false);
    assert_string_equal(drive_image_path(d), f->disk);
    uint8_t buf[512];

    vm_lock(f->vm);
    assert_int_equal(drive_image_release(d), 0);
    vm_unlock(f->vm);
    assert_null(drive_image_path(d));
    assert_false(drive_has_media(d));
    /* The guest still sees the disk's size, but I/O fails as for a missing medium. */
    assert_int_equal(drive_size_bytes(d), 1 << 20);
    assert_int_equal(read_through(f, d, 0, buf, sizeof(buf)), VERR_INVALID_STATE);
    vm_lock(f->vm);
    assert_int_equal(drive_image_release(d), VERR_INVALID_STATE); /* nothing left to release */
    vm_unlock(f->vm);

    /* Released, the image may be opened by another writer: a snapshot's differencing image over it. */
    char diff[160], small[160], missing[160];
    snprintf(diff, sizeof(diff), "%s/diff.qcow2", f->dir);
    snprintf(small, sizeof(small), "%s/small.raw", f->dir);
    snprintf(missing, sizeof(missing), "%s/missing.qcow2", f->dir);
    struct blk_create_params cp = { .format = BLK_FMT_QCOW2, .backing_path = f->disk };
    assert_int_equal(blk_create(diff, &cp), 0);
    assert_int_equal(write_file(small, 512 << 10, 1), 0);

    /* A wrong-sized image and a missing file are refused; the drive stays released. */
    vm_lock(f->vm);
    assert_int_equal(drive_image_attach(d, small, BLK_FMT_AUTO), VERR_INVALID_PARAMETER);
    assert_true(drive_image_attach(d, missing, BLK_FMT_AUTO) < 0);
    assert_null(drive_image_path(d));
    assert_int_equal(drive_image_attach(d, diff, BLK_FMT_AUTO), 0);
    /* Only a released disk takes an image. */
    assert_int_equal(drive_image_attach(d, diff, BLK_FMT_AUTO), VERR_INVALID_STATE);
    vm_unlock(f->vm);
    assert_string_equal(drive_image_path(d), diff);
    assert_true(drive_has_media(d));

    /* The old data shows through the differencing image; writes land in it, not in the base. */
    assert_int_equal(read_through(f, d, 4096, buf, sizeof(buf)), 0);
    for (size_t i = 0; i < sizeof(buf); i++)
        assert_int_equal(buf[i], pattern(3, 4096 + i));
    memset(buf, 0x5a, sizeof(buf));
    struct done_rec r = { 0 };
    struct drive_req wr = { .op = BLK_OP_WRITE, .offset_bytes = 4096, .len_bytes = sizeof(buf), .buf = buf,
                            .done = on_done, .opaque = &r };
    vm_lock(f->vm);
    assert_int_equal(drive_submit(d, &wr), 0);
    vm_unlock(f->vm);
    harness_drain_io(f->vm);
    assert_int_equal(r.status, 0);
    memset(buf, 0, sizeof(buf));
    assert_int_equal(read_through(f, d, 4096, buf, sizeof(buf)), 0);
    assert_int_equal(buf[0], 0x5a);
    drive_destroy(d);
    FILE *base = fopen(f->disk, "rb");
    assert_non_null(base);
    assert_int_equal(fseek(base, 4096, SEEK_SET), 0);
    assert_int_equal(fgetc(base), pattern(3, 4096));
    fclose(base);

    /* CD drives have no image to release. */
    struct drive_params cdp = { .kind = DRIVE_CDROM, .path = f->iso };
    struct drive *cd = NULL;
    assert_int_equal(drive_create(f->vm, "snapcd", &cdp, &cd), 0);
    vm_lock(f->vm);
    assert_int_equal(drive_image_release(cd), VERR_INVALID_STATE);
    vm_unlock(f->vm);
    drive_destroy(cd);
    unlink(diff);
    unlink(small);
}

static void test_cfg(void **state)
{
    struct fixture *f = *state;
    struct pdm_cfg *cfg;
    assert_int_equal(pdm_cfg_create(&cfg), 0);
    pdm_cfg_set(cfg, "port1.path", f->disk);
    pdm_cfg_set(cfg, "port1.readonly", "1");
    pdm_cfg_set(cfg, "port2.media", "cdrom");
    pdm_cfg_set(cfg, "slot", "4");
    static const char *const own[] = { "slot", NULL };
    static const char *const prefixes[] = { "port0", "port1", "port2" };
    assert_int_equal(drive_cfg_validate(cfg, "ctl", own, prefixes, 3), 0);
    assert_int_equal(drive_cfg_validate(cfg, "ctl", own, prefixes, 2), VERR_CFG_UNKNOWN_KEY);
    struct drive *d0 = NULL, *d1 = NULL, *d2 = NULL;
    assert_int_equal(drive_create_from_cfg(f->vm, cfg, "port0", "c-p0", &d0), 0);
    assert_null(d0); /* nothing on port 0 */
    assert_int_equal(drive_create_from_cfg(f->vm, cfg, "port1", "c-p1", &d1), 0);
    assert_non_null(d1);
    assert_true(drive_is_readonly(d1));
    assert_int_equal(drive_kind(d1), DRIVE_DISK);
    assert_int_equal(drive_create_from_cfg(f->vm, cfg, "port2", "c-p2", &d2), 0);
    assert_int_equal(drive_kind(d2), DRIVE_CDROM);
    assert_false(drive_has_media(d2));
    pdm_cfg_set(cfg, "port0.media", "tape");
    assert_int_equal(drive_create_from_cfg(f->vm, cfg, "port0", "c-p0", &d0), VERR_CFG_BAD_VALUE);
    pdm_cfg_set(cfg, "port0.media", "disk");
    pdm_cfg_set(cfg, "port0.path", f->disk);
    pdm_cfg_set(cfg, "port0.format", "floppy");
    assert_int_equal(drive_create_from_cfg(f->vm, cfg, "port0", "c-p0", &d0), VERR_CFG_BAD_VALUE);
    drive_destroy(d1);
    drive_destroy(d2);
    pdm_cfg_destroy(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_read_into_ram, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_and_bounce, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dma_never_reaches_mmio, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checks_before_submit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cdrom_media, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cfg, setup, teardown),
        cmocka_unit_test_setup_teardown(test_image_release_attach, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
