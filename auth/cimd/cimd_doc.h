/*
 * The strict validation of a fetched client metadata document into an
 * struct client (the URL rules are cimd_url.h). No network, no
 * clock other than the client's created_at, no state: every function here is
 * a decision on its arguments, so it is table-tested and fuzzed directly.
 * A document is never trusted beyond what the draft and the seed allow.
 */
#ifndef AUTH_CIMD_DOC_H
#define AUTH_CIMD_DOC_H

#include <stdbool.h>
#include <stddef.h>

#include "auth/cimd/cimd_url.h"

struct config;
struct client;
struct keyset;

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
 * Validate the document text fetched from url. On success returns a new
 * client (one reference, is_cimd, client_name, auth method "none" or
 * "private_key_jwt" with its jwks_uri or inline keys, scopes = declared or
 * scopes_supported, unioned with baselineClientScopes). A document with
 * private or symmetric key material anywhere is refused. On failure returns
 * NULL and writes a description naming the rule into err (CIMD_ERR_MAX).
 */
struct client *cimd_doc_validate(const char *url, const char *text, size_t len,
    const struct config *cfg, char *err, size_t errlen);

/*
 * A client's JWKS (fetched from its jwks_uri) as verification keys: strict
 * JSON, no private or symmetric key material in any key, at least one
 * usable public key. NULL with err naming what ("jwks_uri document") and
 * the rule.
 */
struct keyset *cimd_doc_jwks_parse(const char *what, const char *text, size_t len, char *err,
    size_t errlen);

#endif
