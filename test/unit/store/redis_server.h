/*
 * A real redis-server for the unit suites: started on a free 127.0.0.1
 * port with its own data dir (no persistence), stopped with SIGKILL,
 * restarted on the same port; blocking admin commands through hiredis's
 * synchronous client (fine in a test). Header-only (static functions), as
 * CMake builds each test_*.c with test/unit/unit.c alone.
 */
#ifndef TEST_UNIT_STORE_REDIS_SERVER_H
#define TEST_UNIT_STORE_REDIS_SERVER_H

#include <CUnit/CUnit.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test/unit/unit.h"

struct redis_server {
	pid_t pid;
	int port;
	char dir[64];
};

static inline int
redis_server_free_port(void)
{
	return unit_free_port();
}

/* Start (again on the same port when s->port is set); fatal when it does
 * not answer PING within 10 s. */
static inline void
redis_server_start(struct redis_server *s)
{
	char port[16];
	redisContext *c;

	if (s->port == 0)
		s->port = redis_server_free_port();
	if (s->dir[0] == '\0') {
		snprintf(s->dir, sizeof s->dir, "/tmp/mcp-redis-test.XXXXXX");
		if (mkdtemp(s->dir) == NULL) {
			perror("mkdtemp");
			exit(1);
		}
	}
	snprintf(port, sizeof port, "%d", s->port);
	s->pid = fork();
	if (s->pid == 0) {
		char log[96];
		int fd;

		snprintf(log, sizeof log, "%s/redis.log", s->dir);
		if ((fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600)) >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1",
		    "--dir", s->dir, "--save", "", "--appendonly", "no", "--daemonize", "no",
		    "--loglevel", "warning", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 500; i++) {
		struct timeval tv = { 0, 200000 };

		if ((c = redisConnectWithTimeout("127.0.0.1", s->port, tv)) != NULL &&
		    c->err == 0) {
			redisReply *r = redisCommand(c, "PING");
			bool ok = r != NULL && r->type == REDIS_REPLY_STATUS;

			freeReplyObject(r);
			redisFree(c);
			if (ok)
				return;
		} else if (c != NULL) {
			redisFree(c);
		}
		usleep(20000);
	}
	CU_FAIL_FATAL(
	    "redis-server did not start (is it installed? scripts/install-deps.sh --test)");
}

static inline void
redis_server_stop(struct redis_server *s)
{
	if (s->pid > 0) {
		kill(s->pid, SIGKILL);
		waitpid(s->pid, NULL, 0);
		s->pid = -1;
	}
}

/* Stop, and remove the data dir (unless REDIS_TEST_KEEP is set). */
static inline void
redis_server_dispose(struct redis_server *s)
{
	char rm[96];

	redis_server_stop(s);
	if (s->dir[0] == '\0')
		return;
	snprintf(rm, sizeof rm, "rm -rf '%s'", s->dir);
	if (getenv("REDIS_TEST_KEEP") == NULL && system(rm) != 0)
		fprintf(stderr, "could not remove %s\n", s->dir);
	s->dir[0] = '\0';
}

/* A blocking connection for admin commands (the caller redisFree()s it). */
static inline redisContext *
redis_server_admin(const struct redis_server *s)
{
	struct timeval tv = { 2, 0 };
	redisContext *c = redisConnectWithTimeout("127.0.0.1", s->port, tv);

	CU_ASSERT_FATAL(c != NULL && c->err == 0);
	return c;
}

/* One admin command (printf-style, as redisCommand), its reply checked
 * not to be an error. */
#define redis_server_do(s, ...) \
	do { \
		redisContext *c_ = redis_server_admin(s); \
		redisReply *r_ = redisCommand(c_, __VA_ARGS__); \
		CU_ASSERT(r_ != NULL && r_->type != REDIS_REPLY_ERROR); \
		freeReplyObject(r_); \
		redisFree(c_); \
	} while (0)

#endif
