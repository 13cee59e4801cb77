/* debugport.c - firmware debug ports: POST codes on port 0x80 and the SeaBIOS debug console on port 0x402. */

/*
 * Port 0x80 is the PC's POST-code port: firmware writes a progress byte there
 * (a POST card shows it), and Linux uses it as an I/O delay.  The last code reads
 * back, as on boards with a POST-code latch.
 *
 * Port 0x402 is the debug console SeaBIOS writes to when built with
 * CONFIG_DEBUG_IO (QEMU's "isa-debugcon" port).  SeaBIOS first reads the port and
 * only writes when it sees 0xe9 (src/hw/serialio.c, debug_io_port), so reads
 * return 0xe9.  Bytes are collected into lines for the VM log (component "bios")
 * and, raw, into an optional file.
 */

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "vireo/devices.h"
#include "vireo/pdm.h"
#include "vireo/rt.h"
#include "vireo/vm.h"

#define LOG_COMPONENT "debugport"

#define DEBUGPORT_POST_PORT 0x80
#define DEBUGPORT_CONSOLE_PORT 0x402
/* What SeaBIOS expects to read from the debug console port to use it. */
#define DEBUGPORT_CONSOLE_MAGIC 0xe9
/* Longer lines are logged in pieces; firmware lines are far shorter. */
#define DEBUGPORT_LINE_MAX 256
#define DEBUGPORT_SSM_VERSION 1

struct debugport {
    struct pdm_dev *dev;
    struct io_region *post_region;
    struct io_region *console_region;
    bool post_log;
    bool bios_log;
    FILE *file;
    uint8_t post_code;
    size_t line_len;
    char line[DEBUGPORT_LINE_MAX + 1];
};

/* Hands the collected line to the VM log.  Control characters are shown as '?'. */
static void debugport_line_flush(struct debugport *s)
{
    if (s->line_len == 0)
        return;
    s->line[s->line_len] = '\0';
    if (s->bios_log)
        rt_log(RT_LOG_INFO, "bios", "%s", s->line);
    s->line_len = 0;
}

static void debugport_console_byte(struct debugport *s, uint8_t byte)
{
    if (s->file) {
        fputc(byte, s->file);
        /* A whole line is visible in the file at once (tests and `tail -f` read it live). */
        if (byte == '\n')
            fflush(s->file);
    }
    if (byte == '\n') {
        debugport_line_flush(s);
        return;
    }
    if (byte == '\r')
        return;
    if (s->line_len == DEBUGPORT_LINE_MAX)
        debugport_line_flush(s);
    s->line[s->line_len++] = (byte >= 0x20 && byte < 0x7f) || byte == '\t' ? (char)byte : '?';
}

static uint64_t debugport_post_read(void *opaque, uint64_t offset, unsigned size)
{
    struct debugport *s = opaque;
    (void)offset;
    (void)size;
    return s->post_code;
}

static void debugport_post_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    struct debugport *s = opaque;
    (void)offset;
    (void)size;
    s->post_code = (uint8_t)value;
    if (s->post_log)
        LOG_DEBUG("POST code 0x%02x", s->post_code);
}

static uint64_t debugport_console_read(void *opaque, uint64_t offset, unsigned size)
{
    (void)opaque;
    (void)offset;
    (void)size;
    return DEBUGPORT_CONSOLE_MAGIC;
}

static void debugport_console_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    (void)offset;
    (void)size;
    debugport_console_byte(opaque, (uint8_t)value);
}

static const struct io_ops g_debugport_post_ops = {
    .read = debugport_post_read,
    .write = debugport_post_write,
    .min_access = 1,
    .max_access = 1,
};

static const struct io_ops g_debugport_console_ops = {
    .read = debugport_console_read,
    .write = debugport_console_write,
    .min_access = 1,
    .max_access = 1,
};

static void debugport_reset(struct pdm_dev *dev)
{
    struct debugport *s = pdm_dev_state(dev);
    /* A reset ends the current line; the POST latch keeps showing the last code, like a POST card. */
    debugport_line_flush(s);
    if (s->file)
        fflush(s->file);
}

static int debugport_map(struct debugport *s, const char *suffix, uint16_t port, const struct io_ops *ops,
                         struct io_region **out)
{
    struct vm *vm = pdm_dev_vm(s->dev);
    char name[64];
    snprintf(name, sizeof(name), "%s-%s", pdm_dev_name(s->dev), suffix);
    int rc = iom_region_create(vm, name, 1, ops, s, out);
    if (rc < 0)
        return rc;
    rc = iom_region_map(*out, port);
    if (rc < 0)
        LOG_ERR("%s: port 0x%x is taken", pdm_dev_name(s->dev), port);
    return rc;
}

static int debugport_construct(struct pdm_dev *dev, const struct pdm_cfg *cfg)
{
    static const char *const allowed[] = {"post", "bios_log", "file", NULL};
    struct debugport *s = pdm_dev_state(dev);
    s->dev = dev;
    int rc = pdm_cfg_validate(cfg, pdm_dev_name(dev), allowed);
    if (rc < 0)
        return rc;
    rc = pdm_cfg_get_bool(cfg, "post", true, &s->post_log);
    if (rc < 0)
        return rc;
    rc = pdm_cfg_get_bool(cfg, "bios_log", true, &s->bios_log);
    if (rc < 0)
        return rc;
    const char *path = pdm_cfg_get_str(cfg, "file", NULL);
    if (path && path[0]) {
        s->file = fopen(path, "we");
        if (!s->file) {
            int err = errno;
            LOG_ERR("%s: cannot open '%s': %s", pdm_dev_name(dev), path, strerror(err));
            return rt_err_from_errno(err);
        }
    }
    rc = debugport_map(s, "post", DEBUGPORT_POST_PORT, &g_debugport_post_ops, &s->post_region);
    if (rc < 0)
        return rc;
    rc = debugport_map(s, "console", DEBUGPORT_CONSOLE_PORT, &g_debugport_console_ops, &s->console_region);
    if (rc < 0)
        return rc;
    debugport_reset(dev);
    return 0;
}

static void debugport_destroy(struct pdm_dev *dev)
{
    struct debugport *s = pdm_dev_state(dev);
    debugport_line_flush(s);
    if (s->console_region)
        iom_region_destroy(s->console_region);
    s->console_region = NULL;
    if (s->post_region)
        iom_region_destroy(s->post_region);
    s->post_region = NULL;
    if (s->file)
        fclose(s->file);
    s->file = NULL;
}

/* Only the POST latch is guest-visible state; the line buffer is host-side logging. */
static int debugport_save(struct pdm_dev *dev, struct ssm *ssm)
{
    struct debugport *s = pdm_dev_state(dev);
    ssm_put_u8(ssm, s->post_code);
    return ssm_status(ssm);
}

static int debugport_load(struct pdm_dev *dev, struct ssm *ssm, uint32_t version)
{
    struct debugport *s = pdm_dev_state(dev);
    if (version != DEBUGPORT_SSM_VERSION)
        return VERR_SSM_VERSION;
    uint8_t code;
    int rc = ssm_get_u8(ssm, &code);
    if (rc < 0)
        return rc;
    s->post_code = code;
    return 0;
}

const struct pdm_dev_desc g_dev_debugport = {
    .name = "debugport",
    .description = "POST code port 0x80 and firmware debug console 0x402",
    .state_size = sizeof(struct debugport),
    .ssm_version = DEBUGPORT_SSM_VERSION,
    .construct = debugport_construct,
    .reset = debugport_reset,
    .save = debugport_save,
    .load = debugport_load,
    .destroy = debugport_destroy,
};
