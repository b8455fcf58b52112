/*
 * Unit tests of proxy/sse_endpoint: the legacy SSE endpoint event's
 * rewrite (prefix, absolute URLs, other events untouched), the sessionId of
 * a message URL's query, and its sealing for sessions across replicas;
 * where an event ends, with LF, CRLF or CR line ends.
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
	/* the Python SDK's name; whichever comes first counts */
	CU_ASSERT_TRUE(sse_query_session("session_id=0123abcd", &off, &len));
	CU_ASSERT_EQUAL(off, 11);
	CU_ASSERT_EQUAL(len, 8);
	CU_ASSERT_TRUE(sse_query_session("x=1&session_id=ab&sessionId=cde", &off, &len));
	CU_ASSERT_EQUAL(off, 15);
	CU_ASSERT_EQUAL(len, 2);
	CU_ASSERT_FALSE(sse_query_session("session_id=&sessionId=two", &off, &len));
	CU_ASSERT_FALSE(sse_query_session("session_idx=1", &off, &len));
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

static void
test_event_end(void)
{
#define END(s) sse_event_end((s), strlen(s))
	CU_ASSERT_EQUAL(END("event: endpoint\ndata: /m\n\nrest"), 26);
	/* sse-starlette (the Python SDK's SSE transport) writes CRLF */
	CU_ASSERT_EQUAL(END("event: endpoint\r\ndata: /m\r\n\r\nrest"), 29);
	CU_ASSERT_EQUAL(END("event: endpoint\rdata: /m\r\rrest"), 26);
	/* mcp-go (Go) writes its endpoint event with LF, then CRLF */
	CU_ASSERT_EQUAL(END("event: endpoint\ndata: /message?sessionId=x\r\n\r\nevent: m"), 46);
	CU_ASSERT_EQUAL(END("data: a\r\n\ndata: b\n\n"), 10); /* mixed */
	CU_ASSERT_EQUAL(END("data: a\n\r\n"), 10);
	CU_ASSERT_EQUAL(END(": ping\n\n"), 8); /* a comment is an event here too */
	/* a blank line first: an (empty) event of its own */
	CU_ASSERT_EQUAL(END("\nevent: x\n\n"), 1);
	CU_ASSERT_EQUAL(END("\r\nevent: x\n\n"), 2);
	/* not whole yet */
	CU_ASSERT_EQUAL(END(""), 0);
	CU_ASSERT_EQUAL(END("event: endpoint\ndata: /m\n"), 0);
	CU_ASSERT_EQUAL(END("event: endpoint\r\ndata: /m\r\n"), 0);
	CU_ASSERT_EQUAL(END("data: /m\r"), 0);
	/* a CR last: the event ends there; a LF after it comes as a blank line */
	CU_ASSERT_EQUAL(END("data: /m\r\n\r"), 11);
	CU_ASSERT_EQUAL(END("\r"), 1);
	/* len bounds the look: bytes beyond it are not read */
	CU_ASSERT_EQUAL(sse_event_end("data: x\n\n", 8), 0);
	CU_ASSERT_EQUAL(sse_event_end("data: x\n\n", 9), 9);
#undef END
}

static void
test_rewrite_line_ends(void)
{
	bool was;
	char *s;

	/* CRLF and CR events: recognised and sealed, written with LF line ends */
	s = rewrite("event: endpoint\r\ndata: /messages/?session_id=abc\r\n\r\n", "/p", fake_seal,
	    &was);
	CU_ASSERT_TRUE(was);
	CU_ASSERT_STRING_EQUAL(s, "event: endpoint\ndata: /p/messages/?session_id=S(abc)\n\n");
	free(s);
	s = rewrite("event: endpoint\rdata: /message?sessionId=abc\r\r", "", fake_seal, &was);
	CU_ASSERT_TRUE(was);
	CU_ASSERT_STRING_EQUAL(s, "event: endpoint\ndata: /message?sessionId=S(abc)\n\n");
	free(s);
	/* mcp-go's framing */
	s = rewrite("event: endpoint\ndata: /message?sessionId=x\r\n\r\n", "/p", fake_seal, &was);
	CU_ASSERT_TRUE(was);
	CU_ASSERT_STRING_EQUAL(s, "event: endpoint\ndata: /p/message?sessionId=S(x)\n\n");
	free(s);
	/* the fields in another order: data first */
	s = rewrite("data: /message?sessionId=x\nid: 1\nevent: endpoint\n\n", "/p", fake_seal, &was);
	CU_ASSERT_TRUE(was);
	CU_ASSERT_STRING_EQUAL(s, "data: /p/message?sessionId=S(x)\nid: 1\nevent: endpoint\n\n");
	free(s);
	/* "event: endpoints" is another event */
	s = rewrite("event: endpoints\ndata: /message?sessionId=x\n\n", "/p", fake_seal, &was);
	CU_ASSERT_FALSE(was);
	CU_ASSERT_STRING_EQUAL(s, "event: endpoints\ndata: /message?sessionId=x\n\n");
	free(s);
	/* a lone blank line (the LF after a CR that ended an event) stays one */
	s = rewrite("\n", "/p", fake_seal, &was);
	CU_ASSERT_FALSE(was);
	CU_ASSERT_STRING_EQUAL(s, "\n");
	free(s);
}

int
main(void)
{
	static const struct unit_test tests[] = {
		{ "query_session", test_query_session },
		{ "rewrite", test_rewrite },
		{ "event_end", test_event_end },
		{ "rewrite_line_ends", test_rewrite_line_ends },
		{ NULL, NULL },
	};

	return unit_run("sse_endpoint", tests);
}
