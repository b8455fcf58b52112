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

#include "auth/store/store.h"

struct config;
struct keyset;
struct client;
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

/* A grant's outcome: r on success (borrowed for the call; take its
 * strings by setting them to NULL), else NULL and err. */
typedef void (*grant_done_cb)(struct grant_result *r, const struct grant_error *err, void *arg);
/* grant_revoke()'s: 0, or -1 when the revocation could not be recorded. */
typedef void (*grant_revoked_cb)(int rc, void *arg);
/* grant_code_issue()'s: the code (ours to free), or NULL and why (503). */
typedef void (*grant_code_cb)(char *code, enum store_status status, void *arg);

/* Every grant verb waits for the store: it returns a handle for
 * grant_cancel(), or NULL when done has already been called (before the
 * verb returned: a request refused without a look at the store). */
struct grant_op;
/* The callback will not be called; NULL is fine. */
void grant_cancel(struct grant_op *op);

/* Issue our authorization code for a pending authorization that the
 * upstream IdP completed (p is copied, not consumed). */
struct grant_op *grant_code_issue(struct grant *g, const struct store_pending *p, const char *tsid,
    const char *subject, grant_code_cb done, void *arg);

/* Exchange a code. client is the authenticated client (a reference is
 * held) and auth_method how it authenticated (the code's client must
 * accept that method: a private_key_jwt client's code is never redeemed
 * without its assertion); redirect_uri as sent (required if the
 * authorization request carried one); resource as sent or NULL. */
struct grant_op *grant_exchange_code(struct grant *g, struct client *client,
    const char *auth_method, const char *code, const char *verifier, const char *redirect_uri,
    const char *resource, grant_done_cb done, void *arg);

/* Rotate a refresh token for client (authenticated, and for CIMD freshly
 * re-resolved). scope may narrow the original grant, never widen it. */
struct grant_op *grant_refresh(struct grant *g, struct client *client, const char *refresh_token,
    const char *scope, const char *resource, grant_done_cb done, void *arg);

/* RFC 7009: revoke a refresh token (and its family) or an access token (its
 * jti deny-listed until it expires) that belongs to client_id. Unknown,
 * invalid or foreign tokens are silently ignored (0). -1: the store could
 * not record the revocation (answer 503; RFC 7009 §2.2.1). */
struct grant_op *grant_revoke(struct grant *g, const char *client_id, const char *token,
    const char *hint, grant_revoked_cb done, void *arg);

/* Has this access-token id been revoked? (Local: never waits.) */
bool grant_jti_revoked(struct grant *g, const char *jti);

void grant_result_dispose(struct grant_result *r);

#endif
