/* An event stream (Server-Sent Events) to one HTTP client: a byte queue filled by the loop thread
 * and drained by the HTTP thread that serves the response. The HTTP side suspends its connection
 * when the queue is empty; a push resumes it. Reference counted: the loop's registry holds one
 * reference, the HTTP response the other. */
#ifndef GW_STREAM_H
#define GW_STREAM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

/* Resumes the suspended HTTP connection (thread-safe, called with the stream lock held). */
typedef void (*gw_stream_wake_fn)(void *conn);

struct gw_stream {
    pthread_mutex_t lock;
    atomic_int refs;
    char *buf;
    size_t len, off, cap, max;
    int closed;  /* no more data will come: end the response once drained */
    int waiting; /* the HTTP side is suspended until data comes */
    int gone;    /* the HTTP side ended (the client went away) */
    gw_stream_wake_fn wake;
    void *conn;
    char *last_event_id;    /* Last-Event-ID of the request, or NULL */
    struct gw_stream *next; /* in its node's list (loop thread) */
};

/* A stream with one reference; max bounds the queue (a client that falls further behind is
 * cut off). NULL when out of memory. */
struct gw_stream *gw_stream_new(size_t max, gw_stream_wake_fn wake, void *conn,
                                const char *last_event_id);
void gw_stream_ref(struct gw_stream *st);
/* Drops a reference; the last one frees the stream. */
void gw_stream_unref(struct gw_stream *st);

/* Loop thread: queues text. Returns 0, or -1 when the stream is gone or was cut off. */
int gw_stream_push(struct gw_stream *st, const char *text, size_t len);
/* Loop thread: no more data; the response ends once the queue is drained. */
void gw_stream_close(struct gw_stream *st);
/* 1 when the HTTP side has ended or the stream was closed. */
int gw_stream_ended(struct gw_stream *st);

/* HTTP thread: copies up to max queued bytes into out and returns their number; returns 0 with
 * *wait set when nothing is queued (the caller suspends; suspend_fn runs under the lock so no
 * push can slip in between), or -1 when the stream is closed and drained. */
long gw_stream_read(struct gw_stream *st, char *out, size_t max, void (*suspend_fn)(void *conn));
/* HTTP thread: the response is over. */
void gw_stream_end(struct gw_stream *st);

#endif
