/*
 * Fuzz the legacy SSE endpoint rewrite (proxy/sse_endpoint.h) on a
 * backend's event stream: split into events with sse_event_end as
 * forward.c does, each event rewritten. An event is never empty, never
 * longer than what was looked at, and ends with a line end; it is whole
 * within its own bytes; its rewrite has LF line ends only and ends with
 * one blank line; the rewrite of an event that is not the endpoint event
 * keeps its lines as they were.
 */
#include <event2/buffer.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "proxy/sse_endpoint.h"
#include "test/fuzz/fuzz.h"

static char *
seal(const char *id, void *arg)
{
	(void)arg;
	return xasprintf("S.%s", id);
}

/* The lines of s (any line ends), the empty ones left out, each with a LF. */
static char *
lines_lf(const char *s)
{
	struct evbuffer *b = evbuffer_new();
	char *out;
	size_t n;

	for (const char *p = s; *p != '\0';) {
		size_t k = strcspn(p, "\r\n");

		if (k > 0) {
			evbuffer_add(b, p, k);
			evbuffer_add(b, "\n", 1);
		}
		p += k;
		p += *p != '\0';
	}
	n = evbuffer_get_length(b);
	out = xmalloc(n + 1);
	evbuffer_remove(b, out, n);
	out[n] = '\0';
	evbuffer_free(b);
	return out;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	size_t len = size, end;

	while ((end = sse_event_end(p, len)) > 0) {
		struct evbuffer *out = evbuffer_new();
		char *text = xstrndup(p, end), *copy, *got, *want;
		size_t n;
		bool endpoint;

		FUZZ_ASSERT(end <= len && (p[end - 1] == '\n' || p[end - 1] == '\r'));
		FUZZ_ASSERT(sse_event_end(p, end) == end);
		if (strlen(text) == end) { /* forward.c passes an event with a NUL as it is */
			copy = xstrdup(text);
			endpoint = sse_endpoint_rewrite(text, "/p", seal, NULL, out);
			n = evbuffer_get_length(out);
			got = xmalloc(n + 1);
			evbuffer_remove(out, got, n);
			got[n] = '\0';
			FUZZ_ASSERT(n >= 1 && got[n - 1] == '\n' && strchr(got, '\r') == NULL);
			FUZZ_ASSERT(n == 1 || (got[n - 2] == '\n' && (n == 2 || got[n - 3] != '\n')));
			if (!endpoint) {
				want = lines_lf(copy);
				FUZZ_ASSERT(n == strlen(want) + 1 && memcmp(got, want, n - 1) == 0);
				free(want);
			}
			free(got);
			free(copy);
		}
		free(text);
		evbuffer_free(out);
		p += end;
		len -= end;
	}
	return 0;
}
