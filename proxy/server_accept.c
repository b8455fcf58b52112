/*
 * The HTTP front's listeners (see server.h): binding the two listeners,
 * the descriptor budget (the soft fd limit raised to the hard one, each
 * listener's connection cap fitted below it with spare descriptors kept for
 * the diagnostics listener and outbound fetches) and accepting — at the
 * cap, or when accept() says EMFILE/ENFILE, a listener stops accepting
 * (back off, resume) while the connections it has are served, with one
 * JSON line per episode and a metric. The connections themselves are
 * server.c's.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/xalloc.h"
#include "common/xevent.h"
#include "config/config.h"
#include "proxy/log.h"
#include "proxy/metrics.h"
#include "proxy/server.h"
#include "proxy/server_private.h"

/* --- our authorities (absolute-form targets must name one) --- */

/* Remember host:port (host lower-cased; IPv6 in brackets) as ours. */
static void
server_add_authority(struct server *srv, const char *host, int port)
{
	bool v6 = strchr(host, ':') != NULL && host[0] != '[';
	size_t n = strlen(host) + 16;
	char *a = xmalloc(n);

	snprintf(a, n, "%s%s%s:%d", v6 ? "[" : "", host, v6 ? "]" : "", port);
	for (char *p = a; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	srv->authorities = xreallocarray(srv->authorities, srv->n_authorities + 1,
	    sizeof *srv->authorities);
	srv->authorities[srv->n_authorities++] = a;
}

/* The authority of a configured URL, when it is one. */
static void
server_add_url_authority(struct server *srv, const char *url)
{
	struct evhttp_uri *u = url != NULL ? evhttp_uri_parse(url) : NULL;
	const char *scheme, *host;
	int port;

	if (u == NULL)
		return;
	scheme = evhttp_uri_get_scheme(u);
	host = evhttp_uri_get_host(u);
	port = evhttp_uri_get_port(u);
	if (port < 0)
		port = scheme != NULL && strcasecmp(scheme, "https") == 0 ? 443 : 80;
	if (host != NULL && *host != '\0')
		server_add_authority(srv, host, port);
	evhttp_uri_free(u);
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

/* --- accepting: the connection cap and the descriptor limit --- */

const char *
server_listener_name(enum server_listener which)
{
	return which == SERVER_MCP ? "mcp" : which == SERVER_PEER ? "peer" : "diagnostics";
}

/* The episode of pauses is over (see struct listener). */
static void
server_accept_episode_end(struct listener *l)
{
	l->last_episode = l->episode;
	l->episode_end_ms = clock_mono_ms();
	l->episode = SERVER_EP_NONE;
}

/* Accept again (after the back-off, or below the cap). After EMFILE the
 * episode ends with the next accept that works; a failure pauses again,
 * silently. */
static void
server_accept_resume(struct listener *l)
{
	if (!l->paused || l->lev == NULL)
		return;
	l->paused = false;
	evconnlistener_enable(l->lev);
	metrics_set(l->srv->m_accept_paused_now, 0, server_listener_name(l->which));
}

static void
server_on_resume(evutil_socket_t fd, short what, void *arg)
{
	server_accept_resume(arg);
}

/*
 * Stop accepting on l: at the cap until a connection closes (backoff_ms 0),
 * or for backoff_ms after the kernel refused a descriptor. Connections
 * already open are served as before; new clients wait in the listen
 * backlog. One log line and one count per episode, however many accepts
 * fail within it (a listener left enabled at EMFILE would spin the loop).
 */
static void
server_accept_pause(struct listener *l, const char *reason, int64_t backoff_ms)
{
	struct server *srv = l->srv;

	if (l->lev == NULL)
		return;
	if (!l->paused) {
		evconnlistener_disable(l->lev);
		l->paused = true;
		metrics_set(srv->m_accept_paused_now, 1, server_listener_name(l->which));
	}
	if (l->episode == SERVER_EP_NONE &&
	    l->last_episode == (backoff_ms > 0 ? SERVER_EP_FD : SERVER_EP_CAP) &&
	    clock_mono_ms() - l->episode_end_ms < SERVER_EPISODE_GAP_MS)
		l->episode = l->last_episode; /* the same episode, flapping */
	if (l->episode == SERVER_EP_NONE) {
		l->episode = backoff_ms > 0 ? SERVER_EP_FD : SERVER_EP_CAP;
		metrics_add(srv->m_accept_paused, 1, server_listener_name(l->which), reason);
		log_warn("not accepting connections for a while",
		    LOG_S("listener", server_listener_name(l->which)), LOG_S("reason", reason),
		    LOG_I("connections", l->n_conns), LOG_I("max_connections", l->max_conns));
	}
	if (backoff_ms > 0) {
		struct timeval tv = { (time_t)(backoff_ms / 1000),
			(suseconds_t)((backoff_ms % 1000) * 1000) };

		if (l->resume == NULL)
			l->resume = xevtimer_new(srv->base, server_on_resume, l);
		evtimer_add(l->resume, &tv);
	}
}

/* A connection of l closed: below the cap, accept again (a descriptor is
 * free now, whatever the pause was for). */
void
server_conn_gone(struct listener *l)
{
	size_t low = l->max_conns - (l->max_conns / 10 > 1 ? l->max_conns / 10 : 1);

	l->n_conns--;
	if (l->paused && l->n_conns < l->max_conns)
		server_accept_resume(l);
	if (l->episode == SERVER_EP_CAP && l->n_conns <= low)
		server_accept_episode_end(l);
}

/* evconnlistener's error callback: accept(2) failed for another reason
 * than "nothing to accept". */
static void
server_on_accept_error(struct evconnlistener *lev, void *arg)
{
	struct listener *l = arg;
	int err = EVUTIL_SOCKET_ERROR();

	if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
		server_accept_pause(l,
		    err == ENFILE       ? "system_fd_limit"
			: err == EMFILE ? "fd_limit"
					: "no_memory",
		    SERVER_ACCEPT_BACKOFF_MS);
		return;
	}
	/* Anything else (a connection reset before we took it…) concerns
	 * that one connection only. */
	log_debug("accept failed", LOG_S("listener", server_listener_name(l->which)),
	    LOG_S("error", strerror(err)));
}

static void
server_on_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa, int salen,
    void *arg)
{
	struct listener *l = arg;
	struct server *srv = l->srv;

	if (srv->draining) {
		evutil_closesocket(fd);
		return;
	}
	/* An accept worked: an episode of running out of descriptors is over. */
	if (l->episode == SERVER_EP_FD)
		server_accept_episode_end(l);
	conn_new(l, fd, sa);
	if (++l->n_conns >= l->max_conns)
		server_accept_pause(l, "max_connections", 0);
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
	const char *name = server_listener_name(which);
	char addr[INET6_ADDRSTRLEN + 8];

	if (server_parse_listen(spec, &ss, &sslen) != 0) {
		snprintf(err, errlen, "cannot parse listen address \"%s\"", spec);
		return -1;
	}
	l->srv = srv;
	l->which = which;
	l->max_body = which != SERVER_DIAG ? srv->cfg->server.max_body_size : SERVER_DIAG_MAX_BODY;
	fd = socket(ss.ss_family, SOCK_STREAM, 0);
	if (fd < 0 || evutil_make_listen_socket_reuseable(fd) < 0 ||
	    evutil_make_socket_nonblocking(fd) < 0 || evutil_make_socket_closeonexec(fd) < 0 ||
	    bind(fd, (struct sockaddr *)&ss, (socklen_t)sslen) != 0 || listen(fd, 1024) != 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", spec, strerror(errno));
		if (fd >= 0)
			evutil_closesocket(fd);
		return -1;
	}
	/* backlog 0: the socket listens already. */
	l->lev = evconnlistener_new(srv->base, server_on_accept, l,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
	if (l->lev != NULL)
		evconnlistener_set_error_cb(l->lev, server_on_accept_error);
	if (l->lev == NULL) {
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
	{
		char ip[INET6_ADDRSTRLEN];

		if (ss.ss_family == AF_INET6)
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, ip,
			    sizeof ip);
		else
			inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, ip, sizeof ip);
		server_add_authority(srv, ip, l->port);
	}
	log_info("listening", LOG_S("listener", name), LOG_S("addr", addr), LOG_I("port", l->port));
	return 0;
}

/*
 * Raise the descriptor limit to its hard limit and fit the listeners'
 * connection caps under it: the diagnostics listener and the fetcher keep
 * SERVER_FD_RESERVE; each MCP connection may hold a backend connection
 * too (or one to the replica that owns its session). With a peer listener
 * the rest is shared: each peer connection holds a backend connection as
 * well, so the MCP and peer listeners get a quarter each. So a listener
 * reaches its cap, and pauses, before the process runs out of
 * descriptors, and /health still answers.
 */
static void
server_fd_budget(struct server *srv)
{
	struct rlimit rl;
	uint64_t fds = 1024, cap = srv->cfg->server.max_connections, fit;
	uint64_t shares = srv->cfg->server.peer_listen != NULL ? 4 : 2;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		if (rl.rlim_cur < rl.rlim_max) {
			rlim_t want = rl.rlim_max == RLIM_INFINITY ? 1048576 : rl.rlim_max;

			if (want > rl.rlim_cur) {
				struct rlimit up = { want, rl.rlim_max };

				if (setrlimit(RLIMIT_NOFILE, &up) == 0)
					rl.rlim_cur = want;
			}
		}
		fds = rl.rlim_cur == RLIM_INFINITY ? 1048576 : (uint64_t)rl.rlim_cur;
	}
	fit = fds > SERVER_FD_RESERVE + shares ? (fds - SERVER_FD_RESERVE) / shares : 1;
	if (cap > fit) {
		log_warn("server.maxConnections lowered to fit the file descriptor limit",
		    LOG_I("configured", cap), LOG_I("max_connections", fit),
		    LOG_I("fd_limit", fds));
		cap = fit;
	}
	srv->listeners[SERVER_MCP].max_conns = (size_t)cap;
	srv->listeners[SERVER_DIAG].max_conns = SERVER_DIAG_MAX_CONNS;
	/* Each forwarded session holds a client connection on the replica that
	 * forwards it: the peer listener needs no more than the MCP one. */
	srv->listeners[SERVER_PEER].max_conns = (size_t)cap;
	log_info("connection limits", LOG_I("fd_limit", fds), LOG_I("max_connections", cap),
	    LOG_I("peer_max_connections", shares == 4 ? cap : 0),
	    LOG_I("diagnostics_max_connections", SERVER_DIAG_MAX_CONNS));
}

int
server_listen(struct server *srv, char *err, size_t errlen)
{
	server_fd_budget(srv);
	server_add_url_authority(srv, srv->cfg->server.resource_url);
	server_add_url_authority(srv, srv->cfg->eas.issuer);
	server_add_url_authority(srv, srv->cfg->eas.authorization_endpoint_base_url);
	if (server_bind(srv, SERVER_MCP, srv->cfg->server.listen, err, errlen) != 0)
		return -1;
	if (server_bind(srv, SERVER_DIAG, srv->cfg->server.diagnostics_listen, err, errlen) != 0)
		return -1;
	if (srv->cfg->server.peer_listen != NULL &&
	    server_bind(srv, SERVER_PEER, srv->cfg->server.peer_listen, err, errlen) != 0)
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
