/*
 * Unit tests for auth/tokencache: hits and misses, the deadline (clamped
 * to exp), the LRU bound, removal, and that a JWT hits only byte for byte
 * (its signature hashed, its signed part compared).
 */
#include "auth/crypto/tokencache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "test/unit/unit.h"

#define NOW 1700000000

static struct tokencache_claims
claims(const char *jti, int64_t exp)
{
	struct tokencache_claims c = { .sub = (char *)"alice", .scope = (char *)"mcp:tools",
		.jti = (char *)jti, .tsid = (char *)"s1", .exp = exp };

	return c;
}

static void
test_hit_miss(void)
{
	struct tokencache *tc = tokencache_new(4);
	struct tokencache_claims c = claims("j1", NOW + 100);
	const struct tokencache_claims *got;

	clock_set_fake(NOW, 0);
	CU_ASSERT_PTR_NULL(tokencache_get(tc, "tok-a", 5));
	tokencache_put(tc, "tok-a", 5, &c, NOW + 100);
	got = tokencache_get(tc, "tok-a", 5);
	CU_ASSERT_PTR_NOT_NULL_FATAL(got);
	CU_ASSERT_STRING_EQUAL(got->jti, "j1");
	CU_ASSERT_STRING_EQUAL(got->scope, "mcp:tools");
	CU_ASSERT_STRING_EQUAL(got->tsid, "s1");
	CU_ASSERT_PTR_NULL(got->client_id);
	CU_ASSERT_EQUAL(got->exp, NOW + 100);
	/* a copy: the caller's strings are not kept */
	CU_ASSERT_PTR_NOT_EQUAL(got->jti, c.jti);
	/* the token's length matters, not just a prefix */
	CU_ASSERT_PTR_NULL(tokencache_get(tc, "tok-a", 4));
	CU_ASSERT_PTR_NULL(tokencache_get(tc, "tok-b", 5));
	/* replacing */
	c.jti = (char *)"j2";
	tokencache_put(tc, "tok-a", 5, &c, NOW + 100);
	CU_ASSERT_EQUAL(tokencache_count(tc), 1);
	CU_ASSERT_STRING_EQUAL(tokencache_get(tc, "tok-a", 5)->jti, "j2");
	tokencache_remove(tc, "tok-a", 5);
	CU_ASSERT_PTR_NULL(tokencache_get(tc, "tok-a", 5));
	CU_ASSERT_EQUAL(tokencache_count(tc), 0);
	tokencache_remove(tc, "tok-a", 5);
	tokencache_free(tc);
	tokencache_free(NULL);
	clock_set_fake(-1, 0);
}

static void
test_deadline(void)
{
	struct tokencache *tc = tokencache_new(4);
	struct tokencache_claims c = claims("j1", NOW + 10);

	clock_set_fake(NOW, 0);
	/* until later than exp is clamped to exp */
	tokencache_put(tc, "t", 1, &c, NOW + 1000);
	CU_ASSERT_PTR_NOT_NULL(tokencache_get(tc, "t", 1));
	clock_advance_fake_ms(9000);
	CU_ASSERT_PTR_NOT_NULL(tokencache_get(tc, "t", 1));
	clock_advance_fake_ms(1000);
	CU_ASSERT_PTR_NULL(tokencache_get(tc, "t", 1));
	CU_ASSERT_EQUAL(tokencache_count(tc), 0);
	/* an earlier until wins over exp (introspection TTL) */
	c.exp = NOW + 1000;
	tokencache_put(tc, "u", 1, &c, NOW + 15);
	clock_advance_fake_ms(5000);
	CU_ASSERT_PTR_NULL(tokencache_get(tc, "u", 1));
	/* no exp: until alone */
	c.exp = 0;
	tokencache_put(tc, "v", 1, &c, NOW + 30);
	CU_ASSERT_PTR_NOT_NULL(tokencache_get(tc, "v", 1));
	/* a deadline already past stores nothing */
	c.exp = NOW;
	tokencache_put(tc, "w", 1, &c, NOW + 100);
	CU_ASSERT_PTR_NULL(tokencache_get(tc, "w", 1));
	tokencache_free(tc);
	clock_set_fake(-1, 0);
}

static void
test_lru_bound(void)
{
	struct tokencache *tc = tokencache_new(3);
	struct tokencache_claims c = claims("j", NOW + 100);
	char tok[32];

	clock_set_fake(NOW, 0);
	tokencache_put(tc, "a", 1, &c, NOW + 100);
	tokencache_put(tc, "b", 1, &c, NOW + 100);
	tokencache_put(tc, "c", 1, &c, NOW + 100);
	CU_ASSERT_PTR_NOT_NULL(tokencache_get(tc, "a", 1)); /* a is now the freshest */
	tokencache_put(tc, "d", 1, &c, NOW + 100);        /* b goes */
	CU_ASSERT_EQUAL(tokencache_count(tc), 3);
	CU_ASSERT_PTR_NULL(tokencache_get(tc, "b", 1));
	CU_ASSERT_PTR_NOT_NULL(tokencache_get(tc, "a", 1));
	CU_ASSERT_PTR_NOT_NULL(tokencache_get(tc, "c", 1));
	CU_ASSERT_PTR_NOT_NULL(tokencache_get(tc, "d", 1));
	tokencache_free(tc);

	/* many entries stay bounded */
	tc = tokencache_new(100);
	for (int i = 0; i < 5000; i++) {
		snprintf(tok, sizeof tok, "token-%d", i);
		tokencache_put(tc, tok, strlen(tok), &c, NOW + 100);
	}
	CU_ASSERT_EQUAL(tokencache_count(tc), 100);
	CU_ASSERT_PTR_NOT_NULL(tokencache_get(tc, "token-4999", 10));
	CU_ASSERT_PTR_NULL(tokencache_get(tc, "token-0", 7));
	tokencache_free(tc);
	clock_set_fake(-1, 0);
}

/* A JWT is keyed by its signature's digest and its signed part: every byte counts. */
static void
test_jwt_parts(void)
{
	struct tokencache *tc = tokencache_new(8);
	struct tokencache_claims c = claims("j1", NOW + 100);
	const char *jwt = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl";
	size_t n = strlen(jwt);
	char other[128], *big;
	size_t bign = 5000;

	clock_set_fake(NOW, 0);
	tokencache_put(tc, jwt, n, &c, NOW + 100);
	CU_ASSERT_PTR_NOT_NULL(tokencache_get(tc, jwt, n));
	/* the same signature under another payload, header or length is a miss */
	snprintf(other, sizeof other, "%s", jwt);
	other[25] = 'X';
	CU_ASSERT_PTR_NULL(tokencache_get(tc, other, n));
	snprintf(other, sizeof other, "%s", jwt);
	other[0] = 'f';
	CU_ASSERT_PTR_NULL(tokencache_get(tc, other, n));
	CU_ASSERT_PTR_NULL(tokencache_get(tc, jwt + 1, n - 1));
	CU_ASSERT_PTR_NULL(tokencache_get(tc, "c2lnbmF0dXJl", 12));      /* the signature alone */
	CU_ASSERT_PTR_NULL(tokencache_get(tc, ".c2lnbmF0dXJl", 13));
	CU_ASSERT_PTR_NULL(tokencache_get(tc, jwt, n - 1));                /* the signature cut */
	/* an opaque token equal to a JWT's signature is another token */
	tokencache_put(tc, "c2lnbmF0dXJl", 12, &c, NOW + 100);
	CU_ASSERT_EQUAL(tokencache_count(tc), 2);
	tokencache_remove(tc, jwt, n);
	CU_ASSERT_PTR_NULL(tokencache_get(tc, jwt, n));
	CU_ASSERT_PTR_NOT_NULL(tokencache_get(tc, "c2lnbmF0dXJl", 12));
	/* a token whose signed part is over the kept size is hashed whole */
	big = malloc(bign);
	CU_ASSERT_PTR_NOT_NULL_FATAL(big);
	memset(big, 'a', bign);
	big[bign - 10] = '.';
	tokencache_put(tc, big, bign, &c, NOW + 100);
	CU_ASSERT_PTR_NOT_NULL(tokencache_get(tc, big, bign));
	big[5] = 'b';
	CU_ASSERT_PTR_NULL(tokencache_get(tc, big, bign));
	free(big);
	tokencache_free(tc);
	clock_set_fake(-1, 0);
}

int
main(void)
{
	static const struct unit_test tests[] = {
		{ "hit and miss", test_hit_miss },
		{ "deadline clamped to exp", test_deadline },
		{ "LRU bound", test_lru_bound },
		{ "a JWT hits byte for byte", test_jwt_parts },
		{ NULL, NULL },
	};

	return unit_run("tokencache", tests);
}
