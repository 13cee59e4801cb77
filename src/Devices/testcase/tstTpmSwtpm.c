/* tstTpmSwtpm.c - the TPM TIS device with the real swtpm behind it: TPM2_Startup, GetRandom, PCR_Read, TPM_Init
 * on reset, the child's end with the device, and a clear error without swtpm. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tpm-test.h"

struct fixture {
    struct vm *vm;
    struct pdm_dev *tis;
    char dir[64];
};

static bool have_swtpm(void)
{
    return system("command -v swtpm >/dev/null 2>&1") == 0;
}

/* The pids of this process's swtpm children (from /proc), up to cap. */
static unsigned swtpm_children(pid_t *pids, unsigned cap)
{
    unsigned n = 0;
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL && n < cap) {
        char path[300], buf[512];
        snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
        FILE *fp = fopen(path, "r");
        if (!fp)
            continue;
        size_t len = fread(buf, 1, sizeof(buf) - 1, fp);
        fclose(fp);
        buf[len] = '\0';
        char *rp = strrchr(buf, ')');
        int ppid = 0;
        char st;
        if (strstr(buf, "(swtpm)") && rp && sscanf(rp + 1, " %c %d", &st, &ppid) == 2 && ppid == getpid() &&
            st != 'Z')
            pids[n++] = atoi(e->d_name);
    }
    if (d)
        closedir(d);
    return n;
}

static int setup(void **state)
{
    if (!have_swtpm()) {
        fprintf(stderr, "TPM emulator 'swtpm' not found: install Debian's swtpm package (./configure --install-deps)\n");
        return -1;
    }
    struct fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/tstTpmSwtpm.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    f->vm = harness_vm_create(0);
    char cfg[128];
    snprintf(cfg, sizeof(cfg), "state_dir=%s/tpm", f->dir);
    f->tis = harness_dev_create(f->vm, &g_dev_tpm_tis, "tpm", cfg);
    pdm_dev_reset_all(f->vm); /* power on */
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    if (f->vm)
        harness_vm_destroy(f->vm);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* Sends one command at locality 0 and waits (event loop, bounded) for the response. */
static size_t tpm_cmd(struct fixture *f, const uint8_t *cmd, size_t len, uint8_t *resp, size_t cap)
{
    if (!(tis_rd(f->vm, TIS_ACCESS(0), 1) & ACC_ACTIVE))
        tis_wr(f->vm, TIS_ACCESS(0), ACC_REQUEST_USE, 1);
    tis_wr(f->vm, TIS_STS(0), STS_CMD_READY, 1);
    assert_int_equal(tis_send(f->vm, 0, cmd, len), len);
    tis_wr(f->vm, TIS_STS(0), STS_GO, 1);
    uint64_t deadline = rt_time_mono_ns() + 60 * RT_NS_PER_SEC;
    while (!(tis_rd(f->vm, TIS_STS(0), 1) & STS_DATA_AVAIL)) {
        assert_true(rt_time_mono_ns() < deadline);
        rt_evloop_run_once(vm_get_evloop(f->vm), 20 * RT_NS_PER_MS);
    }
    size_t n = tis_recv(f->vm, 0, resp, cap);
    assert_true(n >= 10);
    assert_int_equal(be32_at(resp + 2), n);
    return n;
}

static const uint8_t g_startup_clear[] = { 0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x44, 0x00, 0x00 };
static const uint8_t g_get_random8[] = { 0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x7b, 0x00, 0x08 };
/* PCR_Read of SHA-256 PCR 0: one TPMS_PCR_SELECTION (hash 0x000b, 3 select bytes, bit 0). */
static const uint8_t g_pcr_read0[] = { 0x80, 0x01, 0, 0, 0, 20, 0, 0, 0x01, 0x7e,
                                       0, 0, 0, 1, 0x00, 0x0b, 3, 0x01, 0x00, 0x00 };

static void test_startup_random_pcr(void **state)
{
    struct fixture *f = *state;
    uint8_t resp[4096];
    size_t n = tpm_cmd(f, g_startup_clear, sizeof(g_startup_clear), resp, sizeof(resp));
    assert_int_equal(n, 10);
    assert_int_equal(be32_at(resp + 6), 0);
    n = tpm_cmd(f, g_get_random8, sizeof(g_get_random8), resp, sizeof(resp));
    assert_int_equal(n, 20);
    assert_int_equal(be32_at(resp + 6), 0);
    assert_int_equal(resp[10] << 8 | resp[11], 8);
    uint8_t first[8];
    memcpy(first, resp + 12, 8);
    tpm_cmd(f, g_get_random8, sizeof(g_get_random8), resp, sizeof(resp));
    assert_memory_not_equal(first, resp + 12, 8);
    n = tpm_cmd(f, g_pcr_read0, sizeof(g_pcr_read0), resp, sizeof(resp));
    /* header, update counter, the selection echoed (10), digest count, TPM2B of 32 bytes */
    assert_int_equal(n, 10 + 4 + 10 + 4 + 2 + 32);
    assert_int_equal(be32_at(resp + 6), 0);
    assert_int_equal(be32_at(resp + 24), 1);
    assert_int_equal(resp[28] << 8 | resp[29], 32);
    static const uint8_t zero[32];
    assert_memory_equal(resp + 30, zero, 32); /* PCR 0 after TPM2_Startup(CLEAR), nothing measured */
    /* A second startup is refused: TPM_RC_INITIALIZE (0x100). */
    tpm_cmd(f, g_startup_clear, sizeof(g_startup_clear), resp, sizeof(resp));
    assert_int_equal(be32_at(resp + 6), 0x100);
}

static void test_reset_is_tpm_init(void **state)
{
    struct fixture *f = *state;
    uint8_t resp[4096];
    tpm_cmd(f, g_startup_clear, sizeof(g_startup_clear), resp, sizeof(resp));
    assert_int_equal(be32_at(resp + 6), 0);
    /* A platform reset with a command in flight: it is drained, then TPM_Init. */
    tis_wr(f->vm, TIS_STS(0), STS_CMD_READY, 1);
    tis_send(f->vm, 0, g_get_random8, sizeof(g_get_random8));
    tis_wr(f->vm, TIS_STS(0), STS_GO, 1);
    pdm_dev_reset_all(f->vm);
    /* Commands before TPM2_Startup now fail with TPM_RC_INITIALIZE; startup works again. */
    tpm_cmd(f, g_get_random8, sizeof(g_get_random8), resp, sizeof(resp));
    assert_int_equal(be32_at(resp + 6), 0x100);
    tpm_cmd(f, g_startup_clear, sizeof(g_startup_clear), resp, sizeof(resp));
    assert_int_equal(be32_at(resp + 6), 0);
}

static void test_child_ends_with_device(void **state)
{
    struct fixture *f = *state;
    pid_t pids[4];
    assert_int_equal(swtpm_children(pids, 4), 1);
    assert_int_equal(kill(pids[0], 0), 0);
    /* The state folder was created and holds swtpm's lock while it runs. */
    char path[128];
    snprintf(path, sizeof(path), "%s/tpm", f->dir);
    assert_true(rt_path_exists(path));
    /* A second TPM on the same state folder is refused (swtpm's lock). */
    struct vm *vm2 = harness_vm_create(0);
    char cfg[128];
    struct pdm_dev *dev = NULL;
    snprintf(cfg, sizeof(cfg), "state_dir=%s/tpm", f->dir);
    assert_int_not_equal(harness_dev_try_create(vm2, &g_dev_tpm_tis, "tpm", cfg, &dev), 0);
    harness_vm_destroy(vm2);
    harness_vm_destroy(f->vm);
    f->vm = NULL;
    assert_int_equal(swtpm_children(pids, 4), 0);
    /* The TPM's permanent state was written to the folder. */
    snprintf(path, sizeof(path), "%s/tpm/tpm2-00.permall", f->dir);
    assert_true(rt_path_exists(path));
}

static void test_missing_swtpm(void **state)
{
    (void)state;
    char *old = getenv("PATH") ? strdup(getenv("PATH")) : NULL;
    setenv("PATH", "/nonexistent", 1);
    struct vm *vm = harness_vm_create(0);
    struct pdm_dev *dev = NULL;
    assert_int_equal(harness_dev_try_create(vm, &g_dev_tpm_tis, "tpm", "state_dir=/tmp/tstTpmSwtpm-never", &dev),
                     VERR_NOT_FOUND);
    assert_false(rt_path_exists("/tmp/tstTpmSwtpm-never")); /* nothing created for a TPM that cannot run */
    harness_vm_destroy(vm);
    if (old)
        setenv("PATH", old, 1);
    free(old);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_startup_random_pcr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_is_tpm_init, setup, teardown),
        cmocka_unit_test_setup_teardown(test_child_ends_with_device, setup, teardown),
        cmocka_unit_test(test_missing_swtpm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
