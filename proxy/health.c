/*
 * Health of the proxy and of its neighbour: a non-blocking probe of the
 * backend every few seconds, GET /health (200 while the proxy works, the
 * backend reported in the body), /ready (503 while the backend is
 * unreachable or the proxy drains) and /metrics (Prometheus text).
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

#include "proxy/server_private.h"

/* --- health, readiness, metrics --- */

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
			server_probe_done(srv, false,
			    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	}
}

static void
server_probe_tick(evutil_socket_t fd, short what, void *arg)
{
	server_probe_start(arg);
}

/* One non-blocking TCP connect to the backend; the result feeds /health. */
void
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
		srv->probe_timer = xevtimer_new(srv->base, server_probe_tick, srv);
	tv.tv_sec = SERVER_PROBE_INTERVAL_S;
	tv.tv_usec = 0;
	evtimer_add(srv->probe_timer, &tv);
}

void
server_add_health(struct server *srv, const char *name, server_health_fn fn, void *arg)
{
	if (srv->n_health_parts == SERVER_MAX_HEALTH_PARTS)
		abort(); /* a wiring error, caught by any test */
	srv->health_parts[srv->n_health_parts].name = name;
	srv->health_parts[srv->n_health_parts].fn = fn;
	srv->health_parts[srv->n_health_parts].arg = arg;
	srv->n_health_parts++;
}

bool
server_backend_reachable(const struct server *srv)
{
	return srv->backend_ok;
}

void
server_handle_health(struct req *sr, void *arg)
{
	struct server *srv = sr->srv;
	bool ready = arg != NULL;
	json_object *o = json_object_new_object(), *b = json_object_new_object(), *part;
	bool parts_ok = true;
	const char *status;
	int code = 200;

	for (size_t i = 0; i < srv->n_health_parts; i++) {
		part = json_object_new_object();
		if (!srv->health_parts[i].fn(part, srv->health_parts[i].arg))
			parts_ok = false;
		json_object_object_add(o, srv->health_parts[i].name, part);
	}
	status = srv->draining ? "draining" : srv->backend_ok && parts_ok ? "ok" : "degraded";
	json_object_object_add(o, "status", json_object_new_string(status));
	json_object_object_add(b, "url", json_object_new_string(srv->cfg->backend.url));
	json_object_object_add(b, "reachable", json_object_new_boolean(srv->backend_ok));
	if (srv->backend_checked)
		json_object_object_add(b, "checkedAt",
		    json_object_new_int64(srv->backend_checked_at));
	if (!srv->backend_ok)
		json_object_object_add(b, "error", json_object_new_string(srv->backend_error));
	json_object_object_add(o, "backend", b);
	json_object_object_add(o, "version", json_object_new_string(MCP_VERSION));
	/* Liveness stays 200 while the proxy works; readiness needs the backend. */
	if (ready && (srv->draining || !srv->backend_ok))
		code = 503;
	req_reply_json(sr, code,
	    json_object_to_json_string_ext(o,
		JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

void
server_handle_metrics(struct req *sr, void *arg)
{
	struct evbuffer *buf;

	if (sr->gone)
		return;
	buf = xevbuffer_new();
	metrics_set(sr->srv->m_log_dropped, (double)log_dropped());
	metrics_render(buf);
	req_add_header(sr, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	req_reply_start(sr, 200, (int64_t)evbuffer_get_length(buf));
	req_reply_chunk(sr, buf);
	req_reply_end(sr);
	evbuffer_free(buf);
}
