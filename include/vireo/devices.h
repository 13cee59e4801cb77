/* devices.h - the device models Vireo ships, the helpers the board uses to wire them, and the PC board. */
#ifndef VIREO_DEVICES_H
#define VIREO_DEVICES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vireo/pdm.h"

/* ---- The registry of device models --------------------------------------- */

extern const struct pdm_dev_desc g_dev_i8259;      /* PIC pair + ELCR (ports 0x20, 0xa0, 0x4d0) */
extern const struct pdm_dev_desc g_dev_i8254;      /* PIT + port 0x61 (gate, speaker, refresh) */
extern const struct pdm_dev_desc g_dev_mc146818;   /* RTC + CMOS NVRAM (ports 0x70/0x71) */
extern const struct pdm_dev_desc g_dev_uart16550;  /* one 16550A UART */
extern const struct pdm_dev_desc g_dev_i440fx;     /* i440FX host bridge + PIIX3 ISA bridge, PAM, port 0x92 */
extern const struct pdm_dev_desc g_dev_fwcfg;      /* fw_cfg (ports 0x510/0x511, DMA 0x514) */
extern const struct pdm_dev_desc g_dev_debugport;  /* POST codes (0x80) and firmware debug output (0x402) */
extern const struct pdm_dev_desc g_dev_testexit;   /* test exit device (port 0xf4) */
extern const struct pdm_dev_desc g_dev_apic;       /* local APICs of all vCPUs (xAPIC, MMIO 0xfee00000) */
extern const struct pdm_dev_desc g_dev_ioapic;     /* 82093AA I/O APIC, 24 pins (MMIO 0xfec00000) */
extern const struct pdm_dev_desc g_dev_i8042;      /* 8042 keyboard controller, PS/2 keyboard and mouse (0x60/0x64, IRQ 1/12) */
/* Storage controllers (src/Devices/Storage); their drives are configured with the keys in storage.h. */
extern const struct pdm_dev_desc g_dev_piix3_ide;  /* PIIX3 IDE (PCI function 1 of the PIIX3): two channels, ATA/ATAPI, bus-master DMA */
extern const struct pdm_dev_desc g_dev_ahci;       /* AHCI 1.3 SATA controller (ICH9 AHCI IDs), 6 ports */
extern const struct pdm_dev_desc g_dev_virtio_blk; /* virtio-blk over modern virtio-pci (virtio 1.x) */
/* Graphics (src/Devices/Graphics): keys vram_mib (power of two, 4-256, default 16), rom (VGA BIOS path or "none"), slot. */
extern const struct pdm_dev_desc g_dev_vga;        /* standard VGA with Bochs VBE extensions (PCI 1234:1111) */
extern const struct pdm_dev_desc g_dev_hpet;       /* IA-PC HPET: 100 MHz counter, 3 timers (MMIO PC_HPET_BASE) */
/* TPM (src/Devices/TPM): key state_dir (swtpm's state folder; absent: no backend until tpm_tis_attach_backend). */
extern const struct pdm_dev_desc g_dev_tpm_tis;    /* TPM 2.0 behind the PTP FIFO (TIS) interface at 0xfed40000 */
/* ACPI power management (src/Devices/PC/piix4-pm.c): keys slot, function (default 1.3), irq (the SCI, default PC_ACPI_SCI_IRQ). */
extern const struct pdm_dev_desc g_dev_piix4_pm;   /* PIIX4 PM function: PM1/GPE0, PM timer, SCI, APM port 0xb2, power button, S5 */

/*
 * CFI parallel flash (Intel command set, byte wide, 4 KiB blocks) for UEFI firmware.  Keys: path (the
 * image; its size, a multiple of 4 KiB, is the flash's), gpa (default: ending at 4 GiB), readonly
 * (0/1: the firmware code, writes refused).  A writable flash writes every program and erase through
 * to its file and locks it against a second VM.
 */
extern const struct pdm_dev_desc g_dev_pflash;
#define PFLASH_BLOCK_BYTES 4096u
/* The flash's ROM-device region (the board maps the firmware's low alias and the PAM windows onto the code flash). */
struct mem_region *pflash_get_region(struct pdm_dev *flash);

/* NULL-terminated table of every device model, and lookup by name. */
extern const struct pdm_dev_desc *const g_pdm_devices[];
const struct pdm_dev_desc *devices_find(const char *name);

/* ---- Device-specific helpers the board calls ------------------------------ */

/* CMOS NVRAM byte (the board stores memory sizes and boot settings for the firmware). */
void rtc_cmos_set(struct pdm_dev *rtc, unsigned index, uint8_t value);
uint8_t rtc_cmos_get(struct pdm_dev *rtc, unsigned index);

/* The PIC pair's INT output goes to fn instead of vCPU 0's INTR (the board feeds it into the BSP's LINT0). */
void pic_set_output(struct pdm_dev *pic, void (*fn)(void *opaque, bool level), void *opaque);
/* The PIC pair's INTA cycle (the local APIC runs it for an ExtINT interrupt): a vector, or -1. */
int pic_intack(struct pdm_dev *pic);

/*
 * Local APIC and I/O APIC.  Create the APIC after the i8259 (it replaces the PIC as
 * the VM's interrupt controller) and only for the software CPU.  Wiring: the PIC's
 * output into LINT0 of vCPU 0 (apic_set_lint from pic_set_output's callback), the
 * PIC's INTA for ExtINT (apic_set_extint), and ioapic_connect.
 */
#define APIC_DEFAULT_BASE   0xfee00000u
#define IOAPIC_DEFAULT_BASE 0xfec00000u
/* Delivery modes of interrupt messages, LVT entries and redirection entries (SDM vol. 3A 10.5.1, 10.6.1). */
enum {
    APIC_DM_FIXED = 0, APIC_DM_LOWEST = 1, APIC_DM_SMI = 2, APIC_DM_NMI = 4,
    APIC_DM_INIT = 5, APIC_DM_STARTUP = 6, APIC_DM_EXTINT = 7,
};
/* An interrupt message on the APIC bus (from an I/O APIC redirection entry or an MSI). */
struct apic_msg {
    uint8_t vector;
    uint8_t delivery_mode; /* APIC_DM_* */
    bool dest_logical;     /* destination is a logical (LDR) mask, else an APIC ID (0xff: all) */
    uint8_t dest;
    bool level;            /* level-triggered: the EOI is broadcast back (TMR) */
};
/* Delivers msg to the local APICs it addresses; true when at least one accepted it. */
bool apic_deliver(struct pdm_dev *apic, const struct apic_msg *msg);
/* An MSI write (address 0xfeexxxxx, data) as the PCI spec and SDM vol. 3A 10.11 define it. */
void apic_deliver_msi(struct pdm_dev *apic, uint64_t addr, uint32_t data);
/* Drives pin (0: LINT0, 1: LINT1) of vCPU cpu's local APIC. */
void apic_set_lint(struct pdm_dev *apic, unsigned cpu, unsigned pin, bool level);
/* The external controller (8259) that answers the INTA of an ExtINT interrupt. */
void apic_set_extint(struct pdm_dev *apic, int (*inta)(void *opaque), void *opaque);
/* Called with the vector of every EOI of a level-triggered interrupt (the I/O APIC's remote IRR). */
void apic_set_eoi_listener(struct pdm_dev *apic, void (*fn)(void *opaque, uint8_t vector), void *opaque);
/* Register access for vCPU cpu's APIC (debugging, tests): offset as in the MMIO page. */
uint32_t apic_reg_read(struct pdm_dev *apic, unsigned cpu, unsigned offset);
void apic_reg_write(struct pdm_dev *apic, unsigned cpu, unsigned offset, uint32_t value);
/* The CPU-side callbacks the APIC installed with vm_set_intc (unit tests of the APIC and of CPU backends). */
void apic_get_intc(struct pdm_dev *apic, struct vm_intc *out);
/* The I/O APIC sends its messages to apic and listens to its EOIs. */
void ioapic_connect(struct pdm_dev *ioapic, struct pdm_dev *apic);
/* An EOI for vector from a local APIC: clears the remote IRR of matching level-triggered entries. */
void ioapic_eoi(struct pdm_dev *ioapic, uint8_t vector);

/*
 * The 8042's A20 output line (output port bit 1) goes to fn (the board: the chipset's A20 gate input);
 * fn is called at once with the current level.  Without it the controller sets the VM's gate itself.
 */
void i8042_set_a20_output(struct pdm_dev *kbc, void (*fn)(void *opaque, bool level), void *opaque);

/*
 * HPET legacy replacement (IA-PC HPET 1.0a, 2.3.9.2.2): while LEG_RT_CNF is set the HPET's
 * timers 0 and 1 drive IRQ 0 and IRQ 8 and the chipset disconnects the PIT's and the RTC's
 * interrupt outputs.  The HPET tells fn (the board) the mode at once, on every change, at
 * reset and after a load; the board mutes or reconnects the PIT and RTC outputs with
 * i8254_set_irq_enabled and rtc_set_irq_enabled (connected after creation).
 */
void hpet_set_legacy_listener(struct pdm_dev *hpet, void (*fn)(void *opaque, bool legacy), void *opaque);
void i8254_set_irq_enabled(struct pdm_dev *pit, bool on);
void rtc_set_irq_enabled(struct pdm_dev *rtc, bool on);

/* fw_cfg selector keys (QEMU's fw_cfg ABI, which SeaBIOS and OVMF speak). */
enum {
    FWCFG_SIGNATURE = 0x00, FWCFG_ID = 0x01, FWCFG_UUID = 0x02, FWCFG_RAM_SIZE = 0x03,
    FWCFG_NOGRAPHIC = 0x04, FWCFG_NB_CPUS = 0x05, FWCFG_MACHINE_ID = 0x06,
    FWCFG_KERNEL_ADDR = 0x07, FWCFG_KERNEL_SIZE = 0x08, FWCFG_KERNEL_CMDLINE = 0x09,
    FWCFG_INITRD_ADDR = 0x0a, FWCFG_INITRD_SIZE = 0x0b, FWCFG_BOOT_DEVICE = 0x0c,
    FWCFG_NUMA = 0x0d, FWCFG_BOOT_MENU = 0x0e, FWCFG_MAX_CPUS = 0x0f,
    FWCFG_KERNEL_ENTRY = 0x10, FWCFG_KERNEL_DATA = 0x11, FWCFG_INITRD_DATA = 0x12,
    FWCFG_CMDLINE_ADDR = 0x13, FWCFG_CMDLINE_SIZE = 0x14, FWCFG_CMDLINE_DATA = 0x15,
    FWCFG_SETUP_ADDR = 0x16, FWCFG_SETUP_SIZE = 0x17, FWCFG_SETUP_DATA = 0x18,
    FWCFG_FILE_DIR = 0x19,
    FWCFG_FILE_FIRST = 0x20,
    FWCFG_ACPI_TABLES = 0x8000, FWCFG_SMBIOS_ENTRIES = 0x8001, FWCFG_IRQ0_OVERRIDE = 0x8002,
    FWCFG_E820_TABLE = 0x8003, FWCFG_HPET = 0x8004,
};
/* Sets a numbered item to a copy of data (replacing an earlier value). */
int fwcfg_set_item(struct pdm_dev *fwcfg, uint16_t key, const void *data, size_t len);
int fwcfg_set_u16(struct pdm_dev *fwcfg, uint16_t key, uint16_t value);
int fwcfg_set_u32(struct pdm_dev *fwcfg, uint16_t key, uint32_t value);
int fwcfg_set_u64(struct pdm_dev *fwcfg, uint16_t key, uint64_t value);
/* Adds a named file ("etc/e820", "bootorder", ...) with a copy of data; listed in FILE_DIR. */
int fwcfg_add_file(struct pdm_dev *fwcfg, const char *name, const void *data, size_t len);
/*
 * fn runs (with the VM lock held) whenever the guest selects the named file, before it reads
 * it, and may replace the file's contents with fwcfg_add_file: tables that describe what the
 * firmware programmed (the ACPI PM base) are built when the firmware asks for them.
 */
int fwcfg_set_file_hook(struct pdm_dev *fwcfg, const char *name, void (*fn)(void *opaque), void *opaque);

/* The PIIX4 PM function's register block: where it decodes now (0: hidden), and the firmware's
 * set-up of it (PMBA = base, PMIOSE on) for boots without firmware. */
uint16_t piix4_pm_io_base(struct pdm_dev *pm);
void piix4_pm_set_io_base(struct pdm_dev *pm, uint16_t base);

/*
 * The TPM TIS device hands each complete command to a backend (swtpm, or a test double).
 * submit() must not block on the TPM: the backend answers later, from any thread that
 * holds the VM lock, with tpm_tis_complete().  It may answer inside submit().  drain()
 * (VM lock held, vCPUs parked: saved state, reset) returns only after the response of a
 * submitted command has been handed over.  reset() is the platform reset's TPM_Init.
 */
struct tpm_backend_ops {
    int (*submit)(void *backend, unsigned locality, const uint8_t *cmd, size_t len);
    void (*drain)(void *backend);
    int (*reset)(void *backend);
    void (*destroy)(void *backend);
};
/* Replaces the device's backend (the old one is destroyed); the device destroys ops/backend with itself. */
void tpm_tis_attach_backend(struct pdm_dev *tis, const struct tpm_backend_ops *ops, void *backend);
/* The response to the submitted command (copied; VM lock held). */
void tpm_tis_complete(struct pdm_dev *tis, const uint8_t *resp, size_t len);

/* ---- Serial backends ------------------------------------------------------ */

/*
 * Where a UART's bytes go, from a spec string:
 *   null | stdio | file:PATH | unix:PATH (listening socket) | tcp:[ADDR:]PORT (listening, loopback by default)
 * Host I/O runs on the VM's event loop; received bytes are handed to rx(opaque, buf, len)
 * with the VM lock held, and can_rx(opaque) says how many bytes the UART can take.
 */
struct serial_backend; /* opaque */
struct serial_backend_client {
    size_t (*can_rx)(void *opaque);
    void (*rx)(void *opaque, const uint8_t *buf, size_t len);
    void *opaque;
};
/* Checks the spec and opens files/sockets now, so a bad path fails VM creation with a clear message. */
int serial_backend_open(struct vm *vm, const char *spec, const struct serial_backend_client *client,
                        struct serial_backend **out);
/* Queues bytes for the host side (never blocks the vCPU; drops and counts on overflow). */
void serial_backend_write(struct serial_backend *backend, const uint8_t *buf, size_t len);
/* A reader may have freed space: poll the host side again. */
void serial_backend_rx_ready(struct serial_backend *backend);
void serial_backend_close(struct serial_backend *backend);

/* ---- The PC board ----------------------------------------------------------- */

/*
 * Platform addresses the ACPI tables, the firmware and the device models agree on.
 * SeaBIOS and OVMF both program the PIIX4 PM function's I/O base (PMBA, config 0x40
 * of 00:01.3) to 0xb000; the register layout below is the PIIX4's (datasheet 7.2).
 */
#define PC_PIIX4_PM_SLOT     1
#define PC_PIIX4_PM_FUNC     3
#define PC_ACPI_PM_BASE      0xb000u
#define PC_ACPI_PM_LEN       0x40u
#define PC_ACPI_PM1_EVT      (PC_ACPI_PM_BASE + 0x00) /* PM1a status (2) + enable (2) */
#define PC_ACPI_PM1_CNT      (PC_ACPI_PM_BASE + 0x04) /* PM1a control (2) */
#define PC_ACPI_PM_TMR       (PC_ACPI_PM_BASE + 0x08) /* 24-bit PM timer at 3.579545 MHz (4) */
#define PC_ACPI_GPE0         (PC_ACPI_PM_BASE + 0x0c) /* GPE0 status (2) + enable (2) */
#define PC_ACPI_GPE0_LEN     4u
#define PC_ACPI_SCI_IRQ      9u    /* level, active high: the MADT has an override for it */
#define PC_ACPI_SLP_TYP_S5   0u    /* PIIX4 SLP_TYP 000: soft off */
#define PC_APM_CNT_PORT      0xb2u /* the FADT's SMI_CMD: ACPI enable/disable commands */
#define PC_ACPI_ENABLE_CMD   0xf1u
#define PC_ACPI_DISABLE_CMD  0xf0u
#define PC_RESET_PORT        0xcf9u /* the FADT's reset register (I/O), value below */
#define PC_RESET_VALUE       0x06u
#define PC_HPET_BASE         0xfed00000u
#define PC_HPET_LEN          0x400u
#define PC_TPM_TIS_BASE      0xfed40000u
#define PC_TPM_TIS_LEN       0x5000u  /* five localities of 4 KiB */

#define PC_SERIAL_PORTS 4

/* Storage: which controller a drive hangs on. */
enum pc_storage_bus { PC_BUS_IDE, PC_BUS_AHCI, PC_BUS_VIRTIO };
#define PC_MAX_DRIVES   16
#define PC_IDE_PORTS    4 /* primary master, primary slave, secondary master, secondary slave */
#define PC_AHCI_PORTS   6
#define PC_VIRTIO_BLKS  8 /* one virtio-blk function per disk */

struct pc_drive {
    enum pc_storage_bus bus;
    int port;            /* IDE 0-3, AHCI 0-5; -1: the first free one (virtio: its own function) */
    bool cdrom;
    const char *path;    /* NULL: an empty CD drive */
    const char *format;  /* NULL: probe */
    bool readonly;
};

struct pc_params {
    const char *bios_path;    /* NULL: the SeaBIOS image from Debian's seabios package */
    const char *kernel_path;  /* direct Linux boot when set (bzImage) */
    const char *initrd_path;
    const char *cmdline;
    const char *serial[PC_SERIAL_PORTS]; /* backend spec per COM port, NULL: not present */
    bool test_exit;           /* add the test exit device */
    const char *boot_order;   /* firmware boot order: 'c' hard disks, 'd' CD/DVD drives (NULL: "dc") */
    struct pc_drive drives[PC_MAX_DRIVES];
    unsigned drive_count;
    bool apic;                /* local APICs and an I/O APIC (software CPU only; KVM hides the APIC) */
    const char *vga;          /* graphics adapter at 00:02.0: "std" (VGA + Bochs VBE; NULL means std) or "none" */
    unsigned vram_mib;        /* its video memory (power of two, 4-256; 0: the device's default of 16) */
    bool hpet;                /* an HPET at PC_HPET_BASE (its legacy replacement mutes the PIT and RTC outputs) */
    const char *tpm_state_dir; /* a TPM 2.0 (TIS at PC_TPM_TIS_BASE, swtpm) keeping its state here; NULL: no TPM */
    bool acpi;                /* ACPI tables for the firmware (fw_cfg) or, with kernel_path, placed in RAM */
    const char *acpi_dump_dir; /* write the ACPI tables there as an OS sees them (vireo-vm --dump-acpi) */
    /*
     * UEFI: when efi_code_path is set it replaces the BIOS: the code is a read-only flash ending at
     * 4 GiB and efi_vars_path (required then) the writable variable store right below it; their sizes
     * must add up to a power of two (the firmware volume layout OVMF is built for).
     */
    const char *efi_code_path;
    const char *efi_vars_path;
};

#define PC_DEFAULT_BIOS "/usr/share/seabios/bios-256k.bin"
/* OVMF from Debian's ovmf package: the build without Secure Boot and SMM (what an i440FX runs), and its variable store template. */
#define PC_DEFAULT_EFI_CODE "/usr/share/OVMF/OVMF_CODE_4M.fd"
#define PC_DEFAULT_EFI_VARS "/usr/share/OVMF/OVMF_VARS_4M.fd"

/*
 * Builds the PC on a created VM: RAM around the PCI hole, firmware ROM, chipset,
 * legacy devices, fw_cfg contents and (for direct boot) the kernel in memory and the
 * boot CPU state.  Errors are logged with the offending file or value.
 */
int pc_board_create(struct vm *vm, const struct pc_params *params);

#endif
