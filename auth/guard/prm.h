/*
 * OAuth 2.0 Protected Resource Metadata (RFC 9728) for the MCP endpoint:
 * the document that tells a client which authorization server issues
 * tokens for server.resourceUrl, served at /.well-known/oauth-protected-
 * resource and at its path-inserted form (…/oauth-protected-resource/mcp
 * for a resource at /mcp), readable cross-origin (CORS) and cacheable.
 * The guard names the same URL in every 401 (RFC 9728 §5.1). It must never
 * serve metadata for another resource than the configured one.
 */
#ifndef AUTH_PRM_H
#define AUTH_PRM_H

struct config;
struct req_router;
struct req;
struct prm;

#define PRM_WELL_KNOWN "/.well-known/oauth-protected-resource"

/* Build the document from cfg: the issuer is embeddedAuthServer.issuer
 * (auth.mode embedded) or auth.oidc.issuer (oidc). NULL when
 * server.resourceUrl is missing or not an absolute http(s) URL. */
struct prm *prm_new(const struct config *cfg);
void prm_free(struct prm *p);

/* Mount the metadata routes (root and path-inserted form) on srv. */
void prm_register(struct prm *p, const struct req_router *router);
/* The route handler (GET/HEAD the document, OPTIONS preflight, else 405). */
void prm_handler(struct req *sr, void *prm);

/* "<origin of resourceUrl>/.well-known/oauth-protected-resource<path>". */
const char *prm_metadata_url(const struct prm *p);
/* The scope a client should ask for (the WWW-Authenticate scope
 * parameter): auth.requiredScopes, else (embedded) the advertised scopes;
 * NULL when there is nothing to say. */
const char *prm_challenge_scope(const struct prm *p);
/* The JSON document served. */
const char *prm_document(const struct prm *p);

/* Split an absolute http(s) URL into its origin and its path (""
 * when it has none; query and fragment dropped). New strings; -1 when the
 * URL is not absolute http(s). */
int prm_split_url(const char *url, char **origin, char **path);

#endif
