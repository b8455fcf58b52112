/*
 * The CIMD document cache: an LRU of validated clients keyed by the exact
 * client_id URL, bounded in entries, each with its freshness deadline and
 * the validators (ETag, Last-Modified) and caching headers needed to
 * revalidate it. It holds a reference on each client and never mutates
 * one: a client handed out stays valid for its holder after eviction.
 * Only valid documents go in; errors are never cached. No clock and no
 * I/O here: the caller passes deadlines and decides freshness.
 */
#ifndef AUTH_CIMD_CACHE_H
#define AUTH_CIMD_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/cimd/httpcache.h"

struct client;
struct cimd_cache;

#define CIMD_CACHE_HEADER_MAX HTTPCACHE_HEADER_MAX /* longest validator or caching header kept */

/* What the resolver stores with a client; strings are copied (NULL = none). */
struct cimd_cache_meta {
	int64_t expires_ms; /* monotonic deadline of freshness */
	bool revalidate;    /* no-cache: stale on every use */
	const char *etag;
	const char *last_modified;
	const char *cache_control; /* kept so a bare 304 can be judged by them */
	const char *expires;
};

/* One entry; read-only outside cimd_cache.c. */
struct cimd_cache_entry {
	char *url;
	struct client *client;
	int64_t expires_ms;
	bool revalidate;
	char *etag;
	char *last_modified;
	char *cache_control;
	char *expires;

	struct cimd_cache_entry *prev, *next; /* LRU: head most recent */
	struct cimd_cache_entry *hnext;
	uint64_t hash;
};

struct cimd_cache *cimd_cache_new(size_t max_entries);
/* Drop every entry (and its client reference) and free. NULL is fine. */
void cimd_cache_free(struct cimd_cache *cc);

/* Find url and mark it most recently used; NULL when absent. */
struct cimd_cache_entry *cimd_cache_get(struct cimd_cache *cc, const char *url);
/* Find url without touching the LRU order (tests, metrics). */
struct cimd_cache_entry *cimd_cache_peek(const struct cimd_cache *cc, const char *url);

/* Insert or replace url with client (a reference is taken) as most recently
 * used, evicting the least recently used entries beyond the bound. Returns
 * how many entries were evicted. */
size_t cimd_cache_put(struct cimd_cache *cc, const char *url, struct client *client,
    const struct cimd_cache_meta *meta);
/* Remove url if present. */
void cimd_cache_remove(struct cimd_cache *cc, const char *url);

size_t cimd_cache_count(const struct cimd_cache *cc);
/* The least recently used entry (the next to be evicted), or NULL. */
const struct cimd_cache_entry *cimd_cache_lru(const struct cimd_cache *cc);

#endif
