/* ide.c - the PIIX3 IDE controller (PCI 8086:7010): two legacy channels, task-file registers, PIO, ATA and ATAPI commands. */

/*
 * Design: the controller is PCI function 1 of the PIIX3 in legacy ("compatibility")
 * mode: each channel decodes its fixed command block (0x1F0/0x170) and control port
 * (0x3F6/0x376) while IDETIM bit 15 enables it, and interrupts on ISA IRQ 14/15 as an
 * edge; BAR4 holds the bus-master registers (ide-dma.c).  Each device keeps its own
 * copy of the task file, since both devices latch every register write but only the
 * addressed one shows a command's outputs (signatures, error addresses).
 *
 * A channel runs one command at a time (`phase`): decoded by ata.c (or, for PACKET,
 * by atapi.c once the 12 command bytes arrived), its data moves through the channel
 * buffer one DRQ block at a time for PIO, or through the PRD table for DMA.  Medium
 * reads for PIO fill the buffer in chunks of up to IDE_BUF_BYTES and the host takes
 * them block by block; PIO writes go to the drive one DRQ block at a time.  While a
 * drive request is in flight the addressed device shows BSY and register writes are
 * ignored (ATA/ATAPI-6 7.15.6.1), and the request's done() moves the command on.
 * Reset, saved state and destroy drain the drives first, so their state never holds
 * a request in flight.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ide-internal.h"
#include "vireo/devices.h"
#include "vireo/err.h"
#include "vireo/rt.h"

#define LOG_COMPONENT "ide"

#define IDE_SSM_VERSION 2 /* 2: the CD tray lock */

/* Config registers of the PIIX3 IDE function (PIIX3 datasheet 2.3). */
#define IDE_CFG_IDETIM0   0x40
#define IDE_CFG_IDETIM1   0x42
#define IDE_CFG_SIDETIM   0x44
#define IDE_IDETIM_DECODE 0x8000
#define IDE_BM_BAR        4
#define IDE_BM_BYTES      16

/* Command block register offsets (ATA/ATAPI-6 7.1). */
enum {
    IDE_REG_DATA = 0,
    IDE_REG_ERROR = 1, /* features on write */
    IDE_REG_COUNT = 2,
    IDE_REG_LBAL = 3,
    IDE_REG_LBAM = 4,
    IDE_REG_LBAH = 5,
    IDE_REG_DEVICE = 6,
    IDE_REG_STATUS = 7, /* command on write */
};

static const uint16_t g_cmd_ports[IDE_CHANNELS] = {0x1f0, 0x170};
static const uint16_t g_ctl_ports[IDE_CHANNELS] = {0x3f6, 0x376};
static const unsigned g_ide_irqs[IDE_CHANNELS] = {14, 15};
static const char *const g_ide_prefixes[IDE_CHANNELS * IDE_DEVICES] = {"p0m", "p0s", "p1m", "p1s"};

/* ---- Interrupts --------------------------------------------------------------------------- */

void ide_irq_update(struct ide_channel *ch)
{
    /* INTRQ is driven by the selected device only, and released while nIEN is set (7.8). */
    const struct ide_dev *d = &ch->dev[ch->sel];
    bool level = d->drive && d->irq_pending && !(ch->control & ATA_CTL_NIEN);
    if (level != ch->irq_level) {
        ch->irq_level = level;
        pdm_irq_set(ch->irq, level);
    }
}

static void ide_dev_irq(struct ide_dev *d)
{
    struct ide_channel *ch = d->ch;
    d->irq_pending = true;
    /* BMISx bit 2 follows the device's interrupt whether or not the host masks it (PIIX3 2.7.2). */
    ch->bmis |= IDE_BMIS_INT;
    ide_irq_update(ch);
}

void ide_irq_raise(struct ide_channel *ch)
{
    ide_dev_irq(&ch->dev[ch->active]);
}

/* ---- Command completion -------------------------------------------------------------------- */

static void ide_cmd_end(struct ide_channel *ch)
{
    ch->phase = IDE_PHASE_IDLE;
    ch->buf_pos = ch->block_end = ch->buf_len = 0;
    ch->flush_pending = false;
    if (ch->dma_running)
        ide_dma_reset(ch);
}

void ide_cmd_finish(struct ide_channel *ch, const struct ata_result *res, bool irq)
{
    struct ide_dev *d = &ch->dev[ch->active];
    d->status = res->status;
    d->error = res->error;
    if (res->set_tf) {
        d->count = res->count;
        d->hob_count = res->count_exp;
        d->lbal = res->lba[0];
        d->lbam = res->lba[1];
        d->lbah = res->lba[2];
        d->hob_lbal = res->lba[3];
        d->hob_lbam = res->lba[4];
        d->hob_lbah = res->lba[5];
        /* The DEV bit is the host's selection, not a command output. */
        d->device = (uint8_t)((res->device & ~ATA_DEV_DEV) | (d->device & ATA_DEV_DEV));
    }
    ide_cmd_end(ch);
    if (irq)
        ide_dev_irq(d);
}

void ide_packet_finish(struct ide_channel *ch, bool check)
{
    struct ide_dev *d = &ch->dev[ch->active];
    /* Status phase of the packet protocol (ATA/ATAPI-6 9.10): CoD and IO set, then the interrupt. */
    d->count = ATA_IREASON_COD | ATA_IREASON_IO;
    d->status = ATA_STAT_DRDY | (check ? ATA_STAT_ERR : 0);
    d->error = check ? atapi_error_reg(&d->atapi) : 0;
    ide_cmd_end(ch);
    ide_dev_irq(d);
}

/* An ATA medium transfer ended: status from the drive, done_bytes moved before the failure. */
static void ide_ata_done(struct ide_channel *ch, int status)
{
    struct ide_dev *d = &ch->dev[ch->active];
    ata_cmd_complete(&d->ata, &ch->cmd, status, (uint32_t)(ch->xfer_done / ATA_SECTOR_BYTES));
    ide_cmd_finish(ch, &ch->cmd.res, true);
}

/* ---- Drive requests ------------------------------------------------------------------------ */

static void ide_req_done(struct drive_req *req, int status);

uint64_t ide_medium_base(const struct ide_channel *ch)
{
    return ch->packet ? ch->acmd.offset_bytes : ch->cmd.lba * ATA_SECTOR_BYTES;
}

/* A request failed or finished: what it means for the command. */
static void ide_req_failed(struct ide_channel *ch, int status)
{
    struct ide_dev *d = &ch->dev[ch->active];
    if (ch->packet) {
        atapi_read_done(&d->atapi, &ch->acmd, status);
        ide_packet_finish(ch, true);
    } else {
        ide_ata_done(ch, status);
    }
}

/* Submits the channel's request; a refusal ends the command at once with the drive's reason. */
void ide_submit(struct ide_channel *ch, enum ide_req_kind kind, enum blk_op op, uint64_t offset, uint64_t len, void *buf,
                const struct drive_sg *sg, unsigned sg_count)
{
    struct ide_dev *d = &ch->dev[ch->active];
    memset(&ch->req, 0, sizeof(ch->req));
    ch->req.op = op;
    ch->req.offset_bytes = offset;
    ch->req.len_bytes = len;
    ch->req.buf = buf;
    ch->req.sg = sg;
    ch->req.sg_count = sg_count;
    ch->req.done = ide_req_done;
    ch->req.opaque = ch;
    ch->req_kind = kind;
    ch->phase = IDE_PHASE_BUSY;
    d->status = ATA_STAT_BSY;
    ch->req_busy = true;
    int rc = drive_submit(d->drive, &ch->req);
    if (rc) {
        ch->req_busy = false;
        if (kind == IDE_REQ_DMA)
            ide_dma_chunk_done(ch, rc);
        else
            ide_req_failed(ch, rc);
    }
}

static void ide_submit_flush(struct ide_channel *ch)
{
    ch->flush_pending = false;
    ide_submit(ch, IDE_REQ_FLUSH, BLK_OP_FLUSH, 0, 0, NULL, NULL, 0);
}

void ide_transfer_done(struct ide_channel *ch, int status)
{
    if (status)
        ide_req_failed(ch, status);
    else if (ch->packet)
        ide_packet_finish(ch, false);
    else if (ch->cmd.fua)
        ide_submit_flush(ch);
    else
        ide_ata_done(ch, 0);
}

/* Reads the next chunk of a PIO read into the buffer. */
static void ide_pio_fetch(struct ide_channel *ch)
{
    uint64_t chunk = RT_MIN(ch->xfer_total - ch->xfer_done, (uint64_t)IDE_BUF_BYTES);
    ch->buf_len = 0;
    ch->buf_pos = 0;
    ide_submit(ch, IDE_REQ_PIO_READ, BLK_OP_READ, ide_medium_base(ch) + ch->xfer_done, chunk, ch->buf, NULL, 0);
}

/* ---- PIO ----------------------------------------------------------------------------------------- */

/* The next DRQ block of a data-in command, from the buffer at buf_pos. */
static void ide_pio_in_block(struct ide_channel *ch)
{
    struct ide_dev *d = &ch->dev[ch->active];
    uint32_t avail = ch->buf_len - ch->buf_pos;
    uint32_t n;
    if (ch->packet) {
        /* 9.10: at most the byte count limit per DRQ block, told to the host in LBA mid/high. */
        n = RT_MIN(avail, (uint32_t)ch->bcl);
        d->lbam = (uint8_t)n;
        d->lbah = (uint8_t)(n >> 8);
        d->count = ATA_IREASON_IO;
    } else {
        n = RT_MIN(avail, ch->cmd.block_sectors * ATA_SECTOR_BYTES);
    }
    ch->block_end = ch->buf_pos + n;
    ch->phase = IDE_PHASE_PIO_IN;
    d->status = ATA_STAT_DRDY | ATA_STAT_DSC | ATA_STAT_DRQ;
    ide_dev_irq(d);
}

static void ide_pio_in_block_done(struct ide_channel *ch)
{
    if (ch->host_done >= ch->xfer_total) {
        if (ch->packet) {
            ide_packet_finish(ch, false);
        } else {
            /* PIO data-in ends without an interrupt after the last block (9.7). */
            struct ata_result res;
            ata_cmd_complete(&ch->dev[ch->active].ata, &ch->cmd, 0, ch->cmd.sectors);
            res = ch->cmd.res;
            ide_cmd_finish(ch, &res, false);
        }
        return;
    }
    if (ch->buf_pos >= ch->buf_len)
        ide_pio_fetch(ch);
    else
        ide_pio_in_block(ch);
}

/* The next DRQ block of a data-out command, into the buffer at buf_pos. */
static void ide_pio_out_block(struct ide_channel *ch, bool irq)
{
    struct ide_dev *d = &ch->dev[ch->active];
    uint64_t left = ch->xfer_total - ch->host_done;
    uint32_t n;
    if (ch->packet) {
        n = (uint32_t)RT_MIN(left, (uint64_t)ch->bcl);
        d->lbam = (uint8_t)n;
        d->lbah = (uint8_t)(n >> 8);
        d->count = 0;
    } else {
        ch->buf_pos = 0;
        n = (uint32_t)RT_MIN(left, (uint64_t)ch->cmd.block_sectors * ATA_SECTOR_BYTES);
    }
    ch->block_end = ch->buf_pos + n;
    ch->phase = IDE_PHASE_PIO_OUT;
    d->status = ATA_STAT_DRDY | ATA_STAT_DSC | ATA_STAT_DRQ;
    if (irq)
        ide_dev_irq(d);
}

static void ide_pio_out_block_done(struct ide_channel *ch)
{
    struct ide_dev *d = &ch->dev[ch->active];
    if (ch->packet) {
        if (ch->host_done < ch->xfer_total) {
            ide_pio_out_block(ch, true);
            return;
        }
        atapi_data_out_done(&d->atapi, &ch->acmd, ch->buf, ch->buf_pos);
        ide_packet_finish(ch, false);
        return;
    }
    /* ATA: write this block, then ask for the next one (9.8: interrupt after each block). */
    ide_submit(ch, IDE_REQ_PIO_WRITE, BLK_OP_WRITE, ide_medium_base(ch) + ch->xfer_done, ch->block_end, ch->buf,
               NULL, 0);
}

static void ide_req_done(struct drive_req *req, int status)
{
    struct ide_channel *ch = req->opaque;
    ch->req_busy = false;
    if (ch->phase != IDE_PHASE_BUSY)
        return;
    switch (ch->req_kind) {
    case IDE_REQ_PIO_READ:
        if (status) {
            ide_req_failed(ch, status);
            return;
        }
        ch->buf_len = (uint32_t)req->len_bytes;
        ch->buf_pos = 0;
        ch->xfer_done += req->len_bytes;
        ide_pio_in_block(ch);
        return;
    case IDE_REQ_PIO_WRITE:
        if (status) {
            ide_req_failed(ch, status);
            return;
        }
        ch->xfer_done += req->len_bytes;
        if (ch->xfer_done < ch->xfer_total)
            ide_pio_out_block(ch, true);
        else
            ide_transfer_done(ch, 0);
        return;
    case IDE_REQ_FLUSH:
        ide_ata_done(ch, status);
        return;
    case IDE_REQ_DMA:
        ide_dma_chunk_done(ch, status);
        return;
    }
}

void ide_channel_drain(struct ide_channel *ch)
{
    /* done() may submit the next request (a chunk, a flush): drain until nothing is left. */
    for (unsigned i = 0; i < IDE_DEVICES; i++)
        while (ch->dev[i].drive && drive_inflight(ch->dev[i].drive))
            drive_drain(ch->dev[i].drive);
}

/* ---- Data port --------------------------------------------------------------------------------- */

static uint32_t ide_data_read(struct ide_channel *ch, unsigned size)
{
    if (ch->phase != IDE_PHASE_PIO_IN)
        return 0;
    uint32_t v = 0;
    unsigned n = (unsigned)RT_MIN((uint32_t)size, ch->block_end - ch->buf_pos);
    for (unsigned i = 0; i < n; i++)
        v |= (uint32_t)ch->buf[ch->buf_pos + i] << (8 * i);
    ch->buf_pos += n;
    ch->host_done += n;
    if (ch->buf_pos >= ch->block_end)
        ide_pio_in_block_done(ch);
    return v;
}

static void ide_packet_start(struct ide_channel *ch);

static void ide_data_write(struct ide_channel *ch, uint32_t v, unsigned size)
{
    if (ch->phase == IDE_PHASE_PACKET) {
        for (unsigned i = 0; i < size && ch->buf_pos < ATAPI_CDB_BYTES; i++)
            ch->cdb[ch->buf_pos++] = (uint8_t)(v >> (8 * i));
        if (ch->buf_pos >= ATAPI_CDB_BYTES)
            ide_packet_start(ch);
        return;
    }
    if (ch->phase != IDE_PHASE_PIO_OUT)
        return;
    unsigned n = (unsigned)RT_MIN((uint32_t)size, ch->block_end - ch->buf_pos);
    for (unsigned i = 0; i < n; i++)
        ch->buf[ch->buf_pos + i] = (uint8_t)(v >> (8 * i));
    ch->buf_pos += n;
    ch->host_done += n;
    if (ch->buf_pos >= ch->block_end)
        ide_pio_out_block_done(ch);
}

/* ---- ATAPI ------------------------------------------------------------------------------------ */

static void ide_packet_start(struct ide_channel *ch)
{
    struct ide_dev *d = &ch->dev[ch->active];
    atapi_cmd_start(&d->atapi, ch->cdb, ch->buf, &ch->acmd);
    ch->buf_pos = 0;
    ch->host_done = 0;
    ch->xfer_total = ch->acmd.len;
    switch (ch->acmd.kind) {
    case ATAPI_CHECK:
        ide_packet_finish(ch, true);
        return;
    case ATAPI_DATA_IN:
        if (!ch->acmd.len) {
            ide_packet_finish(ch, false);
            return;
        }
        ch->buf_len = ch->acmd.len;
        ch->xfer_done = ch->acmd.len;
        if (ch->cmd.packet_dma)
            ide_dma_begin(ch);
        else
            ide_pio_in_block(ch);
        return;
    case ATAPI_READ:
        ch->xfer_done = 0;
        if (ch->cmd.packet_dma)
            ide_dma_begin(ch);
        else
            ide_pio_fetch(ch);
        return;
    case ATAPI_DATA_OUT:
        ch->xfer_done = 0;
        if (ch->cmd.packet_dma)
            ide_dma_begin(ch);
        else
            ide_pio_out_block(ch, true);
        return;
    }
}

/* ---- Resets and diagnostics ---------------------------------------------------------------------- */

/* A device after reset or diagnostics: signature, error 01h (passed), ready unless a packet device. */
static void ide_dev_post_signature(struct ide_dev *d)
{
    struct ata_result res = {0};
    ata_set_signature(&d->ata, &res);
    d->count = res.count;
    d->lbal = res.lba[0];
    d->lbam = res.lba[1];
    d->lbah = res.lba[2];
    d->hob_count = d->hob_lbal = d->hob_lbam = d->hob_lbah = 0;
    d->device = 0;
    d->error = 0x01;
    /* ATA/ATAPI-6 9.1: a packet device clears DRDY after reset until IDENTIFY PACKET DEVICE. */
    d->status = d->ata.atapi ? 0 : ATA_STAT_DRDY | ATA_STAT_DSC;
}

static void ide_channel_abort(struct ide_channel *ch)
{
    ide_channel_drain(ch);
    ide_cmd_end(ch);
}

static void ide_diagnostic(struct ide_channel *ch)
{
    /* 9.13: both devices run it whatever DEV says; device 0 answers with the interrupt. */
    ide_channel_abort(ch);
    for (unsigned i = 0; i < IDE_DEVICES; i++) {
        struct ide_dev *d = &ch->dev[i];
        d->irq_pending = false;
        if (d->drive)
            ide_dev_post_signature(d);
    }
    ch->sel = 0;
    ide_dev_irq(&ch->dev[ch->dev[0].drive ? 0 : 1]);
}

static void ide_soft_reset_begin(struct ide_channel *ch)
{
    ide_channel_abort(ch);
    for (unsigned i = 0; i < IDE_DEVICES; i++) {
        struct ide_dev *d = &ch->dev[i];
        d->irq_pending = false;
        if (d->drive)
            d->status = ATA_STAT_BSY;
    }
}

static void ide_soft_reset_end(struct ide_channel *ch)
{
    for (unsigned i = 0; i < IDE_DEVICES; i++) {
        struct ide_dev *d = &ch->dev[i];
        if (!d->drive)
            continue;
        ata_dev_reset(&d->ata, false);
        if (d->ata.atapi)
            atapi_dev_reset(&d->atapi);
        ide_dev_post_signature(d);
    }
    ch->sel = 0;
}

/* ---- Commands --------------------------------------------------------------------------------- */

static void ide_taskfile(const struct ide_dev *d, uint8_t command, struct ata_taskfile *tf)
{
    tf->command = command;
    tf->features = d->feature;
    tf->features_exp = d->hob_feature;
    tf->count = d->count;
    tf->count_exp = d->hob_count;
    tf->lba[0] = d->lbal;
    tf->lba[1] = d->lbam;
    tf->lba[2] = d->lbah;
    tf->lba[3] = d->hob_lbal;
    tf->lba[4] = d->hob_lbam;
    tf->lba[5] = d->hob_lbah;
    tf->device = d->device;
}

static void ide_command(struct ide_channel *ch, uint8_t command)
{
    if (command == ATA_CMD_EXEC_DIAGNOSTIC) {
        ide_diagnostic(ch);
        return;
    }
    struct ide_dev *d = &ch->dev[ch->sel];
    if (!d->drive)
        return; /* an absent device 1 ignores commands (9.16.1) */
    /* A new command replaces one waiting for data or DMA (nothing is in flight: BSY writes are dropped). */
    ide_cmd_end(ch);
    d->irq_pending = false;
    ide_irq_update(ch);
    ch->active = ch->sel;
    ch->packet = false;
    ch->xfer_done = ch->host_done = 0;
    struct ata_taskfile tf;
    ide_taskfile(d, command, &tf);
    ata_cmd_decode(&d->ata, &tf, &ch->cmd);
    struct ata_cmd *cmd = &ch->cmd;
    ch->xfer_total = (uint64_t)cmd->sectors * ATA_SECTOR_BYTES;
    switch (cmd->kind) {
    case ATA_KIND_DONE:
    case ATA_KIND_DIAG:
        ide_cmd_finish(ch, &cmd->res, true);
        return;
    case ATA_KIND_PIO_IN:
        if (cmd->data_bytes) {
            for (unsigned i = 0; i < 256; i++) {
                ch->buf[2 * i] = (uint8_t)cmd->data[i];
                ch->buf[2 * i + 1] = (uint8_t)(cmd->data[i] >> 8);
            }
            ch->buf_len = cmd->data_bytes;
            ch->buf_pos = 0;
            ch->xfer_total = ch->xfer_done = cmd->data_bytes;
            ide_pio_in_block(ch);
        } else {
            ide_pio_fetch(ch);
        }
        return;
    case ATA_KIND_PIO_OUT:
        ch->buf_pos = 0;
        ide_pio_out_block(ch, false); /* 9.8: the first block is asked for without an interrupt */
        return;
    case ATA_KIND_DMA_IN:
    case ATA_KIND_DMA_OUT:
        ide_dma_begin(ch);
        return;
    case ATA_KIND_FLUSH:
        ide_submit_flush(ch);
        return;
    case ATA_KIND_PACKET:
        /* 9.10: DRQ for the command packet, interrupt reason CoD, no interrupt (word 0 advertises fast DRQ). */
        ch->packet = true;
        ch->bcl = (uint16_t)(d->lbam | d->lbah << 8);
        if (ch->bcl == 0 || ch->bcl == 0xffff)
            ch->bcl = 0xfffe;
        ch->bcl &= (uint16_t)~1u;
        d->count = ATA_IREASON_COD;
        d->status = ATA_STAT_DRDY | ATA_STAT_DRQ;
        ch->phase = IDE_PHASE_PACKET;
        ch->buf_pos = 0;
        ch->block_end = ATAPI_CDB_BYTES;
        return;
    case ATA_KIND_DEVICE_RESET:
        /* 9.6 device reset protocol: signature, no interrupt. */
        ata_dev_reset(&d->ata, false);
        atapi_dev_reset(&d->atapi);
        ide_dev_post_signature(d);
        d->device = (uint8_t)(d->device | (ch->sel ? ATA_DEV_DEV : 0));
        return;
    }
}

/* ---- Register access ----------------------------------------------------------------------------- */

/*
 * A channel without devices: nothing drives the data bus, but the pull-down the host
 * must have on DD7 (ATA/ATAPI-6, signal descriptions: it lets the host see BSY clear
 * when no device is attached) makes every register read 7Fh, DD6-DD0 floating high.
 * Firmware polls such a channel for BSY to clear after EXECUTE DEVICE DIAGNOSTIC or a
 * reset (OVMF waits 35 s per device), so FFh here, a BSY that never clears, stalls it.
 */
#define IDE_EMPTY_BUS 0x7f

static bool ide_channel_empty(const struct ide_channel *ch)
{
    return !ch->dev[0].drive && !ch->dev[1].drive;
}

/* Status as the host sees it: 00h for an absent device 1 (9.16.1). */
static uint8_t ide_status(const struct ide_channel *ch)
{
    const struct ide_dev *d = &ch->dev[ch->sel];
    return d->drive ? d->status : 0;
}

static uint8_t ide_reg_read(struct ide_channel *ch, unsigned reg)
{
    if (ide_channel_empty(ch))
        return IDE_EMPTY_BUS;
    struct ide_dev *d = &ch->dev[ch->sel];
    /* Device 0 answers for an absent device 1 with its own registers (9.16.1). */
    const struct ide_dev *src = d->drive ? d : &ch->dev[ch->sel ^ 1];
    bool hob = ch->control & ATA_CTL_HOB;
    switch (reg) {
    case IDE_REG_ERROR: return src->error;
    case IDE_REG_COUNT: return hob ? src->hob_count : src->count;
    case IDE_REG_LBAL: return hob ? src->hob_lbal : src->lbal;
    case IDE_REG_LBAM: return hob ? src->hob_lbam : src->lbam;
    case IDE_REG_LBAH: return hob ? src->hob_lbah : src->lbah;
    case IDE_REG_DEVICE: return src->device;
    default: {
        uint8_t status = ide_status(ch);
        /* Reading status acknowledges the interrupt (7.15.6). */
        if (d->drive && d->irq_pending) {
            d->irq_pending = false;
            ide_irq_update(ch);
        }
        return status;
    }
    }
}

static void ide_reg_write(struct ide_channel *ch, unsigned reg, uint8_t v)
{
    if (ch->phase == IDE_PHASE_BUSY)
        return;
    /* 7.8: a write to any command block register clears HOB. */
    ch->control &= (uint8_t)~ATA_CTL_HOB;
    if (reg == IDE_REG_STATUS) {
        ide_command(ch, v);
        return;
    }
    for (unsigned i = 0; i < IDE_DEVICES; i++) {
        struct ide_dev *d = &ch->dev[i];
        switch (reg) {
        case IDE_REG_ERROR: d->hob_feature = d->feature; d->feature = v; break;
        case IDE_REG_COUNT: d->hob_count = d->count; d->count = v; break;
        case IDE_REG_LBAL: d->hob_lbal = d->lbal; d->lbal = v; break;
        case IDE_REG_LBAM: d->hob_lbam = d->lbam; d->lbam = v; break;
        case IDE_REG_LBAH: d->hob_lbah = d->lbah; d->lbah = v; break;
        default: d->device = v; break;
        }
    }
    if (reg == IDE_REG_DEVICE) {
        ch->sel = (v & ATA_DEV_DEV) ? 1 : 0;
        ide_irq_update(ch);
    }
}

static uint64_t ide_cmd_read(void *opaque, uint64_t offset, unsigned size)
{
    struct ide_channel *ch = opaque;
    if (offset == IDE_REG_DATA && size > 1)
        return ide_data_read(ch, size);
    uint64_t v = 0;
    for (unsigned i = 0; i < size && offset + i < 8; i++) {
        uint64_t b = offset + i == IDE_REG_DATA ? ide_data_read(ch, 1) : ide_reg_read(ch, (unsigned)(offset + i));
        v |= (b & 0xff) << (8 * i);
    }
    return v;
}

static void ide_cmd_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    struct ide_channel *ch = opaque;
    if (offset == IDE_REG_DATA && size > 1) {
        ide_data_write(ch, (uint32_t)value, size);
        return;
    }
    for (unsigned i = 0; i < size && offset + i < 8; i++) {
        uint8_t b = (uint8_t)(value >> (8 * i));
        if (offset + i == IDE_REG_DATA)
            ide_data_write(ch, b, 1);
        else
            ide_reg_write(ch, (unsigned)(offset + i), b);
    }
}

static const struct io_ops g_ide_cmd_ops = {
    .read = ide_cmd_read,
    .write = ide_cmd_write,
    .min_access = 1,
    .max_access = 4,
};

static uint64_t ide_ctl_read(void *opaque, uint64_t offset, unsigned size)
{
    struct ide_channel *ch = opaque;
    (void)offset;
    (void)size;
    /* Alternate status: the status without acknowledging the interrupt. */
    return ide_channel_empty(ch) ? IDE_EMPTY_BUS : ide_status(ch);
}

static void ide_ctl_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    struct ide_channel *ch = opaque;
    (void)offset;
    (void)size;
    uint8_t old = ch->control;
    ch->control = (uint8_t)value & (ATA_CTL_HOB | ATA_CTL_SRST | ATA_CTL_NIEN);
    /* 9.2: devices are in reset while SRST is one and post their signatures when it returns to zero. */
    if (!(old & ATA_CTL_SRST) && (ch->control & ATA_CTL_SRST))
        ide_soft_reset_begin(ch);
    else if ((old & ATA_CTL_SRST) && !(ch->control & ATA_CTL_SRST))
        ide_soft_reset_end(ch);
    ide_irq_update(ch);
}

static const struct io_ops g_ide_ctl_ops = {
    .read = ide_ctl_read,
    .write = ide_ctl_write,
    .min_access = 1,
    .max_access = 1,
};

/* ---- PCI ------------------------------------------------------------------------------------------ */

/* Legacy decoding follows IDETIM bit 15 of each channel (PIIX3 2.3.6). */
static void ide_decode_update(struct ide_ctrl *c)
{
    for (unsigned i = 0; i < IDE_CHANNELS; i++) {
        struct ide_channel *ch = &c->ch[i];
        bool on = pci_dev_get_u16(c->pci, IDE_CFG_IDETIM0 + 2 * i) & IDE_IDETIM_DECODE;
        if (on && !iom_region_is_mapped(ch->io_cmd)) {
            if (iom_region_map(ch->io_cmd, g_cmd_ports[i]) || iom_region_map(ch->io_ctl, g_ctl_ports[i]))
                LOG_ERR("%s: cannot decode the legacy ports of channel %u", pdm_dev_name(c->dev), i);
        } else if (!on && iom_region_is_mapped(ch->io_cmd)) {
            iom_region_unmap(ch->io_cmd);
            iom_region_unmap(ch->io_ctl);
        }
    }
}

static void ide_config_write(void *opaque, struct pci_dev *dev, unsigned offset, uint32_t value, unsigned size)
{
    (void)dev;
    (void)value;
    if (offset < IDE_CFG_IDETIM0 + 4 && offset + size > IDE_CFG_IDETIM0)
        ide_decode_update(opaque);
}

static const struct pci_dev_ops g_ide_pci_ops = {
    .config_write = ide_config_write,
};

/* ---- Lifecycle ---------------------------------------------------------------------------------------- */

static void ide_reset(struct pdm_dev *dev)
{
    struct ide_ctrl *c = pdm_dev_state(dev);
    for (unsigned i = 0; i < IDE_CHANNELS; i++)
        ide_channel_drain(&c->ch[i]);
    pci_dev_reset(c->pci);
    /* After the BIOS: both channels decode (SeaBIOS and Linux expect the legacy ports live). */
    pci_dev_set_u16(c->pci, IDE_CFG_IDETIM0, IDE_IDETIM_DECODE);
    pci_dev_set_u16(c->pci, IDE_CFG_IDETIM1, IDE_IDETIM_DECODE);
    for (unsigned i = 0; i < IDE_CHANNELS; i++) {
        struct ide_channel *ch = &c->ch[i];
        ide_cmd_end(ch);
        ide_dma_reset(ch);
        ch->bmic = ch->bmis = 0;
        ch->prd_addr = 0;
        ch->control = 0;
        ch->sel = 0;
        ch->active = 0;
        ch->packet = false;
        for (unsigned j = 0; j < IDE_DEVICES; j++) {
            struct ide_dev *d = &ch->dev[j];
            d->feature = d->hob_feature = 0;
            d->irq_pending = false;
            if (!d->drive)
                continue;
            ata_dev_reset(&d->ata, true);
            if (d->ata.atapi)
                atapi_dev_reset(&d->atapi);
            ide_dev_post_signature(d);
        }
        ide_irq_update(ch);
    }
    ide_decode_update(c);
}

static int ide_construct(struct pdm_dev *dev, const struct pdm_cfg *cfg)
{
    static const char *const own_keys[] = {PCI_CFG_LOCATION_KEYS, NULL};
    struct ide_ctrl *c = pdm_dev_state(dev);
    const char *name = pdm_dev_name(dev);
    int rc = drive_cfg_validate(cfg, name, own_keys, g_ide_prefixes, RT_ARRAY_SIZE(g_ide_prefixes));
    if (rc)
        return rc;
    c->dev = dev;
    c->vm = pdm_dev_vm(dev);
    struct pci_bus *bus = NULL;
    unsigned devfn = 0;
    rc = pci_cfg_get_location(c->vm, cfg, name, 1, &bus, &devfn);
    if (rc)
        return rc;
    /* The PIIX3's IDE function is function 1 of its slot unless configured otherwise. */
    if (!pdm_cfg_get_str(cfg, "function", NULL))
        devfn = PCI_DEVFN(PCI_SLOT(devfn), 1);

    for (unsigned i = 0; i < IDE_CHANNELS; i++) {
        struct ide_channel *ch = &c->ch[i];
        ch->ctrl = c;
        ch->index = i;
        ch->buf = calloc(1, IDE_BUF_BYTES);
        ch->sg = calloc(IDE_PRD_MAX, sizeof(*ch->sg));
        ch->chunk_sg = calloc(IDE_PRD_MAX, sizeof(*ch->chunk_sg));
        if (!ch->buf || !ch->sg || !ch->chunk_sg)
            return VERR_NO_MEMORY;
        for (unsigned j = 0; j < IDE_DEVICES; j++) {
            struct ide_dev *d = &ch->dev[j];
            d->ch = ch;
            d->index = j;
            char drive_name[96];
            snprintf(drive_name, sizeof(drive_name), "%s-%u-%u", name, i, j);
            rc = drive_create_from_cfg(c->vm, cfg, g_ide_prefixes[i * IDE_DEVICES + j], drive_name, &d->drive);
            if (rc)
                return rc;
            ata_dev_init(&d->ata, d->drive);
            d->ata.id_flags = j ? ATA_ID_DEVICE1 : 0;
            if (d->drive && d->ata.atapi)
                atapi_dev_init(&d->atapi, d->drive, NULL, NULL);
        }
        char rname[64];
        snprintf(rname, sizeof(rname), "%s-ch%u", name, i);
        rc = iom_region_create(c->vm, rname, 8, &g_ide_cmd_ops, ch, &ch->io_cmd);
        if (!rc) {
            snprintf(rname, sizeof(rname), "%s-ctl%u", name, i);
            rc = iom_region_create(c->vm, rname, 1, &g_ide_ctl_ops, ch, &ch->io_ctl);
        }
        if (!rc)
            rc = pdm_irq_create(c->vm, g_ide_irqs[i], name, &ch->irq);
        if (rc)
            return rc;
    }
    rc = iom_region_create(c->vm, name, IDE_BM_BYTES, &g_ide_bm_ops, c, &c->io_bm);
    if (rc)
        return rc;
    const struct pci_dev_params params = {
        .name = name,
        .vendor_id = 0x8086,
        .device_id = 0x7010,
        .class_code = 0x010180, /* IDE, bus master, both channels in compatibility mode */
        .revision = 0x00,
        .ops = &g_ide_pci_ops,
        .opaque = c,
    };
    rc = pci_dev_register(bus, devfn, &params, &c->pci);
    if (rc)
        return rc;
    rc = pci_dev_bar_io(c->pci, IDE_BM_BAR, IDE_BM_BYTES, c->io_bm);
    if (rc)
        return rc;
    pci_dev_set_u16(c->pci, PCI_CFG_STATUS, PCI_STATUS_FAST_BACK | PCI_STATUS_DEVSEL_MEDIUM);
    pci_dev_set_wmask(c->pci, IDE_CFG_IDETIM0, 4, 0xffffffff);
    pci_dev_set_wmask(c->pci, IDE_CFG_SIDETIM, 1, 0xff);
    ide_reset(dev);
    return 0;
}

static void ide_destroy(struct pdm_dev *dev)
{
    struct ide_ctrl *c = pdm_dev_state(dev);
    for (unsigned i = 0; i < IDE_CHANNELS; i++) {
        struct ide_channel *ch = &c->ch[i];
        ide_channel_drain(ch);
        for (unsigned j = 0; j < IDE_DEVICES; j++) {
            struct ide_dev *d = &ch->dev[j];
            if (d->drive && d->ata.atapi)
                atapi_dev_fini(&d->atapi);
            drive_destroy(d->drive);
            d->drive = NULL;
        }
    }
    pci_dev_unregister(c->pci);
    c->pci = NULL;
    iom_region_destroy(c->io_bm);
    c->io_bm = NULL;
    for (unsigned i = 0; i < IDE_CHANNELS; i++) {
        struct ide_channel *ch = &c->ch[i];
        iom_region_destroy(ch->io_cmd);
        iom_region_destroy(ch->io_ctl);
        pdm_irq_destroy(ch->irq);
        free(ch->buf);
        free(ch->sg);
        free(ch->chunk_sg);
        ch->io_cmd = ch->io_ctl = NULL;
        ch->irq = NULL;
        ch->buf = NULL;
        ch->sg = ch->chunk_sg = NULL;
    }
}

/* ---- Saved state ---------------------------------------------------------------------------------------- */

static void ide_dev_save(const struct ide_dev *d, struct ssm *ssm)
{
    const uint8_t regs[] = {d->feature, d->count, d->lbal, d->lbam, d->lbah, d->hob_feature, d->hob_count,
                            d->hob_lbal, d->hob_lbam, d->hob_lbah, d->device, d->status, d->error};
    ssm_put_bool(ssm, d->drive != NULL);
    ssm_put_bool(ssm, d->drive && d->ata.atapi);
    ssm_put_bytes(ssm, regs, sizeof(regs));
    ssm_put_bool(ssm, d->irq_pending);
    ata_dev_save(&d->ata, ssm);
    if (d->drive && d->ata.atapi)
        atapi_dev_save(&d->atapi, ssm);
}

static int ide_dev_load(struct ide_dev *d, struct ssm *ssm, uint32_t version)
{
    bool present = false, atapi = false, irq = false;
    uint8_t regs[13];
    ssm_get_bool(ssm, &present);
    ssm_get_bool(ssm, &atapi);
    ssm_get_bytes(ssm, regs, sizeof(regs));
    ssm_get_bool(ssm, &irq);
    int rc = ssm_status(ssm);
    if (rc)
        return rc;
    if (present != (d->drive != NULL) || atapi != (d->drive && d->ata.atapi))
        return VERR_SSM_CORRUPT; /* the configuration differs from the one saved */
    rc = ata_dev_load(&d->ata, ssm);
    if (!rc && atapi)
        rc = atapi_dev_load(&d->atapi, ssm, version >= 2);
    if (rc)
        return rc;
    d->feature = regs[0];
    d->count = regs[1];
    d->lbal = regs[2];
    d->lbam = regs[3];
    d->lbah = regs[4];
    d->hob_feature = regs[5];
    d->hob_count = regs[6];
    d->hob_lbal = regs[7];
    d->hob_lbam = regs[8];
    d->hob_lbah = regs[9];
    d->device = regs[10];
    d->status = regs[11];
    d->error = regs[12];
    d->irq_pending = irq;
    return 0;
}

static void ide_cmd_save(const struct ata_cmd *cmd, struct ssm *ssm)
{
    ssm_put_u8(ssm, (uint8_t)cmd->kind);
    ssm_put_u8(ssm, cmd->command);
    ssm_put_u8(ssm, cmd->device);
    ssm_put_bool(ssm, cmd->lba48);
    ssm_put_bool(ssm, cmd->write);
    ssm_put_bool(ssm, cmd->fua);
    ssm_put_bool(ssm, cmd->packet_dma);
    ssm_put_u64(ssm, cmd->lba);
    ssm_put_u32(ssm, cmd->sectors);
    ssm_put_u32(ssm, cmd->block_sectors);
    ssm_put_u32(ssm, cmd->data_bytes);
}

static int ide_cmd_load(struct ata_cmd *cmd, struct ssm *ssm)
{
    uint8_t kind = 0;
    memset(cmd, 0, sizeof(*cmd));
    ssm_get_u8(ssm, &kind);
    ssm_get_u8(ssm, &cmd->command);
    ssm_get_u8(ssm, &cmd->device);
    ssm_get_bool(ssm, &cmd->lba48);
    ssm_get_bool(ssm, &cmd->write);
    ssm_get_bool(ssm, &cmd->fua);
    ssm_get_bool(ssm, &cmd->packet_dma);
    ssm_get_u64(ssm, &cmd->lba);
    ssm_get_u32(ssm, &cmd->sectors);
    ssm_get_u32(ssm, &cmd->block_sectors);
    ssm_get_u32(ssm, &cmd->data_bytes);
    int rc = ssm_status(ssm);
    if (rc)
        return rc;
    if (kind > ATA_KIND_DEVICE_RESET || cmd->sectors > 65536 || cmd->block_sectors > ATA_MAX_MULTIPLE ||
        cmd->data_bytes > sizeof(cmd->data))
        return VERR_SSM_CORRUPT;
    cmd->kind = (enum ata_cmd_kind)kind;
    return 0;
}

static int ide_save(struct pdm_dev *dev, struct ssm *ssm)
{
    struct ide_ctrl *c = pdm_dev_state(dev);
    for (unsigned i = 0; i < IDE_CHANNELS; i++)
        ide_channel_drain(&c->ch[i]);
    pci_dev_save(c->pci, ssm);
    for (unsigned i = 0; i < IDE_CHANNELS; i++) {
        const struct ide_channel *ch = &c->ch[i];
        for (unsigned j = 0; j < IDE_DEVICES; j++)
            ide_dev_save(&ch->dev[j], ssm);
        ssm_put_u8(ssm, ch->control);
        ssm_put_u8(ssm, (uint8_t)ch->sel);
        ssm_put_u8(ssm, (uint8_t)ch->phase);
        ssm_put_u8(ssm, (uint8_t)ch->active);
        ssm_put_bool(ssm, ch->packet);
        ssm_put_u16(ssm, ch->bcl);
        ide_cmd_save(&ch->cmd, ssm);
        ssm_put_bytes(ssm, ch->cdb, sizeof(ch->cdb));
        ssm_put_u8(ssm, (uint8_t)ch->acmd.kind);
        ssm_put_u8(ssm, ch->acmd.opcode);
        ssm_put_u32(ssm, ch->acmd.len);
        ssm_put_u64(ssm, ch->acmd.offset_bytes);
        ssm_put_u32(ssm, ch->buf_len);
        ssm_put_u32(ssm, ch->buf_pos);
        ssm_put_u32(ssm, ch->block_end);
        ssm_put_u64(ssm, ch->xfer_total);
        ssm_put_u64(ssm, ch->xfer_done);
        ssm_put_u64(ssm, ch->host_done);
        /* The buffer up to what the host may still read or has written of the current block. */
        uint32_t used = RT_MAX(ch->buf_len, ch->block_end);
        ssm_put_u32(ssm, used);
        ssm_put_bytes(ssm, ch->buf, used);
        ssm_put_u8(ssm, ch->bmic);
        ssm_put_u8(ssm, ch->bmis);
        ssm_put_u32(ssm, ch->prd_addr);
    }
    return ssm_status(ssm);
}

/* Positions that a running command of this phase can have. */
static bool ide_channel_consistent(const struct ide_channel *ch)
{
    const struct ide_dev *d = &ch->dev[ch->active];
    if (ch->phase == IDE_PHASE_IDLE)
        return true;
    if (!d->drive || ch->phase == IDE_PHASE_BUSY || ch->phase >= IDE_PHASE_COUNT)
        return false;
    if (ch->buf_len > IDE_BUF_BYTES || ch->block_end > IDE_BUF_BYTES || ch->buf_pos > ch->block_end ||
        ch->xfer_done > ch->xfer_total || ch->host_done > ch->xfer_total)
        return false;
    if (ch->packet != (ch->cmd.kind == ATA_KIND_PACKET) || (ch->packet && !d->ata.atapi))
        return false;
    if (ch->packet && ch->acmd.kind > ATAPI_CHECK)
        return false;
    if (!ch->packet && (ch->phase == IDE_PHASE_PIO_IN || ch->phase == IDE_PHASE_PIO_OUT) &&
        ch->cmd.block_sectors == 0)
        return false;
    switch (ch->phase) {
    case IDE_PHASE_PIO_IN:
        return ch->block_end <= ch->buf_len &&
               (ch->packet || ch->cmd.kind == ATA_KIND_PIO_IN);
    case IDE_PHASE_PIO_OUT:
        return ch->packet ? ch->acmd.kind == ATAPI_DATA_OUT && ch->xfer_total <= ATAPI_REPLY_MAX
                          : ch->cmd.kind == ATA_KIND_PIO_OUT && ch->block_end <= ATA_MAX_MULTIPLE * ATA_SECTOR_BYTES;
    case IDE_PHASE_PACKET:
        return ch->packet && ch->block_end == ATAPI_CDB_BYTES;
    default: /* DMA_WAIT */
        return ch->packet || ch->cmd.kind == ATA_KIND_DMA_IN || ch->cmd.kind == ATA_KIND_DMA_OUT;
    }
}

static int ide_channel_load(struct ide_channel *ch, struct ssm *ssm, uint32_t version)
{
    uint8_t control = 0, sel = 0, phase = 0, active = 0, akind = 0;
    int rc = 0;
    for (unsigned j = 0; j < IDE_DEVICES && !rc; j++)
        rc = ide_dev_load(&ch->dev[j], ssm, version);
    if (rc)
        return rc;
    ssm_get_u8(ssm, &control);
    ssm_get_u8(ssm, &sel);
    ssm_get_u8(ssm, &phase);
    ssm_get_u8(ssm, &active);
    ssm_get_bool(ssm, &ch->packet);
    ssm_get_u16(ssm, &ch->bcl);
    rc = ide_cmd_load(&ch->cmd, ssm);
    if (rc)
        return rc;
    ssm_get_bytes(ssm, ch->cdb, sizeof(ch->cdb));
    ssm_get_u8(ssm, &akind);
    ssm_get_u8(ssm, &ch->acmd.opcode);
    ssm_get_u32(ssm, &ch->acmd.len);
    ssm_get_u64(ssm, &ch->acmd.offset_bytes);
    ssm_get_u32(ssm, &ch->buf_len);
    ssm_get_u32(ssm, &ch->buf_pos);
    ssm_get_u32(ssm, &ch->block_end);
    ssm_get_u64(ssm, &ch->xfer_total);
    ssm_get_u64(ssm, &ch->xfer_done);
    ssm_get_u64(ssm, &ch->host_done);
    uint32_t used = 0;
    ssm_get_u32(ssm, &used);
    rc = ssm_status(ssm);
    if (rc)
        return rc;
    if (used > IDE_BUF_BYTES)
        return VERR_SSM_CORRUPT;
    ssm_get_bytes(ssm, ch->buf, used);
    ssm_get_u8(ssm, &ch->bmic);
    ssm_get_u8(ssm, &ch->bmis);
    ssm_get_u32(ssm, &ch->prd_addr);
    rc = ssm_status(ssm);
    if (rc)
        return rc;
    ch->control = control & (ATA_CTL_HOB | ATA_CTL_SRST | ATA_CTL_NIEN);
    ch->sel = sel & 1;
    ch->active = active & 1;
    ch->phase = phase < IDE_PHASE_COUNT ? (enum ide_phase)phase : IDE_PHASE_COUNT;
    ch->acmd.kind = akind <= ATAPI_CHECK ? (enum atapi_cmd_kind)akind : ATAPI_CHECK;
    ch->bmic &= IDE_BMIC_START | IDE_BMIC_WRITE;
    ch->bmis &= IDE_BMIS_ACTIVE | IDE_BMIS_ERROR | IDE_BMIS_INT | IDE_BMIS_DMA0 | IDE_BMIS_DMA1;
    ch->prd_addr &= ~3u;
    if (sel > 1 || active > 1 || akind > ATAPI_CHECK || !ide_channel_consistent(ch) ||
        (ch->packet && ch->bcl == 0)) {
        ch->phase = IDE_PHASE_IDLE;
        return VERR_SSM_CORRUPT;
    }
    ch->req_busy = false;
    ch->dma_running = false;
    ch->dma_stopped = false;
    return 0;
}

static int ide_load(struct pdm_dev *dev, struct ssm *ssm, uint32_t version)
{
    struct ide_ctrl *c = pdm_dev_state(dev);
    if (version < 1 || version > IDE_SSM_VERSION)
        return VERR_SSM_VERSION;
    for (unsigned i = 0; i < IDE_CHANNELS; i++)
        ide_channel_drain(&c->ch[i]);
    int rc = pci_dev_load(c->pci, ssm);
    for (unsigned i = 0; i < IDE_CHANNELS && !rc; i++)
        rc = ide_channel_load(&c->ch[i], ssm, version);
    if (rc) {
        LOG_ERR("saved state of %s is inconsistent", pdm_dev_name(dev));
        ide_reset(dev);
        return rc;
    }
    ide_decode_update(c);
    for (unsigned i = 0; i < IDE_CHANNELS; i++) {
        /* Drive the line to the loaded level whatever it was before. */
        struct ide_channel *ch = &c->ch[i];
        const struct ide_dev *d = &ch->dev[ch->sel];
        ch->irq_level = d->drive && d->irq_pending && !(ch->control & ATA_CTL_NIEN);
        pdm_irq_set(ch->irq, ch->irq_level);
    }
    return 0;
}

const struct pdm_dev_desc g_dev_piix3_ide = {
    .name = "piix3-ide",
    .description = "PIIX3 IDE controller: two legacy channels with ATA disks and ATAPI CD/DVD drives, bus-master DMA",
    .state_size = sizeof(struct ide_ctrl),
    .ssm_version = IDE_SSM_VERSION,
    .construct = ide_construct,
    .reset = ide_reset,
    .save = ide_save,
    .load = ide_load,
    .destroy = ide_destroy,
};
