/* iem-int-alu.c - interpreter: integer arithmetic, logic, shifts, multiply/divide, bit, flag and BCD instructions. */

/*
 * Results and flags come from iem-alu.h (the host runs the same instruction); this file
 * only fetches operands, applies the instruction's rules (count masking, #DE, LOCK, what a
 * zero count or zero source leaves alone) and writes back in the order the fault rule of
 * iem-internal.h asks for: every read and the memory write before registers and RFLAGS.
 */

#include <Zydis/Mnemonic.h>

#include "iem-alu.h"
#include "iem-int.h"

/* The source operand idx at the given size: immediates come from in->imm directly because
 * the decoder sign-extends them and their encoded width can be narrower than the operation. */
static uint64_t alu_src(struct iem_cpu *cpu, const struct iem_insn *in, unsigned idx, unsigned size)
{
    if (in->op[idx].kind == IEM_OPK_IMM)
        return iem_int_wrap(size, in->imm);
    return iem_int_wrap(size, iem_op_read(cpu, in, idx));
}

/* ---- ADD OR ADC SBB AND SUB XOR CMP TEST -------------------------------------------------- */

/*
 * Each mnemonic has its own entry point around one inlined body, so the operation is a
 * compile-time constant there: the register forms (the common case) run the host
 * instruction inline on the register file without a call through iem_int_rmw.
 */
enum alu_op { ALU_ADD, ALU_OR, ALU_ADC, ALU_SBB, ALU_AND, ALU_SUB, ALU_XOR, ALU_CMP, ALU_TEST };

static inline uint64_t alu_calc(enum alu_op op, unsigned size, uint64_t a, uint64_t b, uint64_t *fl)
{
    switch (op) {
    case ALU_ADD: return iem_alu_add(size, a, b, fl);
    case ALU_OR: return iem_alu_or(size, a, b, fl);
    case ALU_ADC: return iem_alu_adc(size, a, b, fl);
    case ALU_SBB: return iem_alu_sbb(size, a, b, fl);
    case ALU_AND: return iem_alu_and(size, a, b, fl);
    case ALU_SUB: return iem_alu_sub(size, a, b, fl);
    case ALU_XOR: return iem_alu_xor(size, a, b, fl);
    case ALU_CMP: return iem_alu_sub(size, a, b, fl);
    default: return iem_alu_and(size, a, b, fl);
    }
}

static iem_int_rmw_fn *const g_alu_rmw[] = {
    [ALU_ADD] = iem_alu_add, [ALU_OR] = iem_alu_or, [ALU_ADC] = iem_alu_adc, [ALU_SBB] = iem_alu_sbb,
    [ALU_AND] = iem_alu_and, [ALU_SUB] = iem_alu_sub, [ALU_XOR] = iem_alu_xor,
};

static inline int alu_binary(struct iem_cpu *cpu, const struct iem_insn *in, enum alu_op op)
{
    struct cpu_state *s = cpu->s;
    unsigned size = in->op[0].size;
    bool store = op != ALU_CMP && op != ALU_TEST;
    uint64_t b, fl;

    if (in->op[1].kind == IEM_OPK_IMM)
        b = in->imm;
    else if (iem_int_is_gpr(&in->op[1]))
        b = s->gpr[in->op[1].reg];
    else
        b = iem_op_read(cpu, in, 1);
    if (iem_int_is_gpr(&in->op[0]) && !(in->prefixes & IEM_PFX_LOCK)) {
        unsigned reg = in->op[0].reg;
        uint64_t r;
        fl = s->rflags;
        r = alu_calc(op, size, s->gpr[reg], b, &fl);
        s->rflags = fl;
        if (store)
            iem_int_gpr_store(s, reg, size, r);
        return IEM_NEXT;
    }
    b = iem_int_wrap(size, b);
    if (!store) {
        uint64_t a = iem_op_read(cpu, in, 0);
        if (in->prefixes & IEM_PFX_LOCK)
            iem_raise_ud(cpu);
        fl = s->rflags;
        (void)alu_calc(op, size, a, b, &fl);
        s->rflags = fl;
        return IEM_NEXT;
    }
    iem_int_rmw(cpu, in, g_alu_rmw[op], b, false);
    return IEM_NEXT;
}

int iem_int_add(struct iem_cpu *cpu, const struct iem_insn *in) { return alu_binary(cpu, in, ALU_ADD); }
int iem_int_or(struct iem_cpu *cpu, const struct iem_insn *in) { return alu_binary(cpu, in, ALU_OR); }
int iem_int_adc(struct iem_cpu *cpu, const struct iem_insn *in) { return alu_binary(cpu, in, ALU_ADC); }
int iem_int_sbb(struct iem_cpu *cpu, const struct iem_insn *in) { return alu_binary(cpu, in, ALU_SBB); }
int iem_int_and(struct iem_cpu *cpu, const struct iem_insn *in) { return alu_binary(cpu, in, ALU_AND); }
int iem_int_sub(struct iem_cpu *cpu, const struct iem_insn *in) { return alu_binary(cpu, in, ALU_SUB); }
int iem_int_xor(struct iem_cpu *cpu, const struct iem_insn *in) { return alu_binary(cpu, in, ALU_XOR); }
int iem_int_cmp(struct iem_cpu *cpu, const struct iem_insn *in) { return alu_binary(cpu, in, ALU_CMP); }
int iem_int_test(struct iem_cpu *cpu, const struct iem_insn *in) { return alu_binary(cpu, in, ALU_TEST); }

/* ---- INC DEC NEG NOT ------------------------------------------------------------------------ */

enum alu_unop { ALU_INC, ALU_DEC, ALU_NEG, ALU_NOT };

static uint64_t rmw_inc(unsigned size, uint64_t a, uint64_t b, uint64_t *fl)
{
    return iem_alu_inc(size, a, fl);
}

static uint64_t rmw_dec(unsigned size, uint64_t a, uint64_t b, uint64_t *fl)
{
    return iem_alu_dec(size, a, fl);
}

static uint64_t rmw_neg(unsigned size, uint64_t a, uint64_t b, uint64_t *fl)
{
    return iem_alu_neg(size, a, fl);
}

static uint64_t rmw_not(unsigned size, uint64_t a, uint64_t b, uint64_t *fl)
{
    return iem_alu_not(size, a);
}

static iem_int_rmw_fn *const g_unop_rmw[] = {
    [ALU_INC] = rmw_inc, [ALU_DEC] = rmw_dec, [ALU_NEG] = rmw_neg, [ALU_NOT] = rmw_not,
};

static inline int alu_unary(struct iem_cpu *cpu, const struct iem_insn *in, enum alu_unop op)
{
    struct cpu_state *s = cpu->s;
    if (iem_int_is_gpr(&in->op[0]) && !(in->prefixes & IEM_PFX_LOCK)) {
        unsigned reg = in->op[0].reg, size = in->op[0].size;
        uint64_t a = s->gpr[reg], fl = s->rflags, r;
        switch (op) {
        case ALU_INC: r = iem_alu_inc(size, a, &fl); break;
        case ALU_DEC: r = iem_alu_dec(size, a, &fl); break;
        case ALU_NEG: r = iem_alu_neg(size, a, &fl); break;
        default: r = iem_alu_not(size, a); break;
        }
        s->rflags = fl;
        iem_int_gpr_store(s, reg, size, r);
        return IEM_NEXT;
    }
    iem_int_rmw(cpu, in, g_unop_rmw[op], 0, false);
    return IEM_NEXT;
}

int iem_int_inc(struct iem_cpu *cpu, const struct iem_insn *in) { return alu_unary(cpu, in, ALU_INC); }
int iem_int_dec(struct iem_cpu *cpu, const struct iem_insn *in) { return alu_unary(cpu, in, ALU_DEC); }
int iem_int_neg(struct iem_cpu *cpu, const struct iem_insn *in) { return alu_unary(cpu, in, ALU_NEG); }
int iem_int_not(struct iem_cpu *cpu, const struct iem_insn *in) { return alu_unary(cpu, in, ALU_NOT); }

/* ---- Shifts and rotates ---------------------------------------------------------------------- */

#define ALU_RMW_SHIFT(name)                                                             \
    static uint64_t rmw_##name(unsigned size, uint64_t a, uint64_t count, uint64_t *fl) \
    {                                                                                   \
        return iem_alu_##name(size, a, (unsigned)count, fl);                            \
    }
ALU_RMW_SHIFT(shl)
ALU_RMW_SHIFT(shr)
ALU_RMW_SHIFT(sar)
ALU_RMW_SHIFT(rol)
ALU_RMW_SHIFT(ror)
ALU_RMW_SHIFT(rcl)
ALU_RMW_SHIFT(rcr)

/* The count is masked to 5 bits (6 with a 64-bit operand) before anything else (SDM SAL/SAR/
 * SHL/SHR and RCL/RCR/ROL/ROR "Operation"). */
static unsigned alu_count(struct iem_cpu *cpu, const struct iem_insn *in, unsigned idx, unsigned size)
{
    unsigned count = (unsigned)alu_src(cpu, in, idx, 1);
    return count & (size == 8 ? 0x3f : 0x1f);
}

/* A masked count of 0 changes neither the value nor a flag.  The memory operand is still
 * read as the processor does; a 32-bit register is still written, so in 64-bit mode its
 * upper half is cleared (what Intel processors do, e.g. SHL r32, 0). */
static void alu_count_zero(struct iem_cpu *cpu, const struct iem_insn *in)
{
    uint64_t v = iem_op_read(cpu, in, 0);
    if (in->op[0].kind == IEM_OPK_GPR && in->op[0].size == 4)
        iem_op_write(cpu, in, 0, v);
}

enum alu_shop { ALU_SHL, ALU_SHR, ALU_SAR, ALU_ROL, ALU_ROR, ALU_RCL, ALU_RCR };

static iem_int_rmw_fn *const g_shift_rmw[] = {
    [ALU_SHL] = rmw_shl, [ALU_SHR] = rmw_shr, [ALU_SAR] = rmw_sar, [ALU_ROL] = rmw_rol,
    [ALU_ROR] = rmw_ror, [ALU_RCL] = rmw_rcl, [ALU_RCR] = rmw_rcr,
};

static inline int alu_shift(struct iem_cpu *cpu, const struct iem_insn *in, enum alu_shop op)
{
    struct cpu_state *s = cpu->s;
    unsigned size = in->op[0].size;
    unsigned count = in->nops >= 2 ? alu_count(cpu, in, 1, size) : 1;

    if (count == 0) {
        alu_count_zero(cpu, in);
        return IEM_NEXT;
    }
    if (iem_int_is_gpr(&in->op[0])) {
        unsigned reg = in->op[0].reg;
        uint64_t a = s->gpr[reg], fl = s->rflags, r;
        switch (op) {
        case ALU_SHL: r = iem_alu_shl(size, a, count, &fl); break;
        case ALU_SHR: r = iem_alu_shr(size, a, count, &fl); break;
        case ALU_SAR: r = iem_alu_sar(size, a, count, &fl); break;
        case ALU_ROL: r = iem_alu_rol(size, a, count, &fl); break;
        case ALU_ROR: r = iem_alu_ror(size, a, count, &fl); break;
        case ALU_RCL: r = iem_alu_rcl(size, a, count, &fl); break;
        default: r = iem_alu_rcr(size, a, count, &fl); break;
        }
        s->rflags = fl;
        iem_int_gpr_store(s, reg, size, r);
        return IEM_NEXT;
    }
    iem_int_rmw(cpu, in, g_shift_rmw[op], count, false);
    return IEM_NEXT;
}

int iem_int_shl(struct iem_cpu *cpu, const struct iem_insn *in) { return alu_shift(cpu, in, ALU_SHL); }
int iem_int_shr(struct iem_cpu *cpu, const struct iem_insn *in) { return alu_shift(cpu, in, ALU_SHR); }
int iem_int_sar(struct iem_cpu *cpu, const struct iem_insn *in) { return alu_shift(cpu, in, ALU_SAR); }
int iem_int_rol(struct iem_cpu *cpu, const struct iem_insn *in) { return alu_shift(cpu, in, ALU_ROL); }
int iem_int_ror(struct iem_cpu *cpu, const struct iem_insn *in) { return alu_shift(cpu, in, ALU_ROR); }
int iem_int_rcl(struct iem_cpu *cpu, const struct iem_insn *in) { return alu_shift(cpu, in, ALU_RCL); }
int iem_int_rcr(struct iem_cpu *cpu, const struct iem_insn *in) { return alu_shift(cpu, in, ALU_RCR); }

/* SHLD/SHRD r/m, reg, imm8/CL. */
int iem_int_alu_dshift(struct iem_cpu *cpu, const struct iem_insn *in)
{
    unsigned size = in->op[0].size;
    uint64_t src = alu_src(cpu, in, 1, size);
    unsigned count = alu_count(cpu, in, 2, size);
    uint64_t a, fl = cpu->s->rflags, r;

    if (count == 0) {
        alu_count_zero(cpu, in);
        return IEM_NEXT;
    }
    a = iem_op_read(cpu, in, 0);
    if (in->mnemonic == ZYDIS_MNEMONIC_SHLD)
        r = iem_alu_shld(size, a, src, count, &fl);
    else
        r = iem_alu_shrd(size, a, src, count, &fl);
    iem_op_write(cpu, in, 0, r);
    cpu->s->rflags = fl;
    return IEM_NEXT;
}

/* ---- MUL IMUL DIV IDIV ------------------------------------------------------------------------ */

/* One-operand forms: the accumulator pair is AX (size 1), DX:AX, EDX:EAX or RDX:RAX. */
int iem_int_alu_muldiv(struct iem_cpu *cpu, const struct iem_insn *in)
{
    unsigned size = in->op[0].size;
    uint64_t src = iem_int_wrap(size, iem_op_read(cpu, in, 0));
    uint64_t fl = cpu->s->rflags, lo, hi, r;
    bool div = in->mnemonic == ZYDIS_MNEMONIC_DIV || in->mnemonic == ZYDIS_MNEMONIC_IDIV;

    if (size == 1) {
        lo = iem_gpr_read(cpu, CPU_RAX, 2);
        hi = 0;
    } else {
        lo = iem_gpr_read(cpu, CPU_RAX, size);
        hi = iem_gpr_read(cpu, CPU_RDX, size);
    }
    if (div) {
        /* #DE for a zero divisor or a quotient too large for the destination (SDM DIV, IDIV). */
        bool ok = in->mnemonic == ZYDIS_MNEMONIC_DIV ? iem_alu_div_ok(size, lo, hi, src)
                                                     : iem_alu_idiv_ok(size, lo, hi, src);
        if (!ok)
            iem_raise(cpu, IEM_X_DE);
        if (in->mnemonic == ZYDIS_MNEMONIC_DIV)
            lo = iem_alu_div(size, lo, hi, src, &r, &fl);
        else
            lo = iem_alu_idiv(size, lo, hi, src, &r, &fl);
        if (size == 1) {
            iem_gpr_write(cpu, CPU_RAX, 2, (r << 8) | lo);
        } else {
            iem_gpr_write(cpu, CPU_RAX, size, lo);
            iem_gpr_write(cpu, CPU_RDX, size, r);
        }
    } else {
        if (in->mnemonic == ZYDIS_MNEMONIC_MUL)
            lo = iem_alu_mul(size, lo, src, &hi, &fl);
        else
            lo = iem_alu_imul1(size, lo, src, &hi, &fl);
        if (size == 1) {
            iem_gpr_write(cpu, CPU_RAX, 2, lo);
        } else {
            iem_gpr_write(cpu, CPU_RAX, size, lo);
            iem_gpr_write(cpu, CPU_RDX, size, hi);
        }
    }
    cpu->s->rflags = fl;
    return IEM_NEXT;
}

/* IMUL with one, two or three operands. */
int iem_int_alu_imul(struct iem_cpu *cpu, const struct iem_insn *in)
{
    unsigned size = in->op[0].size;
    uint64_t a, b, fl, r;

    if (in->nops <= 1)
        return iem_int_alu_muldiv(cpu, in);
    if (in->nops >= 3) {
        a = alu_src(cpu, in, 1, size);
        b = alu_src(cpu, in, 2, size);
    } else {
        b = alu_src(cpu, in, 1, size);
        a = iem_op_read(cpu, in, 0);
    }
    fl = cpu->s->rflags;
    r = iem_alu_imul2(size, a, b, &fl);
    iem_op_write(cpu, in, 0, r);
    cpu->s->rflags = fl;
    return IEM_NEXT;
}

/* ---- BT BTS BTR BTC ---------------------------------------------------------------------------- */

static uint64_t rmw_bts(unsigned size, uint64_t a, uint64_t bit, uint64_t *fl)
{
    return iem_alu_bts(size, a, bit, fl);
}

static uint64_t rmw_btr(unsigned size, uint64_t a, uint64_t bit, uint64_t *fl)
{
    return iem_alu_btr(size, a, bit, fl);
}

static uint64_t rmw_btc(unsigned size, uint64_t a, uint64_t bit, uint64_t *fl)
{
    return iem_alu_btc(size, a, bit, fl);
}

/*
 * With a register bit offset and a memory operand the operand is a bit string: the offset is
 * signed (SDM BT: -2^31..2^31-1 for 32-bit operands) and selects the operand-sized word at
 * EA + size * floor(offset / (8 * size)).  An immediate offset is taken modulo the size.
 */
int iem_int_alu_bittest(struct iem_cpu *cpu, const struct iem_insn *in)
{
    unsigned size = in->op[0].size, bits = size * 8;
    uint64_t bit = alu_src(cpu, in, 1, size), fl;
    iem_int_rmw_fn *fn = NULL;

    switch (in->mnemonic) {
    case ZYDIS_MNEMONIC_BT: break;
    case ZYDIS_MNEMONIC_BTS: fn = rmw_bts; break;
    case ZYDIS_MNEMONIC_BTR: fn = rmw_btr; break;
    case ZYDIS_MNEMONIC_BTC: fn = rmw_btc; break;
    default: iem_raise_ud(cpu);
    }
    if (in->op[0].kind == IEM_OPK_MEM && in->op[1].kind != IEM_OPK_IMM) {
        unsigned shift = (unsigned)__builtin_ctz(bits);
        int64_t idx = (int64_t)iem_alu_sext(size, bit) >> shift;
        uint64_t off = iem_int_wrap(in->addrsize, iem_ea(cpu, in) + (uint64_t)idx * size);
        unsigned seg = in->mem.seg;
        bit &= bits - 1;
        if (fn == NULL) {
            uint64_t v = iem_int_mem_read(cpu, seg, off, size);
            fl = cpu->s->rflags;
            (void)iem_alu_bt(size, v, bit, &fl);
            cpu->s->rflags = fl;
        } else {
            (void)iem_int_rmw_at(cpu, in, seg, off, size, fn, bit, (in->prefixes & IEM_PFX_LOCK) != 0);
        }
        return IEM_NEXT;
    }
    bit &= bits - 1;
    if (fn == NULL) {
        uint64_t v = iem_op_read(cpu, in, 0);
        if (in->prefixes & IEM_PFX_LOCK)
            iem_raise_ud(cpu);
        fl = cpu->s->rflags;
        (void)iem_alu_bt(size, v, bit, &fl);
        cpu->s->rflags = fl;
        return IEM_NEXT;
    }
    iem_int_rmw(cpu, in, fn, bit, false);
    return IEM_NEXT;
}

/* ---- BSF BSR POPCNT LZCNT TZCNT ----------------------------------------------------------------- */

/*
 * BSF/BSR with a zero source set ZF and leave the destination register completely alone
 * (Intel processors do not even zero-extend a 32-bit destination then, unlike every other
 * 32-bit write).  TZCNT is BSF here: the advertised CPUID has no BMI1, and a processor
 * without BMI1 executes F3 0F BC as BSF with an ignored REP prefix (SDM TZCNT).
 */
int iem_int_alu_bitscan(struct iem_cpu *cpu, const struct iem_insn *in)
{
    unsigned size = in->op[0].size;
    uint64_t src = alu_src(cpu, in, 1, size), fl = cpu->s->rflags, r;

    switch (in->mnemonic) {
    case ZYDIS_MNEMONIC_BSF:
    case ZYDIS_MNEMONIC_TZCNT:
    case ZYDIS_MNEMONIC_BSR: {
        uint64_t dst = iem_op_read(cpu, in, 0);
        if (in->mnemonic == ZYDIS_MNEMONIC_BSR)
            r = iem_alu_bsr(size, dst, src, &fl);
        else
            r = iem_alu_bsf(size, dst, src, &fl);
        if (src != 0)
            iem_op_write(cpu, in, 0, r);
        cpu->s->rflags = fl;
        return IEM_NEXT;
    }
    case ZYDIS_MNEMONIC_POPCNT: r = iem_alu_popcnt(size, src, &fl); break;
    case ZYDIS_MNEMONIC_LZCNT: r = iem_alu_lzcnt(size, src, &fl); break;
    default: iem_raise_ud(cpu);
    }
    iem_op_write(cpu, in, 0, r);
    cpu->s->rflags = fl;
    return IEM_NEXT;
}

/* ---- CBW CWDE CDQE CWD CDQ CQO --------------------------------------------------------------------- */

int iem_int_alu_convert(struct iem_cpu *cpu, const struct iem_insn *in)
{
    uint64_t a;
    switch (in->mnemonic) {
    case ZYDIS_MNEMONIC_CBW:
        iem_gpr_write(cpu, CPU_RAX, 2, iem_alu_sext(1, iem_gpr_read(cpu, CPU_RAX, 1)));
        break;
    case ZYDIS_MNEMONIC_CWDE:
        iem_gpr_write(cpu, CPU_RAX, 4, iem_alu_sext(2, iem_gpr_read(cpu, CPU_RAX, 2)));
        break;
    case ZYDIS_MNEMONIC_CDQE:
        iem_gpr_write(cpu, CPU_RAX, 8, iem_alu_sext(4, iem_gpr_read(cpu, CPU_RAX, 4)));
        break;
    case ZYDIS_MNEMONIC_CWD:
        a = iem_gpr_read(cpu, CPU_RAX, 2);
        iem_gpr_write(cpu, CPU_RDX, 2, (a & 0x8000) ? 0xffff : 0);
        break;
    case ZYDIS_MNEMONIC_CDQ:
        a = iem_gpr_read(cpu, CPU_RAX, 4);
        iem_gpr_write(cpu, CPU_RDX, 4, (a & 0x80000000u) ? 0xffffffffu : 0);
        break;
    case ZYDIS_MNEMONIC_CQO:
        a = iem_gpr_read(cpu, CPU_RAX, 8);
        iem_gpr_write(cpu, CPU_RDX, 8, (a >> 63) ? ~(uint64_t)0 : 0);
        break;
    default:
        iem_raise_ud(cpu);
    }
    return IEM_NEXT;
}

/* ---- CLC STC CMC CLD STD LAHF SAHF SALC ----------------------------------------------------------- */

int iem_int_alu_flagop(struct iem_cpu *cpu, const struct iem_insn *in)
{
    uint64_t *fl = &cpu->s->rflags;
    switch (in->mnemonic) {
    case ZYDIS_MNEMONIC_CLC: *fl &= ~(uint64_t)IEM_F_CF; break;
    case ZYDIS_MNEMONIC_STC: *fl |= IEM_F_CF; break;
    case ZYDIS_MNEMONIC_CMC: *fl ^= IEM_F_CF; break;
    case ZYDIS_MNEMONIC_CLD: *fl &= ~(uint64_t)IEM_F_DF; break;
    case ZYDIS_MNEMONIC_STD: *fl |= IEM_F_DF; break;
    case ZYDIS_MNEMONIC_LAHF:
        /* AH = SF:ZF:0:AF:0:PF:1:CF (SDM LAHF). */
        iem_gpr_write(cpu, IEM_GPR_AH, 1, (*fl & 0xd5) | 0x02);
        break;
    case ZYDIS_MNEMONIC_SAHF:
        *fl = (*fl & ~(uint64_t)0xd5) | (iem_gpr_read(cpu, IEM_GPR_AH, 1) & 0xd5);
        break;
    case ZYDIS_MNEMONIC_SALC:
        /* Undocumented D6 (Intel and AMD): AL = CF ? FFh : 00h, flags unchanged; #UD in 64-bit mode. */
        iem_int_no64(cpu);
        iem_gpr_write(cpu, CPU_RAX, 1, (*fl & IEM_F_CF) ? 0xff : 0);
        break;
    default:
        iem_raise_ud(cpu);
    }
    return IEM_NEXT;
}

/* ---- SETcc CMOVcc ------------------------------------------------------------------------------------ */

int iem_int_alu_setcc(struct iem_cpu *cpu, const struct iem_insn *in)
{
    iem_op_write(cpu, in, 0, iem_cond(cpu, in->cond) ? 1 : 0);
    return IEM_NEXT;
}

/* The source is read (and can fault) whatever the condition; a 32-bit destination is written
 * (zero-extending it in 64-bit mode) even when the condition is false (SDM CMOVcc). */
int iem_int_alu_cmovcc(struct iem_cpu *cpu, const struct iem_insn *in)
{
    uint64_t src = iem_op_read(cpu, in, 1);
    if (iem_cond(cpu, in->cond))
        iem_op_write(cpu, in, 0, src);
    else if (in->op[0].size == 4)
        iem_op_write(cpu, in, 0, iem_op_read(cpu, in, 0));
    return IEM_NEXT;
}

/* ---- DAA DAS AAA AAS AAM AAD ------------------------------------------------------------------------ */

int iem_int_alu_bcd(struct iem_cpu *cpu, const struct iem_insn *in)
{
    uint64_t fl = cpu->s->rflags;
    uint16_t ax = (uint16_t)iem_gpr_read(cpu, CPU_RAX, 2);

    iem_int_no64(cpu);
    switch (in->mnemonic) {
    case ZYDIS_MNEMONIC_DAA: ax = (uint16_t)((ax & 0xff00) | iem_alu_daa((uint8_t)ax, &fl)); break;
    case ZYDIS_MNEMONIC_DAS: ax = (uint16_t)((ax & 0xff00) | iem_alu_das((uint8_t)ax, &fl)); break;
    case ZYDIS_MNEMONIC_AAA: ax = iem_alu_aaa(ax, &fl); break;
    case ZYDIS_MNEMONIC_AAS: ax = iem_alu_aas(ax, &fl); break;
    case ZYDIS_MNEMONIC_AAM: {
        uint8_t base = (uint8_t)in->imm;
        if (base == 0)
            iem_raise(cpu, IEM_X_DE); /* SDM AAM: "IF imm8 = 0 THEN #DE" */
        ax = iem_alu_aam(ax, base, &fl);
        break;
    }
    case ZYDIS_MNEMONIC_AAD: ax = iem_alu_aad(ax, (uint8_t)in->imm, &fl); break;
    default: iem_raise_ud(cpu);
    }
    iem_gpr_write(cpu, CPU_RAX, 2, ax);
    cpu->s->rflags = fl;
    return IEM_NEXT;
}
