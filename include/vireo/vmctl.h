/* vmctl.h - the control socket of a running VM: its protocol and the client side that vireo-manage and the manager use. */
#ifndef VIREO_VMCTL_H
#define VIREO_VMCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vireo/rt.h"

/*
 * Each vireo-vm --startvm serves a Unix stream socket at vmctl_socket_path(uuid), mode 0600, in
 * a folder of mode 0700.  The protocol is versioned text, one request per line:
 *
 *   request:   "VCTL<version> <command>[ <argument>]\n"     (argument: the rest of the line;
 *               a backslash escapes itself and 'n' stands for a newline)
 *   response:  "OK <length>\n" followed by <length> bytes of body, or
 *              "ERR <code> <message>\n"  (code: a VERR_* value, message: one line for people)
 *
 * A server answers a request in a version it does not speak with ERR VERR_NOT_SUPPORTED naming the
 * versions it speaks.  Commands (version 1):
 *   version                          body: "1"
 *   state                            body: "running" | "paused" | ...
 *   pause | resume | reset | poweroff | acpipowerbutton
 *   savestate                        pauses, writes the saved state, records the machine saved, exits
 *                                    (the file: <snapshot folder>/<machine uuid>.sav)
 *   screenshot                       body: a PNG of the screen
 *   keyboard-scancodes <hex bytes>   "1c 9c" (set 1 scancodes, as VBoxManage)
 *   keyboard-string <text>           typed with the US layout
 *   pointer <x> <y> <buttons>        absolute position, button mask
 *   medium <controller> <port> <device> <path|emptydrive>   DVD media change (path: absolute, or a registered
 *                                    medium's UUID; the controller name may contain blanks)
 *   snapshot <name>\n<description>   takes an online snapshot; body: its UUID
 * Several requests may be sent on one connection; the server closes it after 'poweroff'/'savestate'.
 */

#define VMCTL_PROTOCOL_VERSION 1

/* $XDG_RUNTIME_DIR/vireo/<uuid>.sock, else /tmp/vireo-<uid>/<uuid>.sock (malloc'ed). */
char *vmctl_socket_path(const struct rt_uuid *uuid);

struct vmctl; /* opaque: a client connection */
/* VERR_NOT_FOUND when no VM serves the socket (not running). */
int vmctl_connect(const struct rt_uuid *uuid, struct vmctl **out);
int vmctl_connect_path(const char *socket_path, struct vmctl **out);
void vmctl_close(struct vmctl *c); /* NULL is fine */
/*
 * Sends one request and waits for the answer (at most timeout_ms; 0: no limit).  On OK returns 0 and the
 * body in *body and *len (malloc'ed, NUL-terminated beyond len; may be NULL when not wanted).  On ERR returns
 * the server's code with its message in errmsg.  Transport failures return VERR_IO/VERR_EOF/VERR_TIMEOUT.
 */
int vmctl_request(struct vmctl *c, const char *command, const char *argument, unsigned timeout_ms, void **body,
                  size_t *len, char errmsg[256]);

/*
 * Asks the running machine uuid to take an online snapshot (the 'snapshot' command: only its own process can
 * save its memory); waits up to 5 minutes.  On success *out (may be NULL) gets the new snapshot's UUID; an answer
 * that is not one fails with VERR_BAD_FORMAT.  On failure errmsg says why when it can (else "").
 */
#define VMCTL_SNAPSHOT_TIMEOUT_MS 300000
int vmctl_snapshot_take(const struct rt_uuid *uuid, const char *name, const char *description, struct rt_uuid *out,
                        char errmsg[256]);

/* One request on a connection of its own (connect, vmctl_request, close): what most callers want.  A machine
 * that does not serve its socket gives VERR_NOT_FOUND with errmsg saying so. */
int vmctl_call(const struct rt_uuid *uuid, const char *command, const char *argument, unsigned timeout_ms, void **body,
               size_t *len, char errmsg[256]);

/* ---- Protocol pieces shared by the client and the server ------------------------------- */

#define VMCTL_LINE_MAX (64u * 1024u)          /* longest request or response line, newline included */
#define VMCTL_BODY_MAX (64u * 1024u * 1024u)  /* largest response body a client accepts */
#define VMCTL_COMMAND_MAX 32                  /* longest command name */

/* An argument as it travels: a backslash doubled, a newline as backslash and n (malloc'ed; NULL: no memory). */
char *vmctl_escape(const char *s);
/* Undoes vmctl_escape in place; VERR_BAD_FORMAT for a backslash before anything but '\\' or 'n'. */
int vmctl_unescape(char *s);

struct vmctl_request {
    unsigned version;
    const char *command;   /* points into the parsed line */
    char *argument;        /* unescaped, in the line; NULL when the request has none */
};
/*
 * Parses one request line in place (len bytes, the newline already cut off; one trailing '\r' is
 * dropped).  VERR_BAD_FORMAT for garbage (NUL bytes, control characters, no "VCTL<n> " prefix, a bad
 * command name or escape) and VERR_NOT_SUPPORTED for another protocol version; errmsg says which.
 */
int vmctl_request_parse(char *line, size_t len, struct vmctl_request *out, char errmsg[256]);

/* ---- The server (vireo-vm; tests) ------------------------------------------------------- */

struct vmctl_server; /* opaque */
struct vmctl_reply {
    int status;     /* 0: "OK" with the body; otherwise "ERR status msg" */
    void *body;     /* malloc'ed or NULL; the server frees it */
    size_t len;
    char msg[256];  /* with an error: one line for people (line breaks become blanks) */
    bool close;     /* close the connection once the reply is out (poweroff, savestate) */
};
/* Called on the loop thread for each well-formed version-1 request; fills reply (zeroed beforehand). */
typedef void vmctl_handler_fn(void *opaque, const struct vmctl_request *req, struct vmctl_reply *reply);
/*
 * Listens at socket_path and serves it on loop: the folder is created with mode 0700 (an existing one
 * must be a real folder owned by this user; it is set to 0700), the socket gets mode 0600 and only
 * this user's processes are served.  A file already at socket_path must be a socket and is replaced:
 * the caller holds the machine's run lock, so it was left by a dead process.  Each connection's
 * requests are answered in order, one at a time; "version" is answered by the server itself.
 */
int vmctl_server_create(struct rt_evloop *loop, const char *socket_path, vmctl_handler_fn *fn, void *opaque,
                        struct vmctl_server **out);
/* Connections open now (tests). */
unsigned vmctl_server_client_count(const struct vmctl_server *s);
/* Sends what replies are still queued (waiting at most flush_ms), closes every connection and removes the
 * socket file.  On the loop's thread, or once the loop no longer runs.  NULL is fine. */
void vmctl_server_destroy(struct vmctl_server *s, unsigned flush_ms);

#endif
