/* mgr-settings-storage.c - the settings dialog's Storage page: controllers and their attachments, new and existing disks, optical drives and ISO images. */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mgr-settings.h"
#include "vireo/err.h"

enum { ST_COL_NAME = 0, ST_COL_MEDIUM, ST_COL_KIND, ST_COL_CTL, ST_COL_PORT, ST_COL_DEV, ST_COL_COUNT };
enum { ST_KIND_CTL = 0, ST_KIND_ATT };

static const char *mgr_st_bus_label(enum cfg_bus bus)
{
    switch (bus) {
    case CFG_BUS_IDE: return "IDE";
    case CFG_BUS_SATA: return "SATA";
    case CFG_BUS_VIRTIO: return "VirtIO";
    }
    return "?";
}

static unsigned mgr_st_devices(const struct cfg_controller *c)
{
    return c->bus == CFG_BUS_IDE ? 2 : 1;
}

static void mgr_st_slot_text(const struct cfg_controller *c, unsigned port, unsigned dev, char *buf, size_t size)
{
    if (c && c->bus == CFG_BUS_IDE)
        snprintf(buf, size, "Port %u, device %u", port, dev);
    else
        snprintf(buf, size, "Port %u", port);
}

/* "disk.vdi (64 MiB)": the file name and the disk's size as the guest sees it. */
static char *mgr_st_medium_text(const struct cfg_attachment *a)
{
    const char *kind = a->type == CFG_MEDIUM_DVD      ? "Optical drive"
                       : a->type == CFG_MEDIUM_FLOPPY ? "Floppy"
                                                      : "Hard disk";
    if (rt_uuid_is_null(&a->medium))
        return g_strdup_printf("%s: empty", kind);
    char us[RT_UUID_STR_LEN];
    rt_uuid_to_str(&a->medium, us);
    struct cfg_medium med = {0};
    struct cfg_error err = {{0}};
    if (mach_medium_find(us, &med, &err) < 0)
        return g_strdup_printf("%s: unknown medium {%s}", kind, us);
    uint64_t size = 0;
    struct blk_image *img = NULL;
    if (blk_open(med.location, BLK_FMT_AUTO, BLK_OPEN_READONLY, &img) == 0) {
        size = blk_size_bytes(img);
        blk_close(img);
    } else {
        struct stat st;
        if (stat(med.location, &st) == 0)
            size = (uint64_t)st.st_size;
    }
    char sz[32];
    char *t = g_strdup_printf("%s: %s (%s)", kind, rt_path_basename(med.location),
                              mgr_format_size(size, sz, sizeof(sz)));
    mach_medium_clear(&med);
    return t;
}

/* The selected row: its kind, controller and slot.  false when nothing is selected. */
static bool mgr_st_selected(struct mgr_settings *s, int *kind, char **ctl, unsigned *port, unsigned *dev)
{
    GtkTreeModel *model;
    GtkTreeIter it;
    if (!gtk_tree_selection_get_selected(gtk_tree_view_get_selection(GTK_TREE_VIEW(s->st_view)), &model, &it))
        return false;
    gtk_tree_model_get(model, &it, ST_COL_KIND, kind, ST_COL_CTL, ctl, ST_COL_PORT, port, ST_COL_DEV, dev, -1);
    return true;
}

static struct cfg_attachment *mgr_st_selected_att(struct mgr_settings *s)
{
    int kind;
    char *ctl = NULL;
    unsigned port, dev;
    struct cfg_attachment *a = NULL;
    if (mgr_st_selected(s, &kind, &ctl, &port, &dev) && kind == ST_KIND_ATT)
        a = cfg_attachment_find(&s->m->hw, ctl, port, dev);
    g_free(ctl);
    return a;
}

static void mgr_st_update_buttons(struct mgr_settings *s);

/* Refills the tree and selects (ctl, port, dev) or the controller ctl (port = -1u) afterwards. */
static void mgr_st_fill(struct mgr_settings *s, const char *sel_ctl, unsigned sel_port, unsigned sel_dev)
{
    struct cfg_hardware *hw = &s->m->hw;
    GtkTreeIter sel;
    bool have_sel = false;
    gtk_tree_store_clear(s->st_store);
    for (size_t i = 0; i < hw->controller_count; i++) {
        const struct cfg_controller *c = &hw->controllers[i];
        GtkTreeIter ci;
        char detail[96];
        snprintf(detail, sizeof(detail), "%s controller, %u port%s", mgr_st_bus_label(c->bus), c->port_count,
                 c->port_count == 1 ? "" : "s");
        gtk_tree_store_insert_with_values(s->st_store, &ci, NULL, -1, ST_COL_NAME, c->name, ST_COL_MEDIUM, detail,
                                          ST_COL_KIND, ST_KIND_CTL, ST_COL_CTL, c->name, ST_COL_PORT, 0u, ST_COL_DEV,
                                          0u, -1);
        if (sel_ctl && !strcmp(sel_ctl, c->name) && sel_port == (unsigned)-1) {
            sel = ci;
            have_sel = true;
        }
        for (unsigned p = 0; p < c->port_count; p++) {
            for (unsigned d = 0; d < mgr_st_devices(c); d++) {
                const struct cfg_attachment *a = cfg_attachment_find(hw, c->name, p, d);
                if (!a)
                    continue;
                char slot[64];
                mgr_st_slot_text(c, p, d, slot, sizeof(slot));
                char *med = mgr_st_medium_text(a);
                GtkTreeIter ai;
                gtk_tree_store_insert_with_values(s->st_store, &ai, &ci, -1, ST_COL_NAME, slot, ST_COL_MEDIUM, med,
                                                  ST_COL_KIND, ST_KIND_ATT, ST_COL_CTL, c->name, ST_COL_PORT, p,
                                                  ST_COL_DEV, d, -1);
                g_free(med);
                if (sel_ctl && !strcmp(sel_ctl, c->name) && sel_port == p && sel_dev == d) {
                    sel = ai;
                    have_sel = true;
                }
            }
        }
    }
    gtk_tree_view_expand_all(GTK_TREE_VIEW(s->st_view));
    if (have_sel)
        gtk_tree_selection_select_iter(gtk_tree_view_get_selection(GTK_TREE_VIEW(s->st_view)), &sel);
    mgr_st_update_buttons(s);
}

/* The controller new attachments go to: the selected one (or the selected attachment's), else the first. */
static struct cfg_controller *mgr_st_target_ctl(struct mgr_settings *s)
{
    int kind;
    char *ctl = NULL;
    unsigned port, dev;
    struct cfg_controller *c = NULL;
    if (mgr_st_selected(s, &kind, &ctl, &port, &dev))
        c = cfg_controller_find(&s->m->hw, ctl);
    g_free(ctl);
    if (!c && s->m->hw.controller_count)
        c = &s->m->hw.controllers[0];
    return c;
}

static bool mgr_st_free_slot(struct mgr_settings *s, const struct cfg_controller *c, unsigned *port, unsigned *dev)
{
    for (unsigned p = 0; p < c->port_count; p++)
        for (unsigned d = 0; d < mgr_st_devices(c); d++)
            if (!cfg_attachment_find(&s->m->hw, c->name, p, d)) {
                *port = p;
                *dev = d;
                return true;
            }
    return false;
}

/* Attaches a medium (or an empty DVD drive) at a free slot of the target controller; says why not otherwise. */
static void mgr_st_attach(struct mgr_settings *s, enum cfg_medium_type type, const struct rt_uuid *medium)
{
    struct cfg_controller *c = mgr_st_target_ctl(s);
    if (!c) {
        /* A machine without controllers gets a SATA one, as people would add first anyway. */
        if (cfg_controller_add(&s->m->hw, "SATA", CFG_BUS_SATA, 4) < 0)
            return;
        c = cfg_controller_find(&s->m->hw, "SATA");
    }
    unsigned port, dev;
    if (!mgr_st_free_slot(s, c, &port, &dev)) {
        char what[256];
        snprintf(what, sizeof(what), "The controller '%s' has no free port", c->name);
        mgr_error(GTK_WINDOW(s->dialog), what, 0, "Remove an attachment or add another controller first.");
        return;
    }
    struct cfg_attachment a = {.controller = c->name, .port = port, .device = dev, .type = type};
    if (medium)
        a.medium = *medium;
    char *name = g_strdup(c->name);
    int rc = cfg_attachment_set(&s->m->hw, &a);
    if (rc < 0)
        mgr_error(GTK_WINDOW(s->dialog), "Cannot attach the medium", rc, NULL);
    mgr_st_fill(s, name, port, dev);
    g_free(name);
}

/* ---- Controllers ------------------------------------------------------------------------------------ */

/* A small choice: a sentence and one button per answer (a dialog rather than a popup menu, which needs a
 * pointer grab that keyboard-only and assistive-technology users do not always give it). */
static int mgr_st_choice(struct mgr_settings *s, const char *title, const char *text, const char *const *answers, int n)
{
    GtkWidget *d = gtk_dialog_new_with_buttons(title, GTK_WINDOW(s->dialog),
                                               GTK_DIALOG_MODAL | GTK_DIALOG_DESTROY_WITH_PARENT, "Cancel",
                                               GTK_RESPONSE_CANCEL, NULL);
    for (int i = 0; i < n; i++)
        gtk_dialog_add_button(GTK_DIALOG(d), answers[i], i);
    GtkWidget *l = mgr_note(text);
    gtk_container_set_border_width(GTK_CONTAINER(gtk_dialog_get_content_area(GTK_DIALOG(d))), 12);
    gtk_container_add(GTK_CONTAINER(gtk_dialog_get_content_area(GTK_DIALOG(d))), l);
    gtk_widget_show_all(d);
    int r = gtk_dialog_run(GTK_DIALOG(d));
    gtk_widget_destroy(d);
    return r >= 0 && r < n ? r : -1;
}

static void mgr_st_add_ctl_clicked(GtkButton *b, gpointer opaque)
{
    (void)b;
    struct mgr_settings *s = opaque;
    static const char *const labels[] = {"IDE", "SATA", "VirtIO"};
    static const enum cfg_bus buses[] = {CFG_BUS_IDE, CFG_BUS_SATA, CFG_BUS_VIRTIO};
    int i = mgr_st_choice(s, "Add Controller", "Which kind of storage controller? SATA suits most guests; VirtIO is "
                          "the fastest where the guest has its driver; IDE suits old systems.", labels, 3);
    if (i < 0)
        return;
    enum cfg_bus bus = buses[i];
    const char *base = mgr_st_bus_label(bus);
    char name[64];
    snprintf(name, sizeof(name), "%s", base);
    for (int k = 2; cfg_controller_find(&s->m->hw, name); k++)
        snprintf(name, sizeof(name), "%s %d", base, k);
    unsigned ports = bus == CFG_BUS_IDE ? 2 : bus == CFG_BUS_SATA ? 4 : 1;
    int rc = cfg_controller_add(&s->m->hw, name, bus, ports);
    if (rc < 0) {
        mgr_error(GTK_WINDOW(s->dialog), "Cannot add the controller", rc, NULL);
        return;
    }
    mgr_st_fill(s, name, (unsigned)-1, 0);
}

static void mgr_st_remove_ctl_clicked(GtkButton *b, gpointer opaque)
{
    (void)b;
    struct mgr_settings *s = opaque;
    struct cfg_controller *c = mgr_st_target_ctl(s);
    if (!c)
        return;
    cfg_controller_remove(&s->m->hw, c->name);
    mgr_st_fill(s, NULL, 0, 0);
}

/* ---- Hard disks: new ones (in a background job) and existing ones ------------------------------------------ */

struct mgr_st_create {
    struct mgr_settings *s;
    char *path;
    enum blk_format fmt;
    uint64_t bytes;
    bool fixed;
    struct rt_uuid uuid;
};

static int mgr_st_create_job(struct mgr_job *job, void *opaque, struct cfg_error *err)
{
    (void)job;
    struct mgr_st_create *c = opaque;
    return mach_medium_create(c->path, c->fmt, c->bytes, c->fixed, &c->uuid, err);
}

static void mgr_st_create_done(void *opaque, int rc, const struct cfg_error *err)
{
    (void)err;
    struct mgr_st_create *c = opaque;
    struct mgr_settings *s = c->s;
    s->jobs--;
    struct rt_uuid *arr = NULL;
    if (rc >= 0 && !s->destroyed && (arr = realloc(s->created, (s->created_count + 1) * sizeof(*arr)))) {
        s->created = arr;
        s->created[s->created_count++] = c->uuid;
        mgr_st_attach(s, CFG_MEDIUM_HDD, &c->uuid);
    } else if (rc >= 0) {
        /* The dialog went while the disk was being made (or there is no memory to track it): nobody keeps it. */
        char us[RT_UUID_STR_LEN];
        struct cfg_error cerr = {{0}};
        rt_uuid_to_str(&c->uuid, us);
        mach_medium_close(us, true, &cerr);
    }
    if (s->destroyed)
        mgr_set_release(s); /* frees s */
    else
        mgr_set_update_ok(s);
    g_free(c->path);
    g_free(c);
}

struct mgr_st_new_form {
    GtkWidget *ok, *file, *size, *format, *fixed, *file_err, *size_err;
    char *folder;
};

static void mgr_st_new_check(GtkWidget *w, gpointer opaque)
{
    (void)w;
    struct mgr_st_new_form *f = opaque;
    const char *file = gtk_entry_get_text(GTK_ENTRY(f->file));
    char why[MGR_WHY_MAX] = "";
    const char *ferr = NULL;
    char *path = NULL;
    if (!*file)
        ferr = "The disk needs a file name.";
    else if (strchr(file, '/'))
        ferr = "The file name cannot contain '/': the disk is made in the machine's folder.";
    else if (rt_path_exists(path = g_build_filename(f->folder, file, NULL)))
        ferr = "A file of that name exists in the machine's folder already.";
    g_free(path);
    mgr_field_error_set(f->file_err, ferr);
    uint64_t bytes = (uint64_t)gtk_spin_button_get_value(GTK_SPIN_BUTTON(f->size)) << 20;
    bool fixed = gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(f->fixed));
    bool size_ok = mgr_check_disk_size(bytes, fixed, f->folder, why);
    mgr_field_error_set(f->size_err, size_ok ? NULL : why);
    gtk_widget_set_sensitive(f->ok, !ferr && size_ok);
}

/* The file name ends in the format's extension; a name people typed themselves keeps its stem. */
static void mgr_st_format_changed(GtkComboBox *c, gpointer opaque)
{
    struct mgr_st_new_form *f = opaque;
    const char *ext = gtk_combo_box_get_active(c) == 1 ? ".qcow2" : ".vdi";
    const char *file = gtk_entry_get_text(GTK_ENTRY(f->file));
    const char *dot = strrchr(file, '.');
    char *stem = dot ? g_strndup(file, (size_t)(dot - file)) : g_strdup(file);
    char *name = g_strconcat(stem, ext, NULL);
    gtk_entry_set_text(GTK_ENTRY(f->file), name);
    g_free(stem);
    g_free(name);
}

static void mgr_st_create_new(struct mgr_settings *s)
{
    struct mgr_st_new_form f = {0};
    f.folder = mach_folder(s->path);
    GtkWidget *d = gtk_dialog_new_with_buttons("Create Hard Disk", GTK_WINDOW(s->dialog),
                                               GTK_DIALOG_MODAL | GTK_DIALOG_DESTROY_WITH_PARENT, "Cancel",
                                               GTK_RESPONSE_CANCEL, NULL);
    f.ok = gtk_dialog_add_button(GTK_DIALOG(d), "Create", GTK_RESPONSE_OK);
    GtkWidget *g = mgr_form_grid();
    int row = 0;
    /* A name not taken yet in the machine folder: <machine>.vdi, <machine>-2.vdi, ... */
    char *name = g_strdup_printf("%s.vdi", s->m->name);
    for (int i = 2; i < 1000; i++) {
        char *p = g_build_filename(f.folder, name, NULL);
        bool taken = rt_path_exists(p);
        g_free(p);
        if (!taken)
            break;
        g_free(name);
        name = g_strdup_printf("%s-%d.vdi", s->m->name, i);
    }
    f.file = gtk_entry_new();
    gtk_entry_set_text(GTK_ENTRY(f.file), name);
    g_free(name);
    mgr_set_row(g, &row, "File name", f.file);
    f.file_err = mgr_field_error_new("File name");
    gtk_grid_attach(GTK_GRID(g), f.file_err, 1, row++, 1, 1);
    const struct cfg_ostype *t = cfg_ostype_find(s->app->ostypes, s->m->ostype ? s->m->ostype : "");
    uint64_t def_mib = t && t->disk_bytes ? t->disk_bytes >> 20 : 20480;
    f.size = gtk_spin_button_new_with_range(0, (double)(64ULL << 20), 1);
    gtk_spin_button_set_value(GTK_SPIN_BUTTON(f.size), (double)def_mib);
    gtk_spin_button_set_update_policy(GTK_SPIN_BUTTON(f.size), GTK_UPDATE_IF_VALID);
    mgr_set_row(g, &row, "Size (MiB)", f.size);
    f.size_err = mgr_field_error_new("Size (MiB)");
    gtk_grid_attach(GTK_GRID(g), f.size_err, 1, row++, 1, 1);
    f.format = gtk_combo_box_text_new();
    gtk_combo_box_text_append_text(GTK_COMBO_BOX_TEXT(f.format), "VDI");
    gtk_combo_box_text_append_text(GTK_COMBO_BOX_TEXT(f.format), "qcow2");
    gtk_combo_box_set_active(GTK_COMBO_BOX(f.format), 0);
    mgr_set_row(g, &row, "Format", f.format);
    f.fixed = gtk_check_button_new_with_label("Fixed size (all space allocated now)");
    gtk_grid_attach(GTK_GRID(g), f.fixed, 1, row++, 1, 1);
    gtk_container_add(GTK_CONTAINER(gtk_dialog_get_content_area(GTK_DIALOG(d))), g);
    g_signal_connect(f.file, "changed", G_CALLBACK(mgr_st_new_check), &f);
    g_signal_connect(f.size, "value-changed", G_CALLBACK(mgr_st_new_check), &f);
    g_signal_connect(f.fixed, "toggled", G_CALLBACK(mgr_st_new_check), &f);
    g_signal_connect(f.format, "changed", G_CALLBACK(mgr_st_format_changed), &f);
    mgr_st_new_check(NULL, &f);
    gtk_widget_show_all(d);
    if (gtk_dialog_run(GTK_DIALOG(d)) == GTK_RESPONSE_OK) {
        struct mgr_st_create *c = g_new0(struct mgr_st_create, 1);
        c->s = s;
        c->path = g_build_filename(f.folder, gtk_entry_get_text(GTK_ENTRY(f.file)), NULL);
        c->fmt = gtk_combo_box_get_active(GTK_COMBO_BOX(f.format)) == 1 ? BLK_FMT_QCOW2 : BLK_FMT_VDI;
        c->bytes = (uint64_t)gtk_spin_button_get_value(GTK_SPIN_BUTTON(f.size)) << 20;
        c->fixed = gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(f.fixed));
        gtk_widget_destroy(d);
        d = NULL;
        /* OK and Cancel wait for the disk: a cancel now would leave a file that nobody deletes. */
        s->jobs++;
        gtk_widget_set_sensitive(s->ok, FALSE);
        char failed[300];
        snprintf(failed, sizeof(failed), "Cannot create the hard disk '%s'", rt_path_basename(c->path));
        mgr_job_run(GTK_WINDOW(s->dialog), "Creating the hard disk", failed, mgr_st_create_job, mgr_st_create_done, c);
    }
    if (d)
        gtk_widget_destroy(d);
    free(f.folder);
}

/* Whether another machine (or a snapshot of one) uses the medium: a disk belongs to one machine. */
static bool mgr_st_used_elsewhere(struct mgr_settings *s, const struct rt_uuid *u)
{
    char **names = NULL;
    size_t n = 0;
    struct cfg_error err = {{0}};
    bool other = false;
    if (mach_medium_users(u, &names, &n, &err) < 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        other |= strcmp(names[i], s->loaded_name) != 0;
        free(names[i]);
    }
    free(names);
    return other;
}

/* Whether this machine's current hardware attaches the medium already. */
static bool mgr_st_uses(struct mgr_settings *s, const struct rt_uuid *u)
{
    for (size_t i = 0; i < s->m->hw.attachment_count; i++)
        if (!memcmp(&s->m->hw.attachments[i].medium, u, sizeof(*u)))
            return true;
    return false;
}

struct mgr_st_choose {
    struct mgr_settings *s;
    GtkWidget *dialog, *combo, *ok;
    GPtrArray *uuids;   /* strings, in the combo's order */
};

static void mgr_st_choose_add(struct mgr_st_choose *c, const struct cfg_medium *m)
{
    char us[RT_UUID_STR_LEN];
    rt_uuid_to_str(&m->uuid, us);
    for (guint i = 0; i < c->uuids->len; i++)
        if (!strcmp(g_ptr_array_index(c->uuids, i), us)) {
            gtk_combo_box_set_active(GTK_COMBO_BOX(c->combo), (int)i);
            return;
        }
    char *label = g_strdup_printf("%s (%s)", rt_path_basename(m->location), m->location);
    gtk_combo_box_text_append_text(GTK_COMBO_BOX_TEXT(c->combo), label);
    g_free(label);
    g_ptr_array_add(c->uuids, g_strdup(us));
    gtk_combo_box_set_active(GTK_COMBO_BOX(c->combo), (int)c->uuids->len - 1);
    gtk_widget_set_sensitive(c->ok, TRUE);
}

static char *mgr_st_pick_file(GtkWindow *parent, const char *title, const char *pattern_name,
                              const char *const *patterns)
{
    GtkWidget *fc = gtk_file_chooser_dialog_new(title, parent, GTK_FILE_CHOOSER_ACTION_OPEN, "Cancel",
                                                GTK_RESPONSE_CANCEL, "Open", GTK_RESPONSE_ACCEPT, NULL);
    mgr_file_filter_add(fc, pattern_name, patterns);
    mgr_file_filter_add(fc, "All files", (const char *const[]){"*", NULL});
    return mgr_file_chooser_run(fc);
}

static void mgr_st_choose_other(GtkButton *b, gpointer opaque)
{
    (void)b;
    struct mgr_st_choose *c = opaque;
    static const char *const pats[] = {"*.vdi", "*.qcow2", "*.vmdk", "*.img", "*.raw", NULL};
    char *path = mgr_st_pick_file(GTK_WINDOW(c->dialog), "Choose a Hard Disk Image", "Disk images", pats);
    if (!path)
        return;
    struct rt_uuid u;
    struct cfg_error err = {{0}};
    int rc = mach_medium_open(path, CFG_MEDIUM_HDD, &u, &err);
    if (rc < 0) {
        char what[300];
        snprintf(what, sizeof(what), "Cannot use '%s' as a hard disk", rt_path_basename(path));
        mgr_error(GTK_WINDOW(c->dialog), what, rc, err.msg);
    } else {
        struct cfg_medium m = {.uuid = u, .location = path};
        mgr_st_choose_add(c, &m);
    }
    g_free(path);
}

static void mgr_st_choose_existing(struct mgr_settings *s)
{
    struct mgr_st_choose c = {.s = s, .uuids = g_ptr_array_new_with_free_func(g_free)};
    c.dialog = gtk_dialog_new_with_buttons("Choose Hard Disk", GTK_WINDOW(s->dialog),
                                           GTK_DIALOG_MODAL | GTK_DIALOG_DESTROY_WITH_PARENT, "Cancel",
                                           GTK_RESPONSE_CANCEL, NULL);
    c.ok = gtk_dialog_add_button(GTK_DIALOG(c.dialog), "Choose", GTK_RESPONSE_OK);
    GtkWidget *g = mgr_form_grid();
    int row = 0;
    c.combo = gtk_combo_box_text_new();
    mgr_set_row(g, &row, "Hard disk", c.combo);
    GtkWidget *other = gtk_button_new_with_label("Other File…");
    gtk_widget_set_halign(other, GTK_ALIGN_START);
    gtk_grid_attach(GTK_GRID(g), other, 1, row++, 1, 1);
    mgr_on_click(other, mgr_st_choose_other, &c);
    gtk_container_add(GTK_CONTAINER(gtk_dialog_get_content_area(GTK_DIALOG(c.dialog))), g);
    gtk_widget_set_sensitive(c.ok, FALSE);
    struct cfg_medium *media = NULL;
    size_t n = 0;
    struct cfg_error err = {{0}};
    if (mach_medium_list(CFG_MEDIUM_HDD, &media, &n, &err) == 0) {
        /* Differencing images belong to snapshots, and a disk another machine uses is that machine's. */
        for (size_t i = 0; i < n; i++)
            if (rt_uuid_is_null(&media[i].parent) && !mgr_st_uses(s, &media[i].uuid) &&
                !mgr_st_used_elsewhere(s, &media[i].uuid))
                mgr_st_choose_add(&c, &media[i]);
        mach_medium_list_free(media, n);
    }
    if (!c.uuids->len)
        gtk_grid_attach(GTK_GRID(g), mgr_note("No other registered hard disk is free: choose a file."), 1, row++,
                        1, 1);
    else
        gtk_combo_box_set_active(GTK_COMBO_BOX(c.combo), 0);
    gtk_widget_show_all(c.dialog);
    if (gtk_dialog_run(GTK_DIALOG(c.dialog)) == GTK_RESPONSE_OK) {
        int i = gtk_combo_box_get_active(GTK_COMBO_BOX(c.combo));
        struct rt_uuid u;
        if (i >= 0 && rt_uuid_parse(g_ptr_array_index(c.uuids, (guint)i), &u) == 0)
            mgr_st_attach(s, CFG_MEDIUM_HDD, &u);
    }
    gtk_widget_destroy(c.dialog);
    g_ptr_array_free(c.uuids, TRUE);
}

static void mgr_st_add_hdd_clicked(GtkButton *b, gpointer opaque)
{
    (void)b;
    struct mgr_settings *s = opaque;
    static const char *const answers[] = {"Create New…", "Choose Existing…"};
    int i = mgr_st_choice(s, "Add Hard Disk", "Create a new disk in the machine's folder, or use a disk that exists.",
                          answers, 2);
    if (i == 0)
        mgr_st_create_new(s);
    else if (i == 1)
        mgr_st_choose_existing(s);
}

/* ---- Optical drives ------------------------------------------------------------------------------------ */

static void mgr_st_add_dvd_clicked(GtkButton *b, gpointer opaque)
{
    (void)b;
    mgr_st_attach(opaque, CFG_MEDIUM_DVD, NULL);
}

static void mgr_st_choose_iso_clicked(GtkButton *b, gpointer opaque)
{
    (void)b;
    struct mgr_settings *s = opaque;
    struct cfg_attachment *a = mgr_st_selected_att(s);
    if (!a || a->type != CFG_MEDIUM_DVD)
        return;
    static const char *const pats[] = {"*.iso", "*.ISO", NULL};
    char *path = mgr_st_pick_file(GTK_WINDOW(s->dialog), "Choose a Disk Image", "CD/DVD images", pats);
    if (!path)
        return;
    struct rt_uuid u;
    struct cfg_error err = {{0}};
    int rc = mach_medium_open(path, CFG_MEDIUM_DVD, &u, &err);
    if (rc < 0) {
        char what[300];
        snprintf(what, sizeof(what), "Cannot use '%s' as a CD/DVD image", rt_path_basename(path));
        mgr_error(GTK_WINDOW(s->dialog), what, rc, err.msg);
    } else {
        a->medium = u;
        char *ctl = g_strdup(a->controller);
        mgr_st_fill(s, ctl, a->port, a->device);
        g_free(ctl);
    }
    g_free(path);
}

static void mgr_st_eject_clicked(GtkButton *b, gpointer opaque)
{
    (void)b;
    struct mgr_settings *s = opaque;
    struct cfg_attachment *a = mgr_st_selected_att(s);
    if (!a || a->type != CFG_MEDIUM_DVD)
        return;
    memset(&a->medium, 0, sizeof(a->medium));
    char *ctl = g_strdup(a->controller);
    mgr_st_fill(s, ctl, a->port, a->device);
    g_free(ctl);
}

static void mgr_st_remove_att_clicked(GtkButton *b, gpointer opaque)
{
    (void)b;
    struct mgr_settings *s = opaque;
    struct cfg_attachment *a = mgr_st_selected_att(s);
    if (!a)
        return;
    char *ctl = g_strdup(a->controller);
    cfg_attachment_remove(&s->m->hw, ctl, a->port, a->device);
    mgr_st_fill(s, ctl, (unsigned)-1, 0);
    g_free(ctl);
}

/* ---- The selected attachment's attributes ------------------------------------------------------------- */

static void mgr_st_slot_changed(GtkComboBox *combo, gpointer opaque)
{
    struct mgr_settings *s = opaque;
    if (s->st_updating)
        return;
    struct cfg_attachment *a = mgr_st_selected_att(s);
    const char *id = gtk_combo_box_get_active_id(combo);
    unsigned port, dev;
    if (!a || !id || sscanf(id, "%u:%u", &port, &dev) != 2 || (port == a->port && dev == a->device))
        return;
    struct cfg_attachment moved = *a;
    moved.controller = g_strdup(a->controller);
    cfg_attachment_remove(&s->m->hw, moved.controller, a->port, a->device);
    moved.port = port;
    moved.device = dev;
    cfg_attachment_set(&s->m->hw, &moved);
    mgr_st_fill(s, moved.controller, port, dev);
    g_free(moved.controller);
}

static void mgr_st_flag_toggled(GtkToggleButton *b, gpointer opaque)
{
    struct mgr_settings *s = opaque;
    if (s->st_updating)
        return;
    struct cfg_attachment *a = mgr_st_selected_att(s);
    if (!a)
        return;
    bool on = gtk_toggle_button_get_active(b);
    if (GTK_WIDGET(b) == s->st_ssd)
        a->nonrotational = on;
    else
        a->hotpluggable = on;
}

static void mgr_st_update_buttons(struct mgr_settings *s)
{
    if (s->destroyed)
        return;
    int kind = -1;
    char *ctl = NULL;
    unsigned port = 0, dev = 0;
    bool any = mgr_st_selected(s, &kind, &ctl, &port, &dev);
    struct cfg_attachment *a = any && kind == ST_KIND_ATT ? cfg_attachment_find(&s->m->hw, ctl, port, dev) : NULL;
    struct cfg_controller *c = any ? cfg_controller_find(&s->m->hw, ctl) : NULL;
    g_free(ctl);
    gtk_widget_set_sensitive(s->st_remove_ctl, c != NULL);
    gtk_widget_set_sensitive(s->st_remove_att, a != NULL);
    bool dvd = a && a->type == CFG_MEDIUM_DVD;
    gtk_widget_set_sensitive(s->st_choose_iso, dvd);
    gtk_widget_set_sensitive(s->st_eject, dvd && !rt_uuid_is_null(&a->medium));
    s->st_updating = true;
    gtk_combo_box_text_remove_all(GTK_COMBO_BOX_TEXT(s->st_slot));
    if (a && c) {
        /* The slot it has and the free ones of its controller. */
        for (unsigned p = 0; p < c->port_count; p++)
            for (unsigned d = 0; d < mgr_st_devices(c); d++) {
                bool mine = p == a->port && d == a->device;
                if (!mine && cfg_attachment_find(&s->m->hw, c->name, p, d))
                    continue;
                char id[32], text[64];
                snprintf(id, sizeof(id), "%u:%u", p, d);
                mgr_st_slot_text(c, p, d, text, sizeof(text));
                gtk_combo_box_text_append(GTK_COMBO_BOX_TEXT(s->st_slot), id, text);
                if (mine)
                    gtk_combo_box_set_active_id(GTK_COMBO_BOX(s->st_slot), id);
            }
        gtk_toggle_button_set_active(GTK_TOGGLE_BUTTON(s->st_ssd), a->nonrotational);
        gtk_toggle_button_set_active(GTK_TOGGLE_BUTTON(s->st_hotplug), a->hotpluggable);
        char *med = mgr_st_medium_text(a);
        gtk_label_set_text(GTK_LABEL(s->st_info), med);
        g_free(med);
    } else {
        gtk_toggle_button_set_active(GTK_TOGGLE_BUTTON(s->st_ssd), FALSE);
        gtk_toggle_button_set_active(GTK_TOGGLE_BUTTON(s->st_hotplug), FALSE);
        gtk_label_set_text(GTK_LABEL(s->st_info), c ? "Select an attachment to change its slot and flags."
                                                    : "Select a controller or an attachment.");
    }
    gtk_widget_set_sensitive(s->st_slot, a != NULL);
    gtk_widget_set_sensitive(s->st_ssd, a && a->type == CFG_MEDIUM_HDD);
    gtk_widget_set_sensitive(s->st_hotplug, a != NULL && c && c->bus == CFG_BUS_SATA);
    s->st_updating = false;
}

static void mgr_st_sel_changed(GtkTreeSelection *sel, gpointer opaque)
{
    (void)sel;
    mgr_st_update_buttons(opaque);
}

static GtkWidget *mgr_st_button(GtkWidget *box, const char *label, mgr_click_fn *cb, struct mgr_settings *s)
{
    GtkWidget *b = gtk_button_new_with_label(label);
    mgr_on_click(b, cb, s);
    gtk_box_pack_start(GTK_BOX(box), b, FALSE, FALSE, 0);
    return b;
}

GtkWidget *mgr_set_storage_page(struct mgr_settings *s)
{
    s->st_store = gtk_tree_store_new(ST_COL_COUNT, G_TYPE_STRING, G_TYPE_STRING, G_TYPE_INT, G_TYPE_STRING, G_TYPE_UINT,
                                     G_TYPE_UINT);
    s->st_view = gtk_tree_view_new_with_model(GTK_TREE_MODEL(s->st_store));
    g_object_unref(s->st_store);
    GtkTreeViewColumn *c1 = gtk_tree_view_column_new_with_attributes("Controller / slot", gtk_cell_renderer_text_new(),
                                                                     "text", ST_COL_NAME, NULL);
    GtkTreeViewColumn *c2 = gtk_tree_view_column_new_with_attributes("Medium", gtk_cell_renderer_text_new(), "text",
                                                                     ST_COL_MEDIUM, NULL);
    gtk_tree_view_column_set_resizable(c1, TRUE);
    gtk_tree_view_append_column(GTK_TREE_VIEW(s->st_view), c1);
    gtk_tree_view_append_column(GTK_TREE_VIEW(s->st_view), c2);
    mgr_a11y_name(s->st_view, "Storage devices", NULL);
    GtkWidget *sw = gtk_scrolled_window_new(NULL, NULL);
    gtk_scrolled_window_set_shadow_type(GTK_SCROLLED_WINDOW(sw), GTK_SHADOW_IN);
    gtk_widget_set_size_request(sw, -1, 200);
    gtk_widget_set_vexpand(sw, TRUE);
    gtk_container_add(GTK_CONTAINER(sw), s->st_view);

    GtkWidget *b1 = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6), *b2 = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
    mgr_st_button(b1, "Add Controller", mgr_st_add_ctl_clicked, s);
    s->st_remove_ctl = mgr_st_button(b1, "Remove Controller", mgr_st_remove_ctl_clicked, s);
    s->st_add_hdd = mgr_st_button(b1, "Add Hard Disk", mgr_st_add_hdd_clicked, s);
    s->st_add_dvd = mgr_st_button(b1, "Add Optical Drive", mgr_st_add_dvd_clicked, s);
    s->st_remove_att = mgr_st_button(b2, "Remove Attachment", mgr_st_remove_att_clicked, s);
    s->st_choose_iso = mgr_st_button(b2, "Choose Disk Image…", mgr_st_choose_iso_clicked, s);
    s->st_eject = mgr_st_button(b2, "Eject", mgr_st_eject_clicked, s);

    GtkWidget *g = gtk_grid_new();
    gtk_grid_set_row_spacing(GTK_GRID(g), 6);
    gtk_grid_set_column_spacing(GTK_GRID(g), 12);
    int row = 0;
    s->st_info = gtk_label_new("");
    gtk_label_set_xalign(GTK_LABEL(s->st_info), 0.0f);
    gtk_label_set_ellipsize(GTK_LABEL(s->st_info), PANGO_ELLIPSIZE_MIDDLE);
    gtk_grid_attach(GTK_GRID(g), s->st_info, 0, row++, 2, 1);
    s->st_slot = gtk_combo_box_text_new();
    mgr_set_row(g, &row, "Slot", s->st_slot);
    s->st_ssd = gtk_check_button_new_with_label("Solid-state drive");
    s->st_hotplug = gtk_check_button_new_with_label("Hot-pluggable");
    gtk_grid_attach(GTK_GRID(g), s->st_ssd, 1, row++, 1, 1);
    gtk_grid_attach(GTK_GRID(g), s->st_hotplug, 1, row++, 1, 1);
    g_signal_connect(s->st_slot, "changed", G_CALLBACK(mgr_st_slot_changed), s);
    g_signal_connect(s->st_ssd, "toggled", G_CALLBACK(mgr_st_flag_toggled), s);
    g_signal_connect(s->st_hotplug, "toggled", G_CALLBACK(mgr_st_flag_toggled), s);

    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 6);
    gtk_container_set_border_width(GTK_CONTAINER(box), 12);
    gtk_box_pack_start(GTK_BOX(box), sw, TRUE, TRUE, 0);
    gtk_box_pack_start(GTK_BOX(box), b1, FALSE, FALSE, 0);
    gtk_box_pack_start(GTK_BOX(box), b2, FALSE, FALSE, 0);
    gtk_box_pack_start(GTK_BOX(box), g, FALSE, FALSE, 0);
    g_signal_connect(gtk_tree_view_get_selection(GTK_TREE_VIEW(s->st_view)), "changed",
                     G_CALLBACK(mgr_st_sel_changed), s);
    mgr_st_fill(s, NULL, 0, 0);
    return box;
}

void mgr_set_storage_cleanup(struct mgr_settings *s, bool saved)
{
    for (size_t i = 0; i < s->created_count; i++) {
        if (saved && mgr_st_uses(s, &s->created[i]))
            continue;
        char us[RT_UUID_STR_LEN];
        rt_uuid_to_str(&s->created[i], us);
        struct cfg_error err = {{0}};
        int rc = mach_medium_close(us, true, &err);
        if (rc < 0)
            mgr_error(s->destroyed ? NULL : GTK_WINDOW(s->dialog), "Cannot delete a hard disk made in this dialog", rc,
                      err.msg);
    }
    s->created_count = 0;
}
