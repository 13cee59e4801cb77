/* iem-simd.c - the interpreter's SSE..SSE4.2 family: preconditions, operands, MXCSR exception handling and the handler table. */

/*
 * Design of the SIMD family (iem-simd*.c):
 *
 * - Exactness: every floating-point result and MXCSR flag comes from the host (x86-64 with
 *   SSE4.2) executing the same instruction.  The host runs it with the guest's DAZ, RC and FZ
 *   but with every exception masked and the flags cleared, all inside one asm statement that
 *   also saves and restores the host's own MXCSR, so the host never takes a SIMD exception
 *   and the compiler cannot move other floating-point work into the guest's rounding mode.
 * - Exceptions (SDM vol. 1, 11.5.1-11.5.3): the flags of that masked run are compared with
 *   the guest's mask bits.  Nothing unmasked: the flags are ORed into the guest's MXCSR and the
 *   result written.  Something unmasked: the destination stays unchanged and the guest takes
 *   #XM, or #UD when CR4.OSXMMEXCPT=0 (SDM vol. 3A, 6.15 "#XM").  When an unmasked
 *   pre-computation exception (invalid, denormal, divide-by-zero) is found, only the
 *   pre-computation flags are recorded, since the hardware does not go on to the
 *   post-computation checks (SDM vol. 1, 11.5.2.1).  Underflow differs between the two cases
 *   (a masked underflow needs tiny AND inexact, an unmasked one only tiny), which
 *   iem_simd_tiny makes up for; flush-to-zero is dropped for such runs because it only
 *   applies to masked underflow.
 * - Immediate-controlled instructions (CMPPS, ROUNDPS, DPPS, PCMPxSTRx) run the host
 *   instruction with the guest's immediate, chosen in a switch that macros generate over all
 *   immediate values; pure data movement (shuffles, blends, inserts) is plain C.
 * - Preconditions (SDM vol. 3A, 2.5, 13.1): CR0.EM=1 or CR4.OSFXSR=0 -> #UD, CR0.TS=1 -> #NM,
 *   then operand fetch; 16-byte memory operands of legacy SSE instructions must be aligned
 *   (#GP(0)) except for MOVUPS/MOVUPD/MOVDQU/LDDQU and PCMPxSTRx; smaller memory operands
 *   (scalar, 64-bit halves, PMOVSX/ZX) have no alignment rule.
 * - Mnemonics that exist in MMX and SSE forms (PADDB mm/xmm, ...) are registered here; their
 *   handlers forward to the x87/MMX family's iem_mmx_exec when an operand is an MMX register.
 *   MOVSD and CMPSD are registered by the integer family (string forms), which forwards the
 *   SSE2 forms to iem_simd_movsd / iem_simd_cmpsd.  Mnemonics not in the table (AVX, SSE4a,
 *   AES-NI, PCLMULQDQ, SHA: none of them advertised in CPUID) get the decoder's #UD.
 */

#include <Zydis/Zydis.h>

#include "iem-simd.h"

void iem_simd_enter(struct iem_cpu *cpu, const struct iem_insn *in)
{
    uint64_t cr0 = cpu->s->cr0;

    if ((in->prefixes & IEM_PFX_LOCK) || (cr0 & IEM_CR0_EM) || !(cpu->s->cr4 & IEM_CR4_OSFXSR))
        iem_raise_ud(cpu);
    if (cr0 & IEM_CR0_TS)
        iem_raise(cpu, IEM_X_NM);
}

bool iem_simd_has_mmx(const struct iem_insn *in)
{
    return in->op[0].kind == IEM_OPK_MMX || in->op[1].kind == IEM_OPK_MMX;
}

void iem_simd_src(struct iem_cpu *cpu, const struct iem_insn *in, unsigned idx, union iem_xmm *v, bool aligned)
{
    const struct iem_operand *op = &in->op[idx];
    uint64_t off;

    if (op->kind == IEM_OPK_XMM) {
        iem_simd_xmm_get(cpu, op->reg, v);
        return;
    }
    if (op->kind != IEM_OPK_MEM)
        iem_raise_ud(cpu);
    v->q[0] = 0;
    v->q[1] = 0;
    off = iem_ea(cpu, in);
    switch (op->size) {
    case 16:
        if (aligned)
            iem_mem_read128_aligned(cpu, in->mem.seg, off, v->b);
        else
            iem_mem_read_bytes(cpu, in->mem.seg, off, v->b, 16);
        break;
    case 8:
        v->q[0] = iem_mem_read64(cpu, in->mem.seg, off);
        break;
    case 4:
        v->d[0] = iem_mem_read32(cpu, in->mem.seg, off);
        break;
    case 2:
        v->w[0] = iem_mem_read16(cpu, in->mem.seg, off);
        break;
    case 1:
        v->b[0] = iem_mem_read8(cpu, in->mem.seg, off);
        break;
    default:
        iem_raise_ud(cpu);
    }
}

void iem_simd_store(struct iem_cpu *cpu, const struct iem_insn *in, unsigned idx, const union iem_xmm *v, bool aligned)
{
    const struct iem_operand *op = &in->op[idx];
    uint64_t off;

    if (op->kind == IEM_OPK_XMM) {
        iem_simd_xmm_put(cpu, op->reg, v);
        return;
    }
    if (op->kind != IEM_OPK_MEM)
        iem_raise_ud(cpu);
    off = iem_ea(cpu, in);
    switch (op->size) {
    case 16:
        if (aligned)
            iem_mem_write128_aligned(cpu, in->mem.seg, off, v->b);
        else
            iem_mem_write_bytes(cpu, in->mem.seg, off, v->b, 16);
        break;
    case 8:
        iem_mem_write64(cpu, in->mem.seg, off, v->q[0]);
        break;
    case 4:
        iem_mem_write32(cpu, in->mem.seg, off, v->d[0]);
        break;
    case 2:
        iem_mem_write16(cpu, in->mem.seg, off, v->w[0]);
        break;
    case 1:
        iem_mem_write8(cpu, in->mem.seg, off, v->b[0]);
        break;
    default:
        iem_raise_ud(cpu);
    }
}

uint32_t iem_simd_mx_host(const struct iem_cpu *cpu)
{
    uint32_t mx = cpu->s->fpu.mxcsr;
    uint32_t host = (mx & (IEM_MXCSR_DAZ | IEM_MXCSR_RC | IEM_MXCSR_FZ)) | IEM_MXCSR_MASKS;

    if (!(mx & IEM_MXCSR_UM))
        host &= ~IEM_MXCSR_FZ;
    return host;
}

void iem_simd_mx_commit(struct iem_cpu *cpu, uint32_t flags)
{
    uint32_t mx = cpu->s->fpu.mxcsr;
    uint32_t unmasked;

    flags &= IEM_MXCSR_FLAGS;
    unmasked = flags & ~(mx >> 7) & IEM_MXCSR_FLAGS;
    if (unmasked) {
        const uint32_t pre = IEM_MXCSR_IE | IEM_MXCSR_DE | IEM_MXCSR_ZE;

        if (unmasked & pre)
            flags &= pre;
        cpu->s->fpu.mxcsr = mx | flags;
        iem_raise(cpu, (cpu->s->cr4 & IEM_CR4_OSXMMEXCPT) ? IEM_X_XM : IEM_X_UD);
    }
    cpu->s->fpu.mxcsr = mx | flags;
}

uint32_t iem_simd_tiny(const struct iem_cpu *cpu, const union iem_xmm *r, unsigned esize, unsigned lanes)
{
    if (cpu->s->fpu.mxcsr & IEM_MXCSR_UM)
        return 0;
    for (unsigned i = 0; i < 16 / esize; i++) {
        if (!(lanes & (1u << i)))
            continue;
        if (esize == 4) {
            uint32_t x = r->d[i];
            if (!(x & 0x7f800000u) && (x & 0x007fffffu))
                return IEM_MXCSR_UE;
        } else {
            uint64_t x = r->q[i];
            if (!(x & 0x7ff0000000000000ull) && (x & 0x000fffffffffffffull))
                return IEM_MXCSR_UE;
        }
    }
    return 0;
}

/* LDMXCSR / STMXCSR (SDM vol. 2, LDMXCSR: reserved bits set -> #GP(0)). */
int iem_simd_ldmxcsr(struct iem_cpu *cpu, const struct iem_insn *in)
{
    uint32_t mask = cpu->s->fpu.mxcsr_mask ? cpu->s->fpu.mxcsr_mask : 0xffbfu;
    uint32_t v;

    iem_simd_enter(cpu, in);
    if (in->op[0].kind != IEM_OPK_MEM)
        iem_raise_ud(cpu);
    v = (uint32_t)iem_op_read(cpu, in, 0);
    if (v & ~mask)
        iem_raise_gp0(cpu);
    cpu->s->fpu.mxcsr = v;
    return IEM_NEXT;
}

int iem_simd_stmxcsr(struct iem_cpu *cpu, const struct iem_insn *in)
{
    iem_simd_enter(cpu, in);
    if (in->op[0].kind != IEM_OPK_MEM)
        iem_raise_ud(cpu);
    iem_op_write(cpu, in, 0, cpu->s->fpu.mxcsr);
    return IEM_NEXT;
}

#define M(mn, fn) { ZYDIS_MNEMONIC_##mn, fn },
const struct iem_handler_map g_iem_map_simd[] = {
    /* Moves (iem-simd-move.c). */
    M(MOVAPS, iem_simd_mov128) M(MOVAPD, iem_simd_mov128) M(MOVDQA, iem_simd_mov128)
    M(MOVUPS, iem_simd_mov128) M(MOVUPD, iem_simd_mov128) M(MOVDQU, iem_simd_mov128)
    M(LDDQU, iem_simd_mov128) M(MOVNTPS, iem_simd_mov128) M(MOVNTPD, iem_simd_mov128)
    M(MOVNTDQ, iem_simd_mov128) M(MOVNTDQA, iem_simd_mov128)
    M(MOVSS, iem_simd_movss)
    M(MOVLPS, iem_simd_movhalf) M(MOVLPD, iem_simd_movhalf) M(MOVHPS, iem_simd_movhalf)
    M(MOVHPD, iem_simd_movhalf) M(MOVLHPS, iem_simd_movhalf) M(MOVHLPS, iem_simd_movhalf)
    M(MOVD, iem_simd_movdq) M(MOVQ, iem_simd_movdq)
    M(MOVQ2DQ, iem_simd_mov_mmx) M(MOVDQ2Q, iem_simd_mov_mmx)
    M(MOVNTI, iem_simd_movnti) M(MASKMOVDQU, iem_simd_maskmovdqu)
    M(MOVMSKPS, iem_simd_movmsk) M(MOVMSKPD, iem_simd_movmsk) M(PMOVMSKB, iem_simd_movmsk)
    M(PEXTRB, iem_simd_extract) M(PEXTRW, iem_simd_extract) M(PEXTRD, iem_simd_extract)
    M(PEXTRQ, iem_simd_extract) M(EXTRACTPS, iem_simd_extract)
    M(PINSRB, iem_simd_insert) M(PINSRW, iem_simd_insert) M(PINSRD, iem_simd_insert)
    M(PINSRQ, iem_simd_insert) M(INSERTPS, iem_simd_insert)
    M(LDMXCSR, iem_simd_ldmxcsr) M(STMXCSR, iem_simd_stmxcsr)

    /* Floating point (iem-simd-fp.c). */
    M(ADDPS, iem_simd_fp_arith) M(ADDSS, iem_simd_fp_arith) M(ADDPD, iem_simd_fp_arith) M(ADDSD, iem_simd_fp_arith)
    M(SUBPS, iem_simd_fp_arith) M(SUBSS, iem_simd_fp_arith) M(SUBPD, iem_simd_fp_arith) M(SUBSD, iem_simd_fp_arith)
    M(MULPS, iem_simd_fp_arith) M(MULSS, iem_simd_fp_arith) M(MULPD, iem_simd_fp_arith) M(MULSD, iem_simd_fp_arith)
    M(DIVPS, iem_simd_fp_arith) M(DIVSS, iem_simd_fp_arith) M(DIVPD, iem_simd_fp_arith) M(DIVSD, iem_simd_fp_arith)
    M(MINPS, iem_simd_fp_arith) M(MINSS, iem_simd_fp_arith) M(MINPD, iem_simd_fp_arith) M(MINSD, iem_simd_fp_arith)
    M(MAXPS, iem_simd_fp_arith) M(MAXSS, iem_simd_fp_arith) M(MAXPD, iem_simd_fp_arith) M(MAXSD, iem_simd_fp_arith)
    M(SQRTPS, iem_simd_fp_arith) M(SQRTSS, iem_simd_fp_arith) M(SQRTPD, iem_simd_fp_arith) M(SQRTSD, iem_simd_fp_arith)
    M(RCPPS, iem_simd_fp_arith) M(RCPSS, iem_simd_fp_arith) M(RSQRTPS, iem_simd_fp_arith) M(RSQRTSS, iem_simd_fp_arith)
    M(ADDSUBPS, iem_simd_fp_arith) M(ADDSUBPD, iem_simd_fp_arith)
    M(HADDPS, iem_simd_fp_arith) M(HADDPD, iem_simd_fp_arith) M(HSUBPS, iem_simd_fp_arith) M(HSUBPD, iem_simd_fp_arith)
    M(CVTPS2PD, iem_simd_fp_arith) M(CVTPD2PS, iem_simd_fp_arith) M(CVTSS2SD, iem_simd_fp_arith)
    M(CVTSD2SS, iem_simd_fp_arith) M(CVTDQ2PS, iem_simd_fp_arith) M(CVTPS2DQ, iem_simd_fp_arith)
    M(CVTTPS2DQ, iem_simd_fp_arith) M(CVTDQ2PD, iem_simd_fp_arith) M(CVTPD2DQ, iem_simd_fp_arith)
    M(CVTTPD2DQ, iem_simd_fp_arith)
    M(CMPPS, iem_simd_fp_cmp) M(CMPSS, iem_simd_fp_cmp) M(CMPPD, iem_simd_fp_cmp)
    M(COMISS, iem_simd_fp_comis) M(UCOMISS, iem_simd_fp_comis) M(COMISD, iem_simd_fp_comis)
    M(UCOMISD, iem_simd_fp_comis)
    M(CVTSI2SS, iem_simd_cvt_from_gpr) M(CVTSI2SD, iem_simd_cvt_from_gpr)
    M(CVTSS2SI, iem_simd_cvt_to_gpr) M(CVTTSS2SI, iem_simd_cvt_to_gpr) M(CVTSD2SI, iem_simd_cvt_to_gpr)
    M(CVTTSD2SI, iem_simd_cvt_to_gpr)
    M(CVTPI2PS, iem_simd_cvt_mmx) M(CVTPI2PD, iem_simd_cvt_mmx) M(CVTPS2PI, iem_simd_cvt_mmx)
    M(CVTTPS2PI, iem_simd_cvt_mmx) M(CVTPD2PI, iem_simd_cvt_mmx) M(CVTTPD2PI, iem_simd_cvt_mmx)
    M(ROUNDPS, iem_simd_fp_round) M(ROUNDSS, iem_simd_fp_round) M(ROUNDPD, iem_simd_fp_round)
    M(ROUNDSD, iem_simd_fp_round)
    M(DPPS, iem_simd_fp_dp) M(DPPD, iem_simd_fp_dp)

    /* Integer SIMD, logic, unpacks and data rearrangement (iem-simd-int.c). */
    M(PADDB, iem_simd_int_op) M(PADDW, iem_simd_int_op) M(PADDD, iem_simd_int_op) M(PADDQ, iem_simd_int_op)
    M(PADDSB, iem_simd_int_op) M(PADDSW, iem_simd_int_op) M(PADDUSB, iem_simd_int_op) M(PADDUSW, iem_simd_int_op)
    M(PSUBB, iem_simd_int_op) M(PSUBW, iem_simd_int_op) M(PSUBD, iem_simd_int_op) M(PSUBQ, iem_simd_int_op)
    M(PSUBSB, iem_simd_int_op) M(PSUBSW, iem_simd_int_op) M(PSUBUSB, iem_simd_int_op) M(PSUBUSW, iem_simd_int_op)
    M(PMULLW, iem_simd_int_op) M(PMULHW, iem_simd_int_op) M(PMULHUW, iem_simd_int_op) M(PMULUDQ, iem_simd_int_op)
    M(PMULDQ, iem_simd_int_op) M(PMULLD, iem_simd_int_op) M(PMADDWD, iem_simd_int_op) M(PMADDUBSW, iem_simd_int_op)
    M(PMULHRSW, iem_simd_int_op) M(PAVGB, iem_simd_int_op) M(PAVGW, iem_simd_int_op) M(PSADBW, iem_simd_int_op)
    M(PMINUB, iem_simd_int_op) M(PMINUW, iem_simd_int_op) M(PMINUD, iem_simd_int_op)
    M(PMINSB, iem_simd_int_op) M(PMINSW, iem_simd_int_op) M(PMINSD, iem_simd_int_op)
    M(PMAXUB, iem_simd_int_op) M(PMAXUW, iem_simd_int_op) M(PMAXUD, iem_simd_int_op)
    M(PMAXSB, iem_simd_int_op) M(PMAXSW, iem_simd_int_op) M(PMAXSD, iem_simd_int_op)
    M(PABSB, iem_simd_int_op) M(PABSW, iem_simd_int_op) M(PABSD, iem_simd_int_op)
    M(PSIGNB, iem_simd_int_op) M(PSIGNW, iem_simd_int_op) M(PSIGND, iem_simd_int_op)
    M(PHADDW, iem_simd_int_op) M(PHADDD, iem_simd_int_op) M(PHADDSW, iem_simd_int_op)
    M(PHSUBW, iem_simd_int_op) M(PHSUBD, iem_simd_int_op) M(PHSUBSW, iem_simd_int_op)
    M(PCMPEQB, iem_simd_int_op) M(PCMPEQW, iem_simd_int_op) M(PCMPEQD, iem_simd_int_op) M(PCMPEQQ, iem_simd_int_op)
    M(PCMPGTB, iem_simd_int_op) M(PCMPGTW, iem_simd_int_op) M(PCMPGTD, iem_simd_int_op) M(PCMPGTQ, iem_simd_int_op)
    M(PACKSSWB, iem_simd_int_op) M(PACKSSDW, iem_simd_int_op) M(PACKUSWB, iem_simd_int_op) M(PACKUSDW, iem_simd_int_op)
    M(PUNPCKLBW, iem_simd_int_op) M(PUNPCKLWD, iem_simd_int_op) M(PUNPCKLDQ, iem_simd_int_op)
    M(PUNPCKLQDQ, iem_simd_int_op) M(PUNPCKHBW, iem_simd_int_op) M(PUNPCKHWD, iem_simd_int_op)
    M(PUNPCKHDQ, iem_simd_int_op) M(PUNPCKHQDQ, iem_simd_int_op)
    M(PAND, iem_simd_int_op) M(PANDN, iem_simd_int_op) M(POR, iem_simd_int_op) M(PXOR, iem_simd_int_op)
    M(ANDPS, iem_simd_int_op) M(ANDPD, iem_simd_int_op) M(ANDNPS, iem_simd_int_op) M(ANDNPD, iem_simd_int_op)
    M(ORPS, iem_simd_int_op) M(ORPD, iem_simd_int_op) M(XORPS, iem_simd_int_op) M(XORPD, iem_simd_int_op)
    M(UNPCKLPS, iem_simd_int_op) M(UNPCKLPD, iem_simd_int_op) M(UNPCKHPS, iem_simd_int_op)
    M(UNPCKHPD, iem_simd_int_op)
    M(PSHUFB, iem_simd_int_op)
    M(PSLLW, iem_simd_int_op) M(PSLLD, iem_simd_int_op) M(PSLLQ, iem_simd_int_op)
    M(PSRLW, iem_simd_int_op) M(PSRLD, iem_simd_int_op) M(PSRLQ, iem_simd_int_op)
    M(PSRAW, iem_simd_int_op) M(PSRAD, iem_simd_int_op)
    M(PMOVSXBW, iem_simd_int_op) M(PMOVSXBD, iem_simd_int_op) M(PMOVSXBQ, iem_simd_int_op)
    M(PMOVSXWD, iem_simd_int_op) M(PMOVSXWQ, iem_simd_int_op) M(PMOVSXDQ, iem_simd_int_op)
    M(PMOVZXBW, iem_simd_int_op) M(PMOVZXBD, iem_simd_int_op) M(PMOVZXBQ, iem_simd_int_op)
    M(PMOVZXWD, iem_simd_int_op) M(PMOVZXWQ, iem_simd_int_op) M(PMOVZXDQ, iem_simd_int_op)
    M(PHMINPOSUW, iem_simd_int_op)
    M(MOVSLDUP, iem_simd_int_op) M(MOVSHDUP, iem_simd_int_op) M(MOVDDUP, iem_simd_int_op)
    M(PSLLDQ, iem_simd_shift_imm) M(PSRLDQ, iem_simd_shift_imm)
    M(PSHUFD, iem_simd_shuffle_imm) M(PSHUFHW, iem_simd_shuffle_imm) M(PSHUFLW, iem_simd_shuffle_imm)
    M(SHUFPS, iem_simd_shuffle_imm) M(SHUFPD, iem_simd_shuffle_imm) M(PALIGNR, iem_simd_shuffle_imm)
    M(PBLENDW, iem_simd_shuffle_imm) M(BLENDPS, iem_simd_shuffle_imm) M(BLENDPD, iem_simd_shuffle_imm)

    /* SSE4.1 / SSE4.2 specials (iem-simd-sse4.c). */
    M(BLENDVPS, iem_simd_blendv) M(BLENDVPD, iem_simd_blendv) M(PBLENDVB, iem_simd_blendv)
    M(PTEST, iem_simd_ptest) M(MPSADBW, iem_simd_mpsadbw)
    M(PCMPESTRI, iem_simd_pcmpstr) M(PCMPESTRM, iem_simd_pcmpstr) M(PCMPISTRI, iem_simd_pcmpstr)
    M(PCMPISTRM, iem_simd_pcmpstr)
    M(CRC32, iem_simd_crc32)
    { 0, NULL },
};
#undef M
