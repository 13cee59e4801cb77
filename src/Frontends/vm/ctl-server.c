/* ctl-server.c - vireo-vm --startvm: the control socket's commands (state, pause, resume, reset, power off, saved state, media changes, online snapshots). */
/*
 * Design: vmctl-server.c (libVireoMain) owns the socket and the protocol; this file is the
 * handler it calls on the main thread's loop, one request at a time, so commands never
 * overlap and may block (saving the state, creating snapshot images).  Every command
 * checks its argument before it changes anything, and a failing command leaves the VM as
 * it found it (running stays running) with an ERR naming what and why.  Commands for
 * devices this build does not have answer VERR_NOT_SUPPORTED saying which device is
 * missing, so scripts can tell "not here yet" from "went wrong".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vireo/block.h"
#include "vireo/display.h"
#include "vireo/input.h"
#include "vireo/storage.h"
#include "vm-process.h"

#define LOG_COMPONENT "vmctl"

static void reply_err(struct vmctl_reply *r, int status, const char *fmt, ...) RT_PRINTF(3, 4);
static void reply_err(struct vmctl_reply *r, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->msg, sizeof(r->msg), fmt, ap);
    va_end(ap);
    r->status = status;
    LOG_INFO("control: %s", r->msg);
}

static void reply_text(struct vmctl_reply *r, const char *text)
{
    r->body = strdup(text);
    r->len = r->body ? strlen(text) : 0;
    r->status = r->body ? 0 : VERR_NO_MEMORY;
}

static const char *state_text(enum vm_state st)
{
    switch (st) {
    case VM_STATE_RUNNING: return cfg_machine_state_name(CFG_STATE_RUNNING);
    case VM_STATE_PAUSED: return cfg_machine_state_name(CFG_STATE_PAUSED);
    case VM_STATE_POWERED_OFF: return cfg_machine_state_name(CFG_STATE_POWERED_OFF);
    case VM_STATE_ABORTED: return cfg_machine_state_name(CFG_STATE_ABORTED);
    default: return "starting";
    }
}

/* The VM accepts commands that change it only while it runs or is paused and nothing is ending it. */
static bool check_active(struct vmproc *p, struct vmctl_reply *r)
{
    enum vm_state st = vm_get_state(p->vm);
    if (p->ending != VMPROC_END_NONE || (st != VM_STATE_RUNNING && st != VM_STATE_PAUSED)) {
        reply_err(r, VERR_INVALID_STATE, "the VM is %s", p->ending != VMPROC_END_NONE ? "powering off" : state_text(st));
        return false;
    }
    return true;
}

/* ---- Simple commands ---------------------------------------------------------------------------- */

static void cmd_state(struct vmproc *p, const char *arg, struct vmctl_reply *r)
{
    reply_text(r, state_text(vm_get_state(p->vm)));
}

static void cmd_pause(struct vmproc *p, const char *arg, struct vmctl_reply *r)
{
    if (!check_active(p, r))
        return;
    if (vm_get_state(p->vm) == VM_STATE_PAUSED) {
        reply_err(r, VERR_INVALID_STATE, "the VM is already paused");
        return;
    }
    int rc = vm_pause(p->vm);
    if (rc) {
        reply_err(r, rc, "cannot pause the VM: %s", rt_err_str(rc));
        return;
    }
    LOG_INFO("control: paused");
    vmproc_record_state(p, CFG_STATE_PAUSED, NULL);
}

static void cmd_resume(struct vmproc *p, const char *arg, struct vmctl_reply *r)
{
    if (!check_active(p, r))
        return;
    if (vm_get_state(p->vm) == VM_STATE_RUNNING) {
        reply_err(r, VERR_INVALID_STATE, "the VM is not paused");
        return;
    }
    int rc = vm_resume(p->vm);
    if (rc) {
        reply_err(r, rc, "cannot resume the VM: %s", rt_err_str(rc));
        return;
    }
    LOG_INFO("control: resumed");
    vmproc_record_state(p, CFG_STATE_RUNNING, NULL);
}

static void cmd_reset(struct vmproc *p, const char *arg, struct vmctl_reply *r)
{
    if (!check_active(p, r))
        return;
    LOG_INFO("control: reset");
    vm_request_reset(p->vm);
}

static void cmd_poweroff(struct vmproc *p, const char *arg, struct vmctl_reply *r)
{
    if (!check_active(p, r))
        return;
    LOG_INFO("control: power off");
    p->ending = VMPROC_END_POWEROFF;
    vm_request_poweroff(p->vm, 0);
    r->close = true;
}

static void cmd_acpipowerbutton(struct vmproc *p, const char *arg, struct vmctl_reply *r)
{
    if (!check_active(p, r))
        return;
    /* A press while paused stays latched in the PM status register: the guest sees it when it resumes. */
    int rc = vm_power_button(p->vm);
    if (rc == VERR_NOT_SUPPORTED) {
        reply_err(r, rc, "this machine has no ACPI power button; use poweroff");
        return;
    }
    if (rc) {
        reply_err(r, rc, "cannot press the power button: %s", rt_err_str(rc));
        return;
    }
    LOG_INFO("control: ACPI power button pressed");
}

static void cmd_screenshot(struct vmproc *p, const char *arg, struct vmctl_reply *r)
{
    struct display *dpy = dpy_find(p->vm, 0);
    if (!dpy) {
        reply_err(r, VERR_NOT_SUPPORTED, "this machine has no display adapter, so there is nothing to take a "
                  "screenshot of");
        return;
    }
    void *png = NULL;
    size_t len = 0;
    int rc = dpy_screenshot_png_mem(dpy, &png, &len);
    if (rc == VERR_INVALID_STATE) {
        reply_err(r, rc, "the screen of '%s' is off (the guest has not set a display mode or has blanked it), so "
                  "there is nothing to take a screenshot of", dpy_name(dpy));
        return;
    }
    if (rc) {
        reply_err(r, rc, "cannot take a screenshot of '%s': %s", dpy_name(dpy), rt_err_str(rc));
        return;
    }
    r->body = png;
    r->len = len;
    r->status = 0;
}

/* ---- Keyboard and pointer ------------------------------------------------------------------------ */

#define CTL_MAX_SCANCODES 1024
#define CTL_MAX_STRING    1000 /* characters: the keyboard holds 4096 key events, a character takes up to 4 */

static bool check_input(struct vmproc *p, struct vmctl_reply *r, int rc, const char *what)
{
    if (rc == VERR_NOT_FOUND) {
        reply_err(r, VERR_NOT_SUPPORTED, "this machine has no %s", what);
        return false;
    }
    if (rc) {
        reply_err(r, rc, "cannot send the input to the VM: %s", rt_err_str(rc));
        return false;
    }
    return true;
}

/* "1c 9c e0 48": set 1 bytes in hex, one or two digits each, separated by blanks. */
static void cmd_keyboard_scancodes(struct vmproc *p, const char *arg, struct vmctl_reply *r)
{
    uint8_t bytes[CTL_MAX_SCANCODES];
    size_t n = 0;
    const char *s = arg;
    if (!check_active(p, r))
        return;
    while (*s) {
        size_t blank = strspn(s, " \t");
        s += blank;
        size_t len = strcspn(s, " \t");
        if (!len)
            break;
        if (len > 2 || strspn(s, "0123456789abcdefABCDEF") < len) {
            reply_err(r, VERR_INVALID_PARAMETER, "scancode '%.*s' is not a byte in hex (1c, 9c, e0 ...)",
                      (int)RT_MIN(len, (size_t)16), s);
            return;
        }
        if (n == CTL_MAX_SCANCODES) {
            reply_err(r, VERR_TOO_LARGE, "more than %u scancodes in one request", CTL_MAX_SCANCODES);
            return;
        }
        char hex[3] = { s[0], len > 1 ? s[1] : 0, 0 };
        bytes[n++] = (uint8_t)strtoul(hex, NULL, 16);
        s += len;
    }
    if (!n) {
        reply_err(r, VERR_INVALID_PARAMETER, "keyboard-scancodes needs at least one byte in hex (1c 9c ...)");
        return;
    }
    if (check_input(p, r, inp_kbd_put_scancode_bytes(p->vm, bytes, n), "keyboard controller"))
        LOG_INFO("control: %zu scancode bytes sent", n);
}

static void cmd_keyboard_string(struct vmproc *p, const char *arg, struct vmctl_reply *r)
{
    if (!check_active(p, r))
        return;
    size_t len = strlen(arg);
    if (!len) {
        reply_err(r, VERR_INVALID_PARAMETER, "keyboard-string needs the text to type");
        return;
    }
    if (len > CTL_MAX_STRING) {
        reply_err(r, VERR_TOO_LARGE, "the text is %zu characters long; at most %u are typed in one request", len,
                  CTL_MAX_STRING);
        return;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)arg[i];
        if ((c < 0x20 || c > 0x7e) && c != '\n' && c != '\t') {
            reply_err(r, VERR_INVALID_PARAMETER, "character %zu (byte %#x) has no key on the US keyboard layout; "
                      "only printable ASCII, newline and tab can be typed", i + 1, c);
            return;
        }
    }
    if (check_input(p, r, inp_type_string(p->vm, arg), "keyboard controller"))
        LOG_INFO("control: %zu characters typed", len);
}

/*
 * "X Y BUTTONS": an absolute position in pixels of the screen and a button mask (1 left, 2 right,
 * 4 middle).  With a display its size scales the position; without one there is no screen to place
 * the pointer on, so X and Y move it relatively.
 */

static void cmd_pointer(struct vmproc *p, const char *arg, struct vmctl_reply *r)
{
    long v[3];
    const char *s = arg;
    if (!check_active(p, r))
        return;
    for (int i = 0; i < 3; i++) {
        char *end;
        errno = 0;
        v[i] = strtol(s, &end, 10);
        bool bad = end == s || errno || (*end && *end != ' ') || v[i] < -65535 || v[i] > 65535;
        if (bad || (i == 2 && (v[i] < 0 || v[i] > 7))) {
            reply_err(r, VERR_INVALID_PARAMETER, "pointer takes X Y BUTTONS (pixels, and a button mask 0-7: 1 left, "
                      "2 right, 4 middle), not '%.64s'", arg);
            return;
        }
        s = end;
    }
    while (*s == ' ')
        s++;
    if (*s) {
        reply_err(r, VERR_INVALID_PARAMETER, "pointer takes X Y BUTTONS; '%.32s' is left over", s);
        return;
    }
    struct display *dpy = dpy_find(p->vm, 0);
    struct dpy_surface shot = { 0 };
    int rc;
    if (dpy && !dpy_snapshot(dpy, &shot)) {
        free(shot.pixels);
        if (v[0] < 0 || v[1] < 0 || v[0] >= shot.width || v[1] >= shot.height) {
            reply_err(r, VERR_OUT_OF_RANGE, "position %ld,%ld is outside the %ux%u screen", v[0], v[1], shot.width,
                      shot.height);
            return;
        }
        rc = inp_pointer_abs(p->vm, (unsigned)v[0], (unsigned)v[1], shot.width, shot.height, 0, (unsigned)v[2]);
    } else {
        rc = inp_pointer_rel(p->vm, (int)v[0], (int)v[1], 0, (unsigned)v[2]);
    }
    check_input(p, r, rc, "pointing device");
}

/* ---- Saved state --------------------------------------------------------------------------------- */

/* Saves the paused VM's state to rel (relative to the machine folder), creating its folder. */
static int save_state_file(struct vmproc *p, const char *rel, char **abs_out, struct vmctl_reply *r)
{
    char *abs = mach_path(p->settings_path, rel);
    char *dir = abs ? rt_path_dirname(abs) : NULL;
    int rc = dir ? rt_dir_create_all(dir, 0700) : VERR_NO_MEMORY;
    if (rc) {
        reply_err(r, rc, "cannot create the folder '%s' for the saved state: %s", dir ? dir : rel, rt_err_str(rc));
    } else {
        uint64_t start = rt_time_mono_ns();
        rc = vm_state_save(p->vm, abs, NULL, NULL);
        if (rc)
            reply_err(r, rc, "cannot save the state to '%s': %s", abs, rt_err_str(rc));
        else
            LOG_INFO("state saved to '%s' in %llu ms", abs,
                     (unsigned long long)((rt_time_mono_ns() - start) / RT_NS_PER_MS));
    }
    free(dir);
    if (rc) {
        free(abs);
        abs = NULL;
    }
    *abs_out = abs;
    return rc;
}

static void cmd_savestate(struct vmproc *p, const char *arg, struct vmctl_reply *r)
{
    if (!check_active(p, r))
        return;
    bool was_running = vm_get_state(p->vm) == VM_STATE_RUNNING;
    int rc = was_running ? vm_pause(p->vm) : 0;
    if (rc) {
        reply_err(r, rc, "cannot pause the VM to save its state: %s", rt_err_str(rc));
        return;
    }
    /* One current saved state per machine, named after it, in the snapshot folder (as VirtualBox keeps it). */
    char *rel = rt_strdup_printf("%s/%s.sav", vmproc_snapshot_folder(p), p->uuid_str), *abs = NULL;
    rc = rel ? save_state_file(p, rel, &abs, r) : VERR_NO_MEMORY;
    if (!rc && (rc = vmproc_record_state(p, CFG_STATE_SAVED, rel))) {
        reply_err(r, rc, "the state was saved to '%s' but the settings could not record it; the VM continues", abs);
        unlink(abs);
    }
    if (rc) {
        if (!r->status)
            r->status = rc;
        if (was_running)
            vm_resume(p->vm);
    } else {
        p->ending = VMPROC_END_SAVED;
        p->stop_loop = true;
        r->close = true;
    }
    free(rel);
    free(abs);
}

/* ---- DVD media changes ------------------------------------------------------------------------------ */

struct medium_edit {
    const char *controller;
    unsigned port, device;
    struct rt_uuid medium;
};

static int edit_medium(void *opaque, struct cfg_machine *m, const char *settings_path, struct cfg_error *err)
{
    const struct medium_edit *e = opaque;
    struct cfg_attachment *a = cfg_attachment_find(&m->hw, e->controller, e->port, e->device);
    if (!a) {
        snprintf(err->msg, sizeof(err->msg), "%s: the settings no longer have an attachment at '%s' port %u device %u",
                 settings_path, e->controller, e->port, e->device);
        return VERR_NOT_FOUND;
    }
    a->medium = e->medium;
    return 0;
}

/* "<controller> <port> <device> <path>": the controller name may have blanks, so it is matched against the machine's. */
static bool parse_medium_arg(struct vmproc *p, const char *arg, const char **controller, unsigned *port,
                             unsigned *device, const char **path)
{
    for (size_t i = 0; i < p->m->hw.controller_count; i++) {
        const char *name = p->m->hw.controllers[i].name;
        size_t n = strlen(name);
        if (strncmp(arg, name, n) != 0 || arg[n] != ' ')
            continue;
        char *end;
        const char *s = arg + n + 1;
        if (*s < '0' || *s > '9')
            continue;
        unsigned long pt = strtoul(s, &end, 10);
        if (*end != ' ' || end[1] < '0' || end[1] > '9' || pt > 64)
            continue;
        unsigned long dv = strtoul(end + 1, &end, 10);
        if (*end != ' ' || !end[1] || dv > 1)
            continue;
        *controller = name;
        *port = (unsigned)pt;
        *device = (unsigned)dv;
        *path = end + 1;
        return true;
    }
    return false;
}

/* The registry entry of the DVD image named by a UUID or an absolute path (registered now if it is new). */
static int find_dvd(const char *what, struct cfg_medium *med, struct vmctl_reply *r)
{
    struct cfg_error err = { { 0 } };
    struct rt_uuid uuid;
    int rc;
    if (rt_uuid_parse(what, &uuid) != 0) {
        if (what[0] != '/') {
            reply_err(r, VERR_INVALID_PARAMETER, "'%s': give the DVD image as an absolute path or a registered "
                      "medium's UUID (this process's folder is not the caller's)", what);
            return VERR_INVALID_PARAMETER;
        }
        if ((rc = mach_medium_open(what, CFG_MEDIUM_DVD, &uuid, &err))) {
            reply_err(r, rc, "%s", err.msg[0] ? err.msg : rt_err_str(rc));
            return rc;
        }
    }
    char id[RT_UUID_STR_LEN];
    rt_uuid_to_str(&uuid, id);
    if ((rc = mach_medium_find(id, med, &err))) {
        reply_err(r, rc, "%s", err.msg[0] ? err.msg : rt_err_str(rc));
        return rc;
    }
    if (med->type != CFG_MEDIUM_DVD) {
        reply_err(r, VERR_INVALID_PARAMETER, "medium '%s' is a %s image, not a DVD", med->location,
                  cfg_medium_type_name(med->type));
        mach_medium_clear(med);
        return VERR_INVALID_PARAMETER;
    }
    return 0;
}

static enum blk_format format_of(const char *name)
{
    enum blk_format f;
    return name && blk_format_from_name(name, &f) == 0 ? f : BLK_FMT_AUTO;
}

/* Puts the drive back to what it had (a failed settings update must not leave the two apart). */
static void restore_dvd(struct drive *drv, const struct vmproc_drive *d)
{
    int rc = d->path ? drive_insert(drv, d->path, format_of(d->format), true) : drive_eject(drv, true);
    if (rc)
        LOG_WARN("drive %s: cannot put back its previous medium: %s", d->name, rt_err_str(rc));
}

static void cmd_medium(struct vmproc *p, const char *arg, struct vmctl_reply *r)
{
    const char *controller, *path;
    unsigned port, device;
    if (!check_active(p, r))
        return;
    if (!parse_medium_arg(p, arg, &controller, &port, &device, &path)) {
        reply_err(r, VERR_INVALID_PARAMETER, "expected \"<controller> <port> <device> <path|emptydrive>\" with one "
                  "of this machine's controllers");
        return;
    }
    struct vmproc_drive *d = vmproc_drive_find(p, controller, port, device);
    if (!d) {
        reply_err(r, VERR_NOT_FOUND, "machine '%s' has no drive at '%s' port %u device %u", p->m->name, controller,
                  port, device);
        return;
    }
    if (d->type != CFG_MEDIUM_DVD) {
        reply_err(r, VERR_INVALID_STATE, "'%s' port %u device %u is a hard disk; only DVD media change while the "
                  "machine runs", controller, port, device);
        return;
    }
    struct drive *drv = drive_find(p->vm, d->name);
    if (!drv) {
        reply_err(r, VERR_NOT_FOUND, "drive %s is not in this VM", d->name);
        return;
    }
    struct cfg_medium med = { 0 };
    bool eject = !strcmp(path, "emptydrive");
    int rc = eject ? 0 : find_dvd(path, &med, r);
    if (rc)
        return;
    rc = eject ? drive_eject(drv, false) : drive_insert(drv, med.location, format_of(med.format), false);
    if (rc) {
        if (rc == VERR_BUSY)
            reply_err(r, rc, "the guest has locked the tray of the DVD drive at '%s' port %u device %u; eject the "
                      "disc in the guest first", controller, port, device);
        else
            reply_err(r, rc, "cannot %s '%s': %s", eject ? "eject the DVD from" : "insert into the DVD drive",
                      eject ? d->name : med.location, rt_err_str(rc));
        mach_medium_clear(&med);
        return;
    }
    struct medium_edit e = { .controller = controller, .port = port, .device = device };
    if (!eject)
        e.medium = med.uuid;
    struct cfg_error err = { { 0 } };
    if ((rc = mach_edit_path(p->settings_path, true, edit_medium, &e, &err))) {
        reply_err(r, rc, "the settings could not record the new medium (%s); the drive keeps its old one",
                  err.msg[0] ? err.msg : rt_err_str(rc));
        restore_dvd(drv, d);
        mach_medium_clear(&med);
        return;
    }
    struct cfg_attachment *a = cfg_attachment_find(&p->m->hw, controller, port, device);
    if (a)
        a->medium = e.medium;
    free(d->path);
    free(d->format);
    d->path = med.location;
    d->format = med.format;
    med.location = med.format = NULL;
    mach_medium_clear(&med);
    LOG_INFO("control: DVD drive %s now %s", d->name, d->path ? d->path : "empty");
}

/* ---- Online snapshots ----------------------------------------------------------------------------- */

/* Opens each disk drive on the image its attachment names now; false (with the reply) when one cannot be. */
static bool attach_disks(struct vmproc *p, struct cfg_machine *now, struct vmctl_reply *r)
{
    bool ok = true;
    for (unsigned i = 0; i < p->drive_count; i++) {
        struct vmproc_drive *d = &p->drives[i];
        if (d->type != CFG_MEDIUM_HDD)
            continue;
        struct cfg_attachment *a = cfg_attachment_find(&now->hw, d->controller, d->port, d->device);
        struct cfg_medium med = { 0 };
        struct cfg_error err = { { 0 } };
        char id[RT_UUID_STR_LEN];
        int rc = VERR_NOT_FOUND;
        if (a) {
            rt_uuid_to_str(&a->medium, id);
            rc = mach_medium_find(id, &med, &err);
        }
        struct drive *drv = drive_find(p->vm, d->name);
        if (!rc && !drv)
            rc = VERR_NOT_FOUND;
        if (!rc) {
            vm_lock(p->vm);
            rc = drive_image_attach(drv, med.location, format_of(med.format));
            vm_unlock(p->vm);
        }
        if (rc) {
            if (ok)
                reply_err(r, rc, "the snapshot was taken, but disk %s cannot be opened on its new image '%s' (%s); "
                          "the VM stays paused: power it off, the snapshot and the disks are intact", d->name,
                          med.location ? med.location : "(none in the settings)", err.msg[0] ? err.msg : rt_err_str(rc));
            ok = false;
            mach_medium_clear(&med);
            continue;
        }
        LOG_INFO("snapshot: disk %s continues on '%s'", d->name, med.location);
        free(d->path);
        free(d->format);
        d->path = med.location;
        d->format = med.format;
        med.location = med.format = NULL;
        mach_medium_clear(&med);
    }
    return ok;
}

/* Reopens released disks on their old images (the snapshot was not taken). */
static void reattach_old(struct vmproc *p, unsigned released)
{
    vm_lock(p->vm);
    for (unsigned i = 0; i < released; i++) {
        struct vmproc_drive *d = &p->drives[i];
        if (d->type != CFG_MEDIUM_HDD)
            continue;
        struct drive *drv = drive_find(p->vm, d->name);
        int rc = drv ? drive_image_attach(drv, d->path, format_of(d->format)) : VERR_NOT_FOUND;
        if (rc)
            LOG_ERR("disk %s: cannot reopen '%s' after the failed snapshot: %s", d->name, d->path, rt_err_str(rc));
    }
    vm_unlock(p->vm);
}

static void cmd_snapshot(struct vmproc *p, const char *arg, struct vmctl_reply *r)
{
    if (!check_active(p, r))
        return;
    char *name = strdup(arg);
    if (!name) {
        r->status = VERR_NO_MEMORY;
        return;
    }
    char *nl = strchr(name, '\n');
    const char *desc = NULL;
    if (nl) {
        *nl = '\0';
        desc = nl + 1;
    }
    if (!name[0]) {
        reply_err(r, VERR_INVALID_PARAMETER, "a snapshot needs a name (\"snapshot <name>\\n<description>\")");
        free(name);
        return;
    }
    bool was_running = vm_get_state(p->vm) == VM_STATE_RUNNING;
    int rc = was_running ? vm_pause(p->vm) : 0;
    struct rt_uuid file_id, snap_id;
    char file_str[RT_UUID_STR_LEN], *rel = NULL, *abs = NULL;
    if (!rc && !(rc = rt_uuid_generate(&file_id))) {
        rt_uuid_to_str(&file_id, file_str);
        rel = rt_strdup_printf("%s/%s.sav", vmproc_snapshot_folder(p), file_str);
        rc = rel ? save_state_file(p, rel, &abs, r) : VERR_NO_MEMORY;
    }
    unsigned released = 0;
    if (!rc) {
        vm_lock(p->vm);
        drive_drain_all(p->vm);
        for (; released < p->drive_count && !rc; released++) {
            struct vmproc_drive *d = &p->drives[released];
            if (d->type != CFG_MEDIUM_HDD)
                continue;
            struct drive *drv = drive_find(p->vm, d->name);
            if ((rc = drv ? drive_image_release(drv) : VERR_NOT_FOUND))
                reply_err(r, rc, "cannot release disk %s for the snapshot: %s", d->name, rt_err_str(rc));
        }
        vm_unlock(p->vm);
        if (rc)
            released--; /* that one was not released */
    }
    struct cfg_error err = { { 0 } };
    if (!rc && (rc = mach_snapshot_take(p->settings_path, name, desc, rel, true, &snap_id, &err)))
        reply_err(r, rc, "%s", err.msg[0] ? err.msg : rt_err_str(rc));
    if (rc) {
        if (released)
            reattach_old(p, released);
        if (abs)
            unlink(abs);
        if (!r->status)
            r->status = rc;
        if (was_running)
            vm_resume(p->vm);
        goto out;
    }
    struct cfg_machine *now = NULL;
    if ((rc = cfg_machine_load(p->settings_path, &now, &err))) {
        reply_err(r, rc, "the snapshot was taken, but the settings cannot be read back (%s); the VM stays paused",
                  err.msg);
    } else if (attach_disks(p, now, r)) {
        cfg_machine_free(p->m);
        p->m = now;
        now = NULL;
        if (was_running)
            vm_resume(p->vm);
        char id[RT_UUID_STR_LEN];
        rt_uuid_to_str(&snap_id, id);
        reply_text(r, id);
        LOG_INFO("control: snapshot '%s' {%s} taken", name, id);
    }
    cfg_machine_free(now);
    if (r->status && was_running)
        vmproc_record_state(p, CFG_STATE_PAUSED, NULL);
out:
    free(rel);
    free(abs);
    free(name);
}

/* ---- Dispatch --------------------------------------------------------------------------------------- */

enum arg_rule { ARG_NONE, ARG_NEEDED, ARG_ANY };

static const struct ctl_command {
    const char *name;
    enum arg_rule arg;
    void (*fn)(struct vmproc *p, const char *arg, struct vmctl_reply *r);
} g_commands[] = {
    { "state", ARG_NONE, cmd_state },
    { "pause", ARG_NONE, cmd_pause },
    { "resume", ARG_NONE, cmd_resume },
    { "reset", ARG_NONE, cmd_reset },
    { "poweroff", ARG_NONE, cmd_poweroff },
    { "acpipowerbutton", ARG_NONE, cmd_acpipowerbutton },
    { "savestate", ARG_NONE, cmd_savestate },
    { "screenshot", ARG_ANY, cmd_screenshot },
    { "keyboard-scancodes", ARG_ANY, cmd_keyboard_scancodes },
    { "keyboard-string", ARG_ANY, cmd_keyboard_string },
    { "pointer", ARG_ANY, cmd_pointer },
    { "medium", ARG_NEEDED, cmd_medium },
    { "snapshot", ARG_NEEDED, cmd_snapshot },
};

static void ctl_handle(void *opaque, const struct vmctl_request *req, struct vmctl_reply *r)
{
    struct vmproc *p = opaque;
    for (size_t i = 0; i < RT_ARRAY_SIZE(g_commands); i++) {
        const struct ctl_command *c = &g_commands[i];
        if (strcmp(req->command, c->name) != 0)
            continue;
        if (c->arg == ARG_NONE && req->argument)
            reply_err(r, VERR_INVALID_PARAMETER, "'%s' takes no argument", c->name);
        else if (c->arg == ARG_NEEDED && (!req->argument || !req->argument[0]))
            reply_err(r, VERR_INVALID_PARAMETER, "'%s' needs an argument", c->name);
        else
            c->fn(p, req->argument ? req->argument : "", r);
        return;
    }
    reply_err(r, VERR_NOT_SUPPORTED, "unknown command '%s' (version, state, pause, resume, reset, poweroff, "
              "acpipowerbutton, savestate, screenshot, keyboard-scancodes, keyboard-string, pointer, medium, "
              "snapshot)", req->command);
}

void vmproc_ctl_run(struct vmproc *p, const char *command, struct vmctl_reply *reply)
{
    struct vmctl_request req = { .version = 1, .command = command, .argument = NULL };
    ctl_handle(p, &req, reply);
}

int vmproc_ctl_start(struct vmproc *p)
{
    p->socket_path = vmctl_socket_path(&p->m->uuid);
    if (!p->socket_path)
        return VERR_NO_MEMORY;
    int rc = vmctl_server_create(p->ctl_loop, p->socket_path, ctl_handle, p, &p->ctl);
    if (!rc)
        LOG_INFO("control socket %s", p->socket_path);
    return rc;
}

void vmproc_ctl_stop(struct vmproc *p)
{
    /* A second is plenty for the last answers (power off, saved) to reach clients that read them. */
    vmctl_server_destroy(p->ctl, 1000);
    p->ctl = NULL;
    free(p->socket_path);
    p->socket_path = NULL;
}
