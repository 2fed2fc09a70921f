/* Several gateways on one shared store (PostgreSQL), coordinated through the store alone:
 *
 * - Who is alive: each gateway holds an advisory lock of its own on its control connection;
 *   the store counts them. A gateway that dies (even by kill -9) loses its connections, and
 *   with them its locks, at once.
 * - Who delivers a subscription: subscriptions fall into PARTS partitions by a hash of their
 *   id, and the gateway holding a partition's advisory lock delivers its subscriptions (one lock
 *   per subscription would not do: PostgreSQL's lock table holds a few thousand). Each gateway
 *   takes up to its share of the partitions (PARTS / gateways alive, rounded up) every second,
 *   and gives back what is beyond it once the deliveries in flight there are answered; so work
 *   spreads, and a dead gateway's partitions are taken over within about a second.
 * - What changed: a trigger notifies (LISTEN/NOTIFY) of subscriptions added or removed; the
 *   gateway that stores deliveries for a subscription another delivers notifies that one, in
 *   the same transaction; each gateway updates its registry and wakes what it delivers.
 * - Each event once: every gateway of the account may receive a notification; the first to
 *   insert its claim (unique key: sender, message id, position) in the intake's transaction
 *   takes it into the outbox, the others find the key taken and only feed their streams.
 * Notification kinds: '+'/'-' subscription id added/removed, 'w' new deliveries for it, 'r' a
 * dead letter of it made live again. */
#include "log.h"
#include "loop.h"
#include "status.h"
#include "webhooks_int.h"

#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define TICK_MS 1000
#define PARTS 512
/* Claims are kept long enough that a late copy of a notification still finds them. */
#define CLAIM_KEEP_MS (60LL * 60 * 1000)

/* FNV-1a of the id: the subscription's partition. */
static int part_of(const char *id)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)id; *p; p++) {
        h ^= *p;
        h *= 16777619u;
    }
    return (int)(h % PARTS);
}

static void tick(struct gw_loop *loop, void *arg);

struct tick_up {
    struct gw_hooks *h;
    struct gw_store *st;
    int up, connecting;
};
static void up_job(void *arg);
static void up_done(void *arg);

static void soon(struct gw_hooks *h)
{
    if (h->cluster_asking) { /* a tick is under way: another follows it at once */
        h->cluster_again = 1;
        return;
    }
    if (h->cluster_timer)
        gw_loop_timer_cancel(h->loop, h->cluster_timer);
    h->cluster_timer = gw_loop_timer_add(h->loop, 0, tick, h);
}

static void drop_ownership(struct gw_hooks *h, struct hsub *s)
{
    s->owned = 0;
    h->owned--;
    if (s->timer) {
        gw_loop_timer_cancel(h->loop, s->timer);
        s->timer = 0;
    }
    gw_pending_add(h, s, -s->pending);
    gw_delivery_rewind(h, s);
}

static void take_ownership(struct gw_hooks *h, struct hsub *s)
{
    s->owned = 1;
    h->owned++;
    gw_delivery_rewind(h, s);
}

int gw_cluster_owns(const struct gw_hooks *h, const char *id)
{
    return !h->shared || (h->parts != NULL && h->parts[part_of(id)]);
}

void gw_cluster_adopt(struct gw_hooks *h, struct hsub *s)
{
    if (h->shared && h->parts != NULL && h->parts[part_of(s->id)])
        take_ownership(h, s);
}

static void on_change(char kind, const char *id, void *arg)
{
    struct gw_hooks *h = arg;
    struct hsub *s = gw_hooks_sub(h, id);
    if (kind == 'w' || kind == 'r') {
        if (s != NULL && s->owned) {
            if (kind == 'r') {
                /* A dead letter retried through another gateway: older than what was delivered
                 * since, so look from the start again once the delivered rows are gone. */
                gw_delivery_flush(h);
                gw_delivery_rewind(h, s);
            }
            gw_pending_add(h, s, 1); /* at least one; housekeeping counts them again */
            gw_delivery_kick(h, s);
        }
        return;
    }
    if (kind == 'f') {
        gw_feeds_reload(h);
        return;
    }
    if (kind == 'p') {
        gw_feeds_pinged(h, id);
        return;
    }
    if (kind == 'u') {
        if (s != NULL && s->topic != NULL)
            gw_websub_renewed(h, s);
        return;
    }
    if (kind == '-') {
        if (s != NULL) {
            gw_info("subscription %s was removed through another gateway", id);
            gw_hooks_forget(h, s, 0);
        }
        return;
    }
    if (kind != '+' || s != NULL)
        return;
    struct gw_store_sub st;
    if (gw_store_sub_get(h->store, id, &st) != 1)
        return;
    s = gw_hsub_from_store(&st);
    gw_store_sub_clear(&st);
    if (s == NULL || gw_hooks_attach(h, s) != 0) {
        gw_error("cannot load subscription %s added through another gateway", id);
        gw_hsub_free(s);
        return;
    }
    /* The gateway that created it subscribed the account to the node; this one receives its
     * notifications as well from now on. */
    s->hn->subscribed = 1;
    gw_info("subscription %s to %s/%s was added through another gateway", s->id, s->service,
            s->node);
    gw_delivery_kick(h, s);
}

static void on_notify_fd(struct gw_loop *loop, int fd, int revents, void *arg)
{
    (void)revents;
    struct gw_hooks *h = arg;
    if (gw_store_notify_read(h->store, on_change, h) != 0) {
        gw_loop_watch(loop, fd, 0, NULL, NULL);
        h->notify_fd = -1;
        soon(h); /* notices the loss, connects again */
    }
}

static void count_taken(const char *sub_id, int64_t n, void *arg)
{
    struct gw_hooks *h = arg;
    struct hsub *s = gw_hooks_sub(h, sub_id);
    if (s != NULL && s->owned && s->pending == 0 && n > 0) {
        gw_pending_add(h, s, n);
        gw_delivery_kick(h, s);
    }
}

/* Takes or gives back partitions so that this gateway holds its share. */
static void balance(struct gw_hooks *h)
{
    int n = gw_store_replicas(h->store);
    if (n < 1)
        return;
    if (n != h->replicas)
        gw_info("%d gateway%s on the store", n, n == 1 ? "" : "s");
    h->replicas = n;
    int share = (PARTS + n - 1) / n, held = 0, changed = 0;
    for (int p = 0; p < PARTS; p++)
        held += h->parts[p];
    if (held > share) {
        /* Partitions with a delivery in flight are given back once it is answered. */
        unsigned char busy[PARTS] = {0};
        for (struct hsub *s = h->first; s; s = s->next)
            if (s->inflight)
                busy[part_of(s->id)] = 1;
        /* What was delivered leaves the outbox before another takes it. */
        gw_delivery_flush(h);
        gw_store_settle(h->store);
        for (int p = PARTS - 1; p >= 0 && held > share; p--) {
            if (!h->parts[p] || busy[p])
                continue;
            h->parts[p] = 0;
            held--;
            changed = 1;
            gw_store_lock_release(h->store, (uint32_t)p);
        }
    } else if (held < share) {
        int free_parts[PARTS];
        int k = gw_store_locks_free(h->store, PARTS, free_parts);
        for (int i = 0; i < k && held < share; i++) {
            int p = free_parts[i];
            if (h->parts[p] || gw_store_lock_try(h->store, (uint32_t)p) != 1)
                continue;
            h->parts[p] = 1;
            held++;
            changed = 1;
        }
    }
    h->nparts = held;
    if (!changed)
        return;
    /* One pass over the registry; the backlogs of what was taken in one query. */
    for (struct hsub *s = h->first; s; s = s->next) {
        int mine = h->parts[part_of(s->id)];
        if (s->owned && !mine)
            drop_ownership(h, s);
        else if (!s->owned && mine && !s->gone)
            take_ownership(h, s);
    }
    gw_store_pending_each(h->store, count_taken, h);
}

static void tick(struct gw_loop *loop, void *arg)
{
    struct gw_hooks *h = arg;
    h->cluster_timer = 0;
    if (h->cluster_asking)
        return;
    int fd = gw_store_notify_fd(h->store);
    unsigned epoch = gw_store_epoch(h->store);
    if (epoch != h->epoch) {
        /* A new control connection: the locks of the last one are gone, and so may be
         * notifications sent meanwhile. Take it all up again from the store. */
        if (h->epoch != 0)
            gw_warn("store: control connection made again; taking subscriptions anew");
        for (struct hsub *s = h->first; s; s = s->next)
            if (s->owned)
                drop_ownership(h, s);
        memset(h->parts, 0, PARTS);
        h->nparts = 0;
        h->epoch = epoch;
    }
    if (fd != h->notify_fd) {
        if (h->notify_fd >= 0)
            gw_loop_watch(loop, h->notify_fd, 0, NULL, NULL);
        h->notify_fd = fd;
        if (fd >= 0)
            gw_loop_watch(loop, fd, POLLIN, on_notify_fd, h);
    }
    if (fd >= 0) {
        balance(h);
        /* Notifications read along with the lock answers wait in the connection's buffer. */
        if (gw_store_notify_read(h->store, on_change, h) != 0)
            h->notify_fd = -1;
    } else {
        for (struct hsub *s = h->first; s; s = s->next)
            if (s->owned)
                drop_ownership(h, s);
        memset(h->parts, 0, PARTS);
        h->nparts = 0;
    }
    /* Whether the store answers, asked on its thread (the question may wait on the server); the
     * tick goes on when the answer is back. */
    struct tick_up *t = malloc(sizeof(*t));
    if (t == NULL) {
        h->cluster_timer = gw_loop_timer_add(loop, TICK_MS, tick, h);
        return;
    }
    t->h = h;
    t->st = h->store;
    h->cluster_asking = 1;
    gw_store_submit(h->store, up_job, up_done, t);
}

static void up_job(void *arg)
{
    struct tick_up *t = arg;
    t->up = gw_store_up(t->st);
    t->connecting = gw_store_connecting(t->st);
}

static void up_done(void *arg)
{
    struct tick_up *t = arg;
    struct gw_hooks *h = t->h;
    int up = t->up, connecting = t->connecting;
    free(t);
    h->cluster_asking = 0;
    if (h->stopping || h->parts == NULL)
        return;
    if (up && (json_array_size(h->spool) > 0 || atomic_load(&h->intake_broken)) &&
        gw_hooks_spool_drain(h) != 0)
        up = 0;
    if (up && !atomic_load(&gw_status.store_up)) {
        /* In case more came than could wait, or the gateway could not tell it was away. */
        gw_info("store: back; catching up on the nodes");
        gw_nodesync_all(h);
    }
    atomic_store(&gw_status.store_up, up);
    atomic_store(&gw_status.replicas, h->replicas);
    atomic_store(&gw_status.delivering, h->owned);
    atomic_store(&gw_status.partitions, h->nparts);
    /* A connection being made again moves on at each tick: soon, not in a second; a tick asked
     * for while this one waited comes at once. */
    int64_t next = h->cluster_again ? 0 : connecting ? 10 : TICK_MS;
    h->cluster_again = 0;
    h->cluster_timer = gw_loop_timer_add(h->loop, next, tick, h);
}

void gw_cluster_start(struct gw_hooks *h)
{
    h->notify_fd = -1;
    if (!h->shared)
        return;
    h->parts = calloc(PARTS, 1);
    if (h->parts == NULL) {
        gw_error("out of memory: this gateway delivers nothing");
        return;
    }
    soon(h);
}

void gw_cluster_stop(struct gw_hooks *h)
{
    if (h->cluster_timer)
        gw_loop_timer_cancel(h->loop, h->cluster_timer);
    h->cluster_timer = 0;
    if (h->notify_fd >= 0)
        gw_loop_watch(h->loop, h->notify_fd, 0, NULL, NULL);
    h->notify_fd = -1;
    free(h->parts);
    h->parts = NULL;
}

void gw_cluster_release(struct gw_hooks *h, struct hsub *s)
{
    if (h->shared && s->owned) {
        s->owned = 0;
        h->owned--;
    }
}

static void count_owned(const char *sub_id, int64_t n, void *arg)
{
    struct gw_hooks *h = arg;
    struct hsub *s = gw_hooks_sub(h, sub_id);
    if (s != NULL && s->owned) {
        gw_pending_add(h, s, n - s->pending);
        gw_delivery_kick(h, s); /* in case its queue stopped at a count too low */
    }
}

void gw_cluster_housekeeping(struct gw_hooks *h)
{
    if (!h->shared)
        return;
    gw_store_claims_prune(h->store, gw_wall_ms() - CLAIM_KEEP_MS);
    /* The counts of new deliveries heard of are lower bounds: read them again. */
    for (struct hsub *s = h->first; s; s = s->next)
        if (s->owned && s->pending != 0)
            gw_pending_add(h, s, -s->pending);
    gw_store_pending_each(h->store, count_owned, h);
}
