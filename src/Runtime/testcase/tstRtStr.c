/* tstRtStr.c - unit tests for the string helpers and the strict number and size parsers. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "vireo/rt.h"

static void test_strlcpy(void **state)
{
    char buf[8];
    memset(buf, 'x', sizeof(buf));
    assert_int_equal(rt_strlcpy(buf, "hello", sizeof(buf)), 5);
    assert_string_equal(buf, "hello");
    assert_int_equal(rt_strlcpy(buf, "truncate me", sizeof(buf)), 11);
    assert_string_equal(buf, "truncat");
    assert_int_equal(rt_strlcpy(buf, "abc", 1), 3);
    assert_string_equal(buf, "");
    buf[0] = 'q';
    assert_int_equal(rt_strlcpy(buf, "abc", 0), 3);
    assert_int_equal(buf[0], 'q');
}

static void test_strdup_printf_and_prefix(void **state)
{
    char *s = rt_strdup_printf("%s-%d-%04x", "vm", 42, 0xbeef);
    assert_non_null(s);
    assert_string_equal(s, "vm-42-beef");
    free(s);
    /* Longer than any small fixed buffer. */
    s = rt_strdup_printf("%0500d", 7);
    assert_non_null(s);
    assert_int_equal(strlen(s), 500);
    assert_int_equal(s[499], '7');
    free(s);

    assert_true(rt_str_starts_with("--memory", "--"));
    assert_true(rt_str_starts_with("abc", ""));
    assert_true(rt_str_starts_with("abc", "abc"));
    assert_false(rt_str_starts_with("ab", "abc"));
    assert_false(rt_str_starts_with("xabc", "abc"));
}

static void test_str_to_u64_valid(void **state)
{
    uint64_t v = 1;
    assert_int_equal(rt_str_to_u64("0", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(rt_str_to_u64("12345", &v), 0);
    assert_int_equal(v, 12345);
    assert_int_equal(rt_str_to_u64("010", &v), 0);
    assert_int_equal(v, 10); /* never octal */
    assert_int_equal(rt_str_to_u64("0x3f8", &v), 0);
    assert_int_equal(v, 0x3f8);
    assert_int_equal(rt_str_to_u64("0XFFFFFFFFFFFFFFFF", &v), 0);
    assert_true(v == UINT64_MAX);
    assert_int_equal(rt_str_to_u64("18446744073709551615", &v), 0);
    assert_true(v == UINT64_MAX);
}

static void test_str_to_u64_invalid(void **state)
{
    uint64_t v = 77;
    assert_int_equal(rt_str_to_u64("", &v), VERR_INVALID_PARAMETER);
    assert_int_equal(rt_str_to_u64("-1", &v), VERR_INVALID_PARAMETER);
    assert_int_equal(rt_str_to_u64("+1", &v), VERR_INVALID_PARAMETER);
    assert_int_equal(rt_str_to_u64(" 1", &v), VERR_INVALID_PARAMETER);
    assert_int_equal(rt_str_to_u64("1 ", &v), VERR_INVALID_PARAMETER);
    assert_int_equal(rt_str_to_u64("12a", &v), VERR_INVALID_PARAMETER);
    assert_int_equal(rt_str_to_u64("0x", &v), VERR_INVALID_PARAMETER);
    assert_int_equal(rt_str_to_u64("0xg", &v), VERR_INVALID_PARAMETER);
    assert_int_equal(rt_str_to_u64(NULL, &v), VERR_INVALID_PARAMETER);
    assert_int_equal(rt_str_to_u64("18446744073709551616", &v), VERR_OUT_OF_RANGE);
    assert_int_equal(rt_str_to_u64("0x10000000000000000", &v), VERR_OUT_OF_RANGE);
    assert_int_equal(rt_str_to_u64("99999999999999999999999x", &v), VERR_INVALID_PARAMETER);
    /* A failed parse leaves the output alone. */
    assert_int_equal(v, 77);
}

static void test_str_to_size_valid(void **state)
{
    static const struct {
        const char *text;
        uint64_t bytes;
    } cases[] = {
        {"0", 0},
        {"512", 512},
        {"512B", 512},
        {"64K", 64ULL << 10},
        {"64k", 64ULL << 10},
        {"64KB", 64ULL << 10},
        {"64KiB", 64ULL << 10},
        {"64kib", 64ULL << 10},
        {"128M", 128ULL << 20},
        {"128MB", 128ULL << 20},
        {"128mib", 128ULL << 20},
        {"2G", 2ULL << 30},
        {"2gb", 2ULL << 30},
        {"2GiB", 2ULL << 30},
        {"1T", 1ULL << 40},
        {"1TB", 1ULL << 40},
        {"1TiB", 1ULL << 40},
        {"16777215T", 16777215ULL << 40},
        {"0x1000", 0x1000},
    };
    for (size_t i = 0; i < RT_ARRAY_SIZE(cases); i++) {
        uint64_t v = 0xdead;
        int rc = rt_str_to_size(cases[i].text, &v);
        if (rc != 0 || v != cases[i].bytes)
            fail_msg("\"%s\": rc %d value %llu, expected %llu", cases[i].text, rc, (unsigned long long)v,
                     (unsigned long long)cases[i].bytes);
    }
}

static void test_str_to_size_invalid(void **state)
{
    static const struct {
        const char *text;
        int rc;
    } cases[] = {
        {"", VERR_INVALID_PARAMETER},
        {"-1", VERR_INVALID_PARAMETER},
        {"-1G", VERR_INVALID_PARAMETER},
        {"10Q", VERR_INVALID_PARAMETER},
        {"1.5G", VERR_INVALID_PARAMETER},
        {"G", VERR_INVALID_PARAMETER},
        {"K1", VERR_INVALID_PARAMETER},
        {"1 G", VERR_INVALID_PARAMETER},
        {" 1G", VERR_INVALID_PARAMETER},
        {"1GG", VERR_INVALID_PARAMETER},
        {"1Gi", VERR_INVALID_PARAMETER},
        {"1iB", VERR_INVALID_PARAMETER},
        {"1P", VERR_INVALID_PARAMETER},
        {"0x", VERR_INVALID_PARAMETER},
        {"99999999999T", VERR_OUT_OF_RANGE},
        {"16777216T", VERR_OUT_OF_RANGE},
        {"17179869184G", VERR_OUT_OF_RANGE},
        {"99999999999999999999", VERR_OUT_OF_RANGE},
        {"99999999999999999999Q", VERR_INVALID_PARAMETER},
    };
    for (size_t i = 0; i < RT_ARRAY_SIZE(cases); i++) {
        uint64_t v = 0xdead;
        int rc = rt_str_to_size(cases[i].text, &v);
        if (rc != cases[i].rc || v != 0xdead)
            fail_msg("\"%s\": rc %d value %llu, expected rc %d", cases[i].text, rc, (unsigned long long)v,
                     cases[i].rc);
    }
    uint64_t v;
    assert_int_equal(rt_str_to_size(NULL, &v), VERR_INVALID_PARAMETER);
    assert_int_equal(rt_str_to_size("1G", NULL), VERR_INVALID_PARAMETER);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strlcpy),
        cmocka_unit_test(test_strdup_printf_and_prefix),
        cmocka_unit_test(test_str_to_u64_valid),
        cmocka_unit_test(test_str_to_u64_invalid),
        cmocka_unit_test(test_str_to_size_valid),
        cmocka_unit_test(test_str_to_size_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
