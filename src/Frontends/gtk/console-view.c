/* console-view.c - the console window's screen: a display listener that copies the guest's screen, and the drawing area that shows it scaled to the window or 1:1, at device pixels on HiDPI screens. */
/*
 * Two copies, two sides.  The display listener runs on the VM's event-loop thread with the VM lock
 * held; it copies each changed rectangle into shadow (under c->lock) and queues one idle callback.
 * That callback, on the GTK thread, copies what changed from shadow into the cairo image the window
 * owns (again under c->lock, a memcpy only) and asks GTK to redraw that part.  Drawing then reads the
 * image without any lock, so a slow redraw never holds up the VM, and the VM never waits for more
 * than a copy.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "console-int.h"

#define LOG_COMPONENT "console"

/* ---- Listener side (event-loop thread, VM lock held) ---------------------------------------------- */

static gboolean view_flush(gpointer opaque);

static void queue_flush_locked(struct console *c)
{
    if (c->flush_queued || c->closing)
        return;
    c->flush_queued = true;
    g_idle_add_full(G_PRIORITY_DEFAULT, view_flush, c, NULL);
}

static void copy_rows(uint8_t *dst, size_t dst_stride, const uint8_t *src, size_t src_stride, uint32_t x, uint32_t y,
                      uint32_t w, uint32_t h)
{
    for (uint32_t row = 0; row < h; row++)
        memcpy(dst + (size_t)(y + row) * dst_stride + (size_t)x * 4, src + (size_t)(y + row) * src_stride + (size_t)x * 4,
               (size_t)w * 4);
}

/* Takes the whole surface (a new size, or one that does not match what the window holds). */
static void shadow_take_all_locked(struct console *c, const struct dpy_surface *s)
{
    uint32_t w = s->width, h = s->height;
    if (!s->pixels || s->stride_bytes < (uint64_t)w * 4)
        w = h = 0;
    if (w != c->shadow_w || h != c->shadow_h) {
        free(c->shadow);
        c->shadow = NULL;
        c->shadow_w = c->shadow_h = c->shadow_stride = 0;
        if (w && h) {
            c->shadow = malloc((size_t)w * 4 * h);
            if (!c->shadow) {
                LOG_ERR("no memory for a %ux%u copy of the screen; the window shows nothing", w, h);
                w = h = 0;
            }
        }
        c->shadow_w = w;
        c->shadow_h = h;
        c->shadow_stride = w * 4;
        c->shadow_resized = true;
    }
    if (c->shadow)
        copy_rows(c->shadow, c->shadow_stride, s->pixels, s->stride_bytes, 0, 0, w, h);
    c->pending = (struct console_rect){ 0, 0, w, h };
    queue_flush_locked(c);
}

static void view_resize(void *opaque, const struct dpy_surface *surface)
{
    struct console *c = opaque;
    rt_mutex_lock(&c->lock);
    shadow_take_all_locked(c, surface);
    rt_mutex_unlock(&c->lock);
}

static void view_update(void *opaque, const struct dpy_surface *surface, uint32_t x, uint32_t y, uint32_t w, uint32_t h)
{
    struct console *c = opaque;
    rt_mutex_lock(&c->lock);
    if (surface->width != c->shadow_w || surface->height != c->shadow_h || !c->shadow) {
        shadow_take_all_locked(c, surface);
    } else {
        struct console_rect r = { x, y, w, h };
        if (console_rect_clip(&r, c->shadow_w, c->shadow_h)) {
            copy_rows(c->shadow, c->shadow_stride, surface->pixels, surface->stride_bytes, r.x, r.y, r.w, r.h);
            console_rect_union(&c->pending, &r);
            queue_flush_locked(c);
        }
    }
    rt_mutex_unlock(&c->lock);
}

static const struct dpy_listener_ops g_view_listener = {
    .resize = view_resize,
    .update = view_update,
};

/* ---- GTK side ------------------------------------------------------------------------------------- */

/* The size the drawing area asks for: the screen at 1:1 in device pixels (nothing when scaled). */
static void view_size_request(struct console *c)
{
    int sf = gtk_widget_get_scale_factor(c->area);
    if (c->scale_to_window || !c->image)
        gtk_widget_set_size_request(c->area, 64, 48);
    else
        gtk_widget_set_size_request(c->area, (int)((c->image_w + sf - 1) / sf), (int)((c->image_h + sf - 1) / sf));
}

/* After a mode change: the window takes the screen's natural size, unless the person chose the size (full screen, maximized). */
static void view_fit_window(struct console *c)
{
    if (!c->image || c->fullscreen || !c->window)
        return;
    GdkWindow *gw = gtk_widget_get_window(c->window);
    if (gw && (gdk_window_get_state(gw) & (GDK_WINDOW_STATE_MAXIMIZED | GDK_WINDOW_STATE_FULLSCREEN)))
        return;
    int sf = gtk_widget_get_scale_factor(c->area);
    int w = (int)((c->image_w + sf - 1) / sf), h = (int)((c->image_h + sf - 1) / sf);
    int menu_h = 0, status_h = 0;
    if (c->menubar && gtk_widget_get_visible(c->menubar))
        gtk_widget_get_preferred_height(c->menubar, NULL, &menu_h);
    if (c->status_state) {
        GtkWidget *bar = gtk_widget_get_parent(c->status_state);
        if (bar && gtk_widget_get_visible(bar))
            gtk_widget_get_preferred_height(bar, NULL, &status_h);
    }
    /* Never larger than the work area of the monitor the window is on: scaling or scrollbars do the rest. */
    GdkDisplay *display = gtk_widget_get_display(c->window);
    GdkMonitor *mon = gw ? gdk_display_get_monitor_at_window(display, gw) : gdk_display_get_primary_monitor(display);
    if (!mon)
        mon = gdk_display_get_monitor(display, 0);
    if (mon) {
        GdkRectangle area;
        gdk_monitor_get_workarea(mon, &area);
        if (area.width > 0 && w > area.width)
            w = area.width;
        if (area.height > 0 && h + menu_h + status_h > area.height)
            h = area.height - menu_h - status_h;
    }
    if (w > 0 && h > 0)
        gtk_window_resize(GTK_WINDOW(c->window), w, h + menu_h + status_h);
}

/* Queues a redraw of screen rectangle r, mapped through the last fit (plus a pixel for the filter's reach). */
static void view_queue_rect(struct console *c, const struct console_rect *r)
{
    int sf = gtk_widget_get_scale_factor(c->area);
    double s = c->fit.scale / sf;
    double x0 = c->fit.x / sf + r->x * s, y0 = c->fit.y / sf + r->y * s;
    double x1 = x0 + r->w * s, y1 = y0 + r->h * s;
    int ix = (int)floor(x0) - 1, iy = (int)floor(y0) - 1;
    gtk_widget_queue_draw_area(c->area, ix, iy, (int)ceil(x1) + 1 - ix, (int)ceil(y1) + 1 - iy);
}

static gboolean view_flush(gpointer opaque)
{
    struct console *c = opaque;
    bool resized = false;
    struct console_rect r = { 0 };
    rt_mutex_lock(&c->lock);
    c->flush_queued = false;
    if (c->closing || !c->area) {
        rt_mutex_unlock(&c->lock);
        return G_SOURCE_REMOVE;
    }
    if (c->shadow_resized) {
        c->shadow_resized = false;
        resized = true;
        if (c->image)
            cairo_surface_destroy(c->image);
        c->image = NULL;
        c->image_w = c->image_h = 0;
        if (c->shadow) {
            cairo_surface_t *img = cairo_image_surface_create(CAIRO_FORMAT_RGB24, (int)c->shadow_w, (int)c->shadow_h);
            if (cairo_surface_status(img) == CAIRO_STATUS_SUCCESS) {
                c->image = img;
                c->image_w = c->shadow_w;
                c->image_h = c->shadow_h;
            } else {
                cairo_surface_destroy(img);
                LOG_ERR("cannot make a %ux%u image of the screen; the window shows nothing", c->shadow_w, c->shadow_h);
            }
        }
        c->pending = (struct console_rect){ 0, 0, c->image_w, c->image_h };
    }
    r = c->pending;
    c->pending = (struct console_rect){ 0 };
    if (c->image && console_rect_clip(&r, c->image_w, c->image_h)) {
        /* CAIRO_FORMAT_RGB24 is XRGB8888 in native byte order, the display's own format. */
        cairo_surface_flush(c->image);
        copy_rows(cairo_image_surface_get_data(c->image), (size_t)cairo_image_surface_get_stride(c->image), c->shadow,
                  c->shadow_stride, r.x, r.y, r.w, r.h);
        cairo_surface_mark_dirty_rectangle(c->image, (int)r.x, (int)r.y, (int)r.w, (int)r.h);
    }
    rt_mutex_unlock(&c->lock);
    if (resized) {
        LOG_INFO("screen %ux%u", c->image_w, c->image_h);
        view_size_request(c);
        view_fit_window(c);
        gtk_widget_queue_draw(c->area);
    } else if (r.w && r.h) {
        view_queue_rect(c, &r);
    }
    return G_SOURCE_REMOVE;
}

static gboolean view_draw(GtkWidget *widget, cairo_t *cr, gpointer opaque)
{
    struct console *c = opaque;
    int sf = gtk_widget_get_scale_factor(widget);
    int aw = gtk_widget_get_allocated_width(widget), ah = gtk_widget_get_allocated_height(widget);
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_paint(cr);
    if (!c->image) {
        console_fit_compute(0, 0, aw * sf, ah * sf, c->scale_to_window, &c->fit);
        return TRUE;
    }
    console_fit_compute(c->image_w, c->image_h, aw * sf, ah * sf, c->scale_to_window, &c->fit);
    cairo_save(cr);
    /* Device pixels: on a scale-2 monitor one guest pixel at 1:1 is one pixel of the monitor, not four. */
    cairo_scale(cr, 1.0 / sf, 1.0 / sf);
    cairo_translate(cr, c->fit.x, c->fit.y);
    cairo_scale(cr, c->fit.scale, c->fit.scale);
    cairo_set_source_surface(cr, c->image, 0, 0);
    cairo_pattern_set_filter(cairo_get_source(cr), c->fit.scale == 1.0 ? CAIRO_FILTER_NEAREST : CAIRO_FILTER_BILINEAR);
    cairo_rectangle(cr, 0, 0, c->image_w, c->image_h);
    cairo_fill(cr);
    cairo_restore(cr);
    c->frames_drawn++;
    return TRUE;
}

/* VIREO_CONSOLE_STATS: the draw callbacks that showed the screen, per second, for the display benchmark. */
static gboolean view_stats_tick(gpointer opaque)
{
    struct console *c = opaque;
    LOG_INFO("stats: %llu frames drawn in the last second, %llu in all",
             (unsigned long long)(c->frames_drawn - c->frames_logged), (unsigned long long)c->frames_drawn);
    c->frames_logged = c->frames_drawn;
    return G_SOURCE_CONTINUE;
}

static void view_scale_changed(GObject *obj, GParamSpec *pspec, gpointer opaque)
{
    struct console *c = opaque;
    view_size_request(c);
    gtk_widget_queue_draw(c->area);
}

GtkWidget *console_view_create(struct console *c)
{
    c->scale_to_window = true;
    c->scroller = gtk_scrolled_window_new(NULL, NULL);
    gtk_scrolled_window_set_policy(GTK_SCROLLED_WINDOW(c->scroller), GTK_POLICY_AUTOMATIC, GTK_POLICY_AUTOMATIC);
    gtk_scrolled_window_set_shadow_type(GTK_SCROLLED_WINDOW(c->scroller), GTK_SHADOW_NONE);
    gtk_widget_set_hexpand(c->scroller, TRUE);
    gtk_widget_set_vexpand(c->scroller, TRUE);
    c->area = gtk_drawing_area_new();
    gtk_widget_set_can_focus(c->area, TRUE);
    gtk_widget_set_size_request(c->area, 640, 480);
    g_signal_connect(c->area, "draw", G_CALLBACK(view_draw), c);
    g_signal_connect(c->area, "notify::scale-factor", G_CALLBACK(view_scale_changed), c);
    gtk_container_add(GTK_CONTAINER(c->scroller), c->area);
    const char *stats = getenv("VIREO_CONSOLE_STATS");
    if (stats && strcmp(stats, "0") != 0)
        c->stats_timer = g_timeout_add(1000, view_stats_tick, c);
    /* The listener reports the current size at once (on this thread): the window opens at the screen's size. */
    int rc = dpy_listener_add(c->dpy, &g_view_listener, c, CONSOLE_REFRESH_NS, &c->listener);
    if (rc)
        LOG_ERR("cannot follow the screen '%s': %s; the window stays black", dpy_name(c->dpy), rt_err_str(rc));
    return c->scroller;
}

void console_view_detach(struct console *c)
{
    /* Outside c->lock: a callback in flight may be waiting for it, and removal waits for the callback. */
    dpy_listener_remove(c->listener);
    c->listener = NULL;
}

void console_view_free(struct console *c)
{
    if (c->stats_timer) {
        /* The GTK thread has ended: nothing dispatches the timer any more. */
        g_source_remove(c->stats_timer);
        c->stats_timer = 0;
        LOG_INFO("stats: %llu frames drawn in all", (unsigned long long)c->frames_drawn);
    }
    if (c->image)
        cairo_surface_destroy(c->image);
    c->image = NULL;
    free(c->shadow);
    c->shadow = NULL;
}

void console_view_set_scale(struct console *c, bool to_window)
{
    if (c->scale_to_window == to_window)
        return;
    c->scale_to_window = to_window;
    view_size_request(c);
    view_fit_window(c);
    gtk_widget_queue_draw(c->area);
}

void console_view_set_fullscreen(struct console *c, bool fullscreen)
{
    if (!c->window)
        return;
    if (fullscreen)
        gtk_window_fullscreen(GTK_WINDOW(c->window));
    else
        gtk_window_unfullscreen(GTK_WINDOW(c->window));
}

bool console_view_to_guest(struct console *c, double x, double y, unsigned *gx, unsigned *gy)
{
    int sf = gtk_widget_get_scale_factor(c->area);
    return console_fit_to_guest(&c->fit, c->image_w, c->image_h, x * sf, y * sf, gx, gy);
}
