/*
 * Unit tests of auth/policy/rules: the operation globs, first-match order,
 * claims (strings, arrays, numbers, sub/client_id from the token), scopes
 * and step-up, the default decision.
 */
#include "auth/policy/rules.h"

#include "common/xalloc.h"
#include "config/config.h"
#include "test/unit/unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A config (auth.mode none) with the authorization section yaml. */
static struct config *
load_rules_yaml(const char *yaml)
{
	char dir[] = "/tmp/mcppolXXXXXX", *path;
	struct config_errors errs = { 0 };
	struct config *cfg = config_new();
	FILE *f;

	CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
	path = xasprintf("%s/config.yaml", dir);
	f = fopen(path, "w");
	CU_ASSERT_FATAL(f != NULL);
	fprintf(f, "auth:\n  mode: none\n%s", yaml);
	fclose(f);
	if (config_load(cfg, path, NULL, &errs) != 0) {
		for (size_t i = 0; i < errs.n; i++) {
			char *l = config_error_line(&errs.v[i]);
			fprintf(stderr, "%s\n", l);
			free(l);
		}
		CU_FAIL_FATAL("config did not load");
	}
	config_errors_dispose(&errs);
	unlink(path);
	rmdir(dir);
	free(path);
	return cfg;
}

static const char issue_rules[] =
    "authorization:\n"
    "  defaultDecision: deny\n"
    "  rules:\n"
    "    - operations: [\"tools/list\", \"tools/call:echo\", \"tools/call:get-*\", \"prompts/*\", "
    "\"resources/read:file:///public/*\"]\n"
    "      allow: {scopes: [\"mcp:read\"]}\n"
    "    - operations: [\"tools/call:delete-*\"]\n"
    "      deny: {claims: {sub: [\"guest\"]}}\n"
    "    - operations: [\"tools/call:*\"]\n"
    "      allow: {scopes: [\"mcp:admin\"], claims: {groups: [\"admins\"]}}\n";

static void
test_match(void)
{
	CU_ASSERT_TRUE(rules_match("tools/list", "tools/list", NULL));
	CU_ASSERT_FALSE(rules_match("tools/list", "tools/lis", NULL));
	CU_ASSERT_FALSE(rules_match("tools/list", "tools/listx", NULL));
	/* a method pattern matches whatever the name */
	CU_ASSERT_TRUE(rules_match("tools/call", "tools/call", "echo"));
	CU_ASSERT_TRUE(rules_match("tools/call:echo", "tools/call", "echo"));
	CU_ASSERT_FALSE(rules_match("tools/call:echo", "tools/call", "echo2"));
	CU_ASSERT_FALSE(rules_match("tools/call:echo", "tools/call", NULL));
	CU_ASSERT_TRUE(rules_match("tools/call:get-*", "tools/call", "get-sum"));
	CU_ASSERT_TRUE(rules_match("tools/call:get-*", "tools/call", "get-"));
	CU_ASSERT_FALSE(rules_match("tools/call:get-*", "tools/call", "xget-sum"));
	CU_ASSERT_TRUE(rules_match("tools/call:*", "tools/call", "anything:with/colons"));
	CU_ASSERT_TRUE(rules_match("prompts/*", "prompts/get", "p"));
	CU_ASSERT_TRUE(rules_match("prompts/*", "prompts/list", NULL));
	CU_ASSERT_FALSE(rules_match("prompts/*", "tools/list", NULL));
	CU_ASSERT_TRUE(rules_match("resources/read:file:///public/*", "resources/read",
	    "file:///public/a/b.txt"));
	CU_ASSERT_FALSE(rules_match("resources/read:file:///public/*", "resources/read",
	    "file:///private/a"));
	CU_ASSERT_TRUE(rules_match("*:*", "tools/call", "x"));
	CU_ASSERT_TRUE(rules_match("*", "tools/call", "x"));
	CU_ASSERT_TRUE(rules_match("t*s/c*l:e*o", "tools/call", "echo"));
	CU_ASSERT_TRUE(rules_match("*:*a*b*c", "tools/call", "aaaaaaaaaaaaaaaaaaabbbbbbbbbbbbbbbc"));
	CU_ASSERT_FALSE(rules_match("*:*a*b*c", "tools/call", "aaaaaaaaaaaaaaaaaaabbbbbbbbbbbbbbbd"));
	CU_ASSERT_FALSE(rules_match("tools/call:", "tools/call", "x"));
	CU_ASSERT_TRUE(rules_match("tools/call:", "tools/call", ""));
	/* a method with a ':' of its own: the pattern reads "method:name" whole */
	CU_ASSERT_TRUE(rules_match("tools/call:a:b", "tools/call:a", "b"));
	CU_ASSERT_TRUE(rules_match("tools/call:a:b", "tools/call", "a:b"));
	CU_ASSERT_FALSE(rules_match("tools/call:a", "tools/call:a", NULL));
}

/* The glob as the rules define it, slowly: '*' any run, over "method" or
 * "method:name". */
static bool
ref_glob(const char *p, const char *s)
{
	if (*p == '\0')
		return *s == '\0';
	if (*p == '*')
		return ref_glob(p + 1, s) || (*s != '\0' && ref_glob(p, s + 1));
	return *s == *p && ref_glob(p + 1, s + 1);
}

/* The compiled patterns' short cuts (a literal method, a literal name
 * start) decide as the plain glob does, over every pattern, method and
 * name of a small set. */
static void
test_match_reference(void)
{
	static const char *const pats[] = { "tools/call", "tools/call:echo", "tools/call:e*",
		"tools/call:*o", "tools/call:", "tools/call:*", "tools/*", "tools/*:echo", "*",
		"*:*", "*:", ":", "::", "t*:e*o", "tools/call:a:b", "tools/call:a:*", "tools/call:*:b",
		"tools/call:a*b*c", "*call", "tools/call*", "tools/call*:x", "prompts/get:p1",
		"resources/read:file:///pub/*", "**", "tools/call:**",
		/* name literals of eight bytes and more (the candidates' quick test) */
		"tools/call:abcdefgh", "tools/call:abcdefghij*", "tools/call:abcdefghijkl",
		"tools/call:abcdefgh*x" };
	static const char *const methods[] = { "tools/call", "tools/cal", "tools/callx",
		"tools/call:a", "prompts/get", "resources/read", "", ":", "t:" };
	static const char *const names[] = { NULL, "", "echo", "e", "o", "a:b", "b", "abc",
		"aXbYc", "p1", "file:///pub/x", "file:///priv", ":", "x", "abcdefg", "abcdefgh",
		"abcdefghij", "abcdefghijk", "abcdefghiXk", "abcdefghijkl", "abcdefghx", "abcdefgXij" };
	char op[128], yaml[512];
	struct config *cfg[sizeof pats / sizeof pats[0]];
	struct rules *r[sizeof pats / sizeof pats[0]];
	const struct rules_principal nobody = { .sub = "u" };

	/* rule 0 names other literal methods (so they are known to the rules
	 * but do not match), rule 1 is the pattern */
	for (size_t i = 0; i < sizeof pats / sizeof pats[0]; i++) {
		cfg[i] = NULL;
		r[i] = NULL;
		if (pats[i][0] == ':')
			continue; /* the config refuses an empty method */
		snprintf(yaml, sizeof yaml,
		    "authorization:\n  rules:\n"
		    "    - operations: [\"tools/cal\", \"prompts/get:zz\", \"t:\"]\n"
		    "      deny: {claims: {sub: [\"nobody\"]}}\n"
		    "    - operations: [\"%s\"]\n      allow: {}\n",
		    pats[i]);
		cfg[i] = load_rules_yaml(yaml);
		r[i] = rules_new(cfg[i]);
	}
	for (size_t i = 0; i < sizeof pats / sizeof pats[0]; i++) {
		for (size_t j = 0; j < sizeof methods / sizeof methods[0]; j++) {
			for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
				bool want, got;

				if (strchr(pats[i], ':') != NULL && names[k] == NULL) {
					want = false;
				} else {
					if (strchr(pats[i], ':') != NULL)
						snprintf(op, sizeof op, "%s:%s", methods[j], names[k]);
					else
						snprintf(op, sizeof op, "%s", methods[j]);
					want = ref_glob(pats[i], op);
				}
				got = rules_match(pats[i], methods[j], names[k]);
				if (got != want)
					fprintf(stderr, "%s vs %s / %s: %d, want %d\n", pats[i],
					    methods[j], names[k] != NULL ? names[k] : "(none)", got, want);
				CU_ASSERT_EQUAL(got, want);
				/* compiled in rules, with the other patterns' methods known */
				if (r[i] == NULL)
					continue;
				got = rules_decide(r[i], methods[j], names[k], &nobody).rule == 1;
				if (got != want)
					fprintf(stderr, "rules %s vs %s / %s: %d, want %d\n", pats[i],
					    methods[j], names[k] != NULL ? names[k] : "(none)", got, want);
				CU_ASSERT_EQUAL(got, want);
			}
		}
	}
	for (size_t i = 0; i < sizeof pats / sizeof pats[0]; i++) {
		rules_free(r[i]);
		if (cfg[i] != NULL)
			config_free(cfg[i]);
	}
}

/* The issue's example: read scope for the read set, admins for the rest. */
static void
test_decide(void)
{
	struct config *cfg = load_rules_yaml(issue_rules);
	struct rules *r = rules_new(cfg);
	json_object *admins = json_tokener_parse("{\"groups\":[\"users\",\"admins\"]}");
	json_object *users = json_tokener_parse("{\"groups\":\"users\"}");
	struct rules_principal reader = { .sub = "alice", .scope = "openid mcp:read", .claims = users };
	struct rules_principal admin = { .sub = "bob", .scope = "mcp:read mcp:admin", .claims = admins };
	struct rules_principal admin_noscope = { .sub = "bob", .scope = "mcp:read", .claims = admins };
	struct rules_principal guest = { .sub = "guest", .scope = "mcp:admin", .claims = admins };
	struct rules_principal none = { 0 };
	struct rules_verdict v;
	char buf[24];

	CU_ASSERT_EQUAL(rules_count(r), 3);
	CU_ASSERT_TRUE(rules_need_claims(r));

	v = rules_decide(r, "tools/list", NULL, &reader);
	CU_ASSERT_EQUAL(v.decision, RULES_ALLOW);
	CU_ASSERT_EQUAL(v.rule, 0);
	CU_ASSERT_STRING_EQUAL(rules_label(&v, buf, sizeof buf), "rules[0]");
	v = rules_decide(r, "tools/call", "get-sum", &reader);
	CU_ASSERT_EQUAL(v.decision, RULES_ALLOW);

	/* a reader calling an admin tool: rule 2's claims fail → default deny */
	v = rules_decide(r, "tools/call", "add", &reader);
	CU_ASSERT_EQUAL(v.decision, RULES_DENY);
	CU_ASSERT_EQUAL(v.rule, -1);
	CU_ASSERT_STRING_EQUAL(rules_label(&v, buf, sizeof buf), "default");

	v = rules_decide(r, "tools/call", "add", &admin);
	CU_ASSERT_EQUAL(v.decision, RULES_ALLOW);
	CU_ASSERT_EQUAL(v.rule, 2);

	/* an admin without the admin scope: step-up with the rule's scopes */
	v = rules_decide(r, "tools/call", "add", &admin_noscope);
	CU_ASSERT_EQUAL(v.decision, RULES_STEP_UP);
	CU_ASSERT_EQUAL(v.rule, 2);
	CU_ASSERT_EQUAL_FATAL(v.scopes->n, 1);
	CU_ASSERT_STRING_EQUAL(v.scopes->v[0], "mcp:admin");

	/* no token scope at all for the read set: step-up to mcp:read */
	v = rules_decide(r, "prompts/get", "greeting", &none);
	CU_ASSERT_EQUAL(v.decision, RULES_STEP_UP);
	CU_ASSERT_EQUAL(v.rule, 0);

	/* the deny rule comes first for guest, whatever its groups and scopes */
	v = rules_decide(r, "tools/call", "delete-all", &guest);
	CU_ASSERT_EQUAL(v.decision, RULES_DENY);
	CU_ASSERT_EQUAL(v.rule, 1);
	v = rules_decide(r, "tools/call", "delete-all", &admin);
	CU_ASSERT_EQUAL(v.decision, RULES_ALLOW);
	CU_ASSERT_EQUAL(v.rule, 2);

	/* unknown methods fall to the default */
	v = rules_decide(r, "sampling/createMessage", NULL, &admin);
	CU_ASSERT_EQUAL(v.decision, RULES_DENY);
	CU_ASSERT_EQUAL(v.rule, -1);

	json_object_put(admins);
	json_object_put(users);
	rules_free(r);
	config_free(cfg);
}

/* Claim values: arrays, numbers and booleans as text, sub and client_id
 * only from the token (a "sub" in the further claims does not count). */
static void
test_claims(void)
{
	struct config *cfg = load_rules_yaml("authorization:\n"
					     "  defaultDecision: allow\n"
					     "  rules:\n"
					     "    - operations: [\"tools/call:a\"]\n"
					     "      deny: {claims: {sub: [mallory]}}\n"
					     "    - operations: [\"tools/call:b\"]\n"
					     "      deny: {claims: {level: [\"3\"], verified: [\"true\"]}}\n"
					     "    - operations: [\"tools/call:c\"]\n"
					     "      deny: {claims: {client_id: [bad-client]}}\n"
					     "    - operations: [\"tools/call:d\"]\n"
					     "      deny:\n");
	struct rules *r = rules_new(cfg);
	json_object *c1 = json_tokener_parse("{\"sub\":\"mallory\",\"level\":3,\"verified\":true}");
	json_object *c2 = json_tokener_parse("{\"level\":[1,3],\"verified\":false}");
	json_object *c3 = json_tokener_parse("{\"level\":{\"x\":3},\"verified\":[true]}");
	struct rules_principal p1 = { .sub = "alice", .claims = c1 };
	struct rules_principal p2 = { .sub = "mallory", .client_id = "bad-client", .claims = c2 };
	struct rules_principal p3 = { .sub = "alice", .claims = c3 };

	CU_ASSERT_EQUAL(rules_decide(r, "tools/call", "a", &p1).decision, RULES_ALLOW);
	CU_ASSERT_EQUAL(rules_decide(r, "tools/call", "a", &p2).decision, RULES_DENY);
	CU_ASSERT_EQUAL(rules_decide(r, "tools/call", "b", &p1).decision, RULES_DENY);
	CU_ASSERT_EQUAL(rules_decide(r, "tools/call", "b", &p2).decision, RULES_ALLOW);
	CU_ASSERT_EQUAL(rules_decide(r, "tools/call", "b", &p3).decision, RULES_ALLOW);
	CU_ASSERT_EQUAL(rules_decide(r, "tools/call", "c", &p1).decision, RULES_ALLOW);
	CU_ASSERT_EQUAL(rules_decide(r, "tools/call", "c", &p2).decision, RULES_DENY);
	/* deny without conditions: always */
	CU_ASSERT_EQUAL(rules_decide(r, "tools/call", "d", &p1).decision, RULES_DENY);
	CU_ASSERT_EQUAL(rules_decide(r, "tools/call", "d", &p2).rule, 3);
	/* no further claims at all */
	p1.claims = NULL;
	CU_ASSERT_EQUAL(rules_decide(r, "tools/call", "b", &p1).decision, RULES_ALLOW);
	json_object_put(c1);
	json_object_put(c2);
	json_object_put(c3);
	rules_free(r);
	config_free(cfg);
}

/* A later rule may still decide after an allow rule failed on scopes. */
static void
test_step_up_order(void)
{
	struct config *cfg = load_rules_yaml("authorization:\n"
					     "  rules:\n"
					     "    - operations: [\"tools/call\"]\n"
					     "      allow: {scopes: [mcp:write, mcp:read]}\n"
					     "    - operations: [\"tools/call:echo\"]\n"
					     "      allow: {claims: {groups: [everyone]}}\n"
					     "    - operations: [\"tools/call:boom\"]\n"
					     "      deny: {}\n");
	struct rules *r = rules_new(cfg);
	json_object *c = json_tokener_parse("{\"groups\":[\"everyone\"]}");
	struct rules_principal p = { .sub = "u", .scope = "mcp:read", .claims = c };
	struct rules_verdict v;

	v = rules_decide(r, "tools/call", "echo", &p);
	CU_ASSERT_EQUAL(v.decision, RULES_ALLOW);
	CU_ASSERT_EQUAL(v.rule, 1);
	v = rules_decide(r, "tools/call", "boom", &p);
	CU_ASSERT_EQUAL(v.decision, RULES_DENY);
	CU_ASSERT_EQUAL(v.rule, 2);
	v = rules_decide(r, "tools/call", "other", &p);
	CU_ASSERT_EQUAL(v.decision, RULES_STEP_UP);
	CU_ASSERT_EQUAL(v.scopes->n, 2);
	p.scope = "mcp:read mcp:write";
	CU_ASSERT_EQUAL(rules_decide(r, "tools/call", "other", &p).decision, RULES_ALLOW);
	json_object_put(c);
	rules_free(r);
	config_free(cfg);
}

int
main(void)
{
	static const struct unit_test tests[] = {
		{ "match", test_match },
		{ "match_reference", test_match_reference },
		{ "decide", test_decide },
		{ "claims", test_claims },
		{ "step_up_order", test_step_up_order },
		{ NULL, NULL },
	};

	return unit_run("rules", tests);
}
