/* tpm-swtpm.c - the TPM backend that runs swtpm (libtpms) as a child process of the VM and talks to it over socket pairs. */

/*
 * Design: one swtpm process per VM, started when the TPM device is constructed:
 *
 *   swtpm socket --tpm2 --tpmstate dir=<state dir>,mode=0600 --ctrl type=unixio,clientfd=3 --terminate
 *
 * Both channels are socket pairs, so nothing is created in the file system and there is
 * no socket path to wait for: the control channel is the child's fd 3, and the data
 * channel is handed over on it with CMD_SET_DATAFD (SCM_RIGHTS).  The control protocol
 * is swtpm's (man swtpm_ioctls): a big-endian command code and its request, answered by
 * a big-endian result and the response.  swtpm is ready when CMD_INIT (TPM_Init)
 * answers; every wait on it is bounded by a receive timeout.
 *
 * The child gets PR_SET_PDEATHSIG(SIGKILL) and exits when its control channel closes,
 * so it never outlives a crashed vireo-vm; its stderr is a pipe whose lines go to the VM
 * log.  swtpm keeps a lock in the state folder, so two VMs cannot share one TPM.
 *
 * TPM commands run on a worker thread, never on a vCPU: submit() queues the command and
 * returns, the worker sends it and reads the response without the VM lock, then wakes
 * the event loop through an eventfd; the loop takes the VM lock and hands the response
 * to the device.  drain() (saved state, reset, destroy; VM lock held, vCPUs parked)
 * waits for the worker and hands the response over itself.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vireo/devices.h"
#include "vireo/pdm.h"
#include "vireo/rt.h"
#include "vireo/vm.h"
#include "tpm-internal.h"

#define LOG_COMPONENT "swtpm"

/* swtpm control channel commands (swtpm_ioctls(8), "control channel"). */
#define SWTPM_CMD_INIT         0x02u
#define SWTPM_CMD_SHUTDOWN     0x03u
#define SWTPM_CMD_SET_LOCALITY 0x05u
#define SWTPM_CMD_SET_DATAFD   0x10u

#define SWTPM_CHILD_CTRL_FD 3
/* Bounds on waiting for swtpm: control answers, one TPM command (RSA key generation takes seconds), exit. */
#define SWTPM_CTRL_TIMEOUT_S 30
#define SWTPM_CMD_TIMEOUT_S  300
#define SWTPM_EXIT_WAIT_NS   (3 * RT_NS_PER_SEC)
#define SWTPM_NO_LOCALITY    0xffu

enum swtpm_job { SWTPM_JOB_IDLE, SWTPM_JOB_QUEUED, SWTPM_JOB_BUSY, SWTPM_JOB_DONE };

struct swtpm {
    struct vm *vm;
    struct pdm_dev *tis;
    pid_t pid;
    int ctrl_fd, data_fd, err_fd, efd;
    struct rt_watch *err_watch, *efd_watch;
    struct rt_thread *worker;
    struct rt_mutex lock;
    struct rt_cond cond;
    /* Under lock: the one command the TIS interface can have in flight. */
    enum swtpm_job job;
    bool stop;
    unsigned locality;
    size_t cmd_len, resp_len;
    uint8_t cmd[TPM_BUFFER_BYTES];
    uint8_t resp[TPM_BUFFER_BYTES];
    uint8_t handed[TPM_BUFFER_BYTES]; /* VM lock: the copy handed to the device */
    /* Worker (or, while it is idle, the VM lock holder) only. */
    uint8_t cur_locality;
    bool just_initialised; /* CMD_INIT was sent at start: the power-on reset need not repeat it */
    char err_line[512];
    size_t err_len;
};

/* ---- channel I/O ------------------------------------------------------------------ */

static int send_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? rt_err_from_errno(errno) : VERR_IO;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int recv_all(int fd, void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len) {
        ssize_t n = recv(fd, p, len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return VERR_TIMEOUT;
        if (n <= 0)
            return n < 0 ? rt_err_from_errno(errno) : VERR_EOF;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* One control command whose response is just the result code; VERR_IO when swtpm reports an error. */
static int ctrl_cmd(struct swtpm *s, uint32_t cmd, const void *req, size_t req_len, const char *what)
{
    uint8_t buf[16];
    if (req_len > sizeof(buf) - 4)
        return VERR_INVALID_PARAMETER;
    put_be32(buf, cmd);
    if (req_len)
        memcpy(buf + 4, req, req_len);
    int rc = send_all(s->ctrl_fd, buf, 4 + req_len);
    uint8_t res[4];
    if (!rc)
        rc = recv_all(s->ctrl_fd, res, sizeof(res));
    if (rc) {
        LOG_ERR("%s: no answer from swtpm (pid %d): %s", what, (int)s->pid, rt_err_str(rc));
        return rc;
    }
    if (get_be32(res) != 0) {
        LOG_ERR("%s: swtpm answered TPM error 0x%x", what, get_be32(res));
        return VERR_IO;
    }
    return 0;
}

static int ctrl_set_datafd(struct swtpm *s, int fd)
{
    uint8_t cmd[4];
    put_be32(cmd, SWTPM_CMD_SET_DATAFD);
    struct iovec iov = { .iov_base = cmd, .iov_len = sizeof(cmd) };
    union {
        struct cmsghdr hdr;
        char buf[CMSG_SPACE(sizeof(int))];
    } ctl;
    memset(&ctl, 0, sizeof(ctl));
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf) };
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
    ssize_t n;
    do
        n = sendmsg(s->ctrl_fd, &msg, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    uint8_t res[4];
    int rc = n == (ssize_t)sizeof(cmd) ? recv_all(s->ctrl_fd, res, sizeof(res)) : VERR_IO;
    if (rc || get_be32(res) != 0) {
        LOG_ERR("swtpm (pid %d) did not take its data channel: %s", (int)s->pid,
                rc ? rt_err_str(rc) : "TPM error");
        return rc ? rc : VERR_IO;
    }
    return 0;
}

static int ctrl_init(struct swtpm *s)
{
    uint8_t flags[4] = { 0, 0, 0, 0 }; /* keep the volatile state file as swtpm left it */
    int rc = ctrl_cmd(s, SWTPM_CMD_INIT, flags, sizeof(flags), "TPM_Init");
    s->cur_locality = SWTPM_NO_LOCALITY;
    return rc;
}

static void set_timeout(int fd, unsigned seconds)
{
    struct timeval tv = { .tv_sec = seconds, .tv_usec = 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* ---- the worker ----------------------------------------------------------------- */

/* Sends one command and reads its response into s->resp; on failure a TPM_RC_FAILURE response. */
static void swtpm_run_command(struct swtpm *s, unsigned locality, size_t cmd_len)
{
    int rc = 0;
    if (locality != s->cur_locality) {
        uint8_t loc = (uint8_t)locality;
        rc = ctrl_cmd(s, SWTPM_CMD_SET_LOCALITY, &loc, 1, "set locality");
        if (!rc)
            s->cur_locality = loc;
    }
    if (!rc)
        rc = send_all(s->data_fd, s->cmd, cmd_len);
    if (!rc)
        rc = recv_all(s->data_fd, s->resp, TPM_HEADER_BYTES);
    uint32_t size = rc ? 0 : tpm_header_size(s->resp);
    if (!rc && (size < TPM_HEADER_BYTES || size > TPM_BUFFER_BYTES)) {
        LOG_ERR("swtpm answered with an impossible response size %u", size);
        rc = VERR_BAD_FORMAT;
    }
    if (!rc)
        rc = recv_all(s->data_fd, s->resp + TPM_HEADER_BYTES, size - TPM_HEADER_BYTES);
    if (rc) {
        LOG_ERR("TPM command failed on swtpm (pid %d): %s", (int)s->pid, rt_err_str(rc));
        tpm_error_response(s->resp, TPM_RC_FAILURE);
        size = TPM_HEADER_BYTES;
    }
    s->resp_len = size;
}

static void *swtpm_worker(void *arg)
{
    struct swtpm *s = arg;
    rt_mutex_lock(&s->lock);
    while (!s->stop) {
        if (s->job != SWTPM_JOB_QUEUED) {
            rt_cond_wait(&s->cond, &s->lock);
            continue;
        }
        s->job = SWTPM_JOB_BUSY;
        unsigned locality = s->locality;
        size_t len = s->cmd_len;
        rt_mutex_unlock(&s->lock);
        swtpm_run_command(s, locality, len);
        rt_mutex_lock(&s->lock);
        s->job = SWTPM_JOB_DONE;
        rt_cond_broadcast(&s->cond);
        uint64_t one = 1;
        ssize_t n = write(s->efd, &one, sizeof(one));
        (void)n; /* a full counter still wakes the loop */
    }
    rt_mutex_unlock(&s->lock);
    return NULL;
}

/* VM lock held: hands a finished response to the device. */
static void swtpm_deliver(struct swtpm *s)
{
    size_t len = 0;
    rt_mutex_lock(&s->lock);
    bool done = s->job == SWTPM_JOB_DONE;
    if (done) {
        len = s->resp_len;
        memcpy(s->handed, s->resp, len);
        s->job = SWTPM_JOB_IDLE;
    }
    rt_mutex_unlock(&s->lock);
    if (done)
        tpm_tis_complete(s->tis, s->handed, len);
}

static void swtpm_efd_ready(void *opaque, int fd, unsigned revents)
{
    struct swtpm *s = opaque;
    (void)revents;
    uint64_t v;
    ssize_t n = read(fd, &v, sizeof(v));
    (void)n;
    vm_lock(s->vm);
    swtpm_deliver(s);
    vm_unlock(s->vm);
}

/* ---- backend operations ----------------------------------------------------------- */

static int swtpm_submit(void *backend, unsigned locality, const uint8_t *cmd, size_t len)
{
    struct swtpm *s = backend;
    if (len > TPM_BUFFER_BYTES || locality > 4)
        return VERR_INVALID_PARAMETER;
    rt_mutex_lock(&s->lock);
    if (s->job != SWTPM_JOB_IDLE) {
        rt_mutex_unlock(&s->lock);
        return VERR_BUSY;
    }
    memcpy(s->cmd, cmd, len);
    s->cmd_len = len;
    s->locality = locality;
    s->job = SWTPM_JOB_QUEUED;
    s->just_initialised = false;
    rt_cond_broadcast(&s->cond);
    rt_mutex_unlock(&s->lock);
    return 0;
}

static void swtpm_drain(void *backend)
{
    struct swtpm *s = backend;
    rt_mutex_lock(&s->lock);
    while (s->job == SWTPM_JOB_QUEUED || s->job == SWTPM_JOB_BUSY)
        rt_cond_wait(&s->cond, &s->lock);
    rt_mutex_unlock(&s->lock);
    swtpm_deliver(s);
}

static int swtpm_reset(void *backend)
{
    struct swtpm *s = backend;
    swtpm_drain(s);
    if (s->just_initialised) {
        s->just_initialised = false;
        return 0;
    }
    return ctrl_init(s);
}

/* Logs what swtpm wrote to its stderr, line by line. */
static void swtpm_log_stderr(struct swtpm *s, bool flush)
{
    for (;;) {
        ssize_t n = read(s->err_fd, s->err_line + s->err_len, sizeof(s->err_line) - 1 - s->err_len);
        if (n <= 0)
            break;
        s->err_len += (size_t)n;
        char *nl;
        while ((nl = memchr(s->err_line, '\n', s->err_len)) != NULL) {
            *nl = '\0';
            LOG_WARN("%s", s->err_line);
            s->err_len -= (size_t)(nl + 1 - s->err_line);
            memmove(s->err_line, nl + 1, s->err_len);
        }
        if (s->err_len == sizeof(s->err_line) - 1) {
            s->err_line[s->err_len] = '\0';
            LOG_WARN("%s", s->err_line);
            s->err_len = 0;
        }
    }
    if (flush && s->err_len) {
        s->err_line[s->err_len] = '\0';
        LOG_WARN("%s", s->err_line);
        s->err_len = 0;
    }
}

static void swtpm_err_ready(void *opaque, int fd, unsigned revents)
{
    struct swtpm *s = opaque;
    (void)fd;
    swtpm_log_stderr(s, false);
    if (revents & RT_EV_ERROR) {
        /* swtpm closed its stderr (it exited): stop watching a descriptor that stays readable. */
        swtpm_log_stderr(s, true);
        rt_evloop_watch_remove(s->err_watch);
        s->err_watch = NULL;
    }
}

/* Waits (bounded) for the child to exit, then kills it. */
static void swtpm_reap(struct swtpm *s)
{
    if (s->pid <= 0)
        return;
    uint64_t deadline = rt_time_mono_ns() + SWTPM_EXIT_WAIT_NS;
    for (;;) {
        pid_t r = waitpid(s->pid, NULL, WNOHANG);
        if (r == s->pid || (r < 0 && errno != EINTR))
            break;
        if (rt_time_mono_ns() >= deadline) {
            LOG_WARN("swtpm (pid %d) did not exit; killing it", (int)s->pid);
            kill(s->pid, SIGKILL);
            while (waitpid(s->pid, NULL, 0) < 0 && errno == EINTR)
                ;
            break;
        }
        rt_sleep_ns(5 * RT_NS_PER_MS);
    }
    s->pid = -1;
}

static void swtpm_destroy(void *backend)
{
    struct swtpm *s = backend;
    if (s->worker) {
        rt_mutex_lock(&s->lock);
        s->stop = true;
        rt_cond_broadcast(&s->cond);
        rt_mutex_unlock(&s->lock);
        rt_thread_join(s->worker, NULL);
    }
    /* TPM2_Shutdown is the guest's business; CMD_SHUTDOWN makes swtpm save its state and exit. */
    if (s->pid > 0 && s->ctrl_fd >= 0)
        ctrl_cmd(s, SWTPM_CMD_SHUTDOWN, NULL, 0, "shutdown");
    if (s->ctrl_fd >= 0)
        close(s->ctrl_fd);
    if (s->data_fd >= 0)
        close(s->data_fd);
    swtpm_reap(s);
    if (s->err_fd >= 0)
        swtpm_log_stderr(s, true);
    if (s->err_watch)
        rt_evloop_watch_remove(s->err_watch);
    if (s->efd_watch)
        rt_evloop_watch_remove(s->efd_watch);
    if (s->err_fd >= 0)
        close(s->err_fd);
    if (s->efd >= 0)
        close(s->efd);
    LOG_INFO("swtpm stopped");
    rt_cond_destroy(&s->cond);
    rt_mutex_destroy(&s->lock);
    free(s);
}

static const struct tpm_backend_ops g_swtpm_ops = {
    .submit = swtpm_submit,
    .drain = swtpm_drain,
    .reset = swtpm_reset,
    .destroy = swtpm_destroy,
};

/* ---- start ----------------------------------------------------------------------- */

/* The swtpm executable from PATH (resolved before fork: the child only calls async-signal-safe functions). */
static char *swtpm_find(void)
{
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    char *copy = strdup(path);
    if (!copy)
        return NULL;
    char *found = NULL, *save = NULL;
    for (char *dir = strtok_r(copy, ":", &save); dir && !found; dir = strtok_r(NULL, ":", &save)) {
        char *cand = rt_path_join(dir, "swtpm");
        if (cand && access(cand, X_OK) == 0)
            found = cand;
        else
            free(cand);
    }
    free(copy);
    return found;
}

static void swtpm_child(const char *exe, char *const argv[], int ctrl_fd, int err_fd, pid_t parent)
{
    /* Only async-signal-safe calls from here on: the VM process has threads. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127);
    int null_fd = open("/dev/null", O_RDWR);
    if (null_fd < 0 || dup2(null_fd, 0) < 0 || dup2(null_fd, 1) < 0 || dup2(err_fd, 2) < 0 ||
        dup2(ctrl_fd, SWTPM_CHILD_CTRL_FD) < 0)
        _exit(127);
    syscall(SYS_close_range, SWTPM_CHILD_CTRL_FD + 1, ~0u, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execv(exe, argv);
    _exit(127);
}

static int swtpm_spawn(struct swtpm *s, char *exe, const char *state_dir)
{
    char *tpmstate = rt_strdup_printf("dir=%s,mode=0600", state_dir);
    char ctrl_arg[64];
    snprintf(ctrl_arg, sizeof(ctrl_arg), "type=unixio,clientfd=%d", SWTPM_CHILD_CTRL_FD);
    char *const argv[] = { "swtpm", "socket", "--tpm2", "--tpmstate", tpmstate, "--ctrl", ctrl_arg,
                           "--terminate", NULL };
    int ctrl[2] = { -1, -1 }, data[2] = { -1, -1 }, err[2] = { -1, -1 };
    int rc = tpmstate ? 0 : VERR_NO_MEMORY;
    if (!rc && (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ctrl) < 0 ||
                socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, data) < 0 || pipe2(err, O_CLOEXEC) < 0))
        rc = rt_err_from_errno(errno);
    pid_t parent = getpid();
    if (!rc) {
        s->pid = fork();
        if (s->pid == 0)
            swtpm_child(exe, argv, ctrl[1], err[1], parent);
        if (s->pid < 0)
            rc = rt_err_from_errno(errno);
    }
    free(exe);
    free(tpmstate);
    if (ctrl[1] >= 0)
        close(ctrl[1]);
    if (err[1] >= 0)
        close(err[1]);
    s->ctrl_fd = ctrl[0];
    s->err_fd = err[0];
    s->data_fd = data[0];
    if (!rc) {
        fcntl(s->err_fd, F_SETFL, O_NONBLOCK);
        set_timeout(s->ctrl_fd, SWTPM_CTRL_TIMEOUT_S);
        set_timeout(s->data_fd, SWTPM_CMD_TIMEOUT_S);
        LOG_INFO("swtpm started (pid %d, state %s)", (int)s->pid, state_dir);
        rc = ctrl_set_datafd(s, data[1]);
    } else {
        LOG_ERR("cannot start swtpm: %s", rt_err_str(rc));
    }
    if (data[1] >= 0)
        close(data[1]);
    if (!rc)
        rc = ctrl_init(s);
    return rc;
}

int tpm_swtpm_open(struct pdm_dev *tis, const char *state_dir, const struct tpm_backend_ops **ops,
                   void **backend)
{
    /* swtpm splits its option values at commas. */
    if (!*state_dir || strchr(state_dir, ',')) {
        LOG_ERR("TPM state folder '%s' is empty or has a comma, which swtpm's options cannot carry", state_dir);
        return VERR_CFG_BAD_VALUE;
    }
    char *exe = swtpm_find();
    if (!exe) {
        LOG_ERR("TPM emulator 'swtpm' not found: install Debian's swtpm package (apt-get install swtpm swtpm-tools)");
        return VERR_NOT_FOUND;
    }
    int rc = rt_dir_create_all(state_dir, 0700);
    if (rc) {
        LOG_ERR("cannot create the TPM state folder '%s': %s", state_dir, rt_err_str(rc));
        free(exe);
        return rc;
    }
    struct swtpm *s = calloc(1, sizeof(*s));
    if (!s) {
        free(exe);
        return VERR_NO_MEMORY;
    }
    s->vm = pdm_dev_vm(tis);
    s->tis = tis;
    s->pid = -1;
    s->ctrl_fd = s->data_fd = s->err_fd = s->efd = -1;
    s->cur_locality = SWTPM_NO_LOCALITY;
    rc = rt_mutex_init(&s->lock);
    if (rc) {
        free(exe);
        free(s);
        return rc;
    }
    rc = rt_cond_init(&s->cond);
    if (rc) {
        rt_mutex_destroy(&s->lock);
        free(exe);
        free(s);
        return rc;
    }
    struct rt_evloop *loop = vm_get_evloop(s->vm);
    rc = swtpm_spawn(s, exe, state_dir); /* frees exe */
    if (rc) {
        swtpm_log_stderr(s, true);
        LOG_ERR("swtpm did not start for '%s' (is another VM using this TPM state?)", state_dir);
    }
    if (!rc) {
        s->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (s->efd < 0)
            rc = rt_err_from_errno(errno);
    }
    if (!rc)
        rc = rt_evloop_watch_add(loop, s->efd, RT_EV_READ, swtpm_efd_ready, s, &s->efd_watch);
    if (!rc)
        rc = rt_evloop_watch_add(loop, s->err_fd, RT_EV_READ, swtpm_err_ready, s, &s->err_watch);
    if (!rc)
        rc = rt_thread_create(&s->worker, "vireo-swtpm", swtpm_worker, s);
    if (rc) {
        swtpm_destroy(s);
        return rc;
    }
    s->just_initialised = true;
    *ops = &g_swtpm_ops;
    *backend = s;
    return 0;
}
