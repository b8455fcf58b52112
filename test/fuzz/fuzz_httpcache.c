/*
 * Fuzz auth/httpcache: Cache-Control, HTTP-date and Age values as a third
 * party's server would send them. The input is up to four lines:
 * Cache-Control, Expires, Date, Age (a missing line is an absent header).
 * Besides memory safety, the lifetime must obey its contract: no-store
 * stores nothing, and a header-derived lifetime stays within the clamp.
 */
#include "auth/cimd/httpcache.h"
#include "test/fuzz/fuzz.h"

#define NOW_S 1700000000LL

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct httpcache_limits lim = {
		.fallback_ms = 300000, .min_ms = 30000, .max_ms = 86400000,
	};
	struct httpcache_directives d;
	struct httpcache_lifetime lt;
	char *s = fuzz_str(data, size), *f[4];
	int64_t t;

	/* The whole input as one value of each kind. */
	httpcache_parse_cache_control(s, &d);
	FUZZ_ASSERT(!d.has_max_age || (d.max_age_s >= 0 && d.max_age_s <= HTTPCACHE_DELTA_MAX));
	FUZZ_ASSERT(d.has_max_age || d.max_age_s == 0);
	(void)httpcache_parse_date(s, &t);

	fuzz_fields(s, f, 4);
	httpcache_lifetime(f[0], f[1], f[2], f[3], NOW_S, &lim, &lt);
	httpcache_parse_cache_control(f[0], &d);
	if (d.no_store) {
		FUZZ_ASSERT(!lt.store && lt.ttl_ms == 0);
	} else {
		FUZZ_ASSERT(lt.store && lt.revalidate == d.no_cache);
		if (lt.source == HTTPCACHE_FALLBACK)
			FUZZ_ASSERT(lt.ttl_ms == lim.fallback_ms);
		else
			FUZZ_ASSERT(lt.ttl_ms >= lim.min_ms && lt.ttl_ms <= lim.max_ms);
	}
	free(s);
	return 0;
}
