/* tstVirtqueue.c - split virtqueue tests: chains, indirect tables, malformed rings, notification suppression, buffer copies, saved state, garbage. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "harness.h"
#include "../Virtio/virtio-internal.h"

#define RAM_BYTES  (1u << 20)
#define DESC_GPA   0x10000u
#define AVAIL_GPA  0x11000u
#define USED_GPA   0x12000u
#define TABLE_GPA  0x13000u /* indirect tables */
#define DATA_GPA   0x20000u
#define QSIZE      8

struct fixture {
    struct vm *vm;
    struct virtq q;
    unsigned errors, interrupts;
    char why[160];
    uint16_t avail_idx;
};

static void on_error(void *opaque, struct virtq *q, const char *why)
{
    struct fixture *f = opaque;
    (void)q;
    f->errors++;
    strncpy(f->why, why, sizeof(f->why) - 1);
}

static void on_interrupt(void *opaque, struct virtq *q)
{
    struct fixture *f = opaque;
    (void)q;
    f->interrupts++;
}

static void w16(struct vm *vm, uint64_t gpa, uint16_t v) { assert_int_equal(mem_write(vm, gpa, &v, 2), 0); }
static void w32(struct vm *vm, uint64_t gpa, uint32_t v) { assert_int_equal(mem_write(vm, gpa, &v, 4), 0); }
static void w64(struct vm *vm, uint64_t gpa, uint64_t v) { assert_int_equal(mem_write(vm, gpa, &v, 8), 0); }
static uint16_t r16(struct vm *vm, uint64_t gpa)
{
    uint16_t v;
    assert_int_equal(mem_read(vm, gpa, &v, 2), 0);
    return v;
}
static uint32_t r32(struct vm *vm, uint64_t gpa)
{
    uint32_t v;
    assert_int_equal(mem_read(vm, gpa, &v, 4), 0);
    return v;
}

static void desc_at(struct vm *vm, uint64_t table, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
                    uint16_t next)
{
    uint64_t d = table + 16ull * i;
    w64(vm, d, addr);
    w32(vm, d + 8, len);
    w16(vm, d + 12, flags);
    w16(vm, d + 14, next);
}

static void desc(struct fixture *f, unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
    desc_at(f->vm, DESC_GPA, i, addr, len, flags, next);
}

/* Makes head available (the driver's side of section 2.7.13). */
static void post(struct fixture *f, uint16_t head)
{
    w16(f->vm, AVAIL_GPA + 4 + 2 * (f->avail_idx % QSIZE), head);
    f->avail_idx++;
    w16(f->vm, AVAIL_GPA + 2, f->avail_idx);
}

static void setup(struct fixture *f, uint64_t features)
{
    memset(f, 0, sizeof(*f));
    f->vm = harness_vm_create(RAM_BYTES);
    const struct virtq_host host = {.error = on_error, .interrupt = on_interrupt, .opaque = f};
    virtq_init(&f->q, f->vm, 0, 256, &host);
    assert_int_equal(f->q.size, 256);
    f->q.size = QSIZE;
    f->q.desc_gpa = DESC_GPA;
    f->q.avail_gpa = AVAIL_GPA;
    f->q.used_gpa = USED_GPA;
    virtq_set_features(&f->q, features);
    assert_int_equal(virtq_enable(&f->q), 0);
    f->q.running = true;
    assert_true(virtq_is_ready(&f->q));
}

static void teardown(struct fixture *f)
{
    harness_vm_destroy(f->vm);
}

/* Expects the next pop to break the queue with a reason containing what. */
static void expect_fault(struct fixture *f, const char *what)
{
    struct virtq_elem e;
    assert_int_equal(virtq_pop(&f->q, &e), VERR_GUEST_FAULT);
    assert_int_equal(f->errors, 1);
    assert_non_null(strstr(f->why, what));
    assert_false(virtq_is_ready(&f->q));
    /* A broken queue yields nothing more and reports no second error. */
    assert_int_equal(virtq_pop(&f->q, &e), 0);
    assert_int_equal(f->errors, 1);
}

/* ---- tests ---- */

static void test_chain_pop_push(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f, 0);
    struct virtq_elem e;
    assert_int_equal(virtq_pop(&f.q, &e), 0);

    /* Two readable buffers then a writable one, chained 5 -> 2 -> 7, with an empty descriptor in between. */
    desc(&f, 5, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 2);
    desc(&f, 2, DATA_GPA + 0x100, 0, VIRTQ_DESC_F_NEXT, 3);
    desc(&f, 3, DATA_GPA + 0x200, 100, VIRTQ_DESC_F_NEXT, 7);
    desc(&f, 7, DATA_GPA + 0x1000, 513, VIRTQ_DESC_F_WRITE, 0);
    post(&f, 5);
    assert_int_equal(virtq_pop(&f.q, &e), 1);
    assert_int_equal(e.head, 5);
    assert_int_equal(e.out_count, 2);
    assert_int_equal(e.in_count, 1);
    assert_int_equal(e.out_bytes, 116);
    assert_int_equal(e.in_bytes, 513);
    assert_int_equal(e.seg[0].gpa, DATA_GPA);
    assert_int_equal(e.seg[1].gpa, DATA_GPA + 0x200);
    assert_int_equal(e.seg[2].gpa, DATA_GPA + 0x1000);
    assert_int_equal(e.seg[2].len, 513);
    assert_int_equal(virtq_pop(&f.q, &e), 0);

    virtq_push(&f.q, 5, 77);
    assert_int_equal(r16(f.vm, USED_GPA + 2), 1);
    assert_int_equal(r32(f.vm, USED_GPA + 4), 5);
    assert_int_equal(r32(f.vm, USED_GPA + 8), 77);
    virtq_notify(&f.q);
    assert_int_equal(f.interrupts, 1);

    /* The rings wrap: 20 more round trips on a queue of 8. */
    for (unsigned i = 0; i < 20; i++) {
        desc(&f, 1, DATA_GPA, 8, 0, 0);
        post(&f, 1);
        assert_int_equal(virtq_pop(&f.q, &e), 1);
        assert_int_equal(e.head, 1);
        virtq_push(&f.q, 1, i);
    }
    assert_int_equal(r16(f.vm, USED_GPA + 2), 21);
    assert_int_equal(r32(f.vm, USED_GPA + 4 + 8 * (20 % QSIZE) + 4), 19);
    assert_int_equal(f.errors, 0);
    teardown(&f);
}

static void test_indirect(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f, VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC));
    /* A direct readable buffer, then an indirect table of three (header, data, status). */
    desc(&f, 0, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 4);
    desc(&f, 4, TABLE_GPA, 48, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_WRITE, 0);
    desc_at(f.vm, TABLE_GPA, 0, DATA_GPA + 0x100, 32, VIRTQ_DESC_F_NEXT, 2);
    desc_at(f.vm, TABLE_GPA, 2, DATA_GPA + 0x200, 512, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
    desc_at(f.vm, TABLE_GPA, 1, DATA_GPA + 0x400, 1, VIRTQ_DESC_F_WRITE, 0);
    post(&f, 0);
    struct virtq_elem e;
    assert_int_equal(virtq_pop(&f.q, &e), 1);
    assert_int_equal(e.out_count, 2);
    assert_int_equal(e.in_count, 2);
    assert_int_equal(e.out_bytes, 48);
    assert_int_equal(e.in_bytes, 513);
    assert_int_equal(e.seg[1].gpa, DATA_GPA + 0x100);
    assert_int_equal(e.seg[3].gpa, DATA_GPA + 0x400);
    assert_int_equal(f.errors, 0);
    teardown(&f);

    /* Without the feature an indirect descriptor is a ring error. */
    setup(&f, 0);
    desc(&f, 0, TABLE_GPA, 48, VIRTQ_DESC_F_INDIRECT, 0);
    post(&f, 0);
    expect_fault(&f, "INDIRECT_DESC");
    teardown(&f);
}

static void test_indirect_bad(void **state)
{
    (void)state;
    static const struct {
        uint32_t len;
        uint16_t flags;
        const char *why;
    } cases[] = {
        {40, VIRTQ_DESC_F_INDIRECT, "indirect table of 40 bytes"},
        {0, VIRTQ_DESC_F_INDIRECT, "indirect table of 0 bytes"},
        {16 * (VIRTQ_SEG_MAX + 1), VIRTQ_DESC_F_INDIRECT, "indirect table of"},
        {32, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, "NEXT"},
    };
    for (unsigned i = 0; i < RT_ARRAY_SIZE(cases); i++) {
        struct fixture f;
        setup(&f, VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC));
        desc(&f, 0, TABLE_GPA, cases[i].len, cases[i].flags, 1);
        desc(&f, 1, DATA_GPA, 8, 0, 0);
        post(&f, 0);
        expect_fault(&f, cases[i].why);
        teardown(&f);
    }

    /* Nested indirect, a loop inside a table, a next index past the table's end, a table outside RAM. */
    struct fixture f;
    setup(&f, VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC));
    desc(&f, 0, TABLE_GPA, 32, VIRTQ_DESC_F_INDIRECT, 0);
    desc_at(f.vm, TABLE_GPA, 0, TABLE_GPA + 0x100, 32, VIRTQ_DESC_F_INDIRECT, 0);
    post(&f, 0);
    expect_fault(&f, "inside an indirect table");
    teardown(&f);

    setup(&f, VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC));
    desc(&f, 0, TABLE_GPA, 32, VIRTQ_DESC_F_INDIRECT, 0);
    desc_at(f.vm, TABLE_GPA, 0, DATA_GPA, 8, VIRTQ_DESC_F_NEXT, 1);
    desc_at(f.vm, TABLE_GPA, 1, DATA_GPA, 8, VIRTQ_DESC_F_NEXT, 0);
    post(&f, 0);
    expect_fault(&f, "more than 2 descriptors");
    teardown(&f);

    setup(&f, VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC));
    desc(&f, 0, TABLE_GPA, 32, VIRTQ_DESC_F_INDIRECT, 0);
    desc_at(f.vm, TABLE_GPA, 0, DATA_GPA, 8, VIRTQ_DESC_F_NEXT, 2);
    post(&f, 0);
    expect_fault(&f, "next index 2 out of range");
    teardown(&f);

    setup(&f, VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC));
    desc(&f, 0, 0xfee00000u, 32, VIRTQ_DESC_F_INDIRECT, 0);
    post(&f, 0);
    expect_fault(&f, "not in guest RAM");
    teardown(&f);
}

static void test_malformed_rings(void **state)
{
    (void)state;
    struct fixture f;

    /* A loop in the descriptor table: 0 -> 1 -> 2 -> 0. */
    setup(&f, 0);
    desc(&f, 0, DATA_GPA, 8, VIRTQ_DESC_F_NEXT, 1);
    desc(&f, 1, DATA_GPA, 8, VIRTQ_DESC_F_NEXT, 2);
    desc(&f, 2, DATA_GPA, 8, VIRTQ_DESC_F_NEXT, 0);
    post(&f, 0);
    expect_fault(&f, "a loop?");
    teardown(&f);

    /* A chain that visits every descriptor and then wants one more than the queue holds. */
    setup(&f, 0);
    for (unsigned i = 0; i < QSIZE; i++)
        desc(&f, i, DATA_GPA, 8, VIRTQ_DESC_F_NEXT, (uint16_t)((i + 1) % QSIZE));
    post(&f, 0);
    expect_fault(&f, "more than 8 descriptors");
    teardown(&f);

    /* A chain of exactly the queue size is fine. */
    setup(&f, 0);
    for (unsigned i = 0; i < QSIZE; i++)
        desc(&f, i, DATA_GPA, 8, i + 1 < QSIZE ? VIRTQ_DESC_F_NEXT : 0, (uint16_t)(i + 1));
    post(&f, 0);
    struct virtq_elem e;
    assert_int_equal(virtq_pop(&f.q, &e), 1);
    assert_int_equal(e.out_count, QSIZE);
    teardown(&f);

    /* next index out of range, head out of range, index too far ahead, readable after writable. */
    setup(&f, 0);
    desc(&f, 0, DATA_GPA, 8, VIRTQ_DESC_F_NEXT, QSIZE);
    post(&f, 0);
    expect_fault(&f, "next index 8 out of range");
    teardown(&f);

    setup(&f, 0);
    post(&f, 200);
    expect_fault(&f, "head 200 out of range");
    teardown(&f);

    setup(&f, 0);
    w16(f.vm, AVAIL_GPA + 2, QSIZE + 1);
    expect_fault(&f, "9 entries ahead");
    teardown(&f);

    setup(&f, 0);
    desc(&f, 0, DATA_GPA, 8, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
    desc(&f, 1, DATA_GPA, 8, 0, 0);
    post(&f, 0);
    expect_fault(&f, "readable buffer after a writable");
    teardown(&f);

    /* A buffer whose end wraps the address space. */
    setup(&f, 0);
    desc(&f, 0, UINT64_MAX - 4, 8, 0, 0);
    post(&f, 0);
    expect_fault(&f, "wraps");
    teardown(&f);

    /* After a reset the queue is usable again. */
    setup(&f, 0);
    post(&f, 99);
    expect_fault(&f, "out of range");
    virtq_reset(&f.q);
    assert_false(f.q.broken);
    assert_int_equal(f.q.size, 256);
    teardown(&f);
}

static void test_enable_checks(void **state)
{
    (void)state;
    struct fixture f;
    static const struct {
        uint16_t size;
        uint64_t desc, avail, used;
        const char *why;
    } cases[] = {
        {0, DESC_GPA, AVAIL_GPA, USED_GPA, "size 0"},
        {6, DESC_GPA, AVAIL_GPA, USED_GPA, "size 6"},
        {512, DESC_GPA, AVAIL_GPA, USED_GPA, "size 512"},
        {8, DESC_GPA + 8, AVAIL_GPA, USED_GPA, "misaligned"},
        {8, DESC_GPA, AVAIL_GPA + 1, USED_GPA, "misaligned"},
        {8, DESC_GPA, AVAIL_GPA, USED_GPA + 2, "misaligned"},
        {8, RAM_BYTES - 64, AVAIL_GPA, USED_GPA, "outside guest RAM"},
        {8, DESC_GPA, AVAIL_GPA, 0xfffffffffffffff0ull, "outside guest RAM"},
    };
    for (unsigned i = 0; i < RT_ARRAY_SIZE(cases); i++) {
        setup(&f, 0);
        virtq_reset(&f.q);
        f.q.size = cases[i].size;
        f.q.desc_gpa = cases[i].desc;
        f.q.avail_gpa = cases[i].avail;
        f.q.used_gpa = cases[i].used;
        assert_int_equal(virtq_enable(&f.q), VERR_GUEST_FAULT);
        assert_int_equal(f.errors, 1);
        assert_non_null(strstr(f.why, cases[i].why));
        assert_false(f.q.enabled);
        teardown(&f);
    }
}

static void test_notify_flags(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f, 0);
    desc(&f, 0, DATA_GPA, 8, 0, 0);
    struct virtq_elem e;
    post(&f, 0);
    assert_int_equal(virtq_pop(&f.q, &e), 1);
    virtq_push(&f.q, 0, 0);
    w16(f.vm, AVAIL_GPA, VIRTQ_AVAIL_F_NO_INTERRUPT);
    virtq_notify(&f.q);
    assert_int_equal(f.interrupts, 0);
    w16(f.vm, AVAIL_GPA, 0);
    virtq_notify(&f.q);
    assert_int_equal(f.interrupts, 1);
    /* Without EVENT_IDX the device never writes avail_event. */
    w16(f.vm, USED_GPA + 4 + 8 * QSIZE, 0x5555);
    assert_int_equal(virtq_pop(&f.q, &e), 0);
    assert_int_equal(r16(f.vm, USED_GPA + 4 + 8 * QSIZE), 0x5555);
    teardown(&f);
}

static void test_event_idx(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f, VIRTIO_BIT(VIRTIO_F_EVENT_IDX));
    desc(&f, 0, DATA_GPA, 8, 0, 0);
    struct virtq_elem e;
    const uint64_t used_event = AVAIL_GPA + 4 + 2 * QSIZE, avail_event = USED_GPA + 4 + 8 * QSIZE;

    /* Finding the ring empty publishes avail_event = the next index the device will read. */
    assert_int_equal(virtq_pop(&f.q, &e), 0);
    assert_int_equal(r16(f.vm, avail_event), 0);
    post(&f, 0);
    post(&f, 0);
    assert_int_equal(virtq_pop(&f.q, &e), 1);
    assert_int_equal(virtq_pop(&f.q, &e), 1);
    assert_int_equal(virtq_pop(&f.q, &e), 0);
    assert_int_equal(r16(f.vm, avail_event), 2);

    /* The driver wants an interrupt only once used idx passes 3 (used_event = 2). */
    w16(f.vm, used_event, 2);
    virtq_push(&f.q, 0, 0);
    virtq_notify(&f.q);
    assert_int_equal(f.interrupts, 1); /* the first notification always goes out */
    virtq_push(&f.q, 0, 0);
    virtq_notify(&f.q);
    assert_int_equal(f.interrupts, 1); /* used idx 2: event 2 not yet passed */
    post(&f, 0);
    assert_int_equal(virtq_pop(&f.q, &e), 1);
    virtq_push(&f.q, 0, 0);
    virtq_notify(&f.q);
    assert_int_equal(f.interrupts, 2); /* used idx 3 crossed used_event + 1 */
    virtq_notify(&f.q);
    assert_int_equal(f.interrupts, 2); /* nothing new pushed */

    /* Several pushes batched into one notify still interrupt when the event lies inside the batch. */
    w16(f.vm, used_event, 4);
    for (unsigned i = 0; i < 3; i++) {
        post(&f, 0);
        assert_int_equal(virtq_pop(&f.q, &e), 1);
        virtq_push(&f.q, 0, 0);
    }
    virtq_notify(&f.q);
    assert_int_equal(f.interrupts, 3);
    /* An event index left behind (the driver is not interested) suppresses everything. */
    w16(f.vm, used_event, 1);
    post(&f, 0);
    assert_int_equal(virtq_pop(&f.q, &e), 1);
    virtq_push(&f.q, 0, 0);
    virtq_notify(&f.q);
    assert_int_equal(f.interrupts, 3);
    teardown(&f);
}

static void test_elem_copy(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f, 0);
    /* Readable: 3 bytes in RAM, 4 bytes outside it; writable: 2 + 6 bytes, the second crossing a page. */
    desc(&f, 0, DATA_GPA, 3, VIRTQ_DESC_F_NEXT, 1);
    desc(&f, 1, 0xfee00000u, 4, VIRTQ_DESC_F_NEXT, 2);
    desc(&f, 2, DATA_GPA + 0x100, 2, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 3);
    desc(&f, 3, DATA_GPA + 0x1ffd, 6, VIRTQ_DESC_F_WRITE, 0);
    assert_int_equal(mem_write(f.vm, DATA_GPA, "abc", 3), 0);
    post(&f, 0);
    struct virtq_elem e;
    assert_int_equal(virtq_pop(&f.q, &e), 1);
    uint8_t buf[16];
    memset(buf, 0, sizeof(buf));
    assert_int_equal(virtq_elem_read(f.vm, &e, 1, buf, sizeof(buf)), 6);
    assert_memory_equal(buf, "bc\xff\xff\xff\xff", 6);
    assert_int_equal(virtq_elem_write(f.vm, &e, 1, "0123456789", 10), 7);
    uint8_t out[8];
    assert_int_equal(mem_read(f.vm, DATA_GPA + 0x100, out, 2), 0);
    assert_int_equal(out[1], '0');
    assert_int_equal(mem_read(f.vm, DATA_GPA + 0x1ffd, out, 6), 0);
    assert_memory_equal(out, "123456", 6);
    teardown(&f);
}

static void test_saved_state(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f, VIRTIO_BIT(VIRTIO_F_EVENT_IDX));
    desc(&f, 0, DATA_GPA, 8, 0, 0);
    struct virtq_elem e;
    post(&f, 0);
    post(&f, 0);
    assert_int_equal(virtq_pop(&f.q, &e), 1);
    virtq_push(&f.q, 0, 0);
    virtq_notify(&f.q);

    struct ssm *out;
    assert_int_equal(ssm_create(&out), 0);
    virtq_save(&f.q, out);
    size_t len;
    const void *data = ssm_data(out, &len);
    struct virtq copy;
    const struct virtq_host host = {.error = on_error, .interrupt = on_interrupt, .opaque = &f};
    virtq_init(&copy, f.vm, 0, 256, &host);
    struct ssm *in;
    assert_int_equal(ssm_open(data, len, &in), 0);
    assert_int_equal(virtq_load(&copy, in), 0);
    ssm_destroy(in);
    assert_int_equal(copy.size, QSIZE);
    assert_true(copy.enabled);
    assert_int_equal(copy.last_avail_idx, 1);
    assert_int_equal(copy.used_idx, 1);
    assert_true(copy.event_idx);
    /* It carries on where the saved queue was: the second posted chain comes next. */
    copy.running = true;
    assert_int_equal(virtq_pop(&copy, &e), 1);
    assert_int_equal(virtq_pop(&copy, &e), 0);

    /* A size the device never accepts, and a truncated stream, are refused and change nothing. */
    uint8_t bad[256];
    memcpy(bad, data, len);
    bad[0] = 6;
    assert_int_equal(ssm_open(bad, len, &in), 0);
    assert_int_equal(virtq_load(&copy, in), VERR_SSM_CORRUPT);
    ssm_destroy(in);
    assert_int_equal(ssm_open(data, len - 1, &in), 0);
    assert_int_equal(virtq_load(&copy, in), VERR_SSM_CORRUPT);
    ssm_destroy(in);
    assert_int_equal(copy.last_avail_idx, 2);
    ssm_destroy(out);
    teardown(&f);
}

/* Random descriptor tables and available rings: every pop ends in 1, 0 or a ring error, never a crash. */
static void test_garbage(void **state)
{
    (void)state;
    uint32_t seed = 0x5eed1234;
    unsigned ok = 0, faults = 0;
    for (unsigned round = 0; round < 300; round++) {
        struct fixture f;
        setup(&f, harness_rand(&seed) & 1 ? VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX) : 0);
        for (unsigned i = 0; i < QSIZE; i++) {
            uint32_t r = harness_rand(&seed);
            uint64_t addr = r & 0x10 ? TABLE_GPA + 16 * (r >> 28) : (uint64_t)harness_rand(&seed) << (r & 31);
            uint32_t len = r & 0x20 ? 16 * ((r >> 8) & 7) : harness_rand(&seed);
            desc(&f, i, addr, len, (uint16_t)(r >> 12) & 7, (uint16_t)((r >> 16) % (QSIZE + 2)));
        }
        for (unsigned i = 0; i < 32; i++)
            w32(f.vm, TABLE_GPA + 4 * i, harness_rand(&seed) & 0x000f0007u);
        w16(f.vm, AVAIL_GPA + 2, (uint16_t)(harness_rand(&seed) % (QSIZE + 3)));
        for (unsigned i = 0; i < QSIZE; i++)
            w16(f.vm, AVAIL_GPA + 4 + 2 * i, (uint16_t)(harness_rand(&seed) % (QSIZE + 1)));
        struct virtq_elem e;
        for (unsigned n = 0; n < QSIZE + 2; n++) {
            int rc = virtq_pop(&f.q, &e);
            if (rc == 1) {
                ok++;
                assert_true(e.out_count + e.in_count <= VIRTQ_SEG_MAX);
                assert_true(e.head < QSIZE);
                virtq_push(&f.q, e.head, (uint32_t)e.in_bytes);
                virtq_notify(&f.q);
                continue;
            }
            if (rc < 0) {
                faults++;
                assert_int_equal(f.errors, 1);
            }
            break;
        }
        teardown(&f);
    }
    /* The seed gives both outcomes plenty of times. */
    assert_true(ok > 20);
    assert_true(faults > 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chain_pop_push),
        cmocka_unit_test(test_indirect),
        cmocka_unit_test(test_indirect_bad),
        cmocka_unit_test(test_malformed_rings),
        cmocka_unit_test(test_enable_checks),
        cmocka_unit_test(test_notify_flags),
        cmocka_unit_test(test_event_idx),
        cmocka_unit_test(test_elem_copy),
        cmocka_unit_test(test_saved_state),
        cmocka_unit_test(test_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
