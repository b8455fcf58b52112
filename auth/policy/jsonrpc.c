/*
 * The JSON-RPC reader (see jsonrpc.h). Everything a client sends here is
 * bounded before it is looked at: the size first, the depth while parsing
 * (json-c's tokener depth), the batch length, and the method and name
 * lengths. Strings with NUL bytes are refused: a name "echo\u0000x" would
 * read "echo" to a C string compare and "echo\0x" to the backend; so are
 * duplicate keys, for the same reason.
 */
#include "auth/policy/jsonrpc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

/* A string member of o (NULL when absent); *bad when present and not a
 * clean string of at most max bytes. */
static const char *
jsonrpc_string(json_object *o, const char *key, size_t max, bool *bad)
{
	json_object *v;
	const char *s;
	size_t n;

	if (o == NULL || !json_object_object_get_ex(o, key, &v))
		return NULL;
	if (!json_object_is_type(v, json_type_string)) {
		*bad = true;
		return NULL;
	}
	s = json_object_get_string(v);
	n = (size_t)json_object_get_string_len(v);
	if (n > max || strlen(s) != n) {
		*bad = true;
		return NULL;
	}
	return s;
}

/* Which params member names the operation of method, or NULL. */
static const char *
jsonrpc_name_key(const char *method)
{
	if (strcmp(method, "tools/call") == 0 || strcmp(method, "prompts/get") == 0)
		return "name";
	if (strcmp(method, "resources/read") == 0 || strcmp(method, "resources/subscribe") == 0 ||
	    strcmp(method, "resources/unsubscribe") == 0)
		return "uri";
	return NULL;
}

/* Check one message and fill m; NULL when fine, else why not. */
static const char *
jsonrpc_message(json_object *o, struct jsonrpc_msg *m)
{
	json_object *v, *params = NULL, *id = NULL;
	const char *key;
	bool bad = false;

	memset(m, 0, sizeof *m);
	m->obj = o;
	if (!json_object_is_type(o, json_type_object))
		return "a JSON-RPC message must be an object";
	if (!json_object_object_get_ex(o, "jsonrpc", &v) ||
	    !json_object_is_type(v, json_type_string) ||
	    strcmp(json_object_get_string(v), "2.0") != 0)
		return "a JSON-RPC message needs \"jsonrpc\": \"2.0\"";
	if (json_object_object_get_ex(o, "id", &id) && id != NULL &&
	    !json_object_is_type(id, json_type_string) && !json_object_is_type(id, json_type_int))
		return "a JSON-RPC id must be a string or an integer";
	m->method = jsonrpc_string(o, "method", JSONRPC_METHOD_MAX, &bad);
	if (bad)
		return "the method must be a string of at most 256 bytes without NUL";
	if (m->method == NULL) {
		bool result = json_object_object_get_ex(o, "result", NULL),
		     error = json_object_object_get_ex(o, "error", NULL);

		if (!json_object_object_get_ex(o, "id", NULL) || result == error)
			return "a JSON-RPC message needs a method, or an id and a result or an "
			       "error";
		m->kind = JSONRPC_RESPONSE;
		m->id = id;
		return NULL;
	}
	if (*m->method == '\0')
		return "the method must not be empty";
	if (json_object_object_get_ex(o, "id", &v)) {
		if (v == NULL)
			return "a JSON-RPC request id must not be null";
		m->kind = JSONRPC_REQUEST;
		m->id = v;
	} else {
		m->kind = JSONRPC_NOTIFICATION;
	}
	if (json_object_object_get_ex(o, "params", &params) && params != NULL &&
	    !json_object_is_type(params, json_type_object) &&
	    !json_object_is_type(params, json_type_array))
		return "params must be an object or an array";
	if ((key = jsonrpc_name_key(m->method)) != NULL) {
		if (params == NULL || !json_object_is_type(params, json_type_object))
			return "this method needs params with its name";
		m->name = jsonrpc_string(params, key, JSONRPC_NAME_MAX, &bad);
		if (bad || m->name == NULL)
			return strcmp(key, "uri") == 0
			    ? "params.uri must be a string of at most 2048 bytes without NUL"
			    : "params.name must be a string of at most 2048 bytes without NUL";
	}
	return NULL;
}

/* Keys in the raw text: strings followed by ':' (the text is valid JSON
 * by now, so only string boundaries matter). */
static size_t
jsonrpc_raw_keys(const char *s, size_t len)
{
	size_t keys = 0, i = 0;

	while (i < len) {
		if (s[i] != '"') {
			i++;
			continue;
		}
		for (i++; i < len && s[i] != '"'; i++) {
			if (s[i] == '\\')
				i++;
		}
		for (i++; i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r');
		     i++)
			;
		if (i < len && s[i] == ':')
			keys++;
	}
	return keys;
}

/* Keys in the parsed tree (json-c keeps one per name); depth is bounded
 * by the tokener. */
static size_t
jsonrpc_tree_keys(json_object *o)
{
	size_t n = 0;

	if (json_object_is_type(o, json_type_object)) {
		json_object_object_foreach(o, k, v)
		{
			(void)k;
			n += 1 + (v != NULL ? jsonrpc_tree_keys(v) : 0);
		}
	} else if (json_object_is_type(o, json_type_array)) {
		size_t len = json_object_array_length(o);

		for (size_t i = 0; i < len; i++) {
			json_object *e = json_object_array_get_idx(o, i);

			if (e != NULL)
				n += jsonrpc_tree_keys(e);
		}
	}
	return n;
}

enum jsonrpc_err
jsonrpc_parse(const char *buf, size_t len, const struct jsonrpc_limits *lim,
    struct jsonrpc_body *out, char *err, size_t errlen)
{
	struct json_tokener *tok;
	enum json_tokener_error te;
	const char *why;
	size_t n, end;

	memset(out, 0, sizeof *out);
	if (len > lim->max_size) {
		snprintf(err, errlen, "the JSON-RPC message exceeds %zu bytes", lim->max_size);
		return JSONRPC_TOO_LARGE;
	}
	if (len == 0) {
		snprintf(err, errlen, "the request body is empty");
		return JSONRPC_PARSE;
	}
	if ((tok = lim->tok) != NULL) {
		json_tokener_reset(tok);
	} else if ((tok = json_tokener_new_ex(lim->max_depth)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return JSONRPC_PARSE;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	out->root = json_tokener_parse_ex(tok, buf, (int)len);
	te = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	/* A bare number may still be going on: a NUL byte says the input ended
	 * (an object or array cut short stays json_tokener_continue). */
	if (out->root == NULL && te == json_tokener_continue) {
		out->root = json_tokener_parse_ex(tok, "", 1);
		if (out->root != NULL)
			te = json_tokener_get_error(tok);
		end = len;
	}
	/* A complete value must end the input (STRICT refuses trailing bytes). */
	if (out->root == NULL || te != json_tokener_success || end != len) {
		snprintf(err, errlen, "the body is not valid JSON: %s",
		    te == json_tokener_error_depth    ? "nested too deeply"
			: te == json_tokener_continue ? "it ends early"
						      : json_tokener_error_desc(te));
		if (tok != lim->tok)
			json_tokener_free(tok);
		json_object_put(out->root);
		out->root = NULL;
		return JSONRPC_PARSE;
	}
	if (tok != lim->tok)
		json_tokener_free(tok);
	/* A duplicate key reads one way to us (json-c keeps the last) and maybe
	 * another to the backend (first wins in some parsers): refuse it. */
	if (jsonrpc_raw_keys(buf, len) != jsonrpc_tree_keys(out->root)) {
		snprintf(err, errlen, "a JSON object has the same key twice");
		return JSONRPC_INVALID;
	}
	if (json_object_is_type(out->root, json_type_array)) {
		out->batch = true;
		n = json_object_array_length(out->root);
		if (n == 0) {
			snprintf(err, errlen, "an empty JSON-RPC batch");
			return JSONRPC_INVALID;
		}
		if (n > lim->max_batch) {
			snprintf(err, errlen, "a JSON-RPC batch of more than %zu messages",
			    lim->max_batch);
			return JSONRPC_INVALID;
		}
	} else {
		n = 1;
	}
	out->msgs = xcalloc(n, sizeof *out->msgs);
	out->n = n;
	for (size_t i = 0; i < n; i++) {
		json_object *o = out->batch ? json_object_array_get_idx(out->root, i) : out->root;

		if ((why = jsonrpc_message(o, &out->msgs[i])) != NULL) {
			if (out->batch)
				snprintf(err, errlen, "batch message %zu: %s", i, why);
			else
				snprintf(err, errlen, "%s", why);
			return JSONRPC_INVALID;
		}
	}
	return JSONRPC_OK;
}

void
jsonrpc_body_dispose(struct jsonrpc_body *b)
{
	json_object_put(b->root);
	free(b->msgs);
	memset(b, 0, sizeof *b);
}

bool
jsonrpc_always_passes(const struct jsonrpc_msg *m)
{
	return m->kind != JSONRPC_REQUEST || strcmp(m->method, "initialize") == 0 ||
	    strcmp(m->method, "ping") == 0;
}

const char *
jsonrpc_method_label(const char *method)
{
	static const char *const known[] = { "initialize", "ping", "tools/list", "tools/call",
		"prompts/list", "prompts/get", "resources/list", "resources/templates/list",
		"resources/read", "resources/subscribe", "resources/unsubscribe",
		"completion/complete", "logging/setLevel", NULL };

	if (method == NULL)
		return "response";
	if (strncmp(method, "notifications/", 14) == 0)
		return "notification";
	for (size_t i = 0; known[i] != NULL; i++) {
		if (strcmp(method, known[i]) == 0)
			return known[i];
	}
	return "other";
}
