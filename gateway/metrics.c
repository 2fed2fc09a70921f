/* Histogram buckets: 1 ms to 10 s, enough for HTTP, XMPP round trips and delivery latency. */
#include "metrics.h"

static const double bounds[GW_HIST_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                               0.25,  0.5,    1,     2.5,  5,     10};

void gw_hist_observe(struct gw_hist *h, int64_t us)
{
    if (us < 0)
        us = 0;
    double s = (double)us / 1e6;
    int i = 0;
    while (i < GW_HIST_BUCKETS && s > bounds[i])
        i++;
    if (i < GW_HIST_BUCKETS)
        atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_us, (unsigned long long)us, memory_order_relaxed);
}

void gw_hist_write(FILE *f, const char *name, const char *labels, struct gw_hist *h)
{
    const char *sep = labels[0] ? "," : "";
    unsigned long cum = 0;
    for (int i = 0; i < GW_HIST_BUCKETS; i++) {
        cum += atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
        fprintf(f, "%s_bucket{%s%sle=\"%g\"} %lu\n", name, labels, sep, bounds[i], cum);
    }
    unsigned long count = atomic_load_explicit(&h->count, memory_order_relaxed);
    fprintf(f, "%s_bucket{%s%sle=\"+Inf\"} %lu\n", name, labels, sep, count);
    fprintf(f, "%s_sum%s%s%s %.6f\n", name, labels[0] ? "{" : "", labels, labels[0] ? "}" : "",
            (double)atomic_load_explicit(&h->sum_us, memory_order_relaxed) / 1e6);
    fprintf(f, "%s_count%s%s%s %lu\n", name, labels[0] ? "{" : "", labels, labels[0] ? "}" : "",
            count);
}
