/*
 * The front end's accept bounds: at server.maxConnections the MCP listener
 * stops accepting (new clients wait in the backlog), serves the
 * connections it has, and accepts again when one closes; when accept(2)
 * fails with EMFILE it pauses for a back-off instead of spinning the loop,
 * with one log line and one count per episode.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "proxy/log.h"
#include "proxy/metrics.h"
#include "proxy/server.h"
#include "proxy/server_private.h"
#include "test/unit/unit.h"

static struct event_base *base;
static struct config *cfg;
static struct server *srv;
static int logp[2];
static char log_acc[1 << 16]; /* what the log pipe gave so far */
static size_t log_n;

static bool with_peers; /* setup() binds a peer listener too */

static void
setup(uint32_t max_connections)
{
	char err[256];

	base = event_base_new();
	cfg = config_new();
	free(cfg->server.listen);
	cfg->server.listen = xstrdup("127.0.0.1:0");
	free(cfg->server.diagnostics_listen);
	cfg->server.diagnostics_listen = xstrdup("127.0.0.1:0");
	cfg->server.max_connections = max_connections;
	if (with_peers)
		cfg->server.peer_listen = xstrdup("127.0.0.1:0");
	log_n = 0;
	CU_ASSERT_FATAL(pipe(logp) == 0);
	fcntl(logp[0], F_SETFL, O_NONBLOCK);
	fcntl(logp[1], F_SETPIPE_SZ, 1 << 20);
	log_set_fd(logp[1]);
	srv = server_new(base, cfg);
	CU_ASSERT_EQUAL_FATAL(server_listen(srv, err, sizeof err), 0);
}

static void
teardown(void)
{
	server_free(srv);
	event_base_free(base);
	config_free(cfg);
	metrics_reset();
	log_set_fd(-1);
	close(logp[0]);
	close(logp[1]);
}

/* How many log lines so far carry msg. */
static int
count_log(const char *msg)
{
	char buf[4096], needle[128];
	ssize_t r;
	int count = 0;

	while ((r = read(logp[0], buf, sizeof buf)) > 0 && log_n + (size_t)r < sizeof log_acc - 1) {
		memcpy(log_acc + log_n, buf, (size_t)r);
		log_n += (size_t)r;
	}
	log_acc[log_n] = '\0';
	snprintf(needle, sizeof needle, "\"msg\":\"%s\"", msg);
	for (const char *p = log_acc; (p = strstr(p, needle)) != NULL; p++)
		count++;
	return count;
}

static int
client(int port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	CU_ASSERT_FATAL(fd >= 0 && connect(fd, (struct sockaddr *)&sin, sizeof sin) == 0);
	return fd;
}

static void
turns(int n)
{
	for (int i = 0; i < n; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
}

static void
test_connection_cap(void)
{
	struct listener *l;
	int c[3];

	setup(2);
	l = &srv->listeners[SERVER_MCP];
	CU_ASSERT_EQUAL(l->max_conns, 2);
	for (int i = 0; i < 3; i++)
		c[i] = client(server_port(srv, SERVER_MCP));
	turns(5);
	/* Two taken, the third waits in the backlog. */
	CU_ASSERT_EQUAL(l->n_conns, 2);
	CU_ASSERT(l->paused);
	CU_ASSERT_EQUAL(metrics_value(srv->m_accept_paused, "mcp", "max_connections"), 1);
	CU_ASSERT_EQUAL(metrics_value(srv->m_accept_paused_now, "mcp"), 1);
	CU_ASSERT_EQUAL(count_log("not accepting connections for a while"), 1);
	/* The diagnostics listener is not affected. */
	CU_ASSERT(!srv->listeners[SERVER_DIAG].paused);
	/* One closes: the waiting one is taken and the cap is reached again
	 * at once: the same episode (no second line, no second count). */
	close(c[0]);
	turns(5);
	CU_ASSERT_EQUAL(l->n_conns, 2);
	CU_ASSERT_EQUAL(metrics_value(srv->m_accept_paused, "mcp", "max_connections"), 1);
	CU_ASSERT_EQUAL(count_log("not accepting connections for a while"), 1);
	close(c[1]);
	turns(5);
	CU_ASSERT_EQUAL(l->n_conns, 1);
	CU_ASSERT(!l->paused);
	CU_ASSERT_EQUAL(metrics_value(srv->m_accept_paused_now, "mcp"), 0);
	/* Full again after the gap (injected clock): a second episode. */
	clock_set_fake(clock_wall_s(), clock_mono_ms() + SERVER_EPISODE_GAP_MS);
	c[0] = client(server_port(srv, SERVER_MCP));
	turns(5);
	CU_ASSERT_EQUAL(l->n_conns, 2);
	CU_ASSERT_EQUAL(metrics_value(srv->m_accept_paused, "mcp", "max_connections"), 2);
	CU_ASSERT_EQUAL(count_log("not accepting connections for a while"), 2);
	close(c[0]);
	close(c[2]);
	turns(5);
	CU_ASSERT_EQUAL(l->n_conns, 0);
	clock_set_fake(-1, 0);
	teardown();
}

/* The lowest descriptor not in use. */
static int
lowest_free_fd(void)
{
	int fd = dup(0);

	close(fd);
	return fd;
}

static void
test_fd_limit_backs_off(void)
{
	struct rlimit saved, low;
	struct listener *l;
	int c[3];

	setup(100);
	l = &srv->listeners[SERVER_MCP];
	c[0] = client(server_port(srv, SERVER_MCP));
	c[1] = client(server_port(srv, SERVER_MCP));
	/* No descriptor left for accept(2): lower the limit to what is open. */
	getrlimit(RLIMIT_NOFILE, &saved);
	low = saved;
	low.rlim_cur = (rlim_t)lowest_free_fd();
	CU_ASSERT_FATAL(setrlimit(RLIMIT_NOFILE, &low) == 0);
	turns(50);
	CU_ASSERT_EQUAL(l->n_conns, 0);
	CU_ASSERT(l->paused);
	CU_ASSERT_EQUAL(metrics_value(srv->m_accept_paused, "mcp", "fd_limit"), 1);
	/* 50 loop turns, one line: a listener left on would fail on each. */
	CU_ASSERT_FATAL(setrlimit(RLIMIT_NOFILE, &saved) == 0);
	CU_ASSERT_EQUAL(count_log("not accepting connections for a while"), 1);
	CU_ASSERT_EQUAL(count_log("libevent"), 0);
	/* Descriptors are back: after the back-off the listener takes what
	 * waits (under valgrind, whose accept wrapper closes a descriptor
	 * over the limit itself, the first two may be gone: a new one comes). */
	c[2] = client(server_port(srv, SERVER_MCP));
	for (int i = 0; i < 20 && (l->paused || l->n_conns == 0); i++)
		event_base_loop(base, EVLOOP_ONCE);
	turns(5);
	CU_ASSERT(l->n_conns >= 1);
	CU_ASSERT(!l->paused);
	CU_ASSERT_EQUAL(metrics_value(srv->m_accept_paused_now, "mcp"), 0);
	CU_ASSERT_EQUAL(metrics_value(srv->m_accept_paused, "mcp", "fd_limit"), 1);
	close(c[0]);
	close(c[1]);
	close(c[2]);
	turns(5);
	teardown();
}

static void
cap_fits(bool peers)
{
	struct rlimit saved, low;

	getrlimit(RLIMIT_NOFILE, &saved);
	low = saved;
	low.rlim_cur = low.rlim_max = 512;
	if (saved.rlim_max != RLIM_INFINITY && saved.rlim_max < 512)
		low.rlim_cur = low.rlim_max = saved.rlim_max;
	/* Lowering the hard limit cannot be undone without privileges: in a
	 * child. */
	{
		pid_t pid = fork();

		if (pid == 0) {
			struct rlimit now;
			size_t fit;
			int ok;

			setrlimit(RLIMIT_NOFILE, &low);
			with_peers = peers;
			setup(4096);
			/* What the server computed from the limit it found (valgrind
			 * keeps the hard limit its own: then nothing is lowered). With
			 * peers, four descriptors per pair of connections. */
			getrlimit(RLIMIT_NOFILE, &now);
			fit = (now.rlim_cur - SERVER_FD_RESERVE) / (peers ? 4 : 2);
			ok = srv->listeners[SERVER_MCP].max_conns == (fit < 4096 ? fit : 4096) &&
			    srv->listeners[SERVER_PEER].max_conns == (fit < 4096 ? fit : 4096) &&
			    srv->listeners[SERVER_DIAG].max_conns == SERVER_DIAG_MAX_CONNS &&
			    count_log(
				"server.maxConnections lowered to fit the file descriptor limit") ==
				(fit < 4096);
			if (!ok)
				fprintf(stderr, "limit %lld, cap %zu\n", (long long)now.rlim_cur,
				    srv->listeners[SERVER_MCP].max_conns);
			_exit(ok ? 0 : 1);
		} else {
			int status = 0;

			waitpid(pid, &status, 0);
			CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		}
	}
}

static void
test_cap_fits_the_fd_limit(void)
{
	cap_fits(false);
}

static void
test_cap_fits_with_peers(void)
{
	cap_fits(true);
}

static const struct unit_test tests[] = {
	{ "at server.maxConnections accepting pauses, and resumes when one closes",
	    test_connection_cap },
	{ "EMFILE pauses accepting for a back-off: one line, no spin", test_fd_limit_backs_off },
	{ "the cap is lowered to fit the descriptor limit", test_cap_fits_the_fd_limit },
	{ "with a peer listener, the MCP and peer caps share the descriptor limit",
	    test_cap_fits_with_peers },
	{ NULL, NULL },
};

int
main(void)
{
	return unit_run("server", tests);
}
