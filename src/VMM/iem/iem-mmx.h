/* iem-mmx.h - MMX registers and the MMX-register forms of the integer SIMD instructions, for the SIMD family to forward to. */
#ifndef VIREO_IEM_MMX_H
#define VIREO_IEM_MMX_H

#include <stdint.h>

#include "iem-internal.h"

/*
 * MMi is the mantissa of PHYSICAL x87 register Ri (SDM vol. 1, 9.5); struct cpu_fpu keeps the
 * registers in stack order (st[i] = ST(i), the FXSAVE layout), so MMi lives in
 * st[(i - TOP) & 7].  Every MMX instruction but EMMS sets TOP to 0 and marks all eight tags
 * valid (SDM vol. 1, 9.5.1, Table 9-2); a write sets bits 79:64 of the register to all ones.
 */

/* Executes any instruction whose operands include an MMX register, by mnemonic: MOVD/MOVQ,
 * the MMX, SSE (PAVGB, PMINUB, PSADBW, PSHUFW, PEXTRW, PINSRW, PMOVMSKB, MOVNTQ, MASKMOVQ, ...),
 * SSE2 (PADDQ, PSUBQ, PMULUDQ) and SSSE3 (PSHUFB, PALIGNR, PHADD*, PMULHRSW, ...) integer
 * forms.  Raises #UD for a mnemonic or operand combination it does not know. */
int iem_mmx_exec(struct iem_cpu *cpu, const struct iem_insn *in);

/* The checks of an instruction that touches MMX registers (SDM vol. 3A, 2.5 and Table 12-1 of
 * vol. 1): LOCK or CR0.EM -> #UD, CR0.TS -> #NM, a pending unmasked x87 exception -> #MF. */
void iem_mmx_enter(struct iem_cpu *cpu, const struct iem_insn *in);
/* The x87 -> MMX transition: TOP = 0 and every tag valid.  Call it after the last access that
 * can fault and before writing MMX registers. */
void iem_mmx_transition(struct iem_cpu *cpu);
/* Reads MMreg (any TOP). */
uint64_t iem_mmx_get(const struct iem_cpu *cpu, unsigned reg);
/* Writes MMreg and sets its exponent/sign bits (79:64) to all ones; call after the transition. */
void iem_mmx_put(struct iem_cpu *cpu, unsigned reg, uint64_t value);

#endif
