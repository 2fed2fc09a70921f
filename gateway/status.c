/* Shared status and metrics. Counters are relaxed atomics: they are read for reporting only. */
#include "status.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

/* The counters as sampled, in a ring of GW_STATS_POINTS + 1 (one more sample than intervals). */
struct sample {
    int64_t at_ms;
    unsigned long published, events, delivered, failed, dead_letters;
};
static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sample ring[GW_STATS_POINTS + 1];
static int ring_head, ring_count; /* head: the next slot written */

static void take(struct sample *s, int64_t at_ms)
{
    s->at_ms = at_ms;
    s->published = atomic_load_explicit(&gw_status.publishes, memory_order_relaxed);
    s->events = atomic_load_explicit(&gw_status.events_received, memory_order_relaxed);
    s->delivered = atomic_load_explicit(&gw_status.deliveries_ok, memory_order_relaxed);
    s->failed = atomic_load_explicit(&gw_status.deliveries_failed, memory_order_relaxed);
    s->dead_letters = atomic_load_explicit(&gw_status.dead_letters, memory_order_relaxed);
}

void gw_status_sample(int64_t wall_ms)
{
    pthread_mutex_lock(&stats_lock);
    take(&ring[ring_head], wall_ms);
    ring_head = (ring_head + 1) % (GW_STATS_POINTS + 1);
    if (ring_count < GW_STATS_POINTS + 1)
        ring_count++;
    pthread_mutex_unlock(&stats_lock);
}

int gw_status_history(int64_t now_ms, struct gw_stats_point *out, int max)
{
    struct sample s[GW_STATS_POINTS + 2];
    int n = 0;
    pthread_mutex_lock(&stats_lock);
    for (int i = 0; i < ring_count; i++)
        s[n++] =
            ring[(ring_head - ring_count + i + 2 * (GW_STATS_POINTS + 1)) % (GW_STATS_POINTS + 1)];
    pthread_mutex_unlock(&stats_lock);
    take(&s[n++], now_ms);
    int from = n - 1 - max > 0 ? n - 1 - max : 0, k = 0;
    for (int i = from + 1; i < n; i++, k++) {
        const struct sample *a = &s[i - 1], *b = &s[i];
        out[k] = (struct gw_stats_point){b->at_ms,
                                         b->at_ms - a->at_ms,
                                         b->published - a->published,
                                         b->events - a->events,
                                         b->delivered - a->delivered,
                                         b->failed - a->failed,
                                         b->dead_letters - a->dead_letters};
    }
    return k;
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

static const char *const *route_names;
static int nroutes;
static char store_path[1024];

void gw_status_set_routes(const char *const *names, int n)
{
    route_names = names;
    nroutes = n < GW_STATUS_ROUTES ? n : GW_STATUS_ROUTES;
}

void gw_status_http_observe(int route, int status, int64_t us)
{
    int cls = status / 100 - 2;
    if (route < 0 || route >= nroutes || cls < 0 || cls > 3)
        return;
    gw_hist_observe(&gw_status.http[route][cls], us);
}

void gw_status_set_store_file(const char *path)
{
    locked_copy(store_path, sizeof(store_path), path);
}

/* Bytes of the store's files (database and its log); -1 for a store that is no file. */
static long long store_bytes(void)
{
    char db[1024], path[1100];
    locked_copy(db, sizeof(db), store_path);
    if (db[0] == '\0')
        return -1;
    long long total = 0;
    const char *suffixes[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        struct stat st;
        snprintf(path, sizeof(path), "%s%s", db, suffixes[i]);
        if (stat(path, &st) == 0)
            total += st.st_size;
    }
    return total;
}

static void write_histograms(FILE *f)
{
    fprintf(f, "# HELP pubsubgw_http_request_duration_seconds Time to answer an HTTP request.\n"
               "# TYPE pubsubgw_http_request_duration_seconds histogram\n");
    static const char *const classes[] = {"2xx", "3xx", "4xx", "5xx"};
    for (int r = 0; r < nroutes; r++) {
        for (int c = 0; c < 4; c++) {
            if (atomic_load_explicit(&gw_status.http[r][c].count, memory_order_relaxed) == 0)
                continue;
            char labels[200];
            snprintf(labels, sizeof(labels), "route=\"%s\",code=\"%s\"", route_names[r],
                     classes[c]);
            gw_hist_write(f, "pubsubgw_http_request_duration_seconds", labels,
                          &gw_status.http[r][c]);
        }
    }
    fprintf(f, "# HELP pubsubgw_delivery_latency_seconds From an event stored to its callback's "
               "2xx.\n# TYPE pubsubgw_delivery_latency_seconds histogram\n");
    gw_hist_write(f, "pubsubgw_delivery_latency_seconds", "", &gw_status.delivery_latency);
    fprintf(f, "# HELP pubsubgw_xmpp_request_duration_seconds Round trip of an XMPP request.\n"
               "# TYPE pubsubgw_xmpp_request_duration_seconds histogram\n");
    gw_hist_write(f, "pubsubgw_xmpp_request_duration_seconds", "", &gw_status.xmpp_rtt);
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
    COUNTER("feed_fetches_total", "Feed fetches answered or failed.", feed_fetches);
    COUNTER("feed_not_modified_total", "Feed fetches answered 304 Not Modified.",
            feed_not_modified);
    COUNTER("feed_failures_total", "Feed fetches that failed or brought no feed.", feed_failures);
    COUNTER("feed_items_total", "Items published from feeds.", feed_items);
    COUNTER("store_jobs_total", "Store jobs run on the store's own thread.", store_jobs);
#undef COUNTER
    fprintf(f,
            "# HELP pubsubgw_streams_open Event stream clients connected.\n"
            "# TYPE pubsubgw_streams_open gauge\npubsubgw_streams_open %ld\n",
            atomic_load(&gw_status.streams_open));
    fprintf(f,
            "# HELP pubsubgw_delivery_attempts_total Webhook delivery attempts by outcome.\n"
            "# TYPE pubsubgw_delivery_attempts_total counter\n"
            "pubsubgw_delivery_attempts_total{outcome=\"delivered\"} %lu\n"
            "pubsubgw_delivery_attempts_total{outcome=\"http_error\"} %lu\n"
            "pubsubgw_delivery_attempts_total{outcome=\"network_error\"} %lu\n"
            "pubsubgw_delivery_attempts_total{outcome=\"gone\"} %lu\n",
            atomic_load(&gw_status.deliveries_ok), atomic_load(&gw_status.attempts_http_error),
            atomic_load(&gw_status.attempts_network_error), atomic_load(&gw_status.attempts_gone));
    long long oldest = atomic_load(&gw_status.oldest_pending_ms);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    long long now_ms = (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    fprintf(f,
            "# HELP pubsubgw_deliveries_oldest_pending_age_seconds Age of the oldest undelivered "
            "event (0 when none; updated every 15 s).\n"
            "# TYPE pubsubgw_deliveries_oldest_pending_age_seconds gauge\n"
            "pubsubgw_deliveries_oldest_pending_age_seconds %.3f\n",
            oldest > 0 && now_ms > oldest ? (double)(now_ms - oldest) / 1000.0 : 0.0);
    fprintf(f,
            "# HELP pubsubgw_store_jobs_queued Store jobs waiting for the store's thread.\n"
            "# TYPE pubsubgw_store_jobs_queued gauge\npubsubgw_store_jobs_queued %ld\n"
            "# HELP pubsubgw_store_loop_seconds_total Time the event loop spent in store calls "
            "of its own (the hot paths run on the store's thread).\n"
            "# TYPE pubsubgw_store_loop_seconds_total counter\n"
            "pubsubgw_store_loop_seconds_total %.6f\n",
            atomic_load(&gw_status.store_queue),
            (double)atomic_load(&gw_status.store_loop_us) / 1e6);
    long long bytes = store_bytes();
    if (bytes >= 0)
        fprintf(f,
                "# HELP pubsubgw_store_size_bytes Bytes of the store's files (SQLite).\n"
                "# TYPE pubsubgw_store_size_bytes gauge\npubsubgw_store_size_bytes %lld\n",
                bytes);
    write_histograms(f);
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
