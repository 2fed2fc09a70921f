/* Shared between the registry (webhooks.c) and the delivery engine (delivery.c). */
#ifndef GW_WEBHOOKS_INT_H
#define GW_WEBHOOKS_INT_H

#include "hmap.h"
#include "sign.h"
#include "stream.h"
#include "webhooks.h"

#include <stdatomic.h>
#include <stdint.h>

struct hnode;

/* The most events one batched POST carries. */
#define GW_BATCH_MAX 1000

struct hsub {
    char *id, *node, *callback;
    char *service; /* shared with the other subscriptions of the service: never written */
    char *secret;  /* webhooks: until stored (then NULL, key signs); WebSub: hub.secret */
    unsigned char key[GW_KEY_MAX];
    int keylen;
    unsigned events;
    int64_t created_ms;
    struct hnode *hn;         /* its node (its hooks: hn->hooks) */
    struct hsub *node_next;   /* the node's callbacks */
    struct hsub *prev, *next; /* every subscription, oldest first */
    struct hsub *id_next;     /* the next in its chain of the index by id (webhooks.c) */
    /* delivery state; the small fields together, so that no padding comes between them (a
     * subscription's size is what a million of them cost) */
    int inflight;
    int dead_added;     /* dead letters since its count was last capped */
    int attempts_added; /* attempts logged since its count was last capped */
    /* its next deliveries as read from the store, in q (delivery.c; at most 1,000) */
    uint16_t qn, qpos;
    int taking; /* deliveries for it in intakes not yet committed (counted against its cap) */
    /* batched delivery (0: one event per POST): events and bytes per POST, wait for company */
    int batch_max;
    int batch_wait_ms;
    unsigned batch_ready : 1; /* the batch waited its max_wait_ms: it goes now */
    unsigned gone : 1;        /* removed while a delivery was in flight: freed when it ends */
    unsigned owned : 1;       /* this gateway delivers it (always, unless the store is shared) */
    unsigned fetching : 1;    /* its next deliveries are being read (on the store's thread) */
    unsigned stale : 1;       /* ... and what comes back is out of date (the queue was reset) */
    unsigned rekick : 1;      /* ... and it was kicked meanwhile (more may have come) */
    unsigned reread : 1;      /* read again for a batch that the last read cut short */
    unsigned creating : 1;    /* its creation is being stored: not shown, not yet answered */
    unsigned deleting : 1;    /* its removal is being stored: no delivery starts */
    size_t batch_bytes;
    int64_t done_seq; /* delivered up to here; the outbox rows go in the next batch */
    int64_t pending;  /* live deliveries in the outbox */
    uint64_t timer;
    uint64_t mark; /* the intake that last gave it a delivery */
    struct gw_store_delivery *q;
    /* a WebSub subscription (websub.c): its topic, else NULL; secret is then hub.secret ("":
     * unsigned) */
    char *topic;
    int64_t expires_ms; /* unix ms when the lease ends */
    char alg[8];        /* X-Hub-Signature algorithm: sha1, sha256, sha384, sha512 */
    char format[8];     /* the topic's content type: atom, rss, json */
    uint64_t lease_timer;
};

struct history_entry {
    char id[40];
    char *text; /* the SSE frame */
    size_t len;
};

/* A (service, node) the gateway is subscribed to: it has callbacks or event streams. */
struct hnode {
    char *service, *node;
    struct hsub *subs;
    int nsubs;
    struct gw_stream *streams;
    int nstreams;
    struct history_entry *history; /* ring of the last cfg->sse_history frames */
    int hhead, hcount, hcap;
    size_t hbytes;  /* bytes of the frames held */
    int subscribed; /* the service confirmed the XMPP subscription in this session */
    /* synchronisation (nodesync.c) */
    struct gw_hooks *hooks;
    int missing;       /* the service says the node does not exist (deleted): node_deleted */
    int syncing;       /* a catch-up or baseline is under way: live events wait in held */
    unsigned sync_gen; /* counts synchronisations: a late answer for an earlier one is ignored */
    int probing;       /* a subscribe to find out whether it exists again is under way */
    json_t *held;      /* live events waiting for the catch-up, oldest first */
    uint64_t probe_timer;
    int probe_ms;
    int seen_added; /* seen item ids stored since the node's were last pruned */
    int had_subs;   /* callbacks followed it (not only streams) */
};

struct gw_hooks {
    const struct gw_config *cfg;
    struct gw_loop *loop;
    struct gw_store *store;
    struct gw_sender *sender;
    gw_xmpp_exec_fn exec;
    void *exec_arg;
    /* id -> hsub: chains through hsub.id_next, so a subscription costs the index one pointer
     * and a share of a slot (a copied key per entry would cost more than the rest of it) */
    struct hsub **ids;
    size_t nids, nsubs;
    struct gw_hmap *nodes; /* service NUL node -> hnode */
    struct hsub *first, *last;
    uint64_t heartbeat_timer;
    uint64_t dead_age_timer; /* removes dead letters past --dead-letter-max-age */
    int64_t pending_total;
    /* deliveries answered 2xx whose outbox rows are still to be removed (see delivery.c) */
    struct done_entry {
        int64_t seq, event;
    } * done;
    size_t ndone, capdone;
    /* delivery attempts waiting to be logged in the store, with the next batch */
    struct attempt_rec {
        char *sub_id, *event_id, *error, *answer;
        int64_t at_ms, duration_ms;
        int number;
        long status;
    } * recs;
    size_t nrec, caprec;
    uint64_t flush_timer;
    int flushing;          /* batches of removals and attempts on the store's thread now */
    int flush_busy;        /* rows came fast before the last batch: the next one waits longer */
    int64_t flush_last_ms; /* when the last batch was taken */
    /* counts the XMPP unsubscriptions sent when a node's last user left: a subscription being
     * created across one must subscribe again (see hookcmd.c) */
    uint64_t unsubscribes;
    /* several gateways on one store (cluster.c) */
    int shared;
    int notify_fd;
    unsigned epoch;
    int replicas, owned;  /* owned: subscriptions this gateway delivers */
    unsigned char *parts; /* the partitions this gateway holds */
    int nparts;
    uint64_t cluster_timer;
    unsigned char cluster_asking, cluster_again;  /* a tick waits for the store's answer */
    unsigned char notify_watched, notify_reading; /* the socket watched; a read under way */
    struct gw_hmap *loading;  /* subscriptions added elsewhere being read (cluster.c) */
    int stopping;             /* the gateway is stopping: no delivery starts */
    json_t *spool;            /* events waiting for a shared store to be back (webhooks.c) */
    atomic_int intake_broken; /* a live intake failed: those behind it go to the spool too */
    /* ids of subscriptions whose rows are gone from the store while intakes that name them may
     * still be queued: those skip them (the store's thread alone reads and writes it) */
    struct gw_hmap *removed;
    uint64_t intake_mark;
    size_t spooled;
    int draining;         /* the spool is being stored: live events wait in it meanwhile */
    int sync_after_drain; /* catch up on the nodes once it is */
    struct feed *feeds;   /* feeds polled into nodes (feeds.c) */
};

/* delivery.c */
/* The wait before attempt attempts + 1: the callback's Retry-After (429/503, at most an hour),
 * else exponential backoff with jitter. */
int64_t gw_retry_delay_ms(const struct gw_config *cfg, int attempts, long status,
                          long retry_after_s);
/* Forgets where s's deliveries stood: the next looks from its oldest live one again (a dead
 * letter made live, or the subscription just taken over). */
void gw_delivery_rewind(struct gw_hooks *h, struct hsub *s);
/* Starts the next delivery of s when it is idle and has one due (or arms its retry timer). */
void gw_delivery_kick(struct gw_hooks *h, struct hsub *s);
/* Kicks s in delay_ms, unless a timer of its own is set already. */
void gw_delivery_kick_later(struct gw_hooks *h, struct hsub *s, int64_t delay_ms);
/* Stops s's delivery activity; returns 1 when s can be freed now, 0 when a delivery in flight
 * will free it. */
int gw_delivery_detach(struct gw_hooks *h, struct hsub *s);
void gw_hsub_free(struct hsub *s);
/* Counts a new dead letter of s, and keeps s's dead letters within --dead-letter-max. */
void gw_dead_letter_added(struct gw_hooks *h, struct hsub *s);
/* Moves s's count of live deliveries, and the total with it, by n. */
void gw_pending_add(struct gw_hooks *h, struct hsub *s, int64_t n);
/* Removes the outbox rows of the deliveries answered 2xx since the last call, in one
 * transaction; _in_tx within the caller's. */
void gw_delivery_flush(struct gw_hooks *h);
/* Reading s's next deliveries (up to limit, its queue being empty) in parts: started on the loop
 * (s is kept while it runs), run on any thread, done on the loop (the queue filled, s kicked;
 * f freed). can_prefetch: s could take such a read now; queue_max: the most one reads. */
struct gw_fetch;
struct gw_fetch *gw_delivery_fetch_new(struct gw_hooks *h, struct hsub *s, int limit);
void gw_delivery_fetch_run(struct gw_fetch *f);
void gw_delivery_fetch_done(struct gw_fetch *f);
int gw_delivery_can_prefetch(const struct gw_hooks *h, const struct hsub *s);
int gw_delivery_queue_max(const struct hsub *s);
void gw_delivery_flush_in_tx(struct gw_hooks *h);
/* The same in parts: taken from the loop's buffers (NULL when there is nothing), written (on
 * any thread, inside the caller's transaction), freed. */
struct gw_flush;
struct gw_flush *gw_delivery_flush_take(struct gw_hooks *h);
void gw_delivery_flush_run(struct gw_flush *f);
void gw_delivery_flush_free(struct gw_flush *f);

/* webhooks.c */
/* Removes a subscription: from the store in one transaction (a job on the store's thread), then
 * from the registry (and the XMPP subscription when it was the node's last). Meanwhile it is
 * marked deleting: no delivery starts, and events still give it deliveries, so that nothing is
 * lost when the store refuses (then nothing changes, and its deliveries go on: at once, or in 5 s
 * when done is NULL, as after a 410). done (may be NULL) is told on the loop with its id and 0 or
 * -1; a second removal of one being removed waits for the first and tells its outcome. Returns -1
 * only when out of memory (nothing started). */
int gw_hooks_remove(struct gw_hooks *h, struct hsub *s, const char *why,
                    void (*done)(struct gw_hooks *h, const char *id, int rc, void *arg), void *arg);
/* Takes an id out of h->removed (on the store's thread) once every intake queued before now
 * has run: the registry no longer names it. */
void gw_hooks_unremove(struct gw_hooks *h, const char *id);
/* Removes s from memory only (another gateway removed it from the store); unsubscribe ends the
 * node's XMPP subscription when it was the last user. */
void gw_hooks_forget(struct gw_hooks *h, struct hsub *s, int unsubscribe);
/* A subscription object from its parts (websub: the stored WebSub description, or NULL for a
 * webhook); NULL when out of memory or the secret or description is malformed. */
struct hsub *gw_hsub_new(const char *id, const char *service, const char *node,
                         const char *callback, const char *secret, unsigned events,
                         int64_t created_ms, const char *websub);
/* A stored subscription's object (its WebSub description and delivery options read too), or
 * NULL when out of memory or something stored is malformed. */
struct hsub *gw_hsub_from_store(const struct gw_store_sub *st);
/* A webhook subscription signs with its decoded key alone: once stored (and, when generated,
 * shown), its secret text leaves memory (a WebSub subscription keeps hub.secret, which it signs
 * with). */
void gw_hsub_drop_secret(struct hsub *s);
/* Lets go of a subscription's service name (shared, see gw_hsub_new). */
void gw_hsub_service_unref(char *service);
/* Sets s's batch setting from {"max_events", "max_bytes", "max_wait_ms"}; 0, or -1 when out of
 * bounds. */
int gw_hsub_set_batch(struct hsub *s, const json_t *batch);
/* s's delivery options as stored (JSON text to free), or NULL when it has none. */
char *gw_hsub_options(const struct hsub *s);
/* Registers a stored subscription in memory; 0 or -1. */
int gw_hooks_attach(struct gw_hooks *h, struct hsub *s);
struct hnode *gw_hooks_find_node(struct gw_hooks *h, const char *service, const char *node);
/* The subscription with this id, or NULL. */
struct hsub *gw_hooks_sub(const struct gw_hooks *h, const char *id);
/* The entry of an event's node ("service", "node" members), or NULL. */
struct hnode *gw_hooks_event_node(struct gw_hooks *h, json_t *ev);
/* The API view of a subscription (never the secret). */
json_t *gw_hsub_json(const struct hsub *s);
/* An XMPP command of the registry's own, settled through done(arg). */
struct gw_cmd *gw_hooks_xmpp_cmd(enum gw_op op, const char *service, const char *node,
                                 void (*done)(struct gw_cmd *), void *arg);
/* Stores events for the matching subscriptions (only_sub: just that one) and starts their
 * delivery, on the store's thread, in a transaction of its own; flag, when set, is added to
 * each event as true ("replay", "test"). done(h, rc, arg) is told on the loop once it is
 * committed (deliveries started) or failed. Returns -1 only when out of memory (nothing
 * started). */
int gw_hooks_intake_submit(struct gw_hooks *h, json_t *events, char (*ids)[40], const char *flag,
                           struct hsub *only_sub,
                           void (*done)(struct gw_hooks *h, int rc, void *arg), void *arg);
/* An intake to be stored inside another job's transaction: built now (on the loop, from the
 * registry), stored by gw_intake_store on the store's thread, finished on the loop by
 * gw_intake_finish (which frees it) with whether the transaction committed. */
struct intake;
struct intake *gw_intake_new(struct gw_hooks *h, json_t *events, const char *flag,
                             struct hsub *only_sub);
int gw_intake_store(struct intake *in);
void gw_intake_finish(struct intake *in, int committed);
/* A node's items after a (re)subscription, on the store's thread: with baseline only marked
 * seen; else those never turned into events become events ("catchup"), oldest first. Then the
 * node's seen ids are pruned to prune_keep and done(missed) runs on the loop. 0, or -1 when out
 * of memory (done is then not called). */
int gw_hooks_catchup(struct gw_hooks *h, const char *service, const char *node, json_t *items,
                     int baseline, int prune_keep,
                     void (*done)(struct gw_hooks *h, size_t missed, void *arg), void *arg);
/* The node's entry, created (without callbacks) when absent; NULL when out of memory. */
struct hnode *gw_hooks_node(struct gw_hooks *h, const char *service, const char *node);
/* Frees the node's entry (and ends the XMPP subscription) once nothing uses it. */
void gw_hooks_node_release(struct gw_hooks *h, struct hnode *hn);
/* Frees the node's entry once nothing uses it, leaving the XMPP subscription as it is. */
void gw_hooks_node_drop(struct gw_hooks *h, struct hnode *hn);

/* Puts the events that waited for the store into the outbox, oldest first, on the store's
 * thread; what fails again waits for the next call. */
void gw_hooks_spool_drain(struct gw_hooks *h);
/* Delivers events taken live from XMPP to the outbox and the streams. */
void gw_hooks_deliver_live(struct gw_hooks *h, json_t *events);
/* Done callback of fire-and-forget XMPP commands: logs failures, frees the command. */
void gw_hooks_background_done(struct gw_cmd *cmd);

/* hookcmd.c */
/* Creates s (built by the caller, owned from here on) as the API does without verification or
 * replay: follows its node, stores it, and finishes cmd with 201 and the subscription, or with
 * the failure. */
void gw_hooks_create(struct gw_hooks *h, struct gw_cmd *cmd, struct hsub *s);
/* Percent-encodes s into out (cap bytes); unreserved characters stay. */
void gw_url_encode(const char *s, char *out, size_t cap);

/* websub.c */
/* POST /websub, once the HTTP layer validated it. */
void gw_websub_execute(struct gw_hooks *h, struct gw_cmd *cmd);
/* Reads the stored description (topic, lease end, algorithm) into s; 0 or -1. */
int gw_websub_parse(struct hsub *s, const char *websub);
/* The description of s as stored (JSON text, free with free()), or NULL when out of memory. */
char *gw_websub_describe(const struct hsub *s);
/* Starts (again) the timer that ends s's lease. */
void gw_websub_arm(struct gw_hooks *h, struct hsub *s);
/* The distribution of one stored event to WebSub subscription s: the body (an Atom feed of the
 * new entry, malloc'd) and its headers, written into hdr (4 lines, each hdrlen bytes). 0, or -1
 * when the event has nothing to distribute. */
int gw_websub_compose(const struct gw_hooks *h, const struct hsub *s, const char *event_body,
                      char **body, char hdr[][2200], size_t hdrlen);
/* The feed fetched from url, if any: its node, service and format ("atom", "rss", "json"). */
int gw_feeds_topic(struct gw_hooks *h, const char *url, const char **service, const char **node,
                   const char **format);
/* Another gateway renewed subscription id: its secret and lease are read again. */
void gw_websub_renewed(struct gw_hooks *h, struct hsub *s);

/* feeds.c */
int gw_feeds_load(struct gw_hooks *h);
void gw_feeds_free(struct gw_hooks *h);
void gw_feeds_execute(struct gw_hooks *h, struct gw_cmd *cmd);
/* hub.mode=publish: fetches the feeds of url now (cmd: 202, or 404 when none). */
void gw_feeds_ping(struct gw_hooks *h, struct gw_cmd *cmd, const char *url);
/* Another replica was pinged for url. */
void gw_feeds_pinged(struct gw_hooks *h, const char *url);
/* Another replica added or removed a feed. */
void gw_feeds_reload(struct gw_hooks *h);

/* nodesync.c */
/* Holds a live event of hn while it is being synchronised; returns 1 when held. */
int gw_nodesync_hold(struct gw_hooks *h, struct hnode *hn, json_t *event);
/* Fetches hn's items: baseline = 1 marks them seen (a node newly followed), 0 catches up on
 * those not seen. Live events of hn are held until it is done. */
void gw_nodesync_start(struct gw_hooks *h, struct hnode *hn, int baseline);
/* Subscribes hn again (its XMPP subscription may have been ended meanwhile), then catches up;
 * its live events are held until then. */
void gw_nodesync_resubscribe(struct gw_hooks *h, struct hnode *hn);
/* A node.deleted event was delivered: the node's subscriptions wait for it to exist again. */
void gw_nodesync_deleted(struct gw_hooks *h, struct hnode *hn);
/* Catches up on every followed node (the store lost what came meanwhile). */
void gw_nodesync_all(struct gw_hooks *h);
/* Releases what hn holds for synchronisation, before it is freed. */
void gw_nodesync_forget(struct gw_hooks *h, struct hnode *hn);

/* cluster.c: several gateways on one shared store; each call does nothing when alone. */
void gw_cluster_start(struct gw_hooks *h);
void gw_cluster_stop(struct gw_hooks *h);
/* s arrives: delivered here when its partition is this gateway's. */
void gw_cluster_adopt(struct gw_hooks *h, struct hsub *s);
/* 1 when this gateway does the work of id (alone, or its partition is held here). */
int gw_cluster_owns(const struct gw_hooks *h, const char *id);
/* s leaves. */
void gw_cluster_release(struct gw_hooks *h, struct hsub *s);
/* Every 15 s: old claims go, backlog counts are read again. */
void gw_cluster_housekeeping(struct gw_hooks *h);

/* streams.c */
void gw_streams_publish(struct gw_hooks *h, json_t *events, char (*ids)[40],
                        const char *const *texts);
void gw_streams_attach(struct gw_hooks *h, struct hnode *hn, struct gw_stream *st);
void gw_streams_open(struct gw_hooks *h, struct gw_cmd *cmd);
void gw_streams_heartbeat_start(struct gw_hooks *h);
void gw_streams_node_free(struct hnode *hn);

#endif
