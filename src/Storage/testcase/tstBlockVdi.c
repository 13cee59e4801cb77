/* tstBlockVdi.c - VDI image format tests: dynamic, fixed and differencing images, resize, discard, check and
 * repair, hostile headers, and interoperation with qemu-img. */
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

#include "harness.h"
#include "vireo/block.h"
#include "vireo/err.h"
#include "vireo/rt.h"

#define MIB (1024u * 1024u)

/* Header field offsets of VDI 1.1 (the format's published layout). */
#define OFF_SIGNATURE   0x040
#define OFF_VERSION     0x044
#define OFF_HEADER_SIZE 0x048
#define OFF_TYPE        0x04c
#define OFF_COMMENT     0x054
#define OFF_MAP         0x154
#define OFF_DATA        0x158
#define OFF_DISK_SIZE   0x170
#define OFF_BLOCK_SIZE  0x178
#define OFF_BLOCKS      0x180
#define OFF_ALLOCATED   0x184
#define OFF_UUID_LINK   0x1a8

struct fixture {
    char dir[64];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_int_equal(harness_dir_create("tstBlockVdi", f->dir, sizeof(f->dir)), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    harness_dir_remove(f->dir);
    free(f);
    return 0;
}

/* ---- Helpers ------------------------------------------------------------------------- */

static void fill_pattern(uint8_t *buf, size_t len, uint64_t offset, unsigned seed)
{
    for (size_t i = 0; i < len; i++) {
        uint64_t x = (offset + i) * 2654435761u + seed * 40503u;
        buf[i] = (uint8_t)(x >> 13 ^ x >> 5);
    }
}

/* Writes a pattern at offset into img and into the shadow copy. */
static void put(struct blk_image *img, uint8_t *shadow, uint64_t offset, size_t len, unsigned seed)
{
    uint8_t *buf = malloc(len);
    fill_pattern(buf, len, offset, seed);
    assert_int_equal(blk_write(img, offset, buf, len), 0);
    if (shadow)
        memcpy(shadow + offset, buf, len);
    free(buf);
}

static void expect_byte(struct blk_image *img, uint64_t offset, size_t len, uint8_t value)
{
    uint8_t *buf = malloc(len);
    assert_int_equal(blk_read(img, offset, buf, len), 0);
    for (size_t i = 0; i < len; i++)
        if (buf[i] != value)
            fail_msg("byte at %llu is 0x%02x, expected 0x%02x", (unsigned long long)(offset + i), buf[i], value);
    free(buf);
}

/* ---- Dynamic and fixed images ---------------------------------------------------------------- */

static void rw_roundtrip(const struct fixture *f, bool fixed)
{
    const uint64_t size = 5 * MIB + 512 * 3; /* the last block is partial */
    const char *path = harness_path(f->dir, fixed ? "fixed.vdi" : "dynamic.vdi");
    harness_image_create(path, BLK_FMT_VDI, size, fixed, NULL);
    if (fixed)
        assert_true(harness_file_size(path) >= 6ull * MIB);
    else
        assert_true(harness_file_size(path) <= 2 * MIB);

    uint8_t *shadow = calloc(1, size);
    struct blk_image *img = harness_image_open(path, 0);
    assert_int_equal(blk_size_bytes(img), size);
    struct blk_info info;
    assert_int_equal(blk_get_info(img, &info), 0);
    assert_int_equal(info.format, BLK_FMT_VDI);
    assert_string_equal(info.variant, fixed ? "fixed" : "dynamic");
    assert_false(rt_uuid_is_null(&info.uuid));
    assert_true(rt_uuid_is_null(&info.parent_uuid));
    harness_image_expect(img, 0, shadow, size); /* a new image reads as zeroes */

    put(img, shadow, 1, 100, 1);                 /* odd start inside block 0 */
    put(img, shadow, MIB - 7, 4096 + 13, 2);     /* spans blocks 0 and 1 */
    put(img, shadow, 3 * MIB - 1, 2 * MIB + 2, 3); /* spans blocks 2, 3, 4 and into 5 */
    put(img, shadow, size - 5, 5, 4);            /* the disk's last bytes */
    uint8_t zero[300] = {0};
    assert_int_equal(blk_write(img, MIB + 1000, zero, sizeof(zero)), 0); /* zeroes into a used block */
    memset(shadow + MIB + 1000, 0, sizeof(zero));
    harness_image_expect(img, 0, shadow, size);
    uint8_t b;
    assert_int_equal(blk_read(img, size - 1, &b, 2), VERR_OUT_OF_RANGE);
    assert_int_equal(blk_write(img, size, &b, 1), VERR_OUT_OF_RANGE);
    assert_int_equal(blk_flush(img), 0);
    blk_close(img);

    img = harness_image_open(path, BLK_OPEN_READONLY);
    harness_image_expect(img, 0, shadow, size);
    assert_int_equal(blk_write(img, 0, &b, 1), VERR_ACCESS_DENIED);
    blk_close(img);
    harness_image_check_clean(path, BLK_FMT_VDI);
    free(shadow);
}

static void test_dynamic_rw(void **state)
{
    rw_roundtrip(*state, false);
}

static void test_fixed_rw(void **state)
{
    rw_roundtrip(*state, true);
}

static void test_dynamic_sparse(void **state)
{
    struct fixture *f = *state;
    const char *path = harness_path(f->dir, "sparse.vdi");
    harness_image_create(path, BLK_FMT_VDI, 8 * MIB, false, NULL);
    uint64_t empty = harness_file_size(path);
    struct blk_image *img = harness_image_open(path, 0);
    /* All-zero writes to unallocated blocks allocate nothing. */
    uint8_t *zero = calloc(1, MIB);
    assert_int_equal(blk_write(img, 2 * MIB, zero, MIB), 0);
    assert_int_equal(blk_write(img, 100, zero, 1000), 0);
    assert_int_equal(harness_file_size(path), empty);
    bool alloc;
    uint64_t pnum;
    assert_int_equal(blk_block_status(img, 0, 8 * MIB, &alloc, &pnum), 0);
    assert_false(alloc);
    assert_int_equal(pnum, 8 * MIB);
    /* One byte allocates exactly one block. */
    uint8_t one = 0xab;
    assert_int_equal(blk_write(img, 5 * MIB + 17, &one, 1), 0);
    assert_int_equal(harness_file_size(path), empty + MIB);
    assert_int_equal(blk_block_status(img, 0, 8 * MIB, &alloc, &pnum), 0);
    assert_false(alloc);
    assert_int_equal(pnum, 5 * MIB);
    assert_int_equal(blk_block_status(img, 5 * MIB + 3, 8 * MIB - 5 * MIB - 3, &alloc, &pnum), 0);
    assert_true(alloc);
    assert_int_equal(pnum, MIB - 3);
    assert_int_equal(harness_file_peek_le32(path, OFF_ALLOCATED), 1);
    blk_close(img);
    free(zero);
    harness_image_check_clean(path, BLK_FMT_VDI);
}

/* ---- Differencing images ------------------------------------------------------------------------- */

static void diff_chain(const struct fixture *f, bool raw_parent)
{
    const uint64_t size = 4 * MIB;
    const char *parent = harness_path(f->dir, raw_parent ? "base.raw" : "base.vdi");
    const char *child = harness_path(f->dir, "child.vdi");
    uint8_t *shadow = malloc(size);
    if (raw_parent) {
        struct blk_create_params p = {.format = BLK_FMT_RAW, .size_bytes = size};
        assert_int_equal(blk_create(parent, &p), 0);
    } else {
        harness_image_create(parent, BLK_FMT_VDI, size, false, NULL);
    }
    struct blk_image *img = harness_image_open(parent, 0);
    fill_pattern(shadow, size, 0, 7);
    assert_int_equal(blk_write(img, 0, shadow, size), 0);
    blk_close(img);
    uint8_t *parent_copy = malloc(size);
    memcpy(parent_copy, shadow, size);

    harness_image_create(child, BLK_FMT_VDI, 0, false,
                         raw_parent ? "base.raw" : "base.vdi"); /* relative, size from the parent */
    img = harness_image_open(child, 0);
    assert_int_equal(blk_size_bytes(img), size);
    assert_non_null(blk_backing(img));
    struct blk_info info, pinfo;
    assert_int_equal(blk_get_info(img, &info), 0);
    assert_string_equal(info.variant, "differencing");
    if (raw_parent) {
        assert_true(rt_uuid_is_null(&info.parent_uuid));
    } else {
        assert_int_equal(blk_get_info(blk_backing(img), &pinfo), 0);
        assert_memory_equal(info.parent_uuid.bytes, pinfo.uuid.bytes, 16);
    }
    harness_image_expect(img, 0, shadow, size); /* everything falls through */

    put(img, shadow, MIB - 10, 30, 8);      /* partial writes keep the parent's bytes around them */
    put(img, shadow, 2 * MIB + 5, 7, 9);
    uint8_t *zero = calloc(1, MIB);
    assert_int_equal(blk_write(img, 3 * MIB, zero, MIB), 0); /* a zero block hides the parent */
    memset(shadow + 3 * MIB, 0, MIB);
    assert_int_equal(blk_write_zeroes(img, 100, 200), 0);   /* partial: written as zero bytes */
    memset(shadow + 100, 0, 200);
    harness_image_expect(img, 0, shadow, size);
    bool alloc;
    uint64_t pnum;
    assert_int_equal(blk_block_status(img, 3 * MIB, MIB, &alloc, &pnum), 0);
    assert_true(alloc); /* held here, so commit and convert copy the zeroes */
    blk_close(img);

    img = harness_image_open(child, BLK_OPEN_READONLY);
    harness_image_expect(img, 0, shadow, size);
    blk_close(img);
    img = harness_image_open(parent, BLK_OPEN_READONLY); /* the parent is untouched */
    harness_image_expect(img, 0, parent_copy, size);
    blk_close(img);
    harness_image_check_clean(child, BLK_FMT_VDI);
    free(zero);
    free(parent_copy);
    free(shadow);
}

static void test_diff_over_vdi(void **state)
{
    diff_chain(*state, false);
}

static void test_diff_over_raw(void **state)
{
    diff_chain(*state, true);
}

static void test_diff_parent_changed(void **state)
{
    struct fixture *f = *state;
    harness_image_create(harness_path(f->dir, "p.vdi"), BLK_FMT_VDI, 2 * MIB, false, NULL);
    harness_image_create(harness_path(f->dir, "c.vdi"), BLK_FMT_VDI, 0, false, "p.vdi");
    struct blk_image *img = harness_image_open(harness_path(f->dir, "c.vdi"), 0);
    blk_close(img);
    /* Another image under the parent's name: refused, as is a child with no parent UUID. */
    assert_int_equal(unlink(harness_path(f->dir, "p.vdi")), 0);
    harness_image_create(harness_path(f->dir, "p.vdi"), BLK_FMT_VDI, 2 * MIB, false, NULL);
    img = NULL;
    assert_int_equal(blk_open(harness_path(f->dir, "c.vdi"), BLK_FMT_AUTO, 0, &img), VERR_BAD_FORMAT);
    assert_null(img);
    assert_int_equal(blk_open(harness_path(f->dir, "c.vdi"), BLK_FMT_AUTO, BLK_OPEN_NO_BACKING, &img), 0);
    blk_close(img);
    uint8_t zero16[16] = {0};
    harness_file_poke(harness_path(f->dir, "c.vdi"), OFF_UUID_LINK, zero16, 16);
    assert_int_equal(blk_open(harness_path(f->dir, "c.vdi"), BLK_FMT_AUTO, 0, &img), VERR_BAD_FORMAT);
    assert_null(img);
}

static void test_diff_parent_unknown(void **state)
{
    struct fixture *f = *state;
    const char *child = harness_path(f->dir, "orphan.vdi");
    harness_image_create(harness_path(f->dir, "p.vdi"), BLK_FMT_VDI, 2 * MIB, false, NULL);
    harness_image_create(child, BLK_FMT_VDI, 0, false, "p.vdi");
    /* As VirtualBox writes it: no path in the comment. */
    uint8_t comment[256] = "Made by VirtualBox";
    harness_file_poke(child, OFF_COMMENT, comment, sizeof(comment));
    struct blk_image *img = NULL;
    assert_int_equal(blk_open(child, BLK_FMT_AUTO, 0, &img), VERR_NOT_FOUND);
    assert_null(img);
    img = harness_image_open(child, BLK_OPEN_NO_BACKING | BLK_OPEN_READONLY);
    assert_null(blk_backing(img));
    expect_byte(img, 0, 4096, 0);
    blk_close(img);
    harness_image_check_clean(child, BLK_FMT_VDI);
    /* A garbled stored parent is a format error naming the comment. */
    uint8_t bad[256] = "vireo-parent:nosuchformat:p.vdi";
    harness_file_poke(child, OFF_COMMENT, bad, sizeof(bad));
    assert_int_equal(blk_open(child, BLK_FMT_AUTO, 0, &img), VERR_BAD_FORMAT);
    uint8_t unterminated[256];
    memset(unterminated, 'x', sizeof(unterminated));
    memcpy(unterminated, "vireo-parent:vdi:", 17);
    harness_file_poke(child, OFF_COMMENT, unterminated, sizeof(unterminated));
    assert_int_equal(blk_open(child, BLK_FMT_AUTO, 0, &img), VERR_BAD_FORMAT);
}

static void test_diff_without_parent_write(void **state)
{
    struct fixture *f = *state;
    harness_image_create(harness_path(f->dir, "p.vdi"), BLK_FMT_VDI, 2 * MIB, false, NULL);
    harness_image_create(harness_path(f->dir, "c.vdi"), BLK_FMT_VDI, 0, false, "p.vdi");
    struct blk_image *img = harness_image_open(harness_path(f->dir, "c.vdi"), BLK_OPEN_NO_BACKING);
    uint8_t b = 1;
    /* A partial block would need the parent's bytes it does not have. */
    assert_int_equal(blk_write(img, 10, &b, 1), VERR_INVALID_STATE);
    blk_close(img);
    harness_image_check_clean(harness_path(f->dir, "c.vdi"), BLK_FMT_VDI);
}

static void test_diff_long_parent_path(void **state)
{
    struct fixture *f = *state;
    /* A parent path that does not fit the 256-byte comment field is refused, and nothing is left. */
    char dir[241];
    memset(dir, 'd', sizeof(dir) - 1);
    dir[sizeof(dir) - 1] = '\0';
    assert_int_equal(mkdir(harness_path(f->dir, dir), 0700), 0);
    char name[256];
    snprintf(name, sizeof(name), "%s/base.raw", dir);
    struct blk_create_params p = {.format = BLK_FMT_RAW, .size_bytes = MIB};
    assert_int_equal(blk_create(harness_path(f->dir, name), &p), 0);
    struct blk_create_params c = {.format = BLK_FMT_VDI, .backing_path = name};
    assert_int_equal(blk_create(harness_path(f->dir, "c.vdi"), &c), VERR_TOO_LARGE);
    assert_int_equal(access(harness_path(f->dir, "c.vdi"), F_OK), -1);
    /* A shorter one is stored as given and found relative to the child's folder. */
    assert_int_equal(rename(harness_path(f->dir, dir), harness_path(f->dir, "sub")), 0);
    c.backing_path = "sub/base.raw";
    assert_int_equal(blk_create(harness_path(f->dir, "c.vdi"), &c), 0);
    struct blk_image *img = harness_image_open(harness_path(f->dir, "c.vdi"), 0);
    struct blk_info info;
    assert_int_equal(blk_get_info(img, &info), 0);
    assert_string_equal(info.backing_path, harness_path(f->dir, "sub/base.raw"));
    blk_close(img);
    char comment[256];
    int fd = open(harness_path(f->dir, "c.vdi"), O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, comment, sizeof(comment), OFF_COMMENT), (ssize_t)sizeof(comment));
    close(fd);
    assert_string_equal(comment, "vireo-parent:raw:sub/base.raw");
}

/* ---- Resize and discard --------------------------------------------------------------------------- */

static void test_resize(void **state)
{
    struct fixture *f = *state;
    const uint64_t size = 3 * MIB + 1024;
    const uint64_t big = 9 * MIB + 512;
    const char *path = harness_path(f->dir, "grow.vdi");
    const char *fixed = harness_path(f->dir, "growfixed.vdi");
    for (int pass = 0; pass < 2; pass++) {
        const char *p = pass ? fixed : path;
        harness_image_create(p, BLK_FMT_VDI, size, pass == 1, NULL);
        uint8_t *shadow = calloc(1, big);
        struct blk_image *img = harness_image_open(p, 0);
        put(img, shadow, 0, size, 11);
        assert_int_equal(blk_resize(img, size - 512), VERR_NOT_SUPPORTED);
        assert_int_equal(blk_resize(img, big), 0);
        assert_int_equal(blk_size_bytes(img), big);
        harness_image_expect(img, 0, shadow, big); /* the new range reads as zeroes */
        put(img, shadow, big - 3000, 3000, 12);
        blk_close(img);
        img = harness_image_open(p, 0);
        assert_int_equal(blk_size_bytes(img), big);
        harness_image_expect(img, 0, shadow, big);
        blk_close(img);
        harness_image_check_clean(p, BLK_FMT_VDI);
        assert_int_equal(harness_file_peek_le32(p, OFF_BLOCKS), 10);
        free(shadow);
    }
    assert_int_equal(harness_file_peek_le32(fixed, OFF_ALLOCATED), 10);
}

/* A qemu-img image has its data right after a 512-byte map: growing moves the map. */
static void test_resize_moves_map(void **state)
{
    struct fixture *f = *state;
    harness_need_qemu();
    const char *path = harness_path(f->dir, "q.vdi");
    const char *raw = harness_path(f->dir, "q.raw");
    assert_int_equal(harness_sh("qemu-img create -q -f vdi '%s' 4M", path), 0);
    assert_int_equal(harness_sh("qemu-io -c 'write -P 0x5a 0 1M' -c 'write -P 0x33 3M 1M' '%s' >/dev/null", path), 0);
    uint32_t old_map = harness_file_peek_le32(path, OFF_MAP), old_data = harness_file_peek_le32(path, OFF_DATA);
    assert_true(old_data - old_map < 4096);
    const uint64_t big = 2048ull * MIB; /* 2048 map entries: more than the 128 that fit */
    struct blk_image *img = harness_image_open(path, 0);
    assert_int_equal(blk_resize(img, big), 0);
    expect_byte(img, 0, MIB, 0x5a);
    expect_byte(img, MIB, 2 * MIB, 0);
    expect_byte(img, 3 * MIB, MIB, 0x33);
    expect_byte(img, 4 * MIB, MIB, 0);
    expect_byte(img, big - MIB, MIB, 0);
    put(img, NULL, big - 4096, 4096, 13);
    blk_close(img);
    assert_int_equal(harness_file_peek_le32(path, OFF_MAP), old_data);
    harness_image_check_clean(path, BLK_FMT_VDI);
    assert_int_equal(harness_sh("qemu-img check -q '%s'", path), 0);
    /* qemu-img sees the same disk as a raw file written the same way. */
    assert_int_equal(harness_sh("qemu-img create -q -f raw '%s' 2G", raw), 0);
    assert_int_equal(harness_sh("qemu-io -f raw -c 'write -P 0x5a 0 1M' -c 'write -P 0x33 3M 1M' '%s' >/dev/null", raw),
                     0);
    img = harness_image_open(raw, 0);
    put(img, NULL, big - 4096, 4096, 13);
    blk_close(img);
    assert_int_equal(harness_sh("qemu-img compare -q -f vdi -F raw '%s' '%s'", path, raw), 0);
}

/* Static qemu images have no free block to make room for a bigger map: refused, nothing lost. */
static void test_resize_refused_when_full(void **state)
{
    struct fixture *f = *state;
    harness_need_qemu();
    const char *path = harness_path(f->dir, "qfixed.vdi");
    assert_int_equal(harness_sh("qemu-img create -q -f vdi -o static=on '%s' 3M", path), 0);
    assert_int_equal(harness_sh("qemu-io -c 'write -P 0x5a 0 3M' '%s' >/dev/null", path), 0);
    struct blk_image *img = harness_image_open(path, 0);
    assert_int_equal(blk_resize(img, 1024ull * MIB), VERR_NOT_SUPPORTED);
    assert_int_equal(blk_size_bytes(img), 3 * MIB);
    expect_byte(img, 0, 3 * MIB, 0x5a);
    blk_close(img);
    harness_image_check_clean(path, BLK_FMT_VDI);
    assert_int_equal(harness_sh("qemu-img check -q '%s'", path), 0);
}

/* Block sizes other than 1 MiB, with and without extra block data, built by editing a new image. */
static void small_blocks(const struct fixture *f, uint32_t extra)
{
    const uint64_t size = 4 * MIB;
    const uint32_t blocks = (uint32_t)(size / 512);
    const char *path = harness_path(f->dir, extra ? "small-extra.vdi" : "small.vdi");
    harness_image_create(path, BLK_FMT_VDI, size, false, NULL);
    uint32_t map = harness_file_peek_le32(path, OFF_MAP);
    uint8_t *ff = malloc(blocks * 4);
    memset(ff, 0xff, blocks * 4);
    harness_file_poke(path, map, ff, blocks * 4);
    free(ff);
    harness_file_poke_le32(path, OFF_BLOCK_SIZE, 512);
    harness_file_poke_le32(path, OFF_BLOCK_SIZE + 4, extra);
    harness_file_poke_le32(path, OFF_BLOCKS, blocks);

    uint8_t *shadow = calloc(1, size);
    struct blk_image *img = harness_image_open(path, 0);
    srand(99 + extra);
    for (int i = 0; i < 60; i++) {
        uint64_t off = (uint64_t)rand() % (size - 4096);
        put(img, shadow, off, 1 + (size_t)(rand() % 3000), 40 + (unsigned)i);
    }
    harness_image_expect(img, 0, shadow, size);
    blk_close(img);
    harness_image_check_clean(path, BLK_FMT_VDI);

    /* 256 MiB of 512-byte blocks needs a 2 MiB map: the first data blocks move out of its way. */
    const uint64_t big = 256ull * MIB;
    img = harness_image_open(path, 0);
    assert_int_equal(blk_resize(img, big), 0);
    harness_image_expect(img, 0, shadow, size);
    expect_byte(img, size, MIB, 0);
    expect_byte(img, big - MIB, MIB, 0);
    uint8_t tail[1000];
    fill_pattern(tail, sizeof(tail), big - sizeof(tail), 77);
    assert_int_equal(blk_write(img, big - sizeof(tail), tail, sizeof(tail)), 0);
    blk_close(img);
    assert_true(harness_file_peek_le32(path, OFF_MAP) != map);
    harness_image_check_clean(path, BLK_FMT_VDI);
    img = harness_image_open(path, 0);
    harness_image_expect(img, 0, shadow, size);
    uint8_t back[1000];
    assert_int_equal(blk_read(img, big - sizeof(back), back, sizeof(back)), 0);
    assert_memory_equal(back, tail, sizeof(tail));
    /* Discard a stretch, repair compacts the holes, the rest stays. */
    assert_int_equal(blk_discard(img, MIB, MIB), 0);
    memset(shadow + MIB, 0, MIB);
    blk_close(img);
    struct blk_check_result res;
    assert_int_equal(blk_check(path, BLK_FMT_VDI, true, &res), 0);
    assert_int_equal(res.errors, 0);
    assert_true(res.repaired > 0);
    harness_image_check_clean(path, BLK_FMT_VDI);
    img = harness_image_open(path, BLK_OPEN_READONLY);
    harness_image_expect(img, 0, shadow, size);
    assert_int_equal(blk_read(img, big - sizeof(back), back, sizeof(back)), 0);
    assert_memory_equal(back, tail, sizeof(tail));
    blk_close(img);
    free(shadow);
}

static void test_small_blocks(void **state)
{
    small_blocks(*state, 0);
}

static void test_small_blocks_extra(void **state)
{
    small_blocks(*state, 512);
}

static void test_resize_diff(void **state)
{
    struct fixture *f = *state;
    /* A parent bigger than its child: the child's new range must not show the parent. */
    harness_image_create(harness_path(f->dir, "p.vdi"), BLK_FMT_VDI, 4 * MIB, false, NULL);
    struct blk_image *img = harness_image_open(harness_path(f->dir, "p.vdi"), 0);
    put(img, NULL, 0, 4 * MIB, 14);
    blk_close(img);
    struct blk_create_params c = {.format = BLK_FMT_VDI, .size_bytes = MIB + 512, .backing_path = "p.vdi"};
    assert_int_equal(blk_create(harness_path(f->dir, "c.vdi"), &c), 0);
    img = harness_image_open(harness_path(f->dir, "c.vdi"), 0);
    uint8_t *expect = malloc(MIB + 512);
    fill_pattern(expect, MIB + 512, 0, 14);
    assert_int_equal(blk_resize(img, 4 * MIB), 0);
    uint8_t *buf = malloc(4 * MIB);
    assert_int_equal(blk_read(img, 0, buf, 4 * MIB), 0);
    assert_memory_equal(buf, expect, MIB + 512);
    for (size_t i = MIB + 512; i < 4 * MIB; i++)
        if (buf[i])
            fail_msg("byte %zu shows the parent after the resize", i);
    blk_close(img);
    harness_image_check_clean(harness_path(f->dir, "c.vdi"), BLK_FMT_VDI);
    free(buf);
    free(expect);
}

static void test_discard_and_repair(void **state)
{
    struct fixture *f = *state;
    harness_need_qemu();
    const uint64_t size = 6 * MIB;
    const char *path = harness_path(f->dir, "d.vdi");
    harness_image_create(path, BLK_FMT_VDI, size, false, NULL);
    uint8_t *shadow = calloc(1, size);
    struct blk_image *img = harness_image_open(path, 0);
    put(img, shadow, 0, size, 15);
    /* Only whole blocks go: block 1 and 2 of [MIB - 1, 3 MiB + 1). */
    assert_int_equal(blk_discard(img, MIB - 1, 2 * MIB + 2), 0);
    memset(shadow + MIB, 0, 2 * MIB);
    assert_int_equal(blk_write_zeroes(img, 5 * MIB - 100, MIB + 100), 0); /* partial, then block 5 */
    memset(shadow + 5 * MIB - 100, 0, MIB + 100);
    harness_image_expect(img, 0, shadow, size);
    bool alloc;
    uint64_t pnum;
    assert_int_equal(blk_block_status(img, MIB, size - MIB, &alloc, &pnum), 0);
    assert_false(alloc);
    assert_int_equal(pnum, 2 * MIB);
    blk_close(img);

    struct blk_check_result res;
    assert_int_equal(blk_check(path, BLK_FMT_VDI, false, &res), 0);
    assert_int_equal(res.errors, 0);
    assert_int_equal(res.leaks, 3); /* three unused data blocks */
    assert_int_equal(blk_check(path, BLK_FMT_VDI, true, &res), 0);
    assert_int_equal(res.errors, 0);
    assert_true(res.repaired >= 3);
    harness_image_check_clean(path, BLK_FMT_VDI);
    assert_int_equal(harness_file_peek_le32(path, OFF_ALLOCATED), 3);
    assert_int_equal(harness_file_size(path), harness_file_peek_le32(path, OFF_DATA) + 3ull * MIB);
    img = harness_image_open(path, 0);
    harness_image_expect(img, 0, shadow, size);
    put(img, shadow, 2 * MIB + 3, 10, 16); /* reallocates after the compaction */
    harness_image_expect(img, 0, shadow, size);
    blk_close(img);
    harness_image_check_clean(path, BLK_FMT_VDI);
    assert_int_equal(harness_sh("qemu-img check -q '%s'", path), 0);
    free(shadow);
}

/* Every slot used once and some discarded: new blocks reuse the holes. */
static void test_hole_reuse(void **state)
{
    struct fixture *f = *state;
    const uint64_t size = 4 * MIB;
    const char *path = harness_path(f->dir, "h.vdi");
    harness_image_create(path, BLK_FMT_VDI, size, false, NULL);
    uint8_t *shadow = calloc(1, size);
    struct blk_image *img = harness_image_open(path, 0);
    put(img, shadow, 0, size, 17);
    assert_int_equal(blk_discard(img, 0, 2 * MIB), 0);
    memset(shadow, 0, 2 * MIB);
    uint64_t before = harness_file_size(path);
    put(img, shadow, 10, 10, 18);
    put(img, shadow, MIB + 10, 10, 19);
    assert_int_equal(harness_file_size(path), before);
    harness_image_expect(img, 0, shadow, size);
    blk_close(img);
    harness_image_check_clean(path, BLK_FMT_VDI);
    free(shadow);
}

static void test_fixed_discard_keeps_blocks(void **state)
{
    struct fixture *f = *state;
    const char *path = harness_path(f->dir, "fd.vdi");
    harness_image_create(path, BLK_FMT_VDI, 2 * MIB, true, NULL);
    struct blk_image *img = harness_image_open(path, 0);
    put(img, NULL, 0, 2 * MIB, 20);
    assert_int_equal(blk_discard(img, 0, 2 * MIB), 0);
    assert_int_equal(blk_write_zeroes(img, 0, MIB), 0);
    expect_byte(img, 0, MIB, 0);
    bool alloc;
    uint64_t pnum;
    assert_int_equal(blk_block_status(img, 0, 2 * MIB, &alloc, &pnum), 0);
    assert_true(alloc);
    assert_int_equal(pnum, 2 * MIB);
    blk_close(img);
    assert_int_equal(harness_file_peek_le32(path, OFF_ALLOCATED), 2);
    harness_image_check_clean(path, BLK_FMT_VDI);
}

/* ---- Crash leftovers, check and repair ------------------------------------------------------------------ */

static void test_check_leak_and_stale_count(void **state)
{
    struct fixture *f = *state;
    const char *path = harness_path(f->dir, "crash.vdi");
    harness_image_create(path, BLK_FMT_VDI, 4 * MIB, false, NULL);
    uint8_t *shadow = calloc(1, 4 * MIB);
    struct blk_image *img = harness_image_open(path, 0);
    put(img, shadow, 0, 10, 21);
    put(img, shadow, 2 * MIB, 10, 22);
    blk_close(img);
    /* Killed after a data block was appended but before its map entry: a leak. */
    uint64_t end = harness_file_size(path);
    assert_int_equal(truncate(path, (off_t)(end + MIB)), 0);
    struct blk_check_result res;
    assert_int_equal(blk_check(path, BLK_FMT_VDI, false, &res), 0);
    assert_int_equal(res.errors, 0);
    assert_int_equal(res.leaks, 1);
    assert_true(strstr(res.first_problem, "after the last data block") != NULL);
    /* Killed after the map entry but before the count: it opens, check calls it an error. */
    harness_file_poke_le32(path, OFF_ALLOCATED, 1);
    img = harness_image_open(path, 0);
    harness_image_expect(img, 0, shadow, 4 * MIB);
    blk_close(img);
    assert_int_equal(blk_check(path, BLK_FMT_VDI, false, &res), 0);
    assert_int_equal(res.errors, 1);
    assert_int_equal(blk_check(path, BLK_FMT_VDI, true, &res), 0);
    assert_int_equal(res.errors, 0);
    assert_int_equal(res.repaired, 2);
    harness_image_check_clean(path, BLK_FMT_VDI);
    assert_int_equal(harness_file_size(path), end);
    assert_int_equal(harness_file_peek_le32(path, OFF_ALLOCATED), 2);
    img = harness_image_open(path, 0);
    harness_image_expect(img, 0, shadow, 4 * MIB);
    blk_close(img);
    free(shadow);
}

/* ---- Hostile images --------------------------------------------------------------------------------------- */

/* A fresh 4-block dynamic image with blocks 0 and 2 written. */
static const char *hostile_base(const struct fixture *f, const char *name)
{
    const char *path = harness_path(f->dir, name);
    harness_image_create(path, BLK_FMT_VDI, 4 * MIB, false, NULL);
    struct blk_image *img = harness_image_open(path, 0);
    put(img, NULL, 0, 100, 23);
    put(img, NULL, 2 * MIB, 100, 24);
    blk_close(img);
    return path;
}

static void expect_bad(const char *path, unsigned flags)
{
    struct blk_image *img = NULL;
    assert_int_equal(blk_open(path, BLK_FMT_VDI, flags, &img), VERR_BAD_FORMAT);
    assert_null(img);
}

static void test_hostile_headers(void **state)
{
    struct fixture *f = *state;
    struct {
        uint64_t off;
        unsigned width; /* 4 or 8 */
        uint64_t value;
    } edits[] = {
        {OFF_SIGNATURE, 4, 0xdeadbeef},
        {OFF_VERSION, 4, 0x00010000},
        {OFF_HEADER_SIZE, 4, 0x100},
        {OFF_HEADER_SIZE, 4, 0x10000},
        {OFF_TYPE, 4, 0},
        {OFF_TYPE, 4, 7},
        {OFF_DISK_SIZE, 8, 1ull << 62},          /* huge */
        {OFF_DISK_SIZE, 8, 40 * MIB},            /* does not match the block count */
        {OFF_BLOCK_SIZE, 4, 0},
        {OFF_BLOCK_SIZE, 4, 3 * 512},            /* not a power of two */
        {OFF_BLOCK_SIZE, 4, 256},
        {OFF_BLOCK_SIZE, 4, 1u << 31},
        {OFF_BLOCKS, 4, 0xffffffff},
        {OFF_ALLOCATED, 4, 5},                   /* more than the blocks */
        {OFF_MAP, 4, 0x10},                      /* inside the header */
        {OFF_MAP, 4, 0x7fffff00},                /* past the end of the file */
        {OFF_DATA, 4, 0x200},                    /* overlaps the map */
    };
    for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
        char name[32];
        snprintf(name, sizeof(name), "hostile%zu.vdi", i);
        const char *path = hostile_base(f, name);
        if (edits[i].width == 8)
            harness_file_poke_le64(path, edits[i].off, edits[i].value);
        else
            harness_file_poke_le32(path, edits[i].off, (uint32_t)edits[i].value);
        expect_bad(path, 0);
        expect_bad(path, BLK_OPEN_READONLY | BLK_OPEN_NO_BACKING);
        struct blk_check_result res;
        assert_int_equal(blk_check(path, BLK_FMT_VDI, true, &res), VERR_BAD_FORMAT);
    }
}

static void test_hostile_map(void **state)
{
    struct fixture *f = *state;
    /* An entry past the file's end. */
    const char *path = hostile_base(f, "mapeof.vdi");
    uint32_t map = harness_file_peek_le32(path, OFF_MAP);
    harness_file_poke_le32(path, map + 4, 3);
    expect_bad(path, 0);
    /* An entry past the disk's block count. */
    path = hostile_base(f, "maprange.vdi");
    harness_file_poke_le32(path, map + 4, 4);
    expect_bad(path, BLK_OPEN_READONLY);
    /* A truncated file cuts the last data block. */
    path = hostile_base(f, "trunc.vdi");
    assert_int_equal(truncate(path, (off_t)(harness_file_size(path) - 4096)), 0);
    expect_bad(path, BLK_OPEN_READONLY);
    path = hostile_base(f, "trunc2.vdi");
    assert_int_equal(truncate(path, 0x1a0), 0);
    expect_bad(path, BLK_OPEN_READONLY);
    /* Two entries sharing a data block: writable opens refuse it, check reports it. */
    path = hostile_base(f, "dup.vdi");
    harness_file_poke_le32(path, map + 4 * 3, 0);
    expect_bad(path, 0);
    struct blk_image *img = harness_image_open(path, BLK_OPEN_READONLY);
    uint8_t a[100], b[100];
    assert_int_equal(blk_read(img, 0, a, sizeof(a)), 0);
    assert_int_equal(blk_read(img, 3 * MIB, b, sizeof(b)), 0);
    assert_memory_equal(a, b, sizeof(a));
    blk_close(img);
    struct blk_check_result res;
    assert_int_equal(blk_check(path, BLK_FMT_VDI, false, &res), 0);
    assert_int_equal(res.errors, 1);
    assert_true(strstr(res.first_problem, "block map entry 3") != NULL);
    assert_int_equal(blk_check(path, BLK_FMT_VDI, true, &res), VERR_BAD_FORMAT);
}

/* Random header and map bytes: every open fails cleanly or gives an image that reads and checks. */
static void test_hostile_random(void **state)
{
    struct fixture *f = *state;
    const char *base = hostile_base(f, "fuzzbase.vdi");
    const char *path = harness_path(f->dir, "fuzz.vdi");
    srand(1234);
    unsigned opened = 0;
    uint8_t *buf = malloc(4 * MIB);
    for (int iter = 0; iter < 300; iter++) {
        harness_file_copy(base, path);
        int edits = 1 + rand() % 4;
        for (int e = 0; e < edits; e++) {
            uint8_t v = (uint8_t)rand();
            uint64_t off = 0x40 + (uint64_t)(rand() % (0x200 + 16 - 0x40));
            harness_file_poke(path, off, &v, 1);
        }
        struct blk_image *img = NULL;
        int rc = blk_open(path, BLK_FMT_VDI, BLK_OPEN_NO_BACKING, &img);
        if (rc == 0) {
            opened++;
            uint64_t size = blk_size_bytes(img);
            uint64_t len = size < 4 * MIB ? size : 4 * MIB;
            assert_int_equal(blk_read(img, 0, buf, len), 0);
            if (size) {
                /* A differencing image opened without its parent refuses partial writes. */
                rc = blk_write(img, size - 1, buf, 1);
                assert_true(rc == 0 || rc == VERR_INVALID_STATE);
            }
            blk_close(img);
            struct blk_check_result res;
            assert_int_equal(blk_check(path, BLK_FMT_VDI, true, &res), 0);
        } else {
            assert_true(rc == VERR_BAD_FORMAT || rc == VERR_NOT_FOUND || rc == VERR_TRUNCATED);
        }
        unlink(path);
    }
    free(buf);
    assert_true(opened > 0); /* some edits (comment, UUIDs, geometry) are harmless */
}

/* ---- Rebasing (blk_set_backing) ----------------------------------------------------------------------------------- */

static void read_file_bytes(const char *path, uint8_t **out, size_t *len)
{
    void *data;
    assert_int_equal(rt_file_read_all(path, 64 * MIB, &data, len), 0);
    *out = data;
}

static void test_set_backing(void **state)
{
    const struct fixture *f = *state;
    const uint64_t size = 4 * MIB;
    char base[512], copy[512], top[512], small[512], flat[512], raw[512], over[512];
    snprintf(base, sizeof(base), "%s", harness_path(f->dir, "base.vdi"));
    snprintf(copy, sizeof(copy), "%s", harness_path(f->dir, "copy.vdi"));
    snprintf(top, sizeof(top), "%s", harness_path(f->dir, "top.vdi"));
    snprintf(small, sizeof(small), "%s", harness_path(f->dir, "small.vdi"));
    snprintf(flat, sizeof(flat), "%s", harness_path(f->dir, "flat.vdi"));
    snprintf(raw, sizeof(raw), "%s", harness_path(f->dir, "copy.raw"));
    snprintf(over, sizeof(over), "%s", harness_path(f->dir, "over.vdi"));
    uint8_t *shadow = calloc(1, size);
    harness_image_create(base, BLK_FMT_VDI, size, false, NULL);
    struct blk_image *img = harness_image_open(base, 0);
    put(img, shadow, 0, 3 * MIB, 1);
    blk_close(img);
    /* An identical copy with its own UUID (a converted copy), and the same as raw. */
    img = harness_image_open(base, BLK_OPEN_READONLY);
    struct blk_create_params cp = {.format = BLK_FMT_VDI};
    assert_int_equal(blk_convert(img, copy, &cp, NULL, NULL), 0);
    cp.format = BLK_FMT_RAW;
    assert_int_equal(blk_convert(img, raw, &cp, NULL, NULL), 0);
    blk_close(img);
    harness_image_create(top, BLK_FMT_VDI, 0, false, "base.vdi");
    img = harness_image_open(top, 0);
    put(img, shadow, MIB + 100, 5000, 2);
    put(img, shadow, 3 * MIB + 7, 70000, 3);
    blk_close(img);

    assert_int_equal(blk_set_backing(top, "copy.vdi", BLK_FMT_AUTO), 0);
    struct blk_info info, cinfo;
    img = harness_image_open(copy, BLK_OPEN_READONLY);
    assert_int_equal(blk_get_info(img, &cinfo), 0);
    blk_close(img);
    img = harness_image_open(top, BLK_OPEN_READONLY);
    assert_int_equal(blk_get_info(img, &info), 0);
    assert_string_equal(info.backing_path, copy);
    assert_int_equal(info.backing_format, BLK_FMT_VDI);
    assert_memory_equal(info.parent_uuid.bytes, cinfo.uuid.bytes, 16);
    harness_image_expect(img, 0, shadow, size);
    blk_close(img);
    harness_image_check_clean(top, BLK_FMT_VDI);
    /* The old parent can go: the chain no longer needs it. */
    assert_int_equal(unlink(base), 0);
    img = harness_image_open(top, 0);
    harness_image_expect(img, 0, shadow, size);
    blk_close(img);

    /* A parent of another format: the link UUID becomes zero, and reads still match. */
    assert_int_equal(blk_set_backing(top, raw, BLK_FMT_RAW), 0);
    img = harness_image_open(top, BLK_OPEN_READONLY);
    assert_int_equal(blk_get_info(img, &info), 0);
    assert_string_equal(info.backing_path, raw);
    assert_int_equal(info.backing_format, BLK_FMT_RAW);
    struct rt_uuid zero;
    memset(&zero, 0, sizeof(zero));
    assert_memory_equal(info.parent_uuid.bytes, zero.bytes, 16);
    harness_image_expect(img, 0, shadow, size);
    blk_close(img);

    /* Refused, the file unchanged: a parent of another size, a missing parent, the image itself, a loop
     * through its own child, a parent path too long for the comment field. */
    uint8_t *before, *after;
    size_t blen, alen;
    read_file_bytes(top, &before, &blen);
    harness_image_create(small, BLK_FMT_VDI, size - MIB, false, NULL);
    assert_int_equal(blk_set_backing(top, small, BLK_FMT_AUTO), VERR_INVALID_PARAMETER);
    assert_int_equal(blk_set_backing(top, "missing.vdi", BLK_FMT_AUTO), VERR_FILE_NOT_FOUND);
    assert_int_equal(blk_set_backing(top, top, BLK_FMT_AUTO), VERR_BAD_FORMAT);
    harness_image_create(over, BLK_FMT_VDI, 0, false, "top.vdi");
    assert_int_equal(blk_set_backing(top, "over.vdi", BLK_FMT_AUTO), VERR_BAD_FORMAT);
    /* 120 + 1 + 130 bytes: each part a valid file name, together past the comment's 238 bytes for a path. */
    char longname[256], longpath[1024];
    memset(longname, 'x', 251);
    longname[120] = '\0';
    snprintf(longpath, sizeof(longpath), "%s/%s", f->dir, longname);
    assert_int_equal(mkdir(longpath, 0700), 0);
    longname[120] = '/';
    memcpy(longname + 247, ".vdi", 5);
    snprintf(longpath, sizeof(longpath), "%s/%s", f->dir, longname);
    assert_int_equal(link(copy, longpath), 0);
    assert_int_equal(blk_set_backing(top, longname, BLK_FMT_AUTO), VERR_TOO_LARGE);
    read_file_bytes(top, &after, &alen);
    assert_int_equal(alen, blen);
    assert_memory_equal(after, before, blen);
    free(before);
    free(after);
    /* Images that have no parent to replace, and bad arguments. */
    harness_image_create(flat, BLK_FMT_VDI, size, false, NULL);
    assert_int_equal(blk_set_backing(flat, copy, BLK_FMT_AUTO), VERR_INVALID_STATE);
    assert_int_equal(blk_set_backing(raw, copy, BLK_FMT_AUTO), VERR_NOT_SUPPORTED);
    assert_int_equal(blk_set_backing(top, "", BLK_FMT_AUTO), VERR_INVALID_PARAMETER);
    assert_int_equal(blk_set_backing(top, copy, (enum blk_format)99), VERR_INVALID_PARAMETER);
    free(shadow);
}

/* ---- Interoperation with qemu-img ---------------------------------------------------------------------------------- */

static void test_qemu_image_opens(void **state)
{
    struct fixture *f = *state;
    harness_need_qemu();
    const char *path = harness_path(f->dir, "fromqemu.vdi");
    assert_int_equal(harness_sh("qemu-img create -q -f vdi '%s' 5M", path), 0);
    assert_int_equal(harness_sh("qemu-io -c 'write -P 0x5a 0 1M' -c 'write -P 0xa5 2M 4096' '%s' >/dev/null", path), 0);
    struct blk_image *img = harness_image_open(path, 0);
    assert_int_equal(blk_size_bytes(img), 5 * MIB);
    expect_byte(img, 0, MIB, 0x5a);
    expect_byte(img, MIB, MIB, 0);
    expect_byte(img, 2 * MIB, 4096, 0xa5);
    expect_byte(img, 2 * MIB + 4096, 3 * MIB - 4096, 0);
    /* We write, qemu reads. */
    uint8_t buf[8192];
    memset(buf, 0x77, sizeof(buf));
    assert_int_equal(blk_write(img, 4 * MIB - 4096, buf, sizeof(buf)), 0);
    blk_close(img);
    harness_image_check_clean(path, BLK_FMT_VDI);
    assert_int_equal(harness_sh("qemu-img check -q '%s'", path), 0);
    assert_int_equal(harness_sh("out=$(qemu-io -r -c 'read -P 0x77 4190208 8192' -c 'read -P 0x5a 0 1M' '%s' 2>&1) && "
                         "echo \"$out\" | grep -q 'read 8192/8192' && ! echo \"$out\" | grep -qi fail", path), 0);
    /* A static (fixed) qemu image too. */
    const char *fixed = harness_path(f->dir, "fromqemufixed.vdi");
    assert_int_equal(harness_sh("qemu-img create -q -f vdi -o static=on '%s' 3M", fixed), 0);
    assert_int_equal(harness_sh("qemu-io -c 'write -P 0x5a 1M 1M' '%s' >/dev/null", fixed), 0);
    img = harness_image_open(fixed, BLK_OPEN_READONLY);
    struct blk_info info;
    assert_int_equal(blk_get_info(img, &info), 0);
    assert_string_equal(info.variant, "fixed");
    expect_byte(img, 0, MIB, 0);
    expect_byte(img, MIB, MIB, 0x5a);
    blk_close(img);
    harness_image_check_clean(fixed, BLK_FMT_VDI);
}

static void test_qemu_reads_ours(void **state)
{
    struct fixture *f = *state;
    harness_need_qemu();
    const uint64_t size = 7 * MIB;
    for (int fixed = 0; fixed < 2; fixed++) {
        const char *path = harness_path(f->dir, fixed ? "ours-fixed.vdi" : "ours.vdi");
        const char *raw = harness_path(f->dir, fixed ? "ours-fixed.raw" : "ours.raw");
        harness_image_create(path, BLK_FMT_VDI, size, fixed, NULL);
        struct blk_create_params rp = {.format = BLK_FMT_RAW, .size_bytes = size};
        assert_int_equal(blk_create(raw, &rp), 0);
        struct blk_image *img = harness_image_open(path, 0);
        struct blk_image *rimg = harness_image_open(raw, 0);
        uint64_t offs[] = {3, MIB - 100, 4 * MIB + 12345, size - 777};
        for (unsigned i = 0; i < 4; i++) {
            put(img, NULL, offs[i], 700, 30 + i);
            put(rimg, NULL, offs[i], 700, 30 + i);
        }
        blk_close(img);
        blk_close(rimg);
        assert_int_equal(harness_sh("qemu-img check -q '%s'", path), 0);
        assert_int_equal(harness_sh("qemu-img compare -q -f vdi -F raw '%s' '%s'", path, raw), 0);
        /* and the compare can fail: one byte differs */
        rimg = harness_image_open(raw, 0);
        uint8_t x = 0xee;
        assert_int_equal(blk_write(rimg, 5 * MIB, &x, 1), 0);
        blk_close(rimg);
        assert_int_equal(harness_sh("qemu-img compare -q -f vdi -F raw '%s' '%s'", path, raw), 1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_dynamic_rw, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fixed_rw, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dynamic_sparse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_diff_over_vdi, setup, teardown),
        cmocka_unit_test_setup_teardown(test_diff_over_raw, setup, teardown),
        cmocka_unit_test_setup_teardown(test_diff_parent_changed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_diff_parent_unknown, setup, teardown),
        cmocka_unit_test_setup_teardown(test_diff_without_parent_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_diff_long_parent_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resize, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resize_moves_map, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resize_refused_when_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_small_blocks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_small_blocks_extra, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resize_diff, setup, teardown),
        cmocka_unit_test_setup_teardown(test_discard_and_repair, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hole_reuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fixed_discard_keeps_blocks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_leak_and_stale_count, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_map, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_random, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_backing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_qemu_image_opens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_qemu_reads_ours, setup, teardown),
    };
    rt_log_set_stderr_level(RT_LOG_WARN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
