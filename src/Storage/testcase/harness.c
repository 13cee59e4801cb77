/* harness.c - Storage test harness: temp folders, the searchable log, shell commands, file bytes and image helpers. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static char g_log_path[64];

int harness_dir_create(const char *name, char *dir, size_t size)
{
    snprintf(dir, size, "/tmp/%s.XXXXXX", name);
    return mkdtemp(dir) ? 0 : -1;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

void harness_dir_remove(const char *path)
{
    nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int harness_setup_dir(void **state, const char *name)
{
    char dir[64];
    if (harness_dir_create(name, dir, sizeof(dir)) < 0)
        return -1;
    *state = strdup(dir);
    return *state ? 0 : -1;
}

int harness_teardown_dir(void **state)
{
    harness_dir_remove(*state);
    free(*state);
    return 0;
}

char *harness_path(const char *dir, const char *name)
{
    static char bufs[16][512];
    static unsigned next;
    char *buf = bufs[next++ % RT_ARRAY_SIZE(bufs)];
    snprintf(buf, sizeof(bufs[0]), "%s/%s", dir, name);
    return buf;
}

int harness_log_open(const char *name)
{
    snprintf(g_log_path, sizeof(g_log_path), "/tmp/%s-%d.log", name, (int)getpid());
    return rt_log_open_file(g_log_path);
}

const char *harness_log_path(void)
{
    return g_log_path;
}

void harness_log_reset(void)
{
    assert_int_equal(truncate(g_log_path, 0), 0);
}

bool harness_log_contains(const char *text)
{
    void *data;
    size_t len;
    assert_int_equal(rt_file_read_all(g_log_path, 1 << 20, &data, &len), 0);
    bool found = strstr(data, text) != NULL;
    free(data);
    return found;
}

int harness_sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    char full[2200];
    if (g_log_path[0])
        snprintf(full, sizeof(full), "%s >>%s 2>&1", cmd, g_log_path);
    else
        snprintf(full, sizeof(full), "%s", cmd);
    int st = system(full);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void harness_need_qemu(void)
{
    if (harness_sh("qemu-img --version >/dev/null 2>&1") != 0 || harness_sh("qemu-io --version >/dev/null 2>&1") != 0)
        fail_msg("qemu-img/qemu-io are missing: install Debian's qemu-utils package");
}

void harness_file_write(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(close(fd), 0);
}

void harness_file_copy(const char *from, const char *to)
{
    assert_int_equal(harness_sh("cp '%s' '%s'", from, to), 0);
}

uint64_t harness_file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (uint64_t)st.st_size;
}

void harness_file_peek(const char *path, uint64_t off, void *data, size_t len)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, data, len, (off_t)off), (ssize_t)len);
    close(fd);
}

void harness_file_poke(const char *path, uint64_t off, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, data, len, (off_t)off), (ssize_t)len);
    close(fd);
}

uint32_t harness_file_peek_le32(const char *path, uint64_t off)
{
    uint8_t b[4];
    harness_file_peek(path, off, b, 4);
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

void harness_file_poke_le32(const char *path, uint64_t off, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    harness_file_poke(path, off, b, 4);
}

void harness_file_poke_le64(const char *path, uint64_t off, uint64_t v)
{
    harness_file_poke_le32(path, off, (uint32_t)v);
    harness_file_poke_le32(path, off + 4, (uint32_t)(v >> 32));
}

bool harness_bytes_all(const uint8_t *buf, size_t len, uint8_t v)
{
    for (size_t i = 0; i < len; i++) {
        if (buf[i] != v)
            return false;
    }
    return true;
}

void harness_image_create(const char *path, enum blk_format fmt, uint64_t size, bool fixed, const char *backing)
{
    struct blk_create_params p = {.format = fmt, .size_bytes = size, .fixed = fixed, .backing_path = backing};
    assert_int_equal(blk_create(path, &p), 0);
}

struct blk_image *harness_image_open(const char *path, unsigned flags)
{
    struct blk_image *img = NULL;
    assert_int_equal(blk_open(path, BLK_FMT_AUTO, flags, &img), 0);
    assert_non_null(img);
    return img;
}

void harness_image_expect(struct blk_image *img, uint64_t off, const uint8_t *want, size_t len)
{
    uint8_t *got = malloc(len);
    assert_non_null(got);
    assert_int_equal(blk_read(img, off, got, len), 0);
    assert_memory_equal(got, want, len);
    free(got);
}

void harness_image_check_clean(const char *path, enum blk_format fmt)
{
    struct blk_check_result res;
    assert_int_equal(blk_check(path, fmt, false, &res), 0);
    if (res.errors || res.leaks)
        fail_msg("%s: %u errors, %u leaks: %s", path, res.errors, res.leaks, res.first_problem);
}
