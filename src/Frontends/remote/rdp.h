/* rdp.h - the RDP server of vireo-vm (FreeRDP 2): what the per-VM process calls to serve a VM's screen and input to RDP clients. */
#ifndef VIREO_REMOTE_RDP_H
#define VIREO_REMOTE_RDP_H

#include <stdbool.h>
#include <stdint.h>

#include "vireo/settings.h"
#include "vireo/vm.h"

struct rdp_server; /* opaque */

#define RDP_DEFAULT_PORT 3389
#define RDP_DEFAULT_ADDRESS "127.0.0.1"
#define RDP_DEFAULT_USER "vireo"
/* The extra-data key that names the RDP user of a registered machine. */
#define RDP_EXTRA_USER "Vireo/RDPUser"
/* Longest user name and password accepted from the settings or a password file. */
#define RDP_MAX_CREDENTIAL 256

struct rdp_server_config {
    const char *address;   /* numeric IPv4 or IPv6 listen address; NULL: 127.0.0.1 */
    unsigned port;         /* 1-65535; 0: the first free port from 3389 */
    const char *user;      /* with password: the only credentials accepted */
    const char *password;  /* NULL: no authentication (any client is let in; logged as a warning) */
    const char *cert_dir;  /* holds rdp.crt and rdp.key (made with mode 0600 when missing) */
    const char *cert_name; /* the certificate's common name (the machine's name) */
};

/*
 * Listens on cfg->address:cfg->port and serves the VM's first screen (dpy_find(vm, 0)) and its
 * keyboard and pointer to every client that logs in (TLS security; the user name and password of
 * the client info PDU are checked before anything is shown).  Each client has its own thread; the
 * server adds a display listener while at least one client is connected.  Errors (address in use,
 * a bad address, an unreadable certificate) are logged and returned; nothing is left running.
 */
int rdp_server_start(struct vm *vm, const struct rdp_server_config *cfg, struct rdp_server **out);
/* Disconnects every client and closes the listener.  NULL is fine. */
void rdp_server_stop(struct rdp_server *srv);
/* The port the server listens on (the chosen one when cfg->port was 0). */
unsigned rdp_server_port(const struct rdp_server *srv);
/* Clients connected now (logged in or still connecting). */
unsigned rdp_server_client_count(struct rdp_server *srv);

/* "[ADDR:]PORT" or "[IPV6]:PORT" as given to --rdp; *address is malloc'ed (NULL when not given). */
int rdp_listen_parse(const char *spec, char **address, unsigned *port);
/* Reads a password file: its first line, without the line end; at most RDP_MAX_CREDENTIAL bytes, not empty. */
int rdp_password_file_read(const char *path, char **password);

/*
 * Makes sure dir/rdp.crt and dir/rdp.key exist and belong together: a self-signed RSA certificate
 * for common_name, created (mode 0600, written atomically) when either is missing.  *crt_path and
 * *key_path are malloc'ed.  A pair that does not load or match is reported, not replaced.
 */
int rdp_cert_ensure(const char *dir, const char *common_name, char **crt_path, char **key_path);

/* ---- vireo-vm's two ways to start it ---- */

/* The command-line options (vireo-vm --rdp ...). */
struct rdp_options {
    const char *listen;        /* --rdp [ADDR:]PORT; NULL: no RDP server */
    const char *user;          /* --rdp-user NAME (default "vireo") */
    const char *password_file; /* --rdp-password-file FILE; NULL: no authentication */
    const char *cert_dir;      /* --rdp-cert-dir DIR; NULL: a temporary folder removed at stop */
};
#define RDP_OPTIONS_HELP \
    "  --rdp [ADDR:]PORT      serve the screen, keyboard and mouse over RDP (TLS) on PORT, on 127.0.0.1\n" \
    "                         unless ADDR (numeric; [IPV6]:PORT) says otherwise\n" \
    "  --rdp-user NAME        the RDP user name (default vireo)\n" \
    "  --rdp-password-file FILE  the RDP password: the first line of FILE (without it any client gets in)\n" \
    "  --rdp-cert-dir DIR     where the RDP certificate rdp.crt and key rdp.key are kept or made (default:\n" \
    "                         a temporary folder for this run)\n"
/* Checks the options before the VM is built (a bad --rdp is a usage error naming the option). */
int rdp_options_check(const struct rdp_options *o, char *msg, size_t msg_size);
/* Starts the server as the options say (*out NULL when o->listen is NULL). */
int rdp_start_from_options(struct vm *vm, const char *vm_name, const struct rdp_options *o, struct rdp_server **out);
/*
 * Starts the server a registered machine's settings ask for (hw.remote.rdp_enabled; the port, listen
 * address, password; the user from extra data "Vireo/RDPUser", default "vireo"), with its certificate
 * in the machine folder.  *out NULL when RDP is off.
 */
int rdp_start_from_settings(struct vm *vm, const struct cfg_machine *m, const char *machine_folder,
                            struct rdp_server **out);

/* An RDP keyboard event (flags KBD_FLAGS_*, 8-bit scancode) as a PC keycode (input.h); 0: none. */
uint32_t rdp_scancode_to_keycode(uint16_t flags, uint16_t code);

#endif
