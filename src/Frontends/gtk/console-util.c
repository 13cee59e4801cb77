/* console-util.c - the console window's arithmetic without GTK: fitting the screen into the window, rectangles, key bookkeeping, key combinations and the host keys. */
#include <string.h>

#include "console-util.h"

/* PC keycodes (scancode set 1 make codes) the combinations use. */
#define KC_LCTRL 0x1du
#define KC_LALT 0x38u
#define KC_BACKSPACE 0x0eu
#define KC_DELETE 0xe053u
#define KC_F1 0x3bu  /* F1..F10 are 0x3b..0x44 */
#define KC_F11 0x57u
#define KC_F12 0x58u

void console_fit_compute(uint32_t gw, uint32_t gh, int dev_w, int dev_h, bool to_window, struct console_fit *out)
{
    out->scale = 1.0;
    out->x = out->y = 0.0;
    if (gw == 0 || gh == 0 || dev_w <= 0 || dev_h <= 0)
        return;
    if (to_window) {
        double sx = (double)dev_w / gw, sy = (double)dev_h / gh;
        out->scale = sx < sy ? sx : sy;
    }
    double w = gw * out->scale, h = gh * out->scale;
    /* Centred in whatever room is left; a larger 1:1 screen starts at the top left and scrolls. */
    if (w < dev_w)
        out->x = (dev_w - w) / 2.0;
    if (h < dev_h)
        out->y = (dev_h - h) / 2.0;
}

static unsigned clamp_coord(double v, uint32_t size, bool *inside)
{
    if (v < 0.0) {
        *inside = false;
        return 0;
    }
    if (v >= (double)size) {
        *inside = false;
        return size - 1;
    }
    return (unsigned)v;
}

bool console_fit_to_guest(const struct console_fit *fit, uint32_t gw, uint32_t gh, double dx, double dy, unsigned *gx,
                          unsigned *gy)
{
    if (gw == 0 || gh == 0 || fit->scale <= 0.0) {
        *gx = *gy = 0;
        return false;
    }
    bool inside = true;
    *gx = clamp_coord((dx - fit->x) / fit->scale, gw, &inside);
    *gy = clamp_coord((dy - fit->y) / fit->scale, gh, &inside);
    return inside;
}

bool console_rect_clip(struct console_rect *r, uint32_t width, uint32_t height)
{
    if (r->x >= width || r->y >= height || r->w == 0 || r->h == 0) {
        r->w = r->h = 0;
        return false;
    }
    /* Compared as room left, so x + w never has to be computed (it may wrap). */
    if (r->w > width - r->x)
        r->w = width - r->x;
    if (r->h > height - r->y)
        r->h = height - r->y;
    return true;
}

void console_rect_union(struct console_rect *acc, const struct console_rect *r)
{
    if (r->w == 0 || r->h == 0)
        return;
    if (acc->w == 0 || acc->h == 0) {
        *acc = *r;
        return;
    }
    uint64_t x0 = acc->x < r->x ? acc->x : r->x, y0 = acc->y < r->y ? acc->y : r->y;
    uint64_t ax1 = (uint64_t)acc->x + acc->w, rx1 = (uint64_t)r->x + r->w;
    uint64_t ay1 = (uint64_t)acc->y + acc->h, ry1 = (uint64_t)r->y + r->h;
    uint64_t x1 = ax1 > rx1 ? ax1 : rx1, y1 = ay1 > ry1 ? ay1 : ry1;
    acc->x = (uint32_t)x0;
    acc->y = (uint32_t)y0;
    acc->w = (uint32_t)(x1 - x0 > UINT32_MAX ? UINT32_MAX : x1 - x0);
    acc->h = (uint32_t)(y1 - y0 > UINT32_MAX ? UINT32_MAX : y1 - y0);
}

int console_keyset_slot(uint32_t keycode)
{
    if (keycode >= 0x01 && keycode <= 0x7f)
        return (int)keycode;
    if (keycode >= 0xe001 && keycode <= 0xe07f)
        return 0x100 | (int)(keycode & 0xff);
    return -1;
}

bool console_keyset_note(struct console_keyset *set, uint32_t keycode, bool down)
{
    int slot = console_keyset_slot(keycode);
    if (slot < 0)
        return true;
    uint8_t bit = (uint8_t)(1u << (slot & 7));
    bool was_down = (set->bits[slot >> 3] & bit) != 0;
    if (down)
        set->bits[slot >> 3] |= bit;
    else
        set->bits[slot >> 3] &= (uint8_t)~bit;
    return !(down && was_down);
}

size_t console_keyset_take(struct console_keyset *set, uint32_t *codes, size_t max)
{
    size_t n = 0;
    for (int slot = 0; slot < CONSOLE_KEYSET_SIZE && n < max; slot++) {
        if (!(set->bits[slot >> 3] & (1u << (slot & 7))))
            continue;
        codes[n++] = slot & 0x100 ? 0xe000u | (uint32_t)(slot & 0xff) : (uint32_t)slot;
    }
    memset(set->bits, 0, sizeof(set->bits));
    return n;
}

size_t console_combo_keys(enum console_combo combo, unsigned fn, uint32_t codes[8], bool down[8])
{
    uint32_t key;
    switch (combo) {
    case CONSOLE_COMBO_CTRL_ALT_DEL: key = KC_DELETE; break;
    case CONSOLE_COMBO_CTRL_ALT_BACKSPACE: key = KC_BACKSPACE; break;
    case CONSOLE_COMBO_CTRL_ALT_FN:
        if (fn < 1 || fn > 12)
            return 0;
        key = fn <= 10 ? KC_F1 + (fn - 1) : fn == 11 ? KC_F11 : KC_F12;
        break;
    default: return 0;
    }
    /* Modifiers first, released last, as fingers do. */
    const uint32_t order[6] = { KC_LCTRL, KC_LALT, key, key, KC_LALT, KC_LCTRL };
    for (size_t i = 0; i < 6; i++) {
        codes[i] = order[i];
        down[i] = i < 3;
    }
    return 6;
}

/* Evdev codes from linux/input-event-codes.h; the ids and names are VirtualBox's wording. */
const struct console_host_key console_host_keys[] = {
    { "RightCtrl", "Right Ctrl", 97 }, { "LeftCtrl", "Left Ctrl", 29 }, { "RightAlt", "Right Alt", 100 },
    { "LeftAlt", "Left Alt", 56 },     { "LeftWin", "Left Win", 125 },  { "RightWin", "Right Win", 126 },
};
const size_t console_host_key_count = sizeof(console_host_keys) / sizeof(console_host_keys[0]);

const struct console_host_key *console_host_key_lookup(const char *id, bool *unknown)
{
    if (unknown)
        *unknown = false;
    if (!id || !*id)
        return &console_host_keys[0];
    for (size_t i = 0; i < console_host_key_count; i++)
        if (!strcmp(console_host_keys[i].id, id))
            return &console_host_keys[i];
    if (unknown)
        *unknown = true;
    return &console_host_keys[0];
}
