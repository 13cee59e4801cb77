/* iem-simd-move.c - SSE..SSE4.1 data movement: 128-bit, scalar and half moves, MOVD/MOVQ, extracts, inserts, masks. */
#include <Zydis/Zydis.h>

#include "iem-fpu.h"
#include "iem-mmx.h"
#include "iem-simd.h"

/* MOVAPS/MOVAPD/MOVDQA/MOVNT* require 16-byte alignment; MOVUPS/MOVUPD/MOVDQU/LDDQU do not
 * (SDM vol. 2, the instructions' pages). */
int iem_simd_mov128(struct iem_cpu *cpu, const struct iem_insn *in)
{
    bool aligned;
    union iem_xmm v;

    switch (in->mnemonic) {
    case ZYDIS_MNEMONIC_MOVUPS:
    case ZYDIS_MNEMONIC_MOVUPD:
    case ZYDIS_MNEMONIC_MOVDQU:
    case ZYDIS_MNEMONIC_LDDQU:
        aligned = false;
        break;
    default:
        aligned = true;
        break;
    }
    iem_simd_enter(cpu, in);
    if (in->op[0].kind == IEM_OPK_XMM) {
        /* MOVNTDQA and LDDQU only load from memory. */
        if (in->op[1].kind != IEM_OPK_MEM &&
            (in->mnemonic == ZYDIS_MNEMONIC_MOVNTDQA || in->mnemonic == ZYDIS_MNEMONIC_LDDQU))
            iem_raise_ud(cpu);
        /* The non-temporal stores only store to memory. */
        if (in->mnemonic == ZYDIS_MNEMONIC_MOVNTPS || in->mnemonic == ZYDIS_MNEMONIC_MOVNTPD ||
            in->mnemonic == ZYDIS_MNEMONIC_MOVNTDQ)
            iem_raise_ud(cpu);
        iem_simd_src(cpu, in, 1, &v, aligned);
        iem_simd_xmm_put(cpu, in->op[0].reg, &v);
    } else {
        if (in->op[1].kind != IEM_OPK_XMM)
            iem_raise_ud(cpu);
        iem_simd_xmm_get(cpu, in->op[1].reg, &v);
        iem_simd_store(cpu, in, 0, &v, aligned);
    }
    return IEM_NEXT;
}

/* MOVSS / MOVSD: register to register merges the low element; a load zeroes the rest; a store
 * writes the low element. */
static int simd_mov_scalar(struct iem_cpu *cpu, const struct iem_insn *in, unsigned size)
{
    union iem_xmm d, s;

    iem_simd_enter(cpu, in);
    if (in->op[0].kind == IEM_OPK_XMM) {
        if (in->op[1].kind == IEM_OPK_XMM) {
            iem_simd_xmm_get(cpu, in->op[0].reg, &d);
            iem_simd_xmm_get(cpu, in->op[1].reg, &s);
            memcpy(d.b, s.b, size);
        } else {
            if (in->op[1].kind != IEM_OPK_MEM || in->op[1].size != size)
                iem_raise_ud(cpu);
            iem_simd_src(cpu, in, 1, &d, false);
        }
        iem_simd_xmm_put(cpu, in->op[0].reg, &d);
    } else {
        if (in->op[0].kind != IEM_OPK_MEM || in->op[0].size != size || in->op[1].kind != IEM_OPK_XMM)
            iem_raise_ud(cpu);
        iem_simd_xmm_get(cpu, in->op[1].reg, &s);
        iem_simd_store(cpu, in, 0, &s, false);
    }
    return IEM_NEXT;
}

int iem_simd_movss(struct iem_cpu *cpu, const struct iem_insn *in)
{
    return simd_mov_scalar(cpu, in, 4);
}

int iem_simd_movsd(struct iem_cpu *cpu, const struct iem_insn *in)
{
    return simd_mov_scalar(cpu, in, 8);
}

/* MOVLPS/MOVLPD/MOVHPS/MOVHPD (64-bit loads and stores of one half) and the register forms
 * MOVHLPS/MOVLHPS. */
int iem_simd_movhalf(struct iem_cpu *cpu, const struct iem_insn *in)
{
    unsigned mn = in->mnemonic;
    unsigned dst_half = mn == ZYDIS_MNEMONIC_MOVHPS || mn == ZYDIS_MNEMONIC_MOVHPD || mn == ZYDIS_MNEMONIC_MOVLHPS;
    unsigned src_half = mn == ZYDIS_MNEMONIC_MOVHPS || mn == ZYDIS_MNEMONIC_MOVHPD || mn == ZYDIS_MNEMONIC_MOVHLPS;
    union iem_xmm d, s;

    iem_simd_enter(cpu, in);
    if (in->op[0].kind == IEM_OPK_XMM) {
        uint64_t v;

        if (in->op[1].kind == IEM_OPK_XMM) {
            iem_simd_xmm_get(cpu, in->op[1].reg, &s);
            v = s.q[src_half];
        } else {
            if (in->op[1].kind != IEM_OPK_MEM)
                iem_raise_ud(cpu);
            v = iem_mem_read64(cpu, in->mem.seg, iem_ea(cpu, in));
        }
        iem_simd_xmm_get(cpu, in->op[0].reg, &d);
        d.q[dst_half] = v;
        iem_simd_xmm_put(cpu, in->op[0].reg, &d);
    } else {
        if (in->op[0].kind != IEM_OPK_MEM || in->op[1].kind != IEM_OPK_XMM)
            iem_raise_ud(cpu);
        iem_simd_xmm_get(cpu, in->op[1].reg, &s);
        iem_mem_write64(cpu, in->mem.seg, iem_ea(cpu, in), s.q[src_half]);
    }
    return IEM_NEXT;
}

/* MOVD/MOVQ with XMM operands: loads zero-extend into the whole register (SDM vol. 2, MOVD/MOVQ
 * and MOVQ); the MMX forms belong to the MMX family. */
int iem_simd_movdq(struct iem_cpu *cpu, const struct iem_insn *in)
{
    union iem_xmm d, s;

    if (iem_simd_has_mmx(in))
        return iem_mmx_exec(cpu, in);
    iem_simd_enter(cpu, in);
    if (in->op[0].kind == IEM_OPK_XMM) {
        d.q[1] = 0;
        if (in->op[1].kind == IEM_OPK_XMM) {
            iem_simd_xmm_get(cpu, in->op[1].reg, &s);
            d.q[0] = s.q[0];
        } else {
            if (in->op[1].kind != IEM_OPK_GPR && in->op[1].kind != IEM_OPK_MEM)
                iem_raise_ud(cpu);
            d.q[0] = iem_op_read(cpu, in, 1);
        }
        iem_simd_xmm_put(cpu, in->op[0].reg, &d);
    } else {
        if (in->op[1].kind != IEM_OPK_XMM)
            iem_raise_ud(cpu);
        iem_simd_xmm_get(cpu, in->op[1].reg, &s);
        iem_op_write(cpu, in, 0, s.q[0]);
    }
    return IEM_NEXT;
}

/* MOVQ2DQ xmm, mm and MOVDQ2Q mm, xmm: both make the x87->MMX transition (SDM vol. 2). */
int iem_simd_mov_mmx(struct iem_cpu *cpu, const struct iem_insn *in)
{
    union iem_xmm v;

    iem_simd_enter(cpu, in);
    iem_simd_mmx_pending(cpu);
    if (in->mnemonic == ZYDIS_MNEMONIC_MOVQ2DQ) {
        if (in->op[0].kind != IEM_OPK_XMM || in->op[1].kind != IEM_OPK_MMX)
            iem_raise_ud(cpu);
        v.q[0] = iem_mmx_get(cpu, in->op[1].reg);
        v.q[1] = 0;
        iem_mmx_transition(cpu);
        iem_simd_xmm_put(cpu, in->op[0].reg, &v);
    } else {
        if (in->op[0].kind != IEM_OPK_MMX || in->op[1].kind != IEM_OPK_XMM)
            iem_raise_ud(cpu);
        iem_simd_xmm_get(cpu, in->op[1].reg, &v);
        iem_mmx_transition(cpu);
        iem_mmx_put(cpu, in->op[0].reg, v.q[0]);
    }
    return IEM_NEXT;
}

/* MOVNTI m32/m64, r: a general-purpose store, so none of the SSE state checks apply (SDM vol. 2,
 * MOVNTI exceptions: only LOCK -> #UD). */
int iem_simd_movnti(struct iem_cpu *cpu, const struct iem_insn *in)
{
    if ((in->prefixes & IEM_PFX_LOCK) || in->op[0].kind != IEM_OPK_MEM || in->op[1].kind != IEM_OPK_GPR)
        iem_raise_ud(cpu);
    iem_op_write(cpu, in, 0, iem_op_read(cpu, in, 1));
    return IEM_NEXT;
}

/* MASKMOVDQU xmm1, xmm2: bytes of xmm1 whose mask byte in xmm2 has bit 7 set are stored at
 * DS:rDI (segment override allowed).  Only the span of selected bytes is checked, before any
 * byte is written, so a fault leaves memory untouched. */
int iem_simd_maskmovdqu(struct iem_cpu *cpu, const struct iem_insn *in)
{
    union iem_xmm d, m;
    unsigned seg, first = 16, last = 0;
    uint64_t base, amask;

    iem_simd_enter(cpu, in);
    if (in->op[0].kind != IEM_OPK_XMM || in->op[1].kind != IEM_OPK_XMM)
        iem_raise_ud(cpu);
    iem_simd_xmm_get(cpu, in->op[0].reg, &d);
    iem_simd_xmm_get(cpu, in->op[1].reg, &m);
    for (unsigned i = 0; i < 16; i++) {
        if (m.b[i] & 0x80) {
            if (first == 16)
                first = i;
            last = i;
        }
    }
    if (first == 16)
        return IEM_NEXT;
    /* The decoder fills insn->mem from the implicit DS:rDI operand; fall back to DS. */
    seg = (in->mem.base == CPU_RDI && in->mem.seg < CPU_LDTR) ? in->mem.seg : CPU_DS;
    amask = in->addrsize >= 8 ? ~(uint64_t)0 : ((uint64_t)1 << (in->addrsize * 8)) - 1;
    base = iem_gpr_read(cpu, CPU_RDI, in->addrsize);
    if (((base + last) & amask) >= ((base + first) & amask))
        iem_mem_probe_write(cpu, seg, (base + first) & amask, last - first + 1);
    for (unsigned i = first; i <= last; i++) {
        if (m.b[i] & 0x80)
            iem_mem_write8(cpu, seg, (base + i) & amask, d.b[i]);
    }
    return IEM_NEXT;
}

/* MOVMSKPS/MOVMSKPD/PMOVMSKB: sign bits into a general register, zero-extended. */
int iem_simd_movmsk(struct iem_cpu *cpu, const struct iem_insn *in)
{
    union iem_xmm s;
    uint64_t mask = 0;

    if (iem_simd_has_mmx(in))
        return iem_mmx_exec(cpu, in);
    iem_simd_enter(cpu, in);
    if (in->op[0].kind != IEM_OPK_GPR || in->op[1].kind != IEM_OPK_XMM)
        iem_raise_ud(cpu);
    iem_simd_xmm_get(cpu, in->op[1].reg, &s);
    switch (in->mnemonic) {
    case ZYDIS_MNEMONIC_MOVMSKPS:
        for (unsigned i = 0; i < 4; i++)
            mask |= (uint64_t)(s.d[i] >> 31) << i;
        break;
    case ZYDIS_MNEMONIC_MOVMSKPD:
        for (unsigned i = 0; i < 2; i++)
            mask |= (s.q[i] >> 63) << i;
        break;
    default:
        for (unsigned i = 0; i < 16; i++)
            mask |= (uint64_t)(s.b[i] >> 7) << i;
        break;
    }
    iem_gpr_write(cpu, in->op[0].reg, in->op[0].size >= 8 ? 8 : 4, mask);
    return IEM_NEXT;
}

/* PEXTRB/PEXTRW/PEXTRD/PEXTRQ/EXTRACTPS r/m, xmm, imm8: the immediate's low bits select the
 * element; a register destination is zero-extended (SDM vol. 2, PEXTRB/PEXTRD/PEXTRQ). */
int iem_simd_extract(struct iem_cpu *cpu, const struct iem_insn *in)
{
    union iem_xmm s;
    unsigned imm = (unsigned)in->imm;
    uint64_t v;

    if (iem_simd_has_mmx(in))
        return iem_mmx_exec(cpu, in);
    iem_simd_enter(cpu, in);
    if (in->op[1].kind != IEM_OPK_XMM || (in->op[0].kind != IEM_OPK_GPR && in->op[0].kind != IEM_OPK_MEM))
        iem_raise_ud(cpu);
    iem_simd_xmm_get(cpu, in->op[1].reg, &s);
    switch (in->mnemonic) {
    case ZYDIS_MNEMONIC_PEXTRB:
        v = s.b[imm & 15];
        break;
    case ZYDIS_MNEMONIC_PEXTRW:
        v = s.w[imm & 7];
        break;
    case ZYDIS_MNEMONIC_PEXTRQ:
        v = s.q[imm & 1];
        break;
    default: /* PEXTRD, EXTRACTPS */
        v = s.d[imm & 3];
        break;
    }
    if (in->op[0].kind == IEM_OPK_GPR)
        iem_gpr_write(cpu, in->op[0].reg, in->op[0].size >= 8 ? 8 : 4, v);
    else
        iem_op_write(cpu, in, 0, v);
    return IEM_NEXT;
}

/* PINSRB/PINSRW/PINSRD/PINSRQ xmm, r/m, imm8 and INSERTPS xmm, xmm/m32, imm8 (SDM vol. 2:
 * INSERTPS takes source element imm[7:6] of a register, writes it to element imm[5:4], then
 * zeroes the elements set in imm[3:0]). */
int iem_simd_insert(struct iem_cpu *cpu, const struct iem_insn *in)
{
    union iem_xmm d, s;
    unsigned imm = (unsigned)in->imm;
    uint64_t v;

    if (iem_simd_has_mmx(in))
        return iem_mmx_exec(cpu, in);
    iem_simd_enter(cpu, in);
    if (in->op[0].kind != IEM_OPK_XMM)
        iem_raise_ud(cpu);
    if (in->mnemonic == ZYDIS_MNEMONIC_INSERTPS) {
        if (in->op[1].kind == IEM_OPK_XMM) {
            iem_simd_xmm_get(cpu, in->op[1].reg, &s);
            v = s.d[(imm >> 6) & 3];
        } else {
            iem_simd_src(cpu, in, 1, &s, false);
            v = s.d[0];
        }
        iem_simd_xmm_get(cpu, in->op[0].reg, &d);
        d.d[(imm >> 4) & 3] = (uint32_t)v;
        for (unsigned i = 0; i < 4; i++) {
            if (imm & (1u << i))
                d.d[i] = 0;
        }
        iem_simd_xmm_put(cpu, in->op[0].reg, &d);
        return IEM_NEXT;
    }
    if (in->op[1].kind != IEM_OPK_GPR && in->op[1].kind != IEM_OPK_MEM)
        iem_raise_ud(cpu);
    v = iem_op_read(cpu, in, 1);
    iem_simd_xmm_get(cpu, in->op[0].reg, &d);
    switch (in->mnemonic) {
    case ZYDIS_MNEMONIC_PINSRB:
        d.b[imm & 15] = (uint8_t)v;
        break;
    case ZYDIS_MNEMONIC_PINSRW:
        d.w[imm & 7] = (uint16_t)v;
        break;
    case ZYDIS_MNEMONIC_PINSRQ:
        d.q[imm & 1] = v;
        break;
    default: /* PINSRD */
        d.d[imm & 3] = (uint32_t)v;
        break;
    }
    iem_simd_xmm_put(cpu, in->op[0].reg, &d);
    return IEM_NEXT;
}
