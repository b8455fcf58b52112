/*
 * Unit tests for proxy/http1: the request-head parser (good requests,
 * every malformed case we refuse with its status, the size limits,
 * incremental arrival and pipelining) and the chunked-body decoder
 * (extensions, trailers, byte-at-a-time input, limits).
 */
#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/http1.h"
#include "test/unit/unit.h"

#define MAX_HEAD (16 * 1024)

/* Parse a complete head in one go: rc as h1_parse_request. */
static int
parse(const char *text, struct h1_request *rq, int *status)
{
	size_t scan = 0;
	const char *err;

	return h1_parse_request(text, strlen(text), MAX_HEAD, &scan, rq, status, &err);
}

static void
test_good_requests(void)
{
	static const struct {
		const char *text;
		const char *method;
		enum h1_method m;
		const char *path;
		const char *query;
		int minor;
		int64_t cl;
		bool chunked;
		bool keepalive;
		size_t n_headers;
	} v[] = {
		{ "GET / HTTP/1.1\r\nHost: a\r\n\r\n", "GET", H1_GET, "/", NULL, 1, -1, false, true, 1 },
		{ "POST /mcp?x=1&y HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n\r\n", "POST", H1_POST,
		    "/mcp", "x=1&y", 1, 12, false, true, 2 },
		{ "PUT /a%20b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n", "PUT", H1_PUT,
		    "/a%20b", NULL, 1, -1, true, true, 2 },
		{ "GET /x HTTP/1.0\r\n\r\n", "GET", H1_GET, "/x", NULL, 0, -1, false, false, 0 },
		{ "GET /x HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", "GET", H1_GET, "/x", NULL, 0, -1,
		    false, true, 1 },
		{ "GET /x HTTP/1.1\r\nHost: a\r\nConnection: foo, close\r\n\r\n", "GET", H1_GET, "/x",
		    NULL, 1, -1, false, false, 2 },
		{ "GET http://h:8/p/q?z#f HTTP/1.1\r\nHost: h\r\n\r\n", "GET", H1_GET, "/p/q", "z", 1,
		    -1, false, true, 1 },
		{ "GET https://h HTTP/1.1\r\nHost: h\r\n\r\n", "GET", H1_GET, "/", NULL, 1, -1, false,
		    true, 1 },
		{ "GET http://h?q=1 HTTP/1.1\r\nHost: h\r\n\r\n", "GET", H1_GET, "/", "q=1", 1, -1, false,
		    true, 1 },
		{ "\r\n\r\nDELETE /d HTTP/1.1\nHost: a\n\n", "DELETE", H1_DELETE, "/d", NULL, 1, -1, false,
		    true, 1 },
		{ "OPTIONS /o HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n",
		    "OPTIONS", H1_OPTIONS, "/o", NULL, 1, 3, false, true, 3 },
		{ "BREW /pot HTTP/1.1\r\nHost: a\r\n\r\n", "BREW", H1_OTHER, "/pot", NULL, 1, -1, false,
		    true, 1 },
	};

	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		struct h1_request rq;
		int status, rc = parse(v[i].text, &rq, &status);

		CU_ASSERT_EQUAL(rc, (int)strlen(v[i].text));
		if (rc <= 0) {
			fprintf(stderr, "case %zu refused (%d)\n", i, status);
			continue;
		}
		CU_ASSERT_STRING_EQUAL(rq.method_name, v[i].method);
		CU_ASSERT_EQUAL(rq.method, v[i].m);
		CU_ASSERT_STRING_EQUAL(rq.path, v[i].path);
		if (v[i].query == NULL) {
			CU_ASSERT_PTR_NULL(rq.query);
		} else {
			CU_ASSERT_STRING_EQUAL(rq.query, v[i].query);
		}
		CU_ASSERT_EQUAL(rq.minor, v[i].minor);
		CU_ASSERT_EQUAL(rq.content_length, v[i].cl);
		CU_ASSERT_EQUAL(rq.chunked, v[i].chunked);
		CU_ASSERT_EQUAL(rq.keepalive, v[i].keepalive);
		CU_ASSERT_EQUAL(rq.n_headers, v[i].n_headers);
		h1_request_dispose(&rq);
		h1_request_dispose(&rq); /* twice is safe */
	}
}

static void
test_headers(void)
{
	struct h1_request rq;
	int status;
	const char *text = "GET /t?a=b HTTP/1.1\r\nHost:  example.com \r\n"
			   "X-Empty:\r\nauthorization: Bearer one\r\nAuthorization: Bearer two\r\n"
			   "X-Tab:\tv\t w\t\r\nX-Obs: caf\xc3\xa9\r\n\r\n";

	CU_ASSERT_EQUAL_FATAL(parse(text, &rq, &status), (int)strlen(text));
	CU_ASSERT_STRING_EQUAL(rq.target, "/t?a=b");
	CU_ASSERT_STRING_EQUAL(h1_header_find(&rq, "HOST"), "example.com");
	CU_ASSERT_STRING_EQUAL(h1_header_find(&rq, "x-empty"), "");
	CU_ASSERT_STRING_EQUAL(h1_header_find(&rq, "Authorization"), "Bearer one");
	CU_ASSERT_STRING_EQUAL(h1_header_find(&rq, "x-tab"), "v\t w");
	CU_ASSERT_STRING_EQUAL(h1_header_find(&rq, "x-obs"), "caf\xc3\xa9");
	CU_ASSERT_PTR_NULL(h1_header_find(&rq, "X-None"));
	CU_ASSERT_EQUAL(rq.n_headers, 6);
	CU_ASSERT_STRING_EQUAL(rq.headers[3].name, "Authorization");
	CU_ASSERT_STRING_EQUAL(rq.headers[3].value, "Bearer two");
	h1_request_dispose(&rq);

	CU_ASSERT(h1_token_in_list("keep-alive, Close", "close"));
	CU_ASSERT(!h1_token_in_list("closed", "close"));
	CU_ASSERT(!h1_token_in_list(NULL, "close"));
}

static void
test_malformed(void)
{
	static const struct {
		const char *text;
		int status;
	} v[] = {
		{ "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400 },
		{ "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400 },
		{ "GET /\r\nHost: a\r\n\r\n", 400 },
		{ "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400 },
		{ "GET / HTTP/1.1\r\nHost: a\r\n\r\n" + 1, 400 },      /* "ET" still a token: ok? no: */
		{ "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505 },
		{ "GET / HTTP/1.10\r\nHost: a\r\n\r\n", 400 },
		{ "GET / http/1.1\r\nHost: a\r\n\r\n", 400 },
		{ "GET x HTTP/1.1\r\nHost: a\r\n\r\n", 400 },
		{ "GET ftp://h/ HTTP/1.1\r\nHost: a\r\n\r\n", 400 },
		{ "GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n", 400 },
		{ "GET / HTTP/1.1\r\n\r\n", 400 },                       /* no Host */
		{ "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400 },
		{ "GET / HTTP/1.1\r\nHost: a\r\nX-Folded: a\r\n b\r\n\r\n", 400 },
		{ "GET / HTTP/1.1\r\nHost: a\r\nX-Sp : a\r\n\r\n", 400 },
		{ "GET / HTTP/1.1\r\nHost: a\r\nno colon\r\n\r\n", 400 },
		{ "GET / HTTP/1.1\r\nHost: a\r\n: empty\r\n\r\n", 400 },
		{ "GET / HTTP/1.1\r\nHost: a\r\nX-Ctl: a\x7f\r\n\r\n", 400 },
		{ "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 400 },
		{ "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400 },
		{ "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1e3\r\n\r\n", 400 },
		{ "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\n", 400 },
		{ "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9999999999999999999\r\n\r\n", 400 },
		{ "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
		    400 },
		{ "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
		  "chunked\r\n\r\n", 400 },
		{ "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501 },
		{ "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", 501 },
		{ "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400 },
		{ "POST / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n", 417 },
	};

	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		struct h1_request rq;
		int status = 0, rc = parse(v[i].text, &rq, &status);

		if (i == 4) {
			/* "ET / ..." is a valid (unknown) method: accepted, refused later. */
			CU_ASSERT(rc > 0);
			if (rc > 0) {
				CU_ASSERT_EQUAL(rq.method, H1_OTHER);
			}
			h1_request_dispose(&rq);
			continue;
		}
		CU_ASSERT_EQUAL(rc, -1);
		if (rc != -1 || status != v[i].status)
			fprintf(stderr, "case %zu: rc %d status %d\n", i, rc, status);
		CU_ASSERT_EQUAL(status, v[i].status);
		CU_ASSERT_PTR_NULL(rq.mem);
	}
	{
		/* A NUL inside the head. */
		static const char nul[] = "GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n";
		struct h1_request rq;
		size_t scan = 0;
		const char *err;
		int status;

		CU_ASSERT_EQUAL(h1_parse_request(nul, sizeof nul - 1, MAX_HEAD, &scan, &rq, &status,
		    &err), -1);
		CU_ASSERT_EQUAL(status, 400);
	}
}

/* Header values are checked eight bytes at a time: a bad octet anywhere in
 * a long value is found, and the allowed odd ones (tab, obs-text) pass. */
static void
test_value_octets(void)
{
	static const unsigned char bad[] = { 0x01, 0x08, 0x0b, 0x0d, 0x1f, 0x7f };
	static const unsigned char good[] = { '\t', ' ', 0x21, 0x7e, 0x80, 0xa0, 0xfe, 0xff };
	char text[256], value[64];
	struct h1_request rq;
	int status, rc;

	for (size_t pos = 0; pos < 40; pos++) {
		for (size_t b = 0; b < sizeof bad; b++) {
			memset(value, 'v', 41);
			value[41] = '\0';
			value[pos + 1] = (char)bad[b]; /* not the first: leading blanks are skipped */
			snprintf(text, sizeof text, "GET / HTTP/1.1\r\nHost: a\r\nX-V: %s\r\n\r\n", value);
			status = 0;
			rc = parse(text, &rq, &status);
			if (rc != -1)
				fprintf(stderr, "bad octet 0x%02x at %zu accepted\n", bad[b], pos + 1);
			CU_ASSERT_EQUAL(rc, -1);
			CU_ASSERT_EQUAL(status, 400);
		}
		for (size_t g = 0; g < sizeof good; g++) {
			memset(value, 'v', 42); /* nor the last: trailing blanks are trimmed */
			value[42] = '\0';
			value[pos + 1] = (char)good[g];
			snprintf(text, sizeof text, "GET / HTTP/1.1\r\nHost: a\r\nX-V: %s\r\n\r\n", value);
			rc = parse(text, &rq, &status);
			CU_ASSERT(rc > 0);
			if (rc > 0) {
				CU_ASSERT_STRING_EQUAL(h1_header_find(&rq, "x-v"), value);
				CU_ASSERT_PTR_NULL(h1_header_find(&rq, "x-vv"));
			}
			h1_request_dispose(&rq);
		}
	}
}

static void
test_limits(void)
{
	struct h1_request rq;
	size_t scan = 0, len;
	const char *err;
	int status;
	char *big = malloc(64 * 1024);

	/* header block over the limit: 431, complete or not */
	len = (size_t)snprintf(big, 64 * 1024, "GET / HTTP/1.1\r\nHost: a\r\nX-Big: %0*d\r\n\r\n",
	    MAX_HEAD, 7);
	CU_ASSERT_EQUAL(h1_parse_request(big, len, MAX_HEAD, &scan, &rq, &status, &err), -1);
	CU_ASSERT_EQUAL(status, 431);
	scan = 0;
	CU_ASSERT_EQUAL(h1_parse_request(big, len - 4, MAX_HEAD, &scan, &rq, &status, &err), -1);
	CU_ASSERT_EQUAL(status, 431);
	/* exactly at the limit: fine */
	len = (size_t)snprintf(big, 64 * 1024, "GET / HTTP/1.1\r\nHost: a\r\nX-Big: %0*d\r\n\r\n",
	    MAX_HEAD - 36, 7);
	CU_ASSERT_EQUAL(len, MAX_HEAD);
	scan = 0;
	CU_ASSERT_EQUAL(h1_parse_request(big, len, MAX_HEAD, &scan, &rq, &status, &err), (int)len);
	h1_request_dispose(&rq);
	/* target of 8 KiB accepted, one more byte is 414 */
	memset(big, 'a', 64 * 1024);
	memcpy(big, "GET /", 5);
	len = 4 + H1_MAX_TARGET;
	len += (size_t)sprintf(big + len, " HTTP/1.1\r\nHost: a\r\n\r\n");
	scan = 0;
	CU_ASSERT_EQUAL(h1_parse_request(big, len, MAX_HEAD, &scan, &rq, &status, &err), (int)len);
	h1_request_dispose(&rq);
	memset(big, 'a', 64 * 1024);
	memcpy(big, "GET /", 5);
	len = 5 + H1_MAX_TARGET;
	len += (size_t)sprintf(big + len, " HTTP/1.1\r\nHost: a\r\n\r\n");
	scan = 0;
	CU_ASSERT_EQUAL(h1_parse_request(big, len, MAX_HEAD, &scan, &rq, &status, &err), -1);
	CU_ASSERT_EQUAL(status, 414);
	/* a request line that never ends */
	scan = 0;
	CU_ASSERT_EQUAL(h1_parse_request(big, 12 * 1024, MAX_HEAD, &scan, &rq, &status, &err), -1);
	CU_ASSERT_EQUAL(status, 414);
	/* endless empty lines */
	memset(big, '\n', 100);
	scan = 0;
	CU_ASSERT_EQUAL(h1_parse_request(big, 100, MAX_HEAD, &scan, &rq, &status, &err), -1);
	free(big);
}

/* Byte by byte: 0 until the last byte; the scan position only moves on. */
static void
test_incremental_and_pipelined(void)
{
	const char *two = "GET /one HTTP/1.1\r\nHost: a\r\n\r\nGET /two HTTP/1.1\r\nHost: a\r\n\r\n";
	size_t first = strlen("GET /one HTTP/1.1\r\nHost: a\r\n\r\n"), scan = 0, last = 0;
	struct h1_request rq;
	const char *err;
	int status, rc = 0;

	for (size_t n = 1; n <= first; n++) {
		rc = h1_parse_request(two, n, MAX_HEAD, &scan, &rq, &status, &err);
		CU_ASSERT(scan >= last);
		last = scan;
		if (n < first) {
			CU_ASSERT_EQUAL(rc, 0);
		}
	}
	CU_ASSERT_EQUAL_FATAL(rc, (int)first);
	CU_ASSERT_STRING_EQUAL(rq.path, "/one");
	h1_request_dispose(&rq);
	/* The whole buffer: the first request only; the second follows. */
	scan = 0;
	CU_ASSERT_EQUAL_FATAL(h1_parse_request(two, strlen(two), MAX_HEAD, &scan, &rq, &status,
	    &err), (int)first);
	CU_ASSERT_STRING_EQUAL(rq.path, "/one");
	h1_request_dispose(&rq);
	scan = 0;
	CU_ASSERT_EQUAL(h1_parse_request(two + first, strlen(two) - first, MAX_HEAD, &scan, &rq,
	    &status, &err), (int)(strlen(two) - first));
	CU_ASSERT_STRING_EQUAL(rq.path, "/two");
	h1_request_dispose(&rq);
	/* a CR at the very end is not yet the end */
	scan = 0;
	CU_ASSERT_EQUAL(h1_parse_request(two, first - 1, MAX_HEAD, &scan, &rq, &status, &err), 0);
}

/* Decode text as one chunked body, fed in pieces of step bytes. */
static int
decode(const char *text, size_t len, size_t step, size_t max, struct evbuffer *body,
    size_t *rest)
{
	struct h1_chunked st = { 0 };
	struct evbuffer *in = evbuffer_new();
	const char *err = NULL;
	int rc = 0;

	for (size_t off = 0; off < len && rc == 0; off += step) {
		evbuffer_add(in, text + off, len - off < step ? len - off : step);
		rc = h1_chunked_decode(&st, in, body, max, 1024, &err);
	}
	*rest = evbuffer_get_length(in);
	evbuffer_free(in);
	return rc;
}

static void
test_chunked(void)
{
	static const struct {
		const char *text;
		int rc;
		const char *body;
		size_t rest;
	} v[] = {
		{ "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", 1, "hello world", 0 },
		{ "5;ext=1;q=\"x\"\r\nhello\r\n0;last\r\n\r\nNEXT", 1, "hello", 4 },
		{ "A\r\n0123456789\r\n0\r\nX-Trailer: 1\r\nX-Other: 2\r\n\r\n", 1, "0123456789", 0 },
		{ "a \r\n0123456789\n0\n\n", 1, "0123456789", 0 },
		{ "0\r\n\r\n", 1, "", 0 },
		{ "5\r\nhelloX\r\n0\r\n\r\n", -1, NULL, 0 },
		{ "x\r\n", -1, NULL, 0 },
		{ "\r\n", -1, NULL, 0 },
		{ "-5\r\nhello\r\n", -1, NULL, 0 },
		{ "5 x\r\nhello\r\n", -1, NULL, 0 },
		{ "10000000000000000\r\n", -1, NULL, 0 },
		{ "0\r\n folded: no\r\n\r\n", -1, NULL, 0 },
		{ "0\r\nno colon\r\n\r\n", -1, NULL, 0 },
		{ "65\r\n", -2, NULL, 0 }, /* 101 bytes > max 100 */
		{ "40\r\n" "0123456789012345678901234567890123456789012345678901234567890123\r\n"
		  "30\r\n", -2, NULL, 0 },
		{ "5\r\nhel", 0, NULL, 0 },
	};

	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		for (size_t step = 1; step <= 64; step *= 4) {
			struct evbuffer *body = evbuffer_new();
			size_t rest;
			int rc = decode(v[i].text, strlen(v[i].text), step, 100, body, &rest);

			if (rc != v[i].rc)
				fprintf(stderr, "chunked case %zu step %zu: rc %d\n", i, step, rc);
			CU_ASSERT_EQUAL(rc, v[i].rc);
			if (v[i].body != NULL && rc == 1) {
				size_t n = evbuffer_get_length(body);

				CU_ASSERT_EQUAL(n, strlen(v[i].body));
				CU_ASSERT(n == 0 || memcmp(evbuffer_pullup(body, -1), v[i].body, n) == 0);
				/* fed whole (step 64): the rest is what followed */
				if (step == 64) {
					CU_ASSERT_EQUAL(rest, v[i].rest);
				}
			}
			evbuffer_free(body);
		}
	}
	{
		/* a chunk-size line that never ends, and a trailer over its limit */
		char *line = malloc(8192);
		struct evbuffer *body = evbuffer_new();
		size_t rest;

		memset(line, '1', 8192);
		CU_ASSERT_EQUAL(decode(line, 8192, 8192, 100, body, &rest), -1);
		memcpy(line, "0\r\n", 3);
		for (size_t k = 3; k + 20 < 8192; k += 20)
			memcpy(line + k, "X-Pad: 12345678901\r\n", 20);
		CU_ASSERT_EQUAL(decode(line, 8192, 8192, 100, body, &rest), -1);
		evbuffer_free(body);
		free(line);
	}
}

static void
test_reason(void)
{
	CU_ASSERT_STRING_EQUAL(h1_reason(200), "OK");
	CU_ASSERT_STRING_EQUAL(h1_reason(413), "Content Too Large");
	CU_ASSERT_STRING_EQUAL(h1_reason(431), "Request Header Fields Too Large");
	CU_ASSERT_STRING_EQUAL(h1_reason(599), "Server Error");
}

/* Parse with the MCP listener's limits: rc as h1_parse_request_limits. */
static int
parse_strict(const char *text, size_t max_headers, struct h1_request *rq, int *status,
    const char **err)
{
	struct h1_limits lim = { .max_head = MAX_HEAD, .max_headers = max_headers, .crlf_only = true };
	size_t scan = 0;

	return h1_parse_request_limits(text, strlen(text), &lim, &scan, rq, status, err);
}

static void
test_header_count_limit(void)
{
	char *text = malloc(200 * 16 + 64);
	struct h1_request rq;
	const char *err;
	size_t len;
	int status;

	/* 100 fields pass, 101 get 431 (each well under the byte limit). */
	for (int n = 100; n <= 101; n++) {
		len = (size_t)sprintf(text, "GET / HTTP/1.1\r\nHost: a\r\n");
		for (int i = 1; i < n; i++)
			len += (size_t)sprintf(text + len, "X-H%03d: v\r\n", i);
		len += (size_t)sprintf(text + len, "\r\n");
		if (n == 100) {
			CU_ASSERT_EQUAL(parse_strict(text, 100, &rq, &status, &err), (int)len);
			CU_ASSERT_EQUAL(rq.n_headers, 100);
			h1_request_dispose(&rq);
		} else {
			CU_ASSERT_EQUAL(parse_strict(text, 100, &rq, &status, &err), -1);
			CU_ASSERT_EQUAL(status, 431);
			CU_ASSERT_STRING_EQUAL(err, "too many header fields");
		}
	}
	/* No count limit: the lenient entry point takes them all. */
	CU_ASSERT_EQUAL(parse(text, &rq, &status), (int)len);
	CU_ASSERT_EQUAL(rq.n_headers, 101);
	h1_request_dispose(&rq);
	free(text);
}

static void
test_bare_lf(void)
{
	static const char *const bad[] = {
		"GET / HTTP/1.1\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\n\n",
		"GET / HTTP/1.1\r\nHost: a\n\n",
		"\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
	};
	struct h1_request rq;
	const char *err;
	int status;

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		CU_ASSERT_EQUAL(parse_strict(bad[i], 0, &rq, &status, &err), -1);
		CU_ASSERT_EQUAL(status, 400);
		CU_ASSERT_STRING_EQUAL(err, "a line of the request head ends in a bare LF, not CRLF");
		/* RFC 9112 §2.2 lets a lenient parser take them (the diagnostics
		 * listener does). */
		CU_ASSERT(parse(bad[i], &rq, &status) > 0);
		h1_request_dispose(&rq);
	}
	CU_ASSERT(parse_strict("\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 0, &rq, &status, &err) >
	    0);
	h1_request_dispose(&rq);
}

static void
test_absolute_form_authority(void)
{
	struct h1_request rq;
	const char *err;
	int status;

	CU_ASSERT_FATAL(parse_strict("GET https://Mcp.Example:8443/mcp?x HTTP/1.1\r\nHost: h\r\n\r\n",
			    0, &rq, &status, &err) > 0);
	CU_ASSERT_EQUAL(rq.authority_len, 16);
	CU_ASSERT_NSTRING_EQUAL(rq.authority, "Mcp.Example:8443", 16);
	CU_ASSERT(rq.https);
	CU_ASSERT_STRING_EQUAL(rq.path, "/mcp");
	h1_request_dispose(&rq);
	CU_ASSERT_FATAL(parse_strict("GET http://h HTTP/1.1\r\nHost: h\r\n\r\n", 0, &rq, &status,
			    &err) > 0);
	CU_ASSERT_EQUAL(rq.authority_len, 1);
	CU_ASSERT(!rq.https);
	h1_request_dispose(&rq);
	CU_ASSERT_FATAL(parse_strict("GET /p HTTP/1.1\r\nHost: h\r\n\r\n", 0, &rq, &status, &err) >
	    0);
	CU_ASSERT_PTR_NULL(rq.authority);
	h1_request_dispose(&rq);
}

int
main(void)
{
	static const struct unit_test tests[] = {
		{ "good requests", test_good_requests },
		{ "header access", test_headers },
		{ "malformed requests and their status", test_malformed },
		{ "header value octets, word at a time", test_value_octets },
		{ "size limits", test_limits },
		{ "incremental input and pipelining", test_incremental_and_pipelined },
		{ "chunked bodies", test_chunked },
		{ "reason phrases", test_reason },
		{ "header count limit (431)", test_header_count_limit },
		{ "bare LF refused when strict", test_bare_lf },
		{ "absolute-form authority", test_absolute_form_authority },
		{ NULL, NULL },
	};

	return unit_run("http1", tests);
}
