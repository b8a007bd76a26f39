/* Prometheus metrics: counters and gauges registered once at start-up, updated lock-free,
 * rendered in the text exposition format by /metrics. */
#ifndef PL_METRICS_H
#define PL_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct pl_metric pl_metric;

/* Registers a counter (or gauge) `name{labels}`; labels is NULL or `k="v",...`. Register at
 * start-up: registration takes a lock and the registry holds at most 256 series. */
pl_metric *pl_metric_counter(const char *name, const char *labels, const char *help);
pl_metric *pl_metric_gauge(const char *name, const char *labels, const char *help);

void pl_metric_add(pl_metric *m, int64_t delta);
void pl_metric_set(pl_metric *m, int64_t value);
int64_t pl_metric_get(const pl_metric *m);

/* Appends the text format of every registered series to buf (cap bytes) from *len. */
void pl_metrics_render(char *buf, size_t cap, size_t *len);

/* Seconds histogram with fixed buckets (1 ms .. 10 s), lock-free observe. */
typedef struct pl_histogram pl_histogram;
pl_histogram *pl_histogram_new(const char *name, const char *labels, const char *help);
void pl_histogram_observe(pl_histogram *h, double seconds);

#endif
