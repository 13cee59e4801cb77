/* media.c - vireo-manage createmedium, clonemedium, modifymedium, checkmedium and closemedium: disk images and the media registry. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "manage.h"

enum { OPT_FILENAME = 1, OPT_SIZE, OPT_SIZEBYTE, OPT_FORMAT, OPT_VARIANT, OPT_RESIZE, OPT_RESIZEBYTE, OPT_REPAIR,
       OPT_DELETE };

/* The largest disk in MiB (block.h's limit). */
#define MG_MAX_DISK_MIB (BLK_MAX_SIZE_BYTES >> 20)

/*
 * A medium named on the command line: a registered one by UUID, path or file name, or (when
 * allow_file) an image file that is not registered.  out->location is always set; *registered says
 * which.  Prints the failure.
 */
static int mg_medium_resolve(const char *arg, bool allow_file, struct cfg_medium *out, bool *registered)
{
    struct cfg_error err = {{0}};
    struct rt_uuid u;
    memset(out, 0, sizeof(*out));
    *registered = false;
    if (rt_uuid_parse(arg, &u) == 0) {
        if (mach_medium_find(arg, out, &err) < 0)
            return mg_fail("medium {%s} is not registered", arg);
        *registered = true;
        return 0;
    }
    char *abs = mg_abs_path(arg);
    if (!abs)
        return mg_fail("cannot make '%s' an absolute path", arg);
    if (mach_medium_find(abs, out, &err) == 0) {
        free(abs);
        *registered = true;
        return 0;
    }
    if (rt_path_exists(abs)) {
        if (!allow_file) {
            int rc = mg_fail("medium '%s' is not registered", abs);
            free(abs);
            return rc;
        }
        memset(out, 0, sizeof(*out));
        out->location = abs;
        return 0;
    }
    /* A bare file name of a registered medium ("disk.vdi") is found by name, as the library allows. */
    if (!strchr(arg, '/') && mach_medium_find(arg, out, &err) == 0) {
        free(abs);
        *registered = true;
        return 0;
    }
    int rc = mg_fail("medium '%s' does not exist", abs);
    free(abs);
    return rc;
}

static int mg_parse_disk_format(const char *opt, const char *s, enum blk_format *out)
{
    enum blk_format f;
    if (blk_format_from_name(s, &f) < 0 || (f != BLK_FMT_VDI && f != BLK_FMT_QCOW2 && f != BLK_FMT_RAW))
        return mg_usage("%s '%s' must be VDI, qcow2 or raw", opt, s);
    *out = f;
    return 0;
}

static int mg_parse_variant(const char *s, bool *fixed)
{
    if (!strcasecmp(s, "Standard"))
        *fixed = false;
    else if (!strcasecmp(s, "Fixed"))
        *fixed = true;
    else
        return mg_usage("--variant '%s' must be Standard or Fixed", s);
    return 0;
}

/* The optional leading "disk" (or "dvd" where allowed) of the medium commands. */
static int mg_medium_kind(struct mg_args *a, bool dvd_ok, enum cfg_medium_type *type, bool *given)
{
    *given = false;
    *type = CFG_MEDIUM_HDD;
    if (a->pos_count < 1)
        return 0;
    const char *k = a->pos[0];
    if (strcmp(k, "disk") && strcmp(k, "dvd") && strcmp(k, "floppy"))
        return 0;
    if (strcmp(k, "disk") && !dvd_ok)
        return mg_usage("'%s': this command works on disks only", k);
    if (!strcmp(k, "floppy"))
        return mg_usage("there are no floppy images in Vireo");
    *type = !strcmp(k, "dvd") ? CFG_MEDIUM_DVD : CFG_MEDIUM_HDD;
    *given = true;
    a->pos++;
    a->pos_count--;
    return 0;
}

/* ---- createmedium ------------------------------------------------------------------------------- */

static int mg_createmedium(int argc, char **argv)
{
    static const struct mg_opt opts[] = {
        {"filename", OPT_FILENAME, true, 0, NULL, false}, {"size", OPT_SIZE, true, 0, NULL, false},
        {"sizebyte", OPT_SIZEBYTE, true, 0, NULL, false}, {"format", OPT_FORMAT, true, 0, NULL, false},
        {"variant", OPT_VARIANT, true, 0, NULL, false},   {NULL, 0, 0, 0, 0, 0},
    };
    struct mg_args a;
    int rc = mg_args_parse(argc, argv, 1, opts, &a);
    if (rc)
        return rc;
    char **pos0 = a.pos;
    char *path = NULL;
    enum cfg_medium_type kind;
    bool given, fixed = false;
    enum blk_format fmt = BLK_FMT_VDI;
    uint64_t bytes = 0, mib;
    const char *file = mg_args_value(&a, OPT_FILENAME), *size = mg_args_value(&a, OPT_SIZE);
    const char *sizeb = mg_args_value(&a, OPT_SIZEBYTE), *format = mg_args_value(&a, OPT_FORMAT);
    const char *variant = mg_args_value(&a, OPT_VARIANT);
    if ((rc = mg_medium_kind(&a, false, &kind, &given)) || (rc = mg_args_want(&a, 0, 0, "")))
        goto out;
    if (!file || !file[0]) {
        rc = mg_usage("--filename is required");
        goto out;
    }
    if (size && sizeb) {
        rc = mg_usage("--size and --sizebyte do not go together");
        goto out;
    }
    if (!size && !sizeb) {
        rc = mg_usage("--size (MiB) or --sizebyte is required");
        goto out;
    }
    if (size) {
        if ((rc = mg_parse_mib("--size", size, 1, MG_MAX_DISK_MIB, &mib)))
            goto out;
        bytes = mib << 20;
    } else if ((rc = mg_parse_bytes("--sizebyte", sizeb, BLK_MAX_SIZE_BYTES, &bytes))) {
        goto out;
    }
    if (format && (rc = mg_parse_disk_format("--format", format, &fmt)))
        goto out;
    if (variant && (rc = mg_parse_variant(variant, &fixed)))
        goto out;
    /* As VBoxManage: a name without an extension gets the format's. */
    const char *base = rt_path_basename(file);
    const char *ext = fmt == BLK_FMT_VDI ? "vdi" : fmt == BLK_FMT_QCOW2 ? "qcow2" : "img";
    char *named = strchr(base, '.') ? strdup(file) : rt_strdup_printf("%s.%s", file, ext);
    path = named ? mg_abs_path(named) : NULL;
    free(named);
    if (!path) {
        rc = mg_fail("out of memory");
        goto out;
    }
    if (rt_path_exists(path)) {
        rc = mg_fail("medium '%s' already exists; will not overwrite it", path);
        goto out;
    }
    struct rt_uuid uuid;
    struct cfg_error err = {{0}};
    if ((rc = mach_medium_create(path, fmt, bytes, fixed, &uuid, &err)) < 0) {
        rc = mg_fail_err(rc, &err, "cannot create medium '%s'", path);
        goto out;
    }
    char us[RT_UUID_STR_LEN];
    rt_uuid_to_str(&uuid, us);
    printf("Medium created. UUID: %s\n", us);
    rc = 0;
out:
    free(path);
    a.pos = pos0;
    mg_args_free(&a);
    return rc;
}

/* ---- clonemedium ---------------------------------------------------------------------------------- */

static int mg_clonemedium(int argc, char **argv)
{
    static const struct mg_opt opts[] = {
        {"format", OPT_FORMAT, true, 0, NULL, false}, {"variant", OPT_VARIANT, true, 0, NULL, false},
        {NULL, 0, 0, 0, 0, 0},
    };
    struct mg_args a;
    int rc = mg_args_parse(argc, argv, 1, opts, &a);
    if (rc)
        return rc;
    char **pos0 = a.pos;
    char *dst = NULL;
    struct cfg_medium src = {0};
    bool registered = false, given, fixed = false;
    enum cfg_medium_type kind;
    /* Without --format the copy keeps the source's format where Vireo writes it (mach_medium_clone). */
    struct blk_create_params p = {.format = BLK_FMT_AUTO};
    if ((rc = mg_medium_kind(&a, false, &kind, &given)) || (rc = mg_args_want(&a, 2, 2, "the source and the target")))
        goto out;
    const char *format = mg_args_value(&a, OPT_FORMAT), *variant = mg_args_value(&a, OPT_VARIANT);
    if (format) {
        if ((rc = mg_parse_disk_format("--format", format, &p.format)))
            goto out;
    }
    if (variant && (rc = mg_parse_variant(variant, &fixed)))
        goto out;
    p.fixed = fixed;
    if (!(dst = mg_abs_path(a.pos[1]))) {
        rc = mg_fail("out of memory");
        goto out;
    }
    if ((rc = mg_medium_resolve(a.pos[0], true, &src, &registered)))
        goto out;
    struct rt_uuid uuid;
    struct cfg_error err = {{0}};
    if ((rc = mach_medium_clone(src.location, dst, &p, mg_progress_fn(), NULL, &uuid, &err)) < 0) {
        rc = mg_fail_err(rc, &err, "cannot clone medium '%s' to '%s'", src.location, dst);
        goto out;
    }
    char us[RT_UUID_STR_LEN];
    rt_uuid_to_str(&uuid, us);
    printf("Clone medium created in format '%s'. UUID: %s\n", blk_format_name(p.format), us);
    rc = 0;
out:
    mach_medium_clear(&src);
    free(dst);
    a.pos = pos0;
    mg_args_free(&a);
    return rc;
}

/* ---- modifymedium ----------------------------------------------------------------------------------- */

static int mg_modifymedium(int argc, char **argv)
{
    static const struct mg_opt opts[] = {
        {"resize", OPT_RESIZE, true, 0, NULL, false}, {"resizebyte", OPT_RESIZEBYTE, true, 0, NULL, false},
        {NULL, 0, 0, 0, 0, 0},
    };
    struct mg_args a;
    int rc = mg_args_parse(argc, argv, 1, opts, &a);
    if (rc)
        return rc;
    char **pos0 = a.pos;
    struct cfg_medium med = {0};
    bool registered = false, given;
    enum cfg_medium_type kind;
    uint64_t bytes = 0, mib;
    const char *rs = mg_args_value(&a, OPT_RESIZE), *rsb = mg_args_value(&a, OPT_RESIZEBYTE);
    if ((rc = mg_medium_kind(&a, false, &kind, &given)) || (rc = mg_args_want(&a, 1, 1, "the medium (file or UUID)")))
        goto out;
    if (rs && rsb) {
        rc = mg_usage("--resize and --resizebyte do not go together");
        goto out;
    }
    if (!rs && !rsb) {
        rc = mg_usage("nothing to change: give --resize MiB or --resizebyte BYTES");
        goto out;
    }
    if (rs) {
        if ((rc = mg_parse_mib("--resize", rs, 1, MG_MAX_DISK_MIB, &mib)))
            goto out;
        bytes = mib << 20;
    } else if ((rc = mg_parse_bytes("--resizebyte", rsb, BLK_MAX_SIZE_BYTES, &bytes))) {
        goto out;
    }
    if (bytes % 512) {
        rc = mg_usage("--resizebyte '%s' is not a multiple of 512 bytes", rsb);
        goto out;
    }
    if ((rc = mg_medium_resolve(a.pos[0], true, &med, &registered)))
        goto out;
    if (registered && med.type != CFG_MEDIUM_HDD) {
        rc = mg_fail("medium '%s' is a DVD image; only hard disks can be resized", med.location);
        goto out;
    }
    if (registered && mg_medium_has_children(&med.uuid)) {
        rc = mg_fail("medium '%s' is the base of differencing images (a snapshot's); resizing it would break them",
                     med.location);
        goto out;
    }
    struct cfg_error err = {{0}};
    if ((rc = mach_medium_resize(med.location, bytes, &err)) < 0)
        rc = mg_fail_err(rc, &err, "cannot resize medium '%s'", med.location);
out:
    mach_medium_clear(&med);
    a.pos = pos0;
    mg_args_free(&a);
    return rc;
}

/* ---- checkmedium ------------------------------------------------------------------------------------ */

static void mg_print_check(const char *file, const struct blk_check_result *res)
{
    if (!res->errors && !res->leaks) {
        printf("%s: no errors found\n", file);
        return;
    }
    printf("%s: %u error(s), %u leak(s)%s", file, res->errors, res->leaks, res->repaired ? ", " : "");
    if (res->repaired)
        printf("%u repaired", res->repaired);
    printf("\n");
    if (res->first_problem[0])
        printf("First problem: %s\n", res->first_problem);
}

static int mg_checkmedium(int argc, char **argv)
{
    static const struct mg_opt opts[] = {{"repair", OPT_REPAIR, false, 0, NULL, false}, {NULL, 0, 0, 0, 0, 0}};
    struct mg_args a;
    int rc = mg_args_parse(argc, argv, 1, opts, &a);
    if (rc)
        return rc;
    char **pos0 = a.pos;
    struct cfg_medium med = {0};
    bool registered, given;
    enum cfg_medium_type kind;
    if ((rc = mg_medium_kind(&a, false, &kind, &given)) || (rc = mg_args_want(&a, 1, 1, "the medium (file or UUID)")))
        goto out;
    if ((rc = mg_medium_resolve(a.pos[0], true, &med, &registered)))
        goto out;
    bool repair = mg_args_has(&a, OPT_REPAIR);
    struct blk_check_result res;
    if ((rc = blk_check(med.location, BLK_FMT_AUTO, repair, &res)) < 0) {
        rc = mg_fail("cannot check medium '%s': %s%s", med.location, rt_err_str(rc),
                     rc == VERR_BUSY ? " (a running VM uses it)" : "");
        goto out;
    }
    mg_print_check(med.location, &res);
    if (repair && (res.errors || res.leaks)) {
        /* What the repair left is what counts: look again without changing anything. */
        if ((rc = blk_check(med.location, BLK_FMT_AUTO, false, &res)) < 0) {
            rc = mg_fail("cannot check medium '%s' after the repair: %s", med.location, rt_err_str(rc));
            goto out;
        }
        printf("After repair: ");
        mg_print_check(med.location, &res);
    }
    rc = res.errors ? mg_fail("medium '%s' has %u error(s)%s", med.location, res.errors,
                              repair ? " that could not be repaired" : "; --repair may fix some")
                    : 0;
out:
    mach_medium_clear(&med);
    a.pos = pos0;
    mg_args_free(&a);
    return rc;
}

/* ---- closemedium ------------------------------------------------------------------------------------ */

static int mg_closemedium(int argc, char **argv)
{
    static const struct mg_opt opts[] = {{"delete", OPT_DELETE, false, 0, NULL, false}, {NULL, 0, 0, 0, 0, 0}};
    struct mg_args a;
    int rc = mg_args_parse(argc, argv, 1, opts, &a);
    if (rc)
        return rc;
    char **pos0 = a.pos;
    struct cfg_medium med = {0};
    bool registered, given;
    enum cfg_medium_type kind;
    if ((rc = mg_medium_kind(&a, true, &kind, &given)) || (rc = mg_args_want(&a, 1, 1, "the medium (file or UUID)")))
        goto out;
    if ((rc = mg_medium_resolve(a.pos[0], false, &med, &registered)))
        goto out;
    if (given && med.type != kind) {
        rc = mg_fail("medium '%s' is %s, not %s", med.location, med.type == CFG_MEDIUM_DVD ? "a DVD image" : "a disk",
                     kind == CFG_MEDIUM_DVD ? "a DVD image" : "a disk");
        goto out;
    }
    char **names = NULL;
    size_t n = 0;
    struct cfg_error err = {{0}};
    if (mach_medium_users(&med.uuid, &names, &n, &err) == 0 && n)
        rc = mg_fail("medium '%s' is attached to '%s'%s; detach it first", med.location, names[0],
                     n > 1 ? " and other VMs" : "");
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (rc)
        goto out;
    if (mg_medium_has_children(&med.uuid)) {
        rc = mg_fail("medium '%s' is the base of differencing images; close those first", med.location);
        goto out;
    }
    char us[RT_UUID_STR_LEN];
    rt_uuid_to_str(&med.uuid, us);
    memset(&err, 0, sizeof(err));
    if ((rc = mach_medium_close(us, mg_args_has(&a, OPT_DELETE), &err)) < 0)
        rc = mg_fail_err(rc, &err, "cannot close medium '%s'", med.location);
out:
    mach_medium_clear(&med);
    a.pos = pos0;
    mg_args_free(&a);
    return rc;
}

const struct mg_cmd g_mg_media_cmds[] = {
    {"createmedium", "[disk] --filename FILE --size MiB|--sizebyte BYTES [--format VDI|qcow2|raw]\n"
                     "    [--variant Standard|Fixed]",
     "Creates a disk image (never over an existing file) and registers it.  A FILE without an\n"
     "extension gets the format's (.vdi, .qcow2, .img); relative names are from the current folder.\n"
     "  --size MiB     a number of MiB, or with K/M/G/T (whole MiB; at most 64 TiB)\n"
     "  --sizebyte B   the size in bytes (rounded up to whole MiB)\n"
     "  --format F     VDI (default), qcow2 or raw\n"
     "  --variant V    Standard (grows as used, the default) or Fixed (all space allocated now)\n",
     mg_createmedium},
    {"clonemedium", "[disk] SRC DST [--format VDI|qcow2|raw] [--variant Standard|Fixed]",
     "Copies what the disk SRC (a registered medium's UUID or path, or any image file) shows, its\n"
     "differencing chain flattened, into a new image DST and registers it.  The format defaults to\n"
     "SRC's (VDI for VMDK sources).\n",
     mg_clonemedium},
    {"modifymedium", "[disk] SRC --resize MiB|--resizebyte BYTES",
     "Grows a disk image (a medium or any image file).  Shrinking is refused (it loses data), and so\n"
     "is resizing a snapshot's frozen image or a disk a running VM uses.\n",
     mg_modifymedium},
    {"checkmedium", "[disk] SRC [--repair]",
     "Checks a disk image's metadata; exits with 2 when errors remain.\n"
     "  --repair       fix what can be fixed safely (leaked space, stale counts)\n",
     mg_checkmedium},
    {"closemedium", "[disk|dvd] SRC [--delete]",
     "Removes a medium from the registry (refused while a VM or snapshot uses it).\n"
     "  --delete       also delete the image file\n",
     mg_closemedium},
};
const size_t g_mg_media_cmd_count = RT_ARRAY_SIZE(g_mg_media_cmds);
