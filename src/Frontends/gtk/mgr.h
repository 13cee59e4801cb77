/* mgr.h - the manager (vireo): the application object, the machine list model and the pieces its windows and dialogs share. */
#ifndef VIREO_MGR_H
#define VIREO_MGR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <gtk/gtk.h>

#include "vireo/machine.h"
#include "vireo/settings.h"
#include "vireo/vmctl.h"

/*
 * The manager is a GTK3 program that edits the settings registry through src/Main (machine.h)
 * and talks to running machines over their control sockets (vmctl.h).  It never links the
 * VMM: a machine runs in its own vireo-vm process, started detached (mach_start), which shows
 * the console window unless headless.
 *
 * Files (src/Frontends/gtk/mgr-*.c):
 *   mgr-main.c       main(), the GtkApplication, command-line options
 *   mgr-model.c      the machine list: registry polling, live states, thumbnails
 *   mgr-window.c     the main window: list, details pane, toolbar, menus, machine actions,
 *                    remove-machine and preferences dialogs
 *   mgr-newvm.c      the new machine assistant;  mgr-osdetect.c  OS type from an ISO (libosinfo)
 *   mgr-settings.c   the settings dialog
 *   mgr-snapshots.c  the snapshots window;  mgr-media.c  the media manager;  mgr-clone.c  cloning
 *   mgr-util.c       error and confirmation dialogs, inline field errors, background jobs with progress
 *   mgr-validate.c   input checks shared by the dialogs (no GTK; unit-tested in testcase/)
 *
 * Threads: GTK runs on the main thread only.  Anything that may take long (creating or copying
 * disks, snapshots, talking to a VM, loading 50 settings files) runs as an mgr_job on a worker
 * thread and reports back on the main thread.
 *
 * Accessibility names (the GUI tests drive the program through AT-SPI, tests/lib/mgr_gui.py):
 * every button, menu item, tab and check box is found by its label; every entry, spin button,
 * combo box and text view gets the name of the label in front of it through mgr_a11y_name() (the
 * name without the colon or mnemonic: "Name", "Memory (MiB)").  An inline error (mgr_field_error)
 * is a label whose accessible name is its text and whose accessible description is
 * "error: <field name>"; it is hidden while the field is valid.
 */

struct mgr_model;

struct mgr_app {
    GtkApplication *gtk;
    GtkWindow *window;            /* the main window (NULL before it exists, and in --new etc. alone) */
    struct mgr_model *model;
    char *program_dir;            /* where vireo-vm and vireo-manage are (malloc'ed) */
    struct cfg_ostypes *ostypes;  /* the OS type presets (loaded at start; never NULL after) */
};

/* ---- The machine list (mgr-model.c) ------------------------------------------------------------ */

struct mgr_vm {
    struct rt_uuid uuid;
    char uuid_str[RT_UUID_STR_LEN];
    char *path;                   /* settings file */
    struct cfg_machine *cfg;      /* as last loaded; NULL when the file cannot be read (see error) */
    char *error;                  /* why the file cannot be read, else NULL */
    enum cfg_machine_state state; /* live: aborted when the file says running but no process holds the run lock */
    bool running;                 /* a vireo-vm holds the run lock (running, paused or busy saving) */
    GdkPixbuf *thumbnail;         /* the last screenshot of a running machine, scaled to MGR_THUMB_W wide; NULL */
    int64_t thumbnail_time;       /* g_get_real_time() of the screenshot */
};

#define MGR_THUMB_W 160
#define MGR_POLL_MS 1000          /* registry and run-lock polling */
#define MGR_THUMB_MS 2000         /* screenshots of running machines */

/* The model loads the registry on a worker thread and then polls it; listeners hear about changes on
 * the main thread.  vm NULL: the list itself changed (machines added or removed, or the first load). */
typedef void mgr_model_listener_fn(void *opaque, struct mgr_vm *vm);
struct mgr_model *mgr_model_new(void);
void mgr_model_free(struct mgr_model *m);
void mgr_model_listen(struct mgr_model *m, mgr_model_listener_fn *fn, void *opaque);
/* Starts loading and polling (returns at once). */
void mgr_model_start(struct mgr_model *m);
/* Re-reads the registry and every machine file now (after the manager changed something); returns at once. */
void mgr_model_refresh(struct mgr_model *m);
/* Whether the first load has finished. */
bool mgr_model_loaded(const struct mgr_model *m);
size_t mgr_model_count(const struct mgr_model *m);
struct mgr_vm *mgr_model_get(struct mgr_model *m, size_t index);
struct mgr_vm *mgr_model_find(struct mgr_model *m, const struct rt_uuid *uuid);
/* A registry load error to show (NULL when fine). */
const char *mgr_model_error(const struct mgr_model *m);

/* Refreshes the model and, with uuid, selects that machine in the main window once it is listed. */
void mgr_app_refresh(struct mgr_app *app, const struct rt_uuid *select);

/* The main window calls this once the first load is listed and drawn (the window is usable): vireo
 * --startup-time prints the time since the program started and quits; pending --settings/--snapshots/
 * --media/--new requests open then. */
void mgr_app_list_ready(struct mgr_app *app);

/* ---- Windows and dialogs --------------------------------------------------------------------------- */

/* The main window (mgr-window.c); shows it. */
GtkWindow *mgr_window_new(struct mgr_app *app);
/* Starts a machine: vireo-vm with the console window, or headless.  Errors are shown as dialogs. */
void mgr_window_start_vm(struct mgr_app *app, const struct rt_uuid *uuid, bool headless);

/* The new machine assistant (mgr-newvm.c), modal on parent; on success the machine is registered and selected. */
void mgr_newvm_run(struct mgr_app *app, GtkWindow *parent);
/* The settings dialog of a machine (mgr-settings.c), modal on parent. */
void mgr_settings_run(struct mgr_app *app, GtkWindow *parent, const struct rt_uuid *uuid);
/* The snapshots window of a machine (mgr-snapshots.c); one per machine (a second call presents it). */
void mgr_snapshots_show(struct mgr_app *app, GtkWindow *parent, const struct rt_uuid *uuid);
/* The Clone Machine dialog (mgr-clone.c), modal on parent; the copy runs as a job and the clone is selected. */
void mgr_clone_run(struct mgr_app *app, GtkWindow *parent, const struct rt_uuid *uuid);
/* The media manager (mgr-media.c); one at a time. */
void mgr_media_show(struct mgr_app *app, GtkWindow *parent);

/* ---- OS detection (mgr-osdetect.c) ------------------------------------------------------------------- */

/*
 * Guesses the OS type preset id ("Debian_64") for an installation ISO: libosinfo with osinfo-db first,
 * then the ISO's volume label and boot files.  Returns NULL when nothing fits (the caller keeps its
 * choice); *how (may be NULL) gets a short text for people, malloc'ed: "Debian 12 (libosinfo)" or
 * "a Linux boot CD (isolinux, 64-bit kernel)".
 */
char *mgr_osdetect(const struct cfg_ostypes *types, const char *iso_path, char **how);

/* ---- Shared widgets and dialogs (mgr-util.c) --------------------------------------------------------- */

/* Sets a widget's accessible name (and tooltip-less description when desc is not NULL). */
void mgr_a11y_name(GtkWidget *w, const char *name, const char *desc);
/* An inline error label for the field named field (accessible description "error: <field>"), hidden. */
GtkWidget *mgr_field_error_new(const char *field);
/* Shows msg in the error label (hides it for NULL or ""). */
void mgr_field_error_set(GtkWidget *label, const char *msg);

/* A sentence on a page or in a dialog: wraps at 70 characters, left aligned. */
GtkWidget *mgr_note(const char *text);
/*
 * Connects a button whose handler opens a modal dialog (a file chooser, a question): fn runs from an idle callback
 * once the click is over, and not at all when the button's window closed meanwhile.  A click that arrives through
 * the accessibility bus (screen readers, the GUI tests) is emitted while that bus's message is dispatched; a nested
 * dialog loop inside it would stall the whole accessibility connection until the dialog closes.
 */
typedef void mgr_click_fn(GtkButton *button, gpointer opaque);
void mgr_on_click(GtkWidget *button, mgr_click_fn *fn, gpointer opaque);
/* A modal dialog on parent with Cancel and ok_label (GTK_RESPONSE_OK, the default, so Enter in a field accepts);
 * *ok gets that button, for the caller to make sensitive only while the input is valid.  The caller runs it. */
GtkWidget *mgr_dialog_new(GtkWindow *parent, const char *title, const char *ok_label, GtkWidget **ok);
/* The grid of a dialog's form: 6 pixels between rows, 12 between columns and around. */
GtkWidget *mgr_form_grid(void);
/* A field's label with a mnemonic ("_File:"), right-aligned in column 0 of row. */
GtkWidget *mgr_form_label(GtkWidget *grid, int row, const char *text, GtkWidget *field);

/* Adds a filter called name matching the NULL-terminated patterns ("*.iso") to a file chooser dialog. */
void mgr_file_filter_add(GtkWidget *chooser, const char *name, const char *const *patterns);
/* Runs a file chooser dialog and destroys it: the chosen file (g_free), NULL when cancelled. */
char *mgr_file_chooser_run(GtkWidget *chooser);

/* A readable error dialog: what failed ("Cannot create the machine 'x'") as the title line and the
 * detail (an error message from src/Main, may be NULL) plus the code's text below.  Modal, returns when closed. */
void mgr_error(GtkWindow *parent, const char *what, int rc, const char *detail);
/* A yes/no question; true when the person pressed the button labelled yes. */
bool mgr_confirm(GtkWindow *parent, const char *question, const char *detail, const char *yes, bool destructive);

/*
 * Background jobs: fn runs on a worker thread; while it runs a modal progress dialog titled title
 * (a bar that pulses until mgr_job_progress reports numbers) keeps the window responsive.  When fn
 * fails (rc < 0) its error is shown with mgr_error(parent, failed_what, rc, err->msg); then done (may
 * be NULL) runs on the main thread with the result.
 */
struct mgr_job;
typedef int mgr_job_fn(struct mgr_job *job, void *opaque, struct cfg_error *err);
typedef void mgr_job_done_fn(void *opaque, int rc, const struct cfg_error *err);
void mgr_job_run(GtkWindow *parent, const char *title, const char *failed_what, mgr_job_fn *fn,
                 mgr_job_done_fn *done, void *opaque);
/* Thread-safe; total 0 keeps the bar pulsing.  Has the blk_progress_fn shape (opaque = the job). */
void mgr_job_progress(void *job, uint64_t done, uint64_t total);
/* Changes the dialog's line of text (thread-safe). */
void mgr_job_status(struct mgr_job *job, const char *text);

/*
 * A window whose data its queued clicks and background jobs use after the click returned (the snapshots window,
 * the media manager): counted so the data outlives a window closed while a job runs, with busy set while a
 * button's handler (and its modal dialogs) runs so the window does not replace data the handler points into.
 * owner is the window's own struct, passed to the callbacks; settled (may be NULL) runs when no handler is busy
 * any more and the window is still open (to catch up on a reload put off meanwhile); release frees the owner.
 */
struct mgr_winref {
    int refs;   /* the window, each running job and each queued click */
    bool closed;
    int busy;
    void *owner;
    void (*reload)(void *owner);
    void (*settled)(void *owner);
    void (*release)(void *owner);
};
/* refs starts at 1: the window's own reference, given up by mgr_winref_close. */
void mgr_winref_init(struct mgr_winref *r, void *owner, void (*reload)(void *owner), void (*settled)(void *owner),
                     void (*release)(void *owner));
void mgr_winref_ref(struct mgr_winref *r);
void mgr_winref_unref(struct mgr_winref *r);
/* The window is gone (its "destroy"): marks it closed and gives up the window's reference. */
void mgr_winref_close(struct mgr_winref *r);
/* Runs fn(owner) through mgr_on_click (after the click, only while the window shows), counted as busy. */
void mgr_winref_on_click(struct mgr_winref *r, GtkWidget *button, void (*fn)(void *owner));
/* A background job of the window ended (the end of its mgr_job_done_fn): reloads the window and the machine list
 * unless the window closed, and gives up the job's reference. */
void mgr_winref_job_done(struct mgr_winref *r, struct mgr_app *app);

/* "1.5 GiB", "512 MiB" (buf of at least 32 bytes; mgr-validate.c, no GTK). */
const char *mgr_format_size(uint64_t bytes, char *buf, size_t size);
/* "Powered Off", "Saved", "Running", "Paused", "Aborted". */
const char *mgr_state_label(enum cfg_machine_state state);
/* The icon name (a standard one of the Adwaita theme) for an OS type's family. */
const char *mgr_os_icon_name(const struct cfg_ostypes *types, const char *ostype);
/* Vireo.xml, or NULL when it is missing or cannot be read (the caller falls back to the defaults). */
struct cfg_global *mgr_global_load(void);
/* The folder new machines go to: Vireo.xml's preference, else the built-in default (free() it). */
char *mgr_default_machine_folder(void);

/* ---- Input checks (mgr-validate.c, no GTK) -------------------------------------------------------------- */

/* Each returns true when the value is fine; otherwise false with a sentence for people in why. */
#define MGR_WHY_MAX 512
/* A new machine's name: valid as a file name, not registered already, and base_folder/name not existing. */
bool mgr_check_new_name(const char *name, const char *base_folder, char why[MGR_WHY_MAX]);
/* A renamed machine's name: valid, and no other registered machine (other than uuid) has it. */
bool mgr_check_rename(const char *name, const struct rt_uuid *uuid, char why[MGR_WHY_MAX]);
/* A folder where machines are created: exists (or can be created below an existing writable folder) and is writable. */
bool mgr_check_folder(const char *folder, char why[MGR_WHY_MAX]);
/* An installation medium: a readable ISO 9660 image (an empty path is fine: none). */
bool mgr_check_iso(const char *path, char why[MGR_WHY_MAX]);
/* Memory: 4 MiB at least and at most the host's RAM (MiB). */
bool mgr_check_memory(uint64_t mib, uint64_t host_mib, char why[MGR_WHY_MAX]);
/* CPUs: 1 .. min(32, host CPUs). */
bool mgr_check_cpus(unsigned cpus, unsigned host_cpus, char why[MGR_WHY_MAX]);
/* A new disk's size: above zero, at most 64 TiB; and for a fixed one, room on the filesystem of folder. */
bool mgr_check_disk_size(uint64_t bytes, bool fixed, const char *folder, char why[MGR_WHY_MAX]);
/* A TCP port for VNC/RDP: 0 (automatic) or 1024-65535. */
bool mgr_check_port(unsigned port, char why[MGR_WHY_MAX]);
/* The host's RAM in MiB and its online CPUs. */
uint64_t mgr_host_memory_mib(void);
unsigned mgr_host_cpus(void);

#endif
