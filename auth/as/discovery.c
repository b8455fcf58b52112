/*
 * Discovery documents: RFC 8414 authorization server metadata, OpenID
 * Connect discovery and our JWKS. Built once at start-up (the configuration
 * does not change while running) and served with public caching and CORS,
 * since browser-based MCP clients read them cross-origin.
 */
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "auth/as/as_private.h"
#include "auth/crypto/keyset.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "proxy/req.h"

static json_object *
discovery_strings(const char *const *v)
{
	json_object *a = json_object_new_array();

	for (; *v != NULL; v++)
		json_object_array_add(a, json_object_new_string(*v));
	return a;
}

static char *
discovery_doc(struct as *as, bool oidc)
{
	const struct config *cfg = as->cfg;
	static const char *const code[] = { "code", NULL };
	static const char *const grants[] = { "authorization_code", "refresh_token", NULL };
	static const char *const s256[] = { "S256", NULL };
	static const char *const none[] = { "none", NULL };
	static const char *const all[] = { "none", "client_secret_basic", "client_secret_post",
		NULL };
	/* With CIMD, private_key_jwt clients (ChatGPT) authenticate with
	 * assertions; the algorithms are the verifier's allow-list. */
	static const char *const none_pk[] = { "none", "private_key_jwt", NULL };
	static const char *const all_pk[] = { "none", "private_key_jwt", "client_secret_basic",
		"client_secret_post", NULL };
	static const char *const pk_algs[] = { "RS256", "PS256", "ES256", "EdDSA", NULL };
	bool conf = cfg->eas.allow_confidential_client_registration, pk = cfg->eas.cimd.enabled;
	const char *const *methods = pk ? (conf ? all_pk : none_pk) : (conf ? all : none);
	static const char *const pub[] = { "public", NULL };
	static const char *const modes[] = { "query", NULL };
	json_object *o = json_object_new_object(), *scopes = json_object_new_array(), *algs;
	char *out;

	json_object_object_add(o, "issuer", json_object_new_string(as->issuer));
	json_object_object_add(o, "authorization_endpoint",
	    json_object_new_string(as->authorize_url));
	json_object_object_add(o, "token_endpoint", json_object_new_string(as->token_url));
	json_object_object_add(o, "registration_endpoint",
	    json_object_new_string(as->register_url));
	json_object_object_add(o, "revocation_endpoint", json_object_new_string(as->revoke_url));
	json_object_object_add(o, "jwks_uri", json_object_new_string(as->jwks_url));
	json_object_object_add(o, "response_types_supported", discovery_strings(code));
	json_object_object_add(o, "response_modes_supported", discovery_strings(modes));
	json_object_object_add(o, "grant_types_supported", discovery_strings(grants));
	json_object_object_add(o, "code_challenge_methods_supported", discovery_strings(s256));
	json_object_object_add(o, "token_endpoint_auth_methods_supported",
	    discovery_strings(methods));
	if (pk)
		json_object_object_add(o, "token_endpoint_auth_signing_alg_values_supported",
		    discovery_strings(pk_algs));
	json_object_object_add(o, "revocation_endpoint_auth_methods_supported",
	    discovery_strings(methods));
	if (pk)
		json_object_object_add(o, "revocation_endpoint_auth_signing_alg_values_supported",
		    discovery_strings(pk_algs));
	for (size_t i = 0; i < cfg->eas.scopes_supported.n; i++)
		json_object_array_add(scopes,
		    json_object_new_string(cfg->eas.scopes_supported.v[i]));
	json_object_object_add(o, "scopes_supported", scopes);
	json_object_object_add(o, "authorization_response_iss_parameter_supported",
	    json_object_new_boolean(1));
	if (cfg->eas.cimd.enabled)
		json_object_object_add(o, "client_id_metadata_document_supported",
		    json_object_new_boolean(1));
	if (oidc) {
		json_object_object_add(o, "subject_types_supported", discovery_strings(pub));
		algs = json_object_new_array();
		for (size_t i = 0; i < keyset_count(as->keys); i++) {
			const char *alg = keyset_alg_name(keyset_key_alg(keyset_at(as->keys, i)));
			bool seen = false;

			for (size_t j = 0; j < json_object_array_length(algs); j++)
				seen = seen ||
				    strcmp(json_object_get_string(
					       json_object_array_get_idx(algs, j)),
					alg) == 0;
			if (!seen)
				json_object_array_add(algs, json_object_new_string(alg));
		}
		json_object_object_add(o, "id_token_signing_alg_values_supported", algs);
	}
	out = xstrdup(json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return out;
}

void
discovery_build(struct as *as)
{
	as->metadata_json = discovery_doc(as, false);
	as->oidc_json = discovery_doc(as, true);
}

/* Is path the well-known name, or it with the issuer's path (RFC 8414 §3.1
 * path insertion) or below the issuer's path (OIDC style)? */
static bool
discovery_path_ok(struct as *as, const char *path, const char *wk)
{
	size_t n = strlen(wk), ip = strlen(as->issuer_path);

	if (strncmp(path, wk, n) == 0)
		return path[n] == '\0' || (ip > 0 && strcmp(path + n, as->issuer_path) == 0);
	return ip > 0 && strncmp(path, as->issuer_path, ip) == 0 && strcmp(path + ip, wk) == 0;
}

static void
discovery_serve(struct req *sr, const char *body, const char *max_age)
{
	if (as_preflight(sr, "GET, OPTIONS"))
		return;
	as_cors(sr);
	if (strcmp(as_method(sr), "GET") != 0 && strcmp(as_method(sr), "HEAD") != 0) {
		req_add_header(sr, "Allow", "GET, HEAD, OPTIONS");
		req_reply_oauth_error(sr, 405, "invalid_request", "use GET");
		return;
	}
	req_add_header(sr, "Cache-Control", max_age);
	req_reply(sr, 200, "application/json", body, strlen(body));
}

void
discovery_handle_metadata(struct req *sr, void *arg)
{
	struct as *as = arg;

	if (!discovery_path_ok(as, req_path(sr), "/.well-known/oauth-authorization-server")) {
		req_reply_json(sr, 404, "{\"error\":\"not_found\"}");
		return;
	}
	discovery_serve(sr, as->metadata_json, "public, max-age=3600");
}

void
discovery_handle_oidc(struct req *sr, void *arg)
{
	struct as *as = arg;

	if (!discovery_path_ok(as, req_path(sr), "/.well-known/openid-configuration")) {
		req_reply_json(sr, 404, "{\"error\":\"not_found\"}");
		return;
	}
	discovery_serve(sr, as->oidc_json, "public, max-age=3600");
}

void
discovery_handle_jwks(struct req *sr, void *arg)
{
	struct as *as = arg;

	discovery_serve(sr, as->jwks_json, "public, max-age=300");
}
