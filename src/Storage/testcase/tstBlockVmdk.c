/* tstBlockVmdk.c - tests of the read-only VMDK format: qemu-img's and hand-made images, chains, hostile edits. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "harness.h"
#include "vireo/block.h"
#include "vireo/rt.h"
#include "../vmdk-internal.h"

/*
 * Every image is made from one raw file with a known pattern: data in a few runs
 * (no zero byte inside a run, so a grain is allocated exactly when a run touches
 * it) and zeroes elsewhere.  The disk is 4 MiB + 3 sectors, so its last grain is
 * partial.  qemu-img (Debian's qemu-utils) converts it into each VMDK subformat.
 */

#define TST_SIZE  (4u * 1024 * 1024 + 3 * 512)
#define TST_GRAIN (64u * 1024)

struct tst_run {
    uint64_t offset, len;
};
static const struct tst_run g_runs[] = {
    {0, 70000},
    {200 * 1024 + 100, 150000},
    {1024 * 1024 - 10, 20},
    {2 * 1024 * 1024, TST_GRAIN},
    {TST_SIZE - 1000, 1000},
};

static char g_dir[64];
static uint8_t *g_pattern; /* TST_SIZE bytes: what every image must read as */

static uint8_t tst_pattern_byte(uint64_t off)
{
    return (uint8_t)((off * 7 + (off >> 9) * 13) | 1);
}

/* The file offset of grain `grain`'s table entry through the primary (or redundant) grain directory. */
static uint64_t tst_gte_offset_in(const char *path, uint64_t grain, bool redundant)
{
    uint8_t hdr[512];
    harness_file_peek(path, 0, hdr, sizeof(hdr));
    uint64_t gd = blk_le64(hdr + (redundant ? 48 : 56));
    uint32_t gt = harness_file_peek_le32(path, gd * 512 + (grain / 512) * 4);
    assert_int_not_equal(gt, 0);
    return (uint64_t)gt * 512 + (grain % 512) * 4;
}

static uint64_t tst_gte_offset(const char *path, uint64_t grain)
{
    return tst_gte_offset_in(path, grain, false);
}

/* Changes a grain table entry in both copies of the tables, as a consistent (if hostile) image has it. */
static void tst_poke_gte(const char *path, uint64_t grain, uint32_t value)
{
    harness_file_poke_le32(path, tst_gte_offset_in(path, grain, false), value);
    harness_file_poke_le32(path, tst_gte_offset_in(path, grain, true), value);
}

/* Reads the whole disk in pieces of changing, odd sizes and compares it with the pattern. */
static void tst_check_content(struct blk_image *img, const uint8_t *expect)
{
    assert_int_equal(blk_size_bytes(img), TST_SIZE);
    uint8_t *got = malloc(TST_SIZE);
    assert_non_null(got);
    uint64_t off = 0;
    for (unsigned i = 0; off < TST_SIZE; i++) {
        size_t n = RT_MIN((size_t)(1 + (i * 7919u) % 100000u), (size_t)(TST_SIZE - off));
        assert_int_equal(blk_read(img, off, got + off, n), 0);
        off += n;
    }
    assert_memory_equal(got, expect, TST_SIZE);
    free(got);
}

static bool tst_grain_has_data(const uint8_t *content, uint64_t grain)
{
    uint64_t start = grain * TST_GRAIN, end = RT_MIN(start + TST_GRAIN, (uint64_t)TST_SIZE);
    for (uint64_t i = start; i < end; i++)
        if (content[i])
            return true;
    return false;
}

/* Walks block status over the disk: a grain is allocated exactly when it holds data. */
static void tst_check_status(struct blk_image *img, const uint8_t *content)
{
    uint64_t off = 0;
    unsigned runs = 0;
    while (off < TST_SIZE) {
        bool alloc;
        uint64_t n;
        assert_int_equal(blk_block_status(img, off, TST_SIZE - off, &alloc, &n), 0);
        assert_true(n > 0 && n <= TST_SIZE - off);
        for (uint64_t g = off / TST_GRAIN; g * TST_GRAIN < off + n; g++)
            assert_int_equal(tst_grain_has_data(content, g), alloc);
        off += n;
        runs++;
    }
    assert_true(runs >= 4); /* the pattern has data and holes in turn */
}

static void tst_open_ok(const char *path, unsigned flags, struct blk_image **img)
{
    int rc = blk_open(path, BLK_FMT_AUTO, flags, img);
    assert_int_equal(rc, 0);
    assert_int_equal(blk_format(*img), BLK_FMT_VMDK);
}

static int tst_open_rc(const char *path, enum blk_format fmt)
{
    struct blk_image *img = NULL;
    int rc = blk_open(path, fmt, BLK_OPEN_READONLY, &img);
    blk_close(img);
    return rc;
}

static void tst_expect_clean(const char *path)
{
    struct blk_check_result res;
    assert_int_equal(blk_check(path, BLK_FMT_VMDK, false, &res), 0);
    if (res.errors)
        print_message("unexpected problem: %s\n", res.first_problem);
    assert_int_equal(res.errors, 0);
}

static int tst_setup(void **state)
{
    (void)state;
    if (harness_sh("command -v qemu-img >/dev/null && command -v qemu-io >/dev/null") != 0) {
        print_error("qemu-img/qemu-io not found: install the qemu-utils package\n");
        return -1;
    }
    if (harness_dir_create("tstBlockVmdk", g_dir, sizeof(g_dir)) < 0)
        return -1;
    g_pattern = calloc(1, TST_SIZE);
    if (!g_pattern)
        return -1;
    for (size_t r = 0; r < RT_ARRAY_SIZE(g_runs); r++)
        for (uint64_t i = g_runs[r].offset; i < g_runs[r].offset + g_runs[r].len; i++)
            g_pattern[i] = tst_pattern_byte(i);
    const char *raw = harness_path(g_dir, "raw.img");
    harness_file_write(raw, g_pattern, TST_SIZE);
    const char *q = "qemu-img convert -f raw -O vmdk";
    if (harness_sh("%s %s %s", q, raw, harness_path(g_dir, "sparse.vmdk")) ||
        harness_sh("%s -o subformat=streamOptimized %s %s", q, raw, harness_path(g_dir, "stream.vmdk")) ||
        harness_sh("%s -o subformat=monolithicFlat %s %s", q, raw, harness_path(g_dir, "flat.vmdk")) ||
        harness_sh("%s -o subformat=twoGbMaxExtentSparse %s %s", q, raw, harness_path(g_dir, "split.vmdk")))
        return -1;
    return 0;
}

static int tst_teardown(void **state)
{
    (void)state;
    harness_dir_remove(g_dir);
    free(g_pattern);
    return 0;
}

/* ---- Images qemu-img made --------------------------------------------------------------- */

static void tst_roundtrip(const char *name, const char *variant, bool sparse)
{
    struct blk_image *img;
    tst_open_ok(harness_path(g_dir, name), 0, &img); /* no READONLY asked: the format is read-only all the same */
    assert_true(blk_is_readonly(img));
    struct blk_info info;
    assert_int_equal(blk_get_info(img, &info), 0);
    assert_string_equal(info.variant, variant);
    assert_int_equal(info.size_bytes, TST_SIZE);
    assert_string_equal(info.backing_path, "");
    tst_check_content(img, g_pattern);
    if (sparse) {
        tst_check_status(img, g_pattern);
    } else {
        bool alloc;
        uint64_t n;
        assert_int_equal(blk_block_status(img, 0, TST_SIZE, &alloc, &n), 0);
        assert_true(alloc);
        assert_int_equal(n, TST_SIZE);
    }
    uint8_t buf[512] = {1};
    assert_int_equal(blk_write(img, 0, buf, sizeof(buf)), VERR_ACCESS_DENIED);
    assert_int_equal(blk_read(img, TST_SIZE - 100, buf, 200), VERR_OUT_OF_RANGE);
    blk_close(img);
    tst_expect_clean(harness_path(g_dir, name));
}

static void test_monolithic_sparse(void **state)
{
    tst_roundtrip("sparse.vmdk", "monolithicSparse", true);
}

static void test_stream_optimized(void **state)
{
    tst_roundtrip("stream.vmdk", "streamOptimized", true);
}

static void test_monolithic_flat(void **state)
{
    tst_roundtrip("flat.vmdk", "monolithicFlat", false);
}

static void test_split_sparse(void **state)
{
    tst_roundtrip("split.vmdk", "twoGbMaxExtentSparse", true);
}

/* A hand-written descriptor: two pieces of a flat file around a ZERO extent, reordered. */
static void test_multi_extent_descriptor(void **state)
{
    char text[512];
    snprintf(text, sizeof(text),
             "# Disk DescriptorFile\r\nversion=1\r\nCID=12345678\r\nparentCID=ffffffff\r\n"
             "createType=\"twoGbMaxExtentFlat\"\r\n\r\n"
             "RW 4096 FLAT \"raw.img\" 4099\r\n  RW 100 ZERO\r\nRDONLY 3999 FLAT \"%s/raw.img\"\r\n"
             "ddb.uuid.image=\"01234567-89ab-cdef-0123-456789abcdef\"\r\n",
             g_dir);
    harness_file_write(harness_path(g_dir, "multi.vmdk"), text, strlen(text));
    uint8_t *expect = calloc(1, TST_SIZE);
    assert_non_null(expect);
    memcpy(expect, g_pattern + 4099 * 512, 4096 * 512);
    memcpy(expect + 4196 * 512, g_pattern, 3999 * 512);
    struct blk_image *img;
    tst_open_ok(harness_path(g_dir, "multi.vmdk"), BLK_OPEN_READONLY, &img);
    tst_check_content(img, expect);
    struct blk_info info;
    assert_int_equal(blk_get_info(img, &info), 0);
    assert_string_equal(info.variant, "twoGbMaxExtentFlat");
    char uuid[RT_UUID_STR_LEN];
    rt_uuid_to_str(&info.uuid, uuid);
    assert_string_equal(uuid, "01234567-89ab-cdef-0123-456789abcdef");
    blk_close(img);
    free(expect);
}

/* Grain table entry 1 with the zeroed-grain flag reads as zeroes, even over a parent with data. */
static void test_zero_grain_and_chain(void **state)
{
    const char *base = harness_path(g_dir, "base.vmdk"), *child = harness_path(g_dir, "child.vmdk");
    harness_file_copy(harness_path(g_dir, "sparse.vmdk"), base);
    assert_int_equal(harness_sh("qemu-img create -q -f vmdk -o zeroed_grain=on -b base.vmdk -F vmdk %s", child), 0);
    assert_int_equal(harness_sh("qemu-io -c 'write -P 0x5a 3145728 65536' -c 'write -z 0 65536' %s >/dev/null", child),
                     0);
    assert_int_equal(harness_file_peek_le32(child, tst_gte_offset(child, 0)), 1);

    uint8_t *expect = malloc(TST_SIZE);
    assert_non_null(expect);
    memcpy(expect, g_pattern, TST_SIZE);
    memset(expect, 0, TST_GRAIN);
    memset(expect + 3 * 1024 * 1024, 0x5a, TST_GRAIN);

    struct blk_image *img;
    tst_open_ok(child, BLK_OPEN_READONLY, &img);
    assert_non_null(blk_backing(img));
    tst_check_content(img, expect);
    struct blk_info info;
    assert_int_equal(blk_get_info(img, &info), 0);
    assert_string_equal(info.backing_path, base);
    /* The child holds grain 0 (as zeroes) and grain 48, nothing else. */
    bool alloc;
    uint64_t n;
    assert_int_equal(blk_block_status(img, 0, TST_SIZE, &alloc, &n), 0);
    assert_true(alloc);
    assert_int_equal(n, TST_GRAIN);
    assert_int_equal(blk_block_status(img, TST_GRAIN, TST_SIZE - TST_GRAIN, &alloc, &n), 0);
    assert_false(alloc);
    assert_int_equal(n, 3 * 1024 * 1024 - TST_GRAIN);
    blk_close(img);

    /* Without the parent, unallocated grains read as zeroes. */
    tst_open_ok(child, BLK_OPEN_READONLY | BLK_OPEN_NO_BACKING, &img);
    uint8_t buf[4096];
    assert_int_equal(blk_read(img, 200 * 1024 + 100, buf, sizeof(buf)), 0);
    for (size_t i = 0; i < sizeof(buf); i++)
        assert_int_equal(buf[i], 0);
    blk_close(img);
    tst_expect_clean(child);

    /* A parent whose CID changed since the child was made is refused. */
    char desc[1024];
    harness_file_peek(base, 512, desc, sizeof(desc));
    char *cid = strstr(desc, "\nCID=");
    assert_non_null(cid);
    cid[5] = cid[5] == '0' ? '1' : '0';
    harness_file_poke(base, 512, desc, sizeof(desc));
    assert_int_equal(tst_open_rc(child, BLK_FMT_AUTO), VERR_BAD_FORMAT);
    free(expect);
}

static void test_missing_parent(void **state)
{
    const char *base = harness_path(g_dir, "gone.vmdk"), *child = harness_path(g_dir, "orphan.vmdk");
    harness_file_copy(harness_path(g_dir, "sparse.vmdk"), base);
    assert_int_equal(harness_sh("qemu-img create -q -f vmdk -b gone.vmdk -F vmdk %s", child), 0);
    unlink(base);
    assert_int_equal(tst_open_rc(child, BLK_FMT_AUTO), VERR_FILE_NOT_FOUND);
    struct blk_image *img;
    tst_open_ok(child, BLK_OPEN_READONLY | BLK_OPEN_NO_BACKING, &img);
    blk_close(img);
}

/* ---- A stream-optimized disk laid out as VMware writes it: GD_AT_END and a footer ---------- */

enum tst_stream_flaw { FLAW_NONE, FLAW_LBA, FLAW_DEFLATE, FLAW_SHORT_GRAIN, FLAW_NO_FOOTER, FLAW_HUGE_SIZE };

static void tst_put_sector(uint8_t *file, size_t *at, const void *data, size_t len)
{
    memcpy(file + *at, data, len);
    *at += RT_ALIGN_UP(len, 512);
}

static void tst_marker(uint8_t *file, size_t *at, uint64_t val, uint32_t type)
{
    uint8_t m[512] = {0};
    blk_put_le64(m, val);
    blk_put_le32(m + 12, type);
    tst_put_sector(file, at, m, sizeof(m));
}

static void tst_build_vmware_stream(const char *path, enum tst_stream_flaw flaw)
{
    const uint64_t sectors = TST_SIZE / 512, grains = (TST_SIZE + TST_GRAIN - 1) / TST_GRAIN;
    uint8_t *file = calloc(1, TST_SIZE * 2);
    uint8_t *grain = calloc(1, TST_GRAIN);
    uint8_t *comp = malloc(compressBound(TST_GRAIN) + 12);
    uint32_t gt[512] = {0};
    assert_true(file && grain && comp);

    uint8_t hdr[512] = {0};
    blk_put_le32(hdr, VMDK_SPARSE_MAGIC);
    blk_put_le32(hdr + 4, 3);
    blk_put_le32(hdr + 8, VMDK_FLAG_NL_TEST | VMDK_FLAG_COMPRESSED | VMDK_FLAG_MARKERS);
    blk_put_le64(hdr + 12, sectors);
    blk_put_le64(hdr + 20, TST_GRAIN / 512);
    blk_put_le64(hdr + 28, 1);
    blk_put_le64(hdr + 36, 2);
    blk_put_le32(hdr + 44, 512);
    blk_put_le64(hdr + 56, VMDK_GD_AT_END);
    blk_put_le64(hdr + 64, 3);
    memcpy(hdr + 73, "\n \r\n", 4);
    blk_put_le16(hdr + 77, VMDK_COMPRESS_DEFLATE);
    size_t at = 0;
    tst_put_sector(file, &at, hdr, sizeof(hdr));
    char desc[1024] = {0};
    snprintf(desc, sizeof(desc),
             "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"streamOptimized\"\n"
             "RW %llu SPARSE \"x.vmdk\"\n",
             (unsigned long long)sectors);
    tst_put_sector(file, &at, desc, sizeof(desc));

    for (uint64_t g = 0; g < grains; g++) {
        if (!tst_grain_has_data(g_pattern, g))
            continue;
        size_t n = (size_t)RT_MIN((uint64_t)TST_GRAIN, TST_SIZE - g * TST_GRAIN);
        memset(grain, 0, TST_GRAIN);
        memcpy(grain, g_pattern + g * TST_GRAIN, n);
        uLongf clen = compressBound(TST_GRAIN);
        assert_int_equal(compress2(comp + 12, &clen, grain, flaw == FLAW_SHORT_GRAIN ? 1000 : TST_GRAIN, 6), Z_OK);
        blk_put_le64(comp, g * (TST_GRAIN / 512) + (flaw == FLAW_LBA && g == 3 ? 128 : 0));
        blk_put_le32(comp + 8, flaw == FLAW_HUGE_SIZE ? 0xfffffff0u : (uint32_t)clen);
        if (flaw == FLAW_DEFLATE && g == 3)
            memset(comp + 12 + clen / 2, 0xa5, 16);
        gt[g] = (uint32_t)(at / 512);
        tst_put_sector(file, &at, comp, 12 + clen);
    }
    tst_marker(file, &at, 4, VMDK_MARKER_GT);
    uint32_t gt_sector = (uint32_t)(at / 512);
    for (unsigned i = 0; i < 512; i++)
        blk_put_le32(&gt[i], gt[i]);
    tst_put_sector(file, &at, gt, sizeof(gt));
    tst_marker(file, &at, 1, VMDK_MARKER_GD);
    uint64_t gd_sector = at / 512;
    uint8_t gd[512] = {0};
    blk_put_le32(gd, gt_sector);
    tst_put_sector(file, &at, gd, sizeof(gd));
    if (flaw != FLAW_NO_FOOTER) {
        tst_marker(file, &at, 1, VMDK_MARKER_FOOTER);
        blk_put_le64(hdr + 56, gd_sector);
        tst_put_sector(file, &at, hdr, sizeof(hdr));
    }
    tst_marker(file, &at, 0, VMDK_MARKER_EOS);
    harness_file_write(path, file, at);
    free(file);
    free(grain);
    free(comp);
}

static void test_vmware_stream_footer(void **state)
{
    const char *path = harness_path(g_dir, "vmware-stream.vmdk");
    tst_build_vmware_stream(path, FLAW_NONE);
    struct blk_image *img;
    tst_open_ok(path, BLK_OPEN_READONLY, &img);
    tst_check_content(img, g_pattern);
    tst_check_status(img, g_pattern);
    blk_close(img);
    tst_expect_clean(path);
}

static void tst_expect_grain3_error(const char *path)
{
    struct blk_image *img;
    tst_open_ok(path, BLK_OPEN_READONLY, &img);
    uint8_t buf[4096];
    assert_int_equal(blk_read(img, 0, buf, sizeof(buf)), 0); /* grain 0 is fine */
    assert_int_equal(blk_read(img, 3 * TST_GRAIN + 512, buf, sizeof(buf)), VERR_BAD_FORMAT);
    assert_int_equal(blk_read(img, 3 * TST_GRAIN + 512, buf, sizeof(buf)), VERR_BAD_FORMAT); /* not cached as good */
    blk_close(img);
}

static void test_stream_hostile(void **state)
{
    const char *path = harness_path(g_dir, "bad-stream.vmdk");
    struct blk_check_result res;

    tst_build_vmware_stream(path, FLAW_LBA);
    tst_expect_grain3_error(path);
    assert_int_equal(blk_check(path, BLK_FMT_AUTO, false, &res), 0);
    assert_int_equal(res.errors, 1);
    assert_non_null(strstr(res.first_problem, "LBA"));

    tst_build_vmware_stream(path, FLAW_DEFLATE);
    tst_expect_grain3_error(path);

    tst_build_vmware_stream(path, FLAW_SHORT_GRAIN);
    struct blk_image *img;
    tst_open_ok(path, BLK_OPEN_READONLY, &img);
    uint8_t buf[512];
    assert_int_equal(blk_read(img, 0, buf, sizeof(buf)), VERR_BAD_FORMAT);
    blk_close(img);

    tst_build_vmware_stream(path, FLAW_HUGE_SIZE);
    tst_open_ok(path, BLK_OPEN_READONLY, &img);
    assert_int_equal(blk_read(img, 0, buf, sizeof(buf)), VERR_BAD_FORMAT);
    blk_close(img);
    assert_int_equal(blk_check(path, BLK_FMT_AUTO, false, &res), 0);
    assert_true(res.errors > 0);

    tst_build_vmware_stream(path, FLAW_NO_FOOTER);
    assert_int_equal(tst_open_rc(path, BLK_FMT_AUTO), VERR_BAD_FORMAT);

    /* qemu-img's layout: a corrupt deflate stream in a grain it wrote, and a marker for the wrong LBA. */
    const char *qpath = harness_path(g_dir, "bad-qstream.vmdk");
    harness_file_copy(harness_path(g_dir, "stream.vmdk"), qpath);
    uint32_t marker = harness_file_peek_le32(qpath, tst_gte_offset(qpath, 3));
    assert_true(marker > 1);
    uint8_t junk[32];
    memset(junk, 0x5a, sizeof(junk));
    harness_file_poke(qpath, (uint64_t)marker * 512 + 12 + 8, junk, sizeof(junk));
    tst_expect_grain3_error(qpath);
    harness_file_copy(harness_path(g_dir, "stream.vmdk"), qpath);
    harness_file_poke_le64(qpath, (uint64_t)marker * 512, 0);
    tst_expect_grain3_error(qpath);
}

/* ---- Hostile edits of a monolithic sparse header and its tables ------------------------------ */

struct tst_hdr_edit {
    uint64_t offset;
    unsigned width; /* 4 or 8 bytes, or 1 */
    uint64_t value;
    int expect;
};

static void test_sparse_hostile_header(void **state)
{
    const char *src = harness_path(g_dir, "sparse.vmdk"), *path = harness_path(g_dir, "bad-sparse.vmdk");
    const struct tst_hdr_edit edits[] = {
        {0, 4, 0x4d444b56, VERR_BAD_FORMAT},          /* bad magic (forced VMDK: not a descriptor either) */
        {0, 4, VMDK_COWD_MAGIC, VERR_NOT_SUPPORTED},  /* an ESX sparse file */
        {4, 4, 4, VERR_NOT_SUPPORTED},                /* version */
        {12, 8, UINT64_C(1) << 60, VERR_BAD_FORMAT},  /* huge capacity */
        {12, 8, 0, VERR_BAD_FORMAT},                  /* capacity 0 */
        {20, 8, 0, VERR_BAD_FORMAT},                  /* grain size 0 */
        {20, 8, 3, VERR_BAD_FORMAT},                  /* not a power of two */
        {20, 8, 256, VERR_BAD_FORMAT},                /* too large */
        {44, 4, 1024, VERR_BAD_FORMAT},               /* numGTEsPerGT */
        {56, 8, 1u << 20, VERR_BAD_FORMAT},           /* GD past the end of the file */
        {56, 8, 0, VERR_BAD_FORMAT},                  /* GD over the header */
        {48, 8, UINT64_C(1) << 40, VERR_BAD_FORMAT},  /* redundant GD past the end */
        {28, 8, 1u << 20, VERR_BAD_FORMAT},           /* descriptor past the end */
        {36, 8, 1000, VERR_BAD_FORMAT},               /* descriptor too large */
        {73, 1, '\r', VERR_BAD_FORMAT},               /* newline test damaged */
        {77, 4, 0x0200030000ull, VERR_NOT_SUPPORTED}, /* compressed, algorithm 2 */
    };
    for (size_t i = 0; i < RT_ARRAY_SIZE(edits); i++) {
        const struct tst_hdr_edit *e = &edits[i];
        harness_file_copy(src, path);
        if (e->offset == 77) {
            harness_file_poke_le32(path, 8, 0x30003); /* the flags say compressed */
            harness_file_poke(path, 77, "\x02\x00", 2);
        } else if (e->width == 1) {
            uint8_t b = (uint8_t)e->value;
            harness_file_poke(path, e->offset, &b, 1);
        } else if (e->width == 4) {
            harness_file_poke_le32(path, e->offset, (uint32_t)e->value);
        } else {
            harness_file_poke_le64(path, e->offset, e->value);
        }
        print_message("edit %zu at %llu\n", i, (unsigned long long)e->offset);
        assert_int_equal(tst_open_rc(path, BLK_FMT_VMDK), e->expect);
    }
    /* A damaged magic alone makes the file a raw disk to probing, never a VMDK read wrongly. */
    harness_file_copy(src, path);
    harness_file_poke_le32(path, 0, 0x4d444b56);
    struct blk_image *img;
    assert_int_equal(blk_open(path, BLK_FMT_AUTO, BLK_OPEN_READONLY, &img), 0);
    assert_int_equal(blk_format(img), BLK_FMT_RAW);
    blk_close(img);
}

static void test_sparse_hostile_tables(void **state)
{
    const char *src = harness_path(g_dir, "sparse.vmdk"), *path = harness_path(g_dir, "bad-table.vmdk");
    uint8_t hdr[512];
    harness_file_peek(src, 0, hdr, sizeof(hdr));
    uint64_t gd = blk_le64(hdr + 56);
    struct blk_check_result res;
    uint8_t buf[4096];

    /* A grain directory entry past the end of the file refuses the open. */
    harness_file_copy(src, path);
    harness_file_poke_le32(path, gd * 512, 0x7fffffff);
    assert_int_equal(tst_open_rc(path, BLK_FMT_AUTO), VERR_BAD_FORMAT);
    /* One pointing into the grain directory itself too. */
    harness_file_poke_le32(path, gd * 512, (uint32_t)gd);
    assert_int_equal(tst_open_rc(path, BLK_FMT_AUTO), VERR_BAD_FORMAT);

    /* A grain table entry past the end: that grain fails to read, check reports it. */
    harness_file_copy(src, path);
    tst_poke_gte(path, 3, 0x7fffff00);
    struct blk_image *img;
    tst_open_ok(path, BLK_OPEN_READONLY, &img);
    assert_int_equal(blk_read(img, 0, buf, sizeof(buf)), 0);
    assert_int_equal(blk_read(img, 3 * TST_GRAIN, buf, sizeof(buf)), VERR_BAD_FORMAT);
    blk_close(img);
    assert_int_equal(blk_check(path, BLK_FMT_AUTO, false, &res), 0);
    assert_int_equal(res.errors, 1);
    assert_non_null(strstr(res.first_problem, "past the end"));

    /* Two entries naming one grain, and one naming the grain directory: overlaps. */
    harness_file_copy(src, path);
    tst_poke_gte(path, 4, harness_file_peek_le32(path, tst_gte_offset(path, 0)));
    assert_int_equal(blk_check(path, BLK_FMT_AUTO, false, &res), 0);
    assert_true(res.errors >= 1);
    assert_non_null(strstr(res.first_problem, "overlaps"));
    harness_file_copy(src, path);
    tst_poke_gte(path, 0, (uint32_t)gd);
    assert_int_equal(blk_check(path, BLK_FMT_AUTO, false, &res), 0);
    assert_true(res.errors >= 1);
    assert_non_null(strstr(res.first_problem, "grain directory"));

    /* A primary table that no longer matches its redundant copy. */
    harness_file_copy(src, path);
    harness_file_poke_le32(path, tst_gte_offset(path, 32), 0);
    assert_int_equal(blk_check(path, BLK_FMT_AUTO, false, &res), 0);
    assert_int_equal(res.errors, 1);
    assert_non_null(strstr(res.first_problem, "redundant grain table 0 differs"));

    /* A file cut short: the cut grain is reported. */
    harness_file_copy(src, path);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(truncate(path, st.st_size - 4096), 0);
    assert_int_equal(blk_check(path, BLK_FMT_AUTO, false, &res), 0);
    assert_int_equal(res.errors, 1);
    assert_non_null(strstr(res.first_problem, "runs past the end"));
}

/* Every directory entry names one table whose every entry names one grain: bounded work, reported by check. */
static void test_sparse_hostile_repeats(void **state)
{
    const uint32_t tables = 200;
    uint8_t file[8 * 512] = {0};
    blk_put_le32(file, VMDK_SPARSE_MAGIC);
    blk_put_le32(file + 4, 1);
    blk_put_le64(file + 12, (uint64_t)tables * 512); /* grains of one sector */
    blk_put_le64(file + 20, 1);
    blk_put_le32(file + 44, 512);
    blk_put_le64(file + 56, 1);
    for (uint32_t i = 0; i < tables; i++)
        blk_put_le32(file + 512 + i * 4, 3);
    for (uint32_t i = 0; i < 512; i++)
        blk_put_le32(file + 3 * 512 + i * 4, 7);
    memset(file + 7 * 512, 0xc3, 512);
    const char *path = harness_path(g_dir, "repeats.vmdk");
    harness_file_write(path, file, sizeof(file));

    struct blk_image *img;
    tst_open_ok(path, BLK_OPEN_READONLY, &img);
    uint64_t size = blk_size_bytes(img);
    assert_int_equal(size, (uint64_t)tables * 512 * 512);
    bool alloc;
    uint64_t n;
    assert_int_equal(blk_block_status(img, 0, size, &alloc, &n), 0);
    assert_true(alloc);
    assert_true(n >= 512 && n < size); /* a partial answer, not a walk over every entry */
    uint8_t buf[512];
    assert_int_equal(blk_read(img, size - 512, buf, sizeof(buf)), 0);
    assert_int_equal(buf[0], 0xc3);
    assert_int_equal(buf[511], 0xc3);
    blk_close(img);
    struct blk_check_result res;
    assert_int_equal(blk_check(path, BLK_FMT_AUTO, false, &res), 0);
    assert_true(res.errors >= 2);
    assert_non_null(strstr(res.first_problem, "more grains"));
}

/* ---- Descriptor files ---------------------------------------------------------------------- */

static void tst_desc_expect(const char *text, int expect)
{
    const char *path = harness_path(g_dir, "desc.vmdk");
    harness_file_write(path, text, strlen(text));
    assert_int_equal(tst_open_rc(path, BLK_FMT_AUTO), expect);
}

static void test_descriptor_hostile(void **state)
{
    /* The flat data file of qemu-img's monolithicFlat disk, named by hand-written descriptors. */
    const char *hd = "# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=ffffffff\n";
    char text[8192];
    snprintf(text, sizeof(text), "%screateType=\"monolithicFlat\"\n", hd);
    tst_desc_expect(text, VERR_BAD_FORMAT); /* no extents */
    snprintf(text, sizeof(text), "%screateType=\"monolithicFlat\"\nRW 8195 FLAT \"no-such-file\" 0\n", hd);
    tst_desc_expect(text, VERR_FILE_NOT_FOUND);
    snprintf(text, sizeof(text), "%screateType=\"monolithicFlat\"\nRW 8196 FLAT \"flat-flat.vmdk\" 0\n", hd);
    tst_desc_expect(text, VERR_TRUNCATED); /* one sector more than the file holds */
    snprintf(text, sizeof(text), "%screateType=\"monolithicFlat\"\nRW 8195 FLAT \"flat-flat.vmdk\" 1\n", hd);
    tst_desc_expect(text, VERR_TRUNCATED);
    snprintf(text, sizeof(text), "%screateType=\"vmfs\"\nRW 8195 VMFS \"flat-flat.vmdk\"\n", hd);
    tst_desc_expect(text, VERR_NOT_SUPPORTED);
    snprintf(text, sizeof(text), "%screateType=\"twoGbMaxExtentFlat\"\nRW 8195 VMFS \"flat-flat.vmdk\"\n", hd);
    tst_desc_expect(text, VERR_NOT_SUPPORTED);
    snprintf(text, sizeof(text), "%screateType=\"custom\"\nRW 8195 FLAT \"flat-flat.vmdk\"\n", hd);
    tst_desc_expect(text, VERR_NOT_SUPPORTED);
    snprintf(text, sizeof(text), "%sRW 8195 FLAT \"flat-flat.vmdk\"\n", hd);
    tst_desc_expect(text, VERR_BAD_FORMAT); /* no createType */
    static const char *const bad_lines[] = {
        "RW 8195 FLAT flat-flat.vmdk",
        "RW 8195 FLAT \"flat-flat.vmdk",
        "RW 81x5 FLAT \"flat-flat.vmdk\"",
        "RW 0 FLAT \"flat-flat.vmdk\"",
        "RW 99999999999999999999999 FLAT \"f\"",
        "RW 8195 SQUARE \"flat-flat.vmdk\"",
        "RW 8195 FLAT \"flat-flat.vmdk\" -1",
        "RW 8195 FLAT \"flat-flat.vmdk\" 0 junk",
        "RW 8195 FLAT \"\"",
        "RW 8195",
        "RW 100 ZERO \"flat-flat.vmdk\"",
        "RW 8195 FLAT \"flat-flat.vmdk\" 36028797018963967",
    };
    for (size_t i = 0; i < RT_ARRAY_SIZE(bad_lines); i++) {
        snprintf(text, sizeof(text), "%screateType=\"monolithicFlat\"\n%s\n", hd, bad_lines[i]);
        print_message("line: %s\n", bad_lines[i]);
        tst_desc_expect(text, VERR_BAD_FORMAT);
    }
    snprintf(text, sizeof(text), "%screateType=\"monolithicFlat\"\nNOACCESS 8195 FLAT \"flat-flat.vmdk\"\n", hd);
    tst_desc_expect(text, VERR_NOT_SUPPORTED);
    /* A sparse descriptor with a parentCID but no parentFileNameHint. */
    snprintf(text, sizeof(text),
             "# Disk DescriptorFile\nCID=1\nparentCID=12345678\ncreateType=\"twoGbMaxExtentSparse\"\n"
             "RW 8195 SPARSE \"split-s001.vmdk\"\n");
    tst_desc_expect(text, VERR_BAD_FORMAT);
    snprintf(text, sizeof(text),
             "# Disk DescriptorFile\nCID=zz\ncreateType=\"monolithicFlat\"\n"
             "RW 8195 FLAT \"flat-flat.vmdk\"\n");
    tst_desc_expect(text, VERR_BAD_FORMAT);
    /* A sparse extent claiming more sectors than its header's capacity. */
    snprintf(text, sizeof(text), "%screateType=\"twoGbMaxExtentSparse\"\nRW 9000 SPARSE \"split-s001.vmdk\"\n", hd);
    tst_desc_expect(text, VERR_BAD_FORMAT);
    /* An extent that is a folder. */
    snprintf(text, sizeof(text), "%screateType=\"monolithicFlat\"\nRW 1 FLAT \"%s\"\n", hd, g_dir);
    tst_desc_expect(text, VERR_BAD_FORMAT);
    /* The most extents a descriptor may list, plus one. */
    size_t at = (size_t)snprintf(text, sizeof(text), "%screateType=\"monolithicFlat\"\n", hd);
    char *big = malloc(64 * 1024);
    assert_non_null(big);
    memcpy(big, text, at);
    for (unsigned i = 0; i <= VMDK_MAX_EXTENTS; i++)
        at += (size_t)snprintf(big + at, 64 * 1024 - at, "RW 1 ZERO\n");
    tst_desc_expect(big, VERR_NOT_SUPPORTED);
    free(big);

    /* Still fine: the valid descriptor these were made from, with comments and CRLFs. */
    snprintf(text, sizeof(text), "%s# note\r\ncreateType = monolithicFlat\r\nRW 8195 FLAT \"flat-flat.vmdk\" 0\r\n",
             hd);
    tst_desc_expect(text, 0);
}

static void test_probe_and_create(void **state)
{
    /* Text that is not a descriptor stays raw; a descriptor without its signature line is still found. */
    const char *path = harness_path(g_dir, "notes.txt");
    const char *notes = "hello, this is not a disk\n";
    harness_file_write(path, notes, strlen(notes));
    struct blk_image *img;
    assert_int_equal(blk_open(path, BLK_FMT_AUTO, BLK_OPEN_READONLY, &img), 0);
    assert_int_equal(blk_format(img), BLK_FMT_RAW);
    blk_close(img);
    const char *desc = "createType=\"monolithicFlat\"\nRW 8195 FLAT \"flat-flat.vmdk\"\n";
    harness_file_write(harness_path(g_dir, "nosig.vmdk"), desc, strlen(desc));
    tst_open_ok(harness_path(g_dir, "nosig.vmdk"), BLK_OPEN_READONLY, &img);
    tst_check_content(img, g_pattern);
    blk_close(img);

    struct blk_create_params p = {.format = BLK_FMT_VMDK, .size_bytes = 1024 * 1024};
    assert_int_equal(blk_create(harness_path(g_dir, "new.vmdk"), &p), VERR_NOT_SUPPORTED);
    assert_false(rt_path_exists(harness_path(g_dir, "new.vmdk")));
}

/* Random byte edits in the metadata of each kind of image: every open, read and check ends cleanly. */
static void test_random_corruption(void **state)
{
    static const char *const srcs[] = {"sparse.vmdk", "stream.vmdk", "vmware-stream.vmdk"};
    char path[256], src[256];
    rt_strlcpy(path, harness_path(g_dir, "fuzzed.vmdk"), sizeof(path));
    uint32_t seed = 12345;
    uint8_t *buf = malloc(TST_GRAIN * 2);
    assert_non_null(buf);
    unsigned opened = 0, refused = 0;
    for (size_t s = 0; s < RT_ARRAY_SIZE(srcs); s++) {
        rt_strlcpy(src, harness_path(g_dir, srcs[s]), sizeof(src));
        if (s == 2)
            tst_build_vmware_stream(src, FLAW_NONE);
        struct stat st;
        assert_int_equal(stat(src, &st), 0);
        for (unsigned round = 0; round < 60; round++) {
            harness_file_copy(src, path);
            for (unsigned k = 0; k < 4; k++) {
                seed = seed * 1103515245u + 12345u;
                /* Mostly the first 16 KiB (header, descriptor, directories, tables), sometimes anywhere. */
                uint64_t off = (seed >> 8) % (k == 3 ? (uint64_t)st.st_size : 16384u);
                uint8_t b = (uint8_t)(seed >> 3);
                harness_file_poke(path, off, &b, 1);
            }
            struct blk_image *img;
            int rc = blk_open(path, BLK_FMT_VMDK, BLK_OPEN_READONLY | BLK_OPEN_NO_BACKING, &img);
            if (rc < 0) {
                assert_true(rc == VERR_BAD_FORMAT || rc == VERR_NOT_SUPPORTED || rc == VERR_TRUNCATED ||
                            rc == VERR_FILE_NOT_FOUND);
                refused++;
                continue;
            }
            opened++;
            uint64_t size = blk_size_bytes(img);
            for (unsigned r = 0; r < 8; r++) {
                uint64_t at = size / 8 * r;
                size_t n = (size_t)RT_MIN((uint64_t)TST_GRAIN * 2, size - at);
                rc = blk_read(img, at, buf, n);
                assert_true(rc == 0 || rc == VERR_BAD_FORMAT || rc == VERR_TRUNCATED);
            }
            bool alloc;
            uint64_t n;
            rc = blk_block_status(img, 0, size, &alloc, &n);
            assert_true(rc == 0 || rc == VERR_BAD_FORMAT || rc == VERR_TRUNCATED);
            blk_close(img);
            struct blk_check_result res;
            rc = blk_check(path, BLK_FMT_VMDK, false, &res);
            assert_true(rc == 0 || rc == VERR_BAD_FORMAT || rc == VERR_TRUNCATED || rc == VERR_NOT_SUPPORTED);
        }
    }
    /* Both outcomes happen, or the edits never reached what matters. */
    assert_true(opened > 0);
    assert_true(refused > 0);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_monolithic_sparse),
        cmocka_unit_test(test_stream_optimized),
        cmocka_unit_test(test_monolithic_flat),
        cmocka_unit_test(test_split_sparse),
        cmocka_unit_test(test_multi_extent_descriptor),
        cmocka_unit_test(test_zero_grain_and_chain),
        cmocka_unit_test(test_missing_parent),
        cmocka_unit_test(test_vmware_stream_footer),
        cmocka_unit_test(test_stream_hostile),
        cmocka_unit_test(test_sparse_hostile_header),
        cmocka_unit_test(test_sparse_hostile_tables),
        cmocka_unit_test(test_sparse_hostile_repeats),
        cmocka_unit_test(test_descriptor_hostile),
        cmocka_unit_test(test_probe_and_create),
        cmocka_unit_test(test_random_corruption),
    };
    return cmocka_run_group_tests(tests, tst_setup, tst_teardown);
}
