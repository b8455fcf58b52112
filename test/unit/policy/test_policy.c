/*
 * Unit tests of auth/policy/policy's list filter (the file is included to
 * reach its statics): JSON bodies and batches, SSE streams cut at any
 * byte, events that are no list response passing byte for byte, items
 * without a name dropped, the body that is no JSON refused.
 */
#include "auth/policy/policy.c"

#include "test/unit/unit.h"

#include <unistd.h>

static struct config *cfg;
static struct policy *pol;

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
	char err[160];

	cfg = load_yaml("authorization:\n"
			"  rules:\n"
			"    - operations: [\"tools/call:ok-*\", \"prompts/get:p1\", "
			"\"resources/read:file:///pub/*\"]\n"
			"      allow: {}\n"
			"    - operations: [\"tools/call:up\"]\n"
			"      allow: {scopes: [more]}\n");
	pol = policy_new(NULL, cfg, NULL, NULL, NULL, err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(pol);
}

static void
teardown(void)
{
	policy_free(pol);
	config_free(cfg);
	metrics_reset();
}

/* A watch on list request ids[] of methods[]. */
static struct policy_watch *
watch_new(size_t n, const char *const *ids, const char *const *methods)
{
	struct policy_watch *w = xcalloc(1, sizeof *w);

	w->p = pol;
	w->captured = xevbuffer_new();
	w->lists = xcalloc(n, sizeof *w->lists);
	for (size_t i = 0; i < n; i++) {
		w->lists[i].id = xstrdup(ids[i]);
		w->lists[i].method = methods[i];
	}
	w->n_lists = n;
	w->sub = xstrdup("u");
	TAILQ_INSERT_TAIL(&pol->watches, w, entry);
	return w;
}

/* Run the filter over text cut into pieces of step bytes. */
static char *
run(struct policy_watch *w, const char *text, size_t step, int *rc)
{
	struct evbuffer *out = xevbuffer_new(), *in = xevbuffer_new();
	size_t len = strlen(text), n;
	char *s;

	*rc = 0;
	for (size_t i = 0; i < len && *rc == 0; i += step) {
		evbuffer_add(in, text + i, len - i < step ? len - i : step);
		*rc = policy_filter(NULL, in, out, w);
	}
	if (*rc == 0)
		*rc = policy_filter(NULL, NULL, out, w);
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
	struct policy_watch *w = watch_new(2, ids, methods);
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
	policy_watch_free(w);

	/* an error response and other ids pass byte for byte */
	w = watch_new(1, ids, methods);
	out = run(w, " {\"jsonrpc\":\"2.0\", \"id\":1, \"error\":{\"code\":-1}}", 1000, &rc);
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_STRING_EQUAL(out, " {\"jsonrpc\":\"2.0\", \"id\":1, \"error\":{\"code\":-1}}");
	free(out);
	policy_watch_free(w);
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
	    "event: message\nid: 3\ndata: "
	    "{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"prompts\":[{\"name\":\"p1\"}]}}\n\r\n"
	    "data: not json\n\r\n"
	    "data: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"prompts\":[]}}\n\n";
	size_t steps[] = { 1, 2, 5, 13, 1000 };

	for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
		struct policy_watch *w = watch_new(1, ids, methods);
		int rc;
		char *out = run(w, stream, steps[i], &rc);

		CU_ASSERT_EQUAL(rc, 0);
		if (strcmp(out, want) != 0)
			fprintf(stderr, "step %zu:\n%s\n--\n", steps[i], out);
		CU_ASSERT_STRING_EQUAL(out, want);
		free(out);
		policy_watch_free(w);
	}
}

/* A list response that ends inside an event is still filtered. */
static void
test_sse_unterminated(void)
{
	static const char *const ids[] = { "1" };
	static const char *const methods[] = { "tools/list" };
	struct policy_watch *w = watch_new(1, ids, methods);
	int rc;
	char *out = run(w,
	    "data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[{\"name\":\"x\"}]}}", 4, &rc);

	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_STRING_EQUAL(out, "data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[]}}\n");
	free(out);
	policy_watch_free(w);
}

/* A lone CR (a line end to SSE clients, not to us) is refused. */
static void
test_sse_lone_cr(void)
{
	static const char *const ids[] = { "1" };
	static const char *const methods[] = { "tools/list" };
	struct policy_watch *w = watch_new(1, ids, methods);
	struct evbuffer *out = xevbuffer_new();

	CU_ASSERT_EQUAL(policy_filter_event(w, "data: a\rdata: b", 15, out), -1);
	CU_ASSERT_EQUAL(policy_filter_event(w, "data: a\r", 8, out), -1);
	CU_ASSERT_EQUAL(evbuffer_get_length(out), 0);
	CU_ASSERT_EQUAL(policy_filter_event(w, "data: a\r\n", 9, out), 0);
	evbuffer_free(out);
	policy_watch_free(w);
}

/* Outcomes read from a captured JSON or SSE body. */
static void
test_outcomes(void)
{
	struct evbuffer *b = xevbuffer_new();
	struct strlist ids = { 0 }, outcomes = { 0 };

	evbuffer_add_printf(b, "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n"
			       "data: {\"jsonrpc\":\"2.0\",\"id\":\"x\",\"error\":{}}\n\n");
	policy_responses(b, &ids, &outcomes);
	CU_ASSERT_EQUAL_FATAL(ids.n, 2);
	CU_ASSERT_STRING_EQUAL(ids.v[0], "1");
	CU_ASSERT_STRING_EQUAL(outcomes.v[0], "success");
	CU_ASSERT_STRING_EQUAL(ids.v[1], "\"x\"");
	CU_ASSERT_STRING_EQUAL(outcomes.v[1], "error");
	strlist_dispose(&ids);
	strlist_dispose(&outcomes);
	evbuffer_drain(b, evbuffer_get_length(b));
	evbuffer_add_printf(b, "[{\"jsonrpc\":\"2.0\",\"id\":2,\"error\":{}}]");
	policy_responses(b, &ids, &outcomes);
	CU_ASSERT_EQUAL_FATAL(ids.n, 1);
	CU_ASSERT_STRING_EQUAL(outcomes.v[0], "error");
	strlist_dispose(&ids);
	strlist_dispose(&outcomes);
	evbuffer_free(b);
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

int
main(void)
{
	static const struct unit_test tests[] = {
		{ "filter_json", t_json },
		{ "filter_sse", t_sse },
		{ "filter_sse_unterminated", t_sse_unterminated },
		{ "filter_sse_lone_cr", t_sse_lone_cr },
		{ "outcomes", test_outcomes },
		{ NULL, NULL },
	};

	return unit_run("policy", tests);
}
