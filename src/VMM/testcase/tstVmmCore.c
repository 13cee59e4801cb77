/* tstVmmCore.c - unit tests of the monitor core: memory map, port dispatch, virtual clock, IRQ router, devices, saved state. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "vireo/pdm.h"
#include "vireo/vm.h"

static struct vm *new_vm(void)
{
    struct vm_params p = { .name = "t", .ram_bytes = 1 << 20, .vcpu_count = 1, .exec = VM_EXEC_NONE,
                           .clock_mode = VM_CLOCK_MANUAL };
    struct vm *vm = NULL;
    assert_int_equal(vm_create(&p, &vm), 0);
    return vm;
}

/* A device-like MMIO/port target that records the last access. */
struct rec {
    uint64_t last_off, last_val;
    unsigned last_size, reads, writes;
    uint8_t regs[64];
};

static uint64_t rec_read(void *opaque, uint64_t off, unsigned size)
{
    struct rec *r = opaque;
    r->reads++;
    r->last_off = off;
    r->last_size = size;
    uint64_t v = 0;
    memcpy(&v, r->regs + (off % 56), size);
    return v;
}

static void rec_write(void *opaque, uint64_t off, uint64_t value, unsigned size)
{
    struct rec *r = opaque;
    r->writes++;
    r->last_off = off;
    r->last_size = size;
    r->last_val = value;
    memcpy(r->regs + (off % 56), &value, size);
}

static const struct io_ops g_rec_ops_dword = { rec_read, rec_write, 4, 4 };
static const struct io_ops g_rec_ops_any = { rec_read, rec_write, 1, 8 };

static void test_ram_rom_unassigned(void **state)
{
    struct vm *vm = new_vm();
    struct mem_region *ram, *rom;
    assert_int_equal(mem_region_create_ram(vm, "ram", 1 << 20, &ram), 0);
    assert_int_equal(mem_region_map(ram, 0, 0), 0);
    static const uint8_t img[4096] = { 0xea, 0x5b, 0xe0 };
    assert_int_equal(mem_region_create_rom(vm, "rom", img, sizeof(img), 8192, &rom), 0);
    assert_int_equal(mem_region_map(rom, 0xfffe0000, 0), 0);

    uint32_t v = 0x12345678, r = 0;
    assert_int_equal(mem_write(vm, 0x1000, &v, 4), 0);
    assert_int_equal(mem_read(vm, 0x1000, &r, 4), 0);
    assert_int_equal(r, v);
    assert_int_equal(*(uint32_t *)((uint8_t *)mem_region_hva(ram) + 0x1000), v);
    /* ROM keeps its content against writes. */
    assert_int_equal(mem_write(vm, 0xfffe0000, &v, 4), 0);
    uint8_t b[3];
    assert_int_equal(mem_read(vm, 0xfffe0000, b, 3), 0);
    assert_memory_equal(b, img, 3);
    /* Unassigned reads give all ones; a read spanning RAM's end and the void mixes both. */
    assert_int_equal(mem_read(vm, 0x200000, &r, 4), 0);
    assert_int_equal(r, 0xffffffff);
    uint8_t two[2];
    ((uint8_t *)mem_region_hva(ram))[0xfffff] = 0x42;
    assert_int_equal(mem_read(vm, 0xfffff, two, 2), 0);
    assert_int_equal(two[0], 0x42);
    assert_int_equal(two[1], 0xff);
    assert_non_null(mem_gpa_to_hva(vm, 0x1000, 16, true));
    assert_null(mem_gpa_to_hva(vm, 0xfffff, 2, false)); /* crosses out of RAM */
    assert_null(mem_gpa_to_hva(vm, 0xfffe0000, 4, true)); /* ROM is not writable */
    assert_non_null(mem_gpa_to_hva(vm, 0xfffe0000, 4, false));
    /* Out-of-range addresses are refused, not wrapped. */
    assert_int_equal(mem_read(vm, UINT64_MAX - 1, &r, 4), VERR_OUT_OF_RANGE);
    vm_destroy(vm);
}

static void test_alias_priority_overlap(void **state)
{
    struct vm *vm = new_vm();
    struct mem_region *ram, *win, *same;
    assert_int_equal(mem_region_create_ram(vm, "ram", 1 << 20, &ram), 0);
    assert_int_equal(mem_region_map(ram, 0, 0), 0);
    /* A read-only window at 0x10000 showing RAM offset 0x80000, above RAM. */
    assert_int_equal(mem_region_create_alias(vm, "win", ram, 0x80000, 0x4000, true, &win), 0);
    assert_int_equal(mem_region_map(win, 0x10000, 1), 0);
    ((uint8_t *)mem_region_hva(ram))[0x80000] = 0x5a;
    uint8_t b = 0, w = 0x77;
    assert_int_equal(mem_read(vm, 0x10000, &b, 1), 0);
    assert_int_equal(b, 0x5a);
    assert_int_equal(mem_write(vm, 0x10000, &w, 1), 0); /* read-only alias: ignored */
    assert_int_equal(((uint8_t *)mem_region_hva(ram))[0x80000], 0x5a);
    assert_int_equal(((uint8_t *)mem_region_hva(ram))[0x10000], 0);
    /* Unmapping the window shows RAM again. */
    mem_region_unmap(win);
    assert_int_equal(mem_write(vm, 0x10000, &w, 1), 0);
    assert_int_equal(((uint8_t *)mem_region_hva(ram))[0x10000], 0x77);
    /* Equal priorities must not overlap. */
    assert_int_equal(mem_region_create_alias(vm, "same", ram, 0, 0x1000, false, &same), 0);
    assert_int_equal(mem_region_map(same, 0x3000, 0), VERR_OVERLAP);
    assert_false(mem_region_is_mapped(same));
    /* Misaligned aliases and aliases past the target are refused. */
    struct mem_region *bad;
    assert_int_equal(mem_region_create_alias(vm, "bad", ram, 0xff000, 0x2000, false, &bad), VERR_INVALID_PARAMETER);
    vm_destroy(vm);
}

static void count_spans(void *opaque, const struct mem_span *s)
{
    (*(int *)opaque)++;
}

static void test_spans_merge(void **state)
{
    struct vm *vm = new_vm();
    struct mem_region *ram, *a, *b;
    assert_int_equal(mem_region_create_ram(vm, "ram", 1 << 20, &ram), 0);
    /* Two adjacent aliases of adjacent RAM collapse into one span. */
    assert_int_equal(mem_region_create_alias(vm, "a", ram, 0, 0x80000, false, &a), 0);
    assert_int_equal(mem_region_create_alias(vm, "b", ram, 0x80000, 0x80000, false, &b), 0);
    assert_int_equal(mem_region_map(a, 0, 0), 0);
    assert_int_equal(mem_region_map(b, 0x80000, 0), 0);
    int n = 0;
    mem_for_each_span(vm, count_spans, &n);
    assert_int_equal(n, 1);
    vm_destroy(vm);
}

static void test_mmio_sizes(void **state)
{
    struct vm *vm = new_vm();
    struct rec r = { 0 };
    struct mem_region *mmio;
    assert_int_equal(mem_region_create_mmio(vm, "dev", 0x1000, &g_rec_ops_dword, &r, &mmio), 0);
    assert_int_equal(mem_region_map(mmio, 0xfebf0000, 0), 0);
    mem_mmio_write(vm, 0xfebf0010, 0xdeadbeef, 4);
    assert_int_equal(r.writes, 1);
    assert_int_equal(r.last_off, 0x10);
    assert_int_equal(r.last_val, 0xdeadbeef);
    /* A byte read of a dword-only register reads the dword and extracts the byte. */
    assert_int_equal(mem_mmio_read(vm, 0xfebf0012, 1), 0xad);
    assert_int_equal(r.last_size, 4);
    assert_int_equal(r.last_off, 0x10);
    /* A qword access is split into two dword accesses. */
    r.writes = 0;
    mem_mmio_write(vm, 0xfebf0020, 0x1111111122222222ULL, 8);
    assert_int_equal(r.writes, 2);
    assert_int_equal(mem_mmio_read(vm, 0xfebf0020, 8), 0x1111111122222222ULL);
    /* A byte write narrower than the device accepts is dropped. */
    r.writes = 0;
    mem_mmio_write(vm, 0xfebf0030, 0xff, 1);
    assert_int_equal(r.writes, 0);
    /* DMA into MMIO goes through the handlers too. */
    uint32_t v = 0xcafef00d;
    assert_int_equal(mem_write(vm, 0xfebf0008, &v, 4), 0);
    assert_int_equal(r.last_val, 0xcafef00d);
    vm_destroy(vm);
}

static void span_kind_at_cb(void *opaque, const struct mem_span *span)
{
    struct mem_span *want = opaque;
    if (want->gpa >= span->gpa && want->gpa - span->gpa < span->size)
        *want = *span;
}

/* The kind of the span at gpa (MEM_KIND_ALIAS as "nothing mapped there"). */
static enum mem_kind span_kind_at(struct vm *vm, uint64_t gpa)
{
    struct mem_span s = { .gpa = gpa, .kind = MEM_KIND_ALIAS };
    mem_for_each_span(vm, span_kind_at_cb, &s);
    return s.kind;
}

/* A ROM device: memory reads in ROM mode, every write to the handler, handler reads out of ROM mode. */
static void test_romd(void **state)
{
    struct vm *vm = new_vm();
    struct rec r = { 0 };
    struct mem_region *flash, *alias, *ram;
    memset(r.regs, 0x5a, sizeof(r.regs));
    /* Bad parameters: no ops, a size that is not whole pages, a mode switch of a non-ROM-device region. */
    assert_int_equal(mem_region_create_romd(vm, "bad", 0x2000, NULL, &r, &flash), VERR_INVALID_PARAMETER);
    assert_int_equal(mem_region_create_romd(vm, "bad", 0x1001, &g_rec_ops_any, &r, &flash), VERR_INVALID_PARAMETER);
    assert_int_equal(mem_region_create_ram(vm, "ram", 0x1000, &ram), 0);
    assert_int_equal(mem_region_romd_set(ram, false), VERR_INVALID_PARAMETER);
    assert_int_equal(mem_region_romd_set(NULL, false), VERR_INVALID_PARAMETER);

    assert_int_equal(mem_region_create_romd(vm, "flash", 0x2000, &g_rec_ops_any, &r, &flash), 0);
    assert_int_equal(mem_region_kind(flash), MEM_KIND_ROMD);
    assert_true(mem_region_romd_is_rom(flash));
    uint8_t *hva = mem_region_hva(flash);
    assert_non_null(hva);
    for (unsigned i = 0; i < 0x2000; i++)
        hva[i] = (uint8_t)(i * 7);
    assert_int_equal(mem_region_map(flash, 0xffffe000, 0), 0);
    assert_int_equal(mem_region_create_alias(vm, "flash-low", flash, 0x1000, 0x1000, true, &alias), 0);
    assert_int_equal(mem_region_map(alias, 0xe0000, 0), 0);

    /* ROM mode: reads come from memory without the handler, and the span is ROM with a host address. */
    uint8_t b[4];
    assert_int_equal(mem_read(vm, 0xffffe010, b, 4), 0);
    assert_int_equal(b[0], (uint8_t)(0x10 * 7));
    assert_int_equal(b[3], (uint8_t)(0x13 * 7));
    assert_int_equal(mem_mmio_read(vm, 0xfffff000, 1), (uint8_t)(0x1000 * 7));
    assert_int_equal(mem_mmio_read(vm, 0xe0001, 1), (uint8_t)(0x1001 * 7));
    assert_int_equal(r.reads, 0);
    assert_int_equal(span_kind_at(vm, 0xffffe000), MEM_KIND_ROM);
    assert_non_null(mem_gpa_to_hva(vm, 0xffffe000, 16, false));
    assert_null(mem_gpa_to_hva(vm, 0xffffe000, 16, true));

    /* Writes in ROM mode reach the device (CPU stores and DMA alike) and leave the memory alone. */
    mem_mmio_write(vm, 0xffffe020, 0x70, 1);
    assert_int_equal(r.writes, 1);
    assert_int_equal(r.last_off, 0x20);
    assert_int_equal(r.last_val, 0x70);
    uint16_t w = 0xbeef;
    assert_int_equal(mem_write(vm, 0xe0004, &w, 2), 0);
    assert_int_equal(r.writes, 2);
    assert_int_equal(r.last_off, 0x1004);
    assert_int_equal(r.last_size, 2);
    assert_int_equal(hva[0x20], (uint8_t)(0x20 * 7));
    assert_int_equal(hva[0x1004], (uint8_t)(0x1004 * 7));

    /* Out of ROM mode: reads go to the handler (through the alias too); the span is MMIO with no host address. */
    assert_int_equal(mem_region_romd_set(flash, false), 0);
    assert_false(mem_region_romd_is_rom(flash));
    assert_int_equal(span_kind_at(vm, 0xffffe000), MEM_KIND_MMIO);
    assert_int_equal(span_kind_at(vm, 0xe0000), MEM_KIND_MMIO);
    assert_null(mem_gpa_to_hva(vm, 0xffffe000, 16, false));
    assert_int_equal(mem_mmio_read(vm, 0xffffe030, 1), 0x5a);
    assert_int_equal(r.reads, 1);
    assert_int_equal(r.last_off, 0x30);
    assert_int_equal(mem_read(vm, 0xe0008, b, 1), 0);
    assert_int_equal(r.reads, 2);
    assert_int_equal(r.last_off, 0x1008);
    mem_mmio_write(vm, 0xffffe040, 0xff, 1);
    assert_int_equal(r.writes, 3);

    /* Back in ROM mode: memory again, including what the device stored meanwhile; a repeated set is a no-op. */
    hva[0x40] = 0xa5;
    assert_int_equal(mem_region_romd_set(flash, true), 0);
    assert_int_equal(mem_region_romd_set(flash, true), 0);
    assert_int_equal(mem_mmio_read(vm, 0xffffe040, 1), 0xa5);
    assert_int_equal(r.reads, 2);
    assert_int_equal(span_kind_at(vm, 0xe0000), MEM_KIND_ROM);

    /* An unmapped device switches without touching the map; mapping it later shows the current mode. */
    mem_region_unmap(alias);
    mem_region_unmap(flash);
    assert_int_equal(mem_region_romd_set(flash, false), 0);
    assert_int_equal(span_kind_at(vm, 0xffffe000), MEM_KIND_ALIAS);
    assert_int_equal(mem_region_map(flash, 0xffffe000, 0), 0);
    assert_int_equal(span_kind_at(vm, 0xffffe000), MEM_KIND_MMIO);
    vm_destroy(vm);
}

static void test_dirty_and_watch_cb(void *opaque, uint64_t gpa, uint64_t len)
{
    uint64_t *seen = opaque;
    seen[0] = gpa;
    seen[1] = len;
}

/* RAM of 2 MiB or more starts on a 2 MiB boundary (where transparent huge pages can back it) and is all usable. */
static void test_ram_huge_alignment(void **state)
{
    (void)state;
    struct vm *vm = new_vm();
    struct mem_region *big, *odd, *small;
    assert_int_equal(mem_region_create_ram(vm, "big", 8u << 20, &big), 0);
    assert_int_equal(mem_region_create_ram(vm, "odd", (2u << 20) + 4096, &odd), 0);
    assert_int_equal(mem_region_create_ram(vm, "small", 64u << 10, &small), 0);
    assert_int_equal((uintptr_t)mem_region_hva(big) & ((2u << 20) - 1), 0);
    assert_int_equal((uintptr_t)mem_region_hva(odd) & ((2u << 20) - 1), 0);
    assert_non_null(mem_region_hva(small));
    /* Every byte is mapped and writable, the last one included, and reads back. */
    uint8_t *b = mem_region_hva(big), *o = mem_region_hva(odd);
    b[0] = 1;
    b[(8u << 20) - 1] = 2;
    o[(2u << 20) + 4095] = 3;
    assert_int_equal(b[0] + b[(8u << 20) - 1] + o[(2u << 20) + 4095], 6);
    vm_destroy(vm);
}

static void test_dirty_and_watch(void **state)
{
    struct vm *vm = new_vm();
    struct mem_region *ram;
    assert_int_equal(mem_region_create_ram(vm, "ram", 1 << 20, &ram), 0);
    assert_int_equal(mem_region_map(ram, 0, 0), 0);
    assert_int_equal(mem_region_dirty_enable(ram, true), 0);
    uint64_t seen[2] = { 0, 0 };
    assert_int_equal(mem_write_watch_add(vm, test_dirty_and_watch_cb, seen), 0);
    uint8_t buf[8192] = { 1 };
    assert_int_equal(mem_write(vm, 0x3ffe, buf, 3), 0); /* touches pages 3 and 4 */
    assert_int_equal(seen[0], 0x3ffe);
    assert_int_equal(seen[1], 3);
    uint64_t bitmap[4];
    assert_int_equal(mem_region_dirty_fetch(ram, bitmap, 4), 0);
    assert_int_equal(bitmap[0], (1ULL << 3) | (1ULL << 4));
    assert_int_equal(mem_region_dirty_fetch(ram, bitmap, 4), 0);
    assert_int_equal(bitmap[0], 0); /* fetch clears */
    assert_int_equal(mem_region_dirty_fetch(ram, bitmap, 1), VERR_INVALID_PARAMETER);
    /* A store through a host pointer (DMA on a worker) reported afterwards: dirty and watched. */
    uint8_t *p = mem_gpa_to_hva(vm, 0x5000, 0x2000, true);
    assert_non_null(p);
    assert_int_equal(mem_region_dirty_fetch(ram, bitmap, 4), 0); /* drop the map-time marks */
    p[0x1000] = 7;
    mem_notify_written(vm, 0x6000, 0x1001); /* pages 6 and 7 */
    assert_int_equal(seen[0], 0x6000);
    assert_int_equal(seen[1], 0x1001);
    assert_int_equal(mem_region_dirty_fetch(ram, bitmap, 4), 0);
    assert_int_equal(bitmap[0], (1ULL << 6) | (1ULL << 7));
    seen[0] = seen[1] = 0;
    mem_notify_written(vm, 0x200000, 16); /* unassigned: nothing to tell */
    assert_int_equal(seen[1], 0);
    vm_destroy(vm);
}

static void test_ports(void **state)
{
    struct vm *vm = new_vm();
    struct rec a = { 0 }, b = { 0 };
    struct io_region *ra, *rb, *rc;
    assert_int_equal(iom_region_create(vm, "a", 8, &g_rec_ops_any, &a, &ra), 0);
    assert_int_equal(iom_region_create(vm, "b", 4, &g_rec_ops_any, &b, &rb), 0);
    assert_int_equal(iom_region_map(ra, 0x3f8), 0);
    assert_int_equal(iom_region_map(rb, 0x400), 0);
    assert_int_equal(iom_region_create(vm, "c", 2, &g_rec_ops_any, &b, &rc), 0);
    assert_int_equal(iom_region_map(rc, 0x3ff), VERR_OVERLAP);
    assert_int_equal(iom_region_map(rc, 0xffff), VERR_INVALID_PARAMETER); /* past the port space */
    iom_port_write(vm, 0x3fb, 0x83, 1);
    assert_int_equal(a.last_off, 3);
    assert_int_equal(a.last_val, 0x83);
    assert_int_equal(iom_port_read(vm, 0x3fb, 1), 0x83);
    /* Unclaimed ports read as all ones and swallow writes. */
    assert_int_equal(iom_port_read(vm, 0x1234, 1), 0xff);
    assert_int_equal(iom_port_read(vm, 0x1234, 2), 0xffff);
    assert_int_equal(iom_port_read(vm, 0x1234, 4), 0xffffffff);
    iom_port_write(vm, 0x1234, 0, 4);
    /* A dword straddling the end of 'a' (0x3fe-0x401) splits into bytes: two to 'a', two to 'b'. */
    a.writes = b.writes = 0;
    iom_port_write(vm, 0x3fe, 0x44332211, 4);
    assert_int_equal(a.writes, 2);
    assert_int_equal(b.writes, 2);
    assert_int_equal(b.regs[1], 0x44);
    /* Invalid sizes are ignored. */
    assert_int_equal(iom_port_read(vm, 0x3f8, 3), 0xffffffff);
    iom_region_unmap(ra);
    assert_int_equal(iom_port_read(vm, 0x3fb, 1), 0xff);
    vm_destroy(vm);
}

struct tick {
    struct tm_timer *timer;
    struct vm *vm;
    int fired;
    uint64_t when[8];
    uint64_t period;
    int *order;
    int id;
    int *order_pos;
};

static void tick_cb(void *opaque)
{
    struct tick *t = opaque;
    if (t->fired < 8)
        t->when[t->fired] = tm_now_ns(t->vm);
    t->fired++;
    if (t->order)
        t->order[(*t->order_pos)++] = t->id;
    if (t->period && t->fired < 5)
        tm_timer_arm(t->timer, tm_timer_expire_ns(t->timer) + t->period);
}

static void test_timers(void **state)
{
    struct vm *vm = new_vm();
    int order[8], pos = 0;
    struct tick a = { .vm = vm, .id = 1, .order = order, .order_pos = &pos };
    struct tick b = { .vm = vm, .id = 2, .order = order, .order_pos = &pos };
    struct tick p = { .vm = vm, .period = 1000 };
    assert_int_equal(tm_timer_create(vm, "a", tick_cb, &a, &a.timer), 0);
    assert_int_equal(tm_timer_create(vm, "b", tick_cb, &b, &b.timer), 0);
    assert_int_equal(tm_timer_create(vm, "p", tick_cb, &p, &p.timer), 0);
    assert_int_equal(tm_now_ns(vm), 0);
    tm_timer_arm(a.timer, 500);
    tm_timer_arm(b.timer, 200);
    tm_timer_arm(p.timer, 1000);
    tm_clock_step(vm, 199);
    assert_int_equal(a.fired + b.fired, 0);
    tm_clock_step(vm, 400); /* now 599: b at 200, then a at 500 */
    assert_int_equal(pos, 2);
    assert_int_equal(order[0], 2);
    assert_int_equal(order[1], 1);
    assert_int_equal(b.when[0], 200);
    assert_int_equal(a.when[0], 500);
    assert_int_equal(tm_now_ns(vm), 599);
    /* The periodic timer re-arms itself from its callback and sees exact times. */
    tm_clock_step(vm, 10000);
    assert_int_equal(p.fired, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(p.when[i], 1000ULL * (i + 1));
    assert_false(tm_timer_is_armed(p.timer));
    /* Cancel. */
    tm_timer_arm(a.timer, tm_now_ns(vm) + 10);
    tm_timer_cancel(a.timer);
    tm_clock_step(vm, 100);
    assert_int_equal(a.fired, 1);
    vm_destroy(vm);
}

struct sink_log {
    int calls;
    unsigned gsi;
    bool level;
};

static void sink_cb(void *opaque, unsigned gsi, bool level)
{
    struct sink_log *s = opaque;
    s->calls++;
    s->gsi = gsi;
    s->level = level;
}

static void test_irq_router(void **state)
{
    struct vm *vm = new_vm();
    struct sink_log s = { 0 };
    assert_int_equal(pdm_irq_sink_add(vm, sink_cb, &s), 0);
    struct pdm_irq *x, *y, *bad;
    assert_int_equal(pdm_irq_create(vm, 11, "x", &x), 0);
    assert_int_equal(pdm_irq_create(vm, 11, "y", &y), 0);
    assert_int_equal(pdm_irq_create(vm, PDM_GSI_COUNT, "bad", &bad), VERR_OUT_OF_RANGE);
    pdm_irq_set(x, true);
    assert_int_equal(s.calls, 1);
    assert_true(s.level);
    pdm_irq_set(y, true); /* already high: wired-OR, no new edge */
    assert_int_equal(s.calls, 1);
    pdm_irq_set(x, false);
    assert_int_equal(s.calls, 1);
    assert_true(pdm_irq_gsi_level(vm, 11));
    pdm_irq_set(y, false);
    assert_int_equal(s.calls, 2);
    assert_false(s.level);
    /* Rerouting a high line lowers the old GSI and raises the new one. */
    pdm_irq_set(x, true);
    pdm_irq_reroute(x, 10);
    assert_false(pdm_irq_gsi_level(vm, 11));
    assert_true(pdm_irq_gsi_level(vm, 10));
    pdm_irq_pulse(y);
    assert_false(pdm_irq_gsi_level(vm, 11));
    /* A removed sink hears nothing more. */
    int calls = s.calls;
    pdm_irq_sink_remove(vm, sink_cb, &s);
    pdm_irq_set(y, true);
    assert_int_equal(s.calls, calls);
    assert_true(pdm_irq_gsi_level(vm, 11));
    vm_destroy(vm);
}

static void test_ssm(void **state)
{
    struct ssm *w, *r;
    assert_int_equal(ssm_create(&w), 0);
    ssm_put_u8(w, 0xab);
    ssm_put_u16(w, 0x1234);
    ssm_put_u32(w, 0xdeadbeef);
    ssm_put_u64(w, 0x0123456789abcdefULL);
    ssm_put_bool(w, true);
    ssm_put_bytes(w, "xyz", 3);
    size_t len;
    const uint8_t *data = ssm_data(w, &len);
    assert_int_equal(len, 1 + 2 + 4 + 8 + 1 + 3);
    assert_int_equal(data[1], 0x34); /* little-endian */
    assert_int_equal(ssm_open(data, len, &r), 0);
    uint8_t u8; uint16_t u16; uint32_t u32; uint64_t u64; bool b; char s[3];
    assert_int_equal(ssm_get_u8(r, &u8), 0);
    assert_int_equal(ssm_get_u16(r, &u16), 0);
    assert_int_equal(ssm_get_u32(r, &u32), 0);
    assert_int_equal(ssm_get_u64(r, &u64), 0);
    assert_int_equal(ssm_get_bool(r, &b), 0);
    assert_int_equal(ssm_get_bytes(r, s, 3), 0);
    assert_int_equal(u8, 0xab);
    assert_int_equal(u16, 0x1234);
    assert_int_equal(u32, 0xdeadbeef);
    assert_true(u64 == 0x0123456789abcdefULL);
    assert_true(b);
    assert_memory_equal(s, "xyz", 3);
    /* Past the end: an error that sticks. */
    assert_int_equal(ssm_get_u8(r, &u8), VERR_SSM_CORRUPT);
    assert_int_equal(ssm_status(r), VERR_SSM_CORRUPT);
    ssm_destroy(r);
    /* A bool that is neither 0 nor 1 is corrupt. */
    static const uint8_t two = 2;
    assert_int_equal(ssm_open(&two, 1, &r), 0);
    assert_int_equal(ssm_get_bool(r, &b), VERR_SSM_CORRUPT);
    ssm_destroy(r);
    ssm_destroy(w);
}

/* A minimal device for the pdm tests. */
struct fake_state {
    uint32_t value;
    int resets;
};

static int fake_construct(struct pdm_dev *dev, const struct pdm_cfg *cfg)
{
    static const char *const keys[] = { "value", NULL };
    int rc = pdm_cfg_validate(cfg, pdm_dev_name(dev), keys);
    if (rc)
        return rc;
    uint64_t v;
    rc = pdm_cfg_get_u64(cfg, "value", 7, &v);
    if (rc)
        return rc;
    struct fake_state *s = pdm_dev_state(dev);
    s->value = (uint32_t)v;
    return 0;
}

static void fake_reset(struct pdm_dev *dev)
{
    ((struct fake_state *)pdm_dev_state(dev))->resets++;
}

static int fake_save(struct pdm_dev *dev, struct ssm *ssm)
{
    ssm_put_u32(ssm, ((struct fake_state *)pdm_dev_state(dev))->value);
    return 0;
}

static int fake_load(struct pdm_dev *dev, struct ssm *ssm, uint32_t version)
{
    return ssm_get_u32(ssm, &((struct fake_state *)pdm_dev_state(dev))->value);
}

static const struct pdm_dev_desc g_fake = {
    .name = "fake", .description = "test device", .state_size = sizeof(struct fake_state), .ssm_version = 2,
    .construct = fake_construct, .reset = fake_reset, .save = fake_save, .load = fake_load,
};

static void test_devices_and_cfg(void **state)
{
    struct vm *vm = new_vm();
    struct pdm_cfg *cfg;
    struct pdm_dev *d1, *d2, *dx;
    assert_int_equal(pdm_cfg_create(&cfg), 0);
    assert_int_equal(pdm_cfg_set_u64(cfg, "value", 0x55), 0);
    assert_int_equal(pdm_dev_create(vm, &g_fake, "one", cfg, &d1), 0);
    assert_int_equal(pdm_cfg_set(cfg, "value", "0x10"), 0);
    assert_int_equal(pdm_dev_create(vm, &g_fake, "two", cfg, &d2), 0);
    assert_int_equal(pdm_dev_create(vm, &g_fake, "two", cfg, &dx), VERR_ALREADY_EXISTS);
    assert_int_equal(pdm_cfg_set(cfg, "value", "ten"), 0);
    assert_int_equal(pdm_dev_create(vm, &g_fake, "three", cfg, &dx), VERR_CFG_BAD_VALUE);
    assert_int_equal(pdm_cfg_set(cfg, "valeu", "1"), 0);
    assert_int_equal(pdm_cfg_set(cfg, "value", "1"), 0);
    assert_int_equal(pdm_dev_create(vm, &g_fake, "four", cfg, &dx), VERR_CFG_UNKNOWN_KEY);
    assert_null(pdm_dev_find(vm, "four"));
    bool bv;
    assert_int_equal(pdm_cfg_get_bool(cfg, "value", false, &bv), 0);
    assert_true(bv);
    assert_int_equal(pdm_cfg_get_bool(cfg, "missing", true, &bv), 0);
    assert_true(bv);
    assert_string_equal(pdm_cfg_get_str(cfg, "valeu", "x"), "1");
    pdm_cfg_destroy(cfg);

    assert_ptr_equal(pdm_dev_find(vm, "two"), d2);
    assert_int_equal(((struct fake_state *)pdm_dev_state(d2))->value, 0x10);
    pdm_dev_reset_all(vm);
    assert_int_equal(((struct fake_state *)pdm_dev_state(d1))->resets, 1);

    /* Save all, change, load back. */
    struct ssm *w, *r;
    assert_int_equal(ssm_create(&w), 0);
    assert_int_equal(pdm_dev_save_all(vm, w), 0);
    ((struct fake_state *)pdm_dev_state(d1))->value = 0;
    ((struct fake_state *)pdm_dev_state(d2))->value = 0;
    size_t len;
    const uint8_t *data = ssm_data(w, &len);
    assert_int_equal(ssm_open(data, len, &r), 0);
    assert_int_equal(pdm_dev_load_all(vm, r), 0);
    ssm_destroy(r);
    assert_int_equal(((struct fake_state *)pdm_dev_state(d1))->value, 0x55);
    assert_int_equal(((struct fake_state *)pdm_dev_state(d2))->value, 0x10);
    /* Truncated streams and newer versions are refused. */
    assert_int_equal(ssm_open(data, len - 1, &r), 0);
    assert_int_not_equal(pdm_dev_load_all(vm, r), 0);
    ssm_destroy(r);
    uint8_t *copy = malloc(len);
    memcpy(copy, data, len);
    /* unit: magic(4) namelen(4) "one"(3) version(4) */
    copy[11] = 3;
    assert_int_equal(ssm_open(copy, len, &r), 0);
    assert_int_equal(pdm_dev_load_all(vm, r), VERR_SSM_VERSION);
    ssm_destroy(r);
    free(copy);
    ssm_destroy(w);
    vm_destroy(vm);
}

static void test_vm_lifecycle_no_cpu(void **state)
{
    struct vm *vm = new_vm();
    assert_int_equal(vm_get_state(vm), VM_STATE_CREATED);
    assert_int_equal(vm_pause(vm), VERR_INVALID_STATE);
    vm_request_poweroff(vm, 42);
    assert_int_equal(vm_get_state(vm), VM_STATE_POWERED_OFF);
    assert_int_equal(vm_wait(vm), 42);
    vm_destroy(vm);

    struct vm_params bad = { .name = "x", .ram_bytes = 1 << 20, .vcpu_count = 0, .exec = VM_EXEC_KVM };
    struct vm *none = NULL;
    assert_int_equal(vm_create(&bad, &none), VERR_INVALID_PARAMETER);
    enum vm_exec e;
    assert_int_equal(vm_exec_parse("kvm", &e), 0);
    assert_int_equal(e, VM_EXEC_KVM);
    assert_int_equal(vm_exec_parse("vmx", &e), VERR_INVALID_PARAMETER);
}

/* With the host clock, virtual time advances while running and stands still while paused. */
static void test_clock_stops_while_paused(void **state)
{
    struct vm_params p = { .name = "clk", .ram_bytes = 1 << 20, .vcpu_count = 1, .exec = VM_EXEC_NONE,
                           .clock_mode = VM_CLOCK_HOST };
    struct vm *vm = NULL;
    assert_int_equal(vm_create(&p, &vm), 0);
    assert_int_equal(tm_now_ns(vm), 0); /* not started: no time has passed */
    struct tick t = { .vm = vm };
    assert_int_equal(tm_timer_create(vm, "t", tick_cb, &t, &t.timer), 0);
    assert_int_equal(vm_start(vm), 0);
    assert_int_equal(vm_get_state(vm), VM_STATE_RUNNING);
    rt_sleep_ns(20 * RT_NS_PER_MS);
    uint64_t running = tm_now_ns(vm);
    assert_true(running >= 20 * RT_NS_PER_MS);
    assert_int_equal(vm_pause(vm), 0);
    uint64_t paused = tm_now_ns(vm);
    /* A timer due during the pause must not fire until the clock runs again. */
    vm_lock(vm);
    tm_timer_arm(t.timer, paused + 5 * RT_NS_PER_MS);
    vm_unlock(vm);
    rt_sleep_ns(200 * RT_NS_PER_MS);
    assert_int_equal(tm_now_ns(vm), paused);
    assert_int_equal(t.fired, 0);
    assert_int_equal(vm_resume(vm), 0);
    for (int i = 0; i < 500 && t.fired == 0; i++)
        rt_sleep_ns(RT_NS_PER_MS);
    assert_int_equal(t.fired, 1);
    /* It fired on virtual time: at or after its deadline, and without the 200 ms pause in it. */
    assert_true(t.when[0] >= paused + 5 * RT_NS_PER_MS);
    assert_true(t.when[0] < paused + 150 * RT_NS_PER_MS);
    vm_request_poweroff(vm, 3);
    assert_int_equal(vm_wait(vm), 3);
    assert_int_equal(vm_get_state(vm), VM_STATE_POWERED_OFF);
    vm_destroy(vm);
}

static void test_cpu_reset_state(void **state)
{
    struct cpu_state s;
    cpu_state_reset(&s);
    assert_int_equal(s.rip, 0xfff0);
    assert_int_equal(s.seg[CPU_CS].sel, 0xf000);
    assert_true(s.seg[CPU_CS].base == 0xffff0000ULL);
    assert_int_equal(s.cr0, 0x60000010);
    assert_int_equal(s.rflags, 2);
    assert_int_equal(s.fpu.mxcsr, 0x1f80);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ram_rom_unassigned), cmocka_unit_test(test_alias_priority_overlap),
        cmocka_unit_test(test_spans_merge),        cmocka_unit_test(test_mmio_sizes),
        cmocka_unit_test(test_romd),
        cmocka_unit_test(test_ram_huge_alignment),
        cmocka_unit_test(test_dirty_and_watch),    cmocka_unit_test(test_ports),
        cmocka_unit_test(test_timers),             cmocka_unit_test(test_irq_router),
        cmocka_unit_test(test_ssm),                cmocka_unit_test(test_devices_and_cfg),
        cmocka_unit_test(test_vm_lifecycle_no_cpu), cmocka_unit_test(test_clock_stops_while_paused),
        cmocka_unit_test(test_cpu_reset_state),
    };
    rt_log_set_stderr_level(RT_LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
