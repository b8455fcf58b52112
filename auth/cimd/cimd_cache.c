/*
 * The CIMD LRU (see cimd_cache.h): a doubly linked recency list over a
 * chained hash table that doubles as it fills, so lookups stay O(1) at any
 * cacheMaxSize. Header strings from third-party servers are kept only when
 * short and printable, since the resolver sends validators back in request
 * headers.
 */
#include "auth/cimd/cimd_cache.h"

#include <stdlib.h>
#include <string.h>

#include "auth/client/client.h"
#include "common/hash.h"
#include "common/xalloc.h"

struct cimd_cache {
	size_t max;
	size_t n;
	struct cimd_cache_entry *head, *tail;
	struct cimd_cache_entry **buckets;
	size_t nbuckets; /* power of two */
};

/* The keyed hash (common/hash.h): client_id URLs are the client's choice. */
static uint64_t
cimd_cache_hash(const char *s)
{
	return hash_str(s);
}

struct cimd_cache *
cimd_cache_new(size_t max_entries)
{
	struct cimd_cache *cc = xcalloc(1, sizeof *cc);

	cc->max = max_entries > 0 ? max_entries : 1;
	cc->nbuckets = 64;
	cc->buckets = xcalloc(cc->nbuckets, sizeof *cc->buckets);
	return cc;
}

static void
cimd_cache_entry_free(struct cimd_cache_entry *e)
{
	free(e->url);
	client_unref(e->client);
	free(e->etag);
	free(e->last_modified);
	free(e->cache_control);
	free(e->expires);
	free(e);
}

void
cimd_cache_free(struct cimd_cache *cc)
{
	struct cimd_cache_entry *e, *next;

	if (cc == NULL)
		return;
	for (e = cc->head; e != NULL; e = next) {
		next = e->next;
		cimd_cache_entry_free(e);
	}
	free(cc->buckets);
	free(cc);
}

static void
cimd_cache_unlink(struct cimd_cache *cc, struct cimd_cache_entry *e)
{
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		cc->head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		cc->tail = e->prev;
	e->prev = e->next = NULL;
}

static void
cimd_cache_link_head(struct cimd_cache *cc, struct cimd_cache_entry *e)
{
	e->prev = NULL;
	e->next = cc->head;
	if (cc->head != NULL)
		cc->head->prev = e;
	cc->head = e;
	if (cc->tail == NULL)
		cc->tail = e;
}

struct cimd_cache_entry *
cimd_cache_peek(const struct cimd_cache *cc, const char *url)
{
	uint64_t h = cimd_cache_hash(url);
	struct cimd_cache_entry *e;

	for (e = cc->buckets[h & (cc->nbuckets - 1)]; e != NULL; e = e->hnext) {
		if (e->hash == h && strcmp(e->url, url) == 0)
			return e;
	}
	return NULL;
}

struct cimd_cache_entry *
cimd_cache_get(struct cimd_cache *cc, const char *url)
{
	struct cimd_cache_entry *e = cimd_cache_peek(cc, url);

	if (e != NULL && e != cc->head) {
		cimd_cache_unlink(cc, e);
		cimd_cache_link_head(cc, e);
	}
	return e;
}

/* Unlink e from the hash table, the list and the count, and free it. */
static void
cimd_cache_drop(struct cimd_cache *cc, struct cimd_cache_entry *e)
{
	struct cimd_cache_entry **pp = &cc->buckets[e->hash & (cc->nbuckets - 1)];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	cimd_cache_unlink(cc, e);
	cc->n--;
	cimd_cache_entry_free(e);
}

static void
cimd_cache_grow(struct cimd_cache *cc)
{
	size_t nb = cc->nbuckets * 2;
	struct cimd_cache_entry **b = xcalloc(nb, sizeof *b), *e;

	for (e = cc->head; e != NULL; e = e->next) {
		e->hnext = b[e->hash & (nb - 1)];
		b[e->hash & (nb - 1)] = e;
	}
	free(cc->buckets);
	cc->buckets = b;
	cc->nbuckets = nb;
}

size_t
cimd_cache_put(struct cimd_cache *cc, const char *url, struct client *client,
    const struct cimd_cache_meta *meta)
{
	struct cimd_cache_entry *e = xcalloc(1, sizeof *e);
	size_t evicted = 0;

	/* Copy and reference first: url, client and meta may belong to the
	 * entry being replaced. */
	e->url = xstrdup(url);
	e->hash = cimd_cache_hash(url);
	client_ref(client);
	e->client = client;
	e->expires_ms = meta->expires_ms;
	e->revalidate = meta->revalidate;
	e->etag = httpcache_header_copy(meta->etag);
	e->last_modified = httpcache_header_copy(meta->last_modified);
	e->cache_control = httpcache_header_copy(meta->cache_control);
	e->expires = httpcache_header_copy(meta->expires);
	cimd_cache_remove(cc, e->url);
	while (cc->n >= cc->max && cc->tail != NULL) {
		cimd_cache_drop(cc, cc->tail);
		evicted++;
	}
	if (cc->n + 1 > cc->nbuckets)
		cimd_cache_grow(cc);
	e->hnext = cc->buckets[e->hash & (cc->nbuckets - 1)];
	cc->buckets[e->hash & (cc->nbuckets - 1)] = e;
	cimd_cache_link_head(cc, e);
	cc->n++;
	return evicted;
}

void
cimd_cache_remove(struct cimd_cache *cc, const char *url)
{
	struct cimd_cache_entry *e = cimd_cache_peek(cc, url);

	if (e != NULL)
		cimd_cache_drop(cc, e);
}

size_t
cimd_cache_count(const struct cimd_cache *cc)
{
	return cc->n;
}

const struct cimd_cache_entry *
cimd_cache_lru(const struct cimd_cache *cc)
{
	return cc->tail;
}
