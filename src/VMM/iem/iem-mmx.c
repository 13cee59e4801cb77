/* iem-mmx.c - MMX: the register file aliased on the x87 registers, EMMS, and the MMX-register forms of the integer SIMD instructions. */
#include <string.h>

#include <Zydis/Zydis.h>

#include "iem-fpu.h"
#include "iem-mmx.h"

/*
 * The operations are plain C on 64-bit lanes: they are integer, exact and simple, and C keeps
 * the host's MMX/x87 state out of the way.  Semantics follow the instruction pages of SDM
 * vol. 2 (saturation, shift counts above the lane width, PMADDWD's wrap of 8000h*8000h*2,
 * PSHUFB's bit 7, PALIGNR's 128-bit concatenation...).
 */

union mmx {
    uint64_t q;
    uint32_t d[2];
    int32_t sd[2];
    uint16_t w[4];
    int16_t sw[4];
    uint8_t b[8];
    int8_t sb[8];
};

/* ---- Register file ------------------------------------------------------------------- */

void iem_mmx_enter(struct iem_cpu *cpu, const struct iem_insn *in)
{
    if (in->prefixes & IEM_PFX_LOCK)
        iem_raise_ud(cpu);
    if (cpu->s->cr0 & IEM_CR0_EM)
        iem_raise_ud(cpu);
    if (cpu->s->cr0 & IEM_CR0_TS)
        iem_raise(cpu, IEM_X_NM);
    if (cpu->s->fpu.fsw & IEM_FSW_ES)
        iem_fpu_pending(cpu);
}

void iem_mmx_transition(struct iem_cpu *cpu)
{
    struct cpu_fpu *f = &cpu->s->fpu;
    unsigned top = iem_fpu_top(f);
    if (top) {
        /* st[] is in stack order: with TOP = 0, ST(i) becomes physical register i. */
        uint8_t phys[8][16];
        for (unsigned p = 0; p < 8; p++)
            memcpy(phys[p], f->st[(p - top) & 7], 16);
        memcpy(f->st, phys, sizeof(phys));
        f->fsw &= (uint16_t)~IEM_FSW_TOP;
    }
    f->ftw = 0xff;
}

uint64_t iem_mmx_get(const struct iem_cpu *cpu, unsigned reg)
{
    const struct cpu_fpu *f = &cpu->s->fpu;
    uint64_t v;
    memcpy(&v, f->st[((reg & 7) - iem_fpu_top(f)) & 7], 8);
    return v;
}

void iem_mmx_put(struct iem_cpu *cpu, unsigned reg, uint64_t value)
{
    struct cpu_fpu *f = &cpu->s->fpu;
    uint8_t *r = f->st[((reg & 7) - iem_fpu_top(f)) & 7];
    memcpy(r, &value, 8);
    r[8] = 0xff;
    r[9] = 0xff;
}

/* ---- Lane arithmetic -------------------------------------------------------------------- */

static int8_t sat_s8(int v)
{
    return (int8_t)(v > 127 ? 127 : v < -128 ? -128 : v);
}

static uint8_t sat_u8(int v)
{
    return (uint8_t)(v > 255 ? 255 : v < 0 ? 0 : v);
}

static int16_t sat_s16(int v)
{
    return (int16_t)(v > 32767 ? 32767 : v < -32768 ? -32768 : v);
}

static uint16_t sat_u16(int v)
{
    return (uint16_t)(v > 65535 ? 65535 : v < 0 ? 0 : v);
}

/* Shift by a 64-bit count: counts of the lane width or more clear the lane (or fill it with
 * the sign for arithmetic shifts), SDM vol. 2B, PSLLW/PSRLW/PSRAW. */
static uint64_t shift_lanes(uint64_t a, uint64_t count, unsigned bits, int kind)
{
    union mmx x = {.q = a}, r = {.q = 0};
    unsigned lanes = 64 / bits;
    for (unsigned i = 0; i < lanes; i++) {
        uint64_t lane_mask = bits == 64 ? ~(uint64_t)0 : (((uint64_t)1 << bits) - 1);
        uint64_t v = (x.q >> (i * bits)) & lane_mask, out;
        if (kind == 0) { /* logical left */
            out = count >= bits ? 0 : (v << count) & lane_mask;
        } else if (kind == 1) { /* logical right */
            out = count >= bits ? 0 : v >> count;
        } else { /* arithmetic right */
            bool neg = (v >> (bits - 1)) & 1;
            unsigned c = count >= bits ? bits - 1 : (unsigned)count;
            out = v >> c;
            if (neg && c)
                out |= lane_mask & ~(lane_mask >> c);
        }
        r.q |= (out & lane_mask) << (i * bits);
    }
    return r.q;
}

/* The two-operand operations; false for a mnemonic that is not one. */
static bool mmx_binary(unsigned mnemonic, uint64_t av, uint64_t bv, unsigned imm, uint64_t *out)
{
    union mmx a = {.q = av}, b = {.q = bv}, r = {.q = 0};
    switch (mnemonic) {
    case ZYDIS_MNEMONIC_PADDB: for (int i = 0; i < 8; i++) r.b[i] = (uint8_t)(a.b[i] + b.b[i]); break;
    case ZYDIS_MNEMONIC_PADDW: for (int i = 0; i < 4; i++) r.w[i] = (uint16_t)(a.w[i] + b.w[i]); break;
    case ZYDIS_MNEMONIC_PADDD: for (int i = 0; i < 2; i++) r.d[i] = a.d[i] + b.d[i]; break;
    case ZYDIS_MNEMONIC_PADDQ: r.q = a.q + b.q; break;
    case ZYDIS_MNEMONIC_PSUBB: for (int i = 0; i < 8; i++) r.b[i] = (uint8_t)(a.b[i] - b.b[i]); break;
    case ZYDIS_MNEMONIC_PSUBW: for (int i = 0; i < 4; i++) r.w[i] = (uint16_t)(a.w[i] - b.w[i]); break;
    case ZYDIS_MNEMONIC_PSUBD: for (int i = 0; i < 2; i++) r.d[i] = a.d[i] - b.d[i]; break;
    case ZYDIS_MNEMONIC_PSUBQ: r.q = a.q - b.q; break;
    case ZYDIS_MNEMONIC_PADDSB: for (int i = 0; i < 8; i++) r.sb[i] = sat_s8(a.sb[i] + b.sb[i]); break;
    case ZYDIS_MNEMONIC_PADDSW: for (int i = 0; i < 4; i++) r.sw[i] = sat_s16(a.sw[i] + b.sw[i]); break;
    case ZYDIS_MNEMONIC_PADDUSB: for (int i = 0; i < 8; i++) r.b[i] = sat_u8(a.b[i] + b.b[i]); break;
    case ZYDIS_MNEMONIC_PADDUSW: for (int i = 0; i < 4; i++) r.w[i] = sat_u16(a.w[i] + b.w[i]); break;
    case ZYDIS_MNEMONIC_PSUBSB: for (int i = 0; i < 8; i++) r.sb[i] = sat_s8(a.sb[i] - b.sb[i]); break;
    case ZYDIS_MNEMONIC_PSUBSW: for (int i = 0; i < 4; i++) r.sw[i] = sat_s16(a.sw[i] - b.sw[i]); break;
    case ZYDIS_MNEMONIC_PSUBUSB: for (int i = 0; i < 8; i++) r.b[i] = sat_u8(a.b[i] - b.b[i]); break;
    case ZYDIS_MNEMONIC_PSUBUSW: for (int i = 0; i < 4; i++) r.w[i] = sat_u16(a.w[i] - b.w[i]); break;
    case ZYDIS_MNEMONIC_PMULLW: for (int i = 0; i < 4; i++) r.w[i] = (uint16_t)(a.sw[i] * b.sw[i]); break;
    case ZYDIS_MNEMONIC_PMULHW: for (int i = 0; i < 4; i++) r.w[i] = (uint16_t)((uint32_t)(a.sw[i] * b.sw[i]) >> 16); break;
    case ZYDIS_MNEMONIC_PMULHUW: for (int i = 0; i < 4; i++) r.w[i] = (uint16_t)(((uint32_t)a.w[i] * b.w[i]) >> 16); break;
    case ZYDIS_MNEMONIC_PMULUDQ: r.q = (uint64_t)a.d[0] * b.d[0]; break;
    case ZYDIS_MNEMONIC_PMULHRSW:
        for (int i = 0; i < 4; i++)
            r.w[i] = (uint16_t)((((int32_t)a.sw[i] * b.sw[i] >> 14) + 1) >> 1);
        break;
    case ZYDIS_MNEMONIC_PMADDWD:
        for (int i = 0; i < 2; i++)
            r.d[i] = (uint32_t)((int32_t)a.sw[2 * i] * b.sw[2 * i]) + (uint32_t)((int32_t)a.sw[2 * i + 1] * b.sw[2 * i + 1]);
        break;
    case ZYDIS_MNEMONIC_PMADDUBSW:
        for (int i = 0; i < 4; i++)
            r.sw[i] = sat_s16(a.b[2 * i] * b.sb[2 * i] + a.b[2 * i + 1] * b.sb[2 * i + 1]);
        break;
    case ZYDIS_MNEMONIC_PCMPEQB: for (int i = 0; i < 8; i++) r.b[i] = a.b[i] == b.b[i] ? 0xff : 0; break;
    case ZYDIS_MNEMONIC_PCMPEQW: for (int i = 0; i < 4; i++) r.w[i] = a.w[i] == b.w[i] ? 0xffff : 0; break;
    case ZYDIS_MNEMONIC_PCMPEQD: for (int i = 0; i < 2; i++) r.d[i] = a.d[i] == b.d[i] ? 0xffffffffu : 0; break;
    case ZYDIS_MNEMONIC_PCMPGTB: for (int i = 0; i < 8; i++) r.b[i] = a.sb[i] > b.sb[i] ? 0xff : 0; break;
    case ZYDIS_MNEMONIC_PCMPGTW: for (int i = 0; i < 4; i++) r.w[i] = a.sw[i] > b.sw[i] ? 0xffff : 0; break;
    case ZYDIS_MNEMONIC_PCMPGTD: for (int i = 0; i < 2; i++) r.d[i] = a.sd[i] > b.sd[i] ? 0xffffffffu : 0; break;
    case ZYDIS_MNEMONIC_PAND: r.q = a.q & b.q; break;
    case ZYDIS_MNEMONIC_PANDN: r.q = ~a.q & b.q; break;
    case ZYDIS_MNEMONIC_POR: r.q = a.q | b.q; break;
    case ZYDIS_MNEMONIC_PXOR: r.q = a.q ^ b.q; break;
    case ZYDIS_MNEMONIC_PACKSSWB:
        for (int i = 0; i < 4; i++) {
            r.sb[i] = sat_s8(a.sw[i]);
            r.sb[i + 4] = sat_s8(b.sw[i]);
        }
        break;
    case ZYDIS_MNEMONIC_PACKUSWB:
        for (int i = 0; i < 4; i++) {
            r.b[i] = sat_u8(a.sw[i]);
            r.b[i + 4] = sat_u8(b.sw[i]);
        }
        break;
    case ZYDIS_MNEMONIC_PACKSSDW:
        for (int i = 0; i < 2; i++) {
            r.sw[i] = (int16_t)(a.sd[i] > 32767 ? 32767 : a.sd[i] < -32768 ? -32768 : a.sd[i]);
            r.sw[i + 2] = (int16_t)(b.sd[i] > 32767 ? 32767 : b.sd[i] < -32768 ? -32768 : b.sd[i]);
        }
        break;
    case ZYDIS_MNEMONIC_PUNPCKLBW: for (int i = 0; i < 4; i++) { r.b[2 * i] = a.b[i]; r.b[2 * i + 1] = b.b[i]; } break;
    case ZYDIS_MNEMONIC_PUNPCKHBW: for (int i = 0; i < 4; i++) { r.b[2 * i] = a.b[i + 4]; r.b[2 * i + 1] = b.b[i + 4]; } break;
    case ZYDIS_MNEMONIC_PUNPCKLWD: for (int i = 0; i < 2; i++) { r.w[2 * i] = a.w[i]; r.w[2 * i + 1] = b.w[i]; } break;
    case ZYDIS_MNEMONIC_PUNPCKHWD: for (int i = 0; i < 2; i++) { r.w[2 * i] = a.w[i + 2]; r.w[2 * i + 1] = b.w[i + 2]; } break;
    case ZYDIS_MNEMONIC_PUNPCKLDQ: r.d[0] = a.d[0]; r.d[1] = b.d[0]; break;
    case ZYDIS_MNEMONIC_PUNPCKHDQ: r.d[0] = a.d[1]; r.d[1] = b.d[1]; break;
    case ZYDIS_MNEMONIC_PAVGB: for (int i = 0; i < 8; i++) r.b[i] = (uint8_t)((a.b[i] + b.b[i] + 1) >> 1); break;
    case ZYDIS_MNEMONIC_PAVGW: for (int i = 0; i < 4; i++) r.w[i] = (uint16_t)((a.w[i] + b.w[i] + 1) >> 1); break;
    case ZYDIS_MNEMONIC_PMINUB: for (int i = 0; i < 8; i++) r.b[i] = a.b[i] < b.b[i] ? a.b[i] : b.b[i]; break;
    case ZYDIS_MNEMONIC_PMAXUB: for (int i = 0; i < 8; i++) r.b[i] = a.b[i] > b.b[i] ? a.b[i] : b.b[i]; break;
    case ZYDIS_MNEMONIC_PMINSW: for (int i = 0; i < 4; i++) r.sw[i] = a.sw[i] < b.sw[i] ? a.sw[i] : b.sw[i]; break;
    case ZYDIS_MNEMONIC_PMAXSW: for (int i = 0; i < 4; i++) r.sw[i] = a.sw[i] > b.sw[i] ? a.sw[i] : b.sw[i]; break;
    case ZYDIS_MNEMONIC_PSADBW: {
        unsigned sum = 0;
        for (int i = 0; i < 8; i++)
            sum += a.b[i] > b.b[i] ? (unsigned)(a.b[i] - b.b[i]) : (unsigned)(b.b[i] - a.b[i]);
        r.q = sum;
        break;
    }
    case ZYDIS_MNEMONIC_PSHUFB:
        for (int i = 0; i < 8; i++)
            r.b[i] = (b.b[i] & 0x80) ? 0 : a.b[b.b[i] & 7];
        break;
    case ZYDIS_MNEMONIC_PSHUFW:
        for (int i = 0; i < 4; i++)
            r.w[i] = b.w[(imm >> (2 * i)) & 3];
        break;
    case ZYDIS_MNEMONIC_PALIGNR: {
        /* dst:src as one 128-bit value shifted right by imm bytes (SDM vol. 2B, PALIGNR). */
        unsigned sh = imm & 0xff;
        if (sh >= 16)
            r.q = 0;
        else if (sh >= 8)
            r.q = sh == 8 ? a.q : a.q >> ((sh - 8) * 8);
        else
            r.q = sh == 0 ? b.q : (b.q >> (sh * 8)) | (a.q << ((8 - sh) * 8));
        break;
    }
    case ZYDIS_MNEMONIC_PHADDW: r.w[0] = (uint16_t)(a.w[0] + a.w[1]); r.w[1] = (uint16_t)(a.w[2] + a.w[3]);
        r.w[2] = (uint16_t)(b.w[0] + b.w[1]); r.w[3] = (uint16_t)(b.w[2] + b.w[3]); break;
    case ZYDIS_MNEMONIC_PHADDD: r.d[0] = a.d[0] + a.d[1]; r.d[1] = b.d[0] + b.d[1]; break;
    case ZYDIS_MNEMONIC_PHADDSW: r.sw[0] = sat_s16(a.sw[0] + a.sw[1]); r.sw[1] = sat_s16(a.sw[2] + a.sw[3]);
        r.sw[2] = sat_s16(b.sw[0] + b.sw[1]); r.sw[3] = sat_s16(b.sw[2] + b.sw[3]); break;
    case ZYDIS_MNEMONIC_PHSUBW: r.w[0] = (uint16_t)(a.w[0] - a.w[1]); r.w[1] = (uint16_t)(a.w[2] - a.w[3]);
        r.w[2] = (uint16_t)(b.w[0] - b.w[1]); r.w[3] = (uint16_t)(b.w[2] - b.w[3]); break;
    case ZYDIS_MNEMONIC_PHSUBD: r.d[0] = a.d[0] - a.d[1]; r.d[1] = b.d[0] - b.d[1]; break;
    case ZYDIS_MNEMONIC_PHSUBSW: r.sw[0] = sat_s16(a.sw[0] - a.sw[1]); r.sw[1] = sat_s16(a.sw[2] - a.sw[3]);
        r.sw[2] = sat_s16(b.sw[0] - b.sw[1]); r.sw[3] = sat_s16(b.sw[2] - b.sw[3]); break;
    case ZYDIS_MNEMONIC_PSIGNB:
        for (int i = 0; i < 8; i++) r.b[i] = b.sb[i] < 0 ? (uint8_t)-a.b[i] : b.sb[i] ? a.b[i] : 0;
        break;
    case ZYDIS_MNEMONIC_PSIGNW:
        for (int i = 0; i < 4; i++) r.w[i] = b.sw[i] < 0 ? (uint16_t)-a.w[i] : b.sw[i] ? a.w[i] : 0;
        break;
    case ZYDIS_MNEMONIC_PSIGND:
        for (int i = 0; i < 2; i++) r.d[i] = b.sd[i] < 0 ? -a.d[i] : b.sd[i] ? a.d[i] : 0;
        break;
    case ZYDIS_MNEMONIC_PABSB: for (int i = 0; i < 8; i++) r.b[i] = b.sb[i] < 0 ? (uint8_t)-b.b[i] : b.b[i]; break;
    case ZYDIS_MNEMONIC_PABSW: for (int i = 0; i < 4; i++) r.w[i] = b.sw[i] < 0 ? (uint16_t)-b.w[i] : b.w[i]; break;
    case ZYDIS_MNEMONIC_PABSD: for (int i = 0; i < 2; i++) r.d[i] = b.sd[i] < 0 ? -b.d[i] : b.d[i]; break;
    case ZYDIS_MNEMONIC_PINSRW: r.q = a.q; r.w[imm & 3] = (uint16_t)b.q; break;
    case ZYDIS_MNEMONIC_PSLLW: r.q = shift_lanes(a.q, b.q, 16, 0); break;
    case ZYDIS_MNEMONIC_PSLLD: r.q = shift_lanes(a.q, b.q, 32, 0); break;
    case ZYDIS_MNEMONIC_PSLLQ: r.q = shift_lanes(a.q, b.q, 64, 0); break;
    case ZYDIS_MNEMONIC_PSRLW: r.q = shift_lanes(a.q, b.q, 16, 1); break;
    case ZYDIS_MNEMONIC_PSRLD: r.q = shift_lanes(a.q, b.q, 32, 1); break;
    case ZYDIS_MNEMONIC_PSRLQ: r.q = shift_lanes(a.q, b.q, 64, 1); break;
    case ZYDIS_MNEMONIC_PSRAW: r.q = shift_lanes(a.q, b.q, 16, 2); break;
    case ZYDIS_MNEMONIC_PSRAD: r.q = shift_lanes(a.q, b.q, 32, 2); break;
    default:
        return false;
    }
    *out = r.q;
    return true;
}

/* ---- Operands ------------------------------------------------------------------------------ */

static bool op_is(const struct iem_insn *in, unsigned idx, unsigned kind)
{
    return idx < in->nops && idx < 4 && in->op[idx].kind == kind;
}

/* A source operand: MMX register, memory (its access size), general register or immediate. */
static uint64_t src_read(struct iem_cpu *cpu, const struct iem_insn *in, unsigned idx)
{
    if (idx >= in->nops || idx >= 4)
        iem_raise_ud(cpu);
    switch (in->op[idx].kind) {
    case IEM_OPK_MMX:
        return iem_mmx_get(cpu, in->op[idx].reg);
    case IEM_OPK_MEM:
    case IEM_OPK_GPR:
        return iem_op_read(cpu, in, idx);
    case IEM_OPK_IMM:
        return in->imm & 0xff;
    default:
        iem_raise_ud(cpu);
    }
}

/* MOVD/MOVQ with an MMX operand (SDM vol. 2B, MOVD/MOVQ): to MMX zero-extends. */
static int mmx_mov(struct iem_cpu *cpu, const struct iem_insn *in)
{
    if (op_is(in, 0, IEM_OPK_MMX)) {
        uint64_t v = src_read(cpu, in, 1);
        if (in->mnemonic == ZYDIS_MNEMONIC_MOVD || (!op_is(in, 1, IEM_OPK_MMX) && in->op[1].size == 4))
            v &= 0xffffffffu;
        iem_mmx_transition(cpu);
        iem_mmx_put(cpu, in->op[0].reg, v);
        return IEM_NEXT;
    }
    if (!op_is(in, 1, IEM_OPK_MMX) || !(op_is(in, 0, IEM_OPK_MEM) || op_is(in, 0, IEM_OPK_GPR)))
        iem_raise_ud(cpu);
    uint64_t v = iem_mmx_get(cpu, in->op[1].reg);
    iem_op_write(cpu, in, 0, v);
    iem_mmx_transition(cpu);
    return IEM_NEXT;
}

/* MASKMOVQ mm1, mm2: the bytes of mm1 whose mm2 byte has bit 7 set go to DS:rDI (segment
 * override allowed), SDM vol. 2B, MASKMOVQ.  All eight bytes are checked before any is written. */
static int mmx_maskmovq(struct iem_cpu *cpu, const struct iem_insn *in)
{
    if (!op_is(in, 0, IEM_OPK_MMX) || !op_is(in, 1, IEM_OPK_MMX))
        iem_raise_ud(cpu);
    union mmx data = {.q = iem_mmx_get(cpu, in->op[0].reg)}, mask = {.q = iem_mmx_get(cpu, in->op[1].reg)};
    unsigned seg = CPU_DS;
    if (in->mem.base == CPU_RDI && in->mem.index == IEM_NOREG && in->mem.seg < CPU_SEG_COUNT)
        seg = in->mem.seg;
    uint64_t addr = iem_gpr_read(cpu, CPU_RDI, in->addrsize);
    uint64_t amask = in->addrsize >= 8 ? ~(uint64_t)0 : (((uint64_t)1 << (in->addrsize * 8)) - 1);
    uint64_t bits = 0;
    for (int i = 0; i < 8; i++)
        if (mask.b[i] & 0x80)
            bits |= 1u << i;
    if (bits) {
        iem_mem_probe_write(cpu, seg, addr, 8);
        for (int i = 0; i < 8; i++)
            if (bits & (1u << i))
                iem_mem_write8(cpu, seg, (addr + (uint64_t)i) & amask, data.b[i]);
    }
    iem_mmx_transition(cpu);
    return IEM_NEXT;
}

int iem_mmx_exec(struct iem_cpu *cpu, const struct iem_insn *in)
{
    iem_mmx_enter(cpu, in);
    switch (in->mnemonic) {
    case ZYDIS_MNEMONIC_MOVD:
    case ZYDIS_MNEMONIC_MOVQ:
        return mmx_mov(cpu, in);
    case ZYDIS_MNEMONIC_MOVNTQ:
        if (!op_is(in, 0, IEM_OPK_MEM) || !op_is(in, 1, IEM_OPK_MMX))
            iem_raise_ud(cpu);
        return mmx_mov(cpu, in);
    case ZYDIS_MNEMONIC_MASKMOVQ:
        return mmx_maskmovq(cpu, in);
    case ZYDIS_MNEMONIC_PEXTRW: {
        if (!op_is(in, 0, IEM_OPK_GPR) || !op_is(in, 1, IEM_OPK_MMX))
            iem_raise_ud(cpu);
        union mmx v = {.q = iem_mmx_get(cpu, in->op[1].reg)};
        iem_mmx_transition(cpu);
        iem_gpr_write(cpu, in->op[0].reg, in->op[0].size >= 4 ? in->op[0].size : 4, v.w[in->imm & 3]);
        return IEM_NEXT;
    }
    case ZYDIS_MNEMONIC_PMOVMSKB: {
        if (!op_is(in, 0, IEM_OPK_GPR) || !op_is(in, 1, IEM_OPK_MMX))
            iem_raise_ud(cpu);
        union mmx v = {.q = iem_mmx_get(cpu, in->op[1].reg)};
        unsigned bits = 0;
        for (int i = 0; i < 8; i++)
            bits |= (unsigned)(v.b[i] >> 7) << i;
        iem_mmx_transition(cpu);
        iem_gpr_write(cpu, in->op[0].reg, in->op[0].size >= 4 ? in->op[0].size : 4, bits);
        return IEM_NEXT;
    }
    default:
        break;
    }
    if (!op_is(in, 0, IEM_OPK_MMX))
        iem_raise_ud(cpu);
    uint64_t b = src_read(cpu, in, 1);
    unsigned imm = (unsigned)(in->imm & 0xff);
    uint64_t a = iem_mmx_get(cpu, in->op[0].reg), r;
    if (!mmx_binary(in->mnemonic, a, b, imm, &r))
        iem_raise_ud(cpu);
    iem_mmx_transition(cpu);
    iem_mmx_put(cpu, in->op[0].reg, r);
    return IEM_NEXT;
}

int iem_mmx_handler(struct iem_cpu *cpu, const struct iem_insn *in)
{
    return iem_mmx_exec(cpu, in);
}

int iem_mmx_emms(struct iem_cpu *cpu, const struct iem_insn *in)
{
    iem_mmx_enter(cpu, in);
    /* SDM vol. 2A, EMMS: every tag empty; TOP is left alone. */
    cpu->s->fpu.ftw = 0;
    return IEM_NEXT;
}
