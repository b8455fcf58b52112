/*
 * HTTP caching decisions for a private cache (RFC 9111), as pure functions
 * on header values: how long a response may be reused, whether it may be
 * stored at all, whether it must be revalidated before every use. Used by
 * the CIMD cache; no I/O, no clock (the caller passes "now"), so it is
 * table-tested and fuzzed directly. Header values come from third-party
 * servers: parsing is bounded, overflow-safe and never trusts a value it
 * cannot read (an unreadable max-age or Expires means "already stale").
 */
#ifndef AUTH_HTTPCACHE_H
#define AUTH_HTTPCACHE_H

#include <stdbool.h>
#include <stdint.h>

/* RFC 9111 §1.2.2: a delta-seconds too large to represent is this. */
#define HTTPCACHE_DELTA_MAX 2147483648LL

struct httpcache_limits {
	int64_t fallback_ms; /* lifetime when no header says otherwise (not clamped) */
	int64_t min_ms;      /* clamp of a header-derived lifetime */
	int64_t max_ms;
};

enum httpcache_source {
	HTTPCACHE_FALLBACK, /* neither max-age nor Expires */
	HTTPCACHE_MAX_AGE,
	HTTPCACHE_EXPIRES,
};

struct httpcache_lifetime {
	bool store;      /* false on no-store: use this response once, never cache it */
	bool revalidate; /* no-cache: stored, but revalidated before every use */
	int64_t ttl_ms;  /* freshness lifetime from now (0 when !store) */
	enum httpcache_source source;
};

/* The Cache-Control directives this cache acts on. */
struct httpcache_directives {
	bool no_store;
	bool no_cache;
	bool has_max_age;
	int64_t max_age_s; /* 0 when present but invalid or conflicting */
};

/* Parse a Cache-Control field value (several lines joined with ", "):
 * comma-separated directives, case-insensitive names, token or
 * quoted-string arguments; unknown directives are ignored. NULL is fine. */
void httpcache_parse_cache_control(const char *value, struct httpcache_directives *d);

/* Parse an HTTP-date (IMF-fixdate, RFC 850 or asctime) into epoch seconds;
 * -1 when it is none of them. */
int httpcache_parse_date(const char *value, int64_t *out_s);

/*
 * Decide the lifetime of a response from its Cache-Control, Expires, Date
 * and Age values (each NULL when absent), now as wall-clock seconds:
 * no-store wins; then max-age minus Age; then Expires minus Date (or now)
 * minus Age, an unreadable Expires being in the past; the result is clamped
 * to [min_ms, max_ms]. With neither, fallback_ms.
 */
void httpcache_lifetime(const char *cache_control, const char *expires, const char *date,
    const char *age, int64_t now_s, const struct httpcache_limits *lim,
    struct httpcache_lifetime *out);

#define HTTPCACHE_HEADER_MAX 256 /* longest validator or caching header kept */

/* A copy of a response header value fit to keep and to send back (an ETag
 * in If-None-Match): 1 to HTTPCACHE_HEADER_MAX printable ASCII characters;
 * else NULL (then it is not kept). The caller frees. */
char *httpcache_header_copy(const char *v);

#endif
