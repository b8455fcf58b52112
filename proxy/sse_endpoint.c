/*
 * The legacy SSE endpoint rewrite (see sse_endpoint.h).
 */
#include "proxy/sse_endpoint.h"

#include <ctype.h>
#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

bool
sse_endpoint_prefix_safe(const char *p)
{
	size_t n;

	if (p == NULL || p[0] != '/' || (n = strlen(p)) > 256)
		return false;
	/* "//host" would make the endpoint a protocol-relative URL to another
	 * origin; dot segments would climb out of the prefix. */
	if (strstr(p, "//") != NULL || strstr(p, "/./") != NULL || strstr(p, "/../") != NULL ||
	    (n >= 2 && strcmp(p + n - 2, "/.") == 0) || (n >= 3 && strcmp(p + n - 3, "/..") == 0))
		return false;
	for (; *p; p++) {
		if (!isalnum((unsigned char)*p) && strchr("/-._~", *p) == NULL)
			return false;
	}
	return true;
}

/* Is the parameter p (n bytes, up to its '&') named sessionId (the
 * TypeScript SDK's) or session_id (the Python SDK's)? *name_len: the name's. */
static bool
sse_session_param(const char *p, size_t n, size_t *name_len)
{
	static const char *const names[] = { "sessionId", "session_id" };

	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		size_t k = strlen(names[i]);

		if (n >= k && strncmp(p, names[i], k) == 0 && (n == k || p[k] == '=')) {
			*name_len = k;
			return true;
		}
	}
	return false;
}

bool
sse_query_session(const char *query, size_t *off, size_t *len)
{
	const char *p = query;
	size_t k;

	while (p != NULL && *p != '\0') {
		const char *end = strchr(p, '&');
		size_t n = end != NULL ? (size_t)(end - p) : strlen(p);

		if (sse_session_param(p, n, &k)) {
			if (n <= k + 1)
				return false; /* the first one is empty: no session */
			*off = (size_t)(p - query) + k + 1;
			*len = n - k - 1;
			return true;
		}
		p = end != NULL ? end + 1 : NULL;
	}
	return false;
}

size_t
sse_event_end(const char *p, size_t len)
{
	bool line_empty = true; /* nothing yet on the line at i */

	for (size_t i = 0; i < len; i++) {
		if (p[i] != '\r' && p[i] != '\n') {
			line_empty = false;
			continue;
		}
		if (p[i] == '\r' && i + 1 < len && p[i + 1] == '\n')
			i++; /* CRLF: one line end */
		if (line_empty)
			return i + 1;
		line_empty = true;
	}
	return 0;
}

/* The endpoint's path, its sessionId sealed (a new string). */
static char *
sse_sealed_path(const char *path, sse_seal_fn seal, void *arg)
{
	const char *q = strchr(path, '?');
	size_t off, len;
	char *id, *sealed, *out;

	if (seal == NULL || q == NULL || !sse_query_session(q + 1, &off, &len))
		return NULL;
	id = xstrndup(q + 1 + off, len);
	sealed = seal(id, arg);
	free(id);
	if (sealed == NULL)
		return NULL;
	out = xasprintf("%.*s%s%s", (int)(q + 1 + off - path), path, sealed, q + 1 + off + len);
	free(sealed);
	return out;
}

/* Does one of the event's lines (any line ends) name it "endpoint"? Its
 * fields may come in any order: data before event too. */
static bool
sse_is_endpoint(const char *text)
{
	for (const char *p = text; *p != '\0';) {
		size_t n = strcspn(p, "\r\n");

		if ((n == 15 && strncmp(p, "event: endpoint", 15) == 0) ||
		    (n == 14 && strncmp(p, "event:endpoint", 14) == 0))
			return true;
		p += n;
		p += *p != '\0';
	}
	return false;
}

bool
sse_endpoint_rewrite(char *text, const char *prefix, sse_seal_fn seal, void *seal_arg,
    struct evbuffer *out)
{
	char *line, *save = NULL;
	bool is_endpoint = sse_is_endpoint(text);

	/* Lines end with CR, LF or CRLF; strtok_r skips the empty ones, the
	 * blank line that ends the event among them (added below). */
	for (line = strtok_r(text, "\r\n", &save); line != NULL;
	     line = strtok_r(NULL, "\r\n", &save)) {
		if (is_endpoint && strncmp(line, "data:", 5) == 0) {
			const char *v = line + 5 + (line[5] == ' ');
			const char *pathpart = v;

			if (strncmp(v, "http://", 7) == 0 || strncmp(v, "https://", 8) == 0) {
				pathpart = strchr(strchr(v, ':') + 3, '/');
				if (pathpart == NULL)
					pathpart = "/";
			}
			if (pathpart[0] == '/') {
				char *sealed = sse_sealed_path(pathpart, seal, seal_arg);

				evbuffer_add_printf(out, "data: %s%s\n", prefix,
				    sealed != NULL ? sealed : pathpart);
				free(sealed);
			} else {
				char *sealed = sse_sealed_path(v, seal, seal_arg);

				evbuffer_add_printf(out, "data: %s\n", sealed != NULL ? sealed : v);
				free(sealed);
			}
			continue;
		}
		evbuffer_add_printf(out, "%s\n", line);
	}
	evbuffer_add(out, "\n", 1);
	return is_endpoint;
}
