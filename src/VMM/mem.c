/* mem.c - guest physical address space: RAM, ROM, ROM-device, MMIO and alias regions flattened into one sorted span map. */

/*
 * Design: regions are created, then mapped at a gpa with a priority.  Every map
 * change rebuilds the flat view (sorted, non-overlapping spans with aliases
 * resolved), which is what lookups, DMA, the software CPU and the KVM backend's
 * memory slots use.  Map changes happen rarely (boot, PAM, BAR programming), so
 * the rebuild is simple rather than incremental.  The span array is guarded by a
 * rwlock; MMIO handlers are called with the VM lock held and the rwlock released,
 * so a handler may itself change the map.
 *
 * A ROM device (flash) is host memory plus handlers: in ROM mode its spans are ROM
 * (backends read the memory directly: the software CPU's TLB, KVM's read-only slots)
 * and guest writes, which the ROM path would drop, go to its write handler instead; out
 * of ROM mode its spans are MMIO.  Switching rebuilds the map like any other change.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "vm-internal.h"

#define LOG_COMPONENT "mem"
#define MEM_PAGE_SHIFT 12
#define MEM_ADDR_LIMIT (1ULL << 52)

struct mem_region {
    struct vm *vm;
    char *name;
    enum mem_kind kind;
    uint64_t size;
    void *hva;                    /* RAM/ROM */
    size_t mmap_bytes;            /* RAM/ROM allocation to munmap */
    const struct io_ops *ops;     /* MMIO */
    void *opaque;
    struct mem_region *target;    /* alias */
    uint64_t target_offset;
    bool readonly;
    bool romd_rom;                /* ROM device: in ROM mode (reads from hva) */
    bool mapped;
    uint64_t gpa;
    int priority;
    uint64_t seq;
    _Atomic(uint64_t) *dirty;     /* RAM: one bit per page, always kept (writers mark without asking) */
    bool dirty_tracking;          /* a consumer enabled tracking: fetch is meaningful */
    bool narrow_write_logged;
    struct mem_region *next;
};

struct mem_watch {
    mem_write_watch_fn *fn;
    void *opaque;
    struct mem_watch *next;
};

int mem_map_init(struct vm *vm)
{
    memset(&vm->mem, 0, sizeof(vm->mem));
    if (pthread_rwlock_init(&vm->mem.lock, NULL) != 0)
        return VERR_THREAD;
    return 0;
}

void mem_map_fini(struct vm *vm)
{
    while (vm->mem.regions)
        mem_region_destroy(vm->mem.regions);
    while (vm->mem.watches) {
        struct mem_watch *w = vm->mem.watches;
        vm->mem.watches = w->next;
        free(w);
    }
    free(vm->mem.spans);
    pthread_rwlock_destroy(&vm->mem.lock);
}

static int region_new(struct vm *vm, const char *name, enum mem_kind kind, uint64_t size,
                      struct mem_region **out)
{
    if (!vm || !name || !out || size == 0 || size >= MEM_ADDR_LIMIT)
        return VERR_INVALID_PARAMETER;
    struct mem_region *r = calloc(1, sizeof(*r));
    if (!r)
        return VERR_NO_MEMORY;
    r->name = strdup(name);
    if (!r->name) {
        free(r);
        return VERR_NO_MEMORY;
    }
    r->vm = vm;
    r->kind = kind;
    r->size = size;
    *out = r;
    return 0;
}

static void region_link(struct mem_region *r)
{
    r->next = r->vm->mem.regions;
    r->vm->mem.regions = r;
}

/*
 * Host memory for RAM and ROM.  Regions of 2 MiB or more start on a 2 MiB boundary and ask
 * for transparent huge pages (where the host's THP policy is "madvise" or "always"): the
 * software CPU reaches guest memory through host addresses, so one host TLB entry then
 * covers 512 guest pages.  The slack around the aligned part is unmapped again.
 */
#define REGION_HUGE_BYTES (2u << 20)
static int region_alloc_host(struct mem_region *r)
{
    size_t bytes = RT_ALIGN_UP(r->size, 4096);
    size_t slack = bytes >= REGION_HUGE_BYTES ? REGION_HUGE_BYTES : 0;
    uint8_t *p = mmap(NULL, bytes + slack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        LOG_ERR("cannot map %llu MiB of host memory for '%s': %s", (unsigned long long)(r->size >> 20), r->name,
                strerror(errno));
        return VERR_NO_MEMORY;
    }
    if (slack) {
        uint8_t *aligned = (uint8_t *)RT_ALIGN_UP((uintptr_t)p, REGION_HUGE_BYTES);
        if (aligned > p)
            munmap(p, (size_t)(aligned - p));
        if (aligned + bytes < p + bytes + slack)
            munmap(aligned + bytes, (size_t)(p + bytes + slack - (aligned + bytes)));
        p = aligned;
        madvise(p, bytes, MADV_HUGEPAGE);
    }
    r->hva = p;
    r->mmap_bytes = bytes;
    return 0;
}

/* A new region with host memory behind it (RAM, ROM, ROM devices); nothing is left behind on failure. */
static int region_new_backed(struct vm *vm, const char *name, enum mem_kind kind, uint64_t size_bytes,
                             struct mem_region **out)
{
    struct mem_region *r;
    int rc = region_new(vm, name, kind, size_bytes, &r);
    if (rc)
        return rc;
    rc = region_alloc_host(r);
    if (rc) {
        free(r->name);
        free(r);
        return rc;
    }
    *out = r;
    return 0;
}

int mem_region_create_ram(struct vm *vm, const char *name, uint64_t size_bytes, struct mem_region **out)
{
    if ((size_bytes & 4095) != 0) {
        LOG_ERR("RAM region '%s' size %llu is not a multiple of 4 KiB", name, (unsigned long long)size_bytes);
        return VERR_INVALID_PARAMETER;
    }
    struct mem_region *r;
    int rc = region_new_backed(vm, name, MEM_KIND_RAM, size_bytes, &r);
    if (rc)
        return rc;
    /*
     * The dirty bitmap lives as long as the region, whether tracking is on or not, so
     * writers (the software CPU caches a pointer to a page's word in its TLB) never see
     * it change or go away; one bit per 4 KiB page is 32 KiB per GiB.
     */
    r->dirty = calloc(RT_MAX(((size_bytes >> MEM_PAGE_SHIFT) + 63) / 64, 1), sizeof(uint64_t));
    if (!r->dirty) {
        munmap(r->hva, r->mmap_bytes);
        free(r->name);
        free(r);
        return VERR_NO_MEMORY;
    }
    madvise(r->hva, r->mmap_bytes, MADV_DONTDUMP);
    region_link(r);
    *out = r;
    return 0;
}

int mem_region_create_rom(struct vm *vm, const char *name, const void *data, size_t len, uint64_t size_bytes,
                          struct mem_region **out)
{
    if (len > size_bytes || (len && !data))
        return VERR_INVALID_PARAMETER;
    struct mem_region *r;
    int rc = region_new_backed(vm, name, MEM_KIND_ROM, size_bytes, &r);
    if (rc)
        return rc;
    if (len)
        memcpy(r->hva, data, len);
    region_link(r);
    *out = r;
    return 0;
}

int mem_region_create_mmio(struct vm *vm, const char *name, uint64_t size_bytes, const struct io_ops *ops,
                           void *opaque, struct mem_region **out)
{
    if (!ops || !ops->read || !ops->write)
        return VERR_INVALID_PARAMETER;
    struct mem_region *r;
    int rc = region_new(vm, name, MEM_KIND_MMIO, size_bytes, &r);
    if (rc)
        return rc;
    r->ops = ops;
    r->opaque = opaque;
    region_link(r);
    *out = r;
    return 0;
}

int mem_region_create_romd(struct vm *vm, const char *name, uint64_t size_bytes, const struct io_ops *ops,
                           void *opaque, struct mem_region **out)
{
    if (!ops || !ops->read || !ops->write || (size_bytes & 4095) != 0)
        return VERR_INVALID_PARAMETER;
    struct mem_region *r;
    int rc = region_new_backed(vm, name, MEM_KIND_ROMD, size_bytes, &r);
    if (rc)
        return rc;
    r->ops = ops;
    r->opaque = opaque;
    r->romd_rom = true;
    region_link(r);
    *out = r;
    return 0;
}

static int mem_rebuild(struct vm *vm);

int mem_region_romd_set(struct mem_region *region, bool rom_mode)
{
    if (!region || region->kind != MEM_KIND_ROMD)
        return VERR_INVALID_PARAMETER;
    struct vm *vm = region->vm;
    vm_lock(vm);
    int rc = 0;
    if (region->romd_rom != rom_mode) {
        region->romd_rom = rom_mode;
        /* Aliases of the device change with it, so any mapping (its own or an alias's) needs a rebuild. */
        bool shown = region->mapped;
        for (struct mem_region *r = vm->mem.regions; r && !shown; r = r->next)
            shown = r->mapped && r->kind == MEM_KIND_ALIAS && r->target == region;
        if (shown)
            rc = mem_rebuild(vm);
    }
    vm_unlock(vm);
    return rc;
}

bool mem_region_romd_is_rom(const struct mem_region *region)
{
    return region && region->kind == MEM_KIND_ROMD && region->romd_rom;
}

int mem_region_create_alias(struct vm *vm, const char *name, struct mem_region *target, uint64_t offset,
                            uint64_t size_bytes, bool readonly, struct mem_region **out)
{
    if (!target ||
        (target->kind != MEM_KIND_RAM && target->kind != MEM_KIND_ROM && target->kind != MEM_KIND_ROMD) ||
        offset > target->size ||
        size_bytes > target->size - offset || (offset & 4095) != 0 || (size_bytes & 4095) != 0)
        return VERR_INVALID_PARAMETER;
    struct mem_region *r;
    int rc = region_new(vm, name, MEM_KIND_ALIAS, size_bytes, &r);
    if (rc)
        return rc;
    r->target = target;
    r->target_offset = offset;
    r->readonly = readonly || target->kind != MEM_KIND_RAM;
    region_link(r);
    *out = r;
    return 0;
}

/* ---- flattening ---- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void span_fill(struct mem_span *s, struct mem_region *r, uint64_t gpa, uint64_t size)
{
    uint64_t off = gpa - r->gpa;
    bool ro = false;
    if (r->kind == MEM_KIND_ALIAS) {
        ro = r->readonly;
        off += r->target_offset;
        r = r->target;
    }
    s->gpa = gpa;
    s->size = size;
    s->kind = r->kind;
    s->region = r;
    s->region_offset = off;
    if (r->kind == MEM_KIND_ROMD)
        s->kind = r->romd_rom ? MEM_KIND_ROM : MEM_KIND_MMIO;
    s->readonly = ro || s->kind == MEM_KIND_ROM;
    s->hva = r->hva && s->kind != MEM_KIND_MMIO ? (uint8_t *)r->hva + off : NULL;
}

static bool spans_mergeable(const struct mem_span *a, const struct mem_span *b)
{
    return a->region == b->region && a->readonly == b->readonly && a->gpa + a->size == b->gpa &&
           a->region_offset + a->size == b->region_offset;
}

/* Rebuilds the flat view from the mapped regions.  Called with the VM lock held. */
static int mem_rebuild(struct vm *vm)
{
    size_t n = 0;
    for (struct mem_region *r = vm->mem.regions; r; r = r->next)
        if (r->mapped)
            n++;
    uint64_t *points = malloc(sizeof(*points) * (2 * n + 1));
    struct mem_span *spans = calloc(2 * n + 1, sizeof(*spans));
    if (!points || !spans) {
        free(points);
        free(spans);
        return VERR_NO_MEMORY;
    }
    size_t np = 0;
    for (struct mem_region *r = vm->mem.regions; r; r = r->next) {
        if (!r->mapped)
            continue;
        points[np++] = r->gpa;
        points[np++] = r->gpa + r->size;
    }
    qsort(points, np, sizeof(*points), cmp_u64);
    size_t ns = 0;
    for (size_t i = 0; i + 1 < np; i++) {
        uint64_t lo = points[i], hi = points[i + 1];
        if (lo == hi)
            continue;
        struct mem_region *best = NULL;
        for (struct mem_region *r = vm->mem.regions; r; r = r->next) {
            if (!r->mapped || r->gpa > lo || r->gpa + r->size < hi)
                continue;
            if (!best || r->priority > best->priority || (r->priority == best->priority && r->seq > best->seq))
                best = r;
        }
        if (!best)
            continue;
        struct mem_span s;
        span_fill(&s, best, lo, hi - lo);
        if (ns > 0 && spans_mergeable(&spans[ns - 1], &s))
            spans[ns - 1].size += s.size;
        else
            spans[ns++] = s;
    }
    free(points);
    pthread_rwlock_wrlock(&vm->mem.lock);
    struct mem_span *old = vm->mem.spans;
    vm->mem.spans = spans;
    vm->mem.span_count = ns;
    pthread_rwlock_unlock(&vm->mem.lock);
    free(old);
    if (vm->backend && vm->backend->mem_changed && vm->backend_data) {
        int rc = vm->backend->mem_changed(vm);
        if (rc)
            LOG_ERR("CPU backend '%s' could not apply the new memory map: %s", vm->backend->name, rt_err_str(rc));
        return rc;
    }
    return 0;
}

int mem_region_map(struct mem_region *region, uint64_t gpa, int priority)
{
    if (!region || region->mapped || gpa >= MEM_ADDR_LIMIT || region->size > MEM_ADDR_LIMIT - gpa)
        return VERR_INVALID_PARAMETER;
    struct vm *vm = region->vm;
    vm_lock(vm);
    for (struct mem_region *r = vm->mem.regions; r; r = r->next) {
        if (r->mapped && r->priority == priority && gpa < r->gpa + r->size && r->gpa < gpa + region->size) {
            LOG_ERR("'%s' at 0x%llx overlaps '%s' at 0x%llx with the same priority %d", region->name,
                    (unsigned long long)gpa, r->name, (unsigned long long)r->gpa, priority);
            vm_unlock(vm);
            return VERR_OVERLAP;
        }
    }
    region->gpa = gpa;
    region->priority = priority;
    region->seq = ++vm->mem.map_seq;
    region->mapped = true;
    int rc = mem_rebuild(vm);
    vm_unlock(vm);
    return rc;
}

void mem_region_unmap(struct mem_region *region)
{
    if (!region || !region->mapped)
        return;
    vm_lock(region->vm);
    region->mapped = false;
    mem_rebuild(region->vm);
    vm_unlock(region->vm);
}

bool mem_region_is_mapped(const struct mem_region *region)
{
    return region && region->mapped;
}

void mem_region_destroy(struct mem_region *region)
{
    if (!region)
        return;
    struct vm *vm = region->vm;
    mem_region_unmap(region);
    /* Aliases onto this region go with it. */
    for (struct mem_region *r = vm->mem.regions; r;) {
        struct mem_region *next = r->next;
        if (r->kind == MEM_KIND_ALIAS && r->target == region)
            mem_region_destroy(r);
        r = next;
    }
    for (struct mem_region **pp = &vm->mem.regions; *pp; pp = &(*pp)->next) {
        if (*pp == region) {
            *pp = region->next;
            break;
        }
    }
    if (region->hva)
        munmap(region->hva, region->mmap_bytes);
    free(region->dirty);
    free(region->name);
    free(region);
}

void *mem_region_hva(const struct mem_region *region)
{
    if (!region)
        return NULL;
    if (region->kind == MEM_KIND_ALIAS)
        return (uint8_t *)region->target->hva + region->target_offset;
    return region->hva;
}

uint64_t mem_region_size(const struct mem_region *region)
{
    return region->size;
}

enum mem_kind mem_region_kind(const struct mem_region *region)
{
    return region->kind;
}

const char *mem_region_name(const struct mem_region *region)
{
    return region->name;
}

/* The region list is newest first; recursion gives creation order (a VM has a handful of regions). */
static void ram_regions_from(struct mem_region *r, void (*fn)(void *opaque, struct mem_region *region), void *opaque)
{
    if (!r)
        return;
    ram_regions_from(r->next, fn, opaque);
    if (r->kind == MEM_KIND_RAM)
        fn(opaque, r);
}

void mem_for_each_ram_region(struct vm *vm, void (*fn)(void *opaque, struct mem_region *region), void *opaque)
{
    ram_regions_from(vm->mem.regions, fn, opaque);
}

void mem_for_each_span(struct vm *vm, void (*fn)(void *opaque, const struct mem_span *span), void *opaque)
{
    pthread_rwlock_rdlock(&vm->mem.lock);
    for (size_t i = 0; i < vm->mem.span_count; i++)
        fn(opaque, &vm->mem.spans[i]);
    pthread_rwlock_unlock(&vm->mem.lock);
}

/* Copies the span containing gpa into *out; false when gpa is unassigned. Takes the read lock. */
static bool span_lookup(struct vm *vm, uint64_t gpa, struct mem_span *out)
{
    bool found = false;
    pthread_rwlock_rdlock(&vm->mem.lock);
    size_t lo = 0, hi = vm->mem.span_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct mem_span *s = &vm->mem.spans[mid];
        if (gpa < s->gpa)
            hi = mid;
        else if (gpa - s->gpa >= s->size)
            lo = mid + 1;
        else {
            *out = *s;
            found = true;
            break;
        }
    }
    pthread_rwlock_unlock(&vm->mem.lock);
    return found;
}

/* ---- dirty tracking ---- */

/* Turning tracking on starts from a clean bitmap: pages written before then are not reported. */
int mem_region_dirty_enable(struct mem_region *region, bool enable)
{
    if (!region || region->kind != MEM_KIND_RAM || !region->dirty)
        return VERR_INVALID_PARAMETER;
    if (enable && !region->dirty_tracking) {
        size_t words = ((region->size >> MEM_PAGE_SHIFT) + 63) / 64;
        for (size_t i = 0; i < words; i++)
            atomic_store(&region->dirty[i], 0);
    }
    region->dirty_tracking = enable;
    return 0;
}

int mem_region_dirty_fetch(struct mem_region *region, uint64_t *bitmap, size_t words)
{
    if (!region || !region->dirty || !region->dirty_tracking)
        return VERR_INVALID_STATE;
    size_t have = ((region->size >> MEM_PAGE_SHIFT) + 63) / 64;
    if (words < have)
        return VERR_INVALID_PARAMETER;
    for (size_t i = 0; i < have; i++)
        bitmap[i] = atomic_exchange(&region->dirty[i], 0);
    return 0;
}

void mem_region_dirty_mark(struct mem_region *region, uint64_t offset, uint64_t len)
{
    if (!region || !region->dirty || len == 0 || offset >= region->size)
        return;
    uint64_t last = RT_MIN(offset + len - 1, region->size - 1);
    for (uint64_t pg = offset >> MEM_PAGE_SHIFT; pg <= last >> MEM_PAGE_SHIFT; pg++)
        mem_dirty_word_set(&region->dirty[pg / 64], 1ULL << (pg % 64));
}

_Atomic(uint64_t) *mem_region_dirty_word(struct mem_region *region, uint64_t offset, uint64_t *bit)
{
    *bit = 0;
    if (!region || !region->dirty || offset >= region->size)
        return NULL;
    uint64_t pg = offset >> MEM_PAGE_SHIFT;
    *bit = 1ULL << (pg % 64);
    return &region->dirty[pg / 64];
}

int mem_write_watch_add(struct vm *vm, mem_write_watch_fn *fn, void *opaque)
{
    struct mem_watch *w = calloc(1, sizeof(*w));
    if (!w)
        return VERR_NO_MEMORY;
    w->fn = fn;
    w->opaque = opaque;
    vm_lock(vm);
    w->next = vm->mem.watches;
    vm->mem.watches = w;
    vm_unlock(vm);
    return 0;
}

/* ---- accesses ---- */

/* A span of a ROM device in ROM mode: reads come from memory, writes go to the device. */
static inline bool span_is_romd(const struct mem_span *s)
{
    return s->region->kind == MEM_KIND_ROMD;
}

uint64_t mem_mmio_read(struct vm *vm, uint64_t gpa, unsigned size)
{
    struct mem_span s;
    if (size == 0 || size > 8)
        return 0;
    if (!span_lookup(vm, gpa, &s)) {
        LOG_DEBUG("read of unassigned gpa 0x%llx (%u bytes)", (unsigned long long)gpa, size);
        return size == 8 ? UINT64_MAX : (1ULL << (size * 8)) - 1;
    }
    uint64_t avail = s.size - (gpa - s.gpa);
    if (s.kind != MEM_KIND_MMIO) {
        uint64_t v = 0;
        memcpy(&v, (uint8_t *)s.hva + (gpa - s.gpa), RT_MIN(size, avail));
        return v;
    }
    if (avail < size) {
        /* Straddles the end of the region: assemble byte by byte. */
        uint64_t v = 0;
        for (unsigned i = 0; i < size; i++)
            v |= mem_mmio_read(vm, gpa + i, 1) << (8 * i);
        return v;
    }
    struct mem_region *r = s.region;
    vm_lock(vm);
    bool dropped;
    uint64_t v = io_ops_read(r->ops, r->opaque, s.region_offset + (gpa - s.gpa), size, &dropped);
    vm_unlock(vm);
    return v;
}

void mem_mmio_write(struct vm *vm, uint64_t gpa, uint64_t value, unsigned size)
{
    struct mem_span s;
    if (size == 0 || size > 8)
        return;
    if (!span_lookup(vm, gpa, &s)) {
        LOG_DEBUG("write of unassigned gpa 0x%llx (%u bytes)", (unsigned long long)gpa, size);
        return;
    }
    uint64_t avail = s.size - (gpa - s.gpa);
    if (s.kind != MEM_KIND_MMIO && !span_is_romd(&s)) {
        if (!s.readonly)
            mem_write(vm, gpa, &value, size);
        return;
    }
    if (avail < size) {
        for (unsigned i = 0; i < size; i++)
            mem_mmio_write(vm, gpa + i, (value >> (8 * i)) & 0xff, 1);
        return;
    }
    struct mem_region *r = s.region;
    vm_lock(vm);
    uint64_t off = s.region_offset + (gpa - s.gpa);
    if (!io_ops_write(r->ops, r->opaque, off, value, size) && !r->narrow_write_logged) {
        r->narrow_write_logged = true;
        LOG_WARN("'%s': dropped %u-byte write at offset 0x%llx (narrower than the device accepts)", r->name, size,
                 (unsigned long long)off);
    }
    vm_unlock(vm);
}

static void notify_watches(struct vm *vm, uint64_t gpa, uint64_t len)
{
    for (struct mem_watch *w = vm->mem.watches; w; w = w->next)
        w->fn(w->opaque, gpa, len);
}

static int mem_access(struct vm *vm, uint64_t gpa, void *buf, size_t len, bool write)
{
    uint8_t *p = buf;
    if (gpa >= MEM_ADDR_LIMIT || len > MEM_ADDR_LIMIT - gpa)
        return VERR_OUT_OF_RANGE;
    while (len > 0) {
        struct mem_span s;
        if (!span_lookup(vm, gpa, &s)) {
            /* Unassigned: reads give all ones, writes vanish, one byte at a time to the next span. */
            if (!write)
                *p = 0xff;
            p++, gpa++, len--;
            continue;
        }
        uint64_t off = gpa - s.gpa;
        size_t chunk = (size_t)RT_MIN((uint64_t)len, s.size - off);
        if (s.kind == MEM_KIND_MMIO || (write && span_is_romd(&s))) {
            chunk = RT_MIN(chunk, (size_t)8 - (gpa & 7));
            unsigned sz = chunk >= 8 ? 8 : chunk >= 4 ? 4 : chunk >= 2 ? 2 : 1;
            if (gpa & (sz - 1))
                sz = 1;
            chunk = sz;
            if (write) {
                uint64_t v = 0;
                memcpy(&v, p, sz);
                mem_mmio_write(vm, gpa, v, sz);
            } else {
                uint64_t v = mem_mmio_read(vm, gpa, sz);
                memcpy(p, &v, sz);
            }
        } else if (write) {
            if (!s.readonly) {
                memcpy((uint8_t *)s.hva + off, p, chunk);
                mem_region_dirty_mark(s.region, s.region_offset + off, chunk);
                if (vm->mem.watches)
                    notify_watches(vm, gpa, chunk);
            }
        } else {
            memcpy(p, (uint8_t *)s.hva + off, chunk);
        }
        p += chunk;
        gpa += chunk;
        len -= chunk;
    }
    return 0;
}

void mem_notify_written(struct vm *vm, uint64_t gpa, uint64_t len)
{
    while (len > 0) {
        struct mem_span s;
        if (!span_lookup(vm, gpa, &s))
            return;
        uint64_t off = gpa - s.gpa;
        uint64_t chunk = RT_MIN(len, s.size - off);
        if (s.kind != MEM_KIND_MMIO && !s.readonly) {
            mem_region_dirty_mark(s.region, s.region_offset + off, chunk);
            if (vm->mem.watches)
                notify_watches(vm, gpa, chunk);
        }
        gpa += chunk;
        len -= chunk;
    }
}

int mem_read(struct vm *vm, uint64_t gpa, void *buf, size_t len)
{
    return mem_access(vm, gpa, buf, len, false);
}

int mem_write(struct vm *vm, uint64_t gpa, const void *buf, size_t len)
{
    return mem_access(vm, gpa, (void *)buf, len, true);
}

void *mem_gpa_to_hva(struct vm *vm, uint64_t gpa, size_t len, bool write)
{
    struct mem_span s;
    if (!span_lookup(vm, gpa, &s) || s.kind == MEM_KIND_MMIO || (write && s.readonly))
        return NULL;
    if (len > s.size - (gpa - s.gpa))
        return NULL;
    if (write)
        mem_region_dirty_mark(s.region, s.region_offset + (gpa - s.gpa), len);
    return (uint8_t *)s.hva + (gpa - s.gpa);
}
