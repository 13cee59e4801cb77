/* tstBlockQcow2.c - unit tests for the qcow2 format: I/O, chains, resize, discard, check and repair, hostile headers, and interop with qemu-img. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "vireo/block.h"
#include "vireo/rt.h"

#define KIB 1024u
#define MIB (1024u * 1024u)
#define CLUSTER (64u * KIB)

/* ---- Helpers ------------------------------------------------------------------------- */

static int tst_setup(void **state)
{
    return harness_setup_dir(state, "tstBlockQcow2");
}

static void tst_fill(uint8_t *buf, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(i * 7 + seed * 13 + (i >> 9) + 1);
}

static void tst_qemu_check(const char *path)
{
    assert_int_equal(harness_sh("qemu-img check -f qcow2 '%s'", path), 0);
}

static uint64_t tst_get_be(const char *path, uint64_t off, unsigned bytes)
{
    uint8_t b[8];
    harness_file_peek(path, off, b, bytes);
    uint64_t v = 0;
    for (unsigned i = 0; i < bytes; i++)
        v = v << 8 | b[i];
    return v;
}

static void tst_put_be(const char *path, uint64_t off, unsigned bytes, uint64_t v)
{
    uint8_t b[8];
    for (unsigned i = 0; i < bytes; i++)
        b[i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
    harness_file_poke(path, off, b, bytes);
}

/* File offset of the L2 entry of guest cluster vc (64 KiB clusters), 0 when it has no L2 table. */
static uint64_t tst_l2_entry_off(const char *path, uint64_t vc)
{
    uint64_t l1 = tst_get_be(path, 40, 8);
    uint64_t l2 = tst_get_be(path, l1 + 8 * (vc / 8192), 8) & 0x00fffffffffffe00ull;
    return l2 ? l2 + 8 * (vc % 8192) : 0;
}

/* File offset of the 16-bit refcount of the cluster at file offset host (first refcount block). */
static uint64_t tst_refcount_off(const char *path, uint64_t host)
{
    uint64_t rt = tst_get_be(path, 48, 8);
    uint64_t rb = tst_get_be(path, rt, 8);
    return rb + 2 * (host / CLUSTER);
}

/* ---- Our images ------------------------------------------------------------------------- */

static void test_create_write_reopen(void **state)
{
    const char *path = harness_path(*state, "a.qcow2");
    const char *raw = harness_path(*state, "a.raw");
    const uint64_t size = 8 * MIB;
    uint8_t *shadow = calloc(1, size);
    uint8_t *buf = malloc(300 * KIB);
    assert_non_null(shadow);
    assert_non_null(buf);
    harness_image_create(path, BLK_FMT_QCOW2, size, false, NULL);
    assert_int_equal(tst_get_be(path, 0, 4), 0x514649fb);
    assert_int_equal(tst_get_be(path, 4, 4), 3);
    assert_int_equal(tst_get_be(path, 20, 4), 16);
    harness_image_check_clean(path, BLK_FMT_QCOW2);

    struct blk_image *img;
    assert_int_equal(blk_open(path, BLK_FMT_AUTO, 0, &img), 0);
    assert_int_equal(blk_format(img), BLK_FMT_QCOW2);
    assert_int_equal(blk_size_bytes(img), size);
    struct blk_info info;
    assert_int_equal(blk_get_info(img, &info), 0);
    assert_string_equal(info.variant, "");
    assert_string_equal(info.backing_path, "");
    harness_image_expect(img, 0, shadow, size);

    static const struct {
        uint64_t off;
        size_t len;
    } writes[] = {
        {CLUSTER - 100, 300},          {1 * MIB + 7, 200000},   {3, 1},
        {size - 513, 513},             {5 * MIB + 4095, 70000}, {1 * MIB + 60000, 10},
        {2 * CLUSTER, CLUSTER},        {6 * MIB - 1, 2},
    };
    for (unsigned i = 0; i < RT_ARRAY_SIZE(writes); i++) {
        tst_fill(buf, writes[i].len, i);
        memcpy(shadow + writes[i].off, buf, writes[i].len);
        assert_int_equal(blk_write(img, writes[i].off, buf, writes[i].len), 0);
        harness_image_expect(img, writes[i].off, buf, writes[i].len);
    }
    harness_image_expect(img, 0, shadow, size);
    bool allocated;
    uint64_t pnum;
    assert_int_equal(blk_block_status(img, 4 * MIB, 1 * MIB, &allocated, &pnum), 0);
    assert_false(allocated);
    assert_int_equal(pnum, 1 * MIB);
    assert_int_equal(blk_block_status(img, 2 * CLUSTER, 4 * CLUSTER, &allocated, &pnum), 0);
    assert_true(allocated);
    assert_int_equal(pnum, CLUSTER);
    assert_int_equal(blk_flush(img), 0);
    blk_close(img);

    assert_int_equal(blk_open(path, BLK_FMT_QCOW2, BLK_OPEN_READONLY, &img), 0);
    harness_image_expect(img, 0, shadow, size);
    uint8_t byte;
    assert_int_equal(blk_read(img, size - 1, &byte, 1), 0);
    assert_int_equal(byte, shadow[size - 1]);
    assert_int_equal(blk_write(img, 0, &byte, 1), VERR_ACCESS_DENIED);
    blk_close(img);

    harness_image_check_clean(path, BLK_FMT_QCOW2);
    harness_need_qemu();
    tst_qemu_check(path);
    harness_file_write(raw, shadow, size);
    assert_int_equal(harness_sh("qemu-img compare -f qcow2 -F raw '%s' '%s'", path, raw), 0);
    free(shadow);
    free(buf);
}

static void test_fixed(void **state)
{
    const char *path = harness_path(*state, "fixed.qcow2");
    const uint64_t size = 4 * MIB + 512;
    harness_image_create(path, BLK_FMT_QCOW2, size, true, NULL);
    assert_true(harness_file_size(path) >= size);
    struct blk_image *img;
    assert_int_equal(blk_open(path, BLK_FMT_QCOW2, 0, &img), 0);
    bool allocated;
    uint64_t pnum;
    assert_int_equal(blk_block_status(img, 0, size, &allocated, &pnum), 0);
    assert_true(allocated);
    assert_int_equal(pnum, size);
    uint8_t *buf = malloc(size);
    assert_non_null(buf);
    assert_int_equal(blk_read(img, 0, buf, size), 0);
    assert_true(harness_bytes_all(buf, size, 0));
    uint64_t before = harness_file_size(path);
    tst_fill(buf, 3 * CLUSTER, 5);
    assert_int_equal(blk_write(img, CLUSTER / 2, buf, 3 * CLUSTER), 0);
    harness_image_expect(img, CLUSTER / 2, buf, 3 * CLUSTER);
    blk_close(img);
    /* Writes went into the preallocated clusters: the file did not grow. */
    assert_int_equal(harness_file_size(path), before);
    harness_image_check_clean(path, BLK_FMT_QCOW2);
    harness_need_qemu();
    tst_qemu_check(path);
    free(buf);
}

static void test_backing_chains(void **state)
{
    const char *raw = harness_path(*state, "base.raw");
    const char *mid = harness_path(*state, "mid.qcow2");
    const char *top = harness_path(*state, "top.qcow2");
    const char *flat = harness_path(*state, "flat.raw");
    const uint64_t size = 2 * MIB;
    uint8_t *base = malloc(size), *want = malloc(size), *buf = malloc(size);
    assert_non_null(base);
    assert_non_null(want);
    assert_non_null(buf);
    tst_fill(base, size, 9);
    harness_file_write(raw, base, size);

    /* qcow2 over raw: size and format taken from the parent. */
    struct blk_create_params p = {.format = BLK_FMT_QCOW2, .backing_path = "base.raw", .backing_format = BLK_FMT_RAW};
    assert_int_equal(blk_create(mid, &p), 0);
    struct blk_image *img;
    assert_int_equal(blk_open(mid, BLK_FMT_AUTO, 0, &img), 0);
    assert_int_equal(blk_size_bytes(img), size);
    struct blk_info info;
    assert_int_equal(blk_get_info(img, &info), 0);
    assert_non_null(strstr(info.backing_path, "base.raw"));
    assert_int_equal(info.backing_format, BLK_FMT_RAW);
    harness_image_expect(img, 0, base, size);
    memcpy(want, base, size);
    tst_fill(buf, 1000, 1);
    assert_int_equal(blk_write(img, CLUSTER + 500, buf, 1000), 0);
    memcpy(want + CLUSTER + 500, buf, 1000);
    /* Whole-cluster zeroes become zero clusters: they read as zeroes, not as the parent. */
    assert_int_equal(blk_write_zeroes(img, 4 * CLUSTER, 2 * CLUSTER), 0);
    memset(want + 4 * CLUSTER, 0, 2 * CLUSTER);
    assert_int_equal(blk_write_zeroes(img, 10 * CLUSTER + 3, 100), 0);
    memset(want + 10 * CLUSTER + 3, 0, 100);
    harness_image_expect(img, 0, want, size);
    bool allocated;
    uint64_t pnum;
    assert_int_equal(blk_block_status(img, 0, size, &allocated, &pnum), 0);
    assert_false(allocated);
    assert_int_equal(pnum, CLUSTER);
    assert_int_equal(blk_block_status(img, 4 * CLUSTER, size - 4 * CLUSTER, &allocated, &pnum), 0);
    assert_true(allocated);
    assert_int_equal(pnum, 2 * CLUSTER);
    blk_close(img);
    /* The parent is untouched. */
    int fd = open(raw, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, buf, size, 0), (ssize_t)size);
    close(fd);
    assert_memory_equal(buf, base, size);

    /* qcow2 over qcow2. */
    p.backing_path = mid;
    p.backing_format = BLK_FMT_AUTO;
    assert_int_equal(blk_create(top, &p), 0);
    assert_int_equal(blk_open(top, BLK_FMT_AUTO, 0, &img), 0);
    assert_int_equal(blk_get_info(img, &info), 0);
    assert_int_equal(info.backing_format, BLK_FMT_QCOW2);
    harness_image_expect(img, 0, want, size);
    tst_fill(buf, 3 * CLUSTER, 2);
    assert_int_equal(blk_write(img, 3 * CLUSTER + 17, buf, 2 * CLUSTER), 0);
    memcpy(want + 3 * CLUSTER + 17, buf, 2 * CLUSTER);
    /* Discard of whole written clusters over a parent: zero clusters, never the parent's data. */
    assert_int_equal(blk_write(img, 8 * CLUSTER, buf, 2 * CLUSTER), 0);
    assert_int_equal(blk_discard(img, 8 * CLUSTER, 2 * CLUSTER), 0);
    assert_int_equal(blk_read(img, 8 * CLUSTER, buf, 2 * CLUSTER), 0);
    assert_true(harness_bytes_all(buf, 2 * CLUSTER, 0));
    memset(want + 8 * CLUSTER, 0, 2 * CLUSTER);
    harness_image_expect(img, 0, want, size);
    blk_close(img);

    /* The parent is opened read-only by the chain and unchanged. */
    assert_int_equal(blk_open(mid, BLK_FMT_QCOW2, BLK_OPEN_NO_BACKING | BLK_OPEN_READONLY, &img), 0);
    assert_int_equal(blk_read(img, 8 * CLUSTER, buf, CLUSTER), 0);
    assert_true(harness_bytes_all(buf, CLUSTER, 0)); /* no parent: unallocated reads zeroes */
    blk_close(img);

    harness_image_check_clean(mid, BLK_FMT_QCOW2);
    harness_image_check_clean(top, BLK_FMT_QCOW2);
    harness_need_qemu();
    tst_qemu_check(mid);
    tst_qemu_check(top);
    harness_file_write(flat, want, size);
    assert_int_equal(harness_sh("qemu-img compare -F raw '%s' '%s'", top, flat), 0);
    free(base);
    free(want);
    free(buf);
}

static void test_resize(void **state)
{
    const char *path = harness_path(*state, "grow.qcow2");
    uint8_t buf[4096];
    harness_image_create(path, BLK_FMT_QCOW2, 256 * MIB, false, NULL);
    struct blk_image *img;
    assert_int_equal(blk_open(path, BLK_FMT_QCOW2, 0, &img), 0);
    tst_fill(buf, sizeof(buf), 3);
    assert_int_equal(blk_write(img, 256 * MIB - 100, buf, 100), 0);
    assert_int_equal(blk_resize(img, 128 * MIB), VERR_NOT_SUPPORTED);
    /* Within the L1 table's cluster. */
    assert_int_equal(blk_resize(img, 2048ull * MIB), 0);
    assert_int_equal(blk_size_bytes(img), 2048ull * MIB);
    assert_int_equal(blk_write(img, 2047ull * MIB, buf, sizeof(buf)), 0);
    /* Past it: the L1 table moves (8192 entries per cluster cover 4 TiB). */
    uint64_t l1_before = tst_get_be(path, 40, 8);
    const uint64_t big = 5ull << 40;
    assert_int_equal(blk_resize(img, big), 0);
    assert_int_not_equal(tst_get_be(path, 40, 8), l1_before);
    assert_int_equal(blk_write(img, big - 4096, buf, sizeof(buf)), 0);
    uint8_t got[4096];
    assert_int_equal(blk_read(img, big - 8192, got, 4096), 0);
    assert_true(harness_bytes_all(got, 4096, 0));
    blk_close(img);

    assert_int_equal(blk_open(path, BLK_FMT_QCOW2, BLK_OPEN_READONLY, &img), 0);
    assert_int_equal(blk_size_bytes(img), big);
    harness_image_expect(img, 256 * MIB - 100, buf, 100);
    harness_image_expect(img, 2047ull * MIB, buf, sizeof(buf));
    harness_image_expect(img, big - 4096, buf, sizeof(buf));
    blk_close(img);
    harness_image_check_clean(path, BLK_FMT_QCOW2);
    harness_need_qemu();
    tst_qemu_check(path);
    assert_int_equal(harness_sh("qemu-img info '%s' | grep -q '5 TiB'", path), 0);
}

static void test_discard_reuse(void **state)
{
    const char *path = harness_path(*state, "discard.qcow2");
    uint8_t *buf = malloc(8 * CLUSTER);
    assert_non_null(buf);
    harness_image_create(path, BLK_FMT_QCOW2, 16 * MIB, false, NULL);
    struct blk_image *img;
    assert_int_equal(blk_open(path, BLK_FMT_QCOW2, 0, &img), 0);
    tst_fill(buf, 8 * CLUSTER, 4);
    assert_int_equal(blk_write(img, 0, buf, 8 * CLUSTER), 0);
    uint64_t grown = harness_file_size(path);
    /* A partial cluster at either end is kept; the whole ones go. */
    assert_int_equal(blk_discard(img, CLUSTER / 2, 4 * CLUSTER), 0);
    uint8_t *got = malloc(8 * CLUSTER);
    assert_non_null(got);
    assert_int_equal(blk_read(img, 0, got, 8 * CLUSTER), 0);
    assert_memory_equal(got, buf, CLUSTER);
    assert_true(harness_bytes_all(got + CLUSTER, 3 * CLUSTER, 0));
    assert_memory_equal(got + 4 * CLUSTER, buf + 4 * CLUSTER, 4 * CLUSTER);
    bool allocated;
    uint64_t pnum;
    assert_int_equal(blk_block_status(img, CLUSTER, 3 * CLUSTER, &allocated, &pnum), 0);
    assert_false(allocated);
    blk_close(img);
    harness_image_check_clean(path, BLK_FMT_QCOW2);

    /* The freed clusters are used again: the file does not grow. */
    assert_int_equal(blk_open(path, BLK_FMT_QCOW2, 0, &img), 0);
    assert_int_equal(blk_write(img, 10 * MIB, buf, 3 * CLUSTER), 0);
    harness_image_expect(img, 10 * MIB, buf, 3 * CLUSTER);
    harness_image_expect(img, 4 * CLUSTER, buf + 4 * CLUSTER, 4 * CLUSTER);
    blk_close(img);
    assert_int_equal(harness_file_size(path), grown);
    harness_image_check_clean(path, BLK_FMT_QCOW2);

    /* Write zeroes keeps what is around it. */
    assert_int_equal(blk_open(path, BLK_FMT_QCOW2, 0, &img), 0);
    assert_int_equal(blk_write_zeroes(img, 5 * CLUSTER - 10, 2 * CLUSTER + 20), 0);
    assert_int_equal(blk_read(img, 4 * CLUSTER, got, 4 * CLUSTER), 0);
    assert_memory_equal(got, buf + 4 * CLUSTER, CLUSTER - 10);
    assert_true(harness_bytes_all(got + CLUSTER - 10, 2 * CLUSTER + 20, 0));
    assert_memory_equal(got + 3 * CLUSTER + 10, buf + 7 * CLUSTER + 10, CLUSTER - 10);
    blk_close(img);
    harness_image_check_clean(path, BLK_FMT_QCOW2);
    harness_need_qemu();
    tst_qemu_check(path);
    free(buf);
    free(got);
}

/* A write killed at any moment leaves an image that checks without errors, holding every completed write. */
static void test_kill_during_writes(void **state)
{
    const char *path = harness_path(*state, "kill.qcow2");
    harness_image_create(path, BLK_FMT_QCOW2, 64 * MIB, false, NULL);
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct blk_image *img;
        uint8_t buf[3000];
        close(pipefd[0]);
        if (blk_open(path, BLK_FMT_QCOW2, 0, &img) < 0)
            _exit(1);
        for (uint32_t i = 0; i < 2900; i++) {
            memset(buf, (int)(i % 251) + 1, sizeof(buf));
            if (blk_write(img, (uint64_t)i * 20011, buf, sizeof(buf)) < 0)
                _exit(2);
            if (write(pipefd[1], &i, sizeof(i)) != sizeof(i))
                _exit(3);
        }
        for (;;)
            pause();
    }
    close(pipefd[1]);
    uint32_t last = 0, got;
    for (unsigned n = 0; n < 400 && read(pipefd[0], &got, sizeof(got)) == sizeof(got); n++)
        last = got;
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    close(pipefd[0]);
    assert_true(last >= 100);
    struct blk_check_result res;
    assert_int_equal(blk_check(path, BLK_FMT_QCOW2, false, &res), 0);
    assert_int_equal(res.errors, 0);
    struct blk_image *img;
    assert_int_equal(blk_open(path, BLK_FMT_QCOW2, BLK_OPEN_READONLY, &img), 0);
    uint8_t buf[3000];
    for (uint32_t i = 0; i <= last; i++) {
        assert_int_equal(blk_read(img, (uint64_t)i * 20011, buf, sizeof(buf)), 0);
        assert_true(harness_bytes_all(buf, sizeof(buf), (uint8_t)(i % 251 + 1)));
    }
    blk_close(img);
    assert_int_equal(blk_check(path, BLK_FMT_QCOW2, true, &res), 0);
    harness_image_check_clean(path, BLK_FMT_QCOW2);
}

static void test_check_and_repair(void **state)
{
    const char *path = harness_path(*state, "leak.qcow2");
    uint8_t buf[4096];
    harness_image_create(path, BLK_FMT_QCOW2, 4 * MIB, false, NULL);
    struct blk_image *img;
    assert_int_equal(blk_open(path, BLK_FMT_QCOW2, 0, &img), 0);
    tst_fill(buf, sizeof(buf), 6);
    assert_int_equal(blk_write(img, 0, buf, sizeof(buf)), 0);
    blk_close(img);
    uint64_t data = tst_get_be(path, tst_l2_entry_off(path, 0), 8) & 0x00fffffffffffe00ull;
    assert_true(data != 0);

    /* A leaked cluster past the end (a kill between refcount and use). */
    uint64_t eof = harness_file_size(path);
    tst_put_be(path, tst_refcount_off(path, eof), 2, 1);
    struct blk_check_result res;
    assert_int_equal(blk_check(path, BLK_FMT_QCOW2, false, &res), 0);
    assert_int_equal(res.errors, 0);
    assert_int_equal(res.leaks, 1);
    assert_int_equal(blk_check(path, BLK_FMT_QCOW2, true, &res), 0);
    assert_int_equal(res.leaks, 0);
    assert_int_equal(res.errors, 0);
    assert_true(res.repaired >= 1);
    harness_image_check_clean(path, BLK_FMT_QCOW2);

    /* A refcount at its maximum (0xffff for 16 bits): a leak; the data reads and writes as before. */
    tst_put_be(path, tst_refcount_off(path, data), 2, 0xffff);
    assert_int_equal(blk_check(path, BLK_FMT_QCOW2, false, &res), 0);
    assert_true(res.leaks >= 1 || res.errors >= 1);
    assert_int_equal(blk_open(path, BLK_FMT_QCOW2, 0, &img), 0);
    harness_image_expect(img, 0, buf, sizeof(buf));
    tst_fill(buf, sizeof(buf), 7);
    assert_int_equal(blk_write(img, 100, buf, 1000), 0);
    harness_image_expect(img, 100, buf, 1000);
    blk_close(img);
    assert_int_equal(blk_check(path, BLK_FMT_QCOW2, true, &res), 0);
    assert_int_equal(res.errors + res.leaks, 0);
    harness_image_check_clean(path, BLK_FMT_QCOW2);

    /* A refcount too low (0 for a used cluster): an error, which repair fixes. */
    data = tst_get_be(path, tst_l2_entry_off(path, 0), 8) & 0x00fffffffffffe00ull;
    tst_put_be(path, tst_refcount_off(path, data), 2, 0);
    assert_int_equal(blk_check(path, BLK_FMT_QCOW2, false, &res), 0);
    assert_true(res.errors >= 1);
    assert_true(strlen(res.first_problem) > 0);
    assert_int_equal(blk_check(path, BLK_FMT_QCOW2, true, &res), 0);
    assert_int_equal(res.errors + res.leaks, 0);
    harness_image_check_clean(path, BLK_FMT_QCOW2);
    harness_need_qemu();
    tst_qemu_check(path);
}

static void test_header_bits(void **state)
{
    const char *path = harness_path(*state, "bits.qcow2");
    uint8_t buf[512];
    harness_image_create(path, BLK_FMT_QCOW2, 4 * MIB, false, NULL);
    struct blk_image *img;
    assert_int_equal(blk_open(path, BLK_FMT_QCOW2, 0, &img), 0);
    tst_fill(buf, sizeof(buf), 8);
    assert_int_equal(blk_write(img, 3 * CLUSTER, buf, sizeof(buf)), 0);
    blk_close(img);

    /* Dirty: opening for writing rebuilds the refcounts (here one was lost) and clears the bit. */
    uint64_t data = tst_get_be(path, tst_l2_entry_off(path, 3), 8) & 0x00fffffffffffe00ull;
    tst_put_be(path, tst_refcount_off(path, data), 2, 0);
    tst_put_be(path, 72, 8, 1);
    assert_int_equal(blk_open(path, BLK_FMT_QCOW2, BLK_OPEN_READONLY, &img), 0);
    harness_image_expect(img, 3 * CLUSTER, buf, sizeof(buf));
    blk_close(img);
    assert_int_equal(tst_get_be(path, 72, 8), 1);
    assert_int_equal(blk_open(path, BLK_FMT_QCOW2, 0, &img), 0);
    assert_int_equal(tst_get_be(path, 72, 8), 0);
    assert_int_equal(blk_write(img, 5 * CLUSTER, buf, sizeof(buf)), 0);
    harness_image_expect(img, 3 * CLUSTER, buf, sizeof(buf));
    blk_close(img);
    harness_image_check_clean(path, BLK_FMT_QCOW2);

    /* Autoclear bits are cleared by a writer. */
    tst_put_be(path, 88, 8, 0x8000000000000001ull);
    assert_int_equal(blk_open(path, BLK_FMT_QCOW2, 0, &img), 0);
    blk_close(img);
    assert_int_equal(tst_get_be(path, 88, 8), 0);

    /* Corrupt: reads work, writes are refused and say why. */
    tst_put_be(path, 72, 8, 2);
    assert_int_equal(blk_open(path, BLK_FMT_QCOW2, 0, &img), 0);
    harness_image_expect(img, 3 * CLUSTER, buf, sizeof(buf));
    harness_log_reset();
    assert_int_equal(blk_write(img, 0, buf, 1), VERR_ACCESS_DENIED);
    assert_true(harness_log_contains("corrupt"));
    assert_int_equal(blk_discard(img, 0, CLUSTER), VERR_ACCESS_DENIED);
    blk_close(img);
    struct blk_check_result res;
    assert_int_equal(blk_check(path, BLK_FMT_QCOW2, false, &res), 0);
    assert_int_equal(res.errors, 0);
    tst_put_be(path, 72, 8, 0);

    /* Features we do not implement are refused by name. */
    static const struct {
        uint64_t bits;
        const char *name;
    } refused[] = {
        {1u << 2, "external data file"},
        {1u << 4, "extended L2"},
        {1u << 20, "bit 20"},
    };
    for (unsigned i = 0; i < RT_ARRAY_SIZE(refused); i++) {
        tst_put_be(path, 72, 8, refused[i].bits);
        harness_log_reset();
        assert_int_equal(blk_open(path, BLK_FMT_QCOW2, BLK_OPEN_READONLY, &img), VERR_NOT_SUPPORTED);
        assert_true(harness_log_contains(refused[i].name));
        assert_null(img);
    }
    /* zstd compression (header_length 112 carries the type byte). */
    tst_put_be(path, 72, 8, 1u << 3);
    tst_put_be(path, 104, 1, 1);
    harness_log_reset();
    assert_int_equal(blk_open(path, BLK_FMT_QCOW2, BLK_OPEN_READONLY, &img), VERR_NOT_SUPPORTED);
    assert_true(harness_log_contains("zstd"));
    tst_put_be(path, 72, 8, 0);
    tst_put_be(path, 104, 1, 0);
    assert_int_equal(blk_open(path, BLK_FMT_QCOW2, BLK_OPEN_READONLY, &img), 0);
    blk_close(img);
}

/* ---- Hostile images ----------------------------------------------------------------------- */

struct tst_edit {
    const char *name;
    uint64_t off;
    unsigned bytes;
    uint64_t value;
    const char *field; /* what the log line must name */
};

static void test_hostile_headers(void **state)
{
    const char *good = harness_path(*state, "good.qcow2");
    const char *bad = harness_path(*state, "bad.qcow2");
    harness_image_create(good, BLK_FMT_QCOW2, 16 * MIB, false, NULL);
    struct blk_image *img;
    assert_int_equal(blk_open(good, BLK_FMT_QCOW2, 0, &img), 0);
    uint8_t buf[100];
    tst_fill(buf, sizeof(buf), 11);
    assert_int_equal(blk_write(img, 0, buf, sizeof(buf)), 0);
    blk_close(img);
    uint64_t size = harness_file_size(good);
    uint8_t *orig = malloc(size);
    assert_non_null(orig);
    int fd = open(good, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, orig, size), (ssize_t)size);
    close(fd);

    const struct tst_edit edits[] = {
        {"version 1", 4, 4, 1, "version"},
        {"version 4", 4, 4, 4, "version"},
        {"cluster_bits 8", 20, 4, 8, "cluster_bits"},
        {"cluster_bits 30", 20, 4, 30, "cluster_bits"},
        {"L1 offset past EOF", 40, 8, 1ull << 40, "l1_table_offset"},
        {"L1 offset unaligned", 40, 8, 0x20008, "l1_table_offset"},
        {"L1 size huge", 36, 4, 0xffffffffu, "l1_size"},
        {"L1 size too small", 36, 4, 0, "l1_size"},
        {"refcount table offset unaligned", 48, 8, 0x10200, "refcount_table_offset"},
        {"refcount table past EOF", 48, 8, 1ull << 50, "refcount_table_offset"},
        {"refcount table clusters huge", 56, 4, 0x10000000, "refcount_table_clusters"},
        {"refcount order 7", 96, 4, 7, "refcount_order"},
        {"header length odd", 100, 4, 105, "header_length"},
        {"header length past cluster", 100, 4, 0x20000, "header_length"},
        {"backing name length huge", 16, 4, 0x7fffffff, "backing_file_size"},
        {"backing name offset past cluster", 8, 8, 0x20000, "backing_file_offset"},
        {"extension length past cluster", 116, 4, 0x10000, "header extension"},
        {"size huge", 24, 8, 1ull << 62, "size"},
        {"snapshots unaligned", 60, 4, 1, "snapshots_offset"},
        {"snapshots huge", 60, 4, 0x7fffffff, "nb_snapshots"},
        {"encryption", 32, 4, 2, "LUKS"},
        {"refcount block past EOF", 0x10000, 8, 1ull << 45, "refcount table entry 0"},
        {"refcount block unaligned", 0x10000, 8, 0x30100, "refcount table entry 0"},
    };
    for (unsigned i = 0; i < RT_ARRAY_SIZE(edits); i++) {
        harness_file_write(bad, orig, size);
        if (strcmp(edits[i].name, "backing name length huge") == 0)
            tst_put_be(bad, 8, 8, 0x1000);
        tst_put_be(bad, edits[i].off, edits[i].bytes, edits[i].value);
        harness_log_reset();
        img = (struct blk_image *)1;
        int rc = blk_open(bad, BLK_FMT_QCOW2, 0, &img);
        if (rc != VERR_BAD_FORMAT && rc != VERR_NOT_SUPPORTED)
            fail_msg("%s: open returned %d", edits[i].name, rc);
        assert_null(img);
        if (!harness_log_contains(edits[i].field) || !harness_log_contains(bad))
            fail_msg("%s: the log does not name \"%s\" and the file", edits[i].name, edits[i].field);
        /* Probing finds it is qcow2 and gives the same answer; check fails the same way. */
        assert_int_equal(blk_open(bad, BLK_FMT_AUTO, BLK_OPEN_READONLY, &img), rc);
        struct blk_check_result res;
        assert_int_equal(blk_check(bad, BLK_FMT_QCOW2, true, &res), rc);
    }

    /* Bad magic: not qcow2 (probing calls it raw, an explicit qcow2 open refuses). */
    harness_file_write(bad, orig, size);
    tst_put_be(bad, 0, 4, 0x514649fa);
    assert_int_equal(blk_open(bad, BLK_FMT_QCOW2, 0, &img), VERR_BAD_FORMAT);
    assert_int_equal(blk_open(bad, BLK_FMT_AUTO, BLK_OPEN_READONLY, &img), 0);
    assert_int_equal(blk_format(img), BLK_FMT_RAW);
    blk_close(img);

    /* A truncated header. */
    harness_file_write(bad, orig, 40);
    assert_int_equal(blk_open(bad, BLK_FMT_QCOW2, 0, &img), VERR_BAD_FORMAT);

    /* An L2 entry past the end of the file: the read fails cleanly, check counts an error. */
    harness_file_write(bad, orig, size);
    uint64_t e = tst_l2_entry_off(bad, 0);
    tst_put_be(bad, e, 8, (1ull << 63) | (1ull << 44));
    assert_int_equal(blk_open(bad, BLK_FMT_QCOW2, 0, &img), 0);
    harness_log_reset();
    assert_int_equal(blk_read(img, 0, buf, sizeof(buf)), VERR_BAD_FORMAT);
    assert_true(harness_log_contains("past the end of the file"));
    assert_int_equal(blk_write(img, 10, buf, 10), VERR_BAD_FORMAT);
    assert_int_equal(blk_read(img, CLUSTER, buf, sizeof(buf)), 0);
    blk_close(img);
    struct blk_check_result res;
    assert_int_equal(blk_check(bad, BLK_FMT_QCOW2, false, &res), 0);
    assert_true(res.errors >= 1);
    /* Unaligned and reserved-bit entries too; a compressed entry pointing at garbage fails to inflate. */
    tst_put_be(bad, e, 8, 0x50100);
    assert_int_equal(blk_open(bad, BLK_FMT_QCOW2, BLK_OPEN_READONLY, &img), 0);
    assert_int_equal(blk_read(img, 0, buf, sizeof(buf)), VERR_BAD_FORMAT);
    blk_close(img);
    tst_put_be(bad, e, 8, (1ull << 63) | 0x10000);
    assert_int_equal(blk_open(bad, BLK_FMT_QCOW2, 0, &img), 0);
    harness_log_reset();
    assert_int_equal(blk_write(img, 0, buf, sizeof(buf)), VERR_BAD_FORMAT);
    assert_true(harness_log_contains("overlaps"));
    blk_close(img);
    assert_int_equal(tst_get_be(bad, 0x10000, 8), 0x30000); /* the refcount table was not written over */
    tst_put_be(bad, e, 8, (1ull << 62) | 0x10000);
    assert_int_equal(blk_open(bad, BLK_FMT_QCOW2, BLK_OPEN_READONLY, &img), 0);
    assert_int_equal(blk_read(img, 0, buf, sizeof(buf)), VERR_BAD_FORMAT);
    blk_close(img);
    /* An L1 entry pointing at an unaligned L2 table. */
    harness_file_write(bad, orig, size);
    tst_put_be(bad, tst_get_be(bad, 40, 8), 8, (1ull << 63) | 0x40200);
    assert_int_equal(blk_open(bad, BLK_FMT_QCOW2, BLK_OPEN_READONLY, &img), 0);
    assert_int_equal(blk_read(img, 0, buf, sizeof(buf)), VERR_BAD_FORMAT);
    blk_close(img);
    assert_int_equal(blk_check(bad, BLK_FMT_QCOW2, false, &res), 0);
    assert_true(res.errors >= 1);

    /* Random garbage after a valid magic and version never crashes. */
    srand(1234);
    for (unsigned round = 0; round < 200; round++) {
        harness_file_write(bad, orig, size);
        for (unsigned k = 0; k < 4; k++) {
            uint64_t off = 8 + (uint64_t)rand() % 200;
            if (round % 2)
                off = (uint64_t)rand() % size;
            tst_put_be(bad, off, 1, (uint64_t)rand() & 0xff);
        }
        if (blk_open(bad, BLK_FMT_QCOW2, 0, &img) == 0) {
            uint8_t big[3 * CLUSTER];
            (void)blk_read(img, 0, big, sizeof(big));
            (void)blk_write(img, CLUSTER - 5, big, 2 * CLUSTER);
            blk_close(img);
            (void)blk_check(bad, BLK_FMT_QCOW2, true, &res);
        }
    }
    free(orig);
}

/* Two L2 entries pointing at one cluster in an image with 1-bit refcounts: check reports it, repair fails cleanly. */
static void test_refcount_overflow(void **state)
{
    const char *path = harness_path(*state, "rc1.qcow2");
    harness_need_qemu();
    assert_int_equal(harness_sh("qemu-img create -q -f qcow2 -o refcount_bits=1 '%s' 4M", path), 0);
    assert_int_equal(harness_sh("qemu-io -f qcow2 -c 'write -P 0x5a 0 64k' '%s'", path), 0);
    struct blk_image *img;
    uint8_t buf[4096];
    assert_int_equal(blk_open(path, BLK_FMT_QCOW2, 0, &img), 0);
    tst_fill(buf, sizeof(buf), 12);
    assert_int_equal(blk_write(img, CLUSTER + 5, buf, 100), 0);
    blk_close(img);
    harness_image_check_clean(path, BLK_FMT_QCOW2);
    uint64_t e0 = tst_get_be(path, tst_l2_entry_off(path, 0), 8);
    tst_put_be(path, tst_l2_entry_off(path, 2), 8, e0 & ~(1ull << 63));
    struct blk_check_result res;
    assert_int_equal(blk_check(path, BLK_FMT_QCOW2, false, &res), 0);
    assert_true(res.errors >= 1);
    harness_log_reset();
    assert_int_equal(blk_check(path, BLK_FMT_QCOW2, true, &res), 0);
    assert_true(res.errors >= 1);
    assert_non_null(strstr(res.first_problem, "refcount"));
    /* Nothing was changed: both guest clusters still read the shared data. */
    assert_int_equal(blk_open(path, BLK_FMT_QCOW2, 0, &img), 0);
    assert_int_equal(blk_read(img, 2 * CLUSTER, buf, sizeof(buf)), 0);
    assert_true(harness_bytes_all(buf, sizeof(buf), 0x5a));
    blk_close(img);
}

/* ---- Interop with QEMU's tools ----------------------------------------------------------- */

static void tst_expect_pattern_at(const char *path, uint64_t size, uint64_t at, uint64_t len, uint8_t v,
                                  const uint8_t *below)
{
    struct blk_image *img;
    uint8_t *buf = malloc(size);
    assert_non_null(buf);
    assert_int_equal(blk_open(path, BLK_FMT_AUTO, BLK_OPEN_READONLY, &img), 0);
    assert_int_equal(blk_format(img), BLK_FMT_QCOW2);
    assert_int_equal(blk_size_bytes(img), size);
    assert_int_equal(blk_read(img, 0, buf, size), 0);
    for (uint64_t i = 0; i < size; i++) {
        uint8_t want = i >= at && i < at + len ? v : below ? below[i] : 0;
        if (buf[i] != want)
            fail_msg("%s: byte %llu is %#x, expected %#x", path, (unsigned long long)i, buf[i], want);
    }
    blk_close(img);
    free(buf);
}

static void test_qemu_images(void **state)
{
    const char *v3 = harness_path(*state, "q3.qcow2");
    const char *v2 = harness_path(*state, "q2.qcow2");
    const char *base = harness_path(*state, "qbase.raw");
    const char *child = harness_path(*state, "qchild.qcow2");
    const uint64_t size = 4 * MIB;
    harness_need_qemu();

    assert_int_equal(harness_sh("qemu-img create -q -f qcow2 '%s' 4M", v3), 0);
    assert_int_equal(harness_sh("qemu-io -f qcow2 -c 'write -P 0xab 1M 64k' '%s'", v3), 0);
    tst_expect_pattern_at(v3, size, MIB, 64 * KIB, 0xab, NULL);
    harness_image_check_clean(v3, BLK_FMT_QCOW2);

    assert_int_equal(harness_sh("qemu-img create -q -f qcow2 -o compat=0.10 '%s' 4M", v2), 0);
    assert_int_equal(tst_get_be(v2, 4, 4), 2);
    assert_int_equal(harness_sh("qemu-io -f qcow2 -c 'write -P 0xab 1M 64k' '%s'", v2), 0);
    tst_expect_pattern_at(v2, size, MIB, 64 * KIB, 0xab, NULL);
    harness_image_check_clean(v2, BLK_FMT_QCOW2);
    /* Our writes to a v2 image, then QEMU's check. */
    struct blk_image *img;
    uint8_t buf[5000];
    assert_int_equal(blk_open(v2, BLK_FMT_QCOW2, 0, &img), 0);
    tst_fill(buf, sizeof(buf), 13);
    assert_int_equal(blk_write(img, 3 * MIB - 100, buf, sizeof(buf)), 0);
    assert_int_equal(blk_write_zeroes(img, MIB, 64 * KIB), 0);
    assert_int_equal(blk_read(img, MIB, buf, 100), 0);
    assert_true(harness_bytes_all(buf, 100, 0));
    blk_close(img);
    harness_image_check_clean(v2, BLK_FMT_QCOW2);
    tst_qemu_check(v2);

    uint8_t *below = malloc(size);
    assert_non_null(below);
    tst_fill(below, size, 14);
    harness_file_write(base, below, size);
    assert_int_equal(harness_sh("qemu-img create -q -f qcow2 -b '%s' -F raw '%s'", base, child), 0);
    assert_int_equal(harness_sh("qemu-io -f qcow2 -c 'write -P 0xab 1M 64k' '%s'", child), 0);
    tst_expect_pattern_at(child, size, MIB, 64 * KIB, 0xab, below);
    harness_image_check_clean(child, BLK_FMT_QCOW2);
    free(below);
}

/* blk_set_backing: a rebase onto an identical copy reads the same, and QEMU sees the new parent. */
static void test_set_backing(void **state)
{
    const char *base = harness_path(*state, "base.qcow2");
    const char *copy = harness_path(*state, "copy.qcow2");
    const char *raw = harness_path(*state, "copy.raw");
    const char *top = harness_path(*state, "top.qcow2");
    const char *flat = harness_path(*state, "flat.raw");
    const uint64_t size = 2 * MIB;
    uint8_t *want = calloc(1, size), *buf = malloc(size);
    assert_non_null(want);
    assert_non_null(buf);
    harness_need_qemu();
    harness_image_create(base, BLK_FMT_QCOW2, size, false, NULL);
    struct blk_image *img;
    assert_int_equal(blk_open(base, BLK_FMT_AUTO, 0, &img), 0);
    tst_fill(want, 3 * CLUSTER + 5, 21);
    assert_int_equal(blk_write(img, 0, want, 3 * CLUSTER + 5), 0);
    tst_fill(want + MIB, 2 * CLUSTER, 22);
    assert_int_equal(blk_write(img, MIB, want + MIB, 2 * CLUSTER), 0);
    blk_close(img);
    assert_int_equal(blk_open(base, BLK_FMT_AUTO, BLK_OPEN_READONLY, &img), 0);
    struct blk_create_params cp = {.format = BLK_FMT_QCOW2};
    assert_int_equal(blk_convert(img, copy, &cp, NULL, NULL), 0);
    cp.format = BLK_FMT_RAW;
    assert_int_equal(blk_convert(img, raw, &cp, NULL, NULL), 0);
    blk_close(img);
    /* A child made by QEMU with a long absolute name: the new, shorter one must not keep its tail. */
    assert_int_equal(harness_sh("qemu-img create -q -f qcow2 -b '%s' -F qcow2 '%s'", base, top), 0);
    assert_int_equal(blk_open(top, BLK_FMT_AUTO, 0, &img), 0);
    tst_fill(buf, 5000, 23);
    assert_int_equal(blk_write(img, CLUSTER - 100, buf, 5000), 0);
    memcpy(want + CLUSTER - 100, buf, 5000);
    blk_close(img);

    assert_int_equal(blk_set_backing(top, "copy.qcow2", BLK_FMT_QCOW2), 0);
    assert_int_equal(tst_get_be(top, 16, 4), strlen("copy.qcow2"));
    assert_int_equal(blk_open(top, BLK_FMT_AUTO, BLK_OPEN_READONLY, &img), 0);
    struct blk_info info;
    assert_int_equal(blk_get_info(img, &info), 0);
    assert_string_equal(info.backing_path, copy);
    assert_int_equal(info.backing_format, BLK_FMT_QCOW2);
    harness_image_expect(img, 0, want, size);
    blk_close(img);
    assert_int_equal(unlink(base), 0);
    harness_image_check_clean(top, BLK_FMT_QCOW2);
    tst_qemu_check(top);
    assert_int_equal(
        harness_sh("qemu-img info --output=json '%s' | grep -q '\"backing-filename\": \"copy.qcow2\"'", top), 0);
    assert_int_equal(
        harness_sh("qemu-img info --output=json '%s' | grep -q '\"backing-filename-format\": \"qcow2\"'", top), 0);
    harness_file_write(flat, want, size);
    assert_int_equal(harness_sh("qemu-img compare -F raw '%s' '%s'", top, flat), 0);

    /* Onto the raw copy: the format extension follows. */
    assert_int_equal(blk_set_backing(top, raw, BLK_FMT_AUTO), 0);
    assert_int_equal(
        harness_sh("qemu-img info --output=json '%s' | grep -q '\"backing-filename-format\": \"raw\"'", top), 0);
    assert_int_equal(harness_sh("qemu-img compare -F raw '%s' '%s'", top, flat), 0);
    tst_qemu_check(top);

    /* Refused with the file unchanged: another size, a missing parent, a loop, no parent at all. */
    const char *small = harness_path(*state, "small.qcow2");
    const char *over = harness_path(*state, "over.qcow2");
    harness_image_create(small, BLK_FMT_QCOW2, size + MIB, false, NULL);
    harness_image_create(over, BLK_FMT_QCOW2, 0, false, "top.qcow2");
    void *before, *after;
    size_t blen, alen;
    assert_int_equal(rt_file_read_all(top, 16 * MIB, &before, &blen), 0);
    assert_int_equal(blk_set_backing(top, small, BLK_FMT_AUTO), VERR_INVALID_PARAMETER);
    assert_int_equal(blk_set_backing(top, "nothing.qcow2", BLK_FMT_AUTO), VERR_FILE_NOT_FOUND);
    assert_int_equal(blk_set_backing(top, "over.qcow2", BLK_FMT_AUTO), VERR_BAD_FORMAT);
    assert_int_equal(rt_file_read_all(top, 16 * MIB, &after, &alen), 0);
    assert_int_equal(alen, blen);
    assert_memory_equal(after, before, blen);
    free(before);
    free(after);
    assert_int_equal(blk_set_backing(small, copy, BLK_FMT_AUTO), VERR_INVALID_STATE);
    /* A qcow2 v2 image made by QEMU: rebased, QEMU still reads it. */
    const char *v2 = harness_path(*state, "v2.qcow2");
    assert_int_equal(harness_sh("qemu-img create -q -f qcow2 -o compat=0.10 -b '%s' -F raw '%s'", raw, v2), 0);
    assert_int_equal(blk_set_backing(v2, "copy.qcow2", BLK_FMT_AUTO), 0);
    assert_int_equal(tst_get_be(v2, 4, 4), 2);
    tst_qemu_check(v2);
    assert_int_equal(harness_sh("qemu-img info --output=json '%s' | grep -q '\"backing-filename\": \"copy.qcow2\"'", v2), 0);
    free(want);
    free(buf);
}

static void test_qemu_compressed(void **state)
{
    const char *raw = harness_path(*state, "src.raw");
    const char *comp = harness_path(*state, "comp.qcow2");
    const char *flat = harness_path(*state, "flat.raw");
    const uint64_t size = 2 * MIB + 4096;
    harness_need_qemu();
    uint8_t *data = calloc(1, size);
    assert_non_null(data);
    for (uint64_t i = 0; i < size; i += 4096)
        tst_fill(data + i, 1000 + i % 3000, (unsigned)(i / 4096));
    harness_file_write(raw, data, size);
    assert_int_equal(harness_sh("qemu-img convert -c -f raw -O qcow2 '%s' '%s'", raw, comp), 0);
    struct blk_image *img;
    assert_int_equal(blk_open(comp, BLK_FMT_AUTO, 0, &img), 0);
    harness_image_expect(img, 0, data, size);
    /* Writing into compressed clusters turns them into normal ones. */
    uint8_t buf[3000];
    tst_fill(buf, sizeof(buf), 15);
    assert_int_equal(blk_write(img, CLUSTER - 1000, buf, sizeof(buf)), 0);
    memcpy(data + CLUSTER - 1000, buf, sizeof(buf));
    assert_int_equal(blk_discard(img, 4 * CLUSTER, CLUSTER), 0);
    memset(data + 4 * CLUSTER, 0, CLUSTER);
    harness_image_expect(img, 0, data, size);
    blk_close(img);
    harness_image_check_clean(comp, BLK_FMT_QCOW2);
    tst_qemu_check(comp);
    harness_file_write(flat, data, size);
    assert_int_equal(harness_sh("qemu-img compare -f qcow2 -F raw '%s' '%s'", comp, flat), 0);
    free(data);
}

/* Internal snapshots made by QEMU stay intact while we write (shared clusters are copied). */
static void test_qemu_snapshot(void **state)
{
    const char *path = harness_path(*state, "snap.qcow2");
    const char *snap = harness_path(*state, "snap.raw");
    const char *now = harness_path(*state, "now.raw");
    const uint64_t size = 2 * MIB;
    harness_need_qemu();
    assert_int_equal(harness_sh("qemu-img create -q -f qcow2 '%s' 2M", path), 0);
    assert_int_equal(harness_sh("qemu-io -f qcow2 -c 'write -P 0x11 0 1M' '%s'", path), 0);
    assert_int_equal(harness_sh("qemu-img snapshot -c s1 '%s'", path), 0);
    harness_image_check_clean(path, BLK_FMT_QCOW2);
    uint8_t *want = malloc(size);
    assert_non_null(want);
    memset(want, 0x11, MIB);
    memset(want + MIB, 0, MIB);
    struct blk_image *img;
    assert_int_equal(blk_open(path, BLK_FMT_QCOW2, 0, &img), 0);
    uint8_t buf[5000];
    tst_fill(buf, sizeof(buf), 16);
    assert_int_equal(blk_write(img, 70000, buf, sizeof(buf)), 0);
    assert_int_equal(blk_write_zeroes(img, 3 * CLUSTER, CLUSTER), 0);
    assert_int_equal(blk_discard(img, 5 * CLUSTER, CLUSTER), 0);
    blk_close(img);
    harness_image_check_clean(path, BLK_FMT_QCOW2);
    tst_qemu_check(path);
    assert_int_equal(harness_sh("qemu-img convert -f qcow2 -l snapshot.name=s1 -O raw '%s' '%s'", path, snap), 0);
    harness_file_write(now, want, size);
    assert_int_equal(harness_sh("cmp -s '%s' '%s'", snap, now), 0);
    free(want);
}

/* 512-byte clusters: the refcount table fills up and grows; QEMU agrees with the result. */
static void test_qemu_small_clusters(void **state)
{
    const char *path = harness_path(*state, "small.qcow2");
    const char *flat = harness_path(*state, "small.raw");
    const uint64_t size = 24 * MIB;
    harness_need_qemu();
    assert_int_equal(harness_sh("qemu-img create -q -f qcow2 -o cluster_size=512 '%s' 24M", path), 0);
    uint64_t rt_before = tst_get_be(path, 48, 8);
    uint8_t *data = calloc(1, size);
    assert_non_null(data);
    tst_fill(data, 20 * MIB, 17);
    struct blk_image *img;
    assert_int_equal(blk_open(path, BLK_FMT_QCOW2, 0, &img), 0);
    for (uint64_t off = 0; off < 20 * MIB; off += MIB)
        assert_int_equal(blk_write(img, off + 100, data + off + 100, MIB - 100), 0);
    for (uint64_t off = 0; off < 20 * MIB; off += MIB)
        assert_int_equal(blk_write(img, off, data + off, 100), 0);
    harness_image_expect(img, 0, data, size);
    blk_close(img);
    assert_int_not_equal(tst_get_be(path, 48, 8), rt_before);
    harness_image_check_clean(path, BLK_FMT_QCOW2);
    tst_qemu_check(path);
    harness_file_write(flat, data, size);
    assert_int_equal(harness_sh("qemu-img compare -f qcow2 -F raw '%s' '%s'", path, flat), 0);
    free(data);
}

int main(void)
{
    if (harness_log_open("tstBlockQcow2") < 0)
        return 1;
    rt_log_set_stderr_level((enum rt_log_level)-1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_write_reopen, tst_setup, harness_teardown_dir),
        cmocka_unit_test_setup_teardown(test_fixed, tst_setup, harness_teardown_dir),
        cmocka_unit_test_setup_teardown(test_backing_chains, tst_setup, harness_teardown_dir),
        cmocka_unit_test_setup_teardown(test_resize, tst_setup, harness_teardown_dir),
        cmocka_unit_test_setup_teardown(test_discard_reuse, tst_setup, harness_teardown_dir),
        cmocka_unit_test_setup_teardown(test_kill_during_writes, tst_setup, harness_teardown_dir),
        cmocka_unit_test_setup_teardown(test_check_and_repair, tst_setup, harness_teardown_dir),
        cmocka_unit_test_setup_teardown(test_header_bits, tst_setup, harness_teardown_dir),
        cmocka_unit_test_setup_teardown(test_hostile_headers, tst_setup, harness_teardown_dir),
        cmocka_unit_test_setup_teardown(test_refcount_overflow, tst_setup, harness_teardown_dir),
        cmocka_unit_test_setup_teardown(test_qemu_images, tst_setup, harness_teardown_dir),
        cmocka_unit_test_setup_teardown(test_set_backing, tst_setup, harness_teardown_dir),
        cmocka_unit_test_setup_teardown(test_qemu_compressed, tst_setup, harness_teardown_dir),
        cmocka_unit_test_setup_teardown(test_qemu_snapshot, tst_setup, harness_teardown_dir),
        cmocka_unit_test_setup_teardown(test_qemu_small_clusters, tst_setup, harness_teardown_dir),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    if (failed == 0)
        unlink(harness_log_path());
    return failed;
}
