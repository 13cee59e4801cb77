/* ata.h - the ATA command set of one drive (disk or ATAPI packet device), shared by the IDE and AHCI controllers. */
#ifndef VIREO_DEVICES_STORAGE_ATA_H
#define VIREO_DEVICES_STORAGE_ATA_H

#include <stdbool.h>
#include <stdint.h>

#include "vireo/storage.h"
#include "vireo/vm.h"

/*
 * This module knows what an ATA command means for a drive and nothing about how the
 * command arrived: IDE writes it through task-file registers, AHCI sends it in a
 * register host-to-device FIS.  A controller copies the command's registers into a
 * struct ata_taskfile, asks ata_cmd_decode() what to do, moves the data its own way
 * (PIO through a data port, DMA from a PRD table or a PRDT) and reports the outcome
 * with ata_cmd_complete(), which yields the status, error and output registers
 * (struct ata_result) the controller shows the guest (task file or D2H FIS).
 *
 * The per-drive settings the command set changes (multiple count, transfer mode,
 * write cache, CHS translation, power mode) live in struct ata_dev, which the
 * controller embeds once per drive and saves with ata_dev_save().  References:
 * ATA/ATAPI-6 (T13/1410D) and ATA8-ACS (T13/1699-D) for the commands and IDENTIFY
 * data, SFF-8020i/MMC for the packet interface.
 */

/* ---- Registers (ATA/ATAPI-6 section 7) --------------------------------------------- */

/* Status (7.15.6). */
#define ATA_STAT_BSY  0x80
#define ATA_STAT_DRDY 0x40
#define ATA_STAT_DF   0x20
#define ATA_STAT_DSC  0x10 /* device seek complete (obsolete, still expected by old guests) */
#define ATA_STAT_DRQ  0x08
#define ATA_STAT_CORR 0x04
#define ATA_STAT_ERR  0x01

/* Error (7.9.6). */
#define ATA_ERR_ICRC 0x80
#define ATA_ERR_UNC  0x40
#define ATA_ERR_MC   0x20
#define ATA_ERR_IDNF 0x10
#define ATA_ERR_MCR  0x08
#define ATA_ERR_ABRT 0x04
#define ATA_ERR_NM   0x02
#define ATA_ERR_AMNF 0x01

/* Device (7.7): bit 6 selects LBA addressing, bit 4 device 1; bits 7 and 5 are obsolete ones. */
#define ATA_DEV_LBA      0x40
#define ATA_DEV_DEV      0x10
#define ATA_DEV_OBSOLETE 0xa0

/* Device control (7.8). */
#define ATA_CTL_HOB  0x80
#define ATA_CTL_SRST 0x04
#define ATA_CTL_NIEN 0x02

/* Interrupt reason of a PACKET device: in the sector count register (ATA/ATAPI-6 7.16.6). */
#define ATA_IREASON_COD 0x01 /* command (CDB) rather than data */
#define ATA_IREASON_IO  0x02 /* to the host */
#define ATA_IREASON_REL 0x04

/* Signatures after reset or EXECUTE DEVICE DIAGNOSTIC (9.12): LBA mid/high. */
#define ATA_SIG_ATA_MID   0x00
#define ATA_SIG_ATA_HIGH  0x00
#define ATA_SIG_ATAPI_MID 0x14
#define ATA_SIG_ATAPI_HIGH 0xeb

/* ---- Commands ------------------------------------------------------------------------ */

enum {
    ATA_CMD_NOP = 0x00,
    ATA_CMD_DEVICE_RESET = 0x08,
    ATA_CMD_RECALIBRATE = 0x10, /* 0x10-0x1f */
    ATA_CMD_READ_SECTORS = 0x20,
    ATA_CMD_READ_SECTORS_NR = 0x21,
    ATA_CMD_READ_SECTORS_EXT = 0x24,
    ATA_CMD_READ_DMA_EXT = 0x25,
    ATA_CMD_READ_MULTIPLE_EXT = 0x29,
    ATA_CMD_WRITE_SECTORS = 0x30,
    ATA_CMD_WRITE_SECTORS_NR = 0x31,
    ATA_CMD_WRITE_SECTORS_EXT = 0x34,
    ATA_CMD_WRITE_DMA_EXT = 0x35,
    ATA_CMD_WRITE_MULTIPLE_EXT = 0x39,
    ATA_CMD_WRITE_DMA_FUA_EXT = 0x3d,
    ATA_CMD_READ_VERIFY = 0x40,
    ATA_CMD_READ_VERIFY_NR = 0x41,
    ATA_CMD_READ_VERIFY_EXT = 0x42,
    ATA_CMD_SEEK = 0x70, /* 0x70-0x7f */
    ATA_CMD_EXEC_DIAGNOSTIC = 0x90,
    ATA_CMD_INIT_DEV_PARAMS = 0x91,
    ATA_CMD_PACKET = 0xa0,
    ATA_CMD_IDENTIFY_PACKET = 0xa1,
    ATA_CMD_READ_MULTIPLE = 0xc4,
    ATA_CMD_WRITE_MULTIPLE = 0xc5,
    ATA_CMD_SET_MULTIPLE = 0xc6,
    ATA_CMD_READ_DMA = 0xc8,
    ATA_CMD_READ_DMA_NR = 0xc9,
    ATA_CMD_WRITE_DMA = 0xca,
    ATA_CMD_WRITE_DMA_NR = 0xcb,
    ATA_CMD_WRITE_MULTIPLE_FUA_EXT = 0xce,
    ATA_CMD_STANDBY_IMMEDIATE = 0xe0,
    ATA_CMD_IDLE_IMMEDIATE = 0xe1,
    ATA_CMD_STANDBY = 0xe2,
    ATA_CMD_IDLE = 0xe3,
    ATA_CMD_CHECK_POWER_MODE = 0xe5,
    ATA_CMD_SLEEP = 0xe6,
    ATA_CMD_FLUSH_CACHE = 0xe7,
    ATA_CMD_FLUSH_CACHE_EXT = 0xea,
    ATA_CMD_IDENTIFY = 0xec,
    ATA_CMD_SET_FEATURES = 0xef,
};

#define ATA_SECTOR_BYTES 512u
/* The largest READ/WRITE MULTIPLE block this model offers (IDENTIFY word 47). */
#define ATA_MAX_MULTIPLE 16u

/* ---- Per-drive state --------------------------------------------------------------- */

struct ata_dev {
    struct drive *drive;  /* NULL: no device */
    bool atapi;           /* a PACKET device (CD/DVD drive): see atapi.h for its commands */
    uint64_t sectors;     /* disks: 512-byte sectors of the medium */
    /* Default CHS geometry (IDENTIFY words 1, 3, 6) and the current translation (words 54-58). */
    uint16_t cyls, heads, secs;
    uint16_t cur_cyls, cur_heads, cur_secs;
    uint8_t multiple;     /* sectors per DRQ block of READ/WRITE MULTIPLE; 0: multiple mode disabled */
    uint8_t xfer_mode;    /* SET FEATURES 03h value: 0x08|n PIO n, 0x20|n MWDMA n, 0x40|n UDMA n; 0: default */
    bool write_cache;
    bool read_lookahead;
    bool revert_on_reset; /* SET FEATURES 66h/CCh: keep settings over a soft reset when false */
    bool standby;         /* power mode for CHECK POWER MODE */
    unsigned id_flags;    /* ATA_ID_* the controller's transport reports in IDENTIFY (set after ata_dev_init) */
};

/* Binds d to drive (NULL: no device) and sets the power-on defaults. */
void ata_dev_init(struct ata_dev *d, struct drive *drive);
/* Power-on or hardware reset (every setting to its default); soft reset keeps them unless revert_on_reset. */
void ata_dev_reset(struct ata_dev *d, bool hard);
bool ata_dev_present(const struct ata_dev *d);
void ata_dev_save(const struct ata_dev *d, struct ssm *ssm);
/* Loads what ata_dev_save wrote; VERR_SSM_CORRUPT for values this model never produces. */
int ata_dev_load(struct ata_dev *d, struct ssm *ssm);

/* ---- IDENTIFY data ------------------------------------------------------------------- */

/* Transport details IDENTIFY reports (word 93 for parallel ATA, words 76-79 for serial ATA). */
#define ATA_ID_SATA    0x1u /* a Serial ATA device (AHCI) */
#define ATA_ID_DEVICE1 0x2u /* parallel ATA: the device is device 1 (slave) */

/* IDENTIFY DEVICE (disks) or IDENTIFY PACKET DEVICE (ATAPI) data, little-endian words, checksum in word 255. */
void ata_identify(const struct ata_dev *d, unsigned flags, uint16_t words[256]);
/* Copies s into words[first..] as ATA strings: two characters per word, first in the high byte, space padded. */
void ata_id_string(uint16_t *words, unsigned first, unsigned count, const char *s);

/* ---- Commands ------------------------------------------------------------------------ */

/* The registers of one command, as a register H2D FIS carries them (IDE: current and previous values). */
struct ata_taskfile {
    uint8_t command;
    uint8_t features, features_exp;
    uint8_t count, count_exp;
    uint8_t lba[6]; /* LBA low, mid, high, then (48-bit commands) the previous values: bits 24-47 */
    uint8_t device;
};

/* What a controller does with a decoded command. */
enum ata_cmd_kind {
    ATA_KIND_DONE,     /* finished already: show cmd->res */
    ATA_KIND_PIO_IN,   /* data to the host by PIO: from the medium, or cmd->data (IDENTIFY) when data_bytes > 0 */
    ATA_KIND_PIO_OUT,  /* data from the host by PIO, written to the medium */
    ATA_KIND_DMA_IN,   /* medium to host memory by DMA */
    ATA_KIND_DMA_OUT,  /* host memory to the medium by DMA */
    ATA_KIND_FLUSH,    /* submit a BLK_OP_FLUSH to the drive */
    ATA_KIND_PACKET,   /* ATAPI PACKET: take 12 command bytes (cmd->packet_dma: data by DMA), see atapi.h */
    ATA_KIND_DIAG,     /* EXECUTE DEVICE DIAGNOSTIC: the controller runs it on every device it has */
    ATA_KIND_DEVICE_RESET, /* ATAPI DEVICE RESET: reset the device, signature, no interrupt */
};

/* Status, error and output registers after a command (IDE task file, AHCI D2H FIS). */
struct ata_result {
    uint8_t status;
    uint8_t error;
    bool set_tf;    /* lba, count and device below replace the registers (signature, error LBA, power mode) */
    uint8_t count, count_exp;
    uint8_t lba[6];
    uint8_t device;
};

struct ata_cmd {
    enum ata_cmd_kind kind;
    uint8_t command;
    uint8_t device;      /* the device register as issued (CHS or LBA, for the error address) */
    bool lba48;
    bool write;          /* data moves to the medium */
    bool fua;            /* write through to stable storage: flush after the write */
    uint64_t lba;        /* first sector */
    uint32_t sectors;    /* sectors to move (1..65536) */
    uint32_t block_sectors; /* PIO: sectors per DRQ block (1, or the multiple count) */
    bool packet_dma;     /* PACKET with features bit 0: the data phase uses DMA */
    uint32_t data_bytes; /* PIO_IN from data[] rather than the medium */
    uint16_t data[256];
    struct ata_result res; /* ATA_KIND_DONE; otherwise filled by ata_cmd_complete */
};

/*
 * Decodes tf for d into cmd.  Commands that need no data transfer and no drive request
 * (SET FEATURES, SET MULTIPLE MODE, power commands, ...) take effect here and come back
 * as ATA_KIND_DONE, as do all errors (ABRT for unknown or unsupported commands and bad
 * parameters, IDNF for a range past the end of the medium, with the signature for ATA
 * commands sent to a packet device).  Never fails otherwise; cmd is fully overwritten.
 */
void ata_cmd_decode(struct ata_dev *d, const struct ata_taskfile *tf, struct ata_cmd *cmd);
/*
 * The outcome of a transfer, verify or flush: status 0 or the drive's error, after
 * done_sectors sectors (the failing one is done_sectors past cmd->lba).  Fills cmd->res:
 * DRDY|DSC, or ERR with UNC (read), ABRT (write, flush) or IDNF (out of range) and the
 * failing LBA in the output registers.
 */
void ata_cmd_complete(struct ata_dev *d, struct ata_cmd *cmd, int status, uint32_t done_sectors);
/* The reset / diagnostic signature of d (ATA or ATAPI) into res: count 1, LBA low 1, mid/high by type. */
void ata_set_signature(const struct ata_dev *d, struct ata_result *res);
/* An aborted command: ERR, ABRT, DRDY. */
void ata_result_abort(const struct ata_dev *d, struct ata_result *res);

#endif
