/* mgr-window.c - the manager's main window: the machine list, the details pane, menus and toolbar, starting and controlling machines, and the remove-machine, preferences and about dialogs. */

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "console-util.h"
#include "mgr.h"
#include "vireo/err.h"

#define MGR_PREVIEW_W (2 * MGR_THUMB_W) /* the model makes its preview this wide (mgr-model.c) */
/* A vireo-vm that ends this soon after its start did not come up: its log says why. */
#define MGR_START_FAIL_US (8 * G_USEC_PER_SEC)
#define MGR_CTL_TIMEOUT_MS 30000
#define MGR_STOP_TIMEOUT_MS 120000

enum { COL_ICON, COL_NAME, COL_OS, COL_STATE, COL_THUMB, COL_UUID, COL_COUNT };

struct mgr_win {
    struct mgr_app *app;
    GtkWindow *win;
    GtkWidget *bar, *bar_label;
    GtkWidget *stack;                /* "list" | "empty" | "loading" */
    GtkListStore *store;
    GtkTreeView *tree;
    GtkWidget *preview, *details;
    GtkWidget *b_settings, *b_start, *b_start_more, *b_pause, *b_stop, *b_snapshots, *b_remove;
    GtkWidget *m_settings, *m_start, *m_start_headless, *m_pause, *m_resume, *m_save, *m_acpi, *m_poweroff,
        *m_reset, *m_snapshots, *m_clone, *m_remove;
    GtkWidget *start_menu, *stop_menu;
    bool have_select;
    struct rt_uuid select;           /* to select once listed (mgr_app_refresh) */
    const struct cfg_machine *shown_cfg; /* what the details pane shows, to rebuild only on change */
    const char *shown_error;
    enum cfg_machine_state shown_state;
    bool shown_valid;
    bool listed, ready;
    bool dead;
};

static struct mgr_win *mgr_win_of(struct mgr_app *app)
{
    return app->window ? g_object_get_data(G_OBJECT(app->window), "mgr-win") : NULL;
}

/* The selected machine (NULL when none). */
static struct mgr_vm *mgr_selected(struct mgr_win *w)
{
    GtkTreeIter it;
    GtkTreeModel *model;
    if (!gtk_tree_selection_get_selected(gtk_tree_view_get_selection(w->tree), &model, &it))
        return NULL;
    char *us = NULL;
    gtk_tree_model_get(model, &it, COL_UUID, &us, -1);
    struct rt_uuid uuid;
    struct mgr_vm *vm = us && rt_uuid_parse(us, &uuid) == 0 ? mgr_model_find(w->app->model, &uuid) : NULL;
    g_free(us);
    return vm;
}

/* A machine's name; one whose file cannot be read goes by its file's name (<folder>/<name>.vireo). */
static const char *mgr_vm_name(const struct mgr_vm *vm)
{
    if (vm->cfg)
        return vm->cfg->name;
    const char *base = vm->path ? strrchr(vm->path, '/') : NULL;
    if (!base || !base[1])
        return vm->uuid_str;
    static char name[256];
    g_strlcpy(name, base + 1, sizeof(name));
    char *dot = strrchr(name, '.');
    if (dot && dot != name && !strcmp(dot, ".vireo"))
        *dot = '\0';
    return name;
}

/* ---- The details pane --------------------------------------------------------------------------- */

static void mgr_section(GtkWidget *box, const char *title, GtkWidget **grid)
{
    char *markup = g_markup_printf_escaped("<b>%s</b>", title);
    GtkWidget *l = gtk_label_new(NULL);
    gtk_label_set_markup(GTK_LABEL(l), markup);
    g_free(markup);
    gtk_label_set_xalign(GTK_LABEL(l), 0.0f);
    gtk_widget_set_margin_top(l, 10);
    gtk_box_pack_start(GTK_BOX(box), l, FALSE, FALSE, 0);
    *grid = gtk_grid_new();
    gtk_grid_set_column_spacing(GTK_GRID(*grid), 12);
    gtk_grid_set_row_spacing(GTK_GRID(*grid), 2);
    gtk_widget_set_margin_start(*grid, 16);
    gtk_box_pack_start(GTK_BOX(box), *grid, FALSE, FALSE, 0);
}

/* One "key: value" line; the value label is named after its key so tests and screen readers find it. */
static void mgr_row(GtkWidget *grid, const char *key, const char *value)
{
    GList *kids = gtk_container_get_children(GTK_CONTAINER(grid));
    int row = (int)g_list_length(kids) / 2;
    g_list_free(kids);
    char *k = g_strdup_printf("%s:", key);
    GtkWidget *kl = gtk_label_new(k);
    g_free(k);
    gtk_label_set_xalign(GTK_LABEL(kl), 0.0f);
    gtk_label_set_yalign(GTK_LABEL(kl), 0.0f);
    gtk_style_context_add_class(gtk_widget_get_style_context(kl), "dim-label");
    GtkWidget *vl = gtk_label_new(value && *value ? value : "None");
    gtk_label_set_xalign(GTK_LABEL(vl), 0.0f);
    gtk_label_set_line_wrap(GTK_LABEL(vl), TRUE);
    gtk_label_set_max_width_chars(GTK_LABEL(vl), 60);
    gtk_label_set_selectable(GTK_LABEL(vl), TRUE);
    gtk_widget_set_can_focus(vl, FALSE);
    mgr_a11y_name(vl, key, NULL);
    gtk_grid_attach(GTK_GRID(grid), kl, 0, row, 1, 1);
    gtk_grid_attach(GTK_GRID(grid), vl, 1, row, 1, 1);
}

static const char *mgr_boot_label(enum cfg_boot_dev d)
{
    switch (d) {
    case CFG_BOOT_FLOPPY: return "Floppy";
    case CFG_BOOT_DVD: return "Optical";
    case CFG_BOOT_DISK: return "Hard Disk";
    case CFG_BOOT_NET: return "Network";
    case CFG_BOOT_NONE: break;
    }
    return NULL;
}

static const char *mgr_exec_label(const char *v)
{
    if (!v || !strcmp(v, "auto"))
        return "Automatic";
    if (!strcmp(v, "kvm"))
        return "KVM";
    if (!strcmp(v, "soft"))
        return "Software CPU";
    if (!strcmp(v, "interp"))
        return "Interpreter";
    return v;
}

static void mgr_details_fill(struct mgr_win *w, struct mgr_vm *vm)
{
    GtkWidget *box = w->details, *g;
    const struct cfg_machine *m = vm->cfg;
    char buf[1024], sz[32];
    if (!m) {
        mgr_section(box, "General", &g);
        mgr_row(g, "Settings file", vm->path);
        mgr_row(g, "Error", vm->error ? vm->error : "The settings file cannot be read.");
        char *prev = g_strdup_printf("%s-prev", vm->path);
        bool have_prev = g_file_test(prev, G_FILE_TEST_EXISTS);
        char *hint = g_strdup_printf("Repair the file%s%s%s, or take the machine off the list with Remove.",
                                     have_prev ? " (the previous version is kept as " : "", have_prev ? prev : "",
                                     have_prev ? ")" : "");
        mgr_row(g, "What to do", hint);
        g_free(hint);
        g_free(prev);
        return;
    }
    const struct cfg_hardware *hw = &m->hw;
    const struct cfg_ostype *os = cfg_ostype_find(w->app->ostypes, m->ostype);
    char *folder = mach_folder(vm->path);

    mgr_section(box, "General", &g);
    mgr_row(g, "Name", m->name);
    mgr_row(g, "Operating system", os ? os->description : m->ostype);
    mgr_row(g, "Folder", folder);
    mgr_row(g, "State", mgr_state_label(vm->state));
    free(folder);

    mgr_section(box, "System", &g);
    snprintf(buf, sizeof(buf), "%" G_GUINT64_FORMAT " MiB", hw->memory_mib);
    mgr_row(g, "Memory", buf);
    snprintf(buf, sizeof(buf), "%u", hw->cpus);
    mgr_row(g, "Processors", buf);
    mgr_row(g, "Firmware", hw->firmware == CFG_FW_EFI ? "UEFI" : "BIOS");
    buf[0] = '\0';
    for (int i = 0; i < CFG_BOOT_SLOTS; i++) {
        const char *b = mgr_boot_label(hw->boot[i]);
        if (b)
            g_strlcat(buf, *buf ? ", " : "", sizeof(buf)), g_strlcat(buf, b, sizeof(buf));
    }
    mgr_row(g, "Boot order", buf);
    mgr_row(g, "Execution", mgr_exec_label(cfg_extra_get(m->extra, m->extra_count, "Vireo/Exec")));

    mgr_section(box, "Display", &g);
    snprintf(buf, sizeof(buf), "%u MiB", hw->display.vram_mib);
    mgr_row(g, "Video memory", buf);
    buf[0] = '\0';
    if (hw->remote.vnc_enabled) {
        char p[64];
        if (hw->remote.vnc_port)
            snprintf(p, sizeof(p), "VNC on port %u", hw->remote.vnc_port);
        else
            snprintf(p, sizeof(p), "VNC on the first free port from 5900");
        g_strlcat(buf, p, sizeof(buf));
    }
    if (hw->remote.rdp_enabled) {
        char p[64];
        if (hw->remote.rdp_port)
            snprintf(p, sizeof(p), "%sRDP on port %u", *buf ? ", " : "", hw->remote.rdp_port);
        else
            snprintf(p, sizeof(p), "%sRDP on the first free port from 3389", *buf ? ", " : "");
        g_strlcat(buf, p, sizeof(buf));
    }
    mgr_row(g, "Remote display", *buf ? buf : "Disabled");

    /* Medium file names come from the registry (a small file; read here on each change of the selection). */
    struct cfg_global *gl = NULL;
    struct cfg_error err = {{0}};
    char *gpath = cfg_global_path();
    if (!gpath || cfg_global_load(gpath, &gl, &err) < 0)
        gl = NULL;
    free(gpath);
    mgr_section(box, "Storage", &g);
    if (!hw->controller_count)
        mgr_row(g, "Controllers", "None");
    for (size_t c = 0; c < hw->controller_count; c++) {
        const struct cfg_controller *ctl = &hw->controllers[c];
        GString *s = g_string_new(NULL);
        for (size_t a = 0; a < hw->attachment_count; a++) {
            const struct cfg_attachment *at = &hw->attachments[a];
            if (strcmp(at->controller, ctl->name))
                continue;
            const char *kind = at->type == CFG_MEDIUM_HDD ? "Hard disk" : at->type == CFG_MEDIUM_DVD ? "Optical drive"
                                                                                                      : "Floppy drive";
            const char *file = "empty";
            char *base = NULL;
            if (!rt_uuid_is_null(&at->medium)) {
                struct cfg_medium *md = gl ? cfg_medium_find(gl, &at->medium) : NULL;
                if (md && md->location)
                    file = base = g_path_get_basename(md->location);
                else
                    file = "unknown medium";
            }
            g_string_append_printf(s, "%s%s (port %u, device %u): %s", s->len ? "\n" : "", kind, at->port,
                                   at->device, file);
            g_free(base);
        }
        char key[256];
        snprintf(key, sizeof(key), "Controller %s (%s)", ctl->name, cfg_bus_name(ctl->bus));
        mgr_row(g, key, s->len ? s->str : "No devices attached");
        g_string_free(s, TRUE);
    }
    cfg_global_free(gl);

    mgr_section(box, "Audio", &g);
    if (hw->audio.enabled) {
        snprintf(buf, sizeof(buf), "%s, host driver %s", cfg_audio_ctl_name(hw->audio.controller),
                 cfg_audio_driver_name(hw->audio.driver));
        mgr_row(g, "Audio", buf);
    } else {
        mgr_row(g, "Audio", "Disabled");
    }

    mgr_section(box, "Network", &g);
    bool any = false;
    for (int i = 0; i < CFG_MAX_NICS; i++) {
        const struct cfg_nic *n = &hw->nics[i];
        if (!n->enabled)
            continue;
        any = true;
        char key[32];
        snprintf(key, sizeof(key), "Adapter %d", i + 1);
        const char *how = n->attach == CFG_NET_NAT        ? "NAT"
                          : n->attach == CFG_NET_BRIDGED  ? "Bridged"
                          : n->attach == CFG_NET_HOSTONLY ? "Host-only"
                          : n->attach == CFG_NET_INTERNAL ? "Internal network"
                                                          : "Not attached";
        const char *extra = n->attach == CFG_NET_BRIDGED ? n->bridge_interface : n->network;
        snprintf(buf, sizeof(buf), "%s (%s%s%s)", cfg_nic_type_name(n->type), how, extra ? ", " : "",
                 extra ? extra : "");
        mgr_row(g, key, buf);
    }
    if (!any)
        mgr_row(g, "Adapters", "Disabled");

    mgr_section(box, "USB", &g);
    if (hw->usb.enabled) {
        snprintf(buf, sizeof(buf), "%s, %zu device filter%s", cfg_usb_ctl_name(hw->usb.controller),
                 hw->usb.filter_count, hw->usb.filter_count == 1 ? "" : "s");
        mgr_row(g, "USB controller", buf);
    } else {
        mgr_row(g, "USB controller", "Disabled");
    }

    mgr_section(box, "Shared folders", &g);
    if (!hw->shared_folder_count)
        mgr_row(g, "Shared folders", "None");
    for (size_t i = 0; i < hw->shared_folder_count; i++) {
        const struct cfg_shared_folder *f = &hw->shared_folders[i];
        snprintf(buf, sizeof(buf), "%s%s", f->host_path ? f->host_path : "", f->readonly ? " (read-only)" : "");
        mgr_row(g, f->name, buf);
    }

    mgr_section(box, "Description", &g);
    mgr_row(g, "Description", m->description && *m->description ? m->description : "None");
    (void)sz;
}

/* The preview: the machine's screen when it runs, else its OS icon large. */
static void mgr_preview_update(struct mgr_win *w, struct mgr_vm *vm)
{
    char desc[512];
    GdkPixbuf *big = vm && vm->running && vm->thumbnail ? g_object_get_data(G_OBJECT(vm->thumbnail), "mgr-preview")
                                                        : NULL;
    if (vm && vm->running && vm->thumbnail) {
        const char *dim = g_object_get_data(G_OBJECT(vm->thumbnail), "mgr-size");
        if (!big) {
            int tw = gdk_pixbuf_get_width(vm->thumbnail), th = gdk_pixbuf_get_height(vm->thumbnail);
            big = gdk_pixbuf_scale_simple(vm->thumbnail, MGR_PREVIEW_W, th * MGR_PREVIEW_W / (tw ? tw : 1),
                                          GDK_INTERP_BILINEAR);
            g_object_set_data_full(G_OBJECT(vm->thumbnail), "mgr-preview", big, g_object_unref);
        }
        gtk_image_set_from_pixbuf(GTK_IMAGE(w->preview), big);
        snprintf(desc, sizeof(desc), "Screen of %s, %s", mgr_vm_name(vm), dim ? dim : "unknown size");
    } else if (vm) {
        gtk_image_set_from_icon_name(GTK_IMAGE(w->preview),
                                     mgr_os_icon_name(w->app->ostypes, vm->cfg ? vm->cfg->ostype : NULL),
                                     GTK_ICON_SIZE_DIALOG);
        gtk_image_set_pixel_size(GTK_IMAGE(w->preview), 96);
        if (vm->running)
            snprintf(desc, sizeof(desc), "No preview yet: %s is starting", mgr_vm_name(vm));
        else
            snprintf(desc, sizeof(desc), "No preview: %s is not running", mgr_vm_name(vm));
    } else {
        gtk_image_clear(GTK_IMAGE(w->preview));
        snprintf(desc, sizeof(desc), "No machine selected");
    }
    mgr_a11y_name(w->preview, "Preview", desc);
    gtk_widget_set_tooltip_text(w->preview, desc);
}

static void mgr_details_update(struct mgr_win *w, bool force)
{
    struct mgr_vm *vm = mgr_selected(w);
    mgr_preview_update(w, vm);
    if (!force && w->shown_valid && vm && w->shown_cfg == vm->cfg && w->shown_error == vm->error &&
        w->shown_state == vm->state)
        return;
    w->shown_valid = vm != NULL;
    w->shown_cfg = vm ? vm->cfg : NULL;
    w->shown_error = vm ? vm->error : NULL;
    w->shown_state = vm ? vm->state : CFG_STATE_POWERED_OFF;
    GList *kids = gtk_container_get_children(GTK_CONTAINER(w->details));
    for (GList *l = kids; l; l = l->next)
        gtk_widget_destroy(l->data);
    g_list_free(kids);
    if (vm) {
        mgr_details_fill(w, vm);
    } else if (mgr_model_count(w->app->model)) {
        GtkWidget *l = gtk_label_new("Select a machine in the list to see its settings here.");
        gtk_label_set_line_wrap(GTK_LABEL(l), TRUE);
        gtk_label_set_xalign(GTK_LABEL(l), 0.0f);
        gtk_box_pack_start(GTK_BOX(w->details), l, FALSE, FALSE, 0);
    } else {
        /* The first run: what to do, in the order a person does it. */
        GtkWidget *l = gtk_label_new(NULL);
        gtk_label_set_markup(GTK_LABEL(l), "<span size=\"x-large\" weight=\"bold\">Welcome to Vireo</span>");
        gtk_label_set_xalign(GTK_LABEL(l), 0.0f);
        gtk_box_pack_start(GTK_BOX(w->details), l, FALSE, FALSE, 6);
        static const char *const steps[] = {
            "1.  Download the installation image (ISO) of the system you want to try: a Linux distribution, a BSD "
            "or Windows.",
            "2.  Press New, give the machine a name and choose the ISO. Vireo recognises most systems and picks the "
            "memory, processors and disk for them; you can click Next to the end.",
            "3.  Press Start. The machine opens in its own window and boots from the ISO; install the system as on a "
            "real computer.",
            "Machines keep their settings and disks in their own folder. Settings changes what a machine has, "
            "Snapshots keeps states you can go back to, and File > Media Manager lists every disk and CD image.",
        };
        for (size_t i = 0; i < G_N_ELEMENTS(steps); i++) {
            l = gtk_label_new(steps[i]);
            gtk_label_set_line_wrap(GTK_LABEL(l), TRUE);
            gtk_label_set_max_width_chars(GTK_LABEL(l), 70);
            gtk_label_set_xalign(GTK_LABEL(l), 0.0f);
            gtk_box_pack_start(GTK_BOX(w->details), l, FALSE, FALSE, 4);
        }
    }
    gtk_widget_show_all(w->details);
}

/* ---- Toolbar and menu sensitivity ------------------------------------------------------------------------ */

static void mgr_actions_update(struct mgr_win *w)
{
    struct mgr_vm *vm = mgr_selected(w);
    bool sel = vm != NULL, ok = sel && vm->cfg, run = sel && vm->running;
    bool paused = run && vm->state == CFG_STATE_PAUSED;
    gtk_widget_set_sensitive(w->b_settings, ok);
    gtk_widget_set_sensitive(w->b_start, ok && !run);
    gtk_widget_set_sensitive(w->b_start_more, ok && !run);
    gtk_widget_set_sensitive(w->b_pause, run);
    gtk_button_set_label(GTK_BUTTON(w->b_pause), paused ? "Resume" : "Pause");
    gtk_widget_set_sensitive(w->b_stop, run);
    gtk_widget_set_sensitive(w->b_snapshots, ok);
    /* Remove stays available for a running machine so that the refusal explains itself. */
    gtk_widget_set_sensitive(w->b_remove, sel);
    gtk_widget_set_sensitive(w->m_settings, ok);
    gtk_widget_set_sensitive(w->m_start, ok && !run);
    gtk_widget_set_sensitive(w->m_start_headless, ok && !run);
    gtk_widget_set_sensitive(w->m_pause, run && !paused);
    gtk_widget_set_sensitive(w->m_resume, paused);
    gtk_widget_set_sensitive(w->m_save, run);
    gtk_widget_set_sensitive(w->m_acpi, run && !paused);
    gtk_widget_set_sensitive(w->m_poweroff, run);
    gtk_widget_set_sensitive(w->m_reset, run);
    gtk_widget_set_sensitive(w->m_snapshots, ok);
    gtk_widget_set_sensitive(w->m_clone, ok && !run);
    gtk_widget_set_sensitive(w->m_remove, sel);
}

/* ---- The list ------------------------------------------------------------------------------------------- */

static void mgr_row_set(struct mgr_win *w, GtkTreeIter *it, struct mgr_vm *vm)
{
    const struct cfg_ostype *os = vm->cfg ? cfg_ostype_find(w->app->ostypes, vm->cfg->ostype) : NULL;
    const char *osd = vm->cfg ? (os ? os->description : vm->cfg->ostype) : "Settings file cannot be read";
    gtk_list_store_set(w->store, it, COL_ICON, mgr_os_icon_name(w->app->ostypes, vm->cfg ? vm->cfg->ostype : NULL),
                       COL_NAME, mgr_vm_name(vm), COL_OS, osd, COL_STATE,
                       vm->cfg ? mgr_state_label(vm->state) : "Inaccessible", COL_THUMB,
                       vm->running ? vm->thumbnail : NULL, COL_UUID, vm->uuid_str, -1);
}

static bool mgr_row_find(struct mgr_win *w, const char *uuid_str, GtkTreeIter *it)
{
    GtkTreeModel *model = GTK_TREE_MODEL(w->store);
    for (bool ok = gtk_tree_model_get_iter_first(model, it); ok; ok = gtk_tree_model_iter_next(model, it)) {
        char *us = NULL;
        gtk_tree_model_get(model, it, COL_UUID, &us, -1);
        bool same = us && !strcmp(us, uuid_str);
        g_free(us);
        if (same)
            return true;
    }
    return false;
}

static gboolean mgr_ready_idle(gpointer p)
{
    struct mgr_app *app = p;
    mgr_app_list_ready(app);
    return G_SOURCE_REMOVE;
}

/* The first draw after the first load was listed: the window is usable. */
static gboolean mgr_on_draw(GtkWidget *widget, cairo_t *cr, gpointer p)
{
    (void)widget;
    (void)cr;
    struct mgr_win *w = p;
    if (w->listed && !w->ready) {
        w->ready = true;
        g_idle_add(mgr_ready_idle, w->app);
    }
    return FALSE;
}

static void mgr_try_select(struct mgr_win *w)
{
    if (!w->have_select)
        return;
    char us[RT_UUID_STR_LEN];
    rt_uuid_to_str(&w->select, us);
    GtkTreeIter it;
    if (mgr_row_find(w, us, &it)) {
        gtk_tree_selection_select_iter(gtk_tree_view_get_selection(w->tree), &it);
        GtkTreePath *tp = gtk_tree_model_get_path(GTK_TREE_MODEL(w->store), &it);
        gtk_tree_view_scroll_to_cell(w->tree, tp, NULL, FALSE, 0, 0);
        gtk_tree_path_free(tp);
        w->have_select = false;
    }
}

static void mgr_list_rebuild(struct mgr_win *w)
{
    struct mgr_model *model = w->app->model;
    GtkTreeSelection *sel = gtk_tree_view_get_selection(w->tree);
    struct mgr_vm *cur = mgr_selected(w);
    char keep[RT_UUID_STR_LEN] = "";
    if (cur)
        g_strlcpy(keep, cur->uuid_str, sizeof(keep));
    g_signal_handlers_block_matched(sel, G_SIGNAL_MATCH_DATA, 0, 0, NULL, NULL, w);
    gtk_list_store_clear(w->store);
    GtkTreeIter it, keep_it;
    bool have_keep = false;
    for (size_t i = 0; i < mgr_model_count(model); i++) {
        struct mgr_vm *vm = mgr_model_get(model, i);
        gtk_list_store_insert_with_values(w->store, &it, -1, -1);
        mgr_row_set(w, &it, vm);
        if (*keep && !strcmp(keep, vm->uuid_str)) {
            keep_it = it;
            have_keep = true;
        }
    }
    if (have_keep)
        gtk_tree_selection_select_iter(sel, &keep_it);
    else if (gtk_tree_model_get_iter_first(GTK_TREE_MODEL(w->store), &it))
        gtk_tree_selection_select_iter(sel, &it);
    g_signal_handlers_unblock_matched(sel, G_SIGNAL_MATCH_DATA, 0, 0, NULL, NULL, w);
    mgr_try_select(w);

    const char *err = mgr_model_error(model);
    if (err) {
        const char *kept = mgr_model_count(model) ? "\nThe list shows the machines as they were last read." : "";
        char *text = g_strdup_printf("%s%s", err, kept);
        gtk_label_set_text(GTK_LABEL(w->bar_label), text);
        g_free(text);
        gtk_widget_show(w->bar);
    } else {
        gtk_widget_hide(w->bar);
    }
    gtk_stack_set_visible_child_name(GTK_STACK(w->stack),
                                     mgr_model_count(model) ? "list" : err ? "unreadable" : "empty");
    mgr_details_update(w, true);
    mgr_actions_update(w);
    if (mgr_model_loaded(model) && !w->listed) {
        w->listed = true;
        gtk_widget_queue_draw(GTK_WIDGET(w->win));
    }
}

static void mgr_on_model(void *opaque, struct mgr_vm *vm)
{
    struct mgr_win *w = opaque;
    if (w->dead)
        return;
    if (!vm) {
        mgr_list_rebuild(w);
        return;
    }
    GtkTreeIter it;
    if (mgr_row_find(w, vm->uuid_str, &it))
        mgr_row_set(w, &it, vm);
    if (mgr_selected(w) == vm) {
        mgr_details_update(w, false);
        mgr_actions_update(w);
    }
}

static void mgr_on_selection(GtkTreeSelection *sel, gpointer p)
{
    (void)sel;
    struct mgr_win *w = p;
    mgr_details_update(w, true);
    mgr_actions_update(w);
}

void mgr_app_refresh(struct mgr_app *app, const struct rt_uuid *select)
{
    struct mgr_win *w = mgr_win_of(app);
    if (w && select) {
        w->select = *select;
        w->have_select = true;
        mgr_try_select(w);
    }
    if (app->model)
        mgr_model_refresh(app->model);
}

/* ---- Starting ------------------------------------------------------------------------------------------- */

struct mgr_start {
    struct mgr_app *app;
    char *name, *log_path;
    gint64 started;
};

/* The last lines of a log (why a machine did not start); malloc'ed or NULL. */
static char *mgr_log_tail(const char *path, unsigned lines)
{
    gchar *data = NULL;
    gsize len = 0;
    if (!path || !g_file_get_contents(path, &data, &len, NULL) || !len) {
        g_free(data);
        return NULL;
    }
    const char *p = data + len;
    if (p[-1] == '\n')
        p--;
    for (unsigned n = 0; p > data; p--)
        if (p[-1] == '\n' && ++n == lines)
            break;
    char *out = g_strdup(p);
    g_free(data);
    return g_strchomp(out);
}

static void mgr_on_vm_exit(GPid pid, gint status, gpointer p)
{
    struct mgr_start *s = p;
    g_spawn_close_pid(pid);
    bool failed = !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    if (failed && g_get_monotonic_time() - s->started < MGR_START_FAIL_US) {
        char what[512], *tail = mgr_log_tail(s->log_path, 15);
        snprintf(what, sizeof(what), "The machine '%s' did not start", s->name);
        GString *d = g_string_new(NULL);
        if (WIFEXITED(status))
            g_string_append_printf(d, "vireo-vm exited with status %d.", WEXITSTATUS(status));
        else
            g_string_append_printf(d, "vireo-vm was killed by signal %d.", WTERMSIG(status));
        if (tail)
            g_string_append_printf(d, "\nThe end of %s:\n%s", s->log_path, tail);
        free(tail);
        mgr_error(s->app->window, what, 0, d->str);
        g_string_free(d, TRUE);
    }
    if (s->app->model)
        mgr_model_refresh(s->app->model);
    free(s->log_path);
    g_free(s->name);
    g_free(s);
}

void mgr_window_start_vm(struct mgr_app *app, const struct rt_uuid *uuid, bool headless)
{
    struct mgr_vm *vm = app->model ? mgr_model_find(app->model, uuid) : NULL;
    char us[RT_UUID_STR_LEN];
    rt_uuid_to_str(uuid, us);
    char *path = NULL;
    struct cfg_machine *m = NULL;
    struct cfg_error err = {{0}};
    int rc;
    if (vm && vm->path) {
        path = strdup(vm->path);
    } else if ((rc = mach_find(us, &path, &m, &err)) < 0) {
        mgr_error(app->window, "Cannot start the machine", rc, err.msg);
        return;
    }
    cfg_machine_free(m);
    char name[256];
    g_strlcpy(name, vm ? mgr_vm_name(vm) : us, sizeof(name));
    char *exe = app->program_dir ? g_build_filename(app->program_dir, "vireo-vm", NULL) : g_strdup("vireo-vm");
    int pid = -1;
    char *log_path = NULL;
    rc = mach_start(path, exe, headless, NULL, &pid, &log_path, &err);
    g_free(exe);
    free(path);
    if (rc < 0) {
        char what[512];
        snprintf(what, sizeof(what), "Cannot start the machine '%s'", name);
        mgr_error(app->window, what, rc, err.msg);
        free(log_path);
        return;
    }
    struct mgr_start *s = g_new0(struct mgr_start, 1);
    s->app = app;
    s->name = g_strdup(name);
    s->log_path = log_path;
    s->started = g_get_monotonic_time();
    g_child_watch_add(pid, mgr_on_vm_exit, s);
    if (app->model)
        mgr_model_refresh(app->model);
}

/* ---- Talking to a running machine ---------------------------------------------------------------------- */

struct mgr_ctl {
    struct mgr_app *app;
    struct rt_uuid uuid;
    char *path, *name;
    const char *command;
    const char *label;         /* for the error dialog: "pause" */
    bool stops;
    int rc;
    char msg[512];
};

static void mgr_ctl_free(struct mgr_ctl *c)
{
    free(c->path);
    g_free(c->name);
    g_free(c);
}

/* On a worker: one request; after poweroff/savestate also waits for the process to let go of the machine. */
static int mgr_ctl_do(struct mgr_ctl *c)
{
    char errmsg[256];
    int rc = vmctl_call(&c->uuid, c->command, NULL, c->stops ? MGR_STOP_TIMEOUT_MS : MGR_CTL_TIMEOUT_MS, NULL, NULL,
                        errmsg);
    if (rc < 0) {
        snprintf(c->msg, sizeof(c->msg), "%s", errmsg[0] ? errmsg : rt_err_str(rc));
        return rc;
    }
    if (c->stops) {
        gint64 end = g_get_monotonic_time() + (gint64)MGR_STOP_TIMEOUT_MS * 1000;
        while (mach_is_running(c->path)) {
            if (g_get_monotonic_time() > end) {
                snprintf(c->msg, sizeof(c->msg), "The machine is still running %d s after the request.",
                         MGR_STOP_TIMEOUT_MS / 1000);
                return VERR_TIMEOUT;
            }
            g_usleep(50000);
        }
    }
    return 0;
}

static void mgr_ctl_thread(GTask *task, gpointer src, gpointer data, GCancellable *cancel)
{
    (void)src;
    (void)cancel;
    struct mgr_ctl *c = data;
    c->rc = mgr_ctl_do(c);
    g_task_return_boolean(task, TRUE);
}

static void mgr_ctl_report(struct mgr_ctl *c)
{
    if (c->rc < 0) {
        char what[512];
        snprintf(what, sizeof(what), "The machine '%s' could not %s", c->name, c->label);
        mgr_error(c->app->window, what, c->rc, c->msg);
    }
    mgr_app_refresh(c->app, NULL);
}

static void mgr_ctl_done(GObject *src, GAsyncResult *res, gpointer data)
{
    (void)src;
    (void)data;
    struct mgr_ctl *c = g_task_get_task_data(G_TASK(res));
    mgr_ctl_report(c);
}

static int mgr_ctl_job(struct mgr_job *job, void *opaque, struct cfg_error *err)
{
    (void)job;
    struct mgr_ctl *c = opaque;
    c->rc = mgr_ctl_do(c);
    if (c->rc < 0)
        snprintf(err->msg, sizeof(err->msg), "%s", c->msg);
    return c->rc;
}

static void mgr_ctl_job_done(void *opaque, int rc, const struct cfg_error *err)
{
    (void)rc;
    (void)err;
    struct mgr_ctl *c = opaque;
    c->rc = 0; /* mgr_job_run showed the error already */
    mgr_ctl_report(c);
    mgr_ctl_free(c);
}

static void mgr_control(struct mgr_win *w, const struct rt_uuid *uuid, const char *command, const char *label)
{
    struct mgr_vm *vm = mgr_model_find(w->app->model, uuid);
    if (!vm || !vm->running)
        return;
    struct mgr_ctl *c = g_new0(struct mgr_ctl, 1);
    c->app = w->app;
    c->uuid = vm->uuid;
    c->path = strdup(vm->path);
    c->name = g_strdup(mgr_vm_name(vm));
    c->command = command;
    c->label = label;
    c->stops = !strcmp(command, "poweroff") || !strcmp(command, "savestate");
    if (!strcmp(command, "savestate")) {
        /* Writes the machine's memory to disk: hundreds of MiB, so with progress. */
        char what[512];
        snprintf(what, sizeof(what), "The machine '%s' could not save its state", c->name);
        mgr_job_run(w->win, "Saving the machine's state", what, mgr_ctl_job, mgr_ctl_job_done, c);
        return;
    }
    GTask *t = g_task_new(NULL, NULL, mgr_ctl_done, NULL);
    g_task_set_task_data(t, c, (GDestroyNotify)mgr_ctl_free);
    g_task_run_in_thread(t, mgr_ctl_thread);
    g_object_unref(t);
}

/* ---- Remove ----------------------------------------------------------------------------------------------- */

struct mgr_remove {
    struct mgr_app *app;
    char uuid[RT_UUID_STR_LEN];
    char *name;
    bool delete_files;
    bool unreadable;     /* its settings file cannot be read: Remove Only, by registry entry */
};

/*
 * A machine whose settings file cannot be read cannot go through mach_unregister (which reads it to find
 * its disks): Remove Only takes its entry out of the registry directly, under the registry's lock, and
 * leaves every file where it is.
 */
static int mgr_unregister_unreadable_edit(void *opaque, struct cfg_global *g, struct cfg_error *err)
{
    const char *uuid_str = opaque;
    struct rt_uuid uuid;
    if (rt_uuid_parse(uuid_str, &uuid) < 0)
        return VERR_INVALID_PARAMETER;
    const char *path = NULL;
    for (size_t i = 0; i < g->machine_count; i++)
        if (!memcmp(g->machines[i].uuid.bytes, uuid.bytes, sizeof(uuid.bytes)))
            path = g->machines[i].path;
    if (path && mach_is_running(path)) {
        snprintf(err->msg, sizeof(err->msg), "the machine of %s is running; power it off first", path);
        return VERR_INVALID_STATE;
    }
    int rc = cfg_machine_entry_remove(g, &uuid);
    if (rc < 0)
        snprintf(err->msg, sizeof(err->msg), "the machine %s is not in the registry any more", uuid_str);
    return rc;
}

static int mgr_unregister_unreadable(const char *uuid_str, struct cfg_error *err)
{
    return mach_global_edit(mgr_unregister_unreadable_edit, (void *)uuid_str, err);
}

static int mgr_remove_job(struct mgr_job *job, void *opaque, struct cfg_error *err)
{
    (void)job;
    struct mgr_remove *r = opaque;
    if (r->unreadable)
        return mgr_unregister_unreadable(r->uuid, err);
    return mach_unregister(r->uuid, r->delete_files, err);
}

static void mgr_remove_done(void *opaque, int rc, const struct cfg_error *err)
{
    (void)rc;
    (void)err;
    struct mgr_remove *r = opaque;
    mgr_app_refresh(r->app, NULL);
    g_free(r->name);
    g_free(r);
}

/* The hard disks Delete All Files will delete: attached to this machine and used by no other. */
static char *mgr_disks_to_delete(const struct mgr_vm *vm)
{
    if (!vm->cfg)
        return NULL;
    struct cfg_global *g = NULL;
    struct cfg_error err = {{0}};
    char *gpath = cfg_global_path();
    if (!gpath || cfg_global_load(gpath, &g, &err) < 0) {
        free(gpath);
        return NULL;
    }
    free(gpath);
    GString *s = g_string_new(NULL);
    for (size_t i = 0; i < vm->cfg->hw.attachment_count; i++) {
        const struct cfg_attachment *a = &vm->cfg->hw.attachments[i];
        if (a->type != CFG_MEDIUM_HDD || rt_uuid_is_null(&a->medium))
            continue;
        const struct cfg_medium *md = cfg_medium_find(g, &a->medium);
        if (!md)
            continue;
        char **users = NULL;
        size_t n = 0;
        bool shared = false;
        if (mach_medium_users(&md->uuid, &users, &n, &err) == 0) {
            for (size_t u = 0; u < n; u++) {
                if (vm->cfg->name && strcmp(users[u], vm->cfg->name))
                    shared = true;
                free(users[u]);
            }
            free(users);
        }
        if (!shared)
            g_string_append_printf(s, "\n  %s", md->location);
    }
    cfg_global_free(g);
    return g_string_free(s, s->len == 0);
}

enum { MGR_RESP_REMOVE_ONLY = 1, MGR_RESP_DELETE_ALL = 2 };

static void mgr_remove_vm(struct mgr_win *w)
{
    struct mgr_vm *vm = mgr_selected(w);
    if (!vm)
        return;
    /* The model may change (and drop vm) while the dialog runs: what is needed afterwards is copied. */
    char name[256], uuid[RT_UUID_STR_LEN];
    g_strlcpy(name, mgr_vm_name(vm), sizeof(name));
    g_strlcpy(uuid, vm->uuid_str, sizeof(uuid));
    char what[512];
    if (vm->running || mach_is_running(vm->path)) {
        snprintf(what, sizeof(what), "The machine '%s' is running", name);
        mgr_error(w->win, what, 0, "A running machine cannot be removed. Power it off (Machine, Power Off) first.");
        return;
    }
    GtkWidget *d = gtk_dialog_new_with_buttons("Remove Machine", w->win,
                                               GTK_DIALOG_MODAL | GTK_DIALOG_DESTROY_WITH_PARENT,
                                               "Cancel", GTK_RESPONSE_CANCEL, "Remove Only", MGR_RESP_REMOVE_ONLY,
                                               "Delete All Files", MGR_RESP_DELETE_ALL, NULL);
    GtkWidget *del = gtk_dialog_get_widget_for_response(GTK_DIALOG(d), MGR_RESP_DELETE_ALL);
    gtk_style_context_add_class(gtk_widget_get_style_context(del), "destructive-action");
    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 8);
    gtk_container_set_border_width(GTK_CONTAINER(box), 12);
    snprintf(what, sizeof(what), "Remove the machine '%s'?", name);
    GtkWidget *q = gtk_label_new(NULL);
    char *markup = g_markup_printf_escaped("<b>%s</b>", what);
    gtk_label_set_markup(GTK_LABEL(q), markup);
    g_free(markup);
    gtk_label_set_xalign(GTK_LABEL(q), 0.0f);
    gtk_box_pack_start(GTK_BOX(box), q, FALSE, FALSE, 0);
    bool unreadable = vm->cfg == NULL;
    /* Without its settings nobody knows which files are the machine's: nothing is deleted then. */
    gtk_widget_set_sensitive(del, !unreadable);
    char *disks = mgr_disks_to_delete(vm);
    char *folder = mach_folder(vm->path);
    char *text = unreadable
        ? g_strdup_printf("Its settings file cannot be read, so Remove Only is the way: it takes the machine off the "
                          "list and leaves every file in %s as it is.", folder ? folder : "its folder")
        : g_strdup_printf(
              "Remove Only takes the machine off the list and keeps its files in %s, so it can be added again.\n\n"
              "Delete All Files also deletes its settings, logs, saved states and snapshots%s%s%s",
              folder ? folder : "its folder", disks ? ", and these disks:" : " (it has no disks of its own).",
              disks ? disks : "", disks ? "\nThis cannot be undone." : "");
    free(folder);
    g_free(disks);
    GtkWidget *l = gtk_label_new(text);
    g_free(text);
    gtk_label_set_xalign(GTK_LABEL(l), 0.0f);
    gtk_label_set_line_wrap(GTK_LABEL(l), TRUE);
    gtk_label_set_max_width_chars(GTK_LABEL(l), 70);
    gtk_label_set_selectable(GTK_LABEL(l), TRUE);
    gtk_box_pack_start(GTK_BOX(box), l, FALSE, FALSE, 0);
    gtk_box_pack_start(GTK_BOX(gtk_dialog_get_content_area(GTK_DIALOG(d))), box, TRUE, TRUE, 0);
    gtk_dialog_set_default_response(GTK_DIALOG(d), GTK_RESPONSE_CANCEL);
    gtk_widget_show_all(d);
    int resp = gtk_dialog_run(GTK_DIALOG(d));
    gtk_widget_destroy(d);
    if (resp != MGR_RESP_REMOVE_ONLY && resp != MGR_RESP_DELETE_ALL)
        return;
    struct mgr_remove *r = g_new0(struct mgr_remove, 1);
    r->app = w->app;
    g_strlcpy(r->uuid, uuid, sizeof(r->uuid));
    r->name = g_strdup(name);
    r->delete_files = resp == MGR_RESP_DELETE_ALL && !unreadable;
    r->unreadable = unreadable;
    snprintf(what, sizeof(what), "Cannot remove the machine '%s'", name);
    mgr_job_run(w->win, r->delete_files ? "Deleting the machine" : "Removing the machine", what, mgr_remove_job,
                mgr_remove_done, r);
}

/* ---- Preferences --------------------------------------------------------------------------------------------- */

struct mgr_prefs {
    GtkWidget *dialog, *folder, *folder_err, *ok;
};

static void mgr_prefs_check(GtkEditable *e, gpointer p)
{
    (void)e;
    struct mgr_prefs *pr = p;
    char why[MGR_WHY_MAX] = "";
    const char *f = gtk_entry_get_text(GTK_ENTRY(pr->folder));
    bool ok = *f && mgr_check_folder(f, why);
    if (!*f)
        snprintf(why, sizeof(why), "Enter the folder where new machines are created.");
    mgr_field_error_set(pr->folder_err, ok ? NULL : why);
    gtk_widget_set_sensitive(pr->ok, ok);
}

static void mgr_prefs_browse(GtkButton *b, gpointer p)
{
    (void)b;
    struct mgr_prefs *pr = p;
    GtkWidget *fc = gtk_file_chooser_dialog_new("Default Machine Folder", GTK_WINDOW(pr->dialog),
                                                GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER, "Cancel", GTK_RESPONSE_CANCEL,
                                                "Select", GTK_RESPONSE_ACCEPT, NULL);
    const char *cur = gtk_entry_get_text(GTK_ENTRY(pr->folder));
    if (*cur && g_file_test(cur, G_FILE_TEST_IS_DIR))
        gtk_file_chooser_set_current_folder(GTK_FILE_CHOOSER(fc), cur);
    char *f = mgr_file_chooser_run(fc);
    if (f)
        gtk_entry_set_text(GTK_ENTRY(pr->folder), f);
    g_free(f);
}

/* The global registry's preferences, changed under its lock like every other change to it. */
struct mgr_prefs_values {
    const char *folder, *hostkey, *language;
};

static int mgr_prefs_edit(void *opaque, struct cfg_global *g, struct cfg_error *err)
{
    (void)err;
    const struct mgr_prefs_values *v = opaque;
    free(g->default_machine_folder);
    g->default_machine_folder = strdup(v->folder);
    int rc = g->default_machine_folder ? 0 : VERR_NO_MEMORY;
    if (rc == 0)
        rc = cfg_extra_set(&g->extra, &g->extra_count, "GUI/HostKey", v->hostkey);
    if (rc == 0)
        rc = cfg_extra_set(&g->extra, &g->extra_count, "GUI/Language", v->language);
    return rc;
}

static int mgr_prefs_save(const char *folder, const char *hostkey, const char *language, struct cfg_error *err)
{
    struct mgr_prefs_values v = {folder, hostkey, language};
    return mach_global_edit(mgr_prefs_edit, &v, err);
}

static GtkWidget *mgr_grid_label(GtkWidget *grid, const char *text, int row)
{
    GtkWidget *l = gtk_label_new_with_mnemonic(text);
    gtk_label_set_xalign(GTK_LABEL(l), 0.0f);
    gtk_grid_attach(GTK_GRID(grid), l, 0, row, 1, 1);
    return l;
}

static void mgr_preferences(struct mgr_win *w)
{
    struct cfg_global *g = NULL;
    struct cfg_error err = {{0}};
    char *gpath = cfg_global_path();
    int rc = gpath ? cfg_global_load(gpath, &g, &err) : VERR_NO_MEMORY;
    free(gpath);
    if (rc < 0) {
        mgr_error(w->win, "Cannot read the preferences", rc, err.msg);
        return;
    }
    struct mgr_prefs pr = {0};
    pr.dialog = mgr_dialog_new(w->win, "Preferences", "OK", &pr.ok);
    GtkWidget *grid = gtk_grid_new();
    gtk_container_set_border_width(GTK_CONTAINER(grid), 12);
    gtk_grid_set_row_spacing(GTK_GRID(grid), 6);
    gtk_grid_set_column_spacing(GTK_GRID(grid), 8);

    GtkWidget *l = mgr_grid_label(grid, "Default machine _folder:", 0);
    pr.folder = gtk_entry_new();
    gtk_entry_set_activates_default(GTK_ENTRY(pr.folder), TRUE);
    gtk_widget_set_hexpand(pr.folder, TRUE);
    gtk_entry_set_width_chars(GTK_ENTRY(pr.folder), 40);
    gtk_label_set_mnemonic_widget(GTK_LABEL(l), pr.folder);
    mgr_a11y_name(pr.folder, "Default machine folder", NULL);
    char *def = cfg_default_machine_folder(g->default_machine_folder);
    gtk_entry_set_text(GTK_ENTRY(pr.folder), def ? def : "");
    free(def);
    gtk_grid_attach(GTK_GRID(grid), pr.folder, 1, 0, 1, 1);
    GtkWidget *browse = gtk_button_new_with_mnemonic("_Browse…");
    mgr_on_click(browse, mgr_prefs_browse, &pr);
    gtk_grid_attach(GTK_GRID(grid), browse, 2, 0, 1, 1);
    pr.folder_err = mgr_field_error_new("Default machine folder");
    gtk_grid_attach(GTK_GRID(grid), pr.folder_err, 1, 1, 2, 1);

    l = mgr_grid_label(grid, "_Host key:", 2);
    GtkWidget *hk = gtk_combo_box_text_new();
    /* The console's own table, so the choices are the keys it knows; an unknown saved value shows as its default. */
    for (size_t i = 0; i < console_host_key_count; i++)
        gtk_combo_box_text_append(GTK_COMBO_BOX_TEXT(hk), console_host_keys[i].id, console_host_keys[i].name);
    const char *cur_hk = cfg_extra_get(g->extra, g->extra_count, "GUI/HostKey");
    gtk_combo_box_set_active_id(GTK_COMBO_BOX(hk), console_host_key_lookup(cur_hk, NULL)->id);
    gtk_label_set_mnemonic_widget(GTK_LABEL(l), hk);
    mgr_a11y_name(hk, "Host key", NULL);
    gtk_grid_attach(GTK_GRID(grid), hk, 1, 2, 2, 1);
    GtkWidget *note = gtk_label_new("The host key releases the keyboard and mouse from a machine's window. A "
                                    "change applies to machine windows opened from now on.");
    gtk_label_set_line_wrap(GTK_LABEL(note), TRUE);
    gtk_label_set_max_width_chars(GTK_LABEL(note), 60);
    gtk_label_set_xalign(GTK_LABEL(note), 0.0f);
    gtk_style_context_add_class(gtk_widget_get_style_context(note), "dim-label");
    gtk_grid_attach(GTK_GRID(grid), note, 1, 3, 2, 1);

    l = mgr_grid_label(grid, "_Language:", 4);
    GtkWidget *lang = gtk_combo_box_text_new();
    gtk_combo_box_text_append(GTK_COMBO_BOX_TEXT(lang), "", "System default");
    gtk_combo_box_text_append(GTK_COMBO_BOX_TEXT(lang), "en", "English");
    const char *cur_lang = cfg_extra_get(g->extra, g->extra_count, "GUI/Language");
    gtk_combo_box_set_active(GTK_COMBO_BOX(lang), cur_lang && !strcmp(cur_lang, "en") ? 1 : 0);
    gtk_label_set_mnemonic_widget(GTK_LABEL(l), lang);
    mgr_a11y_name(lang, "Language", NULL);
    gtk_grid_attach(GTK_GRID(grid), lang, 1, 4, 2, 1);
    gtk_grid_attach(GTK_GRID(grid),
                    mgr_note("Vireo's windows are in English only in this version; the choice is kept for when "
                             "translations exist."),
                    1, 5, 2, 1);
    cfg_global_free(g);

    gtk_box_pack_start(GTK_BOX(gtk_dialog_get_content_area(GTK_DIALOG(pr.dialog))), grid, TRUE, TRUE, 0);
    g_signal_connect(pr.folder, "changed", G_CALLBACK(mgr_prefs_check), &pr);
    mgr_prefs_check(NULL, &pr);
    gtk_widget_show_all(pr.dialog);
    while (gtk_dialog_run(GTK_DIALOG(pr.dialog)) == GTK_RESPONSE_OK) {
        const char *folder = gtk_entry_get_text(GTK_ENTRY(pr.folder));
        char why[MGR_WHY_MAX];
        if (!mgr_check_folder(folder, why)) {
            mgr_field_error_set(pr.folder_err, why);
            continue;
        }
        const char *id = gtk_combo_box_get_active_id(GTK_COMBO_BOX(lang));
        struct cfg_error e2 = {{0}};
        rc = mgr_prefs_save(folder, gtk_combo_box_get_active_id(GTK_COMBO_BOX(hk)), id && *id ? id : NULL, &e2);
        if (rc == 0)
            break;
        mgr_error(GTK_WINDOW(pr.dialog), "Cannot save the preferences", rc, e2.msg);
    }
    gtk_widget_destroy(pr.dialog);
}

/* ---- Menus, toolbar and the window ------------------------------------------------------------------------------ */

static void mgr_about(struct mgr_win *w)
{
    char version[64];
    snprintf(version, sizeof(version), "settings schema %d", CFG_SCHEMA_VERSION);
    gtk_show_about_dialog(w->win, "program-name", "Vireo", "version", version, "comments",
                          "Create, configure and run virtual machines.", "logo-icon-name", "computer", "title",
                          "About Vireo", NULL);
}

enum mgr_act {
    ACT_NEW, ACT_MEDIA, ACT_PREFS, ACT_QUIT, ACT_SETTINGS, ACT_START, ACT_START_HEADLESS, ACT_PAUSE, ACT_RESUME,
    ACT_PAUSE_TOGGLE, ACT_SAVE, ACT_ACPI, ACT_POWEROFF, ACT_RESET, ACT_SNAPSHOTS, ACT_CLONE, ACT_REMOVE, ACT_ABOUT,
    ACT_START_MENU, ACT_STOP_MENU,
};

static void mgr_do(struct mgr_win *w, enum mgr_act act, GtkWidget *from)
{
    struct mgr_vm *vm = mgr_selected(w);
    struct mgr_app *app = w->app;
    switch (act) {
    case ACT_NEW: mgr_newvm_run(app, w->win); return;
    case ACT_MEDIA: mgr_media_show(app, w->win); return;
    case ACT_PREFS: mgr_preferences(w); return;
    case ACT_QUIT: gtk_widget_destroy(GTK_WIDGET(w->win)); return;
    case ACT_ABOUT: mgr_about(w); return;
    case ACT_START_MENU:
        gtk_menu_popup_at_widget(GTK_MENU(w->start_menu), from, GDK_GRAVITY_SOUTH_WEST, GDK_GRAVITY_NORTH_WEST, NULL);
        return;
    case ACT_STOP_MENU:
        gtk_menu_popup_at_widget(GTK_MENU(w->stop_menu), from, GDK_GRAVITY_SOUTH_WEST, GDK_GRAVITY_NORTH_WEST, NULL);
        return;
    default: break;
    }
    if (!vm)
        return;
    struct rt_uuid uuid = vm->uuid;
    switch (act) {
    case ACT_SETTINGS: mgr_settings_run(app, w->win, &uuid); break;
    case ACT_SNAPSHOTS: mgr_snapshots_show(app, w->win, &uuid); break;
    case ACT_CLONE: mgr_clone_run(app, w->win, &uuid); break;
    case ACT_START: mgr_window_start_vm(app, &uuid, false); break;
    case ACT_START_HEADLESS: mgr_window_start_vm(app, &uuid, true); break;
    case ACT_PAUSE: mgr_control(w, &uuid, "pause", "pause"); break;
    case ACT_RESUME: mgr_control(w, &uuid, "resume", "resume"); break;
    case ACT_PAUSE_TOGGLE:
        if (vm->state == CFG_STATE_PAUSED)
            mgr_control(w, &uuid, "resume", "resume");
        else
            mgr_control(w, &uuid, "pause", "pause");
        break;
    case ACT_SAVE: mgr_control(w, &uuid, "savestate", "save its state"); break;
    case ACT_ACPI: mgr_control(w, &uuid, "acpipowerbutton", "be sent the ACPI shutdown signal"); break;
    case ACT_RESET: {
        char q[512];
        snprintf(q, sizeof(q), "Reset the machine '%s'?", mgr_vm_name(vm));
        if (mgr_confirm(w->win, q, "The machine restarts at once; unsaved work in it is lost.", "Reset", true))
            mgr_control(w, &uuid, "reset", "reset");
        break;
    }
    case ACT_POWEROFF: {
        char q[512];
        snprintf(q, sizeof(q), "Power off the machine '%s'?", mgr_vm_name(vm));
        if (mgr_confirm(w->win, q, "This is like pulling the power plug: unsaved work in the machine is lost.",
                        "Power Off", true))
            mgr_control(w, &uuid, "poweroff", "power off");
        break;
    }
    case ACT_REMOVE: mgr_remove_vm(w); break;
    default: break;
    }
}

struct mgr_deferred {
    struct mgr_win *w;
    enum mgr_act act;
    GtkWidget *from;
};

static gboolean mgr_act_idle(gpointer p)
{
    struct mgr_deferred *d = p;
    if (!d->w->dead)
        mgr_do(d->w, d->act, d->from);
    g_object_unref(d->from);
    g_free(d);
    return G_SOURCE_REMOVE;
}

/*
 * Actions run from the main loop, not inside the signal: most open a modal dialog (gtk_dialog_run), and a
 * click that arrives through the accessibility bus (screen readers, the GUI tests) is emitted while that
 * bus's message is being dispatched, which a nested loop would hold up until the dialog closes.
 */
static void mgr_on_act(GtkWidget *wid, gpointer p)
{
    struct mgr_deferred *d = g_new0(struct mgr_deferred, 1);
    d->w = p;
    d->act = (enum mgr_act)GPOINTER_TO_INT(g_object_get_data(G_OBJECT(wid), "mgr-act"));
    d->from = g_object_ref(wid);
    g_idle_add(mgr_act_idle, d);
}

static GtkWidget *mgr_menu_item(struct mgr_win *w, GtkWidget *menu, const char *label, enum mgr_act act,
                                GtkAccelGroup *accel, guint key)
{
    GtkWidget *it = gtk_menu_item_new_with_mnemonic(label);
    g_object_set_data(G_OBJECT(it), "mgr-act", GINT_TO_POINTER(act));
    g_signal_connect(it, "activate", G_CALLBACK(mgr_on_act), w);
    if (accel && key)
        gtk_widget_add_accelerator(it, "activate", accel, key, GDK_CONTROL_MASK, GTK_ACCEL_VISIBLE);
    gtk_menu_shell_append(GTK_MENU_SHELL(menu), it);
    return it;
}

static GtkWidget *mgr_menu(GtkWidget *bar, const char *label)
{
    GtkWidget *top = gtk_menu_item_new_with_mnemonic(label);
    GtkWidget *menu = gtk_menu_new();
    gtk_menu_item_set_submenu(GTK_MENU_ITEM(top), menu);
    gtk_menu_shell_append(GTK_MENU_SHELL(bar), top);
    return menu;
}

static GtkWidget *mgr_tool_button(struct mgr_win *w, GtkWidget *box, const char *label, const char *icon,
                                  enum mgr_act act)
{
    GtkWidget *b = gtk_button_new_with_label(label);
    if (icon) {
        gtk_button_set_image(GTK_BUTTON(b), gtk_image_new_from_icon_name(icon, GTK_ICON_SIZE_LARGE_TOOLBAR));
        gtk_button_set_image_position(GTK_BUTTON(b), GTK_POS_TOP);
        gtk_button_set_always_show_image(GTK_BUTTON(b), TRUE);
    }
    gtk_button_set_relief(GTK_BUTTON(b), GTK_RELIEF_NONE);
    g_object_set_data(G_OBJECT(b), "mgr-act", GINT_TO_POINTER(act));
    g_signal_connect(b, "clicked", G_CALLBACK(mgr_on_act), w);
    gtk_box_pack_start(GTK_BOX(box), b, FALSE, FALSE, 0);
    return b;
}

static void mgr_on_row_activated(GtkTreeView *tv, GtkTreePath *path, GtkTreeViewColumn *col, gpointer p)
{
    (void)tv;
    (void)path;
    (void)col;
    struct mgr_win *w = p;
    struct mgr_vm *vm = mgr_selected(w);
    /* A running machine's console is its own process's window; there is nothing to start. */
    if (vm && vm->cfg && !vm->running)
        mgr_do(w, ACT_START, NULL);
}

static void mgr_on_destroy(GtkWidget *widget, gpointer p)
{
    (void)widget;
    struct mgr_win *w = p;
    /* The model may still report before the program ends: the listener sees the window is gone. */
    w->app->window = NULL;
    w->dead = true;
}

static GtkWidget *mgr_build_list(struct mgr_win *w)
{
    w->store = gtk_list_store_new(COL_COUNT, G_TYPE_STRING, G_TYPE_STRING, G_TYPE_STRING, G_TYPE_STRING,
                                  GDK_TYPE_PIXBUF, G_TYPE_STRING);
    w->tree = GTK_TREE_VIEW(gtk_tree_view_new_with_model(GTK_TREE_MODEL(w->store)));
    g_object_unref(w->store);
    gtk_tree_view_set_headers_visible(w->tree, FALSE);
    mgr_a11y_name(GTK_WIDGET(w->tree), "Machines", NULL);

    GtkCellRenderer *r = gtk_cell_renderer_pixbuf_new();
    g_object_set(r, "stock-size", GTK_ICON_SIZE_DND, "xpad", 6, NULL);
    gtk_tree_view_append_column(w->tree,
                                gtk_tree_view_column_new_with_attributes("OS", r, "icon-name", COL_ICON, NULL));

    /* The name (bold) above the OS description, as two cells of one column: the name cell's text stays the name. */
    GtkCellArea *area = gtk_cell_area_box_new();
    gtk_orientable_set_orientation(GTK_ORIENTABLE(area), GTK_ORIENTATION_VERTICAL);
    GtkTreeViewColumn *col = gtk_tree_view_column_new_with_area(area);
    gtk_tree_view_column_set_title(col, "Name");
    gtk_tree_view_column_set_expand(col, TRUE);
    gtk_tree_view_column_set_min_width(col, 150);
    r = gtk_cell_renderer_text_new();
    /* A row as tall as a thumbnail splits its height between the two lines: they meet in the middle. */
    g_object_set(r, "weight", PANGO_WEIGHT_BOLD, "ellipsize", PANGO_ELLIPSIZE_END, "yalign", 1.0, NULL);
    gtk_tree_view_column_pack_start(col, r, FALSE);
    gtk_tree_view_column_add_attribute(col, r, "text", COL_NAME);
    r = gtk_cell_renderer_text_new();
    g_object_set(r, "scale", 0.85, "ellipsize", PANGO_ELLIPSIZE_END, "yalign", 0.0, NULL);
    gtk_tree_view_column_pack_start(col, r, FALSE);
    gtk_tree_view_column_add_attribute(col, r, "text", COL_OS);
    gtk_tree_view_append_column(w->tree, col);

    r = gtk_cell_renderer_text_new();
    g_object_set(r, "xpad", 8, NULL);
    gtk_tree_view_append_column(w->tree, gtk_tree_view_column_new_with_attributes("State", r, "text", COL_STATE, NULL));
    r = gtk_cell_renderer_pixbuf_new();
    g_object_set(r, "xpad", 4, "ypad", 2, NULL);
    gtk_tree_view_append_column(w->tree,
                                gtk_tree_view_column_new_with_attributes("Screen", r, "pixbuf", COL_THUMB, NULL));

    GtkTreeSelection *sel = gtk_tree_view_get_selection(w->tree);
    gtk_tree_selection_set_mode(sel, GTK_SELECTION_BROWSE);
    g_signal_connect(sel, "changed", G_CALLBACK(mgr_on_selection), w);
    g_signal_connect(w->tree, "row-activated", G_CALLBACK(mgr_on_row_activated), w);

    GtkWidget *sw = gtk_scrolled_window_new(NULL, NULL);
    gtk_scrolled_window_set_policy(GTK_SCROLLED_WINDOW(sw), GTK_POLICY_NEVER, GTK_POLICY_AUTOMATIC);
    gtk_container_add(GTK_CONTAINER(sw), GTK_WIDGET(w->tree));

    w->stack = gtk_stack_new();
    gtk_stack_add_named(GTK_STACK(w->stack), sw, "list");
    GtkWidget *empty = gtk_box_new(GTK_ORIENTATION_VERTICAL, 12);
    gtk_widget_set_valign(empty, GTK_ALIGN_CENTER);
    GtkWidget *icon = gtk_image_new_from_icon_name("computer", GTK_ICON_SIZE_DIALOG);
    gtk_image_set_pixel_size(GTK_IMAGE(icon), 96);
    gtk_box_pack_start(GTK_BOX(empty), icon, FALSE, FALSE, 0);
    GtkWidget *l = gtk_label_new("No machines yet — press New to create one");
    gtk_label_set_line_wrap(GTK_LABEL(l), TRUE);
    gtk_box_pack_start(GTK_BOX(empty), l, FALSE, FALSE, 0);
    GtkWidget *first = gtk_button_new_with_label("Create a Machine…");
    gtk_style_context_add_class(gtk_widget_get_style_context(first), "suggested-action");
    gtk_widget_set_halign(first, GTK_ALIGN_CENTER);
    g_object_set_data(G_OBJECT(first), "mgr-act", GINT_TO_POINTER(ACT_NEW));
    g_signal_connect(first, "clicked", G_CALLBACK(mgr_on_act), w);
    gtk_box_pack_start(GTK_BOX(empty), first, FALSE, FALSE, 0);
    gtk_stack_add_named(GTK_STACK(w->stack), empty, "empty");
    l = gtk_label_new("The machine list cannot be read; the message above says why. Vireo reads it again as "
                      "soon as the file changes.");
    gtk_label_set_line_wrap(GTK_LABEL(l), TRUE);
    gtk_label_set_max_width_chars(GTK_LABEL(l), 40);
    gtk_stack_add_named(GTK_STACK(w->stack), l, "unreadable");
    GtkWidget *loading = gtk_label_new("Reading the machine list…");
    gtk_stack_add_named(GTK_STACK(w->stack), loading, "loading");
    gtk_widget_show_all(w->stack);
    gtk_stack_set_visible_child_name(GTK_STACK(w->stack), "loading");
    gtk_widget_set_size_request(w->stack, 500, -1);
    return w->stack;
}

GtkWindow *mgr_window_new(struct mgr_app *app)
{
    struct mgr_win *w = g_new0(struct mgr_win, 1);
    w->app = app;
    w->win = GTK_WINDOW(gtk_window_new(GTK_WINDOW_TOPLEVEL));
    app->window = w->win;
    g_object_set_data(G_OBJECT(w->win), "mgr-win", w);
    gtk_window_set_title(w->win, "Vireo");
    gtk_window_set_default_size(w->win, 1180, 760);
    gtk_window_set_icon_name(w->win, "computer");
    g_signal_connect(w->win, "destroy", G_CALLBACK(mgr_on_destroy), w);
    g_signal_connect_after(w->win, "draw", G_CALLBACK(mgr_on_draw), w);
    GtkAccelGroup *accel = gtk_accel_group_new();
    gtk_window_add_accel_group(w->win, accel);

    GtkWidget *vbox = gtk_box_new(GTK_ORIENTATION_VERTICAL, 0);
    gtk_container_add(GTK_CONTAINER(w->win), vbox);

    GtkWidget *bar = gtk_menu_bar_new();
    GtkWidget *m = mgr_menu(bar, "_File");
    mgr_menu_item(w, m, "_New Machine…", ACT_NEW, accel, GDK_KEY_n);
    mgr_menu_item(w, m, "_Media Manager…", ACT_MEDIA, accel, GDK_KEY_d);
    mgr_menu_item(w, m, "_Preferences…", ACT_PREFS, accel, GDK_KEY_g);
    gtk_menu_shell_append(GTK_MENU_SHELL(m), gtk_separator_menu_item_new());
    mgr_menu_item(w, m, "_Quit", ACT_QUIT, accel, GDK_KEY_q);
    m = mgr_menu(bar, "_Machine");
    w->m_settings = mgr_menu_item(w, m, "_Settings…", ACT_SETTINGS, accel, GDK_KEY_s);
    gtk_menu_shell_append(GTK_MENU_SHELL(m), gtk_separator_menu_item_new());
    w->m_start = mgr_menu_item(w, m, "S_tart", ACT_START, NULL, 0);
    w->m_start_headless = mgr_menu_item(w, m, "Start _Headless", ACT_START_HEADLESS, NULL, 0);
    w->m_pause = mgr_menu_item(w, m, "_Pause", ACT_PAUSE, NULL, 0);
    w->m_resume = mgr_menu_item(w, m, "Res_ume", ACT_RESUME, NULL, 0);
    w->m_save = mgr_menu_item(w, m, "Sa_ve State", ACT_SAVE, NULL, 0);
    w->m_acpi = mgr_menu_item(w, m, "_ACPI Shutdown", ACT_ACPI, NULL, 0);
    w->m_poweroff = mgr_menu_item(w, m, "Power _Off", ACT_POWEROFF, NULL, 0);
    w->m_reset = mgr_menu_item(w, m, "R_eset", ACT_RESET, NULL, 0);
    gtk_menu_shell_append(GTK_MENU_SHELL(m), gtk_separator_menu_item_new());
    w->m_snapshots = mgr_menu_item(w, m, "Snaps_hots…", ACT_SNAPSHOTS, NULL, 0);
    w->m_clone = mgr_menu_item(w, m, "_Clone…", ACT_CLONE, accel, GDK_KEY_o);
    w->m_remove = mgr_menu_item(w, m, "_Remove…", ACT_REMOVE, NULL, 0);
    m = mgr_menu(bar, "_Help");
    mgr_menu_item(w, m, "_About", ACT_ABOUT, NULL, 0);
    gtk_box_pack_start(GTK_BOX(vbox), bar, FALSE, FALSE, 0);

    /* The toolbar: a row of labelled buttons, as VirtualBox's. */
    GtkWidget *tb = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 2);
    gtk_container_set_border_width(GTK_CONTAINER(tb), 4);
    mgr_tool_button(w, tb, "New", "document-new", ACT_NEW);
    w->b_settings = mgr_tool_button(w, tb, "Settings", "preferences-system", ACT_SETTINGS);
    w->b_start = mgr_tool_button(w, tb, "Start", "media-playback-start", ACT_START);
    w->b_start_more = gtk_button_new_from_icon_name("pan-down-symbolic", GTK_ICON_SIZE_BUTTON);
    gtk_button_set_relief(GTK_BUTTON(w->b_start_more), GTK_RELIEF_NONE);
    gtk_widget_set_valign(w->b_start_more, GTK_ALIGN_CENTER);
    gtk_widget_set_tooltip_text(w->b_start_more, "Other ways to start");
    mgr_a11y_name(w->b_start_more, "Start Options", NULL);
    g_object_set_data(G_OBJECT(w->b_start_more), "mgr-act", GINT_TO_POINTER(ACT_START_MENU));
    g_signal_connect(w->b_start_more, "clicked", G_CALLBACK(mgr_on_act), w);
    gtk_box_pack_start(GTK_BOX(tb), w->b_start_more, FALSE, FALSE, 0);
    w->b_pause = mgr_tool_button(w, tb, "Pause", "media-playback-pause", ACT_PAUSE_TOGGLE);
    w->b_stop = mgr_tool_button(w, tb, "Stop", "system-shutdown", ACT_STOP_MENU);
    w->b_snapshots = mgr_tool_button(w, tb, "Snapshots", "camera-photo", ACT_SNAPSHOTS);
    w->b_remove = mgr_tool_button(w, tb, "Remove", "edit-delete", ACT_REMOVE);
    gtk_box_pack_start(GTK_BOX(vbox), tb, FALSE, FALSE, 0);

    w->start_menu = gtk_menu_new();
    mgr_menu_item(w, w->start_menu, "Start Headless", ACT_START_HEADLESS, NULL, 0);
    gtk_widget_show_all(w->start_menu);
    w->stop_menu = gtk_menu_new();
    mgr_menu_item(w, w->stop_menu, "Save State", ACT_SAVE, NULL, 0);
    mgr_menu_item(w, w->stop_menu, "ACPI Shutdown", ACT_ACPI, NULL, 0);
    mgr_menu_item(w, w->stop_menu, "Power Off", ACT_POWEROFF, NULL, 0);
    gtk_widget_show_all(w->stop_menu);

    w->bar = gtk_info_bar_new();
    gtk_info_bar_set_message_type(GTK_INFO_BAR(w->bar), GTK_MESSAGE_ERROR);
    w->bar_label = gtk_label_new("");
    gtk_label_set_line_wrap(GTK_LABEL(w->bar_label), TRUE);
    gtk_label_set_xalign(GTK_LABEL(w->bar_label), 0.0f);
    gtk_container_add(GTK_CONTAINER(gtk_info_bar_get_content_area(GTK_INFO_BAR(w->bar))), w->bar_label);
    gtk_widget_show(w->bar_label);
    gtk_widget_set_no_show_all(w->bar, TRUE);
    gtk_box_pack_start(GTK_BOX(vbox), w->bar, FALSE, FALSE, 0);

    GtkWidget *paned = gtk_paned_new(GTK_ORIENTATION_HORIZONTAL);
    gtk_paned_pack1(GTK_PANED(paned), mgr_build_list(w), FALSE, FALSE);
    GtkWidget *right = gtk_box_new(GTK_ORIENTATION_VERTICAL, 6);
    gtk_container_set_border_width(GTK_CONTAINER(right), 12);
    w->preview = gtk_image_new();
    gtk_widget_set_halign(w->preview, GTK_ALIGN_START);
    gtk_widget_set_size_request(w->preview, MGR_PREVIEW_W, -1);
    gtk_box_pack_start(GTK_BOX(right), w->preview, FALSE, FALSE, 0);
    w->details = gtk_box_new(GTK_ORIENTATION_VERTICAL, 2);
    gtk_box_pack_start(GTK_BOX(right), w->details, FALSE, FALSE, 0);
    GtkWidget *sw = gtk_scrolled_window_new(NULL, NULL);
    gtk_scrolled_window_set_policy(GTK_SCROLLED_WINDOW(sw), GTK_POLICY_NEVER, GTK_POLICY_AUTOMATIC);
    gtk_container_add(GTK_CONTAINER(sw), right);
    gtk_paned_pack2(GTK_PANED(paned), sw, TRUE, FALSE);
    gtk_box_pack_start(GTK_BOX(vbox), paned, TRUE, TRUE, 0);

    mgr_details_update(w, true);
    mgr_actions_update(w);
    mgr_model_listen(app->model, mgr_on_model, w);
    gtk_widget_show_all(GTK_WIDGET(w->win));
    mgr_model_start(app->model);
    return w->win;
}
