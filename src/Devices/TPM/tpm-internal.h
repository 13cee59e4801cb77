/* tpm-internal.h - what the TPM TIS device and its swtpm backend share inside src/Devices/TPM. */
#ifndef VIREO_TPM_INTERNAL_H
#define VIREO_TPM_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "vireo/devices.h"

/* The largest command or response: swtpm's (and the TCG reference TPM's) TPM2 buffer. */
#define TPM_BUFFER_BYTES 4096u
/* A TPM 2.0 command or response header: tag (2), size (4), code or return code (4) (TPM 2.0 Part 1, 18.2). */
#define TPM_HEADER_BYTES 10u
#define TPM_ST_NO_SESSIONS 0x8001u
#define TPM_RC_FAILURE 0x101u
#define TPM_RC_COMMAND_SIZE 0x142u

/* The size field of a command or response header (big endian at offset 2). */
static inline uint32_t tpm_header_size(const uint8_t *hdr)
{
    return (uint32_t)hdr[2] << 24 | (uint32_t)hdr[3] << 16 | (uint32_t)hdr[4] << 8 | hdr[5];
}

/* Writes a bare error response (header only) with return code rc into out (TPM_HEADER_BYTES). */
static inline void tpm_error_response(uint8_t *out, uint32_t rc)
{
    const uint8_t hdr[TPM_HEADER_BYTES] = {
        TPM_ST_NO_SESSIONS >> 8, TPM_ST_NO_SESSIONS & 0xff, 0, 0, 0, TPM_HEADER_BYTES,
        (uint8_t)(rc >> 24), (uint8_t)(rc >> 16), (uint8_t)(rc >> 8), (uint8_t)rc,
    };
    for (unsigned i = 0; i < TPM_HEADER_BYTES; i++)
        out[i] = hdr[i];
}

/*
 * Starts swtpm for the device tis with its state in state_dir (created if missing) and
 * initialises the TPM.  On success *ops and *backend are ready for tpm_tis_attach_backend.
 */
int tpm_swtpm_open(struct pdm_dev *tis, const char *state_dir, const struct tpm_backend_ops **ops,
                   void **backend);

#endif
