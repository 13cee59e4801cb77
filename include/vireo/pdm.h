/* pdm.h - the device model API: device descriptors, instances, configuration, IRQ lines and the interrupt router. */
#ifndef VIREO_PDM_H
#define VIREO_PDM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vireo/vm.h"

struct pdm_dev; /* opaque: one device instance */
struct pdm_cfg; /* opaque: a device instance's key=value configuration */

/*
 * A device model is one table entry.  construct() follows a fixed order:
 * validate config keys, read config, create timers, I/O regions and IRQ lines,
 * then reset state.  A failing construct leaves nothing behind that destroy()
 * cannot free (destroy is called on the partially built instance).
 */
struct pdm_dev_desc {
    const char *name;        /* "i8254", "i8259", ... */
    const char *description; /* one line for humans */
    size_t state_size;       /* bytes of zeroed instance state, see pdm_dev_state() */
    uint32_t ssm_version;    /* current saved-state version */
    int (*construct)(struct pdm_dev *dev, const struct pdm_cfg *cfg);
    void (*reset)(struct pdm_dev *dev);
    int (*save)(struct pdm_dev *dev, struct ssm *ssm);
    /* Loads state saved by any version <= ssm_version. */
    int (*load)(struct pdm_dev *dev, struct ssm *ssm, uint32_t version);
    void (*destroy)(struct pdm_dev *dev);
};

/* Creates, constructs and registers an instance; devices reset in creation order. */
int pdm_dev_create(struct vm *vm, const struct pdm_dev_desc *desc, const char *instance_name,
                   const struct pdm_cfg *cfg, struct pdm_dev **out);
void *pdm_dev_state(struct pdm_dev *dev);
struct vm *pdm_dev_vm(const struct pdm_dev *dev);
const char *pdm_dev_name(const struct pdm_dev *dev);
const struct pdm_dev_desc *pdm_dev_desc(const struct pdm_dev *dev);
/* The instance named instance_name, or NULL. */
struct pdm_dev *pdm_dev_find(struct vm *vm, const char *instance_name);
/* Called by the core: reset all (creation order), destroy all (reverse order). */
void pdm_dev_reset_all(struct vm *vm);
void pdm_dev_destroy_all(struct vm *vm);
/* Saves every device as a unit (name, version, length, data); load checks names and versions. */
int pdm_dev_save_all(struct vm *vm, struct ssm *ssm);
int pdm_dev_load_all(struct vm *vm, struct ssm *ssm);

/* ---- Configuration ------------------------------------------------------- */

int pdm_cfg_create(struct pdm_cfg **out);
void pdm_cfg_destroy(struct pdm_cfg *cfg);
/* Sets (or replaces) key to a copy of value. */
int pdm_cfg_set(struct pdm_cfg *cfg, const char *key, const char *value);
int pdm_cfg_set_u64(struct pdm_cfg *cfg, const char *key, uint64_t value);
/*
 * Fails with VERR_CFG_UNKNOWN_KEY (and logs the key and device) when cfg has a key not
 * in the NULL-terminated allowed list.  A NULL cfg is empty.
 */
int pdm_cfg_validate(const struct pdm_cfg *cfg, const char *dev_name, const char *const *allowed);
/* The value, or def when absent.  VERR_CFG_BAD_VALUE (logged) when present but not a number. */
int pdm_cfg_get_u64(const struct pdm_cfg *cfg, const char *key, uint64_t def, uint64_t *out);
int pdm_cfg_get_bool(const struct pdm_cfg *cfg, const char *key, bool def, bool *out);
/* An interrupt line number (key "irq"), def when absent; VERR_CFG_BAD_VALUE (logged) unless below PDM_GSI_COUNT. */
int pdm_cfg_get_gsi(const struct pdm_cfg *cfg, const char *dev_name, unsigned def, unsigned *out);
/* The stored string, or def when absent (pointer valid while cfg lives). */
const char *pdm_cfg_get_str(const struct pdm_cfg *cfg, const char *key, const char *def);

/* ---- IRQ lines and the interrupt router ---------------------------------- */

/*
 * The board creates the router's inputs (GSIs 0..PDM_GSI_COUNT-1).  Each source
 * gets its own line onto a GSI; the router ORs all lines of a GSI (shared level-
 * triggered PCI interrupts) and forwards level changes to every sink (the PIC now,
 * the I/O APIC later).  Devices never call an interrupt controller directly.
 */
#define PDM_GSI_COUNT 24

struct pdm_irq; /* opaque: one source's wire into a GSI */

int pdm_irq_create(struct vm *vm, unsigned gsi, const char *owner, struct pdm_irq **out);
void pdm_irq_destroy(struct pdm_irq *irq);
/* Drives the wire high or low (call with the VM lock held, as device code always is). */
void pdm_irq_set(struct pdm_irq *irq, bool level);
/* High then low: an edge for edge-triggered inputs. */
void pdm_irq_pulse(struct pdm_irq *irq);
unsigned pdm_irq_gsi(const struct pdm_irq *irq);
/* Moves the wire to another GSI (PIRQ routing), carrying its level. */
void pdm_irq_reroute(struct pdm_irq *irq, unsigned gsi);

typedef void pdm_irq_sink_fn(void *opaque, unsigned gsi, bool level);
int pdm_irq_sink_add(struct vm *vm, pdm_irq_sink_fn *fn, void *opaque);
/* Removes the sink added with the same fn and opaque (an interrupt controller's destroy). */
void pdm_irq_sink_remove(struct vm *vm, pdm_irq_sink_fn *fn, void *opaque);
/* The current ORed level of a GSI (tests, debugging). */
bool pdm_irq_gsi_level(struct vm *vm, unsigned gsi);

#endif
