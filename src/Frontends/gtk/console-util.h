/* console-util.h - the console window's arithmetic without GTK: fitting the screen into the window, rectangles, key bookkeeping, key combinations and the host keys (unit-tested on their own). */
#ifndef VIREO_CONSOLE_UTIL_H
#define VIREO_CONSOLE_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Where the guest screen lands in the drawing area, in device pixels: device = guest * scale + origin. */
struct console_fit {
    double scale;
    double x, y;
};

/*
 * Fits a gw x gh screen into a dev_w x dev_h area (device pixels).  to_window: the largest size that keeps
 * the aspect ratio, centred; otherwise 1:1 at the top left (the scroller shows the rest), centred when the
 * area is larger.  A 0x0 screen or area gives scale 1 at the origin.
 */
void console_fit_compute(uint32_t gw, uint32_t gh, int dev_w, int dev_h, bool to_window, struct console_fit *out);
/* The guest pixel under device pixel (dx, dy), clamped to the screen; false when it lies outside it. */
bool console_fit_to_guest(const struct console_fit *fit, uint32_t gw, uint32_t gh, double dx, double dy, unsigned *gx,
                          unsigned *gy);

/* A rectangle in screen pixels (w == 0: empty). */
struct console_rect {
    uint32_t x, y, w, h;
};
/* Clips r to a width x height screen (any values, including ones that overflow when added); false when nothing is left. */
bool console_rect_clip(struct console_rect *r, uint32_t width, uint32_t height);
/* acc becomes the smallest rectangle holding acc and r (an empty acc becomes r). */
void console_rect_union(struct console_rect *acc, const struct console_rect *r);

/* Which PC keycodes are down, so a released capture can let go of them in the guest. */
#define CONSOLE_KEYSET_SIZE 512
struct console_keyset {
    uint8_t bits[CONSOLE_KEYSET_SIZE / 8];
};
/* The slot of a keycode: plain codes 0x01-0x7f and E0-prefixed ones; -1 for others (Pause has no release). */
int console_keyset_slot(uint32_t keycode);
/* Records a press or release; returns false for a press of a key already down (host auto-repeat). */
bool console_keyset_note(struct console_keyset *set, uint32_t keycode, bool down);
/* The keycodes down, at most max of them, and clears the set; returns how many. */
size_t console_keyset_take(struct console_keyset *set, uint32_t *codes, size_t max);

/* Key combinations the Input menu sends. */
enum console_combo {
    CONSOLE_COMBO_CTRL_ALT_DEL,
    CONSOLE_COMBO_CTRL_ALT_BACKSPACE,
    CONSOLE_COMBO_CTRL_ALT_FN, /* with fn 1..12 */
};
/*
 * The presses and releases of a combination in order: codes[i] with down[i].  Returns the count (6), or
 * 0 for an unknown combination or a function key outside 1..12.
 */
size_t console_combo_keys(enum console_combo combo, unsigned fn, uint32_t codes[8], bool down[8]);

/*
 * The keys that can be the host key, the one the console keeps for itself (release the capture, Host+H ...).
 * The manager's Preferences offer them and save the id as the global extra data "GUI/HostKey"; vireo-vm reads
 * it when it opens the window.  Right Ctrl, the first, is the default, as in VirtualBox.
 */
struct console_host_key {
    const char *id;   /* the saved value: "RightCtrl" */
    const char *name; /* what people read: "Right Ctrl" */
    unsigned evdev;   /* Linux input event code (KEY_RIGHTCTRL = 97); GDK's hardware keycode on X11 is this + 8 */
};
extern const struct console_host_key console_host_keys[];
extern const size_t console_host_key_count;
/*
 * The host key saved as id.  NULL or "" (nothing chosen) and unknown ids give Right Ctrl; *unknown (may be
 * NULL) says whether id was a value that is not in the table, so the caller can warn about it.
 */
const struct console_host_key *console_host_key_lookup(const char *id, bool *unknown);

#endif
