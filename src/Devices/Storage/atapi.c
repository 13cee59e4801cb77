/* atapi.c - the SCSI/MMC command engine of a CD/DVD drive: 12-byte CDBs to reply data, medium reads or sense. */

/*
 * Design: a pure function of the drive's medium and this small state, so IDE and AHCI
 * share it.  Every reply is built whole into the caller's buffer and then cut to the
 * CDB's allocation length; medium reads are only described (offset and length) and
 * the controller moves the data.  Media changes arrive through the drive's media
 * listener: a new medium arms a one-shot UNIT ATTENTION (NOT READY TO READY CHANGE)
 * and a GET EVENT STATUS NOTIFICATION media event, as MMC-5 4.1.6 and 6.8 describe.
 * Commands that need a medium answer NOT READY / MEDIUM NOT PRESENT without one.
 * Media are ISO images: one data track of 2048-byte sectors, a CD-ROM up to
 * 360000 sectors (80 minutes) and a DVD-ROM above.
 */

#include <string.h>

#include "ata.h"
#include "atapi.h"
#include "vireo/err.h"
#include "vireo/rt.h"

#define LOG_COMPONENT "atapi"

#define ATAPI_CD_MAX_SECTORS 360000u /* 80 minutes at 75 sectors per second */
#define ATAPI_KBPS           2816u   /* the 16x speed reported in mode page 2Ah and GET PERFORMANCE */
#define ATAPI_PROFILE_CDROM  0x0008
#define ATAPI_PROFILE_DVDROM 0x0010
#define ATAPI_MAX_READ_SECTORS (UINT32_MAX / ATAPI_SECTOR_BYTES)

/* ---- Helpers --------------------------------------------------------------------------- */

static void be16_put(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void be32_put(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t be16_get(const uint8_t *p)
{
    return (uint32_t)p[0] << 8 | p[1];
}

static uint32_t be32_get(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Space padded copy of s into len bytes. */
static void pad_copy(uint8_t *dst, size_t len, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    for (size_t i = 0; i < len; i++)
        dst[i] = i < n ? (uint8_t)s[i] : ' ';
}

static uint32_t atapi_sectors(const struct atapi_dev *a)
{
    uint64_t n = drive_has_media(a->drive) ? drive_size_bytes(a->drive) / ATAPI_SECTOR_BYTES : 0;
    return (uint32_t)RT_MIN(n, UINT32_MAX);
}

static bool atapi_is_dvd(const struct atapi_dev *a)
{
    return atapi_sectors(a) > ATAPI_CD_MAX_SECTORS;
}

/* An address in MSF form (MMC-5 4.2.3.4: LBA 0 is 00:02:00) into 4 bytes: 0, M, S, F. */
static void msf_put(uint8_t *p, uint32_t lba)
{
    uint32_t f = lba + 150;
    p[0] = 0;
    p[1] = (uint8_t)RT_MIN(f / (75 * 60), 255u);
    p[2] = (uint8_t)((f / 75) % 60);
    p[3] = (uint8_t)(f % 75);
}

static void addr_put(uint8_t *p, uint32_t lba, bool msf)
{
    if (msf)
        msf_put(p, lba);
    else
        be32_put(p, lba);
}

void atapi_set_sense(struct atapi_dev *a, uint8_t key, uint8_t asc, uint8_t ascq)
{
    a->sense_key = key;
    a->asc = asc;
    a->ascq = ascq;
}

uint8_t atapi_error_reg(const struct atapi_dev *a)
{
    return (uint8_t)(a->sense_key << 4 | (a->sense_key ? ATA_ERR_ABRT : 0));
}

static void atapi_check(struct atapi_dev *a, struct atapi_cmd *cmd, uint8_t key, uint8_t asc, uint8_t ascq)
{
    atapi_set_sense(a, key, asc, ascq);
    cmd->kind = ATAPI_CHECK;
    cmd->len = 0;
}

static void atapi_invalid_field(struct atapi_dev *a, struct atapi_cmd *cmd)
{
    atapi_check(a, cmd, SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB, 0);
}

/* A reply of len bytes in the buffer, cut to the allocation length. */
static void atapi_reply(struct atapi_cmd *cmd, uint32_t len, uint32_t alloc)
{
    cmd->kind = ATAPI_DATA_IN;
    cmd->len = RT_MIN(len, alloc);
}

/* ---- Media changes ------------------------------------------------------------------------ */

static void atapi_media_changed(void *opaque, struct drive *drive)
{
    struct atapi_dev *a = opaque;
    bool has = drive_has_media(drive);
    if (has) {
        a->unit_attention = true;
        a->media_event = ATAPI_EVENT_NEW_MEDIA;
    } else {
        a->unit_attention = false;
        a->media_event = ATAPI_EVENT_MEDIA_REMOVAL;
    }
    a->had_media = has;
    LOG_DEBUG("%s: medium %s", drive_name(drive), has ? "inserted" : "removed");
    if (a->notify)
        a->notify(a->notify_opaque);
}

void atapi_dev_init(struct atapi_dev *a, struct drive *drive, void (*notify)(void *opaque), void *opaque)
{
    memset(a, 0, sizeof(*a));
    a->drive = drive;
    a->notify = notify;
    a->notify_opaque = opaque;
    a->had_media = drive_has_media(drive);
    drive_set_media_listener(drive, atapi_media_changed, a);
}

void atapi_dev_fini(struct atapi_dev *a)
{
    if (a->drive)
        drive_set_media_listener(a->drive, NULL, NULL);
    a->drive = NULL;
}

void atapi_dev_reset(struct atapi_dev *a)
{
    atapi_set_sense(a, SENSE_NONE, 0, 0);
}

void atapi_dev_save(const struct atapi_dev *a, struct ssm *ssm)
{
    ssm_put_u8(ssm, a->sense_key);
    ssm_put_u8(ssm, a->asc);
    ssm_put_u8(ssm, a->ascq);
    ssm_put_bool(ssm, a->unit_attention);
    ssm_put_u8(ssm, a->media_event);
    ssm_put_bool(ssm, a->had_media);
    /* The guest's PREVENT MEDIUM REMOVAL lives in the drive; it is part of the drive's state all the same. */
    ssm_put_bool(ssm, drive_is_locked(a->drive));
}

int atapi_dev_load(struct atapi_dev *a, struct ssm *ssm, bool with_lock)
{
    uint8_t key = 0, asc = 0, ascq = 0, event = 0;
    bool ua = false, had = false, locked = false;
    ssm_get_u8(ssm, &key);
    ssm_get_u8(ssm, &asc);
    ssm_get_u8(ssm, &ascq);
    ssm_get_bool(ssm, &ua);
    ssm_get_u8(ssm, &event);
    ssm_get_bool(ssm, &had);
    if (with_lock)
        ssm_get_bool(ssm, &locked);
    int rc = ssm_status(ssm);
    if (rc)
        return rc;
    if (key > 0xf || event > ATAPI_EVENT_MEDIA_REMOVAL)
        return VERR_SSM_CORRUPT;
    atapi_set_sense(a, key, asc, ascq);
    a->unit_attention = ua;
    a->media_event = event;
    /* The medium is the host's: if it changed while the state was stored, report the change. */
    bool has = drive_has_media(a->drive);
    if (has != had) {
        a->unit_attention = has;
        a->media_event = has ? ATAPI_EVENT_NEW_MEDIA : ATAPI_EVENT_MEDIA_REMOVAL;
    }
    a->had_media = has;
    drive_set_locked(a->drive, locked && has);
    return 0;
}

/* ---- Commands without a medium ------------------------------------------------------------- */

static void atapi_request_sense(struct atapi_dev *a, const uint8_t *cdb, uint8_t *buf, struct atapi_cmd *cmd)
{
    /* SPC-3 4.5.3 fixed format sense data; a pending unit attention is reported (and consumed) here. */
    uint8_t key = a->sense_key, asc = a->asc, ascq = a->ascq;
    if (a->unit_attention) {
        key = SENSE_UNIT_ATTENTION;
        asc = ASC_MEDIUM_CHANGED;
        ascq = 0;
        a->unit_attention = false;
    }
    memset(buf, 0, 18);
    buf[0] = 0x70;
    buf[2] = key;
    buf[7] = 10;
    buf[12] = asc;
    buf[13] = ascq;
    atapi_set_sense(a, SENSE_NONE, 0, 0);
    atapi_reply(cmd, 18, cdb[4]);
}

static void atapi_inquiry(struct atapi_dev *a, const uint8_t *cdb, uint8_t *buf, struct atapi_cmd *cmd)
{
    uint32_t alloc = be16_get(&cdb[3]);
    if (cdb[1] & 0x01) {
        /* SPC-3 7.6: vital product data pages. */
        memset(buf, 0, 64);
        buf[0] = 0x05;
        buf[1] = cdb[2];
        switch (cdb[2]) {
        case 0x00:
            buf[3] = 3;
            buf[4] = 0x00;
            buf[5] = 0x80;
            buf[6] = 0x83;
            atapi_reply(cmd, 7, alloc);
            return;
        case 0x80:
            buf[3] = 20;
            pad_copy(&buf[4], 20, drive_serial(a->drive));
            atapi_reply(cmd, 24, alloc);
            return;
        case 0x83:
            /* One T10 vendor ID designator: vendor, then the serial number. */
            buf[3] = 4 + 28;
            buf[4] = 0x02; /* ASCII */
            buf[5] = 0x01; /* T10 vendor ID, associated with the logical unit */
            buf[7] = 28;
            pad_copy(&buf[8], 8, "VIREO");
            pad_copy(&buf[16], 20, drive_serial(a->drive));
            atapi_reply(cmd, 36, alloc);
            return;
        default:
            atapi_invalid_field(a, cmd);
            return;
        }
    }
    if (cdb[2]) {
        atapi_invalid_field(a, cmd);
        return;
    }
    /* SPC-3 6.4.2 standard data: CD/DVD device, removable, SPC-3, response format 2. */
    memset(buf, 0, 36);
    buf[0] = 0x05;
    buf[1] = 0x80;
    buf[2] = 0x05;
    buf[3] = 0x02;
    buf[4] = 36 - 5;
    pad_copy(&buf[8], 8, "VIREO");
    pad_copy(&buf[16], 16, drive_model(a->drive));
    pad_copy(&buf[32], 4, "1.0");
    atapi_reply(cmd, 36, alloc);
}

/* ---- Mode pages ------------------------------------------------------------------------------ */

/* Appends mode page code at p; changeable: only the header, every parameter zero (none can change). */
static uint32_t atapi_mode_page(const struct atapi_dev *a, uint8_t code, bool changeable, uint8_t *p)
{
    uint32_t len;
    switch (code) {
    case 0x01: /* read/write error recovery (MMC-5 7.3) */
        len = 12;
        memset(p, 0, len);
        p[3] = 5; /* read retry count */
        break;
    case 0x0d: /* CD device parameters (MMC-1 5.5.10) */
        len = 8;
        memset(p, 0, len);
        p[5] = 60; /* S units per M */
        p[7] = 75; /* F units per S */
        break;
    case 0x0e: /* CD audio control (MMC-1 5.5.11) */
        len = 16;
        memset(p, 0, len);
        p[2] = 0x04; /* Immed */
        p[8] = 0x01;
        p[9] = 0xff;
        p[10] = 0x02;
        p[11] = 0xff;
        break;
    case 0x1a: /* power condition (SPC-3 7.4.12) */
        len = 12;
        memset(p, 0, len);
        break;
    case 0x2a: /* MM capabilities and mechanical status (MMC-3 5.5.10) */
        len = 22;
        memset(p, 0, len);
        p[2] = 0x3f;  /* reads CD-R, CD-RW, method 2, DVD-ROM, DVD-R, DVD-RAM */
        p[4] = 0x71;  /* audio play, mode 2 form 1 and 2, multi-session */
        p[5] = 0x00;
        /* Tray loading mechanism, eject, lock, and the lock's state. */
        p[6] = 0x20 | 0x08 | 0x01 | (drive_is_locked(a->drive) ? 0x02 : 0);
        be16_put(&p[8], ATAPI_KBPS);
        be16_put(&p[10], 256);
        be16_put(&p[12], 512);
        be16_put(&p[14], ATAPI_KBPS);
        break;
    default:
        return 0;
    }
    if (changeable)
        memset(&p[2], 0, len - 2);
    p[0] = code;
    p[1] = (uint8_t)(len - 2);
    return len;
}

static void atapi_mode_sense(struct atapi_dev *a, const uint8_t *cdb, uint8_t *buf, struct atapi_cmd *cmd)
{
    bool ten = cdb[0] == SCSI_MODE_SENSE_10;
    uint32_t hdr = ten ? 8 : 4;
    uint32_t alloc = ten ? be16_get(&cdb[7]) : cdb[4];
    uint8_t page = cdb[2] & 0x3f, pc = cdb[2] >> 6;
    if (pc == 3) {
        atapi_check(a, cmd, SENSE_ILLEGAL_REQUEST, ASC_SAVING_NOT_SUPPORTED, 0);
        return;
    }
    memset(buf, 0, hdr);
    uint32_t len = hdr;
    if (page == 0x3f) {
        static const uint8_t all[] = {0x01, 0x0d, 0x0e, 0x1a, 0x2a};
        for (unsigned i = 0; i < RT_ARRAY_SIZE(all); i++)
            len += atapi_mode_page(a, all[i], pc == 1, buf + len);
    } else {
        uint32_t n = atapi_mode_page(a, page, pc == 1, buf + len);
        if (!n) {
            atapi_invalid_field(a, cmd);
            return;
        }
        len += n;
    }
    /* Mode parameter header (SPC-3 7.4.3): data length excludes itself; no block descriptors. */
    if (ten)
        be16_put(buf, len - 2);
    else
        buf[0] = (uint8_t)(len - 1);
    atapi_reply(cmd, len, alloc);
}

/* ---- GET CONFIGURATION ---------------------------------------------------------------------- */

/* Appends a feature descriptor header (MMC-5 5.2.2) and returns where its data starts. */
static uint8_t *atapi_feature(uint8_t *p, uint16_t code, unsigned version, bool current, uint8_t data_len)
{
    be16_put(p, code);
    /* The drive's own features are persistent; the media-dependent ones (0010h and up) are not. */
    p[2] = (uint8_t)(version << 2 | (code < 0x0010 ? 0x02 : 0) | (current ? 1 : 0));
    p[3] = data_len;
    memset(p + 4, 0, data_len);
    return p + 4;
}

static void atapi_get_configuration(struct atapi_dev *a, const uint8_t *cdb, uint8_t *buf, struct atapi_cmd *cmd)
{
    unsigned rt = cdb[1] & 3;
    uint16_t start = (uint16_t)be16_get(&cdb[2]);
    uint32_t alloc = be16_get(&cdb[7]);
    if (rt == 3) {
        atapi_invalid_field(a, cmd);
        return;
    }
    bool media = drive_has_media(a->drive);
    bool dvd = media && atapi_is_dvd(a);
    uint16_t profile = !media ? 0 : dvd ? ATAPI_PROFILE_DVDROM : ATAPI_PROFILE_CDROM;

    uint8_t feat[160];
    uint32_t len = 8;
    memset(buf, 0, 8);
    be16_put(&buf[6], profile);
    for (unsigned i = 0;; i++) {
        static const uint16_t codes[] = {0x0000, 0x0001, 0x0002, 0x0003, 0x0010, 0x001e, 0x001f};
        if (i >= RT_ARRAY_SIZE(codes))
            break;
        uint16_t code = codes[i];
        uint8_t *d;
        uint32_t n;
        bool current = true;
        switch (code) {
        case 0x0000: /* profile list: DVD-ROM, CD-ROM */
            d = atapi_feature(feat, code, 0, true, 8);
            be16_put(&d[0], ATAPI_PROFILE_DVDROM);
            d[2] = profile == ATAPI_PROFILE_DVDROM;
            be16_put(&d[4], ATAPI_PROFILE_CDROM);
            d[6] = profile == ATAPI_PROFILE_CDROM;
            n = 12;
            break;
        case 0x0001: /* core: ATAPI physical interface */
            d = atapi_feature(feat, code, 0, true, 4);
            be32_put(d, 0x00000002);
            n = 8;
            break;
        case 0x0002: /* morphing: polled GET EVENT STATUS NOTIFICATION, operational change events */
            d = atapi_feature(feat, code, 1, true, 4);
            d[0] = 0x02;
            n = 8;
            break;
        case 0x0003: /* removable medium: tray, eject, lock */
            d = atapi_feature(feat, code, 0, true, 4);
            d[0] = 0x20 | 0x08 | 0x01;
            n = 8;
            break;
        case 0x0010: /* random readable */
            current = media;
            d = atapi_feature(feat, code, 0, current, 8);
            be32_put(d, ATAPI_SECTOR_BYTES);
            be16_put(&d[4], dvd ? 16 : 1);
            n = 12;
            break;
        case 0x001e: /* CD read */
            current = media && !dvd;
            d = atapi_feature(feat, code, 2, current, 4);
            n = 8;
            break;
        default: /* 0x001f DVD read */
            current = dvd;
            d = atapi_feature(feat, code, 0, current, 4);
            n = 8;
            break;
        }
        (void)d;
        /* MMC-5 6.6.2: RT 0 all from start, 1 the current ones from start, 2 exactly start. */
        bool want = rt == 2 ? code == start : code >= start && (rt == 0 || current);
        if (want && len + n <= ATAPI_REPLY_MAX) {
            memcpy(buf + len, feat, n);
            len += n;
        }
    }
    be32_put(buf, len - 4);
    atapi_reply(cmd, len, alloc);
}

/* ---- GET EVENT STATUS NOTIFICATION ---------------------------------------------------------- */

static void atapi_get_event_status(struct atapi_dev *a, const uint8_t *cdb, uint8_t *buf, struct atapi_cmd *cmd)
{
    uint32_t alloc = be16_get(&cdb[7]);
    if (!(cdb[1] & 0x01)) { /* only polled operation (MMC-5 6.8.1) */
        atapi_invalid_field(a, cmd);
        return;
    }
    memset(buf, 0, 8);
    buf[3] = 0x10; /* supported classes: media */
    if (!(cdb[4] & 0x10)) {
        buf[2] = 0x80; /* NEA: no requested class is supported */
        be16_put(buf, 2);
        atapi_reply(cmd, 4, alloc);
        return;
    }
    bool media = drive_has_media(a->drive);
    buf[2] = 0x04; /* media class */
    be16_put(buf, 6);
    buf[4] = a->media_event;
    buf[5] = media ? 0x02 : 0x00; /* media present */
    a->media_event = ATAPI_EVENT_NONE;
    atapi_reply(cmd, 8, alloc);
}

/* ---- Commands that need a medium ------------------------------------------------------------- */

static void atapi_read_toc(struct atapi_dev *a, const uint8_t *cdb, uint8_t *buf, struct atapi_cmd *cmd)
{
    bool msf = cdb[1] & 0x02;
    unsigned format = cdb[2] & 0x0f;
    if (!format)
        format = cdb[9] >> 6; /* the older field in the control byte (SFF-8020i) */
    uint8_t track = cdb[6];
    uint32_t alloc = be16_get(&cdb[7]);
    uint32_t end = atapi_sectors(a);
    uint32_t len;
    memset(buf, 0, 48);
    switch (format) {
    case 0: { /* MMC-5 6.26.2.3: formatted TOC */
        if (track > 1 && track != 0xaa) {
            atapi_invalid_field(a, cmd);
            return;
        }
        buf[2] = 1;
        buf[3] = 1;
        len = 4;
        if (track <= 1) {
            buf[len + 1] = 0x14; /* ADR 1, data track */
            buf[len + 2] = 1;
            addr_put(&buf[len + 4], 0, msf);
            len += 8;
        }
        buf[len + 1] = 0x14;
        buf[len + 2] = 0xaa; /* lead-out */
        addr_put(&buf[len + 4], end, msf);
        len += 8;
        break;
    }
    case 1: /* session information */
        buf[2] = 1;
        buf[3] = 1;
        buf[5] = 0x14;
        buf[6] = 1;
        addr_put(&buf[8], 0, msf);
        len = 12;
        break;
    case 2: { /* raw TOC: points A0, A1, A2 and track 1, addresses always MSF */
        buf[2] = 1;
        buf[3] = 1;
        len = 4;
        static const uint8_t points[] = {0xa0, 0xa1, 0xa2, 0x01};
        for (unsigned i = 0; i < RT_ARRAY_SIZE(points); i++) {
            uint8_t *d = &buf[len];
            d[0] = 1;
            d[1] = 0x14;
            d[3] = points[i];
            uint8_t m[4];
            if (points[i] == 0xa0 || points[i] == 0xa1) {
                d[8] = 1; /* first / last track number; A0 PSEC 00h: CD-ROM disc */
            } else {
                msf_put(m, points[i] == 0xa2 ? end : 0);
                d[8] = m[1];
                d[9] = m[2];
                d[10] = m[3];
            }
            len += 11;
        }
        break;
    }
    default:
        atapi_invalid_field(a, cmd);
        return;
    }
    be16_put(buf, len - 2);
    atapi_reply(cmd, len, alloc);
}

static void atapi_read_sub_channel(struct atapi_dev *a, const uint8_t *cdb, uint8_t *buf, struct atapi_cmd *cmd)
{
    uint32_t alloc = be16_get(&cdb[7]);
    bool subq = cdb[2] & 0x40;
    uint8_t format = cdb[3];
    memset(buf, 0, 16);
    buf[1] = 0x15; /* no current audio status */
    if (!subq) {
        atapi_reply(cmd, 4, alloc);
        return;
    }
    if (format != 1) {
        atapi_invalid_field(a, cmd);
        return;
    }
    /* Current position (MMC-5 6.31.2.2): track 1, index 1, at the start. */
    be16_put(&buf[2], 12);
    buf[4] = 1;
    buf[5] = 0x14;
    buf[6] = 1;
    buf[7] = 1;
    addr_put(&buf[8], 0, cdb[1] & 0x02);
    addr_put(&buf[12], 0, cdb[1] & 0x02);
    atapi_reply(cmd, 16, alloc);
}

static void atapi_read_disc_info(struct atapi_dev *a, const uint8_t *cdb, uint8_t *buf, struct atapi_cmd *cmd)
{
    if (cdb[1] & 0x07) {
        atapi_invalid_field(a, cmd);
        return;
    }
    /* MMC-5 6.22.3.1: a finalized disc, one complete session holding track 1. */
    memset(buf, 0, 34);
    be16_put(buf, 32);
    buf[2] = 0x0e;
    buf[3] = 1;
    buf[4] = 1;
    buf[5] = 1;
    buf[6] = 1;
    buf[7] = 0x20;
    be32_put(&buf[16], 0xffffffff);
    be32_put(&buf[20], 0xffffffff);
    atapi_reply(cmd, 34, be16_get(&cdb[7]));
}

static void atapi_read_track_info(struct atapi_dev *a, const uint8_t *cdb, uint8_t *buf, struct atapi_cmd *cmd)
{
    uint32_t addr = be32_get(&cdb[2]);
    uint32_t end = atapi_sectors(a);
    bool ok;
    switch (cdb[1] & 0x03) {
    case 0: ok = addr < end; break;             /* an LBA inside the track */
    case 1: ok = addr == 1; break;              /* track number */
    default: ok = addr == 1; break;             /* session number */
    }
    if (!ok) {
        atapi_invalid_field(a, cmd);
        return;
    }
    memset(buf, 0, 36);
    be16_put(buf, 34);
    buf[2] = 1;
    buf[3] = 1;
    buf[5] = 0x04; /* data track, recorded uninterrupted */
    buf[6] = 0x01; /* data mode 1 */
    be32_put(&buf[24], end);
    atapi_reply(cmd, 36, be16_get(&cdb[7]));
}

static void atapi_read_dvd_structure(struct atapi_dev *a, const uint8_t *cdb, uint8_t *buf, struct atapi_cmd *cmd)
{
    uint32_t alloc = be16_get(&cdb[8]);
    uint8_t format = cdb[7];
    if ((cdb[1] & 0x0f) != 0 || (format < 0xc0 && cdb[6] != 0)) {
        atapi_invalid_field(a, cmd);
        return;
    }
    if (format == 0x00 || format == 0x01) {
        if (!atapi_is_dvd(a)) {
            atapi_check(a, cmd, SENSE_ILLEGAL_REQUEST, ASC_INCOMPATIBLE_MEDIUM, 0x02);
            return;
        }
    }
    switch (format) {
    case 0x00: { /* physical format information (MMC-5 6.22.3.2.1), layer 0 */
        uint32_t len = 4 + 2048;
        memset(buf, 0, len);
        be16_put(buf, len - 2);
        buf[4] = 0x01;  /* DVD-ROM, part version 1 */
        buf[5] = 0x0f;  /* 120 mm, maximum rate not specified */
        buf[6] = 0x01;  /* one layer, embossed data */
        be32_put(&buf[8], 0x30000);
        be32_put(&buf[12], 0x30000 + atapi_sectors(a) - 1);
        atapi_reply(cmd, len, alloc);
        return;
    }
    case 0x01: /* copyright information: no protection, all regions */
        memset(buf, 0, 8);
        be16_put(buf, 6);
        atapi_reply(cmd, 8, alloc);
        return;
    default:
        atapi_invalid_field(a, cmd);
        return;
    }
}

static void atapi_read(struct atapi_dev *a, uint64_t lba, uint64_t count, struct atapi_cmd *cmd)
{
    uint32_t end = atapi_sectors(a);
    if (lba > end || count > end - lba) {
        atapi_check(a, cmd, SENSE_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE, 0);
        return;
    }
    if (count > ATAPI_MAX_READ_SECTORS) {
        atapi_invalid_field(a, cmd);
        return;
    }
    if (!count) {
        atapi_reply(cmd, 0, 0);
        return;
    }
    cmd->kind = ATAPI_READ;
    cmd->offset_bytes = lba * ATAPI_SECTOR_BYTES;
    cmd->len = (uint32_t)(count * ATAPI_SECTOR_BYTES);
}

static void atapi_read_cd(struct atapi_dev *a, const uint8_t *cdb, struct atapi_cmd *cmd)
{
    unsigned type = (cdb[1] >> 2) & 7;
    uint32_t count = (uint32_t)cdb[6] << 16 | (uint32_t)cdb[7] << 8 | cdb[8];
    /* Only user data of mode 1 sectors (any type, or mode 1), which is all an ISO image holds. */
    if ((type != 0 && type != 2) || cdb[10] != 0) {
        atapi_invalid_field(a, cmd);
        return;
    }
    if (cdb[9] == 0x00) {
        atapi_read(a, be32_get(&cdb[2]), 0, cmd);
        return;
    }
    if (cdb[9] != 0x10) {
        atapi_invalid_field(a, cmd);
        return;
    }
    atapi_read(a, be32_get(&cdb[2]), count, cmd);
}

static void atapi_start_stop(struct atapi_dev *a, const uint8_t *cdb, struct atapi_cmd *cmd)
{
    bool start = cdb[4] & 0x01, loej = cdb[4] & 0x02;
    if (loej && !start && drive_has_media(a->drive)) {
        /* MMC-5 6.39: a prevented eject fails with MEDIUM REMOVAL PREVENTED. */
        if (drive_guest_eject(a->drive) == VERR_BUSY) {
            atapi_check(a, cmd, SENSE_ILLEGAL_REQUEST, ASC_MEDIUM_REMOVAL_PREVENTED, 0x02);
            return;
        }
    }
    atapi_reply(cmd, 0, 0);
}

static void atapi_get_performance(struct atapi_dev *a, const uint8_t *cdb, uint8_t *buf, struct atapi_cmd *cmd)
{
    if (cdb[10] != 0) { /* only performance data (type 0) */
        atapi_invalid_field(a, cmd);
        return;
    }
    uint32_t max = be16_get(&cdb[8]);
    memset(buf, 0, 24);
    uint32_t len = 8;
    if (max) {
        uint32_t end = atapi_sectors(a);
        be32_put(&buf[12], ATAPI_KBPS);
        be32_put(&buf[16], end ? end - 1 : 0);
        be32_put(&buf[20], ATAPI_KBPS);
        len = 24;
    }
    be32_put(buf, len - 4);
    atapi_reply(cmd, len, len);
}

static void atapi_mechanism_status(struct atapi_dev *a, const uint8_t *cdb, uint8_t *buf, struct atapi_cmd *cmd)
{
    memset(buf, 0, 8);
    buf[1] = drive_has_media(a->drive) ? 0x00 : 0x10; /* door open when empty */
    atapi_reply(cmd, 8, be16_get(&cdb[8]));
}

/* ---- Dispatch ---------------------------------------------------------------------------------- */

/* Commands a pending unit attention does not preempt (SPC-3 5.9.7, MMC-5 4.1.6.1). */
static bool atapi_allows_ua(uint8_t op)
{
    return op == SCSI_INQUIRY || op == SCSI_GET_CONFIGURATION || op == SCSI_GET_EVENT_STATUS;
}

static bool atapi_needs_media(uint8_t op)
{
    switch (op) {
    case SCSI_TEST_UNIT_READY:
    case SCSI_READ_CAPACITY:
    case SCSI_READ_10:
    case SCSI_READ_12:
    case SCSI_READ_CD:
    case SCSI_SEEK_10:
    case SCSI_READ_TOC:
    case SCSI_READ_SUB_CHANNEL:
    case SCSI_READ_DISC_INFO:
    case SCSI_READ_TRACK_INFO:
    case SCSI_READ_DVD_STRUCTURE:
        return true;
    default:
        return false;
    }
}

void atapi_cmd_start(struct atapi_dev *a, const uint8_t cdb[ATAPI_CDB_BYTES], uint8_t *buf, struct atapi_cmd *cmd)
{
    uint8_t op = cdb[0];
    memset(cmd, 0, sizeof(*cmd));
    cmd->opcode = op;
    if (op == SCSI_REQUEST_SENSE) {
        atapi_request_sense(a, cdb, buf, cmd);
        return;
    }
    if (a->unit_attention && !atapi_allows_ua(op)) {
        a->unit_attention = false;
        atapi_check(a, cmd, SENSE_UNIT_ATTENTION, ASC_MEDIUM_CHANGED, 0);
        return;
    }
    atapi_set_sense(a, SENSE_NONE, 0, 0);
    if (atapi_needs_media(op) && !drive_has_media(a->drive)) {
        atapi_check(a, cmd, SENSE_NOT_READY, ASC_MEDIUM_NOT_PRESENT, 0);
        return;
    }
    switch (op) {
    case SCSI_TEST_UNIT_READY:
    case SCSI_SET_CD_SPEED:
        atapi_reply(cmd, 0, 0);
        return;
    case SCSI_INQUIRY:
        atapi_inquiry(a, cdb, buf, cmd);
        return;
    case SCSI_READ_CAPACITY: {
        uint32_t end = atapi_sectors(a);
        be32_put(buf, end ? end - 1 : 0);
        be32_put(&buf[4], ATAPI_SECTOR_BYTES);
        atapi_reply(cmd, 8, 8);
        return;
    }
    case SCSI_READ_10:
        atapi_read(a, be32_get(&cdb[2]), be16_get(&cdb[7]), cmd);
        return;
    case SCSI_READ_12:
        atapi_read(a, be32_get(&cdb[2]), be32_get(&cdb[6]), cmd);
        return;
    case SCSI_READ_CD:
        atapi_read_cd(a, cdb, cmd);
        return;
    case SCSI_SEEK_10:
        if (be32_get(&cdb[2]) >= atapi_sectors(a))
            atapi_check(a, cmd, SENSE_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE, 0);
        else
            atapi_reply(cmd, 0, 0);
        return;
    case SCSI_READ_TOC:
        atapi_read_toc(a, cdb, buf, cmd);
        return;
    case SCSI_READ_SUB_CHANNEL:
        atapi_read_sub_channel(a, cdb, buf, cmd);
        return;
    case SCSI_MODE_SENSE_6:
    case SCSI_MODE_SENSE_10:
        atapi_mode_sense(a, cdb, buf, cmd);
        return;
    case SCSI_MODE_SELECT_6:
    case SCSI_MODE_SELECT_10: {
        uint32_t len = op == SCSI_MODE_SELECT_10 ? be16_get(&cdb[7]) : cdb[4];
        if (len > ATAPI_REPLY_MAX) {
            atapi_check(a, cmd, SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB, 0);
            return;
        }
        cmd->kind = len ? ATAPI_DATA_OUT : ATAPI_DATA_IN;
        cmd->len = len;
        return;
    }
    case SCSI_GET_CONFIGURATION:
        atapi_get_configuration(a, cdb, buf, cmd);
        return;
    case SCSI_GET_EVENT_STATUS:
        atapi_get_event_status(a, cdb, buf, cmd);
        return;
    case SCSI_READ_DISC_INFO:
        atapi_read_disc_info(a, cdb, buf, cmd);
        return;
    case SCSI_READ_TRACK_INFO:
        atapi_read_track_info(a, cdb, buf, cmd);
        return;
    case SCSI_PREVENT_ALLOW_REMOVAL:
        drive_set_locked(a->drive, cdb[4] & 0x01);
        atapi_reply(cmd, 0, 0);
        return;
    case SCSI_START_STOP_UNIT:
        atapi_start_stop(a, cdb, cmd);
        return;
    case SCSI_MECHANISM_STATUS:
        atapi_mechanism_status(a, cdb, buf, cmd);
        return;
    case SCSI_GET_PERFORMANCE:
        atapi_get_performance(a, cdb, buf, cmd);
        return;
    case SCSI_READ_DVD_STRUCTURE:
        atapi_read_dvd_structure(a, cdb, buf, cmd);
        return;
    default:
        atapi_check(a, cmd, SENSE_ILLEGAL_REQUEST, ASC_INVALID_OPCODE, 0);
        return;
    }
}

bool atapi_read_done(struct atapi_dev *a, struct atapi_cmd *cmd, int status)
{
    if (!status)
        return true;
    if (status == VERR_INVALID_STATE)
        atapi_check(a, cmd, SENSE_NOT_READY, ASC_MEDIUM_NOT_PRESENT, 0);
    else if (status == VERR_OUT_OF_RANGE)
        atapi_check(a, cmd, SENSE_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE, 0);
    else
        atapi_check(a, cmd, SENSE_MEDIUM_ERROR, ASC_UNRECOVERED_READ_ERROR, 0);
    LOG_DEBUG("%s: read of %u bytes at %llu failed: %s", drive_name(a->drive), cmd->len,
              (unsigned long long)cmd->offset_bytes, rt_err_str(status));
    return false;
}

void atapi_data_out_done(struct atapi_dev *a, struct atapi_cmd *cmd, const uint8_t *data, uint32_t len)
{
    /* MODE SELECT: nothing here is changeable (every page's changeable mask is zero), so the parameters are
     * accepted and have no effect, as SPC-3 allows for values equal to the current ones. */
    (void)data;
    (void)len;
    atapi_set_sense(a, SENSE_NONE, 0, 0);
    cmd->kind = ATAPI_DATA_IN;
    cmd->len = 0;
}
