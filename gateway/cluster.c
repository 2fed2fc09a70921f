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

/* What the store's thread read for the loop: notifications (kind, id) or backlogs (id, n). */
struct row {
    char kind;
    char *id;
    int64_t n;
};

struct rows {
    struct row *v;
    size_t n, cap;
};

static void rows_add(struct rows *r, char kind, const char *id, int64_t n)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        struct row *v = realloc(r->v, cap * sizeof(*v));
        if (v == NULL)
            return; /* a backlog is counted again in 15 s; a lost notification, at the next tick */
        r->v = v;
        r->cap = cap;
    }
    char *d = strdup(id);
    if (d != NULL)
        r->v[r->n++] = (struct row){kind, d, n};
}

static void rows_clear(struct rows *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->v[i].id);
    free(r->v);
    memset(r, 0, sizeof(*r));
}

static void note(char kind, const char *id, void *arg)
{
    rows_add(arg, kind, id, 0);
}

static void count(const char *sub_id, int64_t n, void *arg)
{
    rows_add(arg, 0, sub_id, n);
}

/* A tick's questions to the store, asked on its thread (the control connection is the
 * thread's alone): whether it answers, how many gateways there are, the partitions to give back
 * (chosen on the loop) and those taken, the notifications that came. */
struct tick_job {
    struct gw_hooks *h;
    struct gw_store *st;
    unsigned epoch_known;
    unsigned char held[PARTS];    /* in: held after the loop's releases; out: after the takes */
    unsigned char release[PARTS]; /* in: to give back */
    unsigned char taken[PARTS];   /* out */
    int ntaken;
    int up, connecting, fd, replicas, read_failed;
    unsigned epoch;
    struct rows notes, counts;
};
static void tick_job(void *arg);
static void tick_done(void *arg);

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

/* A subscription added through another gateway, read on the store's thread. A '-' for it
 * heard meanwhile cancels it (h->loading: id -> 1, or 2 once removed). */
struct loading {
    struct gw_hooks *h;
    struct gw_store *st;
    char *id;
    struct gw_store_sub row;
    int found;
};

static void load_job(void *arg)
{
    struct loading *l = arg;
    l->found = gw_store_sub_get(l->st, l->id, &l->row);
}

static void load_done(void *arg)
{
    struct loading *l = arg;
    struct gw_hooks *h = l->h;
    void *state = gw_hmap_del(h->loading, l->id, strlen(l->id));
    if (l->found == 1 && state == (void *)1 && !h->stopping && gw_hooks_sub(h, l->id) == NULL) {
        struct hsub *s = gw_hsub_from_store(&l->row);
        if (s == NULL || gw_hooks_attach(h, s) != 0) {
            gw_error("cannot load subscription %s added through another gateway", l->id);
            gw_hsub_free(s);
        } else {
            /* The gateway that created it subscribed the account to the node; this one
             * receives its notifications as well from now on. */
            s->hn->subscribed = 1;
            gw_info("subscription %s to %s/%s was added through another gateway", s->id, s->service,
                    s->node);
            gw_delivery_kick(h, s);
        }
    }
    if (l->found == 1)
        gw_store_sub_clear(&l->row);
    free(l->id);
    free(l);
}

static void load(struct gw_hooks *h, const char *id)
{
    if (h->loading == NULL && (h->loading = gw_hmap_new()) == NULL)
        return;
    struct loading *l = calloc(1, sizeof(*l));
    if (l == NULL || (l->id = strdup(id)) == NULL ||
        gw_hmap_put(h->loading, id, strlen(id), (void *)1) != 0) {
        if (l != NULL)
            free(l->id);
        free(l);
        gw_error("cannot load subscription %s added through another gateway (out of memory)", id);
        return;
    }
    l->h = h;
    l->st = h->store;
    gw_store_submit(h->store, load_job, load_done, l);
}

static void on_change(struct gw_hooks *h, char kind, const char *id)
{
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
        if (h->loading != NULL && gw_hmap_get(h->loading, id, strlen(id)) != NULL)
            gw_hmap_put(h->loading, id, strlen(id), (void *)2);
        if (s != NULL) {
            gw_info("subscription %s was removed through another gateway", id);
            gw_hooks_forget(h, s, 0);
        }
        return;
    }
    if (kind == '+' && s == NULL)
        load(h, id);
}

static void on_changes(struct gw_hooks *h, struct rows *notes)
{
    for (size_t i = 0; i < notes->n && !h->stopping; i++)
        on_change(h, notes->v[i].kind, notes->v[i].id);
}

/* Notifications arrived: read on the store's thread. The socket is not watched meanwhile (it
 * stays readable until then), nor while a tick uses the control connection. */
struct reading {
    struct gw_hooks *h;
    struct gw_store *st;
    int rc;
    struct rows notes;
};

static void watch(struct gw_hooks *h, int on);

static void read_job(void *arg)
{
    struct reading *r = arg;
    r->rc = gw_store_notify_read(r->st, note, &r->notes);
}

static void read_done(void *arg)
{
    struct reading *r = arg;
    struct gw_hooks *h = r->h;
    h->notify_reading = 0;
    if (!h->stopping) {
        on_changes(h, &r->notes);
        if (r->rc != 0) {
            h->notify_fd = -1;
            soon(h);                     /* notices the loss, connects again */
        } else if (!h->cluster_asking) { /* else the tick watches it again, when done */
            watch(h, 1);
        }
    }
    rows_clear(&r->notes);
    free(r);
}

static void on_notify_fd(struct gw_loop *loop, int fd, int revents, void *arg)
{
    (void)loop;
    (void)fd;
    (void)revents;
    struct gw_hooks *h = arg;
    struct reading *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return;
    watch(h, 0);
    r->h = h;
    r->st = h->store;
    h->notify_reading = 1;
    gw_store_submit(h->store, read_job, read_done, r);
}

static void watch(struct gw_hooks *h, int on)
{
    if (h->notify_fd < 0 || h->notify_watched == on)
        return;
    h->notify_watched = (unsigned char)on;
    gw_loop_watch(h->loop, h->notify_fd, on ? POLLIN : 0, on ? on_notify_fd : NULL, h);
}

static void count_taken(struct gw_hooks *h, const char *sub_id, int64_t n)
{
    struct hsub *s = gw_hooks_sub(h, sub_id);
    if (s != NULL && s->owned && s->pending == 0 && n > 0) {
        gw_pending_add(h, s, n);
        gw_delivery_kick(h, s);
    }
}

static void drop_all(struct gw_hooks *h)
{
    for (struct hsub *s = h->first; s; s = s->next)
        if (s->owned)
            drop_ownership(h, s);
    memset(h->parts, 0, PARTS);
    h->nparts = 0;
}

/* Gives back what is beyond this gateway's share (by the last count of gateways): its
 * subscriptions stop being delivered here at once; the locks go on the store's thread, after
 * what was delivered has left the outbox (the flush is queued before). Partitions with a
 * delivery in flight are given back once it is answered. */
static void choose_releases(struct gw_hooks *h, struct tick_job *t)
{
    int n = h->replicas;
    if (n < 1 || h->notify_fd < 0)
        return;
    int share = (PARTS + n - 1) / n, held = 0;
    for (int p = 0; p < PARTS; p++)
        held += h->parts[p];
    if (held <= share)
        return;
    unsigned char busy[PARTS] = {0};
    for (struct hsub *s = h->first; s; s = s->next)
        if (s->inflight)
            busy[part_of(s->id)] = 1;
    int changed = 0;
    for (int p = PARTS - 1; p >= 0 && held > share; p--) {
        if (!h->parts[p] || busy[p])
            continue;
        h->parts[p] = 0;
        t->release[p] = 1;
        held--;
        changed = 1;
    }
    if (!changed)
        return;
    gw_delivery_flush(h);
    h->nparts = held;
    for (struct hsub *s = h->first; s; s = s->next)
        if (s->owned && !h->parts[part_of(s->id)])
            drop_ownership(h, s);
}

static void tick(struct gw_loop *loop, void *arg)
{
    struct gw_hooks *h = arg;
    h->cluster_timer = 0;
    if (h->cluster_asking)
        return;
    struct tick_job *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        h->cluster_timer = gw_loop_timer_add(loop, TICK_MS, tick, h);
        return;
    }
    t->h = h;
    t->st = h->store;
    t->epoch_known = h->epoch;
    choose_releases(h, t);
    memcpy(t->held, h->parts, PARTS);
    watch(h, 0); /* the control connection may be made again meanwhile */
    h->cluster_asking = 1;
    gw_store_submit(h->store, tick_job, tick_done, t);
}

static void tick_job(void *arg)
{
    struct tick_job *t = arg;
    struct gw_store *st = t->st;
    t->up = gw_store_up(st);
    t->connecting = gw_store_connecting(st);
    t->fd = gw_store_notify_fd(st);
    t->epoch = gw_store_epoch(st);
    if (t->epoch != t->epoch_known) /* a new control connection: the old one's locks are gone */
        memset(t->held, 0, PARTS);
    if (t->fd < 0)
        return;
    for (int p = 0; p < PARTS; p++)
        if (t->release[p] && t->epoch == t->epoch_known)
            gw_store_lock_release(st, (uint32_t)p);
    t->replicas = gw_store_replicas(st);
    if (t->replicas >= 1) {
        int share = (PARTS + t->replicas - 1) / t->replicas, held = 0;
        for (int p = 0; p < PARTS; p++)
            held += t->held[p];
        if (held < share) {
            int free_parts[PARTS];
            int k = gw_store_locks_free(st, PARTS, free_parts);
            for (int i = 0; i < k && held < share; i++) {
                int p = free_parts[i];
                if (t->held[p] || gw_store_lock_try(st, (uint32_t)p) != 1)
                    continue;
                t->held[p] = t->taken[p] = 1;
                t->ntaken++;
                held++;
            }
        }
    }
    /* Notifications read along with the lock answers wait in the connection's buffer. */
    t->read_failed = gw_store_notify_read(st, note, &t->notes) != 0;
    if (t->ntaken > 0) /* the backlogs of what was taken, in one query */
        gw_store_pending_each(st, count, &t->counts);
}

static void tick_done(void *arg)
{
    struct tick_job *t = arg;
    struct gw_hooks *h = t->h;
    int up = t->up, connecting = t->connecting;
    h->cluster_asking = 0;
    if (h->stopping || h->parts == NULL) {
        rows_clear(&t->notes);
        rows_clear(&t->counts);
        free(t);
        return;
    }
    if (t->epoch != h->epoch) {
        /* A new control connection: the locks of the last one are gone, and so may be
         * notifications sent meanwhile. Take it all up again from the store. */
        if (h->epoch != 0)
            gw_warn("store: control connection made again; taking subscriptions anew");
        drop_all(h);
        h->epoch = t->epoch;
    }
    if (t->fd != h->notify_fd) {
        if (h->notify_fd >= 0 && h->notify_watched)
            gw_loop_watch(h->loop, h->notify_fd, 0, NULL, NULL);
        h->notify_watched = 0;
        h->notify_fd = t->fd;
    }
    if (t->fd >= 0 && t->replicas >= 1) {
        if (t->replicas != h->replicas)
            gw_info("%d gateway%s on the store", t->replicas, t->replicas == 1 ? "" : "s");
        h->replicas = t->replicas;
    }
    if (t->fd >= 0) {
        int held = 0;
        for (int p = 0; p < PARTS; p++) {
            if (t->taken[p])
                h->parts[p] = 1;
            held += h->parts[p];
        }
        h->nparts = held;
        if (t->ntaken > 0) {
            for (struct hsub *s = h->first; s; s = s->next)
                if (!s->owned && !s->gone && t->taken[part_of(s->id)])
                    take_ownership(h, s);
            for (size_t i = 0; i < t->counts.n; i++)
                count_taken(h, t->counts.v[i].id, t->counts.v[i].n);
        }
        on_changes(h, &t->notes);
        if (t->read_failed)
            h->notify_fd = -1;
        else if (!h->notify_reading)
            watch(h, 1);
    } else {
        drop_all(h);
    }
    rows_clear(&t->notes);
    rows_clear(&t->counts);
    free(t);
    if (h->stopping)
        return;
    if (up && (json_array_size(h->spool) > 0 || atomic_load(&h->intake_broken)))
        gw_hooks_spool_drain(h);
    if (up && !atomic_load(&gw_status.store_up)) {
        /* In case more came than could wait, or the gateway could not tell it was away; after
         * what waited is stored (and so marked seen), lest catch-up take it for missed. */
        gw_info("store: back; catching up on the nodes");
        if (h->draining)
            h->sync_after_drain = 1;
        else
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
    watch(h, 0);
    h->notify_fd = -1;
    free(h->parts);
    h->parts = NULL;
    gw_hmap_free(h->loading);
    h->loading = NULL;
}

void gw_cluster_release(struct gw_hooks *h, struct hsub *s)
{
    if (h->shared && s->owned) {
        s->owned = 0;
        h->owned--;
    }
}

/* Every 15 s: old claims go, and the backlogs of what this gateway delivers are counted again
 * (the counts of new deliveries heard of are lower bounds). Read on the store's thread. */
struct recount {
    struct gw_hooks *h;
    struct gw_store *st;
    int64_t before_ms;
    int rc;
    struct rows counts;
};

static void recount_job(void *arg)
{
    struct recount *r = arg;
    gw_store_claims_prune(r->st, r->before_ms);
    r->rc = gw_store_pending_each(r->st, count, &r->counts);
}

static void recount_done(void *arg)
{
    struct recount *r = arg;
    struct gw_hooks *h = r->h;
    if (r->rc == 0 && !h->stopping) {
        for (struct hsub *s = h->first; s; s = s->next)
            if (s->owned && s->pending != 0)
                gw_pending_add(h, s, -s->pending);
        for (size_t i = 0; i < r->counts.n; i++) {
            struct hsub *s = gw_hooks_sub(h, r->counts.v[i].id);
            if (s != NULL && s->owned) {
                gw_pending_add(h, s, r->counts.v[i].n);
                gw_delivery_kick(h, s); /* in case its queue stopped at a count too low */
            }
        }
    }
    rows_clear(&r->counts);
    free(r);
}

void gw_cluster_housekeeping(struct gw_hooks *h)
{
    if (!h->shared)
        return;
    struct recount *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return;
    r->h = h;
    r->st = h->store;
    r->before_ms = gw_wall_ms() - CLAIM_KEEP_MS;
    gw_store_submit(h->store, recount_job, recount_done, r);
}
