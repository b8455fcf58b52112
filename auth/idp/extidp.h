/*
 * Token validation against an external identity provider (auth.mode oidc:
 * Keycloak, Okta, Entra…), for the guard. JWT access tokens are verified
 * against the IdP's JWKS (auth.oidc.jwksUrl, else jwks_uri from
 * <issuer>/.well-known/openid-configuration): iss = auth.oidc.issuer, aud
 * contains auth.oidc.audience, exp/nbf with 60 s leeway, algorithm from
 * the key. The JWKS is cached and fetched again for an unknown kid at most
 * once per EXTIDP_JWKS_MIN_INTERVAL_MS; checks that need the fetch wait for
 * it instead of failing. Opaque tokens go to RFC 7662 introspection
 * (client_secret_basic) when auth.oidc.introspectionUrl is set: active,
 * a bearer access token, not expired, iss and aud (when the answer has
 * them) ours. All I/O is
 * the fetcher's trusted policy (http only to loopback, and only with
 * auth.oidc.insecureAllowHTTP). Tokens are never logged.
 */
#ifndef AUTH_EXTIDP_H
#define AUTH_EXTIDP_H

#include <stddef.h>
#include <stdint.h>

#include "auth/crypto/tokencache.h"

struct config;
struct fetcher;
struct extidp;
struct extidp_check;

#define EXTIDP_JWKS_MIN_INTERVAL_MS 30000 /* between fetches for unknown kids */
#define EXTIDP_RETRY_MS 5000              /* after a failed fetch, with no keys at all */
#define EXTIDP_LEEWAY_S 60

enum extidp_outcome {
	EXTIDP_ACTIVE,      /* valid: claims filled */
	EXTIDP_INVALID,     /* 401 invalid_token */
	EXTIDP_UNAVAILABLE, /* the IdP could not be asked (keys, introspection) */
};

/* Valid only during the callback. */
struct extidp_result {
	enum extidp_outcome outcome;
	const char *reason;      /* low-cardinality label: "expired", "inactive", ... */
	const char *description; /* safe to show the client */
	const struct tokencache_claims *claims; /* EXTIDP_ACTIVE */
	int64_t cache_until;                    /* wall seconds the result may be cached until */
};

typedef void (*extidp_done_cb)(const struct extidp_result *res, void *arg);

/* NULL with a message in err when the configuration cannot be used. */
struct extidp *extidp_new(const struct config *cfg, struct fetcher *fetcher, char *err,
    size_t errlen);
/* Cancel every check in flight (no callback runs) and free. NULL is fine. */
void extidp_free(struct extidp *x);

/* Validate token (copied). done runs exactly once, possibly before this
 * returns (then NULL is returned), unless extidp_cancel() comes first. */
struct extidp_check *extidp_check(struct extidp *x, const char *token, extidp_done_cb done,
    void *arg);
/* Abandon a check: done will not run. Safe until done ran; NULL is fine. */
void extidp_cancel(struct extidp_check *c);

/*
 * Interpret an RFC 7662 response body for issuer/audience (NULL: not
 * checked) at wall time now: EXTIDP_ACTIVE with claims filled (the
 * caller disposes them), or EXTIDP_INVALID with *reason and *desc set.
 */
enum extidp_outcome extidp_parse_introspection(const char *body, size_t len, const char *issuer,
    const char *audience, int64_t now, struct tokencache_claims *claims, const char **reason,
    const char **desc);

#endif
