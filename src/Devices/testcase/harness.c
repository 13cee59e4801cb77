/* harness.c - device test harness: a CPU-less VM with a manual clock, port I/O helpers and an IRQ edge counter. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "harness.h"
#include "vireo/storage.h"

struct harness_irq_watch {
    unsigned rises[PDM_GSI_COUNT];
};

/* One watch per VM; tests create one VM at a time per thread. */
static struct harness_irq_watch g_watch;

static void watch_sink(void *opaque, unsigned gsi, bool level)
{
    struct harness_irq_watch *w = opaque;
    if (level && gsi < PDM_GSI_COUNT)
        w->rises[gsi]++;
}

struct vm *harness_vm_create(uint64_t ram_bytes)
{
    return harness_vm_create_smp(ram_bytes, 1);
}

struct vm *harness_vm_create_smp(uint64_t ram_bytes, unsigned vcpus)
{
    struct vm_params p = {
        .name = "harness", .ram_bytes = ram_bytes, .vcpu_count = vcpus,
        .exec = VM_EXEC_NONE, .clock_mode = VM_CLOCK_MANUAL,
    };
    struct vm *vm = NULL;
    assert_int_equal(vm_create(&p, &vm), 0);
    memset(&g_watch, 0, sizeof(g_watch));
    assert_int_equal(pdm_irq_sink_add(vm, watch_sink, &g_watch), 0);
    if (ram_bytes) {
        struct mem_region *ram;
        assert_int_equal(mem_region_create_ram(vm, "ram", ram_bytes, &ram), 0);
        assert_int_equal(mem_region_map(ram, 0, 0), 0);
    }
    return vm;
}

void harness_vm_destroy(struct vm *vm)
{
    vm_destroy(vm);
}

int harness_dev_try_create(struct vm *vm, const struct pdm_dev_desc *desc, const char *name, const char *cfg,
                           struct pdm_dev **out)
{
    struct pdm_cfg *c = NULL;
    int rc = pdm_cfg_create(&c);
    if (rc)
        return rc;
    if (cfg) {
        char *copy = strdup(cfg);
        char *save = NULL;
        for (char *kv = strtok_r(copy, ",", &save); kv && !rc; kv = strtok_r(NULL, ",", &save)) {
            char *eq = strchr(kv, '=');
            if (!eq) {
                rc = VERR_INVALID_PARAMETER;
                break;
            }
            *eq = '\0';
            rc = pdm_cfg_set(c, kv, eq + 1);
        }
        free(copy);
    }
    if (!rc)
        rc = pdm_dev_create(vm, desc, name, c, out);
    pdm_cfg_destroy(c);
    return rc;
}

struct pdm_dev *harness_dev_create(struct vm *vm, const struct pdm_dev_desc *desc, const char *name,
                                   const char *cfg)
{
    struct pdm_dev *dev = NULL;
    assert_int_equal(harness_dev_try_create(vm, desc, name, cfg, &dev), 0);
    assert_non_null(dev);
    return dev;
}

void harness_outb(struct vm *vm, uint16_t port, uint8_t value) { iom_port_write(vm, port, value, 1); }
void harness_outw(struct vm *vm, uint16_t port, uint16_t value) { iom_port_write(vm, port, value, 2); }
void harness_outl(struct vm *vm, uint16_t port, uint32_t value) { iom_port_write(vm, port, value, 4); }
uint8_t harness_inb(struct vm *vm, uint16_t port) { return (uint8_t)iom_port_read(vm, port, 1); }
uint16_t harness_inw(struct vm *vm, uint16_t port) { return (uint16_t)iom_port_read(vm, port, 2); }
uint32_t harness_inl(struct vm *vm, uint16_t port) { return iom_port_read(vm, port, 4); }

void harness_step_ns(struct vm *vm, uint64_t ns)
{
    tm_clock_step(vm, ns);
}

bool harness_gsi_level(struct vm *vm, unsigned gsi)
{
    return pdm_irq_gsi_level(vm, gsi);
}

unsigned harness_gsi_rises(struct vm *vm, unsigned gsi)
{
    (void)vm;
    return gsi < PDM_GSI_COUNT ? g_watch.rises[gsi] : 0;
}

void harness_gsi_clear(struct vm *vm)
{
    (void)vm;
    memset(&g_watch, 0, sizeof(g_watch));
}

bool harness_intr_pending(struct vm *vm)
{
    return vcpu_intr_pending(vm_get_vcpu(vm, 0));
}

int harness_intr_ack(struct vm *vm)
{
    return vcpu_intr_ack(vm_get_vcpu(vm, 0));
}

int harness_dev_save_reset_load(struct pdm_dev *dev)
{
    const struct pdm_dev_desc *desc = pdm_dev_desc(dev);
    struct ssm *out = NULL, *in = NULL;
    int rc = ssm_create(&out);
    if (rc)
        return rc;
    rc = desc->save(dev, out);
    if (!rc)
        rc = ssm_status(out);
    if (!rc) {
        if (desc->reset)
            desc->reset(dev);
        size_t len;
        const void *data = ssm_data(out, &len);
        rc = ssm_open(data, len, &in);
        if (!rc)
            rc = desc->load(dev, in, desc->ssm_version);
        if (!rc)
            rc = ssm_status(in);
    }
    ssm_destroy(in);
    ssm_destroy(out);
    return rc;
}

uint32_t harness_rand(uint32_t *state)
{
    uint32_t x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *state = x;
}

void harness_shuffle(uint32_t *ops, unsigned n, uint32_t *state)
{
    for (unsigned i = 0; i < n; i++)
        ops[i] = i;
    for (unsigned i = n ? n - 1 : 0; i > 0; i--) {
        unsigned j = harness_rand(state) % (i + 1);
        uint32_t t = ops[i];
        ops[i] = ops[j];
        ops[j] = t;
    }
}

void harness_drain_io(struct vm *vm)
{
    vm_lock(vm);
    drive_drain_all(vm);
    vm_unlock(vm);
}
