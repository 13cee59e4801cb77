/* err.h - Vireo status codes: 0 is success, failures are negative VERR_* codes with messages. */
#ifndef VIREO_ERR_H
#define VIREO_ERR_H

/*
 * One table for the whole project.  X(name, value, message).  Values are stable
 * (they may end up in logs and saved files); add new codes at the end.
 */
#define VERR_TABLE(X) \
    X(VERR_GENERAL,            -1, "general failure") \
    X(VERR_NO_MEMORY,          -2, "out of memory") \
    X(VERR_INVALID_PARAMETER,  -3, "invalid parameter") \
    X(VERR_NOT_FOUND,          -4, "not found") \
    X(VERR_ALREADY_EXISTS,     -5, "already exists") \
    X(VERR_IO,                 -6, "input/output error") \
    X(VERR_FILE_NOT_FOUND,     -7, "file not found") \
    X(VERR_ACCESS_DENIED,      -8, "access denied") \
    X(VERR_BAD_FORMAT,         -9, "bad file format") \
    X(VERR_TRUNCATED,         -10, "file or data truncated") \
    X(VERR_TOO_LARGE,         -11, "value or size too large") \
    X(VERR_OUT_OF_RANGE,      -12, "value out of range") \
    X(VERR_BUSY,              -13, "resource busy") \
    X(VERR_INVALID_STATE,     -14, "operation not valid in the current state") \
    X(VERR_NOT_SUPPORTED,     -15, "not supported") \
    X(VERR_OVERLAP,           -16, "address range overlaps an existing one") \
    X(VERR_CFG_UNKNOWN_KEY,   -17, "unknown configuration key") \
    X(VERR_CFG_BAD_VALUE,     -18, "bad configuration value") \
    X(VERR_KVM,               -19, "KVM call failed") \
    X(VERR_NO_KVM,            -20, "KVM is not available") \
    X(VERR_THREAD,            -21, "thread operation failed") \
    X(VERR_TIMEOUT,           -22, "timed out") \
    X(VERR_INTERRUPTED,       -23, "interrupted") \
    X(VERR_EOF,               -24, "end of file") \
    X(VERR_SSM_VERSION,       -25, "unsupported saved-state version") \
    X(VERR_SSM_CORRUPT,       -26, "saved state is corrupt or does not match the configuration") \
    X(VERR_FIRMWARE,          -27, "firmware image missing or invalid") \
    X(VERR_GUEST_FAULT,       -28, "guest caused an unrecoverable fault") \
    X(VERR_IS_A_DIRECTORY,    -29, "is a directory")

enum {
#define VERR_ENUM(name, value, msg) name = value,
    VERR_TABLE(VERR_ENUM)
#undef VERR_ENUM
};

/* Message for a status code; never NULL.  Positive values are treated as errno. */
const char *rt_err_str(int status);

/* Map an errno value to the closest VERR_* code. */
int rt_err_from_errno(int err);

#endif
