/* ps2kbd.c - the PS/2 keyboard behind the i8042: commands, scancode sets 1-3, typematic repeat, the 16-byte buffer. */

/*
 * Design: the keyboard speaks PC keycodes (input.h: the set 1 make code, 0xE0xx for extended keys,
 * 0xE11D45 for Pause) with the host side and bytes with the controller.  Host key events wait in a
 * large FIFO and are turned into the guest's scancode set only when all of an event's bytes fit into
 * the 16-byte buffer (IBM PS/2 Keyboard Technical Reference: 16-byte buffer), so a key sequence such
 * as E0 F0 75 is never split by an overrun.  Command responses have their own small queue that goes
 * first, as a keyboard stops sending keys while it answers a command.
 *
 * Commands (the same reference, "Commands from the system"): ED LEDs, EE echo, F0 scancode set
 * (0 reads it back), F2 identify (AB 83), F3 typematic rate/delay, F4 enable, F5 disable and
 * defaults, F6 defaults, F7-FD set 3 key types (acknowledged; every key stays typematic
 * make/break), FE resend, FF reset (FA, then AA for a passed self test).  Anything else answers FE.
 *
 * Typematic: the last key pressed repeats its make code after the delay ((bits 5-6 + 1) x 250 ms)
 * at the period (8 + bits 0-2) x 2^(bits 3-4) x 4.17 ms, on the virtual clock.  A front end that
 * repeats on its own sends the key down again; each such press restarts the delay, so the two
 * repeats never add up.  Raw bytes (keyboardputscancode) never repeat.
 */
#include <stdlib.h>
#include <string.h>

#include "vireo/input.h"
#include "vireo/rt.h"
#include "ps2-internal.h"

#define LOG_COMPONENT "ps2kbd"

#define KBD_ACK    0xfa
#define KBD_RESEND 0xfe
#define KBD_BAT_OK 0xaa
#define KBD_ECHO   0xee
#define KBD_TYPEMATIC_DEFAULT 0x2b /* 10.9 characters per second after 500 ms */
#define KBD_PAUSE  0xe11d45u
#define KBD_PRTSC  0xe037u
#define KBD_SSM_VERSION 1

/* ---- Scancode tables ------------------------------------------------------------------- */

/* Set 2 make codes of the set 1 codes 0x00-0x7f (0: no key). */
static const uint8_t g_set2[128] = {
    [0x01] = 0x76, [0x02] = 0x16, [0x03] = 0x1e, [0x04] = 0x26, [0x05] = 0x25, [0x06] = 0x2e, [0x07] = 0x36,
    [0x08] = 0x3d, [0x09] = 0x3e, [0x0a] = 0x46, [0x0b] = 0x45, [0x0c] = 0x4e, [0x0d] = 0x55, [0x0e] = 0x66,
    [0x0f] = 0x0d, [0x10] = 0x15, [0x11] = 0x1d, [0x12] = 0x24, [0x13] = 0x2d, [0x14] = 0x2c, [0x15] = 0x35,
    [0x16] = 0x3c, [0x17] = 0x43, [0x18] = 0x44, [0x19] = 0x4d, [0x1a] = 0x54, [0x1b] = 0x5b, [0x1c] = 0x5a,
    [0x1d] = 0x14, [0x1e] = 0x1c, [0x1f] = 0x1b, [0x20] = 0x23, [0x21] = 0x2b, [0x22] = 0x34, [0x23] = 0x33,
    [0x24] = 0x3b, [0x25] = 0x42, [0x26] = 0x4b, [0x27] = 0x4c, [0x28] = 0x52, [0x29] = 0x0e, [0x2a] = 0x12,
    [0x2b] = 0x5d, [0x2c] = 0x1a, [0x2d] = 0x22, [0x2e] = 0x21, [0x2f] = 0x2a, [0x30] = 0x32, [0x31] = 0x31,
    [0x32] = 0x3a, [0x33] = 0x41, [0x34] = 0x49, [0x35] = 0x4a, [0x36] = 0x59, [0x37] = 0x7c, [0x38] = 0x11,
    [0x39] = 0x29, [0x3a] = 0x58, [0x3b] = 0x05, [0x3c] = 0x06, [0x3d] = 0x04, [0x3e] = 0x0c, [0x3f] = 0x03,
    [0x40] = 0x0b, [0x41] = 0x83, [0x42] = 0x0a, [0x43] = 0x01, [0x44] = 0x09, [0x45] = 0x77, [0x46] = 0x7e,
    [0x47] = 0x6c, [0x48] = 0x75, [0x49] = 0x7d, [0x4a] = 0x7b, [0x4b] = 0x6b, [0x4c] = 0x73, [0x4d] = 0x74,
    [0x4e] = 0x79, [0x4f] = 0x69, [0x50] = 0x72, [0x51] = 0x7a, [0x52] = 0x70, [0x53] = 0x71, [0x54] = 0x84,
    [0x56] = 0x61, [0x57] = 0x78, [0x58] = 0x07, [0x59] = 0x0f, [0x64] = 0x08, [0x65] = 0x10, [0x66] = 0x18,
    [0x67] = 0x20, [0x68] = 0x28, [0x69] = 0x30, [0x6a] = 0x38, [0x6b] = 0x40, [0x6c] = 0x48, [0x6d] = 0x50,
    [0x6e] = 0x57, [0x70] = 0x13, [0x73] = 0x51, [0x76] = 0x5f, [0x79] = 0x64, [0x7b] = 0x67, [0x7d] = 0x6a,
    [0x7e] = 0x6d,
};

/* Set 2 codes (after E0) of the E0-prefixed set 1 codes. */
static const uint8_t g_set2_e0[128] = {
    [0x10] = 0x15, [0x19] = 0x4d, [0x1c] = 0x5a, [0x1d] = 0x14, [0x20] = 0x23, [0x21] = 0x2b, [0x22] = 0x34,
    [0x24] = 0x3b, [0x2e] = 0x21, [0x30] = 0x32, [0x32] = 0x3a, [0x35] = 0x4a, [0x37] = 0x7c, [0x38] = 0x11,
    [0x47] = 0x6c, [0x48] = 0x75, [0x49] = 0x7d, [0x4b] = 0x6b, [0x4d] = 0x74, [0x4f] = 0x69, [0x50] = 0x72,
    [0x51] = 0x7a, [0x52] = 0x70, [0x53] = 0x71, [0x5b] = 0x1f, [0x5c] = 0x27, [0x5d] = 0x2f, [0x5e] = 0x37,
    [0x5f] = 0x3f, [0x63] = 0x5e, [0x65] = 0x10, [0x66] = 0x18, [0x67] = 0x20, [0x68] = 0x28, [0x69] = 0x30,
    [0x6a] = 0x38, [0x6b] = 0x40, [0x6c] = 0x48, [0x6d] = 0x50,
};

/*
 * Set 3 (IBM reference, scan code set 3): most keys keep their set 2 code; these are the keys whose
 * code differs, and no key has a prefix.  Keys of set 2 that set 3 lacks (multimedia) send nothing.
 */
static const struct { uint32_t keycode; uint8_t code; } g_set3[] = {
    { 0x01, 0x08 }, { 0x1d, 0x11 }, { 0x2a, 0x12 }, { 0x3a, 0x14 }, { 0x38, 0x19 }, { 0x29, 0x0e },
    { 0x2b, 0x5c }, { 0x36, 0x59 }, { 0x37, 0x7e }, { 0x45, 0x76 }, { 0x46, 0x5f }, { 0x4a, 0x84 },
    { 0x4e, 0x7c }, { 0x3b, 0x07 }, { 0x3c, 0x0f }, { 0x3d, 0x17 }, { 0x3e, 0x1f }, { 0x3f, 0x27 },
    { 0x40, 0x2f }, { 0x41, 0x37 }, { 0x42, 0x3f }, { 0x43, 0x47 }, { 0x44, 0x4f }, { 0x57, 0x56 },
    { 0x58, 0x5e }, { 0xe01c, 0x79 }, { 0xe01d, 0x58 }, { 0xe035, 0x77 }, { 0xe037, 0x57 }, { 0xe038, 0x39 },
    { 0xe047, 0x6e }, { 0xe048, 0x63 }, { 0xe049, 0x6f }, { 0xe04b, 0x61 }, { 0xe04d, 0x6a }, { 0xe04f, 0x65 },
    { 0xe050, 0x60 }, { 0xe051, 0x6d }, { 0xe052, 0x67 }, { 0xe053, 0x64 }, { 0xe05b, 0x8b }, { 0xe05c, 0x8c },
    { 0xe05d, 0x8d }, { KBD_PAUSE, 0x62 },
};

uint8_t ps2kbd_translate(uint8_t set2)
{
    /*
     * The 8042's translation table is the inverse of set 1 -> set 2 for the codes keys send; bytes no
     * key sends (responses such as FA, AA, EE, FE and the prefixes E0/E1) pass unchanged.
     */
    static uint8_t table[256];
    static bool built;
    if (!built) {
        for (unsigned i = 0; i < 256; i++)
            table[i] = (uint8_t)i;
        for (unsigned i = 0x7f; i > 0; i--)
            if (g_set2[i])
                table[g_set2[i]] = (uint8_t)i;
        built = true;
    }
    return table[set2];
}

static uint8_t set3_code(uint32_t keycode)
{
    for (size_t i = 0; i < RT_ARRAY_SIZE(g_set3); i++)
        if (g_set3[i].keycode == keycode)
            return g_set3[i].code;
    if (keycode < 0x80)
        return g_set2[keycode];
    return 0;
}

/* The bytes of one key event in the current set; 0 when the key has no code there. */
static size_t key_bytes(const struct ps2kbd *k, uint32_t keycode, bool down, uint8_t out[8])
{
    size_t n = 0;
    if (keycode == KBD_PAUSE && k->set != 3) {
        /* Pause sends its whole sequence on the press and nothing on the release. */
        static const uint8_t s1[] = { 0xe1, 0x1d, 0x45, 0xe1, 0x9d, 0xc5 };
        static const uint8_t s2[] = { 0xe1, 0x14, 0x77, 0xe1, 0xf0, 0x14, 0xf0, 0x77 };
        if (!down)
            return 0;
        const uint8_t *s = k->set == 1 ? s1 : s2;
        n = k->set == 1 ? sizeof(s1) : sizeof(s2);
        memcpy(out, s, n);
        return n;
    }
    if (keycode == KBD_PRTSC && k->set != 3) {
        /* Print Screen on its own comes with a fake Left Shift around it. */
        static const uint8_t s1d[] = { 0xe0, 0x2a, 0xe0, 0x37 }, s1u[] = { 0xe0, 0xb7, 0xe0, 0xaa };
        static const uint8_t s2d[] = { 0xe0, 0x12, 0xe0, 0x7c }, s2u[] = { 0xe0, 0xf0, 0x7c, 0xe0, 0xf0, 0x12 };
        const uint8_t *s = k->set == 1 ? (down ? s1d : s1u) : (down ? s2d : s2u);
        n = k->set == 1 ? 4 : (down ? sizeof(s2d) : sizeof(s2u));
        memcpy(out, s, n);
        return n;
    }
    bool e0 = (keycode & 0xffff00u) == 0xe000u;
    uint8_t code = (uint8_t)(keycode & 0x7f);
    if (keycode > 0xffff || (!e0 && keycode > 0x7f) || keycode == 0)
        return 0;
    if (k->set == 1) {
        if (e0)
            out[n++] = 0xe0;
        out[n++] = (uint8_t)(code | (down ? 0 : 0x80));
        return n;
    }
    if (k->set == 3) {
        uint8_t c = set3_code(keycode);
        if (!c)
            return 0;
        if (!down)
            out[n++] = 0xf0;
        out[n++] = c;
        return n;
    }
    uint8_t c = e0 ? g_set2_e0[code] : g_set2[code];
    if (!c)
        return 0;
    if (e0)
        out[n++] = 0xe0;
    if (!down)
        out[n++] = 0xf0;
    out[n++] = c;
    return n;
}

/* ---- Typematic repeat ------------------------------------------------------------------ */

static uint64_t typematic_delay_ns(uint8_t t)
{
    return (uint64_t)(((t >> 5) & 3) + 1) * 250 * RT_NS_PER_MS;
}

static uint64_t typematic_period_ns(uint8_t t)
{
    /* 4.17 ms units: (8 + A) x 2^B, from 33.3 ms (30 cps) to 500 ms (2 cps). */
    return (uint64_t)((8u + (t & 7u)) << ((t >> 3) & 3u)) * 4170000u;
}

static void kbd_notify(struct ps2kbd *k)
{
    if (k->notify)
        k->notify(k->notify_opaque);
}

static void repeat_fire(void *opaque)
{
    struct ps2kbd *k = opaque;
    if (!k->repeat_key || !k->scanning)
        return;
    uint8_t b[8];
    size_t n = key_bytes(k, k->repeat_key, true, b);
    /* A full buffer drops this repeat, as a keyboard whose host does not read loses typematic codes. */
    if (n && ps2_queue_room(&k->q) >= n && !k->ev_count) {
        for (size_t i = 0; i < n; i++)
            ps2_queue_put(&k->q, b[i]);
    }
    tm_timer_arm(k->repeat, tm_now_ns(k->vm) + typematic_period_ns(k->typematic));
    kbd_notify(k);
}

static void repeat_stop(struct ps2kbd *k)
{
    k->repeat_key = 0;
    if (k->repeat)
        tm_timer_cancel(k->repeat);
}

/* ---- Host events ----------------------------------------------------------------------- */

/* Moves waiting host events into the buffer while each one fits whole. */
static void pump(struct ps2kbd *k)
{
    while (k->ev_count) {
        uint32_t ev = k->ev[k->ev_head];
        uint32_t keycode = ev & PS2KBD_EV_CODE;
        bool down = (ev & PS2KBD_EV_DOWN) != 0;
        uint8_t b[8];
        size_t n = 0;
        if (k->scanning) {
            n = key_bytes(k, keycode, down, b);
            if (n > ps2_queue_room(&k->q))
                return;
            for (size_t i = 0; i < n; i++)
                ps2_queue_put(&k->q, b[i]);
        }
        k->ev_head = (k->ev_head + 1) % PS2KBD_EVENTS;
        k->ev_count--;
        if (!k->scanning)
            continue;
        if (down && !(ev & PS2KBD_EV_RAW) && keycode != KBD_PAUSE) {
            k->repeat_key = keycode;
            tm_timer_arm(k->repeat, tm_now_ns(k->vm) + typematic_delay_ns(k->typematic));
        } else if (!down && keycode == k->repeat_key) {
            repeat_stop(k);
        }
    }
}

static void ev_push(struct ps2kbd *k, uint32_t ev)
{
    if (k->ev_count == PS2KBD_EVENTS) {
        if (!k->ev_dropped++)
            LOG_WARN("keyboard: the guest does not read its keyboard; dropping host key events");
        return;
    }
    k->ev[(k->ev_head + k->ev_count) % PS2KBD_EVENTS] = ev;
    k->ev_count++;
}

void ps2kbd_key(struct ps2kbd *k, uint32_t keycode, bool down)
{
    if (keycode == 0 || keycode > PS2KBD_EV_CODE)
        return;
    ev_push(k, keycode | (down ? PS2KBD_EV_DOWN : 0));
    pump(k);
    kbd_notify(k);
}

void ps2kbd_raw(struct ps2kbd *k, const uint8_t *bytes, size_t len)
{
    /* Set 1 bytes: E0 xx is an extended key, E1 1D 45 (E1 9D C5) is Pause, bit 7 is the break. */
    for (size_t i = 0; i < len; i++) {
        uint8_t b = bytes[i];
        if (k->raw_e1) {
            k->raw_e1++;
            if (k->raw_e1 == 3) {
                if (!(b & 0x80))
                    ev_push(k, KBD_PAUSE | PS2KBD_EV_DOWN | PS2KBD_EV_RAW);
                k->raw_e1 = 0;
            }
            continue;
        }
        if (b == 0xe1) {
            k->raw_e1 = 1;
            k->raw_prefix = 0;
            continue;
        }
        if (b == 0xe0) {
            k->raw_prefix = 0xe0;
            continue;
        }
        uint32_t code = (uint32_t)(b & 0x7f) | (k->raw_prefix ? 0xe000u : 0);
        k->raw_prefix = 0;
        /* The fake shifts of Print Screen (E0 2A / E0 AA) carry no key of their own. */
        if (code == 0xe02a)
            continue;
        ev_push(k, code | ((b & 0x80) ? 0 : PS2KBD_EV_DOWN) | PS2KBD_EV_RAW);
    }
    pump(k);
    kbd_notify(k);
}

/* ---- Commands from the controller ------------------------------------------------------- */

static void reply(struct ps2kbd *k, uint8_t byte)
{
    /* The reply queue holds more than any one command answers; a flood of commands loses the oldest. */
    if (!ps2_queue_put(&k->reply, byte)) {
        ps2_queue_get(&k->reply);
        ps2_queue_put(&k->reply, byte);
    }
    k->last_sent = byte;
}

static void set_defaults(struct ps2kbd *k)
{
    k->typematic = KBD_TYPEMATIC_DEFAULT;
    repeat_stop(k);
}

static void command(struct ps2kbd *k, uint8_t cmd)
{
    switch (cmd) {
    case 0xed: /* set LEDs */
    case 0xf3: /* typematic rate/delay */
    case 0xf0: /* scancode set */
        k->pending = cmd;
        reply(k, KBD_ACK);
        break;
    case 0xee:
        reply(k, KBD_ECHO);
        break;
    case 0xf2:
        reply(k, KBD_ACK);
        reply(k, 0xab);
        reply(k, 0x83);
        break;
    case 0xf4:
        ps2_queue_clear(&k->q);
        k->scanning = true;
        reply(k, KBD_ACK);
        break;
    case 0xf5:
        ps2_queue_clear(&k->q);
        k->scanning = false;
        set_defaults(k);
        reply(k, KBD_ACK);
        break;
    case 0xf6:
        ps2_queue_clear(&k->q);
        k->scanning = true;
        set_defaults(k);
        reply(k, KBD_ACK);
        break;
    case 0xf7: case 0xf8: case 0xf9: case 0xfa: case 0xfb: case 0xfc: case 0xfd:
        reply(k, KBD_ACK);
        break;
    case 0xfe:
        reply(k, k->last_sent);
        break;
    case 0xff:
        /* A reset keyboard forgets keys in flight, host events included. */
        ps2_queue_clear(&k->q);
        ps2_queue_clear(&k->reply);
        k->ev_head = k->ev_count = 0;
        k->scanning = true;
        k->set = 2;
        k->leds = 0;
        set_defaults(k);
        reply(k, KBD_ACK);
        reply(k, KBD_BAT_OK);
        break;
    default:
        LOG_DEBUG("unknown keyboard command %#x", cmd);
        reply(k, KBD_RESEND);
        break;
    }
}

void ps2kbd_write(struct ps2kbd *k, uint8_t byte)
{
    uint8_t pending = k->pending;
    k->pending = 0;
    /* An argument that is itself a command (ED F4 ...) cancels the first command, as on a real keyboard. */
    switch (pending) {
    case 0xed:
        if (byte & 0xf8) {
            command(k, byte);
            break;
        }
        k->leds = byte & 7;
        reply(k, KBD_ACK);
        break;
    case 0xf3:
        if (byte & 0x80) {
            command(k, byte);
            break;
        }
        k->typematic = byte;
        reply(k, KBD_ACK);
        break;
    case 0xf0:
        if (byte == 0) {
            reply(k, KBD_ACK);
            reply(k, k->set);
        } else if (byte <= 3) {
            ps2_queue_clear(&k->q);
            k->set = byte;
            repeat_stop(k);
            reply(k, KBD_ACK);
        } else if (byte >= 0xed) {
            command(k, byte);
        } else {
            reply(k, KBD_RESEND);
        }
        break;
    default:
        command(k, byte);
        break;
    }
    kbd_notify(k);
}

int ps2kbd_read(struct ps2kbd *k)
{
    int b = ps2_queue_get(&k->reply);
    if (b >= 0)
        return b;
    pump(k);
    b = ps2_queue_get(&k->q);
    if (b >= 0) {
        k->last_sent = (uint8_t)b;
        pump(k);
    }
    return b;
}

unsigned ps2kbd_leds(const struct ps2kbd *k)
{
    return k->leds;
}

/* ---- Life cycle and saved state ---------------------------------------------------------- */

int ps2kbd_init(struct ps2kbd *k, struct vm *vm, ps2_notify_fn *notify, void *opaque)
{
    k->vm = vm;
    k->notify = notify;
    k->notify_opaque = opaque;
    return tm_timer_create(vm, "ps2kbd-typematic", repeat_fire, k, &k->repeat);
}

void ps2kbd_fini(struct ps2kbd *k)
{
    if (k->repeat)
        tm_timer_destroy(k->repeat);
    k->repeat = NULL;
}

void ps2kbd_reset(struct ps2kbd *k)
{
    ps2_queue_clear(&k->q);
    ps2_queue_clear(&k->reply);
    k->set = 2;
    k->scanning = true;
    k->leds = 0;
    k->pending = 0;
    k->last_sent = 0;
    k->ev_head = k->ev_count = 0;
    k->raw_prefix = k->raw_e1 = 0;
    set_defaults(k);
}

void ps2kbd_save(struct ps2kbd *k, struct ssm *ssm)
{
    ssm_put_u32(ssm, KBD_SSM_VERSION);
    ps2_queue_save(&k->reply, ssm);
    ps2_queue_save(&k->q, ssm);
    ssm_put_u8(ssm, k->set);
    ssm_put_bool(ssm, k->scanning);
    ssm_put_u8(ssm, k->leds);
    ssm_put_u8(ssm, k->typematic);
    ssm_put_u8(ssm, k->pending);
    ssm_put_u8(ssm, k->last_sent);
    ssm_put_u32(ssm, k->repeat_key);
    bool armed = k->repeat_key && tm_timer_is_armed(k->repeat);
    ssm_put_bool(ssm, armed);
    ssm_put_u64(ssm, armed ? tm_timer_expire_ns(k->repeat) : 0);
    ssm_put_u8(ssm, k->raw_prefix);
    ssm_put_u8(ssm, k->raw_e1);
    ssm_put_u32(ssm, k->ev_count);
    for (unsigned i = 0; i < k->ev_count; i++)
        ssm_put_u32(ssm, k->ev[(k->ev_head + i) % PS2KBD_EVENTS]);
}

int ps2kbd_load(struct ps2kbd *k, struct ssm *ssm)
{
    uint32_t version = 0, repeat_key = 0, ev_count = 0;
    uint8_t set = 0, leds = 0, typematic = 0, pending = 0, last_sent = 0, raw_prefix = 0, raw_e1 = 0;
    bool scanning = false, armed = false;
    uint64_t expire = 0;
    struct ps2_queue reply_q, q;
    ssm_get_u32(ssm, &version);
    if (!ssm_status(ssm) && version != KBD_SSM_VERSION)
        return VERR_SSM_VERSION;
    int rc = ps2_queue_load(&reply_q, ssm);
    if (!rc)
        rc = ps2_queue_load(&q, ssm);
    if (rc)
        return rc;
    ssm_get_u8(ssm, &set);
    ssm_get_bool(ssm, &scanning);
    ssm_get_u8(ssm, &leds);
    ssm_get_u8(ssm, &typematic);
    ssm_get_u8(ssm, &pending);
    ssm_get_u8(ssm, &last_sent);
    ssm_get_u32(ssm, &repeat_key);
    ssm_get_bool(ssm, &armed);
    ssm_get_u64(ssm, &expire);
    ssm_get_u8(ssm, &raw_prefix);
    ssm_get_u8(ssm, &raw_e1);
    ssm_get_u32(ssm, &ev_count);
    if ((rc = ssm_status(ssm)))
        return rc;
    if (set < 1 || set > 3 || leds > 7 || ev_count > PS2KBD_EVENTS || repeat_key > PS2KBD_EV_CODE ||
        raw_e1 > 2 || (pending && pending != 0xed && pending != 0xf0 && pending != 0xf3)) {
        LOG_ERR("saved keyboard state is out of range (set %u, LEDs %#x, %u events)", set, leds, ev_count);
        return VERR_SSM_CORRUPT;
    }
    uint32_t *ev = ev_count ? malloc(ev_count * sizeof(*ev)) : NULL;
    if (ev_count && !ev)
        return VERR_NO_MEMORY;
    for (uint32_t i = 0; i < ev_count; i++)
        ssm_get_u32(ssm, &ev[i]);
    if ((rc = ssm_status(ssm))) {
        free(ev);
        return rc;
    }
    k->reply = reply_q;
    k->q = q;
    k->set = set;
    k->scanning = scanning;
    k->leds = leds;
    k->typematic = typematic;
    k->pending = pending;
    k->last_sent = last_sent;
    k->raw_prefix = raw_prefix ? 0xe0 : 0;
    k->raw_e1 = raw_e1;
    if (ev_count)
        memcpy(k->ev, ev, ev_count * sizeof(ev[0]));
    free(ev);
    k->ev_head = 0;
    k->ev_count = ev_count;
    repeat_stop(k);
    if (armed && repeat_key) {
        k->repeat_key = repeat_key;
        tm_timer_arm(k->repeat, expire);
    }
    return 0;
}
