/*
 * Metric families and their series (see metrics.h). Families live in a
 * list, series in a per-family list found by comparing label values; with
 * the low cardinality we allow, a linear scan beats hashing. Nothing here
 * may see a secret: label values are chosen by our code, not by clients.
 */
#include "proxy/metrics.h"

#include <event2/buffer.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

#define METRICS_MAX_LABELS 6
#define METRICS_MAX_SERIES 4096

struct series {
	struct series *next;
	char *values[METRICS_MAX_LABELS];
	double value;        /* counter/gauge value, histogram sum */
	unsigned long count; /* histogram */
	unsigned long *bucket_counts;
};

struct metric {
	struct metric *next;
	enum metric_kind kind;
	char *name;
	char *help;
	char *label_names[METRICS_MAX_LABELS];
	size_t n_labels;
	double *buckets;
	size_t n_buckets;
	struct series *series;
	struct series *tail;
	struct series *last; /* the series found last: the hot paths repeat themselves */
	size_t n_series;
};

static struct metric *families;
static struct metric *families_tail;

static const double default_buckets[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
	0.25, 0.5, 1, 2.5, 5, 10 };

static struct metric *
metrics_register(enum metric_kind kind, const char *name, const char *help, const char *labels,
    const double *buckets, size_t n_buckets)
{
	struct metric *m;
	char *copy, *tok, *save = NULL;

	for (m = families; m != NULL; m = m->next) {
		if (strcmp(m->name, name) == 0)
			return m;
	}
	m = xcalloc(1, sizeof *m);
	m->kind = kind;
	m->name = xstrdup(name);
	m->help = xstrdup(help);
	copy = xstrdup(labels);
	for (tok = strtok_r(copy, ",", &save); tok != NULL && m->n_labels < METRICS_MAX_LABELS;
	     tok = strtok_r(NULL, ",", &save))
		m->label_names[m->n_labels++] = xstrdup(tok);
	free(copy);
	if (kind == METRIC_HISTOGRAM) {
		if (buckets == NULL) {
			buckets = default_buckets;
			n_buckets = sizeof default_buckets / sizeof default_buckets[0];
		}
		m->buckets = xcalloc(n_buckets, sizeof *m->buckets);
		memcpy(m->buckets, buckets, n_buckets * sizeof *buckets);
		m->n_buckets = n_buckets;
	}
	if (families_tail != NULL)
		families_tail->next = m;
	else
		families = m;
	families_tail = m;
	return m;
}

struct metric *
metrics_counter(const char *name, const char *help, const char *labels)
{
	return metrics_register(METRIC_COUNTER, name, help, labels, NULL, 0);
}

struct metric *
metrics_gauge(const char *name, const char *help, const char *labels)
{
	return metrics_register(METRIC_GAUGE, name, help, labels, NULL, 0);
}

struct metric *
metrics_histogram(const char *name, const char *help, const char *labels, const double *buckets,
    size_t n_buckets)
{
	return metrics_register(METRIC_HISTOGRAM, name, help, labels, buckets, n_buckets);
}

/* Find the series for the label values in ap, creating it when create. */
static bool
metrics_series_is(const struct metric *m, const struct series *s, const char *const *values)
{
	for (size_t i = 0; i < m->n_labels; i++) {
		if (strcmp(s->values[i], values[i]) != 0)
			return false;
	}
	return true;
}

static struct series *
metrics_series(struct metric *m, bool create, va_list ap)
{
	const char *values[METRICS_MAX_LABELS];
	struct series *s;
	size_t i;

	for (i = 0; i < m->n_labels; i++) {
		values[i] = va_arg(ap, const char *);
		if (values[i] == NULL)
			values[i] = "";
	}
	if (m->last != NULL && metrics_series_is(m, m->last, values))
		return m->last;
	for (s = m->series; s != NULL; s = s->next) {
		if (metrics_series_is(m, s, values))
			return m->last = s;
	}
	if (!create || m->n_series >= METRICS_MAX_SERIES)
		return NULL;
	s = xcalloc(1, sizeof *s);
	for (i = 0; i < m->n_labels; i++)
		s->values[i] = xstrdup(values[i]);
	if (m->kind == METRIC_HISTOGRAM)
		s->bucket_counts = xcalloc(m->n_buckets, sizeof *s->bucket_counts);
	if (m->tail != NULL)
		m->tail->next = s;
	else
		m->series = s;
	m->tail = s;
	m->n_series++;
	return m->last = s;
}

void
metrics_add(struct metric *m, double v, ...)
{
	struct series *s;
	va_list ap;

	va_start(ap, v);
	s = metrics_series(m, true, ap);
	va_end(ap);
	if (s != NULL)
		s->value += v;
}

void
metrics_set(struct metric *m, double v, ...)
{
	struct series *s;
	va_list ap;

	va_start(ap, v);
	s = metrics_series(m, true, ap);
	va_end(ap);
	if (s != NULL)
		s->value = v;
}

void
metrics_observe(struct metric *m, double v, ...)
{
	struct series *s;
	va_list ap;

	va_start(ap, v);
	s = metrics_series(m, true, ap);
	va_end(ap);
	if (s == NULL)
		return;
	s->value += v;
	s->count++;
	for (size_t i = 0; i < m->n_buckets; i++) {
		if (v <= m->buckets[i])
			s->bucket_counts[i]++;
	}
}

double
metrics_value(struct metric *m, ...)
{
	struct series *s;
	va_list ap;

	va_start(ap, m);
	s = metrics_series(m, false, ap);
	va_end(ap);
	if (s == NULL)
		return 0;
	return m->kind == METRIC_HISTOGRAM ? (double)s->count : s->value;
}

/* Append {a="x",b="y"[,extra]} with label values escaped per the format. */
static void
render_labels(struct evbuffer *out, const struct metric *m, const struct series *s,
    const char *extra)
{
	bool any = false;

	if (m->n_labels == 0 && extra == NULL)
		return;
	evbuffer_add(out, "{", 1);
	for (size_t i = 0; i < m->n_labels; i++) {
		evbuffer_add_printf(out, "%s%s=\"", any ? "," : "", m->label_names[i]);
		for (const char *p = s->values[i]; *p; p++) {
			if (*p == '\\' || *p == '"')
				evbuffer_add_printf(out, "\\%c", *p);
			else if (*p == '\n')
				evbuffer_add(out, "\\n", 2);
			else
				evbuffer_add(out, p, 1);
		}
		evbuffer_add(out, "\"", 1);
		any = true;
	}
	if (extra != NULL)
		evbuffer_add_printf(out, "%s%s", any ? "," : "", extra);
	evbuffer_add(out, "}", 1);
}

static void
render_number(struct evbuffer *out, double v)
{
	if (v == floor(v) && fabs(v) < 1e15)
		evbuffer_add_printf(out, " %.0f\n", v);
	else
		evbuffer_add_printf(out, " %.9g\n", v);
}

void
metrics_render(struct evbuffer *out)
{
	static const char *const kinds[] = { "counter", "gauge", "histogram" };

	for (const struct metric *m = families; m != NULL; m = m->next) {
		evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", m->name, m->help, m->name,
		    kinds[m->kind]);
		for (const struct series *s = m->series; s != NULL; s = s->next) {
			if (m->kind != METRIC_HISTOGRAM) {
				evbuffer_add_printf(out, "%s", m->name);
				render_labels(out, m, s, NULL);
				render_number(out, s->value);
				continue;
			}
			for (size_t i = 0; i < m->n_buckets; i++) {
				char le[48];

				snprintf(le, sizeof le, "le=\"%g\"", m->buckets[i]);
				evbuffer_add_printf(out, "%s_bucket", m->name);
				render_labels(out, m, s, le);
				render_number(out, (double)s->bucket_counts[i]);
			}
			evbuffer_add_printf(out, "%s_bucket", m->name);
			render_labels(out, m, s, "le=\"+Inf\"");
			render_number(out, (double)s->count);
			evbuffer_add_printf(out, "%s_sum", m->name);
			render_labels(out, m, s, NULL);
			render_number(out, s->value);
			evbuffer_add_printf(out, "%s_count", m->name);
			render_labels(out, m, s, NULL);
			render_number(out, (double)s->count);
		}
	}
}

void
metrics_reset(void)
{
	struct metric *m, *mnext;
	struct series *s, *snext;

	for (m = families; m != NULL; m = mnext) {
		mnext = m->next;
		for (s = m->series; s != NULL; s = snext) {
			snext = s->next;
			for (size_t i = 0; i < m->n_labels; i++)
				free(s->values[i]);
			free(s->bucket_counts);
			free(s);
		}
		for (size_t i = 0; i < m->n_labels; i++)
			free(m->label_names[i]);
		free(m->buckets);
		free(m->name);
		free(m->help);
		free(m);
	}
	families = families_tail = NULL;
}
