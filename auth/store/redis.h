/*
 * A Redis connection on the loop, for the shared store: hiredis for the
 * protocol only (commands formatted with redisFormatCommandArgv, replies
 * parsed with its reader), libevent for the I/O, so that the name is
 * resolved without blocking (evdns), TLS is OpenSSL's bufferevent, and
 * dial/read/write timeouts are libevent's. Commands are pipelined in order;
 * each one's callback runs exactly once, from the loop and never before
 * redis_command() returns, unless redis_cancel() comes first. When the
 * connection drops, every command in flight fails ("unavailable"), the
 * connection is made again with jittered exponential back-off, and
 * commands issued while it is down fail at once (the AS answers 503): the
 * store never waits for Redis to come back.
 */
#ifndef AUTH_REDIS_H
#define AUTH_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evdns_base;
struct event_base;
struct redis;
struct redis_cmd;
struct redisReply;
struct ssl_ctx_st;

#define REDIS_MAX_PENDING 10000 /* commands queued or in flight */
#define REDIS_MAX_SCRIPTS 32

struct redis_params {
	const char *host; /* a name (resolved with evdns) or an address */
	int port;
	const char *username; /* ACL user; NULL: the default user */
	const char *password; /* NULL: no AUTH */
	int db;
	int64_t dial_timeout_ms;
	int64_t read_timeout_ms; /* while replies are awaited */
	int64_t write_timeout_ms;
	struct ssl_ctx_st *tls; /* borrowed; NULL: plain TCP */
	const char *log_name;   /* "redis" */
};

/* The reply (a REDIS_REPLY_ERROR included; borrowed for the call), or NULL
 * and why the command could not be answered. */
typedef void (*redis_reply_cb)(const struct redisReply *reply, const char *error, void *arg);

/* Connects at once (and again whenever the connection drops). dns may be
 * NULL when host is an address. */
struct redis *redis_new(struct event_base *base, struct evdns_base *dns,
    const struct redis_params *p);
/* Close; no callback runs any more. Not from inside a callback. */
void redis_free(struct redis *r);

struct redis_cmd *redis_command(struct redis *r, int argc, const char **argv, const size_t *lens,
    redis_reply_cb cb, void *arg);
/* The callback will not run. Safe until it ran; NULL is fine. */
void redis_cancel(struct redis_cmd *c);

/* A Lua script for redis_eval (registered before use; loaded on each new
 * connection): its index, or -1 when there are too many. */
int redis_script(struct redis *r, const char *lua);
/* EVALSHA of script with nkeys keys first in argv; a Redis that lost its
 * script cache (NOSCRIPT) is sent the script itself once. */
struct redis_cmd *redis_eval(struct redis *r, int script, int nkeys, int argc, const char **argv,
    const size_t *lens, redis_reply_cb cb, void *arg);

/* Connected, authenticated and ready. */
bool redis_up(const struct redis *r);
/* Why the last connection failed or dropped ("" when up); no secrets. */
const char *redis_error(const struct redis *r);

#endif
