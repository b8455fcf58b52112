/*
 * The handler API (proxy/req.h) of the front end: a request's lifecycle
 * and access log, what a handler reads of it, and its reply, whole or
 * streamed. Connections are server.c's; a req only asks its connection to
 * write, and does nothing once the client is gone.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/rand.h>
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
#include "proxy/metrics.h"
#include "proxy/sse_endpoint.h"

#include "proxy/server_private.h"

bool
req_via_peer(const struct req *sr)
{
	return sr->which == SERVER_PEER;
}

void
req_set_session_home(struct req *sr, enum req_session_home home)
{
	sr->home = home;
}

enum req_session_home
req_session_home(const struct req *sr)
{
	return sr->home;
}

const char *
req_sse_session(struct req *sr)
{
	const char *query = sr->rq.query;
	size_t off, len;

	if (sr->sse_sid == NULL && query != NULL && sse_query_session(query, &off, &len))
		sr->sse_sid = xstrndup(query + off, len);
	return sr->sse_sid;
}

const char *
req_sse_stream_session(const struct req *sr)
{
	return sr->sse_stream_sid;
}

void
req_set_sse_stream_session(struct req *sr, const char *sid)
{
	free(sr->sse_stream_sid);
	sr->sse_stream_sid = sid != NULL ? xstrdup(sid) : NULL;
}

/* --- request lifecycle --- */

static void
server_access_log(struct req *sr, int status)
{
	struct server *srv = sr->srv;
	double secs = (double)(clock_mono_us() - sr->start_us) / 1e6;
	const char *listener = server_listener_name(sr->which);
	char st[8];

	if (sr->logged)
		return;
	sr->logged = true;
	snprintf(st, sizeof st, "%d", status);
	metrics_add(srv->m_requests, 1, listener, sr->rq.method_name, sr->route, st);
	metrics_observe(srv->m_latency, secs, listener, sr->route);
	if (sr->which == SERVER_DIAG && status < 400 && !log_enabled(LOG_DEBUG))
		return; /* probes and scrapes would drown the log */
	log_info("access", LOG_S("listener", listener), LOG_S("method", sr->rq.method_name),
	    LOG_S("path", sr->rq.path), LOG_S("route", sr->route), LOG_I("status", status),
	    LOG_I("bytes", sr->bytes), LOG_D("duration_ms", secs * 1000.0),
	    LOG_S("request_id", sr->id));
}

/* Take the request out of the in-flight list (once). */
void
req_release(struct req *sr)
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

/* Tell the watcher the request is over (once). */
static void
req_watch_end(struct req *sr, int status)
{
	req_watch_fn fn = sr->watch_fn;

	sr->filter_fn = NULL; /* its arg may go with the watcher's */
	if (fn == NULL)
		return;
	sr->watch_fn = NULL;
	fn(sr, status, NULL, 0, sr->watch_arg);
}

/* Show the watcher the body bytes in buf (not taken). */
static void
req_watch_buf(struct req *sr, struct evbuffer *buf)
{
	struct evbuffer_iovec v[8];
	struct evbuffer_ptr at;
	int n;

	evbuffer_ptr_set(buf, &at, 0, EVBUFFER_PTR_SET);
	for (;;) {
		n = evbuffer_peek(buf, -1, &at, v, 8);
		for (int i = 0; i < n && i < 8; i++) {
			sr->watch_fn(sr, sr->status, v[i].iov_base, v[i].iov_len, sr->watch_arg);
			if (sr->watch_fn == NULL)
				return;
			evbuffer_ptr_set(buf, &at, v[i].iov_len, EVBUFFER_PTR_ADD);
		}
		if (n <= 8)
			return;
	}
}

void
req_ref(struct req *sr)
{
	sr->refs++;
}

void
req_unref(struct req *sr)
{
	if (--sr->refs > 0)
		return;
	req_watch_end(sr, 0);
	h1_request_dispose(&sr->rq);
	if (sr->body != NULL)
		evbuffer_free(sr->body);
	if (sr->held != NULL)
		evbuffer_free(sr->held);
	free(sr->rh);
	free(sr->sse_sid);
	free(sr->sse_stream_sid);
	free(sr);
}

/* The request is over for the server (reply flushed, or the client gone):
 * log it, mark it gone, drop the server's reference. Once only. */
void
req_finish(struct req *sr, int status)
{
	if (sr->gone)
		return;
	sr->gone = true;
	sr->conn = NULL;
	sr->drained_fn = NULL;
	server_access_log(sr, status);
	req_watch_end(sr, status);
	req_release(sr);
	req_unref(sr);
}

void
req_make_id(struct req *sr)
{
	const char *given = h1_header_find(&sr->rq, "X-Request-Id");
	unsigned char rnd[8];
	size_t n;

	if (given != NULL && (n = strlen(given)) > 0 && n < sizeof sr->id &&
	    strspn(given, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") ==
		n) {
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
	{
		static const char hex[] = "0123456789abcdef";
		uint64_t ctr = ++sr->srv->id_counter;
		size_t k = 8;

		memcpy(sr->id, sr->srv->id_prefix, 8);
		while (k < 16 && (ctr >> (4 * k)) != 0)
			k++; /* as %08llx: at least 8 digits */
		for (size_t i = 0; i < k; i++)
			sr->id[8 + i] = hex[(ctr >> (4 * (k - 1 - i))) & 0xf];
		sr->id[8 + k] = '\0';
	}
}

/* --- the request, for handlers --- */

bool
req_gone(const struct req *sr)
{
	return sr->gone;
}

const char *
req_id(const struct req *sr)
{
	return sr->id;
}

enum h1_method
req_method(const struct req *sr)
{
	return sr->rq.method;
}

const char *
req_method_name(const struct req *sr)
{
	return sr->rq.method_name;
}

const char *
req_target(const struct req *sr)
{
	return sr->rq.target;
}

const char *
req_path(const struct req *sr)
{
	return sr->rq.path;
}

const char *
req_query(const struct req *sr)
{
	return sr->rq.query;
}

const char *
req_header(const struct req *sr, const char *name)
{
	return h1_header_find(&sr->rq, name);
}

bool
req_header_next(const struct req *sr, size_t *i, const char **name, const char **value)
{
	if (*i >= sr->rq.n_headers)
		return false;
	*name = sr->rq.headers[*i].name;
	*value = sr->rq.headers[*i].value;
	(*i)++;
	return true;
}

struct evbuffer *
req_body(const struct req *sr)
{
	return sr->body;
}

char *
req_jsonrpc_id(struct req *sr)
{
	struct json_tokener *tok;
	const char *ct;
	json_object *o, *id;
	char *out = NULL;
	size_t len;

	if (req_gone(sr))
		return NULL;
	ct = req_header(sr, "Content-Type");
	len = evbuffer_get_length(sr->body);
	if (ct == NULL || strstr(ct, "json") == NULL || len == 0 || len > SERVER_JSONRPC_SCAN_MAX)
		return NULL;
	/* The body is not NUL-terminated: parse exactly len bytes. */
	tok = json_tokener_new();
	o = json_tokener_parse_ex(tok, (const char *)evbuffer_pullup(sr->body, -1), (int)len);
	if (o != NULL && json_tokener_get_error(tok) != json_tokener_success) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
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

const char *
req_peer(const struct req *sr)
{
	return sr->peer;
}

struct server *
req_server(const struct req *sr)
{
	return sr->srv;
}

void
req_set_abort(struct req *sr, req_abort_fn fn, void *arg)
{
	sr->abort_fn = fn;
	sr->abort_arg = arg;
}

void
req_set_drained(struct req *sr, req_drained_fn fn, void *arg)
{
	sr->drained_fn = fn;
	sr->drained_arg = arg;
}

void
req_set_watch(struct req *sr, req_watch_fn fn, void *arg)
{
	sr->watch_fn = fn;
	sr->watch_arg = arg;
}

void
req_set_filter(struct req *sr, req_filter_fn fn, void *arg)
{
	sr->filter_fn = fn;
	sr->filter_arg = arg;
}

void
req_add_bytes(struct req *sr, size_t n)
{
	sr->bytes += n;
}

void
req_set_stream(struct req *sr, bool stream)
{
	if (stream == sr->stream || sr->entry.tqe_prev == NULL)
		return;
	sr->stream = stream;
	metrics_add(sr->srv->m_streams, stream ? 1 : -1);
}

size_t
req_output_pending(const struct req *sr)
{
	return sr->gone || sr->conn == NULL ? 0 : evbuffer_get_length(sr->conn->out);
}

void
req_abort_connection(struct req *sr)
{
	struct conn *c = sr->conn;

	if (sr->gone || c == NULL)
		return;
	sr->abort_fn = NULL;
	c->sr = NULL;
	req_finish(sr, sr->replied ? sr->status : 499);
	conn_close(c);
}

/* --- replies --- */

void
req_add_header(struct req *sr, const char *name, const char *value)
{
	size_t nl, vl;

	if (sr->gone || sr->replied)
		return;
	nl = strlen(name);
	vl = strlen(value);
	if (sr->rh_len + nl + vl + 4 > sr->rh_cap) {
		sr->rh_cap = sr->rh_cap * 2 > sr->rh_len + nl + vl + 4 ? sr->rh_cap * 2
								       : sr->rh_len + nl + vl + 256;
		sr->rh = xrealloc(sr->rh, sr->rh_cap);
	}
	memcpy(sr->rh + sr->rh_len, name, nl);
	memcpy(sr->rh + sr->rh_len + nl, ": ", 2);
	memcpy(sr->rh + sr->rh_len + nl + 2, value, vl);
	memcpy(sr->rh + sr->rh_len + nl + 2 + vl, "\r\n", 2);
	sr->rh_len += nl + vl + 4;
	if (nl == 12 && strcasecmp(name, "Content-Type") == 0)
		sr->has_content_type = true;
	else if (nl == 4 && strcasecmp(name, "Date") == 0)
		sr->has_date = true; /* passed on from the backend */
}

void
req_clear_headers(struct req *sr)
{
	if (sr->replied)
		return;
	sr->rh_len = 0;
	sr->has_content_type = false;
	sr->has_date = false;
}

/* "Date: <IMF-fixdate>\r\n", formatted once per second. */
static const char *
server_date(struct server *srv)
{
	time_t now = time(NULL);
	struct tm tm;

	if (now != srv->date_at) {
		gmtime_r(&now, &tm);
		strftime(srv->date, sizeof srv->date, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
		srv->date_at = now;
	}
	return srv->date;
}

/* Queue the status line and headers; decide the body framing. */
static void
req_reply_head(struct req *sr, int status, int64_t content_length)
{
	struct conn *c = sr->conn;
	struct evbuffer *out = c->out;
	bool needs_body = status >= 200 && status != 204 && status != 304;
	const char *reason;
	char line[96];

	if (status < 100 || status > 999)
		status = 500; /* three digits on the status line, whatever the caller says */
	sr->replied = true;
	sr->status = status;
	if (c->srv->draining)
		c->keepalive = false;
	/* Room for the head and a small body in one piece: one send(). */
	evbuffer_expand(out,
	    sr->rh_len + 256 +
		(content_length > 0 && content_length <= SERVER_COPY_MAX ? (size_t)content_length
									 : 0));
	memcpy(line, "HTTP/1.1 000 ", 13);
	if (sr->rq.minor < 1)
		line[7] = '0';
	line[9] = (char)('0' + status / 100);
	line[10] = (char)('0' + status / 10 % 10);
	line[11] = (char)('0' + status % 10);
	evbuffer_add(out, line, 13);
	reason = h1_reason(status);
	evbuffer_add(out, reason, strlen(reason));
	evbuffer_add(out, "\r\n", 2);
	evbuffer_add(out, sr->rh, sr->rh_len);
	if (needs_body && !sr->has_content_type)
		evbuffer_add(out, "Content-Type: application/json\r\n", 32);
	if (!needs_body) {
		sr->body_mode = RB_NONE;
	} else if (content_length >= 0) {
		char *e = line + sizeof line, *d = e;
		uint64_t v = (uint64_t)content_length;

		*--d = '\n';
		*--d = '\r';
		do
			*--d = (char)('0' + v % 10);
		while ((v /= 10) != 0);
		evbuffer_add(out, "Content-Length: ", 16);
		evbuffer_add(out, d, (size_t)(e - d));
		sr->body_mode = RB_LENGTH;
	} else if (sr->rq.minor >= 1) {
		evbuffer_add(out, "Transfer-Encoding: chunked\r\n", 28);
		sr->body_mode = RB_CHUNKED;
	} else {
		sr->body_mode = RB_CLOSE; /* HTTP/1.0: the close ends the body */
		c->keepalive = false;
	}
	if (sr->rq.method == H1_HEAD)
		sr->body_mode = RB_NONE;
	if (!sr->has_date)
		evbuffer_add(out, server_date(c->srv), strlen(c->srv->date));
	if (!c->keepalive)
		evbuffer_add(out, "Connection: close\r\n\r\n", 21);
	else if (sr->rq.minor == 0)
		evbuffer_add(out, "Connection: keep-alive\r\n\r\n", 26);
	else
		evbuffer_add(out, "\r\n", 2);
}

/* The reply is complete in the output: flush it, then finish. */
void
req_reply_done(struct req *sr)
{
	struct conn *c = sr->conn;

	c->state = CONN_FLUSH;
	conn_write(c);
}

void
req_reply(struct req *sr, int status, const char *content_type, const void *body, size_t len)
{
	if (sr->gone || sr->replied)
		return;
	if (content_type != NULL)
		req_add_header(sr, "Content-Type", content_type);
	req_reply_head(sr, status, (int64_t)len);
	if (sr->body_mode != RB_NONE && len > 0)
		evbuffer_add(sr->conn->out, body, len);
	if (sr->watch_fn != NULL && len > 0)
		sr->watch_fn(sr, sr->status, body, len, sr->watch_arg);
	sr->bytes += len;
	req_reply_done(sr);
}

void
req_reply_start(struct req *sr, int status, int64_t content_length)
{
	if (sr->gone || sr->replied)
		return;
	if (sr->filter_fn != NULL && content_length >= 0 && !sr->stream) {
		/* the rewritten length is known once the filter has all of it */
		sr->replied = true;
		sr->status = status;
		sr->head_held = true;
		sr->held = xevbuffer_new();
		return;
	}
	if (sr->filter_fn != NULL)
		content_length = -1; /* a stream's rewritten length is never known */
	req_reply_head(sr, status, content_length);
	conn_flush_soon(sr->conn);
}

/* Run the filter over in (NULL at the end) and send what it gives;
 * false when it refused and the connection was closed. */
static bool
req_reply_filtered(struct req *sr, struct evbuffer *in)
{
	struct evbuffer *out = xevbuffer_new();
	req_filter_fn fn = sr->filter_fn;
	int rc;

	sr->filter_fn = NULL; /* req_reply_chunk below sends as is */
	rc = fn(sr, in, out, sr->filter_arg);
	if (in != NULL)
		evbuffer_drain(in, evbuffer_get_length(in));
	if (rc == 0) {
		if (sr->head_held)
			evbuffer_add_buffer(sr->held, out);
		else
			req_reply_chunk(sr, out);
		sr->filter_fn = fn;
	} else {
		req_abort_connection(sr);
	}
	evbuffer_free(out);
	return rc == 0;
}

void
req_reply_chunk(struct req *sr, struct evbuffer *buf)
{
	size_t n = evbuffer_get_length(buf);
	char line[24];
	int k;

	if (sr->gone || !sr->replied || n == 0 || (sr->body_mode == RB_NONE && !sr->head_held)) {
		evbuffer_drain(buf, n);
		return;
	}
	if (sr->head_held && sr->filter_fn == NULL) {
		req_abort_connection(sr); /* the filter went (shutdown): nothing unfiltered */
		return;
	}
	if (sr->filter_fn != NULL) {
		req_reply_filtered(sr, buf);
		return;
	}
	sr->bytes += n;
	if (sr->watch_fn != NULL)
		req_watch_buf(sr, buf);
	if (sr->body_mode == RB_CHUNKED) {
		k = snprintf(line, sizeof line, "%zx\r\n", n);
		evbuffer_add(sr->conn->out, line, (size_t)k);
		server_buf_add_small(sr->conn->out, buf);
		evbuffer_add(sr->conn->out, "\r\n", 2);
	} else {
		server_buf_add_small(sr->conn->out, buf);
	}
	conn_flush_soon(sr->conn);
}

void
req_reply_end(struct req *sr)
{
	if (sr->gone || !sr->replied || sr->conn->state != CONN_ACTIVE)
		return;
	if (sr->head_held) {
		/* the filter's last words, then the head with their length */
		if (sr->filter_fn == NULL) {
			req_abort_connection(sr); /* the filter went (shutdown) */
			return;
		}
		if (!req_reply_filtered(sr, NULL))
			return;
		sr->head_held = false;
		sr->filter_fn = NULL;
		req_reply_head(sr, sr->status, (int64_t)evbuffer_get_length(sr->held));
		req_reply_chunk(sr, sr->held);
		req_reply_done(sr);
		return;
	}
	if (sr->filter_fn != NULL && sr->body_mode != RB_NONE && !req_reply_filtered(sr, NULL))
		return;
	if (sr->body_mode == RB_CHUNKED)
		evbuffer_add(sr->conn->out, "0\r\n\r\n", 5);
	req_reply_done(sr);
}

void
req_reply_json(struct req *sr, int status, const char *json)
{
	req_add_header(sr, "Cache-Control", "no-store");
	req_reply(sr, status, "application/json", json, strlen(json));
}

void
req_reply_oauth_error(struct req *sr, int status, const char *code, const char *desc)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "error", json_object_new_string(code));
	if (desc != NULL)
		json_object_object_add(o, "error_description", json_object_new_string(desc));
	req_add_header(sr, "Pragma", "no-cache");
	req_reply_json(sr, status,
	    json_object_to_json_string_ext(o,
		JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}
