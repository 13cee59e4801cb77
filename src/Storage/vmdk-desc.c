/* vmdk-desc.c - parsing of VMDK descriptor text (create type, CIDs, parent hint, extent lines) from untrusted files. */

/*
 * The descriptor is line-oriented text (VDF "The Descriptor File"): `key=value` lines
 * (values optionally quoted), extent lines `ACCESS SECTORS TYPE ["FILE" [OFFSET]]`,
 * comments starting with '#'.  Lines Vireo does not need (the disk database, ddb.*,
 * apart from VirtualBox's UUIDs) are skipped, as VMware's own tools skip them.  The
 * text is copied into one NUL-terminated buffer and cut into lines and tokens in
 * place; no token is ever scanned into a fixed buffer without its length checked.
 */

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "vmdk-internal.h"

#define LOG_COMPONENT "vmdk"

static bool desc_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static char *desc_trim(char *s)
{
    while (desc_is_space(*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && desc_is_space(s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* Removes one pair of surrounding double quotes. */
static char *desc_unquote(char *s)
{
    size_t n = strlen(s);
    if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
        s[n - 1] = '\0';
        return s + 1;
    }
    return s;
}

/* Decimal digits only (sector counts and offsets), no sign, no overflow. */
static bool desc_parse_dec(const char *s, uint64_t *out)
{
    if (*s == '\0')
        return false;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* A CID: 1 to 8 hexadecimal digits. */
static bool desc_parse_cid(const char *s, uint32_t *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 8)
        return false;
    uint32_t v = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            d = (unsigned)(c - 'A' + 10);
        else
            return false;
        v = v << 4 | d;
    }
    *out = v;
    return true;
}

/* Cuts the next whitespace-separated token off *cursor; NULL at the end of the line. */
static char *desc_next_token(char **cursor)
{
    char *s = *cursor;
    while (desc_is_space(*s))
        s++;
    if (*s == '\0') {
        *cursor = s;
        return NULL;
    }
    char *start = s;
    while (*s && !desc_is_space(*s))
        s++;
    if (*s)
        *s++ = '\0';
    *cursor = s;
    return start;
}

static bool desc_is_extent_line(const char *line)
{
    static const char *const access[] = {"RW ", "RDONLY ", "NOACCESS ", "RW\t", "RDONLY\t", "NOACCESS\t"};
    for (size_t i = 0; i < RT_ARRAY_SIZE(access); i++)
        if (rt_str_starts_with(line, access[i]))
            return true;
    return false;
}

static int desc_parse_extent(const char *path, unsigned lineno, char *line, struct vmdk_desc *desc)
{
    char *cursor = line;
    char *access = desc_next_token(&cursor);
    char *size = desc_next_token(&cursor);
    char *type = desc_next_token(&cursor);
    if (!access || !size || !type)
        return vmdk_bad(path, "descriptor line %u: an extent needs access, size and type", lineno);
    if (strcmp(access, "NOACCESS") == 0)
        return vmdk_unsupported(path, "descriptor line %u: NOACCESS extents are not supported", lineno);

    struct vmdk_desc_extent ext = {0};
    if (!desc_parse_dec(size, &ext.sectors) || ext.sectors == 0 || ext.sectors > BLK_MAX_SIZE_BYTES / VMDK_SECTOR)
        return vmdk_bad(path, "descriptor line %u: bad extent size \"%.32s\"", lineno, size);

    if (strcmp(type, "FLAT") == 0) {
        ext.type = VMDK_EXTENT_FLAT;
    } else if (strcmp(type, "SPARSE") == 0) {
        ext.type = VMDK_EXTENT_SPARSE;
    } else if (strcmp(type, "ZERO") == 0) {
        ext.type = VMDK_EXTENT_ZERO;
    } else if (strncmp(type, "VMFS", 4) == 0 || strcmp(type, "SESPARSE") == 0) {
        return vmdk_unsupported(path, "descriptor line %u: ESX extent type %.32s is not supported", lineno, type);
    } else {
        return vmdk_bad(path, "descriptor line %u: unknown extent type \"%.32s\"", lineno, type);
    }

    /* The file name is quoted and may hold spaces. */
    while (desc_is_space(*cursor))
        cursor++;
    if (ext.type != VMDK_EXTENT_ZERO) {
        if (*cursor != '"')
            return vmdk_bad(path, "descriptor line %u: the extent's file name is missing or not quoted", lineno);
        char *name = cursor + 1;
        char *end = strchr(name, '"');
        if (!end)
            return vmdk_bad(path, "descriptor line %u: the extent's file name has no closing quote", lineno);
        *end = '\0';
        cursor = end + 1;
        if (*name == '\0' || strlen(name) >= 4096)
            return vmdk_bad(path, "descriptor line %u: bad extent file name length", lineno);
        char *offset = desc_next_token(&cursor);
        if (offset) {
            if (ext.type != VMDK_EXTENT_FLAT || !desc_parse_dec(offset, &ext.offset_sectors) ||
                ext.offset_sectors > (UINT64_MAX / VMDK_SECTOR) - ext.sectors)
                return vmdk_bad(path, "descriptor line %u: bad extent offset \"%.32s\"", lineno, offset);
        }
        if (desc_next_token(&cursor))
            return vmdk_bad(path, "descriptor line %u: unexpected text after the extent", lineno);
        ext.file = strdup(name);
        if (!ext.file)
            return VERR_NO_MEMORY;
    } else if (desc_next_token(&cursor)) {
        return vmdk_bad(path, "descriptor line %u: a ZERO extent names no file", lineno);
    }

    if (desc->extent_count >= VMDK_MAX_EXTENTS) {
        free(ext.file);
        return vmdk_unsupported(path, "descriptor lists more than %u extents", VMDK_MAX_EXTENTS);
    }
    if ((desc->extent_count & (desc->extent_count - 1)) == 0) {
        /* Grow at powers of two (0, 1, 2, 4, ...). */
        unsigned cap = desc->extent_count ? desc->extent_count * 2 : 1;
        struct vmdk_desc_extent *grown = realloc(desc->extents, cap * sizeof(*grown));
        if (!grown) {
            free(ext.file);
            return VERR_NO_MEMORY;
        }
        desc->extents = grown;
    }
    desc->extents[desc->extent_count++] = ext;
    return 0;
}

static int desc_parse_key(const char *path, unsigned lineno, char *key, char *value, struct vmdk_desc *desc)
{
    if (strcasecmp(key, "createType") == 0) {
        if (strlen(value) >= sizeof(desc->create_type))
            return vmdk_bad(path, "descriptor line %u: createType is too long", lineno);
        rt_strlcpy(desc->create_type, value, sizeof(desc->create_type));
    } else if (strcasecmp(key, "CID") == 0) {
        if (!desc_parse_cid(value, &desc->cid))
            return vmdk_bad(path, "descriptor line %u: bad CID \"%.16s\"", lineno, value);
        desc->has_cid = true;
    } else if (strcasecmp(key, "parentCID") == 0) {
        if (!desc_parse_cid(value, &desc->parent_cid))
            return vmdk_bad(path, "descriptor line %u: bad parentCID \"%.16s\"", lineno, value);
    } else if (strcasecmp(key, "parentFileNameHint") == 0) {
        if (*value == '\0' || strlen(value) >= 4096)
            return vmdk_bad(path, "descriptor line %u: bad parentFileNameHint length", lineno);
        char *copy = strdup(value);
        if (!copy)
            return VERR_NO_MEMORY;
        free(desc->parent_hint);
        desc->parent_hint = copy;
    } else if (strcasecmp(key, "ddb.uuid.image") == 0) {
        /* VirtualBox's own; other tools' garbage here is not worth refusing the disk over. */
        desc->has_uuid = rt_uuid_parse(value, &desc->uuid) == 0;
    } else if (strcasecmp(key, "ddb.uuid.parent") == 0) {
        desc->has_parent_uuid = rt_uuid_parse(value, &desc->parent_uuid) == 0;
    }
    return 0;
}

void vmdk_desc_free(struct vmdk_desc *desc)
{
    if (!desc)
        return;
    for (unsigned i = 0; i < desc->extent_count; i++)
        free(desc->extents[i].file);
    free(desc->extents);
    free(desc->parent_hint);
    memset(desc, 0, sizeof(*desc));
}

int vmdk_desc_parse(const char *path, const char *text, size_t len, struct vmdk_desc *out)
{
    memset(out, 0, sizeof(*out));
    out->parent_cid = VMDK_NO_PARENT_CID;
    len = strnlen(text, len);
    char *buf = malloc(len + 1);
    if (!buf)
        return VERR_NO_MEMORY;
    memcpy(buf, text, len);
    buf[len] = '\0';

    int rc = 0;
    unsigned lineno = 0;
    char *next = buf;
    while (rc == 0 && next) {
        char *line = next;
        char *nl = strchr(line, '\n');
        if (nl) {
            *nl = '\0';
            next = nl + 1;
        } else {
            next = NULL;
        }
        lineno++;
        line = desc_trim(line);
        if (*line == '\0' || *line == '#')
            continue;
        if (desc_is_extent_line(line)) {
            rc = desc_parse_extent(path, lineno, line, out);
            continue;
        }
        char *eq = strchr(line, '=');
        if (!eq)
            continue; /* not a line Vireo needs; VMware's tools skip such lines too */
        *eq = '\0';
        char *key = desc_trim(line);
        char *value = desc_unquote(desc_trim(eq + 1));
        rc = desc_parse_key(path, lineno, key, value, out);
    }
    free(buf);
    if (rc == 0 && out->extent_count == 0)
        rc = vmdk_bad(path, "the descriptor lists no extents");
    if (rc < 0)
        vmdk_desc_free(out);
    return rc;
}
