/*
 * The JSON-RPC request reader (see jsonrpc.h), on the scanner it shares
 * with the list responses' filter (jsonrpc_scan.h, jsonrpc_lists.c), and
 * what the policy and the audit ask of a message (its id, its labels).
 *
 * Everything a client sends here is bounded before it is looked at: the
 * size first, the depth while scanning (an explicit stack of
 * JSONRPC_DEPTH_MAX bits, no recursion), the batch length, and the method
 * and name lengths. Each byte is looked at once; the message object and
 * its params are read field by field, any other value is only checked.
 * Strings with NUL are refused where they are read: a name "echo\u0000x"
 * would read "echo" to a C string compare and "echo\0x" to the backend.
 *
 * A syntax error anywhere wins over what is wrong with the JSON-RPC (a
 * malformed body is -32700 whatever else it is), so what is wrong with a
 * message is noted while scanning and told once the whole body scanned.
 */
#include "auth/policy/jsonrpc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/policy/jsonrpc_scan.h"
#include "common/xalloc.h"

/* What a message said, noted while it is scanned and judged after. */
struct jr_facts {
	bool object;
	enum jr_type jsonrpc, id, method, params, name, uri;
	bool jsonrpc_ok, result, error, arguments;
	struct jr_out m; /* the method, decoded into the arena */
	struct jsonrpc_span id_span, params_span, name_span, uri_span;
};

/* The params object at s->p, nested in level: its name, uri, arguments. */
static int
jr_params(struct jr *s, int level, struct jr_facts *f)
{
	int opened;
	enum jr_key k;
	enum jr_type t;
	bool more = true;

	if ((opened = jr_open(s, level, '}')) <= 0)
		return opened; /* an error, or {} */
	while (more) {
		const unsigned char *at;

		if (jr_key(s, &k) != 0)
			return -1;
		at = s->p;
		if (jr_value(s, level + 1, &t, NULL) != 0)
			return -1;
		if (k == JR_K_NAME && jr_first(s, &f->name)) {
			f->name = t;
			f->name_span = (struct jsonrpc_span){ (const char *)at,
				(size_t)(s->p - at) };
		} else if (k == JR_K_URI && jr_first(s, &f->uri)) {
			f->uri = t;
			f->uri_span = (struct jsonrpc_span){ (const char *)at,
				(size_t)(s->p - at) };
		} else if (k == JR_K_ARGUMENTS) {
			if (f->arguments)
				s->dup = true;
			f->arguments = true;
		}
		if (jr_next(s, &more) != 0)
			return -1;
	}
	return 0;
}

/* One message object at s->p, nested in level: its facts. */
static int
jr_message(struct jr *s, int level, struct jr_facts *f)
{
	int opened;
	char v[4];
	struct jr_out ver = { .out = v, .cap = sizeof v };
	enum jr_key k;
	enum jr_type t;
	bool more = true;

	memset(f, 0, sizeof *f);
	f->object = true;
	if ((opened = jr_open(s, level, '}')) <= 0)
		return opened; /* an error, or {} */
	while (more) {
		const unsigned char *at;

		if (jr_key(s, &k) != 0)
			return -1;
		at = s->p;
		switch (k) {
		case JR_K_JSONRPC:
			if (!jr_first(s, &f->jsonrpc))
				goto skip;
			if (jr_value(s, level + 1, &f->jsonrpc, &ver) != 0)
				return -1;
			f->jsonrpc_ok = f->jsonrpc == JR_STRING && ver.n == 3 &&
			    memcmp(v, "2.0", 3) == 0;
			break;
		case JR_K_METHOD:
			if (!jr_first(s, &f->method))
				goto skip;
			f->m.out = s->arena + s->used;
			f->m.cap = JSONRPC_METHOD_MAX;
			if (jr_value(s, level + 1, &f->method, &f->m) != 0)
				return -1;
			break;
		case JR_K_ID:
			if (!jr_first(s, &f->id))
				goto skip;
			if (jr_value(s, level + 1, &f->id, NULL) != 0)
				return -1;
			f->id_span = (struct jsonrpc_span){ (const char *)at, (size_t)(s->p - at) };
			break;
		case JR_K_PARAMS:
			if (!jr_first(s, &f->params))
				goto skip;
			f->params_span.p = (const char *)at;
			if (*s->p == '{') {
				f->params = JR_OBJECT;
				if (jr_params(s, level + 1, f) != 0)
					return -1;
			} else if (jr_value(s, level + 1, &f->params, NULL) != 0) {
				return -1;
			}
			f->params_span.len = (size_t)(s->p - at);
			break;
		case JR_K_RESULT:
		case JR_K_ERROR: {
			bool *seen = k == JR_K_RESULT ? &f->result : &f->error;

			if (*seen)
				s->dup = true;
			*seen = true;
			goto skip;
		}
		default:
		skip:
			if (jr_value(s, level + 1, &t, NULL) != 0)
				return -1;
			break;
		}
		if (jr_next(s, &more) != 0)
			return -1;
	}
	return 0;
}

enum jsonrpc_method
jsonrpc_method_of(const char *m, size_t len)
{
	static const struct {
		const char *s;
		size_t len;
		enum jsonrpc_method mid;
	} known[] = {
		{ "initialize", 10, JSONRPC_M_INITIALIZE },
		{ "ping", 4, JSONRPC_M_PING },
		{ "tools/list", 10, JSONRPC_M_TOOLS_LIST },
		{ "tools/call", 10, JSONRPC_M_TOOLS_CALL },
		{ "prompts/list", 12, JSONRPC_M_PROMPTS_LIST },
		{ "prompts/get", 11, JSONRPC_M_PROMPTS_GET },
		{ "resources/list", 14, JSONRPC_M_RESOURCES_LIST },
		{ "resources/templates/list", 24, JSONRPC_M_RESOURCES_TEMPLATES_LIST },
		{ "resources/read", 14, JSONRPC_M_RESOURCES_READ },
		{ "resources/subscribe", 19, JSONRPC_M_RESOURCES_SUBSCRIBE },
		{ "resources/unsubscribe", 21, JSONRPC_M_RESOURCES_UNSUBSCRIBE },
		{ "completion/complete", 19, JSONRPC_M_COMPLETION_COMPLETE },
		{ "logging/setLevel", 16, JSONRPC_M_LOGGING_SETLEVEL },
	};

	if (m == NULL)
		return JSONRPC_M_NONE;
	if (len >= 14 && memcmp(m, "notifications/", 14) == 0)
		return JSONRPC_M_NOTIFICATION;
	for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
		if (len == known[i].len && memcmp(m, known[i].s, len) == 0)
			return known[i].mid;
	}
	return JSONRPC_M_OTHER;
}

/* Which params member names the operation of a method: 'n' name, 'u'
 * uri, 0 none. */
static char
jsonrpc_name_key(enum jsonrpc_method mid)
{
	switch (mid) {
	case JSONRPC_M_TOOLS_CALL:
	case JSONRPC_M_PROMPTS_GET:
		return 'n';
	case JSONRPC_M_RESOURCES_READ:
	case JSONRPC_M_RESOURCES_SUBSCRIBE:
	case JSONRPC_M_RESOURCES_UNSUBSCRIBE:
		return 'u';
	default:
		return 0;
	}
}

/* Judge one scanned message and fill m; NULL when fine, else why not. The
 * checks and their order are those of the json-c reader this replaced. */
static const char *
jr_judge(struct jr *s, struct jr_facts *f, struct jsonrpc_msg *m)
{
	enum jr_type nt;
	struct jsonrpc_span ns;
	struct jr_out o;
	char key;

	memset(m, 0, sizeof *m);
	if (!f->object)
		return "a JSON-RPC message must be an object";
	if (!f->jsonrpc_ok)
		return "a JSON-RPC message needs \"jsonrpc\": \"2.0\"";
	if (f->id == JR_BIGINT)
		return "a JSON-RPC id must be a string or an integer of at most 64 bits";
	if (f->id != JR_ABSENT && f->id != JR_NULL && f->id != JR_STRING && f->id != JR_INT)
		return "a JSON-RPC id must be a string or an integer";
	if (f->method != JR_ABSENT &&
	    (f->method != JR_STRING || f->m.n > JSONRPC_METHOD_MAX || f->m.nul))
		return "the method must be a string of at most 256 bytes without NUL";
	if (f->method == JR_ABSENT) {
		if (f->id == JR_ABSENT || f->result == f->error)
			return "a JSON-RPC message needs a method, or an id and a result or an "
			       "error";
		m->kind = JSONRPC_RESPONSE;
		m->mid = JSONRPC_M_NONE;
		m->id = f->id_span;
		return NULL;
	}
	if (f->m.n == 0)
		return "the method must not be empty";
	m->method = f->m.out;
	f->m.out[f->m.n] = '\0';
	s->used += f->m.n + 1;
	m->mid = jsonrpc_method_of(m->method, f->m.n);
	if (f->id != JR_ABSENT) {
		if (f->id == JR_NULL)
			return "a JSON-RPC request id must not be null";
		m->kind = JSONRPC_REQUEST;
		m->id = f->id_span;
	} else {
		m->kind = JSONRPC_NOTIFICATION;
	}
	if (f->params != JR_ABSENT && f->params != JR_NULL && f->params != JR_OBJECT &&
	    f->params != JR_ARRAY)
		return "params must be an object or an array";
	if (f->params == JR_OBJECT || f->params == JR_ARRAY)
		m->params = f->params_span;
	if ((key = jsonrpc_name_key(m->mid)) != 0) {
		if (f->params != JR_OBJECT)
			return "this method needs params with its name";
		nt = key == 'n' ? f->name : f->uri;
		ns = key == 'n' ? f->name_span : f->uri_span;
		o = (struct jr_out){ .out = s->arena + s->used, .cap = JSONRPC_NAME_MAX };
		if (nt == JR_STRING) {
			struct jr d = { .p = (const unsigned char *)ns.p,
				.start = (const unsigned char *)ns.p,
				.end = (const unsigned char *)ns.p + ns.len };

			(void)jr_string(&d, &o); /* checked already */
		}
		if (nt != JR_STRING || o.n > JSONRPC_NAME_MAX || o.nul)
			return key == 'u'
			    ? "params.uri must be a string of at most 2048 bytes without NUL"
			    : "params.name must be a string of at most 2048 bytes without NUL";
		m->name = o.out;
		s->used += o.n + 1;
		s->arena[s->used - 1] = '\0';
	}
	return NULL;
}

/* Room for another message in a batch. */
static void
jr_grow(struct jsonrpc_body *b, size_t *cap, size_t max)
{
	if (b->n < *cap)
		return;
	*cap = *cap == 0 ? 8 : *cap * 2;
	if (*cap > max)
		*cap = max;
	b->msgs = xreallocarray(b->msgs, *cap, sizeof *b->msgs);
}

enum jsonrpc_err
jsonrpc_parse(const char *buf, size_t len, const struct jsonrpc_limits *lim,
    struct jsonrpc_body *out, char *err, size_t errlen)
{
	struct jr s = { 0 };
	struct jr_facts f;
	const char *why = NULL;
	size_t bad = 0, count = 0, cap = 0;

	out->batch = false;
	out->msgs = NULL;
	out->n = 0;
	out->arena = NULL;
	if (len > lim->max_size) {
		snprintf(err, errlen, "the JSON-RPC message exceeds %zu bytes", lim->max_size);
		return JSONRPC_TOO_LARGE;
	}
	if (len == 0) {
		snprintf(err, errlen, "the request body is empty");
		return JSONRPC_PARSE;
	}
	s.p = s.start = (const unsigned char *)buf;
	s.end = s.p + len;
	s.max_depth = lim->max_depth < JSONRPC_DEPTH_MAX ? lim->max_depth : JSONRPC_DEPTH_MAX;
	jr_ws(&s);
	if (s.p >= s.end) {
		jr_eof(&s);
	} else if (*s.p == '[') {
		/* a batch: decoded strings take no more room than they had */
		bool more = true;

		out->batch = true;
		out->arena = s.arena = xmalloc(len);
		s.cap = len;
		if (s.max_depth < 1)
			jr_fail(&s, "nested too deeply");
		s.p++;
		jr_ws(&s);
		if (s.p < s.end && *s.p == ']') {
			s.p++;
			more = false;
		}
		while (more && s.err == NULL) {
			jr_ws(&s);
			if (s.p >= s.end) {
				jr_eof(&s);
				break;
			}
			if (count >= lim->max_batch) {
				if (jr_skip(&s, 1) != 0)
					break;
			} else {
				if (*s.p == '{') {
					if (jr_message(&s, 1, &f) != 0)
						break;
				} else {
					enum jr_type t;

					memset(&f, 0, sizeof f);
					if (jr_value(&s, 1, &t, NULL) != 0)
						break;
				}
				jr_grow(out, &cap, lim->max_batch);
				/* the first bad message is told; none after it is read */
				if (why != NULL)
					memset(&out->msgs[out->n], 0, sizeof out->msgs[0]);
				else if ((why = jr_judge(&s, &f, &out->msgs[out->n])) != NULL)
					bad = out->n;
				out->n++;
			}
			count++;
			jr_ws(&s);
			if (s.p >= s.end) {
				jr_eof(&s);
			} else if (*s.p == ',') {
				s.p++;
			} else if (*s.p == ']') {
				s.p++;
				more = false;
			} else {
				jr_fail(&s, "unexpected character");
			}
		}
	} else {
		s.arena = out->text;
		s.cap = sizeof out->text;
		out->msgs = &out->one;
		out->n = count = 1;
		if (*s.p == '{') {
			if (jr_message(&s, 0, &f) == 0)
				why = jr_judge(&s, &f, &out->one);
		} else {
			enum jr_type t;

			memset(&f, 0, sizeof f);
			if (jr_value(&s, 0, &t, NULL) == 0)
				why = jr_judge(&s, &f, &out->one);
		}
	}
	if (s.err == NULL) {
		jr_ws(&s);
		if (s.p < s.end)
			jr_fail(&s, "bytes after the JSON value");
	}
	if (s.err != NULL) {
		if (s.err_at == JR_EOF || strcmp(s.err, "nested too deeply") == 0)
			snprintf(err, errlen, "the body is not valid JSON: %s", s.err);
		else
			snprintf(err, errlen, "the body is not valid JSON: %s at byte %zu", s.err,
			    s.err_at);
		return JSONRPC_PARSE;
	}
	if (s.dup) {
		snprintf(err, errlen, "a JSON object has the same key twice");
		return JSONRPC_INVALID;
	}
	if (out->batch && count == 0) {
		snprintf(err, errlen, "an empty JSON-RPC batch");
		return JSONRPC_INVALID;
	}
	if (out->batch && count > lim->max_batch) {
		snprintf(err, errlen, "a JSON-RPC batch of more than %zu messages", lim->max_batch);
		return JSONRPC_INVALID;
	}
	if (why != NULL) {
		if (out->batch)
			snprintf(err, errlen, "batch message %zu: %s", bad, why);
		else
			snprintf(err, errlen, "%s", why);
		return JSONRPC_INVALID;
	}
	return JSONRPC_OK;
}

json_object *
jsonrpc_parse_value(const char *s, size_t len, int depth)
{
	struct json_tokener *tok = json_tokener_new_ex(depth);
	json_object *o;

	if (tok == NULL)
		return NULL;
	o = json_tokener_parse_ex(tok, s, (int)len);
	if (o != NULL && json_tokener_get_error(tok) != json_tokener_success) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	return o;
}

void
jsonrpc_body_dispose(struct jsonrpc_body *b)
{
	if (b->msgs != &b->one)
		free(b->msgs);
	free(b->arena);
	b->msgs = NULL;
	b->arena = NULL;
	b->n = 0;
}

json_object *
jsonrpc_id_object(const struct jsonrpc_msg *m)
{
	const char *p = m->id.p;
	json_object *o;

	if (p == NULL || *p == 'n')
		return NULL;
	if (*p == '"') {
		/* checked when scanned: decode it (with NUL bytes, as json-c would) */
		struct jr d = { .p = (const unsigned char *)p,
			.start = (const unsigned char *)p,
			.end = (const unsigned char *)p + m->id.len };
		struct jr_out out = { .out = xmalloc(m->id.len), .cap = m->id.len };

		(void)jr_string(&d, &out);
		o = json_object_new_string_len(out.out, (int)out.n);
		free(out.out);
		return o;
	} else {
		char num[24];
		size_t n = m->id.len < sizeof num - 1 ? m->id.len : sizeof num - 1;

		memcpy(num, p, n);
		num[n] = '\0';
		return json_object_new_int64(strtoll(num, NULL, 10));
	}
}

char *
jsonrpc_id_text(const struct jsonrpc_msg *m)
{
	json_object *o;
	char *s;

	/* an integer as it came is what json-c prints (JSON has no leading
	 * zeros or '+'), but for -0 */
	if (m->id.p != NULL && *m->id.p != '"' && *m->id.p != 'n' &&
	    !(m->id.len == 2 && m->id.p[0] == '-' && m->id.p[1] == '0'))
		return xstrndup(m->id.p, m->id.len);
	if ((o = jsonrpc_id_object(m)) == NULL)
		return NULL;
	s = xstrdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return s;
}

bool
jsonrpc_always_passes(const struct jsonrpc_msg *m)
{
	return m->kind != JSONRPC_REQUEST || m->mid == JSONRPC_M_INITIALIZE ||
	    m->mid == JSONRPC_M_PING;
}

const char *
jsonrpc_mid_label(enum jsonrpc_method mid)
{
	switch (mid) {
	case JSONRPC_M_NONE:
		return "response";
	case JSONRPC_M_OTHER:
		return "other";
	case JSONRPC_M_NOTIFICATION:
		return "notification";
	case JSONRPC_M_INITIALIZE:
		return "initialize";
	case JSONRPC_M_PING:
		return "ping";
	case JSONRPC_M_TOOLS_LIST:
		return "tools/list";
	case JSONRPC_M_TOOLS_CALL:
		return "tools/call";
	case JSONRPC_M_PROMPTS_LIST:
		return "prompts/list";
	case JSONRPC_M_PROMPTS_GET:
		return "prompts/get";
	case JSONRPC_M_RESOURCES_LIST:
		return "resources/list";
	case JSONRPC_M_RESOURCES_TEMPLATES_LIST:
		return "resources/templates/list";
	case JSONRPC_M_RESOURCES_READ:
		return "resources/read";
	case JSONRPC_M_RESOURCES_SUBSCRIBE:
		return "resources/subscribe";
	case JSONRPC_M_RESOURCES_UNSUBSCRIBE:
		return "resources/unsubscribe";
	case JSONRPC_M_COMPLETION_COMPLETE:
		return "completion/complete";
	case JSONRPC_M_LOGGING_SETLEVEL:
		return "logging/setLevel";
	}
	return "other";
}

const char *
jsonrpc_method_label(const char *method)
{
	return jsonrpc_mid_label(jsonrpc_method_of(method, method != NULL ? strlen(method) : 0));
}
