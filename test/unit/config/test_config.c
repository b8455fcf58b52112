/*
 * Unit tests of config/: value formats, the loader's located errors (all
 * of them, not the first), env precedence, secret resolution and
 * redaction, the seed's manifests, JSON input, print round trip and the
 * README settings table staying equal to config_print_docs().
 */
#include "config/config.h"

#include "common/xalloc.h"
#include "test/unit/unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DATA "test/unit/data/config/"

/* The injectable environment: NAME=value pairs, NULL-terminated. */
static const char *fake_env[32];

static const char *
fake_getenv(const char *name)
{
	size_t len = strlen(name);

	for (size_t i = 0; fake_env[i] != NULL; i++) {
		if (strncmp(fake_env[i], name, len) == 0 && fake_env[i][len] == '=')
			return fake_env[i] + len + 1;
	}
	return NULL;
}

static const char *
source_dir(void)
{
	const char *d = getenv("MCP_SOURCE_DIR");

	return d != NULL ? d : ".";
}

static char secrets_env[4096];

/* Reset the fake environment to: secretsDir fixture + resource URL + extra. */
static void
env_set(const char *a, const char *b, const char *c)
{
	size_t i = 0;

	snprintf(secrets_env, sizeof secrets_env, "MCP_PROXY_SECRETS_DIR=%s/" DATA "secrets",
	    source_dir());
	memset(fake_env, 0, sizeof fake_env);
	fake_env[i++] = secrets_env;
	fake_env[i++] = "MCP_PROXY_SERVER_RESOURCEURL=https://mcp.example.com/mcp";
	if (a != NULL)
		fake_env[i++] = a;
	if (b != NULL)
		fake_env[i++] = b;
	if (c != NULL)
		fake_env[i++] = c;
}

static char *
data_path(const char *name)
{
	return xasprintf("%s/" DATA "%s", source_dir(), name);
}

/* All error lines joined with newlines. */
static char *
errs_join(const struct config_errors *errs)
{
	char *all = xstrdup(""), *line, *next;

	for (size_t i = 0; i < errs->n; i++) {
		line = config_error_line(&errs->v[i]);
		next = xasprintf("%s%s\n", all, line);
		free(line);
		free(all);
		all = next;
	}
	return all;
}

static int
load_path(const char *path, struct config **out, char **lines)
{
	struct config_errors errs = { NULL, 0 };
	int rc;

	*out = config_new();
	rc = config_load(*out, path, fake_getenv, &errs);
	*lines = errs_join(&errs);
	config_errors_dispose(&errs);
	return rc;
}

/* Write text to <tmpdir>/config.yaml and load it. */
static int
load_text(const char *text, struct config **out, char **lines)
{
	char dir[] = "/tmp/mcpcfgXXXXXX", *path;
	FILE *f;
	int rc;

	CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
	path = xasprintf("%s/config.yaml", dir);
	f = fopen(path, "w");
	CU_ASSERT_FATAL(f != NULL);
	fputs(text, f);
	fclose(f);
	rc = load_path(path, out, lines);
	unlink(path);
	rmdir(dir);
	free(path);
	return rc;
}

static char *
print_to_string(const struct config *cfg)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	config_print(cfg, f);
	fclose(f);
	return buf;
}

/* A minimal valid embedded config; tests append or replace pieces. */
#define PROVIDER \
	"  upstreamProviders:\n" \
	"    - name: gh\n" \
	"      type: oidc\n" \
	"      oidcConfig:\n" \
	"        issuerUrl: https://github.com\n" \
	"        clientId: abc\n"
#define MINIMAL "embeddedAuthServer:\n  issuer: https://auth.example.com\n" PROVIDER

static void
test_durations(void)
{
	static const struct {
		const char *s;
		int ok;
		int64_t ms;
	} cases[] = {
		{ "5m", 1, 300000 },
		{ "1h30m", 1, 5400000 },
		{ "500ms", 1, 500 },
		{ "10s", 1, 10000 },
		{ "1.5h", 1, 5400000 },
		{ "0", 1, 0 },
		{ "0s", 1, 0 },
		{ "2d", 1, 172800000 },
		{ "1m0.5s", 1, 60500 },
		{ "1500us", 1, 1 },
		{ "3000000ns", 1, 3 },
		{ ".5s", 1, 500 },
		{ "", 0, 0 },
		{ "5", 0, 0 },
		{ "-1s", 0, 0 },
		{ "+1s", 0, 0 },
		{ "5x", 0, 0 },
		{ "1h 30m", 0, 0 },
		{ " 5m", 0, 0 },
		{ "m", 0, 0 },
		{ "1.s5", 0, 0 },
		{ "99999999999999999999h", 0, 0 },
		{ "3000000h", 0, 0 },
		{ "10s!", 0, 0 },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int64_t ms = -42;
		int rc = config_parse_duration(cases[i].s, &ms);
		if ((rc == 0) != cases[i].ok)
			fprintf(stderr, "duration %s: rc %d\n", cases[i].s, rc);
		CU_ASSERT_EQUAL(rc == 0, cases[i].ok);
		if (cases[i].ok)
			CU_ASSERT_EQUAL(ms, cases[i].ms);
	}
	CU_ASSERT_EQUAL(config_parse_duration(NULL, &(int64_t){ 0 }), -1);
}

static void
test_sizes(void)
{
	static const struct {
		const char *s;
		int ok;
		uint64_t b;
	} cases[] = {
		{ "8MiB", 1, 8388608 },
		{ "512KiB", 1, 524288 },
		{ "1024", 1, 1024 },
		{ "1GiB", 1, 1073741824 },
		{ "10B", 1, 10 },
		{ "2KB", 1, 2000 },
		{ "3MB", 1, 3000000 },
		{ "1GB", 1, 1000000000 },
		{ "0", 1, 0 },
		{ "", 0, 0 },
		{ "MiB", 0, 0 },
		{ "8 MiB", 0, 0 },
		{ "1.5MiB", 0, 0 },
		{ "-1", 0, 0 },
		{ "8mib", 0, 0 },
		{ "8K", 0, 0 },
		{ "18446744073709551616", 0, 0 },
		{ "17179869184GiB", 0, 0 },
		{ "12abc", 0, 0 },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		uint64_t b = 42;
		int rc = config_parse_size(cases[i].s, &b);
		if ((rc == 0) != cases[i].ok)
			fprintf(stderr, "size %s: rc %d\n", cases[i].s, rc);
		CU_ASSERT_EQUAL(rc == 0, cases[i].ok);
		if (cases[i].ok)
			CU_ASSERT_EQUAL(b, cases[i].b);
	}
}

static void
test_strlist(void)
{
	struct strlist l = { NULL, 0 };

	CU_ASSERT_FALSE(strlist_contains(&l, "a"));
	strlist_add(&l, "a");
	strlist_add(&l, "b");
	CU_ASSERT_EQUAL(l.n, 2);
	CU_ASSERT_TRUE(strlist_contains(&l, "b"));
	CU_ASSERT_FALSE(strlist_contains(&l, "c"));
	strlist_dispose(&l);
	CU_ASSERT_EQUAL(l.n, 0);
	strlist_dispose(&l);
}

static void
test_defaults(void)
{
	struct config *cfg = config_new();

	CU_ASSERT_STRING_EQUAL(cfg->secrets_dir, "/etc/mcp-proxy/secrets");
	CU_ASSERT_STRING_EQUAL(cfg->server.listen, "0.0.0.0:8080");
	CU_ASSERT_STRING_EQUAL(cfg->server.diagnostics_listen, "0.0.0.0:9464");
	CU_ASSERT_PTR_NULL(cfg->server.resource_url);
	CU_ASSERT_STRING_EQUAL(cfg->server.public_path_prefix, "");
	CU_ASSERT_FALSE(cfg->server.trust_proxy_headers);
	CU_ASSERT_EQUAL(cfg->server.max_body_size, 8 * 1024 * 1024);
	CU_ASSERT_EQUAL(cfg->server.max_header_size, 128 * 1024);
	CU_ASSERT_EQUAL(cfg->server.header_timeout_ms, 10000);
	CU_ASSERT_EQUAL(cfg->server.idle_timeout_ms, 60000);
	CU_ASSERT_EQUAL(cfg->server.drain_timeout_ms, 30000);
	CU_ASSERT_STRING_EQUAL(cfg->server.log_level, "info");
	CU_ASSERT_STRING_EQUAL(cfg->backend.url, "http://127.0.0.1:3000");
	CU_ASSERT_EQUAL(cfg->backend.transport, TRANSPORT_STREAMABLE_HTTP);
	CU_ASSERT_EQUAL(cfg->backend.connect_timeout_ms, 5000);
	CU_ASSERT_EQUAL(cfg->backend.response_timeout_ms, 300000);
	CU_ASSERT_EQUAL(cfg->backend.max_idle_connections, 64);
	CU_ASSERT_EQUAL(cfg->auth.mode, AUTH_MODE_EMBEDDED);
	CU_ASSERT_PTR_NULL(cfg->auth.upstream_token_header);
	CU_ASSERT_EQUAL(cfg->auth.oidc.introspection_cache_ttl_ms, 30000);
	CU_ASSERT_STRING_EQUAL(cfg->outbound.ca_file, "");
	CU_ASSERT_EQUAL(cfg->outbound.timeout_ms, 10000);
	CU_ASSERT_EQUAL(cfg->outbound.max_response_size, 1024 * 1024);
	CU_ASSERT_FALSE(cfg->eas.cimd.enabled);
	CU_ASSERT_EQUAL(cfg->eas.cimd.cache_max_size, 256);
	CU_ASSERT_EQUAL(cfg->eas.cimd.cache_fallback_ttl_ms, 300000);
	CU_ASSERT_EQUAL(cfg->eas.cimd.cache_min_ttl_ms, 30000);
	CU_ASSERT_EQUAL(cfg->eas.cimd.cache_max_ttl_ms, 86400000);
	CU_ASSERT_EQUAL(cfg->eas.cimd.fetch_timeout_ms, 5000);
	CU_ASSERT_EQUAL(cfg->eas.cimd.max_document_size, 5 * 1024);
	CU_ASSERT_EQUAL(cfg->eas.token_lifespans.access_token_ms, 3600000);
	CU_ASSERT_EQUAL(cfg->eas.token_lifespans.refresh_token_ms, 7 * 86400000LL);
	CU_ASSERT_EQUAL(cfg->eas.token_lifespans.auth_code_ms, 600000);
	CU_ASSERT_EQUAL(cfg->eas.scopes_supported.n, 4);
	CU_ASSERT_TRUE(strlist_contains(&cfg->eas.scopes_supported, "offline_access"));
	CU_ASSERT_EQUAL(cfg->eas.storage.type, STORAGE_MEMORY);
	CU_ASSERT_EQUAL(cfg->eas.registration.max_clients, 10000);
	CU_ASSERT_DOUBLE_EQUAL(cfg->eas.registration.rate_per_second, 10.0, 1e-9);
	CU_ASSERT_EQUAL(cfg->eas.registration.burst, 20);
	config_free(cfg);
	config_free(NULL);
}

static void
check_seed(const char *file, const char *provider, const char *issuer, const char *secret)
{
	struct config *cfg;
	char *path = data_path(file), *lines;
	int rc;

	env_set(NULL, NULL, NULL);
	rc = load_path(path, &cfg, &lines);
	if (rc != 0)
		fprintf(stderr, "%s", lines);
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_STRING_EQUAL(lines, "");
	CU_ASSERT_STRING_EQUAL(cfg->eas.issuer, "https://auth.example.com");
	CU_ASSERT_TRUE(cfg->eas.cimd.enabled);
	CU_ASSERT_EQUAL(cfg->eas.cimd.cache_max_size, 256);
	CU_ASSERT_EQUAL(cfg->eas.cimd.cache_fallback_ttl_ms, 300000);
	CU_ASSERT_FATAL(cfg->eas.n_upstream_providers == 1);
	struct upstream_provider *p = &cfg->eas.upstream_providers[0];
	CU_ASSERT_STRING_EQUAL(p->name, provider);
	CU_ASSERT_EQUAL(p->type, UPSTREAM_OIDC);
	CU_ASSERT_STRING_EQUAL(p->issuer_url, issuer);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p->client_secret.value);
	CU_ASSERT_STRING_EQUAL(p->client_secret.value, secret); /* trailing newline stripped */
	CU_ASSERT_EQUAL(p->client_secret.value_len, strlen(secret));
	CU_ASSERT_STRING_EQUAL(p->redirect_uri, "https://auth.example.com/oauth/callback");
	CU_ASSERT_STRING_EQUAL(p->subject_claim, "sub");
	CU_ASSERT_TRUE(strlist_contains(&p->scopes, "openid"));
	CU_ASSERT_TRUE(strlist_contains(&p->scopes, "offline_access"));
	CU_ASSERT_STRING_EQUAL(cfg->server.resource_url, "https://mcp.example.com/mcp");
	CU_ASSERT_EQUAL(cfg->auth.mode, AUTH_MODE_EMBEDDED);
	config_free(cfg);
	free(lines);
	free(path);
}

static void
test_seed_example_1(void)
{
	check_seed("seed-example-1.yaml", "github", "https://github.com", "gh-TOPSECRET-1234");
}

static void
test_seed_example_2(void)
{
	struct config *cfg;
	char *path = data_path("seed-example-2.yaml"), *lines;

	check_seed("seed-example-2.yaml", "default", "https://accounts.google.com",
	    "goog-TOPSECRET-5678");
	env_set(NULL, NULL, NULL);
	CU_ASSERT_EQUAL(load_path(path, &cfg, &lines), 0);
	CU_ASSERT_EQUAL(cfg->eas.baseline_client_scopes.n, 2);
	CU_ASSERT_STRING_EQUAL(cfg->eas.baseline_client_scopes.v[0], "openid");
	CU_ASSERT_STRING_EQUAL(cfg->eas.baseline_client_scopes.v[1], "offline_access");
	config_free(cfg);
	free(lines);
	free(path);
}

static void
test_redaction(void)
{
	struct config *cfg;
	char *path = data_path("full.yaml"), *lines, *out;

	env_set(NULL, NULL, NULL);
	CU_ASSERT_EQUAL_FATAL(load_path(path, &cfg, &lines), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg->eas.upstream_providers[0].client_secret.value);
	CU_ASSERT_PTR_NOT_NULL(strstr(cfg->eas.signing_keys[0].value, "SIGNING-TOPSECRET"));
	out = print_to_string(cfg);
	CU_ASSERT_PTR_NULL(strstr(out, "TOPSECRET"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out,
	    "clientSecretRef: {name: \"idp\", key: \"client_secret\"}  # value: <redacted>"));
	CU_ASSERT_PTR_NOT_NULL(
	    strstr(out, "- {name: \"signing\", key: \"key.pem\"}  # value: <redacted>"));
	free(out);
	config_free(cfg);
	free(lines);
	free(path);

	path = data_path("seed-example-1.yaml");
	CU_ASSERT_EQUAL_FATAL(load_path(path, &cfg, &lines), 0);
	out = print_to_string(cfg);
	CU_ASSERT_PTR_NULL(strstr(out, "TOPSECRET"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "<redacted>"));
	free(out);
	config_free(cfg);
	free(lines);
	free(path);
}

static void
test_full_yaml(void)
{
	struct config *cfg;
	char *path = data_path("full.yaml"), *lines;
	struct upstream_provider *p;

	env_set(NULL, NULL, NULL);
	if (load_path(path, &cfg, &lines) != 0)
		fprintf(stderr, "%s", lines);
	CU_ASSERT_STRING_EQUAL(lines, "");
	CU_ASSERT_STRING_EQUAL(cfg->server.listen, "127.0.0.1:0");
	CU_ASSERT_STRING_EQUAL(cfg->server.public_path_prefix, "/team-a");
	CU_ASSERT_TRUE(cfg->server.trust_proxy_headers);
	CU_ASSERT_EQUAL(cfg->server.max_body_size, 4 * 1024 * 1024);
	CU_ASSERT_EQUAL(cfg->server.idle_timeout_ms, 90000);
	CU_ASSERT_EQUAL(cfg->server.drain_timeout_ms, 500);
	CU_ASSERT_STRING_EQUAL(cfg->server.log_level, "debug");
	/* env wins over the file */
	CU_ASSERT_STRING_EQUAL(cfg->server.resource_url, "https://mcp.example.com/mcp");
	CU_ASSERT_EQUAL(cfg->backend.transport, TRANSPORT_SSE);
	CU_ASSERT_EQUAL(cfg->backend.response_timeout_ms, 0);
	CU_ASSERT_EQUAL(cfg->backend.max_idle_connections, 8);
	CU_ASSERT_EQUAL(cfg->auth.required_scopes.n, 2);
	CU_ASSERT_STRING_EQUAL(cfg->auth.upstream_token_header, "X-Upstream-Token");
	CU_ASSERT_STRING_EQUAL(cfg->outbound.ca_file, "/tmp/ca.pem");
	CU_ASSERT_EQUAL(cfg->outbound.max_response_size, 2 * 1024 * 1024);
	CU_ASSERT_TRUE(cfg->eas.insecure_allow_http);
	CU_ASSERT_FATAL(cfg->eas.n_upstream_providers == 1);
	p = &cfg->eas.upstream_providers[0];
	CU_ASSERT_EQUAL(p->type, UPSTREAM_OAUTH2);
	CU_ASSERT_STRING_EQUAL(p->authorization_endpoint, "http://127.0.0.1:9000/auth");
	CU_ASSERT_STRING_EQUAL(p->token_endpoint, "http://127.0.0.1:9000/token");
	CU_ASSERT_STRING_EQUAL(p->userinfo_endpoint, "http://127.0.0.1:9000/me");
	CU_ASSERT_STRING_EQUAL(p->client_id, "proxy");
	CU_ASSERT_STRING_EQUAL(p->client_secret.value, "idp-TOPSECRET-9999");
	CU_ASSERT_STRING_EQUAL(p->redirect_uri, "http://127.0.0.1:8080/oauth/callback");
	CU_ASSERT_EQUAL(p->scopes.n, 2);
	CU_ASSERT_TRUE(cfg->eas.allow_confidential_client_registration);
	CU_ASSERT_TRUE(cfg->eas.disable_upstream_token_injection);
	CU_ASSERT_EQUAL(cfg->eas.cimd.cache_max_size, 512);
	CU_ASSERT_EQUAL(cfg->eas.cimd.cache_max_ttl_ms, 5400000);
	CU_ASSERT_EQUAL(cfg->eas.cimd.max_document_size, 8192);
	CU_ASSERT_TRUE(cfg->eas.cimd.insecure_allow_loopback);
	CU_ASSERT_TRUE(strlist_contains(&cfg->eas.cimd.allowed_hosts, "*.example.com"));
	CU_ASSERT_TRUE(strlist_contains(&cfg->eas.cimd.denied_hosts, "evil.example.com"));
	CU_ASSERT_EQUAL(cfg->eas.token_lifespans.refresh_token_ms, 72 * 3600000LL);
	CU_ASSERT_EQUAL(cfg->eas.n_signing_keys, 1);
	CU_ASSERT_EQUAL(cfg->eas.registration.max_clients, 100);
	CU_ASSERT_DOUBLE_EQUAL(cfg->eas.registration.rate_per_second, 2.5, 1e-9);
	CU_ASSERT_EQUAL(cfg->eas.registration.burst, 5);
	CU_ASSERT_STRING_EQUAL(cfg->source_path, path);
	config_free(cfg);
	free(lines);
	free(path);
}

static void
test_json(void)
{
	struct config *cfg;
	char *path = data_path("full.json"), *lines;

	env_set(NULL, NULL, NULL);
	if (load_path(path, &cfg, &lines) != 0)
		fprintf(stderr, "%s", lines);
	CU_ASSERT_STRING_EQUAL(lines, "");
	CU_ASSERT_EQUAL(cfg->server.max_body_size, 1024 * 1024);
	CU_ASSERT_EQUAL(cfg->eas.cimd.cache_max_size, 12);
	CU_ASSERT_EQUAL(cfg->eas.cimd.cache_fallback_ttl_ms, 7 * 60000);
	CU_ASSERT_TRUE(strlist_contains(&cfg->auth.required_scopes, "mcp"));
	CU_ASSERT_STRING_EQUAL(cfg->eas.upstream_providers[0].client_secret.value,
	    "gh-TOPSECRET-1234");
	config_free(cfg);
	free(lines);
	free(path);
}

static void
test_env_precedence(void)
{
	struct config *cfg;
	char *path = data_path("full.yaml"), *lines;

	env_set("MCP_PROXY_BACKEND_URL=http://127.0.0.1:4000",
	    "MCP_PROXY_EMBEDDEDAUTHSERVER_CIMD_ENABLED=false", "MCP_PROXY_SERVER_MAXBODYSIZE=2MiB");
	CU_ASSERT_EQUAL(load_path(path, &cfg, &lines), 0);
	CU_ASSERT_STRING_EQUAL(cfg->backend.url, "http://127.0.0.1:4000");
	CU_ASSERT_FALSE(cfg->eas.cimd.enabled);
	CU_ASSERT_EQUAL(cfg->server.max_body_size, 2 * 1024 * 1024);
	CU_ASSERT_EQUAL(cfg->backend.transport, TRANSPORT_SSE); /* from the file */
	config_free(cfg);
	free(lines);

	/* A bad env value is a located error naming the variable. */
	env_set("MCP_PROXY_EMBEDDEDAUTHSERVER_CIMD_ENABLED=yes", "MCP_PROXY_AUTH_MODE=nope", NULL);
	CU_ASSERT_EQUAL(load_path(path, &cfg, &lines), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(lines,
	    "env MCP_PROXY_EMBEDDEDAUTHSERVER_CIMD_ENABLED: "
	    "embeddedAuthServer.cimd.enabled: expected true or false, got \"yes\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(lines,
	    "env MCP_PROXY_AUTH_MODE: auth.mode: expected one of embedded, "
	    "oidc, none, got \"nope\""));
	config_free(cfg);
	free(lines);
	free(path);

	/* No file at all: defaults + env. */
	env_set("MCP_PROXY_AUTH_MODE=none", NULL, NULL);
	CU_ASSERT_EQUAL(load_path(NULL, &cfg, &lines), 0);
	CU_ASSERT_EQUAL(cfg->auth.mode, AUTH_MODE_NONE);
	CU_ASSERT_PTR_NULL(cfg->source_path);
	config_free(cfg);
	free(lines);
}

static void
test_manifest_wrong_type(void)
{
	struct config *cfg;
	char *path = data_path("manifest-wrong-type.yaml"), *lines;

	env_set(NULL, NULL, NULL);
	CU_ASSERT_EQUAL(load_path(path, &cfg, &lines), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(lines,
	    "manifest-wrong-type.yaml:6:9: spec.type: expected embeddedAuthServer, "
	    "got \"tokenExchange\" (mcp-proxy-runner only reads embeddedAuthServer configs)"));
	config_free(cfg);
	free(lines);
	free(path);
}

static void
test_many_errors(void)
{
	static const char *const want[] = {
		"many-errors.yaml:2:11: server.listen: expected host:port with a port from 0 to "
		"65535, got \"0.0.0.0:99999\"",
		"many-errors.yaml:3:16: server.maxBodySize: expected a size like 8MiB, 512KiB or "
		"1024, got \"8 MiB\"",
		"many-errors.yaml:4:18: server.headerTimeout: expected a duration like 5m, 1h30m "
		"or 500ms, got \"5\"",
		"many-errors.yaml:5:22: server.trustProxyHeaders: expected true or false, got "
		"\"yes\"",
		"many-errors.yaml:6:3: server.lisen: unknown key",
		"many-errors.yaml:8:8: backend.url: expected http://host:port with optional path, "
		"got \"https://127.0.0.1:3000\"",
		"many-errors.yaml:9:14: backend.transport: expected one of streamable-http, sse, "
		"got \"websocket\"",
		"many-errors.yaml:10:23: backend.maxIdleConnections: expected an integer, got "
		"\"12abc\"",
		"many-errors.yaml:15:3: embeddedAuthServer.hmacSecretRefs: hmacSecretRefs is not "
		"supported by mcp-proxy-runner",
		"many-errors.yaml:19:19: embeddedAuthServer.cimd.cacheMaxSize: expected an integer "
		">= 1, got \"0\"",
		"many-errors.yaml:20:19: embeddedAuthServer.cimd.fetchTimeout: expected a duration "
		"<= 1m, got \"2m\"",
		"many-errors.yaml:21:22: embeddedAuthServer.cimd.maxDocumentSize: expected a size "
		">= 1KiB, got \"512\"",
		"many-errors.yaml:23:26: embeddedAuthServer.tokenLifespans.accessTokenLifespan: "
		"expected a duration >= 1m, got \"30s\"",
		"many-errors.yaml:27:5: embeddedAuthServer.upstreamProviders: multiple upstream "
		"providers are not supported yet",
	};
	struct config *cfg;
	char *path = data_path("many-errors.yaml"), *lines;

	env_set(NULL, NULL, NULL);
	CU_ASSERT_EQUAL(load_path(path, &cfg, &lines), -1);
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		if (strstr(lines, want[i]) == NULL)
			fprintf(stderr, "missing: %s\ngot:\n%s", want[i], lines);
		CU_ASSERT_PTR_NOT_NULL(strstr(lines, want[i]));
	}
	config_free(cfg);
	free(lines);
	free(path);
}

/* Inline YAML → one expected error line fragment (empty = must load). */
static void
test_error_table(void)
{
	static const struct {
		const char *yaml;
		const char *want;
	} cases[] = {
		{ MINIMAL, "" },
		{ MINIMAL "server:\n  listen: [a]\n",
		    "config.yaml:10:11: server.listen: expected a string, got a list" },
		{ MINIMAL "server:\n  maxBodySize: {a: 1}\n",
		    "config.yaml:10:16: server.maxBodySize: expected a size like 8MiB, 512KiB or "
		    "1024, got a mapping" },
		{ MINIMAL "server: 5\n",
		    "config.yaml:9:9: server: expected a mapping, got a scalar" },
		{ MINIMAL "server:\n  listen: a:1\n  listen: b:2\n",
		    "config.yaml:11:3: server.listen: duplicate key" },
		{ MINIMAL "backend:\n  url: [\n", "config.yaml:11:1: YAML syntax error: " },
		{ "server:\n\tlisten: x\n", "config.yaml:2:1: YAML syntax error: " },
		{ MINIMAL "bogus: 1\n", "config.yaml:9:1: bogus: unknown key" },
		{ MINIMAL "server:\n  idleTimeout: 1h99999999999999999999m\n",
		    "server.idleTimeout: expected a duration like 5m, 1h30m or 500ms" },
		{ MINIMAL "server:\n  idleTimeout: -1s\n",
		    "server.idleTimeout: expected a duration like" },
		{ MINIMAL "server:\n  drainTimeout: 5x\n",
		    "server.drainTimeout: expected a duration like" },
		{ MINIMAL "server:\n  drainTimeout: ''\n",
		    "server.drainTimeout: expected a duration like" },
		{ MINIMAL "server:\n  maxBodySize: 2GiB\n",
		    "server.maxBodySize: expected a size <= 1GiB, got \"2GiB\"" },
		{ MINIMAL "server:\n  trustProxyHeaders: no\n",
		    "expected true or false, got \"no\"" },
		{ MINIMAL "server:\n  logLevel: verbose\n",
		    "server.logLevel: expected one of debug, info, warn, error" },
		{ MINIMAL "server:\n  publicPathPrefix: /a/\n",
		    "server.publicPathPrefix: expected \"\" or a path" },
		{ MINIMAL "server:\n  publicPathPrefix: a\n",
		    "server.publicPathPrefix: expected \"\" or a path" },
		{ MINIMAL "server:\n  resourceUrl: https://x/mcp#frag\n",
		    "expected a URL without fragment" },
		{ MINIMAL "backend:\n  maxIdleConnections: 4294967296\n",
		    "expected an integer, got \"4294967296\"" },
		{ MINIMAL "backend:\n  maxIdleConnections: 100001\n",
		    "expected an integer <= 100000, got \"100001\"" },
		{ MINIMAL "backend:\n  url: http://127.0.0.1\n",
		    "backend.url: expected http://host:port" },
		{ MINIMAL "embeddedAuthServer:\n  issuer: https://b\n",
		    "config.yaml:9:1: embeddedAuthServer: duplicate key" },
		{ "embeddedAuthServer:\n  issuer: https://auth.example.com\n  trustedIssuers: "
		  "[a]\n" PROVIDER,
		    "config.yaml:3:3: embeddedAuthServer.trustedIssuers: trustedIssuers is not "
		    "supported by mcp-proxy-runner" },
		{ "embeddedAuthServer:\n  issuer: https://auth.example.com\n" PROVIDER
		  "      dcrConfig: {}\n",
		    "embeddedAuthServer.upstreamProviders[0].dcrConfig: dcrConfig is not supported "
		    "by mcp-proxy-runner" },
		{ "embeddedAuthServer:\n  issuer: https://auth.example.com\n" PROVIDER
		  "      bogus: 1\n",
		    "config.yaml:9:7: embeddedAuthServer.upstreamProviders[0].bogus: unknown key" },
		{ "embeddedAuthServer:\n" PROVIDER,
		    "embeddedAuthServer.issuer: required when auth.mode is embedded" },
		{ "embeddedAuthServer:\n  issuer: http://auth.example.com\n" PROVIDER,
		    "config.yaml:2:11: embeddedAuthServer.issuer: expected an https URL (http "
		    "needs "
		    "embeddedAuthServer.insecureAllowHTTP: true)" },
		{ "embeddedAuthServer:\n  issuer: https://auth.example.com\n",
		    "embeddedAuthServer.upstreamProviders: exactly one upstream provider is "
		    "required" },
		{ MINIMAL "    - name: two\n      type: oidc\n      oidcConfig: {issuerUrl: "
			  "https://x, clientId: y}\n",
		    "config.yaml:4:5: embeddedAuthServer.upstreamProviders: multiple upstream "
		    "providers are not supported yet" },
		{ "embeddedAuthServer:\n  issuer: https://auth.example.com\n  upstreamProviders:\n "
		  "   - name: gh\n"
		  "      type: oauth2\n      oidcConfig: {issuerUrl: https://x, clientId: y}\n",
		    "config.yaml:4:7: embeddedAuthServer.upstreamProviders[0]: type is oauth2 but "
		    "oauth2Config is missing "
		    "(oidcConfig given: set type: oidc)" },
		{ "embeddedAuthServer:\n  issuer: https://auth.example.com\n  upstreamProviders:\n "
		  "   - name: gh\n"
		  "      type: oauth2\n      oauth2Config: {clientId: y}\n",
		    "embeddedAuthServer.upstreamProviders[0]: oauth2Config.tokenEndpoint is "
		    "required" },
		{ "embeddedAuthServer:\n  issuer: https://auth.example.com\n  upstreamProviders:\n "
		  "   - name: gh\n"
		  "      type: saml\n",
		    "config.yaml:5:13: embeddedAuthServer.upstreamProviders[0].type: expected one "
		    "of oidc, oauth2, got \"saml\"" },
		{ "embeddedAuthServer:\n  issuer: https://auth.example.com\n  upstreamProviders: "
		  "{name: x}\n",
		    "config.yaml:3:22: embeddedAuthServer.upstreamProviders: expected a list of "
		    "upstream providers, got a mapping" },
		{ "auth:\n  mode: oidc\n",
		    "config.yaml:2:9: auth.oidc.issuer: required when auth.mode is oidc" },
		{ "auth:\n  mode: oidc\n", "auth.oidc.audience: required when auth.mode is oidc" },
		{ "auth:\n  mode: oidc\n  oidc: {issuer: 'https://idp', audience: mcp}\n", "" },
		{ "auth:\n  mode: oidc\n  oidc: {issuer: 'http://idp', audience: mcp}\n",
		    "auth.oidc.issuer: expected an https URL (http needs "
		    "auth.oidc.insecureAllowHTTP: true)" },
		{ "auth:\n  mode: none\n", "" },
		{ MINIMAL "auth:\n  requiredScopes: mcp\n",
		    "auth.requiredScopes: expected a list of strings, got a scalar" },
		{ MINIMAL "auth:\n  requiredScopes: [a, {b: c}]\n",
		    "config.yaml:10:23: auth.requiredScopes[1]: expected a string, got a mapping" },
		{ MINIMAL "auth:\n  requiredScopes: ['a b']\n",
		    "auth.requiredScopes[0]: expected a scope token, got \"a b\"" },
		{ MINIMAL "  cimd:\n    cacheMinTtl: 2h\n    cacheMaxTtl: 1h\n",
		    "embeddedAuthServer.cimd.cacheMinTtl: expected a duration <= cacheMaxTtl" },
		{ MINIMAL "  cimd:\n    cacheFallbackTtl: 0s\n",
		    "cacheFallbackTtl: expected a duration >= 1ms, got \"0s\"" },
		{ MINIMAL "  cimd:\n    allowedHosts: ['*.', 'a..b']\n",
		    "allowedHosts[0]: expected a host name or *.domain" },
		{ MINIMAL "  cimd:\n    fetchTimeout: 61s\n",
		    "expected a duration <= 1m, got \"61s\"" },
		{ MINIMAL "  cimd:\n    maxDocumentSize: 2MiB\n",
		    "expected a size <= 1MiB, got \"2MiB\"" },
		{ MINIMAL "  tokenLifespans:\n    refreshTokenLifespan: 31d\n",
		    "expected a duration <= 720h, got \"31d\"" },
		{ MINIMAL "  tokenLifespans:\n    authCodeLifespan: 29s\n",
		    "expected a duration >= 30s, got \"29s\"" },
		{ MINIMAL "  storage:\n    type: redis\n",
		    "embeddedAuthServer.storage.redis.addr: storage.type redis needs addr or "
		    "sentinelConfig" },
		{ MINIMAL "  storage:\n    type: redis\n",
		    "embeddedAuthServer.storage.redis.encryptionKeySecretRef: required with "
		    "storage.type redis" },
		{ MINIMAL "  storage:\n    type: redis\n",
		    "embeddedAuthServer.signingKeySecretRefs: required with storage.type redis" },
		{ MINIMAL "  storage:\n    type: redis\n    redis:\n      addr: r:6379\n"
			  "      sentinelConfig: {masterName: m, sentinelAddrs: [\"s:26379\"]}\n",
		    "storage.type redis needs addr or sentinelConfig (one of them)" },
		{ MINIMAL "  storage:\n    type: redis\n    redis:\n      sentinelConfig: "
			  "{masterName: m}\n",
		    "sentinelConfig.sentinelAddrs: required with sentinelConfig.masterName" },
		{ MINIMAL "  storage:\n    redis:\n      clusterMode: true\n",
		    "embeddedAuthServer.storage.redis.clusterMode: not supported yet" },
		{ MINIMAL "  storage:\n    redis:\n      sentinelService: {name: x}\n",
		    "embeddedAuthServer.storage.redis.sentinelService: expected" },
		{ MINIMAL "  storage:\n    redis:\n      sentinelService: redis-sentinel\n",
		    "embeddedAuthServer.storage.redis.sentinelService: not supported yet" },
		{ MINIMAL "  storage:\n    redis:\n      addr: \"no-port\"\n",
		    "embeddedAuthServer.storage.redis.addr: expected host:port" },
		{ MINIMAL "  storage:\n    redis:\n      dialTimeout: 1h\n",
		    "embeddedAuthServer.storage.redis.dialTimeout: expected a duration <= 1m" },
		{ MINIMAL "  storage:\n    redis:\n      bogus: 1\n",
		    "embeddedAuthServer.storage.redis.bogus: unknown key" },
		{ MINIMAL "  storage:\n    redis: {addr: \"127.0.0.1:6379\", keyPrefix: \"a:\"}\n",
		    "" },
		{ MINIMAL "  storage:\n    redis:\n      encryptionKeySecretRef: {name: redis, "
			  "key: short-key}\n",
		    "encryptionKeySecretRef: expected 32 bytes in base64" },
		/* a rotation: the new key first, the old one below */
		{ MINIMAL "  storage:\n    redis:\n      encryptionKeySecretRef: {name: redis, "
			  "key: two-keys}\n",
		    "" },
		/* everything a replica needs is there */
		{ MINIMAL
		    "  signingKeySecretRefs:\n    - {name: signing, key: key.pem}\n"
		    "  storage:\n    type: redis\n    redis:\n      addr: redis:6379\n"
		    "      aclUserConfig: {usernameSecretRef: {name: idp, key: client_secret},"
		    " passwordSecretRef: {name: idp, key: client_secret}}\n"
		    "      encryptionKeySecretRef: {name: redis, key: encryption-key}\n",
		    "" },
		{ MINIMAL "  registration:\n    ratePerSecond: 0\n", "expected a number > 0" },
		/* the AS's per-address limit can be turned off, as its description says */
		{ MINIMAL "  rateLimit:\n    requestsPerMinute: 0\n", "" },
		{ MINIMAL "  rateLimit:\n    requestsPerMinute: -1\n", "expected a number >= 0" },
		{ MINIMAL "        clientSecretRef: {name: nope, key: client_secret}\n",
		    "config.yaml:9:26: "
		    "embeddedAuthServer.upstreamProviders[0].oidcConfig.clientSecretRef: cannot "
		    "read secret file " },
		{ MINIMAL "        clientSecretRef: {name: ../etc, key: passwd}\n",
		    "clientSecretRef.name: expected a plain name (no '/', not '..'), got "
		    "\"../etc\"" },
		{ MINIMAL "        clientSecretRef: {name: a/b, key: c}\n",
		    "expected a plain name" },
		{ MINIMAL "        clientSecretRef: {name: a}\n",
		    "clientSecretRef: expected both name and key (or env)" },
		{ MINIMAL "        clientSecretRef: {env: NOPE_UNSET_VAR}\n",
		    "environment variable NOPE_UNSET_VAR is not set" },
		{ MINIMAL "        clientSecretRef: {env: MCP_PROXY_SERVER_RESOURCEURL}\n", "" },
		{ MINIMAL "        clientSecretRef: secret\n",
		    "expected a secretRef {name, key} or {env}, got a scalar" },
		{ MINIMAL "  signingKeySecretRefs:\n    - {name: github-client-secret, key: "
			  "client_secret}\n",
		    "secret [0] is not a PEM private key" },
		{ MINIMAL "server:\n  listen: &a 1.2.3.4:5\n  diagnosticsListen: *a\n",
		    "YAML aliases are not supported" },
		{ "- a\n- b\n",
		    "config.yaml:1:1: expected a mapping at the top level, got a list" },
		{ MINIMAL "---\na: 1\n", "expected a single YAML document" },
		{ "",
		    "embeddedAuthServer.issuer: required when auth.mode is embedded" }, /* no env resourceUrl either */
		{ "server:\n  listen: \"a\\0b:1\"\n",
		    "config.yaml:2:11: server.listen: expected a string without NUL bytes" },
		{ "kind: MCPExternalAuthConfig\napiVersion: v1\nspec:\n  type: embeddedAuthServer\n"
		  "  embeddedAuthServer:\n    issuer: https://a.example.com\n    bogus: 1\n",
		    "config.yaml:7:5: spec.embeddedAuthServer.bogus: unknown key" },
		{ "kind: MCPExternalAuthConfig\napiVersion: v1\nspec:\n  type: "
		  "embeddedAuthServer\n",
		    "config.yaml:2:13: apiVersion: expected toolhive.stacklok.dev/..., got "
		    "\"v1\"" },
		{ "kind: MCPExternalAuthConfig\napiVersion: toolhive.stacklok.dev/v1beta1\nserver: "
		  "{}\nspec:\n"
		  "  type: embeddedAuthServer\n  embeddedAuthServer: {}\n",
		    "config.yaml:3:1: server: unknown key in an MCPExternalAuthConfig manifest" },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct config *cfg;
		char *lines;
		int rc;

		env_set(NULL, NULL, NULL);
		if (cases[i].yaml[0] == '\0')
			fake_env[1] = NULL; /* the empty-file case: no resourceUrl either */
		rc = load_text(cases[i].yaml, &cfg, &lines);
		if (cases[i].want[0] == '\0') {
			if (rc != 0)
				fprintf(stderr, "case %zu: unexpected errors:\n%s", i, lines);
			CU_ASSERT_EQUAL(rc, 0);
		} else {
			if (rc != -1 || strstr(lines, cases[i].want) == NULL)
				fprintf(stderr, "case %zu: want: %s\ngot:\n%s", i, cases[i].want,
				    lines);
			CU_ASSERT_EQUAL(rc, -1);
			CU_ASSERT_PTR_NOT_NULL(strstr(lines, cases[i].want));
		}
		config_free(cfg);
		free(lines);
	}
}

/* server.resourceUrl unset: embedded mode derives <issuer origin+path>/mcp
 * and --print-config says so; an explicit value (file or env) is kept; oidc
 * mode still requires it. */
static void
test_resource_url_derived(void)
{
	static const struct {
		const char *yaml, *want;
	} cases[] = {
		{ MINIMAL, "https://auth.example.com/mcp" },
		{ "embeddedAuthServer:\n  issuer: https://example.com/tenant-a/\n" PROVIDER,
		    "https://example.com/tenant-a/mcp" },
		{ "embeddedAuthServer:\n  issuer: http://127.0.0.1:8080\n  insecureAllowHTTP: "
		  "true\n" PROVIDER,
		    "http://127.0.0.1:8080/mcp" },
	};
	struct config *cfg;
	char *lines, *out, *path;

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		env_set(NULL, NULL, NULL);
		fake_env[1] = NULL; /* no MCP_PROXY_SERVER_RESOURCEURL */
		if (load_text(cases[i].yaml, &cfg, &lines) != 0)
			fprintf(stderr, "case %zu: %s", i, lines);
		CU_ASSERT_STRING_EQUAL(lines, "");
		CU_ASSERT_PTR_NOT_NULL_FATAL(cfg->server.resource_url);
		CU_ASSERT_STRING_EQUAL(cfg->server.resource_url, cases[i].want);
		CU_ASSERT_TRUE(cfg->server.resource_url_derived);
		config_free(cfg);
		free(lines);
	}

	/* The seed guide's "Enable CIMD" manifest, mounted unchanged. */
	env_set(NULL, NULL, NULL);
	fake_env[1] = NULL;
	path = data_path("seed-example-1.yaml");
	CU_ASSERT_EQUAL_FATAL(load_path(path, &cfg, &lines), 0);
	CU_ASSERT_STRING_EQUAL(cfg->server.resource_url, "https://auth.example.com/mcp");
	out = print_to_string(cfg);
	CU_ASSERT_PTR_NOT_NULL(strstr(out,
	    "\n  resourceUrl: \"https://auth.example.com/mcp\"  # derived: "
	    "embeddedAuthServer.issuer + \"/mcp\" (server.resourceUrl unset)\n"));
	free(out);
	config_free(cfg);
	free(lines);
	free(path);

	/* Explicit values win and are printed as set. */
	env_set("MCP_PROXY_SERVER_RESOURCEURL=https://mcp.example.com/other", NULL, NULL);
	fake_env[1] = fake_env[2];
	fake_env[2] = NULL;
	CU_ASSERT_EQUAL(load_text(MINIMAL, &cfg, &lines), 0);
	CU_ASSERT_STRING_EQUAL(cfg->server.resource_url, "https://mcp.example.com/other");
	CU_ASSERT_FALSE(cfg->server.resource_url_derived);
	out = print_to_string(cfg);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "\n  resourceUrl: \"https://mcp.example.com/other\"\n"));
	CU_ASSERT_PTR_NULL(strstr(out, "derived"));
	free(out);
	config_free(cfg);
	free(lines);
	env_set(NULL, NULL, NULL);
	fake_env[1] = NULL;
	CU_ASSERT_EQUAL(load_text("server:\n  resourceUrl: https://x.example.com/mcp\n" MINIMAL,
			    &cfg, &lines),
	    0);
	CU_ASSERT_STRING_EQUAL(cfg->server.resource_url, "https://x.example.com/mcp");
	CU_ASSERT_FALSE(cfg->server.resource_url_derived);
	config_free(cfg);
	free(lines);

	/* oidc mode has no issuer of ours to derive from. */
	env_set(NULL, NULL, NULL);
	fake_env[1] = NULL;
	CU_ASSERT_EQUAL(load_text("auth:\n  mode: oidc\n  oidc: {issuer: 'https://idp', audience: "
				  "mcp}\n",
			    &cfg, &lines),
	    -1);
	CU_ASSERT_PTR_NOT_NULL(
	    strstr(lines, "server.resourceUrl: required when auth.mode is oidc"));
	config_free(cfg);
	free(lines);
	/* embedded without an issuer: the issuer is what is missing, said once. */
	env_set(NULL, NULL, NULL);
	fake_env[1] = NULL;
	CU_ASSERT_EQUAL(load_text("embeddedAuthServer:\n" PROVIDER, &cfg, &lines), -1);
	CU_ASSERT_PTR_NOT_NULL(
	    strstr(lines, "embeddedAuthServer.issuer: required when auth.mode is embedded"));
	CU_ASSERT_PTR_NULL(strstr(lines, "server.resourceUrl"));
	CU_ASSERT_PTR_NULL(cfg->server.resource_url);
	config_free(cfg);
	free(lines);
}

/* Printing the effective config and loading it back gives the same config. */
static void
test_print_round_trip(void)
{
	static const char *const files[] = { "full.yaml", "seed-example-2.yaml", "full.json" };

	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		struct config *cfg, *again;
		char *path = data_path(files[i]), *lines, *out, *out2;

		env_set(NULL, NULL, NULL);
		CU_ASSERT_EQUAL_FATAL(load_path(path, &cfg, &lines), 0);
		free(lines);
		out = print_to_string(cfg);
		if (load_text(out, &again, &lines) != 0)
			fprintf(stderr, "%s: reload failed:\n%s\n--\n%s", files[i], lines, out);
		CU_ASSERT_STRING_EQUAL(lines, "");
		out2 = print_to_string(again);
		CU_ASSERT_STRING_EQUAL(out, out2);
		free(out);
		free(out2);
		free(lines);
		config_free(cfg);
		config_free(again);
		free(path);
	}
}

static void
test_error_line(void)
{
	struct config_error e = { "f.yaml:1:2", "a.b", "bad" };
	char *s = config_error_line(&e);

	CU_ASSERT_STRING_EQUAL(s, "f.yaml:1:2: a.b: bad");
	free(s);
	e.where = "";
	s = config_error_line(&e);
	CU_ASSERT_STRING_EQUAL(s, "a.b: bad");
	free(s);
}

static void
test_missing_file(void)
{
	struct config *cfg;
	char *lines;

	env_set(NULL, NULL, NULL);
	CU_ASSERT_EQUAL(load_path("/nonexistent/config.yaml", &cfg, &lines), -1);
	CU_ASSERT_PTR_NOT_NULL(
	    strstr(lines, "/nonexistent/config.yaml: cannot read config file: "));
	config_free(cfg);
	free(lines);
}

/* Oversized mappings and lists are refused, not walked. */
static void
test_limits(void)
{
	struct config *cfg;
	char *text = xstrdup(MINIMAL "server:\n"), *next, *lines;

	for (int i = 0; i < 300; i++) {
		next = xasprintf("%s  k%d: 1\n", text, i);
		free(text);
		text = next;
	}
	env_set(NULL, NULL, NULL);
	CU_ASSERT_EQUAL(load_text(text, &cfg, &lines), -1);
	CU_ASSERT_PTR_NOT_NULL(
	    strstr(lines, "config.yaml:10:3: server: expected at most 256 keys"));
	config_free(cfg);
	free(lines);
	free(text);

	text = xstrdup(MINIMAL "auth:\n  requiredScopes:\n");
	for (int i = 0; i < 300; i++) {
		next = xasprintf("%s    - s%d\n", text, i);
		free(text);
		text = next;
	}
	CU_ASSERT_EQUAL(load_text(text, &cfg, &lines), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(lines, "auth.requiredScopes: expected at most 256 items"));
	config_free(cfg);
	free(lines);
	free(text);
}

/* authorization/audit: the rules' shape with located errors, printed back
 * and read again the same; absent, printed as null (read back: off). */
static void
test_authorization(void)
{
	static const char good[] = MINIMAL
	    "authorization:\n"
	    "  defaultDecision: allow\n"
	    "  rules:\n"
	    "    - operations: [\"tools/list\", \"tools/call:get-*\", "
	    "\"resources/read:file:///p/*\"]\n"
	    "      allow: {scopes: [\"mcp:read\"]}\n"
	    "    - operations: [\"tools/call:*\"]\n"
	    "      allow: {scopes: [mcp:admin], claims: {groups: [admins, ops], email_verified: "
	    "\"true\"}}\n"
	    "    - operations: [\"tools/call:delete-*\"]\n"
	    "      deny: {claims: {sub: guest}}\n"
	    "    - operations: [\"prompts/*\"]\n"
	    "      deny:\n"
	    "audit:\n  enabled: true\n  path: /tmp/audit.log\n  includeArguments: true\n";
	static const struct {
		const char *yaml, *want;
	} bad[] = {
		{ MINIMAL "authorization:\n  rules:\n    - allow: {}\n",
		    "config.yaml:11:7: authorization.rules[0]: a rule needs operations" },
		{ MINIMAL "authorization:\n  rules:\n    - operations: [a]\n",
		    "config.yaml:11:7: authorization.rules[0]: a rule needs allow or deny" },
		{ MINIMAL "authorization:\n  rules:\n    - operations: []\n      deny: {}\n",
		    "config.yaml:11:19: authorization.rules[0].operations: expected at least one "
		    "operation" },
		{ MINIMAL "authorization:\n  rules:\n    - operations: [\"a b\"]\n      deny: {}\n",
		    "config.yaml:11:20: authorization.rules[0].operations[0]: expected an "
		    "operation without spaces" },
		{ MINIMAL "authorization:\n  rules:\n    - operations: [a]\n      allow: {}\n      "
			  "deny: {}\n",
		    "config.yaml:13:7: authorization.rules[0].deny: expected one of allow or deny, "
		    "not both" },
		{ MINIMAL
		    "authorization:\n  rules:\n    - operations: [a]\n      deny: {scopes: [x]}\n",
		    "config.yaml:12:14: authorization.rules[0].deny.scopes: unknown key (expected "
		    "claims)" },
		{ MINIMAL "authorization:\n  rules:\n    - operations: [a]\n      allow: {claims: "
			  "{groups: []}}\n",
		    "config.yaml:12:32: authorization.rules[0].allow.claims.groups: expected at "
		    "least one value" },
		{ MINIMAL "authorization:\n  rules:\n    - operations: [a]\n      allow: {claims: "
			  "[groups]}\n",
		    "authorization.rules[0].allow.claims: expected a mapping of claim names to "
		    "values, got a list" },
		{ MINIMAL "authorization:\n  rules:\n    - operations: [a]\n      allow: {scopes: "
			  "[\"a\\\"b\"]}\n",
		    "authorization.rules[0].allow.scopes[0]: expected a scope" },
		{ MINIMAL "authorization:\n  rules: {}\n",
		    "config.yaml:10:10: authorization.rules: expected a list of authorization "
		    "rules, got a mapping" },
		{ MINIMAL "authorization:\n  defaultDecision: maybe\n",
		    "authorization.defaultDecision: expected one of deny, allow" },
		{ MINIMAL "authorization:\n  bogus: 1\n",
		    "config.yaml:10:3: authorization.bogus: unknown key" },
		{ MINIMAL "audit:\n  enabled: true\n",
		    "config.yaml:10:12: audit.enabled: needs the authorization section" },
	};
	struct config *cfg, *again;
	char *lines, *out, *out2;

	env_set(NULL, NULL, NULL);
	if (load_text(good, &cfg, &lines) != 0)
		fprintf(stderr, "%s", lines);
	CU_ASSERT_STRING_EQUAL_FATAL(lines, "");
	free(lines);
	CU_ASSERT_TRUE(cfg->authz.present);
	CU_ASSERT_EQUAL(cfg->authz.default_decision, 1);
	CU_ASSERT_EQUAL_FATAL(cfg->authz.n_rules, 4);
	CU_ASSERT_EQUAL(cfg->authz.rules[0].operations.n, 3);
	CU_ASSERT_STRING_EQUAL(cfg->authz.rules[0].operations.v[2], "resources/read:file:///p/*");
	CU_ASSERT_FALSE(cfg->authz.rules[1].deny);
	CU_ASSERT_EQUAL_FATAL(cfg->authz.rules[1].n_claims, 2);
	CU_ASSERT_STRING_EQUAL(cfg->authz.rules[1].claims[0].name, "groups");
	CU_ASSERT_EQUAL(cfg->authz.rules[1].claims[0].values.n, 2);
	CU_ASSERT_STRING_EQUAL(cfg->authz.rules[1].claims[1].values.v[0], "true");
	CU_ASSERT_TRUE(cfg->authz.rules[2].deny);
	CU_ASSERT_STRING_EQUAL(cfg->authz.rules[2].claims[0].values.v[0], "guest");
	CU_ASSERT_TRUE(cfg->authz.rules[3].deny);
	CU_ASSERT_EQUAL(cfg->authz.rules[3].n_claims, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(cfg->authz.rules[2].where, "config.yaml:16:7"));
	CU_ASSERT_TRUE(cfg->audit.enabled);
	CU_ASSERT_STRING_EQUAL(cfg->audit.path, "/tmp/audit.log");
	CU_ASSERT_TRUE(cfg->audit.include_arguments);
	CU_ASSERT_EQUAL(cfg->audit.max_arguments_size, 1024);
	out = print_to_string(cfg);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "      deny: {claims: {\"sub\": [\"guest\"]}}\n"));
	if (load_text(out, &again, &lines) != 0)
		fprintf(stderr, "reload failed:\n%s\n--\n%s", lines, out);
	CU_ASSERT_STRING_EQUAL(lines, "");
	out2 = print_to_string(again);
	CU_ASSERT_STRING_EQUAL(out, out2);
	free(out);
	free(out2);
	free(lines);
	config_free(cfg);
	config_free(again);

	/* Absent: off, and printed so that reading it back keeps it off. */
	CU_ASSERT_EQUAL_FATAL(load_text(MINIMAL, &cfg, &lines), 0);
	free(lines);
	CU_ASSERT_FALSE(cfg->authz.present);
	out = print_to_string(cfg);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "\nauthorization: null"));
	CU_ASSERT_PTR_NULL(strstr(out, "defaultDecision"));
	CU_ASSERT_EQUAL(load_text(out, &again, &lines), 0);
	CU_ASSERT_FALSE(again->authz.present);
	free(lines);
	free(out);
	config_free(cfg);
	config_free(again);

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int rc = load_text(bad[i].yaml, &cfg, &lines);

		if (rc != -1 || strstr(lines, bad[i].want) == NULL)
			fprintf(stderr, "case %zu: want: %s\ngot:\n%s", i, bad[i].want, lines);
		CU_ASSERT_EQUAL(rc, -1);
		CU_ASSERT_PTR_NOT_NULL(strstr(lines, bad[i].want));
		config_free(cfg);
		free(lines);
	}
}

/* The README region between the settings markers equals config_print_docs(). */
static void
test_readme_in_sync(void)
{
	static const char begin[] = "<!-- settings:begin -->\n", end[] = "<!-- settings:end -->";
	char *path = xasprintf("%s/README.md", source_dir()), *readme = NULL, *docs = NULL;
	char *b, *e;
	size_t rlen = 0, dlen = 0;
	FILE *f;

	f = open_memstream(&docs, &dlen);
	config_print_docs(f);
	fclose(f);
	f = fopen(path, "r");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	{
		char buf[4096];
		size_t n;
		FILE *m = open_memstream(&readme, &rlen);
		while ((n = fread(buf, 1, sizeof buf, f)) > 0)
			fwrite(buf, 1, n, m);
		fclose(m);
	}
	fclose(f);
	b = strstr(readme, begin);
	e = b != NULL ? strstr(b, end) : NULL;
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	b += strlen(begin);
	if ((size_t)(e - b) != dlen || memcmp(b, docs, dlen) != 0) {
		if (getenv("MCP_UPDATE_README") != NULL) {
			f = fopen(path, "w");
			CU_ASSERT_PTR_NOT_NULL_FATAL(f);
			fwrite(readme, 1, (size_t)(b - readme), f);
			fwrite(docs, 1, dlen, f);
			fputs(e, f);
			fclose(f);
			fprintf(stderr, "README.md settings table regenerated\n");
		} else {
			fprintf(stderr,
			    "README.md settings table differs from config_print_docs(); regenerate "
			    "with:\n"
			    "  MCP_UPDATE_README=1 ctest --test-dir <build> -R unit.config\n");
			CU_FAIL("README.md settings table is stale");
		}
	}
	free(readme);
	free(docs);
	free(path);
}

/* server.peerListen: needs a secret of 32 bytes or more; peerAddress is
 * POD_IP and the peer port unless set (IPv6 in brackets), and
 * --print-config says it was derived. */
static void
test_peer_settings(void)
{
	static const char peer[] = "server:\n  peerListen: 0.0.0.0:9000\n"
				   "  peerSecretRef: {env: PEER_SECRET}\n" MINIMAL;
	static const struct {
		const char *yaml, *a, *b, *want_addr, *want_err;
	} cases[] = {
		{ peer, "PEER_SECRET=0123456789abcdef0123456789abcdef", "POD_IP=10.1.2.3",
		    "10.1.2.3:9000", NULL },
		{ peer, "PEER_SECRET=0123456789abcdef0123456789abcdef", "POD_IP=fd00::7",
		    "[fd00::7]:9000", NULL },
		{ "server:\n  peerListen: 0.0.0.0:9000\n  peerAddress: peer-a.ns:9001\n"
		  "  peerSecretRef: {env: PEER_SECRET}\n" MINIMAL,
		    "PEER_SECRET=0123456789abcdef0123456789abcdef", NULL, "peer-a.ns:9001", NULL },
		{ peer, "PEER_SECRET=short", "POD_IP=10.1.2.3", NULL,
		    "server.peerSecretRef: expected a secret of at least 32 bytes, got 5" },
		{ peer, "PEER_SECRET=0123456789abcdef0123456789abcdef", NULL, NULL,
		    "server.peerAddress: required with server.peerListen when the POD_IP" },
		{ "server:\n  peerListen: 0.0.0.0:9000\n" MINIMAL, "POD_IP=10.1.2.3", NULL, NULL,
		    "server.peerSecretRef: required with server.peerListen" },
		{ "server:\n  peerListen: nowhere\n  peerSecretRef: {env: PEER_SECRET}\n" MINIMAL,
		    "PEER_SECRET=0123456789abcdef0123456789abcdef", "POD_IP=10.1.2.3", NULL,
		    "server.peerListen: expected host:port" },
	};
	struct config *cfg;
	char *lines, *out;

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int rc;

		env_set(cases[i].a, cases[i].b, NULL);
		rc = load_text(cases[i].yaml, &cfg, &lines);
		if (cases[i].want_err == NULL) {
			if (rc != 0)
				fprintf(stderr, "case %zu: %s", i, lines);
			CU_ASSERT_EQUAL(rc, 0);
			CU_ASSERT_PTR_NOT_NULL_FATAL(cfg->server.peer_address);
			CU_ASSERT_STRING_EQUAL(cfg->server.peer_address, cases[i].want_addr);
			CU_ASSERT_EQUAL(cfg->server.peer_secret.value_len, 32);
			out = print_to_string(cfg);
			CU_ASSERT_PTR_NULL(strstr(out, "0123456789abcdef")); /* redacted */
			CU_ASSERT_EQUAL(strstr(out, "(server.peerAddress unset)") != NULL,
			    cfg->server.peer_address_derived);
			free(out);
		} else {
			if (strstr(lines, cases[i].want_err) == NULL)
				fprintf(stderr, "case %zu: want: %s\ngot:\n%s", i,
				    cases[i].want_err, lines);
			CU_ASSERT_EQUAL(rc, -1);
			CU_ASSERT_PTR_NOT_NULL(strstr(lines, cases[i].want_err));
		}
		config_free(cfg);
		free(lines);
	}
	/* off by default: nothing derived, nothing required */
	env_set("POD_IP=10.1.2.3", NULL, NULL);
	CU_ASSERT_EQUAL(load_text(MINIMAL, &cfg, &lines), 0);
	CU_ASSERT_PTR_NULL(cfg->server.peer_listen);
	CU_ASSERT_PTR_NULL(cfg->server.peer_address);
	config_free(cfg);
	free(lines);
}

int
main(void)
{
	static const struct unit_test tests[] = {
		{ "durations", test_durations },
		{ "peer_settings", test_peer_settings },
		{ "sizes", test_sizes },
		{ "strlist", test_strlist },
		{ "defaults", test_defaults },
		{ "error_line", test_error_line },
		{ "seed_example_1", test_seed_example_1 },
		{ "seed_example_2", test_seed_example_2 },
		{ "redaction", test_redaction },
		{ "full_yaml", test_full_yaml },
		{ "json", test_json },
		{ "env_precedence", test_env_precedence },
		{ "manifest_wrong_type", test_manifest_wrong_type },
		{ "many_errors", test_many_errors },
		{ "error_table", test_error_table },
		{ "missing_file", test_missing_file },
		{ "resource_url_derived", test_resource_url_derived },
		{ "print_round_trip", test_print_round_trip },
		{ "limits", test_limits },
		{ "authorization", test_authorization },
		{ "readme_in_sync", test_readme_in_sync },
		{ NULL, NULL },
	};

	return unit_run("config", tests);
}
