/* tstDebugPort.c - POST code port, SeaBIOS debug console (file and VM log) and the test exit device. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static char g_path[128];
static char g_log_path[128];

static int setup(void **state)
{
    (void)state;
    snprintf(g_path, sizeof(g_path), "/tmp/vireo-tstDebugPort-%d.txt", (int)getpid());
    snprintf(g_log_path, sizeof(g_log_path), "/tmp/vireo-tstDebugPort-%d.log", (int)getpid());
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(g_path);
    unlink(g_log_path);
    return 0;
}

static char *read_text(const char *path)
{
    void *data = NULL;
    size_t len = 0;
    assert_int_equal(rt_file_read_all(path, 1 << 20, &data, &len), 0);
    return data;
}

static void out_string(struct vm *vm, uint16_t port, const char *s)
{
    while (*s)
        harness_outb(vm, port, (uint8_t)*s++);
}

static void test_console_to_file_and_readback(void **state)
{
    (void)state;
    struct vm *vm = harness_vm_create(0);
    char cfg[200];
    snprintf(cfg, sizeof(cfg), "file=%s,bios_log=false", g_path);
    struct pdm_dev *dev = harness_dev_create(vm, &g_dev_debugport, "debugport", cfg);
    (void)dev;
    /* SeaBIOS reads 0xe9 back before it uses the port. */
    assert_int_equal(harness_inb(vm, 0x402), 0xe9);
    out_string(vm, 0x402, "SeaBIOS (version 1.16.2)\r\n");
    out_string(vm, 0x402, "Found 1 cpu(s)\n");
    /* Complete lines are in the file without waiting for close. */
    char *text = read_text(g_path);
    assert_string_equal(text, "SeaBIOS (version 1.16.2)\r\nFound 1 cpu(s)\n");
    free(text);
    out_string(vm, 0x402, "partial");
    harness_vm_destroy(vm);
    text = read_text(g_path);
    assert_string_equal(text, "SeaBIOS (version 1.16.2)\r\nFound 1 cpu(s)\npartial");
    free(text);
}

static void test_console_to_vm_log(void **state)
{
    (void)state;
    assert_int_equal(rt_log_open_file(g_log_path), 0);
    struct vm *vm = harness_vm_create(0);
    harness_dev_create(vm, &g_dev_debugport, "debugport", NULL);
    out_string(vm, 0x402, "Booting from Hard Disk...\r\n");
    /* Control characters are not copied into the log. */
    out_string(vm, 0x402, "bell\a here\n");
    /* A line longer than the buffer is logged in pieces, nothing lost or overrun. */
    for (unsigned i = 0; i < 1000; i++)
        harness_outb(vm, 0x402, (uint8_t)('0' + i % 10));
    harness_outb(vm, 0x402, '\n');
    harness_vm_destroy(vm);
    rt_log_close_file();
    char *text = read_text(g_log_path);
    assert_non_null(strstr(text, "bios: Booting from Hard Disk...\n"));
    assert_non_null(strstr(text, "bios: bell? here\n"));
    assert_non_null(strstr(text, "bios: 0123456789"));
    assert_null(strstr(text, "\a"));
    free(text);
}

static void test_console_log_off(void **state)
{
    (void)state;
    assert_int_equal(rt_log_open_file(g_log_path), 0);
    struct vm *vm = harness_vm_create(0);
    harness_dev_create(vm, &g_dev_debugport, "debugport", "bios_log=false");
    out_string(vm, 0x402, "quiet please\n");
    assert_int_equal(harness_inb(vm, 0x402), 0xe9);
    harness_vm_destroy(vm);
    rt_log_close_file();
    char *text = read_text(g_log_path);
    assert_null(strstr(text, "quiet please"));
    free(text);
}

static void test_post_code(void **state)
{
    (void)state;
    struct vm *vm = harness_vm_create(0);
    struct pdm_dev *dev = harness_dev_create(vm, &g_dev_debugport, "debugport", "post=true");
    harness_outb(vm, 0x80, 0x42);
    assert_int_equal(harness_inb(vm, 0x80), 0x42);
    harness_outb(vm, 0x80, 0xa5);
    assert_int_equal(harness_inb(vm, 0x80), 0xa5);
    /* The latch survives a save/reset/load round trip. */
    assert_int_equal(harness_dev_save_reset_load(dev), 0);
    assert_int_equal(harness_inb(vm, 0x80), 0xa5);
    /* An unknown saved-state version is refused. */
    struct ssm *ssm = NULL;
    uint8_t byte = 1;
    assert_int_equal(ssm_open(&byte, 1, &ssm), 0);
    assert_int_equal(g_dev_debugport.load(dev, ssm, 2), VERR_SSM_VERSION);
    ssm_destroy(ssm);
    harness_vm_destroy(vm);
}

static void test_debugport_bad_config(void **state)
{
    (void)state;
    struct vm *vm = harness_vm_create(0);
    struct pdm_dev *dev = NULL;
    assert_int_equal(harness_dev_try_create(vm, &g_dev_debugport, "d1", "file=/nonexistent/dir/bios.log", &dev),
                     VERR_FILE_NOT_FOUND);
    assert_int_equal(harness_dev_try_create(vm, &g_dev_debugport, "d2", "post=maybe", &dev), VERR_CFG_BAD_VALUE);
    assert_int_equal(harness_dev_try_create(vm, &g_dev_debugport, "d3", "port=0xe9", &dev), VERR_CFG_UNKNOWN_KEY);
    /* The failed instances released their ports: a good one still maps. */
    harness_dev_create(vm, &g_dev_debugport, "d4", NULL);
    assert_int_equal(harness_inb(vm, 0x402), 0xe9);
    harness_vm_destroy(vm);
}

static void test_testexit_dword(void **state)
{
    (void)state;
    struct vm *vm = harness_vm_create(0);
    harness_dev_create(vm, &g_dev_testexit, "testexit", NULL);
    assert_int_equal(harness_inl(vm, 0xf4), 0);
    assert_int_equal(vm_get_state(vm), VM_STATE_CREATED);
    harness_outl(vm, 0xf4, 0x12345678);
    assert_int_equal(vm_get_state(vm), VM_STATE_POWERED_OFF);
    assert_int_equal(vm_wait(vm), 0x78);
    harness_vm_destroy(vm);
}

static void test_testexit_byte_and_word(void **state)
{
    (void)state;
    struct vm *vm = harness_vm_create(0);
    harness_dev_create(vm, &g_dev_testexit, "testexit", "iobase=0x501");
    /* Writes to the other ports of the window do nothing. */
    harness_outb(vm, 0x502, 7);
    harness_outw(vm, 0x503, 7);
    assert_int_equal(vm_get_state(vm), VM_STATE_CREATED);
    harness_outb(vm, 0x501, 3);
    assert_int_equal(vm_wait(vm), 3);
    harness_vm_destroy(vm);

    vm = harness_vm_create(0);
    harness_dev_create(vm, &g_dev_testexit, "testexit", NULL);
    harness_outw(vm, 0xf4, 0x0100);
    assert_int_equal(vm_get_state(vm), VM_STATE_POWERED_OFF);
    assert_int_equal(vm_wait(vm), 0);
    harness_vm_destroy(vm);
}

static void test_testexit_bad_config(void **state)
{
    (void)state;
    struct vm *vm = harness_vm_create(0);
    struct pdm_dev *dev = NULL;
    assert_int_equal(harness_dev_try_create(vm, &g_dev_testexit, "t1", "iobase=0xfffe", &dev), VERR_CFG_BAD_VALUE);
    assert_int_equal(harness_dev_try_create(vm, &g_dev_testexit, "t2", "code=1", &dev), VERR_CFG_UNKNOWN_KEY);
    assert_int_equal(vm_get_state(vm), VM_STATE_CREATED);
    harness_vm_destroy(vm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_console_to_file_and_readback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_console_to_vm_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_console_log_off, setup, teardown),
        cmocka_unit_test_setup_teardown(test_post_code, setup, teardown),
        cmocka_unit_test_setup_teardown(test_debugport_bad_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_testexit_dword, setup, teardown),
        cmocka_unit_test_setup_teardown(test_testexit_byte_and_word, setup, teardown),
        cmocka_unit_test_setup_teardown(test_testexit_bad_config, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
