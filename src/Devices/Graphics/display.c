/* display.c - the display pipeline: per-VM screens, the host surface, merged dirty rectangles, listeners and the refresh timer. */
/*
 * Design.  A display is the host side of one guest screen: an XRGB8888 surface that the graphics
 * device renders into when asked (dpy_gfx_ops.refresh), and the listeners (console window, VNC,
 * RDP) that want to hear what changed.  Everything in a display is guarded by the VM lock, the
 * same lock the device's register handlers run under, so a refresh never sees half a mode change
 * and a listener never sees half a frame.
 *
 * Refresh is driven by one host timer on the VM's event loop, armed only while listeners exist,
 * at the smallest interval any listener asked for.  Each tick refreshes the device once; the
 * rectangles it reports are merged into a short list (a bounding box when the list overflows) and
 * handed to each listener whose own interval has passed, so a slow client gets fewer, larger
 * updates and a fast one is not held back.  A new listener, a resize or dpy_invalidate makes the
 * next tick a full refresh; a new listener hears the size and gets the whole surface at the first
 * tick after it was added (on the loop thread, like every other callback).
 *
 * Threads.  Listeners come and go from any thread (the GTK thread, a VNC client's thread), but the
 * loop's timers may only be armed on the loop thread.  Adding a listener therefore queues a "kick"
 * with rt_evloop_call that arms the timer there.  The kick carries the display's serial number,
 * not its address, and looks it up in the registry, so a kick that outlives its display finds
 * nothing instead of freed memory.  Lock order: the VM lock, then the registry lock; nothing takes
 * the VM lock while holding the registry lock.
 *
 * Removal.  dpy_listener_remove takes the VM lock, so a tick running on the loop thread finishes
 * first, and no callback of that listener runs after it returns.  A listener removed from inside a
 * callback (same thread, the lock is recursive) is only marked during the tick and freed when the
 * tick ends.  dpy_destroy (device destruction: the loop is stopped by then) detaches the listeners
 * still attached; their handles stay valid until their owners call dpy_listener_remove, which then
 * only frees them.
 */
#include <stdlib.h>
#include <string.h>

#include "vireo/display.h"
#include "vireo/err.h"

#define LOG_COMPONENT "display"

/* The largest surface a device may ask for (16384x16384x4 bytes is 1 GiB). */
#define DPY_MAX_DIM 16384u
/* Rectangles kept per refresh before they collapse into their bounding box. */
#define DPY_RECTS_MAX 16
/* What a listener may ask for: from 1 ms (1 kHz) to 10 s between updates. */
#define DPY_INTERVAL_MIN_NS (1000ull * 1000ull)
#define DPY_INTERVAL_MAX_NS (10ull * 1000ull * 1000ull * 1000ull)

struct dpy_rect {
    uint32_t x, y, w, h;
};

struct dpy_rects {
    unsigned count;
    struct dpy_rect r[DPY_RECTS_MAX];
};

struct dpy_listener {
    struct display *dpy; /* NULL once removed or once the display is gone (registry lock) */
    const struct dpy_listener_ops *ops;
    void *opaque;
    uint64_t interval_ns;
    uint64_t due_ns;       /* host time of its next update */
    bool fresh;            /* not yet told the size nor given the whole surface */
    bool removed;          /* removed during a tick: skipped, freed when the tick ends */
    struct dpy_rects rects; /* changes not yet delivered */
    struct dpy_listener *next;
};

struct display {
    struct vm *vm;
    char *name;
    unsigned index;
    uint64_t serial;       /* what kicks carry instead of the pointer */
    const struct dpy_gfx_ops *ops;
    void *opaque;
    struct dpy_surface surface;
    struct dpy_rects dirty; /* reported by the device since the last tick */
    bool resized;          /* the size changed since the last tick */
    bool full_pending;     /* dpy_invalidate: the next refresh renders everything */
    bool in_tick;
    bool timer_active;     /* a kick is queued or the timer is armed */
    struct dpy_listener *listeners;
    struct rt_evtimer *timer; /* created by the first kick, on the loop thread */
    struct display *next;  /* registry */
};

static struct rt_mutex g_dpy_lock = { PTHREAD_MUTEX_INITIALIZER };
static struct display *g_displays;
static uint64_t g_dpy_serial;

/* ---- Rectangle lists ---------------------------------------------------------------------------- */

static uint64_t rect_area(const struct dpy_rect *r)
{
    return (uint64_t)r->w * r->h;
}

static struct dpy_rect rect_union(const struct dpy_rect *a, const struct dpy_rect *b)
{
    uint32_t x0 = RT_MIN(a->x, b->x), y0 = RT_MIN(a->y, b->y);
    uint32_t x1 = RT_MAX(a->x + a->w, b->x + b->w), y1 = RT_MAX(a->y + a->h, b->y + b->h);
    return (struct dpy_rect){ x0, y0, x1 - x0, y1 - y0 };
}

/*
 * Two rectangles become one when they touch or overlap and their union is not much larger than the
 * two together: a row of changed text cells merges into a line, two far corners of the screen do not.
 */
static bool rect_should_merge(const struct dpy_rect *a, const struct dpy_rect *b)
{
    if (a->x > b->x + b->w || b->x > a->x + a->w || a->y > b->y + b->h || b->y > a->y + a->h)
        return false;
    struct dpy_rect u = rect_union(a, b);
    uint64_t sum = rect_area(a) + rect_area(b);
    return rect_area(&u) <= sum + sum / 4;
}

static void rects_add(struct dpy_rects *s, struct dpy_rect a)
{
    if (!a.w || !a.h)
        return;
    for (unsigned i = 0; i < s->count;) {
        if (rect_should_merge(&a, &s->r[i])) {
            a = rect_union(&a, &s->r[i]);
            s->r[i] = s->r[--s->count];
            i = 0; /* the grown rectangle may now reach others */
        } else {
            i++;
        }
    }
    if (s->count < DPY_RECTS_MAX) {
        s->r[s->count++] = a;
        return;
    }
    for (unsigned i = 0; i < s->count; i++)
        a = rect_union(&a, &s->r[i]);
    s->r[0] = a;
    s->count = 1;
}

static void rects_set_full(struct dpy_rects *s, const struct dpy_surface *surface)
{
    s->count = 0;
    rects_add(s, (struct dpy_rect){ 0, 0, surface->width, surface->height });
}

/* ---- Registry ------------------------------------------------------------------------------------ */

int dpy_create(struct vm *vm, const char *name, const struct dpy_gfx_ops *ops, void *opaque, struct display **out)
{
    if (!vm || !name || !ops || !ops->refresh || !out)
        return VERR_INVALID_PARAMETER;
    struct display *dpy = calloc(1, sizeof(*dpy));
    char *copy = strdup(name);
    if (!dpy || !copy) {
        free(dpy);
        free(copy);
        return VERR_NO_MEMORY;
    }
    dpy->vm = vm;
    dpy->name = copy;
    dpy->ops = ops;
    dpy->opaque = opaque;
    rt_mutex_lock(&g_dpy_lock);
    unsigned index = 0;
    struct display **tail = &g_displays;
    for (; *tail; tail = &(*tail)->next)
        if ((*tail)->vm == vm)
            index++;
    dpy->index = index;
    dpy->serial = ++g_dpy_serial;
    *tail = dpy;
    rt_mutex_unlock(&g_dpy_lock);
    LOG_DEBUG("screen %u is '%s'", index, name);
    *out = dpy;
    return 0;
}

void dpy_destroy(struct display *dpy)
{
    if (!dpy)
        return;
    vm_lock(dpy->vm);
    rt_mutex_lock(&g_dpy_lock);
    for (struct display **p = &g_displays; *p; p = &(*p)->next) {
        if (*p == dpy) {
            *p = dpy->next;
            break;
        }
    }
    for (struct dpy_listener *l = dpy->listeners, *next; l; l = next) {
        next = l->next;
        l->dpy = NULL;
        l->next = NULL;
    }
    rt_mutex_unlock(&g_dpy_lock);
    dpy->listeners = NULL;
    rt_evtimer_destroy(dpy->timer);
    vm_unlock(dpy->vm);
    free(dpy->surface.pixels);
    free(dpy->name);
    free(dpy);
}

struct display *dpy_find(struct vm *vm, unsigned index)
{
    struct display *found = NULL;
    rt_mutex_lock(&g_dpy_lock);
    for (struct display *d = g_displays; d && !found; d = d->next)
        if (d->vm == vm && d->index == index)
            found = d;
    rt_mutex_unlock(&g_dpy_lock);
    return found;
}

const char *dpy_name(const struct display *dpy)
{
    return dpy ? dpy->name : NULL;
}

/* ---- Device side --------------------------------------------------------------------------------- */

int dpy_resize(struct display *dpy, uint32_t width, uint32_t height)
{
    if (!dpy)
        return VERR_INVALID_PARAMETER;
    if (width > DPY_MAX_DIM || height > DPY_MAX_DIM) {
        LOG_WARN("%s: refused a %ux%u surface (at most %ux%u)", dpy->name, width, height, DPY_MAX_DIM, DPY_MAX_DIM);
        return VERR_TOO_LARGE;
    }
    if (!width || !height)
        width = height = 0;
    struct dpy_surface *s = &dpy->surface;
    if (width == s->width && height == s->height) {
        /* A mode set to the same size still starts from a black screen. */
        if (s->pixels)
            memset(s->pixels, 0, (size_t)s->stride_bytes * s->height);
        rects_set_full(&dpy->dirty, s);
        return 0;
    }
    uint8_t *pixels = NULL;
    if (width) {
        pixels = calloc((size_t)height, (size_t)width * 4);
        if (!pixels)
            return VERR_NO_MEMORY;
    }
    free(s->pixels);
    s->pixels = pixels;
    s->width = width;
    s->height = height;
    s->stride_bytes = width * 4;
    dpy->resized = true;
    rects_set_full(&dpy->dirty, s);
    LOG_INFO("%s: %ux%u", dpy->name, width, height);
    return 0;
}

struct dpy_surface *dpy_surface_get(struct display *dpy)
{
    return dpy ? &dpy->surface : NULL;
}

void dpy_dirty(struct display *dpy, uint32_t x, uint32_t y, uint32_t w, uint32_t h)
{
    if (!dpy)
        return;
    const struct dpy_surface *s = &dpy->surface;
    if (x >= s->width || y >= s->height)
        return;
    w = RT_MIN(w, s->width - x);
    h = RT_MIN(h, s->height - y);
    rects_add(&dpy->dirty, (struct dpy_rect){ x, y, w, h });
}

/* ---- The refresh timer ----------------------------------------------------------------------------- */

static bool dpy_has_listeners(const struct display *dpy)
{
    for (const struct dpy_listener *l = dpy->listeners; l; l = l->next)
        if (!l->removed)
            return true;
    return false;
}

/* Hands a listener what it has not seen; the caller checks l->removed after each callback. */
static void dpy_deliver(struct display *dpy, struct dpy_listener *l, bool tell_size, uint64_t now_ns)
{
    const struct dpy_surface *s = &dpy->surface;
    if (tell_size && l->ops->resize) {
        l->ops->resize(l->opaque, s);
        if (l->removed)
            return;
    }
    struct dpy_rects pending = l->rects;
    l->rects.count = 0;
    l->due_ns = now_ns + l->interval_ns;
    for (unsigned i = 0; i < pending.count && !l->removed; i++)
        l->ops->update(l->opaque, s, pending.r[i].x, pending.r[i].y, pending.r[i].w, pending.r[i].h);
}

static void dpy_tick(void *opaque)
{
    struct display *dpy = opaque;
    vm_lock(dpy->vm);
    if (!dpy_has_listeners(dpy)) {
        dpy->timer_active = false;
        vm_unlock(dpy->vm);
        return;
    }
    dpy->in_tick = true;
    bool full = dpy->full_pending;
    for (struct dpy_listener *l = dpy->listeners; l; l = l->next)
        full |= l->fresh && !l->removed;
    dpy->full_pending = false;
    dpy->ops->refresh(dpy->opaque, dpy, full);
    if (full)
        rects_set_full(&dpy->dirty, &dpy->surface);
    bool resized = dpy->resized;
    dpy->resized = false;
    struct dpy_rects dirty = dpy->dirty;
    dpy->dirty.count = 0;

    uint64_t now_ns = rt_time_mono_ns(), interval_ns = DPY_INTERVAL_MAX_NS;
    for (struct dpy_listener *l = dpy->listeners; l; l = l->next) {
        if (l->removed)
            continue;
        bool tell_size = resized || (l->fresh && dpy->surface.width);
        if (tell_size || l->fresh) {
            rects_set_full(&l->rects, &dpy->surface);
        } else {
            for (unsigned i = 0; i < dirty.count; i++)
                rects_add(&l->rects, dirty.r[i]);
        }
        if (tell_size || l->fresh || now_ns >= l->due_ns) {
            l->fresh = false;
            dpy_deliver(dpy, l, tell_size, now_ns);
        }
    }
    /* Free what callbacks removed, and re-arm at the fastest remaining listener's pace. */
    for (struct dpy_listener **p = &dpy->listeners; *p;) {
        struct dpy_listener *l = *p;
        if (l->removed) {
            *p = l->next;
            free(l);
        } else {
            interval_ns = RT_MIN(interval_ns, l->interval_ns);
            p = &l->next;
        }
    }
    dpy->in_tick = false;
    if (dpy->listeners)
        rt_evtimer_arm(dpy->timer, now_ns + interval_ns);
    else
        dpy->timer_active = false;
    vm_unlock(dpy->vm);
}

/* On the loop thread: creates the timer on first use and runs a tick at once (a listener came). */
static void dpy_kick(void *opaque)
{
    uint64_t serial = (uintptr_t)opaque;
    struct display *dpy = NULL;
    rt_mutex_lock(&g_dpy_lock);
    for (struct display *d = g_displays; d && !dpy; d = d->next)
        if (d->serial == serial)
            dpy = d;
    rt_mutex_unlock(&g_dpy_lock);
    if (!dpy)
        return;
    vm_lock(dpy->vm);
    int rc = dpy->timer ? 0 : rt_evtimer_create(vm_get_evloop(dpy->vm), dpy_tick, dpy, &dpy->timer);
    if (rc) {
        LOG_ERR("%s: cannot create the refresh timer: %s; the screen's listeners get no updates", dpy->name,
                rt_err_str(rc));
        dpy->timer_active = false;
    } else if (dpy_has_listeners(dpy)) {
        rt_evtimer_arm(dpy->timer, rt_time_mono_ns());
    } else {
        rt_evtimer_cancel(dpy->timer);
        dpy->timer_active = false;
    }
    vm_unlock(dpy->vm);
}

/* ---- Listener side ------------------------------------------------------------------------------- */

int dpy_listener_add(struct display *dpy, const struct dpy_listener_ops *ops, void *opaque, uint64_t interval_ns,
                     struct dpy_listener **out)
{
    if (!dpy || !ops || !ops->update || !out)
        return VERR_INVALID_PARAMETER;
    if (interval_ns < DPY_INTERVAL_MIN_NS || interval_ns > DPY_INTERVAL_MAX_NS) {
        LOG_ERR("%s: a listener asked for updates every %llu ns (1 ms to 10 s allowed)", dpy->name,
                (unsigned long long)interval_ns);
        return VERR_OUT_OF_RANGE;
    }
    struct dpy_listener *l = calloc(1, sizeof(*l));
    if (!l)
        return VERR_NO_MEMORY;
    l->ops = ops;
    l->opaque = opaque;
    l->interval_ns = interval_ns;
    l->fresh = true;
    vm_lock(dpy->vm);
    /* Always kick: the timer may be idle, or armed at a slower pace than this listener wants. */
    int rc = rt_evloop_call(vm_get_evloop(dpy->vm), dpy_kick, (void *)(uintptr_t)dpy->serial);
    if (!rc) {
        dpy->timer_active = true;
        struct dpy_listener **tail = &dpy->listeners;
        while (*tail)
            tail = &(*tail)->next;
        *tail = l;
        rt_mutex_lock(&g_dpy_lock);
        l->dpy = dpy;
        rt_mutex_unlock(&g_dpy_lock);
    }
    vm_unlock(dpy->vm);
    if (rc) {
        free(l);
        return rc;
    }
    *out = l;
    return 0;
}

void dpy_listener_remove(struct dpy_listener *listener)
{
    if (!listener)
        return;
    rt_mutex_lock(&g_dpy_lock);
    struct display *dpy = listener->dpy;
    rt_mutex_unlock(&g_dpy_lock);
    if (!dpy) {
        free(listener);
        return;
    }
    struct vm *vm = dpy->vm;
    vm_lock(vm);
    rt_mutex_lock(&g_dpy_lock);
    listener->dpy = NULL;
    rt_mutex_unlock(&g_dpy_lock);
    if (dpy->in_tick) {
        /* Called from a callback of this very tick: the tick skips it from now on and frees it. */
        listener->removed = true;
    } else {
        for (struct dpy_listener **p = &dpy->listeners; *p; p = &(*p)->next) {
            if (*p == listener) {
                *p = listener->next;
                break;
            }
        }
        free(listener);
    }
    vm_unlock(vm);
}

void dpy_invalidate(struct display *dpy)
{
    if (!dpy)
        return;
    vm_lock(dpy->vm);
    dpy->full_pending = true;
    vm_unlock(dpy->vm);
}

/* ---- Snapshots ------------------------------------------------------------------------------------- */

int dpy_snapshot(struct display *dpy, struct dpy_surface *copy)
{
    if (!dpy || !copy)
        return VERR_INVALID_PARAMETER;
    memset(copy, 0, sizeof(*copy));
    vm_lock(dpy->vm);
    dpy->ops->refresh(dpy->opaque, dpy, true);
    if (!dpy_has_listeners(dpy)) {
        /* Nobody to tell; a listener added later gets the whole surface anyway. */
        dpy->dirty.count = 0;
        dpy->resized = false;
    }
    const struct dpy_surface *s = &dpy->surface;
    int rc = 0;
    if (!s->width || !s->height) {
        rc = VERR_INVALID_STATE;
    } else {
        size_t row = (size_t)s->width * 4;
        copy->pixels = malloc(row * s->height);
        if (!copy->pixels) {
            rc = VERR_NO_MEMORY;
        } else {
            for (uint32_t y = 0; y < s->height; y++)
                memcpy(copy->pixels + row * y, s->pixels + (size_t)s->stride_bytes * y, row);
            copy->width = s->width;
            copy->height = s->height;
            copy->stride_bytes = (uint32_t)row;
        }
    }
    vm_unlock(dpy->vm);
    return rc;
}
