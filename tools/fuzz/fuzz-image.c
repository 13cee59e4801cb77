/* fuzz-image.c - libFuzzer target: the input as an image file of format FUZZ_FORMAT, opened, read, mapped, checked. */

/*
 * Built by tests/fuzz-images.sh once per format with -DFUZZ_FORMAT=BLK_FMT_xxx (and
 * once with BLK_FMT_AUTO, which fuzzes probing too).  Each input is written to one
 * file in a private temporary folder and goes through what a user's image goes
 * through: blk_open (read-only, no backing chain), reads at the start, the end and
 * a few places between, a readv, block status walks, info, blk_check.  Errors are
 * expected and ignored; crashes, sanitizer reports, leaks, hangs and broken API
 * promises (abort() below) are what the fuzzer reports.  However large a size an
 * image declares, only a bounded number of calls is made, so a slow input is a
 * finding too (libFuzzer's -timeout).
 */

#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vireo/block.h"
#include "vireo/rt.h"

#ifndef FUZZ_FORMAT
#define FUZZ_FORMAT BLK_FMT_AUTO
#endif

#define FUZZ_BUF_BYTES (192u * 1024)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char g_dir[PATH_MAX];
static char g_path[PATH_MAX];
static uint8_t *g_buf;

static void fuzz_cleanup(void)
{
    unlink(g_path);
    rmdir(g_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    /* Every rejected input would log a line: keep stderr for the fuzzer's own reports unless asked. */
    if (!getenv("FUZZ_VERBOSE"))
        rt_log_set_stderr_level((enum rt_log_level) - 1);
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof(g_dir), "%s/vireo-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g_dir)) {
        perror("fuzz-image: mkdtemp");
        exit(1);
    }
    /* The name a descriptor (VMDK) can use to point an extent at the input itself. */
    snprintf(g_path, sizeof(g_path), "%s/image", g_dir);
    g_buf = malloc(FUZZ_BUF_BYTES);
    if (!g_buf)
        exit(1);
    atexit(fuzz_cleanup);
    return 0;
}

static void fuzz_write_input(const uint8_t *data, size_t size)
{
    int fd = open(g_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        perror("fuzz-image: open");
        exit(1);
    }
    size_t done = 0;
    while (done < size) {
        ssize_t n = write(fd, data + done, size - done);
        if (n <= 0) {
            perror("fuzz-image: write");
            exit(1);
        }
        done += (size_t)n;
    }
    close(fd);
}

static void fuzz_read(struct blk_image *img, uint64_t size, uint64_t offset, size_t len)
{
    if (offset >= size)
        return;
    len = (size_t)RT_MIN((uint64_t)len, size - offset);
    int rc = blk_read(img, offset, g_buf, len);
    if (rc > 0)
        abort(); /* statuses are 0 or negative */
}

/* Walks at most 16 runs of block status from offset; each answer must be a run inside the range asked about. */
static void fuzz_status(struct blk_image *img, uint64_t size, uint64_t offset)
{
    for (unsigned i = 0; i < 16 && offset < size; i++) {
        bool allocated;
        uint64_t n = 0;
        if (blk_block_status(img, offset, size - offset, &allocated, &n) < 0)
            return;
        if (n == 0 || n > size - offset)
            abort();
        offset += n;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_write_input(data, size);
    struct blk_image *img = NULL;
    if (blk_open(g_path, FUZZ_FORMAT, BLK_OPEN_READONLY | BLK_OPEN_NO_BACKING, &img) == 0) {
        uint64_t disk = blk_size_bytes(img);
        if (disk > BLK_MAX_SIZE_BYTES)
            abort();
        fuzz_read(img, disk, 0, 4096);
        fuzz_read(img, disk, 512 * 3 + 7, 70000); /* unaligned, across grains and clusters */
        for (unsigned k = 1; k < 8; k++)
            fuzz_read(img, disk, disk / 8 * k, 1 + k * 9000);
        if (disk >= 4096)
            fuzz_read(img, disk, disk - 4096, 4096);
        fuzz_read(img, disk, disk > 1 ? disk - 1 : 0, 1);
        if (disk >= 8192) {
            struct iovec iov[3] = {{g_buf, 1000}, {g_buf + 4096, 3000}, {g_buf + 16384, 192}};
            if (blk_readv(img, disk / 3, iov, 3) > 0)
                abort();
        }
        uint8_t probe[512];
        if (blk_read(img, disk, probe, 1) != VERR_OUT_OF_RANGE)
            abort(); /* one byte past the end */
        fuzz_status(img, disk, 0);
        fuzz_status(img, disk, disk / 2);
        struct blk_info info;
        blk_get_info(img, &info);
        blk_close(img);
    }
    struct blk_check_result res;
    blk_check(g_path, FUZZ_FORMAT, false, &res);
    return 0;
}
