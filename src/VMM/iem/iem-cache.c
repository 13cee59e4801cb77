/* iem-cache.c - the decoded-block cache: blocks by guest-physical address and mode, code pages, self-modifying-code invalidation. */

/*
 * Design.  Each vCPU keeps its own cache (no locks on the hot path): a hash of blocks
 * keyed by (gpa, decode mode) and a hash of code pages, each with the blocks that
 * cover it and a mask of the 64-byte chunks they cover, so a write next to code (BIOS
 * data beside BIOS code) does not throw the code away.  The TLB makes write entries of
 * code pages slow, and the slow path calls iem_cache_invalidate.  Writes from other
 * threads (device DMA through mem_write, other vCPUs) cannot touch a vCPU's cache:
 * they queue the range with iem_cache_post and the vCPU applies it at its next block
 * boundary (and so before it takes an interrupt or runs past a serialising instruction,
 * which end blocks).  A per-VM filter of pages that may hold code on some vCPU makes the
 * TLB of every vCPU map those pages slow for writes, and lets DMA into data pages skip
 * the queues; a per-vCPU filter of the pages it decoded from, set before it reads the
 * bytes, sends each write only to the vCPUs that may have decoded it.
 *
 * When a page first becomes code anywhere, the other vCPUs may still hold direct write
 * entries for it.  They are told through their protect[] queue and drop those entries at
 * their next block boundary; one that finds such an entry may have written the page
 * directly in the meantime, so it then queues an invalidation of the whole page for the
 * others.  So a vCPU may run a stale decode of code another vCPU modified only for that
 * short while, never longer.
 *
 * Invalidated blocks are unlinked at once but freed only at a block boundary, because the
 * block that is executing may be the one a write drops; then cpu->block_dirty stops it
 * after the current instruction.
 */
#include <stdlib.h>
#include <string.h>

#include "iem-core.h"

#define LOG_COMPONENT "iem"

static inline unsigned block_hash(uint64_t gpa, uint8_t zmode)
{
    uint64_t h = (gpa ^ ((uint64_t)zmode << 40)) * 0x9e3779b97f4a7c15ull;
    return (unsigned)(h >> (64 - IEM_BLOCK_HASH_BITS));
}

static inline unsigned page_hash(uint64_t page)
{
    return (unsigned)((page * 0x9e3779b97f4a7c15ull) >> 52) & (IEM_PAGE_HASH - 1);
}

static struct iem_code_page *page_find(struct iem_core *core, uint64_t page);

static inline unsigned filter_bit(uint64_t page)
{
    return (unsigned)((page * 0xff51afd7ed558ccdull) >> 48) & (IEM_FILTER_BITS - 1);
}

bool iem_filter_test(struct iem_vm *ivm, uint64_t page)
{
    unsigned b = filter_bit(page);
    return (atomic_load_explicit(&ivm->filter[b / 64], memory_order_relaxed) >> (b % 64)) & 1;
}

bool iem_filter_set(struct iem_vm *ivm, uint64_t page)
{
    unsigned b = filter_bit(page);
    if ((atomic_load_explicit(&ivm->filter[b / 64], memory_order_relaxed) >> (b % 64)) & 1)
        return false;
    return !((atomic_fetch_or(&ivm->filter[b / 64], 1ull << (b % 64)) >> (b % 64)) & 1);
}

static bool core_filter_test(struct iem_core *core, uint64_t page)
{
    unsigned b = filter_bit(page);
    return (atomic_load_explicit(&core->code_filter[b / 64], memory_order_relaxed) >> (b % 64)) & 1;
}

void iem_cache_note_code(struct iem_core *core, uint64_t page)
{
    /* A locked OR (a full barrier) before the first read of the page's bytes; later reads need none. */
    if (!core_filter_test(core, page)) {
        unsigned b = filter_bit(page);
        atomic_fetch_or(&core->code_filter[b / 64], 1ull << (b % 64));
    }
}

/* Whether [gpa, gpa+len) touches a page core may have decoded code from. */
static bool core_filter_hit(struct iem_core *core, uint64_t gpa, uint64_t len)
{
    for (uint64_t page = gpa >> 12; page <= (gpa + len - 1) >> 12; page++)
        if (core_filter_test(core, page))
            return true;
    return false;
}

/* Tells every vCPU but from that page now holds code (from's TLB already maps it slow for writes). */
static void protect_post(struct iem_vm *ivm, uint64_t page, struct iem_core *from)
{
    rt_mutex_lock(&ivm->lock);
    for (unsigned i = 0; i < ivm->ncores; i++) {
        struct iem_core *c = ivm->cores[i];
        if (c == from)
            continue;
        rt_mutex_lock(&c->qlock);
        if (c->nprotect < IEM_PROTECT_MAX) {
            c->protect[c->nprotect++] = page;
            atomic_fetch_or(&c->work, IEM_WORK_PROTECT);
        } else {
            atomic_fetch_or(&c->work, IEM_WORK_TLB);
        }
        rt_mutex_unlock(&c->qlock);
    }
    rt_mutex_unlock(&ivm->lock);
}

bool iem_cache_write_is_slow(struct iem_core *core, uint64_t gpa)
{
    if (page_find(core, gpa >> 12))
        return true;
    /* With several vCPUs a page holding another vCPU's code must reach iem_cache_post too. */
    return core->ivm->ncores > 1 && iem_filter_test(core->ivm, gpa >> 12);
}

void iem_cache_init(struct iem_core *core)
{
    memset(core->bhash, 0, sizeof(core->bhash));
    memset(core->phash, 0, sizeof(core->phash));
    core->dead = NULL;
    core->cache_bytes = 0;
}

struct iem_block *iem_block_alloc(unsigned ninsns)
{
    struct iem_block *b = calloc(1, sizeof(*b) + ninsns * sizeof(struct iem_insn));
    if (b)
        b->gpa2 = IEM_NOGPA;
    return b;
}

static size_t block_bytes(const struct iem_block *b)
{
    return sizeof(*b) + b->ninsns * sizeof(struct iem_insn);
}

struct iem_block *iem_cache_find(struct iem_core *core, uint64_t gpa, uint8_t zmode)
{
    for (struct iem_block *b = core->bhash[block_hash(gpa, zmode)]; b; b = b->hnext)
        if (b->gpa == gpa && b->zmode == zmode)
            return b;
    return NULL;
}

static struct iem_code_page *page_find(struct iem_core *core, uint64_t page)
{
    for (struct iem_code_page *p = core->phash[page_hash(page)]; p; p = p->next)
        if (p->page == page)
            return p;
    return NULL;
}

bool iem_cache_is_code_page(struct iem_core *core, uint64_t gpa)
{
    return page_find(core, gpa >> 12) != NULL;
}

/* Which of the block's page lists (0 or 1) belongs to page. */
static inline int block_slot(const struct iem_block *b, uint64_t page)
{
    return (b->gpa >> 12) == page ? 0 : 1;
}

/* The chunk mask a block covers on page. */
static uint64_t block_chunks(const struct iem_block *b, uint64_t page)
{
    uint64_t start, end; /* byte offsets within the page, end exclusive */
    if ((b->gpa >> 12) == page) {
        start = b->gpa & 0xfff;
        end = RT_MIN(start + b->nbytes, (uint64_t)IEM_PAGE_SIZE);
    } else {
        start = 0;
        end = (b->gpa & 0xfff) + b->nbytes - IEM_PAGE_SIZE;
    }
    if (end <= start)
        return 0;
    unsigned c0 = (unsigned)(start >> 6), c1 = (unsigned)((end - 1) >> 6);
    uint64_t hi = c1 >= 63 ? ~0ull : ((1ull << (c1 + 1)) - 1);
    return hi & ~((1ull << c0) - 1);
}

static bool page_add_block(struct iem_core *core, uint64_t page, struct iem_block *b)
{
    struct iem_code_page *p = page_find(core, page);
    if (!p) {
        p = calloc(1, sizeof(*p));
        if (!p)
            return false;
        p->page = page;
        unsigned h = page_hash(page);
        p->next = core->phash[h];
        core->phash[h] = p;
        /* The page now holds code: writes through the TLB must take the slow path, on every vCPU. */
        iem_tlb_protect_page(core, page << 12);
        if (iem_filter_set(core->ivm, page) && core->ivm->ncores > 1)
            protect_post(core->ivm, page, core);
    }
    b->pnext[block_slot(b, page)] = p->blocks;
    p->blocks = b;
    p->chunks |= block_chunks(b, page);
    return true;
}

static void page_remove_block(struct iem_core *core, uint64_t page, struct iem_block *b)
{
    unsigned h = page_hash(page);
    struct iem_code_page **pp = &core->phash[h], *p;
    while ((p = *pp) && p->page != page)
        pp = &p->next;
    if (!p)
        return;
    struct iem_block **link = &p->blocks;
    while (*link && *link != b)
        link = &(*link)->pnext[block_slot(*link, page)];
    if (*link)
        *link = b->pnext[block_slot(b, page)];
    if (!p->blocks) {
        *pp = p->next;
        free(p);
        return;
    }
    p->chunks = 0;
    for (struct iem_block *o = p->blocks; o; o = o->pnext[block_slot(o, page)])
        p->chunks |= block_chunks(o, page);
}

/* Unlinks a block from every structure and queues it for freeing. */
static void block_kill(struct iem_core *core, struct iem_block *b)
{
    if (b->dead)
        return;
    struct iem_block **link = &core->bhash[block_hash(b->gpa, b->zmode)];
    while (*link && *link != b)
        link = &(*link)->hnext;
    if (*link)
        *link = b->hnext;
    page_remove_block(core, b->gpa >> 12, b);
    if (b->gpa2 != IEM_NOGPA)
        page_remove_block(core, b->gpa2 >> 12, b);
    b->dead = true;
    iem_chain_bump(core);
    core->cache_bytes -= RT_MIN(core->cache_bytes, block_bytes(b));
    b->hnext = core->dead;
    core->dead = b;
    if (core->cpu.cur_block == b)
        core->cpu.block_dirty = true;
}

void iem_cache_free_dead(struct iem_core *core)
{
    while (core->dead) {
        struct iem_block *b = core->dead;
        core->dead = b->hnext;
        free(b);
    }
}

void iem_cache_flush_all(struct iem_core *core)
{
    for (unsigned i = 0; i < IEM_BLOCK_HASH; i++) {
        while (core->bhash[i])
            block_kill(core, core->bhash[i]);
    }
    for (unsigned i = 0; i < IEM_PAGE_HASH; i++) {
        while (core->phash[i]) {
            struct iem_code_page *p = core->phash[i];
            core->phash[i] = p->next;
            free(p);
        }
    }
    core->cache_bytes = 0;
}

void iem_cache_insert(struct iem_core *core, struct iem_block *b)
{
    if (core->cache_bytes + block_bytes(b) > IEM_CACHE_MAX_BYTES) {
        LOG_DEBUG("vCPU %u: decoded-block cache full, flushing", core->index);
        iem_cache_flush_all(core);
    }
    unsigned h = block_hash(b->gpa, b->zmode);
    b->hnext = core->bhash[h];
    core->bhash[h] = b;
    b->cached = true;
    core->cache_bytes += block_bytes(b);
    bool ok = page_add_block(core, b->gpa >> 12, b);
    if (ok && b->gpa2 != IEM_NOGPA)
        ok = page_add_block(core, b->gpa2 >> 12, b);
    if (!ok) {
        /* Out of memory for the page record: a block nobody could invalidate must not stay. */
        block_kill(core, b);
    }
}

bool iem_cache_invalidate(struct iem_core *core, uint64_t gpa, uint64_t len)
{
    if (len == 0)
        return false;
    bool dropped = false;
    uint64_t end = gpa + len; /* exclusive */
    for (uint64_t page = gpa >> 12; page <= (end - 1) >> 12; page++) {
        struct iem_code_page *p = page_find(core, page);
        if (!p)
            continue;
        uint64_t s = page == (gpa >> 12) ? (gpa & 0xfff) : 0;
        uint64_t e = page == ((end - 1) >> 12) ? ((end - 1) & 0xfff) : 0xfff;
        unsigned c0 = (unsigned)(s >> 6), c1 = (unsigned)(e >> 6);
        uint64_t mask = (c1 >= 63 ? ~0ull : ((1ull << (c1 + 1)) - 1)) & ~((1ull << c0) - 1);
        if (!(p->chunks & mask))
            continue;
        /* Kill each block overlapping [s, e] on this page; block_kill may free p, so restart each time. */
        bool again = true;
        while (again) {
            again = false;
            p = page_find(core, page);
            if (!p)
                break;
            for (struct iem_block *b = p->blocks; b; b = b->pnext[block_slot(b, page)]) {
                uint64_t bs, be; /* the block's bytes on this page, inclusive */
                if ((b->gpa >> 12) == page) {
                    bs = b->gpa & 0xfff;
                    be = RT_MIN(bs + b->nbytes, (uint64_t)IEM_PAGE_SIZE) - 1;
                } else {
                    bs = 0;
                    be = (b->gpa & 0xfff) + b->nbytes - IEM_PAGE_SIZE - 1;
                }
                if (bs <= e && s <= be) {
                    block_kill(core, b);
                    dropped = true;
                    again = true;
                    break;
                }
            }
        }
    }
    return dropped;
}

void iem_cache_post(struct iem_vm *ivm, uint64_t gpa, uint64_t len, struct iem_core *skip)
{
    if (len == 0)
        return;
    /*
     * The write is done; the filters are read after it (a full barrier: the store must not
     * pass the loads).  A vCPU whose filter is still clear here reads the bytes after its
     * filter is set, so it decodes the new ones (iem_cache_note_code).
     */
    atomic_thread_fence(memory_order_seq_cst);
    rt_mutex_lock(&ivm->lock);
    for (unsigned i = 0; i < ivm->ncores; i++) {
        struct iem_core *c = ivm->cores[i];
        if (!c || c == skip || !core_filter_hit(c, gpa, len))
            continue;
        rt_mutex_lock(&c->qlock);
        if (c->npending < IEM_PENDING_MAX) {
            c->pending[c->npending].gpa = gpa;
            c->pending[c->npending].len = len;
            c->npending++;
            atomic_fetch_or(&c->work, IEM_WORK_INVAL);
        } else {
            atomic_fetch_or(&c->work, IEM_WORK_FLUSH_ALL);
        }
        rt_mutex_unlock(&c->qlock);
    }
    rt_mutex_unlock(&ivm->lock);
}

void iem_cache_write_watch(void *opaque, uint64_t gpa, uint64_t len)
{
    struct iem_vm *ivm = opaque;
    if (len == 0)
        return;
    uint64_t first = gpa >> 12, last = (gpa + len - 1) >> 12;
    for (uint64_t page = first; page <= last; page++) {
        if (iem_filter_test(ivm, page)) {
            iem_cache_post(ivm, gpa, len, NULL);
            return;
        }
    }
}

/* Drops the write entries that map page (gpa >> 12); true when one of them had a host mapping. */
static bool protect_page_direct(struct iem_core *core, uint64_t page)
{
    bool direct = false;
    for (int i = 0; i < IEM_TLB_ENTRIES; i++) {
        const struct iem_tlb_entry *e = &core->cpu.tlb[IEM_ACC_WRITE][i];
        if ((e->tag & (IEM_TLB_VALID | IEM_TLB_DIRECT)) == (IEM_TLB_VALID | IEM_TLB_DIRECT) &&
            (e->gpa >> 12) == page)
            direct = true;
    }
    iem_tlb_protect_page(core, page << 12);
    return direct;
}

/*
 * Before the whole TLB goes (the protect queue overflowed): every page a direct write entry
 * maps that may hold code elsewhere by now may have been written without telling the others.
 */
static void post_direct_code_writes(struct iem_core *core)
{
    for (int i = 0; i < IEM_TLB_ENTRIES; i++) {
        const struct iem_tlb_entry *e = &core->cpu.tlb[IEM_ACC_WRITE][i];
        uint64_t page = e->gpa >> 12;
        if ((e->tag & (IEM_TLB_VALID | IEM_TLB_DIRECT)) == (IEM_TLB_VALID | IEM_TLB_DIRECT) &&
            iem_filter_test(core->ivm, page))
            iem_cache_post(core->ivm, page << 12, IEM_PAGE_SIZE, core);
    }
}

void iem_cache_do_work(struct iem_core *core)
{
    unsigned work = atomic_exchange(&core->work, 0);
    if (!work)
        return;
    if (work & (IEM_WORK_PROTECT | IEM_WORK_TLB | IEM_WORK_FLUSH_ALL)) {
        uint64_t pages[IEM_PROTECT_MAX];
        rt_mutex_lock(&core->qlock);
        unsigned n = core->nprotect;
        memcpy(pages, core->protect, n * sizeof(pages[0]));
        core->nprotect = 0;
        rt_mutex_unlock(&core->qlock);
        if (work & IEM_WORK_TLB) {
            post_direct_code_writes(core);
        } else {
            for (unsigned i = 0; i < n; i++)
                if (protect_page_direct(core, pages[i]))
                    iem_cache_post(core->ivm, pages[i] << 12, IEM_PAGE_SIZE, core);
        }
    }
    if (work & (IEM_WORK_FLUSH_ALL | IEM_WORK_TLB))
        iem_tlb_flush(&core->cpu, true);
    if (work & IEM_WORK_FLUSH_ALL) {
        iem_cache_flush_all(core);
        rt_mutex_lock(&core->qlock);
        core->npending = 0;
        rt_mutex_unlock(&core->qlock);
        return;
    }
    if (work & IEM_WORK_INVAL) {
        for (;;) {
            uint64_t gpa = 0, len = 0;
            rt_mutex_lock(&core->qlock);
            bool have = core->npending > 0;
            if (have) {
                core->npending--;
                gpa = core->pending[core->npending].gpa;
                len = core->pending[core->npending].len;
            }
            rt_mutex_unlock(&core->qlock);
            if (!have)
                break;
            iem_cache_invalidate(core, gpa, len);
        }
    }
}

void iem_cache_fini(struct iem_core *core)
{
    iem_cache_flush_all(core);
    iem_cache_free_dead(core);
}
