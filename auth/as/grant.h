/*
 * The token engine of the authorization server, free of HTTP and of the
 * event loop so it can be tested alone: issuing authorization codes,
 * exchanging them (single use, PKCE in constant time, replay revokes the
 * tokens issued from the code), refresh-token rotation with reuse
 * detection (reuse revokes the whole family), RFC 9068 JWT access tokens,
 * and revocation. Refresh tokens and codes are opaque 256-bit random values
 * the store only ever sees hashed. Never logs a token: only family ids and
 * log_token_id() correlations.
 */
#ifndef AUTH_GRANT_H
#define AUTH_GRANT_H

#include <stdbool.h>
#include <stdint.h>

struct config;
struct keyset;
struct client;
struct store;
struct store_pending;
struct strlist;
struct grant;

/* A successful token response. */
struct grant_result {
	char *access_token;
	char *refresh_token; /* NULL when none is issued */
	char *scope;
	int64_t expires_in;
};

/* An RFC 6749 §5.2 error: error code, a description safe to show, and the
 * HTTP status (400, or 401 for invalid_client). */
struct grant_error {
	const char *error;
	char desc[192];
	int status;
};

/* audience is the resource URL the access tokens are for. */
struct grant *grant_new(const struct config *cfg, struct store *st, const struct keyset *keys,
    const char *issuer, const char *audience);
void grant_free(struct grant *g);

/* Hex SHA-256 of a secret value: the store key of codes and refresh tokens. */
void grant_hash(const char *secret, char out[65]);

/* Issue our authorization code for a pending authorization that the
 * upstream IdP completed (p is copied, not consumed). Returns the code, or
 * NULL when the store is full (answer 503). */
char *grant_code_issue(struct grant *g, const struct store_pending *p, const char *tsid,
    const char *subject);

/* Exchange a code. client_id is the authenticated client and auth_method
 * how it authenticated (the code's client must accept that method: a
 * private_key_jwt client's code is never redeemed without its assertion);
 * redirect_uri as sent (required if the authorization request carried one);
 * resource as sent or NULL. 0 and out filled, or -1 and err. */
int grant_exchange_code(struct grant *g, const char *client_id, const char *auth_method,
    const char *code, const char *verifier, const char *redirect_uri, const char *resource,
    struct grant_result *out, struct grant_error *err);

/* Rotate a refresh token for client (authenticated, and for CIMD freshly
 * re-resolved). scope may narrow the original grant, never widen it. */
int grant_refresh(struct grant *g, const struct client *client, const char *refresh_token,
    const char *scope, const char *resource, struct grant_result *out, struct grant_error *err);

/* RFC 7009: revoke a refresh token (and its family) or an access token (its
 * jti deny-listed until it expires) that belongs to client_id. Unknown,
 * invalid or foreign tokens are silently ignored (0). -1: the store is full
 * and the revocation could not be recorded (answer 503; RFC 7009 §2.2.1). */
int grant_revoke(struct grant *g, const char *client_id, const char *token, const char *hint);

/* Has this access-token id been revoked? */
bool grant_jti_revoked(struct grant *g, const char *jti);

void grant_result_dispose(struct grant_result *r);

#endif
