/*
 * The rules' decision (see rules.h). Patterns are matched with an
 * iterative '*' glob (linear backtracking on the last star, no recursion),
 * so a hostile tool name cannot make matching explode; names and patterns
 * are both bounded (config and the JSON-RPC parser).
 */
#include "auth/policy/rules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/scope.h"
#include "common/xalloc.h"
#include "config/config.h"

struct rules {
	const struct config *cfg;
	bool need_claims;
};

struct rules *
rules_new(const struct config *cfg)
{
	struct rules *r = xcalloc(1, sizeof *r);

	r->cfg = cfg;
	for (size_t i = 0; i < cfg->authz.n_rules; i++) {
		const struct authz_rule *ar = &cfg->authz.rules[i];

		for (size_t j = 0; j < ar->n_claims; j++) {
			const char *n = ar->claims[j].name;

			if (strcmp(n, "sub") != 0 && strcmp(n, "client_id") != 0)
				r->need_claims = true;
		}
	}
	return r;
}

void
rules_free(struct rules *r)
{
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

bool
rules_match(const char *pattern, const char *method, const char *name)
{
	struct rules_op op = { .method = method, .name = name, .ml = strlen(method) };
	size_t lit = strcspn(pattern, "*");

	op.n = op.ml;
	if (strchr(pattern, ':') != NULL) {
		if (name == NULL)
			return false;
		op.n = op.ml + 1 + strlen(name); /* the glob may span the colon */
	}
	if (!rules_prefix_fits(pattern, lit, &op))
		return false;
	if (pattern[lit] == '\0')
		return lit == op.n; /* no glob: the whole operation */
	return rules_glob(pattern, &op);
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
rules_claim_holds(const struct authz_claim *c, const struct rules_principal *p)
{
	json_object *v = NULL;

	if (strcmp(c->name, "sub") == 0)
		return p->sub != NULL && strlist_contains(&c->values, p->sub);
	if (strcmp(c->name, "client_id") == 0)
		return p->client_id != NULL && strlist_contains(&c->values, p->client_id);
	if (p->claims == NULL || !json_object_object_get_ex(p->claims, c->name, &v))
		return false;
	return rules_value_in(v, &c->values);
}

static bool
rules_claims_hold(const struct authz_rule *ar, const struct rules_principal *p)
{
	for (size_t j = 0; j < ar->n_claims; j++) {
		if (!rules_claim_holds(&ar->claims[j], p))
			return false;
	}
	return true;
}

static bool
rules_ops_match(const struct authz_rule *ar, const char *method, const char *name)
{
	for (size_t k = 0; k < ar->operations.n; k++) {
		if (rules_match(ar->operations.v[k], method, name))
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

	for (size_t i = 0; i < cfg->authz.n_rules; i++) {
		const struct authz_rule *ar = &cfg->authz.rules[i];

		if (!rules_ops_match(ar, method, name) || !rules_claims_hold(ar, p))
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
