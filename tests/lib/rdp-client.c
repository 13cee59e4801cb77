/* rdp-client.c - a headless RDP client for the tests (FreeRDP's client library): logs in, counts the screen updates it gets for a while and describes the picture. */
/*
 * Usage: rdp-client HOST PORT USER PASSWORD SECONDS [MIN_COLOURS] [OUT.ppm]
 * MIN_COLOURS 0 is the display benchmark's frame count: once the first frame (a surface frame marker
 * pair) has come it prints "measuring", counts frames and surface-bits bytes for SECONDS, and prints
 * "frames N bytes B seconds S" before the usual last line.
 * Prints "connected WxH depth D", then once done "updates N size WxH colours K" (K: distinct colours
 * in the picture, capped at 1000).  It stops early once it has had updates and at least MIN_COLOURS
 * colours on the screen.  Exit status: 0 with at least one update (and MIN_COLOURS colours), 2 when the
 * connection or login failed, 3 when the picture never had enough colours, 4 when no update came.
 * Built by the tests with: cc rdp-client.c $(pkg-config --cflags --libs freerdp2 winpr2).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#pragma GCC diagnostic ignored "-Wattributes"
#include <freerdp/freerdp.h>
#include <freerdp/gdi/gdi.h>

struct client {
    rdpContext base;
    unsigned updates;
    unsigned long long frames, bytes;
};

static pSurfaceBits gdi_surface_bits;
static pSurfaceFrameMarker gdi_surface_frame_marker;

static BOOL count_surface_bits(rdpContext *context, const SURFACE_BITS_COMMAND *cmd)
{
    ((struct client *)context)->updates++;
    ((struct client *)context)->bytes += cmd->bmp.bitmapDataLength;
    return gdi_surface_bits(context, cmd);
}

static BOOL count_frame_marker(rdpContext *context, const SURFACE_FRAME_MARKER *marker)
{
    if (marker->frameAction == SURFACECMD_FRAMEACTION_END)
        ((struct client *)context)->frames++;
    return gdi_surface_frame_marker ? gdi_surface_frame_marker(context, marker) : TRUE;
}

static BOOL paint(rdpContext *context)
{
    return TRUE;
}

static BOOL desktop_resize(rdpContext *context)
{
    return gdi_resize(context->gdi, context->settings->DesktopWidth, context->settings->DesktopHeight);
}

static BOOL pre_connect(freerdp *instance)
{
    return TRUE;
}

static BOOL post_connect(freerdp *instance)
{
    if (!gdi_init(instance, PIXEL_FORMAT_BGRX32))
        return FALSE;
    gdi_surface_bits = instance->update->SurfaceBits;
    instance->update->SurfaceBits = count_surface_bits;
    gdi_surface_frame_marker = instance->update->SurfaceFrameMarker;
    instance->update->SurfaceFrameMarker = count_frame_marker;
    instance->update->BeginPaint = paint;
    instance->update->EndPaint = paint;
    instance->update->DesktopResize = desktop_resize;
    return TRUE;
}

static unsigned count_colours(rdpGdi *gdi)
{
    static uint32_t seen[1000];
    unsigned n = 0;
    for (int y = 0; y < gdi->height; y++) {
        for (int x = 0; x < gdi->width; x++) {
            uint32_t v;
            memcpy(&v, gdi->primary_buffer + (size_t)y * gdi->stride + (size_t)x * 4, 4);
            v &= 0xffffff;
            unsigned i = 0;
            while (i < n && seen[i] != v)
                i++;
            if (i == n) {
                if (n == 1000)
                    return n;
                seen[n++] = v;
            }
        }
    }
    return n;
}

static void write_ppm(rdpGdi *gdi, const char *path)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return;
    fprintf(f, "P6\n%d %d\n255\n", gdi->width, gdi->height);
    for (int y = 0; y < gdi->height; y++)
        for (int x = 0; x < gdi->width; x++) {
            const uint8_t *p = gdi->primary_buffer + (size_t)y * gdi->stride + (size_t)x * 4;
            fputc(p[2], f), fputc(p[1], f), fputc(p[0], f);
        }
    fclose(f);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: rdp-client HOST PORT USER PASSWORD SECONDS [MIN_COLOURS] [OUT.ppm]\n");
        return 1;
    }
    unsigned min_colours = argc > 6 ? (unsigned)atoi(argv[6]) : 1;
    freerdp *inst = freerdp_new();
    if (!inst)
        return 1;
    inst->ContextSize = sizeof(struct client);
    inst->PreConnect = pre_connect;
    inst->PostConnect = post_connect;
    if (!freerdp_context_new(inst))
        return 1;
    rdpSettings *s = inst->settings;
    freerdp_settings_set_string(s, FreeRDP_ServerHostname, argv[1]);
    s->ServerPort = (UINT32)atoi(argv[2]);
    freerdp_settings_set_string(s, FreeRDP_Username, argv[3]);
    freerdp_settings_set_string(s, FreeRDP_Password, argv[4]);
    s->IgnoreCertificate = TRUE;
    s->RdpSecurity = FALSE;
    s->TlsSecurity = TRUE;
    s->NlaSecurity = FALSE;
    s->DesktopWidth = 1024;
    s->DesktopHeight = 768;
    s->ColorDepth = 32;
    s->SoftwareGdi = TRUE;
    s->SurfaceFrameMarkerEnabled = TRUE;
    if (!freerdp_connect(inst)) {
        printf("connection failed\n");
        return 2;
    }
    rdpGdi *gdi = inst->context->gdi;
    printf("connected %dx%d depth %u\n", gdi->width, gdi->height, s->ColorDepth);
    fflush(stdout);
    struct client *c = (struct client *)inst->context;
    double end = now_s() + atof(argv[5]), next_count = 0, start = 0;
    unsigned colours = 0;
    bool frame_mode = min_colours == 0;
    while (now_s() < end) {
        HANDLE handles[64];
        DWORD n = freerdp_get_event_handles(inst->context, handles, 64);
        if (n == 0)
            break;
        WaitForMultipleObjects(n, handles, FALSE, 100);
        if (!freerdp_check_event_handles(inst->context)) {
            printf("the server ended the session\n");
            break;
        }
        if (frame_mode) {
            if (!start && c->frames) {
                start = now_s();
                end = start + atof(argv[5]);
                c->frames = c->bytes = 0;
                printf("measuring\n");
                fflush(stdout);
            }
            continue;
        }
        if (c->updates && now_s() >= next_count) {
            gdi = inst->context->gdi;
            colours = count_colours(gdi);
            next_count = now_s() + 0.5;
            if (colours >= min_colours)
                break;
        }
    }
    if (frame_mode)
        printf("frames %llu bytes %llu seconds %.2f\n", c->frames, c->bytes, start ? now_s() - start : 0.0);
    gdi = inst->context->gdi;
    colours = count_colours(gdi);
    printf("updates %u size %dx%d colours %u\n", c->updates, gdi->width, gdi->height, colours);
    if (argc > 7)
        write_ppm(gdi, argv[7]);
    freerdp_disconnect(inst);
    gdi_free(inst);
    freerdp_context_free(inst);
    freerdp_free(inst);
    return c->updates == 0 ? 4 : colours < min_colours ? 3 : 0;
}
