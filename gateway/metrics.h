/* Latency histograms for /metrics: fixed buckets in seconds (Prometheus conventions), lock-free
 * (relaxed atomics; observed from any thread, read when scraped). */
#ifndef GW_METRICS_H
#define GW_METRICS_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#define GW_HIST_BUCKETS 13

struct gw_hist {
    atomic_ulong bucket[GW_HIST_BUCKETS]; /* observations <= the bound (not cumulative) */
    atomic_ulong count;
    atomic_ullong sum_us;
};

/* Records one observation of us microseconds. */
void gw_hist_observe(struct gw_hist *h, int64_t us);

/* Writes the _bucket (cumulative, le="…", +Inf), _sum and _count lines of name with the extra
 * labels (e.g. `route="…",code="2xx"`, or "" for none). HELP and TYPE are the caller's. */
void gw_hist_write(FILE *f, const char *name, const char *labels, struct gw_hist *h);

#endif
