/* mgr-osdetect.c - guesses the OS type preset for an installation ISO: libosinfo with osinfo-db first, then our own bounded look at the ISO 9660 volume label, boot files and Linux kernel header. */

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <osinfo/osinfo.h>

#include "mgr.h"

/*
 * Runs on a worker thread (the assistant's GTask), never on the main thread: libosinfo takes a
 * noticeable time to load its database the first time.  The image is untrusted: every read is bounded
 * and checked against the file's size, the directory walk has depth, count and byte limits, and
 * only regular files and block devices are opened (a FIFO would block).
 */

#define ISO_SECTOR          2048u
#define ISO_MAX_DESCRIPTORS 32u          /* volume descriptors read after sector 16 */
#define ISO_MAX_DIR_BYTES   (256u << 10) /* one directory's extent */
#define ISO_MAX_DIRS        64u          /* directories visited */
#define ISO_MAX_ENTRIES     4096u        /* directory records looked at in all */
#define ISO_MAX_DEPTH       4u

/* ---- libosinfo -------------------------------------------------------------------------------------------------- */

static GMutex g_osinfo_lock; /* libosinfo's database is not documented as thread-safe: one detection at a time */
static OsinfoLoader *g_osinfo_loader;
static bool g_osinfo_tried;

static OsinfoDb *mgr_osinfo_db(void)
{
    if (!g_osinfo_tried) {
        g_osinfo_tried = true;
        GError *gerr = NULL;
        g_osinfo_loader = osinfo_loader_new();
        osinfo_loader_process_default_path(g_osinfo_loader, &gerr);
        if (gerr) {
            /* A partly broken database still identifies what it loaded; say why once. */
            g_message("libosinfo: %s", gerr->message);
            g_error_free(gerr);
        }
    }
    return g_osinfo_loader ? osinfo_loader_get_db(g_osinfo_loader) : NULL;
}

static bool mgr_has_prefix(const char *s, const char *prefix)
{
    return s && !strncmp(s, prefix, strlen(prefix));
}

/* Our preset for a libosinfo OS: by short id first, then by distribution, then by family. */
static const char *mgr_osinfo_preset(const char *short_id, const char *distro, const char *family, bool is64)
{
    const char *id = short_id ? short_id : "";
    if (mgr_has_prefix(id, "debian") || (distro && !strcmp(distro, "debian")))
        return is64 ? "Debian_64" : "Debian";
    if (mgr_has_prefix(id, "ubuntu") || (distro && !strcmp(distro, "ubuntu")))
        return "Ubuntu_64";
    if (mgr_has_prefix(id, "fedora") || mgr_has_prefix(id, "silverblue") || (distro && !strcmp(distro, "fedora")))
        return "Fedora_64";
    if (mgr_has_prefix(id, "opensuse") || (distro && !strcmp(distro, "opensuse")))
        return "OpenSUSE_64";
    if (mgr_has_prefix(id, "alpine") || (distro && !strcmp(distro, "alpinelinux")))
        return "Alpine_64";
    if (!strcmp(id, "archlinux") || (distro && !strcmp(distro, "archlinux")))
        return "ArchLinux_64";
    if (!strcmp(id, "win7"))
        return is64 ? "Windows7_64" : "Windows7";
    if (!strcmp(id, "win8") || !strcmp(id, "win8.1") || !strcmp(id, "winvista"))
        return is64 ? "Windows7_64" : "Windows7";
    if (!strcmp(id, "win10"))
        return "Windows10_64";
    if (!strcmp(id, "win11"))
        return "Windows11_64";
    if (!strcmp(id, "win2k19") || !strcmp(id, "win2k16"))
        return "Windows2019_64";
    if (!strcmp(id, "win2k22"))
        return "Windows2022_64";
    if (!strcmp(id, "winxp"))
        return "WindowsXP";
    if (mgr_has_prefix(id, "freebsd"))
        return "FreeBSD_64";
    if (mgr_has_prefix(id, "openbsd"))
        return "OpenBSD_64";
    if (mgr_has_prefix(id, "msdos") || mgr_has_prefix(id, "freedos"))
        return "DOS";
    if (family && !strcmp(family, "linux"))
        return is64 ? "Linux_64" : "Linux";
    return NULL;
}

static char *mgr_osdetect_osinfo(const char *iso_path, char **how)
{
    char *found = NULL;
    g_mutex_lock(&g_osinfo_lock);
    OsinfoDb *db = mgr_osinfo_db();
    /* A file: URI, so that a path that looks like a URL is never fetched. */
    char *uri = db ? g_filename_to_uri(iso_path, NULL, NULL) : NULL;
    GError *gerr = NULL;
    /* The synchronous call runs a main loop on the thread-default context: a private one, so that the worker
     * never competes with GTK's main loop for the global context. */
    GMainContext *ctx = g_main_context_new();
    g_main_context_push_thread_default(ctx);
    OsinfoMedia *media = uri ? osinfo_media_create_from_location(uri, NULL, &gerr) : NULL;
    g_main_context_pop_thread_default(ctx);
    g_main_context_unref(ctx);
    if (gerr)
        g_error_free(gerr);
    if (media && osinfo_db_identify_media(db, media)) {
        OsinfoOs *os = osinfo_media_get_os(media);
        if (os) {
            const char *arch = osinfo_media_get_architecture(media);
            bool is64 = !arch || !strcmp(arch, "x86_64") || !strcmp(arch, "aarch64");
            const char *preset = mgr_osinfo_preset(osinfo_product_get_short_id(OSINFO_PRODUCT(os)),
                                                   osinfo_os_get_distro(os), osinfo_os_get_family(os), is64);
            if (preset) {
                found = strdup(preset);
                if (how) {
                    const char *name = osinfo_product_get_name(OSINFO_PRODUCT(os));
                    *how =
                        g_strdup_printf("%s%s%s (libosinfo)", name ? name : preset, arch ? ", " : "", arch ? arch : "");
                }
            }
            g_object_unref(os);
        }
    }
    if (media)
        g_object_unref(media);
    g_free(uri);
    g_mutex_unlock(&g_osinfo_lock);
    return found;
}

/* ---- Our own look at the ISO 9660 file system ------------------------------------------------------------------- */

struct iso_reader {
    int fd;
    uint64_t size;
    unsigned dirs, entries;
};

static bool iso_read(struct iso_reader *r, uint64_t off, void *buf, size_t len)
{
    if (off > r->size || len > r->size - off)
        return false;
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(r->fd, (char *)buf + done, len - done, (off_t)(off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        done += (size_t)n;
    }
    return true;
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t le16(const unsigned char *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

struct iso_dirent {
    char name[128]; /* without ";1" and a trailing dot, upper case */
    uint32_t lba, len;
    bool dir;
};

/* The records of a directory extent, decoded; false when it cannot be read.  joliet: names are UCS-2 big-endian. */
typedef bool iso_dirent_fn(void *opaque, const struct iso_dirent *e);
static bool iso_dir_each(struct iso_reader *r, uint32_t lba, uint32_t len, bool joliet, iso_dirent_fn *fn, void *opaque)
{
    if (r->dirs >= ISO_MAX_DIRS || len == 0)
        return false;
    r->dirs++;
    if (len > ISO_MAX_DIR_BYTES)
        len = ISO_MAX_DIR_BYTES;
    unsigned char *buf = malloc(len);
    if (!buf || !iso_read(r, (uint64_t)lba * ISO_SECTOR, buf, len)) {
        free(buf);
        return false;
    }
    uint32_t off = 0;
    bool go = true;
    while (go && off + 34 <= len && r->entries < ISO_MAX_ENTRIES) {
        unsigned rec = buf[off];
        if (rec == 0) {
            /* Records never cross a sector: the rest of this sector is padding. */
            off = (off / ISO_SECTOR + 1) * ISO_SECTOR;
            continue;
        }
        if (rec < 34 || off + rec > len)
            break;
        r->entries++;
        unsigned nlen = buf[off + 32];
        const unsigned char *n = buf + off + 33;
        if (33 + nlen > rec)
            break;
        if (nlen == 1 && (n[0] == 0 || n[0] == 1)) {
            off += rec; /* "." and ".." */
            continue;
        }
        struct iso_dirent e = {
            .lba = le32(buf + off + 2), .len = le32(buf + off + 10), .dir = (buf[off + 25] & 2) != 0};
        size_t o = 0;
        if (joliet) {
            for (unsigned i = 0; i + 1 < nlen && o + 1 < sizeof(e.name); i += 2) {
                unsigned c = (unsigned)n[i] << 8 | n[i + 1];
                e.name[o++] = c < 0x80 ? (char)toupper((int)c) : '?';
            }
        } else {
            for (unsigned i = 0; i < nlen && o + 1 < sizeof(e.name); i++)
                e.name[o++] = n[i] >= 0x20 && n[i] < 0x7f ? (char)toupper(n[i]) : '?';
        }
        e.name[o] = '\0';
        char *semi = strchr(e.name, ';');
        if (semi)
            *semi = '\0';
        size_t l = strlen(e.name);
        if (l > 1 && e.name[l - 1] == '.')
            e.name[l - 1] = '\0';
        go = fn(opaque, &e);
        off += rec;
    }
    free(buf);
    return true;
}

/* What the walk found. */
struct iso_clues {
    char label[33];
    bool isolinux, syslinux, grub, efi64, efi32, win_install, bootmgr, dos, freebsd, openbsd, casper, live;
    char kernel[300]; /* path of the first Linux kernel image found */
    uint32_t kernel_lba, kernel_len;
    bool have_kernel;
};

struct iso_walk {
    struct iso_reader *r;
    struct iso_clues *c;
    bool joliet;
    unsigned depth;
    char path[160];
};

static bool iso_is_kernel_name(const char *n)
{
    return mgr_has_prefix(n, "VMLINUZ") || mgr_has_prefix(n, "VMLINUX") || !strcmp(n, "BZIMAGE") ||
           !strcmp(n, "LINUX") || !strcmp(n, "LINUX64") || !strcmp(n, "KERNEL.BIN");
}

static bool iso_walk_entry(void *opaque, const struct iso_dirent *e);

static void iso_walk_dir(struct iso_walk *w, uint32_t lba, uint32_t len)
{
    iso_dir_each(w->r, lba, len, w->joliet, iso_walk_entry, w);
}

static bool iso_walk_entry(void *opaque, const struct iso_dirent *e)
{
    struct iso_walk *w = opaque;
    struct iso_clues *c = w->c;
    const char *dir = w->path; /* "" at the root, else "/BOOT/GRUB" */
    if (e->dir) {
        if (!strcmp(e->name, "ISOLINUX"))
            c->isolinux = true;
        if (!strcmp(e->name, "SYSLINUX"))
            c->syslinux = true;
        if (!strcmp(e->name, "GRUB") && (!strcmp(dir, "/BOOT") || !*dir))
            c->grub = true;
        if (!strcmp(e->name, "CASPER") && !*dir)
            c->casper = true;
        if (!strcmp(e->name, "LIVE") && !*dir)
            c->live = true;
        if (!strcmp(e->name, "KERNEL") && !strcmp(dir, "/BOOT"))
            c->freebsd = true;
        if (!strcmp(e->name, "FREEDOS") && !*dir)
            c->dos = true;
        if (w->depth + 1 < ISO_MAX_DEPTH) {
            size_t l = strlen(w->path);
            if (l + 1 + strlen(e->name) < sizeof(w->path)) {
                snprintf(w->path + l, sizeof(w->path) - l, "/%s", e->name);
                w->depth++;
                iso_walk_dir(w, e->lba, e->len);
                w->depth--;
                w->path[l] = '\0';
            }
        }
        return w->r->dirs < ISO_MAX_DIRS;
    }
    if (!strcmp(e->name, "BOOTX64.EFI"))
        c->efi64 = true;
    if (!strcmp(e->name, "BOOTIA32.EFI"))
        c->efi32 = true;
    if ((!strcmp(e->name, "INSTALL.WIM") || !strcmp(e->name, "INSTALL.ESD")) && !strcmp(dir, "/SOURCES"))
        c->win_install = true;
    if (!strcmp(e->name, "BOOTMGR") && !*dir)
        c->bootmgr = true;
    if ((!strcmp(e->name, "COMMAND.COM") || !strcmp(e->name, "IO.SYS") || !strcmp(e->name, "KERNEL.SYS")) && !*dir)
        c->dos = true;
    if (!strcmp(e->name, "BSD.RD") || (!strcmp(e->name, "BSD") && !*dir))
        c->openbsd = true;
    if (!strcmp(e->name, "LOADER") && !strcmp(dir, "/BOOT"))
        c->freebsd = true;
    if (!strcmp(e->name, "ISOLINUX.BIN") || !strcmp(e->name, "ISOLINUX.CFG"))
        c->isolinux = true;
    if (!c->have_kernel && iso_is_kernel_name(e->name) && e->len >= 0x240) {
        c->have_kernel = true;
        c->kernel_lba = e->lba;
        c->kernel_len = e->len;
        snprintf(c->kernel, sizeof(c->kernel), "%s/%s", dir, e->name);
    }
    return true;
}

/* The primary volume descriptor (and a Joliet one, whose names keep their case and length). */
static bool iso_read_clues(struct iso_reader *r, struct iso_clues *c)
{
    unsigned char vd[ISO_SECTOR];
    bool have_pvd = false, have_joliet = false;
    uint32_t root_lba = 0, root_len = 0, jroot_lba = 0, jroot_len = 0;
    for (unsigned i = 0; i < ISO_MAX_DESCRIPTORS; i++) {
        if (!iso_read(r, (uint64_t)(16 + i) * ISO_SECTOR, vd, sizeof(vd)) || memcmp(vd + 1, "CD001", 5) != 0)
            break;
        if (vd[0] == 255)
            break;
        /* The root directory record sits at byte 156 of primary and supplementary descriptors. */
        if (vd[0] == 1 && !have_pvd && le16(vd + 128) == ISO_SECTOR) {
            have_pvd = true;
            memcpy(c->label, vd + 40, 32);
            c->label[32] = '\0';
            for (int k = 31; k >= 0 && (c->label[k] == ' ' || c->label[k] == '\0'); k--)
                c->label[k] = '\0';
            for (char *p = c->label; *p; p++)
                if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
                    *p = '?';
            root_lba = le32(vd + 156 + 2);
            root_len = le32(vd + 156 + 10);
        } else if (vd[0] == 2 && !have_joliet && vd[88] == '%' && vd[89] == '/' &&
                   (vd[90] == '@' || vd[90] == 'C' || vd[90] == 'E') && le16(vd + 128) == ISO_SECTOR) {
            have_joliet = true;
            jroot_lba = le32(vd + 156 + 2);
            jroot_len = le32(vd + 156 + 10);
        }
    }
    if (!have_pvd)
        return false;
    struct iso_walk w = {.r = r, .c = c};
    if (have_joliet) {
        w.joliet = true;
        iso_walk_dir(&w, jroot_lba, jroot_len);
    }
    /* Without Joliet, or when its tree is broken: the primary one (8.3 names, upper case). */
    if (!have_joliet || r->entries == 0) {
        w.joliet = false;
        iso_walk_dir(&w, root_lba, root_len);
    }
    return true;
}

/* A Linux x86 boot image (Documentation/arch/x86/boot.rst): "HdrS" at 0x202, protocol at 0x206, and from
 * protocol 2.12 xloadflags at 0x236 whose bit 0 (XLF_KERNEL_64) says it has the 64-bit entry point.
 * Returns 64, 32, or 0 when it is no bzImage or too old to say. */
static int iso_kernel_bits(struct iso_reader *r, const struct iso_clues *c)
{
    unsigned char h[0x240];
    if (!c->have_kernel || c->kernel_len < sizeof(h) ||
        !iso_read(r, (uint64_t)c->kernel_lba * ISO_SECTOR, h, sizeof(h)))
        return 0;
    if (memcmp(h + 0x202, "HdrS", 4) != 0)
        return 0;
    uint16_t proto = le16(h + 0x206);
    if (proto < 0x020c)
        return 0;
    return (le16(h + 0x236) & 1) ? 64 : 32;
}

static bool mgr_label_has(const char *label, const char *word)
{
    return strcasestr(label, word) != NULL;
}

static char *mgr_osdetect_iso(const char *iso_path, char **how)
{
    int fd = open(iso_path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    struct iso_reader r = {.fd = fd};
    if (fstat(fd, &st) != 0 || (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))) {
        close(fd);
        return NULL;
    }
    if (S_ISREG(st.st_mode)) {
        r.size = (uint64_t)st.st_size;
    } else {
        off_t end = lseek(fd, 0, SEEK_END);
        r.size = end > 0 ? (uint64_t)end : 0;
    }
    struct iso_clues c = {{0}};
    bool ok = iso_read_clues(&r, &c);
    int bits = ok ? iso_kernel_bits(&r, &c) : 0;
    close(fd);
    if (!ok)
        return NULL;

    const char *label = c.label;
    bool label64 = mgr_label_has(label, "amd64") || mgr_label_has(label, "x86_64") || mgr_label_has(label, "x64");
    const char *preset = NULL;
    GString *s = g_string_new(NULL);
    if (c.win_install || (c.bootmgr && mgr_label_has(label, "FRE_"))) {
        bool is64 = c.efi64 || label64;
        preset = is64 ? "Windows10_64" : "Windows7";
        g_string_append_printf(s, "Windows installation disc (%s%s)", c.win_install ? "sources/install.wim" : "bootmgr",
                               is64 ? ", 64-bit" : "");
    } else if (c.have_kernel && (c.isolinux || c.syslinux || c.grub || c.efi64 || c.efi32 || bits)) {
        bool is64 = bits == 64 || (bits == 0 && (c.efi64 || label64));
        /* Distributions name their discs; the label picks our preset for them when it says which. */
        static const struct {
            const char *word, *preset64, *preset32, *name;
        } distros[] = {
            {"debian", "Debian_64", "Debian", "Debian"},   {"ubuntu", "Ubuntu_64", NULL, "Ubuntu"},
            {"fedora", "Fedora_64", NULL, "Fedora"},       {"opensuse", "OpenSUSE_64", NULL, "openSUSE"},
            {"alpine", "Alpine_64", NULL, "Alpine Linux"}, {"arch_", "ArchLinux_64", NULL, "Arch Linux"},
        };
        const char *what = "Linux";
        preset = is64 ? "Linux_64" : "Linux";
        for (size_t i = 0; i < sizeof(distros) / sizeof(distros[0]); i++) {
            if (mgr_label_has(label, distros[i].word) && (is64 || distros[i].preset32)) {
                preset = is64 ? distros[i].preset64 : distros[i].preset32;
                what = distros[i].name;
                break;
            }
        }
        g_string_append_printf(s, "%s boot CD (", what);
        const char *loader = c.isolinux ? "ISOLINUX" : c.syslinux ? "SYSLINUX" : c.grub ? "GRUB" : NULL;
        if (loader)
            g_string_append_printf(s, "%s, ", loader);
        if (c.efi64 || c.efi32)
            g_string_append(s, "UEFI, ");
        g_string_append(s, bits == 64 ? "64-bit kernel" : bits == 32 ? "32-bit kernel" : "Linux kernel");
        g_string_append(s, ")");
    } else if (c.freebsd || mgr_label_has(label, "freebsd")) {
        preset = "FreeBSD_64";
        g_string_append(s, "FreeBSD disc (/boot/loader)");
    } else if (c.openbsd || mgr_label_has(label, "openbsd")) {
        preset = "OpenBSD_64";
        g_string_append(s, "OpenBSD disc (bsd.rd)");
    } else if (c.dos) {
        preset = "DOS";
        g_string_append(s, "DOS disc (COMMAND.COM)");
    }
    if (preset && label[0])
        g_string_append_printf(s, ", label '%s'", label);
    if (how && preset)
        *how = strdup(s->str);
    g_string_free(s, TRUE);
    return preset ? strdup(preset) : NULL;
}

/* ---- The entry point -------------------------------------------------------------------------------------------- */

char *mgr_osdetect(const struct cfg_ostypes *types, const char *iso_path, char **how)
{
    if (how)
        *how = NULL;
    if (!iso_path || !*iso_path)
        return NULL;
    struct stat st;
    if (stat(iso_path, &st) != 0 || (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)))
        return NULL;
    /* libosinfo wants a URI, and a relative path has none (its synchronous call would then wait forever). */
    char *abs = g_canonicalize_filename(iso_path, NULL);
    char *h = NULL;
    char *id = mgr_osdetect_osinfo(abs, &h);
    if (!id) {
        g_free(h);
        h = NULL;
        char *h2 = NULL;
        id = mgr_osdetect_iso(abs, &h2);
        h = h2 ? g_strdup(h2) : NULL;
        free(h2);
    }
    /* Only presets this installation has (the presets file may be older than this table). */
    if (id && types && !cfg_ostype_find(types, id)) {
        free(id);
        id = NULL;
    }
    if (how && id && h)
        *how = strdup(h);
    g_free(h);
    g_free(abs);
    return id;
}
