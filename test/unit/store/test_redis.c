/*
 * Unit tests for auth/store/redis against a real redis-server (Debian's)
 * that the test starts on a free 127.0.0.1 port with its own data dir and
 * stops: commands in order, callbacks never before the call returns,
 * cancellation, scripts with the NOSCRIPT reload, an ACL user, a wrong
 * password refused, and the server going away (every command fails, none
 * waits) and coming back (the connection is made again, no restart).
 * Waits are outcomes with generous deadlines, never races of two timers.
 */
#include "auth/store/redis.h"

#include <event2/event.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/xalloc.h"
#include "proxy/log.h"
#include "proxy/metrics.h"
#include "test/unit/store/redis_server.h"
#include "test/unit/unit.h"

static struct event_base *base;
static struct redis_server srv; /* the test's own redis-server */

static int
free_port(void)
{
	return redis_server_free_port();
}

struct got {
	int calls;
	int type;
	long long integer;
	char str[128];
	char error[160];
};

static int want; /* callbacks still to come before the loop stops */

static void
reply_cb(const redisReply *reply, const char *error, void *arg)
{
	struct got *g = arg;

	g->calls++;
	g->type = reply != NULL ? reply->type : -1;
	g->integer = reply != NULL ? reply->integer : 0;
	snprintf(g->str, sizeof g->str, "%.*s", reply != NULL ? (int)reply->len : 0,
	    reply != NULL && reply->str != NULL ? reply->str : "");
	snprintf(g->error, sizeof g->error, "%s", error != NULL ? error : "");
	if (--want <= 0)
		event_base_loopbreak(base);
}

/* Run the loop until `want` callbacks came, or 10 s. */
static void
run(void)
{
	UNIT_LOOP_UNTIL(base, want <= 0, 10000);
}

/* Run the loop until redis_up(r) == up, or 10 s. */
static bool
run_until_up(struct redis *r, bool up)
{
	for (int i = 0; i < 200 && redis_up(r) != up; i++) {
		struct timeval tv = { 0, 50000 };

		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
	}
	return redis_up(r) == up;
}

static struct redis_params
params(void)
{
	struct redis_params p = { .host = "127.0.0.1",
		.port = srv.port,
		.dial_timeout_ms = 2000,
		.read_timeout_ms = 2000,
		.write_timeout_ms = 2000,
		.log_name = "test" };

	return p;
}

static struct redis_cmd *
cmd(struct redis *r, const char *a0, const char *a1, const char *a2, struct got *g)
{
	const char *argv[3] = { a0, a1, a2 };

	return redis_command(r, a2 != NULL ? 3 : a1 != NULL ? 2 : 1, argv, NULL, reply_cb, g);
}

static void
test_commands_scripts_cancel(void)
{
	struct redis_params p = params();
	struct redis *r;
	struct got g[4];
	int script;
	const char *args[2] = { "k1", "41" };

	memset(g, 0, sizeof g);
	r = redis_new(base, NULL, &p);
	script = redis_script(r, "return redis.call('INCRBY', KEYS[1], ARGV[1])");
	CU_ASSERT_EQUAL(script, 0);
	/* issued while connecting: queued, then answered in order */
	cmd(r, "SET", "k1", "1", &g[0]);
	cmd(r, "GET", "k1", NULL, &g[1]);
	redis_cancel(cmd(r, "INCR", "k1", NULL, &g[2])); /* runs, nobody hears */
	redis_eval(r, script, 1, 2, args, NULL, reply_cb, &g[3]);
	CU_ASSERT_EQUAL(g[0].calls + g[1].calls + g[2].calls + g[3].calls, 0);
	want = 3;
	run();
	CU_ASSERT_TRUE(redis_up(r));
	CU_ASSERT_STRING_EQUAL(g[0].str, "OK");
	CU_ASSERT_STRING_EQUAL(g[1].str, "1");
	CU_ASSERT_EQUAL(g[2].calls, 0);
	CU_ASSERT_EQUAL(g[3].type, REDIS_REPLY_INTEGER);
	CU_ASSERT_EQUAL(g[3].integer, 43); /* 1, INCR, +41 */
	/* the script cache flushed: EVALSHA gets NOSCRIPT, the script is sent */
	redis_server_do(&srv, "SCRIPT FLUSH");
	memset(g, 0, sizeof g);
	redis_eval(r, script, 1, 2, args, NULL, reply_cb, &g[0]);
	want = 1;
	run();
	CU_ASSERT_EQUAL(g[0].type, REDIS_REPLY_INTEGER);
	CU_ASSERT_EQUAL(g[0].integer, 84);
	/* an error reply is a reply */
	cmd(r, "NOSUCHCOMMAND", NULL, NULL, &g[1]);
	want = 1;
	run();
	CU_ASSERT_EQUAL(g[1].type, REDIS_REPLY_ERROR);
	redis_free(r);
}

static void
test_acl_user_and_bad_password(void)
{
	struct redis_params p = params();
	struct redis *r;
	struct got g = { 0 };

	redis_server_do(&srv, "ACL SETUSER proxy on >s3cret-pw ~mcp:* +@all");
	p.username = "proxy";
	p.password = "s3cret-pw";
	r = redis_new(base, NULL, &p);
	cmd(r, "SET", "mcp:x", "v", &g);
	want = 1;
	run();
	CU_ASSERT_STRING_EQUAL(g.str, "OK");
	memset(&g, 0, sizeof g);
	cmd(r, "SET", "other:x", "v", &g); /* outside its keys */
	want = 1;
	run();
	CU_ASSERT_EQUAL(g.type, REDIS_REPLY_ERROR);
	redis_free(r);

	p.password = "wrong";
	r = redis_new(base, NULL, &p);
	memset(&g, 0, sizeof g);
	cmd(r, "GET", "mcp:x", NULL, &g);
	want = 1;
	run();
	CU_ASSERT_EQUAL(g.calls, 1);
	CU_ASSERT_EQUAL(g.type, -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(g.error, "unavailable"));
	CU_ASSERT_FALSE(redis_up(r));
	CU_ASSERT_PTR_NOT_NULL(strstr(redis_error(r), "handshake refused"));
	CU_ASSERT_PTR_NULL(strstr(redis_error(r), "wrong")); /* never the password */
	redis_free(r);
}

static void
test_server_away_and_back(void)
{
	struct redis_params p = params();
	struct redis *r;
	struct got g = { 0 };

	r = redis_new(base, NULL, &p);
	CU_ASSERT_TRUE_FATAL(run_until_up(r, true));
	redis_server_stop(&srv);
	CU_ASSERT_TRUE(run_until_up(r, false));
	/* down: the command fails on the next loop turn, it does not wait */
	cmd(r, "PING", NULL, NULL, &g);
	CU_ASSERT_EQUAL(g.calls, 0);
	want = 1;
	run();
	CU_ASSERT_EQUAL(g.calls, 1);
	CU_ASSERT_EQUAL(g.type, -1);
	CU_ASSERT_STRING_NOT_EQUAL(redis_error(r), "");
	/* back on the same port: reconnected without anyone asking */
	redis_server_start(&srv); /* again, on the same port */
	CU_ASSERT_TRUE(run_until_up(r, true));
	memset(&g, 0, sizeof g);
	cmd(r, "PING", NULL, NULL, &g);
	want = 1;
	run();
	CU_ASSERT_STRING_EQUAL(g.str, "PONG");
	CU_ASSERT_STRING_EQUAL(redis_error(r), "");
	redis_free(r);
}

/* A server that stops answering: the command fails after the read
 * timeout instead of waiting forever; the connection is made again. */
static void
test_read_timeout(void)
{
	struct redis_params p = params();
	struct redis *r;
	struct got g = { 0 };

	p.read_timeout_ms = 300;
	r = redis_new(base, NULL, &p);
	CU_ASSERT_TRUE_FATAL(run_until_up(r, true));
	kill(srv.pid, SIGSTOP);
	cmd(r, "PING", NULL, NULL, &g);
	want = 1;
	run();
	kill(srv.pid, SIGCONT);
	CU_ASSERT_EQUAL(g.calls, 1);
	CU_ASSERT_EQUAL(g.type, -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(g.error, "read timeout"));
	CU_ASSERT_TRUE(run_until_up(r, true));
	redis_free(r);
}

/* TLS with a test CA: the server's certificate names 127.0.0.1 (IP SAN);
 * a client that trusts another CA is refused with a TLS reason. */
static void
test_tls(void)
{
	struct redis_params p = params();
	struct redis *r;
	struct got g = { 0 };
	char cmdline[1024], port[16], path[3][128];
	pid_t pid;
	SSL_CTX *ctx, *other;
	int tls_port = free_port();

	snprintf(cmdline, sizeof cmdline,
	    "cd '%s' && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
	    "-keyout ca.key -out ca.pem -days 1 -subj /CN=test-ca 2>/dev/null && "
	    "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
	    "-keyout other.key -out other.pem -days 1 -subj /CN=other-ca 2>/dev/null && "
	    "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout srv.key "
	    "-out srv.csr -subj /CN=redis 2>/dev/null && printf 'subjectAltName=IP:127.0.0.1\\n' "
	    "> ext && openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
	    "-out srv.pem -days 1 -extfile ext 2>/dev/null",
	    srv.dir);
	CU_ASSERT_EQUAL_FATAL(system(cmdline), 0);
	snprintf(port, sizeof port, "%d", tls_port);
	snprintf(path[0], sizeof path[0], "%s/srv.pem", srv.dir);
	snprintf(path[1], sizeof path[1], "%s/srv.key", srv.dir);
	snprintf(path[2], sizeof path[2], "%s/ca.pem", srv.dir);
	if ((pid = fork()) == 0) {
		int fd = open("/dev/null", O_WRONLY);

		dup2(fd, 1);
		dup2(fd, 2);
		execlp("redis-server", "redis-server", "--port", "0", "--tls-port", port, "--bind",
		    "127.0.0.1", "--tls-cert-file", path[0], "--tls-key-file", path[1],
		    "--tls-ca-cert-file", path[2], "--tls-auth-clients", "no", "--save", "",
		    "--appendonly", "no", "--dir", srv.dir, (char *)NULL);
		_exit(127);
	}
	ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	CU_ASSERT_EQUAL_FATAL(SSL_CTX_load_verify_locations(ctx, path[2], NULL), 1);
	p.port = tls_port;
	p.tls = ctx;
	r = redis_new(base, NULL, &p);
	/* the server may take a moment to listen: retried with back-off */
	CU_ASSERT_TRUE(run_until_up(r, true));
	cmd(r, "PING", NULL, NULL, &g);
	want = 1;
	run();
	CU_ASSERT_STRING_EQUAL(g.str, "PONG");
	redis_free(r);

	other = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_verify(other, SSL_VERIFY_PEER, NULL);
	snprintf(path[2], sizeof path[2], "%s/other.pem", srv.dir);
	CU_ASSERT_EQUAL_FATAL(SSL_CTX_load_verify_locations(other, path[2], NULL), 1);
	p.tls = other;
	r = redis_new(base, NULL, &p);
	memset(&g, 0, sizeof g);
	cmd(r, "PING", NULL, NULL, &g);
	want = 1;
	run();
	CU_ASSERT_EQUAL(g.type, -1);
	CU_ASSERT_FALSE(redis_up(r));
	CU_ASSERT_PTR_NOT_NULL(strstr(redis_error(r), "TLS"));
	redis_free(r);
	SSL_CTX_free(ctx);
	SSL_CTX_free(other);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static pid_t
spawn_redis(const char *const *args)
{
	pid_t pid = fork();

	if (pid == 0) {
		char log[96];
		int fd;

		snprintf(log, sizeof log, "%s/redis.log", srv.dir);
		if ((fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600)) >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execvp("redis-server", (char *const *)args);
		_exit(127);
	}
	return pid;
}

/* Does the sentinel on sport list the replica on rport as a healthy one? */
static bool
sentinel_knows_replica(int sport, int rport)
{
	char port_s[32];

	snprintf(port_s, sizeof port_s, "%d", rport);
	for (int i = 0; i < 300; i++) {
		struct timeval tv = { 1, 0 };
		redisContext *c = redisConnectWithTimeout("127.0.0.1", sport, tv);
		redisReply *r = c != NULL && c->err == 0 ? redisCommand(c, "SENTINEL REPLICAS m")
							 : NULL;
		bool ok = false;

		/* each replica: a flat list of field, value pairs */
		for (size_t k = 0; r != NULL && r->type == REDIS_REPLY_ARRAY && k < r->elements;
		     k++) {
			const redisReply *f = r->element[k];
			bool port = false, link = false, flags = false;

			for (size_t j = 0; f->type == REDIS_REPLY_ARRAY && j + 1 < f->elements;
			     j += 2) {
				const char *key = f->element[j]->str, *val = f->element[j + 1]->str;

				port |= strcmp(key, "port") == 0 && strcmp(val, port_s) == 0;
				link |= strcmp(key, "master-link-status") == 0 &&
				    strcmp(val, "ok") == 0;
				flags |= strcmp(key, "flags") == 0 && strcmp(val, "slave") == 0;
			}
			ok |= port && link && flags;
		}
		freeReplyObject(r);
		if (c != NULL)
			redisFree(c);
		if (ok)
			return true;
		usleep(100000);
	}
	return false;
}

/* Sentinel: a master, a replica and one sentinel on 127.0.0.1. The client
 * finds the master through the sentinel; the master is killed; after the
 * sentinel promotes the replica the client is up again on it, without a
 * restart, and writes there. */
static void
test_sentinel_failover(void)
{
	struct redis_params p = params();
	struct redis *r;
	struct got g = { 0 };
	int mport = free_port(), rport = free_port(), sport = free_port();
	char mp[16], rp[16], sp[16], conf[128], sentinel[32];
	const char *sentinels[] = { sentinel };
	pid_t master, replica, sent;
	FILE *f;

	snprintf(mp, sizeof mp, "%d", mport);
	snprintf(rp, sizeof rp, "%d", rport);
	snprintf(sp, sizeof sp, "%d", sport);
	snprintf(sentinel, sizeof sentinel, "127.0.0.1:%d", sport);
	{
		const char *m[] = { "redis-server", "--port", mp, "--bind", "127.0.0.1", "--save",
			"", "--appendonly", "no", "--dir", srv.dir, NULL };
		const char *rr[] = { "redis-server", "--port", rp, "--bind", "127.0.0.1", "--save",
			"", "--appendonly", "no", "--dir", srv.dir, "--replicaof", "127.0.0.1",
			mp, NULL };

		master = spawn_redis(m);
		replica = spawn_redis(rr);
	}
	snprintf(conf, sizeof conf, "%s/sentinel.conf", srv.dir);
	f = fopen(conf, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fprintf(f,
	    "port %d\nbind 127.0.0.1\nsentinel monitor m 127.0.0.1 %d 1\n"
	    "sentinel down-after-milliseconds m 2000\nsentinel failover-timeout m 5000\n"
	    "sentinel resolve-hostnames no\ndir %s\n",
	    sport, mport, srv.dir);
	fclose(f);
	{
		const char *sa[] = { "redis-server", conf, "--sentinel", NULL };

		sent = spawn_redis(sa);
	}
	p.master_name = "m";
	p.sentinels = sentinels;
	p.n_sentinels = 1;
	r = redis_new(base, NULL, &p);
	CU_ASSERT_TRUE_FATAL(run_until_up(r, true));
	CU_ASSERT_EQUAL(redis_port(r), mport);
	cmd(r, "SET", "k", "before", &g);
	want = 1;
	run();
	CU_ASSERT_STRING_EQUAL(g.str, "OK");
	/* the replica must have caught up before the master goes */
	for (int i = 0; i < 100; i++) {
		struct timeval tv = { 0, 50000 };

		memset(&g, 0, sizeof g);
		cmd(r, "WAIT", "1", "100", &g);
		want = 1;
		run();
		if (g.integer >= 1)
			break;
		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
	}
	CU_ASSERT_EQUAL(g.integer, 1);
	/* and the sentinel must know the replica (it learns replicas from the
	 * master's INFO, every few seconds), or it has none to promote */
	CU_ASSERT_TRUE(sentinel_knows_replica(sport, rport));
	kill(master, SIGKILL);
	waitpid(master, NULL, 0);
	/* down, then up on the promoted replica (the sentinel needs a few s) */
	CU_ASSERT_TRUE(run_until_up(r, false));
	/* up to a minute: sentinel's own timers, on a loaded machine */
	for (int i = 0; i < 1200 && !(redis_up(r) && redis_port(r) == rport); i++) {
		struct timeval tv = { 0, 50000 };

		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
	}
	CU_ASSERT_TRUE(redis_up(r));
	CU_ASSERT_EQUAL(redis_port(r), rport);
	memset(&g, 0, sizeof g);
	cmd(r, "GET", "k", NULL, &g);
	want = 1;
	run();
	CU_ASSERT_STRING_EQUAL(g.str, "before");
	memset(&g, 0, sizeof g);
	cmd(r, "SET", "k", "after", &g);
	want = 1;
	run();
	CU_ASSERT_STRING_EQUAL(g.str, "OK");
	redis_free(r);
	kill(replica, SIGKILL);
	kill(sent, SIGKILL);
	waitpid(replica, NULL, 0);
	waitpid(sent, NULL, 0);
}

static void
test_nothing_listening(void)
{
	struct redis_params p = params();
	struct redis *r;
	struct got g = { 0 };

	p.port = free_port();
	r = redis_new(base, NULL, &p);
	cmd(r, "PING", NULL, NULL, &g);
	want = 1;
	run();
	CU_ASSERT_EQUAL(g.type, -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(g.error, "unavailable"));
	redis_free(r); /* with a reconnect timer pending */
}

int
main(void)
{
	static const struct unit_test tests[] = {
		{ "commands in order, cancel, scripts and NOSCRIPT", test_commands_scripts_cancel },
		{ "ACL user; a wrong password is refused", test_acl_user_and_bad_password },
		{ "server away and back", test_server_away_and_back },
		{ "a server that stops answering: read timeout", test_read_timeout },
		{ "TLS with a test CA; another CA refused", test_tls },
		{ "Sentinel: master found, failover followed", test_sentinel_failover },
		{ "nothing listening", test_nothing_listening },
		{ NULL, NULL },
	};
	int rc;

	log_set_level(getenv("REDIS_TEST_LOG") ? LOG_INFO : LOG_ERROR);
	signal(SIGPIPE, SIG_IGN);
	base = event_base_new();
	redis_server_start(&srv);
	rc = unit_run("redis", tests);
	redis_server_dispose(&srv);
	event_base_free(base);
	metrics_reset();
	return rc;
}
