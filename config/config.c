/*
 * The settings table, which drives everything in this room — defaults here,
 * the loader, env overlay, secrets and validation in load.c, --print-config
 * and the README table in print.c — and the value formats (durations,
 * sizes, URLs, names) every setting is parsed and checked with. It must
 * never print a resolved secret and never stop at the first problem: every
 * bad setting becomes one entry in struct config_errors.
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

#include "config/config_private.h"

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
static const char *const decision_names[] = { "deny", "allow", NULL };

#define C(f) offsetof(struct config, f)
#define P(f) offsetof(struct upstream_provider, f)
#define S(p, t, o, d, ...) \
	{ \
		.path = (p), .type = (t), .off = (o), .def = (d), .doc = __VA_ARGS__ \
	}
#define RANGE(lo, hi) .flags = SF_RANGE, .min = (lo), .max = (hi)

/* The config_settings, in print order: a section precedes its children. */
const struct setting config_settings[] = {
	S("secretsDir", ST_STRING, C(secrets_dir), "/etc/mcp-proxy/secrets",
	    "Directory where Kubernetes mounts Secrets; a secretRef {name, key} reads "
	    "`<secretsDir>/<name>/<key>`.",
	    .check = check_nonempty, .env = "MCP_PROXY_SECRETS_DIR"),
	S("server", ST_SECTION, 0, NULL, NULL),
	S("server.listen", ST_STRING, C(server.listen), "0.0.0.0:8080",
	    "Address (`host:port`) MCP clients connect to.", .check = check_listen),
	S("server.diagnosticsListen", ST_STRING, C(server.diagnostics_listen), "0.0.0.0:9464",
	    "Address (`host:port`) of `/metrics` and `/health`.", .check = check_listen),
	S("server.peerListen", ST_STRING, C(server.peer_listen), NULL,
	    "Address (`host:port`) of the peer listener, where the other replicas forward requests "
	    "of the MCP sessions this replica's backend holds (authenticated with "
	    "`peerSecretRef`; never expose it through the Service). Set: session ids are sealed "
	    "with their owner; unset (default) = off, ids pass untouched.",
	    .check = check_listen),
	S("server.peerAddress", ST_STRING, C(server.peer_address), NULL,
	    "`host:port` under which the other replicas reach this replica's peer listener, "
	    "sealed into the session ids its backend issues.",
	    .check = check_listen, .doc_def = "`$POD_IP:<peerListen port>`"),
	S("server.peerSecretRef", ST_SECRET, C(server.peer_secret), NULL,
	    "Secret shared by the replicas (at least 32 bytes, e.g. `openssl rand -base64 32`): "
	    "seals session ids and authenticates peer requests. Required with `peerListen`.",
	    .flags = SF_FILE_ONLY),
	S("server.resourceUrl", ST_STRING, C(server.resource_url), NULL,
	    "The MCP endpoint URL as clients name it (token audience, RFC 9728). Absolute http(s) "
	    "URL without fragment. Unset in `embedded` mode = the issuer's origin and path plus "
	    "`/mcp` (the AS is mounted on the proxy), logged at start and marked derived in "
	    "`--print-config`; set it where clients use another URL. Required when `auth.mode` is "
	    "`oidc`.",
	    .check = check_url, .doc_def = "`<issuer>/mcp`"),
	S("server.publicPathPrefix", ST_STRING, C(server.public_path_prefix), "",
	    "Path prefix clients see in front of our paths (e.g. `/team-a`); starts with `/`, no "
	    "trailing `/`.",
	    .check = check_path_prefix),
	S("server.trustProxyHeaders", ST_BOOL, C(server.trust_proxy_headers), "false",
	    "Honour `X-Forwarded-*` headers from the client side."),
	S("server.maxConnections", ST_UINT32, C(server.max_connections), "4096",
	    "Client connections the MCP listener holds at most; at the cap it stops accepting "
	    "(new clients wait in the kernel's backlog) until one closes. Lowered at start to fit "
	    "the file descriptor limit (raised to its hard limit), which also keeps descriptors "
	    "for the diagnostics listener and outbound fetches.",
	    RANGE(1, 1000000)),
	S("server.maxBodySize", ST_SIZE, C(server.max_body_size), "8MiB",
	    "Largest request body accepted (413 above).", RANGE(1 * KIB, 1 * GIB)),
	S("server.maxEndpointBodySize", ST_SIZE, C(server.max_endpoint_body_size), "64KiB",
	    "Largest request body the proxy's own endpoints read (the embedded AS, discovery, "
	    "`/health`): 413 as soon as the declared length or the bytes pass it. What is "
	    "forwarded has `maxBodySize`.",
	    RANGE(1 * KIB, 16 * MIB)),
	S("server.maxHeaderSize", ST_SIZE, C(server.max_header_size), "128KiB",
	    "Largest request header block accepted.", RANGE(1 * KIB, 16 * MIB)),
	S("server.maxHeaderCount", ST_UINT32, C(server.max_header_count), "100",
	    "Most header fields a request may carry (431 above).", RANGE(8, 10000)),
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
	S("server.logQueueSize", ST_SIZE, C(server.log_queue_size), "1MiB",
	    "Log lines waiting for stderr at most; when stderr is not read, later lines are "
	    "dropped "
	    "and counted (`mcp_proxy_log_dropped_total`) instead of stalling the proxy.",
	    RANGE(64 * KIB, 256 * MIB)),
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
	    "Where codes, tokens and clients live: `memory` (in the process: one replica, lost "
	    "at restart) or `redis` (shared by any number of replicas, kept across restarts; "
	    "needs `signingKeySecretRefs` and `redis.encryptionKeySecretRef`).",
	    .names = storage_names),
	S("embeddedAuthServer.storage.redis", ST_SECTION, 0, NULL, NULL),
	S("embeddedAuthServer.storage.redis.addr", ST_STRING, C(eas.storage.redis.addr), NULL,
	    "Standalone Redis `host:port` (a name is resolved without blocking); or "
	    "`sentinelConfig`.",
	    .check = check_listen),
	S("embeddedAuthServer.storage.redis.sentinelConfig", ST_SECTION, 0, NULL, NULL),
	S("embeddedAuthServer.storage.redis.sentinelConfig.masterName", ST_STRING,
	    C(eas.storage.redis.sentinel.master_name), NULL, "Sentinel master set name.",
	    .check = check_nonempty),
	S("embeddedAuthServer.storage.redis.sentinelConfig.sentinelAddrs", ST_STRLIST,
	    C(eas.storage.redis.sentinel.sentinel_addrs), NULL, "Sentinels as `host:port` (list).",
	    .check = check_listen, .flags = SF_FILE_ONLY),
	S("embeddedAuthServer.storage.redis.sentinelConfig.db", ST_UINT32,
	    C(eas.storage.redis.sentinel.db), "0", "Database number.", RANGE(0, 15)),
	S("embeddedAuthServer.storage.redis.clusterMode", ST_BOOL,
	    C(eas.storage.redis.cluster_mode), "false", "Redis Cluster: not supported yet."),
	S("embeddedAuthServer.storage.redis.sentinelService", ST_STRING,
	    C(eas.storage.redis.sentinel_service), NULL,
	    "Sentinels found through a Kubernetes Service: not supported yet."),
	S("embeddedAuthServer.storage.redis.aclUserConfig", ST_SECTION, 0, NULL, NULL),
	S("embeddedAuthServer.storage.redis.aclUserConfig.usernameSecretRef", ST_SECRET,
	    C(eas.storage.redis.username), NULL, "ACL user name (secretRef).",
	    .flags = SF_FILE_ONLY),
	S("embeddedAuthServer.storage.redis.aclUserConfig.passwordSecretRef", ST_SECRET,
	    C(eas.storage.redis.password), NULL,
	    "ACL user's password, or the `requirepass` password alone (secretRef).",
	    .flags = SF_FILE_ONLY),
	S("embeddedAuthServer.storage.redis.dialTimeout", ST_DURATION,
	    C(eas.storage.redis.dial_timeout_ms), "5s", "Connect (and handshake) timeout.",
	    RANGE(100, MS_M)),
	S("embeddedAuthServer.storage.redis.readTimeout", ST_DURATION,
	    C(eas.storage.redis.read_timeout_ms), "3s", "Longest wait for a reply.",
	    RANGE(100, MS_M)),
	S("embeddedAuthServer.storage.redis.writeTimeout", ST_DURATION,
	    C(eas.storage.redis.write_timeout_ms), "3s", "Longest wait to send a command.",
	    RANGE(100, MS_M)),
	S("embeddedAuthServer.storage.redis.tls", ST_SECTION, 0, NULL, NULL),
	S("embeddedAuthServer.storage.redis.tls.caCertSecretRef", ST_SECRET,
	    C(eas.storage.redis.tls.ca_cert), NULL,
	    "CA (PEM) for TLS to Redis (secretRef); setting it turns TLS on.",
	    .flags = SF_FILE_ONLY),
	S("embeddedAuthServer.storage.redis.tls.insecureSkipVerify", ST_BOOL,
	    C(eas.storage.redis.tls.insecure_skip_verify), "false",
	    "Development: TLS without verifying Redis's certificate."),
	S("embeddedAuthServer.storage.redis.sentinelTls", ST_SECTION, 0, NULL, NULL),
	S("embeddedAuthServer.storage.redis.sentinelTls.caCertSecretRef", ST_SECRET,
	    C(eas.storage.redis.sentinel_tls.ca_cert), NULL,
	    "CA (PEM) for TLS to the sentinels (secretRef).", .flags = SF_FILE_ONLY),
	S("embeddedAuthServer.storage.redis.sentinelTls.insecureSkipVerify", ST_BOOL,
	    C(eas.storage.redis.sentinel_tls.insecure_skip_verify), "false",
	    "Development: TLS to the sentinels without verification."),
	S("embeddedAuthServer.storage.redis.keyPrefix", ST_STRING, C(eas.storage.redis.key_prefix),
	    "mcp-proxy:", "Prefix of every key (ours): several proxies can share one Redis."),
	S("embeddedAuthServer.storage.redis.encryptionKeySecretRef", ST_SECRET,
	    C(eas.storage.redis.encryption_key), NULL,
	    "32 random bytes in base64 (`openssl rand -base64 32`) sealing what Redis holds "
	    "(AES-256-GCM); required with `redis` (ours). To rotate: the new key on the first "
	    "line, the old one below (up to 4 lines) until what it sealed has expired.",
	    .flags = SF_FILE_ONLY),
	S("embeddedAuthServer.registration", ST_SECTION, 0, NULL, NULL),
	S("embeddedAuthServer.registration.maxClients", ST_UINT32, C(eas.registration.max_clients),
	    "10000",
	    "Most dynamically registered clients kept (all replicas together, with storage.type "
	    "redis); at the cap the one unused longest goes if idle for a minute, else 503.",
	    RANGE(1, 10000000)),
	S("embeddedAuthServer.registration.ratePerSecond", ST_DOUBLE,
	    C(eas.registration.rate_per_second), "10",
	    "Sustained `/oauth/register` requests per second, all replicas together (a token "
	    "bucket in the storage)."),
	S("embeddedAuthServer.registration.burst", ST_UINT32, C(eas.registration.burst), "20",
	    "Burst size of the registration token bucket.", RANGE(1, 1000000)),
	S("embeddedAuthServer.rateLimit", ST_SECTION, 0, NULL, NULL),
	S("embeddedAuthServer.rateLimit.requestsPerMinute", ST_DOUBLE, C(eas.rate_limit.per_minute),
	    "600",
	    "Sustained requests per client address to each of `/oauth/authorize`, `/oauth/token`, "
	    "`/oauth/register` and `/oauth/revoke` (token bucket; 429 + Retry-After); 0 = off. "
	    "The address is the connection's, or X-Forwarded-For's last hop with "
	    "`server.trustProxyHeaders`.",
	    .flags = SF_ZERO_OFF),
	S("embeddedAuthServer.rateLimit.burst", ST_UINT32, C(eas.rate_limit.burst), "120",
	    "Requests a client address may make at once before the rate applies.",
	    RANGE(1, 1000000)),
	S("embeddedAuthServer.rateLimit.maxAddresses", ST_UINT32, C(eas.rate_limit.max_addresses),
	    "10000", "Client addresses tracked per endpoint (least recently seen replaced).",
	    RANGE(16, 10000000)),
	S("embeddedAuthServer.rateLimit.loginsPerClient", ST_UINT32,
	    C(eas.rate_limit.logins_per_client), "1000",
	    "Logins one client_id may start per pending-login lifetime (10 min), so that a flood "
	    "for one client cannot fill the table of logins in progress; beyond it the client is "
	    "sent back `temporarily_unavailable`.",
	    RANGE(1, 10000)),
	S("embeddedAuthServer.rateLimit.loginsPerAddress", ST_UINT32,
	    C(eas.rate_limit.logins_per_address), "2000",
	    "Logins one client address may start per pending-login lifetime (10 min); beyond it "
	    "`temporarily_unavailable`.",
	    RANGE(1, 10000)),
	S("authorization", ST_SECTION, 0, NULL, NULL),
	S("authorization.defaultDecision", ST_ENUM, C(authz.default_decision), "deny",
	    "What an MCP operation no rule decides gets. The `authorization` section in the file "
	    "turns MCP-level checks on; absent, only the token is checked.",
	    .names = decision_names, .flags = SF_FILE_ONLY),
	S("authorization.rules", ST_RULES, 0, NULL,
	    "Rules in order, `{operations: [...], allow: {scopes, claims}}` or `{operations, "
	    "deny: {claims}}`; the first rule whose operations match and whose conditions hold "
	    "decides (see MCP authorization).",
	    .flags = SF_FILE_ONLY),
	S("authorization.maxMessageSize", ST_SIZE, C(authz.max_message_size), "1MiB",
	    "Largest MCP request body the policy parses (413 above).",
	    .flags = SF_FILE_ONLY | SF_RANGE, .min = 1 * KIB, .max = 64 * MIB),
	S("authorization.maxDepth", ST_UINT32, C(authz.max_depth), "32",
	    "Deepest JSON nesting accepted in an MCP request (400 deeper).",
	    .flags = SF_FILE_ONLY | SF_RANGE, .min = 4, .max = 1000),
	S("authorization.maxBatchSize", ST_UINT32, C(authz.max_batch), "64",
	    "Most messages in a JSON-RPC batch (400 above).", .flags = SF_FILE_ONLY | SF_RANGE,
	    .min = 1, .max = 10000),
	S("audit", ST_SECTION, 0, NULL, NULL),
	S("audit.enabled", ST_BOOL, C(audit.enabled), "false",
	    "Write one JSON line per MCP operation (needs the `authorization` section)."),
	S("audit.path", ST_STRING, C(audit.path), "-",
	    "Where audit lines go: `-` = stdout, else a file appended to.",
	    .check = check_nonempty),
	S("audit.includeArguments", ST_BOOL, C(audit.include_arguments), "false",
	    "Add the call's `arguments` to audit lines, cut at `audit.maxArgumentsSize`."),
	S("audit.maxArgumentsSize", ST_SIZE, C(audit.max_arguments_size), "1KiB",
	    "Most bytes of arguments an audit line carries.", RANGE(16, 64 * KIB)),
};
_Static_assert(sizeof config_settings / sizeof config_settings[0] == N_SETTINGS,
    "N_SETTINGS in config_private.h counts config_settings[]");

/* One entry of embeddedAuthServer.upstreamProviders[]; file only. */
const struct setting config_provider_settings[] = {
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
_Static_assert(sizeof config_provider_settings / sizeof config_provider_settings[0] ==
	N_PROVIDER_SETTINGS,
    "N_PROVIDER_SETTINGS in config_private.h counts config_provider_settings[]");

/* ToolHive fields we know but do not implement: a clear error, not "unknown key". */
const char *const config_unsupported_keys[] = {
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
	NULL,
};

/* ---- small helpers ---- */

void
config_errs_add(struct config_errors *errs, const char *where, const char *path, const char *fmt,
    ...)
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
char *
config_quote_value(const char *s)
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

char *
config_where_mark(const struct load *ld, yaml_mark_t m)
{
	return xasprintf("%s:%zu:%zu", ld->file, m.line + 1, m.column + 1);
}

void
config_set_string(char **field, const char *s)
{
	free(*field);
	*field = s != NULL ? xstrdup(s) : NULL;
}

void
config_secret_ref_dispose(struct secret_ref *r)
{
	free(r->name);
	free(r->key);
	free(r->env);
	xfree_secret(r->value);
	memset(r, 0, sizeof *r);
}

void
config_provider_dispose(struct upstream_provider *p)
{
	free(p->name);
	free(p->issuer_url);
	free(p->authorization_endpoint);
	free(p->token_endpoint);
	free(p->userinfo_endpoint);
	free(p->client_id);
	config_secret_ref_dispose(&p->client_secret);
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
char *
config_format_duration(int64_t ms)
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

char *
config_format_size(uint64_t b)
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

bool
config_is_https(const char *s)
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
bool
config_plain_name(const char *s)
{
	size_t len = strlen(s);

	return len > 0 && len <= 253 && strcmp(s, ".") != 0 && strcmp(s, "..") != 0 &&
	    strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == len;
}

bool
config_env_name(const char *s)
{
	size_t len = strlen(s);

	return len > 0 && len <= 255 && !(s[0] >= '0' && s[0] <= '9') &&
	    strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") == len;
}

/* ---- setting a value from a string (defaults, env, YAML scalars) ---- */

const char *
config_type_noun(const struct setting *s)
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
	case ST_RULES:
		return "a list of authorization rules";
	}
	return "a value";
}

void
config_enum_expected(const struct setting *s, char *buf, size_t len)
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
	char *b, *q = config_quote_value(got);

	if (s->type == ST_DURATION)
		b = config_format_duration(bound);
	else if (s->type == ST_SIZE)
		b = config_format_size((uint64_t)bound);
	else
		b = xasprintf("%" PRId64, bound);
	config_errs_add(errs, where, path, "expected %s %s %s, got %s",
	    s->type == ST_UINT32     ? "an integer"
		: s->type == ST_SIZE ? "a size"
				     : "a duration",
	    op, b, q);
	free(b);
	free(q);
}

/* Parse and store one scalar setting; on failure add an error and leave the field. */
int
config_set_scalar(struct config_errors *errs, const struct setting *s, void *base, const char *val,
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
		config_errs_add(errs, where, path, "expected at most %d bytes", CONFIG_MAX_STRING);
		return -1;
	}
	q = config_quote_value(val);
	switch (s->type) {
	case ST_STRING:
		if (s->check != NULL && (why = s->check(val)) != NULL) {
			config_errs_add(errs, where, path, "%s, got %s", why, q);
			goto out;
		}
		config_set_string(f, val);
		break;
	case ST_BOOL:
		if (strcmp(val, "true") == 0)
			*(bool *)f = true;
		else if (strcmp(val, "false") == 0)
			*(bool *)f = false;
		else {
			config_errs_add(errs, where, path, "expected true or false, got %s", q);
			goto out;
		}
		break;
	case ST_UINT32:
		if (parse_uint(val, &u) == -1 || u > UINT32_MAX) {
			config_errs_add(errs, where, path, "expected an integer, got %s", q);
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
		    !isfinite(x) || x < 0 || (x == 0 && !(s->flags & SF_ZERO_OFF)) || x > 1e6) {
			config_errs_add(errs, where, path,
			    (s->flags & SF_ZERO_OFF)
				? "expected a number >= 0 and <= 1000000, got %s"
				: "expected a number > 0 and <= 1000000, got %s",
			    q);
			goto out;
		}
		*(double *)f = x;
		break;
	case ST_DURATION:
		if (config_parse_duration(val, &d) == -1) {
			config_errs_add(errs, where, path,
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
			config_errs_add(errs, where, path,
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
		config_enum_expected(s, buf, sizeof buf);
		config_errs_add(errs, where, path, "%s, got %s", buf, q);
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
		config_errs_add(errs, where, path, "expected %s", config_type_noun(s));
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
			config_set_scalar(&errs, &table[i], base, table[i].def, "default",
			    table[i].path);
	}
	if (errs.n != 0)
		abort(); /* a bad default is a bug in the table */
	config_errors_dispose(&errs);
}

struct config *
config_new(void)
{
	struct config *cfg = xcalloc(1, sizeof *cfg);

	apply_defaults(config_settings, N_SETTINGS, cfg);
	return cfg;
}

void
config_free(struct config *cfg)
{
	if (cfg == NULL)
		return;
	for (size_t i = 0; i < N_SETTINGS; i++) {
		const struct setting *s = &config_settings[i];
		void *f = (char *)cfg + s->off;

		if (s->type == ST_STRING)
			free(*(char **)f);
		else if (s->type == ST_STRLIST)
			strlist_dispose(f);
		else if (s->type == ST_SECRET)
			config_secret_ref_dispose(f);
	}
	for (size_t i = 0; i < cfg->eas.n_upstream_providers; i++)
		config_provider_dispose(&cfg->eas.upstream_providers[i]);
	free(cfg->eas.upstream_providers);
	for (size_t i = 0; i < cfg->eas.n_signing_keys; i++)
		config_secret_ref_dispose(&cfg->eas.signing_keys[i]);
	free(cfg->eas.signing_keys);
	config_rules_dispose(cfg);
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
