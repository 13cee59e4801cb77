/* pflash.c - CFI parallel flash (Intel/Sharp command set, byte wide) for UEFI firmware code and its variable store. */

/*
 * Design.  The flash is a ROM device (mem_region_create_romd): in read-array mode the
 * guest reads its memory directly, so OVMF's SEC and PEI execute in place and its variable
 * reads cost what RAM reads cost; every write reaches pflash_write, and while a command
 * mode (status, identifier, CFI query, or a program/erase waiting for its second cycle)
 * is active, reads come to pflash_read too.  The command set is the Intel/Sharp basic
 * set (CFI primary vendor command set 0001, Intel application note AP-646 and the
 * 28F series datasheets, "Command Definitions"), byte wide, uniform 4 KiB blocks (the
 * granularity OVMF's QemuFlashFvbServicesRuntimeDxe erases with: PcdOvmfFirmwareBlockSize).
 *
 * Two kinds of instances:
 *  - read-only (the firmware code): every write is refused and logged once; the flash
 *    never leaves read-array mode.
 *  - writable (the variable store): backed by a file.  Each completed program or erase
 *    writes the changed bytes to the file at once (pwrite), so they survive the process
 *    ending in any way a moment later; fdatasync follows within FLASH_SYNC_DELAY_NS of
 *    virtual time, at reset and at destroy, so they survive the host going down too.
 *
 * Status register (28F datasheets, "Status Register Definitions"): bit 7 write state
 * machine ready, bit 5 erase error, bit 4 program error (both set for an improper
 * command sequence).  Clear Status (0x50) clears every bit and returns to read-array
 * mode: OVMF's flash detection (QemuFlash.c QemuFlashDetected) writes 0x50, then 0x70,
 * and recognises flash by reading a status of exactly 0x00.  Programming clears bits
 * only (a flash cell goes from 1 to 0; erase sets a whole block back to 0xff).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "vireo/devices.h"
#include "vireo/pdm.h"
#include "vireo/rt.h"
#include "vireo/vm.h"

#define LOG_COMPONENT "pflash"

#define FLASH_SSM_VERSION   1
#define FLASH_BLOCK_BYTES   PFLASH_BLOCK_BYTES
#define FLASH_MAX_BYTES     (64u << 20)
#define FLASH_SYNC_DELAY_NS 100000000ULL /* 100 ms of virtual time */

/* Commands (first bus cycle). */
#define CMD_PROGRAM       0x10
#define CMD_ERASE         0x20
#define CMD_PROGRAM_ALT   0x40
#define CMD_CLEAR_STATUS  0x50
#define CMD_LOCK_SETUP    0x60
#define CMD_READ_STATUS   0x70
#define CMD_READ_ID       0x90
#define CMD_CFI_QUERY     0x98
#define CMD_CONFIRM       0xd0
#define CMD_READ_ARRAY    0xff

#define SR_READY          0x80
#define SR_ERASE_ERROR    0x20
#define SR_PROGRAM_ERROR  0x10

/* Identifier codes: Intel's manufacturer code and a device code of its 28F family. */
#define ID_MANUFACTURER   0x89
#define ID_DEVICE         0x18

/* What reads return and what the next write means. */
enum flash_mode {
    MODE_ARRAY = 0,   /* reads: the memory (ROM mode) */
    MODE_STATUS,      /* reads: the status register */
    MODE_ID,          /* reads: identifier codes */
    MODE_CFI,         /* reads: the CFI query table */
    MODE_PROGRAM,     /* reads: status; the next write is the data to program */
    MODE_ERASE,       /* reads: status; the next write must be the confirm code */
    MODE_LOCK,        /* reads: status; the next write is the lock/unlock code */
    MODE_COUNT
};

struct pflash {
    struct pdm_dev *dev;
    struct vm *vm;
    struct mem_region *region;
    uint8_t *mem;
    uint64_t size;
    uint64_t gpa;
    bool readonly;
    char *path;
    int fd;                    /* writable: the backing file, else -1 */
    struct tm_timer *sync_timer;
    bool unsynced;             /* bytes were written to the file since the last fdatasync */
    bool write_refused_logged;
    bool bad_command_logged;
    bool io_error_logged;
    uint8_t mode;              /* enum flash_mode */
    uint8_t status;
    uint8_t cfi[0x40];         /* the CFI query table, by byte address */
};

/* ---- CFI query table (JEDEC JESD68.01, "Common Flash Interface") --------------- */

static unsigned log2_ceil(uint64_t v)
{
    unsigned n = 0;
    while (n < 63 && ((uint64_t)1 << n) < v)
        n++;
    return n;
}

static void cfi_build(struct pflash *s)
{
    uint8_t *t = s->cfi;
    uint64_t blocks = s->size / FLASH_BLOCK_BYTES;
    memset(t, 0, sizeof(s->cfi));
    t[0x10] = 'Q', t[0x11] = 'R', t[0x12] = 'Y';
    t[0x13] = 0x01, t[0x14] = 0x00; /* primary command set: Intel/Sharp extended (0001) */
    t[0x15] = 0x00, t[0x16] = 0x00; /* no primary extended table */
    t[0x17] = 0x00, t[0x18] = 0x00; /* no alternate command set */
    t[0x1b] = 0x45, t[0x1c] = 0x55; /* Vcc 4.5-5.5 V */
    t[0x1d] = 0x00, t[0x1e] = 0x00; /* no Vpp pin */
    t[0x1f] = 0x04;                 /* typical byte program 2^4 us */
    t[0x20] = 0x00;                 /* no buffered write */
    t[0x21] = 0x0a;                 /* typical block erase 2^10 ms */
    t[0x22] = 0x00;                 /* no chip erase */
    t[0x23] = 0x04, t[0x24] = 0x00, t[0x25] = 0x04, t[0x26] = 0x00; /* maxima: 2^4 times typical */
    t[0x27] = (uint8_t)log2_ceil(s->size);
    t[0x28] = 0x00, t[0x29] = 0x00; /* x8 asynchronous interface */
    t[0x2a] = 0x00, t[0x2b] = 0x00; /* no multi-byte write */
    t[0x2c] = 0x01;                 /* one erase block region */
    t[0x2d] = (uint8_t)(blocks - 1), t[0x2e] = (uint8_t)((blocks - 1) >> 8);
    t[0x2f] = (uint8_t)(FLASH_BLOCK_BYTES >> 8), t[0x30] = (uint8_t)(FLASH_BLOCK_BYTES >> 16);
}

/* ---- backing file -------------------------------------------------------------- */

static void flash_sync(struct pflash *s)
{
    if (s->fd < 0 || !s->unsynced)
        return;
    s->unsynced = false;
    if (fdatasync(s->fd) != 0 && !s->io_error_logged) {
        s->io_error_logged = true;
        LOG_ERR("%s: cannot flush '%s' to disk: %s", pdm_dev_name(s->dev), s->path, strerror(errno));
    }
}

static void flash_sync_timer(void *opaque)
{
    flash_sync(opaque);
}

/* Writes [off, off+len) of the flash to its file; false (logged once) when the host refused. */
static bool flash_persist(struct pflash *s, uint64_t off, size_t len)
{
    if (s->fd < 0)
        return true;
    const uint8_t *p = s->mem + off;
    while (len > 0) {
        ssize_t n = pwrite(s->fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (!s->io_error_logged) {
                s->io_error_logged = true;
                LOG_ERR("%s: cannot write '%s': %s; the guest's change stays in memory only",
                        pdm_dev_name(s->dev), s->path, n < 0 ? strerror(errno) : "short write");
            }
            return false;
        }
        p += n, off += (uint64_t)n, len -= (size_t)n;
    }
    s->unsynced = true;
    if (!tm_timer_is_armed(s->sync_timer))
        tm_timer_arm(s->sync_timer, tm_now_ns(s->vm) + FLASH_SYNC_DELAY_NS);
    return true;
}

/* ---- command interface ----------------------------------------------------------- */

static void flash_set_mode(struct pflash *s, enum flash_mode mode)
{
    s->mode = (uint8_t)mode;
    mem_region_romd_set(s->region, mode == MODE_ARRAY);
}

static uint8_t flash_read_byte(struct pflash *s, uint64_t off)
{
    switch (s->mode) {
    case MODE_ID:
        /* Byte address 0: manufacturer, 1: device, 2 of each block: its lock state (never locked). */
        switch (off & 0xff) {
        case 0:
            return ID_MANUFACTURER;
        case 1:
            return ID_DEVICE;
        default:
            return 0;
        }
    case MODE_CFI:
        return (off & 0xff) < sizeof(s->cfi) ? s->cfi[off & 0xff] : 0;
    case MODE_ARRAY:
        return s->mem[off];
    default:
        return s->status;
    }
}

static uint64_t pflash_read(void *opaque, uint64_t offset, unsigned size)
{
    struct pflash *s = opaque;
    uint64_t v = 0;
    for (unsigned i = 0; i < size && offset + i < s->size; i++)
        v |= (uint64_t)flash_read_byte(s, offset + i) << (8 * i);
    return v;
}

static void flash_program(struct pflash *s, uint64_t off, uint64_t value, unsigned size)
{
    size = (unsigned)RT_MIN((uint64_t)size, s->size - off);
    for (unsigned i = 0; i < size; i++)
        s->mem[off + i] &= (uint8_t)(value >> (8 * i));
    if (!flash_persist(s, off, size))
        s->status |= SR_PROGRAM_ERROR;
    s->status |= SR_READY;
}

static void flash_erase(struct pflash *s, uint64_t off)
{
    uint64_t block = off & ~(uint64_t)(FLASH_BLOCK_BYTES - 1);
    memset(s->mem + block, 0xff, FLASH_BLOCK_BYTES);
    if (!flash_persist(s, block, FLASH_BLOCK_BYTES))
        s->status |= SR_ERASE_ERROR;
    s->status |= SR_READY;
}

static void flash_bad_sequence(struct pflash *s, uint8_t cmd)
{
    if (!s->bad_command_logged) {
        s->bad_command_logged = true;
        LOG_WARN("%s: guest wrote 0x%02x, no flash command in this state; status shows a command sequence error",
                 pdm_dev_name(s->dev), cmd);
    }
    s->status |= SR_ERASE_ERROR | SR_PROGRAM_ERROR | SR_READY;
}

static void pflash_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    struct pflash *s = opaque;
    if (offset >= s->size)
        return;
    if (s->readonly) {
        if (!s->write_refused_logged) {
            s->write_refused_logged = true;
            LOG_WARN("%s: guest wrote 0x%02llx at offset 0x%llx of read-only flash '%s'; refused",
                     pdm_dev_name(s->dev), (unsigned long long)(value & 0xff), (unsigned long long)offset, s->path);
        }
        return;
    }
    uint8_t cmd = (uint8_t)value;
    switch (s->mode) {
    case MODE_PROGRAM:
        flash_program(s, offset, value, size);
        flash_set_mode(s, MODE_STATUS);
        return;
    case MODE_ERASE:
        if (cmd == CMD_CONFIRM)
            flash_erase(s, offset);
        else
            flash_bad_sequence(s, cmd);
        flash_set_mode(s, MODE_STATUS);
        return;
    case MODE_LOCK:
        /* Set/clear block lock bits (0x01, 0xd0, 0x2f): blocks are never locked, so this completes at once. */
        s->status |= SR_READY;
        flash_set_mode(s, MODE_STATUS);
        return;
    default:
        break;
    }
    switch (cmd) {
    case CMD_READ_ARRAY:
        flash_set_mode(s, MODE_ARRAY);
        break;
    case CMD_PROGRAM:
    case CMD_PROGRAM_ALT:
        flash_set_mode(s, MODE_PROGRAM);
        break;
    case CMD_ERASE:
        flash_set_mode(s, MODE_ERASE);
        break;
    case CMD_LOCK_SETUP:
        flash_set_mode(s, MODE_LOCK);
        break;
    case CMD_CLEAR_STATUS:
        s->status = 0;
        flash_set_mode(s, MODE_ARRAY);
        break;
    case CMD_READ_STATUS:
        flash_set_mode(s, MODE_STATUS);
        break;
    case CMD_READ_ID:
        flash_set_mode(s, MODE_ID);
        break;
    case CMD_CFI_QUERY:
        flash_set_mode(s, MODE_CFI);
        break;
    default:
        flash_bad_sequence(s, cmd);
        flash_set_mode(s, MODE_STATUS);
        break;
    }
}

static const struct io_ops g_pflash_ops = {
    .read = pflash_read,
    .write = pflash_write,
    .min_access = 1,
    .max_access = 4,
};

/* ---- device ------------------------------------------------------------------------ */

/* Opens and reads the image; a writable one stays open (and locked against a second VM) for programming. */
static int flash_open(struct pflash *s, const char *name)
{
    int fd = open(s->path, (s->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        LOG_ERR("%s: cannot open flash image '%s'%s: %s", name, s->path, s->readonly ? "" : " for writing",
                strerror(err));
        return err == ENOENT ? VERR_FILE_NOT_FOUND : err == EACCES || err == EROFS ? VERR_ACCESS_DENIED : VERR_IO;
    }
    if (!s->readonly && flock(fd, LOCK_EX | LOCK_NB) != 0) {
        LOG_ERR("%s: flash image '%s' is in use by another running VM", name, s->path);
        close(fd);
        return VERR_BUSY;
    }
    off_t end = lseek(fd, 0, SEEK_END);
    if (end <= 0 || (uint64_t)end > FLASH_MAX_BYTES || (end % FLASH_BLOCK_BYTES) != 0) {
        LOG_ERR("%s: flash image '%s' has %lld bytes; expected a non-zero multiple of %u KiB up to %u MiB", name,
                s->path, (long long)end, FLASH_BLOCK_BYTES >> 10, FLASH_MAX_BYTES >> 20);
        close(fd);
        return VERR_BAD_FORMAT;
    }
    s->size = (uint64_t)end;
    int rc = mem_region_create_romd(s->vm, name, s->size, &g_pflash_ops, s, &s->region);
    if (rc) {
        close(fd);
        return rc;
    }
    s->mem = mem_region_hva(s->region);
    for (uint64_t done = 0; done < s->size;) {
        ssize_t n = pread(fd, s->mem + done, s->size - done, (off_t)done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            LOG_ERR("%s: cannot read flash image '%s': %s", name, s->path, n < 0 ? strerror(errno) : "file shrank");
            close(fd);
            return VERR_IO;
        }
        done += (uint64_t)n;
    }
    if (s->readonly)
        close(fd);
    else
        s->fd = fd;
    return 0;
}

static int pflash_construct(struct pdm_dev *dev, const struct pdm_cfg *cfg)
{
    static const char *const allowed[] = { "path", "gpa", "readonly", NULL };
    struct pflash *s = pdm_dev_state(dev);
    const char *name = pdm_dev_name(dev);
    s->dev = dev;
    s->vm = pdm_dev_vm(dev);
    s->fd = -1;
    int rc = pdm_cfg_validate(cfg, name, allowed);
    if (rc)
        return rc;
    const char *path = pdm_cfg_get_str(cfg, "path", NULL);
    if (!path || !*path) {
        LOG_ERR("%s: no flash image (key 'path')", name);
        return VERR_CFG_BAD_VALUE;
    }
    uint64_t gpa;
    bool readonly;
    if ((rc = pdm_cfg_get_u64(cfg, "gpa", UINT64_MAX, &gpa)) || (rc = pdm_cfg_get_bool(cfg, "readonly", false, &readonly)))
        return rc;
    s->readonly = readonly;
    s->path = strdup(path);
    if (!s->path)
        return VERR_NO_MEMORY;
    rc = tm_timer_create(s->vm, name, flash_sync_timer, s, &s->sync_timer);
    if (!rc)
        rc = flash_open(s, name);
    if (rc)
        return rc;
    /* The default place is the top of the 32-bit space, where the reset vector is. */
    if (gpa == UINT64_MAX)
        gpa = 0x100000000ULL - s->size;
    if ((gpa & 4095) != 0 || gpa >= 0x100000000ULL || s->size > 0x100000000ULL - gpa) {
        LOG_ERR("%s: flash at 0x%llx (%llu KiB) does not fit below 4 GiB on a page boundary", name,
                (unsigned long long)gpa, (unsigned long long)(s->size >> 10));
        return VERR_CFG_BAD_VALUE;
    }
    s->gpa = gpa;
    cfi_build(s);
    rc = mem_region_map(s->region, gpa, 0);
    if (rc)
        return rc;
    LOG_INFO("%s: '%s' (%llu KiB, %s) at 0x%llx", name, s->path, (unsigned long long)(s->size >> 10),
             s->readonly ? "read-only" : "writable", (unsigned long long)gpa);
    return 0;
}

static void pflash_reset(struct pdm_dev *dev)
{
    struct pflash *s = pdm_dev_state(dev);
    flash_sync(s);
    s->status = SR_READY;
    flash_set_mode(s, MODE_ARRAY);
}

static void pflash_destroy(struct pdm_dev *dev)
{
    struct pflash *s = pdm_dev_state(dev);
    flash_sync(s);
    if (s->sync_timer)
        tm_timer_destroy(s->sync_timer);
    if (s->region)
        mem_region_destroy(s->region);
    if (s->fd >= 0)
        close(s->fd);
    free(s->path);
    s->sync_timer = NULL;
    s->region = NULL;
    s->fd = -1;
    s->path = NULL;
}

/*
 * Version 1: mode, status, size, and for a writable flash its whole content: the guest's
 * view at save time wins on load and is written back to the file, as the guest may hold
 * copies of it in RAM.
 */
static int pflash_save(struct pdm_dev *dev, struct ssm *ssm)
{
    struct pflash *s = pdm_dev_state(dev);
    ssm_put_u8(ssm, s->mode);
    ssm_put_u8(ssm, s->status);
    ssm_put_u64(ssm, s->size);
    if (!s->readonly)
        ssm_put_bytes(ssm, s->mem, s->size);
    return ssm_status(ssm);
}

static int pflash_load(struct pdm_dev *dev, struct ssm *ssm, uint32_t version)
{
    struct pflash *s = pdm_dev_state(dev);
    if (version != FLASH_SSM_VERSION)
        return VERR_SSM_VERSION;
    uint8_t mode, status;
    uint64_t size;
    ssm_get_u8(ssm, &mode);
    ssm_get_u8(ssm, &status);
    int rc = ssm_get_u64(ssm, &size);
    if (rc)
        return rc;
    if (mode >= MODE_COUNT || size != s->size) {
        LOG_ERR("%s: saved flash state (mode %u, %llu bytes) does not fit this flash (%llu bytes)",
                pdm_dev_name(dev), mode, (unsigned long long)size, (unsigned long long)s->size);
        return VERR_SSM_CORRUPT;
    }
    if (!s->readonly) {
        uint8_t *copy = malloc(s->size);
        if (!copy)
            return VERR_NO_MEMORY;
        rc = ssm_get_bytes(ssm, copy, s->size);
        if (!rc) {
            memcpy(s->mem, copy, s->size);
            flash_persist(s, 0, s->size);
        }
        free(copy);
        if (rc)
            return rc;
    }
    s->status = status;
    flash_set_mode(s, (enum flash_mode)mode);
    return 0;
}

struct mem_region *pflash_get_region(struct pdm_dev *flash)
{
    if (!flash || pdm_dev_desc(flash) != &g_dev_pflash)
        return NULL;
    struct pflash *s = pdm_dev_state(flash);
    return s->region;
}

const struct pdm_dev_desc g_dev_pflash = {
    .name = "pflash",
    .description = "CFI parallel flash, Intel command set (UEFI firmware code and variable store)",
    .state_size = sizeof(struct pflash),
    .ssm_version = FLASH_SSM_VERSION,
    .construct = pflash_construct,
    .reset = pflash_reset,
    .save = pflash_save,
    .load = pflash_load,
    .destroy = pflash_destroy,
};
