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
 *   screenshot                       body: a PNG of the screen
 *   keyboard-scancodes <hex bytes>   "1c 9c" (set 1 scancodes, as VBoxManage)
 *   keyboard-string <text>           typed with the US layout
 *   pointer <x> <y> <buttons>        absolute position, button mask
 *   medium <controller> <port> <device> <path|emptydrive>   DVD media change
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

#endif
