/*
 * The client side of the one upstream identity provider the AS federates
 * login to. type oidc: discovery from <issuerUrl>/.well-known/openid-
 * configuration (lazily, cached, retried after a failure), every endpoint on
 * the issuer's origin, code exchange with the client secret, ID token
 * verified against the IdP's JWKS (iss, aud, exp, nonce). type oauth2:
 * configured endpoints, identity from userinfo. All I/O goes through the
 * fetcher's trusted policy and never blocks the loop. Upstream tokens are
 * handed to the caller and never logged.
 */
#ifndef AUTH_UPSTREAM_H
#define AUTH_UPSTREAM_H

struct config;
struct fetcher;
struct store_upstream;
struct upstream_provider;
struct upstream;
struct upstream_op;

/* Discovery finished: error is NULL when the provider can be used. */
typedef void (*upstream_ready_cb)(const char *error, void *arg);
/* Code exchanged: tokens (owned by the callee now, subject set) or NULL and
 * an error safe to show the client. */
typedef void (*upstream_exchange_cb)(struct store_upstream *tokens, const char *error, void *arg);

struct upstream *upstream_new(const struct config *cfg, const struct upstream_provider *p,
    struct fetcher *fetcher);
/* Cancel everything in flight (no callback runs) and free. NULL is fine. */
void upstream_free(struct upstream *u);

/* Make sure the provider's endpoints are known. done runs once (possibly
 * before this returns, then NULL is returned) unless upstream_cancel(). */
struct upstream_op *upstream_prepare(struct upstream *u, upstream_ready_cb done, void *arg);
/* The authorization URL for our state, PKCE challenge and nonce (after a
 * successful prepare). */
char *upstream_authorize_url(struct upstream *u, const char *state, const char *challenge,
    const char *nonce);
/* The issuer to expect in an RFC 9207 iss callback parameter, or NULL. */
const char *upstream_issuer(const struct upstream *u);
/* Exchange an upstream code; done runs once, never before this returns,
 * unless upstream_cancel(). */
struct upstream_op *upstream_exchange(struct upstream *u, const char *code, const char *verifier,
    const char *nonce, upstream_exchange_cb done, void *arg);
/* Refresh upstream tokens with a refresh_token grant; done runs once, never
 * before this returns, unless upstream_cancel(). The tokens carry what the
 * IdP returned (no subject: the caller keeps the session's identity). */
struct upstream_op *upstream_refresh(struct upstream *u, const char *refresh_token,
    upstream_exchange_cb done, void *arg);
/* Abandon an operation: its callback will not run. Safe until it ran; NULL
 * is fine. */
void upstream_cancel(struct upstream_op *op);

#endif
