/* machine-start.c - mach_start: launching a machine's own process (vireo-vm), detached, for vireo-manage and the manager alike. */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "machine-internal.h"

#define LOG_COMPONENT "machine"

/*
 * The callers have descriptors open that the VM must not inherit: the manager's X and D-Bus
 * connections (a VM holding them keeps the manager's session alive after the manager quits)
 * and settings locks.  Not all of them are O_CLOEXEC (GLib's are, libraries' may not be), so
 * the child closes everything above stderr before exec.  Only async-signal-safe calls here:
 * the parent may have threads (the manager's workers).
 */
static void mach_close_fds_above(int keep)
{
    /* close_range (Linux 5.9) is one async-signal-safe call; older kernels get the loop. */
    if (close_range((unsigned)keep + 1, ~0u, 0) == 0)
        return;
    long max = sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > 65536)
        max = 65536;
    for (int fd = keep + 1; fd < max; fd++)
        close(fd);
}

/* The child: a session of its own (the terminal's or the manager's signals do not reach the VM), output to the log. */
static void mach_exec_vm(const char *vm_exe, char **args, const char *log_path)
{
    setsid();
    int devnull = open("/dev/null", O_RDONLY);
    int log = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (devnull >= 0)
        dup2(devnull, STDIN_FILENO);
    if (log >= 0) {
        dup2(log, STDOUT_FILENO);
        dup2(log, STDERR_FILENO);
    }
    mach_close_fds_above(STDERR_FILENO);
    execv(vm_exe, args);
    dprintf(STDERR_FILENO, "cannot run '%s': %s\n", vm_exe, strerror(errno));
    _exit(127);
}

int mach_start(const char *settings_path, const char *vm_exe, bool headless, const char *exec, int *pid,
               char **log_path, struct cfg_error *err)
{
    *pid = -1;
    if (log_path)
        *log_path = NULL;
    struct cfg_machine *m = NULL;
    int rc = cfg_machine_load(settings_path, &m, err);
    if (rc < 0)
        return rc;
    char *logs = NULL, *log = NULL;
    if (mach_is_running(settings_path)) {
        rc = mach_fail(err, VERR_BUSY, "machine '%s' is already running", m->name);
        goto out;
    }
    if (access(vm_exe, X_OK) != 0) {
        int e = errno;
        rc = mach_fail(err, rt_err_from_errno(e), "cannot start machine '%s': cannot run '%s': %s", m->name, vm_exe,
                       strerror(e));
        goto out;
    }
    logs = mach_path(settings_path, "Logs");
    if (!logs || rt_dir_create_all(logs, 0700) < 0) {
        rc = mach_fail(err, logs ? VERR_IO : VERR_NO_MEMORY,
                       "cannot start machine '%s': cannot create its log folder '%s'", m->name, logs ? logs : "?");
        goto out;
    }
    /* vireo-vm keeps its own VM.log (rotated); what it prints before that opens, and after, goes here. */
    log = rt_path_join(logs, "VM-process.log");
    if (!log) {
        rc = VERR_NO_MEMORY;
        goto out;
    }
    char uuid[RT_UUID_STR_LEN];
    rt_uuid_to_str(&m->uuid, uuid);
    char *args[8];
    int n = 0;
    args[n++] = "vireo-vm";
    args[n++] = "--startvm";
    args[n++] = uuid;
    if (headless)
        args[n++] = "--headless";
    if (exec) {
        args[n++] = "--exec";
        args[n++] = (char *)exec;
    }
    args[n] = NULL;
    fflush(NULL);
    pid_t child = fork();
    if (child < 0) {
        int e = errno;
        rc = mach_fail(err, rt_err_from_errno(e), "cannot start machine '%s': fork: %s", m->name, strerror(e));
        goto out;
    }
    if (child == 0)
        mach_exec_vm(vm_exe, args, log);
    LOG_INFO("started machine '%s' (process %d%s)", m->name, (int)child, headless ? ", headless" : "");
    *pid = (int)child;
    if (log_path) {
        *log_path = log;
        log = NULL;
    }
    rc = 0;
out:
    cfg_machine_free(m);
    free(logs);
    free(log);
    return rc;
}
