/* mgr-snapshots.c - the snapshots window of a machine: the snapshot tree with the current state, details, and taking, restoring and deleting snapshots. */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "mgr.h"
#include "vireo/err.h"
#include "vireo/rt.h"

/*
 * One window per machine, kept in a list so a second request presents it and the model's machine events
 * reach it.  The window reloads the machine file itself (mach_find) whenever the file's mtime changes, after
 * each of its own operations and when the model reports the machine: snapshots are also taken by
 * vireo-manage and by the machine's vireo-vm, and the tree must show what is on disk.
 */

enum { COL_NAME, COL_TAKEN, COL_ONLINE, COL_UUID, COL_WEIGHT, COL_COUNT };
#define MGR_CURRENT_STATE "Current State"

struct mgr_snapwin {
    struct mgr_app *app;
    struct rt_uuid uuid;
    char uuid_str[RT_UUID_STR_LEN];
    char *path;            /* settings file (malloc'ed), NULL until the first load */
    struct cfg_machine *m; /* as last loaded, NULL when it cannot be read */
    GtkWindow *win;
    GtkTreeStore *store;
    GtkTreeView *view;
    GtkWidget *details, *take, *restore, *del;
    struct timespec mtime;
    guint timer;
    struct mgr_winref ref; /* ref.busy: a button's handler (with its dialogs) runs: sw->m must stay as it is */
    bool reload_pending;
    bool was_running;
};

static GList *g_snapwins;
static bool g_snap_listening;

static void mgr_snap_free(void *opaque)
{
    struct mgr_snapwin *sw = opaque;
    cfg_machine_free(sw->m);
    free(sw->path);
    g_free(sw);
}

/* "2026-11-22 18:30:05" in local time. */
static void mgr_snap_time(uint64_t ns, char *buf, size_t size)
{
    time_t t = (time_t)(ns / 1000000000u);
    struct tm tm;
    if (!ns || !localtime_r(&t, &tm) || !strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm))
        snprintf(buf, size, "unknown");
}

static int mgr_snap_count(const struct cfg_snapshot *s, size_t n)
{
    int c = 0;
    for (size_t i = 0; i < n; i++)
        c += 1 + mgr_snap_count(s[i].children, s[i].child_count);
    return c;
}

/* ---- The tree ------------------------------------------------------------------------------------------ */

static void mgr_snap_add(struct mgr_snapwin *sw, GtkTreeIter *parent, const struct cfg_snapshot *s)
{
    char when[64], us[RT_UUID_STR_LEN];
    mgr_snap_time(s->time_ns, when, sizeof(when));
    rt_uuid_to_str(&s->uuid, us);
    bool current = !memcmp(&s->uuid, &sw->m->current_snapshot, sizeof(s->uuid));
    GtkTreeIter it;
    gtk_tree_store_append(sw->store, &it, parent);
    gtk_tree_store_set(sw->store, &it, COL_NAME, s->name, COL_TAKEN, when, COL_ONLINE, s->online ? "online" : "",
                       COL_UUID, us, COL_WEIGHT, current ? PANGO_WEIGHT_BOLD : PANGO_WEIGHT_NORMAL, -1);
    for (size_t i = 0; i < s->child_count; i++)
        mgr_snap_add(sw, &it, &s->children[i]);
    /* As VirtualBox shows it: the current state is the last child of the current snapshot. */
    if (current) {
        GtkTreeIter cur;
        gtk_tree_store_append(sw->store, &cur, &it);
        gtk_tree_store_set(sw->store, &cur, COL_NAME, MGR_CURRENT_STATE, COL_TAKEN, "", COL_ONLINE, "", COL_UUID, "",
                           COL_WEIGHT, PANGO_WEIGHT_NORMAL, -1);
    }
}

static bool mgr_snap_find_row(GtkTreeModel *model, GtkTreeIter *parent, const char *uuid, GtkTreeIter *out)
{
    GtkTreeIter it;
    if (!gtk_tree_model_iter_children(model, &it, parent))
        return false;
    do {
        char *u = NULL;
        gtk_tree_model_get(model, &it, COL_UUID, &u, -1);
        bool hit = u && !strcmp(u, uuid);
        g_free(u);
        if (hit || mgr_snap_find_row(model, &it, uuid, out)) {
            if (hit)
                *out = it;
            return true;
        }
    } while (gtk_tree_model_iter_next(model, &it));
    return false;
}

/* The selected row's snapshot UUID string (g_free), "" for the current state, NULL when nothing is selected. */
static char *mgr_snap_selected(struct mgr_snapwin *sw)
{
    GtkTreeModel *model;
    GtkTreeIter it;
    if (!gtk_tree_selection_get_selected(gtk_tree_view_get_selection(sw->view), &model, &it))
        return NULL;
    char *u = NULL;
    gtk_tree_model_get(model, &it, COL_UUID, &u, -1);
    return u;
}

static struct cfg_snapshot *mgr_snap_selected_snapshot(struct mgr_snapwin *sw)
{
    char *u = mgr_snap_selected(sw);
    struct rt_uuid uuid;
    struct cfg_snapshot *s = NULL;
    if (u && *u && sw->m && rt_uuid_parse(u, &uuid) == 0)
        s = cfg_snapshot_find(sw->m, &uuid);
    g_free(u);
    return s;
}

/* Memory, CPUs and disks of a hardware description, for the details. */
static void mgr_snap_hw_text(GString *s, const struct cfg_hardware *hw, struct cfg_global *g)
{
    g_string_append_printf(s, "Memory: %" PRIu64 " MiB    CPUs: %u\n", hw->memory_mib, hw->cpus);
    bool any = false;
    for (size_t i = 0; i < hw->attachment_count; i++) {
        const struct cfg_attachment *a = &hw->attachments[i];
        if (a->type != CFG_MEDIUM_HDD)
            continue;
        struct cfg_medium *md = g ? cfg_medium_find(g, &a->medium) : NULL;
        char us[RT_UUID_STR_LEN];
        rt_uuid_to_str(&a->medium, us);
        /* A differencing image is named by a UUID; its base is the file people know. */
        struct cfg_medium *base = md;
        while (g && base && !rt_uuid_is_null(&base->parent) && cfg_medium_find(g, &base->parent))
            base = cfg_medium_find(g, &base->parent);
        g_string_append_printf(s, "Disk %s port %u: %s", a->controller, a->port,
                               base ? rt_path_basename(base->location) : us);
        if (md && md != base)
            g_string_append_printf(s, " (through %s)", rt_path_basename(md->location));
        g_string_append_c(s, '\n');
        any = true;
    }
    if (!any)
        g_string_append(s, "Disks: none\n");
}

static void mgr_snap_update_details(struct mgr_snapwin *sw)
{
    GString *s = g_string_new(NULL);
    struct cfg_global *g = mgr_global_load();
    char *u = mgr_snap_selected(sw);
    struct cfg_snapshot *snap = mgr_snap_selected_snapshot(sw);
    bool running = sw->path && mach_is_running(sw->path);
    sw->was_running = running;
    if (!sw->m) {
        g_string_append(s, "The machine's settings cannot be read.");
    } else if (snap) {
        char when[64];
        mgr_snap_time(snap->time_ns, when, sizeof(when));
        g_string_append_printf(
            s, "Name: %s\nTaken: %s\n%s\n", snap->name, when,
            snap->online
                ? "Online: taken while the machine was running; after a restore, starting it resumes from that moment"
                : "Offline: taken while the machine was powered off");
        mgr_snap_hw_text(s, &snap->hw, g);
        g_string_append_printf(s, "Description: %s",
                               snap->description && *snap->description ? snap->description : "(none)");
    } else if (u) {
        g_string_append_printf(s, "Current state of %s: %s\n", sw->m->name,
                               running ? "running" : mgr_state_label(sw->m->state));
        mgr_snap_hw_text(s, &sw->m->hw, g);
        size_t n = (size_t)mgr_snap_count(sw->m->snapshots, sw->m->snapshot_count);
        g_string_append_printf(s, "Snapshots: %zu", n);
    } else {
        g_string_append(s, "Select a snapshot to see its details.");
    }
    gtk_label_set_text(GTK_LABEL(sw->details), s->str);
    g_string_free(s, TRUE);
    gtk_widget_set_sensitive(sw->restore, snap != NULL);
    gtk_widget_set_sensitive(sw->del, snap != NULL);
    gtk_widget_set_sensitive(sw->take, sw->m != NULL);
    g_free(u);
    cfg_global_free(g);
}

static void mgr_snap_reload(struct mgr_snapwin *sw)
{
    if (sw->ref.busy) {
        sw->reload_pending = true; /* after the dialog: the handler holds pointers into sw->m */
        return;
    }
    sw->reload_pending = false;
    char *keep = mgr_snap_selected(sw);
    struct cfg_machine *m = NULL;
    char *path = NULL;
    struct cfg_error err = {{0}};
    if (mach_find(sw->uuid_str, &path, &m, &err) == 0) {
        cfg_machine_free(sw->m);
        sw->m = m;
        free(sw->path);
        sw->path = path;
        struct stat st;
        if (stat(path, &st) == 0)
            sw->mtime = st.st_mtim;
        char title[300];
        snprintf(title, sizeof(title), "%s - Snapshots", m->name);
        gtk_window_set_title(sw->win, title);
    } else {
        cfg_machine_free(sw->m);
        sw->m = NULL;
    }
    gtk_tree_store_clear(sw->store);
    if (sw->m) {
        for (size_t i = 0; i < sw->m->snapshot_count; i++)
            mgr_snap_add(sw, NULL, &sw->m->snapshots[i]);
        if (!sw->m->snapshot_count) {
            GtkTreeIter cur;
            gtk_tree_store_append(sw->store, &cur, NULL);
            gtk_tree_store_set(sw->store, &cur, COL_NAME, MGR_CURRENT_STATE, COL_TAKEN, "", COL_ONLINE, "", COL_UUID,
                               "", COL_WEIGHT, PANGO_WEIGHT_NORMAL, -1);
        }
    }
    gtk_tree_view_expand_all(sw->view);
    GtkTreeIter it;
    GtkTreeModel *model = GTK_TREE_MODEL(sw->store);
    /* Keep the selection; a deleted snapshot's row gives way to the current state. */
    if ((keep && mgr_snap_find_row(model, NULL, keep, &it)) || mgr_snap_find_row(model, NULL, "", &it))
        gtk_tree_selection_select_iter(gtk_tree_view_get_selection(sw->view), &it);
    g_free(keep);
    mgr_snap_update_details(sw);
}

static gboolean mgr_snap_poll(gpointer opaque)
{
    struct mgr_snapwin *sw = opaque;
    struct stat st;
    if (sw->path && stat(sw->path, &st) == 0 &&
        (st.st_mtim.tv_sec != sw->mtime.tv_sec || st.st_mtim.tv_nsec != sw->mtime.tv_nsec))
        mgr_snap_reload(sw);
    else if (sw->path && mach_is_running(sw->path) != sw->was_running)
        mgr_snap_update_details(sw); /* the details say whether it runs */
    return G_SOURCE_CONTINUE;
}

static void mgr_snap_model_event(void *opaque, struct mgr_vm *vm)
{
    (void)opaque;
    for (GList *l = g_snapwins; l; l = l->next) {
        struct mgr_snapwin *sw = l->data;
        if (!vm || !memcmp(&vm->uuid, &sw->uuid, sizeof(sw->uuid)))
            mgr_snap_reload(sw);
    }
}

/* ---- Jobs ------------------------------------------------------------------------------------------------- */

struct mgr_snap_op {
    struct mgr_snapwin *sw;
    char *path;
    struct rt_uuid vm_uuid;
    bool online;              /* take: ask the running machine's vireo-vm */
    char *name, *description; /* take */
    char *target;             /* restore/delete: the snapshot's UUID string */
    char *first_name;         /* restore: take a snapshot of the current state under this name first */
};

static void mgr_snap_op_done(void *opaque, int rc, const struct cfg_error *err)
{
    (void)rc;
    (void)err;
    struct mgr_snap_op *op = opaque;
    mgr_winref_job_done(&op->sw->ref, op->sw->app);
    free(op->path);
    g_free(op->name);
    g_free(op->description);
    g_free(op->target);
    g_free(op->first_name);
    g_free(op);
}

static struct mgr_snap_op *mgr_snap_op_new(struct mgr_snapwin *sw)
{
    struct mgr_snap_op *op = g_new0(struct mgr_snap_op, 1);
    op->sw = sw;
    mgr_winref_ref(&sw->ref);
    op->path = strdup(sw->path);
    op->vm_uuid = sw->uuid;
    return op;
}

static int mgr_snap_take_job(struct mgr_job *job, void *opaque, struct cfg_error *err)
{
    (void)job;
    struct mgr_snap_op *op = opaque;
    struct rt_uuid uuid;
    if (!op->online)
        return mach_snapshot_take(op->path, op->name, op->description, NULL, false, &uuid, err);
    /* A running machine's snapshot holds its memory: only its own process can take it (vmctl.h). */
    mgr_job_status(job, "Saving the machine's state...");
    char errmsg[256];
    int rc = vmctl_snapshot_take(&op->vm_uuid, op->name, op->description, NULL, errmsg);
    if (rc < 0)
        snprintf(err->msg, sizeof(err->msg), "The running machine did not take the snapshot: %s",
                 errmsg[0] ? errmsg : rt_err_str(rc));
    return rc < 0 ? rc : 0;
}

static int mgr_snap_restore_job(struct mgr_job *job, void *opaque, struct cfg_error *err)
{
    struct mgr_snap_op *op = opaque;
    if (op->first_name) {
        mgr_job_status(job, "Taking a snapshot of the current state...");
        struct rt_uuid uuid;
        int rc = mach_snapshot_take(op->path, op->first_name, "The state before a snapshot was restored", NULL, false,
                                    &uuid, err);
        if (rc < 0)
            return rc;
    }
    mgr_job_status(job, "Restoring the snapshot...");
    return mach_snapshot_restore(op->path, op->target, err);
}

static int mgr_snap_delete_job(struct mgr_job *job, void *opaque, struct cfg_error *err)
{
    struct mgr_snap_op *op = opaque;
    mgr_job_status(job, "Merging the snapshot's disk changes...");
    return mach_snapshot_delete(op->path, op->target, mgr_job_progress, job, err);
}

/* ---- Take ---------------------------------------------------------------------------------------------- */

struct mgr_take_dlg {
    GtkWidget *ok, *name, *name_err;
};

static void mgr_take_check(GtkEditable *e, gpointer opaque)
{
    (void)e;
    struct mgr_take_dlg *d = opaque;
    const char *name = gtk_entry_get_text(GTK_ENTRY(d->name));
    bool blank = true;
    for (const char *p = name; *p; p++)
        if (*p != ' ' && *p != '\t')
            blank = false;
    mgr_field_error_set(d->name_err, blank ? "The snapshot needs a name." : NULL);
    gtk_widget_set_sensitive(d->ok, !blank);
}

static void mgr_snap_take_clicked(void *opaque)
{
    struct mgr_snapwin *sw = opaque;
    if (!sw->m)
        return;
    struct mgr_take_dlg d;
    GtkWidget *dlg = mgr_dialog_new(sw->win, "Take Snapshot", "OK", &d.ok);
    GtkWidget *grid = mgr_form_grid();
    d.name = gtk_entry_new();
    gtk_entry_set_activates_default(GTK_ENTRY(d.name), TRUE);
    gtk_widget_set_hexpand(d.name, TRUE);
    mgr_form_label(grid, 0, "Snapshot _name:", d.name);
    mgr_a11y_name(d.name, "Snapshot name", NULL);
    char def[64];
    snprintf(def, sizeof(def), "Snapshot %d", mgr_snap_count(sw->m->snapshots, sw->m->snapshot_count) + 1);
    gtk_entry_set_text(GTK_ENTRY(d.name), def);
    d.name_err = mgr_field_error_new("Snapshot name");
    gtk_grid_attach(GTK_GRID(grid), d.name, 1, 0, 1, 1);
    gtk_grid_attach(GTK_GRID(grid), d.name_err, 1, 1, 1, 1);
    GtkWidget *dl = gtk_label_new_with_mnemonic("_Description:");
    gtk_label_set_xalign(GTK_LABEL(dl), 1.0f);
    gtk_label_set_yalign(GTK_LABEL(dl), 0.0f);
    GtkWidget *tv = gtk_text_view_new();
    gtk_text_view_set_wrap_mode(GTK_TEXT_VIEW(tv), GTK_WRAP_WORD_CHAR);
    gtk_label_set_mnemonic_widget(GTK_LABEL(dl), tv);
    mgr_a11y_name(tv, "Description", NULL);
    GtkWidget *sc = gtk_scrolled_window_new(NULL, NULL);
    gtk_scrolled_window_set_shadow_type(GTK_SCROLLED_WINDOW(sc), GTK_SHADOW_IN);
    gtk_widget_set_size_request(sc, 360, 100);
    gtk_container_add(GTK_CONTAINER(sc), tv);
    gtk_grid_attach(GTK_GRID(grid), dl, 0, 2, 1, 1);
    gtk_grid_attach(GTK_GRID(grid), sc, 1, 2, 1, 1);
    bool running = mach_is_running(sw->path);
    if (running) {
        GtkWidget *note = gtk_label_new("The machine is running: the snapshot includes its memory, and the machine "
                                        "pauses while its state is saved.");
        gtk_label_set_line_wrap(GTK_LABEL(note), TRUE);
        gtk_label_set_max_width_chars(GTK_LABEL(note), 50);
        gtk_label_set_xalign(GTK_LABEL(note), 0.0f);
        gtk_grid_attach(GTK_GRID(grid), note, 1, 3, 1, 1);
    }
    gtk_box_pack_start(GTK_BOX(gtk_dialog_get_content_area(GTK_DIALOG(dlg))), grid, TRUE, TRUE, 0);
    g_signal_connect(d.name, "changed", G_CALLBACK(mgr_take_check), &d);
    mgr_take_check(NULL, &d);
    gtk_widget_show_all(dlg);
    gtk_widget_grab_focus(d.name);
    if (gtk_dialog_run(GTK_DIALOG(dlg)) == GTK_RESPONSE_OK && gtk_widget_get_sensitive(d.ok)) {
        struct mgr_snap_op *op = mgr_snap_op_new(sw);
        op->name = g_strstrip(g_strdup(gtk_entry_get_text(GTK_ENTRY(d.name))));
        GtkTextBuffer *buf = gtk_text_view_get_buffer(GTK_TEXT_VIEW(tv));
        GtkTextIter a, z;
        gtk_text_buffer_get_bounds(buf, &a, &z);
        op->description = gtk_text_buffer_get_text(buf, &a, &z, FALSE);
        op->online = running;
        gtk_widget_destroy(dlg);
        char what[300];
        snprintf(what, sizeof(what), "Cannot take snapshot '%s' of '%s'", op->name, sw->m->name);
        mgr_job_run(sw->win, "Taking Snapshot", what, mgr_snap_take_job, mgr_snap_op_done, op);
        return;
    }
    gtk_widget_destroy(dlg);
}

/* ---- Restore and delete ------------------------------------------------------------------------------------ */

static bool mgr_snap_refuse_running(struct mgr_snapwin *sw, const char *what)
{
    if (!mach_is_running(sw->path))
        return false;
    mgr_error(sw->win, what, 0,
              "Power off the machine first. A running machine's snapshots can be taken, but not restored or deleted.");
    return true;
}

static void mgr_snap_restore_clicked(void *opaque)
{
    struct mgr_snapwin *sw = opaque;
    struct cfg_snapshot *s = mgr_snap_selected_snapshot(sw);
    if (!s)
        return;
    char what[300];
    snprintf(what, sizeof(what), "Cannot restore snapshot '%s'", s->name);
    if (mgr_snap_refuse_running(sw, what))
        return;
    /* mgr_confirm has no room for the check box VirtualBox offers here, so this question is built alike. */
    GtkWidget *d = gtk_message_dialog_new(sw->win, GTK_DIALOG_MODAL | GTK_DIALOG_DESTROY_WITH_PARENT,
                                          GTK_MESSAGE_QUESTION, GTK_BUTTONS_NONE, "Restore snapshot '%s'?", s->name);
    gtk_window_set_title(GTK_WINDOW(d), "Vireo");
    gtk_message_dialog_format_secondary_text(GTK_MESSAGE_DIALOG(d),
                                             "The machine's current state is lost: its disks and settings go back to "
                                             "what they were when the snapshot was taken.");
    GtkWidget *first = gtk_check_button_new_with_label("Take a snapshot of the current state first");
    gtk_toggle_button_set_active(GTK_TOGGLE_BUTTON(first), TRUE);
    gtk_box_pack_start(GTK_BOX(gtk_message_dialog_get_message_area(GTK_MESSAGE_DIALOG(d))), first, FALSE, FALSE, 0);
    gtk_widget_show(first);
    gtk_dialog_add_button(GTK_DIALOG(d), "Cancel", GTK_RESPONSE_CANCEL);
    GtkWidget *yes = gtk_dialog_add_button(GTK_DIALOG(d), "Restore", GTK_RESPONSE_ACCEPT);
    gtk_style_context_add_class(gtk_widget_get_style_context(yes), "destructive-action");
    gtk_dialog_set_default_response(GTK_DIALOG(d), GTK_RESPONSE_CANCEL);
    int r = gtk_dialog_run(GTK_DIALOG(d));
    bool take_first = gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(first));
    gtk_widget_destroy(d);
    if (r != GTK_RESPONSE_ACCEPT)
        return;
    struct mgr_snap_op *op = mgr_snap_op_new(sw);
    char us[RT_UUID_STR_LEN];
    rt_uuid_to_str(&s->uuid, us);
    op->target = g_strdup(us);
    if (take_first)
        op->first_name = g_strdup_printf("Snapshot %d", mgr_snap_count(sw->m->snapshots, sw->m->snapshot_count) + 1);
    mgr_job_run(sw->win, "Restoring Snapshot", what, mgr_snap_restore_job, mgr_snap_op_done, op);
}

static void mgr_snap_delete_clicked(void *opaque)
{
    struct mgr_snapwin *sw = opaque;
    struct cfg_snapshot *s = mgr_snap_selected_snapshot(sw);
    if (!s)
        return;
    char what[300], question[300];
    snprintf(what, sizeof(what), "Cannot delete snapshot '%s'", s->name);
    if (mgr_snap_refuse_running(sw, what))
        return;
    snprintf(question, sizeof(question), "Delete snapshot '%s'?", s->name);
    if (!mgr_confirm(sw->win, question,
                     "The snapshot can no longer be restored. Its disk changes are merged into the state that follows "
                     "it, so nothing the machine sees now changes; with large disks this takes a while.",
                     "Delete", true))
        return;
    struct mgr_snap_op *op = mgr_snap_op_new(sw);
    char us[RT_UUID_STR_LEN];
    rt_uuid_to_str(&s->uuid, us);
    op->target = g_strdup(us);
    mgr_job_run(sw->win, "Deleting Snapshot", what, mgr_snap_delete_job, mgr_snap_op_done, op);
}

/* ---- The window --------------------------------------------------------------------------------------------- */

static void mgr_snap_reload_void(void *opaque)
{
    mgr_snap_reload(opaque);
}

/* After a button's dialog: the reload put off while it ran. */
static void mgr_snap_settled(void *opaque)
{
    struct mgr_snapwin *sw = opaque;
    if (sw->reload_pending)
        mgr_snap_reload(sw);
}

static void mgr_snap_selection_changed(GtkTreeSelection *sel, gpointer opaque)
{
    (void)sel;
    mgr_snap_update_details(opaque);
}

static void mgr_snap_destroyed(GtkWidget *w, gpointer opaque)
{
    (void)w;
    struct mgr_snapwin *sw = opaque;
    g_snapwins = g_list_remove(g_snapwins, sw);
    g_source_remove(sw->timer);
    mgr_winref_close(&sw->ref);
}

static void mgr_snap_column(GtkTreeView *view, const char *title, int col, bool expand)
{
    GtkCellRenderer *r = gtk_cell_renderer_text_new();
    GtkTreeViewColumn *c = gtk_tree_view_column_new_with_attributes(title, r, "text", col, "weight", COL_WEIGHT, NULL);
    gtk_tree_view_column_set_expand(c, expand);
    gtk_tree_view_column_set_resizable(c, TRUE);
    gtk_tree_view_append_column(view, c);
}

void mgr_snapshots_show(struct mgr_app *app, GtkWindow *parent, const struct rt_uuid *uuid)
{
    for (GList *l = g_snapwins; l; l = l->next) {
        struct mgr_snapwin *sw = l->data;
        if (!memcmp(&sw->uuid, uuid, sizeof(*uuid))) {
            gtk_window_present(sw->win);
            return;
        }
    }
    struct mgr_snapwin *sw = g_new0(struct mgr_snapwin, 1);
    sw->app = app;
    sw->uuid = *uuid;
    mgr_winref_init(&sw->ref, sw, mgr_snap_reload_void, mgr_snap_settled, mgr_snap_free);
    rt_uuid_to_str(uuid, sw->uuid_str);
    struct cfg_error err = {{0}};
    struct cfg_machine *m = NULL;
    int rc = mach_find(sw->uuid_str, &sw->path, &m, &err);
    if (rc < 0) {
        mgr_error(parent, "Cannot show the machine's snapshots", rc, err.msg);
        mgr_winref_unref(&sw->ref);
        return;
    }
    cfg_machine_free(m);

    sw->win = GTK_WINDOW(gtk_window_new(GTK_WINDOW_TOPLEVEL));
    if (parent)
        gtk_window_set_transient_for(sw->win, parent);
    gtk_window_set_default_size(sw->win, 720, 520);
    if (app->gtk)
        gtk_application_add_window(app->gtk, sw->win);
    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 8);
    gtk_container_set_border_width(GTK_CONTAINER(box), 12);

    sw->store = gtk_tree_store_new(COL_COUNT, G_TYPE_STRING, G_TYPE_STRING, G_TYPE_STRING, G_TYPE_STRING, G_TYPE_INT);
    sw->view = GTK_TREE_VIEW(gtk_tree_view_new_with_model(GTK_TREE_MODEL(sw->store)));
    g_object_unref(sw->store);
    mgr_a11y_name(GTK_WIDGET(sw->view), "Snapshots", NULL);
    mgr_snap_column(sw->view, "Name", COL_NAME, true);
    mgr_snap_column(sw->view, "Taken", COL_TAKEN, false);
    mgr_snap_column(sw->view, "State", COL_ONLINE, false);
    GtkWidget *sc = gtk_scrolled_window_new(NULL, NULL);
    gtk_scrolled_window_set_shadow_type(GTK_SCROLLED_WINDOW(sc), GTK_SHADOW_IN);
    gtk_container_add(GTK_CONTAINER(sc), GTK_WIDGET(sw->view));
    gtk_widget_set_vexpand(sc, TRUE);
    gtk_box_pack_start(GTK_BOX(box), sc, TRUE, TRUE, 0);

    GtkWidget *frame = gtk_frame_new("Details");
    sw->details = gtk_label_new("");
    gtk_label_set_xalign(GTK_LABEL(sw->details), 0.0f);
    gtk_label_set_yalign(GTK_LABEL(sw->details), 0.0f);
    gtk_label_set_line_wrap(GTK_LABEL(sw->details), TRUE);
    gtk_label_set_selectable(GTK_LABEL(sw->details), TRUE);
    gtk_widget_set_margin_start(sw->details, 8);
    gtk_widget_set_margin_end(sw->details, 8);
    gtk_widget_set_margin_top(sw->details, 4);
    gtk_widget_set_margin_bottom(sw->details, 8);
    gtk_widget_set_size_request(sw->details, -1, 130);
    mgr_a11y_name(sw->details, "Snapshot details", NULL);
    gtk_container_add(GTK_CONTAINER(frame), sw->details);
    gtk_box_pack_start(GTK_BOX(box), frame, FALSE, FALSE, 0);

    GtkWidget *buttons = gtk_button_box_new(GTK_ORIENTATION_HORIZONTAL);
    gtk_button_box_set_layout(GTK_BUTTON_BOX(buttons), GTK_BUTTONBOX_END);
    gtk_box_set_spacing(GTK_BOX(buttons), 6);
    sw->take = gtk_button_new_with_label("Take…");
    sw->restore = gtk_button_new_with_label("Restore");
    sw->del = gtk_button_new_with_label("Delete");
    GtkWidget *close = gtk_button_new_with_label("Close");
    gtk_container_add(GTK_CONTAINER(buttons), sw->take);
    gtk_container_add(GTK_CONTAINER(buttons), sw->restore);
    gtk_container_add(GTK_CONTAINER(buttons), sw->del);
    gtk_container_add(GTK_CONTAINER(buttons), close);
    gtk_button_box_set_child_secondary(GTK_BUTTON_BOX(buttons), sw->take, TRUE);
    gtk_box_pack_start(GTK_BOX(box), buttons, FALSE, FALSE, 0);
    gtk_container_add(GTK_CONTAINER(sw->win), box);

    g_signal_connect(gtk_tree_view_get_selection(sw->view), "changed", G_CALLBACK(mgr_snap_selection_changed), sw);
    mgr_winref_on_click(&sw->ref, sw->take, mgr_snap_take_clicked);
    mgr_winref_on_click(&sw->ref, sw->restore, mgr_snap_restore_clicked);
    mgr_winref_on_click(&sw->ref, sw->del, mgr_snap_delete_clicked);
    g_signal_connect_swapped(close, "clicked", G_CALLBACK(gtk_widget_destroy), sw->win);
    g_signal_connect(sw->win, "destroy", G_CALLBACK(mgr_snap_destroyed), sw);

    g_snapwins = g_list_prepend(g_snapwins, sw);
    if (!g_snap_listening && app->model) {
        /* One listener for all snapshot windows: the model has no way to stop listening. */
        mgr_model_listen(app->model, mgr_snap_model_event, NULL);
        g_snap_listening = true;
    }
    mgr_snap_reload(sw);
    sw->timer = g_timeout_add(MGR_POLL_MS, mgr_snap_poll, sw);
    gtk_widget_show_all(GTK_WIDGET(sw->win));
}
