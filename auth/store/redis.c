/*
 * The Redis connection (see redis.h). States: down (waiting for the next
 * attempt), connecting (resolving, connecting, then the handshake: AUTH,
 * SELECT, SCRIPT LOAD of every script, PING) and up. Commands issued while
 * connecting wait in `queued`; commands sent wait for their replies in
 * `pending`, in order; commands that cannot be sent fail on the next loop
 * turn through `failed`.
 */
#include "auth/store/redis.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include "common/random.h"
#include "common/xalloc.h"
#include "common/xevent.h"
#include "proxy/log.h"
#include "proxy/metrics.h"

#define REDIS_BACKOFF_MIN_MS 100
#define REDIS_BACKOFF_MAX_MS 5000

enum redis_state { R_DOWN, R_CONNECTING, R_UP };

struct redis_cmd {
	struct redis *r;
	redis_reply_cb cb; /* NULL: cancelled */
	void *arg;
	char *wire; /* the formatted command */
	int len;
	char *eval_wire; /* scripts: EVAL with the whole script, for NOSCRIPT */
	int eval_len;
	bool internal; /* part of the handshake */
	TAILQ_ENTRY(redis_cmd) entry;
};
TAILQ_HEAD(redis_cmds, redis_cmd);

struct redis {
	struct event_base *base;
	struct evdns_base *dns;
	bool own_dns;
	struct redis_params p;
	char *host, *username, *password, *log_name;
	enum redis_state state;
	struct bufferevent *bev;
	redisReader *reader;
	struct event *retry;   /* the next connection attempt */
	struct event *dial;    /* dial timeout */
	struct event *fail_ev; /* deliver `failed` */
	int64_t backoff_ms;
	struct redis_cmds queued, pending, failed;
	size_t n_cmds; /* queued + pending */
	char *scripts[REDIS_MAX_SCRIPTS];
	char sha[REDIS_MAX_SCRIPTS][41];
	int n_scripts;
	char error[160];
	struct metric *m_errors, *m_connects;

	/* subscriber mode */
	char *channel;
	redis_message_cb on_message;
	void *msg_arg;

	/* Sentinel */
	char *master_name;
	char **sentinels;
	size_t n_sentinels, sentinel_i;
	bool have_master;    /* host/port are the master's, as a sentinel said */
	struct redis *query; /* the sentinel being asked */
	struct redis *watch; /* subscribed to its +switch-master */
};

static void redis_connect(struct redis *r);

static void
redis_cmd_free(struct redis_cmd *c)
{
	if (c->wire != NULL)
		redisFreeCommand(c->wire);
	if (c->eval_wire != NULL)
		redisFreeCommand(c->eval_wire);
	free(c);
}

static void
redis_tv(struct timeval *tv, int64_t ms)
{
	tv->tv_sec = (time_t)(ms / 1000);
	tv->tv_usec = (suseconds_t)(ms % 1000) * 1000;
}

/* The read timeout applies while a reply is awaited, not to an idle
 * connection. */
static void
redis_arm_timeouts(struct redis *r)
{
	struct timeval rd, wr;

	if (r->bev == NULL)
		return;
	redis_tv(&rd, r->p.read_timeout_ms);
	redis_tv(&wr, r->p.write_timeout_ms);
	bufferevent_set_timeouts(r->bev,
	    TAILQ_EMPTY(&r->pending) || r->p.read_timeout_ms <= 0 ? NULL : &rd,
	    r->p.write_timeout_ms > 0 ? &wr : NULL);
}

static void
redis_send(struct redis *r, struct redis_cmd *c, bool as_eval)
{
	if (as_eval)
		bufferevent_write(r->bev, c->eval_wire, (size_t)c->eval_len);
	else
		bufferevent_write(r->bev, c->wire, (size_t)c->len);
	TAILQ_INSERT_TAIL(&r->pending, c, entry);
	redis_arm_timeouts(r);
}

/* Answer every command of list with error (they are off the list first,
 * so callbacks may issue new commands). */
static void
redis_fail_list(struct redis *r, struct redis_cmds *list, const char *error)
{
	struct redis_cmds done = TAILQ_HEAD_INITIALIZER(done);
	struct redis_cmd *c;

	while ((c = TAILQ_FIRST(list)) != NULL) {
		TAILQ_REMOVE(list, c, entry);
		if (list != &r->failed)
			r->n_cmds--;
		TAILQ_INSERT_TAIL(&done, c, entry);
	}
	while ((c = TAILQ_FIRST(&done)) != NULL) {
		TAILQ_REMOVE(&done, c, entry);
		if (c->cb != NULL && !c->internal)
			c->cb(NULL, error, c->arg);
		redis_cmd_free(c);
	}
}

static void
redis_failed_cb(evutil_socket_t fd, short what, void *arg)
{
	struct redis *r = arg;

	(void)fd;
	(void)what;
	redis_fail_list(r, &r->failed, "the store is unavailable");
}

/* The connection is gone: fail what it carried, try again later. */
static void
redis_drop(struct redis *r, const char *why)
{
	struct timeval tv;
	unsigned char jitter;
	char msg[200];
	int64_t delay;

	if (r->state == R_UP || r->error[0] == '\0' || strcmp(r->error, why) != 0)
		log_warn("store connection lost", LOG_S("store", r->log_name),
		    LOG_S("host", r->host), LOG_I("port", r->p.port), LOG_S("error", why));
	metrics_add(r->m_errors, 1, "", "connection");
	snprintf(r->error, sizeof r->error, "%s", why);
	r->state = R_DOWN;
	if (r->bev != NULL) {
		bufferevent_free(r->bev);
		r->bev = NULL;
	}
	if (r->reader != NULL) {
		redisReaderFree(r->reader);
		r->reader = NULL;
	}
	evtimer_del(r->dial);
	r->have_master = false; /* Sentinel: ask again where it is */
	snprintf(msg, sizeof msg, "the store is unavailable (%s)", why);
	redis_fail_list(r, &r->pending, msg);
	redis_fail_list(r, &r->queued, msg);
	random_bytes(&jitter, 1);
	delay = r->backoff_ms / 2 + r->backoff_ms * jitter / 512; /* 50–100 % */
	r->backoff_ms = r->backoff_ms * 2 > REDIS_BACKOFF_MAX_MS ? REDIS_BACKOFF_MAX_MS
								 : r->backoff_ms * 2;
	redis_tv(&tv, delay);
	evtimer_add(r->retry, &tv);
}

/* SUBSCRIBE goes out with no reply awaited: what comes back is pushes. */
static void
redis_write_subscribe(struct redis *r)
{
	const char *argv[2] = { "SUBSCRIBE", r->channel };
	char *wire;
	int len = redisFormatCommandArgv(&wire, 2, argv, NULL);

	if (len < 0)
		abort();
	bufferevent_write(r->bev, wire, (size_t)len);
	redisFreeCommand(wire);
}

static void
redis_up_now(struct redis *r)
{
	struct redis_cmd *c;

	r->state = R_UP;
	r->backoff_ms = REDIS_BACKOFF_MIN_MS;
	evtimer_del(r->dial);
	if (r->error[0] != '\0')
		log_info("store connected", LOG_S("store", r->log_name), LOG_S("host", r->host),
		    LOG_I("port", r->p.port));
	r->error[0] = '\0';
	while ((c = TAILQ_FIRST(&r->queued)) != NULL) {
		TAILQ_REMOVE(&r->queued, c, entry);
		redis_send(r, c, false);
	}
	if (r->channel != NULL)
		redis_write_subscribe(r);
}

/* A handshake step answered. */
static void
redis_handshake_reply(const redisReply *reply, const char *error, void *arg)
{
	struct redis *r = arg;

	(void)error;
	if (reply == NULL)
		return; /* the connection dropped: redis_drop said why */
	if (reply->type == REDIS_REPLY_ERROR) {
		/* The text may say which step failed; it never holds the password. */
		char why[160];

		snprintf(why, sizeof why, "handshake refused: %.*s",
		    (int)(reply->len < 100 ? reply->len : 100), reply->str);
		metrics_add(r->m_errors, 1, "", "handshake");
		redis_drop(r, why);
	}
}

/* Sentinel: the server found must be the master (not a demoted one). */
static void
redis_role_reply(const redisReply *reply, const char *error, void *arg)
{
	struct redis *r = arg;

	(void)error;
	if (reply == NULL)
		return;
	if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 ||
	    reply->element[0]->type != REDIS_REPLY_STRING ||
	    strcmp(reply->element[0]->str, "master") != 0) {
		metrics_add(r->m_errors, 1, "", "not_master");
		redis_drop(r, "the server the sentinel named is not a master");
	}
}

static void
redis_handshake_done(const redisReply *reply, const char *error, void *arg)
{
	struct redis *r = arg;

	(void)error;
	if (reply != NULL && reply->type != REDIS_REPLY_ERROR && r->state == R_CONNECTING)
		redis_up_now(r);
}

static struct redis_cmd *
redis_cmd_new(struct redis *r, int argc, const char **argv, const size_t *lens, redis_reply_cb cb,
    void *arg)
{
	struct redis_cmd *c = xcalloc(1, sizeof *c);

	c->r = r;
	c->cb = cb;
	c->arg = arg;
	c->len = redisFormatCommandArgv(&c->wire, argc, argv, lens);
	if (c->len < 0)
		abort(); /* out of memory */
	return c;
}

static void
redis_internal(struct redis *r, int argc, const char **argv, redis_reply_cb cb)
{
	struct redis_cmd *c = redis_cmd_new(r, argc, argv, NULL, cb, r);

	c->internal = true;
	r->n_cmds++;
	redis_send(r, c, false);
}

static void
redis_handshake(struct redis *r)
{
	const char *argv[3];

	if (r->password != NULL) {
		argv[0] = "AUTH";
		if (r->username != NULL) {
			argv[1] = r->username;
			argv[2] = r->password;
			redis_internal(r, 3, argv, redis_handshake_reply);
		} else {
			argv[1] = r->password;
			redis_internal(r, 2, argv, redis_handshake_reply);
		}
	}
	if (r->p.db != 0) {
		char db[16];

		snprintf(db, sizeof db, "%d", r->p.db);
		argv[0] = "SELECT";
		argv[1] = db;
		redis_internal(r, 2, argv, redis_handshake_reply);
	}
	for (int i = 0; i < r->n_scripts; i++) {
		argv[0] = "SCRIPT";
		argv[1] = "LOAD";
		argv[2] = r->scripts[i];
		redis_internal(r, 3, argv, redis_handshake_reply);
	}
	if (r->master_name != NULL) {
		argv[0] = "ROLE";
		redis_internal(r, 1, argv, redis_role_reply);
	}
	argv[0] = "PING";
	redis_internal(r, 1, argv, redis_handshake_done);
}

/* One reply for the oldest command in flight. */
static void
redis_deliver(struct redis *r, redisReply *reply)
{
	struct redis_cmd *c = TAILQ_FIRST(&r->pending);

	TAILQ_REMOVE(&r->pending, c, entry);
	if (reply->type == REDIS_REPLY_ERROR && c->eval_wire != NULL &&
	    strncmp(reply->str, "NOSCRIPT", 8) == 0) {
		/* The script cache was flushed: send the script itself, once. */
		redis_send(r, c, true);
		redisFreeCommand(c->eval_wire);
		c->eval_wire = NULL;
		return;
	}
	r->n_cmds--;
	redis_arm_timeouts(r);
	if (c->cb != NULL)
		c->cb(reply, NULL, c->arg);
	redis_cmd_free(c);
}

/* A subscriber's push: ["message", channel, payload]; the subscribe
 * confirmation is ignored. */
static void
redis_push(struct redis *r, const redisReply *m)
{
	if (m->type == REDIS_REPLY_ARRAY && m->elements == 3 &&
	    m->element[0]->type == REDIS_REPLY_STRING &&
	    strcmp(m->element[0]->str, "message") == 0 &&
	    m->element[1]->type == REDIS_REPLY_STRING && m->element[2]->type == REDIS_REPLY_STRING)
		r->on_message(m->element[1]->str, m->element[2]->str, m->element[2]->len,
		    r->msg_arg);
}

static void
redis_read_cb(struct bufferevent *bev, void *arg)
{
	struct redis *r = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer_iovec v[8];
	int n = evbuffer_peek(in, -1, NULL, v, 8);
	size_t total = 0;
	void *reply;

	for (int i = 0; i < n && i < 8; i++) {
		if (redisReaderFeed(r->reader, v[i].iov_base, v[i].iov_len) != REDIS_OK) {
			redis_drop(r, "protocol error");
			return;
		}
		total += v[i].iov_len;
	}
	evbuffer_drain(in, total);
	for (;;) {
		if (redisReaderGetReply(r->reader, &reply) != REDIS_OK) {
			redis_drop(r, "protocol error");
			return;
		}
		if (reply == NULL)
			break;
		if (TAILQ_EMPTY(&r->pending) && r->channel != NULL) {
			redis_push(r, reply);
			freeReplyObject(reply);
			continue;
		}
		if (TAILQ_EMPTY(&r->pending)) {
			freeReplyObject(reply);
			redis_drop(r, "a reply nobody asked for");
			return;
		}
		redis_deliver(r, reply);
		freeReplyObject(reply);
		if (r->state == R_DOWN)
			return; /* a handshake step failed */
	}
	if (evbuffer_get_length(in) > 0)
		redis_read_cb(bev, arg); /* more than 8 chunks were waiting */
}

static void
redis_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct redis *r = arg;
	unsigned long err;

	if (what & BEV_EVENT_CONNECTED) {
		redis_handshake(r);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT)
		redis_drop(r, (what & BEV_EVENT_READING) ? "read timeout" : "write timeout");
	else if (what & BEV_EVENT_EOF)
		redis_drop(r, "the server closed the connection");
	else if (bufferevent_socket_get_dns_error(bev) != 0)
		redis_drop(r, evutil_gai_strerror(bufferevent_socket_get_dns_error(bev)));
	else if (r->p.tls != NULL && (err = bufferevent_get_openssl_error(bev)) != 0 &&
	    ERR_GET_LIB(err) != 0) {
		char why[160] = "TLS: ";

		ERR_error_string_n(err, why + 5, sizeof why - 5);
		redis_drop(r, why);
	} else
		redis_drop(r, "connection failed");
}

static void
redis_dial_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	redis_drop(arg, "dial timeout");
}

static void
redis_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	redis_connect(arg);
}

/* What the server's certificate must name: an address (IP SAN), or a
 * host name (DNS SAN, and SNI). */
static void
redis_tls_name(SSL *ssl, const char *host)
{
	unsigned char addr[16];

	if (evutil_inet_pton(AF_INET, host, addr) == 1 ||
	    evutil_inet_pton(AF_INET6, host, addr) == 1) {
		X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host);
	} else {
		SSL_set_tlsext_host_name(ssl, host);
		SSL_set1_host(ssl, host);
	}
}

static void redis_connect_direct(struct redis *r);
static struct redis *redis_sentinel_conn(struct redis *r, const char *log_name);

static void
redis_free_later(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	redis_free(arg);
}

/* "<name> <old ip> <old port> <new ip> <new port>" from the watched
 * sentinel: the master moved; reconnect (asking the sentinels again). */
static void
redis_switch_master(const char *channel, const char *payload, size_t len, void *arg)
{
	struct redis *r = arg;
	size_t n = strlen(r->master_name);

	char old_ip[64], new_ip[64];
	int old_port, new_port;

	(void)channel;
	if (len <= n || strncmp(payload, r->master_name, n) != 0 || payload[n] != ' ' ||
	    sscanf(payload + n + 1, "%63s %d %63s %d", old_ip, &old_port, new_ip, &new_port) != 4)
		return;
	/* Already there (this connection asked after the promotion and the
	 * message came later): nothing moved for us. */
	if (r->state != R_DOWN && r->have_master && strcmp(r->host, new_ip) == 0 &&
	    r->p.port == new_port)
		return;
	log_warn("store failover: the sentinels promoted another master",
	    LOG_S("store", r->log_name), LOG_S("master", r->master_name));
	/* The new master is known now: go there at once, not after the
	 * back-off the dead master's failures built up. */
	r->backoff_ms = REDIS_BACKOFF_MIN_MS;
	if (r->state != R_DOWN) {
		redis_drop(r, "failover: the master moved");
	} else {
		struct timeval now = { 0, 0 };

		evtimer_add(r->retry, &now);
	}
}

static void
redis_sentinel_answer(const redisReply *reply, const char *error, void *arg)
{
	struct redis *r = arg;
	struct timeval now = { 0, 0 };
	char why[200];

	if (r->state != R_CONNECTING)
		return;
	if (reply != NULL && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
	    reply->element[0]->type == REDIS_REPLY_STRING &&
	    reply->element[1]->type == REDIS_REPLY_STRING && atoi(reply->element[1]->str) > 0) {
		free(r->host);
		r->host = xstrdup(reply->element[0]->str);
		r->p.port = atoi(reply->element[1]->str);
		r->have_master = true;
		if (r->watch == NULL) {
			r->watch = redis_sentinel_conn(r, "sentinel-watch");
			redis_subscribe(r->watch, "+switch-master", redis_switch_master, r);
		}
		redis_connect_direct(r);
		return;
	}
	/* This sentinel cannot say: the next one is asked on the next attempt
	 * (the query connection is freed outside its own callback). */
	event_base_once(r->base, -1, EV_TIMEOUT, redis_free_later, r->query, &now);
	r->query = NULL;
	if (r->watch != NULL) {
		event_base_once(r->base, -1, EV_TIMEOUT, redis_free_later, r->watch, &now);
		r->watch = NULL;
	}
	r->sentinel_i = (r->sentinel_i + 1) % r->n_sentinels;
	snprintf(why, sizeof why, "sentinel: no address for master %s (%s)", r->master_name,
	    reply == NULL                        ? (error != NULL ? error : "no answer")
		: reply->type == REDIS_REPLY_NIL ? "unknown master"
						 : "unexpected answer");
	redis_drop(r, why);
}

static void
redis_connect(struct redis *r)
{
	const char *argv[3] = { "SENTINEL", "get-master-addr-by-name", r->master_name };
	struct timeval tv;

	if (r->master_name == NULL || r->have_master) {
		redis_connect_direct(r);
		return;
	}
	r->state = R_CONNECTING;
	if (r->p.dial_timeout_ms > 0) {
		redis_tv(&tv, r->p.dial_timeout_ms);
		evtimer_add(r->dial, &tv);
	}
	if (r->query == NULL)
		r->query = redis_sentinel_conn(r, "sentinel");
	redis_command(r->query, 3, argv, NULL, redis_sentinel_answer, r);
}

static void
redis_connect_direct(struct redis *r)
{
	struct timeval tv;
	SSL *ssl;

	metrics_add(r->m_connects, 1);
	r->state = R_CONNECTING;
	r->reader = redisReaderCreate();
	if (r->reader == NULL)
		abort();
	if (r->p.tls != NULL) {
		if ((ssl = SSL_new(r->p.tls)) == NULL)
			abort();
		redis_tls_name(ssl, r->host);
		r->bev = bufferevent_openssl_socket_new(r->base, -1, ssl,
		    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	} else {
		r->bev = bufferevent_socket_new(r->base, -1, BEV_OPT_CLOSE_ON_FREE);
	}
	if (r->bev == NULL)
		abort();
	bufferevent_setcb(r->bev, redis_read_cb, NULL, redis_event_cb, r);
	bufferevent_enable(r->bev, EV_READ | EV_WRITE);
	if (r->p.dial_timeout_ms > 0) {
		redis_tv(&tv, r->p.dial_timeout_ms);
		evtimer_add(r->dial, &tv);
	}
	/* Never a blocking resolve: an evdns base is always given. */
	if (bufferevent_socket_connect_hostname(r->bev, r->dns, AF_UNSPEC, r->host, r->p.port) != 0)
		redis_drop(r, "connection failed");
}

struct redis *
redis_new(struct event_base *base, struct evdns_base *dns, const struct redis_params *p)
{
	struct redis *r = xcalloc(1, sizeof *r);

	r->base = base;
	r->p = *p;
	r->host = xstrdup(p->host);
	r->username = p->username != NULL ? xstrdup(p->username) : NULL;
	r->password = p->password != NULL ? xstrdup(p->password) : NULL;
	r->log_name = xstrdup(p->log_name != NULL ? p->log_name : "redis");
	r->p.host = r->host;
	r->p.username = r->username;
	r->p.password = r->password;
	r->p.log_name = r->log_name;
	r->dns = dns;
	if (r->dns == NULL) {
		r->dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
		if (r->dns == NULL) /* no resolv.conf: addresses only */
			r->dns = evdns_base_new(base, 0);
		if (r->dns == NULL)
			abort();
		r->own_dns = true;
	}
	TAILQ_INIT(&r->queued);
	TAILQ_INIT(&r->pending);
	TAILQ_INIT(&r->failed);
	r->retry = xevent_new(base, -1, 0, redis_retry_cb, r);
	r->dial = xevent_new(base, -1, 0, redis_dial_timeout, r);
	r->fail_ev = xevent_new(base, -1, 0, redis_failed_cb, r);
	r->backoff_ms = REDIS_BACKOFF_MIN_MS;
	if (p->master_name != NULL && p->n_sentinels > 0) {
		r->master_name = xstrdup(p->master_name);
		r->sentinels = xcalloc(p->n_sentinels, sizeof *r->sentinels);
		for (size_t i = 0; i < p->n_sentinels; i++)
			r->sentinels[i] = xstrdup(p->sentinels[i]);
		r->n_sentinels = p->n_sentinels;
	}
	r->p.master_name = NULL;
	r->p.sentinels = NULL;
	r->m_errors = metrics_counter("mcp_proxy_store_errors_total",
	    "Errors talking to the shared store, by verb (empty: the connection) and kind.",
	    "verb,kind");
	r->m_connects = metrics_counter("mcp_proxy_store_connects_total",
	    "Connection attempts to the shared store (the first, and every reconnect).", "");
	redis_connect(r);
	return r;
}

static void
redis_discard(struct redis_cmds *list)
{
	struct redis_cmd *c;

	while ((c = TAILQ_FIRST(list)) != NULL) {
		TAILQ_REMOVE(list, c, entry);
		redis_cmd_free(c);
	}
}

void
redis_free(struct redis *r)
{
	if (r == NULL)
		return;
	if (r->bev != NULL)
		bufferevent_free(r->bev);
	if (r->reader != NULL)
		redisReaderFree(r->reader);
	redis_discard(&r->queued);
	redis_discard(&r->pending);
	redis_discard(&r->failed);
	event_free(r->retry);
	event_free(r->dial);
	event_free(r->fail_ev);
	if (r->own_dns)
		evdns_base_free(r->dns, 0);
	for (int i = 0; i < r->n_scripts; i++)
		free(r->scripts[i]);
	redis_free(r->query);
	redis_free(r->watch);
	for (size_t i = 0; i < r->n_sentinels; i++)
		free(r->sentinels[i]);
	free(r->sentinels);
	free(r->master_name);
	free(r->channel);
	free(r->host);
	free(r->username);
	xfree_secret(r->password);
	free(r->log_name);
	free(r);
}

static struct redis_cmd *
redis_submit(struct redis *r, struct redis_cmd *c)
{
	if (r->state == R_DOWN || r->n_cmds >= REDIS_MAX_PENDING) {
		if (r->n_cmds >= REDIS_MAX_PENDING)
			metrics_add(r->m_errors, 1, "", "overload");
		TAILQ_INSERT_TAIL(&r->failed, c, entry);
		event_active(r->fail_ev, 0, 0);
		return c;
	}
	r->n_cmds++;
	if (r->state == R_UP)
		redis_send(r, c, false);
	else
		TAILQ_INSERT_TAIL(&r->queued, c, entry);
	return c;
}

struct redis_cmd *
redis_command(struct redis *r, int argc, const char **argv, const size_t *lens, redis_reply_cb cb,
    void *arg)
{
	return redis_submit(r, redis_cmd_new(r, argc, argv, lens, cb, arg));
}

void
redis_cancel(struct redis_cmd *c)
{
	if (c != NULL)
		c->cb = NULL;
}

int
redis_script(struct redis *r, const char *lua)
{
	unsigned char md[20];
	unsigned int mdlen = 0;

	if (r->n_scripts == REDIS_MAX_SCRIPTS)
		return -1;
	if (EVP_Digest(lua, strlen(lua), md, &mdlen, EVP_sha1(), NULL) != 1)
		abort();
	for (int i = 0; i < 20; i++)
		snprintf(r->sha[r->n_scripts] + 2 * i, 3, "%02x", md[i]);
	r->scripts[r->n_scripts] = xstrdup(lua);
	return r->n_scripts++;
}

struct redis_cmd *
redis_eval(struct redis *r, int script, int nkeys, int argc, const char **argv, const size_t *lens,
    redis_reply_cb cb, void *arg)
{
	const char **av = xcalloc((size_t)argc + 3, sizeof *av);
	size_t *lv = xcalloc((size_t)argc + 3, sizeof *lv);
	char nk[16];
	struct redis_cmd *c;

	snprintf(nk, sizeof nk, "%d", nkeys);
	av[0] = "EVALSHA";
	av[1] = r->sha[script];
	av[2] = nk;
	lv[0] = 7;
	lv[1] = 40;
	lv[2] = strlen(nk);
	for (int i = 0; i < argc; i++) {
		av[i + 3] = argv[i];
		lv[i + 3] = lens != NULL ? lens[i] : strlen(argv[i]);
	}
	c = redis_cmd_new(r, argc + 3, av, lv, cb, arg);
	av[0] = "EVAL";
	lv[0] = 4;
	av[1] = r->scripts[script];
	lv[1] = strlen(r->scripts[script]);
	c->eval_len = redisFormatCommandArgv(&c->eval_wire, argc + 3, av, lv);
	if (c->eval_len < 0)
		abort();
	free(av);
	free(lv);
	return redis_submit(r, c);
}

/* A plain connection to the current sentinel (no AUTH: sentinels are
 * reached as their own service). */
static struct redis *
redis_sentinel_conn(struct redis *r, const char *log_name)
{
	const char *hp = r->sentinels[r->sentinel_i], *colon = strrchr(hp, ':');
	char host[256];
	struct redis_params sp = { .host = host,
		.port = colon != NULL ? atoi(colon + 1) : 26379,
		.dial_timeout_ms = r->p.dial_timeout_ms,
		.read_timeout_ms = r->p.read_timeout_ms,
		.write_timeout_ms = r->p.write_timeout_ms,
		.tls = r->p.sentinel_tls,
		.log_name = log_name };
	size_t n = colon != NULL ? (size_t)(colon - hp) : strlen(hp);

	if (n >= sizeof host)
		n = sizeof host - 1;
	if (n >= 2 && hp[0] == '[' && hp[n - 1] == ']') { /* [v6]:port */
		hp++;
		n -= 2;
	}
	memcpy(host, hp, n);
	host[n] = '\0';
	return redis_new(r->base, r->dns, &sp);
}

void
redis_subscribe(struct redis *r, const char *channel, redis_message_cb cb, void *arg)
{
	free(r->channel);
	r->channel = xstrdup(channel);
	r->on_message = cb;
	r->msg_arg = arg;
	if (r->state == R_UP)
		redis_write_subscribe(r);
}

const char *
redis_host(const struct redis *r)
{
	return r->host;
}

int
redis_port(const struct redis *r)
{
	return r->p.port;
}

bool
redis_up(const struct redis *r)
{
	return r->state == R_UP;
}

const char *
redis_error(const struct redis *r)
{
	return r->error;
}
