/*
 * Fuzz jsonrpc_parse (auth/policy/jsonrpc.h), the reader of every MCP
 * request body a client sends when authorization rules are on, against
 * json-c (STRICT, UTF-8 checked, the same depth), and the rules' glob over
 * what it yields:
 * - a body the scanner takes as JSON (OK, or -32600), json-c takes too:
 *   the scanner is the stricter of the two, never the laxer;
 * - an accepted body has one to max_batch messages, each with a kind its
 *   fields agree with; names and methods are NUL-free and bounded, and
 *   read as json-c reads them (method, name, the id as json-c prints it);
 * - jsonrpc_filter_lists over the same bytes, treating every message as a
 *   tools/list answer and dropping names with an 'x': when it answers, the
 *   pieces make JSON json-c takes, and keeping every item changes nothing;
 * - listcache_filter (one cache over all inputs, so bodies that differ in
 *   their id meet a noted shape) answers exactly as jsonrpc_filter_lists,
 *   for two principals that keep different items.
 */
#include <json-c/json.h>
#include <string.h>

#include "auth/policy/jsonrpc.h"
#include "auth/policy/listcache.h"
#include "auth/policy/rules.h"
#include "test/fuzz/fuzz.h"

static const struct jsonrpc_limits lim = { .max_size = 64 * 1024, .max_depth = 16,
	.max_batch = 8 };

static struct listcache *cache;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	cache = listcache_new();
	return 0;
}

/* json-c's reading of the body, as jsonrpc.c read it before the scanner:
 * false when it refuses it (a JSON null is a NULL *out). */
static bool
jsonc_parse(const char *s, size_t len, json_object **out)
{
	struct json_tokener *tok = json_tokener_new_ex(lim.max_depth);
	json_object *o;
	enum json_tokener_error te;
	size_t end;

	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, s, (int)len);
	te = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	if (o == NULL && te == json_tokener_continue) {
		o = json_tokener_parse_ex(tok, "", 1);
		te = json_tokener_get_error(tok);
		end = len;
	}
	json_tokener_free(tok);
	if (te != json_tokener_success || end != len) {
		json_object_put(o);
		*out = NULL;
		return false;
	}
	*out = o;
	return true;
}

static const char *
member_string(json_object *o, const char *key)
{
	json_object *v;

	if (o == NULL || !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* One accepted message against json-c's object for it. */
static void
check_msg(const struct jsonrpc_msg *m, json_object *o)
{
	json_object *params = NULL, *id = NULL;
	char *idt;

	if ((m->kind == JSONRPC_RESPONSE) != (m->method == NULL))
		abort();
	if ((m->kind == JSONRPC_NOTIFICATION) != (m->id.p == NULL && m->method != NULL))
		abort();
	if (m->method != NULL && strlen(m->method) > JSONRPC_METHOD_MAX)
		abort();
	if (m->name != NULL && strlen(m->name) > JSONRPC_NAME_MAX)
		abort();
	if (!json_object_is_type(o, json_type_object))
		abort();
	if (m->method != NULL) {
		const char *jm = member_string(o, "method");

		if (jm == NULL || strcmp(jm, m->method) != 0)
			abort();
		(void)rules_match("tools/*:*a*b*", m->method, m->name);
		(void)jsonrpc_method_label(m->method);
	}
	if (m->name != NULL) {
		const char *key = m->mid == JSONRPC_M_TOOLS_CALL || m->mid == JSONRPC_M_PROMPTS_GET
		    ? "name"
		    : "uri";
		const char *jn;

		json_object_object_get_ex(o, "params", &params);
		if ((jn = member_string(params, key)) == NULL || strcmp(jn, m->name) != 0)
			abort();
	}
	if (m->id.p != NULL) {
		if (!json_object_object_get_ex(o, "id", &id))
			abort();
		idt = jsonrpc_id_text(m);
		if ((idt == NULL) != (id == NULL) ||
		    (idt != NULL &&
			strcmp(idt, json_object_to_json_string_ext(id, JSON_C_TO_STRING_PLAIN)) != 0))
			abort();
		free(idt);
	}
}

static enum jsonrpc_method
all_lists(const struct jsonrpc_msg *resp, void *arg)
{
	return JSONRPC_M_TOOLS_LIST;
}

static bool
keep_no_x(enum jsonrpc_method list, const char *name, void *arg)
{
	if (strlen(name) != strnlen(name, JSONRPC_NAME_MAX + 1) || list != JSONRPC_M_TOOLS_LIST)
		abort();
	return *(bool *)arg || strchr(name, 'x') == NULL;
}

static void
check_filter(const char *s, size_t size)
{
	struct jsonrpc_pieces pc;
	bool all = true;

	/* keeping everything keeps the bytes */
	if (jsonrpc_filter_lists(s, size, lim.max_depth, all_lists, keep_no_x, &all, &pc) == 0 &&
	    pc.changed) {
		/* items that are no object or have no string name are dropped unasked */
		size_t n = 0;

		for (size_t i = 0; i < pc.n; i++)
			n += pc.v[i].len;
		if (n > size)
			abort();
	}
	jsonrpc_pieces_dispose(&pc);
	all = false;
	if (jsonrpc_filter_lists(s, size, lim.max_depth, all_lists, keep_no_x, &all, &pc) == 0) {
		size_t n = 0, at = 0;
		char *out;
		json_object *o;

		for (size_t i = 0; i < pc.n; i++)
			n += pc.v[i].len;
		if (!pc.changed)
			n = size;
		out = malloc(n + 1);
		if (!pc.changed)
			memcpy(out, s, size);
		for (size_t i = 0; i < pc.n; i++) {
			memcpy(out + at, pc.v[i].p, pc.v[i].len);
			at += pc.v[i].len;
		}
		if (!jsonc_parse(out, n, &o))
			abort(); /* the cut body is JSON still */
		json_object_put(o);
		free(out);
	}
	jsonrpc_pieces_dispose(&pc);
}

/* The pieces (or the body, unchanged) as one buffer of *n bytes. */
static char *
joined(const char *s, size_t size, const struct jsonrpc_pieces *pc, size_t *n)
{
	char *out;

	*n = 0;
	for (size_t i = 0; i < pc->n; i++)
		*n += pc->v[i].len;
	if (!pc->changed)
		*n = size;
	out = malloc(*n + 1);
	if (!pc->changed)
		memcpy(out, s, size);
	for (size_t i = 0, at = 0; i < pc->n; i++) {
		memcpy(out + at, pc->v[i].p, pc->v[i].len);
		at += pc->v[i].len;
	}
	return out;
}

static void
check_cache(const char *s, size_t size)
{
	static const struct rules_principal who_all = { .sub = "all" }, who_none = { .sub = "none" };

	for (int k = 0; k < 2; k++) {
		bool all = k == 0;
		struct jsonrpc_pieces a, b;
		int ra = listcache_filter(cache, s, size, lim.max_depth, all_lists, keep_no_x, &all,
		    all ? &who_all : &who_none, &a);
		int rb = jsonrpc_filter_lists(s, size, lim.max_depth, all_lists, keep_no_x, &all, &b);

		if (ra != rb)
			abort();
		if (ra == 0) {
			size_t na, nb;
			char *oa = joined(s, size, &a, &na), *ob = joined(s, size, &b, &nb);

			if (na != nb || memcmp(oa, ob, na) != 0)
				abort();
			free(oa);
			free(ob);
		}
		jsonrpc_pieces_dispose(&a);
		jsonrpc_pieces_dispose(&b);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct jsonrpc_body b;
	char err[160];
	enum jsonrpc_err rc;
	json_object *jc = NULL;
	bool jc_ok;

	if (size > lim.max_size)
		return 0;
	rc = jsonrpc_parse((const char *)data, size, &lim, &b, err, sizeof err);
	jc_ok = size > 0 && jsonc_parse((const char *)data, size, &jc);
	if ((rc == JSONRPC_OK || rc == JSONRPC_INVALID) && !jc_ok)
		abort(); /* the scanner took what json-c refuses */
	if (rc == JSONRPC_OK) {
		if (b.n == 0 || b.n > lim.max_batch)
			abort();
		if (b.batch != json_object_is_type(jc, json_type_array))
			abort();
		for (size_t i = 0; i < b.n; i++)
			check_msg(&b.msgs[i], b.batch ? json_object_array_get_idx(jc, i) : jc);
	}
	jsonrpc_body_dispose(&b);
	json_object_put(jc);
	check_filter((const char *)data, size);
	check_cache((const char *)data, size);
	return 0;
}
