/* tstTpmTis.c - TPM TIS device tests with a test double backend: localities, the STS state machine, burst
 * counts, round trips, oversize and lying commands, empty FIFO reads, reset, saved state and garbage. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "tpm-test.h"

/* The test double: records commands and answers at once or when the test says so. */
struct dbl {
    struct pdm_dev *tis;
    bool immediate;
    bool pending;
    unsigned submits, resets, drains;
    unsigned locality;
    uint8_t cmd[4096];
    size_t cmd_len;
    uint8_t resp[4200];
    size_t resp_len;
    bool *destroyed;
};

struct fixture {
    struct vm *vm;
    struct pdm_dev *tis;
    struct dbl *d;
    bool destroyed;
};

static int dbl_submit(void *backend, unsigned locality, const uint8_t *cmd, size_t len)
{
    struct dbl *d = backend;
    d->submits++;
    d->locality = locality;
    memcpy(d->cmd, cmd, len);
    d->cmd_len = len;
    if (d->immediate)
        tpm_tis_complete(d->tis, d->resp, d->resp_len);
    else
        d->pending = true;
    return 0;
}

static void dbl_answer(struct fixture *f)
{
    assert_true(f->d->pending);
    f->d->pending = false;
    vm_lock(f->vm);
    tpm_tis_complete(f->tis, f->d->resp, f->d->resp_len);
    vm_unlock(f->vm);
}

static void dbl_drain(void *backend)
{
    struct dbl *d = backend;
    d->drains++;
    if (d->pending) {
        d->pending = false;
        tpm_tis_complete(d->tis, d->resp, d->resp_len);
    }
}

static int dbl_reset(void *backend)
{
    ((struct dbl *)backend)->resets++;
    return 0;
}

static void dbl_destroy(void *backend)
{
    struct dbl *d = backend;
    *d->destroyed = true;
    free(d);
}

static const struct tpm_backend_ops g_dbl_ops = {
    .submit = dbl_submit, .drain = dbl_drain, .reset = dbl_reset, .destroy = dbl_destroy,
};

/* A canned response of len bytes: a success header and a counting body. */
static void dbl_set_resp(struct dbl *d, size_t len)
{
    d->resp[0] = 0x80;
    d->resp[1] = 0x01;
    d->resp[2] = (uint8_t)(len >> 24);
    d->resp[3] = (uint8_t)(len >> 16);
    d->resp[4] = (uint8_t)(len >> 8);
    d->resp[5] = (uint8_t)len;
    memset(d->resp + 6, 0, 4);
    for (size_t i = 10; i < len; i++)
        d->resp[i] = (uint8_t)(i * 7);
    d->resp_len = len;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->vm = harness_vm_create(0);
    f->tis = harness_dev_create(f->vm, &g_dev_tpm_tis, "tpm", NULL);
    f->d = calloc(1, sizeof(*f->d));
    f->d->tis = f->tis;
    f->d->immediate = true;
    f->d->destroyed = &f->destroyed;
    dbl_set_resp(f->d, 14);
    vm_lock(f->vm);
    tpm_tis_attach_backend(f->tis, &g_dbl_ops, f->d);
    vm_unlock(f->vm);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    harness_vm_destroy(f->vm);
    assert_true(f->destroyed);
    free(f);
    return 0;
}

/* A command of len bytes (len in the header) with code 0x17b and a counting body. */
static void make_cmd(uint8_t *cmd, uint32_t len, uint32_t claimed)
{
    cmd[0] = 0x80;
    cmd[1] = 0x01;
    cmd[2] = (uint8_t)(claimed >> 24);
    cmd[3] = (uint8_t)(claimed >> 16);
    cmd[4] = (uint8_t)(claimed >> 8);
    cmd[5] = (uint8_t)claimed;
    cmd[6] = 0;
    cmd[7] = 0;
    cmd[8] = 0x01;
    cmd[9] = 0x7b;
    for (uint32_t i = 10; i < len; i++)
        cmd[i] = (uint8_t)(i ^ 0x5a);
}

static void claim(struct fixture *f, unsigned l)
{
    tis_wr(f->vm, TIS_ACCESS(l), ACC_REQUEST_USE, 1);
    assert_true(tis_rd(f->vm, TIS_ACCESS(l), 1) & ACC_ACTIVE);
}

static void make_ready(struct fixture *f, unsigned l)
{
    tis_wr(f->vm, TIS_STS(l), STS_CMD_READY, 1);
    assert_true(tis_rd(f->vm, TIS_STS(l), 1) & STS_CMD_READY);
}

static void test_identity(void **state)
{
    struct fixture *f = *state;
    for (unsigned l = 0; l < 5; l++) {
        assert_int_equal(tis_rd(f->vm, TIS_DID_VID(l), 4), 0x00011014);
        assert_int_equal(tis_rd(f->vm, TIS_RID(l), 1), 1);
        uint32_t id = tis_rd(f->vm, TIS_IFACE_ID(l), 4);
        assert_int_equal(id & 0xf, 0);          /* FIFO interface for TPM 2.0 */
        assert_true(id & (1u << 13));           /* CapFIFO */
        assert_false(id & (1u << 14));          /* no CRB */
        uint32_t cap = tis_rd(f->vm, TIS_INTF_CAP(l), 4);
        assert_int_equal((cap >> 28) & 7, 3);   /* FIFO interface version for TPM 2.0 */
        assert_int_equal(cap & 0xff, 0);        /* no interrupts: the guest polls */
        assert_int_equal(tis_rd(f->vm, TIS_ACCESS(l), 1), ACC_VALID | ACC_ESTABLISHMENT);
        /* No locality is active: STS reads as all ones. */
        assert_int_equal(tis_rd(f->vm, TIS_STS(l), 4), 0xffffffffu);
    }
    claim(f, 0);
    assert_int_equal(tis_rd(f->vm, TIS_STS(0), 4) & STS_FAMILY_MASK, STS_FAMILY_20);
    assert_true(tis_rd(f->vm, TIS_STS(0), 1) & STS_VALID);
}

static void test_locality_request_relinquish(void **state)
{
    struct fixture *f = *state;
    claim(f, 0);
    /* Locality 2 asks: it waits, and locality 0 sees a pending request. */
    tis_wr(f->vm, TIS_ACCESS(2), ACC_REQUEST_USE, 1);
    uint8_t a2 = (uint8_t)tis_rd(f->vm, TIS_ACCESS(2), 1);
    assert_true(a2 & ACC_REQUEST_USE);
    assert_false(a2 & ACC_ACTIVE);
    assert_true(tis_rd(f->vm, TIS_ACCESS(0), 1) & ACC_PENDING);
    /* Locality 2 cannot use STS while waiting. */
    tis_wr(f->vm, TIS_STS(2), STS_CMD_READY, 1);
    assert_int_equal(tis_rd(f->vm, TIS_STS(2), 1), 0xff);
    /* Locality 1 asks too; on relinquish the highest waiting one (2) gets the TPM. */
    tis_wr(f->vm, TIS_ACCESS(1), ACC_REQUEST_USE, 1);
    tis_wr(f->vm, TIS_ACCESS(0), ACC_ACTIVE, 1);
    assert_false(tis_rd(f->vm, TIS_ACCESS(0), 1) & ACC_ACTIVE);
    assert_true(tis_rd(f->vm, TIS_ACCESS(2), 1) & ACC_ACTIVE);
    assert_false(tis_rd(f->vm, TIS_ACCESS(2), 1) & ACC_REQUEST_USE);
    assert_true(tis_rd(f->vm, TIS_ACCESS(2), 1) & ACC_PENDING);
    /* Locality 1 withdraws its request; 2 relinquishes: nobody is active. */
    tis_wr(f->vm, TIS_ACCESS(1), ACC_ACTIVE, 1);
    assert_false(tis_rd(f->vm, TIS_ACCESS(1), 1) & ACC_REQUEST_USE);
    tis_wr(f->vm, TIS_ACCESS(2), ACC_ACTIVE, 1);
    for (unsigned l = 0; l < 5; l++)
        assert_int_equal(tis_rd(f->vm, TIS_ACCESS(l), 1), ACC_VALID | ACC_ESTABLISHMENT);
}

static void test_locality_seize(void **state)
{
    struct fixture *f = *state;
    claim(f, 2);
    /* A lower locality cannot seize. */
    tis_wr(f->vm, TIS_ACCESS(1), ACC_SEIZE, 1);
    assert_true(tis_rd(f->vm, TIS_ACCESS(2), 1) & ACC_ACTIVE);
    /* Mid-command, locality 3 seizes: 2 is told, the command is gone. */
    make_ready(f, 2);
    tis_wr(f->vm, TIS_FIFO(2), 0x80, 1);
    tis_wr(f->vm, TIS_ACCESS(3), ACC_SEIZE, 1);
    assert_true(tis_rd(f->vm, TIS_ACCESS(3), 1) & ACC_ACTIVE);
    assert_true(tis_rd(f->vm, TIS_ACCESS(2), 1) & ACC_BEEN_SEIZED);
    uint8_t sts = (uint8_t)tis_rd(f->vm, TIS_STS(3), 1);
    assert_false(sts & (STS_CMD_READY | STS_EXPECT | STS_DATA_AVAIL));
    tis_wr(f->vm, TIS_ACCESS(2), ACC_BEEN_SEIZED, 1);
    assert_false(tis_rd(f->vm, TIS_ACCESS(2), 1) & ACC_BEEN_SEIZED);
    /* Several actions in one write do nothing. */
    tis_wr(f->vm, TIS_ACCESS(4), ACC_SEIZE | ACC_REQUEST_USE, 1);
    assert_true(tis_rd(f->vm, TIS_ACCESS(3), 1) & ACC_ACTIVE);
}

static void test_state_machine(void **state)
{
    struct fixture *f = *state;
    f->d->immediate = false;
    dbl_set_resp(f->d, 30);
    claim(f, 0);
    /* Idle: not ready, nothing expected, no data. */
    uint8_t sts = (uint8_t)tis_rd(f->vm, TIS_STS(0), 1);
    assert_int_equal(sts & (STS_CMD_READY | STS_EXPECT | STS_DATA_AVAIL), 0);
    assert_int_equal(tis_burst(f->vm, 0), 0);
    make_ready(f, 0);
    assert_int_equal(tis_burst(f->vm, 0), 4096);
    uint8_t cmd[12];
    make_cmd(cmd, sizeof(cmd), sizeof(cmd));
    /* Reception: Expect until the header's size is reached; burst shrinks to what is left. */
    for (unsigned i = 0; i < sizeof(cmd) - 1; i++) {
        tis_wr(f->vm, TIS_FIFO(0), cmd[i], 1);
        assert_true(tis_rd(f->vm, TIS_STS(0), 1) & STS_EXPECT);
    }
    assert_int_equal(tis_burst(f->vm, 0), 1);
    /* tpmGo while Expect is set is ignored. */
    tis_wr(f->vm, TIS_STS(0), STS_GO, 1);
    assert_int_equal(f->d->submits, 0);
    tis_wr(f->vm, TIS_FIFO(0), cmd[sizeof(cmd) - 1], 1);
    assert_false(tis_rd(f->vm, TIS_STS(0), 1) & STS_EXPECT);
    tis_wr(f->vm, TIS_STS(0), STS_GO, 1);
    assert_int_equal(f->d->submits, 1);
    assert_int_equal(f->d->cmd_len, sizeof(cmd));
    assert_memory_equal(f->d->cmd, cmd, sizeof(cmd));
    /* Execution: nothing to read yet. */
    sts = (uint8_t)tis_rd(f->vm, TIS_STS(0), 1);
    assert_int_equal(sts & (STS_CMD_READY | STS_EXPECT | STS_DATA_AVAIL), 0);
    assert_int_equal(tis_rd(f->vm, TIS_FIFO(0), 1), 0xff);
    dbl_answer(f);
    /* Completion: dataAvail with the whole response as burst. */
    assert_true(tis_rd(f->vm, TIS_STS(0), 1) & STS_DATA_AVAIL);
    assert_int_equal(tis_burst(f->vm, 0), 30);
    uint8_t resp[64];
    assert_int_equal(tis_recv(f->vm, 0, resp, sizeof(resp)), 30);
    assert_memory_equal(resp, f->d->resp, 30);
    /* Past the end: 0xff, no dataAvail; responseRetry rewinds. */
    assert_int_equal(tis_rd(f->vm, TIS_FIFO(0), 1), 0xff);
    tis_wr(f->vm, TIS_STS(0), STS_RETRY, 1);
    assert_int_equal(tis_recv(f->vm, 0, resp, sizeof(resp)), 30);
    assert_memory_equal(resp, f->d->resp, 30);
    /* commandReady starts over. */
    make_ready(f, 0);
    assert_false(tis_rd(f->vm, TIS_STS(0), 1) & STS_DATA_AVAIL);
}

static void test_round_trip_wide_access(void **state)
{
    struct fixture *f = *state;
    dbl_set_resp(f->d, 200);
    claim(f, 1);
    make_ready(f, 1);
    uint8_t cmd[64];
    make_cmd(cmd, sizeof(cmd), sizeof(cmd));
    /* Dword writes through the XDATA FIFO window. */
    for (unsigned i = 0; i < sizeof(cmd); i += 4) {
        uint32_t w;
        memcpy(&w, cmd + i, 4);
        tis_wr(f->vm, TIS_XFIFO(1) + (i % 64), w, 4);
    }
    assert_false(tis_rd(f->vm, TIS_STS(1), 1) & STS_EXPECT);
    tis_wr(f->vm, TIS_STS(1), STS_GO, 4); /* a dword write of STS: byte 0 is the command */
    assert_int_equal(f->d->locality, 1);
    assert_memory_equal(f->d->cmd, cmd, sizeof(cmd));
    uint8_t resp[200];
    for (unsigned i = 0; i < sizeof(resp); i += 4) {
        uint32_t w = tis_rd(f->vm, TIS_FIFO(1), 4);
        memcpy(resp + i, &w, 4);
    }
    assert_memory_equal(resp, f->d->resp, sizeof(resp));
    assert_false(tis_rd(f->vm, TIS_STS(1), 1) & STS_DATA_AVAIL);
}

static void test_oversize_and_lying_commands(void **state)
{
    struct fixture *f = *state;
    claim(f, 0);
    /* A size field beyond the buffer: no Expect after the header, tpmGo answers TPM_RC_COMMAND_SIZE locally. */
    make_ready(f, 0);
    uint8_t cmd[5000];
    make_cmd(cmd, sizeof(cmd), 0x7fffffff);
    for (unsigned i = 0; i < 6; i++)
        tis_wr(f->vm, TIS_FIFO(0), cmd[i], 1);
    assert_int_equal(tis_burst(f->vm, 0), 0); /* nothing more is taken */
    for (unsigned i = 0; i < 100; i++)
        tis_wr(f->vm, TIS_FIFO(0), 0xee, 1); /* ignored, never overflowing */
    assert_false(tis_rd(f->vm, TIS_STS(0), 1) & STS_EXPECT);
    tis_wr(f->vm, TIS_STS(0), STS_GO, 1);
    assert_int_equal(f->d->submits, 0);
    uint8_t resp[64];
    assert_int_equal(tis_recv(f->vm, 0, resp, sizeof(resp)), 10);
    assert_int_equal(be32_at(resp + 6), 0x142);
    /* A size field below a header. */
    make_ready(f, 0);
    make_cmd(cmd, 10, 3);
    tis_send(f->vm, 0, cmd, 10);
    tis_wr(f->vm, TIS_STS(0), STS_GO, 1);
    assert_int_equal(tis_recv(f->vm, 0, resp, sizeof(resp)), 10);
    assert_int_equal(be32_at(resp + 6), 0x142);
    /* A size field that says less than is written: the rest is dropped, the backend sees the claimed size. */
    make_ready(f, 0);
    make_cmd(cmd, 40, 16);
    for (unsigned i = 0; i < 40; i++)
        tis_wr(f->vm, TIS_FIFO(0), cmd[i], 1);
    tis_wr(f->vm, TIS_STS(0), STS_GO, 1);
    assert_int_equal(f->d->submits, 1);
    assert_int_equal(f->d->cmd_len, 16);
    /* A size field that says more than is written: Expect stays, tpmGo does nothing, commandReady aborts. */
    make_ready(f, 0);
    make_cmd(cmd, 20, 4000);
    tis_send(f->vm, 0, cmd, 20);
    assert_true(tis_rd(f->vm, TIS_STS(0), 1) & STS_EXPECT);
    assert_int_equal(tis_burst(f->vm, 0), 4000 - 20);
    tis_wr(f->vm, TIS_STS(0), STS_GO, 1);
    assert_int_equal(f->d->submits, 1);
    make_ready(f, 0);
    assert_false(tis_rd(f->vm, TIS_STS(0), 1) & STS_EXPECT);
    /* A full 4096-byte command still fits. */
    make_cmd(cmd, 4096, 4096);
    assert_int_equal(tis_send(f->vm, 0, cmd, 4096), 4096);
    tis_wr(f->vm, TIS_STS(0), STS_GO, 1);
    assert_int_equal(f->d->submits, 2);
    assert_int_equal(f->d->cmd_len, 4096);
}

static void test_bad_backend_response(void **state)
{
    struct fixture *f = *state;
    claim(f, 0);
    uint8_t cmd[10], resp[64];
    make_cmd(cmd, 10, 10);
    /* The response's header disagrees with its length: the guest sees TPM_RC_FAILURE. */
    dbl_set_resp(f->d, 20);
    f->d->resp[5] = 200;
    make_ready(f, 0);
    tis_send(f->vm, 0, cmd, 10);
    tis_wr(f->vm, TIS_STS(0), STS_GO, 1);
    assert_int_equal(tis_recv(f->vm, 0, resp, sizeof(resp)), 10);
    assert_int_equal(be32_at(resp + 6), 0x101);
    /* Larger than any TPM buffer. */
    dbl_set_resp(f->d, 4200);
    make_ready(f, 0);
    tis_send(f->vm, 0, cmd, 10);
    tis_wr(f->vm, TIS_STS(0), STS_GO, 1);
    assert_int_equal(tis_recv(f->vm, 0, resp, sizeof(resp)), 10);
    assert_int_equal(be32_at(resp + 6), 0x101);
    /* A response nobody asked for is dropped. */
    vm_lock(f->vm);
    tpm_tis_complete(f->tis, resp, 10);
    vm_unlock(f->vm);
    assert_int_equal(tis_recv(f->vm, 0, resp, sizeof(resp)), 0);
}

static void test_cancel_and_locality_change_in_execution(void **state)
{
    struct fixture *f = *state;
    f->d->immediate = false;
    claim(f, 0);
    uint8_t cmd[10], resp[64];
    make_cmd(cmd, 10, 10);
    make_ready(f, 0);
    tis_send(f->vm, 0, cmd, 10);
    tis_wr(f->vm, TIS_STS(0), STS_GO, 1);
    /* commandReady during execution: busy until the TPM finishes, then ready, the response dropped. */
    tis_wr(f->vm, TIS_STS(0), STS_CMD_READY, 1);
    assert_false(tis_rd(f->vm, TIS_STS(0), 1) & STS_CMD_READY);
    dbl_answer(f);
    uint8_t sts = (uint8_t)tis_rd(f->vm, TIS_STS(0), 1);
    assert_true(sts & STS_CMD_READY);
    assert_false(sts & STS_DATA_AVAIL);
    /* Relinquishing during execution: the next locality does not get the old response. */
    tis_send(f->vm, 0, cmd, 10);
    tis_wr(f->vm, TIS_STS(0), STS_GO, 1);
    tis_wr(f->vm, TIS_ACCESS(0), ACC_ACTIVE, 1);
    claim(f, 1);
    dbl_answer(f);
    assert_int_equal(tis_recv(f->vm, 1, resp, sizeof(resp)), 0);
    assert_false(tis_rd(f->vm, TIS_STS(1), 1) & STS_CMD_READY);
    /* commandCancel (STS byte 3) in execution. */
    make_ready(f, 1);
    tis_send(f->vm, 1, cmd, 10);
    tis_wr(f->vm, TIS_STS(1), STS_GO, 1);
    tis_wr(f->vm, TIS_STS(1), STS_CANCEL, 4);
    dbl_answer(f);
    assert_int_equal(tis_recv(f->vm, 1, resp, sizeof(resp)), 0);
}

static void test_empty_fifo_and_inactive(void **state)
{
    struct fixture *f = *state;
    claim(f, 0);
    /* Reads of the FIFO in every state but completion give all ones and change nothing. */
    for (unsigned i = 0; i < 10; i++)
        assert_int_equal(tis_rd(f->vm, TIS_FIFO(0), 4), 0xffffffffu);
    make_ready(f, 0);
    assert_int_equal(tis_rd(f->vm, TIS_XFIFO(0), 4), 0xffffffffu);
    assert_true(tis_rd(f->vm, TIS_STS(0), 1) & STS_CMD_READY);
    /* A FIFO write from an inactive locality goes nowhere. */
    tis_wr(f->vm, TIS_FIFO(3), 0x80, 1);
    assert_int_equal(tis_burst(f->vm, 0), 4096);
    /* Writes in idle are ignored. */
    tis_wr(f->vm, TIS_ACCESS(0), ACC_ACTIVE, 1);
    claim(f, 0);
    tis_wr(f->vm, TIS_FIFO(0), 0x80, 1);
    assert_int_equal(tis_rd(f->vm, TIS_STS(0), 1) & (STS_EXPECT | STS_CMD_READY), 0);
}

static void test_no_backend(void **state)
{
    (void)state;
    struct vm *vm = harness_vm_create(0);
    harness_dev_create(vm, &g_dev_tpm_tis, "tpm", NULL);
    tis_wr(vm, TIS_ACCESS(0), ACC_REQUEST_USE, 1);
    tis_wr(vm, TIS_STS(0), STS_CMD_READY, 1);
    uint8_t cmd[10] = { 0x80, 0x01, 0, 0, 0, 10, 0, 0, 1, 0x7b }, resp[16];
    tis_send(vm, 0, cmd, 10);
    tis_wr(vm, TIS_STS(0), STS_GO, 1);
    assert_int_equal(tis_recv(vm, 0, resp, sizeof(resp)), 10);
    assert_int_equal(be32_at(resp + 6), 0x101);
    harness_vm_destroy(vm);
}

static void test_reset(void **state)
{
    struct fixture *f = *state;
    f->d->immediate = false;
    claim(f, 2);
    uint8_t cmd[10];
    make_cmd(cmd, 10, 10);
    make_ready(f, 2);
    tis_send(f->vm, 2, cmd, 10);
    tis_wr(f->vm, TIS_STS(2), STS_GO, 1);
    unsigned resets = f->d->resets;
    pdm_dev_reset_all(f->vm);
    /* The command in flight was drained, the TPM got its TPM_Init, no locality is active. */
    assert_false(f->d->pending);
    assert_int_equal(f->d->resets, resets + 1);
    for (unsigned l = 0; l < 5; l++)
        assert_int_equal(tis_rd(f->vm, TIS_ACCESS(l), 1), ACC_VALID | ACC_ESTABLISHMENT);
}

static void test_save_load(void **state)
{
    struct fixture *f = *state;
    dbl_set_resp(f->d, 50);
    claim(f, 3);
    tis_wr(f->vm, TIS_ACCESS(1), ACC_REQUEST_USE, 1);
    tis_wr(f->vm, TIS_INT_EN(3), 0x80000001u, 4);
    tis_wr(f->vm, TIS_INT_VEC(3), 0x0b, 1);
    make_ready(f, 3);
    uint8_t cmd[10], resp[64];
    make_cmd(cmd, 10, 10);
    tis_send(f->vm, 3, cmd, 10);
    tis_wr(f->vm, TIS_STS(3), STS_GO, 1);
    for (unsigned i = 0; i < 7; i++)
        tis_rd(f->vm, TIS_FIFO(3), 1);
    vm_lock(f->vm);
    assert_int_equal(harness_dev_save_reset_load(f->tis), 0);
    vm_unlock(f->vm);
    assert_true(tis_rd(f->vm, TIS_ACCESS(3), 1) & ACC_ACTIVE);
    assert_true(tis_rd(f->vm, TIS_ACCESS(1), 1) & ACC_REQUEST_USE);
    assert_int_equal(tis_rd(f->vm, TIS_INT_EN(3), 4), 0x80000001u);
    assert_int_equal(tis_rd(f->vm, TIS_INT_VEC(3), 1), 0x0b);
    assert_int_equal(tis_recv(f->vm, 3, resp, sizeof(resp)), 43);
    assert_memory_equal(resp, f->d->resp + 7, 43);

    /* A command in flight at save time is drained into the saved state. */
    f->d->immediate = false;
    make_ready(f, 3);
    tis_send(f->vm, 3, cmd, 10);
    tis_wr(f->vm, TIS_STS(3), STS_GO, 1);
    assert_true(f->d->pending);
    vm_lock(f->vm);
    assert_int_equal(harness_dev_save_reset_load(f->tis), 0);
    vm_unlock(f->vm);
    assert_int_equal(tis_recv(f->vm, 3, resp, sizeof(resp)), 50);
}

/* Loads a hand-made stream; returns the load status. */
static int load_stream(struct fixture *f, uint8_t active, uint8_t state, uint32_t len, uint32_t pos,
                       const uint8_t *buf, size_t buf_len)
{
    struct ssm *out = NULL, *in = NULL;
    assert_int_equal(ssm_create(&out), 0);
    ssm_put_u8(out, active);
    for (unsigned i = 0; i < 5; i++) {
        ssm_put_u32(out, 0);
        ssm_put_u8(out, 0);
        ssm_put_bool(out, false);
        ssm_put_bool(out, false);
    }
    ssm_put_u8(out, state);
    ssm_put_u32(out, len);
    ssm_put_u32(out, pos);
    ssm_put_bytes(out, buf, buf_len);
    size_t n;
    const void *data = ssm_data(out, &n);
    assert_int_equal(ssm_open(data, n, &in), 0);
    vm_lock(f->vm);
    int rc = g_dev_tpm_tis.load(f->tis, in, 1);
    vm_unlock(f->vm);
    ssm_destroy(in);
    ssm_destroy(out);
    return rc;
}

static void test_load_hostile(void **state)
{
    struct fixture *f = *state;
    uint8_t buf[4100] = { 0 };
    assert_int_not_equal(load_stream(f, 7, 0, 0, 0, buf, 0), 0);           /* locality 7 */
    assert_int_not_equal(load_stream(f, 0, 9, 0, 0, buf, 0), 0);           /* no such state */
    assert_int_not_equal(load_stream(f, 0, 4, 5000, 0, buf, 4100), 0);     /* longer than the buffer */
    assert_int_not_equal(load_stream(f, 0, 4, 10, 11, buf, 10), 0);        /* read past the response */
    assert_int_not_equal(load_stream(f, 0, 4, 100, 0, buf, 10), 0);        /* truncated stream */
    assert_int_not_equal(load_stream(f, 0, 3, 10, 0, buf, 10), 0);         /* executing a size-0 command */
    /* A command in execution in the file is sent again on load. */
    uint8_t cmd[12];
    make_cmd(cmd, 12, 12);
    unsigned submits = f->d->submits;
    assert_int_equal(load_stream(f, 0, 3, 12, 0, cmd, 12), 0);
    assert_int_equal(f->d->submits, submits + 1);
    assert_memory_equal(f->d->cmd, cmd, 12);
    uint8_t resp[64];
    assert_int_equal(tis_recv(f->vm, 0, resp, sizeof(resp)), 14);
    assert_int_equal(g_dev_tpm_tis.load(f->tis, NULL, 2), VERR_SSM_VERSION);
}

static void test_garbage(void **state)
{
    struct fixture *f = *state;
    uint32_t rng = 0x7b3c1f;
    static const unsigned sizes[] = { 1, 2, 4 };
    for (unsigned i = 0; i < 200000; i++) {
        uint32_t r = harness_rand(&rng);
        unsigned l = r % 5;
        /* Mostly the interesting registers, sometimes anywhere in the window. */
        static const unsigned regs[] = { 0x00, 0x08, 0x0c, 0x10, 0x14, 0x18, 0x19, 0x1b, 0x24, 0x30, 0x80, 0xbc, 0xf00 };
        unsigned reg = (r >> 3) & 1 ? regs[(r >> 4) % RT_ARRAY_SIZE(regs)] : (r >> 4) & 0xfff;
        unsigned size = sizes[(r >> 20) % 3];
        uint32_t gpa = TIS_LOC(l) + reg;
        if ((r >> 22) & 1)
            tis_wr(f->vm, gpa, harness_rand(&rng), size);
        else
            tis_rd(f->vm, gpa, size);
        if (f->d->pending && (r >> 25) % 4 == 0)
            dbl_answer(f);
        f->d->immediate = (r >> 27) & 1;
    }
    /* Still a working TPM afterwards. */
    if (f->d->pending)
        dbl_answer(f);
    for (unsigned l = 0; l < 5; l++)
        tis_wr(f->vm, TIS_ACCESS(l), ACC_ACTIVE, 1);
    f->d->immediate = true;
    dbl_set_resp(f->d, 14);
    claim(f, 0);
    make_ready(f, 0);
    uint8_t cmd[10], resp[64];
    make_cmd(cmd, 10, 10);
    tis_send(f->vm, 0, cmd, 10);
    tis_wr(f->vm, TIS_STS(0), STS_GO, 1);
    assert_int_equal(tis_recv(f->vm, 0, resp, sizeof(resp)), 14);
}

static void test_config(void **state)
{
    (void)state;
    struct vm *vm = harness_vm_create(0);
    struct pdm_dev *dev = NULL;
    assert_int_equal(harness_dev_try_create(vm, &g_dev_tpm_tis, "tpm", "bogus=1", &dev), VERR_CFG_UNKNOWN_KEY);
    harness_vm_destroy(vm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_identity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_locality_request_relinquish, setup, teardown),
        cmocka_unit_test_setup_teardown(test_locality_seize, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_machine, setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_trip_wide_access, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversize_and_lying_commands, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_backend_response, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_and_locality_change_in_execution, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_fifo_and_inactive, setup, teardown),
        cmocka_unit_test(test_no_backend),
        cmocka_unit_test_setup_teardown(test_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_save_load, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_hostile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
        cmocka_unit_test(test_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
