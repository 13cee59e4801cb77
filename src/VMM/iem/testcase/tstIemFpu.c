/* tstIemFpu.c - unit tests of the interpreter's x87 and FXSAVE/FXRSTOR family, run through the whole interpreter with the iem test harness. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fenv.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../iem-fpu.h"

#include "harness.h"

/*
 * Every instruction runs through the whole interpreter: its bytes and a HLT are placed at
 * CODE_GPA and stepped with the harness (decoder, memory path, exceptions reported by
 * iem_step).  Data lives at DATA_GPA; g_mem is the host view of it.  Expected values are
 * independent of the code under test: known bit patterns, exact cases, and IEEE
 * single/double results computed with SSE under the same rounding mode for the x87's
 * single/double precision control.  The image helpers (environment, FXSAVE, tag words)
 * are also called directly.
 */

#define CODE_GPA 0x30000u
#define STACK_GPA 0x3f000u
#define DATA_GPA 0x80000u /* also reachable from real mode (DS = 0x8000) */
#define D(off) ((uint64_t)DATA_GPA + (off))
#define NO_FAULT (-1)

static struct iemh *g_h;
static struct iem_cpu *g_cpu;
static struct cpu_state *g_s;
static uint8_t *g_mem;

/* Assembles "d8 c1" style hex plus a HLT at CODE_GPA and runs it: NO_FAULT or the vector. */
static int run(const char *hex)
{
    uint8_t code[20];
    unsigned n = 0;
    for (const char *p = hex; *p && n < sizeof(code) - 1;) {
        if (*p == ' ') {
            p++;
            continue;
        }
        char tmp[3] = {p[0], p[1], 0};
        code[n++] = (uint8_t)strtoul(tmp, NULL, 16);
        p += 2;
    }
    code[n++] = 0xf4;
    struct iem_step_result res;
    iemh_exec(g_h, CODE_GPA, code, n, 2, &res);
    if (res.status == IEM_STEP_EXCEPTION) {
        assert_int_equal(g_s->rip, CODE_GPA - g_s->seg[CPU_CS].base); /* faults restart the instruction */
        return res.vector;
    }
    assert_int_equal(res.status, IEM_STEP_HLT);
    return NO_FAULT;
}

static void run_ok(const char *hex)
{
    assert_int_equal(run(hex), NO_FAULT);
}

/* Non-FPU state edits go through iemh_sync (the interpreter caches what depends on them). */
static void cr0_set(uint64_t set, uint64_t clear)
{
    g_s->cr0 = (g_s->cr0 | set) & ~clear;
    iemh_sync(g_h);
}

static void mode_long64(void)
{
    iemh_mode_long64(g_h, CODE_GPA, STACK_GPA);
}

static void mode_prot32(void)
{
    iemh_mode_prot32(g_h, CODE_GPA, STACK_GPA);
}

static void mode_real(void)
{
    iemh_mode_real(g_h, CODE_GPA >> 4, 0, STACK_GPA >> 4, 0x100);
    g_s->seg[CPU_DS].sel = DATA_GPA >> 4;
    g_s->seg[CPU_DS].base = DATA_GPA;
    iemh_sync(g_h);
}

static int setup(void **state)
{
    (void)state;
    g_h = iemh_create(0);
    g_cpu = g_h->cpu;
    g_s = g_h->s;
    g_mem = g_h->ram + DATA_GPA;
    mode_long64();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    iemh_destroy(g_h);
    g_h = NULL;
    return 0;
}

struct f80 {
    uint64_t mant;
    uint16_t se; /* sign and exponent */
};

static struct f80 mk80(int sign, unsigned exp, uint64_t mant)
{
    struct f80 v = {mant, (uint16_t)((sign ? 0x8000 : 0) | (exp & 0x7fff))};
    return v;
}

static struct f80 ld80(long double x)
{
    struct f80 v;
    uint8_t raw[16];
    memcpy(raw, &x, sizeof(raw) < sizeof(x) ? sizeof(raw) : sizeof(x));
    memcpy(&v.mant, raw, 8);
    memcpy(&v.se, raw + 8, 2);
    return v;
}

static unsigned top(void)
{
    return iem_fpu_top(&g_s->fpu);
}

static struct f80 st(unsigned i)
{
    struct f80 v;
    memcpy(&v.mant, g_s->fpu.st[i], 8);
    memcpy(&v.se, g_s->fpu.st[i] + 8, 2);
    return v;
}

static bool st_empty(unsigned i)
{
    return !(g_s->fpu.ftw & (1u << ((top() + i) & 7)));
}

/* Pushes a value as FLD would (the test's own bookkeeping, not the code under test). */
static void push80(struct f80 v)
{
    unsigned t = (top() - 1) & 7;
    memmove(g_s->fpu.st[1], g_s->fpu.st[0], 7 * 16);
    memset(g_s->fpu.st[0], 0, 16);
    memcpy(g_s->fpu.st[0], &v.mant, 8);
    memcpy(g_s->fpu.st[0] + 8, &v.se, 2);
    g_s->fpu.fsw = (uint16_t)((g_s->fpu.fsw & ~IEM_FSW_TOP) | (t << IEM_FSW_TOP_SHIFT));
    g_s->fpu.ftw |= (uint8_t)(1u << t);
}

static void push_ld(long double x)
{
    push80(ld80(x));
}

static void check_f80(struct f80 got, struct f80 want, int line)
{
    if (got.mant != want.mant || got.se != want.se)
        fail_msg("line %d: got %04x:%016llx want %04x:%016llx", line, got.se, (unsigned long long)got.mant, want.se,
                 (unsigned long long)want.mant);
}
#define assert_f80(got, want) check_f80((got), (want), __LINE__)

static void set_fcw(uint16_t fcw)
{
    g_s->fpu.fcw = fcw;
}

static uint16_t fsw(void)
{
    return g_s->fpu.fsw;
}

#define RC_NEAR 0x000
#define RC_DOWN 0x400
#define RC_UP   0x800
#define RC_ZERO 0xc00
#define PC_24   0x000
#define PC_53   0x200
#define PC_64   0x300

static const unsigned g_rcs[4] = {RC_NEAR, RC_DOWN, RC_UP, RC_ZERO};
static const int g_fe_modes[4] = {FE_TONEAREST, FE_DOWNWARD, FE_UPWARD, FE_TOWARDZERO};

static const struct f80 g_indefinite = {0xc000000000000000ull, 0xffff};

/* ---- Constants and rounding ------------------------------------------------------------------ */

/* FLDPI & co are rounded per RC from a longer internal value (SDM vol. 1, 8.3.8); the expected
 * patterns are the correctly rounded 64-bit mantissas of pi, log2(e), log2(10), log10(2), ln 2. */
static void test_constants_rounding(void **state)
{
    (void)state;
    static const struct {
        const char *hex;
        unsigned exp;
        uint64_t down, up; /* RD/RZ and RU; RN picks the nearer */
        bool near_up;
    } c[] = {
        {"d9 eb", 0x4000, 0xc90fdaa22168c234ull, 0xc90fdaa22168c235ull, true},  /* FLDPI */
        {"d9 ea", 0x3fff, 0xb8aa3b295c17f0bbull, 0xb8aa3b295c17f0bcull, true},  /* FLDL2E */
        {"d9 e9", 0x4000, 0xd49a784bcd1b8afeull, 0xd49a784bcd1b8affull, false}, /* FLDL2T */
        {"d9 ec", 0x3ffd, 0x9a209a84fbcff798ull, 0x9a209a84fbcff799ull, true},  /* FLDLG2 */
        {"d9 ed", 0x3ffe, 0xb17217f7d1cf79abull, 0xb17217f7d1cf79acull, true},  /* FLDLN2 */
    };
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        for (int r = 0; r < 4; r++) {
            iem_fpu_reset(&g_s->fpu);
            set_fcw((uint16_t)(0x037f | g_rcs[r]));
            run_ok(c[i].hex);
            uint64_t want = g_rcs[r] == RC_UP ? c[i].up : g_rcs[r] == RC_NEAR ? (c[i].near_up ? c[i].up : c[i].down) : c[i].down;
            assert_f80(st(0), mk80(0, c[i].exp, want));
            assert_int_equal(top(), 7);
            assert_false(st_empty(0));
        }
    }
    iem_fpu_reset(&g_s->fpu);
    run_ok("d9 e8"); /* FLD1 */
    run_ok("d9 ee"); /* FLDZ */
    assert_f80(st(0), mk80(0, 0, 0));
    assert_f80(st(1), mk80(0, 0x3fff, 1ull << 63));
}

/* Exact extended-precision ties: 1 + 2^-64 is half an ulp of 1.0. */
static void test_extended_rounding(void **state)
{
    (void)state;
    for (int r = 0; r < 4; r++) {
        for (int neg = 0; neg < 2; neg++) {
            iem_fpu_reset(&g_s->fpu);
            set_fcw((uint16_t)(0x037f | g_rcs[r] | PC_64));
            push80(mk80(neg, 0x3fff - 64, 1ull << 63)); /* 2^-64 */
            push80(mk80(neg, 0x3fff, 1ull << 63));      /* 1.0 */
            run_ok("d8 c1");                             /* FADD ST0, ST1 */
            bool away = (g_rcs[r] == RC_UP && !neg) || (g_rcs[r] == RC_DOWN && neg);
            assert_f80(st(0), mk80(neg, 0x3fff, (1ull << 63) | (away ? 1 : 0)));
            assert_true(fsw() & IEM_FSW_PE);
            assert_int_equal(!!(fsw() & IEM_FSW_C1), away); /* C1: rounded away from zero */
        }
    }
    /* 1/3 at 64 bits: 0xAAAA...AA remainder 2/3. */
    for (int r = 0; r < 4; r++) {
        iem_fpu_reset(&g_s->fpu);
        set_fcw((uint16_t)(0x037f | g_rcs[r] | PC_64));
        push_ld(3.0L);
        push_ld(1.0L);
        run_ok("d8 f1"); /* FDIV ST0, ST1 */
        bool up = g_rcs[r] == RC_UP || g_rcs[r] == RC_NEAR;
        assert_f80(st(0), mk80(0, 0x3ffd, 0xaaaaaaaaaaaaaaaaull + (up ? 1 : 0)));
    }
}

/* Single and double precision control against SSE under the same rounding mode: the x87
 * rounds the significand to 24/53 bits exactly as IEEE single/double arithmetic does when
 * the result is in the normal range. */
static void test_precision_control(void **state)
{
    (void)state;
    static const double ops[][2] = {
        {1.0, 3.0}, {2.0, 7.0}, {-5.5, 3.3}, {1e10, 7e-3}, {123456.789, -0.001}, {0.1, 0.2}, {-1.0, 3.0},
    };
    static const char *insns[] = {"d8 c1", "d8 e1", "d8 c9", "d8 f1", "d9 fa"}; /* add sub mul div sqrt */
    int saved = fegetround();
    for (size_t k = 0; k < sizeof(ops) / sizeof(ops[0]); k++) {
        for (int op = 0; op < 5; op++) {
            for (int r = 0; r < 4; r++) {
                for (int p = 0; p < 2; p++) {
                    double a = ops[k][0], b = ops[k][1];
                    if (op == 4)
                        a = fabs(a);
                    fesetround(g_fe_modes[r]);
                    long double want;
                    if (p == 0) {
                        volatile float fa = (float)a, fb = (float)b, fr;
                        a = fa;
                        b = fb;
                        switch (op) {
                        case 0: fr = fa + fb; break;
                        case 1: fr = fa - fb; break;
                        case 2: fr = fa * fb; break;
                        case 3: fr = fa / fb; break;
                        default: fr = sqrtf(fa); break;
                        }
                        want = fr;
                    } else {
                        volatile double da = a, db = b, dr;
                        switch (op) {
                        case 0: dr = da + db; break;
                        case 1: dr = da - db; break;
                        case 2: dr = da * db; break;
                        case 3: dr = da / db; break;
                        default: dr = sqrt(da); break;
                        }
                        want = dr;
                    }
                    fesetround(saved);
                    iem_fpu_reset(&g_s->fpu);
                    set_fcw((uint16_t)(0x007f | g_rcs[r] | (p ? PC_53 : PC_24)));
                    push_ld(b);
                    push_ld(a);
                    run_ok(insns[op]);
                    assert_f80(st(0), ld80(want));
                }
            }
        }
    }
    fesetround(saved);
}

/* ---- Memory forms ------------------------------------------------------------------------------- */

static void test_loads_stores(void **state)
{
    (void)state;
    g_s->gpr[CPU_RBX] = D(0x1000);
    float f = 1.25f;
    double d = -2.5;
    memcpy(g_mem + 0x1000, &f, 4);
    memcpy(g_mem + 0x1008, &d, 8);
    run_ok("d9 03");    /* FLD dword [rbx] */
    run_ok("dd 43 08"); /* FLD qword [rbx+8] */
    assert_f80(st(0), ld80(-2.5L));
    assert_f80(st(1), ld80(1.25L));
    run_ok("db 7b 10"); /* FSTP tword [rbx+0x10] */
    struct f80 m;
    memcpy(&m.mant, g_mem + 0x1010, 8);
    memcpy(&m.se, g_mem + 0x1018, 2);
    assert_f80(m, ld80(-2.5L));
    assert_int_equal(top(), 7);
    run_ok("d8 03"); /* FADD dword [rbx]: 1.25 + 1.25 */
    assert_f80(st(0), ld80(2.5L));
    run_ok("dd 53 20"); /* FST qword [rbx+0x20] */
    memcpy(&d, g_mem + 0x1020, 8);
    assert_true(d == 2.5);
    /* FIP/FDP/FOP of the last non-control instruction (SDM vol. 1, 8.1.8-8.1.9). */
    assert_int_equal(g_s->fpu.fop, 0x553);  /* DD /2, ModRM 53 */
    assert_int_equal(g_s->fpu.fdp, D(0x1020));
    assert_int_equal(g_s->fpu.fip, CODE_GPA);
    /* A control instruction leaves them alone. */
    uint64_t fip = g_s->fpu.fip;
    run_ok("d9 7b 30"); /* FNSTCW [rbx+0x30] */
    assert_int_equal(g_s->fpu.fip, fip);
    assert_int_equal(g_mem[0x1030] | (g_mem[0x1031] << 8), 0x037f);
    /* 32-bit mode: FIP keeps CS:offset, FDP DS:offset. */
    mode_prot32();
    g_s->gpr[CPU_RBX] = D(0x1000);
    run_ok("d9 43 04"); /* FLD dword [ebx+4] */
    assert_int_equal(g_s->fpu.fip, CODE_GPA | ((uint64_t)IEMH_SEL_CODE32 << 32));
    assert_int_equal(g_s->fpu.fdp, D(0x1004) | ((uint64_t)IEMH_SEL_DATA32 << 32));
    assert_int_equal(g_s->fpu.fop, 0x143);
}

/* A store to memory that faults changes nothing: no pop, no flags. */
static void test_store_fault_atomic(void **state)
{
    (void)state;
    push_ld(1.5L);
    struct cpu_fpu before = g_s->fpu;
    g_s->gpr[CPU_RBX] = 0xfffffffeull; /* the next page, above 4 GiB, is not mapped */
    assert_int_equal(run("dd 1b"), IEM_X_PF); /* FSTP qword [rbx] */
    assert_memory_equal(&before, &g_s->fpu, sizeof(before));
    assert_int_equal(run("d9 03"), IEM_X_PF); /* FLD dword [rbx] */
    assert_memory_equal(&before, &g_s->fpu, sizeof(before));
}

/* FOP is the 11-bit opcode: the low 3 bits of the escape byte and the ModRM byte (SDM vol. 1,
 * 8.1.9), for register, fixed and every addressing form. */
static void test_fop_encodings(void **state)
{
    (void)state;
    push_ld(1.0L);
    push_ld(2.0L);
    run_ok("d8 c1"); /* FADD ST0, ST1 */
    assert_int_equal(g_s->fpu.fop, 0x0c1);
    run_ok("dc e9"); /* FSUB ST1, ST0 */
    assert_int_equal(g_s->fpu.fop, 0x4e9);
    run_ok("d9 fa"); /* FSQRT */
    assert_int_equal(g_s->fpu.fop, 0x1fa);
    run_ok("de d9"); /* FCOMPP */
    assert_int_equal(g_s->fpu.fop, 0x6d9);
    uint64_t fdp = g_s->fpu.fdp;
    run_ok("d9 e8"); /* FLD1: no memory operand, FDP stays */
    assert_int_equal(g_s->fpu.fdp, fdp);
    g_s->gpr[CPU_RSP] = D(0x40);
    g_s->gpr[CPU_RBP] = D(0x40);
    g_s->gpr[CPU_RSI] = D(0x40);
    static const struct { const char *hex; uint16_t fop; } mem[] = {
        {"dd 04 24", 0x504},          /* FLD qword [rsp] (SIB) */
        {"dd 45 00", 0x545},          /* FLD qword [rbp+0] (disp8) */
        {"dd 86 00 01 00 00", 0x586}, /* FLD qword [rsi+0x100] (disp32) */
        {"dd 44 b5 08", 0x544},       /* FLD qword [rbp+rsi*4+8] */
    };
    for (size_t i = 0; i < sizeof(mem) / sizeof(mem[0]); i++) {
        iem_fpu_reset(&g_s->fpu);
        run_ok(mem[i].hex);
        assert_int_equal(g_s->fpu.fop, mem[i].fop);
    }
    run_ok("dd 05 00 10 00 00"); /* FLD qword [rip+0x1000] */
    assert_int_equal(g_s->fpu.fop, 0x505);
    assert_int_equal(g_s->fpu.fdp, CODE_GPA + 6 + 0x1000);
    /* 16-bit addressing. */
    mode_real();
    g_s->gpr[CPU_RBX] = 0x10;
    g_s->gpr[CPU_RSI] = 0x20;
    run_ok("dd 47 10"); /* FLD qword [bx+0x10] */
    assert_int_equal(g_s->fpu.fop, 0x547);
    assert_int_equal(g_s->fpu.fdp, 0x20 | ((uint64_t)(DATA_GPA >> 4) << 32));
    assert_int_equal(g_s->fpu.fip, (uint64_t)(CODE_GPA >> 4) << 32);
    run_ok("dd 00"); /* FLD qword [bx+si] */
    assert_int_equal(g_s->fpu.fop, 0x500);
    run_ok("dd 06 34 12"); /* FLD qword [0x1234] */
    assert_int_equal(g_s->fpu.fop, 0x506);
    assert_int_equal((uint32_t)g_s->fpu.fdp, 0x1234);
    /* LOCK is #UD. */
    mode_long64();
    assert_int_equal(run("f0 d8 c1"), IEM_X_UD);
}

/* ---- Exceptions ----------------------------------------------------------------------------------- */

static void test_zero_divide(void **state)
{
    (void)state;
    /* Masked: infinity with ZE. */
    push_ld(0.0L);
    push_ld(-3.0L);
    run_ok("d8 f1"); /* FDIV ST0, ST1 */
    assert_f80(st(0), mk80(1, 0x7fff, 1ull << 63));
    assert_true(fsw() & IEM_FSW_ZE);
    assert_false(fsw() & IEM_FSW_ES);
    /* Unmasked: destination unchanged, ES/B set, #MF at the next waiting instruction. */
    iem_fpu_reset(&g_s->fpu);
    set_fcw(0x037f & ~IEM_FSW_ZE);
    push_ld(0.0L);
    push_ld(-3.0L);
    run_ok("d8 f1");
    assert_f80(st(0), ld80(-3.0L));
    assert_true(fsw() & IEM_FSW_ZE);
    assert_true(fsw() & IEM_FSW_ES);
    assert_true(fsw() & IEM_FSW_B);
    struct cpu_fpu pending = g_s->fpu;
    assert_int_equal(run("d9 e8"), IEM_X_MF); /* FLD1 */
    assert_memory_equal(&pending, &g_s->fpu, sizeof(pending));
    assert_int_equal(run("9b"), IEM_X_MF);    /* FWAIT */
    assert_int_equal(run("0f fc c1"), IEM_X_MF); /* PADDB mm0, mm1 */
    /* Non-waiting control instructions go through. */
    run_ok("df e0"); /* FNSTSW AX */
    assert_int_equal(g_s->gpr[CPU_RAX] & 0xffff, fsw());
    /* CR0.NE=0: FERR# is the board's; the instruction executes. */
    cr0_set(0, IEM_CR0_NE);
    run_ok("9b");
    cr0_set(IEM_CR0_NE, 0);
    run_ok("db e2"); /* FNCLEX */
    assert_int_equal(fsw() & 0x80ff, 0);
    run_ok("d9 e8");
    assert_f80(st(0), mk80(0, 0x3fff, 1ull << 63));
}

static void test_invalid_and_denormal(void **state)
{
    (void)state;
    /* sqrt(-1): masked invalid gives the QNaN indefinite. */
    push_ld(-1.0L);
    run_ok("d9 fa");
    assert_f80(st(0), g_indefinite);
    assert_true(fsw() & IEM_FSW_IE);
    assert_false(fsw() & IEM_FSW_SF);
    /* Unmasked invalid: the operand stays. */
    iem_fpu_reset(&g_s->fpu);
    set_fcw(0x037e);
    push_ld(-1.0L);
    run_ok("d9 fa");
    assert_f80(st(0), ld80(-1.0L));
    assert_true(fsw() & IEM_FSW_ES);
    /* Denormal operand: DE. */
    iem_fpu_reset(&g_s->fpu);
    push80(mk80(0, 0, 1)); /* smallest denormal */
    push_ld(1.0L);
    run_ok("d8 c9"); /* FMUL ST0, ST1 */
    assert_true(fsw() & IEM_FSW_DE);
    assert_f80(st(0), mk80(0, 0, 1));
    /* Single-precision denormal from memory. */
    iem_fpu_reset(&g_s->fpu);
    uint32_t den = 1;
    memcpy(g_mem + 0x100, &den, 4);
    g_s->gpr[CPU_RSI] = D(0x100);
    push_ld(2.0L);
    run_ok("d8 06"); /* FADD dword [rsi] */
    assert_true(fsw() & IEM_FSW_DE);
    /* SNaN load: IE, quietened. */
    iem_fpu_reset(&g_s->fpu);
    uint32_t snan = 0x7f800001;
    memcpy(g_mem + 0x100, &snan, 4);
    run_ok("d9 06");
    assert_true(fsw() & IEM_FSW_IE);
    assert_f80(st(0), mk80(0, 0x7fff, 0xc000010000000000ull));
}

static void test_overflow_underflow(void **state)
{
    (void)state;
    /* Masked overflow (RN): infinity, OE and PE. */
    push80(mk80(0, 0x7ffe, 1ull << 63));
    push80(mk80(0, 0x7ffe, 1ull << 63));
    run_ok("d8 c9");
    assert_f80(st(0), mk80(0, 0x7fff, 1ull << 63));
    assert_true((fsw() & (IEM_FSW_OE | IEM_FSW_PE)) == (IEM_FSW_OE | IEM_FSW_PE));
    /* Masked overflow with RZ: the largest finite number. */
    iem_fpu_reset(&g_s->fpu);
    set_fcw(0x037f | RC_ZERO);
    push80(mk80(0, 0x7ffe, 1ull << 63));
    push80(mk80(0, 0x7ffe, 1ull << 63));
    run_ok("d8 c9");
    assert_f80(st(0), mk80(0, 0x7ffe, ~0ull));
    /* Unmasked overflow to a register: the result with the exponent divided by 2^24576
     * (SDM vol. 1, 8.5.4): 2^16383 * 2^16383 = 2^32766 -> biased exponent 32766+16383-24576. */
    iem_fpu_reset(&g_s->fpu);
    set_fcw(0x037f & ~IEM_FSW_OE);
    push80(mk80(0, 0x7ffe, 1ull << 63));
    push80(mk80(0, 0x7ffe, 1ull << 63));
    run_ok("d8 c9");
    assert_f80(st(0), mk80(0, 0x7ffe + 0x7ffe - 0x3fff - 24576, 1ull << 63));
    assert_true(fsw() & IEM_FSW_ES);
    /* Unmasked overflow on a store to memory: nothing stored, no pop. */
    iem_fpu_reset(&g_s->fpu);
    set_fcw(0x037f & ~IEM_FSW_OE);
    push80(mk80(0, 0x7ffe, 1ull << 63));
    g_s->gpr[CPU_RBX] = D(0x200);
    memset(g_mem + 0x200, 0xaa, 4);
    run_ok("d9 1b"); /* FSTP dword [rbx] */
    assert_int_equal(g_mem[0x200], 0xaa);
    assert_int_equal(top(), 7);
    assert_true(fsw() & IEM_FSW_OE);
    /* Masked: stored as infinity and popped. */
    iem_fpu_reset(&g_s->fpu);
    push80(mk80(0, 0x7ffe, 1ull << 63));
    run_ok("d9 1b");
    uint32_t v;
    memcpy(&v, g_mem + 0x200, 4);
    assert_int_equal(v, 0x7f800000);
    assert_int_equal(top(), 0);
    assert_true(st_empty(0));
    /* Unmasked underflow to a register: the exact tiny result with the exponent multiplied by
     * 2^24576 (SDM vol. 1, 8.5.5); UE even though it is exact. */
    iem_fpu_reset(&g_s->fpu);
    set_fcw(0x037f & ~IEM_FSW_UE);
    push80(mk80(0, 0x0001, 0xc000000000000001ull));
    push80(mk80(0, 0x3ffe, 1ull << 63)); /* 0.5 */
    run_ok("d8 c9");
    assert_f80(st(0), mk80(0, 24576, 0xc000000000000001ull));
    assert_int_equal(fsw() & (IEM_FSW_UE | IEM_FSW_PE | IEM_FSW_ES), IEM_FSW_UE | IEM_FSW_ES);
    /* Unmasked denormal operand: nothing changes. */
    iem_fpu_reset(&g_s->fpu);
    set_fcw(0x037f & ~IEM_FSW_DE);
    push80(mk80(0, 0, 1));
    push_ld(1.0L);
    run_ok("d8 c9");
    assert_f80(st(0), ld80(1.0L));
    assert_int_equal(fsw() & (IEM_FSW_DE | IEM_FSW_ES), IEM_FSW_DE | IEM_FSW_ES);
    /* Masked underflow: a tiny inexact product gives a denormal and UE|PE. */
    iem_fpu_reset(&g_s->fpu);
    push80(mk80(0, 0x0001, 0xc000000000000001ull));
    push80(mk80(0, 0x3ffe, 1ull << 63)); /* 0.5 */
    run_ok("d8 c9");
    assert_true((fsw() & (IEM_FSW_UE | IEM_FSW_PE)) == (IEM_FSW_UE | IEM_FSW_PE));
    assert_int_equal(st(0).se & 0x7fff, 0);
}

/* Stack faults: IE with SF, C1 = 1 on overflow and 0 on underflow; masked, the QNaN indefinite. */
static void test_stack_faults(void **state)
{
    (void)state;
    for (int i = 0; i < 8; i++)
        run_ok("d9 e8"); /* FLD1 */
    assert_int_equal(fsw() & (IEM_FSW_IE | IEM_FSW_SF), 0);
    run_ok("d9 ee"); /* FLDZ: overflow */
    assert_int_equal(fsw() & (IEM_FSW_IE | IEM_FSW_SF | IEM_FSW_C1), IEM_FSW_IE | IEM_FSW_SF | IEM_FSW_C1);
    assert_f80(st(0), g_indefinite);
    /* Underflow. */
    iem_fpu_reset(&g_s->fpu);
    run_ok("d9 e8");
    run_ok("d8 c1"); /* FADD ST0, ST1 with ST1 empty */
    assert_int_equal(fsw() & (IEM_FSW_IE | IEM_FSW_SF | IEM_FSW_C1), IEM_FSW_IE | IEM_FSW_SF);
    assert_f80(st(0), g_indefinite);
    /* Unmasked underflow: nothing changes but the flags. */
    iem_fpu_reset(&g_s->fpu);
    set_fcw(0x037e);
    run_ok("d9 e8");
    run_ok("de c1"); /* FADDP ST1, ST0 with ST1 empty */
    assert_int_equal(top(), 7);
    assert_f80(st(0), mk80(0, 0x3fff, 1ull << 63));
    assert_true(fsw() & IEM_FSW_ES);
    assert_true(fsw() & IEM_FSW_SF);
    /* FXCH with an empty ST(1) (masked): the empty one becomes the indefinite, then they swap. */
    iem_fpu_reset(&g_s->fpu);
    run_ok("d9 e8");
    run_ok("d9 c9");
    assert_f80(st(0), g_indefinite);
    assert_f80(st(1), mk80(0, 0x3fff, 1ull << 63));
    assert_false(st_empty(1));
    assert_int_equal(fsw() & (IEM_FSW_IE | IEM_FSW_SF | IEM_FSW_C1), IEM_FSW_IE | IEM_FSW_SF);
}

/* ---- Classification, comparisons, conditional moves ------------------------------------------------- */

static void test_fxam(void **state)
{
    (void)state;
    static const struct {
        struct f80 v;
        uint16_t cc; /* C3 C2 C0 */
    } cases[] = {
        {{1ull << 63, 0x3fff}, IEM_FSW_C2},                       /* normal */
        {{0, 0x0000}, IEM_FSW_C3},                                /* zero */
        {{1, 0x0000}, IEM_FSW_C3 | IEM_FSW_C2},                   /* denormal */
        {{1ull << 63, 0x7fff}, IEM_FSW_C2 | IEM_FSW_C0},          /* infinity */
        {{0xc000000000000000ull, 0x7fff}, IEM_FSW_C0},            /* NaN */
        {{0x4000000000000000ull, 0x3fff}, 0},                     /* unnormal: unsupported */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (int neg = 0; neg < 2; neg++) {
            iem_fpu_reset(&g_s->fpu);
            struct f80 v = cases[i].v;
            v.se |= neg ? 0x8000 : 0;
            push80(v);
            run_ok("d9 e5");
            assert_int_equal(fsw() & (IEM_FSW_C3 | IEM_FSW_C2 | IEM_FSW_C0), cases[i].cc);
            assert_int_equal(!!(fsw() & IEM_FSW_C1), neg);
        }
    }
    iem_fpu_reset(&g_s->fpu);
    run_ok("d9 e5"); /* empty */
    assert_int_equal(fsw() & (IEM_FSW_C3 | IEM_FSW_C2 | IEM_FSW_C0), IEM_FSW_C3 | IEM_FSW_C0);
}

static void test_compare(void **state)
{
    (void)state;
    push_ld(2.0L);
    push_ld(1.0L);
    run_ok("d8 d1"); /* FCOM ST1: 1 < 2 -> C0 */
    assert_int_equal(fsw() & (IEM_FSW_C3 | IEM_FSW_C2 | IEM_FSW_C0), IEM_FSW_C0);
    g_s->rflags = 0x2 | IEM_F_OF | IEM_F_SF | IEM_F_AF | IEM_F_ZF;
    run_ok("db f1"); /* FCOMI ST0, ST1 -> CF, OF/SF/AF cleared */
    assert_int_equal(g_s->rflags & IEM_F_ARITH, IEM_F_CF);
    run_ok("de d9"); /* FCOMPP */
    assert_int_equal(top(), 0);
    assert_true(st_empty(0));
    /* Unordered FUCOMIP: ZF PF CF; a QNaN raises nothing. */
    iem_fpu_reset(&g_s->fpu);
    push80(mk80(0, 0x7fff, 0xc000000000000000ull));
    push_ld(1.0L);
    g_s->rflags = 0x2;
    run_ok("df e9"); /* FUCOMIP ST0, ST1 */
    assert_int_equal(g_s->rflags & IEM_F_ARITH, IEM_F_ZF | IEM_F_PF | IEM_F_CF);
    assert_false(fsw() & IEM_FSW_IE);
    assert_int_equal(top(), 7);
    /* FCOMI with a QNaN: invalid. */
    push_ld(1.0L);
    run_ok("db f1");
    assert_true(fsw() & IEM_FSW_IE);
    /* FTST of a negative number: C0. */
    iem_fpu_reset(&g_s->fpu);
    push_ld(-4.0L);
    run_ok("d9 e4");
    assert_int_equal(fsw() & (IEM_FSW_C3 | IEM_FSW_C2 | IEM_FSW_C0), IEM_FSW_C0);
    /* FICOM with an m16 integer: -4 == -4 -> C3. */
    int16_t m = -4;
    memcpy(g_mem + 0x300, &m, 2);
    g_s->gpr[CPU_RDI] = D(0x300);
    run_ok("de 17");
    assert_int_equal(fsw() & (IEM_FSW_C3 | IEM_FSW_C2 | IEM_FSW_C0), IEM_FSW_C3);
}

static void test_fcmov(void **state)
{
    (void)state;
    push_ld(5.0L);
    push_ld(7.0L);
    g_s->rflags = 0x2;
    run_ok("da c1"); /* FCMOVB ST0, ST1: CF=0 -> no move */
    assert_f80(st(0), ld80(7.0L));
    g_s->rflags = 0x2 | IEM_F_CF;
    run_ok("da c1");
    assert_f80(st(0), ld80(5.0L));
    g_s->rflags = 0x2 | IEM_F_ZF;
    push_ld(9.0L);
    run_ok("db c9"); /* FCMOVNE: ZF=1 -> no move */
    assert_f80(st(0), ld80(9.0L));
    run_ok("da c9"); /* FCMOVE */
    assert_f80(st(0), ld80(5.0L));
    g_s->rflags = 0x2 | IEM_F_PF;
    run_ok("db da"); /* FCMOVNU ST0, ST2: PF=1 -> no move */
    assert_f80(st(0), ld80(5.0L));
    assert_int_equal(g_s->rflags, 0x2 | IEM_F_PF);
}

/* ---- Integers and BCD ---------------------------------------------------------------------------------- */

static void test_integer_conversions(void **state)
{
    (void)state;
    g_s->gpr[CPU_RBX] = D(0x400);
    int64_t big = -1234567890123456789ll;
    memcpy(g_mem + 0x400, &big, 8);
    run_ok("df 2b"); /* FILD qword [rbx] */
    assert_f80(st(0), ld80((long double)big));
    run_ok("df 7b 08"); /* FISTP qword [rbx+8] */
    int64_t back;
    memcpy(&back, g_mem + 0x408, 8);
    assert_int_equal(back, big);
    /* Rounding of FIST follows RC; FISTTP truncates. */
    static const struct { long double v; int16_t rn, rd, ru, rz; } r[] = {
        {2.5L, 2, 2, 3, 2}, {-2.5L, -2, -3, -2, -2}, {3.5L, 4, 3, 4, 3}, {-0.75L, -1, -1, 0, 0},
    };
    for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++) {
        const int16_t want[4] = {r[i].rn, r[i].rd, r[i].ru, r[i].rz};
        for (int m = 0; m < 4; m++) {
            iem_fpu_reset(&g_s->fpu);
            set_fcw((uint16_t)(0x037f | g_rcs[m]));
            push_ld(r[i].v);
            run_ok("df 13"); /* FIST word [rbx] */
            int16_t w;
            memcpy(&w, g_mem + 0x400, 2);
            assert_int_equal(w, want[m]);
            assert_true(fsw() & IEM_FSW_PE);
            run_ok("df 0b"); /* FISTTP word [rbx] */
            memcpy(&w, g_mem + 0x400, 2);
            assert_int_equal(w, r[i].rz);
            assert_int_equal(top(), 0);
        }
    }
    /* Out of range: IE, masked -> the integer indefinite. */
    iem_fpu_reset(&g_s->fpu);
    push_ld(40000.0L);
    run_ok("df 13");
    assert_int_equal(g_mem[0x400] | (g_mem[0x401] << 8), 0x8000);
    assert_true(fsw() & IEM_FSW_IE);
    push80(mk80(0, 0x7fff, 0xc000000000000000ull)); /* NaN */
    run_ok("db 1b"); /* FISTP dword [rbx] */
    uint32_t d;
    memcpy(&d, g_mem + 0x400, 4);
    assert_int_equal(d, 0x80000000u);
    /* Unmasked: memory untouched, no pop. */
    iem_fpu_reset(&g_s->fpu);
    set_fcw(0x037e);
    memset(g_mem + 0x400, 0x55, 8);
    push_ld(1e30L);
    run_ok("df 3b"); /* FISTP qword [rbx] */
    assert_int_equal(g_mem[0x400], 0x55);
    assert_int_equal(top(), 7);
    /* FIADD m32. */
    iem_fpu_reset(&g_s->fpu);
    int32_t i32 = -7;
    memcpy(g_mem + 0x400, &i32, 4);
    push_ld(10.0L);
    run_ok("da 03");
    assert_f80(st(0), ld80(3.0L));
}

static void test_bcd(void **state)
{
    (void)state;
    static const uint8_t bcd[10] = {0x78, 0x56, 0x34, 0x12, 0x90, 0x78, 0x56, 0x34, 0x12, 0x80};
    memcpy(g_mem + 0x500, bcd, 10);
    g_s->gpr[CPU_RBX] = D(0x500);
    run_ok("df 23"); /* FBLD [rbx] */
    assert_f80(st(0), ld80(-123456789012345678.0L));
    run_ok("df 73 10"); /* FBSTP [rbx+0x10] */
    assert_memory_equal(g_mem + 0x510, bcd, 10);
    assert_int_equal(top(), 0);
    /* Rounded per RC before conversion. */
    set_fcw(0x037f | RC_UP);
    push_ld(41.25L);
    run_ok("df 73 10");
    static const uint8_t b42[10] = {0x42};
    assert_memory_equal(g_mem + 0x510, b42, 10);
    /* Out of range (>= 10^18): IE, masked -> the packed BCD indefinite. */
    set_fcw(0x037f);
    push_ld(1e18L);
    run_ok("df 73 10");
    static const uint8_t indef[10] = {0, 0, 0, 0, 0, 0, 0, 0xc0, 0xff, 0xff};
    assert_memory_equal(g_mem + 0x510, indef, 10);
    assert_true(fsw() & IEM_FSW_IE);
}

/* ---- Transcendentals and the rest of the arithmetic ---------------------------------------------------------- */

static void test_misc_arith(void **state)
{
    (void)state;
    push_ld(-2.75L);
    run_ok("d9 e1"); /* FABS */
    assert_f80(st(0), ld80(2.75L));
    run_ok("d9 e0"); /* FCHS */
    assert_f80(st(0), ld80(-2.75L));
    run_ok("d9 fc"); /* FRNDINT (RN): -3 */
    assert_f80(st(0), ld80(-3.0L));
    push_ld(3.0L);
    push_ld(1.5L);
    run_ok("d9 fd"); /* FSCALE: 1.5 * 2^3 */
    assert_f80(st(0), ld80(12.0L));
    run_ok("d9 f4"); /* FXTRACT: 12 = 1.5 * 2^3 */
    assert_f80(st(0), ld80(1.5L));
    assert_f80(st(1), ld80(3.0L));
    /* FPREM: 10 mod 3 = 1, quotient 3 -> C0 C3 C1 = q2 q1 q0 = 0 1 1. */
    iem_fpu_reset(&g_s->fpu);
    push_ld(3.0L);
    push_ld(10.0L);
    run_ok("d9 f8");
    assert_f80(st(0), ld80(1.0L));
    assert_int_equal(fsw() & IEM_FSW_CC, IEM_FSW_C3 | IEM_FSW_C1);
    /* FPREM1: 11 rem 3 = -1 (quotient rounded to 4). */
    iem_fpu_reset(&g_s->fpu);
    push_ld(3.0L);
    push_ld(11.0L);
    run_ok("d9 f5");
    assert_f80(st(0), ld80(-1.0L));
    /* Transcendentals on exact points. */
    iem_fpu_reset(&g_s->fpu);
    push_ld(0.0L);
    run_ok("d9 fb"); /* FSINCOS(0): ST0 = cos = 1, ST1 = sin = 0 */
    assert_f80(st(0), ld80(1.0L));
    assert_f80(st(1), ld80(0.0L));
    iem_fpu_reset(&g_s->fpu);
    push_ld(0.0L);
    run_ok("d9 f2"); /* FPTAN(0): 1.0 pushed on 0 */
    assert_f80(st(0), ld80(1.0L));
    assert_f80(st(1), ld80(0.0L));
    iem_fpu_reset(&g_s->fpu);
    push_ld(0x1p64L);
    run_ok("d9 fe"); /* FSIN out of range: C2 set, operand unchanged */
    assert_true(fsw() & IEM_FSW_C2);
    assert_f80(st(0), ld80(0x1p64L));
    iem_fpu_reset(&g_s->fpu);
    push_ld(3.0L);
    push_ld(8.0L);
    run_ok("d9 f1"); /* FYL2X: 3 * log2(8) = 9 */
    assert_f80(st(0), ld80(9.0L));
    assert_int_equal(top(), 7);
    iem_fpu_reset(&g_s->fpu);
    push_ld(1.0L);
    run_ok("d9 f0"); /* F2XM1(1) = 1 */
    assert_f80(st(0), ld80(1.0L));
    iem_fpu_reset(&g_s->fpu);
    push_ld(1.0L);
    push_ld(1.0L);
    run_ok("d9 f3"); /* FPATAN(1/1) = pi/4 */
    assert_f80(st(0), mk80(0, 0x3ffe, 0xc90fdaa22168c235ull));
    /* Reversed subtraction and division, popping forms. */
    iem_fpu_reset(&g_s->fpu);
    push_ld(8.0L);
    push_ld(2.0L);
    run_ok("de e9"); /* FSUBP ST1, ST0: 8 - 2 (Intel: ST(1) = ST(1) - ST(0)) */
    assert_f80(st(0), ld80(6.0L));
    push_ld(3.0L);
    run_ok("de f1"); /* FDIVRP ST1, ST0: ST(1) = ST(0) / ST(1) = 3/6 */
    assert_f80(st(0), ld80(0.5L));
    push_ld(4.0L);
    run_ok("dc e9"); /* FSUB ST1, ST0 (DC E8+i): ST(1) = ST(1) - ST(0) = 0.5 - 4 */
    assert_f80(st(1), ld80(-3.5L));
}

static void test_stack_ops(void **state)
{
    (void)state;
    push_ld(1.0L);
    push_ld(2.0L);
    run_ok("d9 c9"); /* FXCH */
    assert_f80(st(0), ld80(1.0L));
    assert_f80(st(1), ld80(2.0L));
    run_ok("d9 f7"); /* FINCSTP: TOP+1, tags unchanged */
    assert_int_equal(top(), 7);
    assert_f80(st(0), ld80(2.0L));
    assert_false(st_empty(7));
    run_ok("d9 f6"); /* FDECSTP */
    assert_int_equal(top(), 6);
    run_ok("dd c1"); /* FFREE ST1 */
    assert_true(st_empty(1));
    assert_false(st_empty(0));
    run_ok("df c0"); /* FFREEP ST0 */
    assert_true(st_empty(0));
    assert_int_equal(top(), 7);
    run_ok("d9 d0"); /* FNOP */
    run_ok("dd d8"); /* FSTP ST0 with ST0 empty: underflow */
    assert_true(fsw() & IEM_FSW_SF);
    /* FLD ST(i) and FST ST(i). */
    iem_fpu_reset(&g_s->fpu);
    push_ld(4.0L);
    push_ld(5.0L);
    run_ok("d9 c1"); /* FLD ST1 */
    assert_f80(st(0), ld80(4.0L));
    run_ok("dd d2"); /* FST ST2 */
    assert_f80(st(2), ld80(4.0L));
    assert_int_equal(top(), 5);
}

/* ---- Control, environment and save formats --------------------------------------------------------------------- */

static void test_control_words(void **state)
{
    (void)state;
    g_s->gpr[CPU_RBX] = D(0x600);
    uint16_t cw = 0xffff;
    memcpy(g_mem + 0x600, &cw, 2);
    run_ok("d9 2b"); /* FLDCW: bit 6 reads 1, bits 13-15 read 0 (checked on Intel hardware) */
    assert_int_equal(g_s->fpu.fcw, 0x1f7f);
    cw = 0;
    memcpy(g_mem + 0x600, &cw, 2);
    run_ok("d9 2b");
    assert_int_equal(g_s->fpu.fcw, 0x0040);
    /* Unmasking a set flag makes it pending. */
    cw = 0x037f;
    memcpy(g_mem + 0x600, &cw, 2);
    run_ok("d9 2b");
    g_s->fpu.fsw |= IEM_FSW_ZE;
    cw = 0x037b;
    memcpy(g_mem + 0x600, &cw, 2);
    run_ok("d9 2b");
    assert_true(fsw() & IEM_FSW_ES);
    assert_int_equal(run("d9 2b"), IEM_X_MF); /* FLDCW itself waits */
    run_ok("dd 3b"); /* FNSTSW [rbx] */
    assert_int_equal(g_mem[0x600] | (g_mem[0x601] << 8), fsw());
    run_ok("db e3"); /* FNINIT */
    assert_int_equal(g_s->fpu.fcw, 0x037f);
    assert_int_equal(fsw(), 0);
    assert_int_equal(g_s->fpu.ftw, 0);
    assert_int_equal(g_s->fpu.fip, 0);
    run_ok("db e0"); /* FENI, FDISI, FSETPM: nothing */
    run_ok("db e1");
    run_ok("db e4");
    assert_int_equal(g_s->fpu.fcw, 0x037f);
}

static void test_tag_words(void **state)
{
    (void)state;
    push80(mk80(0, 0x7fff, 1ull << 63)); /* special (infinity) */
    push80(mk80(0, 0x0000, 0));          /* zero */
    push80(mk80(0, 0x0000, 5));          /* special (denormal) */
    push80(mk80(0, 0x3fff, 1ull << 62)); /* special (unnormal) */
    push80(mk80(1, 0x4000, 1ull << 63)); /* valid */
    /* TOP = 3: physical R3 valid, R4 special, R5 special, R6 zero, R7 special, R0-R2 empty. */
    assert_int_equal(top(), 3);
    uint16_t full = iem_fpu_tags_full(&g_s->fpu);
    assert_int_equal(full, 0x3f | (0 << 6) | (2 << 8) | (2 << 10) | (1 << 12) | (2u << 14));
    assert_int_equal(iem_fpu_tags_abridge(full), 0xf8);
    assert_int_equal(iem_fpu_tags_abridge(0xffff), 0);
    assert_int_equal(iem_fpu_tags_abridge(0x0000), 0xff);
}

static void test_env_formats(void **state)
{
    (void)state;
    struct cpu_fpu *f = &g_s->fpu;
    push_ld(1.0L);
    f->fcw = 0x027f;
    f->fsw |= IEM_FSW_C2 | IEM_FSW_PE;
    f->fop = 0x1d9;
    f->fip = 0x12345678 | (0x23ull << 32);
    f->fdp = 0x9abcdef0 | (0x2bull << 32);
    uint8_t b[28];
    uint8_t e32p[28] = {0x7f, 0x02, 0xff, 0xff, 0x20, 0x3c, 0xff, 0xff, 0xff, 0x3f, 0xff, 0xff, 0x78, 0x56,
                        0x34, 0x12, 0x23, 0x00, 0xd9, 0x01, 0xf0, 0xde, 0xbc, 0x9a, 0x2b, 0x00, 0xff, 0xff};
    assert_int_equal(iem_fpu_env_store(f, b, false, false, false), 28);
    assert_memory_equal(b, e32p, 28);
    /* 16-bit protected: offsets truncated to 16 bits, selectors, no FOP. */
    uint8_t e16p[14] = {0x7f, 0x02, 0x20, 0x3c, 0xff, 0x3f, 0x78, 0x56, 0x23, 0x00, 0xf0, 0xde, 0x2b, 0x00};
    assert_int_equal(iem_fpu_env_store(f, b, true, false, false), 14);
    assert_memory_equal(b, e16p, 14);
    /* Real mode: linear = selector * 16 + offset, split around FOP. */
    f->fip = 0x1234 | (0xf000ull << 32); /* f1234 */
    f->fdp = 0x0010 | (0x9000ull << 32); /* 90010 */
    uint8_t e16r[14] = {0x7f, 0x02, 0x20, 0x3c, 0xff, 0x3f, 0x34, 0x12, 0xd9, 0xf1, 0x10, 0x00, 0x00, 0x90};
    assert_int_equal(iem_fpu_env_store(f, b, true, true, false), 14);
    assert_memory_equal(b, e16r, 14);
    uint8_t e32r[28] = {0x7f, 0x02, 0xff, 0xff, 0x20, 0x3c, 0xff, 0xff, 0xff, 0x3f, 0xff, 0xff, 0x34, 0x12,
                        0xff, 0xff, 0xd9, 0xf1, 0x00, 0x00, 0x10, 0x00, 0xff, 0xff, 0x00, 0x90, 0x00, 0x00};
    assert_int_equal(iem_fpu_env_store(f, b, false, true, false), 28);
    assert_memory_equal(b, e32r, 28);
    /* Loading each format back gives the same environment (real: the linear address). */
    struct cpu_fpu g = *f;
    iem_fpu_env_load(&g, e32r, false, true);
    assert_int_equal(g.fip, 0xf1234);
    assert_int_equal(g.fdp, 0x90010);
    assert_int_equal(g.fop, 0x1d9);
    assert_int_equal(g.fcw, 0x027f);
    assert_int_equal(g.fsw, f->fsw);
    assert_int_equal(g.ftw, f->ftw);
    iem_fpu_env_load(&g, e16r, true, true);
    assert_int_equal(g.fip, 0xf1234);
    assert_int_equal(g.fdp, 0x90010);
    iem_fpu_env_load(&g, e32p, false, false);
    assert_int_equal(g.fip, 0x12345678 | (0x23ull << 32));
    assert_int_equal(g.fdp, 0x9abcdef0 | (0x2bull << 32));
    /* Loading an environment with an unmasked exception makes it pending; tags from "empty" only. */
    uint8_t e[28];
    memcpy(e, e32p, 28);
    e[0] = 0x7b;   /* ZE unmasked */
    e[4] = 0x04;   /* ZE set */
    e[8] = 0xfc;   /* R0 valid, the others empty */
    e[9] = 0xff;
    iem_fpu_env_load(&g, e, false, false);
    assert_true(g.fsw & IEM_FSW_ES);
    assert_int_equal(g.ftw, 0x01);
}

static void test_fnstenv_fldenv_insns(void **state)
{
    (void)state;
    g_s->gpr[CPU_RBX] = D(0x700);
    set_fcw(0x037b);
    g_s->fpu.fsw |= IEM_FSW_ZE;
    g_s->fpu.fsw = iem_fpu_fsw_summary(g_s->fpu.fsw, g_s->fpu.fcw);
    run_ok("d9 33"); /* FNSTENV [rbx]: a non-waiting instruction, then masks everything */
    assert_int_equal(g_mem[0x700], 0x7b);
    assert_int_equal(g_mem[0x704], 0x84);
    assert_int_equal(g_s->fpu.fcw, 0x037f);
    assert_false(fsw() & IEM_FSW_ES);
    run_ok("d9 23"); /* FLDENV [rbx]: the pending exception comes back */
    assert_int_equal(g_s->fpu.fcw, 0x037b);
    assert_true(fsw() & IEM_FSW_ES);
    assert_int_equal(run("d9 e8"), IEM_X_MF);
    /* 16-bit operand size. */
    run_ok("db e3");
    run_ok("66 d9 33");
    assert_int_equal(g_mem[0x700] | (g_mem[0x701] << 8), 0x037f);
    assert_int_equal(g_mem[0x704] | (g_mem[0x705] << 8), 0xffff);
}

static void test_fsave_frstor(void **state)
{
    (void)state;
    g_s->gpr[CPU_RBX] = D(0x800);
    push_ld(1.0L);
    push_ld(2.0L);
    push_ld(3.0L);
    g_s->fpu.fcw = 0x0b7f;
    struct cpu_fpu before = g_s->fpu;
    run_ok("dd 33"); /* FNSAVE [rbx]: 108 bytes, then FNINIT */
    assert_int_equal(g_mem[0x800] | (g_mem[0x801] << 8), 0x0b7f);
    struct f80 r0;
    memcpy(&r0.mant, g_mem + 0x800 + 28, 8);
    memcpy(&r0.se, g_mem + 0x800 + 36, 2);
    assert_f80(r0, ld80(3.0L)); /* ST(0) first */
    memcpy(&r0.mant, g_mem + 0x800 + 28 + 20, 8);
    memcpy(&r0.se, g_mem + 0x800 + 28 + 28, 2);
    assert_f80(r0, ld80(1.0L));
    assert_int_equal(g_s->fpu.fcw, 0x037f);
    assert_int_equal(g_s->fpu.ftw, 0);
    run_ok("dd 23"); /* FRSTOR [rbx] */
    assert_int_equal(g_s->fpu.fcw, before.fcw);
    assert_int_equal(g_s->fpu.fsw, before.fsw);
    assert_int_equal(g_s->fpu.ftw, before.ftw);
    assert_memory_equal(g_s->fpu.st, before.st, sizeof(before.st));
    /* 16-bit real mode: 94 bytes. */
    struct cpu_fpu keep_fpu = g_s->fpu;
    mode_real();
    g_s->fpu = keep_fpu;
    g_s->gpr[CPU_RBX] = 0x900; /* DS:BX = DATA_GPA + 0x900 */
    memset(g_mem + 0x900, 0xee, 200);
    run_ok("dd 37"); /* FNSAVE [bx] */
    assert_int_equal(g_mem[0x900 + 94], 0xee);
    assert_int_not_equal(g_mem[0x900 + 93], 0xee);
    run_ok("dd 27"); /* FRSTOR [bx] */
    assert_memory_equal(g_s->fpu.st, before.st, sizeof(before.st));
    assert_int_equal(g_s->fpu.ftw, before.ftw);
    /* A fault in the middle of the image changes nothing. */
    keep_fpu = g_s->fpu;
    mode_long64();
    g_s->fpu = keep_fpu;
    g_s->gpr[CPU_RBX] = 0xffffffc0ull;
    struct cpu_fpu keep = g_s->fpu;
    assert_int_equal(run("dd 33"), IEM_X_PF);
    assert_memory_equal(&keep, &g_s->fpu, sizeof(keep));
}

/* The environment formats picked by mode and operand size, through the instructions. */
static void test_env_insn_modes(void **state)
{
    (void)state;
    uint32_t v;
    /* 32-bit protected mode: FIP = EIP with FCS, FOP in the upper half of dword 4. */
    mode_prot32();
    g_s->gpr[CPU_RBX] = D(0xa00);
    run_ok("d9 43 08"); /* FLD dword [ebx+8] */
    run_ok("d9 33");    /* FNSTENV [ebx] */
    memcpy(&v, g_mem + 0xa00 + 12, 4);
    assert_int_equal(v, CODE_GPA);
    memcpy(&v, g_mem + 0xa00 + 16, 4);
    assert_int_equal(v, IEMH_SEL_CODE32 | (0x143u << 16));
    memcpy(&v, g_mem + 0xa00 + 20, 4);
    assert_int_equal(v, D(0xa08));
    memcpy(&v, g_mem + 0xa00 + 24, 4);
    assert_int_equal(v, 0xffff0000u | IEMH_SEL_DATA32);
    /* 16-bit operand size in protected mode: 14 bytes. */
    memset(g_mem + 0xb00, 0xee, 32);
    g_s->gpr[CPU_RBX] = D(0xb00);
    run_ok("66 d9 33");
    assert_int_equal(g_mem[0xb00 + 14], 0xee);
    assert_int_equal(g_mem[0xb00 + 8] | (g_mem[0xb00 + 9] << 8), IEMH_SEL_CODE32);
    /* Real mode, 32-bit operand size: the linear FIP split around FOP. */
    mode_real();
    g_s->gpr[CPU_RBX] = 0xc00;
    run_ok("d9 07");       /* FLD dword [bx] at CS:0 = linear CODE_GPA */
    run_ok("66 d9 37");    /* FNSTENV [bx], 28-byte real-mode format */
    memcpy(&v, g_mem + 0xc00 + 12, 4);
    assert_int_equal(v, 0xffff0000u | (CODE_GPA & 0xffff));
    memcpy(&v, g_mem + 0xc00 + 16, 4);
    assert_int_equal(v, ((CODE_GPA >> 16) << 12) | 0x107);
    memcpy(&v, g_mem + 0xc00 + 20, 4);
    assert_int_equal(v, 0xffff0000u | ((DATA_GPA + 0xc00) & 0xffff));
    memcpy(&v, g_mem + 0xc00 + 24, 4);
    assert_int_equal(v, ((DATA_GPA + 0xc00) >> 16) << 12);
    /* FLDENV of the same image: FIP becomes the linear address. */
    run_ok("db e3");
    run_ok("66 d9 27");
    assert_int_equal(g_s->fpu.fip, CODE_GPA);
    assert_int_equal(g_s->fpu.fop, 0x107);
    assert_int_equal(g_s->fpu.ftw, 0x80);
    /* 64-bit mode: FXSAVE64 stores the 64-bit FIP/FDP, FXSAVE the 32-bit layout. */
    mode_long64();
    g_s->gpr[CPU_RBX] = D(0xe00);
    run_ok("d9 43 08");
    run_ok("48 0f ae 03");
    uint64_t q;
    memcpy(&q, g_mem + 0xe00 + 8, 8);
    assert_int_equal(q, CODE_GPA);
    memcpy(&q, g_mem + 0xe00 + 16, 8);
    assert_int_equal(q, D(0xe08));
    memset(g_mem + 0xe00, 0, 32);
    run_ok("0f ae 03");
    memcpy(&v, g_mem + 0xe00 + 8, 4);
    assert_int_equal(v, CODE_GPA);
    assert_int_equal(g_mem[0xe00 + 12] | g_mem[0xe00 + 13], 0);
}

/* Stores with masked and unmasked responses. */
static void test_store_responses(void **state)
{
    (void)state;
    g_s->gpr[CPU_RBX] = D(0xf00);
    /* FSTP m80 of an empty register (masked underflow): the indefinite is stored and popped. */
    run_ok("db 3b");
    struct f80 m;
    memcpy(&m.mant, g_mem + 0xf00, 8);
    memcpy(&m.se, g_mem + 0xf08, 2);
    assert_f80(m, g_indefinite);
    assert_int_equal(fsw() & (IEM_FSW_IE | IEM_FSW_SF), IEM_FSW_IE | IEM_FSW_SF);
    assert_int_equal(top(), 1);
    /* Unmasked precision only: the rounded value is stored (and ES set). */
    iem_fpu_reset(&g_s->fpu);
    set_fcw(0x037f & ~IEM_FSW_PE);
    push_ld(0.1L);
    run_ok("d9 1b"); /* FSTP dword [rbx] */
    float f;
    memcpy(&f, g_mem + 0xf00, 4);
    assert_true(f == 0.1f);
    assert_true(fsw() & IEM_FSW_ES);
    assert_int_equal(top(), 0);
    /* The pending exception stops EMMS and MMX instructions too. */
    assert_int_equal(run("0f 77"), IEM_X_MF);
    assert_int_equal(run("0f 6f c1"), IEM_X_MF);
    run_ok("db e2");
    run_ok("0f 77");
}

/* ---- FXSAVE / FXRSTOR -------------------------------------------------------------------------------------------------- */

static void test_fxsave_layout(void **state)
{
    (void)state;
    struct cpu_fpu *f = &g_s->fpu;
    push_ld(1.0L);
    push_ld(2.0L);
    f->fcw = 0x0a7f;
    f->fsw |= IEM_FSW_C3 | IEM_FSW_PE;
    f->fop = 0x7ff;
    f->fip = 0x11223344 | (0x33ull << 32);
    f->fdp = 0x55667788 | (0x2bull << 32);
    f->mxcsr = 0x1fa0;
    for (int i = 0; i < 16; i++)
        memset(f->xmm[i], 0x10 + i, 16);
    uint8_t img[512];
    memset(img, 0xcc, sizeof(img));
    iem_fpu_fxsave_image(f, img, 16, false);
    assert_int_equal(img[0] | (img[1] << 8), 0x0a7f);
    assert_int_equal(img[2] | (img[3] << 8), f->fsw);
    assert_int_equal(img[4], 0xc0); /* R6 and R7 in use */
    assert_int_equal(img[5], 0);
    assert_int_equal(img[6] | (img[7] << 8), 0x7ff);
    static const uint8_t ptrs[16] = {0x44, 0x33, 0x22, 0x11, 0x33, 0, 0, 0, 0x88, 0x77, 0x66, 0x55, 0x2b, 0, 0, 0};
    assert_memory_equal(img + 8, ptrs, 16);
    assert_int_equal(img[24] | (img[25] << 8), 0x1fa0);
    assert_int_equal(img[28] | (img[29] << 8), 0xffff);
    struct f80 r;
    memcpy(&r.mant, img + 32, 8);
    memcpy(&r.se, img + 40, 2);
    assert_f80(r, ld80(2.0L));
    memcpy(&r.mant, img + 48, 8);
    memcpy(&r.se, img + 56, 2);
    assert_f80(r, ld80(1.0L));
    assert_int_equal(img[42], 0);
    assert_int_equal(img[160], 0x10);
    assert_int_equal(img[415], 0x1f);
    assert_int_equal(img[416], 0xcc);
    /* REX.W: 64-bit FIP/FDP. */
    f->fip = 0x00007fff12345678ull;
    iem_fpu_fxsave_image(f, img, 16, true);
    uint64_t fip;
    memcpy(&fip, img + 8, 8);
    assert_int_equal(fip, 0x00007fff12345678ull);
    /* Round trip through FXRSTOR. */
    struct cpu_fpu g;
    memset(&g, 0, sizeof(g));
    g.mxcsr_mask = 0xffff;
    assert_true(iem_fpu_fxrstor_image(&g, img, 16, true));
    assert_int_equal(g.fcw, f->fcw);
    assert_int_equal(g.fsw, f->fsw);
    assert_int_equal(g.ftw, f->ftw);
    assert_int_equal(g.fop, f->fop);
    assert_int_equal(g.fip, f->fip);
    assert_int_equal(g.fdp, f->fdp);
    assert_int_equal(g.mxcsr, f->mxcsr);
    assert_memory_equal(g.st, f->st, sizeof(g.st));
    assert_memory_equal(g.xmm, f->xmm, sizeof(g.xmm));
    /* Reserved MXCSR bits refuse the whole image. */
    uint32_t bad = 0x10000;
    memcpy(img + 24, &bad, 4);
    struct cpu_fpu h = g;
    assert_false(iem_fpu_fxrstor_image(&h, img, 16, true));
    assert_memory_equal(&h, &g, sizeof(h));
}

static void test_fxsave_insns(void **state)
{
    (void)state;
    push_ld(7.0L);
    memset(g_s->fpu.xmm[3], 0x33, 16);
    memset(g_s->fpu.xmm[9], 0x99, 16);
    g_s->gpr[CPU_RBX] = D(0x1000);
    memset(g_mem + 0x1000, 0xcc, 512);
    run_ok("0f ae 03"); /* FXSAVE [rbx] */
    assert_int_equal(g_mem[0x1000 + 160 + 3 * 16], 0x33);
    assert_int_equal(g_mem[0x1000 + 160 + 9 * 16], 0x99); /* 64-bit mode: XMM8-15 too */
    assert_int_equal(g_mem[0x1000 + 416], 0xcc);
    /* Alignment. */
    g_s->gpr[CPU_RBX] = D(0x1008);
    assert_int_equal(run("0f ae 03"), IEM_X_GP);
    assert_int_equal(run("0f ae 0b"), IEM_X_GP);
    /* FXRSTOR brings back a changed state. */
    g_s->gpr[CPU_RBX] = D(0x1000);
    struct cpu_fpu saved = g_s->fpu;
    run_ok("db e3");
    memset(g_s->fpu.xmm, 0, sizeof(g_s->fpu.xmm));
    run_ok("48 0f ae 0b"); /* FXRSTOR64 [rbx] (same layout here: FIP was 0) */
    assert_memory_equal(&saved, &g_s->fpu, sizeof(saved));
    /* Reserved MXCSR bits: #GP(0), nothing loaded. */
    g_mem[0x1000 + 26] = 0x01;
    run_ok("db e3");
    struct cpu_fpu cur = g_s->fpu;
    assert_int_equal(run("0f ae 0b"), IEM_X_GP);
    assert_memory_equal(&cur, &g_s->fpu, sizeof(cur));
    g_mem[0x1000 + 26] = 0x00;
    /* CR4.OSFXSR=0: XMM and MXCSR neither saved nor restored. */
    g_s->cr4 &= ~(uint64_t)IEM_CR4_OSFXSR;
    iemh_sync(g_h);
    memset(g_mem + 0x1200, 0xcc, 512);
    g_s->gpr[CPU_RBX] = D(0x1200);
    run_ok("0f ae 03");
    assert_int_equal(g_mem[0x1200 + 24], 0xcc);
    assert_int_equal(g_mem[0x1200 + 160], 0xcc);
    assert_int_equal(g_mem[0x1200], 0x7f);
    run_ok("0f ae 0b");
    assert_memory_equal(g_s->fpu.xmm, cur.xmm, sizeof(cur.xmm));
    /* 32-bit mode: XMM0-7 only. */
    mode_prot32();
    memset(g_mem + 0x1400, 0xcc, 512);
    g_s->gpr[CPU_RBX] = D(0x1400);
    run_ok("0f ae 03");
    assert_int_equal(g_mem[0x1400 + 288], 0xcc);
    /* #NM with CR0.TS or CR0.EM, before the alignment check. */
    cr0_set(IEM_CR0_TS, 0);
    g_s->gpr[CPU_RBX] = D(0x1401);
    assert_int_equal(run("0f ae 03"), IEM_X_NM);
    cr0_set(0, IEM_CR0_TS);
    /* A pending x87 exception does not stop FXSAVE. */
    g_s->gpr[CPU_RBX] = D(0x1400);
    g_s->fpu.fcw = 0x037e;
    g_s->fpu.fsw = iem_fpu_fsw_summary(IEM_FSW_IE, 0x037e);
    run_ok("0f ae 03");
    assert_int_equal(g_mem[0x1402], 0x81);
    assert_int_equal(g_mem[0x1403], 0x80);
}

/* ---- #NM and LOCK ---------------------------------------------------------------------------------------------------------- */

static void test_device_not_available(void **state)
{
    (void)state;
    cr0_set(IEM_CR0_TS, 0);
    assert_int_equal(run("d9 e8"), IEM_X_NM);
    assert_int_equal(run("db e3"), IEM_X_NM); /* FNINIT too */
    assert_int_equal(run("9b"), IEM_X_NM);    /* FWAIT: TS and MP */
    cr0_set(0, IEM_CR0_MP);
    run_ok("9b"); /* TS without MP: no #NM */
    cr0_set(IEM_CR0_EM, IEM_CR0_TS);
    assert_int_equal(run("d9 e8"), IEM_X_NM);
    run_ok("9b");
    cr0_set(0, IEM_CR0_EM);
    run_ok("d9 e8");
    assert_int_equal(top(), 7);
}

/* ---- Entry ------------------------------------------------------------------------------------------------------------------- */

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_constants_rounding, setup, teardown),
        cmocka_unit_test_setup_teardown(test_extended_rounding, setup, teardown),
        cmocka_unit_test_setup_teardown(test_precision_control, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loads_stores, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_fault_atomic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fop_encodings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_zero_divide, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_and_denormal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overflow_underflow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stack_faults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fxam, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compare, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fcmov, setup, teardown),
        cmocka_unit_test_setup_teardown(test_integer_conversions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bcd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_misc_arith, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stack_ops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_control_words, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tag_words, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_formats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fnstenv_fldenv_insns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fsave_frstor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_insn_modes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_responses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fxsave_layout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fxsave_insns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_device_not_available, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
