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
