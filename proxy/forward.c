/*
 * The data plane (see forward.h). The client side is evhttp (server.c);
 * the backend side is our own HTTP/1.1 client on bufferevents, so connect
 * and response timeouts, connection reuse, cancellation and backpressure
 * are ours to decide rather than evhttp-client defaults.
 *
 * Lifetimes: a struct fx (one forwarded exchange) holds a reference on its
 * server_req and owns the backend connection it uses until it completes,
 * fails, or the client goes away (fx_abort, called by the server). Then the
 * connection returns to the idle pool only if the response ended exactly at
 * a message boundary; anything else closes it. While an fx runs one of its
 * own callbacks it holds a reference, so an abort from inside (e.g. when we
 * close the client connection) defers the free to the end of the callback.
 *
 * Never here: token decisions, reading a whole response into memory, or a
 * blocking call.
 */
#include "proxy/forward.h"

#include <ctype.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include "common/clock.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "proxy/log.h"
#include "proxy/metrics.h"
#include "proxy/server.h"

#define FW_HIGH_WATER (256 * 1024)        /* pause the backend above this */
#define FW_MAX_RESPONSE_HEAD (64 * 1024)  /* status line + headers */
#define FW_MAX_CHUNK_LINE 1024
#define FW_SSE_REWRITE_MAX (16 * 1024)    /* look this far for the endpoint event */
#define FW_BACKEND_IDLE_S 30              /* close pooled connections idle longer */
#define FW_JSONRPC_SCAN_MAX (1024 * 1024) /* parse bodies up to this for an error id */

struct fx;

struct bconn {
	struct forwarder *fw;
	struct bufferevent *bev;
	struct fx *fx; /* NULL while idle in the pool */
	bool connected;
	bool reused;
	TAILQ_ENTRY(bconn) entry;
};

TAILQ_HEAD(bconn_list, bconn);

struct forwarder {
	struct event_base *base;
	struct evdns_base *dns;
	const struct config *cfg;
	char *host;      /* backend host as in the URL (no brackets) */
	int port;
	char *base_path; /* backend URL path without trailing '/', may be "" */
	char *host_header;
	bool sse_mode;
	bool host_is_literal;
	struct bconn_list idle;
	size_t n_idle;
	struct metric *m_errors;
	struct metric *m_backend_latency;
	struct metric *m_pool;
};

enum fx_state { FX_WAIT_HEAD, FX_BODY, FX_DONE };
enum fx_body { BODY_NONE, BODY_LENGTH, BODY_CHUNKED, BODY_CLOSE };
enum fx_chunk { CH_SIZE, CH_DATA, CH_DATA_END, CH_TRAILER };

struct fx {
	struct forwarder *fw;
	struct server_req *sr;
	struct evhttp_request *req;
	struct bconn *bc;
	struct event *timer;
	int refs;
	bool dead; /* aborted or finished: ignore further events */
	enum fx_state state;
	enum fx_body body;
	enum fx_chunk chunk;
	int64_t remaining;
	int status;
	size_t head_bytes;
	bool head_method;
	bool keepalive;
	bool started;   /* reply headers sent to the client */
	bool stream;    /* text/event-stream */
	bool paused;
	bool got_bytes; /* any response byte from the backend */
	bool retried;
	bool rewrite_sse;
	bool content_length_reply;
	char *resp_connection; /* the backend's Connection header value */
	struct evbuffer *sse_pending;
	char *sse_prefix;
	struct forward_opts opts;
	char *inject_name;
	char *inject_value;
	int64_t start_us;
};

static void fx_process(struct fx *fx);
static void fx_fail(struct fx *fx, int status, const char *kind, const char *message);
static void fx_send_request(struct fx *fx);

/* --- backend connections --- */

static void
bconn_free(struct bconn *bc)
{
	if (bc == NULL)
		return;
	if (bc->fx == NULL && bc->entry.tqe_prev != NULL) {
		TAILQ_REMOVE(&bc->fw->idle, bc, entry);
		bc->fw->n_idle--;
		metrics_set(bc->fw->m_pool, (double)bc->fw->n_idle);
	}
	bufferevent_free(bc->bev);
	free(bc);
}

static void
bconn_idle_read(struct bufferevent *bev, void *arg)
{
	/* A pooled connection must be silent; anything else is garbage. */
	bconn_free(arg);
}

static void
bconn_idle_event(struct bufferevent *bev, short what, void *arg)
{
	bconn_free(arg);
}

/* Return a connection to the pool, or close it when the pool is full. */
static void
bconn_release(struct bconn *bc)
{
	struct forwarder *fw = bc->fw;
	struct timeval idle = { FW_BACKEND_IDLE_S, 0 };

	bc->fx = NULL;
	if (fw->n_idle >= fw->cfg->backend.max_idle_connections ||
	    evbuffer_get_length(bufferevent_get_input(bc->bev)) > 0) {
		bc->entry.tqe_prev = NULL;
		bconn_free(bc);
		return;
	}
	bufferevent_setcb(bc->bev, bconn_idle_read, NULL, bconn_idle_event, bc);
	bufferevent_set_timeouts(bc->bev, &idle, NULL);
	bufferevent_enable(bc->bev, EV_READ);
	TAILQ_INSERT_HEAD(&fw->idle, bc, entry);
	fw->n_idle++;
	metrics_set(fw->m_pool, (double)fw->n_idle);
}

/* --- fx lifetime --- */

static void
fx_ref(struct fx *fx)
{
	fx->refs++;
}

static void
fx_unref(struct fx *fx)
{
	if (--fx->refs > 0)
		return;
	if (fx->bc != NULL) {
		fx->bc->fx = NULL;
		fx->bc->entry.tqe_prev = NULL;
		bconn_free(fx->bc);
	}
	if (fx->timer != NULL)
		event_free(fx->timer);
	if (fx->sse_pending != NULL)
		evbuffer_free(fx->sse_pending);
	free(fx->sse_prefix);
	free(fx->resp_connection);
	free(fx->inject_name);
	xfree_secret(fx->inject_value);
	server_req_unref(fx->sr);
	free(fx);
}

/* Finish the exchange: detach from the request and drop our reference.
 * Safe to call twice. */
static void
fx_close(struct fx *fx, bool reuse_conn)
{
	if (fx->dead)
		return;
	fx->dead = true;
	fx->state = FX_DONE;
	if (fx->timer != NULL)
		evtimer_del(fx->timer);
	server_req_set_abort(fx->sr, NULL, NULL);
	if (fx->stream)
		server_req_set_stream(fx->sr, false);
	if (fx->bc != NULL && reuse_conn && fx->keepalive) {
		struct bconn *bc = fx->bc;

		fx->bc = NULL;
		bconn_release(bc);
	}
	fx_unref(fx);
}

/* The client went away (or the server is draining a stream). */
static void
fx_abort(struct server_req *sr, void *arg)
{
	struct fx *fx = arg;
	struct evhttp_request *req = server_req_evreq(sr);

	if (fx->dead)
		return;
	if (req != NULL && fx->started) {
		/* Shutdown of a live stream: end it cleanly. */
		evhttp_send_reply_end(req);
	} else if (req != NULL) {
		fx_fail(fx, 503, "shutdown", "the proxy is shutting down");
		return;
	}
	fx_close(fx, false);
}

/* --- errors --- */

/* The JSON-RPC id of the client's request, as JSON text, or NULL when the
 * body is not a single JSON-RPC message. Only runs on error paths. */
static char *
fx_jsonrpc_id(struct fx *fx)
{
	struct evbuffer *in;
	const char *ct;
	json_object *o, *id;
	size_t len;
	char *out = NULL;

	if (fx->req == NULL || server_req_gone(fx->sr))
		return NULL;
	ct = evhttp_find_header(evhttp_request_get_input_headers(fx->req), "Content-Type");
	in = evhttp_request_get_input_buffer(fx->req);
	len = evbuffer_get_length(in);
	if (ct == NULL || strstr(ct, "json") == NULL || len == 0 || len > FW_JSONRPC_SCAN_MAX)
		return NULL;
	{
		json_tokener *tok = json_tokener_new();

		o = json_tokener_parse_ex(tok, (const char *)evbuffer_pullup(in, -1), (int)len);
		if (o != NULL && json_tokener_get_error(tok) != json_tokener_success) {
			json_object_put(o);
			o = NULL;
		}
		json_tokener_free(tok);
	}
	if (o == NULL)
		return NULL;
	if (json_object_is_type(o, json_type_object) &&
	    json_object_object_get_ex(o, "jsonrpc", NULL)) {
		if (json_object_object_get_ex(o, "id", &id))
			out = xstrdup(json_object_to_json_string_ext(id, JSON_C_TO_STRING_PLAIN));
		else
			out = xstrdup("null");
	}
	json_object_put(o);
	return out;
}

static void
fx_fail(struct fx *fx, int status, const char *kind, const char *message)
{
	struct forwarder *fw = fx->fw;
	struct evhttp_request *req = server_req_evreq(fx->sr);

	if (fx->dead)
		return;
	metrics_add(fw->m_errors, 1, kind);
	log_warn("backend error", LOG_S("kind", kind), LOG_S("error", message),
	    LOG_S("path", server_req_path(fx->sr)), LOG_S("request_id", server_req_id(fx->sr)));
	if (req == NULL) {
		fx_close(fx, false);
		return;
	}
	if (fx->started) {
		if (fx->content_length_reply) {
			/* The client was promised more bytes: only closing tells it. */
			fx_ref(fx);
			evhttp_connection_free(evhttp_request_get_connection(req));
			fx_close(fx, false);
			fx_unref(fx);
			return;
		}
		evhttp_send_reply_end(req);
		fx_close(fx, false);
		return;
	} else {
		char *id = fx_jsonrpc_id(fx);
		char *body;
		const char *code = status == 504 ? "gateway_timeout" :
		    status == 503 ? "unavailable" : "bad_gateway";

		if (id != NULL) {
			json_object *m = json_object_new_string(message);

			body = xasprintf("{\"jsonrpc\":\"2.0\",\"id\":%s,\"error\":{\"code\":-32603,"
					 "\"message\":%s}}",
			    id, json_object_to_json_string_ext(m, JSON_C_TO_STRING_PLAIN));
			json_object_put(m);
			free(id);
		} else {
			json_object *m = json_object_new_string(message);

			body = xasprintf("{\"error\":\"%s\",\"error_description\":%s}", code,
			    json_object_to_json_string_ext(m, JSON_C_TO_STRING_PLAIN));
			json_object_put(m);
		}
		/* Response headers copied from a bad backend reply must not leak. */
		evhttp_clear_headers(evhttp_request_get_output_headers(req));
		server_add_header(fx->sr, "X-Request-Id", server_req_id(fx->sr));
		server_reply_json(fx->sr, status, body);
		free(body);
	}
	fx_close(fx, false);
}

/* --- sending the request --- */

static bool
fx_token_in_list(const char *list, const char *name)
{
	size_t n = strlen(name);

	if (list == NULL)
		return false;
	for (const char *p = list; *p != '\0';) {
		size_t len;

		p += strspn(p, " \t,");
		len = strcspn(p, " \t,");
		if (len == n && strncasecmp(p, name, n) == 0)
			return true;
		p += len;
	}
	return false;
}

/* Headers a proxy must not forward in either direction (RFC 9110 §7.6.1). */
static bool
fx_hop_by_hop(const char *name, const char *connection)
{
	static const char *const hop[] = { "Connection", "Keep-Alive", "TE", "Trailer",
		"Transfer-Encoding", "Upgrade", "Proxy-Connection", "Content-Length", NULL };

	for (int i = 0; hop[i] != NULL; i++) {
		if (strcasecmp(name, hop[i]) == 0)
			return true;
	}
	if (strncasecmp(name, "Proxy-", 6) == 0)
		return true;
	return fx_token_in_list(connection, name);
}

/* Is this a safe X-Forwarded-Prefix value to put in a URL path? */
static bool
fx_safe_prefix(const char *p)
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

static void
fx_write_request(struct fx *fx, struct evbuffer *out)
{
	struct forwarder *fw = fx->fw;
	struct evhttp_request *req = fx->req;
	struct evkeyvalq *in = evhttp_request_get_input_headers(req);
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *connection = evhttp_find_header(in, "Connection");
	const char *path = evhttp_uri_get_path(uri), *query = evhttp_uri_get_query(uri);
	const char *xff = evhttp_find_header(in, "X-Forwarded-For");
	const char *host = evhttp_find_header(in, "Host");
	struct evbuffer *body = evhttp_request_get_input_buffer(req);
	struct evkeyval *h;
	char *peer = NULL;
	ev_uint16_t peer_port = 0;
	bool trust = fw->cfg->server.trust_proxy_headers;

	evbuffer_add_printf(out, "%s %s%s%s%s HTTP/1.1\r\nHost: %s\r\n",
	    fx->head_method ? "HEAD" : evhttp_request_get_command(req) == EVHTTP_REQ_GET ? "GET" :
	    evhttp_request_get_command(req) == EVHTTP_REQ_POST ? "POST" :
	    evhttp_request_get_command(req) == EVHTTP_REQ_DELETE ? "DELETE" :
	    evhttp_request_get_command(req) == EVHTTP_REQ_OPTIONS ? "OPTIONS" :
	    evhttp_request_get_command(req) == EVHTTP_REQ_PUT ? "PUT" :
	    evhttp_request_get_command(req) == EVHTTP_REQ_PATCH ? "PATCH" : "GET",
	    fw->base_path, path != NULL && *path != '\0' ? path : "/", query != NULL ? "?" : "",
	    query != NULL ? query : "", fw->host_header);
	TAILQ_FOREACH(h, in, next) {
		if (fx_hop_by_hop(h->key, connection) || strcasecmp(h->key, "Host") == 0 ||
		    strcasecmp(h->key, "Authorization") == 0 || strcasecmp(h->key, "Expect") == 0)
			continue;
		if (fx->opts.strip_cookies && strcasecmp(h->key, "Cookie") == 0)
			continue;
		if (strncasecmp(h->key, "X-Forwarded-", 12) == 0 && !trust)
			continue;
		if (strcasecmp(h->key, "X-Forwarded-For") == 0)
			continue; /* rebuilt below */
		if (fx->inject_name != NULL && strcasecmp(h->key, fx->inject_name) == 0)
			continue;
		evbuffer_add_printf(out, "%s: %s\r\n", h->key, h->value);
	}
	evhttp_connection_get_peer(evhttp_request_get_connection(req), &peer, &peer_port);
	if (trust && xff != NULL)
		evbuffer_add_printf(out, "X-Forwarded-For: %s, %s\r\n", xff, peer ? peer : "");
	else
		evbuffer_add_printf(out, "X-Forwarded-For: %s\r\n", peer ? peer : "");
	if (!trust || evhttp_find_header(in, "X-Forwarded-Proto") == NULL)
		evbuffer_add_printf(out, "X-Forwarded-Proto: http\r\n");
	if ((!trust || evhttp_find_header(in, "X-Forwarded-Host") == NULL) && host != NULL)
		evbuffer_add_printf(out, "X-Forwarded-Host: %s\r\n", host);
	if (fx->inject_name != NULL)
		evbuffer_add_printf(out, "%s: %s\r\n", fx->inject_name, fx->inject_value);
	if (evbuffer_get_length(body) > 0 ||
	    evhttp_request_get_command(req) == EVHTTP_REQ_POST ||
	    evhttp_request_get_command(req) == EVHTTP_REQ_PUT ||
	    evhttp_request_get_command(req) == EVHTTP_REQ_PATCH)
		evbuffer_add_printf(out, "Content-Length: %zu\r\n", evbuffer_get_length(body));
	evbuffer_add(out, "\r\n", 2);
	/* The body by reference: the client's buffer stays intact for a retry
	 * on a fresh connection and for the JSON-RPC id of an error reply. */
	if (evbuffer_get_length(body) > 0)
		evbuffer_add_buffer_reference(out, body);
}

static void
fx_arm_timer(struct fx *fx, int64_t ms)
{
	struct timeval tv;

	evtimer_del(fx->timer);
	if (ms <= 0)
		return;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(fx->timer, &tv);
}

static void
fx_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct fx *fx = arg;

	fx_ref(fx);
	if (fx->bc != NULL && !fx->bc->connected)
		fx_fail(fx, 504, "connect_timeout", "timed out connecting to the MCP server");
	else
		fx_fail(fx, 504, "response_timeout", "the MCP server did not answer in time");
	fx_unref(fx);
}

static void
fx_backend_read(struct bufferevent *bev, void *arg)
{
	struct fx *fx = arg;

	fx_ref(fx);
	fx_process(fx);
	fx_unref(fx);
}

/* May this request be sent twice (RFC 9110 §9.2.2)? */
static bool
fx_idempotent(const struct fx *fx)
{
	switch (evhttp_request_get_command(fx->req)) {
	case EVHTTP_REQ_GET:
	case EVHTTP_REQ_HEAD:
	case EVHTTP_REQ_OPTIONS:
	case EVHTTP_REQ_PUT:
	case EVHTTP_REQ_DELETE:
		return true;
	default:
		return false;
	}
}

static void
fx_backend_event(struct bufferevent *bev, short what, void *arg)
{
	struct fx *fx = arg;
	struct bconn *bc = fx->bc;

	fx_ref(fx);
	if (what & BEV_EVENT_CONNECTED) {
		bc->connected = true;
		fx_arm_timer(fx, fx->fw->cfg->backend.response_timeout_ms);
		goto out;
	}
	if (fx->dead)
		goto out;
	/* Data that arrived with the EOF is still ours to process. */
	if (evbuffer_get_length(bufferevent_get_input(bev)) > 0)
		fx_process(fx);
	if (fx->dead)
		goto out;
	if (!bc->connected) {
		int err = bufferevent_socket_get_dns_error(bev);
		char msg[160];

		snprintf(msg, sizeof msg, "cannot connect to the MCP server: %s",
		    err ? evutil_gai_strerror(err) :
			  evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		fx_fail(fx, 502, "connect", msg);
		goto out;
	}
	if (fx->state == FX_WAIT_HEAD && !fx->got_bytes && bc->reused && !fx->retried &&
	    fx_idempotent(fx)) {
		/* The pooled connection was closed before any answer. The backend
		 * may have read and acted on the request, so only an idempotent
		 * one is sent again, on a fresh connection. */
		fx->retried = true;
		fx->bc->fx = NULL;
		fx->bc->entry.tqe_prev = NULL;
		bconn_free(fx->bc);
		fx->bc = NULL;
		fx_send_request(fx);
		goto out;
	}
	if (fx->state == FX_BODY && fx->body == BODY_CLOSE) {
		struct evhttp_request *req = server_req_evreq(fx->sr);

		fx->keepalive = false;
		if (req != NULL)
			evhttp_send_reply_end(req);
		fx_close(fx, false);
		goto out;
	}
	fx_fail(fx, 502, fx->state == FX_WAIT_HEAD ? "closed" : "truncated",
	    "the MCP server closed the connection before the response ended");
out:
	fx_unref(fx);
}

static void
fx_send_request(struct fx *fx)
{
	struct forwarder *fw = fx->fw;
	struct bconn *bc = TAILQ_FIRST(&fw->idle);
	int rc;

	if (bc != NULL && !fx->retried) {
		TAILQ_REMOVE(&fw->idle, bc, entry);
		fw->n_idle--;
		metrics_set(fw->m_pool, (double)fw->n_idle);
		bc->reused = true;
	} else {
		bc = xcalloc(1, sizeof *bc);
		bc->fw = fw;
		bc->bev = bufferevent_socket_new(fw->base, -1, BEV_OPT_CLOSE_ON_FREE);
		if (bc->bev == NULL) {
			free(bc);
			fx_fail(fx, 502, "connect", "cannot create a socket");
			return;
		}
		rc = bufferevent_socket_connect_hostname(bc->bev, fw->dns, AF_UNSPEC, fw->host,
		    fw->port);
		if (rc != 0) {
			bufferevent_free(bc->bev);
			free(bc);
			fx_fail(fx, 502, "connect", "cannot connect to the MCP server");
			return;
		}
	}
	bc->entry.tqe_prev = NULL;
	bc->fx = fx;
	fx->bc = bc;
	bufferevent_setcb(bc->bev, fx_backend_read, NULL, fx_backend_event, fx);
	bufferevent_set_timeouts(bc->bev, NULL, NULL);
	bufferevent_enable(bc->bev, EV_READ | EV_WRITE);
	fx_write_request(fx, bufferevent_get_output(bc->bev));
	fx_arm_timer(fx, bc->connected ? fw->cfg->backend.response_timeout_ms :
					 fw->cfg->backend.connect_timeout_ms);
}

/* --- the response --- */

static void
fx_drained(struct evhttp_connection *conn, void *arg)
{
	struct fx *fx = arg;

	if (fx->dead || !fx->paused || fx->bc == NULL)
		return;
	fx->paused = false;
	bufferevent_enable(fx->bc->bev, EV_READ);
	fx_ref(fx);
	fx_process(fx);
	fx_unref(fx);
}

/* Hand bytes to the client, pausing the backend when the client is slow. */
static void
fx_emit_raw(struct fx *fx, struct evbuffer *buf)
{
	struct evhttp_request *req = server_req_evreq(fx->sr);
	struct evhttp_connection *conn;
	size_t n = evbuffer_get_length(buf);

	if (req == NULL || n == 0)
		return;
	server_req_add_bytes(fx->sr, n);
	conn = evhttp_request_get_connection(req);
	evhttp_send_reply_chunk_with_cb(req, buf, fx_drained, fx);
	if (conn != NULL && evbuffer_get_length(bufferevent_get_output(
	    evhttp_connection_get_bufferevent(conn))) > FW_HIGH_WATER && fx->bc != NULL) {
		fx->paused = true;
		bufferevent_disable(fx->bc->bev, EV_READ);
	}
}

/* Legacy SSE: rewrite the data of the first "endpoint" event so the client
 * posts back through us (public prefix kept); pass the rest through. */
static void
fx_emit(struct fx *fx, struct evbuffer *buf)
{
	struct evbuffer_ptr ev;
	struct evbuffer *out;
	size_t evlen;
	char *text, *line, *save = NULL;
	bool is_endpoint = false;

	if (!fx->rewrite_sse) {
		fx_emit_raw(fx, buf);
		return;
	}
	evbuffer_add_buffer(fx->sse_pending, buf);
	for (;;) {
		ev = evbuffer_search(fx->sse_pending, "\n\n", 2, NULL);
		if (ev.pos < 0) {
			if (evbuffer_get_length(fx->sse_pending) > FW_SSE_REWRITE_MAX) {
				fx->rewrite_sse = false;
				fx_emit_raw(fx, fx->sse_pending);
			}
			return;
		}
		evlen = (size_t)ev.pos + 2;
		text = xmalloc(evlen + 1);
		evbuffer_remove(fx->sse_pending, text, evlen);
		text[evlen] = '\0';
		out = evbuffer_new();
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
					evbuffer_add_printf(out, "data: %s%s\n", fx->sse_prefix, pathpart);
				else
					evbuffer_add_printf(out, "data: %s\n", v);
				continue;
			}
			evbuffer_add_printf(out, "%s\n", line);
		}
		evbuffer_add(out, "\n", 1);
		free(text);
		if (is_endpoint) {
			fx->rewrite_sse = false;
			evbuffer_add_buffer(out, fx->sse_pending);
			fx_emit_raw(fx, out);
			evbuffer_free(out);
			return;
		}
		fx_emit_raw(fx, out);
		evbuffer_free(out);
	}
}

/* Parse the status line and headers; 1 when complete, 0 for more, -1 bad. */
static int
fx_parse_head(struct fx *fx, struct evbuffer *in)
{
	struct evhttp_request *req = server_req_evreq(fx->sr);
	struct evkeyvalq *out = req != NULL ? evhttp_request_get_output_headers(req) : NULL;
	char *line;
	size_t len;

	while ((line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF)) != NULL) {
		fx->head_bytes += len + 2;
		if (fx->head_bytes > FW_MAX_RESPONSE_HEAD) {
			free(line);
			return -1;
		}
		if (fx->status == 0) {
			int major, minor, code;
			char sp;

			if (sscanf(line, "HTTP/%d.%d %3d%c", &major, &minor, &code, &sp) < 3 ||
			    major != 1 || code < 100 || code > 599) {
				free(line);
				return -1;
			}
			fx->status = code;
			fx->keepalive = minor >= 1;
			free(line);
			continue;
		}
		if (len == 0) {
			free(line);
			if (fx->status >= 100 && fx->status < 200) {
				/* Interim response: wait for the final one. */
				fx->status = 0;
				free(fx->resp_connection);
				fx->resp_connection = NULL;
				if (out != NULL)
					evhttp_clear_headers(out);
				continue;
			}
			/* Headers the backend's Connection names are hop-by-hop too. */
			if (out != NULL && fx->resp_connection != NULL) {
				struct evkeyval *h, *next;

				for (h = TAILQ_FIRST(out); h != NULL; h = next) {
					next = TAILQ_NEXT(h, next);
					if (fx_token_in_list(fx->resp_connection, h->key)) {
						/* removes the first of that name: start over */
						evhttp_remove_header(out, h->key);
						next = TAILQ_FIRST(out);
					}
				}
			}
			return 1;
		}
		{
			char *colon = strchr(line, ':');
			char *value;

			if (colon == NULL || colon == line) {
				free(line);
				return -1;
			}
			*colon = '\0';
			value = colon + 1;
			while (*value == ' ' || *value == '\t')
				value++;
			for (char *e = value + strlen(value); e > value && (e[-1] == ' ' || e[-1] == '\t');)
				*--e = '\0';
			if (strcasecmp(line, "Content-Length") == 0) {
				char *end;

				errno = 0;
				fx->remaining = strtoll(value, &end, 10);
				if (errno != 0 || *end != '\0' || fx->remaining < 0 ||
				    fx->body == BODY_CHUNKED) {
					free(line);
					return -1;
				}
				fx->body = BODY_LENGTH;
			} else if (strcasecmp(line, "Transfer-Encoding") == 0) {
				if (strcasecmp(value, "chunked") != 0) {
					free(line);
					return -1;
				}
				fx->body = BODY_CHUNKED;
			} else if (strcasecmp(line, "Connection") == 0) {
				if (fx_token_in_list(value, "close"))
					fx->keepalive = false;
				free(fx->resp_connection);
				fx->resp_connection = xstrdup(value);
			} else if (strcasecmp(line, "Content-Type") == 0 &&
			    strncasecmp(value, "text/event-stream", 17) == 0) {
				fx->stream = true;
			}
			if (out != NULL && !fx_hop_by_hop(line, NULL))
				evhttp_add_header(out, line, value);
		}
		free(line);
	}
	if (evbuffer_get_length(in) > FW_MAX_RESPONSE_HEAD)
		return -1;
	return 0;
}

/* Response head complete: decide framing and start the client reply. */
static void
fx_start_reply(struct fx *fx, struct evbuffer *in)
{
	struct evhttp_request *req = server_req_evreq(fx->sr);
	struct evkeyvalq *out;
	char cl[32];

	if (fx->head_method || fx->status == 204 || fx->status == 304) {
		fx->body = BODY_NONE;
	} else if (fx->body != BODY_LENGTH && fx->body != BODY_CHUNKED) {
		fx->body = BODY_CLOSE;
		fx->keepalive = false;
	}
	fx->state = FX_BODY;
	fx_arm_timer(fx, 0);
	metrics_observe(fx->fw->m_backend_latency,
	    (double)(clock_mono_us() - fx->start_us) / 1e6);
	if (req == NULL)
		return;
	out = evhttp_request_get_output_headers(req);
	if (fx->body == BODY_NONE) {
		evhttp_send_reply(req, fx->status, NULL, NULL);
		fx_close(fx, true);
		return;
	}
	if (fx->body == BODY_LENGTH && !fx->stream &&
	    (int64_t)evbuffer_get_length(in) >= fx->remaining) {
		/* The whole body is here: one write, evhttp sets Content-Length. */
		struct evbuffer *body = evbuffer_new();

		evbuffer_remove_buffer(in, body, (size_t)fx->remaining);
		server_req_add_bytes(fx->sr, (size_t)fx->remaining);
		fx->remaining = 0;
		evhttp_send_reply(req, fx->status, NULL, body);
		evbuffer_free(body);
		fx_close(fx, true);
		return;
	}
	if (fx->body == BODY_LENGTH) {
		snprintf(cl, sizeof cl, "%lld", (long long)fx->remaining);
		evhttp_add_header(out, "Content-Length", cl);
		fx->content_length_reply = true;
	}
	if (fx->stream) {
		server_req_set_stream(fx->sr, true);
		fx->rewrite_sse = fx->fw->sse_mode;
		if (fx->rewrite_sse)
			fx->sse_pending = evbuffer_new();
		/* Intermediaries must not buffer an event stream. */
		if (evhttp_find_header(out, "X-Accel-Buffering") == NULL)
			evhttp_add_header(out, "X-Accel-Buffering", "no");
	}
	evhttp_send_reply_start(req, fx->status, NULL);
	fx->started = true;
}

/* Move body bytes from the backend to the client per the framing. */
static void
fx_pump(struct fx *fx, struct evbuffer *in)
{
	struct evbuffer *chunk = evbuffer_new();
	struct evhttp_request *req;
	bool complete = false;

	while (!fx->paused && !complete) {
		size_t avail = evbuffer_get_length(in);

		if (fx->body == BODY_LENGTH) {
			size_t n = (int64_t)avail < fx->remaining ? avail : (size_t)fx->remaining;

			evbuffer_remove_buffer(in, chunk, n);
			fx->remaining -= (int64_t)n;
			complete = fx->remaining == 0;
			fx_emit(fx, chunk);
			break;
		} else if (fx->body == BODY_CLOSE) {
			evbuffer_add_buffer(chunk, in);
			fx_emit(fx, chunk);
			break;
		}
		/* chunked */
		if (fx->chunk == CH_SIZE || fx->chunk == CH_DATA_END || fx->chunk == CH_TRAILER) {
			size_t len;
			char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF);

			if (line == NULL) {
				if (avail > FW_MAX_CHUNK_LINE) {
					evbuffer_free(chunk);
					fx_fail(fx, 502, "protocol", "malformed chunked response");
					return;
				}
				break;
			}
			if (fx->chunk == CH_DATA_END) {
				bool ok = len == 0;

				free(line);
				if (!ok) {
					evbuffer_free(chunk);
					fx_fail(fx, 502, "protocol", "malformed chunked response");
					return;
				}
				fx->chunk = CH_SIZE;
				continue;
			}
			if (fx->chunk == CH_TRAILER) {
				free(line);
				if (len == 0)
					complete = true;
				continue;
			}
			{
				char *end;
				long long size;

				errno = 0;
				size = strtoll(line, &end, 16);
				if (errno != 0 || end == line || size < 0 || (*end != '\0' && *end != ';')) {
					free(line);
					evbuffer_free(chunk);
					fx_fail(fx, 502, "protocol", "malformed chunked response");
					return;
				}
				free(line);
				fx->remaining = size;
				fx->chunk = size == 0 ? CH_TRAILER : CH_DATA;
			}
			continue;
		}
		/* CH_DATA */
		if (avail == 0)
			break;
		{
			size_t n = (int64_t)avail < fx->remaining ? avail : (size_t)fx->remaining;

			evbuffer_remove_buffer(in, chunk, n);
			fx->remaining -= (int64_t)n;
			if (fx->remaining == 0)
				fx->chunk = CH_DATA_END;
			fx_emit(fx, chunk);
			if (fx->dead)
				break;
		}
	}
	evbuffer_free(chunk);
	if (fx->dead || !complete)
		return;
	req = server_req_evreq(fx->sr);
	if (fx->rewrite_sse && evbuffer_get_length(fx->sse_pending) > 0) {
		fx->rewrite_sse = false;
		fx_emit_raw(fx, fx->sse_pending);
	}
	if (req != NULL)
		evhttp_send_reply_end(req);
	fx_close(fx, evbuffer_get_length(in) == 0);
}

static void
fx_process(struct fx *fx)
{
	struct evbuffer *in;
	int rc;

	if (fx->dead || fx->bc == NULL)
		return;
	in = bufferevent_get_input(fx->bc->bev);
	if (evbuffer_get_length(in) > 0)
		fx->got_bytes = true;
	if (fx->state == FX_WAIT_HEAD) {
		rc = fx_parse_head(fx, in);
		if (rc < 0) {
			fx_fail(fx, 502, "protocol", "the MCP server sent a malformed response");
			return;
		}
		if (rc == 0)
			return;
		fx_start_reply(fx, in);
		if (fx->dead)
			return;
	}
	if (fx->state == FX_BODY && !fx->paused)
		fx_pump(fx, in);
}

/* --- entry points --- */

void
forward_request(struct forwarder *fw, struct server_req *sr, const struct forward_opts *opts)
{
	struct evhttp_request *req = server_req_evreq(sr);
	struct fx *fx;
	const char *xfp;

	if (req == NULL)
		return;
	fx = xcalloc(1, sizeof *fx);
	fx->fw = fw;
	fx->sr = sr;
	fx->req = req;
	fx->refs = 1;
	fx->start_us = clock_mono_us();
	fx->head_method = evhttp_request_get_command(req) == EVHTTP_REQ_HEAD;
	fx->timer = evtimer_new(fw->base, fx_timeout, fx);
	if (opts != NULL) {
		fx->opts = *opts;
		if (opts->inject_name != NULL) {
			fx->inject_name = xstrdup(opts->inject_name);
			fx->inject_value = xstrdup(opts->inject_value != NULL ? opts->inject_value : "");
		}
	}
	xfp = evhttp_find_header(evhttp_request_get_input_headers(req), "X-Forwarded-Prefix");
	if (fw->sse_mode) {
		if (fw->cfg->server.trust_proxy_headers && fx_safe_prefix(xfp))
			fx->sse_prefix = xstrdup(xfp);
		else
			fx->sse_prefix = xstrdup(fw->cfg->server.public_path_prefix != NULL ?
				fw->cfg->server.public_path_prefix : "");
		/* "/a/" + "/messages" must not become "/a//messages" */
		if (fx->sse_prefix[0] != '\0' && fx->sse_prefix[strlen(fx->sse_prefix) - 1] == '/')
			fx->sse_prefix[strlen(fx->sse_prefix) - 1] = '\0';
	}
	server_req_ref(sr);
	server_req_set_abort(sr, fx_abort, fx);
	fx_send_request(fx);
}

void
forward_handler(struct server_req *sr, void *fw)
{
	forward_request(fw, sr, NULL);
}

struct forwarder *
forwarder_new(struct event_base *base, struct evdns_base *dns, const struct config *cfg)
{
	struct forwarder *fw = xcalloc(1, sizeof *fw);
	struct evhttp_uri *u = evhttp_uri_parse(cfg->backend.url);
	const char *path;
	size_t plen;

	fw->base = base;
	fw->dns = dns;
	fw->cfg = cfg;
	TAILQ_INIT(&fw->idle);
	fw->sse_mode = cfg->backend.transport == TRANSPORT_SSE;
	if (u == NULL || evhttp_uri_get_host(u) == NULL) {
		fw->host = xstrdup("127.0.0.1");
		fw->port = 80;
		path = NULL;
	} else {
		fw->host = xstrdup(evhttp_uri_get_host(u));
		fw->port = evhttp_uri_get_port(u) > 0 ? evhttp_uri_get_port(u) : 80;
		path = evhttp_uri_get_path(u);
	}
	plen = path != NULL ? strlen(path) : 0;
	while (plen > 0 && path[plen - 1] == '/')
		plen--;
	fw->base_path = xstrndup(path != NULL ? path : "", plen);
	if (strchr(fw->host, ':') != NULL)
		fw->host_header = xasprintf("[%s]:%d", fw->host, fw->port);
	else
		fw->host_header = xasprintf("%s:%d", fw->host, fw->port);
	if (u != NULL)
		evhttp_uri_free(u);
	fw->m_errors = metrics_counter("mcp_proxy_backend_errors_total",
	    "Failed exchanges with the MCP server, by kind.", "kind");
	fw->m_backend_latency = metrics_histogram("mcp_proxy_backend_response_seconds",
	    "Time from forwarding a request to the MCP server's response headers.", "", NULL, 0);
	fw->m_pool = metrics_gauge("mcp_proxy_backend_idle_connections",
	    "Idle keep-alive connections to the MCP server.", "");
	return fw;
}

void
forwarder_free(struct forwarder *fw)
{
	struct bconn *bc;

	if (fw == NULL)
		return;
	while ((bc = TAILQ_FIRST(&fw->idle)) != NULL)
		bconn_free(bc);
	free(fw->host);
	free(fw->base_path);
	free(fw->host_header);
	free(fw);
}
