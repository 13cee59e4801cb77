/* pc-internal.h - the PC board's private state, shared by pc-board.c and pc-linux.c. */
#ifndef VIREO_PC_INTERNAL_H
#define VIREO_PC_INTERNAL_H

#include "vireo/devices.h"

struct pc_board {
    struct vm *vm;
    struct pdm_dev *self;
    struct mem_region *ram;      /* all guest RAM, one host allocation */
    struct mem_region *bios;     /* firmware image ending at 4 GiB */
    struct mem_region *bios_low; /* its last 128 KiB at 0xE0000 */
    uint64_t lowmem, highmem;    /* RAM below the PCI hole and above 4 GiB */
    struct pdm_dev *rtc, *chipset, *fwcfg;
    bool efi;                    /* UEFI firmware in flash (no direct kernel load: OVMF reads fw_cfg) */
    /* Direct Linux boot. */
    uint8_t *linux_image;        /* the bzImage file */
    size_t linux_size;
    uint8_t *initrd;
    size_t initrd_size;
    char *cmdline;
    uint64_t initrd_gpa;
};

/* Loads and checks the bzImage/initrd, fills fw_cfg's kernel items; the load itself happens on reset. */
int pc_linux_setup(struct pc_board *pc, const struct pc_params *params);
/* Copies the kernel, initrd, command line and boot parameters into RAM and sets the boot CPU state. */
void pc_linux_reset(struct pc_board *pc);
void pc_linux_free(struct pc_board *pc);
/* Storage controllers and drives from params->drives, and the firmware boot order (fw_cfg must exist). */
int pc_storage_setup(struct pc_board *pc, const struct pc_params *params);

#endif
