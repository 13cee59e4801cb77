/* uart16550.c - a National/TI PC16550D UART: registers, 16-byte FIFOs, interrupts, loopback and character timeout. */

/*
 * Design.  Every section number below refers to the PC16550D datasheet (TI SNLS378,
 * "PC16550D Universal Asynchronous Receiver/Transmitter With FIFOs").
 *
 * Transmission is immediate: a byte written to THR goes straight to the serial
 * backend (or, in loopback mode, into the receiver), so the transmitter holding
 * register and the transmit FIFO are always empty by the time the guest can look
 * again.  LSR.THRE and LSR.TEMT therefore read as 1, and a THR write re-raises the
 * THRE interrupt right after clearing it, exactly as a real UART does once its
 * shift register has taken the byte.  The guest is not throttled to the baud rate.
 *
 * Reception uses a 16-byte ring (1 byte when FIFOs are off).  The backend asks
 * uart_can_rx() how much fits and only hands that much to uart_rx(); when the FIFO
 * was full, reading RBR tells the backend to poll the host side again.
 *
 * Interrupts (section 8.6, table IV): line status > received data available /
 * character timeout > THR empty > modem status.  The INTR output reaches the GSI
 * only while MCR.OUT2 is set and loopback is off: PCs gate the UART's interrupt
 * with the -OUT2 pin, and loopback forces the modem outputs to their inactive
 * state (section 8.7).
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vireo/devices.h"
#include "vireo/pdm.h"
#include "vireo/rt.h"
#include "vireo/vm.h"

#define LOG_COMPONENT "uart"

/* Register offsets (section 8.1, table II). */
enum {
    UART_RBR_THR_DLL = 0,
    UART_IER_DLM = 1,
    UART_IIR_FCR = 2,
    UART_LCR = 3,
    UART_MCR = 4,
    UART_LSR = 5,
    UART_MSR = 6,
    UART_SCR = 7,
    UART_REG_COUNT = 8,
};

/* IER bits (section 8.5). */
#define UART_IER_ERBFI 0x01 /* received data available (and character timeout) */
#define UART_IER_ETBEI 0x02 /* transmitter holding register empty */
#define UART_IER_ELSI 0x04  /* receiver line status */
#define UART_IER_EDSSI 0x08 /* modem status */
#define UART_IER_MASK 0x0f

/* IIR values (section 8.6, table IV). */
#define UART_IIR_NONE 0x01
#define UART_IIR_MSR 0x00
#define UART_IIR_THRE 0x02
#define UART_IIR_RDA 0x04
#define UART_IIR_RLS 0x06
#define UART_IIR_CTI 0x0c
#define UART_IIR_FIFO_ON 0xc0

/* FCR bits (section 8.4). */
#define UART_FCR_ENABLE 0x01
#define UART_FCR_RX_RESET 0x02
#define UART_FCR_TX_RESET 0x04
#define UART_FCR_DMA_MODE 0x08
#define UART_FCR_TRIGGER_MASK 0xc0

/* LCR bits (section 8.3). */
#define UART_LCR_WLS_MASK 0x03
#define UART_LCR_STB 0x04
#define UART_LCR_PEN 0x08
#define UART_LCR_DLAB 0x80

/* MCR bits (section 8.7). */
#define UART_MCR_DTR 0x01
#define UART_MCR_RTS 0x02
#define UART_MCR_OUT1 0x04
#define UART_MCR_OUT2 0x08
#define UART_MCR_LOOP 0x10
#define UART_MCR_MASK 0x1f

/* LSR bits (section 8.2). */
#define UART_LSR_DR 0x01
#define UART_LSR_OE 0x02
#define UART_LSR_PE 0x04
#define UART_LSR_FE 0x08
#define UART_LSR_BI 0x10
#define UART_LSR_THRE 0x20
#define UART_LSR_TEMT 0x40
#define UART_LSR_ERRORS (UART_LSR_OE | UART_LSR_PE | UART_LSR_FE | UART_LSR_BI)

/* MSR bits (section 8.8). */
#define UART_MSR_DCTS 0x01
#define UART_MSR_DDSR 0x02
#define UART_MSR_TERI 0x04
#define UART_MSR_DDCD 0x08
#define UART_MSR_DELTAS 0x0f
#define UART_MSR_CTS 0x10
#define UART_MSR_DSR 0x20
#define UART_MSR_RI 0x40
#define UART_MSR_DCD 0x80

#define UART_FIFO_SIZE 16
/* The reference clock of a PC's UART: 1.8432 MHz, divided by 16 per bit (section 8.9). */
#define UART_CLOCK_HZ 1843200u
/* A character timeout fires after 4 character times without FIFO activity (section 8.6). */
#define UART_TIMEOUT_CHARS 4
/*
 * What the modem inputs read outside loopback: a null-modem cable to the host with
 * the other side ready (CTS, DSR and DCD asserted, no ring), so guests that wait for
 * carrier or clear-to-send keep sending.
 */
#define UART_MSR_HOST_LINES (UART_MSR_CTS | UART_MSR_DSR | UART_MSR_DCD)

#define UART_SSM_VERSION 1

struct uart {
    struct pdm_dev *dev;
    struct vm *vm;
    struct io_region *region;
    struct pdm_irq *irq;
    struct tm_timer *timeout_timer;
    struct serial_backend *backend;
    uint16_t iobase;
    bool irq_level;   /* what was last driven onto the GSI */
    bool rx_starved;  /* the backend was told "no room"; poke it when room appears */

    /* Guest-visible registers. */
    uint16_t divisor;
    uint8_t ier;
    uint8_t lcr;
    uint8_t mcr;
    uint8_t lsr_errors; /* OE/PE/FE/BI; DR, THRE and TEMT are derived */
    uint8_t msr;
    uint8_t scr;
    uint8_t fcr;        /* FIFO enable, DMA mode and trigger bits as last written */
    uint8_t rbr_last;   /* what RBR reads when the FIFO is empty */
    bool thr_ipending;  /* THRE interrupt latched (section 8.6) */
    bool timeout_ipending;

    /* Receive FIFO (ring). */
    uint8_t rx_fifo[UART_FIFO_SIZE];
    uint8_t rx_head;
    uint8_t rx_count;
};

static bool uart_fifo_enabled(const struct uart *s)
{
    return (s->fcr & UART_FCR_ENABLE) != 0;
}

static unsigned uart_rx_capacity(const struct uart *s)
{
    return uart_fifo_enabled(s) ? UART_FIFO_SIZE : 1;
}

/* RX FIFO trigger level from FCR bits 7:6 (section 8.4, table III). */
static unsigned uart_rx_trigger(const struct uart *s)
{
    static const unsigned levels[4] = {1, 4, 8, 14};
    return levels[(s->fcr & UART_FCR_TRIGGER_MASK) >> 6];
}

/*
 * One character time in nanoseconds at the programmed format and baud rate:
 * start bit, 5-8 data bits, optional parity, 1/1.5/2 stop bits (section 8.3).
 * Counted in half bits so 1.5 stop bits stay exact.
 */
static uint64_t uart_char_time_ns(const struct uart *s)
{
    unsigned data_bits = 5 + (s->lcr & UART_LCR_WLS_MASK);
    unsigned half_bits = 2 * (1 + data_bits);
    if (s->lcr & UART_LCR_PEN)
        half_bits += 2;
    if (s->lcr & UART_LCR_STB)
        half_bits += data_bits == 5 ? 3 : 4;
    else
        half_bits += 2;
    /* A zero divisor is undefined in the datasheet; treat it as the fastest rate. */
    uint64_t divisor = s->divisor ? s->divisor : 1;
    return (uint64_t)half_bits * divisor * 16 * RT_NS_PER_SEC / (2ull * UART_CLOCK_HZ);
}

/* The interrupt the IIR reports now, by priority (section 8.6, table IV). */
static uint8_t uart_iir_source(const struct uart *s)
{
    if ((s->ier & UART_IER_ELSI) && (s->lsr_errors & UART_LSR_ERRORS))
        return UART_IIR_RLS;
    if (s->ier & UART_IER_ERBFI) {
        unsigned needed = uart_fifo_enabled(s) ? uart_rx_trigger(s) : 1;
        if (s->rx_count >= needed)
            return UART_IIR_RDA;
        if (s->timeout_ipending)
            return UART_IIR_CTI;
    }
    if ((s->ier & UART_IER_ETBEI) && s->thr_ipending)
        return UART_IIR_THRE;
    if ((s->ier & UART_IER_EDSSI) && (s->msr & UART_MSR_DELTAS))
        return UART_IIR_MSR;
    return UART_IIR_NONE;
}

static bool uart_irq_wanted(const struct uart *s)
{
    bool gate_open = (s->mcr & (UART_MCR_OUT2 | UART_MCR_LOOP)) == UART_MCR_OUT2;
    return gate_open && uart_iir_source(s) != UART_IIR_NONE;
}

static void uart_irq_update(struct uart *s)
{
    bool level = uart_irq_wanted(s);
    if (level != s->irq_level) {
        s->irq_level = level;
        pdm_irq_set(s->irq, level);
    }
}

/* Restarts (or stops) the character timeout after FIFO activity (section 8.6). */
static void uart_timeout_restart(struct uart *s)
{
    if (uart_fifo_enabled(s) && s->rx_count > 0)
        tm_timer_arm(s->timeout_timer, tm_now_ns(s->vm) + UART_TIMEOUT_CHARS * uart_char_time_ns(s));
    else
        tm_timer_cancel(s->timeout_timer);
}

static void uart_timeout_fire(void *opaque)
{
    struct uart *s = opaque;
    if (uart_fifo_enabled(s) && s->rx_count > 0) {
        s->timeout_ipending = true;
        uart_irq_update(s);
    }
}

static void uart_rx_fifo_clear(struct uart *s)
{
    s->rx_head = 0;
    s->rx_count = 0;
    s->timeout_ipending = false;
    tm_timer_cancel(s->timeout_timer);
}

/* Tells the backend to read again if it was told the FIFO had no room. */
static void uart_rx_unstarve(struct uart *s)
{
    if (s->rx_starved && s->backend) {
        s->rx_starved = false;
        serial_backend_rx_ready(s->backend);
    }
}

/*
 * One character arrives at the receiver.  With the FIFO full it is lost and OE is
 * set; without FIFOs it overwrites the unread RBR and sets OE (section 8.2, LSR1).
 */
static void uart_rx_byte(struct uart *s, uint8_t byte)
{
    if (!uart_fifo_enabled(s)) {
        if (s->rx_count > 0)
            s->lsr_errors |= UART_LSR_OE;
        s->rx_fifo[0] = byte;
        s->rx_head = 0;
        s->rx_count = 1;
        return;
    }
    if (s->rx_count >= UART_FIFO_SIZE) {
        s->lsr_errors |= UART_LSR_OE;
        return;
    }
    s->rx_fifo[(s->rx_head + s->rx_count) % UART_FIFO_SIZE] = byte;
    s->rx_count++;
}

static uint8_t uart_rbr_read(struct uart *s)
{
    if (s->rx_count == 0)
        return s->rbr_last;
    uint8_t byte = s->rx_fifo[s->rx_head];
    s->rx_head = (uint8_t)((s->rx_head + 1) % UART_FIFO_SIZE);
    s->rx_count--;
    s->rbr_last = byte;
    /* Reading a character clears an occurred timeout and restarts the timer (section 8.6). */
    s->timeout_ipending = false;
    uart_timeout_restart(s);
    uart_rx_unstarve(s);
    return byte;
}

static void uart_thr_write(struct uart *s, uint8_t byte)
{
    /* Writing THR clears a THRE interrupt (table IV); the byte leaves at once. */
    s->thr_ipending = false;
    if (s->mcr & UART_MCR_LOOP) {
        /* Loopback: the transmitter shift register feeds the receiver (section 8.7). */
        uart_rx_byte(s, byte);
        uart_timeout_restart(s);
    } else if (s->backend) {
        serial_backend_write(s->backend, &byte, 1);
    }
    /* The holding register is empty again: THRE (and TEMT) set, interrupt latched. */
    s->thr_ipending = true;
}

/* The modem-status inputs: the host side, or MCR looped back (section 8.7). */
static uint8_t uart_msr_inputs(const struct uart *s)
{
    if (!(s->mcr & UART_MCR_LOOP))
        return UART_MSR_HOST_LINES;
    uint8_t in = 0;
    if (s->mcr & UART_MCR_RTS)
        in |= UART_MSR_CTS;
    if (s->mcr & UART_MCR_DTR)
        in |= UART_MSR_DSR;
    if (s->mcr & UART_MCR_OUT1)
        in |= UART_MSR_RI;
    if (s->mcr & UART_MCR_OUT2)
        in |= UART_MSR_DCD;
    return in;
}

/* Latches the delta bits for input changes (section 8.8: TERI only on RI's trailing edge). */
static void uart_msr_update(struct uart *s)
{
    uint8_t in = uart_msr_inputs(s);
    uint8_t old = s->msr & 0xf0;
    uint8_t changed = old ^ in;
    uint8_t deltas = s->msr & UART_MSR_DELTAS;
    if (changed & UART_MSR_CTS)
        deltas |= UART_MSR_DCTS;
    if (changed & UART_MSR_DSR)
        deltas |= UART_MSR_DDSR;
    if ((old & UART_MSR_RI) && !(in & UART_MSR_RI))
        deltas |= UART_MSR_TERI;
    if (changed & UART_MSR_DCD)
        deltas |= UART_MSR_DDCD;
    s->msr = (uint8_t)(in | deltas);
}

static void uart_fcr_write(struct uart *s, uint8_t value)
{
    bool was_enabled = uart_fifo_enabled(s);
    bool enable = (value & UART_FCR_ENABLE) != 0;
    /*
     * Changing FCR0 clears both FIFOs; the other bits only take effect with FCR0 set
     * (section 8.4).  The transmit FIFO never holds bytes here, so its reset is moot.
     */
    if (enable != was_enabled || (enable && (value & UART_FCR_RX_RESET)))
        uart_rx_fifo_clear(s);
    if (enable)
        s->fcr = value & (UART_FCR_ENABLE | UART_FCR_DMA_MODE | UART_FCR_TRIGGER_MASK);
    else
        s->fcr = 0;
    uart_rx_unstarve(s);
}

static void uart_mcr_write(struct uart *s, uint8_t value)
{
    bool was_loop = (s->mcr & UART_MCR_LOOP) != 0;
    s->mcr = value & UART_MCR_MASK;
    uart_msr_update(s);
    /* Leaving loopback reconnects SIN: the backend may deliver input again. */
    if (was_loop && !(s->mcr & UART_MCR_LOOP))
        uart_rx_unstarve(s);
}

static uint64_t uart_io_read(void *opaque, uint64_t offset, unsigned size)
{
    struct uart *s = opaque;
    uint8_t value = 0xff;
    (void)size;
    switch (offset) {
    case UART_RBR_THR_DLL:
        value = (s->lcr & UART_LCR_DLAB) ? (uint8_t)(s->divisor & 0xff) : uart_rbr_read(s);
        break;
    case UART_IER_DLM:
        value = (s->lcr & UART_LCR_DLAB) ? (uint8_t)(s->divisor >> 8) : s->ier;
        break;
    case UART_IIR_FCR: {
        uint8_t source = uart_iir_source(s);
        /* Reading IIR while it shows THRE clears that interrupt (table IV). */
        if (source == UART_IIR_THRE)
            s->thr_ipending = false;
        value = (uint8_t)(source | (uart_fifo_enabled(s) ? UART_IIR_FIFO_ON : 0));
        break;
    }
    case UART_LCR:
        value = s->lcr;
        break;
    case UART_MCR:
        value = s->mcr;
        break;
    case UART_LSR:
        value = (uint8_t)(s->lsr_errors | UART_LSR_THRE | UART_LSR_TEMT | (s->rx_count ? UART_LSR_DR : 0));
        /* Reading LSR clears the error bits (section 8.2). */
        s->lsr_errors = 0;
        break;
    case UART_MSR:
        value = s->msr;
        /* Reading MSR clears the delta bits (section 8.8). */
        s->msr &= (uint8_t)~UART_MSR_DELTAS;
        break;
    case UART_SCR:
        value = s->scr;
        break;
    default:
        break;
    }
    uart_irq_update(s);
    return value;
}

static void uart_io_write(void *opaque, uint64_t offset, uint64_t value64, unsigned size)
{
    struct uart *s = opaque;
    uint8_t value = (uint8_t)value64;
    (void)size;
    switch (offset) {
    case UART_RBR_THR_DLL:
        if (s->lcr & UART_LCR_DLAB)
            s->divisor = (uint16_t)((s->divisor & 0xff00) | value);
        else
            uart_thr_write(s, value);
        break;
    case UART_IER_DLM:
        if (s->lcr & UART_LCR_DLAB) {
            s->divisor = (uint16_t)((s->divisor & 0x00ff) | (value << 8));
        } else {
            uint8_t old = s->ier;
            s->ier = value & UART_IER_MASK;
            /*
             * Enabling ETBEI while THR is empty raises THRE at once; drivers rely on
             * this to start transmission (and probe for it).
             */
            if (!(old & UART_IER_ETBEI) && (s->ier & UART_IER_ETBEI))
                s->thr_ipending = true;
        }
        break;
    case UART_IIR_FCR:
        uart_fcr_write(s, value);
        break;
    case UART_LCR:
        s->lcr = value;
        break;
    case UART_MCR:
        uart_mcr_write(s, value);
        break;
    case UART_SCR:
        s->scr = value;
        break;
    default:
        /* LSR and MSR are read-only (writes are a factory-test feature, section 8.2). */
        break;
    }
    uart_irq_update(s);
}

static const struct io_ops g_uart_io_ops = {
    .read = uart_io_read,
    .write = uart_io_write,
    .min_access = 1,
    .max_access = 1,
};

/* ---- Backend client (called on the event loop with the VM lock held) ---- */

static size_t uart_can_rx(void *opaque)
{
    struct uart *s = opaque;
    /* In loopback SIN is disconnected (section 8.7): host input waits. */
    unsigned room = (s->mcr & UART_MCR_LOOP) ? 0 : uart_rx_capacity(s) - s->rx_count;
    if (room == 0)
        s->rx_starved = true;
    return room;
}

static void uart_rx(void *opaque, const uint8_t *buf, size_t len)
{
    struct uart *s = opaque;
    if (s->mcr & UART_MCR_LOOP)
        return;
    for (size_t i = 0; i < len; i++)
        uart_rx_byte(s, buf[i]);
    if (len > 0)
        uart_timeout_restart(s);
    uart_irq_update(s);
}

/* ---- Device model ---- */

/* Master reset values (section 8.10, table V); the divisor latch and SCR keep their contents. */
static void uart_reset(struct pdm_dev *dev)
{
    struct uart *s = pdm_dev_state(dev);
    s->ier = 0;
    s->lcr = 0;
    s->mcr = 0;
    s->fcr = 0;
    s->lsr_errors = 0;
    s->thr_ipending = false;
    uart_rx_fifo_clear(s);
    s->msr = uart_msr_inputs(s);
    uart_irq_update(s);
    uart_rx_unstarve(s);
}

static int uart_construct(struct pdm_dev *dev, const struct pdm_cfg *cfg)
{
    static const char *const allowed[] = {"iobase", "irq", "backend", NULL};
    struct uart *s = pdm_dev_state(dev);
    s->dev = dev;
    s->vm = pdm_dev_vm(dev);

    int rc = pdm_cfg_validate(cfg, pdm_dev_name(dev), allowed);
    if (rc < 0)
        return rc;
    uint64_t iobase;
    unsigned irq;
    rc = pdm_cfg_get_u64(cfg, "iobase", 0x3f8, &iobase);
    if (rc < 0)
        return rc;
    rc = pdm_cfg_get_gsi(cfg, pdm_dev_name(dev), 4, &irq);
    if (rc < 0)
        return rc;
    if (iobase > 0x10000 - UART_REG_COUNT) {
        LOG_ERR("%s: iobase 0x%llx out of range", pdm_dev_name(dev), (unsigned long long)iobase);
        return VERR_CFG_BAD_VALUE;
    }
    s->iobase = (uint16_t)iobase;
    const char *spec = pdm_cfg_get_str(cfg, "backend", "null");

    rc = tm_timer_create(s->vm, pdm_dev_name(dev), uart_timeout_fire, s, &s->timeout_timer);
    if (rc < 0)
        return rc;
    rc = pdm_irq_create(s->vm, irq, pdm_dev_name(dev), &s->irq);
    if (rc < 0)
        return rc;
    rc = iom_region_create(s->vm, pdm_dev_name(dev), UART_REG_COUNT, &g_uart_io_ops, s, &s->region);
    if (rc < 0)
        return rc;
    rc = iom_region_map(s->region, s->iobase);
    if (rc < 0) {
        LOG_ERR("%s: ports 0x%x-0x%x are taken", pdm_dev_name(dev), s->iobase, s->iobase + UART_REG_COUNT - 1);
        return rc;
    }
    const struct serial_backend_client client = {.can_rx = uart_can_rx, .rx = uart_rx, .opaque = s};
    rc = serial_backend_open(s->vm, spec, &client, &s->backend);
    if (rc < 0)
        return rc;

    /* 9600 baud until the guest programs the divisor latch (its reset value is undefined). */
    s->divisor = 12;
    uart_reset(dev);
    return 0;
}

static void uart_destroy(struct pdm_dev *dev)
{
    struct uart *s = pdm_dev_state(dev);
    if (s->backend)
        serial_backend_close(s->backend);
    s->backend = NULL;
    if (s->region)
        iom_region_destroy(s->region);
    s->region = NULL;
    if (s->irq)
        pdm_irq_destroy(s->irq);
    s->irq = NULL;
    if (s->timeout_timer)
        tm_timer_destroy(s->timeout_timer);
    s->timeout_timer = NULL;
}

static int uart_save(struct pdm_dev *dev, struct ssm *ssm)
{
    struct uart *s = pdm_dev_state(dev);
    ssm_put_u16(ssm, s->divisor);
    ssm_put_u8(ssm, s->ier);
    ssm_put_u8(ssm, s->lcr);
    ssm_put_u8(ssm, s->mcr);
    ssm_put_u8(ssm, s->lsr_errors);
    ssm_put_u8(ssm, s->msr);
    ssm_put_u8(ssm, s->scr);
    ssm_put_u8(ssm, s->fcr);
    ssm_put_u8(ssm, s->rbr_last);
    ssm_put_bool(ssm, s->thr_ipending);
    ssm_put_bool(ssm, s->timeout_ipending);
    ssm_put_u8(ssm, s->rx_count);
    for (unsigned i = 0; i < s->rx_count; i++)
        ssm_put_u8(ssm, s->rx_fifo[(s->rx_head + i) % UART_FIFO_SIZE]);
    bool armed = tm_timer_is_armed(s->timeout_timer);
    ssm_put_bool(ssm, armed);
    ssm_put_u64(ssm, armed ? tm_timer_expire_ns(s->timeout_timer) : 0);
    return ssm_status(ssm);
}

static int uart_load(struct pdm_dev *dev, struct ssm *ssm, uint32_t version)
{
    struct uart *s = pdm_dev_state(dev);
    if (version != UART_SSM_VERSION)
        return VERR_SSM_VERSION;
    uint16_t divisor;
    uint8_t ier, lcr, mcr, lsr_errors, msr, scr, fcr, rbr_last, rx_count;
    uint8_t fifo[UART_FIFO_SIZE];
    bool thr_ipending, timeout_ipending, armed;
    uint64_t expire_ns;
    ssm_get_u16(ssm, &divisor);
    ssm_get_u8(ssm, &ier);
    ssm_get_u8(ssm, &lcr);
    ssm_get_u8(ssm, &mcr);
    ssm_get_u8(ssm, &lsr_errors);
    ssm_get_u8(ssm, &msr);
    ssm_get_u8(ssm, &scr);
    ssm_get_u8(ssm, &fcr);
    ssm_get_u8(ssm, &rbr_last);
    ssm_get_bool(ssm, &thr_ipending);
    ssm_get_bool(ssm, &timeout_ipending);
    int rc = ssm_get_u8(ssm, &rx_count);
    if (rc < 0)
        return rc;
    /* The stream is untrusted: the FIFO count bounds the bytes that follow. */
    unsigned capacity = (fcr & UART_FCR_ENABLE) ? UART_FIFO_SIZE : 1;
    if (rx_count > capacity)
        return VERR_SSM_CORRUPT;
    for (unsigned i = 0; i < rx_count; i++)
        ssm_get_u8(ssm, &fifo[i]);
    ssm_get_bool(ssm, &armed);
    ssm_get_u64(ssm, &expire_ns);
    rc = ssm_status(ssm);
    if (rc < 0)
        return rc;

    s->divisor = divisor;
    s->ier = ier & UART_IER_MASK;
    s->lcr = lcr;
    s->mcr = mcr & UART_MCR_MASK;
    s->lsr_errors = lsr_errors & UART_LSR_ERRORS;
    s->scr = scr;
    s->fcr = (fcr & UART_FCR_ENABLE) ? (fcr & (UART_FCR_ENABLE | UART_FCR_DMA_MODE | UART_FCR_TRIGGER_MASK)) : 0;
    s->rbr_last = rbr_last;
    s->thr_ipending = thr_ipending;
    s->timeout_ipending = timeout_ipending;
    s->rx_head = 0;
    s->rx_count = rx_count;
    memcpy(s->rx_fifo, fifo, rx_count);
    /* The levels follow MCR (loopback) or the host; only the latched deltas come from the stream. */
    s->msr = (uint8_t)(uart_msr_inputs(s) | (msr & UART_MSR_DELTAS));
    if (armed)
        tm_timer_arm(s->timeout_timer, expire_ns);
    else
        tm_timer_cancel(s->timeout_timer);
    /* Drive the wire to the loaded level whatever it was before. */
    s->irq_level = uart_irq_wanted(s);
    pdm_irq_set(s->irq, s->irq_level);
    s->rx_starved = true;
    uart_rx_unstarve(s);
    return 0;
}

const struct pdm_dev_desc g_dev_uart16550 = {
    .name = "uart16550",
    .description = "16550A UART with 16-byte FIFOs",
    .state_size = sizeof(struct uart),
    .ssm_version = UART_SSM_VERSION,
    .construct = uart_construct,
    .reset = uart_reset,
    .save = uart_save,
    .load = uart_load,
    .destroy = uart_destroy,
};
