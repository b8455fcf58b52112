/*
 * The store's front (see store.h and store_backend.h): one struct store_op
 * per verb, handed to the backend; completions are delivered from the
 * loop, never before the verb returns (a backend that finishes inside
 * start(), like the memory one, is delivered on the next loop turn through
 * one event for all), and a cancelled op is freed without a callback.
 */
#include "auth/store/store.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "auth/client/client.h"
#include "auth/store/store_backend.h"
#include "common/xalloc.h"
#include "config/config.h"

struct store {
	struct store_backend *be;
	struct event *deliver;
	bool starting; /* inside a backend's start() */
	TAILQ_HEAD(, store_op) live;
	TAILQ_HEAD(, store_op) ready;
};

static void
store_issue_dispose(struct store_issue *is)
{
	free((char *)is->family);
	free((char *)is->jti);
	free((char *)is->refresh_hash);
	free((char *)is->tsid);
	store_refresh_free(is->refresh);
	memset(is, 0, sizeof *is);
}

void
store_result_dispose(struct store_result *r)
{
	store_pending_free(r->pending);
	store_code_free(r->code);
	store_refresh_free(r->refresh);
	store_upstream_free(r->upstream);
	client_unref(r->client);
	free(r->family);
	memset(r, 0, sizeof *r);
}

static void
store_op_free(struct store_op *op)
{
	free(op->key);
	free(op->key2);
	store_pending_free(op->pending);
	store_code_free(op->code);
	store_upstream_free(op->upstream);
	client_unref(op->client);
	store_issue_dispose(&op->issue);
	store_result_dispose(&op->res);
	free(op);
}

static void
store_deliver(struct store_op *op)
{
	struct store *st = op->st;

	TAILQ_REMOVE(&st->live, op, entry);
	if (!op->cancelled)
		op->done(&op->res, op->arg);
	store_op_free(op);
}

static void
store_deliver_cb(evutil_socket_t fd, short what, void *arg)
{
	struct store *st = arg;
	struct store_op *op;
	TAILQ_HEAD(, store_op) batch = TAILQ_HEAD_INITIALIZER(batch);

	(void)fd;
	(void)what;
	/* Only what is ready now: callbacks that start verbs wait a turn. */
	TAILQ_CONCAT(&batch, &st->ready, ready);
	while ((op = TAILQ_FIRST(&batch)) != NULL) {
		TAILQ_REMOVE(&batch, op, ready);
		store_deliver(op);
	}
}

void
store_op_finish(struct store_op *op)
{
	struct store *st = op->st;

	op->finished = true;
	if (st->starting || st->deliver == NULL) {
		TAILQ_INSERT_TAIL(&st->ready, op, ready);
		if (st->deliver != NULL)
			event_active(st->deliver, 0, 0);
		return;
	}
	store_deliver(op);
}

struct store *
store_new(const struct config *cfg, struct event_base *base, struct evdns_base *dns, char *err,
    size_t errlen)
{
	struct store *st;
	struct store_backend *be;

	if (cfg->eas.storage.type == STORAGE_REDIS)
		be = store_redis_new(cfg, base, dns, err, errlen);
	else
		be = store_memory_new(cfg);
	if (be == NULL)
		return NULL;
	st = xcalloc(1, sizeof *st);
	st->be = be;
	st->deliver = event_new(base, -1, 0, store_deliver_cb, st);
	if (st->deliver == NULL)
		abort();
	TAILQ_INIT(&st->live);
	TAILQ_INIT(&st->ready);
	return st;
}

void
store_free(struct store *st)
{
	struct store_op *op;

	if (st == NULL)
		return;
	TAILQ_FOREACH(op, &st->live, entry)
	op->cancelled = true;
	/* The backend finishes what it holds: those are delivered (cancelled)
	 * at once now that no loop turn is left to wait for. */
	event_free(st->deliver);
	st->deliver = NULL;
	st->be->free(st->be);
	while ((op = TAILQ_FIRST(&st->ready)) != NULL) {
		TAILQ_REMOVE(&st->ready, op, ready);
		store_deliver(op);
	}
	/* A backend must have finished every op; what is left leaks loudly. */
	free(st);
}

size_t
store_sweep(struct store *st)
{
	return st->be->sweep(st->be);
}

void
store_cancel(struct store_op *op)
{
	if (op == NULL)
		return;
	op->cancelled = true;
	op->done = NULL;
	op->arg = NULL;
}

const char *
store_status_text(enum store_status s)
{
	switch (s) {
	case STORE_OK:
		return "ok";
	case STORE_NOT_FOUND:
		return "not found";
	case STORE_SPENT:
		return "already used";
	case STORE_REVOKED:
		return "revoked";
	case STORE_FOREIGN:
		return "another client's";
	case STORE_CONFLICT:
		return "changed meanwhile";
	case STORE_REPLAYED:
		return "replayed";
	case STORE_FULL:
		return "the store is full";
	case STORE_UNAVAILABLE:
		return "the store is unavailable";
	}
	return "?";
}

void
store_health(struct store *st, struct store_health *out)
{
	memset(out, 0, sizeof *out);
	st->be->health(st->be, out);
}

bool
store_jti_revoked(struct store *st, const char *jti)
{
	return jti != NULL && st->be->jti_revoked(st->be, jti);
}

const struct store_upstream *
store_upstream_cached(struct store *st, const char *tsid, uint64_t *version)
{
	return tsid != NULL ? st->be->upstream_cached(st->be, tsid, version) : NULL;
}

size_t
store_client_count(struct store *st)
{
	return st->be->client_count(st->be);
}

/* --- records --- */

void
store_pending_free(struct store_pending *p)
{
	if (p == NULL)
		return;
	free(p->client_id);
	free(p->redirect_uri);
	free(p->state);
	free(p->code_challenge);
	free(p->scope);
	free(p->resource);
	xfree_secret(p->upstream_verifier);
	xfree_secret(p->nonce);
	free(p);
}

void
store_code_free(struct store_code *c)
{
	if (c == NULL)
		return;
	free(c->client_id);
	free(c->redirect_uri);
	free(c->code_challenge);
	free(c->scope);
	free(c->resource);
	free(c->tsid);
	free(c->subject);
	free(c->family);
	free(c);
}

void
store_refresh_free(struct store_refresh *r)
{
	if (r == NULL)
		return;
	free(r->family);
	free(r->client_id);
	free(r->scope);
	free(r->resource);
	free(r->tsid);
	free(r->subject);
	free(r);
}

void
store_upstream_free(struct store_upstream *u)
{
	if (u == NULL)
		return;
	free(u->subject);
	xfree_secret(u->access_token);
	xfree_secret(u->refresh_token);
	xfree_secret(u->id_token);
	free(u->claims_json);
	free(u);
}

static char *
rec_dup(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

struct store_upstream *
store_upstream_dup(const struct store_upstream *u)
{
	struct store_upstream *c = xcalloc(1, sizeof *c);

	c->subject = rec_dup(u->subject);
	c->access_token = rec_dup(u->access_token);
	c->refresh_token = rec_dup(u->refresh_token);
	c->id_token = rec_dup(u->id_token);
	c->claims_json = rec_dup(u->claims_json);
	c->expires_at = u->expires_at;
	return c;
}

struct store_refresh *
store_refresh_dup(const struct store_refresh *r)
{
	struct store_refresh *c = xcalloc(1, sizeof *c);

	c->family = rec_dup(r->family);
	c->client_id = rec_dup(r->client_id);
	c->scope = rec_dup(r->scope);
	c->resource = rec_dup(r->resource);
	c->tsid = rec_dup(r->tsid);
	c->subject = rec_dup(r->subject);
	c->expires_at = r->expires_at;
	return c;
}

/* --- verbs --- */

static struct store_op *
store_op_new(struct store *st, enum store_verb verb, const char *key, store_done_cb done, void *arg)
{
	struct store_op *op = xcalloc(1, sizeof *op);

	op->st = st;
	op->verb = verb;
	op->done = done;
	op->arg = arg;
	op->key = key != NULL ? xstrdup(key) : NULL;
	TAILQ_INSERT_TAIL(&st->live, op, entry);
	return op;
}

static struct store_op *
store_op_start(struct store_op *op)
{
	struct store *st = op->st;
	bool was = st->starting;

	st->starting = true;
	st->be->start(st->be, op);
	st->starting = was;
	return op;
}

static void
store_issue_copy(struct store_issue *dst, struct store_issue *src)
{
	dst->family = src->family != NULL ? xstrdup(src->family) : NULL;
	dst->jti = src->jti != NULL ? xstrdup(src->jti) : NULL;
	dst->jti_exp = src->jti_exp;
	dst->refresh_hash = src->refresh_hash != NULL ? xstrdup(src->refresh_hash) : NULL;
	dst->refresh = src->refresh;
	src->refresh = NULL;
	dst->tsid = src->tsid != NULL ? xstrdup(src->tsid) : NULL;
	dst->ttl_ms = src->ttl_ms;
}

struct store_op *
store_pending_put(struct store *st, const char *state, struct store_pending *p, int64_t ttl_ms,
    store_done_cb done, void *arg)
{
	struct store_op *op = store_op_new(st, STORE_V_PENDING_PUT, state, done, arg);

	op->pending = p;
	op->ttl_ms = ttl_ms;
	return store_op_start(op);
}

struct store_op *
store_pending_take(struct store *st, const char *state, store_done_cb done, void *arg)
{
	return store_op_start(store_op_new(st, STORE_V_PENDING_TAKE, state, done, arg));
}

struct store_op *
store_code_put(struct store *st, const char *hash, struct store_code *c, int64_t ttl_ms,
    store_done_cb done, void *arg)
{
	struct store_op *op = store_op_new(st, STORE_V_CODE_PUT, hash, done, arg);

	op->code = c;
	op->ttl_ms = ttl_ms;
	return store_op_start(op);
}

struct store_op *
store_code_redeem(struct store *st, const char *hash, int64_t family_ttl_ms, store_done_cb done,
    void *arg)
{
	struct store_op *op = store_op_new(st, STORE_V_CODE_REDEEM, hash, done, arg);

	op->ttl_ms = family_ttl_ms;
	return store_op_start(op);
}

struct store_op *
store_issue(struct store *st, struct store_issue *is, store_done_cb done, void *arg)
{
	struct store_op *op = store_op_new(st, STORE_V_ISSUE, NULL, done, arg);

	store_issue_copy(&op->issue, is);
	return store_op_start(op);
}

struct store_op *
store_refresh_get(struct store *st, const char *hash, store_done_cb done, void *arg)
{
	return store_op_start(store_op_new(st, STORE_V_REFRESH_GET, hash, done, arg));
}

struct store_op *
store_refresh_rotate(struct store *st, const char *old_hash, struct store_issue *is,
    store_done_cb done, void *arg)
{
	struct store_op *op = store_op_new(st, STORE_V_REFRESH_ROTATE, old_hash, done, arg);

	store_issue_copy(&op->issue, is);
	return store_op_start(op);
}

struct store_op *
store_refresh_revoke(struct store *st, const char *hash, const char *client_id,
    int64_t family_ttl_ms, store_done_cb done, void *arg)
{
	struct store_op *op = store_op_new(st, STORE_V_REFRESH_REVOKE, hash, done, arg);

	op->key2 = xstrdup(client_id);
	op->ttl_ms = family_ttl_ms;
	return store_op_start(op);
}

struct store_op *
store_family_revoke(struct store *st, const char *family, int64_t ttl_ms, store_done_cb done,
    void *arg)
{
	struct store_op *op = store_op_new(st, STORE_V_FAMILY_REVOKE, family, done, arg);

	op->ttl_ms = ttl_ms;
	return store_op_start(op);
}

struct store_op *
store_jti_revoke(struct store *st, const char *jti, int64_t exp_wall_s, store_done_cb done,
    void *arg)
{
	struct store_op *op = store_op_new(st, STORE_V_JTI_REVOKE, jti, done, arg);

	op->exp_wall_s = exp_wall_s;
	return store_op_start(op);
}

struct store_op *
store_upstream_put(struct store *st, const char *tsid, struct store_upstream *u, int64_t ttl_ms,
    store_done_cb done, void *arg)
{
	struct store_op *op = store_op_new(st, STORE_V_UPSTREAM_PUT, tsid, done, arg);

	op->upstream = u;
	op->ttl_ms = ttl_ms;
	return store_op_start(op);
}

struct store_op *
store_upstream_get(struct store *st, const char *tsid, store_done_cb done, void *arg)
{
	return store_op_start(store_op_new(st, STORE_V_UPSTREAM_GET, tsid, done, arg));
}

struct store_op *
store_upstream_cas(struct store *st, const char *tsid, uint64_t version, struct store_upstream *u,
    int64_t ttl_ms, store_done_cb done, void *arg)
{
	struct store_op *op = store_op_new(st, STORE_V_UPSTREAM_CAS, tsid, done, arg);

	op->version = version;
	op->upstream = u;
	op->ttl_ms = ttl_ms;
	return store_op_start(op);
}

struct store_op *
store_assertion_seen(struct store *st, const char *client_id, const char *jti, int64_t exp_wall_s,
    store_done_cb done, void *arg)
{
	struct store_op *op = store_op_new(st, STORE_V_ASSERTION_SEEN, jti, done, arg);

	op->key2 = xstrdup(client_id);
	op->exp_wall_s = exp_wall_s;
	return store_op_start(op);
}

struct store_op *
store_client_put(struct store *st, struct client *c, size_t max, int64_t grace_ms,
    store_done_cb done, void *arg)
{
	struct store_op *op = store_op_new(st, STORE_V_CLIENT_PUT, c->client_id, done, arg);

	client_ref(c);
	op->client = c;
	op->max = max;
	op->grace_ms = grace_ms;
	return store_op_start(op);
}

struct store_op *
store_rate_take(struct store *st, const char *name, double per_second, double burst,
    store_done_cb done, void *arg)
{
	struct store_op *op = store_op_new(st, STORE_V_RATE_TAKE, name, done, arg);

	op->rate = per_second;
	op->burst = burst;
	return store_op_start(op);
}

struct store_op *
store_client_get(struct store *st, const char *client_id, store_done_cb done, void *arg)
{
	return store_op_start(store_op_new(st, STORE_V_CLIENT_GET, client_id, done, arg));
}
