/*
 * Fuzz proxy/http1: the request-head parser and the chunked-body decoder
 * that face every client byte. The first input byte picks a split point so
 * heads also arrive in two pieces (as from the network): feeding the bytes
 * whole or in two steps must give the same verdict. A parsed head never
 * claims more bytes than it was given, its fields are consistent, and the
 * chunked decoder never grows the body past its limit.
 */
#include <event2/buffer.h>
#include <stdbool.h>

#include "proxy/http1.h"
#include "test/fuzz/fuzz.h"

#define MAX_HEAD 8192
#define MAX_BODY 4096

static int
parse(const char *buf, size_t len, size_t split, struct h1_request *rq, int *status)
{
	const char *err = NULL;
	size_t scan = 0;
	int rc;

	if (split > 0 && split < len) {
		rc = h1_parse_request(buf, split, MAX_HEAD, &scan, rq, status, &err);
		if (rc != 0)
			return rc;
	}
	rc = h1_parse_request(buf, len, MAX_HEAD, &scan, rq, status, &err);
	if (rc < 0)
		FUZZ_ASSERT(err != NULL && *status >= 400 && *status <= 505);
	return rc;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct h1_request a, b;
	struct h1_chunked ch = { 0 };
	struct evbuffer *in, *body;
	const char *err = NULL;
	int ra, rb, sa = 0, sb = 0;
	size_t split;

	if (size < 1)
		return 0;
	split = data[0];
	data++;
	size--;
	memset(&a, 0, sizeof a);
	memset(&b, 0, sizeof b);
	ra = parse((const char *)data, size, 0, &a, &sa);
	rb = parse((const char *)data, size, split, &b, &sb);
	FUZZ_ASSERT(ra == rb);
	FUZZ_ASSERT(ra <= (int)size);
	if (ra < 0)
		FUZZ_ASSERT(sa == sb);
	if (ra > 0) {
		FUZZ_ASSERT(a.method_name != NULL && a.target != NULL && a.path != NULL);
		FUZZ_ASSERT(a.path[0] == '/' || a.path[0] == '*' || strncmp(a.target, "http", 4) == 0);
		FUZZ_ASSERT(!(a.chunked && a.content_length >= 0));
		FUZZ_ASSERT(a.n_headers == b.n_headers);
		for (size_t i = 0; i < a.n_headers; i++) {
			FUZZ_ASSERT(strcmp(a.headers[i].name, b.headers[i].name) == 0);
			FUZZ_ASSERT(strcmp(a.headers[i].value, b.headers[i].value) == 0);
			FUZZ_ASSERT(h1_header_find(&a, a.headers[i].name) != NULL);
		}
	}
	h1_request_dispose(&a);
	h1_request_dispose(&b);
	h1_request_dispose(&a); /* safe twice */

	/* The MCP listener's limits only refuse more: what they take, the
	 * lenient parser takes alike; an absolute-form authority lies in the
	 * target. */
	{
		struct h1_limits lim = { .max_head = MAX_HEAD, .max_headers = 16, .crlf_only = true };
		size_t scan = 0;
		int rs, st = 0;

		rs = h1_parse_request_limits((const char *)data, size, &lim, &scan, &b, &st, &err);
		if (rs > 0) {
			FUZZ_ASSERT(rs == ra);
			FUZZ_ASSERT(b.n_headers <= 16);
			for (int i = 0; i < rs; i++)
				FUZZ_ASSERT(data[i] != '\n' || (i > 0 && data[i - 1] == '\r'));
			if (b.authority != NULL)
				FUZZ_ASSERT(b.authority >= b.target &&
				    b.authority + b.authority_len <= b.target + strlen(b.target));
		} else if (rs < 0) {
			FUZZ_ASSERT(err != NULL && st >= 400 && st <= 505);
		}
		h1_request_dispose(&b);
	}

	/* The same bytes as a chunked body. */
	in = evbuffer_new();
	body = evbuffer_new();
	evbuffer_add(in, data, size);
	rb = h1_chunked_decode(&ch, in, body, MAX_BODY, MAX_HEAD, &err);
	FUZZ_ASSERT(rb >= -2 && rb <= 1);
	if (rb == -1)
		FUZZ_ASSERT(err != NULL);
	FUZZ_ASSERT(evbuffer_get_length(body) <= MAX_BODY);
	evbuffer_free(in);
	evbuffer_free(body);
	return 0;
}
