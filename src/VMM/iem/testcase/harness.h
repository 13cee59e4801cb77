/* harness.h - interpreter test harness: a VM on the software CPU with RAM, code placement, one-call mode setups, stepping with iem_step. */
#ifndef VIREO_IEM_HARNESS_H
#define VIREO_IEM_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../iem-internal.h"

/*
 * A harness VM has one vCPU (iemh_create_smp: several), no devices, a manual clock and RAM at guest-physical 0.
 * No vCPU thread runs: tests drive the interpreter on their own thread with iemh_run
 * (iem_step: stops at HLT, at the first exception, which is reported and not
 * delivered, or after max instructions).  The mode setups below build their tables
 * in the low pages listed here; keep test code and data at IEMH_FREE_GPA and above.
 */
#define IEMH_GDT_GPA   0x1000u  /* GDT, selectors below */
#define IEMH_IDT_GPA   0x2000u  /* an all-zero IDT (256 entries) */
#define IEMH_TSS_GPA   0x3000u  /* a zeroed TSS; its I/O bitmap lies past the limit: every port denied at CPL > IOPL */
#define IEMH_PT_GPA    0x10000u /* long mode: PML4, PDPT and 4 page directories (0x10000-0x15fff) */
#define IEMH_FREE_GPA  0x20000u

/* Selectors of the harness GDT. */
#define IEMH_SEL_CODE32   0x08 /* flat 32-bit code, DPL 0 */
#define IEMH_SEL_DATA32   0x10 /* flat 32-bit data, DPL 0 (also SS in long mode) */
#define IEMH_SEL_CODE64   0x18 /* 64-bit code, DPL 0 */
#define IEMH_SEL_CODE16   0x20 /* 16-bit code, base 0, limit 0xffff */
#define IEMH_SEL_DATA16   0x28 /* 16-bit data, base 0, limit 0xffff */
#define IEMH_SEL_CODE32_3 0x33 /* flat 32-bit code, DPL 3 (RPL 3) */
#define IEMH_SEL_DATA32_3 0x3b /* flat 32-bit data, DPL 3 (RPL 3) */
#define IEMH_SEL_CODE64_3 0x43 /* 64-bit code, DPL 3 (RPL 3) */
#define IEMH_SEL_TSS      0x48 /* TSS (32-bit in protected mode, 64-bit with the next slot in long mode) */

struct iemh {
    struct vm *vm;
    struct vcpu *vcpu;
    struct iem_cpu *cpu;
    struct cpu_state *s;   /* the vCPU's state: edit, then iemh_sync */
    uint8_t *ram;          /* host view of guest RAM (gpa 0 .. ram_bytes) */
    uint64_t ram_bytes;
    struct mem_region *ram_region;
    bool owns_vm;          /* false for the views of vCPUs 1.. (iemh_create_smp) */
};

/* ram_bytes (0: 4 MiB) of RAM at gpa 0; the vCPU is in its reset state. Asserts on failure. */
struct iemh *iemh_create(uint64_t ram_bytes);
void iemh_destroy(struct iemh *h);
/* The same with vcpus vCPUs; the returned view drives vCPU 0. */
struct iemh *iemh_create_n(uint64_t ram_bytes, unsigned vcpus);
/* n (1-32) vCPUs sharing one VM and its RAM: views[i] drives vCPU i.  Free them with iemh_destroy_smp. */
void iemh_create_smp(uint64_t ram_bytes, unsigned n, struct iemh **views);
void iemh_destroy_smp(struct iemh **views, unsigned n);

/* Guest-physical copies through mem_write/mem_read, so decoded code sees the change (as DMA would). */
void iemh_write(struct iemh *h, uint64_t gpa, const void *buf, size_t len);
void iemh_read(struct iemh *h, uint64_t gpa, void *buf, size_t len);
uint64_t iemh_read64(struct iemh *h, uint64_t gpa);
uint32_t iemh_read32(struct iemh *h, uint64_t gpa);

/* Real mode: CS:IP and SS:SP, DS = ES = FS = GS = 0, CR0 = reset value (PE = 0). */
void iemh_mode_real(struct iemh *h, uint16_t cs, uint16_t ip, uint16_t ss, uint16_t sp);
/* 32-bit protected mode, flat segments (CS 0x08, others 0x10), no paging, CR4.OSFXSR/OSXMMEXCPT, CPL 0. */
void iemh_mode_prot32(struct iemh *h, uint32_t eip, uint32_t esp);
/* 64-bit long mode, CPL 0: CS 0x18, SS/DS/ES/FS/GS 0x10, identity map of 0-4 GiB in 2 MiB pages (present,
 * writable, user) at IEMH_PT_GPA, CR0.PG/WP/NE/MP, CR4.PAE/OSFXSR/OSXMMEXCPT, EFER.LME/LMA/NXE/SCE. */
void iemh_mode_long64(struct iemh *h, uint64_t rip, uint64_t rsp);
/*
 * After iemh_mode_long64: the RAM below its last MiB mapped with 4 KiB pages instead (what a
 * kernel does after its decompressor), the page tables in that last MiB.
 */
void iemh_map_4k(struct iemh *h);
/* After changing h->s by hand: reload it into the interpreter (mode, CPL, sizes; TLB and code flushed). */
void iemh_sync(struct iemh *h);

/* iem_step: runs at most max_insns instructions. */
void iemh_run(struct iemh *h, uint64_t max_insns, struct iem_step_result *res);
/* Copies code to gpa, points RIP at it (offset gpa - CS.base) and runs until HLT, an exception or max_insns. */
void iemh_exec(struct iemh *h, uint64_t gpa, const void *code, size_t len, uint64_t max_insns,
               struct iem_step_result *res);
/* Runs fn(cpu, arg) with the interpreter's fault trap set (memory helpers called from a test): returns -1 or the
 * vector raised; h->cpu->fault_error and fault_cr2 tell the rest. */
int iemh_try(struct iemh *h, void (*fn)(struct iem_cpu *cpu, void *arg), void *arg);

/* Maps an MMIO region (ops as in vm.h) at gpa; returns it for mem_region_destroy or NULL. */
struct mem_region *iemh_mmio_add(struct iemh *h, uint64_t gpa, uint64_t size, const struct io_ops *ops, void *opaque);

#endif
