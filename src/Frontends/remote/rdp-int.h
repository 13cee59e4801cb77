/* rdp-int.h - what the RDP server's files share: the server, its copy of the screen, and one connected client. */
#ifndef VIREO_REMOTE_RDP_INT_H
#define VIREO_REMOTE_RDP_INT_H

#include <stdbool.h>
#include <stdint.h>

/* WinPR's headers spell noreturn in a way GCC's C11 mode warns about. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wattributes"
#include <freerdp/freerdp.h>
#include <freerdp/listener.h>
#include <freerdp/peer.h>
#include <winpr/synch.h>
#pragma GCC diagnostic pop

#include "vireo/display.h"
#include "vireo/rt.h"
#include "rdp.h"

/* More clients than this are turned away (each has a thread and a TLS session). */
#define RDP_MAX_CLIENTS 16
/* A client that has not logged in and been shown the screen by then is disconnected. */
#define RDP_LOGIN_TIMEOUT_NS (30 * RT_NS_PER_SEC)
/* A client whose output has not drained (or one update not gone out) for this long is disconnected. */
#define RDP_STALL_TIMEOUT_NS (60 * RT_NS_PER_SEC)
/* How often the server asks the display for updates. */
#define RDP_REFRESH_NS (33 * RT_NS_PER_MS)

struct rdp_peer;

/*
 * Locks, in the only order they are ever nested:
 *  listener_lock (peer threads adding and removing the display listener)
 *  -> the VM lock (inside dpy_listener_add/remove, and around every display callback)
 *  -> fb_lock (the screen copy and the peers' dirty state).
 * Nothing calls into the VM (input, display) while holding fb_lock.
 */
struct rdp_server {
    struct vm *vm;
    char *address;
    unsigned port;
    char *user, *password;      /* password NULL: no authentication */
    char *crt_path, *key_path;
    char *temp_dir;             /* the certificate's temporary folder, removed at stop (NULL: kept) */
    int listen_fd;              /* owned by the FreeRDP listener once opened */
    freerdp_listener *listener;
    HANDLE stop_event;
    struct rt_thread *thread;   /* accepts clients, reaps finished ones */

    struct rt_mutex listener_lock;
    struct display *dpy;        /* NULL: the machine has no graphics device */
    struct dpy_listener *dl;
    unsigned dl_users;

    struct rt_mutex fb_lock;
    struct rt_cond fb_cond;     /* the first frame arrived */
    uint32_t fb_width, fb_height; /* 0x0 until the display reported a size */
    uint8_t *fb;                /* XRGB8888, fb_width * 4 bytes per row */
    uint64_t fb_frames;         /* updates received (tests and logs) */
    struct rdp_peer *peers;     /* every client thread not yet joined */
    unsigned peer_count;
    bool stopping;
};

/* One client (its thread owns the FreeRDP peer; the fields under "fb_lock" are shared). */
struct rdp_peer {
    struct rdp_server *srv;
    freerdp_peer *client;
    struct rt_thread *thread;
    HANDLE wake;                /* set when there is something to send, or to stop */
    struct rdp_peer *next;
    char host[64];

    /* fb_lock */
    int sockfd;                  /* the connection, for shutdown() by the server while the thread may block in a write */
    bool sock_closed;            /* set before the peer closes it */
    uint64_t send_started_ns;    /* 0: not sending */
    bool dirty;
    uint32_t dx0, dy0, dx1, dy1; /* the changed area since the last send, [x0, x1) x [y0, y1) */
    bool finished;               /* the thread is done; the accept thread joins and frees it */

    /* The peer thread only. */
    bool logged_in, refused, activated, output_suppressed;
    bool resize_unsupported_logged, pause_pending, input_drop_logged;
    uint32_t width, height;      /* the client's desktop */
    unsigned bpp;                /* bits per pixel sent: 32, 24, 16 or 15 */
    unsigned buttons;
    uint32_t frame_id;
    uint64_t start_ns;
    uint64_t blocked_since_ns;   /* 0: the output buffer drains */
    uint8_t *buf, *tile;
    size_t buf_size, tile_size;
};

/* rdp-server.c */
/* The display listener while at least one client is connected (peer thread, no lock held). */
void rdp_display_acquire(struct rdp_server *srv);
void rdp_display_release(struct rdp_server *srv);
/* Marks the whole screen as changed for this peer and wakes it (fb_lock held). */
void rdp_peer_mark_all_locked(struct rdp_peer *peer);

/* rdp-config.c */
/* Removes the temporary certificate folder and frees dir (NULL is fine). */
void rdp_server_temp_dir_cleanup(char *dir);
/* The server removes this temporary certificate folder when it stops. */
void rdp_server_own_temp_dir(struct rdp_server *srv, char *dir);

/* rdp-peer.c */
/* A new client's thread body (arg: struct rdp_peer). */
void *rdp_peer_main(void *arg);

#endif
