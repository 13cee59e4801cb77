/* mgr-settings-devices.c - the settings dialog's Audio, Network, USB and Shared Folders pages, with the port forward, USB filter and shared folder editors. */

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mgr-settings.h"
#include "vireo/err.h"

/* ---- A small form dialog for list entries (port forwards, USB filters, shared folders) -------------------- */

enum { MGR_FORM_MAX = 8 };
struct mgr_form;
typedef void mgr_form_check_fn(struct mgr_form *f, void *opaque);
struct mgr_form {
    GtkWidget *dialog, *ok, *grid;
    int rows, n;
    GtkWidget *w[MGR_FORM_MAX], *err[MGR_FORM_MAX];
    bool bad[MGR_FORM_MAX];
    mgr_form_check_fn *check;
    void *opaque;
};

static void mgr_form_changed(GtkWidget *w, gpointer opaque)
{
    (void)w;
    struct mgr_form *f = opaque;
    memset(f->bad, 0, sizeof(f->bad));
    f->check(f, f->opaque);
    bool any = false;
    for (int i = 0; i < f->n; i++) {
        any |= f->bad[i];
        if (!f->bad[i] && f->err[i])
            mgr_field_error_set(f->err[i], NULL);
    }
    gtk_widget_set_sensitive(f->ok, !any);
}

static void mgr_form_init(struct mgr_form *f, GtkWindow *parent, const char *title, mgr_form_check_fn *check,
                          void *opaque)
{
    memset(f, 0, sizeof(*f));
    f->dialog = mgr_dialog_new(parent, title, "OK", &f->ok);
    f->grid = mgr_form_grid();
    gtk_container_add(GTK_CONTAINER(gtk_dialog_get_content_area(GTK_DIALOG(f->dialog))), f->grid);
    f->check = check;
    f->opaque = opaque;
}

static int mgr_form_add(struct mgr_form *f, const char *label, GtkWidget *w)
{
    int i = f->n++;
    f->w[i] = w;
    if (GTK_IS_TOGGLE_BUTTON(w)) {
        gtk_grid_attach(GTK_GRID(f->grid), w, 1, f->rows++, 1, 1);
        g_signal_connect(w, "toggled", G_CALLBACK(mgr_form_changed), f);
        return i;
    }
    mgr_set_row(f->grid, &f->rows, label, w);
    f->err[i] = mgr_field_error_new(label);
    gtk_grid_attach(GTK_GRID(f->grid), f->err[i], 1, f->rows++, 1, 1);
    g_signal_connect(w, "changed", G_CALLBACK(mgr_form_changed), f);
    return i;
}

static int mgr_form_entry(struct mgr_form *f, const char *label, const char *text)
{
    GtkWidget *e = gtk_entry_new();
    gtk_entry_set_text(GTK_ENTRY(e), text ? text : "");
    gtk_entry_set_activates_default(GTK_ENTRY(e), TRUE);
    gtk_entry_set_width_chars(GTK_ENTRY(e), 32);
    return mgr_form_add(f, label, e);
}

static int mgr_form_check(struct mgr_form *f, const char *label, bool on)
{
    GtkWidget *c = gtk_check_button_new_with_label(label);
    gtk_toggle_button_set_active(GTK_TOGGLE_BUTTON(c), on);
    return mgr_form_add(f, label, c);
}

static int mgr_form_combo(struct mgr_form *f, const char *label, const char *const *items, int count, int active)
{
    GtkWidget *c = gtk_combo_box_text_new();
    for (int i = 0; i < count; i++)
        gtk_combo_box_text_append_text(GTK_COMBO_BOX_TEXT(c), items[i]);
    gtk_combo_box_set_active(GTK_COMBO_BOX(c), active);
    return mgr_form_add(f, label, c);
}

static const char *mgr_form_text(struct mgr_form *f, int i)
{
    return gtk_entry_get_text(GTK_ENTRY(f->w[i]));
}

static bool mgr_form_on(struct mgr_form *f, int i)
{
    return gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(f->w[i]));
}

static void mgr_form_error(struct mgr_form *f, int i, const char *why)
{
    f->bad[i] = why != NULL;
    if (f->err[i])
        mgr_field_error_set(f->err[i], why);
}

/* Runs the form: true when OK was pressed (the widgets stay readable until mgr_form_done). */
static bool mgr_form_run(struct mgr_form *f)
{
    mgr_form_changed(NULL, f);
    gtk_widget_show_all(f->dialog);
    return gtk_dialog_run(GTK_DIALOG(f->dialog)) == GTK_RESPONSE_OK;
}

static void mgr_form_done(struct mgr_form *f)
{
    gtk_widget_destroy(f->dialog);
}

/* A port number typed as text: 1-65535. */
static bool mgr_set_parse_port(const char *t, unsigned *out)
{
    char *end = NULL;
    unsigned long v = strtoul(t, &end, 10);
    if (!*t || *end || v < 1 || v > 65535)
        return false;
    *out = (unsigned)v;
    return true;
}

static bool mgr_set_is_ip(const char *t)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, t, buf) == 1 || inet_pton(AF_INET6, t, buf) == 1;
}

/* ---- A list with Add / Edit / Remove (the three list editors share it) ---------------------------------- */

struct mgr_list;
typedef void mgr_list_fill_fn(struct mgr_list *l);
/* index -1: add a new entry; returns true when something changed. */
typedef bool mgr_list_edit_fn(struct mgr_list *l, int index);
typedef void mgr_list_remove_fn(struct mgr_list *l, int index);
struct mgr_list {
    struct mgr_settings *s;
    GtkListStore *store;
    GtkWidget *view, *edit, *remove;
    mgr_list_fill_fn *fill;
    mgr_list_edit_fn *edit_fn;
    mgr_list_remove_fn *remove_fn;
    void *opaque;           /* the NIC of a port forward list */
    GtkWindow *parent;
};

struct mgr_list *mgr_set_list_new(void)
{
    return g_new0(struct mgr_list, 1);
}

static int mgr_list_selected(struct mgr_list *l)
{
    GtkTreeModel *model;
    GtkTreeIter it;
    if (!gtk_tree_selection_get_selected(gtk_tree_view_get_selection(GTK_TREE_VIEW(l->view)), &model, &it))
        return -1;
    GtkTreePath *p = gtk_tree_model_get_path(model, &it);
    int i = gtk_tree_path_get_indices(p)[0];
    gtk_tree_path_free(p);
    return i;
}

static void mgr_list_sel_changed(GtkTreeSelection *sel, gpointer opaque)
{
    (void)sel;
    struct mgr_list *l = opaque;
    if (l->s->destroyed)
        return;
    bool any = mgr_list_selected(l) >= 0;
    gtk_widget_set_sensitive(l->edit, any);
    gtk_widget_set_sensitive(l->remove, any);
}

static void mgr_list_refill(struct mgr_list *l)
{
    gtk_list_store_clear(l->store);
    l->fill(l);
    mgr_list_sel_changed(NULL, l);
}

static GtkWindow *mgr_list_window(struct mgr_list *l)
{
    return l->parent ? l->parent : GTK_WINDOW(l->s->dialog);
}

static void mgr_list_add_clicked(GtkButton *b, gpointer opaque)
{
    (void)b;
    struct mgr_list *l = opaque;
    if (l->edit_fn(l, -1))
        mgr_list_refill(l);
}

static void mgr_list_edit_clicked(GtkButton *b, gpointer opaque)
{
    (void)b;
    struct mgr_list *l = opaque;
    int i = mgr_list_selected(l);
    if (i >= 0 && l->edit_fn(l, i))
        mgr_list_refill(l);
}

static void mgr_list_row_activated(GtkTreeView *v, GtkTreePath *p, GtkTreeViewColumn *c, gpointer opaque)
{
    (void)v;
    (void)p;
    (void)c;
    struct mgr_list *l = opaque;
    gtk_button_clicked(GTK_BUTTON(l->edit));
}

static void mgr_list_remove_clicked(GtkButton *b, gpointer opaque)
{
    (void)b;
    struct mgr_list *l = opaque;
    int i = mgr_list_selected(l);
    if (i < 0)
        return;
    l->remove_fn(l, i);
    mgr_list_refill(l);
}

/* columns: titles of string columns; name: the list's accessible name. */
static GtkWidget *mgr_list_new(struct mgr_list *l, const char *name, const char *const *columns, int ncol,
                               const char *noun)
{
    GType types[8];
    for (int i = 0; i < ncol; i++)
        types[i] = G_TYPE_STRING;
    l->store = gtk_list_store_newv(ncol, types);
    l->view = gtk_tree_view_new_with_model(GTK_TREE_MODEL(l->store));
    g_object_unref(l->store);
    for (int i = 0; i < ncol; i++) {
        GtkTreeViewColumn *c = gtk_tree_view_column_new_with_attributes(columns[i], gtk_cell_renderer_text_new(),
                                                                        "text", i, NULL);
        gtk_tree_view_column_set_resizable(c, TRUE);
        gtk_tree_view_append_column(GTK_TREE_VIEW(l->view), c);
    }
    mgr_a11y_name(l->view, name, NULL);
    g_signal_connect(gtk_tree_view_get_selection(GTK_TREE_VIEW(l->view)), "changed",
                     G_CALLBACK(mgr_list_sel_changed), l);
    g_signal_connect(l->view, "row-activated", G_CALLBACK(mgr_list_row_activated), l);
    GtkWidget *sw = gtk_scrolled_window_new(NULL, NULL);
    gtk_scrolled_window_set_shadow_type(GTK_SCROLLED_WINDOW(sw), GTK_SHADOW_IN);
    gtk_widget_set_size_request(sw, 460, 140);
    gtk_widget_set_vexpand(sw, TRUE);
    gtk_container_add(GTK_CONTAINER(sw), l->view);
    GtkWidget *bb = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
    char label[64];
    snprintf(label, sizeof(label), "Add %s…", noun);
    GtkWidget *add = gtk_button_new_with_label(label);
    snprintf(label, sizeof(label), "Edit %s…", noun);
    l->edit = gtk_button_new_with_label(label);
    snprintf(label, sizeof(label), "Remove %s", noun);
    l->remove = gtk_button_new_with_label(label);
    mgr_on_click(add, mgr_list_add_clicked, l);
    mgr_on_click(l->edit, mgr_list_edit_clicked, l);
    g_signal_connect(l->remove, "clicked", G_CALLBACK(mgr_list_remove_clicked), l);
    gtk_box_pack_start(GTK_BOX(bb), add, FALSE, FALSE, 0);
    gtk_box_pack_start(GTK_BOX(bb), l->edit, FALSE, FALSE, 0);
    gtk_box_pack_start(GTK_BOX(bb), l->remove, FALSE, FALSE, 0);
    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 6);
    gtk_box_pack_start(GTK_BOX(box), sw, TRUE, TRUE, 0);
    gtk_box_pack_start(GTK_BOX(box), bb, FALSE, FALSE, 0);
    mgr_list_refill(l);
    return box;
}

/* ---- Network ---------------------------------------------------------------------------------------- */

struct mgr_set_nic {
    struct mgr_settings *s;
    unsigned index;
    GtkWidget *body, *name, *mac, *forwards;
    struct mgr_list pf;
};

static const char *const g_pf_cols[] = {"Name", "Protocol", "Host IP", "Host port", "Guest IP", "Guest port"};

static void mgr_set_pf_fill(struct mgr_list *l)
{
    struct cfg_nic *nic = l->opaque;
    for (size_t i = 0; i < nic->forward_count; i++) {
        const struct cfg_port_forward *pf = &nic->forwards[i];
        char hp[8], gp[8];
        snprintf(hp, sizeof(hp), "%u", pf->host_port);
        snprintf(gp, sizeof(gp), "%u", pf->guest_port);
        gtk_list_store_insert_with_values(l->store, NULL, -1, 0, pf->name, 1, pf->udp ? "UDP" : "TCP", 2,
                                          pf->host_ip ? pf->host_ip : "any", 3, hp, 4,
                                          pf->guest_ip ? pf->guest_ip : "the guest's address", 5, gp, -1);
    }
}

struct mgr_pf_form {
    struct cfg_nic *nic;
    int index;
    int name, proto, hip, hport, gip, gport;
};

static void mgr_set_pf_check(struct mgr_form *f, void *opaque)
{
    struct mgr_pf_form *p = opaque;
    const char *name = mgr_form_text(f, p->name);
    unsigned port;
    if (!*name)
        mgr_form_error(f, p->name, "The rule needs a name.");
    else if (strchr(name, ','))
        mgr_form_error(f, p->name, "The name cannot contain a comma.");
    else
        for (size_t i = 0; i < p->nic->forward_count; i++)
            if ((int)i != p->index && !strcmp(p->nic->forwards[i].name, name))
                mgr_form_error(f, p->name, "Another rule of this adapter has that name.");
    if (*mgr_form_text(f, p->hip) && !mgr_set_is_ip(mgr_form_text(f, p->hip)))
        mgr_form_error(f, p->hip, "The host IP must be an IP address, or empty for any.");
    if (*mgr_form_text(f, p->gip) && !mgr_set_is_ip(mgr_form_text(f, p->gip)))
        mgr_form_error(f, p->gip, "The guest IP must be an IP address, or empty for the guest's own.");
    if (!mgr_set_parse_port(mgr_form_text(f, p->hport), &port))
        mgr_form_error(f, p->hport, "The host port must be a number from 1 to 65535.");
    else {
        bool udp = gtk_combo_box_get_active(GTK_COMBO_BOX(f->w[p->proto])) == 1;
        for (size_t i = 0; i < p->nic->forward_count; i++) {
            const struct cfg_port_forward *o = &p->nic->forwards[i];
            if ((int)i != p->index && o->udp == udp && o->host_port == port)
                mgr_form_error(f, p->hport, "Another rule forwards this host port already.");
        }
    }
    if (!mgr_set_parse_port(mgr_form_text(f, p->gport), &port))
        mgr_form_error(f, p->gport, "The guest port must be a number from 1 to 65535.");
}

static bool mgr_set_pf_edit(struct mgr_list *l, int index)
{
    struct cfg_nic *nic = l->opaque;
    const struct cfg_port_forward *old = index >= 0 ? &nic->forwards[index] : NULL;
    struct mgr_pf_form p = {.nic = nic, .index = index};
    struct mgr_form f;
    char hp[8] = "", gp[8] = "";
    if (old) {
        snprintf(hp, sizeof(hp), "%u", old->host_port);
        snprintf(gp, sizeof(gp), "%u", old->guest_port);
    }
    mgr_form_init(&f, mgr_list_window(l), "Port Forwarding Rule", mgr_set_pf_check, &p);
    p.name = mgr_form_entry(&f, "Rule name", old ? old->name : "");
    static const char *const protos[] = {"TCP", "UDP"};
    p.proto = mgr_form_combo(&f, "Protocol", protos, 2, old && old->udp ? 1 : 0);
    p.hip = mgr_form_entry(&f, "Host IP", old ? old->host_ip : "");
    p.hport = mgr_form_entry(&f, "Host port", hp);
    p.gip = mgr_form_entry(&f, "Guest IP", old ? old->guest_ip : "");
    p.gport = mgr_form_entry(&f, "Guest port", gp);
    bool changed = false;
    if (mgr_form_run(&f)) {
        if (index < 0) {
            struct cfg_port_forward *arr = realloc(nic->forwards, (nic->forward_count + 1) * sizeof(*arr));
            if (arr) {
                nic->forwards = arr;
                index = (int)nic->forward_count++;
                memset(&arr[index], 0, sizeof(arr[index]));
            }
        }
        if (index >= 0) {
            struct cfg_port_forward *pf = &nic->forwards[index];
            unsigned port = 0;
            mgr_set_replace(&pf->name, mgr_form_text(&f, p.name));
            pf->udp = gtk_combo_box_get_active(GTK_COMBO_BOX(f.w[p.proto])) == 1;
            mgr_set_replace(&pf->host_ip, mgr_form_text(&f, p.hip));
            mgr_set_replace(&pf->guest_ip, mgr_form_text(&f, p.gip));
            mgr_set_parse_port(mgr_form_text(&f, p.hport), &port);
            pf->host_port = (uint16_t)port;
            mgr_set_parse_port(mgr_form_text(&f, p.gport), &port);
            pf->guest_port = (uint16_t)port;
            changed = true;
        }
    }
    mgr_form_done(&f);
    return changed;
}

static void mgr_set_pf_remove(struct mgr_list *l, int index)
{
    struct cfg_nic *nic = l->opaque;
    struct cfg_port_forward *pf = &nic->forwards[index];
    free(pf->name);
    free(pf->host_ip);
    free(pf->guest_ip);
    memmove(pf, pf + 1, (nic->forward_count - (size_t)index - 1) * sizeof(*pf));
    nic->forward_count--;
}

static void mgr_set_forwards_clicked(GtkButton *b, gpointer opaque)
{
    (void)b;
    struct mgr_set_nic *n = opaque;
    char title[64];
    snprintf(title, sizeof(title), "Port Forwarding - Adapter %u", n->index + 1);
    GtkWidget *d = gtk_dialog_new_with_buttons(title, GTK_WINDOW(n->s->dialog),
                                               GTK_DIALOG_MODAL | GTK_DIALOG_DESTROY_WITH_PARENT, "Close",
                                               GTK_RESPONSE_CLOSE, NULL);
    gtk_window_set_default_size(GTK_WINDOW(d), 720, 320);
    n->pf = (struct mgr_list){.s = n->s, .fill = mgr_set_pf_fill, .edit_fn = mgr_set_pf_edit,
                              .remove_fn = mgr_set_pf_remove, .opaque = &n->s->m->hw.nics[n->index],
                              .parent = GTK_WINDOW(d)};
    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 6);
    gtk_container_set_border_width(GTK_CONTAINER(box), 12);
    gtk_box_pack_start(GTK_BOX(box),
                       mgr_note("Connections to a host port are forwarded to the guest (NAT only)."), FALSE,
                       FALSE, 0);
    gtk_box_pack_start(GTK_BOX(box), mgr_list_new(&n->pf, "Port forwarding rules", g_pf_cols, 6, "Rule"), TRUE,
                       TRUE, 0);
    gtk_container_add(GTK_CONTAINER(gtk_dialog_get_content_area(GTK_DIALOG(d))), box);
    gtk_widget_show_all(d);
    gtk_dialog_run(GTK_DIALOG(d));
    gtk_widget_destroy(d);
}

static void mgr_set_nic_sync(struct mgr_set_nic *n)
{
    struct cfg_nic *nic = &n->s->m->hw.nics[n->index];
    if (n->s->destroyed)
        return;
    gtk_widget_set_sensitive(n->body, nic->enabled);
    gtk_widget_set_sensitive(n->name, nic->attach != CFG_NET_NAT && nic->attach != CFG_NET_NONE);
    gtk_widget_set_sensitive(n->forwards, nic->attach == CFG_NET_NAT);
    const char *v = nic->attach == CFG_NET_BRIDGED ? nic->bridge_interface : nic->network;
    g_object_set_data(G_OBJECT(n->name), "syncing", GINT_TO_POINTER(1));
    gtk_entry_set_text(GTK_ENTRY(n->name), nic->attach == CFG_NET_NAT || nic->attach == CFG_NET_NONE || !v ? "" : v);
    g_object_set_data(G_OBJECT(n->name), "syncing", NULL);
}

static void mgr_set_nic_toggled(GtkToggleButton *b, gpointer opaque)
{
    (void)b;
    mgr_set_nic_sync(opaque);
}

static void mgr_set_nic_attach_changed(GtkComboBox *c, gpointer opaque)
{
    (void)c;
    mgr_set_nic_sync(opaque);
}

static void mgr_set_nic_name_changed(GtkEditable *e, gpointer opaque)
{
    struct mgr_set_nic *n = opaque;
    if (g_object_get_data(G_OBJECT(e), "syncing"))
        return;
    struct cfg_nic *nic = &n->s->m->hw.nics[n->index];
    mgr_set_replace(nic->attach == CFG_NET_BRIDGED ? &nic->bridge_interface : &nic->network,
                    gtk_entry_get_text(GTK_ENTRY(e)));
}

/* 12 hex digits, ':' or '-' allowed between pairs; not multicast, not all zeroes. */
static bool mgr_set_parse_mac(const char *t, char out[13], const char **why)
{
    size_t n = 0;
    for (const char *p = t; *p; p++) {
        if ((*p == ':' || *p == '-') && n % 2 == 0 && n > 0 && p[1])
            continue;
        if (!g_ascii_isxdigit(*p) || n >= 12) {
            *why = "The MAC address must be 12 hexadecimal digits, such as 080027AABBCC.";
            return false;
        }
        out[n++] = g_ascii_toupper(*p);
    }
    out[n] = '\0';
    if (n != 12) {
        *why = "The MAC address must be 12 hexadecimal digits, such as 080027AABBCC.";
        return false;
    }
    if (g_ascii_xdigit_value(out[1]) & 1) {
        *why = "This is a multicast address (odd first byte), which a network card cannot have.";
        return false;
    }
    if (!strcmp(out, "000000000000")) {
        *why = "The MAC address cannot be all zeroes.";
        return false;
    }
    return true;
}

static void mgr_set_mac_changed(GtkEditable *e, gpointer opaque)
{
    struct mgr_set_nic *n = opaque;
    char mac[13];
    const char *why = NULL;
    bool ok = mgr_set_parse_mac(gtk_entry_get_text(GTK_ENTRY(e)), mac, &why);
    if (ok)
        memcpy(n->s->m->hw.nics[n->index].mac, mac, sizeof(mac));
    mgr_set_invalid(n->s, (enum mgr_set_field_id)(MGR_F_MAC1 + n->index), ok ? NULL : why);
}

static void mgr_set_mac_regenerate(GtkButton *b, gpointer opaque)
{
    (void)b;
    struct mgr_set_nic *n = opaque;
    struct rt_uuid r;
    if (rt_uuid_generate(&r) < 0)
        return;
    char mac[13];
    /* VirtualBox's prefix, as vireo-manage's "auto" makes them. */
    snprintf(mac, sizeof(mac), "080027%02X%02X%02X", r.bytes[0], r.bytes[1], r.bytes[2]);
    gtk_entry_set_text(GTK_ENTRY(n->mac), mac);
}

static GtkWidget *mgr_set_nic_page(struct mgr_settings *s, unsigned index)
{
    struct cfg_nic *nic = &s->m->hw.nics[index];
    struct mgr_set_nic *n = g_new0(struct mgr_set_nic, 1);
    n->s = s;
    n->index = index;
    GtkWidget *outer = gtk_box_new(GTK_ORIENTATION_VERTICAL, 6);
    s->owned[index] = n;
    gtk_container_set_border_width(GTK_CONTAINER(outer), 6);
    GtkWidget *en = mgr_set_check("Enable network adapter", &nic->enabled);
    gtk_box_pack_start(GTK_BOX(outer), en, FALSE, FALSE, 0);
    GtkWidget *g = mgr_form_grid();
    gtk_container_set_border_width(GTK_CONTAINER(g), 0);
    n->body = g;
    int row = 0;
    static const char *const at_l[] = {"NAT", "Bridged", "Host-only", "Internal", "Not attached"};
    static const unsigned at_v[] = {CFG_NET_NAT, CFG_NET_BRIDGED, CFG_NET_HOSTONLY, CFG_NET_INTERNAL, CFG_NET_NONE};
    GtkWidget *at = mgr_set_enum_combo(at_l, at_v, 5, &nic->attach);
    mgr_set_row(g, &row, "Attached to", at);
    n->name = gtk_entry_new();
    mgr_set_row(g, &row, "Name", n->name);
    GtkWidget *hint = mgr_note("The host's interface for Bridged; the network's name for Host-only and "
                                   "Internal.");
    gtk_style_context_add_class(gtk_widget_get_style_context(hint), "dim-label");
    gtk_grid_attach(GTK_GRID(g), hint, 1, row++, 1, 1);
    static const char *const ty_l[] = {"Intel PRO/1000 (E1000)", "VirtIO", "Realtek RTL8139"};
    static const unsigned ty_v[] = {CFG_NIC_E1000, CFG_NIC_VIRTIO, CFG_NIC_RTL8139};
    mgr_set_row(g, &row, "Adapter type", mgr_set_enum_combo(ty_l, ty_v, 3, &nic->type));
    n->mac = gtk_entry_new();
    gtk_entry_set_text(GTK_ENTRY(n->mac), nic->mac);
    gtk_entry_set_max_length(GTK_ENTRY(n->mac), 17);
    GtkWidget *regen = gtk_button_new_with_label("Regenerate");
    GtkWidget *mbox = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
    gtk_box_pack_start(GTK_BOX(mbox), n->mac, TRUE, TRUE, 0);
    gtk_box_pack_start(GTK_BOX(mbox), regen, FALSE, FALSE, 0);
    mgr_set_row(g, &row, "MAC address", mbox);
    mgr_a11y_name(n->mac, "MAC address", NULL);
    mgr_set_error_row(s, g, &row, (enum mgr_set_field_id)(MGR_F_MAC1 + index), "MAC address", MGR_PG_NETWORK);
    gtk_grid_attach(GTK_GRID(g), mgr_set_check("Cable connected", &nic->cable_connected), 1, row++, 1, 1);
    n->forwards = gtk_button_new_with_label("Port Forwarding…");
    gtk_widget_set_halign(n->forwards, GTK_ALIGN_START);
    gtk_grid_attach(GTK_GRID(g), n->forwards, 1, row++, 1, 1);
    gtk_box_pack_start(GTK_BOX(outer), g, FALSE, FALSE, 0);

    g_signal_connect(en, "toggled", G_CALLBACK(mgr_set_nic_toggled), n);
    g_signal_connect(at, "changed", G_CALLBACK(mgr_set_nic_attach_changed), n);
    g_signal_connect(n->name, "changed", G_CALLBACK(mgr_set_nic_name_changed), n);
    g_signal_connect(n->mac, "changed", G_CALLBACK(mgr_set_mac_changed), n);
    g_signal_connect(regen, "clicked", G_CALLBACK(mgr_set_mac_regenerate), n);
    mgr_on_click(n->forwards, mgr_set_forwards_clicked, n);
    mgr_set_nic_sync(n);
    return outer;
}

GtkWidget *mgr_set_network_page(struct mgr_settings *s)
{
    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 6);
    gtk_container_set_border_width(GTK_CONTAINER(box), 12);
    gtk_box_pack_start(GTK_BOX(box),
                       mgr_note("Network cards are not available in this version: the guest sees no network "
                                    "adapter. These settings are kept for when they are."),
                       FALSE, FALSE, 0);
    GtkWidget *nb = gtk_notebook_new();
    s->net_notebook = nb;
    gtk_notebook_set_scrollable(GTK_NOTEBOOK(nb), TRUE);
    for (unsigned i = 0; i < CFG_MAX_NICS; i++) {
        char label[32];
        snprintf(label, sizeof(label), "Adapter %u", i + 1);
        GtkWidget *page = mgr_set_nic_page(s, i);
        gtk_notebook_append_page(GTK_NOTEBOOK(nb), page, gtk_label_new(label));
        gtk_notebook_set_menu_label_text(GTK_NOTEBOOK(nb), page, label);
    }
    mgr_set_name_tabs(nb);
    gtk_box_pack_start(GTK_BOX(box), nb, TRUE, TRUE, 0);
    return box;
}

/* ---- Audio ------------------------------------------------------------------------------------------ */

GtkWidget *mgr_set_audio_page(struct mgr_settings *s)
{
    struct cfg_audio *a = &s->m->hw.audio;
    GtkWidget *g = mgr_form_grid();
    int row = 0;
    gtk_grid_attach(GTK_GRID(g),
                    mgr_note("Sound is not available in this version: the guest has no sound card. These "
                                 "settings are kept for when it is."),
                    0, row++, 2, 1);
    GtkWidget *en = mgr_set_check("Enable audio", &a->enabled);
    gtk_grid_attach(GTK_GRID(g), en, 0, row++, 2, 1);
    static const char *const drv_l[] = {"PulseAudio", "ALSA", "SDL", "Null"};
    static const unsigned drv_v[] = {CFG_AUDIO_PULSE, CFG_AUDIO_ALSA, CFG_AUDIO_SDL, CFG_AUDIO_NULL};
    GtkWidget *drv = mgr_set_enum_combo(drv_l, drv_v, 4, &a->driver);
    mgr_set_row(g, &row, "Host driver", drv);
    static const char *const ctl_l[] = {"Intel HD Audio (HDA)", "AC'97", "SoundBlaster 16 (SB16)"};
    static const unsigned ctl_v[] = {CFG_AUDIO_HDA, CFG_AUDIO_AC97, CFG_AUDIO_SB16};
    GtkWidget *ctl = mgr_set_enum_combo(ctl_l, ctl_v, 3, &a->controller);
    mgr_set_row(g, &row, "Controller", ctl);
    GtkWidget *out = mgr_set_check("Enable output", &a->output);
    GtkWidget *in = mgr_set_check("Enable input", &a->input);
    gtk_grid_attach(GTK_GRID(g), out, 1, row++, 1, 1);
    gtk_grid_attach(GTK_GRID(g), in, 1, row++, 1, 1);
    mgr_set_depends(en, drv);
    mgr_set_depends(en, ctl);
    mgr_set_depends(en, out);
    mgr_set_depends(en, in);
    return g;
}

/* ---- USB -------------------------------------------------------------------------------------------- */

static const char *const g_usb_cols[] = {"Name", "Vendor ID", "Product ID", "Serial", "Active"};

static void mgr_set_usb_fill(struct mgr_list *l)
{
    struct cfg_usb *u = &l->s->m->hw.usb;
    for (size_t i = 0; i < u->filter_count; i++) {
        const struct cfg_usb_filter *f = &u->filters[i];
        gtk_list_store_insert_with_values(l->store, NULL, -1, 0, f->name ? f->name : "", 1,
                                          f->vendor_id ? f->vendor_id : "any", 2, f->product_id ? f->product_id : "any",
                                          3, f->serial ? f->serial : "any", 4, f->active ? "Yes" : "No", -1);
    }
}

struct mgr_usb_form {
    struct cfg_usb *usb;
    int index, name, vendor, product, serial, active;
};

static bool mgr_set_hex_id(const char *t)
{
    size_t n = strlen(t);
    if (n < 1 || n > 4)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!g_ascii_isxdigit(t[i]))
            return false;
    return true;
}

static void mgr_set_usb_check(struct mgr_form *f, void *opaque)
{
    struct mgr_usb_form *p = opaque;
    const char *name = mgr_form_text(f, p->name);
    if (!*name)
        mgr_form_error(f, p->name, "The filter needs a name.");
    for (size_t i = 0; *name && i < p->usb->filter_count; i++)
        if ((int)i != p->index && p->usb->filters[i].name && !strcmp(p->usb->filters[i].name, name))
            mgr_form_error(f, p->name, "Another filter has that name.");
    if (*mgr_form_text(f, p->vendor) && !mgr_set_hex_id(mgr_form_text(f, p->vendor)))
        mgr_form_error(f, p->vendor, "The vendor ID must be 1 to 4 hexadecimal digits (such as 046d), or empty "
                                     "for any.");
    if (*mgr_form_text(f, p->product) && !mgr_set_hex_id(mgr_form_text(f, p->product)))
        mgr_form_error(f, p->product, "The product ID must be 1 to 4 hexadecimal digits (such as c52b), or "
                                      "empty for any.");
}

static bool mgr_set_usb_edit(struct mgr_list *l, int index)
{
    struct cfg_usb *u = &l->s->m->hw.usb;
    const struct cfg_usb_filter *old = index >= 0 ? &u->filters[index] : NULL;
    struct mgr_usb_form p = {.usb = u, .index = index};
    struct mgr_form f;
    mgr_form_init(&f, mgr_list_window(l), "USB Device Filter", mgr_set_usb_check, &p);
    p.name = mgr_form_entry(&f, "Filter name", old ? old->name : "");
    p.vendor = mgr_form_entry(&f, "Vendor ID", old ? old->vendor_id : "");
    p.product = mgr_form_entry(&f, "Product ID", old ? old->product_id : "");
    p.serial = mgr_form_entry(&f, "Serial number", old ? old->serial : "");
    p.active = mgr_form_check(&f, "Active", old ? old->active : true);
    bool changed = false;
    if (mgr_form_run(&f)) {
        if (index < 0) {
            struct cfg_usb_filter *arr = realloc(u->filters, (u->filter_count + 1) * sizeof(*arr));
            if (arr) {
                u->filters = arr;
                index = (int)u->filter_count++;
                memset(&arr[index], 0, sizeof(arr[index]));
            }
        }
        if (index >= 0) {
            struct cfg_usb_filter *flt = &u->filters[index];
            mgr_set_replace(&flt->name, mgr_form_text(&f, p.name));
            char *v = g_ascii_strdown(mgr_form_text(&f, p.vendor), -1);
            char *pr = g_ascii_strdown(mgr_form_text(&f, p.product), -1);
            mgr_set_replace(&flt->vendor_id, v);
            mgr_set_replace(&flt->product_id, pr);
            g_free(v);
            g_free(pr);
            mgr_set_replace(&flt->serial, mgr_form_text(&f, p.serial));
            flt->active = mgr_form_on(&f, p.active);
            changed = true;
        }
    }
    mgr_form_done(&f);
    return changed;
}

static void mgr_set_usb_remove(struct mgr_list *l, int index)
{
    struct cfg_usb *u = &l->s->m->hw.usb;
    struct cfg_usb_filter *f = &u->filters[index];
    free(f->name);
    free(f->vendor_id);
    free(f->product_id);
    free(f->serial);
    memmove(f, f + 1, (u->filter_count - (size_t)index - 1) * sizeof(*f));
    u->filter_count--;
}

static void mgr_set_usb_radio(GtkToggleButton *b, gpointer opaque)
{
    struct mgr_settings *s = opaque;
    if (gtk_toggle_button_get_active(b))
        s->m->hw.usb.controller = (enum cfg_usb_ctl)GPOINTER_TO_INT(g_object_get_data(G_OBJECT(b), "ctl"));
}

GtkWidget *mgr_set_usb_page(struct mgr_settings *s, struct mgr_list *l)
{
    struct cfg_usb *u = &s->m->hw.usb;
    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 6);
    gtk_container_set_border_width(GTK_CONTAINER(box), 12);
    gtk_box_pack_start(GTK_BOX(box),
                       mgr_note("USB controllers and pass-through of host devices are not available in this "
                                    "version: the guest sees no USB. These settings are kept for when they are."),
                       FALSE, FALSE, 0);
    GtkWidget *en = mgr_set_check("Enable USB controller", &u->enabled);
    gtk_box_pack_start(GTK_BOX(box), en, FALSE, FALSE, 0);
    GtkWidget *body = gtk_box_new(GTK_ORIENTATION_VERTICAL, 6);
    static const char *const ctl_l[] = {"USB 1.1 (OHCI)", "USB 2.0 (EHCI)", "USB 3.0 (xHCI)"};
    GtkWidget *first = NULL;
    for (int i = 0; i < 3; i++) {
        GtkWidget *r = gtk_radio_button_new_with_label_from_widget(first ? GTK_RADIO_BUTTON(first) : NULL, ctl_l[i]);
        if (!first)
            first = r;
        g_object_set_data(G_OBJECT(r), "ctl", GINT_TO_POINTER(i));
        gtk_toggle_button_set_active(GTK_TOGGLE_BUTTON(r), (int)u->controller == i);
        g_signal_connect(r, "toggled", G_CALLBACK(mgr_set_usb_radio), s);
        gtk_box_pack_start(GTK_BOX(body), r, FALSE, FALSE, 0);
    }
    GtkWidget *h = gtk_label_new("Device filters");
    gtk_label_set_xalign(GTK_LABEL(h), 0.0f);
    gtk_box_pack_start(GTK_BOX(body), h, FALSE, FALSE, 0);
    *l = (struct mgr_list){.s = s, .fill = mgr_set_usb_fill, .edit_fn = mgr_set_usb_edit,
                           .remove_fn = mgr_set_usb_remove};
    gtk_box_pack_start(GTK_BOX(body), mgr_list_new(l, "Device filters", g_usb_cols, 5, "Filter"), TRUE, TRUE, 0);
    gtk_box_pack_start(GTK_BOX(box), body, TRUE, TRUE, 0);
    mgr_set_depends(en, body);
    return box;
}

/* ---- Shared folders ----------------------------------------------------------------------------------- */

static const char *const g_sf_cols[] = {"Name", "Folder", "Access", "Auto-mount", "Mount point"};

static void mgr_set_sf_fill(struct mgr_list *l)
{
    struct cfg_hardware *hw = &l->s->m->hw;
    for (size_t i = 0; i < hw->shared_folder_count; i++) {
        const struct cfg_shared_folder *f = &hw->shared_folders[i];
        gtk_list_store_insert_with_values(l->store, NULL, -1, 0, f->name, 1, f->host_path, 2,
                                          f->readonly ? "Read-only" : "Full", 3, f->automount ? "Yes" : "No", 4,
                                          f->mount_point ? f->mount_point : "default", -1);
    }
}

struct mgr_sf_form {
    struct cfg_hardware *hw;
    int index, name, path, ro, automount, mount;
};

static void mgr_set_sf_check(struct mgr_form *f, void *opaque)
{
    struct mgr_sf_form *p = opaque;
    const char *name = mgr_form_text(f, p->name), *path = mgr_form_text(f, p->path);
    if (!*name)
        mgr_form_error(f, p->name, "The shared folder needs a name.");
    else if (strpbrk(name, "/\\ "))
        mgr_form_error(f, p->name, "The name cannot contain slashes or spaces.");
    for (size_t i = 0; *name && i < p->hw->shared_folder_count; i++)
        if ((int)i != p->index && !strcmp(p->hw->shared_folders[i].name, name))
            mgr_form_error(f, p->name, "Another shared folder has that name.");
    if (!*path)
        mgr_form_error(f, p->path, "Choose a folder of this host.");
    else if (path[0] != '/')
        mgr_form_error(f, p->path, "The folder must be an absolute path (starting with /).");
    else if (!g_file_test(path, G_FILE_TEST_IS_DIR))
        mgr_form_error(f, p->path, "There is no folder at this path.");
    const char *mp = mgr_form_text(f, p->mount);
    if (*mp && mp[0] != '/')
        mgr_form_error(f, p->mount, "The mount point must be an absolute path in the guest, or empty for the "
                                    "default.");
}

static bool mgr_set_sf_edit(struct mgr_list *l, int index)
{
    struct cfg_hardware *hw = &l->s->m->hw;
    const struct cfg_shared_folder *old = index >= 0 ? &hw->shared_folders[index] : NULL;
    struct mgr_sf_form p = {.hw = hw, .index = index};
    struct mgr_form f;
    mgr_form_init(&f, mgr_list_window(l), "Shared Folder", mgr_set_sf_check, &p);
    p.name = mgr_form_entry(&f, "Folder name", old ? old->name : "");
    p.path = mgr_form_entry(&f, "Folder path", old ? old->host_path : "");
    p.ro = mgr_form_check(&f, "Read-only", old && old->readonly);
    p.automount = mgr_form_check(&f, "Auto-mount", old ? old->automount : true);
    p.mount = mgr_form_entry(&f, "Mount point", old ? old->mount_point : "");
    bool changed = false;
    if (mgr_form_run(&f)) {
        if (index < 0) {
            struct cfg_shared_folder *arr = realloc(hw->shared_folders,
                                                    (hw->shared_folder_count + 1) * sizeof(*arr));
            if (arr) {
                hw->shared_folders = arr;
                index = (int)hw->shared_folder_count++;
                memset(&arr[index], 0, sizeof(arr[index]));
            }
        }
        if (index >= 0) {
            struct cfg_shared_folder *sf = &hw->shared_folders[index];
            mgr_set_replace(&sf->name, mgr_form_text(&f, p.name));
            mgr_set_replace(&sf->host_path, mgr_form_text(&f, p.path));
            sf->readonly = mgr_form_on(&f, p.ro);
            sf->automount = mgr_form_on(&f, p.automount);
            mgr_set_replace(&sf->mount_point, mgr_form_text(&f, p.mount));
            changed = true;
        }
    }
    mgr_form_done(&f);
    return changed;
}

static void mgr_set_sf_remove(struct mgr_list *l, int index)
{
    struct cfg_hardware *hw = &l->s->m->hw;
    struct cfg_shared_folder *f = &hw->shared_folders[index];
    free(f->name);
    free(f->host_path);
    free(f->mount_point);
    memmove(f, f + 1, (hw->shared_folder_count - (size_t)index - 1) * sizeof(*f));
    hw->shared_folder_count--;
}

GtkWidget *mgr_set_shared_page(struct mgr_settings *s, struct mgr_list *l)
{
    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 6);
    gtk_container_set_border_width(GTK_CONTAINER(box), 12);
    gtk_box_pack_start(GTK_BOX(box),
                       mgr_note("Shared folders are not available in this version: the guest cannot see them "
                                    "yet (there is no shared-folder device or guest driver). The list is kept for "
                                    "when it is."),
                       FALSE, FALSE, 0);
    *l = (struct mgr_list){.s = s, .fill = mgr_set_sf_fill, .edit_fn = mgr_set_sf_edit, .remove_fn = mgr_set_sf_remove};
    gtk_box_pack_start(GTK_BOX(box), mgr_list_new(l, "Shared folders", g_sf_cols, 5, "Folder"), TRUE, TRUE, 0);
    return box;
}
