/* The store interface: picks the backend from the URL and calls through its table, and the
 * store's own thread (see gw_store_thread_start). */
#include "loop.h"
#include "status.h"
#include "store_int.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

struct job {
    gw_store_job_fn job;
    gw_store_done_fn done;
    void *arg;
    struct job *next;
};

/* Jobs wait in `todo` (the thread takes them in order) and, run, in `done` until the loop's
 * turn. A call from the loop holds the store: it waits until the thread is idle with nothing
 * queued, and the thread starts nothing while the loop holds it (holds > 0). */
struct gw_store_thread {
    pthread_mutex_t lock;
    pthread_cond_t work; /* the thread: a job, a release, or stop */
    pthread_cond_t idle; /* the loop: the thread finished what was queued */
    struct job *todo, *todo_tail, *done, *done_tail;
    int busy, holds, stopping, tx_hold;
    pthread_t thread;
    int running;
    int64_t hold_since; /* monotonic us when the loop's outermost hold began */
    int done_fd;        /* eventfd: jobs are done (watched by the loop) */
    struct gw_loop *loop;
};

static int on_thread(const struct gw_store_thread *t)
{
    return t->running && pthread_equal(pthread_self(), t->thread);
}

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void hold(struct gw_store *st)
{
    struct gw_store_thread *t = st->thr;
    if (t == NULL || on_thread(t))
        return;
    int64_t since = t->holds == 0 ? mono_us() : 0; /* holds changes on this thread only */
    pthread_mutex_lock(&t->lock);
    while (t->holds == 0 && (t->busy || t->todo != NULL))
        pthread_cond_wait(&t->idle, &t->lock);
    if (t->holds++ == 0)
        t->hold_since = since;
    pthread_mutex_unlock(&t->lock);
}

static void release(struct gw_store *st)
{
    struct gw_store_thread *t = st->thr;
    if (t == NULL || on_thread(t))
        return;
    pthread_mutex_lock(&t->lock);
    int last = --t->holds == 0;
    if (last && t->todo != NULL)
        pthread_cond_signal(&t->work);
    pthread_mutex_unlock(&t->lock);
    if (last)
        atomic_fetch_add_explicit(&gw_status.store_loop_us,
                                  (unsigned long long)(mono_us() - t->hold_since),
                                  memory_order_relaxed);
}

#define GUARDED(st, type, expr)                                                                    \
    do {                                                                                           \
        hold(st);                                                                                  \
        type rc_ = (expr);                                                                         \
        release(st);                                                                               \
        return rc_;                                                                                \
    } while (0)

static void *store_main(void *arg)
{
    pthread_setname_np(pthread_self(), "pubsubgw-store"); /* top -H, perf */
    struct gw_store_thread *t = arg;
    pthread_mutex_lock(&t->lock);
    for (;;) {
        while ((t->todo == NULL || t->holds > 0) && !t->stopping)
            pthread_cond_wait(&t->work, &t->lock);
        if (t->todo == NULL || t->holds > 0)
            break; /* stopping: what is left runs on the caller of gw_store_thread_stop */
        struct job *j = t->todo;
        t->todo = j->next;
        if (t->todo == NULL)
            t->todo_tail = NULL;
        t->busy = 1;
        pthread_mutex_unlock(&t->lock);
        atomic_fetch_sub_explicit(&gw_status.store_queue, 1, memory_order_relaxed);
        j->job(j->arg);
        atomic_fetch_add_explicit(&gw_status.store_jobs, 1, memory_order_relaxed);
        pthread_mutex_lock(&t->lock);
        t->busy = 0;
        j->next = NULL;
        int first = t->done == NULL;
        if (t->done_tail)
            t->done_tail->next = j;
        else
            t->done = j;
        t->done_tail = j;
        if (t->todo == NULL)
            pthread_cond_broadcast(&t->idle);
        if (first) {
            uint64_t one = 1;
            ssize_t w = write(t->done_fd, &one, sizeof(one));
            (void)w; /* the counter only overflows after 2^64 writes */
        }
    }
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

/* Runs the done callbacks of finished jobs, in order (loop thread). One at a time off the
 * shared list: a callback that settles the store (and so runs the callbacks after its own)
 * keeps the order. */
static int run_done(struct gw_store_thread *t)
{
    for (int ran = 0;; ran++) {
        pthread_mutex_lock(&t->lock);
        struct job *j = t->done;
        if (j != NULL) {
            t->done = j->next;
            if (t->done == NULL)
                t->done_tail = NULL;
        }
        pthread_mutex_unlock(&t->lock);
        if (j == NULL)
            return ran;
        if (j->done)
            j->done(j->arg);
        free(j);
    }
}

static void on_done(struct gw_loop *loop, int fd, int revents, void *arg)
{
    (void)loop;
    (void)revents;
    uint64_t n;
    while (read(fd, &n, sizeof(n)) < 0 && errno == EINTR)
        ;
    run_done(arg);
}

int gw_store_thread_start(struct gw_store *st, struct gw_loop *loop)
{
    struct gw_store_thread *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return -1;
    t->done_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (t->done_fd < 0) {
        free(t);
        return -1;
    }
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->work, NULL);
    pthread_cond_init(&t->idle, NULL);
    t->loop = loop;
    if (gw_loop_watch(loop, t->done_fd, POLLIN, on_done, t) != 0 ||
        pthread_create(&t->thread, NULL, store_main, t) != 0) {
        gw_loop_watch(loop, t->done_fd, 0, NULL, NULL);
        close(t->done_fd);
        pthread_mutex_destroy(&t->lock);
        pthread_cond_destroy(&t->work);
        pthread_cond_destroy(&t->idle);
        free(t);
        return -1;
    }
    t->running = 1;
    st->thr = t;
    return 0;
}

void gw_store_submit(struct gw_store *st, gw_store_job_fn job, gw_store_done_fn done, void *arg)
{
    struct gw_store_thread *t = st->thr;
    struct job *j = t ? malloc(sizeof(*j)) : NULL;
    if (j == NULL) { /* no thread (or no memory for the job): here and now, in order */
        hold(st);
        job(arg);
        release(st);
        if (done)
            done(arg);
        return;
    }
    j->job = job;
    j->done = done;
    j->arg = arg;
    j->next = NULL;
    atomic_fetch_add_explicit(&gw_status.store_queue, 1, memory_order_relaxed);
    pthread_mutex_lock(&t->lock);
    if (t->todo_tail)
        t->todo_tail->next = j;
    else
        t->todo = j;
    t->todo_tail = j;
    if (t->holds == 0)
        pthread_cond_signal(&t->work);
    pthread_mutex_unlock(&t->lock);
}

int gw_store_settle(struct gw_store *st)
{
    struct gw_store_thread *t = st->thr;
    if (t == NULL)
        return 0;
    hold(st); /* the thread has finished everything queued */
    release(st);
    return run_done(t);
}

void gw_store_thread_stop(struct gw_store *st)
{
    struct gw_store_thread *t = st->thr;
    if (t == NULL)
        return;
    pthread_mutex_lock(&t->lock);
    t->stopping = 1;
    pthread_cond_signal(&t->work);
    pthread_mutex_unlock(&t->lock);
    pthread_join(t->thread, NULL);
    t->running = 0;
    st->thr = NULL;
    /* Jobs still queued (the thread stops only between jobs) run here, then every done. */
    for (struct job *j = t->todo; j != NULL; j = j->next) {
        atomic_fetch_sub_explicit(&gw_status.store_queue, 1, memory_order_relaxed);
        j->job(j->arg);
    }
    if (t->todo != NULL) {
        if (t->done_tail)
            t->done_tail->next = t->todo;
        else
            t->done = t->todo;
        t->done_tail = t->todo_tail;
    }
    t->todo = t->todo_tail = NULL;
    run_done(t);
    gw_loop_watch(t->loop, t->done_fd, 0, NULL, NULL);
    close(t->done_fd);
    pthread_mutex_destroy(&t->lock);
    pthread_cond_destroy(&t->work);
    pthread_cond_destroy(&t->idle);
    free(t);
}

static int is_pg(const char *url)
{
    return strncmp(url, "postgresql://", 13) == 0 || strncmp(url, "postgres://", 11) == 0;
}

int gw_store_url_check(const char *url, char *err, size_t errlen)
{
    if (url != NULL && strncmp(url, "sqlite:", 7) == 0 && url[7] != '\0')
        return 0;
    if (url != NULL && is_pg(url))
        return 0;
    snprintf(err, errlen, "expected sqlite:PATH or postgresql://…");
    return -1;
}

struct gw_store *gw_store_open(const char *url, char *err, size_t errlen)
{
    if (gw_store_url_check(url, err, errlen) != 0)
        return NULL;
    if (is_pg(url))
        return gw_store_pg_open(url, err, errlen);
    return gw_store_sqlite_open(url + 7, err, errlen);
}

void gw_store_close(struct gw_store *st)
{
    if (st == NULL)
        return;
    gw_store_thread_stop(st);
    st->ops->close(st);
}

const char *gw_store_kind(const struct gw_store *st)
{
    return st->ops->kind;
}

int gw_store_known_up(const struct gw_store *st)
{
    return atomic_load(&((struct gw_store *)st)->up_known);
}

int gw_store_up(struct gw_store *st)
{
    GUARDED(st, int, st->ops->up(st));
}

/* The loop holds the store from a transaction's begin to its end. */
static void tx_release(struct gw_store *st)
{
    if (st->thr != NULL && !on_thread(st->thr) && st->thr->tx_hold) {
        st->thr->tx_hold = 0;
        release(st);
    }
}

int gw_store_begin(struct gw_store *st)
{
    hold(st);
    int rc = st->ops->begin(st);
    if (rc == 0 && st->thr != NULL && !on_thread(st->thr) && !st->thr->tx_hold)
        st->thr->tx_hold = 1; /* kept until the commit or the rollback */
    else
        release(st);
    return rc;
}

int gw_store_commit(struct gw_store *st)
{
    hold(st);
    int rc = st->ops->commit(st);
    release(st);
    tx_release(st);
    return rc;
}

void gw_store_rollback(struct gw_store *st)
{
    hold(st);
    st->ops->rollback(st);
    release(st);
    tx_release(st);
}

int gw_store_sub_insert(struct gw_store *st, const struct gw_store_sub *s)
{
    GUARDED(st, int, st->ops->sub_insert(st, s));
}

int gw_store_sub_renew(struct gw_store *st, const char *id, const char *secret, const char *websub)
{
    GUARDED(st, int, st->ops->sub_renew(st, id, secret, websub));
}

int gw_store_sub_delete(struct gw_store *st, const char *id)
{
    GUARDED(st, int, st->ops->sub_delete(st, id));
}

int gw_store_sub_each(struct gw_store *st, void (*cb)(const struct gw_store_sub *s, void *arg),
                      void *arg)
{
    GUARDED(st, int, st->ops->sub_each(st, cb, arg));
}

void gw_store_sub_clear(struct gw_store_sub *sub)
{
    free(sub->id);
    free(sub->service);
    free(sub->node);
    free(sub->callback);
    free(sub->secret);
    free(sub->websub);
    free(sub->options);
    memset(sub, 0, sizeof(*sub));
}

int64_t gw_store_event_add(struct gw_store *st, const char *event_id, const char *service,
                           const char *node, const char *body, int64_t created_ms)
{
    GUARDED(st, int64_t, st->ops->event_add(st, event_id, service, node, body, created_ms));
}

int gw_store_delivery_add(struct gw_store *st, const char *sub_id, int64_t event, int64_t next_at,
                          const char *dead_reason)
{
    GUARDED(st, int, st->ops->delivery_add(st, sub_id, event, next_at, dead_reason));
}

int gw_store_pending_each(struct gw_store *st, void (*cb)(const char *sub_id, int64_t n, void *arg),
                          void *arg)
{
    GUARDED(st, int, st->ops->count_each(st, 0, NULL, cb, arg));
}

int gw_store_dead_count_each(struct gw_store *st, const char *sub_id,
                             void (*cb)(const char *sub_id, int64_t n, void *arg), void *arg)
{
    GUARDED(st, int, st->ops->count_each(st, 1, sub_id, cb, arg));
}

int gw_store_delivery_head(struct gw_store *st, const char *sub_id, int64_t after,
                           struct gw_store_delivery *d)
{
    int n = gw_store_delivery_next(st, sub_id, after, 1, d);
    return n < 0 ? -1 : n;
}

int gw_store_delivery_next(struct gw_store *st, const char *sub_id, int64_t after, int limit,
                           struct gw_store_delivery *out)
{
    GUARDED(st, int, limit > 0 ? st->ops->delivery_next(st, sub_id, after, limit, out) : 0);
}

void gw_store_delivery_clear(struct gw_store_delivery *d)
{
    free(d->event_id);
    free(d->body);
    free(d->last_error);
    memset(d, 0, sizeof(*d));
}

int gw_store_delivery_done(struct gw_store *st, int64_t seq, int64_t event)
{
    GUARDED(st, int, st->ops->delivery_done(st, seq, event));
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int done_many(struct gw_store *st, const int64_t *seqs, const int64_t *events, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (st->ops->delivery_remove(st, seqs[i]) != 0)
            return -1;
    int64_t *ev = malloc(n * sizeof(*ev) + 1);
    if (ev == NULL) { /* each on its own then */
        for (size_t i = 0; i < n; i++)
            if (st->ops->event_gc(st, events[i]) != 0)
                return -1;
        return 0;
    }
    memcpy(ev, events, n * sizeof(*ev));
    qsort(ev, n, sizeof(*ev), cmp_i64);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        if (i == 0 || ev[i] != ev[i - 1])
            rc = st->ops->event_gc(st, ev[i]);
    free(ev);
    return rc;
}

int gw_store_delivery_failed(struct gw_store *st, int64_t seq, int attempts, int64_t next_at,
                             const char *error, int dead)
{
    GUARDED(st, int, st->ops->delivery_failed(st, seq, attempts, next_at, error, dead));
}

int gw_store_delivery_done_many(struct gw_store *st, const int64_t *seqs, const int64_t *events,
                                size_t n)
{
    GUARDED(st, int, done_many(st, seqs, events, n));
}

int gw_store_dead_each(struct gw_store *st, const char *sub_id,
                       void (*cb)(const struct gw_store_delivery *d, void *arg), void *arg)
{
    GUARDED(st, int, st->ops->dead_each(st, sub_id, cb, arg));
}

int gw_store_dead_prune_age(struct gw_store *st, int64_t before_ms, int limit)
{
    GUARDED(st, int, st->ops->dead_prune_age(st, before_ms, limit));
}

int gw_store_dead_prune_count(struct gw_store *st, const char *sub_id, int keep, int limit)
{
    GUARDED(st, int, st->ops->dead_prune_count(st, sub_id, keep, limit));
}

int gw_store_dead_retry(struct gw_store *st, const char *sub_id, int64_t seq, int64_t now_ms)
{
    GUARDED(st, int, st->ops->dead_retry(st, sub_id, seq, now_ms));
}

int64_t gw_store_oldest_pending_ms(struct gw_store *st)
{
    GUARDED(st, int64_t, st->ops->oldest_pending_ms(st));
}

int gw_store_attempt_add(struct gw_store *st, const struct gw_store_attempt *a)
{
    GUARDED(st, int, st->ops->attempt_add(st, a));
}

int gw_store_attempts_each(struct gw_store *st, const char *sub_id, int64_t before, int limit,
                           void (*cb)(const struct gw_store_attempt *a, void *arg), void *arg)
{
    GUARDED(st, int, st->ops->attempts_each(st, sub_id, before, limit, cb, arg));
}

int gw_store_attempts_prune_count(struct gw_store *st, const char *sub_id, int keep)
{
    GUARDED(st, int, st->ops->attempts_prune_count(st, sub_id, keep));
}

int gw_store_attempts_prune_age(struct gw_store *st, int64_t before_ms)
{
    GUARDED(st, int, st->ops->attempts_prune_age(st, before_ms));
}

int gw_store_seen_add(struct gw_store *st, const char *service, const char *node, const char *item)
{
    GUARDED(st, int, st->ops->seen_add(st, service, node, item));
}

int gw_store_seen_has(struct gw_store *st, const char *service, const char *node, const char *item)
{
    GUARDED(st, int, st->ops->seen_has(st, service, node, item));
}

int gw_store_seen_prune(struct gw_store *st, const char *service, const char *node, int keep)
{
    GUARDED(st, int, st->ops->seen_prune(st, service, node, keep));
}

int gw_store_shared(const struct gw_store *st)
{
    return st->ops->notify_fd != NULL;
}

/* The control connection is the loop's alone: these calls do not wait for the thread. */
int gw_store_notify_fd(struct gw_store *st)
{
    return st->ops->notify_fd ? st->ops->notify_fd(st) : -1;
}

int gw_store_notify_read(struct gw_store *st, void (*cb)(char kind, const char *id, void *arg),
                         void *arg)
{
    return st->ops->notify_read ? st->ops->notify_read(st, cb, arg) : -1;
}

unsigned gw_store_epoch(struct gw_store *st)
{
    return st->ops->epoch ? st->ops->epoch(st) : 0;
}

int gw_store_lock_try(struct gw_store *st, uint32_t key)
{
    return st->ops->lock_try ? st->ops->lock_try(st, key) : -1;
}

int gw_store_lock_release(struct gw_store *st, uint32_t key)
{
    return st->ops->lock_release ? st->ops->lock_release(st, key) : -1;
}

int gw_store_locks_free(struct gw_store *st, int n, int *out)
{
    return st->ops->locks_free ? st->ops->locks_free(st, n, out) : -1;
}

int gw_store_replicas(struct gw_store *st)
{
    return st->ops->replicas ? st->ops->replicas(st) : -1;
}

int64_t gw_store_event_add_claimed(struct gw_store *st, const char *claim, const char *event_id,
                                   const char *service, const char *node, const char *body,
                                   int64_t created_ms)
{
    if (claim == NULL || st->ops->event_add_claimed == NULL)
        return gw_store_event_add(st, event_id, service, node, body, created_ms);
    GUARDED(st, int64_t,
            st->ops->event_add_claimed(st, claim, event_id, service, node, body, created_ms));
}

int gw_store_claims_prune(struct gw_store *st, int64_t before_ms)
{
    GUARDED(st, int, st->ops->claims_prune ? st->ops->claims_prune(st, before_ms) : -1);
}

int gw_store_sub_get(struct gw_store *st, const char *id, struct gw_store_sub *s)
{
    GUARDED(st, int, st->ops->sub_get ? st->ops->sub_get(st, id, s) : -1);
}

int gw_store_notify(struct gw_store *st, char kind, const char *id)
{
    GUARDED(st, int, st->ops->notify ? st->ops->notify(st, kind, id) : 0);
}

struct notice {
    struct gw_store *st;
    char kind;
    char id[];
};

static void notice_job(void *arg)
{
    struct notice *n = arg;
    gw_store_notify(n->st, n->kind, n->id);
}

void gw_store_notify_later(struct gw_store *st, char kind, const char *id)
{
    size_t len = strlen(id);
    struct notice *n = malloc(sizeof(*n) + len + 1);
    if (n == NULL)
        return;
    n->st = st;
    n->kind = kind;
    memcpy(n->id, id, len + 1);
    gw_store_submit(st, notice_job, free, n);
}

int gw_store_connecting(struct gw_store *st)
{
    GUARDED(st, int, st->ops->connecting ? st->ops->connecting(st) : 0);
}

int gw_store_feed_put(struct gw_store *st, const struct gw_store_feed *f)
{
    GUARDED(st, int, st->ops->feed_put(st, f));
}

int gw_store_feed_delete(struct gw_store *st, const char *id)
{
    GUARDED(st, int, st->ops->feed_delete(st, id));
}

int gw_store_feed_each(struct gw_store *st, void (*cb)(const struct gw_store_feed *f, void *arg),
                       void *arg)
{
    GUARDED(st, int, st->ops->feed_each(st, cb, arg));
}
