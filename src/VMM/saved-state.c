/* saved-state.c - saved-state files of whole VMs: vm_state_save writes the header and every section, vm_state_load checks them all and restores the VM. */

/*
 * Design.  A file is a fixed header, then sections, each "tag, version, length, payload,
 * CRC-32 of the payload", and an end section whose payload is the length of and a CRC-32 over
 * everything before it:
 *
 *   header  magic "VIREOSAV", format version, header size, the writer's version string,
 *           creation time, RAM size, vCPU count, CPU backend family, CRC-32 of the header
 *   CONF    what the VM must look like: RAM regions (name, size), device units (name, version)
 *   VCPU    per vCPU: struct cpu_state field by field with explicit widths, the INTR line,
 *           and the backend's own state (cpu_backend.extra_save: NMI latch, wait-for-SIPI,
 *           TSC relation, ...)
 *   CLCK    the virtual clock (tm_now_ns) and the wall-clock seed of the RTC
 *   PLAT    the A20 gate and the interrupt router's wires
 *   DEVS    every device unit (pdm_dev_save_all)
 *   RAM     every RAM region streamed in chunks (saved-state-ram.c); the only section that is
 *           neither length-prefixed nor held in memory
 *   END     length and CRC-32 of all the bytes before it
 *
 * Saving happens with the VM paused and its lock held from the drain of disk I/O to the end,
 * so devices, RAM and vCPUs are one consistent picture.  The file is written under a
 * temporary name, fsync'ed, renamed and its folder fsync'ed; a failure removes the temporary.
 *
 * Loading reads and checks every small section (and the configuration against the VM) before
 * RAM; RAM records are checked one by one before they land; the device units, clock, wires
 * and vCPUs are applied only once the end section's checksum matched.  A failure part way
 * through RAM leaves the VM unusable, which the contract (vm.h) allows: it must be destroyed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "saved-state-internal.h"

#define LOG_COMPONENT "ssm"

#define SS_MAGIC          "VIREOSAV"
#define SS_FORMAT_VERSION 1u
#define SS_HEADER_BYTES   128u
#define SS_WRITER_ID      "Vireo 0.5"
/* A section held in memory may not claim more than this (device units are kilobytes today). */
#define SS_SECTION_MAX    (256u << 20)
#define SS_VCPU_VERSION   1u
#define SS_CONF_VERSION   1u
#define SS_CLCK_VERSION   1u
#define SS_PLAT_VERSION   1u
#define SS_DEVS_VERSION   1u
#define SS_END_VERSION    1u
#define SS_EXTRA_MAX      (64u << 10)

/* ---- struct cpu_state, field by field ------------------------------------------------------- */

static void seg_put(struct ssm *ssm, const struct cpu_seg *g)
{
    ssm_put_u16(ssm, g->sel);
    ssm_put_u64(ssm, g->base);
    ssm_put_u32(ssm, g->limit);
    ssm_put_u32(ssm, g->attr);
}

static void seg_get(struct ssm *ssm, struct cpu_seg *g)
{
    ssm_get_u16(ssm, &g->sel);
    ssm_get_u64(ssm, &g->base);
    ssm_get_u32(ssm, &g->limit);
    ssm_get_u32(ssm, &g->attr);
}

static void cpu_state_put(struct ssm *ssm, const struct cpu_state *s)
{
    for (unsigned i = 0; i < 16; i++)
        ssm_put_u64(ssm, s->gpr[i]);
    ssm_put_u64(ssm, s->rip);
    ssm_put_u64(ssm, s->rflags);
    for (unsigned i = 0; i < CPU_SEG_COUNT; i++)
        seg_put(ssm, &s->seg[i]);
    ssm_put_u64(ssm, s->gdtr.base);
    ssm_put_u16(ssm, s->gdtr.limit);
    ssm_put_u64(ssm, s->idtr.base);
    ssm_put_u16(ssm, s->idtr.limit);
    const uint64_t ctl[] = {s->cr0, s->cr2, s->cr3, s->cr4, s->cr8, s->efer};
    for (unsigned i = 0; i < RT_ARRAY_SIZE(ctl); i++)
        ssm_put_u64(ssm, ctl[i]);
    for (unsigned i = 0; i < 8; i++)
        ssm_put_u64(ssm, s->dr[i]);
    ssm_put_u64(ssm, s->xcr0);
    const uint64_t msr[] = {s->apic_base,    s->tsc,          s->star,         s->lstar, s->cstar,
                            s->sfmask,       s->kernel_gs_base, s->sysenter_cs, s->sysenter_esp,
                            s->sysenter_eip, s->pat,          s->tsc_aux,      s->misc_enable};
    for (unsigned i = 0; i < RT_ARRAY_SIZE(msr); i++)
        ssm_put_u64(ssm, msr[i]);
    const struct cpu_fpu *f = &s->fpu;
    ssm_put_u16(ssm, f->fcw);
    ssm_put_u16(ssm, f->fsw);
    ssm_put_u8(ssm, f->ftw);
    ssm_put_u16(ssm, f->fop);
    ssm_put_u64(ssm, f->fip);
    ssm_put_u64(ssm, f->fdp);
    ssm_put_u32(ssm, f->mxcsr);
    ssm_put_u32(ssm, f->mxcsr_mask);
    ssm_put_bytes(ssm, f->st, sizeof(f->st));
    ssm_put_bytes(ssm, f->xmm, sizeof(f->xmm));
    ssm_put_bytes(ssm, f->ymmh, sizeof(f->ymmh));
    ssm_put_bool(ssm, s->int_shadow);
    ssm_put_bool(ssm, s->nmi_masked);
    ssm_put_bool(ssm, s->halted);
}

static int cpu_state_get(struct ssm *ssm, struct cpu_state *s)
{
    memset(s, 0, sizeof(*s));
    for (unsigned i = 0; i < 16; i++)
        ssm_get_u64(ssm, &s->gpr[i]);
    ssm_get_u64(ssm, &s->rip);
    ssm_get_u64(ssm, &s->rflags);
    for (unsigned i = 0; i < CPU_SEG_COUNT; i++)
        seg_get(ssm, &s->seg[i]);
    ssm_get_u64(ssm, &s->gdtr.base);
    ssm_get_u16(ssm, &s->gdtr.limit);
    ssm_get_u64(ssm, &s->idtr.base);
    ssm_get_u16(ssm, &s->idtr.limit);
    uint64_t *const ctl[] = {&s->cr0, &s->cr2, &s->cr3, &s->cr4, &s->cr8, &s->efer};
    for (unsigned i = 0; i < RT_ARRAY_SIZE(ctl); i++)
        ssm_get_u64(ssm, ctl[i]);
    for (unsigned i = 0; i < 8; i++)
        ssm_get_u64(ssm, &s->dr[i]);
    ssm_get_u64(ssm, &s->xcr0);
    uint64_t *const msr[] = {&s->apic_base,    &s->tsc,          &s->star,         &s->lstar, &s->cstar,
                             &s->sfmask,       &s->kernel_gs_base, &s->sysenter_cs, &s->sysenter_esp,
                             &s->sysenter_eip, &s->pat,          &s->tsc_aux,      &s->misc_enable};
    for (unsigned i = 0; i < RT_ARRAY_SIZE(msr); i++)
        ssm_get_u64(ssm, msr[i]);
    struct cpu_fpu *f = &s->fpu;
    ssm_get_u16(ssm, &f->fcw);
    ssm_get_u16(ssm, &f->fsw);
    ssm_get_u8(ssm, &f->ftw);
    ssm_get_u16(ssm, &f->fop);
    ssm_get_u64(ssm, &f->fip);
    ssm_get_u64(ssm, &f->fdp);
    ssm_get_u32(ssm, &f->mxcsr);
    ssm_get_u32(ssm, &f->mxcsr_mask);
    ssm_get_bytes(ssm, f->st, sizeof(f->st));
    ssm_get_bytes(ssm, f->xmm, sizeof(f->xmm));
    ssm_get_bytes(ssm, f->ymmh, sizeof(f->ymmh));
    ssm_get_bool(ssm, &s->int_shadow);
    ssm_get_bool(ssm, &s->nmi_masked);
    ssm_get_bool(ssm, &s->halted);
    return ssm_status(ssm);
}

/*
 * What no CPU could hold: a checksummed file should never get here, but a crafted one may, and
 * the backends assume these architectural invariants (RFLAGS bit 1, 32-bit CR0/CR4, sizes).
 */
static const char *cpu_state_invalid(const struct cpu_state *s)
{
    if (!(s->rflags & CPU_RFLAGS_FIXED) || (s->rflags >> 22))
        return "RFLAGS has reserved bits wrong";
    if ((s->cr0 >> 32) || (s->cr4 >> 32) || (s->cr8 >> 4))
        return "a control register has reserved bits set";
    if (s->efer >> 16)
        return "EFER has reserved bits set";
    for (unsigned i = 0; i < CPU_SEG_COUNT; i++)
        if (s->seg[i].attr >> 17)
            return "a segment's attributes have unknown bits set";
    return NULL;
}

/* ---- header ---------------------------------------------------------------------------------- */

struct ss_header {
    uint32_t format_version;
    char writer[33];
    uint64_t created_ns;
    uint64_t ram_bytes;
    uint32_t vcpu_count;
    char backend[17];
};

static const char *vm_backend_family(struct vm *vm)
{
    return vm->backend ? vm->backend->name : "none";
}

static void header_build(struct vm *vm, uint8_t out[SS_HEADER_BYTES])
{
    memset(out, 0, SS_HEADER_BYTES);
    memcpy(out, SS_MAGIC, 8);
    uint8_t *p = out + 8;
    uint32_t v32[2] = {SS_FORMAT_VERSION, SS_HEADER_BYTES};
    for (unsigned i = 0; i < 2; i++, p += 4)
        for (unsigned b = 0; b < 4; b++)
            p[b] = (uint8_t)(v32[i] >> (8 * b));
    memcpy(out + 16, SS_WRITER_ID, RT_MIN(strlen(SS_WRITER_ID), (size_t)32));
    uint64_t v64[2] = {rt_time_real_ns(), vm->params.ram_bytes};
    p = out + 48;
    for (unsigned i = 0; i < 2; i++, p += 8)
        for (unsigned b = 0; b < 8; b++)
            p[b] = (uint8_t)(v64[i] >> (8 * b));
    for (unsigned b = 0; b < 4; b++)
        out[64 + b] = (uint8_t)(vm->vcpu_count >> (8 * b));
    memcpy(out + 68, vm_backend_family(vm), RT_MIN(strlen(vm_backend_family(vm)), (size_t)16));
    uint32_t crc = (uint32_t)crc32_z(0, out, SS_HEADER_BYTES - 4);
    for (unsigned b = 0; b < 4; b++)
        out[SS_HEADER_BYTES - 4 + b] = (uint8_t)(crc >> (8 * b));
}

static uint64_t le_at(const uint8_t *p, unsigned bytes)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < bytes; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static int header_parse(const char *path, const uint8_t in[SS_HEADER_BYTES], struct ss_header *h)
{
    if (memcmp(in, SS_MAGIC, 8) != 0) {
        LOG_ERR("'%s' is not a Vireo saved state (no VIREOSAV magic)", path);
        return VERR_SSM_CORRUPT;
    }
    h->format_version = (uint32_t)le_at(in + 8, 4);
    if (h->format_version != SS_FORMAT_VERSION) {
        LOG_ERR("saved state '%s' has format version %u; this build reads version %u", path, h->format_version,
                SS_FORMAT_VERSION);
        return VERR_SSM_VERSION;
    }
    uint32_t crc = (uint32_t)crc32_z(0, in, SS_HEADER_BYTES - 4);
    if (le_at(in + 12, 4) != SS_HEADER_BYTES || crc != le_at(in + SS_HEADER_BYTES - 4, 4)) {
        LOG_ERR("saved state '%s': the header fails its checksum", path);
        return VERR_SSM_CORRUPT;
    }
    memcpy(h->writer, in + 16, 32);
    h->writer[32] = '\0';
    h->created_ns = le_at(in + 48, 8);
    h->ram_bytes = le_at(in + 56, 8);
    h->vcpu_count = (uint32_t)le_at(in + 64, 4);
    memcpy(h->backend, in + 68, 16);
    h->backend[16] = '\0';
    return 0;
}

/* ---- sections ---------------------------------------------------------------------------------- */

static void section_write(struct ss_writer *w, uint32_t tag, uint32_t version, struct ssm *payload)
{
    size_t len;
    const void *data = ssm_data(payload, &len);
    ss_write_u32(w, tag);
    ss_write_u32(w, version);
    ss_write_u64(w, len);
    ss_write(w, data, len);
    ss_write_u32(w, (uint32_t)crc32_z(0, data, len));
}

static void tag_name(uint32_t tag, char out[5])
{
    for (unsigned i = 0; i < 4; i++) {
        char c = (char)(tag >> (8 * i));
        out[i] = c >= 0x20 && c < 0x7f ? c : '?';
    }
    out[4] = '\0';
}

/* A loaded section: its payload stays allocated until section_free. */
struct section {
    uint32_t version;
    void *data;
    size_t len;
};

static int section_read(struct ss_reader *r, uint32_t want_tag, uint32_t max_version, struct section *sec)
{
    char want[5], got[5];
    tag_name(want_tag, want);
    memset(sec, 0, sizeof(*sec));
    uint32_t tag = 0;
    uint64_t len = 0;
    uint64_t at = r->offset;
    int rc = ss_read_u32(r, &tag, "a section header");
    if (!rc)
        rc = ss_read_u32(r, &sec->version, "a section header");
    if (rc)
        return rc;
    tag_name(tag, got);
    if (tag != want_tag) {
        LOG_ERR("saved state '%s': section '%s' at byte %llu where '%s' belongs", r->path, got,
                (unsigned long long)at, want);
        return VERR_SSM_CORRUPT;
    }
    if (sec->version == 0 || sec->version > max_version) {
        LOG_ERR("saved state '%s': section '%s' has version %u; this build reads 1 to %u", r->path, want,
                sec->version, max_version);
        return VERR_SSM_VERSION;
    }
    if (tag == SS_TAG_RAM)
        return 0; /* streamed: no length, no payload here */
    rc = ss_read_u64(r, &len, "a section header");
    if (rc)
        return rc;
    if (len > SS_SECTION_MAX) {
        LOG_ERR("saved state '%s': section '%s' claims %llu bytes (at most %u)", r->path, want,
                (unsigned long long)len, SS_SECTION_MAX);
        return VERR_SSM_CORRUPT;
    }
    sec->data = malloc(len ? len : 1);
    if (!sec->data)
        return VERR_NO_MEMORY;
    sec->len = len;
    uint32_t crc_file = 0;
    rc = ss_read(r, sec->data, len, want);
    if (!rc)
        rc = ss_read_u32(r, &crc_file, "a section checksum");
    if (!rc && crc_file != (uint32_t)crc32_z(0, sec->data, len)) {
        LOG_ERR("saved state '%s': section '%s' (byte %llu) fails its checksum", r->path, want, (unsigned long long)at);
        rc = VERR_SSM_CORRUPT;
    }
    if (rc) {
        free(sec->data);
        sec->data = NULL;
    }
    return rc;
}

static void section_free(struct section *sec)
{
    free(sec->data);
    sec->data = NULL;
}

/* A stream over a section's payload that must be consumed exactly. */
static int section_stream(const struct section *sec, struct ssm **out)
{
    return ssm_open(sec->data, sec->len, out);
}

static int stream_done(struct ssm *ssm, const char *path, const char *what)
{
    int rc = ssm_status(ssm);
    uint8_t extra;
    if (!rc && ssm_get_u8(ssm, &extra) == 0)
        rc = VERR_SSM_CORRUPT; /* bytes left over: the section is not what this build wrote */
    if (rc)
        LOG_ERR("saved state '%s': the %s section is malformed", path, what);
    return rc;
}

static void put_name(struct ssm *ssm, const char *name)
{
    size_t len = RT_MIN(strlen(name), SS_NAME_MAX);
    ssm_put_u8(ssm, (uint8_t)len);
    ssm_put_bytes(ssm, name, len);
}

static int get_name(struct ssm *ssm, char out[SS_NAME_MAX + 1])
{
    uint8_t len = 0;
    int rc = ssm_get_u8(ssm, &len);
    if (!rc)
        rc = ssm_get_bytes(ssm, out, len);
    out[rc ? 0 : len] = '\0';
    return rc;
}

/* ---- the configuration section --------------------------------------------------------------- */

static void conf_put_region(void *opaque, struct mem_region *region)
{
    struct ssm *ssm = opaque;
    put_name(ssm, mem_region_name(region));
    ssm_put_u64(ssm, mem_region_size(region));
}

static void conf_count_region(void *opaque, struct mem_region *region)
{
    (void)region;
    (*(uint32_t *)opaque)++;
}

static void conf_build(struct vm *vm, struct ssm *ssm)
{
    uint32_t regions = 0;
    mem_for_each_ram_region(vm, conf_count_region, &regions);
    ssm_put_u32(ssm, regions);
    mem_for_each_ram_region(vm, conf_put_region, ssm);
    uint32_t units = 0;
    for (struct pdm_dev *d = vm->devices; d; d = d->next)
        units += d->desc->save != NULL;
    ssm_put_u32(ssm, units);
    for (struct pdm_dev *d = vm->devices; d; d = d->next) {
        if (!d->desc->save)
            continue;
        put_name(ssm, d->name);
        ssm_put_u32(ssm, d->desc->ssm_version);
    }
}

struct region_check {
    struct ssm *ssm;
    const char *path;
    int rc;
};

static void conf_check_region(void *opaque, struct mem_region *region)
{
    struct region_check *c = opaque;
    char name[SS_NAME_MAX + 1];
    uint64_t size = 0;
    if (c->rc)
        return;
    if (get_name(c->ssm, name) || ssm_get_u64(c->ssm, &size)) {
        c->rc = VERR_SSM_CORRUPT;
        return;
    }
    if (strcmp(name, mem_region_name(region)) != 0 || size != mem_region_size(region)) {
        LOG_ERR("saved state '%s' has RAM region '%s' of %llu bytes where this VM has '%s' of %llu bytes", c->path,
                name, (unsigned long long)size, mem_region_name(region),
                (unsigned long long)mem_region_size(region));
        c->rc = VERR_SSM_CORRUPT;
    }
}

/* Compares the file's configuration with the VM's: RAM regions, then the device units in order. */
static int conf_check(struct vm *vm, const char *path, struct ssm *ssm)
{
    uint32_t regions = 0, have = 0, units = 0;
    mem_for_each_ram_region(vm, conf_count_region, &have);
    ssm_get_u32(ssm, &regions);
    if (!ssm_status(ssm) && regions != have) {
        LOG_ERR("saved state '%s' has %u RAM regions, this VM has %u", path, regions, have);
        return VERR_SSM_CORRUPT;
    }
    struct region_check c = {ssm, path, ssm_status(ssm)};
    mem_for_each_ram_region(vm, conf_check_region, &c);
    if (c.rc)
        return c.rc;
    ssm_get_u32(ssm, &units);
    struct pdm_dev *d = vm->devices;
    for (uint32_t i = 0; i < units && !ssm_status(ssm); i++) {
        char name[SS_NAME_MAX + 1];
        uint32_t version = 0;
        get_name(ssm, name);
        ssm_get_u32(ssm, &version);
        if (ssm_status(ssm))
            break;
        while (d && !d->desc->load)
            d = d->next;
        if (!d) {
            LOG_ERR("saved state '%s' has device unit '%s', which this VM does not have", path, name);
            return VERR_SSM_CORRUPT;
        }
        if (strcmp(name, d->name) != 0) {
            LOG_ERR("saved state '%s' has device unit '%s' where this VM has device '%s'", path, name, d->name);
            return VERR_SSM_CORRUPT;
        }
        if (version == 0 || version > d->desc->ssm_version) {
            LOG_ERR("saved state '%s': device '%s' was saved with unit version %u; this build reads 1 to %u", path,
                    name, version, d->desc->ssm_version);
            return VERR_SSM_VERSION;
        }
        d = d->next;
    }
    while (d && !d->desc->load)
        d = d->next;
    if (!ssm_status(ssm) && d) {
        LOG_ERR("saved state '%s' has no unit for device '%s' of this VM", path, d->name);
        return VERR_SSM_CORRUPT;
    }
    return stream_done(ssm, path, "configuration");
}

/* ---- vCPUs -------------------------------------------------------------------------------------- */

static int vcpus_build(struct vm *vm, struct ssm *ssm)
{
    ssm_put_u32(ssm, vm->vcpu_count);
    for (unsigned i = 0; i < vm->vcpu_count; i++) {
        struct vcpu *v = vm->vcpus[i];
        if (vm->backend) {
            int rc = vm->backend->state_get(v, &v->state);
            if (rc) {
                LOG_ERR("vCPU %u: cannot read the register state from the %s backend: %s", i, vm->backend->name,
                        rt_err_str(rc));
                return rc;
            }
        }
        ssm_put_u32(ssm, i);
        cpu_state_put(ssm, &v->state);
        ssm_put_bool(ssm, atomic_load(&v->intr_level));
        struct ssm *extra = NULL;
        int rc = ssm_create(&extra);
        if (rc)
            return rc;
        uint32_t extra_version = 0;
        if (vm->backend && vm->backend->extra_save) {
            extra_version = vm->backend->extra_version;
            rc = vm->backend->extra_save(v, extra);
            if (!rc)
                rc = ssm_status(extra);
        }
        size_t len;
        const void *data = ssm_data(extra, &len);
        ssm_put_u32(ssm, extra_version);
        ssm_put_u32(ssm, (uint32_t)len);
        ssm_put_bytes(ssm, data, len);
        ssm_destroy(extra);
        if (rc)
            return rc;
    }
    return ssm_status(ssm);
}

struct vcpu_saved {
    struct cpu_state state;
    bool intr;
    uint32_t extra_version;
    uint8_t *extra;
    uint32_t extra_len;
};

static int vcpus_parse(struct vm *vm, const char *path, struct ssm *ssm, struct vcpu_saved *out)
{
    uint32_t count = 0;
    if (ssm_get_u32(ssm, &count))
        return VERR_SSM_CORRUPT;
    if (count != vm->vcpu_count) {
        LOG_ERR("saved state '%s' has %u vCPUs, this VM has %u", path, count, vm->vcpu_count);
        return VERR_SSM_CORRUPT;
    }
    for (unsigned i = 0; i < count; i++) {
        struct vcpu_saved *sv = &out[i];
        uint32_t index = 0;
        ssm_get_u32(ssm, &index);
        cpu_state_get(ssm, &sv->state);
        ssm_get_bool(ssm, &sv->intr);
        ssm_get_u32(ssm, &sv->extra_version);
        ssm_get_u32(ssm, &sv->extra_len);
        if (ssm_status(ssm))
            break;
        const char *why = index != i ? "out of order" : cpu_state_invalid(&sv->state);
        if (why) {
            LOG_ERR("saved state '%s': vCPU %u: %s", path, i, why);
            return VERR_SSM_CORRUPT;
        }
        uint32_t want = vm->backend && vm->backend->extra_save ? vm->backend->extra_version : 0;
        if ((want == 0) != (sv->extra_version == 0) || sv->extra_version > want || sv->extra_len > SS_EXTRA_MAX) {
            LOG_ERR("saved state '%s': vCPU %u has backend state version %u of %u bytes; this build reads up to "
                    "version %u",
                    path, i, sv->extra_version, sv->extra_len, want);
            return sv->extra_version > want ? VERR_SSM_VERSION : VERR_SSM_CORRUPT;
        }
        sv->extra = malloc(sv->extra_len ? sv->extra_len : 1);
        if (!sv->extra)
            return VERR_NO_MEMORY;
        ssm_get_bytes(ssm, sv->extra, sv->extra_len);
    }
    return stream_done(ssm, path, "vCPU");
}

static int vcpus_apply(struct vm *vm, struct vcpu_saved *saved)
{
    for (unsigned i = 0; i < vm->vcpu_count; i++) {
        struct vcpu *v = vm->vcpus[i];
        v->state = saved[i].state;
        atomic_store(&v->need_state_put, false);
        if (vm->backend) {
            int rc = vm->backend->state_put(v, &v->state);
            if (rc) {
                LOG_ERR("vCPU %u: the %s backend refused the saved register state: %s", i, vm->backend->name,
                        rt_err_str(rc));
                return rc;
            }
            if (saved[i].extra_version) {
                struct ssm *extra = NULL;
                rc = ssm_open(saved[i].extra, saved[i].extra_len, &extra);
                if (!rc)
                    rc = vm->backend->extra_load(v, extra, saved[i].extra_version);
                if (!rc)
                    rc = ssm_status(extra);
                ssm_destroy(extra);
                if (rc) {
                    LOG_ERR("vCPU %u: the %s backend's saved state does not load: %s", i, vm->backend->name,
                            rt_err_str(rc));
                    return rc;
                }
            }
        }
        vcpu_set_intr(v, saved[i].intr);
    }
    return 0;
}

/* ---- save ---------------------------------------------------------------------------------------- */

static int fsync_dir_of(const char *path)
{
    char *dir = rt_path_dirname(path);
    if (!dir)
        return VERR_NO_MEMORY;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = 0;
    if (fd < 0 || fsync(fd) != 0) {
        LOG_ERR("cannot flush the folder '%s' of the saved state: %s", dir, strerror(errno));
        rc = rt_err_from_errno(errno);
    }
    if (fd >= 0)
        close(fd);
    free(dir);
    return rc;
}

/* The small sections, built in memory before anything is written. */
static int small_sections_build(struct vm *vm, struct ssm *sec[5])
{
    int rc = 0;
    for (unsigned i = 0; i < 5 && !rc; i++)
        rc = ssm_create(&sec[i]);
    if (rc)
        return rc;
    conf_build(vm, sec[0]);
    rc = vcpus_build(vm, sec[1]);
    if (!rc) {
        ssm_put_u64(sec[2], tm_now_ns(vm));
        ssm_put_u64(sec[2], tm_boot_real_ns(vm));
        ssm_put_bool(sec[3], vm_a20_enabled(vm));
        rc = irq_router_save(vm, sec[3]);
    }
    if (!rc)
        rc = pdm_dev_save_all(vm, sec[4]);
    for (unsigned i = 0; i < 5 && !rc; i++)
        rc = ssm_status(sec[i]);
    if (rc)
        LOG_ERR("cannot collect the VM's state: %s", rt_err_str(rc));
    return rc;
}

static int save_to_fd(struct vm *vm, struct ss_writer *w, struct ss_progress *progress)
{
    struct ssm *sec[5] = {0};
    int rc = small_sections_build(vm, sec);
    if (!rc) {
        uint8_t header[SS_HEADER_BYTES];
        header_build(vm, header);
        ss_write(w, header, sizeof(header));
        static const uint32_t tags[5] = {SS_TAG_CONF, SS_TAG_VCPU, SS_TAG_CLCK, SS_TAG_PLAT, SS_TAG_DEVS};
        static const uint32_t versions[5] = {SS_CONF_VERSION, SS_VCPU_VERSION, SS_CLCK_VERSION, SS_PLAT_VERSION,
                                             SS_DEVS_VERSION};
        for (unsigned i = 0; i < 5; i++)
            section_write(w, tags[i], versions[i], sec[i]);
        rc = w->rc;
    }
    for (unsigned i = 0; i < 5; i++)
        ssm_destroy(sec[i]);
    if (!rc)
        rc = ss_ram_save(vm, w, progress);
    if (!rc) {
        uint64_t before = w->offset;
        uint32_t crc_all = w->crc;
        struct ssm *end = NULL;
        rc = ssm_create(&end);
        if (!rc) {
            ssm_put_u64(end, before);
            ssm_put_u32(end, crc_all);
            rc = ssm_status(end);
            if (!rc)
                section_write(w, SS_TAG_END, SS_END_VERSION, end);
            ssm_destroy(end);
        }
    }
    if (!rc)
        rc = ss_writer_finish(w);
    return rc;
}

int vm_state_save(struct vm *vm, const char *path, void (*progress)(void *opaque, unsigned percent), void *opaque)
{
    if (!vm || !path || !*path)
        return VERR_INVALID_PARAMETER;
    if (vm_get_state(vm) != VM_STATE_PAUSED) {
        LOG_ERR("cannot save the state of VM '%s': it is %s, not paused", vm->name, vm_state_name(vm_get_state(vm)));
        return VERR_INVALID_STATE;
    }
    uint64_t t0 = rt_time_mono_ns();
    char *tmp = rt_strdup_printf("%s.tmp", path);
    struct ss_writer w = {.fd = -1, .path = path};
    w.buf = malloc(SS_IO_BUF_BYTES);
    if (!tmp || !w.buf) {
        free(tmp);
        free(w.buf);
        return VERR_NO_MEMORY;
    }
    w.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (w.fd < 0) {
        int err = errno;
        LOG_ERR("cannot create the saved state '%s': %s", tmp, strerror(err));
        free(tmp);
        free(w.buf);
        return rt_err_from_errno(err);
    }
    struct ss_progress prog = {progress, opaque, 0};
    if (progress)
        progress(opaque, 0);
    vm_lock(vm);
    /* Nothing may be in flight: every submitted disk request completes (and writes RAM) first. */
    if (vm->io_drain)
        vm->io_drain(vm);
    int rc = save_to_fd(vm, &w, &prog);
    vm_unlock(vm);
    if (!rc && fsync(w.fd) != 0) {
        LOG_ERR("cannot flush the saved state '%s' to disk: %s", tmp, strerror(errno));
        rc = rt_err_from_errno(errno);
    }
    if (close(w.fd) != 0 && !rc) {
        LOG_ERR("cannot close the saved state '%s': %s", tmp, strerror(errno));
        rc = rt_err_from_errno(errno);
    }
    if (!rc && rename(tmp, path) != 0) {
        LOG_ERR("cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
        rc = rt_err_from_errno(errno);
    }
    if (!rc)
        rc = fsync_dir_of(path);
    if (rc)
        unlink(tmp);
    else
        LOG_INFO("saved the state of VM '%s' to '%s' (%llu KiB) in %llu ms", vm->name, path,
                 (unsigned long long)(w.offset >> 10), (unsigned long long)((rt_time_mono_ns() - t0) / RT_NS_PER_MS));
    if (!rc && progress)
        progress(opaque, 100);
    free(tmp);
    free(w.buf);
    return rc;
}

/* ---- load ---------------------------------------------------------------------------------------- */

struct load_ctx {
    struct vm *vm;
    const char *path;
    struct ss_reader *r;
    struct section conf, vcpu, clck, plat, devs;
    struct vcpu_saved *saved;
    uint64_t clock_ns, boot_real_ns;
};

static int check_header(struct load_ctx *c)
{
    struct vm *vm = c->vm;
    uint8_t raw[SS_HEADER_BYTES];
    int rc = ss_read(c->r, raw, sizeof(raw), "the header");
    struct ss_header h;
    if (!rc)
        rc = header_parse(c->path, raw, &h);
    if (rc)
        return rc;
    if (h.ram_bytes != vm->params.ram_bytes) {
        LOG_ERR("saved state '%s' is of a VM with %llu MiB of RAM; this VM has %llu MiB", c->path,
                (unsigned long long)(h.ram_bytes >> 20), (unsigned long long)(vm->params.ram_bytes >> 20));
        return VERR_SSM_CORRUPT;
    }
    if (h.vcpu_count != vm->vcpu_count) {
        LOG_ERR("saved state '%s' is of a VM with %u vCPUs; this VM has %u", c->path, h.vcpu_count, vm->vcpu_count);
        return VERR_SSM_CORRUPT;
    }
    if (strcmp(h.backend, vm_backend_family(vm)) != 0) {
        LOG_ERR("saved state '%s' was taken on the '%s' CPU backend; this VM runs on '%s' (a saved state resumes "
                "on the backend that took it)",
                c->path, h.backend, vm_backend_family(vm));
        return VERR_SSM_CORRUPT;
    }
    LOG_INFO("loading saved state '%s' written by %s", c->path, h.writer);
    return 0;
}

/* Reads and checks everything; touches nothing but RAM (after the small sections all passed). */
static int load_read_all(struct load_ctx *c)
{
    struct vm *vm = c->vm;
    int rc = check_header(c);
    if (!rc)
        rc = section_read(c->r, SS_TAG_CONF, SS_CONF_VERSION, &c->conf);
    struct ssm *s = NULL;
    if (!rc && !(rc = section_stream(&c->conf, &s))) {
        rc = conf_check(vm, c->path, s);
        ssm_destroy(s);
    }
    if (!rc)
        rc = section_read(c->r, SS_TAG_VCPU, SS_VCPU_VERSION, &c->vcpu);
    if (!rc) {
        c->saved = calloc(vm->vcpu_count, sizeof(*c->saved));
        rc = c->saved ? section_stream(&c->vcpu, &s) : VERR_NO_MEMORY;
        if (!rc) {
            rc = vcpus_parse(vm, c->path, s, c->saved);
            ssm_destroy(s);
        }
    }
    if (!rc)
        rc = section_read(c->r, SS_TAG_CLCK, SS_CLCK_VERSION, &c->clck);
    if (!rc && !(rc = section_stream(&c->clck, &s))) {
        ssm_get_u64(s, &c->clock_ns);
        ssm_get_u64(s, &c->boot_real_ns);
        rc = stream_done(s, c->path, "clock");
        ssm_destroy(s);
    }
    if (!rc)
        rc = section_read(c->r, SS_TAG_PLAT, SS_PLAT_VERSION, &c->plat);
    if (!rc)
        rc = section_read(c->r, SS_TAG_DEVS, SS_DEVS_VERSION, &c->devs);
    struct section ram;
    if (!rc)
        rc = section_read(c->r, SS_TAG_RAM, 1, &ram);
    if (!rc)
        rc = ss_ram_load(vm, c->r);
    if (rc)
        return rc;
    uint64_t before = c->r->offset;
    uint32_t crc_all = c->r->crc;
    struct section end;
    rc = section_read(c->r, SS_TAG_END, SS_END_VERSION, &end);
    if (rc)
        return rc;
    uint64_t end_len = 0;
    uint32_t end_crc = 0;
    rc = section_stream(&end, &s);
    if (!rc) {
        ssm_get_u64(s, &end_len);
        ssm_get_u32(s, &end_crc);
        rc = stream_done(s, c->path, "end");
        ssm_destroy(s);
    }
    section_free(&end);
    if (!rc && (end_len != before || end_crc != crc_all)) {
        LOG_ERR("saved state '%s': the end marker's checksum does not match the data before it", c->path);
        rc = VERR_SSM_CORRUPT;
    }
    if (!rc && !ss_reader_at_end(c->r)) {
        LOG_ERR("saved state '%s' has data after its end marker (byte %llu)", c->path, (unsigned long long)c->r->offset);
        rc = VERR_SSM_CORRUPT;
    }
    return rc;
}

/* Everything checked out: the clock, the wires, the devices and the vCPUs take the saved state. */
static int load_apply(struct load_ctx *c)
{
    struct vm *vm = c->vm;
    tm_clock_restore(vm, c->clock_ns);
    tm_set_boot_real_ns(vm, c->boot_real_ns);
    struct ssm *s = NULL;
    int rc = section_stream(&c->plat, &s);
    if (rc)
        return rc;
    bool a20 = true;
    ssm_get_bool(s, &a20);
    rc = ssm_status(s);
    if (!rc) {
        vm_set_a20(vm, a20);
        irq_router_quiet(vm, true);
        struct ssm *devs = NULL;
        rc = section_stream(&c->devs, &devs);
        if (!rc) {
            rc = pdm_dev_load_all(vm, devs);
            if (!rc)
                rc = stream_done(devs, c->path, "device");
            ssm_destroy(devs);
        }
        /* The wires as saved, whatever the device loads drove them to; the controllers were not told. */
        if (!rc)
            rc = irq_router_load(vm, s);
        irq_router_quiet(vm, false);
    }
    if (!rc)
        rc = stream_done(s, c->path, "platform");
    ssm_destroy(s);
    if (!rc)
        rc = vcpus_apply(vm, c->saved);
    return rc;
}

int vm_state_load(struct vm *vm, const char *path)
{
    if (!vm || !path)
        return VERR_INVALID_PARAMETER;
    if (vm_get_state(vm) != VM_STATE_CREATED || vm->started) {
        LOG_ERR("cannot load a saved state into VM '%s': it has already started", vm->name);
        return VERR_INVALID_STATE;
    }
    uint64_t t0 = rt_time_mono_ns();
    struct ss_reader r = {.fd = -1, .path = path};
    r.fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r.fd < 0) {
        int err = errno;
        LOG_ERR("cannot open the saved state '%s': %s", path, strerror(err));
        return rt_err_from_errno(err);
    }
    r.buf = malloc(SS_IO_BUF_BYTES);
    struct load_ctx c = {.vm = vm, .path = path, .r = &r};
    int rc = r.buf ? 0 : VERR_NO_MEMORY;
    if (!rc) {
        vm_lock(vm);
        rc = load_read_all(&c);
        if (!rc)
            rc = load_apply(&c);
        vm_unlock(vm);
    }
    section_free(&c.conf);
    section_free(&c.vcpu);
    section_free(&c.clck);
    section_free(&c.plat);
    section_free(&c.devs);
    if (c.saved)
        for (unsigned i = 0; i < vm->vcpu_count; i++)
            free(c.saved[i].extra);
    free(c.saved);
    free(r.buf);
    close(r.fd);
    if (rc) {
        LOG_ERR("cannot load the saved state '%s' into VM '%s': %s", path, vm->name, rt_err_str(rc));
        return rc;
    }
    vm->state_loaded = true;
    LOG_INFO("loaded the saved state '%s' into VM '%s' in %llu ms (virtual time %llu.%03llu s)", path, vm->name,
             (unsigned long long)((rt_time_mono_ns() - t0) / RT_NS_PER_MS),
             (unsigned long long)(c.clock_ns / RT_NS_PER_SEC),
             (unsigned long long)(c.clock_ns % RT_NS_PER_SEC / RT_NS_PER_MS));
    return 0;
}
