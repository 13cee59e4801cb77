/* mgr-util.c - the manager's shared pieces: accessible names, inline field errors, error and question dialogs, background jobs with a progress dialog, sizes and labels. */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mgr.h"
#include "vireo/err.h"

/* ---- Accessible names and inline errors ------------------------------------------------------------ */

void mgr_a11y_name(GtkWidget *w, const char *name, const char *desc)
{
    AtkObject *a = gtk_widget_get_accessible(w);
    if (!a)
        return;
    if (name)
        atk_object_set_name(a, name);
    if (desc)
        atk_object_set_description(a, desc);
}

GtkWidget *mgr_field_error_new(const char *field)
{
    GtkWidget *l = gtk_label_new("");
    gtk_label_set_xalign(GTK_LABEL(l), 0.0f);
    gtk_label_set_line_wrap(GTK_LABEL(l), TRUE);
    gtk_label_set_max_width_chars(GTK_LABEL(l), 60);
    gtk_style_context_add_class(gtk_widget_get_style_context(l), "error");
    char desc[256];
    snprintf(desc, sizeof(desc), "error: %s", field);
    mgr_a11y_name(l, "", desc);
    gtk_widget_set_no_show_all(l, TRUE);
    gtk_widget_hide(l);
    return l;
}

void mgr_field_error_set(GtkWidget *label, const char *msg)
{
    if (!msg || !*msg) {
        gtk_label_set_text(GTK_LABEL(label), "");
        mgr_a11y_name(label, "", NULL);
        gtk_widget_hide(label);
        return;
    }
    /* Red text so it reads as an error in any theme; the accessible name is the plain sentence. */
    char *markup = g_markup_printf_escaped("<span foreground=\"#c01c28\">%s</span>", msg);
    gtk_label_set_markup(GTK_LABEL(label), markup);
    g_free(markup);
    mgr_a11y_name(label, msg, NULL);
    gtk_widget_show(label);
}

/* ---- Dialogs ------------------------------------------------------------------------------------------ */

GtkWidget *mgr_dialog_new(GtkWindow *parent, const char *title, const char *ok_label, GtkWidget **ok)
{
    GtkWidget *d = gtk_dialog_new_with_buttons(title, parent, GTK_DIALOG_MODAL | GTK_DIALOG_DESTROY_WITH_PARENT,
                                               "Cancel", GTK_RESPONSE_CANCEL, NULL);
    *ok = gtk_dialog_add_button(GTK_DIALOG(d), ok_label, GTK_RESPONSE_OK);
    gtk_dialog_set_default_response(GTK_DIALOG(d), GTK_RESPONSE_OK);
    return d;
}

GtkWidget *mgr_note(const char *text)
{
    GtkWidget *l = gtk_label_new(text);
    gtk_label_set_xalign(GTK_LABEL(l), 0.0f);
    gtk_label_set_line_wrap(GTK_LABEL(l), TRUE);
    gtk_label_set_max_width_chars(GTK_LABEL(l), 70);
    return l;
}

GtkWidget *mgr_form_grid(void)
{
    GtkWidget *g = gtk_grid_new();
    gtk_grid_set_row_spacing(GTK_GRID(g), 6);
    gtk_grid_set_column_spacing(GTK_GRID(g), 12);
    gtk_container_set_border_width(GTK_CONTAINER(g), 12);
    return g;
}

GtkWidget *mgr_form_label(GtkWidget *grid, int row, const char *text, GtkWidget *field)
{
    GtkWidget *l = gtk_label_new_with_mnemonic(text);
    gtk_label_set_xalign(GTK_LABEL(l), 1.0f);
    gtk_label_set_mnemonic_widget(GTK_LABEL(l), field);
    gtk_grid_attach(GTK_GRID(grid), l, 0, row, 1, 1);
    return l;
}

void mgr_error(GtkWindow *parent, const char *what, int rc, const char *detail)
{
    GtkWidget *d = gtk_message_dialog_new(parent, GTK_DIALOG_MODAL | GTK_DIALOG_DESTROY_WITH_PARENT, GTK_MESSAGE_ERROR,
                                          GTK_BUTTONS_CLOSE, "%s", what);
    gtk_window_set_title(GTK_WINDOW(d), "Vireo - Error");
    GString *s = g_string_new(NULL);
    if (detail && *detail)
        g_string_append(s, detail);
    if (rc < 0) {
        if (s->len)
            g_string_append(s, "\n\n");
        g_string_append_printf(s, "Error code: %s (%d)", rt_err_str(rc), rc);
    }
    if (s->len)
        gtk_message_dialog_format_secondary_text(GTK_MESSAGE_DIALOG(d), "%s", s->str);
    g_string_free(s, TRUE);
    /* The message can be long (paths, file:line:column): let people select and copy it. */
    GtkWidget *area = gtk_message_dialog_get_message_area(GTK_MESSAGE_DIALOG(d));
    GList *kids = gtk_container_get_children(GTK_CONTAINER(area));
    for (GList *k = kids; k; k = k->next)
        if (GTK_IS_LABEL(k->data))
            gtk_label_set_selectable(GTK_LABEL(k->data), TRUE);
    g_list_free(kids);
    gtk_dialog_run(GTK_DIALOG(d));
    gtk_widget_destroy(d);
}

void mgr_file_filter_add(GtkWidget *chooser, const char *name, const char *const *patterns)
{
    GtkFileFilter *f = gtk_file_filter_new();
    gtk_file_filter_set_name(f, name);
    for (const char *const *p = patterns; *p; p++)
        gtk_file_filter_add_pattern(f, *p);
    gtk_file_chooser_add_filter(GTK_FILE_CHOOSER(chooser), f);
}

char *mgr_file_chooser_run(GtkWidget *chooser)
{
    char *file = NULL;
    if (gtk_dialog_run(GTK_DIALOG(chooser)) == GTK_RESPONSE_ACCEPT)
        file = gtk_file_chooser_get_filename(GTK_FILE_CHOOSER(chooser));
    gtk_widget_destroy(chooser);
    return file;
}

bool mgr_confirm(GtkWindow *parent, const char *question, const char *detail, const char *yes, bool destructive)
{
    GtkWidget *d = gtk_message_dialog_new(parent, GTK_DIALOG_MODAL | GTK_DIALOG_DESTROY_WITH_PARENT,
                                          GTK_MESSAGE_QUESTION, GTK_BUTTONS_NONE, "%s", question);
    gtk_window_set_title(GTK_WINDOW(d), "Vireo");
    if (detail && *detail)
        gtk_message_dialog_format_secondary_text(GTK_MESSAGE_DIALOG(d), "%s", detail);
    gtk_dialog_add_button(GTK_DIALOG(d), "Cancel", GTK_RESPONSE_CANCEL);
    GtkWidget *b = gtk_dialog_add_button(GTK_DIALOG(d), yes, GTK_RESPONSE_ACCEPT);
    if (destructive)
        gtk_style_context_add_class(gtk_widget_get_style_context(b), "destructive-action");
    gtk_dialog_set_default_response(GTK_DIALOG(d), GTK_RESPONSE_CANCEL);
    int r = gtk_dialog_run(GTK_DIALOG(d));
    gtk_widget_destroy(d);
    return r == GTK_RESPONSE_ACCEPT;
}

/* ---- Background jobs ------------------------------------------------------------------------------------ */

struct mgr_job {
    GtkWindow *parent;
    char *failed_what;
    mgr_job_fn *fn;
    mgr_job_done_fn *done;
    void *opaque;
    GtkWidget *dialog, *bar, *label;
    guint timer;
    int rc;
    struct cfg_error err;
    GMutex lock;            /* guards the fields below, written by the worker */
    uint64_t done_bytes, total_bytes;
    char *status;
    bool status_changed;
};

void mgr_job_progress(void *opaque, uint64_t done, uint64_t total)
{
    struct mgr_job *job = opaque;
    g_mutex_lock(&job->lock);
    job->done_bytes = done;
    job->total_bytes = total;
    g_mutex_unlock(&job->lock);
}

void mgr_job_status(struct mgr_job *job, const char *text)
{
    g_mutex_lock(&job->lock);
    g_free(job->status);
    job->status = g_strdup(text ? text : "");
    job->status_changed = true;
    g_mutex_unlock(&job->lock);
}

static gboolean mgr_job_tick(gpointer opaque)
{
    struct mgr_job *job = opaque;
    g_mutex_lock(&job->lock);
    uint64_t done = job->done_bytes, total = job->total_bytes;
    char *status = job->status_changed ? g_strdup(job->status) : NULL;
    job->status_changed = false;
    g_mutex_unlock(&job->lock);
    if (total) {
        double f = (double)done / (double)total;
        gtk_progress_bar_set_fraction(GTK_PROGRESS_BAR(job->bar), f > 1.0 ? 1.0 : f);
        char text[96], a[32], b[32];
        snprintf(text, sizeof(text), "%s of %s", mgr_format_size(done, a, sizeof(a)), mgr_format_size(total, b, sizeof(b)));
        gtk_progress_bar_set_text(GTK_PROGRESS_BAR(job->bar), text);
        gtk_progress_bar_set_show_text(GTK_PROGRESS_BAR(job->bar), TRUE);
    } else {
        gtk_progress_bar_pulse(GTK_PROGRESS_BAR(job->bar));
    }
    if (status) {
        gtk_label_set_text(GTK_LABEL(job->label), status);
        g_free(status);
    }
    return G_SOURCE_CONTINUE;
}

static void mgr_job_thread(GTask *task, gpointer source, gpointer opaque, GCancellable *cancel)
{
    (void)source;
    (void)cancel;
    struct mgr_job *job = opaque;
    job->rc = job->fn(job, job->opaque, &job->err);
    if (job->rc < 0 && !job->err.msg[0])
        snprintf(job->err.msg, sizeof(job->err.msg), "%s", rt_err_str(job->rc));
    g_task_return_boolean(task, TRUE);
}

static void mgr_job_finished(GObject *source, GAsyncResult *res, gpointer opaque)
{
    (void)source;
    (void)res;
    struct mgr_job *job = opaque;
    g_source_remove(job->timer);
    gtk_widget_destroy(job->dialog);
    if (job->rc < 0)
        mgr_error(job->parent, job->failed_what, job->rc, job->err.msg);
    if (job->done)
        job->done(job->opaque, job->rc, &job->err);
    if (job->parent)
        g_object_unref(job->parent);
    g_free(job->failed_what);
    g_free(job->status);
    g_mutex_clear(&job->lock);
    g_free(job);
}

/* The progress dialog cannot be closed while the job runs: the work on disk must finish or fail by itself. */
static gboolean mgr_job_delete(GtkWidget *w, GdkEvent *ev, gpointer opaque)
{
    (void)w;
    (void)ev;
    (void)opaque;
    return TRUE;
}

void mgr_job_run(GtkWindow *parent, const char *title, const char *failed_what, mgr_job_fn *fn,
                 mgr_job_done_fn *done, void *opaque)
{
    struct mgr_job *job = g_new0(struct mgr_job, 1);
    g_mutex_init(&job->lock);
    job->parent = parent ? g_object_ref(parent) : NULL;
    job->failed_what = g_strdup(failed_what);
    job->fn = fn;
    job->done = done;
    job->opaque = opaque;
    job->rc = 0;

    job->dialog = gtk_window_new(GTK_WINDOW_TOPLEVEL);
    gtk_window_set_title(GTK_WINDOW(job->dialog), title);
    gtk_window_set_modal(GTK_WINDOW(job->dialog), TRUE);
    gtk_window_set_deletable(GTK_WINDOW(job->dialog), FALSE);
    gtk_window_set_resizable(GTK_WINDOW(job->dialog), FALSE);
    gtk_window_set_type_hint(GTK_WINDOW(job->dialog), GDK_WINDOW_TYPE_HINT_DIALOG);
    if (parent) {
        gtk_window_set_transient_for(GTK_WINDOW(job->dialog), parent);
        gtk_window_set_position(GTK_WINDOW(job->dialog), GTK_WIN_POS_CENTER_ON_PARENT);
    }
    g_signal_connect(job->dialog, "delete-event", G_CALLBACK(mgr_job_delete), NULL);
    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 12);
    gtk_container_set_border_width(GTK_CONTAINER(box), 18);
    job->label = gtk_label_new(title);
    gtk_label_set_xalign(GTK_LABEL(job->label), 0.0f);
    job->bar = gtk_progress_bar_new();
    gtk_widget_set_size_request(job->bar, 360, -1);
    mgr_a11y_name(job->bar, "Progress", NULL);
    gtk_box_pack_start(GTK_BOX(box), job->label, FALSE, FALSE, 0);
    gtk_box_pack_start(GTK_BOX(box), job->bar, FALSE, FALSE, 0);
    gtk_container_add(GTK_CONTAINER(job->dialog), box);
    gtk_widget_show_all(job->dialog);
    job->timer = g_timeout_add(100, mgr_job_tick, job);

    GTask *task = g_task_new(NULL, NULL, mgr_job_finished, job);
    g_task_set_task_data(task, job, NULL);
    g_task_run_in_thread(task, mgr_job_thread);
    g_object_unref(task);
}

/* ---- Windows shared with clicks and jobs ------------------------------------------------------------------- */

void mgr_winref_init(struct mgr_winref *r, void *owner, void (*reload)(void *owner), void (*settled)(void *owner),
                     void (*release)(void *owner))
{
    r->refs = 1;
    r->closed = false;
    r->busy = 0;
    r->owner = owner;
    r->reload = reload;
    r->settled = settled;
    r->release = release;
}

void mgr_winref_ref(struct mgr_winref *r)
{
    r->refs++;
}

void mgr_winref_unref(struct mgr_winref *r)
{
    if (--r->refs > 0)
        return;
    r->release(r->owner);
}

void mgr_winref_close(struct mgr_winref *r)
{
    r->closed = true;
    mgr_winref_unref(r);
}

void mgr_winref_job_done(struct mgr_winref *r, struct mgr_app *app)
{
    if (!r->closed) {
        r->reload(r->owner);
        mgr_app_refresh(app, NULL);
    }
    mgr_winref_unref(r);
}

struct mgr_winref_click {
    struct mgr_winref *r;
    void (*fn)(void *owner);
};

/* Runs on the idle callback mgr_on_click schedules, so only while the window still shows. */
static void mgr_winref_click_run(GtkButton *b, gpointer opaque)
{
    (void)b;
    struct mgr_winref_click *c = opaque;
    struct mgr_winref *r = c->r;
    if (r->closed)
        return;
    r->busy++;
    c->fn(r->owner);
    r->busy--;
    if (!r->busy && !r->closed && r->settled)
        r->settled(r->owner);
}

void mgr_winref_on_click(struct mgr_winref *r, GtkWidget *button, void (*fn)(void *owner))
{
    struct mgr_winref_click *c = g_new(struct mgr_winref_click, 1);
    c->r = r;
    c->fn = fn;
    g_object_set_data_full(G_OBJECT(button), "mgr-winref-click", c, g_free);
    mgr_on_click(button, mgr_winref_click_run, c);
}

/* ---- Buttons that open dialogs ---------------------------------------------------------------------------- */

struct mgr_click {
    mgr_click_fn *fn;
    gpointer opaque;
    GtkButton *button;
};

static gboolean mgr_click_idle(gpointer p)
{
    struct mgr_click *c = p;
    /* The window may have gone in between (its close was queued before this idle): then the button has no window. */
    GtkWidget *top = gtk_widget_get_toplevel(GTK_WIDGET(c->button));
    if (top != GTK_WIDGET(c->button) && gtk_widget_is_toplevel(top) && gtk_widget_get_visible(top))
        c->fn(c->button, c->opaque);
    g_object_unref(c->button);
    g_free(c);
    return G_SOURCE_REMOVE;
}

static void mgr_clicked(GtkButton *b, gpointer p)
{
    const struct mgr_click *tpl = p;
    struct mgr_click *c = g_new(struct mgr_click, 1);
    *c = *tpl;
    c->button = g_object_ref(b);
    g_idle_add(mgr_click_idle, c);
}

void mgr_on_click(GtkWidget *button, mgr_click_fn *fn, gpointer opaque)
{
    struct mgr_click *tpl = g_new0(struct mgr_click, 1);
    tpl->fn = fn;
    tpl->opaque = opaque;
    g_signal_connect_data(button, "clicked", G_CALLBACK(mgr_clicked), tpl, (GClosureNotify)(void (*)(void))g_free, 0);
}

/* ---- Labels ----------------------------------------------------------------------------------------------- */

const char *mgr_state_label(enum cfg_machine_state state)
{
    switch (state) {
    case CFG_STATE_POWERED_OFF: return "Powered Off";
    case CFG_STATE_SAVED: return "Saved";
    case CFG_STATE_RUNNING: return "Running";
    case CFG_STATE_PAUSED: return "Paused";
    case CFG_STATE_ABORTED: return "Aborted";
    }
    return "Unknown";
}

const char *mgr_os_icon_name(const struct cfg_ostypes *types, const char *ostype)
{
    const struct cfg_ostype *t = types && ostype ? cfg_ostype_find(types, ostype) : NULL;
    const char *family = t && t->family ? t->family : "Other";
    if (!strcmp(family, "Linux") || !strcmp(family, "BSD"))
        return "utilities-terminal";
    if (!strcmp(family, "Windows"))
        return "computer";
    if (!strcmp(family, "DOS"))
        return "media-floppy";
    return "application-x-executable";
}

struct cfg_global *mgr_global_load(void)
{
    char *gpath = cfg_global_path();
    struct cfg_global *g = NULL;
    struct cfg_error err = {{0}};
    if (!gpath || cfg_global_load(gpath, &g, &err) < 0)
        g = NULL;
    free(gpath);
    return g;
}

char *mgr_default_machine_folder(void)
{
    struct cfg_global *g = mgr_global_load();
    char *folder = cfg_default_machine_folder(g ? g->default_machine_folder : NULL);
    cfg_global_free(g);
    return folder;
}
