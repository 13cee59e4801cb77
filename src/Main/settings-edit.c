/* settings-edit.c - lookups and edits on the models: controllers, attachments, extra data, snapshots, the global registry. */
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

/* ---- The global registry ---------------------------------------------------------------------------- */

int cfg_global_new(struct cfg_global **out)
{
    struct cfg_global *g = calloc(1, sizeof(*g));
    if (!g)
        return VERR_NO_MEMORY;
    g->schema_version = CFG_SCHEMA_VERSION;
    *out = g;
    return 0;
}

void cfg_global_free(struct cfg_global *g)
{
    if (!g)
        return;
    free(g->default_machine_folder);
    for (size_t i = 0; i < g->machine_count; i++)
        free(g->machines[i].path);
    free(g->machines);
    for (size_t i = 0; i < g->medium_count; i++) {
        free(g->media[i].location);
        free(g->media[i].format);
    }
    free(g->media);
    for (size_t i = 0; i < g->extra_count; i++) {
        free(g->extra[i].key);
        free(g->extra[i].value);
    }
    free(g->extra);
    free(g);
}

/* schema_version says where the registry came from and is not compared. */
bool cfg_global_equal(const struct cfg_global *a, const struct cfg_global *b)
{
    if (!cfg_str_equal(a->default_machine_folder, b->default_machine_folder) ||
        a->machine_count != b->machine_count || a->medium_count != b->medium_count ||
        a->extra_count != b->extra_count)
        return false;
    for (size_t i = 0; i < a->machine_count; i++) {
        if (memcmp(&a->machines[i].uuid, &b->machines[i].uuid, sizeof(struct rt_uuid)) ||
            !cfg_str_equal(a->machines[i].path, b->machines[i].path))
            return false;
    }
    for (size_t i = 0; i < a->medium_count; i++) {
        const struct cfg_medium *x = &a->media[i], *y = &b->media[i];
        if (memcmp(&x->uuid, &y->uuid, sizeof(x->uuid)) || !cfg_str_equal(x->location, y->location) ||
            x->type != y->type || !cfg_str_equal(x->format, y->format) ||
            memcmp(&x->parent, &y->parent, sizeof(x->parent)) || x->readonly != y->readonly)
            return false;
    }
    for (size_t i = 0; i < a->extra_count; i++) {
        if (!cfg_str_equal(a->extra[i].key, b->extra[i].key) || !cfg_str_equal(a->extra[i].value, b->extra[i].value))
            return false;
    }
    return true;
}

struct cfg_medium *cfg_medium_find(struct cfg_global *g, const struct rt_uuid *uuid)
{
    for (size_t i = 0; uuid && i < g->medium_count; i++) {
        if (!memcmp(&g->media[i].uuid, uuid, sizeof(*uuid)))
            return &g->media[i];
    }
    return NULL;
}

struct cfg_medium *cfg_medium_find_location(struct cfg_global *g, const char *abs_path)
{
    for (size_t i = 0; abs_path && i < g->medium_count; i++) {
        if (!strcmp(g->media[i].location, abs_path))
            return &g->media[i];
    }
    return NULL;
}

int cfg_medium_add(struct cfg_global *g, const struct cfg_medium *m)
{
    char buf[256];
    if (rt_uuid_is_null(&m->uuid) || cfg_check_abs_path("location", m->location, buf, sizeof(buf)) ||
        !cfg_is_valid_medium_format(m->format) || (unsigned)m->type > CFG_MEDIUM_FLOPPY ||
        !cfg_str_is_xml_safe(m->location))
        return VERR_INVALID_PARAMETER;
    if (cfg_medium_find(g, &m->uuid) || cfg_medium_find_location(g, m->location))
        return VERR_ALREADY_EXISTS;
    /* Parents are registered first; the file lists media in this order, so the reader can check it. */
    if (!rt_uuid_is_null(&m->parent) && !cfg_medium_find(g, &m->parent))
        return VERR_NOT_FOUND;
    bool ok = true;
    char *location = cfg_strdup_opt(m->location, &ok);
    char *format = cfg_strdup_opt(m->format, &ok);
    struct cfg_medium *e = ok ? cfg_array_push((void **)&g->media, &g->medium_count, sizeof(*e)) : NULL;
    if (!e) {
        free(location);
        free(format);
        return VERR_NO_MEMORY;
    }
    *e = *m;
    e->location = location;
    e->format = format;
    return 0;
}

int cfg_medium_remove(struct cfg_global *g, const struct rt_uuid *uuid)
{
    struct cfg_medium *m = cfg_medium_find(g, uuid);
    if (!m)
        return VERR_NOT_FOUND;
    for (size_t i = 0; i < g->medium_count; i++) {
        if (!memcmp(&g->media[i].parent, uuid, sizeof(*uuid)))
            return VERR_BUSY; /* a differencing image still sits on it */
    }
    size_t idx = (size_t)(m - g->media);
    free(m->location);
    free(m->format);
    memmove(m, m + 1, (g->medium_count - idx - 1) * sizeof(*m));
    if (--g->medium_count == 0) {
        free(g->media);
        g->media = NULL;
    }
    return 0;
}

int cfg_machine_entry_add(struct cfg_global *g, const struct rt_uuid *uuid, const char *path)
{
    char buf[256];
    if (!uuid || rt_uuid_is_null(uuid) || cfg_check_abs_path("path", path, buf, sizeof(buf)) ||
        !cfg_str_is_xml_safe(path))
        return VERR_INVALID_PARAMETER;
    for (size_t i = 0; i < g->machine_count; i++) {
        if (!memcmp(&g->machines[i].uuid, uuid, sizeof(*uuid)) || !strcmp(g->machines[i].path, path))
            return VERR_ALREADY_EXISTS;
    }
    char *copy = strdup(path);
    struct cfg_machine_entry *e = copy ? cfg_array_push((void **)&g->machines, &g->machine_count, sizeof(*e)) : NULL;
    if (!e) {
        free(copy);
        return VERR_NO_MEMORY;
    }
    e->uuid = *uuid;
    e->path = copy;
    return 0;
}

int cfg_machine_entry_remove(struct cfg_global *g, const struct rt_uuid *uuid)
{
    for (size_t i = 0; uuid && i < g->machine_count; i++) {
        if (!memcmp(&g->machines[i].uuid, uuid, sizeof(*uuid))) {
            free(g->machines[i].path);
            memmove(&g->machines[i], &g->machines[i + 1], (g->machine_count - i - 1) * sizeof(g->machines[0]));
            if (--g->machine_count == 0) {
                free(g->machines);
                g->machines = NULL;
            }
            return 0;
        }
    }
    return VERR_NOT_FOUND;
}
