/* tstRtErr.c - unit tests for the status code messages and the errno mapping. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "vireo/rt.h"

static const int g_all_codes[] = {
#define TST_CODE(name, value, msg) name,
    VERR_TABLE(TST_CODE)
#undef TST_CODE
};

static void test_codes_negative_and_unique(void **state)
{
    for (size_t i = 0; i < RT_ARRAY_SIZE(g_all_codes); i++) {
        assert_true(g_all_codes[i] < 0);
        for (size_t j = i + 1; j < RT_ARRAY_SIZE(g_all_codes); j++)
            assert_int_not_equal(g_all_codes[i], g_all_codes[j]);
    }
}

static void test_every_code_has_its_message(void **state)
{
#define TST_CHECK_MSG(name, value, msg) assert_string_equal(rt_err_str(name), msg);
    VERR_TABLE(TST_CHECK_MSG)
#undef TST_CHECK_MSG
    assert_string_equal(rt_err_str(VERR_TIMEOUT), "timed out");
}

static void test_success_unknown_and_errno(void **state)
{
    assert_string_equal(rt_err_str(0), "success");
    const char *unknown = rt_err_str(-100000);
    assert_non_null(unknown);
    assert_string_equal(unknown, "unknown status code");
    /* Positive values are errno numbers. */
    assert_string_equal(rt_err_str(ENOENT), "No such file or directory");
    assert_non_null(rt_err_str(1000000));
    assert_non_null(rt_err_str(INT32_MIN));
}

static void test_from_errno(void **state)
{
    assert_int_equal(rt_err_from_errno(ENOENT), VERR_FILE_NOT_FOUND);
    assert_int_equal(rt_err_from_errno(-ENOENT), VERR_FILE_NOT_FOUND);
    assert_int_equal(rt_err_from_errno(EACCES), VERR_ACCESS_DENIED);
    assert_int_equal(rt_err_from_errno(EPERM), VERR_ACCESS_DENIED);
    assert_int_equal(rt_err_from_errno(ENOMEM), VERR_NO_MEMORY);
    assert_int_equal(rt_err_from_errno(EEXIST), VERR_ALREADY_EXISTS);
    assert_int_equal(rt_err_from_errno(EINVAL), VERR_INVALID_PARAMETER);
    assert_int_equal(rt_err_from_errno(EIO), VERR_IO);
    assert_int_equal(rt_err_from_errno(EBUSY), VERR_BUSY);
    assert_int_equal(rt_err_from_errno(ETIMEDOUT), VERR_TIMEOUT);
    assert_int_equal(rt_err_from_errno(EINTR), VERR_INTERRUPTED);
    assert_int_equal(rt_err_from_errno(ENOSYS), VERR_NOT_SUPPORTED);
    assert_int_equal(rt_err_from_errno(EFBIG), VERR_TOO_LARGE);
    assert_int_equal(rt_err_from_errno(ERANGE), VERR_OUT_OF_RANGE);
    /* A failure path must never turn into success, even with errno unset. */
    assert_int_equal(rt_err_from_errno(0), VERR_GENERAL);
    assert_int_equal(rt_err_from_errno(EHOSTDOWN), VERR_GENERAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codes_negative_and_unique),
        cmocka_unit_test(test_every_code_has_its_message),
        cmocka_unit_test(test_success_unknown_and_errno),
        cmocka_unit_test(test_from_errno),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
