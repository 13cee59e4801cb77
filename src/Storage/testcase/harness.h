/* harness.h - Storage test harness: per-test temp folders, a log file the tests search, shell commands (qemu-img), file bytes and image helpers. */
#ifndef VIREO_STORAGE_HARNESS_H
#define VIREO_STORAGE_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vireo/block.h"
#include "vireo/rt.h"

/* Makes a fresh folder /tmp/<name>.XXXXXX and puts its path in dir (size bytes); 0, or -1 when it cannot. */
int harness_dir_create(const char *name, char *dir, size_t size);
/* Removes path and everything below it. */
void harness_dir_remove(const char *path);
/* cmocka setup and teardown halves: *state becomes a fresh folder's path (malloc'd); teardown removes the folder
 * and frees it. */
int harness_setup_dir(void **state, const char *name);
int harness_teardown_dir(void **state);
/* "<dir>/<name>" in one of 16 static buffers used in turn (no test holds more paths at once). */
char *harness_path(const char *dir, const char *name);

/* Sends the log to /tmp/<name>-<pid>.log (rt_log_open_file), so tests can check that errors name the file;
 * harness_sh appends its commands' output there too.  0 or rt_log_open_file's error. */
int harness_log_open(const char *name);
const char *harness_log_path(void);
void harness_log_reset(void);
bool harness_log_contains(const char *text);

/* Runs a shell command (qemu-img and friends), its output appended to the log when one is open; the exit
 * status, or -1 when it did not exit. */
int harness_sh(const char *fmt, ...) RT_PRINTF(1, 2);
/* Fails the test unless qemu-img and qemu-io (Debian's qemu-utils) are there. */
void harness_need_qemu(void);

/* Whole files and bytes in them; every call asserts that all of it went through. */
void harness_file_write(const char *path, const void *data, size_t len);
void harness_file_copy(const char *from, const char *to);
uint64_t harness_file_size(const char *path);
void harness_file_peek(const char *path, uint64_t off, void *data, size_t len);
void harness_file_poke(const char *path, uint64_t off, const void *data, size_t len);
uint32_t harness_file_peek_le32(const char *path, uint64_t off);
void harness_file_poke_le32(const char *path, uint64_t off, uint32_t v);
void harness_file_poke_le64(const char *path, uint64_t off, uint64_t v);

/* Whether all len bytes of buf are v. */
bool harness_bytes_all(const uint8_t *buf, size_t len, uint8_t v);

/* blk_create of a fmt image at path (backing NULL: none), asserting success. */
void harness_image_create(const char *path, enum blk_format fmt, uint64_t size, bool fixed, const char *backing);
/* blk_open with format probing, asserting success. */
struct blk_image *harness_image_open(const char *path, unsigned flags);
/* Reads len bytes at off and compares them with want. */
void harness_image_expect(struct blk_image *img, uint64_t off, const uint8_t *want, size_t len);
/* blk_check (no repair) finds neither errors nor leaks. */
void harness_image_check_clean(const char *path, enum blk_format fmt);

#endif
