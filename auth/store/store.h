/*
 * The authorization server's state behind one interface: pending
 * authorizations (our upstream state), authorization codes, refresh tokens
 * and their families, upstream IdP tokens by session id (tsid), revoked
 * access-token ids and DCR clients. Secrets are keyed by their SHA-256
 * (callers hash codes and refresh tokens before they get here); nothing in
 * a record is ever logged. Every table expires its entries (monotonic
 * clock, common/clock.h) and is bounded. A full table never evicts (every
 * entry guards a login, a token or a revocation): the put that would
 * overflow it returns false, the record is freed, and the caller answers
 * 503 — failing closed, never reopening a revoked token (the table of seen
 * assertion ids likewise: store_jti_seen says STORE_JTI_FULL).
 *
 * Single-use values are consumed with *_take(), which leaves a tombstone so
 * that a replay is recognised (and names the token family to revoke). A
 * Redis backend (store_redis.c) will implement this same header.
 *
 * Records passed to *_put() become the store's; *_take() hands ownership
 * back to the caller (free with the matching *_free()); *_get() returns a
 * borrowed pointer valid until the next call into the store.
 */
#ifndef AUTH_STORE_H
#define AUTH_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config;
struct client;
struct store;

/* Bounds of the in-memory tables (entries). */
#define STORE_MAX_PENDING 10000
#define STORE_MAX_CODES 10000
#define STORE_MAX_REFRESH 100000
#define STORE_MAX_FAMILIES 100000
#define STORE_MAX_UPSTREAM 100000
#define STORE_MAX_JTIS 100000
#define STORE_MAX_ASSERTION_JTIS 100000 /* client-assertion ids seen (fails closed when full) */
#define STORE_FAMILY_MAX_JTIS 32        /* access-token ids remembered per family */

/* An authorization waiting for the upstream IdP, keyed by our state. */
struct store_pending {
	struct client *client;   /* a reference */
	char *redirect_uri;      /* verified */
	bool redirect_uri_sent;  /* the client sent it (token must repeat it) */
	char *state;             /* the client's, may be NULL */
	char *code_challenge;    /* S256 */
	char *scope;             /* granted, space-separated */
	char *resource;          /* RFC 8707, may be NULL */
	char *upstream_verifier; /* our PKCE verifier towards the IdP */
	char *nonce;             /* OIDC nonce */
};

/* Our authorization code, keyed by SHA-256(code). */
struct store_code {
	struct client *client; /* a reference: survives registry/cache eviction */
	char *redirect_uri;
	bool redirect_uri_sent;
	char *code_challenge;
	char *scope;
	char *resource;
	char *tsid;
	char *subject;
	char *family; /* the token family its tokens will belong to */
};

/* A refresh token, keyed by SHA-256(token). */
struct store_refresh {
	char *family;
	char *client_id;
	char *scope; /* granted by the authorization: refreshes may narrow it */
	char *resource;
	char *tsid;
	char *subject;
	int64_t expires_at; /* wall seconds */
};

/* The upstream IdP's tokens for one session (tsid). */
struct store_upstream {
	char *subject;
	char *access_token;
	char *refresh_token;
	char *id_token;
	char *claims_json;  /* the verified ID token claims, or userinfo */
	int64_t expires_at; /* wall seconds of the access token, 0 = unknown */
};

struct store *store_new(const struct config *cfg);
void store_free(struct store *st);
/* Drop expired entries (call from a periodic timer); returns how many. */
size_t store_sweep(struct store *st);

void store_pending_free(struct store_pending *p);
void store_code_free(struct store_code *c);
void store_refresh_free(struct store_refresh *r);
void store_upstream_free(struct store_upstream *u);
struct store_upstream *store_upstream_dup(const struct store_upstream *u);

/* Pending authorizations: put, and take once. */
bool store_pending_put(struct store *st, const char *key, struct store_pending *p, int64_t ttl_ms);
struct store_pending *store_pending_take(struct store *st, const char *key);

/* Codes. take returns the code once; a later take of the same key returns
 * NULL and, if the code was used (not merely unknown or expired), a new
 * copy of its family in *replayed_family (else NULL). */
bool store_code_put(struct store *st, const char *hash, struct store_code *c, int64_t ttl_ms);
struct store_code *store_code_take(struct store *st, const char *hash, char **replayed_family);

/* Refresh tokens: like codes; the tombstone of a rotated token lives until
 * the token would have expired, so reuse is recognised for that long. */
bool store_refresh_put(struct store *st, const char *hash, struct store_refresh *r, int64_t ttl_ms);
struct store_refresh *store_refresh_take(struct store *st, const char *hash,
    char **replayed_family);
/* Look without consuming (revocation checks the owner first). */
const struct store_refresh *store_refresh_get(struct store *st, const char *hash);

/* Token families: the refresh-token chain of one authorization, with the
 * ids of the access tokens issued in it. Revoking a family deny-lists those
 * ids and makes every refresh token of the family useless. */
bool store_family_add_jti(struct store *st, const char *family, const char *jti, int64_t exp_wall_s,
    int64_t ttl_ms);
bool store_family_revoke(struct store *st, const char *family, int64_t ttl_ms);
bool store_family_revoked(struct store *st, const char *family);

/* Upstream tokens by session id. */
bool store_upstream_put(struct store *st, const char *tsid, struct store_upstream *u,
    int64_t ttl_ms);
const struct store_upstream *store_upstream_get(struct store *st, const char *tsid);
/* Extend a session's lifetime (a refresh keeps the upstream tokens alive). */
void store_upstream_touch(struct store *st, const char *tsid, int64_t ttl_ms);

/* Revoked access tokens, by jti, until they would have expired anyway. */
bool store_jti_revoke(struct store *st, const char *jti, int64_t exp_wall_s);
bool store_jti_revoked(struct store *st, const char *jti);

/* Client assertions (RFC 7523) are single use: mark client_id's assertion
 * jti seen until it expires (exp_wall_s, plus a minute for the verifier's
 * leeway). STORE_JTI_FULL when the table holds STORE_MAX_ASSERTION_JTIS
 * unexpired ids: a seen id is never forgotten to make room, so the caller
 * refuses the assertion (503) rather than risk accepting a replay. */
enum store_jti_result { STORE_JTI_NEW, STORE_JTI_REPLAYED, STORE_JTI_FULL };
enum store_jti_result store_jti_seen(struct store *st, const char *client_id, const char *jti,
    int64_t exp_wall_s);

/* DCR clients (never expire; bounded by the registry's eviction). put takes
 * a new reference; get returns a borrowed client (take a ref to keep it). */
void store_client_put(struct store *st, struct client *c);
struct client *store_client_get(struct store *st, const char *client_id);
size_t store_client_count(struct store *st);
/* Remove the DCR client unused for the longest time if it was last used
 * before idle_before_ms (monotonic); false when none qualifies. */
bool store_client_evict_idle(struct store *st, int64_t idle_before_ms);

#endif
