/* settings-check.c - the rules a settings object must follow, shared by the reader and the writer, and string helpers. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "settings-internal.h"

void cfg_error_set(struct cfg_error *err, const char *fmt, ...)
{
    if (!err)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
}

bool cfg_str_equal(const char *a, const char *b)
{
    return a == b || (a && b && !strcmp(a, b));
}

char *cfg_strdup_opt(const char *s, bool *ok)
{
    if (!s)
        return NULL;
    char *copy = strdup(s);
    if (!copy)
        *ok = false;
    return copy;
}

/*
 * Decodes one UTF-8 sequence at s (strict: shortest form, no surrogates, at most U+10FFFF); returns its
 * length and the code point, or 0 when the bytes are not UTF-8.
 */
static size_t cfg_utf8_next(const unsigned char *s, uint32_t *cp)
{
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    size_t len;
    uint32_t min, v;
    if ((s[0] & 0xE0) == 0xC0) {
        len = 2, min = 0x80, v = s[0] & 0x1F;
    } else if ((s[0] & 0xF0) == 0xE0) {
        len = 3, min = 0x800, v = s[0] & 0x0F;
    } else if ((s[0] & 0xF8) == 0xF0) {
        len = 4, min = 0x10000, v = s[0] & 0x07;
    } else {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

bool cfg_str_is_xml_safe(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        uint32_t cp;
        size_t n = cfg_utf8_next(p, &cp);
        if (n == 0)
            return false;
        /* XML 1.0 section 2.2: Char excludes C0 controls other than tab, LF and CR, and U+FFFE/U+FFFF. */
        if ((cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r') || cp == 0xFFFE || cp == 0xFFFF)
            return false;
        p += n;
    }
    return true;
}

bool cfg_is_valid_machine_name(const char *name)
{
    if (!name || !*name || strlen(name) > 200 || !strcmp(name, ".") || !strcmp(name, ".."))
        return false;
    const unsigned char *p = (const unsigned char *)name;
    if (*p == ' ' || *p == '\t' || p[strlen(name) - 1] == ' ' || p[strlen(name) - 1] == '\t')
        return false;
    while (*p) {
        uint32_t cp;
        size_t n = cfg_utf8_next(p, &cp);
        if (n == 0 || cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp < 0xA0) || cp == '/' || cp == 0xFFFE ||
            cp == 0xFFFF)
            return false;
        p += n;
    }
    return true;
}

bool cfg_is_valid_ostype_id(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 64)
        return false;
    for (const char *p = id; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return false;
    }
    return true;
}

bool cfg_is_valid_medium_format(const char *fmt)
{
    static const char *const known[] = { "vdi", "qcow2", "raw", "vmdk", "iso" };
    for (size_t i = 0; fmt && i < RT_ARRAY_SIZE(known); i++) {
        if (!strcmp(fmt, known[i]))
            return true;
    }
    return false;
}

static bool cfg_is_hex(const char *s, size_t len)
{
    if (strlen(s) != len)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return false;
    }
    return true;
}

static const char *cfg_say(char *buf, size_t size, const char *fmt, ...) RT_PRINTF(3, 4);
static const char *cfg_say(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return buf;
}

static bool cfg_is_plain_name(const char *name)
{
    return name && *name && strlen(name) <= CFG_MAX_NAME_BYTES;
}

const char *cfg_check_mac(const char *mac, char *buf, size_t size)
{
    if (!cfg_is_hex(mac, 12))
        return cfg_say(buf, size, "MAC address \"%.40s\" is not 12 hex digits", mac);
    unsigned first;
    sscanf(mac, "%2x", &first);
    if (first & 1)
        return cfg_say(buf, size, "MAC address %s is a multicast address", mac);
    if (!strcmp(mac, "000000000000"))
        return cfg_say(buf, size, "MAC address %s is all zeros", mac);
    return NULL;
}

const char *cfg_check_controller(const struct cfg_controller *c, char *buf, size_t size)
{
    static const unsigned max_ports[] = { [CFG_BUS_IDE] = 2, [CFG_BUS_SATA] = 30, [CFG_BUS_VIRTIO] = 8 };
    if (!cfg_is_plain_name(c->name))
        return cfg_say(buf, size, "storage controller name is empty or longer than %u bytes", CFG_MAX_NAME_BYTES);
    if ((unsigned)c->bus >= RT_ARRAY_SIZE(max_ports))
        return cfg_say(buf, size, "storage controller \"%.200s\" has an unknown bus", c->name);
    if (c->port_count < 1 || c->port_count > max_ports[c->bus])
        return cfg_say(buf, size, "storage controller \"%.200s\": %u ports (a %s controller has 1-%u)", c->name,
                       c->port_count, cfg_bus_name(c->bus), max_ports[c->bus]);
    return NULL;
}

const char *cfg_check_attachment(const struct cfg_hardware *hw, const struct cfg_attachment *a, size_t self,
                                 char *buf, size_t size)
{
    const struct cfg_controller *c = NULL;
    for (size_t i = 0; a->controller && i < hw->controller_count && !c; i++) {
        if (!strcmp(hw->controllers[i].name, a->controller))
            c = &hw->controllers[i];
    }
    if (!c)
        return cfg_say(buf, size, "attachment to \"%.200s\", which is not a storage controller of this machine",
                       a->controller ? a->controller : "");
    unsigned devices = c->bus == CFG_BUS_IDE ? 2 : 1;
    if (a->port >= c->port_count || a->device >= devices)
        return cfg_say(buf, size, "attachment slot %u:%u is outside controller \"%.200s\" (%u ports, %u device%s each)",
                       a->port, a->device, c->name, c->port_count, devices, devices > 1 ? "s" : "");
    if ((unsigned)a->type > CFG_MEDIUM_FLOPPY)
        return cfg_say(buf, size, "attachment %.200s %u:%u has an unknown medium type", c->name, a->port, a->device);
    if (a->type == CFG_MEDIUM_FLOPPY)
        return cfg_say(buf, size, "attachment %.200s %u:%u: this machine has no floppy controller, so a floppy "
                       "cannot be attached to an %s controller", c->name, a->port, a->device, cfg_bus_name(c->bus));
    if (a->type == CFG_MEDIUM_DVD && c->bus == CFG_BUS_VIRTIO)
        return cfg_say(buf, size, "attachment %.200s %u:%u: virtio block controllers take hard disks only",
                       c->name, a->port, a->device);
    if (a->type == CFG_MEDIUM_HDD && rt_uuid_is_null(&a->medium))
        return cfg_say(buf, size, "attachment %.200s %u:%u: a hard disk needs a medium", c->name, a->port,
                       a->device);
    for (size_t i = 0; i < hw->attachment_count; i++) {
        const struct cfg_attachment *o = &hw->attachments[i];
        if (i != self && o->controller && !strcmp(o->controller, a->controller) && o->port == a->port &&
            o->device == a->device)
            return cfg_say(buf, size, "two attachments in slot %.200s %u:%u", c->name, a->port, a->device);
    }
    return NULL;
}

static bool cfg_is_ip(const char *s)
{
    unsigned char addr[16];
    return inet_pton(AF_INET, s, addr) == 1 || inet_pton(AF_INET6, s, addr) == 1;
}

const char *cfg_check_forward(const struct cfg_port_forward *f, char *buf, size_t size)
{
    if (!cfg_is_plain_name(f->name))
        return cfg_say(buf, size, "port forward name is empty or longer than %u bytes", CFG_MAX_NAME_BYTES);
    if (f->host_ip && !cfg_is_ip(f->host_ip))
        return cfg_say(buf, size, "port forward \"%.200s\": host address \"%.60s\" is not an IP address", f->name,
                       f->host_ip);
    if (f->guest_ip && !cfg_is_ip(f->guest_ip))
        return cfg_say(buf, size, "port forward \"%.200s\": guest address \"%.60s\" is not an IP address", f->name,
                       f->guest_ip);
    if (f->host_port == 0 || f->guest_port == 0)
        return cfg_say(buf, size, "port forward \"%.200s\": port 0", f->name);
    return NULL;
}

const char *cfg_check_usb_filter(const struct cfg_usb_filter *f, char *buf, size_t size)
{
    if (!cfg_is_plain_name(f->name))
        return cfg_say(buf, size, "USB filter name is empty or longer than %u bytes", CFG_MAX_NAME_BYTES);
    if (f->vendor_id && !cfg_is_hex(f->vendor_id, 4))
        return cfg_say(buf, size, "USB filter \"%.200s\": vendor id \"%.40s\" is not 4 hex digits", f->name,
                       f->vendor_id);
    if (f->product_id && !cfg_is_hex(f->product_id, 4))
        return cfg_say(buf, size, "USB filter \"%.200s\": product id \"%.40s\" is not 4 hex digits", f->name,
                       f->product_id);
    return NULL;
}

const char *cfg_check_shared_folder(const struct cfg_shared_folder *f, char *buf, size_t size)
{
    if (!cfg_is_plain_name(f->name) || strchr(f->name, '/'))
        return cfg_say(buf, size, "shared folder name is empty, has a '/' or is longer than %u bytes",
                       CFG_MAX_NAME_BYTES);
    if (!f->host_path || f->host_path[0] != '/')
        return cfg_say(buf, size, "shared folder \"%.200s\": the host path is not absolute", f->name);
    if (f->mount_point && !*f->mount_point)
        return cfg_say(buf, size, "shared folder \"%.200s\": the mount point is empty", f->name);
    return NULL;
}

const char *cfg_check_serial(const struct cfg_serial *s, char *buf, size_t size)
{
    const char *b = s->backend;
    if (!b)
        return s->enabled ? cfg_say(buf, size, "an enabled serial port needs a backend") : NULL;
    if (!strcmp(b, "null"))
        return NULL;
    if ((rt_str_starts_with(b, "file:") && b[5]) || (rt_str_starts_with(b, "unix:") && b[5]))
        return NULL;
    if (rt_str_starts_with(b, "tcp:")) {
        const char *colon = strrchr(b + 4, ':');
        const char *port = colon ? colon + 1 : b + 4;
        uint64_t n;
        if (*port && strspn(port, "0123456789") == strlen(port) && rt_str_to_u64(port, &n) == 0 && n >= 1 &&
            n <= 65535)
            return NULL;
    }
    return cfg_say(buf, size, "serial backend \"%.100s\" is none of null, file:PATH, unix:PATH, tcp:[ADDR:]PORT", b);
}

const char *cfg_check_inner_path(const char *what, const char *path, char *buf, size_t size)
{
    if (!*path || path[0] == '/')
        return cfg_say(buf, size, "%s \"%.200s\" must be a relative path inside the machine folder", what, path);
    for (const char *p = path; *p;) {
        size_t n = strcspn(p, "/");
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return cfg_say(buf, size, "%s \"%.200s\" must not leave the machine folder ('..')", what, path);
        p += n;
        while (*p == '/')
            p++;
    }
    return NULL;
}

const char *cfg_check_abs_path(const char *what, const char *path, char *buf, size_t size)
{
    if (!path || path[0] != '/')
        return cfg_say(buf, size, "%s \"%.200s\" is not an absolute path", what, path ? path : "");
    return NULL;
}
