/*
 * The verified-token cache of the bearer guard: what a token was found to
 * say (subject, scope, jti, session id...) once its signature and claims
 * checked out, or once introspection called it active, so that the hot
 * path does not verify the same signature on every request. Keyed by the
 * SHA-256 of the token's secret part (a JWT's signature; never kept) and
 * its readable signed part (kept and compared), valid until a wall-clock
 * deadline that is never later than the token's exp, and bounded
 * (least recently used entries go first). It answers "was this verified?",
 * never "is it still allowed?": revocation is the caller's check, on every
 * hit.
 */
#ifndef AUTH_TOKENCACHE_H
#define AUTH_TOKENCACHE_H

#include <stddef.h>
#include <stdint.h>

#define TOKENCACHE_DEFAULT_MAX 10000

/* What a verified token says. Strings are NULL when the claim is absent. */
struct tokencache_claims {
	char *sub;
	char *scope; /* space-separated */
	char *jti;
	char *tsid; /* our session id (embedded AS tokens) */
	char *client_id;
	int64_t exp; /* wall seconds, 0 = none */
	/* The whole claim set as JSON text (external IdP tokens, for MCP
	 * authorization rules), NULL when absent or over TOKENCACHE_CLAIMS_MAX. */
	char *claims_json;
};

#define TOKENCACHE_CLAIMS_MAX 4096 /* bytes of claims_json kept per token */

struct tokencache;

struct tokencache *tokencache_new(size_t max_entries);
/* NULL is fine. */
void tokencache_free(struct tokencache *tc);

/* The claims of token if it was put and its deadline (wall clock) has not
 * passed; a hit becomes the most recently used. Borrowed: valid until the
 * next call into the cache. */
const struct tokencache_claims *tokencache_get(struct tokencache *tc, const char *token,
    size_t len);
/* Remember claims (copied) for token until the wall-clock second until
 * (clamped to claims->exp when that is set). A deadline already past
 * stores nothing; a full cache drops its least recently used entry. */
void tokencache_put(struct tokencache *tc, const char *token, size_t len,
    const struct tokencache_claims *claims, int64_t until);
/* Forget token (e.g. found revoked). */
void tokencache_remove(struct tokencache *tc, const char *token, size_t len);
size_t tokencache_count(const struct tokencache *tc);

void tokencache_claims_copy(struct tokencache_claims *dst, const struct tokencache_claims *src);
void tokencache_claims_dispose(struct tokencache_claims *c);

#endif
