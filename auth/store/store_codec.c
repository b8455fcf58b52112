/*
 * Records ↔ JSON (see store_codec.h): one table of fields per record
 * drives both directions, so a field added to a record is added once.
 * json-c's own buffers of a secret-holding text are freed unwiped (json-c
 * offers no hook); the strings we hand out are wiped by their owners.
 */
#include "auth/store/store_codec.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

#define CODEC_DEPTH 4

enum codec_type { CF_STR, CF_BOOL, CF_I64 };

struct codec_field {
	const char *name;
	enum codec_type type;
	size_t off;
	bool required;
};

#define F(rec, field, type, req) \
	{ \
#field, type, offsetof(struct rec, field), req \
	}

static const struct codec_field pending_fields[] = {
	F(store_pending, client_id, CF_STR, true),
	F(store_pending, redirect_uri, CF_STR, false),
	F(store_pending, redirect_uri_sent, CF_BOOL, false),
	F(store_pending, state, CF_STR, false),
	F(store_pending, code_challenge, CF_STR, false),
	F(store_pending, scope, CF_STR, false),
	F(store_pending, resource, CF_STR, false),
	F(store_pending, upstream_verifier, CF_STR, false),
	F(store_pending, nonce, CF_STR, false),
	{ NULL, CF_STR, 0, false },
};

static const struct codec_field code_fields[] = {
	F(store_code, client_id, CF_STR, true),
	F(store_code, redirect_uri, CF_STR, false),
	F(store_code, redirect_uri_sent, CF_BOOL, false),
	F(store_code, code_challenge, CF_STR, false),
	F(store_code, scope, CF_STR, false),
	F(store_code, resource, CF_STR, false),
	F(store_code, tsid, CF_STR, false),
	F(store_code, subject, CF_STR, false),
	F(store_code, family, CF_STR, true),
	{ NULL, CF_STR, 0, false },
};

static const struct codec_field refresh_fields[] = {
	F(store_refresh, family, CF_STR, true),
	F(store_refresh, client_id, CF_STR, true),
	F(store_refresh, scope, CF_STR, false),
	F(store_refresh, resource, CF_STR, false),
	F(store_refresh, tsid, CF_STR, false),
	F(store_refresh, subject, CF_STR, false),
	F(store_refresh, expires_at, CF_I64, false),
	{ NULL, CF_STR, 0, false },
};

static const struct codec_field upstream_fields[] = {
	F(store_upstream, subject, CF_STR, false),
	F(store_upstream, access_token, CF_STR, false),
	F(store_upstream, refresh_token, CF_STR, false),
	F(store_upstream, id_token, CF_STR, false),
	F(store_upstream, claims_json, CF_STR, false),
	F(store_upstream, expires_at, CF_I64, false),
	{ NULL, CF_STR, 0, false },
};

#undef F

static char *
codec_encode(const void *rec, const struct codec_field *f)
{
	json_object *o = json_object_new_object();
	char *out;

	for (; f->name != NULL; f++) {
		const char *p = (const char *)rec + f->off;

		switch (f->type) {
		case CF_STR:
			if (*(char *const *)p != NULL)
				json_object_object_add(o, f->name,
				    json_object_new_string(*(char *const *)p));
			break;
		case CF_BOOL:
			if (*(const bool *)p)
				json_object_object_add(o, f->name, json_object_new_boolean(1));
			break;
		case CF_I64:
			json_object_object_add(o, f->name,
			    json_object_new_int64(*(const int64_t *)p));
			break;
		}
	}
	out = xstrdup(json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return out;
}

/* Fill rec (zeroed, of the table's type) from text; -1 when it is not
 * one. Strings already filled are the caller's to free on failure. */
static int
codec_decode(void *rec, const struct codec_field *f, const char *text, size_t len)
{
	struct json_tokener *tok;
	json_object *o, *v;
	int rc = -1;

	if (text == NULL || len == 0 || len > STORE_CODEC_MAX)
		return -1;
	tok = json_tokener_new_ex(CODEC_DEPTH);
	if (tok == NULL)
		abort();
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, text, (int)len);
	if (o == NULL || json_tokener_get_error(tok) != json_tokener_success ||
	    json_tokener_get_parse_end(tok) != len || !json_object_is_type(o, json_type_object))
		goto out;
	for (; f->name != NULL; f++) {
		char *p = (char *)rec + f->off;

		if (!json_object_object_get_ex(o, f->name, &v) ||
		    json_object_is_type(v, json_type_null)) {
			if (f->required)
				goto out;
			continue;
		}
		switch (f->type) {
		case CF_STR:
			if (!json_object_is_type(v, json_type_string) ||
			    strlen(json_object_get_string(v)) !=
				(size_t)json_object_get_string_len(v))
				goto out;
			*(char **)p = xstrdup(json_object_get_string(v));
			break;
		case CF_BOOL:
			if (!json_object_is_type(v, json_type_boolean))
				goto out;
			*(bool *)p = json_object_get_boolean(v);
			break;
		case CF_I64:
			if (!json_object_is_type(v, json_type_int))
				goto out;
			*(int64_t *)p = json_object_get_int64(v);
			break;
		}
	}
	rc = 0;
out:
	json_object_put(o);
	json_tokener_free(tok);
	return rc;
}

char *
store_pending_encode(const struct store_pending *p)
{
	return codec_encode(p, pending_fields);
}

struct store_pending *
store_pending_decode(const char *text, size_t len)
{
	struct store_pending *p = xcalloc(1, sizeof *p);

	if (codec_decode(p, pending_fields, text, len) != 0) {
		store_pending_free(p);
		return NULL;
	}
	return p;
}

char *
store_code_encode(const struct store_code *c)
{
	return codec_encode(c, code_fields);
}

struct store_code *
store_code_decode(const char *text, size_t len)
{
	struct store_code *c = xcalloc(1, sizeof *c);

	if (codec_decode(c, code_fields, text, len) != 0) {
		store_code_free(c);
		return NULL;
	}
	return c;
}

char *
store_refresh_encode(const struct store_refresh *r)
{
	return codec_encode(r, refresh_fields);
}

struct store_refresh *
store_refresh_decode(const char *text, size_t len)
{
	struct store_refresh *r = xcalloc(1, sizeof *r);

	if (codec_decode(r, refresh_fields, text, len) != 0) {
		store_refresh_free(r);
		return NULL;
	}
	return r;
}

char *
store_upstream_encode(const struct store_upstream *u)
{
	return codec_encode(u, upstream_fields);
}

struct store_upstream *
store_upstream_decode(const char *text, size_t len)
{
	struct store_upstream *u = xcalloc(1, sizeof *u);

	if (codec_decode(u, upstream_fields, text, len) != 0) {
		store_upstream_free(u);
		return NULL;
	}
	return u;
}
