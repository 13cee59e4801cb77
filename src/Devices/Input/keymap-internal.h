/* keymap-internal.h - the keyboard layouts' data (keymap-layouts.c) as keymap.c reads it. */
#ifndef VIREO_KEYMAP_INTERNAL_H
#define VIREO_KEYMAP_INTERNAL_H

#include <stdint.h>

/*
 * The 48 keys of the main block whose symbols differ between layouts, in this order (PC keycodes):
 * the top row 0x29, 0x02-0x0d; 0x10-0x1b; 0x1e-0x28 and 0x2b; 0x2c-0x35; then the ISO key 0x56 (last,
 * so that a symbol it shares with another key is typed on that key).
 */
#define KEYMAP_KEYS 48
extern const uint8_t g_keymap_keys[KEYMAP_KEYS];

/*
 * A layout: per level (0 plain, 1 Shift, 2 AltGr) a UTF-8 string of exactly 48 characters, one per key
 * above; ' ' for no symbol.  Dead keys are written as the combining mark of their accent (U+0301 for
 * dead_acute ...).  NULL: the level has no symbols.
 */
struct keymap_layout {
    const char *name;
    const char *level[3];
};
extern const struct keymap_layout g_keymap_layouts[];
extern const unsigned g_keymap_layout_count;

/* For tests: how many symbols a level of layout index holds (48 when well formed; NULL counts as 48), or -1. */
int keymap_layout_check(unsigned index, unsigned level);

#endif
