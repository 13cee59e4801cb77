/* machine.c - machines as objects: transactions on the settings files, finding, listing, creating, registering, editing and validating machines. */

/*
 * Design.  Every public operation of machine.h is one transaction (machine-internal.h):
 * global registry lock, machine file lock, load, change, validate, save, unlock.  Pure
 * look-ups (find, list, media queries) read without locks: settings files are replaced
 * by atomic renames, so a reader sees the old file or the new one, never a mix, and a
 * look-up that waited for a writer would only make the manager stutter.
 *
 * Machines are found by UUID first (a name that parses as a UUID is a UUID), then by
 * name among the registered machines (case-sensitive, as VirtualBox compares them).
 * A machine whose file says running or paused while nobody holds its run lock has lost
 * its process: look-ups report it aborted and the next transaction on it records that.
 */

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "machine-internal.h"

#define LOG_COMPONENT "machine"

/* ---- Errors ----------------------------------------------------------------------------- */

int mach_fail(struct cfg_error *err, int rc, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
    }
    return rc;
}

void mach_err_append(struct cfg_error *err, const char *fmt, ...)
{
    if (!err)
        return;
    size_t len = strlen(err->msg);
    if (len && len + 2 < sizeof(err->msg)) {
        memcpy(err->msg + len, "; ", 3);
        len += 2;
    }
    if (len + 1 >= sizeof(err->msg))
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg + len, sizeof(err->msg) - len, fmt, ap);
    va_end(ap);
}

/* ---- Paths ----------------------------------------------------------------------------- */

char *mach_abs_path(const char *path)
{
    if (!path || !*path)
        return NULL;
    char *joined;
    if (path[0] == '/') {
        joined = strdup(path);
    } else {
        char cwd[4096];
        if (!getcwd(cwd, sizeof(cwd)))
            return NULL;
        joined = rt_path_join(cwd, path);
    }
    if (!joined)
        return NULL;
    /* Component by component: "." dropped, ".." takes the previous one away. */
    char *out = malloc(strlen(joined) + 2);
    if (!out) {
        free(joined);
        return NULL;
    }
    size_t len = 0;
    char *save = NULL;
    for (char *c = strtok_r(joined, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
        if (!strcmp(c, "."))
            continue;
        if (!strcmp(c, "..")) {
            while (len > 0 && out[len - 1] != '/')
                len--;
            if (len > 0)
                len--;
            continue;
        }
        out[len++] = '/';
        size_t n = strlen(c);
        memcpy(out + len, c, n);
        len += n;
    }
    if (len == 0)
        out[len++] = '/';
    out[len] = '\0';
    free(joined);
    return out;
}

char *mach_folder(const char *settings_path)
{
    char *abs = mach_abs_path(settings_path);
    if (!abs)
        return NULL;
    char *dir = rt_path_dirname(abs);
    free(abs);
    return dir;
}

char *mach_path(const char *settings_path, const char *relative)
{
    if (!relative)
        return NULL;
    if (relative[0] == '/')
        return mach_abs_path(relative);
    char *dir = mach_folder(settings_path);
    char *joined = dir ? rt_path_join(dir, relative) : NULL;
    free(dir);
    char *abs = joined ? mach_abs_path(joined) : NULL;
    free(joined);
    return abs;
}

char *mach_snapshot_dir(const struct cfg_machine *m, const char *settings_path)
{
    return mach_path(settings_path, m->snapshot_folder ? m->snapshot_folder : "Snapshots");
}

char *mach_relative(const char *settings_path, const char *abs)
{
    char *dir = mach_folder(settings_path);
    if (!dir)
        return NULL;
    size_t n = strlen(dir);
    char *out;
    if (!strncmp(abs, dir, n) && abs[n] == '/')
        out = strdup(abs + n + 1);
    else
        out = strdup(abs);
    free(dir);
    return out;
}

void mach_unlink_quiet(const char *path)
{
    if (path && unlink(path) < 0 && errno != ENOENT)
        LOG_WARN("%s: cannot delete: %s", path, strerror(errno));
}

int mach_copy_file(const char *from, const char *to, struct cfg_error *err)
{
    void *data;
    size_t len;
    /* Saved states hold guest RAM: allow up to 1 TiB, as memory_mib does. */
    int rc = rt_file_read_all(from, (size_t)1 << 40, &data, &len);
    if (rc < 0)
        return mach_fail(err, rc, "%s: cannot read the state file: %s", from, rt_err_str(rc));
    if (rt_path_exists(to)) {
        free(data);
        return mach_fail(err, VERR_ALREADY_EXISTS, "%s: exists already", to);
    }
    rc = rt_file_write_atomic(to, data, len, 0600);
    free(data);
    if (rc < 0)
        return mach_fail(err, rc, "%s: cannot write a copy of %s: %s", to, from, rt_err_str(rc));
    return 0;
}

/* ---- UEFI variable store ------------------------------------------------------------------ */

char *mach_nvram_path(const char *settings_path)
{
    static const char ext[] = ".vireo";
    size_t n = strlen(settings_path), e = sizeof(ext) - 1;
    if (n > e && strcmp(settings_path + n - e, ext) == 0)
        n -= e;
    return rt_strdup_printf("%.*s.nvram", (int)n, settings_path);
}

int mach_nvram_create(const char *path, const char *from, bool *created, struct cfg_error *err)
{
    if (created)
        *created = false;
    if (rt_path_exists(path))
        return 0;
    const char *src = from ? from : MACH_EFI_VARS_TEMPLATE;
    void *data;
    size_t len;
    int rc = rt_file_read_all(src, 64u << 20, &data, &len);
    if (rc == VERR_FILE_NOT_FOUND && !from)
        return mach_fail(err, VERR_FIRMWARE,
                         "UEFI variable store template '%s' not found: install Debian's ovmf package (apt-get install ovmf)",
                         src);
    if (rc < 0)
        return mach_fail(err, rc, "%s: cannot read the UEFI variable store: %s", src, rt_err_str(rc));
    rc = rt_file_write_atomic(path, data, len, 0600);
    free(data);
    if (rc < 0)
        return mach_fail(err, rc, "%s: cannot write the UEFI variable store: %s", path, rt_err_str(rc));
    if (created)
        *created = true;
    return 0;
}

/* A machine switched to (or created with) EFI firmware gets its store now; vireo-vm makes it later if this fails. */
static void mach_nvram_prepare(const struct cfg_machine *m, const char *settings_path)
{
    if (m->hw.firmware != CFG_FW_EFI)
        return;
    char *nv = mach_nvram_path(settings_path);
    struct cfg_error nerr = { { 0 } };
    bool created = false;
    if (!nv)
        return;
    if (mach_nvram_create(nv, NULL, &created, &nerr) < 0)
        LOG_WARN("machine '%s': %s", m->name, nerr.msg);
    else if (created)
        LOG_INFO("machine '%s': UEFI variable store %s", m->name, nv);
    free(nv);
}

/* ---- UUID sets and the media a machine uses -------------------------------------------- */

int mach_uuid_set_add(struct mach_uuid_set *s, const struct rt_uuid *u)
{
    if (mach_uuid_set_has(s, u))
        return 0;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        struct rt_uuid *v = realloc(s->v, cap * sizeof(*v));
        if (!v)
            return VERR_NO_MEMORY;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = *u;
    return 0;
}

bool mach_uuid_set_has(const struct mach_uuid_set *s, const struct rt_uuid *u)
{
    for (size_t i = 0; i < s->n; i++)
        if (!memcmp(s->v[i].bytes, u->bytes, 16))
            return true;
    return false;
}

void mach_uuid_set_free(struct mach_uuid_set *s)
{
    free(s->v);
    memset(s, 0, sizeof(*s));
}

bool mach_hw_uses(const struct cfg_hardware *hw, const struct rt_uuid *uuid)
{
    for (size_t i = 0; i < hw->attachment_count; i++)
        if (!memcmp(hw->attachments[i].medium.bytes, uuid->bytes, 16))
            return true;
    return false;
}

static int mach_hw_media(const struct cfg_hardware *hw, bool hdd_only, struct mach_uuid_set *out)
{
    for (size_t i = 0; i < hw->attachment_count; i++) {
        const struct cfg_attachment *a = &hw->attachments[i];
        if (rt_uuid_is_null(&a->medium) || (hdd_only && a->type != CFG_MEDIUM_HDD))
            continue;
        int rc = mach_uuid_set_add(out, &a->medium);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int mach_snapshots_media(const struct cfg_snapshot *s, size_t count, bool hdd_only, struct mach_uuid_set *out)
{
    for (size_t i = 0; i < count; i++) {
        int rc = mach_hw_media(&s[i].hw, hdd_only, out);
        if (rc == 0)
            rc = mach_snapshots_media(s[i].children, s[i].child_count, hdd_only, out);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int mach_media_used(const struct cfg_machine *m, bool hdd_only, struct mach_uuid_set *out)
{
    int rc = mach_hw_media(&m->hw, hdd_only, out);
    return rc < 0 ? rc : mach_snapshots_media(m->snapshots, m->snapshot_count, hdd_only, out);
}

/* ---- The registry --------------------------------------------------------------------- */

int mach_registry_find_name(struct cfg_global *g, const char *name, const struct rt_uuid *skip_uuid, char **path)
{
    for (size_t i = 0; i < g->machine_count; i++) {
        const struct cfg_machine_entry *e = &g->machines[i];
        if (skip_uuid && !memcmp(e->uuid.bytes, skip_uuid->bytes, 16))
            continue;
        struct cfg_machine *m = NULL;
        struct cfg_error lerr;
        if (cfg_machine_load(e->path, &m, &lerr) < 0)
            continue; /* an unreadable machine has no name to compare */
        bool same = m->name && !strcmp(m->name, name);
        cfg_machine_free(m);
        if (same) {
            if (path && !(*path = strdup(e->path)))
                return VERR_NO_MEMORY;
            return 0;
        }
    }
    return VERR_NOT_FOUND;
}

int mach_registry_resolve(struct cfg_global *g, const char *name_or_uuid, char **path, struct cfg_error *err)
{
    if (!name_or_uuid || !*name_or_uuid)
        return mach_fail(err, VERR_INVALID_PARAMETER, "no machine name or UUID given");
    struct rt_uuid uuid;
    if (rt_uuid_parse(name_or_uuid, &uuid) == 0) {
        for (size_t i = 0; i < g->machine_count; i++) {
            if (!memcmp(g->machines[i].uuid.bytes, uuid.bytes, 16)) {
                *path = strdup(g->machines[i].path);
                return *path ? 0 : VERR_NO_MEMORY;
            }
        }
    }
    int rc = mach_registry_find_name(g, name_or_uuid, NULL, path);
    if (rc != VERR_NOT_FOUND)
        return rc;
    /*
     * A machine whose file no longer loads has no name to compare; when its file carries the name asked
     * for (<name>.vireo), the person means that machine: say what is wrong with its file instead of
     * claiming it is not registered.
     */
    for (size_t i = 0; i < g->machine_count; i++) {
        const char *base = rt_path_basename(g->machines[i].path);
        size_t n = strlen(name_or_uuid);
        if (strncmp(base, name_or_uuid, n) != 0 || strcmp(base + n, ".vireo") != 0)
            continue;
        struct cfg_machine *m = NULL;
        int lrc = cfg_machine_load(g->machines[i].path, &m, err);
        cfg_machine_free(m);
        if (lrc < 0)
            return lrc;
    }
    return mach_fail(err, rc, "no registered machine is named '%s' or has that UUID", name_or_uuid);
}

/* ---- Transactions --------------------------------------------------------------------- */

int mach_txn_begin(struct mach_txn *t, struct cfg_error *err)
{
    memset(t, 0, sizeof(*t));
    t->gpath = cfg_global_path();
    if (!t->gpath)
        return VERR_NO_MEMORY;
    int rc = cfg_lock_acquire(t->gpath, MACH_LOCK_TIMEOUT_MS, &t->glock);
    if (rc < 0)
        return mach_fail(err, rc, "%s: cannot lock the registry: %s%s", t->gpath, rt_err_str(rc),
                         rc == VERR_TIMEOUT ? " (another Vireo program holds it)" : "");
    rc = cfg_global_load(t->gpath, &t->g, err);
    return rc;
}

int mach_txn_open(struct mach_txn *t, const char *ref, bool by_path, struct cfg_error *err)
{
    int rc;
    if (by_path) {
        t->path = mach_abs_path(ref);
        rc = t->path ? 0 : (ref && *ref ? VERR_NO_MEMORY : mach_fail(err, VERR_INVALID_PARAMETER, "no settings path"));
    } else {
        rc = mach_registry_resolve(t->g, ref, &t->path, err);
    }
    if (rc < 0)
        return rc;
    rc = cfg_lock_acquire(t->path, MACH_LOCK_TIMEOUT_MS, &t->mlock);
    if (rc < 0)
        return mach_fail(err, rc, "%s: cannot lock the machine's settings: %s%s", t->path, rt_err_str(rc),
                         rc == VERR_TIMEOUT ? " (another Vireo program holds it)" : "");
    return cfg_machine_load(t->path, &t->m, err);
}

int mach_txn_save_global(struct mach_txn *t, struct cfg_error *err)
{
    return cfg_global_save(t->g, t->gpath, err);
}

int mach_txn_save_machine(struct mach_txn *t, struct cfg_error *err)
{
    int rc = mach_validate(t->m, t->g, err);
    if (rc < 0)
        return rc;
    return cfg_machine_save(t->m, t->path, err);
}

void mach_txn_end(struct mach_txn *t)
{
    cfg_machine_free(t->m);
    cfg_lock_release(t->mlock);
    free(t->path);
    cfg_global_free(t->g);
    cfg_lock_release(t->glock);
    free(t->gpath);
    memset(t, 0, sizeof(*t));
}

void mach_state_fixup(struct cfg_machine *m, const char *path)
{
    if ((m->state == CFG_STATE_RUNNING || m->state == CFG_STATE_PAUSED) && !mach_is_running(path)) {
        m->state = CFG_STATE_ABORTED;
        m->state_changed_ns = rt_time_real_ns();
    }
}

int mach_refuse_running(const struct cfg_machine *m, const char *path, struct cfg_error *err)
{
    if (mach_is_running(path))
        return mach_fail(err, VERR_INVALID_STATE, "machine '%s' is running; power it off first", m->name);
    return 0;
}

/* ---- Finding and listing ----------------------------------------------------------------- */

int mach_find(const char *name_or_uuid, char **settings_path, struct cfg_machine **out, struct cfg_error *err)
{
    if (out)
        *out = NULL;
    if (settings_path)
        *settings_path = NULL;
    char *gpath = cfg_global_path();
    struct cfg_global *g = NULL;
    int rc = gpath ? cfg_global_load(gpath, &g, err) : VERR_NO_MEMORY;
    free(gpath);
    char *path = NULL;
    if (rc == 0)
        rc = mach_registry_resolve(g, name_or_uuid, &path, err);
    cfg_global_free(g);
    if (rc == 0 && out) {
        rc = cfg_machine_load(path, out, err);
        if (rc == 0)
            mach_state_fixup(*out, path);
    }
    if (rc == 0 && settings_path)
        *settings_path = path;
    else
        free(path);
    return rc;
}

int mach_list(struct cfg_machine ***out, char ***paths, size_t *count, struct cfg_error *err)
{
    *out = NULL;
    *count = 0;
    if (paths)
        *paths = NULL;
    if (err)
        err->msg[0] = '\0';
    char *gpath = cfg_global_path();
    struct cfg_global *g = NULL;
    int rc = gpath ? cfg_global_load(gpath, &g, err) : VERR_NO_MEMORY;
    free(gpath);
    if (rc < 0)
        return rc;
    size_t n = g->machine_count;
    struct cfg_machine **list = calloc(n ? n : 1, sizeof(*list));
    char **plist = calloc(n ? n : 1, sizeof(*plist));
    if (!list || !plist) {
        free(list);
        free(plist);
        cfg_global_free(g);
        return VERR_NO_MEMORY;
    }
    size_t got = 0;
    for (size_t i = 0; i < n; i++) {
        struct cfg_error lerr;
        lerr.msg[0] = '\0';
        struct cfg_machine *m = NULL;
        int lrc = cfg_machine_load(g->machines[i].path, &m, &lerr);
        if (lrc < 0) {
            mach_err_append(err, "%s", lerr.msg[0] ? lerr.msg : g->machines[i].path);
            continue;
        }
        plist[got] = strdup(g->machines[i].path);
        if (!plist[got]) {
            cfg_machine_free(m);
            rc = VERR_NO_MEMORY;
            break;
        }
        mach_state_fixup(m, plist[got]);
        list[got++] = m;
    }
    cfg_global_free(g);
    if (rc < 0) {
        mach_list_free(list, plist, got);
        return rc;
    }
    *out = list;
    *count = got;
    if (paths)
        *paths = plist;
    else
        mach_list_free(NULL, plist, got);
    return 0;
}

void mach_list_free(struct cfg_machine **machines, char **paths, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        if (machines)
            cfg_machine_free(machines[i]);
        if (paths)
            free(paths[i]);
    }
    free(machines);
    free(paths);
}

/* ---- Creating and registering ------------------------------------------------------------- */

static bool mach_dir_is_empty(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return errno == ENOENT;
    bool empty = true;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            empty = false;
            break;
        }
    }
    closedir(d);
    return empty;
}

/* The settings file and the files the settings code keeps beside it (the previous copy and the lock). */
void mach_settings_files_remove(const char *path)
{
    mach_unlink_quiet(path);
    char *side = rt_strdup_printf("%s-prev", path);
    mach_unlink_quiet(side);
    free(side);
    side = rt_strdup_printf("%s.lock", path);
    mach_unlink_quiet(side);
    free(side);
}

int mach_create(const char *name, const char *ostype, const char *base_folder, bool reg, char **settings_path,
                struct rt_uuid *uuid, struct cfg_error *err)
{
    if (settings_path)
        *settings_path = NULL;
    if (!name || !cfg_is_valid_machine_name(name))
        return mach_fail(err, VERR_INVALID_PARAMETER,
                         "'%s' is not a valid machine name (it names a folder and a file: no '/', not empty, "
                         "not '.' or '..', no control characters, no leading or trailing blanks, at most 200 bytes)",
                         name ? name : "");
    struct cfg_ostypes *types = NULL;
    const struct cfg_ostype *preset = NULL;
    int rc = 0;
    if (ostype) {
        char *tpath = cfg_ostypes_path();
        rc = tpath ? cfg_ostypes_load(tpath, &types, err) : VERR_NO_MEMORY;
        free(tpath);
        if (rc < 0)
            return rc;
        preset = cfg_ostype_find(types, ostype);
        if (!preset) {
            cfg_ostypes_free(types);
            return mach_fail(err, VERR_INVALID_PARAMETER,
                             "unknown OS type '%s' (vireo-manage list ostypes shows the known ones)", ostype);
        }
    }

    struct mach_txn t;
    char *folder = NULL, *mdir = NULL, *file = NULL;
    struct cfg_machine *m = NULL;
    struct cfg_lock *flock_ = NULL;
    bool made_dir = false, saved = false, locked = false;
    rc = mach_txn_begin(&t, err);
    if (rc == 0 && mach_registry_find_name(t.g, name, NULL, NULL) == 0)
        rc = mach_fail(err, VERR_ALREADY_EXISTS, "a machine named '%s' is registered already", name);
    if (rc == 0) {
        folder = base_folder ? mach_abs_path(base_folder) : cfg_default_machine_folder(t.g->default_machine_folder);
        mdir = folder ? rt_path_join(folder, name) : NULL;
        char *fname = rt_strdup_printf("%s.vireo", name);
        file = mdir && fname ? rt_path_join(mdir, fname) : NULL;
        free(fname);
        if (!file)
            rc = VERR_NO_MEMORY;
    }
    if (rc == 0 && rt_path_exists(file))
        rc = mach_fail(err, VERR_ALREADY_EXISTS, "%s exists already (vireo-manage registervm adds it)", file);
    /* An empty folder left from an earlier attempt is fine; one with files in it may belong to something else. */
    if (rc == 0 && !mach_dir_is_empty(mdir))
        rc = mach_fail(err, VERR_ALREADY_EXISTS, "the folder %s exists already and is not empty", mdir);
    if (rc == 0) {
        made_dir = !rt_path_exists(mdir);
        rc = rt_dir_create_all(mdir, 0700);
        if (rc < 0)
            rc = mach_fail(err, rc, "%s: cannot create the machine folder: %s", mdir, rt_err_str(rc));
    }
    if (rc == 0) {
        rc = cfg_machine_new(name, preset ? preset->id : "Other", &m);
        if (rc == 0 && preset)
            rc = cfg_hardware_apply_ostype(&m->hw, preset);
        if (rc < 0)
            rc = mach_fail(err, rc, "machine '%s': cannot set up its settings: %s", name, rt_err_str(rc));
    }
    if (rc == 0)
        rc = mach_validate(m, t.g, err);
    if (rc == 0) {
        rc = cfg_lock_acquire(file, MACH_LOCK_TIMEOUT_MS, &flock_);
        locked = rc == 0;
        if (rc < 0)
            rc = mach_fail(err, rc, "%s: cannot lock it: %s", file, rt_err_str(rc));
    }
    if (rc == 0) {
        rc = cfg_machine_save(m, file, err);
        saved = rc == 0;
    }
    if (rc == 0 && reg) {
        rc = cfg_machine_entry_add(t.g, &m->uuid, file);
        if (rc == 0)
            rc = mach_txn_save_global(&t, err);
        else
            rc = mach_fail(err, rc, "cannot register %s: %s", file, rt_err_str(rc));
    }
    cfg_lock_release(flock_);
    if (rc < 0) {
        /* The file did not exist before (checked above): whatever is there now is this call's. */
        if (saved || locked)
            mach_settings_files_remove(file);
        if (made_dir && mdir)
            rmdir(mdir);
    } else {
        mach_nvram_prepare(m, file);
        if (uuid)
            *uuid = m->uuid;
        if (settings_path) {
            *settings_path = file;
            file = NULL;
        }
        LOG_INFO("created machine '%s' in %s", name, mdir);
    }
    cfg_machine_free(m);
    free(file);
    free(mdir);
    free(folder);
    mach_txn_end(&t);
    cfg_ostypes_free(types);
    return rc;
}

int mach_register(const char *settings_path, struct cfg_error *err)
{
    struct mach_txn t;
    int rc = mach_txn_begin(&t, err);
    char *abs = NULL;
    struct cfg_machine *m = NULL;
    if (rc == 0) {
        abs = mach_abs_path(settings_path);
        rc = abs ? cfg_machine_load(abs, &m, err) : mach_fail(err, VERR_INVALID_PARAMETER, "no settings path given");
    }
    for (size_t i = 0; rc == 0 && i < t.g->machine_count; i++) {
        if (!memcmp(t.g->machines[i].uuid.bytes, m->uuid.bytes, 16)) {
            char us[RT_UUID_STR_LEN];
            rt_uuid_to_str(&m->uuid, us);
            rc = mach_fail(err, VERR_ALREADY_EXISTS, "a machine with UUID %s is registered already (%s)", us,
                           t.g->machines[i].path);
        }
    }
    if (rc == 0 && (!m->name || !cfg_is_valid_machine_name(m->name)))
        rc = mach_fail(err, VERR_CFG_BAD_VALUE, "%s: the machine's name is not valid", abs);
    if (rc == 0 && mach_registry_find_name(t.g, m->name, NULL, NULL) == 0)
        rc = mach_fail(err, VERR_ALREADY_EXISTS, "a machine named '%s' is registered already", m->name);
    if (rc == 0) {
        rc = cfg_machine_entry_add(t.g, &m->uuid, abs);
        if (rc == 0)
            rc = mach_txn_save_global(&t, err);
        else
            rc = mach_fail(err, rc, "cannot register %s: %s", abs, rt_err_str(rc));
    }
    cfg_machine_free(m);
    free(abs);
    mach_txn_end(&t);
    return rc;
}

/* ---- Editing -------------------------------------------------------------------------------- */

static int mach_edit_common(const char *ref, bool by_path, bool allow_running, mach_edit_fn *fn, void *opaque,
                            struct cfg_error *err)
{
    struct mach_txn t;
    int rc = mach_txn_begin(&t, err);
    if (rc == 0)
        rc = mach_txn_open(&t, ref, by_path, err);
    if (rc == 0 && !allow_running)
        rc = mach_refuse_running(t.m, t.path, err);
    char *old_name = NULL;
    if (rc == 0) {
        mach_state_fixup(t.m, t.path);
        old_name = strdup(t.m->name);
        rc = old_name ? 0 : VERR_NO_MEMORY;
    }
    if (rc == 0)
        rc = fn ? fn(opaque, t.m, t.path, err) : 0;
    /* A new name must stay unique (the files keep their names: the settings path is the machine's identity). */
    if (rc == 0 && t.m->name && strcmp(t.m->name, old_name) && cfg_is_valid_machine_name(t.m->name) &&
        mach_registry_find_name(t.g, t.m->name, &t.m->uuid, NULL) == 0)
        rc = mach_fail(err, VERR_ALREADY_EXISTS, "a machine named '%s' is registered already", t.m->name);
    free(old_name);
    if (rc == 0)
        rc = mach_txn_save_machine(&t, err);
    if (rc == 0)
        mach_nvram_prepare(t.m, t.path);
    mach_txn_end(&t);
    return rc;
}

int mach_global_edit(mach_global_edit_fn *fn, void *opaque, struct cfg_error *err)
{
    struct mach_txn t;
    int rc = mach_txn_begin(&t, err);
    if (rc == 0)
        rc = fn(opaque, t.g, err);
    if (rc == 0)
        rc = mach_txn_save_global(&t, err);
    mach_txn_end(&t);
    return rc;
}

int mach_edit(const char *name_or_uuid, bool allow_running, mach_edit_fn *fn, void *opaque, struct cfg_error *err)
{
    return mach_edit_common(name_or_uuid, false, allow_running, fn, opaque, err);
}

int mach_edit_path(const char *settings_path, bool allow_running, mach_edit_fn *fn, void *opaque,
                   struct cfg_error *err)
{
    return mach_edit_common(settings_path, true, allow_running, fn, opaque, err);
}

/* ---- Validation ------------------------------------------------------------------------------ */

static int mach_validate_controllers(const struct cfg_machine *m, const struct cfg_hardware *hw,
                                     struct cfg_error *err)
{
    for (size_t i = 0; i < hw->controller_count; i++) {
        const struct cfg_controller *c = &hw->controllers[i];
        if (!c->name || !*c->name)
            return mach_fail(err, VERR_CFG_BAD_VALUE, "machine '%s': controller %zu has no name", m->name, i + 1);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(hw->controllers[j].name, c->name))
                return mach_fail(err, VERR_CFG_BAD_VALUE, "machine '%s': two controllers are named '%s'", m->name,
                                 c->name);
        unsigned lo = 1, hi = 30;
        if (c->bus == CFG_BUS_IDE)
            lo = hi = 2;
        else if (c->bus == CFG_BUS_VIRTIO)
            hi = 8;
        else if (c->bus != CFG_BUS_SATA)
            return mach_fail(err, VERR_CFG_BAD_VALUE, "machine '%s': controller '%s' has an unknown bus", m->name,
                             c->name);
        if (c->port_count < lo || c->port_count > hi)
            return mach_fail(err, VERR_CFG_BAD_VALUE, "machine '%s': controller '%s' has %u ports (%s: %u to %u)",
                             m->name, c->name, c->port_count, cfg_bus_name(c->bus), lo, hi);
    }
    return 0;
}

static int mach_validate_attachments(const struct cfg_machine *m, const struct cfg_hardware *hw,
                                     const struct cfg_global *g, struct cfg_error *err)
{
    for (size_t i = 0; i < hw->attachment_count; i++) {
        const struct cfg_attachment *a = &hw->attachments[i];
        const struct cfg_controller *c = NULL;
        for (size_t j = 0; a->controller && j < hw->controller_count; j++)
            if (!strcmp(hw->controllers[j].name, a->controller))
                c = &hw->controllers[j];
        if (!c)
            return mach_fail(err, VERR_CFG_BAD_VALUE, "machine '%s': an attachment names controller '%s', which "
                             "the machine does not have", m->name, a->controller ? a->controller : "");
        unsigned devices = c->bus == CFG_BUS_IDE ? 2 : 1;
        if (a->port >= c->port_count || a->device >= devices)
            return mach_fail(err, VERR_CFG_BAD_VALUE, "machine '%s': controller '%s' has no port %u device %u",
                             m->name, c->name, a->port, a->device);
        for (size_t j = 0; j < i; j++) {
            const struct cfg_attachment *b = &hw->attachments[j];
            if (!strcmp(b->controller, a->controller) && b->port == a->port && b->device == a->device)
                return mach_fail(err, VERR_CFG_BAD_VALUE, "machine '%s': controller '%s' port %u device %u is used "
                                 "twice", m->name, c->name, a->port, a->device);
            if (a->type == CFG_MEDIUM_HDD && !rt_uuid_is_null(&a->medium) &&
                !memcmp(a->medium.bytes, b->medium.bytes, 16))
                return mach_fail(err, VERR_CFG_BAD_VALUE, "machine '%s': the same hard disk is attached twice "
                                 "(controller '%s' port %u)", m->name, c->name, a->port);
        }
        if (rt_uuid_is_null(&a->medium)) {
            if (a->type == CFG_MEDIUM_HDD)
                return mach_fail(err, VERR_CFG_BAD_VALUE, "machine '%s': the hard disk slot on controller '%s' "
                                 "port %u has no medium", m->name, c->name, a->port);
            continue;
        }
        if (!g)
            continue;
        const struct cfg_medium *md = cfg_medium_find((struct cfg_global *)g, &a->medium);
        char us[RT_UUID_STR_LEN];
        rt_uuid_to_str(&a->medium, us);
        if (!md)
            return mach_fail(err, VERR_CFG_BAD_VALUE, "machine '%s': controller '%s' port %u: medium %s is not "
                             "registered", m->name, c->name, a->port, us);
        if (md->type != a->type)
            return mach_fail(err, VERR_CFG_BAD_VALUE, "machine '%s': controller '%s' port %u: %s is a %s medium, "
                             "attached as %s", m->name, c->name, a->port, md->location,
                             cfg_medium_type_name(md->type), cfg_medium_type_name(a->type));
    }
    return 0;
}

static bool mach_mac_is_valid(const char *mac)
{
    if (strlen(mac) != 12)
        return false;
    for (int i = 0; i < 12; i++) {
        char c = mac[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return false;
    }
    /* The first octet's lowest bit marks a multicast address, which no NIC may own. */
    unsigned first = (unsigned)strtoul((char[]){mac[0], mac[1], '\0'}, NULL, 16);
    return !(first & 1);
}

int mach_validate(const struct cfg_machine *m, const struct cfg_global *g, struct cfg_error *err)
{
    if (!m)
        return VERR_INVALID_PARAMETER;
    const struct cfg_hardware *hw = &m->hw;
    if (!m->name || !cfg_is_valid_machine_name(m->name))
        return mach_fail(err, VERR_CFG_BAD_VALUE, "machine '%s': the name is not valid", m->name ? m->name : "");
    if (hw->cpus < 1 || hw->cpus > 32)
        return mach_fail(err, VERR_CFG_BAD_VALUE, "machine '%s': %u CPUs (1 to 32)", m->name, hw->cpus);
    if (hw->memory_mib < 4 || hw->memory_mib > (1ull << 20))
        return mach_fail(err, VERR_CFG_BAD_VALUE, "machine '%s': %llu MiB of memory (4 MiB to 1 TiB)", m->name,
                         (unsigned long long)hw->memory_mib);
    if (hw->display.vram_mib < 1 || hw->display.vram_mib > 256)
        return mach_fail(err, VERR_CFG_BAD_VALUE, "machine '%s': %u MiB of video memory (1 to 256)", m->name,
                         hw->display.vram_mib);
    if (hw->display.monitors < 1 || hw->display.monitors > 8)
        return mach_fail(err, VERR_CFG_BAD_VALUE, "machine '%s': %u monitors (1 to 8)", m->name,
                         hw->display.monitors);
    for (int i = 0; i < CFG_MAX_NICS; i++) {
        if (hw->nics[i].enabled && !mach_mac_is_valid(hw->nics[i].mac))
            return mach_fail(err, VERR_CFG_BAD_VALUE, "machine '%s': NIC %d has MAC address '%s' (12 hex digits, "
                             "not a multicast address)", m->name, i + 1, hw->nics[i].mac);
    }
    int rc = mach_validate_controllers(m, hw, err);
    if (rc == 0)
        rc = mach_validate_attachments(m, hw, g, err);
    return rc;
}
