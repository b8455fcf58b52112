/*
 * RFC 7591 registration metadata validation (see dcr.h). Strict where it
 * matters for security (redirect URIs, auth methods, grant and response
 * types, scopes), tolerant of informational members it does not use, which
 * are type-checked and bounded but not stored.
 */
#include "auth/registry/dcr.h"

#include <json-c/json.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/client/client.h"
#include "common/random.h"
#include "common/clock.h"
#include "common/scope.h"
#include "common/xalloc.h"
#include "config/config.h"

#define DCR_JSON_DEPTH 8

static int
dcr_fail(struct dcr_result *res, const char *error, const char *fmt, const char *arg)
{
	res->error = error;
	snprintf(res->desc, sizeof res->desc, fmt, arg != NULL ? arg : "");
	return -1;
}

/* A JSON array of strings into l, bounded; -1 with a reason. */
static int
dcr_string_array(json_object *a, size_t max, struct strlist *l, const char **why)
{
	size_t n;

	if (!json_object_is_type(a, json_type_array)) {
		*why = "must be an array of strings";
		return -1;
	}
	n = json_object_array_length(a);
	if (n > max) {
		*why = "has too many elements";
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		json_object *s = json_object_array_get_idx(a, i);

		if (!json_object_is_type(s, json_type_string) ||
		    (size_t)json_object_get_string_len(s) > DCR_MAX_STRING ||
		    strlen(json_object_get_string(s)) != (size_t)json_object_get_string_len(s)) {
			*why = "must be an array of strings";
			return -1;
		}
		if (!strlist_contains(l, json_object_get_string(s)))
			strlist_add(l, json_object_get_string(s));
	}
	return 0;
}

/* Are the n bytes at p all JSON whitespace? (Never reads past n.) */
static bool
dcr_only_space(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n')
			return false;
	}
	return true;
}

/* The body as one strict JSON object (bounded size and depth), or NULL. */
static json_object *
dcr_parse(const char *body, size_t len, struct dcr_result *res)
{
	struct json_tokener *tok;
	json_object *doc = NULL;

	if (len > DCR_MAX_BODY) {
		dcr_fail(res, "invalid_client_metadata", "the request body exceeds 64 KiB%s", NULL);
		return NULL;
	}
	tok = json_tokener_new_ex(DCR_JSON_DEPTH);
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	doc = json_tokener_parse_ex(tok, body, (int)len);
	if (doc == NULL || json_tokener_get_error(tok) != json_tokener_success ||
	    !dcr_only_space(body + tok->char_offset, len - (size_t)tok->char_offset) ||
	    !json_object_is_type(doc, json_type_object)) {
		dcr_fail(res, "invalid_client_metadata", "the request body is not a JSON object%s",
		    NULL);
		json_object_put(doc);
		doc = NULL;
	}
	json_tokener_free(tok);
	return doc;
}

/* redirect_uris: 1-10 valid URIs. */
static int
dcr_redirect_uris(json_object *doc, struct client *c, struct dcr_result *res)
{
	json_object *v;
	const char *why;

	if (!json_object_object_get_ex(doc, "redirect_uris", &v)) {
		dcr_fail(res, "invalid_redirect_uri", "redirect_uris is required%s", NULL);
		return -1;
	}
	if (dcr_string_array(v, DCR_MAX_REDIRECT_URIS, &c->redirect_uris, &why) != 0) {
		dcr_fail(res, "invalid_redirect_uri", "redirect_uris %s (at most 10)", why);
		return -1;
	}
	if (c->redirect_uris.n == 0) {
		dcr_fail(res, "invalid_redirect_uri", "redirect_uris must not be empty%s", NULL);
		return -1;
	}
	for (size_t i = 0; i < c->redirect_uris.n; i++) {
		enum redirect_uri_kind kind;

		if (client_redirect_uri_check(c->redirect_uris.v[i], true, &kind, &why) != 0) {
			dcr_fail(res, "invalid_redirect_uri", "%s", why);
			return -1;
		}
	}
	return 0;
}

/* Is uri's host localhost or a loopback address? */
static bool
dcr_loopback_host(const char *uri)
{
	static const char *const hosts[] = { "localhost", "127.0.0.1", "[::1]", NULL };
	const char *h = strstr(uri, "://");
	size_t n;

	if (h == NULL)
		return false;
	h += 3;
	for (const char *const *p = hosts; *p != NULL; p++) {
		n = strlen(*p);
		if (strncasecmp(h, *p, n) == 0 && (h[n] == '\0' || h[n] == ':' || h[n] == '/'))
			return true;
	}
	return false;
}

/* application_type (OpenID Connect Registration §2, asked for by the MCP
 * authorization spec of 2026-07-28): "web" clients redirect to https on a
 * non-local host only; "native" ones to loopback http, a private-use scheme
 * or a claimed https URL (RFC 8252). Absent, nothing more is checked (the
 * OIDC default "web" would refuse the loopback redirects of clients that
 * registered before the parameter existed). */
static int
dcr_application_type(json_object *doc, struct client *c, struct dcr_result *res)
{
	json_object *v;
	const char *t, *why;

	if (!json_object_object_get_ex(doc, "application_type", &v))
		return 0;
	t = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
	if (strcmp(t, "native") != 0 && strcmp(t, "web") != 0) {
		dcr_fail(res, "invalid_client_metadata",
		    "application_type must be \"native\" or \"web\"%s", NULL);
		return -1;
	}
	c->application_type = xstrdup(t);
	if (strcmp(t, "native") == 0)
		return 0;
	for (size_t i = 0; i < c->redirect_uris.n; i++) {
		enum redirect_uri_kind kind;

		if (client_redirect_uri_check(c->redirect_uris.v[i], true, &kind, &why) != 0 ||
		    kind != REDIRECT_URI_HTTPS || dcr_loopback_host(c->redirect_uris.v[i])) {
			dcr_fail(res, "invalid_redirect_uri",
			    "a web application's redirect_uris must be https on a host other than "
			    "localhost (application_type native is for loopback and private-use "
			    "schemes)%s",
			    NULL);
			return -1;
		}
	}
	return 0;
}

/* token_endpoint_auth_method: none, or client_secret_* when confidential
 * registration is allowed. *confidential says which. */
static int
dcr_auth_method(json_object *doc, const struct config *cfg, struct client *c, bool *confidential,
    struct dcr_result *res)
{
	const char *method = "none";
	json_object *v;

	if (json_object_object_get_ex(doc, "token_endpoint_auth_method", &v)) {
		if (!json_object_is_type(v, json_type_string)) {
			dcr_fail(res, "invalid_client_metadata",
			    "token_endpoint_auth_method must be a string%s", NULL);
			return -1;
		}
		method = json_object_get_string(v);
	}
	*confidential = strcmp(method, "client_secret_basic") == 0 ||
	    strcmp(method, "client_secret_post") == 0;
	if (strcmp(method, "none") != 0 && !*confidential) {
		dcr_fail(res, "invalid_client_metadata",
		    "token_endpoint_auth_method must be none%s",
		    cfg->eas.allow_confidential_client_registration
			? ", client_secret_basic or client_secret_post"
			: "");
		return -1;
	}
	if (*confidential && !cfg->eas.allow_confidential_client_registration) {
		dcr_fail(res, "invalid_client_metadata",
		    "token_endpoint_auth_method %s is not allowed: this server registers public "
		    "clients only (none)",
		    method);
		return -1;
	}
	c->token_endpoint_auth_method = xstrdup(method);
	return 0;
}

/* grant_types ⊆ {authorization_code, refresh_token} ∋ authorization_code;
 * response_types = [code]. */
static int
dcr_grants(json_object *doc, struct client *c, struct dcr_result *res)
{
	json_object *v;
	const char *why;

	if (json_object_object_get_ex(doc, "grant_types", &v)) {
		if (dcr_string_array(v, 8, &c->grant_types, &why) != 0) {
			dcr_fail(res, "invalid_client_metadata", "grant_types %s", why);
			return -1;
		}
		for (size_t i = 0; i < c->grant_types.n; i++) {
			if (strcmp(c->grant_types.v[i], "authorization_code") != 0 &&
			    strcmp(c->grant_types.v[i], "refresh_token") != 0) {
				dcr_fail(res, "invalid_client_metadata",
				    "grant_type %.64s is not supported (authorization_code, "
				    "refresh_token)",
				    c->grant_types.v[i]);
				return -1;
			}
		}
		if (!strlist_contains(&c->grant_types, "authorization_code")) {
			dcr_fail(res, "invalid_client_metadata",
			    "grant_types must include authorization_code%s", NULL);
			return -1;
		}
	} else {
		strlist_add(&c->grant_types, "authorization_code"); /* RFC 7591 default */
	}
	if (json_object_object_get_ex(doc, "response_types", &v)) {
		struct strlist rt = { 0 };
		bool ok = dcr_string_array(v, 8, &rt, &why) == 0 && rt.n == 1 &&
		    strcmp(rt.v[0], "code") == 0;

		strlist_dispose(&rt);
		if (!ok) {
			dcr_fail(res, "invalid_client_metadata",
			    "response_types must be [\"code\"]%s", NULL);
			return -1;
		}
	}
	return 0;
}

/* scope ⊆ scopes_supported ∪ baseline, default scopes_supported; then the
 * baseline unioned in; and client_name. */
static int
dcr_scope_and_name(json_object *doc, const struct config *cfg, struct client *c,
    struct dcr_result *res)
{
	json_object *v;

	if (json_object_object_get_ex(doc, "scope", &v)) {
		struct strlist req = { 0 };

		if (!json_object_is_type(v, json_type_string) ||
		    json_object_get_string_len(v) > DCR_MAX_STRING) {
			dcr_fail(res, "invalid_client_metadata", "scope must be a string%s", NULL);
			return -1;
		}
		scope_split(json_object_get_string(v), &req);
		for (size_t i = 0; i < req.n; i++) {
			if (!strlist_contains(&cfg->eas.scopes_supported, req.v[i]) &&
			    !strlist_contains(&cfg->eas.baseline_client_scopes, req.v[i])) {
				dcr_fail(res, "invalid_client_metadata",
				    "scope %.64s is not supported by this server", req.v[i]);
				strlist_dispose(&req);
				return -1;
			}
			strlist_add(&c->scopes, req.v[i]);
		}
		strlist_dispose(&req);
	}
	client_finish_scopes(c, json_object_object_get_ex(doc, "scope", NULL), cfg);
	if (json_object_object_get_ex(doc, "client_name", &v)) {
		if (!json_object_is_type(v, json_type_string) ||
		    json_object_get_string_len(v) > DCR_CLIENT_NAME_MAX ||
		    strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v)) {
			dcr_fail(res, "invalid_client_metadata",
			    "client_name must be a string of at most 256 characters%s", NULL);
			return -1;
		}
		c->client_name = xstrdup(json_object_get_string(v));
	}
	return 0;
}

int
dcr_validate(const char *body, size_t len, const struct config *cfg, struct dcr_result *res)
{
	json_object *doc;
	struct client *c = NULL;
	bool confidential = false;
	int rc = -1;

	memset(res, 0, sizeof *res);
	if ((doc = dcr_parse(body, len, res)) == NULL)
		return -1;
	c = client_new("");
	if (dcr_redirect_uris(doc, c, res) != 0 || dcr_application_type(doc, c, res) != 0 ||
	    dcr_auth_method(doc, cfg, c, &confidential, res) != 0 || dcr_grants(doc, c, res) != 0 ||
	    dcr_scope_and_name(doc, cfg, c, res) != 0)
		goto out;
	free(c->client_id);
	c->client_id = random_uuid_v4();
	c->created_at = clock_wall_s();
	if (confidential) {
		unsigned int n = 0;

		res->client_secret = random_token(32);
		EVP_Digest(res->client_secret, strlen(res->client_secret), c->secret_hash, &n,
		    EVP_sha256(), NULL);
		c->has_secret = true;
	}
	res->client = c;
	c = NULL;
	rc = 0;
out:
	client_unref(c);
	json_object_put(doc);
	return rc;
}

static json_object *
dcr_strlist_json(const struct strlist *l)
{
	json_object *a = json_object_new_array();

	for (size_t i = 0; i < l->n; i++)
		json_object_array_add(a, json_object_new_string(l->v[i]));
	return a;
}

char *
dcr_response_json(const struct client *c, const char *client_secret)
{
	json_object *o = json_object_new_object(), *rt = json_object_new_array();
	char *scope = strlist_join(&c->scopes), *out;

	json_object_object_add(o, "client_id", json_object_new_string(c->client_id));
	json_object_object_add(o, "client_id_issued_at", json_object_new_int64(c->created_at));
	if (client_secret != NULL) {
		json_object_object_add(o, "client_secret", json_object_new_string(client_secret));
		json_object_object_add(o, "client_secret_expires_at", json_object_new_int(0));
	}
	json_object_object_add(o, "redirect_uris", dcr_strlist_json(&c->redirect_uris));
	json_object_object_add(o, "token_endpoint_auth_method",
	    json_object_new_string(c->token_endpoint_auth_method));
	json_object_object_add(o, "grant_types", dcr_strlist_json(&c->grant_types));
	if (c->application_type != NULL)
		json_object_object_add(o, "application_type",
		    json_object_new_string(c->application_type));
	json_object_array_add(rt, json_object_new_string("code"));
	json_object_object_add(o, "response_types", rt);
	json_object_object_add(o, "scope", json_object_new_string(scope));
	if (c->client_name != NULL)
		json_object_object_add(o, "client_name", json_object_new_string(c->client_name));
	out = xstrdup(json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	free(scope);
	return out;
}

void
dcr_result_dispose(struct dcr_result *res)
{
	client_unref(res->client);
	xfree_secret(res->client_secret);
	res->client = NULL;
	res->client_secret = NULL;
}
