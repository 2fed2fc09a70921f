/* Shared status and metrics. Counters are relaxed atomics: they are read for reporting only. */
#include "status.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct gw_status gw_status;

static pthread_mutex_t jid_lock = PTHREAD_MUTEX_INITIALIZER;
static char bound_jid[3072];
static char down_reason[1024];

/* The strings are written by the loop thread and read by HTTP threads: copied under the lock. */
static void locked_copy(char *dst, size_t cap, const char *src)
{
    pthread_mutex_lock(&jid_lock);
    snprintf(dst, cap, "%s", src ? src : "");
    pthread_mutex_unlock(&jid_lock);
}

void gw_status_set_jid(const char *jid)
{
    locked_copy(bound_jid, sizeof(bound_jid), jid);
}

void gw_status_get_jid(char *buf, size_t len)
{
    locked_copy(buf, len, bound_jid);
}

void gw_status_set_reason(const char *reason)
{
    locked_copy(down_reason, sizeof(down_reason), reason);
}

void gw_status_get_reason(char *buf, size_t len)
{
    locked_copy(buf, len, down_reason);
}

char *gw_status_metrics_text(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (f == NULL)
        return NULL;
#define COUNTER(name, help, field)                                                                 \
    fprintf(f,                                                                                     \
            "# HELP pubsubgw_" name " " help "\n# TYPE pubsubgw_" name " counter\npubsubgw_" name  \
            " %lu\n",                                                                              \
            atomic_load_explicit(&gw_status.field, memory_order_relaxed))
    COUNTER("http_requests_total", "HTTP requests received.", http_requests);
    COUNTER("http_errors_total", "HTTP answers with status >= 400.", http_errors);
    COUNTER("publishes_total", "Items published and acknowledged by the service.", publishes);
    COUNTER("xmpp_iq_sent_total", "IQ requests sent.", iq_sent);
    COUNTER("xmpp_iq_timeouts_total", "IQ requests that got no answer in time.", iq_timeouts);
    COUNTER("xmpp_connects_total", "XMPP sessions established.", xmpp_connects);
    COUNTER("xmpp_disconnects_total", "XMPP sessions lost.", xmpp_disconnects);
    COUNTER("xmpp_events_total", "Pubsub event messages received.", events_received);
    COUNTER("deliveries_total", "Webhook deliveries answered 2xx.", deliveries_ok);
    COUNTER("delivery_failures_total", "Webhook delivery attempts that failed.", deliveries_failed);
    COUNTER("dead_letters_total", "Events moved to dead letters.", dead_letters);
#undef COUNTER
    fprintf(f,
            "# HELP pubsubgw_streams_open Event stream clients connected.\n"
            "# TYPE pubsubgw_streams_open gauge\npubsubgw_streams_open %ld\n",
            atomic_load(&gw_status.streams_open));
    fprintf(f,
            "# HELP pubsubgw_deliveries_pending Webhook events in the outbox, not yet delivered.\n"
            "# TYPE pubsubgw_deliveries_pending gauge\npubsubgw_deliveries_pending %ld\n",
            atomic_load(&gw_status.pending));
    fprintf(f,
            "# HELP pubsubgw_xmpp_up Whether the XMPP session is established.\n"
            "# TYPE pubsubgw_xmpp_up gauge\npubsubgw_xmpp_up %d\n",
            atomic_load(&gw_status.xmpp_up));
    fprintf(f,
            "# HELP pubsubgw_start_time_seconds Start time of the process.\n"
            "# TYPE pubsubgw_start_time_seconds gauge\npubsubgw_start_time_seconds %ld\n",
            atomic_load(&gw_status.started_at));
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}
