/* cpu.h - the vCPU register state shared by every CPU backend, and the backend interface. */
#ifndef VIREO_CPU_H
#define VIREO_CPU_H

#include <stdbool.h>
#include <stdint.h>

struct vm;
struct vcpu;
struct ssm;

/* General-purpose register indices (the x86 encoding order). */
enum { CPU_RAX, CPU_RCX, CPU_RDX, CPU_RBX, CPU_RSP, CPU_RBP, CPU_RSI, CPU_RDI,
       CPU_R8, CPU_R9, CPU_R10, CPU_R11, CPU_R12, CPU_R13, CPU_R14, CPU_R15 };
/* Segment register indices (the x86 encoding order, then LDTR and TR). */
enum { CPU_ES, CPU_CS, CPU_SS, CPU_DS, CPU_FS, CPU_GS, CPU_LDTR, CPU_TR, CPU_SEG_COUNT };

/* Descriptor attribute bits as in the descriptor's bytes 5-6 (type in bits 0-3). */
#define CPU_SEG_ATTR_TYPE_MASK 0x000f
#define CPU_SEG_ATTR_S         0x0010 /* code/data (not system) */
#define CPU_SEG_ATTR_DPL_SHIFT 5
#define CPU_SEG_ATTR_DPL_MASK  0x0060
#define CPU_SEG_ATTR_P         0x0080
#define CPU_SEG_ATTR_AVL       0x1000
#define CPU_SEG_ATTR_L         0x2000
#define CPU_SEG_ATTR_DB        0x4000
#define CPU_SEG_ATTR_G         0x8000
#define CPU_SEG_ATTR_UNUSABLE  0x10000 /* a null selector was loaded */

struct cpu_seg {
    uint16_t sel;
    uint64_t base;
    uint32_t limit; /* byte granular (already scaled by G) */
    uint32_t attr;  /* CPU_SEG_ATTR_* */
};

struct cpu_dtable {
    uint64_t base;
    uint16_t limit;
};

/* The legacy (FXSAVE-layout) x87/SSE state, plus the upper YMM halves. */
struct cpu_fpu {
    uint16_t fcw, fsw;
    uint8_t ftw; /* abridged tag word, as in FXSAVE: bit n tags physical register n */
    uint16_t fop;
    uint64_t fip, fdp;
    uint32_t mxcsr, mxcsr_mask;
    uint8_t st[8][16]; /* 80-bit registers in stack order as FXSAVE stores them: st[i] is ST(i) */
    uint8_t xmm[16][16];
    uint8_t ymmh[16][16];
};

#define CPU_RFLAGS_CF   (1u << 0)
#define CPU_RFLAGS_FIXED (1u << 1)
#define CPU_RFLAGS_IF   (1u << 9)
#define CPU_RFLAGS_VM   (1u << 17)

/* IA32_APIC_BASE bit 8: this processor is the bootstrap processor. */
#define CPU_APIC_BASE_BSP (1ULL << 8)

/* IA32_MISC_ENABLE bit 0: REP MOVS/STOS may move whole cache lines (on by default). */
#define CPU_MISC_ENABLE_FAST_STRINGS (1ULL << 0)

#define CPU_CR0_PE (1u << 0)
#define CPU_CR0_ET (1u << 4)
#define CPU_CR0_NW (1u << 29)
#define CPU_CR0_CD (1u << 30)
#define CPU_CR0_PG (1u << 31)

/*
 * The architectural state of one vCPU.  Backends convert to and from their own
 * representation only through cpu_backend.state_get/state_put, always with an
 * explicit direction, so saved state and debugging see one format.
 */
struct cpu_state {
    uint64_t gpr[16];
    uint64_t rip;
    uint64_t rflags;
    struct cpu_seg seg[CPU_SEG_COUNT];
    struct cpu_dtable gdtr, idtr;
    uint64_t cr0, cr2, cr3, cr4, cr8;
    uint64_t efer;
    uint64_t dr[8]; /* DR0-3, DR6 at [6], DR7 at [7] */
    uint64_t xcr0;
    /* MSRs the core keeps for every backend. */
    uint64_t apic_base;
    uint64_t tsc;
    uint64_t star, lstar, cstar, sfmask, kernel_gs_base;
    uint64_t sysenter_cs, sysenter_esp, sysenter_eip;
    uint64_t pat, tsc_aux, misc_enable;
    struct cpu_fpu fpu;
    /* Interruptibility. */
    bool int_shadow; /* STI / MOV SS shadow on the next instruction */
    bool nmi_masked;
    bool halted;
    /*
     * An application processor after power-on, reset or INIT: it runs nothing until a
     * start-up IPI (SDM vol. 3A, 9.4.2).  Backends keep it in their own saved state
     * (cpu_backend.extra_save), not in the core's vCPU section.
     */
    bool wait_for_sipi;
};

/* Reset values of the architectural state (Intel SDM vol. 3, 9.1.1), for the BSP. */
void cpu_state_reset(struct cpu_state *state);
/*
 * Power-on and system reset of vCPU index: the BSP's state for vCPU 0; the others have
 * IA32_APIC_BASE.BSP clear and wait for a start-up IPI (SDM vol. 3A, 9.4.1).
 */
void cpu_state_reset_vcpu(struct cpu_state *state, unsigned index);

/* Why vcpu_run returned. */
enum cpu_exit {
    CPU_EXIT_REQUEST = 0, /* a request from the VM (pause, stop, state change) is pending */
    CPU_EXIT_SHUTDOWN,    /* triple fault: the VM resets as hardware does */
    CPU_EXIT_FATAL,       /* the backend cannot continue (internal error); the VM aborts */
};

/*
 * A CPU backend: KVM or the software CPU.  The core owns the vCPU threads; a
 * backend only runs guest code on the calling thread until something needs the core.
 * Port and MMIO accesses go through iom_port_read/write and mem_mmio_read/write;
 * HLT goes through vcpu_halt_wait; interrupts are taken from vcpu_intr_ack.
 */
struct cpu_backend {
    const char *name;
    /* The guest sees Vireo's local APIC model (the board then creates the APICs). */
    bool guest_apic;
    int (*vm_init)(struct vm *vm);
    void (*vm_fini)(struct vm *vm);
    int (*vcpu_init)(struct vcpu *vcpu);
    void (*vcpu_fini)(struct vcpu *vcpu);
    /* Runs guest code on the calling thread until an exit the core must handle. */
    enum cpu_exit (*vcpu_run)(struct vcpu *vcpu);
    /* Any thread: make vcpu_run notice requests or new interrupts soon. */
    void (*vcpu_kick)(struct vcpu *vcpu);
    /* The flat guest-physical map changed (called with the memory map lock held). */
    int (*mem_changed)(struct vm *vm);
    /* Copy the backend's register state into *state (backend -> core). */
    int (*state_get)(struct vcpu *vcpu, struct cpu_state *state);
    /* Load *state into the backend (core -> backend). */
    int (*state_put)(struct vcpu *vcpu, const struct cpu_state *state);
    /*
     * Optional (saved-state files): the backend's per-vCPU state outside struct cpu_state that
     * a restored vCPU needs (pending NMI, wait-for-SIPI, the TSC relation, MTRRs, events queued
     * for injection).  state_save runs on a parked vCPU after state_get; state_load after
     * state_put, before the vCPU first runs, with the stream's extra_version (1..extra_version).
     */
    uint32_t extra_version;
    int (*extra_save)(struct vcpu *vcpu, struct ssm *ssm);
    int (*extra_load)(struct vcpu *vcpu, struct ssm *ssm, uint32_t version);
};

extern const struct cpu_backend g_cpu_backend_kvm;
/* The software CPU: Vireo's interpreter (src/VMM/iem). */
extern const struct cpu_backend g_cpu_backend_iem;

#endif
