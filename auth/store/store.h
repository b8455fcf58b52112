/*
 * The authorization server's state behind one asynchronous interface:
 * pending logins (keyed by our upstream state), authorization codes,
 * refresh tokens and their families, upstream IdP tokens by session id
 * (tsid), revoked access-token ids, client-assertion ids seen and DCR
 * clients. Secrets are keyed by their SHA-256 (callers hash codes and
 * refresh tokens before they get here); nothing in a record is ever
 * logged.
 *
 * Every verb is one atomic domain operation (one round trip to Redis, one
 * Lua script where it has several steps) and completes through its
 * callback, which is never called before the verb returns: the memory
 * backend completes on the next loop turn, the Redis backend when the
 * reply arrives. A verb returns a handle for store_cancel() (a request
 * whose client went away cancels; the verb may still happen, its answer is
 * dropped). The callback gets a struct store_result; it may take the
 * records it holds (set the field to NULL), whatever is left is freed
 * after the callback returns.
 *
 * Failing closed: a bounded table that guards security never evicts; a
 * verb that would overflow it answers STORE_FULL, and a backend that cannot
 * be reached STORE_UNAVAILABLE: the caller answers 503 and nothing was
 * half-written (a verb happened or it reports an error).
 *
 * Two checks are synchronous, because they are on the MCP hot path that
 * never waits for the network: store_jti_revoked() (a local set, which the
 * Redis backend keeps current through pub/sub and a generation counter)
 * and store_upstream_cached() (the local copy of a session's upstream
 * tokens; a miss is followed by store_upstream_get()).
 */
#ifndef AUTH_STORE_H
#define AUTH_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config;
struct client;
struct event_base;
struct evdns_base;
struct store;
struct store_op;

/* Bounds of the in-memory tables (entries). */
#define STORE_MAX_PENDING 10000
#define STORE_MAX_CODES 10000
#define STORE_MAX_REFRESH 100000
#define STORE_MAX_FAMILIES 100000
#define STORE_MAX_UPSTREAM 100000
#define STORE_MAX_JTIS 100000
#define STORE_MAX_ASSERTION_JTIS 100000 /* client-assertion ids seen (fails closed when full) */
#define STORE_FAMILY_MAX_JTIS 32        /* access-token ids remembered per family */
#define STORE_CLIENT_IDLE_MS (30LL * 86400 * 1000) /* a DCR client unused this long expires */

/* An authorization waiting for the upstream IdP, keyed by our state. */
struct store_pending {
	char *client_id;
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
	char *client_id;
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

/* What issuing tokens records, in one verb: the access token's id in its
 * family (so revoking the family deny-lists it), the new refresh token
 * (when one is issued), and the session's upstream tokens kept alive as
 * long as the refresh token. */
struct store_issue {
	const char *family;
	const char *jti;
	int64_t jti_exp;               /* wall seconds */
	const char *refresh_hash;      /* NULL: no refresh token issued */
	struct store_refresh *refresh; /* the new token's record (the verb takes it) */
	const char *tsid;              /* NULL: no upstream session */
	int64_t ttl_ms;                /* of the family, the refresh token, the session */
};

enum store_status {
	STORE_OK,
	STORE_NOT_FOUND,   /* unknown or expired */
	STORE_SPENT,       /* single use, already used: family names its family */
	STORE_REVOKED,     /* the token's family has been revoked */
	STORE_FOREIGN,     /* belongs to another client: nothing was done */
	STORE_CONFLICT,    /* compare-and-swap lost: upstream/version are the current */
	STORE_REPLAYED,    /* an assertion id seen before */
	STORE_FULL,        /* a bounded table is full: answer 503, fail closed */
	STORE_UNAVAILABLE, /* the backend cannot be reached: answer 503 */
};

struct store_result {
	enum store_status status;
	struct store_pending *pending;
	struct store_code *code;
	struct store_refresh *refresh;
	struct store_upstream *upstream;
	uint64_t version;      /* of upstream (compare-and-swap) */
	struct client *client; /* a reference (client_unref) */
	char *family;          /* STORE_SPENT */
	unsigned evicted;      /* store_client_put: idle clients evicted to make room */
	int retry_after_s;     /* store_rate_take: STORE_FULL, whole seconds to wait */
};

typedef void (*store_done_cb)(struct store_result *res, void *arg);
/* Free what a result still holds (the front does, after the callback). */
void store_result_dispose(struct store_result *res);

/* The backend named by cfg (memory, or redis with its settings) on base;
 * NULL and err on a setup error. */
struct store *store_new(const struct config *cfg, struct event_base *base, struct evdns_base *dns,
    char *err, size_t errlen);
/* Every verb in flight is cancelled (its callback is not called). */
void store_free(struct store *st);
/* Drop expired entries (call from a periodic timer); returns how many. */
size_t store_sweep(struct store *st);
/* Cancel a verb: its callback will not be called. NULL is fine; a handle
 * is valid until its callback has been called or it was cancelled. */
void store_cancel(struct store_op *op);
/* A short text for a status, for logs and error descriptions. */
const char *store_status_text(enum store_status s);

/* The backend's health, for /health and the metrics. */
struct store_health {
	const char *type; /* "memory" or "redis" */
	bool reachable;
	const char *detail; /* why not, or NULL */
};
void store_health(struct store *st, struct store_health *out);

void store_pending_free(struct store_pending *p);
void store_code_free(struct store_code *c);
void store_refresh_free(struct store_refresh *r);
void store_upstream_free(struct store_upstream *u);
struct store_upstream *store_upstream_dup(const struct store_upstream *u);
struct store_refresh *store_refresh_dup(const struct store_refresh *r);

/* Pending logins: put (takes p), and take once (res->pending). */
struct store_op *store_pending_put(struct store *st, const char *state, struct store_pending *p,
    int64_t ttl_ms, store_done_cb done, void *arg);
struct store_op *store_pending_take(struct store *st, const char *state, store_done_cb done,
    void *arg);

/* Codes. put takes c. redeem hands the code back once (res->code); a code
 * presented again is STORE_SPENT, and the verb has revoked its family.
 * restore puts a redeemed code back when nothing could be issued for it,
 * so that the client's retry is not taken for a replay. */
struct store_op *store_code_put(struct store *st, const char *hash, struct store_code *c,
    int64_t ttl_ms, store_done_cb done, void *arg);
struct store_op *store_code_redeem(struct store *st, const char *hash, int64_t family_ttl_ms,
    store_done_cb done, void *arg);
#define store_code_restore store_code_put

/* Record the tokens issued after a code exchange (takes is->refresh).
 * STORE_REVOKED when the family was revoked meanwhile (the jti is then
 * deny-listed and nothing else recorded). */
struct store_op *store_issue(struct store *st, struct store_issue *is, store_done_cb done,
    void *arg);

/* Refresh tokens. get looks without consuming (res->refresh, a copy), or
 * STORE_SPENT with the family of a rotated token (reuse: the caller
 * revokes the family). rotate spends old_hash and records is (takes
 * is->refresh) in one step: STORE_SPENT when it was spent meanwhile (the
 * verb has revoked the family), STORE_REVOKED when its family is revoked,
 * STORE_NOT_FOUND; nothing happened unless STORE_OK. revoke spends the
 * token of client_id and revokes its family (STORE_FOREIGN: another
 * client's, untouched). */
struct store_op *store_refresh_get(struct store *st, const char *hash, store_done_cb done,
    void *arg);
struct store_op *store_refresh_rotate(struct store *st, const char *old_hash,
    struct store_issue *is, store_done_cb done, void *arg);
struct store_op *store_refresh_revoke(struct store *st, const char *hash, const char *client_id,
    int64_t family_ttl_ms, store_done_cb done, void *arg);

/* Revoke a family: its refresh tokens become useless and the ids of its
 * access tokens are deny-listed on every replica. */
struct store_op *store_family_revoke(struct store *st, const char *family, int64_t ttl_ms,
    store_done_cb done, void *arg);
/* Deny-list an access token id until exp_wall_s (plus the verifier's
 * leeway), on every replica. */
struct store_op *store_jti_revoke(struct store *st, const char *jti, int64_t exp_wall_s,
    store_done_cb done, void *arg);
/* The hot path's check, synchronous, on the local set. */
bool store_jti_revoked(struct store *st, const char *jti);

/* Upstream tokens by session id. put takes u. get: res->upstream (a copy)
 * and res->version. cas replaces the session's tokens only if they are
 * still at version (takes u): STORE_CONFLICT (with the current tokens)
 * when another replica rotated them first. */
struct store_op *store_upstream_put(struct store *st, const char *tsid, struct store_upstream *u,
    int64_t ttl_ms, store_done_cb done, void *arg);
struct store_op *store_upstream_get(struct store *st, const char *tsid, store_done_cb done,
    void *arg);
struct store_op *store_upstream_cas(struct store *st, const char *tsid, uint64_t version,
    struct store_upstream *u, int64_t ttl_ms, store_done_cb done, void *arg);
/* The local copy (borrowed until the next store call), or NULL: then ask
 * store_upstream_get(). */
const struct store_upstream *store_upstream_cached(struct store *st, const char *tsid,
    uint64_t *version);

/* Client assertions (RFC 7523) are single use: mark client_id's assertion
 * jti seen until exp_wall_s (plus a minute for the verifier's leeway):
 * STORE_OK when new, STORE_REPLAYED, or STORE_FULL (a seen id is never
 * forgotten to make room: the caller refuses the assertion). */
struct store_op *store_assertion_seen(struct store *st, const char *client_id, const char *jti,
    int64_t exp_wall_s, store_done_cb done, void *arg);

/* DCR clients, expiring after STORE_CLIENT_IDLE_MS unused. put takes a
 * new reference; when max clients exist (the registry's cap, on every
 * replica), the one unused for the longest is evicted if it was unused for
 * more than grace_ms (res->evicted), else STORE_FULL. get: res->client (a
 * reference); its lifetime slides. */
struct store_op *store_client_put(struct store *st, struct client *c, size_t max, int64_t grace_ms,
    store_done_cb done, void *arg);
struct store_op *store_client_get(struct store *st, const char *client_id, store_done_cb done,
    void *arg);
/* A token bucket shared by every replica (the DCR registration limit):
 * take one token from bucket name (per_second, burst): STORE_OK, or
 * STORE_FULL and res->retry_after_s. per_second <= 0: always STORE_OK. */
struct store_op *store_rate_take(struct store *st, const char *name, double per_second,
    double burst, store_done_cb done, void *arg);

/* How many DCR clients exist (this replica's view; the metric). */
size_t store_client_count(struct store *st);

#endif
