/* saved-state-internal.h - the saved-state file's section tags, buffered checksummed reader and writer, and RAM streaming (saved-state-ram.c). */
#ifndef VIREO_SAVED_STATE_INTERNAL_H
#define VIREO_SAVED_STATE_INTERNAL_H

#include <stdint.h>

#include "vm-internal.h"

/* Section tags: four ASCII characters read as a little-endian u32. */
#define SS_TAG(a, b, c, d) ((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | (uint32_t)(d) << 24)
#define SS_TAG_CONF SS_TAG('C', 'O', 'N', 'F')
#define SS_TAG_VCPU SS_TAG('V', 'C', 'P', 'U')
#define SS_TAG_CLCK SS_TAG('C', 'L', 'C', 'K')
#define SS_TAG_PLAT SS_TAG('P', 'L', 'A', 'T')
#define SS_TAG_DEVS SS_TAG('D', 'E', 'V', 'S')
#define SS_TAG_RAM  SS_TAG('R', 'A', 'M', ' ')
#define SS_TAG_END  SS_TAG('E', 'N', 'D', ' ')

/* RAM goes in chunks of 256 pages (1 MiB): a bitmap of the non-zero pages, then those pages deflated. */
#define SS_PAGE_BYTES   4096u
#define SS_CHUNK_PAGES  256u
#define SS_CHUNK_BYTES  (SS_PAGE_BYTES * SS_CHUNK_PAGES)
#define SS_CHUNK_END    UINT32_MAX /* chunk index that ends a region */
#define SS_NAME_MAX     255u

/* Buffered output with a running CRC-32 over everything written (buf: SS_IO_BUF_BYTES). */
#define SS_IO_BUF_BYTES (1u << 20)
struct ss_writer {
    int fd;
    const char *path; /* for messages */
    uint8_t *buf;
    size_t len;
    uint64_t offset; /* bytes handed to ss_write so far */
    uint32_t crc;
    int rc;          /* first error, sticky */
};
void ss_write(struct ss_writer *w, const void *data, size_t len);
void ss_write_u8(struct ss_writer *w, uint8_t v);
void ss_write_u32(struct ss_writer *w, uint32_t v);
void ss_write_u64(struct ss_writer *w, uint64_t v);
/* Writes out what is buffered (the caller fsyncs); the first error of any write. */
int ss_writer_finish(struct ss_writer *w);

/* Buffered input (buf: SS_IO_BUF_BYTES) with a running CRC-32 over everything consumed; every read is bounds-checked. */
struct ss_reader {
    int fd;
    const char *path;
    uint8_t *buf;
    size_t len, pos;
    uint64_t offset; /* file offset of buf[pos] */
    uint32_t crc;
    bool eof;
};
/* VERR_SSM_CORRUPT (logged with the offset and what) when the file ends first. */
int ss_read(struct ss_reader *r, void *data, size_t len, const char *what);
int ss_read_u8(struct ss_reader *r, uint8_t *v, const char *what);
/* True when every byte of the file was consumed (a read error counts as not at the end). */
bool ss_reader_at_end(struct ss_reader *r);
int ss_read_u32(struct ss_reader *r, uint32_t *v, const char *what);
int ss_read_u64(struct ss_reader *r, uint64_t *v, const char *what);

/* saved-state-ram.c: every RAM region, streamed (the RAM section after its tag and version); progress gets 0..100 of the RAM written. */
struct ss_progress {
    void (*fn)(void *opaque, unsigned percent);
    void *opaque;
    unsigned last;
};
int ss_ram_save(struct vm *vm, struct ss_writer *w, struct ss_progress *progress);
int ss_ram_load(struct vm *vm, struct ss_reader *r);

#endif
