/* tstIemMmx.c - unit tests of the interpreter's MMX instructions (and the MMX forms of SSE/SSE2/SSSE3 integer instructions), run through the whole interpreter with the iem test harness. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "../iem-fpu.h"

#include "harness.h"

/*
 * Each instruction runs through the decoder, the SIMD family's forwarding and iem_mmx_exec.
 * The bulk table's expected values come from mmx-model.py, an independent Python model of
 * the SDM vol. 2 pseudo-code (fixed seed); the hand-written cases cover the edges.
 */

#define CODE_GPA 0x30000u
#define STACK_GPA 0x3f000u
#define DATA_GPA 0x80000u
#define D(off) ((uint64_t)DATA_GPA + (off))
#define NO_FAULT (-1)

static struct iemh *g_h;
static struct cpu_state *g_s;
static uint8_t *g_mem;

/* Assembles "0f fc c1" style hex plus a HLT at CODE_GPA and runs it: NO_FAULT or the vector. */
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
    if (res.status == IEM_STEP_EXCEPTION)
        return res.vector;
    assert_int_equal(res.status, IEM_STEP_HLT);
    return NO_FAULT;
}

static void run_ok(const char *hex)
{
    assert_int_equal(run(hex), NO_FAULT);
}

static void cr0_set(uint64_t set, uint64_t clear)
{
    g_s->cr0 = (g_s->cr0 | set) & ~clear;
    iemh_sync(g_h);
}

static int setup(void **state)
{
    (void)state;
    g_h = iemh_create(0);
    g_s = g_h->s;
    g_mem = g_h->ram + DATA_GPA;
    iemh_mode_long64(g_h, CODE_GPA, STACK_GPA);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    iemh_destroy(g_h);
    g_h = NULL;
    return 0;
}

static unsigned top(void)
{
    return iem_fpu_top(&g_s->fpu);
}

/* Pushes an 80-bit value as FLD would (the test's own bookkeeping). */
static void push_ld(long double x)
{
    unsigned t = (top() - 1) & 7;
    memmove(g_s->fpu.st[1], g_s->fpu.st[0], 7 * 16);
    memset(g_s->fpu.st[0], 0, 16);
    memcpy(g_s->fpu.st[0], &x, 10);
    g_s->fpu.fsw = (uint16_t)((g_s->fpu.fsw & ~IEM_FSW_TOP) | (t << IEM_FSW_TOP_SHIFT));
    g_s->fpu.ftw |= (uint8_t)(1u << t);
}

static bool st_is(unsigned i, long double x)
{
    return memcmp(g_s->fpu.st[i], &x, 10) == 0;
}

/* ---- Side effects and hand-written cases ---------------------------------------------------------------------------------------------------------------------- */

static void mm_set(unsigned r, uint64_t v)
{
    memcpy(g_s->fpu.st[(r - top()) & 7], &v, 8);
}

static uint64_t mm_get(unsigned r)
{
    uint64_t v;
    memcpy(&v, g_s->fpu.st[(r - top()) & 7], 8);
    return v;
}

static void test_mmx_side_effects(void **state)
{
    (void)state;
    /* TOP = 5: MM0 is physical R0 = ST(3). */
    push_ld(1.0L);
    push_ld(2.0L);
    push_ld(3.0L);
    mm_set(0, 0x0102030405060708ull);
    mm_set(1, 0x1010101010101010ull);
    run_ok("0f fc c1"); /* PADDB mm0, mm1 */
    assert_int_equal(top(), 0);
    assert_int_equal(g_s->fpu.ftw, 0xff);
    assert_int_equal(mm_get(0), 0x1112131415161718ull);
    assert_int_equal(g_s->fpu.st[0][8], 0xff); /* exponent bits of a written register: all ones */
    assert_int_equal(g_s->fpu.st[0][9], 0xff);
    /* Physical registers kept their place: R5 held 3.0 (ST0 before), now ST(5). */
    assert_true(st_is(5, 3.0L));
    run_ok("0f 77"); /* EMMS */
    assert_int_equal(g_s->fpu.ftw, 0);
    assert_int_equal(top(), 0);
    /* An x87 instruction after MMX code sees the MMX values as NaN-like numbers. */
    run_ok("0f 6e c0"); /* MOVD mm0, eax */
    assert_int_equal(g_s->fpu.ftw, 0xff);
    /* #UD with CR0.EM, #NM with CR0.TS. */
    cr0_set(IEM_CR0_EM, 0);
    assert_int_equal(run("0f fc c1"), IEM_X_UD);
    assert_int_equal(run("0f 77"), IEM_X_UD);
    cr0_set(IEM_CR0_TS, IEM_CR0_EM);
    assert_int_equal(run("0f fc c1"), IEM_X_NM);
    cr0_set(0, IEM_CR0_TS);
}

static void test_mmx_arith(void **state)
{
    (void)state;
    static const struct {
        const char *hex;
        uint64_t a, b, want;
    } t[] = {
        {"0f ec c1", 0x7f80017f80ff0102ull, 0x01ff7f0180ff0202ull, 0x7f807f7f80fe0304ull}, /* PADDSB */
        {"0f dc c1", 0xff80017f80ff0102ull, 0x01ff7f0180ff0202ull, 0xffff8080ffff0304ull}, /* PADDUSB */
        {"0f e9 c1", 0x8000ffff7fff0001ull, 0x0001000180000002ull, 0x8000fffe7fffffffull}, /* PSUBSW */
        {"0f d9 c1", 0x0001ffff80000005ull, 0x000200017fff0003ull, 0x0000fffe00010002ull}, /* PSUBUSW */
        {"0f e5 c1", 0x7fff800000020003ull, 0x7fff800000030004ull, 0x3fff400000000000ull}, /* PMULHW */
        {"0f d5 c1", 0x7fff800000020003ull, 0x7fff800000030004ull, 0x000100000006000cull}, /* PMULLW */
        {"0f f5 c1", 0x8000800000010002ull, 0x8000800000030004ull, 0x800000000000000bull}, /* PMADDWD */
        {"0f 63 c1", 0x7fff8000007f0080ull, 0xffff00010100ff80ull, 0xff017f807f807f7full}, /* PACKSSWB */
        {"0f 67 c1", 0x7fff8000007f0080ull, 0xffff00010100ff80ull, 0x0001ff00ff007f80ull}, /* PACKUSWB */
        {"0f 6b c1", 0x0001000080000000ull, 0x7fffffff00000001ull, 0x7fff00017fff8000ull}, /* PACKSSDW */
        {"0f 60 c1", 0x0706050403020100ull, 0x1716151413121110ull, 0x1303120211011000ull}, /* PUNPCKLBW */
        {"0f 6a c1", 0x0706050403020100ull, 0x1716151413121110ull, 0x1716151407060504ull}, /* PUNPCKHDQ */
        {"0f 75 c1", 0x0001000200030004ull, 0x0001000000030000ull, 0xffff0000ffff0000ull}, /* PCMPEQW */
        {"0f 66 c1", 0x00000001ffffffffull, 0x0000000000000000ull, 0xffffffff00000000ull}, /* PCMPGTD */
        {"0f df c1", 0xff00ff00ff00ff00ull, 0x0f0f0f0f0f0f0f0full, 0x000f000f000f000full}, /* PANDN */
        {"0f f1 c1", 0x8001800180018001ull, 0x0000000000000004ull, 0x0010001000100010ull}, /* PSLLW */
        {"0f f1 c1", 0x8001800180018001ull, 0x0000000100000000ull, 0ull},                  /* PSLLW, count >= 16 */
        {"0f e1 c1", 0x8000400080004000ull, 0x0000000000000020ull, 0xffff0000ffff0000ull}, /* PSRAW, count 32 */
        {"0f d3 c1", 0x8000000000000000ull, 0x000000000000003full, 0x0000000000000001ull}, /* PSRLQ */
        {"0f d4 c1", 0xffffffffffffffffull, 0x0000000000000002ull, 0x0000000000000001ull}, /* PADDQ */
        {"0f f4 c1", 0xdeadbeefffffffffull, 0x12345678ffffffffull, 0xfffffffe00000001ull}, /* PMULUDQ */
        {"0f e0 c1", 0x00ff00ff00ff00ffull, 0x0001000100010001ull, 0x0080008000800080ull}, /* PAVGB */
        {"0f f6 c1", 0x00ff00ff00ff00ffull, 0xff00ff00ff00ff00ull, 0x00000000000007f8ull}, /* PSADBW */
        {"0f da c1", 0x10203040506070f0ull, 0x0f2131415f6071f1ull, 0x0f203040506070f0ull}, /* PMINUB */
        {"0f 38 00 c1", 0x0706050403020100ull, 0x8000010203040506ull, 0x0000010203040506ull}, /* PSHUFB */
        {"0f 38 0b c1", 0x4000c00080007fffull, 0x4000400080007fffull, 0x2000e00080007ffeull}, /* PMULHRSW */
        {"0f 38 1d c1", 0, 0x8000ffff00017fffull, 0x8000000100017fffull},                  /* PABSW */
        {"0f 38 09 c1", 0x0005000500050005ull, 0xffff000000017fffull, 0xfffb000000050005ull}, /* PSIGNW */
        {"0f 38 01 c1", 0x0004000300020001ull, 0x0040003000200010ull, 0x0070003000070003ull}, /* PHADDW */
        {"0f 38 04 c1", 0x00000000000000ffull, 0x7f7f7f7f7f7f7f7full, 0x0000000000007e81ull}, /* PMADDUBSW */
        {"0f 3a 0f c1 03", 0x0f0e0d0c0b0a0908ull, 0x0706050403020100ull, 0x0a09080706050403ull}, /* PALIGNR 3 */
        {"0f 70 c1 1b", 0, 0x0004000300020001ull, 0x0001000200030004ull},                  /* PSHUFW reverse */
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        iem_fpu_reset(&g_s->fpu);
        mm_set(0, t[i].a);
        mm_set(1, t[i].b);
        run_ok(t[i].hex);
        if (mm_get(0) != t[i].want)
            fail_msg("case %zu (%s): got %016llx want %016llx", i, t[i].hex, (unsigned long long)mm_get(0),
                     (unsigned long long)t[i].want);
    }
}

static void test_mmx_moves_and_shifts(void **state)
{
    (void)state;
    g_s->gpr[CPU_RAX] = 0xffffffff87654321ull;
    run_ok("0f 6e c0"); /* MOVD mm0, eax: zero-extended */
    assert_int_equal(mm_get(0), 0x87654321ull);
    run_ok("48 0f 6e c0"); /* MOVQ mm0, rax */
    assert_int_equal(mm_get(0), 0xffffffff87654321ull);
    run_ok("0f 7e c1"); /* MOVD ecx, mm0 */
    assert_int_equal(g_s->gpr[CPU_RCX], 0x87654321ull);
    g_s->gpr[CPU_RBX] = D(0x100);
    run_ok("0f 7f 03"); /* MOVQ [rbx], mm0 */
    uint64_t m;
    memcpy(&m, g_mem + 0x100, 8);
    assert_int_equal(m, 0xffffffff87654321ull);
    run_ok("0f 6f 4b 00"); /* MOVQ mm1, [rbx] */
    assert_int_equal(mm_get(1), m);
    run_ok("0f 71 d1 04"); /* PSRLW mm1, 4 */
    assert_int_equal(mm_get(1), 0x0fff0fff08760432ull);
    run_ok("0f 72 e1 1f"); /* PSRAD mm1, 31 */
    assert_int_equal(mm_get(1), 0ull);
    run_ok("0f 73 f0 08"); /* PSLLQ mm0, 8 */
    assert_int_equal(mm_get(0), 0xffffff8765432100ull);
    run_ok("0f d7 d0"); /* PMOVMSKB edx, mm0 */
    assert_int_equal(g_s->gpr[CPU_RDX], 0xf0);
    run_ok("0f c5 d0 02"); /* PEXTRW edx, mm0, 2 */
    assert_int_equal(g_s->gpr[CPU_RDX], 0xff87);
    g_s->gpr[CPU_RSI] = 0xbeef;
    run_ok("0f c4 c6 00"); /* PINSRW mm0, esi, 0 */
    assert_int_equal(mm_get(0) & 0xffff, 0xbeef);
    /* PUNPCKLBW with an m32 operand reads 4 bytes. */
    memcpy(g_mem + 0x200, "\x11\x22\x33\x44", 4);
    g_s->gpr[CPU_RBX] = D(0x200);
    mm_set(2, 0);
    run_ok("0f 60 13");
    assert_int_equal(mm_get(2), 0x4400330022001100ull);
    /* MOVNTQ and MASKMOVQ (only bytes with bit 7 of the mask). */
    mm_set(3, 0x8877665544332211ull);
    run_ok("0f e7 1b"); /* MOVNTQ [rbx], mm3 */
    memcpy(&m, g_mem + 0x200, 8);
    assert_int_equal(m, 0x8877665544332211ull);
    memset(g_mem + 0x300, 0, 8);
    g_s->gpr[CPU_RDI] = D(0x300);
    mm_set(4, 0x8000800000008080ull);
    run_ok("0f f7 dc"); /* MASKMOVQ mm3, mm4 */
    memcpy(&m, g_mem + 0x300, 8);
    assert_int_equal(m, 0x8800660000002211ull);
}

/* ---- The model table ---------------------------------------------------------------------- */

static const struct {
    const char *hex; /* mm0 op= mm1 (or an immediate) */
    uint64_t a, b, want;
} g_model[] = {
    {"0f fc c1", 0x1de9ea6670d3da1full, 0x0000000000000000ull, 0x1de9ea6670d3da1full}, /* PADDB */
    {"0f fc c1", 0x19322fed157cf9c6ull, 0x04762a223c9f90c9ull, 0x1da8590f511b898full}, /* PADDB */
    {"0f fc c1", 0x0000000000000000ull, 0x7bf78a4d9f8f5ffbull, 0x7bf78a4d9f8f5ffbull}, /* PADDB */
    {"0f fc c1", 0x175e99412607ad5full, 0xffffffffffffffffull, 0x165d98402506ac5eull}, /* PADDB */
    {"0f fd c1", 0x7c9bbfae80ca17b7ull, 0x108727563ff4bb8cull, 0x8d22e704c0bed343ull}, /* PADDW */
    {"0f fd c1", 0x774520d7e98d7c35ull, 0xffffffffffffffffull, 0x774420d6e98c7c34ull}, /* PADDW */
    {"0f fd c1", 0x45038e220bc4621bull, 0xa506bfc51025dbe5ull, 0xea094de71be93e00ull}, /* PADDW */
    {"0f fd c1", 0x5af0f3e0d9a54a0dull, 0xeefadf23a7cda6c2ull, 0x49ead3038172f0cfull}, /* PADDW */
    {"0f fe c1", 0x87b8a518e065e3ebull, 0x8212f7c6f1048aa6ull, 0x09cb9cded16a6e91ull}, /* PADDD */
    {"0f fe c1", 0x7f7f7f7f7f7f7f7full, 0xffffffff00000000ull, 0x7f7f7f7e7f7f7f7full}, /* PADDD */
    {"0f fe c1", 0x0dde6d082ac7e1daull, 0xffffffff00000000ull, 0x0dde6d072ac7e1daull}, /* PADDD */
    {"0f fe c1", 0x7fff7fff7fff7fffull, 0x7f7f7f7f7f7f7f7full, 0xff7eff7eff7eff7eull}, /* PADDD */
    {"0f d4 c1", 0x879951fff4f991a8ull, 0x8080808080808080ull, 0x0819d280757a1228ull}, /* PADDQ */
    {"0f d4 c1", 0x46db4bc46a8f6926ull, 0x2d665a7b0a4adb41ull, 0x7441a63f74da4467ull}, /* PADDQ */
    {"0f d4 c1", 0xf46871014cdead2eull, 0xd579c4c9c777b54bull, 0xc9e235cb14566279ull}, /* PADDQ */
    {"0f d4 c1", 0x62dcec669027b9adull, 0x577a296e7ef077e0ull, 0xba5715d50f18318dull}, /* PADDQ */
    {"0f f8 c1", 0x79d6dedb77d6a830ull, 0xffffffff00000000ull, 0x7ad7dfdc77d6a830ull}, /* PSUBB */
    {"0f f8 c1", 0xe1ae6a00984c6df8ull, 0xffffffff00000000ull, 0xe2af6b01984c6df8ull}, /* PSUBB */
    {"0f f8 c1", 0xc7154f271fb661b4ull, 0x0000000080000000ull, 0xc7154f279fb661b4ull}, /* PSUBB */
    {"0f f8 c1", 0x87a0eabff0689ae1ull, 0xffffffff00000000ull, 0x88a1ebc0f0689ae1ull}, /* PSUBB */
    {"0f f9 c1", 0xa8094805d11776a4ull, 0x5868c99b31007342ull, 0x4fa17e6aa0170362ull}, /* PSUBW */
    {"0f f9 c1", 0x8000800080008000ull, 0x44f2d5a4f1689e5full, 0x3b0eaa5c8e98e1a1ull}, /* PSUBW */
    {"0f f9 c1", 0xd729a460d911b0dcull, 0xcb26e7a552d037e4ull, 0x0c03bcbb864178f8ull}, /* PSUBW */
    {"0f f9 c1", 0x121e3cc4b87ec0d1ull, 0x7fff7fff7fff7fffull, 0x921fbcc5387f40d2ull}, /* PSUBW */
    {"0f fa c1", 0x8080808080808080ull, 0x81b81040382a0c2dull, 0xfec8704048567453ull}, /* PSUBD */
    {"0f fa c1", 0xeecda947caf4a2a1ull, 0x5125ff0fff977125ull, 0x9da7aa38cb5d317cull}, /* PSUBD */
    {"0f fa c1", 0x10f44ac075f93a5full, 0x12b01ad0db44062dull, 0xfe442ff09ab53432ull}, /* PSUBD */
    {"0f fa c1", 0x33af81d9f312c934ull, 0x7fff7fff7fff7fffull, 0xb3b001da73134935ull}, /* PSUBD */
    {"0f fb c1", 0x75a66c1ae32996b4ull, 0xcc2c6076d18b4894ull, 0xa97a0ba4119e4e20ull}, /* PSUBQ */
    {"0f fb c1", 0x3480251adbd2db62ull, 0x6bd20911b3d18022ull, 0xc8ae1c0928015b40ull}, /* PSUBQ */
    {"0f fb c1", 0x7fff7fff7fff7fffull, 0x5a3c8204d0170778ull, 0x25c2fdfaafe87887ull}, /* PSUBQ */
    {"0f fb c1", 0xe80dcc197fe4f416ull, 0x78f190db8c8d4630ull, 0x6f1c3b3df357ade6ull}, /* PSUBQ */
    {"0f ec c1", 0x0c4e7af82184d0eaull, 0x251a0926ece37d77ull, 0x31687f1e0d804d61ull}, /* PADDSB */
    {"0f ec c1", 0xb6bb83ff11db1f30ull, 0xab11c60e006fd424ull, 0x80cc800d114af354ull}, /* PADDSB */
    {"0f ec c1", 0x166e4be7a3665363ull, 0xea60312b25f547a0ull, 0x007f7c12c85b7f03ull}, /* PADDSB */
    {"0f ec c1", 0x64357c976eca2ba0ull, 0xf8c1c3a53505c031ull, 0x5cf63f807fcfebd1ull}, /* PADDSB */
    {"0f ed c1", 0xefb725cd619664f3ull, 0x47b133eef5c42d3eull, 0x376859bb575a7fffull}, /* PADDSW */
    {"0f ed c1", 0x4df5f4a8ebcb1200ull, 0x93e7605daf6ddc59ull, 0xe1dc55059b38ee59ull}, /* PADDSW */
    {"0f ed c1", 0x885b13d2d6b97c44ull, 0x8080808080808080ull, 0x800094528000fcc4ull}, /* PADDSW */
    {"0f ed c1", 0xdb9a6092666ac88aull, 0x1d1dfe49869adcefull, 0xf8b75edbed04a579ull}, /* PADDSW */
    {"0f dc c1", 0x36c138a44633acc9ull, 0x9667060cd64e5604ull, 0xccff3eb0ff81ffcdull}, /* PADDUSB */
    {"0f dc c1", 0xe09f46eb597a8664ull, 0xc6e211a03b84edf7ull, 0xffff57ff94feffffull}, /* PADDUSB */
    {"0f dc c1", 0x4ed3a8d1616b2db6ull, 0xffffffff00000000ull, 0xffffffff616b2db6ull}, /* PADDUSB */
    {"0f dc c1", 0xd7846e536dcd11ccull, 0x2f821d3c7ac6450dull, 0xffff8b8fe7ff56d9ull}, /* PADDUSB */
    {"0f dd c1", 0x283da2c37a5bb776ull, 0xa7bcee9f5e993811ull, 0xcff9ffffd8f4ef87ull}, /* PADDUSW */
    {"0f dd c1", 0x2b42611a34c0df18ull, 0x916a0b9aedff0776ull, 0xbcac6cb4ffffe68eull}, /* PADDUSW */
    {"0f dd c1", 0x79740d27ab1665d7ull, 0xcbada6a0cd24f4ecull, 0xffffb3c7ffffffffull}, /* PADDUSW */
    {"0f dd c1", 0xcca2da50a9241885ull, 0x7f7f7f7f7f7f7f7full, 0xffffffffffff9804ull}, /* PADDUSW */
    {"0f e8 c1", 0x10b0789179cf0607ull, 0xe7c5af18e363bad9ull, 0x29eb7f807f804c2eull}, /* PSUBSB */
    {"0f e8 c1", 0xfaec571d54ef7f95ull, 0xfee4c01fc0c16b36ull, 0xfc087ffe7f2e1480ull}, /* PSUBSB */
    {"0f e8 c1", 0xafa16656ae78c1bdull, 0xf22b18b0901715a3ull, 0xbd804e7f1e61ac1aull}, /* PSUBSB */
    {"0f e8 c1", 0x31cf194d9001f909ull, 0x476ed0d1bfe389a3ull, 0xea80497cd11e7066ull}, /* PSUBSB */
    {"0f e9 c1", 0x7fff7fff7fff7fffull, 0xe9f98fdc55906a7full, 0x7fff7fff2a6f1580ull}, /* PSUBSW */
    {"0f e9 c1", 0x15bfb225447b2100ull, 0x9520e2cb96d7c29aull, 0x7fffcf5a7fff5e66ull}, /* PSUBSW */
    {"0f e9 c1", 0x3ec8e662d2fabde3ull, 0xdedde4e22317e433ull, 0x5feb0180afe3d9b0ull}, /* PSUBSW */
    {"0f e9 c1", 0x0000000000000000ull, 0xf94beb7a0b487f7cull, 0x06b51486f4b88084ull}, /* PSUBSW */
    {"0f d8 c1", 0xfd9bebf127a193fcull, 0x6f3f05be5afd517full, 0x8e5ce6330000427dull}, /* PSUBUSB */
    {"0f d8 c1", 0x11a9c6f8e85412d4ull, 0x4e1f10c5f51cbd6dull, 0x008ab63300380067ull}, /* PSUBUSB */
    {"0f d8 c1", 0xe8d52b3f7c4e48f6ull, 0x811ecdd75905f56aull, 0x67b700002349008cull}, /* PSUBUSB */
    {"0f d8 c1", 0x0000000000000000ull, 0xdcd0a52354c2676full, 0x0000000000000000ull}, /* PSUBUSB */
    {"0f d9 c1", 0x7a5cfc72299bd8fdull, 0xacff289ef0a6fd90ull, 0x0000d3d400000000ull}, /* PSUBUSW */
    {"0f d9 c1", 0xe0bac50623d3057cull, 0x1177cc299eaf4389ull, 0xcf43000000000000ull}, /* PSUBUSW */
    {"0f d9 c1", 0x7fff7fff7fff7fffull, 0x81a580c8e9fdac72ull, 0x0000000000000000ull}, /* PSUBUSW */
    {"0f d9 c1", 0xc600b67cb0fc3277ull, 0x5395b630d6bd24ccull, 0x726b004c00000dabull}, /* PSUBUSW */
    {"0f d5 c1", 0xffffffff00000000ull, 0xffffffffffffffffull, 0x0001000100000000ull}, /* PMULLW */
    {"0f d5 c1", 0xd72d0452c34d5a29ull, 0x0b6ca0a7e2e548dcull, 0xb5fc117eade1033cull}, /* PMULLW */
    {"0f d5 c1", 0x506ca75f1226a338ull, 0x32bc9ac4cd92bccdull, 0x27504abcc7acd3d8ull}, /* PMULLW */
    {"0f d5 c1", 0x85714ac2f08aed09ull, 0x96fc096b6139b443ull, 0x913c1116d8ba5d5bull}, /* PMULLW */
    {"0f e5 c1", 0x07a387be0d6d342aull, 0xd40e8a1114868a28ull, 0xfeb037660113e7fcull}, /* PMULHW */
    {"0f e5 c1", 0x571e381eede60c68ull, 0x7fff7fff7fff7fffull, 0x2b8e1c0ef6f30633ull}, /* PMULHW */
    {"0f e5 c1", 0x07a11010cb626433ull, 0x97683f685b4ab518ull, 0xfce203faed3ce2aeull}, /* PMULHW */
    {"0f e5 c1", 0x131d34312c8e80fdull, 0xc67c2e9a36575fb3ull, 0xfbb409800975d085ull}, /* PMULHW */
    {"0f e4 c1", 0x8000800080008000ull, 0xac9ca06721eb8c3dull, 0x564e503310f5461eull}, /* PMULHUW */
    {"0f e4 c1", 0xbe43bbd9a6b81586ull, 0xffffffff00000000ull, 0xbe42bbd800000000ull}, /* PMULHUW */
    {"0f e4 c1", 0x5f2dc7fcbaa17f97ull, 0xc745b6e3687fdb24ull, 0x4a158ede4c2d6d38ull}, /* PMULHUW */
    {"0f e4 c1", 0x023d1e894907786dull, 0xfc4160f29541e6b8ull, 0x02340b902a936c88ull}, /* PMULHUW */
    {"0f f4 c1", 0x999369888b523b23ull, 0x7fff7fff7fff7fffull, 0x45a8d7e7d71c44ddull}, /* PMULUDQ */
    {"0f f4 c1", 0x5e916eb797f3e40bull, 0x4afd1877527e1ca8ull, 0x30f6fa182868db38ull}, /* PMULUDQ */
    {"0f f4 c1", 0x45dcafe6ed361d5full, 0x2d22f101a486e9b8ull, 0x9873adb4fb5a9348ull}, /* PMULUDQ */
    {"0f f4 c1", 0x2b50eea1e935785full, 0xf8ff5732f79711b4ull, 0xe18c35ce2f9ff1ccull}, /* PMULUDQ */
    {"0f f5 c1", 0x3d30ee74689aa90aull, 0x8080808080808080ull, 0xea43d200f736d200ull}, /* PMADDWD */
    {"0f f5 c1", 0x2c9b6d3dba187596ull, 0x961b90abbde4c119ull, 0xbe0ace18f5290706ull}, /* PMADDWD */
    {"0f f5 c1", 0x87b6013068cf33aeull, 0x965338fb9948e492ull, 0x31eb4e12d068a274ull}, /* PMADDWD */
    {"0f f5 c1", 0x83ab69207aee13bbull, 0xcdb29178bafc1f6bull, 0xeb0ae2e6e147d271ull}, /* PMADDWD */
    {"0f 74 c1", 0x1a42eee19e440668ull, 0xd9abe6808771825dull, 0x0000000000000000ull}, /* PCMPEQB */
    {"0f 74 c1", 0x2085dc12947f1c86ull, 0xffffffff00000000ull, 0x0000000000000000ull}, /* PCMPEQB */
    {"0f 74 c1", 0x8ec6ae928bddedbcull, 0x8080808080808080ull, 0x0000000000000000ull}, /* PCMPEQB */
    {"0f 74 c1", 0x122409a4b2d10d0eull, 0x4b28a002f4e4847full, 0x0000000000000000ull}, /* PCMPEQB */
    {"0f 75 c1", 0x67cd94be5adfc75dull, 0x9b03e38330377d50ull, 0x0000000000000000ull}, /* PCMPEQW */
    {"0f 75 c1", 0xacbf5c91ee5ecca8ull, 0xf220a4ac51cd92bfull, 0x0000000000000000ull}, /* PCMPEQW */
    {"0f 75 c1", 0x1b9f5928865de9b5ull, 0x769449adfd55e76aull, 0x0000000000000000ull}, /* PCMPEQW */
    {"0f 75 c1", 0x7fff7fff7fff7fffull, 0x7f7f7f7f7f7f7f7full, 0x0000000000000000ull}, /* PCMPEQW */
    {"0f 76 c1", 0x8080808080808080ull, 0x43bb19f93318a7b7ull, 0x0000000000000000ull}, /* PCMPEQD */
    {"0f 76 c1", 0x7f7f7f7f7f7f7f7full, 0x0e41b1d70b9514acull, 0x0000000000000000ull}, /* PCMPEQD */
    {"0f 76 c1", 0x6c8ad74b42a673a4ull, 0xfacc92754ed435b2ull, 0x0000000000000000ull}, /* PCMPEQD */
    {"0f 76 c1", 0xb6fb41cb6f09749eull, 0x2a903e1cae255bbaull, 0x0000000000000000ull}, /* PCMPEQD */
    {"0f 64 c1", 0x02441c336501ecddull, 0xebe5c4a198260377ull, 0xffffffffff000000ull}, /* PCMPGTB */
    {"0f 64 c1", 0xb42db9e2d47701dfull, 0x9c00520bdb4f0763ull, 0xffff000000ff0000ull}, /* PCMPGTB */
    {"0f 64 c1", 0xebb712c9d74da6e7ull, 0x73f46b3a9c2ef1edull, 0x00000000ffff0000ull}, /* PCMPGTB */
    {"0f 64 c1", 0x8078be0a6ae198caull, 0x44cd58de85ea2e59ull, 0x00ff00ffff000000ull}, /* PCMPGTB */
    {"0f 65 c1", 0x644b85386f60a71dull, 0x7e59412d930edbe4ull, 0x00000000ffff0000ull}, /* PCMPGTW */
    {"0f 65 c1", 0x49449c40d53daf90ull, 0x8000800080008000ull, 0xffffffffffffffffull}, /* PCMPGTW */
    {"0f 65 c1", 0x08d130a0285a6a78ull, 0x8b9001e7f57de19dull, 0xffffffffffffffffull}, /* PCMPGTW */
    {"0f 65 c1", 0xa0d018c05a95c2eeull, 0xeb00c7ca6e1ae030ull, 0x0000ffff00000000ull}, /* PCMPGTW */
    {"0f 66 c1", 0x6784a9048cc4d8ccull, 0xe27b5723b7dc1dc9ull, 0xffffffff00000000ull}, /* PCMPGTD */
    {"0f 66 c1", 0xd0ff64251220ed66ull, 0x6191c232a57e5e4full, 0x00000000ffffffffull}, /* PCMPGTD */
    {"0f 66 c1", 0x61344f617c468bcbull, 0x3ccc3d25f4e76ea7ull, 0xffffffffffffffffull}, /* PCMPGTD */
    {"0f 66 c1", 0x835e1550d5181223ull, 0x84f4461bd14559d4ull, 0x00000000ffffffffull}, /* PCMPGTD */
    {"0f db c1", 0xa8d16ddcce3ef6cdull, 0xceb3b0614d80457dull, 0x889120404c00444dull}, /* PAND */
    {"0f db c1", 0xd81b2b7bccb7fc9full, 0x25991680248ec4a1ull, 0x001902000486c481ull}, /* PAND */
    {"0f db c1", 0x870ca2d52d540f03ull, 0x8080808080808080ull, 0x8000808000000000ull}, /* PAND */
    {"0f db c1", 0x7f7f7f7f7f7f7f7full, 0xde391095445bde33ull, 0x5e391015445b5e33ull}, /* PAND */
    {"0f df c1", 0x6e534c59f3035664ull, 0x475db4cd78d518ffull, 0x010cb08408d4089bull}, /* PANDN */
    {"0f df c1", 0x10e0c2ae2ae1d429ull, 0x713f93483af3f62dull, 0x611f114010122204ull}, /* PANDN */
    {"0f df c1", 0x44432ae1111adeffull, 0xa12b7c40d0d862baull, 0xa1285400c0c02000ull}, /* PANDN */
    {"0f df c1", 0x46311dc98fb72d4cull, 0x0000000080000000ull, 0x0000000000000000ull}, /* PANDN */
    {"0f eb c1", 0x8f78d6aa337a41a3ull, 0x36497740ebc8a6cfull, 0xbf79f7eafbfae7efull}, /* POR */
    {"0f eb c1", 0x9e3c7d6eada5a6ebull, 0x84b83b91007942c9ull, 0x9ebc7fffadfde6ebull}, /* POR */
    {"0f eb c1", 0x30f99483e1d6805dull, 0x8da90679d7c6efdbull, 0xbdf996fbf7d6efdfull}, /* POR */
    {"0f eb c1", 0x7f7f7f7f7f7f7f7full, 0xaeb83ff53c851f9bull, 0xffff7fff7fff7fffull}, /* POR */
    {"0f ef c1", 0x6c1f1ba66a133233ull, 0xf16b57f454e70bdeull, 0x9d744c523ef439edull}, /* PXOR */
    {"0f ef c1", 0x84becd5e9538f786ull, 0xc58d2df6963c4eb5ull, 0x4133e0a80304b933ull}, /* PXOR */
    {"0f ef c1", 0x9049a277b84ea1beull, 0x973ef46b78071a50ull, 0x0777561cc049bbeeull}, /* PXOR */
    {"0f ef c1", 0x8080808080808080ull, 0xec792f501f9826a3ull, 0x6cf9afd09f18a623ull}, /* PXOR */
    {"0f 63 c1", 0xdb3883e0926d5ad2ull, 0x6b4e2bab652d6d98ull, 0x7f7f7f7f8080807full}, /* PACKSSWB */
    {"0f 63 c1", 0x644219486e6a93acull, 0x0000000080000000ull, 0x000080007f7f7f80ull}, /* PACKSSWB */
    {"0f 63 c1", 0x8000800080008000ull, 0xc92ac3bde99a7c0dull, 0x8080807f80808080ull}, /* PACKSSWB */
    {"0f 63 c1", 0x2ba8c6a5c96f3f0aull, 0xcdbde5aa3ac4ea87ull, 0x80807f807f80807full}, /* PACKSSWB */
    {"0f 6b c1", 0x0000000080000000ull, 0x8080808080808080ull, 0x8000800000008000ull}, /* PACKSSDW */
    {"0f 6b c1", 0x58576cbd075d5c4bull, 0x4650bd73ccf2d3a5ull, 0x7fff80007fff7fffull}, /* PACKSSDW */
    {"0f 6b c1", 0xe9e6c0870486fb8bull, 0xffffffff00000000ull, 0xffff000080007fffull}, /* PACKSSDW */
    {"0f 6b c1", 0x8080808080808080ull, 0xda200eed3b0f2303ull, 0x80007fff80008000ull}, /* PACKSSDW */
    {"0f 67 c1", 0x0fd11c44937b1695ull, 0x7215582b3e4f1fdeull, 0xffffffffffff00ffull}, /* PACKUSWB */
    {"0f 67 c1", 0x29468671436ac9f0ull, 0x4fcccc46bdd62ef9ull, 0xff0000ffff00ff00ull}, /* PACKUSWB */
    {"0f 67 c1", 0xe92960dc0270e899ull, 0x5379734ea78ccb0full, 0xffff000000ffff00ull}, /* PACKUSWB */
    {"0f 67 c1", 0x348148db98419b42ull, 0x08524cc6b354bd65ull, 0xffff0000ffff0000ull}, /* PACKUSWB */
    {"0f 60 c1", 0xbd191aeba1022fe4ull, 0x049ee299eba5a912ull, 0xeba1a502a92f12e4ull}, /* PUNPCKLBW */
    {"0f 60 c1", 0xa592e0c96f4be277ull, 0xde918c34496d5e46ull, 0x496f6d4b5ee24677ull}, /* PUNPCKLBW */
    {"0f 60 c1", 0xffffffffffffffffull, 0x6b42e4dfbbec00dfull, 0xbbffecff00ffdfffull}, /* PUNPCKLBW */
    {"0f 60 c1", 0xfbd3803355dd4ad1ull, 0x09bb26459a015082ull, 0x9a5501dd504a82d1ull}, /* PUNPCKLBW */
    {"0f 61 c1", 0xf2271ff868875f5eull, 0x67e5d6f12ec40974ull, 0x2ec4688709745f5eull}, /* PUNPCKLWD */
    {"0f 61 c1", 0x7f7f7f7f7f7f7f7full, 0xf940353284a54df8ull, 0x84a57f7f4df87f7full}, /* PUNPCKLWD */
    {"0f 61 c1", 0x8488d965a7c3e11dull, 0xffffffffffffffffull, 0xffffa7c3ffffe11dull}, /* PUNPCKLWD */
    {"0f 61 c1", 0x201a7d6a834b8307ull, 0x128d1e33f2483f63ull, 0xf248834b3f638307ull}, /* PUNPCKLWD */
    {"0f 62 c1", 0xf62b3c105491e0a5ull, 0x7b5f81579d281b58ull, 0x9d281b585491e0a5ull}, /* PUNPCKLDQ */
    {"0f 62 c1", 0xc52bce75decbdc73ull, 0xffffffff00000000ull, 0x00000000decbdc73ull}, /* PUNPCKLDQ */
    {"0f 62 c1", 0x02b0de54e1b5c6ecull, 0x9c354a3097b9c222ull, 0x97b9c222e1b5c6ecull}, /* PUNPCKLDQ */
    {"0f 62 c1", 0xaa07fb38ce58f145ull, 0x2dd9821f8d312ee6ull, 0x8d312ee6ce58f145ull}, /* PUNPCKLDQ */
    {"0f 68 c1", 0x444fc90a0a9f7a72ull, 0xc1170caaac66d9beull, 0xc144174f0cc9aa0aull}, /* PUNPCKHBW */
    {"0f 68 c1", 0x4f785677666a385eull, 0x084414ec9efb7c7full, 0x084f44781456ec77ull}, /* PUNPCKHBW */
    {"0f 68 c1", 0x56604736a4d3b09full, 0xbd2746fd57bd1fd8ull, 0xbd5627604647fd36ull}, /* PUNPCKHBW */
    {"0f 68 c1", 0xc543184384c2d3daull, 0xc6a59cb81932240bull, 0xc6c5a5439c18b843ull}, /* PUNPCKHBW */
    {"0f 69 c1", 0x15898236117c6171ull, 0x8080808080808080ull, 0x8080158980808236ull}, /* PUNPCKHWD */
    {"0f 69 c1", 0x9e78e120586f3e72ull, 0x6e61aa0bd0e394ffull, 0x6e619e78aa0be120ull}, /* PUNPCKHWD */
    {"0f 69 c1", 0x64107334049ef25dull, 0x142608df37d5587eull, 0x1426641008df7334ull}, /* PUNPCKHWD */
    {"0f 69 c1", 0x5a4faa5055adf0b3ull, 0x18543641b2092a51ull, 0x18545a4f3641aa50ull}, /* PUNPCKHWD */
    {"0f 6a c1", 0x8000800080008000ull, 0xbea1aa2fb499c3feull, 0xbea1aa2f80008000ull}, /* PUNPCKHDQ */
    {"0f 6a c1", 0x0000000000000000ull, 0x08177d912895aa87ull, 0x08177d9100000000ull}, /* PUNPCKHDQ */
    {"0f 6a c1", 0x9d23bd908f6b0c42ull, 0x80cdbab6150c15d4ull, 0x80cdbab69d23bd90ull}, /* PUNPCKHDQ */
    {"0f 6a c1", 0x6f75f557c03f2cb5ull, 0x04970612d6bb8d6aull, 0x049706126f75f557ull}, /* PUNPCKHDQ */
    {"0f f1 c1", 0x31258749509b7ad3ull, 0x0000000000000040ull, 0x0000000000000000ull}, /* PSLLW */
    {"0f f1 c1", 0x2bd59fd56c631a14ull, 0x0000010000000000ull, 0x0000000000000000ull}, /* PSLLW */
    {"0f f1 c1", 0xffffffff00000000ull, 0x0000000000000040ull, 0x0000000000000000ull}, /* PSLLW */
    {"0f f1 c1", 0x5b9765102495c728ull, 0x4fbd6f579ddc6a20ull, 0x0000000000000000ull}, /* PSLLW */
    {"0f f2 c1", 0x27ace8a42aed5dc8ull, 0x0000000000000020ull, 0x0000000000000000ull}, /* PSLLD */
    {"0f f2 c1", 0x0000000080000000ull, 0x0000000000000010ull, 0x0000000000000000ull}, /* PSLLD */
    {"0f f2 c1", 0xb42dd4e4c7d476f4ull, 0x0000000000000007ull, 0x16ea7200ea3b7a00ull}, /* PSLLD */
    {"0f f2 c1", 0x79d420f83083bf0aull, 0xe1fe5877a6f5b641ull, 0x0000000000000000ull}, /* PSLLD */
    {"0f f3 c1", 0x4841fe66cd6a8b48ull, 0x000000000000001full, 0x66b545a400000000ull}, /* PSLLQ */
    {"0f f3 c1", 0xefd6b8acef90fc80ull, 0x0000000000000040ull, 0x0000000000000000ull}, /* PSLLQ */
    {"0f f3 c1", 0x41c80d1055a2fc46ull, 0x0000000000000001ull, 0x83901a20ab45f88cull}, /* PSLLQ */
    {"0f f3 c1", 0x5d5692115d76cefbull, 0x68988292f1096ea5ull, 0x0000000000000000ull}, /* PSLLQ */
    {"0f d1 c1", 0xb6824a4441c6a916ull, 0x0000000000000020ull, 0x0000000000000000ull}, /* PSRLW */
    {"0f d1 c1", 0x822847dc336e9320ull, 0x0000000000000000ull, 0x822847dc336e9320ull}, /* PSRLW */
    {"0f d1 c1", 0x95fae7e3744882f6ull, 0x0000000000000003ull, 0x12bf1cfc0e89105eull}, /* PSRLW */
    {"0f d1 c1", 0xecde16ad4df190c5ull, 0x410b90b3eaec1669ull, 0x0000000000000000ull}, /* PSRLW */
    {"0f d2 c1", 0x71273b498e24c3caull, 0x0000000000000001ull, 0x38939da4471261e5ull}, /* PSRLD */
    {"0f d2 c1", 0x2a71b678cf785cf5ull, 0x0000000000000003ull, 0x054e36cf19ef0b9eull}, /* PSRLD */
    {"0f d2 c1", 0xc27440e842a9fd73ull, 0x000000000000003full, 0x0000000000000000ull}, /* PSRLD */
    {"0f d2 c1", 0xe00676de7d81d858ull, 0xa3b7f9040ed9549bull, 0x0000000000000000ull}, /* PSRLD */
    {"0f d3 c1", 0x61055060363e81acull, 0x0000000000000007ull, 0x00c20aa0c06c7d03ull}, /* PSRLQ */
    {"0f d3 c1", 0x8080808080808080ull, 0x0000000000000040ull, 0x0000000000000000ull}, /* PSRLQ */
    {"0f d3 c1", 0x78389323c640f5e8ull, 0x0000000000000040ull, 0x0000000000000000ull}, /* PSRLQ */
    {"0f d3 c1", 0xf5b74f707a3b7bedull, 0xf9024ada28afb6f2ull, 0x0000000000000000ull}, /* PSRLQ */
    {"0f e1 c1", 0x1d68f4710ddadb49ull, 0x0000000000000001ull, 0x0eb4fa3806ededa4ull}, /* PSRAW */
    {"0f e1 c1", 0x1af64c8dddc23322ull, 0x0000000000000007ull, 0x00350099ffbb0066ull}, /* PSRAW */
    {"0f e1 c1", 0x0000000080000000ull, 0x000000000000001full, 0x00000000ffff0000ull}, /* PSRAW */
    {"0f e1 c1", 0x4b6a47a6cc9ae9dbull, 0x504cc89b1055f682ull, 0x00000000ffffffffull}, /* PSRAW */
    {"0f e2 c1", 0x8080808080808080ull, 0x0000000000000010ull, 0xffff8080ffff8080ull}, /* PSRAD */
    {"0f e2 c1", 0x7e6be50686949bc3ull, 0x0000010000000000ull, 0x00000000ffffffffull}, /* PSRAD */
    {"0f e2 c1", 0x7f7f7f7f7f7f7f7full, 0x0000000000000010ull, 0x00007f7f00007f7full}, /* PSRAD */
    {"0f e2 c1", 0x9c75d7a6541e0e85ull, 0x14bdb3746ff5484bull, 0xffffffff00000000ull}, /* PSRAD */
    {"0f e0 c1", 0xa29edf494b79241cull, 0x1b11605dd0a1bc57ull, 0x5f58a0538e8d703aull}, /* PAVGB */
    {"0f e0 c1", 0xec9b74d422eb285bull, 0xf8d145867b5c63e2ull, 0xf2b65dad4fa4469full}, /* PAVGB */
    {"0f e0 c1", 0x0000000000000000ull, 0xa045283f0703e837ull, 0x502314200402741cull}, /* PAVGB */
    {"0f e0 c1", 0x879cd1f9a5c16152ull, 0xe3fece1bc8b4f987ull, 0xb5cdd08ab7bbad6dull}, /* PAVGB */
    {"0f e3 c1", 0xffffffffffffffffull, 0xb79802655d2a994dull, 0xdbcc8132ae95cca6ull}, /* PAVGW */
    {"0f e3 c1", 0xa62c025d0a763405ull, 0x0000000000000000ull, 0x5316012f053b1a03ull}, /* PAVGW */
    {"0f e3 c1", 0x385a5518ac6d37b6ull, 0xc231a646ce60ce8cull, 0x7d467dafbd678321ull}, /* PAVGW */
    {"0f e3 c1", 0x8080808080808080ull, 0xf21fb320c30b52c2ull, 0xb95099d0a1c669a1ull}, /* PAVGW */
    {"0f da c1", 0x4c539942fe71123full, 0x102aa84ba2c01badull, 0x102a9942a271123full}, /* PMINUB */
    {"0f da c1", 0x8080808080808080ull, 0x57876014dc1f47ccull, 0x57806014801f4780ull}, /* PMINUB */
    {"0f da c1", 0xa366c562fe6489f6ull, 0x6ab3e51374d1b31bull, 0x6a66c5137464891bull}, /* PMINUB */
    {"0f da c1", 0xbed5553f535f8133ull, 0xb9ce610d35449c0eull, 0xb9ce550d3544810eull}, /* PMINUB */
    {"0f de c1", 0x8080808080808080ull, 0x0000000080000000ull, 0x8080808080808080ull}, /* PMAXUB */
    {"0f de c1", 0x07d3a70aa402ffccull, 0x6ee4b68a45c04d95ull, 0x6ee4b68aa4c0ffccull}, /* PMAXUB */
    {"0f de c1", 0xe05c0253fffe4063ull, 0x98b38b620de01154ull, 0xe0b38b62fffe4063ull}, /* PMAXUB */
    {"0f de c1", 0x2af4703d6c11d5f0ull, 0xe2b4d4e17274ce07ull, 0xe2f4d4e17274d5f0ull}, /* PMAXUB */
    {"0f ea c1", 0x94e36280e6b46636ull, 0xffffffffffffffffull, 0x94e3ffffe6b4ffffull}, /* PMINSW */
    {"0f ea c1", 0xa31ef3ed35b3fb15ull, 0x62401bdde8ce576bull, 0xa31ef3ede8cefb15ull}, /* PMINSW */
    {"0f ea c1", 0x3042601f06a065d8ull, 0x18d90fcebb8640b9ull, 0x18d90fcebb8640b9ull}, /* PMINSW */
    {"0f ea c1", 0x88fb5ed5ecf7a06full, 0x179cc944149b7577ull, 0x88fbc944ecf7a06full}, /* PMINSW */
    {"0f ee c1", 0xffffffff00000000ull, 0x673c6da833ac6c2full, 0x673c6da833ac6c2full}, /* PMAXSW */
    {"0f ee c1", 0xd26e3c3bc1263ddfull, 0xbbffd65933568df9ull, 0xd26e3c3b33563ddfull}, /* PMAXSW */
    {"0f ee c1", 0xd288a08e96855d7cull, 0x0fc074cb0ecddf69ull, 0x0fc074cb0ecd5d7cull}, /* PMAXSW */
    {"0f ee c1", 0x68c89e378b459895ull, 0x71d24da2396f796full, 0x71d24da2396f796full}, /* PMAXSW */
    {"0f f6 c1", 0xac060ac0ec10b9e7ull, 0x5ce9bb52b8116bcdull, 0x00000000000002efull}, /* PSADBW */
    {"0f f6 c1", 0xf3434c5da20fdb6eull, 0x53ae2268a9a87f23ull, 0x0000000000000287ull}, /* PSADBW */
    {"0f f6 c1", 0x90ef0761ff98269dull, 0xdc53f2cb1c747ae0ull, 0x00000000000003dbull}, /* PSADBW */
    {"0f f6 c1", 0x5c05be867d85a031ull, 0xf8b818d0531d6e5dull, 0x000000000000032full}, /* PSADBW */
    {"0f 38 00 c1", 0x8000800080008000ull, 0x1b42e275de80c1ccull, 0x8000008000000000ull}, /* PSHUFB */
    {"0f 38 00 c1", 0x4a8d5a90daf5619dull, 0xef819e0ee2664d46ull, 0x0000008d008d5a8dull}, /* PSHUFB */
    {"0f 38 00 c1", 0x96c26a95944081e4ull, 0x8ee581d116d5d05bull, 0x00000000c2000094ull}, /* PSHUFB */
    {"0f 38 00 c1", 0x0bee5fefd61e672eull, 0x71bd53745292e120ull, 0x6700d6ef1e00002eull}, /* PSHUFB */
    {"0f 38 01 c1", 0xf28d54b319e45839ull, 0x08021e963f4662cfull, 0x2698a2154740721dull}, /* PHADDW */
    {"0f 38 01 c1", 0x66108cbb18927836ull, 0x5dc356b3c536dcd6ull, 0xb476a20cf2cb90c8ull}, /* PHADDW */
    {"0f 38 01 c1", 0x18685a31dadd7c0aull, 0xb6a983abb4179149ull, 0x3a544560729956e7ull}, /* PHADDW */
    {"0f 38 01 c1", 0x8000800080008000ull, 0xf54ad980a6884134ull, 0xcecae7bc00000000ull}, /* PHADDW */
    {"0f 38 02 c1", 0xe2f6b8604767bd76ull, 0x7b93f0d9a6b02651ull, 0x2244172a2a5e75d6ull}, /* PHADDD */
    {"0f 38 02 c1", 0xffffffff00000000ull, 0x06f746816cdeacd1ull, 0x73d5f352ffffffffull}, /* PHADDD */
    {"0f 38 02 c1", 0x8080808080808080ull, 0x0000000080000000ull, 0x8000000001010100ull}, /* PHADDD */
    {"0f 38 02 c1", 0xd170f171f3e2ee4dull, 0x7e1fe7994a831f95ull, 0xc8a3072ec553dfbeull}, /* PHADDD */
    {"0f 38 03 c1", 0xf8ede3e780e1f801ull, 0x321bd22cd29c7fbbull, 0x04475257dcd48000ull}, /* PHADDSW */
    {"0f 38 03 c1", 0x76103dd1189aa1bfull, 0xab347bb27d19054cull, 0x26e67fff7fffba59ull}, /* PHADDSW */
    {"0f 38 03 c1", 0xec096fe3b12baa0eull, 0x12c54d454a81c6caull, 0x600a114b5bec8000ull}, /* PHADDSW */
    {"0f 38 03 c1", 0x08d0ab30396b9f56ull, 0x4ed7049b82d5ed7bull, 0x53728000b400d8c1ull}, /* PHADDSW */
    {"0f 38 04 c1", 0x26e5732ac84cffd4ull, 0xb07c0cb37f8bda2full, 0x630cf8c2407c0112ull}, /* PMADDUBSW */
    {"0f 38 04 c1", 0x531dd284ecc62f47ull, 0x72391bf63f7263c7ull, 0x2b6b10fe7fff025eull}, /* PMADDUBSW */
    {"0f 38 04 c1", 0xef4269fe8a5a18f8ull, 0xffffffffffffffffull, 0xfecffe99ff1cfef0ull}, /* PMADDUBSW */
    {"0f 38 04 c1", 0x7fff7fff7fff7fffull, 0x0000000080000000ull, 0x00000000c0800000ull}, /* PMADDUBSW */
    {"0f 38 05 c1", 0xe5f6822f65c60aa1ull, 0xcf27b31b2f355be4ull, 0xe3f42caf9c39a4dbull}, /* PHSUBW */
    {"0f 38 05 c1", 0x228c18d531d94a70ull, 0xb10df9b71f84ab3dull, 0x48aa8bb9f6491897ull}, /* PHSUBW */
    {"0f 38 05 c1", 0x4d3ad9f7c2e0a3c6ull, 0x214977b63490c51aull, 0x566d908a8cbde0e6ull}, /* PHSUBW */
    {"0f 38 05 c1", 0x8080808080808080ull, 0x73169a3abaeabd28ull, 0x2724023e00000000ull}, /* PHSUBW */
    {"0f 38 06 c1", 0xc2c29d142b3e6a70ull, 0x0000000080000000ull, 0x80000000687bcd5cull}, /* PHSUBD */
    {"0f 38 06 c1", 0x51675b43a153ae64ull, 0xffffffff00000000ull, 0x000000014fec5321ull}, /* PHSUBD */
    {"0f 38 06 c1", 0x5808c56054b6c400ull, 0x7fff7fff7fff7fffull, 0x00000000fcadfea0ull}, /* PHSUBD */
    {"0f 38 06 c1", 0x7f7f7f7f7f7f7f7full, 0xa33179bc7b3fe3f9ull, 0xd80e6a3d00000000ull}, /* PHSUBD */
    {"0f 38 07 c1", 0xfab56b4f3520189full, 0x14a4a5d66424aa57ull, 0x91328000709ae37full}, /* PHSUBSW */
    {"0f 38 07 c1", 0x65c2bd75a8bc2711ull, 0xd6f4ccff314e0fa3ull, 0xf60bde5580007e55ull}, /* PHSUBSW */
    {"0f 38 07 c1", 0x41724594d8d50b54ull, 0x8000800080008000ull, 0x000000000422327full}, /* PHSUBSW */
    {"0f 38 07 c1", 0xdc032a6140377371ull, 0x6f81f3ec45e8f3cfull, 0x846bade74e5e333aull}, /* PHSUBSW */
    {"0f 38 08 c1", 0x64508337f57dfd8aull, 0x7f7f7f7f7f7f7f7full, 0x64508337f57dfd8aull}, /* PSIGNB */
    {"0f 38 08 c1", 0xa709c1239a626a14ull, 0x0000000000000000ull, 0x0000000000000000ull}, /* PSIGNB */
    {"0f 38 08 c1", 0x0000000000000000ull, 0x8080808080808080ull, 0x0000000000000000ull}, /* PSIGNB */
    {"0f 38 08 c1", 0x18dde5c12fb0913aull, 0x1c69aec913977007ull, 0x18dd1b3f2f50913aull}, /* PSIGNB */
    {"0f 38 09 c1", 0x5734364fc0e8d498ull, 0x4de12aba5de55d5aull, 0x5734364fc0e8d498ull}, /* PSIGNW */
    {"0f 38 09 c1", 0xffffffff00000000ull, 0xc43fde42f5671292ull, 0x0001000100000000ull}, /* PSIGNW */
    {"0f 38 09 c1", 0x7a2255381c568379ull, 0x8000800080008000ull, 0x85deaac8e3aa7c87ull}, /* PSIGNW */
    {"0f 38 09 c1", 0xf954f42d8fc65ce8ull, 0x7fff7fff7fff7fffull, 0xf954f42d8fc65ce8ull}, /* PSIGNW */
    {"0f 38 0a c1", 0x802a37d2b1ed1fe1ull, 0xe299a5d89d39ebc7ull, 0x7fd5c82e4e12e01full}, /* PSIGND */
    {"0f 38 0a c1", 0x7f7f7f7f7f7f7f7full, 0xfca2dc9d0063ea90ull, 0x808080817f7f7f7full}, /* PSIGND */
    {"0f 38 0a c1", 0xf89788680ba4d1ecull, 0x7fff7fff7fff7fffull, 0xf89788680ba4d1ecull}, /* PSIGND */
    {"0f 38 0a c1", 0x4feb866814be1c4eull, 0xa30a1d6cbc689ac3ull, 0xb0147998eb41e3b2ull}, /* PSIGND */
    {"0f 38 0b c1", 0x10b819335c4e84a9ull, 0xa03821cfaf84cbe2ull, 0xf37d06a8c5f63238ull}, /* PMULHRSW */
    {"0f 38 0b c1", 0x6396ac3c5b77d925ull, 0x0822ea8015243c3full, 0x06540e120f1bedb6ull}, /* PMULHRSW */
    {"0f 38 0b c1", 0x8863ef473ff2cd9aull, 0x26f901a09c00bcb2ull, 0xdb95ffcace0b1a80ull}, /* PMULHRSW */
    {"0f 38 0b c1", 0xffffffff00000000ull, 0x5ad47437e66ad629ull, 0xffffffff00000000ull}, /* PMULHRSW */
    {"0f 38 1c c1", 0x903f12d5d72929c4ull, 0x0cc8062796fc0935ull, 0x0c3806276a040935ull}, /* PABSB */
    {"0f 38 1c c1", 0xfd9ff9eb4d1cb11cull, 0xf78102a49cbf14e8ull, 0x097f025c64411418ull}, /* PABSB */
    {"0f 38 1c c1", 0x94fb16b2b9805af2ull, 0x7f7f7f7f7f7f7f7full, 0x7f7f7f7f7f7f7f7full}, /* PABSB */
    {"0f 38 1c c1", 0xf33159ea17ce500cull, 0x8616eec9480b1c78ull, 0x7a161237480b1c78ull}, /* PABSB */
    {"0f 38 1d c1", 0x728d01936d5f6d61ull, 0xc3b0c8b9888a1a71ull, 0x3c50374777761a71ull}, /* PABSW */
    {"0f 38 1d c1", 0x1e1cddd8bd8f9661ull, 0x36d1cd30f94b3293ull, 0x36d132d006b53293ull}, /* PABSW */
    {"0f 38 1d c1", 0x99bb9f7a73d7adb3ull, 0x4390b57c462790a1ull, 0x43904a8446276f5full}, /* PABSW */
    {"0f 38 1d c1", 0xd1fa58de4d4b0490ull, 0x5f3af774693670b7ull, 0x5f3a088c693670b7ull}, /* PABSW */
    {"0f 38 1e c1", 0xe424c2f240beb38dull, 0x4db56236e7ffc25aull, 0x4db5623618003da6ull}, /* PABSD */
    {"0f 38 1e c1", 0x71e744e9180c72adull, 0x49925dff9d5bb874ull, 0x49925dff62a4478cull}, /* PABSD */
    {"0f 38 1e c1", 0x9e963604ad2e623aull, 0xc262910f2b7525dbull, 0x3d9d6ef12b7525dbull}, /* PABSD */
    {"0f 38 1e c1", 0xf0ef79f6306e2b67ull, 0x0dc1ac818e98acfcull, 0x0dc1ac8171675304ull}, /* PABSD */
    {"0f 71 d0 01", 0xd80ec68d5acfc41cull, 0, 0x6c0763462d67620eull}, /* PSRLW imm */
    {"0f 71 d0 09", 0x0a7e6952f987e11full, 0, 0x00050034007c0070ull}, /* PSRLW imm */
    {"0f 71 d0 11", 0xb99c608094c1bb75ull, 0, 0x0000000000000000ull}, /* PSRLW imm */
    {"0f 71 d0 21", 0xdb0c08b7b4e90750ull, 0, 0x0000000000000000ull}, /* PSRLW imm */
    {"0f 71 d0 ff", 0xe333ce4c742906c6ull, 0, 0x0000000000000000ull}, /* PSRLW imm */
    {"0f 71 e0 01", 0x0000000000000000ull, 0, 0x0000000000000000ull}, /* PSRAW imm */
    {"0f 71 e0 09", 0xed30c4aae1d9f99bull, 0, 0xfff6ffe2fff0fffcull}, /* PSRAW imm */
    {"0f 71 e0 11", 0xae54da011ef15fb6ull, 0, 0xffffffff00000000ull}, /* PSRAW imm */
    {"0f 71 e0 21", 0x8ea9b684581d3d42ull, 0, 0xffffffff00000000ull}, /* PSRAW imm */
    {"0f 71 e0 ff", 0xb181b3a90827c614ull, 0, 0xffffffff0000ffffull}, /* PSRAW imm */
    {"0f 71 f0 01", 0x984c1cf6bfe01ae7ull, 0, 0x309839ec7fc035ceull}, /* PSLLW imm */
    {"0f 71 f0 09", 0x85b1467e5e92ae28ull, 0, 0x6200fc0024005000ull}, /* PSLLW imm */
    {"0f 71 f0 11", 0x7279ec54d9a71a6eull, 0, 0x0000000000000000ull}, /* PSLLW imm */
    {"0f 71 f0 21", 0xee18dfc62e969ef1ull, 0, 0x0000000000000000ull}, /* PSLLW imm */
    {"0f 71 f0 ff", 0x441e8d2003d2f65aull, 0, 0x0000000000000000ull}, /* PSLLW imm */
    {"0f 72 d0 01", 0x4eb79d5c84690922ull, 0, 0x275bceae42348491ull}, /* PSRLD imm */
    {"0f 72 d0 09", 0x80c7e46e57a65723ull, 0, 0x004063f2002bd32bull}, /* PSRLD imm */
    {"0f 72 d0 11", 0x47f3c869a6ca7521ull, 0, 0x000023f900005365ull}, /* PSRLD imm */
    {"0f 72 d0 21", 0x817912635cc220aeull, 0, 0x0000000000000000ull}, /* PSRLD imm */
    {"0f 72 d0 ff", 0xf50275792efbdeb8ull, 0, 0x0000000000000000ull}, /* PSRLD imm */
    {"0f 72 e0 01", 0x96406431f0e5ff49ull, 0, 0xcb203218f872ffa4ull}, /* PSRAD imm */
    {"0f 72 e0 09", 0xdc889ffa293368c0ull, 0, 0xffee444f001499b4ull}, /* PSRAD imm */
    {"0f 72 e0 11", 0x234fca1cf6092b47ull, 0, 0x000011a7fffffb04ull}, /* PSRAD imm */
    {"0f 72 e0 21", 0xc55f67bbefe94201ull, 0, 0xffffffffffffffffull}, /* PSRAD imm */
    {"0f 72 e0 ff", 0x50b4545b57fba597ull, 0, 0x0000000000000000ull}, /* PSRAD imm */
    {"0f 72 f0 01", 0x0793488587cc9841ull, 0, 0x0f26910a0f993082ull}, /* PSLLD imm */
    {"0f 72 f0 09", 0xffffffff00000000ull, 0, 0xfffffe0000000000ull}, /* PSLLD imm */
    {"0f 72 f0 11", 0xd22d368654ad91ecull, 0, 0x6d0c000023d80000ull}, /* PSLLD imm */
    {"0f 72 f0 21", 0xc9f32cdb3c54d9cbull, 0, 0x0000000000000000ull}, /* PSLLD imm */
    {"0f 72 f0 ff", 0x6954251620d5104full, 0, 0x0000000000000000ull}, /* PSLLD imm */
    {"0f 73 d0 01", 0xf99fc761ca7722bcull, 0, 0x7ccfe3b0e53b915eull}, /* PSRLQ imm */
    {"0f 73 d0 09", 0x6a0043dd8abc8d56ull, 0, 0x00350021eec55e46ull}, /* PSRLQ imm */
    {"0f 73 d0 11", 0xf1b63bbe429ff71full, 0, 0x000078db1ddf214full}, /* PSRLQ imm */
    {"0f 73 d0 21", 0x9a590947d0768d82ull, 0, 0x000000004d2c84a3ull}, /* PSRLQ imm */
    {"0f 73 d0 ff", 0x877b163ed57c0bc4ull, 0, 0x0000000000000000ull}, /* PSRLQ imm */
    {"0f 73 f0 01", 0x2f5bd0106cfe6992ull, 0, 0x5eb7a020d9fcd324ull}, /* PSLLQ imm */
    {"0f 73 f0 09", 0x8080808080808080ull, 0, 0x0101010101010000ull}, /* PSLLQ imm */
    {"0f 73 f0 11", 0xd8b52f0d027ca00cull, 0, 0x5e1a04f940180000ull}, /* PSLLQ imm */
    {"0f 73 f0 21", 0xcd1695e68cbfc81dull, 0, 0x197f903a00000000ull}, /* PSLLQ imm */
    {"0f 73 f0 ff", 0xdc0eafc4f30fbdb9ull, 0, 0x0000000000000000ull}, /* PSLLQ imm */
    {"0f 3a 0f c1 00", 0x461e963ee152cd34ull, 0x2b179816e543e67cull, 0x2b179816e543e67cull}, /* PALIGNR */
    {"0f 3a 0f c1 01", 0xdd5a7f2b471722b2ull, 0x2c0ee236eb3652d9ull, 0xb22c0ee236eb3652ull}, /* PALIGNR */
    {"0f 3a 0f c1 05", 0xfce1c482caf9a5d6ull, 0x618b31cfb7f1f14bull, 0x82caf9a5d6618b31ull}, /* PALIGNR */
    {"0f 3a 0f c1 08", 0x0fdea6f8c75223f2ull, 0x7f7f7f7f7f7f7f7full, 0x0fdea6f8c75223f2ull}, /* PALIGNR */
    {"0f 3a 0f c1 09", 0xba07c4b14bce2f2cull, 0x65c5b7bd1dcbd385ull, 0x00ba07c4b14bce2full}, /* PALIGNR */
    {"0f 3a 0f c1 0f", 0x2407de669edd7cd1ull, 0x328fea78a4532d9aull, 0x0000000000000024ull}, /* PALIGNR */
    {"0f 3a 0f c1 10", 0x43e73a8f7c987424ull, 0xffffffff00000000ull, 0x0000000000000000ull}, /* PALIGNR */
    {"0f 3a 0f c1 c8", 0x08bc52332cbdc815ull, 0x1223b172d8bdd8daull, 0x0000000000000000ull}, /* PALIGNR */
    {"0f 70 c1 1b", 0, 0xf5f149dbfcda47c7ull, 0x47c7fcda49dbf5f1ull}, /* PSHUFW */
    {"0f 70 c1 e4", 0, 0x8080808080808080ull, 0x8080808080808080ull}, /* PSHUFW */
    {"0f 70 c1 00", 0, 0xe672d97a65776a1bull, 0x6a1b6a1b6a1b6a1bull}, /* PSHUFW */
    {"0f 70 c1 ff", 0, 0x6fc43eda3d283568ull, 0x6fc46fc46fc46fc4ull}, /* PSHUFW */
    {"0f 70 c1 4e", 0, 0x8a181a45fa5d339bull, 0xfa5d339b8a181a45ull}, /* PSHUFW */
};

static void test_mmx_model(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(g_model) / sizeof(g_model[0]); i++) {
        iem_fpu_reset(&g_s->fpu);
        mm_set(0, g_model[i].a);
        mm_set(1, g_model[i].b);
        int rc = run(g_model[i].hex);
        if (rc != NO_FAULT)
            fail_msg("case %zu (%s): exception %d", i, g_model[i].hex, rc);
        if (mm_get(0) != g_model[i].want)
            fail_msg("case %zu (%s): got %016llx want %016llx", i, g_model[i].hex, (unsigned long long)mm_get(0),
                     (unsigned long long)g_model[i].want);
        assert_int_equal(mm_get(1), g_model[i].b);
    }
}

/* Memory source operands (m64, and m32 for the low unpacks) and a faulting one. */
static void test_mmx_memory_operands(void **state)
{
    (void)state;
    uint64_t v = 0x0102030405060708ull;
    memcpy(g_mem + 0x100, &v, 8);
    g_s->gpr[CPU_RBX] = D(0x100);
    mm_set(0, 0x1010101010101010ull);
    run_ok("0f fc 03"); /* PADDB mm0, [rbx] */
    assert_int_equal(mm_get(0), 0x1112131415161718ull);
    mm_set(0, 0);
    run_ok("0f 62 03"); /* PUNPCKLDQ mm0, [rbx] (m32) */
    assert_int_equal(mm_get(0), 0x0506070800000000ull);
    /* A faulting source leaves the x87/MMX state (TOP, tags) alone. */
    iem_fpu_reset(&g_s->fpu);
    push_ld(1.0L);
    struct cpu_fpu before = g_s->fpu;
    g_s->gpr[CPU_RBX] = 0xfffffffcull; /* the next page, above 4 GiB, is not mapped */
    assert_int_equal(run("0f fc 03"), IEM_X_PF);
    assert_memory_equal(&before, &g_s->fpu, sizeof(before));
    /* So does a faulting MOVQ store. */
    assert_int_equal(run("0f 7f 03"), IEM_X_PF);
    assert_memory_equal(&before, &g_s->fpu, sizeof(before));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_mmx_side_effects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mmx_arith, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mmx_moves_and_shifts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mmx_model, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mmx_memory_operands, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
