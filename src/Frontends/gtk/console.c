/* console.c - the VM console window (GTK3): its thread, menus, status bar, dialogs and the machine actions they start. */
/*
 * Design: GTK lives on a thread of its own.  vireo-vm's main thread already runs a loop (the signal
 * wait of the command-line mode, the control socket of --startvm) that must stay as it is, so the
 * window does not take it over: console_open starts the "console" thread, which runs gtk_init_check
 * and reports back whether a display server answered before building the window and running
 * gtk_main.  Every GTK call is made on that thread; other threads reach it with g_idle_add only
 * (screen updates, error dialogs, quitting).  The window talks to the VM through calls that are safe
 * from any thread: the display listener and inp_* take the VM lock, vm_get_state is atomic, and
 * machine actions go through params.action (queued to vireo-vm's main loop in --startvm mode, so the
 * settings record the state as the control socket's commands do) or straight to vm_*.
 *
 * Closing the window never kills the guest by surprise: it asks whether to send the ACPI shutdown
 * signal (the power button: the guest shuts down in order, if it listens), to power off, or to do
 * nothing.  The window goes away when the VM process ends.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "console-int.h"

#define LOG_COMPONENT "console"

#define ACPI_TOOLTIP "Presses the machine's power button: a guest that listens for it (ACPI) shuts down in order."

const char *console_action_name(enum console_action action)
{
    switch (action) {
    case CONSOLE_ACTION_PAUSE: return "pause";
    case CONSOLE_ACTION_RESUME: return "resume";
    case CONSOLE_ACTION_RESET: return "reset";
    case CONSOLE_ACTION_POWEROFF: return "power off";
    case CONSOLE_ACTION_POWER_BUTTON: return "send ACPI shutdown to";
    }
    return "?";
}

/* ---- Dialogs ------------------------------------------------------------------------------------------ */

void console_error_dialog(struct console *c, const char *title, const char *message)
{
    if (!c->window)
        return;
    LOG_WARN("%s: %s", title, message);
    /* The person has to reach the dialog: a captured keyboard would feed it to the guest. */
    console_input_release(c);
    GtkWidget *d = gtk_message_dialog_new(GTK_WINDOW(c->window), GTK_DIALOG_DESTROY_WITH_PARENT, GTK_MESSAGE_ERROR,
                                          GTK_BUTTONS_CLOSE, "%s", title);
    gtk_message_dialog_format_secondary_text(GTK_MESSAGE_DIALOG(d), "%s", message);
    gtk_window_set_title(GTK_WINDOW(d), c->title);
    g_signal_connect(d, "response", G_CALLBACK(gtk_widget_destroy), NULL);
    gtk_widget_show_all(d);
}

struct error_msg {
    struct console *c;
    char *title, *message;
};

static gboolean show_error_idle(gpointer opaque)
{
    struct error_msg *e = opaque;
    if (!e->c->quitting)
        console_error_dialog(e->c, e->title, e->message);
    free(e->title);
    free(e->message);
    free(e);
    return G_SOURCE_REMOVE;
}

void console_show_error(struct console *console, const char *title, const char *message)
{
    if (!console)
        return;
    struct error_msg *e = calloc(1, sizeof(*e));
    if (!e)
        return;
    e->c = console;
    e->title = strdup(title ? title : "Error");
    e->message = strdup(message ? message : "");
    if (!e->title || !e->message) {
        free(e->title);
        free(e->message);
        free(e);
        return;
    }
    g_idle_add(show_error_idle, e);
}

/*
 * Runs a modal dialog and destroys it.  The window may be closed while the dialog waits (the VM ended and
 * console_close came): the dialog goes with its parent then, so it is held by a reference of our own, and
 * the answer is GTK_RESPONSE_NONE.
 */
static int run_dialog(struct console *c, GtkWidget *d)
{
    g_object_ref(d);
    int response = gtk_dialog_run(GTK_DIALOG(d));
    gtk_widget_destroy(d);
    g_object_unref(d);
    return c->quitting ? GTK_RESPONSE_NONE : response;
}

/* Asks a yes/no question; true for yes. */
static bool confirm(struct console *c, const char *question, const char *detail, const char *yes_label)
{
    console_input_release(c);
    GtkWidget *d = gtk_message_dialog_new(GTK_WINDOW(c->window), GTK_DIALOG_MODAL | GTK_DIALOG_DESTROY_WITH_PARENT,
                                          GTK_MESSAGE_QUESTION, GTK_BUTTONS_NONE, "%s", question);
    gtk_message_dialog_format_secondary_text(GTK_MESSAGE_DIALOG(d), "%s", detail);
    gtk_window_set_title(GTK_WINDOW(d), c->title);
    gtk_dialog_add_button(GTK_DIALOG(d), "_Cancel", GTK_RESPONSE_CANCEL);
    gtk_dialog_add_button(GTK_DIALOG(d), yes_label, GTK_RESPONSE_ACCEPT);
    gtk_dialog_set_default_response(GTK_DIALOG(d), GTK_RESPONSE_CANCEL);
    return run_dialog(c, d) == GTK_RESPONSE_ACCEPT;
}

/* ---- Machine actions ---------------------------------------------------------------------------------- */

static void do_action(struct console *c, enum console_action action)
{
    enum vm_state st = vm_get_state(c->vm);
    if (st != VM_STATE_RUNNING && st != VM_STATE_PAUSED) {
        char msg[160];
        snprintf(msg, sizeof(msg), "The virtual machine is %s.", vm_state_name(st));
        console_error_dialog(c, "The virtual machine cannot do that now", msg);
        return;
    }
    LOG_INFO("window: %s", console_action_name(action));
    if (c->action) {
        c->action(c->action_opaque, action);
        return;
    }
    int rc = 0;
    switch (action) {
    case CONSOLE_ACTION_PAUSE: rc = vm_pause(c->vm); break;
    case CONSOLE_ACTION_RESUME: rc = vm_resume(c->vm); break;
    case CONSOLE_ACTION_RESET: vm_request_reset(c->vm); break;
    case CONSOLE_ACTION_POWEROFF: vm_request_poweroff(c->vm, 0); break;
    case CONSOLE_ACTION_POWER_BUTTON: rc = vm_power_button(c->vm); break;
    }
    if (rc == VERR_NOT_SUPPORTED && action == CONSOLE_ACTION_POWER_BUTTON) {
        console_error_dialog(c, "Cannot send ACPI shutdown to the virtual machine",
                             "This machine has no ACPI power button: shut the guest down from inside, or power it off.");
    } else if (rc) {
        char title[96];
        snprintf(title, sizeof(title), "Cannot %s the virtual machine", console_action_name(action));
        console_error_dialog(c, title, rt_err_str(rc));
    }
    console_update_status(c);
}

static void on_pause(GtkMenuItem *item, gpointer opaque)
{
    struct console *c = opaque;
    do_action(c, vm_get_state(c->vm) == VM_STATE_PAUSED ? CONSOLE_ACTION_RESUME : CONSOLE_ACTION_PAUSE);
}

static void on_reset(GtkMenuItem *item, gpointer opaque)
{
    struct console *c = opaque;
    if (confirm(c, "Reset the virtual machine?", "The guest restarts at once, as with a reset button: work it has not "
                "saved is lost.", "_Reset"))
        do_action(c, CONSOLE_ACTION_RESET);
}

static void on_poweroff(GtkMenuItem *item, gpointer opaque)
{
    struct console *c = opaque;
    if (confirm(c, "Power off the virtual machine?", "The guest stops at once, as when the plug is pulled: work it has "
                "not saved is lost.", "_Power Off"))
        do_action(c, CONSOLE_ACTION_POWEROFF);
}

/* No question: the guest decides what the button means (an orderly shutdown, or nothing). */
static void on_acpi_shutdown(GtkMenuItem *item, gpointer opaque)
{
    console_acpi_shutdown(opaque);
}

void console_acpi_shutdown(struct console *c)
{
    do_action(c, CONSOLE_ACTION_POWER_BUTTON);
}

static void on_screenshot(GtkMenuItem *item, gpointer opaque)
{
    struct console *c = opaque;
    console_input_release(c);
    GtkWidget *d = gtk_file_chooser_dialog_new("Save Screenshot", GTK_WINDOW(c->window), GTK_FILE_CHOOSER_ACTION_SAVE,
                                               "_Cancel", GTK_RESPONSE_CANCEL, "_Save", GTK_RESPONSE_ACCEPT, NULL);
    gtk_file_chooser_set_do_overwrite_confirmation(GTK_FILE_CHOOSER(d), TRUE);
    GtkFileFilter *filter = gtk_file_filter_new();
    gtk_file_filter_set_name(filter, "PNG images");
    gtk_file_filter_add_pattern(filter, "*.png");
    gtk_file_chooser_add_filter(GTK_FILE_CHOOSER(d), filter);
    char name[160], stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%d %H.%M.%S", &tm);
    snprintf(name, sizeof(name), "%s %s.png", c->name, stamp);
    gtk_file_chooser_set_current_name(GTK_FILE_CHOOSER(d), name);
    g_object_ref(d);
    char *path = gtk_dialog_run(GTK_DIALOG(d)) == GTK_RESPONSE_ACCEPT && !c->quitting
                     ? gtk_file_chooser_get_filename(GTK_FILE_CHOOSER(d))
                     : NULL;
    gtk_widget_destroy(d);
    g_object_unref(d);
    if (path) {
        int rc = dpy_screenshot_png(c->dpy, path);
        if (rc) {
            char title[256];
            snprintf(title, sizeof(title), "Cannot save the screenshot to '%s'", path);
            console_error_dialog(c, title,
                                 rc == VERR_INVALID_STATE ? "The guest shows nothing on its screen right now."
                                                          : rt_err_str(rc));
        } else {
            LOG_INFO("screenshot saved to '%s'", path);
        }
        g_free(path);
    }
}

static void on_scale(GtkCheckMenuItem *item, gpointer opaque)
{
    struct console *c = opaque;
    if (gtk_check_menu_item_get_active(item))
        console_view_set_scale(c, GTK_WIDGET(item) == c->item_scale);
}

static void on_fullscreen(GtkCheckMenuItem *item, gpointer opaque)
{
    struct console *c = opaque;
    bool want = gtk_check_menu_item_get_active(item);
    if (want != c->fullscreen)
        console_view_set_fullscreen(c, want);
}

static void on_combo(GtkMenuItem *item, gpointer opaque)
{
    struct console *c = opaque;
    unsigned code = GPOINTER_TO_UINT(g_object_get_data(G_OBJECT(item), "vireo-combo"));
    console_input_send_combo(c, (enum console_combo)(code >> 8), code & 0xff);
}

static void on_release(GtkMenuItem *item, gpointer opaque)
{
    console_input_release(opaque);
}

void console_ask_close(struct console *c)
{
    if (c->close_dialog_open || !c->window)
        return;
    enum vm_state st = vm_get_state(c->vm);
    if (st != VM_STATE_RUNNING && st != VM_STATE_PAUSED)
        return; /* already ending: the window goes with the process */
    console_input_release(c);
    c->close_dialog_open = true;
    GtkWidget *d = gtk_message_dialog_new(GTK_WINDOW(c->window), GTK_DIALOG_MODAL | GTK_DIALOG_DESTROY_WITH_PARENT,
                                          GTK_MESSAGE_QUESTION, GTK_BUTTONS_NONE,
                                          "Close the virtual machine \"%s\"?", c->name);
    gtk_message_dialog_format_secondary_text(GTK_MESSAGE_DIALOG(d), "Closing the window does not stop the guest by "
                                             "itself.  ACPI shutdown presses the power button: a guest that listens "
                                             "shuts down in order.  Power off stops it at once, as when the plug is "
                                             "pulled: work it has not saved is lost.");
    gtk_window_set_title(GTK_WINDOW(d), "Close - Vireo");
    GtkWidget *acpi = gtk_dialog_add_button(GTK_DIALOG(d), "Send _ACPI Shutdown", GTK_RESPONSE_APPLY);
    gtk_widget_set_tooltip_text(acpi, ACPI_TOOLTIP);
    gtk_dialog_add_button(GTK_DIALOG(d), "_Cancel", GTK_RESPONSE_CANCEL);
    gtk_dialog_add_button(GTK_DIALOG(d), "_Power Off", GTK_RESPONSE_ACCEPT);
    gtk_dialog_set_default_response(GTK_DIALOG(d), GTK_RESPONSE_CANCEL);
    int response = run_dialog(c, d);
    c->close_dialog_open = false;
    if (response == GTK_RESPONSE_ACCEPT)
        do_action(c, CONSOLE_ACTION_POWEROFF);
    else if (response == GTK_RESPONSE_APPLY)
        do_action(c, CONSOLE_ACTION_POWER_BUTTON);
    else if (!c->quitting)
        LOG_INFO("window: closing cancelled; the VM continues");
}

static gboolean on_delete(GtkWidget *widget, GdkEvent *ev, gpointer opaque)
{
    struct console *c = opaque;
    if (!c->quitting)
        console_ask_close(c);
    return TRUE; /* the window stays until the process ends */
}

static void on_destroy(GtkWidget *widget, gpointer opaque)
{
    struct console *c = opaque;
    if (!c->quitting)
        LOG_WARN("the console window was destroyed from outside; the VM continues without it");
    c->window = NULL;
    c->area = NULL;
}

static gboolean on_window_state(GtkWidget *widget, GdkEventWindowState *ev, gpointer opaque)
{
    struct console *c = opaque;
    if (!(ev->changed_mask & GDK_WINDOW_STATE_FULLSCREEN))
        return FALSE;
    c->fullscreen = (ev->new_window_state & GDK_WINDOW_STATE_FULLSCREEN) != 0;
    /* Full screen is the guest's screen alone. */
    gtk_widget_set_visible(c->menubar, !c->fullscreen);
    gtk_widget_set_visible(gtk_widget_get_parent(c->status_state), !c->fullscreen);
    g_signal_handlers_block_by_func(c->item_fullscreen, on_fullscreen, c);
    gtk_check_menu_item_set_active(GTK_CHECK_MENU_ITEM(c->item_fullscreen), c->fullscreen);
    g_signal_handlers_unblock_by_func(c->item_fullscreen, on_fullscreen, c);
    return FALSE;
}

/* ---- Status bar --------------------------------------------------------------------------------------- */

void console_update_status(struct console *c)
{
    if (!c->window)
        return;
    enum vm_state st = vm_get_state(c->vm);
    const char *state = st == VM_STATE_RUNNING ? "Running"
                        : st == VM_STATE_PAUSED ? "Paused"
                        : st == VM_STATE_POWERED_OFF ? "Powered off"
                        : st == VM_STATE_ABORTED ? "Aborted" : "Starting";
    gtk_label_set_text(GTK_LABEL(c->status_state), state);
    gtk_menu_item_set_label(GTK_MENU_ITEM(c->item_pause), st == VM_STATE_PAUSED ? "_Resume" : "_Pause");
    gtk_widget_set_sensitive(c->item_pause, st == VM_STATE_RUNNING || st == VM_STATE_PAUSED);
    c->shown_state = st;
    char hint[128];
    const char *host = c->host_key->name;
    if (c->no_keyboard)
        snprintf(hint, sizeof(hint), "This machine has no keyboard: typing reaches nothing");
    else if (c->mouse_captured)
        snprintf(hint, sizeof(hint), "Keyboard and mouse captured: press %s to release them", host);
    else if (c->kbd_captured)
        snprintf(hint, sizeof(hint), "Keyboard captured: press %s to release it", host);
    else
        snprintf(hint, sizeof(hint), "Click the screen to capture keyboard and mouse (%s releases them)", host);
    gtk_label_set_text(GTK_LABEL(c->status_hint), hint);
}

static gboolean state_tick(gpointer opaque)
{
    struct console *c = opaque;
    if (c->window && vm_get_state(c->vm) != c->shown_state)
        console_update_status(c);
    return G_SOURCE_CONTINUE;
}

/* ---- The window --------------------------------------------------------------------------------------- */

static GtkWidget *menu_add(GtkWidget *menu, const char *label, GCallback cb, struct console *c)
{
    GtkWidget *item = gtk_menu_item_new_with_mnemonic(label);
    if (cb)
        g_signal_connect(item, "activate", cb, c);
    gtk_menu_shell_append(GTK_MENU_SHELL(menu), item);
    return item;
}

static GtkWidget *menu_top(GtkWidget *bar, const char *label)
{
    GtkWidget *top = gtk_menu_item_new_with_mnemonic(label), *menu = gtk_menu_new();
    gtk_menu_item_set_submenu(GTK_MENU_ITEM(top), menu);
    gtk_menu_shell_append(GTK_MENU_SHELL(bar), top);
    return menu;
}

static void menu_separator(GtkWidget *menu)
{
    gtk_menu_shell_append(GTK_MENU_SHELL(menu), gtk_separator_menu_item_new());
}

static void combo_item(GtkWidget *menu, const char *label, enum console_combo combo, unsigned fn, struct console *c)
{
    GtkWidget *item = menu_add(menu, label, G_CALLBACK(on_combo), c);
    g_object_set_data(G_OBJECT(item), "vireo-combo", GUINT_TO_POINTER(((unsigned)combo << 8) | fn));
}

static GtkWidget *build_menus(struct console *c, GtkAccelGroup *accel)
{
    GtkWidget *bar = gtk_menu_bar_new();

    GtkWidget *m = menu_top(bar, "_Machine");
    c->item_pause = menu_add(m, "_Pause", G_CALLBACK(on_pause), c);
    menu_add(m, "_Reset", G_CALLBACK(on_reset), c);
    menu_separator(m);
    menu_add(m, "Take _Screenshot\xe2\x80\xa6", G_CALLBACK(on_screenshot), c);
    menu_separator(m);
    char label[96];
    snprintf(label, sizeof(label), "ACPI _Shutdown (%s+H)", c->host_key->name);
    GtkWidget *acpi = menu_add(m, label, G_CALLBACK(on_acpi_shutdown), c);
    gtk_widget_set_tooltip_text(acpi, ACPI_TOOLTIP);
    menu_add(m, "Power _Off", G_CALLBACK(on_poweroff), c);

    GtkWidget *v = menu_top(bar, "_View");
    c->item_scale = gtk_radio_menu_item_new_with_mnemonic(NULL, "_Scale to Window");
    c->item_actual = gtk_radio_menu_item_new_with_mnemonic_from_widget(GTK_RADIO_MENU_ITEM(c->item_scale),
                                                                       "_Actual Size (1:1)");
    gtk_check_menu_item_set_active(GTK_CHECK_MENU_ITEM(c->item_scale), TRUE);
    g_signal_connect(c->item_scale, "toggled", G_CALLBACK(on_scale), c);
    g_signal_connect(c->item_actual, "toggled", G_CALLBACK(on_scale), c);
    gtk_menu_shell_append(GTK_MENU_SHELL(v), c->item_scale);
    gtk_menu_shell_append(GTK_MENU_SHELL(v), c->item_actual);
    menu_separator(v);
    c->item_fullscreen = gtk_check_menu_item_new_with_mnemonic("_Full Screen");
    gtk_widget_add_accelerator(c->item_fullscreen, "activate", accel, GDK_KEY_F11, 0, GTK_ACCEL_VISIBLE);
    g_signal_connect(c->item_fullscreen, "toggled", G_CALLBACK(on_fullscreen), c);
    gtk_menu_shell_append(GTK_MENU_SHELL(v), c->item_fullscreen);

    GtkWidget *in = menu_top(bar, "_Input");
    combo_item(in, "Send Ctrl-Alt-_Del", CONSOLE_COMBO_CTRL_ALT_DEL, 0, c);
    combo_item(in, "Send Ctrl-Alt-_Backspace", CONSOLE_COMBO_CTRL_ALT_BACKSPACE, 0, c);
    GtkWidget *fkeys = gtk_menu_new();
    for (unsigned fn = 1; fn <= 12; fn++) {
        char fkey[32];
        snprintf(fkey, sizeof(fkey), "Ctrl-Alt-F%u", fn);
        combo_item(fkeys, fkey, CONSOLE_COMBO_CTRL_ALT_FN, fn, c);
    }
    GtkWidget *fitem = menu_add(in, "Send Ctrl-Alt-_F\xe2\x80\xa6", NULL, c);
    gtk_menu_item_set_submenu(GTK_MENU_ITEM(fitem), fkeys);
    menu_separator(in);
    snprintf(label, sizeof(label), "Release Keyboard and _Mouse (%s)", c->host_key->name);
    menu_add(in, label, G_CALLBACK(on_release), c);
    return bar;
}

static void build_window(struct console *c)
{
    c->window = gtk_window_new(GTK_WINDOW_TOPLEVEL);
    gtk_window_set_title(GTK_WINDOW(c->window), c->title);
    GtkAccelGroup *accel = gtk_accel_group_new();
    gtk_window_add_accel_group(GTK_WINDOW(c->window), accel);
    g_object_unref(accel);
    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 0);
    c->menubar = build_menus(c, accel);
    gtk_box_pack_start(GTK_BOX(box), c->menubar, FALSE, FALSE, 0);
    gtk_box_pack_start(GTK_BOX(box), console_view_create(c), TRUE, TRUE, 0);
    GtkWidget *status = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 12);
    gtk_widget_set_margin_start(status, 6);
    gtk_widget_set_margin_end(status, 6);
    gtk_widget_set_margin_top(status, 2);
    gtk_widget_set_margin_bottom(status, 2);
    c->status_state = gtk_label_new("");
    c->status_hint = gtk_label_new("");
    gtk_label_set_ellipsize(GTK_LABEL(c->status_hint), PANGO_ELLIPSIZE_END);
    gtk_widget_set_halign(c->status_hint, GTK_ALIGN_END);
    gtk_widget_set_hexpand(c->status_hint, TRUE);
    gtk_box_pack_start(GTK_BOX(status), c->status_state, FALSE, FALSE, 0);
    gtk_box_pack_start(GTK_BOX(status), c->status_hint, TRUE, TRUE, 0);
    gtk_box_pack_start(GTK_BOX(box), status, FALSE, FALSE, 0);
    gtk_container_add(GTK_CONTAINER(c->window), box);

    g_signal_connect(c->window, "delete-event", G_CALLBACK(on_delete), c);
    g_signal_connect(c->window, "destroy", G_CALLBACK(on_destroy), c);
    g_signal_connect(c->window, "window-state-event", G_CALLBACK(on_window_state), c);
    console_input_connect(c);
    c->shown_state = VM_STATE_CREATED;
    console_update_status(c);
    c->state_timer = g_timeout_add(200, state_tick, c);
    gtk_widget_show_all(c->window);
    gtk_widget_grab_focus(c->area);
}

static void start_report(struct console *c, int rc)
{
    rt_mutex_lock(&c->start_lock);
    c->start_rc = rc;
    c->start_done = true;
    rt_cond_broadcast(&c->start_cond);
    rt_mutex_unlock(&c->start_lock);
}

static void *console_thread(void *arg)
{
    struct console *c = arg;
    /*
     * X11 first (XWayland on a Wayland desktop): a captured relative mouse needs pointer warping and grabs,
     * which GTK 3 offers on X11 only.  Plain Wayland is the fallback.
     */
    gdk_set_allowed_backends("x11,wayland");
    if (!gtk_init_check(NULL, NULL)) {
        start_report(c, VERR_NOT_SUPPORTED);
        return NULL;
    }
    build_window(c);
    start_report(c, 0);
    gtk_main();
    return NULL;
}

static gboolean quit_idle(gpointer opaque)
{
    struct console *c = opaque;
    c->quitting = true;
    if (c->state_timer)
        g_source_remove(c->state_timer);
    c->state_timer = 0;
    console_input_release(c);
    if (c->window)
        gtk_widget_destroy(c->window);
    gtk_main_quit();
    return G_SOURCE_REMOVE;
}

static void console_free(struct console *c)
{
    console_view_free(c);
    rt_mutex_destroy(&c->lock);
    rt_cond_destroy(&c->start_cond);
    rt_mutex_destroy(&c->start_lock);
    free(c->name);
    free(c->title);
    free(c);
}

int console_open(const struct console_params *params, struct console **out)
{
    *out = NULL;
    if (!params || !params->vm)
        return VERR_INVALID_PARAMETER;
    struct display *dpy = dpy_find(params->vm, 0);
    if (!dpy)
        return VERR_NOT_FOUND;
    const char *x11 = getenv("DISPLAY"), *wayland = getenv("WAYLAND_DISPLAY");
    if (!(x11 && *x11) && !(wayland && *wayland))
        return VERR_NOT_SUPPORTED;
    struct console *c = calloc(1, sizeof(*c));
    if (!c)
        return VERR_NO_MEMORY;
    c->vm = params->vm;
    c->dpy = dpy;
    c->action = params->action;
    c->action_opaque = params->action_opaque;
    c->host_key = params->host_key ? params->host_key : console_host_key_lookup(NULL, NULL);
    const char *name = params->machine_name && *params->machine_name ? params->machine_name : vm_get_name(params->vm);
    c->name = strdup(name);
    c->title = rt_strdup_printf("%s - Vireo", name);
    int rc = c->title && c->name ? 0 : VERR_NO_MEMORY;
    /* Each step undoes the ones before it when it fails. */
    bool start_lock = false, start_cond = false;
    if (!rc && !(rc = rt_mutex_init(&c->start_lock)))
        start_lock = true;
    if (!rc && !(rc = rt_cond_init(&c->start_cond)))
        start_cond = true;
    if (!rc)
        rc = rt_mutex_init(&c->lock);
    if (rc) {
        if (start_cond)
            rt_cond_destroy(&c->start_cond);
        if (start_lock)
            rt_mutex_destroy(&c->start_lock);
        free(c->name);
        free(c->title);
        free(c);
        return rc;
    }
    rc = rt_thread_create(&c->thread, "console", console_thread, c);
    if (rc) {
        console_free(c);
        return rc;
    }
    rt_mutex_lock(&c->start_lock);
    while (!c->start_done)
        rt_cond_wait(&c->start_cond, &c->start_lock);
    rc = c->start_rc;
    rt_mutex_unlock(&c->start_lock);
    if (rc) {
        rt_thread_join(c->thread, NULL);
        console_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void console_close(struct console *console)
{
    if (!console)
        return;
    console_view_detach(console);
    rt_mutex_lock(&console->lock);
    console->closing = true;
    rt_mutex_unlock(&console->lock);
    g_idle_add(quit_idle, console);
    rt_thread_join(console->thread, NULL);
    console_free(console);
}
