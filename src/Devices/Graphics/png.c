/* png.c - PNG screenshots of a display through libpng: 8-bit RGB into memory, and to a file written atomically. */
/*
 * libpng reports errors by calling an error function that must not return; ours logs libpng's
 * message and longjmps back to the encoder, which frees what it built and returns a VERR code, so
 * no libpng failure ever reaches the caller as anything but a status.  The image is written to a
 * growing buffer first; a file is then written in one go with rt_file_write_atomic (temporary
 * file, fsync, rename), so a screenshot file is complete or absent, never truncated.
 */
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include "vireo/display.h"
#include "vireo/err.h"

#define LOG_COMPONENT "png"

/* Larger than any surface dpy_resize accepts (16384x16384): refuses garbage dimensions. */
#define PNG_MAX_DIM 16384u

struct png_sink {
    uint8_t *data;
    size_t len, cap;
    int status;            /* the VERR code the error function longjmps with */
};

static void png_sink_write(png_structp png, png_bytep bytes, png_size_t count)
{
    struct png_sink *sink = png_get_io_ptr(png);
    if (count > sink->cap - sink->len) {
        size_t cap = sink->cap ? sink->cap : 64 * 1024;
        while (cap - sink->len < count) {
            if (cap > SIZE_MAX / 2) {
                sink->status = VERR_TOO_LARGE;
                png_error(png, "image too large for memory");
            }
            cap *= 2;
        }
        uint8_t *data = realloc(sink->data, cap);
        if (!data) {
            sink->status = VERR_NO_MEMORY;
            png_error(png, "out of memory");
        }
        sink->data = data;
        sink->cap = cap;
    }
    memcpy(sink->data + sink->len, bytes, count);
    sink->len += count;
}

static void png_sink_flush(png_structp png)
{
    (void)png;
}

static void png_on_error(png_structp png, png_const_charp msg)
{
    struct png_sink *sink = png_get_error_ptr(png);
    if (!sink->status)
        sink->status = VERR_GENERAL;
    LOG_ERR("cannot encode the screenshot: libpng: %s", msg);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    LOG_WARN("libpng: %s", msg);
}

int dpy_png_encode(const struct dpy_surface *surface, void **png_out, size_t *len_out)
{
    if (!surface || !png_out || !len_out || !surface->pixels)
        return VERR_INVALID_PARAMETER;
    uint32_t w = surface->width, h = surface->height;
    if (!w || !h || w > PNG_MAX_DIM || h > PNG_MAX_DIM || surface->stride_bytes < (uint64_t)w * 4)
        return VERR_INVALID_PARAMETER;
    /*
     * Nothing local changes between setjmp and a longjmp back to it: what the callbacks change lives
     * on the heap, so no variable needs to be volatile (C11 7.13.2.1).
     */
    struct png_sink *sink = calloc(1, sizeof(*sink));
    uint8_t *row = malloc((size_t)w * 3);
    png_structp png = sink && row ? png_create_write_struct(PNG_LIBPNG_VER_STRING, sink, png_on_error,
                                                            png_on_warning) : NULL;
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_write_struct(png ? &png : NULL, NULL);
        free(row);
        free(sink);
        return VERR_NO_MEMORY;
    }
    if (setjmp(png_jmpbuf(png))) {
        int rc = sink->status ? sink->status : VERR_GENERAL;
        png_destroy_write_struct(&png, &info);
        free(row);
        free(sink->data);
        free(sink);
        return rc;
    }
    png_set_write_fn(png, sink, png_sink_write, png_sink_flush);
    png_set_IHDR(png, info, w, h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (uint32_t y = 0; y < h; y++) {
        /* XRGB8888 is B, G, R, X in memory. */
        const uint8_t *src = surface->pixels + (size_t)surface->stride_bytes * y;
        uint8_t *dst = row;
        for (uint32_t x = 0; x < w; x++, src += 4, dst += 3) {
            dst[0] = src[2];
            dst[1] = src[1];
            dst[2] = src[0];
        }
        png_write_row(png, row);
    }
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(row);
    *png_out = sink->data;
    *len_out = sink->len;
    free(sink);
    return 0;
}

int dpy_screenshot_png_mem(struct display *dpy, void **png, size_t *len)
{
    if (!dpy || !png || !len)
        return VERR_INVALID_PARAMETER;
    struct dpy_surface copy;
    int rc = dpy_snapshot(dpy, &copy);
    if (rc)
        return rc;
    rc = dpy_png_encode(&copy, png, len);
    free(copy.pixels);
    return rc;
}

int dpy_screenshot_png(struct display *dpy, const char *path)
{
    if (!dpy || !path || !*path)
        return VERR_INVALID_PARAMETER;
    void *data = NULL;
    size_t len = 0;
    int rc = dpy_screenshot_png_mem(dpy, &data, &len);
    if (!rc) {
        rc = rt_file_write_atomic(path, data, len, 0644);
        if (rc)
            LOG_ERR("cannot write the screenshot to '%s': %s", path, rt_err_str(rc));
    }
    free(data);
    return rc;
}
