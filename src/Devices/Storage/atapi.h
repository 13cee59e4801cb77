/* atapi.h - the SCSI/MMC command engine of a CD/DVD drive (12-byte CDBs to data or sense), shared by IDE and AHCI. */
#ifndef VIREO_DEVICES_STORAGE_ATAPI_H
#define VIREO_DEVICES_STORAGE_ATAPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vireo/storage.h"
#include "vireo/vm.h"

/*
 * A controller that received a PACKET command's 12 command bytes hands them to
 * atapi_cmd_start(), which answers one of four ways (struct atapi_cmd):
 *  - ATAPI_DATA_IN: the reply (after the CDB's allocation length) is in the caller's
 *    buffer; len 0 means GOOD status with no data phase;
 *  - ATAPI_READ: read len bytes of the medium from offset_bytes (2048-byte sectors) to
 *    the host, then call atapi_read_done() with the drive's status;
 *  - ATAPI_DATA_OUT: take len bytes from the host (MODE SELECT), then atapi_data_out_done();
 *  - ATAPI_CHECK: CHECK CONDITION; the sense data is kept for REQUEST SENSE and
 *    atapi_error_reg() gives the ATA error register (sense key in bits 7:4, ABRT).
 * The engine holds no controller state; what it keeps (sense, unit attention, media
 * events) is saved with atapi_dev_save().  References: SPC-3, MMC-5 (T10/1675D),
 * SFF-8020i (ATAPI for CD-ROMs).
 */

#define ATAPI_CDB_BYTES   12
#define ATAPI_SECTOR_BYTES 2048u
/* The largest reply a non-read command produces (READ DVD STRUCTURE format 0 is 2052 bytes). */
#define ATAPI_REPLY_MAX   4096u

/* Sense keys and additional sense codes (SPC-3 4.5.6, MMC-5 annex F). */
enum {
    SENSE_NONE = 0x0,
    SENSE_NOT_READY = 0x2,
    SENSE_MEDIUM_ERROR = 0x3,
    SENSE_HARDWARE_ERROR = 0x4,
    SENSE_ILLEGAL_REQUEST = 0x5,
    SENSE_UNIT_ATTENTION = 0x6,
    SENSE_ABORTED_COMMAND = 0xb,
};
#define ASC_UNRECOVERED_READ_ERROR 0x11
#define ASC_INVALID_OPCODE         0x20
#define ASC_LBA_OUT_OF_RANGE       0x21
#define ASC_INVALID_FIELD_IN_CDB   0x24
#define ASC_INVALID_FIELD_IN_PARAM 0x26
#define ASC_WRITE_PROTECTED        0x27
#define ASC_MEDIUM_CHANGED         0x28 /* NOT READY TO READY CHANGE, MEDIUM MAY HAVE CHANGED */
#define ASC_POWER_ON_RESET         0x29
#define ASC_INCOMPATIBLE_MEDIUM    0x30
#define ASC_SAVING_NOT_SUPPORTED   0x39
#define ASC_MEDIUM_NOT_PRESENT     0x3a
#define ASC_MEDIUM_REMOVAL_PREVENTED 0x53

/* Operation codes (MMC-5 table 3 and SPC-3). */
enum {
    SCSI_TEST_UNIT_READY = 0x00,
    SCSI_REQUEST_SENSE = 0x03,
    SCSI_INQUIRY = 0x12,
    SCSI_MODE_SELECT_6 = 0x15,
    SCSI_MODE_SENSE_6 = 0x1a,
    SCSI_START_STOP_UNIT = 0x1b,
    SCSI_PREVENT_ALLOW_REMOVAL = 0x1e,
    SCSI_READ_CAPACITY = 0x25,
    SCSI_READ_10 = 0x28,
    SCSI_SEEK_10 = 0x2b,
    SCSI_READ_SUB_CHANNEL = 0x42,
    SCSI_READ_TOC = 0x43,
    SCSI_GET_CONFIGURATION = 0x46,
    SCSI_GET_EVENT_STATUS = 0x4a,
    SCSI_READ_DISC_INFO = 0x51,
    SCSI_READ_TRACK_INFO = 0x52,
    SCSI_MODE_SELECT_10 = 0x55,
    SCSI_MODE_SENSE_10 = 0x5a,
    SCSI_READ_12 = 0xa8,
    SCSI_GET_PERFORMANCE = 0xac,
    SCSI_READ_DVD_STRUCTURE = 0xad,
    SCSI_SET_CD_SPEED = 0xbb,
    SCSI_MECHANISM_STATUS = 0xbd,
    SCSI_READ_CD = 0xbe,
};

/* GET EVENT STATUS NOTIFICATION media event codes (MMC-5 6.8.2.4, table 138). */
enum {
    ATAPI_EVENT_NONE = 0,
    ATAPI_EVENT_EJECT_REQUEST = 1,
    ATAPI_EVENT_NEW_MEDIA = 2,
    ATAPI_EVENT_MEDIA_REMOVAL = 3,
};

struct atapi_dev {
    struct drive *drive;
    uint8_t sense_key, asc, ascq; /* the last command's sense (REQUEST SENSE) */
    bool unit_attention;          /* report NOT READY TO READY CHANGE once, to the next command */
    uint8_t media_event;          /* pending ATAPI_EVENT_* for GET EVENT STATUS NOTIFICATION */
    bool had_media;               /* for the event after a change */
    void (*notify)(void *opaque); /* the controller's own interest in media changes (may be NULL) */
    void *notify_opaque;
};

/*
 * Binds a to a CD drive and installs the drive's media listener (a change sets the
 * unit attention and the media event, then calls notify if set).  atapi_dev_fini()
 * removes the listener.
 */
void atapi_dev_init(struct atapi_dev *a, struct drive *drive, void (*notify)(void *opaque), void *opaque);
void atapi_dev_fini(struct atapi_dev *a);
/* Device reset: sense cleared; a pending unit attention stays (the medium did change). */
void atapi_dev_reset(struct atapi_dev *a);
void atapi_dev_save(const struct atapi_dev *a, struct ssm *ssm);
/* with_lock: the stream carries the tray lock (IDE unit version 2, AHCI 2); older ones leave it unlocked. */
int atapi_dev_load(struct atapi_dev *a, struct ssm *ssm, bool with_lock);

enum atapi_cmd_kind { ATAPI_DATA_IN, ATAPI_READ, ATAPI_DATA_OUT, ATAPI_CHECK };

struct atapi_cmd {
    enum atapi_cmd_kind kind;
    uint8_t opcode;
    uint32_t len;          /* bytes of the data phase (0: none) */
    uint64_t offset_bytes; /* ATAPI_READ: where on the medium */
};

/*
 * Runs the command in cdb.  buf (at least ATAPI_REPLY_MAX bytes) receives the reply of
 * ATAPI_DATA_IN.  Never fails otherwise: everything the command got wrong is sense.
 */
void atapi_cmd_start(struct atapi_dev *a, const uint8_t cdb[ATAPI_CDB_BYTES], uint8_t *buf, struct atapi_cmd *cmd);
/* The medium read of an ATAPI_READ finished with status; false: it became a CHECK CONDITION. */
bool atapi_read_done(struct atapi_dev *a, struct atapi_cmd *cmd, int status);
/* The host's data of an ATAPI_DATA_OUT arrived (MODE SELECT parameters are accepted and ignored). */
void atapi_data_out_done(struct atapi_dev *a, struct atapi_cmd *cmd, const uint8_t *data, uint32_t len);
/* Sets the sense of a CHECK CONDITION (also for controllers that refuse a command themselves). */
void atapi_set_sense(struct atapi_dev *a, uint8_t key, uint8_t asc, uint8_t ascq);
/* ATA error register of the last command: sense key << 4, plus ABRT when the key is not NONE. */
uint8_t atapi_error_reg(const struct atapi_dev *a);

#endif
