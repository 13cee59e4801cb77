/* rec-code.c - the recompiler's executable code area: one memfd mapped once writable and once executable (W^X). */
#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vireo/err.h"

#include "rec-x86.h"

/*
 * The same pages are mapped twice, read-write and read-execute, so the translator writes
 * code through one address and runs it through another and no mapping is ever both
 * writable and executable.  Hosts that forbid executable memory (an SELinux execmem
 * policy, vm.memfd_noexec) make the second mmap fail: that is VERR_NOT_SUPPORTED, and the
 * caller falls back to the interpreter.
 */

/*
 * memfd_create(2): MFD_EXEC (Linux 6.3) asks for an executable memfd explicitly, which
 * vm.memfd_noexec=1 requires; older kernels reject the unknown flag with EINVAL and
 * create executable memfds by default.
 */
#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

static int rec_code_status(int err)
{
    switch (err) {
    case ENOMEM:
    case EMFILE:
    case ENFILE:
    case ENOSPC:
    case EFBIG:
        return VERR_NO_MEMORY;
    default:
        return VERR_NOT_SUPPORTED;
    }
}

static void rec_code_clear(struct rec_code *code)
{
    code->rw = NULL;
    code->rx = NULL;
    code->size = 0;
    code->fd = -1;
}

int rec_code_init(struct rec_code *code, size_t size)
{
    long page = sysconf(_SC_PAGESIZE);
    size_t mask = (size_t)(page > 0 ? page : 4096) - 1;
    size_t bytes;
    void *rw, *rx;
    int fd, err;

    rec_code_clear(code);
    if (size == 0)
        return VERR_INVALID_PARAMETER;
    if (size > SIZE_MAX - mask)
        return VERR_NO_MEMORY;
    bytes = (size + mask) & ~mask;

    fd = memfd_create("vireo-rec", MFD_CLOEXEC | MFD_EXEC);
    if (fd < 0 && errno == EINVAL)
        fd = memfd_create("vireo-rec", MFD_CLOEXEC);
    if (fd < 0)
        return rec_code_status(errno);
    if (ftruncate(fd, (off_t)bytes) != 0) {
        err = errno;
        close(fd);
        return rec_code_status(err);
    }
    rw = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (rw == MAP_FAILED) {
        err = errno;
        close(fd);
        return rec_code_status(err);
    }
    rx = mmap(NULL, bytes, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0);
    if (rx == MAP_FAILED) {
        err = errno;
        munmap(rw, bytes);
        close(fd);
        return rec_code_status(err);
    }
    code->rw = rw;
    code->rx = rx;
    code->size = bytes;
    code->fd = fd;
    return 0;
}

/* Safe after a failed init and when called twice: an empty area has size 0. */
void rec_code_fini(struct rec_code *code)
{
    if (code->size == 0)
        return;
    munmap(code->rx, code->size);
    munmap(code->rw, code->size);
    close(code->fd);
    rec_code_clear(code);
}
