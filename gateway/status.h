/* State shared between the loop thread (writer) and the HTTP threads (readers): whether the
 * XMPP session is up, the bound JID, and the request/event counters served at /metrics. */
#ifndef GW_STATUS_H
#define GW_STATUS_H

#include <stdatomic.h>
#include <stddef.h>

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
    atomic_long streams_open;
    atomic_long pending; /* undelivered webhook events in the outbox */
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

/* Renders the counters in Prometheus text format. Returns a malloc'd string; caller frees. */
char *gw_status_metrics_text(void);

#endif
