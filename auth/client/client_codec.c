/*
 * DCR clients ↔ JSON (see client_codec.h). Decoding is strict about types
 * and bounded (a text from the store is trusted no more than a request:
 * whoever can write the store must not crash us); inline keys are parsed
 * again by keyset_from_jwks, as for a client's own document.
 */
#include "auth/client/client_codec.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/client/client.h"
#include "auth/crypto/keyset.h"
#include "common/b64url.h"
#include "common/xalloc.h"

#define CLIENT_JSON_MAX (512 * 1024)
#define CLIENT_JSON_DEPTH 8
#define CLIENT_LIST_MAX 64

static void
cc_add_str(json_object *o, const char *name, const char *v)
{
	if (v != NULL)
		json_object_object_add(o, name, json_object_new_string(v));
}

static json_object *
cc_list(const struct strlist *l)
{
	json_object *a = json_object_new_array();

	for (size_t i = 0; i < l->n; i++)
		json_object_array_add(a, json_object_new_string(l->v[i]));
	return a;
}

char *
client_to_json(const struct client *c)
{
	json_object *o = json_object_new_object();
	char *out;

	cc_add_str(o, "client_id", c->client_id);
	cc_add_str(o, "client_name", c->client_name);
	cc_add_str(o, "application_type", c->application_type);
	cc_add_str(o, "token_endpoint_auth_method", c->token_endpoint_auth_method);
	if (c->also_none)
		json_object_object_add(o, "also_none", json_object_new_boolean(1));
	cc_add_str(o, "jwks_uri", c->jwks_uri);
	cc_add_str(o, "token_endpoint_auth_signing_alg", c->token_endpoint_auth_signing_alg);
	if (c->jwks != NULL) {
		char *jwks = keyset_jwks_json(c->jwks);

		json_object_object_add(o, "jwks", json_object_new_string(jwks));
		free(jwks);
	}
	if (c->has_secret) {
		char *h = b64url_encode(c->secret_hash, sizeof c->secret_hash);

		json_object_object_add(o, "secret_sha256", json_object_new_string(h));
		free(h);
	}
	json_object_object_add(o, "redirect_uris", cc_list(&c->redirect_uris));
	json_object_object_add(o, "grant_types", cc_list(&c->grant_types));
	json_object_object_add(o, "scopes", cc_list(&c->scopes));
	json_object_object_add(o, "created_at", json_object_new_int64(c->created_at));
	out = xstrdup(json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return out;
}

/* A string member: 1 and *out (borrowed), 0 when absent, -1 when not a
 * string (or holding a NUL). */
static int
cc_str(json_object *o, const char *name, const char **out)
{
	json_object *v;

	*out = NULL;
	if (!json_object_object_get_ex(o, name, &v))
		return 0;
	if (!json_object_is_type(v, json_type_string) ||
	    strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v))
		return -1;
	*out = json_object_get_string(v);
	return 1;
}

static int
cc_dup(json_object *o, const char *name, char **field)
{
	const char *s;
	int rc = cc_str(o, name, &s);

	if (rc == 1)
		*field = xstrdup(s);
	return rc < 0 ? -1 : 0;
}

static int
cc_strlist(json_object *o, const char *name, struct strlist *l)
{
	json_object *a, *s;
	size_t n;

	if (!json_object_object_get_ex(o, name, &a))
		return 0;
	if (!json_object_is_type(a, json_type_array) ||
	    (n = json_object_array_length(a)) > CLIENT_LIST_MAX)
		return -1;
	for (size_t i = 0; i < n; i++) {
		s = json_object_array_get_idx(a, i);
		if (!json_object_is_type(s, json_type_string) ||
		    strlen(json_object_get_string(s)) != (size_t)json_object_get_string_len(s))
			return -1;
		strlist_add(l, json_object_get_string(s));
	}
	return 0;
}

struct client *
client_from_json(const char *text, size_t len, char *err, size_t errlen)
{
	struct json_tokener *tok;
	json_object *o, *v;
	struct client *c = NULL;
	const char *s;
	size_t n;

	snprintf(err, errlen, "not a stored client");
	if (text == NULL || len == 0 || len > CLIENT_JSON_MAX)
		return NULL;
	if ((tok = json_tokener_new_ex(CLIENT_JSON_DEPTH)) == NULL)
		abort();
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, text, (int)len);
	if (o == NULL || json_tokener_get_error(tok) != json_tokener_success ||
	    json_tokener_get_parse_end(tok) != len || !json_object_is_type(o, json_type_object))
		goto fail;
	if (cc_str(o, "client_id", &s) != 1 || *s == '\0')
		goto fail;
	c = client_new(s);
	if (cc_dup(o, "client_name", &c->client_name) != 0 ||
	    cc_dup(o, "application_type", &c->application_type) != 0 ||
	    cc_dup(o, "token_endpoint_auth_method", &c->token_endpoint_auth_method) != 0 ||
	    cc_dup(o, "jwks_uri", &c->jwks_uri) != 0 ||
	    cc_dup(o, "token_endpoint_auth_signing_alg", &c->token_endpoint_auth_signing_alg) !=
		0 ||
	    cc_strlist(o, "redirect_uris", &c->redirect_uris) != 0 ||
	    cc_strlist(o, "grant_types", &c->grant_types) != 0 ||
	    cc_strlist(o, "scopes", &c->scopes) != 0)
		goto fail;
	if (json_object_object_get_ex(o, "also_none", &v)) {
		if (!json_object_is_type(v, json_type_boolean))
			goto fail;
		c->also_none = json_object_get_boolean(v);
	}
	if (json_object_object_get_ex(o, "created_at", &v)) {
		if (!json_object_is_type(v, json_type_int))
			goto fail;
		c->created_at = json_object_get_int64(v);
	}
	switch (cc_str(o, "secret_sha256", &s)) {
	case 1:
		if (b64url_decode_buf(s, strlen(s), c->secret_hash, sizeof c->secret_hash, &n) !=
			0 ||
		    n != sizeof c->secret_hash)
			goto fail;
		c->has_secret = true;
		break;
	case 0:
		break;
	default:
		goto fail;
	}
	switch (cc_str(o, "jwks", &s)) {
	case 1:
		if ((c->jwks = keyset_from_jwks(s, strlen(s), err, errlen)) == NULL)
			goto fail_kept;
		break;
	case 0:
		break;
	default:
		goto fail;
	}
	json_object_put(o);
	json_tokener_free(tok);
	err[0] = '\0';
	return c;
fail:
	snprintf(err, errlen, "not a stored client");
fail_kept:
	client_unref(c);
	json_object_put(o);
	json_tokener_free(tok);
	return NULL;
}
