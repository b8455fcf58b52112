/*
 * The HTTP front (see server.h). evhttp parses requests; this file owns the
 * lifetime of each request's server_req, which is what handlers hold across
 * asynchronous work. Lifetimes:
 *  - the server holds one reference from dispatch until the reply completed
 *    (evhttp's on_complete callback) or the client went away (the
 *    connection's close callback);
 *  - when the client goes away mid-request, evhttp detaches the request from
 *    its connection and leaves it to us: we free it at once and mark the
 *    server_req gone, so every later reply call is a no-op;
 *  - handlers that keep work in flight take their own reference.
 * Nothing here blocks: the backend probe is a non-blocking connect.
 */
#include "proxy/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include "common/clock.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "proxy/log.h"
#include "proxy/metrics.h"

#define SERVER_PROBE_INTERVAL_S 5
#define SERVER_DIAG_MAX_BODY 4096

struct route {
	enum server_listener which;
	char *path;
	size_t path_len;
	bool prefix;
	const char *label;
	server_handler_fn fn;
	void *arg;
};

struct listener {
	struct server *srv;
	enum server_listener which;
	struct evhttp *http;
	struct evhttp_bound_socket *bound;
	int port;
};

struct server_req {
	struct server *srv;
	struct evhttp_request *req;
	struct evhttp_connection *conn;
	enum server_listener which;
	int refs;
	bool gone;
	bool stream;
	bool stream_timeouts; /* the client's read timeout is off while streaming */
	bool logged;
	char id[33];
	char *path;
	const char *method;
	const char *route;
	int64_t start_us;
	uint64_t bytes;
	server_abort_fn abort_fn;
	void *abort_arg;
	TAILQ_ENTRY(server_req) entry;
};

TAILQ_HEAD(server_req_list, server_req);

struct server {
	struct event_base *base;
	struct evdns_base *dns;
	const struct config *cfg;
	struct listener listeners[2];
	struct route *routes;
	size_t n_routes;
	struct route fallback;
	struct server_req_list inflight;
	size_t n_inflight;
	bool draining;
	struct event *drain_timer;
	server_stopped_fn stopped_fn;
	void *stopped_arg;

	/* backend probe */
	char *backend_host;
	int backend_port;
	struct event *probe_timer;
	struct bufferevent *probe_bev;
	bool backend_ok;
	bool backend_checked;
	char backend_error[128];
	int64_t backend_checked_at;

	int64_t timeout_ms; /* evhttp's per-connection inactivity timeout */
	char id_prefix[9];
	uint64_t id_counter;

	struct metric *m_requests;
	struct metric *m_latency;
	struct metric *m_streams;
};

static const char *
server_method_name(enum evhttp_cmd_type t)
{
	switch (t) {
	case EVHTTP_REQ_GET: return "GET";
	case EVHTTP_REQ_POST: return "POST";
	case EVHTTP_REQ_HEAD: return "HEAD";
	case EVHTTP_REQ_PUT: return "PUT";
	case EVHTTP_REQ_DELETE: return "DELETE";
	case EVHTTP_REQ_OPTIONS: return "OPTIONS";
	case EVHTTP_REQ_TRACE: return "TRACE";
	case EVHTTP_REQ_CONNECT: return "CONNECT";
	case EVHTTP_REQ_PATCH: return "PATCH";
	}
	return "OTHER";
}

/* Parse "host:port" / "[v6]:port" (port 0 = ephemeral) into a sockaddr;
 * host must be a literal address. -1 when malformed. */
static int
server_parse_listen(const char *spec, struct sockaddr_storage *ss, int *sslen)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon = strrchr(spec, ':');
	char *end;
	long port;
	size_t hlen;

	memset(ss, 0, sizeof *ss);
	if (colon == NULL || colon[1] == '\0')
		return -1;
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno != 0 || *end != '\0' || port < 0 || port > 65535)
		return -1;
	hlen = (size_t)(colon - spec);
	if (hlen >= 2 && spec[0] == '[' && spec[hlen - 1] == ']') {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		if (hlen - 2 >= sizeof host)
			return -1;
		memcpy(host, spec + 1, hlen - 2);
		host[hlen - 2] = '\0';
		if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
			return -1;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		*sslen = (int)sizeof *s6;
		return 0;
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		if (hlen >= sizeof host)
			return -1;
		memcpy(host, spec, hlen);
		host[hlen] = '\0';
		if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
			return -1;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		*sslen = (int)sizeof *s4;
		return 0;
	}
}

struct server *
server_new(struct event_base *base, const struct config *cfg)
{
	struct server *srv = xcalloc(1, sizeof *srv);
	struct evhttp_uri *u;

	srv->base = base;
	srv->cfg = cfg;
	TAILQ_INIT(&srv->inflight);
	srv->dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
	    EVDNS_BASE_DISABLE_WHEN_INACTIVE);
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
	return srv;
}

static void server_req_release(struct server_req *sr);
static void server_req_stream_timeouts(struct server_req *sr, bool streaming);

void
server_free(struct server *srv)
{
	struct server_req *sr;

	if (srv == NULL)
		return;
	/* Requests still open: tell their handlers, then let evhttp free them. */
	while ((sr = TAILQ_FIRST(&srv->inflight)) != NULL) {
		server_abort_fn fn = sr->abort_fn;

		sr->abort_fn = NULL;
		sr->gone = true;
		if (sr->conn != NULL)
			evhttp_connection_set_closecb(sr->conn, NULL, NULL);
		sr->req = NULL;
		server_req_ref(sr);
		if (fn != NULL)
			fn(sr, sr->abort_arg);
		server_req_release(sr);
		sr->refs--; /* the server's */
		server_req_unref(sr);
	}
	for (int i = 0; i < 2; i++) {
		if (srv->listeners[i].http != NULL)
			evhttp_free(srv->listeners[i].http);
	}
	if (srv->probe_bev != NULL)
		bufferevent_free(srv->probe_bev);
	if (srv->probe_timer != NULL)
		event_free(srv->probe_timer);
	if (srv->drain_timer != NULL)
		event_free(srv->drain_timer);
	if (srv->dns != NULL)
		evdns_base_free(srv->dns, 0);
	for (size_t i = 0; i < srv->n_routes; i++)
		free(srv->routes[i].path);
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
    const char *label, server_handler_fn fn, void *arg)
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
}

void
server_set_fallback(struct server *srv, const char *label, server_handler_fn fn, void *arg)
{
	srv->fallback.label = label;
	srv->fallback.fn = fn;
	srv->fallback.arg = arg;
}

static const struct route *
server_match(const struct server *srv, enum server_listener which, const char *path)
{
	for (size_t i = 0; i < srv->n_routes; i++) {
		const struct route *r = &srv->routes[i];

		if (r->which != which)
			continue;
		if (strcmp(path, r->path) == 0)
			return r;
		if (r->prefix && strncmp(path, r->path, r->path_len) == 0 &&
		    (path[r->path_len] == '/' || r->path[r->path_len - 1] == '/'))
			return r;
	}
	if (which == SERVER_MCP && srv->fallback.fn != NULL)
		return &srv->fallback;
	return NULL;
}

/* --- request lifecycle --- */

static void
server_access_log(struct server_req *sr, int status)
{
	struct server *srv = sr->srv;
	double secs = (double)(clock_mono_us() - sr->start_us) / 1e6;
	const char *listener = sr->which == SERVER_MCP ? "mcp" : "diagnostics";
	char st[8];

	if (sr->logged)
		return;
	sr->logged = true;
	snprintf(st, sizeof st, "%d", status);
	metrics_add(srv->m_requests, 1, listener, sr->method, sr->route, st);
	metrics_observe(srv->m_latency, secs, listener, sr->route);
	if (sr->which == SERVER_DIAG && status < 400 && !log_enabled(LOG_DEBUG))
		return; /* probes and scrapes would drown the log */
	log_info("access", LOG_S("listener", listener), LOG_S("method", sr->method),
	    LOG_S("path", sr->path), LOG_S("route", sr->route), LOG_I("status", status),
	    LOG_I("bytes", sr->bytes), LOG_D("duration_ms", secs * 1000.0),
	    LOG_S("request_id", sr->id));
}

/* Take the request out of the in-flight list (once). */
static void
server_req_release(struct server_req *sr)
{
	struct server *srv = sr->srv;

	if (sr->entry.tqe_prev == NULL)
		return;
	TAILQ_REMOVE(&srv->inflight, sr, entry);
	sr->entry.tqe_prev = NULL;
	srv->n_inflight--;
	if (sr->stream)
		metrics_add(srv->m_streams, -1);
	if (srv->draining && srv->n_inflight == 0 && srv->stopped_fn != NULL) {
		server_stopped_fn fn = srv->stopped_fn;

		srv->stopped_fn = NULL;
		fn(srv->stopped_arg);
	}
}

void
server_req_ref(struct server_req *sr)
{
	sr->refs++;
}

void
server_req_unref(struct server_req *sr)
{
	if (--sr->refs > 0)
		return;
	free(sr->path);
	free(sr);
}

static void
server_on_complete(struct evhttp_request *req, void *arg)
{
	struct server_req *sr = arg;

	if (sr->conn != NULL)
		evhttp_connection_set_closecb(sr->conn, NULL, NULL);
	server_req_stream_timeouts(sr, false);
	server_access_log(sr, evhttp_request_get_response_code(req));
	sr->req = NULL;
	sr->gone = true;
	server_req_release(sr);
	server_req_unref(sr);
}

/* The client's connection closed before our reply completed. */
static void
server_on_close(struct evhttp_connection *conn, void *arg)
{
	struct server_req *sr = arg;
	server_abort_fn fn = sr->abort_fn;

	evhttp_connection_set_closecb(conn, NULL, NULL);
	if (sr->req != NULL) {
		/* Detached requests are ours to free; attached ones evhttp frees. */
		if (evhttp_request_get_connection(sr->req) == NULL)
			evhttp_request_free(sr->req);
		sr->req = NULL;
	}
	sr->gone = true;
	sr->conn = NULL;
	sr->abort_fn = NULL;
	server_access_log(sr, 499);
	server_req_ref(sr);
	if (fn != NULL)
		fn(sr, sr->abort_arg);
	server_req_release(sr);
	sr->refs--; /* the server's; ours (taken above) keeps sr alive */
	server_req_unref(sr);
}

static void
server_req_make_id(struct server_req *sr)
{
	const char *given = evhttp_find_header(evhttp_request_get_input_headers(sr->req),
	    "X-Request-Id");
	unsigned char rnd[8];
	size_t n;

	if (given != NULL && (n = strlen(given)) > 0 && n < sizeof sr->id &&
	    strspn(given, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == n) {
		memcpy(sr->id, given, n + 1);
		return;
	}
	/* Ids only correlate log lines: a per-process random prefix and a
	 * counter are unique without a CSPRNG call per request. */
	if (sr->srv->id_prefix[0] == '\0') {
		RAND_bytes(rnd, sizeof rnd);
		for (size_t i = 0; i < 4; i++)
			snprintf(sr->srv->id_prefix + 2 * i, 3, "%02x", rnd[i]);
	}
	snprintf(sr->id, sizeof sr->id, "%s%08llx", sr->srv->id_prefix,
	    (unsigned long long)++sr->srv->id_counter);
}

static void server_handle_health(struct server_req *sr, void *arg);

static void
server_dispatch(struct evhttp_request *req, void *arg)
{
	struct listener *l = arg;
	struct server *srv = l->srv;
	struct server_req *sr = xcalloc(1, sizeof *sr);
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	const struct route *r;

	sr->srv = srv;
	sr->req = req;
	sr->conn = evhttp_request_get_connection(req);
	sr->which = l->which;
	sr->refs = 1;
	sr->start_us = clock_mono_us();
	sr->method = server_method_name(evhttp_request_get_command(req));
	sr->path = xstrdup(path != NULL && *path != '\0' ? path : "/");
	sr->route = "none";
	server_req_make_id(sr);
	TAILQ_INSERT_TAIL(&srv->inflight, sr, entry);
	srv->n_inflight++;
	evhttp_request_set_on_complete_cb(req, server_on_complete, sr);
	if (sr->conn != NULL)
		evhttp_connection_set_closecb(sr->conn, server_on_close, sr);
	evhttp_add_header(evhttp_request_get_output_headers(req), "X-Request-Id", sr->id);

	/* A body over server.maxBodySize never gets here: libevent 2.1 answers
	 * 413 itself (with its own HTML page) as soon as Content-Length or the
	 * chunks pass the limit, before reading the rest. */
	if (srv->draining)
		evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
	r = server_match(srv, l->which, sr->path);
	if (r == NULL) {
		sr->route = "not_found";
		server_reply_json(sr, 404, "{\"error\":\"not_found\"}");
		return;
	}
	sr->route = r->label;
	r->fn(sr, r->arg);
}

/* --- replies --- */

struct evhttp_request *
server_req_evreq(struct server_req *sr)
{
	return sr->gone ? NULL : sr->req;
}

bool
server_req_gone(const struct server_req *sr)
{
	return sr->gone;
}

const char *
server_req_id(const struct server_req *sr)
{
	return sr->id;
}

const char *
server_req_path(const struct server_req *sr)
{
	return sr->path;
}

struct server *
server_req_server(const struct server_req *sr)
{
	return sr->srv;
}

void
server_req_set_abort(struct server_req *sr, server_abort_fn fn, void *arg)
{
	sr->abort_fn = fn;
	sr->abort_arg = arg;
}

void
server_req_add_bytes(struct server_req *sr, size_t n)
{
	sr->bytes += n;
}

/* evhttp keeps EV_READ on while it writes a reply (to notice a close) and
 * so applies its inactivity timeout to a client that, rightly, sends
 * nothing during a long stream. Turn the read timeout off for the stream
 * (the write timeout still catches a client that stops reading) and put it
 * back when the reply completes, for the next keep-alive request. */
static void
server_req_stream_timeouts(struct server_req *sr, bool streaming)
{
	struct bufferevent *bev;
	struct timeval tv;
	int64_t ms = sr->srv->timeout_ms;

	if (sr->conn == NULL || streaming == sr->stream_timeouts)
		return;
	bev = evhttp_connection_get_bufferevent(sr->conn);
	if (bev == NULL)
		return;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	bufferevent_set_timeouts(bev, streaming ? NULL : &tv, &tv);
	sr->stream_timeouts = streaming;
}

void
server_req_set_stream(struct server_req *sr, bool stream)
{
	if (stream == sr->stream || sr->entry.tqe_prev == NULL)
		return;
	sr->stream = stream;
	metrics_add(sr->srv->m_streams, stream ? 1 : -1);
	if (stream && !sr->gone)
		server_req_stream_timeouts(sr, true);
}

void
server_add_header(struct server_req *sr, const char *name, const char *value)
{
	if (!sr->gone)
		evhttp_add_header(evhttp_request_get_output_headers(sr->req), name, value);
}

void
server_reply(struct server_req *sr, int status, const char *content_type, const void *body,
    size_t len)
{
	struct evbuffer *buf;

	if (sr->gone)
		return;
	if (content_type != NULL)
		evhttp_add_header(evhttp_request_get_output_headers(sr->req), "Content-Type",
		    content_type);
	buf = evbuffer_new();
	if (len > 0)
		evbuffer_add(buf, body, len);
	sr->bytes += len;
	evhttp_send_reply(sr->req, status, NULL, buf);
	evbuffer_free(buf);
}

void
server_reply_json(struct server_req *sr, int status, const char *json)
{
	server_add_header(sr, "Cache-Control", "no-store");
	server_reply(sr, status, "application/json", json, strlen(json));
}

void
server_reply_oauth_error(struct server_req *sr, int status, const char *code, const char *desc)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "error", json_object_new_string(code));
	if (desc != NULL)
		json_object_object_add(o, "error_description", json_object_new_string(desc));
	server_add_header(sr, "Pragma", "no-cache");
	server_reply_json(sr, status,
	    json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

/* --- health, readiness, metrics --- */

static void
server_probe_start(struct server *srv);

static void
server_probe_done(struct server *srv, bool ok, const char *err)
{
	if (ok != srv->backend_ok || !srv->backend_checked) {
		if (ok)
			log_info("backend reachable", LOG_S("backend", srv->cfg->backend.url));
		else
			log_warn("backend unreachable", LOG_S("backend", srv->cfg->backend.url),
			    LOG_S("error", err));
	}
	srv->backend_ok = ok;
	srv->backend_checked = true;
	srv->backend_checked_at = clock_wall_s();
	snprintf(srv->backend_error, sizeof srv->backend_error, "%s", ok ? "" : err);
	if (srv->probe_bev != NULL) {
		bufferevent_free(srv->probe_bev);
		srv->probe_bev = NULL;
	}
}

static void
server_probe_event(struct bufferevent *bev, short what, void *arg)
{
	struct server *srv = arg;
	int err;

	if (what & BEV_EVENT_CONNECTED) {
		server_probe_done(srv, true, NULL);
	} else if (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF | BEV_EVENT_TIMEOUT)) {
		err = bufferevent_socket_get_dns_error(bev);
		if (what & BEV_EVENT_TIMEOUT)
			server_probe_done(srv, false, "connect timed out");
		else if (err != 0)
			server_probe_done(srv, false, evutil_gai_strerror(err));
		else
			server_probe_done(srv, false, evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	}
}

static void
server_probe_tick(evutil_socket_t fd, short what, void *arg)
{
	server_probe_start(arg);
}

/* One non-blocking TCP connect to the backend; the result feeds /health. */
static void
server_probe_start(struct server *srv)
{
	struct timeval tv;

	if (srv->probe_bev == NULL && srv->backend_host != NULL) {
		srv->probe_bev = bufferevent_socket_new(srv->base, -1, BEV_OPT_CLOSE_ON_FREE);
		bufferevent_setcb(srv->probe_bev, NULL, NULL, server_probe_event, srv);
		tv.tv_sec = srv->cfg->backend.connect_timeout_ms / 1000;
		tv.tv_usec = (srv->cfg->backend.connect_timeout_ms % 1000) * 1000;
		bufferevent_set_timeouts(srv->probe_bev, &tv, &tv);
		if (bufferevent_socket_connect_hostname(srv->probe_bev, srv->dns, AF_UNSPEC,
		    srv->backend_host, srv->backend_port) != 0)
			server_probe_done(srv, false, "connect failed");
	}
	if (srv->probe_timer == NULL)
		srv->probe_timer = evtimer_new(srv->base, server_probe_tick, srv);
	tv.tv_sec = SERVER_PROBE_INTERVAL_S;
	tv.tv_usec = 0;
	evtimer_add(srv->probe_timer, &tv);
}

bool
server_backend_reachable(const struct server *srv)
{
	return srv->backend_ok;
}

static void
server_handle_health(struct server_req *sr, void *arg)
{
	struct server *srv = sr->srv;
	bool ready = arg != NULL;
	json_object *o = json_object_new_object(), *b = json_object_new_object();
	const char *status = srv->draining ? "draining" : srv->backend_ok ? "ok" : "degraded";
	int code = 200;

	json_object_object_add(o, "status", json_object_new_string(status));
	json_object_object_add(b, "url", json_object_new_string(srv->cfg->backend.url));
	json_object_object_add(b, "reachable", json_object_new_boolean(srv->backend_ok));
	if (srv->backend_checked)
		json_object_object_add(b, "checkedAt", json_object_new_int64(srv->backend_checked_at));
	if (!srv->backend_ok)
		json_object_object_add(b, "error", json_object_new_string(srv->backend_error));
	json_object_object_add(o, "backend", b);
	json_object_object_add(o, "version", json_object_new_string(MCP_VERSION));
	/* Liveness stays 200 while the proxy works; readiness needs the backend. */
	if (ready && (srv->draining || !srv->backend_ok))
		code = 503;
	server_reply_json(sr, code,
	    json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

static void
server_handle_metrics(struct server_req *sr, void *arg)
{
	struct evbuffer *buf;
	struct evhttp_request *req = server_req_evreq(sr);

	if (req == NULL)
		return;
	buf = evbuffer_new();
	metrics_render(buf);
	sr->bytes += evbuffer_get_length(buf);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	    "text/plain; version=0.0.4; charset=utf-8");
	evhttp_send_reply(req, 200, "OK", buf);
	evbuffer_free(buf);
}

/* --- listeners --- */

static int
server_bind(struct server *srv, enum server_listener which, const char *spec, char *err,
    size_t errlen)
{
	struct listener *l = &srv->listeners[which];
	struct sockaddr_storage ss;
	int sslen;
	evutil_socket_t fd;
	struct timeval tv;
	const char *name = which == SERVER_MCP ? "mcp" : "diagnostics";
	char addr[INET6_ADDRSTRLEN + 8];
	int64_t timeout_ms;

	if (server_parse_listen(spec, &ss, &sslen) != 0) {
		snprintf(err, errlen, "cannot parse listen address \"%s\"", spec);
		return -1;
	}
	l->srv = srv;
	l->which = which;
	l->http = evhttp_new(srv->base);
	if (l->http == NULL) {
		snprintf(err, errlen, "evhttp_new failed");
		return -1;
	}
	fd = socket(ss.ss_family, SOCK_STREAM, 0);
	if (fd < 0 || evutil_make_listen_socket_reuseable(fd) < 0 ||
	    evutil_make_socket_nonblocking(fd) < 0 || evutil_make_socket_closeonexec(fd) < 0 ||
	    bind(fd, (struct sockaddr *)&ss, (socklen_t)sslen) != 0 || listen(fd, 1024) != 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", spec, strerror(errno));
		if (fd >= 0)
			evutil_closesocket(fd);
		return -1;
	}
	l->bound = evhttp_accept_socket_with_handle(l->http, fd);
	if (l->bound == NULL) {
		snprintf(err, errlen, "cannot accept on %s", spec);
		evutil_closesocket(fd);
		return -1;
	}
	sslen = (int)sizeof ss;
	getsockname(fd, (struct sockaddr *)&ss, (socklen_t *)&sslen);
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		char ip[INET6_ADDRSTRLEN];

		inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof ip);
		l->port = ntohs(s6->sin6_port);
		snprintf(addr, sizeof addr, "[%s]:%d", ip, l->port);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		char ip[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof ip);
		l->port = ntohs(s4->sin_port);
		snprintf(addr, sizeof addr, "%s:%d", ip, l->port);
	}
	evhttp_set_gencb(l->http, server_dispatch, l);
	evhttp_set_allowed_methods(l->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
	    EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	evhttp_set_max_headers_size(l->http, (ev_ssize_t)srv->cfg->server.max_header_size);
	evhttp_set_max_body_size(l->http, which == SERVER_MCP ?
	    (ev_ssize_t)srv->cfg->server.max_body_size : SERVER_DIAG_MAX_BODY);
	/* One inactivity timeout covers reading a request and idle keep-alive;
	 * streaming replies lift its read half (server_req_stream_timeouts). */
	timeout_ms = srv->cfg->server.header_timeout_ms < srv->cfg->server.idle_timeout_ms ?
	    srv->cfg->server.header_timeout_ms : srv->cfg->server.idle_timeout_ms;
	srv->timeout_ms = timeout_ms;
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	evhttp_set_timeout_tv(l->http, &tv);
	evhttp_set_default_content_type(l->http, "application/json");
	log_info("listening", LOG_S("listener", name), LOG_S("addr", addr), LOG_I("port", l->port));
	return 0;
}

int
server_listen(struct server *srv, char *err, size_t errlen)
{
	if (server_bind(srv, SERVER_MCP, srv->cfg->server.listen, err, errlen) != 0)
		return -1;
	if (server_bind(srv, SERVER_DIAG, srv->cfg->server.diagnostics_listen, err, errlen) != 0)
		return -1;
	server_route(srv, SERVER_MCP, "/health", false, "/health", server_handle_health, NULL);
	server_route(srv, SERVER_DIAG, "/health", false, "/health", server_handle_health, NULL);
	server_route(srv, SERVER_DIAG, "/ready", false, "/ready", server_handle_health, srv);
	server_route(srv, SERVER_DIAG, "/metrics", false, "/metrics", server_handle_metrics, NULL);
	server_probe_start(srv);
	return 0;
}

int
server_port(const struct server *srv, enum server_listener which)
{
	return srv->listeners[which].port;
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
	struct server_req *sr, *next;
	struct timeval tv;

	if (srv->draining)
		return;
	srv->draining = true;
	for (int i = 0; i < 2; i++) {
		if (srv->listeners[i].bound != NULL) {
			evhttp_del_accept_socket(srv->listeners[i].http, srv->listeners[i].bound);
			srv->listeners[i].bound = NULL;
		}
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
			server_abort_fn fn = sr->abort_fn;

			sr->abort_fn = NULL;
			fn(sr, sr->abort_arg);
		}
	}
	if (srv->n_inflight == 0) {
		srv->stopped_fn = NULL;
		done(arg);
		return;
	}
	srv->drain_timer = evtimer_new(srv->base, server_drain_deadline, srv);
	tv.tv_sec = srv->cfg->server.drain_timeout_ms / 1000;
	tv.tv_usec = (srv->cfg->server.drain_timeout_ms % 1000) * 1000;
	evtimer_add(srv->drain_timer, &tv);
}
