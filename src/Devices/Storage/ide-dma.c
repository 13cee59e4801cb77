/* ide-dma.c - PIIX3 IDE bus-master DMA: the BMICx/BMISx/BMIDTPx registers and PRD table walking. */

/*
 * A DMA command (ATA READ/WRITE DMA, or PACKET with the DMA bit) waits in
 * IDE_PHASE_DMA_WAIT until the host sets the start bit (it may do so before or after
 * issuing the command).  The PRD table (PIIX3 datasheet 2.7.3: 8-byte entries of
 * base, byte count with 0 meaning 64 KiB, end-of-table bit 31; 4-byte aligned, never
 * crossing a 64 KiB boundary) is then read once into guest ranges, at most
 * IDE_PRD_MAX entries and no further than the transfer needs.  A table that
 * describes less than the transfer ends the command with BMIS error; a longer one is
 * fine and leaves BMIS active set at the end, as the datasheet's status table says
 * (active and interrupt: the device finished before the table did).  The medium
 * transfer runs as drive requests of up to IDE_DMA_CHUNK_BYTES over pieces of the
 * table; ATAPI replies and MODE SELECT data are copied directly.
 */

#include <string.h>

#include "ide-internal.h"
#include "vireo/err.h"
#include "vireo/rt.h"

#define LOG_COMPONENT "ide"

#define IDE_PRD_EOT 0x80000000u

void ide_dma_reset(struct ide_channel *ch)
{
    ch->dma_running = false;
    ch->dma_stopped = false;
    ch->sg_count = 0;
    ch->sg_bytes = 0;
    ch->prd_eot = false;
}

/* Does the active command move data into guest memory? */
static bool ide_dma_to_memory(const struct ide_channel *ch)
{
    if (ch->packet)
        return ch->acmd.kind != ATAPI_DATA_OUT;
    return ch->cmd.kind == ATA_KIND_DMA_IN;
}

/* Reads the PRD table into ch->sg: until EOT, past what the transfer needs, or the 64 KiB boundary. */
static void ide_prd_walk(struct ide_channel *ch)
{
    struct vm *vm = ch->ctrl->vm;
    uint32_t addr = ch->prd_addr;
    ch->sg_count = 0;
    ch->sg_bytes = 0;
    ch->prd_eot = false;
    for (unsigned i = 0; i < IDE_PRD_MAX; i++) {
        uint8_t e[8];
        mem_read(vm, addr, e, sizeof(e));
        uint32_t base = (uint32_t)e[0] | (uint32_t)e[1] << 8 | (uint32_t)e[2] << 16 | (uint32_t)e[3] << 24;
        uint32_t word = (uint32_t)e[4] | (uint32_t)e[5] << 8 | (uint32_t)e[6] << 16 | (uint32_t)e[7] << 24;
        uint32_t count = word & 0xfffe;
        ch->sg[ch->sg_count].gpa = base & ~1u;
        ch->sg[ch->sg_count].len = count ? count : 0x10000;
        ch->sg_bytes += ch->sg[ch->sg_count].len;
        ch->sg_count++;
        if (word & IDE_PRD_EOT) {
            ch->prd_eot = true;
            return;
        }
        if (ch->sg_bytes > ch->xfer_total)
            return;
        addr += 8;
        if ((addr & 0xffff) == 0)
            return; /* the table may not cross a 64 KiB boundary: treat it as ended */
    }
}

/* Copies between the channel buffer and the guest ranges of the PRD table (ATAPI replies, MODE SELECT data). */
static void ide_dma_copy(struct ide_channel *ch, bool to_memory)
{
    uint64_t off = 0;
    for (unsigned i = 0; i < ch->sg_count && off < ch->xfer_total; i++) {
        uint64_t n = RT_MIN(ch->sg[i].len, ch->xfer_total - off);
        if (to_memory)
            mem_write(ch->ctrl->vm, ch->sg[i].gpa, ch->buf + off, (size_t)n);
        else
            mem_read(ch->ctrl->vm, ch->sg[i].gpa, ch->buf + off, (size_t)n);
        off += n;
    }
}

/* The transfer could not start: BMIS error, and the command ends aborted. */
static void ide_dma_fail(struct ide_channel *ch)
{
    ch->bmis = (uint8_t)((ch->bmis | IDE_BMIS_ERROR) & ~IDE_BMIS_ACTIVE);
    ch->dma_running = false;
    if (ch->packet) {
        atapi_set_sense(&ch->dev[ch->active].atapi, SENSE_ABORTED_COMMAND, 0, 0);
        ide_packet_finish(ch, true);
    } else {
        struct ata_result res;
        ata_result_abort(&ch->dev[ch->active].ata, &res);
        ide_cmd_finish(ch, &res, true);
    }
}

static void ide_dma_finish(struct ide_channel *ch, int status)
{
    /* The bus master stops being active when it used up the table exactly (PIIX3 2.7.2, BMISx bit 0). */
    if (ch->prd_eot && ch->sg_bytes == ch->xfer_total && !status)
        ch->bmis &= (uint8_t)~IDE_BMIS_ACTIVE;
    ch->dma_running = false;
    ch->dma_stopped = false;
    ide_transfer_done(ch, status);
}

/* Submits the next chunk: the part of the table from xfer_done on. */
static void ide_dma_next(struct ide_channel *ch)
{
    uint64_t chunk = RT_MIN(ch->xfer_total - ch->xfer_done, (uint64_t)IDE_DMA_CHUNK_BYTES);
    uint64_t skip = ch->xfer_done, want = chunk;
    unsigned n = 0;
    for (unsigned i = 0; i < ch->sg_count && want > 0; i++) {
        uint64_t len = ch->sg[i].len;
        if (skip >= len) {
            skip -= len;
            continue;
        }
        uint64_t take = RT_MIN(len - skip, want);
        ch->chunk_sg[n].gpa = ch->sg[i].gpa + skip;
        ch->chunk_sg[n].len = take;
        n++;
        want -= take;
        skip = 0;
    }
    enum blk_op op = ide_dma_to_memory(ch) ? BLK_OP_READ : BLK_OP_WRITE;
    ide_submit(ch, IDE_REQ_DMA, op, ide_medium_base(ch) + ch->xfer_done, chunk, NULL, ch->chunk_sg, n);
}

void ide_dma_chunk_done(struct ide_channel *ch, int status)
{
    if (!status) {
        ch->xfer_done += ch->req.len_bytes;
        if (ch->xfer_done < ch->xfer_total && ch->dma_stopped) {
            /* The host stopped the engine mid-transfer: the rest never moves, the command ends aborted. */
            ch->dma_running = false;
            ch->dma_stopped = false;
            if (ch->packet) {
                atapi_set_sense(&ch->dev[ch->active].atapi, SENSE_ABORTED_COMMAND, 0, 0);
                ide_packet_finish(ch, true);
            } else {
                struct ata_result res;
                ata_result_abort(&ch->dev[ch->active].ata, &res);
                ide_cmd_finish(ch, &res, true);
            }
            return;
        }
        if (ch->xfer_done < ch->xfer_total) {
            ide_dma_next(ch);
            return;
        }
    }
    ide_dma_finish(ch, status);
}

/* The start bit is set and a DMA command waits: set up the table and go. */
static void ide_dma_run(struct ide_channel *ch)
{
    bool to_memory = ide_dma_to_memory(ch);
    /* The direction bit must match the command, and the function must be allowed to master the bus. */
    if (!pci_dev_is_bus_master(ch->ctrl->pci) || ((ch->bmic & IDE_BMIC_WRITE) != 0) != to_memory) {
        ide_dma_fail(ch);
        return;
    }
    ide_prd_walk(ch);
    if (ch->sg_bytes < ch->xfer_total) {
        LOG_DEBUG("channel %u: PRD table of %llu bytes for a %llu-byte transfer", ch->index,
                  (unsigned long long)ch->sg_bytes, (unsigned long long)ch->xfer_total);
        ide_dma_fail(ch);
        return;
    }
    ch->dma_running = true;
    ch->dma_stopped = false;
    ch->xfer_done = 0;
    if (ch->packet && ch->acmd.kind != ATAPI_READ) {
        ide_dma_copy(ch, to_memory);
        if (!to_memory)
            atapi_data_out_done(&ch->dev[ch->active].atapi, &ch->acmd, ch->buf, (uint32_t)ch->xfer_total);
        ch->xfer_done = ch->xfer_total;
        ide_dma_finish(ch, 0);
        return;
    }
    ide_dma_next(ch);
}

void ide_dma_begin(struct ide_channel *ch)
{
    struct ide_dev *d = &ch->dev[ch->active];
    ch->phase = IDE_PHASE_DMA_WAIT;
    d->status = ATA_STAT_DRDY | ATA_STAT_DSC | ATA_STAT_DRQ;
    if (ch->packet)
        d->count = ch->acmd.kind == ATAPI_DATA_OUT ? 0 : ATA_IREASON_IO;
    if (ch->bmic & IDE_BMIC_START)
        ide_dma_run(ch);
}

/* ---- Registers (BAR4: channel 0 at 0-7, channel 1 at 8-15) ---------------------------------------- */

static void ide_bmic_write(struct ide_channel *ch, uint8_t v)
{
    uint8_t old = ch->bmic;
    ch->bmic = v & (IDE_BMIC_START | IDE_BMIC_WRITE);
    if (!(old & IDE_BMIC_START) && (v & IDE_BMIC_START)) {
        ch->bmis |= IDE_BMIS_ACTIVE;
        if (ch->phase == IDE_PHASE_DMA_WAIT)
            ide_dma_run(ch);
    } else if ((old & IDE_BMIC_START) && !(v & IDE_BMIC_START)) {
        /* Stopping halts the engine; a chunk already with the drive still completes the command. */
        ch->bmis &= (uint8_t)~IDE_BMIS_ACTIVE;
        if (ch->dma_running)
            ch->dma_stopped = true;
    }
}

static uint8_t ide_bm_read_byte(struct ide_ctrl *c, unsigned offset)
{
    struct ide_channel *ch = &c->ch[(offset >> 3) & 1];
    switch (offset & 7) {
    case 0: return ch->bmic;
    case 2: return ch->bmis;
    case 4: case 5: case 6: case 7: return (uint8_t)(ch->prd_addr >> (8 * ((offset & 7) - 4)));
    default: return 0;
    }
}

static void ide_bm_write_byte(struct ide_ctrl *c, unsigned offset, uint8_t v)
{
    struct ide_channel *ch = &c->ch[(offset >> 3) & 1];
    switch (offset & 7) {
    case 0:
        ide_bmic_write(ch, v);
        break;
    case 2: {
        /* Interrupt and error are write-one-to-clear, the drive DMA-capable bits plain read/write. */
        uint8_t keep = ch->bmis & (IDE_BMIS_ACTIVE | IDE_BMIS_ERROR | IDE_BMIS_INT);
        keep &= (uint8_t)~(v & (IDE_BMIS_ERROR | IDE_BMIS_INT));
        ch->bmis = (uint8_t)(keep | (v & (IDE_BMIS_DMA0 | IDE_BMIS_DMA1)));
        break;
    }
    case 4: case 5: case 6: case 7: {
        unsigned shift = 8 * ((offset & 7) - 4);
        ch->prd_addr = (ch->prd_addr & ~(0xffu << shift)) | (uint32_t)v << shift;
        ch->prd_addr &= ~3u; /* dword aligned (BMIDTPx bits 1:0 read as zero) */
        break;
    }
    default:
        break;
    }
}

static uint64_t ide_bm_read(void *opaque, uint64_t offset, unsigned size)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < size && offset + i < 16; i++)
        v |= (uint64_t)ide_bm_read_byte(opaque, (unsigned)(offset + i)) << (8 * i);
    return v;
}

static void ide_bm_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    for (unsigned i = 0; i < size && offset + i < 16; i++)
        ide_bm_write_byte(opaque, (unsigned)(offset + i), (uint8_t)(value >> (8 * i)));
}

const struct io_ops g_ide_bm_ops = {
    .read = ide_bm_read,
    .write = ide_bm_write,
    .min_access = 1,
    .max_access = 4,
};
