/*
 * The jwks_uri cache and fetcher (see cimd_jwks.h). It runs on the loop and
 * never blocks it. Lifetimes: a lookup belongs to its requester until done()
 * runs or cimd_jwks_cancel() is called; a pending fetch belongs to the cache
 * and is cancelled with its last waiter. Keys are shared, reference-counted
 * holders: an entry evicted or refreshed while a callback uses its keys
 * frees them only when that callback has returned.
 */
#include "auth/cimd/cimd_jwks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "auth/cimd/cimd.h"
#include "auth/cimd/cimd_doc.h"
#include "auth/cimd/flight.h"
#include "auth/cimd/httpcache.h"
#include "auth/crypto/keyset.h"
#include "common/clock.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "proxy/fetch.h"
#include "proxy/log.h"
#include "proxy/metrics.h"

struct jwks_keys {
	int refs;
	struct keyset *ks;
};

/* What a stored response said of its caching: sent back to revalidate
 * it, and standing in for the headers a 304 leaves out (RFC 9111 §4.3.4). */
struct jwks_validators {
	char *etag, *last_modified;
	char *cache_control, *expires;
};

struct jwks_entry {
	char *url;
	struct jwks_keys *keys; /* NULL: only the refetch time is remembered */
	int64_t expires_ms;     /* monotonic; keys are fresh before it */
	bool revalidate;        /* no-cache: asked again (conditionally) on every use */
	struct jwks_validators v;
	bool refetched;
	int64_t refetched_ms; /* monotonic time of the last refetch */
	TAILQ_ENTRY(jwks_entry) lru;
};

/* A fetch of one URL, shared by its lookups. */
struct jwks_pending {
	struct flight f; /* first: its URL and waiters (the lookups) */
	struct cimd_jwks *j;
	struct fetch *fetch;
	struct jwks_keys *stale;  /* revalidating these keys, or NULL */
	struct jwks_validators v; /* the stale entry's */
};

struct cimd_jwks_lookup {
	struct flight_waiter w; /* first: in its pending's flight */
	cimd_jwks_done_cb done;
	void *arg;
};

struct cimd_jwks {
	struct fetcher *fetcher;
	const struct config *cfg;
	TAILQ_HEAD(jwks_lru, jwks_entry) lru; /* most recently used first */
	size_t n_entries;
	struct flight_list pending;
	size_t n_pending;
	struct metric *m_fetch;
	struct metric *m_cache;
};

static void
jwks_keys_unref(struct jwks_keys *k)
{
	if (k == NULL || --k->refs > 0)
		return;
	keyset_free(k->ks);
	free(k);
}

static void
jwks_validators_dispose(struct jwks_validators *v)
{
	free(v->etag);
	free(v->last_modified);
	free(v->cache_control);
	free(v->expires);
	memset(v, 0, sizeof *v);
}

/* Set *v to copies of the given values that are fit to keep and send
 * back (httpcache_header_copy: a value that is not is dropped). */
static void
jwks_validators_set(struct jwks_validators *v, const char *etag, const char *last_modified,
    const char *cache_control, const char *expires)
{
	struct jwks_validators n = { httpcache_header_copy(etag),
		httpcache_header_copy(last_modified), httpcache_header_copy(cache_control),
		httpcache_header_copy(expires) };

	jwks_validators_dispose(v);
	*v = n;
}

static void
jwks_entry_free(struct jwks_entry *e)
{
	jwks_keys_unref(e->keys);
	jwks_validators_dispose(&e->v);
	free(e->url);
	free(e);
}

struct cimd_jwks *
cimd_jwks_new(struct fetcher *fetcher, const struct config *cfg)
{
	struct cimd_jwks *j = xcalloc(1, sizeof *j);

	j->fetcher = fetcher;
	j->cfg = cfg;
	TAILQ_INIT(&j->lru);
	TAILQ_INIT(&j->pending);
	j->m_fetch = metrics_counter("mcp_proxy_cimd_jwks_fetch_total",
	    "jwks_uri fetches of private_key_jwt CIMD clients by outcome (ok, invalid, "
	    "too_many, cancelled, or the fetch error).",
	    "outcome");
	j->m_cache = metrics_counter("mcp_proxy_cimd_jwks_cache_total",
	    "jwks_uri key lookups by result (hit, miss, stale, revalidated, refetch, "
	    "refetch_limited).",
	    "result");
	return j;
}

static void
jwks_pending_free(struct jwks_pending *p)
{
	struct flight_waiter *w;

	while ((w = flight_next(&p->f)) != NULL)
		free(w); /* its cimd_jwks_lookup */
	jwks_keys_unref(p->stale);
	jwks_validators_dispose(&p->v);
	flight_dispose(&p->f);
	free(p);
}

void
cimd_jwks_free(struct cimd_jwks *j)
{
	struct jwks_pending *p;
	struct jwks_entry *e;

	if (j == NULL)
		return;
	while ((p = (struct jwks_pending *)TAILQ_FIRST(&j->pending)) != NULL) {
		flight_detach(&p->f, &j->pending);
		fetch_cancel(p->fetch);
		jwks_pending_free(p);
	}
	while ((e = TAILQ_FIRST(&j->lru)) != NULL) {
		TAILQ_REMOVE(&j->lru, e, lru);
		jwks_entry_free(e);
	}
	free(j);
}

/* The entry of url, moved to the front, or NULL. */
static struct jwks_entry *
jwks_entry_find(struct cimd_jwks *j, const char *url)
{
	struct jwks_entry *e;

	TAILQ_FOREACH(e, &j->lru, lru)
	{
		if (strcmp(e->url, url) == 0) {
			TAILQ_REMOVE(&j->lru, e, lru);
			TAILQ_INSERT_HEAD(&j->lru, e, lru);
			return e;
		}
	}
	return NULL;
}

/* The entry of url, added (evicting the least recently used) if absent. */
static struct jwks_entry *
jwks_entry_get(struct cimd_jwks *j, const char *url)
{
	struct jwks_entry *e = jwks_entry_find(j, url);
	size_t max = j->cfg->eas.cimd.cache_max_size > 0 ? j->cfg->eas.cimd.cache_max_size : 1;

	if (e != NULL)
		return e;
	while (j->n_entries >= max && (e = TAILQ_LAST(&j->lru, jwks_lru)) != NULL) {
		TAILQ_REMOVE(&j->lru, e, lru);
		j->n_entries--;
		jwks_entry_free(e);
	}
	e = xcalloc(1, sizeof *e);
	e->url = xstrdup(url);
	TAILQ_INSERT_HEAD(&j->lru, e, lru);
	j->n_entries++;
	return e;
}

/* Answer every waiter of p with keys (or NULL and err) and free p. */
static void
jwks_pending_finish(struct jwks_pending *p, struct jwks_keys *keys, const char *err)
{
	struct cimd_jwks *j = p->j;
	struct cimd_jwks_lookup *l;
	cimd_jwks_done_cb done;
	void *arg;

	flight_detach(&p->f, &j->pending);
	j->n_pending--;
	if (keys == NULL)
		log_warn("cimd: jwks_uri refused", LOG_S("reason", err),
		    LOG_I("waiters", p->f.n_waiters));
	while ((l = (struct cimd_jwks_lookup *)flight_next(&p->f)) != NULL) {
		done = l->done;
		arg = l->arg;
		free(l);
		done(keys != NULL ? keys->ks : NULL, err, arg);
	}
	jwks_pending_free(p);
}

/* Keep keys for url per the response's caching headers: no-store is not
 * kept, nor no-cache without a validator fit to send back (it would only
 * ever be fetched again); no-cache with one is revalidated on every use. */
static void
jwks_keep(struct cimd_jwks *j, const char *url, struct jwks_keys *keys, const char *cc,
    const char *expires, const char *date, const char *age, const char *etag,
    const char *last_modified)
{
	const struct config *cfg = j->cfg;
	struct httpcache_limits lim = { .fallback_ms = cfg->eas.cimd.cache_fallback_ttl_ms,
		.min_ms = cfg->eas.cimd.cache_min_ttl_ms,
		.max_ms = cfg->eas.cimd.cache_max_ttl_ms };
	struct httpcache_lifetime lt;
	struct jwks_validators v = { 0 };
	struct jwks_entry *e;

	httpcache_lifetime(cc, expires, date, age, clock_wall_s(), &lim, &lt);
	jwks_validators_set(&v, etag, last_modified, cc, expires);
	if (!lt.store || (lt.revalidate && v.etag == NULL && v.last_modified == NULL)) {
		jwks_validators_dispose(&v);
		if ((e = jwks_entry_find(j, url)) != NULL) {
			jwks_keys_unref(e->keys); /* the refetch time stays */
			e->keys = NULL;
			jwks_validators_dispose(&e->v);
		}
		return;
	}
	e = jwks_entry_get(j, url);
	if (e->keys != keys) {
		jwks_keys_unref(e->keys);
		e->keys = keys;
		keys->refs++;
	}
	e->expires_ms = clock_mono_ms() + lt.ttl_ms;
	e->revalidate = lt.revalidate;
	jwks_validators_dispose(&e->v);
	e->v = v;
}

static void
jwks_on_fetch(const struct fetch_result *res, void *arg)
{
	struct jwks_pending *p = arg;
	struct cimd_jwks *j = p->j;
	const struct config *cfg = j->cfg;
	struct jwks_keys *keys = NULL;
	struct keyset *ks = NULL;
	char err[256] = "";

	p->fetch = NULL;
	if (res->error != FETCH_OK) {
		metrics_add(j->m_fetch, 1, fetch_error_name(res->error));
		cimd_fetch_error_text(res, "jwks_uri document", "jwks_uri fetch",
		    cfg->eas.cimd.fetch_timeout_ms, CIMD_JWKS_MAX_SIZE, err, sizeof err);
	} else if (res->status == 304 && p->stale != NULL) {
		/* Not modified: the stored keys are fresh again; a 304 carries
		 * the headers that changed, the stored ones stand in. */
		metrics_add(j->m_fetch, 1, "ok");
		metrics_add(j->m_cache, 1, "revalidated");
		keys = p->stale;
		keys->refs++;
		jwks_keep(j, p->f.url, keys,
		    res->cache_control != NULL ? res->cache_control : p->v.cache_control,
		    res->expires != NULL ? res->expires : p->v.expires, res->date, res->age,
		    res->etag != NULL ? res->etag : p->v.etag,
		    res->last_modified != NULL ? res->last_modified : p->v.last_modified);
	} else if (res->status != 200) {
		metrics_add(j->m_fetch, 1, fetch_error_name(FETCH_ERR_BAD_STATUS));
		snprintf(err, sizeof err, "jwks_uri fetch failed: HTTP status %ld", res->status);
	} else if ((ks = cimd_doc_jwks_parse("jwks_uri document", res->body, res->body_len, err,
			sizeof err)) == NULL) {
		metrics_add(j->m_fetch, 1, "invalid");
	} else {
		metrics_add(j->m_fetch, 1, "ok");
		keys = xcalloc(1, sizeof *keys);
		keys->refs = 1;
		keys->ks = ks;
		jwks_keep(j, p->f.url, keys, res->cache_control, res->expires, res->date, res->age,
		    res->etag, res->last_modified);
	}
	jwks_pending_finish(p, keys, keys == NULL ? err : NULL);
	jwks_keys_unref(keys);
}

/* Start fetching url for the waiters to come; conditionally when stale
 * (an entry whose keys are due for revalidation) gives validators. */
static struct jwks_pending *
jwks_pending_start(struct cimd_jwks *j, const char *url, const struct jwks_entry *stale)
{
	const struct config *cfg = j->cfg;
	struct jwks_pending *p = xcalloc(1, sizeof *p);
	struct fetch_policy policy;
	struct fetch_request req;
	char *hdrs[3] = { NULL, NULL, NULL };
	size_t nh = 0;

	flight_init(&p->f, &j->pending, url);
	p->j = j;
	j->n_pending++;
	if (stale != NULL) {
		p->stale = stale->keys;
		p->stale->refs++;
		jwks_validators_set(&p->v, stale->v.etag, stale->v.last_modified,
		    stale->v.cache_control, stale->v.expires);
		if (p->v.etag != NULL)
			hdrs[nh++] = xasprintf("If-None-Match: %s", p->v.etag);
		if (p->v.last_modified != NULL)
			hdrs[nh++] = xasprintf("If-Modified-Since: %s", p->v.last_modified);
	}
	fetch_policy_init(&policy, true);
	policy.timeout_ms = cfg->eas.cimd.fetch_timeout_ms;
	policy.max_size = CIMD_JWKS_MAX_SIZE;
	policy.allow_loopback = cfg->eas.cimd.insecure_allow_loopback;
	memset(&req, 0, sizeof req);
	req.method = "GET";
	req.url = p->f.url;
	req.headers = (const char *const *)hdrs;
	req.policy = &policy;
	req.policy_name = "cimd_jwks";
	/* done never runs from inside fetch_start, so p is ready for it. */
	p->fetch = fetch_start(j->fetcher, &req, jwks_on_fetch, p);
	for (size_t i = 0; i < nh; i++)
		free(hdrs[i]);
	return p;
}

/* Get the keys at url, calling done() once, possibly before returning. */
struct cimd_jwks_lookup *
cimd_jwks_get(struct cimd_jwks *j, const char *url, bool refetch, cimd_jwks_done_cb done, void *arg)
{
	struct jwks_entry *e = jwks_entry_find(j, url);
	struct jwks_pending *p;
	struct cimd_jwks_lookup *l;
	struct jwks_keys *keys;
	const struct jwks_entry *stale = NULL; /* revalidate its keys (not on a refetch) */
	int64_t now = clock_mono_ms();
	char why[128];

	if (refetch) {
		if (e != NULL && e->refetched && now - e->refetched_ms < CIMD_JWKS_REFETCH_MS) {
			metrics_add(j->m_cache, 1, "refetch_limited");
			snprintf(why, sizeof why, "jwks_uri was refetched less than %d s ago",
			    CIMD_JWKS_REFETCH_MS / 1000);
			done(NULL, why, arg);
			return NULL;
		}
		e = jwks_entry_get(j, url);
		e->refetched = true;
		e->refetched_ms = now;
		metrics_add(j->m_cache, 1, "refetch");
	} else if (e != NULL && e->keys != NULL && !e->revalidate && now < e->expires_ms) {
		metrics_add(j->m_cache, 1, "hit");
		/* Keep the keys alive across done() whatever it does. */
		keys = e->keys;
		keys->refs++;
		done(keys->ks, NULL, arg);
		jwks_keys_unref(keys);
		return NULL;
	} else if (e != NULL && e->keys != NULL &&
	    (e->v.etag != NULL || e->v.last_modified != NULL)) {
		metrics_add(j->m_cache, 1, "stale");
		stale = e;
	} else {
		metrics_add(j->m_cache, 1, "miss");
	}
	if ((p = (struct jwks_pending *)flight_find(&j->pending, url)) == NULL) {
		if (j->n_pending >= CIMD_JWKS_PENDING_MAX) {
			metrics_add(j->m_fetch, 1, "too_many");
			done(NULL, "too many jwks_uri fetches in progress; try again", arg);
			return NULL;
		}
		p = jwks_pending_start(j, url, stale);
	}
	l = xcalloc(1, sizeof *l);
	l->done = done;
	l->arg = arg;
	flight_join(&p->f, &l->w);
	return l;
}

/* Cancel a pending lookup: no callback follows. The shared fetch goes on
 * for the other waiters, or is cancelled with the last one. */
void
cimd_jwks_cancel(struct cimd_jwks_lookup *l)
{
	struct jwks_pending *p;
	struct cimd_jwks *j;
	bool last;

	if (l == NULL)
		return;
	p = (struct jwks_pending *)l->w.f;
	j = p->j;
	last = flight_leave(&l->w);
	free(l);
	if (!last)
		return;
	flight_detach(&p->f, &j->pending);
	j->n_pending--;
	fetch_cancel(p->fetch);
	metrics_add(j->m_fetch, 1, "cancelled");
	jwks_pending_free(p);
}

size_t
cimd_jwks_cache_size(const struct cimd_jwks *j)
{
	return j->n_entries;
}
