/*
 * The rules a client_id URL must meet before anything is fetched, and the
 * operator's host policy (see cimd_url.h). The URL is attacker-controlled:
 * its length is bounded before anything else, and reasons are static
 * strings that never quote it.
 */
#include "auth/cimd/cimd_url.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/strlist.h"

static bool
cimd_url_hex(char c)
{
	return isxdigit((unsigned char)c) != 0;
}

/* Is the path segment [s, e) "." or "..", literally or percent-encoded? */
static bool
cimd_url_dot_segment(const char *s, const char *e)
{
	size_t dots = 0;

	while (s < e) {
		if (*s == '.') {
			s++;
		} else if (e - s >= 3 && s[0] == '%' && s[1] == '2' &&
		    (s[2] == 'e' || s[2] == 'E')) {
			s += 3;
		} else {
			return false;
		}
		dots++;
	}
	return dots == 1 || dots == 2;
}

/* Check a reg-name host: letters, digits, '-' and non-empty labels of <= 63. */
static int
cimd_url_check_regname(const char *h, size_t n, const char **why)
{
	size_t label = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)h[i];

		if (ch == '.') {
			if (label == 0) {
				*why = "client_id URL host has an empty label";
				return -1;
			}
			label = 0;
			continue;
		}
		if (ch == '%') {
			*why = "client_id URL host must not be percent-encoded";
			return -1;
		}
		if (!isalnum(ch) && ch != '-') {
			*why = "client_id URL host contains an invalid character";
			return -1;
		}
		if (++label > 63) {
			*why = "client_id URL host has a label longer than 63 characters";
			return -1;
		}
	}
	if (label == 0) {
		*why = "client_id URL host must not end with a dot";
		return -1;
	}
	return 0;
}

/* Declared in cimd.h: the cheap test the client registry uses to route a
 * client_id here; uppercase schemes come here too, to be refused. */
bool
cimd_is_url(const char *client_id)
{
	return client_id != NULL && strncasecmp(client_id, "https://", 8) == 0;
}

/* Length, characters, percent-encodings, the scheme and no fragment. */
static int
cimd_url_check_text(const char *url, const char **why)
{
	size_t len;

	if (url == NULL || *url == '\0') {
		*why = "client_id is empty";
		return -1;
	}
	len = strnlen(url, CIMD_URL_MAX + 1);
	if (len > CIMD_URL_MAX) {
		*why = "client_id URL is longer than 2048 characters";
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)url[i];

		if (ch <= 0x20 || ch >= 0x7f || strchr("\\\"<>^`{|}", ch) != NULL) {
			*why = "client_id URL contains a character that must be percent-encoded";
			return -1;
		}
		if (ch == '%' && (!cimd_url_hex(url[i + 1]) || !cimd_url_hex(url[i + 2]))) {
			*why = "client_id URL contains an invalid percent-encoding";
			return -1;
		}
	}
	if (strncmp(url, "https://", 8) != 0) {
		if (strncasecmp(url, "https://", 8) == 0)
			*why = "client_id URL scheme must be lower-case https";
		else
			*why = "client_id URL must use the https scheme";
		return -1;
	}
	if (strchr(url, '#') != NULL) {
		*why = "client_id URL must not contain a fragment";
		return -1;
	}
	return 0;
}

/* The host of the authority [auth, aend): an [IPv6] literal or a reg-name;
 * *hend is where it ends (a port may follow). */
static int
cimd_url_check_host(const char *auth, const char *aend, const char **hend, const char **why)
{
	if (memchr(auth, '@', (size_t)(aend - auth)) != NULL) {
		*why = "client_id URL must not contain userinfo";
		return -1;
	}
	if (aend == auth) {
		*why = "client_id URL has no host";
		return -1;
	}
	if (*auth == '[') {
		const char *e = memchr(auth, ']', (size_t)(aend - auth));

		if (e == NULL || e == auth + 1) {
			*why = "client_id URL has an invalid IPv6 host";
			return -1;
		}
		for (const char *p = auth + 1; p < e; p++) {
			if (!cimd_url_hex(*p) && *p != ':' && *p != '.') {
				*why = "client_id URL has an invalid IPv6 host";
				return -1;
			}
		}
		*hend = e + 1;
		return 0;
	}
	*hend = memchr(auth, ':', (size_t)(aend - auth));
	if (*hend == NULL)
		*hend = aend;
	if (*hend == auth) {
		*why = "client_id URL has no host";
		return -1;
	}
	return cimd_url_check_regname(auth, (size_t)(*hend - auth), why);
}

/* What follows the host up to aend: nothing, or ":" and a port 1-65535. */
static int
cimd_url_check_port(const char *hend, const char *aend, const char **why)
{
	long port = 0;

	if (hend == aend)
		return 0;
	if (*hend != ':' || hend + 1 == aend || aend - hend > 6) {
		*why = "client_id URL has an invalid port";
		return -1;
	}
	for (const char *p = hend + 1; p < aend; p++) {
		if (!isdigit((unsigned char)*p)) {
			*why = "client_id URL has an invalid port";
			return -1;
		}
		port = port * 10 + (*p - '0');
	}
	if (port < 1 || port > 65535) {
		*why = "client_id URL has an invalid port";
		return -1;
	}
	return 0;
}

/* The path from path (up to a query): not empty, not "/", no dot segment. */
static int
cimd_url_check_path(const char *path, const char **why)
{
	const char *pend = path + strcspn(path, "?");

	if (pend == path || (pend == path + 1 && *path == '/')) {
		*why = "client_id URL must have a path other than /";
		return -1;
	}
	for (const char *p = path + 1; p <= pend; p++) {
		const char *seg = p;

		p += strcspn(p, "/?");
		if (p > pend)
			p = pend;
		if (cimd_url_dot_segment(seg, p)) {
			*why = "client_id URL must not contain . or .. path segments";
			return -1;
		}
	}
	return 0;
}

int
cimd_url_check(const char *url, char *host, size_t hostlen, const char **why)
{
	const char *auth, *aend, *hend = NULL;
	size_t hn;

	if (cimd_url_check_text(url, why) != 0)
		return -1;
	auth = url + 8;
	aend = auth + strcspn(auth, "/?");
	if (cimd_url_check_host(auth, aend, &hend, why) != 0 ||
	    cimd_url_check_port(hend, aend, why) != 0)
		return -1;
	hn = (size_t)(hend - auth);
	if (hn >= hostlen || hn >= CIMD_HOST_MAX) {
		*why = "client_id URL host is too long";
		return -1;
	}
	if (cimd_url_check_path(aend, why) != 0)
		return -1;
	for (size_t i = 0; i < hn; i++)
		host[i] = (char)tolower((unsigned char)auth[i]);
	host[hn] = '\0';
	return 0;
}

bool
cimd_host_match(const char *pattern, const char *host)
{
	size_t pl, hl;

	if (strncmp(pattern, "*.", 2) != 0)
		return strcasecmp(pattern, host) == 0;
	pattern++; /* ".example.com" */
	pl = strlen(pattern);
	hl = strlen(host);
	return hl > pl && host[hl - pl - 1] != '.' && strcasecmp(host + hl - pl, pattern) == 0;
}

bool
cimd_host_allowed(const struct strlist *allowed, const struct strlist *denied, const char *host,
    const char **why)
{
	size_t i;

	for (i = 0; denied != NULL && i < denied->n; i++) {
		if (cimd_host_match(denied->v[i], host)) {
			*why = "client metadata document host is denied by policy";
			return false;
		}
	}
	if (allowed == NULL || allowed->n == 0)
		return true;
	for (i = 0; i < allowed->n; i++) {
		if (cimd_host_match(allowed->v[i], host))
			return true;
	}
	*why = "client metadata document host is not in the allowed hosts";
	return false;
}
