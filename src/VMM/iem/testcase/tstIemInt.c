/* tstIemInt.c - unit tests of the interpreter's integer family: the host-computed ALU helpers against hand-computed values. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../iem-alu.h"

#define CF IEM_F_CF
#define PF IEM_F_PF
#define AF IEM_F_AF
#define ZF IEM_F_ZF
#define SF IEM_F_SF
#define OF IEM_F_OF
#define ALL IEM_F_ARITH
/* Flags outside the arithmetic ones that must survive every helper. */
#define OTHER (0x2u | IEM_F_TF | IEM_F_IF | IEM_F_DF | IEM_F_AC | IEM_F_ID)

/* ---- ADD/SUB/ADC/SBB/logic ------------------------------------------------------------------ */

static void test_add_sub_flags(void **state)
{
    uint64_t fl;

    fl = OTHER;
    assert_int_equal(iem_alu_add(1, 0xff, 1, &fl), 0);
    assert_int_equal(fl, OTHER | CF | ZF | AF | PF);

    fl = 0;
    assert_int_equal(iem_alu_add(1, 0x7f, 1, &fl), 0x80);
    assert_int_equal(fl, OF | SF | AF);

    fl = 0;
    assert_int_equal(iem_alu_add(8, 0x8000000000000000ull, 0x8000000000000000ull, &fl), 0);
    assert_int_equal(fl, CF | OF | ZF | PF);

    fl = ALL; /* stale input flags must not leak into the result */
    assert_int_equal(iem_alu_add(2, 0x1000, 0x0234, &fl), 0x1234);
    assert_int_equal(fl, 0);

    fl = 0;
    assert_int_equal(iem_alu_sub(4, 0, 1, &fl), 0xffffffffu);
    assert_int_equal(fl, CF | SF | AF | PF);

    fl = 0;
    assert_int_equal(iem_alu_sub(2, 0x8000, 1, &fl), 0x7fff);
    assert_int_equal(fl, OF | AF | PF);

    fl = OTHER;
    iem_alu_cmp(8, 5, 5, &fl);
    assert_int_equal(fl, OTHER | ZF | PF);
}

static void test_adc_sbb_carry_in(void **state)
{
    uint64_t fl;

    fl = CF;
    assert_int_equal(iem_alu_adc(4, 0xffffffffu, 0, &fl), 0);
    assert_int_equal(fl, CF | ZF | AF | PF);

    fl = 0;
    assert_int_equal(iem_alu_adc(1, 5, 3, &fl), 8);
    assert_int_equal(fl, 0);

    fl = CF;
    assert_int_equal(iem_alu_adc(1, 5, 3, &fl), 9);
    assert_int_equal(fl, PF);

    fl = CF;
    assert_int_equal(iem_alu_sbb(2, 0, 0, &fl), 0xffff);
    assert_int_equal(fl, CF | SF | AF | PF);

    fl = 0;
    assert_int_equal(iem_alu_sbb(1, 5, 3, &fl), 2);
    assert_int_equal(fl, 0);

    fl = CF;
    assert_int_equal(iem_alu_sbb(8, 0, 0xffffffffffffffffull, &fl), 0);
    assert_int_equal(fl & (CF | ZF), CF | ZF);
}

static void test_logic_clears_cf_of(void **state)
{
    uint64_t fl;

    fl = CF | OF;
    assert_int_equal(iem_alu_and(4, 0xf0f0f0f0u, 0x0f0f0f0fu, &fl), 0);
    assert_int_equal(fl & ~(uint64_t)AF, ZF | PF); /* AF is undefined after logic ops */

    fl = CF;
    assert_int_equal(iem_alu_or(1, 0x80, 1, &fl), 0x81);
    assert_int_equal(fl & ~(uint64_t)AF, SF | PF);

    fl = OF;
    assert_int_equal(iem_alu_xor(8, 0x123456789ull, 0x123456789ull, &fl), 0);
    assert_int_equal(fl & ~(uint64_t)AF, ZF | PF);

    fl = 0;
    iem_alu_test(1, 0x80, 0x80, &fl);
    assert_int_equal(fl & ~(uint64_t)AF, SF);
}

/* ---- INC/DEC/NEG/NOT --------------------------------------------------------------------------- */

static void test_inc_dec_keep_cf(void **state)
{
    uint64_t fl;

    fl = CF;
    assert_int_equal(iem_alu_inc(1, 0xff, &fl), 0);
    assert_int_equal(fl, CF | ZF | AF | PF);

    fl = 0;
    assert_int_equal(iem_alu_inc(1, 0xff, &fl), 0);
    assert_int_equal(fl, ZF | AF | PF);

    fl = 0;
    assert_int_equal(iem_alu_inc(4, 0x7fffffffu, &fl), 0x80000000u);
    assert_int_equal(fl, OF | SF | AF | PF);

    fl = CF;
    assert_int_equal(iem_alu_dec(4, 0, &fl), 0xffffffffu);
    assert_int_equal(fl, CF | SF | AF | PF);

    fl = 0;
    assert_int_equal(iem_alu_dec(1, 0x80, &fl), 0x7f);
    assert_int_equal(fl, OF | AF);
}

static void test_neg_not(void **state)
{
    uint64_t fl;

    fl = CF;
    assert_int_equal(iem_alu_neg(1, 0, &fl), 0);
    assert_int_equal(fl, ZF | PF);

    fl = 0;
    assert_int_equal(iem_alu_neg(1, 1, &fl), 0xff);
    assert_int_equal(fl, CF | SF | AF | PF);

    fl = 0;
    assert_int_equal(iem_alu_neg(1, 0x80, &fl), 0x80);
    assert_int_equal(fl, CF | OF | SF);

    fl = 0;
    assert_int_equal(iem_alu_neg(8, 1, &fl), 0xffffffffffffffffull);
    assert_true(fl & CF);

    assert_int_equal(iem_alu_not(2, 0x1234), 0xedcb);
    assert_int_equal(iem_alu_not(4, 0), 0xffffffffu);
}

/* ---- Shifts and rotates -------------------------------------------------------------------------- */

static void test_shift_count_zero_keeps_flags(void **state)
{
    uint64_t fl;

    fl = OTHER | CF | PF | AF | ZF | SF | OF;
    assert_int_equal(iem_alu_shl(4, 0x1234, 0, &fl), 0x1234);
    assert_int_equal(fl, OTHER | ALL);

    fl = PF | OF;
    assert_int_equal(iem_alu_shl(4, 0x1234, 32, &fl), 0x1234); /* masked to 0 */
    assert_int_equal(fl, PF | OF);

    fl = SF;
    assert_int_equal(iem_alu_sar(8, 0x8000, 64, &fl), 0x8000); /* masked to 0 with 6 bits */
    assert_int_equal(fl, SF);

    fl = CF | ZF;
    assert_int_equal(iem_alu_rcl(1, 0x42, 0, &fl), 0x42);
    assert_int_equal(fl, CF | ZF);

    fl = ZF;
    assert_int_equal(iem_alu_shld(4, 0x1234, 0xffffffffu, 0, &fl), 0x1234);
    assert_int_equal(fl, ZF);
}

static void test_shift_one_and_large(void **state)
{
    uint64_t fl;
    const uint64_t def = CF | OF | SF | ZF | PF;

    fl = 0;
    assert_int_equal(iem_alu_shl(1, 0x81, 1, &fl), 0x02);
    assert_int_equal(fl & def, CF | OF);

    fl = 0;
    assert_int_equal(iem_alu_shl(1, 0x01, 9, &fl), 0); /* 8-bit shift by 9: count not masked */
    assert_int_equal(fl & (SF | ZF | PF), ZF | PF);

    fl = 0;
    assert_int_equal(iem_alu_shr(2, 0x8001, 1, &fl), 0x4000);
    assert_int_equal(fl & def, CF | OF | PF);

    fl = CF;
    assert_int_equal(iem_alu_sar(1, 0x80, 7, &fl), 0xff);
    assert_int_equal(fl & (CF | SF | ZF | PF), SF | PF);

    fl = OF;
    assert_int_equal(iem_alu_sar(4, 0x80000000u, 1, &fl), 0xc0000000u);
    assert_int_equal(fl & def, SF | PF);

    fl = 0;
    assert_int_equal(iem_alu_shl(8, 1, 65, &fl), 2); /* 65 & 63 = 1 */
    assert_int_equal(fl & def, 0);
}

/* RCL/RCR of 8/16-bit operands rotate through CF modulo 9/17 after masking by 31 (SDM RCL). */
static void test_rcl_rcr_count_rules(void **state)
{
    uint64_t fl;

    fl = CF | ZF;
    assert_int_equal(iem_alu_rcl(1, 0x81, 9, &fl), 0x81);
    assert_int_equal(fl & (CF | ZF | SF), CF | ZF);

    fl = 0;
    assert_int_equal(iem_alu_rcl(1, 0x80, 1, &fl), 0x00);
    assert_int_equal(fl & (CF | OF), CF | OF);

    fl = CF;
    assert_int_equal(iem_alu_rcl(1, 0x00, 1, &fl), 0x01);
    assert_int_equal(fl & (CF | OF), 0);

    fl = 0;
    assert_int_equal(iem_alu_rcl(2, 0x8000, 17, &fl), 0x8000);
    assert_int_equal(fl & CF, 0);

    fl = 0;
    assert_int_equal(iem_alu_rcl(2, 0x8000, 18, &fl), 0x0000);
    assert_int_equal(fl & CF, CF);

    fl = 0;
    assert_int_equal(iem_alu_rcr(2, 0x0001, 18, &fl), 0x0000);
    assert_int_equal(fl & CF, CF);

    fl = CF;
    assert_int_equal(iem_alu_rcr(1, 0x01, 1, &fl), 0x80);
    assert_int_equal(fl & (CF | OF), CF | OF);

    fl = 0; /* 32-bit RCL: only the 5-bit mask, no modulo 33 */
    assert_int_equal(iem_alu_rcl(4, 0x80000000u, 33, &fl), 0);
    assert_int_equal(fl & CF, CF);

    fl = 0; /* 8-bit RCL by 31: 31 mod 9 = 4 */
    assert_int_equal(iem_alu_rcl(1, 0x01, 31, &fl), 0x10);
}

static void test_rol_ror_flags(void **state)
{
    uint64_t fl;

    /* ROL by a multiple of the size: value unchanged, CF = LSB, SF/ZF/PF untouched. */
    fl = ZF | SF | PF;
    assert_int_equal(iem_alu_rol(1, 0x81, 8, &fl), 0x81);
    assert_int_equal(fl & (CF | ZF | SF | PF), CF | ZF | SF | PF);

    fl = 0;
    assert_int_equal(iem_alu_rol(1, 0x81, 1, &fl), 0x03);
    assert_int_equal(fl & (CF | OF | ZF | SF), CF | OF);

    fl = 0;
    assert_int_equal(iem_alu_ror(4, 0x12345678u, 4, &fl), 0x81234567u);
    assert_int_equal(fl & CF, CF);

    fl = ZF;
    assert_int_equal(iem_alu_ror(1, 0x01, 1, &fl), 0x80);
    assert_int_equal(fl & (CF | OF | ZF), CF | OF | ZF);
}

static void test_shld_shrd(void **state)
{
    uint64_t fl;

    fl = 0;
    assert_int_equal(iem_alu_shld(4, 0x12345678u, 0x9abcdef0u, 8, &fl), 0x3456789au);
    assert_int_equal(fl & (CF | ZF | SF | PF), PF);

    fl = CF;
    assert_int_equal(iem_alu_shrd(2, 0x1234, 0xabcd, 4, &fl), 0xd123);
    assert_int_equal(fl & (CF | ZF | SF | PF), SF);

    fl = 0;
    assert_int_equal(iem_alu_shld(8, 1, 0x8000000000000000ull, 1, &fl), 3);
    assert_int_equal(fl & (CF | OF | ZF | SF | PF), PF);

    fl = 0; /* 64-bit count 70 masks to 6 */
    assert_int_equal(iem_alu_shrd(8, 0x40, 0x3f, 70, &fl), 0xfc00000000000001ull);
}

/* ---- MUL/IMUL/DIV/IDIV --------------------------------------------------------------------------- */

static void test_mul_imul_flags(void **state)
{
    uint64_t fl, hi;

    fl = 0;
    assert_int_equal(iem_alu_mul(1, 0x80, 2, &hi, &fl), 0x100);
    assert_int_equal(hi, 1);
    assert_int_equal(fl & (CF | OF), CF | OF);

    fl = CF | OF;
    assert_int_equal(iem_alu_mul(2, 3, 4, &hi, &fl), 12);
    assert_int_equal(hi, 0);
    assert_int_equal(fl & (CF | OF), 0);

    fl = 0;
    assert_int_equal(iem_alu_mul(4, 0xffffffffu, 0xffffffffu, &hi, &fl), 1);
    assert_int_equal(hi, 0xfffffffeu);
    assert_int_equal(fl & (CF | OF), CF | OF);

    fl = 0;
    assert_int_equal(iem_alu_mul(8, 1ull << 32, 1ull << 32, &hi, &fl), 0);
    assert_int_equal(hi, 1);
    assert_int_equal(fl & (CF | OF), CF | OF);

    fl = CF | OF;
    assert_int_equal(iem_alu_imul1(1, 0xff, 0xff, &hi, &fl), 0x0001);
    assert_int_equal(fl & (CF | OF), 0);

    fl = 0; /* -128 * -1 = 128 does not fit in AL */
    assert_int_equal(iem_alu_imul1(1, 0x80, 0xff, &hi, &fl), 0x0080);
    assert_int_equal(fl & (CF | OF), CF | OF);

    fl = 0;
    assert_int_equal(iem_alu_imul1(4, 0xfffffffeu, 3, &hi, &fl), 0xfffffffau);
    assert_int_equal(hi, 0xffffffffu);
    assert_int_equal(fl & (CF | OF), 0);

    fl = 0;
    assert_int_equal(iem_alu_imul2(4, 0x40000000u, 2, &fl), 0x80000000u);
    assert_int_equal(fl & (CF | OF), CF | OF);

    fl = CF | OF;
    assert_int_equal(iem_alu_imul2(2, 0xfffe, 3, &fl), 0xfffa);
    assert_int_equal(fl & (CF | OF), 0);

    fl = 0;
    assert_int_equal(iem_alu_imul2(8, 1ull << 32, 1ull << 32, &fl), 0);
    assert_int_equal(fl & (CF | OF), CF | OF);
}

static void test_div_de_cases(void **state)
{
    /* DIV: zero divisor and quotient overflow. */
    assert_false(iem_alu_div_ok(4, 0, 0, 0));
    assert_false(iem_alu_div_ok(4, 0, 5, 5));
    assert_true(iem_alu_div_ok(4, 0xffffffffu, 4, 5));
    assert_false(iem_alu_div_ok(1, 0x1005, 0, 0x10));
    assert_true(iem_alu_div_ok(1, 0x0105, 0, 0x10));
    assert_true(iem_alu_div_ok(8, 5, 1, 2));
    assert_false(iem_alu_div_ok(2, 0, 0x10000 | 7, 7)); /* only the operand-size bits of DX count */
    assert_false(iem_alu_div_ok(2, 0x1234, 0, 0x10000)); /* divisor 0 after truncation */

    /* IDIV: the most negative quotient fits, its negation does not. */
    assert_false(iem_alu_idiv_ok(4, 0x80000000u, 0xffffffffu, 0xffffffffu));
    assert_false(iem_alu_idiv_ok(1, 0xff80, 0, 0xff));
    assert_true(iem_alu_idiv_ok(1, 0xff81, 0, 0xff));
    assert_true(iem_alu_idiv_ok(1, 0xff80, 0, 0x01)); /* -128 / 1 = -128 fits */
    assert_false(iem_alu_idiv_ok(8, 0, 0x8000000000000000ull, ~0ull));
    assert_false(iem_alu_idiv_ok(2, 0x8000, 0xffff, 0xffff));
    assert_true(iem_alu_idiv_ok(8, (uint64_t)-8, ~0ull, 2));
    assert_false(iem_alu_idiv_ok(8, 0, 0, 0));
    assert_false(iem_alu_idiv_ok(4, 0, 1, 2)); /* 2^32 / 2 = 2^31 > INT32_MAX */
    assert_true(iem_alu_idiv_ok(4, 0, 0xffffffffu, 2)); /* -2^32 / 2 = -2^31 fits */
}

static void test_div_results(void **state)
{
    uint64_t fl = 0, rem;

    assert_int_equal(iem_alu_div(8, 5, 1, 2, &rem, &fl), 0x8000000000000002ull);
    assert_int_equal(rem, 1);
    assert_int_equal(iem_alu_div(1, 0x0105, 0, 0x10, &rem, &fl), 0x10);
    assert_int_equal(rem, 5);
    assert_int_equal(iem_alu_div(2, 0x0000, 0x0001, 3, &rem, &fl), 0x5555);
    assert_int_equal(rem, 1);
    assert_int_equal(iem_alu_idiv(4, (uint32_t)-7, 0xffffffffu, 2, &rem, &fl), 0xfffffffdu);
    assert_int_equal(rem, 0xffffffffu);
    assert_int_equal(iem_alu_idiv(1, 0xfff9, 0, 2, &rem, &fl), 0xfd);
    assert_int_equal(rem, 0xff);
    fl = OTHER;
    (void)iem_alu_idiv(8, 100, 0, (uint64_t)-7, &rem, &fl);
    assert_int_equal(rem, 2);
    assert_int_equal(fl & OTHER, OTHER);
}

/* ---- Bit instructions ------------------------------------------------------------------------------- */

static void test_bt_family(void **state)
{
    uint64_t fl;

    fl = ZF;
    assert_int_equal(iem_alu_bt(4, 0x10, 4, &fl), 0x10);
    assert_int_equal(fl & (CF | ZF), CF | ZF); /* ZF unaffected */

    fl = CF;
    assert_int_equal(iem_alu_bts(4, 0, 35, &fl), 8);
    assert_int_equal(fl & CF, 0);

    fl = 0;
    assert_int_equal(iem_alu_btr(2, 0xffff, 15, &fl), 0x7fff);
    assert_int_equal(fl & CF, CF);

    fl = 0;
    assert_int_equal(iem_alu_btc(8, 0, 63, &fl), 0x8000000000000000ull);
    assert_int_equal(fl & CF, 0);

    fl = 0;
    assert_int_equal(iem_alu_btc(8, 0x8000000000000000ull, 127, &fl), 0);
    assert_int_equal(fl & CF, CF);
}

static void test_bsf_bsr_zero_source(void **state)
{
    uint64_t fl;

    fl = 0;
    assert_int_equal(iem_alu_bsf(4, 0x1234, 0, &fl), 0x1234);
    assert_true(fl & ZF);

    fl = ZF;
    assert_int_equal(iem_alu_bsf(4, 0x1234, 0x80, &fl), 7);
    assert_false(fl & ZF);

    fl = ZF;
    assert_int_equal(iem_alu_bsr(8, 0, 0x8000000000000001ull, &fl), 63);
    assert_false(fl & ZF);

    fl = 0;
    assert_int_equal(iem_alu_bsr(2, 0xdead, 0, &fl), 0xdead);
    assert_true(fl & ZF);

    fl = 0;
    assert_int_equal(iem_alu_bsr(2, 0, 0x0100, &fl), 8);
}

static void test_popcnt_lzcnt_tzcnt(void **state)
{
    uint64_t fl;

    fl = ALL;
    assert_int_equal(iem_alu_popcnt(4, 0xff00ff, &fl), 16);
    assert_int_equal(fl & ALL, 0);

    fl = 0;
    assert_int_equal(iem_alu_popcnt(2, 0x10000, &fl), 0);
    assert_int_equal(fl & ALL, ZF);

    fl = ZF;
    assert_int_equal(iem_alu_lzcnt(4, 0, &fl), 32);
    assert_int_equal(fl & (CF | ZF), CF);

    fl = 0;
    assert_int_equal(iem_alu_lzcnt(2, 1, &fl), 15);
    assert_int_equal(iem_alu_lzcnt(8, 1ull << 63, &fl), 0);
    assert_int_equal(fl & (CF | ZF), ZF);

    fl = 0;
    assert_int_equal(iem_alu_tzcnt(2, 0, &fl), 16);
    assert_int_equal(fl & (CF | ZF), CF);
    assert_int_equal(iem_alu_tzcnt(4, 0x100, &fl), 8);
}

static void test_bswap(void **state)
{
    assert_int_equal(iem_alu_bswap(4, 0x12345678u), 0x78563412u);
    assert_int_equal(iem_alu_bswap(8, 0x0102030405060708ull), 0x0807060504030201ull);
    assert_int_equal(iem_alu_bswap(2, 0x1234), 0);
}

static void test_cmpxchg_compare(void **state)
{
    uint64_t fl;

    fl = 0;
    assert_true(iem_alu_cmpxchg_cmp(4, 5, 5, &fl));
    assert_int_equal(fl & (ZF | CF), ZF);

    fl = ZF;
    assert_false(iem_alu_cmpxchg_cmp(4, 5, 6, &fl));
    assert_int_equal(fl & (ZF | CF | SF), CF | SF);

    fl = 0;
    assert_false(iem_alu_cmpxchg_cmp(1, 0x80, 0x01, &fl));
    assert_int_equal(fl & OF, OF);

    fl = 0;
    assert_int_equal(iem_alu_xadd(2, 0xffff, 1, &fl), 0);
    assert_int_equal(fl & (CF | ZF), CF | ZF);
}

/* ---- BCD (values checked against a real processor in 32-bit mode) ----------------------------------- */

static void test_daa_das(void **state)
{
    uint64_t fl;

    /* SDM DAA example: 79h + 35h = AEh, DAA -> 14h with CF. */
    fl = 0;
    assert_int_equal(iem_alu_daa(0xae, &fl), 0x14);
    assert_int_equal(fl & ~(uint64_t)OF, CF | AF | PF);

    /* The SDM's second DAA example prints CF=1, but 2Eh adjusts to 34h without a decimal carry. */
    fl = OF | SF;
    assert_int_equal(iem_alu_daa(0x2e, &fl), 0x34);
    assert_int_equal(fl & ~(uint64_t)OF, AF);

    fl = 0;
    assert_int_equal(iem_alu_daa(0x99, &fl), 0x99);
    assert_int_equal(fl & ~(uint64_t)OF, SF | PF);

    fl = 0;
    assert_int_equal(iem_alu_daa(0x9a, &fl), 0x00);
    assert_int_equal(fl & ~(uint64_t)OF, CF | AF | ZF | PF);

    fl = CF; /* 0x00 with carry in: + 60h */
    assert_int_equal(iem_alu_daa(0x00, &fl), 0x60);
    assert_int_equal(fl & CF, CF);

    /* SDM DAS example: 35h - 47h = EEh, DAS -> 88h with CF. */
    fl = SF | AF | PF | CF;
    assert_int_equal(iem_alu_das(0xee, &fl), 0x88);
    assert_int_equal(fl & ~(uint64_t)OF, SF | AF | PF | CF);

    fl = 0;
    assert_int_equal(iem_alu_das(0x15, &fl), 0x15);
    assert_int_equal(fl & (CF | AF), 0);

    fl = AF; /* borrow from the low digit only */
    assert_int_equal(iem_alu_das(0x20, &fl), 0x1a);
    assert_int_equal(fl & (CF | AF), AF);
}

static void test_aaa_aas_aam_aad(void **state)
{
    uint64_t fl;

    fl = AF; /* '9' + '8' as unpacked BCD: AL = 11h with AF */
    assert_int_equal(iem_alu_aaa(0x0011, &fl), 0x0107);
    assert_int_equal(fl & (CF | AF), CF | AF);

    fl = 0;
    assert_int_equal(iem_alu_aaa(0x000f, &fl), 0x0105);
    assert_int_equal(fl & (CF | AF), CF | AF);

    fl = CF;
    assert_int_equal(iem_alu_aaa(0x0005, &fl), 0x0005);
    assert_int_equal(fl & (CF | AF), 0);

    fl = 0; /* AX + 106h carries out of AL into AH (current SDM pseudo-code, as hardware does) */
    assert_int_equal(iem_alu_aaa(0x00fa, &fl), 0x0200);

    fl = AF;
    assert_int_equal(iem_alu_aas(0x0208, &fl), 0x0102);
    assert_int_equal(fl & (CF | AF), CF | AF);

    fl = AF;
    assert_int_equal(iem_alu_aas(0x0003, &fl), 0xfe0d);

    fl = 0;
    assert_int_equal(iem_alu_aas(0x0105, &fl), 0x0105);
    assert_int_equal(fl & (CF | AF), 0);

    fl = 0;
    assert_int_equal(iem_alu_aam(0x003f, 10, &fl), 0x0603);
    assert_int_equal(fl & (SF | ZF | PF), PF);

    fl = 0;
    assert_int_equal(iem_alu_aam(0x1200, 10, &fl), 0x0000);
    assert_int_equal(fl & (SF | ZF | PF), ZF | PF);

    fl = 0;
    assert_int_equal(iem_alu_aam(0x00ff, 16, &fl), 0x0f0f);

    fl = 0;
    assert_int_equal(iem_alu_aad(0x0603, 10, &fl), 0x003f);
    assert_int_equal(fl & (SF | ZF | PF), PF);

    fl = 0;
    assert_int_equal(iem_alu_aad(0x0905, 16, &fl), 0x0095);
    assert_int_equal(fl & (SF | ZF), SF);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_sub_flags),
        cmocka_unit_test(test_adc_sbb_carry_in),
        cmocka_unit_test(test_logic_clears_cf_of),
        cmocka_unit_test(test_inc_dec_keep_cf),
        cmocka_unit_test(test_neg_not),
        cmocka_unit_test(test_shift_count_zero_keeps_flags),
        cmocka_unit_test(test_shift_one_and_large),
        cmocka_unit_test(test_rcl_rcr_count_rules),
        cmocka_unit_test(test_rol_ror_flags),
        cmocka_unit_test(test_shld_shrd),
        cmocka_unit_test(test_mul_imul_flags),
        cmocka_unit_test(test_div_de_cases),
        cmocka_unit_test(test_div_results),
        cmocka_unit_test(test_bt_family),
        cmocka_unit_test(test_bsf_bsr_zero_source),
        cmocka_unit_test(test_popcnt_lzcnt_tzcnt),
        cmocka_unit_test(test_bswap),
        cmocka_unit_test(test_cmpxchg_compare),
        cmocka_unit_test(test_daa_das),
        cmocka_unit_test(test_aaa_aas_aam_aad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
