/* mgr-settings.h - the settings dialog's insides, shared by mgr-settings.c (dialog, pages, lists) and mgr-settings-storage.c (the storage page). */
#ifndef VIREO_MGR_SETTINGS_H
#define VIREO_MGR_SETTINGS_H

#include "mgr.h"

enum mgr_set_page {
    MGR_PG_GENERAL = 0, MGR_PG_SYSTEM, MGR_PG_DISPLAY, MGR_PG_STORAGE, MGR_PG_AUDIO, MGR_PG_NETWORK, MGR_PG_USB,
    MGR_PG_SHARED, MGR_PG_COUNT
};

/* Every value that can be invalid; OK stays insensitive while any is. */
enum mgr_set_field_id {
    MGR_F_NAME = 0, MGR_F_MEMORY, MGR_F_CPUS, MGR_F_VRAM, MGR_F_VNC_PORT, MGR_F_RDP_PORT, MGR_F_ADDRESS,
    MGR_F_MAC1, MGR_F_COUNT = MGR_F_MAC1 + CFG_MAX_NICS
};

struct mgr_set_field {
    GtkWidget *error;       /* its inline error label */
    enum mgr_set_page page;
    bool invalid;
};

struct mgr_settings {
    struct mgr_app *app;
    GtkWidget *dialog, *ok, *notebook, *net_notebook;
    GtkWidget *tab_icon[MGR_PG_COUNT];
    struct cfg_machine *m;  /* the private copy being edited */
    char *path;             /* its settings file */
    char *loaded_name;      /* the machine's name as loaded (the Name field may change it) */
    char uuid_str[RT_UUID_STR_LEN];
    bool running;           /* a vireo-vm runs it: only the description can change */
    bool hw_locked;         /* running, paused or saved: hardware stays as it is */
    int exec;               /* the preferred engine: index into the engine names */
    struct mgr_set_field fields[MGR_F_COUNT];
    bool finishing;         /* OK or Cancel is being handled (from an idle callback) */
    bool destroyed;         /* the dialog is being or has been destroyed: handlers do nothing more */
    bool freeing;           /* the state is freed from an idle callback (after the widgets' last signals) */
    void *owned[CFG_MAX_NICS + 2]; /* the network pages' and the two lists' state (g_free'd with the dialog's) */
    int jobs;               /* background jobs (disk creation) still running: no OK or Cancel meanwhile */

    /* Storage page (mgr-settings-storage.c) */
    GtkTreeStore *st_store;
    GtkWidget *st_view, *st_remove_ctl, *st_add_hdd, *st_add_dvd, *st_remove_att, *st_choose_iso, *st_eject;
    GtkWidget *st_slot, *st_ssd, *st_hotplug, *st_info;
    bool st_updating;       /* the attribute editors are being filled in: ignore their signals */
    struct rt_uuid *created; /* hard disks this dialog created: deleted again unless attached when OK saves */
    size_t created_count;
};

/* Marks a field invalid (why != NULL: shows it inline) or valid, and updates OK and the tab icons. */
void mgr_set_invalid(struct mgr_settings *s, enum mgr_set_field_id id, const char *why);
/* OK is sensitive when nothing is invalid and no job runs; tabs with errors show their warning icon. */
void mgr_set_update_ok(struct mgr_settings *s);
/* A grid row: a label and the widget named after it (the widget spans the remaining columns). */
void mgr_set_row(GtkWidget *grid, int *row, const char *label, GtkWidget *w);
/* Gives each page tab of a notebook its menu label text as a fixed accessible name: the tab keeps its name
 * whatever sits beside its label (the warning icon). */
void mgr_set_name_tabs(GtkWidget *notebook);

/* Page building blocks (mgr-settings.c; a page's grid is mgr_form_grid). */
/* The inline error of a field, in the grid row under it. */
void mgr_set_error_row(struct mgr_settings *s, GtkWidget *grid, int *row, enum mgr_set_field_id id, const char *field,
                       enum mgr_set_page page);
/* Replaces a heap string field (NULL for an empty value). */
int mgr_set_replace(char **field, const char *v);
/* A check box bound to a bool of the private copy. */
GtkWidget *mgr_set_check(const char *label, bool *target);
/* A combo of labels standing for values[i] of an enum field of the private copy. */
GtkWidget *mgr_set_enum_combo(const char *const *labels, const unsigned *values, size_t count, void *target);
/* w is sensitive while the check box is active. */
void mgr_set_depends(GtkWidget *check, GtkWidget *w);
GtkWidget *mgr_set_spin(double lo, double hi, double value);
unsigned mgr_set_spin_value(GtkWidget *sp);

/* The pages of mgr-settings-devices.c (lists: the USB filter and shared folder lists' state, owned by the dialog). */
struct mgr_list;
GtkWidget *mgr_set_audio_page(struct mgr_settings *s);
GtkWidget *mgr_set_network_page(struct mgr_settings *s);
GtkWidget *mgr_set_usb_page(struct mgr_settings *s, struct mgr_list *l);
GtkWidget *mgr_set_shared_page(struct mgr_settings *s, struct mgr_list *l);
/* Space for one list's state (the pages keep a pointer to it). */
struct mgr_list *mgr_set_list_new(void);

/* The storage page; and, on OK or Cancel, disks created here that are not attached are deleted again. */
GtkWidget *mgr_set_storage_page(struct mgr_settings *s);
void mgr_set_storage_cleanup(struct mgr_settings *s, bool saved);
/* Frees the state once the dialog is destroyed and no job or pending response refers to it. */
void mgr_set_release(struct mgr_settings *s);

#endif
