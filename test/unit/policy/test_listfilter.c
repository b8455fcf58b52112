/*
 * Unit tests of auth/policy/listfilter (the file is included to reach its
 * statics): JSON bodies and batches, SSE streams cut at any byte, events
 * that are no list response passing byte for byte, items without a name
 * dropped, the body that is no JSON refused; the scanner's cut and the
 * json-c path it falls back to deciding alike.
 */
#include "auth/policy/listfilter.c"

#include "config/config.h"

#include "test/unit/unit.h"

#include <unistd.h>

static struct config *cfg;
static struct rules *rules;

static struct config *
load_yaml(const char *yaml)
{
	char dir[] = "/tmp/mcppolXXXXXX", *path;
	struct config_errors errs = { 0 };
	struct config *c = config_new();
	FILE *f;

	CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
	path = xasprintf("%s/config.yaml", dir);
	f = fopen(path, "w");
	CU_ASSERT_FATAL(f != NULL);
	fprintf(f, "auth:\n  mode: none\n%s", yaml);
	fclose(f);
	CU_ASSERT_EQUAL_FATAL(config_load(c, path, NULL, &errs), 0);
	config_errors_dispose(&errs);
	unlink(path);
	rmdir(dir);
	free(path);
	return c;
}

static void
setup(void)
{
	cfg = load_yaml("authorization:\n"
			"  rules:\n"
			"    - operations: [\"tools/call:ok-*\", \"prompts/get:p1\", "
			"\"resources/read:file:///pub/*\"]\n"
			"      allow: {}\n"
			"    - operations: [\"tools/call:up\"]\n"
			"      allow: {scopes: [more]}\n");
	rules = rules_new(cfg);
}

static void
teardown(void)
{
	rules_free(rules);
	config_free(cfg);
}

/* A filter of list request ids[] of methods[]. */
static struct listfilter *
watch_new(size_t n, const char *const *ids, const char *const *methods)
{
	const struct rules_principal who = { .sub = "u" };
	struct listfilter *w = listfilter_new(rules, &who, NULL);

	for (size_t i = 0; i < n; i++)
		listfilter_add(w, xstrdup(ids[i]), jsonrpc_method_of(methods[i], strlen(methods[i])));
	return w;
}

/* Run the filter over text cut into pieces of step bytes. */
static char *
run(struct listfilter *w, const char *text, size_t step, int *rc)
{
	struct evbuffer *out = xevbuffer_new(), *in = xevbuffer_new();
	size_t len = strlen(text), n;
	char *s;

	*rc = 0;
	for (size_t i = 0; i < len && *rc == 0; i += step) {
		evbuffer_add(in, text + i, len - i < step ? len - i : step);
		*rc = listfilter_filter(NULL, in, out, w);
	}
	if (*rc == 0)
		*rc = listfilter_filter(NULL, NULL, out, w);
	n = evbuffer_get_length(out);
	s = xmalloc(n + 1);
	evbuffer_remove(out, s, n);
	s[n] = '\0';
	evbuffer_free(out);
	evbuffer_free(in);
	return s;
}

static void
test_json(void)
{
	static const char *const ids[] = { "1", "\"b\"" };
	static const char *const methods[] = { "tools/list", "resources/list" };
	static const char body[] =
	    "[{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[{\"name\":\"ok-a\"},{\"name\":"
	    "\"no\"},{\"name\":\"up\"},{\"title\":\"nameless\"},{\"name\":\"ok-b\"}],"
	    "\"nextCursor\":\"c2\"}},"
	    "{\"jsonrpc\":\"2.0\",\"id\":\"b\",\"result\":{\"resources\":[{\"uri\":\"file:///pub/x\"},"
	    "{\"uri\":\"file:///priv/y\"}]}},"
	    "{\"jsonrpc\":\"2.0\",\"id\":9,\"result\":{\"tools\":[{\"name\":\"no\"}]}}]";
	struct listfilter *w = watch_new(2, ids, methods);
	int rc;
	char *out = run(w, body, 7, &rc);

	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_STRING_EQUAL(out,
	    "[{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[{\"name\":\"ok-a\"},{\"name\":"
	    "\"up\"},{\"name\":\"ok-b\"}],\"nextCursor\":\"c2\"}},"
	    "{\"jsonrpc\":\"2.0\",\"id\":\"b\",\"result\":{\"resources\":[{\"uri\":\"file:///pub/"
	    "x\"}]}},"
	    "{\"jsonrpc\":\"2.0\",\"id\":9,\"result\":{\"tools\":[{\"name\":\"no\"}]}}]");
	free(out);
	listfilter_free(w);

	/* an error response and other ids pass byte for byte */
	w = watch_new(1, ids, methods);
	out = run(w, " {\"jsonrpc\":\"2.0\", \"id\":1, \"error\":{\"code\":-1}}", 1000, &rc);
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_STRING_EQUAL(out, " {\"jsonrpc\":\"2.0\", \"id\":1, \"error\":{\"code\":-1}}");
	free(out);
	listfilter_free(w);
}

static void
test_sse(void)
{
	static const char *const ids[] = { "7" };
	static const char *const methods[] = { "prompts/list" };
	static const char stream[] =
	    ": comment\n\n"
	    "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n"
	    "event: message\r\nid: 3\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\r\ndata: "
	    "\"result\":{\"prompts\":[{\"name\":\"p1\"},{\"name\":\"p2\"}]}}\r\n\r\n"
	    "data: not json\n\r\n"
	    "data: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"prompts\":[{\"name\":\"p3\"}]}}\r\n\n";
	static const char want[] =
	    ": comment\n\n"
	    "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n"
	    "event: message\nid: 3\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\ndata: "
	    "\"result\":{\"prompts\":[{\"name\":\"p1\"}]}}\n\r\n"
	    "data: not json\n\r\n"
	    "data: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"prompts\":[]}}\n\n";
	size_t steps[] = { 1, 2, 5, 13, 1000 };

	for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
		struct listfilter *w = watch_new(1, ids, methods);
		int rc;
		char *out = run(w, stream, steps[i], &rc);

		CU_ASSERT_EQUAL(rc, 0);
		if (strcmp(out, want) != 0)
			fprintf(stderr, "step %zu:\n%s\n--\n", steps[i], out);
		CU_ASSERT_STRING_EQUAL(out, want);
		free(out);
		listfilter_free(w);
	}
}

/* On a stream (the legacy SSE transport's GET /sse) a list request is
 * forgotten once an event answered it, whatever the event's pieces; a
 * request of the same id asked again is filtered again. */
static void
test_stream_forgets(void)
{
	static const char *const ids[] = { "7", "8" };
	static const char *const methods[] = { "tools/list", "tools/list" };
	static const char ev7[] = "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":"
				  "{\"tools\":[{\"name\":\"ok-a\"},{\"name\":\"no\"}]}}\n\n";
	static const char want7[] = "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":"
				    "{\"tools\":[{\"name\":\"ok-a\"}]}}\n\n";
	size_t steps[] = { 1, 3, 1000 };

	for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
		struct listfilter *w = watch_new(2, ids, methods);
		int rc;
		char *out;

		listfilter_set_stream(w);
		CU_ASSERT_EQUAL(listfilter_waiting(w), 2);
		out = run(w, ev7, steps[i], &rc);
		CU_ASSERT_EQUAL(rc, 0);
		CU_ASSERT_STRING_EQUAL(out, want7);
		free(out);
		CU_ASSERT_EQUAL(listfilter_waiting(w), 1); /* 8 still waits */
		listfilter_add(w, xstrdup("7"), JSONRPC_M_TOOLS_LIST);
		out = run(w, ev7, steps[i], &rc);
		CU_ASSERT_STRING_EQUAL(out, want7);
		free(out);
		CU_ASSERT_EQUAL(listfilter_waiting(w), 1);
		listfilter_free(w);
	}
	/* not a stream: one response, the request kept to the end */
	{
		struct listfilter *w = watch_new(1, ids, methods);
		int rc;
		char *out = run(w, ev7, 1000, &rc);

		CU_ASSERT_STRING_EQUAL(out, want7);
		CU_ASSERT_EQUAL(listfilter_waiting(w), 1);
		free(out);
		listfilter_free(w);
	}
}

/* A list response that ends inside an event is still filtered. */
static void
test_sse_unterminated(void)
{
	static const char *const ids[] = { "1" };
	static const char *const methods[] = { "tools/list" };
	struct listfilter *w = watch_new(1, ids, methods);
	int rc;
	char *out = run(w,
	    "data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[{\"name\":\"x\"}]}}", 4, &rc);

	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_STRING_EQUAL(out, "data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[]}}\n");
	free(out);
	listfilter_free(w);
}

/* A lone CR (a line end to SSE clients, not to us) is refused. */
static void
test_sse_lone_cr(void)
{
	static const char *const ids[] = { "1" };
	static const char *const methods[] = { "tools/list" };
	struct listfilter *w = watch_new(1, ids, methods);
	struct evbuffer *out = xevbuffer_new();

	CU_ASSERT_EQUAL(lf_filter_event(w, "data: a\rdata: b", 15, out), -1);
	CU_ASSERT_EQUAL(lf_filter_event(w, "data: a\r", 8, out), -1);
	CU_ASSERT_EQUAL(evbuffer_get_length(out), 0);
	CU_ASSERT_EQUAL(lf_filter_event(w, "data: a\r\n", 9, out), 0);
	evbuffer_free(out);
	listfilter_free(w);
}

/* The scanner's cut: escapes in names decoded before the rules see them,
 * whitespace and the bytes of kept items as they came, the first, last
 * or every item dropped; ids matched by value ("\u0062" is "b"). */
static void
test_cut(void)
{
	static const char *const ids[] = { "\"b\"", "2" };
	static const char *const methods[] = { "tools/list", "resources/list" };
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ "{\"jsonrpc\":\"2.0\",\"id\":\"\\u0062\",\"result\":{\"tools\": [ {\"name\":\"no\"} ,"
		  " {\"name\":\"ok-\\u0061\", \"x\": [1, {\"name\":\"no\"}]} , 5, null ] }}",
		    "{\"jsonrpc\":\"2.0\",\"id\":\"\\u0062\",\"result\":{\"tools\": [{\"name\":\"ok-"
		    "\\u0061\", \"x\": [1, {\"name\":\"no\"}]}] }}" },
		{ "{\"result\":{\"tools\":[{\"name\":\"ok-1\"},{\"name\":\"no\"}]},\"id\":\"b\"}",
		    "{\"result\":{\"tools\":[{\"name\":\"ok-1\"}]},\"id\":\"b\"}" },
		{ "{\"id\":\"b\",\"result\":{\"tools\":[{\"name\":\"no\"},{\"name\":\"x\"}]}}",
		    "{\"id\":\"b\",\"result\":{\"tools\":[]}}" },
		/* a name with NUL, or no string: not shown */
		{ "{\"id\":\"b\",\"result\":{\"tools\":[{\"name\":\"ok-\\u0000\"},{\"name\":1},"
		  "{\"name\":\"ok-2\"}]}}",
		    "{\"id\":\"b\",\"result\":{\"tools\":[{\"name\":\"ok-2\"}]}}" },
		/* all kept, an error, another id, another list: as they came */
		{ "{\"id\":\"b\",\"result\":{\"tools\":[ {\"name\":\"ok-1\"} ]}}",
		    "{\"id\":\"b\",\"result\":{\"tools\":[ {\"name\":\"ok-1\"} ]}}" },
		{ "{\"id\":\"b\",\"error\":{\"code\":1}}", "{\"id\":\"b\",\"error\":{\"code\":1}}" },
		{ "{\"id\":3,\"result\":{\"tools\":[{\"name\":\"no\"}]}}",
		    "{\"id\":3,\"result\":{\"tools\":[{\"name\":\"no\"}]}}" },
		{ "{\"id\":\"b\",\"result\":{\"prompts\":[{\"name\":\"no\"}]}}",
		    "{\"id\":\"b\",\"result\":{\"prompts\":[{\"name\":\"no\"}]}}" },
		/* a batch: each list cut where it is */
		{ "[{\"id\":2,\"result\":{\"resources\":[{\"uri\":\"file:///priv/a\"},{\"uri\":"
		  "\"file:///pub/a\"}]}},{\"id\":\"b\",\"result\":{\"tools\":[{\"name\":\"no\"}]}}]",
		    "[{\"id\":2,\"result\":{\"resources\":[{\"uri\":\"file:///pub/a\"}]}},{\"id\":"
		    "\"b\",\"result\":{\"tools\":[]}}]" },
		/* what the scanner cannot vouch for goes through json-c, written anew: a
		 * name twice (json-c reads the last), lax JSON */
		{ "{\"id\":\"b\",\"result\":{\"tools\":[{\"name\":\"ok-1\",\"name\":\"no\"},"
		  "{\"name\":\"no\",\"name\":\"ok-2\"}]}}",
		    "{\"id\":\"b\",\"result\":{\"tools\":[{\"name\":\"ok-2\"}]}}" },
		{ "{\"id\":\"b\",\"result\":{\"tools\":[{\"name\":\"no\"}],\"n\":NaN}}",
		    "{\"id\":\"b\",\"result\":{\"tools\":[],\"n\":NaN}}" },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct listfilter *w = watch_new(2, ids, methods);
		int rc;
		char *out = run(w, cases[i].in, 1000, &rc);

		CU_ASSERT_EQUAL(rc, 0);
		if (strcmp(out, cases[i].want) != 0)
			fprintf(stderr, "case %zu:\n%s\n", i, out);
		CU_ASSERT_STRING_EQUAL(out, cases[i].want);
		free(out);
		listfilter_free(w);
	}
}

/* An SSE event whose JSON came in several data lines goes out as data
 * lines, filtered or not (one line holding a line break would end the
 * data early for the client). */
static void
test_sse_lines(void)
{
	static const char *const ids[] = { "1" };
	static const char *const methods[] = { "tools/list" };
	struct listfilter *w = watch_new(1, ids, methods);
	int rc;
	char *out = run(w,
	    "data: {\"id\":5,\ndata: \"result\":{}}\n\n"
	    "data: {\"id\":1,\ndata:\"result\":{\"tools\":[{\"name\":\"no\"}]}}\n\n",
	    3, &rc);

	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_STRING_EQUAL(out, "data: {\"id\":5,\ndata: \"result\":{}}\n\n"
				    "data: {\"id\":1,\ndata: \"result\":{\"tools\":[]}}\n\n");
	free(out);
	listfilter_free(w);
}

static void
with_policy(void (*fn)(void))
{
	setup();
	fn();
	teardown();
}

static void
t_json(void)
{
	with_policy(test_json);
}

static void
t_sse(void)
{
	with_policy(test_sse);
}

static void
t_sse_unterminated(void)
{
	with_policy(test_sse_unterminated);
}

static void
t_sse_lone_cr(void)
{
	with_policy(test_sse_lone_cr);
}

static void
t_cut(void)
{
	with_policy(test_cut);
}

static void
t_sse_lines(void)
{
	with_policy(test_sse_lines);
}

static void
t_stream_forgets(void)
{
	with_policy(test_stream_forgets);
}

int
main(void)
{
	static const struct unit_test tests[] = {
		{ "filter_json", t_json },
		{ "filter_sse", t_sse },
		{ "filter_sse_unterminated", t_sse_unterminated },
		{ "filter_sse_lone_cr", t_sse_lone_cr },
		{ "filter_cut", t_cut },
		{ "filter_sse_lines", t_sse_lines },
		{ "filter_stream_forgets", t_stream_forgets },
		{ NULL, NULL },
	};

	return unit_run("listfilter", tests);
}
