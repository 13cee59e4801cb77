/* drive.c - drives on storage controllers: media, guest scatter/gather mapped for worker-thread I/O, completions on the event loop. */
/*
 * Design: a drive owns its medium (a struct blk_image) and a small worker pool
 * (struct blk_aio).  drive_submit() turns a request's guest-physical scatter/gather
 * list into host iovecs where the guest memory is plain RAM, or one bounce buffer for
 * the whole transfer when any piece is not (MMIO, unassigned, a read-only alias, a
 * range crossing regions): DMA that hits such memory is rare and correctness beats
 * speed there.  The bounce buffer meets RAM only (the rest reads as all ones and
 * swallows writes), so a transfer never runs device code.  Workers do the file I/O
 * without the VM lock.  A finished request is
 * queued on the drive, and the drive's eventfd wakes the event loop, which takes the
 * VM lock, copies bounce buffers into the guest, tells the memory map about the
 * written pages (the software CPU drops translations of overwritten code) and calls
 * the controller's done().  drive_drain() does the same from the caller's thread after
 * waiting for the workers, so reset, saved state and tests need no running loop.
 *
 * The eventfd watch is added at creation (before the loop runs) and removed at
 * destruction (after the VM stopped its loop thread), as the event loop requires.
 * Drives are found by name through a process-wide list keyed by VM.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vireo/storage.h"

#define LOG_COMPONENT "drive"

/* A request's transfer may not exceed this (LBA48's 65536 sectors are 32 MiB). */
#define DRIVE_MAX_TRANSFER_BYTES (64u << 20)
/* Scatter/gather entries per request (AHCI allows 65535 PRD entries). */
#define DRIVE_MAX_SG 65536u
#define DRIVE_DISK_WORKERS  4
#define DRIVE_CDROM_WORKERS 1

struct drive_op {
    struct blk_request blk;
    struct drive *drive;
    struct drive_req *req;
    struct iovec *iov;
    int iovcnt;
    struct drive_sg *sg; /* copy of the guest list, clipped to len_bytes (reads with a bounce buffer) */
    unsigned sg_count;
    uint8_t *bounce;
    int status;
    struct drive_op *next;
};

struct drive {
    struct vm *vm;
    char *name;
    enum drive_kind kind;
    bool readonly;
    bool locked;
    char serial[21];
    char model[41];
    struct blk_image *img;
    uint64_t released_size; /* a disk whose image was released (snapshots): its size, 0 otherwise */
    struct blk_aio *aio;
    void (*media_fn)(void *opaque, struct drive *drive);
    void *media_opaque;
    int efd;
    struct rt_watch *watch;
    struct rt_mutex lock; /* guards what workers touch: running, done list */
    struct rt_cond idle;
    unsigned running; /* submitted, worker not finished */
    unsigned pending; /* submitted, done() not called yet */
    struct drive_op *done_head, *done_tail;
    struct drive *next; /* registry */
};

static struct rt_mutex g_drive_registry_lock = { PTHREAD_MUTEX_INITIALIZER };
static struct drive *g_drives;

/* ---- registry and properties ---------------------------------------------------- */

struct drive *drive_find(struct vm *vm, const char *name)
{
    struct drive *found = NULL;
    rt_mutex_lock(&g_drive_registry_lock);
    for (struct drive *d = g_drives; d && !found; d = d->next)
        if (d->vm == vm && strcmp(d->name, name) == 0)
            found = d;
    rt_mutex_unlock(&g_drive_registry_lock);
    return found;
}

const char *drive_name(const struct drive *drive)
{
    return drive->name;
}

enum drive_kind drive_kind(const struct drive *drive)
{
    return drive->kind;
}

bool drive_has_media(const struct drive *drive)
{
    return drive->img != NULL;
}

bool drive_is_readonly(const struct drive *drive)
{
    return drive->readonly;
}

uint64_t drive_size_bytes(const struct drive *drive)
{
    /* A released disk keeps its size: the guest saw it in IDENTIFY and the virtio config. */
    return drive->img ? blk_size_bytes(drive->img) : drive->released_size;
}

const char *drive_serial(const struct drive *drive)
{
    return drive->serial;
}

const char *drive_model(const struct drive *drive)
{
    return drive->model;
}

struct blk_image *drive_image(struct drive *drive)
{
    return drive->img;
}

/* ---- completions ------------------------------------------------------------------ */

static void op_free(struct drive_op *op)
{
    free(op->iov);
    free(op->sg);
    free(op->bounce);
    free(op);
}

/* Worker thread: queue the finished op and wake the loop. */
static void op_worker_done(struct blk_request *blk, int status)
{
    struct drive_op *op = blk->opaque;
    struct drive *d = op->drive;
    op->status = status;
    rt_mutex_lock(&d->lock);
    bool was_empty = d->done_head == NULL;
    op->next = NULL;
    if (d->done_tail)
        d->done_tail->next = op;
    else
        d->done_head = op;
    d->done_tail = op;
    d->running--;
    if (d->running == 0)
        rt_cond_broadcast(&d->idle);
    rt_mutex_unlock(&d->lock);
    if (was_empty) {
        uint64_t one = 1;
        ssize_t n = write(d->efd, &one, sizeof(one));
        (void)n; /* a full counter still wakes the loop */
    }
}

/*
 * Copies between a bounce buffer and guest memory, page by page, touching RAM only:
 * pieces that are not RAM (MMIO, ROM for writes, unassigned) read as all ones and
 * swallow writes.  A device's registers are never reached by a transfer the guest aimed
 * at them, so no device code runs re-entered from inside a completion.
 */
static void dma_copy(struct vm *vm, uint64_t gpa, uint8_t *buf, uint64_t len, bool to_guest)
{
    while (len > 0) {
        uint64_t chunk = RT_MIN(len, 4096 - (gpa & 4095));
        void *hva = mem_gpa_to_hva(vm, gpa, (size_t)chunk, to_guest);
        if (hva && to_guest) {
            memcpy(hva, buf, (size_t)chunk);
            mem_notify_written(vm, gpa, chunk);
        } else if (hva) {
            memcpy(buf, hva, (size_t)chunk);
        } else if (!to_guest) {
            memset(buf, 0xff, (size_t)chunk);
        }
        gpa += chunk;
        buf += chunk;
        len -= chunk;
    }
}

/* VM lock held: finish one op (bounce copy-out, memory notification, done()). */
static void op_finish(struct drive *d, struct drive_op *op)
{
    struct drive_req *req = op->req;
    int status = op->status;
    if (op->blk.op == BLK_OP_READ && !req->buf && status == 0) {
        if (op->bounce) {
            uint64_t off = 0;
            for (unsigned i = 0; i < op->sg_count; i++) {
                dma_copy(d->vm, op->sg[i].gpa, op->bounce + off, op->sg[i].len, true);
                off += op->sg[i].len;
            }
        } else {
            for (unsigned i = 0; i < op->sg_count; i++)
                mem_notify_written(d->vm, op->sg[i].gpa, op->sg[i].len);
        }
    }
    d->pending--;
    op_free(op);
    req->done(req, status);
}

/* VM lock held: run done() for every op the workers finished. */
static void drive_complete(struct drive *d)
{
    for (;;) {
        rt_mutex_lock(&d->lock);
        struct drive_op *op = d->done_head;
        if (op) {
            d->done_head = op->next;
            if (!d->done_head)
                d->done_tail = NULL;
        }
        rt_mutex_unlock(&d->lock);
        if (!op)
            return;
        op_finish(d, op);
    }
}

static void drive_efd_ready(void *opaque, int fd, unsigned revents)
{
    struct drive *d = opaque;
    (void)revents;
    uint64_t v;
    ssize_t n = read(fd, &v, sizeof(v));
    (void)n;
    vm_lock(d->vm);
    drive_complete(d);
    vm_unlock(d->vm);
}

unsigned drive_inflight(const struct drive *drive)
{
    return drive->pending;
}

void drive_drain_all(struct vm *vm)
{
    for (;;) {
        /* One drive at a time: done() may look drives up (the registry lock is not recursive). */
        struct drive *busy = NULL;
        rt_mutex_lock(&g_drive_registry_lock);
        for (struct drive *d = g_drives; d && !busy; d = d->next)
            if (d->vm == vm && d->pending)
                busy = d;
        rt_mutex_unlock(&g_drive_registry_lock);
        if (!busy)
            return;
        drive_drain(busy);
    }
}

void drive_drain(struct drive *drive)
{
    if (!drive)
        return;
    rt_mutex_lock(&drive->lock);
    while (drive->running)
        rt_cond_wait(&drive->idle, &drive->lock);
    rt_mutex_unlock(&drive->lock);
    drive_complete(drive);
}

/* ---- submission -------------------------------------------------------------------- */

static int build_transfer(struct drive *d, struct drive_op *op, const struct drive_req *req)
{
    bool to_guest = req->op == BLK_OP_READ;
    if (req->buf) {
        op->iov = malloc(sizeof(*op->iov));
        if (!op->iov)
            return VERR_NO_MEMORY;
        op->iov[0].iov_base = req->buf;
        op->iov[0].iov_len = req->len_bytes;
        op->iovcnt = 1;
        return 0;
    }
    if (!req->sg || req->sg_count == 0 || req->sg_count > DRIVE_MAX_SG)
        return VERR_OUT_OF_RANGE;
    /* Clip the guest's list to len_bytes; a list shorter than the transfer is refused. */
    op->sg = malloc(sizeof(*op->sg) * req->sg_count);
    op->iov = malloc(sizeof(*op->iov) * req->sg_count);
    if (!op->sg || !op->iov)
        return VERR_NO_MEMORY;
    uint64_t left = req->len_bytes;
    bool all_ram = true;
    unsigned n = 0;
    for (unsigned i = 0; i < req->sg_count && left > 0; i++) {
        uint64_t len = RT_MIN(req->sg[i].len, left);
        if (len == 0)
            continue;
        op->sg[n].gpa = req->sg[i].gpa;
        op->sg[n].len = len;
        void *hva = all_ram ? mem_gpa_to_hva(d->vm, req->sg[i].gpa, (size_t)len, to_guest) : NULL;
        if (!hva)
            all_ram = false;
        op->iov[n].iov_base = hva;
        op->iov[n].iov_len = (size_t)len;
        n++;
        left -= len;
    }
    if (left > 0)
        return VERR_OUT_OF_RANGE;
    op->sg_count = n;
    if (all_ram) {
        op->iovcnt = (int)n;
        return 0;
    }
    /* Some piece is not plain RAM: one bounce buffer for the whole transfer. */
    op->bounce = malloc(req->len_bytes);
    if (!op->bounce)
        return VERR_NO_MEMORY;
    if (!to_guest) {
        uint64_t off = 0;
        for (unsigned i = 0; i < n; i++) {
            dma_copy(d->vm, op->sg[i].gpa, op->bounce + off, op->sg[i].len, false);
            off += op->sg[i].len;
        }
    }
    op->iov[0].iov_base = op->bounce;
    op->iov[0].iov_len = req->len_bytes;
    op->iovcnt = 1;
    return 0;
}

int drive_submit(struct drive *drive, struct drive_req *req)
{
    if (!drive || !req || !req->done)
        return VERR_INVALID_PARAMETER;
    if (!drive->img)
        return VERR_INVALID_STATE;
    uint64_t size = blk_size_bytes(drive->img);
    bool data = req->op == BLK_OP_READ || req->op == BLK_OP_WRITE;
    if (req->op != BLK_OP_FLUSH) {
        if (req->offset_bytes > size || req->len_bytes > size - req->offset_bytes)
            return VERR_OUT_OF_RANGE;
        if (data && (req->len_bytes == 0 || req->len_bytes > DRIVE_MAX_TRANSFER_BYTES))
            return VERR_OUT_OF_RANGE;
    }
    if (req->op != BLK_OP_READ && req->op != BLK_OP_FLUSH && drive->readonly)
        return VERR_ACCESS_DENIED;
    struct drive_op *op = calloc(1, sizeof(*op));
    if (!op)
        return VERR_NO_MEMORY;
    op->drive = drive;
    op->req = req;
    int rc = data ? build_transfer(drive, op, req) : 0;
    if (rc) {
        op_free(op);
        return rc;
    }
    op->blk.op = req->op;
    op->blk.img = drive->img;
    op->blk.offset_bytes = req->offset_bytes;
    op->blk.len_bytes = req->len_bytes;
    op->blk.iov = op->iov;
    op->blk.iovcnt = op->iovcnt;
    op->blk.done = op_worker_done;
    op->blk.opaque = op;
    rt_mutex_lock(&drive->lock);
    drive->running++;
    rt_mutex_unlock(&drive->lock);
    drive->pending++;
    rc = blk_aio_submit(drive->aio, &op->blk);
    if (rc) {
        rt_mutex_lock(&drive->lock);
        drive->running--;
        rt_mutex_unlock(&drive->lock);
        drive->pending--;
        op_free(op);
    }
    return rc;
}

/* ---- media ------------------------------------------------------------------------- */

static int open_medium(struct drive *d, const char *path, enum blk_format format, struct blk_image **out)
{
    unsigned flags = d->readonly ? BLK_OPEN_READONLY : 0;
    int rc = blk_open(path, format, flags, out);
    if (rc)
        LOG_ERR("drive '%s': cannot open '%s': %s", d->name, path, rt_err_str(rc));
    return rc;
}

void drive_set_media_listener(struct drive *drive, void (*fn)(void *opaque, struct drive *drive), void *opaque)
{
    drive->media_fn = fn;
    drive->media_opaque = opaque;
}

static void media_changed(struct drive *d)
{
    if (d->media_fn)
        d->media_fn(d->media_opaque, d);
}

int drive_insert(struct drive *drive, const char *path, enum blk_format format, bool force)
{
    if (!drive || !path)
        return VERR_INVALID_PARAMETER;
    if (drive->kind != DRIVE_CDROM)
        return VERR_INVALID_STATE;
    struct blk_image *img;
    int rc = open_medium(drive, path, format, &img); /* outside the VM lock: may take a while */
    if (rc)
        return rc;
    vm_lock(drive->vm);
    if (drive->locked && !force && drive->img) {
        vm_unlock(drive->vm);
        blk_close(img);
        LOG_ERR("drive '%s': the guest has locked the tray", drive->name);
        return VERR_BUSY;
    }
    drive_drain(drive);
    struct blk_image *old = drive->img;
    drive->img = img;
    drive->locked = false;
    media_changed(drive);
    vm_unlock(drive->vm);
    blk_close(old);
    LOG_INFO("drive '%s': medium '%s' inserted", drive->name, path);
    return 0;
}

int drive_eject(struct drive *drive, bool force)
{
    if (!drive)
        return VERR_INVALID_PARAMETER;
    if (drive->kind != DRIVE_CDROM)
        return VERR_INVALID_STATE;
    vm_lock(drive->vm);
    if (drive->locked && !force) {
        vm_unlock(drive->vm);
        LOG_ERR("drive '%s': the guest has locked the tray", drive->name);
        return VERR_BUSY;
    }
    drive_drain(drive);
    struct blk_image *old = drive->img;
    drive->img = NULL;
    drive->locked = false;
    if (old)
        media_changed(drive);
    vm_unlock(drive->vm);
    blk_close(old);
    LOG_INFO("drive '%s': medium ejected", drive->name);
    return 0;
}

/* ---- image release and attach (snapshots of a running VM) ----------------------------- */

int drive_image_release(struct drive *drive)
{
    if (!drive)
        return VERR_INVALID_PARAMETER;
    if (drive->kind != DRIVE_DISK || !drive->img) {
        LOG_ERR("drive '%s': only a disk with an open image can release it", drive->name);
        return VERR_INVALID_STATE;
    }
    vm_lock(drive->vm);
    drive_drain(drive);
    struct blk_image *img = drive->img;
    /* Nothing written may stay in a cache: the next writer (a snapshot) opens the file itself. */
    int rc = drive->readonly ? 0 : blk_flush(img);
    if (rc) {
        vm_unlock(drive->vm);
        LOG_ERR("drive '%s': cannot flush '%s' before releasing it: %s", drive->name, blk_path(img), rt_err_str(rc));
        return rc;
    }
    drive->released_size = blk_size_bytes(img);
    drive->img = NULL;
    LOG_INFO("drive '%s': image '%s' released", drive->name, blk_path(img));
    blk_close(img);
    vm_unlock(drive->vm);
    return 0;
}

int drive_image_attach(struct drive *drive, const char *path, enum blk_format fmt)
{
    if (!drive || !path)
        return VERR_INVALID_PARAMETER;
    if (drive->kind != DRIVE_DISK || drive->img || !drive->released_size) {
        LOG_ERR("drive '%s': an image can be attached only to a disk whose image was released", drive->name);
        return VERR_INVALID_STATE;
    }
    struct blk_image *img;
    int rc = open_medium(drive, path, fmt, &img);
    if (rc)
        return rc;
    if (blk_size_bytes(img) != drive->released_size) {
        LOG_ERR("drive '%s': '%s' is %llu bytes, the disk the guest sees is %llu bytes", drive->name, path,
                (unsigned long long)blk_size_bytes(img), (unsigned long long)drive->released_size);
        blk_close(img);
        return VERR_INVALID_PARAMETER;
    }
    vm_lock(drive->vm);
    drive->img = img;
    drive->released_size = 0;
    vm_unlock(drive->vm);
    LOG_INFO("drive '%s': image '%s' attached", drive->name, path);
    return 0;
}

const char *drive_image_path(const struct drive *drive)
{
    return drive && drive->img ? blk_path(drive->img) : NULL;
}

void drive_set_locked(struct drive *drive, bool locked)
{
    drive->locked = locked;
}

bool drive_is_locked(const struct drive *drive)
{
    return drive->locked;
}

int drive_guest_eject(struct drive *drive)
{
    if (drive->kind != DRIVE_CDROM)
        return VERR_INVALID_STATE;
    if (drive->locked)
        return VERR_BUSY;
    drive_drain(drive);
    struct blk_image *old = drive->img;
    drive->img = NULL;
    if (old) {
        media_changed(drive);
        blk_close(old);
    }
    return 0;
}

/* ---- lifecycle --------------------------------------------------------------------- */

/* ATA strings are space-padded, not NUL-padded. */
static void set_padded(char *dst, size_t width, const char *src)
{
    size_t n = strlen(src);
    if (n > width)
        n = width;
    memcpy(dst, src, n);
    memset(dst + n, ' ', width - n);
    dst[width] = '\0';
}

/* A serial number that stays the same for the same drive name across runs. */
static void default_serial(char *dst, const char *name)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const char *p = name; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    char buf[21];
    snprintf(buf, sizeof(buf), "VR%08X", h);
    set_padded(dst, 20, buf);
}

int drive_create(struct vm *vm, const char *name, const struct drive_params *params, struct drive **out)
{
    if (!vm || !name || !params || !out)
        return VERR_INVALID_PARAMETER;
    *out = NULL;
    if (params->kind == DRIVE_DISK && !params->path) {
        LOG_ERR("drive '%s': a disk needs an image file", name);
        return VERR_INVALID_PARAMETER;
    }
    if (drive_find(vm, name)) {
        LOG_ERR("drive '%s' already exists", name);
        return VERR_ALREADY_EXISTS;
    }
    if (params->serial && strlen(params->serial) > 20) {
        LOG_ERR("drive '%s': serial '%s' is longer than 20 characters", name, params->serial);
        return VERR_CFG_BAD_VALUE;
    }
    if (params->model && strlen(params->model) > 40) {
        LOG_ERR("drive '%s': model '%s' is longer than 40 characters", name, params->model);
        return VERR_CFG_BAD_VALUE;
    }
    struct drive *d = calloc(1, sizeof(*d));
    if (!d)
        return VERR_NO_MEMORY;
    d->vm = vm;
    d->efd = -1;
    d->kind = params->kind;
    d->readonly = params->readonly || params->kind == DRIVE_CDROM;
    d->name = strdup(name);
    if (!d->name) {
        free(d);
        return VERR_NO_MEMORY;
    }
    if (params->serial)
        set_padded(d->serial, 20, params->serial);
    else
        default_serial(d->serial, name);
    set_padded(d->model, 40, params->model ? params->model
                                           : params->kind == DRIVE_CDROM ? "VIREO CD-ROM" : "VIREO HARDDISK");
    int rc = rt_mutex_init(&d->lock);
    if (rc) {
        free(d->name);
        free(d);
        return rc;
    }
    rc = rt_cond_init(&d->idle);
    if (rc) {
        rt_mutex_destroy(&d->lock);
        free(d->name);
        free(d);
        return rc;
    }
    if (params->path)
        rc = open_medium(d, params->path, params->format, &d->img);
    if (!rc)
        rc = blk_aio_create(d->kind == DRIVE_CDROM ? DRIVE_CDROM_WORKERS : DRIVE_DISK_WORKERS, &d->aio);
    if (!rc) {
        d->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (d->efd < 0)
            rc = rt_err_from_errno(errno);
    }
    if (!rc)
        rc = rt_evloop_watch_add(vm_get_evloop(vm), d->efd, RT_EV_READ, drive_efd_ready, d, &d->watch);
    if (rc) {
        d->next = NULL;
        drive_destroy(d);
        return rc;
    }
    rt_mutex_lock(&g_drive_registry_lock);
    d->next = g_drives;
    g_drives = d;
    rt_mutex_unlock(&g_drive_registry_lock);
    /* A saved state drains every drive of the VM first (the core cannot call device code itself). */
    vm_set_io_drain(vm, drive_drain_all);
    *out = d;
    return 0;
}

void drive_destroy(struct drive *drive)
{
    if (!drive)
        return;
    rt_mutex_lock(&g_drive_registry_lock);
    for (struct drive **p = &g_drives; *p; p = &(*p)->next) {
        if (*p == drive) {
            *p = drive->next;
            break;
        }
    }
    rt_mutex_unlock(&g_drive_registry_lock);
    if (drive->aio) {
        vm_lock(drive->vm);
        drive_drain(drive);
        vm_unlock(drive->vm);
        blk_aio_destroy(drive->aio);
    }
    if (drive->watch)
        rt_evloop_watch_remove(drive->watch);
    if (drive->efd >= 0)
        close(drive->efd);
    blk_close(drive->img);
    rt_cond_destroy(&drive->idle);
    rt_mutex_destroy(&drive->lock);
    free(drive->name);
    free(drive);
}

/* ---- configuration ------------------------------------------------------------------ */

static const char *const g_drive_cfg_suffixes[] = { "path", "media", "format", "readonly", "serial", "model" };
#define DRIVE_CFG_SUFFIX_COUNT (sizeof(g_drive_cfg_suffixes) / sizeof(g_drive_cfg_suffixes[0]))

static const char *cfg_get(const struct pdm_cfg *cfg, const char *prefix, const char *suffix, char *key,
                           size_t key_len)
{
    snprintf(key, key_len, "%s.%s", prefix, suffix);
    return pdm_cfg_get_str(cfg, key, NULL);
}

int drive_create_from_cfg(struct vm *vm, const struct pdm_cfg *cfg, const char *prefix, const char *name,
                          struct drive **out)
{
    char key[96];
    *out = NULL;
    const char *path = cfg_get(cfg, prefix, "path", key, sizeof(key));
    const char *media = cfg_get(cfg, prefix, "media", key, sizeof(key));
    if (!path && !media)
        return 0;
    struct drive_params p = { .kind = DRIVE_DISK, .path = path };
    if (media && strcmp(media, "cdrom") == 0) {
        p.kind = DRIVE_CDROM;
    } else if (media && strcmp(media, "disk") != 0) {
        LOG_ERR("drive '%s': %s.media must be disk or cdrom, not '%s'", name, prefix, media);
        return VERR_CFG_BAD_VALUE;
    }
    const char *format = cfg_get(cfg, prefix, "format", key, sizeof(key));
    if (format && blk_format_from_name(format, &p.format)) {
        LOG_ERR("drive '%s': unknown image format '%s' (raw, vdi, qcow2, vmdk, iso)", name, format);
        return VERR_CFG_BAD_VALUE;
    }
    snprintf(key, sizeof(key), "%s.readonly", prefix);
    int rc = pdm_cfg_get_bool(cfg, key, false, &p.readonly);
    if (rc)
        return rc;
    p.serial = cfg_get(cfg, prefix, "serial", key, sizeof(key));
    p.model = cfg_get(cfg, prefix, "model", key, sizeof(key));
    return drive_create(vm, name, &p, out);
}

int drive_cfg_validate(const struct pdm_cfg *cfg, const char *dev_name, const char *const *own_keys,
                       const char *const *prefixes, unsigned prefix_count)
{
    size_t own = 0;
    while (own_keys && own_keys[own])
        own++;
    size_t total = own + (size_t)prefix_count * DRIVE_CFG_SUFFIX_COUNT;
    const char **allowed = calloc(total + 1, sizeof(*allowed));
    char *names = calloc(total ? total : 1, 96);
    if (!allowed || !names) {
        free(allowed);
        free(names);
        return VERR_NO_MEMORY;
    }
    size_t n = 0;
    for (size_t i = 0; i < own; i++)
        allowed[n++] = own_keys[i];
    for (unsigned p = 0; p < prefix_count; p++) {
        for (size_t s = 0; s < DRIVE_CFG_SUFFIX_COUNT; s++) {
            char *k = names + n * 96;
            snprintf(k, 96, "%s.%s", prefixes[p], g_drive_cfg_suffixes[s]);
            allowed[n++] = k;
        }
    }
    allowed[n] = NULL;
    int rc = pdm_cfg_validate(cfg, dev_name, allowed);
    free(allowed);
    free(names);
    return rc;
}
