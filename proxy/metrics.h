/*
 * Prometheus metrics: counters, gauges and histograms with a fixed set of
 * label names per family, rendered as text exposition on the diagnostics
 * port. Single-threaded (the loop). Label values are copied once when a
 * series is first seen; afterwards updates allocate nothing. Callers must
 * keep label values low-cardinality (routes, statuses, reasons — never a
 * URL, a client id or a token).
 */
#ifndef PROXY_METRICS_H
#define PROXY_METRICS_H

#include <stddef.h>

struct evbuffer;
struct metric;

enum metric_kind { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

/* Register (or find, when called again with the same name) a family.
 * labels is a comma-separated list of label names ("method,route,status"),
 * or "" for none. Buckets are for histograms only (NULL = latency defaults
 * in seconds). */
struct metric *metrics_counter(const char *name, const char *help, const char *labels);
struct metric *metrics_gauge(const char *name, const char *help, const char *labels);
struct metric *metrics_histogram(const char *name, const char *help, const char *labels,
    const double *buckets, size_t n_buckets);

/* Update the series named by the label values (as many as the family has
 * label names, in order, as const char *). */
void metrics_add(struct metric *m, double v, ...);
void metrics_set(struct metric *m, double v, ...);
void metrics_observe(struct metric *m, double v, ...);
/* Read a series' value (counters/gauges) or count (histograms); 0 if unseen. */
double metrics_value(struct metric *m, ...);

/* Append the text exposition of every family. */
void metrics_render(struct evbuffer *out);
/* Free every family (at exit and between unit tests). */
void metrics_reset(void);

#endif
