/* remote.h - the remote display servers of vireo-vm (VNC): what the process calls to start and stop them, and their option parsing. */
#ifndef VIREO_REMOTE_H
#define VIREO_REMOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vireo/vm.h"

/* The VNC protocol's standard port; display number N is VNC_BASE_PORT + N. */
#define VNC_BASE_PORT 5900u
/* With port 0, ports VNC_BASE_PORT .. VNC_BASE_PORT + VNC_AUTO_PORTS - 1 are tried in turn. */
#define VNC_AUTO_PORTS 100u
/* VNC authentication (RFB 6.2.2) encrypts a challenge with the first 8 bytes of the password only. */
#define VNC_PASSWORD_MAX 8u

struct vnc_options {
    char address[64];     /* numeric IPv4 or IPv6 listen address; "" means 127.0.0.1 */
    unsigned port;        /* TCP port; 0: the first free one from VNC_BASE_PORT */
    char *password;       /* malloc'ed, NULL: no password (then no_auth must be set) */
    bool no_auth;         /* run without a password: only when explicitly asked for */
    char keymap[16];      /* keyboard layout of the clients' keysyms ("us", "de", ...); "" means us */
    unsigned handshake_ms; /* a client that has not finished the handshake by then is dropped; 0: 30 s */
};

struct vnc_server; /* opaque */

/*
 * Parses a listen specification: "PORT", ":N" (display N: port 5900 + N), "ADDR:PORT", "ADDR::N",
 * "[IPV6]:PORT".  PORT 0 means the first free port from 5900.  On error fills err (naming the spec and
 * the reason) and changes nothing.
 */
int vnc_listen_parse(const char *spec, struct vnc_options *opts, char *err, size_t err_len);
/*
 * Reads the password from the first line of a file (the rest is ignored; a trailing CR/LF is not
 * part of it).  Refuses a missing, unreadable, empty or oversized file and a password with control
 * characters, with a message in err that never contains the password.  Replaces opts->password.
 */
int vnc_password_file_read(const char *path, struct vnc_options *opts, char *err, size_t err_len);
/* Copies a password given from the settings (replaces opts->password); NULL or "" clears it. */
int vnc_password_set(struct vnc_options *opts, const char *password);
/* Checks a keyboard layout name ("us", "de", ... letters, at most 15); on error fills err. */
int vnc_keymap_set(struct vnc_options *opts, const char *layout, char *err, size_t err_len);
/* Wipes and frees the password. */
void vnc_options_clear(struct vnc_options *opts);

/*
 * Starts serving the VM's primary display (dpy_find(vm, 0)) over VNC: listens, attaches a display
 * listener and runs the server on its own thread.  Refuses (with a logged reason) a machine without
 * a graphics device, options with neither a password nor no_auth, and an address or port it cannot
 * listen on.  Call before vm_destroy; the options are copied.
 */
int vnc_server_start(struct vm *vm, const struct vnc_options *opts, struct vnc_server **out);
/* Disconnects every client (releasing the keys they held), stops the thread, frees.  NULL is fine. */
void vnc_server_stop(struct vnc_server *srv);
/* The TCP port and address actually listened on (after port 0 picked one). */
unsigned vnc_server_port(const struct vnc_server *srv);
const char *vnc_server_address(const struct vnc_server *srv);

#endif
