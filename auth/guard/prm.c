/*
 * Protected Resource Metadata (see prm.h). The document is built once at
 * start-up from the configuration; the handler only copies bytes. It is
 * public information, so it is served to any origin (CORS "*", no
 * credentials) and may be cached by clients and intermediaries for an hour.
 */
#include "auth/guard/prm.h"

#include <event2/http.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/xalloc.h"
#include "config/config.h"
#include "proxy/req.h"

#define PRM_CACHE_CONTROL "public, max-age=3600"
#define PRM_CORS_HEADERS "Authorization, Content-Type, MCP-Protocol-Version"

struct prm {
	char *resource;
	char *path;     /* resource path, "" for the origin itself */
	char *alt_path; /* the path without server.publicPathPrefix, or NULL */
	char *metadata_url;
	char *scope; /* challenge scope, or NULL */
	char *document;
};

int
prm_split_url(const char *url, char **origin, char **path)
{
	const char *p, *auth, *end;
	size_t plen;

	*origin = *path = NULL;
	if (url == NULL)
		return -1;
	if (strncasecmp(url, "https://", 8) == 0)
		auth = url + 8;
	else if (strncasecmp(url, "http://", 7) == 0)
		auth = url + 7;
	else
		return -1;
	end = auth + strcspn(auth, "/?#");
	if (end == auth)
		return -1;
	p = end;
	plen = *p == '/' ? strcspn(p, "?#") : 0;
	*origin = xstrndup(url, (size_t)(end - url));
	*path = xstrndup(p, plen);
	/* The origin itself is the resource: no path to insert. */
	if (strcmp(*path, "/") == 0)
		(*path)[0] = '\0';
	return 0;
}

/* Append the scopes of l not yet in out, but skip (unless NULL) one. */
static void
prm_scope_union(struct strlist *out, const struct strlist *l, const char *skip)
{
	for (size_t i = 0; i < l->n; i++) {
		if ((skip == NULL || strcmp(l->v[i], skip) != 0) && !strlist_contains(out, l->v[i]))
			strlist_add(out, l->v[i]);
	}
}

struct prm *
prm_new(const struct config *cfg)
{
	struct prm *p = NULL;
	struct strlist scopes = { 0 };
	const char *issuer;
	char *origin = NULL, *path = NULL, *iss = NULL;
	const char *prefix = cfg->server.public_path_prefix;
	json_object *doc, *arr;
	size_t n;

	if (prm_split_url(cfg->server.resource_url, &origin, &path) != 0)
		goto out;
	issuer = cfg->auth.mode == AUTH_MODE_OIDC ? cfg->auth.oidc.issuer : cfg->eas.issuer;
	p = xcalloc(1, sizeof *p);
	p->resource = xstrdup(cfg->server.resource_url);
	p->path = path;
	path = NULL;
	p->metadata_url = xasprintf("%s%s%s", origin, PRM_WELL_KNOWN, p->path);
	n = prefix != NULL ? strlen(prefix) : 0;
	if (n > 0 && strncmp(p->path, prefix, n) == 0 && p->path[n] == '/')
		p->alt_path = xstrdup(p->path + n);

	prm_scope_union(&scopes, &cfg->auth.required_scopes, NULL);
	/* offline_access asks the AS for a refresh token, which is no resource
	 * requirement: the MCP authorization spec (2026-07-28) keeps it out of
	 * the challenge and scopes_supported here; the AS metadata lists it, and
	 * the AS issues refresh tokens to clients that may have it. */
	if (cfg->auth.mode == AUTH_MODE_EMBEDDED)
		prm_scope_union(&scopes, &cfg->eas.scopes_supported, "offline_access");
	/* The challenge's scope: what is required, else all we know of;
	 * NULL (no scope parameter) when there is nothing. */
	if (cfg->auth.required_scopes.n > 0)
		p->scope = strlist_join(&cfg->auth.required_scopes);
	else if (scopes.n > 0)
		p->scope = strlist_join(&scopes);

	doc = json_object_new_object();
	json_object_object_add(doc, "resource", json_object_new_string(p->resource));
	arr = json_object_new_array();
	if (issuer != NULL) {
		/* The AS names itself without a trailing slash (as_issuer()). */
		iss = xstrdup(issuer);
		if (cfg->auth.mode == AUTH_MODE_EMBEDDED && strlen(iss) > 1 &&
		    iss[strlen(iss) - 1] == '/')
			iss[strlen(iss) - 1] = '\0';
		json_object_array_add(arr, json_object_new_string(iss));
	}
	json_object_object_add(doc, "authorization_servers", arr);
	arr = json_object_new_array();
	json_object_array_add(arr, json_object_new_string("header"));
	json_object_object_add(doc, "bearer_methods_supported", arr);
	if (scopes.n > 0) {
		arr = json_object_new_array();
		for (size_t i = 0; i < scopes.n; i++)
			json_object_array_add(arr, json_object_new_string(scopes.v[i]));
		json_object_object_add(doc, "scopes_supported", arr);
	}
	p->document = xstrdup(json_object_to_json_string_ext(doc,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(doc);
out:
	strlist_dispose(&scopes);
	free(origin);
	free(path);
	free(iss);
	return p;
}

void
prm_free(struct prm *p)
{
	if (p == NULL)
		return;
	free(p->resource);
	free(p->path);
	free(p->alt_path);
	free(p->metadata_url);
	free(p->scope);
	free(p->document);
	free(p);
}

void
prm_register(struct prm *p, const struct req_router *router)
{
	/* One prefix route: the handler checks that a sub-path names our
	 * resource, so metadata for other paths is a 404, not ours. */
	req_route(router, PRM_WELL_KNOWN, true, "prm", prm_handler, p);
}

const char *
prm_metadata_url(const struct prm *p)
{
	return p->metadata_url;
}

const char *
prm_challenge_scope(const struct prm *p)
{
	return p->scope;
}

const char *
prm_document(const struct prm *p)
{
	return p->document;
}

/* Does the request path name our resource's metadata? */
static int
prm_path_matches(const struct prm *p, const char *path)
{
	const char *rest;

	if (strncmp(path, PRM_WELL_KNOWN, strlen(PRM_WELL_KNOWN)) != 0)
		return 0;
	rest = path + strlen(PRM_WELL_KNOWN);
	if (*rest == '\0' || strcmp(rest, "/") == 0)
		return 1;
	if (strcmp(rest, p->path) == 0)
		return 1;
	return p->alt_path != NULL && strcmp(rest, p->alt_path) == 0;
}

void
prm_handler(struct req *sr, void *arg)
{
	struct prm *p = arg;
	enum h1_method cmd;

	if (req_gone(sr))
		return;
	if (!prm_path_matches(p, req_path(sr))) {
		req_reply_json(sr, 404, "{\"error\":\"not_found\"}");
		return;
	}
	cmd = req_method(sr);
	req_add_header(sr, "Access-Control-Allow-Origin", "*");
	if (cmd == H1_OPTIONS) {
		req_add_header(sr, "Access-Control-Allow-Methods", "GET, OPTIONS");
		req_add_header(sr, "Access-Control-Allow-Headers", PRM_CORS_HEADERS);
		req_add_header(sr, "Access-Control-Max-Age", "86400");
		req_reply(sr, 204, NULL, NULL, 0);
		return;
	}
	if (cmd != H1_GET && cmd != H1_HEAD) {
		req_add_header(sr, "Allow", "GET, HEAD, OPTIONS");
		req_reply_oauth_error(sr, 405, "invalid_request",
		    "the protected resource metadata is read with GET");
		return;
	}
	req_add_header(sr, "Cache-Control", PRM_CACHE_CONTROL);
	req_reply(sr, 200, "application/json", p->document, strlen(p->document));
}
