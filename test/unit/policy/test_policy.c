/*
 * Unit tests of auth/policy/policy (the file is included to reach its
 * statics): the outcomes read from a captured response. The list filter
 * has its own suite (test_listfilter.c); the hop as a whole is tested
 * end to end by integration.policy.
 */
#include "auth/policy/policy.c"

#include "test/unit/unit.h"

#include <unistd.h>

/* Outcomes read from a captured JSON or SSE body. */
static void
test_outcomes(void)
{
	struct evbuffer *b = xevbuffer_new();
	struct strlist ids = { 0 }, outcomes = { 0 };

	evbuffer_add_printf(b, "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n"
			       "data: {\"jsonrpc\":\"2.0\",\"id\":\"x\",\"error\":{}}\n\n");
	policy_responses(b, &ids, &outcomes);
	CU_ASSERT_EQUAL_FATAL(ids.n, 2);
	CU_ASSERT_STRING_EQUAL(ids.v[0], "1");
	CU_ASSERT_STRING_EQUAL(outcomes.v[0], "success");
	CU_ASSERT_STRING_EQUAL(ids.v[1], "\"x\"");
	CU_ASSERT_STRING_EQUAL(outcomes.v[1], "error");
	strlist_dispose(&ids);
	strlist_dispose(&outcomes);
	evbuffer_drain(b, evbuffer_get_length(b));
	evbuffer_add_printf(b, "[{\"jsonrpc\":\"2.0\",\"id\":2,\"error\":{}}]");
	policy_responses(b, &ids, &outcomes);
	CU_ASSERT_EQUAL_FATAL(ids.n, 1);
	CU_ASSERT_STRING_EQUAL(outcomes.v[0], "error");
	strlist_dispose(&ids);
	strlist_dispose(&outcomes);
	evbuffer_free(b);
}

int
main(void)
{
	static const struct unit_test tests[] = {
		{ "outcomes", test_outcomes },
		{ NULL, NULL },
	};

	return unit_run("policy", tests);
}
