/*
 * authorization.rules[]: the shape of MCP authorization rules, read from
 * the file with located errors (file:line:col and the key path of every
 * problem, all of them, not only the first), printed back for
 * --print-config. What the rules mean is auth/policy's; this file only
 * knows which keys a rule has and what their values look like.
 */
#include "config/config.h"

#include "common/xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "config/config_private.h"

#define RULES_MAX 256      /* rules in the list */
#define RULE_MAX_CLAIMS 16 /* claim conditions in one rule */
#define RULE_MAX_OPERATION 512

/* NULL when s can be an operation pattern, else what is expected. */
static const char *
rules_check_operation(const char *s)
{
	if (*s == '\0' || *s == ':')
		return "expected an operation \"method\" or \"method:name\" (with * globs)";
	if (strlen(s) > RULE_MAX_OPERATION)
		return "expected an operation of at most 512 bytes";
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p <= 0x20 || *p == 0x7f)
			return "expected an operation without spaces or control characters";
	}
	return NULL;
}

/* NULL when s can be a claim name. */
static const char *
rules_check_claim_name(const char *s)
{
	if (*s == '\0' || strlen(s) > 128)
		return "expected a claim name of 1 to 128 bytes";
	return NULL;
}

/* NULL when s can be an OAuth scope (RFC 6749 §3.3 scope-token). */
static const char *
rules_check_scope(const char *s)
{
	if (*s == '\0')
		return "expected a scope";
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p < 0x21 || *p == '"' || *p == '\\' || *p > 0x7e)
			return "expected a scope (printable ASCII without spaces, quotes or "
			       "backslashes)";
	}
	return NULL;
}

static void
rules_error(struct load *ld, const yaml_node_t *n, const char *path, const char *fmt,
    const char *arg)
{
	char *w = config_where_mark(ld, n->start_mark);

	config_errs_add(ld->errs, w, path, fmt, arg);
	free(w);
}

/* A list of strings (or, with scalar_ok, one string) into l, each checked. */
static void
rules_strings(struct load *ld, const yaml_node_t *n, const char *path, struct strlist *l,
    setting_check_fn check, bool scalar_ok)
{
	const char *v, *why;

	if (scalar_ok && n->type == YAML_SCALAR_NODE) {
		if ((v = config_scalar_text(ld, n, path, "a string")) == NULL)
			return;
		if ((why = check(v)) != NULL) {
			rules_error(ld, n, path, "%s", why);
			return;
		}
		strlist_add(l, v);
		return;
	}
	if (n->type != YAML_SEQUENCE_NODE) {
		rules_error(ld, n, path, "expected a list of strings, got %s", config_node_kind(n));
		return;
	}
	for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
	     it++) {
		size_t i = (size_t)(it - n->data.sequence.items.start);
		char *ipath = xasprintf("%s[%zu]", path, i);
		yaml_node_t *item = config_take_node(ld, *it, ipath);

		if (item == NULL) {
			free(ipath);
			continue;
		}
		if (i >= CONFIG_MAX_LIST) {
			char max[16];

			snprintf(max, sizeof max, "%d", CONFIG_MAX_LIST);
			rules_error(ld, item, path, "expected at most %s items", max);
			free(ipath);
			break;
		}
		if ((v = config_scalar_text(ld, item, ipath, "a string")) != NULL) {
			if ((why = check(v)) != NULL) {
				char *w = config_where_mark(ld, item->start_mark),
				     *q = config_quote_value(v);

				config_errs_add(ld->errs, w, ipath, "%s, got %s", why, q);
				free(q);
				free(w);
			} else {
				strlist_add(l, v);
			}
		}
		free(ipath);
	}
}

/* claims: {name: value | [values]} */
static void
rules_claims(struct load *ld, const yaml_node_t *n, const char *path, struct authz_rule *r)
{
	yaml_node_pair_t *pr;
	size_t count;

	if (n->type != YAML_MAPPING_NODE) {
		rules_error(ld, n, path, "expected a mapping of claim names to values, got %s",
		    config_node_kind(n));
		return;
	}
	count = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
	if (count > RULE_MAX_CLAIMS) {
		rules_error(ld, n, path, "expected at most %s claims", "16");
		return;
	}
	r->claims = xcalloc(count > 0 ? count : 1, sizeof *r->claims);
	for (pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
		yaml_node_t *k = config_take_node(ld, pr->key, path), *v;
		const char *ks, *why;
		char *kpath;
		bool dup = false;

		if (k == NULL || (ks = config_scalar_text(ld, k, path, "a claim name")) == NULL)
			continue;
		kpath = xasprintf("%s.%s", path, ks);
		for (size_t i = 0; i < r->n_claims; i++)
			dup = dup || strcmp(r->claims[i].name, ks) == 0;
		if (dup)
			rules_error(ld, k, kpath, "duplicate key%s", "");
		else if ((why = rules_check_claim_name(ks)) != NULL)
			rules_error(ld, k, kpath, "%s", why);
		else if ((v = config_take_node(ld, pr->value, kpath)) != NULL) {
			struct authz_claim *c = &r->claims[r->n_claims++];

			c->name = xstrdup(ks);
			rules_strings(ld, v, kpath, &c->values, rules_check_claim_name, true);
			if (c->values.n == 0 && v->type == YAML_SEQUENCE_NODE)
				rules_error(ld, v, kpath, "expected at least one value%s", "");
		}
		free(kpath);
	}
}

/* allow: {scopes, claims} or deny: {claims}. */
static void
rules_conditions(struct load *ld, const yaml_node_t *n, const char *path, struct authz_rule *r)
{
	yaml_node_pair_t *pr;
	bool seen_scopes = false, seen_claims = false;

	if (n->type == YAML_SCALAR_NODE && n->data.scalar.length == 0)
		return; /* allow: / deny: without conditions */
	if (n->type != YAML_MAPPING_NODE) {
		rules_error(ld, n, path, "expected a mapping, got %s", config_node_kind(n));
		return;
	}
	for (pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
		yaml_node_t *k = config_take_node(ld, pr->key, path), *v;
		const char *ks;
		char *kpath;

		if (k == NULL || (ks = config_scalar_text(ld, k, path, "a key")) == NULL)
			continue;
		kpath = xasprintf("%s.%s", path, ks);
		if (strcmp(ks, "scopes") == 0 && !r->deny) {
			if (seen_scopes)
				rules_error(ld, k, kpath, "duplicate key%s", "");
			else if ((v = config_take_node(ld, pr->value, kpath)) != NULL)
				rules_strings(ld, v, kpath, &r->scopes, rules_check_scope, false);
			seen_scopes = true;
		} else if (strcmp(ks, "claims") == 0) {
			if (seen_claims)
				rules_error(ld, k, kpath, "duplicate key%s", "");
			else if ((v = config_take_node(ld, pr->value, kpath)) != NULL)
				rules_claims(ld, v, kpath, r);
			seen_claims = true;
		} else {
			rules_error(ld, k, kpath, "unknown key (expected %s)",
			    r->deny ? "claims" : "scopes or claims");
		}
		free(kpath);
	}
}

/* One rule: {name?, operations, allow | deny}. */
static void
rules_one(struct load *ld, const yaml_node_t *n, const char *path, struct authz_rule *r)
{
	const yaml_node_t *cond = NULL;
	yaml_node_pair_t *pr;
	bool seen_ops = false;
	char *cpath = NULL;

	r->where = config_where_mark(ld, n->start_mark);
	if (n->type != YAML_MAPPING_NODE) {
		rules_error(ld, n, path, "expected a rule {operations, allow | deny}, got %s",
		    config_node_kind(n));
		return;
	}
	for (pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
		yaml_node_t *k = config_take_node(ld, pr->key, path), *v;
		const char *ks;
		char *kpath;

		if (k == NULL || (ks = config_scalar_text(ld, k, path, "a key")) == NULL)
			continue;
		kpath = xasprintf("%s.%s", path, ks);
		if (strcmp(ks, "operations") == 0) {
			if (seen_ops)
				rules_error(ld, k, kpath, "duplicate key%s", "");
			else if ((v = config_take_node(ld, pr->value, kpath)) != NULL) {
				rules_strings(ld, v, kpath, &r->operations, rules_check_operation,
				    false);
				if (v->type == YAML_SEQUENCE_NODE &&
				    v->data.sequence.items.top == v->data.sequence.items.start)
					rules_error(ld, v, kpath,
					    "expected at least one operation%s", "");
			}
			seen_ops = true;
		} else if (strcmp(ks, "allow") == 0 || strcmp(ks, "deny") == 0) {
			if (cond != NULL)
				rules_error(ld, k, kpath, "expected one of allow or deny%s",
				    ", not both");
			else if ((v = config_take_node(ld, pr->value, kpath)) != NULL) {
				r->deny = ks[0] == 'd';
				cond = v;
				cpath = xstrdup(kpath);
			}
		} else {
			rules_error(ld, k, kpath, "unknown key (expected %s)",
			    "operations, allow or deny");
		}
		free(kpath);
	}
	if (!seen_ops)
		rules_error(ld, n, path, "a rule needs operations%s", "");
	if (cond == NULL)
		rules_error(ld, n, path, "a rule needs allow or deny%s", "");
	else
		rules_conditions(ld, cond, cpath, r);
	free(cpath);
}

void
config_load_rules(struct load *ld, const yaml_node_t *n, const char *path)
{
	struct config *cfg = ld->cfg;
	size_t count;

	config_rules_dispose(cfg);
	if (n->type == YAML_SCALAR_NODE && n->data.scalar.length == 0)
		return;
	if (n->type != YAML_SEQUENCE_NODE) {
		rules_error(ld, n, path, "expected a list of authorization rules, got %s",
		    config_node_kind(n));
		return;
	}
	count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	if (count > RULES_MAX) {
		rules_error(ld, n, path, "expected at most %s rules", "256");
		return;
	}
	cfg->authz.rules = xcalloc(count > 0 ? count : 1, sizeof *cfg->authz.rules);
	cfg->authz.n_rules = count;
	for (size_t i = 0; i < count; i++) {
		char *ipath = xasprintf("%s[%zu]", path, i);
		yaml_node_t *item = config_take_node(ld, n->data.sequence.items.start[i], ipath);

		if (item != NULL)
			rules_one(ld, item, ipath, &cfg->authz.rules[i]);
		free(ipath);
	}
}

void
config_rules_dispose(struct config *cfg)
{
	for (size_t i = 0; i < cfg->authz.n_rules; i++) {
		struct authz_rule *r = &cfg->authz.rules[i];

		strlist_dispose(&r->operations);
		strlist_dispose(&r->scopes);
		for (size_t j = 0; j < r->n_claims; j++) {
			free(r->claims[j].name);
			strlist_dispose(&r->claims[j].values);
		}
		free(r->claims);
		free(r->where);
	}
	free(cfg->authz.rules);
	cfg->authz.rules = NULL;
	cfg->authz.n_rules = 0;
}

/* A YAML flow list of quoted strings. */
static void
rules_print_list(FILE *out, const struct strlist *l)
{
	fputc('[', out);
	for (size_t i = 0; i < l->n; i++) {
		fputs(i ? ", " : "", out);
		config_print_quoted(out, l->v[i]);
	}
	fputc(']', out);
}

void
config_print_rules(FILE *out, const struct config *cfg, int indent)
{
	if (cfg->authz.n_rules == 0) {
		fputs(" []\n", out);
		return;
	}
	fputc('\n', out);
	for (size_t i = 0; i < cfg->authz.n_rules; i++) {
		const struct authz_rule *r = &cfg->authz.rules[i];

		fprintf(out, "%*s- operations: ", indent + 2, "");
		rules_print_list(out, &r->operations);
		fprintf(out, "\n%*s%s: {", indent + 4, "", r->deny ? "deny" : "allow");
		if (!r->deny) {
			fputs("scopes: ", out);
			rules_print_list(out, &r->scopes);
		}
		if (r->n_claims > 0) {
			fputs(r->deny ? "claims: {" : ", claims: {", out);
			for (size_t j = 0; j < r->n_claims; j++) {
				fputs(j ? ", " : "", out);
				config_print_quoted(out, r->claims[j].name);
				fputs(": ", out);
				rules_print_list(out, &r->claims[j].values);
			}
			fputc('}', out);
		}
		fputs("}\n", out);
	}
}
