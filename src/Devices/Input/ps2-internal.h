/* ps2-internal.h - the i8042's two PS/2 devices (keyboard, mouse) as the controller sees them, and their byte queues. */
#ifndef VIREO_PS2_INTERNAL_H
#define VIREO_PS2_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vireo/vm.h"

/* A device's output buffer toward the controller (the keyboard's is 16 bytes on IBM's keyboards). */
#define PS2_QUEUE_BYTES 16
struct ps2_queue {
    uint8_t data[PS2_QUEUE_BYTES];
    uint8_t head, count;
};
void ps2_queue_clear(struct ps2_queue *q);
unsigned ps2_queue_room(const struct ps2_queue *q);
/* false (and nothing stored) when full. */
bool ps2_queue_put(struct ps2_queue *q, uint8_t byte);
/* The next byte, or -1 when empty. */
int ps2_queue_get(struct ps2_queue *q);
void ps2_queue_save(const struct ps2_queue *q, struct ssm *ssm);
int ps2_queue_load(struct ps2_queue *q, struct ssm *ssm);

/* Called when a device has new bytes for the controller (host input, typematic repeat). */
typedef void ps2_notify_fn(void *opaque);

/*
 * Host key events wait here until their bytes fit into the 16-byte queue, so typing a string or a
 * burst of VNC input is never cut short by the guest draining one byte per interrupt.
 */
#define PS2KBD_EVENTS 4096

struct ps2kbd {
    struct vm *vm;
    struct tm_timer *repeat;
    ps2_notify_fn *notify;
    void *notify_opaque;
    struct ps2_queue reply; /* command responses go before scancodes */
    struct ps2_queue q;     /* scancodes */
    uint8_t set;            /* 1, 2 or 3 */
    bool scanning;          /* F4 enabled / F5 disabled */
    uint8_t leds;
    uint8_t typematic;      /* F3 byte: bits 0-4 rate, 5-6 delay */
    uint8_t pending;        /* a command waiting for its argument (ED, F0, F3), or 0 */
    uint8_t last_sent;      /* for FE resend */
    uint32_t repeat_key;    /* the held key that repeats, or 0 */
    uint32_t ev[PS2KBD_EVENTS]; /* keycode | PS2KBD_EV_DOWN | PS2KBD_EV_RAW */
    unsigned ev_head, ev_count;
    unsigned ev_dropped;
    uint8_t raw_prefix;     /* inp raw bytes: 0xE0 seen, or E1 sequence position */
    uint8_t raw_e1;
};
#define PS2KBD_EV_DOWN 0x80000000u
#define PS2KBD_EV_RAW  0x40000000u
#define PS2KBD_EV_CODE 0x00ffffffu

int ps2kbd_init(struct ps2kbd *k, struct vm *vm, ps2_notify_fn *notify, void *opaque);
void ps2kbd_fini(struct ps2kbd *k);
void ps2kbd_reset(struct ps2kbd *k);
/* A byte from the controller (the guest's write to port 0x60). */
void ps2kbd_write(struct ps2kbd *k, uint8_t byte);
/* The next byte toward the controller, or -1. */
int ps2kbd_read(struct ps2kbd *k);
/* A PC keycode (input.h) pressed or released by a front end. */
void ps2kbd_key(struct ps2kbd *k, uint32_t keycode, bool down);
/* Raw set 1 bytes (keyboardputscancode): parsed into keys, typed without typematic repeat. */
void ps2kbd_raw(struct ps2kbd *k, const uint8_t *bytes, size_t len);
unsigned ps2kbd_leds(const struct ps2kbd *k);
void ps2kbd_save(struct ps2kbd *k, struct ssm *ssm);
int ps2kbd_load(struct ps2kbd *k, struct ssm *ssm);
/* The 8042's set 2 -> set 1 translation of one byte (0xF0, the break prefix, is the caller's). */
uint8_t ps2kbd_translate(uint8_t set2);

/* Mouse: movement waits here merged per button state, sent as packets when the queue has room. */
#define PS2MOUSE_EVENTS 64
struct ps2mouse_ev {
    int32_t dx, dy, dz; /* PS/2 sense: y up, z positive toward the user */
    uint8_t buttons;    /* bit 0 left, 1 right, 2 middle (packet order) */
};

struct ps2mouse {
    ps2_notify_fn *notify;
    void *notify_opaque;
    struct ps2_queue reply; /* command responses go before packets */
    struct ps2_queue q;     /* packets */
    bool enabled;       /* data reporting (F4) */
    bool remote;        /* remote mode (F0) instead of stream mode */
    bool wrap;          /* wrap (echo) mode */
    bool scale21;       /* 2:1 scaling (E7) */
    uint8_t rate;       /* samples per second */
    uint8_t resolution; /* 0-3: 1, 2, 4, 8 counts/mm */
    uint8_t id;         /* 0 standard, 3 IntelliMouse (wheel) */
    uint8_t knock[3];   /* the last three sample rates set, newest last */
    uint8_t pending;    /* a command waiting for its argument (F3, E8), or 0 */
    uint8_t last_sent;
    uint8_t buttons;    /* current buttons, for remote-mode reads and status */
    struct ps2mouse_ev ev[PS2MOUSE_EVENTS];
    unsigned ev_head, ev_count;
};

void ps2mouse_init(struct ps2mouse *m, ps2_notify_fn *notify, void *opaque);
void ps2mouse_reset(struct ps2mouse *m);
void ps2mouse_write(struct ps2mouse *m, uint8_t byte);
int ps2mouse_read(struct ps2mouse *m);
/* Relative motion from a front end: screen sense (dy positive down), dz positive toward the user. */
void ps2mouse_move(struct ps2mouse *m, int dx, int dy, int dz, unsigned inp_buttons);
void ps2mouse_save(struct ps2mouse *m, struct ssm *ssm);
int ps2mouse_load(struct ps2mouse *m, struct ssm *ssm);

#endif
