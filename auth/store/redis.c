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
	metrics_add(r->m_errors, 1, "connection");
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
		metrics_add(r->m_errors, 1, "handshake");
		redis_drop(r, why);
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
	else if (r->p.tls != NULL && (err = bufferevent_get_openssl_error(bev)) != 0) {
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

static void
redis_connect(struct redis *r)
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
	r->m_errors = metrics_counter("mcp_proxy_store_errors_total",
	    "Errors talking to the shared store, by kind.", "kind");
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
			metrics_add(r->m_errors, 1, "overload");
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
