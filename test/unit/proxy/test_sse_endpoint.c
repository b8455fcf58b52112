/*
 * Unit tests of proxy/sse_endpoint: the legacy SSE endpoint event's
 * rewrite (prefix, absolute URLs, other events untouched), the sessionId of
 * a message URL's query, and its sealing for sessions across replicas.
 */
#include "proxy/sse_endpoint.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "test/unit/unit.h"

/* A seal that shows what it was given. */
static char *
fake_seal(const char *id, void *arg)
{
	(void)arg;
	return strcmp(id, "refuse") == 0 ? NULL : xasprintf("S(%s)", id);
}

/* The rewrite of event (a copy) as a string; *was: the endpoint event. */
static char *
rewrite(const char *event, const char *prefix, sse_seal_fn seal, bool *was)
{
	struct evbuffer *out = evbuffer_new();
	char *text = xstrdup(event), *s;
	size_t n;

	*was = sse_endpoint_rewrite(text, prefix, seal, NULL, out);
	n = evbuffer_get_length(out);
	s = xmalloc(n + 1);
	evbuffer_remove(out, s, n);
	s[n] = '\0';
	evbuffer_free(out);
	free(text);
	return s;
}

static void
test_query_session(void)
{
	size_t off = 99, len = 99;

	CU_ASSERT_TRUE(sse_query_session("sessionId=abc", &off, &len));
	CU_ASSERT_EQUAL(off, 10);
	CU_ASSERT_EQUAL(len, 3);
	CU_ASSERT_TRUE(sse_query_session("a=1&sessionId=x-y&b=2", &off, &len));
	CU_ASSERT_EQUAL(off, 14);
	CU_ASSERT_EQUAL(len, 3);
	/* the first one counts; an empty one is none */
	CU_ASSERT_TRUE(sse_query_session("sessionId=one&sessionId=two", &off, &len));
	CU_ASSERT_EQUAL(len, 3);
	CU_ASSERT_FALSE(sse_query_session("sessionId=&sessionId=two", &off, &len));
	CU_ASSERT_FALSE(sse_query_session("sessionId&sessionId=two", &off, &len));
	/* other names that start alike are other parameters */
	CU_ASSERT_FALSE(sse_query_session("sessionIdx=1", &off, &len));
	CU_ASSERT_FALSE(sse_query_session("xsessionId=1", &off, &len));
	CU_ASSERT_TRUE(sse_query_session("sessionIdx=1&sessionId=2", &off, &len));
	CU_ASSERT_EQUAL(off, 23);
	CU_ASSERT_FALSE(sse_query_session("", &off, &len));
	CU_ASSERT_FALSE(sse_query_session("a=1", &off, &len));
}

static void
test_rewrite(void)
{
	bool was;
	char *s;

	s = rewrite("event: endpoint\ndata: /message?sessionId=abc\n\n", "/p", NULL, &was);
	CU_ASSERT_TRUE(was);
	CU_ASSERT_STRING_EQUAL(s, "event: endpoint\ndata: /p/message?sessionId=abc\n\n");
	free(s);
	/* sealed: the id only, the rest of the URL as it was */
	s = rewrite("event: endpoint\ndata: /message?a=1&sessionId=abc&b=2\n\n", "", fake_seal,
	    &was);
	CU_ASSERT_STRING_EQUAL(s, "event: endpoint\ndata: /message?a=1&sessionId=S(abc)&b=2\n\n");
	free(s);
	s = rewrite("event:endpoint\r\ndata:http://127.0.0.1:9/message?sessionId=abc\r\n\r\n", "/p",
	    fake_seal, &was);
	CU_ASSERT_TRUE(was);
	CU_ASSERT_STRING_EQUAL(s, "event:endpoint\ndata: /p/message?sessionId=S(abc)\n\n");
	free(s);
	/* a relative URL keeps its form, sealed too */
	s = rewrite("event: endpoint\ndata: message?sessionId=abc\n\n", "/p", fake_seal, &was);
	CU_ASSERT_STRING_EQUAL(s, "event: endpoint\ndata: message?sessionId=S(abc)\n\n");
	free(s);
	/* no session, or one the seal refuses: as it came */
	s = rewrite("event: endpoint\ndata: /message\n\n", "", fake_seal, &was);
	CU_ASSERT_STRING_EQUAL(s, "event: endpoint\ndata: /message\n\n");
	free(s);
	s = rewrite("event: endpoint\ndata: /message?sessionId=refuse\n\n", "", fake_seal, &was);
	CU_ASSERT_STRING_EQUAL(s, "event: endpoint\ndata: /message?sessionId=refuse\n\n");
	free(s);
	/* other events are not touched */
	s = rewrite("event: message\ndata: /message?sessionId=abc\n\n", "/p", fake_seal, &was);
	CU_ASSERT_FALSE(was);
	CU_ASSERT_STRING_EQUAL(s, "event: message\ndata: /message?sessionId=abc\n\n");
	free(s);
}

int
main(void)
{
	static const struct unit_test tests[] = {
		{ "query_session", test_query_session },
		{ "rewrite", test_rewrite },
		{ NULL, NULL },
	};

	return unit_run("sse_endpoint", tests);
}
