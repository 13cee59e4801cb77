/* modify.c - vireo-manage modifyvm: every hardware option checked first, then applied to the machine's settings in one transaction. */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manage.h"

/*
 * Two passes.  mg_change_parse turns each option into a checked value (a bad value is a usage error,
 * exit 1, before anything is read from disk); mg_change_apply then runs inside mach_edit's transaction
 * and can only fail on what depends on the machine (a port forward that exists already), which is an
 * operation failure (exit 2) that saves nothing.
 */

enum {
    M_NAME = 1, M_OSTYPE, M_DESCRIPTION, M_MEMORY, M_CPUS, M_FIRMWARE, M_CHIPSET, M_BOOT, M_IOAPIC, M_HPET,
    M_RTCUTC, M_VRAM, M_MONITORS, M_GRAPHICS, M_VRDE, M_VRDEPORT, M_VRDEADDRESS, M_VRDEAUTH, M_VNC, M_VNCPORT,
    M_VNCPASS, M_AUDIO, M_AUDIOCTL, M_AUDIOOUT, M_AUDIOIN, M_USB, M_USBOHCI, M_USBEHCI, M_USBXHCI, M_NIC,
    M_NICTYPE, M_MAC, M_CABLE, M_BRIDGE, M_INTNET, M_HOSTONLY, M_NATPF, M_UART, M_UARTMODE, M_TPM,
};

static const char *const g_uartmode_two[] = {"file", "server", "tcpserver", NULL};
static const char *const g_natpf_two[] = {"delete", NULL};

static const struct mg_opt g_modify_opts[] = {
    {"name", M_NAME, true, 0, NULL, false},
    {"ostype", M_OSTYPE, true, 0, NULL, false},
    {"description", M_DESCRIPTION, true, 0, NULL, false},
    {"memory", M_MEMORY, true, 0, NULL, false},
    {"cpus", M_CPUS, true, 0, NULL, false},
    {"firmware", M_FIRMWARE, true, 0, NULL, false},
    {"chipset", M_CHIPSET, true, 0, NULL, false},
    {"boot#", M_BOOT, true, CFG_BOOT_SLOTS, NULL, false},
    {"ioapic", M_IOAPIC, true, 0, NULL, false},
    {"hpet", M_HPET, true, 0, NULL, false},
    {"tpm-type", M_TPM, true, 0, NULL, false},
    {"rtcuseutc", M_RTCUTC, true, 0, NULL, false},
    {"vram", M_VRAM, true, 0, NULL, false},
    {"monitorcount", M_MONITORS, true, 0, NULL, false},
    {"graphicscontroller", M_GRAPHICS, true, 0, NULL, false},
    {"vrde", M_VRDE, true, 0, NULL, false},
    {"vrdeport", M_VRDEPORT, true, 0, NULL, false},
    {"vrdeaddress", M_VRDEADDRESS, true, 0, NULL, false},
    {"vrdeauthtype", M_VRDEAUTH, true, 0, NULL, false},
    {"vnc", M_VNC, true, 0, NULL, false},
    {"vncport", M_VNCPORT, true, 0, NULL, false},
    {"vncpass", M_VNCPASS, true, 0, NULL, false},
    {"audio", M_AUDIO, true, 0, NULL, false},
    {"audiocontroller", M_AUDIOCTL, true, 0, NULL, false},
    {"audioout", M_AUDIOOUT, true, 0, NULL, false},
    {"audioin", M_AUDIOIN, true, 0, NULL, false},
    {"usb", M_USB, true, 0, NULL, false},
    {"usbohci", M_USBOHCI, true, 0, NULL, false},
    {"usbehci", M_USBEHCI, true, 0, NULL, false},
    {"usbxhci", M_USBXHCI, true, 0, NULL, false},
    {"nic#", M_NIC, true, CFG_MAX_NICS, NULL, false},
    {"nictype#", M_NICTYPE, true, CFG_MAX_NICS, NULL, false},
    {"macaddress#", M_MAC, true, CFG_MAX_NICS, NULL, false},
    {"cableconnected#", M_CABLE, true, CFG_MAX_NICS, NULL, false},
    {"bridgeadapter#", M_BRIDGE, true, CFG_MAX_NICS, NULL, false},
    {"intnet#", M_INTNET, true, CFG_MAX_NICS, NULL, false},
    {"hostonlyadapter#", M_HOSTONLY, true, CFG_MAX_NICS, NULL, false},
    {"natpf#", M_NATPF, true, CFG_MAX_NICS, g_natpf_two, true},
    {"uart#", M_UART, true, CFG_SERIAL_PORTS, NULL, false},
    {"uartmode#", M_UARTMODE, true, CFG_SERIAL_PORTS, g_uartmode_two, false},
    {NULL, 0, 0, 0, 0, 0},
};

/* One checked option. */
struct mg_change {
    int id;
    unsigned index;    /* 1-based for indexed options */
    uint64_t num;      /* numbers, on/off (0/1), enum values */
    const char *str;   /* strings (NULL: clear the field) */
    char *owned;       /* a string this change made (freed at the end) */
    struct cfg_port_forward pf; /* natpf add */
    bool pf_delete;    /* natpf delete: str is the rule name */
};

struct mg_modify {
    struct mg_change *changes;
    int count;
};

/* The options' enum values by name: each parse function from settings.h fits this shape after a cast. */
static int mg_enum(const char *opt, const char *s, int (*parse)(const char *, int *), const char *choices,
                   uint64_t *out)
{
    int v;
    if (parse(s, &v) < 0)
        return mg_usage("%s '%s' must be %s", opt, s, choices);
    *out = (uint64_t)v;
    return 0;
}

#define MG_ENUM_PARSER(fn, type, cfg_parse)            \
    static int fn(const char *s, int *out)             \
    {                                                  \
        type v;                                        \
        int rc = cfg_parse(s, &v);                     \
        *out = (int)v;                                 \
        return rc;                                     \
    }
MG_ENUM_PARSER(mg_firmware_p, enum cfg_firmware, cfg_firmware_parse)
MG_ENUM_PARSER(mg_chipset_p, enum cfg_chipset, cfg_chipset_parse)
MG_ENUM_PARSER(mg_boot_p, enum cfg_boot_dev, cfg_boot_dev_parse)
MG_ENUM_PARSER(mg_graphics_p, enum cfg_graphics, cfg_graphics_parse)

/* VBoxManage's --tpm-type spells the TPM 2.0 "2.0"; the settings file says "v2_0". */
static int mg_tpm_p(const char *s, int *out)
{
    enum cfg_tpm t = CFG_TPM_NONE;
    int rc = cfg_tpm_parse(!strcmp(s, "2.0") ? "v2_0" : s, &t);
    *out = (int)t;
    return rc;
}
MG_ENUM_PARSER(mg_audioctl_p, enum cfg_audio_ctl, cfg_audio_ctl_parse)

static int mg_nictype_p(const char *s, int *out)
{
    enum cfg_nic_type t;
    /* VirtualBox's name for the e1000 model is accepted too. */
    int rc = cfg_nic_type_parse(!strcmp(s, "82540EM") ? "e1000" : s, &t);
    *out = (int)t;
    return rc;
}

/* --audio: "none" switches audio off (-1), anything else picks the host driver. */
static int mg_audio_p(const char *s, int *out)
{
    enum cfg_audio_driver d;
    if (!strcmp(s, "none")) {
        *out = -1;
        return 0;
    }
    int rc = cfg_audio_driver_parse(s, &d);
    *out = (int)d;
    return rc;
}

/* --nicN: "none" disables the NIC (-1); "null" is an enabled NIC attached to nothing. */
static int mg_nicmode_p(const char *s, int *out)
{
    static const struct { const char *name; int v; } modes[] = {
        {"none", -1}, {"null", CFG_NET_NONE}, {"nat", CFG_NET_NAT}, {"bridged", CFG_NET_BRIDGED},
        {"hostonly", CFG_NET_HOSTONLY}, {"intnet", CFG_NET_INTERNAL},
    };
    for (size_t i = 0; i < RT_ARRAY_SIZE(modes); i++) {
        if (!strcmp(s, modes[i].name)) {
            *out = modes[i].v;
            return 0;
        }
    }
    return VERR_NOT_FOUND;
}

static int mg_auth_p(const char *s, int *out)
{
    if (!strcmp(s, "null"))
        *out = CFG_AUTH_NONE;
    else if (!strcmp(s, "password"))
        *out = CFG_AUTH_PASSWORD;
    else
        return VERR_NOT_FOUND;
    return 0;
}

/* "auto" (a new VirtualBox-style 080027xxxxxx address) or 12 hex digits, ':' or '-' between pairs allowed. */
static int mg_mac_parse(const char *opt, const char *s, char **out)
{
    char mac[13];
    size_t n = 0;
    if (!strcmp(s, "auto")) {
        struct rt_uuid r;
        if (rt_uuid_generate(&r) < 0)
            return mg_fail("cannot get random bytes for a MAC address");
        snprintf(mac, sizeof(mac), "080027%02X%02X%02X", r.bytes[0], r.bytes[1], r.bytes[2]);
    } else {
        for (const char *p = s; *p; p++) {
            if ((*p == ':' || *p == '-') && n % 2 == 0 && n > 0 && p[1])
                continue;
            if (!strchr("0123456789abcdefABCDEF", *p) || n >= 12)
                return mg_usage("%s '%s' must be 'auto' or 12 hex digits (080027AABBCC)", opt, s);
            mac[n++] = (char)(*p >= 'a' ? *p - 32 : *p);
        }
        mac[n] = '\0';
        if (n != 12)
            return mg_usage("%s '%s' must be 'auto' or 12 hex digits (080027AABBCC)", opt, s);
        unsigned first = (unsigned)strtoul((char[]){mac[0], mac[1], 0}, NULL, 16);
        if (first & 1)
            return mg_usage("%s '%s' is a multicast address, which a network card cannot have", opt, s);
        if (!strcmp(mac, "000000000000"))
            return mg_usage("%s '%s' is all zeroes", opt, s);
    }
    *out = strdup(mac);
    return *out ? 0 : mg_fail("out of memory");
}

static bool mg_is_ip(const char *s)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* "name,tcp|udp,[hostip],hostport,[guestip],guestport" */
static int mg_natpf_parse(const char *opt, const char *s, struct mg_change *c)
{
    char *copy = strdup(s);
    if (!copy)
        return mg_fail("out of memory");
    c->owned = copy;
    char *f[6];
    int n = 0;
    for (char *p = copy; n < 6; n++) {
        f[n] = p;
        char *comma = strchr(p, ',');
        if (!comma) {
            n++;
            break;
        }
        *comma = '\0';
        p = comma + 1;
        if (n == 5)
            return mg_usage("%s '%s' has more than 6 fields (name,tcp|udp,hostip,hostport,guestip,guestport)", opt, s);
    }
    if (n != 6)
        return mg_usage("%s '%s' must be name,tcp|udp,hostip,hostport,guestip,guestport (IPs may be empty)", opt, s);
    if (!f[0][0])
        return mg_usage("%s '%s': the rule needs a name", opt, s);
    int rc = mg_check_text(opt, f[0], false);
    if (rc)
        return rc;
    if (strcmp(f[1], "tcp") && strcmp(f[1], "udp"))
        return mg_usage("%s '%s': the protocol '%s' must be tcp or udp", opt, s, f[1]);
    if ((f[2][0] && !mg_is_ip(f[2])) || (f[4][0] && !mg_is_ip(f[4])))
        return mg_usage("%s '%s': '%s' is not an IP address", opt, s, f[2][0] && !mg_is_ip(f[2]) ? f[2] : f[4]);
    uint64_t hp, gp;
    if (rt_str_to_u64(f[3], &hp) || hp < 1 || hp > 65535 || rt_str_to_u64(f[5], &gp) || gp < 1 || gp > 65535)
        return mg_usage("%s '%s': ports must be numbers from 1 to 65535", opt, s);
    c->pf.name = f[0];
    c->pf.udp = !strcmp(f[1], "udp");
    c->pf.host_ip = f[2][0] ? f[2] : NULL;
    c->pf.host_port = (uint16_t)hp;
    c->pf.guest_ip = f[4][0] ? f[4] : NULL;
    c->pf.guest_port = (uint16_t)gp;
    return 0;
}

/* --uartmodeN disconnected | file PATH | server PATH | tcpserver [ADDR:]PORT, as a vireo-vm serial spec. */
static int mg_uartmode_parse(const char *opt, const struct mg_arg *a, struct mg_change *c)
{
    if (!strcmp(a->value, "disconnected")) {
        c->str = "null";
        return 0;
    }
    if (!strcmp(a->value, "tcpserver")) {
        const char *colon = strrchr(a->value2, ':');
        uint64_t port;
        if (rt_str_to_u64(colon ? colon + 1 : a->value2, &port) || port < 1 || port > 65535)
            return mg_usage("%s tcpserver '%s' must be a port from 1 to 65535 (or ADDR:PORT)", opt, a->value2);
        c->owned = rt_strdup_printf("tcp:%s", a->value2);
    } else if (!strcmp(a->value, "file") || !strcmp(a->value, "server")) {
        if (!a->value2[0])
            return mg_usage("%s %s needs a path", opt, a->value);
        int rc = mg_check_text(opt, a->value2, false);
        if (rc)
            return rc;
        char *abs = mg_abs_path(a->value2);
        if (!abs)
            return mg_fail("cannot make '%s' an absolute path", a->value2);
        c->owned = rt_strdup_printf("%s:%s", a->value[0] == 'f' ? "file" : "unix", abs);
        free(abs);
    } else {
        return mg_usage("%s '%s' must be disconnected, file PATH, server PATH or tcpserver PORT", opt, a->value);
    }
    if (!c->owned)
        return mg_fail("out of memory");
    c->str = c->owned;
    return 0;
}

static int mg_change_parse(const struct mg_arg *a, struct mg_change *c)
{
    const char *opt = a->spelled, *v = a->value;
    c->id = a->id;
    c->index = a->index;
    bool b;
    int rc;
    switch (a->id) {
    case M_NAME:
        c->str = v;
        return mg_check_vm_name(opt, v);
    case M_OSTYPE:
        rc = mg_ostype_check(opt, v, &c->owned);
        c->str = c->owned;
        return rc;
    case M_DESCRIPTION:
        c->str = v[0] ? v : NULL;
        return mg_check_text(opt, v, true);
    case M_MEMORY: return mg_parse_mib(opt, v, 4, 1024 * 1024, &c->num);
    case M_CPUS: return mg_parse_uint(opt, v, 1, 32, &c->num);
    case M_VRAM: return mg_parse_mib(opt, v, 1, 256, &c->num);
    case M_MONITORS: return mg_parse_uint(opt, v, 1, 8, &c->num);
    case M_VRDEPORT: case M_VNCPORT: return mg_parse_uint(opt, v, 0, 65535, &c->num);
    case M_FIRMWARE: return mg_enum(opt, v, mg_firmware_p, "bios or efi", &c->num);
    case M_CHIPSET: return mg_enum(opt, v, mg_chipset_p, "piix3 or ich9", &c->num);
    case M_BOOT: return mg_enum(opt, v, mg_boot_p, "none, floppy, dvd, disk or net", &c->num);
    case M_GRAPHICS: return mg_enum(opt, v, mg_graphics_p, "vbe, virtio or none", &c->num);
    case M_TPM: return mg_enum(opt, v, mg_tpm_p, "none or 2.0", &c->num);
    case M_VRDEAUTH: return mg_enum(opt, v, mg_auth_p, "null or password", &c->num);
    case M_AUDIO: return mg_enum(opt, v, mg_audio_p, "none, null, pulse, alsa or sdl", &c->num);
    case M_AUDIOCTL: return mg_enum(opt, v, mg_audioctl_p, "hda, ac97 or sb16", &c->num);
    case M_NIC: return mg_enum(opt, v, mg_nicmode_p, "none, null, nat, bridged, hostonly or intnet", &c->num);
    case M_NICTYPE: return mg_enum(opt, v, mg_nictype_p, "e1000, virtio or rtl8139", &c->num);
    case M_IOAPIC: case M_HPET: case M_RTCUTC: case M_VRDE: case M_VNC: case M_AUDIOOUT: case M_AUDIOIN:
    case M_USB: case M_USBOHCI: case M_USBEHCI: case M_USBXHCI: case M_CABLE: case M_UART:
        rc = mg_parse_onoff(opt, v, &b);
        c->num = b;
        return rc;
    case M_VRDEADDRESS:
        if (v[0] && !mg_is_ip(v))
            return mg_usage("%s '%s' is not an IP address", opt, v);
        c->str = v[0] ? v : NULL;
        return 0;
    case M_VNCPASS:
        c->str = v[0] ? v : NULL;
        return mg_check_text(opt, v, false);
    case M_BRIDGE: case M_INTNET: case M_HOSTONLY:
        c->str = v[0] ? v : NULL;
        return mg_check_text(opt, v, false);
    case M_MAC:
        rc = mg_mac_parse(opt, v, &c->owned);
        c->str = c->owned;
        return rc;
    case M_NATPF:
        if (a->value2) {
            c->pf_delete = true;
            c->str = a->value2;
            return 0;
        }
        return mg_natpf_parse(opt, v, c);
    case M_UARTMODE: return mg_uartmode_parse(opt, a, c);
    }
    return mg_usage("option '%s' is not handled", opt);
}

/* Replaces a heap string field. */
static int mg_set_str(char **field, const char *v)
{
    char *copy = v ? strdup(v) : NULL;
    if (v && !copy)
        return VERR_NO_MEMORY;
    free(*field);
    *field = copy;
    return 0;
}

static int mg_natpf_apply(struct cfg_machine *m, struct cfg_nic *nic, const struct mg_change *c, struct cfg_error *err)
{
    size_t at = nic->forward_count;
    for (size_t i = 0; i < nic->forward_count; i++)
        if (!strcmp(nic->forwards[i].name, c->pf_delete ? c->str : c->pf.name))
            at = i;
    if (c->pf_delete) {
        if (at == nic->forward_count) {
            snprintf(err->msg, sizeof(err->msg), "NIC %u of VM '%s' has no port forward named '%s'", c->index,
                     m->name, c->str);
            return VERR_NOT_FOUND;
        }
        struct cfg_port_forward *pf = &nic->forwards[at];
        free(pf->name);
        free(pf->host_ip);
        free(pf->guest_ip);
        memmove(pf, pf + 1, (nic->forward_count - at - 1) * sizeof(*pf));
        nic->forward_count--;
        return 0;
    }
    if (at < nic->forward_count) {
        snprintf(err->msg, sizeof(err->msg), "NIC %u of VM '%s' already has a port forward named '%s'", c->index,
                 m->name, c->pf.name);
        return VERR_ALREADY_EXISTS;
    }
    for (size_t i = 0; i < nic->forward_count; i++) {
        const struct cfg_port_forward *o = &nic->forwards[i];
        bool same_ip = !o->host_ip || !c->pf.host_ip || !strcmp(o->host_ip, c->pf.host_ip);
        if (o->udp == c->pf.udp && o->host_port == c->pf.host_port && same_ip) {
            snprintf(err->msg, sizeof(err->msg), "host port %u/%s of NIC %u of VM '%s' is forwarded by rule '%s' already",
                     c->pf.host_port, c->pf.udp ? "udp" : "tcp", c->index, m->name, o->name);
            return VERR_ALREADY_EXISTS;
        }
    }
    struct cfg_port_forward *arr = realloc(nic->forwards, (nic->forward_count + 1) * sizeof(*arr));
    if (!arr)
        return VERR_NO_MEMORY;
    nic->forwards = arr;
    struct cfg_port_forward *pf = &arr[nic->forward_count++];
    *pf = c->pf;
    pf->name = strdup(c->pf.name);
    pf->host_ip = c->pf.host_ip ? strdup(c->pf.host_ip) : NULL;
    pf->guest_ip = c->pf.guest_ip ? strdup(c->pf.guest_ip) : NULL;
    if (!pf->name || (c->pf.host_ip && !pf->host_ip) || (c->pf.guest_ip && !pf->guest_ip))
        return VERR_NO_MEMORY;
    return 0;
}

/* USB: --usb switches it; --usbXhci on picks that controller (and switches USB on), off switches USB off
 * only when that controller was the one in use. */
static void mg_usb_apply(struct cfg_usb *usb, enum cfg_usb_ctl ctl, bool on)
{
    if (on) {
        usb->enabled = true;
        usb->controller = ctl;
    } else if (usb->controller == ctl) {
        usb->enabled = false;
    }
}

static int mg_change_apply(struct cfg_machine *m, const struct mg_change *c, struct cfg_error *err)
{
    struct cfg_hardware *hw = &m->hw;
    struct cfg_nic *nic = c->index && c->index <= CFG_MAX_NICS ? &hw->nics[c->index - 1] : NULL;
    struct cfg_serial *uart = c->index && c->index <= CFG_SERIAL_PORTS ? &hw->serial[c->index - 1] : NULL;
    bool on = c->num != 0;
    switch (c->id) {
    case M_NAME: return mg_set_str(&m->name, c->str);
    case M_OSTYPE: return mg_set_str(&m->ostype, c->str);
    case M_DESCRIPTION: return mg_set_str(&m->description, c->str);
    case M_MEMORY: hw->memory_mib = c->num; return 0;
    case M_CPUS: hw->cpus = (unsigned)c->num; return 0;
    case M_FIRMWARE: hw->firmware = (enum cfg_firmware)c->num; return 0;
    case M_CHIPSET: hw->chipset = (enum cfg_chipset)c->num; return 0;
    case M_BOOT: hw->boot[c->index - 1] = (enum cfg_boot_dev)c->num; return 0;
    case M_IOAPIC: hw->ioapic = on; return 0;
    case M_HPET: hw->hpet = on; return 0;
    case M_TPM: hw->tpm = (enum cfg_tpm)c->num; return 0;
    case M_RTCUTC: hw->rtc_utc = on; return 0;
    case M_VRAM: hw->display.vram_mib = (unsigned)c->num; return 0;
    case M_MONITORS: hw->display.monitors = (unsigned)c->num; return 0;
    case M_GRAPHICS: hw->display.adapter = (enum cfg_graphics)c->num; return 0;
    case M_VRDE: hw->remote.rdp_enabled = on; return 0;
    case M_VRDEPORT: hw->remote.rdp_port = (uint16_t)c->num; return 0;
    case M_VRDEADDRESS: return mg_set_str(&hw->remote.address, c->str);
    case M_VRDEAUTH: hw->remote.auth = (enum cfg_remote_auth)c->num; return 0;
    case M_VNC: hw->remote.vnc_enabled = on; return 0;
    case M_VNCPORT: hw->remote.vnc_port = (uint16_t)c->num; return 0;
    case M_VNCPASS: return mg_set_str(&hw->remote.password, c->str);
    case M_AUDIO:
        hw->audio.enabled = (int)c->num != -1;
        if (hw->audio.enabled)
            hw->audio.driver = (enum cfg_audio_driver)c->num;
        return 0;
    case M_AUDIOCTL: hw->audio.controller = (enum cfg_audio_ctl)c->num; return 0;
    case M_AUDIOOUT: hw->audio.output = on; return 0;
    case M_AUDIOIN: hw->audio.input = on; return 0;
    case M_USB: hw->usb.enabled = on; return 0;
    case M_USBOHCI: mg_usb_apply(&hw->usb, CFG_USB_OHCI, on); return 0;
    case M_USBEHCI: mg_usb_apply(&hw->usb, CFG_USB_EHCI, on); return 0;
    case M_USBXHCI: mg_usb_apply(&hw->usb, CFG_USB_XHCI, on); return 0;
    case M_NIC:
        nic->enabled = (int)c->num != -1;
        if (nic->enabled)
            nic->attach = (enum cfg_nic_attach)c->num;
        return 0;
    case M_NICTYPE: nic->type = (enum cfg_nic_type)c->num; return 0;
    case M_MAC: rt_strlcpy(nic->mac, c->str, sizeof(nic->mac)); return 0;
    case M_CABLE: nic->cable_connected = on; return 0;
    case M_BRIDGE: return mg_set_str(&nic->bridge_interface, c->str);
    case M_INTNET: case M_HOSTONLY: return mg_set_str(&nic->network, c->str);
    case M_NATPF: return mg_natpf_apply(m, nic, c, err);
    case M_UART:
        uart->enabled = on;
        /* An enabled port always names its backend in the file; a port without one is disconnected. */
        if (on && !uart->backend)
            return mg_set_str(&uart->backend, "null");
        return 0;
    case M_UARTMODE: return mg_set_str(&uart->backend, c->str);
    }
    return VERR_INVALID_PARAMETER;
}

static int mg_modify_edit(void *opaque, struct cfg_machine *m, const char *settings_path, struct cfg_error *err)
{
    (void)settings_path;
    const struct mg_modify *mod = opaque;
    for (int i = 0; i < mod->count; i++) {
        int rc = mg_change_apply(m, &mod->changes[i], err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int mg_modifyvm(int argc, char **argv)
{
    struct mg_args a;
    int rc = mg_args_parse(argc, argv, 1, g_modify_opts, &a);
    if (rc)
        return rc;
    struct mg_modify mod = {calloc((size_t)a.opt_count + 1, sizeof(struct mg_change)), 0};
    char *path = NULL;
    struct cfg_machine *m = NULL;
    if (!mod.changes) {
        rc = mg_fail("out of memory");
        goto out;
    }
    if ((rc = mg_args_want(&a, 1, 1, "the VM (name or UUID)")))
        goto out;
    if (a.opt_count == 0) {
        rc = mg_usage("nothing to change: give at least one option");
        goto out;
    }
    for (int i = 0; i < a.opt_count; i++) {
        rc = mg_change_parse(&a.opts[i], &mod.changes[mod.count++]);
        if (rc)
            goto out;
    }
    if ((rc = mg_vm_find(a.pos[0], &path, &m)))
        goto out;
    if (mach_is_running(path)) {
        rc = mg_fail("VM '%s' is running; power it off before changing its hardware", m->name);
        goto out;
    }
    const char *new_name = mg_args_value(&a, M_NAME);
    if (new_name && strcmp(new_name, m->name)) {
        struct cfg_machine *other = NULL;
        struct cfg_error ferr = {{0}};
        char *opath = NULL;
        if (mach_find(new_name, &opath, &other, &ferr) == 0 && memcmp(&other->uuid, &m->uuid, sizeof(m->uuid)))
            rc = mg_fail("a VM named '%s' already exists", new_name);
        cfg_machine_free(other);
        free(opath);
        if (rc)
            goto out;
    }
    struct cfg_error err = {{0}};
    rc = mach_edit_path(path, false, mg_modify_edit, &mod, &err);
    if (rc < 0)
        rc = mg_fail_err(rc, &err, "cannot change VM '%s'", m->name);
out:
    for (int i = 0; i < mod.count; i++)
        free(mod.changes[i].owned);
    free(mod.changes);
    cfg_machine_free(m);
    free(path);
    mg_args_free(&a);
    return rc;
}

const struct mg_cmd g_mg_modify_cmds[] = {
    {"modifyvm", "VM [options]",
     "Changes a machine's settings (not while it runs).  Every option is checked before anything is\n"
     "written; N is a NIC (1-8), boot slot (1-4) or serial port (1-4).\n"
     "  --name NAME            rename (the folder and file keep their names)\n"
     "  --ostype TYPE          OS type id (see 'vireo-manage list ostypes')\n"
     "  --description TEXT\n"
     "  --memory MiB           RAM: a number of MiB, or with K/M/G/T (4 MiB to 1 TiB)\n"
     "  --cpus N               1-32\n"
     "  --firmware bios|efi    --chipset piix3|ich9\n"
     "  --bootN none|floppy|dvd|disk|net\n"
     "  --ioapic on|off        --hpet on|off        --rtcuseutc on|off\n"
     "  --tpm-type none|2.0    a TPM 2.0 (swtpm) with its state in the machine folder's tpm/\n"
     "  --vram MiB (1-256)     --monitorcount N (1-8)   --graphicscontroller vbe|virtio|none\n"
     "  --vrde on|off          --vrdeport P (0: first free from 3389)   --vrdeaddress IP\n"
     "  --vrdeauthtype null|password\n"
     "  --vnc on|off           --vncport P (0: first free from 5900)    --vncpass PASSWORD\n"
     "  --audio none|null|pulse|alsa|sdl   --audiocontroller hda|ac97|sb16\n"
     "  --audioout on|off      --audioin on|off\n"
     "  --usb on|off           --usbohci|--usbehci|--usbxhci on|off (picks the controller)\n"
     "  --nicN none|null|nat|bridged|hostonly|intnet   --nictypeN e1000|virtio|rtl8139\n"
     "  --macaddressN auto|HEX --cableconnectedN on|off\n"
     "  --bridgeadapterN IF    --intnetN NAME        --hostonlyadapterN NAME\n"
     "  --natpfN name,tcp|udp,[hostip],hostport,[guestip],guestport   (may be repeated)\n"
     "  --natpfN delete NAME\n"
     "  --uartN on|off         --uartmodeN disconnected|file PATH|server PATH|tcpserver [ADDR:]PORT\n"
     "Shared folders: see 'vireo-manage sharedfolder --help'.\n",
     mg_modifyvm},
};
const size_t g_mg_modify_cmd_count = RT_ARRAY_SIZE(g_mg_modify_cmds);
