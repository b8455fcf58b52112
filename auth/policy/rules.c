/*
 * The rules' decision (see rules.h). Patterns are matched with an
 * iterative '*' glob (linear backtracking on the last star, no recursion),
 * so a hostile tool name cannot make matching explode; names and patterns
 * are both bounded (config and the JSON-RPC parser).
 *
 * rules_new() looks at each pattern once (its literal start, whether it
 * names a literal method), so that a decision is a few length compares and
 * memcmps per rule: most patterns name another method, or a name whose
 * literal start does not fit, and fail there without the glob.
 */
#include "auth/policy/rules.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/scope.h"
#include "common/xalloc.h"
#include "config/config.h"

#define RULES_NO_METHOD ((size_t)-1)

/* One operation pattern, compiled. */
struct rules_pat {
	const char *text; /* the config's, NUL-terminated */
	size_t len, lit;  /* its length; the bytes before its first '*' */
	bool colon;       /* it has a ':' (it looks at the name too) */
	size_t mlen; /* the ':' comes before any '*': the literal method's length, else NO_METHOD */
	int mi;      /* its literal method (mlen, or the whole pattern without ':' or '*') in
			rules.methods, else -1 */
	/* With a literal method: the name part after the ':', its bytes before
	 * the first '*', and whether it is that literal, the literal and a
	 * final '*' (the common "get-*"), or a glob past it. */
	const char *np;
	size_t nlit;
	enum { RULES_NAME_EXACT, RULES_NAME_PREFIX, RULES_NAME_GLOB } nkind;
};

/* Where a claim condition reads from. */
enum rules_from { RULES_FROM_SUB, RULES_FROM_CLIENT_ID, RULES_FROM_CLAIMS };

struct rules_rule {
	struct rules_pat *pats;
	size_t n;
	enum rules_from *from; /* one per claim condition */
};

/* A literal method some pattern names. */
struct rules_method {
	const char *s;
	size_t len;
};

struct rules {
	const struct config *cfg;
	bool need_claims;
	struct rules_rule *rules;
	/* The distinct literal methods of the patterns: a decision finds its
	 * method here once, then a pattern's method is an index compare. */
	struct rules_method *methods;
	size_t n_methods, cap_methods;
	/* Per method index (the last one for a method none names): the
	 * patterns that can match it, in rule order: its own and those whose
	 * method part has a '*'. */
	struct rules_cands *cands;
};

/* A pattern that can match some method: rule i, its pattern k. */
struct rules_cand {
	size_t rule;
	const struct rules_pat *pt;
};

/* A method's candidates, and beside them (in arrays of their own, for a
 * tight loop) a quick test: a name whose first bytes (up to eight) under
 * mask[k] differ from key[k], or that is shorter than nlit[k], cannot
 * match candidate k. It is set for the patterns that name their method
 * and then a name (the literal start of the name); for the others mask
 * and nlit are 0 and every name passes. Most candidates of a decision are
 * refused by it. */
struct rules_cands {
	struct rules_cand *v;
	uint64_t *key, *mask;
	size_t *nlit;
	size_t n;
};

#define RULES_CUR_UNKNOWN (-2) /* the method was not looked up (rules_match) */

/* Bytes compared in line: names and literal starts are short. */
static bool
rules_same(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (a[i] != b[i])
			return false;
	}
	return true;
}

/* Which of r's literal methods len bytes at m are, or -1. */
static int
rules_method_index(const struct rules *r, const char *m, size_t len)
{
	for (size_t i = 0; i < r->n_methods; i++) {
		if (r->methods[i].len == len && rules_same(r->methods[i].s, m, len))
			return (int)i;
	}
	return -1;
}

/* Note pt's literal method in r. */
static void
rules_intern(struct rules *r, struct rules_pat *pt)
{
	size_t len = pt->mlen != RULES_NO_METHOD ? pt->mlen
	    : !pt->colon && pt->lit == pt->len   ? pt->len
						 : RULES_NO_METHOD;

	if (len == RULES_NO_METHOD)
		return;
	if ((pt->mi = rules_method_index(r, pt->text, len)) >= 0)
		return;
	if (r->n_methods == r->cap_methods) {
		r->cap_methods = r->cap_methods == 0 ? 8 : r->cap_methods * 2;
		r->methods = xreallocarray(r->methods, r->cap_methods, sizeof *r->methods);
	}
	r->methods[r->n_methods] = (struct rules_method){ pt->text, len };
	pt->mi = (int)r->n_methods++;
}

static void
rules_pat_init(struct rules_pat *pt, const char *text)
{
	const char *colon = strchr(text, ':');

	pt->text = text;
	pt->len = strlen(text);
	pt->lit = strcspn(text, "*");
	pt->colon = colon != NULL;
	pt->mlen = colon != NULL && (size_t)(colon - text) < pt->lit ? (size_t)(colon - text)
								     : RULES_NO_METHOD;
	pt->mi = -1;
	if (pt->mlen != RULES_NO_METHOD) {
		pt->np = text + pt->mlen + 1;
		pt->nlit = pt->lit - pt->mlen - 1;
		pt->nkind = pt->lit == pt->len ? RULES_NAME_EXACT
		    : pt->lit + 1 == pt->len   ? RULES_NAME_PREFIX
					       : RULES_NAME_GLOB;
	}
}

/* The first min(n, 8) bytes at p as a word, zero-padded (byte order
 * does not matter: keys and names are read alike). */
static uint64_t
rules_word(const char *p, size_t n)
{
	unsigned char b[8] = { 0 };
	uint64_t w;

	memcpy(b, p, n < 8 ? n : 8);
	memcpy(&w, b, 8);
	return w;
}

/* Add rule's pattern pt to c, with its quick test. */
static void
rules_cand_add(struct rules_cands *c, size_t *cap, size_t rule, const struct rules_pat *pt)
{
	unsigned char m[8] = { 0 };
	size_t k = c->n;

	if (c->n == *cap) {
		*cap = *cap == 0 ? 8 : *cap * 2;
		c->v = xreallocarray(c->v, *cap, sizeof *c->v);
		c->key = xreallocarray(c->key, *cap, sizeof *c->key);
		c->mask = xreallocarray(c->mask, *cap, sizeof *c->mask);
		c->nlit = xreallocarray(c->nlit, *cap, sizeof *c->nlit);
	}
	c->v[k] = (struct rules_cand){ rule, pt };
	c->key[k] = c->mask[k] = 0;
	c->nlit[k] = 0;
	if (pt->mi >= 0 && pt->mlen != RULES_NO_METHOD) {
		c->key[k] = rules_word(pt->np, pt->nlit);
		memset(m, 0xff, pt->nlit < 8 ? pt->nlit : 8);
		memcpy(&c->mask[k], m, 8);
		c->nlit[k] = pt->nlit;
	}
	c->n++;
}

struct rules *
rules_new(const struct config *cfg)
{
	struct rules *r = xcalloc(1, sizeof *r);

	r->cfg = cfg;
	r->rules = xcalloc(cfg->authz.n_rules + 1, sizeof *r->rules);
	for (size_t i = 0; i < cfg->authz.n_rules; i++) {
		const struct authz_rule *ar = &cfg->authz.rules[i];
		struct rules_rule *rr = &r->rules[i];

		rr->n = ar->operations.n;
		rr->pats = xcalloc(rr->n + 1, sizeof *rr->pats);
		for (size_t k = 0; k < rr->n; k++) {
			rules_pat_init(&rr->pats[k], ar->operations.v[k]);
			rules_intern(r, &rr->pats[k]);
		}
		rr->from = xcalloc(ar->n_claims + 1, sizeof *rr->from);
		for (size_t j = 0; j < ar->n_claims; j++) {
			const char *n = ar->claims[j].name;

			if (strcmp(n, "sub") == 0) {
				rr->from[j] = RULES_FROM_SUB;
			} else if (strcmp(n, "client_id") == 0) {
				rr->from[j] = RULES_FROM_CLIENT_ID;
			} else {
				rr->from[j] = RULES_FROM_CLAIMS;
				r->need_claims = true;
			}
		}
	}
	/* the candidates of each method, then of a method none names */
	r->cands = xcalloc(r->n_methods + 1, sizeof *r->cands);
	for (size_t m = 0; m <= r->n_methods; m++) {
		struct rules_cands *c = &r->cands[m];
		size_t cap = 0;

		for (size_t i = 0; i < cfg->authz.n_rules; i++) {
			for (size_t k = 0; k < r->rules[i].n; k++) {
				const struct rules_pat *pt = &r->rules[i].pats[k];

				if (pt->mi >= 0 && (size_t)pt->mi != m)
					continue;
				rules_cand_add(c, &cap, i, pt);
			}
		}
	}
	return r;
}

void
rules_free(struct rules *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->cfg->authz.n_rules; i++) {
		free(r->rules[i].pats);
		free(r->rules[i].from);
	}
	for (size_t m = 0; m <= r->n_methods; m++) {
		free(r->cands[m].v);
		free(r->cands[m].key);
		free(r->cands[m].mask);
		free(r->cands[m].nlit);
	}
	free(r->cands);
	free(r->rules);
	free(r->methods);
	free(r);
}

size_t
rules_count(const struct rules *r)
{
	return r->cfg->authz.n_rules;
}

bool
rules_need_claims(const struct rules *r)
{
	return r->need_claims;
}

/* The operation as one string without building it: method, then (with a
 * name) ':' and the name. */
struct rules_op {
	const char *method, *name;
	size_t ml, n;
};

static char
rules_op_at(const struct rules_op *op, size_t i)
{
	if (i < op->ml)
		return op->method[i];
	if (i == op->ml)
		return ':';
	return op->name[i - op->ml - 1];
}

/* Glob op against p (NUL-terminated): '*' is any run. */
static bool
rules_glob(const char *p, const struct rules_op *op)
{
	const char *star = NULL;
	size_t i = 0, back = 0;

	while (i < op->n) {
		if (*p == '*') {
			star = ++p;
			back = i;
		} else if (*p != '\0' && *p == rules_op_at(op, i)) {
			p++;
			i++;
		} else if (star != NULL) {
			p = star;
			i = ++back;
		} else {
			return false;
		}
	}
	while (*p == '*')
		p++;
	return *p == '\0';
}

/* Does the literal start of pattern (before its first '*') fit op? Most
 * patterns that fail, fail here, with a memcmp instead of the glob. */
static bool
rules_prefix_fits(const char *pattern, size_t lit, const struct rules_op *op)
{
	size_t nl = op->n > op->ml ? op->n - op->ml - 1 : 0;

	if (lit > op->n)
		return false;
	if (lit <= op->ml)
		return memcmp(pattern, op->method, lit) == 0;
	return memcmp(pattern, op->method, op->ml) == 0 && pattern[op->ml] == ':' &&
	    lit - op->ml - 1 <= nl && memcmp(pattern + op->ml + 1, op->name, lit - op->ml - 1) == 0;
}

/* Does compiled pattern pt match method (ml bytes) with name (nl bytes,
 * or NULL)? plain: the method has no ':' (then a pattern's literal method
 * can only match it whole, and the name is matched alone); cur: the
 * method's index in the rules' literal methods (-1 none of them), or
 * RULES_CUR_UNKNOWN. */
static bool
rules_pat_match(const struct rules_pat *pt, const char *method, size_t ml, const char *name,
    size_t nl, bool plain, int cur)
{
	struct rules_op op = { .method = method, .name = name, .ml = ml, .n = ml };
	bool known = pt->mi >= 0 && cur != RULES_CUR_UNKNOWN;

	if (!pt->colon) {
		if (pt->lit == pt->len)
			return known ? pt->mi == cur
				     : ml == pt->len && memcmp(pt->text, method, ml) == 0;
	} else {
		if (name == NULL)
			return false;
		if (pt->mlen != RULES_NO_METHOD && plain) {
			struct rules_op nop = { .method = name + pt->nlit,
				.ml = nl - pt->nlit,
				.n = nl - pt->nlit };

			if (known ? pt->mi != cur
				  : ml != pt->mlen || memcmp(pt->text, method, ml) != 0)
				return false;
			/* the literal start first: most names fail at its first byte */
			if (nl < pt->nlit || (pt->nlit > 0 && name[0] != pt->np[0]) ||
			    !rules_same(pt->np, name, pt->nlit))
				return false;
			if (pt->nkind == RULES_NAME_EXACT)
				return nl == pt->nlit;
			return pt->nkind == RULES_NAME_PREFIX ||
			    rules_glob(pt->np + pt->nlit, &nop);
		}
		op.n = ml + 1 + nl; /* the glob may span the colon */
	}
	if (!rules_prefix_fits(pt->text, pt->lit, &op))
		return false;
	if (pt->lit == pt->len)
		return pt->lit == op.n; /* no glob: the whole operation */
	return rules_glob(pt->text, &op);
}

bool
rules_match(const char *pattern, const char *method, const char *name)
{
	struct rules_pat pt;
	size_t ml = strlen(method);

	rules_pat_init(&pt, pattern);
	return rules_pat_match(&pt, method, ml, name, name != NULL ? strlen(name) : 0,
	    memchr(method, ':', ml) == NULL, RULES_CUR_UNKNOWN);
}

/* Does one value of the claim (a string, or an array holding strings,
 * numbers or booleans; numbers and booleans compare as their JSON text)
 * equal one of values? */
static bool
rules_value_in(json_object *v, const struct strlist *values)
{
	const char *s;
	size_t n;

	if (v == NULL)
		return false;
	if (json_object_is_type(v, json_type_array)) {
		n = json_object_array_length(v);
		for (size_t i = 0; i < n && i < 1024; i++) {
			json_object *e = json_object_array_get_idx(v, i);

			if (e != NULL && !json_object_is_type(e, json_type_array) &&
			    rules_value_in(e, values))
				return true;
		}
		return false;
	}
	if (json_object_is_type(v, json_type_object) || json_object_is_type(v, json_type_null))
		return false;
	s = json_object_is_type(v, json_type_string)
	    ? json_object_get_string(v)
	    : json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
	return s != NULL && strlist_contains(values, s);
}

/* Does the principal's claim name hold one of values? sub and client_id
 * come from the token itself, never from the further claims. */
static bool
rules_claim_holds(const struct authz_claim *c, enum rules_from from,
    const struct rules_principal *p)
{
	json_object *v = NULL;

	if (from == RULES_FROM_SUB)
		return p->sub != NULL && strlist_contains(&c->values, p->sub);
	if (from == RULES_FROM_CLIENT_ID)
		return p->client_id != NULL && strlist_contains(&c->values, p->client_id);
	if (p->claims == NULL || !json_object_object_get_ex(p->claims, c->name, &v))
		return false;
	return rules_value_in(v, &c->values);
}

static bool
rules_claims_hold(const struct authz_rule *ar, const struct rules_rule *rr,
    const struct rules_principal *p)
{
	for (size_t j = 0; j < ar->n_claims; j++) {
		if (!rules_claim_holds(&ar->claims[j], rr->from[j], p))
			return false;
	}
	return true;
}

static bool
rules_ops_match(const struct rules_rule *rr, const char *method, size_t ml, const char *name,
    size_t nl, bool plain, int cur)
{
	for (size_t k = 0; k < rr->n; k++) {
		if (rules_pat_match(&rr->pats[k], method, ml, name, nl, plain, cur))
			return true;
	}
	return false;
}

struct rules_verdict
rules_decide(const struct rules *r, const char *method, const char *name,
    const struct rules_principal *p)
{
	const struct config *cfg = r->cfg;
	struct rules_verdict v = { .rule = -1 };
	int step_up = -1;
	const char *missing;
	size_t ml = strlen(method), nl = name != NULL ? strlen(name) : 0;
	bool plain = memchr(method, ':', ml) == NULL;
	int cur = rules_method_index(r, method, ml);
	const struct rules_cands *c = &r->cands[cur >= 0 ? (size_t)cur : r->n_methods];
	size_t k = 0, i = 0, n = plain ? c->n : cfg->authz.n_rules, tried = (size_t)-1;
	uint64_t nkey = name != NULL ? rules_word(name, nl) : 0;

	/* A method with a ':' of its own may match patterns of other methods
	 * across the colon: then every rule is tried. */
	for (; k < n; k++) {
		const struct authz_rule *ar;
		const struct rules_rule *rr;

		if (plain) {
			/* a name NULL is 0 bytes: refused by a quick test with a
			 * literal start, by the match (no name) otherwise */
			if (((nkey ^ c->key[k]) & c->mask[k]) != 0 || nl < c->nlit[k])
				continue;
			if (c->v[k].rule == tried)
				continue; /* another of its patterns matched: the rule was tried */
			i = c->v[k].rule;
			if (!rules_pat_match(c->v[k].pt, method, ml, name, nl, plain, cur))
				continue;
			tried = i;
		} else {
			i = k;
			if (!rules_ops_match(&r->rules[i], method, ml, name, nl, plain, cur))
				continue;
		}
		ar = &cfg->authz.rules[i];
		rr = &r->rules[i];
		if (!rules_claims_hold(ar, rr, p))
			continue;
		if (ar->deny) {
			v.decision = RULES_DENY;
			v.rule = (int)i;
			return v;
		}
		if (scope_cover(p->scope != NULL ? p->scope : "", &ar->scopes, &missing)) {
			v.decision = RULES_ALLOW;
			v.rule = (int)i;
			return v;
		}
		if (step_up < 0)
			step_up = (int)i;
	}
	if (step_up >= 0) {
		v.decision = RULES_STEP_UP;
		v.rule = step_up;
		v.scopes = &cfg->authz.rules[step_up].scopes;
		return v;
	}
	v.decision = cfg->authz.default_decision == 1 ? RULES_ALLOW : RULES_DENY;
	return v;
}

const char *
rules_label(const struct rules_verdict *v, char *buf, size_t len)
{
	if (v->rule < 0)
		snprintf(buf, len, "default");
	else
		snprintf(buf, len, "rules[%d]", v->rule);
	return buf;
}
