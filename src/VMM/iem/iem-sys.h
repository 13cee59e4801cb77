/* iem-sys.h - the interpreter's system family: entry points for the integer family and helpers shared by iem-seg/far/task/except/sys. */
#ifndef VIREO_IEM_SYS_H
#define VIREO_IEM_SYS_H

#include "iem-internal.h"

/*
 * Forms of the integer family's mnemonics that are system instructions.  Zydis gives
 * near and far JMP/CALL/RET and the segment/control/debug forms of MOV, PUSH and POP
 * one mnemonic each, so the integer family registers those mnemonics and hands these
 * forms over (the iem_insn_is_* predicates tell which):
 *
 *   JMP  ptr16:xx (EA), JMP m16:xx (FF /5)   -> iem_jmp_far
 *   CALL ptr16:xx (9A), CALL m16:xx (FF /3)  -> iem_call_far
 *   RET  far (CA, CB)                        -> iem_ret_far
 *   MOV  with a segment register operand     -> iem_mov_seg (both directions)
 *   MOV  with a control register operand     -> iem_mov_cr
 *   MOV  with a debug register operand       -> iem_mov_dr
 *   PUSH ES/CS/SS/DS/FS/GS                   -> iem_push_seg
 *   POP  ES/SS/DS/FS/GS                      -> iem_pop_seg (POP SS sets the interrupt shadow)
 *
 * They have the handler signature and return codes of iem_fn.
 */
int iem_jmp_far(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_call_far(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_ret_far(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_mov_seg(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_mov_cr(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_mov_dr(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_push_seg(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_pop_seg(struct iem_cpu *cpu, const struct iem_insn *in);

/* JMP/CALL with a far pointer (EA/9A) or a far memory operand (FF /3, FF /5). */
static inline bool iem_insn_is_far_branch(const struct iem_insn *in)
{
    if (in->opcode == 0xea || in->opcode == 0x9a)
        return in->op[0].kind == IEM_OPK_PTR;
    return in->opcode == 0xff && (in->modrm_reg == 3 || in->modrm_reg == 5) && in->op[0].kind == IEM_OPK_MEM;
}

/* RET far (CB, or CA with the bytes to release). */
static inline bool iem_insn_is_far_ret(const struct iem_insn *in)
{
    return in->opcode == 0xca || in->opcode == 0xcb;
}

/* Any operand of kind k (MOV/PUSH/POP forms to forward). */
static inline bool iem_insn_has_opkind(const struct iem_insn *in, unsigned k)
{
    for (unsigned i = 0; i < in->nops && i < 4; i++)
        if (in->op[i].kind == k)
            return true;
    return false;
}

/*
 * Model-specific state at power-on and reset (MTRR capabilities, TSC frequency): the
 * core calls this from vCPU init and reset, after cpu_state_reset.
 */
void iem_sys_reset(struct iem_cpu *cpu);
/*
 * Saved state of what the CPU keeps outside struct cpu_state: the NMI latch, wait-for-SIPI,
 * MTRRs, the TSC relation (offset against the virtual clock, which a saved state continues,
 * so the TSC continues too) and IA32_TSC_ADJUST.  Load checks before it changes anything and tells the
 * local APIC the TSC relation again.
 */
void iem_sys_save(struct iem_cpu *cpu, struct ssm *ssm);
/* The version iem_sys_save writes (2: IA32_TSC_ADJUST); iem_sys_load reads 1 and 2. */
#define IEM_SYS_SSM_VERSION 2u
int iem_sys_load(struct iem_cpu *cpu, struct ssm *ssm, uint32_t version);

/* The physical address width CPUID.80000008H reports; it must equal the page walker's IEM_MAXPHYADDR
 * (iem-core.h, private to the core), which tstIemSys checks. */
#define IEM_SYS_PHYS_BITS 40
#define IEM_TSC_KHZ_DEFAULT 2000000u /* 2 GHz when the core sets no frequency */

/* ---- Descriptor fields (Intel SDM vol. 3A, 3.4.5, figure 3-8) ------------------------ */

static inline unsigned iem_desc_type(uint64_t d) { return (unsigned)(d >> 40) & 0xf; }
static inline bool iem_desc_is_s(uint64_t d) { return (d >> 44) & 1; }
static inline unsigned iem_desc_dpl(uint64_t d) { return (unsigned)(d >> 45) & 3; }
static inline bool iem_desc_is_present(uint64_t d) { return (d >> 47) & 1; }
static inline bool iem_desc_is_l(uint64_t d) { return (d >> 53) & 1; }
static inline bool iem_desc_is_db(uint64_t d) { return (d >> 54) & 1; }
/* Code segment (S=1, type bit 3). */
static inline bool iem_desc_is_code(uint64_t d) { return iem_desc_is_s(d) && (d & (1ULL << 43)); }
static inline bool iem_desc_is_data(uint64_t d) { return iem_desc_is_s(d) && !(d & (1ULL << 43)); }
static inline bool iem_desc_is_conforming(uint64_t d) { return iem_desc_is_code(d) && (d & (1ULL << 42)); }
static inline bool iem_desc_is_readable(uint64_t d) { return iem_desc_is_data(d) || (iem_desc_is_code(d) && (d & (1ULL << 41))); }
static inline bool iem_desc_is_writable_data(uint64_t d) { return iem_desc_is_data(d) && (d & (1ULL << 41)); }
/* Gate fields: target selector, offset (low 32 bits; a 64-bit gate's upper half supplies the rest), parameter count. */
static inline uint16_t iem_gate_sel(uint64_t d) { return (uint16_t)(d >> 16); }
static inline uint32_t iem_gate_off32(uint64_t d) { return (uint32_t)((d & 0xffff) | ((d >> 32) & 0xffff0000u)); }
static inline unsigned iem_gate_params(uint64_t d) { return (unsigned)(d >> 32) & 0x1f; }

/* System descriptor types (S=0), SDM vol. 3A, table 3-2. */
enum {
    IEM_SYS_TSS16_AVAIL = 1, IEM_SYS_LDT = 2, IEM_SYS_TSS16_BUSY = 3, IEM_SYS_CALL16 = 4, IEM_SYS_TASK = 5,
    IEM_SYS_INT16 = 6, IEM_SYS_TRAP16 = 7, IEM_SYS_TSS_AVAIL = 9, IEM_SYS_TSS_BUSY = 0xb, IEM_SYS_CALL = 0xc,
    IEM_SYS_INT = 0xe, IEM_SYS_TRAP = 0xf,
};

/* ---- Shared helpers of the system family ------------------------------------------ */

/* Canonical 48-bit linear address. */
static inline bool iem_is_canonical(uint64_t a)
{
    return (uint64_t)((int64_t)(a << 16) >> 16) == a;
}

/* Address of the instruction after the executing one, wrapped to the code size. */
uint64_t iem_sys_next_rip(const struct iem_cpu *cpu, const struct iem_insn *in);

/* iem_desc_read with the EXT bit for errors raised while delivering an event. */
void iem_desc_fetch(struct iem_cpu *cpu, uint16_t sel, int vector, uint32_t ext, uint64_t desc[2]);
/* Sets the accessed bit of a code/data descriptor in its table (a locked write on hardware). */
void iem_desc_set_accessed(struct iem_cpu *cpu, uint16_t sel, uint64_t desc[2]);
/* Sets or clears the busy bit of the TSS descriptor sel (in the GDT) and in *desc when given. */
void iem_desc_set_busy(struct iem_cpu *cpu, uint16_t sel, bool busy, uint64_t *desc);

/* Reads size bytes at off in the current TSS (TR): #TS(TR | ext) beyond its limit. */
uint64_t iem_tss_read(struct iem_cpu *cpu, uint32_t off, unsigned size, uint32_t ext);

/* SS:ESP for privilege dpl from a 32- or 16-bit TSS (SDM vol. 3A, figures 7-2 and 7-11). */
void iem_tss_inner_stack(struct iem_cpu *cpu, unsigned dpl, uint32_t ext, uint16_t *ss, uint64_t *sp);

/* Loads a cached segment that was checked by the caller: CS with RPL = cpl, SS, data segments. */
void iem_seg_set_cs(struct iem_cpu *cpu, uint16_t sel, const uint64_t desc[2], unsigned cpl);
void iem_seg_set(struct iem_cpu *cpu, unsigned seg, uint16_t sel, const uint64_t desc[2]);
/* A null selector in seg: unusable (its DPL kept at dpl for SS, which holds the CPL). */
void iem_seg_set_null(struct iem_cpu *cpu, unsigned seg, uint16_t sel, unsigned dpl);
/* Real-mode and virtual-8086 segment value (base = sel << 4). */
void iem_seg_set_real(struct iem_cpu *cpu, unsigned seg, uint16_t sel);
/* Flat segments of SYSCALL/SYSRET/SYSENTER/SYSEXIT. */
void iem_seg_set_flat(struct iem_cpu *cpu, unsigned seg, uint16_t sel, unsigned dpl, bool code, bool long64);
/* After a return to an outer privilege level: DS/ES/FS/GS that the new CPL may not use become null. */
void iem_seg_null_invalid(struct iem_cpu *cpu, unsigned cpl);
/* SS descriptor checks for a stack switch to privilege cpl: #TS(sel) (with ext) or #SS(sel) when not present. */
void iem_seg_check_new_ss(struct iem_cpu *cpu, uint16_t sel, unsigned cpl, uint32_t ext, int vector,
                          uint64_t desc[2]);

/*
 * A stack that may not be loaded yet (a stack switch builds the frame on the new stack
 * before SS changes).  Pushes and pops check the segment limit (#SS with err) or, in
 * 64-bit mode, canonical form, then go through the linear access path with the privilege
 * of the code that will own the stack.
 */
struct iem_stack {
    struct cpu_seg seg;
    uint64_t sp;
    unsigned width;   /* bytes of SP in use: 2, 4 or 8 */
    unsigned acc;     /* IEM_ACC_SYS, or 0 for CPL 3 */
    uint32_t err;     /* #SS error code when an access does not fit */
};
void iem_stack_current(struct iem_cpu *cpu, struct iem_stack *st);
void iem_stack_init(struct iem_stack *st, const struct cpu_seg *seg, uint64_t sp, unsigned width, unsigned cpl,
                    uint32_t err);
/* Checks that bytes can be pushed (limit/canonical) without pushing. */
void iem_stack_check_push(struct iem_cpu *cpu, const struct iem_stack *st, uint64_t bytes);
void iem_stack_check_pop(struct iem_cpu *cpu, const struct iem_stack *st, uint64_t bytes);
void iem_stack_push(struct iem_cpu *cpu, struct iem_stack *st, unsigned size, uint64_t value);
uint64_t iem_stack_pop(struct iem_cpu *cpu, struct iem_stack *st, unsigned size);
/* Reads size bytes at SP + offset without moving SP. */
uint64_t iem_stack_read(struct iem_cpu *cpu, const struct iem_stack *st, uint64_t offset, unsigned size);
/* New full RSP: only the width's low bits of the old one change. */
uint64_t iem_stack_rsp(const struct iem_stack *st, uint64_t old_rsp);

/* Privilege-aware RFLAGS update of IRET (old_cpl is the CPL before the return). */
void iem_flags_iret(struct iem_cpu *cpu, uint64_t value, unsigned opsize, unsigned old_cpl);

/* Task switch with the EXT bit for errors of a switch that delivers an event. */
void iem_task_switch_ext(struct iem_cpu *cpu, uint16_t tss_sel, enum iem_task_reason why, bool has_error,
                         uint32_t error, uint64_t next_rip, uint32_t ext);

/* Raise after the architectural state was already switched (task switch): the fault is
 * reported at the new CS:RIP, so the run loop must not restore the old instruction's RIP. */
_Noreturn void iem_raise_committed(struct iem_cpu *cpu, int vector, bool has_error, uint32_t error);

/* Handlers in iem-sys-msr.c and iem-sys-desc.c that g_iem_map_sys (iem-sys.c) lists. */
int iem_sys_handler_cpuid(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_sys_handler_rdmsr(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_sys_handler_wrmsr(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_sys_handler_rdtsc(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_sys_handler_rdtscp(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_sys_handler_rdpmc(struct iem_cpu *cpu, const struct iem_insn *in);
/* LDS..LSS, LGDT..STR, LAR/LSL/VERR/VERW/ARPL, LMSW/SMSW/CLTS (iem-sys-desc.c), by mnemonic. */
int iem_sys_desc_dispatch(struct iem_cpu *cpu, const struct iem_insn *in);

/* Control-register writes with every check (MOV CR, LMSW, CLTS, task switches' CR3). */
void iem_cr0_write(struct iem_cpu *cpu, uint64_t value);
void iem_cr3_write(struct iem_cpu *cpu, uint64_t value);
void iem_cr4_write(struct iem_cpu *cpu, uint64_t value);

#endif
