/* iem-simd-int.c - SSE2..SSE4.2 integer SIMD, logic, unpacks, shifts and shuffles on XMM registers. */
#include <Zydis/Zydis.h>

#include "iem-mmx.h"
#include "iem-simd.h"

/* Runs "insn b, a" on the host (integer and bitwise operations: MXCSR plays no part).  Returns
 * false for a mnemonic this table does not know. */
static bool simd_int_run(unsigned mn, union iem_xmm *d, const union iem_xmm *s)
{
    __m128i a = d->v, b = s->v;

    switch (mn) {
#define C(m, insn) case ZYDIS_MNEMONIC_##m: __asm__(insn " %[b], %[a]" : [a] "+x"(a) : [b] "x"(b)); break;
    /* SSE2 arithmetic (SDM vol. 2: PADDx, PSUBx, PMULx, PMADDWD, PAVGx, PSADBW). */
    C(PADDB, "paddb") C(PADDW, "paddw") C(PADDD, "paddd") C(PADDQ, "paddq")
    C(PADDSB, "paddsb") C(PADDSW, "paddsw") C(PADDUSB, "paddusb") C(PADDUSW, "paddusw")
    C(PSUBB, "psubb") C(PSUBW, "psubw") C(PSUBD, "psubd") C(PSUBQ, "psubq")
    C(PSUBSB, "psubsb") C(PSUBSW, "psubsw") C(PSUBUSB, "psubusb") C(PSUBUSW, "psubusw")
    C(PMULLW, "pmullw") C(PMULHW, "pmulhw") C(PMULHUW, "pmulhuw") C(PMULUDQ, "pmuludq")
    C(PMADDWD, "pmaddwd") C(PAVGB, "pavgb") C(PAVGW, "pavgw") C(PSADBW, "psadbw")
    C(PMINUB, "pminub") C(PMINSW, "pminsw") C(PMAXUB, "pmaxub") C(PMAXSW, "pmaxsw")
    /* SSSE3. */
    C(PMADDUBSW, "pmaddubsw") C(PMULHRSW, "pmulhrsw") C(PSHUFB, "pshufb")
    C(PABSB, "pabsb") C(PABSW, "pabsw") C(PABSD, "pabsd")
    C(PSIGNB, "psignb") C(PSIGNW, "psignw") C(PSIGND, "psignd")
    C(PHADDW, "phaddw") C(PHADDD, "phaddd") C(PHADDSW, "phaddsw")
    C(PHSUBW, "phsubw") C(PHSUBD, "phsubd") C(PHSUBSW, "phsubsw")
    /* SSE4.1 / SSE4.2 integer. */
    C(PMULDQ, "pmuldq") C(PMULLD, "pmulld") C(PACKUSDW, "packusdw") C(PHMINPOSUW, "phminposuw")
    C(PMINSB, "pminsb") C(PMINUW, "pminuw") C(PMINSD, "pminsd") C(PMINUD, "pminud")
    C(PMAXSB, "pmaxsb") C(PMAXUW, "pmaxuw") C(PMAXSD, "pmaxsd") C(PMAXUD, "pmaxud")
    C(PCMPEQQ, "pcmpeqq") C(PCMPGTQ, "pcmpgtq")
    C(PMOVSXBW, "pmovsxbw") C(PMOVSXBD, "pmovsxbd") C(PMOVSXBQ, "pmovsxbq")
    C(PMOVSXWD, "pmovsxwd") C(PMOVSXWQ, "pmovsxwq") C(PMOVSXDQ, "pmovsxdq")
    C(PMOVZXBW, "pmovzxbw") C(PMOVZXBD, "pmovzxbd") C(PMOVZXBQ, "pmovzxbq")
    C(PMOVZXWD, "pmovzxwd") C(PMOVZXWQ, "pmovzxwq") C(PMOVZXDQ, "pmovzxdq")
    /* Compares, packs, unpacks. */
    C(PCMPEQB, "pcmpeqb") C(PCMPEQW, "pcmpeqw") C(PCMPEQD, "pcmpeqd")
    C(PCMPGTB, "pcmpgtb") C(PCMPGTW, "pcmpgtw") C(PCMPGTD, "pcmpgtd")
    C(PACKSSWB, "packsswb") C(PACKSSDW, "packssdw") C(PACKUSWB, "packuswb")
    C(PUNPCKLBW, "punpcklbw") C(PUNPCKLWD, "punpcklwd") C(PUNPCKLDQ, "punpckldq") C(PUNPCKLQDQ, "punpcklqdq")
    C(PUNPCKHBW, "punpckhbw") C(PUNPCKHWD, "punpckhwd") C(PUNPCKHDQ, "punpckhdq") C(PUNPCKHQDQ, "punpckhqdq")
    C(UNPCKLPS, "unpcklps") C(UNPCKLPD, "unpcklpd") C(UNPCKHPS, "unpckhps") C(UNPCKHPD, "unpckhpd")
    /* Bitwise logic (no floating-point exceptions, SDM vol. 2 ANDPS & co). */
    C(PAND, "pand") C(PANDN, "pandn") C(POR, "por") C(PXOR, "pxor")
    C(ANDPS, "andps") C(ANDPD, "andpd") C(ANDNPS, "andnps") C(ANDNPD, "andnpd")
    C(ORPS, "orps") C(ORPD, "orpd") C(XORPS, "xorps") C(XORPD, "xorpd")
    /* Shifts by the count in an XMM register or memory operand (an imm8 count is the same
     * count placed in the low quadword). */
    C(PSLLW, "psllw") C(PSLLD, "pslld") C(PSLLQ, "psllq")
    C(PSRLW, "psrlw") C(PSRLD, "psrld") C(PSRLQ, "psrlq")
    C(PSRAW, "psraw") C(PSRAD, "psrad")
    /* SSE3 duplicating moves. */
    C(MOVSLDUP, "movsldup") C(MOVSHDUP, "movshdup") C(MOVDDUP, "movddup")
#undef C
    default:
        return false;
    }
    d->v = a;
    return true;
}

/* "op xmm, xmm/m128" (and the shifts' "op xmm, imm8"): 16-byte memory operands must be aligned;
 * smaller ones (PMOVSX/ZX, MOVDDUP) need not be.  MMX forms go to the MMX family. */
int iem_simd_int_op(struct iem_cpu *cpu, const struct iem_insn *in)
{
    union iem_xmm d, s;

    if (iem_simd_has_mmx(in))
        return iem_mmx_exec(cpu, in);
    iem_simd_enter(cpu, in);
    if (in->op[0].kind != IEM_OPK_XMM)
        iem_raise_ud(cpu);
    if (in->op[1].kind == IEM_OPK_IMM) {
        s.q[0] = in->imm & 0xff;
        s.q[1] = 0;
    } else {
        iem_simd_src(cpu, in, 1, &s, true);
    }
    iem_simd_xmm_get(cpu, in->op[0].reg, &d);
    if (!simd_int_run(in->mnemonic, &d, &s))
        iem_raise_ud(cpu);
    iem_simd_xmm_put(cpu, in->op[0].reg, &d);
    return IEM_NEXT;
}

/* PSLLDQ/PSRLDQ xmm, imm8: byte shifts of the whole register; counts above 15 clear it. */
int iem_simd_shift_imm(struct iem_cpu *cpu, const struct iem_insn *in)
{
    union iem_xmm d, r;
    unsigned n = (unsigned)in->imm & 0xff;

    iem_simd_enter(cpu, in);
    if (in->op[0].kind != IEM_OPK_XMM)
        iem_raise_ud(cpu);
    iem_simd_xmm_get(cpu, in->op[0].reg, &d);
    memset(&r, 0, sizeof(r));
    if (n < 16) {
        if (in->mnemonic == ZYDIS_MNEMONIC_PSLLDQ)
            memcpy(r.b + n, d.b, 16 - n);
        else
            memcpy(r.b, d.b + n, 16 - n);
    }
    iem_simd_xmm_put(cpu, in->op[0].reg, &r);
    return IEM_NEXT;
}

/* Data rearrangement selected by imm8 (SDM vol. 2: PSHUFD, PSHUFHW, PSHUFLW, SHUFPS, SHUFPD,
 * PALIGNR, PBLENDW, BLENDPS, BLENDPD); exact in C. */
int iem_simd_shuffle_imm(struct iem_cpu *cpu, const struct iem_insn *in)
{
    union iem_xmm d, s, r;
    unsigned imm = (unsigned)in->imm & 0xff;

    if (iem_simd_has_mmx(in))
        return iem_mmx_exec(cpu, in);
    iem_simd_enter(cpu, in);
    if (in->op[0].kind != IEM_OPK_XMM)
        iem_raise_ud(cpu);
    iem_simd_src(cpu, in, 1, &s, true);
    iem_simd_xmm_get(cpu, in->op[0].reg, &d);
    switch (in->mnemonic) {
    case ZYDIS_MNEMONIC_PSHUFD:
        for (unsigned i = 0; i < 4; i++)
            r.d[i] = s.d[(imm >> (2 * i)) & 3];
        break;
    case ZYDIS_MNEMONIC_PSHUFHW:
        r.q[0] = s.q[0];
        for (unsigned i = 0; i < 4; i++)
            r.w[4 + i] = s.w[4 + ((imm >> (2 * i)) & 3)];
        break;
    case ZYDIS_MNEMONIC_PSHUFLW:
        r.q[1] = s.q[1];
        for (unsigned i = 0; i < 4; i++)
            r.w[i] = s.w[(imm >> (2 * i)) & 3];
        break;
    case ZYDIS_MNEMONIC_SHUFPS:
        r.d[0] = d.d[imm & 3];
        r.d[1] = d.d[(imm >> 2) & 3];
        r.d[2] = s.d[(imm >> 4) & 3];
        r.d[3] = s.d[(imm >> 6) & 3];
        break;
    case ZYDIS_MNEMONIC_SHUFPD:
        r.q[0] = d.q[imm & 1];
        r.q[1] = s.q[(imm >> 1) & 1];
        break;
    case ZYDIS_MNEMONIC_PALIGNR:
        /* (dst:src) as a 32-byte value shifted right by imm8 bytes, zeros shifted in. */
        for (unsigned i = 0; i < 16; i++) {
            unsigned k = imm + i;
            r.b[i] = k < 16 ? s.b[k] : k < 32 ? d.b[k - 16] : 0;
        }
        break;
    case ZYDIS_MNEMONIC_PBLENDW:
        for (unsigned i = 0; i < 8; i++)
            r.w[i] = (imm >> i) & 1 ? s.w[i] : d.w[i];
        break;
    case ZYDIS_MNEMONIC_BLENDPS:
        for (unsigned i = 0; i < 4; i++)
            r.d[i] = (imm >> i) & 1 ? s.d[i] : d.d[i];
        break;
    case ZYDIS_MNEMONIC_BLENDPD:
        for (unsigned i = 0; i < 2; i++)
            r.q[i] = (imm >> i) & 1 ? s.q[i] : d.q[i];
        break;
    default:
        iem_raise_ud(cpu);
    }
    iem_simd_xmm_put(cpu, in->op[0].reg, &r);
    return IEM_NEXT;
}
