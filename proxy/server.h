/*
 * The HTTP front: our own HTTP/1.1 server (proxy/http1.c parses) on the
 * listener for MCP clients and the one for diagnostics, the route table,
 * one req per request (access log, metrics, client disconnect
 * detection), /health, /ready and /metrics, and the graceful drain on
 * SIGTERM/SIGINT. Handlers own no sockets: they see a request only through
 * the handler API (proxy/req.h), and only the composition root and the
 * proxy room include this header.
 */
#ifndef PROXY_SERVER_H
#define PROXY_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proxy/http1.h"
#include "proxy/req.h"

struct config;
struct evdns_base;
struct event_base;
struct evbuffer;
struct server;
struct req;

typedef void (*server_stopped_fn)(void *arg);

/* SERVER_PEER: the other replicas forward the requests of MCP sessions this
 * replica's backend holds (server.peerListen); every request there must
 * carry a valid peer MAC (proxy/peerauth.h) and goes to the MCP fallback. */
enum server_listener { SERVER_MCP, SERVER_DIAG, SERVER_PEER };
#define SERVER_N_LISTENERS 3

/* "mcp", "diagnostics" or "peer" (logs and metrics labels). */
const char *server_listener_name(enum server_listener which);

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
/* server_route() with options (NULL = none): a body limit of its own and a
 * check run on the head before the body is read. Routes without a limit of
 * their own read at most server.maxEndpointBodySize; the fallback reads up
 * to server.maxBodySize. */
void server_route_opts(struct server *srv, enum server_listener which, const char *path,
    bool prefix, const char *route, req_handler_fn fn, void *arg,
    const struct req_route_opts *opts);
/* A router that mounts routes on one listener, for the rooms that may not
 * see the server (the AS, the guard's RFC 9728 document). */
struct req_router server_router(struct server *srv, enum server_listener which);
/* The handler for MCP-listener paths no route claims (the guard/forward). */
void server_set_fallback(struct server *srv, const char *route, req_handler_fn fn, void *arg);
/* Options of the fallback (see server_route_opts()). */
void server_set_fallback_opts(struct server *srv, const struct req_route_opts *opts);

/* Stop accepting, let in-flight requests finish (streams are told through
 * their abort callback when the drain deadline passes), then call done. */
void server_shutdown(struct server *srv, server_stopped_fn done, void *arg);
size_t server_inflight(const struct server *srv);

/* The loop's asynchronous resolver, shared with the forwarder. */
struct evdns_base *server_dns(struct server *srv);
/* A part of /health besides the backend (e.g. the AS's storage): fn adds
 * its fields to o and says whether it is healthy. An unhealthy part makes
 * /health "degraded" (still 200) and never /ready 503: the sidecar is not
 * restarted for a neighbour. At most SERVER_MAX_HEALTH_PARTS. */
#define SERVER_MAX_HEALTH_PARTS 4
struct json_object;
typedef bool (*server_health_fn)(struct json_object *o, void *arg);
void server_add_health(struct server *srv, const char *name, server_health_fn fn, void *arg);
/* Backend reachability as last probed (for health and the guard). */
bool server_backend_reachable(const struct server *srv);

#endif
