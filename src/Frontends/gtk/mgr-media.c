/* mgr-media.c - the media manager: the registered hard disk, optical and floppy images with their sizes and users, and adding, creating, copying, resizing, releasing and removing them. */

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mgr.h"
#include "vireo/err.h"
#include "vireo/rt.h"

/*
 * The registry lists media; what people want to know about each (its sizes, which machines use it) needs every
 * image opened and every machine file read.  That happens on a worker thread (mgr_media_load), so a slow disk or
 * an image locked by a running machine never freezes the window; the result replaces the lists on the main
 * thread, keeping the selection.  The window reloads when the global registry file changes (vireo-manage,
 * other windows), when the model reports machines, and after each of its own operations.
 */

enum { COL_NAME, COL_VSIZE, COL_ASIZE, COL_FORMAT, COL_TYPE, COL_USED, COL_UUID, COL_COUNT };
#define MGR_MEDIA_TABS 3

struct mgr_media_row {
    struct cfg_medium md; /* a copy of the registry entry */
    char *users;          /* "A, B" (malloc'ed), "" when none */
    size_t user_count;
    bool open_ok;
    int open_rc; /* blk_open's failure */
    uint64_t size_bytes, allocated_bytes;
    char variant[24];
};

struct mgr_media_load {
    struct mgr_media_row *rows;
    size_t count;
    int rc;
    struct cfg_error err;
};

struct mgr_media_tab {
    enum cfg_medium_type type;
    GtkWidget *page;
    GtkTreeStore *store;
    GtkTreeView *view;
};

struct mgr_media {
    struct mgr_app *app;
    GtkWindow *win;
    GtkNotebook *nb;
    struct mgr_media_tab tabs[MGR_MEDIA_TABS];
    GtkWidget *details, *add, *create, *copy, *resize, *release, *remove, *refresh;
    struct mgr_media_load *data; /* the lists shown now */
    bool loading, reload_again;
    struct timespec global_mtime;
    guint timer;
    struct mgr_winref ref; /* ref.busy: a button's handler (with its dialogs) runs: mm->data must stay as it is */
};

static struct mgr_media *g_media;
static bool g_media_listening;

static void mgr_media_load_free(struct mgr_media_load *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->count; i++) {
        mach_medium_clear(&d->rows[i].md);
        free(d->rows[i].users);
    }
    free(d->rows);
    g_free(d);
}

static void mgr_media_free(void *opaque)
{
    struct mgr_media *mm = opaque;
    mgr_media_load_free(mm->data);
    g_free(mm);
}

/* ---- Loading (worker thread) ------------------------------------------------------------------------------- */

static void mgr_media_load_thread(GTask *task, gpointer source, gpointer opaque, GCancellable *cancel)
{
    (void)source;
    (void)cancel;
    struct mgr_media_load *d = opaque;
    static const enum cfg_medium_type types[] = {CFG_MEDIUM_HDD, CFG_MEDIUM_DVD, CFG_MEDIUM_FLOPPY};
    for (size_t t = 0; t < G_N_ELEMENTS(types) && d->rc == 0; t++) {
        struct cfg_medium *list = NULL;
        size_t n = 0;
        if ((d->rc = mach_medium_list(types[t], &list, &n, &d->err)) < 0)
            break;
        struct mgr_media_row *rows = realloc(d->rows, (d->count + n + 1) * sizeof(*rows));
        if (!rows) {
            mach_medium_list_free(list, n);
            d->rc = VERR_NO_MEMORY;
            break;
        }
        d->rows = rows;
        for (size_t i = 0; i < n; i++) {
            struct mgr_media_row *r = &d->rows[d->count++];
            memset(r, 0, sizeof(*r));
            r->md = list[i];
            memset(&list[i], 0, sizeof(list[i])); /* moved into the row */
            char **names = NULL;
            size_t nn = 0;
            struct cfg_error uerr = {{0}};
            GString *s = g_string_new(NULL);
            if (mach_medium_users(&r->md.uuid, &names, &nn, &uerr) == 0) {
                for (size_t k = 0; k < nn; k++) {
                    g_string_append_printf(s, "%s%s", k ? ", " : "", names[k]);
                    free(names[k]);
                }
                free(names);
            }
            r->user_count = nn;
            r->users = strdup(s->str);
            g_string_free(s, TRUE);
            struct stat st;
            if (r->md.location && stat(r->md.location, &st) == 0)
                r->allocated_bytes = (uint64_t)st.st_blocks * 512u;
            /* Read-only opens take a shared lock: a running machine's exclusive one makes this VERR_BUSY. */
            struct blk_image *img = NULL;
            r->open_rc = r->md.location
                             ? blk_open(r->md.location, BLK_FMT_AUTO, BLK_OPEN_READONLY | BLK_OPEN_NO_BACKING, &img)
                             : VERR_FILE_NOT_FOUND;
            if (r->open_rc == 0) {
                struct blk_info info;
                if (blk_get_info(img, &info) == 0) {
                    r->open_ok = true;
                    r->size_bytes = info.size_bytes;
                    r->allocated_bytes = info.allocated_bytes;
                    snprintf(r->variant, sizeof(r->variant), "%s", info.variant);
                }
                blk_close(img);
            }
        }
        mach_medium_list_free(list, n);
    }
    g_task_return_boolean(task, TRUE);
}

static void mgr_media_fill(struct mgr_media *mm);
static void mgr_media_reload(struct mgr_media *mm);

static void mgr_media_loaded(GObject *source, GAsyncResult *res, gpointer opaque)
{
    (void)source;
    (void)res;
    struct mgr_media *mm = opaque;
    struct mgr_media_load *d = g_task_get_task_data(G_TASK(res));
    g_task_set_task_data(G_TASK(res), NULL, NULL);
    mm->loading = false;
    if (mm->ref.closed) {
        mgr_media_load_free(d);
        mgr_winref_unref(&mm->ref);
        return;
    }
    if (mm->ref.busy) {
        mgr_media_load_free(d); /* the handler holds pointers into mm->data: load again after its dialog */
        mm->reload_again = true;
    } else if (d->rc < 0) {
        mgr_error(mm->win, "Cannot read the media registry", d->rc, d->err.msg);
        mgr_media_load_free(d);
    } else {
        mgr_media_load_free(mm->data);
        mm->data = d;
        mgr_media_fill(mm);
    }
    bool again = mm->reload_again && !mm->ref.busy;
    if (again) {
        mm->reload_again = false;
        mgr_media_reload(mm);
    }
    mgr_winref_unref(&mm->ref);
}

static void mgr_media_reload(struct mgr_media *mm)
{
    if (mm->loading) {
        mm->reload_again = true; /* the running load may have missed the change */
        return;
    }
    char *gpath = cfg_global_path();
    struct stat st;
    if (gpath && stat(gpath, &st) == 0)
        mm->global_mtime = st.st_mtim;
    free(gpath);
    mm->loading = true;
    mgr_winref_ref(&mm->ref);
    struct mgr_media_load *d = g_new0(struct mgr_media_load, 1);
    GTask *task = g_task_new(NULL, NULL, mgr_media_loaded, mm);
    g_task_set_task_data(task, d, NULL);
    g_task_run_in_thread(task, mgr_media_load_thread);
    g_object_unref(task);
}

static gboolean mgr_media_poll(gpointer opaque)
{
    struct mgr_media *mm = opaque;
    char *gpath = cfg_global_path();
    struct stat st;
    if (gpath && stat(gpath, &st) == 0 &&
        (st.st_mtim.tv_sec != mm->global_mtime.tv_sec || st.st_mtim.tv_nsec != mm->global_mtime.tv_nsec))
        mgr_media_reload(mm);
    free(gpath);
    return G_SOURCE_CONTINUE;
}

static void mgr_media_model_event(void *opaque, struct mgr_vm *vm)
{
    (void)opaque;
    (void)vm;
    /* Any machine change may attach or detach media, and a machine that starts or stops locks or frees them. */
    if (g_media)
        mgr_media_reload(g_media);
}

/* ---- Showing ---------------------------------------------------------------------------------------------- */

static struct mgr_media_tab *mgr_media_current_tab(struct mgr_media *mm)
{
    int page = gtk_notebook_get_current_page(mm->nb);
    for (size_t t = 0; t < MGR_MEDIA_TABS; t++)
        if (gtk_notebook_page_num(mm->nb, mm->tabs[t].page) == page)
            return &mm->tabs[t];
    return &mm->tabs[0];
}

/* The selected row of the current tab, or NULL. */
static struct mgr_media_row *mgr_media_selected(struct mgr_media *mm)
{
    struct mgr_media_tab *tab = mgr_media_current_tab(mm);
    GtkTreeModel *model;
    GtkTreeIter it;
    if (!mm->data || !gtk_tree_selection_get_selected(gtk_tree_view_get_selection(tab->view), &model, &it))
        return NULL;
    char *u = NULL;
    gtk_tree_model_get(model, &it, COL_UUID, &u, -1);
    struct rt_uuid uuid;
    struct mgr_media_row *found = NULL;
    if (u && rt_uuid_parse(u, &uuid) == 0)
        for (size_t i = 0; i < mm->data->count; i++)
            if (!memcmp(&mm->data->rows[i].md.uuid, &uuid, sizeof(uuid)))
                found = &mm->data->rows[i];
    g_free(u);
    return found;
}

static bool mgr_media_has_children(struct mgr_media *mm, const struct rt_uuid *uuid)
{
    for (size_t i = 0; mm->data && i < mm->data->count; i++)
        if (!memcmp(&mm->data->rows[i].md.parent, uuid, sizeof(*uuid)))
            return true;
    return false;
}

static const char *mgr_media_type_text(const struct mgr_media_row *r)
{
    if (r->md.type != CFG_MEDIUM_HDD)
        return r->md.readonly || r->md.type == CFG_MEDIUM_DVD ? "read-only" : "normal";
    return rt_uuid_is_null(&r->md.parent) ? "normal" : "differencing";
}

static void mgr_media_size_texts(const struct mgr_media_row *r, char vs[64], char as[32])
{
    if (r->open_ok)
        mgr_format_size(r->size_bytes, vs, 64);
    else if (r->open_rc == VERR_BUSY)
        snprintf(vs, 64, "locked by a running machine");
    else if (r->open_rc == VERR_FILE_NOT_FOUND)
        snprintf(vs, 64, "file missing");
    else
        snprintf(vs, 64, "unreadable (%s)", rt_err_str(r->open_rc));
    mgr_format_size(r->allocated_bytes, as, 32);
}

static void mgr_media_update_details(struct mgr_media *mm)
{
    struct mgr_media_row *r = mgr_media_selected(mm);
    struct mgr_media_tab *tab = mgr_media_current_tab(mm);
    if (!r) {
        gtk_label_set_text(GTK_LABEL(mm->details), tab->type == CFG_MEDIUM_HDD
                                                       ? "Select a disk image to see its details."
                                                       : "Select an image to see its details.");
    } else {
        char vs[64], as[32], us[RT_UUID_STR_LEN];
        mgr_media_size_texts(r, vs, as);
        rt_uuid_to_str(&r->md.uuid, us);
        char *text = g_strdup_printf("Location: %s\nUUID: %s\nFormat: %s%s%s%s    Virtual size: %s    Actual size: %s\n"
                                     "Used by: %s",
                                     r->md.location ? r->md.location : "", us, r->md.format ? r->md.format : "",
                                     r->variant[0] ? " (" : "", r->variant, r->variant[0] ? ")" : "", vs, as,
                                     r->users && *r->users ? r->users : "not attached to any machine");
        gtk_label_set_text(GTK_LABEL(mm->details), text);
        g_free(text);
    }
    bool hdd = tab->type == CFG_MEDIUM_HDD;
    gtk_widget_set_sensitive(mm->copy, r && hdd);
    gtk_widget_set_sensitive(mm->resize, r && hdd);
    gtk_widget_set_sensitive(mm->release, r != NULL);
    gtk_widget_set_sensitive(mm->remove, r != NULL);
}

static void mgr_media_add_rows(struct mgr_media *mm, struct mgr_media_tab *tab, GtkTreeIter *parent,
                               const struct rt_uuid *parent_uuid)
{
    for (size_t i = 0; i < mm->data->count; i++) {
        struct mgr_media_row *r = &mm->data->rows[i];
        if (r->md.type != tab->type)
            continue;
        /* Differencing images sit under their parent; one whose parent is not registered shows at the top. */
        bool top = rt_uuid_is_null(&r->md.parent);
        if (!top && tab->type == CFG_MEDIUM_HDD) {
            bool known = false;
            for (size_t k = 0; k < mm->data->count; k++)
                if (!memcmp(&mm->data->rows[k].md.uuid, &r->md.parent, sizeof(r->md.parent)))
                    known = true;
            top = !known;
        }
        if (parent_uuid ? memcmp(&r->md.parent, parent_uuid, sizeof(*parent_uuid)) != 0 : !top)
            continue;
        char vs[64], as[32], us[RT_UUID_STR_LEN];
        mgr_media_size_texts(r, vs, as);
        rt_uuid_to_str(&r->md.uuid, us);
        GtkTreeIter it;
        gtk_tree_store_append(tab->store, &it, parent);
        gtk_tree_store_set(tab->store, &it, COL_NAME, r->md.location ? rt_path_basename(r->md.location) : us, COL_VSIZE,
                           vs, COL_ASIZE, as, COL_FORMAT, r->md.format ? r->md.format : "", COL_TYPE,
                           mgr_media_type_text(r), COL_USED, r->users ? r->users : "", COL_UUID, us, -1);
        mgr_media_add_rows(mm, tab, &it, &r->md.uuid);
    }
}

static bool mgr_media_find_row(GtkTreeModel *model, GtkTreeIter *parent, const char *uuid, GtkTreeIter *out)
{
    GtkTreeIter it;
    if (!gtk_tree_model_iter_children(model, &it, parent))
        return false;
    do {
        char *u = NULL;
        gtk_tree_model_get(model, &it, COL_UUID, &u, -1);
        bool hit = u && !strcmp(u, uuid);
        g_free(u);
        if (hit) {
            *out = it;
            return true;
        }
        if (mgr_media_find_row(model, &it, uuid, out))
            return true;
    } while (gtk_tree_model_iter_next(model, &it));
    return false;
}

static void mgr_media_fill(struct mgr_media *mm)
{
    bool floppies = false;
    for (size_t i = 0; i < mm->data->count; i++)
        floppies |= mm->data->rows[i].md.type == CFG_MEDIUM_FLOPPY;
    for (size_t t = 0; t < MGR_MEDIA_TABS; t++) {
        struct mgr_media_tab *tab = &mm->tabs[t];
        GtkTreeSelection *sel = gtk_tree_view_get_selection(tab->view);
        GtkTreeModel *model;
        GtkTreeIter it;
        char *keep = NULL;
        if (gtk_tree_selection_get_selected(sel, &model, &it))
            gtk_tree_model_get(model, &it, COL_UUID, &keep, -1);
        gtk_tree_store_clear(tab->store);
        mgr_media_add_rows(mm, tab, NULL, NULL);
        gtk_tree_view_expand_all(tab->view);
        if (keep && mgr_media_find_row(GTK_TREE_MODEL(tab->store), NULL, keep, &it))
            gtk_tree_selection_select_iter(sel, &it);
        g_free(keep);
    }
    /* The floppy tab only when the registry has floppy images (as VirtualBox). */
    gtk_widget_set_visible(mm->tabs[2].page, floppies);
    mgr_media_update_details(mm);
}

/* ---- Helpers for the operations -------------------------------------------------------------------------- */

static char *mgr_media_row_name(const struct mgr_media_row *r)
{
    return g_strdup(r->md.location ? rt_path_basename(r->md.location) : "the medium");
}

/* Whether a machine named in r's users runs now; *who gets its name (g_free). */
static bool mgr_media_user_running(const struct mgr_media_row *r, char **who)
{
    char **names = NULL;
    size_t n = 0;
    struct cfg_error err = {{0}};
    bool running = false;
    *who = NULL;
    if (mach_medium_users(&r->md.uuid, &names, &n, &err) < 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char *path = NULL;
        if (!running && mach_find(names[i], &path, NULL, &err) == 0 && mach_is_running(path)) {
            running = true;
            *who = g_strdup(names[i]);
        }
        free(path);
        free(names[i]);
    }
    free(names);
    return running;
}

static void mgr_media_reload_void(void *opaque)
{
    mgr_media_reload(opaque);
}

/* After a button's dialog: the reload put off while it ran (unless one runs already). */
static void mgr_media_settled(void *opaque)
{
    struct mgr_media *mm = opaque;
    if (mm->reload_again && !mm->loading) {
        mm->reload_again = false;
        mgr_media_reload(mm);
    }
}

/* A job's common part: the window to reload afterwards. */
struct mgr_media_op {
    struct mgr_media *mm;
    char *src; /* copy: the source image; resize: the image */
    char *dst; /* create/copy: the new image */
    enum blk_format fmt;
    uint64_t bytes;
    bool fixed;
};

static struct mgr_media_op *mgr_media_op_new(struct mgr_media *mm)
{
    struct mgr_media_op *op = g_new0(struct mgr_media_op, 1);
    op->mm = mm;
    mgr_winref_ref(&mm->ref);
    return op;
}

static void mgr_media_op_done(void *opaque, int rc, const struct cfg_error *err)
{
    (void)rc;
    (void)err;
    struct mgr_media_op *op = opaque;
    mgr_winref_job_done(&op->mm->ref, op->mm->app);
    g_free(op->src);
    g_free(op->dst);
    g_free(op);
}

/* ---- Disk dialogs: the file, size and format fields shared by Create and Copy -------------------------------- */

struct mgr_disk_dlg {
    GtkWidget *dialog, *ok;
    GtkWidget *file, *file_err, *browse;
    GtkWidget *size, *size_err; /* NULL: no size field (copy) */
    GtkWidget *format, *fixed;
    uint64_t min_bytes; /* resize: the current size (the new one must be larger) */
    bool resize;
};

static enum blk_format mgr_disk_dlg_format(struct mgr_disk_dlg *d)
{
    return gtk_combo_box_get_active(GTK_COMBO_BOX(d->format)) == 1 ? BLK_FMT_QCOW2 : BLK_FMT_VDI;
}

/* The size field in bytes: whole MiB, as people think of disk sizes (0.016 GiB is 16 MiB). */
static uint64_t mgr_disk_dlg_bytes(struct mgr_disk_dlg *d)
{
    double gib = gtk_spin_button_get_value(GTK_SPIN_BUTTON(d->size));
    if (!(gib > 0))
        return 0;
    return (uint64_t)llround(gib * 1024.0) << 20;
}

/* The file field as an absolute path (g_free), "" when empty. */
static char *mgr_disk_dlg_path(struct mgr_disk_dlg *d)
{
    const char *t = gtk_entry_get_text(GTK_ENTRY(d->file));
    while (*t == ' ')
        t++;
    if (!*t)
        return g_strdup("");
    if (t[0] == '~' && t[1] == '/')
        return g_build_filename(g_get_home_dir(), t + 2, NULL);
    if (g_path_is_absolute(t))
        return g_strdup(t);
    char *cwd = g_get_current_dir();
    char *p = g_build_filename(cwd, t, NULL);
    g_free(cwd);
    return p;
}

static void mgr_disk_dlg_check(struct mgr_disk_dlg *d)
{
    bool ok = true;
    char why[MGR_WHY_MAX] = "";
    if (d->file) {
        char *path = mgr_disk_dlg_path(d);
        char *folder = *path ? g_path_get_dirname(path) : NULL;
        struct stat st;
        if (!*path) {
            ok = false;
            mgr_field_error_set(d->file_err, "Give the image a file name.");
        } else if (g_str_has_suffix(path, "/")) {
            ok = false;
            mgr_field_error_set(d->file_err, "That is a folder; add a file name.");
        } else if (lstat(path, &st) == 0) {
            ok = false;
            mgr_field_error_set(d->file_err, "A file with that name exists already; choose another name.");
        } else if (stat(folder, &st) != 0 || !S_ISDIR(st.st_mode)) {
            ok = false;
            mgr_field_error_set(d->file_err, "The folder does not exist.");
        } else if (access(folder, W_OK | X_OK) != 0) {
            ok = false;
            mgr_field_error_set(d->file_err, "You cannot write to this folder; choose another one.");
        } else {
            mgr_field_error_set(d->file_err, NULL);
        }
        if (d->size) {
            bool fixed = d->fixed && gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(d->fixed));
            if (!mgr_check_disk_size(mgr_disk_dlg_bytes(d), fixed, folder, why))
                ok = false;
            mgr_field_error_set(d->size_err, why);
        }
        g_free(folder);
        g_free(path);
    } else if (d->size) {
        uint64_t bytes = mgr_disk_dlg_bytes(d);
        char cur[32];
        if (!mgr_check_disk_size(bytes, false, NULL, why)) {
            ok = false;
        } else if (bytes <= d->min_bytes) {
            ok = false;
            snprintf(why, sizeof(why), "Disks can only grow: give a size larger than the current %s.",
                     mgr_format_size(d->min_bytes, cur, sizeof(cur)));
        }
        mgr_field_error_set(d->size_err, why[0] ? why : NULL);
    }
    gtk_widget_set_sensitive(d->ok, ok);
}

/*
 * Runs the dialog until Cancel (false) or an OK whose values still hold (true; the dialog stays for the caller
 * to read and destroy): the file system may have changed while it was open, so OK checks once more.
 */
static bool mgr_disk_dlg_run(struct mgr_disk_dlg *d)
{
    mgr_disk_dlg_check(d);
    while (gtk_dialog_run(GTK_DIALOG(d->dialog)) == GTK_RESPONSE_OK) {
        mgr_disk_dlg_check(d);
        if (gtk_widget_get_sensitive(d->ok))
            return true;
    }
    return false;
}

static void mgr_disk_dlg_changed(GtkWidget *w, gpointer opaque)
{
    (void)w;
    mgr_disk_dlg_check(opaque);
}

/* The format decides the file's extension when it has one of ours. */
static void mgr_disk_dlg_format_changed(GtkComboBox *c, gpointer opaque)
{
    (void)c;
    struct mgr_disk_dlg *d = opaque;
    const char *t = gtk_entry_get_text(GTK_ENTRY(d->file));
    const char *ext = mgr_disk_dlg_format(d) == BLK_FMT_QCOW2 ? ".qcow2" : ".vdi";
    const char *dot = strrchr(t, '.');
    if (dot && (!strcmp(dot, ".vdi") || !strcmp(dot, ".qcow2")) && strcmp(dot, ext)) {
        char *n = g_strdup_printf("%.*s%s", (int)(dot - t), t, ext);
        gtk_entry_set_text(GTK_ENTRY(d->file), n);
        g_free(n);
    }
    mgr_disk_dlg_check(d);
}

static void mgr_disk_dlg_browse(GtkButton *b, gpointer opaque)
{
    (void)b;
    struct mgr_disk_dlg *d = opaque;
    GtkWidget *fc =
        gtk_file_chooser_dialog_new("Choose the Image File", GTK_WINDOW(d->dialog), GTK_FILE_CHOOSER_ACTION_SAVE,
                                    "Cancel", GTK_RESPONSE_CANCEL, "Choose", GTK_RESPONSE_ACCEPT, NULL);
    char *path = mgr_disk_dlg_path(d);
    if (*path) {
        char *dir = g_path_get_dirname(path);
        gtk_file_chooser_set_current_folder(GTK_FILE_CHOOSER(fc), dir);
        gtk_file_chooser_set_current_name(GTK_FILE_CHOOSER(fc), rt_path_basename(path));
        g_free(dir);
    }
    g_free(path);
    char *f = mgr_file_chooser_run(fc);
    if (f)
        gtk_entry_set_text(GTK_ENTRY(d->file), f);
    g_free(f);
}

static gboolean mgr_disk_dlg_browse_idle(gpointer opaque)
{
    GtkWidget *dialog = opaque;
    struct mgr_disk_dlg *d = g_object_get_data(G_OBJECT(dialog), "mgr-disk-dlg");
    if (d) /* cleared when the dialog went away before this ran */
        mgr_disk_dlg_browse(NULL, d);
    g_object_unref(dialog);
    return G_SOURCE_REMOVE;
}

/* Deferred for the reason mgr_winref_on_click gives (mgr-util.c). */
static void mgr_disk_dlg_browse_deferred(GtkButton *b, gpointer opaque)
{
    (void)b;
    struct mgr_disk_dlg *d = opaque;
    g_idle_add(mgr_disk_dlg_browse_idle, g_object_ref(d->dialog));
}

static void mgr_disk_dlg_destroyed(GtkWidget *w, gpointer opaque)
{
    (void)opaque;
    g_object_set_data(G_OBJECT(w), "mgr-disk-dlg", NULL);
}

/*
 * Builds the dialog: with_file (a file field with Browse…), with_size (a size field starting at size_bytes),
 * with_format (VDI/qcow2 starting at fmt) and with_fixed (pre-allocation).  The caller runs it.
 */
static void mgr_disk_dlg_build(struct mgr_disk_dlg *d, GtkWindow *parent, const char *title, const char *intro,
                               const char *file, bool with_size, uint64_t size_bytes, bool with_format,
                               enum blk_format fmt, bool with_fixed)
{
    d->dialog = mgr_dialog_new(parent, title, "OK", &d->ok);
    g_object_set_data(G_OBJECT(d->dialog), "mgr-disk-dlg", d);
    g_signal_connect(d->dialog, "destroy", G_CALLBACK(mgr_disk_dlg_destroyed), NULL);
    GtkWidget *grid = mgr_form_grid();
    int row = 0;
    if (intro) {
        GtkWidget *l = gtk_label_new(intro);
        gtk_label_set_xalign(GTK_LABEL(l), 0.0f);
        gtk_label_set_line_wrap(GTK_LABEL(l), TRUE);
        gtk_label_set_max_width_chars(GTK_LABEL(l), 60);
        gtk_grid_attach(GTK_GRID(grid), l, 0, row++, 3, 1);
    }
    if (file) {
        d->file = gtk_entry_new();
        gtk_entry_set_text(GTK_ENTRY(d->file), file);
        gtk_entry_set_width_chars(GTK_ENTRY(d->file), 48);
        gtk_widget_set_hexpand(d->file, TRUE);
        gtk_entry_set_activates_default(GTK_ENTRY(d->file), TRUE);
        mgr_a11y_name(d->file, "File", NULL);
        mgr_form_label(grid, row, "_File:", d->file);
        gtk_grid_attach(GTK_GRID(grid), d->file, 1, row, 1, 1);
        d->browse = gtk_button_new_with_label("Browse…");
        gtk_grid_attach(GTK_GRID(grid), d->browse, 2, row++, 1, 1);
        d->file_err = mgr_field_error_new("File");
        gtk_grid_attach(GTK_GRID(grid), d->file_err, 1, row++, 2, 1);
        g_signal_connect(d->file, "changed", G_CALLBACK(mgr_disk_dlg_changed), d);
        g_signal_connect(d->browse, "clicked", G_CALLBACK(mgr_disk_dlg_browse_deferred), d);
    }
    if (with_size) {
        GtkAdjustment *adj =
            gtk_adjustment_new((double)size_bytes / (double)(1ull << 30), 0.0, 65536.0, 1.0, 10.0, 0.0);
        d->size = gtk_spin_button_new(adj, 1.0, 3);
        gtk_spin_button_set_numeric(GTK_SPIN_BUTTON(d->size), TRUE);
        gtk_entry_set_activates_default(GTK_ENTRY(d->size), TRUE);
        mgr_a11y_name(d->size, "Size (GiB)", NULL);
        mgr_form_label(grid, row, "_Size (GiB):", d->size);
        gtk_widget_set_halign(d->size, GTK_ALIGN_START);
        gtk_grid_attach(GTK_GRID(grid), d->size, 1, row++, 1, 1);
        d->size_err = mgr_field_error_new("Size (GiB)");
        gtk_grid_attach(GTK_GRID(grid), d->size_err, 1, row++, 2, 1);
        g_signal_connect(d->size, "value-changed", G_CALLBACK(mgr_disk_dlg_changed), d);
        g_signal_connect(d->size, "changed", G_CALLBACK(mgr_disk_dlg_changed), d);
    }
    if (with_format) {
        d->format = gtk_combo_box_text_new();
        gtk_combo_box_text_append_text(GTK_COMBO_BOX_TEXT(d->format), "VDI");
        gtk_combo_box_text_append_text(GTK_COMBO_BOX_TEXT(d->format), "qcow2");
        gtk_combo_box_set_active(GTK_COMBO_BOX(d->format), fmt == BLK_FMT_QCOW2 ? 1 : 0);
        mgr_a11y_name(d->format, "Format", NULL);
        mgr_form_label(grid, row, "F_ormat:", d->format);
        gtk_widget_set_halign(d->format, GTK_ALIGN_START);
        gtk_grid_attach(GTK_GRID(grid), d->format, 1, row++, 1, 1);
        g_signal_connect(d->format, "changed", G_CALLBACK(mgr_disk_dlg_format_changed), d);
    }
    if (with_fixed) {
        d->fixed = gtk_check_button_new_with_mnemonic("_Pre-allocate full size");
        gtk_widget_set_tooltip_text(d->fixed, "Writes out the whole disk now: slower to create, no growth later.");
        gtk_grid_attach(GTK_GRID(grid), d->fixed, 1, row++, 2, 1);
        g_signal_connect(d->fixed, "toggled", G_CALLBACK(mgr_disk_dlg_changed), d);
    }
    gtk_box_pack_start(GTK_BOX(gtk_dialog_get_content_area(GTK_DIALOG(d->dialog))), grid, TRUE, TRUE, 0);
    gtk_widget_show_all(d->dialog);
}

/* A file name in folder that does not exist yet: "<stem>.<ext>", else "<stem> 2.<ext>", ... (g_free). */
static char *mgr_media_free_name(const char *folder, const char *stem, const char *ext)
{
    for (int i = 1; i < 1000; i++) {
        char *base = i == 1 ? g_strdup_printf("%s.%s", stem, ext) : g_strdup_printf("%s %d.%s", stem, i, ext);
        char *p = g_build_filename(folder, base, NULL);
        g_free(base);
        if (!rt_path_exists(p))
            return p;
        g_free(p);
    }
    return g_build_filename(folder, stem, NULL);
}

/* ---- Add ---------------------------------------------------------------------------------------------------- */

static void mgr_media_add(void *opaque)
{
    struct mgr_media *mm = opaque;
    struct mgr_media_tab *tab = mgr_media_current_tab(mm);
    GtkWidget *fc = gtk_file_chooser_dialog_new(tab->type == CFG_MEDIUM_HDD   ? "Add a Hard Disk Image"
                                                : tab->type == CFG_MEDIUM_DVD ? "Add an Optical Disk Image"
                                                                              : "Add a Floppy Image",
                                                mm->win, GTK_FILE_CHOOSER_ACTION_OPEN, "Cancel", GTK_RESPONSE_CANCEL,
                                                "Add", GTK_RESPONSE_ACCEPT, NULL);
    if (tab->type == CFG_MEDIUM_HDD)
        mgr_file_filter_add(fc, "Disk images (vdi, qcow2, vmdk, img, raw)",
                            (const char *const[]){"*.vdi", "*.qcow2", "*.vmdk", "*.img", "*.raw", NULL});
    else if (tab->type == CFG_MEDIUM_DVD)
        mgr_file_filter_add(fc, "Optical disk images (iso)", (const char *const[]){"*.iso", "*.ISO", NULL});
    else
        mgr_file_filter_add(fc, "Floppy images (img, ima, flp)",
                            (const char *const[]){"*.img", "*.ima", "*.flp", NULL});
    mgr_file_filter_add(fc, "All files", (const char *const[]){"*", NULL});
    char *file = mgr_file_chooser_run(fc);
    if (!file)
        return;
    struct rt_uuid uuid;
    struct cfg_error err = {{0}};
    int rc = mach_medium_open(file, tab->type, &uuid, &err);
    if (rc < 0) {
        char what[600];
        snprintf(what, sizeof(what), "Cannot add '%s'", rt_path_basename(file));
        mgr_error(mm->win, what, rc, err.msg);
    }
    g_free(file);
    mgr_media_reload(mm);
}

/* ---- Create ------------------------------------------------------------------------------------------------- */

static int mgr_media_create_job(struct mgr_job *job, void *opaque, struct cfg_error *err)
{
    (void)job;
    struct mgr_media_op *op = opaque;
    struct rt_uuid uuid;
    int rc = mach_medium_create(op->dst, op->fmt, op->bytes, op->fixed, &uuid, err);
    /* The file did not exist before (the dialog checked): nothing of a failed attempt may stay behind. */
    if (rc < 0 && rt_path_exists(op->dst))
        unlink(op->dst);
    return rc;
}

static void mgr_media_create(void *opaque)
{
    struct mgr_media *mm = opaque;
    char *folder = mgr_default_machine_folder();
    /* Opening a dialog creates nothing: before the first machine exists its folder may not, so then the home folder. */
    bool have = folder && g_file_test(folder, G_FILE_TEST_IS_DIR);
    char *file = mgr_media_free_name(have ? folder : g_get_home_dir(), "New Disk", "vdi");
    free(folder);
    struct mgr_disk_dlg d = {0};
    mgr_disk_dlg_build(&d, mm->win, "Create Virtual Hard Disk", NULL, file, true, 16ull << 30, true, BLK_FMT_VDI, true);
    g_free(file);
    if (!mgr_disk_dlg_run(&d)) {
        gtk_widget_destroy(d.dialog);
        return;
    }
    struct mgr_media_op *op = mgr_media_op_new(mm);
    op->dst = mgr_disk_dlg_path(&d);
    op->fmt = mgr_disk_dlg_format(&d);
    op->bytes = mgr_disk_dlg_bytes(&d);
    op->fixed = gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(d.fixed));
    gtk_widget_destroy(d.dialog);
    char what[600];
    snprintf(what, sizeof(what), "Cannot create the disk image '%s'", rt_path_basename(op->dst));
    gtk_notebook_set_current_page(mm->nb, gtk_notebook_page_num(mm->nb, mm->tabs[0].page));
    mgr_job_run(mm->win, "Creating Virtual Hard Disk", what, mgr_media_create_job, mgr_media_op_done, op);
}

/* ---- Copy ---------------------------------------------------------------------------------------------------- */

static int mgr_media_copy_job(struct mgr_job *job, void *opaque, struct cfg_error *err)
{
    struct mgr_media_op *op = opaque;
    /* Copying flattens: the copy is a standalone image of what the source shows, whole chain included. */
    struct blk_create_params p = {.format = op->fmt, .fixed = op->fixed};
    struct rt_uuid uuid;
    return mach_medium_clone(op->src, op->dst, &p, mgr_job_progress, job, &uuid, err);
}

static void mgr_media_copy(void *opaque)
{
    struct mgr_media *mm = opaque;
    struct mgr_media_row *r = mgr_media_selected(mm);
    if (!r || r->md.type != CFG_MEDIUM_HDD)
        return;
    enum blk_format fmt = BLK_FMT_VDI;
    if (r->md.format && !strcmp(r->md.format, "qcow2"))
        fmt = BLK_FMT_QCOW2;
    char *dir = g_path_get_dirname(r->md.location);
    /* A differencing image is named by a UUID; its copy is a whole disk and deserves a name. */
    char *stem = rt_uuid_is_null(&r->md.parent) ? g_strdup(rt_path_basename(r->md.location)) : g_strdup("Disk");
    char *dot = strrchr(stem, '.');
    if (dot && dot != stem)
        *dot = '\0';
    char *stem2 = g_strdup_printf("%s copy", stem);
    char *file = mgr_media_free_name(dir, stem2, fmt == BLK_FMT_QCOW2 ? "qcow2" : "vdi");
    char *intro = g_strdup_printf("Copies %s (everything it shows, snapshots' layers included) into a new, "
                                  "separate image that is added to the media list.",
                                  rt_path_basename(r->md.location));
    struct mgr_disk_dlg d = {0};
    mgr_disk_dlg_build(&d, mm->win, "Copy Virtual Hard Disk", intro, file, false, 0, true, fmt, true);
    g_free(dir);
    g_free(stem);
    g_free(stem2);
    g_free(file);
    g_free(intro);
    if (!mgr_disk_dlg_run(&d)) {
        gtk_widget_destroy(d.dialog);
        return;
    }
    struct mgr_media_op *op = mgr_media_op_new(mm);
    op->src = g_strdup(r->md.location);
    op->dst = mgr_disk_dlg_path(&d);
    op->fmt = mgr_disk_dlg_format(&d);
    op->fixed = gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(d.fixed));
    gtk_widget_destroy(d.dialog);
    char what[600];
    snprintf(what, sizeof(what), "Cannot copy '%s'", rt_path_basename(op->src));
    mgr_job_run(mm->win, "Copying Virtual Hard Disk", what, mgr_media_copy_job, mgr_media_op_done, op);
}

/* ---- Resize -------------------------------------------------------------------------------------------------- */

static int mgr_media_resize_job(struct mgr_job *job, void *opaque, struct cfg_error *err)
{
    (void)job;
    struct mgr_media_op *op = opaque;
    return mach_medium_resize(op->src, op->bytes, err);
}

static void mgr_media_resize(void *opaque)
{
    struct mgr_media *mm = opaque;
    struct mgr_media_row *r = mgr_media_selected(mm);
    if (!r || r->md.type != CFG_MEDIUM_HDD)
        return;
    char *nm = mgr_media_row_name(r);
    char what[600];
    snprintf(what, sizeof(what), "Cannot resize '%s'", nm);
    char *who = NULL;
    if (mgr_media_user_running(r, &who)) {
        char *detail = g_strdup_printf("The machine '%s' uses it and is running. Power it off first.", who);
        mgr_error(mm->win, what, 0, detail);
        g_free(detail);
    } else if (mgr_media_has_children(mm, &r->md.uuid)) {
        mgr_error(mm->win, what, 0,
                  "Differencing images (a snapshot's) sit on this disk; growing it would break them. Delete the "
                  "snapshots first, or resize the differencing image the machine uses now.");
    } else if (!r->open_ok) {
        mgr_error(mm->win, what, r->open_rc, "The image cannot be read.");
    } else {
        char cur[32];
        char *intro = g_strdup_printf("%s is %s now. Disks can only grow; the guest sees the new space after it "
                                      "resizes its partitions.",
                                      nm, mgr_format_size(r->size_bytes, cur, sizeof(cur)));
        struct mgr_disk_dlg d = {0};
        d.min_bytes = r->size_bytes;
        d.resize = true;
        mgr_disk_dlg_build(&d, mm->win, "Resize Virtual Hard Disk", intro, NULL, true, r->size_bytes, false,
                           BLK_FMT_VDI, false);
        g_free(intro);
        struct mgr_media_op *op = NULL;
        if (mgr_disk_dlg_run(&d)) {
            op = mgr_media_op_new(mm);
            op->src = g_strdup(r->md.location);
            op->bytes = mgr_disk_dlg_bytes(&d);
        }
        gtk_widget_destroy(d.dialog);
        if (op)
            mgr_job_run(mm->win, "Resizing Virtual Hard Disk", what, mgr_media_resize_job, mgr_media_op_done, op);
    }
    g_free(who);
    g_free(nm);
}

/* ---- Release ------------------------------------------------------------------------------------------------- */

struct mgr_release {
    struct rt_uuid medium;
    unsigned detached;
};

static int mgr_media_release_edit(void *opaque, struct cfg_machine *m, const char *settings_path, struct cfg_error *err)
{
    (void)settings_path;
    (void)err;
    struct mgr_release *rel = opaque;
    for (size_t i = m->hw.attachment_count; i-- > 0;) {
        struct cfg_attachment *a = &m->hw.attachments[i];
        if (memcmp(&a->medium, &rel->medium, sizeof(rel->medium)))
            continue;
        if (a->type == CFG_MEDIUM_HDD) {
            int rc = cfg_attachment_remove(&m->hw, a->controller, a->port, a->device);
            if (rc < 0)
                return rc;
        } else {
            memset(&a->medium, 0, sizeof(a->medium)); /* optical and floppy drives stay, empty */
        }
        rel->detached++;
    }
    return 0;
}

static void mgr_media_release(void *opaque)
{
    struct mgr_media *mm = opaque;
    struct mgr_media_row *r = mgr_media_selected(mm);
    if (!r)
        return;
    char *nm = mgr_media_row_name(r);
    char what[600];
    snprintf(what, sizeof(what), "Cannot release '%s'", nm);
    struct cfg_machine **ms = NULL;
    char **paths = NULL;
    size_t n = 0;
    struct cfg_error err = {{0}};
    int rc = mach_list(&ms, &paths, &n, &err);
    if (rc < 0) {
        mgr_error(mm->win, what, rc, err.msg);
        g_free(nm);
        return;
    }
    GString *names = g_string_new(NULL), *running = g_string_new(NULL);
    GPtrArray *uuids = g_ptr_array_new_with_free_func(g_free);
    for (size_t i = 0; i < n; i++) {
        bool uses = false;
        for (size_t k = 0; k < ms[i]->hw.attachment_count; k++)
            uses |= !memcmp(&ms[i]->hw.attachments[k].medium, &r->md.uuid, sizeof(r->md.uuid));
        if (!uses)
            continue;
        g_string_append_printf(names, "%s%s", names->len ? ", " : "", ms[i]->name);
        if (mach_is_running(paths[i]))
            g_string_append_printf(running, "%s%s", running->len ? ", " : "", ms[i]->name);
        char us[RT_UUID_STR_LEN];
        rt_uuid_to_str(&ms[i]->uuid, us);
        g_ptr_array_add(uuids, g_strdup(us));
    }
    mach_list_free(ms, paths, n);
    if (!uuids->len && r->user_count) {
        char *detail = g_strdup_printf("Only snapshots of %s use it, and snapshots keep their disks. Deleting those "
                                       "snapshots releases it.",
                                       r->users);
        mgr_error(mm->win, what, 0, detail);
        g_free(detail);
    } else if (!uuids->len) {
        mgr_error(mm->win, what, 0, "No machine uses it.");
    } else if (running->len) {
        char *detail =
            g_strdup_printf("Power off %s first: media are detached from powered-off machines only.", running->str);
        mgr_error(mm->win, what, 0, detail);
        g_free(detail);
    } else {
        char *question = g_strdup_printf("Release '%s'?", nm);
        char *detail =
            g_strdup_printf("It will be detached from %s. The image itself stays in the media list.", names->str);
        if (mgr_confirm(mm->win, question, detail, "Release", false)) {
            struct mgr_release rel = {.medium = r->md.uuid};
            for (guint i = 0; i < uuids->len; i++) {
                struct cfg_error e = {{0}};
                rc = mach_edit(uuids->pdata[i], false, mgr_media_release_edit, &rel, &e);
                if (rc < 0) {
                    mgr_error(mm->win, what, rc, e.msg);
                    break;
                }
            }
            mgr_media_reload(mm);
            mgr_app_refresh(mm->app, NULL);
        }
        g_free(question);
        g_free(detail);
    }
    g_string_free(names, TRUE);
    g_string_free(running, TRUE);
    g_ptr_array_free(uuids, TRUE);
    g_free(nm);
}

/* ---- Remove -------------------------------------------------------------------------------------------------- */

static void mgr_media_remove(void *opaque)
{
    struct mgr_media *mm = opaque;
    struct mgr_media_row *r = mgr_media_selected(mm);
    if (!r)
        return;
    char *nm = mgr_media_row_name(r);
    char what[600];
    snprintf(what, sizeof(what), "Cannot remove '%s'", nm);
    if (r->user_count) {
        char *detail = g_strdup_printf("%s uses it. Release it from the machines first (snapshots keep their disks "
                                       "until they are deleted).",
                                       r->users);
        mgr_error(mm->win, what, VERR_BUSY, detail);
        g_free(detail);
        g_free(nm);
        return;
    }
    GtkWidget *d =
        gtk_message_dialog_new(mm->win, GTK_DIALOG_MODAL | GTK_DIALOG_DESTROY_WITH_PARENT, GTK_MESSAGE_QUESTION,
                               GTK_BUTTONS_NONE, "Remove '%s' from the media list?", nm);
    gtk_window_set_title(GTK_WINDOW(d), "Vireo");
    gtk_message_dialog_format_secondary_text(GTK_MESSAGE_DIALOG(d), "%s",
                                             r->md.type == CFG_MEDIUM_HDD
                                                 ? "Machines can no longer use it until it is added again."
                                                 : "Machines can no longer use it until it is added again. The image "
                                                   "file itself is kept.");
    GtkWidget *del = NULL;
    /* Only disk images are ever deleted: an ISO is somebody's download, never ours to remove. */
    if (r->md.type == CFG_MEDIUM_HDD) {
        del = gtk_check_button_new_with_label("Also delete the image file");
        gtk_box_pack_start(GTK_BOX(gtk_message_dialog_get_message_area(GTK_MESSAGE_DIALOG(d))), del, FALSE, FALSE, 0);
        gtk_widget_show(del);
    }
    gtk_dialog_add_button(GTK_DIALOG(d), "Cancel", GTK_RESPONSE_CANCEL);
    GtkWidget *yes = gtk_dialog_add_button(GTK_DIALOG(d), "Remove", GTK_RESPONSE_ACCEPT);
    gtk_style_context_add_class(gtk_widget_get_style_context(yes), "destructive-action");
    gtk_dialog_set_default_response(GTK_DIALOG(d), GTK_RESPONSE_CANCEL);
    int resp = gtk_dialog_run(GTK_DIALOG(d));
    bool delete_file = del && gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(del));
    gtk_widget_destroy(d);
    if (resp == GTK_RESPONSE_ACCEPT) {
        char us[RT_UUID_STR_LEN];
        rt_uuid_to_str(&r->md.uuid, us);
        struct cfg_error err = {{0}};
        int rc = mach_medium_close(us, delete_file, &err);
        if (rc < 0)
            mgr_error(mm->win, what, rc, err.msg);
        mgr_media_reload(mm);
    }
    g_free(nm);
}

/* ---- The window --------------------------------------------------------------------------------------------- */

static void mgr_media_refresh_clicked(GtkButton *b, gpointer opaque)
{
    (void)b;
    mgr_media_reload(opaque);
}

static void mgr_media_selection_changed(GtkTreeSelection *sel, gpointer opaque)
{
    (void)sel;
    mgr_media_update_details(opaque);
}

static gboolean mgr_media_update_details_idle(gpointer opaque)
{
    struct mgr_media *mm = opaque;
    if (!mm->ref.closed)
        mgr_media_update_details(mm);
    mgr_winref_unref(&mm->ref);
    return G_SOURCE_REMOVE;
}

static void mgr_media_page_switched(GtkNotebook *nb, GtkWidget *page, guint num, gpointer opaque)
{
    (void)nb;
    (void)page;
    (void)num;
    struct mgr_media *mm = opaque;
    /* After the switch: the handler runs before the notebook's current page changes. */
    mgr_winref_ref(&mm->ref);
    g_idle_add(mgr_media_update_details_idle, mm);
}

static void mgr_media_destroyed(GtkWidget *w, gpointer opaque)
{
    (void)w;
    struct mgr_media *mm = opaque;
    if (g_media == mm)
        g_media = NULL;
    g_source_remove(mm->timer);
    mgr_winref_close(&mm->ref);
}

static void mgr_media_tab_new(struct mgr_media *mm, size_t t, enum cfg_medium_type type, const char *title)
{
    struct mgr_media_tab *tab = &mm->tabs[t];
    tab->type = type;
    tab->store = gtk_tree_store_new(COL_COUNT, G_TYPE_STRING, G_TYPE_STRING, G_TYPE_STRING, G_TYPE_STRING,
                                    G_TYPE_STRING, G_TYPE_STRING, G_TYPE_STRING);
    tab->view = GTK_TREE_VIEW(gtk_tree_view_new_with_model(GTK_TREE_MODEL(tab->store)));
    g_object_unref(tab->store);
    mgr_a11y_name(GTK_WIDGET(tab->view), title, NULL);
    static const char *const titles[] = {"Name", "Virtual Size", "Actual Size", "Format", "Type", "Used By"};
    for (int c = COL_NAME; c <= COL_USED; c++) {
        GtkCellRenderer *r = gtk_cell_renderer_text_new();
        if (c == COL_NAME || c == COL_USED)
            g_object_set(r, "ellipsize", PANGO_ELLIPSIZE_MIDDLE, NULL);
        GtkTreeViewColumn *col = gtk_tree_view_column_new_with_attributes(titles[c], r, "text", c, NULL);
        gtk_tree_view_column_set_resizable(col, TRUE);
        gtk_tree_view_column_set_expand(col, c == COL_NAME || c == COL_USED);
        if (c == COL_NAME)
            gtk_tree_view_column_set_min_width(col, 180);
        gtk_tree_view_append_column(tab->view, col);
    }
    tab->page = gtk_scrolled_window_new(NULL, NULL);
    gtk_scrolled_window_set_shadow_type(GTK_SCROLLED_WINDOW(tab->page), GTK_SHADOW_IN);
    gtk_container_add(GTK_CONTAINER(tab->page), GTK_WIDGET(tab->view));
    gtk_notebook_append_page(mm->nb, tab->page, gtk_label_new(title));
    g_signal_connect(gtk_tree_view_get_selection(tab->view), "changed", G_CALLBACK(mgr_media_selection_changed), mm);
}

void mgr_media_show(struct mgr_app *app, GtkWindow *parent)
{
    if (g_media) {
        gtk_window_present(g_media->win);
        return;
    }
    struct mgr_media *mm = g_new0(struct mgr_media, 1);
    mm->app = app;
    mgr_winref_init(&mm->ref, mm, mgr_media_reload_void, mgr_media_settled, mgr_media_free);
    mm->win = GTK_WINDOW(gtk_window_new(GTK_WINDOW_TOPLEVEL));
    gtk_window_set_title(mm->win, "Media Manager");
    if (parent)
        gtk_window_set_transient_for(mm->win, parent);
    gtk_window_set_default_size(mm->win, 900, 560);
    if (app->gtk)
        gtk_application_add_window(app->gtk, mm->win);
    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 8);
    gtk_container_set_border_width(GTK_CONTAINER(box), 12);

    GtkWidget *tools = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
    mm->add = gtk_button_new_with_label("Add…");
    mm->create = gtk_button_new_with_label("Create…");
    mm->copy = gtk_button_new_with_label("Copy…");
    mm->resize = gtk_button_new_with_label("Resize…");
    mm->release = gtk_button_new_with_label("Release");
    mm->remove = gtk_button_new_with_label("Remove");
    mm->refresh = gtk_button_new_with_label("Refresh");
    GtkWidget *buttons[] = {mm->add, mm->create, mm->copy, mm->resize, mm->release, mm->remove};
    for (size_t i = 0; i < G_N_ELEMENTS(buttons); i++)
        gtk_box_pack_start(GTK_BOX(tools), buttons[i], FALSE, FALSE, 0);
    gtk_box_pack_end(GTK_BOX(tools), mm->refresh, FALSE, FALSE, 0);
    gtk_box_pack_start(GTK_BOX(box), tools, FALSE, FALSE, 0);

    mm->nb = GTK_NOTEBOOK(gtk_notebook_new());
    mgr_media_tab_new(mm, 0, CFG_MEDIUM_HDD, "Hard Disks");
    mgr_media_tab_new(mm, 1, CFG_MEDIUM_DVD, "Optical Disks");
    mgr_media_tab_new(mm, 2, CFG_MEDIUM_FLOPPY, "Floppy Disks");
    gtk_widget_set_vexpand(GTK_WIDGET(mm->nb), TRUE);
    gtk_box_pack_start(GTK_BOX(box), GTK_WIDGET(mm->nb), TRUE, TRUE, 0);

    GtkWidget *frame = gtk_frame_new("Details");
    mm->details = gtk_label_new("");
    gtk_label_set_xalign(GTK_LABEL(mm->details), 0.0f);
    gtk_label_set_yalign(GTK_LABEL(mm->details), 0.0f);
    gtk_label_set_selectable(GTK_LABEL(mm->details), TRUE);
    gtk_label_set_line_wrap(GTK_LABEL(mm->details), TRUE);
    gtk_label_set_line_wrap_mode(GTK_LABEL(mm->details), PANGO_WRAP_WORD_CHAR);
    gtk_widget_set_size_request(mm->details, -1, 80);
    gtk_widget_set_margin_start(mm->details, 8);
    gtk_widget_set_margin_end(mm->details, 8);
    gtk_widget_set_margin_top(mm->details, 4);
    gtk_widget_set_margin_bottom(mm->details, 8);
    mgr_a11y_name(mm->details, "Medium details", NULL);
    gtk_container_add(GTK_CONTAINER(frame), mm->details);
    gtk_box_pack_start(GTK_BOX(box), frame, FALSE, FALSE, 0);

    GtkWidget *bottom = gtk_button_box_new(GTK_ORIENTATION_HORIZONTAL);
    gtk_button_box_set_layout(GTK_BUTTON_BOX(bottom), GTK_BUTTONBOX_END);
    GtkWidget *close = gtk_button_new_with_label("Close");
    gtk_container_add(GTK_CONTAINER(bottom), close);
    gtk_box_pack_start(GTK_BOX(box), bottom, FALSE, FALSE, 0);
    gtk_container_add(GTK_CONTAINER(mm->win), box);

    mgr_winref_on_click(&mm->ref, mm->add, mgr_media_add);
    mgr_winref_on_click(&mm->ref, mm->create, mgr_media_create);
    mgr_winref_on_click(&mm->ref, mm->copy, mgr_media_copy);
    mgr_winref_on_click(&mm->ref, mm->resize, mgr_media_resize);
    mgr_winref_on_click(&mm->ref, mm->release, mgr_media_release);
    mgr_winref_on_click(&mm->ref, mm->remove, mgr_media_remove);
    g_signal_connect(mm->refresh, "clicked", G_CALLBACK(mgr_media_refresh_clicked), mm);
    g_signal_connect_swapped(close, "clicked", G_CALLBACK(gtk_widget_destroy), mm->win);
    g_signal_connect(mm->nb, "switch-page", G_CALLBACK(mgr_media_page_switched), mm);
    g_signal_connect(mm->win, "destroy", G_CALLBACK(mgr_media_destroyed), mm);

    g_media = mm;
    if (!g_media_listening && app->model) {
        /* One listener for the module: the model has no way to stop listening, and the window comes and goes. */
        mgr_model_listen(app->model, mgr_media_model_event, NULL);
        g_media_listening = true;
    }
    gtk_widget_show_all(GTK_WIDGET(mm->win));
    gtk_widget_hide(mm->tabs[2].page);
    mgr_media_update_details(mm);
    mgr_media_reload(mm);
    mm->timer = g_timeout_add(MGR_POLL_MS, mgr_media_poll, mm);
}
