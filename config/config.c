/*
 * The settings table and everything it drives: defaults, the YAML/JSON
 * loader (libyaml document API, located errors), the MCP_PROXY_* overlay,
 * secret resolution, validation, --print-config and the README table.
 * It must never print a resolved secret and never stop at the first
 * problem: every bad setting becomes one entry in struct config_errors.
 */
#include "config/config.h"

#include "common/xalloc.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#define CONFIG_MAX_FILE (1024 * 1024) /* config file size cap */
#define CONFIG_MAX_SECRET (64 * 1024) /* secret file size cap */
#define CONFIG_MAX_LIST 256           /* items in any list */
#define CONFIG_MAX_KEYS 256           /* keys in any mapping */
#define CONFIG_MAX_STRING 4096        /* bytes in any string */
#define CONFIG_MAX_GOT 64             /* bytes of a bad value echoed */

#define MS_S 1000LL
#define MS_M (60 * MS_S)
#define MS_H (60 * MS_M)
#define MS_D (24 * MS_H)
#define KIB 1024LL
#define MIB (1024 * KIB)
#define GIB (1024 * MIB)

enum setting_type {
	ST_SECTION,
	ST_STRING,
	ST_BOOL,
	ST_UINT32,
	ST_DOUBLE,
	ST_DURATION,
	ST_SIZE,
	ST_ENUM,
	ST_STRLIST,
	ST_SECRET,
	ST_SECRETLIST,
	ST_PROVIDERS,
};

#define SF_FILE_ONLY 0x1 /* no environment variable */
#define SF_RANGE 0x2     /* min/max apply */

/* A string (or list item) format check: NULL when fine, else "expected ...". */
typedef const char *(*setting_check_fn)(const char *s);

struct setting {
	const char *path; /* key path below the table's root */
	enum setting_type type;
	size_t off;      /* field offset in the table's struct */
	const char *def; /* default as a user writes it; NULL = unset */
	const char *doc;
	unsigned flags;
	int64_t min, max;         /* SF_RANGE: integers, ms, bytes */
	const char *const *names; /* ST_ENUM: value = index */
	setting_check_fn check;   /* ST_STRING, ST_STRLIST items */
	int variant;              /* providers: 1 oidcConfig, 2 oauth2Config */
	const char *env;          /* explicit env name (secretsDir) */
};

static const char *check_listen(const char *);
static const char *check_url(const char *);
static const char *check_issuer_url(const char *);
static const char *check_backend_url(const char *);
static const char *check_path_prefix(const char *);
static const char *check_log_level(const char *);
static const char *check_header_name(const char *);
static const char *check_host_pattern(const char *);
static const char *check_scope(const char *);
static const char *check_provider_name(const char *);
static const char *check_nonempty(const char *);

static const char *const transport_names[] = { "streamable-http", "sse", NULL };
static const char *const auth_mode_names[] = { "embedded", "oidc", "none", NULL };
static const char *const upstream_names[] = { "oidc", "oauth2", NULL };
static const char *const storage_names[] = { "memory", "redis", NULL };

#define C(f) offsetof(struct config, f)
#define P(f) offsetof(struct upstream_provider, f)
#define S(p, t, o, d, ...) \
	{ \
		.path = (p), .type = (t), .off = (o), .def = (d), .doc = __VA_ARGS__ \
	}
#define RANGE(lo, hi) .flags = SF_RANGE, .min = (lo), .max = (hi)

/* The settings, in print order: a section precedes its children. */
static const struct setting settings[] = {
	S("secretsDir", ST_STRING, C(secrets_dir), "/etc/mcp-proxy/secrets",
	    "Directory where Kubernetes mounts Secrets; a secretRef {name, key} reads "
	    "`<secretsDir>/<name>/<key>`.",
	    .check = check_nonempty, .env = "MCP_PROXY_SECRETS_DIR"),
	S("server", ST_SECTION, 0, NULL, NULL),
	S("server.listen", ST_STRING, C(server.listen), "0.0.0.0:8080",
	    "Address (`host:port`) MCP clients connect to.", .check = check_listen),
	S("server.diagnosticsListen", ST_STRING, C(server.diagnostics_listen), "0.0.0.0:9464",
	    "Address (`host:port`) of `/metrics` and `/health`.", .check = check_listen),
	S("server.resourceUrl", ST_STRING, C(server.resource_url), NULL,
	    "The MCP endpoint URL as clients name it (token audience, RFC 9728). Absolute http(s) "
	    "URL without fragment; required unless `auth.mode` is `none`.",
	    .check = check_url),
	S("server.publicPathPrefix", ST_STRING, C(server.public_path_prefix), "",
	    "Path prefix clients see in front of our paths (e.g. `/team-a`); starts with `/`, no "
	    "trailing `/`.",
	    .check = check_path_prefix),
	S("server.trustProxyHeaders", ST_BOOL, C(server.trust_proxy_headers), "false",
	    "Honour `X-Forwarded-*` headers from the client side."),
	S("server.maxBodySize", ST_SIZE, C(server.max_body_size), "8MiB",
	    "Largest request body accepted (413 above).", RANGE(1 * KIB, 1 * GIB)),
	S("server.maxHeaderSize", ST_SIZE, C(server.max_header_size), "128KiB",
	    "Largest request header block accepted.", RANGE(1 * KIB, 16 * MIB)),
	S("server.headerTimeout", ST_DURATION, C(server.header_timeout_ms), "10s",
	    "Time allowed to receive a whole request (headers and body) once its first byte "
	    "arrived: a deadline, not an inactivity timer, so a client trickling bytes is cut too. "
	    "Never applies while a reply is produced or streams.",
	    RANGE(1, MS_H)),
	S("server.idleTimeout", ST_DURATION, C(server.idle_timeout_ms), "60s",
	    "How long an idle keep-alive client connection is kept between requests; also how long "
	    "a reply may wait for a client that stopped reading. Never cuts a response that is "
	    "streaming.",
	    RANGE(1, 24 * MS_H)),
	S("server.drainTimeout", ST_DURATION, C(server.drain_timeout_ms), "30s",
	    "Grace period for open requests on shutdown.", RANGE(0, MS_H)),
	S("server.logLevel", ST_STRING, C(server.log_level), "info",
	    "Lowest log level written: `debug`, `info`, `warn` or `error`.",
	    .check = check_log_level),
	S("backend", ST_SECTION, 0, NULL, NULL),
	S("backend.url", ST_STRING, C(backend.url), "http://127.0.0.1:3000",
	    "The MCP server container: `http://host:port` with optional path (kept when "
	    "forwarding).",
	    .check = check_backend_url),
	S("backend.transport", ST_ENUM, C(backend.transport), "streamable-http",
	    "MCP transport the backend speaks.", .names = transport_names),
	S("backend.connectTimeout", ST_DURATION, C(backend.connect_timeout_ms), "5s",
	    "Timeout for connecting to the backend.", RANGE(1, 5 * MS_M)),
	S("backend.responseTimeout", ST_DURATION, C(backend.response_timeout_ms), "5m",
	    "Timeout for the backend's response headers; `0s` = none.", RANGE(0, 24 * MS_H)),
	S("backend.maxIdleConnections", ST_UINT32, C(backend.max_idle_connections), "64",
	    "Keep-alive connections kept open to the backend.", RANGE(0, 100000)),
	S("auth", ST_SECTION, 0, NULL, NULL),
	S("auth.mode", ST_ENUM, C(auth.mode), "embedded",
	    "`embedded` (our OAuth AS), `oidc` (external IdP tokens) or `none` (development only).",
	    .names = auth_mode_names),
	S("auth.requiredScopes", ST_STRLIST, C(auth.required_scopes), NULL,
	    "Scopes every MCP request's token must carry.", .flags = SF_FILE_ONLY,
	    .check = check_scope),
	S("auth.upstreamTokenHeader", ST_STRING, C(auth.upstream_token_header), NULL,
	    "Header that carries the upstream token to the backend; unset = `Authorization: "
	    "Bearer`.",
	    .check = check_header_name),
	S("auth.oidc", ST_SECTION, 0, NULL, NULL),
	S("auth.oidc.issuer", ST_STRING, C(auth.oidc.issuer), NULL,
	    "External IdP issuer; required when `auth.mode` is `oidc`.", .check = check_issuer_url),
	S("auth.oidc.audience", ST_STRING, C(auth.oidc.audience), NULL,
	    "Audience tokens must carry; required when `auth.mode` is `oidc`.",
	    .check = check_nonempty),
	S("auth.oidc.jwksUrl", ST_STRING, C(auth.oidc.jwks_url), NULL,
	    "JWKS URL; unset = discovered from the issuer.", .check = check_url),
	S("auth.oidc.introspectionUrl", ST_STRING, C(auth.oidc.introspection_url), NULL,
	    "RFC 7662 introspection endpoint; unset = JWT validation only.", .check = check_url),
	S("auth.oidc.clientId", ST_STRING, C(auth.oidc.client_id), NULL,
	    "Client id for introspection.", .check = check_nonempty),
	S("auth.oidc.clientSecretRef", ST_SECRET, C(auth.oidc.client_secret), NULL,
	    "Client secret for introspection (secretRef).", .flags = SF_FILE_ONLY),
	S("auth.oidc.introspectionCacheTtl", ST_DURATION, C(auth.oidc.introspection_cache_ttl_ms),
	    "30s", "How long an introspection result is cached.", RANGE(0, MS_H)),
	S("auth.oidc.insecureAllowHTTP", ST_BOOL, C(auth.oidc.insecure_allow_http), "false",
	    "Development: allow http issuer/JWKS/introspection URLs."),
	S("outbound", ST_SECTION, 0, NULL, NULL),
	S("outbound.caFile", ST_STRING, C(outbound.ca_file), "",
	    "Extra CA bundle (PEM) for outbound TLS; `\"\"` = system CAs only."),
	S("outbound.timeout", ST_DURATION, C(outbound.timeout_ms), "10s",
	    "Total timeout of outbound requests to trusted endpoints (IdP, JWKS).",
	    RANGE(1, 5 * MS_M)),
	S("outbound.maxResponseSize", ST_SIZE, C(outbound.max_response_size), "1MiB",
	    "Largest outbound response body accepted.", RANGE(1 * KIB, 64 * MIB)),
	S("embeddedAuthServer", ST_SECTION, 0, NULL, NULL),
	S("embeddedAuthServer.issuer", ST_STRING, C(eas.issuer), NULL,
	    "Issuer URL of the embedded AS; required when `auth.mode` is `embedded`; https unless "
	    "`insecureAllowHTTP`.",
	    .check = check_issuer_url),
	S("embeddedAuthServer.authorizationEndpointBaseUrl", ST_STRING,
	    C(eas.authorization_endpoint_base_url), NULL,
	    "Base URL for the authorization endpoint; unset = the issuer.",
	    .check = check_issuer_url),
	S("embeddedAuthServer.insecureAllowHTTP", ST_BOOL, C(eas.insecure_allow_http), "false",
	    "Development: allow an http issuer and http upstream IdP URLs."),
	S("embeddedAuthServer.upstreamProviders", ST_PROVIDERS, 0, NULL,
	    "The upstream identity provider; exactly one is required in embedded mode (fields "
	    "below).",
	    .flags = SF_FILE_ONLY),
	S("embeddedAuthServer.baselineClientScopes", ST_STRLIST, C(eas.baseline_client_scopes),
	    NULL, "Scopes unioned into every client's registered scopes (DCR and CIMD).",
	    .flags = SF_FILE_ONLY, .check = check_scope),
	S("embeddedAuthServer.scopesSupported", ST_STRLIST, C(eas.scopes_supported),
	    "openid,profile,email,offline_access", "Scopes advertised in discovery.",
	    .flags = SF_FILE_ONLY, .check = check_scope),
	S("embeddedAuthServer.allowConfidentialClientRegistration", ST_BOOL,
	    C(eas.allow_confidential_client_registration), "false",
	    "Let DCR register confidential clients (with a client secret)."),
	S("embeddedAuthServer.disableUpstreamTokenInjection", ST_BOOL,
	    C(eas.disable_upstream_token_injection), "false",
	    "Do not pass the upstream IdP's token on to the backend."),
	S("embeddedAuthServer.cimd", ST_SECTION, 0, NULL, NULL),
	S("embeddedAuthServer.cimd.enabled", ST_BOOL, C(eas.cimd.enabled), "false",
	    "Accept Client ID Metadata Document URLs as client ids."),
	S("embeddedAuthServer.cimd.cacheMaxSize", ST_UINT32, C(eas.cimd.cache_max_size), "256",
	    "Most CIMD documents held in the LRU cache.", RANGE(1, 1000000)),
	S("embeddedAuthServer.cimd.cacheFallbackTtl", ST_DURATION,
	    C(eas.cimd.cache_fallback_ttl_ms), "5m",
	    "TTL of a cached document when its response has no usable Cache-Control.",
	    RANGE(1, 30 * MS_D)),
	S("embeddedAuthServer.cimd.cacheMinTtl", ST_DURATION, C(eas.cimd.cache_min_ttl_ms), "30s",
	    "Lower clamp of a Cache-Control derived TTL.", RANGE(0, 30 * MS_D)),
	S("embeddedAuthServer.cimd.cacheMaxTtl", ST_DURATION, C(eas.cimd.cache_max_ttl_ms), "24h",
	    "Upper clamp of a Cache-Control derived TTL; must be >= `cacheMinTtl`.",
	    RANGE(1, 30 * MS_D)),
	S("embeddedAuthServer.cimd.fetchTimeout", ST_DURATION, C(eas.cimd.fetch_timeout_ms), "5s",
	    "Timeout of one metadata document fetch.", RANGE(1, 60 * MS_S)),
	S("embeddedAuthServer.cimd.maxDocumentSize", ST_SIZE, C(eas.cimd.max_document_size), "5KiB",
	    "Largest metadata document accepted.", RANGE(1 * KIB, 1 * MIB)),
	S("embeddedAuthServer.cimd.insecureAllowLoopback", ST_BOOL,
	    C(eas.cimd.insecure_allow_loopback), "false",
	    "Development: allow fetching documents from loopback addresses."),
	S("embeddedAuthServer.cimd.allowedHosts", ST_STRLIST, C(eas.cimd.allowed_hosts), NULL,
	    "If set, only these hosts may serve documents (exact names or `*.example.com`).",
	    .flags = SF_FILE_ONLY, .check = check_host_pattern),
	S("embeddedAuthServer.cimd.deniedHosts", ST_STRLIST, C(eas.cimd.denied_hosts), NULL,
	    "Hosts that may never serve documents (exact names or `*.example.com`).",
	    .flags = SF_FILE_ONLY, .check = check_host_pattern),
	S("embeddedAuthServer.tokenLifespans", ST_SECTION, 0, NULL, NULL),
	S("embeddedAuthServer.tokenLifespans.accessTokenLifespan", ST_DURATION,
	    C(eas.token_lifespans.access_token_ms), "1h",
	    "Lifetime of issued access tokens (1m to 24h).", RANGE(MS_M, 24 * MS_H)),
	S("embeddedAuthServer.tokenLifespans.refreshTokenLifespan", ST_DURATION,
	    C(eas.token_lifespans.refresh_token_ms), "168h",
	    "Lifetime of issued refresh tokens (1h to 720h).", RANGE(MS_H, 30 * MS_D)),
	S("embeddedAuthServer.tokenLifespans.authCodeLifespan", ST_DURATION,
	    C(eas.token_lifespans.auth_code_ms), "10m",
	    "Lifetime of authorization codes (30s to 10m).", RANGE(30 * MS_S, 10 * MS_M)),
	S("embeddedAuthServer.signingKeySecretRefs", ST_SECRETLIST, 0, NULL,
	    "PEM private keys that sign tokens (list of secretRef); the first signs, all are "
	    "published. Unset = a key generated at start-up.",
	    .flags = SF_FILE_ONLY),
	S("embeddedAuthServer.storage", ST_SECTION, 0, NULL, NULL),
	S("embeddedAuthServer.storage.type", ST_ENUM, C(eas.storage.type), "memory",
	    "Where codes, tokens and clients live; only `memory` is supported yet.",
	    .names = storage_names),
	S("embeddedAuthServer.registration", ST_SECTION, 0, NULL, NULL),
	S("embeddedAuthServer.registration.maxClients", ST_UINT32, C(eas.registration.max_clients),
	    "10000", "Most dynamically registered clients kept.", RANGE(1, 10000000)),
	S("embeddedAuthServer.registration.ratePerSecond", ST_DOUBLE,
	    C(eas.registration.rate_per_second), "10",
	    "Sustained `/oauth/register` requests per second (token bucket)."),
	S("embeddedAuthServer.registration.burst", ST_UINT32, C(eas.registration.burst), "20",
	    "Burst size of the registration token bucket.", RANGE(1, 1000000)),
};
#define N_SETTINGS (sizeof settings / sizeof settings[0])

/* One entry of embeddedAuthServer.upstreamProviders[]; file only. */
static const struct setting provider_settings[] = {
	S("name", ST_STRING, P(name), NULL, "Provider name (letters, digits, `-`, `_`); required.",
	    .check = check_provider_name),
	S("type", ST_ENUM, P(type), NULL,
	    "`oidc` or `oauth2`; must match the config block present.", .names = upstream_names),
	S("oidcConfig", ST_SECTION, 0, NULL, NULL, .variant = 1),
	S("oidcConfig.issuerUrl", ST_STRING, P(issuer_url), NULL,
	    "Upstream OIDC issuer (discovery); required.", .check = check_issuer_url, .variant = 1),
	S("oidcConfig.clientId", ST_STRING, P(client_id), NULL,
	    "Our client id at the upstream IdP; required.", .check = check_nonempty, .variant = 1),
	S("oidcConfig.clientSecretRef", ST_SECRET, P(client_secret), NULL,
	    "Our client secret at the upstream IdP (secretRef).", .variant = 1),
	S("oidcConfig.redirectUri", ST_STRING, P(redirect_uri), NULL,
	    "Callback registered at the IdP; default `<issuer>/oauth/callback`.",
	    .check = check_url, .variant = 1),
	S("oidcConfig.scopes", ST_STRLIST, P(scopes), NULL,
	    "Scopes requested upstream; default `[openid, offline_access]`.", .check = check_scope,
	    .variant = 1),
	S("oidcConfig.subjectClaim", ST_STRING, P(subject_claim), NULL,
	    "ID token claim naming the user; default `sub`.", .check = check_nonempty,
	    .variant = 1),
	S("oauth2Config", ST_SECTION, 0, NULL, NULL, .variant = 2),
	S("oauth2Config.authorizationEndpoint", ST_STRING, P(authorization_endpoint), NULL,
	    "Upstream authorization endpoint; required.", .check = check_url, .variant = 2),
	S("oauth2Config.tokenEndpoint", ST_STRING, P(token_endpoint), NULL,
	    "Upstream token endpoint; required.", .check = check_url, .variant = 2),
	S("oauth2Config.userInfo", ST_SECTION, 0, NULL, NULL, .variant = 2),
	S("oauth2Config.userInfo.endpointUrl", ST_STRING, P(userinfo_endpoint), NULL,
	    "Upstream user info endpoint.", .check = check_url, .variant = 2),
	S("oauth2Config.clientId", ST_STRING, P(client_id), NULL,
	    "Our client id at the upstream server; required.", .check = check_nonempty,
	    .variant = 2),
	S("oauth2Config.clientSecretRef", ST_SECRET, P(client_secret), NULL,
	    "Our client secret at the upstream server (secretRef).", .variant = 2),
	S("oauth2Config.redirectUri", ST_STRING, P(redirect_uri), NULL,
	    "Callback registered upstream; default `<issuer>/oauth/callback`.", .check = check_url,
	    .variant = 2),
	S("oauth2Config.scopes", ST_STRLIST, P(scopes), NULL, "Scopes requested upstream.",
	    .check = check_scope, .variant = 2),
};
#define N_PROVIDER_SETTINGS (sizeof provider_settings / sizeof provider_settings[0])

/* ToolHive fields we know but do not implement: a clear error, not "unknown key". */
static const char *const unsupported_keys[] = {
	"hmacSecretRefs",
	"primaryUpstreamProvider",
	"delegateClients",
	"trustedIssuers",
	"forceConfidentialRedirectUris",
	"insecureAllowConfidentialOverLoopbackHTTP",
	"userInfoOverride",
	"additionalAuthorizationParams",
	"dcrConfig",
	"tokenResponseMapping",
	"identityFromToken",
	"allowedAudiences",
	"redis",
	NULL,
};

/* A secretRef found in the file, resolved once secretsDir is final. */
struct pending_secret {
	struct secret_ref *ref;
	char *where;
	char *path;
};

/* What a provider entry contained, for the cross-field checks. */
struct provider_seen {
	bool type, oidc, oauth2;
	char *where;
	char *path;
};

struct load {
	struct config *cfg;
	struct config_errors *errs;
	config_getenv_fn getenv_fn;
	const char *file;
	yaml_document_t *doc;
	unsigned char *visited;
	size_t n_nodes;
	char *where[N_SETTINGS]; /* where each top-level setting was last set */
	struct pending_secret *secrets;
	size_t n_secrets;
	struct provider_seen *seen;
	size_t n_seen;
	bool file_unreadable; /* missing file or YAML syntax error */
};

/* ---- small helpers ---- */

static void errs_add(struct config_errors *errs, const char *where, const char *path,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
errs_add(struct config_errors *errs, const char *where, const char *path, const char *fmt, ...)
{
	struct config_error *e;
	va_list ap;

	errs->v = xreallocarray(errs->v, errs->n + 1, sizeof *errs->v);
	e = &errs->v[errs->n++];
	e->where = xstrdup(where != NULL ? where : "");
	e->path = xstrdup(path != NULL ? path : "");
	va_start(ap, fmt);
	e->message = xvasprintf(fmt, ap);
	va_end(ap);
}

/* A bad value quoted for an error message: escaped and cut short. */
static char *
quote_value(const char *s)
{
	size_t len = strlen(s), cap = len > CONFIG_MAX_GOT ? CONFIG_MAX_GOT : len;
	char *out = xmalloc(cap * 4 + 8), *p = out;

	*p++ = '"';
	for (size_t i = 0; i < cap; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			*p++ = '\\';
			*p++ = (char)c;
		} else if (c < 0x20 || c == 0x7f)
			p += sprintf(p, "\\x%02x", c);
		else
			*p++ = (char)c;
	}
	if (cap < len) {
		memcpy(p, "...", 3);
		p += 3;
	}
	*p++ = '"';
	*p = '\0';
	return out;
}

static char *
where_mark(const struct load *ld, yaml_mark_t m)
{
	return xasprintf("%s:%zu:%zu", ld->file, m.line + 1, m.column + 1);
}

static void
set_string(char **field, const char *s)
{
	free(*field);
	*field = s != NULL ? xstrdup(s) : NULL;
}

static void
secret_ref_dispose(struct secret_ref *r)
{
	free(r->name);
	free(r->key);
	free(r->env);
	xfree_secret(r->value);
	memset(r, 0, sizeof *r);
}

static void
provider_dispose(struct upstream_provider *p)
{
	free(p->name);
	free(p->issuer_url);
	free(p->authorization_endpoint);
	free(p->token_endpoint);
	free(p->userinfo_endpoint);
	free(p->client_id);
	secret_ref_dispose(&p->client_secret);
	free(p->redirect_uri);
	strlist_dispose(&p->scopes);
	free(p->subject_claim);
	memset(p, 0, sizeof *p);
}

/* ---- value formats ---- */

/* Go's time.ParseDuration plus a `d` (24h) unit; "0" alone is zero. */
int
config_parse_duration(const char *s, int64_t *out_ms)
{
	static const struct {
		const char *name;
		uint64_t ns;
	} units[] = {
		{ "ns", 1 },
		{ "us", 1000 },
		{ "\xc2\xb5s", 1000 },
		{ "\xce\xbcs", 1000 },
		{ "ms", 1000000 },
		{ "s", 1000000000ULL },
		{ "m", 60000000000ULL },
		{ "h", 3600000000000ULL },
		{ "d", 86400000000000ULL },
	};
	const char *p = s;
	uint64_t total = 0;

	if (s == NULL || *s == '\0')
		return -1;
	if (strcmp(s, "0") == 0) {
		*out_ms = 0;
		return 0;
	}
	while (*p != '\0') {
		uint64_t v = 0, frac = 0, scale = 1, unit = 0, n;
		bool digits = false, fdigits = false;
		size_t ulen = 0;

		while (*p >= '0' && *p <= '9') {
			if (v > (UINT64_MAX - 9) / 10)
				return -1;
			v = v * 10 + (uint64_t)(*p++ - '0');
			digits = true;
		}
		if (*p == '.') {
			p++;
			while (*p >= '0' && *p <= '9') {
				if (scale < 1000000000000000000ULL) {
					frac = frac * 10 + (uint64_t)(*p - '0');
					scale *= 10;
				}
				p++;
				fdigits = true;
			}
		}
		if (!digits && !fdigits)
			return -1;
		for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
			size_t l = strlen(units[i].name);
			if (strncmp(p, units[i].name, l) == 0 && l > ulen) {
				unit = units[i].ns;
				ulen = l;
			}
		}
		if (unit == 0)
			return -1;
		p += ulen;
		if (v > (uint64_t)INT64_MAX / unit)
			return -1;
		n = v * unit;
		if (frac != 0)
			n += (uint64_t)((double)frac * ((double)unit / (double)scale));
		if (n > (uint64_t)INT64_MAX - total)
			return -1;
		total += n;
	}
	*out_ms = (int64_t)(total / 1000000);
	return 0;
}

/* Bytes, with an optional unit: B, KiB/MiB/GiB (1024) or KB/MB/GB (1000). */
int
config_parse_size(const char *s, uint64_t *out_bytes)
{
	static const struct {
		const char *name;
		uint64_t mul;
	} units[] = {
		{ "", 1 },
		{ "B", 1 },
		{ "KiB", 1ULL << 10 },
		{ "MiB", 1ULL << 20 },
		{ "GiB", 1ULL << 30 },
		{ "KB", 1000 },
		{ "MB", 1000000 },
		{ "GB", 1000000000 },
	};
	uint64_t v = 0;
	const char *p = s;

	if (s == NULL || !(*p >= '0' && *p <= '9'))
		return -1;
	while (*p >= '0' && *p <= '9') {
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*p++ - '0');
	}
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
		if (strcmp(p, units[i].name) != 0)
			continue;
		if (v > UINT64_MAX / units[i].mul)
			return -1;
		*out_bytes = v * units[i].mul;
		return 0;
	}
	return -1;
}

/* A duration in the shortest unit-wise form: 90m -> "1h30m". */
static char *
format_duration(int64_t ms)
{
	static const struct {
		const char *u;
		int64_t ms;
	} parts[] = { { "h", MS_H }, { "m", MS_M }, { "s", MS_S }, { "ms", 1 } };
	char buf[96] = "";
	size_t len = 0;

	if (ms == 0)
		return xstrdup("0s");
	for (size_t i = 0; i < 4; i++) {
		if (ms >= parts[i].ms) {
			len += (size_t)snprintf(buf + len, sizeof buf - len, "%" PRId64 "%s",
			    ms / parts[i].ms, parts[i].u);
			ms %= parts[i].ms;
		}
	}
	return xstrdup(buf);
}

static char *
format_size(uint64_t b)
{
	if (b != 0 && b % GIB == 0)
		return xasprintf("%" PRIu64 "GiB", b / (uint64_t)GIB);
	if (b != 0 && b % MIB == 0)
		return xasprintf("%" PRIu64 "MiB", b / (uint64_t)MIB);
	if (b != 0 && b % KIB == 0)
		return xasprintf("%" PRIu64 "KiB", b / (uint64_t)KIB);
	return xasprintf("%" PRIu64, b);
}

static int
parse_uint(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (!(*s >= '0' && *s <= '9'))
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (*s != '\0')
		return -1;
	*out = v;
	return 0;
}

/* ---- string format checks ---- */

static const char *
check_nonempty(const char *s)
{
	return *s == '\0' ? "expected a non-empty string" : NULL;
}

static bool
has_space_or_ctl(const char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s <= 0x20 || *s == 0x7f)
			return true;
	}
	return false;
}

static const char *
check_listen(const char *s)
{
	const char *colon = strrchr(s, ':');
	uint64_t port;

	if (colon == NULL || colon == s || has_space_or_ctl(s))
		return "expected host:port";
	if (s[0] == '[' && colon[-1] != ']')
		return "expected host:port";
	if (parse_uint(colon + 1, &port) == -1 || port > 65535)
		return "expected host:port with a port from 0 to 65535";
	return NULL;
}

/* Check an absolute http(s) URL without fragment or userinfo; *https says which. */
static const char *
url_check(const char *s, bool *https, bool query_ok)
{
	const char *host, *end;

	if (strncmp(s, "https://", 8) == 0) {
		*https = true;
		host = s + 8;
	} else if (strncmp(s, "http://", 7) == 0) {
		*https = false;
		host = s + 7;
	} else
		return "expected an absolute http:// or https:// URL";
	if (has_space_or_ctl(s))
		return "expected a URL without spaces";
	if (strchr(s, '#') != NULL)
		return "expected a URL without fragment";
	if (!query_ok && strchr(s, '?') != NULL)
		return "expected a URL without query";
	end = host + strcspn(host, "/?");
	if (end == host || host[0] == ':')
		return "expected a URL with a host";
	if (memchr(host, '@', (size_t)(end - host)) != NULL)
		return "expected a URL without user info";
	return NULL;
}

static const char *
check_url(const char *s)
{
	bool https;

	return url_check(s, &https, true);
}

static const char *
check_issuer_url(const char *s)
{
	bool https;

	return url_check(s, &https, false);
}

static bool
is_https(const char *s)
{
	return s != NULL && strncmp(s, "https://", 8) == 0;
}

static const char *
check_backend_url(const char *s)
{
	const char *host = s + 7, *end;
	uint64_t port;
	char *portstr;
	const char *colon;
	int bad;

	if (strncmp(s, "http://", 7) != 0 || has_space_or_ctl(s) || strchr(s, '#') != NULL ||
	    strchr(s, '?') != NULL)
		return "expected http://host:port with optional path";
	end = host + strcspn(host, "/");
	colon = NULL;
	for (const char *p = host; p < end; p++) {
		if (*p == ':')
			colon = p;
		if (*p == '@')
			return "expected http://host:port with optional path";
	}
	if (colon == NULL || colon == host)
		return "expected http://host:port with optional path";
	portstr = xstrndup(colon + 1, (size_t)(end - colon - 1));
	bad = parse_uint(portstr, &port) == -1 || port == 0 || port > 65535;
	free(portstr);
	return bad ? "expected http://host:port with a port from 1 to 65535" : NULL;
}

static const char *
check_path_prefix(const char *s)
{
	size_t len = strlen(s);

	if (len == 0)
		return NULL;
	if (s[0] != '/' || s[len - 1] == '/' || strstr(s, "//") != NULL || has_space_or_ctl(s) ||
	    strpbrk(s, "?#%") != NULL)
		return "expected \"\" or a path starting with / and not ending with /";
	return NULL;
}

static const char *
check_log_level(const char *s)
{
	if (strcmp(s, "debug") == 0 || strcmp(s, "info") == 0 || strcmp(s, "warn") == 0 ||
	    strcmp(s, "error") == 0)
		return NULL;
	return "expected one of debug, info, warn, error";
}

static const char *
check_header_name(const char *s)
{
	if (*s == '\0' ||
	    strspn(s,
		"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		"abcdefghijklmnopqrstuvwxyz") != strlen(s))
		return "expected an HTTP header name";
	return NULL;
}

static const char *
check_host_pattern(const char *s)
{
	const char *p = s;

	if (strncmp(p, "*.", 2) == 0)
		p += 2;
	if (*p == '\0' || *p == '.' || p[strlen(p) - 1] == '.' || strstr(p, "..") != NULL ||
	    strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.") !=
		strlen(p))
		return "expected a host name or *.domain";
	return NULL;
}

static const char *
check_scope(const char *s)
{
	if (*s == '\0')
		return "expected a scope token";
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c < 0x21 || c > 0x7e || c == '"' || c == '\\')
			return "expected a scope token";
	}
	return NULL;
}

static const char *
check_provider_name(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > 64 ||
	    strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != len)
		return "expected a name of letters, digits, - and _";
	return NULL;
}

/* A secret path component: a plain name, no '/', not "." or "..". */
static bool
plain_name(const char *s)
{
	size_t len = strlen(s);

	return len > 0 && len <= 253 && strcmp(s, ".") != 0 && strcmp(s, "..") != 0 &&
	    strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == len;
}

static bool
env_name(const char *s)
{
	size_t len = strlen(s);

	return len > 0 && len <= 255 && !(s[0] >= '0' && s[0] <= '9') &&
	    strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") == len;
}

/* ---- setting a value from a string (defaults, env, YAML scalars) ---- */

static const char *
type_noun(const struct setting *s)
{
	switch (s->type) {
	case ST_SECTION:
		return "a mapping";
	case ST_STRING:
		return "a string";
	case ST_BOOL:
		return "true or false";
	case ST_UINT32:
		return "an integer";
	case ST_DOUBLE:
		return "a number";
	case ST_DURATION:
		return "a duration like 5m, 1h30m or 500ms";
	case ST_SIZE:
		return "a size like 8MiB, 512KiB or 1024";
	case ST_ENUM:
		return "one of the listed values";
	case ST_STRLIST:
		return "a list of strings";
	case ST_SECRET:
		return "a secretRef {name, key} or {env}";
	case ST_SECRETLIST:
		return "a list of secretRef {name, key}";
	case ST_PROVIDERS:
		return "a list of upstream providers";
	}
	return "a value";
}

static void
enum_expected(const struct setting *s, char *buf, size_t len)
{
	size_t off = (size_t)snprintf(buf, len, "expected one of ");

	for (size_t i = 0; s->names[i] != NULL && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? ", " : "", s->names[i]);
}

/* Report a ranged value outside [min, max], formatted in the type's units. */
static void
range_error(struct config_errors *errs, const char *where, const char *path,
    const struct setting *s, bool low, const char *got)
{
	int64_t bound = low ? s->min : s->max;
	const char *op = low ? ">=" : "<=";
	char *b, *q = quote_value(got);

	if (s->type == ST_DURATION)
		b = format_duration(bound);
	else if (s->type == ST_SIZE)
		b = format_size((uint64_t)bound);
	else
		b = xasprintf("%" PRId64, bound);
	errs_add(errs, where, path, "expected %s %s %s, got %s",
	    s->type == ST_UINT32     ? "an integer"
		: s->type == ST_SIZE ? "a size"
				     : "a duration",
	    op, b, q);
	free(b);
	free(q);
}

/* Parse and store one scalar setting; on failure add an error and leave the field. */
static int
set_scalar(struct config_errors *errs, const struct setting *s, void *base, const char *val,
    const char *where, const char *path)
{
	void *f = (char *)base + s->off;
	const char *why;
	char *q = NULL, buf[160];
	uint64_t u;
	int64_t d;
	double x;
	char *end;
	int rc = -1;

	if (strlen(val) > CONFIG_MAX_STRING) {
		errs_add(errs, where, path, "expected at most %d bytes", CONFIG_MAX_STRING);
		return -1;
	}
	q = quote_value(val);
	switch (s->type) {
	case ST_STRING:
		if (s->check != NULL && (why = s->check(val)) != NULL) {
			errs_add(errs, where, path, "%s, got %s", why, q);
			goto out;
		}
		set_string(f, val);
		break;
	case ST_BOOL:
		if (strcmp(val, "true") == 0)
			*(bool *)f = true;
		else if (strcmp(val, "false") == 0)
			*(bool *)f = false;
		else {
			errs_add(errs, where, path, "expected true or false, got %s", q);
			goto out;
		}
		break;
	case ST_UINT32:
		if (parse_uint(val, &u) == -1 || u > UINT32_MAX) {
			errs_add(errs, where, path, "expected an integer, got %s", q);
			goto out;
		}
		if ((s->flags & SF_RANGE) && ((int64_t)u < s->min || (int64_t)u > s->max)) {
			range_error(errs, where, path, s, (int64_t)u < s->min, val);
			goto out;
		}
		*(uint32_t *)f = (uint32_t)u;
		break;
	case ST_DOUBLE:
		errno = 0;
		x = strtod(val, &end);
		if (!(val[0] >= '0' && val[0] <= '9') || *end != '\0' || errno != 0 ||
		    !isfinite(x) || x <= 0 || x > 1e6) {
			errs_add(errs, where, path, "expected a number > 0 and <= 1000000, got %s",
			    q);
			goto out;
		}
		*(double *)f = x;
		break;
	case ST_DURATION:
		if (config_parse_duration(val, &d) == -1) {
			errs_add(errs, where, path,
			    "expected a duration like 5m, 1h30m or 500ms, got %s", q);
			goto out;
		}
		if ((s->flags & SF_RANGE) && (d < s->min || d > s->max)) {
			range_error(errs, where, path, s, d < s->min, val);
			goto out;
		}
		*(int64_t *)f = d;
		break;
	case ST_SIZE:
		if (config_parse_size(val, &u) == -1) {
			errs_add(errs, where, path,
			    "expected a size like 8MiB, 512KiB or 1024, got %s", q);
			goto out;
		}
		if ((s->flags & SF_RANGE) &&
		    (u > INT64_MAX || (int64_t)u < s->min || (int64_t)u > s->max)) {
			range_error(errs, where, path, s, u <= INT64_MAX && (int64_t)u < s->min,
			    val);
			goto out;
		}
		*(uint64_t *)f = u;
		break;
	case ST_ENUM:
		for (int i = 0; s->names[i] != NULL; i++) {
			if (strcmp(s->names[i], val) == 0) {
				*(int *)f = i;
				rc = 0;
				goto out;
			}
		}
		enum_expected(s, buf, sizeof buf);
		errs_add(errs, where, path, "%s, got %s", buf, q);
		goto out;
	case ST_STRLIST:
		/* Defaults only: comma-separated. */
		strlist_dispose(f);
		for (const char *p = val; *p != '\0';) {
			size_t n = strcspn(p, ",");
			char *item = xstrndup(p, n);
			strlist_add(f, item);
			free(item);
			p += n;
			if (*p == ',')
				p++;
		}
		break;
	default:
		errs_add(errs, where, path, "expected %s", type_noun(s));
		goto out;
	}
	rc = 0;
out:
	free(q);
	return rc;
}

/* ---- defaults, free ---- */

static void
apply_defaults(const struct setting *table, size_t n, void *base)
{
	struct config_errors errs = { NULL, 0 };

	for (size_t i = 0; i < n; i++) {
		if (table[i].def != NULL && table[i].type != ST_SECTION)
			set_scalar(&errs, &table[i], base, table[i].def, "default", table[i].path);
	}
	if (errs.n != 0)
		abort(); /* a bad default is a bug in the table */
	config_errors_dispose(&errs);
}

struct config *
config_new(void)
{
	struct config *cfg = xcalloc(1, sizeof *cfg);

	apply_defaults(settings, N_SETTINGS, cfg);
	return cfg;
}

void
config_free(struct config *cfg)
{
	if (cfg == NULL)
		return;
	for (size_t i = 0; i < N_SETTINGS; i++) {
		const struct setting *s = &settings[i];
		void *f = (char *)cfg + s->off;

		if (s->type == ST_STRING)
			free(*(char **)f);
		else if (s->type == ST_STRLIST)
			strlist_dispose(f);
		else if (s->type == ST_SECRET)
			secret_ref_dispose(f);
	}
	for (size_t i = 0; i < cfg->eas.n_upstream_providers; i++)
		provider_dispose(&cfg->eas.upstream_providers[i]);
	free(cfg->eas.upstream_providers);
	for (size_t i = 0; i < cfg->eas.n_signing_keys; i++)
		secret_ref_dispose(&cfg->eas.signing_keys[i]);
	free(cfg->eas.signing_keys);
	free(cfg->source_path);
	free(cfg);
}

void
config_errors_dispose(struct config_errors *errs)
{
	for (size_t i = 0; i < errs->n; i++) {
		free(errs->v[i].where);
		free(errs->v[i].path);
		free(errs->v[i].message);
	}
	free(errs->v);
	errs->v = NULL;
	errs->n = 0;
}

char *
config_error_line(const struct config_error *e)
{
	char *raw, *out, *o;

	if (*e->where != '\0' && *e->path != '\0')
		raw = xasprintf("%s: %s: %s", e->where, e->path, e->message);
	else if (*e->where != '\0')
		raw = xasprintf("%s: %s", e->where, e->message);
	else if (*e->path != '\0')
		raw = xasprintf("%s: %s", e->path, e->message);
	else
		raw = xstrdup(e->message);
	/* Keys and values come from the file: one line per problem means
	 * their control characters are shown escaped, never raw. */
	out = o = xmalloc(4 * strlen(raw) + 1);
	for (const unsigned char *p = (const unsigned char *)raw; *p != '\0'; p++) {
		if (*p == '\n') {
			*o++ = '\\';
			*o++ = 'n';
		} else if (*p < 0x20 || *p == 0x7f) {
			o += sprintf(o, "\\x%02x", *p);
		} else {
			*o++ = (char)*p;
		}
	}
	*o = '\0';
	free(raw);
	return out;
}

/* ---- the YAML walk ---- */

static const char *
node_kind(const yaml_node_t *n)
{
	if (n->type == YAML_MAPPING_NODE)
		return "a mapping";
	if (n->type == YAML_SEQUENCE_NODE)
		return "a list";
	return "a scalar";
}

/* Fetch a node and mark it visited; NULL (with an error) for an alias seen before. */
static yaml_node_t *
take_node(struct load *ld, int idx, const char *path)
{
	yaml_node_t *n = yaml_document_get_node(ld->doc, idx);
	size_t i;

	if (n == NULL)
		return NULL;
	i = (size_t)(n - ld->doc->nodes.start);
	if (ld->visited[i]) {
		char *w = where_mark(ld, n->start_mark);
		errs_add(ld->errs, w, path, "YAML aliases are not supported");
		free(w);
		return NULL;
	}
	ld->visited[i] = 1;
	return n;
}

static bool
scalar_is_null(const yaml_node_t *n)
{
	const char *v = (const char *)n->data.scalar.value;

	return n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	    (*v == '\0' || strcmp(v, "null") == 0 || strcmp(v, "~") == 0 ||
		strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0);
}

/* A scalar's text, or NULL (with an error) when it is not a clean scalar. */
static const char *
scalar_text(struct load *ld, const yaml_node_t *n, const char *path, const char *noun)
{
	char *w;

	if (n->type == YAML_SCALAR_NODE &&
	    strlen((const char *)n->data.scalar.value) == n->data.scalar.length)
		return (const char *)n->data.scalar.value;
	w = where_mark(ld, n->start_mark);
	if (n->type == YAML_SCALAR_NODE)
		errs_add(ld->errs, w, path, "expected %s without NUL bytes", noun);
	else
		errs_add(ld->errs, w, path, "expected %s, got %s", noun, node_kind(n));
	free(w);
	return NULL;
}

static bool
is_unsupported(const char *key)
{
	for (size_t i = 0; unsupported_keys[i] != NULL; i++) {
		if (strcmp(unsupported_keys[i], key) == 0)
			return true;
	}
	return false;
}

static void load_map(struct load *ld, const yaml_node_t *map, const struct setting *table, size_t n,
    void *base, const char *tprefix, const char *dprefix, bool eas_scope);

static void
load_strlist(struct load *ld, const struct setting *s, struct strlist *l, const yaml_node_t *n,
    const char *path)
{
	yaml_node_item_t *it;
	char *w;

	if (n->type != YAML_SEQUENCE_NODE) {
		w = where_mark(ld, n->start_mark);
		errs_add(ld->errs, w, path, "expected a list of strings, got %s", node_kind(n));
		free(w);
		return;
	}
	strlist_dispose(l);
	for (it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
		size_t i = (size_t)(it - n->data.sequence.items.start);
		char *ipath = xasprintf("%s[%zu]", path, i);
		yaml_node_t *item = take_node(ld, *it, ipath);
		const char *v, *why;

		if (item == NULL)
			goto next;
		w = where_mark(ld, item->start_mark);
		if (i >= CONFIG_MAX_LIST) {
			errs_add(ld->errs, w, path, "expected at most %d items", CONFIG_MAX_LIST);
			free(w);
			free(ipath);
			break;
		}
		if ((v = scalar_text(ld, item, ipath, "a string")) != NULL) {
			if (strlen(v) > CONFIG_MAX_STRING)
				errs_add(ld->errs, w, ipath, "expected at most %d bytes",
				    CONFIG_MAX_STRING);
			else if (s->check != NULL && (why = s->check(v)) != NULL) {
				char *q = quote_value(v);
				errs_add(ld->errs, w, ipath, "%s, got %s", why, q);
				free(q);
			} else
				strlist_add(l, v);
		}
		free(w);
	next:
		free(ipath);
	}
}

/* Read a secretRef mapping: {name, key} or {env}; queue it for resolution. */
static void
load_secret(struct load *ld, struct secret_ref *ref, const yaml_node_t *n, const char *path)
{
	yaml_node_pair_t *pr;
	char *w = where_mark(ld, n->start_mark);
	struct pending_secret *ps;

	if (n->type == YAML_SCALAR_NODE && scalar_is_null(n))
		goto out;
	if (n->type != YAML_MAPPING_NODE) {
		errs_add(ld->errs, w, path, "expected a secretRef {name, key} or {env}, got %s",
		    node_kind(n));
		goto out;
	}
	secret_ref_dispose(ref);
	for (pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
		yaml_node_t *k = take_node(ld, pr->key, path), *v = take_node(ld, pr->value, path);
		const char *ks, *vs;
		char *kpath, *kw;
		char **field = NULL;

		if (k == NULL || v == NULL || (ks = scalar_text(ld, k, path, "a key")) == NULL)
			continue;
		kpath = xasprintf("%s.%s", path, ks);
		kw = where_mark(ld, k->start_mark);
		if (strcmp(ks, "name") == 0)
			field = &ref->name;
		else if (strcmp(ks, "key") == 0)
			field = &ref->key;
		else if (strcmp(ks, "env") == 0)
			field = &ref->env;
		if (field == NULL)
			errs_add(ld->errs, kw, kpath, "unknown key (expected name, key or env)");
		else if (*field != NULL)
			errs_add(ld->errs, kw, kpath, "duplicate key");
		else if ((vs = scalar_text(ld, v, kpath, "a string")) != NULL) {
			char *vw = where_mark(ld, v->start_mark), *q = quote_value(vs);
			if (field == &ref->env && !env_name(vs))
				errs_add(ld->errs, vw, kpath,
				    "expected an environment variable name, got %s", q);
			else if (field != &ref->env && !plain_name(vs))
				errs_add(ld->errs, vw, kpath,
				    "expected a plain name (no '/', not '..'), got %s", q);
			else
				*field = xstrdup(vs);
			free(q);
			free(vw);
		}
		free(kw);
		free(kpath);
	}
	if (ref->env != NULL && (ref->name != NULL || ref->key != NULL))
		errs_add(ld->errs, w, path, "expected either {name, key} or {env}, not both");
	else if (ref->env == NULL && (ref->name == NULL || ref->key == NULL))
		errs_add(ld->errs, w, path, "expected both name and key (or env)");
	else {
		ld->secrets = xreallocarray(ld->secrets, ld->n_secrets + 1, sizeof *ld->secrets);
		ps = &ld->secrets[ld->n_secrets++];
		ps->ref = ref;
		ps->where = xstrdup(w);
		ps->path = xstrdup(path);
	}
out:
	free(w);
}

static void
load_secretlist(struct load *ld, const yaml_node_t *n, const char *path)
{
	struct config *cfg = ld->cfg;
	size_t count;
	char *w;

	if (n->type != YAML_SEQUENCE_NODE) {
		w = where_mark(ld, n->start_mark);
		errs_add(ld->errs, w, path, "expected a list of secretRef {name, key}, got %s",
		    node_kind(n));
		free(w);
		return;
	}
	count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	if (count > 16) {
		w = where_mark(ld, n->start_mark);
		errs_add(ld->errs, w, path, "expected at most 16 signing keys");
		free(w);
		return;
	}
	for (size_t i = 0; i < cfg->eas.n_signing_keys; i++)
		secret_ref_dispose(&cfg->eas.signing_keys[i]);
	free(cfg->eas.signing_keys);
	cfg->eas.signing_keys = xcalloc(count, sizeof *cfg->eas.signing_keys);
	cfg->eas.n_signing_keys = count;
	for (size_t i = 0; i < count; i++) {
		char *ipath = xasprintf("%s[%zu]", path, i);
		yaml_node_t *item = take_node(ld, n->data.sequence.items.start[i], ipath);

		if (item != NULL)
			load_secret(ld, &cfg->eas.signing_keys[i], item, ipath);
		free(ipath);
	}
}

static void
load_providers(struct load *ld, const yaml_node_t *n, const char *path)
{
	struct config *cfg = ld->cfg;
	size_t count;
	char *w;

	if (n->type != YAML_SEQUENCE_NODE) {
		w = where_mark(ld, n->start_mark);
		errs_add(ld->errs, w, path, "expected a list of upstream providers, got %s",
		    node_kind(n));
		free(w);
		return;
	}
	count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	if (count > 16) {
		w = where_mark(ld, n->start_mark);
		errs_add(ld->errs, w, path, "expected at most 16 upstream providers");
		free(w);
		return;
	}
	for (size_t i = 0; i < cfg->eas.n_upstream_providers; i++)
		provider_dispose(&cfg->eas.upstream_providers[i]);
	free(cfg->eas.upstream_providers);
	for (size_t i = 0; i < ld->n_seen; i++) {
		free(ld->seen[i].where);
		free(ld->seen[i].path);
	}
	free(ld->seen);
	cfg->eas.upstream_providers = xcalloc(count, sizeof *cfg->eas.upstream_providers);
	cfg->eas.n_upstream_providers = count;
	ld->seen = xcalloc(count, sizeof *ld->seen);
	ld->n_seen = count;
	for (size_t i = 0; i < count; i++) {
		struct provider_seen *seen = &ld->seen[i];
		char *ipath = xasprintf("%s[%zu]", path, i);
		yaml_node_t *item = take_node(ld, n->data.sequence.items.start[i], ipath);
		yaml_node_pair_t *pr;

		seen->path = ipath;
		if (item == NULL)
			continue;
		seen->where = where_mark(ld, item->start_mark);
		if (item->type != YAML_MAPPING_NODE) {
			errs_add(ld->errs, seen->where, ipath, "expected a mapping, got %s",
			    node_kind(item));
			continue;
		}
		for (pr = item->data.mapping.pairs.start; pr < item->data.mapping.pairs.top; pr++) {
			yaml_node_t *k = yaml_document_get_node(ld->doc, pr->key);

			if (k == NULL || k->type != YAML_SCALAR_NODE)
				continue;
			if (strcmp((char *)k->data.scalar.value, "type") == 0)
				seen->type = true;
			else if (strcmp((char *)k->data.scalar.value, "oidcConfig") == 0)
				seen->oidc = true;
			else if (strcmp((char *)k->data.scalar.value, "oauth2Config") == 0)
				seen->oauth2 = true;
		}
		load_map(ld, item, provider_settings, N_PROVIDER_SETTINGS,
		    &cfg->eas.upstream_providers[i], NULL, ipath, true);
	}
}

static const struct setting *
find_setting(const struct setting *table, size_t n, const char *path)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(table[i].path, path) == 0)
			return &table[i];
	}
	return NULL;
}

/* Store one value node for setting s. */
static void
load_value(struct load *ld, const struct setting *s, const struct setting *table, size_t n,
    void *base, const yaml_node_t *v, const char *tpath, const char *dpath, bool eas_scope)
{
	char *w = where_mark(ld, v->start_mark);
	const char *text;

	if (table == settings)
		set_string(&ld->where[s - settings], w);
	switch (s->type) {
	case ST_SECTION:
		if (v->type == YAML_SCALAR_NODE && scalar_is_null(v))
			break;
		if (v->type != YAML_MAPPING_NODE) {
			errs_add(ld->errs, w, dpath, "expected a mapping, got %s", node_kind(v));
			break;
		}
		load_map(ld, v, table, n, base, tpath, dpath, eas_scope);
		break;
	case ST_STRLIST:
		if (v->type == YAML_SCALAR_NODE && scalar_is_null(v))
			strlist_dispose((struct strlist *)((char *)base + s->off));
		else
			load_strlist(ld, s, (struct strlist *)((char *)base + s->off), v, dpath);
		break;
	case ST_SECRET:
		load_secret(ld, (struct secret_ref *)((char *)base + s->off), v, dpath);
		break;
	case ST_SECRETLIST:
		load_secretlist(ld, v, dpath);
		break;
	case ST_PROVIDERS:
		load_providers(ld, v, dpath);
		break;
	default:
		if (v->type == YAML_SCALAR_NODE && scalar_is_null(v) && s->type == ST_STRING &&
		    s->def == NULL) {
			set_string((char **)((char *)base + s->off), NULL);
			break;
		}
		if (v->type != YAML_SCALAR_NODE) {
			if (s->type == ST_ENUM) {
				char buf[160];
				enum_expected(s, buf, sizeof buf);
				errs_add(ld->errs, w, dpath, "%s, got %s", buf, node_kind(v));
			} else
				errs_add(ld->errs, w, dpath, "expected %s, got %s", type_noun(s),
				    node_kind(v));
			break;
		}
		if ((text = scalar_text(ld, v, dpath, type_noun(s))) != NULL)
			set_scalar(ld->errs, s, base, text, w, dpath);
		break;
	}
	free(w);
}

/*
 * Walk one mapping against a table: tprefix is the key path inside the
 * table, dprefix the path shown in errors (they differ for manifests and
 * provider entries). Every key is checked: duplicates, unknown keys and
 * known-but-unsupported ToolHive fields are reported.
 */
static void
load_map(struct load *ld, const yaml_node_t *map, const struct setting *table, size_t n, void *base,
    const char *tprefix, const char *dprefix, bool eas_scope)
{
	yaml_node_pair_t *pr, *prev;
	char *w;

	/* Bounded: the duplicate check below is quadratic. */
	if (map->data.mapping.pairs.top - map->data.mapping.pairs.start > CONFIG_MAX_KEYS) {
		w = where_mark(ld, map->start_mark);
		errs_add(ld->errs, w, dprefix != NULL ? dprefix : "", "expected at most %d keys",
		    CONFIG_MAX_KEYS);
		free(w);
		return;
	}
	for (pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top; pr++) {
		yaml_node_t *k = take_node(ld, pr->key, dprefix), *v, *pk;
		const struct setting *s;
		const char *ks;
		char *tpath, *dpath, *kw;
		bool dup = false;

		if (k == NULL ||
		    (ks = scalar_text(ld, k, dprefix != NULL ? dprefix : "", "a key")) == NULL)
			continue;
		tpath = tprefix != NULL ? xasprintf("%s.%s", tprefix, ks) : xstrdup(ks);
		dpath = dprefix != NULL ? xasprintf("%s.%s", dprefix, ks) : xstrdup(ks);
		kw = where_mark(ld, k->start_mark);
		for (prev = map->data.mapping.pairs.start; prev < pr; prev++) {
			pk = yaml_document_get_node(ld->doc, prev->key);
			if (pk != NULL && pk->type == YAML_SCALAR_NODE &&
			    strcmp((const char *)pk->data.scalar.value, ks) == 0)
				dup = true;
		}
		s = find_setting(table, n, tpath);
		if (dup)
			errs_add(ld->errs, kw, dpath, "duplicate key");
		else if (s == NULL &&
		    (eas_scope || strncmp(tpath, "embeddedAuthServer.", 19) == 0) &&
		    is_unsupported(ks))
			errs_add(ld->errs, kw, dpath, "%s is not supported by mcp-proxy-runner",
			    ks);
		else if (s == NULL)
			errs_add(ld->errs, kw, dpath, "unknown key");
		else if ((v = take_node(ld, pr->value, dpath)) != NULL)
			load_value(ld, s, table, n, base, v, tpath, dpath, eas_scope);
		free(kw);
		free(tpath);
		free(dpath);
	}
}

/* The value of key in a mapping (not marked visited), or NULL. */
static yaml_node_t *
map_get(struct load *ld, const yaml_node_t *map, const char *key, yaml_node_t **keynode)
{
	yaml_node_pair_t *pr;

	for (pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top; pr++) {
		yaml_node_t *k = yaml_document_get_node(ld->doc, pr->key);
		if (k != NULL && k->type == YAML_SCALAR_NODE &&
		    strcmp((char *)k->data.scalar.value, key) == 0) {
			if (keynode != NULL)
				*keynode = k;
			return yaml_document_get_node(ld->doc, pr->value);
		}
	}
	return NULL;
}

/* Check that a manifest's scalar field equals want. */
static bool
manifest_expect(struct load *ld, const yaml_node_t *map, const yaml_node_t *at, const char *key,
    const char *path, const char *want, bool prefix, const char *hint)
{
	yaml_node_t *v = map_get(ld, map, key, NULL);
	char *w, *q;
	bool ok;

	if (v == NULL) {
		w = where_mark(ld, at->start_mark);
		errs_add(ld->errs, w, path, "missing; expected %s%s", want, prefix ? "..." : "");
		free(w);
		return false;
	}
	w = where_mark(ld, v->start_mark);
	if (v->type != YAML_SCALAR_NODE) {
		errs_add(ld->errs, w, path, "expected %s, got %s", want, node_kind(v));
		free(w);
		return false;
	}
	ok = prefix ? strncmp((char *)v->data.scalar.value, want, strlen(want)) == 0
		    : strcmp((char *)v->data.scalar.value, want) == 0;
	if (!ok) {
		q = quote_value((char *)v->data.scalar.value);
		errs_add(ld->errs, w, path, "expected %s%s, got %s%s", want, prefix ? "..." : "", q,
		    hint);
		free(q);
	}
	free(w);
	return ok;
}

/* Walk a whole MCPExternalAuthConfig manifest: spec.embeddedAuthServer only. */
static void
load_manifest(struct load *ld, const yaml_node_t *root)
{
	static const char *const top_keys[] = { "apiVersion", "kind", "metadata", "spec", "status",
		NULL };
	yaml_node_pair_t *pr, *prev;
	yaml_node_t *spec, *eas, *k;
	bool known;
	char *w;

	if (root->data.mapping.pairs.top - root->data.mapping.pairs.start > CONFIG_MAX_KEYS) {
		w = where_mark(ld, root->start_mark);
		errs_add(ld->errs, w, "", "expected at most %d keys", CONFIG_MAX_KEYS);
		free(w);
		return;
	}
	for (pr = root->data.mapping.pairs.start; pr < root->data.mapping.pairs.top; pr++) {
		k = take_node(ld, pr->key, "");
		if (k == NULL || scalar_text(ld, k, "", "a key") == NULL)
			continue;
		w = where_mark(ld, k->start_mark);
		known = false;
		for (size_t i = 0; top_keys[i] != NULL; i++)
			known = known || strcmp(top_keys[i], (char *)k->data.scalar.value) == 0;
		for (prev = root->data.mapping.pairs.start; prev < pr; prev++) {
			yaml_node_t *pk = yaml_document_get_node(ld->doc, prev->key);
			if (pk != NULL && pk->type == YAML_SCALAR_NODE &&
			    strcmp((char *)pk->data.scalar.value, (char *)k->data.scalar.value) ==
				0) {
				errs_add(ld->errs, w, (char *)k->data.scalar.value,
				    "duplicate key");
				known = true;
			}
		}
		if (!known)
			errs_add(ld->errs, w, (char *)k->data.scalar.value,
			    "unknown key in an MCPExternalAuthConfig manifest (expected "
			    "apiVersion, kind, metadata, spec)");
		free(w);
	}
	manifest_expect(ld, root, root, "apiVersion", "apiVersion", "toolhive.stacklok.dev/", true,
	    "");
	manifest_expect(ld, root, root, "kind", "kind", "MCPExternalAuthConfig", false, "");
	spec = map_get(ld, root, "spec", NULL);
	if (spec == NULL) {
		w = where_mark(ld, root->start_mark);
		errs_add(ld->errs, w, "spec", "missing; expected spec.type: embeddedAuthServer");
		free(w);
		return;
	}
	if (spec->type != YAML_MAPPING_NODE) {
		w = where_mark(ld, spec->start_mark);
		errs_add(ld->errs, w, "spec", "expected a mapping, got %s", node_kind(spec));
		free(w);
		return;
	}
	if (!manifest_expect(ld, spec, spec, "type", "spec.type", "embeddedAuthServer", false,
		" (mcp-proxy-runner only reads embeddedAuthServer configs)"))
		return;
	for (pr = spec->data.mapping.pairs.start; pr < spec->data.mapping.pairs.top; pr++) {
		k = yaml_document_get_node(ld->doc, pr->key);
		if (k == NULL || k->type != YAML_SCALAR_NODE)
			continue;
		if (strcmp((char *)k->data.scalar.value, "type") != 0 &&
		    strcmp((char *)k->data.scalar.value, "embeddedAuthServer") != 0) {
			w = where_mark(ld, k->start_mark);
			char *p = xasprintf("spec.%s", (char *)k->data.scalar.value);
			errs_add(ld->errs, w, p, "unknown key (expected type, embeddedAuthServer)");
			free(p);
			free(w);
		}
	}
	eas = map_get(ld, spec, "embeddedAuthServer", &k);
	if (eas == NULL) {
		w = where_mark(ld, spec->start_mark);
		errs_add(ld->errs, w, "spec.embeddedAuthServer", "missing");
		free(w);
		return;
	}
	ld->visited[eas - ld->doc->nodes.start] = 1;
	load_value(ld, find_setting(settings, N_SETTINGS, "embeddedAuthServer"), settings,
	    N_SETTINGS, ld->cfg, eas, "embeddedAuthServer", "spec.embeddedAuthServer", true);
}

static int
read_file(const char *path, size_t max, char **out, size_t *out_len, const char **why)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	ssize_t r;
	int fd, rc = -1;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		*why = strerror(errno);
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		*why = "not a regular file";
		goto out;
	}
	if ((uint64_t)st.st_size > max) {
		*why = "file too large";
		goto out;
	}
	buf = xmalloc(max + 1);
	while ((r = read(fd, buf + len, max + 1 - len)) > 0) {
		len += (size_t)r;
		if (len > max) {
			*why = "file too large";
			goto out;
		}
	}
	if (r == -1) {
		*why = strerror(errno);
		goto out;
	}
	buf[len] = '\0';
	*out = buf;
	*out_len = len;
	buf = NULL;
	rc = 0;
out:
	if (buf != NULL) {
		explicit_bzero(buf, max + 1);
		free(buf);
	}
	close(fd);
	return rc;
}

/* Parse the file into a document and walk it. */
static void
load_file(struct load *ld, const char *path)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_node_t *root;
	char *text = NULL, *w;
	size_t len;
	const char *why;
	bool parser_ok = false, doc_ok = false;

	if (read_file(path, CONFIG_MAX_FILE, &text, &len, &why) == -1) {
		errs_add(ld->errs, path, "", "cannot read config file: %s", why);
		ld->file_unreadable = true;
		return;
	}
	if (!yaml_parser_initialize(&parser)) {
		errs_add(ld->errs, path, "", "cannot initialize the YAML parser");
		goto out;
	}
	parser_ok = true;
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		w = xasprintf("%s:%zu:%zu", path, parser.problem_mark.line + 1,
		    parser.problem_mark.column + 1);
		if (parser.context != NULL)
			errs_add(ld->errs, w, "", "YAML syntax error: %s %s", parser.problem,
			    parser.context);
		else
			errs_add(ld->errs, w, "", "YAML syntax error: %s",
			    parser.problem != NULL ? parser.problem : "unknown");
		free(w);
		ld->file_unreadable = true;
		goto out;
	}
	doc_ok = true;
	ld->doc = &doc;
	ld->n_nodes = (size_t)(doc.nodes.top - doc.nodes.start);
	ld->visited = xcalloc(ld->n_nodes + 1, 1);
	root = yaml_document_get_root_node(&doc);
	if (root == NULL)
		goto out; /* an empty file: defaults */
	{
		yaml_document_t next;
		if (yaml_parser_load(&parser, &next)) {
			if (yaml_document_get_root_node(&next) != NULL) {
				w = where_mark(ld, yaml_document_get_root_node(&next)->start_mark);
				errs_add(ld->errs, w, "", "expected a single YAML document");
				free(w);
			}
			yaml_document_delete(&next);
		}
	}
	ld->visited[0] = 1;
	if (root->type != YAML_MAPPING_NODE) {
		w = where_mark(ld, root->start_mark);
		errs_add(ld->errs, w, "", "expected a mapping at the top level, got %s",
		    node_kind(root));
		free(w);
		goto out;
	}
	if (map_get(ld, root, "kind", NULL) != NULL ||
	    map_get(ld, root, "apiVersion", NULL) != NULL ||
	    map_get(ld, root, "spec", NULL) != NULL)
		load_manifest(ld, root);
	else
		load_map(ld, root, settings, N_SETTINGS, ld->cfg, NULL, NULL, false);
out:
	if (doc_ok)
		yaml_document_delete(&doc);
	ld->doc = NULL;
	if (parser_ok)
		yaml_parser_delete(&parser);
	free(text);
}

/* ---- environment, secrets, validation ---- */

static char *
env_name_of(const struct setting *s)
{
	char *name, *p;

	if (s->env != NULL)
		return xstrdup(s->env);
	name = xasprintf("MCP_PROXY_%s", s->path);
	for (p = name; *p != '\0'; p++)
		*p = *p == '.' ? '_' : (char)toupper((unsigned char)*p);
	return name;
}

static bool
env_capable(const struct setting *s)
{
	return s->type != ST_SECTION && !(s->flags & SF_FILE_ONLY);
}

static void
load_env(struct load *ld)
{
	for (size_t i = 0; i < N_SETTINGS; i++) {
		const struct setting *s = &settings[i];
		char *name, *where;
		const char *v;

		if (!env_capable(s))
			continue;
		name = env_name_of(s);
		if ((v = ld->getenv_fn(name)) != NULL) {
			where = xasprintf("env %s", name);
			if (set_scalar(ld->errs, s, ld->cfg, v, where, s->path) == 0)
				set_string(&ld->where[i], where);
			free(where);
		}
		free(name);
	}
}

static void
resolve_secret(struct load *ld, struct pending_secret *ps)
{
	struct secret_ref *r = ps->ref;
	char *file = NULL, *buf = NULL;
	const char *v, *why;
	size_t len;

	if (r->env != NULL) {
		if ((v = ld->getenv_fn(r->env)) == NULL) {
			errs_add(ld->errs, ps->where, ps->path,
			    "environment variable %s is not set", r->env);
			return;
		}
		len = strlen(v);
		buf = xstrdup(v);
	} else {
		file = xasprintf("%s/%s/%s", ld->cfg->secrets_dir, r->name, r->key);
		if (read_file(file, CONFIG_MAX_SECRET, &buf, &len, &why) == -1) {
			errs_add(ld->errs, ps->where, ps->path, "cannot read secret file %s: %s",
			    file, why);
			goto out;
		}
		if (len > 0 && buf[len - 1] == '\n')
			buf[--len] = '\0';
		if (len > 0 && buf[len - 1] == '\r')
			buf[--len] = '\0';
	}
	if (len == 0 || memchr(buf, '\0', len) != NULL) {
		errs_add(ld->errs, ps->where, ps->path, "secret %s is empty or contains NUL bytes",
		    file != NULL ? file : r->env);
		xfree_secret(buf);
		goto out;
	}
	xfree_secret(r->value);
	r->value = buf;
	r->value_len = len;
out:
	free(file);
}

static const char *
where_of(struct load *ld, const char *path)
{
	const struct setting *s = find_setting(settings, N_SETTINGS, path);

	if (s != NULL && ld->where[s - settings] != NULL)
		return ld->where[s - settings];
	return "";
}

/* An http URL is fine only with the insecure flag; report the rest. */
static void
require_https(struct load *ld, const char *url, bool insecure, const char *where, const char *path,
    const char *flag)
{
	if (url != NULL && !is_https(url) && !insecure)
		errs_add(ld->errs, where, path,
		    "expected an https URL (http needs %s: true), got an http URL", flag);
}

static void
validate_provider(struct load *ld, size_t i)
{
	struct config *cfg = ld->cfg;
	struct upstream_provider *p = &cfg->eas.upstream_providers[i];
	struct provider_seen *seen = &ld->seen[i];
	const char *w = seen->where != NULL ? seen->where : "";
	const char *flag = "embeddedAuthServer.insecureAllowHTTP";
	bool insecure = cfg->eas.insecure_allow_http;
	size_t ilen;

	if (p->name == NULL)
		errs_add(ld->errs, w, seen->path, "name is required");
	if (!seen->type) {
		errs_add(ld->errs, w, seen->path, "type is required (oidc or oauth2)");
		return;
	}
	if (seen->oidc && seen->oauth2) {
		errs_add(ld->errs, w, seen->path,
		    "expected one of oidcConfig or oauth2Config, not both");
		return;
	}
	if (p->type == UPSTREAM_OIDC && !seen->oidc) {
		errs_add(ld->errs, w, seen->path, "type is oidc but oidcConfig is missing%s",
		    seen->oauth2 ? " (oauth2Config given: set type: oauth2)" : "");
		return;
	}
	if (p->type == UPSTREAM_OAUTH2 && !seen->oauth2) {
		errs_add(ld->errs, w, seen->path, "type is oauth2 but oauth2Config is missing%s",
		    seen->oidc ? " (oidcConfig given: set type: oidc)" : "");
		return;
	}
	if (p->client_id == NULL)
		errs_add(ld->errs, w, seen->path, "%s.clientId is required",
		    p->type == UPSTREAM_OIDC ? "oidcConfig" : "oauth2Config");
	if (p->type == UPSTREAM_OIDC) {
		if (p->issuer_url == NULL)
			errs_add(ld->errs, w, seen->path, "oidcConfig.issuerUrl is required");
		require_https(ld, p->issuer_url, insecure, w, seen->path, flag);
		if (p->scopes.n == 0) {
			strlist_add(&p->scopes, "openid");
			strlist_add(&p->scopes, "offline_access");
		}
		if (p->subject_claim == NULL)
			p->subject_claim = xstrdup("sub");
	} else {
		if (p->authorization_endpoint == NULL)
			errs_add(ld->errs, w, seen->path,
			    "oauth2Config.authorizationEndpoint is required");
		if (p->token_endpoint == NULL)
			errs_add(ld->errs, w, seen->path, "oauth2Config.tokenEndpoint is required");
		require_https(ld, p->authorization_endpoint, insecure, w, seen->path, flag);
		require_https(ld, p->token_endpoint, insecure, w, seen->path, flag);
		require_https(ld, p->userinfo_endpoint, insecure, w, seen->path, flag);
	}
	if (p->redirect_uri == NULL && cfg->eas.issuer != NULL) {
		ilen = strlen(cfg->eas.issuer);
		while (ilen > 0 && cfg->eas.issuer[ilen - 1] == '/')
			ilen--;
		p->redirect_uri = xasprintf("%.*s/oauth/callback", (int)ilen, cfg->eas.issuer);
	}
}

static void
validate(struct load *ld)
{
	struct config *cfg = ld->cfg;

	if (cfg->auth.mode != AUTH_MODE_NONE && cfg->server.resource_url == NULL)
		errs_add(ld->errs, "", "server.resourceUrl",
		    "required unless auth.mode is none (set it or MCP_PROXY_SERVER_RESOURCEURL)");
	if (cfg->auth.mode == AUTH_MODE_OIDC) {
		if (cfg->auth.oidc.issuer == NULL)
			errs_add(ld->errs, where_of(ld, "auth.mode"), "auth.oidc.issuer",
			    "required when auth.mode is oidc");
		if (cfg->auth.oidc.audience == NULL)
			errs_add(ld->errs, where_of(ld, "auth.mode"), "auth.oidc.audience",
			    "required when auth.mode is oidc");
		require_https(ld, cfg->auth.oidc.issuer, cfg->auth.oidc.insecure_allow_http,
		    where_of(ld, "auth.oidc.issuer"), "auth.oidc.issuer",
		    "auth.oidc.insecureAllowHTTP");
		require_https(ld, cfg->auth.oidc.jwks_url, cfg->auth.oidc.insecure_allow_http,
		    where_of(ld, "auth.oidc.jwksUrl"), "auth.oidc.jwksUrl",
		    "auth.oidc.insecureAllowHTTP");
		require_https(ld, cfg->auth.oidc.introspection_url,
		    cfg->auth.oidc.insecure_allow_http, where_of(ld, "auth.oidc.introspectionUrl"),
		    "auth.oidc.introspectionUrl", "auth.oidc.insecureAllowHTTP");
	}
	if (cfg->eas.cimd.cache_min_ttl_ms > cfg->eas.cimd.cache_max_ttl_ms)
		errs_add(ld->errs, where_of(ld, "embeddedAuthServer.cimd.cacheMinTtl"),
		    "embeddedAuthServer.cimd.cacheMinTtl", "expected a duration <= cacheMaxTtl");
	if (cfg->eas.storage.type == STORAGE_REDIS)
		errs_add(ld->errs, where_of(ld, "embeddedAuthServer.storage.type"),
		    "embeddedAuthServer.storage.type", "storage.type redis is not supported yet");
	for (size_t i = 0; i < cfg->eas.n_signing_keys; i++) {
		const char *v = cfg->eas.signing_keys[i].value;
		if (v != NULL && strstr(v, "-----BEGIN ") == NULL)
			errs_add(ld->errs, where_of(ld, "embeddedAuthServer.signingKeySecretRefs"),
			    "embeddedAuthServer.signingKeySecretRefs",
			    "secret [%zu] is not a PEM private key (no -----BEGIN line)", i);
	}
	if (cfg->auth.mode != AUTH_MODE_EMBEDDED)
		return;
	if (cfg->eas.issuer == NULL)
		errs_add(ld->errs, where_of(ld, "embeddedAuthServer"), "embeddedAuthServer.issuer",
		    "required when auth.mode is embedded");
	require_https(ld, cfg->eas.issuer, cfg->eas.insecure_allow_http,
	    where_of(ld, "embeddedAuthServer.issuer"), "embeddedAuthServer.issuer",
	    "embeddedAuthServer.insecureAllowHTTP");
	require_https(ld, cfg->eas.authorization_endpoint_base_url, cfg->eas.insecure_allow_http,
	    where_of(ld, "embeddedAuthServer.authorizationEndpointBaseUrl"),
	    "embeddedAuthServer.authorizationEndpointBaseUrl",
	    "embeddedAuthServer.insecureAllowHTTP");
	if (cfg->eas.n_upstream_providers == 0)
		errs_add(ld->errs, where_of(ld, "embeddedAuthServer.upstreamProviders"),
		    "embeddedAuthServer.upstreamProviders",
		    "exactly one upstream provider is required");
	else if (cfg->eas.n_upstream_providers > 1)
		errs_add(ld->errs, where_of(ld, "embeddedAuthServer.upstreamProviders"),
		    "embeddedAuthServer.upstreamProviders",
		    "multiple upstream providers are not supported yet");
	for (size_t i = 0; i < cfg->eas.n_upstream_providers && i < ld->n_seen; i++)
		validate_provider(ld, i);
}

static const char *
real_getenv(const char *name)
{
	return getenv(name);
}

int
config_load(struct config *cfg, const char *path, config_getenv_fn getenv_fn,
    struct config_errors *errs)
{
	struct load ld;
	size_t before = errs->n;

	memset(&ld, 0, sizeof ld);
	ld.cfg = cfg;
	ld.errs = errs;
	ld.getenv_fn = getenv_fn != NULL ? getenv_fn : real_getenv;
	ld.file = path;
	if (path != NULL) {
		set_string(&cfg->source_path, path);
		load_file(&ld, path);
		free(ld.visited);
		ld.visited = NULL;
	}
	load_env(&ld);
	for (size_t i = 0; i < ld.n_secrets; i++)
		resolve_secret(&ld, &ld.secrets[i]);
	/* Cross-field checks on a file that could not be read would only add noise. */
	if (!ld.file_unreadable)
		validate(&ld);

	for (size_t i = 0; i < ld.n_secrets; i++) {
		free(ld.secrets[i].where);
		free(ld.secrets[i].path);
	}
	free(ld.secrets);
	for (size_t i = 0; i < ld.n_seen; i++) {
		free(ld.seen[i].where);
		free(ld.seen[i].path);
	}
	free(ld.seen);
	for (size_t i = 0; i < N_SETTINGS; i++)
		free(ld.where[i]);
	return errs->n == before ? 0 : -1;
}

/* ---- printing ---- */

static void
print_quoted(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			fprintf(out, "\\x%02x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

static void
print_secret(FILE *out, const struct secret_ref *r)
{
	if (r->env != NULL) {
		fputs("{env: ", out);
		print_quoted(out, r->env);
		fputs("}", out);
	} else if (r->name != NULL) {
		fputs("{name: ", out);
		print_quoted(out, r->name);
		fputs(", key: ", out);
		print_quoted(out, r->key != NULL ? r->key : "");
		fputs("}", out);
	} else {
		fputs("null", out);
		return;
	}
	fputs("  # value: <redacted>", out);
}

static void print_table(FILE *out, const struct setting *table, size_t n, const void *base,
    int indent, bool dash, int variant);

/* Print the value part of one setting (after "key:"). */
static void
print_value(FILE *out, const struct setting *s, const void *base, int indent)
{
	const void *f = (const char *)base + s->off;
	const struct config *cfg = base;
	char *t;

	switch (s->type) {
	case ST_SECTION:
		break;
	case ST_STRING:
		fputc(' ', out);
		if (*(char *const *)f == NULL)
			fputs("null", out);
		else
			print_quoted(out, *(char *const *)f);
		break;
	case ST_BOOL:
		fprintf(out, " %s", *(const bool *)f ? "true" : "false");
		break;
	case ST_UINT32:
		fprintf(out, " %" PRIu32, *(const uint32_t *)f);
		break;
	case ST_DOUBLE:
		fprintf(out, " %g", *(const double *)f);
		break;
	case ST_DURATION:
		t = format_duration(*(const int64_t *)f);
		fprintf(out, " %s", t);
		free(t);
		break;
	case ST_SIZE:
		t = format_size(*(const uint64_t *)f);
		fprintf(out, " %s", t);
		free(t);
		break;
	case ST_ENUM:
		fprintf(out, " %s", s->names[*(const int *)f]);
		break;
	case ST_STRLIST:
		fputs(" [", out);
		for (size_t i = 0; i < ((const struct strlist *)f)->n; i++) {
			fputs(i ? ", " : "", out);
			print_quoted(out, ((const struct strlist *)f)->v[i]);
		}
		fputs("]", out);
		break;
	case ST_SECRET:
		fputc(' ', out);
		print_secret(out, f);
		break;
	case ST_SECRETLIST:
		if (cfg->eas.n_signing_keys == 0)
			fputs(" []", out);
		for (size_t i = 0; i < cfg->eas.n_signing_keys; i++) {
			fprintf(out, "\n%*s- ", indent + 2, "");
			print_secret(out, &cfg->eas.signing_keys[i]);
		}
		break;
	case ST_PROVIDERS:
		if (cfg->eas.n_upstream_providers == 0)
			fputs(" []", out);
		fputc('\n', out);
		for (size_t i = 0; i < cfg->eas.n_upstream_providers; i++) {
			const struct upstream_provider *p = &cfg->eas.upstream_providers[i];
			print_table(out, provider_settings, N_PROVIDER_SETTINGS, p, indent + 4,
			    true, p->type == UPSTREAM_OIDC ? 1 : 2);
		}
		return;
	}
	fputc('\n', out);
}

/* Print a table as YAML at indent; dash starts a list item; variant filters providers' blocks. */
static void
print_table(FILE *out, const struct setting *table, size_t n, const void *base, int indent,
    bool dash, int variant)
{
	for (size_t i = 0; i < n; i++) {
		const struct setting *s = &table[i];
		const char *key = strrchr(s->path, '.');
		int depth = 0;

		if (s->variant != 0 && s->variant != variant)
			continue;
		for (const char *p = s->path; *p != '\0'; p++)
			depth += *p == '.';
		key = key != NULL ? key + 1 : s->path;
		if (dash) {
			fprintf(out, "%*s- ", indent - 2, "");
			dash = false;
		} else
			fprintf(out, "%*s", indent + depth * 2, "");
		fprintf(out, "%s:", key);
		if (s->type == ST_SECTION)
			fputc('\n', out);
		else
			print_value(out, s, base, indent + depth * 2);
	}
}

void
config_print(const struct config *cfg, FILE *out)
{
	fputs("# effective configuration (secrets redacted)\n", out);
	print_table(out, settings, N_SETTINGS, cfg, 0, false, 0);
}

static const char *
type_doc(const struct setting *s)
{
	switch (s->type) {
	case ST_STRING:
		return "string";
	case ST_BOOL:
		return "bool";
	case ST_UINT32:
		return "integer";
	case ST_DOUBLE:
		return "number";
	case ST_DURATION:
		return "duration";
	case ST_SIZE:
		return "size";
	case ST_ENUM:
		return NULL;
	case ST_STRLIST:
		return "list of strings";
	case ST_SECRET:
		return "secretRef";
	case ST_SECRETLIST:
		return "list of secretRef";
	case ST_PROVIDERS:
		return "list of objects";
	case ST_SECTION:
		break;
	}
	return "";
}

static void
print_doc_rows(FILE *out, const struct setting *table, size_t n, const char *prefix, bool file_only)
{
	for (size_t i = 0; i < n; i++) {
		const struct setting *s = &table[i];
		char *env;

		if (s->type == ST_SECTION)
			continue;
		fprintf(out, "| `%s%s` | ", prefix, s->path);
		if (file_only || !env_capable(s))
			fputs("(file only)", out);
		else {
			env = env_name_of(s);
			fprintf(out, "`%s`", env);
			free(env);
		}
		fputs(" | ", out);
		if (s->type == ST_ENUM) {
			for (size_t j = 0; s->names[j] != NULL; j++)
				fprintf(out, "%s`%s`", j ? " \\| " : "", s->names[j]);
		} else
			fputs(type_doc(s), out);
		fputs(" | ", out);
		if (s->def == NULL)
			fputs("—", out);
		else if (*s->def == '\0')
			fputs("`\"\"`", out);
		else if (s->type == ST_STRLIST) {
			fputs("`[", out);
			for (const char *p = s->def; *p != '\0'; p++) {
				if (*p == ',')
					fputs(", ", out);
				else
					fputc(*p, out);
			}
			fputs("]`", out);
		} else
			fprintf(out, "`%s`", s->def);
		fprintf(out, " | %s |\n", s->doc);
	}
}

void
config_print_docs(FILE *out)
{
	fputs("\n| Key | Env | Type | Default | Description |\n|---|---|---|---|---|\n", out);
	print_doc_rows(out, settings, N_SETTINGS, "", false);
	print_doc_rows(out, provider_settings, N_PROVIDER_SETTINGS,
	    "embeddedAuthServer.upstreamProviders[].", true);
	fputs(
	    "\n"
	    "Formats:\n"
	    "\n"
	    "- **duration**: Go syntax, a sequence of numbers with units `ns`, `us`, `ms`, `s`, "
	    "`m`, `h` "
	    "(plus `d` = 24h): `500ms`, `10s`, `5m`, `1h30m`, `1.5h`; `0` alone is zero. No sign, "
	    "no "
	    "spaces, a unit is required.\n"
	    "- **size**: an integer number of bytes with an optional unit: `B`, `KiB`/`MiB`/`GiB` "
	    "(1024-based) or `KB`/`MB`/`GB` (1000-based): `8MiB`, `512KiB`, `1024`. No fractions.\n"
	    "- **bool**: exactly `true` or `false` (YAML 1.1 `yes`/`no`/`on`/`off` are rejected).\n"
	    "- **integer**: decimal digits only, range-checked.\n"
	    "- **secretRef**: `{name: N, key: K}` reads the file `<secretsDir>/N/K` (a mounted "
	    "Kubernetes "
	    "Secret; one trailing newline is stripped; N and K are plain names), or `{env: VAR}` "
	    "reads "
	    "an environment variable. Secret values are never printed.\n"
	    "- **env**: `MCP_PROXY_` + the key path in upper case with dots as underscores; the "
	    "environment wins over the file. Lists, secretRefs and `upstreamProviders` are file "
	    "only.\n"
	    "- The file may also be a whole ToolHive `MCPExternalAuthConfig` manifest with "
	    "`spec.type: embeddedAuthServer`; its `spec.embeddedAuthServer` is read as "
	    "`embeddedAuthServer` and everything else comes from the environment and defaults.\n"
	    "- Unknown keys are errors. Known ToolHive fields that are not implemented (for "
	    "example "
	    "`hmacSecretRefs`, `primaryUpstreamProvider`, `dcrConfig`) are reported as not "
	    "supported.\n"
	    "\n",
	    out);
}
