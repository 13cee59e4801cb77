/* tpm-tis.c - a TPM 2.0 behind the TCG PC Client PTP FIFO interface (TIS) at 0xfed40000, five localities. */

/*
 * Design: the device is the register file and the command/response state machine of
 * the TCG PC Client Platform TPM Profile (PTP) specification, FIFO interface (section
 * 5.5, "TIS" in its TPM 1.2 form).  Each of the five localities has a 4 KiB page of
 * registers; one locality at a time is active and only it may use TPM_STS and the data
 * FIFO.  A command is collected in one buffer until the header's size says it is
 * complete; tpmGo hands it to a backend (swtpm in tpm-swtpm.c, a test double in
 * tstTpmTis.c) through struct tpm_backend_ops, which answers later with
 * tpm_tis_complete(), so a vCPU never waits for the TPM.  The response replaces the
 * command in the same buffer and is read back through the FIFO.
 *
 * Interrupts are not offered (TPM_INTF_CAPABILITY says so): the guest polls, which the
 * PTP allows and which firmware and Linux do for a TPM without an interrupt resource.
 *
 * Every register access is taken apart into bytes, so any access width at any offset
 * means the same thing, and a guest's size fields are checked before they are believed:
 * a command that claims less than a header or more than the buffer gets the TPM's
 * TPM_RC_COMMAND_SIZE answer from the device itself, bytes past the claimed size are
 * dropped, reads past the response give 0xff.
 */
#include <stdlib.h>
#include <string.h>

#include "vireo/devices.h"
#include "vireo/pdm.h"
#include "vireo/rt.h"
#include "vireo/vm.h"
#include "tpm-internal.h"

#define LOG_COMPONENT "tpm"

#define TIS_SSM_VERSION 1
#define TIS_LOCALITIES 5
#define TIS_LOCALITY_SHIFT 12

/* Register offsets inside a locality's page (PTP 5.5.1, table "FIFO Interface register space"). */
#define TIS_REG_ACCESS       0x000
#define TIS_REG_INT_ENABLE   0x008
#define TIS_REG_INT_VECTOR   0x00c
#define TIS_REG_INT_STATUS   0x010
#define TIS_REG_INTF_CAP     0x014
#define TIS_REG_STS          0x018
#define TIS_REG_DATA_FIFO    0x024
#define TIS_REG_INTERFACE_ID 0x030
#define TIS_REG_XDATA_FIFO   0x080
#define TIS_XDATA_FIFO_BYTES 64
#define TIS_REG_DID_VID      0xf00
#define TIS_REG_RID          0xf04

/* TPM_ACCESS bits (PTP 5.5.2.3). */
#define TIS_ACCESS_ESTABLISHMENT 0x01u /* 1: no dynamic OS was ever established (no DRTM here) */
#define TIS_ACCESS_REQUEST_USE   0x02u
#define TIS_ACCESS_PENDING       0x04u
#define TIS_ACCESS_SEIZE         0x08u
#define TIS_ACCESS_BEEN_SEIZED   0x10u
#define TIS_ACCESS_ACTIVE        0x20u
#define TIS_ACCESS_VALID         0x80u

/* TPM_STS bits (PTP 5.5.2.5): byte 0 status and commands, bytes 1-2 burstCount, byte 3 family and cancel. */
#define TIS_STS_RESPONSE_RETRY 0x02u
#define TIS_STS_SELFTEST_DONE  0x04u
#define TIS_STS_EXPECT         0x08u
#define TIS_STS_DATA_AVAIL     0x10u
#define TIS_STS_GO             0x20u
#define TIS_STS_COMMAND_READY  0x40u
#define TIS_STS_VALID          0x80u
#define TIS_STS_COMMAND_CANCEL 0x01000000u
#define TIS_STS_FAMILY_TPM20   0x04000000u /* tpmFamily 01b */

/* TPM_INT_ENABLE's defined bits; kept for the guest to read back although no interrupt is ever raised. */
#define TIS_INT_ENABLE_MASK 0x8000009fu
/*
 * TPM_INTF_CAPABILITY (PTP 5.5.2.7): no interrupt kinds, dynamic burst count, transfers
 * up to 64 bytes (the XDATA FIFO), interface version 011b (FIFO for TPM 2.0).
 */
#define TIS_INTF_CAPABILITY 0x30000600u
/*
 * TPM_INTERFACE_ID (PTP 5.5.2.8): type 0 (FIFO for TPM 2.0), version 0, CapLocality,
 * 64-byte transfers, CapFIFO, the FIFO selected and the selector locked.
 */
#define TIS_INTERFACE_ID 0x00083900u
#define TIS_DID_VID 0x00011014u /* vendor 0x1014, device 1 */
#define TIS_RID 0x01u

enum tis_state {
    TIS_IDLE = 0,
    TIS_READY,      /* commandReady: the buffer takes a command */
    TIS_RECEPTION,  /* command bytes arriving */
    TIS_EXECUTION,  /* with the backend */
    TIS_COMPLETION, /* response in the buffer */
    TIS_STATE_COUNT,
};

struct tis_locality {
    uint32_t int_enable;
    uint8_t int_vector;
    bool request;      /* requestUse pending */
    bool been_seized;
};

struct tpm_tis {
    struct pdm_dev *dev;
    struct mem_region *mmio;
    const struct tpm_backend_ops *ops;
    void *backend;
    int active; /* active locality, -1: none */
    struct tis_locality loc[TIS_LOCALITIES];
    enum tis_state state;
    /*
     * A command is with the backend.  Abandoned: the guest cancelled it or the locality
     * changed; its response is dropped and the state becomes ready_after ? READY : IDLE.
     */
    bool in_flight, abandoned, ready_after;
    uint32_t len; /* command bytes received, or the response's length */
    uint32_t pos; /* response bytes read */
    uint8_t buf[TPM_BUFFER_BYTES];
    bool warned_overflow, warned_backend, logged_first;
};

/* ---- command and response buffer --------------------------------------------------- */

/* The command's claimed size once its header has it (6 bytes), else 0. */
static uint32_t tis_cmd_claimed(const struct tpm_tis *s)
{
    return s->len >= 6 ? tpm_header_size(s->buf) : 0;
}

static uint32_t be32_code(const uint8_t *hdr)
{
    return (uint32_t)hdr[6] << 24 | (uint32_t)hdr[7] << 16 | (uint32_t)hdr[8] << 8 | hdr[9];
}

static bool tis_cmd_size_ok(uint32_t size)
{
    return size >= TPM_HEADER_BYTES && size <= TPM_BUFFER_BYTES;
}

/* All bytes of the command are here (or its size is impossible and no more are taken). */
static bool tis_cmd_complete(const struct tpm_tis *s)
{
    uint32_t size = tis_cmd_claimed(s);
    if (s->len < 6)
        return false;
    return !tis_cmd_size_ok(size) || s->len >= size;
}

static void tis_set_response(struct tpm_tis *s, const uint8_t *resp, size_t len)
{
    memcpy(s->buf, resp, len);
    s->len = (uint32_t)len;
    s->pos = 0;
    s->state = TIS_COMPLETION;
}

static void tis_local_error(struct tpm_tis *s, uint32_t rc)
{
    uint8_t resp[TPM_HEADER_BYTES];
    tpm_error_response(resp, rc);
    tis_set_response(s, resp, sizeof(resp));
}

static void tis_clear_buffer(struct tpm_tis *s, enum tis_state state)
{
    s->state = state;
    s->len = 0;
    s->pos = 0;
}

static void tis_execute(struct tpm_tis *s)
{
    uint32_t size = tis_cmd_claimed(s);
    if (!tis_cmd_size_ok(size)) {
        /* TPM 2.0 Part 3, 5.2: a command whose size field is wrong is answered with TPM_RC_COMMAND_SIZE. */
        tis_local_error(s, TPM_RC_COMMAND_SIZE);
        return;
    }
    if (!s->ops) {
        if (!s->warned_backend)
            LOG_WARN("%s: no TPM backend; commands fail with TPM_RC_FAILURE", pdm_dev_name(s->dev));
        s->warned_backend = true;
        tis_local_error(s, TPM_RC_FAILURE);
        return;
    }
    if (!s->logged_first)
        LOG_INFO("%s: first command from the guest (locality %d, command code 0x%x)", pdm_dev_name(s->dev),
                 s->active, be32_code(s->buf));
    s->logged_first = true;
    s->state = TIS_EXECUTION;
    s->in_flight = true;
    s->abandoned = false;
    s->ready_after = false;
    /* The backend may answer inside submit: the state above must already be in place. */
    int rc = s->ops->submit(s->backend, (unsigned)s->active, s->buf, size);
    if (rc < 0 && s->in_flight) {
        LOG_ERR("%s: TPM backend refused a command: %s", pdm_dev_name(s->dev), rt_err_str(rc));
        s->in_flight = false;
        tis_local_error(s, TPM_RC_FAILURE);
    }
}

/* A command with the backend goes on, but its response is no longer anyone's. */
static void tis_abandon(struct tpm_tis *s, bool ready_after)
{
    s->abandoned = true;
    s->ready_after = ready_after;
}

void tpm_tis_complete(struct pdm_dev *tis, const uint8_t *resp, size_t len)
{
    struct tpm_tis *s = pdm_dev_state(tis);
    if (!s->in_flight) {
        LOG_WARN("%s: TPM response without a command dropped", pdm_dev_name(tis));
        return;
    }
    s->in_flight = false;
    if (s->abandoned) {
        s->abandoned = false;
        tis_clear_buffer(s, s->ready_after ? TIS_READY : TIS_IDLE);
        return;
    }
    if (!resp || len < TPM_HEADER_BYTES || len > TPM_BUFFER_BYTES || tpm_header_size(resp) != len) {
        LOG_ERR("%s: malformed TPM response (%zu bytes) replaced by TPM_RC_FAILURE", pdm_dev_name(tis), len);
        tis_local_error(s, TPM_RC_FAILURE);
        return;
    }
    tis_set_response(s, resp, len);
}

/* ---- localities (PTP 5.5.2.3, 5.6.x) ---------------------------------------------------- */

/* The active locality changes: the interface returns to idle (a command with the backend is abandoned). */
static void tis_set_active(struct tpm_tis *s, int locality)
{
    if (s->active == locality)
        return;
    if (s->state == TIS_EXECUTION)
        tis_abandon(s, false);
    else
        tis_clear_buffer(s, TIS_IDLE);
    s->active = locality;
    if (locality >= 0)
        s->loc[locality].request = false;
}

static void tis_access_write(struct tpm_tis *s, int l, uint8_t v)
{
    static const uint8_t actions = TIS_ACCESS_REQUEST_USE | TIS_ACCESS_SEIZE | TIS_ACCESS_BEEN_SEIZED |
                                   TIS_ACCESS_ACTIVE;
    uint8_t a = v & actions;
    /* One action per write; a write with several at once is not defined by the PTP and does nothing. */
    if (a == 0 || (a & (a - 1)) != 0)
        return;
    switch (a) {
    case TIS_ACCESS_REQUEST_USE:
        if (s->active < 0)
            tis_set_active(s, l);
        else if (s->active != l)
            s->loc[l].request = true;
        break;
    case TIS_ACCESS_ACTIVE:
        if (s->active != l) {
            s->loc[l].request = false; /* withdraws a pending request */
            break;
        }
        {
            int next = -1;
            for (int i = TIS_LOCALITIES - 1; i >= 0 && next < 0; i--)
                if (s->loc[i].request && i != l)
                    next = i;
            tis_set_active(s, next);
        }
        break;
    case TIS_ACCESS_SEIZE:
        /* Only a higher locality may seize (PTP 5.6.4). */
        if (l > s->active) {
            if (s->active >= 0)
                s->loc[s->active].been_seized = true;
            tis_set_active(s, l);
        }
        break;
    case TIS_ACCESS_BEEN_SEIZED:
        s->loc[l].been_seized = false;
        break;
    }
}

static uint8_t tis_access_read(const struct tpm_tis *s, int l)
{
    uint8_t v = TIS_ACCESS_VALID | TIS_ACCESS_ESTABLISHMENT;
    if (s->active == l)
        v |= TIS_ACCESS_ACTIVE;
    if (s->loc[l].request)
        v |= TIS_ACCESS_REQUEST_USE;
    if (s->loc[l].been_seized)
        v |= TIS_ACCESS_BEEN_SEIZED;
    for (int i = 0; i < TIS_LOCALITIES; i++)
        if (i != l && s->loc[i].request)
            v |= TIS_ACCESS_PENDING;
    return v;
}

/* ---- TPM_STS and the FIFO (PTP 5.5.2.5, 5.5.2.6) ------------------------------------------ */

static uint32_t tis_sts(const struct tpm_tis *s)
{
    uint32_t v = TIS_STS_VALID | TIS_STS_SELFTEST_DONE | TIS_STS_FAMILY_TPM20;
    uint32_t burst = 0;
    switch (s->state) {
    case TIS_READY:
        v |= TIS_STS_COMMAND_READY;
        burst = TPM_BUFFER_BYTES;
        break;
    case TIS_RECEPTION:
        if (!tis_cmd_complete(s)) {
            v |= TIS_STS_EXPECT;
            uint32_t claimed = tis_cmd_claimed(s);
            burst = (claimed ? claimed : TPM_BUFFER_BYTES) - s->len;
        }
        break;
    case TIS_COMPLETION:
        if (s->pos < s->len) {
            v |= TIS_STS_DATA_AVAIL;
            burst = s->len - s->pos;
        }
        break;
    default:
        break;
    }
    return v | RT_MIN(burst, 0xffffu) << 8;
}

static void tis_sts_write(struct tpm_tis *s, unsigned byte, uint8_t v)
{
    if (byte == 3) {
        /* commandCancel: the command in execution is dropped and the interface goes idle. */
        if ((v & (TIS_STS_COMMAND_CANCEL >> 24)) && s->state == TIS_EXECUTION && !s->abandoned)
            tis_abandon(s, false);
        return;
    }
    if (byte != 0)
        return;
    uint8_t cmd = v & (TIS_STS_COMMAND_READY | TIS_STS_GO | TIS_STS_RESPONSE_RETRY);
    if (cmd == 0 || (cmd & (cmd - 1)) != 0)
        return;
    switch (cmd) {
    case TIS_STS_COMMAND_READY:
        if (s->state == TIS_EXECUTION)
            tis_abandon(s, true); /* ready again once the TPM has finished */
        else
            tis_clear_buffer(s, TIS_READY);
        break;
    case TIS_STS_GO:
        if (s->state == TIS_RECEPTION && tis_cmd_complete(s))
            tis_execute(s);
        break;
    case TIS_STS_RESPONSE_RETRY:
        if (s->state == TIS_COMPLETION)
            s->pos = 0;
        break;
    }
}

static void tis_fifo_write(struct tpm_tis *s, uint8_t v)
{
    if (s->state != TIS_READY && s->state != TIS_RECEPTION)
        return;
    s->state = TIS_RECEPTION;
    if (tis_cmd_complete(s) || s->len >= TPM_BUFFER_BYTES) {
        if (!s->warned_overflow)
            LOG_WARN("%s: bytes past the command's size dropped", pdm_dev_name(s->dev));
        s->warned_overflow = true;
        return;
    }
    s->buf[s->len++] = v;
}

static uint8_t tis_fifo_read(struct tpm_tis *s)
{
    if (s->state != TIS_COMPLETION || s->pos >= s->len)
        return 0xff;
    return s->buf[s->pos++];
}

/* ---- register dispatch ----------------------------------------------------------------- */

static bool tis_is_fifo(unsigned reg)
{
    return (reg >= TIS_REG_DATA_FIFO && reg < TIS_REG_DATA_FIFO + 4) ||
           (reg >= TIS_REG_XDATA_FIFO && reg < TIS_REG_XDATA_FIFO + TIS_XDATA_FIFO_BYTES);
}

static uint8_t reg_byte(uint32_t value, unsigned reg, unsigned base)
{
    return (uint8_t)(value >> (8 * (reg - base)));
}

static uint8_t tis_read_byte(struct tpm_tis *s, int l, unsigned reg)
{
    bool active = s->active == l;
    if (reg == TIS_REG_ACCESS)
        return tis_access_read(s, l);
    if (reg >= TIS_REG_INT_ENABLE && reg < TIS_REG_INT_ENABLE + 4)
        return reg_byte(s->loc[l].int_enable, reg, TIS_REG_INT_ENABLE);
    if (reg == TIS_REG_INT_VECTOR)
        return s->loc[l].int_vector;
    if (reg >= TIS_REG_INTF_CAP && reg < TIS_REG_INTF_CAP + 4)
        return reg_byte(TIS_INTF_CAPABILITY, reg, TIS_REG_INTF_CAP);
    if (reg >= TIS_REG_STS && reg < TIS_REG_STS + 4)
        return active ? reg_byte(tis_sts(s), reg, TIS_REG_STS) : 0xff;
    if (tis_is_fifo(reg))
        return active ? tis_fifo_read(s) : 0xff;
    if (reg >= TIS_REG_INTERFACE_ID && reg < TIS_REG_INTERFACE_ID + 4)
        return reg_byte(TIS_INTERFACE_ID, reg, TIS_REG_INTERFACE_ID);
    if (reg >= TIS_REG_DID_VID && reg < TIS_REG_DID_VID + 4)
        return reg_byte(TIS_DID_VID, reg, TIS_REG_DID_VID);
    if (reg == TIS_REG_RID)
        return TIS_RID;
    return 0; /* reserved, and TPM_INT_STATUS: no interrupt is ever pending */
}

static void tis_write_byte(struct tpm_tis *s, int l, unsigned reg, uint8_t v)
{
    if (reg == TIS_REG_ACCESS) {
        tis_access_write(s, l, v);
        return;
    }
    /* Everything else belongs to the active locality (PTP 5.5.2.1). */
    if (s->active != l)
        return;
    if (reg >= TIS_REG_INT_ENABLE && reg < TIS_REG_INT_ENABLE + 4) {
        unsigned shift = 8 * (reg - TIS_REG_INT_ENABLE);
        uint32_t mask = TIS_INT_ENABLE_MASK & (0xffu << shift);
        s->loc[l].int_enable = (s->loc[l].int_enable & ~mask) | (((uint32_t)v << shift) & mask);
    } else if (reg == TIS_REG_INT_VECTOR) {
        s->loc[l].int_vector = v & 0x0f;
    } else if (reg >= TIS_REG_STS && reg < TIS_REG_STS + 4) {
        tis_sts_write(s, reg - TIS_REG_STS, v);
    } else if (tis_is_fifo(reg)) {
        tis_fifo_write(s, v);
    }
}

static uint64_t tis_mmio_read(void *opaque, uint64_t offset, unsigned size)
{
    struct tpm_tis *s = opaque;
    uint64_t v = 0;
    for (unsigned i = 0; i < size; i++) {
        uint64_t at = offset + i;
        if (at >= PC_TPM_TIS_LEN)
            break;
        uint8_t b = tis_read_byte(s, (int)(at >> TIS_LOCALITY_SHIFT), (unsigned)(at & 0xfff));
        v |= (uint64_t)b << (8 * i);
    }
    return v;
}

static void tis_mmio_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    struct tpm_tis *s = opaque;
    for (unsigned i = 0; i < size; i++) {
        uint64_t at = offset + i;
        if (at >= PC_TPM_TIS_LEN)
            break;
        tis_write_byte(s, (int)(at >> TIS_LOCALITY_SHIFT), (unsigned)(at & 0xfff), (uint8_t)(value >> (8 * i)));
    }
}

static const struct io_ops g_tis_ops = {
    .read = tis_mmio_read,
    .write = tis_mmio_write,
    .min_access = 1,
    .max_access = 4,
};

/* ---- device ------------------------------------------------------------------------ */

void tpm_tis_attach_backend(struct pdm_dev *tis, const struct tpm_backend_ops *ops, void *backend)
{
    struct tpm_tis *s = pdm_dev_state(tis);
    if (s->ops) {
        s->ops->drain(s->backend);
        s->ops->destroy(s->backend);
    }
    s->ops = ops;
    s->backend = backend;
}

static void tis_reset(struct pdm_dev *dev)
{
    struct tpm_tis *s = pdm_dev_state(dev);
    /* A command from before the reset finishes first; its response goes nowhere. */
    if (s->ops)
        s->ops->drain(s->backend);
    s->active = -1;
    memset(s->loc, 0, sizeof(s->loc));
    tis_clear_buffer(s, TIS_IDLE);
    s->in_flight = s->abandoned = s->ready_after = false;
    /* A platform reset is a TPM_Init (PTP 3.x "TPM_Init"): the TPM waits for TPM2_Startup again. */
    if (s->ops) {
        int rc = s->ops->reset(s->backend);
        if (rc < 0)
            LOG_ERR("%s: TPM reset failed: %s", pdm_dev_name(dev), rt_err_str(rc));
    }
}

static int tis_construct(struct pdm_dev *dev, const struct pdm_cfg *cfg)
{
    static const char *const allowed[] = { "state_dir", NULL };
    struct tpm_tis *s = pdm_dev_state(dev);
    s->dev = dev;
    s->active = -1;
    int rc = pdm_cfg_validate(cfg, pdm_dev_name(dev), allowed);
    if (rc < 0)
        return rc;
    const char *state_dir = pdm_cfg_get_str(cfg, "state_dir", NULL);
    rc = mem_region_create_mmio(pdm_dev_vm(dev), pdm_dev_name(dev), PC_TPM_TIS_LEN, &g_tis_ops, s, &s->mmio);
    if (!rc)
        rc = mem_region_map(s->mmio, PC_TPM_TIS_BASE, 0);
    if (rc) {
        LOG_ERR("%s: cannot map the TPM registers at 0x%x: %s", pdm_dev_name(dev), PC_TPM_TIS_BASE,
                rt_err_str(rc));
        return rc;
    }
    if (state_dir) {
        const struct tpm_backend_ops *ops;
        void *backend;
        rc = tpm_swtpm_open(dev, state_dir, &ops, &backend);
        if (rc)
            return rc;
        s->ops = ops;
        s->backend = backend;
    }
    return 0;
}

static void tis_destroy(struct pdm_dev *dev)
{
    struct tpm_tis *s = pdm_dev_state(dev);
    if (s->ops) {
        s->ops->drain(s->backend);
        s->ops->destroy(s->backend);
    }
    s->ops = NULL;
    if (s->mmio)
        mem_region_destroy(s->mmio);
    s->mmio = NULL;
}

/* ---- saved state ------------------------------------------------------------------- */

static int tis_save(struct pdm_dev *dev, struct ssm *ssm)
{
    struct tpm_tis *s = pdm_dev_state(dev);
    /* A command with the backend completes first, so the file never holds one in flight. */
    if (s->ops)
        s->ops->drain(s->backend);
    ssm_put_u8(ssm, s->active < 0 ? 0xff : (uint8_t)s->active);
    for (unsigned i = 0; i < TIS_LOCALITIES; i++) {
        ssm_put_u32(ssm, s->loc[i].int_enable);
        ssm_put_u8(ssm, s->loc[i].int_vector);
        ssm_put_bool(ssm, s->loc[i].request);
        ssm_put_bool(ssm, s->loc[i].been_seized);
    }
    ssm_put_u8(ssm, (uint8_t)s->state);
    ssm_put_u32(ssm, s->len);
    ssm_put_u32(ssm, s->pos);
    ssm_put_bytes(ssm, s->buf, s->len);
    return ssm_status(ssm);
}

static int tis_load(struct pdm_dev *dev, struct ssm *ssm, uint32_t version)
{
    struct tpm_tis *s = pdm_dev_state(dev);
    if (version != TIS_SSM_VERSION)
        return VERR_SSM_VERSION;
    uint8_t active, state;
    struct tis_locality loc[TIS_LOCALITIES];
    uint32_t len, pos;
    ssm_get_u8(ssm, &active);
    for (unsigned i = 0; i < TIS_LOCALITIES; i++) {
        ssm_get_u32(ssm, &loc[i].int_enable);
        ssm_get_u8(ssm, &loc[i].int_vector);
        ssm_get_bool(ssm, &loc[i].request);
        ssm_get_bool(ssm, &loc[i].been_seized);
    }
    ssm_get_u8(ssm, &state);
    ssm_get_u32(ssm, &len);
    int rc = ssm_get_u32(ssm, &pos);
    if (rc || ssm_status(ssm))
        return VERR_SSM_CORRUPT;
    if ((active != 0xff && active >= TIS_LOCALITIES) || state >= TIS_STATE_COUNT || len > TPM_BUFFER_BYTES ||
        pos > len || (state != TIS_COMPLETION && pos != 0)) {
        LOG_ERR("%s: saved TPM interface state out of range", pdm_dev_name(dev));
        return VERR_SSM_CORRUPT;
    }
    for (unsigned i = 0; i < TIS_LOCALITIES; i++)
        if ((loc[i].int_enable & ~TIS_INT_ENABLE_MASK) || loc[i].int_vector > 0x0f)
            return VERR_SSM_CORRUPT;
    uint8_t buf[TPM_BUFFER_BYTES];
    if (ssm_get_bytes(ssm, buf, len))
        return VERR_SSM_CORRUPT;
    /* A command in execution (a state written by another build) runs again: it needs a whole, sane command. */
    if (state == TIS_EXECUTION && (len < 6 || !tis_cmd_size_ok(tpm_header_size(buf)) || len < tpm_header_size(buf)))
        return VERR_SSM_CORRUPT;
    if (state == TIS_EXECUTION && active == 0xff)
        return VERR_SSM_CORRUPT;
    if (s->ops)
        s->ops->drain(s->backend);
    s->active = active == 0xff ? -1 : active;
    memcpy(s->loc, loc, sizeof(loc));
    s->len = len;
    s->pos = pos;
    memcpy(s->buf, buf, len);
    s->in_flight = s->abandoned = s->ready_after = false;
    s->state = (enum tis_state)state;
    if (s->state == TIS_EXECUTION)
        tis_execute(s);
    return 0;
}

const struct pdm_dev_desc g_dev_tpm_tis = {
    .name = "tpm-tis",
    .description = "TPM 2.0, PTP FIFO (TIS) interface, five localities at 0xfed40000",
    .state_size = sizeof(struct tpm_tis),
    .ssm_version = TIS_SSM_VERSION,
    .construct = tis_construct,
    .reset = tis_reset,
    .save = tis_save,
    .load = tis_load,
    .destroy = tis_destroy,
};
