/* diff-simd.h - tstIemDiff's MMX, SSE..SSE4.2 and x87 instruction templates. */
#ifndef VIREO_DIFF_SIMD_H
#define VIREO_DIFF_SIMD_H

#include "diff-gen.h"

/*
 * Memory operands of 16 bytes are 16-byte aligned unless the instruction allows otherwise
 * (MOVUPS, MOVDQU, LDDQU, PCMPxSTRx): legacy SSE raises #GP(0) on a misaligned m128 (SDM vol. 2,
 * 2.4 / each instruction's exceptions), but Unicorn 2.0.1 (QEMU 5 TCG) never checks, so a
 * misaligned operand would only show that Unicorn limitation.
 */

/* LDMXCSR with a value the generator knows, then sometimes STMXCSR of it (the status flags in
 * MXCSR are not compared: Unicorn 2.0.1 never sets them, see tstIemDiff.c). */
static void dg_unit_ldmxcsr(struct dg_gen *g, const struct dg_tmpl *t)
{
    struct dg_rng *r = &g->rng;
    struct dg_memop m;
    dg_mem_pick(g, &m, 4, 4, 0, 0);
    dg_mem_setup(g, &m);
    /* Reserved bits would raise #GP(0) (SDM vol. 2, LDMXCSR) but QEMU 5 loads them without a check,
     * so only valid values are used; FZ stays clear (see dg_state_random). */
    uint32_t v = 0x1f80 | ((uint32_t)dg_below(r, 4) << 13) | (dg_chance(r, 4) ? 0x40 : 0);
    dg_store_imm(g, m.target, 4, v);
    struct dg_enc e = { .map = DG_MAP_0F, .op = 0xae, .has_modrm = true, .reg = 2, .mem = &m };
    dg_mem_prefixes(&e, &m);
    dg_enc_finish_prefixes(g, &e, t);
    dg_emit(g, &e);
    g->mxcsr = v;
    g->daz = (v & 0x40) != 0;
    if (dg_chance(r, 2)) {
        struct dg_memop m2;
        dg_mem_pick(g, &m2, 4, 1, 0, 0);
        dg_mem_setup(g, &m2);
        struct dg_enc s = { .map = DG_MAP_0F, .op = 0xae, .has_modrm = true, .reg = 3, .mem = &m2 };
        dg_mem_prefixes(&s, &m2);
        dg_emit(g, &s);
    }
}

/* MASKMOVQ / MASKMOVDQU: byte-masked store to [RDI] (DS, overridable; EDI with 0x67). */
static void dg_unit_maskmov(struct dg_gen *g, const struct dg_tmpl *t)
{
    struct dg_rng *r = &g->rng;
    bool a32 = dg_chance(r, 4);
    uint8_t seg = dg_chance(r, 4) ? 0x64 : 0;
    uint64_t a = DG_DATA_BASE + dg_below(r, (unsigned)(DG_WR_END - DG_DATA_BASE) - 16);
    uint64_t v = a - (seg ? DG_FS_BASE : 0);
    dg_mov_imm(g, 7, a32 ? v | (dg_rand(r) << 32) : v, false);
    struct dg_enc e = { .map = DG_MAP_0F, .op = 0xf7, .has_modrm = true };
    unsigned n = t->pfx ? 16 : 8;
    e.reg = (uint8_t)dg_below(r, n);
    e.rm = (uint8_t)dg_below(r, n);
    if (seg)
        e.pfx[e.npfx++] = seg;
    if (a32)
        e.pfx[e.npfx++] = 0x67;
    if (!t->pfx)
        g->seq->uses_x87 = g->mmx_dirty = true;
    dg_enc_finish_prefixes(g, &e, t);
    dg_emit(g, &e);
}

/*
 * PCMPESTRI/PCMPESTRM take the string lengths from RAX and RDX (EAX/EDX without REX.W).  QEMU 5
 * (pcmp_elen) converts their absolute value to int before saturating it at 16 (8 for words), so
 * values whose magnitude does not fit in an int crash Unicorn; the lengths are loaded first with
 * values in that range (negative ones and ones beyond 16 included, which saturate).
 */
static uint64_t dg_strlen_value(struct dg_rng *r)
{
    int64_t v = dg_chance(r, 4) ? (int64_t)(int32_t)(dg_rand(r) >> 33) : (int64_t)dg_below(r, 41) - 20;
    return (uint64_t)v;
}

static void dg_unit_pcmpestr(struct dg_gen *g, const struct dg_tmpl *t)
{
    struct dg_rng *r = &g->rng;
    /* Without REX.W only EAX/EDX count; garbage above them must be ignored. */
    uint64_t hi = dg_chance(r, 2) ? dg_rand(r) << 32 : 0;
    dg_mov_imm(g, 0, dg_strlen_value(r) ^ hi, false);
    dg_mov_imm(g, 2, dg_strlen_value(r) ^ hi, false);
    g->avoid_mem = (1u << 0) | (1u << 2);
    struct dg_tmpl w = *t;
    w.fn = NULL;
    if (hi)
        w.sizes = DG_SZ_D; /* REX.W would use the garbage */
    dg_unit_generic(g, &w);
    g->avoid_mem = 0;
}

static void dg_unit_emms(struct dg_gen *g, const struct dg_tmpl *t)
{
    g->seq->uses_x87 = true;
    dg_emit_raw(g, (const uint8_t[]){ 0x0f, 0x77 }, 2, false);
    g->mmx_dirty = false;
}

/* ---- x87 ------------------------------------------------------------------------------------------ */

/*
 * A small x87 subset that Unicorn 2.0.1 computes like the hardware: loads, stores, the four
 * basic operations, compares into EFLAGS, FXCH, FCHS/FABS, FSQRT, FRNDINT, FLD1/FLDZ.  Left
 * out: transcendental instructions; constants other than 1 and 0 (QEMU 5 ignores the rounding
 * mode for FLDPI & co.); FIST of values that do not fit (QEMU 5 saturates to 0x7fffffff where
 * the hardware stores the integer indefinite).  The FPU status word's exception bits are not
 * compared (QEMU 5 does not raise most of them).
 *
 * One unit: load one or two values, operate, store the result to memory and pop what it pushed,
 * so the register stack returns to its starting depth.
 */
static void dg_x87_mem_op(struct dg_gen *g, uint8_t op, unsigned ext, unsigned size, bool load)
{
    struct dg_memop m;
    /*
     * Loads read the x87 area, which nothing writes: QEMU 5 loads a signalling NaN without
     * making it quiet (SDM vol. 1, 4.8.3.4), and stores elsewhere could leave one behind.
     */
    dg_mem_pick(g, &m, size, load ? size : 1, load ? DG_MF_X87 : DG_MF_FP, 0); /* aligned: no NaN across lanes */
    dg_mem_setup(g, &m);
    struct dg_enc e = { .op = op, .has_modrm = true, .reg = (uint8_t)ext, .mem = &m };
    dg_mem_prefixes(&e, &m);
    dg_emit(g, &e);
}

static void dg_x87_raw2(struct dg_gen *g, uint8_t a, uint8_t b)
{
    dg_emit_raw(g, (const uint8_t[]){ a, b }, 2, false);
}

static void dg_unit_x87(struct dg_gen *g, const struct dg_tmpl *t)
{
    struct dg_rng *r = &g->rng;
    g->seq->uses_x87 = true;
    /* After MMX instructions every register is in use: a load would overflow the stack, which
     * QEMU 5 does not model, so EMMS first. */
    if (g->mmx_dirty) {
        dg_emit_raw(g, (const uint8_t[]){ 0x0f, 0x77 }, 2, true);
        g->mmx_dirty = false;
    }
    /* Two operands: FLD m32/m64/m80-free forms, FILD m16/m32/m64, FLD1, FLDZ. */
    for (int i = 0; i < 2; i++) {
        switch (dg_below(r, 8)) {
        case 0:
            dg_x87_mem_op(g, 0xd9, 0, 4, true); /* FLD m32 */
            break;
        case 1:
        case 2:
            dg_x87_mem_op(g, 0xdd, 0, 8, true); /* FLD m64 */
            break;
        case 3:
            dg_x87_mem_op(g, 0xdf, 0, 2, true); /* FILD m16 */
            break;
        case 4:
            dg_x87_mem_op(g, 0xdb, 0, 4, true); /* FILD m32 */
            break;
        case 5:
            dg_x87_mem_op(g, 0xdf, 5, 8, true); /* FILD m64 */
            break;
        case 6:
            dg_x87_raw2(g, 0xd9, 0xe8); /* FLD1 */
            break;
        default:
            dg_x87_raw2(g, 0xd9, 0xee); /* FLDZ */
            break;
        }
    }
    switch (t->arg) {
    case 0: { /* arithmetic: ST(0) op ST(1), popping form, or with a memory operand */
        unsigned op = dg_below(r, 8);
        if (op == 2 || op == 3)
            op = 0; /* FCOM/FCOMP are compares, handled below */
        unsigned k = dg_below(r, 3);
        if (k == 0)
            dg_x87_raw2(g, 0xd8, (uint8_t)(0xc0 | (op << 3) | 1));        /* FOP ST(0), ST(1) */
        else if (k == 1)
            dg_x87_raw2(g, 0xdc, (uint8_t)(0xc0 | (op << 3) | 1));        /* FOP ST(1), ST(0) */
        else
            dg_x87_mem_op(g, dg_chance(r, 2) ? 0xd8 : 0xdc, op, 8, true);       /* FOP m32/m64 */
        dg_x87_mem_op(g, 0xdd, 3, 8, false); /* FSTP m64 */
        dg_x87_mem_op(g, dg_chance(r, 2) ? 0xd9 : 0xdd, 3, 8, false); /* FSTP m32/m64 */
        break;
    }
    case 1: { /* FCOMI/FUCOMI(P) into EFLAGS: ZF, PF, CF set, OF/SF/AF cleared */
        bool pop = dg_chance(r, 2);
        dg_x87_raw2(g, pop ? 0xdf : 0xdb, (uint8_t)((dg_chance(r, 2) ? 0xe8 : 0xf0) | 1));
        /* FCOMI clears OF, SF and AF (SDM vol. 2 FCOMI); QEMU 5 leaves them as they were, so
         * they are not compared after it. */
        dg_flags_result(g, DG_ZF | DG_PF | DG_CF, DG_OF | DG_SF | DG_AF);
        dg_x87_mem_op(g, 0xdd, 3, 8, false);
        if (!pop) /* never pop an empty register: QEMU 5 does not model stack underflow */
            dg_x87_mem_op(g, 0xdd, 3, 8, false);
        break;
    }
    case 2: { /* unary operations on ST(0) and FXCH */
        static const uint8_t un[] = { 0xe0, 0xe1, 0xfa, 0xfc, 0xc9 }; /* FCHS FABS FSQRT FRNDINT FXCH ST(1) */
        dg_x87_raw2(g, 0xd9, un[dg_below(r, 5)]);
        dg_x87_mem_op(g, 0xdd, 3, 8, false);
        dg_x87_mem_op(g, 0xdd, 3, 8, false);
        break;
    }
    default: { /* FNSTSW AX after a compare (C0-C3), then FISTP m16 (indefinite on overflow) */
        dg_x87_raw2(g, 0xd8, 0xd9); /* FCOMP ST(1) */
        dg_x87_raw2(g, 0xdf, 0xe0); /* FNSTSW AX */
        /* Keep C0, C2, C3 and TOP: QEMU 5 sets neither the exception flags nor C1 (rounding). */
        dg_emit_raw(g, (const uint8_t[]){ 0x66, 0x25, 0x00, 0x7d }, 4, true);
        dg_flags_result(g, DG_ARITH & ~DG_AF, DG_AF);
        dg_x87_mem_op(g, 0xdf, 3, 2, false); /* FISTP m16 */
        break;
    }
    }
}

/* ---- The table ------------------------------------------------------------------------------------- */

/* xmm, xmm/m (reg written); msz 0 = 16 bytes aligned. */
#define DG_X(nm, grp_, map_, op_, pfx_, msz_, tr)                                                              \
    { .name = nm, .grp = grp_, .map = map_, .op = op_, .pfx = pfx_, .form = DG_FORM_RM, .rk = DG_K_XMM,       \
      .mk = DG_K_XMM, .msz = msz_, .align = (msz_) ? 1 : 16, .mem = DG_MEM_ANY, .traits = DG_T_WREG | (tr) }
#define DG_XI(nm, grp_, map_, op_, pfx_, msz_, mask, tr)                                                       \
    { .name = nm, .grp = grp_, .map = map_, .op = op_, .pfx = pfx_, .form = DG_FORM_RM, .rk = DG_K_XMM,       \
      .mk = DG_K_XMM, .msz = msz_, .align = (msz_) ? 1 : 16, .mem = DG_MEM_ANY, .imm = DG_IMM_B,              \
      .immmask = mask, .traits = DG_T_WREG | (tr) }
#define DG_X2(nm, grp_, map_, op_, pfx_, msz_, tr, t2)                                                         \
    { .name = nm, .grp = grp_, .map = map_, .op = op_, .pfx = pfx_, .form = DG_FORM_RM, .rk = DG_K_XMM,       \
      .mk = DG_K_XMM, .msz = msz_, .align = (msz_) ? 1 : 16, .mem = DG_MEM_ANY, .traits = DG_T_WREG | (tr),   \
      .traits2 = t2 }
#define DG_XI2(nm, grp_, map_, op_, pfx_, msz_, mask, tr, t2)                                                 \
    { .name = nm, .grp = grp_, .map = map_, .op = op_, .pfx = pfx_, .form = DG_FORM_RM, .rk = DG_K_XMM,       \
      .mk = DG_K_XMM, .msz = msz_, .align = (msz_) ? 1 : 16, .mem = DG_MEM_ANY, .imm = DG_IMM_B,              \
      .immmask = mask, .traits = DG_T_WREG | (tr), .traits2 = t2 }
/* An MMX form: mm, mm/m64 (or m32 for the low-half unpacks). */
#define DG_M(nm, grp_, map_, op_, msz_, tr)                                                                    \
    { .name = nm, .grp = grp_, .map = map_, .op = op_, .form = DG_FORM_RM, .rk = DG_K_MMX, .mk = DG_K_MMX,    \
      .msz = msz_, .mem = DG_MEM_ANY, .traits = DG_T_WREG | DG_T_X87 | (tr) }
/* Packed integer operation in its MMX and SSE2 forms. */
#define DG_PI(nm, map_, op_)                                                                                   \
    DG_M(nm " mm", DG_G_MMX, map_, op_, 8, 0), DG_X(nm, DG_G_SSE_INT, map_, op_, 0x66, 0, 0)
/* The horizontal adds and subtracts with two different registers: QEMU 5 computes them in place
 * and reads source words it has already overwritten when both operands are one register. */
#define DG_PH(nm, op_)                                                                                         \
    DG_M(nm " mm", DG_G_MMX, DG_MAP_0F38, op_, 8, DG_T_UCNOTAG | DG_T_DIFFREG),                                \
    DG_X(nm, DG_G_SSSE3, DG_MAP_0F38, op_, 0x66, 0, DG_T_DIFFREG)
/* SSSE3 forms on MMX registers: QEMU 5 does not switch the x87 unit to MMX mode for them
 * (TOP = 0, all tags valid, SDM vol. 1 9.5.1), so the tag word is not compared after them. */
#define DG_PIS(nm, map_, op_, grp_)                                                                            \
    DG_M(nm " mm", DG_G_MMX, map_, op_, 8, DG_T_UCNOTAG), DG_X(nm, grp_, map_, op_, 0x66, 0, 0)
/* Packed/scalar floating point: PS, PD, SS, SD. */
#define DG_FP4(nm, op_, t2)                                                                                    \
    DG_X2(nm "ps", DG_G_SSE_FP, DG_MAP_0F, op_, 0, 0, DG_T_FPMEM, t2),                                         \
    DG_X2(nm "pd", DG_G_SSE_FP, DG_MAP_0F, op_, 0x66, 0, DG_T_FPMEM, t2),                                      \
    DG_X2(nm "ss", DG_G_SSE_FP, DG_MAP_0F, op_, 0xf3, 4, DG_T_FPMEM, t2),                                      \
    DG_X2(nm "sd", DG_G_SSE_FP, DG_MAP_0F, op_, 0xf2, 8, DG_T_FPMEM, t2)

/* Shift by immediate (71/72/73 /n): register form only. */
#define DG_SHI(nm, op_, x, pfx_, kind, grp_, tr)                                                               \
    { .name = nm, .grp = grp_, .map = DG_MAP_0F, .op = op_, .pfx = pfx_, .form = DG_FORM_EXT, .ext = x,        \
      .mk = kind, .mem = DG_MEM_REG, .imm = DG_IMM_B, .traits = DG_T_WRM | (tr) }
#define DG_SHI2(nm, op_, x)                                                                                    \
    DG_SHI(nm " mm,imm8", op_, x, 0, DG_K_MMX, DG_G_MMX, DG_T_X87), DG_SHI(nm " xmm,imm8", op_, x, 0x66, DG_K_XMM, DG_G_SSE_INT, 0)
/* GPR <-> vector register forms. */
#define DG_XG(nm, grp_, map_, op_, pfx_, rk_, mk_, sz, msz_, mem_, im, tr)                                      \
    { .name = nm, .grp = grp_, .map = map_, .op = op_, .pfx = pfx_, .form = DG_FORM_RM, .rk = rk_, .mk = mk_,  \
      .sizes = sz, .msz = msz_, .mem = mem_, .imm = im, .traits = (tr) }

static const struct dg_tmpl g_dg_simd_tmpls[] = {
    /* SSE/SSE2 moves */
    DG_X("movups", DG_G_SSE_MOVE, DG_MAP_0F, 0x10, 0, 16, 0),
    DG_X("movupd", DG_G_SSE_MOVE, DG_MAP_0F, 0x10, 0x66, 16, 0),
    DG_X("movss", DG_G_SSE_MOVE, DG_MAP_0F, 0x10, 0xf3, 4, 0),
    DG_X("movsd", DG_G_SSE_MOVE, DG_MAP_0F, 0x10, 0xf2, 8, 0),
    { .name = "movups st", .grp = DG_G_SSE_MOVE, .map = DG_MAP_0F, .op = 0x11, .form = DG_FORM_RM, .rk = DG_K_XMM,
      .mk = DG_K_XMM, .msz = 16, .align = 1, .mem = DG_MEM_ANY, .traits = DG_T_WRM },
    { .name = "movupd st", .grp = DG_G_SSE_MOVE, .map = DG_MAP_0F, .op = 0x11, .pfx = 0x66, .form = DG_FORM_RM,
      .rk = DG_K_XMM, .mk = DG_K_XMM, .msz = 16, .align = 1, .mem = DG_MEM_ANY, .traits = DG_T_WRM },
    { .name = "movss st", .grp = DG_G_SSE_MOVE, .map = DG_MAP_0F, .op = 0x11, .pfx = 0xf3, .form = DG_FORM_RM,
      .rk = DG_K_XMM, .mk = DG_K_XMM, .msz = 4, .align = 1, .mem = DG_MEM_ANY, .traits = DG_T_WRM },
    { .name = "movsd st", .grp = DG_G_SSE_MOVE, .map = DG_MAP_0F, .op = 0x11, .pfx = 0xf2, .form = DG_FORM_RM,
      .rk = DG_K_XMM, .mk = DG_K_XMM, .msz = 8, .align = 1, .mem = DG_MEM_ANY, .traits = DG_T_WRM },
    DG_X("movlps/movhlps", DG_G_SSE_MOVE, DG_MAP_0F, 0x12, 0, 8, 0),
    { .name = "movlpd", .grp = DG_G_SSE_MOVE, .map = DG_MAP_0F, .op = 0x12, .pfx = 0x66, .form = DG_FORM_RM,
      .rk = DG_K_XMM, .mk = DG_K_XMM, .msz = 8, .align = 1, .mem = DG_MEM_ONLY, .traits = DG_T_WREG },
    { .name = "movlps st", .grp = DG_G_SSE_MOVE, .map = DG_MAP_0F, .op = 0x13, .form = DG_FORM_RM, .rk = DG_K_XMM,
      .mk = DG_K_XMM, .msz = 8, .align = 1, .mem = DG_MEM_ONLY, .traits = DG_T_WRM },
    { .name = "movlpd st", .grp = DG_G_SSE_MOVE, .map = DG_MAP_0F, .op = 0x13, .pfx = 0x66, .form = DG_FORM_RM,
      .rk = DG_K_XMM, .mk = DG_K_XMM, .msz = 8, .align = 1, .mem = DG_MEM_ONLY, .traits = DG_T_WRM },
    DG_X("unpcklps", DG_G_SSE_MOVE, DG_MAP_0F, 0x14, 0, 0, 0),
    DG_X("unpcklpd", DG_G_SSE_MOVE, DG_MAP_0F, 0x14, 0x66, 0, 0),
    DG_X("unpckhps", DG_G_SSE_MOVE, DG_MAP_0F, 0x15, 0, 0, 0),
    DG_X("unpckhpd", DG_G_SSE_MOVE, DG_MAP_0F, 0x15, 0x66, 0, 0),
    DG_X("movhps/movlhps", DG_G_SSE_MOVE, DG_MAP_0F, 0x16, 0, 8, 0),
    { .name = "movhpd", .grp = DG_G_SSE_MOVE, .map = DG_MAP_0F, .op = 0x16, .pfx = 0x66, .form = DG_FORM_RM,
      .rk = DG_K_XMM, .mk = DG_K_XMM, .msz = 8, .align = 1, .mem = DG_MEM_ONLY, .traits = DG_T_WREG },
    { .name = "movhps st", .grp = DG_G_SSE_MOVE, .map = DG_MAP_0F, .op = 0x17, .form = DG_FORM_RM, .rk = DG_K_XMM,
      .mk = DG_K_XMM, .msz = 8, .align = 1, .mem = DG_MEM_ONLY, .traits = DG_T_WRM },
    { .name = "movhpd st", .grp = DG_G_SSE_MOVE, .map = DG_MAP_0F, .op = 0x17, .pfx = 0x66, .form = DG_FORM_RM,
      .rk = DG_K_XMM, .mk = DG_K_XMM, .msz = 8, .align = 1, .mem = DG_MEM_ONLY, .traits = DG_T_WRM },
    DG_X("movaps", DG_G_SSE_MOVE, DG_MAP_0F, 0x28, 0, 0, 0),
    DG_X("movapd", DG_G_SSE_MOVE, DG_MAP_0F, 0x28, 0x66, 0, 0),
    { .name = "movaps st", .grp = DG_G_SSE_MOVE, .map = DG_MAP_0F, .op = 0x29, .form = DG_FORM_RM, .rk = DG_K_XMM,
      .mk = DG_K_XMM, .align = 16, .mem = DG_MEM_ANY, .traits = DG_T_WRM },
    { .name = "movapd st", .grp = DG_G_SSE_MOVE, .map = DG_MAP_0F, .op = 0x29, .pfx = 0x66, .form = DG_FORM_RM,
      .rk = DG_K_XMM, .mk = DG_K_XMM, .align = 16, .mem = DG_MEM_ANY, .traits = DG_T_WRM },
    { .name = "movntps", .grp = DG_G_SSE_MOVE, .map = DG_MAP_0F, .op = 0x2b, .form = DG_FORM_RM, .rk = DG_K_XMM,
      .mk = DG_K_XMM, .align = 16, .mem = DG_MEM_ONLY, .traits = DG_T_WRM },
    { .name = "movntpd", .grp = DG_G_SSE_MOVE, .map = DG_MAP_0F, .op = 0x2b, .pfx = 0x66, .form = DG_FORM_RM,
      .rk = DG_K_XMM, .mk = DG_K_XMM, .align = 16, .mem = DG_MEM_ONLY, .traits = DG_T_WRM },
    DG_XG("movmskps", DG_G_SSE_MOVE, DG_MAP_0F, 0x50, 0, DG_K_GPR, DG_K_XMM, DG_SZ_DQ, 0, DG_MEM_REG, 0, DG_T_WREG),
    DG_XG("movmskpd", DG_G_SSE_MOVE, DG_MAP_0F, 0x50, 0x66, DG_K_GPR, DG_K_XMM, DG_SZ_DQ, 0, DG_MEM_REG, 0,
          DG_T_WREG | DG_T_W64),
    DG_XI("shufps", DG_G_SSE_MOVE, DG_MAP_0F, 0xc6, 0, 0, 0, 0),
    DG_XI("shufpd", DG_G_SSE_MOVE, DG_MAP_0F, 0xc6, 0x66, 0, 0, 0),
    DG_XG("movd/movq xmm,rm", DG_G_SSE_MOVE, DG_MAP_0F, 0x6e, 0x66, DG_K_XMM, DG_K_GPR, DG_SZ_DQ, 0, DG_MEM_ANY, 0,
          DG_T_WREG | DG_T_W64),
    DG_XG("movd/movq rm,xmm", DG_G_SSE_MOVE, DG_MAP_0F, 0x7e, 0x66, DG_K_XMM, DG_K_GPR, DG_SZ_DQ, 0, DG_MEM_ANY, 0,
          DG_T_WRM | DG_T_W64),
    DG_X("movdqa", DG_G_SSE_MOVE, DG_MAP_0F, 0x6f, 0x66, 0, 0),
    DG_X("movdqu", DG_G_SSE_MOVE, DG_MAP_0F, 0x6f, 0xf3, 16, 0),
    DG_X("movq xmm,xmm/m64", DG_G_SSE_MOVE, DG_MAP_0F, 0x7e, 0xf3, 8, 0),
    { .name = "movdqa st", .grp = DG_G_SSE_MOVE, .map = DG_MAP_0F, .op = 0x7f, .pfx = 0x66, .form = DG_FORM_RM,
      .rk = DG_K_XMM, .mk = DG_K_XMM, .align = 16, .mem = DG_MEM_ANY, .traits = DG_T_WRM },
    { .name = "movdqu st", .grp = DG_G_SSE_MOVE, .map = DG_MAP_0F, .op = 0x7f, .pfx = 0xf3, .form = DG_FORM_RM,
      .rk = DG_K_XMM, .mk = DG_K_XMM, .msz = 16, .align = 1, .mem = DG_MEM_ANY, .traits = DG_T_WRM },
    { .name = "movq xmm/m64,xmm", .grp = DG_G_SSE_MOVE, .map = DG_MAP_0F, .op = 0xd6, .pfx = 0x66, .form = DG_FORM_RM,
      .rk = DG_K_XMM, .mk = DG_K_XMM, .msz = 8, .align = 1, .mem = DG_MEM_ANY, .traits = DG_T_WRM },
    { .name = "movntdq", .grp = DG_G_SSE_MOVE, .map = DG_MAP_0F, .op = 0xe7, .pfx = 0x66, .form = DG_FORM_RM,
      .rk = DG_K_XMM, .mk = DG_K_XMM, .align = 16, .mem = DG_MEM_ONLY, .traits = DG_T_WRM },
    DG_XG("pinsrw xmm", DG_G_SSE_MOVE, DG_MAP_0F, 0xc4, 0x66, DG_K_XMM, DG_K_GPR, 0, 2, DG_MEM_ANY, DG_IMM_B, DG_T_WREG),
    DG_XG("pextrw r,xmm", DG_G_SSE_MOVE, DG_MAP_0F, 0xc5, 0x66, DG_K_GPR, DG_K_XMM, DG_SZ_DQ, 0, DG_MEM_REG, DG_IMM_B,
          DG_T_WREG | DG_T_W64),
    DG_XG("pmovmskb r,xmm", DG_G_SSE_MOVE, DG_MAP_0F, 0xd7, 0x66, DG_K_GPR, DG_K_XMM, DG_SZ_DQ, 0, DG_MEM_REG, 0,
          DG_T_WREG | DG_T_W64),
    { .name = "maskmovdqu", .grp = DG_G_SSE_MOVE, .fn = dg_unit_maskmov, .op = 0xf7, .pfx = 0x66 },
    { .name = "ldmxcsr/stmxcsr", .grp = DG_G_SSE_MOVE, .fn = dg_unit_ldmxcsr, .pfx = 0 },
    DG_X("movddup", DG_G_SSE_MOVE, DG_MAP_0F, 0x12, 0xf2, 8, 0),
    DG_X("movsldup", DG_G_SSE_MOVE, DG_MAP_0F, 0x12, 0xf3, 0, 0),
    DG_X("movshdup", DG_G_SSE_MOVE, DG_MAP_0F, 0x16, 0xf3, 0, 0),
    { .name = "lddqu", .grp = DG_G_SSE_MOVE, .map = DG_MAP_0F, .op = 0xf0, .pfx = 0xf2, .form = DG_FORM_RM,
      .rk = DG_K_XMM, .mk = DG_K_XMM, .msz = 16, .align = 1, .mem = DG_MEM_ONLY, .traits = DG_T_WREG },

    /* SSE/SSE2 floating point */
    /* MIN/MAX run with DAZ clear: with DAZ, QEMU 5 returns the denormal operand itself where the
     * hardware returns it as zero (SDM vol. 1, 10.2.3.4). */
    DG_FP4("add", 0x58, DG_T2_FPOUT), DG_FP4("mul", 0x59, DG_T2_FPOUT), DG_FP4("sub", 0x5c, DG_T2_FPOUT),
    DG_FP4("min", 0x5d, DG_T2_FPOUT | DG_T2_NODAZ), DG_FP4("div", 0x5e, DG_T2_FPOUT),
    DG_FP4("max", 0x5f, DG_T2_FPOUT | DG_T2_NODAZ), DG_FP4("sqrt", 0x51, DG_T2_FPOUT),
    /* RCPPS/RSQRTPS are approximations whose bits differ between implementations (SDM vol. 2:
     * relative error <= 1.5 * 2^-12); QEMU computes them exactly, so their result is not compared. */
    DG_X("rsqrtps", DG_G_SSE_FP, DG_MAP_0F, 0x52, 0, 0, DG_T_FPMEM | DG_T_FINAL),
    DG_X("rsqrtss", DG_G_SSE_FP, DG_MAP_0F, 0x52, 0xf3, 4, DG_T_FPMEM | DG_T_FINAL),
    DG_X("rcpps", DG_G_SSE_FP, DG_MAP_0F, 0x53, 0, 0, DG_T_FPMEM | DG_T_FINAL),
    DG_X("rcpss", DG_G_SSE_FP, DG_MAP_0F, 0x53, 0xf3, 4, DG_T_FPMEM | DG_T_FINAL),
    DG_X("andps", DG_G_SSE_FP, DG_MAP_0F, 0x54, 0, 0, 0), DG_X("andpd", DG_G_SSE_FP, DG_MAP_0F, 0x54, 0x66, 0, 0),
    DG_X("andnps", DG_G_SSE_FP, DG_MAP_0F, 0x55, 0, 0, 0), DG_X("andnpd", DG_G_SSE_FP, DG_MAP_0F, 0x55, 0x66, 0, 0),
    DG_X("orps", DG_G_SSE_FP, DG_MAP_0F, 0x56, 0, 0, 0), DG_X("orpd", DG_G_SSE_FP, DG_MAP_0F, 0x56, 0x66, 0, 0),
    DG_X("xorps", DG_G_SSE_FP, DG_MAP_0F, 0x57, 0, 0, 0), DG_X("xorpd", DG_G_SSE_FP, DG_MAP_0F, 0x57, 0x66, 0, 0),
    /* CMPPS & co.: predicates 0-7 (imm8[7:3] are ignored by SSE, SDM vol. 2 CMPPS). */
    DG_XI("cmpps", DG_G_SSE_FP, DG_MAP_0F, 0xc2, 0, 0, 7, DG_T_FPMEM),
    DG_XI("cmppd", DG_G_SSE_FP, DG_MAP_0F, 0xc2, 0x66, 0, 7, DG_T_FPMEM),
    DG_XI("cmpss", DG_G_SSE_FP, DG_MAP_0F, 0xc2, 0xf3, 4, 7, DG_T_FPMEM),
    DG_XI("cmpsd", DG_G_SSE_FP, DG_MAP_0F, 0xc2, 0xf2, 8, 7, DG_T_FPMEM),
    { .name = "ucomiss", .grp = DG_G_SSE_FP, .map = DG_MAP_0F, .op = 0x2e, .form = DG_FORM_RM, .rk = DG_K_XMM,
      .mk = DG_K_XMM, .msz = 4, .align = 1, .mem = DG_MEM_ANY, .traits = DG_T_FPMEM, .fdef = DG_ARITH },
    { .name = "ucomisd", .grp = DG_G_SSE_FP, .map = DG_MAP_0F, .op = 0x2e, .pfx = 0x66, .form = DG_FORM_RM,
      .rk = DG_K_XMM, .mk = DG_K_XMM, .msz = 8, .align = 1, .mem = DG_MEM_ANY, .traits = DG_T_FPMEM, .fdef = DG_ARITH },
    { .name = "comiss", .grp = DG_G_SSE_FP, .map = DG_MAP_0F, .op = 0x2f, .form = DG_FORM_RM, .rk = DG_K_XMM,
      .mk = DG_K_XMM, .msz = 4, .align = 1, .mem = DG_MEM_ANY, .traits = DG_T_FPMEM, .fdef = DG_ARITH },
    { .name = "comisd", .grp = DG_G_SSE_FP, .map = DG_MAP_0F, .op = 0x2f, .pfx = 0x66, .form = DG_FORM_RM,
      .rk = DG_K_XMM, .mk = DG_K_XMM, .msz = 8, .align = 1, .mem = DG_MEM_ANY, .traits = DG_T_FPMEM, .fdef = DG_ARITH },
    DG_X2("addsubps", DG_G_SSE_FP, DG_MAP_0F, 0xd0, 0xf2, 0, DG_T_FPMEM, DG_T2_FPOUT),
    DG_X2("addsubpd", DG_G_SSE_FP, DG_MAP_0F, 0xd0, 0x66, 0, DG_T_FPMEM, DG_T2_FPOUT),
    DG_X2("haddps", DG_G_SSE_FP, DG_MAP_0F, 0x7c, 0xf2, 0, DG_T_FPMEM, DG_T2_FPOUT),
    DG_X2("haddpd", DG_G_SSE_FP, DG_MAP_0F, 0x7c, 0x66, 0, DG_T_FPMEM, DG_T2_FPOUT),
    DG_X2("hsubps", DG_G_SSE_FP, DG_MAP_0F, 0x7d, 0xf2, 0, DG_T_FPMEM, DG_T2_FPOUT),
    DG_X2("hsubpd", DG_G_SSE_FP, DG_MAP_0F, 0x7d, 0x66, 0, DG_T_FPMEM, DG_T2_FPOUT),

    /* Conversions */
    { .name = "cvtsi2ss", .grp = DG_G_SSE_CVT, .map = DG_MAP_0F, .op = 0x2a, .pfx = 0xf3, .form = DG_FORM_RM,
      .rk = DG_K_XMM, .mk = DG_K_GPR, .sizes = DG_SZ_DQ, .mem = DG_MEM_ANY, .traits = DG_T_WREG, .traits2 = DG_T2_FPOUT },
    { .name = "cvtsi2sd", .grp = DG_G_SSE_CVT, .map = DG_MAP_0F, .op = 0x2a, .pfx = 0xf2, .form = DG_FORM_RM,
      .rk = DG_K_XMM, .mk = DG_K_GPR, .sizes = DG_SZ_DQ, .mem = DG_MEM_ANY, .traits = DG_T_WREG, .traits2 = DG_T2_FPOUT },
    DG_XG("cvttss2si", DG_G_SSE_CVT, DG_MAP_0F, 0x2c, 0xf3, DG_K_GPR, DG_K_XMM, DG_SZ_DQ, 4, DG_MEM_ANY, 0,
          DG_T_WREG | DG_T_FPMEM),
    DG_XG("cvttsd2si", DG_G_SSE_CVT, DG_MAP_0F, 0x2c, 0xf2, DG_K_GPR, DG_K_XMM, DG_SZ_DQ, 8, DG_MEM_ANY, 0,
          DG_T_WREG | DG_T_FPMEM),
    DG_XG("cvtss2si", DG_G_SSE_CVT, DG_MAP_0F, 0x2d, 0xf3, DG_K_GPR, DG_K_XMM, DG_SZ_DQ, 4, DG_MEM_ANY, 0,
          DG_T_WREG | DG_T_FPMEM),
    DG_XG("cvtsd2si", DG_G_SSE_CVT, DG_MAP_0F, 0x2d, 0xf2, DG_K_GPR, DG_K_XMM, DG_SZ_DQ, 8, DG_MEM_ANY, 0,
          DG_T_WREG | DG_T_FPMEM),
    /* CVTPI2PS/PD switch to MMX mode only with a register source (SDM vol. 2); QEMU 5 switches for
     * the memory form too, which would show up as a tag word difference: register forms only. */
    DG_XG("cvtpi2ps", DG_G_SSE_CVT, DG_MAP_0F, 0x2a, 0, DG_K_XMM, DG_K_MMX, 0, 8, DG_MEM_REG, 0, DG_T_WREG | DG_T_X87),
    DG_XG("cvtpi2pd", DG_G_SSE_CVT, DG_MAP_0F, 0x2a, 0x66, DG_K_XMM, DG_K_MMX, 0, 8, DG_MEM_REG, 0, DG_T_WREG | DG_T_X87),
    DG_XG("cvttps2pi", DG_G_SSE_CVT, DG_MAP_0F, 0x2c, 0, DG_K_MMX, DG_K_XMM, 0, 8, DG_MEM_ANY, 0,
          DG_T_WREG | DG_T_X87 | DG_T_FPMEM),
    DG_XG("cvtps2pi", DG_G_SSE_CVT, DG_MAP_0F, 0x2d, 0, DG_K_MMX, DG_K_XMM, 0, 8, DG_MEM_ANY, 0,
          DG_T_WREG | DG_T_X87 | DG_T_FPMEM),
    { .name = "cvttpd2pi", .grp = DG_G_SSE_CVT, .map = DG_MAP_0F, .op = 0x2c, .pfx = 0x66, .form = DG_FORM_RM,
      .rk = DG_K_MMX, .mk = DG_K_XMM, .align = 16, .mem = DG_MEM_ANY, .traits = DG_T_WREG | DG_T_X87 | DG_T_FPMEM },
    { .name = "cvtpd2pi", .grp = DG_G_SSE_CVT, .map = DG_MAP_0F, .op = 0x2d, .pfx = 0x66, .form = DG_FORM_RM,
      .rk = DG_K_MMX, .mk = DG_K_XMM, .align = 16, .mem = DG_MEM_ANY, .traits = DG_T_WREG | DG_T_X87 | DG_T_FPMEM },
    DG_X2("cvtps2pd", DG_G_SSE_CVT, DG_MAP_0F, 0x5a, 0, 8, DG_T_FPMEM, DG_T2_FPOUT),
    DG_X2("cvtpd2ps", DG_G_SSE_CVT, DG_MAP_0F, 0x5a, 0x66, 0, DG_T_FPMEM, DG_T2_FPOUT),
    DG_X2("cvtss2sd", DG_G_SSE_CVT, DG_MAP_0F, 0x5a, 0xf3, 4, DG_T_FPMEM, DG_T2_FPOUT),
    DG_X2("cvtsd2ss", DG_G_SSE_CVT, DG_MAP_0F, 0x5a, 0xf2, 8, DG_T_FPMEM, DG_T2_FPOUT),
    DG_X2("cvtdq2ps", DG_G_SSE_CVT, DG_MAP_0F, 0x5b, 0, 0, 0, DG_T2_FPOUT),
    DG_X("cvtps2dq", DG_G_SSE_CVT, DG_MAP_0F, 0x5b, 0x66, 0, DG_T_FPMEM),
    DG_X("cvttps2dq", DG_G_SSE_CVT, DG_MAP_0F, 0x5b, 0xf3, 0, DG_T_FPMEM),
    DG_X("cvttpd2dq", DG_G_SSE_CVT, DG_MAP_0F, 0xe6, 0x66, 0, DG_T_FPMEM),
    DG_X2("cvtdq2pd", DG_G_SSE_CVT, DG_MAP_0F, 0xe6, 0xf3, 8, 0, DG_T2_FPOUT),
    DG_X("cvtpd2dq", DG_G_SSE_CVT, DG_MAP_0F, 0xe6, 0xf2, 0, DG_T_FPMEM),

    /* Packed integer (MMX and SSE2 forms) */
    DG_M("punpcklbw mm", DG_G_MMX, DG_MAP_0F, 0x60, 4, 0), DG_X("punpcklbw", DG_G_SSE_INT, DG_MAP_0F, 0x60, 0x66, 0, 0),
    DG_M("punpcklwd mm", DG_G_MMX, DG_MAP_0F, 0x61, 4, 0), DG_X("punpcklwd", DG_G_SSE_INT, DG_MAP_0F, 0x61, 0x66, 0, 0),
    DG_M("punpckldq mm", DG_G_MMX, DG_MAP_0F, 0x62, 4, 0), DG_X("punpckldq", DG_G_SSE_INT, DG_MAP_0F, 0x62, 0x66, 0, 0),
    DG_PI("packsswb", DG_MAP_0F, 0x63), DG_PI("pcmpgtb", DG_MAP_0F, 0x64), DG_PI("pcmpgtw", DG_MAP_0F, 0x65),
    DG_PI("pcmpgtd", DG_MAP_0F, 0x66), DG_PI("packuswb", DG_MAP_0F, 0x67), DG_PI("punpckhbw", DG_MAP_0F, 0x68),
    DG_PI("punpckhwd", DG_MAP_0F, 0x69), DG_PI("punpckhdq", DG_MAP_0F, 0x6a), DG_PI("packssdw", DG_MAP_0F, 0x6b),
    DG_X("punpcklqdq", DG_G_SSE_INT, DG_MAP_0F, 0x6c, 0x66, 0, 0),
    DG_X("punpckhqdq", DG_G_SSE_INT, DG_MAP_0F, 0x6d, 0x66, 0, 0),
    DG_XI("pshufd", DG_G_SSE_INT, DG_MAP_0F, 0x70, 0x66, 0, 0, 0),
    DG_XI("pshufhw", DG_G_SSE_INT, DG_MAP_0F, 0x70, 0xf3, 0, 0, 0),
    DG_XI("pshuflw", DG_G_SSE_INT, DG_MAP_0F, 0x70, 0xf2, 0, 0, 0),
    DG_SHI2("psrlw", 0x71, 2), DG_SHI2("psraw", 0x71, 4), DG_SHI2("psllw", 0x71, 6),
    DG_SHI2("psrld", 0x72, 2), DG_SHI2("psrad", 0x72, 4), DG_SHI2("pslld", 0x72, 6),
    DG_SHI2("psrlq", 0x73, 2), DG_SHI2("psllq", 0x73, 6),
    DG_SHI("psrldq", 0x73, 3, 0x66, DG_K_XMM, DG_G_SSE_INT, 0), DG_SHI("pslldq", 0x73, 7, 0x66, DG_K_XMM, DG_G_SSE_INT, 0),
    DG_PI("pcmpeqb", DG_MAP_0F, 0x74), DG_PI("pcmpeqw", DG_MAP_0F, 0x75), DG_PI("pcmpeqd", DG_MAP_0F, 0x76),
    DG_PI("psrlw", DG_MAP_0F, 0xd1), DG_PI("psrld", DG_MAP_0F, 0xd2), DG_PI("psrlq", DG_MAP_0F, 0xd3),
    DG_PI("paddq", DG_MAP_0F, 0xd4), DG_PI("pmullw", DG_MAP_0F, 0xd5), DG_PI("psubusb", DG_MAP_0F, 0xd8),
    DG_PI("psubusw", DG_MAP_0F, 0xd9), DG_PI("pminub", DG_MAP_0F, 0xda), DG_PI("pand", DG_MAP_0F, 0xdb),
    DG_PI("paddusb", DG_MAP_0F, 0xdc), DG_PI("paddusw", DG_MAP_0F, 0xdd), DG_PI("pmaxub", DG_MAP_0F, 0xde),
    DG_PI("pandn", DG_MAP_0F, 0xdf), DG_PI("pavgb", DG_MAP_0F, 0xe0), DG_PI("psraw", DG_MAP_0F, 0xe1),
    DG_PI("psrad", DG_MAP_0F, 0xe2), DG_PI("pavgw", DG_MAP_0F, 0xe3), DG_PI("pmulhuw", DG_MAP_0F, 0xe4),
    DG_PI("pmulhw", DG_MAP_0F, 0xe5), DG_PI("psubsb", DG_MAP_0F, 0xe8), DG_PI("psubsw", DG_MAP_0F, 0xe9),
    DG_PI("pminsw", DG_MAP_0F, 0xea), DG_PI("por", DG_MAP_0F, 0xeb), DG_PI("paddsb", DG_MAP_0F, 0xec),
    DG_PI("paddsw", DG_MAP_0F, 0xed), DG_PI("pmaxsw", DG_MAP_0F, 0xee), DG_PI("pxor", DG_MAP_0F, 0xef),
    DG_PI("psllw", DG_MAP_0F, 0xf1), DG_PI("pslld", DG_MAP_0F, 0xf2), DG_PI("psllq", DG_MAP_0F, 0xf3),
    DG_PI("pmuludq", DG_MAP_0F, 0xf4), DG_PI("pmaddwd", DG_MAP_0F, 0xf5), DG_PI("psadbw", DG_MAP_0F, 0xf6),
    DG_PI("psubb", DG_MAP_0F, 0xf8), DG_PI("psubw", DG_MAP_0F, 0xf9), DG_PI("psubd", DG_MAP_0F, 0xfa),
    DG_PI("psubq", DG_MAP_0F, 0xfb), DG_PI("paddb", DG_MAP_0F, 0xfc), DG_PI("paddw", DG_MAP_0F, 0xfd),
    DG_PI("paddd", DG_MAP_0F, 0xfe),

    /* MMX-only forms */
    DG_XG("movd/movq mm,rm", DG_G_MMX, DG_MAP_0F, 0x6e, 0, DG_K_MMX, DG_K_GPR, DG_SZ_DQ, 0, DG_MEM_ANY, 0,
          DG_T_WREG | DG_T_X87),
    DG_XG("movd/movq rm,mm", DG_G_MMX, DG_MAP_0F, 0x7e, 0, DG_K_MMX, DG_K_GPR, DG_SZ_DQ, 0, DG_MEM_ANY, 0,
          DG_T_WRM | DG_T_X87),
    DG_M("movq mm,mm/m64", DG_G_MMX, DG_MAP_0F, 0x6f, 8, 0),
    { .name = "movq mm/m64,mm", .grp = DG_G_MMX, .map = DG_MAP_0F, .op = 0x7f, .form = DG_FORM_RM, .rk = DG_K_MMX,
      .mk = DG_K_MMX, .msz = 8, .mem = DG_MEM_ANY, .traits = DG_T_WRM | DG_T_X87 },
    { .name = "movntq", .grp = DG_G_MMX, .map = DG_MAP_0F, .op = 0xe7, .form = DG_FORM_RM, .rk = DG_K_MMX,
      .mk = DG_K_MMX, .msz = 8, .mem = DG_MEM_ONLY, .traits = DG_T_WRM | DG_T_X87 },
    { .name = "pshufw", .grp = DG_G_MMX, .map = DG_MAP_0F, .op = 0x70, .form = DG_FORM_RM, .rk = DG_K_MMX,
      .mk = DG_K_MMX, .msz = 8, .mem = DG_MEM_ANY, .imm = DG_IMM_B, .traits = DG_T_WREG | DG_T_X87 },
    DG_XG("pinsrw mm", DG_G_MMX, DG_MAP_0F, 0xc4, 0, DG_K_MMX, DG_K_GPR, 0, 2, DG_MEM_ANY, DG_IMM_B,
          DG_T_WREG | DG_T_X87),
    DG_XG("pextrw r,mm", DG_G_MMX, DG_MAP_0F, 0xc5, 0, DG_K_GPR, DG_K_MMX, DG_SZ_DQ, 0, DG_MEM_REG, DG_IMM_B,
          DG_T_WREG | DG_T_X87),
    DG_XG("pmovmskb r,mm", DG_G_MMX, DG_MAP_0F, 0xd7, 0, DG_K_GPR, DG_K_MMX, DG_SZ_DQ, 0, DG_MEM_REG, 0,
          DG_T_WREG | DG_T_X87),
    DG_XG("movq2dq", DG_G_MMX, DG_MAP_0F, 0xd6, 0xf3, DG_K_XMM, DG_K_MMX, 0, 0, DG_MEM_REG, 0, DG_T_WREG | DG_T_X87),
    DG_XG("movdq2q", DG_G_MMX, DG_MAP_0F, 0xd6, 0xf2, DG_K_MMX, DG_K_XMM, 0, 0, DG_MEM_REG, 0, DG_T_WREG | DG_T_X87),
    DG_SPECIAL("maskmovq", DG_G_MMX, dg_unit_maskmov, 0xf7, 0, 0, 0, 0),
    DG_SPECIAL("emms", DG_G_MMX, dg_unit_emms, 0x77, 0, 0, 0, DG_T_X87),

    /* SSSE3 (0F 38 00-1E, 0F 3A 0F) */
    DG_PIS("pshufb", DG_MAP_0F38, 0x00, DG_G_SSSE3), DG_PH("phaddw", 0x01), DG_PH("phaddd", 0x02),
    DG_PH("phaddsw", 0x03), DG_PIS("pmaddubsw", DG_MAP_0F38, 0x04, DG_G_SSSE3), DG_PH("phsubw", 0x05),
    DG_PH("phsubd", 0x06), DG_PH("phsubsw", 0x07),
    DG_PIS("psignb", DG_MAP_0F38, 0x08, DG_G_SSSE3), DG_PIS("psignw", DG_MAP_0F38, 0x09, DG_G_SSSE3),
    DG_PIS("psignd", DG_MAP_0F38, 0x0a, DG_G_SSSE3), DG_PIS("pmulhrsw", DG_MAP_0F38, 0x0b, DG_G_SSSE3),
    DG_PIS("pabsb", DG_MAP_0F38, 0x1c, DG_G_SSSE3), DG_PIS("pabsw", DG_MAP_0F38, 0x1d, DG_G_SSSE3),
    DG_PIS("pabsd", DG_MAP_0F38, 0x1e, DG_G_SSSE3),
    { .name = "palignr mm", .grp = DG_G_MMX, .map = DG_MAP_0F3A, .op = 0x0f, .form = DG_FORM_RM, .rk = DG_K_MMX,
      .mk = DG_K_MMX, .msz = 8, .mem = DG_MEM_ANY, .imm = DG_IMM_B, .traits = DG_T_WREG | DG_T_X87 | DG_T_UCNOTAG },
    DG_XI("palignr", DG_G_SSSE3, DG_MAP_0F3A, 0x0f, 0x66, 0, 0, 0),

    /* SSE4.1 */
    DG_X("pblendvb", DG_G_SSE41, DG_MAP_0F38, 0x10, 0x66, 0, 0),
    DG_X("blendvps", DG_G_SSE41, DG_MAP_0F38, 0x14, 0x66, 0, 0),
    DG_X("blendvpd", DG_G_SSE41, DG_MAP_0F38, 0x15, 0x66, 0, 0),
    { .name = "ptest", .grp = DG_G_SSE41, .map = DG_MAP_0F38, .op = 0x17, .pfx = 0x66, .form = DG_FORM_RM,
      .rk = DG_K_XMM, .mk = DG_K_XMM, .align = 16, .mem = DG_MEM_ANY, .fdef = DG_ARITH },
    DG_X("pmovsxbw", DG_G_SSE41, DG_MAP_0F38, 0x20, 0x66, 8, 0), DG_X("pmovsxbd", DG_G_SSE41, DG_MAP_0F38, 0x21, 0x66, 4, 0),
    DG_X("pmovsxbq", DG_G_SSE41, DG_MAP_0F38, 0x22, 0x66, 2, 0), DG_X("pmovsxwd", DG_G_SSE41, DG_MAP_0F38, 0x23, 0x66, 8, 0),
    DG_X("pmovsxwq", DG_G_SSE41, DG_MAP_0F38, 0x24, 0x66, 4, 0), DG_X("pmovsxdq", DG_G_SSE41, DG_MAP_0F38, 0x25, 0x66, 8, 0),
    DG_X("pmuldq", DG_G_SSE41, DG_MAP_0F38, 0x28, 0x66, 0, 0), DG_X("pcmpeqq", DG_G_SSE41, DG_MAP_0F38, 0x29, 0x66, 0, 0),
    { .name = "movntdqa", .grp = DG_G_SSE41, .map = DG_MAP_0F38, .op = 0x2a, .pfx = 0x66, .form = DG_FORM_RM,
      .rk = DG_K_XMM, .mk = DG_K_XMM, .align = 16, .mem = DG_MEM_ONLY, .traits = DG_T_WREG },
    DG_X("packusdw", DG_G_SSE41, DG_MAP_0F38, 0x2b, 0x66, 0, 0),
    DG_X("pmovzxbw", DG_G_SSE41, DG_MAP_0F38, 0x30, 0x66, 8, 0), DG_X("pmovzxbd", DG_G_SSE41, DG_MAP_0F38, 0x31, 0x66, 4, 0),
    DG_X("pmovzxbq", DG_G_SSE41, DG_MAP_0F38, 0x32, 0x66, 2, 0), DG_X("pmovzxwd", DG_G_SSE41, DG_MAP_0F38, 0x33, 0x66, 8, 0),
    DG_X("pmovzxwq", DG_G_SSE41, DG_MAP_0F38, 0x34, 0x66, 4, 0), DG_X("pmovzxdq", DG_G_SSE41, DG_MAP_0F38, 0x35, 0x66, 8, 0),
    DG_X("pminsb", DG_G_SSE41, DG_MAP_0F38, 0x38, 0x66, 0, 0), DG_X("pminsd", DG_G_SSE41, DG_MAP_0F38, 0x39, 0x66, 0, 0),
    DG_X("pminuw", DG_G_SSE41, DG_MAP_0F38, 0x3a, 0x66, 0, 0), DG_X("pminud", DG_G_SSE41, DG_MAP_0F38, 0x3b, 0x66, 0, 0),
    DG_X("pmaxsb", DG_G_SSE41, DG_MAP_0F38, 0x3c, 0x66, 0, 0), DG_X("pmaxsd", DG_G_SSE41, DG_MAP_0F38, 0x3d, 0x66, 0, 0),
    DG_X("pmaxuw", DG_G_SSE41, DG_MAP_0F38, 0x3e, 0x66, 0, 0), DG_X("pmaxud", DG_G_SSE41, DG_MAP_0F38, 0x3f, 0x66, 0, 0),
    DG_X("pmulld", DG_G_SSE41, DG_MAP_0F38, 0x40, 0x66, 0, 0), DG_X("phminposuw", DG_G_SSE41, DG_MAP_0F38, 0x41, 0x66, 0, 0),
    DG_XI2("roundps", DG_G_SSE41, DG_MAP_0F3A, 0x08, 0x66, 0, 0x0f, DG_T_FPMEM, DG_T2_FPOUT),
    DG_XI2("roundpd", DG_G_SSE41, DG_MAP_0F3A, 0x09, 0x66, 0, 0x0f, DG_T_FPMEM, DG_T2_FPOUT),
    DG_XI2("roundss", DG_G_SSE41, DG_MAP_0F3A, 0x0a, 0x66, 4, 0x0f, DG_T_FPMEM, DG_T2_FPOUT),
    DG_XI2("roundsd", DG_G_SSE41, DG_MAP_0F3A, 0x0b, 0x66, 8, 0x0f, DG_T_FPMEM, DG_T2_FPOUT),
    DG_XI("blendps", DG_G_SSE41, DG_MAP_0F3A, 0x0c, 0x66, 0, 0x0f, 0),
    DG_XI("blendpd", DG_G_SSE41, DG_MAP_0F3A, 0x0d, 0x66, 0, 0x03, 0),
    DG_XI("pblendw", DG_G_SSE41, DG_MAP_0F3A, 0x0e, 0x66, 0, 0, 0),
    DG_XG("pextrb", DG_G_SSE41, DG_MAP_0F3A, 0x14, 0x66, DG_K_XMM, DG_K_GPR, DG_SZ_DQ, 1, DG_MEM_ANY, DG_IMM_B,
          DG_T_WRM | DG_T_W64),
    DG_XG("pextrw rm,xmm", DG_G_SSE41, DG_MAP_0F3A, 0x15, 0x66, DG_K_XMM, DG_K_GPR, DG_SZ_DQ, 2, DG_MEM_ANY, DG_IMM_B,
          DG_T_WRM | DG_T_W64),
    DG_XG("pextrd/pextrq", DG_G_SSE41, DG_MAP_0F3A, 0x16, 0x66, DG_K_XMM, DG_K_GPR, DG_SZ_DQ, 0, DG_MEM_ANY, DG_IMM_B,
          DG_T_WRM | DG_T_W64),
    DG_XG("extractps", DG_G_SSE41, DG_MAP_0F3A, 0x17, 0x66, DG_K_XMM, DG_K_GPR, DG_SZ_DQ, 4, DG_MEM_ANY, DG_IMM_B,
          DG_T_WRM | DG_T_W64),
    DG_XG("pinsrb", DG_G_SSE41, DG_MAP_0F3A, 0x20, 0x66, DG_K_XMM, DG_K_GPR, 0, 1, DG_MEM_ANY, DG_IMM_B, DG_T_WREG),
    DG_XI("insertps", DG_G_SSE41, DG_MAP_0F3A, 0x21, 0x66, 4, 0, 0),
    DG_XG("pinsrd/pinsrq", DG_G_SSE41, DG_MAP_0F3A, 0x22, 0x66, DG_K_XMM, DG_K_GPR, DG_SZ_DQ, 0, DG_MEM_ANY, DG_IMM_B,
          DG_T_WREG | DG_T_W64),
    /* DPPS/DPPD: products restricted, see DG_IMM_DPPS/DG_IMM_DPPD in diff-gen.h. */
    { .name = "dpps", .grp = DG_G_SSE41, .map = DG_MAP_0F3A, .op = 0x40, .pfx = 0x66, .form = DG_FORM_RM,
      .rk = DG_K_XMM, .mk = DG_K_XMM, .align = 16, .mem = DG_MEM_ANY, .imm = DG_IMM_DPPS,
      .traits = DG_T_WREG | DG_T_FPMEM, .traits2 = DG_T2_FPOUT },
    { .name = "dppd", .grp = DG_G_SSE41, .map = DG_MAP_0F3A, .op = 0x41, .pfx = 0x66, .form = DG_FORM_RM,
      .rk = DG_K_XMM, .mk = DG_K_XMM, .align = 16, .mem = DG_MEM_ANY, .imm = DG_IMM_DPPD,
      .traits = DG_T_WREG | DG_T_FPMEM, .traits2 = DG_T2_FPOUT },
    DG_XI("mpsadbw", DG_G_SSE41, DG_MAP_0F3A, 0x42, 0x66, 0, 0x07, 0),

    /* SSE4.2 */
    DG_X("pcmpgtq", DG_G_SSE42, DG_MAP_0F38, 0x37, 0x66, 0, 0),
    { .name = "pcmpestrm", .grp = DG_G_SSE42, .fn = dg_unit_pcmpestr, .map = DG_MAP_0F3A, .op = 0x60, .pfx = 0x66, .traits2 = DG_T2_WXMM0, .form = DG_FORM_RM,
      .rk = DG_K_XMM, .mk = DG_K_XMM, .msz = 16, .align = 1, .mem = DG_MEM_ANY, .imm = DG_IMM_STR, .sizes = DG_SZ_DQ,
      .traits = DG_T_W64, .fdef = DG_ARITH },
    { .name = "pcmpestri", .grp = DG_G_SSE42, .fn = dg_unit_pcmpestr, .map = DG_MAP_0F3A, .op = 0x61, .pfx = 0x66, .form = DG_FORM_RM,
      .rk = DG_K_XMM, .mk = DG_K_XMM, .msz = 16, .align = 1, .mem = DG_MEM_ANY, .imm = DG_IMM_STR, .sizes = DG_SZ_DQ,
      .traits = DG_T_W64 | DG_T_WRCX, .fdef = DG_ARITH },
    { .name = "pcmpistrm", .grp = DG_G_SSE42, .map = DG_MAP_0F3A, .op = 0x62, .pfx = 0x66, .traits2 = DG_T2_WXMM0, .form = DG_FORM_RM,
      .rk = DG_K_XMM, .mk = DG_K_XMM, .msz = 16, .align = 1, .mem = DG_MEM_ANY, .imm = DG_IMM_STR, .fdef = DG_ARITH },
    { .name = "pcmpistri", .grp = DG_G_SSE42, .map = DG_MAP_0F3A, .op = 0x63, .pfx = 0x66, .form = DG_FORM_RM,
      .rk = DG_K_XMM, .mk = DG_K_XMM, .msz = 16, .align = 1, .mem = DG_MEM_ANY, .imm = DG_IMM_STR,
      .traits = DG_T_WRCX, .fdef = DG_ARITH },

    /* x87 subset */
    DG_SPECIAL("x87 arith", DG_G_X87, dg_unit_x87, 0, 0, 0, 0, 0),
    DG_SPECIAL("x87 fcomi", DG_G_X87, dg_unit_x87, 0, 0, 0, 1, 0),
    DG_SPECIAL("x87 unary", DG_G_X87, dg_unit_x87, 0, 0, 0, 2, 0),
    DG_SPECIAL("x87 fcom/fnstsw/fistp", DG_G_X87, dg_unit_x87, 0, 0, 0, 3, 0),
    { .name = NULL },
};

#endif
