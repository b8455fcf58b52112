/*
 * The verified-token cache (see tokencache.h): a chained hash table on the
 * token's SHA-256 with an LRU list through the same entries. The digest is
 * the only trace of a token kept here; the bucket index comes from digest
 * bytes, which an attacker cannot steer without breaking SHA-256, so chains
 * stay short. Expired entries are dropped when met and when the LRU tail is
 * examined on insert.
 */
#include "auth/tokencache.h"

#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "common/clock.h"
#include "common/xalloc.h"

struct tokencache_entry {
	unsigned char digest[SHA256_DIGEST_LENGTH];
	struct tokencache_claims claims;
	int64_t until; /* wall seconds */
	struct tokencache_entry *next; /* bucket chain */
	TAILQ_ENTRY(tokencache_entry) lru;
};

TAILQ_HEAD(tokencache_lru, tokencache_entry);

struct tokencache {
	struct tokencache_entry **buckets;
	size_t n_buckets; /* a power of two */
	size_t count;
	size_t max;
	struct tokencache_lru lru; /* most recently used first */
};

static char *
tokencache_dup(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

void
tokencache_claims_copy(struct tokencache_claims *dst, const struct tokencache_claims *src)
{
	dst->sub = tokencache_dup(src->sub);
	dst->scope = tokencache_dup(src->scope);
	dst->jti = tokencache_dup(src->jti);
	dst->tsid = tokencache_dup(src->tsid);
	dst->client_id = tokencache_dup(src->client_id);
	dst->exp = src->exp;
}

void
tokencache_claims_dispose(struct tokencache_claims *c)
{
	free(c->sub);
	free(c->scope);
	free(c->jti);
	free(c->tsid);
	free(c->client_id);
	memset(c, 0, sizeof *c);
}

struct tokencache *
tokencache_new(size_t max_entries)
{
	struct tokencache *tc = xcalloc(1, sizeof *tc);

	tc->max = max_entries > 0 ? max_entries : TOKENCACHE_DEFAULT_MAX;
	tc->n_buckets = 16;
	while (tc->n_buckets < tc->max && tc->n_buckets < ((size_t)1 << 24))
		tc->n_buckets <<= 1;
	tc->buckets = xcalloc(tc->n_buckets, sizeof *tc->buckets);
	TAILQ_INIT(&tc->lru);
	return tc;
}

static void
tokencache_entry_free(struct tokencache_entry *e)
{
	tokencache_claims_dispose(&e->claims);
	free(e);
}

void
tokencache_free(struct tokencache *tc)
{
	struct tokencache_entry *e;

	if (tc == NULL)
		return;
	while ((e = TAILQ_FIRST(&tc->lru)) != NULL) {
		TAILQ_REMOVE(&tc->lru, e, lru);
		tokencache_entry_free(e);
	}
	free(tc->buckets);
	free(tc);
}

static size_t
tokencache_bucket(const struct tokencache *tc, const unsigned char *digest)
{
	uint64_t h;

	memcpy(&h, digest, sizeof h);
	return (size_t)(h & (tc->n_buckets - 1));
}

/* Find the entry for digest; *prevp is the link that points at it. */
static struct tokencache_entry *
tokencache_find(struct tokencache *tc, const unsigned char *digest,
    struct tokencache_entry ***prevp)
{
	struct tokencache_entry **pp = &tc->buckets[tokencache_bucket(tc, digest)];

	for (; *pp != NULL; pp = &(*pp)->next) {
		if (memcmp((*pp)->digest, digest, SHA256_DIGEST_LENGTH) == 0) {
			*prevp = pp;
			return *pp;
		}
	}
	return NULL;
}

static void
tokencache_unlink(struct tokencache *tc, struct tokencache_entry *e)
{
	struct tokencache_entry **pp;

	if (tokencache_find(tc, e->digest, &pp) == e)
		*pp = e->next;
	TAILQ_REMOVE(&tc->lru, e, lru);
	tc->count--;
	tokencache_entry_free(e);
}

const struct tokencache_claims *
tokencache_get(struct tokencache *tc, const char *token, size_t len)
{
	unsigned char digest[SHA256_DIGEST_LENGTH];
	struct tokencache_entry *e, **pp;

	SHA256((const unsigned char *)token, len, digest);
	if ((e = tokencache_find(tc, digest, &pp)) == NULL)
		return NULL;
	if (clock_wall_s() >= e->until) {
		tokencache_unlink(tc, e);
		return NULL;
	}
	TAILQ_REMOVE(&tc->lru, e, lru);
	TAILQ_INSERT_HEAD(&tc->lru, e, lru);
	return &e->claims;
}

void
tokencache_put(struct tokencache *tc, const char *token, size_t len,
    const struct tokencache_claims *claims, int64_t until)
{
	unsigned char digest[SHA256_DIGEST_LENGTH];
	struct tokencache_entry *e, **pp;
	int64_t now = clock_wall_s();

	if (claims->exp != 0 && claims->exp < until)
		until = claims->exp;
	if (until <= now)
		return;
	SHA256((const unsigned char *)token, len, digest);
	if ((e = tokencache_find(tc, digest, &pp)) != NULL)
		tokencache_unlink(tc, e);
	/* Make room: expired entries at the tail first, then the LRU one. */
	while (tc->count >= tc->max ||
	    ((e = TAILQ_LAST(&tc->lru, tokencache_lru)) != NULL && now >= e->until)) {
		e = TAILQ_LAST(&tc->lru, tokencache_lru);
		if (e == NULL)
			break;
		tokencache_unlink(tc, e);
	}
	e = xcalloc(1, sizeof *e);
	memcpy(e->digest, digest, sizeof digest);
	tokencache_claims_copy(&e->claims, claims);
	e->until = until;
	pp = &tc->buckets[tokencache_bucket(tc, digest)];
	e->next = *pp;
	*pp = e;
	TAILQ_INSERT_HEAD(&tc->lru, e, lru);
	tc->count++;
}

void
tokencache_remove(struct tokencache *tc, const char *token, size_t len)
{
	unsigned char digest[SHA256_DIGEST_LENGTH];
	struct tokencache_entry *e, **pp;

	SHA256((const unsigned char *)token, len, digest);
	if ((e = tokencache_find(tc, digest, &pp)) != NULL)
		tokencache_unlink(tc, e);
}

size_t
tokencache_count(const struct tokencache *tc)
{
	return tc->count;
}
