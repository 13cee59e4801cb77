/* ata.c - the ATA command set of one drive: IDENTIFY data, command decoding and completion, shared by IDE and AHCI. */
#include <string.h>

#include "ata.h"
#include "vireo/err.h"
#include "vireo/rt.h"

#define LOG_COMPONENT "ata"

#define ATA_FIRMWARE "1.0"
/* The largest CHS geometry of IDENTIFY words 1/3/6 (ATA/ATAPI-6 annex: 16383 x 16 x 63). */
#define ATA_CHS_MAX_CYLS  16383u
#define ATA_CHS_MAX_HEADS 16u
#define ATA_CHS_MAX_SECS  63u
#define ATA_LBA28_MAX     0x0fffffffu

/* ---- Per-drive state ------------------------------------------------------------------ */

void ata_dev_init(struct ata_dev *d, struct drive *drive)
{
    memset(d, 0, sizeof(*d));
    d->drive = drive;
    if (drive) {
        d->atapi = drive_kind(drive) == DRIVE_CDROM;
        if (!d->atapi)
            d->sectors = drive_size_bytes(drive) / ATA_SECTOR_BYTES;
    }
    /* The usual translation for a disk this size: 16 heads, 63 sectors, cylinders up to 16383. */
    d->heads = ATA_CHS_MAX_HEADS;
    d->secs = ATA_CHS_MAX_SECS;
    uint64_t cyls = d->sectors / (ATA_CHS_MAX_HEADS * ATA_CHS_MAX_SECS);
    d->cyls = (uint16_t)RT_MAX(1, RT_MIN(cyls, ATA_CHS_MAX_CYLS));
    ata_dev_reset(d, true);
}

bool ata_dev_present(const struct ata_dev *d)
{
    return d && d->drive;
}

void ata_dev_reset(struct ata_dev *d, bool hard)
{
    /* ATA/ATAPI-6 9.1/9.2: a hardware reset restores the power-on defaults; a software reset does so only while
     * reverting to defaults is enabled (SET FEATURES 66h disables it), and keeps the multiple count. */
    if (hard || d->revert_on_reset) {
        d->write_cache = true;
        d->read_lookahead = true;
        d->xfer_mode = 0;
    }
    if (hard) {
        /* Multiple mode enabled at the largest block, as drives commonly power on (word 59 valid). */
        d->multiple = ATA_MAX_MULTIPLE;
        d->revert_on_reset = true;
        d->cur_cyls = d->cyls;
        d->cur_heads = d->heads;
        d->cur_secs = d->secs;
    }
    d->standby = false;
}

void ata_dev_save(const struct ata_dev *d, struct ssm *ssm)
{
    ssm_put_u16(ssm, d->cur_cyls);
    ssm_put_u16(ssm, d->cur_heads);
    ssm_put_u16(ssm, d->cur_secs);
    ssm_put_u8(ssm, d->multiple);
    ssm_put_u8(ssm, d->xfer_mode);
    ssm_put_bool(ssm, d->write_cache);
    ssm_put_bool(ssm, d->read_lookahead);
    ssm_put_bool(ssm, d->revert_on_reset);
    ssm_put_bool(ssm, d->standby);
}

static bool ata_xfer_mode_valid(uint8_t mode)
{
    switch (mode & 0xf8) {
    case 0x00: return mode <= 1;                 /* PIO default (with or without IORDY) */
    case 0x08: return (mode & 7) <= 4;           /* PIO 0-4 */
    case 0x20: return (mode & 7) <= 2;           /* multiword DMA 0-2 */
    case 0x40: return (mode & 7) <= 5;           /* Ultra DMA 0-5 */
    default: return false;
    }
}

static bool ata_multiple_valid(unsigned n)
{
    return n == 0 || (n <= ATA_MAX_MULTIPLE && (n & (n - 1)) == 0);
}

int ata_dev_load(struct ata_dev *d, struct ssm *ssm)
{
    uint16_t cyls = 0, heads = 0, secs = 0;
    uint8_t multiple = 0, xfer = 0;
    bool wc = false, la = false, revert = false, standby = false;
    ssm_get_u16(ssm, &cyls);
    ssm_get_u16(ssm, &heads);
    ssm_get_u16(ssm, &secs);
    ssm_get_u8(ssm, &multiple);
    ssm_get_u8(ssm, &xfer);
    ssm_get_bool(ssm, &wc);
    ssm_get_bool(ssm, &la);
    ssm_get_bool(ssm, &revert);
    ssm_get_bool(ssm, &standby);
    int rc = ssm_status(ssm);
    if (rc)
        return rc;
    if (heads == 0 || heads > 16 || secs == 0 || secs > 255 || !ata_multiple_valid(multiple) ||
        !ata_xfer_mode_valid(xfer))
        return VERR_SSM_CORRUPT;
    d->cur_cyls = cyls;
    d->cur_heads = heads;
    d->cur_secs = secs;
    d->multiple = multiple;
    d->xfer_mode = xfer;
    d->write_cache = wc;
    d->read_lookahead = la;
    d->revert_on_reset = revert;
    d->standby = standby;
    return 0;
}

/* ---- IDENTIFY --------------------------------------------------------------------------- */

void ata_id_string(uint16_t *words, unsigned first, unsigned count, const char *s)
{
    size_t len = s ? strlen(s) : 0;
    for (unsigned i = 0; i < count * 2; i++) {
        uint8_t c = i < len ? (uint8_t)s[i] : ' ';
        uint16_t *w = &words[first + i / 2];
        /* ATA/ATAPI-6 3.2.9: the first character of each pair is in bits 15:8. */
        *w = (i & 1) ? (uint16_t)((*w & 0xff00) | c) : (uint16_t)((*w & 0x00ff) | (c << 8));
    }
}

/* Word 93, hardware reset result for parallel ATA (ATA/ATAPI-6 8.15.51): passed, jumper-selected, 80-wire cable. */
static uint16_t ata_id_reset_result(unsigned flags)
{
    if (flags & ATA_ID_SATA)
        return 0;
    uint16_t w = 0x4000 | 0x2000;
    if (flags & ATA_ID_DEVICE1)
        w |= 0x0100 | 0x0200;
    else
        w |= 0x0001 | 0x0002 | 0x0008;
    return w;
}

static uint16_t ata_id_dma_selected(const struct ata_dev *d, uint8_t kind)
{
    return (d->xfer_mode & 0xf8) == kind ? (uint16_t)(0x100u << (d->xfer_mode & 7)) : 0;
}

static void ata_id_checksum(uint16_t words[256])
{
    /* Word 255 (ATA/ATAPI-6 8.15.76): signature A5h, then the byte that makes all 512 bytes sum to zero. */
    uint8_t sum = 0xa5;
    for (unsigned i = 0; i < 255; i++)
        sum = (uint8_t)(sum + (words[i] & 0xff) + (words[i] >> 8));
    words[255] = (uint16_t)(((uint8_t)-sum) << 8 | 0xa5);
}

static void ata_identify_packet(const struct ata_dev *d, unsigned flags, uint16_t *w)
{
    /* ATA/ATAPI-6 8.16: ATAPI, CD-ROM device type (5), removable, DRQ within 50 us, 12-byte packets. */
    w[0] = 0x8000 | 0x0500 | 0x0080 | 0x0040;
    w[49] = 0x0f00;        /* IORDY, IORDY may be disabled, LBA, DMA */
    w[53] = 0x0006;        /* words 64-70 and 88 valid */
    w[63] = 0x0007 | ata_id_dma_selected(d, 0x20);
    w[64] = 0x0003;        /* PIO 3 and 4 */
    w[65] = w[66] = w[67] = w[68] = 120;
    w[71] = 30;            /* typical PACKET to bus release, ns */
    w[72] = 30;
    w[80] = 0x00f0;        /* ATA/ATAPI-4 to -7 */
    w[82] = 0x4000 | 0x0200 | 0x0010 | 0x0008; /* NOP, DEVICE RESET, PACKET, power management */
    w[83] = 0x4000;
    w[84] = 0x4000;
    w[85] = w[82];
    w[86] = 0;
    w[87] = 0x4000;
    w[88] = 0x003f | ata_id_dma_selected(d, 0x40);
    w[93] = ata_id_reset_result(flags);
}

static void ata_identify_disk(const struct ata_dev *d, unsigned flags, uint16_t *w)
{
    w[0] = 0x0040; /* fixed device */
    w[1] = d->cyls;
    w[3] = d->heads;
    w[6] = d->secs;
    w[47] = 0x8000 | ATA_MAX_MULTIPLE;
    w[49] = 0x0f00;
    w[50] = 0x4000;
    w[51] = 0x0200; /* PIO 2 timing (obsolete field) */
    w[53] = 0x0007; /* words 54-58, 64-70 and 88 valid */
    w[54] = d->cur_cyls;
    w[55] = d->cur_heads;
    w[56] = d->cur_secs;
    uint32_t cur = (uint32_t)d->cur_cyls * d->cur_heads * d->cur_secs;
    w[57] = (uint16_t)cur;
    w[58] = (uint16_t)(cur >> 16);
    w[59] = d->multiple ? (uint16_t)(0x0100 | d->multiple) : 0;
    uint32_t lba28 = (uint32_t)RT_MIN(d->sectors, ATA_LBA28_MAX);
    w[60] = (uint16_t)lba28;
    w[61] = (uint16_t)(lba28 >> 16);
    w[63] = 0x0007 | ata_id_dma_selected(d, 0x20);
    w[64] = 0x0003;
    w[65] = w[66] = w[67] = w[68] = 120;
    if (flags & ATA_ID_SATA)
        w[76] = 0x0006; /* SATA Gen1 and Gen2 signalling speeds */
    w[80] = 0x01f0;     /* ATA/ATAPI-4 to -7, ATA8-ACS */
    /* Words 82-87 (8.15.41-46): NOP, look-ahead, write cache, power management; FLUSH CACHE (EXT), 48-bit
     * addresses; WRITE DMA/MULTIPLE FUA EXT.  Bit 14 of 83/84/87 must be one. */
    w[82] = 0x4000 | 0x0040 | 0x0020 | 0x0008;
    w[83] = 0x4000 | 0x2000 | 0x1000 | 0x0400;
    w[84] = 0x4000 | 0x0040;
    w[85] = 0x4000 | (d->read_lookahead ? 0x0040 : 0) | (d->write_cache ? 0x0020 : 0) | 0x0008;
    w[86] = 0x2000 | 0x1000 | 0x0400;
    w[87] = 0x4000 | 0x0040;
    w[88] = 0x003f | ata_id_dma_selected(d, 0x40);
    w[93] = ata_id_reset_result(flags);
    w[100] = (uint16_t)d->sectors;
    w[101] = (uint16_t)(d->sectors >> 16);
    w[102] = (uint16_t)(d->sectors >> 32);
    w[103] = (uint16_t)(d->sectors >> 48);
    w[106] = 0x4000; /* one logical sector per physical sector of 512 bytes */
}

void ata_identify(const struct ata_dev *d, unsigned flags, uint16_t words[256])
{
    memset(words, 0, 256 * sizeof(uint16_t));
    if (d->atapi)
        ata_identify_packet(d, flags, words);
    else
        ata_identify_disk(d, flags, words);
    ata_id_string(words, 10, 10, d->drive ? drive_serial(d->drive) : "");
    ata_id_string(words, 23, 4, ATA_FIRMWARE);
    ata_id_string(words, 27, 20, d->drive ? drive_model(d->drive) : "");
    ata_id_checksum(words);
}

/* ---- Results ----------------------------------------------------------------------------- */

static void ata_result_ok(struct ata_result *res)
{
    memset(res, 0, sizeof(*res));
    res->status = ATA_STAT_DRDY | ATA_STAT_DSC;
}

void ata_result_abort(const struct ata_dev *d, struct ata_result *res)
{
    (void)d;
    memset(res, 0, sizeof(*res));
    res->status = ATA_STAT_DRDY | ATA_STAT_DSC | ATA_STAT_ERR;
    res->error = ATA_ERR_ABRT;
}

void ata_set_signature(const struct ata_dev *d, struct ata_result *res)
{
    /* ATA/ATAPI-6 9.12: sector count 01h, LBA low 01h, LBA mid/high 00h/00h (ATA) or 14h/EBh (PACKET). */
    res->set_tf = true;
    res->count = 1;
    res->count_exp = 0;
    memset(res->lba, 0, sizeof(res->lba));
    res->lba[0] = 1;
    res->lba[1] = d->atapi ? ATA_SIG_ATAPI_MID : ATA_SIG_ATA_MID;
    res->lba[2] = d->atapi ? ATA_SIG_ATAPI_HIGH : ATA_SIG_ATA_HIGH;
    res->device = 0;
}

/* Puts an address into the output registers in the form the command used (CHS, LBA28 or LBA48). */
static void ata_result_put_lba(const struct ata_dev *d, const struct ata_cmd *cmd, uint8_t device, uint64_t lba,
                               struct ata_result *res)
{
    res->set_tf = true;
    res->device = device;
    if (cmd->lba48) {
        for (unsigned i = 0; i < 6; i++)
            res->lba[i] = (uint8_t)(lba >> (8 * i));
    } else if (device & ATA_DEV_LBA) {
        res->lba[0] = (uint8_t)lba;
        res->lba[1] = (uint8_t)(lba >> 8);
        res->lba[2] = (uint8_t)(lba >> 16);
        res->device = (uint8_t)((device & 0xf0) | ((lba >> 24) & 0x0f));
    } else {
        uint32_t per_cyl = (uint32_t)d->cur_heads * d->cur_secs;
        uint32_t cyl = per_cyl ? (uint32_t)(lba / per_cyl) : 0;
        uint32_t rem = per_cyl ? (uint32_t)(lba % per_cyl) : 0;
        res->lba[0] = (uint8_t)(d->cur_secs ? rem % d->cur_secs + 1 : 1);
        res->lba[1] = (uint8_t)cyl;
        res->lba[2] = (uint8_t)(cyl >> 8);
        res->device = (uint8_t)((device & 0xf0) | (d->cur_secs ? (rem / d->cur_secs) & 0x0f : 0));
    }
}

/* ---- Decoding ------------------------------------------------------------------------------ */

/*
 * The command's first sector: LBA48 from six bytes, LBA28 from three and the device register's low nibble,
 * or CHS through the current translation.  false (IDNF) for a CHS address outside the translation.
 */
static bool ata_tf_lba(const struct ata_dev *d, const struct ata_taskfile *tf, bool lba48, uint64_t *out)
{
    if (lba48) {
        uint64_t lba = 0;
        for (unsigned i = 0; i < 6; i++)
            lba |= (uint64_t)tf->lba[i] << (8 * i);
        *out = lba;
        return true;
    }
    if (tf->device & ATA_DEV_LBA) {
        *out = (uint64_t)tf->lba[0] | (uint64_t)tf->lba[1] << 8 | (uint64_t)tf->lba[2] << 16 |
               (uint64_t)(tf->device & 0x0f) << 24;
        return true;
    }
    unsigned sector = tf->lba[0];
    unsigned cyl = tf->lba[1] | (unsigned)tf->lba[2] << 8;
    unsigned head = tf->device & 0x0f;
    if (sector == 0 || sector > d->cur_secs || head >= d->cur_heads || cyl >= d->cur_cyls)
        return false;
    *out = ((uint64_t)cyl * d->cur_heads + head) * d->cur_secs + sector - 1;
    return true;
}

static uint32_t ata_tf_count(const struct ata_taskfile *tf, bool lba48)
{
    /* A count of zero means 256 sectors (28-bit) or 65536 (48-bit). */
    if (lba48) {
        uint32_t n = tf->count | (uint32_t)tf->count_exp << 8;
        return n ? n : 65536;
    }
    return tf->count ? tf->count : 256;
}

static void ata_decode_idnf(const struct ata_dev *d, struct ata_cmd *cmd, uint8_t device, uint64_t lba)
{
    cmd->kind = ATA_KIND_DONE;
    memset(&cmd->res, 0, sizeof(cmd->res));
    cmd->res.status = ATA_STAT_DRDY | ATA_STAT_DSC | ATA_STAT_ERR;
    cmd->res.error = ATA_ERR_IDNF;
    ata_result_put_lba(d, cmd, device, lba, &cmd->res);
}

static void ata_decode_abort(const struct ata_dev *d, struct ata_cmd *cmd)
{
    cmd->kind = ATA_KIND_DONE;
    ata_result_abort(d, &cmd->res);
}

/* Read/write/verify commands: the address, the count and the range check. */
static void ata_decode_rw(struct ata_dev *d, const struct ata_taskfile *tf, struct ata_cmd *cmd,
                          enum ata_cmd_kind kind, bool lba48, bool write, unsigned block)
{
    cmd->lba48 = lba48;
    cmd->write = write;
    cmd->sectors = ata_tf_count(tf, lba48);
    cmd->block_sectors = block;
    uint64_t lba = 0;
    if (!ata_tf_lba(d, tf, lba48, &lba)) {
        ata_decode_idnf(d, cmd, tf->device, 0);
        return;
    }
    cmd->lba = lba;
    if (lba >= d->sectors || cmd->sectors > d->sectors - lba) {
        /* ATA/ATAPI-6 6.2: IDNF for an address past the end; the output registers name the first bad sector. */
        ata_decode_idnf(d, cmd, tf->device, RT_MAX(lba, d->sectors));
        return;
    }
    if (write && drive_is_readonly(d->drive)) {
        ata_decode_abort(d, cmd);
        return;
    }
    if (write && !d->write_cache)
        cmd->fua = true;
    cmd->kind = kind;
}

static void ata_decode_set_features(struct ata_dev *d, const struct ata_taskfile *tf, struct ata_cmd *cmd)
{
    /* ATA/ATAPI-6 8.37, table 31: the subcommands a drive without APM, SMART or security needs. */
    if (d->atapi && (tf->features == 0x02 || tf->features == 0x82 || tf->features == 0x55 || tf->features == 0xaa)) {
        /* A CD drive has no write cache or look-ahead to switch. */
        ata_decode_abort(d, cmd);
        return;
    }
    switch (tf->features) {
    case 0x02: d->write_cache = true; break;
    case 0x82: d->write_cache = false; break;
    case 0x03:
        if (!ata_xfer_mode_valid(tf->count)) {
            ata_decode_abort(d, cmd);
            return;
        }
        d->xfer_mode = tf->count <= 1 ? 0 : tf->count;
        break;
    case 0x55: d->read_lookahead = false; break;
    case 0xaa: d->read_lookahead = true; break;
    case 0x66: d->revert_on_reset = false; break;
    case 0xcc: d->revert_on_reset = true; break;
    default:
        ata_decode_abort(d, cmd);
        return;
    }
    ata_result_ok(&cmd->res);
}

static void ata_decode_power(struct ata_dev *d, const struct ata_taskfile *tf, struct ata_cmd *cmd)
{
    uint8_t command = tf->command;
    ata_result_ok(&cmd->res);
    switch (command) {
    case ATA_CMD_STANDBY:
    case ATA_CMD_STANDBY_IMMEDIATE:
    case ATA_CMD_SLEEP:
        d->standby = true;
        break;
    case ATA_CMD_IDLE:
    case ATA_CMD_IDLE_IMMEDIATE:
        d->standby = false;
        break;
    default: /* CHECK POWER MODE (8.6): FFh active or idle, 00h standby. */
        cmd->res.set_tf = true;
        cmd->res.count = d->standby ? 0x00 : 0xff;
        cmd->res.count_exp = tf->count_exp;
        memcpy(cmd->res.lba, tf->lba, sizeof(cmd->res.lba));
        cmd->res.device = tf->device;
        break;
    }
}

/* Commands a packet device takes (ATA/ATAPI-6 table B.1 for the PACKET feature set). */
static void ata_decode_packet_dev(struct ata_dev *d, const struct ata_taskfile *tf, struct ata_cmd *cmd)
{
    switch (tf->command) {
    case ATA_CMD_PACKET:
        if (tf->features & 0x02) { /* OVL: no overlapped commands here */
            ata_decode_abort(d, cmd);
            return;
        }
        cmd->kind = ATA_KIND_PACKET;
        cmd->packet_dma = (tf->features & 0x01) != 0;
        return;
    case ATA_CMD_IDENTIFY_PACKET:
        cmd->kind = ATA_KIND_PIO_IN;
        ata_identify(d, d->id_flags, cmd->data);
        cmd->data_bytes = sizeof(cmd->data);
        cmd->sectors = 1;
        cmd->block_sectors = 1;
        return;
    case ATA_CMD_DEVICE_RESET:
        cmd->kind = ATA_KIND_DEVICE_RESET;
        return;
    case ATA_CMD_IDENTIFY:
    case ATA_CMD_READ_SECTORS:
    case ATA_CMD_READ_SECTORS_NR:
        /* 8.15/8.27: a packet device aborts these and shows its signature, which is how hosts find it. */
        ata_decode_abort(d, cmd);
        ata_set_signature(d, &cmd->res);
        return;
    case ATA_CMD_SET_FEATURES:
        ata_decode_set_features(d, tf, cmd);
        return;
    case ATA_CMD_STANDBY_IMMEDIATE:
    case ATA_CMD_IDLE_IMMEDIATE:
    case ATA_CMD_CHECK_POWER_MODE:
    case ATA_CMD_SLEEP:
        ata_decode_power(d, tf, cmd);
        return;
    default:
        ata_decode_abort(d, cmd);
        return;
    }
}

void ata_cmd_decode(struct ata_dev *d, const struct ata_taskfile *tf, struct ata_cmd *cmd)
{
    memset(cmd, 0, sizeof(*cmd));
    cmd->command = tf->command;
    cmd->device = tf->device;
    cmd->kind = ATA_KIND_DONE;
    ata_result_ok(&cmd->res);
    if (!ata_dev_present(d)) {
        ata_decode_abort(d, cmd);
        return;
    }
    if (tf->command == ATA_CMD_EXEC_DIAGNOSTIC) {
        cmd->kind = ATA_KIND_DIAG;
        return;
    }
    if (tf->command == ATA_CMD_NOP) {
        /* 8.21: NOP always ends with ABRT. */
        ata_decode_abort(d, cmd);
        return;
    }
    if (d->atapi) {
        ata_decode_packet_dev(d, tf, cmd);
        return;
    }
    unsigned mult = d->multiple;
    switch (tf->command) {
    case ATA_CMD_READ_SECTORS:
    case ATA_CMD_READ_SECTORS_NR:
        ata_decode_rw(d, tf, cmd, ATA_KIND_PIO_IN, false, false, 1);
        return;
    case ATA_CMD_READ_SECTORS_EXT:
        ata_decode_rw(d, tf, cmd, ATA_KIND_PIO_IN, true, false, 1);
        return;
    case ATA_CMD_WRITE_SECTORS:
    case ATA_CMD_WRITE_SECTORS_NR:
        ata_decode_rw(d, tf, cmd, ATA_KIND_PIO_OUT, false, true, 1);
        return;
    case ATA_CMD_WRITE_SECTORS_EXT:
        ata_decode_rw(d, tf, cmd, ATA_KIND_PIO_OUT, true, true, 1);
        return;
    case ATA_CMD_READ_MULTIPLE:
    case ATA_CMD_READ_MULTIPLE_EXT:
    case ATA_CMD_WRITE_MULTIPLE:
    case ATA_CMD_WRITE_MULTIPLE_EXT:
    case ATA_CMD_WRITE_MULTIPLE_FUA_EXT: {
        /* 8.29: multiple commands abort until SET MULTIPLE MODE enabled a block size. */
        if (!mult) {
            ata_decode_abort(d, cmd);
            return;
        }
        bool write = tf->command == ATA_CMD_WRITE_MULTIPLE || tf->command == ATA_CMD_WRITE_MULTIPLE_EXT ||
                     tf->command == ATA_CMD_WRITE_MULTIPLE_FUA_EXT;
        bool lba48 = tf->command != ATA_CMD_READ_MULTIPLE && tf->command != ATA_CMD_WRITE_MULTIPLE;
        ata_decode_rw(d, tf, cmd, write ? ATA_KIND_PIO_OUT : ATA_KIND_PIO_IN, lba48, write, mult);
        if (tf->command == ATA_CMD_WRITE_MULTIPLE_FUA_EXT)
            cmd->fua = true;
        return;
    }
    case ATA_CMD_READ_DMA:
    case ATA_CMD_READ_DMA_NR:
        ata_decode_rw(d, tf, cmd, ATA_KIND_DMA_IN, false, false, 0);
        return;
    case ATA_CMD_READ_DMA_EXT:
        ata_decode_rw(d, tf, cmd, ATA_KIND_DMA_IN, true, false, 0);
        return;
    case ATA_CMD_WRITE_DMA:
    case ATA_CMD_WRITE_DMA_NR:
        ata_decode_rw(d, tf, cmd, ATA_KIND_DMA_OUT, false, true, 0);
        return;
    case ATA_CMD_WRITE_DMA_EXT:
    case ATA_CMD_WRITE_DMA_FUA_EXT:
        ata_decode_rw(d, tf, cmd, ATA_KIND_DMA_OUT, true, true, 0);
        if (tf->command == ATA_CMD_WRITE_DMA_FUA_EXT)
            cmd->fua = true;
        return;
    case ATA_CMD_READ_VERIFY:
    case ATA_CMD_READ_VERIFY_NR:
    case ATA_CMD_READ_VERIFY_EXT:
        /* The data is not transferred; the range check is the part a host can observe. */
        ata_decode_rw(d, tf, cmd, ATA_KIND_DONE, tf->command == ATA_CMD_READ_VERIFY_EXT, false, 0);
        return;
    case ATA_CMD_FLUSH_CACHE:
    case ATA_CMD_FLUSH_CACHE_EXT:
        cmd->kind = ATA_KIND_FLUSH;
        return;
    case ATA_CMD_IDENTIFY:
        cmd->kind = ATA_KIND_PIO_IN;
        ata_identify(d, d->id_flags, cmd->data);
        cmd->data_bytes = sizeof(cmd->data);
        cmd->sectors = 1;
        cmd->block_sectors = 1;
        return;
    case ATA_CMD_SET_MULTIPLE:
        if (!ata_multiple_valid(tf->count)) {
            ata_decode_abort(d, cmd);
            return;
        }
        d->multiple = tf->count;
        return;
    case ATA_CMD_INIT_DEV_PARAMS: {
        /* 8.16: heads from the device register, sectors per track from the count; cylinders follow. */
        unsigned heads = (tf->device & 0x0f) + 1u, secs = tf->count;
        if (secs == 0) {
            ata_decode_abort(d, cmd);
            return;
        }
        uint64_t cyls = d->sectors / (heads * secs);
        d->cur_heads = (uint16_t)heads;
        d->cur_secs = (uint16_t)secs;
        d->cur_cyls = (uint16_t)RT_MIN(cyls, 65535u);
        return;
    }
    case ATA_CMD_SET_FEATURES:
        ata_decode_set_features(d, tf, cmd);
        return;
    case ATA_CMD_STANDBY:
    case ATA_CMD_STANDBY_IMMEDIATE:
    case ATA_CMD_IDLE:
    case ATA_CMD_IDLE_IMMEDIATE:
    case ATA_CMD_CHECK_POWER_MODE:
    case ATA_CMD_SLEEP:
        ata_decode_power(d, tf, cmd);
        return;
    default:
        if ((tf->command & 0xf0) == ATA_CMD_RECALIBRATE)
            return;
        if ((tf->command & 0xf0) == ATA_CMD_SEEK) {
            uint64_t lba = 0;
            if (!ata_tf_lba(d, tf, false, &lba) || lba >= d->sectors)
                ata_decode_idnf(d, cmd, tf->device, lba);
            return;
        }
        ata_decode_abort(d, cmd);
        return;
    }
}

void ata_cmd_complete(struct ata_dev *d, struct ata_cmd *cmd, int status, uint32_t done_sectors)
{
    if (cmd->kind == ATA_KIND_PIO_IN && cmd->data_bytes) {
        ata_result_ok(&cmd->res);
        return;
    }
    if (status == 0) {
        ata_result_ok(&cmd->res);
        return;
    }
    memset(&cmd->res, 0, sizeof(cmd->res));
    cmd->res.status = ATA_STAT_DRDY | ATA_STAT_DSC | ATA_STAT_ERR;
    if (status == VERR_OUT_OF_RANGE)
        cmd->res.error = ATA_ERR_IDNF;
    else if (cmd->kind == ATA_KIND_FLUSH || cmd->write || status == VERR_ACCESS_DENIED ||
             status == VERR_INVALID_STATE)
        cmd->res.error = ATA_ERR_ABRT;
    else
        cmd->res.error = ATA_ERR_UNC;
    if (cmd->kind != ATA_KIND_FLUSH) {
        ata_result_put_lba(d, cmd, cmd->device, cmd->lba + RT_MIN(done_sectors, cmd->sectors), &cmd->res);
    }
    LOG_DEBUG("%s: command %02x failed at sector %u: %s", d->drive ? drive_name(d->drive) : "?", cmd->command,
              done_sectors, rt_err_str(status));
}
