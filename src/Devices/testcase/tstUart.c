/* tstUart.c - 16550A UART tests: registers and DLAB, FIFOs, interrupt priorities, THRE, loopback, timeouts, host input, saved state. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "harness.h"

#define COM1 0x3f8
#define RBR (COM1 + 0)
#define THR (COM1 + 0)
#define DLL (COM1 + 0)
#define IER (COM1 + 1)
#define DLM (COM1 + 1)
#define IIR (COM1 + 2)
#define FCR (COM1 + 2)
#define LCR (COM1 + 3)
#define MCR (COM1 + 4)
#define LSR (COM1 + 5)
#define MSR (COM1 + 6)
#define SCR (COM1 + 7)
#define GSI 4

/* Register values from the PC16550D datasheet. */
#define IIR_NONE 0x01
#define IIR_MSR 0x00
#define IIR_THRE 0x02
#define IIR_RDA 0x04
#define IIR_RLS 0x06
#define IIR_CTI 0x0c
#define IIR_FIFO 0xc0
#define LSR_DR 0x01
#define LSR_OE 0x02
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define MCR_DTR 0x01
#define MCR_RTS 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10

struct fixture {
    struct vm *vm;
    struct pdm_dev *uart;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->vm = harness_vm_create(0);
    f->uart = harness_dev_create(f->vm, &g_dev_uart16550, "com1", "iobase=0x3f8,irq=4");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    harness_vm_destroy(f->vm);
    free(f);
    return 0;
}

/* 115200 baud (divisor 1), 8N1: one character is 10 bits of 16 clocks at 1.8432 MHz. */
static uint64_t char_time_ns_8n1_div1(void)
{
    return 20ull * 16 * 1000000000ull / (2ull * 1843200);
}

static void set_divisor(struct vm *vm, uint16_t divisor, uint8_t lcr)
{
    harness_outb(vm, LCR, 0x80);
    harness_outb(vm, DLL, (uint8_t)divisor);
    harness_outb(vm, DLM, (uint8_t)(divisor >> 8));
    harness_outb(vm, LCR, lcr);
}

static void test_reset_values(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(harness_inb(f->vm, IER), 0x00);
    assert_int_equal(harness_inb(f->vm, IIR), IIR_NONE);
    assert_int_equal(harness_inb(f->vm, LCR), 0x00);
    assert_int_equal(harness_inb(f->vm, MCR), 0x00);
    assert_int_equal(harness_inb(f->vm, LSR), LSR_THRE | LSR_TEMT);
    /* The host side looks like a ready modem: CTS, DSR and DCD, no deltas. */
    assert_int_equal(harness_inb(f->vm, MSR), 0xb0);
    assert_false(harness_gsi_level(f->vm, GSI));
}

static void test_dlab_divisor_access(void **state)
{
    struct fixture *f = *state;
    harness_outb(f->vm, IER, 0x05);
    harness_outb(f->vm, LCR, 0x83);
    harness_outb(f->vm, DLL, 0x34);
    harness_outb(f->vm, DLM, 0x12);
    assert_int_equal(harness_inb(f->vm, DLL), 0x34);
    assert_int_equal(harness_inb(f->vm, DLM), 0x12);
    assert_int_equal(harness_inb(f->vm, LCR), 0x83);
    /* With DLAB clear the same offsets are RBR/THR and IER again. */
    harness_outb(f->vm, LCR, 0x03);
    assert_int_equal(harness_inb(f->vm, IER), 0x05);
    harness_outb(f->vm, IER, 0xff);
    assert_int_equal(harness_inb(f->vm, IER), 0x0f);
    harness_outb(f->vm, LCR, 0x80);
    assert_int_equal(harness_inb(f->vm, DLL), 0x34);
    assert_int_equal(harness_inb(f->vm, DLM), 0x12);
    harness_outb(f->vm, SCR, 0x5a);
    assert_int_equal(harness_inb(f->vm, SCR), 0x5a);
    harness_outb(f->vm, MCR, 0xff);
    assert_int_equal(harness_inb(f->vm, MCR), 0x1f);
}

static void test_loopback_fifo_fill_and_overrun(void **state)
{
    struct fixture *f = *state;
    harness_outb(f->vm, MCR, MCR_LOOP);
    harness_outb(f->vm, FCR, 0x07);
    assert_int_equal(harness_inb(f->vm, IIR) & IIR_FIFO, IIR_FIFO);
    for (unsigned i = 0; i < 16; i++)
        harness_outb(f->vm, THR, (uint8_t)('a' + i));
    assert_int_equal(harness_inb(f->vm, LSR), LSR_DR | LSR_THRE | LSR_TEMT);
    /* The 17th character finds the FIFO full: it is lost and OE set (LSR1). */
    harness_outb(f->vm, THR, 'X');
    assert_int_equal(harness_inb(f->vm, LSR), LSR_DR | LSR_OE | LSR_THRE | LSR_TEMT);
    /* Reading LSR cleared OE. */
    assert_int_equal(harness_inb(f->vm, LSR), LSR_DR | LSR_THRE | LSR_TEMT);
    for (unsigned i = 0; i < 16; i++)
        assert_int_equal(harness_inb(f->vm, RBR), 'a' + i);
    assert_int_equal(harness_inb(f->vm, LSR) & LSR_DR, 0);

    /* FCR bit 1 empties the receive FIFO. */
    harness_outb(f->vm, THR, 'q');
    assert_int_equal(harness_inb(f->vm, LSR) & LSR_DR, LSR_DR);
    harness_outb(f->vm, FCR, 0x03);
    assert_int_equal(harness_inb(f->vm, LSR) & LSR_DR, 0);
}

static void test_non_fifo_overrun(void **state)
{
    struct fixture *f = *state;
    harness_outb(f->vm, MCR, MCR_LOOP);
    harness_outb(f->vm, THR, '1');
    harness_outb(f->vm, THR, '2');
    assert_int_equal(harness_inb(f->vm, IIR) & IIR_FIFO, 0);
    assert_int_equal(harness_inb(f->vm, LSR), LSR_DR | LSR_OE | LSR_THRE | LSR_TEMT);
    /* Without FIFOs the new character overwrote the unread one. */
    assert_int_equal(harness_inb(f->vm, RBR), '2');
    assert_int_equal(harness_inb(f->vm, LSR), LSR_THRE | LSR_TEMT);
}

static void test_fifo_trigger_levels(void **state)
{
    struct fixture *f = *state;
    static const struct {
        uint8_t fcr;
        unsigned level;
    } cases[] = {{0x01, 1}, {0x41, 4}, {0x81, 8}, {0xc1, 14}};
    harness_outb(f->vm, MCR, MCR_LOOP);
    harness_outb(f->vm, IER, 0x01);
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        harness_outb(f->vm, FCR, (uint8_t)(cases[c].fcr | 0x02));
        for (unsigned i = 1; i <= cases[c].level; i++) {
            harness_outb(f->vm, THR, (uint8_t)i);
            uint8_t expect = i < cases[c].level ? IIR_NONE : IIR_RDA;
            assert_int_equal(harness_inb(f->vm, IIR), IIR_FIFO | expect);
        }
        /* Falling below the trigger level withdraws the interrupt. */
        assert_int_equal(harness_inb(f->vm, RBR), 1);
        assert_int_equal(harness_inb(f->vm, IIR), IIR_FIFO | IIR_NONE);
    }
}

static void test_interrupt_priorities(void **state)
{
    struct fixture *f = *state;
    harness_outb(f->vm, FCR, 0x07);
    /* Loopback with all outputs off: CTS, DSR, DCD fall, so MSR has deltas. */
    harness_outb(f->vm, MCR, MCR_LOOP);
    for (unsigned i = 0; i < 17; i++)
        harness_outb(f->vm, THR, (uint8_t)i);
    harness_outb(f->vm, IER, 0x0f);
    /* Enabling ETBEI latched THRE too; every source is pending now. */
    assert_int_equal(harness_inb(f->vm, IIR), IIR_FIFO | IIR_RLS);
    assert_int_equal(harness_inb(f->vm, LSR) & LSR_OE, LSR_OE);
    assert_int_equal(harness_inb(f->vm, IIR), IIR_FIFO | IIR_RDA);
    for (unsigned i = 0; i < 16; i++)
        harness_inb(f->vm, RBR);
    assert_int_equal(harness_inb(f->vm, IIR), IIR_FIFO | IIR_THRE);
    /* That IIR read cleared THRE: modem status is next. */
    assert_int_equal(harness_inb(f->vm, IIR), IIR_FIFO | IIR_MSR);
    assert_int_equal(harness_inb(f->vm, MSR), 0x0b);
    assert_int_equal(harness_inb(f->vm, IIR), IIR_FIFO | IIR_NONE);
}

static void test_thre_semantics(void **state)
{
    struct fixture *f = *state;
    harness_outb(f->vm, MCR, MCR_OUT2);
    harness_gsi_clear(f->vm);
    /* Enabling ETBEI while THR is empty raises THRE at once. */
    harness_outb(f->vm, IER, 0x02);
    assert_true(harness_gsi_level(f->vm, GSI));
    assert_int_equal(harness_gsi_rises(f->vm, GSI), 1);
    /* Reading IIR that shows THRE clears it. */
    assert_int_equal(harness_inb(f->vm, IIR), IIR_THRE);
    assert_false(harness_gsi_level(f->vm, GSI));
    assert_int_equal(harness_inb(f->vm, IIR), IIR_NONE);
    /* A THR write clears it and the holding register empties again: a new interrupt. */
    harness_outb(f->vm, THR, 'x');
    assert_true(harness_gsi_level(f->vm, GSI));
    assert_int_equal(harness_gsi_rises(f->vm, GSI), 2);
    assert_int_equal(harness_inb(f->vm, LSR), LSR_THRE | LSR_TEMT);
    /* Re-writing IER with ETBEI already set does not latch another one. */
    assert_int_equal(harness_inb(f->vm, IIR), IIR_THRE);
    harness_outb(f->vm, IER, 0x02);
    assert_int_equal(harness_inb(f->vm, IIR), IIR_NONE);
    /* Toggling ETBEI off and on does (Linux probes for this). */
    harness_outb(f->vm, IER, 0x00);
    harness_outb(f->vm, IER, 0x02);
    assert_int_equal(harness_inb(f->vm, IIR), IIR_THRE);
}

static void test_out2_gates_irq(void **state)
{
    struct fixture *f = *state;
    harness_outb(f->vm, IER, 0x02);
    /* THRE pending but OUT2 off: the PC's gate keeps the line low. */
    assert_false(harness_gsi_level(f->vm, GSI));
    harness_outb(f->vm, MCR, MCR_OUT2);
    assert_true(harness_gsi_level(f->vm, GSI));
    /* Loopback forces -OUT2 inactive, closing the gate. */
    harness_outb(f->vm, MCR, MCR_OUT2 | MCR_LOOP);
    assert_false(harness_gsi_level(f->vm, GSI));
    harness_outb(f->vm, MCR, MCR_OUT2);
    assert_true(harness_gsi_level(f->vm, GSI));
    harness_outb(f->vm, MCR, 0);
    assert_false(harness_gsi_level(f->vm, GSI));
}

static void test_loopback_modem_lines(void **state)
{
    struct fixture *f = *state;
    harness_outb(f->vm, MCR, MCR_LOOP);
    /* CTS, DSR and DCD fell from the host's levels. */
    assert_int_equal(harness_inb(f->vm, MSR), 0x0b);
    assert_int_equal(harness_inb(f->vm, MSR), 0x00);
    harness_outb(f->vm, MCR, MCR_LOOP | MCR_OUT1);
    /* RI rising is not a TERI edge. */
    assert_int_equal(harness_inb(f->vm, MSR), 0x40);
    harness_outb(f->vm, MCR, MCR_LOOP);
    assert_int_equal(harness_inb(f->vm, MSR), 0x04);
    harness_outb(f->vm, MCR, MCR_LOOP | MCR_RTS);
    assert_int_equal(harness_inb(f->vm, MSR), 0x11);
    harness_outb(f->vm, MCR, MCR_LOOP | MCR_DTR);
    assert_int_equal(harness_inb(f->vm, MSR), 0x23);
    harness_outb(f->vm, MCR, MCR_LOOP | MCR_DTR | MCR_OUT2);
    assert_int_equal(harness_inb(f->vm, MSR), 0xa8);
    /* Modem status interrupt: EDSSI with a delta pending. */
    harness_outb(f->vm, IER, 0x08);
    harness_outb(f->vm, MCR, MCR_LOOP);
    assert_int_equal(harness_inb(f->vm, IIR), IIR_MSR);
    assert_int_equal(harness_inb(f->vm, MSR), 0x0a);
    assert_int_equal(harness_inb(f->vm, IIR), IIR_NONE);
    /* Leaving loopback brings back the host's lines (rising: deltas again). */
    harness_outb(f->vm, MCR, 0);
    assert_int_equal(harness_inb(f->vm, MSR), 0xbb);
}

static void test_character_timeout(void **state)
{
    struct fixture *f = *state;
    uint64_t timeout_ns = 4 * char_time_ns_8n1_div1();
    set_divisor(f->vm, 1, 0x03);
    harness_outb(f->vm, FCR, 0xc7); /* trigger 14 */
    harness_outb(f->vm, IER, 0x01);
    harness_outb(f->vm, MCR, MCR_LOOP);
    harness_outb(f->vm, THR, 'a');
    harness_outb(f->vm, THR, 'b');
    harness_outb(f->vm, THR, 'c');
    assert_int_equal(harness_inb(f->vm, IIR), IIR_FIFO | IIR_NONE);
    harness_step_ns(f->vm, timeout_ns - 1000);
    assert_int_equal(harness_inb(f->vm, IIR), IIR_FIFO | IIR_NONE);
    harness_step_ns(f->vm, 1000);
    assert_int_equal(harness_inb(f->vm, IIR), IIR_FIFO | IIR_CTI);
    /* Reading a character clears the timeout and restarts the timer. */
    assert_int_equal(harness_inb(f->vm, RBR), 'a');
    assert_int_equal(harness_inb(f->vm, IIR), IIR_FIFO | IIR_NONE);
    harness_step_ns(f->vm, timeout_ns / 2);
    assert_int_equal(harness_inb(f->vm, IIR), IIR_FIFO | IIR_NONE);
    harness_step_ns(f->vm, timeout_ns);
    assert_int_equal(harness_inb(f->vm, IIR), IIR_FIFO | IIR_CTI);
    assert_int_equal(harness_inb(f->vm, RBR), 'b');
    assert_int_equal(harness_inb(f->vm, RBR), 'c');
    /* An empty FIFO never times out. */
    harness_step_ns(f->vm, 10 * timeout_ns);
    assert_int_equal(harness_inb(f->vm, IIR), IIR_FIFO | IIR_NONE);

    /* A slower rate stretches the timeout: 9600 baud is 12 times longer. */
    set_divisor(f->vm, 12, 0x03);
    harness_outb(f->vm, THR, 'd');
    harness_step_ns(f->vm, 11 * timeout_ns);
    assert_int_equal(harness_inb(f->vm, IIR), IIR_FIFO | IIR_NONE);
    harness_step_ns(f->vm, 2 * timeout_ns);
    assert_int_equal(harness_inb(f->vm, IIR), IIR_FIFO | IIR_CTI);
}

/* ---- Host input through a Unix-socket backend ---- */

static void sock_path(char *buf, size_t len, const char *tag)
{
    snprintf(buf, len, "/tmp/vireo-tstUart-%d-%s.sock", (int)getpid(), tag);
}

static int sock_connect(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    return fd;
}

static void pump(struct vm *vm, unsigned rounds)
{
    for (unsigned i = 0; i < rounds; i++)
        rt_evloop_run_once(vm_get_evloop(vm), 20 * RT_NS_PER_MS);
}

static void test_rx_from_unix_socket(void **state)
{
    (void)state;
    char path[108], cfg[160];
    sock_path(path, sizeof(path), "rx");
    snprintf(cfg, sizeof(cfg), "iobase=0x2f8,irq=3,backend=unix:%s", path);
    struct vm *vm = harness_vm_create(0);
    harness_dev_create(vm, &g_dev_uart16550, "com2", cfg);
    int fd = sock_connect(path);
    pump(vm, 2);

    /* Non-FIFO mode, RDA interrupt through OUT2. */
    harness_outb(vm, 0x2f8 + 1, 0x01);
    harness_outb(vm, 0x2f8 + 4, MCR_OUT2);
    assert_int_equal(send(fd, "hi", 2, 0), 2);
    pump(vm, 2);
    assert_true(harness_gsi_level(vm, 3));
    assert_int_equal(harness_inb(vm, 0x2f8 + 2), IIR_RDA);
    assert_int_equal(harness_inb(vm, 0x2f8), 'h');
    /* The backend offered one byte at a time: no overrun, the second arrives after the read. */
    pump(vm, 2);
    assert_int_equal(harness_inb(vm, 0x2f8 + 5), LSR_DR | LSR_THRE | LSR_TEMT);
    assert_int_equal(harness_inb(vm, 0x2f8), 'i');
    assert_false(harness_gsi_level(vm, 3));

    /* FIFO mode: 40 bytes arrive in 16-byte helpings, in order and without overrun. */
    harness_outb(vm, 0x2f8 + 2, 0x07);
    char msg[40];
    for (unsigned i = 0; i < sizeof(msg); i++)
        msg[i] = (char)('A' + i);
    assert_int_equal(send(fd, msg, sizeof(msg), 0), (ssize_t)sizeof(msg));
    unsigned got = 0;
    for (unsigned round = 0; round < 20 && got < sizeof(msg); round++) {
        pump(vm, 1);
        while (harness_inb(vm, 0x2f8 + 5) & LSR_DR) {
            assert_true(got < sizeof(msg));
            assert_int_equal(harness_inb(vm, 0x2f8), (uint8_t)msg[got]);
            got++;
        }
    }
    assert_int_equal(got, sizeof(msg));
    assert_int_equal(harness_inb(vm, 0x2f8 + 5) & LSR_OE, 0);

    /* Host input waits while loopback disconnects SIN, then arrives. */
    harness_outb(vm, 0x2f8 + 4, MCR_LOOP);
    assert_int_equal(send(fd, "z", 1, 0), 1);
    pump(vm, 2);
    assert_int_equal(harness_inb(vm, 0x2f8 + 5) & LSR_DR, 0);
    harness_outb(vm, 0x2f8 + 4, 0);
    pump(vm, 2);
    assert_int_equal(harness_inb(vm, 0x2f8), 'z');

    /* Transmitted bytes reach the client. */
    harness_outb(vm, 0x2f8, 'o');
    harness_outb(vm, 0x2f8, 'k');
    pump(vm, 1);
    char buf[8];
    assert_int_equal(recv(fd, buf, sizeof(buf), 0), 2);
    assert_memory_equal(buf, "ok", 2);
    close(fd);
    harness_vm_destroy(vm);
    /* The socket file goes away with the backend. */
    assert_int_equal(access(path, F_OK), -1);
}

static void test_rx_character_timeout_irq(void **state)
{
    (void)state;
    char path[108], cfg[160];
    sock_path(path, sizeof(path), "cti");
    snprintf(cfg, sizeof(cfg), "backend=unix:%s", path);
    struct vm *vm = harness_vm_create(0);
    harness_dev_create(vm, &g_dev_uart16550, "com1", cfg);
    int fd = sock_connect(path);
    pump(vm, 2);
    set_divisor(vm, 1, 0x03);
    harness_outb(vm, FCR, 0x81); /* trigger 8 */
    harness_outb(vm, IER, 0x01);
    harness_outb(vm, MCR, MCR_OUT2);
    assert_int_equal(send(fd, "abc", 3, 0), 3);
    pump(vm, 2);
    assert_int_equal(harness_inb(vm, LSR) & LSR_DR, LSR_DR);
    assert_false(harness_gsi_level(vm, GSI));
    harness_step_ns(vm, 4 * char_time_ns_8n1_div1());
    assert_true(harness_gsi_level(vm, GSI));
    assert_int_equal(harness_inb(vm, IIR), IIR_FIFO | IIR_CTI);
    close(fd);
    harness_vm_destroy(vm);
}

/* ---- Saved state ---- */

static void test_save_load_round_trip(void **state)
{
    struct fixture *f = *state;
    set_divisor(f->vm, 0x0203, 0x1b);
    harness_outb(f->vm, SCR, 0x77);
    harness_outb(f->vm, FCR, 0x87);
    harness_outb(f->vm, MCR, MCR_LOOP | MCR_RTS);
    harness_outb(f->vm, THR, 'x');
    harness_outb(f->vm, THR, 'y');
    harness_outb(f->vm, THR, 'z');
    assert_int_equal(harness_inb(f->vm, RBR), 'x');
    harness_outb(f->vm, IER, 0x0d);

    assert_int_equal(harness_dev_save_reset_load(f->uart), 0);

    assert_int_equal(harness_inb(f->vm, LCR), 0x1b);
    assert_int_equal(harness_inb(f->vm, IER), 0x0d);
    assert_int_equal(harness_inb(f->vm, MCR), MCR_LOOP | MCR_RTS);
    assert_int_equal(harness_inb(f->vm, SCR), 0x77);
    assert_int_equal(harness_inb(f->vm, MSR) & 0xf0, 0x10);
    harness_outb(f->vm, LCR, 0x9b);
    assert_int_equal(harness_inb(f->vm, DLL), 0x03);
    assert_int_equal(harness_inb(f->vm, DLM), 0x02);
    harness_outb(f->vm, LCR, 0x1b);
    assert_int_equal(harness_inb(f->vm, IIR) & 0xc0, IIR_FIFO);
    assert_int_equal(harness_inb(f->vm, RBR), 'y');
    assert_int_equal(harness_inb(f->vm, RBR), 'z');
    assert_int_equal(harness_inb(f->vm, LSR) & LSR_DR, 0);
}

static void test_save_load_timer_and_bad_streams(void **state)
{
    struct fixture *f = *state;
    const struct pdm_dev_desc *desc = pdm_dev_desc(f->uart);
    set_divisor(f->vm, 1, 0x03);
    harness_outb(f->vm, FCR, 0xc1);
    harness_outb(f->vm, IER, 0x01);
    harness_outb(f->vm, MCR, MCR_LOOP);
    harness_outb(f->vm, THR, 'k');
    harness_step_ns(f->vm, char_time_ns_8n1_div1());

    struct ssm *out = NULL;
    assert_int_equal(ssm_create(&out), 0);
    assert_int_equal(desc->save(f->uart, out), 0);
    size_t len;
    const uint8_t *data = ssm_data(out, &len);
    pdm_dev_reset_all(f->vm);
    struct ssm *in = NULL;
    assert_int_equal(ssm_open(data, len, &in), 0);
    assert_int_equal(desc->load(f->uart, in, desc->ssm_version), 0);
    ssm_destroy(in);
    /* The loaded timer still fires 4 character times after the byte arrived. */
    harness_step_ns(f->vm, 3 * char_time_ns_8n1_div1() - 1000);
    assert_int_equal(harness_inb(f->vm, IIR), IIR_FIFO | IIR_NONE);
    harness_step_ns(f->vm, 1000);
    assert_int_equal(harness_inb(f->vm, IIR), IIR_FIFO | IIR_CTI);

    /* An unknown version, a truncated stream and a FIFO count past 16 are refused. */
    assert_int_equal(ssm_open(data, len, &in), 0);
    assert_int_equal(desc->load(f->uart, in, desc->ssm_version + 1), VERR_SSM_VERSION);
    ssm_destroy(in);
    assert_int_equal(ssm_open(data, len - 3, &in), 0);
    assert_true(desc->load(f->uart, in, desc->ssm_version) < 0);
    ssm_destroy(in);
    uint8_t *bad = malloc(len);
    memcpy(bad, data, len);
    /* Layout: divisor(2) ier lcr mcr lsr msr scr fcr rbr thr_ip cti_ip count. */
    bad[12] = 17;
    assert_int_equal(ssm_open(bad, len, &in), 0);
    assert_int_equal(desc->load(f->uart, in, desc->ssm_version), VERR_SSM_CORRUPT);
    ssm_destroy(in);
    free(bad);
    ssm_destroy(out);
}

/* ---- Garbage from the guest ---- */

static void test_garbage_writes(void **state)
{
    struct fixture *f = *state;
    uint32_t seed = 0x1234567u;
    for (unsigned i = 0; i < 20000; i++) {
        seed = seed * 1103515245u + 12345u;
        uint16_t port = (uint16_t)(COM1 + ((seed >> 8) & 7));
        uint8_t value = (uint8_t)(seed >> 16);
        switch ((seed >> 24) & 7) {
        case 0:
        case 1:
        case 2:
            harness_outb(f->vm, port, value);
            break;
        case 3:
            harness_outw(f->vm, port, (uint16_t)(value * 0x101));
            break;
        case 4:
            harness_step_ns(f->vm, value * 1000ull);
            break;
        default: {
            uint8_t v = harness_inb(f->vm, port);
            if (port == IIR) {
                /* Bits 5:4 are always zero and the identification is one of table IV's. */
                assert_int_equal(v & 0x30, 0);
                uint8_t id = v & 0x0f;
                assert_true(id == IIR_NONE || id == IIR_MSR || id == IIR_THRE || id == IIR_RDA ||
                            id == IIR_RLS || id == IIR_CTI);
            } else if (port == LSR) {
                assert_int_equal(v & (LSR_THRE | LSR_TEMT), LSR_THRE | LSR_TEMT);
            }
            break;
        }
        }
    }
    pdm_dev_reset_all(f->vm);
    assert_int_equal(harness_inb(f->vm, IIR), IIR_NONE);
    assert_int_equal(harness_inb(f->vm, LSR), LSR_THRE | LSR_TEMT);
    assert_false(harness_gsi_level(f->vm, GSI));
}

static void test_bad_config(void **state)
{
    (void)state;
    struct vm *vm = harness_vm_create(0);
    struct pdm_dev *dev = NULL;
    assert_int_equal(harness_dev_try_create(vm, &g_dev_uart16550, "u1", "irq=99", &dev), VERR_CFG_BAD_VALUE);
    assert_int_equal(harness_dev_try_create(vm, &g_dev_uart16550, "u2", "iobase=0xfffc", &dev),
                     VERR_CFG_BAD_VALUE);
    assert_int_equal(harness_dev_try_create(vm, &g_dev_uart16550, "u3", "speed=9600", &dev),
                     VERR_CFG_UNKNOWN_KEY);
    assert_int_equal(harness_dev_try_create(vm, &g_dev_uart16550, "u4", "backend=serial0", &dev),
                     VERR_INVALID_PARAMETER);
    assert_int_equal(harness_dev_try_create(vm, &g_dev_uart16550, "u5", "backend=file:/nonexistent/x", &dev),
                     VERR_FILE_NOT_FOUND);
    /* Two UARTs cannot share ports. */
    harness_dev_create(vm, &g_dev_uart16550, "u6", NULL);
    assert_true(harness_dev_try_create(vm, &g_dev_uart16550, "u7", "iobase=0x3fc", &dev) < 0);
    harness_vm_destroy(vm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reset_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dlab_divisor_access, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loopback_fifo_fill_and_overrun, setup, teardown),
        cmocka_unit_test_setup_teardown(test_non_fifo_overrun, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fifo_trigger_levels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interrupt_priorities, setup, teardown),
        cmocka_unit_test_setup_teardown(test_thre_semantics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out2_gates_irq, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loopback_modem_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_character_timeout, setup, teardown),
        cmocka_unit_test(test_rx_from_unix_socket),
        cmocka_unit_test(test_rx_character_timeout_irq),
        cmocka_unit_test_setup_teardown(test_save_load_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_save_load_timer_and_bad_streams, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_writes, setup, teardown),
        cmocka_unit_test(test_bad_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
