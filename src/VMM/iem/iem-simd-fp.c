/* iem-simd-fp.c - SSE..SSE4.1 floating point: arithmetic, compares, conversions, ROUND and DPPS, computed by the host. */
#include <Zydis/Zydis.h>

#include "iem-fpu.h"
#include "iem-mmx.h"
#include "iem-simd.h"

/* ---- Two-operand arithmetic and conversions ("op xmm, xmm/m") ----------------------------- */

/* Runs the host instruction for mnemonic mn; returns the MXCSR flags, or UINT32_MAX for a
 * mnemonic this table does not know. */
static uint32_t simd_fp_run(unsigned mn, union iem_xmm *d, const union iem_xmm *s, uint32_t mx)
{
    __m128i a = d->v, b = s->v;
    uint32_t sv;

    switch (mn) {
#define C(m, insn) case ZYDIS_MNEMONIC_##m: IEM_SIMD_HOST(insn); break;
    C(ADDPS, "addps") C(ADDSS, "addss") C(ADDPD, "addpd") C(ADDSD, "addsd")
    C(SUBPS, "subps") C(SUBSS, "subss") C(SUBPD, "subpd") C(SUBSD, "subsd")
    C(MULPS, "mulps") C(MULSS, "mulss") C(MULPD, "mulpd") C(MULSD, "mulsd")
    C(DIVPS, "divps") C(DIVSS, "divss") C(DIVPD, "divpd") C(DIVSD, "divsd")
    C(MINPS, "minps") C(MINSS, "minss") C(MINPD, "minpd") C(MINSD, "minsd")
    C(MAXPS, "maxps") C(MAXSS, "maxss") C(MAXPD, "maxpd") C(MAXSD, "maxsd")
    C(SQRTPS, "sqrtps") C(SQRTSS, "sqrtss") C(SQRTPD, "sqrtpd") C(SQRTSD, "sqrtsd")
    C(RCPPS, "rcpps") C(RCPSS, "rcpss") C(RSQRTPS, "rsqrtps") C(RSQRTSS, "rsqrtss")
    C(ADDSUBPS, "addsubps") C(ADDSUBPD, "addsubpd")
    C(HADDPS, "haddps") C(HADDPD, "haddpd") C(HSUBPS, "hsubps") C(HSUBPD, "hsubpd")
    C(CVTPS2PD, "cvtps2pd") C(CVTPD2PS, "cvtpd2ps") C(CVTSS2SD, "cvtss2sd") C(CVTSD2SS, "cvtsd2ss")
    C(CVTDQ2PS, "cvtdq2ps") C(CVTPS2DQ, "cvtps2dq") C(CVTTPS2DQ, "cvttps2dq")
    C(CVTDQ2PD, "cvtdq2pd") C(CVTPD2DQ, "cvtpd2dq") C(CVTTPD2DQ, "cvttpd2dq")
#undef C
    default:
        return UINT32_MAX;
    }
    d->v = a;
    return mx & IEM_MXCSR_FLAGS;
}

/* The result elements that can underflow (arithmetic and narrowing conversions; MIN/MAX, SQRT
 * and RCP/RSQRT cannot, SDM vol. 2 "SIMD Floating-Point Exceptions" of each): lane bits, and the
 * element size in *esize. */
static unsigned simd_fp_underflow_lanes(unsigned mn, unsigned *esize)
{
    *esize = 4;
    switch (mn) {
    case ZYDIS_MNEMONIC_ADDPS: case ZYDIS_MNEMONIC_SUBPS: case ZYDIS_MNEMONIC_MULPS:
    case ZYDIS_MNEMONIC_DIVPS: case ZYDIS_MNEMONIC_ADDSUBPS: case ZYDIS_MNEMONIC_HADDPS:
    case ZYDIS_MNEMONIC_HSUBPS:
        return 0xf;
    case ZYDIS_MNEMONIC_ADDSS: case ZYDIS_MNEMONIC_SUBSS: case ZYDIS_MNEMONIC_MULSS:
    case ZYDIS_MNEMONIC_DIVSS: case ZYDIS_MNEMONIC_CVTSD2SS:
        return 0x1;
    case ZYDIS_MNEMONIC_CVTPD2PS:
        return 0x3;
    case ZYDIS_MNEMONIC_ADDPD: case ZYDIS_MNEMONIC_SUBPD: case ZYDIS_MNEMONIC_MULPD:
    case ZYDIS_MNEMONIC_DIVPD: case ZYDIS_MNEMONIC_ADDSUBPD: case ZYDIS_MNEMONIC_HADDPD:
    case ZYDIS_MNEMONIC_HSUBPD:
        *esize = 8;
        return 0x3;
    case ZYDIS_MNEMONIC_ADDSD: case ZYDIS_MNEMONIC_SUBSD: case ZYDIS_MNEMONIC_MULSD:
    case ZYDIS_MNEMONIC_DIVSD:
        *esize = 8;
        return 0x1;
    default:
        return 0;
    }
}

int iem_simd_fp_arith(struct iem_cpu *cpu, const struct iem_insn *in)
{
    union iem_xmm d, s;
    unsigned esize, lanes;
    uint32_t flags;

    iem_simd_enter(cpu, in);
    if (in->op[0].kind != IEM_OPK_XMM)
        iem_raise_ud(cpu);
    iem_simd_src(cpu, in, 1, &s, true);
    iem_simd_xmm_get(cpu, in->op[0].reg, &d);
    flags = simd_fp_run(in->mnemonic, &d, &s, iem_simd_mx_host(cpu));
    if (flags == UINT32_MAX)
        iem_raise_ud(cpu);
    lanes = simd_fp_underflow_lanes(in->mnemonic, &esize);
    if (lanes)
        flags |= iem_simd_tiny(cpu, &d, esize, lanes);
    iem_simd_mx_commit(cpu, flags);
    iem_simd_xmm_put(cpu, in->op[0].reg, &d);
    return IEM_NEXT;
}

/* ---- CMPPS/CMPSS/CMPPD/CMPSD with the predicate in imm8[2:0] ------------------------------ */

static uint32_t simd_cmp_run(unsigned mn, unsigned pred, union iem_xmm *d, const union iem_xmm *s, uint32_t mx)
{
    __m128i a = d->v, b = s->v;
    uint32_t sv;

#define P(insn, n) case n: IEM_SIMD_HOSTI(insn, n); break;
#define C(m, insn) \
    case ZYDIS_MNEMONIC_##m: \
        switch (pred & 7) { P(insn, 0) P(insn, 1) P(insn, 2) P(insn, 3) P(insn, 4) P(insn, 5) P(insn, 6) P(insn, 7) } \
        break;
    switch (mn) {
    C(CMPPS, "cmpps") C(CMPSS, "cmpss") C(CMPPD, "cmppd") C(CMPSD, "cmpsd")
    default:
        return UINT32_MAX;
    }
#undef C
#undef P
    d->v = a;
    return mx & IEM_MXCSR_FLAGS;
}

/* Legacy-SSE compares use only imm8[2:0] (SDM vol. 2, CMPPS: "imm8[7:3] reserved" for the
 * non-VEX encodings). */
int iem_simd_fp_cmp(struct iem_cpu *cpu, const struct iem_insn *in)
{
    union iem_xmm d, s;
    uint32_t flags;

    iem_simd_enter(cpu, in);
    if (in->op[0].kind != IEM_OPK_XMM)
        iem_raise_ud(cpu);
    iem_simd_src(cpu, in, 1, &s, true);
    iem_simd_xmm_get(cpu, in->op[0].reg, &d);
    flags = simd_cmp_run(in->mnemonic, (unsigned)in->imm, &d, &s, iem_simd_mx_host(cpu));
    if (flags == UINT32_MAX)
        iem_raise_ud(cpu);
    iem_simd_mx_commit(cpu, flags);
    iem_simd_xmm_put(cpu, in->op[0].reg, &d);
    return IEM_NEXT;
}

int iem_simd_cmpsd(struct iem_cpu *cpu, const struct iem_insn *in)
{
    return iem_simd_fp_cmp(cpu, in);
}

/* ---- COMISS/UCOMISS/COMISD/UCOMISD: ZF, PF, CF from the compare, OF, SF, AF cleared --------- */

int iem_simd_fp_comis(struct iem_cpu *cpu, const struct iem_insn *in)
{
    union iem_xmm d, s;
    __m128i a, b;
    uint32_t mx, sv;
    bool zf, pf, cf;

    iem_simd_enter(cpu, in);
    if (in->op[0].kind != IEM_OPK_XMM)
        iem_raise_ud(cpu);
    iem_simd_src(cpu, in, 1, &s, true);
    iem_simd_xmm_get(cpu, in->op[0].reg, &d);
    a = d.v;
    b = s.v;
    mx = iem_simd_mx_host(cpu);
#define C(m, insn) \
    case ZYDIS_MNEMONIC_##m: \
        __asm__ volatile("stmxcsr %[sv]\n\tldmxcsr %[mx]\n\t" insn " %[b], %[a]\n\tstmxcsr %[mx]\n\tldmxcsr %[sv]" \
                         : "=@ccz"(zf), "=@ccp"(pf), "=@ccc"(cf), [mx] "+m"(mx), [sv] "=m"(sv) \
                         : [a] "x"(a), [b] "x"(b)); \
        break;
    switch (in->mnemonic) {
    C(COMISS, "comiss") C(UCOMISS, "ucomiss") C(COMISD, "comisd") C(UCOMISD, "ucomisd")
    default:
        iem_raise_ud(cpu);
    }
#undef C
    iem_simd_mx_commit(cpu, mx);
    cpu->s->rflags = (cpu->s->rflags & ~(uint64_t)IEM_F_ARITH) | (zf ? IEM_F_ZF : 0) | (pf ? IEM_F_PF : 0) |
                     (cf ? IEM_F_CF : 0);
    return IEM_NEXT;
}

/* ---- Conversions with general registers ------------------------------------------------------ */

/* CVTSI2SS/CVTSI2SD xmm, r/m32 or r/m64 (REX.W): the low element converted, the rest kept. */
int iem_simd_cvt_from_gpr(struct iem_cpu *cpu, const struct iem_insn *in)
{
    union iem_xmm d;
    __m128i a;
    uint64_t v;
    uint32_t mx, sv;
    bool wide = in->op[1].size == 8;
    bool dbl = in->mnemonic == ZYDIS_MNEMONIC_CVTSI2SD;

    iem_simd_enter(cpu, in);
    if (in->op[0].kind != IEM_OPK_XMM || (in->op[1].kind != IEM_OPK_GPR && in->op[1].kind != IEM_OPK_MEM))
        iem_raise_ud(cpu);
    v = iem_op_read(cpu, in, 1);
    iem_simd_xmm_get(cpu, in->op[0].reg, &d);
    a = d.v;
    mx = iem_simd_mx_host(cpu);
#define CVT(insn, val) \
    __asm__ volatile("stmxcsr %[sv]\n\tldmxcsr %[mx]\n\t" insn " %[r], %[a]\n\tstmxcsr %[mx]\n\tldmxcsr %[sv]" \
                     : [a] "+x"(a), [mx] "+m"(mx), [sv] "=m"(sv) : [r] "r"(val))
    if (dbl) {
        if (wide)
            CVT("cvtsi2sdq", v);
        else
            CVT("cvtsi2sdl", (uint32_t)v);
    } else {
        if (wide)
            CVT("cvtsi2ssq", v);
        else
            CVT("cvtsi2ssl", (uint32_t)v);
    }
#undef CVT
    iem_simd_mx_commit(cpu, mx);
    d.v = a;
    iem_simd_xmm_put(cpu, in->op[0].reg, &d);
    return IEM_NEXT;
}

/* CVT(T)SS2SI / CVT(T)SD2SI r32/r64, xmm/m: out-of-range and NaN give the integer indefinite
 * value with #I (SDM vol. 1, 11.5.2.1); the host produces exactly that. */
int iem_simd_cvt_to_gpr(struct iem_cpu *cpu, const struct iem_insn *in)
{
    union iem_xmm s;
    __m128i b;
    uint32_t mx, sv, r32 = 0;
    uint64_t r64 = 0;
    bool wide = in->op[0].size == 8;

    iem_simd_enter(cpu, in);
    if (in->op[0].kind != IEM_OPK_GPR)
        iem_raise_ud(cpu);
    iem_simd_src(cpu, in, 1, &s, false);
    b = s.v;
    mx = iem_simd_mx_host(cpu);
#define CVT(insn, out) \
    __asm__ volatile("stmxcsr %[sv]\n\tldmxcsr %[mx]\n\t" insn " %[b], %[r]\n\tstmxcsr %[mx]\n\tldmxcsr %[sv]" \
                     : [r] "=r"(out), [mx] "+m"(mx), [sv] "=m"(sv) : [b] "x"(b))
#define C(m, insn) \
    case ZYDIS_MNEMONIC_##m: \
        if (wide) \
            CVT(insn, r64); \
        else \
            CVT(insn, r32); \
        break;
    switch (in->mnemonic) {
    C(CVTSS2SI, "cvtss2si") C(CVTTSS2SI, "cvttss2si") C(CVTSD2SI, "cvtsd2si") C(CVTTSD2SI, "cvttsd2si")
    default:
        iem_raise_ud(cpu);
    }
#undef C
#undef CVT
    iem_simd_mx_commit(cpu, mx);
    iem_gpr_write(cpu, in->op[0].reg, wide ? 8 : 4, wide ? r64 : r32);
    return IEM_NEXT;
}

/* ---- Conversions with MMX registers --------------------------------------------------------- */

/*
 * CVTPI2PS/CVTPI2PD xmm, mm/m64 and CVT(T)PS2PI/CVT(T)PD2PI mm, xmm/m: computed with the
 * packed-doubleword forms of the same conversions (CVTDQ2PS, CVTDQ2PD, CVT(T)PS2DQ,
 * CVT(T)PD2DQ), which round and flag identically per element; the unused elements are zero and
 * raise nothing.  An MMX register operand makes the x87->MMX transition and first delivers a
 * pending x87 exception; CVTPI2PS/CVTPI2PD with a memory source do neither (SDM vol. 2).
 */
int iem_simd_cvt_mmx(struct iem_cpu *cpu, const struct iem_insn *in)
{
    union iem_xmm d, s, r;
    unsigned mn = in->mnemonic;
    bool to_mmx = in->op[0].kind == IEM_OPK_MMX;
    uint32_t flags;
    unsigned run;

    iem_simd_enter(cpu, in);
    if (to_mmx) {
        if (in->op[1].kind == IEM_OPK_MMX)
            iem_raise_ud(cpu);
        iem_simd_mmx_pending(cpu);
        iem_simd_src(cpu, in, 1, &s, true);
        if (mn == ZYDIS_MNEMONIC_CVTPS2PI || mn == ZYDIS_MNEMONIC_CVTTPS2PI)
            s.q[1] = 0;
    } else {
        if (in->op[0].kind != IEM_OPK_XMM)
            iem_raise_ud(cpu);
        if (in->op[1].kind == IEM_OPK_MMX) {
            iem_simd_mmx_pending(cpu);
            s.q[0] = iem_mmx_get(cpu, in->op[1].reg);
        } else {
            if (in->op[1].kind != IEM_OPK_MEM)
                iem_raise_ud(cpu);
            s.q[0] = iem_mem_read64(cpu, in->mem.seg, iem_ea(cpu, in));
        }
        s.q[1] = 0;
    }
    switch (mn) {
    case ZYDIS_MNEMONIC_CVTPI2PS: run = ZYDIS_MNEMONIC_CVTDQ2PS; break;
    case ZYDIS_MNEMONIC_CVTPI2PD: run = ZYDIS_MNEMONIC_CVTDQ2PD; break;
    case ZYDIS_MNEMONIC_CVTPS2PI: run = ZYDIS_MNEMONIC_CVTPS2DQ; break;
    case ZYDIS_MNEMONIC_CVTTPS2PI: run = ZYDIS_MNEMONIC_CVTTPS2DQ; break;
    case ZYDIS_MNEMONIC_CVTPD2PI: run = ZYDIS_MNEMONIC_CVTPD2DQ; break;
    case ZYDIS_MNEMONIC_CVTTPD2PI: run = ZYDIS_MNEMONIC_CVTTPD2DQ; break;
    default: iem_raise_ud(cpu);
    }
    r.q[0] = 0;
    r.q[1] = 0;
    flags = simd_fp_run(run, &r, &s, iem_simd_mx_host(cpu));
    iem_simd_mx_commit(cpu, flags);
    if (to_mmx) {
        iem_mmx_transition(cpu);
        iem_mmx_put(cpu, in->op[0].reg, r.q[0]);
        return IEM_NEXT;
    }
    if (in->op[1].kind == IEM_OPK_MMX)
        iem_mmx_transition(cpu);
    if (mn == ZYDIS_MNEMONIC_CVTPI2PS) {
        iem_simd_xmm_get(cpu, in->op[0].reg, &d);
        d.q[0] = r.q[0];
    } else {
        d = r;
    }
    iem_simd_xmm_put(cpu, in->op[0].reg, &d);
    return IEM_NEXT;
}

/* ---- ROUNDPS/ROUNDSS/ROUNDPD/ROUNDSD (imm8[3:0]: rounding mode, MXCSR.RC select, precision
 * suppression; imm8[7:4] reserved) -------------------------------------------------------------- */

static uint32_t simd_round_run(unsigned mn, unsigned imm, union iem_xmm *d, const union iem_xmm *s, uint32_t mx)
{
    __m128i a = d->v, b = s->v;
    uint32_t sv;

#define P(insn, n) case n: IEM_SIMD_HOSTI(insn, n); break;
#define P16(insn) P(insn, 0) P(insn, 1) P(insn, 2) P(insn, 3) P(insn, 4) P(insn, 5) P(insn, 6) P(insn, 7) \
                  P(insn, 8) P(insn, 9) P(insn, 10) P(insn, 11) P(insn, 12) P(insn, 13) P(insn, 14) P(insn, 15)
#define C(m, insn) case ZYDIS_MNEMONIC_##m: switch (imm & 15) { P16(insn) } break;
    switch (mn) {
    C(ROUNDPS, "roundps") C(ROUNDSS, "roundss") C(ROUNDPD, "roundpd") C(ROUNDSD, "roundsd")
    default:
        return UINT32_MAX;
    }
#undef C
#undef P16
#undef P
    d->v = a;
    return mx & IEM_MXCSR_FLAGS;
}

int iem_simd_fp_round(struct iem_cpu *cpu, const struct iem_insn *in)
{
    union iem_xmm d, s;
    uint32_t flags;

    iem_simd_enter(cpu, in);
    if (in->op[0].kind != IEM_OPK_XMM)
        iem_raise_ud(cpu);
    iem_simd_src(cpu, in, 1, &s, true);
    iem_simd_xmm_get(cpu, in->op[0].reg, &d);
    flags = simd_round_run(in->mnemonic, (unsigned)in->imm, &d, &s, iem_simd_mx_host(cpu));
    if (flags == UINT32_MAX)
        iem_raise_ud(cpu);
    iem_simd_mx_commit(cpu, flags);
    iem_simd_xmm_put(cpu, in->op[0].reg, &d);
    return IEM_NEXT;
}

/* ---- DPPS/DPPD: the immediate selects the products and the written elements ------------------ */

static uint32_t simd_dpps_run(unsigned imm, union iem_xmm *d, const union iem_xmm *s, uint32_t mx)
{
    __m128i a = d->v, b = s->v;
    uint32_t sv;

#define P(n) case n: IEM_SIMD_HOSTI("dpps", n); break;
    switch (imm & 0xff) {
    IEM_SIMD_REP256(P)
    }
#undef P
    d->v = a;
    return mx & IEM_MXCSR_FLAGS;
}

static uint32_t simd_dppd_run(unsigned imm, union iem_xmm *d, const union iem_xmm *s, uint32_t mx)
{
    __m128i a = d->v, b = s->v;
    uint32_t sv;

#define P(n) case n: IEM_SIMD_HOSTI("dppd", n); break;
    switch (imm & 0xff) {
    IEM_SIMD_REP256(P)
    }
#undef P
    d->v = a;
    return mx & IEM_MXCSR_FLAGS;
}

int iem_simd_fp_dp(struct iem_cpu *cpu, const struct iem_insn *in)
{
    union iem_xmm d, s;
    unsigned imm = (unsigned)in->imm & 0xff;
    uint32_t flags;

    iem_simd_enter(cpu, in);
    if (in->op[0].kind != IEM_OPK_XMM)
        iem_raise_ud(cpu);
    iem_simd_src(cpu, in, 1, &s, true);
    iem_simd_xmm_get(cpu, in->op[0].reg, &d);
    if (in->mnemonic == ZYDIS_MNEMONIC_DPPD) {
        flags = simd_dppd_run(imm, &d, &s, iem_simd_mx_host(cpu));
        flags |= iem_simd_tiny(cpu, &d, 8, imm & 3);
    } else {
        flags = simd_dpps_run(imm, &d, &s, iem_simd_mx_host(cpu));
        flags |= iem_simd_tiny(cpu, &d, 4, imm & 15);
    }
    iem_simd_mx_commit(cpu, flags);
    iem_simd_xmm_put(cpu, in->op[0].reg, &d);
    return IEM_NEXT;
}
