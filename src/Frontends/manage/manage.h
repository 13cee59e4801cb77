/* manage.h - vireo-manage's internal interface: the command table, option parsing, messages and lookups its command files share. */
#ifndef VIREO_MANAGE_H
#define VIREO_MANAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "vireo/machine.h"
#include "vireo/rt.h"
#include "vireo/settings.h"

/*
 * Exit codes: 0 done, 1 the command line was wrong (nothing was touched), 2 the operation failed
 * (the message names the object and the reason).  Internally, functions return one of these, with
 * 0 also meaning "carry on", and MG_EXIT_HELP when --help was printed (main turns it into 0).
 */
#define MG_EXIT_USAGE 1
#define MG_EXIT_FAILED 2
#define MG_EXIT_HELP (-1)

struct mg_cmd {
    const char *name;
    const char *synopsis; /* the argument part of the usage line(s), several lines allowed */
    const char *help;     /* what it does and the options, each line ending in '\n' */
    int (*run)(int argc, char **argv); /* argv[0] is the command name */
};

/* The command being run (messages, --help). */
extern const struct mg_cmd *g_mg_cmd;

/* The commands, one table per file. */
extern const struct mg_cmd g_mg_vm_cmds[];
extern const size_t g_mg_vm_cmd_count;
extern const struct mg_cmd g_mg_modify_cmds[];
extern const size_t g_mg_modify_cmd_count;
extern const struct mg_cmd g_mg_info_cmds[];
extern const size_t g_mg_info_cmd_count;
extern const struct mg_cmd g_mg_storage_cmds[];
extern const size_t g_mg_storage_cmd_count;
extern const struct mg_cmd g_mg_media_cmds[];
extern const size_t g_mg_media_cmd_count;
extern const struct mg_cmd g_mg_control_cmds[];
extern const size_t g_mg_control_cmd_count;
extern const struct mg_cmd g_mg_snapshot_cmds[];
extern const size_t g_mg_snapshot_cmd_count;
extern const struct mg_cmd g_mg_clone_cmds[];
extern const size_t g_mg_clone_cmd_count;

/* ---- Messages --------------------------------------------------------------------- */

/* "vireo-manage: error: ...; see 'vireo-manage CMD --help'" on stderr; returns MG_EXIT_USAGE. */
int mg_usage(const char *fmt, ...) RT_PRINTF(1, 2);
/* "vireo-manage: error: ..." on stderr; returns MG_EXIT_FAILED. */
int mg_fail(const char *fmt, ...) RT_PRINTF(1, 2);
/* The library's message when it gave one (it names the object), else "<what>: <status text>"; returns
 * MG_EXIT_FAILED. */
int mg_fail_err(int rc, const struct cfg_error *err, const char *fmt, ...) RT_PRINTF(3, 4);
/* "vireo-manage: warning: ..." on stderr. */
void mg_warn(const char *fmt, ...) RT_PRINTF(1, 2);
/* Prints the running command's usage and help on stdout; returns MG_EXIT_HELP. */
int mg_help(void);

/* ---- Option parsing --------------------------------------------------------------------- */

/*
 * Long options only ("--name VALUE" or "--name=VALUE"); "--" ends the options; --help and -h anywhere
 * print the command's help.  An option whose name ends in '#' is indexed: "--nic#" matches --nic1 ..
 * --nicN with N from 1 to max_index.  An option may take a second value when its first is one of
 * second_after (--uartmode1 file PATH, --natpf1 delete NAME).  Every option may be given once (per
 * index) unless repeat is set: giving one twice is a usage error, since which one should win is a
 * guess.
 */
struct mg_opt {
    const char *name;  /* without "--" */
    int id;
    bool takes_value;
    unsigned max_index; /* indexed options */
    const char *const *second_after;
    bool repeat;
};

struct mg_arg {
    int id;
    unsigned index;      /* indexed options: 1..max_index; 0 otherwise */
    const char *spelled; /* as the user wrote it, "--nic1" (for messages) */
    const char *value;   /* NULL for flags */
    const char *value2;  /* the second value, or NULL */
    bool spelled_alloc;  /* spelled was cut out of "--name=value" */
};

struct mg_args {
    char **pos;          /* positional arguments */
    int pos_count;
    struct mg_arg *opts; /* options in command-line order */
    int opt_count;
};

/* Parses argv[first..argc); 0, MG_EXIT_USAGE (message printed) or MG_EXIT_HELP (help printed). */
int mg_args_parse(int argc, char **argv, int first, const struct mg_opt *table, struct mg_args *out);
void mg_args_free(struct mg_args *a);
/* Checks the count of positional arguments against [min, max] (usage error naming what is missing). */
int mg_args_want(const struct mg_args *a, int min, int max, const char *what);
/* The last value of a plain option, or NULL when not given. */
const char *mg_args_value(const struct mg_args *a, int id);
bool mg_args_has(const struct mg_args *a, int id);

/* ---- Values ------------------------------------------------------------------------------ */

/* on|off (also yes|no, true|false, 1|0). */
int mg_parse_onoff(const char *opt, const char *s, bool *out);
/* A number in [min, max] (decimal or 0x hex). */
int mg_parse_uint(const char *opt, const char *s, uint64_t min, uint64_t max, uint64_t *out);
/* A size in MiB: a plain number is MiB (as VBoxManage), or a size with K/M/G/T; must be whole MiB. */
int mg_parse_mib(const char *opt, const char *s, uint64_t min_mib, uint64_t max_mib, uint64_t *out_mib);
/* A size in bytes (plain number or with a suffix), 1 .. max. */
int mg_parse_bytes(const char *opt, const char *s, uint64_t max, uint64_t *out);
/* Rejects control characters and invalid UTF-8 in text the settings store (names, descriptions). */
int mg_check_text(const char *opt, const char *s, bool allow_newlines);

/* A machine name for option opt (usage error saying what is wrong with it). */
int mg_check_vm_name(const char *opt, const char *name);
/* An OS type id known to the presets; *canonical gets the preset's spelling (malloc'ed). */
int mg_ostype_check(const char *opt, const char *id, char **canonical);

/* ---- Output ------------------------------------------------------------------------------ */

/* key="value" with ", \ and control characters escaped (machine-readable output). */
void mg_print_kv(const char *key, const char *value);
/* "2024-05-01T12:00:00.000Z" from wall-clock nanoseconds. */
void mg_format_time(uint64_t ns, char *out, size_t len);
/* "1.5 GiB" style. */
void mg_format_size(uint64_t bytes, char *out, size_t len);

/* showvminfo's printers (info.c), shared with list --long and snapshot showvminfo. */
void mg_vm_print(struct cfg_machine *m, const char *settings_path, bool mr);
void mg_hw_print(const struct cfg_hardware *hw, bool mr);
void mg_snapshots_print(struct cfg_machine *m, bool mr);
/* A NIC's attachment as modifyvm spells it ("none" when disabled, "null", "nat", ..., "intnet"). */
const char *mg_nic_mode_name(const struct cfg_nic *nic);
/* A serial backend as --uartmode spells it ("disconnected", "file,PATH", "server,PATH", "tcpserver,PORT"). */
void mg_uart_mode_format(const char *backend, char *out, size_t len);

/* ---- Lookups ------------------------------------------------------------------------------ */

/* A registered VM by name or UUID: its settings path (malloc'ed) and settings.  Prints the failure
 * ("VM 'x' is not registered") and returns MG_EXIT_FAILED. */
int mg_vm_find(const char *name_or_uuid, char **settings_path, struct cfg_machine **m);
/* The machine's live state: asks the running VM's control socket, else the recorded state. */
const char *mg_vm_state_name(const struct cfg_machine *m, const char *settings_path);
/* Whether a registered medium sits on this one (a snapshot's frozen image, a linked clone's base): such an
 * image must not be written, resized or attached. */
bool mg_medium_has_children(const struct rt_uuid *uuid);
/* Absolute form of a path given on the command line (malloc'ed). */
char *mg_abs_path(const char *path);

/* Progress on stderr for long operations, when stderr is a terminal. */
blk_progress_fn *mg_progress_fn(void);

#endif
