/* Event loop implementation. Descriptors live in a flat watch list copied into the pollfd
 * array before each poll (a few on the main loop, one per connection on the HTTP client's);
 * timers are a list kept sorted by deadline: the XMPP tick, the reconnect, ping and
 * IQ-expiry timers, and one retry timer per subscription that waits to retry (an insertion walks
 * the list, so very many failing subscriptions make arming a retry cost more). */
#include "loop.h"

#include "log.h"

#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

struct watch {
    int fd;
    short events;
    gw_loop_fd_cb cb;
    void *arg;
};

struct timer {
    uint64_t id;
    int64_t deadline;
    gw_loop_timer_cb cb;
    void *arg;
    struct timer *next;
};

struct round_hook {
    gw_loop_round_cb cb;
    void *arg;
};

struct gw_loop {
    int wake_fd;
    atomic_int stop;
    struct watch *watches;
    int nwatches, capwatches;
    struct pollfd *pfds;
    int capfds;
    struct timer *timers;
    uint64_t next_timer_id;
    struct round_hook hooks[8];
    int nhooks;
    gw_loop_timer_cb wake_cb;
    void *wake_arg;
    int self_woken; /* woken by its own thread: no write to wake_fd, no read back */
};

/* The loop this thread is running, if any. */
static _Thread_local struct gw_loop *running;

int64_t gw_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct gw_loop *gw_loop_new(void)
{
    struct gw_loop *loop = calloc(1, sizeof(*loop));
    if (loop == NULL)
        return NULL;
    loop->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (loop->wake_fd < 0) {
        free(loop);
        return NULL;
    }
    loop->next_timer_id = 1;
    return loop;
}

void gw_loop_free(struct gw_loop *loop)
{
    if (loop == NULL)
        return;
    while (loop->timers) {
        struct timer *t = loop->timers;
        loop->timers = t->next;
        free(t);
    }
    close(loop->wake_fd);
    free(loop->watches);
    free(loop->pfds);
    free(loop);
}

int gw_loop_watch(struct gw_loop *loop, int fd, short events, gw_loop_fd_cb cb, void *arg)
{
    for (int i = 0; i < loop->nwatches; i++) {
        if (loop->watches[i].fd != fd)
            continue;
        if (events == 0) {
            loop->watches[i] = loop->watches[--loop->nwatches];
        } else {
            loop->watches[i].events = events;
            loop->watches[i].cb = cb;
            loop->watches[i].arg = arg;
        }
        return 0;
    }
    if (events == 0)
        return 0;
    if (loop->nwatches == loop->capwatches) {
        int cap = loop->capwatches ? loop->capwatches * 2 : 16;
        struct watch *w = realloc(loop->watches, (size_t)cap * sizeof(*w));
        if (w == NULL)
            return -1;
        loop->watches = w;
        loop->capwatches = cap;
    }
    loop->watches[loop->nwatches++] = (struct watch){fd, events, cb, arg};
    return 0;
}

uint64_t gw_loop_timer_add(struct gw_loop *loop, int64_t delay_ms, gw_loop_timer_cb cb, void *arg)
{
    struct timer *t = malloc(sizeof(*t));
    if (t == NULL)
        return 0;
    t->id = loop->next_timer_id++;
    t->deadline = gw_now_ms() + (delay_ms < 0 ? 0 : delay_ms);
    t->cb = cb;
    t->arg = arg;
    struct timer **pp = &loop->timers;
    while (*pp && (*pp)->deadline <= t->deadline)
        pp = &(*pp)->next;
    t->next = *pp;
    *pp = t;
    return t->id;
}

void gw_loop_timer_cancel(struct gw_loop *loop, uint64_t id)
{
    for (struct timer **pp = &loop->timers; *pp; pp = &(*pp)->next) {
        if ((*pp)->id == id) {
            struct timer *t = *pp;
            *pp = t->next;
            free(t);
            return;
        }
    }
}

int gw_loop_on_round(struct gw_loop *loop, gw_loop_round_cb cb, void *arg)
{
    if (loop->nhooks == (int)(sizeof(loop->hooks) / sizeof(loop->hooks[0])))
        return -1;
    loop->hooks[loop->nhooks++] = (struct round_hook){cb, arg};
    return 0;
}

void gw_loop_on_wake(struct gw_loop *loop, gw_loop_timer_cb cb, void *arg)
{
    loop->wake_cb = cb;
    loop->wake_arg = arg;
}

void gw_loop_wake(struct gw_loop *loop)
{
    /* Work posted from the loop's own callbacks (a request handed to the mailbox) needs no
     * descriptor: the next poll just does not wait. Two system calls fewer per wake-up. */
    if (running == loop) {
        loop->self_woken = 1;
        return;
    }
    uint64_t one = 1;
    ssize_t n = write(loop->wake_fd, &one, sizeof(one));
    (void)n; /* EAGAIN means the counter is already non-zero: the loop will wake anyway */
}

void gw_loop_stop(struct gw_loop *loop)
{
    atomic_store(&loop->stop, 1);
    gw_loop_wake(loop);
}

void gw_loop_rearm(struct gw_loop *loop)
{
    atomic_store(&loop->stop, 0);
}

static void run_timers(struct gw_loop *loop)
{
    int64_t now = gw_now_ms();
    /* Timers armed by callbacks in this pass wait for the next round, so a zero-delay timer
     * that re-arms itself cannot starve the descriptors. */
    uint64_t last_id = loop->next_timer_id;
    while (loop->timers && loop->timers->deadline <= now && loop->timers->id < last_id) {
        struct timer *t = loop->timers;
        loop->timers = t->next;
        gw_loop_timer_cb cb = t->cb;
        void *arg = t->arg;
        free(t);
        cb(loop, arg);
    }
}

int gw_loop_run(struct gw_loop *loop)
{
    /* The first poll does not block: work queued before the loop started (a connection being
     * opened, say) runs at once. */
    int busy = 1, rc = 0;
    struct gw_loop *outer = running;
    running = loop;
    while (!atomic_load(&loop->stop)) {
        int n = loop->nwatches + 1;
        if (n > loop->capfds) {
            struct pollfd *p = realloc(loop->pfds, (size_t)n * 2 * sizeof(*p));
            if (p == NULL) {
                rc = -1;
                break;
            }
            loop->pfds = p;
            loop->capfds = n * 2;
        }
        loop->pfds[0] = (struct pollfd){loop->wake_fd, POLLIN, 0};
        for (int i = 0; i < loop->nwatches; i++)
            loop->pfds[i + 1] = (struct pollfd){loop->watches[i].fd, loop->watches[i].events, 0};

        int timeout = -1;
        if (busy || loop->self_woken) {
            timeout = 0;
        } else if (loop->timers) {
            int64_t d = loop->timers->deadline - gw_now_ms();
            timeout = d < 0 ? 0 : (d > 60000 ? 60000 : (int)d);
        }
        int ready = poll(loop->pfds, (nfds_t)n, timeout);
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            gw_error("poll: %s", strerror(errno));
            rc = -1;
            break;
        }
        int woken = loop->self_woken;
        if (ready > 0 && (loop->pfds[0].revents & POLLIN)) {
            uint64_t v;
            ssize_t r = read(loop->wake_fd, &v, sizeof(v));
            (void)r;
            woken = 1;
        }
        if (woken) {
            loop->self_woken = 0;
            if (loop->wake_cb)
                loop->wake_cb(loop, loop->wake_arg);
        }
        if (ready > 0) {
            /* A callback may change the watch list; dispatch from the snapshot in pfds and
             * look each fd up again so a removed watch is not called. */
            for (int i = 1; i < n; i++) {
                if (loop->pfds[i].revents == 0)
                    continue;
                for (int j = 0; j < loop->nwatches; j++) {
                    if (loop->watches[j].fd == loop->pfds[i].fd) {
                        loop->watches[j].cb(loop, loop->pfds[i].fd, loop->pfds[i].revents,
                                            loop->watches[j].arg);
                        break;
                    }
                }
            }
        }
        run_timers(loop);
        busy = 0;
        for (int i = 0; i < loop->nhooks; i++)
            busy |= loop->hooks[i].cb(loop, loop->hooks[i].arg);
    }
    running = outer;
    return rc;
}
