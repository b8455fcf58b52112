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
#include "auth/store/store.h"

#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "auth/client/client.h"
#include "common/hash.h"
#include "common/clock.h"
#include "common/xalloc.h"
#include "config/config.h"

#define MEM_NEVER INT64_MAX
#define MEM_FULL_SWEEP_MS 1000 /* between sweeps of a full table */

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

struct store {
	struct mem_table pending;
	struct mem_table codes;
	struct mem_table refresh;
	struct mem_table families;
	struct mem_table upstream;
	struct mem_table jtis;
	struct mem_table assertions; /* seen client-assertion ids: never evicted */
	struct mem_table clients;
};

/* The keyed hash (common/hash.h), the CIMD cache's too: client ids and
 * the hashes of client-sent tokens are keys a client chooses. */
static uint64_t
mem_hash(const struct store *st, const char *key)
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
mem_find(struct store *st, struct mem_table *t, const char *key)
{
	uint64_t h = mem_hash(st, key);
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
mem_put(struct store *st, struct mem_table *t, const char *key, void *val, int64_t ttl_ms)
{
	struct mem_entry *e;
	int64_t now = clock_mono_ms();
	uint64_t h;

	if ((e = mem_find(st, t, key)) != NULL)
		mem_entry_remove(t, e);
	if (t->n >= t->max && now - t->swept_ms >= MEM_FULL_SWEEP_MS) {
		t->swept_ms = now;
		mem_sweep(t);
	}
	if (t->n >= t->max) {
		t->free_val(val);
		return false;
	}
	if (t->n + 1 > t->nbuckets)
		mem_table_grow(t);
	h = mem_hash(st, key);
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

/* --- records --- */

void
store_pending_free(struct store_pending *p)
{
	if (p == NULL)
		return;
	client_unref(p->client);
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
	client_unref(c->client);
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
mem_dup(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

struct store_upstream *
store_upstream_dup(const struct store_upstream *u)
{
	struct store_upstream *c = xcalloc(1, sizeof *c);

	c->subject = mem_dup(u->subject);
	c->access_token = mem_dup(u->access_token);
	c->refresh_token = mem_dup(u->refresh_token);
	c->id_token = mem_dup(u->id_token);
	c->claims_json = mem_dup(u->claims_json);
	c->expires_at = u->expires_at;
	return c;
}

static void
mem_free_pending(void *v)
{
	store_pending_free(v);
}

static void
mem_free_upstream(void *v)
{
	store_upstream_free(v);
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

/* --- the store --- */

struct store *
store_new(const struct config *cfg)
{
	struct store *st = xcalloc(1, sizeof *st);

	(void)cfg;
	mem_table_init(&st->pending, "pending", STORE_MAX_PENDING, mem_free_pending);
	mem_table_init(&st->codes, "codes", STORE_MAX_CODES, mem_free_code_once);
	mem_table_init(&st->refresh, "refresh", STORE_MAX_REFRESH, mem_free_refresh_once);
	mem_table_init(&st->families, "families", STORE_MAX_FAMILIES, mem_free_family);
	mem_table_init(&st->upstream, "upstream", STORE_MAX_UPSTREAM, mem_free_upstream);
	mem_table_init(&st->jtis, "jtis", STORE_MAX_JTIS, mem_free_jti);
	mem_table_init(&st->assertions, "assertions", STORE_MAX_ASSERTION_JTIS, mem_free_jti);
	mem_table_init(&st->clients, "clients", SIZE_MAX, mem_free_client);
	return st;
}

void
store_free(struct store *st)
{
	if (st == NULL)
		return;
	mem_table_dispose(&st->pending);
	mem_table_dispose(&st->codes);
	mem_table_dispose(&st->refresh);
	mem_table_dispose(&st->families);
	mem_table_dispose(&st->upstream);
	mem_table_dispose(&st->jtis);
	mem_table_dispose(&st->assertions);
	mem_table_dispose(&st->clients);
	free(st);
}

size_t
store_sweep(struct store *st)
{
	return mem_sweep(&st->pending) + mem_sweep(&st->codes) + mem_sweep(&st->refresh) +
	    mem_sweep(&st->families) + mem_sweep(&st->upstream) + mem_sweep(&st->jtis) +
	    mem_sweep(&st->assertions);
}

bool
store_pending_put(struct store *st, const char *key, struct store_pending *p, int64_t ttl_ms)
{
	return mem_put(st, &st->pending, key, p, ttl_ms);
}

struct store_pending *
store_pending_take(struct store *st, const char *key)
{
	struct mem_entry *e = mem_find(st, &st->pending, key);
	struct store_pending *p;

	if (e == NULL)
		return NULL;
	p = e->val;
	e->val = NULL;
	mem_entry_remove(&st->pending, e);
	return p;
}

/* Take a single-use record, leaving a tombstone until the entry expires. */
static void *
mem_take_once(struct store *st, struct mem_table *t, const char *key, const char *family,
    char **replayed_family)
{
	struct mem_entry *e = mem_find(st, t, key);
	struct mem_once *o;
	void *rec;

	if (replayed_family != NULL)
		*replayed_family = NULL;
	if (e == NULL)
		return NULL;
	o = e->val;
	if (o->rec == NULL) {
		if (replayed_family != NULL && o->family != NULL)
			*replayed_family = xstrdup(o->family);
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

bool
store_code_put(struct store *st, const char *hash, struct store_code *c, int64_t ttl_ms)
{
	struct mem_once *o = xcalloc(1, sizeof *o);

	o->rec = c;
	return mem_put(st, &st->codes, hash, o, ttl_ms);
}

struct store_code *
store_code_take(struct store *st, const char *hash, char **replayed_family)
{
	struct mem_entry *e = mem_find(st, &st->codes, hash);
	const char *family = NULL;

	if (e != NULL && ((struct mem_once *)e->val)->rec != NULL)
		family = ((struct store_code *)((struct mem_once *)e->val)->rec)->family;
	return mem_take_once(st, &st->codes, hash, family, replayed_family);
}

bool
store_refresh_put(struct store *st, const char *hash, struct store_refresh *r, int64_t ttl_ms)
{
	struct mem_once *o = xcalloc(1, sizeof *o);

	o->rec = r;
	return mem_put(st, &st->refresh, hash, o, ttl_ms);
}

struct store_refresh *
store_refresh_take(struct store *st, const char *hash, char **replayed_family)
{
	struct mem_entry *e = mem_find(st, &st->refresh, hash);
	const char *family = NULL;

	if (e != NULL && ((struct mem_once *)e->val)->rec != NULL)
		family = ((struct store_refresh *)((struct mem_once *)e->val)->rec)->family;
	return mem_take_once(st, &st->refresh, hash, family, replayed_family);
}

const struct store_refresh *
store_refresh_get(struct store *st, const char *hash)
{
	struct mem_entry *e = mem_find(st, &st->refresh, hash);

	return e != NULL ? ((struct mem_once *)e->val)->rec : NULL;
}

static struct mem_family *
mem_family(struct store *st, const char *family, int64_t ttl_ms)
{
	struct mem_entry *e = mem_find(st, &st->families, family);
	struct mem_family *f;
	int64_t now = clock_mono_ms();

	if (e != NULL) {
		if (ttl_ms > 0 && e->expires < now + ttl_ms)
			e->expires = now + ttl_ms;
		return e->val;
	}
	f = xcalloc(1, sizeof *f);
	return mem_put(st, &st->families, family, f, ttl_ms) ? f : NULL;
}

bool
store_family_add_jti(struct store *st, const char *family, const char *jti, int64_t exp_wall_s,
    int64_t ttl_ms)
{
	struct mem_family *f = mem_family(st, family, ttl_ms);

	if (f == NULL)
		return false;
	if (f->revoked)
		return store_jti_revoke(st, jti, exp_wall_s);
	if (f->n == STORE_FAMILY_MAX_JTIS) {
		/* Forget the oldest: issued longest ago, first to expire. */
		free(f->jti[0]);
		memmove(&f->jti[0], &f->jti[1], (f->n - 1) * sizeof f->jti[0]);
		memmove(&f->exp[0], &f->exp[1], (f->n - 1) * sizeof f->exp[0]);
		f->n--;
	}
	f->jti[f->n] = xstrdup(jti);
	f->exp[f->n] = exp_wall_s;
	f->n++;
	return true;
}

bool
store_family_revoke(struct store *st, const char *family, int64_t ttl_ms)
{
	struct mem_family *f = mem_family(st, family, ttl_ms);
	bool ok = true;

	if (f == NULL)
		return false;
	f->revoked = true;
	for (size_t i = 0; i < f->n; i++)
		ok = store_jti_revoke(st, f->jti[i], f->exp[i]) && ok;
	return ok;
}

bool
store_family_revoked(struct store *st, const char *family)
{
	struct mem_entry *e = mem_find(st, &st->families, family);

	return e != NULL && ((struct mem_family *)e->val)->revoked;
}

bool
store_upstream_put(struct store *st, const char *tsid, struct store_upstream *u, int64_t ttl_ms)
{
	return mem_put(st, &st->upstream, tsid, u, ttl_ms);
}

const struct store_upstream *
store_upstream_get(struct store *st, const char *tsid)
{
	struct mem_entry *e = mem_find(st, &st->upstream, tsid);

	return e != NULL ? e->val : NULL;
}

void
store_upstream_touch(struct store *st, const char *tsid, int64_t ttl_ms)
{
	struct mem_entry *e = mem_find(st, &st->upstream, tsid);
	int64_t now = clock_mono_ms();

	if (e != NULL && e->expires < now + ttl_ms)
		e->expires = now + ttl_ms;
}

bool
store_jti_revoke(struct store *st, const char *jti, int64_t exp_wall_s)
{
	int64_t left_s = exp_wall_s - clock_wall_s();

	if (left_s <= 0)
		return true; /* expired already: nothing left to deny */
	/* One minute more than the token's life covers the verifier's leeway. */
	return mem_put(st, &st->jtis, jti, xstrdup(""), (left_s + 60) * 1000);
}

bool
store_jti_revoked(struct store *st, const char *jti)
{
	return jti != NULL && mem_find(st, &st->jtis, jti) != NULL;
}

enum store_jti_result
store_jti_seen(struct store *st, const char *client_id, const char *jti, int64_t exp_wall_s)
{
	struct mem_table *t = &st->assertions;
	int64_t left_s = exp_wall_s - clock_wall_s();
	char *key;
	enum store_jti_result rc = STORE_JTI_NEW;

	/* Length-prefixed: no client_id and jti pair can spell another's. */
	key = xasprintf("%zu:%s%s", strlen(client_id), client_id, jti);
	if (mem_find(st, t, key) != NULL) {
		rc = STORE_JTI_REPLAYED;
		goto out;
	}
	/* A full table refuses (mem_put): a seen id is never forgotten. */
	if (!mem_put(st, t, key, xstrdup(""), ((left_s > 0 ? left_s : 0) + 60) * 1000))
		rc = STORE_JTI_FULL;
out:
	free(key);
	return rc;
}

void
store_client_put(struct store *st, struct client *c)
{
	client_ref(c);
	mem_put(st, &st->clients, c->client_id, c, MEM_NEVER);
}

struct client *
store_client_get(struct store *st, const char *client_id)
{
	struct mem_entry *e = mem_find(st, &st->clients, client_id);

	return e != NULL ? e->val : NULL;
}

size_t
store_client_count(struct store *st)
{
	return st->clients.n;
}

bool
store_client_evict_idle(struct store *st, int64_t idle_before_ms)
{
	struct mem_entry *e, *oldest = NULL;

	TAILQ_FOREACH(e, &st->clients.order, order)
	{
		struct client *c = e->val;

		if (oldest == NULL ||
		    c->last_used_ms < ((struct client *)oldest->val)->last_used_ms)
			oldest = e;
	}
	if (oldest == NULL || ((struct client *)oldest->val)->last_used_ms >= idle_before_ms)
		return false;
	mem_entry_remove(&st->clients, oldest);
	return true;
}
