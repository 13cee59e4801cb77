/* iem-mem.c - the interpreter's memory path: segmentation checks, the page walker, the software TLB and guest-physical accesses. */

/*
 * Design.  A guest access goes segment check (per mode, SDM vol. 3A 3.4/5.3) -> linear
 * address -> TLB -> host pointer.  The TLB is direct mapped per access kind (read,
 * write, execute); a tag is the linear page plus IEM_TLB_VALID plus IEM_TLB_USER_OK when
 * the translation also allows the access at CPL 3, so supervisor and user code share
 * entries and a privilege change needs no flush.  A miss walks the guest's page tables
 * (32-bit with PSE/PSE-36, PAE, 4-level; SDM vol. 3A ch. 4), checks reserved bits and
 * access rights, sets accessed/dirty bits with atomic ORs in guest RAM, and fills the
 * entry.  Entries whose hva is NULL take the slow path: MMIO, ROM writes, unassigned
 * memory, and writes to RAM pages that hold decoded code (the slow path drops the
 * code before writing: self-modifying code).  Accesses that cross a page translate
 * both pages before any byte moves.  Guest-physical lookups use a private copy of the
 * flat map (rebuilt on mem_changed) so the region of a page is known for dirty marking.
 */
#include <stdlib.h>
#include <string.h>

#include "iem-core.h"
#include "iem-dbg.h"

#define LOG_COMPONENT "iem"

/* Page-table entry bits (SDM vol. 3A 4.3-4.5). */
#define PTE_P   0x001u
#define PTE_RW  0x002u
#define PTE_US  0x004u
#define PTE_A   0x020u
#define PTE_D   0x040u
#define PTE_PS  0x080u
#define PTE_G   0x100u
#define PTE_XD  (1ull << 63)

/* #PF error code bits (SDM vol. 3A 4.7). */
#define PFEC_P    0x01u
#define PFEC_W    0x02u
#define PFEC_U    0x04u
#define PFEC_RSVD 0x08u
#define PFEC_I    0x10u

/* ---- guest-physical map copy ------------------------------------------------------ */

struct snap_build {
    struct iem_phys_span *spans;
    size_t n, cap;
    bool failed;
};

static void snap_collect(void *opaque, const struct mem_span *span)
{
    struct snap_build *b = opaque;
    if (b->failed)
        return;
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 32;
        struct iem_phys_span *p = realloc(b->spans, cap * sizeof(*p));
        if (!p) {
            b->failed = true;
            return;
        }
        b->spans = p;
        b->cap = cap;
    }
    struct iem_phys_span *d = &b->spans[b->n++];
    d->gpa = span->gpa;
    d->size = span->size;
    d->kind = span->kind;
    d->readonly = span->readonly || span->kind == MEM_KIND_ROM;
    d->hva = span->hva;
    d->region = span->region;
    d->region_offset = span->region_offset;
}

int iem_phys_snapshot(struct iem_vm *ivm)
{
    struct snap_build b = { 0 };
    mem_for_each_span(ivm->vm, snap_collect, &b);
    if (b.failed) {
        free(b.spans);
        return VERR_NO_MEMORY;
    }
    pthread_rwlock_wrlock(&ivm->snap_lock);
    struct iem_phys_span *old = ivm->spans;
    ivm->spans = b.spans;
    ivm->nspans = b.n;
    atomic_fetch_add(&ivm->snap_gen, 1);
    pthread_rwlock_unlock(&ivm->snap_lock);
    free(old);
    return 0;
}

bool iem_phys_lookup(struct iem_vm *ivm, uint64_t gpa, struct iem_phys_span *out)
{
    bool found = false;
    pthread_rwlock_rdlock(&ivm->snap_lock);
    size_t lo = 0, hi = ivm->nspans;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct iem_phys_span *s = &ivm->spans[mid];
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
    pthread_rwlock_unlock(&ivm->snap_lock);
    return found;
}

/*
 * iem_phys_lookup through the vCPU's last answer, without the lock: page walks and TLB
 * fills mostly stay in one span.  A copy taken just before the map changes is as stale
 * as the TLB entries filled from it, and both go at the next block boundary (the core's
 * IEM_WORK_FLUSH_ALL).
 */
static bool core_phys_lookup(struct iem_core *core, uint64_t gpa, struct iem_phys_span *out)
{
    uint64_t gen = atomic_load_explicit(&core->ivm->snap_gen, memory_order_acquire);
    const struct iem_phys_span *c = &core->span_cache;
    if (core->span_gen == gen && gpa - c->gpa < c->size) {
        *out = *c;
        return true;
    }
    if (!iem_phys_lookup(core->ivm, gpa, out))
        return false;
    core->span_cache = *out;
    core->span_gen = gen;
    return true;
}

/* Host pointer to a whole 4 KiB guest page of RAM/ROM, or NULL. */
static uint8_t *phys_page_hva(struct iem_core *core, uint64_t page_gpa, struct iem_phys_span *span)
{
    if (!core_phys_lookup(core, page_gpa, span) || span->kind == MEM_KIND_MMIO || !span->hva)
        return NULL;
    if (span->size - (page_gpa - span->gpa) < IEM_PAGE_SIZE)
        return NULL;
    return span->hva + (page_gpa - span->gpa);
}

uint64_t iem_phys_read(struct iem_core *core, uint64_t gpa, unsigned size)
{
    struct iem_phys_span sp;
    if (core_phys_lookup(core, gpa, &sp) && sp.kind != MEM_KIND_MMIO && sp.hva && sp.size - (gpa - sp.gpa) >= size) {
        const uint8_t *p = sp.hva + (gpa - sp.gpa);
        if (size == 8 && !(gpa & 7))
            return __atomic_load_n((const uint64_t *)p, __ATOMIC_RELAXED);
        if (size == 4 && !(gpa & 3))
            return __atomic_load_n((const uint32_t *)p, __ATOMIC_RELAXED);
        uint64_t v = 0;
        memcpy(&v, p, size);
        return v;
    }
    return mem_mmio_read(core->cpu.vm, gpa, size);
}

void iem_phys_write(struct iem_core *core, uint64_t gpa, unsigned size, uint64_t value)
{
    struct iem_phys_span sp;
    if (core_phys_lookup(core, gpa, &sp) && sp.kind == MEM_KIND_RAM && !sp.readonly && sp.hva &&
        sp.size - (gpa - sp.gpa) >= size) {
        memcpy(sp.hva + (gpa - sp.gpa), &value, size);
        mem_region_dirty_mark(sp.region, sp.region_offset + (gpa - sp.gpa), size);
        /* Other vCPUs hear of the write through their queues; this one drops its blocks now. */
        iem_cache_invalidate(core, gpa, size);
        if (core->ivm->ncores > 1)
            iem_cache_post(core->ivm, gpa, size, core);
        return;
    }
    mem_mmio_write(core->cpu.vm, gpa, value, size);
}

/* Sets bits in a paging-structure entry with a locked OR, as the processor's A/D updates are (SDM vol. 3A 4.8). */
static void phys_entry_or(struct iem_core *core, uint64_t gpa, unsigned size, uint64_t bits)
{
    struct iem_phys_span sp;
    if (core_phys_lookup(core, gpa, &sp) && sp.kind == MEM_KIND_RAM && sp.hva && sp.size - (gpa - sp.gpa) >= size) {
        if (sp.readonly)
            return;
        uint8_t *p = sp.hva + (gpa - sp.gpa);
        if (size == 8)
            __atomic_fetch_or((uint64_t *)p, bits, __ATOMIC_SEQ_CST);
        else
            __atomic_fetch_or((uint32_t *)p, (uint32_t)bits, __ATOMIC_SEQ_CST);
        mem_region_dirty_mark(sp.region, sp.region_offset + (gpa - sp.gpa), size);
        /* Other vCPUs hear of the write through their queues; this one drops its blocks now. */
        iem_cache_invalidate(core, gpa, size);
        if (core->ivm->ncores > 1)
            iem_cache_post(core->ivm, gpa, size, core);
        return;
    }
    uint64_t v = mem_mmio_read(core->cpu.vm, gpa, size);
    mem_mmio_write(core->cpu.vm, gpa, v | bits, size);
}

/* ---- page walker ------------------------------------------------------------------ */

struct walk_result {
    uint64_t gpa_page;
    bool user_ok;    /* a CPL 3 access of this kind would be allowed too */
    unsigned flags;  /* IEM_TLBF_* */
};

_Noreturn static void page_fault(struct iem_cpu *cpu, uint64_t lin, uint32_t err)
{
    cpu->fault_cr2 = lin;
    iem_raise_err(cpu, IEM_X_PF, err);
}

static void walk(struct iem_core *core, uint64_t lin, int kind, bool user, struct walk_result *wr)
{
    struct iem_cpu *cpu = &core->cpu;
    const struct cpu_state *s = cpu->s;
    bool write = kind == IEM_ACC_WRITE, exec = kind == IEM_ACC_EXEC;
    /* With the A20 gate off, physical address bit 20 reads as 0 for every CPU access, paging-structure reads included. */
    uint64_t a20 = core->a20_mask;
    wr->flags = 0;
    if (!(s->cr0 & IEM_CR0_PG)) {
        wr->gpa_page = lin & ~(uint64_t)0xfff & a20;
        wr->user_ok = true;
        return;
    }
    bool pae = (s->cr4 & IEM_CR4_PAE) != 0;
    bool nxe = pae && (s->efer & IEM_EFER_NXE);
    uint32_t err = (write ? PFEC_W : 0) | (user ? PFEC_U : 0) | (exec && nxe ? PFEC_I : 0);
    bool pge = (s->cr4 & IEM_CR4_PGE) != 0;
    uint64_t ent_gpa[4], ent_val[4];
    unsigned nent = 0, ent_size = pae ? 8 : 4;
    bool rw = true, us = true, xd = false;
    uint64_t leaf, gpa;

    if (!pae) {
        /* 32-bit paging (SDM vol. 3A 4.3). */
        uint64_t pde_gpa = ((s->cr3 & 0xfffff000u) | ((lin >> 20) & 0xffc)) & a20;
        uint64_t pde = iem_phys_read(core, pde_gpa, 4);
        if (!(pde & PTE_P))
            page_fault(cpu, lin, err);
        ent_gpa[nent] = pde_gpa, ent_val[nent++] = pde;
        rw &= (pde & PTE_RW) != 0;
        us &= (pde & PTE_US) != 0;
        if ((pde & PTE_PS) && (s->cr4 & IEM_CR4_PSE)) {
            /* 4 MiB page; with PSE-36 bits 20:13 hold physical bits 39:32 and bit 21 is reserved (Table 4-4). */
            if (pde & (1u << 21))
                page_fault(cpu, lin, err | PFEC_P | PFEC_RSVD);
            gpa = (pde & 0xffc00000u) | ((pde & 0x1fe000u) << 19);
            gpa += lin & 0x3ff000u;
            wr->flags |= IEM_TLBF_LARGE | IEM_TLBF_LARGE4M;
        } else {
            uint64_t pte_gpa = ((pde & 0xfffff000u) | ((lin >> 10) & 0xffc)) & a20;
            uint64_t pte = iem_phys_read(core, pte_gpa, 4);
            if (!(pte & PTE_P))
                page_fault(cpu, lin, err);
            ent_gpa[nent] = pte_gpa, ent_val[nent++] = pte;
            rw &= (pte & PTE_RW) != 0;
            us &= (pte & PTE_US) != 0;
            gpa = pte & 0xfffff000u;
        }
    } else {
        uint64_t rsvd_hi;
        uint64_t table;
        int level;
        if (s->efer & IEM_EFER_LMA) {
            /* 4-level paging (SDM vol. 3A 4.5): bits 51:M reserved, XD reserved without NXE. */
            rsvd_hi = (((uint64_t)1 << 52) - 1) & ~IEM_PHYS_MASK;
            if (!nxe)
                rsvd_hi |= PTE_XD;
            table = s->cr3 & IEM_PHYS_MASK & ~(uint64_t)0xfff;
            level = 4;
        } else {
            /* PAE paging (SDM vol. 3A 4.4): bits 62:M reserved in every entry. */
            rsvd_hi = (PTE_XD - 1) & ~IEM_PHYS_MASK;
            if (!nxe)
                rsvd_hi |= PTE_XD;
            uint64_t pdpte_gpa = ((s->cr3 & 0xffffffe0u) | ((lin >> 27) & 0x18)) & a20;
            uint64_t pdpte = iem_phys_read(core, pdpte_gpa, 8);
            if (!(pdpte & PTE_P))
                page_fault(cpu, lin, err);
            /* PDPTE bits 2:1, 8:5 and 63:M are reserved (Table 4-8). */
            if (pdpte & (0x1e6u | PTE_XD | ((PTE_XD - 1) & ~IEM_PHYS_MASK)))
                page_fault(cpu, lin, err | PFEC_P | PFEC_RSVD);
            table = pdpte & IEM_PHYS_MASK & ~(uint64_t)0xfff;
            level = 2;
        }
        for (;;) {
            unsigned shift = 12 + 9 * (level - 1);
            uint64_t e_gpa = (table + (((lin >> shift) & 0x1ff) << 3)) & a20;
            uint64_t e = iem_phys_read(core, e_gpa, 8);
            if (!(e & PTE_P))
                page_fault(cpu, lin, err);
            uint64_t rsvd = rsvd_hi;
            if (level == 4)
                rsvd |= PTE_PS; /* PML4E bit 7 */
            else if (level == 3 && (e & PTE_PS))
                rsvd |= PTE_PS; /* 1 GiB pages are not advertised (CPUID.80000001H:EDX.Page1GB = 0) */
            else if (level == 2 && (e & PTE_PS))
                rsvd |= 0x1fe000u; /* 2 MiB page: bits 20:13 */
            if (e & rsvd)
                page_fault(cpu, lin, err | PFEC_P | PFEC_RSVD);
            ent_gpa[nent] = e_gpa, ent_val[nent++] = e;
            rw &= (e & PTE_RW) != 0;
            us &= (e & PTE_US) != 0;
            xd |= nxe && (e & PTE_XD);
            if (level == 1) {
                gpa = e & IEM_PHYS_MASK & ~(uint64_t)0xfff;
                break;
            }
            if (level == 2 && (e & PTE_PS)) {
                gpa = (e & IEM_PHYS_MASK & ~(uint64_t)0x1fffff) + (lin & 0x1ff000);
                wr->flags |= IEM_TLBF_LARGE;
                break;
            }
            table = e & IEM_PHYS_MASK & ~(uint64_t)0xfff;
            level--;
        }
    }
    leaf = ent_val[nent - 1];

    /* Access rights (SDM vol. 3A 4.6): no SMEP/SMAP, so supervisor reads and fetches need no U/S check. */
    if (user && (!us || (write && !rw)))
        page_fault(cpu, lin, err | PFEC_P);
    if (!user && write && !rw && (s->cr0 & IEM_CR0_WP))
        page_fault(cpu, lin, err | PFEC_P);
    if (exec && xd)
        page_fault(cpu, lin, err | PFEC_P);

    /* Accessed flags on every entry used, dirty on the leaf for writes; PAE PDPTEs have neither. */
    for (unsigned i = 0; i < nent; i++) {
        uint64_t bits = PTE_A;
        if (i == nent - 1 && write)
            bits |= PTE_D;
        if ((ent_val[i] & bits) != bits)
            phys_entry_or(core, ent_gpa[i], ent_size, bits);
    }
    wr->gpa_page = gpa & ~(uint64_t)0xfff & a20;
    wr->user_ok = us && (!write || rw) && !(exec && xd);
    if (pge && (leaf & PTE_G))
        wr->flags |= IEM_TLBF_GLOBAL;
}

/* ---- TLB -------------------------------------------------------------------------- */

/*
 * Linear addresses are 64-bit whenever IA-32e mode is active (EFER.LMA), compatibility
 * mode included: the IDT, GDT and TSS of a 64-bit kernel may sit above 4 GiB while a
 * 32-bit process runs.  Segmented accesses in compatibility mode already wrap at 32 bits
 * in seg_linear.
 */
static inline uint64_t lin_mask(const struct iem_cpu *cpu, uint64_t lin)
{
    return (cpu->s->efer & IEM_EFER_LMA) ? lin : (uint32_t)lin;
}

/*
 * The bit of tlb_large_frames for the 4 MiB-aligned linear frame of lin: a 2 MiB page lies
 * within one such frame too.  Bits are set when a large page's piece is filled and cleared
 * only with the whole set, so a set bit may be stale (a scan for nothing), a clear one never.
 */
static inline unsigned large_frame_bit(uint64_t lin)
{
    return (unsigned)(((lin >> 22) * 0x9e3779b97f4a7c15ull) >> 54) & (IEM_TLB_LARGE_FRAME_BITS - 1);
}

static inline void large_frame_note(struct iem_core *core, uint64_t lin)
{
    unsigned bit = large_frame_bit(lin);
    core->tlb_large_frames[bit / 64] |= (uint64_t)1 << (bit % 64);
}

static struct iem_tlb_entry *tlb_fill(struct iem_core *core, uint64_t lin, int kind, bool user)
{
    struct iem_cpu *cpu = &core->cpu;
    struct walk_result wr;
    walk(core, lin, kind, user, &wr);
    unsigned idx = (lin >> 12) & (IEM_TLB_ENTRIES - 1);
    struct iem_tlb_entry *e = &cpu->tlb[kind][idx];
    struct iem_phys_span sp;
    uint8_t *hva = phys_page_hva(core, wr.gpa_page, &sp);
    if (kind == IEM_ACC_WRITE) {
        struct iem_tlb_wside *side = &core->wside[idx];
        if (hva && sp.kind == MEM_KIND_RAM && !sp.readonly) {
            side->hva = hva;
            side->dirty_word = mem_region_dirty_word(sp.region, sp.region_offset + (wr.gpa_page - sp.gpa),
                                                     &side->dirty_bit);
            if (iem_cache_write_is_slow(core, wr.gpa_page))
                hva = NULL;
        } else {
            side->hva = NULL;
            side->dirty_word = NULL;
            hva = NULL;
        }
    }
    /* Data breakpoints: every access to a watched page takes the slow path, which checks them (iem-dbg.c). */
    if (__builtin_expect(core->dbg_data_mask != 0, 0) && kind != IEM_ACC_EXEC &&
        iem_dbg_page_watched(core, lin & ~(uint64_t)0xfff, kind))
        hva = NULL;
    e->gpa = wr.gpa_page | wr.flags;
    e->tag = (lin & ~(uint64_t)0xfff) | IEM_TLB_VALID | (wr.user_ok ? IEM_TLB_USER_OK : 0);
    iem_tlb_set_hva(e, hva);
    if (wr.flags & IEM_TLBF_GLOBAL) {
        core->tlb_global_count++;
        core->tlb_local_slots[kind][idx / 64] &= ~((uint64_t)1 << (idx % 64));
    } else {
        core->tlb_local_slots[kind][idx / 64] |= (uint64_t)1 << (idx % 64);
    }
    if (wr.flags & IEM_TLBF_LARGE) {
        core->tlb_large_count++;
        core->tlb_large_slots[idx / 64] |= (uint64_t)1 << (idx % 64);
        large_frame_note(core, lin);
    }
    return e;
}

static inline struct iem_tlb_entry *tlb_get(struct iem_core *core, uint64_t lin, int kind, bool user)
{
    struct iem_tlb_entry *e = &core->cpu.tlb[kind][(lin >> 12) & (IEM_TLB_ENTRIES - 1)];
    uint64_t want = (lin & ~(uint64_t)0xfff) | IEM_TLB_HIT_BITS;
    if (__builtin_expect((e->tag | (user ? 0 : IEM_TLB_USER_OK) | IEM_TLB_DIRECT) != want, 0))
        e = tlb_fill(core, lin, kind, user);
    return e;
}

struct iem_tlb_entry *iem_tlb_exec(struct iem_core *core, uint64_t linear)
{
    return tlb_get(core, linear, IEM_ACC_EXEC, core->cpu.cpl == 3);
}

uint64_t iem_core_lin_to_gpa(struct iem_cpu *cpu, uint64_t linear, int kind, unsigned flags)
{
    linear = lin_mask(cpu, linear);
    struct iem_tlb_entry *e = tlb_get(iem_core_of(cpu), linear, kind, iem_is_user(cpu, flags));
    return (e->gpa & ~(uint64_t)IEM_TLBF_MASK) | (linear & 0xfff);
}

/* Filter keys of linear pages: 4 KiB pages by number, large pages by their 2 MiB or 4 MiB number (tagged). */
static inline uint64_t link_page_key(uint64_t lin, unsigned shift)
{
    return (lin >> shift) | ((uint64_t)shift << 56);
}

static inline unsigned link_page_bit(uint64_t key)
{
    return (unsigned)((key * 0x9e3779b97f4a7c15ull) >> 52) & (IEM_LINK_PAGE_BITS - 1);
}

static inline bool link_page_test(const struct iem_core *core, uint64_t key)
{
    unsigned bit = link_page_bit(key);
    return (core->link_pages[bit / 64] >> (bit % 64)) & 1;
}

void iem_chain_bump(struct iem_core *core)
{
    core->chain_gen++;
    memset(core->link_pages, 0, sizeof(core->link_pages));
    iem_link_key_update(core);
}

/* Notes the page of linear address lin (its exec TLB entry is filled): true when it is not global. */
static bool link_note_page(struct iem_core *core, uint64_t lin)
{
    struct iem_tlb_entry *e = iem_tlb_exec(core, lin);
    unsigned shift = !(e->gpa & IEM_TLBF_LARGE) ? 12 : (e->gpa & IEM_TLBF_LARGE4M) ? 22 : 21;
    unsigned bit = link_page_bit(link_page_key(lin, shift));
    core->link_pages[bit / 64] |= 1ull << (bit % 64);
    return !(e->gpa & IEM_TLBF_GLOBAL);
}

uint64_t iem_link_mask(struct iem_core *core, uint64_t lin, const struct iem_block *b)
{
    bool user = link_note_page(core, lin);
    if (b->gpa2 != IEM_NOGPA) {
        /* The second page as the decoder fetched it (32-bit wrap outside 64-bit code). */
        uint64_t lin2 = (lin | 0xfff) + 1;
        user |= link_note_page(core, core->cpu.mode == IEM_MODE_LONG64 ? lin2 : (uint32_t)lin2);
    }
    return user ? UINT64_MAX : 0xffffffffu;
}

void iem_tlb_flush(struct iem_cpu *cpu, bool global_too)
{
    struct iem_core *core = iem_core_of(cpu);
    if (global_too) {
        iem_chain_bump(core);
        /*
         * What translations depend on besides the paging structures: the A20 gate (a change
         * reaches every vCPU as a full flush through mem_changed) and the pages watched by
         * data breakpoints (DR writes and state loads flush everything).
         */
        core->a20_mask = vm_a20_enabled(cpu->vm) ? UINT64_MAX : ~((uint64_t)1 << 20);
        iem_dbg_sync(core);
    } else {
        /* Links to global pages survive a flush that keeps them (struct iem_link). */
        core->user_gen++;
        iem_link_key_update(core);
    }
    if (global_too || core->tlb_global_count == 0) {
        for (int k = 0; k < IEM_ACC_KINDS; k++)
            for (int i = 0; i < IEM_TLB_ENTRIES; i++)
                cpu->tlb[k][i].tag = 0;
        core->tlb_global_count = 0;
        core->tlb_large_count = 0;
        memset(core->tlb_large_slots, 0, sizeof(core->tlb_large_slots));
        memset(core->tlb_large_frames, 0, sizeof(core->tlb_large_frames));
        memset(core->tlb_local_slots, 0, sizeof(core->tlb_local_slots));
        return;
    }
    /*
     * Only the slots that may hold a non-global entry (tlb_local_slots).  The global ones stay,
     * and with them the large-page bookkeeping, which may now also name slots this emptied
     * (a superset: INVLPG scans a little more).
     */
    for (int k = 0; k < IEM_ACC_KINDS; k++) {
        for (unsigned w = 0; w < IEM_TLB_ENTRIES / 64; w++) {
            uint64_t bits = core->tlb_local_slots[k][w];
            while (bits) {
                unsigned i = w * 64 + (unsigned)__builtin_ctzll(bits);
                bits &= bits - 1;
                cpu->tlb[k][i].tag = 0;
            }
            core->tlb_local_slots[k][w] = 0;
        }
    }
}

void iem_tlb_flush_page(struct iem_cpu *cpu, uint64_t linear)
{
    struct iem_core *core = iem_core_of(cpu);
    linear = lin_mask(cpu, linear);
    if (link_page_test(core, link_page_key(linear, 12)) || link_page_test(core, link_page_key(linear, 21)) ||
        link_page_test(core, link_page_key(linear, 22)))
        iem_chain_bump(core);
    uint64_t page = linear & ~(uint64_t)0xfff;
    unsigned idx = (linear >> 12) & (IEM_TLB_ENTRIES - 1);
    for (int k = 0; k < IEM_ACC_KINDS; k++)
        if ((cpu->tlb[k][idx].tag & ~(uint64_t)0xfff) == page)
            cpu->tlb[k][idx].tag = 0;
    unsigned fbit = large_frame_bit(linear);
    if (!core->tlb_large_count || !((core->tlb_large_frames[fbit / 64] >> (fbit % 64)) & 1))
        return;
    /*
     * INVLPG drops the whole large page (SDM vol. 3A 4.10.4.1): its 4 KiB pieces may sit in
     * other slots, but only in those of its own pages (2 MiB with PAE, 4 MiB without), and
     * only in slots that were filled from a large page (tlb_large_slots).
     */
    uint64_t span = (cpu->s->cr4 & IEM_CR4_PAE) ? 0x200000 : 0x400000;
    unsigned nslots = span >> 12 < IEM_TLB_ENTRIES ? (unsigned)(span >> 12) : IEM_TLB_ENTRIES;
    unsigned first = ((linear & ~(span - 1)) >> 12) & (IEM_TLB_ENTRIES - 1);
    _Static_assert(IEM_TLB_ENTRIES % 64 == 0 && (0x200000 >> 12) % 64 == 0, "whole bitmap words per large page");
    for (unsigned w = first / 64; w < (first + nslots) / 64; w++) {
        uint64_t bits = core->tlb_large_slots[w];
        while (bits) {
            unsigned slot = w * 64 + (unsigned)__builtin_ctzll(bits);
            bits &= bits - 1;
            for (int k = 0; k < IEM_ACC_KINDS; k++) {
                struct iem_tlb_entry *e = &cpu->tlb[k][slot];
                if (!(e->tag & IEM_TLB_VALID) || !(e->gpa & IEM_TLBF_LARGE))
                    continue;
                uint64_t mask = (e->gpa & IEM_TLBF_LARGE4M) ? ~(uint64_t)0x3fffff : ~(uint64_t)0x1fffff;
                if ((e->tag & mask) == (linear & mask))
                    e->tag = 0;
            }
        }
    }
}

void iem_tlb_protect_page(struct iem_core *core, uint64_t gpa_page)
{
    for (int i = 0; i < IEM_TLB_ENTRIES; i++) {
        struct iem_tlb_entry *e = &core->cpu.tlb[IEM_ACC_WRITE][i];
        if ((e->tag & IEM_TLB_VALID) && (e->gpa & ~(uint64_t)IEM_TLBF_MASK) == gpa_page)
            iem_tlb_set_hva(e, NULL);
    }
}

/* ---- page-level transfers ------------------------------------------------------- */

/* One translated page of an access. */
struct xlat {
    uint64_t lin_page;
    uint64_t gpa_page;
    uint8_t *hva;    /* fast pointer, or NULL for the slow path */
    unsigned idx;    /* TLB slot (write side data) */
};

static inline void xlat_page(struct iem_core *core, uint64_t lin, int kind, bool user, struct xlat *x)
{
    struct iem_tlb_entry *e = tlb_get(core, lin, kind, user);
    x->lin_page = lin & ~(uint64_t)0xfff;
    x->gpa_page = e->gpa & ~(uint64_t)IEM_TLBF_MASK;
    x->hva = e->hva;
    x->idx = (lin >> 12) & (IEM_TLB_ENTRIES - 1);
}

static void xlat_read(struct iem_core *core, const struct xlat *x, unsigned off, void *buf, unsigned n)
{
    if (x->hva) {
        memcpy(buf, x->hva + off, n);
        return;
    }
    if (core->dbg_data_mask)
        iem_dbg_data_access(core, x->lin_page + off, n, false);
    uint64_t gpa = x->gpa_page + off;
    if (n == 1 || n == 2 || n == 4 || n == 8) {
        uint64_t v = mem_mmio_read(core->cpu.vm, gpa, n);
        memcpy(buf, &v, n);
    } else {
        mem_read(core->cpu.vm, gpa, buf, n);
    }
}

static void write_slow(struct iem_core *core, const struct xlat *x, unsigned off, const void *buf, unsigned n)
{
    struct iem_tlb_wside *side = &core->wside[x->idx];
    uint64_t gpa = x->gpa_page + off;
    if (core->dbg_data_mask)
        iem_dbg_data_access(core, x->lin_page + off, n, true);
    if (side->hva) {
        /* RAM holding decoded code: drop the code the write overlaps, then store. */
        memcpy(side->hva + off, buf, n);
        mem_dirty_word_set(side->dirty_word, side->dirty_bit); /* x covers one page */
        iem_cache_invalidate(core, gpa, n);
        if (core->ivm->ncores > 1)
            iem_cache_post(core->ivm, gpa, n, core);
        if (!iem_cache_write_is_slow(core, gpa) &&
            !(core->dbg_data_mask && iem_dbg_page_watched(core, x->lin_page, IEM_ACC_WRITE))) {
            struct iem_tlb_entry *e = &core->cpu.tlb[IEM_ACC_WRITE][x->idx];
            if ((e->gpa & ~(uint64_t)IEM_TLBF_MASK) == x->gpa_page)
                iem_tlb_set_hva(e, side->hva);
        }
        return;
    }
    if (n == 1 || n == 2 || n == 4 || n == 8) {
        uint64_t v = 0;
        memcpy(&v, buf, n);
        mem_mmio_write(core->cpu.vm, gpa, v, n);
    } else {
        mem_write(core->cpu.vm, gpa, buf, n);
    }
}

static inline void xlat_write(struct iem_core *core, const struct xlat *x, unsigned off, const void *buf, unsigned n)
{
    if (x->hva) {
        memcpy(x->hva + off, buf, n);
        const struct iem_tlb_wside *side = &core->wside[x->idx];
        mem_dirty_word_set(side->dirty_word, side->dirty_bit); /* x covers one page */
        return;
    }
    write_slow(core, x, off, buf, n);
}

/* Linear reads and writes of any length; a write translates every page before storing. */
static void lin_read_buf(struct iem_core *core, uint64_t lin, void *buf, unsigned len, bool user)
{
    uint8_t *p = buf;
    while (len) {
        unsigned off = lin & 0xfff;
        unsigned n = RT_MIN(len, IEM_PAGE_SIZE - off);
        struct xlat x;
        xlat_page(core, lin, IEM_ACC_READ, user, &x);
        xlat_read(core, &x, off, p, n);
        p += n;
        len -= n;
        lin = lin_mask(&core->cpu, lin + n);
    }
}

static void lin_write_buf(struct iem_core *core, uint64_t lin, const void *buf, unsigned len, bool user)
{
    const uint8_t *p = buf;
    while (len) {
        /* At most 4 KiB per round: at most two pages, both checked before the first store. */
        unsigned chunk = RT_MIN(len, IEM_PAGE_SIZE);
        unsigned off = lin & 0xfff;
        unsigned n1 = RT_MIN(chunk, IEM_PAGE_SIZE - off);
        struct xlat x1, x2;
        xlat_page(core, lin, IEM_ACC_WRITE, user, &x1);
        uint64_t lin2 = lin_mask(&core->cpu, lin + n1);
        if (n1 < chunk)
            xlat_page(core, lin2, IEM_ACC_WRITE, user, &x2);
        xlat_write(core, &x1, off, p, n1);
        if (n1 < chunk)
            xlat_write(core, &x2, 0, p + n1, chunk - n1);
        p += chunk;
        len -= chunk;
        lin = lin_mask(&core->cpu, lin + chunk);
    }
}

static inline uint64_t lin_read(struct iem_core *core, uint64_t lin, unsigned size, bool user)
{
    unsigned off = lin & 0xfff;
    if (__builtin_expect(off + size <= IEM_PAGE_SIZE, 1)) {
        struct iem_tlb_entry *e = tlb_get(core, lin, IEM_ACC_READ, user);
        uint64_t v = 0;
        if (__builtin_expect(e->hva != NULL, 1)) {
            memcpy(&v, e->hva + off, size);
            return v;
        }
        if (core->dbg_data_mask)
            iem_dbg_data_access(core, lin, size, false);
        return mem_mmio_read(core->cpu.vm, (e->gpa & ~(uint64_t)IEM_TLBF_MASK) + off, size);
    }
    uint64_t v = 0;
    lin_read_buf(core, lin, &v, size, user);
    return v;
}

static inline void lin_write(struct iem_core *core, uint64_t lin, unsigned size, uint64_t value, bool user)
{
    unsigned off = lin & 0xfff;
    if (__builtin_expect(off + size <= IEM_PAGE_SIZE, 1)) {
        struct xlat x;
        xlat_page(core, lin, IEM_ACC_WRITE, user, &x);
        xlat_write(core, &x, off, &value, size);
        return;
    }
    lin_write_buf(core, lin, &value, size, user);
}

uint64_t iem_lin_read(struct iem_cpu *cpu, uint64_t linear, unsigned size, unsigned flags)
{
    if (size == 0 || size > 8)
        size = 8;
    return lin_read(iem_core_of(cpu), lin_mask(cpu, linear), size, iem_is_user(cpu, flags));
}

void iem_lin_write(struct iem_cpu *cpu, uint64_t linear, unsigned size, uint64_t value, unsigned flags)
{
    if (size == 0 || size > 8)
        size = 8;
    lin_write(iem_core_of(cpu), lin_mask(cpu, linear), size, value, iem_is_user(cpu, flags));
}

/* ---- segmentation ------------------------------------------------------------------- */

_Noreturn static void seg_fault(struct iem_cpu *cpu, unsigned seg)
{
    iem_raise_err(cpu, seg == CPU_SS ? IEM_X_SS : IEM_X_GP, 0);
}

static inline bool is_canonical(uint64_t a)
{
    return (uint64_t)((int64_t)(a << 16) >> 16) == a;
}

/*
 * Segment checks for [off, off+size) of seg and the linear address (SDM vol. 3A 5.3 limit
 * checks, 5.4.1 type checks, 3.4.4 real mode, 3.3.7.1 canonical addresses).
 */
static __attribute__((noinline)) uint64_t seg_linear(struct iem_cpu *cpu, unsigned seg, uint64_t off, unsigned size,
                                                     bool write)
{
    if (seg >= CPU_LDTR)
        seg = CPU_DS;
    const struct cpu_seg *sg = &cpu->s->seg[seg];
    uint64_t last = off + size - 1;
    if (cpu->mode == IEM_MODE_LONG64) {
        uint64_t lin = off + (seg >= CPU_FS ? sg->base : 0);
        if (!is_canonical(lin) || !is_canonical(lin + size - 1))
            seg_fault(cpu, seg);
        return lin;
    }
    if (cpu->mode == IEM_MODE_PROT) {
        uint32_t attr = sg->attr;
        if (attr & CPU_SEG_ATTR_UNUSABLE)
            seg_fault(cpu, seg);
        unsigned type = attr & CPU_SEG_ATTR_TYPE_MASK;
        if (type & 0x8) {
            /* Code: never writable, readable only with R. */
            if (write || !(type & 0x2))
                seg_fault(cpu, seg);
        } else {
            if (write && !(type & 0x2))
                seg_fault(cpu, seg);
            if (type & 0x4) {
                /* Expand-down: valid offsets are limit+1 .. 0xffff or 0xffffffff (SDM 3.4.5.1). */
                uint64_t upper = (attr & CPU_SEG_ATTR_DB) ? 0xffffffffu : 0xffffu;
                if (off <= sg->limit || last > upper)
                    seg_fault(cpu, seg);
                return (uint32_t)(sg->base + off);
            }
        }
    }
    /* Real, V86 and expand-up protected segments: the cached limit (unreal mode keeps a big one). */
    if (last > sg->limit || last < off)
        seg_fault(cpu, seg);
    return (uint32_t)(sg->base + off);
}

/* #AC (SDM vol. 3A 6.15, interrupt 17): CR0.AM, EFLAGS.AC, CPL 3 and a misaligned operand. */
static inline void check_align(struct iem_cpu *cpu, uint64_t lin, unsigned size)
{
    if (__builtin_expect(cpu->cpl == 3, 0) && (lin & (size - 1)) && (cpu->s->cr0 & IEM_CR0_AM) &&
        (cpu->s->rflags & IEM_F_AC))
        iem_raise_err(cpu, IEM_X_AC, 0);
}

/* The common cases inline (64-bit mode, flat bases); everything else through seg_linear. */
static inline uint64_t seg_linear_fast(struct iem_cpu *cpu, unsigned seg, uint64_t off, unsigned size, bool write)
{
    if (__builtin_expect(cpu->mode == IEM_MODE_LONG64, 1)) {
        uint64_t lin = off;
        if (seg == CPU_FS || seg == CPU_GS)
            lin += cpu->s->seg[seg].base;
        if (__builtin_expect(is_canonical(lin) && is_canonical(lin + size - 1), 1))
            return lin;
    }
    return seg_linear(cpu, seg, off, size, write);
}

#define MEM_READ_FN(bits)                                                                 \
    uint##bits##_t iem_mem_read##bits(struct iem_cpu *cpu, unsigned seg, uint64_t off)  \
    {                                                                                     \
        uint64_t lin = seg_linear_fast(cpu, seg, off, bits / 8, false);                   \
        if (bits > 8)                                                                     \
            check_align(cpu, lin, bits / 8);                                              \
        return (uint##bits##_t)lin_read(iem_core_of(cpu), lin, bits / 8, cpu->cpl == 3);  \
    }
#define MEM_WRITE_FN(bits)                                                                    \
    void iem_mem_write##bits(struct iem_cpu *cpu, unsigned seg, uint64_t off, uint##bits##_t v) \
    {                                                                                         \
        uint64_t lin = seg_linear_fast(cpu, seg, off, bits / 8, true);                        \
        if (bits > 8)                                                                         \
            check_align(cpu, lin, bits / 8);                                                  \
        lin_write(iem_core_of(cpu), lin, bits / 8, v, cpu->cpl == 3);                         \
    }

MEM_READ_FN(8)
MEM_READ_FN(16)
MEM_READ_FN(32)
MEM_READ_FN(64)
MEM_WRITE_FN(8)
MEM_WRITE_FN(16)
MEM_WRITE_FN(32)
MEM_WRITE_FN(64)

void iem_mem_read_bytes(struct iem_cpu *cpu, unsigned seg, uint64_t off, void *buf, unsigned len)
{
    if (len == 0)
        return;
    uint64_t lin = seg_linear(cpu, seg, off, len, false);
    lin_read_buf(iem_core_of(cpu), lin, buf, len, cpu->cpl == 3);
}

void iem_mem_write_bytes(struct iem_cpu *cpu, unsigned seg, uint64_t off, const void *buf, unsigned len)
{
    if (len == 0)
        return;
    uint64_t lin = seg_linear(cpu, seg, off, len, true);
    if (len > IEM_PAGE_SIZE)
        iem_mem_probe_write(cpu, seg, off, len);
    lin_write_buf(iem_core_of(cpu), lin, buf, len, cpu->cpl == 3);
}

void iem_mem_probe_write(struct iem_cpu *cpu, unsigned seg, uint64_t off, unsigned len)
{
    if (len == 0)
        return;
    struct iem_core *core = iem_core_of(cpu);
    uint64_t lin = seg_linear(cpu, seg, off, len, true);
    bool user = cpu->cpl == 3;
    uint64_t first = lin & ~(uint64_t)0xfff;
    uint64_t pages = (((lin & 0xfff) + len - 1) >> 12) + 1;
    for (uint64_t i = 0; i < pages; i++)
        tlb_get(core, lin_mask(cpu, first + (i << 12)), IEM_ACC_WRITE, user);
}

void iem_mem_read128_aligned(struct iem_cpu *cpu, unsigned seg, uint64_t off, void *buf16)
{
    uint64_t lin = seg_linear(cpu, seg, off, 16, false);
    if (lin & 15)
        iem_raise_gp0(cpu);
    lin_read_buf(iem_core_of(cpu), lin, buf16, 16, cpu->cpl == 3);
}

void iem_mem_write128_aligned(struct iem_cpu *cpu, unsigned seg, uint64_t off, const void *buf16)
{
    uint64_t lin = seg_linear(cpu, seg, off, 16, true);
    if (lin & 15)
        iem_raise_gp0(cpu);
    lin_write_buf(iem_core_of(cpu), lin, buf16, 16, cpu->cpl == 3);
}
