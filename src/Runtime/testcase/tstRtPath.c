/* tstRtPath.c - unit tests for path strings, folder creation, whole-file reads and atomic writes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vireo/rt.h"

static int tst_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int tst_setup(void **state)
{
    char tmpl[] = "/tmp/tstRtPath.XXXXXX";
    char *dir = mkdtemp(tmpl);
    if (!dir)
        return -1;
    *state = strdup(dir);
    return *state ? 0 : -1;
}

static int tst_teardown(void **state)
{
    nftw(*state, tst_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(*state);
    return 0;
}

static void tst_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* Number of entries in dir other than "." and "..", to notice leftover temp files. */
static int tst_count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            n++;
    }
    closedir(d);
    return n;
}

static void tst_check_join(const char *a, const char *b, const char *expected)
{
    char *s = rt_path_join(a, b);
    assert_non_null(s);
    assert_string_equal(s, expected);
    free(s);
}

static void tst_check_dirname(const char *path, const char *expected)
{
    char *s = rt_path_dirname(path);
    assert_non_null(s);
    assert_string_equal(s, expected);
    free(s);
}

static void test_join(void **state)
{
    tst_check_join("a", "b", "a/b");
    tst_check_join("a/", "b", "a/b");
    tst_check_join("a", "/b", "a/b");
    tst_check_join("a//", "//b", "a/b");
    tst_check_join("/", "b", "/b");
    tst_check_join("/", "/b", "/b");
    tst_check_join("", "b", "b");
    tst_check_join("a", "", "a");
    tst_check_join("/home/u/VMs", "deb/deb.xml", "/home/u/VMs/deb/deb.xml");
}

static void test_basename_dirname(void **state)
{
    assert_string_equal(rt_path_basename("a/b"), "b");
    assert_string_equal(rt_path_basename("b"), "b");
    assert_string_equal(rt_path_basename("/x/y.iso"), "y.iso");
    assert_string_equal(rt_path_basename("a/b/"), "");

    tst_check_dirname("a/b", "a");
    tst_check_dirname("a/b/c", "a/b");
    tst_check_dirname("b", ".");
    tst_check_dirname("", ".");
    tst_check_dirname("/b", "/");
    tst_check_dirname("/", "/");
    tst_check_dirname("//a", "/");
    tst_check_dirname("a/b/", "a");
    tst_check_dirname("/a//b", "/a");
}

static void test_dir_create_all(void **state)
{
    const char *root = *state;
    char *deep = rt_strdup_printf("%s/x/y//z/", root);
    assert_non_null(deep);
    assert_int_equal(rt_dir_create_all(deep, 0750), 0);
    assert_true(rt_path_exists(deep));
    struct stat st;
    assert_int_equal(stat(deep, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    /* Creating what exists is fine. */
    assert_int_equal(rt_dir_create_all(deep, 0750), 0);

    char *file = rt_strdup_printf("%s/x/file", root);
    tst_write_file(file, "data");
    assert_int_equal(rt_dir_create_all(file, 0750), VERR_ALREADY_EXISTS);
    char *below_file = rt_strdup_printf("%s/x/file/sub", root);
    assert_true(rt_dir_create_all(below_file, 0750) < 0);
    assert_false(rt_path_exists(below_file));
    assert_int_equal(rt_dir_create_all("", 0750), VERR_INVALID_PARAMETER);
    assert_false(rt_path_exists("/nonexistent-vireo-path/at/all"));
    free(below_file);
    free(file);
    free(deep);
}

static void test_read_all(void **state)
{
    const char *root = *state;
    char *path = rt_path_join(root, "cfg.xml");
    tst_write_file(path, "<vm name=\"x\"/>");

    void *data = NULL;
    size_t len = 0;
    assert_int_equal(rt_file_read_all(path, 1024, &data, &len), 0);
    assert_int_equal(len, 14);
    assert_memory_equal(data, "<vm name=\"x\"/>", 15); /* NUL-terminated */
    free(data);

    data = NULL;
    assert_int_equal(rt_file_read_all(path, 14, &data, NULL), 0);
    free(data);

    data = (void *)0x1;
    assert_int_equal(rt_file_read_all(path, 13, &data, &len), VERR_TOO_LARGE);
    assert_ptr_equal(data, (void *)0x1);

    char *missing = rt_path_join(root, "missing");
    assert_int_equal(rt_file_read_all(missing, 1024, &data, &len), VERR_FILE_NOT_FOUND);
    assert_int_equal(rt_file_read_all(root, 1024, &data, &len), VERR_IS_A_DIRECTORY);

    char *empty = rt_path_join(root, "empty");
    tst_write_file(empty, "");
    assert_int_equal(rt_file_read_all(empty, 0, &data, &len), 0);
    assert_int_equal(len, 0);
    assert_int_equal(((char *)data)[0], '\0');
    free(data);

    /* /proc files report size 0: the read goes by what arrives. */
    assert_int_equal(rt_file_read_all("/proc/self/status", 1 << 20, &data, &len), 0);
    assert_true(len > 0);
    assert_non_null(strstr(data, "Name:"));
    free(data);
    assert_int_equal(rt_file_read_all("/proc/self/status", 16, &data, &len), VERR_TOO_LARGE);

    free(empty);
    free(missing);
    free(path);
}

static void test_write_atomic(void **state)
{
    const char *root = *state;
    char *path = rt_path_join(root, "machine.xml");
    assert_int_equal(rt_file_write_atomic(path, "first", 5, 0640), 0);
    void *data;
    size_t len;
    assert_int_equal(rt_file_read_all(path, 100, &data, &len), 0);
    assert_int_equal(len, 5);
    assert_memory_equal(data, "first", 5);
    free(data);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0640);

    /* Replacing keeps nothing but the new contents and leaves no temp file. */
    assert_int_equal(rt_file_write_atomic(path, "second version", 14, 0600), 0);
    assert_int_equal(rt_file_read_all(path, 100, &data, &len), 0);
    assert_int_equal(len, 14);
    assert_memory_equal(data, "second version", 14);
    free(data);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(tst_count_entries(root), 1);

    assert_int_equal(rt_file_write_atomic(path, NULL, 0, 0600), 0);
    assert_int_equal(rt_file_read_all(path, 100, &data, &len), 0);
    assert_int_equal(len, 0);
    free(data);

    char *missing_dir = rt_strdup_printf("%s/nodir/file", root);
    assert_int_equal(rt_file_write_atomic(missing_dir, "x", 1, 0600), VERR_FILE_NOT_FOUND);
    assert_int_equal(rt_file_write_atomic("", "x", 1, 0600), VERR_INVALID_PARAMETER);
    free(missing_dir);
    free(path);
}

static void test_write_atomic_failure_keeps_old(void **state)
{
    const char *root = *state;
    /* A folder in the target's place makes the final rename fail after the temp file is written. */
    char *target = rt_path_join(root, "target");
    assert_int_equal(mkdir(target, 0700), 0);
    char *inside = rt_path_join(target, "keep");
    tst_write_file(inside, "old");

    assert_true(rt_file_write_atomic(target, "new data", 8, 0600) < 0);
    struct stat st;
    assert_int_equal(stat(target, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    void *data;
    size_t len;
    assert_int_equal(rt_file_read_all(inside, 100, &data, &len), 0);
    assert_string_equal(data, "old");
    free(data);
    /* Only the folder itself: the temp file was removed. */
    assert_int_equal(tst_count_entries(root), 1);
    free(inside);
    free(target);
}

/* The folder of this test binary: where it lives, absolute, holding the binary itself. */
static void test_program_dir(void **state)
{
    (void)state;
    char *dir = rt_program_dir();
    assert_non_null(dir);
    assert_true(dir[0] == '/');
    char *self = rt_path_join(dir, "tstRtPath");
    assert_true(rt_path_exists(self));
    free(self);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_join),
        cmocka_unit_test(test_basename_dirname),
        cmocka_unit_test(test_program_dir),
        cmocka_unit_test_setup_teardown(test_dir_create_all, tst_setup, tst_teardown),
        cmocka_unit_test_setup_teardown(test_read_all, tst_setup, tst_teardown),
        cmocka_unit_test_setup_teardown(test_write_atomic, tst_setup, tst_teardown),
        cmocka_unit_test_setup_teardown(test_write_atomic_failure_keeps_old, tst_setup, tst_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
