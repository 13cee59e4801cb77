/* main.c - vireo-img, the disk image tool: create, info, check, convert, resize and commit images from the command line. */
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vireo/block.h"
#include "vireo/rt.h"

/* Exit codes: 0 done, 1 the command line was wrong (nothing was touched), 2 the operation failed. */
#define EXIT_USAGE 1
#define EXIT_FAILED 2

struct img_cmd {
    const char *name;
    const char *synopsis;
    const char *help;
    int (*run)(int argc, char **argv);
};

static const struct img_cmd *g_cmd; /* the subcommand running, for messages and --help */

static int img_usage_error(const char *fmt, ...) RT_PRINTF(1, 2);
static int img_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "vireo-img: %s%s", g_cmd ? g_cmd->name : "", g_cmd ? ": " : "");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see vireo-img %s%s--help)\n", g_cmd ? g_cmd->name : "", g_cmd ? " " : "");
    va_end(ap);
    return EXIT_USAGE;
}

static int img_failed(const char *file, int rc, const char *what)
{
    fprintf(stderr, "vireo-img: %s: %s: %s%s%s\n", g_cmd->name, file, what, what[0] ? ": " : "", rt_err_str(rc));
    return EXIT_FAILED;
}

/* SIZE arguments: bytes with an optional binary suffix, a positive multiple of 512, at most 64 TiB. */
static int img_parse_size(const char *arg, uint64_t *out)
{
    uint64_t v = 0;
    int rc = rt_str_to_size(arg, &v);
    if (rc == VERR_OUT_OF_RANGE)
        return img_usage_error("size '%s' is too large (at most 64T)", arg);
    if (rc < 0)
        return img_usage_error("size '%s' is not a size (examples: 512, 64K, 10M, 20G, 1T)", arg);
    if (v == 0)
        return img_usage_error("size '%s' must be more than zero", arg);
    if (v % 512)
        return img_usage_error("size '%s' is not a multiple of 512 bytes", arg);
    if (v > BLK_MAX_SIZE_BYTES)
        return img_usage_error("size '%s' is too large (at most 64T)", arg);
    *out = v;
    return 0;
}

static int img_parse_format(const char *arg, bool creatable, enum blk_format *out)
{
    enum blk_format fmt;
    if (blk_format_from_name(arg, &fmt) < 0 || fmt == BLK_FMT_AUTO ||
        (creatable && fmt != BLK_FMT_RAW && fmt != BLK_FMT_VDI && fmt != BLK_FMT_QCOW2))
        return img_usage_error("format '%s' must be %s", arg, creatable ? "raw, vdi or qcow2" : "raw, vdi, qcow2, vmdk or iso");
    *out = fmt;
    return 0;
}

/* "1.5 GiB"-style rendering of a byte count for people. */
static void img_human_size(uint64_t bytes, char *out, size_t len)
{
    static const char *const units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB"};
    unsigned u = 0;
    double v = (double)bytes;
    while (v >= 1024.0 && u + 1 < RT_ARRAY_SIZE(units)) {
        v /= 1024.0;
        u++;
    }
    if (u == 0)
        snprintf(out, len, "%" PRIu64 " bytes", bytes);
    else
        snprintf(out, len, "%.*f %s", v == (double)(uint64_t)v ? 0 : 1, v, units[u]);
}

/*
 * Option parsing shared by the subcommands: long options only, every subcommand
 * knows --help.  Returns the index of the first positional argument, or a
 * negative exit code (after printing what was wrong or the help).
 */
static int img_getopt(int argc, char **argv, const struct option *opts, int (*handle)(int opt, const char *arg, void *ctx),
                      void *ctx)
{
    optind = 1;
    opterr = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
        if (opt == 'h') {
            printf("Usage: vireo-img %s %s\n\n%s", g_cmd->name, g_cmd->synopsis, g_cmd->help);
            return -1000;
        }
        if (opt == '?' || opt == ':')
            return -img_usage_error("unknown or incomplete option '%s'", argv[optind - 1]);
        int rc = handle(opt, optarg, ctx);
        if (rc)
            return -rc;
    }
    return optind;
}

/* What img_getopt's negative return means as an exit code (--help is success). */
static int img_opt_exit(int r)
{
    return r == -1000 ? 0 : -r;
}

static int img_want_args(int argc, int first, int min, int max)
{
    int n = argc - first;
    if (n < min)
        return img_usage_error("missing argument (usage: vireo-img %s %s)", g_cmd->name, g_cmd->synopsis);
    if (n > max)
        return img_usage_error("too many arguments (usage: vireo-img %s %s)", g_cmd->name, g_cmd->synopsis);
    return 0;
}

/* For subcommands whose one option is a flag: ctx is the bool it sets. */
static int img_flag_opt(int opt, const char *arg, void *ctx)
{
    *(bool *)ctx = true;
    return 0;
}

/* ---- create -------------------------------------------------------------------- */

struct img_create_opts {
    struct blk_create_params params;
};

static int img_create_opt(int opt, const char *arg, void *ctx)
{
    struct img_create_opts *o = ctx;
    switch (opt) {
    case 'f': return img_parse_format(arg, true, &o->params.format);
    case 'x': o->params.fixed = true; return 0;
    case 'b':
        if (!arg[0])
            return img_usage_error("--backing needs a file name");
        o->params.backing_path = arg;
        return 0;
    case 'B': return img_parse_format(arg, false, &o->params.backing_format);
    }
    return img_usage_error("unknown option");
}

static int img_create(int argc, char **argv)
{
    static const struct option opts[] = {
        {"format", required_argument, NULL, 'f'}, {"fixed", no_argument, NULL, 'x'},
        {"backing", required_argument, NULL, 'b'}, {"backing-format", required_argument, NULL, 'B'},
        {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
    };
    struct img_create_opts o = {.params = {.format = BLK_FMT_RAW}};
    int first = img_getopt(argc, argv, opts, img_create_opt, &o);
    if (first < 0)
        return img_opt_exit(first);
    int rc = img_want_args(argc, first, o.params.backing_path ? 1 : 2, 2);
    if (rc)
        return rc;
    const char *file = argv[first];
    if (argc - first == 2 && (rc = img_parse_size(argv[first + 1], &o.params.size_bytes)))
        return rc;
    if (o.params.backing_path && o.params.format == BLK_FMT_RAW)
        return img_usage_error("--backing needs --format vdi or qcow2 (raw images have no backing file)");
    if (o.params.backing_path && o.params.fixed)
        return img_usage_error("--fixed and --backing do not go together");
    rc = blk_create(file, &o.params);
    if (rc < 0)
        return img_failed(file, rc, "cannot create the image");
    struct blk_image *img = NULL;
    char size[32] = "";
    if (blk_open(file, o.params.format, BLK_OPEN_READONLY | BLK_OPEN_NO_BACKING, &img) == 0) {
        img_human_size(blk_size_bytes(img), size, sizeof(size));
        blk_close(img);
    }
    printf("Created %s image '%s'%s%s\n", blk_format_name(o.params.format), file, size[0] ? " of " : "", size);
    return 0;
}

/* ---- info ------------------------------------------------------------------------ */

/* Prints s in double quotes with backslash escapes for quotes, backslashes and control characters. */
static void img_print_quoted(const char *key, const char *s)
{
    printf("%s=\"", key);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            printf("\\x%02x", c);
        else
            putchar(c);
    }
    printf("\"\n");
}

static int img_info(int argc, char **argv)
{
    static const struct option opts[] = {
        {"machinereadable", no_argument, NULL, 'm'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
    };
    bool machine = false;
    int first = img_getopt(argc, argv, opts, img_flag_opt, &machine);
    if (first < 0)
        return img_opt_exit(first);
    int rc = img_want_args(argc, first, 1, 1);
    if (rc)
        return rc;
    const char *file = argv[first];
    struct blk_image *img = NULL;
    /* This file alone: info still works when its parent is missing, and says which parent it wants. */
    rc = blk_open(file, BLK_FMT_AUTO, BLK_OPEN_READONLY | BLK_OPEN_NO_BACKING, &img);
    if (rc < 0)
        return img_failed(file, rc, "cannot open");
    struct blk_info info;
    rc = blk_get_info(img, &info);
    blk_close(img);
    if (rc < 0)
        return img_failed(file, rc, "cannot read its information");
    char uuid[RT_UUID_STR_LEN] = "", parent_uuid[RT_UUID_STR_LEN] = "";
    if (!rt_uuid_is_null(&info.uuid))
        rt_uuid_to_str(&info.uuid, uuid);
    if (!rt_uuid_is_null(&info.parent_uuid))
        rt_uuid_to_str(&info.parent_uuid, parent_uuid);
    const char *bfmt = info.backing_format != BLK_FMT_AUTO ? blk_format_name(info.backing_format) : NULL;
    if (machine) {
        img_print_quoted("file", file);
        img_print_quoted("format", blk_format_name(info.format));
        img_print_quoted("variant", info.variant);
        printf("size=%" PRIu64 "\nfile_bytes=%" PRIu64 "\nallocated_bytes=%" PRIu64 "\n", info.size_bytes,
               info.file_bytes, info.allocated_bytes);
        img_print_quoted("uuid", uuid);
        img_print_quoted("parent_uuid", parent_uuid);
        img_print_quoted("backing_file", info.backing_path);
        img_print_quoted("backing_format", bfmt ? bfmt : "");
        return 0;
    }
    char vsize[32], asize[32];
    img_human_size(info.size_bytes, vsize, sizeof(vsize));
    img_human_size(info.allocated_bytes, asize, sizeof(asize));
    printf("File:          %s\n", file);
    printf("Format:        %s%s%s%s\n", blk_format_name(info.format), info.variant[0] ? " (" : "", info.variant,
           info.variant[0] ? ")" : "");
    printf("Virtual size:  %s (%" PRIu64 " bytes)\n", vsize, info.size_bytes);
    printf("File length:   %" PRIu64 " bytes\n", info.file_bytes);
    printf("Disk usage:    %s\n", asize);
    if (uuid[0])
        printf("UUID:          %s\n", uuid);
    if (parent_uuid[0])
        printf("Parent UUID:   %s\n", parent_uuid);
    if (info.backing_path[0])
        printf("Backing file:  %s%s%s%s\n", info.backing_path, bfmt ? " (" : "", bfmt ? bfmt : "", bfmt ? ")" : "");
    return 0;
}

/* ---- check ----------------------------------------------------------------------- */

static void img_print_check(const char *file, const struct blk_check_result *res)
{
    if (!res->errors && !res->leaks) {
        printf("%s: no errors found\n", file);
        return;
    }
    printf("%s: %u error(s), %u leak(s)", file, res->errors, res->leaks);
    if (res->repaired)
        printf(", %u repaired", res->repaired);
    printf("\n");
    if (res->first_problem[0])
        printf("First problem: %s\n", res->first_problem);
}

static int img_check(int argc, char **argv)
{
    static const struct option opts[] = {
        {"repair", no_argument, NULL, 'r'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
    };
    bool repair = false;
    int first = img_getopt(argc, argv, opts, img_flag_opt, &repair);
    if (first < 0)
        return img_opt_exit(first);
    int rc = img_want_args(argc, first, 1, 1);
    if (rc)
        return rc;
    const char *file = argv[first];
    struct blk_check_result res;
    rc = blk_check(file, BLK_FMT_AUTO, repair, &res);
    if (rc < 0)
        return img_failed(file, rc, "cannot check");
    img_print_check(file, &res);
    if (repair && (res.errors || res.leaks)) {
        /* What the repair left is what counts: check again without changing anything. */
        rc = blk_check(file, BLK_FMT_AUTO, false, &res);
        if (rc < 0)
            return img_failed(file, rc, "cannot check after the repair");
        printf("After repair: ");
        img_print_check(file, &res);
    }
    if (res.errors) {
        fprintf(stderr, "vireo-img: check: %s: %u error(s) remain\n", file, res.errors);
        return EXIT_FAILED;
    }
    return 0;
}

/* ---- convert ----------------------------------------------------------------------- */

struct img_convert_opts {
    struct blk_create_params params;
    bool progress;
};

static int img_convert_opt(int opt, const char *arg, void *ctx)
{
    struct img_convert_opts *o = ctx;
    switch (opt) {
    case 'f': return img_parse_format(arg, true, &o->params.format);
    case 'x': o->params.fixed = true; return 0;
    case 'p': o->progress = true; return 0;
    }
    return img_usage_error("unknown option");
}

static void img_progress(void *opaque, uint64_t done, uint64_t total)
{
    unsigned percent = total ? (unsigned)(done * 100 / total) : 100;
    fprintf(stderr, "\r%3u%%", percent);
    if (done >= total)
        fprintf(stderr, "\n");
    fflush(stderr);
}

static int img_convert(int argc, char **argv)
{
    static const struct option opts[] = {
        {"format", required_argument, NULL, 'f'}, {"fixed", no_argument, NULL, 'x'},
        {"progress", no_argument, NULL, 'p'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
    };
    struct img_convert_opts o = {.params = {.format = BLK_FMT_RAW}};
    int first = img_getopt(argc, argv, opts, img_convert_opt, &o);
    if (first < 0)
        return img_opt_exit(first);
    int rc = img_want_args(argc, first, 2, 2);
    if (rc)
        return rc;
    const char *src = argv[first], *dst = argv[first + 1];
    struct stat st;
    if (lstat(dst, &st) == 0)
        return img_failed(dst, VERR_ALREADY_EXISTS, "will not overwrite");
    struct blk_image *img = NULL;
    rc = blk_open(src, BLK_FMT_AUTO, BLK_OPEN_READONLY, &img);
    if (rc < 0)
        return img_failed(src, rc, "cannot open");
    bool show = o.progress || isatty(STDERR_FILENO);
    rc = blk_convert(img, dst, &o.params, show ? img_progress : NULL, NULL);
    blk_close(img);
    if (rc < 0)
        return img_failed(dst, rc, "conversion failed");
    return 0;
}

/* ---- resize ------------------------------------------------------------------------ */

static int img_resize(int argc, char **argv)
{
    static const struct option opts[] = {
        {"shrink", no_argument, NULL, 's'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
    };
    bool shrink = false;
    int first = img_getopt(argc, argv, opts, img_flag_opt, &shrink);
    if (first < 0)
        return img_opt_exit(first);
    int rc = img_want_args(argc, first, 2, 2);
    if (rc)
        return rc;
    const char *file = argv[first];
    uint64_t size;
    if ((rc = img_parse_size(argv[first + 1], &size)))
        return rc;
    struct blk_image *img = NULL;
    rc = blk_open(file, BLK_FMT_AUTO, BLK_OPEN_NO_BACKING, &img);
    if (rc < 0)
        return img_failed(file, rc, "cannot open for writing");
    if (size < blk_size_bytes(img) && !shrink) {
        blk_close(img);
        fprintf(stderr, "vireo-img: resize: %s: %" PRIu64 " bytes is smaller than the disk; shrinking loses "
                        "data, add --shrink if that is what you want\n", file, size);
        return EXIT_USAGE;
    }
    rc = blk_resize(img, size);
    if (rc == 0)
        rc = blk_flush(img);
    blk_close(img);
    if (rc < 0)
        return img_failed(file, rc, "cannot resize");
    return 0;
}

/* ---- commit ------------------------------------------------------------------------ */

static int img_commit(int argc, char **argv)
{
    static const struct option opts[] = {
        {"progress", no_argument, NULL, 'p'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
    };
    bool progress = false;
    int first = img_getopt(argc, argv, opts, img_flag_opt, &progress);
    if (first < 0)
        return img_opt_exit(first);
    int rc = img_want_args(argc, first, 1, 1);
    if (rc)
        return rc;
    const char *file = argv[first];
    struct blk_image *img = NULL;
    rc = blk_open(file, BLK_FMT_AUTO, BLK_OPEN_READONLY, &img);
    if (rc < 0)
        return img_failed(file, rc, "cannot open");
    if (!blk_backing(img)) {
        blk_close(img);
        fprintf(stderr, "vireo-img: commit: %s: has no backing file to commit into\n", file);
        return EXIT_FAILED;
    }
    bool show = progress || isatty(STDERR_FILENO);
    rc = blk_commit(img, show ? img_progress : NULL, NULL);
    char *parent = strdup(blk_path(blk_backing(img)));
    blk_close(img);
    if (rc < 0) {
        free(parent);
        return img_failed(file, rc, "commit failed");
    }
    printf("Committed '%s' into '%s'\n", file, parent ? parent : "its backing file");
    free(parent);
    return 0;
}

/* ---- main --------------------------------------------------------------------------- */

static const struct img_cmd g_cmds[] = {
    {"create", "[--format raw|vdi|qcow2] [--fixed] [--backing PATH [--backing-format F]] FILE [SIZE]",
     "Creates a new disk image; never replaces an existing file.  SIZE is bytes or a number\n"
     "with K, M, G or T (powers of 1024), a multiple of 512.  With --backing the image is a\n"
     "differencing image over PATH (relative paths are relative to FILE's folder) and SIZE\n"
     "defaults to the parent's.\n"
     "  --format F     raw (default), vdi or qcow2\n"
     "  --fixed        allocate every block now\n",
     img_create},
    {"info", "[--machinereadable] FILE",
     "Shows an image's format, sizes, UUIDs and backing file.\n"
     "  --machinereadable  key=\"value\" lines for scripts\n",
     img_info},
    {"check", "[--repair] FILE",
     "Checks an image's metadata; exits with 2 when errors remain.\n"
     "  --repair       fix what can be fixed safely (leaked space, stale counts)\n",
     img_check},
    {"convert", "[--format raw|vdi|qcow2] [--fixed] [--progress] SRC DST",
     "Copies what SRC shows (its backing chain flattened) into a new standalone image DST.\n"
     "Unallocated and all-zero ranges stay unallocated.  DST must not exist.\n"
     "  --format F     raw (default), vdi or qcow2\n"
     "  --fixed        allocate every block of DST\n"
     "  --progress     show percentages on stderr (the default when stderr is a terminal)\n",
     img_convert},
    {"resize", "[--shrink] FILE SIZE",
     "Changes the virtual disk's size; the new range reads as zeroes.\n"
     "  --shrink       allow a smaller size (the data past it is lost; raw images only)\n",
     img_resize},
    {"commit", "[--progress] FILE",
     "Merges a differencing image into its backing file; FILE itself is left as it was.\n"
     "  --progress     show percentages on stderr (the default when stderr is a terminal)\n",
     img_commit},
};

static void img_main_usage(FILE *out)
{
    fprintf(out, "Usage: vireo-img COMMAND [options] ARGS\n\nCommands:\n");
    for (size_t i = 0; i < RT_ARRAY_SIZE(g_cmds); i++)
        fprintf(out, "  %-8s %s\n", g_cmds[i].name, g_cmds[i].synopsis);
    fprintf(out, "\n'vireo-img COMMAND --help' describes one command.\n"
                 "Exit status: 0 done, 1 bad command line (nothing changed), 2 the operation failed.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        img_main_usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        img_main_usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < RT_ARRAY_SIZE(g_cmds); i++) {
        if (strcmp(argv[1], g_cmds[i].name) == 0) {
            g_cmd = &g_cmds[i];
            return g_cmds[i].run(argc - 1, argv + 1);
        }
    }
    return img_usage_error("unknown command '%s'", argv[1]);
}
