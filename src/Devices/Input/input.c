/* input.c - the input core: routes keyboard and pointer input from front ends to the VM's input devices. */

/*
 * Design: a small process-wide table, one entry per VM that has input devices, keyed by the VM
 * (the VM object has no slot for it, and devices must not know the front ends).  Devices register
 * from construct and unregister from destroy; front ends call inp_* from any thread.  The table has
 * its own mutex, taken only to find an entry; the device callbacks run under the VM lock, which
 * every inp_* takes first, so a device cannot be destroyed while it is being called (destroy runs
 * with the VM stopped, and unregistering takes the VM lock too).
 *
 * Absolute pointer positions on a relative-only mouse: the first position (and any after the
 * screen size changed) first sends a motion of twice the screen size toward the top left corner,
 * which parks the guest's pointer there, then moves to the position; later positions send the
 * difference to the last one.  Without pointer acceleration in the guest the two pointers agree.
 */
#include <stdlib.h>
#include <string.h>

#include "vireo/input.h"
#include "vireo/rt.h"

#define LOG_COMPONENT "input"

#define INP_MAX_MICE 4
#define INP_ABS_RANGE 0x7fffu
#define INPUT_KEY_LSHIFT 0x2au

struct inp_mouse_reg {
    const struct inp_mouse_ops *ops;
    void *opaque;
};

struct inp_vm {
    struct inp_vm *next;
    struct vm *vm;
    const struct inp_kbd_ops *kbd;
    void *kbd_opaque;
    struct inp_mouse_reg mice[INP_MAX_MICE];
    bool have_pos;                 /* abs -> rel: the last position sent */
    unsigned last_x, last_y, last_w, last_h;
};

static struct rt_mutex g_inp_lock = { PTHREAD_MUTEX_INITIALIZER };
static struct inp_vm *g_inp_list;

/* The VM's entry (creating it when create is set); call with g_inp_lock held. */
static struct inp_vm *entry_find(struct vm *vm, bool create)
{
    for (struct inp_vm *e = g_inp_list; e; e = e->next)
        if (e->vm == vm)
            return e;
    if (!create)
        return NULL;
    struct inp_vm *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    e->vm = vm;
    e->next = g_inp_list;
    g_inp_list = e;
    return e;
}

static struct inp_vm *entry_get(struct vm *vm)
{
    rt_mutex_lock(&g_inp_lock);
    struct inp_vm *e = entry_find(vm, false);
    rt_mutex_unlock(&g_inp_lock);
    return e;
}

int inp_kbd_register(struct vm *vm, const struct inp_kbd_ops *ops, void *opaque)
{
    if (!vm || !ops || !ops->key)
        return VERR_INVALID_PARAMETER;
    vm_lock(vm);
    rt_mutex_lock(&g_inp_lock);
    struct inp_vm *e = entry_find(vm, true);
    int rc = 0;
    if (!e) {
        rc = VERR_NO_MEMORY;
    } else if (e->kbd) {
        LOG_ERR("VM '%s' already has a keyboard; a second one is not supported", vm_get_name(vm));
        rc = VERR_ALREADY_EXISTS;
    } else {
        e->kbd = ops;
        e->kbd_opaque = opaque;
    }
    rt_mutex_unlock(&g_inp_lock);
    vm_unlock(vm);
    return rc;
}

int inp_mouse_register(struct vm *vm, const struct inp_mouse_ops *ops, void *opaque)
{
    if (!vm || !ops || (!ops->rel && !ops->abs))
        return VERR_INVALID_PARAMETER;
    vm_lock(vm);
    rt_mutex_lock(&g_inp_lock);
    struct inp_vm *e = entry_find(vm, true);
    int rc = e ? VERR_TOO_LARGE : VERR_NO_MEMORY;
    for (unsigned i = 0; e && i < INP_MAX_MICE; i++) {
        if (!e->mice[i].ops) {
            e->mice[i].ops = ops;
            e->mice[i].opaque = opaque;
            rc = 0;
            break;
        }
    }
    if (rc == VERR_TOO_LARGE)
        LOG_ERR("VM '%s' has %u pointing devices already", vm_get_name(vm), INP_MAX_MICE);
    rt_mutex_unlock(&g_inp_lock);
    vm_unlock(vm);
    return rc;
}

void inp_unregister(struct vm *vm, void *opaque)
{
    vm_lock(vm);
    rt_mutex_lock(&g_inp_lock);
    struct inp_vm **pp = &g_inp_list;
    while (*pp && (*pp)->vm != vm)
        pp = &(*pp)->next;
    struct inp_vm *e = *pp;
    if (e) {
        if (e->kbd_opaque == opaque)
            e->kbd = NULL, e->kbd_opaque = NULL;
        bool any = e->kbd != NULL;
        for (unsigned i = 0; i < INP_MAX_MICE; i++) {
            if (e->mice[i].ops && e->mice[i].opaque == opaque)
                e->mice[i].ops = NULL, e->mice[i].opaque = NULL;
            any |= e->mice[i].ops != NULL;
        }
        if (!any) {
            *pp = e->next;
            free(e);
        }
    }
    rt_mutex_unlock(&g_inp_lock);
    vm_unlock(vm);
}

/* ---- Keyboard ------------------------------------------------------------------------------- */

int inp_key(struct vm *vm, uint32_t keycode, bool down)
{
    if (!keycode)
        return VERR_INVALID_PARAMETER;
    vm_lock(vm);
    struct inp_vm *e = entry_get(vm);
    int rc = e && e->kbd ? 0 : VERR_NOT_FOUND;
    if (!rc)
        e->kbd->key(e->kbd_opaque, keycode, down);
    vm_unlock(vm);
    return rc;
}

int inp_kbd_put_scancode_bytes(struct vm *vm, const uint8_t *bytes, size_t len)
{
    if (!bytes && len)
        return VERR_INVALID_PARAMETER;
    vm_lock(vm);
    struct inp_vm *e = entry_get(vm);
    int rc = e && e->kbd && e->kbd->raw ? 0 : VERR_NOT_FOUND;
    if (!rc && len)
        e->kbd->raw(e->kbd_opaque, bytes, len);
    vm_unlock(vm);
    return rc;
}

unsigned inp_kbd_leds(struct vm *vm)
{
    vm_lock(vm);
    struct inp_vm *e = entry_get(vm);
    unsigned leds = e && e->kbd && e->kbd->leds ? e->kbd->leds(e->kbd_opaque) : 0;
    vm_unlock(vm);
    return leds;
}

/* The US layout's key for an ASCII character typed by inp_type_string (Return and Tab for \n and \t). */
static uint32_t char_key(uint32_t ch, bool *shift)
{
    bool altgr = false;
    *shift = false;
    if (ch == '\n')
        return inp_keysym_to_keycode("us", 0xff0d, shift, &altgr);
    if (ch == '\t')
        return inp_keysym_to_keycode("us", 0xff09, shift, &altgr);
    if (ch < 0x20 || ch > 0x7e)
        return 0;
    return inp_keysym_to_keycode("us", ch, shift, &altgr);
}

int inp_type_string(struct vm *vm, const char *utf8)
{
    if (!utf8)
        return VERR_INVALID_PARAMETER;
    /* Every character must have a key before the first one is typed. */
    for (const unsigned char *p = (const unsigned char *)utf8; *p; p++) {
        bool shift;
        if (!char_key(*p, &shift)) {
            LOG_INFO("cannot type character %#x: the US layout has no key for it", *p);
            return VERR_INVALID_PARAMETER;
        }
    }
    vm_lock(vm);
    struct inp_vm *e = entry_get(vm);
    int rc = e && e->kbd ? 0 : VERR_NOT_FOUND;
    for (const unsigned char *p = (const unsigned char *)utf8; !rc && *p; p++) {
        bool shift;
        uint32_t key = char_key(*p, &shift);
        if (shift)
            e->kbd->key(e->kbd_opaque, INPUT_KEY_LSHIFT, true);
        e->kbd->key(e->kbd_opaque, key, true);
        e->kbd->key(e->kbd_opaque, key, false);
        if (shift)
            e->kbd->key(e->kbd_opaque, INPUT_KEY_LSHIFT, false);
    }
    vm_unlock(vm);
    return rc;
}

/* ---- Pointer --------------------------------------------------------------------------------- */

static const struct inp_mouse_reg *mouse_find(struct inp_vm *e, bool absolute)
{
    for (unsigned i = 0; e && i < INP_MAX_MICE; i++)
        if (e->mice[i].ops && (absolute ? e->mice[i].ops->abs != NULL : e->mice[i].ops->rel != NULL))
            return &e->mice[i];
    return NULL;
}

int inp_pointer_rel(struct vm *vm, int dx, int dy, int dz, unsigned buttons)
{
    vm_lock(vm);
    struct inp_vm *e = entry_get(vm);
    const struct inp_mouse_reg *m = mouse_find(e, false);
    int rc = m ? 0 : VERR_NOT_FOUND;
    if (m) {
        m->ops->rel(m->opaque, dx, dy, dz, buttons);
        /* The guest's pointer moved by an amount we cannot follow: the next absolute event parks it again. */
        e->have_pos = false;
    }
    vm_unlock(vm);
    return rc;
}

int inp_pointer_abs(struct vm *vm, unsigned x, unsigned y, unsigned width, unsigned height, int dz, unsigned buttons)
{
    if (!width || !height || width > 65535 || height > 65535)
        return VERR_INVALID_PARAMETER;
    if (x >= width)
        x = width - 1;
    if (y >= height)
        y = height - 1;
    vm_lock(vm);
    struct inp_vm *e = entry_get(vm);
    const struct inp_mouse_reg *m = mouse_find(e, true);
    int rc = 0;
    if (m) {
        unsigned ax = (unsigned)(((uint64_t)x * INP_ABS_RANGE + (width - 1) / 2) / (width > 1 ? width - 1 : 1));
        unsigned ay = (unsigned)(((uint64_t)y * INP_ABS_RANGE + (height - 1) / 2) / (height > 1 ? height - 1 : 1));
        m->ops->abs(m->opaque, RT_MIN(ax, INP_ABS_RANGE), RT_MIN(ay, INP_ABS_RANGE), dz, buttons);
    } else if ((m = mouse_find(e, false))) {
        if (!e->have_pos || e->last_w != width || e->last_h != height) {
            m->ops->rel(m->opaque, -2 * (int)width, -2 * (int)height, 0, buttons);
            e->last_x = e->last_y = 0;
            e->last_w = width;
            e->last_h = height;
            e->have_pos = true;
        }
        m->ops->rel(m->opaque, (int)x - (int)e->last_x, (int)y - (int)e->last_y, dz, buttons);
        e->last_x = x;
        e->last_y = y;
    } else {
        rc = VERR_NOT_FOUND;
    }
    vm_unlock(vm);
    return rc;
}

bool inp_has_absolute(struct vm *vm)
{
    vm_lock(vm);
    bool has = mouse_find(entry_get(vm), true) != NULL;
    vm_unlock(vm);
    return has;
}
