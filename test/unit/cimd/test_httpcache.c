/*
 * HTTP caching decisions (RFC 9111, private cache): Cache-Control parsing
 * and the lifetime of a response for every combination the CIMD cache
 * meets, as tables. Pure functions: "now" is a parameter.
 */
#include <stdio.h>
#include <string.h>

#include "auth/cimd/httpcache.h"
#include "test/unit/unit.h"

#define S 1000LL
static const struct httpcache_limits lim = { .fallback_ms = 300 * S, .min_ms = 30 * S,
	.max_ms = 86400 * S };
/* Sun, 06 Nov 1994 08:49:37 GMT */
#define NOW 784111777LL

struct lt_case {
	const char *cc, *expires, *date, *age;
	bool store, revalidate;
	int64_t ttl_ms;
	enum httpcache_source source;
};

static const struct lt_case lt_cases[] = {
	/* Nothing: fallback, not clamped. */
	{ NULL, NULL, NULL, NULL, true, false, 300 * S, HTTPCACHE_FALLBACK },
	{ "", NULL, NULL, NULL, true, false, 300 * S, HTTPCACHE_FALLBACK },
	{ "public", NULL, NULL, NULL, true, false, 300 * S, HTTPCACHE_FALLBACK },
	{ "private, must-revalidate", NULL, NULL, NULL, true, false, 300 * S, HTTPCACHE_FALLBACK },
	{ "s-maxage=9", NULL, NULL, NULL, true, false, 300 * S, HTTPCACHE_FALLBACK },
	/* max-age */
	{ "max-age=600", NULL, NULL, NULL, true, false, 600 * S, HTTPCACHE_MAX_AGE },
	{ "MAX-AGE=600", NULL, NULL, NULL, true, false, 600 * S, HTTPCACHE_MAX_AGE },
	{ "public, max-age=3600", NULL, NULL, NULL, true, false, 3600 * S, HTTPCACHE_MAX_AGE },
	{ "max-age = 120", NULL, NULL, NULL, true, false, 120 * S, HTTPCACHE_MAX_AGE },
	{ "max-age=\"120\"", NULL, NULL, NULL, true, false, 120 * S, HTTPCACHE_MAX_AGE },
	{ "max-age=600", NULL, NULL, "100", true, false, 500 * S, HTTPCACHE_MAX_AGE },
	{ "max-age=600", NULL, NULL, "1000", true, false, 30 * S, HTTPCACHE_MAX_AGE },
	{ "max-age=600", NULL, NULL, "junk", true, false, 600 * S, HTTPCACHE_MAX_AGE },
	/* clamped to [min, max] */
	{ "max-age=0", NULL, NULL, NULL, true, false, 30 * S, HTTPCACHE_MAX_AGE },
	{ "max-age=5", NULL, NULL, NULL, true, false, 30 * S, HTTPCACHE_MAX_AGE },
	{ "max-age=31536000", NULL, NULL, NULL, true, false, 86400 * S, HTTPCACHE_MAX_AGE },
	{ "max-age=99999999999999999999999", NULL, NULL, NULL, true, false, 86400 * S,
	    HTTPCACHE_MAX_AGE },
	/* invalid / conflicting max-age: stale (then clamped) */
	{ "max-age=-5", NULL, NULL, NULL, true, false, 30 * S, HTTPCACHE_MAX_AGE },
	{ "max-age=abc", NULL, NULL, NULL, true, false, 30 * S, HTTPCACHE_MAX_AGE },
	{ "max-age", NULL, NULL, NULL, true, false, 30 * S, HTTPCACHE_MAX_AGE },
	{ "max-age=60, max-age=3600", NULL, NULL, NULL, true, false, 30 * S, HTTPCACHE_MAX_AGE },
	{ "max-age=600, max-age=600", NULL, NULL, NULL, true, false, 600 * S, HTTPCACHE_MAX_AGE },
	/* max-age wins over Expires */
	{ "max-age=600", "Sun, 06 Nov 1994 10:49:37 GMT", NULL, NULL, true, false, 600 * S,
	    HTTPCACHE_MAX_AGE },
	/* unknown and look-alike directives */
	{ "x-max-age=600", NULL, NULL, NULL, true, false, 300 * S, HTTPCACHE_FALLBACK },
	{ "foo=\"a,max-age=1\", max-age=900", NULL, NULL, NULL, true, false, 900 * S,
	    HTTPCACHE_MAX_AGE },
	/* no-store: use once */
	{ "no-store", NULL, NULL, NULL, false, false, 0, HTTPCACHE_FALLBACK },
	{ "No-Store, max-age=600", NULL, NULL, NULL, false, false, 0, HTTPCACHE_FALLBACK },
	{ "max-age=600,no-store", NULL, NULL, NULL, false, false, 0, HTTPCACHE_FALLBACK },
	{ "no-cache, no-store", NULL, NULL, NULL, false, false, 0, HTTPCACHE_FALLBACK },
	/* no-cache: stored, revalidated every time */
	{ "no-cache", NULL, NULL, NULL, true, true, 300 * S, HTTPCACHE_FALLBACK },
	{ "no-cache=\"set-cookie\"", NULL, NULL, NULL, true, true, 300 * S, HTTPCACHE_FALLBACK },
	{ "no-cache, max-age=600", NULL, NULL, NULL, true, true, 600 * S, HTTPCACHE_MAX_AGE },
	/* Expires, relative to Date, else now */
	{ NULL, "Sun, 06 Nov 1994 09:49:37 GMT", NULL, NULL, true, false, 3600 * S,
	    HTTPCACHE_EXPIRES },
	{ NULL, "Sun, 06 Nov 1994 09:49:37 GMT", "Sun, 06 Nov 1994 09:39:37 GMT", NULL, true, false,
	    600 * S, HTTPCACHE_EXPIRES },
	{ NULL, "Sun, 06 Nov 1994 09:49:37 GMT", "Sun, 06 Nov 1994 09:39:37 GMT", "60", true, false,
	    540 * S, HTTPCACHE_EXPIRES },
	{ NULL, "Sun, 06 Nov 1994 09:49:37 GMT", "garbage", NULL, true, false, 3600 * S,
	    HTTPCACHE_EXPIRES },
	{ NULL, "Sunday, 06-Nov-94 09:49:37 GMT", NULL, NULL, true, false, 3600 * S,
	    HTTPCACHE_EXPIRES },
	{ NULL, "Sun Nov  6 09:49:37 1994", NULL, NULL, true, false, 3600 * S, HTTPCACHE_EXPIRES },
	{ NULL, "Mon, 06 Nov 1995 08:49:37 GMT", NULL, NULL, true, false, 86400 * S,
	    HTTPCACHE_EXPIRES },
	/* past, "0" and invalid Expires: stale, clamped to min */
	{ NULL, "Sun, 06 Nov 1994 07:49:37 GMT", NULL, NULL, true, false, 30 * S, HTTPCACHE_EXPIRES },
	{ NULL, "0", NULL, NULL, true, false, 30 * S, HTTPCACHE_EXPIRES },
	{ NULL, "-1", NULL, NULL, true, false, 30 * S, HTTPCACHE_EXPIRES },
	{ NULL, "", NULL, NULL, true, false, 30 * S, HTTPCACHE_EXPIRES },
	{ NULL, "Sun, 06 Nov 1994 09:49:37 GMT trailing", NULL, NULL, true, false, 30 * S,
	    HTTPCACHE_EXPIRES },
	{ "no-cache", "0", NULL, NULL, true, true, 30 * S, HTTPCACHE_EXPIRES },
};

static void
test_lifetime_table(void)
{
	struct httpcache_lifetime out;

	for (size_t i = 0; i < sizeof lt_cases / sizeof lt_cases[0]; i++) {
		const struct lt_case *t = &lt_cases[i];

		httpcache_lifetime(t->cc, t->expires, t->date, t->age, NOW, &lim, &out);
		if (out.store != t->store || out.revalidate != t->revalidate ||
		    out.ttl_ms != t->ttl_ms || out.source != t->source)
			fprintf(stderr, "case %zu cc=%s exp=%s date=%s age=%s: store %d reval %d "
			    "ttl %lld source %d\n", i, t->cc ? t->cc : "-",
			    t->expires ? t->expires : "-", t->date ? t->date : "-",
			    t->age ? t->age : "-", out.store, out.revalidate,
			    (long long)out.ttl_ms, out.source);
		CU_ASSERT_EQUAL(out.store, t->store);
		CU_ASSERT_EQUAL(out.revalidate, t->revalidate);
		CU_ASSERT_EQUAL(out.ttl_ms, t->ttl_ms);
		CU_ASSERT_EQUAL(out.source, t->source);
	}
}

struct date_case {
	const char *text;
	int ok;
	int64_t secs;
};

static const struct date_case date_cases[] = {
	{ "Sun, 06 Nov 1994 08:49:37 GMT", 0, NOW },
	{ "Sunday, 06-Nov-94 08:49:37 GMT", 0, NOW },
	{ "Sun Nov  6 08:49:37 1994", 0, NOW },
	{ "Thu, 01 Jan 1970 00:00:00 GMT", 0, 0 },
	{ "Sun, 06 Nov 1994 08:49:37", -1, 0 },
	{ "Sun, 06 Nov 1994 08:49:37 UTC", -1, 0 },
	{ "1994-11-06T08:49:37Z", -1, 0 },
	{ "0", -1, 0 },
	{ "", -1, 0 },
	{ "Sun, 06 Nov 1994 08:49:37 GMTxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", -1,
	    0 },
};

static void
test_dates(void)
{
	for (size_t i = 0; i < sizeof date_cases / sizeof date_cases[0]; i++) {
		int64_t v = -12345;
		int rc = httpcache_parse_date(date_cases[i].text, &v);

		if (rc != date_cases[i].ok || (rc == 0 && v != date_cases[i].secs))
			fprintf(stderr, "date \"%s\": rc %d v %lld\n", date_cases[i].text, rc,
			    (long long)v);
		CU_ASSERT_EQUAL(rc, date_cases[i].ok);
		if (rc == 0)
			CU_ASSERT_EQUAL(v, date_cases[i].secs);
	}
	CU_ASSERT_EQUAL(httpcache_parse_date(NULL, NULL), -1);
}

static void
test_directives(void)
{
	struct httpcache_directives d;

	httpcache_parse_cache_control(NULL, &d);
	CU_ASSERT_FALSE(d.no_store || d.no_cache || d.has_max_age);
	httpcache_parse_cache_control(",,, ,", &d);
	CU_ASSERT_FALSE(d.no_store || d.no_cache || d.has_max_age);
	httpcache_parse_cache_control("no-storex, no-cach, max-ag=5", &d);
	CU_ASSERT_FALSE(d.no_store || d.no_cache || d.has_max_age);
	httpcache_parse_cache_control("\"unterminated, max-age=5", &d);
	CU_ASSERT_TRUE(d.has_max_age);
	CU_ASSERT_EQUAL(d.max_age_s, 5);
	httpcache_parse_cache_control("a=\"unterminated, max-age=5", &d);
	CU_ASSERT_FALSE(d.has_max_age);
	httpcache_parse_cache_control("max-age=10\t,\tno-cache", &d);
	CU_ASSERT_TRUE(d.has_max_age && d.no_cache && !d.no_store);
	CU_ASSERT_EQUAL(d.max_age_s, 10);
	httpcache_parse_cache_control("max-age=2147483649", &d);
	CU_ASSERT_EQUAL(d.max_age_s, HTTPCACHE_DELTA_MAX);
}

static const struct unit_test tests[] = {
	{ "lifetime table", test_lifetime_table },
	{ "http dates", test_dates },
	{ "directives", test_directives },
	{ NULL, NULL },
};

int
main(void)
{
	return unit_run("httpcache", tests);
}
