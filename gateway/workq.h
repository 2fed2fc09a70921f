/* A few worker threads for work that may block and must not run on the loop thread (name
 * resolution). Jobs run in submission order on whichever worker is free; a job hands its result
 * back to the loop itself (through the mailbox). */
#ifndef GW_WORKQ_H
#define GW_WORKQ_H

struct gw_workq;

typedef void (*gw_job_fn)(void *arg);

/* Starts nthreads workers; NULL on failure. */
struct gw_workq *gw_workq_new(int nthreads);
/* Queues fn(arg); 0, or -1 when out of memory or stopping (fn is then not called). Any thread. */
int gw_workq_submit(struct gw_workq *q, gw_job_fn fn, void *arg);
/* Runs the jobs still queued, then joins the workers and frees q. Accepts NULL. */
void gw_workq_free(struct gw_workq *q);

#endif
