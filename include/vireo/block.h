/* block.h - disk images: raw, VDI, qcow2, VMDK and ISO files, differencing chains, creation, conversion, checks and I/O off the vCPU threads. */
#ifndef VIREO_BLOCK_H
#define VIREO_BLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vireo/rt.h"

/*
 * An open image (struct blk_image) is one file in one format plus, for a
 * differencing image, its open backing image (its parent), recursively.  Reads of
 * ranges the top file does not hold fall through to the parent, then to zeroes.
 * Writes always go to the top file.  Nothing here knows about VMs: vireo-vm's drives,
 * the image tool and the settings code all use this API.
 *
 * Threads: every function may be called from any thread.  The generic layer
 * serialises calls into one file's format code with that file's lock, so format code
 * holds no locks of its own (raw files, which have no metadata, run concurrently).
 *
 * Durability: a successful write is in the host page cache (it survives the process
 * being killed); blk_flush() writes out whatever metadata a format caches and then
 * fdatasync()s every file of the chain that was written, so a flushed write survives a
 * host crash.  Formats order metadata updates so that a process killed at any moment
 * leaves an image that opens and passes blk_check() with every write that was
 * issued before the kill present.
 *
 * Untrusted input: image headers and tables come from files people download.  Every
 * offset, size and count read from a file is checked before use; a bad image fails
 * blk_open() with VERR_BAD_FORMAT (or VERR_TRUNCATED) and a log line naming the file
 * and the field, and never reads or writes outside the buffers it allocated.
 */

struct blk_image; /* opaque */

enum blk_format {
    BLK_FMT_AUTO = 0, /* blk_open: probe the file's header */
    BLK_FMT_RAW,
    BLK_FMT_VDI,
    BLK_FMT_QCOW2,
    BLK_FMT_VMDK,
    BLK_FMT_ISO, /* raw, read-only, 2048-byte sectors */
};

/* "raw", "vdi", "qcow2", "vmdk", "iso"; NULL for an unknown value. */
const char *blk_format_name(enum blk_format fmt);
/* Case-insensitive name to format (BLK_FMT_AUTO for "auto"); VERR_NOT_FOUND for an unknown name. */
int blk_format_from_name(const char *name, enum blk_format *out);

/* Largest virtual disk any format accepts (bigger sizes in headers are refused). */
#define BLK_MAX_SIZE_BYTES (64ULL << 40) /* 64 TiB */
/* Longest backing chain blk_open follows; longer chains and loops fail with VERR_BAD_FORMAT. */
#define BLK_MAX_CHAIN 32

/* ---- Opening --------------------------------------------------------------- */

#define BLK_OPEN_READONLY   0x1u /* open every file of the chain read-only */
#define BLK_OPEN_NO_BACKING 0x2u /* open only this file (info, check); reads of unallocated ranges give zeroes */

/*
 * Opens path in format fmt (BLK_FMT_AUTO probes it: a recognised header decides,
 * otherwise a file ending in ".iso" is ISO and anything else raw) and, unless
 * BLK_OPEN_NO_BACKING, its backing chain read-only.  A backing file name stored
 * relative is taken relative to the folder of the image that names it.  Errors:
 * VERR_FILE_NOT_FOUND, VERR_ACCESS_DENIED, VERR_BAD_FORMAT, VERR_TRUNCATED, VERR_BUSY
 * (another process holds the write lock: images opened for writing take an
 * exclusive advisory lock, read-only opens a shared one).
 */
int blk_open(const char *path, enum blk_format fmt, unsigned flags, struct blk_image **out);
/* Writes out cached metadata (as blk_flush, without the fdatasync) and closes the chain.  NULL is fine. */
void blk_close(struct blk_image *img);

struct blk_info {
    enum blk_format format;
    uint64_t size_bytes;      /* the virtual disk size */
    uint64_t file_bytes;      /* the file's length on the host */
    uint64_t allocated_bytes; /* host bytes actually used (st_blocks) */
    bool readonly;
    char variant[24];         /* "fixed", "dynamic", "differencing", "monolithicSparse", "streamOptimized", "" */
    char backing_path[4096];  /* the parent's absolute path, or "" */
    enum blk_format backing_format; /* BLK_FMT_AUTO when none or not recorded */
    struct rt_uuid uuid;      /* the image's own UUID where the format has one (VDI, VMDK CID-based: zero) */
    struct rt_uuid parent_uuid;
};
int blk_get_info(struct blk_image *img, struct blk_info *out);
uint64_t blk_size_bytes(const struct blk_image *img);
bool blk_is_readonly(const struct blk_image *img);
/* The open parent, or NULL (also when opened with BLK_OPEN_NO_BACKING). */
struct blk_image *blk_backing(const struct blk_image *img);
const char *blk_path(const struct blk_image *img);
enum blk_format blk_format(const struct blk_image *img);

/* ---- Synchronous I/O --------------------------------------------------------- */

/*
 * Byte-addressed; offset and length need no alignment.  VERR_OUT_OF_RANGE when the
 * range passes the end of the disk, VERR_ACCESS_DENIED for a write to a read-only
 * image, VERR_IO (logged with errno) when the host fails.
 */
int blk_read(struct blk_image *img, uint64_t offset, void *buf, size_t len);
int blk_write(struct blk_image *img, uint64_t offset, const void *buf, size_t len);
int blk_readv(struct blk_image *img, uint64_t offset, const struct iovec *iov, int iovcnt);
int blk_writev(struct blk_image *img, uint64_t offset, const struct iovec *iov, int iovcnt);
int blk_flush(struct blk_image *img);
/*
 * Discard: the range's content becomes unspecified (old data or zeroes) and a format
 * may give the space back.  Write zeroes: the range reads as zeroes afterwards.
 */
int blk_discard(struct blk_image *img, uint64_t offset, uint64_t len);
int blk_write_zeroes(struct blk_image *img, uint64_t offset, uint64_t len);

/*
 * Whether [offset, offset+len) is held by this file (not its parent): *pnum gets the
 * length of the run starting at offset with the same answer (at least 1 byte, at most
 * len).  Conversion skips unallocated runs; merging copies only allocated ones.
 */
int blk_block_status(struct blk_image *img, uint64_t offset, uint64_t len, bool *allocated, uint64_t *pnum);

/* ---- Creating and changing images ---------------------------------------------- */

struct blk_create_params {
    enum blk_format format;      /* RAW, VDI or QCOW2 (VMDK and ISO are read-only formats: VERR_NOT_SUPPORTED) */
    uint64_t size_bytes;         /* multiple of 512; 0 with a backing file: the parent's size */
    bool fixed;                  /* allocate every block now (VDI fixed, raw written out, qcow2 preallocated) */
    const char *backing_path;    /* a differencing image over this file (any format), or NULL */
    enum blk_format backing_format; /* BLK_FMT_AUTO: probe it */
};

/*
 * Creates a new image at path; never replaces an existing file (VERR_ALREADY_EXISTS).
 * The file appears complete or not at all (written under a temporary name, synced,
 * then renamed).  A backing path is stored as given (relative paths are relative to
 * the new image's folder) and the parent must open.
 */
int blk_create(const char *path, const struct blk_create_params *params);
/*
 * Grows (or, for raw, shrinks) the virtual disk to new_size_bytes (a multiple of
 * 512).  Formats that cannot shrink return VERR_NOT_SUPPORTED.  The new range reads
 * as zeroes.
 */
int blk_resize(struct blk_image *img, uint64_t new_size_bytes);

typedef void blk_progress_fn(void *opaque, uint64_t done_bytes, uint64_t total_bytes);
/*
 * Copies what src shows (its whole chain flattened) into a new standalone image at
 * dst (created as blk_create does, size from src when params->size_bytes is 0,
 * backing_path ignored).  Unallocated and all-zero runs stay unallocated in sparse
 * formats.  progress (may be NULL) is called at least every 1% and at the end.
 * On failure dst does not exist.  Cloning is converting.
 */
int blk_convert(struct blk_image *src, const char *dst, const struct blk_create_params *params,
                blk_progress_fn *progress, void *opaque);
/*
 * Merges a differencing image into its parent (snapshot deletion): every run the top
 * file holds is written into the parent, which blk_commit reopens read-write (taking
 * its exclusive lock) for the duration and flushes before it returns.  The child is
 * left as it was; the caller deletes it or points it elsewhere.  VERR_INVALID_STATE
 * when img has no parent; VERR_BUSY when another process has the parent open.
 */
int blk_commit(struct blk_image *img, blk_progress_fn *progress, void *opaque);
/*
 * Changes which parent a differencing image names (snapshot deletion after a merge) without touching its
 * data: the header's backing path (stored as given) and format, and for VDI the parent UUID, taken from
 * the new parent, which must open and have the same virtual size.  The header is rewritten in place in
 * one write and synced.  VDI and qcow2; VERR_NOT_SUPPORTED for other formats, VERR_INVALID_STATE for an
 * image without a parent.
 */
int blk_set_backing(const char *path, const char *backing_path, enum blk_format backing_fmt);


/* ---- Checking ------------------------------------------------------------------ */

struct blk_check_result {
    unsigned errors;   /* corruptions: overlapping or out-of-file blocks, bad table entries */
    unsigned leaks;    /* space allocated but unused (harmless, repairable) */
    unsigned repaired; /* what repair fixed */
    char first_problem[256]; /* a human-readable description of the first problem, or "" */
};
/*
 * Checks path's metadata (this file only, no backing chain), and with repair set
 * fixes what can be fixed safely (leaks, stale counts) under the exclusive lock.
 * Returns 0 when the check ran (look at the counts), or the error that stopped it
 * (VERR_BAD_FORMAT when the header itself is unusable).
 */
int blk_check(const char *path, enum blk_format fmt, bool repair, struct blk_check_result *out);

/* ---- Asynchronous I/O ------------------------------------------------------------ */

enum blk_op { BLK_OP_READ, BLK_OP_WRITE, BLK_OP_FLUSH, BLK_OP_DISCARD, BLK_OP_WRITE_ZEROES };

/*
 * One request.  The submitter owns it (and the buffers iov points to) until done()
 * is called, once, on a worker thread, with 0 or a negative status.  Requests of one
 * image may complete in any order; a flush completes after every write submitted to
 * the same pool before it has completed (it is a barrier for that image).
 */
struct blk_request {
    enum blk_op op;
    struct blk_image *img;
    uint64_t offset_bytes;
    uint64_t len_bytes;       /* discard and write zeroes; read/write use the iovecs */
    const struct iovec *iov;  /* read and write */
    int iovcnt;
    void (*done)(struct blk_request *req, int status);
    void *opaque;
    struct blk_request *next_; /* the pool's own */
};

struct blk_aio; /* opaque: a pool of worker threads */

/* threads: 1..64 workers. */
int blk_aio_create(unsigned threads, struct blk_aio **out);
/* Finishes every queued request (their done() runs), then stops the workers. */
void blk_aio_destroy(struct blk_aio *aio);
/* Queues req; never blocks on I/O and never calls done() itself. */
int blk_aio_submit(struct blk_aio *aio, struct blk_request *req);

#endif
