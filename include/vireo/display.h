/* display.h - the display pipeline: a graphics device's screen as a host surface, its listeners (console window, VNC, RDP), dirty rectangles and PNG screenshots. */
#ifndef VIREO_DISPLAY_H
#define VIREO_DISPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vireo/vm.h"

/*
 * One struct display per guest screen (src/Devices/Graphics/display.c).  The graphics device
 * (VGA/VBE) owns the guest-visible state; the display owns the host surface, always 32 bits per
 * pixel XRGB8888 (in memory B, G, R, X), which the device renders into when asked (refresh), so
 * listeners never see guest formats, planes or text modes.
 *
 * Refresh: while at least one listener is attached, a host timer on the VM's event loop calls the
 * device's refresh() at the fastest listener's interval (e.g. 30-60 Hz) with the VM lock held.  The
 * device finds what changed from the memory dirty log of its video RAM (mem_region_dirty_fetch),
 * register writes and the text cursor blink, renders only that, and reports it with dpy_dirty().
 * The display merges the rectangles and calls each listener's update() once per refresh.  With no
 * listener nothing is rendered (a headless VM costs nothing).
 *
 * Threads: device and listener callbacks run on the event loop thread with the VM lock held; the
 * surface pointer is valid only during a callback (a listener on another thread - the GTK window -
 * copies what it needs).  dpy_screenshot_* may be called from any thread (they take the VM lock).
 */

struct display; /* opaque */

struct dpy_surface {
    uint32_t width, height;  /* pixels; 0x0 when the device shows nothing (disabled) */
    uint32_t stride_bytes;   /* bytes per row, >= width * 4 */
    uint8_t *pixels;         /* XRGB8888 */
};

/* The graphics device's side. */
struct dpy_gfx_ops {
    /*
     * Brings the surface up to date: resize with dpy_resize when the mode changed, render what changed
     * into dpy_surface_get(), report it with dpy_dirty().  full: render everything (first refresh, a new
     * listener, a screenshot).
     */
    void (*refresh)(void *opaque, struct display *dpy, bool full);
};

/* Creates the VM's display (one per screen; index 0 is the primary).  Called from a device's construct. */
int dpy_create(struct vm *vm, const char *name, const struct dpy_gfx_ops *ops, void *opaque, struct display **out);
void dpy_destroy(struct display *dpy); /* NULL is fine */
/* The VM's screen number index, or NULL (a machine without a graphics device). */
struct display *dpy_find(struct vm *vm, unsigned index);
const char *dpy_name(const struct display *dpy);

/* Device side, inside refresh(): a new size (reallocates the surface, zeroed, and marks it all dirty). */
int dpy_resize(struct display *dpy, uint32_t width, uint32_t height);
struct dpy_surface *dpy_surface_get(struct display *dpy);
/* A changed rectangle (clipped to the surface). */
void dpy_dirty(struct display *dpy, uint32_t x, uint32_t y, uint32_t w, uint32_t h);

/* Listener side. */
struct dpy_listener_ops {
    /* The surface changed size (also called once when the listener is added, if the size is not 0x0). */
    void (*resize)(void *opaque, const struct dpy_surface *surface);
    /* A rectangle changed (after resize: the whole surface). */
    void (*update)(void *opaque, const struct dpy_surface *surface, uint32_t x, uint32_t y, uint32_t w, uint32_t h);
};
struct dpy_listener; /* opaque */
/* interval_ns: how often this listener wants updates (e.g. 33 ms); the display refreshes at the smallest. */
int dpy_listener_add(struct display *dpy, const struct dpy_listener_ops *ops, void *opaque, uint64_t interval_ns,
                     struct dpy_listener **out);
void dpy_listener_remove(struct dpy_listener *listener); /* NULL is fine; no callback runs after it returns */
/* Asks for a full refresh at the next tick (a client that lost its copy). */
void dpy_invalidate(struct display *dpy);

/* A fully rendered snapshot of the screen (a copy: caller frees pixels).  VERR_INVALID_STATE when 0x0. */
int dpy_snapshot(struct display *dpy, struct dpy_surface *copy);
/* PNG screenshots through libpng (8-bit RGB): to a file (written atomically) or to memory (malloc'ed). */
int dpy_screenshot_png(struct display *dpy, const char *path);
int dpy_screenshot_png_mem(struct display *dpy, void **png, size_t *len);
/* Encodes any XRGB8888 surface as PNG in memory (tests, benchmarks). */
int dpy_png_encode(const struct dpy_surface *surface, void **png, size_t *len);

#endif
