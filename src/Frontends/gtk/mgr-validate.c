/* mgr-validate.c - the manager's input checks (names, folders, ISO images, memory, CPUs, disk sizes, ports), each with a sentence for people; no GTK. */

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "mgr.h"
#include "vireo/err.h"

#define MGR_DISK_MAX (64ull << 40) /* 64 TiB, as VirtualBox's limit for new disks */

static bool mgr_why(char why[MGR_WHY_MAX], const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, MGR_WHY_MAX, fmt, ap);
    va_end(ap);
    return false;
}

static bool mgr_fine(char why[MGR_WHY_MAX])
{
    why[0] = '\0';
    return true;
}

/* A registered machine called name other than except (NULL: any): true with its UUID. */
static bool mgr_name_taken(const char *name, const struct rt_uuid *except)
{
    struct cfg_machine **ms = NULL;
    char **paths = NULL;
    size_t n = 0;
    struct cfg_error err = {{0}};
    bool taken = false;
    if (mach_list(&ms, &paths, &n, &err) < 0)
        return false;
    for (size_t i = 0; i < n && !taken; i++)
        if (ms[i]->name && !strcmp(ms[i]->name, name) && (!except || memcmp(ms[i]->uuid.bytes, except->bytes, 16) != 0))
            taken = true;
    mach_list_free(ms, paths, n);
    return taken;
}

static bool mgr_check_name_text(const char *name, char why[MGR_WHY_MAX])
{
    if (!name || !*name)
        return mgr_why(why, "The machine needs a name.");
    if (!cfg_is_valid_machine_name(name)) {
        if (strchr(name, '/'))
            return mgr_why(why, "A name cannot contain '/': it becomes the machine's folder and file name.");
        if (name[0] == ' ' || name[strlen(name) - 1] == ' ')
            return mgr_why(why, "A name cannot start or end with a blank.");
        if (strlen(name) > 200)
            return mgr_why(why, "The name is too long (200 bytes at most).");
        return mgr_why(why, "'%s' cannot be a machine name: it must be a usable file name without control "
                            "characters.", name);
    }
    return true;
}

bool mgr_check_new_name(const char *name, const char *base_folder, char why[MGR_WHY_MAX])
{
    if (!mgr_check_name_text(name, why))
        return false;
    if (mgr_name_taken(name, NULL))
        return mgr_why(why, "A machine named '%s' exists already.", name);
    if (base_folder && *base_folder) {
        char *dir = rt_path_join(base_folder, name);
        bool exists = dir && rt_path_exists(dir);
        free(dir);
        if (exists)
            return mgr_why(why, "The folder '%s/%s' exists already; choose another name or folder.", base_folder,
                           name);
    }
    return mgr_fine(why);
}

bool mgr_check_rename(const char *name, const struct rt_uuid *uuid, char why[MGR_WHY_MAX])
{
    if (!mgr_check_name_text(name, why))
        return false;
    if (mgr_name_taken(name, uuid))
        return mgr_why(why, "Another machine is named '%s' already.", name);
    return mgr_fine(why);
}

bool mgr_check_folder(const char *folder, char why[MGR_WHY_MAX])
{
    if (!folder || !*folder)
        return mgr_why(why, "Choose a folder for the machine.");
    if (folder[0] != '/')
        return mgr_why(why, "The folder must be an absolute path (starting with '/').");
    /* The folder itself, or the nearest existing folder above it, which must let us create the rest. */
    char *p = strdup(folder);
    if (!p)
        return mgr_why(why, "Out of memory.");
    struct stat st;
    bool exists = false;
    for (;;) {
        if (stat(p, &st) == 0) {
            exists = true;
            break;
        }
        if (errno != ENOENT)
            break;
        char *slash = strrchr(p, '/');
        if (!slash || slash == p) {
            p[1] = '\0';
            exists = stat(p, &st) == 0;
            break;
        }
        *slash = '\0';
    }
    bool ok;
    if (!exists)
        ok = mgr_why(why, "The folder '%s' cannot be reached: %s.", folder, strerror(errno));
    else if (!S_ISDIR(st.st_mode))
        ok = mgr_why(why, "'%s' is not a folder.", p);
    else if (access(p, W_OK | X_OK) != 0)
        ok = mgr_why(why, strcmp(p, folder) ? "You cannot create folders in '%s' (no write permission)."
                                            : "You cannot write to the folder '%s' (no write permission).",
                     p);
    else
        ok = mgr_fine(why);
    free(p);
    return ok;
}

bool mgr_check_iso(const char *path, char why[MGR_WHY_MAX])
{
    if (!path || !*path)
        return mgr_fine(why);
    struct stat st;
    if (stat(path, &st) != 0)
        return mgr_why(why, "Cannot open '%s': %s.", path, strerror(errno));
    if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
        return mgr_why(why, "'%s' is not a file.", path);
    if (access(path, R_OK) != 0)
        return mgr_why(why, "You cannot read '%s' (no read permission).", path);
    /* ISO 9660: the primary volume descriptor at 32 KiB starts with type 1 and "CD001". */
    FILE *f = fopen(path, "rb");
    if (!f)
        return mgr_why(why, "Cannot open '%s': %s.", path, strerror(errno));
    unsigned char pvd[6] = {0};
    bool got = fseek(f, 16 * 2048, SEEK_SET) == 0 && fread(pvd, 1, sizeof(pvd), f) == sizeof(pvd);
    int e = ferror(f) ? errno : 0;
    fclose(f);
    if (e)
        return mgr_why(why, "Cannot read '%s': %s.", path, strerror(e));
    if (!got)
        return mgr_why(why, "'%s' is too small to be a CD/DVD image.", path);
    if (pvd[0] != 1 || memcmp(pvd + 1, "CD001", 5) != 0)
        return mgr_why(why, "'%s' is not a CD/DVD image (no ISO 9660 volume descriptor).", path);
    return mgr_fine(why);
}

bool mgr_check_memory(uint64_t mib, uint64_t host_mib, char why[MGR_WHY_MAX])
{
    if (mib < 4)
        return mgr_why(why, "A machine needs at least 4 MiB of memory.");
    if (host_mib && mib > host_mib)
        return mgr_why(why, "%" PRIu64 " MiB is more than this computer has (%" PRIu64 " MiB).", mib, host_mib);
    if (mib > (1ull << 20))
        return mgr_why(why, "At most 1 TiB (1048576 MiB) of memory.");
    return mgr_fine(why);
}

bool mgr_check_cpus(unsigned cpus, unsigned host_cpus, char why[MGR_WHY_MAX])
{
    unsigned max = host_cpus && host_cpus < 32 ? host_cpus : 32;
    if (cpus < 1)
        return mgr_why(why, "A machine needs at least one processor.");
    if (cpus > max)
        return mgr_why(why, "At most %u processors: %s.", max,
                       max == 32 ? "Vireo runs up to 32" : "this computer has no more");
    return mgr_fine(why);
}

bool mgr_check_disk_size(uint64_t bytes, bool fixed, const char *folder, char why[MGR_WHY_MAX])
{
    char a[32], b[32];
    if (bytes == 0)
        return mgr_why(why, "A disk cannot be empty: give it a size above zero.");
    if (bytes < (1ull << 20))
        return mgr_why(why, "A disk needs at least 1 MiB.");
    if (bytes > MGR_DISK_MAX)
        return mgr_why(why, "%s is more than the largest disk Vireo creates (%s).", mgr_format_size(bytes, a, 32),
                       mgr_format_size(MGR_DISK_MAX, b, 32));
    if (fixed && folder && *folder) {
        /* The nearest existing folder holds the filesystem the file goes to. */
        char *p = strdup(folder);
        struct statvfs vfs;
        while (p && statvfs(p, &vfs) != 0) {
            char *slash = strrchr(p, '/');
            if (!slash || slash == p) {
                strcpy(p, "/");
                if (statvfs(p, &vfs) != 0) {
                    free(p);
                    p = NULL;
                }
                break;
            }
            *slash = '\0';
        }
        if (p) {
            uint64_t avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
            free(p);
            if (bytes > avail)
                return mgr_why(why, "A fixed-size disk of %s does not fit: only %s are free there.",
                               mgr_format_size(bytes, a, 32), mgr_format_size(avail, b, 32));
        }
    }
    return mgr_fine(why);
}

bool mgr_check_port(unsigned port, char why[MGR_WHY_MAX])
{
    if (port == 0)
        return mgr_fine(why);
    if (port < 1024)
        return mgr_why(why, "Ports below 1024 need administrator rights; use 1024-65535 or 0 for automatic.");
    if (port > 65535)
        return mgr_why(why, "A port is at most 65535.");
    return mgr_fine(why);
}

const char *mgr_format_size(uint64_t bytes, char *buf, size_t size)
{
    static const char *const units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB"};
    unsigned u = 0;
    double v = (double)bytes;
    while (v >= 1024.0 && u + 1 < sizeof(units) / sizeof(units[0])) {
        v /= 1024.0;
        u++;
    }
    if (u == 0)
        snprintf(buf, size, "%" PRIu64 " bytes", bytes);
    else if (v >= 100.0 || v == (double)(uint64_t)v)
        snprintf(buf, size, "%.0f %s", v, units[u]);
    else
        snprintf(buf, size, "%.1f %s", v, units[u]);
    return buf;
}

uint64_t mgr_host_memory_mib(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || size <= 0)
        return 0;
    return (uint64_t)pages * (uint64_t)size >> 20;
}

unsigned mgr_host_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}
