/*
 * Unit tests for common/ratelimit on the injected clock: burst then refill,
 * Retry-After, independent keys, the LRU bound, and "no limit".
 */
#include "common/ratelimit.h"

#include <stdio.h>

#include "common/clock.h"
#include "test/unit/unit.h"

static void
test_burst_refill_retry(void)
{
	struct ratelimit *rl;
	int retry = 0;

	clock_set_fake(1700000000, 1000000);
	rl = ratelimit_new(2.0, 5, 100); /* 2 per second, 5 at once */
	for (int i = 0; i < 5; i++)
		CU_ASSERT_TRUE(ratelimit_take(rl, "127.0.0.1", &retry));
	CU_ASSERT_FALSE(ratelimit_take(rl, "127.0.0.1", &retry));
	CU_ASSERT_EQUAL(retry, 1);
	CU_ASSERT_TRUE(ratelimit_take(rl, "127.0.0.2", &retry)); /* another key */
	clock_advance_fake_ms(499);
	CU_ASSERT_FALSE(ratelimit_take(rl, "127.0.0.1", &retry));
	clock_advance_fake_ms(2);
	CU_ASSERT_TRUE(ratelimit_take(rl, "127.0.0.1", &retry)); /* one token after 0.5 s */
	CU_ASSERT_FALSE(ratelimit_take(rl, "127.0.0.1", &retry));
	clock_advance_fake_ms(60000); /* refills to the burst, not beyond */
	for (int i = 0; i < 5; i++)
		CU_ASSERT_TRUE(ratelimit_take(rl, "127.0.0.1", &retry));
	CU_ASSERT_FALSE(ratelimit_take(rl, "127.0.0.1", &retry));
	ratelimit_free(rl);

	rl = ratelimit_new(0.1, 1, 10); /* one per 10 s */
	CU_ASSERT_TRUE(ratelimit_take(rl, "", &retry));
	CU_ASSERT_FALSE(ratelimit_take(rl, "", &retry));
	CU_ASSERT_EQUAL(retry, 10);
	ratelimit_free(rl);

	rl = ratelimit_new(0, 1, 10); /* off */
	for (int i = 0; i < 100; i++)
		CU_ASSERT_TRUE(ratelimit_take(rl, "", &retry));
	CU_ASSERT_EQUAL(ratelimit_keys(rl), 0);
	ratelimit_free(rl);
	clock_set_fake(-1, 0);
}

static void
test_bounded_lru(void)
{
	struct ratelimit *rl;
	char key[32];
	int retry;

	clock_set_fake(1700000000, 1000000);
	rl = ratelimit_new(1.0, 1, 3);
	CU_ASSERT_TRUE(ratelimit_take(rl, "a", &retry));
	CU_ASSERT_TRUE(ratelimit_take(rl, "b", &retry));
	CU_ASSERT_TRUE(ratelimit_take(rl, "c", &retry));
	CU_ASSERT_FALSE(ratelimit_take(rl, "a", &retry)); /* a is now the most recent */
	CU_ASSERT_TRUE(ratelimit_take(rl, "d", &retry));  /* replaces b, the least recent */
	CU_ASSERT_EQUAL(ratelimit_keys(rl), 3);
	CU_ASSERT_FALSE(ratelimit_take(rl, "a", &retry)); /* a kept its empty bucket */
	CU_ASSERT_FALSE(ratelimit_take(rl, "c", &retry));
	CU_ASSERT_TRUE(ratelimit_take(rl, "b", &retry)); /* b came back full */
	for (int i = 0; i < 10000; i++) {
		snprintf(key, sizeof key, "k%d", i);
		ratelimit_take(rl, key, &retry);
	}
	CU_ASSERT_EQUAL(ratelimit_keys(rl), 3);
	ratelimit_free(rl);
	clock_set_fake(-1, 0);
}

int
main(void)
{
	static const struct unit_test tests[] = {
		{ "burst, refill and Retry-After", test_burst_refill_retry },
		{ "bounded keys, least recently used replaced", test_bounded_lru },
		{ NULL, NULL },
	};

	return unit_run("ratelimit", tests);
}
