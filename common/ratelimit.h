/*
 * Token buckets by key (a client address, a client_id, or "" for one
 * global bucket): each key may take `burst` at once and `per_second` more
 * every second. The table holds at most max_keys buckets; a new key when
 * it is full replaces the least recently used one (which can only make
 * that key's next request more likely to pass: a limiter, not a security
 * table). Time is the injected monotonic clock (common/clock.h).
 */
#ifndef COMMON_RATELIMIT_H
#define COMMON_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>

struct ratelimit;

/* per_second <= 0: no limit (every take passes). */
struct ratelimit *ratelimit_new(double per_second, double burst, size_t max_keys);
void ratelimit_free(struct ratelimit *rl);

/* Take one token from key's bucket: true, or false with the whole seconds
 * to wait (at least 1) in *retry_after_s. */
bool ratelimit_take(struct ratelimit *rl, const char *key, int *retry_after_s);
/* Buckets held. */
size_t ratelimit_keys(const struct ratelimit *rl);

#endif
