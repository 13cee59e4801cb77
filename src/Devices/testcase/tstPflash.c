/* tstPflash.c - the CFI parallel flash: query, identifier, program/erase, status, read-only code, file persistence, garbage. */
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

#define VARS_BYTES (16u * 4096u)
#define CODE_BYTES (8u * 4096u)
#define VARS_GPA   (0x100000000ULL - CODE_BYTES - VARS_BYTES)
#define CODE_GPA   (0x100000000ULL - CODE_BYTES)

static char g_dir[64];
static char g_vars[128];
static char g_code[128];

static void write_file(const char *path, const uint8_t *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static void read_file_at(const char *path, uint64_t off, void *buf, size_t len)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, buf, len, (off_t)off), (ssize_t)len);
    close(fd);
}

static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof(g_dir), "/tmp/vireo-tstPflash-XXXXXX");
    if (!mkdtemp(g_dir))
        return -1;
    snprintf(g_vars, sizeof(g_vars), "%s/vars.fd", g_dir);
    snprintf(g_code, sizeof(g_code), "%s/code.fd", g_dir);
    static uint8_t buf[VARS_BYTES];
    for (unsigned i = 0; i < VARS_BYTES; i++)
        buf[i] = (uint8_t)(i * 13 + 1);
    write_file(g_vars, buf, VARS_BYTES);
    for (unsigned i = 0; i < CODE_BYTES; i++)
        buf[i] = (uint8_t)(i * 5 + 3);
    write_file(g_code, buf, CODE_BYTES);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(g_vars);
    unlink(g_code);
    rmdir(g_dir);
    return 0;
}

static struct pdm_dev *make_vars(struct vm *vm)
{
    char cfg[256];
    snprintf(cfg, sizeof(cfg), "path=%s,gpa=%llu", g_vars, (unsigned long long)VARS_GPA);
    return harness_dev_create(vm, &g_dev_pflash, "flash1", cfg);
}

static uint8_t rd(struct vm *vm, uint64_t off)
{
    return (uint8_t)mem_mmio_read(vm, VARS_GPA + off, 1);
}

static void wr(struct vm *vm, uint64_t off, uint8_t v)
{
    mem_mmio_write(vm, VARS_GPA + off, v, 1);
}

static uint8_t pattern(uint64_t off)
{
    return (uint8_t)(off * 13 + 1);
}

/* Read-array mode is ROM: the memory map shows host memory at the flash, and reads give the image. */
static void test_array_reads_are_memory(void **state)
{
    (void)state;
    struct vm *vm = harness_vm_create(0);
    make_vars(vm);
    assert_non_null(mem_gpa_to_hva(vm, VARS_GPA, VARS_BYTES, false));
    assert_null(mem_gpa_to_hva(vm, VARS_GPA, 16, true));
    for (uint64_t off = 0; off < VARS_BYTES; off += 777)
        assert_int_equal(rd(vm, off), pattern(off));
    /* A dword read in array mode is four image bytes. */
    uint32_t want = pattern(8) | pattern(9) << 8 | pattern(10) << 16 | (uint32_t)pattern(11) << 24;
    assert_int_equal(mem_mmio_read(vm, VARS_GPA + 8, 4), want);
    harness_vm_destroy(vm);
}

/* CFI query (0x98) and identifier (0x90) modes, and back to array mode with 0xff. */
static void test_cfi_query_and_id(void **state)
{
    (void)state;
    struct vm *vm = harness_vm_create(0);
    make_vars(vm);
    wr(vm, 0x55, 0x98);
    assert_null(mem_gpa_to_hva(vm, VARS_GPA, 16, false)); /* command mode: reads trap to the device */
    assert_int_equal(rd(vm, 0x10), 'Q');
    assert_int_equal(rd(vm, 0x11), 'R');
    assert_int_equal(rd(vm, 0x12), 'Y');
    assert_int_equal(rd(vm, 0x13), 0x01); /* Intel/Sharp command set */
    assert_int_equal(rd(vm, 0x14), 0x00);
    assert_int_equal(rd(vm, 0x27), 16);   /* 2^16 bytes */
    assert_int_equal(rd(vm, 0x2c), 1);    /* one erase block region */
    assert_int_equal(rd(vm, 0x2d), VARS_BYTES / 4096 - 1);
    assert_int_equal(rd(vm, 0x2e), 0);
    assert_int_equal(rd(vm, 0x2f), 0x10); /* 4 KiB blocks (in 256-byte units) */
    assert_int_equal(rd(vm, 0x30), 0x00);
    assert_int_equal(rd(vm, 0xf0), 0);    /* past the table */
    wr(vm, 0, 0x90);
    assert_int_equal(rd(vm, 0), 0x89);
    assert_int_equal(rd(vm, 1), 0x18);
    assert_int_equal(rd(vm, 0x1002), 0);  /* block lock state: unlocked */
    wr(vm, 0, 0xff);
    assert_non_null(mem_gpa_to_hva(vm, VARS_GPA, 16, false));
    assert_int_equal(rd(vm, 0x10), pattern(0x10));
    harness_vm_destroy(vm);
}

/* The sequence OVMF's QemuFlashDetected uses: 0x50 leaves array data readable, 0x70 then reads exactly 0x00. */
static void test_ovmf_detection_sequence(void **state)
{
    (void)state;
    struct vm *vm = harness_vm_create(0);
    make_vars(vm);
    uint8_t orig = rd(vm, 0);
    wr(vm, 0, 0x50);
    assert_int_equal(rd(vm, 0), orig);
    wr(vm, 0, 0x70);
    assert_int_equal(rd(vm, 0), 0x00);
    wr(vm, 0, 0xff);
    assert_int_equal(rd(vm, 0), orig);
    harness_vm_destroy(vm);
}

/* Program (0x10 and 0x40) only clears bits; status mode follows with bit 7 set; the file has the result at once. */
static void test_program_clears_bits_and_persists(void **state)
{
    (void)state;
    struct vm *vm = harness_vm_create(0);
    make_vars(vm);
    uint64_t off = 0x2345;
    uint8_t before = rd(vm, off);
    wr(vm, off, 0x10);
    wr(vm, off, 0x0f);
    assert_int_equal(rd(vm, off) & 0x80, 0x80); /* status, ready */
    wr(vm, off + 1, 0x40);
    wr(vm, off + 1, 0x00);
    wr(vm, 0, 0xff);
    assert_int_equal(rd(vm, off), before & 0x0f);
    assert_int_equal(rd(vm, off + 1), 0x00);
    uint8_t file[2];
    read_file_at(g_vars, off, file, 2);
    assert_int_equal(file[0], before & 0x0f);
    assert_int_equal(file[1], 0x00);
    /* Programming 0xff over a programmed byte changes nothing: only erase sets bits. */
    wr(vm, off + 1, 0x10);
    wr(vm, off + 1, 0xff);
    wr(vm, 0, 0xff);
    assert_int_equal(rd(vm, off + 1), 0x00);
    /* A word program writes both bytes. */
    wr(vm, 0x3000, 0x40);
    mem_mmio_write(vm, VARS_GPA + 0x3000, 0x1234, 2);
    wr(vm, 0, 0xff);
    assert_int_equal(rd(vm, 0x3000), pattern(0x3000) & 0x34);
    assert_int_equal(rd(vm, 0x3001), pattern(0x3001) & 0x12);
    harness_vm_destroy(vm);
}

/* Block erase sets one 4 KiB block to 0xff (in memory and file), neighbours untouched; a wrong confirm is an error. */
static void test_erase_block(void **state)
{
    (void)state;
    struct vm *vm = harness_vm_create(0);
    make_vars(vm);
    wr(vm, 0x5123, 0x20);
    wr(vm, 0x5123, 0xd0);
    assert_int_equal(rd(vm, 0x5000), 0x80); /* status after erase: ready, no error */
    wr(vm, 0, 0xff);
    for (uint64_t off = 0x5000; off < 0x6000; off += 97)
        assert_int_equal(rd(vm, off), 0xff);
    assert_int_equal(rd(vm, 0x4fff), pattern(0x4fff));
    assert_int_equal(rd(vm, 0x6000), pattern(0x6000));
    uint8_t file[4096];
    read_file_at(g_vars, 0x5000, file, sizeof(file));
    for (unsigned i = 0; i < sizeof(file); i++)
        assert_int_equal(file[i], 0xff);
    read_file_at(g_vars, 0x6000, file, 1);
    assert_int_equal(file[0], pattern(0x6000));
    /* Erase followed by anything but confirm: sequence error (bits 5 and 4), nothing erased; 0x50 clears it. */
    wr(vm, 0x7000, 0x20);
    wr(vm, 0x7000, 0xff);
    assert_int_equal(rd(vm, 0x7000) & 0x30, 0x30);
    wr(vm, 0, 0x50);
    assert_int_equal(rd(vm, 0x7000), pattern(0x7000));
    wr(vm, 0, 0x70);
    assert_int_equal(rd(vm, 0), 0x00);
    wr(vm, 0, 0xff);
    harness_vm_destroy(vm);
}

/* What a guest wrote is in the file when the VM goes, and a new VM on the same file sees it. */
static void test_persistence_across_vms(void **state)
{
    (void)state;
    struct vm *vm = harness_vm_create(0);
    make_vars(vm);
    wr(vm, 0x9000, 0x20);
    wr(vm, 0x9000, 0xd0);
    const char token[] = "VIREO";
    for (unsigned i = 0; i < sizeof(token); i++) {
        wr(vm, 0x9000 + i, 0x10);
        wr(vm, 0x9000 + i, (uint8_t)token[i]);
    }
    wr(vm, 0x9000, 0xff);
    /* The sync timer flushes within 100 ms of virtual time; the data is already in the file before it. */
    harness_step_ns(vm, 200000000ULL);
    harness_vm_destroy(vm);
    vm = harness_vm_create(0);
    make_vars(vm);
    for (unsigned i = 0; i < sizeof(token); i++)
        assert_int_equal(rd(vm, 0x9000 + i), (uint8_t)token[i]);
    assert_int_equal(rd(vm, 0x9000 + sizeof(token)), 0xff);
    harness_vm_destroy(vm);
}

/* The code flash refuses writes: no mode change, memory and file untouched. */
static void test_readonly_code_refuses_writes(void **state)
{
    (void)state;
    struct vm *vm = harness_vm_create(0);
    char cfg[256];
    snprintf(cfg, sizeof(cfg), "path=%s,readonly=1", g_code);
    harness_dev_create(vm, &g_dev_pflash, "flash0", cfg);
    assert_int_equal(mem_mmio_read(vm, CODE_GPA + 0x10, 1), (uint8_t)(0x10 * 5 + 3));
    mem_mmio_write(vm, CODE_GPA + 0x10, 0x20, 1);
    mem_mmio_write(vm, CODE_GPA + 0x10, 0xd0, 1);
    mem_mmio_write(vm, CODE_GPA + 0x11, 0x10, 1);
    mem_mmio_write(vm, CODE_GPA + 0x11, 0x00, 1);
    mem_mmio_write(vm, CODE_GPA + 0x12, 0x98, 1);
    assert_non_null(mem_gpa_to_hva(vm, CODE_GPA, 16, false));
    assert_int_equal(mem_mmio_read(vm, CODE_GPA + 0x10, 1), (uint8_t)(0x10 * 5 + 3));
    assert_int_equal(mem_mmio_read(vm, CODE_GPA + 0x11, 1), (uint8_t)(0x11 * 5 + 3));
    assert_int_equal(mem_mmio_read(vm, CODE_GPA + 0x12, 1), (uint8_t)(0x12 * 5 + 3));
    /* The reset vector's page (the last one below 4 GiB) shows the image's end. */
    assert_int_equal(mem_mmio_read(vm, 0xfffffff0, 1), (uint8_t)((CODE_BYTES - 16) * 5 + 3));
    uint8_t b;
    read_file_at(g_code, 0x10, &b, 1);
    assert_int_equal(b, (uint8_t)(0x10 * 5 + 3));
    harness_vm_destroy(vm);
}

/* Random command and data bytes at random offsets and sizes never crash and never set a bit in the file. */
static void test_garbage_commands(void **state)
{
    (void)state;
    struct vm *vm = harness_vm_create(0);
    make_vars(vm);
    uint32_t seed = 0x9e3779b9;
    for (unsigned i = 0; i < 20000; i++) {
        uint32_t r = harness_rand(&seed);
        uint64_t off = harness_rand(&seed) % (VARS_BYTES + 64);
        unsigned size = 1u << (r & 3);
        /* Erase commands are left out so the check below (bits only go from 1 to 0) holds. */
        uint64_t v = harness_rand(&seed);
        if ((uint8_t)v == 0x20)
            v ^= 1;
        if (r & 0x10)
            mem_mmio_write(vm, VARS_GPA + off, v, size);
        else
            (void)mem_mmio_read(vm, VARS_GPA + off, size);
    }
    /* Writes past the end are ignored; the device still answers and reads back to array mode. */
    mem_mmio_write(vm, VARS_GPA + VARS_BYTES + 4, 0x98, 1);
    wr(vm, 0, 0xff);
    wr(vm, 0, 0xff); /* a program waiting for data may have taken the first */
    static uint8_t file[VARS_BYTES];
    read_file_at(g_vars, 0, file, VARS_BYTES);
    for (unsigned i = 0; i < VARS_BYTES; i++) {
        assert_int_equal(file[i] & ~pattern(i), 0);
        assert_int_equal(rd(vm, i), file[i]);
    }
    assert_int_equal(harness_dev_save_reset_load(pdm_dev_find(vm, "flash1")), 0);
    assert_int_equal(rd(vm, 0x100), file[0x100]);
    harness_vm_destroy(vm);
}

/* Bad images and configuration fail construction with nothing changed on disk. */
static void test_bad_images(void **state)
{
    (void)state;
    struct vm *vm = harness_vm_create(0);
    char cfg[256];
    struct pdm_dev *dev = NULL;
    struct stat st_before, st_after;
    assert_int_equal(stat(g_vars, &st_before), 0);
    snprintf(cfg, sizeof(cfg), "path=%s/missing.fd", g_dir);
    assert_int_equal(harness_dev_try_create(vm, &g_dev_pflash, "f", cfg, &dev), VERR_FILE_NOT_FOUND);
    char odd[160];
    snprintf(odd, sizeof(odd), "%s/odd.fd", g_dir);
    uint8_t junk[5000] = { 0 };
    write_file(odd, junk, sizeof(junk));
    snprintf(cfg, sizeof(cfg), "path=%s", odd);
    assert_int_equal(harness_dev_try_create(vm, &g_dev_pflash, "f2", cfg, &dev), VERR_BAD_FORMAT);
    unlink(odd);
    assert_int_equal(harness_dev_try_create(vm, &g_dev_pflash, "f3", "gpa=4096", &dev), VERR_CFG_BAD_VALUE);
    snprintf(cfg, sizeof(cfg), "path=%s,gpa=4294963200", g_vars); /* would cross 4 GiB */
    assert_int_equal(harness_dev_try_create(vm, &g_dev_pflash, "f4", cfg, &dev), VERR_CFG_BAD_VALUE);
    snprintf(cfg, sizeof(cfg), "path=%s,color=blue", g_vars);
    assert_int_equal(harness_dev_try_create(vm, &g_dev_pflash, "f5", cfg, &dev), VERR_CFG_UNKNOWN_KEY);
    /* A second writable user of the same store (another VM) is refused. */
    make_vars(vm);
    snprintf(cfg, sizeof(cfg), "path=%s,gpa=%llu", g_vars, (unsigned long long)(VARS_GPA - VARS_BYTES));
    assert_int_equal(harness_dev_try_create(vm, &g_dev_pflash, "f6", cfg, &dev), VERR_BUSY);
    harness_vm_destroy(vm);
    assert_int_equal(stat(g_vars, &st_after), 0);
    assert_int_equal(st_after.st_size, st_before.st_size);
    uint8_t b;
    read_file_at(g_vars, 0, &b, 1);
    assert_int_equal(b, pattern(0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_array_reads_are_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cfi_query_and_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ovmf_detection_sequence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_program_clears_bits_and_persists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_erase_block, setup, teardown),
        cmocka_unit_test_setup_teardown(test_persistence_across_vms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readonly_code_refuses_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_commands, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_images, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
