/* The store interface: picks the backend from the URL and calls through its table. */
#include "store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    if (st != NULL)
        st->ops->close(st);
}

const char *gw_store_kind(const struct gw_store *st)
{
    return st->ops->kind;
}

int gw_store_up(struct gw_store *st)
{
    return st->ops->up(st);
}

int gw_store_begin(struct gw_store *st)
{
    return st->ops->begin(st);
}

int gw_store_commit(struct gw_store *st)
{
    return st->ops->commit(st);
}

void gw_store_rollback(struct gw_store *st)
{
    st->ops->rollback(st);
}

int gw_store_sub_insert(struct gw_store *st, const struct gw_store_sub *s)
{
    return st->ops->sub_insert(st, s);
}

int gw_store_sub_renew(struct gw_store *st, const char *id, const char *secret, const char *websub)
{
    return st->ops->sub_renew(st, id, secret, websub);
}

int gw_store_sub_delete(struct gw_store *st, const char *id)
{
    return st->ops->sub_delete(st, id);
}

int gw_store_sub_each(struct gw_store *st, void (*cb)(const struct gw_store_sub *s, void *arg),
                      void *arg)
{
    return st->ops->sub_each(st, cb, arg);
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
    return st->ops->event_add(st, event_id, service, node, body, created_ms);
}

int gw_store_delivery_add(struct gw_store *st, const char *sub_id, int64_t event, int64_t next_at,
                          const char *dead_reason)
{
    return st->ops->delivery_add(st, sub_id, event, next_at, dead_reason);
}

int gw_store_pending_each(struct gw_store *st, void (*cb)(const char *sub_id, int64_t n, void *arg),
                          void *arg)
{
    return st->ops->count_each(st, 0, NULL, cb, arg);
}

int gw_store_dead_count_each(struct gw_store *st, const char *sub_id,
                             void (*cb)(const char *sub_id, int64_t n, void *arg), void *arg)
{
    return st->ops->count_each(st, 1, sub_id, cb, arg);
}

int gw_store_delivery_head(struct gw_store *st, const char *sub_id, int64_t after,
                           struct gw_store_delivery *d)
{
    int n = st->ops->delivery_next(st, sub_id, after, 1, d);
    return n < 0 ? -1 : n;
}

int gw_store_delivery_next(struct gw_store *st, const char *sub_id, int64_t after, int limit,
                           struct gw_store_delivery *out)
{
    return limit > 0 ? st->ops->delivery_next(st, sub_id, after, limit, out) : 0;
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
    return st->ops->delivery_done(st, seq, event);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int gw_store_delivery_done_many(struct gw_store *st, const int64_t *seqs, const int64_t *events,
                                size_t n)
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
    return st->ops->delivery_failed(st, seq, attempts, next_at, error, dead);
}

int gw_store_dead_each(struct gw_store *st, const char *sub_id,
                       void (*cb)(const struct gw_store_delivery *d, void *arg), void *arg)
{
    return st->ops->dead_each(st, sub_id, cb, arg);
}

int gw_store_dead_prune_age(struct gw_store *st, int64_t before_ms, int limit)
{
    return st->ops->dead_prune_age(st, before_ms, limit);
}

int gw_store_dead_prune_count(struct gw_store *st, const char *sub_id, int keep, int limit)
{
    return st->ops->dead_prune_count(st, sub_id, keep, limit);
}

int gw_store_dead_retry(struct gw_store *st, const char *sub_id, int64_t seq, int64_t now_ms)
{
    return st->ops->dead_retry(st, sub_id, seq, now_ms);
}

int64_t gw_store_oldest_pending_ms(struct gw_store *st)
{
    return st->ops->oldest_pending_ms(st);
}

int gw_store_attempt_add(struct gw_store *st, const struct gw_store_attempt *a)
{
    return st->ops->attempt_add(st, a);
}

int gw_store_attempts_each(struct gw_store *st, const char *sub_id, int64_t before, int limit,
                           void (*cb)(const struct gw_store_attempt *a, void *arg), void *arg)
{
    return st->ops->attempts_each(st, sub_id, before, limit, cb, arg);
}

int gw_store_attempts_prune_count(struct gw_store *st, const char *sub_id, int keep)
{
    return st->ops->attempts_prune_count(st, sub_id, keep);
}

int gw_store_attempts_prune_age(struct gw_store *st, int64_t before_ms)
{
    return st->ops->attempts_prune_age(st, before_ms);
}

int gw_store_seen_add(struct gw_store *st, const char *service, const char *node, const char *item)
{
    return st->ops->seen_add(st, service, node, item);
}

int gw_store_seen_has(struct gw_store *st, const char *service, const char *node, const char *item)
{
    return st->ops->seen_has(st, service, node, item);
}

int gw_store_seen_prune(struct gw_store *st, const char *service, const char *node, int keep)
{
    return st->ops->seen_prune(st, service, node, keep);
}

int gw_store_shared(const struct gw_store *st)
{
    return st->ops->notify_fd != NULL;
}

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
        return st->ops->event_add(st, event_id, service, node, body, created_ms);
    return st->ops->event_add_claimed(st, claim, event_id, service, node, body, created_ms);
}

int gw_store_claims_prune(struct gw_store *st, int64_t before_ms)
{
    return st->ops->claims_prune ? st->ops->claims_prune(st, before_ms) : -1;
}

int gw_store_sub_get(struct gw_store *st, const char *id, struct gw_store_sub *s)
{
    return st->ops->sub_get ? st->ops->sub_get(st, id, s) : -1;
}

int gw_store_notify(struct gw_store *st, char kind, const char *id)
{
    return st->ops->notify ? st->ops->notify(st, kind, id) : 0;
}

int gw_store_connecting(struct gw_store *st)
{
    return st->ops->connecting ? st->ops->connecting(st) : 0;
}

int gw_store_feed_put(struct gw_store *st, const struct gw_store_feed *f)
{
    return st->ops->feed_put(st, f);
}

int gw_store_feed_delete(struct gw_store *st, const char *id)
{
    return st->ops->feed_delete(st, id);
}

int gw_store_feed_each(struct gw_store *st, void (*cb)(const struct gw_store_feed *f, void *arg),
                       void *arg)
{
    return st->ops->feed_each(st, cb, arg);
}
