/* console-int.h - what the console window's files share: the window's state, split between the display listener's side (under a mutex) and the GTK thread's side. */
#ifndef VIREO_CONSOLE_INT_H
#define VIREO_CONSOLE_INT_H

#include <gtk/gtk.h>

#include "vireo/display.h"
#include "vireo/input.h"
#include "vireo/rt.h"
#include "console-util.h"
#include "console.h"

/* How often the window wants screen updates: 30 Hz. */
#define CONSOLE_REFRESH_NS (33u * 1000u * 1000u)

struct console {
    struct vm *vm;
    struct display *dpy;
    char *name;                       /* the machine's */
    char *title;                      /* "<name> - Vireo" */
    console_action_fn *action;
    void *action_opaque;
    const struct console_host_key *host_key; /* never NULL */
    struct rt_thread *thread;

    /* Start handshake: the thread says whether GTK came up. */
    struct rt_mutex start_lock;
    struct rt_cond start_cond;
    bool start_done;
    int start_rc;

    /*
     * The listener's side (event-loop thread, VM lock held) and the GTK side meet here, under lock: the
     * listener copies changed pixels into shadow and adds them to pending; an idle callback on the GTK
     * thread copies pending into image.  The listener never waits for drawing, only for a copy.
     */
    struct rt_mutex lock;
    struct dpy_listener *listener;
    uint8_t *shadow;
    uint32_t shadow_w, shadow_h, shadow_stride;
    bool shadow_resized;              /* a new size the GTK side has not taken yet */
    struct console_rect pending;      /* changed since the GTK side last copied */
    bool flush_queued;                /* an idle callback is on its way */
    bool closing;                     /* no more idle callbacks may be queued */

    /* GTK thread only. */
    GtkWidget *window, *menubar, *scroller, *area, *status_state, *status_hint;
    GtkWidget *item_pause, *item_fullscreen, *item_scale, *item_actual;
    cairo_surface_t *image;           /* the window's copy of the screen (CAIRO_FORMAT_RGB24 = XRGB8888) */
    uint32_t image_w, image_h;
    struct console_fit fit;           /* as last drawn */
    bool scale_to_window;
    bool fullscreen;
    bool quitting;
    bool close_dialog_open;
    guint state_timer;
    enum vm_state shown_state;

    /* Input (GTK thread only). */
    bool kbd_captured, mouse_captured;
    bool host_down, host_combo_used;
    struct console_keyset keys;
    unsigned buttons;
    double scroll_acc;
    int warp_x, warp_y;               /* root coordinates the captured pointer returns to */
    bool no_keyboard;                 /* the last key found no keyboard device */

    /* VIREO_CONSOLE_STATS=1 (kmk bench-display): frames drawn, logged every second and at exit. */
    guint stats_timer;
    uint64_t frames_drawn, frames_logged;
};

/* ---- console-view.c: the screen ---- */

/* Attaches the display listener and builds the drawing area (GTK thread). */
GtkWidget *console_view_create(struct console *c);
/* Detaches the display listener; callable from any thread, no callback runs after it. */
void console_view_detach(struct console *c);
void console_view_free(struct console *c);
void console_view_set_scale(struct console *c, bool to_window);
void console_view_set_fullscreen(struct console *c, bool fullscreen);
/* Maps a position in the drawing area (logical pixels) to the guest screen; false when outside it. */
bool console_view_to_guest(struct console *c, double x, double y, unsigned *gx, unsigned *gy);

/* ---- console-input.c: keyboard and mouse ---- */

void console_input_connect(struct console *c);
void console_input_capture_keyboard(struct console *c);
/* Lets go of keyboard and mouse: every key and button still down in the guest is released. */
void console_input_release(struct console *c);
void console_input_send_combo(struct console *c, enum console_combo combo, unsigned fn);

/* ---- console.c: the window ---- */

void console_update_status(struct console *c);
void console_error_dialog(struct console *c, const char *title, const char *message);
/* The close question: send ACPI shutdown, power off, or cancel. */
void console_ask_close(struct console *c);
/* Presses the machine's ACPI power button (Machine menu, Host+H, the close question). */
void console_acpi_shutdown(struct console *c);

#endif
