/* ahci-ata.c - the AHCI port's device side: ATA commands (via ata.h), NCQ, logs, TRIM and ATAPI packets (via atapi.h). */

/*
 * ata.h decodes the ATA command set and atapi.h runs SCSI/MMC packets; this file adds
 * what only a Serial ATA device behind AHCI has: the SATA words of IDENTIFY (NCQ,
 * speeds, asynchronous notification), READ/WRITE FPDMA QUEUED, the general purpose
 * logs READ LOG (DMA) EXT reads after an NCQ error (log page 10h), DATA SET MANAGEMENT
 * (TRIM), and SET FEATURES for SATA features.  Every data phase goes through the
 * command's PRDT, whatever the ATA protocol; the protocol only decides the FISes the
 * port posts at the end (ahci_cmd_finish).
 */

#include <stdlib.h>
#include <string.h>

#include "ahci-internal.h"
#include "vireo/rt.h"

#define LOG_COMPONENT "ahci"

/* ACS-3 commands ata.h leaves to the SATA controller. */
#define ATA_CMD_DSM             0x06
#define ATA_CMD_READ_LOG_EXT    0x2f
#define ATA_CMD_READ_LOG_DMA_EXT 0x47
#define ATA_CMD_READ_FPDMA      0x60
#define ATA_CMD_WRITE_FPDMA     0x61
#define ATA_SF_SATA_ENABLE      0x10
#define ATA_SF_SATA_DISABLE     0x90
#define ATA_SATA_FEATURE_AN     0x05

#define AHCI_NCQ_DEPTH   32
#define AHCI_DSM_BLOCKS  8  /* 512-byte blocks of ranges one DSM command may carry (IDENTIFY word 105) */
#define ATA_LOG_DIRECTORY 0x00
#define ATA_LOG_NCQ_ERROR 0x10

enum ahci_stage { STAGE_RW, STAGE_FLUSH, STAGE_DSM, STAGE_ATAPI_READ };

static void ahci_ata_drive_done(struct drive_req *req, int status);

static void ahci_ata_finish_ok(struct ahci_cmd *c, uint8_t status)
{
    struct ata_result res = {.status = status};
    ahci_cmd_finish(c, &res);
}

static void ahci_ata_abort(struct ahci_cmd *c)
{
    struct ata_result res;
    ata_result_abort(&c->port->ata, &res);
    ahci_cmd_finish(c, &res);
}

/* Sends controller-made data to the host (IDENTIFY, logs); a PRDT too small gets what fits and PxIS.OFS. */
static void ahci_ata_reply(struct ahci_cmd *c, const void *data, uint32_t len, enum ahci_proto proto)
{
    c->proto = proto;
    bool fits = ahci_cmd_map(c, len);
    c->done_bytes = ahci_cmd_copy_to_guest(c, data, len);
    if (!fits)
        c->port->is |= AHCI_PX_IS_OFS;
    ahci_ata_finish_ok(c, ATA_STAT_DRDY | ATA_STAT_DSC);
}

static void ahci_ata_submit(struct ahci_cmd *c, enum blk_op op, uint64_t offset, uint64_t len, unsigned stage)
{
    c->stage = stage;
    c->req = (struct drive_req){
        .op = op,
        .offset_bytes = offset,
        .len_bytes = len,
        .sg = (op == BLK_OP_READ || op == BLK_OP_WRITE) ? c->sg : NULL,
        .sg_count = (op == BLK_OP_READ || op == BLK_OP_WRITE) ? c->sg_count : 0,
        .done = ahci_ata_drive_done,
        .opaque = c,
    };
    int rc = drive_submit(c->port->drive, &c->req);
    if (rc)
        ahci_ata_drive_done(&c->req, rc); /* checked before anything started: fail the command now */
}

/* ---- IDENTIFY --------------------------------------------------------------------------- */

static void ahci_ata_identify(struct ahci_cmd *c)
{
    struct ahci_port *port = c->port;
    uint16_t w[256];
    ata_identify(&port->ata, ATA_ID_SATA, w);
    /* Serial ATA capabilities (ACS-3 7.12.7.39-42): Gen1-3, and for disks NCQ with 32 tags. */
    w[76] |= 0x000e;
    if (!port->atapi) {
        w[75] = AHCI_NCQ_DEPTH - 1;
        w[76] |= 1u << 8;
        /* General purpose logging (words 84/87 bit 5) and READ LOG DMA EXT (words 119/120 bit 3). */
        w[84] |= 1u << 5;
        w[87] |= 1u << 5;
        w[119] |= 1u << 3 | 1u << 14;
        w[120] |= 1u << 3 | 1u << 14;
        if (!drive_is_readonly(port->drive)) {
            /* DATA SET MANAGEMENT with TRIM (word 169 bit 0), up to AHCI_DSM_BLOCKS blocks (word 105). */
            w[169] |= 1u;
            w[105] = AHCI_DSM_BLOCKS;
        }
    } else {
        /* Asynchronous notification of media changes (words 78/79 bit 5). */
        w[78] |= 1u << 5;
        if (port->an_enabled)
            w[79] |= 1u << 5;
        else
            w[79] &= (uint16_t)~(1u << 5);
    }
    /* Word 255: signature A5h and a checksum that makes the 512 bytes sum to zero (ACS-3 7.12.7.91). */
    w[255] = 0x00a5;
    uint8_t sum = 0;
    for (unsigned i = 0; i < 255; i++)
        sum = (uint8_t)(sum + (w[i] & 0xff) + (w[i] >> 8));
    sum = (uint8_t)(sum + 0xa5);
    w[255] = (uint16_t)(0x00a5 | (uint16_t)(uint8_t)(0x100 - sum) << 8);
    uint8_t bytes[512];
    for (unsigned i = 0; i < 256; i++) {
        bytes[2 * i] = (uint8_t)w[i];
        bytes[2 * i + 1] = (uint8_t)(w[i] >> 8);
    }
    ahci_ata_reply(c, bytes, sizeof(bytes), AHCI_PROTO_PIO_IN);
}

/* ---- General purpose logs (ACS-3 A.2 directory, A.14 NCQ command error) ------------------ */

static void ahci_ata_read_log(struct ahci_cmd *c, const struct ata_taskfile *tf)
{
    struct ahci_port *port = c->port;
    unsigned log = tf->lba[0];
    unsigned pages = (unsigned)tf->count | (unsigned)tf->count_exp << 8;
    unsigned page = (unsigned)tf->lba[1] | (unsigned)tf->lba[4] << 8;
    /* Both logs this device keeps are one page long. */
    if ((log != ATA_LOG_DIRECTORY && log != ATA_LOG_NCQ_ERROR) || pages != 1 || page != 0) {
        ahci_ata_abort(c);
        return;
    }
    uint8_t buf[512] = {0};
    if (log == ATA_LOG_DIRECTORY) {
        buf[0] = 0x01; /* general purpose logging version 1 */
        buf[2 * ATA_LOG_NCQ_ERROR] = 1;
    } else {
        if (port->ncq_error)
            memcpy(buf, port->ncq_log, sizeof(port->ncq_log));
        else
            buf[0] = 0x80; /* NQ: the last error was not of a queued command */
        uint8_t sum = 0;
        for (unsigned i = 0; i < 511; i++)
            sum = (uint8_t)(sum + buf[i]);
        buf[511] = (uint8_t)(0x100 - sum);
        /* Reading the log ends the device's NCQ error state (SATA 13.6.3.2). */
        port->ncq_error = false;
    }
    ahci_ata_reply(c, buf, sizeof(buf),
                   tf->command == ATA_CMD_READ_LOG_EXT ? AHCI_PROTO_PIO_IN : AHCI_PROTO_DMA_IN);
}

/* ---- DATA SET MANAGEMENT (ACS-3 7.5): TRIM ranges, discarded one after the other -------------- */

static bool ahci_ata_dsm_next(struct ahci_cmd *c)
{
    while (c->buf_pos + 8 <= c->buf_len) {
        const uint8_t *e = c->buf + c->buf_pos;
        c->buf_pos += 8;
        uint64_t lba = (uint64_t)ahci_le32(e) | (uint64_t)(e[4] | e[5] << 8) << 32;
        unsigned n = (unsigned)e[6] | (unsigned)e[7] << 8;
        if (n == 0)
            continue;
        ahci_ata_submit(c, BLK_OP_DISCARD, lba * ATA_SECTOR_BYTES, (uint64_t)n * ATA_SECTOR_BYTES, STAGE_DSM);
        return true;
    }
    return false;
}

static void ahci_ata_dsm(struct ahci_cmd *c, const struct ata_taskfile *tf)
{
    struct ahci_port *port = c->port;
    unsigned blocks = (unsigned)tf->count | (unsigned)tf->count_exp << 8;
    c->proto = AHCI_PROTO_DMA_OUT;
    if (!(tf->features & 1) || blocks == 0 || blocks > AHCI_DSM_BLOCKS || drive_is_readonly(port->drive)) {
        ahci_ata_abort(c);
        return;
    }
    uint32_t len = blocks * ATA_SECTOR_BYTES;
    c->buf = malloc(len);
    if (!c->buf || !ahci_cmd_map(c, len)) {
        ahci_ata_abort(c);
        return;
    }
    ahci_cmd_copy_from_guest(c, c->buf, len);
    c->buf_len = len;
    c->buf_pos = 0;
    c->done_bytes = len;
    /* Every range is checked before any is discarded: a bad list changes nothing. */
    uint64_t sectors = port->ata.sectors;
    for (uint32_t off = 0; off < len; off += 8) {
        const uint8_t *e = c->buf + off;
        uint64_t lba = (uint64_t)ahci_le32(e) | (uint64_t)(e[4] | e[5] << 8) << 32;
        unsigned n = (unsigned)e[6] | (unsigned)e[7] << 8;
        if (n && (lba > sectors || n > sectors - lba)) {
            ahci_ata_abort(c);
            return;
        }
    }
    if (!ahci_ata_dsm_next(c))
        ahci_ata_finish_ok(c, ATA_STAT_DRDY | ATA_STAT_DSC);
}

/* ---- Medium reads and writes ------------------------------------------------------------- */

static void ahci_ata_rw(struct ahci_cmd *c)
{
    uint64_t bytes = (uint64_t)c->ata.sectors * ATA_SECTOR_BYTES;
    if (!ahci_cmd_map(c, bytes)) {
        /* The PRDT cannot hold the transfer: the HBA would overflow (PxIS.OFS); the command fails. */
        c->port->is |= AHCI_PX_IS_OFS;
        ahci_ata_abort(c);
        return;
    }
    ahci_ata_submit(c, c->ata.write ? BLK_OP_WRITE : BLK_OP_READ, c->ata.lba * ATA_SECTOR_BYTES, bytes, STAGE_RW);
}

/* READ/WRITE FPDMA QUEUED (ACS-3 7.23, 7.65): count in FEATURES, tag in COUNT 7:3, FUA in DEVICE bit 7. */
static void ahci_ata_ncq(struct ahci_cmd *c, const struct ata_taskfile *tf)
{
    struct ahci_port *port = c->port;
    struct ata_cmd *a = &c->ata;
    a->command = tf->command;
    a->kind = tf->command == ATA_CMD_WRITE_FPDMA ? ATA_KIND_DMA_OUT : ATA_KIND_DMA_IN;
    a->write = tf->command == ATA_CMD_WRITE_FPDMA;
    a->lba48 = true;
    a->device = ATA_DEV_LBA;
    a->fua = tf->device & 0x80;
    c->fua = a->fua;
    a->lba = 0;
    for (unsigned i = 0; i < 6; i++)
        a->lba |= (uint64_t)tf->lba[i] << (8 * i);
    a->sectors = (uint32_t)tf->features | (uint32_t)tf->features_exp << 8;
    if (a->sectors == 0)
        a->sectors = 65536;
    bool collision = port->ncq_tags & (1u << c->tag);
    ahci_cmd_ncq_accept(c);
    if (port->atapi || port->ncq_error || collision) {
        /* Not a queued-command device, a queue in error, or a tag in use: the device aborts. */
        ahci_ata_abort(c);
        return;
    }
    if (a->lba > port->ata.sectors || a->sectors > port->ata.sectors - a->lba) {
        ata_cmd_complete(&port->ata, a, VERR_OUT_OF_RANGE, 0);
        ahci_cmd_finish(c, &a->res);
        return;
    }
    ahci_ata_rw(c);
}

/* ---- ATAPI packets -------------------------------------------------------------------------- */

static void ahci_ata_atapi_status(struct ahci_cmd *c, bool good)
{
    struct ata_result res = {.status = ATA_STAT_DRDY};
    if (!good) {
        res.status |= ATA_STAT_ERR;
        res.error = atapi_error_reg(&c->port->cd);
    }
    ahci_cmd_finish(c, &res);
}

static void ahci_ata_packet(struct ahci_cmd *c)
{
    struct ahci_port *port = c->port;
    bool dma = c->ata.packet_dma;
    atapi_cmd_start(&port->cd, c->acmd, port->reply, &c->pkt);
    uint32_t len = c->pkt.len;
    switch (c->pkt.kind) {
    case ATAPI_DATA_IN:
        if (len) {
            if (len > ATAPI_REPLY_MAX)
                len = ATAPI_REPLY_MAX;
            ahci_cmd_map(c, len);
            c->done_bytes = ahci_cmd_copy_to_guest(c, port->reply, len);
            c->proto = dma ? AHCI_PROTO_DMA_IN : AHCI_PROTO_PACKET_PIO_IN;
        }
        ahci_ata_atapi_status(c, true);
        return;
    case ATAPI_READ: {
        /* A PRDT shorter than the reply gets what fits, as the allocation length would cut it. */
        ahci_cmd_map(c, len);
        uint64_t n = c->sg_bytes < len ? c->sg_bytes : len;
        c->proto = dma ? AHCI_PROTO_DMA_IN : AHCI_PROTO_PACKET_PIO_IN;
        if (n == 0) {
            ahci_ata_atapi_status(c, atapi_read_done(&port->cd, &c->pkt, 0));
            return;
        }
        c->done_bytes = n;
        ahci_ata_submit(c, BLK_OP_READ, c->pkt.offset_bytes, n, STAGE_ATAPI_READ);
        return;
    }
    case ATAPI_DATA_OUT: {
        if (len > ATAPI_REPLY_MAX)
            len = ATAPI_REPLY_MAX;
        ahci_cmd_map(c, len);
        uint32_t n = (uint32_t)ahci_cmd_copy_from_guest(c, port->reply, len);
        atapi_data_out_done(&port->cd, &c->pkt, port->reply, n);
        c->done_bytes = n;
        c->proto = dma ? AHCI_PROTO_DMA_OUT : AHCI_PROTO_PIO_OUT;
        ahci_ata_atapi_status(c, true);
        return;
    }
    case ATAPI_CHECK:
    default:
        ahci_ata_atapi_status(c, false);
        return;
    }
}

/* ---- Completions ------------------------------------------------------------------------ */

static void ahci_ata_drive_done(struct drive_req *req, int status)
{
    struct ahci_cmd *c = req->opaque;
    struct ahci_port *port = c->port;
    if (c->aborted) {
        ahci_cmd_finish(c, NULL);
    } else {
        switch (c->stage) {
        case STAGE_RW:
            if (!status && c->fua) {
                ahci_ata_submit(c, BLK_OP_FLUSH, 0, 0, STAGE_FLUSH);
                return;
            }
            /* fall through */
        case STAGE_FLUSH:
            ata_cmd_complete(&port->ata, &c->ata, status, status ? 0 : c->ata.sectors);
            c->done_bytes = status || c->ata.kind == ATA_KIND_FLUSH ? 0 : (uint64_t)c->ata.sectors * ATA_SECTOR_BYTES;
            ahci_cmd_finish(c, &c->ata.res);
            break;
        case STAGE_DSM:
            if (status) {
                LOG_WARN("port %u: TRIM failed: %s", port->index, rt_err_str(status));
                ahci_ata_abort(c);
            } else if (!ahci_ata_dsm_next(c)) {
                ahci_ata_finish_ok(c, ATA_STAT_DRDY | ATA_STAT_DSC);
            } else {
                return; /* the next range is under way */
            }
            break;
        case STAGE_ATAPI_READ:
        default: {
            bool good = atapi_read_done(&port->cd, &c->pkt, status);
            if (!good)
                c->done_bytes = 0;
            ahci_ata_atapi_status(c, good);
            break;
        }
        }
    }
    if (!port->hba->quiesce)
        ahci_port_process(port);
}

/* ---- Dispatch ------------------------------------------------------------------------------ */

static void ahci_ata_taskfile(const uint8_t *cfis, struct ata_taskfile *tf)
{
    tf->command = cfis[2];
    tf->features = cfis[3];
    tf->lba[0] = cfis[4];
    tf->lba[1] = cfis[5];
    tf->lba[2] = cfis[6];
    tf->device = cfis[7];
    tf->lba[3] = cfis[8];
    tf->lba[4] = cfis[9];
    tf->lba[5] = cfis[10];
    tf->features_exp = cfis[11];
    tf->count = cfis[12];
    tf->count_exp = cfis[13];
}

/* SET FEATURES 10h/90h: enable/disable a SATA feature (ACS-3 7.45.16); only asynchronous notification is offered. */
static bool ahci_ata_sata_feature(struct ahci_cmd *c, const struct ata_taskfile *tf)
{
    if (tf->features != ATA_SF_SATA_ENABLE && tf->features != ATA_SF_SATA_DISABLE)
        return false;
    if (tf->count != ATA_SATA_FEATURE_AN || !c->port->atapi) {
        ahci_ata_abort(c);
        return true;
    }
    c->port->an_enabled = tf->features == ATA_SF_SATA_ENABLE;
    ahci_ata_finish_ok(c, ATA_STAT_DRDY | ATA_STAT_DSC);
    return true;
}

void ahci_ata_execute(struct ahci_cmd *c)
{
    struct ahci_port *port = c->port;
    struct ata_taskfile tf;
    ahci_ata_taskfile(c->cfis, &tf);
    if (c->proto == AHCI_PROTO_NCQ) {
        ahci_ata_ncq(c, &tf);
        return;
    }
    switch (tf.command) {
    case ATA_CMD_IDENTIFY:
        if (!port->atapi) {
            ahci_ata_identify(c);
            return;
        }
        break;
    case ATA_CMD_IDENTIFY_PACKET:
        if (port->atapi) {
            ahci_ata_identify(c);
            return;
        }
        break;
    case ATA_CMD_READ_LOG_EXT:
    case ATA_CMD_READ_LOG_DMA_EXT:
        if (!port->atapi) {
            ahci_ata_read_log(c, &tf);
            return;
        }
        break;
    case ATA_CMD_DSM:
        if (!port->atapi) {
            ahci_ata_dsm(c, &tf);
            return;
        }
        break;
    case ATA_CMD_SET_FEATURES:
        if (ahci_ata_sata_feature(c, &tf))
            return;
        break;
    default:
        break;
    }

    struct ata_cmd *a = &c->ata;
    ata_cmd_decode(&port->ata, &tf, a);
    c->fua = a->fua;
    switch (a->kind) {
    case ATA_KIND_PIO_IN:
        if (a->data_bytes) {
            ahci_ata_reply(c, a->data, a->data_bytes, AHCI_PROTO_PIO_IN);
            return;
        }
        c->proto = AHCI_PROTO_PIO_IN;
        ahci_ata_rw(c);
        return;
    case ATA_KIND_PIO_OUT:
        c->proto = AHCI_PROTO_PIO_OUT;
        ahci_ata_rw(c);
        return;
    case ATA_KIND_DMA_IN:
        c->proto = AHCI_PROTO_DMA_IN;
        ahci_ata_rw(c);
        return;
    case ATA_KIND_DMA_OUT:
        c->proto = AHCI_PROTO_DMA_OUT;
        ahci_ata_rw(c);
        return;
    case ATA_KIND_FLUSH:
        ahci_ata_submit(c, BLK_OP_FLUSH, 0, 0, STAGE_FLUSH);
        return;
    case ATA_KIND_PACKET:
        if (port->atapi) {
            ahci_ata_packet(c);
            return;
        }
        ahci_ata_abort(c);
        return;
    case ATA_KIND_DIAG:
    case ATA_KIND_DEVICE_RESET: {
        /* One device per port: it resets and answers with its signature (diagnostic code 01h). */
        ata_dev_reset(&port->ata, false);
        if (port->atapi)
            atapi_dev_reset(&port->cd);
        struct ata_result res;
        ahci_port_signature(port, &res);
        ahci_cmd_finish(c, &res);
        return;
    }
    case ATA_KIND_DONE:
    default:
        ahci_cmd_finish(c, &a->res);
        return;
    }
}
