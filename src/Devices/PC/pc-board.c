/* pc-board.c - the PC board: RAM around the PCI hole, firmware ROM, chipset and legacy devices, CMOS and fw_cfg contents. */

/*
 * Design: the board is the only place that knows which devices a PC has and how
 * they are wired (I/O bases, IRQs, which device owns which port).  Devices stay
 * unaware of each other.  Guest RAM is one host allocation, shown at 0..lowmem
 * (with the legacy VGA window left out) and at 4 GiB for the part above the PCI
 * hole.  The firmware image ends at 4 GiB and its last 128 KiB also appear at
 * 0xE0000 (PAM mode 0); the chipset's PAM registers overlay that window.  UEFI
 * firmware (OVMF) comes as two CFI flash devices instead of the ROM: the code,
 * read-only, ending at 4 GiB, and the variable store right below it, as on QEMU's
 * pc machine; the low alias and the PAM windows show the code flash's end (OVMF
 * does not use them, a CSM would).
 */
#include <sys/stat.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vireo/devices.h"
#include "vireo/pci.h"
#include "pc-internal.h"

#define LOG_COMPONENT "pc"

#define PC_LOWMEM_MAX      0xc0000000ULL /* 3 GiB below the PCI hole */
#define PC_HIGHMEM_BASE    0x100000000ULL
#define PC_VGA_HOLE_START  0xa0000ULL
#define PC_VGA_HOLE_END    0xc0000ULL
#define PC_BIOS_MAX_BYTES  (16u << 20)
#define PC_BIOS_LOW_WINDOW (128u << 10)
#define PC_PRIO_RAM        0
#define PC_PRIO_BIOS_LOW   1 /* below the chipset's PAM windows (PCI_PRIORITY_PAM) */

static const uint16_t g_com_base[PC_SERIAL_PORTS] = { 0x3f8, 0x2f8, 0x3e8, 0x2e8 };
static const uint8_t g_com_irq[PC_SERIAL_PORTS] = { 4, 3, 4, 3 };

static int dev_create(struct vm *vm, const struct pdm_dev_desc *desc, const char *name, struct pdm_cfg *cfg,
                      struct pdm_dev **out)
{
    struct pdm_dev *dev = NULL;
    int rc = pdm_dev_create(vm, desc, name, cfg, &dev);
    pdm_cfg_destroy(cfg);
    if (out)
        *out = dev;
    return rc;
}

/*
 * Local APICs and the I/O APIC (software CPU only): the PIC's INT output becomes
 * LINT0 of the BSP's APIC (virtual wire, ExtINT), the APIC runs the PIC's INTA for
 * ExtINT interrupts, and the I/O APIC sees every GSI beside the PIC, with ISA IRQ 0
 * on its pin 2 (the override the firmware's MP and ACPI tables describe).
 */
static void pc_pic_to_lint0(void *opaque, bool level)
{
    apic_set_lint(opaque, 0, 0, level);
}

static int pc_pic_inta(void *opaque)
{
    return pic_intack(opaque);
}

static int setup_apic(struct pc_board *pc, struct pdm_dev *pic)
{
    struct pdm_cfg *cfg;
    struct pdm_dev *apic = NULL, *ioapic = NULL;
    int rc = pdm_cfg_create(&cfg);
    if (!rc)
        rc = dev_create(pc->vm, &g_dev_apic, "apic", cfg, &apic);
    if (!rc && !(rc = pdm_cfg_create(&cfg)))
        rc = dev_create(pc->vm, &g_dev_ioapic, "ioapic", cfg, &ioapic);
    if (rc)
        return rc;
    ioapic_connect(ioapic, apic);
    apic_set_extint(apic, pc_pic_inta, pic);
    pic_set_output(pic, pc_pic_to_lint0, apic);
    return 0;
}

/* ACPI power management: the PIIX4's function 3 beside the PIIX3 (00:01.3), SCI and power button. */
static int setup_pm(struct pc_board *pc)
{
    struct pdm_cfg *cfg;
    int rc = pdm_cfg_create(&cfg);
    if (!rc)
        rc = pdm_cfg_set_u64(cfg, "slot", PC_PIIX4_PM_SLOT);
    if (!rc)
        rc = pdm_cfg_set_u64(cfg, "function", PC_PIIX4_PM_FUNC);
    if (rc) {
        pdm_cfg_destroy(cfg);
        return rc;
    }
    return dev_create(pc->vm, &g_dev_piix4_pm, "pm", cfg, &pc->pm);
}

/* The 8042's A20 output is the PIIX3's A20GATE input: the chipset ORs it with port 0x92. */
static void pc_kbc_a20(void *opaque, bool level)
{
    i440fx_set_kbc_a20(opaque, level);
}

/*
 * HPET legacy replacement: the chipset disconnects the PIT's IRQ 0 and the RTC's IRQ 8
 * outputs while the HPET's timers 0 and 1 drive those IRQs (IA-PC HPET 1.0a, 2.3.9.2.2).
 */
static void pc_hpet_legacy(void *opaque, bool legacy)
{
    struct pc_board *pc = opaque;
    struct pdm_dev *pit = pdm_dev_find(pc->vm, "pit");
    if (pit)
        i8254_set_irq_enabled(pit, !legacy);
    rtc_set_irq_enabled(pc->rtc, !legacy);
}

static int setup_hpet(struct pc_board *pc)
{
    struct pdm_cfg *cfg;
    struct pdm_dev *hpet = NULL;
    int rc = pdm_cfg_create(&cfg);
    if (!rc)
        rc = dev_create(pc->vm, &g_dev_hpet, "hpet", cfg, &hpet);
    if (!rc)
        hpet_set_legacy_listener(hpet, pc_hpet_legacy, pc);
    return rc;
}

static int load_bios(struct pc_board *pc, const char *path)
{
    void *data = NULL;
    size_t len = 0;
    int rc = rt_file_read_all(path, PC_BIOS_MAX_BYTES + 1, &data, &len);
    if (rc == VERR_FILE_NOT_FOUND) {
        if (strcmp(path, PC_DEFAULT_BIOS) == 0)
            LOG_ERR("firmware '%s' not found: install Debian's seabios package (apt-get install seabios)", path);
        else
            LOG_ERR("firmware '%s' not found", path);
        return VERR_FIRMWARE;
    }
    if (rc == VERR_TOO_LARGE) {
        LOG_ERR("firmware '%s' is larger than %u MiB; not a BIOS image", path, PC_BIOS_MAX_BYTES >> 20);
        return VERR_FIRMWARE;
    }
    if (rc) {
        LOG_ERR("cannot read firmware '%s': %s", path, rt_err_str(rc));
        return VERR_FIRMWARE;
    }
    if (len < (64u << 10) || (len % (64u << 10)) != 0) {
        LOG_ERR("firmware '%s' is truncated or not a BIOS image: %zu bytes, expected a multiple of 64 KiB", path,
                len);
        free(data);
        return VERR_FIRMWARE;
    }
    /*
     * The ROM spans at least the 128 KiB that the PAM window at 0xE0000 shows; a
     * smaller image sits at its top (where the reset vector is) with erased flash
     * (all ones) below it.
     */
    size_t rom_size = RT_MAX(len, (size_t)PC_BIOS_LOW_WINDOW);
    if (rom_size != len) {
        uint8_t *padded = malloc(rom_size);
        if (!padded) {
            free(data);
            return VERR_NO_MEMORY;
        }
        memset(padded, 0xff, rom_size - len);
        memcpy(padded + rom_size - len, data, len);
        free(data);
        data = padded;
    }
    rc = mem_region_create_rom(pc->vm, "bios", data, rom_size, rom_size, &pc->bios);
    free(data);
    if (rc)
        return rc;
    rc = mem_region_map(pc->bios, PC_HIGHMEM_BASE - rom_size, PC_PRIO_RAM);
    if (rc)
        return rc;
    rc = mem_region_create_alias(pc->vm, "bios-low", pc->bios, rom_size - PC_BIOS_LOW_WINDOW, PC_BIOS_LOW_WINDOW,
                                 true, &pc->bios_low);
    if (!rc)
        rc = mem_region_map(pc->bios_low, 0x100000 - PC_BIOS_LOW_WINDOW, PC_PRIO_BIOS_LOW);
    LOG_INFO("firmware '%s' (%zu KiB)", path, len >> 10);
    return rc;
}

static bool is_power_of_two(uint64_t v)
{
    return v && !(v & (v - 1));
}

/* The size of a firmware file, or a logged error naming it (and the package for the default files). */
static int efi_file_size(const char *path, const char *what, uint64_t *size)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        if (strcmp(path, PC_DEFAULT_EFI_CODE) == 0 || strcmp(path, PC_DEFAULT_EFI_VARS) == 0)
            LOG_ERR("%s '%s' not found: install Debian's ovmf package (apt-get install ovmf)", what, path);
        else
            LOG_ERR("%s '%s' not found", what, path);
        return VERR_FIRMWARE;
    }
    if (!S_ISREG(st.st_mode) || st.st_size <= 0 || (st.st_size % PFLASH_BLOCK_BYTES) != 0) {
        LOG_ERR("%s '%s' is not a flash image: %lld bytes, expected a non-zero multiple of %u KiB", what, path,
                (long long)st.st_size, PFLASH_BLOCK_BYTES >> 10);
        return VERR_FIRMWARE;
    }
    *size = (uint64_t)st.st_size;
    return 0;
}

static int pflash_create(struct pc_board *pc, const char *name, const char *path, uint64_t gpa, bool readonly,
                         struct pdm_dev **out)
{
    struct pdm_cfg *cfg;
    int rc = pdm_cfg_create(&cfg);
    if (rc)
        return rc;
    rc = pdm_cfg_set(cfg, "path", path);
    if (!rc)
        rc = pdm_cfg_set_u64(cfg, "gpa", gpa);
    if (!rc)
        rc = pdm_cfg_set(cfg, "readonly", readonly ? "1" : "0");
    if (rc) {
        pdm_cfg_destroy(cfg);
        return rc;
    }
    return dev_create(pc->vm, &g_dev_pflash, name, cfg, out);
}

/*
 * OVMF's flash layout: one firmware device of a power-of-two size ending at 4 GiB, the
 * variable store at its start and the code after it (OVMF_VARS + OVMF_CODE).  A store
 * of another size than the code was built for would put the variables where OVMF does
 * not look, so it is refused before anything is opened for writing.
 */
static int load_efi(struct pc_board *pc, const struct pc_params *params)
{
    const char *code_path = params->efi_code_path;
    uint64_t code_size, vars_size;
    if (!params->efi_vars_path) {
        LOG_ERR("UEFI firmware needs a variable store file");
        return VERR_INVALID_PARAMETER;
    }
    int rc = efi_file_size(code_path, "UEFI firmware", &code_size);
    if (!rc)
        rc = efi_file_size(params->efi_vars_path, "UEFI variable store", &vars_size);
    if (rc)
        return rc;
    if (code_size < PC_BIOS_LOW_WINDOW) {
        LOG_ERR("UEFI firmware '%s' has %llu bytes: too small to be OVMF", code_path, (unsigned long long)code_size);
        return VERR_FIRMWARE;
    }
    if (code_size + vars_size > PC_BIOS_MAX_BYTES || !is_power_of_two(code_size + vars_size)) {
        uint64_t fd_size = 1;
        while (fd_size < code_size + 1 && fd_size < PC_BIOS_MAX_BYTES)
            fd_size <<= 1;
        LOG_ERR("UEFI variable store '%s' has %llu bytes; firmware '%s' (%llu bytes) needs one of %llu bytes "
                "(start from the variable store template that came with it)",
                params->efi_vars_path, (unsigned long long)vars_size, code_path, (unsigned long long)code_size,
                (unsigned long long)(fd_size - code_size));
        return VERR_FIRMWARE;
    }
    struct pdm_dev *code = NULL;
    rc = pflash_create(pc, "flash0", code_path, PC_HIGHMEM_BASE - code_size, true, &code);
    if (!rc)
        rc = pflash_create(pc, "flash1", params->efi_vars_path, PC_HIGHMEM_BASE - code_size - vars_size, false,
                           NULL);
    if (rc)
        return rc == VERR_NO_MEMORY ? rc : VERR_FIRMWARE;
    pc->bios = pflash_get_region(code);
    pc->efi = true;
    rc = mem_region_create_alias(pc->vm, "bios-low", pc->bios, code_size - PC_BIOS_LOW_WINDOW, PC_BIOS_LOW_WINDOW,
                                 true, &pc->bios_low);
    if (!rc)
        rc = mem_region_map(pc->bios_low, 0x100000 - PC_BIOS_LOW_WINDOW, PC_PRIO_BIOS_LOW);
    if (!rc)
        LOG_INFO("UEFI firmware '%s' (%llu KiB), variable store '%s'", code_path, (unsigned long long)(code_size >> 10),
                 params->efi_vars_path);
    return rc;
}

static int map_ram(struct pc_board *pc)
{
    struct vm *vm = pc->vm;
    uint64_t ram = vm_get_ram_bytes(vm);
    pc->lowmem = RT_MIN(ram, PC_LOWMEM_MAX);
    pc->highmem = ram - pc->lowmem;
    int rc = mem_region_create_ram(vm, "ram", ram, &pc->ram);
    if (rc)
        return rc;
    struct mem_region *a;
    rc = mem_region_create_alias(vm, "ram-below-vga", pc->ram, 0, PC_VGA_HOLE_START, false, &a);
    if (!rc)
        rc = mem_region_map(a, 0, PC_PRIO_RAM);
    if (!rc && pc->lowmem > PC_VGA_HOLE_END) {
        rc = mem_region_create_alias(vm, "ram-low", pc->ram, PC_VGA_HOLE_END, pc->lowmem - PC_VGA_HOLE_END, false,
                                     &a);
        if (!rc)
            rc = mem_region_map(a, PC_VGA_HOLE_END, PC_PRIO_RAM);
    }
    if (!rc && pc->highmem) {
        rc = mem_region_create_alias(vm, "ram-high", pc->ram, pc->lowmem, pc->highmem, false, &a);
        if (!rc)
            rc = mem_region_map(a, PC_HIGHMEM_BASE, PC_PRIO_RAM);
    }
    return rc;
}

/* CMOS layout the BIOS reads (the IBM PC/AT CMOS map as Bochs and SeaBIOS use it). */
static void setup_cmos(struct pc_board *pc, unsigned vcpus)
{
    struct pdm_dev *rtc = pc->rtc;
    uint64_t ext_kib = pc->lowmem > 0x100000 ? (pc->lowmem - 0x100000) >> 10 : 0;
    if (ext_kib > 0xffff)
        ext_kib = 0xffff;
    rtc_cmos_set(rtc, 0x15, 640 & 0xff); /* base memory in KiB */
    rtc_cmos_set(rtc, 0x16, 640 >> 8);
    rtc_cmos_set(rtc, 0x17, ext_kib & 0xff); /* extended memory in KiB (max 64 MiB) */
    rtc_cmos_set(rtc, 0x18, ext_kib >> 8);
    rtc_cmos_set(rtc, 0x30, ext_kib & 0xff);
    rtc_cmos_set(rtc, 0x31, ext_kib >> 8);
    uint64_t above16 = pc->lowmem > (16u << 20) ? (pc->lowmem - (16u << 20)) >> 16 : 0;
    if (above16 > 0xffff)
        above16 = 0xffff;
    rtc_cmos_set(rtc, 0x34, above16 & 0xff); /* memory above 16 MiB in 64 KiB units */
    rtc_cmos_set(rtc, 0x35, above16 >> 8);
    uint64_t above4g = pc->highmem >> 16;  /* memory above 4 GiB in 64 KiB units */
    rtc_cmos_set(rtc, 0x5b, above4g & 0xff);
    rtc_cmos_set(rtc, 0x5c, (above4g >> 8) & 0xff);
    rtc_cmos_set(rtc, 0x5d, (above4g >> 16) & 0xff);
    rtc_cmos_set(rtc, 0x5f, (uint8_t)(vcpus - 1));
    rtc_cmos_set(rtc, 0x10, 0);    /* no floppy drives */
    rtc_cmos_set(rtc, 0x14, 0x06); /* equipment: FPU, VGA/EGA (no floppy) */
}

struct e820_entry {
    uint64_t addr;
    uint64_t len;
    uint32_t type;
} __attribute__((packed));
RT_STATIC_ASSERT(sizeof(struct e820_entry) == 20);

/* SMBIOS field entries in the legacy fw_cfg format (type, offset in the structure, value). */
static int smbios_add_field(uint8_t *buf, size_t *len, size_t cap, uint8_t table, uint16_t offset,
                            const void *data, size_t data_len)
{
    size_t entry = 2 + 1 + 1 + 2 + data_len;
    if (*len + entry > cap)
        return VERR_TOO_LARGE;
    uint8_t *p = buf + *len;
    p[0] = (uint8_t)entry;
    p[1] = (uint8_t)(entry >> 8);
    p[2] = 0; /* field entry */
    p[3] = table;
    p[4] = (uint8_t)offset;
    p[5] = (uint8_t)(offset >> 8);
    memcpy(p + 6, data, data_len);
    *len += entry;
    return 0;
}

static int setup_smbios(struct pc_board *pc, const struct rt_uuid *uuid)
{
    uint8_t buf[512];
    size_t len = 2;
    uint16_t count = 0;
    static const char vendor[] = "Vireo", product[] = "Vireo Virtual Machine", version[] = "1.0";
    int rc = 0;
    /* Type 0 (BIOS information): vendor at 4.  Type 1 (system): manufacturer 4, product 5, version 6, UUID 8. */
    rc |= smbios_add_field(buf, &len, sizeof(buf), 0, 4, vendor, sizeof(vendor)), count++;
    rc |= smbios_add_field(buf, &len, sizeof(buf), 1, 4, vendor, sizeof(vendor)), count++;
    rc |= smbios_add_field(buf, &len, sizeof(buf), 1, 5, product, sizeof(product)), count++;
    rc |= smbios_add_field(buf, &len, sizeof(buf), 1, 6, version, sizeof(version)), count++;
    rc |= smbios_add_field(buf, &len, sizeof(buf), 1, 8, uuid->bytes, sizeof(uuid->bytes)), count++;
    if (rc)
        return VERR_TOO_LARGE;
    buf[0] = (uint8_t)count;
    buf[1] = (uint8_t)(count >> 8);
    return fwcfg_set_item(pc->fwcfg, FWCFG_SMBIOS_ENTRIES, buf, len);
}

static int setup_fwcfg(struct pc_board *pc, const struct pc_params *params, unsigned vcpus)
{
    struct pdm_dev *f = pc->fwcfg;
    struct rt_uuid uuid;
    int rc = rt_uuid_generate(&uuid);
    if (!rc)
        rc = fwcfg_set_u64(f, FWCFG_RAM_SIZE, vm_get_ram_bytes(pc->vm));
    if (!rc)
        rc = fwcfg_set_u16(f, FWCFG_NB_CPUS, (uint16_t)vcpus);
    if (!rc)
        rc = fwcfg_set_u16(f, FWCFG_MAX_CPUS, (uint16_t)vcpus);
    if (!rc)
        rc = fwcfg_set_u16(f, FWCFG_NOGRAPHIC, 1);
    if (!rc)
        rc = fwcfg_set_u16(f, FWCFG_BOOT_MENU, 0);
    if (!rc)
        rc = fwcfg_set_item(f, FWCFG_UUID, uuid.bytes, sizeof(uuid.bytes));
    struct e820_entry e820[2] = { { 0, pc->lowmem, 1 }, { PC_HIGHMEM_BASE, pc->highmem, 1 } };
    if (!rc)
        rc = fwcfg_add_file(f, "etc/e820", e820, (pc->highmem ? 2 : 1) * sizeof(e820[0]));
    if (!rc && params->serial[0]) {
        /* SeaBIOS's screen output (banner, boot messages) goes to COM1, beside the VGA when there is one. */
        uint64_t port = g_com_base[0];
        rc = fwcfg_add_file(f, "etc/sercon-port", &port, sizeof(port));
    }
    if (!rc) {
        /* Retry booting after 5 s instead of SeaBIOS's default minute when nothing is bootable. */
        uint32_t wait_ms = 5000;
        rc = fwcfg_add_file(f, "etc/boot-fail-wait", &wait_ms, sizeof(wait_ms));
    }
    if (!rc && params->apic)
        rc = fwcfg_set_u32(f, FWCFG_IRQ0_OVERRIDE, 1); /* SeaBIOS's MP table: ISA IRQ 0 on I/O APIC pin 2 */
    if (!rc)
        rc = setup_smbios(pc, &uuid);
    return rc;
}

/*
 * ACPI tables for this machine (acpi.c): handed to the firmware through fw_cfg and,
 * for a direct kernel boot without firmware, kept for pc_linux_reset to place in the
 * top PC_ACPI_DIRECT_BYTES of low RAM (and the TPM event log area below them).
 */
/*
 * The firmware reads etc/acpi/tables after it has programmed the PM function's PMBA
 * (SeaBIOS puts it at 0x600 once it sees a table loader, OVMF at 0xb000): the FADT
 * names the base the block decodes at then, as on a machine whose BIOS builds its
 * tables after PCI set-up.  The script is unchanged: only FADT fields move.
 */
static void pc_acpi_tables_selected(void *opaque)
{
    struct pc_board *pc = opaque;
    uint16_t base = piix4_pm_io_base(pc->pm);
    if (!base || base == pc->acpi_cfg.pm_base)
        return;
    struct acpi_config cfg = pc->acpi_cfg;
    struct acpi_tables t = { 0 };
    cfg.pm_base = base;
    if (acpi_tables_build(&cfg, &t) != 0 || t.tables_len != pc->acpi.tables_len) {
        LOG_ERR("cannot rebuild the ACPI tables for the PM block at 0x%x: the FADT keeps 0x%x", base,
                pc->acpi_cfg.pm_base);
        if (t.tables)
            acpi_tables_free(&t);
        return;
    }
    if (fwcfg_add_file(pc->fwcfg, ACPI_FILE_TABLES, t.tables, t.tables_len) != 0) {
        acpi_tables_free(&t);
        return;
    }
    acpi_tables_free(&pc->acpi);
    pc->acpi = t;
    pc->acpi_cfg = cfg;
    LOG_INFO("ACPI tables: the PM registers at 0x%x, where the firmware put them", base);
}

static int setup_acpi(struct pc_board *pc, const struct pc_params *params, unsigned vcpus)
{
    struct acpi_config cfg = {
        .vcpus = vcpus,
        .apic = params->apic,
        .hpet = params->hpet,
        .tpm = params->tpm_state_dir != NULL,
        .lowmem_bytes = pc->lowmem,
        .highmem_bytes = pc->highmem,
        .phys_bits = 40, /* the software CPU's CPUID 0x80000008 */
        .pm_base = PC_ACPI_PM_BASE,
    };
    for (unsigned i = 0; i < PC_SERIAL_PORTS; i++)
        cfg.com[i] = params->serial[i] != NULL;
    pc->acpi_cfg = cfg;
    int rc = acpi_tables_build(&cfg, &pc->acpi);
    if (!rc)
        rc = acpi_tables_add_fwcfg(pc->fwcfg, &pc->acpi);
    /* Without firmware (a direct kernel boot; under UEFI OVMF loads the kernel) the board places them. */
    bool direct = params->kernel_path && !pc->efi;
    if (!rc && !direct)
        rc = fwcfg_set_file_hook(pc->fwcfg, ACPI_FILE_TABLES, pc_acpi_tables_selected, pc);
    if (!rc && params->acpi_dump_dir)
        rc = acpi_tables_dump(&pc->acpi, params->acpi_dump_dir);
    if (!rc && direct) {
        if (pc->lowmem < (16u << 20) || pc->acpi.tables_len > PC_ACPI_DIRECT_BYTES) {
            LOG_ERR("ACPI tables of %zu bytes need more than %llu MiB of memory for a direct kernel boot",
                    pc->acpi.tables_len, (unsigned long long)(pc->lowmem >> 20));
            return VERR_TOO_LARGE;
        }
        /* The TPM's event log area, if any, sits right below the tables. */
        pc->acpi_reserved = PC_ACPI_DIRECT_BYTES + pc->acpi.tpm_log_len;
        pc->acpi_gpa = pc->lowmem - PC_ACPI_DIRECT_BYTES;
    }
    if (!rc)
        LOG_INFO("ACPI tables: %zu bytes, %u vCPUs%s%s%s", pc->acpi.tables_len, vcpus, params->apic ? ", MADT" : "",
                 params->hpet ? ", HPET" : "", params->tpm_state_dir ? ", TPM2" : "");
    return rc;
}

/* The graphics adapter in the slot DESIGN-NOTES keeps for it (00:02.0). */
static int setup_vga(struct pc_board *pc, const struct pc_params *params)
{
    const char *kind = params->vga ? params->vga : "std";
    if (!strcmp(kind, "none"))
        return 0;
    if (strcmp(kind, "std") != 0) {
        LOG_ERR("graphics adapter '%s' is unknown: Vireo's PC has 'std' (VGA with Bochs VBE) or 'none'", kind);
        return VERR_CFG_BAD_VALUE;
    }
    struct pdm_cfg *cfg;
    int rc = pdm_cfg_create(&cfg);
    if (rc)
        return rc;
    rc = pdm_cfg_set_u64(cfg, "slot", 2);
    if (!rc && params->vram_mib)
        rc = pdm_cfg_set_u64(cfg, "vram_mib", params->vram_mib);
    if (rc) {
        pdm_cfg_destroy(cfg);
        return rc;
    }
    return dev_create(pc->vm, &g_dev_vga, "vga", cfg, NULL);
}

static int board_construct(struct pdm_dev *dev, const struct pdm_cfg *cfg)
{
    return 0;
}

static void board_destroy(struct pdm_dev *dev)
{
    struct pc_board *pc = *(struct pc_board **)pdm_dev_state(dev);
    if (!pc)
        return;
    pc_linux_free(pc);
    acpi_tables_free(&pc->acpi);
    free(pc);
}

/* Not in the device registry: only pc_board_create makes it. */
static const struct pdm_dev_desc g_pc_board_desc = {
    .name = "pc-board",
    .description = "PC board state (direct-boot kernel, memory layout)",
    .state_size = sizeof(struct pc_board *),
    .ssm_version = 1,
    .construct = board_construct,
    .destroy = board_destroy,
};

/* Reset hook: the vCPUs are parked and reset; reload what a direct kernel boot needs. */
static void pc_board_reset(void *opaque)
{
    struct pc_board *pc = opaque;
    /* Under UEFI the firmware loads the kernel from fw_cfg (OVMF's QemuKernelLoaderFsDxe). */
    if (pc->linux_image && !pc->efi)
        pc_linux_reset(pc);
}

int pc_board_create(struct vm *vm, const struct pc_params *params)
{
    struct pc_board *pc = calloc(1, sizeof(*pc));
    if (!pc)
        return VERR_NO_MEMORY;
    pc->vm = vm;
    pc->apic = params->apic;
    unsigned vcpus = vm_get_vcpu_count(vm);
    struct pdm_cfg *cfg;
    struct pdm_dev *pic = NULL;
    int rc = map_ram(pc);
    if (!rc && params->efi_code_path)
        rc = load_efi(pc, params);
    else if (!rc)
        rc = load_bios(pc, params->bios_path ? params->bios_path : PC_DEFAULT_BIOS);
    /* Interrupt controller first: everything after it may raise interrupts. */
    if (!rc && !(rc = pdm_cfg_create(&cfg)))
        rc = dev_create(vm, &g_dev_i8259, "pic", cfg, &pic);
    if (!rc && params->apic)
        rc = setup_apic(pc, pic);
    if (!rc && !(rc = pdm_cfg_create(&cfg)))
        rc = dev_create(vm, &g_dev_i8254, "pit", cfg, NULL);
    if (!rc && !(rc = pdm_cfg_create(&cfg)))
        rc = dev_create(vm, &g_dev_mc146818, "rtc", cfg, &pc->rtc);
    if (!rc && params->hpet)
        rc = setup_hpet(pc);
    if (!rc && !(rc = pdm_cfg_create(&cfg)))
        rc = dev_create(vm, &g_dev_i440fx, "pci", cfg, &pc->chipset);
    if (!rc)
        rc = i440fx_set_memory(pc->chipset, pc->ram, pc->bios);
    if (!rc && !(rc = pdm_cfg_create(&cfg)))
        rc = dev_create(vm, &g_dev_fwcfg, "fwcfg", cfg, &pc->fwcfg);
    if (!rc)
        rc = setup_pm(pc);
    if (!rc && !(rc = pdm_cfg_create(&cfg)))
        rc = dev_create(vm, &g_dev_debugport, "debug", cfg, NULL);
    if (!rc && !(rc = pdm_cfg_create(&cfg))) {
        struct pdm_dev *kbc = NULL;
        if (!(rc = dev_create(vm, &g_dev_i8042, "kbc", cfg, &kbc)))
            i8042_set_a20_output(kbc, pc_kbc_a20, pc->chipset);
    }
    for (unsigned i = 0; !rc && i < PC_SERIAL_PORTS; i++) {
        if (!params->serial[i])
            continue;
        char name[8];
        snprintf(name, sizeof(name), "com%u", i + 1);
        if (!(rc = pdm_cfg_create(&cfg))) {
            pdm_cfg_set_u64(cfg, "iobase", g_com_base[i]);
            pdm_cfg_set_u64(cfg, "irq", g_com_irq[i]);
            pdm_cfg_set(cfg, "backend", params->serial[i]);
            rc = dev_create(vm, &g_dev_uart16550, name, cfg, NULL);
        }
    }
    if (!rc && params->test_exit && !(rc = pdm_cfg_create(&cfg)))
        rc = dev_create(vm, &g_dev_testexit, "testexit", cfg, NULL);
    if (!rc) {
        setup_cmos(pc, vcpus);
        rc = setup_fwcfg(pc, params, vcpus);
    }
    if (!rc && params->acpi)
        rc = setup_acpi(pc, params, vcpus);
    if (!rc)
        rc = setup_vga(pc, params);
    if (!rc)
        rc = pc_storage_setup(pc, params);
    if (!rc && params->tpm_state_dir && !params->acpi_dump_dir && !(rc = pdm_cfg_create(&cfg))) {
        /*
         * TPM 2.0 at the TIS address the firmware and the ACPI tables expect (swtpm keeps its state).
         * Dumping the ACPI tables describes it without starting swtpm.
         */
        rc = pdm_cfg_set(cfg, "state_dir", params->tpm_state_dir);
        if (!rc)
            rc = dev_create(vm, &g_dev_tpm_tis, "tpm", cfg, NULL);
        else
            pdm_cfg_destroy(cfg);
    }
    if (!rc && params->kernel_path)
        rc = pc_linux_setup(pc, params);
    if (rc) {
        pc_linux_free(pc);
        acpi_tables_free(&pc->acpi);
        free(pc);
        return rc;
    }
    /* The board's own state lives as long as the VM: a pseudo-device frees it. */
    rc = pdm_dev_create(vm, &g_pc_board_desc, "board", NULL, &pc->self);
    if (rc) {
        pc_linux_free(pc);
        acpi_tables_free(&pc->acpi);
        free(pc);
        return rc;
    }
    *(struct pc_board **)pdm_dev_state(pc->self) = pc;
    vm_set_reset_hook(vm, pc_board_reset, pc);
    return 0;
}
