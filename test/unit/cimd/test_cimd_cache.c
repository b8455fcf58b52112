/*
 * The CIMD LRU: eviction order at the size bound, recency on lookup, replace
 * in place, client references surviving eviction (a login in progress keeps
 * its client), growth past the initial hash size, and header values that
 * are dropped rather than kept when they could not be sent back safely.
 */
#include <stdio.h>
#include <string.h>

#include "auth/cimd/cimd_cache.h"
#include "auth/client/client.h"
#include "test/unit/unit.h"

static const struct cimd_cache_meta meta0 = { .expires_ms = 1000 };

static void
put(struct cimd_cache *cc, const char *url, size_t want_evicted)
{
	struct client *c = client_new(url);

	CU_ASSERT_EQUAL(cimd_cache_put(cc, url, c, &meta0), want_evicted);
	client_unref(c);
}

static void
test_lru_order(void)
{
	struct cimd_cache *cc = cimd_cache_new(3);

	put(cc, "https://a/1", 0);
	put(cc, "https://a/2", 0);
	put(cc, "https://a/3", 0);
	CU_ASSERT_EQUAL(cimd_cache_count(cc), 3);
	CU_ASSERT_STRING_EQUAL(cimd_cache_lru(cc)->url, "https://a/1");
	/* Full: the least recently used goes. */
	put(cc, "https://a/4", 1);
	CU_ASSERT_EQUAL(cimd_cache_count(cc), 3);
	CU_ASSERT_PTR_NULL(cimd_cache_peek(cc, "https://a/1"));
	CU_ASSERT_STRING_EQUAL(cimd_cache_lru(cc)->url, "https://a/2");
	/* A lookup makes an entry most recent; peek does not. */
	CU_ASSERT_PTR_NOT_NULL(cimd_cache_get(cc, "https://a/2"));
	CU_ASSERT_PTR_NOT_NULL(cimd_cache_peek(cc, "https://a/3"));
	CU_ASSERT_STRING_EQUAL(cimd_cache_lru(cc)->url, "https://a/3");
	put(cc, "https://a/5", 1);
	CU_ASSERT_PTR_NULL(cimd_cache_peek(cc, "https://a/3"));
	CU_ASSERT_PTR_NOT_NULL(cimd_cache_peek(cc, "https://a/2"));
	CU_ASSERT_PTR_NOT_NULL(cimd_cache_peek(cc, "https://a/4"));
	CU_ASSERT_PTR_NOT_NULL(cimd_cache_peek(cc, "https://a/5"));
	/* Replacing an entry evicts nothing and makes it most recent. */
	put(cc, "https://a/4", 0);
	CU_ASSERT_EQUAL(cimd_cache_count(cc), 3);
	CU_ASSERT_STRING_EQUAL(cimd_cache_lru(cc)->url, "https://a/2");
	/* Keys are exact strings. */
	CU_ASSERT_PTR_NULL(cimd_cache_get(cc, "https://A/4"));
	CU_ASSERT_PTR_NULL(cimd_cache_get(cc, "https://a/4/"));
	cimd_cache_remove(cc, "https://a/2");
	cimd_cache_remove(cc, "https://a/absent");
	CU_ASSERT_EQUAL(cimd_cache_count(cc), 2);
	CU_ASSERT_STRING_EQUAL(cimd_cache_lru(cc)->url, "https://a/5");
	cimd_cache_free(cc);
	cimd_cache_free(NULL);
}

static void
test_size_one(void)
{
	struct cimd_cache *cc = cimd_cache_new(1);

	put(cc, "https://a/1", 0);
	put(cc, "https://a/2", 1);
	put(cc, "https://a/2", 0);
	CU_ASSERT_EQUAL(cimd_cache_count(cc), 1);
	CU_ASSERT_PTR_NOT_NULL(cimd_cache_get(cc, "https://a/2"));
	cimd_cache_free(cc);
}

static void
test_refs_survive_eviction(void)
{
	struct cimd_cache *cc = cimd_cache_new(1);
	struct client *c = client_new("https://a/1"), *held;

	cimd_cache_put(cc, "https://a/1", c, &meta0);
	CU_ASSERT_EQUAL(c->refs, 2);
	client_unref(c);
	/* A pending login takes a reference on the client it was given. */
	held = cimd_cache_get(cc, "https://a/1")->client;
	client_ref(held);
	put(cc, "https://a/2", 1);
	CU_ASSERT_EQUAL(held->refs, 1);
	CU_ASSERT_STRING_EQUAL(held->client_id, "https://a/1");
	client_unref(held);
	cimd_cache_free(cc);
}

static void
test_replace_with_own_fields(void)
{
	struct cimd_cache *cc = cimd_cache_new(4);
	struct client *c = client_new("https://a/1");
	struct cimd_cache_meta m = { .expires_ms = 5,
		.etag = "\"v1\"",
		.last_modified = "Sun, 06 Nov 1994 08:49:37 GMT",
		.cache_control = "max-age=60" };
	struct cimd_cache_entry *e;

	cimd_cache_put(cc, "https://a/1", c, &m);
	client_unref(c);
	e = cimd_cache_get(cc, "https://a/1");
	CU_ASSERT_EQUAL(e->client->refs, 1);
	/* A 304 refresh re-puts the entry with its own url, client and validators. */
	m.expires_ms = 99;
	m.etag = e->etag;
	m.last_modified = e->last_modified;
	m.cache_control = e->cache_control;
	cimd_cache_put(cc, e->url, e->client, &m);
	e = cimd_cache_get(cc, "https://a/1");
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT_EQUAL(e->expires_ms, 99);
	CU_ASSERT_STRING_EQUAL(e->etag, "\"v1\"");
	CU_ASSERT_STRING_EQUAL(e->cache_control, "max-age=60");
	CU_ASSERT_EQUAL(e->client->refs, 1);
	cimd_cache_free(cc);
}

static void
test_header_values(void)
{
	struct cimd_cache *cc = cimd_cache_new(4);
	struct client *c = client_new("https://a/1");
	char big[CIMD_CACHE_HEADER_MAX + 2];
	struct cimd_cache_meta m = { .etag = "\"v1\"\r\nX-Injected: 1",
		.last_modified = big,
		.cache_control = "" };
	struct cimd_cache_entry *e;

	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	cimd_cache_put(cc, "https://a/1", c, &m);
	e = cimd_cache_peek(cc, "https://a/1");
	CU_ASSERT_PTR_NULL(e->etag);
	CU_ASSERT_PTR_NULL(e->last_modified);
	CU_ASSERT_PTR_NULL(e->cache_control);
	CU_ASSERT_PTR_NULL(e->expires);
	client_unref(c);
	cimd_cache_free(cc);
}

static void
test_many(void)
{
	struct cimd_cache *cc = cimd_cache_new(1000);
	char url[64];

	for (int i = 0; i < 1500; i++) {
		snprintf(url, sizeof url, "https://h%d.example/c.json", i);
		put(cc, url, i < 1000 ? 0 : 1);
	}
	CU_ASSERT_EQUAL(cimd_cache_count(cc), 1000);
	for (int i = 0; i < 1500; i++) {
		snprintf(url, sizeof url, "https://h%d.example/c.json", i);
		CU_ASSERT_EQUAL(cimd_cache_peek(cc, url) == NULL, i < 500);
	}
	CU_ASSERT_STRING_EQUAL(cimd_cache_lru(cc)->url, "https://h500.example/c.json");
	cimd_cache_free(cc);
}

static const struct unit_test tests[] = {
	{ "lru order", test_lru_order },
	{ "size one", test_size_one },
	{ "refs survive eviction", test_refs_survive_eviction },
	{ "replace with own fields", test_replace_with_own_fields },
	{ "header values", test_header_values },
	{ "many entries", test_many },
	{ NULL, NULL },
};

int
main(void)
{
	return unit_run("cimd_cache", tests);
}
