/*
 * The list responses of jsonrpc.h: a tools/list, prompts/list,
 * resources/list or resources/templates/list result read with the shared
 * scanner (jsonrpc_scan.h), its items kept or dropped by the caller's
 * keep(), the body passed on as pieces of the caller's buffer; and the
 * shape of a list kept for the next response of the same bytes
 * (listcache.c).
 */
#include "auth/policy/jsonrpc.h"

#include <stdlib.h>
#include <string.h>

#include "auth/policy/jsonrpc_scan.h"
#include "common/xalloc.h"

static const struct {
	enum jsonrpc_method mid;
	const char *array, *key, *use;
	enum jr_key array_k, key_k;
} jr_lists[] = {
	{ JSONRPC_M_TOOLS_LIST, "tools", "name", "tools/call", JR_K_TOOLS, JR_K_NAME },
	{ JSONRPC_M_PROMPTS_LIST, "prompts", "name", "prompts/get", JR_K_PROMPTS, JR_K_NAME },
	{ JSONRPC_M_RESOURCES_LIST, "resources", "uri", "resources/read", JR_K_RESOURCES,
	    JR_K_URI },
	{ JSONRPC_M_RESOURCES_TEMPLATES_LIST, "resourceTemplates", "uriTemplate", "resources/read",
	    JR_K_RESOURCE_TEMPLATES, JR_K_URI_TEMPLATE },
};
#define JR_N_LISTS (sizeof jr_lists / sizeof jr_lists[0])

bool
jsonrpc_list_shape(enum jsonrpc_method mid, const char **array, const char **key, const char **use)
{
	for (size_t i = 0; i < JR_N_LISTS; i++) {
		if (jr_lists[i].mid == mid) {
			*array = jr_lists[i].array;
			*key = jr_lists[i].key;
			*use = jr_lists[i].use;
			return true;
		}
	}
	return false;
}

/* A list filter's pass over one body. */
struct jr_lf {
	const char *buf;
	jsonrpc_list_fn list;
	jsonrpc_keep_fn keep;
	void *arg;
	struct jsonrpc_pieces *pc;
	size_t mark;                 /* the bytes not in pieces yet start here */
	struct jsonrpc_shape *shape; /* noted here, or NULL */
	int lists;                   /* list arrays read */
};

/* What a response said: its id and the list members of its result. */
struct jr_resp {
	enum jr_type id;
	struct jsonrpc_span id_span;
	bool result;
	bool seen[JR_N_LISTS];
	struct jsonrpc_span arrays[JR_N_LISTS]; /* .p NULL: absent or no array */
	int level;                              /* of the message */
	bool resolved;                          /* lm is known (the id came first) */
	enum jsonrpc_method lm;                 /* the list it answers, or NONE */
	bool done;                              /* its list filtered already */
};

void
jsonrpc_pieces_add(struct jsonrpc_pieces *pc, const char *p, size_t len)
{
	if (len == 0)
		return;
	if (pc->n == pc->cap) {
		pc->cap = pc->cap == 0 ? 16 : pc->cap * 2;
		pc->v = xreallocarray(pc->v, pc->cap, sizeof *pc->v);
	}
	pc->v[pc->n++] = (struct jsonrpc_span){ p, len };
}

/* Note an item of the list being read in the shape: its bytes and its
 * name (nl bytes at name; NULL: none to judge it by). */
static void
jr_shape_item(struct jsonrpc_shape *sh, size_t off, size_t len, const char *name, size_t nl)
{
	size_t at = JSONRPC_NO_NAME;

	if (name != NULL) {
		if (sh->used + nl + 1 > sh->names_cap) {
			sh->names_cap = (sh->used + nl + 1) * 2;
			sh->names = xrealloc(sh->names, sh->names_cap);
		}
		at = sh->used;
		memcpy(sh->names + at, name, nl);
		sh->names[at + nl] = '\0';
		sh->used += nl + 1;
	}
	if (sh->n == sh->cap) {
		sh->cap = sh->cap == 0 ? 16 : sh->cap * 2;
		sh->items = xreallocarray(sh->items, sh->cap, sizeof *sh->items);
	}
	sh->items[sh->n++] = (struct jsonrpc_item){ off, len, at };
}

/* Is the item's name (the string at span, checked) one keep() keeps?
 * The item (off, len in the body) is noted in lf's shape, if any. */
static bool
jr_keep_name(struct jsonrpc_span span, enum jsonrpc_method list, const struct jr_lf *lf, size_t off,
    size_t len)
{
	char small[512];
	struct jr d = { .p = (const unsigned char *)span.p,
		.start = (const unsigned char *)span.p,
		.end = (const unsigned char *)span.p + span.len };
	struct jr_out o = { .out = span.len <= sizeof small ? small : xmalloc(span.len),
		.cap = span.len };
	bool kept = false, named = jr_string(&d, &o) == 0 && !o.nul && o.n < o.cap;

	if (named) {
		o.out[o.n] = '\0';
		kept = lf->keep(list, o.out, lf->arg);
	}
	if (lf->shape != NULL)
		jr_shape_item(lf->shape, off, len, named ? o.out : NULL, o.n);
	if (o.out != small)
		free(o.out);
	return kept;
}

/* The list array at s->p (nested in level), list li, its items through
 * keep(): pieces for it when one is dropped. */
static int
jr_items(struct jr *s, int level, size_t li, struct jr_lf *lf)
{
	const char *open = (const char *)s->p;
	struct jsonrpc_span *items = NULL;
	bool *kept = NULL, more = true, dropped = false, first = true;
	size_t n = 0, cap = 0;
	int rc = -1, opened;

	if ((opened = jr_open(s, level, ']')) <= 0)
		return opened; /* an error, or [] */
	while (more) {
		const unsigned char *from;
		enum jr_type t = JR_ABSENT;
		struct jsonrpc_span name = { 0 };

		jr_ws(s);
		if (s->p >= s->end) {
			jr_eof(s);
			goto out;
		}
		from = s->p;
		if (*s->p == '{') {
			bool m = true;

			if (level + 1 >= s->max_depth) {
				jr_fail(s, "nested too deeply");
				goto out;
			}
			s->p++;
			jr_ws(s);
			if (s->p < s->end && *s->p == '}') {
				s->p++;
				m = false;
			}
			while (m) {
				const unsigned char *at;
				enum jr_key k;
				enum jr_type vt;

				if (jr_key(s, &k) != 0)
					goto out;
				at = s->p;
				if (jr_value(s, level + 2, &vt, NULL) != 0)
					goto out;
				if (k == jr_lists[li].key_k) {
					if (t != JR_ABSENT) {
						s->dup = true; /* the name twice */
						goto out;
					}
					t = vt;
					name = (struct jsonrpc_span){ (const char *)at,
						(size_t)(s->p - at) };
				}
				if (jr_next(s, &m) != 0)
					goto out;
			}
		} else if (jr_value(s, level + 1, &t, NULL) != 0) {
			goto out;
		} else {
			t = JR_ABSENT; /* no object: what cannot be judged is not shown */
		}
		if (n == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			items = xreallocarray(items, cap, sizeof *items);
			kept = xreallocarray(kept, cap, sizeof *kept);
		}
		items[n] = (struct jsonrpc_span){ (const char *)from, (size_t)(s->p - from) };
		if (t == JR_STRING) {
			kept[n] = jr_keep_name(name, jr_lists[li].mid, lf,
			    (size_t)((const char *)from - lf->buf), items[n].len);
		} else {
			kept[n] = false;
			if (lf->shape != NULL)
				jr_shape_item(lf->shape, (size_t)((const char *)from - lf->buf),
				    items[n].len, NULL, 0);
		}
		dropped = dropped || !kept[n];
		n++;
		jr_ws(s);
		if (s->p >= s->end) {
			jr_eof(s);
			goto out;
		}
		if (*s->p == ']')
			more = false;
		else if (*s->p != ',') {
			jr_fail(s, "unexpected character");
			goto out;
		}
		s->p++;
	}
	if (lf->shape != NULL) {
		lf->shape->list = jr_lists[li].mid;
		lf->shape->open = (size_t)(open - lf->buf);
		lf->shape->close = (size_t)((const char *)s->p - 1 - lf->buf);
	}
	lf->lists++;
	if (dropped) {
		/* the bytes up to and with '[', the kept items, then from ']' on */
		jsonrpc_pieces_add(lf->pc, lf->buf + lf->mark,
		    (size_t)(open + 1 - (lf->buf + lf->mark)));
		for (size_t i = 0; i < n; i++) {
			if (!kept[i])
				continue;
			if (!first)
				jsonrpc_pieces_add(lf->pc, ",", 1);
			jsonrpc_pieces_add(lf->pc, items[i].p, items[i].len);
			first = false;
		}
		lf->mark = (size_t)((const char *)s->p - 1 - lf->buf);
		lf->pc->changed = true;
	}
	rc = 0;
out:
	free(items);
	free(kept);
	return rc;
}

/* Which list the response answers, by its id (list() asked once). */
static void
jr_resolve(struct jr_resp *r, struct jr_lf *lf)
{
	struct jsonrpc_msg m = { .kind = JSONRPC_RESPONSE, .mid = JSONRPC_M_NONE };

	r->resolved = true;
	r->lm = JSONRPC_M_NONE;
	if (r->id != JR_STRING && r->id != JR_INT)
		return;
	m.id = r->id_span;
	r->lm = lf->list(&m, lf->arg);
}

/* A result object at s->p, nested in level: its list members; the list
 * of ours filtered right away when the id came first. */
static int
jr_result(struct jr *s, int level, struct jr_resp *r, struct jr_lf *lf)
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
		if (k >= JR_K_TOOLS && k <= JR_K_RESOURCE_TEMPLATES) {
			size_t i = (size_t)(k - JR_K_TOOLS);

			if (r->seen[i])
				s->dup = true;
			r->seen[i] = true;
			if (r->resolved && r->lm == jr_lists[i].mid && *s->p == '[' && !s->dup) {
				if (jr_items(s, level + 1, i, lf) != 0)
					return -1;
				r->done = true;
			} else {
				if (jr_value(s, level + 1, &t, NULL) != 0)
					return -1;
				if (t == JR_ARRAY)
					r->arrays[i] = (struct jsonrpc_span){ (const char *)at,
						(size_t)(s->p - at) };
			}
		} else if (jr_value(s, level + 1, &t, NULL) != 0) {
			return -1;
		}
		if (jr_next(s, &more) != 0)
			return -1;
	}
	return 0;
}

/* A response object at s->p, nested in level. */
static int
jr_response(struct jr *s, int level, struct jr_resp *r, struct jr_lf *lf)
{
	int opened;
	enum jr_key k;
	enum jr_type t;
	bool more = true;

	memset(r, 0, sizeof *r);
	r->level = level;
	if ((opened = jr_open(s, level, '}')) <= 0)
		return opened; /* an error, or {} */
	while (more) {
		const unsigned char *at;

		if (jr_key(s, &k) != 0)
			return -1;
		at = s->p;
		if (k == JR_K_ID) {
			if (!jr_first(s, &r->id) || jr_value(s, level + 1, &r->id, NULL) != 0)
				return -1;
			r->id_span = (struct jsonrpc_span){ (const char *)at, (size_t)(s->p - at) };
		} else if (k == JR_K_RESULT) {
			if (r->result) {
				s->dup = true;
				return -1;
			}
			r->result = true;
			if (*s->p != '{') {
				if (jr_value(s, level + 1, &t, NULL) != 0)
					return -1;
			} else {
				if (r->id != JR_ABSENT)
					jr_resolve(r, lf);
				if (jr_result(s, level + 1, r, lf) != 0)
					return -1;
			}
		} else if (jr_value(s, level + 1, &t, NULL) != 0) {
			return -1;
		}
		if (jr_next(s, &more) != 0)
			return -1;
	}
	return 0;
}

/* Filter the list of one scanned response whose id came after its
 * result: a second pass over the list array. */
static int
jr_filter_one(struct jr *s, const struct jr_resp *r, struct jr_lf *lf)
{
	struct jr_resp rr = *r;

	if (s->dup || r->done || !r->result)
		return 0;
	if (!rr.resolved)
		jr_resolve(&rr, lf);
	for (size_t i = 0; i < JR_N_LISTS; i++) {
		if (jr_lists[i].mid == rr.lm && rr.arrays[i].p != NULL) {
			struct jr d = { .p = (const unsigned char *)rr.arrays[i].p,
				.start = s->start,
				.end = (const unsigned char *)rr.arrays[i].p + rr.arrays[i].len,
				.max_depth = JSONRPC_DEPTH_MAX };

			return jr_items(&d, r->level + 2, i, lf);
		}
	}
	return 0;
}

int
jsonrpc_filter_lists(const char *buf, size_t len, int max_depth, jsonrpc_list_fn list,
    jsonrpc_keep_fn keep, void *arg, struct jsonrpc_pieces *out)
{
	return jsonrpc_filter_shape(buf, len, max_depth, list, keep, arg, out, NULL);
}

int
jsonrpc_filter_shape(const char *buf, size_t len, int max_depth, jsonrpc_list_fn list,
    jsonrpc_keep_fn keep, void *arg, struct jsonrpc_pieces *out, struct jsonrpc_shape *shape)
{
	struct jr s = { .p = (const unsigned char *)buf,
		.start = (const unsigned char *)buf,
		.end = (const unsigned char *)buf + len };
	struct jr_lf lf = { .buf = buf,
		.list = list,
		.keep = keep,
		.arg = arg,
		.pc = out,
		.shape = shape };
	struct jr_resp r;
	enum jr_type t;

	memset(out, 0, sizeof *out);
	if (shape != NULL)
		memset(shape, 0, sizeof *shape);
	s.max_depth = max_depth < JSONRPC_DEPTH_MAX ? max_depth : JSONRPC_DEPTH_MAX;
	jr_ws(&s);
	if (s.p >= s.end)
		return -1;
	if (*s.p == '[') {
		bool more = true;

		if (s.max_depth < 1)
			return -1;
		s.p++;
		jr_ws(&s);
		if (s.p < s.end && *s.p == ']') {
			s.p++;
			more = false;
		}
		while (more) {
			jr_ws(&s);
			if (s.p >= s.end)
				return -1;
			if (*s.p == '{') {
				if (jr_response(&s, 1, &r, &lf) != 0 ||
				    jr_filter_one(&s, &r, &lf) != 0)
					return -1;
			} else if (jr_value(&s, 1, &t, NULL) != 0) {
				return -1;
			}
			jr_ws(&s);
			if (s.p >= s.end)
				return -1;
			if (*s.p == ']')
				more = false;
			else if (*s.p != ',')
				return -1;
			s.p++;
		}
		lf.lists = 2; /* a batch: no shape */
	} else if (*s.p == '{') {
		if (jr_response(&s, 0, &r, &lf) != 0 || jr_filter_one(&s, &r, &lf) != 0)
			return -1;
	} else if (jr_value(&s, 0, &t, NULL) != 0) {
		return -1;
	}
	jr_ws(&s);
	if (s.p < s.end || s.dup)
		return -1;
	if (out->changed)
		jsonrpc_pieces_add(out, buf + lf.mark, len - lf.mark);
	if (shape != NULL && lf.lists == 1 && (r.id == JR_STRING || r.id == JR_INT)) {
		shape->ok = true;
		shape->id_off = (size_t)(r.id_span.p - buf);
		shape->id_len = r.id_span.len;
	}
	return 0;
}

void
jsonrpc_pieces_dispose(struct jsonrpc_pieces *pc)
{
	free(pc->v);
	memset(pc, 0, sizeof *pc);
}

void
jsonrpc_shape_dispose(struct jsonrpc_shape *shape)
{
	free(shape->items);
	free(shape->names);
	memset(shape, 0, sizeof *shape);
}

bool
jsonrpc_is_list_id(const char *p, size_t len)
{
	struct jr s = { .p = (const unsigned char *)p,
		.start = (const unsigned char *)p,
		.end = (const unsigned char *)p + len,
		.max_depth = 1 };
	enum jr_type t;

	return len > 0 && (*p == '"' || *p == '-' || (*p >= '0' && *p <= '9')) &&
	    jr_value(&s, 0, &t, NULL) == 0 && s.p == s.end && (t == JR_STRING || t == JR_INT);
}
