/* iom.c - I/O port space: create-then-map port regions, dispatch with declared access sizes, unclaimed-port logging. */
#include <stdlib.h>
#include <string.h>

#include "vm-internal.h"

#define LOG_COMPONENT "iom"
#define IOM_PORTS 65536

struct io_region {
    struct vm *vm;
    char *name;
    uint32_t size;
    const struct io_ops *ops;
    void *opaque;
    bool mapped;
    uint16_t port;
    bool narrow_write_logged;
    struct io_region *next;
};

int iom_init(struct vm *vm)
{
    vm->iom.ports = calloc(IOM_PORTS, sizeof(*vm->iom.ports));
    vm->iom.unclaimed_logged = calloc(IOM_PORTS / 64, sizeof(uint64_t));
    if (!vm->iom.ports || !vm->iom.unclaimed_logged) {
        free(vm->iom.ports);
        free(vm->iom.unclaimed_logged);
        return VERR_NO_MEMORY;
    }
    return 0;
}

void iom_fini(struct vm *vm)
{
    while (vm->iom.regions)
        iom_region_destroy(vm->iom.regions);
    free(vm->iom.ports);
    free(vm->iom.unclaimed_logged);
}

static void io_sizes(const struct io_ops *ops, unsigned *min, unsigned *max)
{
    *min = ops->min_access ? ops->min_access : 1;
    *max = ops->max_access ? ops->max_access : 4;
}

uint64_t io_ops_read(const struct io_ops *ops, void *opaque, uint64_t offset, unsigned size, bool *dropped)
{
    unsigned min, max;
    io_sizes(ops, &min, &max);
    *dropped = false;
    if (size > max) {
        /* Split a wide access into max-sized ones, little-endian. */
        uint64_t v = 0;
        for (unsigned done = 0; done < size; done += max)
            v |= (ops->read(opaque, offset + done, max) & (max == 8 ? UINT64_MAX : (1ULL << (8 * max)) - 1))
                 << (8 * done);
        return v;
    }
    if (size < min) {
        uint64_t base = offset & ~(uint64_t)(min - 1);
        uint64_t v = ops->read(opaque, base, min);
        return (v >> (8 * (offset - base))) & ((1ULL << (8 * size)) - 1);
    }
    uint64_t v = ops->read(opaque, offset, size);
    return size == 8 ? v : v & ((1ULL << (8 * size)) - 1);
}

bool io_ops_write(const struct io_ops *ops, void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    unsigned min, max;
    io_sizes(ops, &min, &max);
    if (size > max) {
        for (unsigned done = 0; done < size; done += max)
            ops->write(opaque, offset + done, (value >> (8 * done)) & (max == 8 ? UINT64_MAX : (1ULL << (8 * max)) - 1),
                       max);
        return true;
    }
    if (size < min)
        return false;
    ops->write(opaque, offset, size == 8 ? value : value & ((1ULL << (8 * size)) - 1), size);
    return true;
}

int iom_region_create(struct vm *vm, const char *name, uint32_t size, const struct io_ops *ops, void *opaque,
                      struct io_region **out)
{
    if (!vm || !name || !ops || !ops->read || !ops->write || size == 0 || size > IOM_PORTS || !out)
        return VERR_INVALID_PARAMETER;
    struct io_region *r = calloc(1, sizeof(*r));
    if (!r)
        return VERR_NO_MEMORY;
    r->name = strdup(name);
    if (!r->name) {
        free(r);
        return VERR_NO_MEMORY;
    }
    r->vm = vm;
    r->size = size;
    r->ops = ops;
    r->opaque = opaque;
    vm_lock(vm);
    r->next = vm->iom.regions;
    vm->iom.regions = r;
    vm_unlock(vm);
    *out = r;
    return 0;
}

int iom_region_map(struct io_region *region, uint16_t port)
{
    if (!region || region->mapped || (uint32_t)port + region->size > IOM_PORTS)
        return VERR_INVALID_PARAMETER;
    struct vm *vm = region->vm;
    vm_lock(vm);
    for (uint32_t i = 0; i < region->size; i++) {
        struct io_region *other = vm->iom.ports[port + i];
        if (other) {
            LOG_ERR("ports 0x%x-0x%x of '%s' overlap '%s'", port, port + region->size - 1, region->name,
                    other->name);
            vm_unlock(vm);
            return VERR_OVERLAP;
        }
    }
    for (uint32_t i = 0; i < region->size; i++)
        vm->iom.ports[port + i] = region;
    region->port = port;
    region->mapped = true;
    vm_unlock(vm);
    return 0;
}

void iom_region_unmap(struct io_region *region)
{
    if (!region || !region->mapped)
        return;
    struct vm *vm = region->vm;
    vm_lock(vm);
    for (uint32_t i = 0; i < region->size; i++)
        vm->iom.ports[region->port + i] = NULL;
    region->mapped = false;
    vm_unlock(vm);
}

bool iom_region_is_mapped(const struct io_region *region)
{
    return region && region->mapped;
}

void iom_region_destroy(struct io_region *region)
{
    if (!region)
        return;
    struct vm *vm = region->vm;
    iom_region_unmap(region);
    vm_lock(vm);
    for (struct io_region **pp = &vm->iom.regions; *pp; pp = &(*pp)->next) {
        if (*pp == region) {
            *pp = region->next;
            break;
        }
    }
    vm_unlock(vm);
    free(region->name);
    free(region);
}

static bool any_claimed(struct vm *vm, uint16_t port, unsigned size)
{
    for (unsigned i = 0; i < size; i++)
        if (vm->iom.ports[(uint16_t)(port + i)])
            return true;
    return false;
}

static void log_unclaimed(struct vm *vm, uint16_t port, const char *what)
{
    uint64_t bit = 1ULL << (port % 64);
    if (vm->iom.unclaimed_logged[port / 64] & bit)
        return;
    vm->iom.unclaimed_logged[port / 64] |= bit;
    LOG_INFO("%s of unclaimed port 0x%04x (logged once per port)", what, port);
}

/* The region claiming all of [port, port+size), or NULL when none does. */
static struct io_region *region_for(struct vm *vm, uint16_t port, unsigned size)
{
    struct io_region *r = vm->iom.ports[port];
    if (!r || (uint32_t)port + size > (uint32_t)r->port + r->size)
        return NULL;
    return r;
}

uint32_t iom_port_read(struct vm *vm, uint16_t port, unsigned size)
{
    if (size != 1 && size != 2 && size != 4)
        return UINT32_MAX;
    vm_lock(vm);
    uint32_t v;
    struct io_region *r = region_for(vm, port, size);
    if (r) {
        bool dropped;
        v = (uint32_t)io_ops_read(r->ops, r->opaque, port - r->port, size, &dropped);
    } else if (size > 1 && any_claimed(vm, port, size)) {
        /* Straddles two regions (or a region's end): byte by byte. */
        v = 0;
        for (unsigned i = 0; i < size; i++)
            v |= iom_port_read(vm, (uint16_t)(port + i), 1) << (8 * i);
    } else {
        log_unclaimed(vm, port, "read");
        v = size == 4 ? UINT32_MAX : (1u << (8 * size)) - 1;
    }
    vm_unlock(vm);
    return v;
}

void iom_port_write(struct vm *vm, uint16_t port, uint32_t value, unsigned size)
{
    if (size != 1 && size != 2 && size != 4)
        return;
    vm_lock(vm);
    struct io_region *r = region_for(vm, port, size);
    if (r) {
        if (!io_ops_write(r->ops, r->opaque, port - r->port, value, size) && !r->narrow_write_logged) {
            r->narrow_write_logged = true;
            LOG_WARN("'%s': dropped %u-byte write to port 0x%x (narrower than the device accepts)", r->name, size,
                     port);
        }
    } else if (size > 1 && any_claimed(vm, port, size)) {
        for (unsigned i = 0; i < size; i++)
            iom_port_write(vm, (uint16_t)(port + i), (value >> (8 * i)) & 0xff, 1);
    } else {
        log_unclaimed(vm, port, "write");
    }
    vm_unlock(vm);
}
