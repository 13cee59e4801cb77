/* settings-edit.c - lookups and edits on the machine model: controllers, attachments, extra data, the snapshot tree. */
#include <stdlib.h>
#include <string.h>

#include "settings-internal.h"

struct cfg_controller *cfg_controller_find(struct cfg_hardware *hw, const char *name)
{
    for (size_t i = 0; name && i < hw->controller_count; i++) {
        if (!strcmp(hw->controllers[i].name, name))
            return &hw->controllers[i];
    }
    return NULL;
}

int cfg_controller_add(struct cfg_hardware *hw, const char *name, enum cfg_bus bus, unsigned port_count)
{
    if (!name || !cfg_str_is_xml_safe(name))
        return VERR_INVALID_PARAMETER;
    if (cfg_controller_find(hw, name))
        return VERR_ALREADY_EXISTS;
    struct cfg_controller probe = { .name = (char *)name, .bus = bus, .port_count = port_count };
    char buf[256];
    if (cfg_check_controller(&probe, buf, sizeof(buf)))
        return VERR_OUT_OF_RANGE;
    char *copy = strdup(name);
    if (!copy)
        return VERR_NO_MEMORY;
    struct cfg_controller *c = cfg_array_push((void **)&hw->controllers, &hw->controller_count, sizeof(*c));
    if (!c) {
        free(copy);
        return VERR_NO_MEMORY;
    }
    c->name = copy;
    c->bus = bus;
    c->port_count = port_count;
    return 0;
}

int cfg_controller_remove(struct cfg_hardware *hw, const char *name)
{
    struct cfg_controller *c = cfg_controller_find(hw, name);
    if (!c)
        return VERR_NOT_FOUND;
    size_t kept = 0;
    for (size_t i = 0; i < hw->attachment_count; i++) {
        if (!strcmp(hw->attachments[i].controller, name))
            free(hw->attachments[i].controller);
        else
            hw->attachments[kept++] = hw->attachments[i];
    }
    hw->attachment_count = kept;
    if (kept == 0) {
        free(hw->attachments);
        hw->attachments = NULL;
    }
    size_t idx = (size_t)(c - hw->controllers);
    free(c->name);
    memmove(c, c + 1, (hw->controller_count - idx - 1) * sizeof(*c));
    if (--hw->controller_count == 0) {
        free(hw->controllers);
        hw->controllers = NULL;
    }
    return 0;
}

struct cfg_attachment *cfg_attachment_find(struct cfg_hardware *hw, const char *controller, unsigned port,
                                           unsigned device)
{
    for (size_t i = 0; controller && i < hw->attachment_count; i++) {
        struct cfg_attachment *a = &hw->attachments[i];
        if (!strcmp(a->controller, controller) && a->port == port && a->device == device)
            return a;
    }
    return NULL;
}

int cfg_attachment_set(struct cfg_hardware *hw, const struct cfg_attachment *att)
{
    if (!att->controller)
        return VERR_INVALID_PARAMETER;
    if (!cfg_controller_find(hw, att->controller))
        return VERR_NOT_FOUND;
    struct cfg_attachment *old = cfg_attachment_find(hw, att->controller, att->port, att->device);
    size_t self = old ? (size_t)(old - hw->attachments) : SIZE_MAX;
    char buf[256];
    if (cfg_check_attachment(hw, att, self, buf, sizeof(buf)))
        return VERR_OUT_OF_RANGE;
    char *name = strdup(att->controller);
    if (!name)
        return VERR_NO_MEMORY;
    if (old) {
        free(old->controller);
        *old = *att;
        old->controller = name;
        return 0;
    }
    struct cfg_attachment *a = cfg_array_push((void **)&hw->attachments, &hw->attachment_count, sizeof(*a));
    if (!a) {
        free(name);
        return VERR_NO_MEMORY;
    }
    *a = *att;
    a->controller = name;
    return 0;
}

int cfg_attachment_remove(struct cfg_hardware *hw, const char *controller, unsigned port, unsigned device)
{
    struct cfg_attachment *a = cfg_attachment_find(hw, controller, port, device);
    if (!a)
        return VERR_NOT_FOUND;
    size_t idx = (size_t)(a - hw->attachments);
    free(a->controller);
    memmove(a, a + 1, (hw->attachment_count - idx - 1) * sizeof(*a));
    if (--hw->attachment_count == 0) {
        free(hw->attachments);
        hw->attachments = NULL;
    }
    return 0;
}

/* ---- Extra data ---------------------------------------------------------------------------------------- */

const char *cfg_extra_get(const struct cfg_extra *extra, size_t count, const char *key)
{
    for (size_t i = 0; key && i < count; i++) {
        if (!strcmp(extra[i].key, key))
            return extra[i].value;
    }
    return NULL;
}

int cfg_extra_set(struct cfg_extra **extra, size_t *count, const char *key, const char *value)
{
    if (!key || !*key)
        return VERR_INVALID_PARAMETER;
    size_t i = 0;
    while (i < *count && strcmp((*extra)[i].key, key))
        i++;
    if (!value) {
        if (i == *count)
            return 0;
        free((*extra)[i].key);
        free((*extra)[i].value);
        memmove(&(*extra)[i], &(*extra)[i + 1], (*count - i - 1) * sizeof(**extra));
        if (--*count == 0) {
            free(*extra);
            *extra = NULL;
        }
        return 0;
    }
    char *copy = strdup(value);
    if (!copy)
        return VERR_NO_MEMORY;
    if (i < *count) {
        free((*extra)[i].value);
        (*extra)[i].value = copy;
        return 0;
    }
    char *key_copy = strdup(key);
    struct cfg_extra *e = key_copy ? cfg_array_push((void **)extra, count, sizeof(**extra)) : NULL;
    if (!e) {
        free(key_copy);
        free(copy);
        return VERR_NO_MEMORY;
    }
    e->key = key_copy;
    e->value = copy;
    return 0;
}

/* ---- The snapshot tree (recursion depth is bounded by the reader's 256 levels) ----------------------- */

static struct cfg_snapshot *cfg_snapshot_search(struct cfg_snapshot *list, size_t count, const struct rt_uuid *uuid,
                                                const char *name, const struct cfg_snapshot *child,
                                                struct cfg_snapshot *parent, struct cfg_snapshot **parent_out)
{
    for (size_t i = 0; i < count; i++) {
        struct cfg_snapshot *s = &list[i];
        if ((uuid && !memcmp(&s->uuid, uuid, sizeof(*uuid))) || (name && s->name && !strcmp(s->name, name)) ||
            (child && s == child)) {
            if (parent_out)
                *parent_out = parent;
            return s;
        }
        struct cfg_snapshot *hit = cfg_snapshot_search(s->children, s->child_count, uuid, name, child, s, parent_out);
        if (hit)
            return hit;
    }
    return NULL;
}

struct cfg_snapshot *cfg_snapshot_find(struct cfg_machine *m, const struct rt_uuid *uuid)
{
    if (!uuid || rt_uuid_is_null(uuid))
        return NULL;
    return cfg_snapshot_search(m->snapshots, m->snapshot_count, uuid, NULL, NULL, NULL, NULL);
}

struct cfg_snapshot *cfg_snapshot_find_name(struct cfg_machine *m, const char *name)
{
    if (!name)
        return NULL;
    return cfg_snapshot_search(m->snapshots, m->snapshot_count, NULL, name, NULL, NULL, NULL);
}

struct cfg_snapshot *cfg_snapshot_parent(struct cfg_machine *m, const struct cfg_snapshot *snap)
{
    struct cfg_snapshot *parent = NULL;
    if (!snap || !cfg_snapshot_search(m->snapshots, m->snapshot_count, NULL, NULL, snap, NULL, &parent))
        return NULL;
    return parent;
}
