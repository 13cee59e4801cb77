/* ahci-port.c - one AHCI port: registers, the command list and FIS engine, COMRESET, NCQ bookkeeping, saved state. */

/*
 * A port fetches a command when its PxCI bit is set while PxCMD.ST is on (AHCI 1.3
 * section 5.3.2): the command header (4.2.2), then the command FIS from the command
 * table (4.2.3).  The device behind it runs one non-queued command at a time, or any
 * number of NCQ commands (READ/WRITE FPDMA QUEUED) but never both kinds at once, so a
 * slot that cannot start yet simply stays set in PxCI until the device is free.
 *
 * Results come back as the FISes the device would send, written to the received-FIS
 * area while PxCMD.FRE is set (4.2.1): a D2H register FIS, a PIO setup FIS for PIO
 * data-in (which carries the ending status, E_Status), a Set Device Bits FIS for NCQ
 * completions and asynchronous notification.  Errors (status ERR) set PxIS.TFES and
 * halt the command list until software clears PxCMD.ST (section 6.2.2).
 *
 * Commands still running when software clears ST, resets the port or the HBA are
 * marked aborted: their drive requests finish, but their results are dropped, and
 * PxCMD.CR stays set until the last of them is gone (the engine has not stopped).
 */

#include <stdlib.h>
#include <string.h>

#include "ahci-internal.h"
#include "vireo/rt.h"

#define LOG_COMPONENT "ahci"

/* Port state saved after the registers (version 1). */
#define AHCI_PORT_SSM_MAGIC 0x41484350u /* "AHCP" */

static uint64_t ahci_port_clb_gpa(const struct ahci_port *port)
{
    return (uint64_t)port->clbu << 32 | port->clb;
}

static uint64_t ahci_port_fb_gpa(const struct ahci_port *port)
{
    return (uint64_t)port->fbu << 32 | port->fb;
}

void ahci_port_raise(struct ahci_port *port, uint32_t is_bits)
{
    port->is |= is_bits;
    ahci_hba_update_irq(port->hba);
}

/* Received FISes land in the FIS area only while FIS receive is on (PxCMD.FRE, 3.3.7). */
static void ahci_port_post_fis(struct ahci_port *port, unsigned offset, const uint8_t *fis, size_t len)
{
    if (!(port->cmd & AHCI_PX_CMD_FRE))
        return;
    mem_write(port->hba->vm, ahci_port_fb_gpa(port) + offset, fis, len);
}

/* A D2H register FIS (SATA 10.3.6): PxTFD takes its status and error; I sets PxIS.DHRS. */
static void ahci_port_post_d2h(struct ahci_port *port, const struct ata_result *res, bool irq)
{
    uint8_t fis[20] = {FIS_TYPE_REG_D2H, irq ? 0x40 : 0x00, res->status, res->error};
    if (res->set_tf) {
        fis[4] = res->lba[0];
        fis[5] = res->lba[1];
        fis[6] = res->lba[2];
        fis[7] = res->device;
        fis[8] = res->lba[3];
        fis[9] = res->lba[4];
        fis[10] = res->lba[5];
        fis[12] = res->count;
        fis[13] = res->count_exp;
    }
    port->tfd = (uint32_t)res->error << 8 | res->status;
    ahci_port_post_fis(port, AHCI_RFIS_RFIS, fis, sizeof(fis));
    uint32_t bits = irq ? AHCI_PX_IS_DHRS : 0;
    if (res->status & ATA_STAT_ERR)
        bits |= AHCI_PX_IS_TFES;
    if (bits)
        ahci_port_raise(port, bits);
}

/*
 * A PIO setup FIS (SATA 10.3.11) for a whole transfer: status with DRQ during the
 * data phase, E_Status the status after it, transfer count, direction D (1: to the
 * host).  With I set the HBA sets PxIS.PSS.  After a data-in transfer PxTFD holds
 * E_Status (AHCI 5.3.8.3).
 */
static void ahci_port_post_pio_setup(struct ahci_port *port, bool to_host, const struct ata_result *res,
                                     uint64_t bytes, bool irq)
{
    uint16_t tc = bytes > 0xffff ? 0xfffe : (uint16_t)bytes;
    uint8_t fis[20] = {FIS_TYPE_PIO_SETUP, (uint8_t)((to_host ? 0x20 : 0) | (irq ? 0x40 : 0)),
                       (uint8_t)((res->status & ~ATA_STAT_BSY) | ATA_STAT_DRQ), res->error};
    fis[15] = res->status;
    fis[16] = (uint8_t)tc;
    fis[17] = (uint8_t)(tc >> 8);
    ahci_port_post_fis(port, AHCI_RFIS_PSFIS, fis, sizeof(fis));
    if (to_host)
        port->tfd = (uint32_t)res->error << 8 | res->status;
    if (irq)
        ahci_port_raise(port, AHCI_PX_IS_PSS);
}

/*
 * A Set Device Bits FIS (SATA 10.3.8): SActive bits clear in PxSACT, status bits 6:4
 * and 2:0 and the error go to PxTFD (AHCI 5.3.9.1); N is a notification (PxSNTF).
 */
static void ahci_port_post_sdb(struct ahci_port *port, uint8_t status, uint8_t error, uint32_t sactive, bool irq,
                               bool notify)
{
    uint8_t fis[8] = {FIS_TYPE_SDB, (uint8_t)((irq ? 0x40 : 0) | (notify ? 0x80 : 0)), (uint8_t)(status & 0x77),
                      error};
    fis[4] = (uint8_t)sactive;
    fis[5] = (uint8_t)(sactive >> 8);
    fis[6] = (uint8_t)(sactive >> 16);
    fis[7] = (uint8_t)(sactive >> 24);
    ahci_port_post_fis(port, AHCI_RFIS_SDBFIS, fis, sizeof(fis));
    port->sact &= ~sactive;
    port->tfd = (port->tfd & 0x88u) | (status & 0x77u) | (uint32_t)error << 8;
    uint32_t bits = irq ? AHCI_PX_IS_SDBS : 0;
    if (status & ATA_STAT_ERR)
        bits |= AHCI_PX_IS_TFES;
    if (bits)
        ahci_port_raise(port, bits);
}

/* ---- Command slots ------------------------------------------------------------------------ */

static void ahci_cmd_release(struct ahci_cmd *c)
{
    struct ahci_port *port = c->port;
    uint32_t bit = 1u << c->slot;
    free(c->sg);
    c->sg = NULL;
    c->sg_count = 0;
    free(c->buf);
    c->buf = NULL;
    if (c->proto != AHCI_PROTO_NCQ)
        port->nonq_active = false;
    port->busy &= ~bit;
    /* The engine has stopped once ST is off and nothing is left running (3.3.7, CR). */
    if (!(port->cmd & AHCI_PX_CMD_ST) && port->busy == 0)
        port->cmd &= ~AHCI_PX_CMD_CR;
}

/* Drops the results of every running command (ST cleared, COMRESET, reset). */
static void ahci_port_abort_all(struct ahci_port *port)
{
    for (unsigned s = 0; s < AHCI_SLOTS; s++)
        if (port->busy & (1u << s))
            port->cmds[s].aborted = true;
    port->ncq_tags = 0;
}

bool ahci_cmd_map(struct ahci_cmd *c, uint64_t need)
{
    struct vm *vm = c->port->hba->vm;
    free(c->sg);
    c->sg = NULL;
    c->sg_count = 0;
    c->sg_bytes = 0;
    if (need == 0)
        return true;
    /* Only as many entries as the transfer needs; PRDTL is 16 bits wide, so at most 65535. */
    unsigned cap = 0;
    uint8_t chunk[16 * AHCI_PRD_BYTES];
    for (unsigned i = 0; i < c->prdtl && c->sg_bytes < need; i++) {
        unsigned k = i % 16;
        if (k == 0) {
            unsigned n = c->prdtl - i < 16 ? c->prdtl - i : 16;
            mem_read(vm, c->ctba + AHCI_CT_PRDT + (uint64_t)i * AHCI_PRD_BYTES, chunk, n * AHCI_PRD_BYTES);
        }
        const uint8_t *e = chunk + k * AHCI_PRD_BYTES;
        uint64_t dba = (uint64_t)ahci_le32(e) | (uint64_t)ahci_le32(e + 4) << 32;
        uint32_t dw3 = ahci_le32(e + 12);
        /* DBA is word aligned and DBC's bit 0 is always one: byte counts are even (4.2.3.3). */
        uint64_t len = (uint64_t)((dw3 & AHCI_PRD_DBC_MASK) | 1u) + 1;
        if (c->sg_count == cap) {
            cap = cap ? cap * 2 : 16;
            struct drive_sg *n = realloc(c->sg, cap * sizeof(*n));
            if (!n)
                return false;
            c->sg = n;
        }
        c->sg[c->sg_count].gpa = dba & ~1ull;
        c->sg[c->sg_count].len = len;
        c->sg_count++;
        c->sg_bytes += len;
        if (dw3 & AHCI_PRD_I)
            c->prd_irq = true;
    }
    return c->sg_bytes >= need;
}

static uint64_t ahci_cmd_copy(struct ahci_cmd *c, void *buf, uint64_t len, bool to_guest)
{
    struct vm *vm = c->port->hba->vm;
    uint64_t done = 0;
    for (unsigned i = 0; i < c->sg_count && done < len; i++) {
        uint64_t n = c->sg[i].len < len - done ? c->sg[i].len : len - done;
        if (to_guest)
            mem_write(vm, c->sg[i].gpa, (uint8_t *)buf + done, n);
        else
            mem_read(vm, c->sg[i].gpa, (uint8_t *)buf + done, n);
        done += n;
    }
    return done;
}

uint64_t ahci_cmd_copy_to_guest(struct ahci_cmd *c, const void *buf, uint64_t len)
{
    return ahci_cmd_copy(c, (void *)buf, len, true);
}

uint64_t ahci_cmd_copy_from_guest(struct ahci_cmd *c, void *buf, uint64_t len)
{
    return ahci_cmd_copy(c, buf, len, false);
}

void ahci_cmd_ncq_accept(struct ahci_cmd *c)
{
    struct ahci_port *port = c->port;
    port->ncq_tags |= 1u << c->tag;
    port->ci &= ~(1u << c->slot);
    /* The device clears BSY with a D2H register FIS whose I bit is clear (SATA 13.6.4). */
    struct ata_result res = {.status = ATA_STAT_DRDY | ATA_STAT_DSC};
    ahci_port_post_d2h(port, &res, false);
}

static void ahci_cmd_finish_ncq(struct ahci_cmd *c, const struct ata_result *res)
{
    struct ahci_port *port = c->port;
    uint32_t tagbit = 1u << c->tag;
    if (!(res->status & ATA_STAT_ERR)) {
        port->ncq_tags &= ~tagbit;
        ahci_port_post_sdb(port, res->status, 0, tagbit, true, false);
        return;
    }
    /*
     * NCQ error (SATA 13.6.3.2): the device aborts every outstanding queued command,
     * reports ERR in a Set Device Bits FIS that clears no SActive bit and keeps the
     * failed command in log page 10h until software reads it.
     */
    memset(port->ncq_log, 0, sizeof(port->ncq_log));
    port->ncq_log[0] = (uint8_t)c->tag;
    port->ncq_log[2] = res->status;
    port->ncq_log[3] = res->error;
    for (unsigned i = 0; i < 3; i++) {
        port->ncq_log[4 + i] = (uint8_t)(c->ata.lba >> (8 * i));
        port->ncq_log[8 + i] = (uint8_t)(c->ata.lba >> (24 + 8 * i));
    }
    port->ncq_log[7] = ATA_DEV_LBA;
    port->ncq_log[12] = (uint8_t)c->ata.sectors;
    port->ncq_log[13] = (uint8_t)(c->ata.sectors >> 8);
    port->ncq_error = true;
    ahci_port_abort_all(port);
    port->halted = true;
    ahci_port_post_sdb(port, res->status, res->error, 0, true, false);
}

void ahci_cmd_finish(struct ahci_cmd *c, const struct ata_result *res)
{
    struct ahci_port *port = c->port;
    uint32_t bit = 1u << c->slot;
    if (c->aborted) {
        ahci_cmd_release(c);
        return;
    }
    bool failed = res->status & ATA_STAT_ERR;
    /* PRDBC: bytes moved (4.2.2, DW1). */
    uint8_t prdbc[4];
    ahci_put_le32(prdbc, (uint32_t)(failed ? 0 : c->done_bytes));
    mem_write(port->hba->vm, ahci_port_clb_gpa(port) + c->slot * 32u + 4, prdbc, sizeof(prdbc));
    if (c->prd_irq && !failed)
        port->is |= AHCI_PX_IS_DPS;

    if (c->proto == AHCI_PROTO_NCQ) {
        ahci_cmd_finish_ncq(c, res);
        ahci_cmd_release(c);
        return;
    }
    if (failed) {
        /* Non-queued error (6.2.2.1): PxCI keeps the failed slot; the list halts until ST is cleared. */
        port->halted = true;
        ahci_port_post_d2h(port, res, true);
    } else if (c->proto == AHCI_PROTO_PIO_IN) {
        port->ci &= ~bit;
        ahci_port_post_pio_setup(port, true, res, c->done_bytes, true);
    } else {
        port->ci &= ~bit;
        if (c->proto == AHCI_PROTO_PIO_OUT)
            ahci_port_post_pio_setup(port, false, res, c->done_bytes, false);
        else if (c->proto == AHCI_PROTO_PACKET_PIO_IN && c->done_bytes)
            ahci_port_post_pio_setup(port, true, res, c->done_bytes, true);
        ahci_port_post_d2h(port, res, true);
    }
    ahci_cmd_release(c);
}

/* ---- Fetching commands -------------------------------------------------------------------- */

/* An H2D register FIS with C clear updates the device control register (SRST, SATA 10.3.5). */
static void ahci_port_control_fis(struct ahci_port *port, const uint8_t *cfis)
{
    uint8_t control = cfis[15];
    if (control & ATA_CTL_SRST) {
        port->srst = true;
        port->tfd = ATA_STAT_BSY;
        return;
    }
    if (!port->srst)
        return;
    /* SRST released: the device resets and sends its signature (ATA8-ACS 6.2, software reset). */
    port->srst = false;
    ata_dev_reset(&port->ata, false);
    if (port->atapi)
        atapi_dev_reset(&port->cd);
    struct ata_result res;
    ahci_port_signature(port, &res);
    port->sig = (uint32_t)res.count | (uint32_t)res.lba[0] << 8 | (uint32_t)res.lba[1] << 16 |
                (uint32_t)res.lba[2] << 24;
    ahci_port_post_d2h(port, &res, false);
}

/* Whether the slot's command may start now; reads its header and FIS into c when so. */
static bool ahci_port_fetch(struct ahci_port *port, struct ahci_cmd *c)
{
    struct vm *vm = port->hba->vm;
    uint8_t hdr[16];
    mem_read(vm, ahci_port_clb_gpa(port) + c->slot * 32u, hdr, sizeof(hdr));
    uint32_t dw0 = ahci_le32(hdr);
    uint64_t ctba = ((uint64_t)ahci_le32(hdr + 8) | (uint64_t)ahci_le32(hdr + 12) << 32) & ~0x7full;
    uint8_t cfis[20];
    mem_read(vm, ctba + AHCI_CT_CFIS, cfis, sizeof(cfis));
    /* A register FIS is five dwords (CFL, 4.2.2): a shorter one reaches the device malformed. */
    if ((dw0 & AHCI_HDR_CFL_MASK) < 5)
        cfis[0] = 0;
    bool ncq = cfis[0] == FIS_TYPE_REG_H2D && (cfis[1] & 0x80) &&
               (cfis[2] == 0x60 || cfis[2] == 0x61);
    /* One non-queued command at a time, and never beside queued ones (SATA 13.6.1). */
    if (port->nonq_active || (!ncq && port->ncq_tags))
        return false;
    memset(&c->ata, 0, sizeof(c->ata));
    memcpy(c->cfis, cfis, sizeof(cfis));
    c->ctba = ctba;
    c->prdtl = dw0 >> AHCI_HDR_PRDTL_SHIFT;
    c->is_write = dw0 & AHCI_HDR_W;
    c->tag = ncq ? (cfis[12] >> 3) & 31u : c->slot;
    c->proto = ncq ? AHCI_PROTO_NCQ : AHCI_PROTO_NONDATA;
    c->aborted = false;
    c->prd_irq = false;
    c->fua = false;
    c->stage = 0;
    c->done_bytes = 0;
    c->sg_bytes = 0;
    c->buf_len = c->buf_pos = 0;
    if (dw0 & AHCI_HDR_A)
        mem_read(vm, ctba + AHCI_CT_ACMD, c->acmd, sizeof(c->acmd));
    else
        memset(c->acmd, 0, sizeof(c->acmd));
    return true;
}

static bool ahci_port_can_run(const struct ahci_port *port)
{
    return (port->cmd & AHCI_PX_CMD_ST) && !port->halted && !port->comreset && !port->hba->quiesce &&
           port->drive && pci_dev_is_bus_master(port->hba->pci);
}

void ahci_port_process(struct ahci_port *port)
{
    bool progress = true;
    while (progress && ahci_port_can_run(port)) {
        progress = false;
        uint32_t ready = port->ci & ~port->busy;
        for (unsigned s = 0; s < AHCI_SLOTS && ready && ahci_port_can_run(port); s++) {
            uint32_t bit = 1u << s;
            if (!(ready & bit))
                continue;
            ready &= ~bit;
            struct ahci_cmd *c = &port->cmds[s];
            if (!ahci_port_fetch(port, c))
                continue;
            progress = true;
            port->last_slot = s;
            if (c->cfis[0] == FIS_TYPE_REG_H2D && !(c->cfis[1] & 0x80)) {
                /* Control FISes need no answer: the slot is free once the FIS is sent. */
                port->ci &= ~bit;
                ahci_port_control_fis(port, c->cfis);
                continue;
            }
            port->busy |= bit;
            if (c->proto != AHCI_PROTO_NCQ) {
                port->nonq_active = true;
                port->tfd = (port->tfd & ~0xffu) | ATA_STAT_BSY | ATA_STAT_DRDY;
            }
            if (c->cfis[0] != FIS_TYPE_REG_H2D) {
                /* Not a command FIS: the device rejects it. */
                struct ata_result res;
                ata_result_abort(&port->ata, &res);
                ahci_cmd_finish(c, &res);
                continue;
            }
            ahci_ata_execute(c);
        }
    }
}

void ahci_port_drain(struct ahci_port *port)
{
    /* A completion may submit a follow-up request (FUA flush, the next TRIM range). */
    while (port->drive && drive_inflight(port->drive))
        drive_drain(port->drive);
}

/* ---- Link and device reset ---------------------------------------------------------------- */

void ahci_port_signature(struct ahci_port *port, struct ata_result *res)
{
    memset(res, 0, sizeof(*res));
    ata_set_signature(&port->ata, res);
    res->set_tf = true;
    /* After reset a disk is ready; a packet device leaves DRDY clear (ATA8-ACS 9.12). */
    res->status = port->atapi ? 0 : ATA_STAT_DRDY | ATA_STAT_DSC;
    res->error = 0x01;
}

/* The link comes up after COMRESET: the device resets and sends its signature (AHCI 10.4.2). */
static void ahci_port_link_up(struct ahci_port *port)
{
    port->comreset = false;
    port->srst = false;
    port->ncq_error = false;
    port->an_enabled = false;
    if (!port->drive) {
        port->ssts = 0;
        port->tfd = AHCI_TFD_NO_DEVICE;
        port->sig = 0xffffffffu;
        return;
    }
    ata_dev_reset(&port->ata, true);
    if (port->atapi)
        atapi_dev_reset(&port->cd);
    port->ssts = AHCI_SSTS_ONLINE;
    struct ata_result res;
    ahci_port_signature(port, &res);
    port->sig = (uint32_t)res.count | (uint32_t)res.lba[0] << 8 | (uint32_t)res.lba[1] << 16 |
                (uint32_t)res.lba[2] << 24;
    ahci_port_post_d2h(port, &res, false);
}

void ahci_port_reset(struct ahci_port *port, bool hba_reset)
{
    ahci_port_abort_all(port);
    if (!hba_reset)
        port->clb = port->clbu = port->fb = port->fbu = 0;
    port->is = port->ie = 0;
    port->cmd = 0;
    port->sctl = port->serr = port->sact = port->ci = port->sntf = 0;
    port->halted = false;
    port->last_slot = 0;
    port->tfd = AHCI_TFD_NO_DEVICE;
    ahci_port_link_up(port);
}

static void ahci_port_sctl_write(struct ahci_port *port, uint32_t value)
{
    uint32_t old_det = port->sctl & AHCI_SCTL_DET_MASK;
    uint32_t det = value & AHCI_SCTL_DET_MASK;
    port->sctl = value & 0xfffu;
    if (det == old_det)
        return;
    if (det == 1 || det == 4) {
        /* COMRESET asserted (or the PHY disabled): the device is reset, the link is down. */
        ahci_port_abort_all(port);
        port->comreset = true;
        port->hba->quiesce = true;
        ahci_port_drain(port);
        port->hba->quiesce = false;
        port->ssts = det == 4 ? 4 : 0;
        port->tfd = port->drive ? ATA_STAT_BSY : AHCI_TFD_NO_DEVICE;
        return;
    }
    if (det == 0 && port->comreset)
        ahci_port_link_up(port);
}

static void ahci_port_cmd_write(struct ahci_port *port, uint32_t value)
{
    uint32_t old = port->cmd;
    uint32_t keep = old & (AHCI_PX_CMD_CR | AHCI_PX_CMD_FR | AHCI_PX_CMD_CCS_MASK);
    port->cmd = keep | (value & (AHCI_PX_CMD_ST | AHCI_PX_CMD_FRE | AHCI_PX_CMD_ATAPI | AHCI_PX_CMD_DLAE));

    /* FIS receive follows FRE at once (FR, 3.3.7). */
    if (port->cmd & AHCI_PX_CMD_FRE)
        port->cmd |= AHCI_PX_CMD_FR;
    else
        port->cmd &= ~AHCI_PX_CMD_FR;

    /* Command list override: BSY and DRQ clear so software can send a reset FIS (3.3.7, CLO). */
    if (value & AHCI_PX_CMD_CLO)
        port->tfd &= ~(uint32_t)(ATA_STAT_BSY | ATA_STAT_DRQ);

    if ((value & AHCI_PX_CMD_ST) && !(old & AHCI_PX_CMD_ST)) {
        port->cmd |= AHCI_PX_CMD_CR;
        port->halted = false;
    } else if (!(value & AHCI_PX_CMD_ST) && (old & AHCI_PX_CMD_ST)) {
        /* Stopping clears PxCI, PxSACT and CCS (3.3.14, 3.3.13, 3.3.7). */
        port->ci = 0;
        port->sact = 0;
        port->halted = false;
        port->cmd &= ~AHCI_PX_CMD_CCS_MASK;
        ahci_port_abort_all(port);
        if (port->busy == 0)
            port->cmd &= ~AHCI_PX_CMD_CR;
    }
    ahci_port_process(port);
}

uint32_t ahci_port_read(struct ahci_port *port, unsigned offset)
{
    switch (offset) {
    case AHCI_PX_CLB:
        return port->clb;
    case AHCI_PX_CLBU:
        return port->clbu;
    case AHCI_PX_FB:
        return port->fb;
    case AHCI_PX_FBU:
        return port->fbu;
    case AHCI_PX_IS:
        return port->is;
    case AHCI_PX_IE:
        return port->ie;
    case AHCI_PX_CMD: {
        /* SUD and POD read one without staggered spin-up and cold presence detection. */
        uint32_t v = port->cmd | AHCI_PX_CMD_SUD | AHCI_PX_CMD_POD;
        if (port->cmd & AHCI_PX_CMD_ST)
            v = (v & ~AHCI_PX_CMD_CCS_MASK) | port->last_slot << AHCI_PX_CMD_CCS_SHIFT;
        return v;
    }
    case AHCI_PX_TFD:
        return port->tfd;
    case AHCI_PX_SIG:
        return port->sig;
    case AHCI_PX_SSTS:
        return port->ssts;
    case AHCI_PX_SCTL:
        return port->sctl;
    case AHCI_PX_SERR:
        return port->serr;
    case AHCI_PX_SACT:
        return port->sact;
    case AHCI_PX_CI:
        return port->ci;
    case AHCI_PX_SNTF:
        return port->sntf;
    default:
        /* FBS and DEVSLP are absent (CAP.FBSS, CAP2.SDS clear); the rest is reserved. */
        return 0;
    }
}

void ahci_port_write(struct ahci_port *port, unsigned offset, uint32_t value)
{
    switch (offset) {
    case AHCI_PX_CLB:
        port->clb = value & ~0x3ffu; /* 1 KiB aligned */
        break;
    case AHCI_PX_CLBU:
        port->clbu = value;
        break;
    case AHCI_PX_FB:
        port->fb = value & ~0xffu; /* 256-byte aligned */
        break;
    case AHCI_PX_FBU:
        port->fbu = value;
        break;
    case AHCI_PX_IS:
        port->is &= ~(value & AHCI_PX_IS_W1C);
        ahci_hba_update_irq(port->hba);
        break;
    case AHCI_PX_IE:
        port->ie = value & AHCI_PX_IE_MASK;
        ahci_hba_update_irq(port->hba);
        break;
    case AHCI_PX_CMD:
        ahci_port_cmd_write(port, value);
        break;
    case AHCI_PX_SCTL:
        ahci_port_sctl_write(port, value);
        break;
    case AHCI_PX_SERR:
        port->serr &= ~value;
        break;
    case AHCI_PX_SACT:
        /* Software sets bits only while the list runs; the HBA clears them (3.3.13). */
        if (port->cmd & AHCI_PX_CMD_ST)
            port->sact |= value;
        break;
    case AHCI_PX_CI:
        if (port->cmd & AHCI_PX_CMD_ST) {
            port->ci |= value;
            ahci_port_process(port);
        }
        break;
    case AHCI_PX_SNTF:
        port->sntf &= ~(value & 0xffffu);
        break;
    default:
        break;
    }
}

/* Asynchronous notification of a media change (SATA 13.8, AHCI 3.3.14): PxSNTF and an SDB FIS with N. */
void ahci_port_media_changed(void *opaque)
{
    struct ahci_port *port = opaque;
    if (!port->an_enabled || port->comreset || !port->drive)
        return;
    port->sntf |= 1u; /* the device sits behind PM port 0 (no port multiplier) */
    ahci_port_post_sdb(port, (uint8_t)port->tfd, (uint8_t)(port->tfd >> 8), 0, true, true);
}

/* ---- Saved state -------------------------------------------------------------------------- */

int ahci_port_save(struct ahci_port *port, struct ssm *ssm)
{
    ssm_put_u32(ssm, AHCI_PORT_SSM_MAGIC);
    ssm_put_u8(ssm, port->drive ? (port->atapi ? 2 : 1) : 0);
    const uint32_t regs[] = {port->clb, port->clbu, port->fb, port->fbu, port->is, port->ie, port->cmd,
                             port->tfd, port->sig, port->ssts, port->sctl, port->serr, port->sact, port->ci,
                             port->sntf, port->last_slot};
    for (unsigned i = 0; i < sizeof(regs) / sizeof(regs[0]); i++)
        ssm_put_u32(ssm, regs[i]);
    ssm_put_bool(ssm, port->halted);
    ssm_put_bool(ssm, port->comreset);
    ssm_put_bool(ssm, port->srst);
    ssm_put_bool(ssm, port->ncq_error);
    ssm_put_bool(ssm, port->an_enabled);
    ssm_put_bytes(ssm, port->ncq_log, sizeof(port->ncq_log));
    ata_dev_save(&port->ata, ssm);
    if (port->atapi)
        atapi_dev_save(&port->cd, ssm);
    return ssm_status(ssm);
}

int ahci_port_load(struct ahci_port *port, struct ssm *ssm, uint32_t version)
{
    uint32_t magic = 0;
    uint8_t kind = 0xff;
    ssm_get_u32(ssm, &magic);
    ssm_get_u8(ssm, &kind);
    int rc = ssm_status(ssm);
    if (rc)
        return rc;
    uint8_t want = port->drive ? (port->atapi ? 2 : 1) : 0;
    if (magic != AHCI_PORT_SSM_MAGIC || kind != want) {
        LOG_ERR("port %u: saved state has a different device on this port", port->index);
        return VERR_SSM_CORRUPT;
    }
    uint32_t r[16];
    for (unsigned i = 0; i < 16; i++)
        ssm_get_u32(ssm, &r[i]);
    bool halted = false, comreset = false, srst = false, ncq_error = false, an = false;
    ssm_get_bool(ssm, &halted);
    ssm_get_bool(ssm, &comreset);
    ssm_get_bool(ssm, &srst);
    ssm_get_bool(ssm, &ncq_error);
    ssm_get_bool(ssm, &an);
    uint8_t log[sizeof(port->ncq_log)];
    ssm_get_bytes(ssm, log, sizeof(log));
    rc = ssm_status(ssm);
    if (!rc)
        rc = ata_dev_load(&port->ata, ssm);
    if (!rc && port->atapi)
        rc = atapi_dev_load(&port->cd, ssm, version >= 2);
    if (rc)
        return rc;
    port->clb = r[0] & ~0x3ffu;
    port->clbu = r[1];
    port->fb = r[2] & ~0xffu;
    port->fbu = r[3];
    port->is = r[4];
    port->ie = r[5] & AHCI_PX_IE_MASK;
    /* Nothing runs after a load: CR follows ST, FR follows FRE. */
    port->cmd = r[6] & (AHCI_PX_CMD_ST | AHCI_PX_CMD_FRE | AHCI_PX_CMD_ATAPI | AHCI_PX_CMD_DLAE);
    if (port->cmd & AHCI_PX_CMD_ST)
        port->cmd |= AHCI_PX_CMD_CR;
    if (port->cmd & AHCI_PX_CMD_FRE)
        port->cmd |= AHCI_PX_CMD_FR;
    port->tfd = r[7] & 0xffffu;
    port->sig = r[8];
    port->ssts = r[9] & 0xfffu;
    port->sctl = r[10] & 0xfffu;
    port->serr = r[11];
    port->sact = r[12];
    port->ci = r[13];
    port->sntf = r[14] & 0xffffu;
    port->last_slot = r[15] & 31u;
    port->halted = halted;
    port->comreset = comreset;
    port->srst = srst;
    port->ncq_error = ncq_error;
    port->an_enabled = an;
    memcpy(port->ncq_log, log, sizeof(log));
    port->busy = 0;
    port->ncq_tags = 0;
    port->nonq_active = false;
    return 0;
}
