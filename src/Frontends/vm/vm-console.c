/* vm-console.c - vireo-vm's console window: opened unless --headless when the machine has a screen and a display server answers; in --startvm mode its machine actions run as control commands on the main thread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../gtk/console.h"
#include "vm-process.h"

#define LOG_COMPONENT "console"

struct console *vmproc_console_open(struct vm *vm, const char *name, bool headless, console_action_fn *action,
                                    void *opaque)
{
    if (headless) {
        LOG_INFO("headless: no console window");
        return NULL;
    }
    struct console_params params = { .vm = vm, .machine_name = name, .action = action, .action_opaque = opaque };
    struct console *c = NULL;
    int rc = console_open(&params, &c);
    const char *x11 = getenv("DISPLAY"), *wayland = getenv("WAYLAND_DISPLAY");
    switch (rc) {
    case 0: LOG_INFO("console window opened"); break;
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
