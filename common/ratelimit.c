/*
 * Keyed token buckets (see ratelimit.h): a chained hash table under the
 * keyed hash (common/hash.h) so that chosen keys cannot be aimed at one
 * bucket, with an LRU list for replacement when full.
 */
#include "common/ratelimit.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "common/clock.h"
#include "common/hash.h"
#include "common/xalloc.h"

struct rl_bucket {
	char *key;
	uint64_t hash;
	double tokens;
	int64_t refill_ms;
	struct rl_bucket *next; /* chain */
	TAILQ_ENTRY(rl_bucket) lru;
};

struct ratelimit {
	double per_second;
	double burst;
	size_t max_keys;
	struct rl_bucket **buckets;
	size_t nbuckets; /* a power of two, >= max_keys */
	size_t n;
	TAILQ_HEAD(rl_bucket_lru, rl_bucket) lru; /* most recently used first */
};

struct ratelimit *
ratelimit_new(double per_second, double burst, size_t max_keys)
{
	struct ratelimit *rl = xcalloc(1, sizeof *rl);

	rl->per_second = per_second;
	rl->burst = burst < 1 ? 1 : burst;
	rl->max_keys = max_keys < 1 ? 1 : max_keys;
	for (rl->nbuckets = 16; rl->nbuckets < rl->max_keys;)
		rl->nbuckets *= 2;
	rl->buckets = xcalloc(rl->nbuckets, sizeof *rl->buckets);
	TAILQ_INIT(&rl->lru);
	return rl;
}

static void
rl_remove(struct ratelimit *rl, struct rl_bucket *b)
{
	struct rl_bucket **pp = &rl->buckets[b->hash & (rl->nbuckets - 1)];

	while (*pp != b)
		pp = &(*pp)->next;
	*pp = b->next;
	TAILQ_REMOVE(&rl->lru, b, lru);
	rl->n--;
	free(b->key);
	free(b);
}

void
ratelimit_free(struct ratelimit *rl)
{
	struct rl_bucket *b;

	if (rl == NULL)
		return;
	while ((b = TAILQ_FIRST(&rl->lru)) != NULL)
		rl_remove(rl, b);
	free(rl->buckets);
	free(rl);
}

size_t
ratelimit_keys(const struct ratelimit *rl)
{
	return rl->n;
}

/* key's bucket, made (full) when new. */
static struct rl_bucket *
rl_bucket(struct ratelimit *rl, const char *key, int64_t now)
{
	uint64_t h = hash_str(key);
	struct rl_bucket *b;

	for (b = rl->buckets[h & (rl->nbuckets - 1)]; b != NULL; b = b->next) {
		if (b->hash == h && strcmp(b->key, key) == 0) {
			TAILQ_REMOVE(&rl->lru, b, lru);
			TAILQ_INSERT_HEAD(&rl->lru, b, lru);
			return b;
		}
	}
	if (rl->n >= rl->max_keys)
		rl_remove(rl, TAILQ_LAST(&rl->lru, rl_bucket_lru));
	b = xcalloc(1, sizeof *b);
	b->key = xstrdup(key);
	b->hash = h;
	b->tokens = rl->burst;
	b->refill_ms = now;
	b->next = rl->buckets[h & (rl->nbuckets - 1)];
	rl->buckets[h & (rl->nbuckets - 1)] = b;
	TAILQ_INSERT_HEAD(&rl->lru, b, lru);
	rl->n++;
	return b;
}

bool
ratelimit_take(struct ratelimit *rl, const char *key, int *retry_after_s)
{
	int64_t now = clock_mono_ms();
	struct rl_bucket *b;

	if (rl->per_second <= 0)
		return true;
	b = rl_bucket(rl, key, now);
	if (now > b->refill_ms) {
		b->tokens += (double)(now - b->refill_ms) / 1000.0 * rl->per_second;
		if (b->tokens > rl->burst)
			b->tokens = rl->burst;
	}
	b->refill_ms = now;
	if (b->tokens >= 1.0) {
		b->tokens -= 1.0;
		return true;
	}
	*retry_after_s = (int)ceil((1.0 - b->tokens) / rl->per_second);
	if (*retry_after_s < 1)
		*retry_after_s = 1;
	return false;
}
