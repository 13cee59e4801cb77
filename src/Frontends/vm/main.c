/* main.c - vireo-vm, the per-VM process: builds a PC from command-line options (or, with --startvm, from a machine's settings), runs it and reports how it ended. */
#include <errno.h>
#include <stdarg.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vireo/block.h"
#include "vireo/devices.h"
#include "vireo/display.h"
#include "vireo/vm.h"
#include "vm-process.h"
#include "../remote/rdp.h"

#define LOG_COMPONENT "main"

/* Exit codes: the test-exit device's code, else these. */
#define EXIT_USAGE 1
#define EXIT_ABORTED 2
#define EXIT_TIMEOUT 124

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: vireo-vm [options]\n"
            "       vireo-vm --startvm NAME|UUID [--headless] [options]   (see vireo-vm --startvm x --help)\n"
            "Runs one virtual PC.  Without --kernel it boots its firmware (SeaBIOS or UEFI).  With --startvm it\n"
            "runs a registered machine as its settings describe.\n\n"
            "  --memory SIZE          guest RAM; a plain number is MiB, or use K/M/G (default 128M)\n"
            "  --cpus N               virtual CPUs (default 1)\n"
            "  --bios FILE            firmware image (default %s)\n"
            "  --firmware bios|efi    SeaBIOS (default) or UEFI: OVMF from Debian's ovmf package\n"
            "  --efi-code FILE        UEFI firmware code (default " PC_DEFAULT_EFI_CODE ")\n"
            "  --efi-vars FILE        UEFI variable store, kept up to date as the guest writes it (default: a\n"
            "                         temporary copy of " PC_DEFAULT_EFI_VARS ", deleted at exit)\n"
            "  --kernel FILE          boot this Linux bzImage directly (no firmware)\n"
            "  --initrd FILE          initial ramdisk for --kernel\n"
            "  --append STRING        kernel command line for --kernel\n"
            "  --serial1..4 SPEC      COM1-COM4: null | stdio | file:PATH | unix:PATH | tcp:[ADDR:]PORT\n"
            "  --drive KEY=VALUE,...  a disk or CD/DVD drive; keys: file=PATH, if=ide|ahci|virtio (default ide),\n"
            "                         media=disk|cdrom (default disk), format=raw|vdi|qcow2|vmdk|iso (default:\n"
            "                         probe), port=N (IDE 0-3: primary master/slave, secondary master/slave;\n"
            "                         AHCI 0-5), readonly=on|off; a CD drive without file= is empty\n"
            "  --hda FILE             hard disk on the IDE primary master (--drive file=FILE,if=ide,port=0)\n"
            "  --cdrom FILE           CD/DVD on the IDE secondary master (--drive file=FILE,media=cdrom)\n"
            "  --boot ORDER           firmware boot order: c hard disks, d CD/DVD drives (default dc)\n"
            "  --vga std|none         graphics adapter: std (VGA with Bochs VBE, PCI 00:02.0; default) or none\n"
            "  --vram MIB             its video memory: 4, 8, 16, 32, 64, 128 or 256 MiB (default 16)\n"
            "  --hpet on|off          the HPET (high precision event timer at 0xfed00000; default on)\n"
            "  --tpm DIR              a TPM 2.0 (TIS at 0xfed40000) run by swtpm, its state in DIR (created if missing)\n"
            "  --acpi on|off          ACPI tables for the guest (default on)\n"
            "  --dump-acpi DIR        write the ACPI tables this configuration gets into DIR (one\n"
            "                         <SIGNATURE>.dat file each, as the OS sees them) and exit\n"
            "  --exec auto|kvm|soft|interp  execution backend (default auto; soft: the recompiler,\n"
            "                         interp: the software CPU's interpreter alone)\n"
            "  --test-exit            add the test exit device (port 0xf4) for test guests\n"
            "  --log FILE             write the VM log to FILE\n"
            "  --log-level LEVEL      error | warn | info | debug (default info)\n"
            "  --verbose              also show informational log lines on stderr\n"
            "  --timeout SECONDS      power off after this much host time (exit code 124)\n"
            "  --headless             no console window (without a display server it runs headless anyway)\n"
            RDP_OPTIONS_HELP
            VMPROC_VNC_HELP
            "  --help                 this text\n\n"
            "Exit status: the test exit device's code when a guest used it, 0 after a power off,\n"
            "1 for bad options or configuration, 2 when the VM aborted, 124 on --timeout.\n",
            PC_DEFAULT_BIOS);
}

static int fail_usage(const char *fmt, ...) RT_PRINTF(1, 2);
static int fail_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "vireo-vm: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see --help)\n");
    va_end(ap);
    return EXIT_USAGE;
}

static int parse_onoff(const char *key, const char *value, bool *out)
{
    if (!strcmp(value, "on") || !strcmp(value, "1") || !strcmp(value, "yes"))
        *out = true;
    else if (!strcmp(value, "off") || !strcmp(value, "0") || !strcmp(value, "no"))
        *out = false;
    else
        return fail_usage("--drive %s='%s' must be on or off", key, value);
    return 0;
}

/* --drive file=PATH,if=ide|ahci|virtio,media=disk|cdrom,format=F,port=N,readonly=on|off */
static int parse_drive(char *spec, struct pc_params *pp)
{
    if (pp->drive_count >= PC_MAX_DRIVES)
        return fail_usage("more than %u drives", PC_MAX_DRIVES);
    struct pc_drive d = { .bus = PC_BUS_IDE, .port = -1 };
    char *save = NULL;
    for (char *item = strtok_r(spec, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '=');
        const char *key = item, *value = eq ? eq + 1 : "";
        if (eq)
            *eq = '\0';
        uint64_t v;
        if (!strcmp(key, "file") && *value) {
            d.path = value;
        } else if (!strcmp(key, "if")) {
            if (!strcmp(value, "ide"))
                d.bus = PC_BUS_IDE;
            else if (!strcmp(value, "ahci") || !strcmp(value, "sata"))
                d.bus = PC_BUS_AHCI;
            else if (!strcmp(value, "virtio"))
                d.bus = PC_BUS_VIRTIO;
            else
                return fail_usage("--drive if='%s' must be ide, ahci or virtio", value);
        } else if (!strcmp(key, "media")) {
            if (!strcmp(value, "cdrom") || !strcmp(value, "dvd"))
                d.cdrom = true;
            else if (!strcmp(value, "disk"))
                d.cdrom = false;
            else
                return fail_usage("--drive media='%s' must be disk or cdrom", value);
        } else if (!strcmp(key, "format")) {
            enum blk_format f;
            if (blk_format_from_name(value, &f))
                return fail_usage("--drive format='%s' must be raw, vdi, qcow2, vmdk or iso", value);
            d.format = value;
        } else if (!strcmp(key, "port")) {
            if (rt_str_to_u64(value, &v) || v > 63)
                return fail_usage("--drive port='%s' must be a port number", value);
            d.port = (int)v;
        } else if (!strcmp(key, "readonly")) {
            int rc = parse_onoff(key, eq ? value : "on", &d.readonly);
            if (rc)
                return rc;
        } else {
            return fail_usage("--drive: unknown or empty key '%s' (file, if, media, format, port, readonly)", key);
        }
    }
    if (!d.path && !d.cdrom)
        return fail_usage("--drive needs file=PATH (only a CD drive may be empty)");
    if (d.path && access(d.path, F_OK) != 0)
        return fail_usage("--drive file '%s' does not exist", d.path);
    pp->drives[pp->drive_count++] = d;
    return 0;
}

static long host_ram_bytes(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    return pages > 0 && size > 0 ? pages * size : 0;
}

static int parse_memory(const char *arg, uint64_t *bytes)
{
    uint64_t v;
    /* A bare number means MiB, as in VirtualBox's --memory. */
    if (rt_str_to_u64(arg, &v) == 0) {
        if (v > (UINT64_MAX >> 20))
            return fail_usage("memory size '%s' is too large", arg);
        v <<= 20;
    } else if (rt_str_to_size(arg, &v) != 0) {
        return fail_usage("memory size '%s' is not a size (examples: 512, 512M, 2G)", arg);
    }
    if (v < (1u << 20))
        return fail_usage("memory size '%s' is too small; the minimum is 1 MiB", arg);
    if (v % 4096)
        return fail_usage("memory size '%s' is not a multiple of 4 KiB", arg);
    long host = host_ram_bytes();
    if (host > 0 && v > (uint64_t)host) {
        fprintf(stderr, "vireo-vm: memory size '%s' is more than this host's %ld MiB of RAM\n", arg, host >> 20);
        return EXIT_USAGE;
    }
    *bytes = v;
    return 0;
}

/* --screenshot-after: a PNG of screen 0 once the VM has run that long (host time); the VM keeps running. */
#define MAX_SHOTS 64
struct shot {
    uint64_t after_s;
    const char *path;
    bool done;
};

static void take_due_screenshots(struct vm *vm, struct shot *shots, unsigned count, uint64_t elapsed_ns)
{
    for (unsigned i = 0; i < count; i++) {
        if (shots[i].done || elapsed_ns < shots[i].after_s * RT_NS_PER_SEC)
            continue;
        shots[i].done = true;
        struct display *dpy = dpy_find(vm, 0);
        int rc = dpy ? dpy_screenshot_png(dpy, shots[i].path) : VERR_NOT_SUPPORTED;
        if (!dpy)
            LOG_ERR("no screenshot '%s': this machine has no display adapter", shots[i].path);
        else if (rc == VERR_INVALID_STATE)
            LOG_WARN("no screenshot '%s': the screen is off (no display mode set)", shots[i].path);
        else if (rc)
            LOG_ERR("cannot take the screenshot '%s': %s", shots[i].path, rt_err_str(rc));
        else
            LOG_INFO("screenshot '%s' taken after %llu s", shots[i].path, (unsigned long long)shots[i].after_s);
    }
}

/*
 * --firmware efi without --efi-vars: a private copy of the variable store template under $TMPDIR, so the
 * guest may write variables while it runs; deleted at exit (a machine made with vireo-manage keeps its own).
 */
static int efi_vars_temp_create(const char *template_path, char **out)
{
    void *data = NULL;
    size_t len = 0;
    int rc = rt_file_read_all(template_path, 64u << 20, &data, &len);
    if (rc == VERR_FILE_NOT_FOUND) {
        LOG_ERR("UEFI variable store template '%s' not found: install Debian's ovmf package (apt-get install ovmf)",
                template_path);
        return VERR_FIRMWARE;
    }
    if (rc) {
        LOG_ERR("cannot read the UEFI variable store template '%s': %s", template_path, rt_err_str(rc));
        return VERR_FIRMWARE;
    }
    const char *tmp = getenv("TMPDIR");
    char *path = rt_strdup_printf("%s/vireo-efivars-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    int fd = path ? mkstemp(path) : -1;
    bool ok = fd >= 0;
    for (size_t done = 0; ok && done < len;) {
        ssize_t n = write(fd, (const uint8_t *)data + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        ok = n > 0;
        done += ok ? (size_t)n : 0;
    }
    if (fd >= 0 && close(fd) != 0)
        ok = false;
    free(data);
    if (!ok) {
        LOG_ERR("cannot create a temporary UEFI variable store%s%s: %s", path ? " " : "", path ? path : "",
                strerror(errno));
        if (fd >= 0)
            unlink(path);
        free(path);
        return VERR_IO;
    }
    LOG_INFO("UEFI variables go to a temporary copy of '%s' (%s), deleted at exit; --efi-vars FILE keeps them",
             template_path, path);
    *out = path;
    return 0;
}

static void efi_vars_temp_remove(char *path)
{
    if (path && unlink(path) != 0)
        LOG_WARN("cannot delete the temporary UEFI variable store '%s': %s", path, strerror(errno));
    free(path);
}

/* Where each vCPU was when the VM aborted or timed out: the first thing to look at in the log. */
static void log_vcpu_states(struct vm *vm)
{
    const struct cpu_backend *backend = vm_get_backend(vm);
    for (unsigned i = 0; backend && i < vm_get_vcpu_count(vm); i++) {
        struct vcpu *vcpu = vm_get_vcpu(vm, i);
        struct cpu_state *st = vcpu_state(vcpu);
        if (backend->state_get(vcpu, st) != 0)
            continue;
        LOG_INFO("vCPU %u: cs=%04x rip=%016llx rflags=%08llx cr0=%08llx cr3=%llx cr4=%llx efer=%llx%s%s", i,
                 st->seg[CPU_CS].sel, (unsigned long long)st->rip, (unsigned long long)st->rflags,
                 (unsigned long long)st->cr0, (unsigned long long)st->cr3, (unsigned long long)st->cr4,
                 (unsigned long long)st->efer, st->halted ? " halted" : "",
                 st->wait_for_sipi ? " waiting for SIPI" : "");
        LOG_INFO("vCPU %u: rax=%llx rbx=%llx rcx=%llx rdx=%llx rsi=%llx rdi=%llx rsp=%llx rbp=%llx", i,
                 (unsigned long long)st->gpr[CPU_RAX], (unsigned long long)st->gpr[CPU_RBX],
                 (unsigned long long)st->gpr[CPU_RCX], (unsigned long long)st->gpr[CPU_RDX],
                 (unsigned long long)st->gpr[CPU_RSI], (unsigned long long)st->gpr[CPU_RDI],
                 (unsigned long long)st->gpr[CPU_RSP], (unsigned long long)st->gpr[CPU_RBP]);
    }
}

int main(int argc, char **argv)
{
    /* A registered machine: its own process model (settings, run lock, control socket). */
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--startvm") || rt_str_starts_with(argv[i], "--startvm="))
            return startvm_main(argc, argv);
    enum {
        OPT_MEMORY = 256, OPT_CPUS, OPT_BIOS, OPT_KERNEL, OPT_INITRD, OPT_APPEND, OPT_SERIAL1, OPT_SERIAL2,
        OPT_SERIAL3, OPT_SERIAL4, OPT_EXEC, OPT_TEST_EXIT, OPT_LOG, OPT_LOG_LEVEL, OPT_VERBOSE, OPT_TIMEOUT,
        OPT_HELP, OPT_DRIVE, OPT_HDA, OPT_CDROM, OPT_BOOT, OPT_SAVE_STATE_AFTER, OPT_LOAD_STATE,
        OPT_SCREENSHOT_AFTER, OPT_VGA, OPT_VRAM, OPT_HEADLESS, OPT_HPET, OPT_TPM,
        OPT_RDP, OPT_RDP_USER, OPT_RDP_PASSWORD_FILE, OPT_RDP_CERT_DIR,
        OPT_VNC, OPT_VNC_PASSWORD_FILE, OPT_VNC_NO_AUTH, OPT_VNC_KEYMAP, /* in enum vmproc_vnc_opt's order */
        OPT_ACPI, OPT_DUMP_ACPI,
        OPT_FIRMWARE, OPT_EFI_CODE, OPT_EFI_VARS,
    };
    static const struct option opts[] = {
        { "memory", required_argument, NULL, OPT_MEMORY },   { "cpus", required_argument, NULL, OPT_CPUS },
        { "bios", required_argument, NULL, OPT_BIOS },       { "kernel", required_argument, NULL, OPT_KERNEL },
        { "initrd", required_argument, NULL, OPT_INITRD },   { "append", required_argument, NULL, OPT_APPEND },
        { "serial1", required_argument, NULL, OPT_SERIAL1 }, { "serial2", required_argument, NULL, OPT_SERIAL2 },
        { "serial3", required_argument, NULL, OPT_SERIAL3 }, { "serial4", required_argument, NULL, OPT_SERIAL4 },
        { "exec", required_argument, NULL, OPT_EXEC },       { "test-exit", no_argument, NULL, OPT_TEST_EXIT },
        { "log", required_argument, NULL, OPT_LOG },         { "log-level", required_argument, NULL, OPT_LOG_LEVEL },
        { "verbose", no_argument, NULL, OPT_VERBOSE },       { "timeout", required_argument, NULL, OPT_TIMEOUT },
        { "help", no_argument, NULL, OPT_HELP },             { "drive", required_argument, NULL, OPT_DRIVE },
        { "hda", required_argument, NULL, OPT_HDA },         { "cdrom", required_argument, NULL, OPT_CDROM },
        { "boot", required_argument, NULL, OPT_BOOT },
        { "headless", no_argument, NULL, OPT_HEADLESS },
        { "vga", required_argument, NULL, OPT_VGA },         { "vram", required_argument, NULL, OPT_VRAM },
        { "hpet", required_argument, NULL, OPT_HPET },
        { "tpm", required_argument, NULL, OPT_TPM },
        { "vnc", required_argument, NULL, OPT_VNC },         { "vnc-password-file", required_argument, NULL, OPT_VNC_PASSWORD_FILE },
        { "vnc-no-auth", no_argument, NULL, OPT_VNC_NO_AUTH }, { "vnc-keymap", required_argument, NULL, OPT_VNC_KEYMAP },
        /* Hidden developer options (saved-state checks with real guests): not in --help. */
        { "save-state-after", required_argument, NULL, OPT_SAVE_STATE_AFTER },
        { "load-state", required_argument, NULL, OPT_LOAD_STATE },
        /* Screen tests without a registered machine: --screenshot-after SECONDS FILE, repeatable. */
        { "screenshot-after", required_argument, NULL, OPT_SCREENSHOT_AFTER },
        { "rdp", required_argument, NULL, OPT_RDP },         { "rdp-user", required_argument, NULL, OPT_RDP_USER },
        { "rdp-password-file", required_argument, NULL, OPT_RDP_PASSWORD_FILE },
        { "rdp-cert-dir", required_argument, NULL, OPT_RDP_CERT_DIR },
        { "acpi", required_argument, NULL, OPT_ACPI },       { "dump-acpi", required_argument, NULL, OPT_DUMP_ACPI },
        { "firmware", required_argument, NULL, OPT_FIRMWARE }, { "efi-code", required_argument, NULL, OPT_EFI_CODE },
        { "efi-vars", required_argument, NULL, OPT_EFI_VARS },
        { NULL, 0, NULL, 0 },
    };
    struct vm_params vp = { .name = "vireo", .ram_bytes = 128u << 20, .vcpu_count = 1, .exec = VM_EXEC_AUTO };
    struct pc_params pp = { .hpet = true, .acpi = true };
    const char *log_path = NULL;
    uint64_t timeout_s = 0, v;
    uint64_t save_after_s = 0;
    const char *save_path = NULL, *load_path = NULL;
    bool headless = false;
    struct shot shots[MAX_SHOTS] = { 0 };
    unsigned shot_count = 0;
    struct rdp_options rdp_opts = { 0 };
    struct rdp_server *rdp = NULL;
    char rdp_msg[512];
    struct vmproc_vnc vnc = { 0 };
    bool efi = false;
    char *efi_vars_temp = NULL;
    int opt, rc;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case OPT_MEMORY:
            if ((rc = parse_memory(optarg, &vp.ram_bytes)))
                return rc;
            break;
        case OPT_CPUS:
            if (rt_str_to_u64(optarg, &v) || v == 0 || v > 32)
                return fail_usage("--cpus '%s' must be a number from 1 to 32", optarg);
            vp.vcpu_count = (unsigned)v;
            break;
        case OPT_BIOS: pp.bios_path = optarg; break;
        case OPT_FIRMWARE:
            if (strcmp(optarg, "bios") != 0 && strcmp(optarg, "efi") != 0)
                return fail_usage("--firmware '%s' must be bios or efi", optarg);
            efi = !strcmp(optarg, "efi");
            break;
        case OPT_EFI_CODE: pp.efi_code_path = optarg; break;
        case OPT_EFI_VARS: pp.efi_vars_path = optarg; break;
        case OPT_KERNEL: pp.kernel_path = optarg; break;
        case OPT_INITRD: pp.initrd_path = optarg; break;
        case OPT_APPEND: pp.cmdline = optarg; break;
        case OPT_SERIAL1: case OPT_SERIAL2: case OPT_SERIAL3: case OPT_SERIAL4:
            pp.serial[opt - OPT_SERIAL1] = optarg;
            break;
        case OPT_EXEC:
            if (vm_exec_parse(optarg, &vp.exec))
                return fail_usage("--exec '%s' must be auto, kvm, soft or interp", optarg);
            break;
        case OPT_TEST_EXIT: pp.test_exit = true; break;
        case OPT_LOG: log_path = optarg; break;
        case OPT_LOG_LEVEL: {
            enum rt_log_level level;
            if (rt_log_level_parse(optarg, &level))
                return fail_usage("--log-level '%s' must be error, warn, info or debug", optarg);
            rt_log_set_level(level);
            break;
        }
        case OPT_VERBOSE: rt_log_set_stderr_level(RT_LOG_INFO); break;
        case OPT_TIMEOUT:
            if (rt_str_to_u64(optarg, &timeout_s) || timeout_s == 0 || timeout_s > 86400 * 365)
                return fail_usage("--timeout '%s' must be a number of seconds", optarg);
            break;
        case OPT_DRIVE: case OPT_HDA: case OPT_CDROM: {
            /* The drive keeps pointers into its specification: static storage, one per drive. */
            static char specs[PC_MAX_DRIVES][4200];
            if (pp.drive_count >= PC_MAX_DRIVES)
                return fail_usage("more than %u drives", PC_MAX_DRIVES);
            char *spec = specs[pp.drive_count];
            if (strlen(optarg) > 4096)
                return fail_usage("drive path or specification is too long");
            if (opt != OPT_DRIVE && strchr(optarg, ','))
                return fail_usage("--%s: the file name '%s' contains a comma; use --drive",
                                  opt == OPT_HDA ? "hda" : "cdrom", optarg);
            if (opt == OPT_DRIVE)
                snprintf(spec, sizeof(specs[0]), "%s", optarg);
            else
                snprintf(spec, sizeof(specs[0]), opt == OPT_HDA ? "file=%s,if=ide,port=0" : "file=%s,media=cdrom",
                         optarg);
            if ((rc = parse_drive(spec, &pp)))
                return rc;
            break;
        }
        case OPT_BOOT:
            if (!*optarg || strspn(optarg, "cd") != strlen(optarg))
                return fail_usage("--boot '%s' must be letters c (hard disks) and d (CD/DVD drives)", optarg);
            pp.boot_order = optarg;
            break;
        case OPT_VGA:
            if (strcmp(optarg, "std") != 0 && strcmp(optarg, "none") != 0)
                return fail_usage("--vga '%s' must be std or none", optarg);
            pp.vga = optarg;
            break;
        case OPT_VRAM:
            if (rt_str_to_u64(optarg, &v) || v < 4 || v > 256 || (v & (v - 1)))
                return fail_usage("--vram '%s' must be a power of two from 4 to 256 (MiB)", optarg);
            pp.vram_mib = (unsigned)v;
            break;
        case OPT_HPET:
            if (!strcmp(optarg, "on"))
                pp.hpet = true;
            else if (!strcmp(optarg, "off"))
                pp.hpet = false;
            else
                return fail_usage("--hpet '%s' must be on or off", optarg);
            break;
        case OPT_TPM:
            if (!*optarg || strchr(optarg, ','))
                return fail_usage("--tpm '%s' must be a folder name without commas", optarg);
            pp.tpm_state_dir = optarg;
            break;
        case OPT_SAVE_STATE_AFTER:
            if (rt_str_to_u64(optarg, &save_after_s) || save_after_s > 86400 || optind >= argc)
                return fail_usage("--save-state-after needs SECONDS (0-86400) and FILE");
            save_path = argv[optind++];
            break;
        case OPT_LOAD_STATE: load_path = optarg; break;
        case OPT_HEADLESS: headless = true; break;
        case OPT_SCREENSHOT_AFTER:
            if (shot_count >= MAX_SHOTS)
                return fail_usage("more than %u --screenshot-after options", MAX_SHOTS);
            if (rt_str_to_u64(optarg, &v) || v > 86400 || optind >= argc || !*argv[optind])
                return fail_usage("--screenshot-after needs SECONDS (0-86400) and FILE");
            shots[shot_count].after_s = v;
            shots[shot_count++].path = argv[optind++];
            break;
        case OPT_RDP: rdp_opts.listen = optarg; break;
        case OPT_RDP_USER: rdp_opts.user = optarg; break;
        case OPT_RDP_PASSWORD_FILE: rdp_opts.password_file = optarg; break;
        case OPT_RDP_CERT_DIR: rdp_opts.cert_dir = optarg; break;
        case OPT_VNC: case OPT_VNC_PASSWORD_FILE: case OPT_VNC_NO_AUTH: case OPT_VNC_KEYMAP:
            if ((rc = vmproc_vnc_option(&vnc, (enum vmproc_vnc_opt)(opt - OPT_VNC), optarg)))
                return rc;
            break;
        case OPT_ACPI:
            if (!strcmp(optarg, "on"))
                pp.acpi = true;
            else if (!strcmp(optarg, "off"))
                pp.acpi = false;
            else
                return fail_usage("--acpi '%s' must be on or off", optarg);
            break;
        case OPT_DUMP_ACPI: pp.acpi_dump_dir = optarg; break;
        case OPT_HELP: usage(stdout); return 0;
        default:
            return fail_usage("unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return fail_usage("unexpected argument '%s'", argv[optind]);
    if (rdp_options_check(&rdp_opts, rdp_msg, sizeof(rdp_msg)))
        return fail_usage("%s", rdp_msg);
    if ((pp.initrd_path || pp.cmdline) && !pp.kernel_path)
        return fail_usage("%s needs --kernel", pp.initrd_path ? "--initrd" : "--append");
    if ((pp.efi_code_path || pp.efi_vars_path) && !efi)
        return fail_usage("%s needs --firmware efi", pp.efi_code_path ? "--efi-code" : "--efi-vars");
    if (efi && pp.bios_path)
        return fail_usage("--bios is for --firmware bios; UEFI firmware comes with --efi-code");
    if (efi && !pp.efi_code_path)
        pp.efi_code_path = PC_DEFAULT_EFI_CODE;
    if ((rc = vmproc_vnc_check(&vnc)))
        return rc;
    if (pp.acpi_dump_dir && !pp.acpi)
        return fail_usage("--dump-acpi needs --acpi on");

    if (log_path && (rc = rt_log_open_file(log_path))) {
        fprintf(stderr, "vireo-vm: cannot open log file '%s': %s\n", log_path, rt_err_str(rc));
        return EXIT_USAGE;
    }

    /* SIGINT/SIGTERM/SIGHUP are taken by this thread only (every thread inherits the mask). */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct vm *vm = NULL;
    unsigned errors_before = rt_log_error_count();
    if (efi && !pp.efi_vars_path) {
        if ((rc = efi_vars_temp_create(PC_DEFAULT_EFI_VARS, &efi_vars_temp))) {
            rt_log_close_file();
            return EXIT_USAGE;
        }
        pp.efi_vars_path = efi_vars_temp;
    }
    rc = vm_create(&vp, &vm);
    if (!rc) {
        /* The local and I/O APIC models exist for backends that show them to the guest. */
        pp.apic = vm_get_backend(vm) && vm_get_backend(vm)->guest_apic;
        rc = pc_board_create(vm, &pp);
    }
    if (!rc && pp.acpi_dump_dir) {
        /* --dump-acpi: the board wrote the tables; nothing runs. */
        vm_destroy(vm);
        LOG_INFO("ACPI tables written to '%s'", pp.acpi_dump_dir);
        rt_log_close_file();
        return 0;
    }
    if (!rc && load_path)
        rc = vm_state_load(vm, load_path);
    if (!rc && vnc.enabled)
        rc = vnc_server_start(vm, &vnc.opts, &vnc.server);
    if (!rc)
        rc = rdp_start_from_options(vm, vp.name, &rdp_opts, &rdp);
    if (!rc)
        rc = vm_start(vm);
    if (rc) {
        rdp_server_stop(rdp);
        if (rt_log_error_count() == errors_before)
            LOG_ERR("cannot start the virtual machine: %s", rt_err_str(rc));
        vnc_server_stop(vnc.server);
        vnc_options_clear(&vnc.opts);
        vm_destroy(vm);
        efi_vars_temp_remove(efi_vars_temp);
        rt_log_close_file();
        return EXIT_USAGE;
    }

    struct console *console = vmproc_console_open(vm, "vireo-vm", headless, NULL, NULL);
    uint64_t deadline = timeout_s ? rt_time_mono_ns() + timeout_s * RT_NS_PER_SEC : 0;
    uint64_t save_at = save_path ? rt_time_mono_ns() + save_after_s * RT_NS_PER_SEC : 0;
    uint64_t started_ns = rt_time_mono_ns();
    bool stop_asked = false;
    while (vm_get_state(vm) != VM_STATE_POWERED_OFF && vm_get_state(vm) != VM_STATE_ABORTED) {
        struct timespec ts = { 0, 100 * 1000 * 1000 };
        int sig = sigtimedwait(&sigs, NULL, &ts);
        take_due_screenshots(vm, shots, shot_count, rt_time_mono_ns() - started_ns);
        if (sig > 0 && !stop_asked) {
            LOG_WARN("signal %d: powering off", sig);
            vm_request_poweroff(vm, 0);
            stop_asked = true;
        } else if (save_at && rt_time_mono_ns() >= save_at && !stop_asked) {
            /* --save-state-after: pause, save, power off (exit 0 when the file was written). */
            uint64_t t0 = rt_time_mono_ns();
            rc = vm_pause(vm);
            if (!rc)
                rc = vm_state_save(vm, save_path, NULL, NULL);
            if (rc)
                LOG_ERR("cannot save the state to '%s': %s", save_path, rt_err_str(rc));
            else
                LOG_INFO("state saved to '%s' in %llu ms", save_path,
                         (unsigned long long)((rt_time_mono_ns() - t0) / RT_NS_PER_MS));
            vm_request_poweroff(vm, rc ? -1 : 0);
            stop_asked = true;
        } else if (deadline && rt_time_mono_ns() >= deadline && !stop_asked) {
            LOG_WARN("--timeout of %llu s reached: powering off", (unsigned long long)timeout_s);
            vm_request_poweroff(vm, EXIT_TIMEOUT);
            stop_asked = true;
        }
    }
    int code = vm_wait(vm);
    console_close(console);
    rdp_server_stop(rdp);
    enum vm_state final = vm_get_state(vm);
    if (final == VM_STATE_ABORTED || code == EXIT_TIMEOUT)
        log_vcpu_states(vm);
    vnc_server_stop(vnc.server);
    vnc_options_clear(&vnc.opts);
    vm_destroy(vm);
    efi_vars_temp_remove(efi_vars_temp);
    LOG_INFO("exit: %s, code %d", vm_state_name(final), code);
    rt_log_close_file();
    if (final == VM_STATE_ABORTED || code < 0)
        return EXIT_ABORTED;
    return code & 0xff;
}
