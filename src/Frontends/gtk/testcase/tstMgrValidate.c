/* tstMgrValidate.c - unit tests for the manager's input checks (mgr-validate.c): names new and renamed, folders, ISO images, memory, CPUs, disk sizes, ports and size formatting, good and bad values, in a private VIREO_USER_HOME. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../mgr.h"
#include "vireo/rt.h"

struct fx {
    char dir[64];
    char vms[128];
};

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    /* Tests may leave a folder without write permission behind: give it back so it can be emptied. */
    chmod(path, 0700);
    return remove(path);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "%s/tstMgrValidate.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(f->dir))
        return -1;
    /* The registry the name checks read is this test's own. */
    setenv("VIREO_USER_HOME", f->dir, 1);
    snprintf(f->vms, sizeof(f->vms), "%s/vms", f->dir);
    mkdir(f->vms, 0700);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    if (len)
        assert_int_equal(fwrite(data, 1, len, fp), len);
    fclose(fp);
}

/* The sentence names the problem (case-insensitive substring). */
static void assert_why(const char *why, const char *words)
{
    if (!strcasestr(why, words))
        fail_msg("expected '%s' in '%s'", words, why);
}

/* ---- Names ------------------------------------------------------------------------------------------------------ */

static void test_new_name(void **state)
{
    struct fx *f = *state;
    char why[MGR_WHY_MAX];
    assert_true(mgr_check_new_name("Debian 12", f->vms, why));
    assert_string_equal(why, "");
    assert_true(mgr_check_new_name("Ünïcode name", NULL, why));

    assert_false(mgr_check_new_name("", f->vms, why));
    assert_why(why, "needs a name");
    assert_false(mgr_check_new_name(NULL, f->vms, why));
    assert_false(mgr_check_new_name("a/b", f->vms, why));
    assert_why(why, "'/'");
    assert_false(mgr_check_new_name(" lead", f->vms, why));
    assert_why(why, "blank");
    assert_false(mgr_check_new_name("trail ", f->vms, why));
    assert_why(why, "blank");
    assert_false(mgr_check_new_name("tab\there", f->vms, why));
    assert_why(why, "control characters");
    assert_false(mgr_check_new_name("..", f->vms, why));
    assert_false(mgr_check_new_name("\xff\xfe", f->vms, why));
    char longname[260];
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_false(mgr_check_new_name(longname, f->vms, why));
    assert_why(why, "too long");
    longname[200] = '\0';
    assert_true(mgr_check_new_name(longname, f->vms, why));

    /* A registered machine's name, and a folder that exists already. */
    struct cfg_error err = {{0}};
    char *path = NULL;
    struct rt_uuid uuid;
    assert_int_equal(mach_create("Taken", NULL, f->vms, true, &path, &uuid, &err), 0);
    free(path);
    assert_false(mgr_check_new_name("Taken", "/nonexistent", why));
    assert_why(why, "exists already");
    char dir[256];
    snprintf(dir, sizeof(dir), "%s/Leftover", f->vms);
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_false(mgr_check_new_name("Leftover", f->vms, why));
    assert_why(why, "folder");
    assert_true(mgr_check_new_name("Leftover", NULL, why));
    assert_true(mgr_check_new_name("taken", f->vms, why)); /* names are case-sensitive, as file names are */
}

static void test_rename(void **state)
{
    struct fx *f = *state;
    char why[MGR_WHY_MAX];
    struct cfg_error err = {{0}};
    char *path = NULL;
    struct rt_uuid a, b;
    assert_int_equal(mach_create("Alpha", NULL, f->vms, true, &path, &a, &err), 0);
    free(path);
    assert_int_equal(mach_create("Beta", NULL, f->vms, true, &path, &b, &err), 0);
    free(path);
    assert_true(mgr_check_rename("Alpha", &a, why)); /* its own name */
    assert_true(mgr_check_rename("Gamma", &a, why));
    assert_false(mgr_check_rename("Beta", &a, why));
    assert_why(why, "Another machine");
    assert_false(mgr_check_rename("", &a, why));
    assert_false(mgr_check_rename("x/y", &a, why));
}

/* ---- Folders ---------------------------------------------------------------------------------------------------- */

static void test_folder(void **state)
{
    struct fx *f = *state;
    char why[MGR_WHY_MAX], p[256];
    assert_true(mgr_check_folder(f->vms, why));
    assert_string_equal(why, "");
    /* Missing folders below a writable one are created with the machine. */
    snprintf(p, sizeof(p), "%s/new/deeper/still", f->vms);
    assert_true(mgr_check_folder(p, why));

    assert_false(mgr_check_folder("", why));
    assert_why(why, "choose a folder");
    assert_false(mgr_check_folder(NULL, why));
    assert_false(mgr_check_folder("relative/vms", why));
    assert_why(why, "absolute");

    /* A file where the folder should be, and a path through a file. */
    snprintf(p, sizeof(p), "%s/plain", f->dir);
    write_file(p, "x", 1);
    assert_false(mgr_check_folder(p, why));
    assert_why(why, "not a folder");
    snprintf(p, sizeof(p), "%s/plain/sub", f->dir);
    assert_false(mgr_check_folder(p, why));
    assert_why(why, "cannot be reached");

    /* No write permission: root ignores modes, so only a normal user can see it here (the GUI test uses a
     * read-only mount). */
    if (geteuid() != 0) {
        snprintf(p, sizeof(p), "%s/locked", f->dir);
        assert_int_equal(mkdir(p, 0500), 0);
        assert_false(mgr_check_folder(p, why));
        assert_why(why, "no write permission");
        snprintf(p, sizeof(p), "%s/locked/below", f->dir);
        assert_false(mgr_check_folder(p, why));
        assert_why(why, "cannot create folders");
    }
}

/* ---- ISO images ------------------------------------------------------------------------------------------------- */

static void test_iso(void **state)
{
    struct fx *f = *state;
    char why[MGR_WHY_MAX], p[256];
    assert_true(mgr_check_iso("", why)); /* no installation medium */
    assert_true(mgr_check_iso(NULL, why));

    snprintf(p, sizeof(p), "%s/missing.iso", f->dir);
    assert_false(mgr_check_iso(p, why));
    assert_why(why, "No such file");
    assert_false(mgr_check_iso(f->vms, why));
    assert_why(why, "is not a file");

    /* Empty, too small for the volume descriptor, and garbage of a CD's size. */
    snprintf(p, sizeof(p), "%s/empty.iso", f->dir);
    write_file(p, NULL, 0);
    assert_false(mgr_check_iso(p, why));
    assert_why(why, "too small");
    size_t len = 64 * 1024;
    unsigned char *buf = calloc(1, len);
    assert_non_null(buf);
    snprintf(p, sizeof(p), "%s/short.iso", f->dir);
    write_file(p, buf, 32 * 1024 + 3);
    assert_false(mgr_check_iso(p, why));
    assert_why(why, "too small");
    for (size_t i = 0; i < len; i++)
        buf[i] = (unsigned char)(i * 131 + 7);
    snprintf(p, sizeof(p), "%s/garbage.iso", f->dir);
    write_file(p, buf, len);
    assert_false(mgr_check_iso(p, why));
    assert_why(why, "not a CD/DVD image");

    /* "CD001" at 32 KiB but not a primary descriptor (type 2, supplementary): still refused. */
    memset(buf, 0, len);
    memcpy(buf + 32 * 1024,
           "\x02"
           "CD001",
           6);
    snprintf(p, sizeof(p), "%s/svd.iso", f->dir);
    write_file(p, buf, len);
    assert_false(mgr_check_iso(p, why));

    /* A crafted minimal image: the primary volume descriptor's type and identifier are what counts. */
    buf[32 * 1024] = 1;
    snprintf(p, sizeof(p), "%s/good.iso", f->dir);
    write_file(p, buf, len);
    assert_true(mgr_check_iso(p, why));
    assert_string_equal(why, "");
    /* Exactly the descriptor's first bytes present. */
    snprintf(p, sizeof(p), "%s/tight.iso", f->dir);
    write_file(p, buf, 32 * 1024 + 6);
    assert_true(mgr_check_iso(p, why));

    if (geteuid() != 0) {
        snprintf(p, sizeof(p), "%s/good.iso", f->dir);
        chmod(p, 0200);
        assert_false(mgr_check_iso(p, why));
        assert_why(why, "no read permission");
    }
    free(buf);
}

/* ---- Numbers ---------------------------------------------------------------------------------------------------- */

static void test_memory(void **state)
{
    (void)state;
    char why[MGR_WHY_MAX];
    assert_false(mgr_check_memory(0, 8192, why));
    assert_false(mgr_check_memory(3, 8192, why));
    assert_why(why, "at least 4 MiB");
    assert_true(mgr_check_memory(4, 8192, why));
    assert_true(mgr_check_memory(8192, 8192, why));
    assert_false(mgr_check_memory(8193, 8192, why));
    assert_why(why, "more than this computer has");
    /* Host size unknown: only the model's limit. */
    assert_true(mgr_check_memory(1u << 20, 0, why));
    assert_false(mgr_check_memory((1u << 20) + 1, 0, why));
    assert_why(why, "1 TiB");
    assert_false(mgr_check_memory(UINT64_MAX, 0, why));
}

static void test_cpus(void **state)
{
    (void)state;
    char why[MGR_WHY_MAX];
    assert_false(mgr_check_cpus(0, 4, why));
    assert_why(why, "at least one");
    assert_true(mgr_check_cpus(1, 4, why));
    assert_true(mgr_check_cpus(4, 4, why));
    assert_false(mgr_check_cpus(5, 4, why));
    assert_why(why, "this computer has no more");
    /* A big host: Vireo's own limit of 32. */
    assert_true(mgr_check_cpus(32, 128, why));
    assert_false(mgr_check_cpus(33, 128, why));
    assert_why(why, "Vireo runs up to 32");
    assert_true(mgr_check_cpus(32, 0, why)); /* unknown host */
    assert_false(mgr_check_cpus(UINT32_MAX, 0, why));
}

static void test_disk_size(void **state)
{
    struct fx *f = *state;
    char why[MGR_WHY_MAX], p[256];
    const uint64_t mib = 1ull << 20;
    assert_false(mgr_check_disk_size(0, false, NULL, why));
    assert_why(why, "above zero");
    assert_false(mgr_check_disk_size(mib - 1, false, NULL, why));
    assert_why(why, "at least 1 MiB");
    assert_true(mgr_check_disk_size(mib, false, NULL, why));
    assert_true(mgr_check_disk_size(64ull << 40, false, f->vms, why)); /* dynamic: no room needed now */
    assert_false(mgr_check_disk_size((64ull << 40) + mib, false, NULL, why));
    assert_why(why, "largest disk");
    /* Fixed: the file system below the folder must hold it; a folder still to be created counts as its parent's. */
    assert_true(mgr_check_disk_size(mib, true, f->vms, why));
    snprintf(p, sizeof(p), "%s/not/yet", f->vms);
    assert_true(mgr_check_disk_size(mib, true, p, why));
    assert_false(mgr_check_disk_size(60ull << 40, true, p, why));
    assert_why(why, "does not fit");
}

static void test_port(void **state)
{
    (void)state;
    char why[MGR_WHY_MAX];
    assert_true(mgr_check_port(0, why));
    assert_false(mgr_check_port(1, why));
    assert_false(mgr_check_port(1023, why));
    assert_why(why, "below 1024");
    assert_true(mgr_check_port(1024, why));
    assert_true(mgr_check_port(5900, why));
    assert_true(mgr_check_port(65535, why));
    assert_false(mgr_check_port(65536, why));
    assert_why(why, "65535");
}

static void test_format_size(void **state)
{
    (void)state;
    char b[32];
    assert_string_equal(mgr_format_size(0, b, sizeof(b)), "0 bytes");
    assert_string_equal(mgr_format_size(1023, b, sizeof(b)), "1023 bytes");
    assert_string_equal(mgr_format_size(1024, b, sizeof(b)), "1 KiB");
    assert_string_equal(mgr_format_size(1536, b, sizeof(b)), "1.5 KiB");
    assert_string_equal(mgr_format_size(512ull << 20, b, sizeof(b)), "512 MiB");
    assert_string_equal(mgr_format_size(3ull << 29, b, sizeof(b)), "1.5 GiB");
    assert_string_equal(mgr_format_size(64ull << 40, b, sizeof(b)), "64 TiB");
    assert_non_null(mgr_format_size(UINT64_MAX, b, sizeof(b)));
    /* A small buffer is cut, not overrun. */
    char tiny[4];
    mgr_format_size(123456789, tiny, sizeof(tiny));
    assert_true(strlen(tiny) < sizeof(tiny));
}

static void test_host(void **state)
{
    (void)state;
    assert_true(mgr_host_memory_mib() > 0);
    assert_true(mgr_host_cpus() >= 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_new_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rename, setup, teardown),
        cmocka_unit_test_setup_teardown(test_folder, setup, teardown),
        cmocka_unit_test_setup_teardown(test_iso, setup, teardown),
        cmocka_unit_test(test_memory),
        cmocka_unit_test(test_cpus),
        cmocka_unit_test_setup_teardown(test_disk_size, setup, teardown),
        cmocka_unit_test(test_port),
        cmocka_unit_test(test_format_size),
        cmocka_unit_test(test_host),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
