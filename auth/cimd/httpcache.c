/*
 * RFC 9111 freshness for a private cache (see httpcache.h). Only the
 * directives that change what a private cache of small documents does are
 * acted on: no-store, no-cache, max-age; Expires/Date/Age. s-maxage and
 * public/private are for shared caches; must-revalidate only restricts
 * serving stale responses, which this cache never does.
 */
#include "auth/cimd/httpcache.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/xalloc.h"

/* Parse delta-seconds ([0-9]+) from [s, e): -1 when empty or not digits;
 * values too large saturate at HTTPCACHE_DELTA_MAX. */
static int64_t
httpcache_delta(const char *s, const char *e)
{
	int64_t v = 0;

	if (s == e)
		return -1;
	for (; s < e; s++) {
		if (!isdigit((unsigned char)*s))
			return -1;
		if (v < HTTPCACHE_DELTA_MAX)
			v = v * 10 + (*s - '0');
	}
	return v > HTTPCACHE_DELTA_MAX ? HTTPCACHE_DELTA_MAX : v;
}

static bool
httpcache_tchar(char c)
{
	return isalnum((unsigned char)c) || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool
httpcache_is_ows(char c)
{
	return c == ' ' || c == '\t';
}

void
httpcache_parse_cache_control(const char *value, struct httpcache_directives *d)
{
	const char *p = value, *name, *nend, *arg, *aend;
	int64_t v;

	memset(d, 0, sizeof *d);
	if (p == NULL)
		return;
	while (*p != '\0') {
		while (*p == ',' || httpcache_is_ows(*p))
			p++;
		if (*p == '\0')
			break;
		name = p;
		while (httpcache_tchar(*p))
			p++;
		nend = p;
		arg = aend = NULL;
		while (httpcache_is_ows(*p))
			p++;
		if (*p == '=') {
			p++;
			while (httpcache_is_ows(*p))
				p++;
			if (*p == '"') {
				arg = ++p;
				while (*p != '\0' && *p != '"') {
					if (*p == '\\' && p[1] != '\0')
						p++;
					p++;
				}
				aend = p;
				if (*p == '"')
					p++;
			} else {
				arg = p;
				while (httpcache_tchar(*p))
					p++;
				aend = p;
			}
		}
		/* Skip anything malformed up to the next directive. */
		while (*p != '\0' && *p != ',')
			p++;
		if (nend == name)
			continue;
		if ((size_t)(nend - name) == 8 && strncasecmp(name, "no-store", 8) == 0) {
			d->no_store = true;
		} else if ((size_t)(nend - name) == 8 && strncasecmp(name, "no-cache", 8) == 0) {
			d->no_cache = true;
		} else if ((size_t)(nend - name) == 7 && strncasecmp(name, "max-age", 7) == 0) {
			v = arg != NULL ? httpcache_delta(arg, aend) : -1;
			/* Invalid, or conflicting duplicates: treat as stale (§4.2.1). */
			if (v < 0 || (d->has_max_age && d->max_age_s != v))
				v = 0;
			d->has_max_age = true;
			d->max_age_s = v;
		}
	}
}

int
httpcache_parse_date(const char *value, int64_t *out_s)
{
	static const char *formats[] = {
		"%a, %d %b %Y %H:%M:%S GMT", /* IMF-fixdate */
		"%A, %d-%b-%y %H:%M:%S GMT", /* RFC 850 */
		"%a %b %e %H:%M:%S %Y",      /* asctime */
	};
	struct tm tm;
	const char *end;
	time_t t;

	if (value == NULL || strlen(value) > 64)
		return -1;
	for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
		memset(&tm, 0, sizeof tm);
		end = strptime(value, formats[i], &tm);
		if (end == NULL)
			continue;
		while (httpcache_is_ows(*end))
			end++;
		if (*end != '\0')
			continue;
		t = timegm(&tm);
		if (t == (time_t)-1)
			continue;
		*out_s = (int64_t)t;
		return 0;
	}
	return -1;
}

/* The first delta-seconds of an Age value, 0 when unreadable. */
static int64_t
httpcache_age(const char *age)
{
	const char *e;
	int64_t v;

	if (age == NULL)
		return 0;
	while (httpcache_is_ows(*age))
		age++;
	e = age;
	while (isdigit((unsigned char)*e))
		e++;
	v = httpcache_delta(age, e);
	return v < 0 ? 0 : v;
}

void
httpcache_lifetime(const char *cache_control, const char *expires, const char *date,
    const char *age, int64_t now_s, const struct httpcache_limits *lim,
    struct httpcache_lifetime *out)
{
	struct httpcache_directives d;
	int64_t ttl_s, exp_s, date_s;

	memset(out, 0, sizeof *out);
	httpcache_parse_cache_control(cache_control, &d);
	out->source = HTTPCACHE_FALLBACK;
	if (d.no_store)
		return;
	out->store = true;
	out->revalidate = d.no_cache;
	if (d.has_max_age) {
		out->source = HTTPCACHE_MAX_AGE;
		ttl_s = d.max_age_s - httpcache_age(age);
	} else if (expires != NULL) {
		out->source = HTTPCACHE_EXPIRES;
		if (date == NULL || httpcache_parse_date(date, &date_s) != 0)
			date_s = now_s;
		if (httpcache_parse_date(expires, &exp_s) != 0)
			ttl_s = 0; /* "0" and other invalid dates are in the past (§5.3) */
		else
			ttl_s = exp_s - date_s - httpcache_age(age);
	} else {
		out->ttl_ms = lim->fallback_ms;
		return;
	}
	if (ttl_s < 0)
		ttl_s = 0;
	if (ttl_s > HTTPCACHE_DELTA_MAX)
		ttl_s = HTTPCACHE_DELTA_MAX;
	out->ttl_ms = ttl_s * 1000;
	if (out->ttl_ms < lim->min_ms)
		out->ttl_ms = lim->min_ms;
	if (out->ttl_ms > lim->max_ms)
		out->ttl_ms = lim->max_ms;
}

char *
httpcache_header_copy(const char *v)
{
	size_t i;

	if (v == NULL)
		return NULL;
	for (i = 0; v[i] != '\0'; i++) {
		if (i >= HTTPCACHE_HEADER_MAX || (unsigned char)v[i] < 0x20 ||
		    (unsigned char)v[i] >= 0x7f)
			return NULL;
	}
	return i == 0 ? NULL : xstrdup(v);
}
