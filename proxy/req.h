/*
 * The handler API: all a route handler may do with a request — read its
 * head and body, answer it whole or stream the answer, learn that its
 * client went away — and how a room mounts its handlers (struct
 * req_router) without seeing the server. A req may outlive its client
 * (see req_gone()); a handler that keeps one across a callback holds a
 * reference. Implemented by the front end (proxy/server.c).
 */
#ifndef PROXY_REQ_H
#define PROXY_REQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/http1.h"

struct evbuffer;
struct server;
struct req;

typedef void (*req_handler_fn)(struct req *sr, void *arg);
/* Called once when the client goes away before the reply ended; the
 * handler must drop its pending work and call req_unref() for the
 * reference it holds. */
typedef void (*req_abort_fn)(struct req *sr, void *arg);
/* Called when a reply's queued output drained below the low-water mark. */
typedef void (*req_drained_fn)(struct req *sr, void *arg);

/* Who a request's verified token names, as the guard hands it to the next
 * hop (borrowed: valid during the pass call only). */
struct req_principal {
	const char *sub;       /* or NULL */
	const char *scope;     /* space-separated, or NULL */
	const char *client_id; /* or NULL */
	/* Further claims as a JSON object's text, or NULL: the external IdP's
	 * token claims, or (embedded AS) the upstream ID-token claims of the
	 * login session, e.g. "groups". */
	const char *claims_json;
};

/* How a request that a handler has let through is passed on (by the guard
 * to the forwarder): a header to add, and whether cookies are dropped. */
struct req_pass_opts {
	const char *inject_name;               /* header to add (e.g. "Authorization"), or NULL */
	const char *inject_prefix;             /* put before its value (e.g. "Bearer "), or NULL */
	const char *inject_value;              /* its value */
	bool strip_cookies;                    /* drop Cookie (set whenever auth is on) */
	const struct req_principal *principal; /* the token's claims, or NULL */
};
/* The next handler of a request: takes it over and answers it. opts may be
 * NULL. */
typedef void (*req_pass_fn)(struct req *sr, const struct req_pass_opts *opts, void *arg);

/*
 * Called once a request's head is read, before its body, for a request that
 * declares a body: answer it now (a 401 needs no body; the body is then
 * never read and the connection closes after the reply) or return true to
 * have the body read and the route's handler called. The request has no
 * body yet (req_body() is empty).
 */
typedef bool (*req_head_fn)(struct req *sr, void *arg);

/* What a route may say beyond its handler. */
struct req_route_opts {
	size_t max_body;  /* bytes of body read at most (413 above); 0 = the default */
	req_head_fn head; /* NULL = none */
	void *head_arg;
};

/* Mount fn on path (or, with prefix, every path below it); label is the
 * metrics label. Later routes do not override earlier ones. opts may be
 * NULL. */
typedef void (*req_route_fn)(void *ctx, const char *path, bool prefix, const char *label,
    req_handler_fn fn, void *arg, const struct req_route_opts *opts);
struct req_router {
	req_route_fn route;
	void *ctx;
};

/* Mount a route through r. */
static inline void
req_route(const struct req_router *r, const char *path, bool prefix, const char *label,
    req_handler_fn fn, void *arg)
{
	r->route(r->ctx, path, prefix, label, fn, arg, NULL);
}

/* Mount a route with options through r. */
static inline void
req_route_opts(const struct req_router *r, const char *path, bool prefix, const char *label,
    req_handler_fn fn, void *arg, const struct req_route_opts *opts)
{
	r->route(r->ctx, path, prefix, label, fn, arg, opts);
}

/* --- per request: the request (valid as long as a reference is held) --- */
bool req_gone(const struct req *sr);
const char *req_id(const struct req *sr);
enum h1_method req_method(const struct req *sr);
const char *req_method_name(const struct req *sr); /* "GET", ... */
const char *req_target(const struct req *sr);      /* as sent */
const char *req_path(const struct req *sr);        /* raw, without query */
const char *req_query(const struct req *sr);       /* raw, or NULL */
/* The first header of that name (case-insensitive), or NULL. */
const char *req_header(const struct req *sr, const char *name);
/* Iterate the request headers in order: start with *i = 0; false at the end. */
bool req_header_next(const struct req *sr, size_t *i, const char **name, const char **value);
/* The whole request body (never NULL; may be empty). */
struct evbuffer *req_body(const struct req *sr);
/* When the request body is one JSON-RPC message, its id as JSON text
 * ("null" for a notification), so an error answer can carry it; else NULL.
 * Caller frees. For error paths only: it parses the body. */
char *req_jsonrpc_id(struct req *sr);
const char *req_peer(const struct req *sr); /* client IP */
/* Did another replica forward it to us (the peer listener)? */
bool req_via_peer(const struct req *sr);
/* Sessions across replicas: where the MCP session a request names is
 * held, as the forwarder's front (forward_front_handler) found it before
 * the guard ran. ELSEWHERE (another replica's, or no session this
 * deployment issued): the forwarder sends it to the owner, or answers
 * 404, and the owner runs the whole MCP chain itself; the rooms in between
 * check the token but leave the rest (the login session's upstream token,
 * the tool policy, its audit lines and list filtering) to the owner. */
enum req_session_home { REQ_HOME_UNKNOWN, REQ_HOME_HERE, REQ_HOME_ELSEWHERE };
void req_set_session_home(struct req *sr, enum req_session_home home);
enum req_session_home req_session_home(const struct req *sr);
/* The legacy SSE transport's session, as the client holds its id. A
 * message POST's: the one its URL names (sessionId, or session_id), or
 * NULL. A GET /sse stream's: the one its endpoint event named, set by the
 * forwarder when it sent that event (never taken from the client), or
 * NULL until then. */
const char *req_sse_session(struct req *sr);
const char *req_sse_stream_session(const struct req *sr);
void req_set_sse_stream_session(struct req *sr, const char *sid);
struct server *req_server(const struct req *sr);
void req_ref(struct req *sr);
void req_unref(struct req *sr);
void req_set_abort(struct req *sr, req_abort_fn fn, void *arg);
/* Count response body bytes for the access log (streamed replies). */
void req_add_bytes(struct req *sr, size_t n);
/* Mark a long-lived stream (ended first on shutdown, counted in metrics). */
void req_set_stream(struct req *sr, bool stream);
/* Watch a reply (audit): fn(sr, status, data, len, arg) sees the response
 * body bytes as they are queued, then fn(sr, status, NULL, 0, arg) once
 * when the request is over (499: the client went away first; 0: it ended
 * without a reply), after which arg may be freed. One watcher; NULL stops. */
typedef void (*req_watch_fn)(struct req *sr, int status, const void *data, size_t len, void *arg);
void req_set_watch(struct req *sr, req_watch_fn fn, void *arg);
/* Rewrite a streamed reply's body (MCP list filtering): fn takes every
 * byte of in and adds what is to be sent to out; at the end (in NULL) it
 * adds the rest. -1: the body cannot be rewritten; the connection is then
 * closed without ending the reply, so nothing unfiltered goes out. A
 * filtered reply of a known length that is no stream goes out whole once
 * the filter is done, with its new Content-Length (the list filter holds
 * such a body whole anyway); a stream's is sent chunked. If the filter is
 * taken away while such a reply is held, the connection is closed. Set
 * before the reply starts; its arg
 * must live until the watcher's end (free it there). Whole replies
 * (req_reply) are not filtered. */
typedef int (*req_filter_fn)(struct req *sr, struct evbuffer *in, struct evbuffer *out, void *arg);
void req_set_filter(struct req *sr, req_filter_fn fn, void *arg);

/* Complete replies. They do nothing when the client is gone. A reply
 * without a Content-Type gets application/json. */
void req_reply(struct req *sr, int status, const char *content_type, const void *body, size_t len);
/* JSON body with Cache-Control: no-store. */
void req_reply_json(struct req *sr, int status, const char *json);
/* {"error":code,"error_description":desc} (RFC 6749 §5.2 shape). */
void req_reply_oauth_error(struct req *sr, int status, const char *code, const char *desc);
void req_add_header(struct req *sr, const char *name, const char *value);
/* Forget the response headers added so far (X-Request-Id included). */
void req_clear_headers(struct req *sr);

/* Streaming replies: start with a Content-Length (or -1: chunked, or
 * close-delimited for an HTTP/1.0 client), send chunks (their bytes are
 * moved out of buf and counted for the access log), end. They do nothing
 * when the client is gone. */
void req_reply_start(struct req *sr, int status, int64_t content_length);
void req_reply_chunk(struct req *sr, struct evbuffer *buf);
void req_reply_end(struct req *sr);
/* Bytes queued to the client, not yet taken by the kernel (0 once gone). */
size_t req_output_pending(const struct req *sr);
/* Call fn when the queued output drains below the low-water mark (for
 * backpressure); NULL to stop. */
void req_set_drained(struct req *sr, req_drained_fn fn, void *arg);
/* Close the client connection without ending the reply properly (a
 * Content-Length reply that cannot be completed). The abort callback is
 * not called; the request is gone afterwards. Safe to call twice. */
void req_abort_connection(struct req *sr);

#endif
