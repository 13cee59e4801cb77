/* iem-internal.h - the software CPU's interpreter (IEM): shared structures and the contract between its core and the instruction families. */
#ifndef VIREO_IEM_INTERNAL_H
#define VIREO_IEM_INTERNAL_H

/*
 * Design (the interpreter is the reference for correctness; the recompiler comes later):
 *
 * - State: the architectural state is the core's struct cpu_state (vcpu_state()); the
 *   interpreter keeps only caches beside it (TLB, decoded blocks, mode).  RFLAGS is kept
 *   eagerly in s->rflags: ALU results and flags come from the host CPU executing the same
 *   operation (the host is x86-64), which is exact by construction; only instructions the
 *   host cannot run in 64-bit mode (BCD, ...) are computed in C.
 * - Decoding: Zydis decodes each instruction once into a compact struct iem_insn with a
 *   handler pointer (halfix/Bochs style).  Instructions are grouped into blocks (runs
 *   ending at an unconditional control transfer, a page end, or IEM_BLOCK_MAX instructions),
 *   cached by (guest-physical address, mode key).  A write to a guest-physical page that
 *   holds decoded code (by the guest or device DMA) drops that page's blocks.
 * - Faults: memory and privilege checks deep in a handler raise an exception with
 *   iem_raise(), which records it and longjmps back to the run loop; the loop restores RIP
 *   to the faulting instruction and delivers the exception.  So handlers follow one rule:
 *   do every access that can fault before changing any architectural state (registers,
 *   flags, or a second memory write after a first), except where the architecture itself
 *   commits partial progress (REP string iterations).
 * - Handlers return IEM_NEXT (fall through: RIP += length), IEM_JUMPED (they set RIP), or
 *   IEM_STOP (RIP already set; the block loop must return to the run loop: mode change,
 *   HLT, a write that invalidated code, an interrupt window opened, a request).
 */

#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>

#include "vireo/cpu.h"
#include "vireo/vm.h"

/* ---- Limits and constants ---------------------------------------------------- */

#define IEM_BLOCK_MAX     64   /* instructions per decoded block */
#define IEM_TLB_ENTRIES   1024 /* direct-mapped, per access kind */
#define IEM_PAGE_SIZE     4096u
#define IEM_PAGE_MASK     (~(uint64_t)(IEM_PAGE_SIZE - 1))

/* Exception vectors (Intel SDM vol. 3A, 6.3.1). */
enum {
    IEM_X_DE = 0, IEM_X_DB = 1, IEM_X_NMI = 2, IEM_X_BP = 3, IEM_X_OF = 4, IEM_X_BR = 5, IEM_X_UD = 6,
    IEM_X_NM = 7, IEM_X_DF = 8, IEM_X_TS = 10, IEM_X_NP = 11, IEM_X_SS = 12, IEM_X_GP = 13, IEM_X_PF = 14,
    IEM_X_MF = 16, IEM_X_AC = 17, IEM_X_MC = 18, IEM_X_XM = 19,
};

/* RFLAGS bits. */
#define IEM_F_CF  (1u << 0)
#define IEM_F_PF  (1u << 2)
#define IEM_F_AF  (1u << 4)
#define IEM_F_ZF  (1u << 6)
#define IEM_F_SF  (1u << 7)
#define IEM_F_TF  (1u << 8)
#define IEM_F_IF  (1u << 9)
#define IEM_F_DF  (1u << 10)
#define IEM_F_OF  (1u << 11)
#define IEM_F_IOPL (3u << 12)
#define IEM_F_NT  (1u << 14)
#define IEM_F_RF  (1u << 16)
#define IEM_F_VM  (1u << 17)
#define IEM_F_AC  (1u << 18)
#define IEM_F_VIF (1u << 19)
#define IEM_F_VIP (1u << 20)
#define IEM_F_ID  (1u << 21)
#define IEM_F_ARITH (IEM_F_CF | IEM_F_PF | IEM_F_AF | IEM_F_ZF | IEM_F_SF | IEM_F_OF)

/* CR0/CR4/EFER bits the interpreter looks at. */
#define IEM_CR0_PE (1u << 0)
#define IEM_CR0_MP (1u << 1)
#define IEM_CR0_EM (1u << 2)
#define IEM_CR0_TS (1u << 3)
#define IEM_CR0_NE (1u << 5)
#define IEM_CR0_WP (1u << 16)
#define IEM_CR0_AM (1u << 18)
#define IEM_CR0_PG (1u << 31)
#define IEM_CR4_VME (1u << 0)
#define IEM_CR4_PVI (1u << 1)
#define IEM_CR4_TSD (1u << 2)
#define IEM_CR4_DE  (1u << 3)
#define IEM_CR4_PSE (1u << 4)
#define IEM_CR4_PAE (1u << 5)
#define IEM_CR4_PGE (1u << 7)
#define IEM_CR4_OSFXSR (1u << 9)
#define IEM_CR4_OSXMMEXCPT (1u << 10)
#define IEM_CR4_OSXSAVE (1u << 18)
#define IEM_EFER_SCE (1u << 0)
#define IEM_EFER_LME (1u << 8)
#define IEM_EFER_LMA (1u << 10)
#define IEM_EFER_NXE (1u << 11)

/* ---- Execution mode ------------------------------------------------------------ */

enum iem_mode {
    IEM_MODE_REAL = 0, /* CR0.PE = 0 */
    IEM_MODE_V86,      /* PE, EFLAGS.VM */
    IEM_MODE_PROT,     /* PE, legacy or compatibility mode (CS.D picks 16/32) */
    IEM_MODE_LONG64,   /* EFER.LMA and CS.L */
};

/* ---- Decoded instructions ------------------------------------------------------ */

/* Operand kinds. */
enum iem_opkind {
    IEM_OPK_NONE = 0,
    IEM_OPK_GPR,   /* reg: 0-15 (RAX..R15) or IEM_GPR_AH..IEM_GPR_BH for the legacy high bytes */
    IEM_OPK_MEM,   /* the instruction's memory operand (insn->mem) */
    IEM_OPK_IMM,   /* insn->imm (already sign- or zero-extended to the operand size by the decoder) */
    IEM_OPK_SEG,   /* reg: CPU_ES..CPU_GS */
    IEM_OPK_CR,    /* reg: 0-15 */
    IEM_OPK_DR,    /* reg: 0-15 */
    IEM_OPK_ST,    /* reg: ST(i), i = 0-7 */
    IEM_OPK_MMX,   /* reg: MM0-7 */
    IEM_OPK_XMM,   /* reg: XMM0-15 */
    IEM_OPK_REL,   /* insn->imm: the sign-extended displacement; target = insn_rip + len + imm */
    IEM_OPK_PTR,   /* far pointer immediate: imm = offset, imm2 = selector */
};
#define IEM_GPR_AH 16 /* 16..19 = AH, CH, DH, BH */

struct iem_operand {
    uint8_t kind;  /* enum iem_opkind */
    uint8_t size;  /* bytes (1, 2, 4, 8, 10, 16, ...); for MEM the access size */
    uint8_t reg;
};

/* Effective-address form of the memory operand. */
struct iem_mem {
    uint8_t seg;     /* CPU_ES..CPU_GS after overrides and defaults */
    uint8_t base;    /* GPR 0-15, or IEM_NOREG */
    uint8_t index;   /* GPR 0-15, or IEM_NOREG */
    uint8_t scale;   /* 1, 2, 4, 8 */
    bool rip_rel;    /* 64-bit RIP-relative: disp is relative to the next instruction */
    int64_t disp;
};
#define IEM_NOREG 0xff

/* Prefix flags. */
#define IEM_PFX_LOCK  0x01
#define IEM_PFX_REP   0x02 /* F3: REP / REPE */
#define IEM_PFX_REPNE 0x04 /* F2 */
#define IEM_PFX_REX   0x08
#define IEM_PFX_OPSZ  0x10 /* 66 present */

struct iem_cpu;
struct iem_insn;
typedef int iem_fn(struct iem_cpu *cpu, const struct iem_insn *in);

enum { IEM_NEXT = 0, IEM_JUMPED = 1, IEM_STOP = 2 };

struct iem_insn {
    iem_fn *fn;
    uint16_t mnemonic;  /* ZydisMnemonic, for handlers shared by several mnemonics and for tracing */
    uint8_t len;        /* instruction length in bytes */
    uint8_t opsize;     /* effective operand size in bytes: 2, 4, 8 */
    uint8_t addrsize;   /* effective address size in bytes: 2, 4, 8 */
    uint8_t prefixes;   /* IEM_PFX_* */
    uint8_t nops;       /* visible operands */
    uint8_t cond;       /* Jcc/SETcc/CMOVcc/FCMOVcc: condition code 0-15, filled by the decoder from the mnemonic */
    struct iem_operand op[4];
    uint16_t off;       /* offset from the first byte of its block (RIP = block RIP + off, see iem-fast.h) */
    bool fast;          /* fn is a specialised handler (iem-int-fast.c): RIP is tracked lazily around it */
    struct iem_mem mem;
    uint64_t imm, imm2;
    uint8_t opcode;     /* the last opcode byte (the handler may need /r or the opcode's low bits) */
    uint8_t modrm_reg;  /* ModRM.reg field (group opcodes) */
};

/* ---- Per-vCPU interpreter state -------------------------------------------------- */

/*
 * One TLB entry: a guest-linear page mapped to a host page (RAM) or to the slow path.  The
 * tag holds IEM_TLB_DIRECT exactly when hva is set (both set with iem_tlb_set_hva), so the
 * direct-access test is one compare of the tag:
 * (tag | tlb_tag_or) == page | VALID | USER_OK | DIRECT.
 */
struct iem_tlb_entry {
    uint64_t tag;        /* linear page | IEM_TLB_VALID [| IEM_TLB_USER_OK] [| IEM_TLB_DIRECT]; mismatch = miss */
    uint8_t *hva;        /* host address of the page, NULL for MMIO or write-protected code */
    uint64_t gpa;        /* guest-physical page */
    uintptr_t addend;    /* hva minus the linear page: the host address of a byte is its linear address plus this */
};
#define IEM_TLB_VALID 1u
/* Tag bit: the entry has a host mapping (hva set); without it accesses take the slow path. */
#define IEM_TLB_DIRECT 4u
/* The tag bits a direct hit must have, besides the page (tlb_tag_or supplies USER_OK below CPL 3). */
#define IEM_TLB_HIT_BITS (IEM_TLB_VALID | IEM_TLB_USER_OK | IEM_TLB_DIRECT)

static inline void iem_tlb_set_hva(struct iem_tlb_entry *e, uint8_t *hva)
{
    e->hva = hva;
    if (hva) {
        e->tag |= IEM_TLB_DIRECT;
        e->addend = (uintptr_t)hva - (uintptr_t)(e->tag & ~(uint64_t)0xfff);
    } else {
        e->tag &= ~(uint64_t)IEM_TLB_DIRECT;
    }
}

enum iem_access {
    IEM_ACC_READ = 0,
    IEM_ACC_WRITE = 1,
    IEM_ACC_EXEC = 2,
    IEM_ACC_KINDS = 3,
};
/* Flags for linear accesses. */
#define IEM_ACC_SYS 0x10 /* implicit supervisor access (descriptor tables, TSS, IDT) regardless of CPL */

struct iem_block;

struct iem_cpu {
    struct vcpu *vcpu;
    struct vm *vm;
    struct cpu_state *s;           /* == vcpu_state(vcpu) */
    enum iem_mode mode;
    unsigned cpl;
    unsigned code_size;            /* 2, 4, 8: default operand/address size of CS */
    bool stack32;                  /* SS.B (stack pointer width 32 vs 16 outside 64-bit mode) */
    uint64_t insn_rip;             /* RIP of the instruction executing (fault restart point) */
    uint64_t block_rip;            /* RIP of the first instruction of the block executing (iem-fast.h) */
    const struct iem_insn *insn;   /* the instruction executing */

    /* Exception being raised (set by iem_raise before the longjmp). */
    jmp_buf fault_jmp;
    int fault_vector;
    uint32_t fault_error;
    bool fault_has_error;
    uint64_t fault_cr2;

    /* Interrupt shadow: set by STI and MOV/POP SS for the next instruction. */
    bool inhibit_irq_next;
    /* Local APIC events taken but not yet acted on (iem_intc_events). */
    bool nmi_pending;

    /* Model-specific state the interpreter owns (the rest lives in cpu_state). */
    uint64_t mtrr_cap, mtrr_def_type, mtrr_fixed[11], mtrr_var[16];
    uint64_t tsc_offset;           /* TSC = virtual ns * tsc_khz / 1e6 + offset */
    uint64_t tsc_khz;
    uint64_t tsc_adjust;           /* IA32_TSC_ADJUST: what writes to the TSC added to it (SDM vol. 3B, 17.17.3) */

    /* Caches. */
    struct iem_tlb_entry tlb[IEM_ACC_KINDS][IEM_TLB_ENTRIES];
    bool tlb_user;                 /* the TLB was filled for this privilege (CPL 3 vs 0-2) */
    uint64_t icount;               /* instructions retired */
    struct iem_block *cur_block;
    bool block_dirty;              /* the executing block was invalidated: stop after this instruction */
};

/* ---- Core services (iem-core, iem-mem, iem-seg, iem-except) -------------------------- */

/* Raise an exception (no return): records it and unwinds to the run loop. */
_Noreturn void iem_raise(struct iem_cpu *cpu, int vector);
_Noreturn void iem_raise_err(struct iem_cpu *cpu, int vector, uint32_t error_code);
_Noreturn void iem_raise_gp0(struct iem_cpu *cpu);
_Noreturn void iem_raise_ud(struct iem_cpu *cpu);

/* Recompute mode, CPL and sizes after CR0/EFER/CS/EFLAGS.VM changes; flushes what depends on them. */
void iem_update_mode(struct iem_cpu *cpu);
/* Flush the TLB (non-global entries only when global_too is false: CR3 writes with CR4.PGE). */
void iem_tlb_flush(struct iem_cpu *cpu, bool global_too);
void iem_tlb_flush_page(struct iem_cpu *cpu, uint64_t linear);

/* General-purpose registers (reg as in struct iem_operand; size in bytes).  Writes of 4 bytes zero-extend. */
uint64_t iem_gpr_read(struct iem_cpu *cpu, unsigned reg, unsigned size);
void iem_gpr_write(struct iem_cpu *cpu, unsigned reg, unsigned size, uint64_t value);

/* Operands of the executing instruction: read zero-extended, write truncated to the operand's size. */
uint64_t iem_op_read(struct iem_cpu *cpu, const struct iem_insn *in, unsigned idx);
void iem_op_write(struct iem_cpu *cpu, const struct iem_insn *in, unsigned idx, uint64_t value);
/* The memory operand's offset within its segment (address-size wrapped). */
uint64_t iem_ea(struct iem_cpu *cpu, const struct iem_insn *in);

/* Segmented memory accesses (segment checks, then paging); they raise on faults. */
uint8_t iem_mem_read8(struct iem_cpu *cpu, unsigned seg, uint64_t off);
uint16_t iem_mem_read16(struct iem_cpu *cpu, unsigned seg, uint64_t off);
uint32_t iem_mem_read32(struct iem_cpu *cpu, unsigned seg, uint64_t off);
uint64_t iem_mem_read64(struct iem_cpu *cpu, unsigned seg, uint64_t off);
void iem_mem_read_bytes(struct iem_cpu *cpu, unsigned seg, uint64_t off, void *buf, unsigned len);
void iem_mem_write8(struct iem_cpu *cpu, unsigned seg, uint64_t off, uint8_t v);
void iem_mem_write16(struct iem_cpu *cpu, unsigned seg, uint64_t off, uint16_t v);
void iem_mem_write32(struct iem_cpu *cpu, unsigned seg, uint64_t off, uint32_t v);
void iem_mem_write64(struct iem_cpu *cpu, unsigned seg, uint64_t off, uint64_t v);
void iem_mem_write_bytes(struct iem_cpu *cpu, unsigned seg, uint64_t off, const void *buf, unsigned len);
/* Checks that [off, off+len) of seg can be written (segment and page), for instructions that must
 * not fault after a partial write (a far CALL's two pushes, XCHG with memory, ...). */
void iem_mem_probe_write(struct iem_cpu *cpu, unsigned seg, uint64_t off, unsigned len);
/* 16-byte accesses that require alignment (MOVAPS & co: #GP(0) when misaligned). */
void iem_mem_read128_aligned(struct iem_cpu *cpu, unsigned seg, uint64_t off, void *buf16);
void iem_mem_write128_aligned(struct iem_cpu *cpu, unsigned seg, uint64_t off, const void *buf16);

/* Linear accesses (after segmentation): flags are IEM_ACC_SYS or 0. */
uint64_t iem_lin_read(struct iem_cpu *cpu, uint64_t linear, unsigned size, unsigned flags);
void iem_lin_write(struct iem_cpu *cpu, uint64_t linear, unsigned size, uint64_t value, unsigned flags);

/* Stack: push/pop with the current stack width (SS.B, 64-bit mode) and the given operand size. */
void iem_push(struct iem_cpu *cpu, unsigned size, uint64_t value);
uint64_t iem_pop(struct iem_cpu *cpu, unsigned size);
/* Reads the value size bytes at SP + offset without changing SP (for instructions that pop several). */
uint64_t iem_stack_peek(struct iem_cpu *cpu, unsigned size, uint64_t offset);

/* Sets RIP to a near branch target: truncated to the operand size, CS limit checked (#GP(0)),
 * canonical checked in 64-bit mode. */
void iem_jump_near(struct iem_cpu *cpu, uint64_t target, unsigned opsize);

/* Port I/O from the guest: IOPL/TSS I/O-bitmap checks (raise #GP(0)), then dispatch. */
uint32_t iem_port_in(struct iem_cpu *cpu, uint16_t port, unsigned size);
void iem_port_out(struct iem_cpu *cpu, uint16_t port, unsigned size, uint32_t value);

/* Segment loads with all checks of the current mode (SDM vol. 3A 5.x and the MOV/POP/LDS pages). */
void iem_seg_load(struct iem_cpu *cpu, unsigned seg, uint16_t sel);
/* Reads a descriptor (8 bytes; 16 for system descriptors in long mode) for sel from GDT/LDT; raises
 * #GP(sel & ~3) (or the given vector) when sel is outside the table. */
void iem_desc_read(struct iem_cpu *cpu, uint16_t sel, int vector, uint64_t desc[2]);
/* Fills a cached segment from a raw descriptor. */
void iem_seg_from_desc(struct cpu_seg *seg, uint16_t sel, const uint64_t desc[2]);
/* Far transfers and interrupt delivery (iem-except.c / iem-far.c). */
void iem_far_jump(struct iem_cpu *cpu, uint16_t sel, uint64_t offset, unsigned opsize);
void iem_far_call(struct iem_cpu *cpu, uint16_t sel, uint64_t offset, unsigned opsize);
void iem_far_return(struct iem_cpu *cpu, unsigned opsize, uint16_t pop_bytes);
void iem_iret(struct iem_cpu *cpu, unsigned opsize);
/* Delivers an interrupt or exception through the IVT/IDT with all checks; kind says where it came from. */
enum iem_int_kind { IEM_INT_EXCEPTION, IEM_INT_EXTERNAL, IEM_INT_SOFTWARE /* INT n */, IEM_INT_SOFT_EXC /* INT3, INTO */, IEM_INT_ICEBP };
void iem_deliver(struct iem_cpu *cpu, int vector, enum iem_int_kind kind, bool has_error, uint32_t error,
                 uint64_t next_rip);
/*
 * Takes the local APIC's NMI, INIT and start-up IPI events (vm_intc.take_events): INIT
 * re-initialises the vCPU (SDM vol. 3A, 9.1, table 9-1: x87/SSE state and most MSRs survive)
 * and puts an application processor into wait-for-SIPI; a SIPI starts a waiting processor at
 * vector << 12; an NMI becomes cpu->nmi_pending, which the run loop delivers once NMIs are not
 * blocked (until the next IRET after an NMI).  Returns true when INIT or SIPI changed the flow.
 */
bool iem_intc_events(struct iem_cpu *cpu);

/* Hardware task switch (SDM vol. 3A 7.3) through a TSS selector, for JMP/CALL/IRET/task gates. */
enum iem_task_reason { IEM_TASK_JMP, IEM_TASK_CALL, IEM_TASK_IRET, IEM_TASK_INT };
void iem_task_switch(struct iem_cpu *cpu, uint16_t tss_sel, enum iem_task_reason why, bool has_error,
                     uint32_t error, uint64_t next_rip);

/* RFLAGS writes with the privilege rules of POPF/IRET (what may change at this CPL/IOPL/mode). */
void iem_flags_write(struct iem_cpu *cpu, uint64_t value, uint64_t mask);

/* MSRs and CPUID (iem-sys.c): return false for an unknown MSR (the caller raises #GP(0)). */
bool iem_msr_read(struct iem_cpu *cpu, uint32_t index, uint64_t *value);
bool iem_msr_write(struct iem_cpu *cpu, uint32_t index, uint64_t value);
void iem_cpuid(struct iem_cpu *cpu, uint32_t leaf, uint32_t subleaf, uint32_t out[4]);
uint64_t iem_tsc_read(struct iem_cpu *cpu);

/* ---- Host-computed arithmetic (iem-alu.h, inline asm on the x86-64 host) ------------- */
/* In iem-alu.h: iem_alu_<op><size>(a, b, &rflags) run the host instruction with the guest's
 * arithmetic flags loaded and return the result with the flags stored back. */

/* ---- Instruction handler registration --------------------------------------------- */

/* Each instruction family exports one table; the decoder builds its mnemonic index from all. */
struct iem_handler_map {
    uint16_t mnemonic; /* ZydisMnemonic */
    iem_fn *fn;
};
extern const struct iem_handler_map g_iem_map_int[];    /* iem-int*.c: integer, string, stack, near branches, I/O */
extern const struct iem_handler_map g_iem_map_sys[];    /* iem-sys*.c: system instructions, far transfers, INT */
extern const struct iem_handler_map g_iem_map_fpu[];    /* iem-fpu*.c: x87, FXSAVE/FXRSTOR, XSAVE */
extern const struct iem_handler_map g_iem_map_simd[];   /* iem-simd*.c: MMX, SSE..SSE4.2 */
/* Each table ends with { 0, NULL }. */

/* ---- The run loop (iem-core.c) ------------------------------------------------------ */

struct iem_cpu *iem_cpu_of(struct vcpu *vcpu);

/*
 * For tests (the differential tests against Unicorn, guest programs): runs at most
 * max_insns instructions on the calling thread without delivering anything.  It stops
 * after a HLT (result IEM_STEP_HLT, RIP after the HLT), when an instruction raises an
 * exception (IEM_STEP_EXCEPTION: RIP and state at the faulting instruction, vector and
 * error code reported, nothing delivered), or after max_insns (IEM_STEP_LIMIT).
 */
enum iem_step_status { IEM_STEP_LIMIT = 0, IEM_STEP_HLT, IEM_STEP_EXCEPTION };
struct iem_step_result {
    enum iem_step_status status;
    uint64_t executed;
    int vector;
    bool has_error;
    uint32_t error;
    uint64_t cr2;
};
void iem_step(struct iem_cpu *cpu, uint64_t max_insns, struct iem_step_result *result);
/*
 * Runs hot blocks through the recompiler (src/VMM/rec) from now on, or stops: 0 or the
 * recompiler's error.  A block is translated once it has run hot_runs times interpreted.
 */
int iem_rec_enable(struct iem_cpu *cpu, bool enable, unsigned hot_runs);

/* Condition codes 0-15 as in Jcc's low opcode nibble (O, NO, B, AE, E, NE, BE, A, S, NS, P, NP, L, GE, LE, G). */
bool iem_cond(const struct iem_cpu *cpu, unsigned cond);

#endif
