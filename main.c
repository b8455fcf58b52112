/*
 * mcp-proxy-runner: the process. Parses the command line, loads the
 * configuration, builds the loop services (server, fetcher, auth) and runs
 * one libevent loop until SIGTERM/SIGINT has drained the server. All work
 * happens on the loop; signals only schedule it.
 */
#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/xalloc.h"
#include "common/xevent.h"
#include "auth/as/as.h"
#include "auth/guard/guard.h"
#include "auth/guard/prm.h"
#include "auth/idp/upstream.h"
#include "auth/policy/policy.h"
#include "config/config.h"
#include "proxy/fetch.h"
#include "proxy/forward.h"
#include "proxy/log.h"
#include "proxy/metrics.h"
#include "proxy/server.h"

#define DEFAULT_CONFIG_PATH "/etc/mcp-proxy/config.yaml"

static const char usage[] =
    "Usage: mcp-proxy-runner [OPTIONS]\n"
    "\n"
    "An MCP reverse proxy sidecar with an embedded OAuth 2.1 authorization server\n"
    "(CIMD and dynamic client registration) that checks every MCP request's token.\n"
    "\n"
    "Options:\n"
    "  -c, --config PATH        configuration file, YAML or JSON (default: $MCP_PROXY_CONFIG,\n"
    "                           else " DEFAULT_CONFIG_PATH " when it exists)\n"
    "      --check-config       validate the configuration and exit (0 = valid, 2 = invalid)\n"
    "      --print-config       print the effective configuration, secrets redacted, and exit\n"
    "      --print-settings-doc print the settings reference (markdown) and exit\n"
    "  -h, --help               show this help and exit\n"
    "  -V, --version            show the version and exit\n"
    "\n"
    "Every scalar setting can also be set with an environment variable: MCP_PROXY_ plus\n"
    "the key path in upper case with dots as underscores (MCP_PROXY_BACKEND_URL,\n"
    "MCP_PROXY_EMBEDDEDAUTHSERVER_CIMD_ENABLED); the environment wins over the file.\n"
    "Secrets come from secretRef {name, key} files under secretsDir\n"
    "(MCP_PROXY_SECRETS_DIR, default /etc/mcp-proxy/secrets) or {env: VAR}.\n"
    "With server.peerListen, MCP sessions work across replicas (POD_IP names this one).\n"
    "\n"
    "Exit status: 0 on a clean shutdown, 1 on a runtime failure, 2 on bad usage or config.\n";

struct app {
	struct event_base *base;
	struct config *cfg;
	struct server *srv;
	struct forwarder *fw;
	struct fetcher *fetcher;
	struct as *as;
	struct prm *prm;
	struct guard *guard;
	struct policy *policy; /* between guard and forwarder, with authorization rules */
	struct event *sig_term;
	struct event *sig_int;
	int signals;
};

static void
app_stopped(void *arg)
{
	struct app *app = arg;

	log_info("stopped");
	event_base_loopexit(app->base, NULL);
}

static void
app_on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct app *app = arg;

	if (++app->signals > 1) {
		log_warn("second signal: exiting without waiting for requests",
		    LOG_I("signal", sig));
		event_base_loopbreak(app->base);
		return;
	}
	log_info("shutting down", LOG_I("signal", sig));
	server_shutdown(app->srv, app_stopped, app);
}

/* The guard's view of the embedded AS (auth/guard.h struct guard_as_ops). */
static const char *
app_as_issuer(void *as)
{
	return as_issuer(as);
}

static const struct keyset *
app_as_keyset(void *as)
{
	return as_keyset(as);
}

static bool
app_as_revoked(void *as, const char *jti)
{
	return as_token_revoked(as, jti);
}

static struct store *
app_as_store(void *as)
{
	return as_store(as);
}

static void *
app_as_upstream_refresh(void *as, const char *refresh_token, guard_refresh_done_cb done, void *arg)
{
	return upstream_refresh(as_upstream(as), refresh_token, done, arg);
}

static void
app_as_upstream_cancel(void *op)
{
	upstream_cancel(op);
}

static const char *
app_getenv(const char *name)
{
	return getenv(name);
}

/* Choose the config file: --config, $MCP_PROXY_CONFIG, or the default path
 * when present (a shell run without a file uses defaults and env). */
static const char *
app_config_path(const char *flag)
{
	const char *env = getenv("MCP_PROXY_CONFIG");
	struct stat st;

	if (flag != NULL)
		return flag;
	if (env != NULL && *env != '\0')
		return env;
	if (stat(DEFAULT_CONFIG_PATH, &st) == 0)
		return DEFAULT_CONFIG_PATH;
	return NULL;
}

static int
app_load_config(struct config *cfg, const char *path)
{
	struct config_errors errs = { 0 };
	int rc;

	rc = config_load(cfg, path, app_getenv, &errs);
	for (size_t i = 0; i < errs.n; i++) {
		char *line = config_error_line(&errs.v[i]);

		fprintf(stderr, "mcp-proxy-runner: config: %s\n", line);
		free(line);
	}
	config_errors_dispose(&errs);
	return rc;
}

/* What the command line asked for. */
struct app_args {
	const char *config_flag;
	bool check, print;
};

/* Parse the options: 0 to go on, or an exit status (> 0, or 0 for -h/-V)
 * in *status with 1 returned. */
static int
app_parse_args(int argc, char **argv, struct app_args *args, int *status)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "print-config", no_argument, NULL, 'P' },
		{ "print-settings-doc", no_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	*status = 0;
	while ((ch = getopt_long(argc, argv, "c:hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			args->config_flag = optarg;
			break;
		case 'C':
			args->check = true;
			break;
		case 'P':
			args->print = true;
			break;
		case 'D':
			config_print_docs(stdout);
			return 1;
		case 'h':
			fputs(usage, stdout);
			return 1;
		case 'V':
			printf("mcp-proxy-runner %s\n", MCP_VERSION);
			return 1;
		default:
			fputs(usage, stderr);
			*status = 2;
			return 1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "mcp-proxy-runner: unexpected argument \"%s\"\n%s", argv[optind],
		    usage);
		*status = 2;
		return 1;
	}
	return 0;
}

/* The event loop, coalescing epoll interest changes per loop turn (the
 * backend's connect path and idle pool still toggle them); NULL logged. */
static struct event_base *
app_new_base(void)
{
	struct event_config *ec = event_config_new();
	struct event_base *base = NULL;

	if (ec != NULL) {
		event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
		base = event_base_new_with_config(ec);
		event_config_free(ec);
	}
	if (base == NULL)
		log_error("cannot create the event loop");
	return base;
}

/* Say so when a development-only setting is on. */
static void
app_warn_insecure(const struct config *cfg)
{
	if (cfg->eas.cimd.enabled && cfg->eas.cimd.insecure_allow_loopback)
		log_warn("embeddedAuthServer.cimd.insecureAllowLoopback is on: client metadata "
			 "documents may be fetched from loopback addresses; development only");
	if (cfg->eas.insecure_allow_http)
		log_warn("embeddedAuthServer.insecureAllowHTTP is on: http issuer and upstream IdP "
			 "URLs are accepted; development only");
	if (cfg->auth.mode == AUTH_MODE_NONE)
		log_warn("auth.mode is none: MCP requests are forwarded WITHOUT any token check; "
			 "use this for local development only");
}

/* Say which settings were derived rather than set (one line each). */
static void
app_log_derived(const struct config *cfg)
{
	if (cfg->server.resource_url_derived)
		log_info("server.resourceUrl derived from embeddedAuthServer.issuer",
		    LOG_S("resourceUrl", cfg->server.resource_url),
		    LOG_S("issuer", cfg->eas.issuer),
		    LOG_S("hint",
			"set server.resourceUrl (MCP_PROXY_SERVER_RESOURCEURL) when "
			"clients use another URL"));
}

/* server.peerAddress derived from POD_IP with a peerListen port of 0: the
 * port is the one bound (tests; a pod names its port). The forwarder seals
 * this address into session ids, so it is fixed before the forwarder is
 * made. */
static void
app_peer_address(struct app *app)
{
	struct config *cfg = app->cfg;
	size_t n;

	if (cfg->server.peer_address == NULL || !cfg->server.peer_address_derived)
		return;
	n = strlen(cfg->server.peer_address);
	if (n < 2 || strcmp(cfg->server.peer_address + n - 2, ":0") != 0)
		return;
	cfg->server.peer_address[n - 2] = '\0';
	{
		char *addr = xasprintf("%s:%d", cfg->server.peer_address,
		    server_port(app->srv, SERVER_PEER));

		free(cfg->server.peer_address);
		cfg->server.peer_address = addr;
	}
}

/* The loop services: the loop, the front end (listening), the fetcher. */
static int
app_build_services(struct app *app)
{
	char err[256];

	if (fetcher_check_async_dns(err, sizeof err) != 0) {
		log_error("cannot start", LOG_S("error", err));
		return -1;
	}
	if ((app->base = app_new_base()) == NULL)
		return -1;
	/* From here on the loop never waits for stderr (lines are queued). */
	log_attach(app->base, (size_t)app->cfg->server.log_queue_size);
	app->srv = server_new(app->base, app->cfg);
	if (server_listen(app->srv, err, sizeof err) != 0) {
		log_error("cannot start", LOG_S("error", err));
		return -1;
	}
	app_peer_address(app);
	if (app->cfg->server.peer_listen != NULL)
		log_info("sessions across replicas: session ids are sealed with this replica's "
			 "peer "
			 "address",
		    LOG_S("peer_address", app->cfg->server.peer_address));
	app->fetcher = fetcher_new(app->base, app->cfg->outbound.ca_file);
	if (app->fetcher == NULL) {
		log_error("cannot start the outbound HTTP client (libcurl multi)");
		return -1;
	}
	return 0;
}

/* The MCP chain (the guard or the policy, then the forwarder) as what
 * no route claims; with sessions across replicas behind the forwarder's
 * front, which finds first whether the session is another replica's. */
static void
app_mount_mcp(struct app *app, req_handler_fn fn, void *arg, req_head_fn head, void *head_arg)
{
	if (forwarder_set_front(app->fw, fn, arg, head, head_arg)) {
		fn = forward_front_handler;
		arg = app->fw;
		if (head != NULL) {
			head = forward_front_head;
			head_arg = app->fw;
		}
	}
	server_set_fallback(app->srv, "mcp", fn, arg);
	if (head != NULL)
		server_set_fallback_opts(app->srv,
		    &(struct req_route_opts){ .head = head, .head_arg = head_arg });
}

/* The rooms above them, wired: the AS and the RFC 9728 document mount
 * their routes on the MCP listener; what no route claims goes to the guard,
 * which passes allowed requests to the forwarder (or straight to the
 * forwarder without auth). */
static int
app_build_rooms(struct app *app)
{
	const struct config *cfg = app->cfg;
	struct req_router router = server_router(app->srv, SERVER_MCP);
	struct guard_as_ops ops = { .as = NULL,
		.issuer = app_as_issuer,
		.keyset = app_as_keyset,
		.token_revoked = app_as_revoked,
		.store = app_as_store,
		.upstream_refresh = app_as_upstream_refresh,
		.upstream_cancel = app_as_upstream_cancel };
	char err[256];

	if (cfg->auth.mode == AUTH_MODE_EMBEDDED) {
		app->as = as_new(app->base, server_dns(app->srv), cfg, &router, app->fetcher, err,
		    sizeof err);
		if (app->as == NULL) {
			log_error("cannot start the authorization server", LOG_S("error", err));
			return -1;
		}
		server_add_health(app->srv, "storage", as_storage_health, app->as);
	}
	app->fw = forwarder_new(app->base, server_dns(app->srv), cfg);
	if (cfg->auth.mode != AUTH_MODE_NONE && (app->prm = prm_new(cfg)) == NULL) {
		log_error("cannot serve protected resource metadata: bad server.resourceUrl");
		return -1;
	}
	if (cfg->authz.present) {
		app->policy = policy_new(app->base, cfg, forward_pass, app->fw,
		    app->prm != NULL ? prm_metadata_url(app->prm) : NULL, err, sizeof err);
		if (app->policy == NULL) {
			log_error("cannot start the MCP authorization", LOG_S("error", err));
			return -1;
		}
	}
	if (cfg->auth.mode == AUTH_MODE_NONE) {
		if (app->policy != NULL)
			app_mount_mcp(app, policy_handler, app->policy, NULL, NULL);
		else
			server_set_fallback(app->srv, "mcp", forward_handler, app->fw);
		return 0;
	}
	prm_register(app->prm, &router);
	ops.as = app->as;
	app->guard = guard_new(app->base, cfg, app->policy != NULL ? policy_pass : forward_pass,
	    app->policy != NULL ? (void *)app->policy : app->fw, app->fetcher, app->prm,
	    app->as != NULL ? &ops : NULL, err, sizeof err);
	if (app->guard == NULL) {
		log_error("cannot start the bearer guard", LOG_S("error", err));
		return -1;
	}
	/* No body is read before the guard has seen the token. */
	app_mount_mcp(app, guard_handler, app->guard, guard_head, app->guard);
	return 0;
}

/* Run the loop until the drain after SIGTERM/SIGINT ends it. */
static int
app_run(struct app *app, const char *path)
{
	app->sig_term = xevsignal_new(app->base, SIGTERM, app_on_signal, app);
	app->sig_int = xevsignal_new(app->base, SIGINT, app_on_signal, app);
	evsignal_add(app->sig_term, NULL);
	evsignal_add(app->sig_int, NULL);
	log_info("started", LOG_S("version", MCP_VERSION), LOG_S("config", path ? path : "(none)"),
	    LOG_S("backend", app->cfg->backend.url));
	if (event_base_dispatch(app->base) < 0) {
		log_error("event loop failed");
		return -1;
	}
	return 0;
}

/* Free everything, in this order: the server's abort callbacks may cancel
 * AS work; the AS cancels its fetches; only then can the fetcher go. */
static void
app_teardown(struct app *app)
{
	if (app->sig_term != NULL)
		event_free(app->sig_term);
	if (app->sig_int != NULL)
		event_free(app->sig_int);
	guard_free(app->guard);
	server_free(app->srv);
	policy_free(app->policy);
	as_free(app->as);
	prm_free(app->prm);
	forwarder_free(app->fw);
	fetcher_free(app->fetcher);
	/* The lines still queued get a second to reach stderr. */
	log_detach(1000);
	if (app->base != NULL)
		event_base_free(app->base);
	metrics_reset();
	config_free(app->cfg);
}

int
main(int argc, char **argv)
{
	struct app_args args = { 0 };
	struct app app = { 0 };
	const char *path;
	int rc = 1;

	if (app_parse_args(argc, argv, &args, &rc) != 0)
		return rc;
	path = app_config_path(args.config_flag);
	app.cfg = config_new();
	if (app_load_config(app.cfg, path) != 0) {
		config_free(app.cfg);
		return 2;
	}
	if (args.print || args.check) {
		if (args.print)
			config_print(app.cfg, stdout);
		else
			printf("configuration OK%s%s\n",
			    path ? ": " : " (defaults and environment)", path ? path : "");
		config_free(app.cfg);
		return 0;
	}
	if (log_set_level_name(app.cfg->server.log_level) != 0)
		log_set_level(LOG_INFO);
	signal(SIGPIPE, SIG_IGN);
	app_warn_insecure(app.cfg);
	app_log_derived(app.cfg);
	rc = 1;
	if (app_build_services(&app) == 0 && app_build_rooms(&app) == 0 && app_run(&app, path) == 0)
		rc = 0;
	app_teardown(&app);
	return rc;
}
