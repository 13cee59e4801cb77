/* tstFwcfg.c - fw_cfg tests: signature, ID, items, file directory, DMA, DMA errors, saved state, garbage. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "harness.h"

#define RAM_BYTES (1u << 20)
#define DESC_GPA  0x1000u
#define BUF_GPA   0x2000u

#define CTL_ERROR  0x01u
#define CTL_READ   0x02u
#define CTL_SKIP   0x04u
#define CTL_SELECT 0x08u
#define CTL_WRITE  0x10u

static void select_key(struct vm *vm, uint16_t key)
{
    harness_outw(vm, 0x510, key);
}

static void read_data(struct vm *vm, void *buf, size_t len)
{
    uint8_t *p = buf;
    for (size_t i = 0; i < len; i++)
        p[i] = harness_inb(vm, 0x511);
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Writes a FWCfgDmaAccess at desc_gpa and triggers it as SeaBIOS does (two big-endian 32-bit halves). */
static uint32_t dma_run_at(struct vm *vm, uint64_t desc_gpa, uint32_t control, uint32_t length, uint64_t addr)
{
    uint8_t desc[16];
    put_be32(desc, control);
    put_be32(desc + 4, length);
    put_be32(desc + 8, (uint32_t)(addr >> 32));
    put_be32(desc + 12, (uint32_t)addr);
    assert_int_equal(mem_write(vm, desc_gpa, desc, sizeof(desc)), 0);
    harness_outl(vm, 0x514, __builtin_bswap32((uint32_t)(desc_gpa >> 32)));
    harness_outl(vm, 0x518, __builtin_bswap32((uint32_t)desc_gpa));
    uint8_t out[4];
    assert_int_equal(mem_read(vm, desc_gpa, out, sizeof(out)), 0);
    return be32(out);
}

static uint32_t dma_run(struct vm *vm, uint32_t control, uint32_t length, uint64_t addr)
{
    return dma_run_at(vm, DESC_GPA, control, length, addr);
}

/* Looks a file up in the directory read through the data port; returns its key, 0 when absent. */
static uint16_t find_file(struct vm *vm, const char *name, uint32_t *size)
{
    uint8_t hdr[4];
    select_key(vm, FWCFG_FILE_DIR);
    read_data(vm, hdr, sizeof(hdr));
    uint32_t count = be32(hdr);
    for (uint32_t i = 0; i < count; i++) {
        uint8_t e[64];
        read_data(vm, e, sizeof(e));
        if (strncmp((const char *)e + 8, name, 56) == 0) {
            if (size)
                *size = be32(e);
            return (uint16_t)(e[4] << 8 | e[5]);
        }
    }
    return 0;
}

static void test_signature_and_id(void **state)
{
    (void)state;
    struct vm *vm = harness_vm_create(0);
    harness_dev_create(vm, &g_dev_fwcfg, "fwcfg", NULL);
    char sig[5] = {0};
    select_key(vm, FWCFG_SIGNATURE);
    read_data(vm, sig, 4);
    assert_string_equal(sig, "QEMU");
    /* Past the end of an item the data port reads 0. */
    assert_int_equal(harness_inb(vm, 0x511), 0);
    assert_int_equal(harness_inb(vm, 0x511), 0);
    /* Selecting again restarts at offset 0. */
    select_key(vm, FWCFG_SIGNATURE);
    assert_int_equal(harness_inb(vm, 0x511), 'Q');

    uint8_t id[4];
    select_key(vm, FWCFG_ID);
    read_data(vm, id, sizeof(id));
    assert_int_equal(id[0], 3);
    assert_int_equal(id[1] | id[2] | id[3], 0);

    /* The DMA register reads "QEMU CFG" as a big-endian 64-bit value. */
    uint32_t hi = harness_inl(vm, 0x514), lo = harness_inl(vm, 0x518);
    uint64_t sig64 = (uint64_t)__builtin_bswap32(hi) << 32 | __builtin_bswap32(lo);
    assert_true(sig64 == 0x51454d5520434647ULL);
    assert_int_equal(harness_inb(vm, 0x514), 'Q');
    assert_int_equal(harness_inb(vm, 0x51b), 'G');

    /* An absent key reads zeros; the write bit in the selector is ignored. */
    select_key(vm, 0x3000);
    assert_int_equal(harness_inb(vm, 0x511), 0);
    select_key(vm, 0x4000 | FWCFG_SIGNATURE);
    assert_int_equal(harness_inb(vm, 0x511), 'Q');
    /* Data-port writes are ignored (QEMU v2.4 and later). */
    select_key(vm, FWCFG_SIGNATURE);
    harness_outb(vm, 0x511, 'X');
    assert_int_equal(harness_inb(vm, 0x511), 'Q');
    harness_vm_destroy(vm);
}

static void test_no_dma(void **state)
{
    (void)state;
    struct vm *vm = harness_vm_create(0);
    harness_dev_create(vm, &g_dev_fwcfg, "fwcfg", "dma=0");
    select_key(vm, FWCFG_ID);
    assert_int_equal(harness_inb(vm, 0x511), 1);
    assert_int_equal(harness_inl(vm, 0x514), 0xffffffffu);
    struct pdm_dev *dev;
    assert_int_equal(harness_dev_try_create(vm, &g_dev_fwcfg, "fwcfg2", "bogus=1", &dev), VERR_CFG_UNKNOWN_KEY);
    harness_vm_destroy(vm);
}

static void test_items(void **state)
{
    (void)state;
    struct vm *vm = harness_vm_create(0);
    struct pdm_dev *f = harness_dev_create(vm, &g_dev_fwcfg, "fwcfg", NULL);
    assert_int_equal(fwcfg_set_u64(f, FWCFG_RAM_SIZE, 0x0123456789abcdefULL), 0);
    assert_int_equal(fwcfg_set_u16(f, FWCFG_NB_CPUS, 0x0402), 0);
    assert_int_equal(fwcfg_set_u32(f, FWCFG_E820_TABLE, 0xa1b2c3d4), 0);
    uint8_t b[8];
    select_key(vm, FWCFG_RAM_SIZE);
    read_data(vm, b, 8);
    static const uint8_t ram_le[8] = {0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01};
    assert_memory_equal(b, ram_le, 8);
    select_key(vm, FWCFG_NB_CPUS);
    read_data(vm, b, 3);
    assert_int_equal(b[0], 0x02);
    assert_int_equal(b[1], 0x04);
    assert_int_equal(b[2], 0);
    select_key(vm, FWCFG_E820_TABLE);
    read_data(vm, b, 4);
    assert_int_equal(b[0], 0xd4);
    assert_int_equal(b[3], 0xa1);

    /* Replacing an item. */
    assert_int_equal(fwcfg_set_item(f, FWCFG_NB_CPUS, "\x07", 1), 0);
    select_key(vm, FWCFG_NB_CPUS);
    assert_int_equal(harness_inb(vm, 0x511), 7);
    assert_int_equal(harness_inb(vm, 0x511), 0);
    /* An empty item. */
    assert_int_equal(fwcfg_set_item(f, FWCFG_KERNEL_CMDLINE, NULL, 0), 0);
    select_key(vm, FWCFG_KERNEL_CMDLINE);
    assert_int_equal(harness_inb(vm, 0x511), 0);

    /* Keys that belong to the directory and files, or carry the write bit, are refused. */
    assert_int_equal(fwcfg_set_u32(f, FWCFG_FILE_DIR, 0), VERR_INVALID_PARAMETER);
    assert_int_equal(fwcfg_set_u32(f, FWCFG_FILE_FIRST, 0), VERR_INVALID_PARAMETER);
    assert_int_equal(fwcfg_set_u32(f, 0x4001, 0), VERR_INVALID_PARAMETER);
    assert_int_equal(fwcfg_set_item(f, FWCFG_UUID, NULL, 4), VERR_INVALID_PARAMETER);
    /* Not an fw_cfg instance. */
    struct pdm_dev *other = harness_dev_create(vm, &g_dev_i440fx, "pci", NULL);
    assert_int_equal(fwcfg_set_u32(other, FWCFG_ID, 0), VERR_INVALID_PARAMETER);
    harness_vm_destroy(vm);
}

static void test_file_dir(void **state)
{
    (void)state;
    struct vm *vm = harness_vm_create(0);
    struct pdm_dev *f = harness_dev_create(vm, &g_dev_fwcfg, "fwcfg", NULL);
    /* An empty directory first. */
    uint8_t hdr[4];
    select_key(vm, FWCFG_FILE_DIR);
    read_data(vm, hdr, 4);
    assert_int_equal(be32(hdr), 0);

    assert_int_equal(fwcfg_add_file(f, "etc/zeta", "zzz", 3), 0);
    assert_int_equal(fwcfg_add_file(f, "bootorder", "/pci@i0cf8/*@1\n", 15), 0);
    assert_int_equal(fwcfg_add_file(f, "etc/alpha", "alpha!", 6), 0);
    char longname[80];
    memset(longname, 'x', sizeof(longname));
    longname[56] = '\0';
    assert_int_equal(fwcfg_add_file(f, longname, "x", 1), VERR_INVALID_PARAMETER);
    assert_int_equal(fwcfg_add_file(f, "", "x", 1), VERR_INVALID_PARAMETER);
    longname[55] = '\0';
    assert_int_equal(fwcfg_add_file(f, longname, "y", 1), 0);

    select_key(vm, FWCFG_FILE_DIR);
    read_data(vm, hdr, 4);
    assert_int_equal(be32(hdr), 4);
    static const char *const sorted[] = {"bootorder", "etc/alpha", "etc/zeta", NULL};
    static const uint32_t sizes[] = {15, 6, 3};
    static const uint16_t keys[] = {0x21, 0x22, 0x20};
    for (unsigned i = 0; sorted[i]; i++) {
        uint8_t e[64];
        read_data(vm, e, sizeof(e));
        assert_int_equal(be32(e), sizes[i]);
        assert_int_equal(e[4] << 8 | e[5], keys[i]);
        assert_int_equal(e[6] | e[7], 0);
        assert_string_equal((const char *)e + 8, sorted[i]);
        for (size_t k = 8 + strlen(sorted[i]); k < 64; k++)
            assert_int_equal(e[k], 0);
    }
    uint8_t last[64];
    read_data(vm, last, sizeof(last));
    assert_memory_equal(last + 8, longname, 55);
    assert_int_equal(last[63], 0);

    /* Select by name through the directory. */
    uint32_t size = 0;
    uint16_t key = find_file(vm, "etc/alpha", &size);
    assert_int_equal(key, 0x22);
    char buf[8] = {0};
    select_key(vm, key);
    read_data(vm, buf, size);
    assert_string_equal(buf, "alpha!");
    assert_int_equal(find_file(vm, "etc/missing", NULL), 0);

    /* Adding a file again replaces its content and size, keeping its key. */
    assert_int_equal(fwcfg_add_file(f, "etc/alpha", "A", 1), 0);
    key = find_file(vm, "etc/alpha", &size);
    assert_int_equal(key, 0x22);
    assert_int_equal(size, 1);
    select_key(vm, key);
    assert_int_equal(harness_inb(vm, 0x511), 'A');
    assert_int_equal(harness_inb(vm, 0x511), 0);
    harness_vm_destroy(vm);
}

static void test_dma_read_skip_select(void **state)
{
    (void)state;
    struct vm *vm = harness_vm_create(RAM_BYTES);
    struct pdm_dev *f = harness_dev_create(vm, &g_dev_fwcfg, "fwcfg", NULL);
    static const char content[] = "0123456789abcdef";
    assert_int_equal(fwcfg_add_file(f, "etc/test", content, 16), 0);
    uint16_t key = find_file(vm, "etc/test", NULL);
    assert_int_not_equal(key, 0);

    /* Select + read. */
    uint8_t buf[32];
    memset(buf, 0xaa, sizeof(buf));
    assert_int_equal(mem_write(vm, BUF_GPA, buf, sizeof(buf)), 0);
    assert_int_equal(dma_run(vm, (uint32_t)key << 16 | CTL_SELECT | CTL_READ, 4, BUF_GPA), 0);
    assert_int_equal(mem_read(vm, BUF_GPA, buf, 5), 0);
    assert_memory_equal(buf, "0123", 4);
    assert_int_equal(buf[4], 0xaa);
    /* The offset advanced: skip 2, then the data port continues there. */
    assert_int_equal(dma_run(vm, CTL_SKIP, 2, 0), 0);
    assert_int_equal(harness_inb(vm, 0x511), '6');
    /* Read across the end: the rest of the item, then zeros. */
    assert_int_equal(dma_run(vm, CTL_READ, 16, BUF_GPA), 0);
    assert_int_equal(mem_read(vm, BUF_GPA, buf, 17), 0);
    assert_memory_equal(buf, "789abcdef", 9);
    for (unsigned i = 9; i < 16; i++)
        assert_int_equal(buf[i], 0);
    assert_int_equal(buf[16], 0xaa);
    /* Past the end a skip is harmless and the data port reads 0. */
    assert_int_equal(dma_run(vm, CTL_SKIP, 0xffffffffu, 0), 0);
    assert_int_equal(harness_inb(vm, 0x511), 0);

    /* Select + skip + read of the signature. */
    assert_int_equal(dma_run(vm, (uint32_t)FWCFG_SIGNATURE << 16 | CTL_SELECT | CTL_SKIP, 1, 0), 0);
    assert_int_equal(dma_run(vm, CTL_READ, 3, BUF_GPA), 0);
    assert_int_equal(mem_read(vm, BUF_GPA, buf, 3), 0);
    assert_memory_equal(buf, "EMU", 3);
    /* A control word with no operation just completes. */
    assert_int_equal(dma_run(vm, 0, 100, BUF_GPA), 0);
    /* A zero-length read completes without touching memory. */
    assert_int_equal(dma_run(vm, CTL_READ, 0, 0xfff00000u), 0);
    /* A descriptor and buffer high in RAM, the high address half written as zero. */
    assert_int_equal(dma_run_at(vm, RAM_BYTES - 16, (uint32_t)key << 16 | CTL_SELECT | CTL_READ, 16, RAM_BYTES - 32),
                     0);
    assert_int_equal(mem_read(vm, RAM_BYTES - 32, buf, 16), 0);
    assert_memory_equal(buf, content, 16);
    harness_vm_destroy(vm);
}

static void test_dma_errors(void **state)
{
    (void)state;
    struct vm *vm = harness_vm_create(RAM_BYTES);
    struct pdm_dev *f = harness_dev_create(vm, &g_dev_fwcfg, "fwcfg", NULL);
    assert_int_equal(fwcfg_add_file(f, "etc/test", "data", 4), 0);
    uint32_t sel = 0x20u << 16 | CTL_SELECT;

    /* Destination outside RAM, crossing its end, wrapping, or huge: error bit, nothing written. */
    assert_int_equal(dma_run(vm, sel | CTL_READ, 4, 0x10000000u) & CTL_ERROR, CTL_ERROR);
    uint8_t tail[4] = {1, 1, 1, 1};
    assert_int_equal(mem_write(vm, RAM_BYTES - 2, tail, 2), 0);
    assert_int_equal(dma_run(vm, sel | CTL_READ, 4, RAM_BYTES - 2) & CTL_ERROR, CTL_ERROR);
    assert_int_equal(mem_read(vm, RAM_BYTES - 2, tail, 2), 0);
    assert_int_equal(tail[0], 1);
    assert_int_equal(tail[1], 1);
    assert_int_equal(dma_run(vm, sel | CTL_READ, 0x100, 0xffffffffffffff80ULL) & CTL_ERROR, CTL_ERROR);
    assert_int_equal(dma_run(vm, sel | CTL_READ, 0xffffffffu, BUF_GPA) & CTL_ERROR, CTL_ERROR);
    /* Writes are refused: no item is writable. */
    assert_int_equal(dma_run(vm, sel | CTL_WRITE, 4, BUF_GPA), CTL_ERROR);
    select_key(vm, 0x20);
    assert_int_equal(harness_inb(vm, 0x511), 'd');
    /* After an error the device still works. */
    assert_int_equal(dma_run(vm, sel | CTL_READ, 4, BUF_GPA), 0);
    char buf[4];
    assert_int_equal(mem_read(vm, BUF_GPA, buf, 4), 0);
    assert_memory_equal(buf, "data", 4);

    /* A descriptor outside RAM is ignored without a crash; the address register resets after each trigger. */
    harness_outl(vm, 0x514, __builtin_bswap32(0x7fu));
    harness_outl(vm, 0x518, __builtin_bswap32(0xfffff000u));
    harness_outl(vm, 0x518, __builtin_bswap32(0xfffff000u));
    /* A descriptor straddling the end of RAM too. */
    harness_outl(vm, 0x518, __builtin_bswap32(RAM_BYTES - 8));
    /* Odd widths to the DMA register do nothing. */
    harness_outb(vm, 0x518, 0x10);
    harness_outw(vm, 0x516, 0x1000);
    assert_int_equal(dma_run(vm, sel | CTL_READ, 2, BUF_GPA), 0);
    harness_vm_destroy(vm);
}

static void test_save_load(void **state)
{
    (void)state;
    struct vm *vm = harness_vm_create(0);
    struct pdm_dev *f = harness_dev_create(vm, &g_dev_fwcfg, "fwcfg", NULL);
    assert_int_equal(fwcfg_add_file(f, "etc/test", "abcdef", 6), 0);
    select_key(vm, 0x20);
    assert_int_equal(harness_inb(vm, 0x511), 'a');
    assert_int_equal(harness_inb(vm, 0x511), 'b');
    assert_int_equal(harness_dev_save_reset_load(f), 0);
    assert_int_equal(harness_inb(vm, 0x511), 'c');

    /* Reset selects the signature. */
    g_dev_fwcfg.reset(f);
    assert_int_equal(harness_inb(vm, 0x511), 'Q');

    /* A saved offset past the item's end reads zeros; versions above 1 and truncation are refused. */
    struct ssm *ssm;
    assert_int_equal(ssm_create(&ssm), 0);
    ssm_put_u16(ssm, 0x20);
    ssm_put_u32(ssm, 0xffffffffu);
    uint8_t addr[8] = {0};
    ssm_put_bytes(ssm, addr, sizeof(addr));
    size_t len;
    const void *data = ssm_data(ssm, &len);
    struct ssm *in;
    assert_int_equal(ssm_open(data, len, &in), 0);
    assert_int_equal(g_dev_fwcfg.load(f, in, 1), 0);
    ssm_destroy(in);
    assert_int_equal(harness_inb(vm, 0x511), 0);
    assert_int_equal(ssm_open(data, len, &in), 0);
    assert_int_equal(g_dev_fwcfg.load(f, in, 2), VERR_SSM_VERSION);
    ssm_destroy(in);
    assert_int_equal(ssm_open(data, 3, &in), 0);
    assert_int_not_equal(g_dev_fwcfg.load(f, in, 1), 0);
    ssm_destroy(in);
    ssm_destroy(ssm);
    harness_vm_destroy(vm);
}

static uint32_t g_rng = 0x9e3779b9u;

static uint32_t rng(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 17;
    g_rng ^= g_rng << 5;
    return g_rng;
}

static void test_garbage(void **state)
{
    (void)state;
    struct vm *vm = harness_vm_create(RAM_BYTES);
    struct pdm_dev *f = harness_dev_create(vm, &g_dev_fwcfg, "fwcfg", NULL);
    assert_int_equal(fwcfg_add_file(f, "etc/test", "0123456789", 10), 0);
    assert_int_equal(fwcfg_set_u64(f, FWCFG_RAM_SIZE, RAM_BYTES), 0);
    for (unsigned i = 0; i < 20000; i++) {
        uint16_t port = (uint16_t)(0x510 + rng() % 12);
        unsigned sz = 1u << (rng() % 3);
        uint32_t v = rng();
        if (rng() & 1) {
            if (sz == 1)
                harness_outb(vm, port, (uint8_t)v);
            else if (sz == 2)
                harness_outw(vm, port, (uint16_t)v);
            else
                harness_outl(vm, port, v);
        } else {
            (void)iom_port_read(vm, port, sz);
        }
        if ((i & 63) == 0) {
            /* A random descriptor in RAM with random fields, small lengths mostly. */
            uint32_t len = (rng() & 1) ? rng() & 0xfff : rng();
            uint64_t addr = (rng() & 1) ? rng() % RAM_BYTES : (uint64_t)rng() << 32 | rng();
            (void)dma_run_at(vm, (rng() % (RAM_BYTES - 16)) & ~15u, rng(), len, addr);
        }
    }
    /* Still working. */
    char sig[4];
    select_key(vm, FWCFG_SIGNATURE);
    read_data(vm, sig, 4);
    assert_memory_equal(sig, "QEMU", 4);
    harness_vm_destroy(vm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signature_and_id),
        cmocka_unit_test(test_no_dma),
        cmocka_unit_test(test_items),
        cmocka_unit_test(test_file_dir),
        cmocka_unit_test(test_dma_read_skip_select),
        cmocka_unit_test(test_dma_errors),
        cmocka_unit_test(test_save_load),
        cmocka_unit_test(test_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
