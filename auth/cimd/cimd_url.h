/*
 * What a client_id URL must be before anything is fetched (lower-case
 * https, a host, a path other than "/", no dot segments, userinfo or
 * fragment, bounded), and the operator's host policy. Pure decisions on
 * their arguments: table-tested and fuzzed directly.
 */
#ifndef AUTH_CIMD_URL_H
#define AUTH_CIMD_URL_H

#include <stdbool.h>
#include <stddef.h>

struct strlist;

#define CIMD_URL_MAX 2048
#define CIMD_HOST_MAX 256

/* Is this client_id a CIMD URL at all (https://...)? Cheap, no validation. */
bool cimd_is_url(const char *client_id);

/*
 * Check a client_id URL against the rules that need no fetch: lower-case
 * https scheme, a host (reg-name or [IPv6]), an optional port, a path that
 * is neither empty nor "/", no "." or ".." segment (also percent-encoded),
 * no userinfo, no fragment, <= CIMD_URL_MAX printable ASCII characters.
 * Returns 0 and the host, lower-cased, in host (>= CIMD_HOST_MAX bytes), or
 * -1 with a static reason in *why.
 */
int cimd_url_check(const char *url, char *host, size_t hostlen, const char **why);

/* Does a host-policy pattern ("example.com" or "*.example.com") match host?
 * Case-insensitive; a wildcard matches one or more labels, not the apex. */
bool cimd_host_match(const char *pattern, const char *host);

/* The operator's host policy: denied wins, then an empty allowed list admits
 * every host. Returns true when host may serve documents; else *why. */
bool cimd_host_allowed(const struct strlist *allowed, const struct strlist *denied,
    const char *host, const char **why);

#endif
