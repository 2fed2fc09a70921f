/* The owner thread's event loop: poll() over registered descriptors, one-shot timers and a
 * wake-up eventfd that other threads may signal. Idle means blocked in poll with the timeout of
 * the nearest timer; there is no fixed polling interval. Only gw_loop_wake() and gw_loop_stop()
 * may be called from another thread. */
#ifndef GW_LOOP_H
#define GW_LOOP_H

#include <stdint.h>

struct gw_loop;

typedef void (*gw_loop_fd_cb)(struct gw_loop *loop, int fd, int revents, void *arg);
typedef void (*gw_loop_timer_cb)(struct gw_loop *loop, void *arg);
/* Called once per round after descriptors and timers ran; returns 1 when it wants the next
 * poll not to block (more work is ready), else 0. */
typedef int (*gw_loop_round_cb)(struct gw_loop *loop, void *arg);

/* Returns a new loop, or NULL; free with gw_loop_free(). */
struct gw_loop *gw_loop_new(void);
void gw_loop_free(struct gw_loop *loop);

/* Watches fd for the poll events given (POLLIN, POLLOUT); replaces an earlier watch of fd.
 * events == 0 removes the watch. Returns 0 or -1. */
int gw_loop_watch(struct gw_loop *loop, int fd, short events, gw_loop_fd_cb cb, void *arg);

/* Arms a one-shot timer after delay_ms; returns its id (> 0) or 0 on allocation failure. */
uint64_t gw_loop_timer_add(struct gw_loop *loop, int64_t delay_ms, gw_loop_timer_cb cb, void *arg);
/* Cancels a timer that has not fired; an unknown or fired id is ignored. */
void gw_loop_timer_cancel(struct gw_loop *loop, uint64_t id);

/* Adds a per-round callback (up to 8). Returns 0 or -1. */
int gw_loop_on_round(struct gw_loop *loop, gw_loop_round_cb cb, void *arg);

/* Sets the callback run on the loop thread after every wake-up (mailbox draining). */
void gw_loop_on_wake(struct gw_loop *loop, gw_loop_timer_cb cb, void *arg);

/* Thread-safe: makes the loop run its wake callback soon. */
void gw_loop_wake(struct gw_loop *loop);

/* Thread-safe: makes gw_loop_run() return after the current round. */
void gw_loop_stop(struct gw_loop *loop);

/* Runs until gw_loop_stop(). Returns 0, or -1 when poll fails for good. */
int gw_loop_run(struct gw_loop *loop);
/* Lets gw_loop_run() run again after it returned (for a last phase of the shutdown). */
void gw_loop_rearm(struct gw_loop *loop);

/* Milliseconds of CLOCK_MONOTONIC. */
int64_t gw_now_ms(void);

#endif
