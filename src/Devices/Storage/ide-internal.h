/* ide-internal.h - the PIIX3 IDE controller's state, shared by its register/command file (ide.c) and its bus-master DMA (ide-dma.c). */
#ifndef VIREO_DEVICES_STORAGE_IDE_INTERNAL_H
#define VIREO_DEVICES_STORAGE_IDE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "ata.h"
#include "atapi.h"
#include "vireo/pci.h"
#include "vireo/pdm.h"
#include "vireo/storage.h"
#include "vireo/vm.h"

#define IDE_CHANNELS 2
#define IDE_DEVICES  2 /* per channel: device 0 (master) and device 1 (slave) */
/* The channel's data buffer: PIO blocks are served from it, medium reads fill it in chunks of this size. */
#define IDE_BUF_BYTES (128u * 1024u)
/* A PRD table may not cross a 64 KiB boundary (PIIX3 datasheet 2.7.3): at most 8192 entries of 8 bytes. */
#define IDE_PRD_MAX 8192u
/* DMA is cut into drive requests of at most this many bytes. */
#define IDE_DMA_CHUNK_BYTES (4u << 20)

/* Bus-master registers (PIIX3 datasheet 2.7: BMICx, BMISx, BMIDTPx), per channel at BAR4 + 8 * channel. */
#define IDE_BMIC_START 0x01
#define IDE_BMIC_WRITE 0x08 /* read/write control: set = the bus master writes memory (a device read) */
#define IDE_BMIS_ACTIVE 0x01
#define IDE_BMIS_ERROR  0x02
#define IDE_BMIS_INT    0x04
#define IDE_BMIS_DMA0   0x20
#define IDE_BMIS_DMA1   0x40

/* What the channel's active command is doing. */
enum ide_phase {
    IDE_PHASE_IDLE = 0,
    IDE_PHASE_PIO_IN,     /* DRQ: the host reads [buf_pos, block_end) from the buffer */
    IDE_PHASE_PIO_OUT,    /* DRQ: the host writes [buf_pos, block_end) into the buffer */
    IDE_PHASE_PACKET,     /* DRQ: the host writes the 12 command bytes of a PACKET command */
    IDE_PHASE_DMA_WAIT,   /* a DMA command waits for the bus master's start bit */
    IDE_PHASE_BUSY,       /* BSY: a drive request is in flight */
    IDE_PHASE_COUNT
};

/* What a finished drive request means. */
enum ide_req_kind {
    IDE_REQ_PIO_READ,   /* a chunk of a PIO read into the buffer */
    IDE_REQ_PIO_WRITE,  /* one written DRQ block */
    IDE_REQ_FLUSH,      /* FLUSH CACHE, or the flush after a write-through write */
    IDE_REQ_DMA,        /* a chunk of a DMA transfer */
};

struct ide_ctrl;
struct ide_channel;

/* One device on a channel and its copy of the task file (ATA/ATAPI-6 7.1: both devices latch every write). */
struct ide_dev {
    struct ide_channel *ch;
    unsigned index;
    struct drive *drive; /* NULL: no device */
    struct ata_dev ata;
    struct atapi_dev atapi;
    uint8_t feature, count, lbal, lbam, lbah;
    uint8_t hob_feature, hob_count, hob_lbal, hob_lbam, hob_lbah; /* previous values (48-bit commands) */
    uint8_t device;
    uint8_t status, error;
    bool irq_pending; /* the device's INTRQ, before nIEN */
};

struct ide_channel {
    struct ide_ctrl *ctrl;
    unsigned index;
    struct ide_dev dev[IDE_DEVICES];
    struct io_region *io_cmd, *io_ctl;
    struct pdm_irq *irq;
    bool irq_level;
    uint8_t control; /* device control: nIEN, SRST, HOB */
    unsigned sel;    /* DEV bit of the last device register write */

    /* The active command (one per channel, on device `active`). */
    enum ide_phase phase;
    unsigned active;
    struct ata_cmd cmd;
    bool packet;              /* an ATAPI command (cmd.kind == ATA_KIND_PACKET) */
    uint16_t bcl;             /* ATAPI PIO: the byte count limit the host gave with PACKET */
    uint8_t cdb[ATAPI_CDB_BYTES];
    struct atapi_cmd acmd;
    uint8_t *buf;             /* IDE_BUF_BYTES */
    uint32_t buf_len;         /* valid bytes in buf */
    uint32_t buf_pos;         /* next byte the host reads or writes */
    uint32_t block_end;       /* end of the current DRQ block */
    uint64_t xfer_total;      /* bytes the command moves */
    uint64_t xfer_done;       /* bytes moved to or from the medium (or the host, for DMA) */
    uint64_t host_done;       /* PIO: bytes the host has read or written */
    bool flush_pending;       /* a write-through write still needs its flush */

    /* Drive request in flight. */
    struct drive_req req;
    enum ide_req_kind req_kind;
    bool req_busy;

    /* Bus master (BMICx/BMISx/BMIDTPx). */
    uint8_t bmic, bmis;
    uint32_t prd_addr;
    bool dma_running;         /* a DMA transfer has been set up from the PRD table */
    bool dma_stopped;         /* the guest cleared the start bit while it ran */
    struct drive_sg *sg;      /* the PRD table as guest ranges (IDE_PRD_MAX) */
    unsigned sg_count;
    uint64_t sg_bytes;        /* what the PRD table describes */
    bool prd_eot;             /* the table ended with an EOT entry within sg_bytes */
    struct drive_sg *chunk_sg; /* the piece of sg for the current chunk */
};

struct ide_ctrl {
    struct pdm_dev *dev;
    struct vm *vm;
    struct pci_dev *pci;
    struct io_region *io_bm;
    struct ide_channel ch[IDE_CHANNELS];
};

/* ide.c */
void ide_irq_raise(struct ide_channel *ch);
void ide_irq_update(struct ide_channel *ch);
/* Shows the result of the active command on its device, raises the interrupt and ends the command. */
void ide_cmd_finish(struct ide_channel *ch, const struct ata_result *res, bool irq);
/* The active ATAPI command ended (GOOD, or CHECK CONDITION with the sense in the engine). */
void ide_packet_finish(struct ide_channel *ch, bool check);
/* Where the active command's data starts on the medium. */
uint64_t ide_medium_base(const struct ide_channel *ch);
/* Submits the channel's drive request (BSY until done); a refusal ends the command at once. */
void ide_submit(struct ide_channel *ch, enum ide_req_kind kind, enum blk_op op, uint64_t offset, uint64_t len, void *buf,
                const struct drive_sg *sg, unsigned sg_count);
/* The active command's data moved (status 0) or failed: flush for write-through, then the result. */
void ide_transfer_done(struct ide_channel *ch, int status);
/* Waits for the channel's drive requests (and any they start) to finish. */
void ide_channel_drain(struct ide_channel *ch);

/* ide-dma.c */
extern const struct io_ops g_ide_bm_ops;
/* The active command wants DMA: start it if the bus master is started, otherwise wait for the start bit. */
void ide_dma_begin(struct ide_channel *ch);
/* A DMA chunk's drive request finished. */
void ide_dma_chunk_done(struct ide_channel *ch, int status);
void ide_dma_reset(struct ide_channel *ch);

#endif
