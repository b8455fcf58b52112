/*
 * The bearer guard in front of the MCP endpoint: every request that no
 * other route claims must carry `Authorization: Bearer <access token>`
 * that our embedded AS issued for server.resourceUrl (auth.mode embedded)
 * or that the external IdP issued for auth.oidc.audience (auth.mode oidc).
 * Without one the client gets 401 with a WWW-Authenticate challenge naming
 * the protected-resource metadata (RFC 6750 §3, RFC 9728 §5.1); with too
 * few scopes 403 insufficient_scope. What passes is forwarded WITHOUT the
 * client's token and cookies: in embedded mode the backend receives the
 * upstream IdP's access token of the login session instead (refreshed
 * when it has expired, once per session however many requests wait).
 * Tokens are never logged (log_token_id() correlates).
 *
 * The pure parts (header parsing, challenge building, token and scope
 * decisions) are public so they can be tested without a loop.
 */
#ifndef AUTH_GUARD_H
#define AUTH_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/crypto/tokencache.h"
#include "proxy/req.h"

struct config;
struct event_base;
struct fetcher;
struct keyset;
struct prm;
struct req;
struct store;
struct store_upstream;
struct strlist;
struct guard;

#define GUARD_TOKEN_MAX (16 * 1024) /* characters of a bearer token */
/* Clock skew allowed on exp/nbf/iat of our own tokens: they are signed on
 * this pod's clock (or an NTP-synced replica's), so a few seconds suffice;
 * a long leeway would only extend a stolen token's life. */
#define GUARD_LEEWAY_S 5
#define GUARD_UPSTREAM_SKEW_S 5 /* refresh an upstream token this early */
/* A refresh first takes the session's lease in the store (no two replicas
 * spend the IdP's refresh token); a replica that finds it held looks again
 * every GUARD_LEASE_POLL_MS, for GUARD_LEASE_WAIT_MS at most. */
#define GUARD_LEASE_MS (30 * 1000)
#define GUARD_LEASE_POLL_MS 200
#define GUARD_LEASE_WAIT_MS (10 * 1000)

/*
 * Upstream tokens refreshed: tokens (owned by the callee now) or NULL and
 * an error that is safe to log. Same shape as upstream_exchange_cb.
 */
typedef void (*guard_refresh_done_cb)(struct store_upstream *tokens, const char *error, void *arg);

/*
 * What the guard needs from the embedded AS, as callbacks so that neither
 * module links against the other; main.c fills it from auth/as.h. Every
 * member but upstream_refresh/upstream_cancel is required.
 */
struct guard_as_ops {
	void *as;
	/* iss of our access tokens (no trailing slash) */
	const char *(*issuer)(void *as);
	/* the keys our access tokens are verified with */
	const struct keyset *(*keyset)(void *as);
	/* has the access token with this jti been revoked? */
	bool (*token_revoked)(void *as, const char *jti);
	/* the store holding the upstream tokens by session id (tsid) */
	struct store *(*store)(void *as);
	/* Refresh the upstream tokens with refresh_token at the upstream IdP:
	 * done runs once, from the loop, never before this returns, unless
	 * upstream_cancel(handle) comes first. Returns the handle, or NULL
	 * when refreshing is impossible (done will not run). NULL member:
	 * an expired upstream token means the client must log in again. */
	void *(*upstream_refresh)(void *as, const char *refresh_token, guard_refresh_done_cb done,
	    void *arg);
	void (*upstream_cancel)(void *handle);
};

/* The result of parsing an Authorization header. */
enum guard_auth {
	GUARD_AUTH_OK,        /* a syntactically valid bearer token */
	GUARD_AUTH_MISSING,   /* no Authorization header */
	GUARD_AUTH_MALFORMED, /* another scheme, bad spacing, not token68, repeated */
	GUARD_AUTH_TOO_LARGE, /* longer than GUARD_TOKEN_MAX */
};

/* The guard's verdict on one request. */
enum guard_verdict {
	GUARD_ALLOW,
	GUARD_NO_TOKEN,           /* 401 without an error code */
	GUARD_INVALID_TOKEN,      /* 401 invalid_token */
	GUARD_INSUFFICIENT_SCOPE, /* 403 insufficient_scope */
	GUARD_UNAVAILABLE,        /* 503: the IdP's keys or introspection are unreachable */
};

/*
 * Parse one Authorization header value strictly: "Bearer" in any case,
 * exactly one space, then an RFC 7235 token68 (nothing after it). On
 * GUARD_AUTH_OK, *token and *len point into value. NULL value is MISSING.
 */
enum guard_auth guard_parse_authorization(const char *value, const char **token, size_t *len);

/*
 * The cheap half of guard_parse_authorization(): scheme, spacing and size,
 * without looking at the token's characters. The guard runs the other half,
 * guard_token68(), only when the token is not in its verified-token cache:
 * a cached token passed it when it was verified.
 */
enum guard_auth guard_split_authorization(const char *value, const char **token, size_t *len);

/* Are the n bytes at t an RFC 7235 token68 (with optional '=' padding)? */
bool guard_token68(const char *t, size_t n);

/*
 * Build a WWW-Authenticate value: Bearer resource_metadata="…"[,
 * scope="…"][, error="…"[, error_description="…"]]. NULL members are
 * left out; quotes and backslashes are escaped, control characters
 * dropped. A new string.
 */
char *guard_www_authenticate(const char *metadata_url, const char *scope, const char *error,
    const char *description);

/* The description a 401 shows for a jwt_verify() error (enum jwt_err). */
const char *guard_jwt_error_text(int jwt_err);

/*
 * The embedded-mode token decision without I/O: the verified-token cache,
 * else size bound, signature (a key of ops->keyset, alg from the key),
 * typ at+jwt, iss, aud = audience, exp/nbf with GUARD_LEEWAY_S, a jti; then
 * on hit and miss alike the revocation list, then required scopes. On
 * GUARD_ALLOW *claims (borrowed from cache, valid until the next call into
 * the guard) says what the token carries. desc receives the reason.
 */
enum guard_verdict guard_check_embedded(struct guard *g, const char *token, size_t len,
    const struct tokencache_claims **claims, char *desc, size_t desclen);

/*
 * Create the guard for cfg->auth.mode embedded (ops required) or oidc (ops
 * NULL; the guard validates against the external IdP through fetcher).
 * prm provides the challenge's metadata URL and scope and stays the
 * caller's. NULL with a message in err when the configuration is unusable.
 */
struct guard *guard_new(struct event_base *base, const struct config *cfg, req_pass_fn next,
    void *next_arg, struct fetcher *fetcher, const struct prm *prm, const struct guard_as_ops *ops,
    char *err, size_t errlen);
/* Drop every request still waiting (their clients get no answer: call at
 * exit, before as_free(), server_free() and fetcher_free()). NULL is fine. */
void guard_free(struct guard *g);

/* The fallback route handler: check, then forward or answer 401/403. */
void guard_handler(struct req *sr, void *guard);
/*
 * The fallback's head check (req_head_fn), run before a declared body is
 * read: a request without a token, with a malformed one or (embedded mode)
 * with one that does not verify or allow gets its 401/403 now, so nobody
 * without a valid token makes the proxy read and hold a body. True when the
 * body may be read; guard_handler() then decides again (a cache hit). In
 * oidc mode a token whose check needs the network waits for the body.
 */
bool guard_head(struct req *sr, void *guard);

/* Tests: the verified-token cache. */
struct tokencache *guard_tokencache(struct guard *g);

#endif
