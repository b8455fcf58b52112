/*
 * Unit tests for common/scope: the one scope-string matcher of the guard,
 * the grants and /oauth/authorize.
 */
#include "common/scope.h"

#include <stdlib.h>
#include <string.h>

#include "test/unit/unit.h"

static void
test_has(void)
{
	CU_ASSERT_TRUE(scope_has("openid  mcp:read", "mcp:read"));
	CU_ASSERT_TRUE(scope_has(" openid ", "openid"));
	CU_ASSERT_FALSE(scope_has("openid mcp:readx", "mcp:read"));
	CU_ASSERT_FALSE(scope_has("mcp:read", "mcp"));
	CU_ASSERT_FALSE(scope_has("openid ", ""));
	CU_ASSERT_FALSE(scope_has("", ""));
	CU_ASSERT_FALSE(scope_has(NULL, "openid"));
}

static void
test_split_normalise(void)
{
	struct strlist l = { 0 };
	char *s;

	scope_split("  b a  b c a ", &l);
	CU_ASSERT_EQUAL(l.n, 3);
	s = strlist_join(&l);
	CU_ASSERT_STRING_EQUAL(s, "b a c");
	free(s);
	strlist_dispose(&l);
	s = scope_normalise("x  y x ");
	CU_ASSERT_STRING_EQUAL(s, "x y");
	free(s);
	s = scope_normalise("   ");
	CU_ASSERT_STRING_EQUAL(s, "");
	free(s);
}

static void
test_subset_cover(void)
{
	struct strlist allowed = { 0 };
	const char *missing = "unset";

	strlist_add(&allowed, "openid");
	strlist_add(&allowed, "mcp:read");
	CU_ASSERT_TRUE(scope_subset("openid mcp:read openid", &allowed));
	CU_ASSERT_TRUE(scope_subset("", &allowed));
	CU_ASSERT_TRUE(scope_subset(NULL, &allowed));
	CU_ASSERT_FALSE(scope_subset("openid mcp:write", &allowed));
	CU_ASSERT_FALSE(scope_subset("mcp:rea", &allowed));
	CU_ASSERT_TRUE(scope_cover("mcp:read openid email", &allowed, &missing));
	CU_ASSERT_PTR_NULL(missing);
	CU_ASSERT_FALSE(scope_cover("openid", &allowed, &missing));
	CU_ASSERT_STRING_EQUAL(missing, "mcp:read");
	CU_ASSERT_FALSE(scope_cover(NULL, &allowed, &missing));
	CU_ASSERT_STRING_EQUAL(missing, "openid");
	strlist_dispose(&allowed);
}

int
main(void)
{
	static const struct unit_test tests[] = {
		{ "scope_has: whole tokens only", test_has },
		{ "scope_split and scope_normalise: a set, in order", test_split_normalise },
		{ "scope_subset and scope_cover", test_subset_cover },
		{ NULL, NULL },
	};

	return unit_run("scope", tests);
}
