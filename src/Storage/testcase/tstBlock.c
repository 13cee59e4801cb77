/* tstBlock.c - unit tests for the generic block layer, raw and ISO images, creation, conversion, locking and the I/O worker pool. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "vireo/block.h"
#include "vireo/rt.h"

#define MIB (1024u * 1024u)

static int tst_setup(void **state)
{
    return harness_setup_dir(state, "tstBlock");
}

static int tst_count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            n++;
    }
    closedir(d);
    return n;
}

static uint64_t tst_file_allocated(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (uint64_t)st.st_blocks * 512;
}

static void tst_fill_pattern(uint8_t *buf, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(i * 7 + seed * 13 + (i >> 9));
}

/* ---- Names ------------------------------------------------------------------------- */

static void test_format_names(void **state)
{
    static const enum blk_format all[] = {BLK_FMT_RAW, BLK_FMT_VDI, BLK_FMT_QCOW2, BLK_FMT_VMDK, BLK_FMT_ISO};
    for (size_t i = 0; i < RT_ARRAY_SIZE(all); i++) {
        const char *name = blk_format_name(all[i]);
        assert_non_null(name);
        enum blk_format back = BLK_FMT_AUTO;
        assert_int_equal(blk_format_from_name(name, &back), 0);
        assert_int_equal(back, all[i]);
    }
    assert_string_equal(blk_format_name(BLK_FMT_QCOW2), "qcow2");
    assert_null(blk_format_name(BLK_FMT_AUTO));
    assert_null(blk_format_name((enum blk_format)77));
    enum blk_format f = BLK_FMT_RAW;
    assert_int_equal(blk_format_from_name("AUTO", &f), 0);
    assert_int_equal(f, BLK_FMT_AUTO);
    assert_int_equal(blk_format_from_name("VDI", &f), 0);
    assert_int_equal(f, BLK_FMT_VDI);
    assert_int_equal(blk_format_from_name("qcow3", &f), VERR_NOT_FOUND);
    assert_int_equal(blk_format_from_name("", &f), VERR_NOT_FOUND);
    assert_int_equal(blk_format_from_name(NULL, &f), VERR_INVALID_PARAMETER);
}

/* ---- Raw images -------------------------------------------------------------------- */

static void test_raw_create_sparse_and_fixed(void **state)
{
    const char *sparse = harness_path(*state, "sparse.raw");
    harness_image_create(sparse, BLK_FMT_RAW, 64 * MIB, false, NULL);
    assert_int_equal(harness_file_size(sparse), 64 * MIB);
    assert_true(tst_file_allocated(sparse) < MIB);

    const char *fixed = harness_path(*state, "fixed.raw");
    harness_image_create(fixed, BLK_FMT_RAW, 4 * MIB, true, NULL);
    assert_int_equal(harness_file_size(fixed), 4 * MIB);
    assert_true(tst_file_allocated(fixed) >= 4 * MIB);

    struct blk_image *img = harness_image_open(sparse, 0);
    struct blk_info info;
    assert_int_equal(blk_get_info(img, &info), 0);
    assert_int_equal(info.format, BLK_FMT_RAW);
    assert_int_equal(info.size_bytes, 64 * MIB);
    assert_int_equal(info.file_bytes, 64 * MIB);
    assert_true(info.allocated_bytes < MIB);
    assert_false(info.readonly);
    assert_string_equal(info.variant, "dynamic");
    assert_string_equal(info.backing_path, "");
    assert_int_equal(blk_format(img), BLK_FMT_RAW);
    assert_int_equal(blk_size_bytes(img), 64 * MIB);
    assert_string_equal(blk_path(img), sparse);
    assert_null(blk_backing(img));
    uint8_t buf[4096];
    memset(buf, 0xaa, sizeof(buf));
    assert_int_equal(blk_read(img, 10 * MIB, buf, sizeof(buf)), 0);
    assert_true(harness_bytes_all(buf, sizeof(buf), 0));
    blk_close(img);

    img = harness_image_open(fixed, BLK_OPEN_READONLY);
    assert_int_equal(blk_get_info(img, &info), 0);
    assert_string_equal(info.variant, "fixed");
    assert_true(info.readonly);
    assert_true(blk_is_readonly(img));
    assert_int_equal(blk_read(img, 0, buf, sizeof(buf)), 0);
    assert_true(harness_bytes_all(buf, sizeof(buf), 0));
    blk_close(img);
}

static void test_raw_odd_offsets(void **state)
{
    const char *path = harness_path(*state, "odd.raw");
    const size_t size = 256 * 1024;
    harness_image_create(path, BLK_FMT_RAW, size, false, NULL);
    uint8_t *model = calloc(1, size);
    uint8_t *buf = malloc(size);
    assert_non_null(model);
    assert_non_null(buf);

    struct blk_image *img = harness_image_open(path, 0);
    const struct {
        uint64_t offset;
        size_t len;
    } writes[] = {{1, 1}, {511, 2}, {513, 4095}, {4095, 8193}, {size - 3, 3}, {100000, 1}, {0, 1}, {77777, 33333}};
    for (size_t i = 0; i < RT_ARRAY_SIZE(writes); i++) {
        tst_fill_pattern(buf, writes[i].len, (unsigned)i + 1);
        memcpy(model + writes[i].offset, buf, writes[i].len);
        assert_int_equal(blk_write(img, writes[i].offset, buf, writes[i].len), 0);
    }
    /* Reads at other odd boundaries than the writes, then the whole disk. */
    assert_int_equal(blk_read(img, 3, buf, 1001), 0);
    assert_memory_equal(buf, model + 3, 1001);
    assert_int_equal(blk_read(img, size - 5, buf, 5), 0);
    assert_memory_equal(buf, model + size - 5, 5);
    assert_int_equal(blk_read(img, 0, buf, 0), 0);
    assert_int_equal(blk_read(img, size, buf, 0), 0);

    /* Scatter/gather: uneven iovecs, one of them empty. */
    uint8_t a[7], b[1], c[600];
    tst_fill_pattern(a, sizeof(a), 40);
    tst_fill_pattern(b, sizeof(b), 41);
    tst_fill_pattern(c, sizeof(c), 42);
    struct iovec wv[] = {{a, sizeof(a)}, {NULL, 0}, {b, sizeof(b)}, {c, sizeof(c)}};
    assert_int_equal(blk_writev(img, 12345, wv, 4), 0);
    memcpy(model + 12345, a, sizeof(a));
    memcpy(model + 12345 + 7, b, sizeof(b));
    memcpy(model + 12345 + 8, c, sizeof(c));
    uint8_t r1[300], r2[308];
    struct iovec rv[] = {{r1, sizeof(r1)}, {r2, sizeof(r2)}};
    assert_int_equal(blk_readv(img, 12345, rv, 2), 0);
    assert_memory_equal(r1, model + 12345, sizeof(r1));
    assert_memory_equal(r2, model + 12345 + 300, sizeof(r2));

    /* More pieces than one vectored call takes (raw goes straight to preadv/pwritev in batches),
     * odd lengths and empty pieces among them. */
    enum { PIECES = 150 };
    struct iovec many[PIECES];
    size_t total = 0;
    for (unsigned i = 0; i < PIECES; i++) {
        many[i].iov_len = i % 7 == 3 ? 0 : 1 + (i * 37) % 300;
        many[i].iov_base = buf + total;
        total += many[i].iov_len;
    }
    tst_fill_pattern(buf, total, 43);
    assert_int_equal(blk_writev(img, 50001, many, PIECES), 0);
    memcpy(model + 50001, buf, total);
    memset(buf, 0, total);
    assert_int_equal(blk_readv(img, 50001, many, PIECES), 0);
    assert_memory_equal(buf, model + 50001, total);
    assert_int_equal(blk_flush(img), 0);
    blk_close(img);

    /* A file shortened behind the image's back: the vectored read of what is gone gives zeroes. */
    img = harness_image_open(path, 0);
    assert_int_equal(truncate(path, size - 1000), 0);
    uint8_t t1[700], t2[700];
    memset(t1, 0xee, sizeof(t1));
    memset(t2, 0xee, sizeof(t2));
    struct iovec tv[] = {{t1, sizeof(t1)}, {t2, sizeof(t2)}};
    assert_int_equal(blk_readv(img, size - 1400, tv, 2), 0);
    assert_memory_equal(t1, model + size - 1400, 400);
    assert_true(harness_bytes_all(t1 + 400, 300, 0));
    assert_true(harness_bytes_all(t2, sizeof(t2), 0));
    assert_int_equal(truncate(path, size), 0);
    memset(model + size - 1000, 0, 1000);
    blk_close(img);

    /* What reached the file after close and reopen. */
    img = harness_image_open(path, BLK_OPEN_READONLY);
    assert_int_equal(blk_read(img, 0, buf, size), 0);
    assert_memory_equal(buf, model, size);
    blk_close(img);
    free(model);
    free(buf);
}

static void test_raw_errors(void **state)
{
    const char *path = harness_path(*state, "err.raw");
    harness_image_create(path, BLK_FMT_RAW, 8192, false, NULL);
    struct blk_image *img = harness_image_open(path, 0);
    uint8_t buf[1024] = {1};
    assert_int_equal(blk_read(img, 8192 - 512, buf, 513), VERR_OUT_OF_RANGE);
    assert_int_equal(blk_write(img, 8192, buf, 1), VERR_OUT_OF_RANGE);
    assert_int_equal(blk_read(img, 8193, buf, 0), VERR_OUT_OF_RANGE);
    assert_int_equal(blk_read(img, UINT64_MAX, buf, 2), VERR_OUT_OF_RANGE);
    assert_int_equal(blk_write(img, UINT64_MAX - 1, buf, 4), VERR_OUT_OF_RANGE);
    assert_int_equal(blk_discard(img, 4096, UINT64_MAX), VERR_OUT_OF_RANGE);
    assert_int_equal(blk_write_zeroes(img, 8000, 193), VERR_OUT_OF_RANGE);
    bool alloc;
    uint64_t num;
    assert_int_equal(blk_block_status(img, 8000, 200, &alloc, &num), VERR_OUT_OF_RANGE);
    assert_int_equal(blk_block_status(img, 0, 0, &alloc, &num), VERR_INVALID_PARAMETER);
    assert_int_equal(blk_read(img, 0, NULL, 1), VERR_INVALID_PARAMETER);
    assert_int_equal(blk_read(NULL, 0, buf, 1), VERR_INVALID_PARAMETER);
    struct iovec huge[] = {{buf, SIZE_MAX}, {buf, 2}};
    assert_int_equal(blk_readv(img, 0, huge, 2), VERR_OUT_OF_RANGE);
    assert_int_equal(blk_readv(img, 0, huge, -1), VERR_INVALID_PARAMETER);
    struct iovec nullbuf[] = {{NULL, 16}};
    assert_int_equal(blk_writev(img, 0, nullbuf, 1), VERR_INVALID_PARAMETER);
    struct iovec past[] = {{buf, 1024}, {buf, 1024}};
    assert_int_equal(blk_writev(img, 8192 - 1024, past, 2), VERR_OUT_OF_RANGE);
    /* The refused vectored write changed nothing, not even its in-range first part. */
    assert_int_equal(blk_read(img, 8192 - 1024, buf, 1024), 0);
    assert_true(harness_bytes_all(buf, 1024, 0));
    assert_int_equal(blk_resize(img, 1000), VERR_INVALID_PARAMETER);
    assert_int_equal(blk_resize(img, 0), VERR_INVALID_PARAMETER);
    assert_int_equal(blk_resize(img, BLK_MAX_SIZE_BYTES + 512), VERR_TOO_LARGE);
    assert_int_equal(blk_commit(img, NULL, NULL), VERR_INVALID_STATE);
    blk_close(img);

    img = harness_image_open(path, BLK_OPEN_READONLY);
    assert_int_equal(blk_write(img, 0, buf, 1), VERR_ACCESS_DENIED);
    struct iovec one[] = {{buf, 1}};
    assert_int_equal(blk_writev(img, 0, one, 1), VERR_ACCESS_DENIED);
    assert_int_equal(blk_discard(img, 0, 512), VERR_ACCESS_DENIED);
    assert_int_equal(blk_write_zeroes(img, 0, 512), VERR_ACCESS_DENIED);
    assert_int_equal(blk_resize(img, 16384), VERR_ACCESS_DENIED);
    assert_int_equal(blk_read(img, 0, buf, 512), 0);
    assert_int_equal(blk_flush(img), 0);
    blk_close(img);
    blk_close(NULL);

    struct blk_image *out = (struct blk_image *)buf;
    assert_int_equal(blk_open(path, (enum blk_format)99, 0, &out), VERR_INVALID_PARAMETER);
    assert_null(out);
    assert_int_equal(blk_open(path, BLK_FMT_AUTO, 0x80, &out), VERR_INVALID_PARAMETER);
    assert_int_equal(blk_open("", BLK_FMT_AUTO, 0, &out), VERR_INVALID_PARAMETER);
    assert_int_equal(blk_open(harness_path(*state, "missing.raw"), BLK_FMT_AUTO, 0, &out), VERR_FILE_NOT_FOUND);
    assert_int_equal(blk_open(*state, BLK_FMT_AUTO, BLK_OPEN_READONLY, &out), VERR_IS_A_DIRECTORY);
    assert_int_equal(blk_open("/dev/null", BLK_FMT_AUTO, BLK_OPEN_READONLY, &out), VERR_NOT_SUPPORTED);
    assert_null(out);
    /* A file the user may not write cannot be opened writable (root may write anything). */
    if (geteuid() != 0) {
        assert_int_equal(chmod(path, 0444), 0);
        assert_int_equal(blk_open(path, BLK_FMT_AUTO, 0, &out), VERR_ACCESS_DENIED);
        blk_close(harness_image_open(path, BLK_OPEN_READONLY));
    }
}

static void test_raw_flush_resize(void **state)
{
    const char *path = harness_path(*state, "resize.raw");
    harness_image_create(path, BLK_FMT_RAW, MIB, false, NULL);
    struct blk_image *img = harness_image_open(path, 0);
    uint8_t buf[4096];
    memset(buf, 0x5a, sizeof(buf));
    assert_int_equal(blk_write(img, MIB - sizeof(buf), buf, sizeof(buf)), 0);
    assert_int_equal(blk_flush(img), 0);

    assert_int_equal(blk_resize(img, 3 * MIB), 0);
    assert_int_equal(blk_size_bytes(img), 3 * MIB);
    assert_int_equal(harness_file_size(path), 3 * MIB);
    uint8_t rd[8192];
    assert_int_equal(blk_read(img, MIB - sizeof(buf), rd, sizeof(rd)), 0);
    assert_memory_equal(rd, buf, sizeof(buf));
    assert_true(harness_bytes_all(rd + sizeof(buf), sizeof(buf), 0));
    assert_int_equal(blk_write(img, 3 * MIB - 1, buf, 1), 0);

    /* Shrinking cuts the data off; growing again brings zeroes back, not the old data. */
    assert_int_equal(blk_resize(img, MIB - 2048), 0);
    assert_int_equal(blk_size_bytes(img), MIB - 2048);
    assert_int_equal(blk_read(img, MIB - 2048, rd, 1), VERR_OUT_OF_RANGE);
    assert_int_equal(blk_resize(img, MIB), 0);
    assert_int_equal(blk_read(img, MIB - 4096, rd, 4096), 0);
    assert_memory_equal(rd, buf, 2048);
    assert_true(harness_bytes_all(rd + 2048, 2048, 0));
    assert_int_equal(blk_flush(img), 0);
    blk_close(img);

    img = harness_image_open(path, BLK_OPEN_READONLY);
    assert_int_equal(blk_size_bytes(img), MIB);
    blk_close(img);
}

static void test_raw_discard_zeroes_status(void **state)
{
    const char *path = harness_path(*state, "holes.raw");
    harness_image_create(path, BLK_FMT_RAW, 8 * MIB, false, NULL);
    struct blk_image *img = harness_image_open(path, 0);
    uint8_t *buf = malloc(2 * MIB);
    assert_non_null(buf);
    tst_fill_pattern(buf, 2 * MIB, 9);
    assert_int_equal(blk_write(img, 2 * MIB, buf, 2 * MIB), 0);

    /* Before anything else: the hole before the data, the data, the hole after it. */
    bool alloc = true;
    uint64_t num = 0;
    assert_int_equal(blk_block_status(img, 0, 8 * MIB, &alloc, &num), 0);
    assert_false(alloc);
    assert_int_equal(num, 2 * MIB);
    assert_int_equal(blk_block_status(img, 2 * MIB, 6 * MIB, &alloc, &num), 0);
    assert_true(alloc);
    assert_int_equal(num, 2 * MIB);
    assert_int_equal(blk_block_status(img, 4 * MIB, 4 * MIB, &alloc, &num), 0);
    assert_false(alloc);
    assert_int_equal(num, 4 * MIB);
    assert_int_equal(blk_block_status(img, 2 * MIB + 100, 50, &alloc, &num), 0);
    assert_true(alloc);
    assert_int_equal(num, 50);

    /* Write zeroes reads back as zeroes; its neighbours keep their data. */
    assert_int_equal(blk_write_zeroes(img, 2 * MIB + 1000, 70000), 0);
    uint8_t *rd = malloc(2 * MIB);
    assert_non_null(rd);
    assert_int_equal(blk_read(img, 2 * MIB, rd, 2 * MIB), 0);
    assert_memory_equal(rd, buf, 1000);
    assert_true(harness_bytes_all(rd + 1000, 70000, 0));
    assert_memory_equal(rd + 71000, buf + 71000, 2 * MIB - 71000);

    /* Discard on a file system that punches holes: the range reads as zeroes and is a hole. */
    assert_int_equal(blk_discard(img, 3 * MIB, MIB), 0);
    assert_int_equal(blk_read(img, 3 * MIB, rd, MIB), 0);
    for (size_t i = 0; i < MIB; i++) {
        if (rd[i] != 0 && rd[i] != buf[MIB + i])
            fail_msg("discarded byte %zu is neither old data nor zero", i);
    }
    if (harness_bytes_all(rd, MIB, 0)) {
        assert_int_equal(blk_block_status(img, 3 * MIB, MIB, &alloc, &num), 0);
        assert_false(alloc);
    }
    assert_int_equal(blk_read(img, 2 * MIB + 71000, rd, MIB - 71000), 0);
    assert_memory_equal(rd, buf + 71000, MIB - 71000);
    assert_int_equal(blk_flush(img), 0);
    blk_close(img);
    free(rd);
    free(buf);
}

/* ---- Probing ------------------------------------------------------------------------- */

/* A tiny ISO 9660 image: a primary volume descriptor at sector 16 and the terminator. */
static void tst_make_iso(const char *path, size_t sectors)
{
    size_t len = sectors * 2048;
    uint8_t *img = calloc(1, len);
    assert_non_null(img);
    tst_fill_pattern(img + 20 * 2048, len - 20 * 2048, 3);
    uint8_t *pvd = img + 16 * 2048;
    pvd[0] = 1;
    memcpy(pvd + 1, "CD001", 5);
    pvd[6] = 1;
    uint8_t *term = img + 17 * 2048;
    term[0] = 255;
    memcpy(term + 1, "CD001", 5);
    term[6] = 1;
    harness_file_write(path, img, len);
    free(img);
}

static void test_probe(void **state)
{
    const char *iso = harness_path(*state, "disc.img");
    tst_make_iso(iso, 40);
    struct blk_image *img = harness_image_open(iso, 0);
    assert_int_equal(blk_format(img), BLK_FMT_ISO);
    /* ISO images are read-only whatever the caller asked. */
    assert_true(blk_is_readonly(img));
    assert_int_equal(blk_size_bytes(img), 40 * 2048);
    uint8_t buf[2048];
    assert_int_equal(blk_write(img, 0, buf, 1), VERR_ACCESS_DENIED);
    assert_int_equal(blk_read(img, 16 * 2048, buf, sizeof(buf)), 0);
    assert_memory_equal(buf + 1, "CD001", 5);
    struct blk_info info;
    assert_int_equal(blk_get_info(img, &info), 0);
    assert_int_equal(info.format, BLK_FMT_ISO);
    assert_string_equal(info.variant, "");
    assert_true(info.readonly);
    /* Read-only opens share the file: a second one works while this one is open. */
    struct blk_image *img2 = harness_image_open(iso, 0);
    blk_close(img2);
    blk_close(img);

    /* Explicitly raw: the same file as a raw disk, writable. */
    assert_int_equal(blk_open(iso, BLK_FMT_RAW, 0, &img), 0);
    assert_int_equal(blk_format(img), BLK_FMT_RAW);
    assert_false(blk_is_readonly(img));
    blk_close(img);

    /* ".iso" without a descriptor is still ISO; the same bytes under another name are raw. */
    uint8_t junk[3000];
    tst_fill_pattern(junk, sizeof(junk), 5);
    const char *named = harness_path(*state, "plain.ISO");
    harness_file_write(named, junk, sizeof(junk));
    img = harness_image_open(named, BLK_OPEN_READONLY);
    assert_int_equal(blk_format(img), BLK_FMT_ISO);
    assert_int_equal(blk_size_bytes(img), sizeof(junk));
    blk_close(img);
    const char *other = harness_path(*state, "plain.bin");
    harness_file_write(other, junk, sizeof(junk));
    img = harness_image_open(other, BLK_OPEN_READONLY);
    assert_int_equal(blk_format(img), BLK_FMT_RAW);
    assert_int_equal(blk_size_bytes(img), sizeof(junk));
    blk_close(img);

    /* "CD001" at the wrong place is no ISO; an empty file is an empty raw disk. */
    uint8_t *near = calloc(1, 0x9000);
    assert_non_null(near);
    memcpy(near + 0x8002, "CD001", 5);
    const char *almost = harness_path(*state, "almost.img");
    harness_file_write(almost, near, 0x9000);
    free(near);
    img = harness_image_open(almost, BLK_OPEN_READONLY);
    assert_int_equal(blk_format(img), BLK_FMT_RAW);
    blk_close(img);
    const char *empty = harness_path(*state, "empty.img");
    harness_file_write(empty, "", 0);
    img = harness_image_open(empty, 0);
    assert_int_equal(blk_format(img), BLK_FMT_RAW);
    assert_int_equal(blk_size_bytes(img), 0);
    assert_int_equal(blk_read(img, 0, buf, 1), VERR_OUT_OF_RANGE);
    blk_close(img);
}

/* A raw image taken as raw by probing never becomes a qcow2/VDI/VMDK image through a write. */
static void test_probed_raw_guard(void **state)
{
    const char *path = harness_path(*state, "guest.img");
    harness_image_create(path, BLK_FMT_RAW, 1 << 20, false, NULL);
    /* A qcow2 header the guest wants to write at 0 (the raw disk would name a host file as parent). */
    const char *q = harness_path(*state, "template.qcow2");
    struct blk_create_params cp = { .format = BLK_FMT_QCOW2, .size_bytes = 1 << 20 };
    assert_int_equal(blk_create(q, &cp), 0);
    uint8_t hdr[512];
    struct blk_image *img = harness_image_open(q, BLK_OPEN_READONLY | BLK_OPEN_NO_BACKING);
    blk_close(img);
    FILE *f = fopen(q, "rb");
    assert_non_null(f);
    assert_int_equal(fread(hdr, 1, sizeof(hdr), f), sizeof(hdr));
    fclose(f);
    img = harness_image_open(path, 0);
    assert_int_equal(blk_format(img), BLK_FMT_RAW);
    assert_int_equal(blk_write(img, 0, hdr, sizeof(hdr)), VERR_ACCESS_DENIED);
    /* Also when the magic arrives in pieces: the second half completes it and is refused. */
    assert_int_equal(blk_write(img, 4, hdr + 4, sizeof(hdr) - 4), 0);
    assert_int_equal(blk_write(img, 0, hdr, 4), VERR_ACCESS_DENIED);
    struct iovec iov[2] = { { hdr, 2 }, { hdr + 2, 2 } };
    assert_int_equal(blk_writev(img, 0, iov, 2), VERR_ACCESS_DENIED);
    uint8_t back[4];
    assert_int_equal(blk_read(img, 0, back, 4), 0);
    assert_memory_not_equal(back, hdr, 4);
    /* Ordinary writes there (an MBR, a filesystem) go through. */
    uint8_t mbr[512] = { 0xeb, 0x63, 0x90 };
    mbr[510] = 0x55, mbr[511] = 0xaa;
    assert_int_equal(blk_write(img, 0, mbr, sizeof(mbr)), 0);
    blk_close(img);
    /* Named explicitly as raw, the image takes whatever the guest writes. */
    assert_int_equal(blk_open(path, BLK_FMT_RAW, 0, &img), 0);
    assert_int_equal(blk_write(img, 0, hdr, sizeof(hdr)), 0);
    blk_close(img);
}

/* ---- Locking ------------------------------------------------------------------------- */

static void test_locking(void **state)
{
    const char *path = harness_path(*state, "locked.raw");
    harness_image_create(path, BLK_FMT_RAW, MIB, false, NULL);
    struct blk_image *rw = harness_image_open(path, 0);
    struct blk_image *other = NULL;
    harness_log_reset();
    assert_int_equal(blk_open(path, BLK_FMT_AUTO, 0, &other), VERR_BUSY);
    assert_null(other);
    assert_true(harness_log_contains(path));
    assert_int_equal(blk_open(path, BLK_FMT_AUTO, BLK_OPEN_READONLY, &other), VERR_BUSY);
    struct blk_check_result res;
    assert_int_equal(blk_check(path, BLK_FMT_AUTO, false, &res), VERR_BUSY);
    blk_close(rw);

    struct blk_image *ro1 = harness_image_open(path, BLK_OPEN_READONLY);
    struct blk_image *ro2 = harness_image_open(path, BLK_OPEN_READONLY);
    assert_int_equal(blk_open(path, BLK_FMT_AUTO, 0, &other), VERR_BUSY);
    blk_close(ro1);
    assert_int_equal(blk_open(path, BLK_FMT_AUTO, 0, &other), VERR_BUSY);
    blk_close(ro2);
    rw = harness_image_open(path, 0);
    blk_close(rw);
}

/* ---- Creation ------------------------------------------------------------------------ */

static void test_create_refuses(void **state)
{
    const char *path = harness_path(*state, "exists.raw");
    harness_file_write(path, "keep me", 7);
    struct blk_create_params p = {.format = BLK_FMT_RAW, .size_bytes = MIB};
    harness_log_reset();
    assert_int_equal(blk_create(path, &p), VERR_ALREADY_EXISTS);
    assert_true(harness_log_contains(path));
    assert_int_equal(harness_file_size(path), 7);
    assert_int_equal(tst_count_entries(*state), 1);

    /* A dangling symbolic link is a name that exists too. */
    const char *link = harness_path(*state, "dangling.raw");
    assert_int_equal(symlink(harness_path(*state, "nowhere"), link), 0);
    assert_int_equal(blk_create(link, &p), VERR_ALREADY_EXISTS);
    assert_int_equal(unlink(link), 0);

    const char *fresh = harness_path(*state, "fresh.raw");
    p.size_bytes = 0;
    assert_int_equal(blk_create(fresh, &p), VERR_INVALID_PARAMETER);
    p.size_bytes = 1000;
    assert_int_equal(blk_create(fresh, &p), VERR_INVALID_PARAMETER);
    p.size_bytes = BLK_MAX_SIZE_BYTES + 512;
    assert_int_equal(blk_create(fresh, &p), VERR_TOO_LARGE);
    p.size_bytes = MIB;
    p.format = BLK_FMT_ISO;
    assert_int_equal(blk_create(fresh, &p), VERR_NOT_SUPPORTED);
    p.format = BLK_FMT_AUTO;
    assert_int_equal(blk_create(fresh, &p), VERR_NOT_SUPPORTED);
    /* Raw images have no backing file: refused after the parent opened, and nothing stays behind. */
    p.format = BLK_FMT_RAW;
    p.backing_path = "exists.raw";
    assert_int_equal(blk_create(fresh, &p), VERR_NOT_SUPPORTED);
    p.backing_path = "missing-parent.raw";
    assert_int_equal(blk_create(fresh, &p), VERR_FILE_NOT_FOUND);
    p.backing_path = NULL;
    assert_int_equal(blk_create(harness_path(*state, "no/such/folder.raw"), &p), VERR_FILE_NOT_FOUND);
    assert_int_equal(blk_create(NULL, &p), VERR_INVALID_PARAMETER);
    assert_int_equal(tst_count_entries(*state), 1);

    /* A failure inside the format (a fixed image larger than the file system) leaves nothing. */
    p.size_bytes = BLK_MAX_SIZE_BYTES;
    p.fixed = true;
    assert_true(blk_create(fresh, &p) < 0);
    assert_int_equal(tst_count_entries(*state), 1);

    p.size_bytes = MIB;
    p.fixed = false;
    assert_int_equal(blk_create(fresh, &p), 0);
    assert_int_equal(tst_count_entries(*state), 2);
    assert_int_equal(harness_file_size(fresh), MIB);
}

/* ---- Conversion ---------------------------------------------------------------------- */

struct tst_progress {
    unsigned calls;
    uint64_t last_done;
    uint64_t total;
    bool backwards;
};

static void tst_progress_cb(void *opaque, uint64_t done, uint64_t total)
{
    struct tst_progress *pr = opaque;
    if (done < pr->last_done || done > total)
        pr->backwards = true;
    pr->calls++;
    pr->last_done = done;
    pr->total = total;
}

static void test_convert_raw(void **state)
{
    const char *src = harness_path(*state, "src.raw");
    const uint64_t size = 16 * MIB;
    harness_image_create(src, BLK_FMT_RAW, size, false, NULL);
    struct blk_image *img = harness_image_open(src, 0);
    uint8_t *buf = malloc(MIB);
    assert_non_null(buf);
    tst_fill_pattern(buf, MIB, 21);
    assert_int_equal(blk_write(img, 0, buf, 4096), 0);
    assert_int_equal(blk_write(img, 5 * MIB + 17, buf, MIB - 17), 0);
    assert_int_equal(blk_write(img, size - 512, buf, 512), 0);
    /* Allocated in the source but all zero: stays a hole in the copy. */
    memset(buf, 0, MIB);
    assert_int_equal(blk_write(img, 10 * MIB, buf, MIB), 0);
    assert_int_equal(blk_flush(img), 0);

    const char *dst = harness_path(*state, "dst.raw");
    struct blk_create_params p = {.format = BLK_FMT_RAW};
    struct tst_progress pr = {0};
    assert_int_equal(blk_convert(img, dst, &p, tst_progress_cb, &pr), 0);
    assert_true(pr.calls >= 2);
    assert_false(pr.backwards);
    assert_int_equal(pr.last_done, size);
    assert_int_equal(pr.total, size);
    blk_close(img);

    assert_int_equal(harness_file_size(dst), size);
    assert_true(tst_file_allocated(dst) < tst_file_allocated(src));
    assert_true(tst_file_allocated(dst) <= 2 * MIB + 256 * 1024);
    struct blk_image *a = harness_image_open(src, BLK_OPEN_READONLY);
    struct blk_image *b = harness_image_open(dst, BLK_OPEN_READONLY);
    uint8_t *other = malloc(MIB);
    assert_non_null(other);
    for (uint64_t off = 0; off < size; off += MIB) {
        assert_int_equal(blk_read(a, off, buf, MIB), 0);
        assert_int_equal(blk_read(b, off, other, MIB), 0);
        assert_memory_equal(buf, other, MIB);
    }
    blk_close(b);

    /* The destination exists now: refused, and it is left alone. */
    assert_int_equal(blk_convert(a, dst, &p, NULL, NULL), VERR_ALREADY_EXISTS);
    assert_int_equal(harness_file_size(dst), size);
    /* Too small, not creatable: nothing appears. */
    const char *dst2 = harness_path(*state, "dst2.raw");
    p.size_bytes = size - 512;
    assert_int_equal(blk_convert(a, dst2, &p, NULL, NULL), VERR_INVALID_PARAMETER);
    p.size_bytes = 0;
    p.format = BLK_FMT_VMDK;
    assert_int_equal(blk_convert(a, dst2, &p, NULL, NULL), VERR_NOT_SUPPORTED);
    assert_int_equal(tst_count_entries(*state), 2);

    /* A bigger destination: the tail reads as zeroes. */
    p.format = BLK_FMT_RAW;
    p.size_bytes = size + MIB;
    assert_int_equal(blk_convert(a, dst2, &p, NULL, NULL), 0);
    b = harness_image_open(dst2, BLK_OPEN_READONLY);
    assert_int_equal(blk_size_bytes(b), size + MIB);
    assert_int_equal(blk_read(b, size - 512, other, 512), 0);
    assert_int_equal(blk_read(a, size - 512, buf, 512), 0);
    assert_memory_equal(buf, other, 512);
    assert_int_equal(blk_read(b, size, other, MIB), 0);
    assert_true(harness_bytes_all(other, MIB, 0));
    blk_close(b);
    blk_close(a);
    free(other);
    free(buf);
}

static void test_convert_iso_and_check(void **state)
{
    const char *iso = harness_path(*state, "cd.iso");
    tst_make_iso(iso, 33);
    struct blk_image *img = harness_image_open(iso, 0);
    const char *dst = harness_path(*state, "cd.raw");
    struct blk_create_params p = {.format = BLK_FMT_RAW, .fixed = true};
    assert_int_equal(blk_convert(img, dst, &p, NULL, NULL), 0);
    blk_close(img);
    assert_int_equal(harness_file_size(dst), 33 * 2048);
    void *x, *y;
    size_t xl, yl;
    assert_int_equal(rt_file_read_all(iso, MIB, &x, &xl), 0);
    assert_int_equal(rt_file_read_all(dst, MIB, &y, &yl), 0);
    assert_int_equal(xl, yl);
    assert_memory_equal(x, y, xl);
    free(x);
    free(y);

    struct blk_check_result res;
    memset(&res, 0xff, sizeof(res));
    assert_int_equal(blk_check(dst, BLK_FMT_AUTO, false, &res), 0);
    assert_int_equal(res.errors, 0);
    assert_int_equal(res.leaks, 0);
    assert_string_equal(res.first_problem, "");
    assert_int_equal(blk_check(dst, BLK_FMT_RAW, true, &res), 0);
    assert_int_equal(blk_check(harness_path(*state, "none.raw"), BLK_FMT_AUTO, false, &res), VERR_FILE_NOT_FOUND);
}

/* ---- Backing chains ------------------------------------------------------------------- */

/*
 * Differencing images need a format that has them: the chain tests run once per
 * such format (a group each, g_chain_format says which) and skip a format this
 * build does not have.
 */
static enum blk_format g_chain_format;

static int tst_chain_group_qcow2(void **state)
{
    g_chain_format = BLK_FMT_QCOW2;
    return 0;
}

static int tst_chain_group_vdi(void **state)
{
    g_chain_format = BLK_FMT_VDI;
    return 0;
}

static enum blk_format tst_diff_format(void **state)
{
    const char *probe = harness_path(*state, "probe.img");
    struct blk_create_params p = {.format = g_chain_format, .size_bytes = MIB};
    int rc = blk_create(probe, &p);
    if (rc == VERR_NOT_SUPPORTED)
        skip();
    assert_int_equal(rc, 0);
    assert_int_equal(unlink(probe), 0);
    return g_chain_format;
}

/* A raw parent of size bytes holding tst_fill_pattern(seed) everywhere. */
static void tst_create_filled_raw(const char *path, size_t size, unsigned seed)
{
    uint8_t *buf = malloc(size);
    assert_non_null(buf);
    tst_fill_pattern(buf, size, seed);
    harness_file_write(path, buf, size);
    free(buf);
}

static void tst_expect_pattern(struct blk_image *img, uint64_t offset, size_t len, uint64_t pattern_offset,
                               unsigned seed)
{
    uint8_t *want = malloc(pattern_offset + len);
    uint8_t *got = malloc(len);
    assert_non_null(want);
    assert_non_null(got);
    tst_fill_pattern(want, pattern_offset + len, seed);
    assert_int_equal(blk_read(img, offset, got, len), 0);
    assert_memory_equal(got, want + pattern_offset, len);
    free(want);
    free(got);
}

static void test_chain_diff_over_raw(void **state)
{
    enum blk_format fmt = tst_diff_format(state);
    const char *base = harness_path(*state, "base.raw");
    tst_create_filled_raw(base, 4 * MIB, 1);
    const char *child = harness_path(*state, "child.img");
    harness_image_create(child, fmt, 0, false, "base.raw");

    struct blk_image *img = harness_image_open(child, 0);
    assert_int_equal(blk_format(img), fmt);
    assert_int_equal(blk_size_bytes(img), 4 * MIB);
    struct blk_image *parent = blk_backing(img);
    assert_non_null(parent);
    assert_int_equal(blk_format(parent), BLK_FMT_RAW);
    assert_true(blk_is_readonly(parent));
    assert_null(blk_backing(parent));
    /* Nothing written yet: every read falls through to the parent. */
    tst_expect_pattern(img, 0, 4 * MIB, 0, 1);
    bool alloc = true;
    uint64_t num = 0;
    assert_int_equal(blk_block_status(img, 0, 4 * MIB, &alloc, &num), 0);
    assert_false(alloc);
    assert_int_equal(num, 4 * MIB);

    uint8_t data[5000];
    tst_fill_pattern(data, sizeof(data), 2);
    assert_int_equal(blk_write(img, MIB + 3, data, sizeof(data)), 0);
    uint8_t rd[5000];
    assert_int_equal(blk_read(img, MIB + 3, rd, sizeof(rd)), 0);
    assert_memory_equal(rd, data, sizeof(rd));
    /* The cluster around the write keeps the parent's bytes beside the new ones. */
    tst_expect_pattern(img, MIB - 4096, 4099, MIB - 4096, 1);
    tst_expect_pattern(img, MIB + 3 + sizeof(data), 4096, MIB + 3 + sizeof(data), 1);
    assert_int_equal(blk_block_status(img, MIB + 3, 1, &alloc, &num), 0);
    assert_true(alloc);
    assert_int_equal(blk_block_status(img, 3 * MIB, MIB, &alloc, &num), 0);
    assert_false(alloc);

    struct blk_info info;
    assert_int_equal(blk_get_info(img, &info), 0);
    char *real = realpath(base, NULL);
    assert_non_null(real);
    assert_string_equal(info.backing_path, real);
    free(real);
    assert_int_equal(blk_flush(img), 0);
    blk_close(img);

    /* The parent file is untouched. */
    struct blk_image *p = harness_image_open(base, BLK_OPEN_READONLY);
    tst_expect_pattern(p, 0, 4 * MIB, 0, 1);
    blk_close(p);
    /* Reopened, the child still shows its write over the parent. */
    img = harness_image_open(child, BLK_OPEN_READONLY);
    assert_int_equal(blk_read(img, MIB + 3, rd, sizeof(rd)), 0);
    assert_memory_equal(rd, data, sizeof(rd));
    tst_expect_pattern(img, 2 * MIB, MIB, 2 * MIB, 1);
    blk_close(img);
    /* Without its chain, unwritten ranges read as zeroes. */
    img = harness_image_open(child, BLK_OPEN_NO_BACKING | BLK_OPEN_READONLY);
    assert_null(blk_backing(img));
    assert_int_equal(blk_read(img, 2 * MIB, rd, sizeof(rd)), 0);
    assert_true(harness_bytes_all(rd, sizeof(rd), 0));
    blk_close(img);
}

static void test_chain_relative_and_smaller_parent(void **state)
{
    enum blk_format fmt = tst_diff_format(state);
    const char *sub = harness_path(*state, "sub");
    assert_int_equal(mkdir(sub, 0755), 0);
    const char *base = harness_path(*state, "base.raw");
    tst_create_filled_raw(base, MIB, 3);
    /* "../base.raw" is relative to the child's folder, not to the working directory. */
    const char *child = harness_path(*state, "sub/child.img");
    harness_image_create(child, fmt, 4 * MIB, false, "../base.raw");
    char cwd[4096];
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir("/"), 0);
    struct blk_image *img = harness_image_open(child, 0);
    assert_int_equal(chdir(*state), 0);
    struct blk_image *img2 = NULL;
    assert_int_equal(blk_open("sub/child.img", BLK_FMT_AUTO, BLK_OPEN_READONLY, &img2), VERR_BUSY);
    blk_close(img);
    img = harness_image_open("sub/child.img", 0);
    assert_int_equal(chdir(cwd), 0);

    /* The parent is 1 MiB, the child 4 MiB: past the parent's end reads are zeroes. */
    assert_int_equal(blk_size_bytes(img), 4 * MIB);
    assert_int_equal(blk_size_bytes(blk_backing(img)), MIB);
    tst_expect_pattern(img, MIB - 100, 100, MIB - 100, 3);
    uint8_t rd[8192];
    assert_int_equal(blk_read(img, MIB - 4096, rd, sizeof(rd)), 0);
    assert_true(harness_bytes_all(rd + 4096, 4096, 0));
    uint8_t data[3000];
    tst_fill_pattern(data, sizeof(data), 4);
    assert_int_equal(blk_write(img, 3 * MIB + 1, data, sizeof(data)), 0);

    /* Commit grows the smaller parent so everything the child shows fits. */
    assert_int_equal(blk_commit(img, NULL, NULL), 0);
    blk_close(img);
    assert_int_equal(harness_file_size(base), 4 * MIB);
    struct blk_image *p = harness_image_open(base, BLK_OPEN_READONLY);
    tst_expect_pattern(p, 0, MIB, 0, 3);
    assert_int_equal(blk_read(p, 3 * MIB + 1, rd, sizeof(data)), 0);
    assert_memory_equal(rd, data, sizeof(data));
    assert_int_equal(blk_read(p, 2 * MIB, rd, sizeof(rd)), 0);
    assert_true(harness_bytes_all(rd, sizeof(rd), 0));
    blk_close(p);
}

static void test_chain_missing_parent(void **state)
{
    enum blk_format fmt = tst_diff_format(state);
    const char *base = harness_path(*state, "gone.raw");
    harness_image_create(base, BLK_FMT_RAW, MIB, false, NULL);
    const char *child = harness_path(*state, "orphan.img");
    harness_image_create(child, fmt, 0, false, "gone.raw");
    assert_int_equal(unlink(base), 0);

    harness_log_reset();
    struct blk_image *img = NULL;
    assert_int_equal(blk_open(child, BLK_FMT_AUTO, 0, &img), VERR_FILE_NOT_FOUND);
    assert_null(img);
    assert_true(harness_log_contains("gone.raw"));
    assert_true(harness_log_contains("orphan.img"));
    /* The image alone still opens (info, check), and says which parent it wants. */
    img = harness_image_open(child, BLK_OPEN_NO_BACKING | BLK_OPEN_READONLY);
    struct blk_info info;
    assert_int_equal(blk_get_info(img, &info), 0);
    assert_non_null(strstr(info.backing_path, "/gone.raw"));
    assert_int_equal(info.backing_path[0], '/');
    blk_close(img);
    /* Opening failed without leaving a lock behind: the file opens for writing. */
    img = harness_image_open(child, BLK_OPEN_NO_BACKING);
    blk_close(img);
    /* Nor may a new image name a missing parent. */
    assert_int_equal(blk_create(harness_path(*state, "other.img"),
                                &(struct blk_create_params){.format = fmt, .backing_path = "gone.raw"}),
                     VERR_FILE_NOT_FOUND);
}

static void test_chain_loops(void **state)
{
    enum blk_format fmt = tst_diff_format(state);
    const char *base = harness_path(*state, "base.raw");
    harness_image_create(base, BLK_FMT_RAW, MIB, false, NULL);
    const char *a = harness_path(*state, "a.img");
    const char *b = harness_path(*state, "b.img");
    harness_image_create(b, fmt, 0, false, "base.raw");
    harness_image_create(a, fmt, 0, false, "b.img");
    /* A new b naming a: a -> b -> a. */
    const char *b2 = harness_path(*state, "b2.img");
    harness_image_create(b2, fmt, 0, false, "a.img");
    assert_int_equal(rename(b2, b), 0);

    harness_log_reset();
    struct blk_image *img = NULL;
    assert_int_equal(blk_open(a, BLK_FMT_AUTO, BLK_OPEN_READONLY, &img), VERR_BAD_FORMAT);
    assert_null(img);
    assert_true(harness_log_contains("loop"));
    assert_true(harness_log_contains("a.img"));
    assert_int_equal(blk_open(b, BLK_FMT_AUTO, 0, &img), VERR_BAD_FORMAT);

    /* An image naming itself. */
    const char *self2 = harness_path(*state, "self2.img");
    const char *self = harness_path(*state, "self.img");
    harness_image_create(self2, fmt, 0, false, "base.raw");
    harness_image_create(self, fmt, 0, false, "self2.img");
    const char *self3 = harness_path(*state, "self3.img");
    harness_image_create(self3, fmt, 0, false, "self.img");
    assert_int_equal(rename(self3, self), 0);
    assert_int_equal(blk_open(self, BLK_FMT_AUTO, 0, &img), VERR_BAD_FORMAT);
    /* Every file was closed and unlocked on the way out. */
    img = harness_image_open(a, BLK_OPEN_NO_BACKING);
    blk_close(img);
    img = harness_image_open(base, 0);
    blk_close(img);
}

static void test_chain_too_long(void **state)
{
    enum blk_format fmt = tst_diff_format(state);
    harness_image_create(harness_path(*state, "l0.img"), BLK_FMT_RAW, 64 * 1024, false, NULL);
    char name[32], parent[32];
    for (unsigned i = 1; i < BLK_MAX_CHAIN; i++) {
        snprintf(name, sizeof(name), "l%u.img", i);
        snprintf(parent, sizeof(parent), "l%u.img", i - 1);
        harness_image_create(harness_path(*state, name), fmt, 0, false, parent);
    }
    /* BLK_MAX_CHAIN files in all: fine. */
    snprintf(name, sizeof(name), "l%u.img", BLK_MAX_CHAIN - 1);
    struct blk_image *img = harness_image_open(harness_path(*state, name), BLK_OPEN_READONLY);
    unsigned depth = 0;
    for (struct blk_image *i = img; i; i = blk_backing(i))
        depth++;
    assert_int_equal(depth, BLK_MAX_CHAIN);
    blk_close(img);
    /* One more is refused. */
    snprintf(parent, sizeof(parent), "l%u.img", BLK_MAX_CHAIN - 1);
    snprintf(name, sizeof(name), "l%u.img", BLK_MAX_CHAIN);
    harness_image_create(harness_path(*state, name), fmt, 0, false, parent);
    harness_log_reset();
    assert_int_equal(blk_open(harness_path(*state, name), BLK_FMT_AUTO, BLK_OPEN_READONLY, &img), VERR_BAD_FORMAT);
    assert_true(harness_log_contains("too long"));
}

static void test_chain_commit(void **state)
{
    enum blk_format fmt = tst_diff_format(state);
    const char *base = harness_path(*state, "base.raw");
    tst_create_filled_raw(base, 2 * MIB, 5);
    const char *child = harness_path(*state, "snap.img");
    harness_image_create(child, fmt, 0, false, "base.raw");
    struct blk_image *img = harness_image_open(child, 0);
    uint8_t data[70000];
    tst_fill_pattern(data, sizeof(data), 6);
    assert_int_equal(blk_write(img, 100000, data, sizeof(data)), 0);
    assert_int_equal(blk_write(img, 2 * MIB - 512, data, 512), 0);

    /* Someone else reading the parent: commit refuses and the chain still works. */
    struct blk_image *reader = harness_image_open(base, BLK_OPEN_READONLY);
    assert_int_equal(blk_commit(img, NULL, NULL), VERR_BUSY);
    blk_close(reader);
    assert_true(blk_is_readonly(blk_backing(img)));
    tst_expect_pattern(img, 0, 100000, 0, 5);

    struct tst_progress pr = {0};
    assert_int_equal(blk_commit(img, tst_progress_cb, &pr), 0);
    assert_false(pr.backwards);
    assert_int_equal(pr.last_done, 2 * MIB);
    /* Back to read-only and shared; the child still reads and writes. */
    assert_true(blk_is_readonly(blk_backing(img)));
    reader = harness_image_open(base, BLK_OPEN_READONLY);
    blk_close(reader);
    uint8_t rd[sizeof(data)];
    assert_int_equal(blk_read(img, 100000, rd, sizeof(rd)), 0);
    assert_memory_equal(rd, data, sizeof(rd));
    assert_int_equal(blk_write(img, 0, data, 512), 0);
    blk_close(img);

    struct blk_image *p = harness_image_open(base, BLK_OPEN_READONLY);
    assert_int_equal(blk_read(p, 100000, rd, sizeof(rd)), 0);
    assert_memory_equal(rd, data, sizeof(rd));
    assert_int_equal(blk_read(p, 2 * MIB - 512, rd, 512), 0);
    assert_memory_equal(rd, data, 512);
    /* What the child did not hold is the parent's own data, and the child's later write stayed in the child. */
    tst_expect_pattern(p, 0, 100000, 0, 5);
    tst_expect_pattern(p, 100000 + sizeof(data), 4096, 100000 + sizeof(data), 5);
    blk_close(p);
}

static void test_chain_convert_flattens(void **state)
{
    enum blk_format fmt = tst_diff_format(state);
    const char *base = harness_path(*state, "base.raw");
    harness_image_create(base, BLK_FMT_RAW, 8 * MIB, false, NULL);
    struct blk_image *img = harness_image_open(base, 0);
    uint8_t data[4096];
    tst_fill_pattern(data, sizeof(data), 7);
    assert_int_equal(blk_write(img, 0, data, sizeof(data)), 0);
    assert_int_equal(blk_write(img, 5 * MIB, data, sizeof(data)), 0);
    blk_close(img);
    const char *mid = harness_path(*state, "mid.img");
    harness_image_create(mid, fmt, 0, false, "base.raw");
    img = harness_image_open(mid, 0);
    tst_fill_pattern(data, sizeof(data), 8);
    assert_int_equal(blk_write(img, MIB, data, sizeof(data)), 0);
    assert_int_equal(blk_write(img, 5 * MIB, data, 100), 0);
    blk_close(img);
    const char *top = harness_path(*state, "top.img");
    harness_image_create(top, fmt, 0, false, "mid.img");
    img = harness_image_open(top, 0);
    tst_fill_pattern(data, sizeof(data), 9);
    assert_int_equal(blk_write(img, 7 * MIB + 512, data, sizeof(data)), 0);
    assert_int_equal(blk_write(img, 0, data, 10), 0);

    const char *flat = harness_path(*state, "flat.raw");
    assert_int_equal(blk_convert(img, flat, &(struct blk_create_params){.format = BLK_FMT_RAW}, NULL, NULL), 0);
    struct blk_image *out = harness_image_open(flat, BLK_OPEN_READONLY);
    assert_null(blk_backing(out));
    assert_int_equal(blk_size_bytes(out), 8 * MIB);
    uint8_t *x = malloc(MIB), *y = malloc(MIB);
    assert_non_null(x);
    assert_non_null(y);
    for (uint64_t off = 0; off < 8 * MIB; off += MIB) {
        assert_int_equal(blk_read(img, off, x, MIB), 0);
        assert_int_equal(blk_read(out, off, y, MIB), 0);
        assert_memory_equal(x, y, MIB);
    }
    free(x);
    free(y);
    /* Only the written pieces were written: the rest stayed holes. */
    assert_true(tst_file_allocated(flat) <= 1 * MIB);
    blk_close(out);

    /* The same chain into a standalone image of the differencing format. */
    const char *flat2 = harness_path(*state, "flat2.img");
    assert_int_equal(blk_convert(img, flat2, &(struct blk_create_params){.format = fmt}, NULL, NULL), 0);
    out = harness_image_open(flat2, BLK_OPEN_READONLY);
    assert_null(blk_backing(out));
    tst_expect_pattern(out, 7 * MIB + 512, sizeof(data), 0, 9);
    tst_expect_pattern(out, 5 * MIB + 100, 1000, 100, 7);
    blk_close(out);
    blk_close(img);
}

/* ---- Worker pool --------------------------------------------------------------------- */

#define TST_AIO_WRITES 96
#define TST_AIO_CHUNK (16 * 1024)

struct tst_aio {
    struct rt_mutex lock;
    struct rt_cond cond;
    unsigned writes_done;
    unsigned flush_saw; /* writes_done when the flush completed */
    unsigned finished;
    int first_error;
    struct blk_request reqs[TST_AIO_WRITES + 2];
    struct iovec iovs[TST_AIO_WRITES + 2];
};

static void tst_aio_done(struct blk_request *req, int status)
{
    struct tst_aio *t = req->opaque;
    rt_mutex_lock(&t->lock);
    if (status < 0 && t->first_error == 0)
        t->first_error = status;
    if (req->op == BLK_OP_WRITE)
        t->writes_done++;
    else if (req->op == BLK_OP_FLUSH)
        t->flush_saw = t->writes_done;
    t->finished++;
    rt_cond_broadcast(&t->cond);
    rt_mutex_unlock(&t->lock);
}

static void tst_aio_wait(struct tst_aio *t, unsigned count)
{
    uint64_t deadline = rt_time_mono_ns() + 20 * RT_NS_PER_SEC;
    rt_mutex_lock(&t->lock);
    while (t->finished < count) {
        if (rt_cond_wait_until(&t->cond, &t->lock, deadline) == VERR_TIMEOUT)
            break;
    }
    unsigned finished = t->finished;
    rt_mutex_unlock(&t->lock);
    assert_int_equal(finished, count);
}

static void test_aio_writes_then_flush(void **state)
{
    const char *path = harness_path(*state, "aio.raw");
    harness_image_create(path, BLK_FMT_RAW, TST_AIO_WRITES * TST_AIO_CHUNK, false, NULL);
    struct blk_image *img = harness_image_open(path, 0);
    struct blk_aio *aio = NULL;
    assert_int_equal(blk_aio_create(4, &aio), 0);
    struct tst_aio *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    assert_int_equal(rt_mutex_init(&t->lock), 0);
    assert_int_equal(rt_cond_init(&t->cond), 0);
    uint8_t *data = malloc(TST_AIO_WRITES * TST_AIO_CHUNK);
    assert_non_null(data);
    tst_fill_pattern(data, TST_AIO_WRITES * TST_AIO_CHUNK, 77);

    for (unsigned i = 0; i < TST_AIO_WRITES; i++) {
        /* Backwards, so that a pool taking requests in another order than FIFO shows. */
        unsigned chunk = TST_AIO_WRITES - 1 - i;
        t->iovs[i] = (struct iovec){data + (size_t)chunk * TST_AIO_CHUNK, TST_AIO_CHUNK};
        t->reqs[i] = (struct blk_request){.op = BLK_OP_WRITE, .img = img,
                                          .offset_bytes = (uint64_t)chunk * TST_AIO_CHUNK,
                                          .iov = &t->iovs[i], .iovcnt = 1, .done = tst_aio_done, .opaque = t};
        assert_int_equal(blk_aio_submit(aio, &t->reqs[i]), 0);
    }
    struct blk_request *flush = &t->reqs[TST_AIO_WRITES];
    *flush = (struct blk_request){.op = BLK_OP_FLUSH, .img = img, .done = tst_aio_done, .opaque = t};
    assert_int_equal(blk_aio_submit(aio, flush), 0);
    /* A read after the flush may run at any time; it must still see a complete chunk or zeroes. */
    uint8_t *rd = calloc(1, TST_AIO_CHUNK);
    assert_non_null(rd);
    t->iovs[TST_AIO_WRITES + 1] = (struct iovec){rd, TST_AIO_CHUNK};
    t->reqs[TST_AIO_WRITES + 1] = (struct blk_request){.op = BLK_OP_READ, .img = img, .offset_bytes = 0,
                                                       .iov = &t->iovs[TST_AIO_WRITES + 1], .iovcnt = 1,
                                                       .done = tst_aio_done, .opaque = t};
    assert_int_equal(blk_aio_submit(aio, &t->reqs[TST_AIO_WRITES + 1]), 0);
    tst_aio_wait(t, TST_AIO_WRITES + 2);
    assert_int_equal(t->first_error, 0);
    assert_int_equal(t->flush_saw, TST_AIO_WRITES);
    blk_aio_destroy(aio);

    uint8_t *all = malloc(TST_AIO_WRITES * TST_AIO_CHUNK);
    assert_non_null(all);
    assert_int_equal(blk_read(img, 0, all, TST_AIO_WRITES * TST_AIO_CHUNK), 0);
    assert_memory_equal(all, data, TST_AIO_WRITES * TST_AIO_CHUNK);
    blk_close(img);
    rt_cond_destroy(&t->cond);
    rt_mutex_destroy(&t->lock);
    free(all);
    free(rd);
    free(data);
    free(t);
}

/* done() of the first write blocks until released: the pool counts that write as running meanwhile. */
struct tst_barrier {
    struct rt_mutex lock;
    struct rt_cond cond;
    bool release;
    bool write_in_done;
    bool flush_done;
    bool read_done;
    bool late_write_done;
};

static void tst_barrier_done(struct blk_request *req, int status)
{
    struct tst_barrier *b = req->opaque;
    rt_mutex_lock(&b->lock);
    if (status < 0)
        fail_msg("request %d failed: %d", (int)req->op, status);
    if (req->op == BLK_OP_WRITE && req->offset_bytes == 0) {
        b->write_in_done = true;
        rt_cond_broadcast(&b->cond);
        while (!b->release)
            rt_cond_wait(&b->cond, &b->lock);
    } else if (req->op == BLK_OP_WRITE) {
        b->late_write_done = true;
    } else if (req->op == BLK_OP_FLUSH) {
        b->flush_done = true;
    } else {
        b->read_done = true;
    }
    rt_cond_broadcast(&b->cond);
    rt_mutex_unlock(&b->lock);
}

static void test_aio_flush_barrier(void **state)
{
    const char *path = harness_path(*state, "barrier.raw");
    harness_image_create(path, BLK_FMT_RAW, MIB, false, NULL);
    struct blk_image *img = harness_image_open(path, 0);
    struct blk_aio *aio = NULL;
    assert_int_equal(blk_aio_create(3, &aio), 0);
    struct tst_barrier *b = calloc(1, sizeof(*b));
    assert_non_null(b);
    assert_int_equal(rt_mutex_init(&b->lock), 0);
    assert_int_equal(rt_cond_init(&b->cond), 0);
    uint8_t wbuf[512], rbuf[512];
    memset(wbuf, 0x11, sizeof(wbuf));
    struct iovec wv = {wbuf, sizeof(wbuf)}, rv = {rbuf, sizeof(rbuf)};
    struct blk_request w = {.op = BLK_OP_WRITE, .img = img, .iov = &wv, .iovcnt = 1, .done = tst_barrier_done, .opaque = b};
    struct blk_request f = {.op = BLK_OP_FLUSH, .img = img, .done = tst_barrier_done, .opaque = b};
    struct blk_request r = {.op = BLK_OP_READ, .img = img, .offset_bytes = 4096, .iov = &rv, .iovcnt = 1,
                            .done = tst_barrier_done, .opaque = b};
    struct blk_request w2 = {.op = BLK_OP_WRITE, .img = img, .offset_bytes = 8192, .iov = &wv, .iovcnt = 1,
                             .done = tst_barrier_done, .opaque = b};
    assert_int_equal(blk_aio_submit(aio, &w), 0);
    rt_mutex_lock(&b->lock);
    while (!b->write_in_done)
        rt_cond_wait(&b->cond, &b->lock);
    rt_mutex_unlock(&b->lock);

    /* The write is still running (its done() has not returned): the flush must wait, the read need not. */
    assert_int_equal(blk_aio_submit(aio, &f), 0);
    assert_int_equal(blk_aio_submit(aio, &r), 0);
    uint64_t deadline = rt_time_mono_ns() + 5 * RT_NS_PER_SEC;
    rt_mutex_lock(&b->lock);
    while (!b->read_done && rt_cond_wait_until(&b->cond, &b->lock, deadline) == 0)
        ;
    assert_true(b->read_done);
    /* Give a wrong pool time to run the flush early. */
    rt_cond_wait_until(&b->cond, &b->lock, rt_time_mono_ns() + 100 * RT_NS_PER_MS);
    assert_false(b->flush_done);
    rt_mutex_unlock(&b->lock);
    /* A write of the same image submitted after the flush does not overtake it. */
    assert_int_equal(blk_aio_submit(aio, &w2), 0);
    rt_mutex_lock(&b->lock);
    rt_cond_wait_until(&b->cond, &b->lock, rt_time_mono_ns() + 50 * RT_NS_PER_MS);
    assert_false(b->late_write_done);
    b->release = true;
    rt_cond_broadcast(&b->cond);
    rt_mutex_unlock(&b->lock);

    blk_aio_destroy(aio);
    assert_true(b->flush_done);
    assert_true(b->late_write_done);
    assert_int_equal(blk_read(img, 8192, rbuf, sizeof(rbuf)), 0);
    assert_memory_equal(rbuf, wbuf, sizeof(rbuf));
    blk_close(img);
    rt_cond_destroy(&b->cond);
    rt_mutex_destroy(&b->lock);
    free(b);
}

static void test_aio_destroy_runs_queued(void **state)
{
    const char *path = harness_path(*state, "q.raw");
    harness_image_create(path, BLK_FMT_RAW, MIB, false, NULL);
    struct blk_image *img = harness_image_open(path, 0);
    struct blk_aio *aio = NULL;
    assert_int_equal(blk_aio_create(1, &aio), 0);
    struct tst_aio *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    assert_int_equal(rt_mutex_init(&t->lock), 0);
    assert_int_equal(rt_cond_init(&t->cond), 0);
    static uint8_t bytes[64];
    memset(bytes, 0x3c, sizeof(bytes));
    const unsigned n = 60;
    for (unsigned i = 0; i < n; i++) {
        t->iovs[i] = (struct iovec){bytes, sizeof(bytes)};
        enum blk_op op = i % 5 == 4 ? BLK_OP_FLUSH : i % 5 == 3 ? BLK_OP_WRITE_ZEROES : BLK_OP_WRITE;
        t->reqs[i] = (struct blk_request){.op = op, .img = img, .offset_bytes = i * 4096ull, .len_bytes = 512,
                                          .iov = &t->iovs[i], .iovcnt = 1, .done = tst_aio_done, .opaque = t};
        assert_int_equal(blk_aio_submit(aio, &t->reqs[i]), 0);
    }
    blk_aio_destroy(aio);
    /* Every callback ran before destroy returned. */
    assert_int_equal(t->finished, n);
    assert_int_equal(t->first_error, 0);
    assert_int_equal(t->writes_done, 36);
    uint8_t rd[64];
    assert_int_equal(blk_read(img, 56 * 4096ull, rd, sizeof(rd)), 0);
    assert_memory_equal(rd, bytes, sizeof(rd));
    blk_close(img);
    rt_cond_destroy(&t->cond);
    rt_mutex_destroy(&t->lock);
    free(t);
}

static void test_aio_errors(void **state)
{
    const char *path = harness_path(*state, "e.raw");
    harness_image_create(path, BLK_FMT_RAW, 4096, false, NULL);
    struct blk_image *img = harness_image_open(path, BLK_OPEN_READONLY);
    struct blk_aio *aio = (struct blk_aio *)&aio;
    assert_int_equal(blk_aio_create(0, &aio), VERR_OUT_OF_RANGE);
    assert_null(aio);
    assert_int_equal(blk_aio_create(65, &aio), VERR_OUT_OF_RANGE);
    assert_int_equal(blk_aio_create(2, NULL), VERR_INVALID_PARAMETER);
    assert_int_equal(blk_aio_create(2, &aio), 0);
    struct tst_aio *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    assert_int_equal(rt_mutex_init(&t->lock), 0);
    assert_int_equal(rt_cond_init(&t->cond), 0);
    uint8_t buf[16];
    t->iovs[0] = (struct iovec){buf, sizeof(buf)};
    struct blk_request bad = {.op = BLK_OP_WRITE, .img = img, .iov = t->iovs, .iovcnt = 1, .opaque = t};
    assert_int_equal(blk_aio_submit(aio, &bad), VERR_INVALID_PARAMETER); /* no done() */
    bad.done = tst_aio_done;
    bad.op = (enum blk_op)42;
    assert_int_equal(blk_aio_submit(aio, &bad), VERR_INVALID_PARAMETER);
    bad.op = BLK_OP_READ;
    bad.iovcnt = -3;
    assert_int_equal(blk_aio_submit(aio, &bad), VERR_INVALID_PARAMETER);
    bad.img = NULL;
    assert_int_equal(blk_aio_submit(aio, &bad), VERR_INVALID_PARAMETER);
    assert_int_equal(blk_aio_submit(NULL, &bad), VERR_INVALID_PARAMETER);

    /* Failures reach done(): a write to a read-only image, a read past the end. */
    t->reqs[0] = (struct blk_request){.op = BLK_OP_WRITE, .img = img, .iov = t->iovs, .iovcnt = 1,
                                      .done = tst_aio_done, .opaque = t};
    assert_int_equal(blk_aio_submit(aio, &t->reqs[0]), 0);
    tst_aio_wait(t, 1);
    assert_int_equal(t->first_error, VERR_ACCESS_DENIED);
    t->first_error = 0;
    t->reqs[1] = (struct blk_request){.op = BLK_OP_READ, .img = img, .offset_bytes = 4090, .iov = t->iovs,
                                      .iovcnt = 1, .done = tst_aio_done, .opaque = t};
    assert_int_equal(blk_aio_submit(aio, &t->reqs[1]), 0);
    tst_aio_wait(t, 2);
    assert_int_equal(t->first_error, VERR_OUT_OF_RANGE);
    blk_aio_destroy(aio);
    blk_aio_destroy(NULL);
    blk_close(img);
    rt_cond_destroy(&t->cond);
    rt_mutex_destroy(&t->lock);
    free(t);
}

int main(void)
{
    if (harness_log_open("tstBlock") < 0)
        return 1;
    /* The errors these tests provoke on purpose go to the log file, where the tests look for them. */
    rt_log_set_stderr_level((enum rt_log_level)-1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_names),
        cmocka_unit_test_setup_teardown(test_raw_create_sparse_and_fixed, tst_setup, harness_teardown_dir),
        cmocka_unit_test_setup_teardown(test_raw_odd_offsets, tst_setup, harness_teardown_dir),
        cmocka_unit_test_setup_teardown(test_raw_errors, tst_setup, harness_teardown_dir),
        cmocka_unit_test_setup_teardown(test_raw_flush_resize, tst_setup, harness_teardown_dir),
        cmocka_unit_test_setup_teardown(test_raw_discard_zeroes_status, tst_setup, harness_teardown_dir),
        cmocka_unit_test_setup_teardown(test_probe, tst_setup, harness_teardown_dir),
        cmocka_unit_test_setup_teardown(test_probed_raw_guard, tst_setup, harness_teardown_dir),
        cmocka_unit_test_setup_teardown(test_locking, tst_setup, harness_teardown_dir),
        cmocka_unit_test_setup_teardown(test_create_refuses, tst_setup, harness_teardown_dir),
        cmocka_unit_test_setup_teardown(test_convert_raw, tst_setup, harness_teardown_dir),
        cmocka_unit_test_setup_teardown(test_convert_iso_and_check, tst_setup, harness_teardown_dir),
        cmocka_unit_test_setup_teardown(test_aio_writes_then_flush, tst_setup, harness_teardown_dir),
        cmocka_unit_test_setup_teardown(test_aio_flush_barrier, tst_setup, harness_teardown_dir),
        cmocka_unit_test_setup_teardown(test_aio_destroy_runs_queued, tst_setup, harness_teardown_dir),
        cmocka_unit_test_setup_teardown(test_aio_errors, tst_setup, harness_teardown_dir),
    };
    const struct CMUnitTest chain_tests[] = {
        cmocka_unit_test_setup_teardown(test_chain_diff_over_raw, tst_setup, harness_teardown_dir),
        cmocka_unit_test_setup_teardown(test_chain_relative_and_smaller_parent, tst_setup, harness_teardown_dir),
        cmocka_unit_test_setup_teardown(test_chain_missing_parent, tst_setup, harness_teardown_dir),
        cmocka_unit_test_setup_teardown(test_chain_loops, tst_setup, harness_teardown_dir),
        cmocka_unit_test_setup_teardown(test_chain_too_long, tst_setup, harness_teardown_dir),
        cmocka_unit_test_setup_teardown(test_chain_commit, tst_setup, harness_teardown_dir),
        cmocka_unit_test_setup_teardown(test_chain_convert_flattens, tst_setup, harness_teardown_dir),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("chains over qcow2", chain_tests, tst_chain_group_qcow2, NULL);
    failed += cmocka_run_group_tests_name("chains over VDI", chain_tests, tst_chain_group_vdi, NULL);
    rt_log_close_file();
    unlink(harness_log_path());
    return failed;
}
