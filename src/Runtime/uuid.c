/* uuid.c - random version-4 UUIDs (RFC 4122 section 4.4) and their text form. */
#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "vireo/rt.h"

/* Offsets of the dashes in the 8-4-4-4-12 text form (RFC 4122 section 3). */
static bool uuid_is_dash_pos(size_t i)
{
    return i == 8 || i == 13 || i == 18 || i == 23;
}

int rt_uuid_generate(struct rt_uuid *out)
{
    if (!out)
        return VERR_INVALID_PARAMETER;
    uint8_t bytes[16];
    size_t got = 0;
    while (got < sizeof(bytes)) {
        ssize_t n = getrandom(bytes + got, sizeof(bytes) - got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return rt_err_from_errno(errno);
        }
        got += (size_t)n;
    }
    /* RFC 4122 section 4.4: version 4 in the high nibble of octet 6, variant 10x in octet 8. */
    bytes[6] = (uint8_t)((bytes[6] & 0x0f) | 0x40);
    bytes[8] = (uint8_t)((bytes[8] & 0x3f) | 0x80);
    memcpy(out->bytes, bytes, sizeof(bytes));
    return 0;
}

void rt_uuid_to_str(const struct rt_uuid *uuid, char out[RT_UUID_STR_LEN])
{
    static const char hex[] = "0123456789abcdef";
    size_t pos = 0;
    for (size_t i = 0; i < sizeof(uuid->bytes); i++) {
        if (uuid_is_dash_pos(pos))
            out[pos++] = '-';
        out[pos++] = hex[uuid->bytes[i] >> 4];
        out[pos++] = hex[uuid->bytes[i] & 0xf];
    }
    out[pos] = '\0';
}

static int uuid_hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int rt_uuid_parse(const char *s, struct rt_uuid *out)
{
    if (!s || !out)
        return VERR_INVALID_PARAMETER;
    const size_t text_len = RT_UUID_STR_LEN - 1;
    size_t len = strlen(s);
    if (len == text_len + 2 && s[0] == '{' && s[len - 1] == '}') {
        s++;
        len -= 2;
    }
    if (len != text_len)
        return VERR_INVALID_PARAMETER;

    struct rt_uuid uuid;
    size_t byte = 0;
    for (size_t i = 0; i < text_len;) {
        if (uuid_is_dash_pos(i)) {
            if (s[i] != '-')
                return VERR_INVALID_PARAMETER;
            i++;
            continue;
        }
        int hi = uuid_hex_value(s[i]);
        int lo = uuid_hex_value(s[i + 1]);
        if (hi < 0 || lo < 0)
            return VERR_INVALID_PARAMETER;
        uuid.bytes[byte++] = (uint8_t)(hi << 4 | lo);
        i += 2;
    }
    *out = uuid;
    return 0;
}

bool rt_uuid_is_null(const struct rt_uuid *uuid)
{
    for (size_t i = 0; i < sizeof(uuid->bytes); i++) {
        if (uuid->bytes[i])
            return false;
    }
    return true;
}
