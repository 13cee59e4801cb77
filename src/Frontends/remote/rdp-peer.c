/* rdp-peer.c - one RDP client: its FreeRDP peer settings, the login check, keyboard and mouse input, and the screen updates sent to it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <freerdp/input.h>
#include <freerdp/update.h>
#include <freerdp/codec/color.h>

#include "vireo/input.h"
#include "rdp-int.h"

#define LOG_COMPONENT "rdp"

/* The largest surface command sent at once (smaller when the client allows less). */
#define RDP_MAX_COMMAND_BYTES (1024u * 1024u)
/* What we offer the client as its largest reassembled update. */
#define RDP_MULTIFRAG_BYTES (8u * 1024u * 1024u)
/* The desktop shown before the guest has a screen. */
#define RDP_BLANK_WIDTH 640
#define RDP_BLANK_HEIGHT 480

/* FreeRDP allocates ContextSize bytes with rdpContext first: how a callback finds its peer. */
struct rdp_peer_context {
    rdpContext base;
    struct rdp_peer *peer;
};

static struct rdp_peer *rdp_peer_of(rdpContext *context)
{
    return ((struct rdp_peer_context *)context)->peer;
}

/* ---- Login ---------------------------------------------------------------------------------------- */

/* Compares without stopping at the first difference, so the time taken tells nothing. */
static bool rdp_secret_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char diff = la != lb;
    for (size_t i = 0; i < la; i++)
        diff |= (unsigned char)(a[i] ^ b[i % (lb ? lb : 1)]);
    return diff == 0;
}

/*
 * Called once the client info PDU (user name and password, TLS-protected) has arrived and before
 * the server sends its capabilities: the place to refuse a client before it sees anything.
 */
static BOOL rdp_peer_capabilities(freerdp_peer *client)
{
    struct rdp_peer *peer = rdp_peer_of(client->context);
    struct rdp_server *srv = peer->srv;
    rdpSettings *settings = client->settings;
    if (srv->password) {
        const char *user = settings->Username ? settings->Username : "";
        const char *password = settings->Password ? settings->Password : "";
        bool user_ok = rdp_secret_equal(user, srv->user);
        bool password_ok = rdp_secret_equal(password, srv->password);
        if (!user_ok || !password_ok) {
            peer->refused = true;
            if (!user_ok)
                LOG_WARN("RDP client from %s refused: unknown user '%.64s'", peer->host, user);
            else
                LOG_WARN("RDP client from %s refused: wrong password for user '%.64s'", peer->host, user);
            return FALSE;
        }
    }
    peer->logged_in = true;

    /* The desktop is the guest's screen; wait a little for the display's first frame. */
    rt_mutex_lock(&srv->fb_lock);
    uint64_t deadline = rt_time_mono_ns() + RT_NS_PER_SEC;
    while (srv->dpy && !srv->fb_width && rt_cond_wait_until(&srv->fb_cond, &srv->fb_lock, deadline) == 0) {
    }
    uint32_t w = srv->fb_width ? srv->fb_width : RDP_BLANK_WIDTH;
    uint32_t h = srv->fb_height ? srv->fb_height : RDP_BLANK_HEIGHT;
    rt_mutex_unlock(&srv->fb_lock);
    settings->DesktopWidth = w;
    settings->DesktopHeight = h;
    /* 8-bit clients would need a palette; 16 bits is the least we send. */
    if (settings->ColorDepth != 32 && settings->ColorDepth != 24 && settings->ColorDepth != 16 &&
        settings->ColorDepth != 15)
        settings->ColorDepth = 16;
    LOG_INFO("RDP client from %s logged in%s%s (%ux%u, %u bits per pixel)", peer->host,
             srv->password ? " as " : "", srv->password ? srv->user : "", w, h, settings->ColorDepth);
    return TRUE;
}

static BOOL rdp_peer_post_connect(freerdp_peer *client)
{
    struct rdp_peer *peer = rdp_peer_of(client->context);
    /* Capabilities is where the login is checked; a client that skipped it gets nothing. */
    return peer->logged_in ? TRUE : FALSE;
}

static BOOL rdp_peer_activate(freerdp_peer *client)
{
    struct rdp_peer *peer = rdp_peer_of(client->context);
    rdpSettings *settings = client->settings;
    if (!peer->logged_in)
        return FALSE;
    if (!settings->SurfaceCommandsEnabled) {
        LOG_ERR("RDP client from %s does not accept surface commands (RDP 7), the only way this server sends "
                "the screen; disconnecting it", peer->host);
        return FALSE;
    }
    peer->width = settings->DesktopWidth;
    peer->height = settings->DesktopHeight;
    peer->bpp = settings->ColorDepth;
    peer->activated = true;
    peer->output_suppressed = false;
    /* A (re)activated client has nothing on its screen: everything goes out again. */
    rt_mutex_lock(&peer->srv->fb_lock);
    rdp_peer_mark_all_locked(peer);
    rt_mutex_unlock(&peer->srv->fb_lock);
    return TRUE;
}

/* ---- Input ---------------------------------------------------------------------------------------- */

static void rdp_input_result(struct rdp_peer *peer, int rc, const char *what)
{
    if (rc && !peer->input_drop_logged) {
        peer->input_drop_logged = true;
        if (rc == VERR_NOT_FOUND)
            LOG_WARN("RDP %s input from %s dropped: the machine has no %s device", what, peer->host, what);
        else
            LOG_WARN("RDP %s input from %s dropped: %s", what, peer->host, rt_err_str(rc));
    }
}

static BOOL rdp_input_keyboard(rdpInput *input, UINT16 flags, UINT16 code)
{
    struct rdp_peer *peer = rdp_peer_of(input->context);
    if (!peer->activated)
        return TRUE;
    bool down = !(flags & KBD_FLAGS_RELEASE);
    /* Pause comes as E1 1D then 45: the 45 belongs to it, not to Num Lock. */
    if (peer->pause_pending && (code & 0xff) == 0x45 && !(flags & (KBD_FLAGS_EXTENDED | KBD_FLAGS_EXTENDED1))) {
        peer->pause_pending = false;
        return TRUE;
    }
    uint32_t keycode = rdp_scancode_to_keycode(flags, code);
    if (!keycode) {
        LOG_DEBUG("RDP key event flags 0x%04x code 0x%04x has no PC key", flags, code);
        return TRUE;
    }
    peer->pause_pending = keycode == 0xE11D45u;
    rdp_input_result(peer, inp_key(peer->srv->vm, keycode, down), "keyboard");
    return TRUE;
}

static BOOL rdp_input_unicode(rdpInput *input, UINT16 flags, UINT16 code)
{
    struct rdp_peer *peer = rdp_peer_of(input->context);
    if (!peer->activated || (flags & KBD_FLAGS_RELEASE))
        return TRUE;
    /* A UTF-16 unit typed with the US layout; surrogates and characters without a key are dropped. */
    char utf8[4] = { 0 };
    if (code < 0x80) {
        utf8[0] = (char)code;
    } else if (code < 0x800) {
        utf8[0] = (char)(0xc0 | (code >> 6));
        utf8[1] = (char)(0x80 | (code & 0x3f));
    } else if (code < 0xd800 || code > 0xdfff) {
        utf8[0] = (char)(0xe0 | (code >> 12));
        utf8[1] = (char)(0x80 | ((code >> 6) & 0x3f));
        utf8[2] = (char)(0x80 | (code & 0x3f));
    }
    if (!utf8[0] || inp_type_string(peer->srv->vm, utf8) != 0)
        LOG_DEBUG("RDP unicode key U+%04X from %s has no key on the US layout; dropped", code, peer->host);
    return TRUE;
}

static void rdp_pointer(struct rdp_peer *peer, unsigned x, unsigned y, int dz)
{
    /* Positions are the guest screen's pixels (a client that could not resize shows its top left part). */
    rt_mutex_lock(&peer->srv->fb_lock);
    unsigned w = peer->srv->fb_width ? peer->srv->fb_width : peer->width;
    unsigned h = peer->srv->fb_height ? peer->srv->fb_height : peer->height;
    rt_mutex_unlock(&peer->srv->fb_lock);
    w = w ? w : 1;
    h = h ? h : 1;
    x = RT_MIN(x, w - 1);
    y = RT_MIN(y, h - 1);
    rdp_input_result(peer, inp_pointer_abs(peer->srv->vm, x, y, w, h, dz, peer->buttons), "pointer");
}

static BOOL rdp_input_mouse(rdpInput *input, UINT16 flags, UINT16 x, UINT16 y)
{
    struct rdp_peer *peer = rdp_peer_of(input->context);
    if (!peer->activated)
        return TRUE;
    int dz = 0;
    if (flags & PTR_FLAGS_WHEEL) {
        /* Rotation in 1/120 notches; positive is away from the user, which PS/2 reports as negative Z. */
        int rotation = flags & 0xff;
        if (flags & PTR_FLAGS_WHEEL_NEGATIVE)
            rotation -= 0x100;
        int notches = rotation / 120;
        if (!notches)
            notches = rotation > 0 ? 1 : rotation < 0 ? -1 : 0;
        dz = -notches;
    } else if (!(flags & PTR_FLAGS_HWHEEL)) {
        unsigned bit = 0;
        if (flags & PTR_FLAGS_BUTTON1)
            bit = INP_BUTTON_LEFT;
        else if (flags & PTR_FLAGS_BUTTON2)
            bit = INP_BUTTON_RIGHT;
        else if (flags & PTR_FLAGS_BUTTON3)
            bit = INP_BUTTON_MIDDLE;
        if (bit && (flags & PTR_FLAGS_DOWN))
            peer->buttons |= bit;
        else if (bit)
            peer->buttons &= ~bit;
    }
    /* Wheel events carry no position in some clients: those keep the last one. */
    rdp_pointer(peer, x, y, dz);
    return TRUE;
}

static BOOL rdp_input_extended_mouse(rdpInput *input, UINT16 flags, UINT16 x, UINT16 y)
{
    /* Buttons 4 and 5 have no place on the PS/2 mouse; the position still counts. */
    struct rdp_peer *peer = rdp_peer_of(input->context);
    if (peer->activated)
        rdp_pointer(peer, x, y, 0);
    return TRUE;
}

static BOOL rdp_input_synchronize(rdpInput *input, UINT32 flags)
{
    /* Lock-key states: the guest keeps its own, toggled by the keys the client sends. */
    return TRUE;
}

static BOOL rdp_update_refresh_rect(rdpContext *context, BYTE count, const RECTANGLE_16 *areas)
{
    struct rdp_peer *peer = rdp_peer_of(context);
    rt_mutex_lock(&peer->srv->fb_lock);
    rdp_peer_mark_all_locked(peer);
    rt_mutex_unlock(&peer->srv->fb_lock);
    return TRUE;
}

static BOOL rdp_update_suppress_output(rdpContext *context, BYTE allow, const RECTANGLE_16 *area)
{
    struct rdp_peer *peer = rdp_peer_of(context);
    peer->output_suppressed = !allow;
    if (allow) {
        rt_mutex_lock(&peer->srv->fb_lock);
        rdp_peer_mark_all_locked(peer);
        rt_mutex_unlock(&peer->srv->fb_lock);
    }
    return TRUE;
}

/* ---- Screen updates ------------------------------------------------------------------------------- */

/* One row of XRGB8888 as the client's pixel format (FreeRDP's BGRA32, BGR24, RGB16, RGB15). */
static void rdp_convert_row(uint8_t *dst, const uint8_t *src, uint32_t w, unsigned bpp)
{
    switch (bpp) {
    case 32:
        for (uint32_t i = 0; i < w; i++, src += 4, dst += 4) {
            dst[0] = src[0], dst[1] = src[1], dst[2] = src[2], dst[3] = 0xff;
        }
        break;
    case 24:
        for (uint32_t i = 0; i < w; i++, src += 4, dst += 3) {
            dst[0] = src[0], dst[1] = src[1], dst[2] = src[2];
        }
        break;
    case 16:
        for (uint32_t i = 0; i < w; i++, src += 4, dst += 2) {
            uint16_t v = (uint16_t)(((src[2] >> 3) << 11) | ((src[1] >> 2) << 5) | (src[0] >> 3));
            dst[0] = (uint8_t)v, dst[1] = (uint8_t)(v >> 8);
        }
        break;
    default:
        for (uint32_t i = 0; i < w; i++, src += 4, dst += 2) {
            uint16_t v = (uint16_t)(((src[2] >> 3) << 10) | ((src[1] >> 3) << 5) | (src[0] >> 3));
            dst[0] = (uint8_t)v, dst[1] = (uint8_t)(v >> 8);
        }
        break;
    }
}

static bool rdp_buf_reserve(uint8_t **buf, size_t *size, size_t want)
{
    if (*size >= want)
        return true;
    uint8_t *b = realloc(*buf, want);
    if (!b)
        return false;
    *buf = b;
    *size = want;
    return true;
}

/* Sends rows [0, h) of the w-pixel-wide converted rectangle in peer->buf at (x, y), in commands the client accepts. */
static bool rdp_send_rect(struct rdp_peer *peer, uint32_t x, uint32_t y, uint32_t w, uint32_t h)
{
    freerdp_peer *client = peer->client;
    rdpUpdate *update = client->update;
    size_t bytes_pp = peer->bpp == 32 ? 4 : peer->bpp == 24 ? 3 : 2;
    size_t limit = RT_MIN((size_t)RDP_MAX_COMMAND_BYTES, (size_t)client->settings->MultifragMaxRequestSize);
    limit = limit > 1024 ? limit - 1024 : 1024; /* the PDU headers */
    uint32_t tile_w = (uint32_t)RT_MIN((size_t)w, RT_MAX((size_t)1, limit / bytes_pp));
    uint32_t tile_h = (uint32_t)RT_MAX((size_t)1, limit / (tile_w * bytes_pp));
    if (!rdp_buf_reserve(&peer->tile, &peer->tile_size, (size_t)tile_w * tile_h * bytes_pp))
        return false;
    SURFACE_FRAME_MARKER fm = { .frameAction = SURFACECMD_FRAMEACTION_BEGIN, .frameId = peer->frame_id };
    if (client->settings->SurfaceFrameMarkerEnabled && !update->SurfaceFrameMarker(update->context, &fm))
        return false;
    size_t src_stride = (size_t)w * bytes_pp;
    for (uint32_t ty = 0; ty < h; ty += tile_h) {
        uint32_t th = RT_MIN(tile_h, h - ty);
        for (uint32_t tx = 0; tx < w; tx += tile_w) {
            uint32_t tw = RT_MIN(tile_w, w - tx);
            size_t row_bytes = (size_t)tw * bytes_pp;
            /* Uncompressed surface bits are bottom-up. */
            for (uint32_t r = 0; r < th; r++)
                memcpy(peer->tile + (size_t)(th - 1 - r) * row_bytes,
                       peer->buf + (size_t)(ty + r) * src_stride + (size_t)tx * bytes_pp, row_bytes);
            SURFACE_BITS_COMMAND cmd = {
                .cmdType = CMDTYPE_SET_SURFACE_BITS,
                .destLeft = x + tx, .destTop = y + ty, .destRight = x + tx + tw, .destBottom = y + ty + th,
                .bmp = { .bpp = (BYTE)peer->bpp, .codecID = RDP_CODEC_ID_NONE, .width = (UINT16)tw,
                         .height = (UINT16)th, .bitmapDataLength = (UINT32)(row_bytes * th),
                         .bitmapData = peer->tile },
            };
            if (!update->SurfaceBits(update->context, &cmd))
                return false;
        }
    }
    fm.frameAction = SURFACECMD_FRAMEACTION_END;
    if (client->settings->SurfaceFrameMarkerEnabled && !update->SurfaceFrameMarker(update->context, &fm))
        return false;
    peer->frame_id++;
    return true;
}

/* Sends what changed since the last call, or starts a desktop resize; false: the client is gone. */
static bool rdp_peer_flush(struct rdp_peer *peer)
{
    struct rdp_server *srv = peer->srv;
    freerdp_peer *client = peer->client;
    rt_mutex_lock(&srv->fb_lock);
    uint32_t fw = srv->fb_width, fh = srv->fb_height;
    if (fw && fh && (fw != peer->width || fh != peer->height) && fw <= 0x7fff && fh <= 0x7fff) {
        rt_mutex_unlock(&srv->fb_lock);
        if (client->settings->DesktopResize) {
            /* The client deactivates and comes back through Activate with the new size. */
            client->settings->DesktopWidth = fw;
            client->settings->DesktopHeight = fh;
            peer->activated = false;
            LOG_INFO("RDP client from %s: desktop resized to %ux%u", peer->host, fw, fh);
            return client->update->DesktopResize(client->update->context) ? true : false;
        }
        if (!peer->resize_unsupported_logged) {
            peer->resize_unsupported_logged = true;
            LOG_WARN("RDP client from %s cannot resize its desktop; it shows the top left %ux%u of the %ux%u screen",
                     peer->host, peer->width, peer->height, fw, fh);
        }
        rt_mutex_lock(&srv->fb_lock);
    }
    if (!srv->fb && peer->dirty && !peer->output_suppressed) {
        /* No screen (no display adapter, or the guest turned it off): a black desktop, not stale pixels. */
        peer->dirty = false;
        rt_mutex_unlock(&srv->fb_lock);
        size_t bytes = (size_t)peer->width * peer->height * (peer->bpp == 32 ? 4 : peer->bpp == 24 ? 3 : 2);
        if (!rdp_buf_reserve(&peer->buf, &peer->buf_size, bytes))
            return false;
        memset(peer->buf, 0, bytes);
        return rdp_send_rect(peer, 0, 0, peer->width, peer->height);
    }
    if (!peer->dirty || !srv->fb || peer->output_suppressed) {
        rt_mutex_unlock(&srv->fb_lock);
        return true;
    }
    uint32_t x0 = peer->dx0, y0 = peer->dy0;
    uint32_t x1 = RT_MIN(RT_MIN(peer->dx1, fw), peer->width), y1 = RT_MIN(RT_MIN(peer->dy1, fh), peer->height);
    peer->dirty = false;
    if (x0 >= x1 || y0 >= y1) {
        rt_mutex_unlock(&srv->fb_lock);
        return true;
    }
    uint32_t w = x1 - x0, h = y1 - y0;
    size_t bytes_pp = peer->bpp == 32 ? 4 : peer->bpp == 24 ? 3 : 2;
    if (!rdp_buf_reserve(&peer->buf, &peer->buf_size, (size_t)w * h * bytes_pp)) {
        rt_mutex_unlock(&srv->fb_lock);
        LOG_ERR("no memory to send a %ux%u update to the RDP client from %s", w, h, peer->host);
        return false;
    }
    for (uint32_t r = 0; r < h; r++)
        rdp_convert_row(peer->buf + (size_t)r * w * bytes_pp, srv->fb + ((size_t)(y0 + r) * fw + x0) * 4, w, peer->bpp);
    peer->send_started_ns = rt_time_mono_ns();
    rt_mutex_unlock(&srv->fb_lock);
    bool ok = rdp_send_rect(peer, x0, y0, w, h);
    rt_mutex_lock(&srv->fb_lock);
    peer->send_started_ns = 0;
    rt_mutex_unlock(&srv->fb_lock);
    return ok;
}

/* ---- The client's thread ---------------------------------------------------------------------------- */

static BOOL rdp_context_new(freerdp_peer *client, rdpContext *context)
{
    return TRUE;
}

static void rdp_context_free(freerdp_peer *client, rdpContext *context)
{
}

static bool rdp_peer_setup(struct rdp_peer *peer)
{
    freerdp_peer *client = peer->client;
    client->ContextSize = sizeof(struct rdp_peer_context);
    client->ContextNew = rdp_context_new;
    client->ContextFree = rdp_context_free;
    if (!freerdp_peer_context_new(client))
        return false;
    ((struct rdp_peer_context *)client->context)->peer = peer;
    rdpSettings *s = client->settings;
    if (!freerdp_settings_set_string(s, FreeRDP_CertificateFile, peer->srv->crt_path) ||
        !freerdp_settings_set_string(s, FreeRDP_PrivateKeyFile, peer->srv->key_path) ||
        !freerdp_settings_set_string(s, FreeRDP_RdpKeyFile, peer->srv->key_path))
        return false;
    /* TLS only: the password travels in the client info PDU inside TLS and is checked in Capabilities. */
    s->RdpSecurity = FALSE;
    s->TlsSecurity = TRUE;
    s->NlaSecurity = FALSE;
    s->ExtSecurity = FALSE;
    s->ColorDepth = 32;
    s->RemoteFxCodec = FALSE;
    s->NSCodec = FALSE;
    s->SurfaceCommandsEnabled = TRUE;
    s->SurfaceFrameMarkerEnabled = TRUE;
    s->FrameMarkerCommandEnabled = TRUE;
    s->RefreshRect = TRUE;
    s->SuppressOutput = TRUE;
    s->DesktopResize = TRUE;
    s->UnicodeInput = TRUE;
    s->MultifragMaxRequestSize = RDP_MULTIFRAG_BYTES;
    client->Capabilities = rdp_peer_capabilities;
    client->PostConnect = rdp_peer_post_connect;
    client->Activate = rdp_peer_activate;
    client->input->KeyboardEvent = rdp_input_keyboard;
    client->input->UnicodeKeyboardEvent = rdp_input_unicode;
    client->input->MouseEvent = rdp_input_mouse;
    client->input->ExtendedMouseEvent = rdp_input_extended_mouse;
    client->input->SynchronizeEvent = rdp_input_synchronize;
    client->update->RefreshRect = rdp_update_refresh_rect;
    client->update->SuppressOutput = rdp_update_suppress_output;
    return client->Initialize(client) ? true : false;
}

static bool rdp_server_stopping(struct rdp_server *srv)
{
    rt_mutex_lock(&srv->fb_lock);
    bool stop = srv->stopping;
    rt_mutex_unlock(&srv->fb_lock);
    return stop;
}

void *rdp_peer_main(void *arg)
{
    struct rdp_peer *peer = arg;
    struct rdp_server *srv = peer->srv;
    freerdp_peer *client = peer->client;
    LOG_INFO("RDP client connected from %s", peer->host);
    bool ok = rdp_peer_setup(peer);
    bool have_context = client->context != NULL;
    if (!ok)
        LOG_ERR("cannot set up the RDP session for the client from %s", peer->host);
    else
        rdp_display_acquire(srv);
    const char *why = "it disconnected or sent something invalid";
    while (ok) {
        HANDLE handles[32];
        DWORD count = client->GetEventHandles(client, handles, 31);
        if (count == 0) {
            why = "its connection has no event to wait on";
            break;
        }
        handles[count++] = peer->wake;
        WaitForMultipleObjects(count, handles, FALSE, 100);
        ResetEvent(peer->wake);
        if (rdp_server_stopping(srv)) {
            why = "the server stops";
            break;
        }
        if (!client->CheckFileDescriptor(client)) {
            if (peer->refused)
                why = "its login was refused";
            break;
        }
        if (!peer->logged_in && rt_time_mono_ns() - peer->start_ns > RDP_LOGIN_TIMEOUT_NS) {
            why = "it did not log in within 30 seconds";
            break;
        }
        /*
         * FreeRDP buffers whatever the socket does not take: a client that stops reading would make that
         * buffer grow without end.  So nothing new is sent while it is still draining; the changed area
         * simply grows, and the client gets one update when it reads again.
         */
        if (client->IsWriteBlocked(client) && client->DrainOutputBuffer(client) < 0) {
            why = "writing to it failed";
            break;
        }
        if (client->IsWriteBlocked(client)) {
            if (!peer->blocked_since_ns)
                peer->blocked_since_ns = rt_time_mono_ns();
            else if (rt_time_mono_ns() - peer->blocked_since_ns > RDP_STALL_TIMEOUT_NS) {
                why = "it stopped reading for 60 seconds";
                break;
            }
            continue;
        }
        peer->blocked_since_ns = 0;
        if (peer->activated && !rdp_peer_flush(peer)) {
            why = "sending the screen failed";
            break;
        }
    }
    LOG_INFO("RDP client from %s disconnected: %s", peer->host, ok ? why : "setup failed");
    /* From here the socket may close: the server must not shut it down any more. */
    rt_mutex_lock(&srv->fb_lock);
    peer->sock_closed = true;
    rt_mutex_unlock(&srv->fb_lock);
    if (ok) {
        client->Disconnect(client);
        rdp_display_release(srv);
    }
    if (have_context)
        freerdp_peer_context_free(client);
    freerdp_peer_free(client);
    rt_mutex_lock(&srv->fb_lock);
    peer->client = NULL;
    peer->finished = true;
    rt_mutex_unlock(&srv->fb_lock);
    return NULL;
}
