/* tstRtLog.c - unit tests for log levels, the log file and stderr output. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vireo/rt.h"

#define LOG_COMPONENT "tstlog"

#define TST_LOG_THREADS 4
#define TST_LOG_LINES_PER_THREAD 500
/* Below RT_LOG_ERROR: nothing goes to stderr. */
#define TST_STDERR_QUIET ((enum rt_log_level)-1)

struct tst_log_ctx {
    char dir[64];
    char *path;
};

static int tst_setup(void **state)
{
    struct tst_log_ctx *ctx = calloc(1, sizeof(*ctx));
    if (!ctx)
        return -1;
    strcpy(ctx->dir, "/tmp/tstRtLog.XXXXXX");
    if (!mkdtemp(ctx->dir))
        return -1;
    ctx->path = rt_path_join(ctx->dir, "VM.log");
    rt_log_set_level(RT_LOG_INFO);
    rt_log_set_stderr_level(TST_STDERR_QUIET);
    *state = ctx;
    return 0;
}

static int tst_teardown(void **state)
{
    struct tst_log_ctx *ctx = *state;
    rt_log_close_file();
    rt_log_set_level(RT_LOG_INFO);
    rt_log_set_stderr_level(RT_LOG_WARN);
    unlink(ctx->path);
    rmdir(ctx->dir);
    free(ctx->path);
    free(ctx);
    return 0;
}

static char *tst_read(const char *path)
{
    void *data = NULL;
    size_t len;
    assert_int_equal(rt_file_read_all(path, 1 << 22, &data, &len), 0);
    return data;
}

static int tst_count_lines(const char *text)
{
    int n = 0;
    for (const char *p = text; *p; p++)
        n += *p == '\n';
    return n;
}

/* Every line is "<seconds>.<6 digits> <component>: <message>". */
static void tst_check_format(const char *text)
{
    regex_t re;
    assert_int_equal(regcomp(&re, "^[0-9]+\\.[0-9]{6} [a-z0-9]+: [^\n]*$", REG_EXTENDED | REG_NOSUB), 0);
    char *copy = strdup(text);
    char *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (regexec(&re, line, 0, NULL, 0) != 0)
            fail_msg("bad log line: \"%s\"", line);
    }
    free(copy);
    regfree(&re);
}

static void test_level_parse(void **state)
{
    enum rt_log_level level = RT_LOG_INFO;
    assert_int_equal(rt_log_level_parse("error", &level), 0);
    assert_int_equal(level, RT_LOG_ERROR);
    assert_int_equal(rt_log_level_parse("WARN", &level), 0);
    assert_int_equal(level, RT_LOG_WARN);
    assert_int_equal(rt_log_level_parse("info", &level), 0);
    assert_int_equal(level, RT_LOG_INFO);
    assert_int_equal(rt_log_level_parse("Debug", &level), 0);
    assert_int_equal(level, RT_LOG_DEBUG);
    assert_int_equal(rt_log_level_parse("verbose", &level), VERR_INVALID_PARAMETER);
    assert_int_equal(rt_log_level_parse("", &level), VERR_INVALID_PARAMETER);
    assert_int_equal(rt_log_level_parse(NULL, &level), VERR_INVALID_PARAMETER);
    assert_int_equal(level, RT_LOG_DEBUG);

    rt_log_set_level(RT_LOG_WARN);
    assert_int_equal(rt_log_get_level(), RT_LOG_WARN);
    rt_log_set_level(RT_LOG_DEBUG);
    assert_int_equal(rt_log_get_level(), RT_LOG_DEBUG);
}

static void test_file_contents_and_levels(void **state)
{
    struct tst_log_ctx *ctx = *state;
    assert_int_equal(rt_log_open_file(ctx->path), 0);
    struct stat st;
    assert_int_equal(stat(ctx->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    LOG_INFO("hello %d", 42);
    LOG_DEBUG("hidden at info level");
    LOG_ERR("bad thing: %s", "disk");
    LOG_WARN("ends with newline\n");
    rt_log(RT_LOG_INFO, "pit", "counter %u", 3u);
    rt_log_set_level(RT_LOG_DEBUG);
    LOG_DEBUG("debug now visible");
    rt_log_set_level(RT_LOG_ERROR);
    LOG_WARN("filtered warning");
    LOG_ERR("still an error");
    rt_log_close_file();
    LOG_ERR("after close");

    char *text = tst_read(ctx->path);
    tst_check_format(text);
    assert_int_equal(tst_count_lines(text), 6);
    assert_non_null(strstr(text, " tstlog: hello 42\n"));
    assert_non_null(strstr(text, " tstlog: bad thing: disk\n"));
    assert_non_null(strstr(text, " tstlog: ends with newline\n"));
    assert_non_null(strstr(text, " pit: counter 3\n"));
    assert_non_null(strstr(text, " tstlog: debug now visible\n"));
    assert_non_null(strstr(text, " tstlog: still an error\n"));
    assert_null(strstr(text, "hidden"));
    assert_null(strstr(text, "filtered"));
    assert_null(strstr(text, "after close"));
    assert_null(strstr(text, "\n\n"));
    /* Lines come in order. */
    assert_true(strstr(text, "hello 42") < strstr(text, "bad thing"));
    free(text);
}

static void test_file_appends(void **state)
{
    struct tst_log_ctx *ctx = *state;
    assert_int_equal(rt_log_open_file(ctx->path), 0);
    LOG_INFO("first run");
    rt_log_close_file();
    assert_int_equal(rt_log_open_file(ctx->path), 0);
    LOG_INFO("second run");
    /* Opening a new file replaces the old one. */
    assert_int_equal(rt_log_open_file(ctx->path), 0);
    LOG_INFO("third run");
    rt_log_close_file();

    char *text = tst_read(ctx->path);
    assert_int_equal(tst_count_lines(text), 3);
    assert_true(strstr(text, "first run") < strstr(text, "second run"));
    assert_true(strstr(text, "second run") < strstr(text, "third run"));
    free(text);

    char *bad = rt_path_join(ctx->dir, "no/such/dir.log");
    assert_int_equal(rt_log_open_file(bad), VERR_FILE_NOT_FOUND);
    assert_int_equal(rt_log_open_file(""), VERR_INVALID_PARAMETER);
    free(bad);
}

static void test_long_line_and_errno(void **state)
{
    struct tst_log_ctx *ctx = *state;
    assert_int_equal(rt_log_open_file(ctx->path), 0);
    char big[5000];
    memset(big, 'x', sizeof(big) - 2);
    big[sizeof(big) - 2] = 'Z';
    big[sizeof(big) - 1] = '\0';
    LOG_INFO("big %s end", big);
    errno = EPIPE;
    LOG_INFO("errno survives");
    assert_int_equal(errno, EPIPE);
    rt_log_close_file();

    char *text = tst_read(ctx->path);
    tst_check_format(text);
    assert_int_equal(tst_count_lines(text), 2);
    assert_non_null(strstr(text, "xxZ end\n"));
    free(text);
}

/* Runs fn with stderr sent to a file and returns what was written there. */
static char *tst_capture_stderr(struct tst_log_ctx *ctx, void (*fn)(void))
{
    char *path = rt_path_join(ctx->dir, "stderr.txt");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
    close(fd);
    fn();
    assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
    close(saved);
    char *text = tst_read(path);
    unlink(path);
    free(path);
    return text;
}

static void tst_log_three(void)
{
    LOG_ERR("an error");
    LOG_WARN("a warning");
    LOG_INFO("some info");
}

static void test_stderr_levels(void **state)
{
    struct tst_log_ctx *ctx = *state;
    assert_int_equal(rt_log_open_file(ctx->path), 0);

    rt_log_set_stderr_level(RT_LOG_WARN);
    unsigned errors = rt_log_error_count();
    char *text = tst_capture_stderr(ctx, tst_log_three);
    /* stderr lines name the program instead of a timestamp. */
    assert_string_equal(text, "tstRtLog: tstlog: an error\ntstRtLog: tstlog: a warning\n");
    assert_int_equal(rt_log_error_count(), errors + 1);
    free(text);

    rt_log_set_stderr_level(RT_LOG_ERROR);
    text = tst_capture_stderr(ctx, tst_log_three);
    assert_non_null(strstr(text, "an error"));
    assert_null(strstr(text, "a warning"));
    free(text);

    rt_log_set_stderr_level(TST_STDERR_QUIET);
    text = tst_capture_stderr(ctx, tst_log_three);
    assert_string_equal(text, "");
    free(text);

    /* The file got everything at info level regardless of stderr. */
    rt_log_close_file();
    text = tst_read(ctx->path);
    assert_int_equal(tst_count_lines(text), 9);
    free(text);
}

static void *tst_log_thread_fn(void *arg)
{
    intptr_t id = (intptr_t)arg;
    for (int i = 0; i < TST_LOG_LINES_PER_THREAD; i++)
        rt_log(RT_LOG_INFO, "thr", "thread %d line %d padding-padding-padding-padding", (int)id, i);
    return NULL;
}

static void test_threads_do_not_interleave(void **state)
{
    struct tst_log_ctx *ctx = *state;
    assert_int_equal(rt_log_open_file(ctx->path), 0);
    struct rt_thread *threads[TST_LOG_THREADS];
    for (intptr_t i = 0; i < TST_LOG_THREADS; i++)
        assert_int_equal(rt_thread_create(&threads[i], "logger", tst_log_thread_fn, (void *)i), 0);
    for (int i = 0; i < TST_LOG_THREADS; i++)
        assert_int_equal(rt_thread_join(threads[i], NULL), 0);
    rt_log_close_file();

    char *text = tst_read(ctx->path);
    assert_int_equal(tst_count_lines(text), TST_LOG_THREADS * TST_LOG_LINES_PER_THREAD);
    tst_check_format(text);
    assert_non_null(strstr(text, " thr: thread 3 line 499 padding-padding-padding-padding\n"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_level_parse, tst_setup, tst_teardown),
        cmocka_unit_test_setup_teardown(test_file_contents_and_levels, tst_setup, tst_teardown),
        cmocka_unit_test_setup_teardown(test_file_appends, tst_setup, tst_teardown),
        cmocka_unit_test_setup_teardown(test_long_line_and_errno, tst_setup, tst_teardown),
        cmocka_unit_test_setup_teardown(test_stderr_levels, tst_setup, tst_teardown),
        cmocka_unit_test_setup_teardown(test_threads_do_not_interleave, tst_setup, tst_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
