/* vm-vnc.c - vireo-vm's VNC options (--vnc, --vnc-password-file, --vnc-no-auth, --vnc-keymap) and the VNC server of a --startvm machine from its settings. */
/*
 * The command line decides when it names --vnc; otherwise a --startvm machine's settings do
 * (remote display: VNC on, its port, listen address and password).  A password is never taken
 * from the command line (it would show in ps): only from a file or from the machine's settings
 * file, which is private to its owner.  Without one, the command line must say --vnc-no-auth;
 * a machine whose settings enable VNC without a password runs without one, with a warning.
 * A --vnc server that cannot start keeps the VM from starting; one from the settings is logged
 * as an error and the machine runs without it (as the RDP server does).
 * While the server runs, the machine's extra data "Vireo/VNC/Listening" holds ADDRESS:PORT, so
 * `vireo-manage getextradata VM Vireo/VNC/Listening` finds the port that port 0 picked.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm-process.h"

#define LOG_COMPONENT "vnc"

#define VM_VNC_EXTRA_LISTENING "Vireo/VNC/Listening"
#define VM_VNC_EXTRA_LAYOUT "Vireo/KeyboardLayout"

int vmproc_vnc_option(struct vmproc_vnc *v, enum vmproc_vnc_opt which, const char *arg)
{
    char err[256];
    int rc = 0;
    switch (which) {
    case VMPROC_VNC_LISTEN:
        rc = vnc_listen_parse(arg, &v->opts, err, sizeof(err));
        v->enabled = v->from_cli = rc == 0;
        break;
    case VMPROC_VNC_PASSWORD_FILE:
        rc = vnc_password_file_read(arg, &v->opts, err, sizeof(err));
        v->password_given = rc == 0;
        break;
    case VMPROC_VNC_NO_AUTH: v->opts.no_auth = true; break;
    case VMPROC_VNC_KEYMAP:
        rc = vnc_keymap_set(&v->opts, arg, err, sizeof(err));
        v->keymap_given = rc == 0;
        break;
    }
    if (rc) {
        fprintf(stderr, "vireo-vm: %s (see --help)\n", err);
        return VMPROC_EXIT_USAGE;
    }
    return 0;
}

int vmproc_vnc_check(struct vmproc_vnc *v)
{
    const char *stray = v->password_given ? "--vnc-password-file" : v->opts.no_auth ? "--vnc-no-auth"
                                                                   : v->keymap_given ? "--vnc-keymap" : NULL;
    if (!v->from_cli && stray) {
        fprintf(stderr, "vireo-vm: %s needs --vnc [ADDRESS:]PORT (see --help)\n", stray);
        return VMPROC_EXIT_USAGE;
    }
    if (v->from_cli && v->password_given && v->opts.no_auth) {
        fprintf(stderr, "vireo-vm: --vnc-password-file and --vnc-no-auth contradict each other; give one\n");
        return VMPROC_EXIT_USAGE;
    }
    if (v->from_cli && !v->password_given && !v->opts.no_auth) {
        fprintf(stderr, "vireo-vm: --vnc needs --vnc-password-file FILE (the password on its first line), or "
                        "--vnc-no-auth to let anyone who reaches the port in without a password\n");
        return VMPROC_EXIT_USAGE;
    }
    return 0;
}

/* The settings' VNC part, unless the command line gave --vnc. */
static int vnc_from_settings(struct vmproc *p)
{
    struct vmproc_vnc *v = &p->vnc;
    const struct cfg_remote *r = &p->m->hw.remote;
    if (!v->keymap_given) {
        const char *layout = cfg_extra_get(p->m->extra, p->m->extra_count, VM_VNC_EXTRA_LAYOUT);
        char err[160];
        if (layout && vnc_keymap_set(&v->opts, layout, err, sizeof(err)))
            LOG_WARN("extra data %s: %s; using us", VM_VNC_EXTRA_LAYOUT, err);
    }
    if (v->from_cli || !r->vnc_enabled)
        return 0;
    v->enabled = true;
    v->opts.port = r->vnc_port;
    v->opts.address[0] = '\0';
    if (r->address && r->address[0]) {
        unsigned char buf[sizeof(struct in6_addr)];
        if (strlen(r->address) >= sizeof(v->opts.address) ||
            (inet_pton(AF_INET, r->address, buf) != 1 && inet_pton(AF_INET6, r->address, buf) != 1)) {
            LOG_ERR("the machine's remote display address '%s' is not a numeric IPv4 or IPv6 address; change it "
                    "with vireo-manage modifyvm %s --vrdeaddress", r->address, p->m->name);
            return VERR_CFG_BAD_VALUE;
        }
        rt_strlcpy(v->opts.address, r->address, sizeof(v->opts.address));
    }
    if (r->password && r->password[0]) {
        int rc = vnc_password_set(&v->opts, r->password);
        if (rc)
            return rc;
    } else {
        v->opts.no_auth = true;
        LOG_WARN("VNC is enabled in the machine's settings without a password: anyone who reaches the port controls "
                 "the machine (set one with vireo-manage modifyvm %s --vncpass)", p->m->name);
    }
    return 0;
}

struct vnc_extra_edit {
    const struct rt_uuid *uuid;
    const char *value; /* NULL removes the key */
};

static int vnc_edit_extra(void *opaque, struct cfg_machine *m, const char *settings_path, struct cfg_error *err)
{
    const struct vnc_extra_edit *e = opaque;
    if (memcmp(&m->uuid, e->uuid, sizeof(m->uuid)) != 0) {
        snprintf(err->msg, sizeof(err->msg), "%s: the settings file now holds another machine", settings_path);
        return VERR_INVALID_STATE;
    }
    return cfg_extra_set(&m->extra, &m->extra_count, VM_VNC_EXTRA_LISTENING, e->value);
}

static void vnc_record_listening(struct vmproc *p, const char *value)
{
    struct vnc_extra_edit e = { .uuid = &p->m->uuid, .value = value };
    struct cfg_error err = { { 0 } };
    int rc = mach_edit_path(p->settings_path, true, vnc_edit_extra, &e, &err);
    if (rc)
        LOG_WARN("cannot record the VNC port in the machine's extra data %s: %s", VM_VNC_EXTRA_LISTENING,
                 err.msg[0] ? err.msg : rt_err_str(rc));
}

int vmproc_vnc_start(struct vmproc *p)
{
    int rc = vnc_from_settings(p);
    if (!rc && p->vnc.enabled)
        rc = vnc_server_start(p->vm, &p->vnc.opts, &p->vnc.server);
    if (rc && !p->vnc.from_cli) {
        /* As with RDP: a remote display the settings ask for is no reason to keep the machine from running. */
        LOG_ERR("the machine runs without its VNC server (see the error above)");
        return 0;
    }
    if (rc || !p->vnc.server)
        return rc;
    char where[96];
    const char *addr = vnc_server_address(p->vnc.server);
    snprintf(where, sizeof(where), strchr(addr, ':') ? "[%s]:%u" : "%s:%u", addr, vnc_server_port(p->vnc.server));
    vnc_record_listening(p, where);
    return 0;
}

void vmproc_vnc_stop(struct vmproc *p)
{
    if (p->vnc.server) {
        vnc_server_stop(p->vnc.server);
        p->vnc.server = NULL;
        vnc_record_listening(p, NULL);
    }
    vnc_options_clear(&p->vnc.opts);
}
