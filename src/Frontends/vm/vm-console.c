/* vm-console.c - vireo-vm's console window: opened unless --headless when the machine has a screen and a display server answers; in --startvm mode its machine actions run as control commands on the main thread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../gtk/console-util.h"
#include "../gtk/console.h"
#include "vm-process.h"

#define LOG_COMPONENT "console"

/*
 * The host key chosen in the manager's Preferences: the global registry's extra data "GUI/HostKey", read as the
 * window opens, so a change applies to the windows opened after it.  A registry that is missing or cannot be
 * read means the default; the window matters more than the preference.  The registry is replaced by a rename
 * when saved, so reading it needs no lock.
 */
static const struct console_host_key *vmproc_host_key(void)
{
    const struct console_host_key *k = console_host_key_lookup(NULL, NULL);
    struct cfg_global *g = NULL;
    struct cfg_error err = { { 0 } };
    char *path = cfg_global_path();
    int rc = path ? cfg_global_load(path, &g, &err) : VERR_NO_MEMORY;
    free(path);
    if (rc < 0) {
        LOG_WARN("cannot read the host key from the global registry (%s): using %s",
                 err.msg[0] ? err.msg : rt_err_str(rc), k->name);
        return k;
    }
    const char *id = cfg_extra_get(g->extra, g->extra_count, "GUI/HostKey");
    bool unknown = false;
    k = console_host_key_lookup(id, &unknown);
    if (unknown)
        LOG_WARN("the global registry's host key 'GUI/HostKey' is '%s', which is not one Vireo knows: using %s", id,
                 k->name);
    cfg_global_free(g);
    return k;
}

struct console *vmproc_console_open(struct vm *vm, const char *name, bool headless, console_action_fn *action,
                                    void *opaque)
{
    if (headless) {
        LOG_INFO("headless: no console window");
        return NULL;
    }
    struct console_params params = {
        .vm = vm, .machine_name = name, .action = action, .action_opaque = opaque, .host_key = vmproc_host_key(),
    };
    struct console *c = NULL;
    int rc = console_open(&params, &c);
    const char *x11 = getenv("DISPLAY"), *wayland = getenv("WAYLAND_DISPLAY");
    switch (rc) {
    case 0: LOG_INFO("console window opened; the host key is %s", params.host_key->name); break;
    case VERR_NOT_FOUND:
        LOG_INFO("this machine has no graphics device, so there is no screen to show: no console window");
        break;
    case VERR_NOT_SUPPORTED:
        if ((x11 && *x11) || (wayland && *wayland))
            LOG_WARN("no display server: running headless (GTK cannot open the display '%s')",
                     x11 && *x11 ? x11 : wayland);
        else
            LOG_WARN("no display server: running headless (neither DISPLAY nor WAYLAND_DISPLAY is set)");
        break;
    default: LOG_WARN("cannot open the console window (%s): running headless", rt_err_str(rc)); break;
    }
    return c;
}

/* ---- --startvm: the window's actions as control commands ---- */

struct console_request {
    struct vmproc *p;
    enum console_action action;
};

/* On the main thread, between control requests: the same checks and state records as vireo-manage gets. */
static void console_request_run(void *opaque)
{
    struct console_request *req = opaque;
    static const char *const commands[] = {
        [CONSOLE_ACTION_PAUSE] = "pause",
        [CONSOLE_ACTION_RESUME] = "resume",
        [CONSOLE_ACTION_RESET] = "reset",
        [CONSOLE_ACTION_POWEROFF] = "poweroff",
        [CONSOLE_ACTION_POWER_BUTTON] = "acpipowerbutton",
    };
    struct vmctl_reply r = { 0 };
    vmproc_ctl_run(req->p, commands[req->action], &r);
    if (r.status) {
        char title[96];
        snprintf(title, sizeof(title), "Cannot %s the virtual machine", console_action_name(req->action));
        console_show_error(req->p->console, title, r.msg[0] ? r.msg : rt_err_str(r.status));
    }
    free(r.body);
    free(req);
}

void vmproc_console_action(void *opaque, enum console_action action)
{
    struct vmproc *p = opaque;
    struct console_request *req = calloc(1, sizeof(*req));
    int rc = req ? 0 : VERR_NO_MEMORY;
    if (req) {
        req->p = p;
        req->action = action;
        rc = rt_evloop_call(p->ctl_loop, console_request_run, req);
    }
    if (rc) {
        free(req);
        console_show_error(p->console, "The virtual machine did not get the request", rt_err_str(rc));
    }
}
