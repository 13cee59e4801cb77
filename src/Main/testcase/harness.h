/* harness.h - Main test harness: temp folders, a private VIREO_USER_HOME and XDG_RUNTIME_DIR, machines by name, attach edits and forked run-lock holders. */
#ifndef VIREO_MAIN_HARNESS_H
#define VIREO_MAIN_HARNESS_H

#include <stddef.h>
#include <sys/types.h>

#include "vireo/rt.h"
#include "vireo/settings.h"

/* Makes a fresh folder /tmp/<name>.XXXXXX and puts its path in dir (size bytes); 0, or -1 when it cannot. */
int harness_dir_create(const char *name, char *dir, size_t size);
/* Removes path and everything below it, read-only folders included (a failed test may leave one). */
void harness_dir_remove(const char *path);
/* harness_dir_create, then VIREO_USER_HOME=<dir>/home and XDG_RUNTIME_DIR=<dir>/run (made here, 0700). */
int harness_home_create(const char *name, char *dir, size_t size);

/* "<dir>/<rel>" in one of 8 static buffers used in turn (no test holds more paths at once). */
char *harness_path(const char *dir, const char *rel);
/* Writes len bytes to path (created 0600 or truncated); asserts it all went. */
void harness_file_write(const char *path, const void *data, size_t len);
/* The source tree: $VIREO_SRC when set, else the one the tests were built from (fixtures live there). */
const char *harness_src_root(void);

/* The machine registered as name (or at that path), loaded; fails the test with mach_find's message. */
struct cfg_machine *harness_machine_load(const char *name);

/* A mach_edit callback (opaque: struct harness_attach) that puts a medium on a port of a controller, adding
 * the controller (2 ports for IDE, else 4) when the machine lacks it. */
struct harness_attach {
    const char *controller;
    enum cfg_bus bus;
    unsigned port;
    enum cfg_medium_type type;
    struct rt_uuid medium;
};
int harness_edit_attach(void *opaque, struct cfg_machine *m, const char *path, struct cfg_error *err);

/* A child process that holds the run lock of the machine file at path until it is released (SIGKILL). */
pid_t harness_run_lock_hold(const char *path);
void harness_run_lock_release(pid_t pid);

#endif
