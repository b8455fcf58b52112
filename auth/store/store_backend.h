/*
 * Between the store's front (store.c: handles, cancellation, completion
 * never before the verb returns) and its backends (store_memory.c,
 * store_redis.c). Private to auth/store.
 *
 * The front allocates a struct store_op holding the verb and its
 * arguments (owned copies) and hands it to the backend's start(); the
 * backend fills op->res and calls store_op_finish(op) exactly once —
 * synchronously (memory) or when its reply arrives (Redis). The front
 * then calls the caller's callback (on the next loop turn if finish came
 * from inside start()) unless the op was cancelled, and frees the op and
 * whatever the result still holds. A backend must not touch op after
 * store_op_finish(op).
 */
#ifndef AUTH_STORE_BACKEND_H
#define AUTH_STORE_BACKEND_H

#include <sys/queue.h>

#include "auth/store/store.h"

enum store_verb {
	STORE_V_PENDING_PUT,    /* key=state, pending, ttl_ms */
	STORE_V_PENDING_TAKE,   /* key=state -> res.pending */
	STORE_V_CODE_PUT,       /* key=hash, code, ttl_ms */
	STORE_V_CODE_REDEEM,    /* key=hash, ttl_ms (family's) -> res.code | SPENT */
	STORE_V_ISSUE,          /* issue */
	STORE_V_REFRESH_GET,    /* key=hash -> res.refresh | SPENT */
	STORE_V_REFRESH_ROTATE, /* key=old hash, issue */
	STORE_V_REFRESH_REVOKE, /* key=hash, key2=client_id, ttl_ms */
	STORE_V_FAMILY_REVOKE,  /* key=family, ttl_ms */
	STORE_V_JTI_REVOKE,     /* key=jti, exp_wall_s */
	STORE_V_UPSTREAM_PUT,   /* key=tsid, upstream, ttl_ms */
	STORE_V_UPSTREAM_GET,   /* key=tsid -> res.upstream, res.version */
	STORE_V_UPSTREAM_CAS,   /* key=tsid, version, upstream, ttl_ms */
	STORE_V_ASSERTION_SEEN, /* key=jti, key2=client_id, exp_wall_s */
	STORE_V_CLIENT_PUT,     /* client, max, grace_ms */
	STORE_V_CLIENT_GET,     /* key=client_id -> res.client */
	STORE_V_RATE_TAKE,      /* key=bucket, rate, burst -> OK | FULL + res.retry_after_s */
};

struct store_op {
	struct store *st;
	enum store_verb verb;
	store_done_cb done;
	void *arg;
	bool cancelled;
	bool finished;
	TAILQ_ENTRY(store_op) entry; /* the front's list of live ops */
	TAILQ_ENTRY(store_op) ready; /* finished, awaiting delivery */
	/* Arguments: owned by the op (freed with it). */
	char *key;
	char *key2;
	int64_t ttl_ms;
	int64_t exp_wall_s;
	int64_t grace_ms;
	uint64_t version;
	size_t max;
	double rate;  /* STORE_V_RATE_TAKE: tokens per second */
	double burst; /* and the bucket's size */
	struct store_pending *pending;
	struct store_code *code;
	struct store_upstream *upstream;
	struct client *client;
	struct store_issue issue; /* its strings and record owned too */
	struct store_result res;
	void *be_data; /* the backend's, per op */
};

struct store_backend {
	const char *type;
	void (*start)(struct store_backend *be, struct store_op *op);
	bool (*jti_revoked)(struct store_backend *be, const char *jti);
	const struct store_upstream *(
	    *upstream_cached)(struct store_backend *be, const char *tsid, uint64_t *version);
	size_t (*sweep)(struct store_backend *be);
	size_t (*client_count)(struct store_backend *be);
	void (*health)(struct store_backend *be, struct store_health *out);
	/* Finishes (STORE_UNAVAILABLE) or drops every op it holds, then frees. */
	void (*free)(struct store_backend *be);
};

/* The backend is done with op (res filled). */
void store_op_finish(struct store_op *op);

struct store_backend *store_memory_new(const struct config *cfg);
struct store_backend *store_redis_new(const struct config *cfg, struct event_base *base,
    struct evdns_base *dns, char *err, size_t errlen);

#endif
