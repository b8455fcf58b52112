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

bool
sse_query_session(const char *query, size_t *off, size_t *len)
{
	const char *p = query;

	while (p != NULL && *p != '\0') {
		const char *end = strchr(p, '&');
		size_t n = end != NULL ? (size_t)(end - p) : strlen(p);

		if (n > 10 && strncmp(p, "sessionId=", 10) == 0) {
			*off = (size_t)(p - query) + 10;
			*len = n - 10;
			return true;
		}
		if (n >= 9 && strncmp(p, "sessionId", 9) == 0 && (n == 9 || p[9] == '='))
			return false; /* the first one is empty: no session */
		p = end != NULL ? end + 1 : NULL;
	}
	return false;
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

bool
sse_endpoint_rewrite(char *text, const char *prefix, sse_seal_fn seal, void *seal_arg,
    struct evbuffer *out)
{
	char *line, *save = NULL;
	bool is_endpoint = false;

	for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		size_t ll = strlen(line);

		if (ll > 0 && line[ll - 1] == '\r')
			line[--ll] = '\0';
		if (ll == 0)
			continue; /* the blank line that ends the event: added below */
		if (strcmp(line, "event: endpoint") == 0 || strcmp(line, "event:endpoint") == 0)
			is_endpoint = true;
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
