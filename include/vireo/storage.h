/* storage.h - the drives storage controllers attach (disks and CD/DVD drives): media, guest-memory scatter/gather I/O off the vCPU threads, completions. */
#ifndef VIREO_STORAGE_H
#define VIREO_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vireo/block.h"
#include "vireo/pdm.h"
#include "vireo/vm.h"

/*
 * A drive is what sits on a controller's port: a hard disk, or a CD/DVD drive whose
 * medium may be absent, inserted and ejected.  Controller models (IDE, AHCI,
 * virtio-blk) own their drives: they create them in construct() from their
 * configuration keys (see drive_create_from_cfg) and destroy them in destroy().
 *
 * I/O: a controller fills a struct drive_req (a byte range, and either a host buffer
 * or a guest-physical scatter/gather list) and submits it.  The drive maps the guest
 * pages (bounce-buffering anything that is not plain RAM), runs the transfer on a
 * worker thread (struct blk_aio), and calls done() later on the VM's event loop thread
 * with the VM lock held, after the guest memory was written and the software CPU told
 * about it (self-modifying-code detection, dirty pages).  done() is never called from
 * inside drive_submit().  A controller may submit again from done().
 *
 * Everything here except drive_insert/drive_eject (callers on any thread) runs with
 * the VM lock held, as device code always does.
 */

struct drive; /* opaque */

enum drive_kind { DRIVE_DISK, DRIVE_CDROM };

struct drive_params {
    enum drive_kind kind;
    const char *path;       /* image file; NULL: a CD drive with no medium (disks need one) */
    enum blk_format format; /* BLK_FMT_AUTO: probe */
    bool readonly;          /* forced for CD drives */
    const char *serial;     /* NULL: derived from the drive's name (stable across runs) */
    const char *model;      /* NULL: "VIREO HARDDISK" / "VIREO CD-ROM" */
};

/*
 * Opens the medium and registers the drive under name (unique in the VM: "ide0-0-1",
 * "ahci0-p2", "vblk0"); errors name the file and the reason.
 */
int drive_create(struct vm *vm, const char *name, const struct drive_params *params, struct drive **out);
/* Waits for the drive's requests (their done() runs first), closes the medium.  NULL is fine. */
void drive_destroy(struct drive *drive);

/*
 * The configuration keys a controller accepts for one port, under prefix (e.g.
 * "port0", "drive1"): PREFIX.path, PREFIX.media (disk|cdrom), PREFIX.format,
 * PREFIX.readonly, PREFIX.serial, PREFIX.model.  Returns 0 with *out NULL when
 * PREFIX.media and PREFIX.path are both absent (nothing on that port).
 */
int drive_create_from_cfg(struct vm *vm, const struct pdm_cfg *cfg, const char *prefix, const char *name,
                          struct drive **out);
/*
 * pdm_cfg_validate for a controller: every key must be one of own_keys
 * (NULL-terminated) or PREFIX.suffix for one of the prefixes and a drive suffix.
 */
int drive_cfg_validate(const struct pdm_cfg *cfg, const char *dev_name, const char *const *own_keys,
                       const char *const *prefixes, unsigned prefix_count);

/* The drive registered under name in vm, or NULL (the control socket, media changes). */
struct drive *drive_find(struct vm *vm, const char *name);

const char *drive_name(const struct drive *drive);
enum drive_kind drive_kind(const struct drive *drive);
bool drive_has_media(const struct drive *drive);
bool drive_is_readonly(const struct drive *drive);
/* 0 without a medium. */
uint64_t drive_size_bytes(const struct drive *drive);
/* 20 ASCII characters, space padded (ATA IDENTIFY words 10-19, VPD page 0x80, virtio-blk ID). */
const char *drive_serial(const struct drive *drive);
const char *drive_model(const struct drive *drive);
/* The open image (NULL without a medium): for tests and the image tool. */
struct blk_image *drive_image(struct drive *drive);

/* ---- Removable media (CD/DVD drives) ---------------------------------------------- */

/*
 * Called with the VM lock held after the medium changed (inserted or ejected, by the
 * host or by the guest): ATAPI reports UNIT ATTENTION, AHCI signals the change.
 */
void drive_set_media_listener(struct drive *drive, void (*fn)(void *opaque, struct drive *drive), void *opaque);
/*
 * Host side (control socket, GUI; any thread, takes the VM lock): insert a medium into
 * a CD drive (replacing the current one), or eject it.  VERR_BUSY when the guest has
 * locked the tray (PREVENT MEDIUM REMOVAL) and force is false; VERR_INVALID_STATE for a
 * disk.  In-flight requests finish on the old medium first.
 */
int drive_insert(struct drive *drive, const char *path, enum blk_format format, bool force);
int drive_eject(struct drive *drive, bool force);
/* Guest side (a controller's command): the tray lock, and eject/load from the guest. */
void drive_set_locked(struct drive *drive, bool locked);
bool drive_is_locked(const struct drive *drive);
/* The guest's START STOP UNIT with LoEj: ejects unless locked (VERR_BUSY); the listener runs. */
int drive_guest_eject(struct drive *drive);

/* ---- I/O ------------------------------------------------------------------------------ */

struct drive_sg {
    uint64_t gpa;
    uint64_t len;
};

struct drive_req {
    enum blk_op op;           /* READ, WRITE, FLUSH, DISCARD, WRITE_ZEROES */
    uint64_t offset_bytes;    /* on the medium */
    uint64_t len_bytes;       /* bytes to transfer (read/write), or the range (discard, write zeroes) */
    void *buf;                /* host buffer of len_bytes (PIO); NULL: use sg */
    const struct drive_sg *sg; /* guest-physical buffers, at least len_bytes in total (extra is ignored) */
    unsigned sg_count;
    void (*done)(struct drive_req *req, int status);
    void *opaque;
};

/*
 * Starts req.  Checks first, without calling done(): VERR_INVALID_STATE (no medium),
 * VERR_OUT_OF_RANGE (past the end of the medium, or an sg list shorter than
 * len_bytes), VERR_ACCESS_DENIED (write to a read-only medium).  The drive copies the
 * sg list; req itself must stay valid until done().  I/O errors arrive as done()'s
 * status.  Guest-physical ranges that are not RAM read as all ones and swallow writes,
 * as DMA on a real bus does.
 */
int drive_submit(struct drive *drive, struct drive_req *req);
/* Requests submitted and not yet done. */
unsigned drive_inflight(const struct drive *drive);
/*
 * Waits until every submitted request finished and runs their done() callbacks here
 * (VM lock held by the caller): reset, saved state, media changes and tests.
 */
void drive_drain(struct drive *drive);
/*
 * Snapshots of a running VM (VM paused, drive drained): drive_image_release flushes and closes a
 * disk drive's image so another writer may open it (snapshot creation, merging); drive_image_attach
 * opens path (fmt, BLK_FMT_AUTO probes) read-write as the drive's image again; the virtual size must
 * equal the drive's (VERR_INVALID_PARAMETER otherwise).  While released, guest I/O to the drive fails
 * with a medium error.  Call with the VM lock held.
 */
int drive_image_release(struct drive *drive);
int drive_image_attach(struct drive *drive, const char *path, enum blk_format fmt);
/* The path of the drive's open image (top of the chain), or NULL. */
const char *drive_image_path(const struct drive *drive);
/* drive_drain for every drive of vm, until none has a request pending (VM lock held). */
void drive_drain_all(struct vm *vm);

#endif
