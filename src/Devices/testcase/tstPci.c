/* tstPci.c - PCI bus and i440FX/PIIX3 tests: config mechanism #1, BARs, PIRQs, PAM, saved state, garbage. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "harness.h"
#include "vireo/pci.h"

#define CFG_ADDR(devfn, reg) (0x80000000u | (uint32_t)(devfn) << 8 | ((reg)&0xfc))

static uint32_t cfg_read(struct vm *vm, unsigned devfn, unsigned reg, unsigned size)
{
    harness_outl(vm, 0xcf8, CFG_ADDR(devfn, reg));
    uint16_t port = (uint16_t)(0xcfc + (reg & 3));
    return size == 1 ? harness_inb(vm, port) : size == 2 ? harness_inw(vm, port) : harness_inl(vm, port);
}

static void cfg_write(struct vm *vm, unsigned devfn, unsigned reg, uint32_t value, unsigned size)
{
    harness_outl(vm, 0xcf8, CFG_ADDR(devfn, reg));
    uint16_t port = (uint16_t)(0xcfc + (reg & 3));
    if (size == 1)
        harness_outb(vm, port, (uint8_t)value);
    else if (size == 2)
        harness_outw(vm, port, (uint16_t)value);
    else
        harness_outl(vm, port, value);
}

/* ---- a test function with an I/O BAR, two memory BARs and a ROM ---- */

struct testfn {
    struct pci_dev *dev;
    struct io_region *io;
    struct mem_region *mmio32, *mmio64, *rom;
    uint32_t last_write;
    unsigned writes;
};

static uint64_t testfn_read(void *opaque, uint64_t offset, unsigned size)
{
    (void)opaque;
    (void)size;
    return 0xa5000000u | (uint32_t)offset;
}

static void testfn_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    struct testfn *t = opaque;
    (void)offset;
    (void)size;
    t->last_write = (uint32_t)value;
    t->writes++;
}

static const struct io_ops g_testfn_ops = {
    .read = testfn_read,
    .write = testfn_write,
    .min_access = 1,
    .max_access = 4,
};

#define TESTFN_DEVFN PCI_DEVFN(3, 0)

static void testfn_create(struct vm *vm, struct pdm_dev *chipset, struct testfn *t)
{
    memset(t, 0, sizeof(*t));
    struct pci_bus *bus = i440fx_get_bus(chipset);
    assert_non_null(bus);
    const struct pci_dev_params p = {
        .name = "testfn",
        .vendor_id = 0x1af4,
        .device_id = 0x1234,
        .class_code = 0xff0000,
        .revision = 7,
        .subsys_vendor_id = 0x1af4,
        .subsys_id = 0x1100,
    };
    assert_int_equal(pci_dev_register(bus, TESTFN_DEVFN, &p, &t->dev), 0);
    assert_int_equal(pci_dev_register(bus, TESTFN_DEVFN, &p, &t->dev), VERR_ALREADY_EXISTS);
    assert_int_equal(iom_region_create(vm, "testfn-io", 16, &g_testfn_ops, t, &t->io), 0);
    assert_int_equal(mem_region_create_mmio(vm, "testfn-mmio32", 4096, &g_testfn_ops, t, &t->mmio32), 0);
    assert_int_equal(mem_region_create_mmio(vm, "testfn-mmio64", 16384, &g_testfn_ops, t, &t->mmio64), 0);
    static const uint8_t rom_data[4] = {0x55, 0xaa, 0x01, 0x02};
    assert_int_equal(mem_region_create_rom(vm, "testfn-rom", rom_data, sizeof(rom_data), 4096, &t->rom), 0);
    assert_int_equal(pci_dev_bar_io(t->dev, 0, 16, t->io), 0);
    assert_int_equal(pci_dev_bar_mem(t->dev, 1, 4096, 0, t->mmio32), 0);
    assert_int_equal(pci_dev_bar_mem(t->dev, 2, 16384, PCI_BAR_MEM_64 | PCI_BAR_MEM_PREFETCH, t->mmio64), 0);
    assert_int_equal(pci_dev_bar_mem(t->dev, 3, 4096, 0, t->mmio32), VERR_ALREADY_EXISTS);
    assert_int_equal(pci_dev_bar_mem(t->dev, 4, 3000, 0, t->mmio32), VERR_INVALID_PARAMETER);
    assert_int_equal(pci_dev_bar_rom(t->dev, 4096, t->rom), 0);
    assert_int_equal(pci_dev_set_irq_pin(t->dev, 1), 0);
}

static void testfn_destroy(struct testfn *t)
{
    pci_dev_unregister(t->dev);
    iom_region_destroy(t->io);
    mem_region_destroy(t->mmio32);
    mem_region_destroy(t->mmio64);
    mem_region_destroy(t->rom);
}

/* ---- tests ---- */

static void test_config_ids(void **state)
{
    (void)state;
    struct vm *vm = harness_vm_create(0);
    harness_dev_create(vm, &g_dev_i440fx, "pci", NULL);

    assert_int_equal(cfg_read(vm, PCI_DEVFN(0, 0), 0x00, 4), 0x12378086);
    assert_int_equal(cfg_read(vm, PCI_DEVFN(0, 0), 0x08, 4), 0x06000002);
    assert_int_equal(cfg_read(vm, PCI_DEVFN(0, 0), 0x0e, 1), 0x00);
    assert_int_equal(cfg_read(vm, PCI_DEVFN(1, 0), 0x00, 4), 0x70008086);
    assert_int_equal(cfg_read(vm, PCI_DEVFN(1, 0), 0x08, 4), 0x06010000);
    assert_int_equal(cfg_read(vm, PCI_DEVFN(1, 0), 0x0e, 1), 0x80);
    /* Datasheet power-on values: PCICMD, PIRQ routes disabled, SMRAM. */
    assert_int_equal(cfg_read(vm, PCI_DEVFN(0, 0), 0x04, 2), 0x0006);
    assert_int_equal(cfg_read(vm, PCI_DEVFN(1, 0), 0x60, 4), 0x80808080);
    assert_int_equal(cfg_read(vm, PCI_DEVFN(0, 0), 0x72, 1), 0x02);

    /* Absent functions, other buses and a disabled CONFIG_ADDRESS read all ones. */
    assert_int_equal(cfg_read(vm, PCI_DEVFN(2, 0), 0x00, 4), 0xffffffffu);
    assert_int_equal(cfg_read(vm, PCI_DEVFN(1, 1), 0x00, 2), 0xffff);
    harness_outl(vm, 0xcf8, 0x80010000u);
    assert_int_equal(harness_inl(vm, 0xcfc), 0xffffffffu);
    harness_outl(vm, 0xcf8, 0x00000000u);
    assert_int_equal(harness_inl(vm, 0xcfc), 0xffffffffu);

    /* CONFIG_ADDRESS reads back without its reserved bits. */
    harness_outl(vm, 0xcf8, 0xff000803u);
    assert_int_equal(harness_inl(vm, 0xcf8), 0x80000800u);
    /* Byte writes to 0xcf8 are not CONFIG_ADDRESS (PCI 3.0 section 3.2.2.3.2). */
    harness_outb(vm, 0xcf8, 0x00);
    assert_int_equal(harness_inl(vm, 0xcf8), 0x80000800u);

    /* Read-only IDs ignore writes. */
    cfg_write(vm, PCI_DEVFN(0, 0), 0x00, 0xdeadbeef, 4);
    assert_int_equal(cfg_read(vm, PCI_DEVFN(0, 0), 0x00, 4), 0x12378086);
    harness_vm_destroy(vm);
}

static void test_config_byte_word(void **state)
{
    (void)state;
    struct vm *vm = harness_vm_create(0);
    harness_dev_create(vm, &g_dev_i440fx, "pci", NULL);

    harness_outl(vm, 0xcf8, CFG_ADDR(0, 0));
    assert_int_equal(harness_inw(vm, 0xcfc), 0x8086);
    assert_int_equal(harness_inw(vm, 0xcfe), 0x1237);
    assert_int_equal(harness_inb(vm, 0xcfd), 0x80);
    assert_int_equal(harness_inb(vm, 0xcff), 0x12);

    /* PAM registers 0x5c-0x5f through byte and word writes at every data port offset. */
    harness_outl(vm, 0xcf8, CFG_ADDR(0, 0x5c));
    harness_outb(vm, 0xcfc, 0x11);
    harness_outb(vm, 0xcfd, 0x22);
    harness_outw(vm, 0xcfe, 0x3333);
    assert_int_equal(harness_inl(vm, 0xcfc), 0x33332211u);
    assert_int_equal(harness_inw(vm, 0xcfd), 0x3322);
    /* Reserved PAM bits (7, 6, 3, 2) stay zero. */
    harness_outb(vm, 0xcfc, 0xff);
    assert_int_equal(harness_inb(vm, 0xcfc), 0x33);
    /* PAM0's low nibble is reserved. */
    cfg_write(vm, 0, 0x59, 0xff, 1);
    assert_int_equal(cfg_read(vm, 0, 0x59, 1), 0x30);

    /* Status bits are write-one-to-clear or read-only, never set by writes. */
    cfg_write(vm, 0, 0x06, 0xffff, 2);
    assert_int_equal(cfg_read(vm, 0, 0x06, 2), 0x0280);
    /* The latency timer keeps bits 7:3. */
    cfg_write(vm, 0, 0x0d, 0xff, 1);
    assert_int_equal(cfg_read(vm, 0, 0x0d, 1), 0xf8);
    harness_vm_destroy(vm);
}

static void test_bar_sizing_and_mapping(void **state)
{
    (void)state;
    struct vm *vm = harness_vm_create(0);
    struct pdm_dev *chip = harness_dev_create(vm, &g_dev_i440fx, "pci", NULL);
    struct testfn t;
    testfn_create(vm, chip, &t);
    unsigned d = TESTFN_DEVFN;

    assert_int_equal(cfg_read(vm, d, 0x00, 4), 0x12341af4);
    assert_int_equal(cfg_read(vm, d, 0x08, 4), 0xff000007);
    assert_int_equal(cfg_read(vm, d, 0x2c, 4), 0x11001af4);
    assert_int_equal(cfg_read(vm, d, 0x3d, 1), 1);
    /* Type bits before sizing. */
    assert_int_equal(cfg_read(vm, d, 0x10, 4), 0x1);
    assert_int_equal(cfg_read(vm, d, 0x18, 4), 0xc);

    /* Sizing: all ones in, ~(size-1) | type bits out. */
    for (unsigned reg = 0x10; reg <= 0x24; reg += 4)
        cfg_write(vm, d, reg, 0xffffffffu, 4);
    cfg_write(vm, d, 0x30, 0xffffffffu, 4);
    assert_int_equal(cfg_read(vm, d, 0x10, 4), 0xfffffff1u);
    assert_int_equal(cfg_read(vm, d, 0x14, 4), 0xfffff000u);
    assert_int_equal(cfg_read(vm, d, 0x18, 4), 0xffffc00cu);
    assert_int_equal(cfg_read(vm, d, 0x1c, 4), 0xffffffffu);
    assert_int_equal(cfg_read(vm, d, 0x20, 4), 0);
    assert_int_equal(cfg_read(vm, d, 0x24, 4), 0);
    assert_int_equal(cfg_read(vm, d, 0x30, 4), 0xfffff001u);
    /* Nothing maps while the command register leaves decoding off. */
    assert_false(iom_region_is_mapped(t.io));
    assert_false(mem_region_is_mapped(t.mmio32));

    /* Program addresses; still unmapped until the command register enables the spaces. */
    cfg_write(vm, d, 0x10, 0xc000, 4);
    cfg_write(vm, d, 0x14, 0xfebf0000u, 4);
    cfg_write(vm, d, 0x18, 0x0, 4);
    cfg_write(vm, d, 0x1c, 0x1, 4);
    cfg_write(vm, d, 0x30, 0xfeb00001u, 4);
    assert_int_equal(harness_inl(vm, 0xc004), 0xffffffffu);
    assert_int_equal(pci_dev_bar_gpa(t.dev, 0), PCI_BAR_UNMAPPED);

    cfg_write(vm, d, 0x04, PCI_COMMAND_IO | PCI_COMMAND_MEMORY, 2);
    assert_int_equal(pci_dev_bar_gpa(t.dev, 0), 0xc000);
    assert_int_equal(pci_dev_bar_gpa(t.dev, 1), 0xfebf0000u);
    assert_int_equal(pci_dev_bar_gpa(t.dev, 2), 0x100000000ULL);
    assert_int_equal(pci_dev_bar_gpa(t.dev, PCI_BAR_ROM), 0xfeb00000u);
    assert_int_equal(harness_inl(vm, 0xc004), 0xa5000004u);
    harness_outw(vm, 0xc002, 0x4242);
    assert_int_equal(t.last_write, 0x4242);
    assert_int_equal(mem_mmio_read(vm, 0xfebf0010u, 4), 0xa5000010u);
    assert_int_equal(mem_mmio_read(vm, 0x100000020ULL, 4), 0xa5000020u);
    uint8_t rom[2] = {0};
    assert_int_equal(mem_read(vm, 0xfeb00000u, rom, 2), 0);
    assert_int_equal(rom[0], 0x55);
    assert_int_equal(rom[1], 0xaa);

    /* Moving a BAR moves the region. */
    cfg_write(vm, d, 0x10, 0xd000, 4);
    assert_int_equal(harness_inl(vm, 0xc004), 0xffffffffu);
    assert_int_equal(harness_inl(vm, 0xd008), 0xa5000008u);

    /* Clearing the memory enable unmaps only the memory BARs. */
    cfg_write(vm, d, 0x04, PCI_COMMAND_IO, 2);
    assert_false(mem_region_is_mapped(t.mmio32));
    assert_false(mem_region_is_mapped(t.rom));
    assert_true(iom_region_is_mapped(t.io));
    assert_int_equal(mem_mmio_read(vm, 0xfebf0010u, 4), 0xffffffffu);

    /* An I/O BAR over the chipset's ports cannot be mapped and stays off; so does one past 0xffff. */
    cfg_write(vm, d, 0x10, 0xcf0, 4);
    assert_int_equal(pci_dev_bar_gpa(t.dev, 0), PCI_BAR_UNMAPPED);
    assert_int_equal(cfg_read(vm, 0, 0x00, 4), 0x12378086);
    cfg_write(vm, d, 0x10, 0x10000, 4);
    assert_int_equal(pci_dev_bar_gpa(t.dev, 0), PCI_BAR_UNMAPPED);
    cfg_write(vm, d, 0x10, 0xe000, 4);
    assert_int_equal(pci_dev_bar_gpa(t.dev, 0), 0xe000);

    /* Bus master bit. */
    assert_false(pci_dev_is_bus_master(t.dev));
    cfg_write(vm, d, 0x04, PCI_COMMAND_IO | PCI_COMMAND_MASTER, 2);
    assert_true(pci_dev_is_bus_master(t.dev));

    /* Reset turns decoding off and clears the writable BAR bits, keeping the type bits. */
    pci_dev_reset(t.dev);
    assert_false(iom_region_is_mapped(t.io));
    assert_int_equal(cfg_read(vm, d, 0x10, 4), 0x1);
    assert_int_equal(cfg_read(vm, d, 0x04, 2), 0);

    testfn_destroy(&t);
    assert_int_equal(cfg_read(vm, d, 0x00, 4), 0xffffffffu);
    harness_vm_destroy(vm);
}

static void test_capabilities(void **state)
{
    (void)state;
    struct vm *vm = harness_vm_create(0);
    struct pdm_dev *chip = harness_dev_create(vm, &g_dev_i440fx, "pci", NULL);
    struct testfn t;
    testfn_create(vm, chip, &t);
    unsigned d = TESTFN_DEVFN;
    assert_int_equal(pci_dev_add_cap(t.dev, PCI_CAP_ID_MSI, 0x40, 14), 0);
    assert_int_equal(pci_dev_add_cap(t.dev, PCI_CAP_ID_VENDOR, 0x50, 16), 0);
    assert_int_equal(pci_dev_add_cap(t.dev, PCI_CAP_ID_PM, 0x44, 8), VERR_OVERLAP);
    assert_int_equal(pci_dev_add_cap(t.dev, PCI_CAP_ID_PM, 0x3c, 8), VERR_INVALID_PARAMETER);
    assert_int_equal(pci_dev_add_cap(t.dev, PCI_CAP_ID_PM, 0x62, 8), VERR_INVALID_PARAMETER);
    assert_int_equal(pci_dev_add_cap(t.dev, PCI_CAP_ID_PM, 0xfc, 8), VERR_INVALID_PARAMETER);
    assert_true(cfg_read(vm, d, 0x06, 2) & PCI_STATUS_CAP_LIST);
    assert_int_equal(cfg_read(vm, d, 0x34, 1), 0x40);
    assert_int_equal(cfg_read(vm, d, 0x40, 2), 0x5005);
    assert_int_equal(cfg_read(vm, d, 0x50, 2), 0x0009);
    assert_int_equal(pci_dev_find_cap(t.dev, PCI_CAP_ID_VENDOR), 0x50);
    assert_int_equal(pci_dev_find_cap(t.dev, PCI_CAP_ID_MSIX), 0);
    /* The list links are read-only to the guest. */
    cfg_write(vm, d, 0x40, 0xffff, 2);
    cfg_write(vm, d, 0x34, 0xff, 1);
    assert_int_equal(cfg_read(vm, d, 0x40, 2), 0x5005);
    assert_int_equal(cfg_read(vm, d, 0x34, 1), 0x40);
    testfn_destroy(&t);
    harness_vm_destroy(vm);
}

static void test_pirq_routing(void **state)
{
    (void)state;
    struct vm *vm = harness_vm_create(0);
    struct pdm_dev *chip = harness_dev_create(vm, &g_dev_i440fx, "pci", NULL);
    struct testfn t;
    testfn_create(vm, chip, &t);
    unsigned isa = PCI_DEVFN(1, 0);
    /* Slot 3, INTA# -> PIRQ (3 - 1 + 0) mod 4 = PIRQC, routed by PIRQRC[C] at 0x62. */
    cfg_write(vm, isa, 0x62, 11, 1);
    assert_int_equal(cfg_read(vm, isa, 0x60, 4), 0x800b8080u);
    assert_false(harness_gsi_level(vm, 11));

    pci_dev_irq_set(t.dev, true);
    assert_true(harness_gsi_level(vm, 11));
    assert_true(cfg_read(vm, TESTFN_DEVFN, 0x06, 2) & PCI_STATUS_INTERRUPT);
    assert_true(pci_bus_pirq_level(i440fx_get_bus(chip), 2));

    /* INTx disable masks the pin but not the status bit. */
    cfg_write(vm, TESTFN_DEVFN, 0x04, PCI_COMMAND_INTX_DISABLE, 2);
    assert_false(harness_gsi_level(vm, 11));
    assert_true(cfg_read(vm, TESTFN_DEVFN, 0x06, 2) & PCI_STATUS_INTERRUPT);
    cfg_write(vm, TESTFN_DEVFN, 0x04, 0, 2);
    assert_true(harness_gsi_level(vm, 11));

    /* Rerouting carries the level; a disabled or reserved route drives nothing. */
    cfg_write(vm, isa, 0x62, 10, 1);
    assert_false(harness_gsi_level(vm, 11));
    assert_true(harness_gsi_level(vm, 10));
    cfg_write(vm, isa, 0x62, 0x8a, 1);
    assert_false(harness_gsi_level(vm, 10));
    cfg_write(vm, isa, 0x62, 13, 1);
    assert_false(harness_gsi_level(vm, 13));
    cfg_write(vm, isa, 0x62, 0x7f, 1);
    assert_int_equal(cfg_read(vm, isa, 0x62, 1), 0x0f);
    assert_true(harness_gsi_level(vm, 15));

    /* The other PIRQs do not see slot 3's INTA#. */
    cfg_write(vm, isa, 0x60, 0x0505, 2);
    cfg_write(vm, isa, 0x63, 0x05, 1);
    assert_false(harness_gsi_level(vm, 5));
    assert_true(harness_gsi_level(vm, 15));

    /* A second function on PIRQC shares the wire (wired-OR). */
    struct pci_dev *other;
    const struct pci_dev_params p = {.name = "other", .vendor_id = 0x1af4, .device_id = 0x1, .class_code = 0xff0000};
    /* Slot 4, INTD# -> (4 - 1 + 3) mod 4 = 2 = PIRQC. */
    assert_int_equal(pci_dev_register(i440fx_get_bus(chip), PCI_DEVFN(4, 0), &p, &other), 0);
    assert_int_equal(pci_dev_set_irq_pin(other, 4), 0);
    cfg_write(vm, isa, 0x62, 9, 1);
    pci_dev_irq_set(other, true);
    pci_dev_irq_set(t.dev, false);
    assert_true(harness_gsi_level(vm, 9));
    pci_dev_irq_set(other, false);
    assert_false(harness_gsi_level(vm, 9));
    assert_false(cfg_read(vm, TESTFN_DEVFN, 0x06, 2) & PCI_STATUS_INTERRUPT);

    /* Unregistering an asserting function releases the wire. */
    pci_dev_irq_set(other, true);
    assert_true(harness_gsi_level(vm, 9));
    pci_dev_unregister(other);
    assert_false(harness_gsi_level(vm, 9));
    testfn_destroy(&t);
    harness_vm_destroy(vm);
}

#define ROM_BYTES (256u << 10)

static uint8_t rom_byte(uint32_t off)
{
    return (uint8_t)(off * 7 + (off >> 8));
}

struct pam_env {
    struct vm *vm;
    struct pdm_dev *chip;
    struct mem_region *ram, *rom;
};

static void pam_env_create(struct pam_env *e)
{
    e->vm = harness_vm_create(0);
    assert_int_equal(mem_region_create_ram(e->vm, "lowram", 2u << 20, &e->ram), 0);
    assert_int_equal(mem_region_map(e->ram, 0, 0), 0);
    static uint8_t image[ROM_BYTES];
    for (uint32_t i = 0; i < ROM_BYTES; i++)
        image[i] = rom_byte(i);
    assert_int_equal(mem_region_create_rom(e->vm, "bios", image, ROM_BYTES, ROM_BYTES, &e->rom), 0);
    assert_int_equal(mem_region_map(e->rom, 0x100000000ULL - ROM_BYTES, 0), 0);
    e->chip = harness_dev_create(e->vm, &g_dev_i440fx, "pci", NULL);
    assert_int_equal(i440fx_set_memory(e->chip, e->ram, e->rom), 0);
    assert_int_equal(i440fx_set_memory(e->chip, e->ram, e->rom), VERR_INVALID_PARAMETER);
}

/* The ROM byte PAM mode 0 shows at gpa (0xE0000-0xFFFFF). */
static uint8_t rom_at(uint32_t gpa)
{
    return rom_byte(ROM_BYTES - 0x20000u + (gpa - 0xe0000u));
}

static uint8_t peek(struct vm *vm, uint64_t gpa)
{
    uint8_t b = 0;
    assert_int_equal(mem_read(vm, gpa, &b, 1), 0);
    return b;
}

static void test_pam(void **state)
{
    (void)state;
    struct pam_env e;
    pam_env_create(&e);
    struct vm *vm = e.vm;
    uint8_t pattern[64];
    for (unsigned i = 0; i < sizeof(pattern); i++)
        pattern[i] = (uint8_t)(0xc3 ^ i);

    /* Power-on: 0xF0000 and 0xE0000 read the BIOS; 0xC0000 reads nothing (PCI). */
    assert_int_equal(peek(vm, 0xffff0), rom_at(0xffff0));
    assert_int_equal(peek(vm, 0xe4001), rom_at(0xe4001));
    assert_int_equal(peek(vm, 0xc0000), 0xff);

    /* Mode 3: read/write RAM. */
    cfg_write(vm, 0, 0x59, 0x30, 1);
    assert_int_equal(mem_write(vm, 0xf0000, pattern, sizeof(pattern)), 0);
    uint8_t back[64];
    assert_int_equal(mem_read(vm, 0xf0000, back, sizeof(back)), 0);
    assert_memory_equal(back, pattern, sizeof(pattern));
    /* Mode 0: the ROM again; the RAM underneath kept the pattern. */
    cfg_write(vm, 0, 0x59, 0x00, 1);
    assert_int_equal(peek(vm, 0xf0000), rom_at(0xf0000));
    assert_int_equal(peek(vm, 0xf0003), rom_at(0xf0003));
    assert_int_equal(((uint8_t *)mem_region_hva(e.ram))[0xf0003], pattern[3]);
    /* Mode 1: read-only RAM; writes are ignored. */
    cfg_write(vm, 0, 0x59, 0x10, 1);
    assert_int_equal(peek(vm, 0xf0003), pattern[3]);
    uint8_t junk[4] = {1, 2, 3, 4};
    assert_int_equal(mem_write(vm, 0xf0000, junk, sizeof(junk)), 0);
    assert_int_equal(mem_read(vm, 0xf0000, back, 4), 0);
    assert_memory_equal(back, pattern, 4);
    /* Mode 2: write-only; reads come from the ROM, writes land in RAM (the shadowing recipe). */
    cfg_write(vm, 0, 0x59, 0x20, 1);
    assert_int_equal(peek(vm, 0xf0010), rom_at(0xf0010));
    mem_mmio_write(vm, 0xf0010, 0x11223344, 4);
    assert_int_equal(peek(vm, 0xf0010), rom_at(0xf0010));
    cfg_write(vm, 0, 0x59, 0x30, 1);
    assert_int_equal(mem_mmio_read(vm, 0xf0010, 4), 0x11223344);

    /* 16 KiB segments: PAM1 low nibble is 0xC0000-0xC3FFF, high nibble 0xC4000-0xC7FFF. */
    cfg_write(vm, 0, 0x5a, 0x03, 1);
    uint8_t v = 0x5a;
    assert_int_equal(mem_write(vm, 0xc3fff, &v, 1), 0);
    assert_int_equal(peek(vm, 0xc3fff), 0x5a);
    assert_int_equal(peek(vm, 0xc4000), 0xff);
    /* A write to a mode-0 C segment goes to PCI (nowhere). */
    assert_int_equal(mem_write(vm, 0xc4000, &v, 1), 0);
    assert_int_equal(((uint8_t *)mem_region_hva(e.ram))[0xc4000], 0);
    /* PAM6 high nibble is 0xEC000-0xEFFFF. */
    cfg_write(vm, 0, 0x5f, 0x10, 1);
    ((uint8_t *)mem_region_hva(e.ram))[0xec123] = 0x77;
    assert_int_equal(peek(vm, 0xec123), 0x77);
    assert_int_equal(peek(vm, 0xe8123), rom_at(0xe8123));

    /* Below 0xC0000 and above 1 MiB nothing changes. */
    ((uint8_t *)mem_region_hva(e.ram))[0xbffff] = 0x31;
    assert_int_equal(peek(vm, 0xbffff), 0x31);
    assert_int_equal(peek(vm, 0xfffffff0ULL), rom_byte(ROM_BYTES - 16));

    /* A reset through port 0xcf9 puts PAM back to 0. */
    harness_outb(vm, 0xcf9, 0x02);
    assert_int_equal(harness_inb(vm, 0xcf9), 0x02);
    assert_int_equal(cfg_read(vm, 0, 0x59, 1), 0x30);
    harness_outb(vm, 0xcf9, 0x06);
    assert_int_equal(cfg_read(vm, 0, 0x59, 1), 0);
    assert_int_equal(cfg_read(vm, 0, 0x5a, 2), 0);
    assert_int_equal(cfg_read(vm, 0, 0x5c, 4), 0);
    assert_int_equal(harness_inb(vm, 0xcf9), 0);
    assert_int_equal(peek(vm, 0xf0003), rom_at(0xf0003));
    assert_int_equal(peek(vm, 0xc3fff), 0xff);
    harness_vm_destroy(vm);
}

static void test_port92_smram(void **state)
{
    (void)state;
    struct vm *vm = harness_vm_create(0);
    struct pdm_dev *chip = harness_dev_create(vm, &g_dev_i440fx, "pci", NULL);
    assert_int_equal(harness_inb(vm, 0x92), 0);
    assert_false(i440fx_a20_enabled(chip));
    /* The CPU's A20 line is on after reset (the 8042's output) and follows port 0x92 writes. */
    assert_true(vm_a20_enabled(vm));
    harness_outb(vm, 0x92, 0x00);
    assert_false(vm_a20_enabled(vm));
    /* Saved state carries the line (version 2): off, though the reset in between turns it on. */
    assert_int_equal(harness_dev_save_reset_load(chip), 0);
    assert_false(vm_a20_enabled(vm));
    harness_outb(vm, 0x92, 0x02);
    assert_int_equal(harness_inb(vm, 0x92), 0x02);
    assert_true(i440fx_a20_enabled(chip));
    assert_true(vm_a20_enabled(vm));
    /* Fast reset: the system resets, which turns the A20 bit off again. */
    cfg_write(vm, 0, 0x5a, 0x33, 1);
    harness_outb(vm, 0x92, 0x00);
    harness_outb(vm, 0x92, 0x03);
    assert_int_equal(harness_inb(vm, 0x92), 0);
    assert_int_equal(cfg_read(vm, 0, 0x5a, 1), 0);
    assert_true(vm_a20_enabled(vm));

    /* SMRAM: D_OPEN writable until D_LCK; then D_OPEN reads 0 and both stick until reset. */
    cfg_write(vm, 0, 0x72, 0xff, 1);
    assert_int_equal(cfg_read(vm, 0, 0x72, 1), 0x3a);
    cfg_write(vm, 0, 0x72, 0x40, 1);
    assert_int_equal(cfg_read(vm, 0, 0x72, 1), 0x12);
    harness_outb(vm, 0xcf9, 0x04);
    assert_int_equal(cfg_read(vm, 0, 0x72, 1), 0x02);
    cfg_write(vm, 0, 0x72, 0x48, 1);
    assert_int_equal(cfg_read(vm, 0, 0x72, 1), 0x4a);
    harness_vm_destroy(vm);
}

static void test_save_load(void **state)
{
    (void)state;
    struct pam_env e;
    pam_env_create(&e);
    struct vm *vm = e.vm;
    cfg_write(vm, 0, 0x59, 0x30, 1);
    cfg_write(vm, 0, 0x5d, 0x31, 1);
    cfg_write(vm, 0, 0x72, 0x18, 1);
    cfg_write(vm, PCI_DEVFN(1, 0), 0x60, 0x0b0a0b0a, 4);
    uint8_t v = 0x99;
    assert_int_equal(mem_write(vm, 0xf1234, &v, 1), 0);
    harness_outb(vm, 0x92, 0x02);
    harness_outl(vm, 0xcf8, CFG_ADDR(PCI_DEVFN(1, 0), 0x60));

    assert_int_equal(harness_dev_save_reset_load(e.chip), 0);

    assert_int_equal(harness_inl(vm, 0xcf8), CFG_ADDR(PCI_DEVFN(1, 0), 0x60));
    assert_int_equal(harness_inl(vm, 0xcfc), 0x0b0a0b0a);
    assert_int_equal(harness_inb(vm, 0x92), 0x02);
    assert_int_equal(cfg_read(vm, 0, 0x59, 1), 0x30);
    assert_int_equal(cfg_read(vm, 0, 0x5d, 1), 0x31);
    assert_int_equal(cfg_read(vm, 0, 0x72, 1), 0x1a);
    /* PAM windows follow the restored registers. */
    assert_int_equal(peek(vm, 0xf1234), 0x99);
    /* The SMRAM lock was restored with its effect. */
    cfg_write(vm, 0, 0x72, 0x40, 1);
    assert_int_equal(cfg_read(vm, 0, 0x72, 1) & 0x50, 0x10);

    /* State from another machine (different IDs) is refused. */
    struct ssm *ssm;
    assert_int_equal(ssm_create(&ssm), 0);
    ssm_put_u32(ssm, 0);
    ssm_put_u8(ssm, 0);
    ssm_put_u8(ssm, 0);
    ssm_put_u16(ssm, 0x8086);
    ssm_put_u16(ssm, 0x1238);
    uint8_t cfg[256] = {0x86, 0x80, 0x38, 0x12};
    ssm_put_bytes(ssm, cfg, sizeof(cfg));
    ssm_put_bool(ssm, false);
    size_t len;
    const void *data = ssm_data(ssm, &len);
    struct ssm *in;
    assert_int_equal(ssm_open(data, len, &in), 0);
    assert_int_equal(g_dev_i440fx.load(e.chip, in, 1), VERR_SSM_CORRUPT);
    ssm_destroy(in);
    /* A truncated stream is refused too. */
    assert_int_equal(ssm_open(data, 10, &in), 0);
    assert_int_not_equal(g_dev_i440fx.load(e.chip, in, 1), 0);
    ssm_destroy(in);
    assert_int_equal(ssm_open(data, len, &in), 0);
    assert_int_equal(g_dev_i440fx.load(e.chip, in, g_dev_i440fx.ssm_version + 1), VERR_SSM_VERSION);
    ssm_destroy(in);
    ssm_destroy(ssm);
    /* The failed loads changed nothing. */
    assert_int_equal(cfg_read(vm, 0, 0x00, 4), 0x12378086);
    harness_vm_destroy(vm);
}

static uint32_t g_rng = 0x12345678;

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
    struct pam_env e;
    pam_env_create(&e);
    struct vm *vm = e.vm;
    struct testfn t;
    testfn_create(vm, e.chip, &t);
    for (unsigned devfn = 0; devfn < 256; devfn++) {
        for (unsigned reg = 0; reg < 256; reg++) {
            /* Sometimes another bus, reserved bits or the enable bit off. */
            uint32_t addr = CFG_ADDR(devfn, reg) | (rng() & 0x7fff0003u);
            if (rng() & 1)
                addr &= ~0x00ff0000u;
            if ((rng() & 15) == 0)
                addr &= ~0x80000000u;
            harness_outl(vm, 0xcf8, addr);
            unsigned k = rng() & 3;
            unsigned sz = 1u << (rng() % 3);
            uint32_t val = rng();
            switch (sz) {
            case 1:
                harness_outb(vm, (uint16_t)(0xcfc + k), (uint8_t)val);
                (void)harness_inb(vm, (uint16_t)(0xcfc + k));
                break;
            case 2:
                harness_outw(vm, (uint16_t)(0xcfc + k), (uint16_t)val);
                (void)harness_inw(vm, (uint16_t)(0xcfc + k));
                break;
            default:
                harness_outl(vm, (uint16_t)(0xcfc + k), val);
                (void)harness_inl(vm, (uint16_t)(0xcfc + k));
                break;
            }
        }
    }
    /* Byte and word accesses to 0xcf8-0xcfb other than RCR, and odd port widths. */
    for (unsigned i = 0; i < 64; i++) {
        harness_outb(vm, (uint16_t)(0xcf8 + (i & 3)), (uint8_t)(rng() & ~0x04u));
        harness_outw(vm, (uint16_t)(0xcf8 + (i & 7)), (uint16_t)rng());
        (void)harness_inw(vm, (uint16_t)(0xcf8 + (i & 7)));
        (void)harness_inl(vm, (uint16_t)(0xcf8 + (i & 7)));
    }
    /* The chipset still answers with its IDs. */
    assert_int_equal(cfg_read(vm, 0, 0x00, 4), 0x12378086);
    assert_int_equal(cfg_read(vm, PCI_DEVFN(1, 0), 0x00, 4), 0x70008086);
    assert_int_equal(cfg_read(vm, TESTFN_DEVFN, 0x00, 4), 0x12341af4);
    testfn_destroy(&t);
    harness_vm_destroy(vm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_ids),
        cmocka_unit_test(test_config_byte_word),
        cmocka_unit_test(test_bar_sizing_and_mapping),
        cmocka_unit_test(test_capabilities),
        cmocka_unit_test(test_pirq_routing),
        cmocka_unit_test(test_pam),
        cmocka_unit_test(test_port92_smram),
        cmocka_unit_test(test_save_load),
        cmocka_unit_test(test_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
