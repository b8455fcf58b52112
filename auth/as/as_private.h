/*
 * What the authorization server's handler files (discovery, authorize,
 * callback, token, register, revoke) share: the struct as and a few reply
 * helpers. Not for use outside auth/as*.c and the handler files.
 */
#ifndef AUTH_AS_PRIVATE_H
#define AUTH_AS_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/as/as.h"
#include "common/form.h"
#include "proxy/req.h"

struct cimd;
struct cimd_jwks;
struct clients;
struct event;
struct grant;
struct metric;
struct client;
struct ratelimit;
struct req;
struct strlist;
struct upstream;

#define AS_MAX_FORM_BODY (16 * 1024)
#define AS_PENDING_TTL_MS (10 * 60 * 1000)

/* The per-address request limits, one per endpoint. */
enum as_limit {
	AS_LIMIT_AUTHORIZE,
	AS_LIMIT_TOKEN,
	AS_LIMIT_REGISTER,
	AS_LIMIT_REVOKE,
	AS_N_LIMITS
};

struct as {
	struct event_base *base;
	const struct config *cfg;
	struct req_router router; /* the MCP listener's */
	struct fetcher *fetcher;
	struct keyset *keys;
	struct store *store;
	struct cimd *cimd;
	struct cimd_jwks *jwks; /* private_key_jwt clients' jwks_uri keys (with cimd) */
	struct clients *clients;
	struct upstream *upstream;
	struct grant *grant;
	struct event *sweep;

	char *issuer;      /* without trailing slash */
	char *issuer_path; /* "" or "/tenant1" */
	char *audience;
	char *authorize_url;
	char *token_url;
	char *register_url;
	char *revoke_url;
	char *jwks_url;

	char *metadata_json; /* RFC 8414 */
	char *oidc_json;     /* OpenID Connect discovery */
	char *jwks_json;

	struct ratelimit *limits[AS_N_LIMITS]; /* by client address */
	struct ratelimit *logins_client;       /* logins started, by client_id */
	struct ratelimit *logins_address;      /* logins started, by address */

	struct metric *m_limited;
	struct metric *m_authorize;
	struct metric *m_callback;
	struct metric *m_assertion;
};

/* Route handlers, one per file. */
void discovery_handle_metadata(struct req *sr, void *arg);
void discovery_handle_oidc(struct req *sr, void *arg);
void discovery_handle_jwks(struct req *sr, void *arg);
/* Build metadata_json/oidc_json for as (at start-up). */
void discovery_build(struct as *as);
void authorize_handle(struct req *sr, void *arg);
void callback_handle(struct req *sr, void *arg);
void token_handle(struct req *sr, void *arg);
void register_handle(struct req *sr, void *arg);
void revoke_handle(struct req *sr, void *arg);

/* An error answer about client authentication: a 401 to a client that
 * used HTTP Basic carries the Basic challenge (RFC 6749 §5.2). */
void token_client_error(struct req *sr, const char *auth_method, int status, const char *error,
    const char *desc);
/* Client credentials of a token/revocation request: HTTP Basic, or
 * client_id (+ client_secret) in the form. 0, or -1 with the RFC 6749
 * error to answer. */
int token_credentials(struct req *sr, const struct form *f, char **client_id, char **secret,
    const char **method, int *status, const char **error, const char **desc);
/* Do the presented credentials authenticate client c? */
bool token_authenticate(const struct client *c, const char *auth_method, const char *secret,
    const char **why);

/* The client's address for limits: the connection's, or with
 * server.trustProxyHeaders the last X-Forwarded-For hop (the one our
 * ingress added). Valid while sr is. */
const char *as_client_address(struct as *as, struct req *sr, char *buf, size_t len);
/* Take one request of sr's address from the endpoint's limit: true, or
 * false after answering 429 with Retry-After (an error page for authorize,
 * OAuth JSON for the others). */
bool as_rate_ok(struct as *as, struct req *sr, enum as_limit which);
/* Answer 429 with Retry-After and count it under limit. */
void as_too_many(struct as *as, struct req *sr, bool page, int retry_after_s, const char *limit,
    const char *desc);

/* Called once per clientassert_start() unless cancelled: status 0 when the
 * assertion authenticates the client, else the HTTP status (401, or 503
 * when the replay table is full), the OAuth error and a description safe
 * to show. May run before clientassert_start() returns. */
typedef void (*clientassert_done_cb)(int status, const char *error, const char *desc, void *arg);
struct clientassert;
/* Verify a private_key_jwt client's assertion (RFC 7523 §2.2 and §3)
 * against its inline keys or its jwks_uri's (one rate-limited refetch on an
 * unknown kid), then mark its jti seen. The assertion is copied. Returns a
 * handle for clientassert_cancel(), or NULL when done() already ran. */
struct clientassert *clientassert_start(struct as *as, struct client *c, const char *assertion,
    clientassert_done_cb done, void *arg);
/* Abandon a verification: done() is not called. NULL is fine. */
void clientassert_cancel(struct clientassert *ca);

/* The request's method as "GET", "POST", "OPTIONS", ... */
const char *as_method(struct req *sr);
/* A request header, or NULL. */
const char *as_header(struct req *sr, const char *name);
/* Answer an OPTIONS preflight (CORS) and return true, else false. */
bool as_preflight(struct req *sr, const char *methods);
/* The start of a POST-only endpoint with CORS (register, revoke): the
 * preflight answered, CORS headers, 405 for another method, the
 * address's rate limit. false when sr was answered. */
bool as_post_start(struct as *as, struct req *sr, enum as_limit which);
/* Access-Control-Allow-Origin: * for browser-based clients. */
void as_cors(struct req *sr);
/* Parse the query string (GET) or the form body (POST, which must be
 * application/x-www-form-urlencoded and at most max bytes). -1 with err. */
int as_read_params(struct req *sr, bool allow_query, size_t max, struct form *f, char *err,
    size_t errlen);
/* The request body as a new NUL-terminated string (at most max bytes), or
 * NULL when larger. */
char *as_read_body(struct req *sr, size_t max, size_t *len);
/* The AS's own error page (HTML, or JSON for Accept: application/json),
 * used when the client or its redirect_uri cannot be trusted. */
void as_error_page(struct req *sr, int status, const char *error, const char *desc);
/* Redirect (302/303) to uri with query parameters added (fb consumed). */
void as_redirect(struct req *sr, int status, const char *uri, struct form_builder *fb);
/* Redirect an authorization error to the client (RFC 6749 §4.1.2.1). */
void as_redirect_error(struct as *as, struct req *sr, const char *redirect_uri, const char *state,
    const char *error, const char *desc);

#endif
