/* Durable state: webhook subscriptions, the event outbox with one delivery row per event and
 * subscription, dead letters, delivery attempts, and the item ids already turned into events
 * (for catch-up after downtime). Two backends behind this one interface: SQLite (WAL, the
 * embedded default; one gateway per database file) and PostgreSQL. Loop thread only, except
 * jobs, which run on the store's own thread (see gw_store_thread_start). */
#ifndef GW_STORE_H
#define GW_STORE_H

#include <stddef.h>
#include <stdint.h>

struct gw_store;

/* A subscription as stored. Strings are owned by the struct (gw_store_sub_clear frees them). */
struct gw_store_sub {
    char *id, *service, *node, *callback, *secret; /* secret: "whsec_…" (WebSub: hub.secret) */
    unsigned events;                               /* GW_EV_* mask */
    int64_t created_ms;
    char *websub;  /* a WebSub subscription: its topic, lease and signature (JSON), else NULL */
    char *options; /* delivery options (JSON: batch), or NULL */
};

/* One delivery (an event for one subscription), as read back. Strings owned by the struct. */
struct gw_store_delivery {
    int64_t seq;
    int64_t event;  /* event row */
    char *event_id; /* webhook-id */
    char *body;     /* event JSON without the subscription field */
    int attempts;
    int64_t next_at; /* unix ms */
    int64_t created_ms;
    char *last_error;
};

/* One delivery attempt, as the attempts log keeps it. */
struct gw_store_attempt {
    int64_t id;
    const char *sub_id;
    int64_t at_ms;        /* unix ms when it was sent */
    const char *event_id; /* webhook-id */
    int attempt;          /* 1 for the first */
    long status;          /* HTTP status, 0 for none */
    const char *error;    /* transport error or NULL */
    int64_t duration_ms;
    const char *answer; /* the first bytes of the answer, or NULL */
};

/* Opens (creating or migrating the schema) the store URL names: "sqlite:PATH" (the database
 * file) or "postgresql://…" / "postgres://…" (a libpq URI). NULL with a reason in err. Close
 * with gw_store_close(). */
struct gw_store *gw_store_open(const char *url, char *err, size_t errlen);
void gw_store_close(struct gw_store *st);
/* "sqlite" or "postgresql". */
const char *gw_store_kind(const struct gw_store *st);
/* 1 while the store answers (SQLite: always; PostgreSQL: while its connection is up; it may
 * connect again, so the loop asks it on the store's thread). */
int gw_store_up(struct gw_store *st);
/* Whether the store was reachable at its last use (no round trip, no wait: for the loop). */
int gw_store_known_up(const struct gw_store *st);
/* 0 when url names a store this build can open, else -1 with the reason in err. */
int gw_store_url_check(const char *url, char *err, size_t errlen);

/* The store's own thread, so that the loop need not wait on the database: a job submitted runs
 * there, jobs one at a time in the order submitted, and its done callback then runs on the
 * loop, in the same order. Jobs use the gw_store_* calls below as the loop does (a transaction
 * of a job is the job's own); they must not touch what the loop owns, only what arg carries.
 * Any other call from the loop waits until the thread has finished every job submitted before
 * it (so a read sees what earlier jobs wrote) and keeps the thread waiting meanwhile (from a
 * begin to its commit or rollback, for a transaction). Without the thread (not started, or
 * stopped) a job and its done callback run at once. */
struct gw_loop;
typedef void (*gw_store_job_fn)(void *arg);
typedef void (*gw_store_done_fn)(void *arg);
int gw_store_thread_start(struct gw_store *st, struct gw_loop *loop);
void gw_store_submit(struct gw_store *st, gw_store_job_fn job, gw_store_done_fn done, void *arg);
/* Waits for every job submitted and runs the done callbacks not run yet (loop thread); returns
 * how many ran (they may have submitted more). */
int gw_store_settle(struct gw_store *st);
/* Runs what is queued and its done callbacks, then stops the thread (gw_store_close does). */
void gw_store_thread_stop(struct gw_store *st);

int gw_store_begin(struct gw_store *st);
int gw_store_commit(struct gw_store *st);
void gw_store_rollback(struct gw_store *st);

int gw_store_sub_insert(struct gw_store *st, const struct gw_store_sub *s);
/* A WebSub subscription renewed: its secret and websub description replaced. 1 when it
 * exists, 0 when not, -1 on error. */
int gw_store_sub_renew(struct gw_store *st, const char *id, const char *secret, const char *websub);
/* Deletes the subscription with its deliveries and events nobody else needs. */
int gw_store_sub_delete(struct gw_store *st, const char *id);
/* Calls cb for every stored subscription (the struct is cleared after cb returns). */
int gw_store_sub_each(struct gw_store *st, void (*cb)(const struct gw_store_sub *s, void *arg),
                      void *arg);
void gw_store_sub_clear(struct gw_store_sub *s);

/* Appends an event; returns its row (> 0) or -1. */
int64_t gw_store_event_add(struct gw_store *st, const char *event_id, const char *service,
                           const char *node, const char *body, int64_t created_ms);
/* The same, claiming claim (a key every gateway of a shared store derives alike from the
 * notification; NULL for none) in the same statement: 0 when another gateway claimed it
 * first, and then nothing is stored. */
int64_t gw_store_event_add_claimed(struct gw_store *st, const char *claim, const char *event_id,
                                   const char *service, const char *node, const char *body,
                                   int64_t created_ms);
/* Adds a delivery; with dead_reason it goes straight to the dead letters (outbox full). */
int gw_store_delivery_add(struct gw_store *st, const char *sub_id, int64_t event, int64_t next_at,
                          const char *dead_reason);
/* Calls cb with the number of live deliveries of every subscription that has some. */
int gw_store_pending_each(struct gw_store *st, void (*cb)(const char *sub_id, int64_t n, void *arg),
                          void *arg);
/* The same with the number of dead letters, of sub_id alone (NULL: of every subscription). */
int gw_store_dead_count_each(struct gw_store *st, const char *sub_id,
                             void (*cb)(const char *sub_id, int64_t n, void *arg), void *arg);

/* The oldest live (not dead) delivery of sub_id after seq `after`: returns 1 and fills d, 0 if
 * none, -1 on error. */
int gw_store_delivery_head(struct gw_store *st, const char *sub_id, int64_t after,
                           struct gw_store_delivery *d);
/* Up to limit of the oldest live deliveries of sub_id after seq `after`, oldest first, into
 * out (clear each with gw_store_delivery_clear): how many, or -1. */
int gw_store_delivery_next(struct gw_store *st, const char *sub_id, int64_t after, int limit,
                           struct gw_store_delivery *out);
void gw_store_delivery_clear(struct gw_store_delivery *d);
/* Delivered: removes the row (and the event once no delivery needs it). */
int gw_store_delivery_done(struct gw_store *st, int64_t seq, int64_t event);
/* The same for n deliveries, each event looked at once (an event delivered to a thousand
 * callbacks is not checked a thousand times). */
int gw_store_delivery_done_many(struct gw_store *st, const int64_t *seqs, const int64_t *events,
                                size_t n);
/* Failed: records the attempt; dead moves it to the dead letters (next_at is then the time it
 * died, which the age limit of dead letters counts from). */
int gw_store_delivery_failed(struct gw_store *st, int64_t seq, int attempts, int64_t next_at,
                             const char *error, int dead);
/* Dead letters of sub_id, oldest first, through cb. */
int gw_store_dead_each(struct gw_store *st, const char *sub_id,
                       void (*cb)(const struct gw_store_delivery *d, void *arg), void *arg);
/* Removes up to limit (at most 256 a call) dead letters that died before before_ms; returns
 * how many, or -1. */
int gw_store_dead_prune_age(struct gw_store *st, int64_t before_ms, int limit);
/* Removes up to limit (at most 256 a call) of sub_id's oldest dead letters beyond the newest
 * keep; returns how many, or -1. */
int gw_store_dead_prune_count(struct gw_store *st, const char *sub_id, int keep, int limit);
/* Makes dead letter seq of sub_id live again with a fresh attempt count; 1 if found, 0 if not. */
int gw_store_dead_retry(struct gw_store *st, const char *sub_id, int64_t seq, int64_t now_ms);

/* Unix ms when the oldest undelivered (not dead) event was stored, 0 when none. */
int64_t gw_store_oldest_pending_ms(struct gw_store *st);

/* Delivery attempts per subscription. */
int gw_store_attempt_add(struct gw_store *st, const struct gw_store_attempt *a);
/* sub_id's attempts newest first, with id < before (0: from the newest), at most limit. */
int gw_store_attempts_each(struct gw_store *st, const char *sub_id, int64_t before, int limit,
                           void (*cb)(const struct gw_store_attempt *a, void *arg), void *arg);
/* Keeps sub_id's newest keep attempts. */
int gw_store_attempts_prune_count(struct gw_store *st, const char *sub_id, int keep);
/* Removes up to 1,000 attempts older than before_ms; returns how many, or -1. */
int gw_store_attempts_prune_age(struct gw_store *st, int64_t before_ms);

/* Item ids seen per node, so catch-up delivers an item once. */
int gw_store_seen_add(struct gw_store *st, const char *service, const char *node, const char *item);
int gw_store_seen_has(struct gw_store *st, const char *service, const char *node, const char *item);
/* Keeps only the newest keep ids of a node. */
int gw_store_seen_prune(struct gw_store *st, const char *service, const char *node, int keep);

/* Feeds polled into nodes, each with its state (JSON: validators, entries seen, counters). */
struct gw_store_feed {
    char *id, *url, *service, *node;
    int interval_s;
    int64_t created_ms;
    char *state;
};
/* Stores f, replacing the feed of the same id. */
int gw_store_feed_put(struct gw_store *st, const struct gw_store_feed *f);
int gw_store_feed_delete(struct gw_store *st, const char *id);
/* Calls cb for every feed (the struct is valid during the call). */
int gw_store_feed_each(struct gw_store *st, void (*cb)(const struct gw_store_feed *f, void *arg),
                       void *arg);

/* Several gateways on one store. PostgreSQL only: with SQLite a gateway is alone, shared() is 0
 * and the others answer -1. Each gateway keeps a control connection of its own for these: it
 * listens for the changes other gateways make, holds the advisory locks that say which gateway
 * delivers a subscription, and one that says it is alive. The loop alone uses it: notify_fd,
 * notify_read, epoch, the locks and replicas do not wait for the store's thread. */
int gw_store_shared(const struct gw_store *st);
/* The control connection's socket to watch for notifications (changes by other gateways), or
 * -1 while it is down. It changes when the connection is made again. */
int gw_store_notify_fd(struct gw_store *st);
/* Reads what has arrived: cb(kind, id) for each change; kind '+' subscription added, '-'
 * removed, 'w' new deliveries for subscription id, 'r' a dead letter of it made live again.
 * Returns 0 or -1 (connection lost). */
int gw_store_notify_read(struct gw_store *st, void (*cb)(char kind, const char *id, void *arg),
                         void *arg);
/* 1 while a lost connection is being made again: it moves on each time the store is used (never
 * waiting), so a caller that wants it back soon uses the store again shortly. */
int gw_store_connecting(struct gw_store *st);
/* Counts up each time the control connection is made: the locks of an earlier one are gone. */
unsigned gw_store_epoch(struct gw_store *st);
/* The partition locks 0..n-1 (which gateway delivers which subscriptions): try takes one (1,
 * 0 when another gateway holds it, -1 error); free lists those nobody holds into out (returns
 * how many, or -1). */
int gw_store_lock_try(struct gw_store *st, uint32_t key);
int gw_store_lock_release(struct gw_store *st, uint32_t key);
int gw_store_locks_free(struct gw_store *st, int n, int *out);
/* Gateways alive on this store (this one included), or -1. */
int gw_store_replicas(struct gw_store *st);
/* Removes the event claims older than before_ms (see gw_store_event_add_claimed). */
int gw_store_claims_prune(struct gw_store *st, int64_t before_ms);
/* One subscription by id: 1 and s filled (clear with gw_store_sub_clear), 0 none, -1 error. */
int gw_store_sub_get(struct gw_store *st, const char *id, struct gw_store_sub *s);
/* Tells the other gateways of a change to subscription id (kind as notify_read reports it):
 * inside a transaction, when it commits. 0 or -1. */
int gw_store_notify(struct gw_store *st, char kind, const char *id);
/* The same on the store's thread (the loop does not wait; a failure is not told). */
void gw_store_notify_later(struct gw_store *st, char kind, const char *id);

#endif
