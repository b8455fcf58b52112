/*
 * The in-memory store backend (see store.h): one hash table per kind of
 * record, each with an insertion-ordered list (live records, and the
 * tombstones of taken single-use ones) and per-entry expiry on the
 * monotonic clock. A full table never evicts: every entry guards a login,
 * a token or a revocation, so the put that would overflow it is refused
 * (after the expired entries are swept, at most once a second per table)
 * and the caller answers 503. Single-threaded (the loop). The hash is keyed
 * (common/hash.h: SipHash under a per-process random key) so that
 * client-chosen keys (client_ids) cannot be aimed at one bucket.
 */
#include "auth/store/store_backend.h"

#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "auth/client/client.h"
#include "common/hash.h"
#include "common/ratelimit.h"
#include "common/clock.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "proxy/metrics.h"

#define MEM_NEVER INT64_MAX
#define MEM_FULL_SWEEP_MS 1000 /* between sweeps of a full table */

static struct metric *mem_m_dropped; /* tombstones dropped to make room, by table */

struct mem_entry {
	char *key;
	uint64_t hash;
	int64_t expires; /* monotonic ms, MEM_NEVER */
	void *val;
	struct mem_entry *next; /* bucket chain */
	bool spent;             /* a single-use record taken: on t->spent, not t->order */
	TAILQ_ENTRY(mem_entry) order;
};

struct mem_table {
	const char *name;
	struct mem_entry **buckets;
	size_t nbuckets;
	size_t n;
	size_t max;
	int64_t swept_ms; /* when a full table was last swept */
	void (*free_val)(void *);
	TAILQ_HEAD(, mem_entry) order;
	/* Tombstones of taken single-use records, oldest first: they recognise
	 * a replay until the record would have expired. */
	TAILQ_HEAD(, mem_entry) spent;
};

/* A single-use value: the record until taken, then a tombstone with its
 * family so that a replay can be traced. */
struct mem_once {
	void *rec;
	char *family;
};

struct mem_family {
	bool revoked;
	size_t n;
	char *jti[STORE_FAMILY_MAX_JTIS];
	int64_t exp[STORE_FAMILY_MAX_JTIS];
};

/* A session's upstream tokens and their version (compare-and-swap). */
struct mem_upstream {
	struct store_upstream *u;
	uint64_t version;
};

struct mem_store {
	struct store_backend be; /* first: the front's handle */
	struct mem_table pending;
	struct mem_table codes;
	struct mem_table refresh;
	struct mem_table families;
	struct mem_table upstream;
	struct mem_table jtis;
	struct mem_table assertions; /* seen client-assertion ids: never evicted */
	struct mem_table clients;
	struct ratelimit *rates; /* store_rate_take's buckets, by name */
};

/* The keyed hash (common/hash.h), the CIMD cache's too: client ids and
 * the hashes of client-sent tokens are keys a client chooses. */
static uint64_t
mem_hash(const char *key)
{
	return hash_str(key);
}

static void
mem_table_init(struct mem_table *t, const char *name, size_t max, void (*free_val)(void *))
{
	t->name = name;
	t->nbuckets = 64;
	t->buckets = xcalloc(t->nbuckets, sizeof *t->buckets);
	t->max = max;
	t->free_val = free_val;
	TAILQ_INIT(&t->order);
	TAILQ_INIT(&t->spent);
}

static void
mem_entry_remove(struct mem_table *t, struct mem_entry *e)
{
	struct mem_entry **pp = &t->buckets[e->hash & (t->nbuckets - 1)];

	while (*pp != e)
		pp = &(*pp)->next;
	*pp = e->next;
	if (e->spent)
		TAILQ_REMOVE(&t->spent, e, order);
	else
		TAILQ_REMOVE(&t->order, e, order);
	t->n--;
	if (e->val != NULL)
		t->free_val(e->val);
	free(e->key);
	free(e);
}

static void
mem_table_dispose(struct mem_table *t)
{
	struct mem_entry *e;

	while ((e = TAILQ_FIRST(&t->order)) != NULL || (e = TAILQ_FIRST(&t->spent)) != NULL)
		mem_entry_remove(t, e);
	free(t->buckets);
}

static void
mem_table_grow(struct mem_table *t)
{
	size_t nb = t->nbuckets * 2;
	struct mem_entry **b = xcalloc(nb, sizeof *b), *e;

	TAILQ_FOREACH(e, &t->order, order)
	{
		e->next = b[e->hash & (nb - 1)];
		b[e->hash & (nb - 1)] = e;
	}
	TAILQ_FOREACH(e, &t->spent, order)
	{
		e->next = b[e->hash & (nb - 1)];
		b[e->hash & (nb - 1)] = e;
	}
	free(t->buckets);
	t->buckets = b;
	t->nbuckets = nb;
}

/* The live entry for key; an expired one is removed on the way. */
static struct mem_entry *
mem_find(struct mem_table *t, const char *key)
{
	uint64_t h = mem_hash(key);
	struct mem_entry *e;

	for (e = t->buckets[h & (t->nbuckets - 1)]; e != NULL; e = e->next) {
		if (e->hash == h && strcmp(e->key, key) == 0)
			break;
	}
	if (e != NULL && e->expires <= clock_mono_ms()) {
		mem_entry_remove(t, e);
		return NULL;
	}
	return e;
}

static size_t mem_sweep(struct mem_table *t);

/* Insert or replace. A full table (after its expired entries are swept)
 * refuses: val is freed and false returned. Replacing always succeeds. */
static bool
mem_put(struct mem_table *t, const char *key, void *val, int64_t ttl_ms)
{
	struct mem_entry *e;
	int64_t now = clock_mono_ms();
	uint64_t h;

	if ((e = mem_find(t, key)) != NULL)
		mem_entry_remove(t, e);
	if (t->n >= t->max && now - t->swept_ms >= MEM_FULL_SWEEP_MS) {
		t->swept_ms = now;
		mem_sweep(t);
	}
	/* A tombstone only recognises a replay (its token is spent and can
	 * never be used again): the oldest one makes room before a live
	 * record is refused. Only the theft detection of that one old token
	 * is lost; nothing usable is forgotten. */
	if (t->n >= t->max && (e = TAILQ_FIRST(&t->spent)) != NULL) {
		mem_entry_remove(t, e);
		metrics_add(mem_m_dropped, 1, t->name);
	}
	if (t->n >= t->max) {
		t->free_val(val);
		return false;
	}
	if (t->n + 1 > t->nbuckets)
		mem_table_grow(t);
	h = mem_hash(key);
	e = xcalloc(1, sizeof *e);
	e->key = xstrdup(key);
	e->hash = h;
	e->expires = ttl_ms <= 0 ? now : (ttl_ms >= MEM_NEVER - now ? MEM_NEVER : now + ttl_ms);
	e->val = val;
	e->next = t->buckets[h & (t->nbuckets - 1)];
	t->buckets[h & (t->nbuckets - 1)] = e;
	TAILQ_INSERT_TAIL(&t->order, e, order);
	t->n++;
	return true;
}

static size_t
mem_sweep(struct mem_table *t)
{
	struct mem_entry *e, *next;
	int64_t now = clock_mono_ms();
	size_t n = 0;

	for (e = TAILQ_FIRST(&t->order); e != NULL; e = next) {
		next = TAILQ_NEXT(e, order);
		if (e->expires <= now) {
			mem_entry_remove(t, e);
			n++;
		}
	}
	for (e = TAILQ_FIRST(&t->spent); e != NULL; e = next) {
		next = TAILQ_NEXT(e, order);
		if (e->expires <= now) {
			mem_entry_remove(t, e);
			n++;
		}
	}
	return n;
}

static void
mem_free_pending(void *v)
{
	store_pending_free(v);
}

static void
mem_free_upstream(void *v)
{
	struct mem_upstream *mu = v;

	store_upstream_free(mu->u);
	free(mu);
}

static void
mem_free_code_once(void *v)
{
	struct mem_once *o = v;

	store_code_free(o->rec);
	free(o->family);
	free(o);
}

static void
mem_free_refresh_once(void *v)
{
	struct mem_once *o = v;

	store_refresh_free(o->rec);
	free(o->family);
	free(o);
}

static void
mem_free_family(void *v)
{
	struct mem_family *f = v;

	for (size_t i = 0; i < f->n; i++)
		free(f->jti[i]);
	free(f);
}

static void
mem_free_jti(void *v)
{
	free(v);
}

static void
mem_free_client(void *v)
{
	client_unref(v);
}

static char *
mem_dup(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

/* --- the verbs, synchronous (the front delivers on the next loop turn) --- */

/* Take a single-use record, leaving a tombstone until the entry expires.
 * NULL: unknown, or spent (*spent_family, a copy, names its family). */
static void *
mem_take_once(struct mem_table *t, const char *key, const char *family, char **spent_family)
{
	struct mem_entry *e = mem_find(t, key);
	struct mem_once *o;
	void *rec;

	*spent_family = NULL;
	if (e == NULL)
		return NULL;
	o = e->val;
	if (o->rec == NULL) {
		if (o->family != NULL)
			*spent_family = xstrdup(o->family);
		return NULL;
	}
	rec = o->rec;
	o->rec = NULL;
	o->family = mem_dup(family);
	TAILQ_REMOVE(&t->order, e, order);
	TAILQ_INSERT_TAIL(&t->spent, e, order);
	e->spent = true;
	return rec;
}

/* Put a single-use record (on failure it is freed, as by mem_put). */
static bool
mem_put_once(struct mem_table *t, const char *key, void *rec, int64_t ttl_ms)
{
	struct mem_once *o = xcalloc(1, sizeof *o);

	o->rec = rec;
	return mem_put(t, key, o, ttl_ms);
}

static bool
mem_jti_revoke(struct mem_store *m, const char *jti, int64_t exp_wall_s)
{
	int64_t left_s = exp_wall_s - clock_wall_s();

	if (left_s <= 0)
		return true; /* expired already: nothing left to deny */
	/* One minute more than the token's life covers the verifier's leeway. */
	return mem_put(&m->jtis, jti, xstrdup(""), (left_s + 60) * 1000);
}

static struct mem_family *
mem_family(struct mem_store *m, const char *family, int64_t ttl_ms)
{
	struct mem_entry *e = mem_find(&m->families, family);
	struct mem_family *f;
	int64_t now = clock_mono_ms();

	if (e != NULL) {
		if (ttl_ms > 0 && e->expires < now + ttl_ms)
			e->expires = now + ttl_ms;
		return e->val;
	}
	f = xcalloc(1, sizeof *f);
	return mem_put(&m->families, family, f, ttl_ms) ? f : NULL;
}

static enum store_status
mem_family_revoke(struct mem_store *m, const char *family, int64_t ttl_ms)
{
	struct mem_family *f = mem_family(m, family, ttl_ms);
	bool ok = true;

	if (f == NULL)
		return STORE_FULL;
	f->revoked = true;
	for (size_t i = 0; i < f->n; i++)
		ok = mem_jti_revoke(m, f->jti[i], f->exp[i]) && ok;
	return ok ? STORE_OK : STORE_FULL;
}

static bool
mem_family_revoked(struct mem_store *m, const char *family)
{
	struct mem_entry *e = mem_find(&m->families, family);

	return e != NULL && ((struct mem_family *)e->val)->revoked;
}

static void
mem_touch(struct mem_table *t, const char *key, int64_t ttl_ms)
{
	struct mem_entry *e = mem_find(t, key);
	int64_t now = clock_mono_ms();

	if (e != NULL && e->expires < now + ttl_ms)
		e->expires = now + ttl_ms;
}

/* Record is (the family's jti, the refresh token, the session kept
 * alive); takes is->refresh. */
static enum store_status
mem_issue(struct mem_store *m, struct store_issue *is)
{
	struct mem_family *f = mem_family(m, is->family, is->ttl_ms);
	struct store_refresh *r = is->refresh;

	is->refresh = NULL;
	if (f == NULL) {
		store_refresh_free(r);
		return STORE_FULL;
	}
	if (f->revoked) {
		store_refresh_free(r);
		return mem_jti_revoke(m, is->jti, is->jti_exp) ? STORE_REVOKED : STORE_FULL;
	}
	if (f->n == STORE_FAMILY_MAX_JTIS) {
		/* Forget the oldest: issued longest ago, first to expire. */
		free(f->jti[0]);
		memmove(&f->jti[0], &f->jti[1], (f->n - 1) * sizeof f->jti[0]);
		memmove(&f->exp[0], &f->exp[1], (f->n - 1) * sizeof f->exp[0]);
		f->n--;
	}
	f->jti[f->n] = xstrdup(is->jti);
	f->exp[f->n] = is->jti_exp;
	f->n++;
	if (is->refresh_hash != NULL && r != NULL &&
	    !mem_put_once(&m->refresh, is->refresh_hash, r, is->ttl_ms))
		return STORE_FULL; /* the access token is not issued either */
	if (is->refresh_hash == NULL)
		store_refresh_free(r);
	if (is->tsid != NULL)
		mem_touch(&m->upstream, is->tsid, is->ttl_ms);
	return STORE_OK;
}

static void
mem_code_redeem(struct mem_store *m, struct store_op *op)
{
	struct mem_entry *e = mem_find(&m->codes, op->key);
	const char *family = NULL;

	if (e != NULL && ((struct mem_once *)e->val)->rec != NULL)
		family = ((struct store_code *)((struct mem_once *)e->val)->rec)->family;
	op->res.code = mem_take_once(&m->codes, op->key, family, &op->res.family);
	if (op->res.code != NULL)
		op->res.status = STORE_OK;
	else if (op->res.family != NULL)
		op->res.status = mem_family_revoke(m, op->res.family, op->ttl_ms) == STORE_OK
		    ? STORE_SPENT
		    : STORE_FULL;
	else
		op->res.status = STORE_NOT_FOUND;
}

static void
mem_refresh_get(struct mem_store *m, struct store_op *op)
{
	struct mem_entry *e = mem_find(&m->refresh, op->key);
	struct mem_once *o = e != NULL ? e->val : NULL;

	if (o == NULL) {
		op->res.status = STORE_NOT_FOUND;
	} else if (o->rec == NULL) {
		op->res.status = o->family != NULL ? STORE_SPENT : STORE_NOT_FOUND;
		op->res.family = mem_dup(o->family);
	} else {
		op->res.status = STORE_OK;
		op->res.refresh = store_refresh_dup(o->rec);
	}
}

static void
mem_refresh_rotate(struct mem_store *m, struct store_op *op)
{
	struct mem_entry *e = mem_find(&m->refresh, op->key);
	struct store_refresh *old;
	const char *family = NULL;
	int64_t left_ms;

	if (e != NULL && ((struct mem_once *)e->val)->rec != NULL)
		family = ((struct store_refresh *)((struct mem_once *)e->val)->rec)->family;
	old = mem_take_once(&m->refresh, op->key, family, &op->res.family);
	if (old == NULL) {
		if (op->res.family == NULL)
			op->res.status = STORE_NOT_FOUND;
		else
			op->res.status = mem_family_revoke(m, op->res.family, op->issue.ttl_ms) ==
				STORE_OK
			    ? STORE_SPENT
			    : STORE_FULL;
		return;
	}
	if (mem_family_revoked(m, old->family)) {
		op->res.status = STORE_REVOKED;
		store_refresh_free(old);
		return;
	}
	op->res.status = mem_issue(m, &op->issue);
	if (op->res.status == STORE_FULL) {
		/* Nothing was issued for it: the token stays usable, so that
		 * the client's retry is not taken for a replay (replacing its
		 * own tombstone always fits). */
		left_ms = (old->expires_at - clock_wall_s()) * 1000;
		if (left_ms > 0) {
			mem_put_once(&m->refresh, op->key, old, left_ms); /* frees on failure */
			old = NULL;
		}
	}
	store_refresh_free(old);
}

static void
mem_refresh_revoke(struct mem_store *m, struct store_op *op)
{
	struct mem_entry *e = mem_find(&m->refresh, op->key);
	struct mem_once *o = e != NULL ? e->val : NULL;
	struct store_refresh *r;
	char *spent;

	if (o == NULL || o->rec == NULL) {
		op->res.status = STORE_NOT_FOUND;
		return;
	}
	if (strcmp(((struct store_refresh *)o->rec)->client_id, op->key2) != 0) {
		op->res.status = STORE_FOREIGN;
		return;
	}
	r = mem_take_once(&m->refresh, op->key, ((struct store_refresh *)o->rec)->family, &spent);
	op->res.status = mem_family_revoke(m, r->family, op->ttl_ms);
	store_refresh_free(r);
}

static void
mem_upstream_put(struct mem_store *m, struct store_op *op)
{
	struct mem_entry *e = mem_find(&m->upstream, op->key);
	struct mem_upstream *mu = xcalloc(1, sizeof *mu);

	mu->version = e != NULL ? ((struct mem_upstream *)e->val)->version + 1 : 1;
	mu->u = op->upstream;
	op->upstream = NULL;
	op->res.version = mu->version;
	op->res.status = mem_put(&m->upstream, op->key, mu, op->ttl_ms) ? STORE_OK : STORE_FULL;
}

static void
mem_upstream_cas(struct mem_store *m, struct store_op *op)
{
	struct mem_entry *e = mem_find(&m->upstream, op->key);
	struct mem_upstream *mu = e != NULL ? e->val : NULL;

	if (mu == NULL) {
		op->res.status = STORE_NOT_FOUND;
		return;
	}
	if (mu->version != op->version) {
		op->res.status = STORE_CONFLICT;
		op->res.upstream = store_upstream_dup(mu->u);
		op->res.version = mu->version;
		return;
	}
	store_upstream_free(mu->u);
	mu->u = op->upstream;
	op->upstream = NULL;
	op->res.version = ++mu->version;
	op->res.status = STORE_OK;
	mem_touch(&m->upstream, op->key, op->ttl_ms);
}

static void
mem_assertion_seen(struct mem_store *m, struct store_op *op)
{
	struct mem_table *t = &m->assertions;
	int64_t left_s = op->exp_wall_s - clock_wall_s();
	char *key;

	/* Length-prefixed: no client_id and jti pair can spell another's. */
	key = xasprintf("%zu:%s%s", strlen(op->key2), op->key2, op->key);
	if (mem_find(t, key) != NULL)
		op->res.status = STORE_REPLAYED;
	/* A full table refuses (mem_put): a seen id is never forgotten. */
	else if (!mem_put(t, key, xstrdup(""), ((left_s > 0 ? left_s : 0) + 60) * 1000))
		op->res.status = STORE_FULL;
	else
		op->res.status = STORE_OK;
	free(key);
}

/* Remove the DCR client unused for the longest time if it was last used
 * before idle_before_ms (monotonic); false when none qualifies. */
static bool
mem_client_evict_idle(struct mem_store *m, int64_t idle_before_ms)
{
	struct mem_entry *e, *oldest = NULL;

	TAILQ_FOREACH(e, &m->clients.order, order)
	{
		struct client *c = e->val;

		if (oldest == NULL ||
		    c->last_used_ms < ((struct client *)oldest->val)->last_used_ms)
			oldest = e;
	}
	if (oldest == NULL || ((struct client *)oldest->val)->last_used_ms >= idle_before_ms)
		return false;
	mem_entry_remove(&m->clients, oldest);
	return true;
}

static void
mem_client_put(struct mem_store *m, struct store_op *op)
{
	int64_t now = clock_mono_ms();
	struct client *c = op->client;

	if (m->clients.n >= op->max)
		mem_sweep(&m->clients); /* expired ones go first */
	while (m->clients.n >= op->max) {
		if (!mem_client_evict_idle(m, now - op->grace_ms)) {
			op->res.status = STORE_FULL;
			return;
		}
		op->res.evicted++;
	}
	c->last_used_ms = now;
	op->client = NULL;
	op->res.status = mem_put(&m->clients, c->client_id, c, STORE_CLIENT_IDLE_MS) ? STORE_OK
										     : STORE_FULL;
}

static void
mem_client_get(struct mem_store *m, struct store_op *op)
{
	struct mem_entry *e = mem_find(&m->clients, op->key);
	struct client *c;

	if (e == NULL) {
		op->res.status = STORE_NOT_FOUND;
		return;
	}
	c = e->val;
	c->last_used_ms = clock_mono_ms();
	mem_touch(&m->clients, op->key, STORE_CLIENT_IDLE_MS);
	client_ref(c);
	op->res.client = c;
	op->res.status = STORE_OK;
}

static void
mem_start(struct store_backend *be, struct store_op *op)
{
	struct mem_store *m = (struct mem_store *)be;
	struct mem_entry *e;

	switch (op->verb) {
	case STORE_V_PENDING_PUT:
		op->res.status = mem_put(&m->pending, op->key, op->pending, op->ttl_ms)
		    ? STORE_OK
		    : STORE_FULL;
		op->pending = NULL;
		break;
	case STORE_V_PENDING_TAKE:
		if ((e = mem_find(&m->pending, op->key)) == NULL) {
			op->res.status = STORE_NOT_FOUND;
			break;
		}
		op->res.pending = e->val;
		e->val = NULL;
		mem_entry_remove(&m->pending, e);
		op->res.status = STORE_OK;
		break;
	case STORE_V_CODE_PUT:
		op->res.status = mem_put_once(&m->codes, op->key, op->code, op->ttl_ms)
		    ? STORE_OK
		    : STORE_FULL;
		op->code = NULL;
		break;
	case STORE_V_CODE_REDEEM:
		mem_code_redeem(m, op);
		break;
	case STORE_V_ISSUE:
		op->res.status = mem_issue(m, &op->issue);
		break;
	case STORE_V_REFRESH_GET:
		mem_refresh_get(m, op);
		break;
	case STORE_V_REFRESH_ROTATE:
		mem_refresh_rotate(m, op);
		break;
	case STORE_V_REFRESH_REVOKE:
		mem_refresh_revoke(m, op);
		break;
	case STORE_V_FAMILY_REVOKE:
		op->res.status = mem_family_revoke(m, op->key, op->ttl_ms);
		break;
	case STORE_V_JTI_REVOKE:
		op->res.status = mem_jti_revoke(m, op->key, op->exp_wall_s) ? STORE_OK : STORE_FULL;
		break;
	case STORE_V_UPSTREAM_PUT:
		mem_upstream_put(m, op);
		break;
	case STORE_V_UPSTREAM_GET:
		if ((e = mem_find(&m->upstream, op->key)) == NULL) {
			op->res.status = STORE_NOT_FOUND;
			break;
		}
		op->res.upstream = store_upstream_dup(((struct mem_upstream *)e->val)->u);
		op->res.version = ((struct mem_upstream *)e->val)->version;
		op->res.status = STORE_OK;
		break;
	case STORE_V_UPSTREAM_CAS:
		mem_upstream_cas(m, op);
		break;
	case STORE_V_UPSTREAM_LEASE:
		/* One process: the guard's single flight is the lease. */
		if ((e = mem_find(&m->upstream, op->key)) == NULL) {
			op->res.status = STORE_NOT_FOUND;
		} else if (((struct mem_upstream *)e->val)->version != op->version) {
			op->res.status = STORE_CONFLICT;
			op->res.upstream = store_upstream_dup(((struct mem_upstream *)e->val)->u);
			op->res.version = ((struct mem_upstream *)e->val)->version;
		} else {
			op->res.status = STORE_OK;
		}
		break;
	case STORE_V_ASSERTION_SEEN:
		mem_assertion_seen(m, op);
		break;
	case STORE_V_CLIENT_PUT:
		mem_client_put(m, op);
		break;
	case STORE_V_CLIENT_GET:
		mem_client_get(m, op);
		break;
	case STORE_V_RATE_TAKE:
		/* One process: its buckets are the shared ones (the rate of a
		 * name is fixed by the configuration: the first call's). */
		if (m->rates == NULL)
			m->rates = ratelimit_new(op->rate, op->burst, 16);
		op->res.status = ratelimit_take(m->rates, op->key, &op->res.retry_after_s)
		    ? STORE_OK
		    : STORE_FULL;
		break;
	}
	store_op_finish(op);
}

static bool
mem_jti_revoked(struct store_backend *be, const char *jti)
{
	return mem_find(&((struct mem_store *)be)->jtis, jti) != NULL;
}

static const struct store_upstream *
mem_upstream_cached(struct store_backend *be, const char *tsid, uint64_t *version)
{
	struct mem_entry *e = mem_find(&((struct mem_store *)be)->upstream, tsid);
	struct mem_upstream *mu = e != NULL ? e->val : NULL;

	if (mu == NULL)
		return NULL;
	if (version != NULL)
		*version = mu->version;
	return mu->u;
}

static size_t
mem_sweep_all(struct store_backend *be)
{
	struct mem_store *m = (struct mem_store *)be;

	return mem_sweep(&m->pending) + mem_sweep(&m->codes) + mem_sweep(&m->refresh) +
	    mem_sweep(&m->families) + mem_sweep(&m->upstream) + mem_sweep(&m->jtis) +
	    mem_sweep(&m->assertions) + mem_sweep(&m->clients);
}

static size_t
mem_client_count(struct store_backend *be)
{
	return ((struct mem_store *)be)->clients.n;
}

static void
mem_health(struct store_backend *be, struct store_health *out)
{
	(void)be;
	out->type = "memory";
	out->reachable = true;
}

static void
mem_free(struct store_backend *be)
{
	struct mem_store *m = (struct mem_store *)be;

	mem_table_dispose(&m->pending);
	mem_table_dispose(&m->codes);
	mem_table_dispose(&m->refresh);
	mem_table_dispose(&m->families);
	mem_table_dispose(&m->upstream);
	mem_table_dispose(&m->jtis);
	mem_table_dispose(&m->assertions);
	mem_table_dispose(&m->clients);
	ratelimit_free(m->rates);
	free(m);
}

struct store_backend *
store_memory_new(const struct config *cfg)
{
	struct mem_store *m = xcalloc(1, sizeof *m);

	(void)cfg;
	mem_m_dropped = metrics_counter("mcp_oauth_store_tombstones_dropped_total",
	    "Tombstones of spent codes or refresh tokens dropped from a full memory table to make "
	    "room (a replay of those is then refused as unknown, not traced to its family).",
	    "table");
	m->be.type = "memory";
	m->be.start = mem_start;
	m->be.jti_revoked = mem_jti_revoked;
	m->be.upstream_cached = mem_upstream_cached;
	m->be.sweep = mem_sweep_all;
	m->be.client_count = mem_client_count;
	m->be.health = mem_health;
	m->be.free = mem_free;
	mem_table_init(&m->pending, "pending", STORE_MAX_PENDING, mem_free_pending);
	mem_table_init(&m->codes, "codes", STORE_MAX_CODES, mem_free_code_once);
	mem_table_init(&m->refresh, "refresh", STORE_MAX_REFRESH, mem_free_refresh_once);
	mem_table_init(&m->families, "families", STORE_MAX_FAMILIES, mem_free_family);
	mem_table_init(&m->upstream, "upstream", STORE_MAX_UPSTREAM, mem_free_upstream);
	mem_table_init(&m->jtis, "jtis", STORE_MAX_JTIS, mem_free_jti);
	mem_table_init(&m->assertions, "assertions", STORE_MAX_ASSERTION_JTIS, mem_free_jti);
	mem_table_init(&m->clients, "clients", SIZE_MAX, mem_free_client);
	return &m->be;
}
