/* tstRtUuid.c - unit tests for UUID generation, formatting and parsing. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ctype.h>
#include <string.h>

#include "vireo/rt.h"

static void test_generate_version_and_variant(void **state)
{
    struct rt_uuid a, b;
    assert_int_equal(rt_uuid_generate(&a), 0);
    assert_int_equal(rt_uuid_generate(&b), 0);
    /* RFC 4122 section 4.4: version 4, variant 10xx. */
    assert_int_equal(a.bytes[6] >> 4, 4);
    assert_int_equal(a.bytes[8] >> 6, 2);
    assert_int_equal(b.bytes[6] >> 4, 4);
    assert_int_equal(b.bytes[8] >> 6, 2);
    assert_false(rt_uuid_is_null(&a));
    /* 122 random bits: a collision here means the random source is broken. */
    assert_memory_not_equal(a.bytes, b.bytes, sizeof(a.bytes));
}

static void test_to_str_format(void **state)
{
    struct rt_uuid u;
    for (size_t i = 0; i < sizeof(u.bytes); i++)
        u.bytes[i] = (uint8_t)(0x10 * i + 0x0a + (i & 1));
    char s[RT_UUID_STR_LEN];
    memset(s, 'x', sizeof(s));
    rt_uuid_to_str(&u, s);
    assert_string_equal(s, "0a1b2a3b-4a5b-6a7b-8a9b-aabbcadbeafb");

    struct rt_uuid g;
    assert_int_equal(rt_uuid_generate(&g), 0);
    rt_uuid_to_str(&g, s);
    assert_int_equal(strlen(s), RT_UUID_STR_LEN - 1);
    for (size_t i = 0; i < RT_UUID_STR_LEN - 1; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            assert_int_equal(s[i], '-');
        else
            assert_true(isxdigit((unsigned char)s[i]) && !isupper((unsigned char)s[i]));
    }
    assert_int_equal(s[14], '4');
}

static void test_parse_round_trip(void **state)
{
    for (int i = 0; i < 32; i++) {
        struct rt_uuid u, back;
        char s[RT_UUID_STR_LEN];
        assert_int_equal(rt_uuid_generate(&u), 0);
        rt_uuid_to_str(&u, s);
        memset(&back, 0, sizeof(back));
        assert_int_equal(rt_uuid_parse(s, &back), 0);
        assert_memory_equal(u.bytes, back.bytes, sizeof(u.bytes));
    }
}

static void test_parse_forms(void **state)
{
    struct rt_uuid lower, upper, braced;
    assert_int_equal(rt_uuid_parse("6ba7b810-9dad-11d1-80b4-00c04fd430c8", &lower), 0);
    assert_int_equal(rt_uuid_parse("6BA7B810-9DAD-11D1-80B4-00C04FD430C8", &upper), 0);
    assert_int_equal(rt_uuid_parse("{6ba7b810-9Dad-11d1-80b4-00c04fd430c8}", &braced), 0);
    assert_memory_equal(lower.bytes, upper.bytes, 16);
    assert_memory_equal(lower.bytes, braced.bytes, 16);
    assert_int_equal(lower.bytes[0], 0x6b);
    assert_int_equal(lower.bytes[15], 0xc8);

    struct rt_uuid null_uuid;
    assert_int_equal(rt_uuid_parse("00000000-0000-0000-0000-000000000000", &null_uuid), 0);
    assert_true(rt_uuid_is_null(&null_uuid));
    assert_false(rt_uuid_is_null(&lower));
}

static void test_parse_rejects(void **state)
{
    static const char *const bad[] = {
        "",
        "6ba7b810-9dad-11d1-80b4-00c04fd430c",
        "6ba7b810-9dad-11d1-80b4-00c04fd430c88",
        "6ba7b8109dad11d180b400c04fd430c8",
        "6ba7b810-9dad-11d1-80b4_00c04fd430c8",
        "6ba7b810-9dad-11d1-80b4-00c04fd430cg",
        "{6ba7b810-9dad-11d1-80b4-00c04fd430c8",
        "6ba7b810-9dad-11d1-80b4-00c04fd430c8}",
        "(6ba7b810-9dad-11d1-80b4-00c04fd430c8)",
        " 6ba7b810-9dad-11d1-80b4-00c04fd430c8",
        "6ba7b8100-dad-11d1-80b4-00c04fd430c8",
    };
    for (size_t i = 0; i < RT_ARRAY_SIZE(bad); i++) {
        struct rt_uuid u;
        memset(&u, 0x5a, sizeof(u));
        if (rt_uuid_parse(bad[i], &u) != VERR_INVALID_PARAMETER)
            fail_msg("accepted \"%s\"", bad[i]);
        assert_int_equal(u.bytes[0], 0x5a);
    }
    struct rt_uuid u;
    assert_int_equal(rt_uuid_parse(NULL, &u), VERR_INVALID_PARAMETER);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generate_version_and_variant),
        cmocka_unit_test(test_to_str_format),
        cmocka_unit_test(test_parse_round_trip),
        cmocka_unit_test(test_parse_forms),
        cmocka_unit_test(test_parse_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
