/*
 * Legacy SSE transport (MCP 2024-11-05): the backend's first "endpoint"
 * event names the URL clients POST their messages to; the proxy rewrites it
 * so that the messages come back through the proxy (under a trusted
 * X-Forwarded-Prefix, if any) and carry the client's token. Pure text work.
 */
#ifndef PROXY_SSE_ENDPOINT_H
#define PROXY_SSE_ENDPOINT_H

#include <stdbool.h>

struct evbuffer;

/* Is p safe to put before a URL path: "/", then [A-Za-z0-9/-._~] only, at
 * most 256 bytes, no "//" (another origin) and no dot segments? */
bool sse_endpoint_prefix_safe(const char *p);
/* Write one event (text: its lines, modified in place) to out, an
 * "endpoint" event's data rewritten to prefix + its path. True when it was
 * the endpoint event. */
bool sse_endpoint_rewrite(char *text, const char *prefix, struct evbuffer *out);

#endif
