/* Webhook subscriptions: the registry (durable in the store), one XMPP subscription per node
 * shared by its callbacks, intent verification, replay, catch-up after downtime, and the
 * delivery of every event as a signed POST with retries and dead letters. Loop thread only. */
#ifndef GW_WEBHOOKS_H
#define GW_WEBHOOKS_H

#include "cmd.h"
#include "config.h"
#include "sender.h"
#include "store.h"

#include <jansson.h>

struct gw_loop;
struct gw_hooks;

/* Event kinds a subscription can ask for ("events" in the API). */
enum {
    GW_EV_ITEMS = 1 << 0,        /* item.published */
    GW_EV_RETRACT = 1 << 1,      /* item.retracted */
    GW_EV_PURGE = 1 << 2,        /* node.purged */
    GW_EV_DELETE = 1 << 3,       /* node.deleted */
    GW_EV_SUBSCRIPTION = 1 << 4, /* subscription.changed */
    GW_EV_CONFIG = 1 << 5,       /* node.configured */
    GW_EV_ALL = (1 << 6) - 1,
};

/* Maps an API event name ("items", "retract", …) to its bit; 0 when unknown. */
unsigned gw_event_kind_bit(const char *name);

/* How the registry reaches XMPP: runs a command (GW_OP_SUBSCRIBE, …) whose done callback
 * settles it on the loop thread. */
typedef void (*gw_xmpp_exec_fn)(void *arg, struct gw_cmd *cmd);

/* Loads the stored subscriptions. NULL on failure. cfg, store and sender must outlive it. */
struct gw_hooks *gw_hooks_new(const struct gw_config *cfg, struct gw_loop *loop,
                              struct gw_store *store, struct gw_sender *sender,
                              gw_xmpp_exec_fn exec, void *exec_arg);
void gw_hooks_free(struct gw_hooks *h);

/* Runs a registry command (GW_OP_IS_REGISTRY). */
void gw_hooks_execute(struct gw_hooks *h, struct gw_cmd *cmd);

/* Takes notifications (array of event objects, borrowed): persists them for every matching
 * subscription, then starts their delivery. */
void gw_hooks_on_events(struct gw_hooks *h, json_t *events);

/* Ends every event stream (their responses finish once drained); for shutdown. */
void gw_hooks_close_streams(struct gw_hooks *h);

/* 1 when the outbox holds --max-pending undelivered events: publishing and new subscriptions
 * are refused (503) until deliveries catch up. */
int gw_hooks_backlog_full(const struct gw_hooks *h);

/* For the shutdown: no delivery starts any more; returns how many are in flight (their answers
 * are still taken, so that they are not made again at the next start). */
int gw_hooks_quiesce(struct gw_hooks *h);

/* A node was found to exist (created through the gateway, or found by a publish): when its
 * subscriptions wait for it to be created again, they are subscribed at once. */
void gw_hooks_on_node_appeared(struct gw_hooks *h, const char *service, const char *node);

/* The XMPP session came up: re-check the XMPP subscriptions and catch up on missed items. */
void gw_hooks_on_xmpp_up(struct gw_hooks *h);
/* The XMPP session went down: every node must be confirmed again. */
void gw_hooks_on_xmpp_down(struct gw_hooks *h);

/* "2026-01-01T00:00:00.000Z"; buf holds GW_ISO_LEN bytes (room for any struct tm). */
#define GW_ISO_LEN 96
void gw_iso_time(int64_t ms, char *buf, size_t len);
/* Unix time in milliseconds. */
int64_t gw_wall_ms(void);

#endif
