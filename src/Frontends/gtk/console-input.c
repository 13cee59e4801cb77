/* console-input.c - the console window's keyboard and mouse: capture on focus or click, the host key that lets go, key presses to PC keycodes, a captured relative mouse. */
/*
 * Keyboard: while captured (the window has focus, or the screen was clicked) every key goes to the
 * guest, GTK's shortcuts included, and the keyboard is grabbed so the desktop's shortcuts reach the
 * guest too.  The host key (params.host_key: Right Ctrl unless the manager's Preferences chose another)
 * never reaches the guest: pressed and released alone it lets go of keyboard and mouse (or captures them
 * again); held with F it toggles full screen, with Del it sends Ctrl-Alt-Del, with H it sends the ACPI
 * shutdown signal (VirtualBox's Host+H), with Q it asks to close.  GDK's hardware keycodes are evdev
 * codes + 8 on X11 and Wayland, modifiers included (Right Alt 108, Left Win 133), so the host key is
 * matched by position and keys follow their position, not the host's layout (the guest applies its own).  Host
 * auto-repeat is dropped: the guest keyboard repeats by itself.  Letting go releases in the guest
 * every key and button still down, so nothing sticks.
 *
 * Mouse: the PS/2 mouse only knows motion.  While the guest has no absolute pointing device, a click
 * captures the pointer (a grab with a hidden cursor); each motion is sent as a delta and the pointer
 * is warped back to the centre of the screen, so it never runs into the edge.  With an absolute
 * device, positions are sent as they are and nothing is captured.
 */
#include <string.h>

#include "console-int.h"

#define LOG_COMPONENT "console"

static void input_apply_grab(struct console *c)
{
    GdkWindow *win = c->area ? gtk_widget_get_window(c->area) : NULL;
    if (!win)
        return;
    GdkDisplay *display = gdk_window_get_display(win);
    GdkSeat *seat = gdk_display_get_default_seat(display);
    if (!seat)
        return;
    gdk_seat_ungrab(seat);
    if (!c->kbd_captured && !c->mouse_captured)
        return;
    GdkSeatCapabilities caps = GDK_SEAT_CAPABILITY_NONE;
    if (c->kbd_captured)
        caps |= GDK_SEAT_CAPABILITY_KEYBOARD;
    if (c->mouse_captured)
        caps |= GDK_SEAT_CAPABILITY_ALL_POINTING;
    GdkCursor *blank = c->mouse_captured ? gdk_cursor_new_for_display(display, GDK_BLANK_CURSOR) : NULL;
    GdkGrabStatus st = gdk_seat_grab(seat, win, caps, FALSE, blank, NULL, NULL, NULL);
    if (blank)
        g_object_unref(blank);
    /* Another program may hold a grab: input still flows while the window has focus. */
    if (st != GDK_GRAB_SUCCESS)
        LOG_DEBUG("grabbing the %s failed (status %d)", c->mouse_captured ? "keyboard and mouse" : "keyboard", (int)st);
}

static void input_warp_centre(struct console *c)
{
    GdkWindow *win = gtk_widget_get_window(c->area);
    if (!win)
        return;
    int ox = 0, oy = 0;
    gdk_window_get_origin(win, &ox, &oy);
    c->warp_x = ox + gtk_widget_get_allocated_width(c->area) / 2;
    c->warp_y = oy + gtk_widget_get_allocated_height(c->area) / 2;
    GdkSeat *seat = gdk_display_get_default_seat(gdk_window_get_display(win));
    GdkDevice *pointer = seat ? gdk_seat_get_pointer(seat) : NULL;
    if (pointer)
        gdk_device_warp(pointer, gdk_window_get_screen(win), c->warp_x, c->warp_y);
}

void console_input_capture_keyboard(struct console *c)
{
    if (c->kbd_captured || c->close_dialog_open)
        return;
    c->kbd_captured = true;
    input_apply_grab(c);
    console_update_status(c);
}

static void input_capture_mouse(struct console *c)
{
    c->kbd_captured = true;
    c->mouse_captured = true;
    input_apply_grab(c);
    input_warp_centre(c);
    console_update_status(c);
}

void console_input_release(struct console *c)
{
    uint32_t codes[CONSOLE_KEYSET_SIZE];
    size_t n = console_keyset_take(&c->keys, codes, RT_ARRAY_SIZE(codes));
    for (size_t i = 0; i < n; i++)
        inp_key(c->vm, codes[i], false);
    if (c->buttons) {
        c->buttons = 0;
        if (c->mouse_captured)
            inp_pointer_rel(c->vm, 0, 0, 0, 0);
    }
    bool was = c->kbd_captured || c->mouse_captured;
    c->kbd_captured = c->mouse_captured = false;
    c->scroll_acc = 0;
    if (was)
        input_apply_grab(c);
    console_update_status(c);
}

void console_input_send_combo(struct console *c, enum console_combo combo, unsigned fn)
{
    uint32_t codes[8];
    bool down[8];
    size_t n = console_combo_keys(combo, fn, codes, down);
    for (size_t i = 0; i < n; i++) {
        int rc = inp_key(c->vm, codes[i], down[i]);
        if (rc) {
            console_error_dialog(c, "The keys could not be sent",
                                 rc == VERR_NOT_FOUND ? "This machine has no keyboard, so there is nothing to send "
                                                        "them to."
                                                      : rt_err_str(rc));
            return;
        }
    }
}

/*
 * The key's symbol with no modifier held: in many layouts Right Alt is AltGr, so with it as the host key
 * the event's own keyval for H is another letter (ħ), and Host+H would do nothing.
 */
static guint input_plain_keyval(GtkWidget *widget, const GdkEventKey *ev)
{
    guint keyval = ev->keyval;
    GdkKeymap *km = gdk_keymap_get_for_display(gtk_widget_get_display(widget));
    if (!gdk_keymap_translate_keyboard_state(km, ev->hardware_keycode, 0, ev->group, &keyval, NULL, NULL, NULL))
        return ev->keyval;
    return keyval;
}

/* A key combined with the held host key: window commands, never seen by the guest. */
static void input_host_combo(struct console *c, guint keyval)
{
    switch (gdk_keyval_to_lower(keyval)) {
    case GDK_KEY_f:
        console_view_set_fullscreen(c, !c->fullscreen);
        break;
    case GDK_KEY_Delete:
    case GDK_KEY_KP_Delete:
        console_input_send_combo(c, CONSOLE_COMBO_CTRL_ALT_DEL, 0);
        break;
    case GDK_KEY_h:
        console_acpi_shutdown(c);
        break;
    case GDK_KEY_q:
        /* The same question as the window's close button. */
        console_ask_close(c);
        break;
    default:
        break;
    }
}

static gboolean input_key(GtkWidget *widget, GdkEventKey *ev, gpointer opaque)
{
    struct console *c = opaque;
    bool down = ev->type == GDK_KEY_PRESS;
    unsigned evdev = ev->hardware_keycode >= 8 ? ev->hardware_keycode - 8u : 0;
    if (evdev == c->host_key->evdev) {
        if (down && !c->host_down) {
            c->host_down = true;
            c->host_combo_used = false;
        } else if (!down && c->host_down) {
            c->host_down = false;
            if (!c->host_combo_used) {
                if (c->kbd_captured)
                    console_input_release(c);
                else
                    console_input_capture_keyboard(c);
            }
        }
        return TRUE;
    }
    if (c->host_down) {
        if (down) {
            c->host_combo_used = true;
            input_host_combo(c, input_plain_keyval(widget, ev));
            return TRUE;
        }
    }
    if (!c->kbd_captured)
        return FALSE; /* GTK's: menus, F11, dialogs */
    uint32_t keycode = inp_evdev_to_keycode(evdev);
    if (!keycode) {
        LOG_DEBUG("key with hardware code %u has no PC keycode; dropped", ev->hardware_keycode);
        return TRUE;
    }
    /* A release of a key the guest never saw pressed (pressed before capture) is dropped too. */
    int slot = console_keyset_slot(keycode);
    if (!down && slot >= 0 && !(c->keys.bits[slot >> 3] & (1u << (slot & 7))))
        return TRUE;
    if (!console_keyset_note(&c->keys, keycode, down))
        return TRUE;
    int rc = inp_key(c->vm, keycode, down);
    if ((rc == VERR_NOT_FOUND) != c->no_keyboard) {
        c->no_keyboard = rc == VERR_NOT_FOUND;
        console_update_status(c);
    }
    return TRUE;
}

static gboolean input_focus_in(GtkWidget *widget, GdkEventFocus *ev, gpointer opaque)
{
    console_input_capture_keyboard(opaque);
    return FALSE;
}

static gboolean input_focus_out(GtkWidget *widget, GdkEventFocus *ev, gpointer opaque)
{
    struct console *c = opaque;
    /* Our own grab moving focus is not the person leaving. */
    if (c->mouse_captured)
        return FALSE;
    console_input_release(c);
    return FALSE;
}

static unsigned button_bit(guint button)
{
    switch (button) {
    case 1: return INP_BUTTON_LEFT;
    case 2: return INP_BUTTON_MIDDLE;
    case 3: return INP_BUTTON_RIGHT;
    default: return 0;
    }
}

static void input_send_abs(struct console *c, double x, double y, int dz)
{
    unsigned gx, gy;
    console_view_to_guest(c, x, y, &gx, &gy);
    if (c->image_w && c->image_h)
        inp_pointer_abs(c->vm, gx, gy, c->image_w, c->image_h, dz, c->buttons);
}

static gboolean input_button(GtkWidget *widget, GdkEventButton *ev, gpointer opaque)
{
    struct console *c = opaque;
    if (ev->type != GDK_BUTTON_PRESS && ev->type != GDK_BUTTON_RELEASE)
        return TRUE; /* GTK's synthesized double and triple clicks */
    bool down = ev->type == GDK_BUTTON_PRESS;
    unsigned bit = button_bit(ev->button);
    bool absolute = inp_has_absolute(c->vm);
    if (down && !gtk_widget_has_focus(c->area))
        gtk_widget_grab_focus(c->area);
    if (down && !c->kbd_captured)
        console_input_capture_keyboard(c);
    if (!absolute && !c->mouse_captured) {
        /* The click that captures belongs to the window, not the guest. */
        if (down)
            input_capture_mouse(c);
        return TRUE;
    }
    if (!bit || (!down && !(c->buttons & bit)))
        return TRUE;
    if (down)
        c->buttons |= bit;
    else
        c->buttons &= ~bit;
    if (absolute)
        input_send_abs(c, ev->x, ev->y, 0);
    else
        inp_pointer_rel(c->vm, 0, 0, 0, c->buttons);
    return TRUE;
}

static gboolean input_motion(GtkWidget *widget, GdkEventMotion *ev, gpointer opaque)
{
    struct console *c = opaque;
    if (c->mouse_captured) {
        int sf = gtk_widget_get_scale_factor(c->area);
        int dx = (int)(ev->x_root - c->warp_x), dy = (int)(ev->y_root - c->warp_y);
        if (dx || dy) {
            inp_pointer_rel(c->vm, dx * sf, dy * sf, 0, c->buttons);
            input_warp_centre(c);
        }
    } else if (inp_has_absolute(c->vm)) {
        input_send_abs(c, ev->x, ev->y, 0);
    }
    return TRUE;
}

static gboolean input_scroll(GtkWidget *widget, GdkEventScroll *ev, gpointer opaque)
{
    struct console *c = opaque;
    bool absolute = inp_has_absolute(c->vm);
    if (!c->mouse_captured && !absolute)
        return TRUE;
    int dz = 0;
    switch (ev->direction) {
    case GDK_SCROLL_UP: dz = -1; break;
    case GDK_SCROLL_DOWN: dz = 1; break;
    case GDK_SCROLL_SMOOTH:
        /* Touchpads scroll in fractions: a notch of the wheel is 1.0. */
        c->scroll_acc += ev->delta_y;
        dz = (int)c->scroll_acc;
        c->scroll_acc -= dz;
        break;
    default: return TRUE;
    }
    if (!dz)
        return TRUE;
    if (absolute)
        input_send_abs(c, ev->x, ev->y, dz);
    else
        inp_pointer_rel(c->vm, 0, 0, dz, c->buttons);
    return TRUE;
}

void console_input_connect(struct console *c)
{
    /* On the window, so keys are seen before its shortcuts and mnemonics (the default handler runs last). */
    g_signal_connect(c->window, "key-press-event", G_CALLBACK(input_key), c);
    g_signal_connect(c->window, "key-release-event", G_CALLBACK(input_key), c);
    g_signal_connect(c->window, "focus-in-event", G_CALLBACK(input_focus_in), c);
    g_signal_connect(c->window, "focus-out-event", G_CALLBACK(input_focus_out), c);
    gtk_widget_add_events(c->area, GDK_BUTTON_PRESS_MASK | GDK_BUTTON_RELEASE_MASK | GDK_POINTER_MOTION_MASK |
                                       GDK_SCROLL_MASK | GDK_SMOOTH_SCROLL_MASK);
    g_signal_connect(c->area, "button-press-event", G_CALLBACK(input_button), c);
    g_signal_connect(c->area, "button-release-event", G_CALLBACK(input_button), c);
    g_signal_connect(c->area, "motion-notify-event", G_CALLBACK(input_motion), c);
    g_signal_connect(c->area, "scroll-event", G_CALLBACK(input_scroll), c);
}
