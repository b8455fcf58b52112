/*
 * The data plane (see forward.h). The client side is server.c's HTTP/1.1
 * front (req_*: the request's head and body, streaming replies with
 * a drained callback for backpressure); the backend side is our own
 * HTTP/1.1 client, so connect and response timeouts, connection reuse,
 * cancellation and backpressure are ours to decide. A bufferevent only
 * resolves and connects; then the connection is ours in the same style as
 * the client side: one persistent EV_READ event for its whole life (in use
 * and in the pool), read and written with server_sock_read/_write (recv and
 * send; a small request is laid out in one piece), requests written at once
 * and EV_WRITE only when the kernel does not take everything.
 *
 * Lifetimes: a struct fx (one forwarded exchange) holds a reference on its
 * req and owns the backend connection it uses until it completes,
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
#include <event2/event_struct.h>
#include <event2/http.h>
#include <event2/util.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/xalloc.h"
#include "common/xevent.h"
#include "config/config.h"
#include "proxy/sse_endpoint.h"
#include "proxy/log.h"
#include "proxy/metrics.h"
#include "proxy/peerauth.h"
#include "proxy/server.h"
#include "proxy/session.h"

#define FW_HIGH_WATER (256 * 1024)       /* pause the backend above this */
#define FW_MAX_RESPONSE_HEAD (64 * 1024) /* status line + headers */
#define FW_MAX_TRAILER (64 * 1024)       /* bytes of a chunked response's trailer */
#define FW_SSE_REWRITE_MAX (16 * 1024)   /* look this far for the endpoint event */
#define FW_BACKEND_IDLE_S 30             /* close pooled connections idle longer */
#define FW_MAX_PEERS 64                  /* peer origins kept (each with its pool) */

struct fx;

struct bconn {
	struct forwarder *fw;
	struct bufferevent *connector; /* resolves and connects, then goes */
	evutil_socket_t fd;            /* -1 until connected */
	struct event rev;              /* persistent EV_READ, with the idle tick */
	struct event wev;              /* EV_WRITE while a request is pending */
	struct evbuffer *in;
	struct evbuffer *out;
	size_t read_size; /* server_sock_read()'s */
	struct fx *fx;    /* NULL while idle in the pool */
	int64_t idle_since_us;
	bool connected;
	bool reused;
	bool reading;
	bool writing;
	TAILQ_ENTRY(bconn) entry;
};

TAILQ_HEAD(bconn_list, bconn);
TAILQ_HEAD(forwarder_list, forwarder);

/*
 * One origin a request can be sent to: the backend (the forwarder main.c
 * holds, the root) or, with server.peerListen, another replica's peer
 * listener (a peer origin, made on first use and owned by the root). Both
 * run the same exchange code; a peer exchange differs only in what it
 * writes (the client's own credentials and Host, the path as the client
 * sent it, the peer MAC) and in what a failure to reach it means.
 */
struct forwarder {
	struct event_base *base;
	struct evdns_base *dns;
	const struct config *cfg;
	char *host; /* backend host as in the URL (no brackets) */
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

	/* a peer origin's */
	struct forwarder *root; /* NULL for the root */
	char *origin;           /* the owner address as sealed */
	size_t n_active;        /* exchanges using this origin */
	TAILQ_ENTRY(forwarder) peer_entry;
	/* the root's, when sessions are sealed (server.peerListen set) */
	bool sessions;
	struct session_key *skey;
	struct peerauth *signer;
	char *self; /* our own peer address */
	struct forwarder_list peers;
	size_t n_peers;
	struct metric *m_peer_requests;
	struct metric *m_peer_errors;
	struct metric *m_peer_pool;
	size_t n_peer_idle;
	/* the MCP chain behind forward_front_handler (the guard, the policy) */
	req_handler_fn front_next;
	void *front_next_arg;
	req_head_fn front_head;
	void *front_head_arg;
};

enum fx_state { FX_WAIT_HEAD, FX_BODY, FX_DONE };
enum fx_body { BODY_NONE, BODY_LENGTH, BODY_CHUNKED, BODY_CLOSE };

struct fx {
	struct forwarder *fw;
	struct req *sr;
	struct bconn *bc;
	struct event timer; /* connect/response timeout, embedded */
	int refs;
	bool dead; /* aborted or finished: ignore further events */
	enum fx_state state;
	enum fx_body body;
	struct h1_chunked chunked; /* a chunked response's decoder state */
	int64_t remaining;
	int status;
	bool head_method;
	bool keepalive;
	bool started; /* reply headers sent to the client */
	bool stream;  /* text/event-stream */
	bool paused;
	bool got_bytes; /* any response byte from the backend */
	bool retried;
	bool rewrite_sse;
	bool content_length_reply;
	bool has_accel_buffering; /* the backend sent X-Accel-Buffering */
	int64_t head_length;      /* the backend's Content-Length for HEAD */
	struct evbuffer *sse_pending;
	char *sse_prefix;
	struct req_pass_opts opts;
	char *inject; /* "Name: value\r\n", the header the guard adds (a secret) */
	size_t inject_name_len;
	int64_t start_us;
	/* sessions across replicas */
	bool to_peer;           /* fw is a peer origin */
	const char *sid_client; /* the client's (sealed) Mcp-Session-Id, or NULL */
	char *sid_backend;      /* to the backend: its own id in place of sid_client */
	bool sid_in_query;      /* legacy SSE: sid_client is the sessionId of the URL */
	char *target;           /* to a peer: path and query as the client sent them */
};

static void fx_process(struct fx *fx);
static void forward_no_session(struct req *sr);
static void fx_fail(struct fx *fx, int status, const char *kind, const char *message);
static void fx_send_request(struct fx *fx);

/* --- backend connections --- */

/* The pool grew or shrank by one: the gauge of its kind follows. */
static void
fw_pool_add(struct forwarder *fw, int delta)
{
	fw->n_idle = (size_t)((ptrdiff_t)fw->n_idle + delta);
	if (fw->root == NULL) {
		metrics_set(fw->m_pool, (double)fw->n_idle);
		return;
	}
	fw->root->n_peer_idle = (size_t)((ptrdiff_t)fw->root->n_peer_idle + delta);
	metrics_set(fw->root->m_peer_pool, (double)fw->root->n_peer_idle);
}

static void
bconn_free(struct bconn *bc)
{
	if (bc == NULL)
		return;
	if (bc->fx == NULL && bc->entry.tqe_prev != NULL) {
		TAILQ_REMOVE(&bc->fw->idle, bc, entry);
		fw_pool_add(bc->fw, -1);
	}
	if (bc->connector != NULL) {
		/* still connecting: the socket it made is ours to close */
		evutil_socket_t fd = bufferevent_getfd(bc->connector);

		bufferevent_free(bc->connector);
		if (fd >= 0)
			evutil_closesocket(fd);
	}
	if (bc->fd >= 0) {
		event_del(&bc->rev);
		event_del(&bc->wev);
		evutil_closesocket(bc->fd);
	}
	evbuffer_free(bc->in);
	evbuffer_free(bc->out);
	free(bc);
}

/* Return a connection to the pool, or close it when the pool is full. */
static void
bconn_release(struct bconn *bc)
{
	struct forwarder *fw = bc->fw;

	bc->fx = NULL;
	if (fw->n_idle >= fw->cfg->backend.max_idle_connections ||
	    evbuffer_get_length(bc->in) > 0 || evbuffer_get_length(bc->out) > 0 || !bc->reading) {
		bc->entry.tqe_prev = NULL;
		bconn_free(bc);
		return;
	}
	bc->idle_since_us = clock_mono_us();
	TAILQ_INSERT_HEAD(&fw->idle, bc, entry);
	fw_pool_add(fw, 1);
}

/* Stop or resume reading (backpressure). */
static void
bconn_set_reading(struct bconn *bc, bool on)
{
	struct timeval idle = { FW_BACKEND_IDLE_S, 0 };

	if (bc->fd < 0 || on == bc->reading)
		return;
	if (on)
		event_add(&bc->rev, &idle);
	else
		event_del(&bc->rev);
	bc->reading = on;
}

/* Write the pending request now; EV_WRITE only for what the kernel did
 * not take. A write error shows up on the read side as well. */
static void
bconn_write(struct bconn *bc)
{
	int n;

	if (bc->fd < 0 || evbuffer_get_length(bc->out) == 0)
		return;
	n = (int)server_sock_write(bc->fd, bc->out);
	if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
		evbuffer_drain(bc->out, evbuffer_get_length(bc->out));
	if (evbuffer_get_length(bc->out) > 0 && !bc->writing) {
		event_add(&bc->wev, NULL);
		bc->writing = true;
	} else if (evbuffer_get_length(bc->out) == 0 && bc->writing) {
		event_del(&bc->wev);
		bc->writing = false;
	}
}

static void
bconn_on_write(evutil_socket_t fd, short what, void *arg)
{
	bconn_write(arg);
}

static void fx_backend_read(struct bconn *bc);
static void fx_backend_closed(struct fx *fx, const char *connect_error);

static void
bconn_on_read(evutil_socket_t fd, short what, void *arg)
{
	struct bconn *bc = arg;
	ssize_t n;

	if (what & EV_TIMEOUT) {
		/* the idle tick: close pooled connections idle for long */
		if (bc->fx == NULL &&
		    clock_mono_us() - bc->idle_since_us >= (int64_t)FW_BACKEND_IDLE_S * 1000000)
			bconn_free(bc);
		return;
	}
	if (bc->fx == NULL) {
		/* A pooled connection must be silent; anything else (EOF
		 * included) ends it. */
		bconn_free(bc);
		return;
	}
	n = server_sock_read(bc->fd, bc->in, &bc->read_size);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0) {
		fx_backend_closed(bc->fx, NULL);
		return;
	}
	fx_backend_read(bc);
}

/* The connector connected: take its socket and let it go. */
static void
bconn_adopt(struct bconn *bc)
{
	struct event_base *base = bc->fw->base;
	int one = 1;

	bc->fd = bufferevent_getfd(bc->connector);
	bufferevent_free(bc->connector);
	bc->connector = NULL;
	bc->connected = true;
	/* A streamed request body goes out in pieces: none may wait for the
	 * ACK of the one before (Nagle with delayed ACKs: up to 40 ms). */
	setsockopt(bc->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	event_assign(&bc->rev, base, bc->fd, EV_READ | EV_PERSIST, bconn_on_read, bc);
	event_assign(&bc->wev, base, bc->fd, EV_WRITE | EV_PERSIST, bconn_on_write, bc);
	bconn_set_reading(bc, true);
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
	event_del(&fx->timer);
	if (fx->sse_pending != NULL)
		evbuffer_free(fx->sse_pending);
	free(fx->sse_prefix);
	xfree_secret(fx->inject);
	free(fx->sid_backend);
	free(fx->target);
	fx->fw->n_active--;
	req_unref(fx->sr);
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
	evtimer_del(&fx->timer);
	req_set_abort(fx->sr, NULL, NULL);
	if (fx->stream)
		req_set_stream(fx->sr, false);
	if (fx->bc != NULL && reuse_conn && fx->keepalive) {
		struct bconn *bc = fx->bc;

		fx->bc = NULL;
		bconn_release(bc);
	}
	fx_unref(fx);
}

/* The client went away (or the server is draining a stream). */
static void
fx_abort(struct req *sr, void *arg)
{
	struct fx *fx = arg;

	if (fx->dead)
		return;
	if (!req_gone(sr) && fx->started) {
		/* Shutdown of a live stream: end it cleanly. */
		req_reply_end(sr);
	} else if (!req_gone(sr)) {
		fx_fail(fx, 503, "shutdown", "the proxy is shutting down");
		return;
	}
	fx_close(fx, false);
}

/* --- errors --- */

static void
fx_fail(struct fx *fx, int status, const char *kind, const char *message)
{
	struct forwarder *fw = fx->fw;

	if (fx->dead)
		return;
	if (fx->to_peer) {
		/* The owner cannot be reached: it is gone (its pod ended) and the
		 * session with it. The client gets the backend's answer for an
		 * unknown session, and re-initializes. */
		bool gone = strcmp(kind, "connect") == 0 || strcmp(kind, "connect_timeout") == 0;

		metrics_add(fw->root->m_peer_errors, 1, kind);
		metrics_add(fw->root->m_peer_requests, 1, "out", gone ? "owner_gone" : "error");
		log_warn("peer error", LOG_S("kind", kind), LOG_S("error", message),
		    LOG_S("peer", fw->origin), LOG_S("path", req_path(fx->sr)),
		    LOG_S("request_id", req_id(fx->sr)));
		if (gone && !fx->started && !req_gone(fx->sr)) {
			forward_no_session(fx->sr);
			fx_close(fx, false);
			return;
		}
	} else {
		metrics_add(fw->m_errors, 1, kind);
		log_warn("backend error", LOG_S("kind", kind), LOG_S("error", message),
		    LOG_S("path", req_path(fx->sr)), LOG_S("request_id", req_id(fx->sr)));
	}
	if (req_gone(fx->sr)) {
		fx_close(fx, false);
		return;
	}
	if (fx->started) {
		if (fx->content_length_reply) {
			/* The client was promised more bytes: only closing tells it. */
			fx_ref(fx);
			req_abort_connection(fx->sr);
			fx_close(fx, false);
			fx_unref(fx);
			return;
		}
		req_reply_end(fx->sr);
		fx_close(fx, false);
		return;
	} else {
		char *id = req_jsonrpc_id(fx->sr);
		char *body;
		const char *code = status == 504 ? "gateway_timeout"
		    : status == 503              ? "unavailable"
						 : "bad_gateway";

		if (id != NULL) {
			json_object *m = json_object_new_string(message);

			body =
			    xasprintf("{\"jsonrpc\":\"2.0\",\"id\":%s,\"error\":{\"code\":-32603,"
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
		req_clear_headers(fx->sr);
		req_add_header(fx->sr, "X-Request-Id", req_id(fx->sr));
		req_reply_json(fx->sr, status, body);
		free(body);
	}
	fx_close(fx, false);
}

/* --- sending the request --- */

/* Is the header name (n bytes) want, a string literal? */
#define FX_NAME_IS(name, n, want) ((n) == sizeof(want) - 1 && strcasecmp((name), (want)) == 0)

/* Headers a proxy must not forward in either direction (RFC 9110 §7.6.1). */
static bool
fx_hop_by_hop(const char *name, size_t n, const char *connection)
{
	static const struct {
		const char *name;
		size_t len;
	} hop[] = { { "Connection", 10 }, { "Keep-Alive", 10 }, { "TE", 2 }, { "Trailer", 7 },
		{ "Transfer-Encoding", 17 }, { "Upgrade", 7 }, { "Content-Length", 14 } };

	/* the length first: this runs for every header of every exchange */
	for (size_t i = 0; i < sizeof hop / sizeof hop[0]; i++) {
		if (n == hop[i].len && strcasecmp(name, hop[i].name) == 0)
			return true;
	}
	if (n >= 6 && strncasecmp(name, "Proxy-", 6) == 0)
		return true; /* Proxy-Connection, Proxy-Authorization, ... */
	return connection != NULL && h1_token_in_list(connection, name);
}

static void
fx_add_str(struct evbuffer *out, const char *s)
{
	evbuffer_add(out, s, strlen(s));
}

static void
fx_add_header(struct evbuffer *out, const char *name, const char *value)
{
	fx_add_str(out, name);
	evbuffer_add(out, ": ", 2);
	fx_add_str(out, value);
	evbuffer_add(out, "\r\n", 2);
}

/* "Content-Length: n\r\n" without printf: every forwarded POST writes one. */
static void
fx_add_content_length(struct evbuffer *out, size_t n)
{
	char buf[40], *p = buf + sizeof buf;

	*--p = '\n';
	*--p = '\r';
	do {
		*--p = (char)('0' + n % 10);
		n /= 10;
	} while (n > 0);
	evbuffer_add(out, "Content-Length: ", 16);
	evbuffer_add(out, p, (size_t)(buf + sizeof buf - p));
}

static void
fx_write_request(struct fx *fx, struct evbuffer *out)
{
	struct forwarder *fw = fx->fw;
	struct req *sr = fx->sr;
	const char *connection = req_header(sr, "Connection");
	const char *path = req_path(sr), *query = req_query(sr);
	const char *xff = req_header(sr, "X-Forwarded-For");
	const char *host = req_header(sr, "Host");
	const char *peer = req_peer(sr), *name, *value;
	struct evbuffer *body = req_body(sr);
	enum h1_method m = req_method(sr);
	bool trust = fw->cfg->server.trust_proxy_headers;
	size_t i = 0;

	/* Head and a small body in one piece of the buffer: one send(). */
	evbuffer_expand(out, 4096 - 128);
	fx_add_str(out, fx->head_method ? "HEAD" : req_method_name(sr));
	evbuffer_add(out, " ", 1);
	if (fx->to_peer) {
		/* The owner sees the request as the client sent it. */
		fx_add_str(out, fx->target);
	} else {
		fx_add_str(out, fw->base_path);
		fx_add_str(out, path != NULL && *path != '\0' ? path : "/");
		if (query != NULL) {
			size_t off, len;

			evbuffer_add(out, "?", 1);
			if (fx->sid_in_query && fx->sid_backend != NULL &&
			    sse_query_session(query, &off, &len)) {
				/* legacy SSE: the backend's own id in its URL */
				evbuffer_add(out, query, off);
				fx_add_str(out, fx->sid_backend);
				fx_add_str(out, query + off + len);
			} else {
				fx_add_str(out, query);
			}
		}
	}
	evbuffer_add(out, " HTTP/1.1\r\nHost: ", 17);
	fx_add_str(out, fx->to_peer && host != NULL ? host : fw->host_header);
	evbuffer_add(out, "\r\n", 2);
	while (req_header_next(sr, &i, &name, &value)) {
		size_t n = strlen(name); /* every test below looks at the length first */

		if (fx_hop_by_hop(name, n, connection) || FX_NAME_IS(name, n, "Host") ||
		    FX_NAME_IS(name, n, "Expect"))
			continue;
		/* Mcp-Peer-*: only we add them, and only for a peer. */
		if (n >= 9 && strncasecmp(name, "Mcp-Peer-", 9) == 0)
			continue;
		if (fx->sid_backend != NULL && FX_NAME_IS(name, n, "Mcp-Session-Id"))
			continue;
		/* A peer is handed the client's credentials, to check them itself
		 * (as if the client had connected to it). */
		if (!fx->to_peer && FX_NAME_IS(name, n, "Authorization"))
			continue;
		if (!fx->to_peer && fx->opts.strip_cookies && FX_NAME_IS(name, n, "Cookie"))
			continue;
		if (n >= 12 && strncasecmp(name, "X-Forwarded-", 12) == 0 &&
		    (!trust || FX_NAME_IS(name, n, "X-Forwarded-For")))
			continue; /* X-Forwarded-For is rebuilt below */
		if (fx->inject != NULL && n == fx->inject_name_len &&
		    strncasecmp(name, fx->inject, n) == 0)
			continue;
		fx_add_header(out, name, value);
	}
	if (trust && xff != NULL)
		evbuffer_add_printf(out, "X-Forwarded-For: %s, %s\r\n", xff, peer);
	else
		fx_add_header(out, "X-Forwarded-For", peer);
	if (!trust || req_header(sr, "X-Forwarded-Proto") == NULL)
		evbuffer_add(out, "X-Forwarded-Proto: http\r\n", 25);
	if ((!trust || req_header(sr, "X-Forwarded-Host") == NULL) && host != NULL)
		fx_add_header(out, "X-Forwarded-Host", host);
	if (fx->inject != NULL)
		fx_add_str(out, fx->inject);
	if (fx->sid_backend != NULL && !fx->sid_in_query)
		fx_add_header(out, "Mcp-Session-Id", fx->sid_backend);
	if (fx->to_peer) {
		/* Signed afresh on every attempt (a retry is another request). */
		char mac[PEERAUTH_MAC_HEX + 1], nonce[PEERAUTH_NONCE_HEX + 1], ts[24];
		int64_t t = clock_wall_s();

		peerauth_nonce(nonce);
		peerauth_sign(fw->root->signer, fx->head_method ? "HEAD" : req_method_name(sr),
		    fx->target, t, nonce, fx->sid_in_query ? NULL : fx->sid_client, mac);
		snprintf(ts, sizeof ts, "%lld", (long long)t);
		fx_add_header(out, "Mcp-Peer-Client", peer);
		fx_add_header(out, PEERAUTH_TIME_HEADER, ts);
		fx_add_header(out, PEERAUTH_NONCE_HEADER, nonce);
		fx_add_header(out, PEERAUTH_AUTH_HEADER, mac);
	}
	if (evbuffer_get_length(body) > 0 || m == H1_POST || m == H1_PUT || m == H1_PATCH)
		fx_add_content_length(out, evbuffer_get_length(body));
	evbuffer_add(out, "\r\n", 2);
	/* The client's body stays intact for a retry on a fresh connection and
	 * for the JSON-RPC id of an error reply: a large one by reference. */
	if (evbuffer_get_length(body) > SERVER_COPY_MAX)
		evbuffer_add_buffer_reference(out, body);
	else if (evbuffer_get_length(body) > 0) /* copied; pullup keeps the bytes */
		evbuffer_add(out, evbuffer_pullup(body, -1), evbuffer_get_length(body));
}

static void
fx_arm_timer(struct fx *fx, int64_t ms)
{
	struct timeval tv;

	evtimer_del(&fx->timer);
	if (ms <= 0)
		return;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(&fx->timer, &tv);
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
fx_backend_read(struct bconn *bc)
{
	struct fx *fx = bc->fx;

	fx_ref(fx);
	fx_process(fx);
	fx_unref(fx);
}

/* May this request be sent twice (RFC 9110 §9.2.2)? */
static bool
fx_idempotent(const struct fx *fx)
{
	switch (req_method(fx->sr)) {
	case H1_GET:
	case H1_HEAD:
	case H1_OPTIONS:
	case H1_PUT:
	case H1_DELETE:
		return true;
	default:
		return false;
	}
}

/* The backend connection closed (or failed to connect, with the error). */
static void
fx_backend_closed(struct fx *fx, const char *connect_error)
{
	fx_ref(fx);
	if (fx->dead)
		goto out;
	if (connect_error != NULL) {
		char msg[160];

		snprintf(msg, sizeof msg, "cannot connect to the MCP server: %s", connect_error);
		fx_fail(fx, 502, "connect", msg);
		goto out;
	}
	if (fx->state == FX_WAIT_HEAD && !fx->got_bytes && fx->bc->reused && !fx->retried &&
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
		fx->keepalive = false;
		req_reply_end(fx->sr);
		fx_close(fx, false);
		goto out;
	}
	fx_fail(fx, 502, fx->state == FX_WAIT_HEAD ? "closed" : "truncated",
	    "the MCP server closed the connection before the response ended");
out:
	fx_unref(fx);
}

static void
fx_connect_event(struct bufferevent *bev, short what, void *arg)
{
	struct bconn *bc = arg;
	struct fx *fx = bc->fx;
	int err;

	if (what & BEV_EVENT_CONNECTED) {
		bconn_adopt(bc);
		fx_arm_timer(fx, fx->fw->cfg->backend.response_timeout_ms);
		bconn_write(bc);
		return;
	}
	err = bufferevent_socket_get_dns_error(bev);
	fx_backend_closed(fx,
	    err ? evutil_gai_strerror(err) : evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

static void
fx_send_request(struct fx *fx)
{
	struct forwarder *fw = fx->fw;
	struct bconn *bc = TAILQ_FIRST(&fw->idle);
	int rc;

	if (bc != NULL && !fx->retried) {
		TAILQ_REMOVE(&fw->idle, bc, entry);
		fw_pool_add(fw, -1);
		bc->reused = true;
	} else {
		bc = xcalloc(1, sizeof *bc);
		bc->fw = fw;
		bc->fd = -1;
		bc->in = xevbuffer_new();
		bc->out = xevbuffer_new();
		/* Not CLOSE_ON_FREE: its socket becomes ours once connected. */
		bc->connector = bufferevent_socket_new(fw->base, -1, 0);
		if (bc->connector == NULL) {
			bconn_free(bc);
			fx_fail(fx, 502, "connect", "cannot create a socket");
			return;
		}
		bc->fx = fx;
		bufferevent_setcb(bc->connector, NULL, NULL, fx_connect_event, bc);
		rc = bufferevent_socket_connect_hostname(bc->connector, fw->dns, AF_UNSPEC,
		    fw->host, fw->port);
		if (rc != 0) {
			bc->fx = NULL;
			bconn_free(bc);
			fx_fail(fx, 502, "connect", "cannot connect to the MCP server");
			return;
		}
	}
	bc->entry.tqe_prev = NULL;
	bc->fx = fx;
	fx->bc = bc;
	fx_write_request(fx, bc->out);
	fx_arm_timer(fx,
	    bc->connected ? fw->cfg->backend.response_timeout_ms
			  : fw->cfg->backend.connect_timeout_ms);
	bconn_write(bc);
}

/* --- the response --- */

static void
fx_drained(struct req *sr, void *arg)
{
	struct fx *fx = arg;

	if (fx->dead || !fx->paused || fx->bc == NULL)
		return;
	fx->paused = false;
	bconn_set_reading(fx->bc, true);
	fx_ref(fx);
	fx_process(fx);
	fx_unref(fx);
}

/* Hand bytes to the client, pausing the backend when the client is slow. */
static void
fx_emit_raw(struct fx *fx, struct evbuffer *buf)
{
	if (req_gone(fx->sr) || evbuffer_get_length(buf) == 0)
		return;
	req_reply_chunk(fx->sr, buf);
	if (req_output_pending(fx->sr) > FW_HIGH_WATER && fx->bc != NULL) {
		fx->paused = true;
		bconn_set_reading(fx->bc, false);
	}
}

/* Legacy SSE: the session of the endpoint URL as the client will hold it
 * (an sse_seal_fn; arg: the exchange): with sessions across replicas
 * sealed with this replica as its owner, as an Mcp-Session-Id is, else as
 * it is; noted on the stream's request (req_sse_stream_session) for the rooms
 * that follow the stream (the policy's list filter). */
static char *
fx_endpoint_sid(const char *id, void *arg)
{
	struct fx *fx = arg;
	char *sealed = fx->fw->sessions ? session_seal(fx->fw->skey, fx->fw->self, id) : NULL;

	req_set_sse_stream_session(fx->sr, sealed != NULL ? sealed : id);
	return sealed;
}

/* Legacy SSE: rewrite the data of the first "endpoint" event so the client
 * posts back through us (public prefix kept); pass the rest through. The
 * events before it are looked for within FW_SSE_REWRITE_MAX bytes, with
 * any line ends (sse_event_end). */
static void
fx_emit(struct fx *fx, struct evbuffer *buf)
{
	struct evbuffer *out;
	size_t len, evlen;
	const char *head;
	char *text;
	bool is_endpoint;

	if (!fx->rewrite_sse) {
		fx_emit_raw(fx, buf);
		return;
	}
	evbuffer_add_buffer(fx->sse_pending, buf);
	for (;;) {
		len = evbuffer_get_length(fx->sse_pending);
		if (len > FW_SSE_REWRITE_MAX)
			len = FW_SSE_REWRITE_MAX;
		head = (const char *)evbuffer_pullup(fx->sse_pending, (ssize_t)len);
		evlen = sse_event_end(head, len);
		/* none within reach, or one with a NUL (not text): as it came */
		if ((evlen == 0 && evbuffer_get_length(fx->sse_pending) >= FW_SSE_REWRITE_MAX) ||
		    (evlen > 0 && memchr(head, '\0', evlen) != NULL)) {
			fx->rewrite_sse = false;
			fx_emit_raw(fx, fx->sse_pending);
			return;
		}
		if (evlen == 0)
			return;
		text = xmalloc(evlen + 1);
		evbuffer_remove(fx->sse_pending, text, evlen);
		text[evlen] = '\0';
		out = xevbuffer_new();
		is_endpoint = sse_endpoint_rewrite(text, fx->sse_prefix, fx_endpoint_sid, fx, out);
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

/* Find the end of a response head at the start of p (LF or CRLF line
 * ends): its length, or 0 when not all there. */
static size_t
fx_head_end(const char *p, size_t len)
{
	const char *nl;

	for (size_t i = 0; i < len && (nl = memchr(p + i, '\n', len - i)) != NULL;) {
		i = (size_t)(nl - p);
		if (i + 1 < len && p[i + 1] == '\n')
			return i + 2;
		if (i + 2 < len && p[i + 1] == '\r' && p[i + 2] == '\n')
			return i + 3;
		i++;
	}
	return 0;
}

/* "HTTP/1.x NNN[ reason]": sets status and the keep-alive default; false
 * when it is not one. */
static bool
fx_status_line(struct fx *fx, const char *line)
{
	int minor, code;

	if (strncmp(line, "HTTP/1.", 7) != 0 || line[7] < '0' || line[7] > '9' || line[8] != ' ' ||
	    line[9] < '0' || line[9] > '9' || line[10] < '0' || line[10] > '9' || line[11] < '0' ||
	    line[11] > '9' || (line[12] != ' ' && line[12] != '\r' && line[12] != '\0'))
		return false;
	minor = line[7] - '0';
	code = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
	if (code < 100 || code > 599)
		return false;
	fx->status = code;
	fx->keepalive = minor >= 1;
	fx->body = BODY_NONE;
	fx->has_accel_buffering = false;
	fx->head_length = -1;
	return true;
}

/* Split "name: value" in place (the value's surrounding blanks trimmed);
 * false when it is not a field line. */
static bool
fx_split_field(char *line, size_t *name_len, char **value)
{
	char *colon = strchr(line, ':'), *v, *e;

	if (colon == NULL || colon == line)
		return false;
	*colon = '\0';
	*name_len = (size_t)(colon - line);
	for (v = colon + 1; *v == ' ' || *v == '\t';)
		v++;
	for (e = v + strlen(v); e > v && (e[-1] == ' ' || e[-1] == '\t');)
		*--e = '\0';
	*value = v;
	return true;
}

/* What a response field tells us about framing and streaming; false when
 * the framing is bad (RFC 9112 §6.3: strict, one length only, never both). */
static bool
fx_head_field(struct fx *fx, const char *name, size_t nl, char *value, char **connection)
{
	if (FX_NAME_IS(name, nl, "Content-Length")) {
		int64_t cl = h1_parse_length(value);

		if (cl < 0 || fx->body == BODY_CHUNKED ||
		    (fx->body == BODY_LENGTH && cl != fx->remaining))
			return false;
		fx->remaining = cl;
		fx->body = BODY_LENGTH;
		fx->head_length = fx->remaining;
	} else if (FX_NAME_IS(name, nl, "Transfer-Encoding")) {
		if (strcasecmp(value, "chunked") != 0 || fx->body == BODY_LENGTH)
			return false;
		fx->body = BODY_CHUNKED;
	} else if (FX_NAME_IS(name, nl, "Connection")) {
		if (h1_token_in_list(value, "close"))
			fx->keepalive = false;
		*connection = value;
	} else if (FX_NAME_IS(name, nl, "Content-Type") &&
	    strncasecmp(value, "text/event-stream", 17) == 0) {
		fx->stream = true;
	} else if (FX_NAME_IS(name, nl, "X-Accel-Buffering")) {
		fx->has_accel_buffering = true;
	}
	return true;
}

/* The backend named its session: the client sees it sealed with this
 * replica as its owner (the id the client sent when that is what it is). */
static void
fx_add_session_header(struct fx *fx, const char *id)
{
	struct forwarder *fw = fx->fw;
	char *sealed;

	if (fx->sid_client != NULL && fx->sid_backend != NULL && strcmp(id, fx->sid_backend) == 0) {
		req_add_header(fx->sr, "Mcp-Session-Id", fx->sid_client);
		return;
	}
	sealed = session_seal(fw->skey, fw->self, id);
	req_add_header(fx->sr, "Mcp-Session-Id", sealed);
	free(sealed);
}

/* Parse one complete head (head, NUL-terminated, room for nlines fields),
 * copying the end-to-end fields to the client reply: 1 final, 0 interim
 * (1xx: another head follows), -1 bad. */
static int
fx_parse_one_head(struct fx *fx, char *head, size_t nlines)
{
	char **names = xreallocarray(NULL, 2 * (nlines + 1), sizeof *names);
	char **values = names + nlines + 1, *line, *next, *connection = NULL;
	size_t n = 0;
	int rc = -1;

	next = strchr(head, '\n');
	*next++ = '\0';
	if (!fx_status_line(fx, head))
		goto out;
	for (line = next; *line != '\0'; line = next) {
		size_t nl;
		char *value;

		next = strchr(line, '\n');
		*next++ = '\0';
		if (next - line >= 2 && next[-2] == '\r')
			next[-2] = '\0';
		if (*line == '\0')
			break;
		if (!fx_split_field(line, &nl, &value) ||
		    !fx_head_field(fx, line, nl, value, &connection))
			goto out;
		names[n] = line;
		values[n] = value;
		n++;
	}
	if (fx->status < 200) {
		/* Interim response: wait for the final one. */
		fx->status = 0;
		fx->stream = false;
		rc = 0;
		goto out;
	}
	/* Headers the backend's Connection names are hop-by-hop too. */
	for (size_t k = 0; k < n; k++) {
		size_t nl = strlen(names[k]);

		if (fx_hop_by_hop(names[k], nl, connection))
			continue;
		if (fx->fw->sessions && FX_NAME_IS(names[k], nl, "Mcp-Session-Id")) {
			fx_add_session_header(fx, values[k]);
			continue;
		}
		req_add_header(fx->sr, names[k], values[k]);
	}
	rc = 1;
out:
	free(names);
	return rc;
}

/* Parse the status line and headers from in, skipping interim responses;
 * 1 when a final head is complete, 0 for more, -1 bad. */
static int
fx_parse_head(struct fx *fx, struct evbuffer *in)
{
	for (;;) {
		size_t len = evbuffer_get_length(in), n, end, nlines = 0;
		const char *p;
		char *head;
		int rc;

		if (len == 0)
			return 0;
		n = len < FW_MAX_RESPONSE_HEAD + 4 ? len : FW_MAX_RESPONSE_HEAD + 4;
		p = (const char *)evbuffer_pullup(in, (ev_ssize_t)n);
		if ((end = fx_head_end(p, n)) == 0)
			return len > FW_MAX_RESPONSE_HEAD ? -1 : 0;
		/* No NUL in a head (RFC 9110 §5.5): the parse below needs text. */
		if (end > FW_MAX_RESPONSE_HEAD || memchr(p, '\0', end) != NULL)
			return -1;
		for (size_t k = 0; k < end; k++)
			nlines += p[k] == '\n';
		head = xstrndup(p, end);
		evbuffer_drain(in, end);
		rc = fx_parse_one_head(fx, head, nlines);
		free(head);
		if (rc != 0)
			return rc;
	}
}

/* Response head complete: decide framing and start the client reply. */
static void
fx_start_reply(struct fx *fx, struct evbuffer *in)
{
	struct req *sr = fx->sr;

	if (fx->head_method || fx->status == 204 || fx->status == 304) {
		fx->body = BODY_NONE;
	} else if (fx->body != BODY_LENGTH && fx->body != BODY_CHUNKED) {
		fx->body = BODY_CLOSE;
		fx->keepalive = false;
	}
	fx->state = FX_BODY;
	fx_arm_timer(fx, 0);
	metrics_observe(fx->fw->m_backend_latency, (double)(clock_mono_us() - fx->start_us) / 1e6);
	if (fx->to_peer)
		metrics_add(fx->fw->root->m_peer_requests, 1, "out", "ok");
	if (req_gone(sr))
		return;
	if (fx->body == BODY_NONE) {
		/* HEAD keeps the length the backend announced. */
		req_reply_start(sr, fx->status, fx->head_method ? fx->head_length : 0);
		req_reply_end(sr);
		fx_close(fx, true);
		return;
	}
	if (fx->body == BODY_LENGTH && !fx->stream &&
	    (int64_t)evbuffer_get_length(in) >= fx->remaining) {
		/* The whole body is here: one write (usually exactly all of in). */
		req_reply_start(sr, fx->status, fx->remaining);
		if ((int64_t)evbuffer_get_length(in) == fx->remaining) {
			req_reply_chunk(sr, in);
		} else {
			struct evbuffer *body = xevbuffer_new();

			evbuffer_remove_buffer(in, body, (size_t)fx->remaining);
			req_reply_chunk(sr, body);
			evbuffer_free(body);
		}
		fx->remaining = 0;
		req_reply_end(sr);
		fx_close(fx, true);
		return;
	}
	if (fx->body == BODY_LENGTH)
		fx->content_length_reply = true;
	if (fx->stream) {
		req_set_stream(sr, true);
		fx->rewrite_sse = fx->fw->sse_mode;
		if (fx->rewrite_sse)
			fx->sse_pending = xevbuffer_new();
		/* Intermediaries must not buffer an event stream. */
		if (!fx->has_accel_buffering)
			req_add_header(sr, "X-Accel-Buffering", "no");
	}
	req_set_drained(sr, fx_drained, fx);
	req_reply_start(sr, fx->status, fx->body == BODY_LENGTH ? fx->remaining : -1);
	fx->started = true;
}

/* Move body bytes from the backend to the client per the framing. */
static void
fx_pump(struct fx *fx, struct evbuffer *in)
{
	struct evbuffer *chunk = xevbuffer_new();
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
		/* chunked: http1's strict decoder (hex digits only: no 0x, sign or
		 * space before the size), the same one requests are read with. */
		{
			const char *why = NULL;
			int rc = h1_chunked_decode(&fx->chunked, in, chunk, SIZE_MAX,
			    FW_MAX_TRAILER, &why);

			if (rc < 0) {
				evbuffer_free(chunk);
				fx_fail(fx, 502, "protocol", "malformed chunked response");
				return;
			}
			complete = rc == 1;
			if (evbuffer_get_length(chunk) > 0)
				fx_emit(fx, chunk);
			break;
		}
	}
	evbuffer_free(chunk);
	if (fx->dead || !complete)
		return;
	if (fx->rewrite_sse && evbuffer_get_length(fx->sse_pending) > 0) {
		fx->rewrite_sse = false;
		fx_emit_raw(fx, fx->sse_pending);
	}
	req_reply_end(fx->sr);
	fx_close(fx, evbuffer_get_length(in) == 0);
}

static void
fx_process(struct fx *fx)
{
	struct evbuffer *in;
	int rc;

	if (fx->dead || fx->bc == NULL)
		return;
	in = fx->bc->in;
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

/* Keep the header the guard adds as one line, copied: the caller's strings
 * (a store entry) may change before a retry writes the request again. */
static void
fx_set_inject(struct fx *fx, const struct req_pass_opts *opts)
{
	const char *prefix = opts->inject_prefix != NULL ? opts->inject_prefix : "";
	const char *value = opts->inject_value != NULL ? opts->inject_value : "";
	size_t nn = strlen(opts->inject_name), np = strlen(prefix), nv = strlen(value);
	char *p = xmalloc(nn + 2 + np + nv + 3);

	fx->inject = p;
	fx->inject_name_len = nn;
	memcpy(p, opts->inject_name, nn);
	memcpy(p + nn, ": ", 2);
	memcpy(p + nn + 2, prefix, np);
	memcpy(p + nn + 2 + np, value, nv);
	memcpy(p + nn + 2 + np + nv, "\r\n", 3);
}

/* 404 with the JSON-RPC error a backend gives for a session it does not
 * know: the client starts a new one. */
static void
forward_no_session(struct req *sr)
{
	char *id = req_jsonrpc_id(sr), *body;

	body = xasprintf("{\"jsonrpc\":\"2.0\",\"id\":%s,\"error\":{\"code\":-32001,"
			 "\"message\":\"Session not found\"}}",
	    id != NULL ? id : "null");
	req_clear_headers(sr);
	req_add_header(sr, "X-Request-Id", req_id(sr));
	req_reply_json(sr, 404, body);
	free(body);
	free(id);
}

static struct forwarder *forwarder_alloc(struct event_base *base, struct evdns_base *dns,
    const struct config *cfg, const char *url);

/* The peer origin for owner (made on first use; the most recently used
 * first), or NULL when FW_MAX_PEERS are all busy. */
static struct forwarder *
forward_peer(struct forwarder *root, const char *owner)
{
	struct forwarder *p;
	char *url;

	TAILQ_FOREACH(p, &root->peers, peer_entry)
	{
		if (strcmp(p->origin, owner) == 0) {
			TAILQ_REMOVE(&root->peers, p, peer_entry);
			TAILQ_INSERT_HEAD(&root->peers, p, peer_entry);
			return p;
		}
	}
	if (root->n_peers >= FW_MAX_PEERS) {
		/* Replicas come and go: forget the idle origin used longest ago. */
		TAILQ_FOREACH_REVERSE(p, &root->peers, forwarder_list, peer_entry)
		{
			if (p->n_active == 0)
				break;
		}
		if (p == NULL)
			return NULL;
		TAILQ_REMOVE(&root->peers, p, peer_entry);
		root->n_peers--;
		forwarder_free(p);
	}
	url = xasprintf("http://%s/", owner);
	p = forwarder_alloc(root->base, root->dns, root->cfg, url);
	free(url);
	p->root = root;
	p->origin = xstrdup(owner);
	p->sse_mode = false; /* the owner rewrites what needs it */
	p->m_errors = root->m_peer_errors;
	p->m_backend_latency = metrics_histogram("mcp_proxy_peer_response_seconds",
	    "Time from forwarding a request to the replica owning its MCP session to its response "
	    "headers.",
	    "", NULL, 0);
	TAILQ_INSERT_HEAD(&root->peers, p, peer_entry);
	root->n_peers++;
	return p;
}

/* The session id the client sent, when sessions are sealed: its
 * Mcp-Session-Id, or (legacy SSE, *in_query) the sessionId of the message
 * URL. NULL: none. Valid as long as sr. */
static const char *
forward_client_sid(const struct forwarder *fw, struct req *sr, bool *in_query)
{
	const char *sid;

	*in_query = false;
	if (!fw->sessions)
		return NULL;
	if ((sid = req_header(sr, "Mcp-Session-Id")) != NULL || !fw->sse_mode)
		return sid;
	*in_query = (sid = req_sse_session(sr)) != NULL;
	return sid;
}

/* Whether sr's session is held here (req_session_home), found once. */
static void
forward_find_home(const struct forwarder *fw, struct req *sr)
{
	enum req_session_home home = REQ_HOME_HERE;
	char *owner = NULL, *id = NULL;
	const char *sid;
	bool in_query;

	if (req_session_home(sr) != REQ_HOME_UNKNOWN)
		return;
	if ((sid = forward_client_sid(fw, sr, &in_query)) != NULL &&
	    (session_open(fw->skey, sid, &owner, &id) != 0 || strcmp(owner, fw->self) != 0))
		home = REQ_HOME_ELSEWHERE;
	free(owner);
	free(id);
	req_set_session_home(sr, home);
}

bool
forwarder_set_front(struct forwarder *fw, req_handler_fn next, void *next_arg, req_head_fn head,
    void *head_arg)
{
	fw->front_next = next;
	fw->front_next_arg = next_arg;
	fw->front_head = head;
	fw->front_head_arg = head_arg;
	return fw->sessions;
}

void
forward_front_handler(struct req *sr, void *arg)
{
	struct forwarder *fw = arg;

	if (req_gone(sr))
		return;
	forward_find_home(fw, sr);
	fw->front_next(sr, fw->front_next_arg);
}

bool
forward_front_head(struct req *sr, void *arg)
{
	struct forwarder *fw = arg;

	if (req_gone(sr))
		return false;
	forward_find_home(fw, sr);
	return fw->front_head == NULL || fw->front_head(sr, fw->front_head_arg);
}

/*
 * Sessions across replicas: where the request goes. Without a session id
 * (or with sealing off) to the backend untouched. An id that does not open
 * is a session nobody knows: 404, nothing is forwarded. Our own: to the
 * backend with its id restored. Another replica's: to that replica's peer
 * listener — unless the request came from a peer listener itself (the
 * replicas disagree about who is who: 404 rather than a loop). Returns
 * the origin, or NULL when the request was answered.
 */
static struct forwarder *
forward_route(struct forwarder *fw, struct req *sr, const char **sid, char **backend_id,
    bool *sid_in_query)
{
	struct forwarder *to = fw;
	char *owner = NULL, *id = NULL;

	*backend_id = NULL;
	if ((*sid = forward_client_sid(fw, sr, sid_in_query)) == NULL)
		return fw;
	if (session_open(fw->skey, *sid, &owner, &id) != 0) {
		metrics_add(fw->m_peer_requests, 1, "out", "bad_session");
		forward_no_session(sr);
		return NULL;
	}
	if (strcmp(owner, fw->self) == 0) {
		*backend_id = id;
		id = NULL;
	} else if (req_via_peer(sr)) {
		metrics_add(fw->m_peer_requests, 1, "out", "bad_session");
		log_warn("peer request for a session of another replica", LOG_S("owner", owner),
		    LOG_S("self", fw->self), LOG_S("request_id", req_id(sr)));
		forward_no_session(sr);
		to = NULL;
	} else if ((to = forward_peer(fw, owner)) == NULL) {
		metrics_add(fw->m_peer_errors, 1, "too_many_peers");
		req_reply_json(sr, 503,
		    "{\"error\":\"unavailable\",\"error_description\":\"too many replicas "
		    "in use at once\"}");
	}
	free(owner);
	free(id);
	return to;
}

void
forward_request(struct forwarder *fw, struct req *sr, const struct req_pass_opts *opts)
{
	struct fx *fx;
	const char *xfp, *sid;
	char *backend_id;
	bool sid_in_query;
	struct forwarder *to;

	if (req_gone(sr))
		return;
	if ((to = forward_route(fw, sr, &sid, &backend_id, &sid_in_query)) == NULL)
		return;
	fx = xcalloc(1, sizeof *fx);
	fx->fw = fw = to;
	fw->n_active++;
	fx->to_peer = fw->root != NULL;
	fx->sid_client = sid;
	fx->sid_backend = backend_id;
	fx->sid_in_query = sid_in_query;
	if (fx->to_peer) {
		const char *path = req_path(sr), *query = req_query(sr);

		fx->target = xasprintf("%s%s%s", path != NULL && *path != '\0' ? path : "/",
		    query != NULL ? "?" : "", query != NULL ? query : "");
		opts = NULL; /* the owner's guard decides what its backend gets */
	}
	fx->sr = sr;
	fx->refs = 1;
	fx->start_us = clock_mono_us();
	fx->head_method = req_method(sr) == H1_HEAD;
	evtimer_assign(&fx->timer, fw->base, fx_timeout, fx);
	if (opts != NULL) {
		fx->opts = *opts;
		fx->opts.principal = NULL; /* borrowed for the call only */
		if (opts->inject_name != NULL)
			fx_set_inject(fx, opts);
	}
	xfp = req_header(sr, "X-Forwarded-Prefix");
	if (fw->sse_mode) {
		if (fw->cfg->server.trust_proxy_headers && sse_endpoint_prefix_safe(xfp))
			fx->sse_prefix = xstrdup(xfp);
		else
			fx->sse_prefix = xstrdup(fw->cfg->server.public_path_prefix != NULL
				? fw->cfg->server.public_path_prefix
				: "");
		/* "/a/" + "/messages" must not become "/a//messages" */
		if (fx->sse_prefix[0] != '\0' && fx->sse_prefix[strlen(fx->sse_prefix) - 1] == '/')
			fx->sse_prefix[strlen(fx->sse_prefix) - 1] = '\0';
	}
	req_ref(sr);
	req_set_abort(sr, fx_abort, fx);
	fx_send_request(fx);
}

void
forward_handler(struct req *sr, void *fw)
{
	forward_request(fw, sr, NULL);
}

void
forward_pass(struct req *sr, const struct req_pass_opts *opts, void *fw)
{
	forward_request(fw, sr, opts);
}

/* A forwarder for the origin of url, with its own pool. */
static struct forwarder *
forwarder_alloc(struct event_base *base, struct evdns_base *dns, const struct config *cfg,
    const char *url)
{
	struct forwarder *fw = xcalloc(1, sizeof *fw);
	struct evhttp_uri *u = evhttp_uri_parse(url);
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
	TAILQ_INIT(&fw->peers);
	fw->m_pool = metrics_gauge("mcp_proxy_backend_idle_connections",
	    "Idle keep-alive connections to the MCP server.", "");
	return fw;
}

struct forwarder *
forwarder_new(struct event_base *base, struct evdns_base *dns, const struct config *cfg)
{
	struct forwarder *fw = forwarder_alloc(base, dns, cfg, cfg->backend.url);

	if (cfg->server.peer_listen != NULL && cfg->server.peer_secret.value != NULL &&
	    cfg->server.peer_address != NULL) {
		fw->sessions = true;
		fw->skey = session_key_new(cfg->server.peer_secret.value,
		    cfg->server.peer_secret.value_len);
		fw->signer = peerauth_new(cfg->server.peer_secret.value,
		    cfg->server.peer_secret.value_len, 1);
		fw->self = xstrdup(cfg->server.peer_address);
		fw->m_peer_requests = metrics_counter("mcp_proxy_peer_requests_total",
		    "MCP session requests between replicas: out (forwarded to the owner; ok, "
		    "owner_gone, error, bad_session) and in (on the peer listener; ok or why "
		    "refused).",
		    "direction,outcome");
		fw->m_peer_errors = metrics_counter("mcp_proxy_peer_errors_total",
		    "Failed exchanges with the replica owning an MCP session, by kind.", "kind");
		fw->m_peer_pool = metrics_gauge("mcp_proxy_peer_idle_connections",
		    "Idle keep-alive connections to other replicas' peer listeners.", "");
		metrics_set(fw->m_peer_pool, 0);
	}
	fw->m_errors = metrics_counter("mcp_proxy_backend_errors_total",
	    "Failed exchanges with the MCP server, by kind.", "kind");
	fw->m_backend_latency = metrics_histogram("mcp_proxy_backend_response_seconds",
	    "Time from forwarding a request to the MCP server's response headers.", "", NULL, 0);
	return fw;
}

void
forwarder_free(struct forwarder *fw)
{
	struct forwarder *p;
	struct bconn *bc;

	if (fw == NULL)
		return;
	while ((bc = TAILQ_FIRST(&fw->idle)) != NULL)
		bconn_free(bc);
	while ((p = TAILQ_FIRST(&fw->peers)) != NULL) {
		TAILQ_REMOVE(&fw->peers, p, peer_entry);
		forwarder_free(p);
	}
	peerauth_free(fw->signer);
	session_key_free(fw->skey);
	free(fw->self);
	free(fw->origin);
	free(fw->host);
	free(fw->base_path);
	free(fw->host_header);
	free(fw);
}
