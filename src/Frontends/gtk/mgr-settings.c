/* mgr-settings.c - the settings dialog of a machine: its pages (all but storage), inline checks, list editors and the save as one mach_edit transaction. */

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mgr-settings.h"
#include "vireo/err.h"

static const char *const g_page_names[MGR_PG_COUNT] = {
    "General", "System", "Display", "Storage", "Audio", "Network", "USB", "Shared Folders",
};

/* The execution engines as vireo-vm --exec spells them, and as people read them. */
static const char *const g_exec_ids[] = {"auto", "kvm", "soft", "interp"};
static const char *const g_exec_labels[] = {"Automatic", "KVM", "Software CPU", "Interpreter"};

/* ---- Shared pieces ------------------------------------------------------------------------------------ */

void mgr_set_row(GtkWidget *grid, int *row, const char *label, GtkWidget *w)
{
    GtkWidget *l = gtk_label_new(label);
    gtk_label_set_xalign(GTK_LABEL(l), 0.0f);
    gtk_grid_attach(GTK_GRID(grid), l, 0, *row, 1, 1);
    gtk_widget_set_hexpand(w, TRUE);
    gtk_grid_attach(GTK_GRID(grid), w, 1, *row, 1, 1);
    /* A box holds the field and a note beside it: the caller names the field itself. */
    if (!GTK_IS_BOX(w))
        mgr_a11y_name(w, label, NULL);
    (*row)++;
}

void mgr_set_name_tabs(GtkWidget *notebook)
{
    AtkObject *nb = gtk_widget_get_accessible(notebook);
    int n = gtk_notebook_get_n_pages(GTK_NOTEBOOK(notebook));
    for (int i = 0; i < n && nb && i < atk_object_get_n_accessible_children(nb); i++) {
        GtkWidget *page = gtk_notebook_get_nth_page(GTK_NOTEBOOK(notebook), i);
        const char *text = gtk_notebook_get_menu_label_text(GTK_NOTEBOOK(notebook), page);
        AtkObject *tab = atk_object_ref_accessible_child(nb, i);
        if (tab && text)
            atk_object_set_name(tab, text);
        if (tab)
            g_object_unref(tab);
    }
}

/* The inline error of a field, under its row. */
void mgr_set_error_row(struct mgr_settings *s, GtkWidget *grid, int *row, enum mgr_set_field_id id,
                              const char *field, enum mgr_set_page page)
{
    GtkWidget *e = mgr_field_error_new(field);
    gtk_grid_attach(GTK_GRID(grid), e, 1, *row, 2, 1);
    (*row)++;
    s->fields[id].error = e;
    s->fields[id].page = page;
}

void mgr_set_update_ok(struct mgr_settings *s)
{
    if (s->destroyed)
        return;
    bool bad[MGR_PG_COUNT] = {0}, any = false;
    for (int i = 0; i < MGR_F_COUNT; i++) {
        if (s->fields[i].invalid) {
            bad[s->fields[i].page] = true;
            any = true;
        }
    }
    /* The icon shows it; the page tab's accessible description says it (the tab's children are the page). */
    AtkObject *nb = s->notebook ? gtk_widget_get_accessible(s->notebook) : NULL;
    for (int p = 0; p < MGR_PG_COUNT; p++) {
        gtk_widget_set_visible(s->tab_icon[p], bad[p]);
        AtkObject *tab = NULL;
        if (nb && p < atk_object_get_n_accessible_children(nb))
            tab = atk_object_ref_accessible_child(nb, p);
        if (tab) {
            atk_object_set_description(tab, bad[p] ? "has errors" : "");
            g_object_unref(tab);
        }
    }
    gtk_widget_set_sensitive(s->ok, !any && s->jobs == 0);
}

void mgr_set_invalid(struct mgr_settings *s, enum mgr_set_field_id id, const char *why)
{
    if (s->destroyed)
        return;
    s->fields[id].invalid = why && *why;
    if (s->fields[id].error)
        mgr_field_error_set(s->fields[id].error, why);
    if (s->ok)
        mgr_set_update_ok(s);
}

int mgr_set_replace(char **field, const char *v)
{
    char *copy = v && *v ? strdup(v) : NULL;
    if (v && *v && !copy)
        return VERR_NO_MEMORY;
    free(*field);
    *field = copy;
    return 0;
}

/* ---- Bound widgets: each writes its value straight into the private copy ------------------------------ */

static void mgr_set_check_toggled(GtkToggleButton *b, gpointer target)
{
    *(bool *)target = gtk_toggle_button_get_active(b);
}

GtkWidget *mgr_set_check(const char *label, bool *target)
{
    GtkWidget *c = gtk_check_button_new_with_label(label);
    gtk_toggle_button_set_active(GTK_TOGGLE_BUTTON(c), *target);
    g_signal_connect(c, "toggled", G_CALLBACK(mgr_set_check_toggled), target);
    return c;
}

/* A combo of labels whose entries stand for values[i] of an enum field (unsigned-sized, as gcc makes them). */
struct mgr_set_enum {
    unsigned *target;
    const unsigned *values;
    size_t count;
};

static void mgr_set_enum_changed(GtkComboBox *c, gpointer opaque)
{
    struct mgr_set_enum *e = opaque;
    int i = gtk_combo_box_get_active(c);
    if (i >= 0 && (size_t)i < e->count)
        *e->target = e->values[i];
}

GtkWidget *mgr_set_enum_combo(const char *const *labels, const unsigned *values, size_t count, void *target)
{
    GtkWidget *c = gtk_combo_box_text_new();
    struct mgr_set_enum *e = g_new0(struct mgr_set_enum, 1);
    e->target = target;
    e->values = values;
    e->count = count;
    for (size_t i = 0; i < count; i++) {
        gtk_combo_box_text_append_text(GTK_COMBO_BOX_TEXT(c), labels[i]);
        if (values[i] == *e->target)
            gtk_combo_box_set_active(GTK_COMBO_BOX(c), (int)i);
    }
    g_signal_connect_data(c, "changed", G_CALLBACK(mgr_set_enum_changed), e, (GClosureNotify)(void (*)(void))g_free, 0);
    return c;
}

GtkWidget *mgr_set_spin(double lo, double hi, double value)
{
    GtkWidget *sp = gtk_spin_button_new_with_range(lo, hi, 1);
    gtk_spin_button_set_value(GTK_SPIN_BUTTON(sp), value);
    gtk_spin_button_set_numeric(GTK_SPIN_BUTTON(sp), TRUE);
    /* Typed text counts at once (not only on Enter or leaving the field), so the inline check follows it. */
    gtk_spin_button_set_update_policy(GTK_SPIN_BUTTON(sp), GTK_UPDATE_IF_VALID);
    return sp;
}

unsigned mgr_set_spin_value(GtkWidget *sp)
{
    double v = gtk_spin_button_get_value(GTK_SPIN_BUTTON(sp));
    return v < 0 ? 0 : (unsigned)v;
}

/* A widget that shows only while another is sensitive would be overkill: dependent fields follow a check box. */
static void mgr_set_follow(GtkToggleButton *b, gpointer w)
{
    gtk_widget_set_sensitive(GTK_WIDGET(w), gtk_toggle_button_get_active(b));
}

void mgr_set_depends(GtkWidget *check, GtkWidget *w)
{
    gtk_widget_set_sensitive(w, gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(check)));
    g_signal_connect(check, "toggled", G_CALLBACK(mgr_set_follow), w);
}

/* ---- General ---------------------------------------------------------------------------------------- */

static void mgr_set_name_changed(GtkEditable *e, gpointer opaque)
{
    struct mgr_settings *s = opaque;
    const char *name = gtk_entry_get_text(GTK_ENTRY(e));
    char why[MGR_WHY_MAX] = "";
    bool ok = mgr_check_rename(name, &s->m->uuid, why);
    if (ok)
        mgr_set_replace(&s->m->name, name);
    mgr_set_invalid(s, MGR_F_NAME, ok ? NULL : why);
}

static void mgr_set_ostype_changed(GtkComboBox *c, gpointer opaque)
{
    struct mgr_settings *s = opaque;
    GtkTreeIter it;
    if (!gtk_combo_box_get_active_iter(c, &it))
        return;
    char *id = NULL;
    gtk_tree_model_get(gtk_combo_box_get_model(c), &it, 0, &id, -1);
    if (id)
        mgr_set_replace(&s->m->ostype, id);
    g_free(id);
}

static void mgr_set_desc_changed(GtkTextBuffer *b, gpointer opaque)
{
    struct mgr_settings *s = opaque;
    GtkTextIter a, z;
    gtk_text_buffer_get_bounds(b, &a, &z);
    char *t = gtk_text_buffer_get_text(b, &a, &z, FALSE);
    mgr_set_replace(&s->m->description, t);
    g_free(t);
}

/* OS types grouped by family: the families are submenus of the combo (the order of the presets file). */
static GtkWidget *mgr_set_ostype_combo(struct mgr_settings *s)
{
    const struct cfg_ostypes *types = s->app->ostypes;
    GtkTreeStore *st = gtk_tree_store_new(2, G_TYPE_STRING, G_TYPE_STRING);
    GtkTreeIter fam, it, active;
    bool have_active = false;
    for (size_t i = 0; types && i < types->count; i++) {
        const struct cfg_ostype *t = &types->types[i];
        const char *family = t->family ? t->family : "Other";
        bool seen = false;
        for (size_t j = 0; j < i; j++)
            seen |= !strcmp(types->types[j].family ? types->types[j].family : "Other", family);
        if (seen)
            continue;
        gtk_tree_store_append(st, &fam, NULL);
        gtk_tree_store_set(st, &fam, 0, NULL, 1, family, -1);
        for (size_t j = i; j < types->count; j++) {
            const struct cfg_ostype *u = &types->types[j];
            if (strcmp(u->family ? u->family : "Other", family))
                continue;
            gtk_tree_store_append(st, &it, &fam);
            gtk_tree_store_set(st, &it, 0, u->id, 1, u->description ? u->description : u->id, -1);
            if (s->m->ostype && !g_ascii_strcasecmp(s->m->ostype, u->id)) {
                active = it;
                have_active = true;
            }
        }
    }
    GtkWidget *c = gtk_combo_box_new_with_model(GTK_TREE_MODEL(st));
    g_object_unref(st);
    GtkCellRenderer *r = gtk_cell_renderer_text_new();
    gtk_cell_layout_pack_start(GTK_CELL_LAYOUT(c), r, TRUE);
    gtk_cell_layout_set_attributes(GTK_CELL_LAYOUT(c), r, "text", 1, NULL);
    if (have_active)
        gtk_combo_box_set_active_iter(GTK_COMBO_BOX(c), &active);
    g_signal_connect(c, "changed", G_CALLBACK(mgr_set_ostype_changed), s);
    return c;
}

static GtkWidget *mgr_set_general_page(struct mgr_settings *s)
{
    GtkWidget *g = mgr_form_grid();
    int row = 0;
    GtkWidget *name = gtk_entry_new();
    gtk_entry_set_text(GTK_ENTRY(name), s->m->name);
    g_signal_connect(name, "changed", G_CALLBACK(mgr_set_name_changed), s);
    mgr_set_row(g, &row, "Name", name);
    mgr_set_error_row(s, g, &row, MGR_F_NAME, "Name", MGR_PG_GENERAL);
    GtkWidget *type = mgr_set_ostype_combo(s);
    mgr_set_row(g, &row, "Type", type);

    GtkWidget *tv = gtk_text_view_new();
    gtk_text_view_set_wrap_mode(GTK_TEXT_VIEW(tv), GTK_WRAP_WORD_CHAR);
    GtkTextBuffer *b = gtk_text_view_get_buffer(GTK_TEXT_VIEW(tv));
    gtk_text_buffer_set_text(b, s->m->description ? s->m->description : "", -1);
    g_signal_connect(b, "changed", G_CALLBACK(mgr_set_desc_changed), s);
    GtkWidget *sw = gtk_scrolled_window_new(NULL, NULL);
    gtk_scrolled_window_set_shadow_type(GTK_SCROLLED_WINDOW(sw), GTK_SHADOW_IN);
    gtk_widget_set_size_request(sw, -1, 120);
    gtk_widget_set_vexpand(sw, TRUE);
    gtk_container_add(GTK_CONTAINER(sw), tv);
    GtkWidget *l = gtk_label_new("Description");
    gtk_label_set_xalign(GTK_LABEL(l), 0.0f);
    gtk_label_set_yalign(GTK_LABEL(l), 0.0f);
    gtk_grid_attach(GTK_GRID(g), l, 0, row, 1, 1);
    gtk_grid_attach(GTK_GRID(g), sw, 1, row, 1, 1);
    mgr_a11y_name(tv, "Description", NULL);
    row++;
    if (s->running) {
        /* A running machine's file belongs to its process for everything but what people read about it. */
        gtk_widget_set_sensitive(name, FALSE);
        gtk_widget_set_sensitive(type, FALSE);
    }
    return g;
}

/* ---- System ----------------------------------------------------------------------------------------- */

struct mgr_set_sys {
    GtkWidget *memory, *cpus;
};

static void mgr_set_memory_changed(GtkSpinButton *sp, gpointer opaque)
{
    struct mgr_settings *s = opaque;
    uint64_t mib = (uint64_t)gtk_spin_button_get_value(sp);
    char why[MGR_WHY_MAX] = "";
    bool ok = mgr_check_memory(mib, mgr_host_memory_mib(), why);
    if (ok)
        s->m->hw.memory_mib = mib;
    mgr_set_invalid(s, MGR_F_MEMORY, ok ? NULL : why);
}

static void mgr_set_cpus_changed(GtkSpinButton *sp, gpointer opaque)
{
    struct mgr_settings *s = opaque;
    unsigned n = mgr_set_spin_value(GTK_WIDGET(sp));
    char why[MGR_WHY_MAX] = "";
    bool ok = mgr_check_cpus(n, mgr_host_cpus(), why);
    if (ok)
        s->m->hw.cpus = n;
    mgr_set_invalid(s, MGR_F_CPUS, ok ? NULL : why);
}

static void mgr_set_exec_changed(GtkComboBox *c, gpointer opaque)
{
    struct mgr_settings *s = opaque;
    int i = gtk_combo_box_get_active(c);
    if (i >= 0)
        s->exec = i;
}

static GtkWidget *mgr_set_with_note(GtkWidget *w, const char *text)
{
    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 12);
    gtk_box_pack_start(GTK_BOX(box), w, TRUE, TRUE, 0);
    GtkWidget *l = gtk_label_new(text);
    gtk_style_context_add_class(gtk_widget_get_style_context(l), "dim-label");
    gtk_box_pack_start(GTK_BOX(box), l, FALSE, FALSE, 0);
    return box;
}

static GtkWidget *mgr_set_system_page(struct mgr_settings *s)
{
    struct cfg_hardware *hw = &s->m->hw;
    GtkWidget *g = mgr_form_grid();
    int row = 0;
    char text[128];

    /* Memory and processors accept what people may type (the spin does not clamp to the host) so that the
     * inline check can say why a value does not fit. */
    GtkWidget *mem = mgr_set_spin(0, 1024 * 1024, (double)hw->memory_mib);
    g_signal_connect(mem, "value-changed", G_CALLBACK(mgr_set_memory_changed), s);
    snprintf(text, sizeof(text), "of %" PRIu64 " MiB on this host", mgr_host_memory_mib());
    mgr_set_row(g, &row, "Memory (MiB)", mgr_set_with_note(mem, text));
    mgr_a11y_name(mem, "Memory (MiB)", NULL);
    mgr_set_error_row(s, g, &row, MGR_F_MEMORY, "Memory (MiB)", MGR_PG_SYSTEM);

    GtkWidget *cpus = mgr_set_spin(0, 1024, hw->cpus);
    g_signal_connect(cpus, "value-changed", G_CALLBACK(mgr_set_cpus_changed), s);
    snprintf(text, sizeof(text), "of %u on this host", mgr_host_cpus());
    mgr_set_row(g, &row, "Processors", mgr_set_with_note(cpus, text));
    mgr_a11y_name(cpus, "Processors", NULL);
    mgr_set_error_row(s, g, &row, MGR_F_CPUS, "Processors", MGR_PG_SYSTEM);

    static const char *const fw_l[] = {"BIOS", "UEFI"};
    static const unsigned fw_v[] = {CFG_FW_BIOS, CFG_FW_EFI};
    mgr_set_row(g, &row, "Firmware", mgr_set_enum_combo(fw_l, fw_v, 2, &hw->firmware));
    static const char *const cs_l[] = {"PIIX3", "ICH9"};
    static const unsigned cs_v[] = {CFG_CHIPSET_PIIX3, CFG_CHIPSET_ICH9};
    mgr_set_row(g, &row, "Chipset", mgr_set_enum_combo(cs_l, cs_v, 2, &hw->chipset));
    GtkWidget *n = mgr_note("Vireo emulates the PIIX3 chipset only: a machine set to ICH9 runs with a PIIX3 in "
                                "this version.");
    gtk_style_context_add_class(gtk_widget_get_style_context(n), "dim-label");
    gtk_grid_attach(GTK_GRID(g), n, 1, row++, 1, 1);

    static const char *const boot_l[] = {"Floppy", "Optical", "Hard Disk", "Network", "None"};
    static const unsigned boot_v[] = {CFG_BOOT_FLOPPY, CFG_BOOT_DVD, CFG_BOOT_DISK, CFG_BOOT_NET, CFG_BOOT_NONE};
    for (int i = 0; i < CFG_BOOT_SLOTS; i++) {
        char label[32];
        snprintf(label, sizeof(label), "Boot device %d", i + 1);
        mgr_set_row(g, &row, label, mgr_set_enum_combo(boot_l, boot_v, 5, &hw->boot[i]));
    }
    gtk_grid_attach(GTK_GRID(g), mgr_set_check("I/O APIC", &hw->ioapic), 1, row++, 1, 1);
    gtk_grid_attach(GTK_GRID(g), mgr_set_check("HPET", &hw->hpet), 1, row++, 1, 1);
    gtk_grid_attach(GTK_GRID(g), mgr_set_check("Hardware clock in UTC", &hw->rtc_utc), 1, row++, 1, 1);
    static const char *const tpm_l[] = {"None", "2.0"};
    static const unsigned tpm_v[] = {CFG_TPM_NONE, CFG_TPM_V2_0};
    mgr_set_row(g, &row, "TPM", mgr_set_enum_combo(tpm_l, tpm_v, 2, &hw->tpm));
    GtkWidget *ex = gtk_combo_box_text_new();
    for (size_t i = 0; i < RT_ARRAY_SIZE(g_exec_labels); i++)
        gtk_combo_box_text_append_text(GTK_COMBO_BOX_TEXT(ex), g_exec_labels[i]);
    gtk_combo_box_set_active(GTK_COMBO_BOX(ex), s->exec);
    g_signal_connect(ex, "changed", G_CALLBACK(mgr_set_exec_changed), s);
    mgr_set_row(g, &row, "Execution engine", ex);
    return g;
}

/* ---- Display ---------------------------------------------------------------------------------------- */

static void mgr_set_vram_changed(GtkSpinButton *sp, gpointer opaque)
{
    struct mgr_settings *s = opaque;
    unsigned v = mgr_set_spin_value(GTK_WIDGET(sp));
    bool ok = v >= 1 && v <= 256;
    if (ok)
        s->m->hw.display.vram_mib = v;
    mgr_set_invalid(s, MGR_F_VRAM, ok ? NULL : "Video memory must be from 1 to 256 MiB.");
}

static void mgr_set_port_changed(GtkSpinButton *sp, gpointer opaque)
{
    struct mgr_settings *s = opaque;
    enum mgr_set_field_id id = (enum mgr_set_field_id)GPOINTER_TO_INT(g_object_get_data(G_OBJECT(sp), "field"));
    unsigned v = mgr_set_spin_value(GTK_WIDGET(sp));
    char why[MGR_WHY_MAX] = "";
    bool ok = mgr_check_port(v, why);
    if (ok)
        *(id == MGR_F_VNC_PORT ? &s->m->hw.remote.vnc_port : &s->m->hw.remote.rdp_port) = (uint16_t)v;
    mgr_set_invalid(s, id, ok ? NULL : why);
}

static void mgr_set_address_changed(GtkEditable *e, gpointer opaque)
{
    struct mgr_settings *s = opaque;
    const char *a = gtk_entry_get_text(GTK_ENTRY(e));
    unsigned char buf[16];
    bool ok = !*a || inet_pton(AF_INET, a, buf) == 1 || inet_pton(AF_INET6, a, buf) == 1;
    if (ok)
        mgr_set_replace(&s->m->hw.remote.address, a);
    mgr_set_invalid(s, MGR_F_ADDRESS, ok ? NULL
                    : "The listen address must be an IP address of this host (such as 127.0.0.1 or 0.0.0.0), or "
                      "empty for 127.0.0.1.");
}

static void mgr_set_password_changed(GtkEditable *e, gpointer opaque)
{
    struct mgr_settings *s = opaque;
    const char *p = gtk_entry_get_text(GTK_ENTRY(e));
    mgr_set_replace(&s->m->hw.remote.password, p);
    s->m->hw.remote.auth = *p ? CFG_AUTH_PASSWORD : CFG_AUTH_NONE;
}

static void mgr_set_monitors_changed(GtkSpinButton *sp, gpointer opaque)
{
    (void)opaque;
    unsigned *target = g_object_get_data(G_OBJECT(sp), "target");
    if (target)
        *target = mgr_set_spin_value(GTK_WIDGET(sp));
}

static GtkWidget *mgr_set_display_page(struct mgr_settings *s)
{
    struct cfg_display *d = &s->m->hw.display;
    struct cfg_remote *r = &s->m->hw.remote;
    GtkWidget *g = mgr_form_grid();
    int row = 0;
    static const char *const gfx_l[] = {"VBE (standard VGA)", "VirtIO GPU", "None"};
    static const unsigned gfx_v[] = {CFG_GFX_VBE, CFG_GFX_VIRTIO, CFG_GFX_NONE};
    mgr_set_row(g, &row, "Graphics controller", mgr_set_enum_combo(gfx_l, gfx_v, 3, &d->adapter));
    GtkWidget *vram = mgr_set_spin(0, 1024, d->vram_mib);
    g_signal_connect(vram, "value-changed", G_CALLBACK(mgr_set_vram_changed), s);
    mgr_set_row(g, &row, "Video memory (MiB)", vram);
    mgr_set_error_row(s, g, &row, MGR_F_VRAM, "Video memory (MiB)", MGR_PG_DISPLAY);
    GtkWidget *mon = mgr_set_spin(1, 8, d->monitors ? d->monitors : 1);
    g_object_set_data(G_OBJECT(mon), "target", &d->monitors);
    g_signal_connect(mon, "value-changed", G_CALLBACK(mgr_set_monitors_changed), NULL);
    mgr_set_row(g, &row, "Monitors", mon);
    GtkWidget *n = mgr_note("A VirtIO GPU is not available in this version: such a machine gets the standard "
                                "VGA, with one screen however many monitors are set.");
    gtk_style_context_add_class(gtk_widget_get_style_context(n), "dim-label");
    gtk_grid_attach(GTK_GRID(g), n, 1, row++, 1, 1);

    GtkWidget *h = gtk_label_new(NULL);
    gtk_label_set_markup(GTK_LABEL(h), "<b>Remote display</b>");
    gtk_label_set_xalign(GTK_LABEL(h), 0.0f);
    gtk_widget_set_margin_top(h, 12);
    gtk_grid_attach(GTK_GRID(g), h, 0, row++, 2, 1);
    GtkWidget *vnc = mgr_set_check("Enable VNC", &r->vnc_enabled);
    gtk_grid_attach(GTK_GRID(g), vnc, 1, row++, 1, 1);
    GtkWidget *vport = mgr_set_spin(0, 65535, r->vnc_port);
    g_object_set_data(G_OBJECT(vport), "field", GINT_TO_POINTER(MGR_F_VNC_PORT));
    g_signal_connect(vport, "value-changed", G_CALLBACK(mgr_set_port_changed), s);
    mgr_set_row(g, &row, "VNC port", mgr_set_with_note(vport, "0: the first free port from 5900"));
    mgr_a11y_name(vport, "VNC port", NULL);
    mgr_set_depends(vnc, vport);
    mgr_set_error_row(s, g, &row, MGR_F_VNC_PORT, "VNC port", MGR_PG_DISPLAY);
    GtkWidget *rdp = mgr_set_check("Enable RDP", &r->rdp_enabled);
    gtk_grid_attach(GTK_GRID(g), rdp, 1, row++, 1, 1);
    GtkWidget *rport = mgr_set_spin(0, 65535, r->rdp_port);
    g_object_set_data(G_OBJECT(rport), "field", GINT_TO_POINTER(MGR_F_RDP_PORT));
    g_signal_connect(rport, "value-changed", G_CALLBACK(mgr_set_port_changed), s);
    mgr_set_row(g, &row, "RDP port", mgr_set_with_note(rport, "0: the first free port from 3389"));
    mgr_a11y_name(rport, "RDP port", NULL);
    mgr_set_depends(rdp, rport);
    mgr_set_error_row(s, g, &row, MGR_F_RDP_PORT, "RDP port", MGR_PG_DISPLAY);
    GtkWidget *addr = gtk_entry_new();
    gtk_entry_set_text(GTK_ENTRY(addr), r->address ? r->address : "");
    g_signal_connect(addr, "changed", G_CALLBACK(mgr_set_address_changed), s);
    mgr_set_row(g, &row, "Listen address", mgr_set_with_note(addr, "empty: 127.0.0.1, this computer only"));
    mgr_a11y_name(addr, "Listen address", NULL);
    mgr_set_error_row(s, g, &row, MGR_F_ADDRESS, "Listen address", MGR_PG_DISPLAY);
    GtkWidget *pw = gtk_entry_new();
    gtk_entry_set_visibility(GTK_ENTRY(pw), FALSE);
    gtk_entry_set_input_purpose(GTK_ENTRY(pw), GTK_INPUT_PURPOSE_PASSWORD);
    gtk_entry_set_text(GTK_ENTRY(pw), r->auth == CFG_AUTH_PASSWORD && r->password ? r->password : "");
    g_signal_connect(pw, "changed", G_CALLBACK(mgr_set_password_changed), s);
    mgr_set_row(g, &row, "Password", pw);
    return g;
}

/* ---- Saving ------------------------------------------------------------------------------------------- */

/* Inside mach_edit's transaction: the edited fields onto the freshly loaded machine, so that what others
 * changed meanwhile in fields this dialog does not show (extra data, state, snapshots) survives. */
static int mgr_set_apply(void *opaque, struct cfg_machine *m, const char *settings_path, struct cfg_error *err)
{
    (void)settings_path;
    (void)err;
    struct mgr_settings *s = opaque;
    int rc = mgr_set_replace(&m->description, s->m->description);
    if (rc < 0 || s->running)
        return rc;
    if ((rc = mgr_set_replace(&m->name, s->m->name)) < 0 || (rc = mgr_set_replace(&m->ostype, s->m->ostype)) < 0)
        return rc;
    if (s->hw_locked)
        return 0;
    struct cfg_hardware hw;
    if ((rc = cfg_hardware_copy(&hw, &s->m->hw)) < 0)
        return rc;
    cfg_hardware_free(&m->hw);
    m->hw = hw;
    return cfg_extra_set(&m->extra, &m->extra_count, "Vireo/Exec", s->exec ? g_exec_ids[s->exec] : NULL);
}

static void mgr_set_free(struct mgr_settings *s)
{
    cfg_machine_free(s->m);
    free(s->path);
    g_free(s->loaded_name);
    for (size_t i = 0; i < RT_ARRAY_SIZE(s->owned); i++)
        g_free(s->owned[i]);
    free(s->created);
    g_free(s);
}

static bool mgr_set_save(struct mgr_settings *s)
{
    struct cfg_error err = {{0}};
    int rc = mach_edit(s->uuid_str, s->running, mgr_set_apply, s, &err);
    if (rc < 0) {
        char what[300];
        snprintf(what, sizeof(what), "Cannot save the settings of '%s'", s->m->name);
        mgr_error(GTK_WINDOW(s->dialog), what, rc, err.msg);
        return false;
    }
    /* mach_edit makes the UEFI store of a machine switched to EFI but only logs a failure: say it here. */
    if (!s->hw_locked && s->m->hw.firmware == CFG_FW_EFI) {
        char *nv = mach_nvram_path(s->path);
        struct cfg_error nerr = {{0}};
        bool created = false;
        rc = nv ? mach_nvram_create(nv, NULL, &created, &nerr) : VERR_NO_MEMORY;
        if (rc < 0)
            mgr_error(GTK_WINDOW(s->dialog), "The settings are saved, but the UEFI variable store could not be made "
                      "(the machine makes it when it starts)", rc, nerr.msg);
        free(nv);
    }
    return true;
}

static gboolean mgr_set_free_idle(gpointer p)
{
    mgr_set_free(p);
    return G_SOURCE_REMOVE;
}

/* From an idle callback: destroying the dialog's widgets still emits their signals ("changed" of entries),
 * whose handlers look at s. */
void mgr_set_release(struct mgr_settings *s)
{
    if (s->destroyed && !s->finishing && !s->jobs && !s->freeing) {
        s->freeing = true;
        g_idle_add(mgr_set_free_idle, s);
    }
}

/* The dialog goes (OK, Cancel, or its parent window closing): disks made here and not kept are deleted. */
static void mgr_set_destroyed(GtkWidget *w, gpointer opaque)
{
    (void)w;
    struct mgr_settings *s = opaque;
    s->destroyed = true;
    /* GTK's page tab accessibles look their tab up once more after the page is gone when an accessibility
     * bridge listens (a critical each); without tabs shown they do not. */
    gtk_notebook_set_show_tabs(GTK_NOTEBOOK(s->notebook), FALSE);
    if (s->net_notebook)
        gtk_notebook_set_show_tabs(GTK_NOTEBOOK(s->net_notebook), FALSE);
    mgr_set_storage_cleanup(s, false);
    mgr_set_release(s);
}

static void mgr_set_finish(struct mgr_settings *s, gint response)
{
    if (s->jobs)
        return;
    if (response == GTK_RESPONSE_OK) {
        if (!mgr_set_save(s))
            return;
        mgr_set_storage_cleanup(s, true);
        mgr_app_refresh(s->app, &s->m->uuid);
    } else {
        mgr_set_storage_cleanup(s, false);
    }
    /* mgr_set_destroyed frees s. */
    gtk_widget_destroy(s->dialog);
}

struct mgr_set_resp {
    struct mgr_settings *s;
    gint response;
};

static gboolean mgr_set_response_idle(gpointer p)
{
    struct mgr_set_resp *r = p;
    r->s->finishing = false;
    if (r->s->destroyed)
        mgr_set_release(r->s);
    else
        mgr_set_finish(r->s, r->response);
    g_free(r);
    return G_SOURCE_REMOVE;
}

/* Saving may show an error dialog: from an idle callback, for the reason mgr_on_click gives. */
static void mgr_set_response(GtkDialog *d, gint response, gpointer opaque)
{
    (void)d;
    struct mgr_settings *s = opaque;
    if (s->finishing)
        return;
    s->finishing = true;
    struct mgr_set_resp *r = g_new(struct mgr_set_resp, 1);
    r->s = s;
    r->response = response;
    g_idle_add(mgr_set_response_idle, r);
}

static gboolean mgr_set_delete(GtkWidget *w, GdkEvent *ev, gpointer opaque)
{
    (void)w;
    (void)ev;
    struct mgr_settings *s = opaque;
    if (!s->jobs)
        mgr_set_response(GTK_DIALOG(s->dialog), GTK_RESPONSE_CANCEL, s);
    return TRUE;
}

/* Values loaded from the file can be out of range for this host (a machine made on a bigger one): say so at once. */
static void mgr_set_initial_checks(struct mgr_settings *s)
{
    const struct cfg_hardware *hw = &s->m->hw;
    char why[MGR_WHY_MAX] = "";
    mgr_set_invalid(s, MGR_F_MEMORY, mgr_check_memory(hw->memory_mib, mgr_host_memory_mib(), why) ? NULL : why);
    mgr_set_invalid(s, MGR_F_CPUS, mgr_check_cpus(hw->cpus, mgr_host_cpus(), why) ? NULL : why);
    mgr_set_invalid(s, MGR_F_VNC_PORT, mgr_check_port(hw->remote.vnc_port, why) ? NULL : why);
    mgr_set_invalid(s, MGR_F_RDP_PORT, mgr_check_port(hw->remote.rdp_port, why) ? NULL : why);
}

/* ---- The dialog ----------------------------------------------------------------------------------------- */

static GtkWidget *mgr_set_tab(struct mgr_settings *s, enum mgr_set_page p)
{
    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 4);
    gtk_box_pack_start(GTK_BOX(box), gtk_label_new(g_page_names[p]), FALSE, FALSE, 0);
    /* The warning sits beside the label, so the tab's accessible name stays the page's name. */
    s->tab_icon[p] = gtk_image_new_from_icon_name("dialog-warning-symbolic", GTK_ICON_SIZE_MENU);
    gtk_widget_set_no_show_all(s->tab_icon[p], TRUE);
    gtk_box_pack_start(GTK_BOX(box), s->tab_icon[p], FALSE, FALSE, 0);
    gtk_widget_show_all(box);
    return box;
}

static GtkWidget *mgr_set_scrolled(GtkWidget *page)
{
    GtkWidget *sw = gtk_scrolled_window_new(NULL, NULL);
    gtk_scrolled_window_set_policy(GTK_SCROLLED_WINDOW(sw), GTK_POLICY_NEVER, GTK_POLICY_AUTOMATIC);
    gtk_scrolled_window_set_propagate_natural_height(GTK_SCROLLED_WINDOW(sw), TRUE);
    gtk_container_add(GTK_CONTAINER(sw), page);
    return sw;
}

void mgr_settings_run(struct mgr_app *app, GtkWindow *parent, const struct rt_uuid *uuid)
{
    struct mgr_settings *s = g_new0(struct mgr_settings, 1);
    s->app = app;
    rt_uuid_to_str(uuid, s->uuid_str);
    struct cfg_error err = {{0}};
    struct cfg_machine *loaded = NULL;
    int rc = mach_find(s->uuid_str, &s->path, &loaded, &err);
    if (rc >= 0)
        rc = cfg_machine_dup(loaded, &s->m);
    cfg_machine_free(loaded);
    if (rc < 0) {
        mgr_error(parent, "Cannot open the machine's settings", rc, err.msg);
        free(s->path);
        g_free(s);
        return;
    }
    s->loaded_name = g_strdup(s->m->name);
    s->running = mach_is_running(s->path) || s->m->state == CFG_STATE_RUNNING || s->m->state == CFG_STATE_PAUSED;
    s->hw_locked = s->running || s->m->state == CFG_STATE_SAVED;
    const char *exec = cfg_extra_get(s->m->extra, s->m->extra_count, "Vireo/Exec");
    for (size_t i = 0; exec && i < RT_ARRAY_SIZE(g_exec_ids); i++)
        if (!strcmp(exec, g_exec_ids[i]))
            s->exec = (int)i;

    char title[300];
    snprintf(title, sizeof(title), "%s - Settings", s->m->name);
    GtkWidget *ok;
    s->dialog = mgr_dialog_new(parent, title, "OK", &ok);
    gtk_window_set_default_size(GTK_WINDOW(s->dialog), 760, 600);
    GtkWidget *content = gtk_dialog_get_content_area(GTK_DIALOG(s->dialog));
    gtk_box_set_spacing(GTK_BOX(content), 6);

    if (s->hw_locked) {
        GtkWidget *bar = gtk_info_bar_new();
        gtk_info_bar_set_message_type(GTK_INFO_BAR(bar), GTK_MESSAGE_WARNING);
        const char *msg = s->running
                              ? "The machine is running: most settings can only be changed when it is powered off."
                              : "The machine is saved: most settings can only be changed when it is powered off "
                                "(start it and power it off, or discard its saved state).";
        GtkWidget *l = mgr_note(msg);
        mgr_a11y_name(l, msg, "banner");
        gtk_container_add(GTK_CONTAINER(gtk_info_bar_get_content_area(GTK_INFO_BAR(bar))), l);
        gtk_box_pack_start(GTK_BOX(content), bar, FALSE, FALSE, 0);
    }

    s->notebook = gtk_notebook_new();
    gtk_notebook_set_tab_pos(GTK_NOTEBOOK(s->notebook), GTK_POS_LEFT);
    gtk_notebook_set_scrollable(GTK_NOTEBOOK(s->notebook), TRUE);
    struct mgr_list *usb_list = mgr_set_list_new(), *sf_list = mgr_set_list_new();
    s->owned[CFG_MAX_NICS] = usb_list;
    s->owned[CFG_MAX_NICS + 1] = sf_list;
    GtkWidget *pages[MGR_PG_COUNT] = {
        mgr_set_general_page(s), mgr_set_system_page(s), mgr_set_display_page(s), mgr_set_storage_page(s),
        mgr_set_audio_page(s), mgr_set_network_page(s), mgr_set_usb_page(s, usb_list),
        mgr_set_shared_page(s, sf_list),
    };
    for (int p = 0; p < MGR_PG_COUNT; p++) {
        if (p != MGR_PG_GENERAL && s->hw_locked)
            gtk_widget_set_sensitive(pages[p], FALSE);
        GtkWidget *page = p == MGR_PG_STORAGE || p == MGR_PG_NETWORK ? pages[p] : mgr_set_scrolled(pages[p]);
        gtk_notebook_append_page(GTK_NOTEBOOK(s->notebook), page, mgr_set_tab(s, (enum mgr_set_page)p));
        gtk_notebook_set_menu_label_text(GTK_NOTEBOOK(s->notebook), page, g_page_names[p]);
    }
    mgr_set_name_tabs(s->notebook);
    gtk_box_pack_start(GTK_BOX(content), s->notebook, TRUE, TRUE, 0);
    s->ok = ok;
    /* Hardware that cannot change now is not judged either: the machine runs with it. */
    if (!s->hw_locked)
        mgr_set_initial_checks(s);
    mgr_set_update_ok(s);
    g_signal_connect(s->dialog, "response", G_CALLBACK(mgr_set_response), s);
    g_signal_connect(s->dialog, "delete-event", G_CALLBACK(mgr_set_delete), s);
    g_signal_connect(s->dialog, "destroy", G_CALLBACK(mgr_set_destroyed), s);
    gtk_widget_show_all(s->dialog);
    gtk_window_present(GTK_WINDOW(s->dialog));
}
