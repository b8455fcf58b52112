/*
 * The typed configuration. One declarative settings table (config.c) drives
 * the YAML/JSON loader, the MCP_PROXY_* environment overlay, validation,
 * secret resolution, --print-config and the README's settings table.
 * This room includes nothing of ours but common/: it knows no sockets, no
 * event loop and no OAuth logic, only the shape and validity of settings.
 *
 * Units: durations are milliseconds (int64_t), sizes are bytes (uint64_t).
 * Strings are NUL-terminated heap copies owned by the struct config; an
 * unset optional string is NULL. Resolved secrets are never printed.
 */
#ifndef CONFIG_CONFIG_H
#define CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/strlist.h"

/* secretRef {name, key} → the file <secretsDir>/<name>/<key>; or {env} →
 * an environment variable. `value` is the resolved secret (NULL when the
 * ref is unset). */
struct secret_ref {
	char *name;
	char *key;
	char *env;
	char *value;
	size_t value_len;
};

enum backend_transport { TRANSPORT_STREAMABLE_HTTP, TRANSPORT_SSE };
enum auth_mode { AUTH_MODE_EMBEDDED, AUTH_MODE_OIDC, AUTH_MODE_NONE };
enum upstream_type { UPSTREAM_OIDC, UPSTREAM_OAUTH2 };
enum storage_type { STORAGE_MEMORY, STORAGE_REDIS };

struct upstream_provider {
	char *name;
	enum upstream_type type;
	/* oidcConfig or oauth2Config, flattened: */
	char *issuer_url;             /* oidcConfig.issuerUrl */
	char *authorization_endpoint; /* oauth2Config.authorizationEndpoint */
	char *token_endpoint;         /* oauth2Config.tokenEndpoint */
	char *userinfo_endpoint;      /* oauth2Config.userInfo.endpointUrl */
	char *client_id;
	struct secret_ref client_secret; /* clientSecretRef */
	char *redirect_uri;              /* default <issuer>/oauth/callback */
	struct strlist scopes;           /* default [openid, offline_access] (oidc) */
	char *subject_claim;             /* default "sub" */
};

/* One condition of an authorization rule: the claim `name` equals one of
 * values, or is an array holding one of them. */
struct authz_claim {
	char *name;
	struct strlist values;
};

/* One entry of authorization.rules[] (auth/policy compiles them). */
struct authz_rule {
	struct strlist operations;  /* "method" or "method:name", '*' globs */
	bool deny;                  /* a deny rule, else an allow rule */
	struct strlist scopes;      /* allow.scopes: every one required */
	struct authz_claim *claims; /* allow.claims / deny.claims: all must hold */
	size_t n_claims;
	char *where; /* file:line:col of the rule, for diagnostics */
};

struct config {
	char *source_path; /* the file loaded, or NULL */
	char *secrets_dir; /* secretsDir, default /etc/mcp-proxy/secrets */

	struct {
		char *listen;              /* default 0.0.0.0:8080 */
		char *diagnostics_listen;  /* default 0.0.0.0:9464 */
		char *peer_listen;         /* other replicas' forwarded sessions; NULL = off */
		char *peer_address;        /* how they reach us; default $POD_IP:<peer port> */
		bool peer_address_derived; /* from POD_IP (the port filled in once bound if 0) */
		struct secret_ref peer_secret; /* peerSecretRef, >= 32 bytes */
		char *resource_url;            /* public MCP endpoint URL */
		bool resource_url_derived;     /* unset, so <embeddedAuthServer.issuer>/mcp */
		char *public_path_prefix; /* prefix clients see before our paths, e.g. /team-a */
		bool trust_proxy_headers; /* honour X-Forwarded-* from the client side */
		uint32_t max_connections; /* MCP listener, default 4096 */
		uint64_t max_body_size;   /* default 8 MiB */
		uint64_t max_endpoint_body_size; /* our own endpoints' bodies, default 64 KiB */
		uint64_t max_header_size;        /* default 128 KiB */
		uint32_t max_header_count;       /* header fields, default 100 */
		int64_t header_timeout_ms;       /* default 10s */
		int64_t idle_timeout_ms;         /* keep-alive idle, default 60s */
		int64_t drain_timeout_ms;        /* shutdown grace, default 30s */
		char *log_level;                 /* debug|info|warn|error, default info */
		uint64_t log_queue_size;         /* bytes of log lines waiting, default 1 MiB */
	} server;

	struct {
		char *url; /* default http://127.0.0.1:3000 */
		enum backend_transport transport;
		int64_t connect_timeout_ms;    /* default 5s */
		int64_t response_timeout_ms;   /* default 5m, 0 = none */
		uint32_t max_idle_connections; /* keep-alive pool size, default 64 */
	} backend;

	struct {
		enum auth_mode mode; /* default embedded */
		struct strlist required_scopes;
		char *upstream_token_header; /* NULL = Authorization: Bearer */
		struct {                     /* mode: oidc (external IdP) */
			char *issuer;
			char *audience;
			char *jwks_url;          /* NULL = discovered */
			char *introspection_url; /* NULL = JWT only */
			char *client_id;         /* introspection credentials */
			struct secret_ref client_secret;
			int64_t introspection_cache_ttl_ms; /* default 30s */
			bool insecure_allow_http;
		} oidc;
	} auth;

	struct {
		char *ca_file;              /* extra CA bundle, "" = system */
		int64_t timeout_ms;         /* trusted policy total timeout, default 10s */
		uint64_t max_response_size; /* trusted policy cap, default 1 MiB */
	} outbound;

	struct {
		char *issuer;
		char *authorization_endpoint_base_url;
		bool insecure_allow_http;
		struct upstream_provider *upstream_providers;
		size_t n_upstream_providers;
		struct strlist baseline_client_scopes;
		struct strlist scopes_supported; /* default openid profile email offline_access */
		bool allow_confidential_client_registration;
		bool disable_upstream_token_injection;
		struct {
			bool enabled;                  /* default false */
			uint32_t cache_max_size;       /* default 256, >= 1 */
			int64_t cache_fallback_ttl_ms; /* default 5m, > 0 */
			int64_t cache_min_ttl_ms;      /* default 30s */
			int64_t cache_max_ttl_ms;      /* default 24h */
			int64_t fetch_timeout_ms;      /* default 5s */
			uint64_t max_document_size;    /* default 5 KiB */
			bool insecure_allow_loopback;
			struct strlist allowed_hosts;
			struct strlist denied_hosts;
		} cimd;
		struct {
			int64_t access_token_ms;  /* accessTokenLifespan, 1h [1m, 24h] */
			int64_t refresh_token_ms; /* refreshTokenLifespan, 7d [1h, 30d] */
			int64_t auth_code_ms;     /* authCodeLifespan, 10m [30s, 10m] */
		} token_lifespans;
		struct secret_ref *signing_keys; /* signingKeySecretRefs, PEM */
		size_t n_signing_keys;
		struct {
			enum storage_type type; /* memory (redis: configured, not served yet) */
			struct storage_redis {  /* ToolHive's storage.redis, field for field */
				char *addr;     /* host:port (standalone) */
				struct {
					char *master_name;
					struct strlist sentinel_addrs;
					uint32_t db;
				} sentinel;
				bool cluster_mode;      /* refused: not supported yet */
				char *sentinel_service; /* refused: not supported yet */
				struct secret_ref username, password; /* aclUserConfig */
				int64_t dial_timeout_ms, read_timeout_ms, write_timeout_ms;
				struct {
					struct secret_ref ca_cert;
					bool insecure_skip_verify;
				} tls, sentinel_tls;
				char *key_prefix;                 /* ours */
				struct secret_ref encryption_key; /* ours: 32 bytes, base64 */
			} redis;
		} storage;
		struct {
			uint32_t max_clients;   /* default 10000 */
			double rate_per_second; /* token bucket, default 10 */
			uint32_t burst;         /* default 20 */
		} registration;
		struct {
			double per_minute;           /* per address and endpoint, default 600 */
			uint32_t burst;              /* default 120 */
			uint32_t max_addresses;      /* buckets kept, default 10000 */
			uint32_t logins_per_client;  /* per pending lifetime, default 1000 */
			uint32_t logins_per_address; /* per pending lifetime, default 2000 */
		} rate_limit;
	} eas; /* embeddedAuthServer */

	struct {
		bool present;         /* the section is in the file: MCP-level checks are on */
		int default_decision; /* 0 deny (default), 1 allow */
		struct authz_rule *rules;
		size_t n_rules;
		uint64_t max_message_size; /* JSON-RPC body parsed, default 1 MiB */
		uint32_t max_depth;        /* JSON nesting, default 32 */
		uint32_t max_batch;        /* messages in a batch, default 64 */
	} authz;                           /* authorization */

	struct {
		bool enabled;                /* default false */
		char *path;                  /* "-" = stdout (default), else a file */
		bool include_arguments;      /* default false */
		uint64_t max_arguments_size; /* default 1 KiB */
	} audit;
};

/* One problem found while loading; `where` is "file:line:col" or "env
 * MCP_PROXY_X" or "" ; `path` the key path ("embeddedAuthServer.cimd.enabled"). */
struct config_error {
	char *where;
	char *path;
	char *message;
};

struct config_errors {
	struct config_error *v;
	size_t n;
};

/* Environment lookup, injectable for tests (getenv in production). */
typedef const char *(*config_getenv_fn)(const char *name);

/* A config with every default set. */
struct config *config_new(void);
void config_free(struct config *cfg);

/*
 * Load: defaults, then the file at path (NULL = none), then the env overlay,
 * then resolve secrets and validate. Returns 0, or -1 with every problem in
 * errs (one entry per problem, not just the first).
 */
int config_load(struct config *cfg, const char *path, config_getenv_fn getenv_fn,
    struct config_errors *errs);
/* Format one error as the single line start-up prints. Caller frees. */
char *config_error_line(const struct config_error *e);
void config_errors_dispose(struct config_errors *errs);

/* Print the effective configuration as YAML, secrets redacted. */
void config_print(const struct config *cfg, FILE *out);
/* Print the settings reference (markdown table: key, env, type, default, doc). */
void config_print_docs(FILE *out);

/* Helpers other rooms use for values of the same formats. */
int config_parse_duration(const char *s, int64_t *out_ms);
int config_parse_size(const char *s, uint64_t *out_bytes);

#endif
