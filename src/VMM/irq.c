/* irq.c - the interrupt router: source wires onto GSIs, wired-OR per GSI, level changes forwarded to the sinks. */
#include <stdlib.h>
#include <string.h>

#include "vm-internal.h"

#define LOG_COMPONENT "irq"

struct pdm_irq {
    struct vm *vm;
    unsigned gsi;
    bool level;
    char *owner;
    struct pdm_irq *next;
};

static void gsi_update(struct vm *vm, unsigned gsi)
{
    bool level = false;
    for (struct pdm_irq *l = vm->irq.lines; l && !level; l = l->next)
        level = l->gsi == gsi && l->level;
    if (level == vm->irq.level[gsi])
        return;
    vm->irq.level[gsi] = level;
    if (vm->irq.quiet)
        return;
    for (struct irq_sink *s = vm->irq.sinks; s; s = s->next)
        s->fn(s->opaque, gsi, level);
}

int pdm_irq_create(struct vm *vm, unsigned gsi, const char *owner, struct pdm_irq **out)
{
    if (!vm || gsi >= PDM_GSI_COUNT || !out) {
        LOG_ERR("%s: interrupt line %u is out of range (0-%u)", owner ? owner : "?", gsi, PDM_GSI_COUNT - 1);
        return VERR_OUT_OF_RANGE;
    }
    struct pdm_irq *l = calloc(1, sizeof(*l));
    if (!l)
        return VERR_NO_MEMORY;
    l->owner = strdup(owner ? owner : "?");
    if (!l->owner) {
        free(l);
        return VERR_NO_MEMORY;
    }
    l->vm = vm;
    l->gsi = gsi;
    vm_lock(vm);
    l->next = vm->irq.lines;
    vm->irq.lines = l;
    vm_unlock(vm);
    *out = l;
    return 0;
}

void pdm_irq_destroy(struct pdm_irq *irq)
{
    if (!irq)
        return;
    struct vm *vm = irq->vm;
    vm_lock(vm);
    for (struct pdm_irq **pp = &vm->irq.lines; *pp; pp = &(*pp)->next) {
        if (*pp == irq) {
            *pp = irq->next;
            break;
        }
    }
    if (irq->level)
        gsi_update(vm, irq->gsi);
    vm_unlock(vm);
    free(irq->owner);
    free(irq);
}

void pdm_irq_set(struct pdm_irq *irq, bool level)
{
    struct vm *vm = irq->vm;
    vm_lock(vm);
    if (irq->level != level) {
        irq->level = level;
        gsi_update(vm, irq->gsi);
    }
    vm_unlock(vm);
}

void pdm_irq_pulse(struct pdm_irq *irq)
{
    struct vm *vm = irq->vm;
    vm_lock(vm);
    pdm_irq_set(irq, true);
    pdm_irq_set(irq, false);
    vm_unlock(vm);
}

unsigned pdm_irq_gsi(const struct pdm_irq *irq)
{
    return irq->gsi;
}

void pdm_irq_reroute(struct pdm_irq *irq, unsigned gsi)
{
    struct vm *vm = irq->vm;
    if (gsi >= PDM_GSI_COUNT || gsi == irq->gsi)
        return;
    vm_lock(vm);
    unsigned old = irq->gsi;
    irq->gsi = gsi;
    if (irq->level) {
        gsi_update(vm, old);
        gsi_update(vm, gsi);
    }
    vm_unlock(vm);
}

int pdm_irq_sink_add(struct vm *vm, pdm_irq_sink_fn *fn, void *opaque)
{
    struct irq_sink *s = calloc(1, sizeof(*s));
    if (!s)
        return VERR_NO_MEMORY;
    s->fn = fn;
    s->opaque = opaque;
    vm_lock(vm);
    struct irq_sink **pp = &vm->irq.sinks;
    while (*pp)
        pp = &(*pp)->next;
    *pp = s;
    vm_unlock(vm);
    return 0;
}

void pdm_irq_sink_remove(struct vm *vm, pdm_irq_sink_fn *fn, void *opaque)
{
    vm_lock(vm);
    for (struct irq_sink **pp = &vm->irq.sinks; *pp; pp = &(*pp)->next) {
        struct irq_sink *s = *pp;
        if (s->fn == fn && s->opaque == opaque) {
            *pp = s->next;
            free(s);
            break;
        }
    }
    vm_unlock(vm);
}

bool pdm_irq_gsi_level(struct vm *vm, unsigned gsi)
{
    return gsi < PDM_GSI_COUNT && vm->irq.level[gsi];
}

void irq_router_fini(struct vm *vm)
{
    while (vm->irq.lines) {
        struct pdm_irq *l = vm->irq.lines;
        vm->irq.lines = l->next;
        free(l->owner);
        free(l);
    }
    while (vm->irq.sinks) {
        struct irq_sink *s = vm->irq.sinks;
        vm->irq.sinks = s->next;
        free(s);
    }
}

/* ---- saved state ---- */

#define IRQ_OWNER_MAX 255

/* The lines list is newest first; saved state uses creation order, which a board rebuilds identically. */
static unsigned lines_collect(struct vm *vm, struct pdm_irq **out, unsigned max)
{
    unsigned n = 0;
    for (struct pdm_irq *l = vm->irq.lines; l; l = l->next, n++)
        if (out && n < max)
            out[n] = l;
    if (out)
        for (unsigned i = 0; i < n / 2 && n <= max; i++) {
            struct pdm_irq *t = out[i];
            out[i] = out[n - 1 - i];
            out[n - 1 - i] = t;
        }
    return n;
}

int irq_router_save(struct vm *vm, struct ssm *ssm)
{
    vm_lock(vm);
    unsigned n = lines_collect(vm, NULL, 0);
    struct pdm_irq **lines = calloc(n ? n : 1, sizeof(*lines));
    if (!lines) {
        vm_unlock(vm);
        return VERR_NO_MEMORY;
    }
    lines_collect(vm, lines, n);
    ssm_put_u32(ssm, n);
    for (unsigned i = 0; i < n; i++) {
        size_t len = strlen(lines[i]->owner);
        if (len > IRQ_OWNER_MAX)
            len = IRQ_OWNER_MAX;
        ssm_put_u8(ssm, (uint8_t)len);
        ssm_put_bytes(ssm, lines[i]->owner, len);
        ssm_put_u8(ssm, (uint8_t)lines[i]->gsi);
        ssm_put_bool(ssm, lines[i]->level);
    }
    vm_unlock(vm);
    free(lines);
    return ssm_status(ssm);
}

int irq_router_load(struct vm *vm, struct ssm *ssm)
{
    uint32_t n = 0;
    int rc = ssm_get_u32(ssm, &n);
    if (rc)
        return rc;
    vm_lock(vm);
    unsigned have = lines_collect(vm, NULL, 0);
    if (n != have) {
        vm_unlock(vm);
        LOG_ERR("saved state has %u interrupt lines, this VM has %u", n, have);
        return VERR_SSM_CORRUPT;
    }
    struct pdm_irq **lines = calloc(n ? n : 1, sizeof(*lines));
    uint8_t *gsi = calloc(n ? n : 1, 1);
    bool *level = calloc(n ? n : 1, sizeof(bool));
    if (!lines || !gsi || !level)
        rc = VERR_NO_MEMORY;
    if (!rc)
        lines_collect(vm, lines, n);
    /* Everything is read and checked before any wire changes. */
    for (unsigned i = 0; !rc && i < n; i++) {
        uint8_t len = 0;
        char owner[IRQ_OWNER_MAX + 1];
        if (ssm_get_u8(ssm, &len) || ssm_get_bytes(ssm, owner, len) || ssm_get_u8(ssm, &gsi[i]) ||
            ssm_get_bool(ssm, &level[i])) {
            rc = VERR_SSM_CORRUPT;
            break;
        }
        owner[len] = '\0';
        if (strncmp(owner, lines[i]->owner, IRQ_OWNER_MAX) != 0 || gsi[i] >= PDM_GSI_COUNT) {
            LOG_ERR("saved state: interrupt line %u is '%s' on GSI %u, this VM has '%s' there", i, owner, gsi[i],
                    lines[i]->owner);
            rc = VERR_SSM_CORRUPT;
        }
    }
    if (!rc) {
        for (unsigned i = 0; i < n; i++) {
            lines[i]->gsi = gsi[i];
            lines[i]->level = level[i];
        }
        /* The GSI levels follow the wires; the sinks restored their own view from their units. */
        memset(vm->irq.level, 0, sizeof(vm->irq.level));
        for (unsigned i = 0; i < n; i++)
            if (level[i])
                vm->irq.level[gsi[i]] = true;
    }
    vm_unlock(vm);
    free(lines);
    free(gsi);
    free(level);
    return rc;
}

void irq_router_quiet(struct vm *vm, bool quiet)
{
    vm_lock(vm);
    vm->irq.quiet = quiet;
    vm_unlock(vm);
}
