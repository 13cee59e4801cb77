/* tstIemSimd.c - unit tests of the interpreter's SSE..SSE4.2 family: handlers called directly on hand-built instructions. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <Zydis/Zydis.h>

#include "../iem-fpu.h"
#include "../iem-simd.h"
#include "harness.h"

#define FAULT(v) (-100 - (v))

#define CODE_GPA  0x30000u
#define STACK_GPA 0x3f000u
#define DATA_GPA  0x40000u
#define NO_FAULT  (-1)

static struct iemh *g_h;
static struct iem_cpu *g_cpu;
static struct cpu_state *g_s;
static uint8_t *g_mem; /* host view of DATA_GPA */

/* A 64-bit CPL 0 harness vCPU (CR4.OSFXSR/OSXMMEXCPT set by the harness); RSI points at DATA_GPA. */
static int setup(void **state)
{
    (void)state;
    g_h = iemh_create(0);
    g_cpu = g_h->cpu;
    g_s = g_h->s;
    g_mem = g_h->ram + DATA_GPA;
    iemh_mode_long64(g_h, CODE_GPA, STACK_GPA);
    g_s->gpr[CPU_RSI] = DATA_GPA;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    iemh_destroy(g_h);
    return 0;
}

static iem_fn *simd_fn(unsigned mn)
{
    for (const struct iem_handler_map *m = g_iem_map_simd; m->fn; m++) {
        if (m->mnemonic == mn)
            return m->fn;
    }
    return NULL;
}

static unsigned op_size(unsigned kind)
{
    switch (kind) {
    case IEM_OPK_XMM: return 16;
    case IEM_OPK_MMX: return 8;
    case IEM_OPK_IMM: return 1;
    default: return 4;
    }
}

static struct iem_insn mk(unsigned mn, unsigned k0, unsigned r0, unsigned k1, unsigned r1)
{
    struct iem_insn in;

    memset(&in, 0, sizeof(in));
    in.mnemonic = (uint16_t)mn;
    in.len = 4;
    in.opsize = 4;
    in.addrsize = 8;
    in.nops = 2;
    in.op[0].kind = (uint8_t)k0;
    in.op[0].size = (uint8_t)op_size(k0);
    in.op[0].reg = (uint8_t)r0;
    in.op[1].kind = (uint8_t)k1;
    in.op[1].size = (uint8_t)op_size(k1);
    in.op[1].reg = (uint8_t)r1;
    in.mem.base = IEM_NOREG;
    in.mem.index = IEM_NOREG;
    in.mem.seg = CPU_DS;
    return in;
}

static struct iem_insn xx(unsigned mn, unsigned d, unsigned s)
{
    return mk(mn, IEM_OPK_XMM, d, IEM_OPK_XMM, s);
}

static struct iem_insn xxi(unsigned mn, unsigned d, unsigned s, unsigned imm)
{
    struct iem_insn in = xx(mn, d, s);

    in.nops = 3;
    in.op[2].kind = IEM_OPK_IMM;
    in.op[2].size = 1;
    in.imm = imm;
    return in;
}

/* Runs the instruction through the SIMD table; returns IEM_NEXT & co or FAULT(vector). */
static int exec(struct iem_insn *in)
{
    iem_fn *volatile fn = in->fn ? in->fn : simd_fn(in->mnemonic);

    if (!fn)
        return FAULT(IEM_X_UD);
    g_cpu->insn = in;
    if (setjmp(g_cpu->fault_jmp))
        return FAULT(g_cpu->fault_vector);
    return fn(g_cpu, in);
}

static void set_u32(unsigned r, uint32_t a, uint32_t b, uint32_t c, uint32_t d)
{
    uint32_t v[4] = { a, b, c, d };
    memcpy(g_s->fpu.xmm[r], v, 16);
}

static void set_u64(unsigned r, uint64_t a, uint64_t b)
{
    uint64_t v[2] = { a, b };
    memcpy(g_s->fpu.xmm[r], v, 16);
}

static void set_ps(unsigned r, float a, float b, float c, float d)
{
    float v[4] = { a, b, c, d };
    memcpy(g_s->fpu.xmm[r], v, 16);
}

static void set_pd(unsigned r, double a, double b)
{
    double v[2] = { a, b };
    memcpy(g_s->fpu.xmm[r], v, 16);
}

static void set_bytes(unsigned r, const char *s)
{
    memset(g_s->fpu.xmm[r], 0, 16);
    memcpy(g_s->fpu.xmm[r], s, strnlen(s, 16));
}

static uint32_t u32(unsigned r, unsigned i)
{
    uint32_t v;
    memcpy(&v, g_s->fpu.xmm[r] + 4 * i, 4);
    return v;
}

static uint64_t u64(unsigned r, unsigned i)
{
    uint64_t v;
    memcpy(&v, g_s->fpu.xmm[r] + 8 * i, 8);
    return v;
}

static uint16_t u16(unsigned r, unsigned i)
{
    uint16_t v;
    memcpy(&v, g_s->fpu.xmm[r] + 2 * i, 2);
    return v;
}

static float f32(unsigned r, unsigned i)
{
    float v;
    memcpy(&v, g_s->fpu.xmm[r] + 4 * i, 4);
    return v;
}

static double f64(unsigned r, unsigned i)
{
    double v;
    memcpy(&v, g_s->fpu.xmm[r] + 8 * i, 8);
    return v;
}

static uint32_t fbits(float f)
{
    uint32_t v;
    memcpy(&v, &f, 4);
    return v;
}

/* ---- Table and preconditions ------------------------------------------------------------ */

static void test_table(void **state)
{
    static const unsigned absent[] = {
        ZYDIS_MNEMONIC_VADDPS, ZYDIS_MNEMONIC_VPADDB, ZYDIS_MNEMONIC_AESENC, ZYDIS_MNEMONIC_PCLMULQDQ,
        ZYDIS_MNEMONIC_EXTRQ, ZYDIS_MNEMONIC_INSERTQ, ZYDIS_MNEMONIC_MOVNTSS, ZYDIS_MNEMONIC_SHA1RNDS4,
        ZYDIS_MNEMONIC_SHA256MSG1, ZYDIS_MNEMONIC_MOVSD, ZYDIS_MNEMONIC_CMPSD, ZYDIS_MNEMONIC_POPCNT,
        ZYDIS_MNEMONIC_EMMS, ZYDIS_MNEMONIC_PSHUFW,
    };
    unsigned n = 0;

    (void)state;
    for (const struct iem_handler_map *m = g_iem_map_simd; m->fn; m++, n++) {
        assert_int_not_equal(m->mnemonic, 0);
        for (const struct iem_handler_map *o = m + 1; o->fn; o++)
            assert_int_not_equal(m->mnemonic, o->mnemonic);
    }
    assert_true(n > 200);
    for (size_t i = 0; i < sizeof(absent) / sizeof(absent[0]); i++)
        assert_null(simd_fn(absent[i]));
}

/* Operand shapes of the table entries that are not "xmm, xmm[, imm8]". */
static struct iem_insn shape(unsigned mn)
{
    struct iem_insn in;

    switch (mn) {
    case ZYDIS_MNEMONIC_MOVD: case ZYDIS_MNEMONIC_CVTSI2SS: case ZYDIS_MNEMONIC_CVTSI2SD:
        return mk(mn, IEM_OPK_XMM, 1, IEM_OPK_GPR, CPU_RAX);
    case ZYDIS_MNEMONIC_PINSRB: case ZYDIS_MNEMONIC_PINSRW: case ZYDIS_MNEMONIC_PINSRD: case ZYDIS_MNEMONIC_PINSRQ:
        in = mk(mn, IEM_OPK_XMM, 1, IEM_OPK_GPR, CPU_RAX);
        in.op[2].kind = IEM_OPK_IMM;
        return in;
    case ZYDIS_MNEMONIC_CVTSS2SI: case ZYDIS_MNEMONIC_CVTTSS2SI: case ZYDIS_MNEMONIC_CVTSD2SI:
    case ZYDIS_MNEMONIC_CVTTSD2SI: case ZYDIS_MNEMONIC_MOVMSKPS: case ZYDIS_MNEMONIC_MOVMSKPD:
    case ZYDIS_MNEMONIC_PMOVMSKB:
        return mk(mn, IEM_OPK_GPR, CPU_RBX, IEM_OPK_XMM, 2);
    case ZYDIS_MNEMONIC_PEXTRB: case ZYDIS_MNEMONIC_PEXTRW: case ZYDIS_MNEMONIC_PEXTRD:
    case ZYDIS_MNEMONIC_PEXTRQ: case ZYDIS_MNEMONIC_EXTRACTPS:
        in = mk(mn, IEM_OPK_GPR, CPU_RBX, IEM_OPK_XMM, 2);
        in.op[2].kind = IEM_OPK_IMM;
        return in;
    case ZYDIS_MNEMONIC_CRC32:
        return mk(mn, IEM_OPK_GPR, CPU_RBX, IEM_OPK_GPR, CPU_RCX);
    case ZYDIS_MNEMONIC_CVTPI2PS: case ZYDIS_MNEMONIC_CVTPI2PD: case ZYDIS_MNEMONIC_MOVQ2DQ:
        return mk(mn, IEM_OPK_XMM, 1, IEM_OPK_MMX, 2);
    case ZYDIS_MNEMONIC_CVTPS2PI: case ZYDIS_MNEMONIC_CVTTPS2PI: case ZYDIS_MNEMONIC_CVTPD2PI:
    case ZYDIS_MNEMONIC_CVTTPD2PI: case ZYDIS_MNEMONIC_MOVDQ2Q:
        return mk(mn, IEM_OPK_MMX, 1, IEM_OPK_XMM, 2);
    case ZYDIS_MNEMONIC_PSLLDQ: case ZYDIS_MNEMONIC_PSRLDQ:
        return mk(mn, IEM_OPK_XMM, 1, IEM_OPK_IMM, 0);
    default:
        return xxi(mn, 1, 2, 0);
    }
}

/* Every registered mnemonic executes in a register form (a missing case in a handler's switch
 * would raise #UD), except the memory-only ones, which reject a register operand with #UD. */
static void test_every_entry_register_form(void **state)
{
    (void)state;
    for (const struct iem_handler_map *m = g_iem_map_simd; m->fn; m++) {
        struct iem_insn in = shape(m->mnemonic);
        int rc;

        g_s->fpu.mxcsr = 0x1f80;
        set_ps(1, 1.0f, 2.0f, 3.0f, 4.0f);
        set_ps(2, 0.5f, 0.25f, 8.0f, 16.0f);
        if (m->mnemonic == ZYDIS_MNEMONIC_MASKMOVDQU)
            set_u32(2, 0, 0, 0, 0); /* no byte selected: no store */
        rc = exec(&in);
        switch (m->mnemonic) {
        case ZYDIS_MNEMONIC_MOVNTPS: case ZYDIS_MNEMONIC_MOVNTPD: case ZYDIS_MNEMONIC_MOVNTDQ:
        case ZYDIS_MNEMONIC_MOVNTI: case ZYDIS_MNEMONIC_LDMXCSR: case ZYDIS_MNEMONIC_STMXCSR:
        case ZYDIS_MNEMONIC_MOVLPS: case ZYDIS_MNEMONIC_MOVLPD: case ZYDIS_MNEMONIC_MOVHPS:
        case ZYDIS_MNEMONIC_MOVHPD: case ZYDIS_MNEMONIC_MOVNTDQA: case ZYDIS_MNEMONIC_LDDQU:
            if (m->mnemonic != ZYDIS_MNEMONIC_MOVLPS && m->mnemonic != ZYDIS_MNEMONIC_MOVLPD &&
                m->mnemonic != ZYDIS_MNEMONIC_MOVHPS && m->mnemonic != ZYDIS_MNEMONIC_MOVHPD &&
                rc != FAULT(IEM_X_UD))
                fail_msg("mnemonic %s: rc %d", ZydisMnemonicGetString((ZydisMnemonic)m->mnemonic), rc);
            break;
        default:
            if (rc != IEM_NEXT)
                fail_msg("mnemonic %s: rc %d", ZydisMnemonicGetString((ZydisMnemonic)m->mnemonic), rc);
            break;
        }
    }
}

static void test_preconditions(void **state)
{
    struct iem_insn in = xx(ZYDIS_MNEMONIC_ADDPS, 1, 2);
    struct iem_insn crc = mk(ZYDIS_MNEMONIC_CRC32, IEM_OPK_GPR, CPU_RBX, IEM_OPK_GPR, CPU_RCX);

    (void)state;
    set_ps(1, 1, 1, 1, 1);
    set_ps(2, 1, 1, 1, 1);
    g_s->cr4 &= ~(uint64_t)IEM_CR4_OSFXSR;
    assert_int_equal(exec(&in), FAULT(IEM_X_UD));
    g_s->cr4 |= IEM_CR4_OSFXSR;
    g_s->cr0 |= IEM_CR0_EM;
    assert_int_equal(exec(&in), FAULT(IEM_X_UD));
    g_s->cr0 &= ~(uint64_t)IEM_CR0_EM;
    g_s->cr0 |= IEM_CR0_TS;
    assert_int_equal(exec(&in), FAULT(IEM_X_NM));
    assert_true(f32(1, 0) == 1.0f);
    /* CRC32 is a general-purpose instruction: TS and OSFXSR do not matter. */
    g_s->cr4 &= ~(uint64_t)IEM_CR4_OSFXSR;
    assert_int_equal(exec(&crc), IEM_NEXT);
    g_s->cr4 |= IEM_CR4_OSFXSR;
    g_s->cr0 &= ~(uint64_t)IEM_CR0_TS;
    in.prefixes = IEM_PFX_LOCK;
    assert_int_equal(exec(&in), FAULT(IEM_X_UD));
    in.prefixes = 0;
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_true(f32(1, 0) == 2.0f);
}

/* ---- Floating-point results and MXCSR ---------------------------------------------------- */

static void test_arith_basic(void **state)
{
    struct iem_insn in;

    (void)state;
    g_s->fpu.mxcsr = 0x1f80;
    set_ps(1, 1.5f, -2.0f, 10.0f, 0.0f);
    set_ps(2, 2.5f, 4.0f, -3.0f, 0.0f);
    in = xx(ZYDIS_MNEMONIC_MULPS, 1, 2);
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_true(f32(1, 0) == 3.75f && f32(1, 1) == -8.0f && f32(1, 2) == -30.0f && f32(1, 3) == 0.0f);
    assert_int_equal(g_s->fpu.mxcsr, 0x1f80);

    /* Scalar forms keep the upper elements of the destination. */
    set_ps(1, 9.0f, 7.0f, 6.0f, 5.0f);
    set_ps(2, 16.0f, 1.0f, 1.0f, 1.0f);
    in = xx(ZYDIS_MNEMONIC_SQRTSS, 1, 2);
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_true(f32(1, 0) == 4.0f && f32(1, 1) == 7.0f && f32(1, 3) == 5.0f);

    set_pd(1, 1.0, 2.0);
    set_pd(2, 10.0, 20.0);
    in = xx(ZYDIS_MNEMONIC_ADDSUBPD, 1, 2);
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_true(f64(1, 0) == -9.0 && f64(1, 1) == 22.0);

    set_ps(1, 1.0f, 2.0f, 3.0f, 4.0f);
    set_ps(2, 10.0f, 20.0f, 30.0f, 40.0f);
    in = xx(ZYDIS_MNEMONIC_HADDPS, 1, 2);
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_true(f32(1, 0) == 3.0f && f32(1, 1) == 7.0f && f32(1, 2) == 30.0f && f32(1, 3) == 70.0f);

    /* MINPS returns the second operand when either is NaN or both are zero. */
    set_ps(1, NAN, -0.0f, 1.0f, 5.0f);
    set_ps(2, 3.0f, 0.0f, 2.0f, NAN);
    in = xx(ZYDIS_MNEMONIC_MINPS, 1, 2);
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_true(f32(1, 0) == 3.0f);
    assert_int_equal(fbits(f32(1, 1)), 0);
    assert_true(f32(1, 2) == 1.0f);
    assert_true(isnan(f32(1, 3)));
    assert_int_equal(g_s->fpu.mxcsr & IEM_MXCSR_IE, IEM_MXCSR_IE);
}

static void test_rounding_modes(void **state)
{
    static const uint32_t rc[4] = { 0x0000, 0x2000, 0x4000, 0x6000 }; /* nearest, down, up, zero */
    uint32_t bits[4];
    struct iem_insn in = xx(ZYDIS_MNEMONIC_DIVSS, 1, 2);

    (void)state;
    for (unsigned i = 0; i < 4; i++) {
        g_s->fpu.mxcsr = 0x1f80 | rc[i];
        set_ps(1, 1.0f, 0, 0, 0);
        set_ps(2, 3.0f, 0, 0, 0);
        assert_int_equal(exec(&in), IEM_NEXT);
        bits[i] = fbits(f32(1, 0));
        assert_int_equal(g_s->fpu.mxcsr & IEM_MXCSR_FLAGS, IEM_MXCSR_PE);
    }
    /* 1/3 = 0x3eaaaaaa.aaa...: nearest and up round up, down and toward zero truncate. */
    assert_int_equal(bits[0], 0x3eaaaaabu);
    assert_int_equal(bits[1], 0x3eaaaaaau);
    assert_int_equal(bits[2], 0x3eaaaaabu);
    assert_int_equal(bits[3], 0x3eaaaaaau);

    /* The negative quotient rounds the other way. */
    g_s->fpu.mxcsr = 0x1f80 | 0x2000;
    set_ps(1, -1.0f, 0, 0, 0);
    set_ps(2, 3.0f, 0, 0, 0);
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_int_equal(fbits(f32(1, 0)), 0xbeaaaaabu);
    g_s->fpu.mxcsr = 0x1f80;
}

static void test_daz_ftz_denormals(void **state)
{
    struct iem_insn add = xx(ZYDIS_MNEMONIC_ADDSS, 1, 2);
    struct iem_insn mul = xx(ZYDIS_MNEMONIC_MULSS, 1, 2);

    (void)state;
    /* Denormal operand without DAZ: exact result, DE only. */
    g_s->fpu.mxcsr = 0x1f80;
    set_u32(1, 0x00000001, 0, 0, 0);
    set_u32(2, 0, 0, 0, 0);
    assert_int_equal(exec(&add), IEM_NEXT);
    assert_int_equal(u32(1, 0), 0x00000001);
    assert_int_equal(g_s->fpu.mxcsr & IEM_MXCSR_FLAGS, IEM_MXCSR_DE);

    /* DAZ: the denormal reads as zero and DE is not raised. */
    g_s->fpu.mxcsr = 0x1f80 | IEM_MXCSR_DAZ;
    set_u32(1, 0x00000001, 0, 0, 0);
    assert_int_equal(exec(&add), IEM_NEXT);
    assert_int_equal(u32(1, 0), 0);
    assert_int_equal(g_s->fpu.mxcsr & IEM_MXCSR_FLAGS, 0);

    /* Tiny inexact result: denormal with UE|PE, or zero under FTZ. */
    g_s->fpu.mxcsr = 0x1f80;
    set_ps(1, FLT_MIN, 0, 0, 0);
    set_ps(2, 0.3f, 0, 0, 0);
    assert_int_equal(exec(&mul), IEM_NEXT);
    assert_true(u32(1, 0) != 0 && u32(1, 0) < 0x00800000);
    assert_int_equal(g_s->fpu.mxcsr & IEM_MXCSR_FLAGS, IEM_MXCSR_UE | IEM_MXCSR_PE);
    g_s->fpu.mxcsr = 0x1f80 | IEM_MXCSR_FZ;
    set_ps(1, -FLT_MIN, 0, 0, 0);
    assert_int_equal(exec(&mul), IEM_NEXT);
    assert_int_equal(u32(1, 0), 0x80000000u);
    assert_int_equal(g_s->fpu.mxcsr & IEM_MXCSR_FLAGS, IEM_MXCSR_UE | IEM_MXCSR_PE);

    /* Exact tiny result with underflow masked: no flag at all. */
    g_s->fpu.mxcsr = 0x1f80;
    set_ps(1, FLT_MIN, 0, 0, 0);
    set_ps(2, 0.5f, 0, 0, 0);
    assert_int_equal(exec(&mul), IEM_NEXT);
    assert_int_equal(u32(1, 0), 0x00400000);
    assert_int_equal(g_s->fpu.mxcsr & IEM_MXCSR_FLAGS, 0);
    g_s->fpu.mxcsr = 0x1f80;
}

static void test_special_values(void **state)
{
    struct iem_insn in;

    (void)state;
    /* SNaN + QNaN: the first operand's NaN, quieted, with IE. */
    g_s->fpu.mxcsr = 0x1f80;
    set_u32(1, 0x7f800001, 0, 0, 0);
    set_u32(2, 0x7fc00002, 0, 0, 0);
    in = xx(ZYDIS_MNEMONIC_ADDSS, 1, 2);
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_int_equal(u32(1, 0), 0x7fc00001);
    assert_int_equal(g_s->fpu.mxcsr & IEM_MXCSR_FLAGS, IEM_MXCSR_IE);

    /* QNaN + QNaN: the destination's, no flag. */
    g_s->fpu.mxcsr = 0x1f80;
    set_u32(1, 0xffc00005, 0, 0, 0);
    set_u32(2, 0x7fc00002, 0, 0, 0);
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_int_equal(u32(1, 0), 0xffc00005);
    assert_int_equal(g_s->fpu.mxcsr & IEM_MXCSR_FLAGS, 0);

    /* 0/0 -> the default NaN with IE; 1/0 -> +inf with ZE; overflow -> inf with OE|PE. */
    set_ps(1, 0.0f, 1.0f, FLT_MAX, 1.0f);
    set_ps(2, 0.0f, 0.0f, 0.5f, 1.0f);
    in = xx(ZYDIS_MNEMONIC_DIVPS, 1, 2);
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_int_equal(u32(1, 0), 0xffc00000u);
    assert_true(isinf(f32(1, 1)) && f32(1, 1) > 0);
    assert_true(isinf(f32(1, 2)));
    assert_true(f32(1, 3) == 1.0f);
    assert_int_equal(g_s->fpu.mxcsr & IEM_MXCSR_FLAGS, IEM_MXCSR_IE | IEM_MXCSR_ZE | IEM_MXCSR_OE | IEM_MXCSR_PE);

    /* Overflow toward zero gives the largest finite value. */
    g_s->fpu.mxcsr = 0x1f80 | 0x6000;
    set_pd(1, DBL_MAX, 0);
    set_pd(2, DBL_MAX, 0);
    in = xx(ZYDIS_MNEMONIC_ADDSD, 1, 2);
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_true(f64(1, 0) == DBL_MAX);
    assert_int_equal(g_s->fpu.mxcsr & IEM_MXCSR_FLAGS, IEM_MXCSR_OE | IEM_MXCSR_PE);

    /* Flags are sticky: a clean operation keeps them. */
    set_pd(1, 1.0, 0);
    set_pd(2, 1.0, 0);
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_int_equal(g_s->fpu.mxcsr & IEM_MXCSR_FLAGS, IEM_MXCSR_OE | IEM_MXCSR_PE);
    g_s->fpu.mxcsr = 0x1f80;
}

static void test_unmasked_exceptions(void **state)
{
    struct iem_insn in = xx(ZYDIS_MNEMONIC_DIVPS, 1, 2);

    (void)state;
    /* ZE unmasked: #XM, destination unchanged, and only the pre-computation flags recorded
     * although another element overflowed (masked). */
    g_s->fpu.mxcsr = 0x1f80 & ~0x0200u;
    set_ps(1, 1.0f, FLT_MAX, 1.0f, 1.0f);
    set_ps(2, 0.0f, 0.5f, 3.0f, 1.0f);
    assert_int_equal(exec(&in), FAULT(IEM_X_XM));
    assert_true(f32(1, 0) == 1.0f && f32(1, 1) == FLT_MAX && f32(1, 2) == 1.0f);
    assert_int_equal(g_s->fpu.mxcsr & IEM_MXCSR_FLAGS, IEM_MXCSR_ZE);

    /* The same with CR4.OSXMMEXCPT=0 is #UD. */
    g_s->cr4 &= ~(uint64_t)IEM_CR4_OSXMMEXCPT;
    assert_int_equal(exec(&in), FAULT(IEM_X_UD));
    g_s->cr4 |= IEM_CR4_OSXMMEXCPT;

    /* PE unmasked: a post-computation exception records every flag found. */
    g_s->fpu.mxcsr = 0x1f80 & ~0x1000u;
    set_ps(1, 1.0f, FLT_MAX, 1.0f, 1.0f);
    set_ps(2, 3.0f, 0.5f, 1.0f, 1.0f);
    assert_int_equal(exec(&in), FAULT(IEM_X_XM));
    assert_true(f32(1, 0) == 1.0f);
    assert_int_equal(g_s->fpu.mxcsr & IEM_MXCSR_FLAGS, IEM_MXCSR_OE | IEM_MXCSR_PE);

    /* IE unmasked with an SNaN in a scalar compare to flags: EFLAGS unchanged. */
    g_s->fpu.mxcsr = 0x1f80 & ~0x0080u;
    g_s->rflags = 0x2 | IEM_F_SF;
    set_u32(1, 0x7f800001, 0, 0, 0);
    set_u32(2, 0, 0, 0, 0);
    in = xx(ZYDIS_MNEMONIC_UCOMISS, 1, 2);
    assert_int_equal(exec(&in), FAULT(IEM_X_XM));
    assert_int_equal(g_s->rflags, 0x2 | IEM_F_SF);

    /* Unmasked underflow: an exact tiny result also raises it (masked it would not). */
    g_s->fpu.mxcsr = 0x1f80 & ~IEM_MXCSR_UM;
    set_ps(1, FLT_MIN, 0, 0, 0);
    set_ps(2, 0.5f, 0, 0, 0);
    in = xx(ZYDIS_MNEMONIC_MULSS, 1, 2);
    assert_int_equal(exec(&in), FAULT(IEM_X_XM));
    assert_true(f32(1, 0) == FLT_MIN);
    assert_int_equal(g_s->fpu.mxcsr & IEM_MXCSR_UE, IEM_MXCSR_UE);
    /* The upper (pass-through) elements do not count: a denormal there is no underflow. */
    g_s->fpu.mxcsr = 0x1f80 & ~IEM_MXCSR_UM;
    set_u32(1, fbits(2.0f), 1, 1, 1);
    set_ps(2, 0.5f, 0, 0, 0);
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_true(f32(1, 0) == 1.0f);
    assert_int_equal(u32(1, 1), 1);
    g_s->fpu.mxcsr = 0x1f80;
    g_s->rflags = 0x2;
}

static void test_compares(void **state)
{
    struct iem_insn in;
    static const struct {
        unsigned mn;
        float a, b;
        uint64_t flags;
    } comis[] = {
        { ZYDIS_MNEMONIC_COMISS, 1.0f, 2.0f, IEM_F_CF },
        { ZYDIS_MNEMONIC_COMISS, 2.0f, 1.0f, 0 },
        { ZYDIS_MNEMONIC_UCOMISS, 2.0f, 2.0f, IEM_F_ZF },
        { ZYDIS_MNEMONIC_UCOMISS, NAN, 2.0f, IEM_F_ZF | IEM_F_PF | IEM_F_CF },
    };

    (void)state;
    for (size_t i = 0; i < sizeof(comis) / sizeof(comis[0]); i++) {
        g_s->fpu.mxcsr = 0x1f80;
        g_s->rflags = 0x2 | IEM_F_OF | IEM_F_SF | IEM_F_AF | IEM_F_DF;
        set_ps(1, comis[i].a, 0, 0, 0);
        set_ps(2, comis[i].b, 0, 0, 0);
        in = xx(comis[i].mn, 1, 2);
        assert_int_equal(exec(&in), IEM_NEXT);
        assert_int_equal(g_s->rflags, 0x2 | IEM_F_DF | comis[i].flags);
        assert_int_equal(g_s->fpu.mxcsr & IEM_MXCSR_FLAGS, 0);
    }
    /* COMISS signals invalid on a QNaN, UCOMISS does not. */
    set_ps(1, NAN, 0, 0, 0);
    in = xx(ZYDIS_MNEMONIC_COMISS, 1, 2);
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_int_equal(g_s->fpu.mxcsr & IEM_MXCSR_FLAGS, IEM_MXCSR_IE);

    /* CMPPS predicates: EQ, LT, UNORD, NLE; LT raises IE on QNaN, EQ does not. */
    g_s->fpu.mxcsr = 0x1f80;
    set_ps(1, 1.0f, 2.0f, NAN, 4.0f);
    set_ps(2, 1.0f, 3.0f, 1.0f, 3.0f);
    in = xxi(ZYDIS_MNEMONIC_CMPPS, 3, 2, 0);
    memcpy(g_s->fpu.xmm[3], g_s->fpu.xmm[1], 16);
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_int_equal(u32(3, 0), 0xffffffffu);
    assert_int_equal(u32(3, 1), 0);
    assert_int_equal(u32(3, 2), 0);
    assert_int_equal(g_s->fpu.mxcsr & IEM_MXCSR_FLAGS, 0);
    memcpy(g_s->fpu.xmm[3], g_s->fpu.xmm[1], 16);
    in.imm = 1; /* LT */
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_int_equal(u32(3, 0), 0);
    assert_int_equal(u32(3, 1), 0xffffffffu);
    assert_int_equal(u32(3, 2), 0);
    assert_int_equal(g_s->fpu.mxcsr & IEM_MXCSR_FLAGS, IEM_MXCSR_IE);
    memcpy(g_s->fpu.xmm[3], g_s->fpu.xmm[1], 16);
    in.imm = 3 | 0xf8; /* UNORD; the reserved bits of the legacy form are ignored */
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_int_equal(u32(3, 2), 0xffffffffu);
    assert_int_equal(u32(3, 0) | u32(3, 1) | u32(3, 3), 0);
    memcpy(g_s->fpu.xmm[3], g_s->fpu.xmm[1], 16);
    in.imm = 6; /* NLE */
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_int_equal(u32(3, 3), 0xffffffffu);
    assert_int_equal(u32(3, 2), 0xffffffffu);
    assert_int_equal(u32(3, 0), 0);

    /* CMPSD (forwarded by the string instruction's handler) compares the low double only. */
    set_pd(4, 1.0, 7.0);
    set_pd(5, 2.0, 0.0);
    in = xxi(ZYDIS_MNEMONIC_CMPSD, 4, 5, 1);
    in.fn = iem_simd_cmpsd;
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_int_equal(u64(4, 0), UINT64_MAX);
    assert_true(f64(4, 1) == 7.0);
    g_s->fpu.mxcsr = 0x1f80;
    g_s->rflags = 0x2;
}

static void test_conversions(void **state)
{
    struct iem_insn in;

    (void)state;
    g_s->fpu.mxcsr = 0x1f80;
    /* Out of range and NaN: integer indefinite with IE. */
    set_ps(2, 3e9f, 0, 0, 0);
    in = mk(ZYDIS_MNEMONIC_CVTTSS2SI, IEM_OPK_GPR, CPU_RBX, IEM_OPK_XMM, 2);
    g_s->gpr[CPU_RBX] = 0x1111111111111111ull;
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_int_equal(g_s->gpr[CPU_RBX], 0x80000000u);
    assert_int_equal(g_s->fpu.mxcsr & IEM_MXCSR_FLAGS, IEM_MXCSR_IE);
    in.op[0].size = 8;
    g_s->fpu.mxcsr = 0x1f80;
    set_u32(2, 0x7fc00000, 0, 0, 0);
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_int_equal(g_s->gpr[CPU_RBX], 0x8000000000000000ull);
    assert_int_equal(g_s->fpu.mxcsr & IEM_MXCSR_FLAGS, IEM_MXCSR_IE);

    /* Rounding of CVTSD2SI follows MXCSR.RC, CVTTSD2SI truncates. */
    g_s->fpu.mxcsr = 0x1f80;
    set_pd(2, 2.5, 0);
    in = mk(ZYDIS_MNEMONIC_CVTSD2SI, IEM_OPK_GPR, CPU_RBX, IEM_OPK_XMM, 2);
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_int_equal(g_s->gpr[CPU_RBX], 2);
    g_s->fpu.mxcsr = 0x1f80 | 0x4000;
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_int_equal(g_s->gpr[CPU_RBX], 3);
    set_pd(2, -2.5, 0);
    in.mnemonic = ZYDIS_MNEMONIC_CVTTSD2SI;
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_int_equal(g_s->gpr[CPU_RBX], 0xfffffffeu);
    assert_int_equal(g_s->fpu.mxcsr & IEM_MXCSR_FLAGS, IEM_MXCSR_PE);

    /* Unmasked IE: the general register is not written. */
    g_s->fpu.mxcsr = 0x1f80 & ~0x0080u;
    set_pd(2, 1e300, 0);
    g_s->gpr[CPU_RBX] = 77;
    assert_int_equal(exec(&in), FAULT(IEM_X_XM));
    assert_int_equal(g_s->gpr[CPU_RBX], 77);

    /* CVTSI2SS from a 64-bit register rounds (PE) and keeps the upper elements. */
    g_s->fpu.mxcsr = 0x1f80;
    set_ps(1, 0, 5.0f, 6.0f, 7.0f);
    g_s->gpr[CPU_RAX] = 0x7fffffffffffffffull;
    in = mk(ZYDIS_MNEMONIC_CVTSI2SS, IEM_OPK_XMM, 1, IEM_OPK_GPR, CPU_RAX);
    in.op[1].size = 8;
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_int_equal(u32(1, 0), 0x5f000000u);
    assert_true(f32(1, 1) == 5.0f);
    assert_int_equal(g_s->fpu.mxcsr & IEM_MXCSR_FLAGS, IEM_MXCSR_PE);
    /* ...and from a 32-bit register reads only the low half, as a signed value. */
    g_s->gpr[CPU_RAX] = 0x12345678fffffffeull;
    in.op[1].size = 4;
    in.mnemonic = ZYDIS_MNEMONIC_CVTSI2SD;
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_true(f64(1, 0) == -2.0);

    /* Packed: CVTPS2DQ out of range gives 0x80000000; CVTPD2PS zeroes the upper half. */
    g_s->fpu.mxcsr = 0x1f80;
    set_ps(2, 1.5f, -1e10f, 2.5f, -0.5f);
    in = xx(ZYDIS_MNEMONIC_CVTPS2DQ, 1, 2);
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_int_equal(u32(1, 0), 2);
    assert_int_equal(u32(1, 1), 0x80000000u);
    assert_int_equal(u32(1, 2), 2);
    assert_int_equal(u32(1, 3), 0);
    set_pd(2, 1.0, 1e300);
    set_u32(1, 9, 9, 9, 9);
    in = xx(ZYDIS_MNEMONIC_CVTPD2PS, 1, 2);
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_true(f32(1, 0) == 1.0f && isinf(f32(1, 1)));
    assert_int_equal(u64(1, 1), 0);
    g_s->fpu.mxcsr = 0x1f80;
}

static void test_mmx_conversions(void **state)
{
    struct iem_insn in;
    uint64_t v;

    (void)state;
    g_s->fpu.mxcsr = 0x1f80;
    g_s->fpu.fsw = 3u << 11; /* TOP = 3 */
    g_s->fpu.ftw = 0x01;
    /* MM2 is physical register 2 = ST((2 - 3) & 7) = st[7] while TOP = 3. */
    v = ((uint64_t)(uint32_t)-7 << 32) | 3;
    memcpy(g_s->fpu.st[7], &v, 8);
    set_ps(1, 0, 0, 11.0f, 12.0f);
    in = mk(ZYDIS_MNEMONIC_CVTPI2PS, IEM_OPK_XMM, 1, IEM_OPK_MMX, 2);
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_true(f32(1, 0) == 3.0f && f32(1, 1) == -7.0f && f32(1, 2) == 11.0f && f32(1, 3) == 12.0f);
    /* The transition: TOP = 0, all tags valid, the stack-ordered slots rotated. */
    assert_int_equal(g_s->fpu.fsw & 0x3800, 0);
    assert_int_equal(g_s->fpu.ftw, 0xff);
    memcpy(&v, g_s->fpu.st[2], 8);
    assert_int_equal(v, ((uint64_t)(uint32_t)-7 << 32) | 3);

    /* CVTTPS2PI truncates into an MMX register, with bits 64-79 set. */
    set_ps(2, -1.75f, 2.99f, 100.0f, 100.0f);
    in = mk(ZYDIS_MNEMONIC_CVTTPS2PI, IEM_OPK_MMX, 5, IEM_OPK_XMM, 2);
    assert_int_equal(exec(&in), IEM_NEXT);
    memcpy(&v, g_s->fpu.st[5], 8);
    assert_int_equal(v, ((uint64_t)2 << 32) | 0xffffffffu);
    assert_int_equal(g_s->fpu.st[5][8], 0xff);
    assert_int_equal(g_s->fpu.st[5][9], 0xff);

    /* MOVQ2DQ / MOVDQ2Q. */
    in = mk(ZYDIS_MNEMONIC_MOVQ2DQ, IEM_OPK_XMM, 3, IEM_OPK_MMX, 5);
    set_u32(3, 1, 2, 3, 4);
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_int_equal(u64(3, 0), ((uint64_t)2 << 32) | 0xffffffffu);
    assert_int_equal(u64(3, 1), 0);
    set_u64(4, 0x1122334455667788ull, 0x99);
    in = mk(ZYDIS_MNEMONIC_MOVDQ2Q, IEM_OPK_MMX, 0, IEM_OPK_XMM, 4);
    assert_int_equal(exec(&in), IEM_NEXT);
    memcpy(&v, g_s->fpu.st[0], 8);
    assert_int_equal(v, 0x1122334455667788ull);

    /* A pending x87 exception is delivered first (#MF with CR0.NE=1). */
    g_s->fpu.fsw = IEM_FSW_ES | IEM_FSW_B | 0x1;
    g_s->fpu.fcw = 0x37e;
    assert_int_equal(exec(&in), FAULT(IEM_X_MF));
    g_s->fpu.fsw = 0;
    g_s->fpu.fcw = 0x37f;
}

/* The MMX forms of shared mnemonics go to the x87/MMX family (iem_mmx_exec). */
static void test_mmx_forwarding(void **state)
{
    struct iem_insn in;
    uint64_t a = 0x0102030405060708ull, b = 0x1010101010101010ull, v;

    (void)state;
    g_s->fpu.fsw = 0;
    g_s->fpu.ftw = 0;
    memcpy(g_s->fpu.st[0], &a, 8);
    memcpy(g_s->fpu.st[1], &b, 8);
    set_u64(0, 7, 7);
    in = mk(ZYDIS_MNEMONIC_PADDB, IEM_OPK_MMX, 0, IEM_OPK_MMX, 1);
    assert_int_equal(exec(&in), IEM_NEXT);
    memcpy(&v, g_s->fpu.st[0], 8);
    assert_int_equal(v, 0x1112131415161718ull);
    assert_int_equal(g_s->fpu.ftw, 0xff);
    assert_int_equal(u64(0, 0), 7); /* XMM0 untouched */

    g_s->gpr[CPU_RBX] = UINT64_MAX;
    in = mk(ZYDIS_MNEMONIC_PMOVMSKB, IEM_OPK_GPR, CPU_RBX, IEM_OPK_MMX, 1);
    b = 0x8000000000000080ull;
    memcpy(g_s->fpu.st[1], &b, 8);
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_int_equal(g_s->gpr[CPU_RBX], 0x81);

    g_s->gpr[CPU_RAX] = 0xabcdef01;
    in = mk(ZYDIS_MNEMONIC_MOVD, IEM_OPK_MMX, 2, IEM_OPK_GPR, CPU_RAX);
    assert_int_equal(exec(&in), IEM_NEXT);
    memcpy(&v, g_s->fpu.st[2], 8);
    assert_int_equal(v, 0xabcdef01);
}

static void test_round_dp(void **state)
{
    static const struct {
        unsigned imm;
        float in, out;
    } cases[] = {
        { 0, 2.5f, 2.0f }, { 0, 3.5f, 4.0f }, { 1, -2.5f, -3.0f }, { 2, 2.1f, 3.0f },
        { 3, -2.9f, -2.0f }, { 8, 2.5f, 2.0f }, { 0xf0, 2.5f, 2.0f },
    };
    struct iem_insn in;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        g_s->fpu.mxcsr = 0x1f80;
        set_ps(2, cases[i].in, 0, 0, 0);
        set_ps(1, 0, 9.0f, 9.0f, 9.0f);
        in = xxi(ZYDIS_MNEMONIC_ROUNDSS, 1, 2, cases[i].imm);
        assert_int_equal(exec(&in), IEM_NEXT);
        assert_true(f32(1, 0) == cases[i].out);
        assert_true(f32(1, 1) == 9.0f);
        /* Precision is reported unless imm8[3] suppresses it. */
        assert_int_equal(g_s->fpu.mxcsr & IEM_MXCSR_PE, (cases[i].imm & 8) ? 0 : IEM_MXCSR_PE);
    }
    /* imm8[2]: the rounding mode comes from MXCSR.RC. */
    g_s->fpu.mxcsr = 0x1f80 | 0x4000;
    set_pd(2, 1.25, -1.25);
    in = xxi(ZYDIS_MNEMONIC_ROUNDPD, 1, 2, 4);
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_true(f64(1, 0) == 2.0 && f64(1, 1) == -1.0);

    g_s->fpu.mxcsr = 0x1f80;
    set_ps(1, 1, 2, 3, 4);
    set_ps(2, 5, 6, 7, 8);
    in = xxi(ZYDIS_MNEMONIC_DPPS, 1, 2, 0xf1);
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_true(f32(1, 0) == 70.0f && f32(1, 1) == 0.0f && f32(1, 3) == 0.0f);
    set_ps(1, 1, 2, 3, 4);
    in.imm = 0x3e;
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_true(f32(1, 0) == 0.0f && f32(1, 1) == 17.0f && f32(1, 3) == 17.0f);
    set_pd(1, 1.5, 2.0);
    set_pd(2, 2.0, 4.0);
    in = xxi(ZYDIS_MNEMONIC_DPPD, 1, 2, 0x32);
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_true(f64(1, 0) == 0.0 && f64(1, 1) == 11.0);
}

/* ---- Integer SIMD ---------------------------------------------------------------------------- */

static void test_saturation(void **state)
{
    struct iem_insn in;

    (void)state;
    memset(g_s->fpu.xmm[1], 100, 16);
    memset(g_s->fpu.xmm[2], 100, 16);
    in = xx(ZYDIS_MNEMONIC_PADDSB, 1, 2);
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_int_equal(g_s->fpu.xmm[1][0], 127);
    assert_int_equal(g_s->fpu.xmm[1][15], 127);

    memset(g_s->fpu.xmm[1], 200, 16);
    in = xx(ZYDIS_MNEMONIC_PADDUSB, 1, 2);
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_int_equal(g_s->fpu.xmm[1][3], 255);

    set_u32(1, 0x00050003, 0, 0, 0);
    set_u32(2, 0x00070009, 0, 0, 0);
    in = xx(ZYDIS_MNEMONIC_PSUBUSW, 1, 2);
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_int_equal(u32(1, 0), 0);

    /* PACKSSWB / PACKUSWB clamp each word. */
    set_u32(1, 0x8000012c, 0x0000ff85, 0x007f0080, 0xffff0001);
    memcpy(g_s->fpu.xmm[3], g_s->fpu.xmm[1], 16);
    in = xx(ZYDIS_MNEMONIC_PACKSSWB, 1, 1);
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_int_equal(u32(1, 0), 0x0085807fu);
    assert_int_equal(u32(1, 1), 0xff017f7fu);
    in = xx(ZYDIS_MNEMONIC_PACKUSWB, 3, 3);
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_int_equal(u32(3, 0), 0x000000ffu);
    assert_int_equal(u32(3, 1), 0x00017f80u);

    /* PMADDUBSW saturates the pair sums; PMULHRSW rounds. */
    memset(g_s->fpu.xmm[1], 0xff, 16);
    memset(g_s->fpu.xmm[2], 0x7f, 16);
    in = xx(ZYDIS_MNEMONIC_PMADDUBSW, 1, 2);
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_int_equal(u16(1, 0), 0x7fff);
    set_u32(1, 0x40004000, 0x80008000, 0, 0);
    set_u32(2, 0x00014000, 0x80008000, 0, 0);
    in = xx(ZYDIS_MNEMONIC_PMULHRSW, 1, 2);
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_int_equal(u16(1, 0), 0x2000);
    assert_int_equal(u16(1, 1), 0x0001);
    assert_int_equal(u16(1, 2), 0x8000);
}

static void test_shifts(void **state)
{
    struct iem_insn in;

    (void)state;
    set_u32(1, 0x80018001, 0x80018001, 0x12345678, 0x9abcdef0);
    in = mk(ZYDIS_MNEMONIC_PSRAW, IEM_OPK_XMM, 1, IEM_OPK_IMM, 0);
    in.imm = 20;
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_int_equal(u32(1, 0), 0xffffffffu);
    assert_int_equal(u32(1, 2), 0);
    set_u32(1, 0x80018001, 0, 0, 0);
    in.mnemonic = ZYDIS_MNEMONIC_PSLLW;
    in.imm = 16;
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_int_equal(u32(1, 0), 0);
    set_u32(1, 0x80018001, 0, 0, 0);
    in.imm = 1;
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_int_equal(u32(1, 0), 0x00020002);

    /* Count from a register: the whole low quadword counts (2^32 + 1 is out of range). */
    set_u64(2, 0x100000001ull, 0);
    set_u64(1, 3, 3);
    in = xx(ZYDIS_MNEMONIC_PSLLQ, 1, 2);
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_int_equal(u64(1, 0), 0);

    /* Byte shifts of the whole register. */
    set_u64(1, 0x0807060504030201ull, 0x100f0e0d0c0b0a09ull);
    in = mk(ZYDIS_MNEMONIC_PSRLDQ, IEM_OPK_XMM, 1, IEM_OPK_IMM, 0);
    in.imm = 3;
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_int_equal(u64(1, 0), 0x0b0a090807060504ull);
    assert_int_equal(u64(1, 1), 0x000000100f0e0d0cull);
    in.mnemonic = ZYDIS_MNEMONIC_PSLLDQ;
    in.imm = 15;
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_int_equal(u64(1, 0), 0);
    assert_int_equal(u64(1, 1), 0x0400000000000000ull);
    in.imm = 16;
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_int_equal(u64(1, 1), 0);
}

static void test_pshufb_palignr(void **state)
{
    struct iem_insn in;

    (void)state;
    set_u64(1, 0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull);
    /* Index bit 7 zeroes the byte; only the low four bits of an index count. */
    set_u64(2, 0x1f80ff0001020304ull, 0x7f10203040506070ull);
    in = xx(ZYDIS_MNEMONIC_PSHUFB, 1, 2);
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_int_equal(u64(1, 0), 0x0f00000001020304ull);
    assert_int_equal(u64(1, 1), 0x0f00000000000000ull);

    static const struct {
        unsigned imm;
        uint64_t lo, hi;
    } al[] = {
        { 0, 0x1716151413121110ull, 0x1f1e1d1c1b1a1918ull },
        { 4, 0x1b1a191817161514ull, 0x030201001f1e1d1cull },
        { 16, 0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull },
        { 20, 0x0b0a090807060504ull, 0x000000000f0e0d0cull },
        { 32, 0, 0 },
        { 255, 0, 0 },
    };
    for (size_t i = 0; i < sizeof(al) / sizeof(al[0]); i++) {
        set_u64(1, 0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull);
        set_u64(2, 0x1716151413121110ull, 0x1f1e1d1c1b1a1918ull);
        in = xxi(ZYDIS_MNEMONIC_PALIGNR, 1, 2, al[i].imm);
        assert_int_equal(exec(&in), IEM_NEXT);
        assert_int_equal(u64(1, 0), al[i].lo);
        assert_int_equal(u64(1, 1), al[i].hi);
    }
}

static void test_shuffles_blends(void **state)
{
    struct iem_insn in;

    (void)state;
    set_u32(2, 10, 11, 12, 13);
    in = xxi(ZYDIS_MNEMONIC_PSHUFD, 1, 2, 0x1b);
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_true(u32(1, 0) == 13 && u32(1, 1) == 12 && u32(1, 2) == 11 && u32(1, 3) == 10);

    set_u32(1, 1, 2, 3, 4);
    in = xxi(ZYDIS_MNEMONIC_SHUFPS, 1, 2, 0xe4 ^ 0x05);
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_true(u32(1, 0) == 2 && u32(1, 1) == 1 && u32(1, 2) == 12 && u32(1, 3) == 13);

    set_u64(1, 0x0003000200010000ull, 0x0007000600050004ull);
    in = xxi(ZYDIS_MNEMONIC_PSHUFHW, 1, 1, 0x00);
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_int_equal(u64(1, 0), 0x0003000200010000ull);
    assert_int_equal(u64(1, 1), 0x0004000400040004ull);

    set_u32(1, 1, 2, 3, 4);
    set_u32(2, 5, 6, 7, 8);
    in = xxi(ZYDIS_MNEMONIC_BLENDPS, 1, 2, 0x5);
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_true(u32(1, 0) == 5 && u32(1, 1) == 2 && u32(1, 2) == 7 && u32(1, 3) == 4);

    /* BLENDVPS picks by the sign bits of the implicit XMM0. */
    set_u32(0, 0x80000000u, 0, 0xffffffffu, 0x7fffffffu);
    set_u32(1, 1, 2, 3, 4);
    in = xx(ZYDIS_MNEMONIC_BLENDVPS, 1, 2);
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_true(u32(1, 0) == 5 && u32(1, 1) == 2 && u32(1, 2) == 7 && u32(1, 3) == 4);

    /* PTEST: ZF when dst AND src is zero, CF when src AND NOT dst is zero. */
    g_s->rflags = 0x2 | IEM_F_SF | IEM_F_OF;
    set_u64(1, 0xf0, 0);
    set_u64(2, 0x0f, 0);
    in = xx(ZYDIS_MNEMONIC_PTEST, 1, 2);
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_int_equal(g_s->rflags, 0x2 | IEM_F_ZF);
    set_u64(2, 0x30, 0);
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_int_equal(g_s->rflags, 0x2 | IEM_F_CF);

    /* MPSADBW and PHMINPOSUW. */
    for (unsigned i = 0; i < 16; i++)
        g_s->fpu.xmm[1][i] = (uint8_t)i;
    set_u32(2, 0, 0x01010101, 0, 0);
    in = xxi(ZYDIS_MNEMONIC_MPSADBW, 1, 2, 0x5);
    assert_int_equal(exec(&in), IEM_NEXT);
    for (unsigned i = 0; i < 8; i++)
        assert_int_equal(u16(1, i), 4 * (4 + i) + 6 - 4);
    set_u64(2, 0x0003000900030005ull, 0x0004000400040004ull);
    in = xx(ZYDIS_MNEMONIC_PHMINPOSUW, 1, 2);
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_int_equal(u64(1, 0), 0x0000000000010003ull);
    assert_int_equal(u64(1, 1), 0);
    g_s->rflags = 0x2;
}

/* ---- Moves, inserts, extracts ------------------------------------------------------------------ */

static void test_moves(void **state)
{
    struct iem_insn in;

    (void)state;
    set_u32(1, 1, 2, 3, 4);
    set_u32(2, 5, 6, 7, 8);
    in = xx(ZYDIS_MNEMONIC_MOVSS, 1, 2);
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_true(u32(1, 0) == 5 && u32(1, 1) == 2 && u32(1, 3) == 4);
    in = xx(ZYDIS_MNEMONIC_MOVSD, 1, 2);
    in.fn = iem_simd_movsd;
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_true(u32(1, 0) == 5 && u32(1, 1) == 6 && u32(1, 2) == 3);
    in = xx(ZYDIS_MNEMONIC_MOVHLPS, 1, 2);
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_true(u32(1, 0) == 7 && u32(1, 1) == 8 && u32(1, 2) == 3);
    in = xx(ZYDIS_MNEMONIC_MOVLHPS, 1, 2);
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_true(u32(1, 0) == 7 && u32(1, 2) == 5 && u32(1, 3) == 6);
    in = xx(ZYDIS_MNEMONIC_MOVAPS, 3, 2);
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_memory_equal(g_s->fpu.xmm[3], g_s->fpu.xmm[2], 16);

    /* MOVD/MOVQ zero-extend into the register; stores to a GPR zero-extend too. */
    set_u32(1, 9, 9, 9, 9);
    g_s->gpr[CPU_RAX] = 0xaabbccdd11223344ull;
    in = mk(ZYDIS_MNEMONIC_MOVD, IEM_OPK_XMM, 1, IEM_OPK_GPR, CPU_RAX);
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_true(u32(1, 0) == 0x11223344 && u32(1, 1) == 0 && u64(1, 1) == 0);
    in = mk(ZYDIS_MNEMONIC_MOVQ, IEM_OPK_XMM, 1, IEM_OPK_GPR, CPU_RAX);
    in.op[1].size = 8;
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_true(u64(1, 0) == 0xaabbccdd11223344ull && u64(1, 1) == 0);
    g_s->gpr[CPU_RBX] = UINT64_MAX;
    in = mk(ZYDIS_MNEMONIC_MOVD, IEM_OPK_GPR, CPU_RBX, IEM_OPK_XMM, 1);
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_int_equal(g_s->gpr[CPU_RBX], 0x11223344);
    set_u64(2, 0x1234, 0x5678);
    in = xx(ZYDIS_MNEMONIC_MOVQ, 1, 2);
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_true(u64(1, 0) == 0x1234 && u64(1, 1) == 0);

    /* SSE3 duplicates. */
    set_u32(2, 1, 2, 3, 4);
    in = xx(ZYDIS_MNEMONIC_MOVSHDUP, 1, 2);
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_true(u32(1, 0) == 2 && u32(1, 1) == 2 && u32(1, 2) == 4 && u32(1, 3) == 4);
    in = xx(ZYDIS_MNEMONIC_MOVDDUP, 1, 2);
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_true(u32(1, 0) == 1 && u32(1, 1) == 2 && u32(1, 2) == 1 && u32(1, 3) == 2);

    /* Sign masks. */
    set_u32(2, 0x80000000u, 1, 0xffffffffu, 0);
    g_s->gpr[CPU_RBX] = UINT64_MAX;
    in = mk(ZYDIS_MNEMONIC_MOVMSKPS, IEM_OPK_GPR, CPU_RBX, IEM_OPK_XMM, 2);
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_int_equal(g_s->gpr[CPU_RBX], 0x5);
    in.mnemonic = ZYDIS_MNEMONIC_PMOVMSKB;
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_int_equal(g_s->gpr[CPU_RBX], 0x0f08);
}

static void test_insert_extract(void **state)
{
    struct iem_insn in;

    (void)state;
    set_u64(2, 0x8877665544332211ull, 0xffeeddccbbaa9980ull);
    g_s->gpr[CPU_RBX] = UINT64_MAX;
    in = mk(ZYDIS_MNEMONIC_PEXTRB, IEM_OPK_GPR, CPU_RBX, IEM_OPK_XMM, 2);
    in.op[2].kind = IEM_OPK_IMM;
    in.imm = 8 + 16; /* only imm8[3:0] counts */
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_int_equal(g_s->gpr[CPU_RBX], 0x80);
    in.mnemonic = ZYDIS_MNEMONIC_PEXTRW;
    in.imm = 7;
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_int_equal(g_s->gpr[CPU_RBX], 0xffee);
    in.mnemonic = ZYDIS_MNEMONIC_PEXTRQ;
    in.op[0].size = 8;
    in.imm = 1;
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_int_equal(g_s->gpr[CPU_RBX], 0xffeeddccbbaa9980ull);
    in.mnemonic = ZYDIS_MNEMONIC_EXTRACTPS;
    in.op[0].size = 4;
    in.imm = 2;
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_int_equal(g_s->gpr[CPU_RBX], 0xbbaa9980u);

    set_u32(1, 1, 2, 3, 4);
    g_s->gpr[CPU_RAX] = 0x123456789abcdef0ull;
    in = mk(ZYDIS_MNEMONIC_PINSRB, IEM_OPK_XMM, 1, IEM_OPK_GPR, CPU_RAX);
    in.op[2].kind = IEM_OPK_IMM;
    in.imm = 5;
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_int_equal(u32(1, 1), 0x0000f002);
    in.mnemonic = ZYDIS_MNEMONIC_PINSRD;
    in.imm = 3;
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_int_equal(u32(1, 3), 0x9abcdef0u);

    /* INSERTPS: source element 3 into element 1, then zero element 0. */
    set_u32(1, 1, 2, 3, 4);
    set_u32(2, 5, 6, 7, 8);
    in = xxi(ZYDIS_MNEMONIC_INSERTPS, 1, 2, (3 << 6) | (1 << 4) | 0x1);
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_true(u32(1, 0) == 0 && u32(1, 1) == 8 && u32(1, 2) == 3 && u32(1, 3) == 4);
}

/* ---- SSE4.2 ------------------------------------------------------------------------------------ */

static void pcmp(unsigned mn, const char *a, const char *b, unsigned imm, int64_t rax, int64_t rdx, unsigned opsize)
{
    struct iem_insn in = xxi(mn, 1, 2, imm);

    in.opsize = (uint8_t)opsize;
    set_bytes(1, a);
    set_bytes(2, b);
    g_s->gpr[CPU_RAX] = (uint64_t)rax;
    g_s->gpr[CPU_RDX] = (uint64_t)rdx;
    g_s->gpr[CPU_RCX] = UINT64_MAX;
    g_s->rflags = 0x2 | IEM_F_AF | IEM_F_PF;
    assert_int_equal(exec(&in), IEM_NEXT);
}

static void test_pcmpstr(void **state)
{
    (void)state;
    /* Equal any, least significant index: the first vowel of "hello world" is at 1. */
    pcmp(ZYDIS_MNEMONIC_PCMPISTRI, "aeiou", "hello world", 0x00, 0, 0, 4);
    assert_int_equal(g_s->gpr[CPU_RCX], 1);
    assert_int_equal(g_s->rflags, 0x2 | IEM_F_CF | IEM_F_ZF | IEM_F_SF);
    /* Most significant index: the last vowel is at 7. */
    pcmp(ZYDIS_MNEMONIC_PCMPISTRI, "aeiou", "hello world", 0x40, 0, 0, 4);
    assert_int_equal(g_s->gpr[CPU_RCX], 7);
    /* Ranges: the first lower-case letter. */
    pcmp(ZYDIS_MNEMONIC_PCMPISTRI, "az", "ABCdef", 0x04, 0, 0, 4);
    assert_int_equal(g_s->gpr[CPU_RCX], 3);
    /* Equal each, negative polarity: the first difference (a strcmp). */
    pcmp(ZYDIS_MNEMONIC_PCMPISTRI, "hello", "help!", 0x18, 0, 0, 4);
    assert_int_equal(g_s->gpr[CPU_RCX], 3);
    pcmp(ZYDIS_MNEMONIC_PCMPISTRI, "hello", "hello", 0x18, 0, 0, 4);
    assert_int_equal(g_s->gpr[CPU_RCX], 16);
    assert_int_equal(g_s->rflags & IEM_F_CF, 0);
    /* Masked negative polarity inverts only the valid elements of the second operand: past
     * both terminators equal-each is true, so the index is the terminator's. */
    pcmp(ZYDIS_MNEMONIC_PCMPISTRI, "hello", "hello", 0x38, 0, 0, 4);
    assert_int_equal(g_s->gpr[CPU_RCX], 5);
    /* Equal ordered: a substring search. */
    pcmp(ZYDIS_MNEMONIC_PCMPISTRI, "wor", "hello world", 0x0c, 0, 0, 4);
    assert_int_equal(g_s->gpr[CPU_RCX], 6);
    /* OF is bit 0 of the result. */
    pcmp(ZYDIS_MNEMONIC_PCMPISTRI, "h", "hello", 0x00, 0, 0, 4);
    assert_int_equal(g_s->gpr[CPU_RCX], 0);
    assert_int_equal(g_s->rflags & IEM_F_OF, IEM_F_OF);
    /* Word elements. */
    {
        struct iem_insn in = xxi(ZYDIS_MNEMONIC_PCMPISTRI, 1, 2, 0x01);

        set_u64(1, 0x1234, 0);
        set_u64(2, 0x0007123400060005ull, 0);
        assert_int_equal(exec(&in), IEM_NEXT);
        assert_int_equal(g_s->gpr[CPU_RCX], 2);
        in.imm = 0x00; /* as byte elements the string ends at the zero byte 1: no match */
        assert_int_equal(exec(&in), IEM_NEXT);
        assert_int_equal(g_s->gpr[CPU_RCX], 16);
    }

    /* Masks: bit mask in XMM0, or expanded to bytes with imm8[6]. */
    pcmp(ZYDIS_MNEMONIC_PCMPISTRM, "lo", "hello", 0x00, 0, 0, 4);
    assert_int_equal(u64(0, 0), 0x1c);
    assert_int_equal(u64(0, 1), 0);
    pcmp(ZYDIS_MNEMONIC_PCMPISTRM, "lo", "hello", 0x40, 0, 0, 4);
    assert_int_equal(u64(0, 0), 0x000000ffffff0000ull);
    assert_int_equal(u64(0, 1), 0);

    /* Explicit lengths: negative lengths count by absolute value; nothing found gives 16. */
    pcmp(ZYDIS_MNEMONIC_PCMPESTRI, "abc", "xxxxb", 0x00, 3, -4, 4);
    assert_int_equal(g_s->gpr[CPU_RCX], 16);
    assert_int_equal(g_s->rflags, 0x2 | IEM_F_ZF | IEM_F_SF);
    pcmp(ZYDIS_MNEMONIC_PCMPESTRI, "abc", "xxxxb", 0x00, 3, -5, 4);
    assert_int_equal(g_s->gpr[CPU_RCX], 4);
    /* With REX.W the lengths are 64-bit: 2^32 + 3 saturates to 16 (the zero bytes join the
     * set and match the zero at index 2); without it EAX = 3. */
    pcmp(ZYDIS_MNEMONIC_PCMPESTRI, "abc", "xx\0x", 0x00, 0x100000003ll, 16, 8);
    assert_int_equal(g_s->gpr[CPU_RCX], 2);
    assert_int_equal(g_s->rflags, 0x2 | IEM_F_CF);
    pcmp(ZYDIS_MNEMONIC_PCMPESTRI, "abc", "xx\0x", 0x00, 0x100000003ll, 16, 4);
    assert_int_equal(g_s->gpr[CPU_RCX], 16);
    assert_int_equal(g_s->rflags, 0x2 | IEM_F_SF);
    pcmp(ZYDIS_MNEMONIC_PCMPESTRM, "abc", "cab", 0x40, 3, 3, 4);
    assert_int_equal(u64(0, 0), 0xffffff);
    g_s->rflags = 0x2;
}

static void test_crc32(void **state)
{
    static const char msg[] = "123456789";
    struct iem_insn in = mk(ZYDIS_MNEMONIC_CRC32, IEM_OPK_GPR, CPU_RBX, IEM_OPK_GPR, CPU_RCX);

    (void)state;
    /* The CRC-32C check value of "123456789" is 0xe3069283. */
    g_s->gpr[CPU_RBX] = 0xffffffffu;
    in.op[1].size = 1;
    for (unsigned i = 0; i < 9; i++) {
        g_s->gpr[CPU_RCX] = 0xffffff00u | (uint8_t)msg[i];
        assert_int_equal(exec(&in), IEM_NEXT);
    }
    assert_int_equal(g_s->gpr[CPU_RBX] ^ 0xffffffffu, 0xe3069283u);

    /* The same bytes as one 8-byte and one 1-byte step, 64-bit destination. */
    g_s->gpr[CPU_RBX] = 0xdeadbeefffffffffull;
    in.op[0].size = 8;
    in.op[1].size = 8;
    memcpy(&g_s->gpr[CPU_RCX], msg, 8);
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_int_equal(g_s->gpr[CPU_RBX] >> 32, 0);
    in.op[1].size = 1;
    g_s->gpr[CPU_RCX] = '9';
    assert_int_equal(exec(&in), IEM_NEXT);
    assert_int_equal(g_s->gpr[CPU_RBX] ^ 0xffffffffu, 0xe3069283u);
}

/* ---- Through the decoder: memory forms, alignment, registration ----------------------------- */

static struct iem_step_result g_res;

/* Assembles "0f 28 0e" style hex (instructions back to back) plus a HLT at CODE_GPA and runs
 * it: NO_FAULT, or the vector of the first exception (RIP then at the faulting instruction). */
static int run(const char *hex)
{
    uint8_t code[64];
    unsigned n = 0;

    for (const char *p = hex; *p && n < sizeof(code) - 1;) {
        char tmp[3] = { 0, 0, 0 };

        if (*p == ' ') {
            p++;
            continue;
        }
        tmp[0] = p[0];
        tmp[1] = p[1];
        code[n++] = (uint8_t)strtoul(tmp, NULL, 16);
        p += 2;
    }
    code[n++] = 0xf4;
    iemh_exec(g_h, CODE_GPA, code, n, 32, &g_res);
    if (g_res.status == IEM_STEP_EXCEPTION)
        return g_res.vector;
    assert_int_equal(g_res.status, IEM_STEP_HLT);
    return NO_FAULT;
}

static void fill_mem(void)
{
    for (unsigned i = 0; i < 256; i++)
        g_mem[i] = (uint8_t)(i * 7 + 1);
}

static void test_alignment(void **state)
{
    uint8_t before[32];

    (void)state;
    fill_mem();
    assert_int_equal(run("0f 28 0e"), NO_FAULT); /* movaps xmm1, [rsi] */
    assert_memory_equal(g_s->fpu.xmm[1], g_mem, 16);
    assert_int_equal(run("0f 28 4e 01"), IEM_X_GP); /* movaps xmm1, [rsi+1] */
    assert_true(g_res.has_error);
    assert_int_equal(g_res.error, 0);
    assert_int_equal(g_s->rip, CODE_GPA);
    assert_int_equal(run("0f 10 4e 01"), NO_FAULT); /* movups xmm1, [rsi+1] */
    assert_memory_equal(g_s->fpu.xmm[1], g_mem + 1, 16);
    assert_int_equal(run("0f 58 4e 08"), IEM_X_GP); /* addps xmm1, [rsi+8] */
    assert_int_equal(run("f3 0f 58 4e 01"), NO_FAULT); /* addss xmm1, [rsi+1]: 4 bytes, no rule */
    assert_int_equal(run("66 0f 38 00 46 11"), IEM_X_GP); /* pshufb xmm0, [rsi+0x11] */
    assert_int_equal(run("66 0f 38 00 46 10"), NO_FAULT);
    assert_int_equal(run("66 0f 3a 61 4e 03 00"), NO_FAULT); /* pcmpestri xmm1, [rsi+3], 0 */
    assert_int_equal(run("f2 0f f0 46 01"), NO_FAULT); /* lddqu xmm0, [rsi+1] */
    assert_memory_equal(g_s->fpu.xmm[0], g_mem + 1, 16);
    assert_int_equal(run("f3 0f 7e 46 01"), NO_FAULT); /* movq xmm0, [rsi+1] */
    assert_int_equal(u64(0, 1), 0);
    assert_int_equal(run("66 0f 38 30 46 01"), NO_FAULT); /* pmovzxbw xmm0, [rsi+1] */
    assert_int_equal(u16(0, 0), g_mem[1]);
    assert_int_equal(run("0f 5a 46 04"), NO_FAULT); /* cvtps2pd xmm0, [rsi+4] */

    /* A misaligned aligned store faults before writing anything. */
    set_u32(1, 0xaaaaaaaa, 0xbbbbbbbb, 0xcccccccc, 0xdddddddd);
    memcpy(before, g_mem, sizeof(before));
    assert_int_equal(run("0f 29 4e 04"), IEM_X_GP); /* movaps [rsi+4], xmm1 */
    assert_memory_equal(g_mem, before, sizeof(before));
    assert_int_equal(run("0f 29 4e 10"), NO_FAULT); /* movaps [rsi+0x10], xmm1 */
    assert_memory_equal(g_mem + 0x10, g_s->fpu.xmm[1], 16);
}

static void test_memory_forms(void **state)
{
    uint32_t v32;
    uint64_t v64;

    (void)state;
    fill_mem();
    /* movntdq [rsi+0x20], xmm2; movnti [rsi+0x30], rax */
    set_u64(2, 0x0123456789abcdefull, 0xfedcba9876543210ull);
    g_s->gpr[CPU_RAX] = 0x1122334455667788ull;
    assert_int_equal(run("66 0f e7 56 20 48 0f c3 46 30"), NO_FAULT);
    assert_memory_equal(g_mem + 0x20, g_s->fpu.xmm[2], 16);
    memcpy(&v64, g_mem + 0x30, 8);
    assert_int_equal(v64, 0x1122334455667788ull);

    /* LDMXCSR: reserved bits -> #GP(0), MXCSR unchanged; a valid value loads; STMXCSR stores. */
    v32 = 0x10000 | 0x1f80;
    memcpy(g_mem, &v32, 4);
    assert_int_equal(run("0f ae 16"), IEM_X_GP);
    assert_int_equal(g_s->fpu.mxcsr, 0x1f80);
    v32 = 0x7f80 | IEM_MXCSR_DAZ | IEM_MXCSR_PE;
    memcpy(g_mem, &v32, 4);
    assert_int_equal(run("0f ae 16 0f ae 5e 04"), NO_FAULT);
    assert_int_equal(g_s->fpu.mxcsr, v32);
    memcpy(&v32, g_mem + 4, 4);
    assert_int_equal(v32, 0x7f80 | IEM_MXCSR_DAZ | IEM_MXCSR_PE);
    g_s->fpu.mxcsr = 0x1f80;

    /* maskmovdqu xmm1, xmm2: only the selected bytes reach DS:RDI. */
    memset(g_mem + 0x50, 0xee, 16);
    set_u64(1, 0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull);
    set_u64(2, 0x0000800000000080ull, 0x80000000000000ffull);
    g_s->gpr[CPU_RDI] = DATA_GPA + 0x50;
    assert_int_equal(run("66 0f f7 ca"), NO_FAULT);
    assert_int_equal(g_mem[0x50], 0x00);
    assert_int_equal(g_mem[0x51], 0xee);
    assert_int_equal(g_mem[0x55], 0x05);
    assert_int_equal(g_mem[0x58], 0x08);
    assert_int_equal(g_mem[0x59], 0xee);
    assert_int_equal(g_mem[0x5f], 0x0f);

    /* CVTPI2PS from memory makes no x87->MMX transition; from an MMX register it does. */
    g_s->fpu.fsw = 5u << 11;
    g_s->fpu.ftw = 0x03;
    v64 = ((uint64_t)4 << 32) | 2;
    memcpy(g_mem, &v64, 8);
    assert_int_equal(run("0f 2a 0e"), NO_FAULT);
    assert_true(f32(1, 0) == 2.0f && f32(1, 1) == 4.0f);
    assert_int_equal(g_s->fpu.fsw, 5u << 11);
    assert_int_equal(g_s->fpu.ftw, 0x03);
    assert_int_equal(run("0f 2a c8"), NO_FAULT);
    assert_int_equal(g_s->fpu.fsw & 0x3800, 0);
    assert_int_equal(g_s->fpu.ftw, 0xff);
    g_s->fpu.fsw = 0;

    /* movss xmm1, [rsi] zeroes the rest; movss [rsi], xmm1 writes four bytes. */
    set_u32(1, 1, 2, 3, 4);
    v32 = 0x3f800000;
    memcpy(g_mem, &v32, 4);
    assert_int_equal(run("f3 0f 10 0e"), NO_FAULT);
    assert_true(u32(1, 0) == 0x3f800000 && u32(1, 1) == 0 && u64(1, 1) == 0);
    set_u32(1, 0x11111111, 2, 3, 4);
    memset(g_mem, 0x77, 8);
    assert_int_equal(run("f3 0f 11 0e"), NO_FAULT);
    memcpy(&v64, g_mem, 8);
    assert_int_equal(v64, 0x7777777711111111ull);

    /* pextrw [rsi], xmm1, 3 writes two bytes; pinsrd xmm1, [rsi], 2 reads four. */
    set_u64(1, 0xbeef000000000000ull, 0);
    memset(g_mem, 0, 8);
    assert_int_equal(run("66 0f 3a 15 0e 03"), NO_FAULT);
    memcpy(&v64, g_mem, 8);
    assert_int_equal(v64, 0xbeef);
    v32 = 0xcafef00d;
    memcpy(g_mem, &v32, 4);
    assert_int_equal(run("66 0f 3a 22 0e 02"), NO_FAULT);
    assert_int_equal(u32(1, 2), 0xcafef00d);

    /* crc32 eax, byte [rsi]: one CRC-32C step (reflected polynomial 0x82f63b78) */
    g_mem[0] = '1';
    g_s->gpr[CPU_RAX] = 0xffffffffu;
    assert_int_equal(run("f2 0f 38 f0 06"), NO_FAULT);
    assert_int_equal(g_s->gpr[CPU_RAX], 0x6f0a661cu);
}

/* MOVSD/CMPSD: the SSE2 forms reach this family through the string instructions' handlers. */
static void test_decoder_shared_mnemonics(void **state)
{
    double d;

    (void)state;
    fill_mem();
    d = 2.5;
    memcpy(g_mem + 8, &d, 8);
    set_u32(0, 9, 9, 9, 9);
    assert_int_equal(run("f2 0f 10 46 08"), NO_FAULT); /* movsd xmm0, [rsi+8] */
    assert_true(f64(0, 0) == 2.5 && u64(0, 1) == 0);
    set_pd(1, 1.5, 7.0);
    set_pd(0, 2.5, 8.0);
    assert_int_equal(run("f2 0f 10 c1"), NO_FAULT); /* movsd xmm0, xmm1 */
    assert_true(f64(0, 0) == 1.5 && f64(0, 1) == 8.0);
    assert_int_equal(run("f2 0f 11 46 08"), NO_FAULT); /* movsd [rsi+8], xmm0 */
    memcpy(&d, g_mem + 8, 8);
    assert_true(d == 1.5);
    set_pd(1, 3.0, 0);
    assert_int_equal(run("f2 0f c2 c1 01"), NO_FAULT); /* cmpltsd xmm0, xmm1 */
    assert_int_equal(u64(0, 0), UINT64_MAX);
    assert_true(f64(0, 1) == 8.0);

    /* The string MOVSD still copies a dword. */
    g_s->gpr[CPU_RSI] = DATA_GPA;
    g_s->gpr[CPU_RDI] = DATA_GPA + 0x80;
    assert_int_equal(run("a5"), NO_FAULT);
    assert_memory_equal(g_mem + 0x80, g_mem, 4);
    g_s->gpr[CPU_RSI] = DATA_GPA;
}

/* Registration through the decoder: MMX forms, and what is not advertised raises #UD. */
static void test_decoder_paths(void **state)
{
    uint64_t v;

    (void)state;
    memset(g_s->fpu.xmm[0], 1, 16);
    memset(g_s->fpu.xmm[1], 2, 16);
    assert_int_equal(run("66 0f fc c1"), NO_FAULT); /* paddb xmm0, xmm1 */
    assert_int_equal(u64(0, 1), 0x0303030303030303ull);
    g_s->fpu.fsw = 0;
    memset(g_s->fpu.st[0], 0x10, 8);
    memset(g_s->fpu.st[1], 0x20, 8);
    assert_int_equal(run("0f fc c1"), NO_FAULT); /* paddb mm0, mm1 */
    memcpy(&v, g_s->fpu.st[0], 8);
    assert_int_equal(v, 0x3030303030303030ull);
    assert_int_equal(run("c5 f0 58 c2"), IEM_X_UD);        /* vaddps (AVX) */
    assert_int_equal(run("66 0f 79 ca"), IEM_X_UD);        /* extrq (SSE4a) */
    assert_int_equal(run("66 0f 38 dc c1"), IEM_X_UD);     /* aesenc */
    assert_int_equal(run("66 0f 3a 44 c1 00"), IEM_X_UD);  /* pclmulqdq */

    /* CR0.TS -> #NM, CR4.OSFXSR=0 -> #UD, through the whole path. */
    g_s->cr0 |= IEM_CR0_TS;
    iemh_sync(g_h);
    assert_int_equal(run("66 0f fc c1"), IEM_X_NM);
    g_s->cr0 &= ~(uint64_t)IEM_CR0_TS;
    g_s->cr4 &= ~(uint64_t)IEM_CR4_OSFXSR;
    iemh_sync(g_h);
    assert_int_equal(run("66 0f fc c1"), IEM_X_UD);
    g_s->cr4 |= IEM_CR4_OSFXSR;
    iemh_sync(g_h);
    assert_int_equal(run("66 0f fc c1"), NO_FAULT);
}

/* 32-bit protected mode: the same alignment rule, with the segment base applied first. */
static void test_prot32(void **state)
{
    (void)state;
    iemh_mode_prot32(g_h, CODE_GPA, STACK_GPA);
    g_s->gpr[CPU_RSI] = DATA_GPA;
    fill_mem();
    assert_int_equal(run("0f 28 0e"), NO_FAULT);
    assert_memory_equal(g_s->fpu.xmm[1], g_mem, 16);
    assert_int_equal(run("0f 28 4e 08"), IEM_X_GP);
    assert_int_equal(run("66 0f 3a 61 4e 03 00"), NO_FAULT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_entry_register_form, setup, teardown),
        cmocka_unit_test_setup_teardown(test_preconditions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_arith_basic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rounding_modes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_daz_ftz_denormals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_special_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unmasked_exceptions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compares, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conversions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mmx_conversions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mmx_forwarding, setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_dp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_saturation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shifts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pshufb_palignr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shuffles_blends, setup, teardown),
        cmocka_unit_test_setup_teardown(test_moves, setup, teardown),
        cmocka_unit_test_setup_teardown(test_insert_extract, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pcmpstr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crc32, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alignment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_forms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decoder_shared_mnemonics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decoder_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prot32, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
