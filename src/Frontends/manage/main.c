/* main.c - vireo-manage, the command line for machines, media, snapshots and running VMs: dispatch, option parsing and the helpers every command shares. */
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "manage.h"
#include "vireo/vmctl.h"

/*
 * vireo-manage is a thin layer over libVireoMain: every change to a machine or the media registry is one
 * library transaction (mach_*), so this program only turns command lines into calls and results into
 * text.  The command line is checked completely before anything is touched, which is what makes exit
 * code 1 mean "nothing changed".
 */

const struct mg_cmd *g_mg_cmd;

/* ---- Messages --------------------------------------------------------------------- */

int mg_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "vireo-manage: error: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (g_mg_cmd)
        fprintf(stderr, "; see 'vireo-manage %s --help'\n", g_mg_cmd->name);
    else
        fprintf(stderr, "; see 'vireo-manage --help'\n");
    return MG_EXIT_USAGE;
}

int mg_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "vireo-manage: error: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    return MG_EXIT_FAILED;
}

int mg_fail_err(int rc, const struct cfg_error *err, const char *fmt, ...)
{
    fprintf(stderr, "vireo-manage: error: ");
    /* The library's messages name the object and the reason already; ours only fill in when it said nothing. */
    if (err && err->msg[0]) {
        fprintf(stderr, "%s\n", err->msg);
        return MG_EXIT_FAILED;
    }
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, ": %s\n", rt_err_str(rc));
    return MG_EXIT_FAILED;
}

void mg_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "vireo-manage: warning: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}

int mg_help(void)
{
    const char *syn = g_mg_cmd->synopsis;
    /* Several synopsis lines: each gets the "vireo-manage CMD" prefix. */
    /* A line starting with a blank continues the one before it. */
    printf("Usage:");
    while (*syn) {
        const char *nl = strchr(syn, '\n');
        int len = nl ? (int)(nl - syn) : (int)strlen(syn);
        if (syn[0] == ' ')
            printf("%*s%.*s\n", (int)strlen(g_mg_cmd->name) + 15, "", len, syn);
        else
            printf(" vireo-manage %s %.*s\n", g_mg_cmd->name, len, syn);
        syn += len + (nl ? 1 : 0);
        if (*syn && *syn != ' ')
            printf("      ");
    }
    printf("\n%s", g_mg_cmd->help);
    return MG_EXIT_HELP;
}

/* ---- Option parsing --------------------------------------------------------------------- */

/* Matches "--name" (or an indexed "--nameN") against the table; the index comes back in *index. */
static const struct mg_opt *mg_opt_lookup(const struct mg_opt *table, const char *name, size_t len, unsigned *index)
{
    for (const struct mg_opt *o = table; o->name; o++) {
        size_t n = strlen(o->name);
        if (o->name[n - 1] != '#') {
            if (n == len && !memcmp(o->name, name, len)) {
                *index = 0;
                return o;
            }
            continue;
        }
        n--;
        if (len <= n || len > n + 3 || memcmp(o->name, name, n))
            continue;
        unsigned v = 0;
        size_t i = n;
        for (; i < len && name[i] >= '0' && name[i] <= '9'; i++)
            v = v * 10 + (unsigned)(name[i] - '0');
        if (i != len || name[n] == '0')
            continue;
        if (v < 1 || v > o->max_index) {
            *index = UINT_MAX; /* a known option with an index out of range */
            return o;
        }
        *index = v;
        return o;
    }
    return NULL;
}

int mg_args_parse(int argc, char **argv, int first, const struct mg_opt *table, struct mg_args *out)
{
    memset(out, 0, sizeof(*out));
    out->pos = calloc((size_t)argc + 1, sizeof(char *));
    out->opts = calloc((size_t)argc + 1, sizeof(struct mg_arg));
    if (!out->pos || !out->opts) {
        mg_args_free(out);
        return mg_fail("out of memory");
    }
    bool options_done = false;
    /* --help wins over everything else on the line, even errors before it. */
    for (int i = first; i < argc; i++) {
        if (!strcmp(argv[i], "--"))
            break;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            mg_args_free(out);
            return mg_help();
        }
    }
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (options_done || a[0] != '-' || !strcmp(a, "-")) {
            out->pos[out->pos_count++] = argv[i];
            continue;
        }
        if (!strcmp(a, "--")) {
            options_done = true;
            continue;
        }
        if (a[1] != '-') {
            mg_args_free(out);
            return mg_usage("unknown option '%s' (options are spelled --name)", a);
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        unsigned index = 0;
        const struct mg_opt *o = mg_opt_lookup(table, name, len, &index);
        if (!o) {
            mg_args_free(out);
            return mg_usage("unknown option '%.*s'", (int)len + 2, a);
        }
        if (index == UINT_MAX) {
            mg_args_free(out);
            return mg_usage("'%.*s': the number must be from 1 to %u", (int)len + 2, a, o->max_index);
        }
        struct mg_arg *arg = &out->opts[out->opt_count];
        arg->id = o->id;
        arg->index = index;
        arg->spelled = argv[i];
        if (eq) {
            /* The spelled name must not carry the value into messages. */
            arg->spelled = strndup(argv[i], (size_t)(eq - argv[i]));
            arg->spelled_alloc = true;
            if (!arg->spelled) {
                mg_args_free(out);
                return mg_fail("out of memory");
            }
        }
        if (!o->takes_value) {
            if (eq) {
                int rc = mg_usage("option '%s' takes no value", arg->spelled);
                out->opt_count++;
                mg_args_free(out);
                return rc;
            }
        } else if (eq) {
            arg->value = eq + 1;
        } else if (i + 1 < argc) {
            arg->value = argv[++i];
        } else {
            int rc = mg_usage("option '%s' needs a value", arg->spelled);
            mg_args_free(out);
            return rc;
        }
        out->opt_count++;
        if (o->second_after && arg->value) {
            for (const char *const *w = o->second_after; *w; w++) {
                if (strcmp(*w, arg->value))
                    continue;
                if (i + 1 >= argc) {
                    int rc = mg_usage("option '%s %s' needs one more value", arg->spelled, arg->value);
                    mg_args_free(out);
                    return rc;
                }
                arg->value2 = argv[++i];
                break;
            }
        }
        if (!o->repeat) {
            for (int k = 0; k < out->opt_count - 1; k++) {
                if (out->opts[k].id == arg->id && out->opts[k].index == arg->index) {
                    int rc = mg_usage("option '%s' is given twice; which one is meant is not clear", arg->spelled);
                    mg_args_free(out);
                    return rc;
                }
            }
        }
    }
    return 0;
}

void mg_args_free(struct mg_args *a)
{
    for (int i = 0; a->opts && i < a->opt_count; i++)
        if (a->opts[i].spelled_alloc)
            free((char *)a->opts[i].spelled);
    free(a->pos);
    free(a->opts);
    memset(a, 0, sizeof(*a));
}

int mg_args_want(const struct mg_args *a, int min, int max, const char *what)
{
    if (a->pos_count < min)
        return mg_usage("missing %s", what);
    if (a->pos_count > max)
        return mg_usage("unexpected argument '%s'", a->pos[max]);
    return 0;
}

const char *mg_args_value(const struct mg_args *a, int id)
{
    const char *v = NULL;
    for (int i = 0; i < a->opt_count; i++)
        if (a->opts[i].id == id)
            v = a->opts[i].value;
    return v;
}

bool mg_args_has(const struct mg_args *a, int id)
{
    for (int i = 0; i < a->opt_count; i++)
        if (a->opts[i].id == id)
            return true;
    return false;
}

/* ---- Values ------------------------------------------------------------------------------ */

int mg_parse_onoff(const char *opt, const char *s, bool *out)
{
    static const char *const on[] = {"on", "yes", "true", "1"}, *const off[] = {"off", "no", "false", "0"};
    for (size_t i = 0; i < RT_ARRAY_SIZE(on); i++) {
        if (!strcmp(s, on[i])) {
            *out = true;
            return 0;
        }
        if (!strcmp(s, off[i])) {
            *out = false;
            return 0;
        }
    }
    return mg_usage("%s '%s' must be on or off", opt, s);
}

int mg_parse_uint(const char *opt, const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    uint64_t v;
    if (rt_str_to_u64(s, &v) || v < min || v > max)
        return mg_usage("%s '%s' must be a number from %" PRIu64 " to %" PRIu64, opt, s, min, max);
    *out = v;
    return 0;
}

int mg_parse_mib(const char *opt, const char *s, uint64_t min_mib, uint64_t max_mib, uint64_t *out_mib)
{
    uint64_t v;
    int rc = rt_str_to_u64(s, &v);
    if (rc == VERR_OUT_OF_RANGE)
        return mg_usage("%s '%s' is too large (at most %" PRIu64 " MiB)", opt, s, max_mib);
    if (rc < 0) {
        /* Not a plain number: a size with a suffix, which must come to whole MiB. */
        rc = rt_str_to_size(s, &v);
        if (rc == VERR_OUT_OF_RANGE)
            return mg_usage("%s '%s' is too large (at most %" PRIu64 " MiB)", opt, s, max_mib);
        if (rc < 0 || s[0] < '0' || s[0] > '9')
            return mg_usage("%s '%s' is not a size: give MiB (1024) or a number with K, M, G or T (1G)", opt, s);
        if (v % (1u << 20))
            return mg_usage("%s '%s' is not a whole number of MiB", opt, s);
        v >>= 20;
    }
    if (v == 0)
        return mg_usage("%s '%s' must be more than zero", opt, s);
    if (v < min_mib || v > max_mib)
        return mg_usage("%s '%s' is out of range (%" PRIu64 " to %" PRIu64 " MiB)", opt, s, min_mib, max_mib);
    *out_mib = v;
    return 0;
}

int mg_parse_bytes(const char *opt, const char *s, uint64_t max, uint64_t *out)
{
    uint64_t v;
    int rc = rt_str_to_size(s, &v);
    if (rc == VERR_OUT_OF_RANGE || (rc == 0 && v > max))
        return mg_usage("%s '%s' is too large (at most %" PRIu64 " bytes)", opt, s, max);
    if (rc < 0 || s[0] < '0' || s[0] > '9')
        return mg_usage("%s '%s' is not a size in bytes (examples: 1048576, 64K, 2G)", opt, s);
    if (v == 0)
        return mg_usage("%s '%s' must be more than zero", opt, s);
    *out = v;
    return 0;
}

/* Length of the UTF-8 sequence starting at s, 0 when it is not valid UTF-8. */
static size_t mg_utf8_len(const unsigned char *s)
{
    if (s[0] < 0x80)
        return 1;
    size_t n = (s[0] & 0xe0) == 0xc0 ? 2 : (s[0] & 0xf0) == 0xe0 ? 3 : (s[0] & 0xf8) == 0xf0 ? 4 : 0;
    if (!n || (n == 2 && s[0] < 0xc2) || (n == 4 && s[0] > 0xf4))
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if (n == 3 && ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0)))
        return 0; /* overlong or a UTF-16 surrogate */
    if (n == 4 && ((s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90)))
        return 0;
    return n;
}

int mg_check_text(const char *opt, const char *s, bool allow_newlines)
{
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        if ((*p < 0x20 && !(allow_newlines && (*p == '\n' || *p == '\t'))) || *p == 0x7f)
            return mg_usage("%s contains a control character (0x%02x), which settings cannot keep", opt, *p);
        size_t n = mg_utf8_len(p);
        if (!n)
            return mg_usage("%s is not valid UTF-8", opt);
        p += n;
    }
    return 0;
}

/* ---- Output ------------------------------------------------------------------------------ */

void mg_print_kv(const char *key, const char *value)
{
    printf("%s=\"", key);
    for (const unsigned char *p = (const unsigned char *)(value ? value : ""); *p; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p == '\n')
            printf("\\n");
        else if (*p < 0x20 || *p == 0x7f)
            printf("\\x%02x", *p);
        else
            putchar(*p);
    }
    printf("\"\n");
}

void mg_format_time(uint64_t ns, char *out, size_t len)
{
    time_t secs = (time_t)(ns / RT_NS_PER_SEC);
    struct tm tm;
    if (!gmtime_r(&secs, &tm)) {
        snprintf(out, len, "unknown");
        return;
    }
    char base[32];
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, len, "%s.%03uZ", base, (unsigned)(ns % RT_NS_PER_SEC / RT_NS_PER_MS));
}

void mg_format_size(uint64_t bytes, char *out, size_t len)
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

/* ---- Lookups ------------------------------------------------------------------------------ */

int mg_vm_find(const char *name_or_uuid, char **settings_path, struct cfg_machine **m)
{
    struct cfg_error err = {{0}};
    char *path = NULL;
    int rc = mach_find(name_or_uuid, &path, m, &err);
    if (rc == VERR_NOT_FOUND)
        return mg_fail("VM '%s' is not registered", name_or_uuid);
    if (rc < 0)
        return mg_fail_err(rc, &err, "cannot read VM '%s'", name_or_uuid);
    if (settings_path)
        *settings_path = path;
    else
        free(path);
    return 0;
}

const char *mg_vm_state_name(const struct cfg_machine *m, const char *settings_path)
{
    static char live[32];
    if (!mach_is_running(settings_path))
        return cfg_machine_state_name(m->state);
    void *body = NULL;
    size_t len = 0;
    char errmsg[256];
    int rc = vmctl_call(&m->uuid, "state", NULL, 5000, &body, &len, errmsg);
    /* The body is one word; anything else is not trusted into the output. */
    if (rc == 0 && len > 0 && len < sizeof(live) && strspn(body, "abcdefghijklmnopqrstuvwxyz-") == len) {
        memcpy(live, body, len + 1);
        free(body);
        return live;
    }
    free(body);
    /* The process holds the run lock but does not answer (starting, or stuck): the record says best. */
    return m->state == CFG_STATE_PAUSED ? "paused" : "running";
}

bool mg_medium_has_children(const struct rt_uuid *uuid)
{
    struct cfg_medium *media = NULL;
    size_t count = 0;
    struct cfg_error err = {{0}};
    bool found = false;
    if (mach_medium_list(CFG_MEDIUM_HDD, &media, &count, &err) < 0)
        return false;
    for (size_t i = 0; i < count; i++)
        if (!memcmp(&media[i].parent, uuid, sizeof(*uuid)))
            found = true;
    mach_medium_list_free(media, count);
    return found;
}

char *mg_abs_path(const char *path)
{
    if (path[0] == '/')
        return strdup(path);
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof(cwd)))
        return NULL;
    return rt_path_join(cwd, path);
}

static void mg_progress(void *opaque, uint64_t done, uint64_t total)
{
    (void)opaque;
    fprintf(stderr, "\r%3u%%", total ? (unsigned)(done * 100 / total) : 100);
    if (done >= total)
        fprintf(stderr, "\n");
    fflush(stderr);
}

blk_progress_fn *mg_progress_fn(void)
{
    return isatty(STDERR_FILENO) ? mg_progress : NULL;
}

/* ---- Dispatch ------------------------------------------------------------------------------ */

struct mg_cmd_table {
    const struct mg_cmd *cmds;
    const size_t *count;
};

static const struct mg_cmd_table g_tables[] = {
    {g_mg_info_cmds, &g_mg_info_cmd_count},       {g_mg_vm_cmds, &g_mg_vm_cmd_count},
    {g_mg_modify_cmds, &g_mg_modify_cmd_count},   {g_mg_storage_cmds, &g_mg_storage_cmd_count},
    {g_mg_media_cmds, &g_mg_media_cmd_count},     {g_mg_control_cmds, &g_mg_control_cmd_count},
    {g_mg_snapshot_cmds, &g_mg_snapshot_cmd_count}, {g_mg_clone_cmds, &g_mg_clone_cmd_count},
};

/* VBoxManage's older names for the medium commands. */
static const char *const g_aliases[][2] = {
    {"createhd", "createmedium"}, {"clonehd", "clonemedium"}, {"modifyhd", "modifymedium"},
    {"closehd", "closemedium"},
};

static const struct mg_cmd *mg_cmd_find(const char *name)
{
    for (size_t i = 0; i < RT_ARRAY_SIZE(g_aliases); i++)
        if (!strcmp(name, g_aliases[i][0]))
            name = g_aliases[i][1];
    for (size_t t = 0; t < RT_ARRAY_SIZE(g_tables); t++)
        for (size_t i = 0; i < *g_tables[t].count; i++)
            if (!strcmp(g_tables[t].cmds[i].name, name))
                return &g_tables[t].cmds[i];
    return NULL;
}

static void mg_main_usage(FILE *out)
{
    fprintf(out, "Usage: vireo-manage COMMAND [ARGS...]\n\n"
                 "Creates, changes and runs Vireo virtual machines and their media.\n\nCommands:\n");
    for (size_t t = 0; t < RT_ARRAY_SIZE(g_tables); t++) {
        for (size_t i = 0; i < *g_tables[t].count; i++) {
            const struct mg_cmd *c = &g_tables[t].cmds[i];
            const char *nl = strchr(c->synopsis, '\n');
            int len = nl ? (int)(nl - c->synopsis) : (int)strlen(c->synopsis);
            fprintf(out, "  %-14s %.*s%s\n", c->name, len, c->synopsis, nl ? " ..." : "");
        }
    }
    fprintf(out, "\n'vireo-manage help COMMAND' or 'vireo-manage COMMAND --help' describes one command.\n"
                 "VM is a machine's name or UUID.  Settings live in $VIREO_USER_HOME (default ~/.config/Vireo).\n"
                 "Exit status: 0 done, 1 bad command line (nothing was changed), 2 the operation failed.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return mg_usage("no command given");
    const char *name = argv[1];
    if (!strcmp(name, "--help") || !strcmp(name, "-h") || (!strcmp(name, "help") && argc == 2)) {
        mg_main_usage(stdout);
        return 0;
    }
    if (!strcmp(name, "--version")) {
        printf("vireo-manage (Vireo) settings schema %d\n", CFG_SCHEMA_VERSION);
        return 0;
    }
    if (!strcmp(name, "help")) {
        const struct mg_cmd *c = mg_cmd_find(argv[2]);
        if (!c || argc > 3)
            return mg_usage("'%s' is not a command", argv[2]);
        g_mg_cmd = c;
        mg_help();
        return 0;
    }
    const struct mg_cmd *c = mg_cmd_find(name);
    if (!c)
        return mg_usage("unknown command '%s'", name);
    g_mg_cmd = c;
    int rc = c->run(argc - 1, argv + 1);
    return rc < 0 ? 0 : rc;
}
