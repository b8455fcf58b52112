/*
 * The CIMD resolver on a real loop against a real HTTPS document host on
 * 127.0.0.1 (test/peers/doc-host.mjs as a child, with a CA and leaf made at
 * test time with the openssl CLI; the fetcher trusts the CA through its
 * ca_file). Resolution, coalescing (50 lookups, one request), cache hits,
 * TTLs and Cache-Control with an injected clock, ETag revalidation (304),
 * eviction, every fetch failure's description, timeouts, and cancelling
 * waiters while the shared fetch is in flight. Only loopback is contacted.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "auth/cimd/cimd.h"
#include "auth/cimd/cimd_jwks.h"
#include "auth/client/client.h"
#include "auth/crypto/keyset.h"
#include "common/clock.h"
#include "config/config.h"
#include "proxy/fetch.h"
#include "proxy/log.h"
#include "proxy/metrics.h"
#include "test/unit/unit.h"

static struct {
	bool tried, ready;
	char dir[256];
	char ca_file[300];
	pid_t pid;
	int port, cport;
} host;

/* ---- the document host ---- */

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	return system(cmd);
}

static void
host_stop(void)
{
	if (host.pid > 0) {
		kill(host.pid, SIGTERM);
		waitpid(host.pid, NULL, 0);
		host.pid = 0;
	}
	if (host.dir[0] != '\0') {
		sh("rm -rf '%s'", host.dir);
		host.dir[0] = '\0';
	}
}

static bool
host_start(void)
{
	const char *src = getenv("MCP_SOURCE_DIR");
	char script[512], cfg[1024], line[512];
	int out[2], in[2];
	size_t n = 0;
	struct json_object *j, *v;

	if (host.tried)
		return host.ready;
	host.tried = true;
	if (src == NULL)
		src = ".";
	snprintf(host.dir, sizeof host.dir, "/tmp/cimd-test-XXXXXX");
	if (mkdtemp(host.dir) == NULL)
		return false;
	if (sh("cd '%s' && openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
	       "-nodes -keyout ca.key -out ca.pem -days 2 -sha256 -subj '/CN=cimd unit test CA' "
	       "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign "
	       ">/dev/null 2>&1 && printf 'basicConstraints=critical,CA:FALSE\\n"
	       "extendedKeyUsage=serverAuth\\nsubjectAltName=IP:127.0.0.1,DNS:localhost\\n' > "
	       "leaf.ext "
	       "&& openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
	       "-keyout leaf.key -out leaf.csr -subj /CN=localhost >/dev/null 2>&1 && "
	       "openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
	       "-out leaf.pem -days 2 -sha256 -extfile leaf.ext >/dev/null 2>&1",
		host.dir) != 0) {
		fprintf(stderr, "test_cimd: openssl failed\n");
		return false;
	}
	snprintf(host.ca_file, sizeof host.ca_file, "%s/ca.pem", host.dir);
	snprintf(script, sizeof script, "%s/test/peers/doc-host.mjs", src);
	snprintf(cfg, sizeof cfg, "{\"certFile\":\"%s/leaf.pem\",\"keyFile\":\"%s/leaf.key\"}",
	    host.dir, host.dir);
	if (pipe(out) != 0 || pipe(in) != 0)
		return false;
	host.pid = fork();
	if (host.pid == 0) {
		dup2(out[1], 1);
		dup2(in[0], 0);
		close(out[0]);
		close(in[1]);
		setenv("PEER_EXIT_ON_STDIN_EOF", "1", 1);
		execlp("node", "node", script, cfg, (char *)NULL);
		_exit(127);
	}
	close(out[1]);
	close(in[0]); /* in[1] stays open: the host exits when we do */
	while (n < sizeof line - 1) {
		struct pollfd pfd = { .fd = out[0], .events = POLLIN };
		ssize_t r;

		if (poll(&pfd, 1, 15000) <= 0)
			break;
		r = read(out[0], line + n, 1);
		if (r <= 0)
			break;
		if (line[n++] == '\n')
			break;
	}
	line[n] = '\0';
	j = json_tokener_parse(line);
	if (j != NULL && json_object_object_get_ex(j, "listening", &v))
		host.port = json_object_get_int(v);
	if (j != NULL && json_object_object_get_ex(j, "controlPort", &v))
		host.cport = json_object_get_int(v);
	json_object_put(j);
	host.ready = host.port > 0 && host.cport > 0;
	if (!host.ready)
		fprintf(stderr, "test_cimd: doc-host did not start (%s)\n", line);
	return host.ready;
}

/* A blocking request to the host's control port; returns the body (caller
 * frees) or NULL. */
static char *
control(const char *method, const char *path, const char *body)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)host.cport) };
	char req[16384], *resp = calloc(1, 1 << 20), *b;
	size_t n = 0;
	ssize_t r;
	int fd = socket(AF_INET, SOCK_STREAM, 0), len;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
		goto fail;
	len = snprintf(req, sizeof req,
	    "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
	    "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
	    method, path, body ? strlen(body) : 0, body ? body : "");
	if (write(fd, req, (size_t)len) != len)
		goto fail;
	while ((r = read(fd, resp + n, (1 << 20) - 1 - n)) > 0)
		n += (size_t)r;
	close(fd);
	b = strstr(resp, "\r\n\r\n");
	if (b == NULL) {
		free(resp);
		return NULL;
	}
	memmove(resp, b + 4, strlen(b + 4) + 1);
	return resp;
fail:
	close(fd);
	free(resp);
	return NULL;
}

/* Serve spec (a doc-host document spec, JSON) at path. */
static void
put_doc(const char *path, const char *spec)
{
	char q[512];
	char *r;

	snprintf(q, sizeof q, "/docs?path=%s", path);
	r = control("PUT", q, spec);
	CU_ASSERT_PTR_NOT_NULL(r);
	CU_ASSERT_PTR_NOT_NULL(r != NULL ? strstr(r, "\"ok\":true") : NULL);
	free(r);
}

/* Serve a valid document for path, with extra spec members (",\"etag\":..."). */
static void
put_valid(const char *path, const char *extra)
{
	char spec[4096];

	snprintf(spec, sizeof spec,
	    "{\"json\":{\"client_id\":\"https://127.0.0.1:%d%s\","
	    "\"client_name\":\"Test %s\",\"redirect_uris\":[\"http://127.0.0.1/cb\"]}%s}",
	    host.port, path, path, extra ? extra : "");
	put_doc(path, spec);
}

/* A counter of the host's stats ("requests" or "notModified") for path. */
static int
stat_of(const char *group, const char *path)
{
	char *r = control("GET", "/stats", NULL);
	struct json_object *j = r ? json_tokener_parse(r) : NULL, *g, *v;
	int n = 0;

	if (j != NULL && json_object_object_get_ex(j, group, &g) &&
	    json_object_object_get_ex(g, path, &v))
		n = json_object_get_int(v);
	json_object_put(j);
	free(r);
	return n;
}

static char *
url_of(const char *path)
{
	static char u[512];

	snprintf(u, sizeof u, "https://127.0.0.1:%d%s", host.port, path);
	return u;
}

/* ---- the loop ---- */

struct env {
	struct event_base *base;
	struct fetcher *fetcher;
	struct config *cfg;
	struct cimd *cimd;
	int ndone;
	int target;
	bool timed_out;
};

struct waiter {
	struct env *env;
	int called;
	struct client *client;
	char err[256];
};

static void
on_done(struct client *client, const char *err, void *arg)
{
	struct waiter *w = arg;

	w->called++;
	if (client != NULL) {
		client_ref(client);
		w->client = client;
	} else {
		snprintf(w->err, sizeof w->err, "%s", err ? err : "(null)");
	}
	w->env->ndone++;
	if (w->env->ndone >= w->env->target)
		event_base_loopbreak(w->env->base);
}

static void
waiter_reset(struct waiter *w, struct env *e)
{
	client_unref(w->client);
	memset(w, 0, sizeof *w);
	w->env = e;
}

static void
on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct env *e = arg;

	e->timed_out = true;
	event_base_loopbreak(e->base);
}

/* Run the loop until target callbacks in all, or timeout_ms passed. */
static void
run_until(struct env *e, int target, int timeout_ms)
{
	long long ms = unit_ms(timeout_ms);
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	struct event *t = evtimer_new(e->base, on_timeout, e);

	e->target = target;
	e->timed_out = false;
	evtimer_add(t, &tv);
	while (e->ndone < target && !e->timed_out)
		event_base_loop(e->base, EVLOOP_ONCE);
	event_free(t);
}

static bool
env_init(struct env *e)
{
	memset(e, 0, sizeof *e);
	if (!host_start()) {
		fprintf(stderr, "test_cimd: no document host (node/openssl missing?)\n");
		CU_FAIL("document host did not start");
		return false;
	}
	metrics_reset();
	e->base = event_base_new();
	e->fetcher = fetcher_new(e->base, host.ca_file);
	e->cfg = config_new();
	e->cfg->eas.cimd.enabled = true;
	e->cfg->eas.cimd.insecure_allow_loopback = true;
	e->cfg->eas.cimd.fetch_timeout_ms = unit_ms(2000);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e->fetcher);
	return true;
}

/* Create the resolver once the test has tuned the config. */
/* The fetch slots the queue tests use: the real 256, or 16 under valgrind,
 * whose slowdown turns 256 TLS handshakes at once into connect timeouts
 * (the queue logic is the same; only the load differs). */
static int
slots(void)
{
	return unit_ms(1) > 1 ? 16 : 256;
}

static void
env_start(struct env *e)
{
	e->cimd = cimd_new(e->base, e->fetcher, e->cfg);
	cimd_set_fetch_slots(e->cimd, slots());
}

static void
env_dispose(struct env *e)
{
	cimd_free(e->cimd);
	fetcher_free(e->fetcher);
	event_base_free(e->base);
	config_free(e->cfg);
	metrics_reset();
	clock_set_fake(-1, 0);
}

static double
cache_metric(const char *result)
{
	return metrics_value(metrics_counter("mcp_proxy_cimd_cache_total", "", "result"), result);
}

static double
fetch_metric(const char *outcome)
{
	return metrics_value(metrics_counter("mcp_proxy_cimd_fetch_total", "", "outcome"), outcome);
}

/* Resolve path once and run until answered. */
static void
resolve_one(struct env *e, const char *path, struct waiter *w)
{
	waiter_reset(w, e);
	e->ndone = 0;
	if (cimd_resolve(e->cimd, url_of(path), on_done, w) != NULL)
		run_until(e, 1, 5000);
	CU_ASSERT_EQUAL(w->called, 1);
}

/* ---- tests ---- */

static void
test_resolve_ok_then_hit(void)
{
	struct env e;
	struct waiter w = { 0 };
	struct cimd_lookup *l;

	if (!env_init(&e))
		return;
	env_start(&e);
	put_valid("/ok.json", NULL);
	w.env = &e;
	l = cimd_resolve(e.cimd, url_of("/ok.json"), on_done, &w);
	CU_ASSERT_PTR_NOT_NULL(l);
	CU_ASSERT_EQUAL(w.called, 0);
	run_until(&e, 1, 5000);
	CU_ASSERT_EQUAL(w.called, 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(w.client);
	CU_ASSERT_TRUE(w.client->is_cimd);
	CU_ASSERT_STRING_EQUAL(w.client->client_id, url_of("/ok.json"));
	CU_ASSERT_STRING_EQUAL(w.client->client_name, "Test /ok.json");
	CU_ASSERT_EQUAL(stat_of("requests", "/ok.json"), 1);
	CU_ASSERT_EQUAL(cache_metric("miss"), 1);
	CU_ASSERT_EQUAL(fetch_metric("ok"), 1);
	CU_ASSERT_EQUAL(cimd_cache_size(e.cimd), 1);

	/* Cached: answered before cimd_resolve returns, no request. */
	waiter_reset(&w, &e);
	CU_ASSERT_PTR_NULL(cimd_resolve(e.cimd, url_of("/ok.json"), on_done, &w));
	CU_ASSERT_EQUAL(w.called, 1);
	CU_ASSERT_PTR_NOT_NULL(w.client);
	CU_ASSERT_EQUAL(stat_of("requests", "/ok.json"), 1);
	CU_ASSERT_EQUAL(cache_metric("hit"), 1);
	waiter_reset(&w, &e);
	env_dispose(&e);
}

static void
test_coalescing(void)
{
	struct env e;
	struct waiter w[50];
	int ok = 0;

	if (!env_init(&e))
		return;
	env_start(&e);
	put_valid("/co.json", ",\"delayMs\":200");
	memset(w, 0, sizeof w);
	for (int i = 0; i < 50; i++) {
		w[i].env = &e;
		CU_ASSERT_PTR_NOT_NULL(cimd_resolve(e.cimd, url_of("/co.json"), on_done, &w[i]));
	}
	CU_ASSERT_EQUAL(cimd_pending_count(e.cimd), 1);
	run_until(&e, 50, 5000);
	for (int i = 0; i < 50; i++) {
		ok += w[i].called == 1 && w[i].client != NULL;
		waiter_reset(&w[i], &e);
	}
	CU_ASSERT_EQUAL(ok, 50);
	CU_ASSERT_EQUAL(stat_of("requests", "/co.json"), 1);
	CU_ASSERT_EQUAL(cimd_pending_count(e.cimd), 0);
	CU_ASSERT_EQUAL(cache_metric("miss"), 50);
	CU_ASSERT_EQUAL(fetch_metric("ok"), 1);
	env_dispose(&e);
}

/* More distinct documents than fetch slots: the rest queue and all resolve. */
static void
test_queue_beyond_slots(void)
{
	enum { NMAX = 300 };
	const int N = slots() + 44;
	struct env e;
	static struct waiter w[NMAX];
	char path[64];
	int ok = 0, failed = 0;

	if (!env_init(&e))
		return;
	e.cfg->eas.cimd.cache_max_size = 1024;
	/* Room for 300 TLS handshakes in a row on a slow host: this test is
	 * about the queue, not the timeout. */
	e.cfg->eas.cimd.fetch_timeout_ms = unit_ms(10000);
	env_start(&e);
	for (int i = 0; i < N; i++) {
		snprintf(path, sizeof path, "/q/%d.json", i);
		put_valid(path, ",\"delayMs\":200");
	}
	memset(w, 0, sizeof w);
	for (int i = 0; i < N; i++) {
		w[i].env = &e;
		snprintf(path, sizeof path, "/q/%d.json", i);
		CU_ASSERT_PTR_NOT_NULL(cimd_resolve(e.cimd, url_of(path), on_done, &w[i]));
	}
	CU_ASSERT_EQUAL(cimd_pending_count(e.cimd), N);
	run_until(&e, N, 15000);
	for (int i = 0; i < N; i++) {
		ok += w[i].called == 1 && w[i].client != NULL;
		if (w[i].called == 1 && w[i].client == NULL && ++failed <= 3)
			fprintf(stderr, "queued lookup %d failed: %s\n", i, w[i].err);
		waiter_reset(&w[i], &e);
	}
	CU_ASSERT_EQUAL(ok, N);
	CU_ASSERT_EQUAL(cimd_pending_count(e.cimd), 0);
	CU_ASSERT_EQUAL(fetch_metric("ok"), N);
	env_dispose(&e);
}

/* A queued lookup gives up after the fetch timeout. */
static void
test_queue_timeout(void)
{
	enum { NMAX = 260 };
	const int N = slots() + 4;
	struct env e;
	static struct waiter w[NMAX];
	char path[64];
	int timed_out = 0;

	if (!env_init(&e))
		return;
	e.cfg->eas.cimd.fetch_timeout_ms = 1000;
	env_start(&e);
	for (int i = 0; i < N; i++) {
		snprintf(path, sizeof path, "/qt/%d.json", i);
		put_valid(path, ",\"delayMs\":3000");
	}
	memset(w, 0, sizeof w);
	/* The queue's wait is measured on the injected clock: frozen while the
	 * lookups queue, then moved past the timeout, so the queued ones have
	 * waited long enough whether their own timer or a fetch slot freed by
	 * a timed-out fetch comes first (on a loaded host either can). */
	clock_set_fake(clock_wall_s(), clock_mono_ms());
	for (int i = 0; i < N; i++) {
		w[i].env = &e;
		snprintf(path, sizeof path, "/qt/%d.json", i);
		cimd_resolve(e.cimd, url_of(path), on_done, &w[i]);
	}
	clock_advance_fake_ms(1000);
	run_until(&e, N, 10000);
	clock_set_fake(-1, 0);
	for (int i = 0; i < N; i++) {
		timed_out += w[i].called == 1 && w[i].client == NULL &&
		    strstr(w[i].err, "timed out after 1s") != NULL;
		waiter_reset(&w[i], &e);
	}
	CU_ASSERT_EQUAL(timed_out, N);
	CU_ASSERT_EQUAL(fetch_metric("queue_timeout"), N - slots());
	env_dispose(&e);
}

static void
test_cancel(void)
{
	struct env e;
	struct waiter w[3];
	struct cimd_lookup *l[3];

	if (!env_init(&e))
		return;
	env_start(&e);
	put_valid("/cancel.json", ",\"delayMs\":300");
	memset(w, 0, sizeof w);
	for (int i = 0; i < 3; i++) {
		w[i].env = &e;
		l[i] = cimd_resolve(e.cimd, url_of("/cancel.json"), on_done, &w[i]);
		CU_ASSERT_PTR_NOT_NULL_FATAL(l[i]);
	}
	/* One requester disconnects: the others keep waiting on the shared fetch. */
	cimd_cancel(l[1]);
	CU_ASSERT_EQUAL(cimd_pending_count(e.cimd), 1);
	run_until(&e, 2, 5000);
	CU_ASSERT_EQUAL(w[0].called, 1);
	CU_ASSERT_EQUAL(w[1].called, 0);
	CU_ASSERT_EQUAL(w[2].called, 1);
	CU_ASSERT_PTR_NOT_NULL(w[0].client);
	CU_ASSERT_PTR_NOT_NULL(w[2].client);
	for (int i = 0; i < 3; i++)
		waiter_reset(&w[i], &e);

	/* Every requester disconnects: the fetch is cancelled, nobody is called. */
	put_valid("/cancel2.json", ",\"delayMs\":300");
	e.ndone = 0;
	for (int i = 0; i < 3; i++) {
		l[i] = cimd_resolve(e.cimd, url_of("/cancel2.json"), on_done, &w[i]);
		CU_ASSERT_PTR_NOT_NULL_FATAL(l[i]);
	}
	for (int i = 0; i < 3; i++)
		cimd_cancel(l[i]);
	CU_ASSERT_EQUAL(cimd_pending_count(e.cimd), 0);
	CU_ASSERT_EQUAL(fetcher_pending(e.fetcher), 0);
	CU_ASSERT_EQUAL(fetch_metric("cancelled"), 1);
	run_until(&e, 1, 600);
	CU_ASSERT_TRUE(e.timed_out);
	for (int i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(w[i].called, 0);
	CU_ASSERT_EQUAL(cimd_cache_size(e.cimd), 1);
	cimd_cancel(NULL);
	env_dispose(&e);
}

/* A done callback that cancels the next waiter of the same fetch. */
static struct cimd_lookup *cancel_next;

static void
on_done_cancel_next(struct client *client, const char *err, void *arg)
{
	on_done(client, err, arg);
	cimd_cancel(cancel_next);
	cancel_next = NULL;
}

static void
test_cancel_from_callback(void)
{
	struct env e;
	struct waiter w[2];

	if (!env_init(&e))
		return;
	env_start(&e);
	put_valid("/cb.json", NULL);
	memset(w, 0, sizeof w);
	w[0].env = w[1].env = &e;
	CU_ASSERT_PTR_NOT_NULL(
	    cimd_resolve(e.cimd, url_of("/cb.json"), on_done_cancel_next, &w[0]));
	cancel_next = cimd_resolve(e.cimd, url_of("/cb.json"), on_done, &w[1]);
	CU_ASSERT_PTR_NOT_NULL(cancel_next);
	run_until(&e, 2, 1500);
	CU_ASSERT_EQUAL(w[0].called, 1);
	CU_ASSERT_EQUAL(w[1].called, 0);
	waiter_reset(&w[0], &e);
	env_dispose(&e);
}

static void
test_timeout(void)
{
	struct env e;
	struct waiter w = { 0 };
	int64_t t0;

	if (!env_init(&e))
		return;
	e.cfg->eas.cimd.fetch_timeout_ms = 1000;
	env_start(&e);
	put_valid("/slow.json", ",\"delayMs\":2000");
	t0 = clock_mono_ms();
	resolve_one(&e, "/slow.json", &w);
	CU_ASSERT_PTR_NULL(w.client);
	CU_ASSERT_STRING_EQUAL(w.err, "client metadata document fetch timed out after 1s");
	CU_ASSERT_TRUE(clock_mono_ms() - t0 < unit_ms(1900));
	CU_ASSERT_EQUAL(fetch_metric("timeout"), 1);
	CU_ASSERT_EQUAL(cimd_cache_size(e.cimd), 0);
	waiter_reset(&w, &e);
	env_dispose(&e);
}

struct fail_case {
	const char *path;
	const char *spec; /* NULL: a valid document */
	const char *err;  /* substring */
	const char *outcome;
};

static void
test_failures(void)
{
	struct env e;
	struct waiter w = { 0 };
	char spec[1024];
	static const struct fail_case cases[] = {
		{ "/f404.json", "{\"status\":404,\"json\":{}}",
		    "client metadata document fetch failed: HTTP status 404", "bad_status" },
		{ "/fhtml.json", "{\"contentType\":\"text/html\",\"body\":\"<html>\"}",
		    "client metadata document content type text/html is not JSON", "content_type" },
		{ "/fredir.json",
		    "{\"status\":302,\"headers\":{\"Location\":\"https://127.0.0.1/x\"},"
		    "\"json\":{}}",
		    "redirect refused", "redirect_refused" },
		{ "/fbig.json", "{\"json\":{\"client_id\":\"x\"},\"oversizeBytes\":6000}",
		    "client metadata document too large (limit 5120 bytes)", "too_large" },
		{ "/fbig-chunked.json",
		    "{\"json\":{\"client_id\":\"x\"},\"oversizeBytes\":6000,"
		    "\"chunked\":true}",
		    "too large (limit 5120 bytes)", "too_large" },
		{ "/fmismatch.json",
		    "{\"json\":{\"client_id\":\"https://127.0.0.1/other.json\","
		    "\"redirect_uris\":[\"http://127.0.0.1/cb\"]}}",
		    "client_id does not match the URL", "invalid" },
		{ "/fsecret.json", NULL, "uses a shared secret", "invalid" },
		{ "/fmissing.json", "", "HTTP status 404", "bad_status" },
	};

	if (!env_init(&e))
		return;
	env_start(&e);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct fail_case *t = &cases[i];

		if (t->spec == NULL) {
			snprintf(spec, sizeof spec,
			    "{\"json\":{\"client_id\":\"%s\",\"redirect_uris\":"
			    "[\"http://127.0.0.1/cb\"],\"token_endpoint_auth_method\":"
			    "\"client_secret_basic\"}}",
			    url_of(t->path));
			put_doc(t->path, spec);
		} else if (*t->spec != '\0') {
			put_doc(t->path, t->spec);
		}
		for (int round = 0; round < 2; round++) {
			resolve_one(&e, t->path, &w);
			if (w.client != NULL || strstr(w.err, t->err) == NULL)
				fprintf(stderr, "%s: got \"%s\"\n", t->path, w.err);
			CU_ASSERT_PTR_NULL(w.client);
			CU_ASSERT_PTR_NOT_NULL(strstr(w.err, t->err));
		}
		/* Errors are never cached: the second round fetched again. */
		CU_ASSERT_EQUAL(stat_of("requests", t->path), 2);
		if (fetch_metric(t->outcome) < 1)
			fprintf(stderr, "%s: no fetch outcome %s\n", t->path, t->outcome);
		CU_ASSERT_TRUE(fetch_metric(t->outcome) >= 1);
	}
	CU_ASSERT_EQUAL(cimd_cache_size(e.cimd), 0);
	waiter_reset(&w, &e);
	env_dispose(&e);
}

static void
test_refused_before_fetch(void)
{
	struct env e;
	struct waiter w = { 0 };
	char u[512];

	if (!env_init(&e))
		return;
	/* Loopback is special-use without the development switch. */
	e.cfg->eas.cimd.insecure_allow_loopback = false;
	env_start(&e);
	put_valid("/guard.json", NULL);
	resolve_one(&e, "/guard.json", &w);
	CU_ASSERT_STRING_EQUAL(w.err, "client metadata document fetch failed: address not allowed");
	CU_ASSERT_EQUAL(stat_of("requests", "/guard.json"), 0);
	CU_ASSERT_EQUAL(fetch_metric("blocked_address"), 1);
	cimd_free(e.cimd);
	e.cfg->eas.cimd.insecure_allow_loopback = true;

	/* URL rules: answered at once, nothing fetched. */
	strlist_add(&e.cfg->eas.cimd.denied_hosts, "127.0.0.1");
	env_start(&e);
	waiter_reset(&w, &e);
	snprintf(u, sizeof u, "https://127.0.0.1:%d/", host.port);
	CU_ASSERT_PTR_NULL(cimd_resolve(e.cimd, u, on_done, &w));
	CU_ASSERT_EQUAL(w.called, 1);
	CU_ASSERT_STRING_EQUAL(w.err, "client_id URL must have a path other than /");
	waiter_reset(&w, &e);
	snprintf(u, sizeof u, "http://127.0.0.1:%d/guard.json", host.port);
	CU_ASSERT_PTR_NULL(cimd_resolve(e.cimd, u, on_done, &w));
	CU_ASSERT_STRING_EQUAL(w.err, "client_id URL must use the https scheme");
	waiter_reset(&w, &e);
	CU_ASSERT_PTR_NULL(cimd_resolve(e.cimd, url_of("/guard.json"), on_done, &w));
	CU_ASSERT_STRING_EQUAL(w.err, "client metadata document host is denied by policy");
	cimd_free(e.cimd);

	strlist_dispose(&e.cfg->eas.cimd.denied_hosts);
	strlist_add(&e.cfg->eas.cimd.allowed_hosts, "*.example.com");
	env_start(&e);
	waiter_reset(&w, &e);
	CU_ASSERT_PTR_NULL(cimd_resolve(e.cimd, url_of("/guard.json"), on_done, &w));
	CU_ASSERT_STRING_EQUAL(w.err, "client metadata document host is not in the allowed hosts");
	cimd_free(e.cimd);

	e.cfg->eas.cimd.enabled = false;
	env_start(&e);
	waiter_reset(&w, &e);
	CU_ASSERT_PTR_NULL(cimd_resolve(e.cimd, url_of("/guard.json"), on_done, &w));
	CU_ASSERT_PTR_NULL(w.client);
	CU_ASSERT_EQUAL(stat_of("requests", "/guard.json"), 0);
	waiter_reset(&w, &e);
	env_dispose(&e);
}

/* Fake clock at a fixed wall time; the loop and curl keep real time. */
#define WALL0 1700000000LL
#define MONO0 5000000LL

static void
test_ttl(void)
{
	struct env e;
	struct waiter w = { 0 };

	if (!env_init(&e))
		return;
	env_start(&e);
	clock_set_fake(WALL0, MONO0);

	/* No caching headers: cacheFallbackTtl (5m). */
	put_valid("/ttl.json", NULL);
	resolve_one(&e, "/ttl.json", &w);
	CU_ASSERT_PTR_NOT_NULL(w.client);
	clock_advance_fake_ms(5 * 60 * 1000 - 1);
	resolve_one(&e, "/ttl.json", &w);
	CU_ASSERT_EQUAL(stat_of("requests", "/ttl.json"), 1);
	clock_advance_fake_ms(2);
	resolve_one(&e, "/ttl.json", &w);
	CU_ASSERT_PTR_NOT_NULL(w.client);
	CU_ASSERT_EQUAL(stat_of("requests", "/ttl.json"), 2);
	CU_ASSERT_EQUAL(cache_metric("stale"), 1);

	/* max-age=120 minus Age 20: 100 s. */
	put_valid("/maxage.json",
	    ",\"headers\":{\"Cache-Control\":\"public, max-age=120\","
	    "\"Age\":\"20\"}");
	resolve_one(&e, "/maxage.json", &w);
	clock_advance_fake_ms(99 * 1000);
	resolve_one(&e, "/maxage.json", &w);
	CU_ASSERT_EQUAL(stat_of("requests", "/maxage.json"), 1);
	clock_advance_fake_ms(2 * 1000);
	resolve_one(&e, "/maxage.json", &w);
	CU_ASSERT_EQUAL(stat_of("requests", "/maxage.json"), 2);

	/* max-age=1 is clamped up to cacheMinTtl (30 s). */
	put_valid("/short.json", ",\"headers\":{\"Cache-Control\":\"max-age=1\"}");
	resolve_one(&e, "/short.json", &w);
	clock_advance_fake_ms(29 * 1000);
	resolve_one(&e, "/short.json", &w);
	CU_ASSERT_EQUAL(stat_of("requests", "/short.json"), 1);
	clock_advance_fake_ms(2 * 1000);
	resolve_one(&e, "/short.json", &w);
	CU_ASSERT_EQUAL(stat_of("requests", "/short.json"), 2);

	/* A year is clamped down to cacheMaxTtl (24h). */
	put_valid("/long.json", ",\"headers\":{\"Cache-Control\":\"max-age=31536000\"}");
	resolve_one(&e, "/long.json", &w);
	clock_advance_fake_ms(24LL * 3600 * 1000 - 1000);
	resolve_one(&e, "/long.json", &w);
	CU_ASSERT_EQUAL(stat_of("requests", "/long.json"), 1);
	clock_advance_fake_ms(2000);
	resolve_one(&e, "/long.json", &w);
	CU_ASSERT_EQUAL(stat_of("requests", "/long.json"), 2);

	/* Expires is judged against the response's Date, not our clock: Date
	 * ten minutes behind ours and Expires 20 minutes after Date give 20
	 * minutes (against our clock it would be 10). */
	clock_set_fake(WALL0, MONO0 + 1000LL * 1000 * 1000);
	put_valid("/expires.json",
	    ",\"headers\":{\"Date\":\"Tue, 14 Nov 2023 22:03:20 GMT\","
	    "\"Expires\":\"Tue, 14 Nov 2023 22:23:20 GMT\"}");
	resolve_one(&e, "/expires.json", &w);
	clock_advance_fake_ms(20 * 60 * 1000 - 1000);
	resolve_one(&e, "/expires.json", &w);
	CU_ASSERT_EQUAL(stat_of("requests", "/expires.json"), 1);
	clock_advance_fake_ms(2000);
	resolve_one(&e, "/expires.json", &w);
	CU_ASSERT_EQUAL(stat_of("requests", "/expires.json"), 2);

	/* no-store: used once, never cached. */
	put_valid("/nostore.json", ",\"headers\":{\"Cache-Control\":\"no-store, max-age=600\"}");
	resolve_one(&e, "/nostore.json", &w);
	CU_ASSERT_PTR_NOT_NULL(w.client);
	resolve_one(&e, "/nostore.json", &w);
	CU_ASSERT_PTR_NOT_NULL(w.client);
	CU_ASSERT_EQUAL(stat_of("requests", "/nostore.json"), 2);

	/* no-cache without a validator: refetched every time, not kept. */
	put_valid("/nocache.json", ",\"headers\":{\"Cache-Control\":\"no-cache\"}");
	resolve_one(&e, "/nocache.json", &w);
	resolve_one(&e, "/nocache.json", &w);
	CU_ASSERT_PTR_NOT_NULL(w.client);
	CU_ASSERT_EQUAL(stat_of("requests", "/nocache.json"), 2);
	waiter_reset(&w, &e);
	env_dispose(&e);
}

static void
test_revalidation(void)
{
	struct env e;
	struct waiter w = { 0 };
	struct client *first;

	if (!env_init(&e))
		return;
	env_start(&e);
	clock_set_fake(WALL0, MONO0);

	put_valid("/etag.json",
	    ",\"etag\":\"\\\"v1\\\"\",\"headers\":{\"Cache-Control\":\"max-age=60\"}");
	resolve_one(&e, "/etag.json", &w);
	CU_ASSERT_PTR_NOT_NULL_FATAL(w.client);
	first = w.client;
	client_ref(first);
	clock_advance_fake_ms(61 * 1000);
	/* Stale: a conditional request, 304, the same client refreshed unparsed. */
	resolve_one(&e, "/etag.json", &w);
	CU_ASSERT_PTR_EQUAL(w.client, first);
	CU_ASSERT_EQUAL(stat_of("requests", "/etag.json"), 2);
	CU_ASSERT_EQUAL(stat_of("notModified", "/etag.json"), 1);
	CU_ASSERT_EQUAL(cache_metric("stale"), 1);
	CU_ASSERT_EQUAL(cache_metric("revalidated"), 1);
	/* Fresh again for max-age (the 304 carried it too). */
	clock_advance_fake_ms(59 * 1000);
	resolve_one(&e, "/etag.json", &w);
	CU_ASSERT_EQUAL(stat_of("requests", "/etag.json"), 2);
	CU_ASSERT_EQUAL(cache_metric("hit"), 1);
	/* The document changed: a 200 replaces the client. */
	put_valid("/etag.json",
	    ",\"etag\":\"\\\"v2\\\"\",\"headers\":{\"Cache-Control\":\"max-age=60\"}");
	clock_advance_fake_ms(2 * 1000);
	resolve_one(&e, "/etag.json", &w);
	CU_ASSERT_PTR_NOT_NULL(w.client);
	CU_ASSERT_PTR_NOT_EQUAL(w.client, first);
	CU_ASSERT_EQUAL(stat_of("notModified", "/etag.json"), 1);
	/* The old client stays valid for whoever holds it. */
	CU_ASSERT_STRING_EQUAL(first->client_id, url_of("/etag.json"));
	client_unref(first);

	/* no-cache with Last-Modified: revalidated on every use. */
	put_valid("/lm.json",
	    ",\"lastModified\":\"Tue, 14 Nov 2023 22:13:20 GMT\","
	    "\"headers\":{\"Cache-Control\":\"no-cache\"}");
	resolve_one(&e, "/lm.json", &w);
	resolve_one(&e, "/lm.json", &w);
	resolve_one(&e, "/lm.json", &w);
	CU_ASSERT_PTR_NOT_NULL(w.client);
	CU_ASSERT_EQUAL(stat_of("requests", "/lm.json"), 3);
	CU_ASSERT_EQUAL(stat_of("notModified", "/lm.json"), 2);
	waiter_reset(&w, &e);
	env_dispose(&e);
}

static void
test_eviction(void)
{
	struct env e;
	struct waiter w = { 0 };
	struct client *held;

	if (!env_init(&e))
		return;
	e.cfg->eas.cimd.cache_max_size = 2;
	env_start(&e);
	put_valid("/e1.json", NULL);
	put_valid("/e2.json", NULL);
	put_valid("/e3.json", NULL);
	resolve_one(&e, "/e1.json", &w);
	held = w.client; /* a login in progress keeps its client */
	client_ref(held);
	resolve_one(&e, "/e2.json", &w);
	resolve_one(&e, "/e1.json", &w); /* hit: e1 most recent, e2 least */
	resolve_one(&e, "/e3.json", &w); /* evicts e2 */
	CU_ASSERT_EQUAL(cimd_cache_size(e.cimd), 2);
	CU_ASSERT_EQUAL(metrics_value(
			    metrics_counter("mcp_proxy_cimd_cache_evictions_total", "", "")),
	    1);
	resolve_one(&e, "/e1.json", &w);
	CU_ASSERT_EQUAL(stat_of("requests", "/e1.json"), 1);
	resolve_one(&e, "/e2.json", &w); /* refetched, evicts e3 */
	CU_ASSERT_EQUAL(stat_of("requests", "/e2.json"), 2);
	resolve_one(&e, "/e3.json", &w); /* refetched, evicts e1 */
	CU_ASSERT_EQUAL(stat_of("requests", "/e3.json"), 2);
	CU_ASSERT_EQUAL(held->refs, 1);
	CU_ASSERT_STRING_EQUAL(held->client_name, "Test /e1.json");
	client_unref(held);
	waiter_reset(&w, &e);
	env_dispose(&e);
}

static void
test_free_with_pending(void)
{
	struct env e;
	struct waiter w = { 0 };

	if (!env_init(&e))
		return;
	env_start(&e);
	put_valid("/pending.json", ",\"delayMs\":500");
	w.env = &e;
	CU_ASSERT_PTR_NOT_NULL(cimd_resolve(e.cimd, url_of("/pending.json"), on_done, &w));
	/* Freed with a fetch in flight: no callback, no leak. */
	env_dispose(&e);
	CU_ASSERT_EQUAL(w.called, 0);
}

static void
test_log_lines(void)
{
	struct env e;
	struct waiter w = { 0 };
	char buf[8192], *p, spec[1024];
	int fds[2], lines = 0;
	ssize_t n;

	if (!env_init(&e))
		return;
	env_start(&e);
	snprintf(spec, sizeof spec,
	    "{\"json\":{\"client_id\":\"%s\",\"client_name\":"
	    "\"SECRET-NAME\",\"redirect_uris\":[]}}",
	    url_of("/log.json"));
	put_doc("/log.json", spec);
	CU_ASSERT_EQUAL_FATAL(pipe(fds), 0);
	log_set_level(LOG_INFO);
	log_set_fd(fds[1]);
	resolve_one(&e, "/log.json", &w);
	CU_ASSERT_PTR_NOT_NULL(strstr(w.err, "redirect_uris is missing or empty"));
	waiter_reset(&w, &e);
	CU_ASSERT_PTR_NULL(cimd_resolve(e.cimd, "https://example.com/", on_done, &w));
	log_set_fd(-1);
	log_set_level(LOG_ERROR);
	close(fds[1]);
	n = read(fds[0], buf, sizeof buf - 1);
	close(fds[0]);
	buf[n > 0 ? n : 0] = '\0';
	for (p = buf; (p = strchr(p, '\n')) != NULL; p++)
		lines++;
	/* One line per failure, with host and reason; never the document. */
	CU_ASSERT_EQUAL(lines, 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\"host\":\"127.0.0.1\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\"reason\":\"client metadata document redirect_uris"));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "path other than /"));
	CU_ASSERT_PTR_NULL(strstr(buf, "SECRET-NAME"));
	if (lines != 2)
		fprintf(stderr, "log: %s\n", buf);
	waiter_reset(&w, &e);
	env_dispose(&e);
}

/* ---- jwks_uri keys (cimd_jwks) ---- */

/* test/unit/data/keys/rsa2048-pub.pem as a JWK. */
#define RSA_JWK(extra) \
	"{\"kty\":\"RSA\",\"kid\":\"r1\",\"e\":\"AQAB\",\"n\":\"" \
	"0MwFC4hDN-eaL4h_jNK3vzrY71FpPBR9v7wrFkHmKzA6GO82A9Z0l6UWTjCdKtwut_YvfL8Zcpsnr94VLpaiqxsX" \
	"M6U4nr4cMsfWpwubrz0l4BTQFnAL8D_vVd0Xq2OJxQqILSQpwbqWx2DV1dzceloVtU5J9PpUJC_WHpBcVzJ0Ua-" \
	"30tlBAKhYFTB0iYkxdXttAlF5sHyRWDqbANtGhCzpKU_WWZ92gTg0soBIDNS4I1DOo3ikLmbkwWIjgi8W0tyCfNg" \
	"A_GgHVvoZIe7Apqg5nm7bYuvrZ7GdFjraONvP5_j5GnN3C7sIsAoBp5YRUgIRJ2yVH99y38ALyG5bbQ\"" extra "}"

struct kwaiter {
	struct env *env;
	int called;
	size_t nkeys;
	bool has_r1;
	char err[256];
};

static void
on_keys(const struct keyset *ks, const char *err, void *arg)
{
	struct kwaiter *w = arg;

	w->called++;
	if (ks != NULL) {
		w->nkeys = keyset_count(ks);
		w->has_r1 = keyset_find(ks, "r1") != NULL;
	} else {
		snprintf(w->err, sizeof w->err, "%s", err != NULL ? err : "(null)");
	}
	w->env->ndone++;
	if (w->env->ndone >= w->env->target)
		event_base_loopbreak(w->env->base);
}

/* Get url's keys and run until answered; true when answered at once. */
static bool
jwks_get(struct env *e, struct cimd_jwks *j, const char *url, bool refetch, struct kwaiter *w)
{
	bool sync;

	memset(w, 0, sizeof *w);
	w->env = e;
	e->ndone = 0;
	sync = cimd_jwks_get(j, url, refetch, on_keys, w) == NULL;
	if (!sync)
		run_until(e, 1, 5000);
	CU_ASSERT_EQUAL(w->called, 1);
	return sync;
}

static double
jwks_metric(const char *name, const char *label, const char *v)
{
	return metrics_value(metrics_counter(name, "", label), v);
}

/* Fetched once, then cached per Cache-Control; a refetch at most once a
 * minute; every way a jwks_uri response can be unusable; cancelling. */
static void
test_jwks_fetch_cache_refetch(void)
{
	struct env e;
	struct kwaiter w;
	struct cimd_jwks *j;
	struct cimd_jwks_lookup *l;
	char spec[2048];

	if (!env_init(&e))
		return;
	env_start(&e);
	clock_set_fake(WALL0, MONO0);
	j = cimd_jwks_new(e.fetcher, e.cfg);
	snprintf(spec, sizeof spec,
	    "{\"json\":{\"keys\":[" RSA_JWK("") "]},\"headers\":{\"Cache-Control\":\"max-age=300\"}}");
	put_doc("/jwks.json", spec);
	CU_ASSERT_FALSE(jwks_get(&e, j, url_of("/jwks.json"), false, &w));
	CU_ASSERT_EQUAL(w.nkeys, 1);
	CU_ASSERT_TRUE(w.has_r1);
	CU_ASSERT_EQUAL(stat_of("requests", "/jwks.json"), 1);
	/* Cached: answered at once, nothing fetched. */
	CU_ASSERT_TRUE(jwks_get(&e, j, url_of("/jwks.json"), false, &w));
	CU_ASSERT_TRUE(w.has_r1);
	CU_ASSERT_EQUAL(stat_of("requests", "/jwks.json"), 1);
	CU_ASSERT_EQUAL(jwks_metric("mcp_proxy_cimd_jwks_cache_total", "result", "hit"), 1);
	/* An unknown kid: one refetch, then none for a minute. */
	CU_ASSERT_FALSE(jwks_get(&e, j, url_of("/jwks.json"), true, &w));
	CU_ASSERT_TRUE(w.has_r1);
	CU_ASSERT_EQUAL(stat_of("requests", "/jwks.json"), 2);
	CU_ASSERT_TRUE(jwks_get(&e, j, url_of("/jwks.json"), true, &w));
	CU_ASSERT_EQUAL(w.nkeys, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(w.err, "jwks_uri was refetched less than 60 s ago"));
	clock_advance_fake_ms(60 * 1000 - 1);
	CU_ASSERT_TRUE(jwks_get(&e, j, url_of("/jwks.json"), true, &w));
	CU_ASSERT_EQUAL(stat_of("requests", "/jwks.json"), 2);
	clock_advance_fake_ms(1);
	CU_ASSERT_FALSE(jwks_get(&e, j, url_of("/jwks.json"), true, &w));
	CU_ASSERT_TRUE(w.has_r1);
	CU_ASSERT_EQUAL(stat_of("requests", "/jwks.json"), 3);
	CU_ASSERT_EQUAL(jwks_metric("mcp_proxy_cimd_jwks_cache_total", "result", "refetch_limited"),
	    2);
	/* max-age=300 from the last fetch. */
	clock_advance_fake_ms(300 * 1000 - 1);
	CU_ASSERT_TRUE(jwks_get(&e, j, url_of("/jwks.json"), false, &w));
	clock_advance_fake_ms(1);
	CU_ASSERT_FALSE(jwks_get(&e, j, url_of("/jwks.json"), false, &w));
	CU_ASSERT_EQUAL(stat_of("requests", "/jwks.json"), 4);
	CU_ASSERT_EQUAL(cimd_jwks_cache_size(j), 1);

	/* no-store: used once, fetched again the next time. */
	snprintf(spec, sizeof spec,
	    "{\"json\":{\"keys\":[" RSA_JWK("") "]},\"headers\":{\"Cache-Control\":\"no-store\"}}");
	put_doc("/jwks-nostore.json", spec);
	CU_ASSERT_FALSE(jwks_get(&e, j, url_of("/jwks-nostore.json"), false, &w));
	CU_ASSERT_TRUE(w.has_r1);
	CU_ASSERT_FALSE(jwks_get(&e, j, url_of("/jwks-nostore.json"), false, &w));
	CU_ASSERT_EQUAL(stat_of("requests", "/jwks-nostore.json"), 2);

	/* Unusable responses, never cached. */
	put_doc("/jwks-priv.json", "{\"json\":{\"keys\":[" RSA_JWK(",\"d\":\"AAAA\"") "]}}");
	jwks_get(&e, j, url_of("/jwks-priv.json"), false, &w);
	CU_ASSERT_PTR_NOT_NULL(strstr(w.err,
	    "jwks_uri document contains private key material (a JWK with \"d\")"));
	put_doc("/jwks-oct.json", "{\"json\":{\"keys\":[{\"kty\":\"oct\",\"k\":\"AAAA\"}]}}");
	jwks_get(&e, j, url_of("/jwks-oct.json"), false, &w);
	CU_ASSERT_PTR_NOT_NULL(strstr(w.err, "jwks_uri document contains a symmetric key"));
	put_doc("/jwks-empty.json", "{\"json\":{\"keys\":[]}}");
	jwks_get(&e, j, url_of("/jwks-empty.json"), false, &w);
	CU_ASSERT_PTR_NOT_NULL(strstr(w.err, "jwks_uri document is not usable"));
	put_doc("/jwks-html.json", "{\"contentType\":\"text/html\",\"body\":\"<html>\"}");
	jwks_get(&e, j, url_of("/jwks-html.json"), false, &w);
	CU_ASSERT_PTR_NOT_NULL(strstr(w.err, "jwks_uri document content type text/html is not JSON"));
	put_doc("/jwks-big.json", "{\"json\":{\"keys\":[]},\"oversizeBytes\":70000}");
	jwks_get(&e, j, url_of("/jwks-big.json"), false, &w);
	CU_ASSERT_PTR_NOT_NULL(strstr(w.err, "jwks_uri document too large (limit 65536 bytes)"));
	put_doc("/jwks-redir.json",
	    "{\"status\":302,\"headers\":{\"Location\":\"https://127.0.0.1/x\"},\"json\":{}}");
	jwks_get(&e, j, url_of("/jwks-redir.json"), false, &w);
	CU_ASSERT_PTR_NOT_NULL(strstr(w.err, "redirect refused"));
	jwks_get(&e, j, url_of("/jwks-missing.json"), false, &w);
	CU_ASSERT_PTR_NOT_NULL(strstr(w.err, "jwks_uri fetch failed: HTTP status 404"));
	CU_ASSERT_EQUAL(jwks_metric("mcp_proxy_cimd_jwks_fetch_total", "outcome", "invalid"), 3);

	/* Cancelled: no callback, the shared fetch goes with its last waiter;
	 * one left pending is dropped by cimd_jwks_free. */
	put_doc("/jwks-slow.json", "{\"json\":{\"keys\":[]},\"delayMs\":300}");
	memset(&w, 0, sizeof w);
	w.env = &e;
	l = cimd_jwks_get(j, url_of("/jwks-slow.json"), false, on_keys, &w);
	CU_ASSERT_PTR_NOT_NULL_FATAL(l);
	cimd_jwks_cancel(l);
	e.ndone = 0;
	run_until(&e, 1, 600);
	CU_ASSERT_EQUAL(w.called, 0);
	CU_ASSERT_PTR_NOT_NULL(cimd_jwks_get(j, url_of("/jwks-slow.json"), false, on_keys, &w));
	cimd_jwks_free(j);
	CU_ASSERT_EQUAL(w.called, 0);
	env_dispose(&e);
}

/* Revalidation, as for documents: a stale entry with an ETag is asked for
 * with If-None-Match and a 304 keeps its keys (fresh again for the 304's
 * max-age); a new ETag replaces them; no-cache with a validator is asked
 * again on every use; a refetch for an unknown kid is unconditional. */
static void
test_jwks_revalidate(void)
{
	const char *cache = "mcp_proxy_cimd_jwks_cache_total";
	char big[300], spec[4096];
	struct env e;
	struct kwaiter w;
	struct cimd_jwks *j;

	if (!env_init(&e))
		return;
	env_start(&e);
	clock_set_fake(WALL0, MONO0);
	j = cimd_jwks_new(e.fetcher, e.cfg);
	put_doc("/jwks-etag.json",
	    "{\"json\":{\"keys\":[" RSA_JWK("") "]},\"etag\":\"\\\"k1\\\"\","
	    "\"headers\":{\"Cache-Control\":\"max-age=60\"}}");
	CU_ASSERT_FALSE(jwks_get(&e, j, url_of("/jwks-etag.json"), false, &w));
	CU_ASSERT_TRUE(w.has_r1);
	clock_advance_fake_ms(61 * 1000);
	/* Stale: conditional, 304, the same keys. */
	CU_ASSERT_FALSE(jwks_get(&e, j, url_of("/jwks-etag.json"), false, &w));
	CU_ASSERT_TRUE(w.has_r1);
	CU_ASSERT_EQUAL(stat_of("requests", "/jwks-etag.json"), 2);
	CU_ASSERT_EQUAL(stat_of("notModified", "/jwks-etag.json"), 1);
	CU_ASSERT_EQUAL(jwks_metric(cache, "result", "stale"), 1);
	CU_ASSERT_EQUAL(jwks_metric(cache, "result", "revalidated"), 1);
	/* Fresh again for the 304's max-age. */
	clock_advance_fake_ms(59 * 1000);
	CU_ASSERT_TRUE(jwks_get(&e, j, url_of("/jwks-etag.json"), false, &w));
	CU_ASSERT_EQUAL(stat_of("requests", "/jwks-etag.json"), 2);
	/* A refetch (an unknown kid) asks without validators: a 200. */
	CU_ASSERT_FALSE(jwks_get(&e, j, url_of("/jwks-etag.json"), true, &w));
	CU_ASSERT_TRUE(w.has_r1);
	CU_ASSERT_EQUAL(stat_of("requests", "/jwks-etag.json"), 3);
	CU_ASSERT_EQUAL(stat_of("notModified", "/jwks-etag.json"), 1);
	/* Changed (a new ETag): stale, asked, answered whole (200), kept anew. */
	put_doc("/jwks-etag.json",
	    "{\"json\":{\"keys\":[" RSA_JWK(",\"use\":\"sig\"") "]},\"etag\":\"\\\"k2\\\"\","
	    "\"headers\":{\"Cache-Control\":\"max-age=60\"}}");
	clock_advance_fake_ms(61 * 1000);
	CU_ASSERT_FALSE(jwks_get(&e, j, url_of("/jwks-etag.json"), false, &w));
	CU_ASSERT_TRUE(w.has_r1);
	CU_ASSERT_EQUAL(stat_of("requests", "/jwks-etag.json"), 4);
	CU_ASSERT_EQUAL(stat_of("notModified", "/jwks-etag.json"), 1);
	CU_ASSERT_TRUE(jwks_get(&e, j, url_of("/jwks-etag.json"), false, &w));
	CU_ASSERT_EQUAL(stat_of("requests", "/jwks-etag.json"), 4);

	/* no-cache with an ETag: kept, and revalidated on every use. */
	put_doc("/jwks-nocache.json",
	    "{\"json\":{\"keys\":[" RSA_JWK("") "]},\"etag\":\"\\\"n1\\\"\","
	    "\"headers\":{\"Cache-Control\":\"no-cache\"}}");
	CU_ASSERT_FALSE(jwks_get(&e, j, url_of("/jwks-nocache.json"), false, &w));
	CU_ASSERT_FALSE(jwks_get(&e, j, url_of("/jwks-nocache.json"), false, &w));
	CU_ASSERT_TRUE(w.has_r1);
	CU_ASSERT_FALSE(jwks_get(&e, j, url_of("/jwks-nocache.json"), false, &w));
	CU_ASSERT_TRUE(w.has_r1);
	CU_ASSERT_EQUAL(stat_of("requests", "/jwks-nocache.json"), 3);
	CU_ASSERT_EQUAL(stat_of("notModified", "/jwks-nocache.json"), 2);
	/* no-cache without a validator: not kept, a full fetch every time. */
	put_doc("/jwks-nocache2.json",
	    "{\"json\":{\"keys\":[" RSA_JWK("") "]},\"headers\":{\"Cache-Control\":\"no-cache\"}}");
	CU_ASSERT_FALSE(jwks_get(&e, j, url_of("/jwks-nocache2.json"), false, &w));
	CU_ASSERT_FALSE(jwks_get(&e, j, url_of("/jwks-nocache2.json"), false, &w));
	CU_ASSERT_TRUE(w.has_r1);
	CU_ASSERT_EQUAL(stat_of("requests", "/jwks-nocache2.json"), 2);
	CU_ASSERT_EQUAL(stat_of("notModified", "/jwks-nocache2.json"), 0);
	/* nor with an ETag too long to send back (more than 256 characters) */
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	snprintf(spec, sizeof spec,
	    "{\"json\":{\"keys\":[" RSA_JWK("") "]},\"etag\":\"%s\","
	    "\"headers\":{\"Cache-Control\":\"no-cache\"}}",
	    big);
	put_doc("/jwks-nocache3.json", spec);
	CU_ASSERT_FALSE(jwks_get(&e, j, url_of("/jwks-nocache3.json"), false, &w));
	CU_ASSERT_FALSE(jwks_get(&e, j, url_of("/jwks-nocache3.json"), false, &w));
	CU_ASSERT_TRUE(w.has_r1);
	CU_ASSERT_EQUAL(stat_of("requests", "/jwks-nocache3.json"), 2);
	CU_ASSERT_EQUAL(stat_of("notModified", "/jwks-nocache3.json"), 0);
	cimd_jwks_free(j);
	env_dispose(&e);
}

/* With the guard on, a jwks_uri on loopback in disguise is refused on the
 * address it resolves to, and the host sees no connection at all. */
static void
test_jwks_ssrf_guard(void)
{
	static const char *const hosts[] = { "127.1", "2130706433", "0x7f000001",
		"[::ffff:127.0.0.1]", "localhost" };
	struct env e;
	struct kwaiter w;
	struct cimd_jwks *j;
	char url[256], *r;

	if (!env_init(&e))
		return;
	e.cfg->eas.cimd.insecure_allow_loopback = false;
	env_start(&e);
	put_doc("/jwks.json", "{\"json\":{\"keys\":[" RSA_JWK("") "]}}");
	r = control("POST", "/reset", NULL);
	free(r);
	j = cimd_jwks_new(e.fetcher, e.cfg);
	for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++) {
		snprintf(url, sizeof url, "https://%s:%d/jwks.json", hosts[i], host.port);
		jwks_get(&e, j, url, false, &w);
		if (strstr(w.err, "address not allowed") == NULL)
			fprintf(stderr, "%s: \"%s\"\n", url, w.err);
		CU_ASSERT_PTR_NOT_NULL(strstr(w.err, "jwks_uri fetch failed: address not allowed"));
	}
	CU_ASSERT_EQUAL(stat_of("connections", "https"), 0);
	CU_ASSERT_EQUAL(stat_of("requests", "/jwks.json"), 0);
	CU_ASSERT_EQUAL(cimd_jwks_cache_size(j), 0);
	cimd_jwks_free(j);
	env_dispose(&e);
}

static const struct unit_test tests[] = {
	{ "resolve ok then hit", test_resolve_ok_then_hit },
	{ "coalescing 50 to 1", test_coalescing },
	{ "300 documents queue beyond 256 fetch slots", test_queue_beyond_slots },
	{ "a queued lookup times out", test_queue_timeout },
	{ "cancel waiters", test_cancel },
	{ "cancel from a callback", test_cancel_from_callback },
	{ "timeout", test_timeout },
	{ "fetch and document failures", test_failures },
	{ "refused before fetch", test_refused_before_fetch },
	{ "ttl and cache-control", test_ttl },
	{ "revalidation", test_revalidation },
	{ "eviction", test_eviction },
	{ "free with pending", test_free_with_pending },
	{ "log lines", test_log_lines },
	{ "jwks_uri: fetch, cache, refetch, failures", test_jwks_fetch_cache_refetch },
	{ "jwks_uri: revalidation", test_jwks_revalidate },
	{ "jwks_uri: the address guard", test_jwks_ssrf_guard },
	{ NULL, NULL },
};

int
main(void)
{
	int rc;

	signal(SIGPIPE, SIG_IGN);
	log_set_level(LOG_ERROR);
	rc = unit_run("cimd", tests);
	host_stop();
	return rc;
}
