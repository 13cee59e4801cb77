/* diff-gen.h - tstIemDiff's sequence generator: machine layout, x86-64 encoder, memory operands, flag bookkeeping. */
#ifndef VIREO_DIFF_GEN_H
#define VIREO_DIFF_GEN_H

/*
 * Included by tstIemDiff.c only (each tst*.c is its own program).  The generator builds a
 * sequence of "units" (one instruction under test plus the instructions that prepare it: a
 * MOV that points a base register into the data area, a MOV CL that fixes a shift count, a
 * CMP that makes the flags a later instruction reads defined again) and ends it with HLT.
 * Every instruction it emits is decoded again with Zydis (length and mnemonic), so an
 * encoder mistake shows up as a generator error instead of a false divergence, and the
 * mnemonics feed the coverage check.
 *
 * Architecturally undefined results are never compared: the generator keeps the set of
 * arithmetic flags that are undefined at each point (per template, operand size and known
 * shift count, from the "Flags Affected" section of each instruction in the Intel SDM
 * vol. 2), inserts a flag definer before any instruction that would read an undefined flag,
 * and masks the flags still undefined where the sequence ends or faults.  Instructions whose
 * register result is implementation-specific (RCPPS & co.) only appear as the last unit and
 * their destination is not compared.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <Zydis/Zydis.h>

/* ---- Machine layout shared by both sides ---------------------------------------------------- */

#define DG_CODE_BASE   UINT64_C(0x24000)  /* one page of code (above the harness tables, IEMH_FREE_GPA) */
#define DG_CODE_BYTES  0x1000u
/*
 * Data: 0x20000 integer page, 0x21000 floating-point data (initially without NaN/Inf patterns,
 * see dg_fp32), 0x21800 x87 load area (the same, and never written: see dg_unit_x87), 0x22000
 * stack page.  Everything is compared; only the x87 area is never a store target.
 */
#define DG_DATA_BASE   UINT64_C(0x20000)
#define DG_DATA_BYTES  0x2000u
#define DG_FP_BASE     (DG_DATA_BASE + 0x1000)
#define DG_X87_BASE    (DG_DATA_BASE + 0x1800)
#define DG_WR_END      DG_X87_BASE             /* stores go below this, or into the stack page */
#define DG_STACK_BASE  (DG_DATA_BASE + DG_DATA_BYTES)
#define DG_STACK_BYTES 0x1000u
#define DG_MEM_BYTES   (DG_DATA_BYTES + DG_STACK_BYTES)
#define DG_MEM_END     (DG_DATA_BASE + DG_MEM_BYTES)
#define DG_FS_BASE     UINT64_C(0x4000)   /* FS/GS-relative operands reach the data area through these bases */
#define DG_GS_BASE     UINT64_C(0x18000)
#define DG_RSP_INIT    (DG_STACK_BASE + 0x800)

#define DG_CODE_MAX    1024u       /* bytes of one sequence */
#define DG_INSN_MAX    128u        /* instructions of one sequence, prologues included */
#define DG_UNITS_MAX   8u

/* RFLAGS bits (Intel SDM vol. 1, 3.4.3). */
#define DG_CF 0x001u
#define DG_PF 0x004u
#define DG_AF 0x010u
#define DG_ZF 0x040u
#define DG_SF 0x080u
#define DG_DF 0x400u
#define DG_OF 0x800u
#define DG_ARITH (DG_CF | DG_PF | DG_AF | DG_ZF | DG_SF | DG_OF)
#define DG_SZAPC (DG_SF | DG_ZF | DG_AF | DG_PF | DG_CF)
#define DG_SZAP  (DG_SF | DG_ZF | DG_AF | DG_PF)
#define DG_SZP   (DG_SF | DG_ZF | DG_PF)

/* The state both implementations start from and end in. */
struct dg_state {
    uint64_t gpr[16];
    uint64_t rip;
    uint64_t rflags;
    uint8_t xmm[16][16];
    uint32_t mxcsr;
    uint16_t fcw, fsw;
    uint8_t ftw;              /* abridged tag: bit i set = physical register i is not empty */
    uint8_t st[8][10];        /* ST(0)..ST(7), 80-bit */
    uint8_t mem[DG_MEM_BYTES];
};

/* One emitted instruction. */
struct dg_insn {
    uint16_t off;             /* offset from DG_CODE_BASE */
    uint8_t len;
    uint16_t tmpl;            /* template of the unit it belongs to */
    uint16_t mnemonic;        /* ZydisMnemonic of the emitted bytes */
    bool aux;                 /* a preparing instruction, not the one under test */
    uint32_t undef_before;    /* flags undefined when this instruction starts */
};

struct dg_seq {
    struct dg_state init;
    uint8_t code[DG_CODE_MAX];
    unsigned len;             /* bytes, including the final HLT */
    unsigned ninsn;           /* instructions, including the final HLT */
    struct dg_insn insn[DG_INSN_MAX];
    uint32_t undef_end;       /* flags undefined when the HLT is reached */
    uint16_t dc_gpr, dc_xmm;  /* registers whose final contents are not compared */
    bool uses_x87;            /* compare the x87/MMX state too */
    bool uses_mmx;            /* an MMX register was written: compare only the low 64 bits of ST(i) */
    bool no_ftw;              /* do not compare the tag word (DG_T_UCNOTAG) */
    bool bad;                 /* the generator ran out of room or emitted bytes Zydis rejects */
    char bad_why[96];
};

/* ---- Random numbers (splitmix64: the whole run follows from one seed) ----------------------- */

struct dg_rng {
    uint64_t s;
};

static uint64_t dg_mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t dg_rand(struct dg_rng *r)
{
    return dg_mix(r->s += 0x9e3779b97f4a7c15ull);
}

/* A stream per (seed, stream number): mixed so that neighbouring seeds do not share streams. */
static void dg_rng_seed(struct dg_rng *r, uint64_t seed, uint64_t stream)
{
    r->s = dg_mix(seed ^ dg_mix(stream + 0x632be59bd9b4e019ull));
}

static unsigned dg_below(struct dg_rng *r, unsigned n)
{
    return n ? (unsigned)(dg_rand(r) % n) : 0;
}

static bool dg_chance(struct dg_rng *r, unsigned one_in)
{
    return dg_below(r, one_in) == 0;
}

/* Integer values that find boundary bugs more often than uniform ones. */
static uint64_t dg_rand_int(struct dg_rng *r)
{
    static const uint64_t special[] = {
        0, 1, 2, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff,
        0x100000000ull, 0x7fffffffffffffffull, 0x8000000000000000ull, ~0ull, ~1ull, 0x8000000000000001ull,
    };
    switch (dg_below(r, 8)) {
    case 0:
        return special[dg_below(r, sizeof(special) / sizeof(special[0]))];
    case 1:
        return dg_rand(r) & 0xff;
    case 2:
        return (uint64_t)(int64_t)(int8_t)dg_rand(r);
    case 3:
        return dg_rand(r) & 0xffffffffu;
    default:
        return dg_rand(r);
    }
}

/*
 * Floating-point lanes without NaN and infinity patterns, plus a few zeros, denormals and
 * extremes.  Why no NaNs: with two NaN operands SSE returns the first one (SDM vol. 1,
 * table 4-7) while Unicorn 2.0.1 (QEMU 5 softfloat pickNaN) applies the x87 rule (larger
 * significand), so a lane where two NaNs meet would be a known Unicorn difference.  NaNs still
 * arise from invalid operations (0/0, Inf-Inf are reachable through overflow) and from the
 * integer page of the data area.
 */
static uint32_t dg_fp32(struct dg_rng *r)
{
    static const uint32_t special[] = { 0, 0x80000000u, 0x3f800000u, 0xbf800000u, 0x00000001u, 0x807fffffu,
                                        0x7f7fffffu, 0xff7fffffu, 0x00800000u, 0x4f000000u, 0xcf000000u, 0x3f000000u };
    uint32_t w = (uint32_t)dg_rand(r);
    if (dg_chance(r, 8))
        return special[dg_below(r, sizeof(special) / sizeof(special[0]))];
    if (((w >> 23) & 0xff) == 0xff)
        w ^= 1u << 23;
    if (dg_chance(r, 2)) /* keep most values near 1.0 so that sums and products stay finite */
        w = (w & 0x807fffffu) | ((uint32_t)(120 + dg_below(r, 16)) << 23);
    return w;
}

static uint64_t dg_fp64(struct dg_rng *r)
{
    static const uint64_t special[] = { 0, 0x8000000000000000ull, 0x3ff0000000000000ull, 0x0000000000000001ull,
                                        0x7fefffffffffffffull, 0x0010000000000000ull, 0x41e0000000000000ull,
                                        0xc3e0000000000000ull, 0x3fe0000000000000ull };
    uint64_t w = dg_rand(r);
    if (dg_chance(r, 8))
        return special[dg_below(r, sizeof(special) / sizeof(special[0]))];
    if (((w >> 52) & 0x7ff) == 0x7ff)
        w ^= 1ull << 52;
    if (((w >> 23) & 0xff) == 0xff) /* the low half must not be a float NaN either */
        w ^= 1ull << 23;
    if ((((w >> 32) >> 23) & 0xff) == 0xff)
        w ^= 1ull << 55;
    if (dg_chance(r, 2))
        w = (w & 0x800fffffffffffffull) | ((uint64_t)(1015 + dg_below(r, 16)) << 52);
    return w;
}

/* Fills 16 bytes with float or double lanes, or with raw integers. */
static void dg_fill_vec(struct dg_rng *r, uint8_t *p)
{
    switch (dg_below(r, 3)) {
    case 0:
        for (unsigned i = 0; i < 4; i++) {
            uint32_t v = dg_fp32(r);
            memcpy(p + 4 * i, &v, 4);
        }
        break;
    case 1:
        for (unsigned i = 0; i < 2; i++) {
            uint64_t v = dg_fp64(r);
            memcpy(p + 8 * i, &v, 8);
        }
        break;
    default:
        for (unsigned i = 0; i < 2; i++) {
            uint64_t v = dg_rand_int(r);
            if ((((v >> 23) & 0xff) == 0xff) || ((((v >> 32) >> 23) & 0xff) == 0xff))
                v &= ~((1ull << 23) | (1ull << 55)); /* integers too must not form float NaNs */
            memcpy(p + 8 * i, &v, 8);
        }
        break;
    }
}

/* ---- Templates ------------------------------------------------------------------------------- */

enum dg_group {
    DG_G_ALU, DG_G_SHIFT, DG_G_MULDIV, DG_G_BIT, DG_G_MOVE, DG_G_BRANCH, DG_G_STACK, DG_G_STRING,
    DG_G_FAULT, DG_G_SSE_MOVE, DG_G_SSE_INT, DG_G_SSE_FP, DG_G_SSE_CVT, DG_G_SSSE3, DG_G_SSE41, DG_G_SSE42,
    DG_G_MMX, DG_G_X87, DG_G_COUNT
};

static const char *const g_dg_group_names[DG_G_COUNT] = {
    "alu", "shift", "muldiv", "bit", "move", "branch", "stack", "string",
    "fault", "sse_move", "sse_int", "sse_fp", "sse_cvt", "ssse3", "sse41", "sse42",
    "mmx", "x87",
};

enum { DG_MAP_1 = 0, DG_MAP_0F, DG_MAP_0F38, DG_MAP_0F3A };

enum dg_form {
    DG_FORM_NONE = 0, /* opcode only */
    DG_FORM_RM,       /* ModRM.reg and ModRM.rm operands */
    DG_FORM_EXT,      /* ModRM.reg is an opcode extension; one rm operand */
    DG_FORM_OPR,      /* register in the opcode's low three bits */
    DG_FORM_ACC,      /* accumulator implied, no ModRM (04, 05, A8, ...) */
};

enum dg_kind { DG_K_NONE = 0, DG_K_GPR, DG_K_XMM, DG_K_MMX };

#define DG_SZ_B 1u
#define DG_SZ_W 2u
#define DG_SZ_D 4u
#define DG_SZ_Q 8u
#define DG_SZ_WDQ (DG_SZ_W | DG_SZ_D | DG_SZ_Q)
#define DG_SZ_DQ  (DG_SZ_D | DG_SZ_Q)

enum dg_imm { DG_IMM_NONE = 0, DG_IMM_B, DG_IMM_W, DG_IMM_Z, DG_IMM_V, DG_IMM_STR, DG_IMM_DPPS, DG_IMM_DPPD };

enum { DG_MEM_REG = 0, DG_MEM_ONLY, DG_MEM_ANY };

#define DG_T_WREG  0x0001u /* the ModRM.reg (or +r) operand is written */
#define DG_T_WRM   0x0002u /* the ModRM.rm operand is written */
#define DG_T_LOCK  0x0004u /* LOCK is allowed with the memory form */
#define DG_T_COND  0x0008u /* condition code in the opcode's low nibble: reads its flags */
#define DG_T_FINAL 0x0010u /* last unit only; its ModRM.reg destination is not compared */
#define DG_T_X87   0x0020u /* touches x87/MMX state: compare it */
#define DG_T_FPMEM 0x0040u /* floating-point memory operand: use the NaN-free page */
#define DG_T_EXTR  0x0080u /* ModRM.reg field is random (ignored by the instruction, e.g. SETcc) */
#define DG_T_NOBODY 0x0100u /* never inside a branch/loop body */
#define DG_T_W64   0x0200u /* REX.W is the only size selector (D/Q), even with a mandatory 66 */
#define DG_T_LAST  0x0400u /* last unit only (faults: nothing after them would run) */
#define DG_T_WRCX  0x0800u /* writes RCX implicitly (never inside a LOOP body) */
#define DG_T_NOREXW 0x1000u /* no random REX.W (it would change the instruction) */
#define DG_T_INVALID 0x2000u /* the encoding is invalid on purpose (#UD expected) */
#define DG_T_UCNOTAG 0x4000u /* the x87 tag word is not compared after it (see DG_PIS in diff-simd.h) */
#define DG_T_DIFFREG 0x8000u /* register form with two different registers (see DG_PH in diff-simd.h) */
#define DG_T2_NODAZ  0x01u   /* runs with MXCSR.DAZ clear (see DG_FP4 in diff-simd.h) */
#define DG_T2_FPOUT  0x02u   /* its XMM result is floating point computed from clean inputs (see xmm_taint) */
#define DG_T2_WXMM0  0x04u   /* writes XMM0 implicitly (PCMPxSTRM) */

struct dg_gen;
struct dg_tmpl;
typedef void dg_unit_fn(struct dg_gen *g, const struct dg_tmpl *t);

struct dg_tmpl {
    const char *name;
    dg_unit_fn *fn;           /* unit builder; NULL = dg_unit_generic */
    uint8_t grp;
    uint8_t map, op, pfx;     /* opcode map, opcode byte, mandatory prefix (0x66, 0xf2, 0xf3) or 0 */
    uint8_t form;
    uint8_t ext;              /* ModRM.reg for DG_FORM_EXT */
    uint8_t sizes;            /* DG_SZ_* operand sizes */
    uint8_t imm;              /* enum dg_imm */
    uint8_t rk, mk;           /* operand kinds of ModRM.reg / ModRM.rm */
    uint8_t rsz, msz;         /* fixed operand sizes in bytes (0 = the operand size; XMM memory 16) */
    uint8_t mem;              /* DG_MEM_* */
    uint8_t align;            /* alignment the memory operand must have (16: MOVAPS & co.) */
    uint16_t traits;
    uint16_t fread, fdef, fund;
    uint8_t immmask;          /* imm8 is ANDed with this (0 = any byte) */
    uint8_t arg;              /* builder-specific */
    uint8_t traits2;          /* DG_T2_* */
};

/* Table entry shorthands. */
#define DG_RM(nm, grp_, map_, op_, pfx_, sz, tr, fr, fd, fu)                                                    \
    { .name = nm, .grp = grp_, .map = map_, .op = op_, .pfx = pfx_, .form = DG_FORM_RM, .sizes = sz,         \
      .rk = DG_K_GPR, .mk = DG_K_GPR, .mem = DG_MEM_ANY, .traits = tr, .fread = fr, .fdef = fd, .fund = fu }
#define DG_EXT(nm, grp_, map_, op_, x, sz, im, tr, fr, fd, fu)                                                  \
    { .name = nm, .grp = grp_, .map = map_, .op = op_, .form = DG_FORM_EXT, .ext = x, .sizes = sz, .imm = im, \
      .mk = DG_K_GPR, .mem = DG_MEM_ANY, .traits = tr, .fread = fr, .fdef = fd, .fund = fu }
#define DG_ACC(nm, grp_, op_, sz, im, fr, fd, fu)                                                               \
    { .name = nm, .grp = grp_, .op = op_, .form = DG_FORM_ACC, .sizes = sz, .imm = im, .fread = fr,          \
      .fdef = fd, .fund = fu }
#define DG_OP(nm, grp_, map_, op_, pfx_, sz, tr, fr, fd, fu)                                                    \
    { .name = nm, .grp = grp_, .map = map_, .op = op_, .pfx = pfx_, .form = DG_FORM_NONE, .sizes = sz,       \
      .traits = tr, .fread = fr, .fdef = fd, .fund = fu }
#define DG_SPECIAL(nm, grp_, fn_, op_, x, sz, a, tr)                                                            \
    { .name = nm, .grp = grp_, .fn = fn_, .op = op_, .ext = x, .sizes = sz, .arg = a, .traits = tr }

/* ---- Generator state --------------------------------------------------------------------------- */

/* A register a memory operand needs loaded first (32-bit MOV when r32). */
struct dg_regset {
    int reg;
    uint64_t value;
    bool r32;
};

struct dg_memop {
    bool riprel;
    bool asz32;               /* 0x67 */
    uint8_t seg;              /* segment override prefix or 0 */
    int base, index;          /* GPR or -1 */
    unsigned scale;
    int32_t disp;
    unsigned dispsz;          /* 0, 1, 4 */
    uint64_t target;          /* linear address it designates */
    unsigned nset;
    struct dg_regset set[2];
};

struct dg_enc {
    uint8_t pfx[8];
    unsigned npfx;
    bool rex_force, rex_w;
    uint8_t map, op;
    bool has_modrm;
    uint8_t reg;              /* ModRM.reg, 4 bits (bit 3 goes to REX.R) */
    uint8_t rm;               /* register for mod = 3, 4 bits */
    const struct dg_memop *mem; /* memory form when not NULL */
    bool has_opreg;
    uint8_t opreg;            /* +r register, 4 bits */
    unsigned immsz, imm2sz;
    uint64_t imm, imm2;
};

#define DG_TMPL_MAX 1024u

struct dg_gen {
    struct dg_rng rng;
    struct dg_seq *seq;
    uint32_t undef;           /* arithmetic flags undefined now */
    uint16_t cur_tmpl;
    bool in_body;             /* building a branch/call/loop body */
    bool body_no_flag_read;   /* building a loop body: nothing may read flags */
    bool last_unit;
    uint16_t reserved;        /* GPRs nothing may write (a LOOP body's counter) */
    uint16_t avoid_mem;       /* GPRs a memory operand's setup must not use (loaded by the unit before it) */
    uint32_t mxcsr;           /* MXCSR as the last LDMXCSR (or the initial state) set it */
    bool daz;                 /* MXCSR.DAZ may be set here */
    bool mmx_dirty;           /* an MMX instruction ran since the last EMMS (the x87 stack is full) */
    /*
     * XMM registers that may hold arbitrary bit patterns (written by anything but floating-point
     * arithmetic).  A floating-point template converts such an operand with CVTDQ2PS first,
     * which never yields a NaN: two NaN operands would only show the Unicorn NaN limitation
     * described at dg_fp32.
     */
    uint16_t xmm_taint;
    ZydisDecoder dec;
    /* Templates (all tables) and the pool the current sequence draws from. */
    const struct dg_tmpl *tmpl[DG_TMPL_MAX];
    unsigned ntmpl;
    uint16_t body_pool[DG_TMPL_MAX];
    unsigned nbody;
    uint16_t loop_pool[DG_TMPL_MAX];
    unsigned nloop;
};

static void dg_unit_generic(struct dg_gen *g, const struct dg_tmpl *t);

static void dg_bad(struct dg_gen *g, const char *why)
{
    if (!g->seq->bad) {
        g->seq->bad = true;
        snprintf(g->seq->bad_why, sizeof(g->seq->bad_why), "%s", why);
    }
}

/* ---- Encoder ------------------------------------------------------------------------------ */

static void dg_put8(struct dg_gen *g, uint8_t b)
{
    struct dg_seq *q = g->seq;
    if (q->len < DG_CODE_MAX - 32)
        q->code[q->len++] = b;
    else
        dg_bad(g, "sequence too long");
}

static void dg_putn(struct dg_gen *g, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        dg_put8(g, (uint8_t)(v >> (8 * i)));
}

/* Records the instruction that starts at off and checks it with Zydis. */
static void dg_record(struct dg_gen *g, unsigned off, bool aux)
{
    struct dg_seq *q = g->seq;
    if (q->bad)
        return;
    if (q->ninsn >= DG_INSN_MAX) {
        dg_bad(g, "too many instructions");
        return;
    }
    ZydisDecodedInstruction zi;
    ZyanStatus st = ZydisDecoderDecodeInstruction(&g->dec, NULL, q->code + off, q->len - off, &zi);
    struct dg_insn *in = &q->insn[q->ninsn++];
    in->off = (uint16_t)off;
    in->len = (uint8_t)(q->len - off);
    in->tmpl = g->cur_tmpl;
    in->aux = aux;
    in->undef_before = g->undef;
    in->mnemonic = ZYDIS_MNEMONIC_INVALID;
    if (ZYAN_SUCCESS(st)) {
        in->mnemonic = (uint16_t)zi.mnemonic;
        if (zi.length != in->len)
            dg_bad(g, "Zydis decodes another length");
    }
}

static void dg_emit_x(struct dg_gen *g, const struct dg_enc *e, bool aux)
{
    struct dg_seq *q = g->seq;
    unsigned start = q->len;
    const struct dg_memop *m = e->has_modrm ? e->mem : NULL;
    for (unsigned i = 0; i < e->npfx; i++)
        dg_put8(g, e->pfx[i]);
    uint8_t rex = 0x40;
    if (e->rex_w)
        rex |= 8;
    if (e->has_modrm && (e->reg & 8))
        rex |= 4;
    if (m && m->index >= 8)
        rex |= 2;
    if (m && m->base >= 8)
        rex |= 1;
    if (e->has_modrm && !m && (e->rm & 8))
        rex |= 1;
    if (e->has_opreg && (e->opreg & 8))
        rex |= 1;
    if (rex != 0x40 || e->rex_force)
        dg_put8(g, rex);
    if (e->map != DG_MAP_1)
        dg_put8(g, 0x0f);
    if (e->map == DG_MAP_0F38)
        dg_put8(g, 0x38);
    else if (e->map == DG_MAP_0F3A)
        dg_put8(g, 0x3a);
    dg_put8(g, (uint8_t)(e->op + (e->has_opreg ? (e->opreg & 7) : 0)));
    unsigned disp_at = 0, dispsz = 0;
    if (e->has_modrm) {
        unsigned reg = (e->reg & 7u) << 3;
        if (!m) {
            dg_put8(g, (uint8_t)(0xc0 | reg | (e->rm & 7u)));
        } else {
            unsigned ss = m->scale == 8 ? 3 : m->scale == 4 ? 2 : m->scale == 2 ? 1 : 0;
            unsigned idx = m->index < 0 ? 4u : (unsigned)(m->index & 7);
            if (m->riprel) {
                dg_put8(g, (uint8_t)(0x05 | reg));
                dispsz = 4;
            } else if (m->base < 0) {
                /* SIB without base: mod 00, base 101, disp32 (SDM vol. 2, table 2-3). */
                dg_put8(g, (uint8_t)(0x04 | reg));
                dg_put8(g, (uint8_t)((ss << 6) | (idx << 3) | 5));
                dispsz = 4;
            } else {
                unsigned mod = m->dispsz == 0 ? 0 : m->dispsz == 1 ? 1 : 2;
                bool sib = m->index >= 0 || (m->base & 7) == 4;
                dg_put8(g, (uint8_t)((mod << 6) | reg | (sib ? 4u : (unsigned)(m->base & 7))));
                if (sib)
                    dg_put8(g, (uint8_t)((ss << 6) | (idx << 3) | (unsigned)(m->base & 7)));
                dispsz = m->dispsz;
            }
            disp_at = q->len;
            dg_putn(g, (uint64_t)(int64_t)m->disp, dispsz);
        }
    }
    dg_putn(g, e->imm, e->immsz);
    dg_putn(g, e->imm2, e->imm2sz);
    if (m && m->riprel && !q->bad) {
        /* Relative to the next instruction (SDM vol. 2, 2.2.1.6); with 0x67 the sum wraps at 32 bits. */
        uint64_t next = DG_CODE_BASE + q->len;
        uint64_t segbase = m->seg == 0x64 ? DG_FS_BASE : m->seg == 0x65 ? DG_GS_BASE : 0;
        int32_t d = (int32_t)(uint32_t)(m->target - segbase - next);
        memcpy(q->code + disp_at, &d, 4);
    }
    dg_record(g, start, aux);
}

static void dg_emit(struct dg_gen *g, const struct dg_enc *e)
{
    dg_emit_x(g, e, false);
}

/* Emits raw bytes as one instruction. */
static void dg_emit_raw(struct dg_gen *g, const uint8_t *b, unsigned n, bool aux)
{
    unsigned start = g->seq->len;
    for (unsigned i = 0; i < n; i++)
        dg_put8(g, b[i]);
    dg_record(g, start, aux);
}

/* MOV reg, value (64-bit, or 32-bit zero-extending when r32) as a preparing instruction. */
static void dg_mov_imm(struct dg_gen *g, int reg, uint64_t value, bool r32)
{
    struct dg_enc e = { .op = 0xb8, .has_opreg = true, .opreg = (uint8_t)reg };
    if (r32) {
        e.immsz = 4;
        e.imm = (uint32_t)value;
    } else if ((int64_t)value == (int32_t)value && !dg_chance(&g->rng, 4)) {
        e = (struct dg_enc){ .op = 0xc7, .rex_w = true, .has_modrm = true, .reg = 0, .rm = (uint8_t)reg,
                             .immsz = 4, .imm = (uint32_t)value };
    } else {
        e.rex_w = true;
        e.immsz = 8;
        e.imm = value;
    }
    dg_emit_x(g, &e, true);
}

/* MOV r8, imm8 (B0+r); with REX for SPL..DIL and R8B..R15B. */
static void dg_mov_imm8(struct dg_gen *g, int reg, uint8_t value)
{
    struct dg_enc e = { .op = 0xb0, .has_opreg = true, .opreg = (uint8_t)reg, .rex_force = reg >= 4, .immsz = 1,
                        .imm = value };
    dg_emit_x(g, &e, true);
}

/* Stores a value to memory with MOV m, imm (size 1, 2, 4 or 8 with sign-extended imm32). */
static void dg_store_imm(struct dg_gen *g, uint64_t addr, unsigned size, uint64_t value)
{
    struct dg_memop m = { .base = -1, .index = -1, .scale = 1, .disp = (int32_t)addr, .dispsz = 4, .target = addr };
    struct dg_enc e = { .op = size == 1 ? 0xc6 : 0xc7, .has_modrm = true, .mem = &m, .rex_w = size == 8,
                        .immsz = size == 1 ? 1 : size == 2 ? 2 : 4, .imm = value };
    if (size == 2)
        e.pfx[e.npfx++] = 0x66;
    dg_emit_x(g, &e, true);
}

/* Loads MXCSR with a known value through a scratch dword of the data area (LDMXCSR). */
static void dg_mxcsr_load(struct dg_gen *g, uint32_t v)
{
    uint64_t a = DG_DATA_BASE + 0x40;
    dg_store_imm(g, a, 4, v);
    struct dg_memop m = { .base = -1, .index = -1, .scale = 1, .disp = (int32_t)a, .dispsz = 4, .target = a };
    struct dg_enc e = { .map = DG_MAP_0F, .op = 0xae, .has_modrm = true, .reg = 2, .mem = &m };
    dg_emit_x(g, &e, true);
    g->mxcsr = v;
    g->daz = (v & 0x40) != 0;
}

/* ---- Flags -------------------------------------------------------------------------------- */

static uint16_t dg_cond_flags(unsigned cc)
{
    static const uint16_t f[8] = { DG_OF, DG_CF, DG_ZF, DG_CF | DG_ZF, DG_SF, DG_PF, DG_SF | DG_OF,
                                   DG_ZF | DG_SF | DG_OF };
    return f[(cc >> 1) & 7];
}

/* Makes the given flags defined before an instruction reads them: CMP r64, r64 defines all six. */
static void dg_need_flags(struct dg_gen *g, uint32_t mask)
{
    if (!(g->undef & mask))
        return;
    struct dg_enc e = { .op = dg_chance(&g->rng, 2) ? 0x39 : 0x3b, .rex_w = true, .has_modrm = true,
                        .reg = (uint8_t)dg_below(&g->rng, 16), .rm = (uint8_t)dg_below(&g->rng, 16) };
    dg_emit_x(g, &e, true);
    g->undef = 0;
}

static void dg_flags_result(struct dg_gen *g, uint32_t def, uint32_t und)
{
    g->undef = (g->undef & ~def) | und;
}

/* ---- Registers and memory operands ------------------------------------------------------------ */

/* A GPR for an operand; written operands never name RSP (except as SPL: the stack keeps its page). */
static int dg_gpr(struct dg_gen *g, bool written, bool legacy8, unsigned size, uint16_t avoid)
{
    for (;;) {
        int r = (int)dg_below(&g->rng, legacy8 ? 8 : 16);
        int full = legacy8 && size == 1 && r >= 4 ? r - 4 : r; /* AH..BH live in RAX..RBX */
        if (avoid & (1u << r))
            continue;
        if (written && ((g->reserved >> full) & 1))
            continue;
        if (written && r == 4 && size != 1)
            continue;
        return r;
    }
}

#define DG_MF_NO_RIP  0x01u
#define DG_MF_LEGACY  0x08u /* no REX allowed: base and index among the first eight */
#define DG_MF_FP      0x10u /* floating-point operand: the NaN-free page */
#define DG_MF_X87     0x40u /* the x87 load area (read only) */

/*
 * Chooses a memory operand for an access of size bytes that designates an address in the
 * compared area: a random addressing form (RIP-relative, absolute disp32, base, base+disp,
 * base+index*scale+disp, index*scale+disp32, 32-bit address size, FS/GS or an ignored
 * segment prefix), then the register values that make it reach that address.
 */
static void dg_mem_pick(struct dg_gen *g, struct dg_memop *m, unsigned size, unsigned align, unsigned flags,
                        uint16_t avoid)
{
    struct dg_rng *r = &g->rng;
    avoid |= g->reserved | g->avoid_mem; /* the setup MOVs write base and index */
    uint64_t lo = DG_DATA_BASE + 64, hi = DG_WR_END - 64;
    if (flags & DG_MF_FP)
        lo = DG_FP_BASE, hi = DG_WR_END - 64;
    if (flags & DG_MF_X87)
        lo = DG_X87_BASE, hi = DG_STACK_BASE - 16;
    if (size > 64)
        size = 64;
    uint64_t a = lo + dg_below(r, (unsigned)(hi - lo - size));
    if (align > 1)
        a &= ~(uint64_t)(align - 1);
    else if (dg_chance(r, 2))
        a &= ~(uint64_t)(size > 1 ? size - 1 : 0); /* natural alignment half the time */
    memset(m, 0, sizeof(*m));
    m->target = a;
    m->scale = 1;
    m->base = m->index = -1;
    if (dg_chance(r, 8))
        m->asz32 = true;
    if (dg_chance(r, 4)) {
        static const uint8_t segs[] = { 0x64, 0x65, 0x2e, 0x3e, 0x26, 0x36 };
        m->seg = segs[dg_below(r, 6)];
    }
    uint64_t segbase = m->seg == 0x64 ? DG_FS_BASE : m->seg == 0x65 ? DG_GS_BASE : 0;
    uint64_t off = a - segbase;
    unsigned nregs = (flags & DG_MF_LEGACY) ? 8 : 16;
    unsigned form = dg_below(r, 16);
    if (form == 0 && !(flags & DG_MF_NO_RIP)) {
        m->riprel = true;
        return;
    }
    if (form == 1) { /* absolute disp32 */
        m->disp = (int32_t)off;
        m->dispsz = 4;
        return;
    }
    for (int tries = 0; tries < 32; tries++) {
        m->base = (int)dg_below(r, nregs);
        m->index = form <= 9 ? -1 : (int)dg_below(r, nregs);
        if (form == 2) /* index*scale + disp32, no base */
            m->base = -1, m->index = (int)dg_below(r, nregs);
        if (m->index == 4)
            m->index = -1;
        if ((m->base >= 0 && (avoid >> m->base) & 1) || (m->index >= 0 && (avoid >> m->index) & 1))
            continue;
        if (m->base < 0 && m->index < 0)
            continue;
        break;
    }
    if ((m->base >= 0 && (avoid >> m->base) & 1) || (m->index >= 0 && (avoid >> m->index) & 1) ||
        (m->base < 0 && m->index < 0)) {
        m->base = m->index = -1;
        m->disp = (int32_t)off;
        m->dispsz = 4;
        return;
    }
    m->scale = 1u << dg_below(r, 4);
    if (m->base < 0)
        m->dispsz = 4;
    else
        m->dispsz = (unsigned[]){ 0, 1, 4 }[dg_below(r, 3)];
    if (m->dispsz == 0 && m->base >= 0 && (m->base & 7) == 5)
        m->dispsz = 1; /* mod 00 with base 101 means disp32/RIP: RBP and R13 need a displacement */
    int64_t disp = m->dispsz == 1 ? (int8_t)dg_rand(r) : m->dispsz == 4 ? (int32_t)dg_rand(r) : 0;
    if (m->base < 0 || dg_chance(r, 2))
        disp = m->dispsz == 1 ? (int8_t)dg_rand(r) : m->dispsz == 4 ? (int64_t)(dg_rand(r) % 4096) - 2048 : 0;
    int64_t idxv = 0;
    if (m->index >= 0) {
        switch (dg_below(r, 4)) {
        case 0:
            idxv = (int64_t)(dg_rand(r) & 0xffffffffu); /* large: the base wraps around to compensate */
            break;
        default:
            idxv = (int64_t)dg_below(r, 33) - 16;
            break;
        }
        if (m->base < 0) {
            idxv = (int64_t)dg_below(r, 17) - 8;
            disp = (int64_t)off - idxv * (int64_t)m->scale;
        }
    }
    if (m->base == m->index && m->base >= 0) {
        /* The same register twice: value * (1 + scale) + disp = off. */
        uint64_t mult = 1 + m->scale;
        if (m->dispsz == 0)
            m->dispsz = 1;
        disp = (int8_t)dg_rand(r);
        uint64_t rest = off - (uint64_t)disp;
        if (m->asz32)
            rest &= 0xffffffffu;
        disp += (int64_t)(rest % mult);
        if (m->dispsz == 1 && (disp < -128 || disp > 127))
            m->dispsz = 4;
        uint64_t v = (off - (uint64_t)disp) / mult;
        if (m->asz32)
            v = ((off - (uint64_t)disp) & 0xffffffffu) / mult;
        m->disp = (int32_t)disp;
        m->set[m->nset++] = (struct dg_regset){ m->base, v, m->asz32 };
        return;
    }
    m->disp = (int32_t)disp;
    if (m->index >= 0)
        m->set[m->nset++] = (struct dg_regset){ m->index, (uint64_t)idxv, m->asz32 && idxv >= 0 };
    if (m->base >= 0) {
        uint64_t bv = off - (uint64_t)idxv * m->scale - (uint64_t)(int64_t)disp;
        if (m->asz32) /* only the low 32 bits take part; garbage above them must be ignored */
            bv = (bv & 0xffffffffu) | (dg_chance(r, 2) ? dg_rand(r) << 32 : 0);
        m->set[m->nset++] = (struct dg_regset){ m->base, bv, false };
    }
    if (m->base == 4) {
        /* RSP as base: it then also is the stack pointer, so it must stay inside the area. */
        uint64_t bv = m->set[m->nset - 1].value;
        bool in_data = bv >= DG_DATA_BASE + 0x400 && bv < DG_WR_END;
        bool in_stack = bv >= DG_STACK_BASE + 0x400 && bv < DG_MEM_END - 0x100;
        if (!in_data && !in_stack) {
            m->nset = 0;
            m->base = m->index = -1;
            m->disp = (int32_t)off;
            m->dispsz = 4;
        }
    }
}

/* Emits the MOVs that make m address its target. */
static void dg_mem_setup(struct dg_gen *g, const struct dg_memop *m)
{
    for (unsigned i = 0; i < m->nset; i++)
        dg_mov_imm(g, m->set[i].reg, m->set[i].value, m->set[i].r32);
}

/* Adds the memory operand's prefixes (segment override, 0x67) to e. */
static void dg_mem_prefixes(struct dg_enc *e, const struct dg_memop *m)
{
    if (m->seg)
        e->pfx[e->npfx++] = m->seg;
    if (m->asz32)
        e->pfx[e->npfx++] = 0x67;
}

/* Shuffles the legacy prefixes already in e (their order carries no meaning, SDM vol. 2, 2.1.1). */
static void dg_shuffle_prefixes(struct dg_gen *g, struct dg_enc *e, unsigned first)
{
    for (unsigned i = e->npfx; i > first + 1; i--) {
        unsigned j = first + dg_below(&g->rng, i - first);
        uint8_t t = e->pfx[i - 1];
        e->pfx[i - 1] = e->pfx[j];
        e->pfx[j] = t;
    }
}


/* ---- Table-driven units ------------------------------------------------------------------------ */

static unsigned dg_pick_size(struct dg_gen *g, unsigned sizes)
{
    unsigned opts[4], n = 0;
    for (unsigned b = 1; b <= 8; b <<= 1)
        if (sizes & b)
            opts[n++] = b;
    return n ? opts[dg_below(&g->rng, n)] : 0;
}

/* Operand size prefixes: 66 for 16-bit, REX.W for 64-bit (SDM vol. 2, 2.2.1.2). */
static void dg_enc_size(struct dg_enc *e, unsigned osz, const struct dg_tmpl *t)
{
    if (osz == 2 && !(t->traits & DG_T_W64))
        e->pfx[e->npfx++] = 0x66;
    if (osz == 8)
        e->rex_w = true;
}

/* The mandatory prefix goes after the others, next to REX and the opcode. */
static void dg_enc_finish_prefixes(struct dg_gen *g, struct dg_enc *e, const struct dg_tmpl *t)
{
    dg_shuffle_prefixes(g, e, 0);
    if (t->pfx)
        e->pfx[e->npfx++] = t->pfx;
}

/* CVTDQ2PS x, x on a tainted XMM register: any bits become ordinary floats (no NaN, no Inf). */
static void dg_xmm_clean(struct dg_gen *g, int x)
{
    if (x < 0 || !((g->xmm_taint >> x) & 1))
        return;
    struct dg_enc e = { .map = DG_MAP_0F, .op = 0x5b, .has_modrm = true, .reg = (uint8_t)x, .rm = (uint8_t)x };
    dg_emit_x(g, &e, true);
    g->xmm_taint &= (uint16_t)~(1u << x);
}

static void dg_mark_final(struct dg_gen *g, const struct dg_tmpl *t, int reg, bool legacy8, unsigned rsz)
{
    if (!(t->traits & DG_T_FINAL))
        return;
    if (t->rk == DG_K_XMM)
        g->seq->dc_xmm |= (uint16_t)(1u << reg);
    else if (t->rk == DG_K_GPR)
        g->seq->dc_gpr |= (uint16_t)(1u << (legacy8 && rsz == 1 && reg >= 4 ? reg - 4 : reg));
}

/* One instruction from its table entry: operand size, registers, a memory operand and its setup. */
static void dg_unit_generic(struct dg_gen *g, const struct dg_tmpl *t)
{
    struct dg_rng *r = &g->rng;
    struct dg_enc e = { .map = t->map, .op = t->op };
    struct dg_memop m;
    unsigned osz = dg_pick_size(g, t->sizes);
    unsigned gsz = osz ? osz : 4;
    unsigned rsz = t->rk == DG_K_GPR ? (t->rsz ? t->rsz : gsz) : 0;
    unsigned msz = t->msz ? t->msz : t->mk == DG_K_XMM ? 16 : t->mk == DG_K_MMX ? 8 : gsz;
    /* A GPR beside a vector register (MOVD, PEXTRB, PINSRW, ...) is r32/r64; msz is the memory size. */
    unsigned rm_gsz = t->mk == DG_K_GPR && (t->rk == DG_K_XMM || t->rk == DG_K_MMX) ? gsz : msz;
    bool has_modrm = t->form == DG_FORM_RM || t->form == DG_FORM_EXT;
    bool memform = has_modrm && (t->mem == DG_MEM_ONLY || (t->mem == DG_MEM_ANY && dg_chance(r, 2)));
    bool byte_gpr = (rsz == 1) || (t->mk == DG_K_GPR && !memform && rm_gsz == 1) ||
                    ((t->form == DG_FORM_OPR || t->form == DG_FORM_ACC) && gsz == 1);
    bool legacy8 = byte_gpr && osz != 8 && dg_chance(r, 2); /* REX.W and AH..BH exclude each other */
    int reg = -1;

    if (t->traits & DG_T_X87)
        g->seq->uses_x87 = true;
    /*
     * An MMX write sets bits 79:64 of the register to ones (SDM vol. 1, 9.5.1); QEMU 5 leaves
     * them alone, so after MMX instructions only the low 64 bits of each register are compared.
     */
    if (t->rk == DG_K_MMX || t->mk == DG_K_MMX)
        g->seq->uses_mmx = true;
    if (t->traits & DG_T_UCNOTAG)
        g->seq->no_ftw = true;
    if (t->rk == DG_K_MMX || t->mk == DG_K_MMX)
        g->mmx_dirty = true;
    if ((t->traits2 & DG_T2_NODAZ) && g->daz)
        dg_mxcsr_load(g, g->mxcsr & ~0x40u);
    if (t->traits2 & DG_T2_WXMM0)
        g->xmm_taint |= 1u;
    if (has_modrm) {
        e.has_modrm = true;
        if (t->form == DG_FORM_EXT) {
            e.reg = (t->traits & DG_T_EXTR) ? (uint8_t)dg_below(r, 8) : t->ext;
        } else if (t->rk == DG_K_GPR) {
            reg = dg_gpr(g, t->traits & DG_T_WREG, legacy8, rsz, 0);
            e.reg = (uint8_t)reg;
        } else {
            reg = (int)dg_below(r, t->rk == DG_K_MMX || legacy8 ? 8 : 16);
            e.reg = (uint8_t)reg;
        }
        if (memform) {
            unsigned mf = (legacy8 ? DG_MF_LEGACY : 0) | ((t->traits & DG_T_FPMEM) ? DG_MF_FP : 0);
            dg_mem_pick(g, &m, msz, t->align, mf, 0);
            dg_mem_setup(g, &m);
            dg_mem_prefixes(&e, &m);
            e.mem = &m;
        } else if (t->mk == DG_K_GPR) {
            e.rm = (uint8_t)dg_gpr(g, t->traits & DG_T_WRM, legacy8, rm_gsz, 0);
        } else {
            unsigned n = t->mk == DG_K_XMM && !legacy8 ? 16 : 8;
            e.rm = (uint8_t)dg_below(r, n);
            if ((t->traits & DG_T_DIFFREG) && e.rm == e.reg)
                e.rm = (uint8_t)((e.rm + 1 + dg_below(r, n - 1)) % n);
        }
    } else if (t->form == DG_FORM_OPR) {
        e.has_opreg = true;
        reg = dg_gpr(g, t->traits & DG_T_WREG, legacy8, gsz, 0);
        e.opreg = (uint8_t)reg;
    }
    if (byte_gpr && !legacy8)
        e.rex_force = true;
    if (osz && !(t->traits & DG_T_NOREXW))
        dg_enc_size(&e, osz, t);
    else if (!osz && !(t->traits & DG_T_NOREXW) && !legacy8 && t->map != DG_MAP_1 && dg_chance(r, 8))
        e.rex_w = true; /* ignored by instructions without a 64-bit form */
    if (memform && (t->traits & DG_T_LOCK) && dg_chance(r, 3))
        e.pfx[e.npfx++] = 0xf0;
    dg_enc_finish_prefixes(g, &e, t);
    switch (t->imm) {
    case DG_IMM_B:
        e.immsz = 1;
        e.imm = dg_rand(r) & (t->immmask ? t->immmask : 0xff);
        break;
    case DG_IMM_STR:
        /* PCMPxSTRx control byte without "equal ordered" (imm8[3:2] = 11): QEMU 5's pcmpxstrx()
         * only tries positions where the whole needle fits in the haystack, while the hardware
         * also reports a needle prefix matching the haystack's tail (SDM vol. 2, 4.1.6). */
        e.immsz = 1;
        e.imm = dg_rand(r) & 0xff;
        if (((e.imm >> 2) & 3) == 3)
            e.imm ^= 4;
        break;
    case DG_IMM_DPPS:
        /*
         * The hardware adds the DPPS products pairwise, (p0 + p1) + (p2 + p3) (SDM vol. 2 DPPS),
         * QEMU 5 one after the other from +0.0: they round alike unless products 2 and 3 are
         * both selected together with 0 or 1, which is left out.
         */
        e.immsz = 1;
        e.imm = dg_rand(r) & 0xff;
        if ((e.imm & 0xc0) == 0xc0 && (e.imm & 0x30))
            e.imm &= ~0x80u;
        break;
    case DG_IMM_DPPD:
        /* DPPD with both products: the hardware's p0 + p1 of two -0.0 is -0.0, QEMU 5's
         * (+0.0 + p0) + p1 is +0.0; one product at most. */
        e.immsz = 1;
        e.imm = dg_rand(r) & 0x33;
        if ((e.imm & 0x30) == 0x30)
            e.imm &= ~(dg_chance(r, 2) ? 0x10u : 0x20u);
        break;
    case DG_IMM_W:
        e.immsz = 2;
        e.imm = dg_rand(r) & 0xffff;
        break;
    case DG_IMM_Z:
        e.immsz = gsz == 2 ? 2 : gsz == 1 ? 1 : 4;
        e.imm = dg_rand_int(r);
        break;
    case DG_IMM_V:
        e.immsz = gsz;
        e.imm = dg_rand_int(r);
        break;
    default:
        break;
    }
    uint16_t fread = t->fread;
    if (t->traits & DG_T_COND)
        fread |= dg_cond_flags(t->op & 15);
    if (t->traits & DG_T_FPMEM) {
        if (t->rk == DG_K_XMM)
            dg_xmm_clean(g, reg);
        if (t->mk == DG_K_XMM && !memform)
            dg_xmm_clean(g, e.rm);
    }
    dg_need_flags(g, fread);
    dg_emit(g, &e);
    dg_mark_final(g, t, reg, legacy8, rsz);
    if (t->rk == DG_K_XMM && (t->traits & DG_T_WREG)) {
        if (t->traits2 & DG_T2_FPOUT)
            g->xmm_taint &= (uint16_t)~(1u << reg);
        else
            g->xmm_taint |= (uint16_t)(1u << reg);
    }
    if (t->mk == DG_K_XMM && !memform && (t->traits & DG_T_WRM))
        g->xmm_taint |= (uint16_t)(1u << e.rm);
    dg_flags_result(g, t->fdef, t->fund);
}

/*
 * What the generator knows about the machine, for the places where the code it emits may or may
 * not run (a branch body) or runs several times (a loop body): there the knowledge of both paths
 * is merged, always towards "maybe" (flags undefined, DAZ set, MMX state in use, XMM tainted).
 */
struct dg_flow {
    uint32_t undef;
    bool daz, mmx_dirty;
    uint16_t xmm_taint;
};

static struct dg_flow dg_flow_save(const struct dg_gen *g)
{
    return (struct dg_flow){ g->undef, g->daz, g->mmx_dirty, g->xmm_taint };
}

static void dg_flow_restore(struct dg_gen *g, const struct dg_flow *f)
{
    g->undef = f->undef;
    g->daz = f->daz;
    g->mmx_dirty = f->mmx_dirty;
    g->xmm_taint = f->xmm_taint;
}

static void dg_flow_merge(struct dg_gen *g, const struct dg_flow *f)
{
    g->undef |= f->undef;
    g->daz = g->daz || f->daz;
    g->mmx_dirty = g->mmx_dirty || f->mmx_dirty;
    g->xmm_taint |= f->xmm_taint;
}

/* ---- Sequences ---------------------------------------------------------------------------------- */

static void dg_unit(struct dg_gen *g, uint16_t id)
{
    const struct dg_tmpl *t = g->tmpl[id];
    uint16_t saved = g->cur_tmpl;
    g->cur_tmpl = id;
    (t->fn ? t->fn : dg_unit_generic)(g, t);
    g->cur_tmpl = saved;
}

/* Units for the inside of a branch, call or loop body (table-driven, no control flow). */
static void dg_body(struct dg_gen *g, unsigned units, bool loop)
{
    bool was = g->in_body, was_nf = g->body_no_flag_read;
    g->in_body = true;
    g->body_no_flag_read = loop;
    for (unsigned i = 0; i < units; i++) {
        if (loop && g->nloop)
            dg_unit(g, g->loop_pool[dg_below(&g->rng, g->nloop)]);
        else if (!loop && g->nbody)
            dg_unit(g, g->body_pool[dg_below(&g->rng, g->nbody)]);
    }
    g->in_body = was;
    g->body_no_flag_read = was_nf;
}

static bool dg_is_body_tmpl(const struct dg_tmpl *t, bool loop)
{
    if (t->fn || (t->traits & (DG_T_FINAL | DG_T_LAST | DG_T_NOBODY | DG_T_INVALID)))
        return false;
    if (loop && (t->fread || (t->traits & (DG_T_COND | DG_T_WRCX))))
        return false;
    return true;
}

/* Registers all templates of a table (ends with a NULL name). */
static void dg_add_table(struct dg_gen *g, const struct dg_tmpl *tab)
{
    for (; tab->name && g->ntmpl < DG_TMPL_MAX; tab++) {
        uint16_t id = (uint16_t)g->ntmpl++;
        g->tmpl[id] = tab;
        if (dg_is_body_tmpl(tab, false))
            g->body_pool[g->nbody++] = id;
        if (dg_is_body_tmpl(tab, true))
            g->loop_pool[g->nloop++] = id;
    }
}

static void dg_gen_init(struct dg_gen *g, uint64_t seed)
{
    memset(g, 0, sizeof(*g));
    dg_rng_seed(&g->rng, seed, 0);
    ZydisDecoderInit(&g->dec, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
}

/* A random starting state: GPRs, arithmetic flags and DF, XMM lanes, MXCSR rounding, data. */
static void dg_state_random(struct dg_gen *g, struct dg_state *s)
{
    struct dg_rng *r = &g->rng;
    memset(s, 0, offsetof(struct dg_state, mem));
    for (unsigned i = 0; i < 16; i++)
        s->gpr[i] = dg_rand_int(r);
    s->gpr[4] = DG_RSP_INIT + 8 * (uint64_t)dg_below(r, 64) - 256;
    s->rip = DG_CODE_BASE;
    s->rflags = 0x2 | (dg_rand(r) & (DG_ARITH | DG_DF));
    for (unsigned i = 0; i < 16; i++)
        dg_fill_vec(r, s->xmm[i]);
    /*
     * MXCSR: all exceptions masked, any rounding mode, DAZ sometimes.  FZ stays clear: Unicorn
     * 2.0.1 (QEMU 5 update_mxcsr_status) applies FZ to the x87 status instead of the SSE one.
     */
    s->mxcsr = 0x1f80 | ((uint32_t)dg_below(r, 4) << 13) * (dg_chance(r, 2) ? 1 : 0) | (dg_chance(r, 8) ? 0x40 : 0);
    s->fcw = 0x037f;
    s->fsw = 0;
    s->ftw = 0;
    for (unsigned i = 0; i < 8; i++) {
        uint64_t mant = dg_rand_int(r);
        memcpy(s->st[i], &mant, 8);
        uint16_t se = (uint16_t)(0x3fff + dg_below(r, 64) - 32) | (dg_chance(r, 2) ? 0x8000 : 0);
        memcpy(s->st[i] + 8, &se, 2);
    }
    /* Data: raw bytes with runs of zeros and repeated bytes (REPE CMPS/SCAS), then the FP page. */
    for (unsigned off = 0; off < DG_MEM_BYTES; off += 8) {
        uint64_t v = dg_rand_int(r);
        memcpy(s->mem + off, &v, 8);
    }
    for (unsigned off = 0; off < DG_MEM_BYTES; off += 64) {
        unsigned k = dg_below(r, 8);
        if (k == 0)
            memset(s->mem + off, 0, 64);
        else if (k == 1)
            memset(s->mem + off, (int)(dg_rand(r) & 0xff), 64);
    }
    for (unsigned off = (unsigned)(DG_FP_BASE - DG_DATA_BASE); off < (unsigned)(DG_STACK_BASE - DG_DATA_BASE); off += 16)
        dg_fill_vec(r, s->mem + off);
}

/* Builds one sequence of 1..max_units units drawn from pool. */
static void dg_seq_build(struct dg_gen *g, struct dg_seq *q, const uint16_t *pool, unsigned npool, unsigned max_units)
{
    memset(q, 0, offsetof(struct dg_seq, insn));
    g->seq = q;
    g->undef = 0;
    g->in_body = g->body_no_flag_read = false;
    g->reserved = 0;
    g->avoid_mem = 0;
    dg_state_random(g, &q->init);
    g->mxcsr = q->init.mxcsr;
    g->daz = (q->init.mxcsr & 0x40) != 0;
    g->mmx_dirty = false;
    g->xmm_taint = 0;
    unsigned units = 1 + dg_below(&g->rng, max_units);
    for (unsigned u = 0; u < units && !q->bad; u++) {
        g->last_unit = u + 1 == units;
        uint16_t id = pool[dg_below(&g->rng, npool)];
        for (int tries = 0; tries < 8 && !g->last_unit && (g->tmpl[id]->traits & (DG_T_FINAL | DG_T_LAST)); tries++)
            id = pool[dg_below(&g->rng, npool)];
        if (!g->last_unit && (g->tmpl[id]->traits & (DG_T_FINAL | DG_T_LAST)))
            continue;
        dg_unit(g, id);
    }
    g->cur_tmpl = 0;
    q->undef_end = g->undef;
    static const uint8_t hlt = 0xf4;
    dg_emit_raw(g, &hlt, 1, true);
}

#endif
