/*
 * The HTTP front: our own HTTP/1.1 server (proxy/http1.c parses) on the
 * listener for MCP clients and the one for diagnostics, the route table,
 * one req per request (access log, metrics, client disconnect
 * detection), /health, /ready and /metrics, and the graceful drain on
 * SIGTERM/SIGINT. Handlers own no sockets: they read the request and
 * answer through a req, which may outlive its client (see
 * req_gone()).
 */
#ifndef PROXY_SERVER_H
#define PROXY_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proxy/http1.h"

struct config;
struct evdns_base;
struct event_base;
struct evbuffer;
struct server;
struct req;

typedef void (*req_handler_fn)(struct req *sr, void *arg);
/* Called once when the client goes away before the reply ended; the
 * handler must drop its pending work and call req_unref() for the
 * reference it holds. */
typedef void (*req_abort_fn)(struct req *sr, void *arg);
typedef void (*server_stopped_fn)(void *arg);
/* Called when a reply's queued output drained below the low-water mark. */
typedef void (*req_drained_fn)(struct req *sr, void *arg);

enum server_listener { SERVER_MCP, SERVER_DIAG };

struct server *server_new(struct event_base *base, const struct config *cfg);

/*
 * Read what socket fd has onto the end of buf (the front end's and the
 * backend client's one read path). *size, kept by the caller per socket
 * (0 to start), is how much to ask for: one 4 KiB buffer chunk for the
 * small messages MCP mostly exchanges (a malloc far cheaper than the 32 KiB
 * chunk a 16 KiB read needs), 16 KiB while reads keep filling it. Returns as
 * read(2): bytes read, 0 at EOF, -1 with errno.
 */
ssize_t server_sock_read(int fd, struct evbuffer *buf, size_t *size);
/* Write what buf holds (as much as the socket takes) and drain that.
 * Returns as write(2). */
ssize_t server_sock_write(int fd, struct evbuffer *buf);

/* Bodies up to this size are copied next to their head rather than linked
 * as a chunk of their own, so that a whole small message is one send(). */
#define SERVER_COPY_MAX 2048
/* Move src's bytes to the end of dst: copied when small (see above). */
void server_buf_add_small(struct evbuffer *dst, struct evbuffer *src);
void server_free(struct server *srv);
/* Bind both listeners; logs {"msg":"listening","listener",...,"port"}. */
int server_listen(struct server *srv, char *err, size_t errlen);
/* Bound port of a listener (after server_listen). */
int server_port(const struct server *srv, enum server_listener which);

/* Route an exact path (or, with prefix, every path below it) on a listener.
 * route is the metrics label. Later routes do not override earlier ones. */
void server_route(struct server *srv, enum server_listener which, const char *path, bool prefix,
    const char *route, req_handler_fn fn, void *arg);
/* The handler for MCP-listener paths no route claims (the guard/forward). */
void server_set_fallback(struct server *srv, const char *route, req_handler_fn fn, void *arg);

/* Stop accepting, let in-flight requests finish (streams are told through
 * their abort callback when the drain deadline passes), then call done. */
void server_shutdown(struct server *srv, server_stopped_fn done, void *arg);
size_t server_inflight(const struct server *srv);

/* The loop's asynchronous resolver, shared with the forwarder. */
struct evdns_base *server_dns(struct server *srv);
/* Backend reachability as last probed (for health and the guard). */
bool server_backend_reachable(const struct server *srv);

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
struct server *req_server(const struct req *sr);
void req_ref(struct req *sr);
void req_unref(struct req *sr);
void req_set_abort(struct req *sr, req_abort_fn fn, void *arg);
/* Count response body bytes for the access log (streamed replies). */
void req_add_bytes(struct req *sr, size_t n);
/* Mark a long-lived stream (ended first on shutdown, counted in metrics). */
void req_set_stream(struct req *sr, bool stream);

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
