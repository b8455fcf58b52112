/*
 * The legacy SSE endpoint rewrite (see sse_endpoint.h).
 */
#include "proxy/sse_endpoint.h"

#include <ctype.h>
#include <event2/buffer.h>
#include <string.h>

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
sse_endpoint_rewrite(char *text, const char *prefix, struct evbuffer *out)
{
	char *line, *save = NULL;
	bool is_endpoint = false;

	for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		size_t ll = strlen(line);

		if (ll > 0 && line[ll - 1] == '\r')
			line[--ll] = '\0';
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
			if (pathpart[0] == '/')
				evbuffer_add_printf(out, "data: %s%s\n", prefix, pathpart);
			else
				evbuffer_add_printf(out, "data: %s\n", v);
			continue;
		}
		evbuffer_add_printf(out, "%s\n", line);
	}
	evbuffer_add(out, "\n", 1);
	return is_endpoint;
}
