/* mgr-main.c - vireo, the manager: the GtkApplication, its command-line options and the start-up measurement. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mgr.h"
#include "vireo/err.h"
#include "vireo/rt.h"

static struct {
    gint64 start_us;          /* g_get_monotonic_time() at main() */
    gboolean startup_time;    /* --startup-time: print the time to a usable window and quit */
    gboolean open_new;        /* --new */
    gboolean open_media;      /* --media */
    char *open_settings;      /* --settings VM */
    char *open_snapshots;     /* --snapshots VM */
    bool ready;
} g_mgr_opts;

/* A machine named on the command line, by name or UUID; shows an error dialog when there is none. */
static bool mgr_main_lookup(struct mgr_app *app, const char *name_or_uuid, struct rt_uuid *uuid)
{
    struct cfg_machine *m = NULL;
    char *path = NULL;
    struct cfg_error err = {{0}};
    int rc = mach_find(name_or_uuid, &path, &m, &err);
    if (rc < 0) {
        char what[300];
        snprintf(what, sizeof(what), "There is no machine '%s'", name_or_uuid);
        mgr_error(app->window, what, rc, err.msg);
        return false;
    }
    *uuid = m->uuid;
    cfg_machine_free(m);
    free(path);
    return true;
}

static gboolean mgr_main_quit(gpointer opaque)
{
    struct mgr_app *app = opaque;
    g_application_quit(G_APPLICATION(app->gtk));
    return G_SOURCE_REMOVE;
}

void mgr_app_list_ready(struct mgr_app *app)
{
    if (g_mgr_opts.ready)
        return;
    g_mgr_opts.ready = true;
    if (g_mgr_opts.startup_time) {
        double ms = (double)(g_get_monotonic_time() - g_mgr_opts.start_us) / 1000.0;
        printf("vireo: usable window after %.1f ms with %zu machines listed\n", ms, mgr_model_count(app->model));
        fflush(stdout);
        g_idle_add(mgr_main_quit, app);
        return;
    }
    struct rt_uuid uuid;
    if (g_mgr_opts.open_new)
        mgr_newvm_run(app, app->window);
    if (g_mgr_opts.open_media)
        mgr_media_show(app, app->window);
    if (g_mgr_opts.open_settings && mgr_main_lookup(app, g_mgr_opts.open_settings, &uuid))
        mgr_settings_run(app, app->window, &uuid);
    if (g_mgr_opts.open_snapshots && mgr_main_lookup(app, g_mgr_opts.open_snapshots, &uuid))
        mgr_snapshots_show(app, app->window, &uuid);
}

static void mgr_activate(GtkApplication *gtk, gpointer opaque)
{
    struct mgr_app *app = opaque;
    if (app->window) {
        gtk_window_present(app->window);
        return;
    }
    app->window = mgr_window_new(app);
    gtk_application_add_window(gtk, app->window);
}

int main(int argc, char **argv)
{
    g_mgr_opts.start_us = g_get_monotonic_time();
    static GOptionEntry entries[] = {
        {"new", 0, 0, G_OPTION_ARG_NONE, &g_mgr_opts.open_new, "Open the new machine assistant", NULL},
        {"settings", 0, 0, G_OPTION_ARG_STRING, &g_mgr_opts.open_settings, "Open the settings of a machine", "VM"},
        {"snapshots", 0, 0, G_OPTION_ARG_STRING, &g_mgr_opts.open_snapshots, "Open the snapshots of a machine", "VM"},
        {"media", 0, 0, G_OPTION_ARG_NONE, &g_mgr_opts.open_media, "Open the media manager", NULL},
        {"startup-time", 0, 0, G_OPTION_ARG_NONE, &g_mgr_opts.startup_time,
         "Print how long the window took to become usable, then quit (benchmarks)", NULL},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    GError *gerr = NULL;
    GOptionContext *ctx = g_option_context_new("- create, configure and run virtual machines");
    g_option_context_add_main_entries(ctx, entries, NULL);
    g_option_context_add_group(ctx, gtk_get_option_group(FALSE));
    if (!g_option_context_parse(ctx, &argc, &argv, &gerr)) {
        fprintf(stderr, "vireo: %s (see --help)\n", gerr->message);
        g_error_free(gerr);
        g_option_context_free(ctx);
        return 2;
    }
    g_option_context_free(ctx);
    if (argc > 1) {
        fprintf(stderr, "vireo: unexpected argument '%s' (see --help)\n", argv[1]);
        return 2;
    }
    if (!gtk_init_check(&argc, &argv)) {
        fprintf(stderr, "vireo: cannot open a display (is DISPLAY or WAYLAND_DISPLAY set?)\n");
        return 1;
    }

    struct mgr_app app = {0};
    app.program_dir = rt_program_dir();
    struct cfg_error err = {{0}};
    char *ostypes_path = cfg_ostypes_path();
    int rc = ostypes_path ? cfg_ostypes_load(ostypes_path, &app.ostypes, &err) : VERR_NO_MEMORY;
    if (rc < 0) {
        mgr_error(NULL, "Vireo cannot read its OS type presets", rc, err.msg);
        free(ostypes_path);
        return 1;
    }
    free(ostypes_path);
    app.model = mgr_model_new();
    /* One manager per user session, as people expect: a second start presents the first one's window.
     * The command-line requests above only apply to the first. */
    app.gtk = gtk_application_new("org.vireo.Manager",
                                  g_mgr_opts.startup_time ? G_APPLICATION_NON_UNIQUE : G_APPLICATION_DEFAULT_FLAGS);
    g_signal_connect(app.gtk, "activate", G_CALLBACK(mgr_activate), &app);
    char *gargv[] = {argv[0], NULL};
    int status = g_application_run(G_APPLICATION(app.gtk), 1, gargv);
    g_object_unref(app.gtk);
    mgr_model_free(app.model);
    cfg_ostypes_free(app.ostypes);
    free(app.program_dir);
    g_free(g_mgr_opts.open_settings);
    g_free(g_mgr_opts.open_snapshots);
    return status;
}
