/* console.h - the VM console window (GTK3) that vireo-vm opens unless headless: the guest's primary screen, keyboard and mouse, machine menus. */
#ifndef VIREO_CONSOLE_H
#define VIREO_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>

#include "vireo/vm.h"

struct console_host_key;

/*
 * The window runs on a thread of its own ("console") that owns GTK: gtk_init_check and gtk_main run
 * there and every GTK call is made there.  vireo-vm's main thread keeps its loop (signals, the
 * control socket) untouched.  The window reaches the VM through thread-safe calls only: the display
 * listener (display.h) copies screen updates under a mutex, input goes through inp_* (input.h), and
 * machine actions (pause, reset, power off, the ACPI power button) go through params.action when the process wants them on
 * its own terms (vireo-vm --startvm records the state in the settings), else straight to vm_*.
 */

struct console; /* opaque */

enum console_action {
    CONSOLE_ACTION_PAUSE,
    CONSOLE_ACTION_RESUME,
    CONSOLE_ACTION_RESET,
    CONSOLE_ACTION_POWEROFF,
    CONSOLE_ACTION_POWER_BUTTON, /* the ACPI power button: asks the guest to shut down */
};

/*
 * Carries out an action; called on the console thread and must not wait for it (queue it).  A failure
 * is shown to the person with console_show_error.
 */
typedef void console_action_fn(void *opaque, enum console_action action);

struct console_params {
    struct vm *vm;
    const char *machine_name;  /* the window title is "<name> - Vireo" */
    console_action_fn *action; /* NULL: the window calls vm_pause/vm_resume/vm_request_* itself */
    void *action_opaque;
    const struct console_host_key *host_key; /* from console_host_keys (console-util.h); NULL: Right Ctrl */
};

/*
 * Opens the window on the VM's primary screen.  Returns VERR_NOT_FOUND when the machine has no graphics
 * device (no screen to show) and VERR_NOT_SUPPORTED when no display server is reachable (neither DISPLAY
 * nor WAYLAND_DISPLAY set, or GTK cannot open it); the caller runs headless then.  Call after the VM was
 * built, with the signal mask the process wants every thread to have.
 */
int console_open(const struct console_params *params, struct console **out);
/* Closes the window and joins its thread; call before vm_destroy.  NULL is fine. */
void console_close(struct console *console);
/* Any thread: shows an error dialog in the window (title: what failed; message: why). */
void console_show_error(struct console *console, const char *title, const char *message);

/* The name of an action for messages ("pause", "resume", "reset", "power off", "send ACPI shutdown to"). */
const char *console_action_name(enum console_action action);

#endif
