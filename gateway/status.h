/* State shared between the loop thread (writer) and the HTTP threads (readers): whether the
 * XMPP session is up, the bound JID, and the request/event counters served at /metrics. */
#ifndef GW_STATUS_H
#define GW_STATUS_H

#include "metrics.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* HTTP request durations by route (as registered by the HTTP side) and status class. */
#define GW_STATUS_ROUTES 64

struct gw_status {
    atomic_int xmpp_up;
    atomic_long started_at; /* unix seconds */
    atomic_ulong http_requests;
    atomic_ulong http_errors;
    atomic_ulong publishes;
    atomic_ulong iq_sent;
    atomic_ulong iq_timeouts;
    atomic_ulong xmpp_connects;
    atomic_ulong xmpp_disconnects;
    atomic_ulong events_received;
    atomic_ulong deliveries_ok;
    atomic_ulong deliveries_failed;
    atomic_ulong dead_letters;
    atomic_ulong feed_fetches, feed_not_modified, feed_failures, feed_items;
    atomic_long streams_open;
    atomic_long pending;            /* undelivered webhook events in the outbox */
    atomic_llong oldest_pending_ms; /* unix ms of the oldest undelivered event, 0 when none */
    atomic_ulong attempts_http_error, attempts_network_error, attempts_gone;
    /* the store: its kind ("sqlite", "postgresql"; set once at start), whether it answers, and
     * on a shared store how many gateways it has and how many subscriptions this one delivers */
    const char *store_kind;
    atomic_int store_up;
    atomic_int replicas;
    atomic_int delivering;
    atomic_int partitions;
    /* the store's thread: jobs run, jobs waiting, and the time the loop spent in the store's
     * calls of its own (waiting for the thread to finish what was queued, then its queries) */
    atomic_ulong store_jobs;
    atomic_long store_queue;
    atomic_ullong store_loop_us;
    struct gw_hist delivery_latency;          /* event stored -> callback answered 2xx */
    struct gw_hist xmpp_rtt;                  /* IQ sent -> answered */
    struct gw_hist http[GW_STATUS_ROUTES][4]; /* [route][2xx, 3xx, 4xx, 5xx] */
};

extern struct gw_status gw_status;

/* Sets the JID the server bound (NULL when down). Thread-safe. */
void gw_status_set_jid(const char *jid);
/* Copies the bound JID into buf ("" when none). Thread-safe. */
void gw_status_get_jid(char *buf, size_t len);

/* Sets why the XMPP session is not up (NULL or "" when it is). Thread-safe. */
void gw_status_set_reason(const char *reason);
/* Copies the reason into buf ("" when none). Thread-safe. */
void gw_status_get_reason(char *buf, size_t len);

/* The route names (path templates) the HTTP side will report durations for. */
void gw_status_set_routes(const char *const *names, int n);
/* One answered request of route (index of set_routes) with status, in us. Thread-safe. */
void gw_status_http_observe(int route, int status, int64_t us);
/* The SQLite database file, for the store size gauge (none for PostgreSQL). */
void gw_status_set_store_file(const char *path);

/* Rates over the last minutes (GET /v1/stats): the loop samples the counters every
 * GW_STATS_INTERVAL_S; GW_STATS_POINTS intervals are kept. */
#define GW_STATS_INTERVAL_S 10
#define GW_STATS_POINTS 60
struct gw_stats_point {
    int64_t at_ms; /* the end of the interval (unix ms) */
    int64_t ms;    /* its length */
    unsigned long published, events, delivered, failed, dead_letters;
};
/* Takes a sample (loop thread). Thread-safe. */
void gw_status_sample(int64_t wall_ms);
/* The intervals between samples, oldest first, the last one running up to now_ms: how many were
 * written into out (at most max). Thread-safe. */
int gw_status_history(int64_t now_ms, struct gw_stats_point *out, int max);

/* Renders the counters in Prometheus text format. Returns a malloc'd string; caller frees. */
char *gw_status_metrics_text(void);

#endif
