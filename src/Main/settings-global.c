/* settings-global.c - the global registry's model: registered machines, the media registry, preferences. */
#include <stdlib.h>
#include <string.h>

#include "settings-internal.h"

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
