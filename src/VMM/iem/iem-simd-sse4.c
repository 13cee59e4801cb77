/* iem-simd-sse4.c - SSE4.1/SSE4.2 specials: variable blends, PTEST, MPSADBW, the PCMPxSTRx string compares and CRC32. */
#include <Zydis/Zydis.h>

#include "iem-simd.h"

/* BLENDVPS/BLENDVPD/PBLENDVB xmm1, xmm2/m128, <XMM0>: the sign bit of each element of the
 * implicit XMM0 picks the source element (SDM vol. 2, BLENDVPS). */
int iem_simd_blendv(struct iem_cpu *cpu, const struct iem_insn *in)
{
    union iem_xmm d, s, m;

    iem_simd_enter(cpu, in);
    if (in->op[0].kind != IEM_OPK_XMM)
        iem_raise_ud(cpu);
    iem_simd_src(cpu, in, 1, &s, true);
    iem_simd_xmm_get(cpu, in->op[0].reg, &d);
    iem_simd_xmm_get(cpu, 0, &m);
    switch (in->mnemonic) {
    case ZYDIS_MNEMONIC_BLENDVPS:
        for (unsigned i = 0; i < 4; i++) {
            if (m.d[i] >> 31)
                d.d[i] = s.d[i];
        }
        break;
    case ZYDIS_MNEMONIC_BLENDVPD:
        for (unsigned i = 0; i < 2; i++) {
            if (m.q[i] >> 63)
                d.q[i] = s.q[i];
        }
        break;
    default:
        for (unsigned i = 0; i < 16; i++) {
            if (m.b[i] >> 7)
                d.b[i] = s.b[i];
        }
        break;
    }
    iem_simd_xmm_put(cpu, in->op[0].reg, &d);
    return IEM_NEXT;
}

/* PTEST xmm1, xmm2/m128: ZF = (src AND dst) == 0, CF = (src AND NOT dst) == 0; AF, OF, PF, SF
 * cleared (SDM vol. 2, PTEST). */
int iem_simd_ptest(struct iem_cpu *cpu, const struct iem_insn *in)
{
    union iem_xmm d, s;
    uint64_t fl = 0;

    iem_simd_enter(cpu, in);
    if (in->op[0].kind != IEM_OPK_XMM)
        iem_raise_ud(cpu);
    iem_simd_src(cpu, in, 1, &s, true);
    iem_simd_xmm_get(cpu, in->op[0].reg, &d);
    if (!((d.q[0] & s.q[0]) | (d.q[1] & s.q[1])))
        fl |= IEM_F_ZF;
    if (!((~d.q[0] & s.q[0]) | (~d.q[1] & s.q[1])))
        fl |= IEM_F_CF;
    cpu->s->rflags = (cpu->s->rflags & ~(uint64_t)IEM_F_ARITH) | fl;
    return IEM_NEXT;
}

/* MPSADBW xmm1, xmm2/m128, imm8: eight sums of absolute differences between a sliding 4-byte
 * window of the destination (starting at byte imm8[2]*4) and the source dword imm8[1:0]
 * (SDM vol. 2, MPSADBW). */
int iem_simd_mpsadbw(struct iem_cpu *cpu, const struct iem_insn *in)
{
    union iem_xmm d, s, r;
    unsigned imm = (unsigned)in->imm;
    unsigned aoff = ((imm >> 2) & 1) * 4, boff = (imm & 3) * 4;

    iem_simd_enter(cpu, in);
    if (in->op[0].kind != IEM_OPK_XMM)
        iem_raise_ud(cpu);
    iem_simd_src(cpu, in, 1, &s, true);
    iem_simd_xmm_get(cpu, in->op[0].reg, &d);
    for (unsigned i = 0; i < 8; i++) {
        unsigned sum = 0;

        for (unsigned j = 0; j < 4; j++) {
            int diff = (int)d.b[aoff + i + j] - (int)s.b[boff + j];
            sum += (unsigned)(diff < 0 ? -diff : diff);
        }
        r.w[i] = (uint16_t)sum;
    }
    iem_simd_xmm_put(cpu, in->op[0].reg, &r);
    return IEM_NEXT;
}

/* ---- PCMPESTRI/PCMPESTRM/PCMPISTRI/PCMPISTRM --------------------------------------------------- */

/* What the host's string compare produced: the index (xSTRI) or mask (xSTRM) and the flags. */
struct simd_pcmp_out {
    uint32_t index;
    __m128i mask;
    bool cf, zf, sf, of;
};

#define SIMD_PCMP_FLAGS "=@ccc"(o->cf), "=@ccz"(o->zf), "=@ccs"(o->sf), "=@cco"(o->of)

static void simd_pcmpestri_run(unsigned imm, __m128i a, __m128i b, uint32_t la, uint32_t lb, struct simd_pcmp_out *o)
{
#define P(n) case n: __asm__("pcmpestri %[im], %[b], %[a]" : "=c"(o->index), SIMD_PCMP_FLAGS \
                             : [a] "x"(a), [b] "x"(b), "a"(la), "d"(lb), [im] "i"(n)); break;
    switch (imm & 0xff) {
    IEM_SIMD_REP256(P)
    }
#undef P
}

static void simd_pcmpestrm_run(unsigned imm, __m128i a, __m128i b, uint32_t la, uint32_t lb, struct simd_pcmp_out *o)
{
#define P(n) case n: __asm__("pcmpestrm %[im], %[b], %[a]" : "=Yz"(o->mask), SIMD_PCMP_FLAGS \
                             : [a] "x"(a), [b] "x"(b), "a"(la), "d"(lb), [im] "i"(n)); break;
    switch (imm & 0xff) {
    IEM_SIMD_REP256(P)
    }
#undef P
}

static void simd_pcmpistri_run(unsigned imm, __m128i a, __m128i b, struct simd_pcmp_out *o)
{
#define P(n) case n: __asm__("pcmpistri %[im], %[b], %[a]" : "=c"(o->index), SIMD_PCMP_FLAGS \
                             : [a] "x"(a), [b] "x"(b), [im] "i"(n)); break;
    switch (imm & 0xff) {
    IEM_SIMD_REP256(P)
    }
#undef P
}

static void simd_pcmpistrm_run(unsigned imm, __m128i a, __m128i b, struct simd_pcmp_out *o)
{
#define P(n) case n: __asm__("pcmpistrm %[im], %[b], %[a]" : "=Yz"(o->mask), SIMD_PCMP_FLAGS \
                             : [a] "x"(a), [b] "x"(b), [im] "i"(n)); break;
    switch (imm & 0xff) {
    IEM_SIMD_REP256(P)
    }
#undef P
}

/* The explicit lengths in rAX/rDX: 64-bit with REX.W, else the signed 32-bit value; the
 * absolute value saturates at the element count (SDM vol. 2, 4.1.2 and PCMPESTRI). */
static uint32_t simd_pcmp_len(uint64_t v, bool wide, unsigned n)
{
    int64_t x = wide ? (int64_t)v : (int64_t)(int32_t)(uint32_t)v;
    uint64_t m = x < 0 ? (uint64_t)0 - (uint64_t)x : (uint64_t)x;

    return m > n ? n : (uint32_t)m;
}

/* The source operand needs no alignment (SDM vol. 2A, 2.5: the Type 4 exception conditions
 * exempt PCMPxSTRx from the 16-byte rule); the index goes to ECX (zero-extended), the mask to XMM0; CF, ZF, SF, OF are
 * defined by the compare, AF and PF cleared. */
int iem_simd_pcmpstr(struct iem_cpu *cpu, const struct iem_insn *in)
{
    union iem_xmm d, s;
    struct simd_pcmp_out o = { 0 };
    unsigned imm = (unsigned)in->imm & 0xff;
    unsigned n = (imm & 1) ? 8 : 16;
    bool wide = in->opsize == 8;
    uint32_t la, lb;
    uint64_t fl = 0;

    iem_simd_enter(cpu, in);
    if (in->op[0].kind != IEM_OPK_XMM)
        iem_raise_ud(cpu);
    iem_simd_src(cpu, in, 1, &s, false);
    iem_simd_xmm_get(cpu, in->op[0].reg, &d);
    la = simd_pcmp_len(cpu->s->gpr[CPU_RAX], wide, n);
    lb = simd_pcmp_len(cpu->s->gpr[CPU_RDX], wide, n);
    switch (in->mnemonic) {
    case ZYDIS_MNEMONIC_PCMPESTRI:
        simd_pcmpestri_run(imm, d.v, s.v, la, lb, &o);
        break;
    case ZYDIS_MNEMONIC_PCMPESTRM:
        simd_pcmpestrm_run(imm, d.v, s.v, la, lb, &o);
        break;
    case ZYDIS_MNEMONIC_PCMPISTRI:
        simd_pcmpistri_run(imm, d.v, s.v, &o);
        break;
    case ZYDIS_MNEMONIC_PCMPISTRM:
        simd_pcmpistrm_run(imm, d.v, s.v, &o);
        break;
    default:
        iem_raise_ud(cpu);
    }
    if (in->mnemonic == ZYDIS_MNEMONIC_PCMPESTRI || in->mnemonic == ZYDIS_MNEMONIC_PCMPISTRI) {
        iem_gpr_write(cpu, CPU_RCX, 4, o.index);
    } else {
        union iem_xmm m;

        m.v = o.mask;
        iem_simd_xmm_put(cpu, 0, &m);
    }
    fl = (o.cf ? IEM_F_CF : 0) | (o.zf ? IEM_F_ZF : 0) | (o.sf ? IEM_F_SF : 0) | (o.of ? IEM_F_OF : 0);
    cpu->s->rflags = (cpu->s->rflags & ~(uint64_t)IEM_F_ARITH) | fl;
    return IEM_NEXT;
}

/* ---- CRC32 r32/r64, r/m8/16/32/64 (CRC-32C, SDM vol. 2 CRC32) ---------------------------------- */

/* A general-purpose instruction: none of the SSE state checks apply, only LOCK -> #UD.  The
 * 64-bit destination form uses the low 32 bits of the destination and zeroes the upper half. */
int iem_simd_crc32(struct iem_cpu *cpu, const struct iem_insn *in)
{
    uint64_t src;
    uint32_t crc;

    if ((in->prefixes & IEM_PFX_LOCK) || in->op[0].kind != IEM_OPK_GPR)
        iem_raise_ud(cpu);
    src = iem_op_read(cpu, in, 1);
    crc = (uint32_t)iem_gpr_read(cpu, in->op[0].reg, 4);
    switch (in->op[1].size) {
    case 1:
        __asm__("crc32b %b[s], %[c]" : [c] "+r"(crc) : [s] "r"((uint32_t)src));
        break;
    case 2:
        __asm__("crc32w %w[s], %[c]" : [c] "+r"(crc) : [s] "r"((uint32_t)src));
        break;
    case 4:
        __asm__("crc32l %k[s], %[c]" : [c] "+r"(crc) : [s] "r"((uint32_t)src));
        break;
    case 8: {
        uint64_t c64 = crc;

        __asm__("crc32q %q[s], %q[c]" : [c] "+r"(c64) : [s] "r"(src));
        crc = (uint32_t)c64;
        break;
    }
    default:
        iem_raise_ud(cpu);
    }
    iem_gpr_write(cpu, in->op[0].reg, in->op[0].size >= 8 ? 8 : 4, crc);
    return IEM_NEXT;
}
