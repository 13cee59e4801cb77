/* vnc-internal.h - what the VNC server's files share: the server and per-client state. */
#ifndef VIREO_VNC_INTERNAL_H
#define VIREO_VNC_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <rfb/rfb.h>

#include "vireo/display.h"
#include "vireo/rt.h"
#include "remote.h"

/* Dirty rectangles kept between two passes of the server thread; more are merged into one. */
#define VNC_DIRTY_MAX 16
/* Keys one client may hold down at once that the server remembers (to release them when it goes). */
#define VNC_HELD_MAX 32

struct vnc_rect {
    uint32_t x, y, w, h;
};

struct vnc_server {
    struct vm *vm;
    struct vnc_options opts;       /* a copy; the password is ours */
    char address[64];              /* what was listened on */
    unsigned port;
    int listen_fd;
    rfbScreenInfoPtr screen;
    struct rt_thread *thread;
    atomic_bool stop;
    struct display *dpy;
    struct dpy_listener *listener;

    /*
     * The stage: the display listener's copy of the surface, written on the VM's event loop thread
     * (VM lock held) under lock, read by the server thread under lock.
     */
    struct rt_mutex lock;
    uint8_t *stage;                /* stage_w * stage_h * 4 bytes, XRGB8888 */
    uint32_t stage_w, stage_h;
    bool stage_resized;            /* the server thread must make a new framebuffer */
    struct vnc_rect dirty[VNC_DIRTY_MAX];
    unsigned dirty_count;

    /* The rfb framebuffer: touched only by the server thread (which also runs every rfb call). */
    uint8_t *fb;
    uint32_t fb_w, fb_h;
    unsigned client_count;
};

/* One connected viewer (rfbClientRec.clientData); lives on the server thread. */
struct vnc_client {
    struct vnc_server *srv;
    uint64_t connected_ns;         /* for the handshake deadline */
    uint32_t held_keysym[VNC_HELD_MAX];
    uint32_t held_code[VNC_HELD_MAX];
    unsigned held_count;
    int last_buttons;
    bool warned_no_keyboard, warned_no_mouse, warned_unknown_key;
};

/* vnc-input.c: rfb's input hooks (server thread) and the release of what a departing client held. */
void vnc_input_key(rfbBool down, rfbKeySym keysym, rfbClientPtr cl);
void vnc_input_pointer(int button_mask, int x, int y, rfbClientPtr cl);
void vnc_input_release_all(struct vnc_client *c);

#endif
