/*
 * The MCP authorization rules, compiled from authorization.rules[], and
 * the pure decision over one MCP operation and the principal's claims: no
 * loop, no I/O, no allocation (patterns are compiled by rules_new()).
 *
 * An operation is "method" or "method:name" (the tool or prompt name, the
 * resource URI). A pattern matches with '*' standing for any run of
 * characters (':' and '/' included); a pattern without ':' names a method
 * and matches it whatever the name. initialize, ping, notifications and
 * responses always pass (the caller does not ask about them). The rules
 * are tried in order; the first whose operations match and whose
 * conditions hold decides; an allow rule that matched and failed only for
 * scopes the token lacks is remembered: when no later rule decides, the
 * answer is step-up with that rule's scopes, else the default.
 */
#ifndef AUTH_POLICY_RULES_H
#define AUTH_POLICY_RULES_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/strlist.h"

struct config;
struct rules;

/* Who asks: the token's sub, scope and client_id, and its further claims
 * (NULL when none) as a parsed JSON object (borrowed). */
struct rules_principal {
	const char *sub;
	const char *scope; /* space-separated */
	const char *client_id;
	json_object *claims;
};

enum rules_decision {
	RULES_ALLOW,
	RULES_DENY,
	RULES_STEP_UP, /* an allow rule would allow it with more scopes */
};

/* What decided: rule is the index in authorization.rules[], -1 for the
 * default decision. */
struct rules_verdict {
	enum rules_decision decision;
	int rule;
	const struct strlist *scopes; /* RULES_STEP_UP: the rule's scopes (borrowed) */
};

/* Compile cfg->authz (kept by reference: cfg outlives the rules). */
struct rules *rules_new(const struct config *cfg);
void rules_free(struct rules *r); /* NULL is fine */
size_t rules_count(const struct rules *r);
/* Does any rule look at claims other than sub/scope/client_id? (Then the
 * caller parses the principal's claims JSON.) */
bool rules_need_claims(const struct rules *r);

/* Decide one operation (method, name may be NULL). */
struct rules_verdict rules_decide(const struct rules *r, const char *method, const char *name,
    const struct rules_principal *p);

/* Does pattern match the operation? (Exposed for tests.) */
bool rules_match(const char *pattern, const char *method, const char *name);

/* A short label for the verdict's rule ("rules[2]" or "default"), for
 * audit lines and logs; buf of 24 bytes suffices. */
const char *rules_label(const struct rules_verdict *v, char *buf, size_t len);

#endif
