/* startvm.c - vireo-vm --startvm: runs a registered machine from its settings, owning its run lock, log, state records and control socket. */
/*
 * Design: the process takes the machine's run lock first and holds it to the end, so
 * everything after that (rotating the logs, replacing a stale control socket, writing the
 * state) is done by the only process that may.  The main thread builds the VM, then runs
 * a small event loop of its own for the control socket and the termination signals
 * (signalfd), waking every 100 ms to see whether the VM has ended.  Control commands run
 * on that thread, outside the VM's event loop, so a command may pause the VM, wait for disk
 * I/O to drain and write files without holding up the threads that complete the I/O.
 *
 * State records follow what the settings file promises: "running" once the VM has started
 * (and, after a restore, the saved state cleared before its file is deleted, so a crash in
 * between leaves an orphan file rather than a record pointing at nothing); "paused" and
 * "running" as the control socket changes it; at the end "poweroff" or "aborted" after
 * the VM is destroyed and its disks closed, or "saved" by the savestate command before it
 * answers.  A process killed outright leaves "running" with a free run lock, which readers
 * report as aborted and the next start simply starts fresh.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "vm-process.h"
#include "../remote/rdp.h"

#define LOG_COMPONENT "startvm"

#define VMPROC_LOG_KEEP 3 /* VM.log.1 .. VM.log.3, as VirtualBox keeps them */

static void startvm_usage(FILE *out)
{
    fprintf(out,
            "Usage: vireo-vm --startvm NAME|UUID [options]\n"
            "Runs a registered machine as configured in its settings, with its log in <machine folder>/Logs/VM.log\n"
            "and a control socket for vireo-manage.\n\n"
            "  --headless             run without a console window (without a display server it runs headless\n"
            "                         anyway)\n"
            "  --exec auto|kvm|soft|interp  execution backend (default: the machine's extra data Vireo/Exec, else\n"
            "                         auto)\n"
            "  --log-level LEVEL      error | warn | info | debug (default info)\n"
            "  --verbose              also show informational log lines on stderr\n"
            "  --timeout SECONDS      power off after this much host time (exit code 124)\n"
            VMPROC_VNC_HELP
            "                         (without --vnc: the machine's remote display settings)\n"
            RDP_OPTIONS_HELP
            "                         (without --rdp: the machine's remote display settings; the certificate\n"
            "                         in the machine folder)\n"
            "  --help                 this text\n\n"
            "Exit status: 0 after a power off or a saved state, 1 when the machine cannot be started (unknown,\n"
            "already running, bad settings), 2 when the VM aborted or its saved state cannot be restored,\n"
            "124 on --timeout.\n");
}

static int startvm_fail(const char *fmt, ...) RT_PRINTF(1, 2);
static int startvm_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "vireo-vm: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    return VMPROC_EXIT_USAGE;
}

/* ---- Settings records ------------------------------------------------------------------------- */

struct state_edit {
    enum cfg_machine_state state;
    const char *state_file;
    const struct rt_uuid *uuid;
};

static int edit_state(void *opaque, struct cfg_machine *m, const char *settings_path, struct cfg_error *err)
{
    const struct state_edit *e = opaque;
    /* The file at this path must still be this machine's (a replaced file gets no foreign record). */
    if (memcmp(&m->uuid, e->uuid, sizeof(m->uuid)) != 0) {
        snprintf(err->msg, sizeof(err->msg), "%s: the settings file now holds another machine", settings_path);
        return VERR_INVALID_STATE;
    }
    char *file = e->state_file ? strdup(e->state_file) : NULL;
    if (e->state_file && !file)
        return VERR_NO_MEMORY;
    free(m->state_file);
    m->state_file = file;
    m->state = e->state;
    m->state_changed_ns = rt_time_real_ns();
    return 0;
}

int vmproc_record_state(struct vmproc *p, enum cfg_machine_state state, const char *state_file)
{
    struct state_edit e = { .state = state, .state_file = state_file, .uuid = &p->m->uuid };
    struct cfg_error err = { { 0 } };
    int rc = mach_edit_path(p->settings_path, true, edit_state, &e, &err);
    if (rc)
        LOG_ERR("cannot record the state '%s' in the settings: %s", cfg_machine_state_name(state),
                err.msg[0] ? err.msg : rt_err_str(rc));
    else
        LOG_INFO("settings: state %s%s%s", cfg_machine_state_name(state), state_file ? ", saved state " : "",
                 state_file ? state_file : "");
    return rc;
}

const char *vmproc_snapshot_folder(const struct vmproc *p)
{
    return p->m->snapshot_folder && p->m->snapshot_folder[0] ? p->m->snapshot_folder : "Snapshots";
}

/* ---- Run lock and logs ------------------------------------------------------------------------ */

/* The process holding the machine's run lock, from /proc/locks (0 when it cannot be told). */
static long run_lock_holder(const char *settings_path)
{
    char *lock_path = mach_path(settings_path, ".vireo-run.lock");
    struct stat st;
    long pid = 0;
    if (lock_path && stat(lock_path, &st) == 0) {
        FILE *f = fopen("/proc/locks", "r");
        char line[256];
        while (f && fgets(line, sizeof(line), f)) {
            long holder;
            unsigned maj, min;
            unsigned long long ino;
            char kind[16];
            /* "1: FLOCK  ADVISORY  WRITE 1234 08:02:131089 0 EOF" */
            if (sscanf(line, "%*d: %15s %*s %*s %ld %x:%x:%llu", kind, &holder, &maj, &min, &ino) == 5 &&
                !strcmp(kind, "FLOCK") && ino == (unsigned long long)st.st_ino && maj == major(st.st_dev) &&
                min == minor(st.st_dev) && holder > 0 && holder != (long)getpid()) {
                pid = holder;
                break;
            }
        }
        if (f)
            fclose(f);
    }
    free(lock_path);
    return pid;
}

/* VM.log -> VM.log.1 -> ... -> VM.log.3 (the oldest is replaced). */
static void rotate_logs(const char *logs_dir)
{
    for (int i = VMPROC_LOG_KEEP; i >= 1; i--) {
        char from[4096], to[4096];
        if (i == 1)
            snprintf(from, sizeof(from), "%s/VM.log", logs_dir);
        else
            snprintf(from, sizeof(from), "%s/VM.log.%d", logs_dir, i - 1);
        snprintf(to, sizeof(to), "%s/VM.log.%d", logs_dir, i);
        if (rename(from, to) != 0 && errno != ENOENT)
            fprintf(stderr, "vireo-vm: cannot rotate the log '%s': %s\n", from, strerror(errno));
    }
}

static int open_log(struct vmproc *p)
{
    char *logs = mach_path(p->settings_path, "Logs");
    if (!logs)
        return VERR_NO_MEMORY;
    int rc = rt_dir_create_all(logs, 0700);
    if (rc) {
        fprintf(stderr, "vireo-vm: cannot create the log folder '%s': %s\n", logs, rt_err_str(rc));
        free(logs);
        return rc;
    }
    rotate_logs(logs);
    char *log = rt_path_join(logs, "VM.log");
    rc = log ? rt_log_open_file(log) : VERR_NO_MEMORY;
    if (rc)
        fprintf(stderr, "vireo-vm: cannot open the log '%s': %s\n", log ? log : logs, rt_err_str(rc));
    free(log);
    free(logs);
    return rc;
}

/* ---- The main thread's loop ------------------------------------------------------------------- */

struct signal_watch {
    struct vmproc *p;
    int fd;
};

static void signal_event(void *opaque, int fd, unsigned revents)
{
    struct signal_watch *sw = opaque;
    struct signalfd_siginfo si;
    (void)revents;
    if (read(fd, &si, sizeof(si)) != (ssize_t)sizeof(si))
        return;
    if (sw->p->ending == VMPROC_END_NONE) {
        LOG_WARN("signal %u: powering off", si.ssi_signo);
        sw->p->ending = VMPROC_END_POWEROFF;
        vm_request_poweroff(sw->p->vm, 0);
    }
}

/* Serves the control socket and signals until the VM has ended or a command ended the process. */
static void run_loop(struct vmproc *p, uint64_t timeout_s)
{
    uint64_t deadline = timeout_s ? rt_time_mono_ns() + timeout_s * RT_NS_PER_SEC : 0;
    while (!p->stop_loop) {
        enum vm_state st = vm_get_state(p->vm);
        if (st == VM_STATE_POWERED_OFF || st == VM_STATE_ABORTED)
            break;
        rt_evloop_run_once(p->ctl_loop, 100 * RT_NS_PER_MS);
        if (deadline && rt_time_mono_ns() >= deadline && p->ending == VMPROC_END_NONE) {
            LOG_WARN("--timeout of %llu s reached: powering off", (unsigned long long)timeout_s);
            p->ending = VMPROC_END_POWEROFF;
            vm_request_poweroff(p->vm, VMPROC_EXIT_TIMEOUT);
        }
    }
}

/* ---- Start ---------------------------------------------------------------------------------------- */

/* Seeds the RTC with local time when the machine keeps its clock in local time (Windows guests). */
static void seed_local_rtc(struct vm *vm)
{
    time_t now = time(NULL);
    struct tm lt;
    if (!localtime_r(&now, &lt))
        return;
    int64_t ns = (int64_t)rt_time_real_ns() + (int64_t)lt.tm_gmtoff * (int64_t)RT_NS_PER_SEC;
    tm_set_boot_real_ns(vm, ns > 0 ? (uint64_t)ns : 0);
    LOG_INFO("RTC in local time (UTC%+ld s)", (long)lt.tm_gmtoff);
}

/* Creates the VM and the board; restores the saved state when there is one.  Returns an exit code or 0. */
static int build_vm(struct vmproc *p, const char **restored)
{
    unsigned errors_before = rt_log_error_count();
    *restored = NULL;
    int rc = vmproc_config_build(p);
    if (!rc)
        rc = vm_create(&p->vp, &p->vm);
    if (!rc) {
        p->pp.apic = vm_get_backend(p->vm) && vm_get_backend(p->vm)->guest_apic;
        rc = pc_board_create(p->vm, &p->pp);
    }
    if (rc) {
        if (rt_log_error_count() == errors_before)
            LOG_ERR("cannot build the virtual machine: %s", rt_err_str(rc));
        return VMPROC_EXIT_USAGE;
    }
    bool saved = p->m->state == CFG_STATE_SAVED;
    if (saved && (!p->m->state_file || !p->m->state_file[0])) {
        LOG_WARN("the settings say the machine is saved but name no state file; starting it fresh");
        saved = false;
    }
    if (!saved) {
        if (!p->m->hw.rtc_utc)
            seed_local_rtc(p->vm);
        return 0;
    }
    char *file = mach_path(p->settings_path, p->m->state_file);
    if (!file)
        return VMPROC_EXIT_ABORTED;
    LOG_INFO("restoring the saved state '%s'", file);
    rc = vm_state_load(p->vm, file);
    if (rc) {
        LOG_ERR("cannot restore the saved state '%s': %s.  The file is kept; 'vireo-manage discardstate %s' "
                "discards it so the machine starts fresh", file, rt_err_str(rc), p->m->name);
        free(file);
        return VMPROC_EXIT_ABORTED;
    }
    free(file);
    *restored = p->m->state_file;
    return 0;
}

/* What the previous run left: said in the log, so an aborted run is visible. */
static void log_previous_state(const struct vmproc *p)
{
    enum cfg_machine_state st = p->m->state;
    if (st == CFG_STATE_RUNNING || st == CFG_STATE_PAUSED || st == CFG_STATE_ABORTED)
        LOG_WARN("the machine's previous VM process ended without powering off (it was aborted; recorded state "
                 "'%s'); starting it fresh", cfg_machine_state_name(st));
}

int startvm_main(int argc, char **argv)
{
    enum { OPT_STARTVM = 256, OPT_HEADLESS, OPT_EXEC, OPT_LOG_LEVEL, OPT_VERBOSE, OPT_TIMEOUT, OPT_HELP,
           OPT_RDP, OPT_RDP_USER, OPT_RDP_PASSWORD_FILE, OPT_RDP_CERT_DIR,
           OPT_VNC, OPT_VNC_PASSWORD_FILE, OPT_VNC_NO_AUTH, OPT_VNC_KEYMAP /* in enum vmproc_vnc_opt's order */ };
    static const struct option opts[] = {
        { "startvm", required_argument, NULL, OPT_STARTVM }, { "headless", no_argument, NULL, OPT_HEADLESS },
        { "exec", required_argument, NULL, OPT_EXEC },       { "log-level", required_argument, NULL, OPT_LOG_LEVEL },
        { "verbose", no_argument, NULL, OPT_VERBOSE },       { "timeout", required_argument, NULL, OPT_TIMEOUT },
        { "help", no_argument, NULL, OPT_HELP },
        { "rdp", required_argument, NULL, OPT_RDP },         { "rdp-user", required_argument, NULL, OPT_RDP_USER },
        { "rdp-password-file", required_argument, NULL, OPT_RDP_PASSWORD_FILE },
        { "rdp-cert-dir", required_argument, NULL, OPT_RDP_CERT_DIR },
        { "vnc", required_argument, NULL, OPT_VNC },         { "vnc-password-file", required_argument, NULL, OPT_VNC_PASSWORD_FILE },
        { "vnc-no-auth", no_argument, NULL, OPT_VNC_NO_AUTH }, { "vnc-keymap", required_argument, NULL, OPT_VNC_KEYMAP },
        { NULL, 0, NULL, 0 },
    };
    const char *name = NULL;
    struct rdp_options rdp_opts = { 0 };
    bool headless = false;
    uint64_t timeout_s = 0;
    enum vm_exec exec = VM_EXEC_AUTO;
    bool exec_given = false;
    struct vmproc_vnc vnc = { 0 };
    int opt;
    opterr = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case OPT_STARTVM: name = optarg; break;
        case OPT_HEADLESS: headless = true; break;
        case OPT_EXEC:
            if (vm_exec_parse(optarg, &exec))
                return startvm_fail("--exec '%s' must be auto, kvm, soft or interp (see --help)", optarg);
            exec_given = true;
            break;
        case OPT_LOG_LEVEL: {
            enum rt_log_level level;
            if (rt_log_level_parse(optarg, &level))
                return startvm_fail("--log-level '%s' must be error, warn, info or debug (see --help)", optarg);
            rt_log_set_level(level);
            break;
        }
        case OPT_VERBOSE: rt_log_set_stderr_level(RT_LOG_INFO); break;
        case OPT_TIMEOUT:
            if (rt_str_to_u64(optarg, &timeout_s) || timeout_s == 0 || timeout_s > 86400 * 365)
                return startvm_fail("--timeout '%s' must be a number of seconds (see --help)", optarg);
            break;
        case OPT_RDP: rdp_opts.listen = optarg; break;
        case OPT_RDP_USER: rdp_opts.user = optarg; break;
        case OPT_RDP_PASSWORD_FILE: rdp_opts.password_file = optarg; break;
        case OPT_RDP_CERT_DIR: rdp_opts.cert_dir = optarg; break;
        case OPT_HELP: startvm_usage(stdout); return 0;
        case OPT_VNC: case OPT_VNC_PASSWORD_FILE: case OPT_VNC_NO_AUTH: case OPT_VNC_KEYMAP: {
            int rc = vmproc_vnc_option(&vnc, (enum vmproc_vnc_opt)(opt - OPT_VNC), optarg);
            if (rc) {
                vnc_options_clear(&vnc.opts);
                return rc;
            }
            break;
        }
        default:
            return startvm_fail("option '%s' is unknown or incomplete, or not for --startvm (see --help)",
                                argv[optind - 1]);
        }
    }
    if (optind < argc)
        return startvm_fail("unexpected argument '%s' (see --help)", argv[optind]);
    if (!name || !*name)
        return startvm_fail("--startvm needs a machine name or UUID");
    if (vmproc_vnc_check(&vnc)) {
        vnc_options_clear(&vnc.opts);
        return VMPROC_EXIT_USAGE;
    }

    char rdp_msg[512];
    if (rdp_options_check(&rdp_opts, rdp_msg, sizeof(rdp_msg)))
        return startvm_fail("%s (see --help)", rdp_msg);
    struct rdp_server *rdp = NULL;
    struct vmproc p = { .vp.exec = exec, .vnc = vnc };
    struct signal_watch sw = { .p = &p, .fd = -1 };
    struct rt_watch *sig_watch = NULL;
    struct cfg_error err = { { 0 } };
    struct cfg_machine *found = NULL;
    int rc = mach_find(name, &p.settings_path, &found, &err);
    if (rc)
        return startvm_fail("%s", err.msg[0] ? err.msg : rt_err_str(rc));
    rc = mach_run_lock_acquire(p.settings_path, &p.run_lock, &err);
    if (rc) {
        if (rc == VERR_BUSY) {
            long pid = run_lock_holder(p.settings_path);
            if (pid > 0)
                startvm_fail("machine '%s' is already running (pid %ld)", found->name, pid);
            else
                startvm_fail("machine '%s' is already running", found->name);
        } else {
            startvm_fail("cannot take the run lock of machine '%s': %s", found->name,
                         err.msg[0] ? err.msg : rt_err_str(rc));
        }
        cfg_machine_free(found);
        free(p.settings_path);
        return VMPROC_EXIT_USAGE;
    }
    cfg_machine_free(found);
    /* Ours now: read the settings again, since they may have changed before the lock was taken. */
    rc = cfg_machine_load(p.settings_path, &p.m, &err);
    int code = VMPROC_EXIT_USAGE;
    if (rc) {
        startvm_fail("%s", err.msg[0] ? err.msg : rt_err_str(rc));
        goto out_unlock;
    }
    rt_uuid_to_str(&p.m->uuid, p.uuid_str);
    if (open_log(&p))
        goto out_unlock;
    LOG_INFO("vireo-vm %d: machine '%s' {%s}, settings %s", (int)getpid(), p.m->name, p.uuid_str, p.settings_path);
    log_previous_state(&p);
    /* Without --exec the machine's preferred engine (extra data "Vireo/Exec", set in the manager's settings). */
    const char *pref = exec_given ? NULL : cfg_extra_get(p.m->extra, p.m->extra_count, "Vireo/Exec");
    if (pref && vm_exec_parse(pref, &p.vp.exec)) {
        LOG_WARN("extra data Vireo/Exec '%s' is not auto, kvm, soft or interp; using auto", pref);
        p.vp.exec = VM_EXEC_AUTO;
    } else if (pref) {
        LOG_INFO("execution engine '%s' from the machine's extra data Vireo/Exec (no --exec given)", pref);
    }

    /* SIGINT/SIGTERM/SIGHUP reach the main loop's signalfd only (every thread inherits the mask). */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    const char *restored = NULL;
    if ((code = build_vm(&p, &restored)))
        goto out_vm;
    code = VMPROC_EXIT_USAGE;
    if (vmproc_vnc_start(&p))
        goto out_vm;
    sw.fd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sw.fd < 0 || rt_evloop_create(&p.ctl_loop) ||
        rt_evloop_watch_add(p.ctl_loop, sw.fd, RT_EV_READ, signal_event, &sw, &sig_watch)) {
        LOG_ERR("cannot set up the main loop: %s", strerror(errno));
        goto out_vm;
    }
    /* --rdp asks for it: no VM without it.  The settings' RDP failing leaves a VM that runs anyway. */
    char *machine_dir = rt_path_dirname(p.settings_path);
    if (!machine_dir)
        goto out_vm;
    if (rdp_opts.listen) {
        if (!rdp_opts.cert_dir)
            rdp_opts.cert_dir = machine_dir;
        rc = rdp_start_from_options(p.vm, p.m->name, &rdp_opts, &rdp);
    } else if (rdp_start_from_settings(p.vm, p.m, machine_dir, &rdp)) {
        LOG_ERR("the machine runs without its RDP server (see the error above)");
    }
    free(machine_dir);
    if (rdp_opts.listen && rc)
        goto out_vm;
    if ((rc = vm_start(p.vm))) {
        LOG_ERR("cannot start the virtual machine: %s", rt_err_str(rc));
        goto out_vm;
    }
    char *restored_path = restored ? mach_path(p.settings_path, restored) : NULL;
    if (vmproc_record_state(&p, CFG_STATE_RUNNING, NULL) == 0 && restored_path) {
        /* The record no longer names the file: only now may it go. */
        if (unlink(restored_path) != 0 && errno != ENOENT)
            LOG_WARN("cannot delete the restored saved state '%s': %s", restored_path, strerror(errno));
    }
    free(restored_path);
    if ((rc = vmproc_ctl_start(&p))) {
        LOG_ERR("cannot serve the control socket, so nothing could control this VM; powering off");
        p.ending = VMPROC_END_POWEROFF;
        vm_request_poweroff(p.vm, 0);
    }
    p.console = vmproc_console_open(p.vm, p.m->name, headless, vmproc_console_action, &p);

    run_loop(&p, timeout_s);
    int exit_code = 0;
    enum vm_state final = vm_get_state(p.vm);
    if (p.ending != VMPROC_END_SAVED) {
        exit_code = vm_wait(p.vm);
        final = vm_get_state(p.vm);
    }
    console_close(p.console);
    p.console = NULL;
    vmproc_ctl_stop(&p);
    rdp_server_stop(rdp);
    rdp = NULL;
    vmproc_vnc_stop(&p);
    vm_destroy(p.vm);
    p.vm = NULL;
    if (p.ending == VMPROC_END_SAVED) {
        code = 0;
        LOG_INFO("exit: state saved");
    } else {
        vmproc_record_state(&p, final == VM_STATE_ABORTED ? CFG_STATE_ABORTED : CFG_STATE_POWERED_OFF, NULL);
        LOG_INFO("exit: %s, code %d", vm_state_name(final), exit_code);
        code = final == VM_STATE_ABORTED || exit_code < 0 ? VMPROC_EXIT_ABORTED : exit_code & 0xff;
    }

out_vm:
    rdp_server_stop(rdp);
    vmproc_vnc_stop(&p);
    vm_destroy(p.vm);
    if (sig_watch)
        rt_evloop_watch_remove(sig_watch);
    if (p.ctl_loop)
        rt_evloop_destroy(p.ctl_loop);
    if (sw.fd >= 0)
        close(sw.fd);
    vmproc_config_free(&p);
    rt_log_close_file();
out_unlock:
    vnc_options_clear(&p.vnc.opts);
    mach_run_lock_release(p.run_lock);
    cfg_machine_free(p.m);
    free(p.settings_path);
    return code;
}
