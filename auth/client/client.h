/*
 * An OAuth client as the authorization server sees it, whichever way it
 * became known: registered through /oauth/register (DCR) or resolved from a
 * Client ID Metadata Document (CIMD). Shared, reference-counted and
 * immutable once published, so a pending authorization or an authorization
 * code can keep the exact client it was issued for even when the registry
 * or the CIMD cache drops it. Also the redirect_uri rules both kinds share.
 */
#ifndef AUTH_CLIENT_H
#define AUTH_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"

struct keyset;

#define OAUTH_REDIRECT_URI_MAX 2048

struct client {
	int refs;
	char *client_id;
	bool is_cimd;                     /* client_id is an https URL (metadata document) */
	char *client_name;                /* optional, for the consent/error page */
	char *application_type;           /* DCR: native | web (OIDC Registration), or NULL */
	char *token_endpoint_auth_method; /* none | client_secret_basic/_post | private_key_jwt */
	bool also_none;                   /* private_key_jwt, and none accepted too (CIMD) */
	char *jwks_uri;                   /* private_key_jwt: the keys' https URL, or NULL */
	char *token_endpoint_auth_signing_alg; /* private_key_jwt: the one alg, or NULL */
	struct keyset *jwks;           /* private_key_jwt: the inline keys (owned), or NULL */
	unsigned char secret_hash[32]; /* SHA-256 of the client secret (confidential only) */
	bool has_secret;
	struct strlist redirect_uris;
	struct strlist grant_types;
	struct strlist scopes; /* what the client may request: declared ∪ baseline */
	int64_t created_at;    /* wall seconds */
	int64_t last_used_ms;  /* monotonic, for eviction of idle DCR clients */
};

struct client *client_new(const char *client_id);
void client_ref(struct client *c);
/* Drop a reference; frees on the last. NULL is fine. */
void client_unref(struct client *c);

/* May c authenticate at the token endpoint with method (none,
 * private_key_jwt, client_secret_basic, client_secret_post)? */
bool client_accepts_auth(const struct client *c, const char *method);

enum redirect_uri_kind {
	REDIRECT_URI_HTTPS,
	REDIRECT_URI_LOOPBACK,       /* http://127.0.0.1|[::1]|localhost[:port]/... */
	REDIRECT_URI_PRIVATE_SCHEME, /* cursor://..., com.example.app:/cb */
};

/* Validate a redirect URI for registration: absolute, no fragment, no
 * userinfo, <= OAUTH_REDIRECT_URI_MAX, https or loopback http, or (when
 * allow_private_scheme) a private-use scheme. Returns 0 and the kind, or -1
 * with a static reason in *why. */
int client_redirect_uri_check(const char *uri, bool allow_private_scheme,
    enum redirect_uri_kind *kind, const char **why);

/* Does the requested redirect_uri match one registered? Exact string match,
 * except that a loopback http redirect may use any port (RFC 8252 §7.3)
 * when the registered one is loopback with the same host and path. */
bool client_redirect_uri_matches(const struct strlist *registered, const char *requested);

/* Finish c's scope set: when the client declared none, every scope in
 * scopes_supported; then baselineClientScopes unioned in (the seed: for
 * DCR and CIMD clients alike). Declared scopes are checked by the caller. */
void client_finish_scopes(struct client *c, bool declared, const struct config *cfg);

#endif
