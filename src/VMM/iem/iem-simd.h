/* iem-simd.h - the interpreter's SSE..SSE4.2 family: shared helpers of the iem-simd*.c files and its entry points. */
#ifndef VIREO_IEM_SIMD_H
#define VIREO_IEM_SIMD_H

/*
 * How the SIMD family computes (see iem-simd.c for the full design comment):
 * results come from the host running the very instruction the guest executes, with the
 * guest's MXCSR control bits loaded and every exception masked; the host's flag bits then
 * decide whether the guest takes #XM (or #UD with CR4.OSXMMEXCPT=0) before anything is
 * written, or merges the flags and gets the result.  Instructions whose immediate selects
 * the operation (CMPPS, ROUNDPS, DPPS, PCMPxSTRx) run the host instruction with the same
 * immediate, picked from a switch generated over all immediate values.
 */

#include <emmintrin.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "iem-fpu.h"
#include "iem-internal.h"

/* MXCSR fields (Intel SDM vol. 1, 10.2.3). */
#define IEM_MXCSR_IE    0x0001u
#define IEM_MXCSR_DE    0x0002u
#define IEM_MXCSR_ZE    0x0004u
#define IEM_MXCSR_OE    0x0008u
#define IEM_MXCSR_UE    0x0010u
#define IEM_MXCSR_PE    0x0020u
#define IEM_MXCSR_FLAGS 0x003fu
#define IEM_MXCSR_DAZ   0x0040u
#define IEM_MXCSR_MASKS 0x1f80u
#define IEM_MXCSR_UM    0x0800u
#define IEM_MXCSR_RC    0x6000u
#define IEM_MXCSR_FZ    0x8000u

/* One XMM register's worth of data, in every element view. */
union iem_xmm {
    uint8_t b[16];
    int8_t sb[16];
    uint16_t w[8];
    int16_t sw[8];
    uint32_t d[4];
    int32_t sd[4];
    uint64_t q[2];
    int64_t sq[2];
    __m128i v;
};

static inline void iem_simd_xmm_get(const struct iem_cpu *cpu, unsigned reg, union iem_xmm *v)
{
    memcpy(v->b, cpu->s->fpu.xmm[reg & 15], 16);
}

static inline void iem_simd_xmm_put(struct iem_cpu *cpu, unsigned reg, const union iem_xmm *v)
{
    memcpy(cpu->s->fpu.xmm[reg & 15], v->b, 16);
}

/*
 * Switch cases over immediate values: IEM_SIMD_REP256(m) expands m(0) ... m(255), for
 * instructions whose immediate must be encoded into the host instruction.
 */
#define IEM_SIMD_REP4(m, b)   m(b) m((b) + 1) m((b) + 2) m((b) + 3)
#define IEM_SIMD_REP16(m, b)  IEM_SIMD_REP4(m, b) IEM_SIMD_REP4(m, (b) + 4) IEM_SIMD_REP4(m, (b) + 8) IEM_SIMD_REP4(m, (b) + 12)
#define IEM_SIMD_REP64(m, b)  IEM_SIMD_REP16(m, b) IEM_SIMD_REP16(m, (b) + 16) IEM_SIMD_REP16(m, (b) + 32) IEM_SIMD_REP16(m, (b) + 48)
#define IEM_SIMD_REP256(m)    IEM_SIMD_REP64(m, 0) IEM_SIMD_REP64(m, 64) IEM_SIMD_REP64(m, 128) IEM_SIMD_REP64(m, 192)

/*
 * Runs "insn b, a" (AT&T order: a is source and destination) on the host with the MXCSR in mx,
 * leaving the host's MXCSR (with the new flags) in mx and restoring the host's own afterwards;
 * a (__m128i, in/out), b (__m128i), mx and sv (uint32_t scratch) are locals of the caller.
 * IEM_SIMD_HOSTI does the same for "insn $imm, b, a".
 */
#define IEM_SIMD_HOST(insn) \
    __asm__ volatile("stmxcsr %[sv]\n\tldmxcsr %[mx]\n\t" insn " %[b], %[a]\n\tstmxcsr %[mx]\n\tldmxcsr %[sv]" \
                     : [a] "+x"(a), [mx] "+m"(mx), [sv] "=m"(sv) : [b] "x"(b))
#define IEM_SIMD_HOSTI(insn, imm) \
    __asm__ volatile("stmxcsr %[sv]\n\tldmxcsr %[mx]\n\t" insn " %[im], %[b], %[a]\n\tstmxcsr %[mx]\n\tldmxcsr %[sv]" \
                     : [a] "+x"(a), [mx] "+m"(mx), [sv] "=m"(sv) : [b] "x"(b), [im] "i"(imm))

/* ---- Shared helpers (iem-simd.c) ---------------------------------------------------- */

/* The checks every SSE instruction makes before anything else (SDM vol. 3A, 2.5: CR0.EM,
 * CR0.TS, CR4.OSFXSR): CR0.EM=1 or CR4.OSFXSR=0 -> #UD, then CR0.TS=1 -> #NM; LOCK -> #UD. */
void iem_simd_enter(struct iem_cpu *cpu, const struct iem_insn *in);
/* True when any operand of the instruction is an MMX register (the MMX form of a mnemonic
 * the SSE family shares with MMX: those are forwarded to iem_mmx_exec). */
bool iem_simd_has_mmx(const struct iem_insn *in);

/* Reads operand idx as a 128-bit value: an XMM register whole, or the memory operand with
 * its access size (1-16 bytes) zero-extended.  A 16-byte memory operand is read with the
 * alignment check (#GP(0)) when aligned is true. */
void iem_simd_src(struct iem_cpu *cpu, const struct iem_insn *in, unsigned idx, union iem_xmm *v, bool aligned);
/* The MXCSR the host runs a guest operation with: the guest's DAZ/RC/FZ, flags clear, every
 * exception masked (FZ dropped when the guest has underflow unmasked, because flush-to-zero
 * only applies to masked underflow, SDM vol. 1, 10.2.3.3). */
uint32_t iem_simd_mx_host(const struct iem_cpu *cpu);
/* Merges the flags a masked host run produced into the guest's MXCSR.  When the guest has
 * one of them unmasked it raises #XM (CR4.OSXMMEXCPT=1) or #UD, so callers commit the
 * result only after this returns. */
void iem_simd_mx_commit(struct iem_cpu *cpu, uint32_t flags);
/* Underflow of an exact tiny result: a masked host run flags underflow only when the tiny
 * result is also inexact, an unmasked one whenever it is tiny (SDM vol. 1, 11.5.2.5).  Returns
 * IEM_MXCSR_UE when the guest has underflow unmasked and a lane selected by lanes (bit i =
 * element i, esize 4 or 8 bytes) of the result is a denormal. */
uint32_t iem_simd_tiny(const struct iem_cpu *cpu, const union iem_xmm *r, unsigned esize, unsigned lanes);

/* Writes operand idx from v: an XMM register whole, or the memory operand with its access
 * size (16-byte stores checked for alignment when aligned is true). */
void iem_simd_store(struct iem_cpu *cpu, const struct iem_insn *in, unsigned idx, const union iem_xmm *v, bool aligned);

/* An SSE instruction with an MMX register operand first delivers a pending unmasked x87
 * exception, as every waiting x87/MMX instruction does (SDM vol. 1, 8.6 and 9.5.1). */
static inline void iem_simd_mmx_pending(struct iem_cpu *cpu)
{
    if (cpu->s->fpu.fsw & IEM_FSW_ES)
        iem_fpu_pending(cpu);
}

/* ---- Handlers ---------------------------------------------------------------------------- */

/* The SSE2 forms of the mnemonics MOVSD and CMPSD, which Zydis shares with the string
 * instructions: the integer family's MOVSD/CMPSD handlers forward here when an operand is
 * an XMM register. */
int iem_simd_movsd(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_simd_cmpsd(struct iem_cpu *cpu, const struct iem_insn *in);

/* iem-simd-move.c */
int iem_simd_mov128(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_simd_movss(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_simd_movhalf(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_simd_movdq(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_simd_mov_mmx(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_simd_movnti(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_simd_maskmovdqu(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_simd_movmsk(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_simd_extract(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_simd_insert(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_simd_ldmxcsr(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_simd_stmxcsr(struct iem_cpu *cpu, const struct iem_insn *in);

/* iem-simd-fp.c */
int iem_simd_fp_arith(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_simd_fp_cmp(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_simd_fp_comis(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_simd_cvt_from_gpr(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_simd_cvt_to_gpr(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_simd_cvt_mmx(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_simd_fp_round(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_simd_fp_dp(struct iem_cpu *cpu, const struct iem_insn *in);

/* iem-simd-int.c */
int iem_simd_int_op(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_simd_shift_imm(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_simd_shuffle_imm(struct iem_cpu *cpu, const struct iem_insn *in);

/* iem-simd-sse4.c */
int iem_simd_blendv(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_simd_ptest(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_simd_mpsadbw(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_simd_pcmpstr(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_simd_crc32(struct iem_cpu *cpu, const struct iem_insn *in);

#endif
