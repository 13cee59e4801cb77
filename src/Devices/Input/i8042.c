/* i8042.c - the 8042 keyboard controller (ports 0x60/0x64) with a PS/2 keyboard on IRQ 1 and a PS/2 mouse on IRQ 12. */

/*
 * Design (IBM PS/2 Hardware Interface Technical Reference, "Keyboard/Auxiliary Device Controller"):
 * the controller owns one output buffer and arbitrates what fills it: its own command responses
 * first, then the keyboard (unless its clock is disabled, command byte bit 4), then the mouse
 * (bit 5).  A byte from the mouse sets AUXB in the status register.  The buffer refills as soon as
 * the guest reads port 0x60, so each byte brings its own interrupt edge: IRQ 1 follows "output
 * buffer full from the keyboard" while command byte bit 0 is set, IRQ 12 "full from the mouse"
 * while bit 1 is set.  With bit 6 set, keyboard bytes are translated from set 2 to set 1 on the
 * way (F0 turns into bit 7 of the next byte), which is how PC operating systems run the keyboard.
 *
 * The output port (D0/D1) carries the system reset line (bit 0, active low) and the A20 gate
 * (bit 1).  The A20 output goes where the board wires it (i8042_set_a20_output: the chipset ORs it
 * with port 0x92) or, on a board that wires nothing, straight to vm_set_a20.  F0-FF pulse the low
 * output port lines; bit 0 pulsed (FE) resets the system.  It comes out of reset as 0xCF: not in
 * reset, A20 on, both clocks and data lines high.
 *
 * Commands: 20-3F read, 60-7F write the internal RAM (byte 0 is the command byte), A7/A8 mouse
 * port disable/enable, A9/AB interface tests (00: no error), AA self test (55), AD/AE keyboard
 * disable/enable, C0 input port, D0/D1 output port, D2/D3 write the keyboard's/mouse's output
 * buffer (as if that device had sent the byte), D4 next byte to the mouse, DD/DF A20 off/on,
 * E0 test inputs, F0-FF pulse.  Other commands are ignored, as the 8042 firmware ignores them.
 *
 * Host input arrives through the input core (input.h): the keyboard and the mouse register there
 * when the controller is constructed.
 */
#include <stdlib.h>
#include <string.h>

#include "vireo/devices.h"
#include "vireo/input.h"
#include "vireo/pdm.h"
#include "vireo/rt.h"
#include "ps2-internal.h"

#define LOG_COMPONENT "i8042"

#define I8042_PORT_DATA 0x60
#define I8042_PORT_CMD  0x64
#define I8042_SSM_VERSION 1

/* Status register. */
#define STS_OBF  0x01
#define STS_IBF  0x02
#define STS_SYS  0x04
#define STS_A2   0x08
#define STS_INH  0x10 /* 1: keyboard not inhibited (the keylock) */
#define STS_AUXB 0x20

/* Command byte. */
#define CCB_KBD_INT  0x01
#define CCB_AUX_INT  0x02
#define CCB_SYS      0x04
#define CCB_KBD_DIS  0x10
#define CCB_AUX_DIS  0x20
#define CCB_XLATE    0x40
#define CCB_RESET    (CCB_XLATE | CCB_AUX_INT | CCB_KBD_INT)

/* Output port. */
#define OUT_RESET  0x01 /* active low: 0 holds the system in reset */
#define OUT_A20    0x02
#define OUT_KBD_OBF 0x10
#define OUT_AUX_OBF 0x20
#define OUT_POWERON 0xcf

#define CTL_QUEUE 8
#define CTL_AUX   0x100 /* controller queue entry that shows as mouse data */

struct i8042 {
    struct pdm_dev *dev;
    struct vm *vm;
    struct io_region *io_data, *io_cmd;
    struct pdm_irq *irq_kbd, *irq_aux;
    void (*a20_fn)(void *opaque, bool level);
    void *a20_opaque;
    bool registered;

    uint8_t ram[32];    /* ram[0] is the command byte */
    uint8_t outport;
    uint8_t pending;    /* a command whose data byte comes through port 0x60, or 0 */
    uint8_t obuf;
    bool obf, obuf_aux;
    bool a2;            /* the last write went to port 0x64 */
    bool xlat_break;    /* translation saw F0: the next keyboard byte is a break */
    uint16_t ctl[CTL_QUEUE];
    unsigned ctl_head, ctl_count;

    struct ps2kbd kbd;
    struct ps2mouse mouse;
};

/* ---- Byte queues shared by the keyboard and the mouse ------------------------------------ */

void ps2_queue_clear(struct ps2_queue *q)
{
    q->head = q->count = 0;
}

unsigned ps2_queue_room(const struct ps2_queue *q)
{
    return PS2_QUEUE_BYTES - q->count;
}

bool ps2_queue_put(struct ps2_queue *q, uint8_t byte)
{
    if (q->count >= PS2_QUEUE_BYTES)
        return false;
    q->data[(q->head + q->count) % PS2_QUEUE_BYTES] = byte;
    q->count++;
    return true;
}

int ps2_queue_get(struct ps2_queue *q)
{
    if (!q->count)
        return -1;
    uint8_t b = q->data[q->head];
    q->head = (uint8_t)((q->head + 1) % PS2_QUEUE_BYTES);
    q->count--;
    return b;
}

void ps2_queue_save(const struct ps2_queue *q, struct ssm *ssm)
{
    ssm_put_u8(ssm, q->count);
    for (unsigned i = 0; i < q->count; i++)
        ssm_put_u8(ssm, q->data[(q->head + i) % PS2_QUEUE_BYTES]);
}

int ps2_queue_load(struct ps2_queue *q, struct ssm *ssm)
{
    uint8_t count = 0;
    ssm_get_u8(ssm, &count);
    int rc = ssm_status(ssm);
    if (rc)
        return rc;
    if (count > PS2_QUEUE_BYTES) {
        LOG_ERR("saved PS/2 buffer holds %u bytes, more than its %u", count, PS2_QUEUE_BYTES);
        return VERR_SSM_CORRUPT;
    }
    ps2_queue_clear(q);
    for (unsigned i = 0; i < count; i++) {
        uint8_t b = 0;
        ssm_get_u8(ssm, &b);
        ps2_queue_put(q, b);
    }
    return ssm_status(ssm);
}

/* ---- Output buffer and interrupts -------------------------------------------------------- */

static uint8_t ccb(const struct i8042 *c)
{
    return c->ram[0];
}

static void update_irq(struct i8042 *c)
{
    pdm_irq_set(c->irq_kbd, c->obf && !c->obuf_aux && (ccb(c) & CCB_KBD_INT));
    pdm_irq_set(c->irq_aux, c->obf && c->obuf_aux && (ccb(c) & CCB_AUX_INT));
}

static void ctl_put(struct i8042 *c, uint16_t entry)
{
    if (c->ctl_count == CTL_QUEUE) {
        /* A guest that never reads: keep the newest answers. */
        c->ctl_head = (c->ctl_head + 1) % CTL_QUEUE;
        c->ctl_count--;
    }
    c->ctl[(c->ctl_head + c->ctl_count) % CTL_QUEUE] = entry;
    c->ctl_count++;
}

/* Fills an empty output buffer from the controller, the keyboard or the mouse, in that order. */
static void refill(struct i8042 *c)
{
    if (!c->obf && c->ctl_count) {
        uint16_t e = c->ctl[c->ctl_head];
        c->ctl_head = (c->ctl_head + 1) % CTL_QUEUE;
        c->ctl_count--;
        c->obuf = (uint8_t)e;
        c->obuf_aux = (e & CTL_AUX) != 0;
        c->obf = true;
    }
    while (!c->obf && !(ccb(c) & CCB_KBD_DIS)) {
        int b = ps2kbd_read(&c->kbd);
        if (b < 0)
            break;
        if (ccb(c) & CCB_XLATE) {
            if (b == 0xf0) {
                c->xlat_break = true;
                continue;
            }
            b = ps2kbd_translate((uint8_t)b) | (c->xlat_break ? 0x80 : 0);
            c->xlat_break = false;
        }
        c->obuf = (uint8_t)b;
        c->obuf_aux = false;
        c->obf = true;
    }
    if (!c->obf && !(ccb(c) & CCB_AUX_DIS)) {
        int b = ps2mouse_read(&c->mouse);
        if (b >= 0) {
            c->obuf = (uint8_t)b;
            c->obuf_aux = true;
            c->obf = true;
        }
    }
    update_irq(c);
}

static void device_notify(void *opaque)
{
    refill(opaque);
}

/* ---- Output port ------------------------------------------------------------------------------ */

static void drive_a20(struct i8042 *c)
{
    bool on = (c->outport & OUT_A20) != 0;
    if (c->a20_fn)
        c->a20_fn(c->a20_opaque, on);
    else
        vm_set_a20(c->vm, on);
}

static void write_outport(struct i8042 *c, uint8_t value)
{
    uint8_t old = c->outport;
    c->outport = value;
    if ((old ^ value) & OUT_A20) {
        LOG_DEBUG("A20 gate %s through the keyboard controller", (value & OUT_A20) ? "on" : "off");
        drive_a20(c);
    }
    if (!(value & OUT_RESET)) {
        LOG_INFO("reset through the keyboard controller's output port");
        vm_request_reset(c->vm);
    }
}

static uint8_t read_outport(const struct i8042 *c)
{
    uint8_t v = c->outport & (uint8_t)~(OUT_KBD_OBF | OUT_AUX_OBF);
    if (c->obf)
        v |= c->obuf_aux ? OUT_AUX_OBF : OUT_KBD_OBF;
    return v;
}

/* ---- Ports ----------------------------------------------------------------------------------- */

static void controller_command(struct i8042 *c, uint8_t cmd)
{
    /* A command written while another waits for its data byte replaces it. */
    c->pending = 0;
    if (cmd >= 0x20 && cmd <= 0x3f) {
        ctl_put(c, c->ram[cmd & 0x1f]);
    } else if ((cmd >= 0x60 && cmd <= 0x7f) || (cmd >= 0xd1 && cmd <= 0xd4)) {
        c->pending = cmd;
    } else if (cmd >= 0xf0) {
        /* Pulse the output port lines whose bit is 0 in the low nibble: bit 0 is the reset line. */
        if (!(cmd & 1)) {
            LOG_INFO("reset through the keyboard controller (command %#x)", cmd);
            vm_request_reset(c->vm);
        }
    } else {
        switch (cmd) {
        case 0xa7: c->ram[0] |= CCB_AUX_DIS; break;
        case 0xa8: c->ram[0] &= (uint8_t)~CCB_AUX_DIS; break;
        case 0xa9: ctl_put(c, 0x00); break;
        case 0xaa: ctl_put(c, 0x55); break;
        case 0xab: ctl_put(c, 0x00); break;
        case 0xad: c->ram[0] |= CCB_KBD_DIS; break;
        case 0xae: c->ram[0] &= (uint8_t)~CCB_KBD_DIS; break;
        case 0xc0: ctl_put(c, 0x80); break; /* input port: keyboard not inhibited */
        case 0xd0: ctl_put(c, read_outport(c)); break;
        case 0xdd: write_outport(c, c->outport & (uint8_t)~OUT_A20); break;
        case 0xdf: write_outport(c, c->outport | OUT_A20); break;
        case 0xe0: ctl_put(c, 0x00); break;
        default: LOG_DEBUG("ignored controller command %#x", cmd); break;
        }
    }
    refill(c);
}

static void data_write(struct i8042 *c, uint8_t v)
{
    uint8_t pending = c->pending;
    c->pending = 0;
    if (pending >= 0x60 && pending <= 0x7f) {
        c->ram[pending & 0x1f] = v;
    } else if (pending == 0xd1) {
        write_outport(c, v);
    } else if (pending == 0xd2) {
        ctl_put(c, v);
    } else if (pending == 0xd3) {
        ctl_put(c, CTL_AUX | v);
    } else if (pending == 0xd4) {
        ps2mouse_write(&c->mouse, v);
    } else {
        ps2kbd_write(&c->kbd, v);
    }
    refill(c);
}

static uint64_t i8042_read(void *opaque, uint64_t offset, unsigned size)
{
    struct i8042 *c = opaque;
    (void)size;
    if (offset == 0) {
        uint8_t v = c->obuf;
        /* The line drops before the next byte raises it again: one edge per byte. */
        c->obf = false;
        update_irq(c);
        refill(c);
        return v;
    }
    uint8_t st = STS_INH | (ccb(c) & CCB_SYS) | (c->a2 ? STS_A2 : 0);
    if (c->obf)
        st |= STS_OBF | (c->obuf_aux ? STS_AUXB : 0);
    return st;
}

static void i8042_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    struct i8042 *c = opaque;
    (void)size;
    c->a2 = offset != 0;
    if (offset == 0)
        data_write(c, (uint8_t)value);
    else
        controller_command(c, (uint8_t)value);
}

/* Ports 0x60 and 0x64 are one region each (0x61 is the PIT's); the offset tells them apart. */
static uint64_t data_read(void *opaque, uint64_t offset, unsigned size)
{
    return i8042_read(opaque, 0, size);
}
static void data_write_port(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    i8042_write(opaque, 0, value, size);
}
static uint64_t cmd_read(void *opaque, uint64_t offset, unsigned size)
{
    return i8042_read(opaque, 4, size);
}
static void cmd_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    i8042_write(opaque, 4, value, size);
}

static const struct io_ops g_data_ops = {
    .read = data_read, .write = data_write_port, .min_access = 1, .max_access = 1,
};
static const struct io_ops g_cmd_ops = { .read = cmd_read, .write = cmd_write, .min_access = 1, .max_access = 1 };

/* ---- Host input ------------------------------------------------------------------------------ */

static void inp_kbd_key_op(void *opaque, uint32_t keycode, bool down)
{
    struct i8042 *c = opaque;
    ps2kbd_key(&c->kbd, keycode, down);
}

static void inp_kbd_raw_op(void *opaque, const uint8_t *bytes, size_t len)
{
    struct i8042 *c = opaque;
    ps2kbd_raw(&c->kbd, bytes, len);
}

static unsigned inp_kbd_leds_op(void *opaque)
{
    struct i8042 *c = opaque;
    return ps2kbd_leds(&c->kbd);
}

static void inp_mouse_rel_op(void *opaque, int dx, int dy, int dz, unsigned buttons)
{
    struct i8042 *c = opaque;
    ps2mouse_move(&c->mouse, dx, dy, dz, buttons);
}

static const struct inp_kbd_ops g_kbd_ops = { .key = inp_kbd_key_op, .raw = inp_kbd_raw_op, .leds = inp_kbd_leds_op };
static const struct inp_mouse_ops g_mouse_ops = { .rel = inp_mouse_rel_op, .abs = NULL };

void i8042_set_a20_output(struct pdm_dev *dev, void (*fn)(void *opaque, bool level), void *opaque)
{
    struct i8042 *c = pdm_dev_state(dev);
    c->a20_fn = fn;
    c->a20_opaque = opaque;
    drive_a20(c);
}

/* ---- Device ---------------------------------------------------------------------------------- */

static void i8042_reset(struct pdm_dev *dev)
{
    struct i8042 *c = pdm_dev_state(dev);
    memset(c->ram, 0, sizeof(c->ram));
    c->ram[0] = CCB_RESET;
    c->pending = 0;
    c->obuf = 0;
    c->obf = c->obuf_aux = c->a2 = c->xlat_break = false;
    c->ctl_head = c->ctl_count = 0;
    ps2kbd_reset(&c->kbd);
    ps2mouse_reset(&c->mouse);
    c->outport = OUT_POWERON;
    drive_a20(c);
    update_irq(c);
}

static int i8042_construct(struct pdm_dev *dev, const struct pdm_cfg *cfg)
{
    static const char *const allowed[] = { NULL };
    struct i8042 *c = pdm_dev_state(dev);
    c->dev = dev;
    c->vm = pdm_dev_vm(dev);
    int rc = pdm_cfg_validate(cfg, pdm_dev_name(dev), allowed);
    if (!rc)
        rc = ps2kbd_init(&c->kbd, c->vm, device_notify, c);
    ps2mouse_init(&c->mouse, device_notify, c);
    if (!rc)
        rc = pdm_irq_create(c->vm, 1, "i8042-kbd", &c->irq_kbd);
    if (!rc)
        rc = pdm_irq_create(c->vm, 12, "i8042-aux", &c->irq_aux);
    if (!rc)
        rc = iom_region_create(c->vm, "i8042-data", 1, &g_data_ops, c, &c->io_data);
    if (!rc)
        rc = iom_region_map(c->io_data, I8042_PORT_DATA);
    if (!rc)
        rc = iom_region_create(c->vm, "i8042-cmd", 1, &g_cmd_ops, c, &c->io_cmd);
    if (!rc)
        rc = iom_region_map(c->io_cmd, I8042_PORT_CMD);
    if (!rc)
        rc = inp_kbd_register(c->vm, &g_kbd_ops, c);
    if (!rc) {
        c->registered = true;
        rc = inp_mouse_register(c->vm, &g_mouse_ops, c);
    }
    if (rc)
        return rc;
    i8042_reset(dev);
    return 0;
}

static void i8042_destroy(struct pdm_dev *dev)
{
    struct i8042 *c = pdm_dev_state(dev);
    if (c->registered)
        inp_unregister(c->vm, c);
    c->registered = false;
    if (c->io_cmd)
        iom_region_destroy(c->io_cmd);
    if (c->io_data)
        iom_region_destroy(c->io_data);
    if (c->irq_aux)
        pdm_irq_destroy(c->irq_aux);
    if (c->irq_kbd)
        pdm_irq_destroy(c->irq_kbd);
    ps2kbd_fini(&c->kbd);
}

static int i8042_save(struct pdm_dev *dev, struct ssm *ssm)
{
    struct i8042 *c = pdm_dev_state(dev);
    ssm_put_bytes(ssm, c->ram, sizeof(c->ram));
    ssm_put_u8(ssm, c->outport);
    ssm_put_u8(ssm, c->pending);
    ssm_put_u8(ssm, c->obuf);
    ssm_put_bool(ssm, c->obf);
    ssm_put_bool(ssm, c->obuf_aux);
    ssm_put_bool(ssm, c->a2);
    ssm_put_bool(ssm, c->xlat_break);
    ssm_put_u8(ssm, (uint8_t)c->ctl_count);
    for (unsigned i = 0; i < c->ctl_count; i++)
        ssm_put_u16(ssm, c->ctl[(c->ctl_head + i) % CTL_QUEUE]);
    ps2kbd_save(&c->kbd, ssm);
    ps2mouse_save(&c->mouse, ssm);
    return ssm_status(ssm);
}

static bool pending_valid(uint8_t p)
{
    return p == 0 || (p >= 0x60 && p <= 0x7f) || (p >= 0xd1 && p <= 0xd4);
}

static int i8042_load(struct pdm_dev *dev, struct ssm *ssm, uint32_t version)
{
    struct i8042 *c = pdm_dev_state(dev);
    if (version != I8042_SSM_VERSION)
        return VERR_SSM_VERSION;
    uint8_t ram[32], outport = 0, pending = 0, obuf = 0, ctl_count = 0;
    bool obf = false, obuf_aux = false, a2 = false, xlat_break = false;
    uint16_t ctl[CTL_QUEUE] = { 0 };
    ssm_get_bytes(ssm, ram, sizeof(ram));
    ssm_get_u8(ssm, &outport);
    ssm_get_u8(ssm, &pending);
    ssm_get_u8(ssm, &obuf);
    ssm_get_bool(ssm, &obf);
    ssm_get_bool(ssm, &obuf_aux);
    ssm_get_bool(ssm, &a2);
    ssm_get_bool(ssm, &xlat_break);
    ssm_get_u8(ssm, &ctl_count);
    int rc = ssm_status(ssm);
    if (rc)
        return rc;
    if (ctl_count > CTL_QUEUE || !pending_valid(pending)) {
        LOG_ERR("saved keyboard controller state is out of range (%u queued answers, pending command %#x)",
                ctl_count, pending);
        return VERR_SSM_CORRUPT;
    }
    for (unsigned i = 0; i < ctl_count; i++)
        ssm_get_u16(ssm, &ctl[i]);
    if ((rc = ssm_status(ssm)))
        return rc;
    /* The devices load into copies so that a failure leaves the controller as it was. */
    struct ps2kbd *kbd = malloc(sizeof(*kbd));
    struct ps2mouse mouse = c->mouse;
    if (!kbd)
        return VERR_NO_MEMORY;
    *kbd = c->kbd;
    rc = ps2kbd_load(kbd, ssm);
    if (!rc)
        rc = ps2mouse_load(&mouse, ssm);
    if (!rc)
        rc = ssm_status(ssm);
    if (rc) {
        /* ps2kbd_load re-arms the typematic timer only on success; the shared timer is untouched otherwise. */
        free(kbd);
        return rc;
    }
    c->kbd = *kbd;
    free(kbd);
    c->mouse = mouse;
    memcpy(c->ram, ram, sizeof(ram));
    c->pending = pending;
    c->obuf = obuf;
    c->obf = obf;
    c->obuf_aux = obuf_aux;
    c->a2 = a2;
    c->xlat_break = xlat_break;
    for (unsigned i = 0; i < ctl_count; i++)
        c->ctl[i] = ctl[i] & (CTL_AUX | 0xff);
    c->ctl_head = 0;
    c->ctl_count = ctl_count;
    c->outport = outport | OUT_RESET;
    drive_a20(c);
    update_irq(c);
    return 0;
}

const struct pdm_dev_desc g_dev_i8042 = {
    .name = "i8042",
    .description = "8042 keyboard controller with a PS/2 keyboard (IRQ 1) and mouse (IRQ 12), ports 0x60/0x64",
    .state_size = sizeof(struct i8042),
    .ssm_version = I8042_SSM_VERSION,
    .construct = i8042_construct,
    .reset = i8042_reset,
    .save = i8042_save,
    .load = i8042_load,
    .destroy = i8042_destroy,
};
