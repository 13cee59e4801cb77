/* mgr-model.c - the manager's machine list: loads the registry on a worker, polls it and the machines' files and run locks, and fetches thumbnails of running machines. */

/*
 * Two worker threads feed the main thread:
 *  - the poller stats the registry and every machine file (inode, mtime, size: settings are
 *    saved by rename, so a change always shows) and probes the run locks every MGR_POLL_MS,
 *    and loads only what changed; it sends the whole list (paths and UUIDs) with the machines
 *    it reloaded, in one message, so the first load fills the list in one go;
 *  - the thumbnailer asks each running machine for a screenshot every MGR_THUMB_MS (a VM that
 *    does not answer within 2 s must not hold up the states).
 * The main thread owns the struct mgr_vm list; the workers own their caches.  Messages hold a
 * reference on the model so one arriving after mgr_model_free finds it marked dead.
 */

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mgr.h"
#include "vireo/err.h"

#define MGR_SHOT_TIMEOUT_MS 2000

struct mgr_listener {
    mgr_model_listener_fn *fn;
    void *opaque;
};

/* The poller's memory of a machine file. */
struct mgr_seen {
    struct rt_uuid uuid;
    char *path;
    bool exists;
    dev_t dev;
    ino_t ino;
    struct timespec mtime;
    off_t size;
    bool running;
};

struct mgr_model {
    gint refs;
    bool dead;                   /* main thread: freed by its owner, messages are dropped */
    /* main thread */
    GPtrArray *vms;              /* struct mgr_vm * */
    GArray *listeners;           /* struct mgr_listener */
    bool loaded;
    char *error;
    /* shared with the workers, under lock */
    GMutex lock;
    GCond wake;
    bool stop, force;
    struct rt_uuid *running;     /* the machines to take screenshots of */
    size_t running_count;
    GThread *poller, *thumbs;
};

/* A reloaded machine, sent from the poller. */
struct mgr_update_vm {
    struct rt_uuid uuid;
    struct cfg_machine *cfg;
    char *error;
    enum cfg_machine_state state;
    bool running;
};

struct mgr_update {
    struct mgr_model *m;
    bool full;                   /* carries the list (entries), else only vms */
    struct cfg_machine_entry *entries;
    size_t entry_count;
    char *error;                 /* registry error (with full) */
    struct mgr_update_vm *vms;
    size_t vm_count;
    /* thumbnails */
    struct rt_uuid thumb_uuid;
    GdkPixbuf *thumb;
};

static void mgr_model_unref(struct mgr_model *m)
{
    if (!g_atomic_int_dec_and_test(&m->refs))
        return;
    g_mutex_clear(&m->lock);
    g_cond_clear(&m->wake);
    free(m->running);
    g_free(m);
}

static void mgr_vm_free(gpointer p)
{
    struct mgr_vm *vm = p;
    if (!vm) /* moved to the new list (mgr_update_apply) */
        return;
    free(vm->path);
    cfg_machine_free(vm->cfg);
    free(vm->error);
    if (vm->thumbnail)
        g_object_unref(vm->thumbnail);
    g_free(vm);
}

struct mgr_model *mgr_model_new(void)
{
    struct mgr_model *m = g_new0(struct mgr_model, 1);
    m->refs = 1;
    m->vms = g_ptr_array_new_with_free_func(mgr_vm_free);
    m->listeners = g_array_new(FALSE, TRUE, sizeof(struct mgr_listener));
    g_mutex_init(&m->lock);
    g_cond_init(&m->wake);
    return m;
}

void mgr_model_free(struct mgr_model *m)
{
    if (!m)
        return;
    g_mutex_lock(&m->lock);
    m->stop = true;
    g_cond_broadcast(&m->wake);
    g_mutex_unlock(&m->lock);
    if (m->poller)
        g_thread_join(m->poller);
    if (m->thumbs)
        g_thread_join(m->thumbs);
    m->dead = true;
    g_ptr_array_free(m->vms, TRUE);
    g_array_free(m->listeners, TRUE);
    free(m->error);
    mgr_model_unref(m);
}

void mgr_model_listen(struct mgr_model *m, mgr_model_listener_fn *fn, void *opaque)
{
    struct mgr_listener l = {fn, opaque};
    g_array_append_val(m->listeners, l);
}

bool mgr_model_loaded(const struct mgr_model *m)
{
    return m && m->loaded;
}

size_t mgr_model_count(const struct mgr_model *m)
{
    return m ? m->vms->len : 0;
}

struct mgr_vm *mgr_model_get(struct mgr_model *m, size_t index)
{
    return index < m->vms->len ? g_ptr_array_index(m->vms, index) : NULL;
}

struct mgr_vm *mgr_model_find(struct mgr_model *m, const struct rt_uuid *uuid)
{
    for (guint i = 0; i < m->vms->len; i++) {
        struct mgr_vm *vm = g_ptr_array_index(m->vms, i);
        if (!memcmp(vm->uuid.bytes, uuid->bytes, sizeof(uuid->bytes)))
            return vm;
    }
    return NULL;
}

const char *mgr_model_error(const struct mgr_model *m)
{
    return m ? m->error : NULL;
}

void mgr_model_refresh(struct mgr_model *m)
{
    g_mutex_lock(&m->lock);
    m->force = true;
    g_cond_broadcast(&m->wake);
    g_mutex_unlock(&m->lock);
}

static void mgr_notify(struct mgr_model *m, struct mgr_vm *vm)
{
    for (guint i = 0; i < m->listeners->len; i++) {
        struct mgr_listener *l = &g_array_index(m->listeners, struct mgr_listener, i);
        l->fn(l->opaque, vm);
    }
}

/* ---- Applying updates (main thread) ------------------------------------------------------------- */

static void mgr_update_free(struct mgr_update *u)
{
    for (size_t i = 0; i < u->entry_count; i++)
        free(u->entries[i].path);
    free(u->entries);
    for (size_t i = 0; i < u->vm_count; i++) {
        cfg_machine_free(u->vms[i].cfg);
        free(u->vms[i].error);
    }
    free(u->vms);
    free(u->error);
    if (u->thumb)
        g_object_unref(u->thumb);
    mgr_model_unref(u->m);
    g_free(u);
}

static gboolean mgr_update_apply(gpointer p)
{
    struct mgr_update *u = p;
    struct mgr_model *m = u->m;
    if (m->dead)
        goto out;
    if (u->thumb) {
        struct mgr_vm *vm = mgr_model_find(m, &u->thumb_uuid);
        if (vm && vm->running) {
            if (vm->thumbnail)
                g_object_unref(vm->thumbnail);
            vm->thumbnail = g_object_ref(u->thumb);
            vm->thumbnail_time = g_get_real_time();
            mgr_notify(m, vm);
        }
        goto out;
    }
    bool list_changed = false;
    if (u->full) {
        if (g_strcmp0(m->error, u->error)) {
            list_changed = true;
            free(m->error);
            m->error = u->error ? strdup(u->error) : NULL;
        }
        /* The new list in registry order, keeping the machines already known. */
        GPtrArray *vms = g_ptr_array_new_with_free_func(mgr_vm_free);
        for (size_t i = 0; i < u->entry_count; i++) {
            struct mgr_vm *vm = NULL;
            for (guint j = 0; j < m->vms->len; j++) {
                struct mgr_vm *old = g_ptr_array_index(m->vms, j);
                if (old && !memcmp(old->uuid.bytes, u->entries[i].uuid.bytes, 16)) {
                    vm = old;
                    m->vms->pdata[j] = NULL;
                    if (j != i)
                        list_changed = true;
                    break;
                }
            }
            if (!vm) {
                vm = g_new0(struct mgr_vm, 1);
                vm->uuid = u->entries[i].uuid;
                rt_uuid_to_str(&vm->uuid, vm->uuid_str);
                list_changed = true;
            }
            if (g_strcmp0(vm->path, u->entries[i].path)) {
                free(vm->path);
                vm->path = strdup(u->entries[i].path);
            }
            g_ptr_array_add(vms, vm);
        }
        for (guint j = 0; j < m->vms->len; j++)
            if (g_ptr_array_index(m->vms, j))
                list_changed = true;
        g_ptr_array_free(m->vms, TRUE);
        m->vms = vms;
        if (!m->loaded)
            list_changed = true;
        m->loaded = true;
    }
    GPtrArray *changed = g_ptr_array_new();
    for (size_t i = 0; i < u->vm_count; i++) {
        struct mgr_update_vm *uv = &u->vms[i];
        struct mgr_vm *vm = mgr_model_find(m, &uv->uuid);
        if (!vm)
            continue;
        cfg_machine_free(vm->cfg);
        vm->cfg = uv->cfg;
        uv->cfg = NULL;
        free(vm->error);
        vm->error = uv->error;
        uv->error = NULL;
        vm->state = uv->state;
        vm->running = uv->running;
        if (!vm->running && vm->thumbnail) {
            g_object_unref(vm->thumbnail);
            vm->thumbnail = NULL;
        }
        g_ptr_array_add(changed, vm);
    }
    if (list_changed)
        mgr_notify(m, NULL);
    else
        for (guint i = 0; i < changed->len; i++)
            mgr_notify(m, g_ptr_array_index(changed, i));
    g_ptr_array_free(changed, TRUE);
out:
    mgr_update_free(u);
    return G_SOURCE_REMOVE;
}

static void mgr_post(struct mgr_update *u)
{
    g_atomic_int_inc(&u->m->refs);
    g_main_context_invoke_full(NULL, G_PRIORITY_DEFAULT, mgr_update_apply, u, NULL);
}

/* ---- The poller (worker thread) ------------------------------------------------------------------ */

/* The state to show: a file saying running or paused whose run lock is free lost its process (aborted);
 * a held lock over a file still saying powered off or aborted is a machine starting up. */
static enum cfg_machine_state mgr_live_state(enum cfg_machine_state s, bool running)
{
    if (!running && (s == CFG_STATE_RUNNING || s == CFG_STATE_PAUSED))
        return CFG_STATE_ABORTED;
    if (running && (s == CFG_STATE_POWERED_OFF || s == CFG_STATE_ABORTED))
        return CFG_STATE_RUNNING;
    return s;
}

static bool mgr_seen_differs(const struct mgr_seen *s, const struct stat *st, bool exists, bool running)
{
    if (s->exists != exists || s->running != running)
        return true;
    return exists && (s->dev != st->st_dev || s->ino != st->st_ino || s->mtime.tv_sec != st->st_mtim.tv_sec ||
                      s->mtime.tv_nsec != st->st_mtim.tv_nsec || s->size != st->st_size);
}

static gpointer mgr_poller(gpointer p)
{
    struct mgr_model *m = p;
    char *gpath = cfg_global_path();
    struct mgr_seen *seen = NULL;
    size_t seen_count = 0;
    struct stat gst_seen = {0};
    bool g_exists_seen = false, first = true;
    struct cfg_machine_entry *entries = NULL;
    size_t entry_count = 0;
    char *gerror = NULL;

    for (;;) {
        g_mutex_lock(&m->lock);
        bool force = m->force;
        m->force = false;
        if (m->stop) {
            g_mutex_unlock(&m->lock);
            break;
        }
        g_mutex_unlock(&m->lock);

        struct mgr_update *u = g_new0(struct mgr_update, 1);
        u->m = m;
        struct stat gst;
        bool g_exists = gpath && stat(gpath, &gst) == 0;
        if (first || force || g_exists != g_exists_seen ||
            (g_exists && (gst.st_ino != gst_seen.st_ino || gst.st_mtim.tv_sec != gst_seen.st_mtim.tv_sec ||
                          gst.st_mtim.tv_nsec != gst_seen.st_mtim.tv_nsec || gst.st_size != gst_seen.st_size))) {
            g_exists_seen = g_exists;
            if (g_exists)
                gst_seen = gst;
            struct cfg_global *g = NULL;
            struct cfg_error err = {{0}};
            int rc = gpath ? cfg_global_load(gpath, &g, &err) : VERR_NO_MEMORY;
            free(gerror);
            gerror = NULL;
            if (rc < 0) {
                /* Keep the last good list: a half-written registry should not empty the window. */
                gerror = g_strdup_printf("The machine registry cannot be read: %s",
                                         err.msg[0] ? err.msg : rt_err_str(rc));
            } else {
                for (size_t i = 0; i < entry_count; i++)
                    free(entries[i].path);
                free(entries);
                entry_count = g->machine_count;
                entries = calloc(entry_count ? entry_count : 1, sizeof(*entries));
                for (size_t i = 0; i < entry_count; i++) {
                    entries[i].uuid = g->machines[i].uuid;
                    entries[i].path = strdup(g->machines[i].path);
                }
                cfg_global_free(g);
            }
            u->full = true;
        }
        if (u->full) {
            u->entry_count = entry_count;
            u->entries = calloc(entry_count ? entry_count : 1, sizeof(*u->entries));
            for (size_t i = 0; i < entry_count; i++) {
                u->entries[i].uuid = entries[i].uuid;
                u->entries[i].path = strdup(entries[i].path);
            }
            u->error = gerror ? strdup(gerror) : NULL;
        }
        /* Every machine of the list: new ones, changed files, run locks taken or let go. */
        struct mgr_seen *next = calloc(entry_count ? entry_count : 1, sizeof(*next));
        u->vms = calloc(entry_count ? entry_count : 1, sizeof(*u->vms));
        struct rt_uuid *running = calloc(entry_count ? entry_count : 1, sizeof(*running));
        size_t running_count = 0;
        for (size_t i = 0; i < entry_count; i++) {
            struct mgr_seen *old = NULL;
            for (size_t j = 0; j < seen_count; j++)
                if (seen[j].path && !memcmp(seen[j].uuid.bytes, entries[i].uuid.bytes, 16) &&
                    !strcmp(seen[j].path, entries[i].path)) {
                    old = &seen[j];
                    break;
                }
            struct stat st;
            bool exists = stat(entries[i].path, &st) == 0;
            bool run = exists && mach_is_running(entries[i].path);
            struct mgr_seen *s = &next[i];
            if (old) {
                *s = *old;
                old->path = NULL;
            } else {
                s->uuid = entries[i].uuid;
                s->path = strdup(entries[i].path);
            }
            if (run)
                running[running_count++] = entries[i].uuid;
            if (old && !force && !mgr_seen_differs(s, &st, exists, run))
                continue;
            s->exists = exists;
            s->running = run;
            if (exists) {
                s->dev = st.st_dev;
                s->ino = st.st_ino;
                s->mtime = st.st_mtim;
                s->size = st.st_size;
            }
            struct mgr_update_vm *uv = &u->vms[u->vm_count++];
            uv->uuid = entries[i].uuid;
            uv->running = run;
            struct cfg_error err = {{0}};
            int rc = cfg_machine_load(entries[i].path, &uv->cfg, &err);
            if (rc < 0) {
                uv->cfg = NULL;
                uv->error = g_strdup_printf("%s", err.msg[0] ? err.msg : rt_err_str(rc));
                uv->state = run ? CFG_STATE_RUNNING : CFG_STATE_ABORTED;
                /* A file caught while being written: look again next time. */
                s->size = -1;
            } else {
                uv->state = mgr_live_state(uv->cfg->state, run);
            }
        }
        for (size_t j = 0; j < seen_count; j++)
            free(seen[j].path);
        free(seen);
        seen = next;
        seen_count = entry_count;
        g_mutex_lock(&m->lock);
        free(m->running);
        m->running = running;
        m->running_count = running_count;
        g_mutex_unlock(&m->lock);

        if (u->full || u->vm_count)
            mgr_post(u);
        else
            g_free(u);
        first = false;

        g_mutex_lock(&m->lock);
        gint64 until = g_get_monotonic_time() + MGR_POLL_MS * G_TIME_SPAN_MILLISECOND;
        while (!m->stop && !m->force)
            if (!g_cond_wait_until(&m->wake, &m->lock, until))
                break;
        g_mutex_unlock(&m->lock);
    }
    for (size_t j = 0; j < seen_count; j++)
        free(seen[j].path);
    free(seen);
    for (size_t i = 0; i < entry_count; i++)
        free(entries[i].path);
    free(entries);
    free(gerror);
    free(gpath);
    mgr_model_unref(m);
    return NULL;
}

/* ---- Thumbnails (worker thread) --------------------------------------------------------------------- */

static GdkPixbuf *mgr_screenshot(const struct rt_uuid *uuid)
{
    void *body = NULL;
    size_t len = 0;
    char errmsg[256];
    int rc = vmctl_call(uuid, "screenshot", NULL, MGR_SHOT_TIMEOUT_MS, &body, &len, errmsg);
    if (rc < 0 || !len) {
        free(body);
        return NULL;
    }
    GdkPixbuf *scaled = NULL;
    GdkPixbufLoader *loader = gdk_pixbuf_loader_new_with_type("png", NULL);
    if (loader && gdk_pixbuf_loader_write(loader, body, len, NULL) && gdk_pixbuf_loader_close(loader, NULL)) {
        GdkPixbuf *pb = gdk_pixbuf_loader_get_pixbuf(loader);
        int w = pb ? gdk_pixbuf_get_width(pb) : 0, h = pb ? gdk_pixbuf_get_height(pb) : 0;
        if (w > 0 && h > 0) {
            int th = (int)((int64_t)h * MGR_THUMB_W / w);
            scaled = gdk_pixbuf_scale_simple(pb, MGR_THUMB_W, th > 0 ? th : 1, GDK_INTERP_BILINEAR);
            /* The main window's preview shows it larger: scaled from the screen, not from the thumbnail. */
            if (scaled) {
                int pw = 2 * MGR_THUMB_W, ph = (int)((int64_t)h * pw / w);
                GdkPixbuf *big = gdk_pixbuf_scale_simple(pb, pw, ph > 0 ? ph : 1, GDK_INTERP_BILINEAR);
                if (big)
                    g_object_set_data_full(G_OBJECT(scaled), "mgr-preview", big, g_object_unref);
                char dim[32];
                snprintf(dim, sizeof(dim), "%dx%d", w, h);
                g_object_set_data_full(G_OBJECT(scaled), "mgr-size", g_strdup(dim), g_free);
            }
        }
    } else if (loader) {
        gdk_pixbuf_loader_close(loader, NULL);
    }
    if (loader)
        g_object_unref(loader);
    free(body);
    return scaled;
}

static gpointer mgr_thumbnailer(gpointer p)
{
    struct mgr_model *m = p;
    for (;;) {
        g_mutex_lock(&m->lock);
        if (m->stop) {
            g_mutex_unlock(&m->lock);
            break;
        }
        size_t n = m->running_count;
        struct rt_uuid *list = n ? g_memdup2(m->running, n * sizeof(*list)) : NULL;
        g_mutex_unlock(&m->lock);
        for (size_t i = 0; i < n; i++) {
            GdkPixbuf *pb = mgr_screenshot(&list[i]);
            if (!pb)
                continue;
            struct mgr_update *u = g_new0(struct mgr_update, 1);
            u->m = m;
            u->thumb_uuid = list[i];
            u->thumb = pb;
            mgr_post(u);
        }
        g_free(list);
        /* A machine that just started gets its first picture soon rather than a full period later. */
        g_mutex_lock(&m->lock);
        gint64 until = g_get_monotonic_time() + (n ? MGR_THUMB_MS : MGR_POLL_MS) * G_TIME_SPAN_MILLISECOND;
        while (!m->stop)
            if (!g_cond_wait_until(&m->wake, &m->lock, until))
                break;
        g_mutex_unlock(&m->lock);
    }
    mgr_model_unref(m);
    return NULL;
}

void mgr_model_start(struct mgr_model *m)
{
    if (m->poller)
        return;
    g_atomic_int_inc(&m->refs);
    m->poller = g_thread_new("mgr-poll", mgr_poller, m);
    g_atomic_int_inc(&m->refs);
    m->thumbs = g_thread_new("mgr-thumbs", mgr_thumbnailer, m);
}
