/* mgr-newvm.c - the New Machine assistant: name, folder, installation ISO with the OS type detected, hardware, a disk, a summary, and creating it all (or nothing) in a background job. */

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

#define MIB                (1024ull * 1024ull)
#define NV_DETECT_DELAY_MS 250 /* typing a path: detect once it stops changing */

enum nv_disk_mode { NV_DISK_NEW = 0, NV_DISK_EXISTING, NV_DISK_NONE };

/* The assistant's state; reference-counted because a detection task may outlive the window. */
struct nv {
    int refs;
    bool closed;   /* the window is gone: late task results are dropped */
    bool creating; /* the job runs: closing waits for it */
    bool updating; /* values set by the program, not by the person */
    struct mgr_app *app;
    GtkWidget *assistant;

    /* Name and Operating System */
    GtkWidget *page_os, *name, *name_err, *folder, *folder_err, *iso, *iso_err, *type, *detected;
    bool type_chosen; /* the person picked a type: detection no longer changes it */
    bool detecting;
    unsigned detect_gen;
    guint detect_timer;

    /* Hardware */
    GtkWidget *page_hw, *memory, *memory_scale, *memory_err, *memory_hint, *cpus, *cpus_err, *efi;
    bool memory_set, cpus_set, efi_set, size_set; /* the person changed them: a new type keeps them */
    uint64_t host_mib;
    unsigned host_cpus;

    /* Hard Disk */
    GtkWidget *page_disk, *disk_new, *disk_existing, *disk_none, *size, *size_err, *format, *fixed;
    GtkWidget *existing, *existing_err, *new_box, *existing_box;

    /* Summary */
    GtkWidget *page_summary, *summary;
};

static struct nv *nv_ref(struct nv *nv)
{
    nv->refs++;
    return nv;
}

static void nv_unref(struct nv *nv)
{
    if (--nv->refs == 0)
        g_free(nv);
}

/* ---- Small helpers ---------------------------------------------------------------------------------------------- */

static const struct cfg_ostype *nv_ostype(struct nv *nv)
{
    const char *id = gtk_combo_box_get_active_id(GTK_COMBO_BOX(nv->type));
    return id ? cfg_ostype_find(nv->app->ostypes, id) : NULL;
}

static uint64_t nv_disk_bytes(struct nv *nv)
{
    /* MiB precision: the spin shows GiB with two decimals. */
    double gib = gtk_spin_button_get_value(GTK_SPIN_BUTTON(nv->size));
    if (gib <= 0)
        return 0;
    return (uint64_t)llround(gib * 1024.0) * MIB;
}

static enum nv_disk_mode nv_disk_mode(struct nv *nv)
{
    if (gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(nv->disk_existing)))
        return NV_DISK_EXISTING;
    if (gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(nv->disk_none)))
        return NV_DISK_NONE;
    return NV_DISK_NEW;
}

/* A label and its field in a grid row, the field named after the label for people using assistive tools. */
static void nv_row(GtkGrid *grid, int row, const char *label, const char *name, GtkWidget *field, GtkWidget *extra)
{
    GtkWidget *l = gtk_label_new_with_mnemonic(label);
    gtk_label_set_xalign(GTK_LABEL(l), 0.0f);
    gtk_label_set_mnemonic_widget(GTK_LABEL(l), field);
    gtk_widget_set_hexpand(field, TRUE);
    mgr_a11y_name(field, name, NULL);
    gtk_grid_attach(grid, l, 0, row, 1, 1);
    gtk_grid_attach(grid, field, 1, row, extra ? 1 : 2, 1);
    if (extra)
        gtk_grid_attach(grid, extra, 2, row, 1, 1);
}

static GtkWidget *nv_grid(void)
{
    GtkWidget *g = gtk_grid_new();
    gtk_grid_set_row_spacing(GTK_GRID(g), 8);
    gtk_grid_set_column_spacing(GTK_GRID(g), 12);
    gtk_container_set_border_width(GTK_CONTAINER(g), 12);
    return g;
}

/* ---- Checking the pages ----------------------------------------------------------------------------------------- */

static bool nv_check_os_page(struct nv *nv)
{
    char why[MGR_WHY_MAX];
    const char *name = gtk_entry_get_text(GTK_ENTRY(nv->name));
    const char *folder = gtk_entry_get_text(GTK_ENTRY(nv->folder));
    const char *iso = gtk_entry_get_text(GTK_ENTRY(nv->iso));
    bool ok = true;
    bool folder_ok = mgr_check_folder(folder, why);
    mgr_field_error_set(nv->folder_err, folder_ok ? NULL : why);
    ok &= folder_ok;
    bool name_ok = mgr_check_new_name(name, folder_ok ? folder : NULL, why);
    mgr_field_error_set(nv->name_err, name_ok ? NULL : why);
    ok &= name_ok;
    bool iso_ok = mgr_check_iso(iso, why);
    mgr_field_error_set(nv->iso_err, iso_ok ? NULL : why);
    ok &= iso_ok;
    ok &= nv_ostype(nv) != NULL;
    /* Wait for the detection: it may still change the type and with it the next page's defaults. */
    ok &= !nv->detecting;
    gtk_assistant_set_page_complete(GTK_ASSISTANT(nv->assistant), nv->page_os, ok);
    return ok;
}

static bool nv_check_hw_page(struct nv *nv)
{
    char why[MGR_WHY_MAX];
    uint64_t mib = (uint64_t)gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(nv->memory));
    unsigned cpus = (unsigned)gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(nv->cpus));
    bool mem_ok = mgr_check_memory(mib, nv->host_mib, why);
    mgr_field_error_set(nv->memory_err, mem_ok ? NULL : why);
    bool cpus_ok = mgr_check_cpus(cpus, nv->host_cpus, why);
    mgr_field_error_set(nv->cpus_err, cpus_ok ? NULL : why);
    gtk_assistant_set_page_complete(GTK_ASSISTANT(nv->assistant), nv->page_hw, mem_ok && cpus_ok);
    return mem_ok && cpus_ok;
}

static bool nv_check_disk_page(struct nv *nv)
{
    char why[MGR_WHY_MAX];
    enum nv_disk_mode mode = nv_disk_mode(nv);
    bool ok = true;
    gtk_widget_set_sensitive(nv->new_box, mode == NV_DISK_NEW);
    gtk_widget_set_sensitive(nv->existing_box, mode == NV_DISK_EXISTING);
    if (mode == NV_DISK_NEW) {
        bool fixed = gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(nv->fixed));
        char *folder = rt_path_join(gtk_entry_get_text(GTK_ENTRY(nv->folder)), gtk_entry_get_text(GTK_ENTRY(nv->name)));
        ok = mgr_check_disk_size(nv_disk_bytes(nv), fixed, folder, why);
        free(folder);
        mgr_field_error_set(nv->size_err, ok ? NULL : why);
    } else {
        mgr_field_error_set(nv->size_err, NULL);
    }
    if (mode == NV_DISK_EXISTING) {
        const char *id = gtk_combo_box_get_active_id(GTK_COMBO_BOX(nv->existing));
        if (!id || !*id) {
            ok = false;
            mgr_field_error_set(nv->existing_err, "Choose a disk, or a file with \"Choose a file…\".");
        } else if (id[0] == '/' && access(id, R_OK | W_OK) != 0) {
            ok = false;
            snprintf(why, sizeof(why), "Cannot use '%s': %s.", id, strerror(errno));
            mgr_field_error_set(nv->existing_err, why);
        } else {
            mgr_field_error_set(nv->existing_err, NULL);
        }
    } else {
        mgr_field_error_set(nv->existing_err, NULL);
    }
    gtk_assistant_set_page_complete(GTK_ASSISTANT(nv->assistant), nv->page_disk, ok);
    return ok;
}

/* ---- Defaults from the OS type ---------------------------------------------------------------------------------- */

static void nv_memory_hint(struct nv *nv)
{
    const struct cfg_ostype *t = nv_ostype(nv);
    char host[32], rec[32], text[256];
    mgr_format_size(nv->host_mib * MIB, host, sizeof(host));
    if (t) {
        mgr_format_size(t->memory_mib * MIB, rec, sizeof(rec));
        snprintf(text, sizeof(text), "This computer has %s of memory; %s recommends %s.", host, t->description, rec);
    } else {
        snprintf(text, sizeof(text), "This computer has %s of memory.", host);
    }
    gtk_label_set_text(GTK_LABEL(nv->memory_hint), text);
}

/* The preset's hardware, except what the person set already. */
static void nv_apply_preset(struct nv *nv)
{
    const struct cfg_ostype *t = nv_ostype(nv);
    if (!t)
        return;
    nv->updating = true;
    if (!nv->memory_set) {
        uint64_t mib = t->memory_mib;
        /* A preset that wants more than the host has would start with an error: half the host's RAM instead. */
        if (nv->host_mib && mib > nv->host_mib)
            mib = nv->host_mib / 2;
        gtk_spin_button_set_value(GTK_SPIN_BUTTON(nv->memory), (double)mib);
    }
    if (!nv->cpus_set) {
        unsigned cpus = t->cpus ? t->cpus : 1;
        if (cpus > nv->host_cpus)
            cpus = nv->host_cpus;
        gtk_spin_button_set_value(GTK_SPIN_BUTTON(nv->cpus), cpus);
    }
    if (!nv->efi_set)
        gtk_toggle_button_set_active(GTK_TOGGLE_BUTTON(nv->efi), t->firmware == CFG_FW_EFI);
    if (!nv->size_set)
        gtk_spin_button_set_value(GTK_SPIN_BUTTON(nv->size), (double)t->disk_bytes / (double)(1ull << 30));
    nv->updating = false;
    nv_memory_hint(nv);
    nv_check_hw_page(nv);
    nv_check_disk_page(nv);
}

static void nv_set_type(struct nv *nv, const char *id)
{
    nv->updating = true;
    gtk_combo_box_set_active_id(GTK_COMBO_BOX(nv->type), id);
    nv->updating = false;
    nv_apply_preset(nv);
}

/* ---- OS detection on a worker thread ---------------------------------------------------------------------------- */

struct nv_detect {
    struct nv *nv;
    unsigned gen;
    char *path;
    const struct cfg_ostypes *types;
    char *id, *how;
};

static void nv_detect_free(gpointer p)
{
    struct nv_detect *d = p;
    free(d->id);
    free(d->how);
    g_free(d->path);
    g_free(d);
}

static void nv_detect_thread(GTask *task, gpointer source, gpointer opaque, GCancellable *cancel)
{
    (void)source;
    (void)cancel;
    struct nv_detect *d = opaque;
    d->id = mgr_osdetect(d->types, d->path, &d->how);
    g_task_return_boolean(task, TRUE);
}

static void nv_detect_done(GObject *source, GAsyncResult *res, gpointer opaque)
{
    (void)source;
    (void)opaque;
    struct nv_detect *d = g_task_get_task_data(G_TASK(res));
    struct nv *nv = d->nv;
    if (!nv->closed && d->gen == nv->detect_gen) {
        nv->detecting = false;
        if (d->id) {
            const struct cfg_ostype *t = cfg_ostype_find(nv->app->ostypes, d->id);
            char *text = g_strdup_printf("Detected: %s%s%s", d->how ? d->how : d->id,
                                         nv->type_chosen ? " (your choice of type stays)" : " → ",
                                         nv->type_chosen ? "" : (t ? t->description : d->id));
            gtk_label_set_text(GTK_LABEL(nv->detected), text);
            g_free(text);
            if (!nv->type_chosen)
                nv_set_type(nv, d->id);
        } else {
            gtk_label_set_text(GTK_LABEL(nv->detected),
                               "Could not recognise the system on this image; choose the type.");
        }
        gtk_widget_show(nv->detected);
        nv_check_os_page(nv);
    }
    nv_unref(nv);
}

static gboolean nv_detect_start(gpointer opaque)
{
    struct nv *nv = opaque;
    nv->detect_timer = 0;
    const char *iso = gtk_entry_get_text(GTK_ENTRY(nv->iso));
    char why[MGR_WHY_MAX];
    nv->detect_gen++;
    if (!*iso || !mgr_check_iso(iso, why)) {
        nv->detecting = false;
        gtk_widget_hide(nv->detected);
        nv_check_os_page(nv);
        return G_SOURCE_REMOVE;
    }
    struct nv_detect *d = g_new0(struct nv_detect, 1);
    d->nv = nv_ref(nv);
    d->gen = nv->detect_gen;
    d->path = g_strdup(iso);
    d->types = nv->app->ostypes;
    nv->detecting = true;
    gtk_label_set_text(GTK_LABEL(nv->detected), "Looking at the image…");
    gtk_widget_show(nv->detected);
    nv_check_os_page(nv);
    GTask *task = g_task_new(NULL, NULL, nv_detect_done, NULL);
    g_task_set_task_data(task, d, nv_detect_free);
    g_task_run_in_thread(task, nv_detect_thread);
    g_object_unref(task);
    return G_SOURCE_REMOVE;
}

static void nv_iso_changed(GtkEditable *e, gpointer opaque)
{
    (void)e;
    struct nv *nv = opaque;
    if (nv->detect_timer)
        g_source_remove(nv->detect_timer);
    /* Until the detection has run, Next waits (the type may still change). */
    nv->detecting = true;
    nv->detect_gen++;
    nv->detect_timer = g_timeout_add(NV_DETECT_DELAY_MS, nv_detect_start, nv);
    nv_check_os_page(nv);
}

/* ---- Signals ---------------------------------------------------------------------------------------------------- */

static void nv_os_changed(GtkWidget *w, gpointer opaque)
{
    (void)w;
    nv_check_os_page(opaque);
}

static void nv_type_changed(GtkComboBox *c, gpointer opaque)
{
    (void)c;
    struct nv *nv = opaque;
    if (nv->updating)
        return;
    nv->type_chosen = true;
    nv_apply_preset(nv);
    nv_check_os_page(nv);
}

static void nv_memory_changed(GtkSpinButton *s, gpointer opaque)
{
    struct nv *nv = opaque;
    if (!nv->updating)
        nv->memory_set = true;
    /* The slider covers the host's memory; the spin may go beyond it to show why that is not possible. */
    double v = gtk_spin_button_get_value(s);
    GtkAdjustment *a = gtk_range_get_adjustment(GTK_RANGE(nv->memory_scale));
    bool was = nv->updating;
    nv->updating = true;
    gtk_adjustment_set_value(a, v > gtk_adjustment_get_upper(a) ? gtk_adjustment_get_upper(a) : v);
    nv->updating = was;
    nv_check_hw_page(nv);
}

static void nv_memory_scale_changed(GtkRange *r, gpointer opaque)
{
    struct nv *nv = opaque;
    if (nv->updating)
        return;
    gtk_spin_button_set_value(GTK_SPIN_BUTTON(nv->memory), floor(gtk_range_get_value(r)));
}

static void nv_cpus_changed(GtkSpinButton *s, gpointer opaque)
{
    (void)s;
    struct nv *nv = opaque;
    if (!nv->updating)
        nv->cpus_set = true;
    nv_check_hw_page(nv);
}

static void nv_efi_toggled(GtkToggleButton *b, gpointer opaque)
{
    (void)b;
    struct nv *nv = opaque;
    if (!nv->updating)
        nv->efi_set = true;
}

static void nv_size_changed(GtkSpinButton *s, gpointer opaque)
{
    (void)s;
    struct nv *nv = opaque;
    if (!nv->updating)
        nv->size_set = true;
    nv_check_disk_page(nv);
}

static void nv_disk_changed(GtkWidget *w, gpointer opaque)
{
    (void)w;
    nv_check_disk_page(opaque);
}

/* ---- File choosers ---------------------------------------------------------------------------------------------- */

static char *nv_choose(struct nv *nv, const char *title, GtkFileChooserAction action, const char *current, bool iso)
{
    GtkWidget *d = gtk_file_chooser_dialog_new(title, GTK_WINDOW(nv->assistant), action, "_Cancel", GTK_RESPONSE_CANCEL,
                                               action == GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER ? "_Select" : "_Open",
                                               GTK_RESPONSE_ACCEPT, NULL);
    gtk_file_chooser_set_local_only(GTK_FILE_CHOOSER(d), TRUE);
    if (current && *current) {
        if (action == GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER && g_file_test(current, G_FILE_TEST_IS_DIR)) {
            gtk_file_chooser_set_current_folder(GTK_FILE_CHOOSER(d), current);
        } else if (g_file_test(current, G_FILE_TEST_EXISTS)) {
            gtk_file_chooser_set_filename(GTK_FILE_CHOOSER(d), current);
        }
    }
    if (iso)
        mgr_file_filter_add(d, "CD/DVD images (*.iso)", (const char *const[]){"*.iso", "*.ISO", NULL});
    if (action == GTK_FILE_CHOOSER_ACTION_OPEN)
        mgr_file_filter_add(d, "All files", (const char *const[]){"*", NULL});
    return mgr_file_chooser_run(d);
}

static void nv_browse_folder(GtkButton *b, gpointer opaque)
{
    (void)b;
    struct nv *nv = opaque;
    char *f = nv_choose(nv, "Choose a folder for the machine", GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER,
                        gtk_entry_get_text(GTK_ENTRY(nv->folder)), false);
    if (f)
        gtk_entry_set_text(GTK_ENTRY(nv->folder), f);
    g_free(f);
}

static void nv_browse_iso(GtkButton *b, gpointer opaque)
{
    (void)b;
    struct nv *nv = opaque;
    char *f = nv_choose(nv, "Choose an installation image", GTK_FILE_CHOOSER_ACTION_OPEN,
                        gtk_entry_get_text(GTK_ENTRY(nv->iso)), true);
    if (f)
        gtk_entry_set_text(GTK_ENTRY(nv->iso), f);
    g_free(f);
}

#define NV_CHOOSE_FILE "choose-file"

/* "Choose a file…" in the existing-disk combo: the chooser opens from an idle callback, as mgr_on_click explains. */
static gboolean nv_choose_disk_idle(gpointer opaque)
{
    GtkComboBox *c = opaque;
    GtkWidget *top = gtk_widget_get_toplevel(GTK_WIDGET(c));
    if (top == GTK_WIDGET(c) || !gtk_widget_get_visible(top)) { /* the assistant closed meanwhile */
        g_object_unref(c);
        return G_SOURCE_REMOVE;
    }
    struct nv *nv = g_object_get_data(G_OBJECT(c), "mgr-nv");
    g_object_unref(c);
    const char *id = gtk_combo_box_get_active_id(c);
    if (id && !strcmp(id, NV_CHOOSE_FILE)) {
        char *f = nv_choose(nv, "Choose a disk image", GTK_FILE_CHOOSER_ACTION_OPEN, NULL, false);
        if (f) {
            /* Registered when the machine is created, so that cancelling leaves the media registry alone. */
            gtk_combo_box_text_insert(GTK_COMBO_BOX_TEXT(c), 0, f, f);
            gtk_combo_box_set_active_id(c, f);
        } else {
            gtk_combo_box_set_active(c, -1);
        }
        g_free(f);
    }
    nv_check_disk_page(nv);
    return G_SOURCE_REMOVE;
}

static void nv_existing_changed(GtkComboBox *c, gpointer opaque)
{
    const char *id = gtk_combo_box_get_active_id(c);
    if (id && !strcmp(id, NV_CHOOSE_FILE))
        g_idle_add(nv_choose_disk_idle, g_object_ref(c));
    else
        nv_check_disk_page(opaque);
}

/* Registered hard disks that nothing uses and that no differencing image sits on. */
static void nv_fill_existing(struct nv *nv)
{
    struct cfg_medium *media = NULL;
    size_t n = 0;
    struct cfg_error err = {{0}};
    if (mach_medium_list(CFG_MEDIUM_HDD, &media, &n, &err) == 0) {
        for (size_t i = 0; i < n; i++) {
            bool has_child = false;
            for (size_t j = 0; j < n && !has_child; j++)
                has_child = !memcmp(media[j].parent.bytes, media[i].uuid.bytes, 16);
            char **names = NULL;
            size_t users = 0;
            if (has_child || !rt_uuid_is_null(&media[i].parent) ||
                mach_medium_users(&media[i].uuid, &names, &users, &err) < 0)
                continue;
            for (size_t k = 0; k < users; k++)
                free(names[k]);
            free(names);
            if (users)
                continue;
            char us[RT_UUID_STR_LEN], size[32] = "";
            rt_uuid_to_str(&media[i].uuid, us);
            /* The disk's size as the guest sees it (only the header is read). */
            struct blk_image *img = NULL;
            if (blk_open(media[i].location, BLK_FMT_AUTO, BLK_OPEN_READONLY | BLK_OPEN_NO_BACKING, &img) == 0)
                mgr_format_size(blk_size_bytes(img), size, sizeof(size));
            blk_close(img);
            char *text = g_strdup_printf("%s (%s %s)", media[i].location, media[i].format ? media[i].format : "disk",
                                         size[0] ? size : "unreadable");
            gtk_combo_box_text_append(GTK_COMBO_BOX_TEXT(nv->existing), us, text);
            g_free(text);
        }
        mach_medium_list_free(media, n);
    }
    gtk_combo_box_text_append(GTK_COMBO_BOX_TEXT(nv->existing), NV_CHOOSE_FILE, "Choose a file…");
}

/* ---- The summary ------------------------------------------------------------------------------------------------ */

static void nv_summary(struct nv *nv)
{
    const struct cfg_ostype *t = nv_ostype(nv);
    const char *name = gtk_entry_get_text(GTK_ENTRY(nv->name));
    const char *iso = gtk_entry_get_text(GTK_ENTRY(nv->iso));
    char *folder = rt_path_join(gtk_entry_get_text(GTK_ENTRY(nv->folder)), name);
    GString *s = g_string_new(NULL);
    char mem[32], disk[32];
    g_string_append_printf(s, "Name: %s\nFolder: %s\nType: %s\n", name, folder ? folder : "", t ? t->description : "");
    mgr_format_size((uint64_t)gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(nv->memory)) * MIB, mem, sizeof(mem));
    int cpus = gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(nv->cpus));
    g_string_append_printf(s, "Memory: %s\nProcessors: %d\nFirmware: %s\n", mem, cpus,
                           gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(nv->efi)) ? "EFI" : "BIOS");
    switch (nv_disk_mode(nv)) {
    case NV_DISK_NEW: {
        const char *fmt = gtk_combo_box_get_active_id(GTK_COMBO_BOX(nv->format));
        bool fixed = gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(nv->fixed));
        g_string_append_printf(s, "Hard disk: a new %s disk of %s (%s), %s/%s.%s\n", fixed ? "fixed-size" : "dynamic",
                               mgr_format_size(nv_disk_bytes(nv), disk, sizeof(disk)),
                               fmt && !strcmp(fmt, "qcow2") ? "qcow2" : "VDI", folder ? folder : "", name,
                               fmt && !strcmp(fmt, "qcow2") ? "qcow2" : "vdi");
        break;
    }
    case NV_DISK_EXISTING: {
        gchar *text = gtk_combo_box_text_get_active_text(GTK_COMBO_BOX_TEXT(nv->existing));
        g_string_append_printf(s, "Hard disk: %s\n", text ? text : "");
        g_free(text);
        break;
    }
    case NV_DISK_NONE:
        g_string_append(s, "Hard disk: none\n");
        break;
    }
    if (*iso)
        g_string_append_printf(s, "Installation medium: %s (in the DVD drive; the machine starts from it)\n", iso);
    else
        g_string_append(s, "Installation medium: none (an empty DVD drive)\n");
    gtk_label_set_text(GTK_LABEL(nv->summary), s->str);
    mgr_a11y_name(nv->summary, "Summary", NULL);
    g_string_free(s, TRUE);
    free(folder);
}

/* ---- Creating (worker thread) ----------------------------------------------------------------------------------- */

struct nv_create {
    struct nv *nv;
    /* what to make, copied from the widgets */
    char *name, *folder, *ostype, *iso;
    uint64_t memory_mib;
    unsigned cpus;
    bool efi;
    enum nv_disk_mode disk_mode;
    uint64_t disk_bytes;
    enum blk_format disk_format;
    bool disk_fixed;
    char *existing; /* a medium's UUID, or a path to register */
    /* what was made */
    struct rt_uuid uuid, disk_uuid, dvd_uuid;
    bool have_disk, have_dvd;
};

static void nv_create_free(struct nv_create *c)
{
    g_free(c->name);
    g_free(c->folder);
    g_free(c->ostype);
    g_free(c->iso);
    g_free(c->existing);
    g_free(c);
}

static const struct cfg_controller *nv_controller_for(const struct cfg_hardware *hw, enum cfg_bus bus)
{
    for (size_t i = 0; i < hw->controller_count; i++)
        if (hw->controllers[i].bus == bus)
            return &hw->controllers[i];
    return NULL;
}

/* The edit inside mach_edit: hardware the person chose, the disk and the DVD drive, boot order. */
static int nv_edit(void *opaque, struct cfg_machine *m, const char *settings_path, struct cfg_error *err)
{
    (void)settings_path;
    struct nv_create *c = opaque;
    m->hw.memory_mib = c->memory_mib;
    m->hw.cpus = c->cpus;
    m->hw.firmware = c->efi ? CFG_FW_EFI : CFG_FW_BIOS;
    /* The preset made one controller for disks and one for the DVD (or one for both). */
    const struct cfg_ostype *t = cfg_ostype_find(c->nv->app->ostypes, c->ostype);
    const struct cfg_controller *dc = t ? nv_controller_for(&m->hw, t->disk_bus) : NULL;
    const struct cfg_controller *vc = t ? nv_controller_for(&m->hw, t->dvd_bus) : NULL;
    if (!dc || !vc) {
        snprintf(err->msg, sizeof(err->msg), "the OS type '%s' gave the machine no storage controller for %s",
                 c->ostype, dc ? "the DVD drive" : "the disk");
        return VERR_NOT_FOUND;
    }
    int rc = 0;
    if (c->have_disk) {
        struct cfg_attachment a = {
            .controller = dc->name, .port = 0, .device = 0, .type = CFG_MEDIUM_HDD, .medium = c->disk_uuid};
        rc = cfg_attachment_set(&m->hw, &a);
    }
    if (rc == 0) {
        /* Sharing the disk's controller: IDE's secondary master, or SATA's next port, as VirtualBox does. */
        unsigned port = vc == dc ? 1 : 0;
        struct cfg_attachment a = {.controller = vc->name, .port = port, .device = 0, .type = CFG_MEDIUM_DVD};
        if (c->have_dvd)
            a.medium = c->dvd_uuid;
        rc = cfg_attachment_set(&m->hw, &a);
    }
    if (rc < 0) {
        snprintf(err->msg, sizeof(err->msg), "cannot attach the %s to the machine '%s': %s",
                 c->have_disk ? "disk and DVD drive" : "DVD drive", m->name, rt_err_str(rc));
        return rc;
    }
    m->hw.boot[0] = CFG_BOOT_DVD;
    m->hw.boot[1] = CFG_BOOT_DISK;
    for (unsigned i = 2; i < CFG_BOOT_SLOTS; i++)
        m->hw.boot[i] = CFG_BOOT_NONE;
    return 0;
}

/* The folders of path that do not exist yet, deepest first (so they can be removed in that order). */
static GPtrArray *nv_missing_folders(const char *path)
{
    GPtrArray *a = g_ptr_array_new_with_free_func(g_free);
    char *p = g_strdup(path);
    while (p && strcmp(p, "/") && strcmp(p, ".") && !g_file_test(p, G_FILE_TEST_EXISTS)) {
        g_ptr_array_add(a, p);
        p = g_path_get_dirname(p);
    }
    g_free(p);
    return a;
}

/* Removes what mach_create made for a machine that is not registered: its settings file, sidecars and folder. */
static void nv_remove_machine_files(const char *settings_path)
{
    static const char *const sidecars[] = {"", "-prev", ".lock"};
    for (size_t i = 0; i < sizeof(sidecars) / sizeof(sidecars[0]); i++) {
        char *p = g_strdup_printf("%s%s", settings_path, sidecars[i]);
        unlink(p);
        g_free(p);
    }
    char *nv = mach_nvram_path(settings_path);
    if (nv)
        unlink(nv);
    free(nv);
    char *folder = mach_folder(settings_path);
    if (folder)
        rmdir(folder);
    free(folder);
}

static int nv_create_job(struct mgr_job *job, void *opaque, struct cfg_error *err)
{
    struct nv_create *c = opaque;
    char *path = NULL;
    bool disk_created = false, disk_registered = false, dvd_registered = false;
    GPtrArray *missing = nv_missing_folders(c->folder);
    int rc;

    mgr_job_status(job, "Creating the machine's settings…");
    /* Registered only at the end, so the list never shows a machine that is not complete. */
    rc = mach_create(c->name, c->ostype, c->folder, false, &path, &c->uuid, err);
    if (rc < 0)
        goto fail;
    char *mdir = mach_folder(path);

    if (c->disk_mode == NV_DISK_NEW) {
        char *file = g_strdup_printf("%s.%s", c->name, c->disk_format == BLK_FMT_QCOW2 ? "qcow2" : "vdi");
        char *disk = rt_path_join(mdir, file);
        g_free(file);
        char size[32];
        char *status = g_strdup_printf("Creating the %s disk of %s…", c->disk_fixed ? "fixed-size" : "dynamic",
                                       mgr_format_size(c->disk_bytes, size, sizeof(size)));
        mgr_job_status(job, status);
        g_free(status);
        /* blk_create reports no progress: the bar pulses while a fixed disk is written out. */
        mgr_job_progress(job, 0, 0);
        rc = disk ? mach_medium_create(disk, c->disk_format, c->disk_bytes, c->disk_fixed, &c->disk_uuid, err)
                  : VERR_NO_MEMORY;
        free(disk);
        disk_created = rc == 0;
        c->have_disk = rc == 0;
    } else if (c->disk_mode == NV_DISK_EXISTING) {
        if (c->existing[0] == '/') {
            struct cfg_medium known;
            struct cfg_error ferr = {{0}};
            bool was_registered = mach_medium_find(c->existing, &known, &ferr) == 0;
            if (was_registered)
                mach_medium_clear(&known);
            rc = mach_medium_open(c->existing, CFG_MEDIUM_HDD, &c->disk_uuid, err);
            disk_registered = rc == 0 && !was_registered;
        } else {
            rc = rt_uuid_parse(c->existing, &c->disk_uuid);
        }
        c->have_disk = rc == 0;
    }
    free(mdir);
    if (rc < 0)
        goto fail;

    if (c->iso && *c->iso) {
        mgr_job_status(job, "Registering the installation image…");
        struct cfg_medium known;
        struct cfg_error ferr = {{0}};
        bool was_registered = mach_medium_find(c->iso, &known, &ferr) == 0;
        if (was_registered)
            mach_medium_clear(&known);
        rc = mach_medium_open(c->iso, CFG_MEDIUM_DVD, &c->dvd_uuid, err);
        if (rc < 0)
            goto fail;
        dvd_registered = !was_registered;
        c->have_dvd = true;
    }

    mgr_job_status(job, "Setting up the hardware…");
    rc = mach_edit_path(path, false, nv_edit, c, err);
    if (rc < 0)
        goto fail;
    if (!c->efi) {
        /* The preset may have wanted EFI and mach_create made a variable store the machine will not use. */
        char *nvram = mach_nvram_path(path);
        if (nvram)
            unlink(nvram);
        free(nvram);
    }
    mgr_job_status(job, "Registering the machine…");
    rc = mach_register(path, err);
    if (rc < 0)
        goto fail;
    free(path);
    g_ptr_array_free(missing, TRUE);
    return 0;

fail:;
    /* Nothing half-way: undo in reverse order, keeping the first error for the person. */
    struct cfg_error uerr = {{0}};
    char us[RT_UUID_STR_LEN];
    if (dvd_registered) {
        rt_uuid_to_str(&c->dvd_uuid, us);
        mach_medium_close(us, false, &uerr);
    }
    if (disk_created || disk_registered) {
        rt_uuid_to_str(&c->disk_uuid, us);
        mach_medium_close(us, disk_created, &uerr);
    }
    if (path)
        nv_remove_machine_files(path);
    for (guint i = 0; i < missing->len; i++)
        rmdir(g_ptr_array_index(missing, i));
    g_ptr_array_free(missing, TRUE);
    free(path);
    return rc;
}

static void nv_create_done(void *opaque, int rc, const struct cfg_error *err)
{
    (void)err;
    struct nv_create *c = opaque;
    struct nv *nv = c->nv;
    nv->creating = false;
    /* The window may be gone already (its parent closed while the job ran); the machine is made all the same. */
    if (rc == 0) {
        struct rt_uuid uuid = c->uuid;
        struct mgr_app *app = nv->app;
        nv_create_free(c);
        if (!nv->closed)
            gtk_widget_destroy(nv->assistant);
        mgr_app_refresh(app, &uuid);
    } else {
        /* The error was shown; the person may go back and change something. */
        if (!nv->closed)
            gtk_widget_set_sensitive(nv->assistant, TRUE);
        nv_create_free(c);
    }
    nv_unref(nv);
}

static void nv_apply(GtkAssistant *a, gpointer opaque)
{
    (void)a;
    struct nv *nv = opaque;
    if (nv->creating)
        return;
    struct nv_create *c = g_new0(struct nv_create, 1);
    c->nv = nv_ref(nv);
    c->name = g_strdup(gtk_entry_get_text(GTK_ENTRY(nv->name)));
    c->folder = g_strdup(gtk_entry_get_text(GTK_ENTRY(nv->folder)));
    c->ostype = g_strdup(gtk_combo_box_get_active_id(GTK_COMBO_BOX(nv->type)));
    c->iso = g_strdup(gtk_entry_get_text(GTK_ENTRY(nv->iso)));
    c->memory_mib = (uint64_t)gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(nv->memory));
    c->cpus = (unsigned)gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(nv->cpus));
    c->efi = gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(nv->efi));
    c->disk_mode = nv_disk_mode(nv);
    c->disk_bytes = nv_disk_bytes(nv);
    const char *fmt = gtk_combo_box_get_active_id(GTK_COMBO_BOX(nv->format));
    c->disk_format = fmt && !strcmp(fmt, "qcow2") ? BLK_FMT_QCOW2 : BLK_FMT_VDI;
    c->disk_fixed = gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(nv->fixed));
    c->existing = g_strdup(gtk_combo_box_get_active_id(GTK_COMBO_BOX(nv->existing)));
    if (c->disk_mode == NV_DISK_EXISTING && !c->existing)
        c->disk_mode = NV_DISK_NONE;
    nv->creating = true;
    gtk_widget_set_sensitive(nv->assistant, FALSE);
    char *what = g_strdup_printf("Cannot create the machine '%s'", c->name);
    mgr_job_run(GTK_WINDOW(nv->assistant), "Creating the machine…", what, nv_create_job, nv_create_done, c);
    g_free(what);
}

/* ---- The window ------------------------------------------------------------------------------------------------- */

static void nv_close(GtkAssistant *a, gpointer opaque)
{
    struct nv *nv = opaque;
    /* After Create the job decides (the window stays for a retry when it fails). */
    if (nv->creating)
        return;
    gtk_widget_destroy(GTK_WIDGET(a));
}

static gboolean nv_delete(GtkWidget *w, GdkEvent *ev, gpointer opaque)
{
    (void)w;
    (void)ev;
    struct nv *nv = opaque;
    return nv->creating; /* the job must finish or fail by itself */
}

static void nv_destroy(GtkWidget *w, gpointer opaque)
{
    (void)w;
    struct nv *nv = opaque;
    nv->closed = true;
    if (nv->detect_timer)
        g_source_remove(nv->detect_timer);
    nv->detect_timer = 0;
    nv_unref(nv);
}

static void nv_prepare(GtkAssistant *a, GtkWidget *page, gpointer opaque)
{
    (void)a;
    struct nv *nv = opaque;
    if (page == nv->page_summary)
        nv_summary(nv);
    else if (page == nv->page_disk)
        nv_check_disk_page(nv);
    else if (page == nv->page_hw)
        nv_check_hw_page(nv);
}

/* GtkAssistant puts the current page's title on the window; people (and window lists) see one "New Machine",
 * and the page's title is in the sidebar already. */
static void nv_keep_title(GObject *w, GParamSpec *pspec, gpointer opaque)
{
    (void)pspec;
    (void)opaque;
    const char *t = gtk_window_get_title(GTK_WINDOW(w));
    if (!t || strcmp(t, "New Machine"))
        gtk_window_set_title(GTK_WINDOW(w), "New Machine");
}

/* GtkAssistant labels its confirm button "Apply"; ours creates a machine, and says so.  Its "Finish" button
 * only jumps to the summary (where Create is), so it says that instead of promising to finish. */
static void nv_relabel_apply(GtkWidget *w, gpointer opaque)
{
    if (GTK_IS_BUTTON(w)) {
        const char *l = gtk_button_get_label(GTK_BUTTON(w));
        if (l && (!strcmp(l, "_Apply") || !strcmp(l, "Apply")))
            gtk_button_set_label(GTK_BUTTON(w), "C_reate");
        else if (l && (!strcmp(l, "_Finish") || !strcmp(l, "Finish")))
            gtk_button_set_label(GTK_BUTTON(w), "_Skip to Summary");
    }
    if (GTK_IS_CONTAINER(w))
        gtk_container_forall(GTK_CONTAINER(w), nv_relabel_apply, opaque);
}

/* The types by family, in the order people look for them, with a separator between families. */
static gboolean nv_type_separator(GtkTreeModel *model, GtkTreeIter *iter, gpointer opaque)
{
    (void)opaque;
    gchar *id = NULL;
    gtk_tree_model_get(model, iter, 0, &id, -1);
    gboolean sep = id == NULL;
    g_free(id);
    return sep;
}

static GtkWidget *nv_type_combo(const struct cfg_ostypes *types)
{
    static const char *const families[] = {"Linux", "Windows", "BSD", "DOS", "Other"};
    GtkListStore *store = gtk_list_store_new(2, G_TYPE_STRING, G_TYPE_STRING);
    bool any = false;
    for (size_t f = 0; f <= sizeof(families) / sizeof(families[0]); f++) {
        bool first = true;
        for (size_t i = 0; i < types->count; i++) {
            const struct cfg_ostype *t = &types->types[i];
            const char *fam = t->family ? t->family : "Other";
            bool known = false;
            for (size_t k = 0; k < sizeof(families) / sizeof(families[0]); k++)
                known |= !strcmp(fam, families[k]);
            /* The last round takes families this table does not know. */
            if (f < sizeof(families) / sizeof(families[0]) ? strcmp(fam, families[f]) != 0 : known)
                continue;
            GtkTreeIter it;
            if (first && any) {
                gtk_list_store_append(store, &it);
                gtk_list_store_set(store, &it, 0, NULL, 1, "", -1);
            }
            first = false;
            any = true;
            gtk_list_store_append(store, &it);
            gtk_list_store_set(store, &it, 0, t->id, 1, t->description ? t->description : t->id, -1);
        }
    }
    GtkWidget *c = gtk_combo_box_new_with_model(GTK_TREE_MODEL(store));
    g_object_unref(store);
    gtk_combo_box_set_id_column(GTK_COMBO_BOX(c), 0);
    GtkCellRenderer *r = gtk_cell_renderer_text_new();
    gtk_cell_layout_pack_start(GTK_CELL_LAYOUT(c), r, TRUE);
    gtk_cell_layout_set_attributes(GTK_CELL_LAYOUT(c), r, "text", 1, NULL);
    gtk_combo_box_set_row_separator_func(GTK_COMBO_BOX(c), nv_type_separator, NULL, NULL);
    return c;
}

/* A name that is free, so that Next works at once: "New Machine", "New Machine 2", ... */
static char *nv_default_name(const char *folder)
{
    char why[MGR_WHY_MAX];
    for (unsigned i = 1; i < 100; i++) {
        char *n = i == 1 ? g_strdup("New Machine") : g_strdup_printf("New Machine %u", i);
        if (mgr_check_new_name(n, folder, why))
            return n;
        g_free(n);
    }
    return g_strdup("");
}

static GtkWidget *nv_page_os(struct nv *nv)
{
    GtkWidget *g = nv_grid();
    int row = 0;
    gtk_grid_attach(GTK_GRID(g),
                    mgr_note("Give the machine a name and choose the installation image (ISO) you "
                            "downloaded; Vireo recognises most systems from it. Without an image the "
                            "machine gets an empty DVD drive."),
                    0, row++, 3, 1);
    char *folder = mgr_default_machine_folder();
    char *name = nv_default_name(folder);

    nv->name = gtk_entry_new();
    gtk_entry_set_text(GTK_ENTRY(nv->name), name);
    gtk_entry_set_activates_default(GTK_ENTRY(nv->name), TRUE);
    nv_row(GTK_GRID(g), row++, "_Name:", "Name", nv->name, NULL);
    nv->name_err = mgr_field_error_new("Name");
    gtk_grid_attach(GTK_GRID(g), nv->name_err, 1, row++, 2, 1);

    nv->folder = gtk_entry_new();
    gtk_entry_set_text(GTK_ENTRY(nv->folder), folder ? folder : "");
    GtkWidget *fb = gtk_button_new_with_label("Browse…");
    mgr_a11y_name(fb, NULL, "Choose the folder");
    mgr_on_click(fb, nv_browse_folder, nv);
    nv_row(GTK_GRID(g), row++, "_Folder:", "Folder", nv->folder, fb);
    nv->folder_err = mgr_field_error_new("Folder");
    gtk_grid_attach(GTK_GRID(g), nv->folder_err, 1, row++, 2, 1);

    nv->iso = gtk_entry_new();
    GtkWidget *ib = gtk_button_new_with_label("Browse…");
    mgr_a11y_name(ib, NULL, "Choose the ISO image");
    mgr_on_click(ib, nv_browse_iso, nv);
    nv_row(GTK_GRID(g), row++, "_ISO Image:", "ISO Image", nv->iso, ib);
    nv->iso_err = mgr_field_error_new("ISO Image");
    gtk_grid_attach(GTK_GRID(g), nv->iso_err, 1, row++, 2, 1);

    nv->type = nv_type_combo(nv->app->ostypes);
    nv_row(GTK_GRID(g), row++, "_Type:", "Type", nv->type, NULL);
    nv->detected = mgr_note("");
    mgr_a11y_name(nv->detected, NULL, "detection");
    gtk_widget_set_no_show_all(nv->detected, TRUE);
    gtk_grid_attach(GTK_GRID(g), nv->detected, 1, row++, 2, 1);

    nv->updating = true;
    if (!gtk_combo_box_set_active_id(GTK_COMBO_BOX(nv->type), "Linux_64") &&
        !gtk_combo_box_set_active_id(GTK_COMBO_BOX(nv->type), "Other"))
        gtk_combo_box_set_active(GTK_COMBO_BOX(nv->type), 0);
    nv->updating = false;

    g_signal_connect(nv->name, "changed", G_CALLBACK(nv_os_changed), nv);
    g_signal_connect(nv->folder, "changed", G_CALLBACK(nv_os_changed), nv);
    g_signal_connect(nv->iso, "changed", G_CALLBACK(nv_iso_changed), nv);
    g_signal_connect(nv->type, "changed", G_CALLBACK(nv_type_changed), nv);
    g_free(name);
    free(folder);
    return g;
}

static GtkWidget *nv_page_hw(struct nv *nv)
{
    GtkWidget *g = nv_grid();
    int row = 0;
    gtk_grid_attach(GTK_GRID(g),
                    mgr_note("How much of this computer the machine gets while it runs. The defaults "
                            "suit the type you chose."),
                    0, row++, 3, 1);
    nv->memory = gtk_spin_button_new_with_range(4, 1048576, 128);
    gtk_spin_button_set_digits(GTK_SPIN_BUTTON(nv->memory), 0);
    gtk_spin_button_set_numeric(GTK_SPIN_BUTTON(nv->memory), TRUE);
    nv_row(GTK_GRID(g), row++, "_Memory (MiB):", "Memory (MiB)", nv->memory, NULL);
    uint64_t top = nv->host_mib > 4 ? nv->host_mib : 1048576;
    nv->memory_scale = gtk_scale_new_with_range(GTK_ORIENTATION_HORIZONTAL, 4, (double)top, 128);
    gtk_scale_set_draw_value(GTK_SCALE(nv->memory_scale), FALSE);
    gtk_scale_add_mark(GTK_SCALE(nv->memory_scale), 4, GTK_POS_BOTTOM, "4 MiB");
    char host[32], mark[64];
    snprintf(mark, sizeof(mark), "%s (all of it)", mgr_format_size(top * MIB, host, sizeof(host)));
    gtk_scale_add_mark(GTK_SCALE(nv->memory_scale), (double)top, GTK_POS_BOTTOM, mark);
    gtk_scale_add_mark(GTK_SCALE(nv->memory_scale), (double)top / 2, GTK_POS_BOTTOM, "half");
    mgr_a11y_name(nv->memory_scale, "Memory (MiB)", "the memory as a share of this computer's");
    gtk_grid_attach(GTK_GRID(g), nv->memory_scale, 1, row++, 2, 1);
    nv->memory_err = mgr_field_error_new("Memory (MiB)");
    gtk_grid_attach(GTK_GRID(g), nv->memory_err, 1, row++, 2, 1);
    nv->memory_hint = mgr_note("");
    gtk_grid_attach(GTK_GRID(g), nv->memory_hint, 1, row++, 2, 1);

    nv->cpus = gtk_spin_button_new_with_range(1, 64, 1);
    gtk_spin_button_set_numeric(GTK_SPIN_BUTTON(nv->cpus), TRUE);
    nv_row(GTK_GRID(g), row++, "_Processors:", "Processors", nv->cpus, NULL);
    nv->cpus_err = mgr_field_error_new("Processors");
    gtk_grid_attach(GTK_GRID(g), nv->cpus_err, 1, row++, 2, 1);
    char cpus[128];
    snprintf(cpus, sizeof(cpus), "This computer has %u processor%s.", nv->host_cpus, nv->host_cpus == 1 ? "" : "s");
    gtk_grid_attach(GTK_GRID(g), mgr_note(cpus), 1, row++, 2, 1);

    nv->efi = gtk_check_button_new_with_mnemonic("_EFI firmware");
    gtk_grid_attach(GTK_GRID(g), nv->efi, 1, row++, 2, 1);
    gtk_grid_attach(GTK_GRID(g), mgr_note("Newer systems (Windows 11, Fedora) start with EFI; the others with a BIOS."),
                    1, row++, 2, 1);

    g_signal_connect(nv->memory, "value-changed", G_CALLBACK(nv_memory_changed), nv);
    g_signal_connect(nv->memory_scale, "value-changed", G_CALLBACK(nv_memory_scale_changed), nv);
    g_signal_connect(nv->cpus, "value-changed", G_CALLBACK(nv_cpus_changed), nv);
    g_signal_connect(nv->efi, "toggled", G_CALLBACK(nv_efi_toggled), nv);
    return g;
}

static GtkWidget *nv_page_disk(struct nv *nv)
{
    GtkWidget *g = nv_grid();
    int row = 0;
    gtk_grid_attach(GTK_GRID(g), mgr_note("The hard disk the system is installed on."), 0, row++, 3, 1);
    nv->disk_new = gtk_radio_button_new_with_mnemonic(NULL, "Create a _new disk");
    nv->disk_existing =
        gtk_radio_button_new_with_mnemonic_from_widget(GTK_RADIO_BUTTON(nv->disk_new), "Use an _existing disk");
    nv->disk_none = gtk_radio_button_new_with_mnemonic_from_widget(GTK_RADIO_BUTTON(nv->disk_new), "N_o disk");
    gtk_grid_attach(GTK_GRID(g), nv->disk_new, 0, row++, 3, 1);

    GtkWidget *ng = gtk_grid_new();
    gtk_grid_set_row_spacing(GTK_GRID(ng), 8);
    gtk_grid_set_column_spacing(GTK_GRID(ng), 12);
    gtk_widget_set_margin_start(ng, 24);
    nv->new_box = ng;
    int nrow = 0;
    nv->size = gtk_spin_button_new_with_range(0, 65536, 0.01);
    gtk_spin_button_set_digits(GTK_SPIN_BUTTON(nv->size), 2);
    gtk_spin_button_set_increments(GTK_SPIN_BUTTON(nv->size), 1, 10);
    gtk_spin_button_set_numeric(GTK_SPIN_BUTTON(nv->size), TRUE);
    nv_row(GTK_GRID(ng), nrow++, "Disk _size (GiB):", "Disk size (GiB)", nv->size, NULL);
    nv->size_err = mgr_field_error_new("Disk size (GiB)");
    gtk_grid_attach(GTK_GRID(ng), nv->size_err, 1, nrow++, 2, 1);
    nv->format = gtk_combo_box_text_new();
    gtk_combo_box_text_append(GTK_COMBO_BOX_TEXT(nv->format), "vdi", "VDI");
    gtk_combo_box_text_append(GTK_COMBO_BOX_TEXT(nv->format), "qcow2", "qcow2");
    gtk_combo_box_set_active_id(GTK_COMBO_BOX(nv->format), "vdi");
    nv_row(GTK_GRID(ng), nrow++, "_Format:", "Format", nv->format, NULL);
    nv->fixed = gtk_check_button_new_with_mnemonic("_Pre-allocate full size");
    gtk_grid_attach(GTK_GRID(ng), nv->fixed, 1, nrow++, 2, 1);
    gtk_grid_attach(GTK_GRID(ng),
                    mgr_note("A dynamic disk grows as the machine writes to it; a pre-allocated one "
                            "takes its full size now and is a little faster."),
                    1, nrow++, 2, 1);
    gtk_grid_attach(GTK_GRID(g), ng, 0, row++, 3, 1);

    gtk_grid_attach(GTK_GRID(g), nv->disk_existing, 0, row++, 3, 1);
    GtkWidget *eg = gtk_grid_new();
    gtk_grid_set_row_spacing(GTK_GRID(eg), 8);
    gtk_grid_set_column_spacing(GTK_GRID(eg), 12);
    gtk_widget_set_margin_start(eg, 24);
    nv->existing_box = eg;
    nv->existing = gtk_combo_box_text_new();
    g_object_set_data(G_OBJECT(nv->existing), "mgr-nv", nv);
    nv_fill_existing(nv);
    nv_row(GTK_GRID(eg), 0, "_Disk:", "Existing disk", nv->existing, NULL);
    nv->existing_err = mgr_field_error_new("Existing disk");
    gtk_grid_attach(GTK_GRID(eg), nv->existing_err, 1, 1, 2, 1);
    gtk_grid_attach(GTK_GRID(g), eg, 0, row++, 3, 1);

    gtk_grid_attach(GTK_GRID(g), nv->disk_none, 0, row++, 3, 1);

    g_signal_connect(nv->size, "value-changed", G_CALLBACK(nv_size_changed), nv);
    g_signal_connect(nv->fixed, "toggled", G_CALLBACK(nv_disk_changed), nv);
    g_signal_connect(nv->format, "changed", G_CALLBACK(nv_disk_changed), nv);
    g_signal_connect(nv->existing, "changed", G_CALLBACK(nv_existing_changed), nv);
    for (GtkWidget **rb = (GtkWidget *[]){nv->disk_new, nv->disk_existing, nv->disk_none, NULL}; *rb; rb++)
        g_signal_connect(*rb, "toggled", G_CALLBACK(nv_disk_changed), nv);
    return g;
}

void mgr_newvm_run(struct mgr_app *app, GtkWindow *parent)
{
    struct nv *nv = g_new0(struct nv, 1);
    nv->refs = 1;
    nv->app = app;
    nv->host_mib = mgr_host_memory_mib();
    nv->host_cpus = mgr_host_cpus();

    GtkWidget *a = gtk_assistant_new();
    nv->assistant = a;
    gtk_window_set_title(GTK_WINDOW(a), "New Machine");
    gtk_window_set_default_size(GTK_WINDOW(a), 720, 520);
    if (parent) {
        gtk_window_set_transient_for(GTK_WINDOW(a), parent);
        gtk_window_set_modal(GTK_WINDOW(a), TRUE);
        gtk_window_set_destroy_with_parent(GTK_WINDOW(a), TRUE);
    }

    nv->page_os = nv_page_os(nv);
    nv->page_hw = nv_page_hw(nv);
    nv->page_disk = nv_page_disk(nv);
    nv->summary = mgr_note("");
    GtkWidget *sb = gtk_box_new(GTK_ORIENTATION_VERTICAL, 12);
    gtk_container_set_border_width(GTK_CONTAINER(sb), 12);
    gtk_box_pack_start(GTK_BOX(sb), mgr_note("Vireo will create this machine:"), FALSE, FALSE, 0);
    gtk_box_pack_start(GTK_BOX(sb), nv->summary, FALSE, FALSE, 0);
    nv->page_summary = sb;

    struct {
        GtkWidget *page;
        const char *title;
        GtkAssistantPageType type;
    } pages[] = {
        {nv->page_os, "Name and Operating System", GTK_ASSISTANT_PAGE_INTRO},
        {nv->page_hw, "Hardware", GTK_ASSISTANT_PAGE_CONTENT},
        {nv->page_disk, "Hard Disk", GTK_ASSISTANT_PAGE_CONTENT},
        {nv->page_summary, "Summary", GTK_ASSISTANT_PAGE_CONFIRM},
    };
    for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
        gtk_assistant_append_page(GTK_ASSISTANT(a), pages[i].page);
        gtk_assistant_set_page_title(GTK_ASSISTANT(a), pages[i].page, pages[i].title);
        gtk_assistant_set_page_type(GTK_ASSISTANT(a), pages[i].page, pages[i].type);
    }
    gtk_assistant_set_page_complete(GTK_ASSISTANT(a), nv->page_summary, TRUE);

    g_signal_connect(a, "prepare", G_CALLBACK(nv_prepare), nv);
    g_signal_connect(a, "apply", G_CALLBACK(nv_apply), nv);
    g_signal_connect(a, "close", G_CALLBACK(nv_close), nv);
    g_signal_connect(a, "cancel", G_CALLBACK(nv_close), nv);
    g_signal_connect(a, "delete-event", G_CALLBACK(nv_delete), nv);
    g_signal_connect(a, "destroy", G_CALLBACK(nv_destroy), nv);
    g_signal_connect(a, "notify::title", G_CALLBACK(nv_keep_title), NULL);

    nv_apply_preset(nv);
    nv_check_os_page(nv);
    gtk_widget_show_all(a);
    nv_relabel_apply(a, NULL);
    gtk_widget_grab_focus(nv->name);
}
