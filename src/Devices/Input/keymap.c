/* keymap.c - key code tables: Linux evdev codes and X keysyms (per keyboard layout) to PC keycodes. */

/*
 * Design: evdev codes 1-83 are the set 1 make codes of the same keys (Linux numbered them so);
 * the rest come from a table.  Keysyms split in two: keys whose symbol does not depend on the
 * layout (function keys, the keypad, modifiers, navigation, space) from one table, and the
 * 48 main-block keys that layouts redefine from keymap-layouts.c, decoded once into keysyms per
 * level.  A keysym found at level 1 needs Shift, at level 2 AltGr; a dead key maps to the key that
 * types it.  Latin-1 keysyms equal their code points; Unicode keysyms (0x01000000 + code point) and
 * EuroSign (0x20ac) are folded into code points before the lookup.
 */
#include <pthread.h>
#include <string.h>

#include "vireo/input.h"
#include "vireo/rt.h"
#include "keymap-internal.h"

#define LOG_COMPONENT "keymap"

#define KEYSYM_UNICODE 0x01000000u

/* ---- evdev --------------------------------------------------------------------------------- */

static const struct { uint16_t evdev; uint32_t keycode; } g_evdev[] = {
    { 86, 0x56 },     /* 102ND */
    { 87, 0x57 },     /* F11 */
    { 88, 0x58 },     /* F12 */
    { 89, 0x73 },     /* RO */
    { 90, 0x78 },     /* KATAKANA */
    { 91, 0x77 },     /* HIRAGANA */
    { 92, 0x79 },     /* HENKAN */
    { 93, 0x70 },     /* KATAKANAHIRAGANA */
    { 94, 0x7b },     /* MUHENKAN */
    { 95, 0x5c },     /* KPJPCOMMA */
    { 96, 0xe01c },   /* KPENTER */
    { 97, 0xe01d },   /* RIGHTCTRL */
    { 98, 0xe035 },   /* KPSLASH */
    { 99, 0xe037 },   /* SYSRQ (Print Screen) */
    { 100, 0xe038 },  /* RIGHTALT (AltGr) */
    { 102, 0xe047 },  /* HOME */
    { 103, 0xe048 },  /* UP */
    { 104, 0xe049 },  /* PAGEUP */
    { 105, 0xe04b },  /* LEFT */
    { 106, 0xe04d },  /* RIGHT */
    { 107, 0xe04f },  /* END */
    { 108, 0xe050 },  /* DOWN */
    { 109, 0xe051 },  /* PAGEDOWN */
    { 110, 0xe052 },  /* INSERT */
    { 111, 0xe053 },  /* DELETE */
    { 113, 0xe020 },  /* MUTE */
    { 114, 0xe02e },  /* VOLUMEDOWN */
    { 115, 0xe030 },  /* VOLUMEUP */
    { 116, 0xe05e },  /* POWER */
    { 117, 0x59 },    /* KPEQUAL */
    { 119, 0xe11d45 }, /* PAUSE */
    { 121, 0x7e },    /* KPCOMMA */
    { 124, 0x7d },    /* YEN */
    { 125, 0xe05b },  /* LEFTMETA */
    { 126, 0xe05c },  /* RIGHTMETA */
    { 127, 0xe05d },  /* COMPOSE (Menu) */
    { 128, 0xe068 },  /* STOP */
    { 140, 0xe021 },  /* CALC */
    { 142, 0xe05f },  /* SLEEP */
    { 143, 0xe063 },  /* WAKEUP */
    { 155, 0xe06c },  /* MAIL */
    { 156, 0xe066 },  /* BOOKMARKS */
    { 157, 0xe06b },  /* COMPUTER */
    { 158, 0xe06a },  /* BACK */
    { 159, 0xe069 },  /* FORWARD */
    { 163, 0xe019 },  /* NEXTSONG */
    { 164, 0xe022 },  /* PLAYPAUSE */
    { 165, 0xe010 },  /* PREVIOUSSONG */
    { 166, 0xe024 },  /* STOPCD */
    { 172, 0xe032 },  /* HOMEPAGE */
    { 173, 0xe067 },  /* REFRESH */
    { 183, 0x64 }, { 184, 0x65 }, { 185, 0x66 }, { 186, 0x67 }, { 187, 0x68 }, { 188, 0x69 }, /* F13-F18 */
    { 189, 0x6a }, { 190, 0x6b }, { 191, 0x6c }, { 192, 0x6d }, { 193, 0x6e }, { 194, 0x76 }, /* F19-F24 */
    { 217, 0xe065 },  /* SEARCH */
    { 226, 0xe06d },  /* MEDIA */
};

uint32_t inp_evdev_to_keycode(unsigned evdev_code)
{
    /* 84 is unassigned in evdev; 1-83 equal the set 1 codes. */
    if (evdev_code >= 1 && evdev_code <= 83)
        return evdev_code;
    for (size_t i = 0; i < RT_ARRAY_SIZE(g_evdev); i++)
        if (g_evdev[i].evdev == evdev_code)
            return g_evdev[i].keycode;
    return 0;
}

/* ---- Keysyms every layout shares ------------------------------------------------------------ */

static const struct { uint32_t keysym; uint32_t keycode; bool shift; } g_keysym_fixed[] = {
    { 0x0020, 0x39 },   /* space */
    { 0xff08, 0x0e },   /* BackSpace */
    { 0xff09, 0x0f },   /* Tab */
    { 0xfe20, 0x0f, true }, /* ISO_Left_Tab: Shift+Tab */
    { 0xff0d, 0x1c },   /* Return */
    { 0xff13, 0xe11d45 }, /* Pause */
    { 0xff14, 0x46 },   /* Scroll_Lock */
    { 0xff15, 0x54 },   /* Sys_Req */
    { 0xff1b, 0x01 },   /* Escape */
    { 0xffff, 0xe053 }, /* Delete */
    { 0xff50, 0xe047 }, /* Home */
    { 0xff51, 0xe04b }, /* Left */
    { 0xff52, 0xe048 }, /* Up */
    { 0xff53, 0xe04d }, /* Right */
    { 0xff54, 0xe050 }, /* Down */
    { 0xff55, 0xe049 }, /* Prior */
    { 0xff56, 0xe051 }, /* Next */
    { 0xff57, 0xe04f }, /* End */
    { 0xff61, 0xe037 }, /* Print */
    { 0xff63, 0xe052 }, /* Insert */
    { 0xff67, 0xe05d }, /* Menu */
    { 0xff7e, 0xe038 }, /* Mode_switch */
    { 0xff7f, 0x45 },   /* Num_Lock */
    { 0xff8d, 0xe01c }, /* KP_Enter */
    { 0xff95, 0x47 }, { 0xff96, 0x4b }, { 0xff97, 0x48 }, { 0xff98, 0x4d }, { 0xff99, 0x50 }, /* KP_Home..KP_Down */
    { 0xff9a, 0x49 }, { 0xff9b, 0x51 }, { 0xff9c, 0x4f }, { 0xff9d, 0x4c }, { 0xff9e, 0x52 }, /* KP_Prior..KP_Insert */
    { 0xff9f, 0x53 },   /* KP_Delete */
    { 0xffaa, 0x37 },   /* KP_Multiply */
    { 0xffab, 0x4e },   /* KP_Add */
    { 0xffac, 0x53 },   /* KP_Separator */
    { 0xffad, 0x4a },   /* KP_Subtract */
    { 0xffae, 0x53 },   /* KP_Decimal */
    { 0xffaf, 0xe035 }, /* KP_Divide */
    { 0xffb0, 0x52 }, { 0xffb1, 0x4f }, { 0xffb2, 0x50 }, { 0xffb3, 0x51 }, { 0xffb4, 0x4b }, /* KP_0..KP_4 */
    { 0xffb5, 0x4c }, { 0xffb6, 0x4d }, { 0xffb7, 0x47 }, { 0xffb8, 0x48 }, { 0xffb9, 0x49 }, /* KP_5..KP_9 */
    { 0xffbd, 0x59 },   /* KP_Equal */
    { 0xffbe, 0x3b }, { 0xffbf, 0x3c }, { 0xffc0, 0x3d }, { 0xffc1, 0x3e }, { 0xffc2, 0x3f }, /* F1-F5 */
    { 0xffc3, 0x40 }, { 0xffc4, 0x41 }, { 0xffc5, 0x42 }, { 0xffc6, 0x43 }, { 0xffc7, 0x44 }, /* F6-F10 */
    { 0xffc8, 0x57 }, { 0xffc9, 0x58 }, /* F11, F12 */
    { 0xffe1, 0x2a },   /* Shift_L */
    { 0xffe2, 0x36 },   /* Shift_R */
    { 0xffe3, 0x1d },   /* Control_L */
    { 0xffe4, 0xe01d }, /* Control_R */
    { 0xffe5, 0x3a },   /* Caps_Lock */
    { 0xffe7, 0xe05b }, /* Meta_L */
    { 0xffe8, 0xe05c }, /* Meta_R */
    { 0xffe9, 0x38 },   /* Alt_L */
    { 0xffea, 0xe038 }, /* Alt_R */
    { 0xffeb, 0xe05b }, /* Super_L */
    { 0xffec, 0xe05c }, /* Super_R */
    { 0xfe03, 0xe038 }, /* ISO_Level3_Shift (AltGr) */
};

/* ---- Layout tables ---------------------------------------------------------------------------- */

/* Dead keysyms by their combining mark (X11 keysymdef.h: dead_grave 0xfe50 ...). */
static const struct { uint32_t mark; uint32_t keysym; } g_dead[] = {
    { 0x0300, 0xfe50 }, { 0x0301, 0xfe51 }, { 0x0302, 0xfe52 }, { 0x0303, 0xfe53 }, { 0x0304, 0xfe54 },
    { 0x0306, 0xfe55 }, { 0x0307, 0xfe56 }, { 0x0308, 0xfe57 }, { 0x030a, 0xfe58 }, { 0x030b, 0xfe59 },
    { 0x030c, 0xfe5a }, { 0x0327, 0xfe5b }, { 0x0328, 0xfe5c },
};

#define KEYMAP_MAX_LAYOUTS 32
/* Decoded symbols (keysym-space code points, dead keys as their keysyms; 0 for none). */
static uint32_t g_syms[KEYMAP_MAX_LAYOUTS][3][KEYMAP_KEYS];
static pthread_once_t g_decode_once = PTHREAD_ONCE_INIT;

/* The next UTF-8 code point of *p (advancing it), or 0 at the end or on a malformed sequence. */
static uint32_t utf8_next(const unsigned char **p)
{
    const unsigned char *s = *p;
    uint32_t cp;
    unsigned extra;
    if (!s[0])
        return 0;
    if (s[0] < 0x80)
        cp = s[0], extra = 0;
    else if ((s[0] & 0xe0) == 0xc0)
        cp = s[0] & 0x1f, extra = 1;
    else if ((s[0] & 0xf0) == 0xe0)
        cp = s[0] & 0x0f, extra = 2;
    else
        return 0;
    for (unsigned i = 1; i <= extra; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    *p = s + 1 + extra;
    return cp;
}

static uint32_t mark_to_keysym(uint32_t cp)
{
    for (size_t i = 0; i < RT_ARRAY_SIZE(g_dead); i++)
        if (g_dead[i].mark == cp)
            return g_dead[i].keysym;
    return cp;
}

static void decode_layouts(void)
{
    RT_ASSERT(g_keymap_layout_count <= KEYMAP_MAX_LAYOUTS);
    for (unsigned l = 0; l < g_keymap_layout_count; l++) {
        for (unsigned lv = 0; lv < 3; lv++) {
            const unsigned char *p = (const unsigned char *)g_keymap_layouts[l].level[lv];
            for (unsigned k = 0; p && k < KEYMAP_KEYS; k++) {
                uint32_t cp = utf8_next(&p);
                g_syms[l][lv][k] = cp == ' ' ? 0 : mark_to_keysym(cp);
            }
        }
    }
}

int keymap_layout_check(unsigned index, unsigned level)
{
    if (index >= g_keymap_layout_count || level >= 3)
        return -1;
    const unsigned char *p = (const unsigned char *)g_keymap_layouts[index].level[level];
    if (!p)
        return KEYMAP_KEYS;
    int n = 0;
    while (*p) {
        if (!utf8_next(&p))
            return -1;
        n++;
    }
    return n;
}

static int layout_index(const char *layout)
{
    for (unsigned i = 0; layout && i < g_keymap_layout_count; i++)
        if (!strcmp(g_keymap_layouts[i].name, layout))
            return (int)i;
    return -1;
}

uint32_t inp_keysym_to_keycode(const char *layout, uint32_t keysym, bool *shift, bool *altgr)
{
    bool dummy_shift, dummy_altgr;
    if (!shift)
        shift = &dummy_shift;
    if (!altgr)
        altgr = &dummy_altgr;
    *shift = *altgr = false;
    for (size_t i = 0; i < RT_ARRAY_SIZE(g_keysym_fixed); i++) {
        if (g_keysym_fixed[i].keysym == keysym) {
            *shift = g_keysym_fixed[i].shift;
            return g_keysym_fixed[i].keycode;
        }
    }
    /* Unicode keysyms of characters that also have a legacy keysym. */
    if (keysym > KEYSYM_UNICODE && keysym <= KEYSYM_UNICODE + 0x10ffff) {
        uint32_t cp = keysym - KEYSYM_UNICODE;
        if (cp <= 0xff || cp == 0x20ac)
            keysym = cp;
    }
    pthread_once(&g_decode_once, decode_layouts);
    int l = layout_index(layout);
    if (l < 0)
        l = layout_index("us");
    if (!keysym)
        return 0;
    /* The ISO key (last) only when no other key has the symbol: US keyboards often lack it. */
    for (unsigned pass = 0; pass < 2; pass++) {
        unsigned first = pass ? KEYMAP_KEYS - 1 : 0, end = pass ? KEYMAP_KEYS : KEYMAP_KEYS - 1;
        for (unsigned lv = 0; lv < 3; lv++) {
            for (unsigned k = first; k < end; k++) {
                if (g_syms[l][lv][k] == keysym) {
                    *shift = lv == 1;
                    *altgr = lv == 2;
                    return g_keymap_keys[k];
                }
            }
        }
    }
    return 0;
}
