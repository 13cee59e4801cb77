/* aio.c - the block I/O worker pool: requests run on worker threads, flushes wait for the writes before them. */
#include <stdlib.h>
#include <string.h>

#include "block-internal.h"

#define LOG_COMPONENT "block"

/*
 * One FIFO queue, threads workers.  A worker takes the first request in the queue
 * that may start now:
 *
 * - a FLUSH of image I may start once no write-type request (WRITE, DISCARD,
 *   WRITE_ZEROES) of I submitted before it is queued or running;
 * - a write-type request of I does not overtake a FLUSH of I queued before it.
 *
 * The second rule means every running write-type request of I was submitted
 * before any queued flush of I, so the first rule needs only a count of running
 * write-type requests per image (found by scanning the workers' slots) and no
 * sequence numbers.  Reads, and requests of other images, run freely in parallel.
 * A worker's slot is cleared only after the request's done() returned, so a
 * flush's done() always runs after the done() of every write it covers.
 *
 * The oldest queued request can always start once the running ones finish, so
 * the queue never stalls.
 */

#define AIO_MAX_THREADS 64
/* Images a scan of the queue tracks at once; a longer scan waits (only a long queue hits this). */
#define AIO_SCAN_IMAGES 32

struct aio_worker {
    struct blk_aio *aio;
    struct rt_thread *thread;
    /* What it runs now (img NULL when idle): compared only, never dereferenced. */
    const struct blk_image *img;
    enum blk_op op;
};

struct blk_aio {
    struct rt_mutex lock;
    struct rt_cond work; /* queue changed or a request finished */
    struct blk_request *head, *tail;
    bool stopping;
    unsigned threads;
    struct aio_worker workers[AIO_MAX_THREADS];
};

static bool aio_is_write(enum blk_op op)
{
    return op == BLK_OP_WRITE || op == BLK_OP_DISCARD || op == BLK_OP_WRITE_ZEROES;
}

static bool aio_writes_running(const struct blk_aio *aio, const struct blk_image *img)
{
    for (unsigned i = 0; i < aio->threads; i++) {
        if (aio->workers[i].img == img && aio_is_write(aio->workers[i].op))
            return true;
    }
    return false;
}

struct aio_seen {
    const struct blk_image *img;
    bool write; /* a write-type request of img is queued ahead */
    bool flush; /* a flush of img is queued ahead */
};

/* Unlinks and returns the first request that may start now, or NULL.  Called with aio->lock held. */
static struct blk_request *aio_take(struct blk_aio *aio)
{
    struct aio_seen seen[AIO_SCAN_IMAGES];
    unsigned nseen = 0;
    struct blk_request *prev = NULL;
    for (struct blk_request *req = aio->head; req; prev = req, req = req->next_) {
        struct aio_seen *s = NULL;
        for (unsigned i = 0; i < nseen; i++) {
            if (seen[i].img == req->img) {
                s = &seen[i];
                break;
            }
        }
        bool ok;
        if (req->op == BLK_OP_FLUSH)
            ok = !(s && s->write) && !aio_writes_running(aio, req->img);
        else if (aio_is_write(req->op))
            ok = !(s && s->flush);
        else
            ok = true;
        if (ok) {
            if (prev)
                prev->next_ = req->next_;
            else
                aio->head = req->next_;
            if (aio->tail == req)
                aio->tail = prev;
            req->next_ = NULL;
            return req;
        }
        if (!s) {
            if (nseen == AIO_SCAN_IMAGES)
                return NULL;
            s = &seen[nseen++];
            s->img = req->img;
            s->write = s->flush = false;
        }
        if (req->op == BLK_OP_FLUSH)
            s->flush = true;
        else if (aio_is_write(req->op))
            s->write = true;
    }
    return NULL;
}

static int aio_run(struct blk_request *req)
{
    switch (req->op) {
    case BLK_OP_READ:
        return blk_readv(req->img, req->offset_bytes, req->iov, req->iovcnt);
    case BLK_OP_WRITE:
        return blk_writev(req->img, req->offset_bytes, req->iov, req->iovcnt);
    case BLK_OP_FLUSH:
        return blk_flush(req->img);
    case BLK_OP_DISCARD:
        return blk_discard(req->img, req->offset_bytes, req->len_bytes);
    case BLK_OP_WRITE_ZEROES:
        return blk_write_zeroes(req->img, req->offset_bytes, req->len_bytes);
    }
    return VERR_INVALID_PARAMETER;
}

static void *aio_worker_main(void *arg)
{
    struct aio_worker *w = arg;
    struct blk_aio *aio = w->aio;
    rt_mutex_lock(&aio->lock);
    for (;;) {
        struct blk_request *req = aio_take(aio);
        if (!req) {
            if (aio->stopping && !aio->head)
                break;
            rt_cond_wait(&aio->work, &aio->lock);
            continue;
        }
        w->img = req->img;
        w->op = req->op;
        /* One wake-up per submit: pass it on when more is queued than this worker took. */
        if (aio->head)
            rt_cond_signal(&aio->work);
        rt_mutex_unlock(&aio->lock);

        int rc = aio_run(req);
        req->done(req, rc); /* req belongs to the submitter again from here on */

        rt_mutex_lock(&aio->lock);
        w->img = NULL;
        /* A flush may have been waiting for this request. */
        rt_cond_broadcast(&aio->work);
    }
    rt_mutex_unlock(&aio->lock);
    return NULL;
}

int blk_aio_create(unsigned threads, struct blk_aio **out)
{
    if (!out)
        return VERR_INVALID_PARAMETER;
    *out = NULL;
    if (threads < 1 || threads > AIO_MAX_THREADS)
        return VERR_OUT_OF_RANGE;
    struct blk_aio *aio = calloc(1, sizeof(*aio));
    if (!aio)
        return VERR_NO_MEMORY;
    int rc = rt_mutex_init(&aio->lock);
    if (rc < 0) {
        free(aio);
        return rc;
    }
    rc = rt_cond_init(&aio->work);
    if (rc < 0) {
        rt_mutex_destroy(&aio->lock);
        free(aio);
        return rc;
    }
    for (unsigned i = 0; i < threads; i++) {
        aio->workers[i].aio = aio;
        rc = rt_thread_create(&aio->workers[i].thread, "blk-aio", aio_worker_main, &aio->workers[i]);
        if (rc < 0) {
            LOG_ERR("cannot start I/O worker %u: %s", i, rt_err_str(rc));
            aio->threads = i;
            blk_aio_destroy(aio);
            return rc;
        }
        /* Counted as it starts: aio_writes_running scans only started workers. */
        rt_mutex_lock(&aio->lock);
        aio->threads = i + 1;
        rt_mutex_unlock(&aio->lock);
    }
    *out = aio;
    return 0;
}

void blk_aio_destroy(struct blk_aio *aio)
{
    if (!aio)
        return;
    rt_mutex_lock(&aio->lock);
    aio->stopping = true;
    rt_cond_broadcast(&aio->work);
    rt_mutex_unlock(&aio->lock);
    for (unsigned i = 0; i < aio->threads; i++)
        rt_thread_join(aio->workers[i].thread, NULL);
    rt_cond_destroy(&aio->work);
    rt_mutex_destroy(&aio->lock);
    free(aio);
}

int blk_aio_submit(struct blk_aio *aio, struct blk_request *req)
{
    if (!aio || !req || !req->img || !req->done)
        return VERR_INVALID_PARAMETER;
    if ((unsigned)req->op > BLK_OP_WRITE_ZEROES)
        return VERR_INVALID_PARAMETER;
    if ((req->op == BLK_OP_READ || req->op == BLK_OP_WRITE) && (req->iovcnt < 0 || (req->iovcnt && !req->iov)))
        return VERR_INVALID_PARAMETER;
    rt_mutex_lock(&aio->lock);
    if (aio->stopping) {
        rt_mutex_unlock(&aio->lock);
        return VERR_INVALID_STATE;
    }
    req->next_ = NULL;
    if (aio->tail)
        aio->tail->next_ = req;
    else
        aio->head = req;
    aio->tail = req;
    rt_cond_signal(&aio->work);
    rt_mutex_unlock(&aio->lock);
    return 0;
}
