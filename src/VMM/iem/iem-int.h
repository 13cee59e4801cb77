/* iem-int.h - declarations shared by the interpreter's integer instruction files (iem-int*.c). */
#ifndef VIREO_IEM_INT_H
#define VIREO_IEM_INT_H

/*
 * The integer family: ALU, moves, stack, near branches, strings, port I/O.  What the family
 * expects from the decoder beyond iem-internal.h:
 * - Instructions whose memory operand is implicit (MOVS/CMPS/LODS/OUTS, XLAT) still get
 *   in->mem.seg = the effective DS-side segment (DS, or the override prefix's); the ES:rDI
 *   side is never overridable and the handlers use ES themselves.
 * - ENTER's two immediates are op[0] = imm (frame size) and op[1] = imm2 (nesting level).
 * - MOVSD/CMPSD are also SSE2 mnemonics: the string forms have no visible operand (nops 0);
 *   the others go to iem_simd_movsd/iem_simd_cmpsd (iem-simd.h).  The system forms of MOV,
 *   PUSH, POP, JMP, CALL and RET go to the system family's entry points (iem-sys.h).
 *
 * Long REP string instructions run at most IEM_INT_REP_CHUNK iterations per handler call
 * (fewer when iem_core_should_yield reports a pending interrupt or request) and then return
 * IEM_JUMPED with RIP left on the instruction (rCX, rSI, rDI hold the progress), so the run
 * loop can take interrupts and requests between chunks exactly as hardware takes them
 * between iterations (SDM vol. 2B, REP: "interrupted string operation").  In iem_step (tests)
 * a chunk counts as one executed instruction.
 *
 * Flags and results of arithmetic come from iem-alu.h (the host CPU runs the instruction).
 * Handlers follow the fault rule of iem-internal.h: operands are read and memory written
 * (or probed) before any register or RFLAGS changes.
 */

#include <stdbool.h>
#include <stdint.h>

#include "iem-internal.h"

#define IEM_INT_REP_CHUNK 4096u

/* ---- Small shared helpers ---------------------------------------------------------------- */

static inline uint64_t iem_int_wrap(unsigned size, uint64_t v)
{
    return size >= 8 ? v : v & (((uint64_t)1 << (size * 8)) - 1);
}

/* Stack pointer width in bytes: 8 in 64-bit mode, else SS.B ? 4 : 2. */
static inline unsigned iem_int_stack_width(const struct iem_cpu *cpu)
{
    if (cpu->mode == IEM_MODE_LONG64)
        return 8;
    return cpu->stack32 ? 4 : 2;
}

/* RSP after adding delta within the stack width (the bits above a 16-bit SP stay). */
static inline uint64_t iem_int_sp_after(const struct iem_cpu *cpu, uint64_t delta)
{
    unsigned w = iem_int_stack_width(cpu);
    uint64_t sp = cpu->s->gpr[CPU_RSP];
    if (w == 8)
        return sp + delta;
    if (w == 4)
        return (uint32_t)(sp + delta);
    return (sp & ~(uint64_t)0xffff) | ((sp + delta) & 0xffff);
}

static inline void iem_int_sp_add(struct iem_cpu *cpu, uint64_t delta)
{
    cpu->s->gpr[CPU_RSP] = iem_int_sp_after(cpu, delta);
}

/* A register operand in the register file proper (not AH/CH/DH/BH): the handlers' fast paths. */
static inline bool iem_int_is_gpr(const struct iem_operand *op)
{
    return op->kind == IEM_OPK_GPR && op->reg < 16;
}

/* Writes a register as an instruction of the given operand size does: 8/16-bit writes keep
 * the rest, a 32-bit write zero-extends (SDM vol. 1, 3.4.1.1). */
static inline void iem_int_gpr_store(struct cpu_state *s, unsigned reg, unsigned size, uint64_t v)
{
    uint64_t *r = &s->gpr[reg & 15];
    switch (size) {
    case 1: *r = (*r & ~(uint64_t)0xff) | (v & 0xff); break;
    case 2: *r = (*r & ~(uint64_t)0xffff) | (v & 0xffff); break;
    case 4: *r = (uint32_t)v; break;
    default: *r = v; break;
    }
}

/* Size-dispatched segmented accesses. */
uint64_t iem_int_mem_read(struct iem_cpu *cpu, unsigned seg, uint64_t off, unsigned size);
void iem_int_mem_write(struct iem_cpu *cpu, unsigned seg, uint64_t off, unsigned size, uint64_t v);

/* The linear address of seg:off (no checks): in 64-bit mode only FS and GS have a base (SDM
 * vol. 3A, 3.4.4); elsewhere linear addresses are 32 bits wide. */
uint64_t iem_int_linear(const struct iem_cpu *cpu, unsigned seg, uint64_t off);

/* Host address of a linear address when the TLB already maps its page to plain RAM for the
 * access kind (IEM_ACC_READ/WRITE) at the current privilege, else NULL; it neither fills the
 * TLB nor faults.  A write mapping is never a page holding decoded code. */
uint8_t *iem_int_tlb_ram(struct iem_cpu *cpu, uint64_t linear, int kind);
/* Marks [linear, linear + len) dirty; the range lies in one page the write TLB maps to RAM. */
void iem_int_tlb_dirty(struct iem_cpu *cpu, uint64_t linear, unsigned len);

/* Host pointer for an atomic access of size (1, 2, 4, 8, 16) bytes at seg:off when it is
 * plain guest RAM and naturally aligned, else NULL.  It checks writability first (raises #GP/#SS/#PF as a
 * write would), so a NULL answer means "use ordinary read and write". */
void *iem_int_lock_ptr(struct iem_cpu *cpu, unsigned seg, uint64_t off, unsigned size);
/*
 * The VM-wide lock around a LOCKed read-modify-write that iem_int_lock_ptr cannot give a host
 * pointer for (split or misaligned operands, MMIO, code pages).  A fault between the two
 * releases it (iem_raise).
 */
void iem_int_atomic_begin(struct iem_cpu *cpu);
void iem_int_atomic_end(struct iem_cpu *cpu);
uint64_t iem_int_atomic_load(const void *p, unsigned size);
bool iem_int_atomic_cas(void *p, unsigned size, uint64_t *expected, uint64_t desired);

/*
 * Read-modify-write of operand 0 (register or memory) with fn(size, dst, b, &rflags): with
 * a LOCK prefix (or always_locked, XCHG) on RAM it is one atomic host operation; otherwise
 * the memory is read, computed, written, and RFLAGS committed only after the write.  Returns
 * the old value of the destination.  LOCK with a register destination raises #UD.
 */
typedef uint64_t iem_int_rmw_fn(unsigned size, uint64_t a, uint64_t b, uint64_t *fl);
uint64_t iem_int_rmw(struct iem_cpu *cpu, const struct iem_insn *in, iem_int_rmw_fn *fn, uint64_t b,
                     bool always_locked);
/* The same on an explicit memory location (BTS/BTR/BTC with a bit-string offset). */
uint64_t iem_int_rmw_at(struct iem_cpu *cpu, const struct iem_insn *in, unsigned seg, uint64_t off,
                        unsigned size, iem_int_rmw_fn *fn, uint64_t b, bool locked);

/* Instructions that exist only outside 64-bit mode raise #UD there. */
static inline void iem_int_no64(struct iem_cpu *cpu)
{
    if (cpu->mode == IEM_MODE_LONG64)
        iem_raise_ud(cpu);
}

/* ---- Handlers, by file ------------------------------------------------------------------- */

/* iem-int-alu.c */
int iem_int_add(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_int_or(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_int_adc(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_int_sbb(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_int_and(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_int_sub(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_int_xor(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_int_cmp(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_int_test(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_int_inc(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_int_dec(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_int_neg(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_int_not(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_int_shl(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_int_shr(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_int_sar(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_int_rol(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_int_ror(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_int_rcl(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_int_rcr(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_int_alu_dshift(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_int_alu_muldiv(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_int_alu_imul(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_int_alu_bittest(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_int_alu_bitscan(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_int_alu_convert(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_int_alu_flagop(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_int_alu_setcc(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_int_alu_cmovcc(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_int_alu_bcd(struct iem_cpu *cpu, const struct iem_insn *in);

/* iem-int-move.c */
int iem_int_mov(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_int_movx(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_int_movbe(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_int_lea(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_int_xchg(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_int_xadd(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_int_cmpxchg(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_int_cmpxchg8b(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_int_bswap(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_int_xlat(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_int_nop(struct iem_cpu *cpu, const struct iem_insn *in);

/* iem-int-stack.c */
int iem_int_push(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_int_pop(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_int_pusha(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_int_popa(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_int_enter(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_int_leave(struct iem_cpu *cpu, const struct iem_insn *in);

/* iem-int-branch.c */
int iem_int_jcc(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_int_jmp(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_int_call(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_int_ret(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_int_jcxz(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_int_loop(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_int_bound(struct iem_cpu *cpu, const struct iem_insn *in);

/* iem-int-string.c */
int iem_int_movs(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_int_cmps(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_int_scas(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_int_lods(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_int_stos(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_int_ins(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_int_outs(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_int_in(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_int_out(struct iem_cpu *cpu, const struct iem_insn *in);

#endif
