/* ssm.c - saved-state streams: little-endian fields into a growing buffer, bounds-checked reads with a sticky error. */
#include <stdlib.h>
#include <string.h>

#include "vm-internal.h"

struct ssm {
    uint8_t *buf;
    size_t len, cap, pos;
    bool owned;
    int status;
};

int ssm_create(struct ssm **out)
{
    *out = calloc(1, sizeof(**out));
    if (!*out)
        return VERR_NO_MEMORY;
    (*out)->owned = true;
    return 0;
}

int ssm_open(const void *data, size_t len, struct ssm **out)
{
    *out = calloc(1, sizeof(**out));
    if (!*out)
        return VERR_NO_MEMORY;
    (*out)->buf = (uint8_t *)data;
    (*out)->len = (*out)->cap = len;
    return 0;
}

void ssm_destroy(struct ssm *ssm)
{
    if (!ssm)
        return;
    if (ssm->owned)
        free(ssm->buf);
    free(ssm);
}

const void *ssm_data(const struct ssm *ssm, size_t *len)
{
    *len = ssm->len;
    return ssm->buf;
}

int ssm_status(const struct ssm *ssm)
{
    return ssm->status;
}

void ssm_put_bytes(struct ssm *ssm, const void *data, size_t len)
{
    if (ssm->status || !ssm->owned)
        return;
    if (ssm->len + len > ssm->cap) {
        size_t cap = ssm->cap ? ssm->cap : 256;
        while (cap < ssm->len + len)
            cap *= 2;
        uint8_t *p = realloc(ssm->buf, cap);
        if (!p) {
            ssm->status = VERR_NO_MEMORY;
            return;
        }
        ssm->buf = p;
        ssm->cap = cap;
    }
    if (len)
        memcpy(ssm->buf + ssm->len, data, len);
    ssm->len += len;
}

static void put_le(struct ssm *ssm, uint64_t v, unsigned bytes)
{
    uint8_t b[8];
    for (unsigned i = 0; i < bytes; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    ssm_put_bytes(ssm, b, bytes);
}

void ssm_put_u8(struct ssm *ssm, uint8_t v) { put_le(ssm, v, 1); }
void ssm_put_u16(struct ssm *ssm, uint16_t v) { put_le(ssm, v, 2); }
void ssm_put_u32(struct ssm *ssm, uint32_t v) { put_le(ssm, v, 4); }
void ssm_put_u64(struct ssm *ssm, uint64_t v) { put_le(ssm, v, 8); }
void ssm_put_bool(struct ssm *ssm, bool v) { put_le(ssm, v ? 1 : 0, 1); }

int ssm_get_bytes(struct ssm *ssm, void *buf, size_t len)
{
    if (ssm->status)
        return ssm->status;
    if (len > ssm->len - ssm->pos) {
        ssm->status = VERR_SSM_CORRUPT;
        return ssm->status;
    }
    if (len)
        memcpy(buf, ssm->buf + ssm->pos, len);
    ssm->pos += len;
    return 0;
}

static int get_le(struct ssm *ssm, uint64_t *v, unsigned bytes)
{
    uint8_t b[8];
    int rc = ssm_get_bytes(ssm, b, bytes);
    *v = 0;
    if (rc)
        return rc;
    for (unsigned i = 0; i < bytes; i++)
        *v |= (uint64_t)b[i] << (8 * i);
    return 0;
}

int ssm_get_u8(struct ssm *ssm, uint8_t *v)
{
    uint64_t x;
    int rc = get_le(ssm, &x, 1);
    *v = (uint8_t)x;
    return rc;
}

int ssm_get_u16(struct ssm *ssm, uint16_t *v)
{
    uint64_t x;
    int rc = get_le(ssm, &x, 2);
    *v = (uint16_t)x;
    return rc;
}

int ssm_get_u32(struct ssm *ssm, uint32_t *v)
{
    uint64_t x;
    int rc = get_le(ssm, &x, 4);
    *v = (uint32_t)x;
    return rc;
}

int ssm_get_u64(struct ssm *ssm, uint64_t *v)
{
    return get_le(ssm, v, 8);
}

int ssm_get_bool(struct ssm *ssm, bool *v)
{
    uint64_t x;
    int rc = get_le(ssm, &x, 1);
    if (!rc && x > 1) {
        ssm->status = VERR_SSM_CORRUPT;
        rc = ssm->status;
    }
    *v = x == 1;
    return rc;
}
