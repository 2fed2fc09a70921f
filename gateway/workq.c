/* Worker threads over one queue guarded by a mutex and a condition variable. */
#include "workq.h"

#include <pthread.h>
#include <stdlib.h>

struct job {
    gw_job_fn fn;
    void *arg;
    struct job *next;
};

struct gw_workq {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct job *head, *tail;
    int stopping;
    int nthreads;
    pthread_t threads[];
};

static void *worker(void *arg)
{
    pthread_setname_np(pthread_self(), "pubsubgw-work"); /* top -H, perf */
    struct gw_workq *q = arg;
    pthread_mutex_lock(&q->lock);
    for (;;) {
        while (q->head == NULL && !q->stopping)
            pthread_cond_wait(&q->cond, &q->lock);
        struct job *j = q->head;
        if (j == NULL)
            break; /* stopping and nothing left */
        q->head = j->next;
        if (q->head == NULL)
            q->tail = NULL;
        pthread_mutex_unlock(&q->lock);
        j->fn(j->arg);
        free(j);
        pthread_mutex_lock(&q->lock);
    }
    pthread_mutex_unlock(&q->lock);
    return NULL;
}

struct gw_workq *gw_workq_new(int nthreads)
{
    struct gw_workq *q = calloc(1, sizeof(*q) + (size_t)nthreads * sizeof(pthread_t));
    if (q == NULL)
        return NULL;
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->cond, NULL);
    for (int i = 0; i < nthreads; i++) {
        if (pthread_create(&q->threads[i], NULL, worker, q) != 0)
            break;
        q->nthreads++;
    }
    if (q->nthreads == 0) {
        gw_workq_free(q);
        return NULL;
    }
    return q;
}

int gw_workq_submit(struct gw_workq *q, gw_job_fn fn, void *arg)
{
    struct job *j = malloc(sizeof(*j));
    if (j == NULL)
        return -1;
    j->fn = fn;
    j->arg = arg;
    j->next = NULL;
    pthread_mutex_lock(&q->lock);
    if (q->stopping) {
        pthread_mutex_unlock(&q->lock);
        free(j);
        return -1;
    }
    if (q->tail)
        q->tail->next = j;
    else
        q->head = j;
    q->tail = j;
    pthread_cond_signal(&q->cond);
    pthread_mutex_unlock(&q->lock);
    return 0;
}

void gw_workq_free(struct gw_workq *q)
{
    if (q == NULL)
        return;
    pthread_mutex_lock(&q->lock);
    q->stopping = 1;
    pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->lock);
    for (int i = 0; i < q->nthreads; i++)
        pthread_join(q->threads[i], NULL);
    pthread_mutex_destroy(&q->lock);
    pthread_cond_destroy(&q->cond);
    free(q);
}
