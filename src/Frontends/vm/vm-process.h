/* vm-process.h - what the files of vireo-vm --startvm share: the per-VM process state, the settings-to-board translation and the control commands. */
#ifndef VIREO_VM_PROCESS_H
#define VIREO_VM_PROCESS_H

#include <stdbool.h>
#include <stdint.h>

#include "vireo/devices.h"
#include "vireo/machine.h"
#include "vireo/settings.h"
#include "vireo/vm.h"
#include "vireo/vmctl.h"
#include "../gtk/console.h"
#include "../remote/remote.h"

/* Exit codes shared with the command-line mode. */
#define VMPROC_EXIT_USAGE 1
#define VMPROC_EXIT_ABORTED 2
#define VMPROC_EXIT_TIMEOUT 124

/* One drive the board made from a storage attachment: how control commands find it again. */
struct vmproc_drive {
    char *controller;             /* the attachment's controller name */
    unsigned port, device;
    enum cfg_medium_type type;    /* HDD or DVD */
    char name[32];                /* the board's drive name: "ide-1-0", "ahci-p2", "vblk0" */
    char *path;                   /* the image the board opened (NULL: an empty DVD drive) */
    char *format;                 /* its registry format ("vdi", "iso"...), NULL: probe */
};

/* vm-vnc.c: the VNC server's options from the command line, then the settings, and the running server. */
enum vmproc_vnc_opt { VMPROC_VNC_LISTEN, VMPROC_VNC_PASSWORD_FILE, VMPROC_VNC_NO_AUTH, VMPROC_VNC_KEYMAP };
struct vmproc_vnc {
    struct vnc_options opts;
    bool enabled, from_cli, password_given, keymap_given;
    struct vnc_server *server;
};
/* One --vnc* option; on a bad value prints the error and returns the usage exit code. */
int vmproc_vnc_option(struct vmproc_vnc *v, enum vmproc_vnc_opt which, const char *arg);
/* After all options: refuses stray or contradictory ones and --vnc without a password or --vnc-no-auth. */
int vmproc_vnc_check(struct vmproc_vnc *v);
#define VMPROC_VNC_HELP \
    "  --vnc [ADDRESS:]PORT   serve the screen over VNC on PORT (or :N for 5900+N; 0: the first free from\n" \
    "                         5900), on 127.0.0.1 unless ADDRESS (numeric; [IPV6]:PORT) says otherwise\n" \
    "  --vnc-password-file FILE  VNC password: the first line of FILE (VNC uses its first 8 characters)\n" \
    "  --vnc-no-auth          run the VNC server without a password (must be asked for explicitly)\n" \
    "  --vnc-keymap LAYOUT    keyboard layout of the guest for VNC keys (us, gb, de, fr, ...; default us,\n" \
    "                         or with --startvm the machine's extra data Vireo/KeyboardLayout)\n"

/* How the VM process ends, decided by whoever stops it. */
enum vmproc_ending {
    VMPROC_END_NONE = 0,
    VMPROC_END_POWEROFF,  /* guest power off, poweroff command, signal, timeout */
    VMPROC_END_SAVED,     /* savestate: the state is on disk and recorded */
};

struct vmproc {
    char *settings_path;
    char *folder;                 /* the machine folder */
    struct cfg_machine *m;        /* the settings as this process started them (kept current for names) */
    char uuid_str[RT_UUID_STR_LEN];
    struct mach_run_lock *run_lock;
    struct vm *vm;
    struct vm_params vp;
    struct pc_params pp;
    struct vmproc_drive drives[PC_MAX_DRIVES];
    unsigned drive_count;
    struct rt_evloop *ctl_loop;   /* the control socket and signals, run by the main thread */
    struct vmctl_server *ctl;
    char *socket_path;
    enum vmproc_ending ending;
    bool stop_loop;               /* the main loop ends after the current callback */
    struct console *console;      /* the console window, or NULL (headless) */
    struct vmproc_vnc vnc;
    char *tpm_dir;                /* <machine folder>/tpm when the machine has a TPM */
    char *efi_vars_path;          /* EFI firmware: the machine's variable store (<folder>/<name>.nvram) */
};

/* ---- startvm-config.c: settings to board ---- */

/*
 * Fills p->vp, p->pp and p->drives from p->m: memory, CPUs, boot order, drives (media looked up in the
 * registry), serial ports.  Devices Vireo cannot emulate yet are logged once each as warnings.  Errors
 * (a missing medium file, an attachment the board has no place for) are logged naming the attachment;
 * returns VERR_CFG_BAD_VALUE or the lookup's error.
 */
int vmproc_config_build(struct vmproc *p);
void vmproc_config_free(struct vmproc *p);
/* The drive made from the attachment at (controller, port, device), or NULL. */
struct vmproc_drive *vmproc_drive_find(struct vmproc *p, const char *controller, unsigned port, unsigned device);

/* ---- startvm.c: the process, state records ---- */

/* vireo-vm --startvm ...: the whole process; returns its exit status. */
int startvm_main(int argc, char **argv);

/* Records the machine's state (and saved-state file, relative to the machine folder, or NULL) in its settings. */
int vmproc_record_state(struct vmproc *p, enum cfg_machine_state state, const char *state_file);
/* The folder for saved states and snapshot states, relative to the machine folder ("Snapshots"). */
const char *vmproc_snapshot_folder(const struct vmproc *p);

/* ---- vm-vnc.c: --startvm's VNC server ---- */

/* The command line's --vnc, else the settings'; starts the server when either asks for it. */
int vmproc_vnc_start(struct vmproc *p);
void vmproc_vnc_stop(struct vmproc *p);

/* ---- ctl-server.c: the control commands ---- */

/* Starts serving the control socket on p->ctl_loop. */
int vmproc_ctl_start(struct vmproc *p);
void vmproc_ctl_stop(struct vmproc *p);
/* Runs one control command (no argument) as if a client sent it; the console window's actions use it. */
void vmproc_ctl_run(struct vmproc *p, const char *command, struct vmctl_reply *reply);

/* ---- vm-console.c: the console window (both modes) ---- */

/*
 * Opens the console window unless headless; NULL when none opens (headless, no graphics device, no display
 * server: each logged).  action NULL: the window acts on the VM directly (command-line mode).
 */
struct console *vmproc_console_open(struct vm *vm, const char *name, bool headless, console_action_fn *action,
                                    void *opaque);
/* --startvm's action function (opaque: the struct vmproc): queues the command to the main loop. */
void vmproc_console_action(void *opaque, enum console_action action);

#endif
