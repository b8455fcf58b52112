/*
 * The pure half of CIMD: the rules a client_id URL must meet before anything
 * is fetched, the operator's host policy, and the strict validation of a
 * fetched client metadata document into an oauth_client. No network, no
 * clock other than the client's created_at, no state: every function here is
 * a decision on its arguments, so it is table-tested and fuzzed directly.
 * A document is never trusted beyond what the draft and the seed allow.
 */
#ifndef AUTH_CIMD_DOC_H
#define AUTH_CIMD_DOC_H

#include <stdbool.h>
#include <stddef.h>

struct config;
struct oauth_client;
struct strlist;

#define CIMD_URL_MAX 2048
#define CIMD_HOST_MAX 256
#define CIMD_REDIRECT_URIS_MAX 16
#define CIMD_GRANT_TYPES_MAX 16
#define CIMD_CLIENT_NAME_MAX 256
#define CIMD_SCOPE_MAX 1024
#define CIMD_SCOPES_MAX 32
#define CIMD_STRING_MAX 2048 /* any other string member */
#define CIMD_ARRAY_MAX 32    /* any other array member */
#define CIMD_JSON_DEPTH 8
#define CIMD_ERR_MAX 256

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

/*
 * Validate the document text fetched from url. On success returns a new
 * client (one reference, is_cimd, auth method "none", scopes = declared or
 * scopes_supported, unioned with baselineClientScopes). On failure returns
 * NULL and writes a description naming the rule into err (CIMD_ERR_MAX).
 */
struct oauth_client *cimd_doc_validate(const char *url, const char *text, size_t len,
    const struct config *cfg, char *err, size_t errlen);

#endif
