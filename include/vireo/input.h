/* input.h - keyboard and pointer input from the console window, VNC, RDP and the control socket to the guest's input devices, and the key code tables they share. */
#ifndef VIREO_INPUT_H
#define VIREO_INPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vireo/vm.h"

/*
 * Key codes: every front end speaks "PC keycodes", the scancode set 1 make code of a key, with 0xE0-
 * prefixed keys as 0xE000 | code (Right Ctrl 0xE01D, Left arrow 0xE04B) and Pause as 0xE11D45.  The
 * keyboard device (the i8042's PS/2 keyboard, src/Devices/Input) translates them to the scancode set
 * the guest selected, adds break codes and typematic repeat.  Sources:
 *  - GTK: GDK hardware keycodes on X11/Wayland are Linux evdev codes + 8: inp_evdev_to_keycode().
 *  - RDP: scancodes with an extended flag: already PC keycodes.
 *  - VNC: X keysyms: inp_keysym_to_keycode() for the layout the VM is configured with.
 *  - vireo-manage keyboardputscancode: raw set 1 bytes (inp_kbd_put_scancode_bytes).
 *
 * Pointer: the PS/2 mouse is relative only.  When no absolute device exists (inp_has_absolute), a
 * front end with absolute positions (VNC, RDP, an uncaptured GTK window) sends inp_pointer_abs and the
 * input core turns it into relative motion from the last position it sent.
 *
 * Threads: any thread; the functions take the VM lock.  With no keyboard or mouse device registered,
 * input is dropped and the functions return VERR_NOT_FOUND (callers tell the person why).
 */

#define INP_BUTTON_LEFT   0x01u
#define INP_BUTTON_RIGHT  0x02u
#define INP_BUTTON_MIDDLE 0x04u

/* A device registers itself from its construct (the i8042 for its keyboard and its mouse). */
struct inp_kbd_ops {
    void (*key)(void *opaque, uint32_t keycode, bool down);
    /* Raw set 1 bytes exactly as given (VBoxManage's keyboardputscancode), translated to the guest's set. */
    void (*raw)(void *opaque, const uint8_t *bytes, size_t len);
    /* LED state (bit 0 scroll, 1 num, 2 caps), for front ends that show or sync it. */
    unsigned (*leds)(void *opaque);
};
struct inp_mouse_ops {
    void (*rel)(void *opaque, int dx, int dy, int dz, unsigned buttons);
    /* NULL for relative-only devices; x, y in 0..0x7fff across the screen. */
    void (*abs)(void *opaque, unsigned x, unsigned y, int dz, unsigned buttons);
};
int inp_kbd_register(struct vm *vm, const struct inp_kbd_ops *ops, void *opaque);
int inp_mouse_register(struct vm *vm, const struct inp_mouse_ops *ops, void *opaque);
void inp_unregister(struct vm *vm, void *opaque); /* a device's destroy */

/* Front end side. */
int inp_key(struct vm *vm, uint32_t keycode, bool down);
int inp_kbd_put_scancode_bytes(struct vm *vm, const uint8_t *bytes, size_t len);
/* Types a string with the US layout (press and release per character, Shift where needed); characters
 * with no key on that layout give VERR_INVALID_PARAMETER before anything is typed. */
int inp_type_string(struct vm *vm, const char *utf8);
unsigned inp_kbd_leds(struct vm *vm);
int inp_pointer_rel(struct vm *vm, int dx, int dy, int dz, unsigned buttons);
/* x, y in pixels of a width x height screen. */
int inp_pointer_abs(struct vm *vm, unsigned x, unsigned y, unsigned width, unsigned height, int dz, unsigned buttons);
bool inp_has_absolute(struct vm *vm);

/* Tables (src/Devices/Input/keymap*.c). 0 when unknown. */
uint32_t inp_evdev_to_keycode(unsigned evdev_code);
/* layout: "us", "gb", "de", "fr", "es", "it", "ch", "se", "no", "dk", "fi", "pt", "be", "nl" ...: the
 * keysym's key on that layout, and whether Shift or AltGr must be down for it (the front end presses
 * them around the key when the client did not). */
uint32_t inp_keysym_to_keycode(const char *layout, uint32_t keysym, bool *shift, bool *altgr);

#endif
