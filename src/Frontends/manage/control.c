/* control.c - vireo-manage startvm, controlvm and discardstate: starting the per-VM process and talking to it over its control socket. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "manage.h"
#include "vireo/vmctl.h"

enum { OPT_TYPE = 1, OPT_EXEC };

/* How long startvm waits for the VM to answer, and controlvm for a VM to go away. */
#define MG_START_TIMEOUT_MS 60000
#define MG_STOP_TIMEOUT_MS 120000

/* The last lines of a log file on stderr (why a VM process did not start). */
static void mg_log_tail(const char *path, unsigned lines)
{
    void *data = NULL;
    size_t len = 0;
    if (rt_file_read_all(path, 16u << 20, &data, &len) < 0 || !len) {
        free(data);
        return;
    }
    const char *s = data, *p = s + len;
    if (p[-1] == '\n')
        p--;
    for (unsigned n = 0; p > s; p--)
        if (p[-1] == '\n' && ++n == lines)
            break;
    fprintf(stderr, "vireo-manage: the end of '%s':\n", path);
    fwrite(p, 1, len - (size_t)(p - s), stderr);
    if (s[len - 1] != '\n')
        fputc('\n', stderr);
    free(data);
}

/* Asks the VM's control socket whether it answers "state"; the state word goes to out. */
static bool mg_vm_answers(const struct rt_uuid *uuid, char *out, size_t len)
{
    void *body = NULL;
    size_t blen = 0;
    char errmsg[256];
    int rc = vmctl_call(uuid, "state", NULL, 2000, &body, &blen, errmsg);
    if (rc == 0 && out)
        snprintf(out, len, "%.*s", (int)RT_MIN(blen, len - 1), body ? (char *)body : "");
    free(body);
    return rc == 0;
}

/* ---- startvm ------------------------------------------------------------------------------------- */

static int mg_startvm(int argc, char **argv)
{
    static const struct mg_opt opts[] = {
        {"type", OPT_TYPE, true, 0, NULL, false}, {"exec", OPT_EXEC, true, 0, NULL, false}, {NULL, 0, 0, 0, 0, 0},
    };
    struct mg_args a;
    int rc = mg_args_parse(argc, argv, 1, opts, &a);
    if (rc)
        return rc;
    char *path = NULL, *dir = NULL, *vm_exe = NULL, *log_path = NULL;
    struct cfg_machine *m = NULL;
    const char *type = mg_args_value(&a, OPT_TYPE), *exec = mg_args_value(&a, OPT_EXEC);
    if ((rc = mg_args_want(&a, 1, 1, "the VM (name or UUID)")))
        goto out;
    if (type && strcmp(type, "gui") && strcmp(type, "headless")) {
        rc = mg_usage("--type '%s' must be gui or headless", type);
        goto out;
    }
    if (exec && strcmp(exec, "auto") && strcmp(exec, "kvm") && strcmp(exec, "soft") && strcmp(exec, "interp")) {
        rc = mg_usage("--exec '%s' must be auto, kvm, soft or interp", exec);
        goto out;
    }
    if ((rc = mg_vm_find(a.pos[0], &path, &m)))
        goto out;
    if (mach_is_running(path)) {
        rc = mg_fail("VM '%s' is already running", m->name);
        goto out;
    }
    dir = rt_program_dir(); /* vireo-vm is installed beside vireo-manage */
    vm_exe = dir ? rt_path_join(dir, "vireo-vm") : NULL;
    if (!vm_exe || access(vm_exe, X_OK) != 0) {
        rc = mg_fail("cannot start VM '%s': vireo-vm is not beside vireo-manage (looked for '%s')", m->name,
                     vm_exe ? vm_exe : "?");
        goto out;
    }
    struct cfg_error err = {{0}};
    int pid = -1;
    fflush(stdout);
    if ((rc = mach_start(path, vm_exe, !type || strcmp(type, "gui") != 0, exec, &pid, &log_path, &err)) < 0) {
        rc = mg_fail_err(rc, &err, "cannot start VM '%s'", m->name);
        goto out;
    }
    uint64_t deadline = rt_time_mono_ns() + MG_START_TIMEOUT_MS * RT_NS_PER_MS;
    char state[32] = "";
    for (;;) {
        int status;
        pid_t w = waitpid((pid_t)pid, &status, WNOHANG);
        if (w == (pid_t)pid) {
            rc = mg_fail("VM '%s' did not start: vireo-vm %s %d", m->name,
                         WIFEXITED(status) ? "exited with status" : "was killed by signal",
                         WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
            mg_log_tail(log_path, 15);
            goto out;
        }
        if (mg_vm_answers(&m->uuid, state, sizeof(state)))
            break;
        if (rt_time_mono_ns() > deadline) {
            rc = mg_fail("VM '%s' did not answer on its control socket within %u s; it may still be starting "
                         "(process %d, log '%s')", m->name, MG_START_TIMEOUT_MS / 1000, (int)pid, log_path);
            goto out;
        }
        rt_sleep_ns(50 * RT_NS_PER_MS);
    }
    printf("VM '%s' has been successfully started (%s).\n", m->name, state);
    rc = 0;
out:
    cfg_machine_free(m);
    free(path);
    free(dir);
    free(vm_exe);
    free(log_path);
    mg_args_free(&a);
    return rc;
}

/* ---- controlvm ------------------------------------------------------------------------------------ */

/* After poweroff/savestate: the process lets go of the run lock once the state is recorded. */
static int mg_wait_stopped(const char *path, const struct rt_uuid *uuid, const char *name, const char *want)
{
    uint64_t deadline = rt_time_mono_ns() + MG_STOP_TIMEOUT_MS * RT_NS_PER_MS;
    while (mach_is_running(path)) {
        if (rt_time_mono_ns() > deadline)
            return mg_fail("VM '%s' is still running %u s after the request", name, MG_STOP_TIMEOUT_MS / 1000);
        rt_sleep_ns(50 * RT_NS_PER_MS);
    }
    struct cfg_machine *m = NULL;
    struct cfg_error err = {{0}};
    char *p = NULL, us[RT_UUID_STR_LEN];
    rt_uuid_to_str(uuid, us);
    int rc = mach_find(us, &p, &m, &err);
    if (rc < 0)
        return mg_fail_err(rc, &err, "cannot read VM '%s' after it stopped", name);
    const char *got = cfg_machine_state_name(m->state);
    if (strcmp(got, want))
        rc = mg_fail("VM '%s' stopped, but its state is recorded as '%s', not '%s'", name, got, want);
    cfg_machine_free(m);
    free(p);
    return rc;
}

/* keyboardputscancode: each argument one or two hex digits. */
static int mg_scancodes(struct mg_args *a, char **out)
{
    size_t cap = (size_t)a->pos_count * 3 + 1, len = 0;
    char *s = malloc(cap);
    if (!s)
        return mg_fail("out of memory");
    for (int i = 2; i < a->pos_count; i++) {
        const char *h = a->pos[i];
        size_t n = strlen(h);
        if (n < 1 || n > 2 || strspn(h, "0123456789abcdefABCDEF") != n) {
            free(s);
            return mg_usage("scancode '%s' must be a byte in hex (1c, 9c, e0 ...)", h);
        }
        len += (size_t)snprintf(s + len, cap - len, "%s%s", len ? " " : "", h);
    }
    *out = s;
    return 0;
}

static char *mg_join(struct mg_args *a, int from)
{
    size_t len = 1;
    for (int i = from; i < a->pos_count; i++)
        len += strlen(a->pos[i]) + 1;
    char *s = malloc(len), *p = s;
    if (!s)
        return NULL;
    for (int i = from; i < a->pos_count; i++)
        p += sprintf(p, "%s%s", i > from ? " " : "", a->pos[i]);
    *p = '\0';
    return s;
}

static int mg_controlvm(int argc, char **argv)
{
    static const struct mg_opt opts[] = {{NULL, 0, 0, 0, 0, 0}};
    static const char *const simple[] = {"pause", "resume", "reset", "poweroff", "acpipowerbutton", "savestate"};
    struct mg_args a;
    int rc = mg_args_parse(argc, argv, 1, opts, &a);
    if (rc)
        return rc;
    char *path = NULL, *arg = NULL, *out_file = NULL;
    struct cfg_machine *m = NULL;
    struct vmctl *c = NULL;
    void *body = NULL;
    size_t len = 0;
    if ((rc = mg_args_want(&a, 2, 1 << 20, "the VM and what to do")))
        goto out;
    const char *action = a.pos[1], *command = NULL;
    for (size_t i = 0; i < RT_ARRAY_SIZE(simple); i++)
        if (!strcmp(action, simple[i]))
            command = action;
    if (command) {
        if ((rc = mg_args_want(&a, 2, 2, "")))
            goto out;
    } else if (!strcmp(action, "screenshotpng")) {
        if ((rc = mg_args_want(&a, 3, 3, "the PNG file to write")))
            goto out;
        command = "screenshot";
        if (!(out_file = mg_abs_path(a.pos[2]))) {
            rc = mg_fail("out of memory");
            goto out;
        }
    } else if (!strcmp(action, "keyboardputscancode")) {
        if ((rc = mg_args_want(&a, 3, 1 << 20, "the scancodes (hex bytes)")) || (rc = mg_scancodes(&a, &arg)))
            goto out;
        command = "keyboard-scancodes";
    } else if (!strcmp(action, "keyboardputstring")) {
        if ((rc = mg_args_want(&a, 3, 1 << 20, "the text to type")))
            goto out;
        if (!(arg = mg_join(&a, 2))) {
            rc = mg_fail("out of memory");
            goto out;
        }
        command = "keyboard-string";
    } else {
        rc = mg_usage("'%s' is not a controlvm action (pause, resume, reset, poweroff, acpipowerbutton, savestate, "
                      "screenshotpng, keyboardputscancode, keyboardputstring)", action);
        goto out;
    }
    if ((rc = mg_vm_find(a.pos[0], &path, &m)))
        goto out;
    if (!mach_is_running(path)) {
        rc = mg_fail("VM '%s' is not running", m->name);
        goto out;
    }
    if ((rc = vmctl_connect(&m->uuid, &c)) < 0) {
        rc = mg_fail("VM '%s' runs but does not answer on its control socket: %s", m->name, rt_err_str(rc));
        goto out;
    }
    char errmsg[256] = "";
    bool stops = !strcmp(command, "poweroff") || !strcmp(command, "savestate");
    rc = vmctl_request(c, command, arg, stops ? MG_STOP_TIMEOUT_MS : 30000, out_file ? &body : NULL,
                       out_file ? &len : NULL, errmsg);
    if (rc < 0) {
        rc = mg_fail("VM '%s' refused %s: %s", m->name, action, errmsg[0] ? errmsg : rt_err_str(rc));
        goto out;
    }
    if (stops) {
        rc = mg_wait_stopped(path, &m->uuid, m->name, !strcmp(command, "poweroff") ? "poweroff" : "saved");
        goto out;
    }
    if (out_file) {
        static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
        if (len < sizeof(png_sig) || memcmp(body, png_sig, sizeof(png_sig))) {
            rc = mg_fail("VM '%s' sent a screenshot that is not a PNG image", m->name);
            goto out;
        }
        if ((rc = rt_file_write_atomic(out_file, body, len, 0644)) < 0) {
            rc = mg_fail("cannot write the screenshot to '%s': %s", out_file, rt_err_str(rc));
            goto out;
        }
    }
    rc = 0;
out:
    vmctl_close(c);
    free(body);
    free(arg);
    free(out_file);
    cfg_machine_free(m);
    free(path);
    mg_args_free(&a);
    return rc;
}

/* ---- discardstate ------------------------------------------------------------------------------------ */

static int mg_discardstate(int argc, char **argv)
{
    static const struct mg_opt opts[] = {{NULL, 0, 0, 0, 0, 0}};
    struct mg_args a;
    int rc = mg_args_parse(argc, argv, 1, opts, &a);
    if (rc)
        return rc;
    char *path = NULL;
    struct cfg_machine *m = NULL;
    if ((rc = mg_args_want(&a, 1, 1, "the VM (name or UUID)")) || (rc = mg_vm_find(a.pos[0], &path, &m)))
        goto out;
    if (mach_is_running(path)) {
        rc = mg_fail("VM '%s' is running; it has no saved state to discard", m->name);
        goto out;
    }
    if (m->state != CFG_STATE_SAVED) {
        rc = mg_fail("VM '%s' is not in the saved state (it is '%s')", m->name, cfg_machine_state_name(m->state));
        goto out;
    }
    char uuid[RT_UUID_STR_LEN];
    rt_uuid_to_str(&m->uuid, uuid);
    struct cfg_error err = {{0}};
    if ((rc = mach_discard_state(uuid, &err)) < 0)
        rc = mg_fail_err(rc, &err, "cannot discard the saved state of VM '%s'", m->name);
out:
    cfg_machine_free(m);
    free(path);
    mg_args_free(&a);
    return rc;
}

const struct mg_cmd g_mg_control_cmds[] = {
    {"startvm", "VM [--type gui|headless] [--exec auto|kvm|soft|interp]",
     "Starts the VM in its own process (vireo-vm --startvm, detached, output in the machine's\n"
     "Logs/VM-process.log) and waits until it answers on its control socket.  If the process ends\n"
     "first, the end of its output is shown and the exit status is 2.\n"
     "  --type T       headless (default) or gui: the console window on this display (without a\n"
     "                 display server the VM runs headless and its log says so)\n"
     "  --exec E       the execution backend (vireo-vm --exec)\n",
     mg_startvm},
    {"controlvm", "VM pause|resume|reset|poweroff|acpipowerbutton|savestate\n"
                  "VM screenshotpng FILE\n"
                  "VM keyboardputscancode HEX [HEX...]\n"
                  "VM keyboardputstring TEXT [TEXT...]",
     "Asks a running VM to do something.  poweroff and savestate wait until the process has ended and\n"
     "the state is recorded (poweroff or saved).  Scancodes are set 1 bytes in hex (\"1c 9c\").\n",
     mg_controlvm},
    {"discardstate", "VM",
     "Throws away a saved VM's state: the next start boots afresh.\n",
     mg_discardstate},
};
const size_t g_mg_control_cmd_count = RT_ARRAY_SIZE(g_mg_control_cmds);
