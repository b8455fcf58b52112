/*
 * The HTTP front (see server.h): our own HTTP/1.1 server. Connections are
 * accepted by an evconnlistener; each has a persistent EV_READ event (its
 * epoll interest never changes while it lives), reads with recv (readv
 * across two extents) into the input evbuffer's free space (no FIONREAD),
 * and writes replies at once with send (writev for a reply in pieces; a
 * small one is laid out in one), registering EV_WRITE only when the kernel
 * does not take everything. proxy/http1.c parses; this file owns
 * connections, timeouts and the lifetime of each request's req.
 *
 * A connection serves one request at a time: later (pipelined) bytes wait
 * in its input buffer, and above a high-water mark it stops reading until
 * the reply is done. Timeouts: headerTimeout is a deadline for a whole
 * request from its first byte; idleTimeout bounds keep-alive idleness
 * between requests; while a handler works or a reply streams there is no
 * read timeout at all, only a write-stall timeout while output is pending.
 * EOF or an error on the read side at any time means the client is gone.
 *
 * Lifetimes:
 *  - the server holds one reference on a req from dispatch until
 *    the reply was flushed to the kernel or the client went away; then the
 *    req is marked gone and every later reply call is a no-op;
 *  - handlers that keep work in flight take their own reference; dispatch
 *    holds one across the handler call;
 *  - a connection is reference-counted too: its callbacks hold a reference
 *    while they run, so a close from deep inside (a handler replying, a
 *    write error) only frees it when the outermost caller is done.
 * Nothing here blocks: writes are non-blocking, the backend probe is a
 * non-blocking connect.
 */
#include "proxy/server.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/xalloc.h"
#include "common/xevent.h"
#include "config/config.h"
#include "proxy/log.h"
#include "proxy/peerauth.h"
#include "proxy/metrics.h"

#include "proxy/server_private.h"

static void conn_process(struct conn *c);
static void conn_linger(struct conn *c);

struct server *
server_new(struct event_base *base, const struct config *cfg)
{
	struct server *srv = xcalloc(1, sizeof *srv);
	struct evhttp_uri *u;

	srv->base = base;
	srv->cfg = cfg;
	TAILQ_INIT(&srv->inflight);
	LIST_INIT(&srv->conns);
	srv->dns = evdns_base_new(base,
	    EVDNS_BASE_INITIALIZE_NAMESERVERS | EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (srv->dns == NULL)
		srv->dns = evdns_base_new(base, 0);
	u = evhttp_uri_parse(cfg->backend.url);
	if (u != NULL && evhttp_uri_get_host(u) != NULL) {
		srv->backend_host = xstrdup(evhttp_uri_get_host(u));
		srv->backend_port = evhttp_uri_get_port(u) > 0 ? evhttp_uri_get_port(u) : 80;
	}
	if (u != NULL)
		evhttp_uri_free(u);
	snprintf(srv->backend_error, sizeof srv->backend_error, "not checked yet");
	srv->m_requests = metrics_counter("mcp_proxy_http_requests_total",
	    "HTTP requests answered, by listener, method, route and status.",
	    "listener,method,route,status");
	srv->m_latency = metrics_histogram("mcp_proxy_http_request_duration_seconds",
	    "Time from request received to reply completed, by listener and route.",
	    "listener,route", NULL, 0);
	srv->m_streams = metrics_gauge("mcp_proxy_open_streams",
	    "Streaming replies (SSE) currently open to clients.", "");
	metrics_set(srv->m_streams, 0);
	srv->m_log_dropped = metrics_counter("mcp_proxy_log_dropped_total",
	    "Log lines dropped because stderr did not take them and the log queue was full.", "");
	metrics_set(srv->m_log_dropped, 0);
	srv->m_accept_paused = metrics_counter("mcp_proxy_accept_paused_total",
	    "Times a listener stopped accepting: at server.maxConnections, or out of file "
	    "descriptors (EMFILE/ENFILE).",
	    "listener,reason");
	srv->m_accept_paused_now = metrics_gauge("mcp_proxy_accept_paused",
	    "1 while a listener does not accept new connections.", "listener");
	metrics_set(srv->m_accept_paused_now, 0, "mcp");
	metrics_set(srv->m_accept_paused_now, 0, "diagnostics");
	if (cfg->server.peer_listen != NULL && cfg->server.peer_secret.value != NULL) {
		srv->peerauth = peerauth_new(cfg->server.peer_secret.value,
		    cfg->server.peer_secret.value_len, 0);
		srv->m_peer_requests = metrics_counter("mcp_proxy_peer_requests_total",
		    "MCP session requests between replicas: out (forwarded to the owner; ok, "
		    "owner_gone, error, bad_session) and in (on the peer listener; ok or why "
		    "refused).",
		    "direction,outcome");
		metrics_set(srv->m_accept_paused_now, 0, "peer");
	}
	return srv;
}

void
server_free(struct server *srv)
{
	struct conn *c;

	if (srv == NULL)
		return;
	/* Open connections: their requests' handlers are told (abort). */
	while ((c = LIST_FIRST(&srv->conns)) != NULL)
		conn_close(c);
	for (int i = 0; i < SERVER_N_LISTENERS; i++) {
		if (srv->listeners[i].lev != NULL)
			evconnlistener_free(srv->listeners[i].lev);
		if (srv->listeners[i].resume != NULL)
			event_free(srv->listeners[i].resume);
	}
	if (srv->probe_bev != NULL)
		bufferevent_free(srv->probe_bev);
	peerauth_free(srv->peerauth);
	if (srv->probe_timer != NULL)
		event_free(srv->probe_timer);
	if (srv->drain_timer != NULL)
		event_free(srv->drain_timer);
	if (srv->dns != NULL)
		evdns_base_free(srv->dns, 0);
	for (size_t i = 0; i < srv->n_routes; i++)
		free(srv->routes[i].path);
	for (size_t i = 0; i < srv->n_authorities; i++)
		free(srv->authorities[i]);
	free(srv->authorities);
	free(srv->routes);
	free(srv->backend_host);
	free(srv);
}

struct evdns_base *
server_dns(struct server *srv)
{
	return srv->dns;
}

void
server_route(struct server *srv, enum server_listener which, const char *path, bool prefix,
    const char *label, req_handler_fn fn, void *arg)
{
	server_route_opts(srv, which, path, prefix, label, fn, arg, NULL);
}

void
server_route_opts(struct server *srv, enum server_listener which, const char *path, bool prefix,
    const char *label, req_handler_fn fn, void *arg, const struct req_route_opts *opts)
{
	struct route *r;

	srv->routes = xreallocarray(srv->routes, srv->n_routes + 1, sizeof *srv->routes);
	r = &srv->routes[srv->n_routes++];
	r->which = which;
	r->path = xstrdup(path);
	r->path_len = strlen(path);
	r->prefix = prefix;
	r->label = label;
	r->fn = fn;
	r->arg = arg;
	memset(&r->opts, 0, sizeof r->opts);
	if (opts != NULL)
		r->opts = *opts;
}

/* A req_router's route function: ctx is the listener routes go to. */
static void
server_router_route(void *ctx, const char *path, bool prefix, const char *label, req_handler_fn fn,
    void *arg, const struct req_route_opts *opts)
{
	struct listener *l = ctx;

	server_route_opts(l->srv, l->which, path, prefix, label, fn, arg, opts);
}

struct req_router
server_router(struct server *srv, enum server_listener which)
{
	struct listener *l = &srv->listeners[which];
	struct req_router r = { server_router_route, l };

	l->srv = srv;
	l->which = which;
	return r;
}

void
server_set_fallback(struct server *srv, const char *label, req_handler_fn fn, void *arg)
{
	srv->fallback.label = label;
	srv->fallback.fn = fn;
	srv->fallback.arg = arg;
}

void
server_set_fallback_opts(struct server *srv, const struct req_route_opts *opts)
{
	memset(&srv->fallback.opts, 0, sizeof srv->fallback.opts);
	if (opts != NULL)
		srv->fallback.opts = *opts;
}

/* The most body bytes a request for route r on listener l may bring: the
 * route's own limit, else server.maxBodySize for what is forwarded (the
 * fallback) and server.maxEndpointBodySize for our own endpoints, whose
 * requests are small (a 1 MiB registration is an attack, not a client). */
static size_t
server_max_body(const struct server *srv, const struct listener *l, const struct route *r)
{
	if (l->which == SERVER_DIAG)
		return l->max_body;
	if (r != NULL && r->opts.max_body > 0)
		return r->opts.max_body < l->max_body ? r->opts.max_body : l->max_body;
	if (r == &srv->fallback)
		return l->max_body;
	return (size_t)srv->cfg->server.max_endpoint_body_size;
}

static const struct route *
server_match(const struct server *srv, enum server_listener which, const char *path)
{
	for (size_t i = 0; i < srv->n_routes; i++) {
		const struct route *r = &srv->routes[i];

		if (r->which != which)
			continue;
		/* Paths start with '/': the next byte tells most routes apart
		 * without a call (the embedded AS mounts a dozen before /mcp). */
		if (r->path_len > 1 && path[0] != '\0' && path[1] != r->path[1])
			continue;
		if (strcmp(path, r->path) == 0)
			return r;
		if (r->prefix && strncmp(path, r->path, r->path_len) == 0 &&
		    (path[r->path_len] == '/' || r->path[r->path_len - 1] == '/'))
			return r;
	}
	if (which != SERVER_DIAG && srv->fallback.fn != NULL)
		return &srv->fallback;
	return NULL;
}

/* The request is the server's now (in flight, with an id and its route's
 * label): from its head when its route checks heads, else once complete. */
static void
server_dispatch_begin(struct conn *c)
{
	struct server *srv = c->srv;
	struct req *sr = c->sr;

	sr->dispatched = true;
	sr->start_us = clock_mono_us();
	sr->route = sr->matched != NULL ? sr->matched->label : "not_found";
	req_make_id(sr);
	TAILQ_INSERT_TAIL(&srv->inflight, sr, entry);
	srv->n_inflight++;
	req_add_header(sr, "X-Request-Id", sr->id);
}

/* The request is complete (head and body): hand it to its route. */
static void
server_dispatch(struct conn *c)
{
	struct req *sr = c->sr;
	const struct route *r = sr->matched;

	if (!sr->dispatched)
		server_dispatch_begin(c);
	req_ref(sr); /* the handler may finish the request synchronously */
	if (r == NULL)
		req_reply_json(sr, 404, "{\"error\":\"not_found\"}");
	else
		r->fn(sr, r->arg);
	req_unref(sr);
}

/*
 * Run the route's head check on a request that declares a body. True when
 * the body is to be read; false when the check answered (the connection
 * then closes after the reply and lingers, never reading the body).
 */
static bool
server_check_head(struct conn *c)
{
	struct req *sr = c->sr;
	const struct route *r = sr->matched;
	bool keepalive = c->keepalive, go;

	server_dispatch_begin(c);
	/* Said before the check runs: a reply it makes may be flushed (and the
	 * connection completed) before it returns. */
	c->keepalive = false;
	c->body_unread = true;
	req_ref(sr);
	go = r->opts.head(sr, r->opts.head_arg);
	if (go && !sr->replied && !sr->gone) {
		c->keepalive = keepalive;
		c->body_unread = false;
	} else {
		go = false;
	}
	req_unref(sr);
	return go;
}

/* --- absolute-form targets --- */

/*
 * Is the authority of an absolute-form target ours? RFC 9112 §3.2.2 makes
 * it the request's host, in place of Host: a reverse proxy must not take a
 * request meant for another server (as a forward proxy would) and let it
 * pass as one for us. Compared as host:port, the scheme's port by default.
 */
static bool
server_authority_ours(const struct server *srv, const struct h1_request *rq)
{
	char a[300];
	size_t n = rq->authority_len;
	const char *close = NULL;

	if (n == 0 || n + 8 > sizeof a || memchr(rq->authority, '@', n) != NULL)
		return false;
	for (size_t i = 0; i < n; i++)
		a[i] = (char)tolower((unsigned char)rq->authority[i]);
	a[n] = '\0';
	if (a[0] == '[')
		close = strchr(a, ']');
	if (strchr(close != NULL ? close : a, ':') == NULL)
		snprintf(a + n, sizeof a - n, ":%d", rq->https ? 443 : 80);
	for (size_t i = 0; i < srv->n_authorities; i++) {
		if (strcmp(a, srv->authorities[i]) == 0)
			return true;
	}
	return false;
}

/* --- connections --- */

/* What a read asks for: an evbuffer chunk's header (under 128 bytes) and the
 * bytes fit a 4 KiB or a 16 KiB allocation. */
#define SERVER_READ_SMALL (4096 - 128)
#define SERVER_READ_LARGE (16384 - 128)

ssize_t
server_sock_read(int fd, struct evbuffer *buf, size_t *size)
{
	struct evbuffer_iovec v[2];
	ssize_t n, left;
	size_t want = *size != 0 ? *size : SERVER_READ_SMALL;
	int nv = evbuffer_reserve_space(buf, (ev_ssize_t)want, v, 2);

	if (nv <= 0) {
		errno = ENOMEM;
		return -1;
	}
	/* One extent (an empty buffer, the usual case): recv() skips the
	 * iovec import and file layer that readv() goes through. */
	if (nv == 1)
		n = recv(fd, v[0].iov_base, v[0].iov_len, 0);
	else
		n = readv(fd, (struct iovec *)v, nv);
	if (n <= 0)
		return n;
	/* A full read means more is coming: ask for more next time. */
	*size = (size_t)n >= want ? SERVER_READ_LARGE : SERVER_READ_SMALL;
	left = n;
	for (int i = 0; i < nv; i++) {
		if ((size_t)left < v[i].iov_len)
			v[i].iov_len = (size_t)left;
		left -= (ssize_t)v[i].iov_len;
	}
	evbuffer_commit_space(buf, v, nv);
	return n;
}

ssize_t
server_sock_write(int fd, struct evbuffer *buf)
{
	struct evbuffer_iovec v[16];
	int nv = evbuffer_peek(buf, -1, NULL, v, 16);
	ssize_t n;

	if (nv <= 0)
		return 0;
	if (nv > 16)
		nv = 16;
	/* One extent (replies and requests under SERVER_COPY_MAX are laid out
	 * so): send() skips writev's iovec import and file layer. */
	if (nv == 1)
		n = send(fd, v[0].iov_base, v[0].iov_len, MSG_NOSIGNAL);
	else
		n = writev(fd, (struct iovec *)v, nv);
	if (n > 0)
		evbuffer_drain(buf, (size_t)n);
	return n;
}

void
server_buf_add_small(struct evbuffer *dst, struct evbuffer *src)
{
	size_t n = evbuffer_get_length(src);

	if (n <= SERVER_COPY_MAX) {
		evbuffer_add(dst, evbuffer_pullup(src, (ev_ssize_t)n), n);
		evbuffer_drain(src, n);
	} else {
		evbuffer_add_buffer(dst, src);
	}
}

static bool
server_retriable(int err)
{
	return err == EAGAIN || err == EWOULDBLOCK || err == EINTR;
}

static void
conn_ref(struct conn *c)
{
	c->refs++;
}

static void
conn_unref(struct conn *c)
{
	if (--c->refs > 0)
		return;
	evbuffer_free(c->in);
	evbuffer_free(c->out);
	free(c);
}

static void
conn_timer_ms(struct conn *c, int64_t ms)
{
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000) };

	evtimer_add(&c->timer, &tv);
}

/* Read again (after a pause above the high-water mark). */
static void
conn_resume_read(struct conn *c)
{
	if (!c->reading && !c->closed) {
		event_add(&c->rev, NULL);
		c->reading = true;
	}
}

/* Close the connection; a request it carries is gone (its handler told
 * through the abort callback). Safe to call twice. */
void
conn_close(struct conn *c)
{
	struct req *sr = c->sr;

	if (c->closed)
		return;
	c->closed = true;
	conn_ref(c);
	event_del(&c->rev);
	event_del(&c->wev);
	event_del(&c->timer);
	event_del(&c->defer);
	evutil_closesocket(c->fd);
	c->fd = -1;
	LIST_REMOVE(c, entry);
	server_conn_gone(c->l);
	c->sr = NULL;
	if (sr != NULL && !sr->dispatched) {
		req_unref(sr);
	} else if (sr != NULL && !sr->gone) {
		req_abort_fn fn = sr->abort_fn;

		sr->abort_fn = NULL;
		req_ref(sr);
		sr->conn = NULL;
		req_finish(sr, 499);
		if (fn != NULL)
			fn(sr, sr->abort_arg);
		req_unref(sr);
	}
	c->refs--; /* the server's; ours (taken above) keeps c alive */
	conn_unref(c);
}

/* Move the close (or more processing) out of the caller's stack. */
static void
conn_defer(struct conn *c)
{
	if (!c->closed)
		event_active(&c->defer, EV_TIMEOUT, 1);
}

/* Tell a streaming handler that the client took its output. */
static void
conn_notify_drained(struct conn *c)
{
	struct req *sr = c->sr;

	if (!c->closed && sr != NULL && sr->drained_fn != NULL && c->state == CONN_ACTIVE &&
	    evbuffer_get_length(c->out) <= SERVER_OUT_LOW_WATER) {
		req_ref(sr);
		sr->drained_fn(sr, sr->drained_arg);
		req_unref(sr);
	}
}

static void
conn_on_defer(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	conn_ref(c);
	if (c->write_error) {
		conn_close(c);
		goto out;
	}
	if (c->flush_soon) {
		/* Everything the handler queued in this loop turn, in one writev. */
		c->flush_soon = false;
		conn_write(c);
		conn_notify_drained(c);
	}
	if (!c->closed && c->state <= CONN_BODY && evbuffer_get_length(c->in) > 0)
		conn_process(c);
out:
	conn_unref(c);
}

/* Write soon, once the current callback has queued all it will. */
void
conn_flush_soon(struct conn *c)
{
	if (!c->flush_soon && !c->writing) {
		c->flush_soon = true;
		conn_defer(c);
	}
}

/* The reply was flushed: finish the request, then keep the connection
 * for the next one or close it. */
void
conn_complete(struct conn *c)
{
	struct req *sr = c->sr;
	struct server *srv = c->srv;

	c->sr = NULL;
	c->state = CONN_IDLE;
	c->scan = 0;
	if (sr != NULL)
		req_finish(sr, sr->status);
	if (!c->keepalive || srv->draining) {
		if (c->body_unread)
			conn_linger(c); /* the unread body must not turn our reply into a reset */
		else
			conn_close(c);
		return;
	}
	conn_resume_read(c);
	if (evbuffer_get_length(c->in) > 0) {
		if (!c->in_process)
			conn_defer(c);
	} else {
		conn_timer_ms(c, srv->cfg->server.idle_timeout_ms);
	}
}

/* Begin lingering: no more writes, read and drop what the client still
 * sends for a moment, so that our error reply is not lost to a reset. */
static void
conn_linger(struct conn *c)
{
	c->state = CONN_LINGER;
	shutdown(c->fd, SHUT_WR);
	evbuffer_drain(c->in, evbuffer_get_length(c->in));
	conn_resume_read(c);
	conn_timer_ms(c, SERVER_LINGER_MS);
}

/* Everything queued was written. */
static void
conn_flushed(struct conn *c)
{
	if (c->state == CONN_FLUSH)
		conn_complete(c);
	else if (c->state == CONN_CLOSING)
		conn_linger(c);
}

/* Write what is queued now; EV_WRITE (with the stall timeout) only when
 * the kernel did not take everything. Never closes synchronously. */
void
conn_write(struct conn *c)
{
	struct timeval tv;
	int n;

	if (c->closed || c->write_error)
		return;
	if (evbuffer_get_length(c->out) > 0) {
		n = (int)server_sock_write(c->fd, c->out);
		if (n < 0 && !server_retriable(errno)) {
			c->write_error = true;
			evbuffer_drain(c->out, evbuffer_get_length(c->out));
			conn_defer(c);
			return;
		}
	}
	if (evbuffer_get_length(c->out) > 0) {
		if (!c->writing) {
			tv.tv_sec = c->srv->cfg->server.idle_timeout_ms / 1000;
			tv.tv_usec = (c->srv->cfg->server.idle_timeout_ms % 1000) * 1000;
			event_add(&c->wev, &tv);
			c->writing = true;
		}
		return;
	}
	if (c->writing) {
		event_del(&c->wev);
		c->writing = false;
	}
	conn_flushed(c);
}

static void
conn_on_write(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	struct timeval tv;
	size_t before = evbuffer_get_length(c->out);

	conn_ref(c);
	if (what & EV_TIMEOUT) {
		/* The client stopped reading for idleTimeout. */
		conn_close(c);
		goto out;
	}
	conn_write(c);
	if (c->closed || c->write_error)
		goto out;
	if (c->writing && evbuffer_get_length(c->out) < before) {
		/* Progress: the stall timeout starts again. */
		tv.tv_sec = c->srv->cfg->server.idle_timeout_ms / 1000;
		tv.tv_usec = (c->srv->cfg->server.idle_timeout_ms % 1000) * 1000;
		event_add(&c->wev, &tv);
	}
	conn_notify_drained(c);
out:
	conn_unref(c);
}

/* An answer of our own to a request we refuse before any handler sees it;
 * the connection closes after it. */
void
conn_error(struct conn *c, int status, const char *code, const char *desc)
{
	const char *listener = server_listener_name(c->l->which);
	char body[256], st[8];
	int n;

	/* No route was chosen: counted under route "refused", logged in place
	 * of an access line (the request may not even have a method). */
	snprintf(st, sizeof st, "%d", status);
	if (c->sr != NULL && c->sr->dispatched) {
		/* Refused while its body was read after a head check: the
		 * request is in flight; it ends with this status, logged as an
		 * access line of its route. */
		struct req *sr = c->sr;

		c->sr = NULL;
		sr->status = status;
		req_finish(sr, status);
	} else {
		metrics_add(c->srv->m_requests, 1, listener, "-", "refused", st);
		log_info("request refused", LOG_S("listener", listener), LOG_I("status", status),
		    LOG_S("error", desc), LOG_S("peer", c->peer));
		if (c->sr != NULL) {
			req_unref(c->sr);
			c->sr = NULL;
		}
	}
	n = snprintf(body, sizeof body, "{\"error\":\"%s\",\"error_description\":\"%s\"}", code,
	    desc);
	evbuffer_add_printf(c->out,
	    "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
	    "Cache-Control: no-store\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
	    status, h1_reason(status), n, body);
	c->state = CONN_CLOSING;
	c->keepalive = false;
	event_del(&c->timer);
	conn_write(c);
}

/*
 * A request on the peer listener: another replica forwards it for a session
 * our backend holds, signed (proxy/peerauth.h). Refused with 403 before its
 * body is read unless the MAC is right, fresh and new; then the original
 * client's address (Mcp-Peer-Client) stands in for the replica's. True
 * when it may go on.
 */
static bool
conn_check_peer(struct conn *c)
{
	struct req *sr = c->sr;
	const char *client = req_header(sr, "Mcp-Peer-Client");
	enum peerauth_result r = PEERAUTH_MISSING;
	unsigned char addr[sizeof(struct in6_addr)];
	char desc[96];

	if (c->srv->peerauth != NULL)
		r = peerauth_verify(c->srv->peerauth, sr->rq.method_name, sr->rq.target,
		    req_header(sr, "Mcp-Session-Id"), req_header(sr, PEERAUTH_TIME_HEADER),
		    req_header(sr, PEERAUTH_NONCE_HEADER), req_header(sr, PEERAUTH_AUTH_HEADER));
	metrics_add(c->srv->m_peer_requests, 1, "in", peerauth_result_name(r));
	if (r != PEERAUTH_OK) {
		log_warn("peer request refused", LOG_S("reason", peerauth_result_name(r)),
		    LOG_S("peer", c->peer), LOG_S("path", sr->rq.path));
		snprintf(desc, sizeof desc, "peer request not authenticated (%s)",
		    peerauth_result_name(r));
		conn_error(c, r == PEERAUTH_FULL ? 503 : 403,
		    r == PEERAUTH_FULL ? "unavailable" : "forbidden", desc);
		return false;
	}
	if (client != NULL && strlen(client) < sizeof sr->peer &&
	    (inet_pton(AF_INET, client, addr) == 1 || inet_pton(AF_INET6, client, addr) == 1))
		memcpy(sr->peer, client, strlen(client) + 1);
	return true;
}

/* Parse a head from the input; true when the connection moved on. */
static bool
conn_read_head(struct conn *c)
{
	struct server *srv = c->srv;
	size_t len = evbuffer_get_length(c->in), max_head = srv->cfg->server.max_header_size;
	/* Bare LF is refused from MCP clients (none sends it; it is how
	 * request smuggling between lenient and strict parsers starts). */
	struct h1_limits lim = { .max_head = max_head,
		.max_headers = srv->cfg->server.max_header_count,
		.crlf_only = c->l->which != SERVER_DIAG };
	size_t n = len < max_head + 80 ? len : max_head + 80;
	struct req *sr;
	struct h1_request rq;
	const char *err, *p;
	int rc, status;

	if (len == 0)
		return false;
	if (c->state == CONN_IDLE) {
		c->state = CONN_HEAD;
		c->scan = 0;
		conn_timer_ms(c, srv->cfg->server.header_timeout_ms);
	}
	p = (const char *)evbuffer_pullup(c->in, (ev_ssize_t)n);
	rc = h1_parse_request_limits(p, n, &lim, &c->scan, &rq, &status, &err);
	if (rc == 0)
		return false;
	if (rc < 0) {
		conn_error(c, status,
		    status == 431       ? "request_header_fields_too_large"
			: status == 414 ? "uri_too_long"
			: status == 501 ? "not_implemented"
			: status == 505 ? "http_version_not_supported"
			: status == 417 ? "expectation_failed"
					: "bad_request",
		    err);
		return false;
	}
	evbuffer_drain(c->in, (size_t)rc);
	if (rq.method == H1_OTHER) {
		h1_request_dispose(&rq);
		conn_error(c, 501, "not_implemented", "method not implemented");
		return false;
	}
	if (rq.authority != NULL && !server_authority_ours(srv, &rq)) {
		h1_request_dispose(&rq);
		conn_error(c, 400, "bad_request",
		    "an absolute-form request target must name this server");
		return false;
	}
	sr = xcalloc(1, sizeof *sr);
	sr->srv = srv;
	sr->conn = c;
	sr->which = c->l->which;
	sr->refs = 1;
	sr->rq = rq;
	sr->body = xevbuffer_new();
	memcpy(sr->peer, c->peer, sizeof sr->peer);
	c->sr = sr;
	c->keepalive = rq.keepalive;
	c->body_unread = false;
	sr->matched = server_match(srv, sr->which, sr->rq.path);
	if (sr->which == SERVER_PEER && !conn_check_peer(c))
		return false;
	if (rq.chunked || rq.content_length > 0) {
		c->body_max = server_max_body(srv, c->l, sr->matched);
		if (rq.content_length > 0 && (uint64_t)rq.content_length > c->body_max) {
			char desc[96];

			snprintf(desc, sizeof desc, "request body exceeds the limit of %zu bytes",
			    c->body_max);
			conn_error(c, 413, "request_too_large", desc);
			return false;
		}
		c->state = CONN_BODY;
		c->body_left = rq.content_length;
		memset(&c->chunk, 0, sizeof c->chunk);
		/* A route that can answer from the head (the guard's 401) does
		 * so before the proxy waits for a byte of the body — unless the
		 * whole body came with the head (one read of a small request):
		 * then it is here already, and the answer can carry its
		 * JSON-RPC id. */
		if (sr->matched != NULL && sr->matched->opts.head != NULL &&
		    (rq.chunked || (size_t)rq.content_length > evbuffer_get_length(c->in)) &&
		    !server_check_head(c))
			return false;
		if (rq.expect_continue && evbuffer_get_length(c->in) == 0) {
			evbuffer_add(c->out, "HTTP/1.1 100 Continue\r\n\r\n", 25);
			conn_write(c);
		}
		return true;
	}
	c->state = CONN_ACTIVE;
	event_del(&c->timer);
	server_dispatch(c);
	return true;
}

/* Move body bytes to the request; true when the connection moved on. */
static bool
conn_read_body(struct conn *c)
{
	struct req *sr = c->sr;
	const char *err = NULL;
	int rc;

	if (sr->rq.chunked) {
		rc = h1_chunked_decode(&c->chunk, c->in, sr->body, c->body_max,
		    c->srv->cfg->server.max_header_size, &err);
		if (rc == 0)
			return false;
		if (rc == -2) {
			char desc[96];

			snprintf(desc, sizeof desc, "request body exceeds the limit of %zu bytes",
			    c->body_max);
			conn_error(c, 413, "request_too_large", desc);
			return false;
		}
		if (rc < 0) {
			conn_error(c, 400, "bad_request", err);
			return false;
		}
	} else {
		size_t avail = evbuffer_get_length(c->in);
		size_t take = (int64_t)avail < c->body_left ? avail : (size_t)c->body_left;

		if (take == 0)
			return false;
		evbuffer_remove_buffer(c->in, sr->body, take);
		c->body_left -= (int64_t)take;
		if (c->body_left > 0)
			return false;
	}
	c->state = CONN_ACTIVE;
	event_del(&c->timer);
	server_dispatch(c);
	return true;
}

/* Parse and dispatch what the input holds, one request at a time. */
static void
conn_process(struct conn *c)
{
	bool more = true;

	if (c->in_process)
		return; /* the outer call goes on */
	c->in_process = true;
	conn_ref(c);
	while (more && !c->closed) {
		switch (c->state) {
		case CONN_IDLE:
		case CONN_HEAD:
			more = conn_read_head(c);
			break;
		case CONN_BODY:
			more = conn_read_body(c);
			break;
		default:
			more = false;
			break;
		}
	}
	c->in_process = false;
	conn_unref(c);
}

static void
conn_on_read(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	ssize_t n;

	conn_ref(c);
	if (c->state >= CONN_ACTIVE && c->state != CONN_LINGER &&
	    evbuffer_get_length(c->in) >= SERVER_IN_HIGH_WATER) {
		/* Busy with a reply and the next request is here already:
		 * let the kernel hold the rest. */
		event_del(&c->rev);
		c->reading = false;
		goto out;
	}
	n = server_sock_read(c->fd, c->in, &c->read_size);
	if (n < 0) {
		if (!server_retriable(errno))
			conn_close(c);
		goto out;
	}
	if (n == 0) {
		/* EOF: between requests a normal close; during one, the client
		 * gave up (its handler is told). */
		conn_close(c);
		goto out;
	}
	if (c->state == CONN_LINGER || c->state == CONN_CLOSING)
		evbuffer_drain(c->in, evbuffer_get_length(c->in));
	else if (c->state <= CONN_BODY)
		conn_process(c);
out:
	conn_unref(c);
}

static void
conn_on_timer(evutil_socket_t fd, short what, void *arg)
{
	/* Header deadline, keep-alive idle or the end of lingering: close. */
	conn_close(arg);
}

/* A connection accepted on l: its events, its header deadline. */
void
conn_new(struct listener *l, evutil_socket_t fd, const struct sockaddr *sa)
{
	struct server *srv = l->srv;
	struct conn *c = xcalloc(1, sizeof *c);
	int one = 1;

	c->srv = srv;
	c->l = l;
	c->fd = fd;
	c->refs = 1;
	c->in = xevbuffer_new();
	c->out = xevbuffer_new();
	if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)(void *)sa)->sin6_addr, c->peer,
		    sizeof c->peer);
	else if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)sa)->sin_addr, c->peer,
		    sizeof c->peer);
	/* Replies are written whole; small stream chunks must not wait. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	event_assign(&c->rev, srv->base, fd, EV_READ | EV_PERSIST, conn_on_read, c);
	event_assign(&c->wev, srv->base, fd, EV_WRITE | EV_PERSIST, conn_on_write, c);
	evtimer_assign(&c->timer, srv->base, conn_on_timer, c);
	event_assign(&c->defer, srv->base, -1, 0, conn_on_defer, c);
	LIST_INSERT_HEAD(&srv->conns, c, entry);
	event_add(&c->rev, NULL);
	c->reading = true;
	c->state = CONN_IDLE;
	conn_timer_ms(c, srv->cfg->server.header_timeout_ms);
}

size_t
server_inflight(const struct server *srv)
{
	return srv->n_inflight;
}

static void
server_drain_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;
	server_stopped_fn fn = srv->stopped_fn;

	log_warn("drain timeout: closing requests still open", LOG_I("inflight", srv->n_inflight));
	srv->stopped_fn = NULL;
	if (fn != NULL)
		fn(srv->stopped_arg);
}

void
server_shutdown(struct server *srv, server_stopped_fn done, void *arg)
{
	struct req *sr, *next;
	struct conn *c, *cnext;
	struct timeval tv;

	if (srv->draining)
		return;
	srv->draining = true;
	/* Closing the listening sockets: new connections are refused. */
	for (int i = 0; i < SERVER_N_LISTENERS; i++) {
		if (srv->listeners[i].lev != NULL) {
			evconnlistener_free(srv->listeners[i].lev);
			srv->listeners[i].lev = NULL;
		}
	}
	/* Idle keep-alive connections carry nothing: close them now. */
	for (c = LIST_FIRST(&srv->conns); c != NULL; c = cnext) {
		cnext = LIST_NEXT(c, entry);
		if (c->state == CONN_IDLE && evbuffer_get_length(c->in) == 0)
			conn_close(c);
	}
	if (srv->probe_timer != NULL)
		evtimer_del(srv->probe_timer);
	log_info("draining", LOG_I("inflight", srv->n_inflight),
	    LOG_I("drain_timeout_ms", srv->cfg->server.drain_timeout_ms));
	srv->stopped_fn = done;
	srv->stopped_arg = arg;
	/* Streams never end by themselves: end them now so clients reconnect
	 * elsewhere; ordinary requests get the drain time to finish. */
	for (sr = TAILQ_FIRST(&srv->inflight); sr != NULL; sr = next) {
		next = TAILQ_NEXT(sr, entry);
		if (sr->stream && sr->abort_fn != NULL) {
			req_abort_fn fn = sr->abort_fn;

			sr->abort_fn = NULL;
			fn(sr, sr->abort_arg);
		}
	}
	if (srv->n_inflight == 0) {
		if (srv->stopped_fn != NULL) {
			srv->stopped_fn = NULL;
			done(arg);
		}
		return;
	}
	srv->drain_timer = xevtimer_new(srv->base, server_drain_deadline, srv);
	tv.tv_sec = srv->cfg->server.drain_timeout_ms / 1000;
	tv.tv_usec = (srv->cfg->server.drain_timeout_ms % 1000) * 1000;
	evtimer_add(srv->drain_timer, &tv);
}
