/* str.c - string helpers: bounded copy, formatted allocation, strict number and size parsing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "vireo/rt.h"

size_t rt_strlcpy(char *dst, const char *src, size_t size)
{
    size_t src_len = strlen(src);
    if (size > 0) {
        size_t n = src_len < size - 1 ? src_len : size - 1;
        memcpy(dst, src, n);
        dst[n] = '\0';
    }
    return src_len;
}

char *rt_strdup_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int rc = vasprintf(&s, fmt, ap);
    va_end(ap);
    return rc < 0 ? NULL : s;
}

bool rt_str_starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int str_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * Parses digits in base 10 or 16 from s and stops at the first character that
 * is not one; *end points there.  No sign, no whitespace: strtoull would accept
 * both (and wrap "-1" to UINT64_MAX), which is how bad settings slip through.
 */
static int str_parse_digits(const char *s, unsigned base, uint64_t *out, const char **end)
{
    uint64_t value = 0;
    bool overflow = false;
    const char *p = s;
    for (;; p++) {
        int digit = str_hex_digit(*p);
        if (digit < 0 || (unsigned)digit >= base)
            break;
        if (value > (UINT64_MAX - (unsigned)digit) / base)
            overflow = true;
        else
            value = value * base + (unsigned)digit;
    }
    *end = p;
    if (p == s)
        return VERR_INVALID_PARAMETER;
    if (overflow)
        return VERR_OUT_OF_RANGE;
    *out = value;
    return 0;
}

static bool str_has_hex_prefix(const char *s)
{
    return s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
}

int rt_str_to_u64(const char *s, uint64_t *out)
{
    if (!s || !out)
        return VERR_INVALID_PARAMETER;
    unsigned base = 10;
    if (str_has_hex_prefix(s)) {
        base = 16;
        s += 2;
    }
    uint64_t value;
    const char *end;
    int rc = str_parse_digits(s, base, &value, &end);
    /* Trailing garbage makes the whole string invalid, even after an overflowing number. */
    if (*end != '\0')
        return VERR_INVALID_PARAMETER;
    if (rc < 0)
        return rc;
    *out = value;
    return 0;
}

struct str_size_suffix {
    const char *name;
    unsigned shift;
};

/* Every suffix is a power of 1024, whether spelt "K", "KB" or "KiB": memory sizes are binary. */
static const struct str_size_suffix g_size_suffixes[] = {
    {"", 0},    {"B", 0},
    {"K", 10},  {"KB", 10}, {"KiB", 10},
    {"M", 20},  {"MB", 20}, {"MiB", 20},
    {"G", 30},  {"GB", 30}, {"GiB", 30},
    {"T", 40},  {"TB", 40}, {"TiB", 40},
};

int rt_str_to_size(const char *s, uint64_t *bytes)
{
    if (!s || !bytes)
        return VERR_INVALID_PARAMETER;
    /* "0x1B" would be ambiguous with a suffix, so hexadecimal sizes are plain byte counts. */
    if (str_has_hex_prefix(s))
        return rt_str_to_u64(s, bytes);

    uint64_t value;
    const char *end;
    int rc = str_parse_digits(s, 10, &value, &end);
    if (rc == VERR_INVALID_PARAMETER)
        return rc;
    const struct str_size_suffix *suffix = NULL;
    for (size_t i = 0; i < RT_ARRAY_SIZE(g_size_suffixes); i++) {
        if (strcasecmp(end, g_size_suffixes[i].name) == 0) {
            suffix = &g_size_suffixes[i];
            break;
        }
    }
    if (!suffix)
        return VERR_INVALID_PARAMETER;
    if (rc < 0)
        return rc;
    if (value > (UINT64_MAX >> suffix->shift))
        return VERR_OUT_OF_RANGE;
    *bytes = value << suffix->shift;
    return 0;
}
