/* Event stream queue shared by the loop thread (producer) and one HTTP thread (consumer). */
#include "stream.h"

#include <stdlib.h>
#include <string.h>

struct gw_stream *gw_stream_new(size_t max, gw_stream_wake_fn wake, void *conn,
                                const char *last_event_id)
{
    struct gw_stream *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return NULL;
    pthread_mutex_init(&st->lock, NULL);
    atomic_init(&st->refs, 1);
    st->max = max;
    st->wake = wake;
    st->conn = conn;
    if (last_event_id != NULL && (st->last_event_id = strdup(last_event_id)) == NULL) {
        free(st);
        return NULL;
    }
    return st;
}

void gw_stream_ref(struct gw_stream *st)
{
    atomic_fetch_add(&st->refs, 1);
}

void gw_stream_unref(struct gw_stream *st)
{
    if (st == NULL || atomic_fetch_sub(&st->refs, 1) != 1)
        return;
    pthread_mutex_destroy(&st->lock);
    free(st->buf);
    free(st->last_event_id);
    free(st);
}

static void wake_locked(struct gw_stream *st)
{
    if (st->waiting && !st->gone) {
        st->waiting = 0;
        st->wake(st->conn);
    }
}

int gw_stream_push(struct gw_stream *st, const char *text, size_t len)
{
    int rc = 0;
    pthread_mutex_lock(&st->lock);
    if (st->gone || st->closed) {
        rc = -1;
        goto out;
    }
    if (st->off > 0 && st->off == st->len)
        st->off = st->len = 0;
    if (st->len - st->off + len > st->max) {
        /* Too far behind: end the stream; the client reconnects with Last-Event-ID. */
        st->closed = 1;
        wake_locked(st);
        rc = -1;
        goto out;
    }
    if (st->len + len > st->cap) {
        if (st->off > 0) {
            memmove(st->buf, st->buf + st->off, st->len - st->off);
            st->len -= st->off;
            st->off = 0;
        }
        size_t cap = st->cap ? st->cap : 1024;
        while (cap < st->len + len)
            cap *= 2;
        char *b = realloc(st->buf, cap);
        if (b == NULL) {
            st->closed = 1; /* as if cut off: the client reconnects with Last-Event-ID */
            wake_locked(st);
            rc = -1;
            goto out;
        }
        st->buf = b;
        st->cap = cap;
    }
    memcpy(st->buf + st->len, text, len);
    st->len += len;
    wake_locked(st);
out:
    pthread_mutex_unlock(&st->lock);
    return rc;
}

void gw_stream_close(struct gw_stream *st)
{
    pthread_mutex_lock(&st->lock);
    st->closed = 1;
    wake_locked(st);
    pthread_mutex_unlock(&st->lock);
}

int gw_stream_ended(struct gw_stream *st)
{
    pthread_mutex_lock(&st->lock);
    int gone = st->gone || st->closed;
    pthread_mutex_unlock(&st->lock);
    return gone;
}

long gw_stream_read(struct gw_stream *st, char *out, size_t max, void (*suspend_fn)(void *conn))
{
    long n;
    pthread_mutex_lock(&st->lock);
    size_t avail = st->len - st->off;
    if (avail > 0) {
        n = (long)(avail < max ? avail : max);
        memcpy(out, st->buf + st->off, (size_t)n);
        st->off += (size_t)n;
    } else if (st->closed) {
        n = -1;
    } else {
        st->waiting = 1;
        suspend_fn(st->conn);
        n = 0;
    }
    pthread_mutex_unlock(&st->lock);
    return n;
}

void gw_stream_end(struct gw_stream *st)
{
    pthread_mutex_lock(&st->lock);
    st->gone = 1;
    st->waiting = 0;
    pthread_mutex_unlock(&st->lock);
}
