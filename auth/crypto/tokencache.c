/*
 * The verified-token cache (see tokencache.h): a chained hash table on the
 * SHA-256 of the token's secret part with an LRU list through the same
 * entries. A JWT's secret part is its signature, the segment after the last
 * dot; the signed part before it is readable by every holder and is kept in
 * the entry and compared byte for byte, so a hit still means the whole token
 * is the one verified, while only ~90 bytes are hashed per request instead
 * of ~800 (SHA-256 was a third of the guard's cost). A token without a dot,
 * or whose signed part is over TOKENCACHE_PUBLIC_MAX, is all secret. The
 * digest is the only trace of the secret part kept here; the bucket index
 * comes from digest bytes, which an attacker cannot steer without breaking
 * SHA-256, so chains stay short. Expired entries are dropped when met and
 * when the LRU tail is examined on insert.
 */
#include "auth/crypto/tokencache.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "common/clock.h"
#include "common/xalloc.h"

/* Longest signed part kept in an entry (a larger token is hashed whole). */
#define TOKENCACHE_PUBLIC_MAX 4096

/* A token as the cache sees it: the digest of its secret part and its
 * readable part (pointing into the token). */
struct tokencache_key {
	unsigned char digest[SHA256_DIGEST_LENGTH];
	const char *pub;
	size_t pub_len; /* through the last dot; 0 = the token is all secret */
};

struct tokencache_entry {
	unsigned char digest[SHA256_DIGEST_LENGTH];
	char *pub; /* the readable part, not NUL-terminated; NULL when pub_len is 0 */
	size_t pub_len;
	struct tokencache_claims claims;
	int64_t until;                 /* wall seconds */
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
	/* SHA-256 fetched once and one context reused: the one-shot SHA256()
	 * of OpenSSL 3 fetches the algorithm and allocates a context per call,
	 * which cost as much as hashing the token itself. */
	EVP_MD *sha256;
	EVP_MD_CTX *md_ctx;
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
	dst->claims_json = tokencache_dup(src->claims_json);
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
	free(c->claims_json);
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
	tc->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	tc->md_ctx = EVP_MD_CTX_new();
	if (tc->sha256 == NULL || tc->md_ctx == NULL)
		abort(); /* out of memory: SHA-256 is in every OpenSSL 3 provider */
	return tc;
}

static void
tokencache_entry_free(struct tokencache_entry *e)
{
	tokencache_claims_dispose(&e->claims);
	free(e->pub);
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
	EVP_MD_CTX_free(tc->md_ctx);
	EVP_MD_free(tc->sha256);
	free(tc);
}

/* Split token into its readable part and the digest of its secret part. */
static void
tokencache_key(struct tokencache *tc, const char *token, size_t len, struct tokencache_key *k)
{
	const char *dot = memrchr(token, '.', len);
	size_t pub = dot != NULL ? (size_t)(dot - token) + 1 : 0;

	if (pub > TOKENCACHE_PUBLIC_MAX)
		pub = 0;
	k->pub = token;
	k->pub_len = pub;
	if (EVP_DigestInit_ex2(tc->md_ctx, tc->sha256, NULL) != 1 ||
	    EVP_DigestUpdate(tc->md_ctx, token + pub, len - pub) != 1 ||
	    EVP_DigestFinal_ex(tc->md_ctx, k->digest, NULL) != 1)
		abort(); /* only an allocation can fail here */
}

static size_t
tokencache_bucket(const struct tokencache *tc, const unsigned char *digest)
{
	uint64_t h;

	memcpy(&h, digest, sizeof h);
	return (size_t)(h & (tc->n_buckets - 1));
}

/* Find the entry for k; *prevp is the link that points at it. */
static struct tokencache_entry *
tokencache_find(struct tokencache *tc, const struct tokencache_key *k,
    struct tokencache_entry ***prevp)
{
	struct tokencache_entry **pp = &tc->buckets[tokencache_bucket(tc, k->digest)];

	for (; *pp != NULL; pp = &(*pp)->next) {
		const struct tokencache_entry *e = *pp;

		if (memcmp(e->digest, k->digest, SHA256_DIGEST_LENGTH) == 0 &&
		    e->pub_len == k->pub_len &&
		    (k->pub_len == 0 || memcmp(e->pub, k->pub, k->pub_len) == 0)) {
			*prevp = pp;
			return *pp;
		}
	}
	return NULL;
}

static void
tokencache_unlink(struct tokencache *tc, struct tokencache_entry *e, struct tokencache_entry **pp)
{
	*pp = e->next;
	TAILQ_REMOVE(&tc->lru, e, lru);
	tc->count--;
	tokencache_entry_free(e);
}

/* Unlink e found by walking its bucket (the LRU tail has no link at hand). */
static void
tokencache_evict(struct tokencache *tc, struct tokencache_entry *e)
{
	struct tokencache_entry **pp = &tc->buckets[tokencache_bucket(tc, e->digest)];

	while (*pp != e)
		pp = &(*pp)->next;
	tokencache_unlink(tc, e, pp);
}

const struct tokencache_claims *
tokencache_get(struct tokencache *tc, const char *token, size_t len)
{
	struct tokencache_entry *e, **pp;
	struct tokencache_key k;

	tokencache_key(tc, token, len, &k);
	if ((e = tokencache_find(tc, &k, &pp)) == NULL)
		return NULL;
	if (clock_wall_s() >= e->until) {
		tokencache_unlink(tc, e, pp);
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
	struct tokencache_entry *e, **pp;
	struct tokencache_key k;
	int64_t now = clock_wall_s();

	if (claims->exp != 0 && claims->exp < until)
		until = claims->exp;
	if (until <= now)
		return;
	tokencache_key(tc, token, len, &k);
	if ((e = tokencache_find(tc, &k, &pp)) != NULL)
		tokencache_unlink(tc, e, pp);
	/* Make room: expired entries at the tail first, then the LRU one. */
	while ((e = TAILQ_LAST(&tc->lru, tokencache_lru)) != NULL &&
	    (tc->count >= tc->max || now >= e->until))
		tokencache_evict(tc, e);
	e = xcalloc(1, sizeof *e);
	memcpy(e->digest, k.digest, sizeof k.digest);
	if (k.pub_len > 0) {
		e->pub = xmalloc(k.pub_len);
		memcpy(e->pub, k.pub, k.pub_len);
		e->pub_len = k.pub_len;
	}
	tokencache_claims_copy(&e->claims, claims);
	e->until = until;
	pp = &tc->buckets[tokencache_bucket(tc, k.digest)];
	e->next = *pp;
	*pp = e;
	TAILQ_INSERT_HEAD(&tc->lru, e, lru);
	tc->count++;
}

void
tokencache_remove(struct tokencache *tc, const char *token, size_t len)
{
	struct tokencache_entry *e, **pp;
	struct tokencache_key k;

	tokencache_key(tc, token, len, &k);
	if ((e = tokencache_find(tc, &k, &pp)) != NULL)
		tokencache_unlink(tc, e, pp);
}

size_t
tokencache_count(const struct tokencache *tc)
{
	return tc->count;
}
