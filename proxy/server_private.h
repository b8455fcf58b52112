/*
 * The front end's insides, shared by its files and no one else: server.c
 * (listeners, connections, routing, drain), req.c (the handler API of
 * proxy/req.h: a request and its reply) and health.c (the backend probe,
 * /health, /ready, /metrics). Never included outside proxy/.
 */
#ifndef PROXY_SERVER_PRIVATE_H
#define PROXY_SERVER_PRIVATE_H

#include <event2/event_struct.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>

#include "proxy/http1.h"
#include "proxy/server.h"

#define SERVER_PROBE_INTERVAL_S 5
#define SERVER_DIAG_MAX_BODY 4096
#define SERVER_IN_HIGH_WATER (64 * 1024)      /* stop reading a busy connection above */
#define SERVER_OUT_LOW_WATER (64 * 1024)      /* "drained" for backpressure below */
#define SERVER_LINGER_MS 2000                 /* read and discard after an error reply */
#define SERVER_JSONRPC_SCAN_MAX (1024 * 1024) /* parse bodies up to this for an error id */
#define SERVER_DIAG_MAX_CONNS 32              /* diagnostics connections at most */
/* Descriptors kept out of the MCP listener's budget: the diagnostics
 * listener's connections, outbound fetches and DNS, the log, the loop. */
#define SERVER_FD_RESERVE 128
#define SERVER_ACCEPT_BACKOFF_MS 250 /* wait after EMFILE/ENFILE before accepting again */

struct route {
	enum server_listener which;
	char *path;
	size_t path_len;
	bool prefix;
	const char *label;
	req_handler_fn fn;
	void *arg;
	struct req_route_opts opts;
};

#define SERVER_EPISODE_GAP_MS 1000

struct listener {
	struct server *srv;
	enum server_listener which;
	struct evconnlistener *lev;
	size_t max_body;
	int port;
	size_t n_conns;   /* open connections accepted here */
	size_t max_conns; /* accepting pauses at this many */
	bool paused;      /* the listener is disabled */
	/* A pause was logged and counted and is not over: a cap episode ends
	 * when the connections fall to 90 % of the cap (so a full listener
	 * with churn logs once, not per connection), a descriptor episode
	 * with the next accept that works. A pause of the same kind within
	 * SERVER_EPISODE_GAP_MS of the end continues the episode (connections
	 * closing while waiting ones are accepted make the count flap around
	 * the 90 % mark). */
	enum { SERVER_EP_NONE, SERVER_EP_CAP, SERVER_EP_FD } episode, last_episode;
	int64_t episode_end_ms; /* monotonic */
	struct event *resume;   /* the back-off after EMFILE/ENFILE */
};

enum conn_state {
	CONN_IDLE,    /* between requests */
	CONN_HEAD,    /* reading a request head */
	CONN_BODY,    /* reading its body */
	CONN_ACTIVE,  /* a handler has it; the reply may be streaming */
	CONN_FLUSH,   /* the reply ended; waiting for the kernel to take it */
	CONN_CLOSING, /* an error reply is being flushed; then linger */
	CONN_LINGER,  /* write side shut; discarding input for a while */
};

struct conn {
	struct server *srv;
	struct listener *l;
	evutil_socket_t fd;
	struct event rev;   /* persistent EV_READ */
	struct event wev;   /* EV_WRITE, only while output is pending */
	struct event timer; /* header deadline, keep-alive idle, linger */
	struct event defer; /* work moved out of a caller's stack */
	struct evbuffer *in;
	struct evbuffer *out;
	size_t read_size; /* server_sock_read()'s */
	enum conn_state state;
	int refs;
	bool closed;
	bool reading;
	bool writing;
	bool keepalive;
	bool write_error;
	bool flush_soon; /* a deferred write is scheduled */
	bool in_process;
	size_t scan;       /* head search position */
	int64_t body_left; /* Content-Length body still to read */
	size_t body_max;   /* the route's body limit for the request being read */
	bool body_unread;  /* answered from its head: the body will never be read */
	struct h1_chunked chunk;
	struct req *sr; /* the request being read or answered */
	char peer[INET6_ADDRSTRLEN];
	LIST_ENTRY(conn) entry;
};

LIST_HEAD(conn_list, conn);

enum reply_body { RB_NONE, RB_LENGTH, RB_CHUNKED, RB_CLOSE };

struct req {
	struct server *srv;
	struct conn *conn; /* NULL once gone */
	enum server_listener which;
	int refs;
	bool gone;
	bool stream;
	bool logged;
	bool dispatched;
	bool replied; /* the response head is queued */
	bool has_content_type;
	bool has_date;
	enum reply_body body_mode;
	enum req_session_home home;
	char *sse_sid;        /* req_sse_session(), once asked */
	char *sse_stream_sid; /* req_sse_stream_session() */
	int status;
	char id[33];
	const char *route;
	int64_t start_us;
	uint64_t bytes;
	req_abort_fn abort_fn;
	void *abort_arg;
	req_drained_fn drained_fn;
	void *drained_arg;
	req_watch_fn watch_fn;
	void *watch_arg;
	req_filter_fn filter_fn;
	void *filter_arg;
	/* A filtered reply of a known length (not a stream): its head waits
	 * in head_held until the filter has the whole body (in held), then
	 * goes out with the new Content-Length, body and head in one piece. */
	bool head_held;
	struct evbuffer *held;
	struct h1_request rq;
	const struct route *matched; /* its route (NULL: 404), chosen from the head */
	struct evbuffer *body;
	char *rh; /* response header lines, "Name: value\r\n" */
	size_t rh_len;
	size_t rh_cap;
	char peer[INET6_ADDRSTRLEN];
	TAILQ_ENTRY(req) entry;
};

TAILQ_HEAD(req_list, req);

struct server {
	struct event_base *base;
	struct evdns_base *dns;
	const struct config *cfg;
	struct listener listeners[SERVER_N_LISTENERS];
	struct route *routes;
	size_t n_routes;
	struct route fallback;
	struct req_list inflight;
	size_t n_inflight;
	struct conn_list conns;
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
	struct {
		const char *name;
		server_health_fn fn;
		void *arg;
	} health_parts[SERVER_MAX_HEALTH_PARTS];
	size_t n_health_parts;

	/* "host:port" (lower case, port always given) that absolute-form
	 * request targets may name: ours by configuration or by binding */
	char **authorities;
	size_t n_authorities;

	char id_prefix[9];
	uint64_t id_counter;
	time_t date_at;
	char date[40]; /* "Date: ...\r\n" for date_at */

	struct metric *m_requests;
	struct metric *m_latency;
	struct metric *m_streams;
	struct metric *m_log_dropped;
	struct metric *m_accept_paused;
	struct metric *m_accept_paused_now;

	struct peerauth *peerauth; /* server.peerListen set: checks peer requests */
	struct metric *m_peer_requests;
};

/* server.c */
/* server.c: a connection accepted on l. server_accept.c: l lost one (it
 * may accept again). */
void conn_new(struct listener *l, evutil_socket_t fd, const struct sockaddr *sa);
void server_conn_gone(struct listener *l);
void conn_close(struct conn *c);
void conn_write(struct conn *c);
void conn_flush_soon(struct conn *c);
void conn_complete(struct conn *c);
void conn_error(struct conn *c, int status, const char *code, const char *desc);
/* req.c */
void req_release(struct req *sr);
void req_finish(struct req *sr, int status);
void req_make_id(struct req *sr);
void req_reply_done(struct req *sr);
/* health.c */
void server_handle_health(struct req *sr, void *arg);
void server_handle_ready(struct req *sr, void *arg);
void server_handle_metrics(struct req *sr, void *arg);
void server_probe_start(struct server *srv);

#endif
