/*
 * The embedded OAuth 2.1 authorization server: it owns no user accounts,
 * federates login to one upstream OIDC/OAuth2 provider and issues its own
 * tokens for the MCP resource. as_new() mounts its routes on the server:
 *
 *   /.well-known/oauth-authorization-server[/…]  RFC 8414 metadata
 *   /.well-known/openid-configuration[/…]        OIDC discovery
 *   /.well-known/jwks.json                       our public keys
 *   /oauth/authorize, callback, token, register, revoke
 *
 * (and the same under the issuer's path when it has one). The guard uses
 * the accessors below to verify our access tokens and to find the upstream
 * tokens of a session (tsid).
 */
#ifndef AUTH_AS_H
#define AUTH_AS_H

#include <stdbool.h>
#include <stddef.h>

struct as;
struct upstream;
struct config;
struct event_base;
struct evdns_base;
struct json_object;
struct fetcher;
struct keyset;
struct req_router;
struct store;

/* Create the AS and mount its routes through router. fetcher carries the calls to
 * the upstream IdP and CIMD documents. NULL with a message in err when the
 * configuration cannot be served (bad signing key, no upstream...). */
/* dns: the loop's asynchronous resolver (the Redis store's name). */
struct as *as_new(struct event_base *base, struct evdns_base *dns, const struct config *cfg,
    const struct req_router *router, struct fetcher *fetcher, char *err, size_t errlen);
/* The storage's health for /health: adds type, reachable (and why not)
 * to o; false when unreachable (the proxy is degraded, not unready: MCP
 * requests with tokens that verify locally keep flowing). */
bool as_storage_health(struct json_object *o, void *arg);
/* Cancel pending work and free. Must come before server_free()/fetcher_free().
 * NULL is fine. */
void as_free(struct as *as);

/* The issuer (iss of our tokens), without a trailing slash. */
const char *as_issuer(const struct as *as);
/* The audience of our access tokens (server.resourceUrl). */
const char *as_audience(const struct as *as);
/* Our signing/verification keys (verify access tokens against these). */
const struct keyset *as_keyset(const struct as *as);
/* The state store (store_upstream_get(as_store(as), tsid) for token swap). */
struct store *as_store(struct as *as);
/* Has the access token with this jti been revoked (RFC 7009, family
 * revocation on replay)? */
bool as_token_revoked(struct as *as, const char *jti);
/* The upstream IdP client (for the guard's upstream-token refresh). */
struct upstream *as_upstream(struct as *as);

#endif
