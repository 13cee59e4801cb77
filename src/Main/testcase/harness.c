/* harness.c - Main test harness: temp folders and their removal, the per-test environment, machine loading, attach edits, run-lock holders. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "vireo/machine.h"

int harness_dir_create(const char *name, char *dir, size_t size)
{
    snprintf(dir, size, "/tmp/%s.XXXXXX", name);
    return mkdtemp(dir) ? 0 : -1;
}

/* Folders get u+rwx on the way down, so that what a test left read-only can be emptied. */
static int unlock_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    if (flag == FTW_D)
        chmod(path, 0700);
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

void harness_dir_remove(const char *path)
{
    nftw(path, unlock_entry, 16, FTW_PHYS);
    nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int harness_home_create(const char *name, char *dir, size_t size)
{
    if (harness_dir_create(name, dir, size) < 0)
        return -1;
    char home[128], run[128];
    snprintf(home, sizeof(home), "%s/home", dir);
    snprintf(run, sizeof(run), "%s/run", dir);
    mkdir(run, 0700);
    setenv("VIREO_USER_HOME", home, 1);
    setenv("XDG_RUNTIME_DIR", run, 1);
    return 0;
}

char *harness_path(const char *dir, const char *rel)
{
    static char bufs[8][512];
    static unsigned next;
    char *buf = bufs[next++ % RT_ARRAY_SIZE(bufs)];
    snprintf(buf, sizeof(bufs[0]), "%s/%s", dir, rel);
    return buf;
}

void harness_file_write(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(close(fd), 0);
}

const char *harness_src_root(void)
{
    const char *src = getenv("VIREO_SRC");
    return src && *src ? src : VIREO_SOURCE_ROOT;
}

struct cfg_machine *harness_machine_load(const char *name)
{
    struct cfg_machine *m = NULL;
    struct cfg_error err;
    if (mach_find(name, NULL, &m, &err) < 0)
        fail_msg("mach_find(%s): %s", name, err.msg);
    return m;
}

int harness_edit_attach(void *opaque, struct cfg_machine *m, const char *path, struct cfg_error *err)
{
    struct harness_attach *a = opaque;
    if (!cfg_controller_find(&m->hw, a->controller)) {
        int rc = cfg_controller_add(&m->hw, a->controller, a->bus, a->bus == CFG_BUS_IDE ? 2 : 4);
        if (rc < 0)
            return rc;
    }
    struct cfg_attachment att = {.controller = (char *)a->controller, .port = a->port, .type = a->type,
                                 .medium = a->medium};
    return cfg_attachment_set(&m->hw, &att);
}

pid_t harness_run_lock_hold(const char *path)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct mach_run_lock *rl;
        struct cfg_error err;
        char c = mach_run_lock_acquire(path, &rl, &err) == 0 ? 'y' : 'n';
        if (write(fds[1], &c, 1) != 1)
            _exit(1);
        for (;;)
            pause();
    }
    char c = 0;
    assert_int_equal(read(fds[0], &c, 1), 1);
    assert_int_equal(c, 'y');
    close(fds[0]);
    close(fds[1]);
    return pid;
}

void harness_run_lock_release(pid_t pid)
{
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
}
