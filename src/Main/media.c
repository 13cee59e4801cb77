/* media.c - the media registry as objects: finding, creating, opening (registering), closing media, their users, and the differencing images snapshots are made of. */

/*
 * Registry entries hold absolute paths with the folder's symbolic links resolved, so
 * that one image reached two ways is one medium.  A medium in use (attached to any
 * machine's current state or snapshot, or carrying a registered differencing image)
 * cannot be closed: closing it would leave a machine naming a medium nobody can find.
 */

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "machine-internal.h"

#define LOG_COMPONENT "machine"

#define MIB (1024ull * 1024)

/* The canonical location of an image path (see above); malloc'ed. */
static char *mach_medium_location(const char *path)
{
    char *abs = mach_abs_path(path);
    if (!abs)
        return NULL;
    char *dir = rt_path_dirname(abs);
    char real[PATH_MAX];
    char *out = NULL;
    if (dir && realpath(dir, real))
        out = rt_path_join(real, rt_path_basename(abs));
    free(dir);
    if (out) {
        free(abs);
        return out;
    }
    return abs;
}

static int mach_medium_copy(struct cfg_medium *dst, const struct cfg_medium *src)
{
    *dst = *src;
    dst->location = src->location ? strdup(src->location) : NULL;
    dst->format = src->format ? strdup(src->format) : NULL;
    if ((src->location && !dst->location) || (src->format && !dst->format)) {
        mach_medium_clear(dst);
        return VERR_NO_MEMORY;
    }
    return 0;
}

void mach_medium_clear(struct cfg_medium *m)
{
    if (!m)
        return;
    free(m->location);
    free(m->format);
    memset(m, 0, sizeof(*m));
}

/* Resolves a UUID, a location or a file name in g (see mach_medium_find). */
static int mach_medium_resolve(struct cfg_global *g, const char *s, struct cfg_medium **out, struct cfg_error *err)
{
    *out = NULL;
    if (!s || !*s)
        return mach_fail(err, VERR_INVALID_PARAMETER, "no medium UUID or path given");
    struct rt_uuid uuid;
    if (rt_uuid_parse(s, &uuid) == 0 && (*out = cfg_medium_find(g, &uuid)) != NULL)
        return 0;
    char *loc = mach_medium_location(s);
    if (!loc)
        return VERR_NO_MEMORY;
    *out = cfg_medium_find_location(g, loc);
    free(loc);
    if (*out)
        return 0;
    if (!strchr(s, '/')) {
        size_t hits = 0;
        for (size_t i = 0; i < g->medium_count; i++) {
            if (!strcmp(rt_path_basename(g->media[i].location), s)) {
                if (!hits++)
                    *out = &g->media[i];
            }
        }
        if (hits == 1)
            return 0;
        if (hits > 1) {
            *out = NULL;
            return mach_fail(err, VERR_INVALID_PARAMETER, "%zu registered media are named '%s'; use the path or UUID",
                             hits, s);
        }
    }
    return mach_fail(err, VERR_NOT_FOUND, "no registered medium has the UUID, path or file name '%s'", s);
}

static int mach_global_read(struct cfg_global **g, struct cfg_error *err)
{
    char *gpath = cfg_global_path();
    int rc = gpath ? cfg_global_load(gpath, g, err) : VERR_NO_MEMORY;
    free(gpath);
    return rc;
}

int mach_medium_find(const char *uuid_or_path, struct cfg_medium *out, struct cfg_error *err)
{
    memset(out, 0, sizeof(*out));
    struct cfg_global *g = NULL;
    int rc = mach_global_read(&g, err);
    struct cfg_medium *md = NULL;
    if (rc == 0)
        rc = mach_medium_resolve(g, uuid_or_path, &md, err);
    if (rc == 0)
        rc = mach_medium_copy(out, md);
    cfg_global_free(g);
    return rc;
}

int mach_medium_list(enum cfg_medium_type type, struct cfg_medium **out, size_t *count, struct cfg_error *err)
{
    *out = NULL;
    *count = 0;
    struct cfg_global *g = NULL;
    int rc = mach_global_read(&g, err);
    if (rc < 0)
        return rc;
    struct cfg_medium *list = calloc(g->medium_count ? g->medium_count : 1, sizeof(*list));
    size_t n = 0;
    if (!list)
        rc = VERR_NO_MEMORY;
    for (size_t i = 0; rc == 0 && i < g->medium_count; i++) {
        if (g->media[i].type != type)
            continue;
        rc = mach_medium_copy(&list[n], &g->media[i]);
        if (rc == 0)
            n++;
    }
    cfg_global_free(g);
    if (rc < 0) {
        mach_medium_list_free(list, n);
        return rc;
    }
    *out = list;
    *count = n;
    return 0;
}

void mach_medium_list_free(struct cfg_medium *media, size_t count)
{
    for (size_t i = 0; media && i < count; i++)
        mach_medium_clear(&media[i]);
    free(media);
}

/* ---- Users ----------------------------------------------------------------------------------- */

int mach_media_used_by_others(struct cfg_global *g, const struct rt_uuid *skip, struct mach_uuid_set *out)
{
    for (size_t i = 0; i < g->machine_count; i++) {
        if (skip && !memcmp(g->machines[i].uuid.bytes, skip->bytes, 16))
            continue;
        struct cfg_machine *m = NULL;
        struct cfg_error lerr;
        if (cfg_machine_load(g->machines[i].path, &m, &lerr) < 0) {
            LOG_WARN("%s: skipped while looking for media users: %s", g->machines[i].path, lerr.msg);
            continue;
        }
        int rc = mach_media_used(m, false, out);
        cfg_machine_free(m);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int mach_media_remove(struct cfg_global *g, const struct mach_uuid_set *set)
{
    size_t left = set->n;
    bool *gone = calloc(set->n ? set->n : 1, sizeof(*gone));
    if (!gone)
        return VERR_NO_MEMORY;
    int rc = 0;
    for (bool progress = true; left && progress;) {
        progress = false;
        for (size_t i = 0; i < set->n; i++) {
            if (gone[i])
                continue;
            int r = cfg_medium_remove(g, &set->v[i]);
            if (r == VERR_BUSY)
                continue; /* a child is still there: next round */
            gone[i] = true;
            left--;
            progress = true;
        }
    }
    if (left)
        rc = VERR_BUSY;
    free(gone);
    return rc;
}

/* The names of the registered machines that use uuid (all, or only the first one), malloc'ed. */
static int mach_medium_user_names(struct cfg_global *g, const struct rt_uuid *uuid, char ***names, size_t *count,
                                  bool all)
{
    *names = NULL;
    *count = 0;
    for (size_t i = 0; i < g->machine_count; i++) {
        struct cfg_machine *m = NULL;
        struct cfg_error lerr;
        if (cfg_machine_load(g->machines[i].path, &m, &lerr) < 0)
            continue;
        struct mach_uuid_set used = {0};
        int rc = mach_media_used(m, false, &used);
        bool uses = rc == 0 && mach_uuid_set_has(&used, uuid);
        mach_uuid_set_free(&used);
        if (uses) {
            char **v = realloc(*names, (*count + 1) * sizeof(*v));
            char *n = strdup(m->name);
            if (!v || !n) {
                free(n);
                if (v)
                    *names = v;
                rc = VERR_NO_MEMORY;
            } else {
                *names = v;
                v[(*count)++] = n;
            }
        }
        cfg_machine_free(m);
        if (rc < 0)
            return rc;
        if (uses && !all)
            break;
    }
    return 0;
}

static void mach_names_free(char **names, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(names[i]);
    free(names);
}

int mach_medium_users(const struct rt_uuid *uuid, char ***names, size_t *count, struct cfg_error *err)
{
    *names = NULL;
    *count = 0;
    struct cfg_global *g = NULL;
    int rc = mach_global_read(&g, err);
    if (rc == 0)
        rc = mach_medium_user_names(g, uuid, names, count, true);
    cfg_global_free(g);
    return rc;
}

/* ---- Creating, opening, closing --------------------------------------------------------------- */

static int mach_medium_register(struct mach_txn *t, const struct rt_uuid *uuid, const char *location,
                                enum cfg_medium_type type, const char *format, const struct rt_uuid *parent,
                                bool readonly, struct cfg_error *err)
{
    struct cfg_medium md = {.uuid = *uuid, .location = (char *)location, .type = type, .format = (char *)format,
                            .readonly = readonly};
    if (parent)
        md.parent = *parent;
    int rc = cfg_medium_add(t->g, &md);
    if (rc < 0)
        return mach_fail(err, rc, "%s: cannot register it: %s", location, rt_err_str(rc));
    return 0;
}

int mach_medium_clone(const char *src, const char *dst, struct blk_create_params *params, blk_progress_fn *progress,
                     void *opaque, struct rt_uuid *uuid, struct cfg_error *err)
{
    if (rt_path_exists(dst))
        return mach_fail(err, VERR_ALREADY_EXISTS, "medium '%s' already exists; will not overwrite it", dst);
    struct blk_image *img = NULL;
    int rc = blk_open(src, BLK_FMT_AUTO, BLK_OPEN_READONLY, &img);
    if (rc < 0)
        return mach_fail(err, rc, "cannot open medium '%s': %s%s", src, rt_err_str(rc),
                         rc == VERR_BUSY ? " (a running VM uses it)" : "");
    if (params->format == BLK_FMT_AUTO) {
        /* The source's format where it can be written, VDI otherwise (VMDK, ISO). */
        enum blk_format sf = blk_format(img);
        params->format = sf == BLK_FMT_QCOW2 || sf == BLK_FMT_RAW || sf == BLK_FMT_VDI ? sf : BLK_FMT_VDI;
    }
    rc = blk_convert(img, dst, params, progress, opaque);
    blk_close(img);
    if (rc < 0)
        return mach_fail(err, rc, "cannot copy medium '%s' to '%s': %s", src, dst, rt_err_str(rc));
    rc = mach_medium_open(dst, CFG_MEDIUM_HDD, uuid, err);
    if (rc < 0)
        mach_unlink_quiet(dst); /* the copy was made for the registry only */
    return rc;
}

int mach_medium_resize(const char *path, uint64_t size_bytes, struct cfg_error *err)
{
    struct blk_image *img = NULL;
    int rc = blk_open(path, BLK_FMT_AUTO, BLK_OPEN_NO_BACKING, &img);
    if (rc < 0)
        return mach_fail(err, rc, "cannot open medium '%s' for writing: %s%s", path, rt_err_str(rc),
                         rc == VERR_BUSY ? " (a running VM uses it)" : "");
    uint64_t cur = blk_size_bytes(img);
    if (size_bytes < cur) {
        blk_close(img);
        return mach_fail(err, VERR_INVALID_PARAMETER,
                         "medium '%s' is %llu bytes; shrinking it to %llu would lose data and is refused", path,
                         (unsigned long long)cur, (unsigned long long)size_bytes);
    }
    if (size_bytes > cur) {
        rc = blk_resize(img, size_bytes);
        if (rc == 0)
            rc = blk_flush(img);
    }
    blk_close(img);
    if (rc < 0)
        return mach_fail(err, rc, "cannot resize medium '%s': %s%s", path, rt_err_str(rc),
                         rc == VERR_NOT_SUPPORTED ? " (its format cannot grow)" : "");
    return 0;
}

int mach_medium_create(const char *path, enum blk_format fmt, uint64_t size_bytes, bool fixed, struct rt_uuid *uuid,
                       struct cfg_error *err)
{
    if (fmt != BLK_FMT_VDI && fmt != BLK_FMT_QCOW2 && fmt != BLK_FMT_RAW)
        return mach_fail(err, VERR_NOT_SUPPORTED, "%s: new disks are VDI, qcow2 or raw images, not %s",
                         path ? path : "", blk_format_name(fmt) ? blk_format_name(fmt) : "that format");
    if (size_bytes == 0)
        return mach_fail(err, VERR_INVALID_PARAMETER, "%s: a disk needs a size above zero", path ? path : "");
    /* Sizes are whole MiB, as vireo-manage (like VBoxManage) takes them. */
    uint64_t size = size_bytes > BLK_MAX_SIZE_BYTES ? size_bytes : RT_ALIGN_UP(size_bytes, MIB);
    if (size > BLK_MAX_SIZE_BYTES)
        return mach_fail(err, VERR_TOO_LARGE, "%s: %llu bytes is more than the largest disk (%llu TiB)",
                         path ? path : "", (unsigned long long)size_bytes,
                         (unsigned long long)(BLK_MAX_SIZE_BYTES >> 40));
    char *loc = path && *path ? mach_medium_location(path) : NULL;
    if (!loc)
        return mach_fail(err, VERR_INVALID_PARAMETER, "no path given for the new disk");
    struct mach_txn t;
    struct rt_uuid id;
    bool made = false;
    int rc = mach_txn_begin(&t, err);
    if (rc == 0 && cfg_medium_find_location(t.g, loc))
        rc = mach_fail(err, VERR_ALREADY_EXISTS, "%s is registered already", loc);
    if (rc == 0 && rt_path_exists(loc))
        rc = mach_fail(err, VERR_ALREADY_EXISTS, "%s exists already (vireo-manage openmedium registers it)", loc);
    if (rc == 0)
        rc = rt_uuid_generate(&id);
    if (rc == 0) {
        struct blk_create_params p = {.format = fmt, .size_bytes = size, .fixed = fixed};
        rc = blk_create(loc, &p);
        if (rc < 0)
            rc = mach_fail(err, rc, "%s: cannot create the image: %s", loc, rt_err_str(rc));
        made = rc == 0;
    }
    if (rc == 0)
        rc = mach_medium_register(&t, &id, loc, CFG_MEDIUM_HDD, blk_format_name(fmt), NULL, false, err);
    if (rc == 0)
        rc = mach_txn_save_global(&t, err);
    mach_txn_end(&t);
    if (rc < 0 && made)
        mach_unlink_quiet(loc);
    if (rc == 0 && uuid)
        *uuid = id;
    free(loc);
    return rc;
}

/* Probes an image for its registration: format and, for a differencing image, its registered parent. */
static int mach_medium_probe(struct cfg_global *g, const char *loc, enum cfg_medium_type type, char *format,
                             size_t format_len, struct rt_uuid *parent, struct cfg_error *err)
{
    memset(parent, 0, sizeof(*parent));
    struct blk_image *img = NULL;
    unsigned flags = BLK_OPEN_READONLY | (type == CFG_MEDIUM_HDD ? 0 : BLK_OPEN_NO_BACKING);
    int rc = blk_open(loc, BLK_FMT_AUTO, flags, &img);
    if (rc < 0)
        return mach_fail(err, rc, "%s: cannot open the image: %s", loc, rt_err_str(rc));
    struct blk_info info;
    rc = blk_get_info(img, &info);
    blk_close(img);
    if (rc < 0)
        return mach_fail(err, rc, "%s: cannot read the image's details: %s", loc, rt_err_str(rc));
    const char *name = blk_format_name(info.format);
    if (type == CFG_MEDIUM_DVD && info.format != BLK_FMT_ISO && info.format != BLK_FMT_RAW)
        return mach_fail(err, VERR_BAD_FORMAT, "%s: a %s image is not a DVD image (ISO or raw)", loc, name);
    if (type == CFG_MEDIUM_FLOPPY && info.format != BLK_FMT_RAW)
        return mach_fail(err, VERR_BAD_FORMAT, "%s: a %s image is not a floppy image (raw)", loc, name);
    if (type == CFG_MEDIUM_HDD && info.format == BLK_FMT_ISO)
        return mach_fail(err, VERR_BAD_FORMAT, "%s: an ISO image is a DVD, not a hard disk", loc);
    if (info.backing_path[0]) {
        const struct cfg_medium *p = cfg_medium_find_location(g, info.backing_path);
        if (p)
            *parent = p->uuid;
    }
    rt_strlcpy(format, name, format_len);
    return 0;
}

int mach_medium_open(const char *path, enum cfg_medium_type type, struct rt_uuid *uuid, struct cfg_error *err)
{
    if ((unsigned)type > CFG_MEDIUM_FLOPPY)
        return mach_fail(err, VERR_INVALID_PARAMETER, "unknown medium type %u", (unsigned)type);
    char *loc = path && *path ? mach_medium_location(path) : NULL;
    if (!loc)
        return mach_fail(err, VERR_INVALID_PARAMETER, "no image path given");
    struct mach_txn t;
    int rc = mach_txn_begin(&t, err);
    const struct cfg_medium *known = rc == 0 ? cfg_medium_find_location(t.g, loc) : NULL;
    if (known) {
        if (known->type != type)
            rc = mach_fail(err, VERR_INVALID_PARAMETER, "%s is registered as a %s medium, not %s", loc,
                           cfg_medium_type_name(known->type), cfg_medium_type_name(type));
        else if (uuid)
            *uuid = known->uuid;
        mach_txn_end(&t);
        free(loc);
        return rc;
    }
    char format[16];
    struct rt_uuid parent, id;
    if (rc == 0)
        rc = mach_medium_probe(t.g, loc, type, format, sizeof(format), &parent, err);
    if (rc == 0)
        rc = rt_uuid_generate(&id);
    if (rc == 0)
        rc = mach_medium_register(&t, &id, loc, type, format, rt_uuid_is_null(&parent) ? NULL : &parent,
                                  type == CFG_MEDIUM_DVD, err);
    if (rc == 0)
        rc = mach_txn_save_global(&t, err);
    mach_txn_end(&t);
    if (rc == 0 && uuid)
        *uuid = id;
    free(loc);
    return rc;
}

int mach_medium_close(const char *uuid_or_path, bool delete_file, struct cfg_error *err)
{
    struct mach_txn t;
    struct cfg_medium *md = NULL;
    char *loc = NULL;
    int rc = mach_txn_begin(&t, err);
    if (rc == 0)
        rc = mach_medium_resolve(t.g, uuid_or_path, &md, err);
    if (rc == 0) {
        char **names = NULL;
        size_t n = 0;
        rc = mach_medium_user_names(t.g, &md->uuid, &names, &n, false);
        if (rc == 0 && n)
            rc = mach_fail(err, VERR_BUSY, "%s is used by machine '%s' (detach it first)", md->location, names[0]);
        mach_names_free(names, n);
    }
    for (size_t i = 0; rc == 0 && i < t.g->medium_count; i++) {
        if (!memcmp(t.g->media[i].parent.bytes, md->uuid.bytes, 16))
            rc = mach_fail(err, VERR_BUSY, "%s has a differencing image on it (%s)", md->location,
                           t.g->media[i].location);
    }
    if (rc == 0) {
        loc = strdup(md->location);
        rc = loc ? cfg_medium_remove(t.g, &md->uuid) : VERR_NO_MEMORY;
    }
    if (rc == 0)
        rc = mach_txn_save_global(&t, err);
    mach_txn_end(&t);
    if (rc == 0 && delete_file) {
        if (unlink(loc) < 0 && errno != ENOENT) {
            int e = errno;
            rc = mach_fail(err, rt_err_from_errno(e), "%s: unregistered, but the file could not be deleted: %s", loc,
                           strerror(e));
        }
    }
    free(loc);
    return rc;
}

/* ---- Differencing images ------------------------------------------------------------------------- */

int mach_diff_create(struct mach_txn *t, const struct cfg_medium *parent, const char *folder, struct rt_uuid *uuid,
                     char **created, struct cfg_error *err)
{
    *created = NULL;
    enum blk_format pfmt = BLK_FMT_AUTO;
    if (parent->format && blk_format_from_name(parent->format, &pfmt) < 0)
        pfmt = BLK_FMT_AUTO;
    /* VDI over VDI and qcow2 over qcow2 as VirtualBox and QEMU do; qcow2 over anything else (raw, VMDK). */
    enum blk_format fmt = pfmt == BLK_FMT_VDI ? BLK_FMT_VDI : BLK_FMT_QCOW2;
    int rc = rt_uuid_generate(uuid);
    if (rc < 0)
        return rc;
    char us[RT_UUID_STR_LEN];
    rt_uuid_to_str(uuid, us);
    char *name = rt_strdup_printf("{%s}.%s", us, blk_format_name(fmt));
    char *file = name ? rt_path_join(folder, name) : NULL;
    free(name);
    if (!file)
        return VERR_NO_MEMORY;
    rc = rt_dir_create_all(folder, 0700);
    if (rc < 0) {
        rc = mach_fail(err, rc, "%s: cannot create the folder: %s", folder, rt_err_str(rc));
        free(file);
        return rc;
    }
    struct blk_create_params p = {.format = fmt, .backing_path = parent->location, .backing_format = pfmt};
    rc = blk_create(file, &p);
    if (rc < 0) {
        rc = mach_fail(err, rc, "%s: cannot create a differencing image over %s: %s", file, parent->location,
                       rt_err_str(rc));
        free(file);
        return rc;
    }
    rc = mach_medium_register(t, uuid, file, CFG_MEDIUM_HDD, blk_format_name(fmt), &parent->uuid, false, err);
    if (rc < 0) {
        mach_unlink_quiet(file);
        free(file);
        return rc;
    }
    *created = file;
    return 0;
}
