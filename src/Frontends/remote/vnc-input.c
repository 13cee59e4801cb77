/* vnc-input.c - VNC key and pointer events to the guest: X keysyms to PC keycodes on the machine's keyboard layout, Shift/AltGr as the layout needs them, and the pointer as absolute positions. */
/*
 * A VNC client sends keysyms (the character or function a key produced on the client), not key
 * positions.  Each character keysym is looked up on the layout the guest uses
 * (inp_keysym_to_keycode), which also says whether Shift or AltGr must be down for it; when the
 * modifiers the client holds differ, they are pressed or released around that one key and put
 * back, so '@' typed on a German client reaches a US guest as Shift+2.  Function keys (arrows,
 * F1..., keypad) keep whatever modifiers the client holds (Shift+arrow selects).  Modifier keys
 * are forwarded as themselves and remembered, as is every key down, so the key released is the
 * one pressed even when the release's keysym differs (Shift let go first), and everything a
 * client holds is released when it disconnects.
 *
 * All of this runs on the server thread; inp_* take the VM lock themselves.
 */
#include <string.h>

#include "vireo/err.h"
#include "vireo/input.h"
#include "vnc-internal.h"

#define LOG_COMPONENT "vnc"

/* PC keycodes of the modifiers (input.h: set 1 make codes, 0xE0 prefix as 0xE000). */
#define KC_LSHIFT 0x2au
#define KC_RSHIFT 0x36u
#define KC_ALTGR 0xe038u

/* Modifier and lock keysyms (X11 keysymdef.h values) to their keys, independent of the layout. */
static const struct {
    uint32_t keysym, keycode;
} vnc_modifier_keys[] = {
    { 0xffe1, KC_LSHIFT }, /* Shift_L */
    { 0xffe2, KC_RSHIFT }, /* Shift_R */
    { 0xffe3, 0x1d },      /* Control_L */
    { 0xffe4, 0xe01d },    /* Control_R */
    { 0xffe5, 0x3a },      /* Caps_Lock */
    { 0xffe7, 0xe05b },    /* Meta_L: the Windows key on most clients */
    { 0xffe8, 0xe05c },    /* Meta_R */
    { 0xffe9, 0x38 },      /* Alt_L */
    { 0xffea, 0xe038 },    /* Alt_R */
    { 0xffeb, 0xe05b },    /* Super_L */
    { 0xffec, 0xe05c },    /* Super_R */
    { 0xfe03, KC_ALTGR },  /* ISO_Level3_Shift (AltGr) */
    { 0xff7e, KC_ALTGR },  /* Mode_switch */
};

static uint32_t vnc_modifier_keycode(uint32_t keysym)
{
    for (size_t i = 0; i < sizeof(vnc_modifier_keys) / sizeof(vnc_modifier_keys[0]); i++)
        if (vnc_modifier_keys[i].keysym == keysym)
            return vnc_modifier_keys[i].keycode;
    return 0;
}

/* Characters (Latin-1 and the other legacy sets below 0xff00, Unicode keysyms) depend on Shift/AltGr. */
static bool vnc_keysym_is_char(uint32_t keysym)
{
    return keysym < 0xff00 || (keysym >= 0x01000000 && keysym <= 0x0110ffff);
}

static void vnc_send(struct vnc_client *c, uint32_t keycode, bool down)
{
    int rc = inp_key(c->srv->vm, keycode, down);
    if (rc == VERR_NOT_FOUND && !c->warned_no_keyboard) {
        LOG_WARN("this machine has no keyboard device; VNC key presses are dropped");
        c->warned_no_keyboard = true;
    }
}

static int vnc_held_find(const struct vnc_client *c, uint32_t keysym)
{
    for (unsigned i = 0; i < c->held_count; i++)
        if (c->held_keysym[i] == keysym)
            return (int)i;
    return -1;
}

static bool vnc_code_held(const struct vnc_client *c, uint32_t keycode)
{
    for (unsigned i = 0; i < c->held_count; i++)
        if (c->held_code[i] == keycode)
            return true;
    return false;
}

static void vnc_held_remove(struct vnc_client *c, unsigned i)
{
    c->held_count--;
    memmove(&c->held_keysym[i], &c->held_keysym[i + 1], (c->held_count - i) * sizeof(c->held_keysym[0]));
    memmove(&c->held_code[i], &c->held_code[i + 1], (c->held_count - i) * sizeof(c->held_code[0]));
}

static void vnc_held_add(struct vnc_client *c, uint32_t keysym, uint32_t keycode)
{
    /* A full table only costs the release on disconnect of the keys past it. */
    if (c->held_count < VNC_HELD_MAX) {
        c->held_keysym[c->held_count] = keysym;
        c->held_code[c->held_count] = keycode;
        c->held_count++;
    }
}

/* Presses a character key with exactly the Shift and AltGr state it needs, then restores the client's. */
static void vnc_press_char(struct vnc_client *c, uint32_t keycode, bool shift, bool altgr)
{
    bool lshift = vnc_code_held(c, KC_LSHIFT), rshift = vnc_code_held(c, KC_RSHIFT);
    bool shift_held = lshift || rshift, altgr_held = vnc_code_held(c, KC_ALTGR);
    if (shift && !shift_held)
        vnc_send(c, KC_LSHIFT, true);
    if (!shift && lshift)
        vnc_send(c, KC_LSHIFT, false);
    if (!shift && rshift)
        vnc_send(c, KC_RSHIFT, false);
    if (altgr && !altgr_held)
        vnc_send(c, KC_ALTGR, true);
    if (!altgr && altgr_held)
        vnc_send(c, KC_ALTGR, false);
    vnc_send(c, keycode, true);
    if (altgr && !altgr_held)
        vnc_send(c, KC_ALTGR, false);
    if (!altgr && altgr_held)
        vnc_send(c, KC_ALTGR, true);
    if (shift && !shift_held)
        vnc_send(c, KC_LSHIFT, false);
    if (!shift && lshift)
        vnc_send(c, KC_LSHIFT, true);
    if (!shift && rshift)
        vnc_send(c, KC_RSHIFT, true);
}

void vnc_input_key(rfbBool down, rfbKeySym keysym, rfbClientPtr cl)
{
    struct vnc_client *c = cl->clientData;
    if (!c)
        return;
    int held = vnc_held_find(c, keysym);
    if (!down) {
        if (held >= 0) {
            uint32_t code = c->held_code[held];
            vnc_held_remove(c, (unsigned)held);
            vnc_send(c, code, false);
        }
        /* A release of a key never pressed (or pressed before the table filled) is nothing to the guest. */
        return;
    }
    uint32_t code = vnc_modifier_keycode(keysym);
    if (code) {
        if (held < 0)
            vnc_held_add(c, keysym, code);
        vnc_send(c, code, true);
        return;
    }
    bool shift = false, altgr = false;
    code = inp_keysym_to_keycode(c->srv->opts.keymap, keysym, &shift, &altgr);
    if (!code) {
        if (!c->warned_unknown_key)
            LOG_INFO("keysym 0x%x has no key on the '%s' layout; ignored (logged once per client)", (unsigned)keysym,
                     c->srv->opts.keymap);
        c->warned_unknown_key = true;
        return;
    }
    if (held >= 0) {
        /* Auto-repeat from the client: another make of the same key, as a held key repeats. */
        code = c->held_code[held];
    } else {
        vnc_held_add(c, keysym, code);
    }
    if (vnc_keysym_is_char(keysym))
        vnc_press_char(c, code, shift, altgr);
    else
        vnc_send(c, code, true);
}

void vnc_input_release_all(struct vnc_client *c)
{
    while (c->held_count) {
        uint32_t code = c->held_code[c->held_count - 1];
        c->held_count--;
        inp_key(c->srv->vm, code, false);
    }
    if (c->last_buttons & 0x7)
        inp_pointer_rel(c->srv->vm, 0, 0, 0, 0);
    c->last_buttons = 0;
}

void vnc_input_pointer(int button_mask, int x, int y, rfbClientPtr cl)
{
    struct vnc_client *c = cl->clientData;
    struct vnc_server *srv = c ? c->srv : NULL;
    if (!c || !srv->fb_w || !srv->fb_h)
        return;
    /* RFB 7.5.5: bit 0 left, 1 middle, 2 right, 3 wheel up, 4 wheel down (a press per notch). */
    unsigned buttons = (button_mask & 1 ? INP_BUTTON_LEFT : 0) | (button_mask & 2 ? INP_BUTTON_MIDDLE : 0) |
                       (button_mask & 4 ? INP_BUTTON_RIGHT : 0);
    int pressed = button_mask & ~c->last_buttons;
    int dz = (pressed & 8 ? -1 : 0) + (pressed & 16 ? 1 : 0);
    c->last_buttons = button_mask;
    unsigned ux = x < 0 ? 0 : (unsigned)x >= srv->fb_w ? srv->fb_w - 1 : (unsigned)x;
    unsigned uy = y < 0 ? 0 : (unsigned)y >= srv->fb_h ? srv->fb_h - 1 : (unsigned)y;
    int rc = inp_pointer_abs(srv->vm, ux, uy, srv->fb_w, srv->fb_h, dz, buttons);
    if (rc == VERR_NOT_FOUND && !c->warned_no_mouse) {
        LOG_WARN("this machine has no mouse device; VNC pointer events are dropped");
        c->warned_no_mouse = true;
    }
}
