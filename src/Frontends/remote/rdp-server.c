/* rdp-server.c - the RDP server of vireo-vm: the listening socket, the client threads, and the copy of the screen they send from. */
/*
 * Design: FreeRDP 2's server library does the protocol (TLS, the connection sequence, PDU
 * parsing); Vireo supplies the screen and takes the input.  One thread accepts connections
 * and reaps finished clients; every client gets its own thread that runs its FreeRDP peer
 * (rdp-peer.c), so a slow or hostile client stalls nobody but itself.
 *
 * The screen reaches the clients through one display listener, attached while at least one
 * client is connected (a VM nobody watches renders nothing).  Its callbacks run on the VM's
 * event loop with the VM lock held; they only copy the changed rectangle into the server's
 * own copy of the screen and widen each client's dirty area, then wake the client threads.
 * A client thread converts and sends what changed at its own pace, so a burst of guest
 * drawing becomes one update per client, never a queue.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <winpr/ssl.h>
#include <winpr/wlog.h>

#include "rdp-int.h"

#define LOG_COMPONENT "rdp"

/* ---- The display listener ----------------------------------------------------------------------- */

void rdp_peer_mark_all_locked(struct rdp_peer *peer)
{
    peer->dirty = true;
    peer->dx0 = peer->dy0 = 0;
    peer->dx1 = peer->srv->fb_width;
    peer->dy1 = peer->srv->fb_height;
    SetEvent(peer->wake);
}

static void rdp_dpy_resize(void *opaque, const struct dpy_surface *surface)
{
    struct rdp_server *srv = opaque;
    size_t bytes = (size_t)surface->width * surface->height * 4;
    uint8_t *fb = bytes ? calloc(1, bytes) : NULL;
    if (bytes && !fb) {
        LOG_ERR("no memory for a %ux%u copy of the screen; clients keep the old picture", surface->width,
                surface->height);
        return;
    }
    rt_mutex_lock(&srv->fb_lock);
    free(srv->fb);
    srv->fb = fb;
    srv->fb_width = fb ? surface->width : 0;
    srv->fb_height = fb ? surface->height : 0;
    for (struct rdp_peer *p = srv->peers; p; p = p->next)
        rdp_peer_mark_all_locked(p);
    rt_mutex_unlock(&srv->fb_lock);
}

static void rdp_dpy_update(void *opaque, const struct dpy_surface *surface, uint32_t x, uint32_t y, uint32_t w,
                           uint32_t h)
{
    struct rdp_server *srv = opaque;
    rt_mutex_lock(&srv->fb_lock);
    /* Only what both the surface and our copy have (a resize we could not follow leaves them apart). */
    if (srv->fb && surface->width == srv->fb_width && surface->height == srv->fb_height && x < srv->fb_width &&
        y < srv->fb_height) {
        w = RT_MIN(w, srv->fb_width - x);
        h = RT_MIN(h, srv->fb_height - y);
        for (uint32_t row = 0; row < h; row++)
            memcpy(srv->fb + ((size_t)(y + row) * srv->fb_width + x) * 4,
                   surface->pixels + (size_t)(y + row) * surface->stride_bytes + (size_t)x * 4, (size_t)w * 4);
        srv->fb_frames++;
        for (struct rdp_peer *p = srv->peers; p; p = p->next) {
            if (!p->dirty) {
                p->dirty = true;
                p->dx0 = x, p->dy0 = y, p->dx1 = x + w, p->dy1 = y + h;
            } else {
                p->dx0 = RT_MIN(p->dx0, x), p->dy0 = RT_MIN(p->dy0, y);
                p->dx1 = RT_MAX(p->dx1, x + w), p->dy1 = RT_MAX(p->dy1, y + h);
            }
            SetEvent(p->wake);
        }
        rt_cond_broadcast(&srv->fb_cond);
    }
    rt_mutex_unlock(&srv->fb_lock);
}

static const struct dpy_listener_ops rdp_dpy_ops = {
    .resize = rdp_dpy_resize,
    .update = rdp_dpy_update,
};

void rdp_display_acquire(struct rdp_server *srv)
{
    if (!srv->dpy)
        return;
    rt_mutex_lock(&srv->listener_lock);
    if (srv->dl_users++ == 0) {
        int rc = dpy_listener_add(srv->dpy, &rdp_dpy_ops, srv, RDP_REFRESH_NS, &srv->dl);
        if (rc) {
            LOG_ERR("cannot watch the screen '%s': %s; clients see a black screen", dpy_name(srv->dpy),
                    rt_err_str(rc));
            srv->dl = NULL;
        }
    }
    rt_mutex_unlock(&srv->listener_lock);
}

void rdp_display_release(struct rdp_server *srv)
{
    if (!srv->dpy)
        return;
    rt_mutex_lock(&srv->listener_lock);
    if (srv->dl_users && --srv->dl_users == 0) {
        dpy_listener_remove(srv->dl);
        srv->dl = NULL;
        /* The next client starts from a fresh copy (the guest may draw meanwhile). */
        rt_mutex_lock(&srv->fb_lock);
        free(srv->fb);
        srv->fb = NULL;
        srv->fb_width = srv->fb_height = 0;
        rt_mutex_unlock(&srv->fb_lock);
    }
    rt_mutex_unlock(&srv->listener_lock);
}

/* ---- Accepting clients -------------------------------------------------------------------------- */

static void rdp_peer_free(struct rdp_peer *peer)
{
    if (peer->wake)
        CloseHandle(peer->wake);
    free(peer->buf);
    free(peer->tile);
    free(peer);
}

/*
 * FreeRDP's writes wait for the socket for as long as it takes: a client that stops reading in the
 * middle of an update would hold its thread forever.  Shutting the socket down makes the write fail.
 * Every client when stopping; otherwise those stuck in one update for RDP_STALL_TIMEOUT_NS.
 */
static void rdp_unblock_writers(struct rdp_server *srv, bool all)
{
    rt_mutex_lock(&srv->fb_lock);
    /*
     * Read the clock under the lock: a client thread that held it while converting a frame stamps
     * send_started_ns after an earlier reading of now would have been taken, and the unsigned
     * difference would then look like a stall of centuries.
     */
    uint64_t now = rt_time_mono_ns();
    for (struct rdp_peer *p = srv->peers; p; p = p->next) {
        if (p->sock_closed || p->sockfd < 0)
            continue;
        bool stalled = p->send_started_ns && now > p->send_started_ns &&
                       now - p->send_started_ns > RDP_STALL_TIMEOUT_NS;
        if (all || stalled) {
            if (!all)
                LOG_WARN("RDP client from %s has not taken an update for 60 seconds; disconnecting it", p->host);
            shutdown(p->sockfd, SHUT_RDWR);
            p->sock_closed = true;
        }
    }
    rt_mutex_unlock(&srv->fb_lock);
}

/* Joins and frees the client threads that ended (all of them when everything stops). */
static void rdp_reap(struct rdp_server *srv, bool all)
{
    for (;;) {
        struct rdp_peer *done = NULL;
        rt_mutex_lock(&srv->fb_lock);
        for (struct rdp_peer **pp = &srv->peers; *pp; pp = &(*pp)->next) {
            if ((*pp)->finished || all) {
                done = *pp;
                *pp = done->next;
                srv->peer_count--;
                break;
            }
        }
        rt_mutex_unlock(&srv->fb_lock);
        if (!done)
            return;
        SetEvent(done->wake);
        rt_thread_join(done->thread, NULL);
        rdp_peer_free(done);
    }
}

static BOOL rdp_peer_accepted(freerdp_listener *listener, freerdp_peer *client)
{
    struct rdp_server *srv = listener->info;
    rt_mutex_lock(&srv->fb_lock);
    unsigned count = srv->peer_count;
    rt_mutex_unlock(&srv->fb_lock);
    if (count >= RDP_MAX_CLIENTS) {
        LOG_WARN("turned away a client from %s: already %u clients", client->hostname, count);
        return FALSE;
    }
    struct rdp_peer *peer = calloc(1, sizeof(*peer));
    /* Manual reset: WinPR 2 has no auto-reset events; the peer thread resets it before it looks. */
    if (!peer || !(peer->wake = CreateEvent(NULL, TRUE, FALSE, NULL))) {
        LOG_ERR("no memory for a new RDP client");
        free(peer);
        return FALSE;
    }
    peer->srv = srv;
    peer->client = client;
    peer->sockfd = client->sockfd;
    peer->start_ns = rt_time_mono_ns();
    rt_strlcpy(peer->host, client->hostname[0] ? client->hostname : "?", sizeof(peer->host));
    rt_mutex_lock(&srv->fb_lock);
    int rc = rt_thread_create(&peer->thread, "rdp-client", rdp_peer_main, peer);
    if (!rc) {
        peer->next = srv->peers;
        srv->peers = peer;
        srv->peer_count++;
    }
    rt_mutex_unlock(&srv->fb_lock);
    if (rc) {
        LOG_ERR("cannot start a thread for the RDP client from %s: %s", peer->host, rt_err_str(rc));
        rdp_peer_free(peer);
        return FALSE; /* the listener closes the connection and frees the peer */
    }
    return TRUE;
}

static void *rdp_accept_main(void *arg)
{
    struct rdp_server *srv = arg;
    for (;;) {
        HANDLE handles[32];
        DWORD count = srv->listener->GetEventHandles(srv->listener, handles, 31);
        if (count == 0) {
            LOG_ERR("the RDP listener has no socket to wait on; no new clients are accepted");
            break;
        }
        handles[count++] = srv->stop_event;
        /* Wakes at least every second to join the threads of clients that left. */
        DWORD status = WaitForMultipleObjects(count, handles, FALSE, 1000);
        if (WaitForSingleObject(srv->stop_event, 0) == WAIT_OBJECT_0)
            break;
        if (status == WAIT_FAILED) {
            LOG_ERR("waiting for RDP clients failed: %s", strerror(errno));
            break;
        }
        /* A failed accept (out of descriptors) is retried at the next wake-up rather than ending the server. */
        if (!srv->listener->CheckFileDescriptor(srv->listener))
            rt_sleep_ns(100 * RT_NS_PER_MS);
        rdp_unblock_writers(srv, false);
        rdp_reap(srv, false);
    }
    return NULL;
}

/* ---- Start and stop ----------------------------------------------------------------------------- */

static int rdp_socket_open(const char *address, unsigned port, int *out_fd)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE };
    struct addrinfo *ai = NULL;
    char port_str[16];
    snprintf(port_str, sizeof(port_str), "%u", port);
    int gai = getaddrinfo(address, port_str, &hints, &ai);
    if (gai) {
        LOG_ERR("RDP listen address '%s' is not a numeric IPv4 or IPv6 address: %s", address, gai_strerror(gai));
        return VERR_INVALID_PARAMETER;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1, err = 0;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 16) != 0)
        err = errno;
    freeaddrinfo(ai);
    if (err) {
        if (fd >= 0)
            close(fd);
        return err == EADDRINUSE ? VERR_BUSY : err == EACCES ? VERR_ACCESS_DENIED : VERR_IO;
    }
    *out_fd = fd;
    return 0;
}

static void rdp_server_free(struct rdp_server *srv)
{
    if (srv->listener) {
        srv->listener->Close(srv->listener);
        freerdp_listener_free(srv->listener);
    } else if (srv->listen_fd >= 0) {
        close(srv->listen_fd);
    }
    if (srv->stop_event)
        CloseHandle(srv->stop_event);
    rt_cond_destroy(&srv->fb_cond);
    rt_mutex_destroy(&srv->fb_lock);
    rt_mutex_destroy(&srv->listener_lock);
    free(srv->fb);
    free(srv->address);
    free(srv->user);
    if (srv->password)
        memset(srv->password, 0, strlen(srv->password));
    free(srv->password);
    free(srv->crt_path);
    free(srv->key_path);
    rdp_server_temp_dir_cleanup(srv->temp_dir);
    free(srv);
}

static void rdp_library_init_once(void)
{
    winpr_InitializeSSL(WINPR_SSL_INIT_DEFAULT);
    /* FreeRDP's own log goes to stdout; keep it to errors unless WLOG_LEVEL asks for more. */
    if (!getenv("WLOG_LEVEL"))
        WLog_SetLogLevel(WLog_GetRoot(), WLOG_ERROR);
}

static void rdp_library_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, rdp_library_init_once);
}

int rdp_server_start(struct vm *vm, const struct rdp_server_config *cfg, struct rdp_server **out)
{
    *out = NULL;
    if (cfg->password && (!cfg->user || !*cfg->user))
        return VERR_INVALID_PARAMETER;
    rdp_library_init();
    struct rdp_server *srv = calloc(1, sizeof(*srv));
    if (!srv)
        return VERR_NO_MEMORY;
    srv->vm = vm;
    srv->listen_fd = -1;
    rt_mutex_init(&srv->listener_lock);
    rt_mutex_init(&srv->fb_lock);
    rt_cond_init(&srv->fb_cond);
    srv->address = strdup(cfg->address ? cfg->address : RDP_DEFAULT_ADDRESS);
    srv->user = cfg->user ? strdup(cfg->user) : NULL;
    srv->password = cfg->password ? strdup(cfg->password) : NULL;
    int rc = 0;
    if (!srv->address || (cfg->user && !srv->user) || (cfg->password && !srv->password) ||
        !(srv->stop_event = CreateEvent(NULL, TRUE, FALSE, NULL)))
        rc = VERR_NO_MEMORY;
    if (!rc)
        rc = rdp_cert_ensure(cfg->cert_dir, cfg->cert_name, &srv->crt_path, &srv->key_path);
    if (!rc) {
        if (cfg->port) {
            rc = rdp_socket_open(srv->address, cfg->port, &srv->listen_fd);
            srv->port = cfg->port;
        } else {
            /* The first free port from 3389, as VirtualBox's VRDE picks one. */
            rc = VERR_BUSY;
            for (unsigned p = RDP_DEFAULT_PORT; p < RDP_DEFAULT_PORT + 100 && rc == VERR_BUSY; p++) {
                rc = rdp_socket_open(srv->address, p, &srv->listen_fd);
                srv->port = p;
            }
        }
        if (rc == VERR_BUSY && cfg->port)
            LOG_ERR("cannot listen for RDP on %s port %u: the port is in use", srv->address, cfg->port);
        else if (rc == VERR_BUSY)
            LOG_ERR("cannot listen for RDP on %s: ports %u-%u are all in use", srv->address, RDP_DEFAULT_PORT,
                    RDP_DEFAULT_PORT + 99);
        else if (rc && rc != VERR_INVALID_PARAMETER)
            LOG_ERR("cannot listen for RDP on %s port %u: %s", srv->address, srv->port, rt_err_str(rc));
    }
    if (!rc) {
        srv->listener = freerdp_listener_new();
        if (!srv->listener) {
            rc = VERR_NO_MEMORY;
        } else {
            srv->listener->info = srv;
            srv->listener->PeerAccepted = rdp_peer_accepted;
            if (!srv->listener->OpenFromSocket(srv->listener, srv->listen_fd)) {
                LOG_ERR("FreeRDP cannot listen on the RDP socket");
                rc = VERR_IO;
            }
        }
    }
    if (!rc) {
        srv->dpy = dpy_find(vm, 0);
        rc = rt_thread_create(&srv->thread, "rdp-accept", rdp_accept_main, srv);
    }
    if (rc) {
        rdp_server_free(srv);
        return rc;
    }
    if (!srv->dpy)
        LOG_WARN("this machine has no display adapter, so RDP clients see a black screen (input still works)");
    if (!srv->password)
        LOG_WARN("RDP on %s port %u accepts every client: no password is set", srv->address, srv->port);
    LOG_INFO("RDP server listening on %s port %u (TLS, certificate %s%s%s)", srv->address, srv->port, srv->crt_path,
             srv->password ? ", user " : "", srv->password ? srv->user : "");
    *out = srv;
    return 0;
}

void rdp_server_stop(struct rdp_server *srv)
{
    if (!srv)
        return;
    rt_mutex_lock(&srv->fb_lock);
    srv->stopping = true;
    rt_mutex_unlock(&srv->fb_lock);
    SetEvent(srv->stop_event);
    rt_thread_join(srv->thread, NULL);
    rdp_unblock_writers(srv, true);
    rdp_reap(srv, true);
    LOG_INFO("RDP server on port %u stopped", srv->port);
    rdp_server_free(srv);
}

void rdp_server_own_temp_dir(struct rdp_server *srv, char *dir)
{
    srv->temp_dir = dir;
}

unsigned rdp_server_port(const struct rdp_server *srv)
{
    return srv->port;
}

unsigned rdp_server_client_count(struct rdp_server *srv)
{
    rt_mutex_lock(&srv->fb_lock);
    unsigned n = srv->peer_count;
    rt_mutex_unlock(&srv->fb_lock);
    return n;
}
