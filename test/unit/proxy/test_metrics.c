/*
 * Metrics: series creation, counters, histograms and the text exposition.
 */
#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/metrics.h"
#include "test/unit/unit.h"

static char *
render(void)
{
	struct evbuffer *b = evbuffer_new();
	size_t n;
	char *s;

	metrics_render(b);
	n = evbuffer_get_length(b);
	s = malloc(n + 1);
	evbuffer_remove(b, s, n);
	s[n] = '\0';
	evbuffer_free(b);
	return s;
}

static void
test_counter_labels(void)
{
	struct metric *c = metrics_counter("t_requests_total", "Requests.", "method,status");
	char *text;

	CU_ASSERT_PTR_EQUAL(metrics_counter("t_requests_total", "x", "method,status"), c);
	metrics_add(c, 1, "GET", "200");
	metrics_add(c, 2, "GET", "200");
	metrics_add(c, 1, "POST", "a\"b");
	CU_ASSERT_EQUAL(metrics_value(c, "GET", "200"), 3);
	CU_ASSERT_EQUAL(metrics_value(c, "PUT", "200"), 0);
	text = render();
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "# TYPE t_requests_total counter\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "t_requests_total{method=\"GET\",status=\"200\"} 3\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "t_requests_total{method=\"POST\",status=\"a\\\"b\"} 1\n"));
	free(text);
	metrics_reset();
}

static void
test_histogram(void)
{
	static const double b[] = { 0.1, 1 };
	struct metric *h = metrics_histogram("t_latency_seconds", "Latency.", "route", b, 2);
	char *text;

	metrics_observe(h, 0.05, "/mcp");
	metrics_observe(h, 0.5, "/mcp");
	metrics_observe(h, 5, "/mcp");
	CU_ASSERT_EQUAL(metrics_value(h, "/mcp"), 3);
	text = render();
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "t_latency_seconds_bucket{route=\"/mcp\",le=\"0.1\"} 1\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "t_latency_seconds_bucket{route=\"/mcp\",le=\"1\"} 2\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "t_latency_seconds_bucket{route=\"/mcp\",le=\"+Inf\"} 3\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "t_latency_seconds_count{route=\"/mcp\"} 3\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "t_latency_seconds_sum{route=\"/mcp\"} 5.55\n"));
	free(text);
	metrics_reset();
}

static void
test_gauge_no_labels(void)
{
	struct metric *g = metrics_gauge("t_open_streams", "Open.", "");
	char *text;

	metrics_add(g, 2);
	metrics_add(g, -1);
	text = render();
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "t_open_streams 1\n"));
	free(text);
	metrics_reset();
}

static const struct unit_test tests[] = {
	{ "counter with labels and escaping", test_counter_labels },
	{ "histogram buckets, sum and count", test_histogram },
	{ "gauge without labels", test_gauge_no_labels },
	{ NULL, NULL },
};

int
main(void)
{
	return unit_run("metrics", tests);
}
