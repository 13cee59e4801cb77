/* mgr-clone.c - the Clone Machine dialog: a new name, full or linked, current state or everything; the copy runs as a background job with progress. */

#include <stdlib.h>
#include <string.h>

#include "mgr.h"
#include "vireo/err.h"

struct mgr_clone {
    struct mgr_app *app;
    GtkWidget *dialog, *name, *name_err, *folder, *folder_err, *full, *linked, *current, *all, *ok;
    struct rt_uuid src;
    char src_name[256];
    bool has_snapshots;
};

/* What the job needs, copied out of the widgets (the dialog is gone by the time it runs). */
struct mgr_clone_job {
    struct mgr_app *app;
    struct rt_uuid src, made;
    char *name, *folder;
    enum mach_clone_mode mode;
    bool linked;
};

static void mgr_clone_validate(struct mgr_clone *c)
{
    char why[MGR_WHY_MAX];
    const char *folder = gtk_entry_get_text(GTK_ENTRY(c->folder));
    bool ok_folder = mgr_check_folder(folder, why);
    mgr_field_error_set(c->folder_err, ok_folder ? NULL : why);
    bool ok_name = mgr_check_new_name(gtk_entry_get_text(GTK_ENTRY(c->name)), ok_folder ? folder : NULL, why);
    mgr_field_error_set(c->name_err, ok_name ? NULL : why);
    /* A linked clone shares the source's disks through a new snapshot: it has the current state only. */
    bool linked = gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(c->linked));
    gtk_widget_set_sensitive(c->all, !linked && c->has_snapshots);
    if (linked)
        gtk_toggle_button_set_active(GTK_TOGGLE_BUTTON(c->current), TRUE);
    gtk_widget_set_sensitive(c->ok, ok_name && ok_folder);
}

static void mgr_clone_changed(GtkWidget *w, gpointer opaque)
{
    (void)w;
    mgr_clone_validate(opaque);
}

static int mgr_clone_work(struct mgr_job *job, void *opaque, struct cfg_error *err)
{
    struct mgr_clone_job *j = opaque;
    char us[RT_UUID_STR_LEN];
    rt_uuid_to_str(&j->src, us);
    mgr_job_status(job, "Copying the disks…");
    return mach_clone(us, j->name, j->mode, j->linked, true, j->folder, mgr_job_progress, job, &j->made, err);
}

static void mgr_clone_done(void *opaque, int rc, const struct cfg_error *err)
{
    (void)err;
    struct mgr_clone_job *j = opaque;
    mgr_app_refresh(j->app, rc == 0 ? &j->made : NULL);
    free(j->name);
    free(j->folder);
    free(j);
}

static GtkWidget *mgr_clone_row(GtkGrid *grid, int row, const char *label, GtkWidget *field, GtkWidget *err)
{
    GtkWidget *l = gtk_label_new(label);
    gtk_label_set_xalign(GTK_LABEL(l), 1.0f);
    gtk_grid_attach(grid, l, 0, row, 1, 1);
    gtk_widget_set_hexpand(field, TRUE);
    gtk_grid_attach(grid, field, 1, row, 1, 1);
    if (err)
        gtk_grid_attach(grid, err, 1, row + 1, 1, 1);
    return l;
}

void mgr_clone_run(struct mgr_app *app, GtkWindow *parent, const struct rt_uuid *uuid)
{
    struct cfg_machine *m = NULL;
    char *path = NULL;
    struct cfg_error err = {{0}};
    char us[RT_UUID_STR_LEN];
    rt_uuid_to_str(uuid, us);
    int rc = mach_find(us, &path, &m, &err);
    if (rc < 0) {
        mgr_error(parent, "Cannot read the machine to clone", rc, err.msg);
        return;
    }
    if (mach_is_running(path)) {
        mgr_error(parent, "The machine is running", 0,
                  "Power it off (or save its state and discard it) before cloning: its disks are in use.");
        cfg_machine_free(m);
        free(path);
        return;
    }

    struct mgr_clone c = {.app = app, .src = *uuid, .has_snapshots = m->snapshot_count > 0};
    snprintf(c.src_name, sizeof(c.src_name), "%s", m->name);
    c.dialog = mgr_dialog_new(parent, "Clone Machine", "Clone", &c.ok);
    gtk_style_context_add_class(gtk_widget_get_style_context(c.ok), "suggested-action");
    GtkWidget *grid = mgr_form_grid();
    gtk_container_add(GTK_CONTAINER(gtk_dialog_get_content_area(GTK_DIALOG(c.dialog))), grid);

    char *intro = g_strdup_printf("Make a copy of '%s' with its own name, disks and network addresses.", m->name);
    GtkWidget *l = gtk_label_new(intro);
    g_free(intro);
    gtk_label_set_xalign(GTK_LABEL(l), 0.0f);
    gtk_label_set_line_wrap(GTK_LABEL(l), TRUE);
    gtk_grid_attach(GTK_GRID(grid), l, 0, 0, 2, 1);

    c.name = gtk_entry_new();
    char *def = g_strdup_printf("%s Clone", m->name);
    gtk_entry_set_text(GTK_ENTRY(c.name), def);
    g_free(def);
    gtk_entry_set_activates_default(GTK_ENTRY(c.name), TRUE);
    mgr_a11y_name(c.name, "Name", NULL);
    c.name_err = mgr_field_error_new("Name");
    mgr_clone_row(GTK_GRID(grid), 1, "Name:", c.name, c.name_err);

    /* The clone goes beside the source by default: the folder that holds the source's machine folder. */
    char *src_folder = mach_folder(path);
    char *base = src_folder ? rt_path_dirname(src_folder) : NULL;
    c.folder = gtk_entry_new();
    gtk_entry_set_text(GTK_ENTRY(c.folder), base ? base : "");
    free(src_folder);
    free(base);
    mgr_a11y_name(c.folder, "Folder", NULL);
    c.folder_err = mgr_field_error_new("Folder");
    mgr_clone_row(GTK_GRID(grid), 3, "Folder:", c.folder, c.folder_err);

    GtkWidget *kind = gtk_box_new(GTK_ORIENTATION_VERTICAL, 2);
    c.full = gtk_radio_button_new_with_label(NULL, "Full clone (copies of every disk)");
    c.linked = gtk_radio_button_new_with_label_from_widget(GTK_RADIO_BUTTON(c.full),
                                                           "Linked clone (shares the disks through a new snapshot)");
    gtk_box_pack_start(GTK_BOX(kind), c.full, FALSE, FALSE, 0);
    gtk_box_pack_start(GTK_BOX(kind), c.linked, FALSE, FALSE, 0);
    mgr_clone_row(GTK_GRID(grid), 5, "Clone type:", kind, NULL);

    GtkWidget *what = gtk_box_new(GTK_ORIENTATION_VERTICAL, 2);
    c.current = gtk_radio_button_new_with_label(NULL, "Current machine state");
    c.all = gtk_radio_button_new_with_label_from_widget(GTK_RADIO_BUTTON(c.current), "Everything, with the snapshots");
    gtk_box_pack_start(GTK_BOX(what), c.current, FALSE, FALSE, 0);
    gtk_box_pack_start(GTK_BOX(what), c.all, FALSE, FALSE, 0);
    mgr_clone_row(GTK_GRID(grid), 6, "Snapshots:", what, NULL);

    g_signal_connect(c.name, "changed", G_CALLBACK(mgr_clone_changed), &c);
    g_signal_connect(c.folder, "changed", G_CALLBACK(mgr_clone_changed), &c);
    g_signal_connect(c.linked, "toggled", G_CALLBACK(mgr_clone_changed), &c);
    mgr_clone_validate(&c);
    gtk_widget_show_all(c.dialog);
    cfg_machine_free(m);
    free(path);

    if (gtk_dialog_run(GTK_DIALOG(c.dialog)) != GTK_RESPONSE_OK) {
        gtk_widget_destroy(c.dialog);
        return;
    }
    struct mgr_clone_job *j = calloc(1, sizeof(*j));
    if (!j) {
        gtk_widget_destroy(c.dialog);
        mgr_error(parent, "Cannot clone the machine", VERR_NO_MEMORY, NULL);
        return;
    }
    j->app = app;
    j->src = c.src;
    j->name = strdup(gtk_entry_get_text(GTK_ENTRY(c.name)));
    j->folder = strdup(gtk_entry_get_text(GTK_ENTRY(c.folder)));
    j->linked = gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(c.linked));
    j->mode = gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(c.all)) ? MACH_CLONE_ALL : MACH_CLONE_CURRENT;
    gtk_widget_destroy(c.dialog);
    char *failed = g_strdup_printf("Cannot clone '%s' as '%s'", c.src_name, j->name);
    mgr_job_run(parent, "Cloning the machine…", failed, mgr_clone_work, mgr_clone_done, j);
    g_free(failed);
}
