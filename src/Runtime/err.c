/* err.c - status code messages from the VERR_TABLE and the errno to VERR_* mapping. */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "vireo/rt.h"

struct err_entry {
    int status;
    const char *msg;
};

static const struct err_entry g_err_table[] = {
#define ERR_ENTRY(name, value, msg) {value, msg},
    VERR_TABLE(ERR_ENTRY)
#undef ERR_ENTRY
};

const char *rt_err_str(int status)
{
    if (status == 0)
        return "success";
    if (status > 0) {
        /* strerrordesc_np returns a static string, unlike strerror it never touches shared buffers. */
        const char *desc = strerrordesc_np(status);
        return desc ? desc : "unknown errno value";
    }
    for (size_t i = 0; i < RT_ARRAY_SIZE(g_err_table); i++) {
        if (g_err_table[i].status == status)
            return g_err_table[i].msg;
    }
    return "unknown status code";
}

int rt_err_from_errno(int err)
{
    /* Accept both errno and the kernel's negated form (INT_MIN has no positive form). */
    if (err == INT_MIN)
        return VERR_GENERAL;
    if (err < 0)
        err = -err;
    switch (err) {
    case 0:
        /* Called on a failure path where errno was not set: still a failure. */
        return VERR_GENERAL;
    case ENOMEM:
        return VERR_NO_MEMORY;
    case EINVAL:
    case EBADF:
    case ELOOP:
        return VERR_INVALID_PARAMETER;
    case EISDIR:
        return VERR_IS_A_DIRECTORY;
    case ENOENT:
    case ENOTDIR:
        return VERR_FILE_NOT_FOUND;
    case ENODEV:
    case ENXIO:
    case ESRCH:
        return VERR_NOT_FOUND;
    case EEXIST:
    case ENOTEMPTY:
        return VERR_ALREADY_EXISTS;
    case EACCES:
    case EPERM:
    case EROFS:
        return VERR_ACCESS_DENIED;
    case EIO:
    case ENOSPC:
    case EDQUOT:
    case EPIPE:
    case EXDEV:
        return VERR_IO;
    case EFBIG:
    case E2BIG:
    case ENAMETOOLONG:
    case EOVERFLOW:
    case EMSGSIZE:
        return VERR_TOO_LARGE;
    case ERANGE:
    case EDOM:
        return VERR_OUT_OF_RANGE;
    case EBUSY:
    case EAGAIN:
    case ETXTBSY:
    case EMFILE:
    case ENFILE:
        return VERR_BUSY;
    case ENOSYS:
    case EOPNOTSUPP:
    case ENOTTY:
    case EAFNOSUPPORT:
    case EPROTONOSUPPORT:
        return VERR_NOT_SUPPORTED;
    case ETIMEDOUT:
        return VERR_TIMEOUT;
    case EINTR:
        return VERR_INTERRUPTED;
    case EDEADLK:
        return VERR_THREAD;
    default:
        return VERR_GENERAL;
    }
}
