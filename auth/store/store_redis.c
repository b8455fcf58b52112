/*
 * The Redis backend of the store (see store_backend.h). Not yet built:
 * `storage.type: redis` is refused at start with this line.
 */
#include <stdio.h>

#include "auth/store/store_backend.h"

struct store_backend *
store_redis_new(const struct config *cfg, struct event_base *base, struct evdns_base *dns,
    char *err, size_t errlen)
{
	(void)cfg;
	(void)base;
	(void)dns;
	snprintf(err, errlen, "storage.type redis: the Redis store is not available in this build");
	return NULL;
}
