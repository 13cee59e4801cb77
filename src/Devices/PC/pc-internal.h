/* pc-internal.h - the PC board's private state, shared by pc-board.c and pc-linux.c. */
#ifndef VIREO_PC_INTERNAL_H
#define VIREO_PC_INTERNAL_H

#include "vireo/devices.h"
#include "acpi-internal.h"

struct pc_board {
    struct vm *vm;
    struct pdm_dev *self;
    struct mem_region *ram;      /* all guest RAM, one host allocation */
    struct mem_region *bios;     /* firmware image ending at 4 GiB */
    struct mem_region *bios_low; /* its last 128 KiB at 0xE0000 */
    uint64_t lowmem, highmem;    /* RAM below the PCI hole and above 4 GiB */
    struct pdm_dev *rtc, *chipset, *fwcfg;
    bool apic;                   /* local APICs and the I/O APIC (pc_params.apic) */
    bool efi;                    /* UEFI firmware in flash (no direct kernel load: OVMF reads fw_cfg) */
    /* Direct Linux boot. */
    uint8_t *linux_image;        /* the bzImage file */
    size_t linux_size;
    uint8_t *initrd;
    size_t initrd_size;
    char *cmdline;
    uint64_t initrd_gpa;
    /*
     * ACPI tables (params->acpi); a direct kernel boot places them at acpi_gpa, the top
     * PC_ACPI_DIRECT_BYTES of low RAM, and the TPM event log area (acpi.tpm_log_len bytes)
     * right below: acpi_reserved bytes in all.
     */
    struct acpi_tables acpi;
    struct acpi_config acpi_cfg;  /* what they were built for (the PM base follows the firmware) */
    uint64_t acpi_gpa, acpi_reserved;
    struct pdm_dev *pm;           /* the PIIX4 PM function */
};

/* RAM a direct kernel boot keeps for the ACPI tables, and where their RSDP goes (the EBDA, which an OS searches). */
#define PC_ACPI_DIRECT_BYTES (64u << 10)
#define PC_ACPI_DIRECT_RSDP  0x9fc00ULL

/* Loads and checks the bzImage/initrd, fills fw_cfg's kernel items; the load itself happens on reset. */
int pc_linux_setup(struct pc_board *pc, const struct pc_params *params);
/* Copies the kernel, initrd, command line and boot parameters into RAM and sets the boot CPU state. */
void pc_linux_reset(struct pc_board *pc);
void pc_linux_free(struct pc_board *pc);
/*
 * The MP configuration a direct boot hands the kernel in place of firmware (Intel
 * MultiProcessor Specification 1.4, chapter 4): the floating pointer at buf (which sits
 * at guest-physical gpa) followed by the configuration table, with one processor per
 * vCPU (APIC ID = vCPU index, vCPU 0 the BSP), the I/O APIC with ID ioapic_id and the ISA
 * interrupts as the board wires them.  Returns the bytes used, 0 when cap is too small.
 */
size_t pc_mptable_build(uint8_t *buf, size_t cap, uint32_t gpa, unsigned vcpus, uint8_t ioapic_id);
/* Storage controllers and drives from params->drives, and the firmware boot order (fw_cfg must exist). */
int pc_storage_setup(struct pc_board *pc, const struct pc_params *params);

#endif
