/*
 * The CIMD resolver (see cimd.h): URL rules and host policy before any
 * fetch, then the LRU cache, then one shared fetch per URL through the
 * fetcher's untrusted policy, validation, and HTTP-caching lifetimes. It
 * runs on the loop and never blocks it. Lifetimes: a lookup belongs to its
 * requester until done() runs or cimd_cancel() is called; a pending fetch
 * belongs to the resolver and is cancelled when its last waiter leaves.
 * Clients handed out are shared and never mutated; errors are never cached.
 */
#include "auth/cimd/cimd.h"

#include <ctype.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "auth/cimd/cimd_cache.h"
#include "auth/cimd/cimd_doc.h"
#include "auth/cimd/flight.h"
#include "auth/client/client.h"
#include "auth/cimd/httpcache.h"
#include "common/clock.h"
#include "common/xalloc.h"
#include "common/xevent.h"
#include "config/config.h"
#include "proxy/fetch.h"
#include "proxy/log.h"
#include "proxy/metrics.h"

/* Distinct documents fetched at once; more wait in a FIFO queue (each for
 * at most the fetch timeout), and past CIMD_QUEUE_MAX they are refused. */
#define CIMD_PENDING_MAX 256
#define CIMD_QUEUE_MAX 4096

struct cimd_lookup;

/* A pending resolution of one URL, shared by its lookups. */
struct cimd_pending {
	struct flight f; /* first: its URL and waiters (the lookups) */
	struct cimd *c;
	char host[CIMD_HOST_MAX];
	struct fetch *fetch;
	bool queued;                      /* waiting for a fetch slot (no fetch yet) */
	int64_t queued_until_ms;          /* clock_mono_ms() deadline of that wait */
	struct event *queue_timer;        /* gives up waiting after the fetch timeout */
	struct client *stale;             /* revalidating this cached client, or NULL */
	char *etag, *last_modified;       /* the validators sent */
	char *cache_control, *expires;    /* the stale entry's caching headers */
	TAILQ_ENTRY(cimd_pending) qentry; /* in c->queue while queued */
};

struct cimd_lookup {
	struct flight_waiter w; /* first: in its pending's flight */
	cimd_done_cb done;
	void *arg;
};

struct cimd {
	struct event_base *base;
	struct fetcher *fetcher;
	const struct config *cfg;
	struct cimd_cache *cache;
	struct flight_list pending; /* every pending, queued or not */
	size_t n_pending;           /* fetches in flight */
	size_t fetch_slots;         /* at most that many (CIMD_PENDING_MAX) */
	TAILQ_HEAD(, cimd_pending) queue;
	size_t n_queued;
	bool dequeuing; /* in cimd_dequeue: answering a lookup must not nest it */
	struct metric *m_cache;
	struct metric *m_evictions;
	struct metric *m_fetch;
	struct metric *m_latency;
};

struct cimd *
cimd_new(struct event_base *base, struct fetcher *fetcher, const struct config *cfg)
{
	struct cimd *c = xcalloc(1, sizeof *c);

	c->base = base;
	c->fetcher = fetcher;
	c->cfg = cfg;
	c->cache = cimd_cache_new(cfg->eas.cimd.cache_max_size);
	TAILQ_INIT(&c->pending);
	TAILQ_INIT(&c->queue);
	c->fetch_slots = CIMD_PENDING_MAX;
	c->m_cache = metrics_counter("mcp_proxy_cimd_cache_total",
	    "CIMD cache lookups by result (hit, miss, stale, revalidated).", "result");
	c->m_evictions = metrics_counter("mcp_proxy_cimd_cache_evictions_total",
	    "CIMD documents evicted from the LRU cache.", "");
	c->m_fetch = metrics_counter("mcp_proxy_cimd_fetch_total",
	    "CIMD document fetches by outcome (ok, invalid, or the fetch error).", "outcome");
	c->m_latency = metrics_histogram("mcp_proxy_cimd_fetch_duration_seconds",
	    "Latency of CIMD document fetches.", "", NULL, 0);
	return c;
}

static void
cimd_pending_free(struct cimd_pending *p)
{
	if (p->queue_timer != NULL)
		event_free(p->queue_timer);
	client_unref(p->stale);
	free(p->etag);
	free(p->last_modified);
	free(p->cache_control);
	free(p->expires);
	flight_dispose(&p->f);
	free(p);
}

/* Free the resolver. Pending lookups are dropped without callbacks (their
 * requesters are going away with the loop). Not from a done callback. */
void
cimd_free(struct cimd *c)
{
	struct cimd_pending *p;
	struct flight_waiter *w;

	if (c == NULL)
		return;
	while ((p = (struct cimd_pending *)TAILQ_FIRST(&c->pending)) != NULL) {
		flight_detach(&p->f, &c->pending);
		if (p->queued)
			TAILQ_REMOVE(&c->queue, p, qentry);
		fetch_cancel(p->fetch);
		while ((w = flight_next(&p->f)) != NULL)
			free(w); /* its cimd_lookup */
		cimd_pending_free(p);
	}
	cimd_cache_free(c->cache);
	free(c);
}

/* Log one resolution failure: the host and the reason, never the document. */
static void
cimd_log_failure(const char *host, const char *reason, size_t waiters)
{
	log_warn("cimd: client metadata document refused", LOG_S("host", host),
	    LOG_S("reason", reason), LOG_I("waiters", waiters));
}

static void cimd_pending_fetch(struct cimd_pending *p);
static void cimd_queue_timeout(evutil_socket_t fd, short what, void *arg);

/* Take p out of the resolver's lists (it stays allocated). */
static void
cimd_pending_detach(struct cimd_pending *p)
{
	struct cimd *c = p->c;

	flight_detach(&p->f, &c->pending);
	if (p->queued) {
		TAILQ_REMOVE(&c->queue, p, qentry);
		c->n_queued--;
		p->queued = false;
		evtimer_del(p->queue_timer);
	} else {
		c->n_pending--;
	}
}

/* Start queued fetches while there are free slots. A queued lookup whose
 * wait is over by the clock gives up here, whichever comes first of its
 * timer and a free slot: the outcome never depends on which of two timers
 * due at the same moment the loop runs first. */
static void
cimd_dequeue(struct cimd *c)
{
	struct cimd_pending *p;

	if (c->dequeuing)
		return;
	c->dequeuing = true;
	while (c->n_pending < c->fetch_slots && (p = TAILQ_FIRST(&c->queue)) != NULL) {
		if (clock_mono_ms() >= p->queued_until_ms) {
			cimd_queue_timeout(-1, 0, p); /* answers and frees p */
			continue;
		}
		TAILQ_REMOVE(&c->queue, p, qentry);
		c->n_queued--;
		p->queued = false;
		evtimer_del(p->queue_timer);
		c->n_pending++;
		cimd_pending_fetch(p);
	}
	c->dequeuing = false;
}

/* Answer every waiter of p with client (or NULL and err) and free p. A done
 * callback may cancel other waiters of p or resolve again; it must not
 * free the resolver. */
static void
cimd_pending_finish(struct cimd_pending *p, struct client *client, const char *err)
{
	struct cimd *c = p->c;
	struct cimd_lookup *l;
	cimd_done_cb done;
	void *arg;

	cimd_pending_detach(p);
	if (client == NULL)
		cimd_log_failure(p->host, err, p->f.n_waiters);
	while ((l = (struct cimd_lookup *)flight_next(&p->f)) != NULL) {
		done = l->done;
		arg = l->arg;
		free(l);
		done(client, err, arg);
	}
	cimd_pending_free(p);
	cimd_dequeue(c);
}

/* Describe a failed untrusted fetch for the client (see cimd.h). */
void
cimd_fetch_error_text(const struct fetch_result *res, const char *doc, const char *fetch,
    int64_t timeout_ms, uint64_t max_size, char *err, size_t errlen)
{
	char ct[64];
	size_t i;

	switch (res->error) {
	case FETCH_ERR_TIMEOUT:
		if (timeout_ms % 1000 == 0)
			snprintf(err, errlen, "%s timed out after %llds", fetch,
			    (long long)(timeout_ms / 1000));
		else
			snprintf(err, errlen, "%s timed out after %lldms", fetch,
			    (long long)timeout_ms);
		break;
	case FETCH_ERR_TOO_LARGE:
		snprintf(err, errlen, "%s too large (limit %llu bytes)", doc,
		    (unsigned long long)max_size);
		break;
	case FETCH_ERR_REDIRECT_REFUSED:
		snprintf(err, errlen, "%s failed: HTTP status %ld, redirect refused", fetch,
		    res->status);
		break;
	case FETCH_ERR_BLOCKED_ADDRESS:
		snprintf(err, errlen, "%s failed: address not allowed", fetch);
		break;
	case FETCH_ERR_BAD_STATUS:
		snprintf(err, errlen, "%s failed: HTTP status %ld", fetch, res->status);
		break;
	case FETCH_ERR_CONTENT_TYPE:
		for (i = 0;
		     res->content_type != NULL && res->content_type[i] != '\0' && i < sizeof ct - 1;
		     i++) {
			unsigned char ch = (unsigned char)res->content_type[i];

			ct[i] = isalnum(ch) || strchr("/+.-_;= ", ch) != NULL ? (char)ch : '?';
		}
		ct[i] = '\0';
		snprintf(err, errlen, "%s content type %s is not JSON", doc, i > 0 ? ct : "(none)");
		break;
	case FETCH_ERR_TLS:
		snprintf(err, errlen, "%s failed: TLS error", fetch);
		break;
	case FETCH_ERR_DNS:
		snprintf(err, errlen, "%s failed: host name not resolved", fetch);
		break;
	case FETCH_ERR_CONNECT:
		snprintf(err, errlen, "%s failed: could not connect", fetch);
		break;
	case FETCH_ERR_BAD_URL:
		snprintf(err, errlen, "%s failed: URL refused", fetch);
		break;
	default:
		snprintf(err, errlen, "%s failed", fetch);
		break;
	}
}

/* Cache client per the response's caching headers; no-store (and no-cache
 * without a validator, which would only ever be refetched) are not kept. */
static void
cimd_store(struct cimd *c, const char *url, struct client *client, const char *cc,
    const char *expires, const char *date, const char *age, const char *etag,
    const char *last_modified)
{
	const struct config *cfg = c->cfg;
	struct httpcache_limits lim = { .fallback_ms = cfg->eas.cimd.cache_fallback_ttl_ms,
		.min_ms = cfg->eas.cimd.cache_min_ttl_ms,
		.max_ms = cfg->eas.cimd.cache_max_ttl_ms };
	struct httpcache_lifetime lt;
	struct cimd_cache_meta meta;
	size_t evicted;

	httpcache_lifetime(cc, expires, date, age, clock_wall_s(), &lim, &lt);
	if (!lt.store || (lt.revalidate && etag == NULL && last_modified == NULL)) {
		cimd_cache_remove(c->cache, url);
		return;
	}
	memset(&meta, 0, sizeof meta);
	meta.expires_ms = clock_mono_ms() + lt.ttl_ms;
	meta.revalidate = lt.revalidate;
	meta.etag = etag;
	meta.last_modified = last_modified;
	meta.cache_control = cc;
	meta.expires = expires;
	evicted = cimd_cache_put(c->cache, url, client, &meta);
	if (evicted > 0)
		metrics_add(c->m_evictions, (double)evicted);
}

static void
cimd_on_fetch(const struct fetch_result *res, void *arg)
{
	struct cimd_pending *p = arg;
	struct cimd *c = p->c;
	struct client *client = NULL;
	char err[CIMD_ERR_MAX] = "";

	p->fetch = NULL;
	metrics_observe(c->m_latency, (double)res->elapsed_ms / 1000.0);
	if (res->error != FETCH_OK) {
		metrics_add(c->m_fetch, 1, fetch_error_name(res->error));
		cimd_fetch_error_text(res, "client metadata document",
		    "client metadata document fetch", c->cfg->eas.cimd.fetch_timeout_ms,
		    c->cfg->eas.cimd.max_document_size, err, sizeof err);
	} else if (res->status == 304 && p->stale != NULL) {
		/* Not modified: the stored client is fresh again, unparsed. A 304
		 * carries the headers that changed; the stored ones stand in. */
		metrics_add(c->m_fetch, 1, "ok");
		metrics_add(c->m_cache, 1, "revalidated");
		client = p->stale;
		client_ref(client);
		cimd_store(c, p->f.url, client,
		    res->cache_control != NULL ? res->cache_control : p->cache_control,
		    res->expires != NULL ? res->expires : p->expires, res->date, res->age,
		    res->etag != NULL ? res->etag : p->etag,
		    res->last_modified != NULL ? res->last_modified : p->last_modified);
	} else if (res->status != 200) {
		metrics_add(c->m_fetch, 1, fetch_error_name(FETCH_ERR_BAD_STATUS));
		snprintf(err, sizeof err, "client metadata document fetch failed: HTTP status %ld",
		    res->status);
	} else {
		client = cimd_doc_validate(p->f.url, res->body, res->body_len, c->cfg, err,
		    sizeof err);
		if (client == NULL) {
			metrics_add(c->m_fetch, 1, "invalid");
			cimd_cache_remove(c->cache, p->f.url);
		} else {
			metrics_add(c->m_fetch, 1, "ok");
			cimd_store(c, p->f.url, client, res->cache_control, res->expires, res->date,
			    res->age, res->etag, res->last_modified);
		}
	}
	cimd_pending_finish(p, client, client == NULL ? err : NULL);
	client_unref(client);
}

/* Waited for a fetch slot as long as a fetch may take: give up. */
static void
cimd_queue_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct cimd_pending *p = arg;
	char err[CIMD_ERR_MAX];

	snprintf(err, sizeof err,
	    "client metadata document fetch timed out after %llds "
	    "(waiting for one of %d fetch slots)",
	    (long long)(p->c->cfg->eas.cimd.fetch_timeout_ms / 1000), (int)p->c->fetch_slots);
	metrics_add(p->c->m_fetch, 1, "queue_timeout");
	cimd_pending_finish(p, NULL, err);
}

/* Start p's fetch, conditional when a stale entry gave validators. */
static void
cimd_pending_fetch(struct cimd_pending *p)
{
	const struct config *cfg = p->c->cfg;
	struct fetch_policy policy;
	struct fetch_request req;
	char *hdrs[3] = { NULL, NULL, NULL };
	size_t nh = 0;

	if (p->etag != NULL)
		hdrs[nh++] = xasprintf("If-None-Match: %s", p->etag);
	if (p->last_modified != NULL)
		hdrs[nh++] = xasprintf("If-Modified-Since: %s", p->last_modified);
	fetch_policy_init(&policy, true);
	policy.timeout_ms = cfg->eas.cimd.fetch_timeout_ms;
	policy.max_size = cfg->eas.cimd.max_document_size;
	policy.allow_loopback = cfg->eas.cimd.insecure_allow_loopback;
	memset(&req, 0, sizeof req);
	req.method = "GET";
	req.url = p->f.url;
	req.headers = (const char *const *)hdrs;
	req.policy = &policy;
	req.policy_name = "cimd";
	/* done never runs from inside fetch_start, so p is ready for it. */
	p->fetch = fetch_start(p->c->fetcher, &req, cimd_on_fetch, p);
	for (size_t i = 0; i < nh; i++)
		free(hdrs[i]);
}

/* The one pending resolution of url: fetched now, or queued when every
 * fetch slot is taken. */
static struct cimd_pending *
cimd_pending_start(struct cimd *c, const char *url, const char *host,
    const struct cimd_cache_entry *stale)
{
	struct cimd_pending *p = xcalloc(1, sizeof *p);
	struct timeval tv;

	flight_init(&p->f, &c->pending, url);
	p->c = c;
	snprintf(p->host, sizeof p->host, "%s", host);
	if (stale != NULL) {
		p->stale = stale->client;
		client_ref(p->stale);
		if (stale->etag != NULL)
			p->etag = xstrdup(stale->etag);
		if (stale->last_modified != NULL)
			p->last_modified = xstrdup(stale->last_modified);
		if (stale->cache_control != NULL)
			p->cache_control = xstrdup(stale->cache_control);
		if (stale->expires != NULL)
			p->expires = xstrdup(stale->expires);
	}
	if (c->n_pending < c->fetch_slots) {
		c->n_pending++;
		cimd_pending_fetch(p);
		return p;
	}
	p->queued = true;
	p->queued_until_ms = clock_mono_ms() + c->cfg->eas.cimd.fetch_timeout_ms;
	TAILQ_INSERT_TAIL(&c->queue, p, qentry);
	c->n_queued++;
	p->queue_timer = xevtimer_new(c->base, cimd_queue_timeout, p);
	tv.tv_sec = c->cfg->eas.cimd.fetch_timeout_ms / 1000;
	tv.tv_usec = (c->cfg->eas.cimd.fetch_timeout_ms % 1000) * 1000;
	evtimer_add(p->queue_timer, &tv);
	return p;
}

/* Answer a lookup that failed before any fetch, logging it once. */
static void
cimd_fail_now(const char *host, const char *why, cimd_done_cb done, void *arg)
{
	cimd_log_failure(host, why, 1);
	done(NULL, why, arg);
}

/* Resolve a URL client_id, calling done() once, possibly before returning. */
struct cimd_lookup *
cimd_resolve(struct cimd *c, const char *client_id, cimd_done_cb done, void *arg)
{
	const struct config *cfg = c->cfg;
	char host[CIMD_HOST_MAX];
	const char *why;
	struct cimd_cache_entry *e;
	struct cimd_pending *p;
	struct cimd_lookup *l;
	struct client *client;

	if (!cfg->eas.cimd.enabled) {
		done(NULL, "client metadata documents are not enabled", arg);
		return NULL;
	}
	if (cimd_url_check(client_id, host, sizeof host, &why) != 0) {
		cimd_fail_now("-", why, done, arg);
		return NULL;
	}
	if (!cimd_host_allowed(&cfg->eas.cimd.allowed_hosts, &cfg->eas.cimd.denied_hosts, host,
		&why)) {
		cimd_fail_now(host, why, done, arg);
		return NULL;
	}
	e = cimd_cache_get(c->cache, client_id);
	if (e != NULL && !e->revalidate && clock_mono_ms() < e->expires_ms) {
		metrics_add(c->m_cache, 1, "hit");
		/* Keep the client alive across done() whatever it does. */
		client = e->client;
		client_ref(client);
		done(client, NULL, arg);
		client_unref(client);
		return NULL;
	}
	metrics_add(c->m_cache, 1, e != NULL ? "stale" : "miss");
	p = (struct cimd_pending *)flight_find(&c->pending, client_id);
	if (p == NULL) {
		if (c->n_queued >= CIMD_QUEUE_MAX) {
			cimd_fail_now(host,
			    "too many client metadata document fetches in progress; "
			    "try again",
			    done, arg);
			return NULL;
		}
		if (e != NULL && e->etag == NULL && e->last_modified == NULL) {
			cimd_cache_remove(c->cache, client_id);
			e = NULL;
		}
		p = cimd_pending_start(c, client_id, host, e);
	}
	l = xcalloc(1, sizeof *l);
	l->done = done;
	l->arg = arg;
	flight_join(&p->f, &l->w);
	return l;
}

/* Cancel a pending lookup (its requester went away): no callback follows.
 * The shared fetch goes on for the other waiters, or is cancelled with the
 * last one. Safe only before done() ran; NULL is fine. */
void
cimd_cancel(struct cimd_lookup *l)
{
	struct cimd_pending *p;
	struct cimd *c;
	bool last;

	if (l == NULL)
		return;
	p = (struct cimd_pending *)l->w.f;
	c = p->c;
	last = flight_leave(&l->w);
	free(l);
	if (!last)
		return;
	cimd_pending_detach(p);
	fetch_cancel(p->fetch);
	metrics_add(c->m_fetch, 1, "cancelled");
	cimd_pending_free(p);
	cimd_dequeue(c);
}

size_t
cimd_cache_size(const struct cimd *c)
{
	return cimd_cache_count(c->cache);
}

void
cimd_set_fetch_slots(struct cimd *c, size_t n)
{
	c->fetch_slots = n >= 1 && n <= CIMD_PENDING_MAX ? n : CIMD_PENDING_MAX;
}

size_t
cimd_pending_count(const struct cimd *c)
{
	return c->n_pending + c->n_queued;
}
