/* ps2mouse.c - the PS/2 mouse behind the i8042: commands, stream and remote mode, IntelliMouse wheel packets. */

/*
 * Design (IBM PS/2 mouse technical reference; the IntelliMouse extension as Microsoft documented it):
 * host motion waits in a FIFO of events, one per button state, with the motion of that state merged.
 * In stream mode with reporting enabled, the mouse sends packets while its buffer has room: three
 * bytes (buttons, sign and overflow bits, X, Y) or four with the wheel once the guest has knocked
 * with sample rates 200, 100, 80 (then F2 identifies 03).  X and Y are 9-bit two's complement
 * (-256..255): larger motion is split over several packets, so nothing is lost.  Remote mode (F0)
 * reports the accumulated motion on EB (read data) only, clamped, with the overflow bits set when it
 * did not fit.  2:1 scaling (E7) maps 1..5 counts to 1, 1, 3, 6, 9 and doubles larger counts.
 *
 * Commands: E6/E7 scaling, E8 resolution, E9 status (3 bytes), EA stream, EB read data, EC/EE wrap
 * mode off/on (in wrap mode every byte but EC and FF is echoed), F0 remote, F2 identify, F3 sample
 * rate, F4/F5 enable/disable reporting, F6 defaults, FE resend, FF reset (FA AA 00).  Anything else,
 * and an out-of-range argument, answers FE.  A command clears the buffer (the mouse stops sending
 * to answer it); answers have their own queue ahead of the packets.
 */
#include <string.h>

#include "vireo/input.h"
#include "vireo/rt.h"
#include "ps2-internal.h"

#define LOG_COMPONENT "ps2mouse"

#define MOUSE_ACK    0xfa
#define MOUSE_RESEND 0xfe
#define MOUSE_SSM_VERSION 1
#define MOUSE_ACCUM_MAX 1000000 /* motion a slow guest can owe before more is dropped */

static void mouse_notify(struct ps2mouse *m)
{
    if (m->notify)
        m->notify(m->notify_opaque);
}

static void reply(struct ps2mouse *m, uint8_t byte)
{
    if (!ps2_queue_put(&m->reply, byte)) {
        ps2_queue_get(&m->reply);
        ps2_queue_put(&m->reply, byte);
    }
    m->last_sent = byte;
}

static int32_t clamp32(int64_t v, int32_t lo, int32_t hi)
{
    return (int32_t)(v < lo ? lo : v > hi ? hi : v);
}

static int32_t scale21(int32_t v)
{
    static const int32_t small[6] = { 0, 1, 1, 3, 6, 9 };
    int32_t a = v < 0 ? -v : v;
    int32_t s = a <= 5 ? small[a] : 2 * a;
    return v < 0 ? -s : s;
}

static unsigned packet_bytes(const struct ps2mouse *m)
{
    return m->id == 3 ? 4 : 3;
}

/* One packet of dx, dy (already within what it may carry unless overflow is set), dz. */
static void put_packet(struct ps2mouse *m, struct ps2_queue *q, uint8_t buttons, int32_t dx, int32_t dy, int32_t dz,
                       bool clamp)
{
    bool ovx = false, ovy = false;
    if (m->scale21 && !m->remote) {
        dx = scale21(dx);
        dy = scale21(dy);
        clamp = true;
    }
    if (clamp) {
        ovx = dx < -256 || dx > 255;
        ovy = dy < -256 || dy > 255;
        dx = clamp32(dx, -256, 255);
        dy = clamp32(dy, -256, 255);
    }
    uint8_t b0 = (uint8_t)(0x08 | (buttons & 7) | (dx < 0 ? 0x10 : 0) | (dy < 0 ? 0x20 : 0) | (ovx ? 0x40 : 0) |
                           (ovy ? 0x80 : 0));
    ps2_queue_put(q, b0);
    ps2_queue_put(q, (uint8_t)dx);
    ps2_queue_put(q, (uint8_t)dy);
    if (m->id == 3)
        ps2_queue_put(q, (uint8_t)(clamp32(dz, -8, 7) & 0x0f));
    m->last_sent = m->id == 3 ? (uint8_t)(clamp32(dz, -8, 7) & 0x0f) : (uint8_t)dy;
}

/* Stream mode: sends waiting events as packets while whole packets fit. */
static void pump(struct ps2mouse *m)
{
    if (!m->enabled || m->remote || m->wrap)
        return;
    while (m->ev_count && ps2_queue_room(&m->q) >= packet_bytes(m)) {
        struct ps2mouse_ev *e = &m->ev[m->ev_head];
        int32_t dx = clamp32(e->dx, -256, 255), dy = clamp32(e->dy, -256, 255);
        int32_t dz = m->id == 3 ? clamp32(e->dz, -8, 7) : e->dz;
        put_packet(m, &m->q, e->buttons, dx, dy, dz, false);
        e->dx -= dx;
        e->dy -= dy;
        e->dz -= dz;
        if (!e->dx && !e->dy && !e->dz) {
            m->ev_head = (m->ev_head + 1) % PS2MOUSE_EVENTS;
            m->ev_count--;
        }
    }
}

void ps2mouse_move(struct ps2mouse *m, int dx, int dy, int dz, unsigned inp_buttons)
{
    uint8_t buttons = (uint8_t)((inp_buttons & INP_BUTTON_LEFT ? 1 : 0) | (inp_buttons & INP_BUTTON_RIGHT ? 2 : 0) |
                                (inp_buttons & INP_BUTTON_MIDDLE ? 4 : 0));
    m->buttons = buttons;
    /* A disabled mouse does not count (its counters restart when reporting is enabled). */
    if (!m->enabled || m->wrap)
        return;
    struct ps2mouse_ev *tail = m->ev_count ? &m->ev[(m->ev_head + m->ev_count - 1) % PS2MOUSE_EVENTS] : NULL;
    /* Remote mode keeps one accumulator; stream mode one event per button state. */
    if (!tail || (!m->remote && tail->buttons != buttons && m->ev_count < PS2MOUSE_EVENTS)) {
        tail = &m->ev[(m->ev_head + m->ev_count) % PS2MOUSE_EVENTS];
        memset(tail, 0, sizeof(*tail));
        m->ev_count++;
    } else if (!m->remote && tail->buttons != buttons) {
        LOG_DEBUG("mouse: the guest does not read its mouse; a button change merges into the last one");
    }
    tail->buttons = buttons;
    /* PS/2 Y counts up, screens count down. */
    tail->dx = clamp32((int64_t)tail->dx + dx, -MOUSE_ACCUM_MAX, MOUSE_ACCUM_MAX);
    tail->dy = clamp32((int64_t)tail->dy - dy, -MOUSE_ACCUM_MAX, MOUSE_ACCUM_MAX);
    tail->dz = m->id == 3 ? clamp32((int64_t)tail->dz + dz, -MOUSE_ACCUM_MAX, MOUSE_ACCUM_MAX) : 0;
    pump(m);
    mouse_notify(m);
}

static void clear_motion(struct ps2mouse *m)
{
    m->ev_head = m->ev_count = 0;
}

static void set_defaults(struct ps2mouse *m)
{
    m->rate = 100;
    m->resolution = 2;
    m->scale21 = false;
    m->enabled = false;
    m->remote = false;
    clear_motion(m);
}

static bool valid_rate(uint8_t r)
{
    return r == 10 || r == 20 || r == 40 || r == 60 || r == 80 || r == 100 || r == 200;
}

static void set_rate(struct ps2mouse *m, uint8_t rate)
{
    m->rate = rate;
    m->knock[0] = m->knock[1];
    m->knock[1] = m->knock[2];
    m->knock[2] = rate;
    if (m->knock[0] == 200 && m->knock[1] == 100 && m->knock[2] == 80)
        m->id = 3;
}

static void read_data(struct ps2mouse *m)
{
    /* Remote mode: everything since the last read in one packet, with overflow bits when it did not fit. */
    int64_t dx = 0, dy = 0, dz = 0;
    for (unsigned i = 0; i < m->ev_count; i++) {
        const struct ps2mouse_ev *e = &m->ev[(m->ev_head + i) % PS2MOUSE_EVENTS];
        dx += e->dx;
        dy += e->dy;
        dz += e->dz;
    }
    clear_motion(m);
    put_packet(m, &m->reply, m->buttons, clamp32(dx, INT32_MIN / 2, INT32_MAX / 2),
               clamp32(dy, INT32_MIN / 2, INT32_MAX / 2),
               clamp32(dz, -8, 7), true);
}

static void command(struct ps2mouse *m, uint8_t cmd)
{
    ps2_queue_clear(&m->q);
    switch (cmd) {
    case 0xe6:
    case 0xe7:
        m->scale21 = cmd == 0xe7;
        reply(m, MOUSE_ACK);
        break;
    case 0xe8:
    case 0xf3:
        m->pending = cmd;
        reply(m, MOUSE_ACK);
        break;
    case 0xe9:
        reply(m, MOUSE_ACK);
        reply(m, (uint8_t)((m->remote ? 0x40 : 0) | (m->enabled ? 0x20 : 0) | (m->scale21 ? 0x10 : 0) |
                           (m->buttons & 1 ? 0x04 : 0) | (m->buttons & 4 ? 0x02 : 0) | (m->buttons & 2 ? 0x01 : 0)));
        reply(m, m->resolution);
        reply(m, m->rate);
        break;
    case 0xea:
        m->remote = false;
        clear_motion(m);
        reply(m, MOUSE_ACK);
        break;
    case 0xeb:
        reply(m, MOUSE_ACK);
        read_data(m);
        break;
    case 0xec:
        reply(m, MOUSE_ACK);
        break;
    case 0xee:
        m->wrap = true;
        clear_motion(m);
        reply(m, MOUSE_ACK);
        break;
    case 0xf0:
        m->remote = true;
        clear_motion(m);
        reply(m, MOUSE_ACK);
        break;
    case 0xf2:
        reply(m, MOUSE_ACK);
        reply(m, m->id);
        break;
    case 0xf4:
    case 0xf5:
        m->enabled = cmd == 0xf4;
        clear_motion(m);
        reply(m, MOUSE_ACK);
        break;
    case 0xf6:
        set_defaults(m);
        reply(m, MOUSE_ACK);
        break;
    case 0xfe:
        reply(m, m->last_sent);
        break;
    case 0xff:
        ps2_queue_clear(&m->reply);
        set_defaults(m);
        m->wrap = false;
        m->id = 0;
        memset(m->knock, 0, sizeof(m->knock));
        reply(m, MOUSE_ACK);
        reply(m, 0xaa);
        reply(m, 0x00);
        break;
    default:
        LOG_DEBUG("unknown mouse command %#x", cmd);
        reply(m, MOUSE_RESEND);
        break;
    }
}

void ps2mouse_write(struct ps2mouse *m, uint8_t byte)
{
    uint8_t pending = m->pending;
    m->pending = 0;
    if (m->wrap && byte != 0xec && byte != 0xff) {
        reply(m, byte);
    } else if (m->wrap && byte == 0xec) {
        m->wrap = false;
        reply(m, MOUSE_ACK);
    } else if (pending == 0xf3) {
        if (valid_rate(byte)) {
            set_rate(m, byte);
            reply(m, MOUSE_ACK);
        } else {
            reply(m, MOUSE_RESEND);
        }
    } else if (pending == 0xe8) {
        if (byte <= 3) {
            m->resolution = byte;
            reply(m, MOUSE_ACK);
        } else {
            reply(m, MOUSE_RESEND);
        }
    } else {
        command(m, byte);
    }
    mouse_notify(m);
}

int ps2mouse_read(struct ps2mouse *m)
{
    int b = ps2_queue_get(&m->reply);
    if (b >= 0)
        return b;
    b = ps2_queue_get(&m->q);
    pump(m);
    return b;
}

void ps2mouse_init(struct ps2mouse *m, ps2_notify_fn *notify, void *opaque)
{
    m->notify = notify;
    m->notify_opaque = opaque;
}

void ps2mouse_reset(struct ps2mouse *m)
{
    ps2_queue_clear(&m->reply);
    ps2_queue_clear(&m->q);
    set_defaults(m);
    m->wrap = false;
    m->id = 0;
    m->pending = 0;
    m->last_sent = 0;
    m->buttons = 0;
    memset(m->knock, 0, sizeof(m->knock));
}

void ps2mouse_save(struct ps2mouse *m, struct ssm *ssm)
{
    ssm_put_u32(ssm, MOUSE_SSM_VERSION);
    ps2_queue_save(&m->reply, ssm);
    ps2_queue_save(&m->q, ssm);
    ssm_put_bool(ssm, m->enabled);
    ssm_put_bool(ssm, m->remote);
    ssm_put_bool(ssm, m->wrap);
    ssm_put_bool(ssm, m->scale21);
    ssm_put_u8(ssm, m->rate);
    ssm_put_u8(ssm, m->resolution);
    ssm_put_u8(ssm, m->id);
    ssm_put_bytes(ssm, m->knock, sizeof(m->knock));
    ssm_put_u8(ssm, m->pending);
    ssm_put_u8(ssm, m->last_sent);
    ssm_put_u8(ssm, m->buttons);
    ssm_put_u32(ssm, m->ev_count);
    for (unsigned i = 0; i < m->ev_count; i++) {
        const struct ps2mouse_ev *e = &m->ev[(m->ev_head + i) % PS2MOUSE_EVENTS];
        ssm_put_u32(ssm, (uint32_t)e->dx);
        ssm_put_u32(ssm, (uint32_t)e->dy);
        ssm_put_u32(ssm, (uint32_t)e->dz);
        ssm_put_u8(ssm, e->buttons);
    }
}

int ps2mouse_load(struct ps2mouse *m, struct ssm *ssm)
{
    struct ps2mouse n = *m;
    uint32_t version = 0, count = 0;
    ssm_get_u32(ssm, &version);
    if (!ssm_status(ssm) && version != MOUSE_SSM_VERSION)
        return VERR_SSM_VERSION;
    int rc = ps2_queue_load(&n.reply, ssm);
    if (!rc)
        rc = ps2_queue_load(&n.q, ssm);
    if (rc)
        return rc;
    ssm_get_bool(ssm, &n.enabled);
    ssm_get_bool(ssm, &n.remote);
    ssm_get_bool(ssm, &n.wrap);
    ssm_get_bool(ssm, &n.scale21);
    ssm_get_u8(ssm, &n.rate);
    ssm_get_u8(ssm, &n.resolution);
    ssm_get_u8(ssm, &n.id);
    ssm_get_bytes(ssm, n.knock, sizeof(n.knock));
    ssm_get_u8(ssm, &n.pending);
    ssm_get_u8(ssm, &n.last_sent);
    ssm_get_u8(ssm, &n.buttons);
    ssm_get_u32(ssm, &count);
    if ((rc = ssm_status(ssm)))
        return rc;
    if (count > PS2MOUSE_EVENTS || n.resolution > 3 || (n.id != 0 && n.id != 3) || n.buttons > 7 ||
        (n.pending && n.pending != 0xe8 && n.pending != 0xf3)) {
        LOG_ERR("saved mouse state is out of range (%u events, resolution %u, id %u)", count, n.resolution, n.id);
        return VERR_SSM_CORRUPT;
    }
    for (uint32_t i = 0; i < count; i++) {
        uint32_t dx = 0, dy = 0, dz = 0;
        ssm_get_u32(ssm, &dx);
        ssm_get_u32(ssm, &dy);
        ssm_get_u32(ssm, &dz);
        ssm_get_u8(ssm, &n.ev[i].buttons);
        n.ev[i].dx = clamp32((int32_t)dx, -MOUSE_ACCUM_MAX, MOUSE_ACCUM_MAX);
        n.ev[i].dy = clamp32((int32_t)dy, -MOUSE_ACCUM_MAX, MOUSE_ACCUM_MAX);
        n.ev[i].dz = clamp32((int32_t)dz, -MOUSE_ACCUM_MAX, MOUSE_ACCUM_MAX);
        n.ev[i].buttons &= 7;
    }
    if ((rc = ssm_status(ssm)))
        return rc;
    n.ev_head = 0;
    n.ev_count = count;
    *m = n;
    return 0;
}
