/*
 * Legacy SSE transport (MCP 2024-11-05): the backend's first "endpoint"
 * event names the URL clients POST their messages to; the proxy rewrites it
 * so that the messages come back through the proxy (under a trusted
 * X-Forwarded-Prefix, if any) and carry the client's token. Pure text work.
 */
#ifndef PROXY_SSE_ENDPOINT_H
#define PROXY_SSE_ENDPOINT_H

#include <stdbool.h>
#include <stddef.h>

struct evbuffer;

/* Is p safe to put before a URL path: "/", then [A-Za-z0-9/-._~] only, at
 * most 256 bytes, no "//" (another origin) and no dot segments? */
bool sse_endpoint_prefix_safe(const char *p);
/* The session's id in a message URL's query: where the value of its
 * first "sessionId" (TypeScript SDK) or "session_id" (Python SDK)
 * parameter starts in query (*off) and its length; false when there is
 * none, or it is empty. */
bool sse_query_session(const char *query, size_t *off, size_t *len);

/* The length of the first whole event at the start of p (its lines and the
 * blank line that ends it), or 0 when none ends within len. Lines end with
 * CRLF, LF or CR (the SSE grammar: Python's sse-starlette writes CRLF); a CR
 * that is p's last byte ends its line, so a LF after it, arriving later,
 * reads as a blank line of its own: the bytes pass on as they came. */
size_t sse_event_end(const char *p, size_t len);

/* Seal a session id (a new string, or NULL to leave it as it is). */
typedef char *(*sse_seal_fn)(const char *id, void *arg);

/* Write one event (text: its lines, modified in place; any line ends) to
 * out with LF line ends, an
 * "endpoint" event's data rewritten to prefix + its path, and its
 * sessionId sealed by seal (NULL: as it is; sessions across replicas, see
 * session.h). True when it was the endpoint event. */
bool sse_endpoint_rewrite(char *text, const char *prefix, sse_seal_fn seal, void *seal_arg,
    struct evbuffer *out);

#endif
