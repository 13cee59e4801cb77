/* pdm.c - device instances (create, reset, save/load, destroy) and their key=value configuration. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm-internal.h"

#define LOG_COMPONENT "pdm"
#define PDM_UNIT_MAGIC 0x56444556u /* "VDEV" */

struct pdm_cfg_entry {
    char *key;
    char *value;
    struct pdm_cfg_entry *next;
};
struct pdm_cfg {
    struct pdm_cfg_entry *entries;
};

int pdm_dev_create(struct vm *vm, const struct pdm_dev_desc *desc, const char *instance_name,
                   const struct pdm_cfg *cfg, struct pdm_dev **out)
{
    if (!vm || !desc || !desc->construct || !out)
        return VERR_INVALID_PARAMETER;
    const char *name = instance_name ? instance_name : desc->name;
    if (pdm_dev_find(vm, name)) {
        LOG_ERR("a device named '%s' already exists", name);
        return VERR_ALREADY_EXISTS;
    }
    struct pdm_dev *dev = calloc(1, sizeof(*dev));
    if (!dev)
        return VERR_NO_MEMORY;
    dev->desc = desc;
    dev->vm = vm;
    dev->name = strdup(name);
    dev->state = calloc(1, desc->state_size ? desc->state_size : 1);
    if (!dev->name || !dev->state) {
        free(dev->name);
        free(dev->state);
        free(dev);
        return VERR_NO_MEMORY;
    }
    vm_lock(vm);
    unsigned errors_before = rt_log_error_count();
    int rc = desc->construct(dev, cfg);
    if (rc) {
        /* One error line per problem: the device usually said why already. */
        if (rt_log_error_count() == errors_before)
            LOG_ERR("device '%s' (%s) failed to construct: %s", name, desc->name, rt_err_str(rc));
        else
            LOG_INFO("device '%s' (%s) failed to construct: %s", name, desc->name, rt_err_str(rc));
        if (desc->destroy)
            desc->destroy(dev);
        vm_unlock(vm);
        free(dev->name);
        free(dev->state);
        free(dev);
        return rc;
    }
    struct pdm_dev **pp = &vm->devices;
    while (*pp)
        pp = &(*pp)->next;
    *pp = dev;
    vm_unlock(vm);
    *out = dev;
    return 0;
}

void *pdm_dev_state(struct pdm_dev *dev)
{
    return dev->state;
}

struct vm *pdm_dev_vm(const struct pdm_dev *dev)
{
    return dev->vm;
}

const char *pdm_dev_name(const struct pdm_dev *dev)
{
    return dev->name;
}

const struct pdm_dev_desc *pdm_dev_desc(const struct pdm_dev *dev)
{
    return dev->desc;
}

struct pdm_dev *pdm_dev_find(struct vm *vm, const char *instance_name)
{
    for (struct pdm_dev *d = vm->devices; d; d = d->next)
        if (strcmp(d->name, instance_name) == 0)
            return d;
    return NULL;
}

void pdm_dev_reset_all(struct vm *vm)
{
    vm_lock(vm);
    for (struct pdm_dev *d = vm->devices; d; d = d->next)
        if (d->desc->reset)
            d->desc->reset(d);
    vm_unlock(vm);
}

static void destroy_from(struct pdm_dev *d)
{
    if (!d)
        return;
    destroy_from(d->next); /* reverse creation order */
    if (d->desc->destroy)
        d->desc->destroy(d);
    free(d->name);
    free(d->state);
    free(d);
}

void pdm_dev_destroy_all(struct vm *vm)
{
    vm_lock(vm);
    struct pdm_dev *list = vm->devices;
    vm->devices = NULL;
    destroy_from(list);
    vm_unlock(vm);
}

/*
 * Each device is one unit: magic, name, version, then the device's own bytes with
 * their length, so a loader can tell a unit from another device or version.
 */
int pdm_dev_save_all(struct vm *vm, struct ssm *ssm)
{
    int rc = 0;
    vm_lock(vm);
    for (struct pdm_dev *d = vm->devices; d && !rc; d = d->next) {
        if (!d->desc->save)
            continue;
        struct ssm *unit;
        rc = ssm_create(&unit);
        if (rc)
            break;
        rc = d->desc->save(d, unit);
        if (!rc)
            rc = ssm_status(unit);
        if (!rc) {
            size_t len;
            const void *data = ssm_data(unit, &len);
            size_t name_len = strlen(d->name);
            ssm_put_u32(ssm, PDM_UNIT_MAGIC);
            ssm_put_u32(ssm, (uint32_t)name_len);
            ssm_put_bytes(ssm, d->name, name_len);
            ssm_put_u32(ssm, d->desc->ssm_version);
            ssm_put_u64(ssm, len);
            ssm_put_bytes(ssm, data, len);
            rc = ssm_status(ssm);
        }
        ssm_destroy(unit);
    }
    vm_unlock(vm);
    return rc;
}

int pdm_dev_load_all(struct vm *vm, struct ssm *ssm)
{
    int rc = 0;
    vm_lock(vm);
    for (struct pdm_dev *d = vm->devices; d && !rc; d = d->next) {
        if (!d->desc->load)
            continue;
        uint32_t magic, name_len, version;
        uint64_t len;
        char name[256];
        if (ssm_get_u32(ssm, &magic) || magic != PDM_UNIT_MAGIC || ssm_get_u32(ssm, &name_len) ||
            name_len >= sizeof(name) || ssm_get_bytes(ssm, name, name_len)) {
            rc = VERR_SSM_CORRUPT;
            break;
        }
        name[name_len] = '\0';
        if (strcmp(name, d->name) != 0) {
            LOG_ERR("saved state has unit '%s' where device '%s' was expected", name, d->name);
            rc = VERR_SSM_CORRUPT;
            break;
        }
        if (ssm_get_u32(ssm, &version) || ssm_get_u64(ssm, &len)) {
            rc = VERR_SSM_CORRUPT;
            break;
        }
        if (version == 0 || version > d->desc->ssm_version) {
            LOG_ERR("device '%s': saved-state version %u is not supported (this build: %u)", name, version,
                    d->desc->ssm_version);
            rc = VERR_SSM_VERSION;
            break;
        }
        void *buf = malloc(len ? len : 1);
        if (!buf) {
            rc = VERR_NO_MEMORY;
            break;
        }
        struct ssm *unit = NULL;
        rc = ssm_get_bytes(ssm, buf, len);
        if (!rc)
            rc = ssm_open(buf, len, &unit);
        if (!rc) {
            rc = d->desc->load(d, unit, version);
            if (!rc)
                rc = ssm_status(unit);
            if (rc)
                LOG_ERR("device '%s': loading saved state failed: %s", name, rt_err_str(rc));
        }
        ssm_destroy(unit);
        free(buf);
    }
    vm_unlock(vm);
    return rc;
}

/* ---- configuration ---- */

int pdm_cfg_create(struct pdm_cfg **out)
{
    *out = calloc(1, sizeof(**out));
    return *out ? 0 : VERR_NO_MEMORY;
}

void pdm_cfg_destroy(struct pdm_cfg *cfg)
{
    if (!cfg)
        return;
    while (cfg->entries) {
        struct pdm_cfg_entry *e = cfg->entries;
        cfg->entries = e->next;
        free(e->key);
        free(e->value);
        free(e);
    }
    free(cfg);
}

static struct pdm_cfg_entry *cfg_find(const struct pdm_cfg *cfg, const char *key)
{
    if (!cfg)
        return NULL;
    for (struct pdm_cfg_entry *e = cfg->entries; e; e = e->next)
        if (strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

int pdm_cfg_set(struct pdm_cfg *cfg, const char *key, const char *value)
{
    if (!cfg || !key || !value)
        return VERR_INVALID_PARAMETER;
    char *v = strdup(value);
    if (!v)
        return VERR_NO_MEMORY;
    struct pdm_cfg_entry *e = cfg_find(cfg, key);
    if (e) {
        free(e->value);
        e->value = v;
        return 0;
    }
    e = calloc(1, sizeof(*e));
    if (!e || !(e->key = strdup(key))) {
        free(e);
        free(v);
        return VERR_NO_MEMORY;
    }
    e->value = v;
    struct pdm_cfg_entry **pp = &cfg->entries;
    while (*pp)
        pp = &(*pp)->next;
    *pp = e;
    return 0;
}

int pdm_cfg_set_u64(struct pdm_cfg *cfg, const char *key, uint64_t value)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%llu", (unsigned long long)value);
    return pdm_cfg_set(cfg, key, buf);
}

int pdm_cfg_validate(const struct pdm_cfg *cfg, const char *dev_name, const char *const *allowed)
{
    if (!cfg)
        return 0;
    for (struct pdm_cfg_entry *e = cfg->entries; e; e = e->next) {
        bool ok = false;
        for (const char *const *a = allowed; a && *a && !ok; a++)
            ok = strcmp(*a, e->key) == 0;
        if (!ok) {
            LOG_ERR("device '%s': unknown configuration key '%s'", dev_name, e->key);
            return VERR_CFG_UNKNOWN_KEY;
        }
    }
    return 0;
}

int pdm_cfg_get_u64(const struct pdm_cfg *cfg, const char *key, uint64_t def, uint64_t *out)
{
    struct pdm_cfg_entry *e = cfg_find(cfg, key);
    if (!e) {
        *out = def;
        return 0;
    }
    if (rt_str_to_u64(e->value, out) != 0) {
        LOG_ERR("configuration key '%s': '%s' is not a number", key, e->value);
        return VERR_CFG_BAD_VALUE;
    }
    return 0;
}

int pdm_cfg_get_gsi(const struct pdm_cfg *cfg, const char *dev_name, unsigned def, unsigned *out)
{
    uint64_t gsi;
    int rc = pdm_cfg_get_u64(cfg, "irq", def, &gsi);
    if (rc)
        return rc;
    if (gsi >= PDM_GSI_COUNT) {
        LOG_ERR("device '%s': irq=%llu is out of range (0-%u)", dev_name, (unsigned long long)gsi,
                PDM_GSI_COUNT - 1);
        return VERR_CFG_BAD_VALUE;
    }
    *out = (unsigned)gsi;
    return 0;
}

int pdm_cfg_get_bool(const struct pdm_cfg *cfg, const char *key, bool def, bool *out)
{
    struct pdm_cfg_entry *e = cfg_find(cfg, key);
    if (!e) {
        *out = def;
        return 0;
    }
    const char *v = e->value;
    if (!strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "on"))
        *out = true;
    else if (!strcmp(v, "0") || !strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "off"))
        *out = false;
    else {
        LOG_ERR("configuration key '%s': '%s' is not a boolean (use true or false)", key, v);
        return VERR_CFG_BAD_VALUE;
    }
    return 0;
}

const char *pdm_cfg_get_str(const struct pdm_cfg *cfg, const char *key, const char *def)
{
    struct pdm_cfg_entry *e = cfg_find(cfg, key);
    return e ? e->value : def;
}
